/* Fault injection end to end: the real bbt-agent and bbt-aggregator with a real mosquitto, a cut path, a full disk, kill -9 of the agent and of the broker; the store must hold every seq once or explain its loss. */
/* bbt-test: label=integration timeout=180 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bbt/protocol.h"
#include "bbt/base.h"
#include "broker.h"
#include "store.h"
#include "daemon.h"
#include "spool.h"
#include "tcp-proxy.h"
#include "test.h"

/*
 * Every case runs in a private temporary directory: the broker (tests/broker.c,
 * with the queue limits of a county broker), bbt-aggregator connected to it
 * directly, and one bbt-agent, connected either through a TCP proxy the test
 * can cut (tests/tcp-proxy.c) or directly. The agent runs with a 200 ms
 * heartbeat; the aggregator with short gap and resend timings. At the end the
 * agent is stopped cleanly, so its state file says exactly which seqs it used
 * (seq_floor − 1 is the last), and the aggregator's store (read-only, WAL) must
 * hold each of 1..last exactly once — or, where a case loses messages on
 * purpose, every missing seq must be in a loss row with a reason and in the
 * agent's own count. On failure the daemons' and the broker's logs are printed.
 *
 * Environment: BBT_TEST_SEED=N changes the kill moments of
 * agent_kill9_through_proxy; BBT_TEST_VERBOSE=1 prints the logs on success too.
 */

#define COUNTY "510107"
#define SCHOOL "3151010001"
#define TERMINAL "r101"
#define AGG_CLIENT_ID "bbt-aggregator-faults"

/* As test-aggregator.c: no QoS 1 message may be dropped for a subscriber
 * that falls behind (the aggregator while it commits or reconnects). */
#define BROKER_CONF "max_queued_messages 1000000\nmax_inflight_messages 0\n"

#define TERM_SQL "(SELECT id FROM terminal WHERE county = '" COUNTY "' AND school = '" SCHOOL "' AND terminal = '" TERMINAL "')"

static struct {
        char agent_conf[320], agg_conf[320], store[320], state_dir[320], spool_dir[320];
        char agent_log[320], agg_log[320], broker_log[320];
        struct bbt_test_broker broker;
        struct bbt_test_proxy *proxy;
        struct bbt_test_daemon agent, agg;
} env;

/* ---- set-up ---- */

struct agent_opts {
        bool via_proxy;
        const char *hb;           /* heartbeat_interval; NULL: 200ms */
        const char *usage_flush;  /* NULL: 1s */
        const char *keepalive;    /* [broker] keepalive; NULL: 60s (the default) */
        const char *spool_dir;    /* NULL: <tmp>/spool */
        const char *spool_extra;  /* lines of [spool] */
};

static void write_agent_conf(const struct agent_opts *o)
{
        char text[4096];
        int port = o->via_proxy ? bbt_test_proxy_port(env.proxy) : bbt_test_broker_port(&env.broker);

        snprintf(env.spool_dir, sizeof(env.spool_dir), "%s", o->spool_dir ? o->spool_dir : "");
        if (!o->spool_dir)
                snprintf(env.spool_dir, sizeof(env.spool_dir), "%s/spool", bbt_test_tmp_dir());
        snprintf(text, sizeof(text),
                 "# written by tests/test-faults.c\n"
                 "[identity]\ncounty = " COUNTY "\nschool = " SCHOOL "\nterminal = " TERMINAL "\n\n"
                 "[broker]\nhost = 127.0.0.1\nport = %d\nbackoff_min = 200ms\nbackoff_max = 1s\n"
                 "keepalive = %s\n\n"
                 "[agent]\nstate_dir = %s\nroot = /\nlog_level = debug\nheartbeat_interval = %s\n"
                 "usage_flush = %s\n\n"
                 "[spool]\ndir = %s\n%s\n"
                 /* The machine's own hardware stays out of the stream. */
                 "[input]\nenabled = no\n\n[display]\nenabled = no\n\n[audio]\nenabled = no\n\n"
                 "[peripherals]\nenabled = no\n",
                 port, o->keepalive ? o->keepalive : "60s", env.state_dir, o->hb ? o->hb : "200ms",
                 o->usage_flush ? o->usage_flush : "1s", env.spool_dir, o->spool_extra ? o->spool_extra : "");
        bbt_test_write_file(env.agent_conf, text);
}

static void write_agg_conf(void)
{
        char text[2048];

        snprintf(text, sizeof(text),
                 "# written by tests/test-faults.c\n"
                 "[broker]\nhost = 127.0.0.1\nport = %d\nclient_id = " AGG_CLIENT_ID "\nkeepalive = 5s\n"
                 "backoff_min = 100ms\nbackoff_max = 1s\n\n"
                 "[store]\npath = %s\nbatch_interval = 100ms\n\n"
                 "[registry]\n\n"
                 "[ingest]\ngap_grace = 500ms\nresend_timeout = 2s\nresend_settle = 1s\n\n"
                 "[aggregator]\nlog_level = debug\n",
                 bbt_test_broker_port(&env.broker), env.store);
        bbt_test_write_file(env.agg_conf, text);
}

/* The broker, the aggregator (subscribed) and, if WITH_PROXY, the proxy. */
static void setup(bool with_proxy)
{
        const char *dir = bbt_test_tmp_init("faults");

        snprintf(env.agent_conf, sizeof(env.agent_conf), "%s/agent.conf", dir);
        snprintf(env.agg_conf, sizeof(env.agg_conf), "%s/aggregator.conf", dir);
        snprintf(env.store, sizeof(env.store), "%s/aggregator.db", dir);
        snprintf(env.state_dir, sizeof(env.state_dir), "%s/state", dir);
        snprintf(env.agent_log, sizeof(env.agent_log), "%s/agent.log", dir);
        snprintf(env.agg_log, sizeof(env.agg_log), "%s/aggregator.log", dir);
        if (mkdir(env.state_dir, 0700) < 0)
                FAIL("mkdir %s: %s", env.state_dir, strerror(errno));
        bbt_test_broker_start(&env.broker, BROKER_CONF);
        snprintf(env.broker_log, sizeof(env.broker_log), "%s/mosquitto.log", env.broker.dir);
        bbt_test_dump_on_failure(env.agg_log);
        bbt_test_dump_on_failure(env.agent_log);
        bbt_test_dump_on_failure(env.broker_log);
        if (with_proxy)
                env.proxy = bbt_test_proxy_start(bbt_test_broker_port(&env.broker));
        write_agg_conf();
}

static int broker_log_count(const char *what)
{
        char needle[160];

        snprintf(needle, sizeof(needle), "%s %s", what, AGG_CLIENT_ID);
        return bbt_test_count_in_file(env.broker_log, needle);
}

/* Starts bbt-aggregator and waits until the broker sent its SUBACK. */
static void agg_start(void)
{
        char exe[512];
        char *argv[] = { (char *)bbt_test_exe("county/aggregator", "bbt-aggregator", exe, sizeof(exe)), (char *)"-c",
                         env.agg_conf, NULL };
        int subacks = broker_log_count("Sending SUBACK to");

        bbt_test_daemon_start(&env.agg, "bbt-aggregator", argv, env.agg_log);
        BBT_WAIT_FOR((bbt_test_daemon_alive(&env.agg), broker_log_count("Sending SUBACK to") > subacks), 15000,
                     "bbt-aggregator did not subscribe within 15 s");
}

static void agent_start(void)
{
        char exe[512];
        char *argv[] = { (char *)bbt_test_exe("agent", "bbt-agent", exe, sizeof(exe)), (char *)"-c", env.agent_conf,
                         NULL };

        bbt_test_daemon_start(&env.agent, "bbt-agent", argv, env.agent_log);
}

static void alive(void)
{
        bbt_test_daemon_alive(&env.agent);
        bbt_test_daemon_alive(&env.agg);
}

/* Runs for MS milliseconds, failing if a daemon dies. */
static void run_for(int ms)
{
        uint64_t t0 = bbt_test_now_ms();

        while (bbt_test_now_ms() - t0 < (uint64_t)ms) {
                alive();
                bbt_test_sleep_ms(50);
        }
}

/* Failures kept for the end of a case, so that the checks after them run. */
static char deferred[2048];

static void finish_deferred(void)
{
        if (deferred[0])
                FAIL("%s", deferred);
}

static void teardown(void)
{
        bbt_test_daemon_term(&env.agg, 5000);
        bbt_test_check_sanitizers(env.agg_log);
        bbt_test_check_sanitizers(env.agent_log);
        bbt_test_proxy_stop(env.proxy);
        env.proxy = NULL;
        bbt_test_broker_stop(&env.broker);
        finish_deferred();
        bbt_test_passed();
}

/* ---- the agent's own account ---- */

/* The last seq the agent used, from its state file after a clean stop:
 * seq_floor is then exactly the next seq (docs/spool.md). */
static int64_t agent_last_seq(void)
{
        char path[400], *text, *p, *end;
        long long floor;

        snprintf(path, sizeof(path), "%s/state", env.state_dir);
        text = bbt_test_slurp(path);
        if (!strstr(text, "clean=1\n"))
                FAIL("%s does not record a clean stop:\n%s", path, text);
        p = strstr(text, "seq_floor=");
        if (!p)
                FAIL("%s has no seq_floor:\n%s", path, text);
        errno = 0;
        floor = strtoll(p + strlen("seq_floor="), &end, 10);
        if (errno || end == p + strlen("seq_floor=") || *end != '\n' || floor < 1)
                FAIL("%s: bad seq_floor:\n%s", path, text);
        free(text);
        return floor - 1;
}

/* How many records the agent's last "stopped:" line says wait in its spool
 * (-1: no such line); the line into LINE. */
static long stopped_waiting(char *line, size_t size)
{
        char *text = bbt_test_slurp(env.agent_log), *p = text, *last = NULL, *nl, *w;
        long n = -1;

        while ((p = strstr(p, "stopped: ")))
                last = p++;
        line[0] = '\0';
        if (last) {
                if ((nl = strchr(last, '\n')))
                        *nl = '\0';
                snprintf(line, size, "%s", last);
                w = strstr(last, " acknowledged this run, ");
                if (w)
                        n = strtol(w + strlen(" acknowledged this run, "), NULL, 10);
        }
        free(text);
        return n;
}

static int64_t raw_max(void);

/* SIGTERM to the agent (it must exit 0 within 6 s); returns its last seq.
 * A clean stop while connected may leave the record made by the stop itself
 * (the final usage interval) unsent in the spool ("1 waiting in the
 * spool"): it is not lost, the next start sends it. Then the agent is
 * started once more until that is delivered, and stopped again (NOTE). */
static int64_t agent_stop(void)
{
        char line[256];
        int64_t last = 0;
        long waiting = 0;

        for (int round = 0; round < 3; round++) {
                int ms = bbt_test_daemon_term(&env.agent, 6000);

                last = agent_last_seq();
                waiting = stopped_waiting(line, sizeof(line));
                fprintf(stderr, "bbt-agent stopped %d ms after SIGTERM; last seq %" PRId64 "; %s\n", ms, last, line);
                if (waiting <= 0)
                        return last;
                fprintf(stderr, "NOTE: the clean stop left %ld record(s) unsent in the spool although connected; "
                                "starting the agent once more to deliver them\n",
                        waiting);
                agent_start();
                BBT_WAIT_FOR((alive(), raw_max() >= last), 15000, "the restarted agent did not deliver seq %" PRId64,
                             last);
                bbt_test_sleep_ms(500);
        }
        FAIL("the agent still had %ld record(s) waiting after three clean stops", waiting);
}

/* ---- the store ---- */

static int64_t raw_count(void)
{
        return bbt_test_db_int(env.store, 0, "SELECT count(*) FROM raw WHERE terminal_id = " TERM_SQL);
}

static int64_t raw_max(void)
{
        return bbt_test_db_int(env.store, 0, "SELECT max(seq) FROM raw WHERE terminal_id = " TERM_SQL);
}

static int64_t gap_rows(void)
{
        return bbt_test_db_int(env.store, 0, "SELECT count(*) FROM gap");
}

/* Seqs held as the live session's will (gap state BBT_GAP_WILL): the agent
 * keeps that will back until the session ends, so while it runs this one seq
 * is legitimately not stored, and neither asked for again nor lost. */
static int64_t will_seqs(void)
{
        return bbt_test_db_int(env.store, 0, "SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM gap WHERE state = %d",
                               (int)BBT_GAP_WILL);
}

static int64_t loss_rows(void)
{
        return bbt_test_db_int(env.store, 0, "SELECT count(*) FROM loss WHERE kind = 0");
}

/* Seqs the aggregator recorded as skipped (never used by the agent). */
static int64_t skipped_seqs(void)
{
        return bbt_test_db_int(env.store, 0, "SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM loss WHERE kind = 1");
}

/* The seqs the agent's log says it skipped at its starts ("seq A..B skipped"). */
static int64_t agent_skipped_seqs(void)
{
        FILE *f = fopen(env.agent_log, "r");
        char line[1024];
        int64_t n = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f)) {
                const char *p = strstr(line, "; seq ");
                long long a, b;

                if (p && strstr(line, " skipped, never reused") && sscanf(p, "; seq %lld..%lld", &a, &b) == 2)
                        n += b - a + 1;
        }
        fclose(f);
        return n;
}

static int64_t loss_seqs(void)
{
        return bbt_test_db_int(env.store, 0, "SELECT sum(to_seq - from_seq + 1) FROM loss");
}

/* Whether a heartbeat above seq AFTER says its spool was empty. */
static bool live_hb_after(int64_t after)
{
        return bbt_test_db_int(env.store, 0,
                               "SELECT count(*) FROM raw WHERE terminal_id = " TERM_SQL " AND channel = %d AND seq > %" PRId64
                               " AND json_extract(payload, '$.spool.depth') = 0",
                               (int)BBT_CH_HB, after) > 0;
}

static int64_t max_hb_depth(void)
{
        return bbt_test_db_int(env.store, -1,
                               "SELECT max(json_extract(payload, '$.spool.depth')) FROM raw WHERE terminal_id = " TERM_SQL
                               " AND channel = %d",
                               (int)BBT_CH_HB);
}

static const char *missing(int64_t last, char *buf, size_t size, int64_t *ret_count)
{
        return bbt_test_db_missing(env.store, "SELECT seq FROM raw WHERE terminal_id = " TERM_SQL " ORDER BY seq", 1,
                                   last, buf, size, ret_count);
}

/* The agent's backlog is delivered and stored without a hole: a heartbeat
 * above seq AFTER says the agent's spool was empty when it was made (so all
 * before it was acknowledged by the broker), and nothing below the highest
 * seq stored is missing or still awaited but the live session's will. */
static bool drained(int64_t after)
{
        int64_t max = raw_max();

        return max > 0 && live_hb_after(after) && raw_count() + loss_seqs() + will_seqs() == max &&
               gap_rows() == (will_seqs() > 0 ? 1 : 0) && will_seqs() <= 1;
}

static void wait_drained(int64_t after, int timeout_ms, const char *when)
{
        char buf[512];

        BBT_WAIT_FOR((alive(), drained(after)), timeout_ms,
                     "%s: backlog not delivered: stored %" PRId64 " up to seq %" PRId64 ", no live hb above %" PRId64
                     " (%s), %" PRId64 " gaps open, %" PRId64 " lost; missing %s",
                     when, raw_count(), raw_max(), after, live_hb_after(after) ? "there is one" : "none", gap_rows(),
                     loss_seqs(), missing(raw_max(), buf, sizeof(buf), NULL));
}

/* After the agent stopped: waits until the aggregator holds 1..LAST (or has
 * accounted for the rest as lost) with nothing pending, then lets it run
 * past resend_settle so that nothing more can change. */
static void wait_settled(int64_t last, int timeout_ms)
{
        char buf[512];

        BBT_WAIT_FOR((bbt_test_daemon_alive(&env.agg), raw_count() + loss_seqs() >= last && gap_rows() == 0 &&
                                                             raw_max() == last),
                     timeout_ms,
                     "stored %" PRId64 " of 1..%" PRId64 " (max %" PRId64 "), %" PRId64 " lost, %" PRId64
                     " gaps open; missing %s",
                     raw_count(), last, raw_max(), loss_seqs(), gap_rows(), missing(last, buf, sizeof(buf), NULL));
        bbt_test_sleep_ms(1500);
        bbt_test_daemon_alive(&env.agg);
}

/* Loss rows whose seqs were stored after all: there must be none. (The case
 * this caught: the live session's will, which the agent keeps back, recorded
 * as lost while the session lived, and its loss row kept when it arrived. The
 * agent now names it "withheld" in its resend reply, the aggregator waits for
 * it, and a lost seq that arrives after all leaves its loss record.) */
static int64_t check_stale_losses(void)
{
        char sql[512], reason[128], payload[512];
        int64_t n, from, to;
        size_t len = strlen(deferred);

        n = bbt_test_db_int(env.store, 0,
                            "SELECT count(*) FROM loss l WHERE EXISTS (SELECT 1 FROM raw r WHERE r.terminal_id = "
                            "l.terminal_id AND r.seq BETWEEN l.from_seq AND l.to_seq)");
        if (!n)
                return 0;
        snprintf(sql, sizeof(sql),
                 "FROM loss l WHERE EXISTS (SELECT 1 FROM raw r WHERE r.terminal_id = l.terminal_id AND r.seq BETWEEN "
                 "l.from_seq AND l.to_seq) ORDER BY l.from_seq LIMIT 1");
        from = bbt_test_db_int(env.store, -1, "SELECT l.from_seq %s", sql);
        to = bbt_test_db_int(env.store, -1, "SELECT l.to_seq %s", sql);
        bbt_test_db_text(env.store, reason, sizeof(reason), "SELECT l.reason %s", sql);
        bbt_test_db_text(env.store, payload, sizeof(payload),
                         "SELECT payload FROM raw WHERE terminal_id = " TERM_SQL " AND seq BETWEEN %" PRId64
                         " AND %" PRId64 " ORDER BY seq LIMIT 1",
                         from, to);
        snprintf(deferred + len, sizeof(deferred) - len,
                 "%sBUG: %" PRId64 " loss row(s) for seqs that are stored; first: %" PRId64 "..%" PRId64
                 " \"%s\", stored as %s. %s",
                 len ? "\n  " : "", n, from, to, reason, payload,
                 strstr(payload, "\"online\":false")
                         ? "It is a session's offline state (will / clean stop): the agent withholds the live "
                           "session's will from resends (agent/resend.c resend_record_cb) yet counts it as sent, "
                           "so the aggregator (aggregator/ingest.c tick_terminal) records it lost while the "
                           "session lives, and handle_message never removes the loss row when it arrives."
                         : "");
        fprintf(stderr, "deferred failure: %s\n", deferred + len);
        return n;
}

/* 1: assert_exactly_once() fails when seq 1, the first session's will, is
 * missing (the birth now names the will's seq, so the aggregator expects it
 * and asks for it once that session is over); 0 would only note it. */
#define STRICT_SERIES_START 1

static int spool_seq1_cb(void *userdata, const struct bbt_spool_record *rec)
{
        snprintf(userdata, 512, "%.*s", (int)rec->payload_len, (const char *)rec->payload);
        return 0;
}

/* Whether the agent's spool (the agent stopped) holds seq 1 as the offline
 * state of boot 1: the first session's will. */
static bool first_will_lost_below_series(void)
{
        struct bbt_spool_options so;
        struct bbt_spool_range range;
        struct bbt_spool *sp;
        char payload[512] = "";

        bbt_spool_options_init(&so, env.spool_dir);
        if (bbt_spool_open(&so, NULL, NULL, &sp) < 0)
                return false;
        bbt_spool_read_range(sp, 1, 1, 1, spool_seq1_cb, payload, &range);
        bbt_spool_close(sp);
        fprintf(stderr, "agent spool, seq 1: %s\n", payload);
        return strstr(payload, "\"online\":false") && strstr(payload, "\"boot\":1,");
}

/* Every seq 1..LAST stored exactly once ((terminal, seq) is unique in raw,
 * so count, min and max say it), nothing lost, nothing pending. */
static void assert_exactly_once(int64_t last)
{
        int64_t count = raw_count(), lo, hi, skipped;
        char buf[512];

        lo = bbt_test_db_int(env.store, -1, "SELECT min(seq) FROM raw WHERE terminal_id = " TERM_SQL);
        hi = raw_max();
        if (lo == 2 && count == last - 1 && hi == last && first_will_lost_below_series()) {
                fprintf(stderr, "NOTE: seq 1 (the will of the first session, which died with the broker) was "
                                "republished by the agent before the aggregator had subscribed again, so the "
                                "restarted broker dropped it; below the first seq it stored the aggregator "
                                "tracks no gap, so it neither asked for it nor counted it lost%s\n",
                        STRICT_SERIES_START ? " (STRICT_SERIES_START: failing)" : "");
                if (!STRICT_SERIES_START) {
                        lo = 1;
                        count++;
                }
        }
        /* Seqs the agent skipped at a start after a kill were never used:
         * exactly those, recorded as skipped, and nothing lost. */
        skipped = skipped_seqs();
        if (count + skipped != last || lo != 1 || hi != last)
                FAIL("expected seqs 1..%" PRId64 " stored once each or skipped, got %" PRId64 " rows and %" PRId64
                     " skipped, seqs %" PRId64 "..%" PRId64 "; missing: %s",
                     last, count, skipped, lo, hi, missing(last, buf, sizeof(buf), NULL));
        ASSERT_EQ(skipped, agent_skipped_seqs());
        ASSERT_EQ(bbt_test_db_int(env.store, -1, "SELECT skipped FROM terminal WHERE id = " TERM_SQL), skipped);
        ASSERT_EQ(gap_rows(), 0);
        ASSERT_EQ(bbt_test_db_int(env.store, -1, "SELECT lost FROM terminal WHERE id = " TERM_SQL), 0);
        ASSERT_EQ(loss_rows() - check_stale_losses(), 0);
        ASSERT_EQ(bbt_test_db_int(env.store, -1, "SELECT count(*) FROM conflict"), 0);
        fprintf(stderr, "store: 1..%" PRId64 " once each, %" PRId64 " skipped; %" PRId64 " duplicates dropped, %" PRId64
                " recovered by resend, %" PRId64 " resend commands\n",
                last, skipped, bbt_test_db_int(env.store, 0, "SELECT value FROM counter WHERE name = 'duplicates'"),
                bbt_test_db_int(env.store, 0, "SELECT value FROM counter WHERE name = 'recovered'"),
                (int64_t)bbt_test_count_in_file(env.agent_log, ": resend"));
}

/* The stream is running: at least N messages stored. */
static void wait_stream(int64_t n)
{
        BBT_WAIT_FOR((alive(), raw_count() >= n), 20000, "only %" PRId64 " of %" PRId64 " messages stored",
                     raw_count(), n);
}

/* ---- 1. the agent's path cut for 20 s ---- */

static void path_cut(enum bbt_test_proxy_mode how)
{
        struct agent_opts o = { .via_proxy = true, .keepalive = "5s" };
        struct bbt_test_proxy_stats ps;
        int lost_before, connected_before;
        int64_t stored_at_cut, last, depth, after;
        uint64_t t0, noticed = 0;

        setup(true);
        write_agent_conf(&o);
        agg_start();
        agent_start();
        wait_stream(10);
        run_for(500);
        stored_at_cut = raw_count();
        lost_before = bbt_test_count_in_file(env.agent_log, "lost:");
        connected_before = bbt_test_count_in_file(env.agent_log, "connected to ");

        fprintf(stderr, "cutting the agent's path (%s) for 20 s at %" PRId64 " stored\n",
                how == BBT_TEST_PROXY_REFUSE ? "closed and refused" : "blackhole", stored_at_cut);
        bbt_test_proxy_set_mode(env.proxy, how);
        t0 = bbt_test_now_ms();
        while (bbt_test_now_ms() - t0 < 20000) {
                alive();
                if (!noticed && bbt_test_count_in_file(env.agent_log, "lost:") > lost_before)
                        noticed = bbt_test_now_ms() - t0;
                bbt_test_sleep_ms(100);
        }
        bbt_test_proxy_get_stats(env.proxy, &ps);
        fprintf(stderr, "agent noticed the cut after %" PRIu64 " ms; proxy: %" PRIu64 " accepted, %" PRIu64
                " forwarded, %" PRIu64 " open\n",
                noticed, ps.accepted, ps.forwarded, ps.open);
        /* Closed: at once. Blackhole: by the keepalive (5 s: a PINGREQ after
         * 5 s of silence from the broker, then its deadline). */
        if (!noticed)
                FAIL("the agent did not notice the cut within 20 s (no \"connection ... lost\" in its log)");
        if (how == BBT_TEST_PROXY_REFUSE)
                ASSERT_LT(noticed, 2000);
        else
                ASSERT_LT(noticed, 16000);
        /* Nothing went through while cut. */
        ASSERT_EQ(bbt_test_count_in_file(env.agent_log, "connected to "), connected_before);

        /* The first heartbeats of the cut may still say 0: ask for one well
         * past them (20 s make ~100 heartbeats). */
        after = raw_max() + 30;
        bbt_test_proxy_restore(env.proxy);
        t0 = bbt_test_now_ms();
        BBT_WAIT_FOR((alive(), bbt_test_count_in_file(env.agent_log, "connected to ") > connected_before), 10000,
                     "the agent did not reconnect within 10 s of the restore");
        fprintf(stderr, "reconnected %" PRIu64 " ms after the restore\n", bbt_test_now_ms() - t0);
        wait_drained(after, 40000, "after the restore");
        fprintf(stderr, "backlog delivered %" PRIu64 " ms after the restore\n", bbt_test_now_ms() - t0);
        depth = max_hb_depth();
        fprintf(stderr, "deepest spool reported in a heartbeat: %" PRId64 "\n", depth);
        ASSERT_GE(depth, 80); /* 20 s at 200 ms: ~100 heartbeats, plus usage */

        last = agent_stop();
        wait_settled(last, 20000);
        assert_exactly_once(last);
        teardown();
}

TEST(path_cut_proxy)
{
        path_cut(BBT_TEST_PROXY_REFUSE);
}

TEST(path_blackhole_proxy)
{
        path_cut(BBT_TEST_PROXY_BLACKHOLE);
}

/* ---- 2. the spool's filesystem fills up while the path is cut ---- */

#define FS_SIZE "512k"
#define FS_LEFT_FREE (64 << 10) /* what the filler leaves to the spool */

static char fs_dir[320], filler_path[400];
static bool fs_mounted;

static void fs_unmount(void)
{
        if (fs_mounted && umount2(fs_dir, MNT_DETACH) == 0)
                fs_mounted = false;
}

/* The seqs the agent logged it could not store, in log order, into SEQS. */
static size_t unstored_seqs(int64_t *seqs, size_t max)
{
        char *text = bbt_test_slurp(env.agent_log), *p = text;
        size_t n = 0;

        while ((p = strstr(p, ": cannot store "))) {
                char *q = strstr(p, " seq "), *end;
                long long v;

                p += strlen(": cannot store ");
                if (!q || strchr(p, '\n') < q)
                        continue;
                errno = 0;
                v = strtoll(q + 5, &end, 10);
                if (errno || *end != ':' || v < 1)
                        continue;
                if (n < max)
                        seqs[n] = v;
                n++;
        }
        free(text);
        return n;
}

struct spool_probe {
        uint64_t found;
};

static int probe_cb(void *userdata, const struct bbt_spool_record *rec)
{
        (void)rec;
        ((struct spool_probe *)userdata)->found++;
        return 0;
}

static void report_cb(void *userdata, const char *path, uint64_t offset, const char *reason)
{
        fprintf(stderr, "spool report: %s at %llu: %s\n", path, (unsigned long long)offset, reason);
        if (!strstr(reason, "torn record at tail"))
                (*(int *)userdata)++;
}

static bool in_list(int64_t x, const int64_t *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (list[i] == x)
                        return true;
        return false;
}

TEST(spool_fs_full)
{
        struct agent_opts o = { .via_proxy = true, .hb = "100ms", .usage_flush = "1s", .keepalive = "5s",
                                .spool_extra = "max_size = 1M\n" };
        char spool_path[400], opts[64], buf[1024], reasons[512];
        struct statvfs vfs;
        int64_t lost[4096], last, missing_n, after, stored_at_cut;
        size_t n_lost, i;
        uint64_t t0;
        int fd, connected_before;

        setup(true);
        snprintf(fs_dir, sizeof(fs_dir), "%s/spoolfs", bbt_test_tmp_dir());
        if (mkdir(fs_dir, 0700) < 0)
                FAIL("mkdir %s: %s", fs_dir, strerror(errno));
        snprintf(opts, sizeof(opts), "size=%s,mode=0700", FS_SIZE);
        if (mount("tmpfs", fs_dir, "tmpfs", 0, opts) < 0) {
                int e = errno;

                bbt_test_broker_stop(&env.broker);
                if (e == EPERM || e == EACCES)
                        bbt_test_skip("cannot mount a %s tmpfs for the spool: %s (needs root or CAP_SYS_ADMIN)",
                                      FS_SIZE, strerror(e));
                FAIL("mount tmpfs on %s: %s", fs_dir, strerror(e));
        }
        fs_mounted = true;
        bbt_test_at_cleanup(fs_unmount);
        /* Something else fills the disk, leaving the spool FS_LEFT_FREE. */
        snprintf(filler_path, sizeof(filler_path), "%s/filler", fs_dir);
        if (statvfs(fs_dir, &vfs) < 0)
                FAIL("statvfs %s: %s", fs_dir, strerror(errno));
        fd = open(filler_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                FAIL("open %s: %s", filler_path, strerror(errno));
        {
                static char zeros[4096];
                uint64_t want = (uint64_t)vfs.f_bavail * vfs.f_frsize - FS_LEFT_FREE, done = 0;

                while (done < want)
                        if (write(fd, zeros, sizeof(zeros)) != (ssize_t)sizeof(zeros))
                                FAIL("write %s: %s", filler_path, strerror(errno));
                        else
                                done += sizeof(zeros);
        }
        close(fd);
        snprintf(spool_path, sizeof(spool_path), "%s/spool", fs_dir);
        o.spool_dir = spool_path;
        write_agent_conf(&o);
        agg_start();
        agent_start();
        wait_stream(10);
        stored_at_cut = raw_count();
        connected_before = bbt_test_count_in_file(env.agent_log, "connected to ");

        /* Offline: the spool grows (max_size 1M, above the filesystem's
         * 512k) until the filesystem is full. */
        bbt_test_proxy_cut(env.proxy);
        t0 = bbt_test_now_ms();
        fprintf(stderr, "path cut at %" PRId64 " stored; %d KiB left on the spool's filesystem\n", stored_at_cut,
                FS_LEFT_FREE >> 10);
        BBT_WAIT_FOR((alive(), bbt_test_count_in_file(env.agent_log, "No space left on device") > 0), 60000,
                     "the spool never hit ENOSPC");
        fprintf(stderr, "first ENOSPC %" PRIu64 " ms after the cut\n", bbt_test_now_ms() - t0);
        run_for(3000); /* still offline, still full */
        fprintf(stderr, "%d \"cannot store\" lines while offline\n",
                bbt_test_count_in_file(env.agent_log, ": cannot store "));

        /* Back online with the disk still full: the backlog goes out, new
         * messages (the birth, resend replies) cannot be stored. */
        bbt_test_proxy_restore(env.proxy);
        BBT_WAIT_FOR((alive(), bbt_test_count_in_file(env.agent_log, "connected to ") > connected_before), 10000,
                     "the agent did not reconnect within 10 s of the restore");
        run_for(4000);
        fprintf(stderr, "%d \"cannot store\" lines once back online with the disk full\n",
                bbt_test_count_in_file(env.agent_log, ": cannot store "));

        /* The disk is freed: everything flows again. */
        if (unlink(filler_path) < 0)
                FAIL("unlink %s: %s", filler_path, strerror(errno));
        t0 = bbt_test_now_ms();
        after = raw_max() + 10;
        wait_drained(after, 60000, "after the disk was freed");
        fprintf(stderr, "drained and settled %" PRIu64 " ms after the disk was freed\n", bbt_test_now_ms() - t0);
        last = agent_stop();
        wait_settled(last, 30000);

        /* What the agent could not store: it had taken a seq for each
         * (agent/produce.c bbt_produce_record), logged "cannot store", and counted
         * it in hb spool.dropped. */
        n_lost = unstored_seqs(lost, BBT_ELEMENTSOF(lost));
        fprintf(stderr, "the agent could not store %zu messages:", n_lost);
        for (i = 0; i < n_lost && i < 40; i++)
                fprintf(stderr, " %" PRId64, lost[i]);
        fprintf(stderr, "%s\n", n_lost > 40 ? " ..." : "");
        ASSERT_GT(n_lost, 0);
        ASSERT_LE(n_lost, BBT_ELEMENTSOF(lost));
        ASSERT(bbt_test_count_in_file(env.agent_log, "No space left on device") >= (int)n_lost);

        /* None of them is in the spool, and the spool is whole: every failed
         * append was cut back (docs/spool.md, "The disk is full"). */
        {
                struct bbt_spool_options so;
                struct bbt_spool_stats st;
                struct bbt_spool_range range;
                struct bbt_spool *sp;
                int bad = 0;

                bbt_spool_options_init(&so, spool_path);
                so.max_bytes = 1 << 20;
                ASSERT_OK(bbt_spool_open(&so, report_cb, &bad, &sp));
                bbt_spool_stats(sp, &st);
                fprintf(stderr, "spool after the test: %" PRIu64 " segments, %" PRIu64 " bytes, seqs %" PRIu64
                        "..%" PRIu64 ", corrupt %" PRIu64 ", dropped %" PRIu64 "\n",
                        st.segments, st.bytes, st.oldest_seq, st.last_seq, st.corrupt, st.dropped);
                ASSERT_EQ(bad, 0);
                ASSERT_EQ(st.corrupt, 0);
                ASSERT_EQ(st.dropped, 0); /* max_size was never reached */
                for (i = 0; i < n_lost; i++) {
                        struct spool_probe pr = { 0 };

                        ASSERT_OK(bbt_spool_read_range(sp, (uint64_t)lost[i], (uint64_t)lost[i], 1, probe_cb, &pr,
                                                       &range));
                        if (pr.found)
                                FAIL("seq %" PRId64 " was logged as not stored but is in the spool", lost[i]);
                }
                ASSERT_OK(bbt_spool_close(sp));
        }

        /* The aggregator: every seq that exists stored once, every missing
         * one exactly a seq the agent could not store, each in a loss row. */
        missing(last, buf, sizeof(buf), &missing_n);
        fprintf(stderr, "store: %" PRId64 " of 1..%" PRId64 " stored, missing %s\n", raw_count(), last, buf);
        ASSERT_EQ(raw_max(), last);
        ASSERT_EQ(raw_count() + missing_n, last);
        for (int64_t q = 1; q <= last; q++) {
                bool stored = bbt_test_db_int(env.store, 0,
                                              "SELECT count(*) FROM raw WHERE terminal_id = " TERM_SQL
                                              " AND seq = %" PRId64,
                                              q) == 1;
                bool in_loss = bbt_test_db_int(env.store, 0,
                                               "SELECT count(*) FROM loss WHERE %" PRId64
                                               " BETWEEN from_seq AND to_seq AND reason <> ''",
                                               q) > 0;

                if (!stored && !in_list(q, lost, n_lost))
                        FAIL("seq %" PRId64 " is missing at the aggregator but the agent stored it", q);
                if (!stored && !in_loss)
                        FAIL("seq %" PRId64 " is missing at the aggregator and not in a loss row", q);
        }
        for (i = 0; i < n_lost; i++)
                if (bbt_test_db_int(env.store, 0, "SELECT count(*) FROM raw WHERE terminal_id = " TERM_SQL
                                                  " AND seq = %" PRId64, lost[i]))
                        FAIL("seq %" PRId64 " was never stored by the agent but reached the aggregator", lost[i]);
        ASSERT_EQ(missing_n, (int64_t)n_lost);
        ASSERT_EQ(bbt_test_db_int(env.store, -1, "SELECT lost FROM terminal WHERE id = " TERM_SQL), (int64_t)n_lost);
        ASSERT_EQ(gap_rows(), 0);
        bbt_test_db_text(env.store, reasons, sizeof(reasons),
                         "SELECT group_concat(r, '; ') FROM (SELECT reason || ' x' || count(*) || ' rows, ' || "
                         "sum(to_seq - from_seq + 1) || ' seqs' AS r FROM loss GROUP BY reason)");
        fprintf(stderr, "loss rows by reason: %s\n", reasons);
        /* The agent's own count: hb spool.dropped (in memory: this run). */
        fprintf(stderr, "terminal.spool_dropped %" PRId64 "; last hb: %s\n",
                bbt_test_db_int(env.store, -1, "SELECT spool_dropped FROM terminal WHERE id = " TERM_SQL),
                bbt_test_db_text(env.store, buf, sizeof(buf),
                                 "SELECT json_extract(payload, '$.spool') FROM raw WHERE terminal_id = " TERM_SQL
                                 " AND channel = %d ORDER BY seq DESC LIMIT 1",
                                 (int)BBT_CH_HB));
        ASSERT_EQ(bbt_test_db_int(env.store, -1, "SELECT spool_dropped FROM terminal WHERE id = " TERM_SQL),
                  (int64_t)n_lost);
        fprintf(stderr, "alerts stored: %" PRId64 " (docs/spool.md says the agent alerts on a failed append)\n",
                bbt_test_db_int(env.store, 0, "SELECT count(*) FROM raw WHERE terminal_id = " TERM_SQL
                                              " AND channel = %d", (int)BBT_CH_ALERT));
        check_stale_losses();
        teardown();
        fs_unmount();
}

/* ---- 3. the agent killed -9 three times ---- */

TEST(agent_kill9_through_proxy)
{
        struct agent_opts o = { .via_proxy = true };
        const char *env_seed = getenv("BBT_TEST_SEED");
        unsigned seed = env_seed ? (unsigned)strtoul(env_seed, NULL, 0) : 20240917u;
        int64_t last, after;

        fprintf(stderr, "seed %u (BBT_TEST_SEED=N for another)\n", seed);
        setup(true);
        write_agent_conf(&o);
        agg_start();
        agent_start();
        wait_stream(5);
        for (int k = 0; k < 3; k++) {
                int run_ms = 500 + (int)(rand_r(&seed) % 3000), down_ms = 100 + (int)(rand_r(&seed) % 900);

                run_for(run_ms);
                bbt_test_daemon_kill9(&env.agent);
                fprintf(stderr, "kill %d: SIGKILL after %d ms of running, restart after %d ms; %" PRId64
                        " stored, max seq %" PRId64 "\n",
                        k + 1, run_ms, down_ms, raw_count(), raw_max());
                bbt_test_sleep_ms(down_ms);
                agent_start();
        }
        after = raw_max() + 5;
        wait_drained(after, 30000, "after the last restart");
        last = agent_stop();
        wait_settled(last, 20000);
        assert_exactly_once(last);
        teardown();
}

/* ---- 4. the broker killed -9 under the stream ---- */

TEST(broker_kill9_with_agent)
{
        struct agent_opts o = { .via_proxy = false, .keepalive = "5s" };
        int connected_before, agg_connected_before;
        int64_t at_kill, last, after;
        uint64_t t0;

        setup(false);
        write_agent_conf(&o);
        agg_start();
        agent_start();
        wait_stream(20);
        run_for(700);
        at_kill = raw_max();
        connected_before = bbt_test_count_in_file(env.agent_log, "connected to ");
        agg_connected_before = bbt_test_count_in_file(env.agg_log, "broker: connected");
        bbt_test_broker_kill(&env.broker);
        fprintf(stderr, "broker killed at seq %" PRId64 " stored\n", at_kill);
        run_for(2000);
        bbt_test_broker_restart(&env.broker);
        t0 = bbt_test_now_ms();
        BBT_WAIT_FOR((alive(), bbt_test_count_in_file(env.agent_log, "connected to ") > connected_before &&
                                        bbt_test_count_in_file(env.agg_log, "broker: connected") > agg_connected_before),
                     15000, "the agent or the aggregator did not reconnect");
        fprintf(stderr, "both reconnected %" PRIu64 " ms after the restart\n", bbt_test_now_ms() - t0);
        after = raw_max() + 10;
        wait_drained(after, 40000, "after the broker restart");
        last = agent_stop();
        wait_settled(last, 20000);
        assert_exactly_once(last);
        teardown();
}

/* ---- 5. the reproduction: kill -9, the spool's tail zeroed, restart on the same boot ---- */

/* Zeroes the last N bytes of the newest segment (what a power cut with an
 * unsynced tail can leave), as a test would with dd. */
static void zero_tail(long n)
{
        char path[700] = "", best[64] = "";
        struct dirent *de;
        struct stat st;
        DIR *d = opendir(env.spool_dir);
        char zeros[4096] = { 0 };
        int fd;

        ASSERT(d);
        while ((de = readdir(d)))
                if (strlen(de->d_name) == 24 && strstr(de->d_name, ".seg") && strcmp(de->d_name, best) > 0)
                        memcpy(best, de->d_name, 25); /* 24 characters and the NUL */
        closedir(d);
        ASSERT(best[0]);
        snprintf(path, sizeof(path), "%s/%s", env.spool_dir, best);
        ASSERT_OK(stat(path, &st));
        ASSERT_GT(st.st_size, n + 8);
        fd = open(path, O_WRONLY);
        ASSERT(fd >= 0);
        for (long off = st.st_size - n; off < st.st_size; off += (long)sizeof(zeros))
                ASSERT_EQ(pwrite(fd, zeros, (size_t)(st.st_size - off < (long)sizeof(zeros) ? st.st_size - off
                                                                                            : (long)sizeof(zeros)),
                                 off) > 0, 1);
        close(fd);
}

/* Online or OFFLINE (the path cut, so the zeroed records were never sent):
 * no seq is reused (no conflict), everything missing is skipped or lost
 * with a reason, and with the agent offline the zeroed records that existed
 * are counted lost. */
static void zeroed_tail(bool offline)
{
        struct agent_opts o = { .via_proxy = true, .hb = "100ms", .usage_flush = "100ms" };
        int64_t last, lost, skipped, before;

        setup(true);
        write_agent_conf(&o);
        agg_start();
        agent_start();
        wait_stream(5);
        if (offline)
                bbt_test_proxy_cut(env.proxy);
        run_for(5000);
        before = raw_max();
        bbt_test_daemon_kill9(&env.agent);
        zero_tail(4096);
        if (offline)
                bbt_test_proxy_restore(env.proxy);
        agent_start();
        wait_drained(before + 5, 30000, "after the restart");
        last = agent_stop();
        wait_settled(last, 30000);
        lost = bbt_test_db_int(env.store, 0, "SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM loss WHERE kind = 0");
        skipped = skipped_seqs();
        fprintf(stderr, "%s: stored %" PRId64 " of 1..%" PRId64 ", %" PRId64 " lost, %" PRId64 " skipped\n",
                offline ? "offline" : "online", raw_count(), last, lost, skipped);
        ASSERT_EQ(bbt_test_db_int(env.store, -1, "SELECT count(*) FROM conflict"), 0);
        ASSERT_EQ(raw_count() + lost + skipped, last);
        ASSERT_EQ(gap_rows(), 0);
        ASSERT_EQ(bbt_test_db_int(env.store, -1, "SELECT count(*) FROM raw WHERE seq IN (SELECT from_seq FROM loss)"), 0);
        if (offline) {
                /* The zeroed records existed: lost, with the agent's reason (meta's appended mark
                 * or the spool's segment witnesses them), and about 4 KiB of them at most. */
                ASSERT_GT(lost, 0);
                ASSERT_LE(lost, 4096 / 150);
                ASSERT_EQ(bbt_test_db_int(env.store, -1,
                                          "SELECT count(*) FROM loss WHERE kind = 0 AND reason NOT LIKE '%%agent''s spool%%'"),
                          0);
        } else {
                ASSERT_EQ(lost, 0); /* they had been published */
        }
        /* Skipped: only numbers the agent itself said it jumped over. */
        ASSERT_LE(skipped, agent_skipped_seqs());
        teardown();
}

TEST(zeroed_tail_same_boot_online)
{
        zeroed_tail(false);
}

TEST(zeroed_tail_same_boot_offline)
{
        zeroed_tail(true);
}
