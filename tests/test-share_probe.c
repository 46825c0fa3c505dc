/* The share-group probe: its topic inside the subscription, its clock, and two bbt-aggregators in one group on mosquitto. */
/* bbt-test: label=integration timeout=60 */
#include <errno.h>

#include "daemon.h"
#include "share_probe.h"
#include "test.h"

/* The probe topic made for FILTER (NULL: none can be). */
static void check_topic(const char *filter, const char *want)
{
        struct bbt_share_probe p;
        char err[300] = "";
        int r = bbt_share_probe_init(&p, filter, "bbt-aggregator@a/1", 30000, err, sizeof(err));

        if (!want) {
                if (r != -EINVAL)
                        FAIL("%s: expected no probe topic, got %s", filter, p.topic);
                ASSERT_STR_CONTAINS(err, filter);
                return;
        }
        if (r < 0)
                FAIL("%s: %s", filter, err);
        ASSERT_STR_EQ(p.topic, want);
        /* Its own probe is recognised, and counted; telemetry is not a probe. */
        ASSERT(bbt_share_probe_message(&p, p.topic));
        ASSERT_EQ(p.received, 1);
        ASSERT(!bbt_share_probe_message(&p, "bbt/v1/510107/3151010001/r101/hb"));
        ASSERT(!bbt_share_probe_message(&p, "bbt/v1/510107/3151010001/r101/cmd"));
        ASSERT_EQ(p.received, 1);
}

TEST(topic_inside_the_subscription)
{
        check_topic("bbt/v1/#", "bbt/v1/000000/_probe/_probe-bbt-aggregator-a-1/cmd");
        check_topic("#", "bbt/v1/000000/_probe/_probe-bbt-aggregator-a-1/cmd");
        check_topic("bbt/v1/510107/#", "bbt/v1/510107/_probe/_probe-bbt-aggregator-a-1/cmd");
        check_topic("bbt/v1/+/+/+/+", "bbt/v1/000000/_probe/_probe-bbt-aggregator-a-1/cmd");
        check_topic("bbt/v1/+/+/+/cmd", "bbt/v1/000000/_probe/_probe-bbt-aggregator-a-1/cmd");
        /* One school: the terminal level says probe. */
        check_topic("bbt/v1/510107/3151010001/#", "bbt/v1/510107/3151010001/_probe-bbt-aggregator-a-1/cmd");
        /* One terminal (its commands), telemetry only, another tree: none. */
        check_topic("bbt/v1/510107/3151010001/r101/#", NULL);
        check_topic("bbt/v1/+/+/+/hb", NULL);
        check_topic("bbt/v2/#", NULL);
        check_topic("bbt/v1/+/+", NULL);
}

TEST(clock_from_the_first_connect)
{
        struct bbt_share_probe p;
        char err[200];

        ASSERT_OK(bbt_share_probe_init(&p, "bbt/v1/#", "agg", 3000, err, sizeof(err)));
        ASSERT_EQ(bbt_share_probe_tick(&p, 100000), BBT_SHARE_PROBE_WAIT); /* not connected yet */
        bbt_share_probe_connected(&p, 100000);
        ASSERT_EQ(bbt_share_probe_tick(&p, 100000), BBT_SHARE_PROBE_SEND);
        ASSERT_EQ(bbt_share_probe_tick(&p, 100500), BBT_SHARE_PROBE_WAIT);
        ASSERT_EQ(bbt_share_probe_tick(&p, 101000), BBT_SHARE_PROBE_SEND);
        bbt_share_probe_connected(&p, 102000); /* a reconnect does not restart the clock */
        ASSERT_EQ(bbt_share_probe_tick(&p, 102500), BBT_SHARE_PROBE_SEND);
        ASSERT_EQ(bbt_share_probe_tick(&p, 103000), BBT_SHARE_PROBE_REFUSE);
        ASSERT_EQ(p.sent, 3);
        /* Anything delivered through the share, probe or not: no refusal, no more probes. */
        ASSERT_OK(bbt_share_probe_init(&p, "bbt/v1/#", "agg", 3000, err, sizeof(err)));
        bbt_share_probe_connected(&p, 100000);
        ASSERT_EQ(bbt_share_probe_tick(&p, 100000), BBT_SHARE_PROBE_SEND);
        ASSERT(!bbt_share_probe_message(&p, "bbt/v1/510107/3151010001/r101/hb"));
        ASSERT_EQ(bbt_share_probe_tick(&p, 200000), BBT_SHARE_PROBE_WAIT);
}

/* Two members of one group on mosquitto 2 (round robin): each gets some
 * probe within a couple of seconds and says so; the probes are not
 * telemetry (nothing rejected). */
TEST(two_members_on_mosquitto_pass)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_test_daemon agg[2] = { 0 };
        char conf[2][512], log[2][512], text[1024], exe[512];
        const char *dir = bbt_test_tmp_init("share-probe");

        bbt_test_broker_start(&b, NULL);
        for (int i = 0; i < 2; i++) {
                snprintf(conf[i], sizeof(conf[i]), "%s/aggregator%d.conf", dir, i);
                snprintf(log[i], sizeof(log[i]), "%s/aggregator%d.log", dir, i);
                snprintf(text, sizeof(text),
                         "[broker]\nport = %d\nclient_id = bbt-aggregator-share-%d\nshare_group = county\n"
                         "share_probe_timeout = 3s\n[store]\npath = %s/store%d.db\n[aggregator]\nmetrics_listen =\n"
                         "log_level = debug\n",
                         bbt_test_broker_port(&b), i, dir, i);
                bbt_test_write_file(conf[i], text);
                bbt_test_dump_on_failure(log[i]);
        }
        for (int i = 0; i < 2; i++) {
                char *argv[] = { (char *)bbt_test_exe("county/aggregator", "bbt-aggregator", exe, sizeof(exe)),
                                 "--config", conf[i], NULL };

                bbt_test_daemon_start(&agg[i], "aggregator", argv, log[i]);
        }
        for (int i = 0; i < 2; i++)
                BBT_WAIT_FOR((bbt_test_daemon_alive(&agg[i]),
                              bbt_test_file_contains(log[i], "the share group delivers")),
                             10000, "aggregator %d: the share group did not deliver", i);
        /* Delivered: no refusal can follow (clock_from_the_first_connect); both stop cleanly. */
        for (int i = 0; i < 2; i++) {
                bbt_test_daemon_alive(&agg[i]);
                ASSERT(!bbt_test_file_contains(log[i], "nothing arrived through the shared subscription"));
                ASSERT(!bbt_test_file_contains(log[i], "rejected"));
                bbt_test_daemon_term(&agg[i], 5000);
                bbt_test_check_sanitizers(log[i]);
        }
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}
