/* The power schedule end to end: the real bbt-aggregator computes it from its power CSV and sends it at the real agent's birth; the agent powers off (dry-run); a changed CSV sends a new rev. */
/* bbt-test: label=integration timeout=60 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "broker.h"
#include "daemon.h"
#include "test.h"

#define COUNTY "510107"
#define SCHOOL "3151010001"
#define TERMINAL "r101"

static char tmp_dir[256], agg_conf[320], agg_log[320], store_path[320], power_csv[320];
static char agent_conf[320], agent_log[320], state_dir[320], spool_dir[320], dry_run[400], power_state[400];
static char client_id[64], utc_offset[16];
static int offset_min;
static struct bbt_test_broker broker;

/* The local school time (at utc_offset) IN_MS from now, as HH:MM:SS, whole
 * seconds rounded up. */
static const char *local_time(int64_t in_ms, char *buf, size_t size)
{
        time_t t = (time_t)((bbt_test_wall_ms() + in_ms + 999) / 1000) + offset_min * 60;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, size, "%H:%M:%S", &tm);
        return buf;
}

static void write_power_csv(const char *at)
{
        char text[256];

        /* The same time on every kind of day: the test runs on any weekday. */
        snprintf(text, sizeof(text), "范围,上课日,半天,非上课日,备注\n" COUNTY ",%s,,%s,test\n", at, at);
        bbt_test_write_file(power_csv, text);
}

static void env_init(void)
{
        time_t now = time(NULL);
        struct tm tm;
        char text[2048];

        snprintf(tmp_dir, sizeof(tmp_dir), "%s", bbt_test_tmp_init("power_schedule"));
        snprintf(agg_conf, sizeof(agg_conf), "%s/aggregator.conf", tmp_dir);
        snprintf(agg_log, sizeof(agg_log), "%s/aggregator.log", tmp_dir);
        snprintf(store_path, sizeof(store_path), "%s/aggregator.db", tmp_dir);
        snprintf(power_csv, sizeof(power_csv), "%s/power.csv", tmp_dir);
        snprintf(agent_conf, sizeof(agent_conf), "%s/agent.conf", tmp_dir);
        snprintf(agent_log, sizeof(agent_log), "%s/agent.log", tmp_dir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", tmp_dir);
        snprintf(spool_dir, sizeof(spool_dir), "%s/spool", tmp_dir);
        snprintf(dry_run, sizeof(dry_run), "%s/poweroff.dry-run", state_dir);
        snprintf(power_state, sizeof(power_state), "%s/power", state_dir);
        snprintf(client_id, sizeof(client_id), "bbt-aggregator-ps-%ld", (long)getpid());
        if (mkdir(state_dir, 0700) < 0 || mkdir(spool_dir, 0700) < 0)
                FAIL("mkdir in %s: %s", tmp_dir, strerror(errno));
        bbt_test_dump_on_failure(agg_log);
        bbt_test_dump_on_failure(agent_log);
        /* A school time zone where it is about noon now, so that a time a few
         * seconds ahead is today's whatever the hour of the run. */
        gmtime_r(&now, &tm);
        offset_min = ((12 - tm.tm_hour + 36) % 24 - 12) * 60;
        snprintf(utc_offset, sizeof(utc_offset), "%c%02d:00", offset_min < 0 ? '-' : '+', abs(offset_min) / 60);

        bbt_test_broker_start(&broker, NULL);
        snprintf(text, sizeof(text),
                 "[broker]\nhost = 127.0.0.1\nport = %d\nclient_id = %s\nkeepalive = 5s\nbackoff_min = 100ms\n"
                 "backoff_max = 1s\n\n[store]\npath = %s\nbatch_interval = 50ms\n\n[metrics]\nutc_offset = %s\n\n"
                 "[power]\nschedule = %s\ndays = 3\n\n[aggregator]\nlog_level = debug\nmetrics_listen =\n",
                 bbt_test_broker_port(&broker), client_id, store_path, utc_offset, power_csv);
        bbt_test_write_file(agg_conf, text);
        snprintf(text, sizeof(text),
                 "[identity]\ncounty = " COUNTY "\nschool = " SCHOOL "\nterminal = " TERMINAL "\n\n"
                 "[broker]\nhost = 127.0.0.1\nport = %d\nbackoff_min = 200ms\nbackoff_max = 1s\n\n"
                 "[agent]\nstate_dir = %s\nlog_level = debug\nheartbeat_interval = 1s\n\n[spool]\ndir = %s\n\n"
                 "[power]\nmethod = dry-run\n\n[input]\nenabled = no\n\n[display]\nenabled = no\n\n"
                 "[audio]\nenabled = no\n\n[peripherals]\nenabled = no\n",
                 bbt_test_broker_port(&broker), state_dir, spool_dir);
        bbt_test_write_file(agent_conf, text);
}

static int broker_subacks(void)
{
        char path[512], needle[160];

        snprintf(path, sizeof(path), "%s/mosquitto.log", broker.dir);
        snprintf(needle, sizeof(needle), "Sending SUBACK to %s", client_id);
        return bbt_test_count_in_file(path, needle);
}

/* The agent's stored schedule's rev ("rev=N" in state_dir/power), or -1. */
static long long stored_rev(void)
{
        char *text = bbt_test_slurp(power_state), *p = strstr(text, "\nrev=");
        long long rev = -1;

        if (p)
                sscanf(p + 5, "%lld", &rev);
        free(text);
        return rev;
}

TEST(sent_at_birth_powers_off_and_resent_on_change)
{
        struct bbt_test_daemon agg, agent;
        char exe[512], exe2[512], at[16], later[16];
        char *agg_argv[] = { (char *)bbt_test_exe("county/aggregator", "bbt-aggregator", exe, sizeof(exe)),
                             (char *)"-c", agg_conf, NULL };
        char *agent_argv[] = { (char *)bbt_test_exe("agent", "bbt-agent", exe2, sizeof(exe2)), (char *)"-c",
                               agent_conf, NULL };
        long long rev1, rev2;

        env_init();
        /* Powered off 4 s from now: the aggregator must send it within that. */
        write_power_csv(local_time(4000, at, sizeof(at)));
        bbt_test_daemon_start(&agg, "aggregator", agg_argv, agg_log);
        BBT_WAIT_FOR((bbt_test_daemon_alive(&agg), broker_subacks() >= 1), 10000, "the aggregator did not subscribe");
        bbt_test_daemon_start(&agent, "agent", agent_argv, agent_log);

        /* At the birth: sent, answered, stored by the agent. */
        BBT_WAIT_FOR((bbt_test_daemon_alive(&agent), stored_rev() > 0), 5000, "the agent stored no schedule");
        rev1 = stored_rev();
        ASSERT(bbt_test_file_contains(agg_log, COUNTY "/" SCHOOL "/" TERMINAL ": power schedule ps-"));
        /* ... and carried out at the time (dry-run). */
        BBT_WAIT_FOR((bbt_test_daemon_alive(&agent), bbt_test_count_in_file(dry_run, "poweroff ") == 1), 8000,
                     "no power-off at %s", at);
        ASSERT(bbt_test_file_contains(agent_log, "power: power_off: scheduled power-off at"));

        /* A changed schedule (SIGHUP re-reads the CSV): a new rev reaches the agent. */
        write_power_csv(local_time(3600000, later, sizeof(later)));
        ASSERT_EQ(kill(agg.pid, SIGHUP), 0);
        BBT_WAIT_FOR((bbt_test_daemon_alive(&agent), (rev2 = stored_rev()) > 0 && rev2 != rev1), 5000,
                     "no new rev after the change (still %lld)", rev1);
        /* The same CSV read again: nothing new is sent. */
        ASSERT_EQ(kill(agg.pid, SIGHUP), 0);
        BBT_WAIT_FOR(bbt_test_count_in_file(agg_log, "power schedule unchanged") >= 1, 5000,
                     "the unchanged schedule was not looked at");
        ASSERT_EQ(bbt_test_count_in_file(agg_log, ": power schedule ps-"), 2);

        bbt_test_daemon_term(&agent, 5000);
        bbt_test_daemon_term(&agg, 5000);
        ASSERT(bbt_test_file_contains(agg_log, "power schedules: 2 sent, 2 answered, 0 refused, 0 not sent"));
        ASSERT_EQ(bbt_test_count_in_file(dry_run, "poweroff "), 1);
        bbt_test_check_sanitizers(agg_log);
        bbt_test_check_sanitizers(agent_log);
        bbt_test_broker_stop(&broker);
        bbt_test_passed();
}
