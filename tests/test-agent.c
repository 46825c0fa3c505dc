/* The bbt-agent daemon end to end: the real binary against a real mosquitto on 127.0.0.1, watched by a subscriber on bbt/v1/#. */
/* bbt-test: label=integration timeout=120 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sched.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bbt/mqtt.h"
#include "bbt/protocol.h"
#include "broker.h"
#include "daemon.h"
#include "fixture-tree.h"
#include "pjlink-sim.h"
#include "spool.h"
#include "test.h"

/*
 * Every test runs in a private temporary directory (agent.conf, state/,
 * spool/, the agent's log), starts the harness's broker, a subscriber on
 * bbt/v1/# that records every message, and bbt-agent as a child process
 * (PR_SET_PDEATHSIG, and killed by an exit handler; tests/daemon.h). Every message the
 * subscriber receives on an agent channel must decode (bbt_msg_decode) on the
 * channel its topic names. On failure the agent's log is printed.
 *
 * Environment: BBT_TEST_VERBOSE=1 prints every received message;
 * BBT_TEST_SEED=N fixes the seed of kill9_random_20_trials.
 */

#define COUNTY "510107"
#define SCHOOL "3151010001"
#define TERMINAL "r101"
#define PREFIX "bbt/v1/" COUNTY "/" SCHOOL "/" TERMINAL "/"
#define CMD_TOPIC PREFIX "cmd"
#define PROBE_TOPIC "bbt-test/probe" /* outside bbt/v1/#: proves a subscription is in place */

/* SPEC "Sessions": when the broker itself crashes (no persistence), the will
 * it held for the live session is lost, and "that one seq counts as lost".
 * 0: broker_outage_30s tolerates exactly that seq (checked against the
 * spool: it must be the will of the session the broker died under) and
 * says so; 1: it requires every seq, as if the agent filled that gap. */
#define STRICT_LOST_WILL 1

/* ---- the temporary directory, cleanup ---- */

static char tmp_dir[256], conf_path[320], state_dir[320], spool_dir[320], log_path[320];

/* How much of each log a failing case prints. */
#define DUMP_MAX (96 * 1024)

static void env_init(void)
{
        snprintf(tmp_dir, sizeof(tmp_dir), "%s", bbt_test_tmp_init("agent"));
        snprintf(conf_path, sizeof(conf_path), "%s/agent.conf", tmp_dir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", tmp_dir);
        snprintf(spool_dir, sizeof(spool_dir), "%s/spool", tmp_dir);
        snprintf(log_path, sizeof(log_path), "%s/agent.log", tmp_dir);
        if (mkdir(state_dir, 0700) < 0 || mkdir(spool_dir, 0700) < 0)
                FAIL("mkdir in %s: %s", tmp_dir, strerror(errno));
        bbt_test_dump_tail_on_failure(log_path, DUMP_MAX);
}

/* Failures collected to be reported together at the end of a test, so that
 * one small deviation does not hide the checks after it. */
static char deferred[4096];

__attribute__((format(printf, 1, 2))) static void defer_fail(const char *fmt, ...)
{
        size_t n = strlen(deferred);
        va_list ap;

        if (n + 4 >= sizeof(deferred))
                return;
        deferred[n++] = '\n';
        deferred[n++] = ' ';
        deferred[n++] = ' ';
        va_start(ap, fmt);
        vsnprintf(deferred + n, sizeof(deferred) - n, fmt, ap);
        va_end(ap);
        fprintf(stderr, "deferred failure: %s\n", deferred + n);
}

static void finish_deferred(void)
{
        if (deferred[0])
                FAIL("%s", deferred);
}

/* ---- the configuration file ---- */

struct conf {
        int port;
        const char *hb;          /* heartbeat_interval; NULL: 200ms */
        const char *usage_flush; /* NULL: 500ms */
        const char *broker_extra, *agent_extra, *spool_extra; /* lines added to the sections */
        const char *root;        /* [agent] root; NULL: / */
};

static void write_conf(const char *path, const struct conf *c)
{
        FILE *f = fopen(path, "we");

        if (!f)
                FAIL("open %s: %s", path, strerror(errno));
        fprintf(f,
                "# written by tests/test-agent.c\n"
                "[identity]\n"
                "county = " COUNTY "\n"
                "school = " SCHOOL "\n"
                "terminal = " TERMINAL "\n"
                "\n"
                "[broker]\n"
                "host = 127.0.0.1\n"
                "port = %d\n"
                "backoff_min = 200ms\n"
                "backoff_max = 1s\n"
                "%s"
                "\n"
                "[agent]\n"
                "state_dir = %s\n"
                "root = %s\n"
                "log_level = debug\n"
                "heartbeat_interval = %s\n"
                "usage_flush = %s\n"
                "%s"
                "\n"
                "[spool]\n"
                "dir = %s\n"
                "%s",
                c->port, c->broker_extra ? c->broker_extra : "", state_dir, c->root ? c->root : "/",
                c->hb ? c->hb : "200ms",
                c->usage_flush ? c->usage_flush : "500ms", c->agent_extra ? c->agent_extra : "", spool_dir,
                c->spool_extra ? c->spool_extra : "");
        /* The machine's own hardware stays out of a test unless it asks for a
         * driver: its devices would add messages the test does not expect. */
        if (!c->spool_extra || !strstr(c->spool_extra, "[input]"))
                fputs("\n[input]\nenabled = no\n\n[display]\nenabled = no\n\n[audio]\nenabled = no\n", f);
        if (!c->spool_extra || !strstr(c->spool_extra, "[peripherals]"))
                fputs("\n[peripherals]\nenabled = no\n", f);
        if (fclose(f) != 0)
                FAIL("write %s: %s", path, strerror(errno));
}

/* The 1-based number of the first line of PATH containing NEEDLE. */
static int line_of(const char *path, const char *needle)
{
        char line[1024];
        int n = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                FAIL("open %s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f)) {
                n++;
                if (strstr(line, needle)) {
                        fclose(f);
                        return n;
                }
        }
        fclose(f);
        FAIL("%s has no line with \"%s\"", path, needle);
}

/* ---- the subscriber ---- */

/* One message received. Agent channels are decoded at once (failing the test
 * if they do not); a few fields are kept for the checks. */
struct rx {
        char topic[BBT_TOPIC_MAX + 16];
        enum bbt_channel ch;
        char *payload;
        size_t len;
        bool retain;
        uint64_t at; /* bbt_test_now_ms() at receipt */
        int64_t seq, ts;
        uint32_t boot;
        /* state */
        bool online;
        enum bbt_state_reason reason;
        /* hb */
        int64_t depth, dropped;
        /* cmd/reply */
        char id[72];
        bool ok;
        /* alert */
        char code[40];
        enum bbt_alert_state alert_state;
};

struct sub {
        const char *name;
        struct bbt_mqtt *m;
        struct rx *rx;
        size_t n, cap;
        int connects, disconnects;
        unsigned probes;
        bool closed;
};

static uv_loop_t loop;
static int cmd_seq;

static void sub_on_connect(void *userdata, bool session_present)
{
        struct sub *s = userdata;

        s->connects++;
}

static void sub_on_disconnect(void *userdata, int error, const char *reason)
{
        struct sub *s = userdata;

        s->disconnects++;
        if (getenv("BBT_TEST_VERBOSE") || s->disconnects < 3)
                fprintf(stderr, "[%s] disconnected: %s\n", s->name, reason);
}

static void sub_on_message(void *userdata, const char *topic, const void *payload, size_t len, int qos,
                           bool retain)
{
        struct sub *s = userdata;
        struct bbt_topic t;
        struct bbt_error err;
        struct bbt_msg m;
        char errtext[300];
        struct rx *r;
        int rc;

        if (strcmp(topic, PROBE_TOPIC) == 0) {
                s->probes++;
                return;
        }
        if (bbt_topic_parse(topic, &t, errtext, sizeof(errtext)) < 0)
                FAIL("[%s] received a message on an invalid topic %s: %s", s->name, topic, errtext);
        if (strcmp(t.county, COUNTY) != 0 || strcmp(t.school, SCHOOL) != 0 || strcmp(t.terminal, TERMINAL) != 0)
                FAIL("[%s] topic %s: expected terminal " COUNTY "/" SCHOOL "/" TERMINAL, s->name, topic);
        if (s->n == s->cap) {
                s->cap = s->cap ? 2 * s->cap : 256;
                s->rx = realloc(s->rx, s->cap * sizeof(*s->rx));
                if (!s->rx)
                        FAIL("out of memory");
        }
        r = &s->rx[s->n];
        memset(r, 0, sizeof(*r));
        snprintf(r->topic, sizeof(r->topic), "%s", topic);
        r->ch = t.channel;
        r->payload = malloc(len + 1);
        if (!r->payload)
                FAIL("out of memory");
        memcpy(r->payload, payload, len);
        r->payload[len] = '\0';
        r->len = len;
        r->retain = retain;
        r->at = bbt_test_now_ms();
        r->seq = -1;
        if (getenv("BBT_TEST_VERBOSE"))
                fprintf(stderr, "[%s] %s%s %.*s\n", s->name, topic, retain ? " (retained)" : "", (int)len,
                        (const char *)payload);
        if (t.channel == BBT_CH_CMD) {
                /* The test's own commands (some deliberately invalid). */
                s->n++;
                return;
        }
        rc = bbt_msg_decode(t.channel, payload, len, &m, &err);
        if (rc < 0)
                FAIL("[%s] message on %s does not decode as %s: %s (%s)\npayload: %.*s", s->name, topic,
                     bbt_channel_name(t.channel), bbt_error_format(&err, errtext, sizeof(errtext)), strerror(-rc),
                     (int)len, (const char *)payload);
        r->seq = m.seq;
        r->ts = m.ts;
        r->boot = m.boot;
        switch (t.channel) {
        case BBT_CH_STATE:
                r->online = m.body.state.online;
                r->reason = m.body.state.reason;
                break;
        case BBT_CH_HB:
                r->depth = m.body.hb.spool_depth;
                r->dropped = m.body.hb.spool_dropped;
                break;
        case BBT_CH_CMD_REPLY:
                snprintf(r->id, sizeof(r->id), "%s", m.body.reply.id);
                r->ok = m.body.reply.ok;
                break;
        case BBT_CH_ALERT:
                snprintf(r->code, sizeof(r->code), "%s", m.body.alert.code);
                r->alert_state = m.body.alert.state;
                break;
        default:
                break;
        }
        bbt_msg_free(&m);
        s->n++;
}

static void sub_on_closed(void *userdata)
{
        ((struct sub *)userdata)->closed = true;
}

static const struct bbt_mqtt_callbacks sub_callbacks = {
        .on_connect = sub_on_connect,
        .on_disconnect = sub_on_disconnect,
        .on_message = sub_on_message,
};

#define WAIT_FOR(cond, ms, ...) BBT_WAIT_STEP(cond, ms, bbt_test_run_until(&loop, NULL, NULL, 10), __VA_ARGS__)

static void run_for(int ms)
{
        bbt_test_run_until(&loop, NULL, NULL, ms);
}

/* A subscriber on PATTERNS (NULL-terminated) plus the probe topic. */
static void sub_start(struct sub *s, const char *name, int port, const char *const *patterns)
{
        struct bbt_mqtt_options o;
        char client_id[64];

        memset(s, 0, sizeof(*s));
        s->name = name;
        snprintf(client_id, sizeof(client_id), "bbt-test-%s-%ld", name, (long)getpid());
        bbt_mqtt_options_init(&o);
        o.host = "127.0.0.1";
        o.port = port;
        o.client_id = client_id;
        o.backoff_min_ms = 100;
        o.backoff_max_ms = 500;
        o.connect_timeout_ms = 5000;
        ASSERT_OK(bbt_mqtt_new(&loop, &o, &sub_callbacks, s, &s->m));
        for (; *patterns; patterns++)
                ASSERT_OK(bbt_mqtt_subscribe(s->m, *patterns, 1));
        ASSERT_OK(bbt_mqtt_subscribe(s->m, PROBE_TOPIC, 1));
        ASSERT_OK(bbt_mqtt_start(s->m));
}

/* Waits until S is connected and its subscriptions are in place: a probe it
 * publishes comes back (the broker handles one connection's packets in order). */
static void sub_sync(struct sub *s)
{
        uint64_t deadline = bbt_test_now_ms() + 15000;
        unsigned before;

        for (;;) {
                WAIT_FOR(bbt_mqtt_is_connected(s->m), 15000, "[%s] not connected", s->name);
                before = s->probes;
                if (bbt_mqtt_publish(s->m, PROBE_TOPIC, "probe", 5, 1, false, NULL) == 0) {
                        uint64_t until = bbt_test_now_ms() + 3000;

                        while (s->probes == before && bbt_test_now_ms() < until)
                                run_for(10);
                        if (s->probes > before)
                                return;
                }
                if (bbt_test_now_ms() > deadline)
                        FAIL("[%s]: subscriptions not confirmed within 15 s", s->name);
                run_for(50);
        }
}

static void sub_close(struct sub *s)
{
        size_t i;

        if (s->m) {
                bbt_mqtt_close(s->m, sub_on_closed);
                s->m = NULL;
                WAIT_FOR(s->closed, 5000, "[%s] close", s->name);
        }
        for (i = 0; i < s->n; i++)
                free(s->rx[i].payload);
        free(s->rx);
        s->rx = NULL;
        s->n = s->cap = 0;
}

static const char *const all_topics[] = { "bbt/v1/#", NULL };

/* Publishes a command from the "aggregator" with its own envelope; ARGS is a
 * JSON object or NULL. */
static void send_cmd(struct sub *s, const char *id, const char *op, const char *args)
{
        char json[1024];
        int n;

        n = snprintf(json, sizeof(json), "{\"v\":1,\"seq\":%d,\"ts\":%lld,\"boot\":7,\"id\":\"%s\",\"op\":\"%s\"%s%s}",
                     ++cmd_seq, (long long)bbt_test_wall_ms(), id, op, args ? ",\"args\":" : "", args ? args : "");
        ASSERT_OK(bbt_mqtt_publish(s->m, CMD_TOPIC, json, (size_t)n, 1, false, NULL));
}

static void send_raw_cmd(struct sub *s, const char *json)
{
        ASSERT_OK(bbt_mqtt_publish(s->m, CMD_TOPIC, json, strlen(json), 1, false, NULL));
}

/* Decodes a received agent message again, for the fields not kept in struct rx. */
static void decode_rx(const struct rx *r, struct bbt_msg *m)
{
        struct bbt_error err;
        char errtext[300];

        if (bbt_msg_decode(r->ch, r->payload, r->len, m, &err) < 0)
                FAIL("%s does not decode: %s: %s", r->topic, bbt_error_format(&err, errtext, sizeof(errtext)),
                     r->payload);
}

/* The index of the first message at or after FROM on channel CH (BBT_CH_INVALID:
 * any) for which PRED (may be NULL) holds, or -1. */
static long find_rx(const struct sub *s, size_t from, enum bbt_channel ch, bool (*pred)(const struct rx *, const void *),
                    const void *arg)
{
        size_t i;

        for (i = from; i < s->n; i++)
                if ((ch == BBT_CH_INVALID || s->rx[i].ch == ch) && (!pred || pred(&s->rx[i], arg)))
                        return (long)i;
        return -1;
}

static size_t count_rx(const struct sub *s, size_t from, enum bbt_channel ch)
{
        size_t i, n = 0;

        for (i = from; i < s->n; i++)
                if (s->rx[i].ch == ch)
                        n++;
        return n;
}

static bool is_birth(const struct rx *r, const void *arg)
{
        return r->online && (!arg || r->boot > *(const uint32_t *)arg);
}

static bool is_reply_to(const struct rx *r, const void *id)
{
        return strcmp(r->id, id) == 0;
}

static bool is_shutdown(const struct rx *r, const void *boot)
{
        return !r->online && r->reason == BBT_REASON_SHUTDOWN && (!boot || r->boot == *(const uint32_t *)boot);
}

static bool is_lost(const struct rx *r, const void *boot)
{
        return !r->online && r->reason == BBT_REASON_LOST && (!boot || r->boot == *(const uint32_t *)boot);
}

/* An hb sent live after the backlog: seq above *(int64_t *)after, spool empty. */
static bool is_live_hb(const struct rx *r, const void *after)
{
        return r->seq > *(const int64_t *)after && r->depth == 0;
}

static int64_t max_seq(const struct sub *s)
{
        int64_t max = 0;
        size_t i;

        for (i = 0; i < s->n; i++)
                if (s->rx[i].ch != BBT_CH_CMD && s->rx[i].seq > max)
                        max = s->rx[i].seq;
        return max;
}

/* ---- the agent process ---- */

static const char *agent_exe(void)
{
        static char path[512];

        return bbt_test_exe("agent", "bbt-agent", path, sizeof(path));
}

static void agent_start_with(struct bbt_test_daemon *a, const char *conf, const char *log)
{
        char *argv[] = { (char *)agent_exe(), (char *)"-c", (char *)conf, NULL };

        memset(a, 0, sizeof(*a));
        bbt_test_dump_tail_on_failure(log, DUMP_MAX);
        bbt_test_daemon_start(a, "bbt-agent", argv, log);
}

static void agent_start(struct bbt_test_daemon *a)
{
        agent_start_with(a, conf_path, log_path);
}

static bool agent_exited_cb(void *arg)
{
        return bbt_test_daemon_exited(arg);
}

/* Runs the loop until the agent exits or TIMEOUT_MS; returns the elapsed ms or -1. */
static long agent_wait(struct bbt_test_daemon *a, int timeout_ms)
{
        uint64_t t0 = bbt_test_now_ms();

        if (!bbt_test_run_until(&loop, agent_exited_cb, a, timeout_ms))
                return -1;
        return (long)(bbt_test_now_ms() - t0);
}

/* SIGTERM: the agent must exit 0 within 5 s (the loop runs meanwhile). */
static void agent_stop(struct bbt_test_daemon *a)
{
        long ms;

        bbt_test_daemon_alive(a);
        ASSERT_OK(kill(a->pid, SIGTERM));
        ms = agent_wait(a, 8000);
        if (ms < 0)
                FAIL("bbt-agent did not exit within 8 s of SIGTERM (expected: within 5 s)");
        fprintf(stderr, "bbt-agent stopped %ld ms after SIGTERM: %s\n", ms, bbt_test_status_text(a->status));
        if (!WIFEXITED(a->status) || WEXITSTATUS(a->status) != 0)
                FAIL("bbt-agent after SIGTERM: expected exit 0, got %s", bbt_test_status_text(a->status));
        ASSERT_LE(ms, 5000);
}

/* SIGKILL; the agent must still have been running. */
static void agent_kill9(struct bbt_test_daemon *a)
{
        bbt_test_daemon_alive(a);
        bbt_test_daemon_kill9(a);
}

/* What a sanitizer build would print about the agent. */
static void check_log_clean(const char *path)
{
        static const char *const bad[] = { "AddressSanitizer", "LeakSanitizer", "runtime error:", "internal:", NULL };
        size_t i;

        for (i = 0; bad[i]; i++)
                if (bbt_test_count_in_file(path, bad[i]))
                        FAIL("%s mentions \"%s\"", path, bad[i]);
}

/* ---- sequence checks ---- */

static int cmp_rx_ptr(const void *x, const void *y)
{
        const struct rx *a = *(const struct rx *const *)x, *b = *(const struct rx *const *)y;

        if (a->seq != b->seq)
                return a->seq < b->seq ? -1 : 1;
        return a->at < b->at ? -1 : a->at > b->at;
}

/* A will and the clean stop of the same session share their seq (SPEC "Sessions"). */
static bool will_twins(const struct rx *a, const struct rx *b)
{
        return a->ch == BBT_CH_STATE && b->ch == BBT_CH_STATE && !a->online && !b->online && a->boot == b->boot &&
               a->ts == b->ts && a->reason != b->reason && a->reason != BBT_REASON_NONE &&
               b->reason != BBT_REASON_NONE;
}

static bool in_list(int64_t x, const int64_t *list, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                if (list[i] == x)
                        return true;
        return false;
}

struct seq_result {
        int64_t max;
        size_t n_missing;
        int64_t missing[256];
        size_t dups; /* repeated deliveries (identical) */
};

/* Checks every agent message S received: no seq carries two different
 * messages (except will/shutdown twins), boot never decreases in seq order,
 * and reports the seqs in 1..max never received. */
static void seq_scan(const struct sub *s, struct seq_result *res)
{
        const struct rx **v = calloc(s->n + 1, sizeof(*v));
        size_t i, n = 0;
        int64_t expect = 1;

        if (!v)
                FAIL("out of memory");
        memset(res, 0, sizeof(*res));
        for (i = 0; i < s->n; i++)
                if (s->rx[i].ch != BBT_CH_CMD)
                        v[n++] = &s->rx[i];
        qsort(v, n, sizeof(*v), cmp_rx_ptr);
        for (i = 0; i < n; i++) {
                const struct rx *r = v[i];

                if (r->seq < 1)
                        FAIL("%s: seq %lld: agent seqs start at 1: %s", r->topic, (long long)r->seq, r->payload);
                if (i > 0 && v[i - 1]->seq == r->seq) {
                        size_t j;

                        /* Against every earlier message with this seq. */
                        for (j = i; j-- > 0 && v[j]->seq == r->seq;) {
                                const struct rx *o = v[j];

                                if ((o->len == r->len && memcmp(o->payload, r->payload, r->len) == 0 &&
                                     strcmp(o->topic, r->topic) == 0) ||
                                    will_twins(o, r))
                                        continue;
                                FAIL("seq %lld REUSED: two different messages\n  %s %s\n  %s %s", (long long)r->seq,
                                     o->topic, o->payload, r->topic, r->payload);
                        }
                        res->dups++;
                        continue;
                }
                if (i > 0 && r->boot < v[i - 1]->boot)
                        FAIL("boot decreases in seq order: seq %lld has boot %u, seq %lld has boot %u\n  %s\n  %s",
                             (long long)v[i - 1]->seq, v[i - 1]->boot, (long long)r->seq, r->boot, v[i - 1]->payload,
                             r->payload);
                for (; expect < r->seq; expect++)
                        if (res->n_missing < sizeof(res->missing) / sizeof(res->missing[0]))
                                res->missing[res->n_missing++] = expect;
                        else
                                res->n_missing++;
                expect = r->seq + 1;
                res->max = r->seq;
        }
        free(v);
}

static void print_missing(const struct seq_result *res)
{
        size_t i;

        fprintf(stderr, "missing seqs (%zu of 1..%lld):", res->n_missing, (long long)res->max);
        for (i = 0; i < res->n_missing && i < sizeof(res->missing) / sizeof(res->missing[0]); i++)
                fprintf(stderr, " %lld", (long long)res->missing[i]);
        fprintf(stderr, "%s\n", res->n_missing > i ? " ..." : "");
}

/* Every seq 1..max received except those in ALLOWED; returns max. */
static int64_t check_seqs(const struct sub *s, const int64_t *allowed, size_t n_allowed)
{
        struct seq_result res;
        size_t i, bad = 0;

        seq_scan(s, &res);
        for (i = 0; i < res.n_missing && i < sizeof(res.missing) / sizeof(res.missing[0]); i++)
                if (!in_list(res.missing[i], allowed, n_allowed))
                        bad++;
        if (res.n_missing > sizeof(res.missing) / sizeof(res.missing[0]))
                bad += res.n_missing - sizeof(res.missing) / sizeof(res.missing[0]);
        fprintf(stderr, "seqs: 1..%lld, %zu repeated deliveries, %zu missing (%zu allowed)\n", (long long)res.max,
                res.dups, res.n_missing, res.n_missing - bad);
        if (bad) {
                print_missing(&res);
                FAIL("expected every seq 1..%lld to arrive, %zu never did", (long long)res.max, bad);
        }
        return res.max;
}

/* The seq ranges in 1..max never received, in *RET (malloc'd); returns how many. */
static size_t missing_ranges(const struct sub *s, int64_t (**ret)[2])
{
        const struct rx **v = calloc(s->n + 1, sizeof(*v));
        int64_t(*r)[2] = NULL, expect = 1;
        size_t i, n = 0, nr = 0, cap = 0;

        ASSERT(v);
        for (i = 0; i < s->n; i++)
                if (s->rx[i].ch != BBT_CH_CMD)
                        v[n++] = &s->rx[i];
        qsort(v, n, sizeof(*v), cmp_rx_ptr);
        for (i = 0; i < n; i++) {
                if (v[i]->seq > expect) {
                        if (nr == cap) {
                                cap = cap ? 2 * cap : 16;
                                r = realloc(r, cap * sizeof(*r));
                                ASSERT(r);
                        }
                        r[nr][0] = expect;
                        r[nr][1] = v[i]->seq - 1;
                        nr++;
                }
                if (v[i]->seq >= expect)
                        expect = v[i]->seq + 1;
        }
        free(v);
        *ret = r;
        return nr;
}

/* Asks the running agent A (through S) with resend for every seq range S
 * never received, and requires its reply to account for each seq: resent,
 * withheld (the live session's will), or named in result.missing with a
 * reason in REASONS (space-separated, e.g. "skipped damaged"). Returns the
 * number of seqs named missing; COUNTS (may be NULL) gets them per reason, in
 * the order of REASONS. Fails on anything unexplained. */
static int64_t explain_missing(struct sub *s, struct bbt_test_daemon *a, const char *reasons, int64_t *counts)
{
        int64_t(*ranges)[2] = NULL, named = 0;
        size_t n = missing_ranges(s, &ranges);

        for (size_t k = 0; k < n; k++) {
                int64_t from = ranges[k][0], to = ranges[k][1];
                bool *seen = calloc((size_t)(to - from + 1), sizeof(bool));
                char id[64], args[128];
                cJSON *root, *result, *item;
                size_t mark = s->n;
                long ir;

                ASSERT(seen);
                snprintf(id, sizeof(id), "t-explain-%zu", k);
                snprintf(args, sizeof(args), "{\"from\":%lld,\"to\":%lld}", (long long)from, (long long)to);
                send_cmd(s, id, "resend", args);
                WAIT_FOR((bbt_test_daemon_alive(a), find_rx(s, mark, BBT_CH_CMD_REPLY, is_reply_to, id) >= 0), 10000,
                         "no reply to resend %s", args);
                run_for(200); /* what it republished, sent before the reply */
                ir = find_rx(s, mark, BBT_CH_CMD_REPLY, is_reply_to, id);
                root = cJSON_Parse(s->rx[ir].payload);
                ASSERT(root);
                result = cJSON_GetObjectItem(root, "result");
                for (size_t i = mark; i < s->n; i++)
                        if (s->rx[i].ch != BBT_CH_CMD && s->rx[i].seq >= from && s->rx[i].seq <= to)
                                seen[s->rx[i].seq - from] = true;
                cJSON_ArrayForEach(item, cJSON_GetObjectItem(result, "withheld")) {
                        int64_t w = (int64_t)cJSON_GetNumberValue(item);

                        if (w >= from && w <= to)
                                seen[w - from] = true;
                }
                cJSON_ArrayForEach(item, cJSON_GetObjectItem(result, "missing")) {
                        int64_t f = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(item, "from"));
                        int64_t t = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(item, "to"));
                        const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(item, "reason"));
                        const char *at = why ? strstr(reasons, why) : NULL;

                        if (!at || (at > reasons && at[-1] != ' ') || (at[strlen(why)] && at[strlen(why)] != ' '))
                                FAIL("resend %s: missing %lld..%lld with reason %s (expected one of: %s): %s", args,
                                     (long long)f, (long long)t, why ? why : "(none)", reasons, s->rx[ir].payload);
                        /* A skipped range is named whole, also beyond the request, and
                         * other skipped ranges may come along. */
                        if (strcmp(why, "skipped") == 0 && (t < from || f > to))
                                continue;
                        if (f > t || ((f < from || t > to) && strcmp(why, "skipped") != 0))
                                FAIL("resend %s: missing %lld..%lld outside the range: %s", args, (long long)f,
                                     (long long)t, s->rx[ir].payload);
                        f = f < from ? from : f;
                        t = t > to ? to : t;
                        for (int64_t q = f; q <= t; q++) {
                                if (seen[q - from])
                                        FAIL("resend %s: seq %lld named missing but also received or withheld: %s",
                                             args, (long long)q, s->rx[ir].payload);
                                seen[q - from] = true;
                        }
                        named += t - f + 1;
                        if (counts) {
                                int idx = 0;

                                for (const char *p = reasons; p < at; p++)
                                        idx += *p == ' ';
                                counts[idx] += t - f + 1;
                        }
                }
                for (int64_t q = from; q <= to; q++)
                        if (!seen[q - from])
                                FAIL("resend %s: seq %lld neither resent nor named by the agent: %s", args,
                                     (long long)q, s->rx[ir].payload);
                cJSON_Delete(root);
                free(seen);
        }
        free(ranges);
        fprintf(stderr, "%zu missing ranges, %lld seqs named by the agent (%s)\n", n, (long long)named, reasons);
        return named;
}

/* Every seq 1..max received but for exactly NAMED of them (named missing by
 * the agent itself, see explain_missing()); returns max. */
static int64_t check_seqs_named(const struct sub *s, int64_t named)
{
        struct seq_result res;

        seq_scan(s, &res);
        fprintf(stderr, "seqs: 1..%lld, %zu repeated deliveries, %zu missing, %lld named by the agent\n",
                (long long)res.max, res.dups, res.n_missing, (long long)named);
        if ((int64_t)res.n_missing != named) {
                print_missing(&res);
                FAIL("%zu seqs never arrived, the agent named %lld", res.n_missing, (long long)named);
        }
        return res.max;
}

/* ---- the spool, read directly ---- */

struct lookup {
        bool found;
        char topic[BBT_SPOOL_TOPIC_MAX + 1];
        char payload[BBT_SPOOL_PAYLOAD_MAX + 1];
        uint8_t flags;
};

static int lookup_cb(void *userdata, const struct bbt_spool_record *rec)
{
        struct lookup *l = userdata;

        l->found = true;
        l->flags = rec->flags;
        snprintf(l->topic, sizeof(l->topic), "%s", rec->topic);
        memcpy(l->payload, rec->payload, rec->payload_len);
        l->payload[rec->payload_len] = '\0';
        return 0;
}

/* Reads record SEQ from the spool of a stopped agent. */
static bool spool_lookup(uint64_t seq, struct lookup *l)
{
        struct bbt_spool_options so;
        struct bbt_spool_range range;
        struct bbt_spool *sp;

        memset(l, 0, sizeof(*l));
        bbt_spool_options_init(&so, spool_dir);
        ASSERT_OK(bbt_spool_open(&so, NULL, NULL, &sp));
        ASSERT_OK(bbt_spool_read_range(sp, seq, seq, 1, lookup_cb, l, &range));
        bbt_spool_close(sp);
        return l->found;
}

/* The segment files of the spool, oldest first (names are zero-padded seqs). */
static int seg_names(char names[][64], int max)
{
        DIR *d = opendir(spool_dir);
        struct dirent *de;
        int n = 0, i, j;

        if (!d)
                FAIL("opendir %s: %s", spool_dir, strerror(errno));
        while ((de = readdir(d)) && n < max) {
                size_t len = strlen(de->d_name);

                if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0)
                        snprintf(names[n++], 64, "%.63s", de->d_name);
        }
        closedir(d);
        for (i = 1; i < n; i++)
                for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
                        char t[64];

                        memcpy(t, names[j], 64);
                        memcpy(names[j], names[j - 1], 64);
                        memcpy(names[j - 1], t, 64);
                }
        return n;
}

static uint32_t get_u32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
        return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- the tests ---- */

/* 1. Birth, inventory, hb, usage; commands; clean stop. */
TEST(every_message_type)
{
        struct bbt_test_broker b = { 0 };
        struct sub s, ret;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct bbt_msg m;
        long i_birth, i_inv, i, i_reply_inv, i_reply_unk, i_reply_bad, i_shut;
        uint32_t boot;
        size_t n_inv_before, mark;
        int64_t t_start = bbt_test_wall_ms();
        bool same_fs, reported_disk_spool = false;

        env_init();
        {
                struct stat st_root, st_spool;

                same_fs = stat("/", &st_root) == 0 && stat(spool_dir, &st_spool) == 0 &&
                          st_root.st_dev == st_spool.st_dev;
        }
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        c.port = b.port;
        write_conf(conf_path, &c);
        agent_start(&a);

        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL) >= 0 &&
                                           count_rx(&s, 0, BBT_CH_INVENTORY) >= 1 && count_rx(&s, 0, BBT_CH_HB) >= 3 &&
                                           count_rx(&s, 0, BBT_CH_USAGE) >= 2),
                 10000, "received %zu messages", s.n);

        /* state: the birth. */
        i_birth = find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL);
        boot = s.rx[i_birth].boot;
        ASSERT_GE(boot, 1);
        decode_rx(&s.rx[i_birth], &m);
        ASSERT(m.body.state.online);
        ASSERT_STR_EQ(m.body.state.version, BBT_VERSION);
        ASSERT(m.body.state.hostname && m.body.state.hostname[0]);
        ASSERT(m.body.state.os && m.body.state.os[0]);
        ASSERT(m.body.state.machine_id && m.body.state.machine_id[0]);
        bbt_msg_free(&m);
        /* inventory right after the birth, same session. */
        i_inv = find_rx(&s, 0, BBT_CH_INVENTORY, NULL, NULL);
        ASSERT_EQ(s.rx[i_inv].boot, boot);
        ASSERT_GT(s.rx[i_inv].seq, s.rx[i_birth].seq);

        /* Retained on the broker: a late subscriber gets both with the retain flag. */
        {
                static const char *const retained[] = { PREFIX "state", PREFIX "inventory", NULL };

                sub_start(&ret, "retained", b.port, retained);
                sub_sync(&ret);
                WAIT_FOR(count_rx(&ret, 0, BBT_CH_STATE) >= 1 && count_rx(&ret, 0, BBT_CH_INVENTORY) >= 1, 3000,
                         "retained: %zu messages", ret.n);
                i = find_rx(&ret, 0, BBT_CH_STATE, NULL, NULL);
                ASSERT(ret.rx[i].retain);
                ASSERT_STR_EQ(ret.rx[i].payload, s.rx[i_birth].payload);
                i = find_rx(&ret, 0, BBT_CH_INVENTORY, NULL, NULL);
                ASSERT(ret.rx[i].retain);
                ASSERT_EQ(ret.rx[i].boot, boot);
                sub_close(&ret);
        }

        /* Every message: this session, a sane clock; hb and usage in detail. */
        for (i = 0; i < (long)s.n; i++) {
                const struct rx *r = &s.rx[i];

                if (r->ch == BBT_CH_CMD)
                        continue;
                if (r->retain)
                        FAIL("%s arrived with the retain flag at a live subscriber: %s", r->topic, r->payload);
                ASSERT_GE(r->ts, t_start - 1000);
                ASSERT_LE(r->ts, bbt_test_wall_ms() + 1000);
                if (r->ch == BBT_CH_STATE && !r->online)
                        FAIL("an offline state while the agent runs: %s", r->payload);
                ASSERT_EQ(r->boot, boot);
                if (r->ch == BBT_CH_HB) {
                        decode_rx(r, &m);
                        /* SPEC hb: disk.spool only "when it is another" file system than /. */
                        if (m.body.hb.has_disk_spool && same_fs && !reported_disk_spool) {
                                reported_disk_spool = true;
                                defer_fail("hb has disk.spool although %s is on the file system of /: %s",
                                           spool_dir, r->payload);
                        }
                        ASSERT_GE(m.body.hb.spool_depth, 0);
                        ASSERT_EQ(m.body.hb.spool_dropped, 0);
                        ASSERT_EQ(m.body.hb.state, BBT_USAGE_STANDBY);
                        ASSERT_GT(m.body.hb.mem_total, 0);
                        ASSERT_GT(m.body.hb.disk_root.total, 0);
                        ASSERT_GT(m.body.hb.uptime, 0);
                        bbt_msg_free(&m);
                }
        }
        {
                int64_t prev_end = 0;

                for (i = 0; i < (long)s.n; i++) {
                        if (s.rx[i].ch != BBT_CH_USAGE)
                                continue;
                        decode_rx(&s.rx[i], &m);
                        ASSERT_EQ(m.body.usage.state, BBT_USAGE_STANDBY);
                        ASSERT_EQ(m.body.usage.touch + m.body.usage.pen + m.body.usage.mouse + m.body.usage.key, 0);
                        ASSERT_EQ(m.body.usage.interactive_ms, 0);
                        ASSERT_EQ(m.body.usage.audio_ms, 0);
                        ASSERT_LE(m.body.usage.start, m.body.usage.end);
                        ASSERT_LE(m.body.usage.end - m.body.usage.start, 500 + 300); /* usage_flush 500ms */
                        ASSERT_GE(m.body.usage.start, prev_end);                     /* no overlap */
                        prev_end = m.body.usage.end;
                        bbt_msg_free(&m);
                }
        }

        /* cmd inventory: a reply ok and a new inventory. */
        n_inv_before = count_rx(&s, 0, BBT_CH_INVENTORY);
        mark = s.n;
        send_cmd(&s, "t-inv-1", "inventory", NULL);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-inv-1") >= 0 &&
                                           count_rx(&s, 0, BBT_CH_INVENTORY) > n_inv_before),
                 5000, "no reply/inventory for cmd t-inv-1");
        i_reply_inv = find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-inv-1");
        if (!s.rx[i_reply_inv].ok)
                FAIL("cmd inventory: expected ok true: %s", s.rx[i_reply_inv].payload);
        ASSERT_EQ(s.rx[i_reply_inv].boot, boot);

        /* cmd state: the session's birth again, byte for byte, unretained; the reply names its seq. */
        mark = s.n;
        send_cmd(&s, "t-state-1", "state", NULL);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-state-1") >= 0 &&
                                           find_rx(&s, mark, BBT_CH_STATE, is_birth, NULL) >= 0),
                 5000, "no reply/birth for cmd state t-state-1");
        i = find_rx(&s, mark, BBT_CH_STATE, is_birth, NULL);
        ASSERT(!s.rx[i].retain);
        ASSERT_EQ(s.rx[i].seq, s.rx[i_birth].seq);
        ASSERT_EQ(s.rx[i].len, s.rx[i_birth].len);
        ASSERT(memcmp(s.rx[i].payload, s.rx[i_birth].payload, s.rx[i].len) == 0);
        decode_rx(&s.rx[find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-state-1")], &m);
        if (!m.body.reply.ok || !m.body.reply.result_json)
                FAIL("cmd state: expected ok true with a result");
        ASSERT_EQ((int64_t)cJSON_GetObjectItemCaseSensitive(m.body.reply.result_json, "seq")->valuedouble,
                  s.rx[i_birth].seq);
        bbt_msg_free(&m);

        /* An unknown op: ok false, "unsupported op". */
        mark = s.n;
        send_cmd(&s, "t-unk-1", "frobnicate", "{\"level\":3}");
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-unk-1") >= 0), 5000,
                 "no reply for cmd t-unk-1");
        i_reply_unk = find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-unk-1");
        decode_rx(&s.rx[i_reply_unk], &m);
        if (m.body.reply.ok)
                FAIL("unknown op: expected ok false: %s", s.rx[i_reply_unk].payload);
        ASSERT(m.body.reply.error);
        ASSERT_STR_CONTAINS(m.body.reply.error, "unsupported op");
        /* SPEC "cmd": anything else -> ok false, error "unsupported op NAME". */
        if (strcmp(m.body.reply.error, "unsupported op frobnicate") != 0)
                defer_fail("unknown op: SPEC says error \"unsupported op frobnicate\", got \"%s\"", m.body.reply.error);
        bbt_msg_free(&m);

        /* An invalid command with a valid id: ok false, naming the field. */
        mark = s.n;
        {
                char json[256];

                snprintf(json, sizeof(json),
                         "{\"v\":1,\"seq\":%d,\"ts\":%lld,\"boot\":7,\"id\":\"t-bad-1\",\"op\":\"wake\","
                         "\"args\":{\"mac\":\"zz:00\"}}",
                         ++cmd_seq, (long long)bbt_test_wall_ms());
                send_raw_cmd(&s, json);
        }
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-bad-1") >= 0), 5000,
                 "no reply for the invalid cmd t-bad-1");
        i_reply_bad = find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-bad-1");
        decode_rx(&s.rx[i_reply_bad], &m);
        if (m.body.reply.ok)
                FAIL("invalid cmd: expected ok false: %s", s.rx[i_reply_bad].payload);
        ASSERT_STR_CONTAINS(m.body.reply.error, "cmd.args.mac");
        bbt_msg_free(&m);

        /* SIGTERM: exit 0 within 5 s; the clean stop reuses the will's seq and boot. */
        agent_stop(&a);
        WAIT_FOR(find_rx(&s, 0, BBT_CH_STATE, is_shutdown, NULL) >= 0, 2000, "no offline state after SIGTERM");
        i_shut = find_rx(&s, 0, BBT_CH_STATE, is_shutdown, NULL);
        ASSERT_EQ(s.rx[i_shut].boot, boot);
        ASSERT_LT(s.rx[i_shut].seq, s.rx[i_birth].seq); /* the will's seq, taken before CONNECT */
        /* The broker discarded the will: no "lost" for this session, and the retained state is the stop. */
        run_for(500);
        if (find_rx(&s, 0, BBT_CH_STATE, is_lost, &boot) >= 0)
                FAIL("the broker published the will after a clean stop: %s",
                     s.rx[find_rx(&s, 0, BBT_CH_STATE, is_lost, &boot)].payload);
        {
                static const char *const retained[] = { PREFIX "state", NULL };

                sub_start(&ret, "retained2", b.port, retained);
                sub_sync(&ret);
                WAIT_FOR(count_rx(&ret, 0, BBT_CH_STATE) >= 1, 3000, "no retained state after the stop");
                i = find_rx(&ret, 0, BBT_CH_STATE, NULL, NULL);
                ASSERT_STR_EQ(ret.rx[i].payload, s.rx[i_shut].payload);
                sub_close(&ret);
        }
        /* Every seq, the will's included (the clean stop carries it). */
        check_seqs(&s, NULL, 0);
        check_log_clean(a.log);

        finish_deferred();

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

/* 2. The broker is down for 30 s while the agent produces; everything arrives after. */
TEST(broker_outage_30s)
{
        struct bbt_test_broker b = { 0 };
        struct sub s;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct seq_result res;
        int64_t seq_before, birth2_seq, allowed[8] = { 0 }, max_depth = 0;
        size_t n_allowed = 0, i, outage_hbs = 0;
        uint32_t boot1, boot2;
        uint64_t t0;
        long ib;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        c.port = b.port;
        write_conf(conf_path, &c);
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL) >= 0 && count_rx(&s, 0, BBT_CH_HB) >= 3),
                 10000, "received %zu messages", s.n);
        boot1 = s.rx[find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL)].boot;
        run_for(1000);
        seq_before = max_seq(&s);

        fprintf(stderr, "killing the broker for 30 s (last seq received: %lld)\n", (long long)seq_before);
        bbt_test_broker_kill(&b);
        t0 = bbt_test_now_ms();
        while (bbt_test_now_ms() - t0 < 30000) {
                bbt_test_daemon_alive(&a);
                run_for(200);
        }
        /* The subscriber must be back before the agent publishes anything:
         * what the broker acknowledges to the agent while nobody listens is
         * gone (clean sessions, no persistence). Freeze the agent meanwhile. */
        ASSERT_OK(kill(a.pid, SIGSTOP));
        bbt_test_broker_restart(&b);
        sub_sync(&s);
        ASSERT_OK(kill(a.pid, SIGCONT));
        t0 = bbt_test_now_ms();
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, &boot1) >= 0), 15000,
                 "no birth after the broker came back");
        ib = find_rx(&s, 0, BBT_CH_STATE, is_birth, &boot1);
        boot2 = s.rx[ib].boot;
        birth2_seq = s.rx[ib].seq;
        fprintf(stderr, "reconnected after %llu ms: boot %u -> %u, birth seq %lld\n",
                (unsigned long long)(bbt_test_now_ms() - t0), boot1, boot2, (long long)birth2_seq);
        ASSERT_GT(boot2, boot1);
        /* The backlog drains (drain_rate 50/s): then an hb goes out live. */
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_HB, is_live_hb, &birth2_seq) >= 0), 30000,
                 "backlog not drained: %zu messages received, last seq %lld", s.n, (long long)max_seq(&s));
        fprintf(stderr, "backlog drained %llu ms after the broker came back\n",
                (unsigned long long)(bbt_test_now_ms() - t0));
        run_for(1000);
        agent_stop(&a);
        run_for(300);

        /* What the agent produced during the outage arrived. */
        for (i = 0; i < s.n; i++)
                if (s.rx[i].ch == BBT_CH_HB && s.rx[i].seq > seq_before && s.rx[i].seq < birth2_seq) {
                        outage_hbs++;
                        if (s.rx[i].depth > max_depth)
                                max_depth = s.rx[i].depth;
                }
        fprintf(stderr, "%zu hb produced during the outage arrived; deepest spool reported %lld\n", outage_hbs,
                (long long)max_depth);
        ASSERT_GE(outage_hbs, 100); /* 30 s at 200 ms: 150 */
        ASSERT_GE(max_depth, 100);

        /* SPEC "Sessions": the will the broker held for session BOOT1 died
         * with the broker. Only that seq may be missing, and only if the spool
         * says it is that will. */
        seq_scan(&s, &res);
        for (i = 0; i < res.n_missing && i < 8; i++) {
                struct lookup l;
                struct bbt_msg m;

                if (!spool_lookup((uint64_t)res.missing[i], &l))
                        continue;
                if (bbt_msg_decode(BBT_CH_STATE, l.payload, strlen(l.payload), &m, NULL) < 0)
                        continue;
                if (!m.body.state.online && m.body.state.reason == BBT_REASON_LOST && m.boot == boot1) {
                        fprintf(stderr,
                                "NOTE: seq %lld (the will of boot %u, set before the broker crash) never arrived: "
                                "the broker lost it and the agent does not send it again after reconnecting; "
                                "SPEC counts this one seq as lost%s\n",
                                (long long)res.missing[i], boot1,
                                STRICT_LOST_WILL ? " (STRICT_LOST_WILL: failing)" : "");
                        if (!STRICT_LOST_WILL)
                                allowed[n_allowed++] = res.missing[i];
                }
                bbt_msg_free(&m);
        }
        check_seqs(&s, allowed, n_allowed);
        check_log_clean(a.log);

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

/* 3. SIGKILL at random moments: no seq reused, every seq received or named
 * by the agent as skipped (never used), boot always grows. */
TEST(kill9_random_20_trials)
{
        struct bbt_test_broker b = { 0 };
        struct sub s;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        const char *env_seed = getenv("BBT_TEST_SEED");
        unsigned seed = env_seed ? (unsigned)strtoul(env_seed, NULL, 0) : (unsigned)time(NULL) ^ (unsigned)getpid();
        uint32_t last_boot = 0, prev_boot = 0;
        int64_t last_birth_seq, prev_seq = 0, named;
        const struct rx **births;
        size_t i, n_births = 0, n_sessions = 0;
        int trial;
        long ib;

        fprintf(stderr, "seed %u (rerun with BBT_TEST_SEED=%u)\n", seed, seed);
        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        c.port = b.port;
        write_conf(conf_path, &c);
        for (trial = 0; trial < 20; trial++) {
                int delay = 100 + (int)(rand_r(&seed) % 1401);
                uint64_t t0 = bbt_test_now_ms();

                agent_start(&a);
                while (bbt_test_now_ms() - t0 < (uint64_t)delay) {
                        bbt_test_daemon_alive(&a);
                        run_for(10);
                }
                agent_kill9(&a);
                fprintf(stderr, "trial %2d: SIGKILL after %4d ms; %zu messages so far, last seq %lld\n", trial, delay,
                        s.n, (long long)max_seq(&s));
        }
        for (i = 0; i < s.n; i++)
                if (s.rx[i].ch == BBT_CH_STATE && s.rx[i].online && s.rx[i].boot > last_boot)
                        last_boot = s.rx[i].boot;
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, &last_boot) >= 0), 10000,
                 "no birth from the final run");
        ib = find_rx(&s, 0, BBT_CH_STATE, is_birth, &last_boot);
        last_birth_seq = s.rx[ib].seq;
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_HB, is_live_hb, &last_birth_seq) >= 0), 20000,
                 "final run: backlog not drained");
        /* Wills of killed sessions come from the broker at once, or from the spool. */
        run_for(1500);
        /* Every seq not received was skipped at a start after a kill: the
         * agent says so itself when asked. */
        named = explain_missing(&s, &a, "skipped", NULL);
        agent_stop(&a);
        run_for(300);

        /* Births in seq order: boot strictly increases. */
        births = calloc(s.n + 1, sizeof(*births));
        ASSERT(births);
        for (i = 0; i < s.n; i++)
                if (s.rx[i].ch == BBT_CH_STATE && s.rx[i].online)
                        births[n_births++] = &s.rx[i];
        qsort(births, n_births, sizeof(*births), cmp_rx_ptr);
        for (i = 0; i < n_births; i++) {
                if (i > 0 && births[i]->seq == prev_seq)
                        continue; /* the same birth delivered twice */
                n_sessions++;
                if (i > 0 && births[i]->boot <= prev_boot)
                        FAIL("boot does not increase across sessions: birth seq %lld boot %u after birth seq %lld "
                             "boot %u",
                             (long long)births[i]->seq, births[i]->boot, (long long)prev_seq, prev_boot);
                prev_boot = births[i]->boot;
                prev_seq = births[i]->seq;
        }
        fprintf(stderr, "%zu births received (%zu distinct), last boot %u\n", n_births, n_sessions, prev_boot);
        free(births);
        ASSERT_GE(n_sessions, 2);
        check_seqs_named(&s, named);
        check_log_clean(a.log);

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

static bool is_spool_drop_raised(const struct rx *r, const void *arg)
{
        return strcmp(r->code, "spool_drop") == 0 && r->alert_state == BBT_ALERT_RAISED;
}

static bool is_spool_drop_cleared(const struct rx *r, const void *arg)
{
        return strcmp(r->code, "spool_drop") == 0 && r->alert_state == BBT_ALERT_CLEARED;
}

static bool hb_after_with_drops(const struct rx *r, const void *after)
{
        return r->seq > *(const int64_t *)after && r->dropped > 0;
}

/* The spool size used by spool_full_drops_oldest: the smallest [spool]
 * max_size accepted (128K; it was 64K, which bbt_spool_open() refused: its
 * segments are at least 64 KiB and at most max_bytes / 2). Two segments. */
#define FULL_SPOOL_BYTES (128u << 10)
#define FULL_SPOOL_CONF "max_size = 128K\n"

/* Pre-fills the spool (valid hb records of an earlier run that stopped
 * cleanly) to just under FULL_SPOOL_BYTES, so that the agent's first records
 * push it over; returns the last seq. */
static uint64_t prefill_spool(void)
{
        struct bbt_spool_options so;
        struct bbt_spool_stats st;
        struct bbt_spool *sp;
        struct bbt_msg m;
        uint64_t seq, prefill_last = 0, dropped;

        bbt_spool_options_init(&so, spool_dir);
        so.max_bytes = FULL_SPOOL_BYTES;
        ASSERT_OK(bbt_spool_open(&so, NULL, NULL, &sp));
        for (seq = 1;; seq++) {
                char *json;
                size_t len;

                bbt_msg_init(&m, BBT_CH_HB);
                m.seq = (int64_t)seq;
                m.ts = bbt_test_wall_ms();
                m.boot = 0;
                m.body.hb.uptime = (int64_t)seq;
                m.body.hb.mem_total = 8LL << 30;
                m.body.hb.mem_available = 4LL << 30;
                m.body.hb.disk_root.total = 100LL << 30;
                m.body.hb.disk_root.free = 50LL << 30;
                m.body.hb.spool_depth = (int64_t)seq - 1;
                ASSERT_OK(bbt_msg_encode(&m, &json, &len, NULL));
                ASSERT_OK(bbt_spool_append(sp, seq, m.ts, 0, PREFIX "hb", json, len, &dropped));
                free(json);
                ASSERT_EQ(dropped, 0);
                prefill_last = seq;
                bbt_spool_stats(sp, &st);
                if (st.bytes + 3 * (12 + 20 + strlen(PREFIX "hb") + len) > FULL_SPOOL_BYTES)
                        break;
        }
        fprintf(stderr, "pre-filled %llu records, %llu bytes in %llu segments\n", (unsigned long long)prefill_last,
                (unsigned long long)st.bytes, (unsigned long long)st.segments);
        ASSERT_OK(bbt_spool_close(sp));
        /* ... by an earlier run that stopped cleanly (without its state file
         * the agent would not trust the spool to be whole and would jump). */
        {
                char path[400], text[256];

                snprintf(path, sizeof(path), "%s/state", state_dir);
                snprintf(text, sizeof(text), "version=2\nclean=1\nseq_floor=%llu\nseq_ceiling=%llu\nboot=1\nboot_id=\n",
                         (unsigned long long)prefill_last + 1, (unsigned long long)prefill_last + 1);
                bbt_test_write_file(path, text);
        }
        return prefill_last;
}

/* 4. A full spool drops its oldest records, counts and alerts. */
TEST(spool_full_drops_oldest)
{
        struct bbt_test_broker b = { 0 };
        struct seq_result res;
        struct sub s;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct bbt_msg m;
        uint64_t prefill_last;
        int64_t birth_seq, alert_seq, lo = 0, last_dropped = -1;
        long ia, ih;
        size_t i;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        /* A port for the agent to try while the broker is down. */
        bbt_test_broker_start(&b, NULL);
        bbt_test_broker_kill(&b);

        prefill_last = prefill_spool();

        c.port = b.port;
        c.hb = "100ms";
        c.spool_extra = FULL_SPOOL_CONF;
        write_conf(conf_path, &c);
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), bbt_test_file_contains(a.log, "oldest unsent records")), 20000,
                 "the agent did not report dropping records from the full spool");
        run_for(300);
        /* Start the broker with the subscriber ready before the agent sends. */
        ASSERT_OK(kill(a.pid, SIGSTOP));
        bbt_test_broker_restart(&b);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        ASSERT_OK(kill(a.pid, SIGCONT));
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL) >= 0), 15000, "no birth");
        birth_seq = s.rx[find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL)].seq;
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_HB, is_live_hb, &birth_seq) >= 0), 30000,
                 "backlog not drained: %zu received", s.n);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_ALERT, is_spool_drop_raised, NULL) >= 0), 5000,
                 "no spool_drop alert (raised)");
        ia = find_rx(&s, 0, BBT_CH_ALERT, is_spool_drop_raised, NULL);
        alert_seq = s.rx[ia].seq;
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_HB, hb_after_with_drops, &alert_seq) >= 0), 5000,
                 "no hb with spool.dropped > 0 after the alert");
        /* Once the backlog is delivered the condition ends. */
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_ALERT, is_spool_drop_cleared, NULL) >= 0), 5000,
                 "no spool_drop alert (cleared) after the backlog was delivered");
        agent_stop(&a);
        run_for(300);

        decode_rx(&s.rx[ia], &m);
        fprintf(stderr, "alert: %s\n", s.rx[ia].payload);
        ASSERT_STR_EQ(m.body.alert.code, "spool_drop");
        ASSERT_EQ(m.body.alert.severity, BBT_SEVERITY_WARNING);
        ASSERT_EQ(m.body.alert.state, BBT_ALERT_RAISED);
        bbt_msg_free(&m);
        ih = find_rx(&s, 0, BBT_CH_HB, hb_after_with_drops, &alert_seq);
        fprintf(stderr, "first hb after the alert with drops: %s\n", s.rx[ih].payload);
        for (i = 0; i < s.n; i++)
                if (s.rx[i].ch == BBT_CH_HB && s.rx[i].seq > alert_seq)
                        last_dropped = s.rx[i].dropped;

        /* What arrives is a contiguous tail: only the oldest are missing. */
        seq_scan(&s, &res);
        for (i = 0; i < s.n; i++)
                if (s.rx[i].ch != BBT_CH_CMD && (lo == 0 || s.rx[i].seq < lo))
                        lo = s.rx[i].seq;
        fprintf(stderr, "pre-filled 1..%llu; received %lld..%lld; hb spool.dropped %lld\n",
                (unsigned long long)prefill_last, (long long)lo, (long long)res.max, (long long)last_dropped);
        ASSERT_GT(lo, 1);
        ASSERT_LE(lo, (int64_t)prefill_last);
        for (i = 0; i < res.n_missing && i < sizeof(res.missing) / sizeof(res.missing[0]); i++)
                if (res.missing[i] > lo) {
                        print_missing(&res);
                        FAIL("seq %lld missing above the oldest received %lld: the drops are not the oldest",
                             (long long)res.missing[i], (long long)lo);
                }
        ASSERT_EQ(res.n_missing, (size_t)(lo - 1));
        /* Every record dropped was counted (hb spool.dropped is cumulative). */
        ASSERT_EQ(last_dropped, lo - 1);
        ASSERT(bbt_test_file_contains(a.log, "is full"));
        check_log_clean(a.log);

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

static bool have_seqs(const struct sub *s, int64_t from, int64_t to)
{
        int64_t q;

        for (q = from; q <= to; q++) {
                size_t i;

                for (i = 0; i < s->n; i++)
                        if (s->rx[i].ch != BBT_CH_CMD && s->rx[i].seq == q)
                                break;
                if (i == s->n)
                        return false;
        }
        return true;
}

struct seg_rec {
        uint64_t off, size, seq;
        uint64_t payload_off;
};

static bool only_allowed_missing(const struct sub *s, int64_t allowed)
{
        struct seq_result res;

        seq_scan(s, &res);
        return res.n_missing == 0 || (res.n_missing == 1 && res.missing[0] == allowed);
}

/* 5. Corrupt bytes in a spool segment: reported by file and offset, the rest delivered. */
TEST(corrupt_spool_bytes)
{
        struct bbt_test_broker b = { 0 };
        struct sub s;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct seg_rec recs[512];
        char names[16][64], seg_path[512], log2[400], needle[600];
        uint8_t *data;
        size_t n_recs = 0, k;
        uint64_t off, size, flip_at, flip_len = 4, j;
        int64_t birth_seq, allowed;
        struct stat stt;
        int fd, n_segs;
        char *text, *line;
        bool reported = false;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        bbt_test_broker_kill(&b);
        c.port = b.port;
        c.hb = "100ms";
        write_conf(conf_path, &c);

        /* Run offline: the records pile up in the spool. */
        agent_start(&a);
        {
                uint64_t t0 = bbt_test_now_ms();

                while (bbt_test_now_ms() - t0 < 2500) {
                        bbt_test_daemon_alive(&a);
                        run_for(50);
                }
        }
        agent_stop(&a);

        /* Find the records of the first segment (format: see spool.c). */
        n_segs = seg_names(names, 16);
        ASSERT_GE(n_segs, 1);
        snprintf(seg_path, sizeof(seg_path), "%s/%s", spool_dir, names[0]);
        fd = open(seg_path, O_RDWR | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &stt) < 0)
                FAIL("%s: %s", seg_path, strerror(errno));
        size = (uint64_t)stt.st_size;
        data = malloc(size);
        ASSERT(data);
        ASSERT_EQ(pread(fd, data, size, 0), (ssize_t)size);
        ASSERT_EQ(get_u32(data), 0x53544242u);
        for (off = 8; off + 12 <= size && n_recs < 512;) {
                uint32_t len = get_u32(data + off + 4);

                ASSERT_EQ(get_u32(data + off), 0xEC52B8FEu);
                ASSERT_LE(off + 12 + len, size);
                recs[n_recs].off = off;
                recs[n_recs].size = 12 + len;
                recs[n_recs].seq = get_u64(data + off + 12);
                recs[n_recs].payload_off = off + 12 + 20 + (data[off + 12 + 18] | data[off + 12 + 19] << 8);
                n_recs++;
                off += 12 + len;
        }
        ASSERT_GE(n_recs, 10);
        fprintf(stderr, "%s: %llu bytes, %zu records, seq %llu..%llu\n", names[0], (unsigned long long)size, n_recs,
                (unsigned long long)recs[0].seq, (unsigned long long)recs[n_recs - 1].seq);
        /* Flip bytes inside the payload of a record in the middle. */
        k = n_recs / 2;
        flip_at = recs[k].payload_off + 5;
        ASSERT_LE(flip_at + flip_len, recs[k].off + recs[k].size);
        for (j = 0; j < flip_len; j++)
                data[flip_at + j] ^= 0x5a;
        ASSERT_EQ(pwrite(fd, data + flip_at, flip_len, (off_t)flip_at), (ssize_t)flip_len);
        close(fd);
        free(data);
        allowed = (int64_t)recs[k].seq; /* the one record overlapping the flipped bytes */
        fprintf(stderr, "flipped bytes %llu..%llu of %s: record seq %lld at byte %llu\n",
                (unsigned long long)flip_at, (unsigned long long)(flip_at + flip_len - 1), names[0],
                (long long)allowed, (unsigned long long)recs[k].off);

        /* Broker up, subscriber ready, then the agent again. */
        bbt_test_broker_restart(&b);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        snprintf(log2, sizeof(log2), "%s/agent2.log", tmp_dir);
        agent_start_with(&a, conf_path, log2);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL) >= 0), 15000, "no birth");
        birth_seq = s.rx[find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL)].seq;
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_HB, is_live_hb, &birth_seq) >= 0), 20000,
                 "backlog not drained");
        {
                uint64_t until = bbt_test_now_ms() + 3000;

                while (!only_allowed_missing(&s, allowed) && bbt_test_now_ms() < until)
                        run_for(50);
        }
        agent_stop(&a);
        run_for(300);

        /* The warning names the file and the byte offset of the bad record. */
        text = bbt_test_slurp(log2);
        snprintf(needle, sizeof(needle), "at byte %llu", (unsigned long long)recs[k].off);
        for (line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
                if (strstr(line, names[0]) && strstr(line, needle)) {
                        fprintf(stderr, "agent log: %s\n", line);
                        reported = true;
                }
        free(text);
        if (!reported)
                FAIL("%s: expected a warning naming %s and \"%s\"", log2, seg_path, needle);
        /* Everything else arrived. */
        check_seqs(&s, &allowed, 1);
        fprintf(stderr, "the corrupted record seq %lld %s\n", (long long)allowed,
                have_seqs(&s, allowed, allowed) ? "arrived" : "was skipped");
        check_log_clean(log2);

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

static double reply_result_number(const struct rx *r, const char *name)
{
        struct bbt_msg m;
        const cJSON *v;
        double d;

        decode_rx(r, &m);
        if (!m.body.reply.result_json)
                FAIL("cmd/reply without result: %s", r->payload);
        v = cJSON_GetObjectItemCaseSensitive((const cJSON *)m.body.reply.result_json, name);
        if (!cJSON_IsNumber(v))
                FAIL("cmd/reply result.%s: expected a number: %s", name, r->payload);
        d = v->valuedouble;
        bbt_msg_free(&m);
        return d;
}

/* 6. resend {from, to} republishes exactly that range, unchanged. */
TEST(resend_returns_exact_range)
{
        struct bbt_test_broker b = { 0 };
        struct sub s;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        long orig[13], ir;
        int64_t last, q;
        size_t mark, i;
        int times[13] = { 0 };
        char args[128];

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        c.port = b.port;
        write_conf(conf_path, &c);
        agent_start(&a);
        /* Seq 1 is the session's will: the broker holds it. */
        WAIT_FOR((bbt_test_daemon_alive(&a), have_seqs(&s, 2, 20)), 15000, "seqs 2..20 not all received (%zu messages)", s.n);
        for (q = 5; q <= 12; q++)
                for (i = 0; i < s.n; i++)
                        if (s.rx[i].ch != BBT_CH_CMD && s.rx[i].seq == q) {
                                orig[q] = (long)i;
                                break;
                        }
        last = max_seq(&s);
        mark = s.n;
        send_cmd(&s, "t-resend-1", "resend", "{\"from\":5,\"to\":12}");
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-resend-1") >= 0), 10000,
                 "no reply to resend 5..12");
        run_for(500);
        ir = find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-resend-1");
        fprintf(stderr, "reply: %s\n", s.rx[ir].payload);
        if (!s.rx[ir].ok)
                FAIL("resend 5..12: expected ok true: %s", s.rx[ir].payload);
        for (i = mark; i < s.n; i++) {
                const struct rx *r = &s.rx[i];

                if (r->ch == BBT_CH_CMD || r->seq > last)
                        continue; /* new messages */
                if (r->seq < 5 || r->seq > 12)
                        FAIL("resend 5..12 republished seq %lld: %s", (long long)r->seq, r->payload);
                times[r->seq]++;
                if (strcmp(r->topic, s.rx[orig[r->seq]].topic) != 0 || r->len != s.rx[orig[r->seq]].len ||
                    memcmp(r->payload, s.rx[orig[r->seq]].payload, r->len) != 0)
                        FAIL("seq %lld republished changed:\n  first: %s %s\n  again: %s %s", (long long)r->seq,
                             s.rx[orig[r->seq]].topic, s.rx[orig[r->seq]].payload, r->topic, r->payload);
                if (r->retain)
                        FAIL("seq %lld republished with the retain flag", (long long)r->seq);
        }
        for (q = 5; q <= 12; q++)
                if (times[q] != 1)
                        FAIL("resend 5..12: seq %lld arrived %d times again, expected once", (long long)q, times[q]);
        ASSERT_EQ((long long)reply_result_number(&s.rx[ir], "sent"), 8);

        /* A range entirely beyond the last seq: ok, nothing sent. */
        last = max_seq(&s);
        mark = s.n;
        snprintf(args, sizeof(args), "{\"from\":%lld,\"to\":%lld}", (long long)last + 1000, (long long)last + 2000);
        send_cmd(&s, "t-resend-2", "resend", args);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-resend-2") >= 0), 10000,
                 "no reply to the resend beyond the last seq");
        run_for(300);
        ir = find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-resend-2");
        fprintf(stderr, "reply: %s\n", s.rx[ir].payload);
        if (!s.rx[ir].ok)
                FAIL("resend beyond the last seq: expected ok true: %s", s.rx[ir].payload);
        ASSERT_EQ((long long)reply_result_number(&s.rx[ir], "sent"), 0);
        for (i = mark; i < s.n; i++)
                if (s.rx[i].ch != BBT_CH_CMD && s.rx[i].seq <= last)
                        FAIL("resend %s republished seq %lld", args, (long long)s.rx[i].seq);

        agent_stop(&a);
        run_for(300);
        check_seqs(&s, NULL, 0);
        check_log_clean(a.log);

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

static struct sub *hb_sub;

static size_t count_hb_for(int ms)
{
        size_t mark = hb_sub->n;

        run_for(ms);
        return count_rx(hb_sub, mark, BBT_CH_HB);
}

/* 7. SIGHUP reloads; a broken file is refused (at reload and at start); the CLI. */
TEST(sighup_reload_and_bad_config)
{
        struct bbt_test_broker b = { 0 };
        struct sub s;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        char bad_conf[400], err_path[400], out_path[400], needle[600];
        size_t n1, n2, n3, n_births;
        int line, status;
        char *text;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        hb_sub = &s;
        c.port = b.port;
        c.hb = "1s";
        c.usage_flush = "10m";
        write_conf(conf_path, &c);
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL) >= 0), 10000, "no birth");
        run_for(500);
        n1 = count_hb_for(3000);
        fprintf(stderr, "heartbeat_interval 1s: %zu hb in 3 s\n", n1);
        ASSERT_GE(n1, 2);
        ASSERT_LE(n1, 4);

        /* A changed interval takes effect at SIGHUP. */
        c.hb = "200ms";
        write_conf(conf_path, &c);
        ASSERT_OK(kill(a.pid, SIGHUP));
        run_for(300);
        bbt_test_daemon_alive(&a);
        n2 = count_hb_for(3000);
        fprintf(stderr, "after SIGHUP with heartbeat_interval 200ms: %zu hb in 3 s\n", n2);
        ASSERT_GE(n2, 11);
        ASSERT_LE(n2, 17);
        ASSERT(bbt_test_file_contains(a.log, "reload: configuration applied"));

        /* A broken file: the agent keeps running on what it had. */
        snprintf(bad_conf, sizeof(bad_conf), "%s/bad.conf", tmp_dir);
        c.hb = "50ms"; /* below the 100ms minimum */
        write_conf(conf_path, &c);
        line = line_of(conf_path, "heartbeat_interval");
        ASSERT_OK(kill(a.pid, SIGHUP));
        run_for(500);
        bbt_test_daemon_alive(&a);
        snprintf(needle, sizeof(needle), "reload: %s:%d: [agent] heartbeat_interval: ", conf_path, line);
        if (!bbt_test_file_contains(a.log, needle))
                FAIL("%s: expected \"%s\" after SIGHUP with a broken file", a.log, needle);
        ASSERT(bbt_test_file_contains(a.log, "keeping the running configuration"));
        n3 = count_hb_for(2000);
        fprintf(stderr, "after SIGHUP with a broken file: %zu hb in 2 s\n", n3);
        ASSERT_GE(n3, 7);
        ASSERT_LE(n3, 12);
        agent_stop(&a);
        run_for(300);
        check_seqs(&s, NULL, 0);
        check_log_clean(a.log);

        /* Starting with the broken file: exit 2, "file:line: [section] key: reason". */
        ASSERT_OK(rename(conf_path, bad_conf));
        n_births = count_rx(&s, 0, BBT_CH_STATE);
        snprintf(err_path, sizeof(err_path), "%s/bad-start.log", tmp_dir);
        snprintf(out_path, sizeof(out_path), "%s/bad-start.out", tmp_dir);
        bbt_test_dump_tail_on_failure(err_path, DUMP_MAX);
        {
                char *argv[] = { (char *)agent_exe(), (char *)"-c", bad_conf, NULL };

                status = bbt_test_run(argv, out_path, err_path, 5000);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 2)
                FAIL("start with a broken file: expected exit 2, got %s", bbt_test_status_text(status));
        snprintf(needle, sizeof(needle), "%s:%d: [agent] heartbeat_interval: ", bad_conf, line);
        text = bbt_test_slurp(err_path);
        fprintf(stderr, "stderr: %s", text);
        if (!strstr(text, needle))
                FAIL("start with a broken file: stderr lacks \"%s\": %s", needle, text);
        free(text);
        run_for(300);
        ASSERT_EQ(count_rx(&s, 0, BBT_CH_STATE), n_births); /* it never connected */

        /* --check-config prints the effective settings. */
        c.hb = "200ms";
        write_conf(conf_path, &c);
        snprintf(out_path, sizeof(out_path), "%s/check.out", tmp_dir);
        snprintf(err_path, sizeof(err_path), "%s/check.err", tmp_dir);
        {
                char *argv[] = { (char *)agent_exe(), (char *)"--check-config", (char *)"-c", conf_path, NULL };

                status = bbt_test_run(argv, out_path, err_path, 5000);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                bbt_test_dump_tail(err_path, 4096);
                FAIL("--check-config: expected exit 0, got %s", bbt_test_status_text(status));
        }
        text = bbt_test_slurp(out_path);
        ASSERT_STR_CONTAINS(text, "[identity]");
        ASSERT_STR_CONTAINS(text, "county = " COUNTY);
        ASSERT_STR_CONTAINS(text, "heartbeat_interval = 200ms");
        ASSERT_STR_CONTAINS(text, "usage_flush = 10m");
        ASSERT_STR_CONTAINS(text, "[spool]");
        snprintf(needle, sizeof(needle), "port = %d\n", b.port);
        ASSERT_STR_CONTAINS(text, needle);
        snprintf(needle, sizeof(needle), "dir = %s\n", spool_dir);
        ASSERT_STR_CONTAINS(text, needle);
        ASSERT_STR_CONTAINS(text, "drain_rate = 50"); /* a default, shown too */
        free(text);

        /* --version, --help: exit 0 on stdout; a bad option: exit 2. */
        {
                char *argv[] = { (char *)agent_exe(), (char *)"--version", NULL };

                snprintf(out_path, sizeof(out_path), "%s/version.out", tmp_dir);
                status = bbt_test_run(argv, out_path, err_path, 5000);
                ASSERT(WIFEXITED(status));
                ASSERT_EQ(WEXITSTATUS(status), 0);
                text = bbt_test_slurp(out_path);
                ASSERT_STR_CONTAINS(text, "bbt-agent " BBT_VERSION);
                free(text);
        }
        {
                char *argv[] = { (char *)agent_exe(), (char *)"--help", NULL };

                snprintf(out_path, sizeof(out_path), "%s/help.out", tmp_dir);
                status = bbt_test_run(argv, out_path, err_path, 5000);
                ASSERT(WIFEXITED(status));
                ASSERT_EQ(WEXITSTATUS(status), 0);
                text = bbt_test_slurp(out_path);
                ASSERT_STR_CONTAINS(text, "Usage: bbt-agent");
                ASSERT_STR_CONTAINS(text, "--check-config");
                free(text);
        }
        {
                char *argv[] = { (char *)agent_exe(), (char *)"--no-such-option", NULL };

                snprintf(out_path, sizeof(out_path), "%s/badopt.out", tmp_dir);
                status = bbt_test_run(argv, out_path, err_path, 5000);
                ASSERT(WIFEXITED(status));
                ASSERT_EQ(WEXITSTATUS(status), 2);
        }

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

static size_t count_replies(const struct sub *s, const char *id)
{
        size_t i, n = 0;

        for (i = 0; i < s->n; i++)
                if (s->rx[i].ch == BBT_CH_CMD_REPLY && strcmp(s->rx[i].id, id) == 0)
                        n++;
        return n;
}

/* SPEC "cmd": QoS 1 may deliver a command twice; an agent SHOULD answer a
 * repeated id again without executing it a second time. */
TEST(repeated_cmd_answered_not_reexecuted)
{
        struct bbt_test_broker b = { 0 };
        struct sub s;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        size_t n_inv;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        c.port = b.port;
        c.hb = "1s";
        write_conf(conf_path, &c);
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), count_rx(&s, 0, BBT_CH_INVENTORY) >= 1), 10000, "no inventory");
        n_inv = count_rx(&s, 0, BBT_CH_INVENTORY);
        send_cmd(&s, "t-rep-1", "inventory", NULL);
        WAIT_FOR((bbt_test_daemon_alive(&a), count_replies(&s, "t-rep-1") >= 1 && count_rx(&s, 0, BBT_CH_INVENTORY) > n_inv),
                 5000, "no reply to t-rep-1");
        run_for(300);
        ASSERT_EQ(count_rx(&s, 0, BBT_CH_INVENTORY), n_inv + 1);
        /* The same command again (as a QoS 1 redelivery would bring it). */
        send_cmd(&s, "t-rep-1", "inventory", NULL);
        {
                uint64_t until = bbt_test_now_ms() + 3000;

                while (count_replies(&s, "t-rep-1") < 2 && bbt_test_now_ms() < until) {
                        bbt_test_daemon_alive(&a);
                        run_for(20);
                }
        }
        run_for(300);
        ASSERT_EQ(count_rx(&s, 0, BBT_CH_INVENTORY), n_inv + 1); /* not executed twice */
        agent_stop(&a);
        run_for(300);
        check_seqs(&s, NULL, 0);
        if (count_replies(&s, "t-rep-1") != 2)
                FAIL("repeated cmd id t-rep-1: expected it answered again (2 replies), got %zu replies",
                     count_replies(&s, "t-rep-1"));

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

/* ---- hardware drivers ---- */

/* Lines for the end of the file: no local input, display or audio (the
 * machine's own hardware must not decide the usage state). */
#define NO_LOCAL_HW                  \
        "\n[input]\nenabled = no\n"  \
        "\n[display]\nenabled = no\n" \
        "\n[audio]\nenabled = no\n"

/* An hb whose projector is reachable with power *(enum bbt_power *)power. */
static bool is_hb_projector_power(const struct rx *r, const void *power)
{
        struct bbt_msg m;
        bool yes;

        if (r->ch != BBT_CH_HB)
                return false;
        decode_rx(r, &m);
        yes = m.body.hb.has_projector && m.body.hb.projector.reachable && m.body.hb.projector.has_power &&
              m.body.hb.projector.power == *(const enum bbt_power *)power;
        bbt_msg_free(&m);
        return yes;
}

static bool is_raised(const struct rx *r, const void *code)
{
        return r->alert_state == BBT_ALERT_RAISED && strcmp(r->code, code) == 0;
}

static bool is_usage_state(const struct rx *r, const void *state)
{
        struct bbt_msg m;
        bool yes;

        decode_rx(r, &m);
        yes = m.body.usage.state == *(const enum bbt_usage_state *)state;
        bbt_msg_free(&m);
        return yes;
}

/* The [projector] driver against the PJLink simulator: hb.projector, the
 * lamp_hours and projector_error alerts, and the projector as the display
 * that makes the terminal idle (on) or standby (off). */
TEST(projector_drives_display_and_hb)
{
        static const enum bbt_power on = BBT_POWER_ON, off = BBT_POWER_OFF;
        static const enum bbt_usage_state idle = BBT_USAGE_IDLE, standby = BBT_USAGE_STANDBY;
        struct bbt_test_broker b = { 0 };
        struct bbt_pjlink_sim sim;
        struct sub s;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct bbt_msg m;
        char extra[512];
        long i;
        size_t mark;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        bbt_pjlink_sim_init(&sim);
        sim.power = BBT_POWER_ON;
        sim.lamp_hours[0] = 2500;
        memcpy(sim.erst, "000010", 7); /* filter: warning */
        ASSERT_OK(bbt_pjlink_sim_start(&sim, &loop));
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        c.port = b.port;
        c.hb = "300ms";
        c.usage_flush = "1s";
        snprintf(extra, sizeof(extra),
                 NO_LOCAL_HW "\n[peripherals]\nenabled = no\n"
                             "\n[projector]\nhost = 127.0.0.1\nport = %d\npoll_interval = 1s\ntimeout = 2s\n"
                             "lamp_hours_limit = 2000\n",
                 sim.port);
        c.spool_extra = extra;
        write_conf(conf_path, &c);
        agent_start(&a);

        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_HB, is_hb_projector_power, &on) >= 0 &&
                                           find_rx(&s, 0, BBT_CH_ALERT, is_raised, "lamp_hours") >= 0 &&
                                           find_rx(&s, 0, BBT_CH_ALERT, is_raised, "projector_error") >= 0 &&
                                           find_rx(&s, 0, BBT_CH_USAGE, is_usage_state, &idle) >= 0),
                 15000, "received %zu messages; simulator: %u connections, %u commands, last \"%s\"", s.n,
                 sim.connections, sim.commands, sim.last_command);
        fprintf(stderr, "simulator: %u connections, %u commands\n", sim.connections, sim.commands);

        /* hb.projector as simulated. */
        i = find_rx(&s, 0, BBT_CH_HB, is_hb_projector_power, &on);
        fprintf(stderr, "hb: %s\n", s.rx[i].payload);
        decode_rx(&s.rx[i], &m);
        if (!m.body.hb.projector.has_lamp_hours || m.body.hb.projector.lamp_hours != 2500)
                defer_fail("hb.projector.lamp_hours: expected 2500: %s", s.rx[i].payload);
        if (!m.body.hb.projector.has_erst || m.body.hb.projector.erst[BBT_ERST_FILTER] != BBT_ERST_WARNING)
                defer_fail("hb.projector.erst: expected filter warning: %s", s.rx[i].payload);
        else
                for (int k = 0; k < BBT_ERST__COUNT; k++)
                        if (k != BBT_ERST_FILTER && m.body.hb.projector.erst[k] != BBT_ERST_OK)
                                defer_fail("hb.projector.erst item %d: expected ok: %s", k, s.rx[i].payload);
        if (m.body.hb.state != BBT_USAGE_IDLE)
                defer_fail("hb.state: expected idle with the projector on: %s", s.rx[i].payload);
        bbt_msg_free(&m);

        /* The alerts, warnings both. */
        i = find_rx(&s, 0, BBT_CH_ALERT, is_raised, "lamp_hours");
        fprintf(stderr, "alert: %s\n", s.rx[i].payload);
        decode_rx(&s.rx[i], &m);
        if (m.body.alert.severity != BBT_SEVERITY_WARNING)
                defer_fail("lamp_hours: expected severity warning: %s", s.rx[i].payload);
        if (!m.body.alert.detail || !strstr(m.body.alert.detail, "2500"))
                defer_fail("lamp_hours: expected the hours (2500) in the detail: %s", s.rx[i].payload);
        bbt_msg_free(&m);
        i = find_rx(&s, 0, BBT_CH_ALERT, is_raised, "projector_error");
        fprintf(stderr, "alert: %s\n", s.rx[i].payload);
        decode_rx(&s.rx[i], &m);
        if (m.body.alert.severity != BBT_SEVERITY_WARNING)
                defer_fail("projector_error: expected severity warning: %s", s.rx[i].payload);
        if (!m.body.alert.detail || !strstr(m.body.alert.detail, "filter"))
                defer_fail("projector_error: expected the filter item in the detail: %s", s.rx[i].payload);
        bbt_msg_free(&m);
        i = find_rx(&s, 0, BBT_CH_USAGE, is_usage_state, &idle);
        fprintf(stderr, "usage: %s\n", s.rx[i].payload);

        /* Raised once each, not at every poll. */
        run_for(2500);
        {
                size_t n_lamp = 0, n_err = 0, k;

                for (k = 0; k < s.n; k++) {
                        n_lamp += s.rx[k].ch == BBT_CH_ALERT && is_raised(&s.rx[k], "lamp_hours");
                        n_err += s.rx[k].ch == BBT_CH_ALERT && is_raised(&s.rx[k], "projector_error");
                }
                if (n_lamp != 1 || n_err != 1)
                        defer_fail("expected lamp_hours and projector_error raised once each, got %zu and %zu",
                                   n_lamp, n_err);
        }

        /* The projector is switched off (at the projector): standby. */
        mark = s.n;
        sim.power = BBT_POWER_OFF;
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, mark, BBT_CH_HB, is_hb_projector_power, &off) >= 0 &&
                                           find_rx(&s, mark, BBT_CH_USAGE, is_usage_state, &standby) >= 0),
                 10000, "after power off: received %zu messages", s.n - mark);
        i = find_rx(&s, mark, BBT_CH_USAGE, is_usage_state, &standby);
        fprintf(stderr, "usage: %s\n", s.rx[i].payload);
        /* Only idle before the standby interval, since the power went off. */
        {
                long k;

                for (k = (long)mark; k < i; k++)
                        if (s.rx[k].ch == BBT_CH_USAGE && !is_usage_state(&s.rx[k], &idle))
                                defer_fail("usage before standby: expected idle: %s", s.rx[k].payload);
        }

        /* The aggregator switches it back on: the command reaches the projector. */
        mark = s.n;
        send_cmd(&s, "t-pow-1", "projector_power", "{\"on\":true}");
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-pow-1") >= 0), 10000,
                 "no reply to projector_power");
        i = find_rx(&s, mark, BBT_CH_CMD_REPLY, is_reply_to, "t-pow-1");
        if (!s.rx[i].ok)
                FAIL("projector_power: expected ok true: %s", s.rx[i].payload);
        ASSERT(sim.power != BBT_POWER_OFF);

        agent_stop(&a);
        run_for(300);
        check_seqs(&s, NULL, 0);
        check_log_clean(a.log);
        finish_deferred();

        sub_close(&s);
        bbt_pjlink_sim_stop(&sim);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

static bool is_inventory_retained(const struct rx *r, const void *arg)
{
        return r->retain;
}

/* [peripherals] expect = pen on a machine without a pen: periph_missing. */
TEST(periph_expect_missing_alert)
{
        struct bbt_test_broker b = { 0 };
        struct sub s, ret;
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct bbt_msg m;
        long i;
        size_t k;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        c.port = b.port;
        c.hb = "1s";
        c.spool_extra = NO_LOCAL_HW "\n[peripherals]\nenabled = yes\nexpect = pen\ndebounce = 200ms\n";
        write_conf(conf_path, &c);
        agent_start(&a);

        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_ALERT, is_raised, "periph_missing") >= 0 &&
                                           count_rx(&s, 0, BBT_CH_INVENTORY) >= 1),
                 15000, "received %zu messages", s.n);
        i = find_rx(&s, 0, BBT_CH_ALERT, is_raised, "periph_missing");
        fprintf(stderr, "alert: %s\n", s.rx[i].payload);
        decode_rx(&s.rx[i], &m);
        if (!m.body.alert.detail || !strstr(m.body.alert.detail, "pen"))
                defer_fail("periph_missing: expected \"pen\" in the detail: %s", s.rx[i].payload);
        bbt_msg_free(&m);
        i = find_rx(&s, 0, BBT_CH_INVENTORY, NULL, NULL);
        decode_rx(&s.rx[i], &m);
        fprintf(stderr, "inventory: %zu devices\n", m.body.inventory.n_devices);
        for (k = 0; k < m.body.inventory.n_devices; k++)
                if (m.body.inventory.devices[k].kind == BBT_KIND_PEN)
                        defer_fail("inventory lists a pen (%s) yet periph_missing was raised for pen",
                                   m.body.inventory.devices[k].syspath);
        bbt_msg_free(&m);

        /* The retained inventory decodes (the subscriber decodes every message). */
        {
                static const char *const retained[] = { PREFIX "inventory", NULL };

                sub_start(&ret, "retained", b.port, retained);
                WAIT_FOR(find_rx(&ret, 0, BBT_CH_INVENTORY, is_inventory_retained, NULL) >= 0, 5000,
                         "no retained inventory: %zu messages", ret.n);
                sub_close(&ret);
        }

        agent_stop(&a);
        run_for(300);
        check_seqs(&s, NULL, 0);
        check_log_clean(a.log);
        finish_deferred();

        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

/* A spool_drop raised before a restart is not forgotten: the next run
 * announces it again and clears it once its backlog is out. */
TEST(spool_drop_cleared_after_restart)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct sub s;
        int64_t birth_seq;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        bbt_test_broker_kill(&b);
        prefill_spool();
        c.port = b.port;
        c.hb = "100ms";
        c.spool_extra = FULL_SPOOL_CONF;
        write_conf(conf_path, &c);
        /* Offline: the spool overflows and the alert is raised (in the spool), then a crash. */
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), bbt_test_file_contains(a.log, "oldest unsent records")), 20000,
                 "the agent did not drop records from the full spool");
        run_for(300);
        agent_kill9(&a);
        bbt_test_broker_restart(&b);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL) >= 0), 15000, "no birth");
        birth_seq = s.rx[find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL)].seq;
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_HB, is_live_hb, &birth_seq) >= 0), 30000,
                 "backlog not drained");
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_ALERT, is_spool_drop_cleared, NULL) >= 0), 5000,
                 "the spool_drop alert of the earlier run was never cleared");
        ASSERT_GE(find_rx(&s, 0, BBT_CH_ALERT, is_spool_drop_raised, NULL), 0);
        agent_stop(&a);
        run_for(300);
        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

/* ---- an agent that sleeps ---- */

/* The unsigned value of KEY= in the spool's meta file, or -1. */
static long long meta_value(const char *key)
{
        char path[400], line[512];
        size_t n = strlen(key);
        long long v = -1;
        FILE *f;

        snprintf(path, sizeof(path), "%s/meta", spool_dir);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, n) == 0 && line[n] == '=')
                        v = strtoll(line + n + 1, NULL, 10);
        fclose(f);
        return v;
}

static struct timespec meta_mtime(void)
{
        char path[400];
        struct stat st;

        snprintf(path, sizeof(path), "%s/meta", spool_dir);
        if (stat(path, &st) < 0)
                FAIL("stat %s: %s", path, strerror(errno));
        return st.st_mtim;
}

/* N heartbeats of an earlier run in the spool, seqs 1..N. */
static void prefill_records(int n)
{
        struct bbt_spool_options so;
        struct bbt_spool *sp;

        bbt_spool_options_init(&so, spool_dir);
        ASSERT_OK(bbt_spool_open(&so, NULL, NULL, &sp));
        for (int seq = 1; seq <= n; seq++) {
                struct bbt_msg m;
                char *json;
                size_t len;

                bbt_msg_init(&m, BBT_CH_HB);
                m.seq = seq;
                m.ts = bbt_test_wall_ms();
                m.body.hb.mem_total = m.body.hb.mem_available = 1LL << 30;
                m.body.hb.disk_root.total = m.body.hb.disk_root.free = 1LL << 30;
                ASSERT_OK(bbt_msg_encode(&m, &json, &len, NULL));
                ASSERT_OK(bbt_spool_append(sp, (uint64_t)seq, m.ts, 0, PREFIX "hb", json, len, NULL));
                free(json);
        }
        ASSERT_OK(bbt_spool_close(sp));
}

/* The meta save and the fsync are due after a change, not on a clock: an
 * acknowledgement reaches meta within about a second, also one that comes
 * long after the last append (a backlog drained slowly), and an agent with
 * nothing to do leaves the file alone. */
TEST(meta_acks_saved_lazily_and_left_alone_while_idle)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct timespec before, after;
        long long acked_idle;
        struct sub s;

        env_init();
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(&b, NULL);
        prefill_records(40);
        c.port = b.port;
        c.hb = "1h";
        c.usage_flush = "1h";
        c.spool_extra = "drain_rate = 10\n"; /* the backlog drains for about 4 s after the last append */
        write_conf(conf_path, &c);
        sub_start(&s, "sub", b.port, all_topics);
        sub_sync(&s);
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_STATE, is_birth, NULL) >= 0), 10000, "no birth");
        WAIT_FOR((bbt_test_daemon_alive(&a), count_rx(&s, 0, BBT_CH_HB) >= 41), 15000, "the backlog was not sent");

        /* Nothing happens for three seconds: nothing is written, although the
         * last acknowledgements are not saved yet (they wait up to five
         * minutes, or for the clean stop). (A window in which the agent did
         * have something to send -- the usage interval closed at a
         * wall-clock hour -- does not count: try another.) */
        run_for(1500); /* a save already due when the wait above ended */
        for (int attempt = 0;; attempt++) {
                size_t mark = s.n;

                before = meta_mtime();
                run_for(3000);
                after = meta_mtime();
                bbt_test_daemon_alive(&a);
                if (s.n > mark && attempt < 2) {
                        run_for(1500);
                        continue;
                }
                ASSERT_EQ(s.n, mark);
                if (before.tv_sec != after.tv_sec || before.tv_nsec != after.tv_nsec)
                        FAIL("meta was rewritten while the agent had nothing urgent to save");
                break;
        }
        acked_idle = meta_value("acked");

        /* A command: its reply and the inventory are appended and acknowledged,
         * which is not urgent either; the clean stop saves them all. */
        send_cmd(&s, "t-idle-1", "inventory", NULL);
        WAIT_FOR((bbt_test_daemon_alive(&a), find_rx(&s, 0, BBT_CH_CMD_REPLY, is_reply_to, "t-idle-1") >= 0), 5000,
                 "no reply to the inventory command");
        before = meta_mtime();
        run_for(2000);
        after = meta_mtime();
        if (before.tv_sec != after.tv_sec || before.tv_nsec != after.tv_nsec)
                FAIL("meta was rewritten for acknowledgements alone");
        agent_stop(&a);
        ASSERT_GE(meta_value("appended"), 40 + 2);
        ASSERT_EQ(meta_value("acked"), meta_value("appended"));
        ASSERT_LT(acked_idle, meta_value("acked")); /* the last acks waited for the stop */
        sub_close(&s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}

/* ---- power schedule, set, wake (docs/operations.md) ---- */

/* [power] for these tests: nothing is switched off, each power-off is a line
 * in state_dir/poweroff.dry-run (logind cannot run here). */
#define DRY_RUN_CONF "\n[power]\nmethod = dry-run\n"

static char dry_run_path[400];

static int dry_run_count(void)
{
        snprintf(dry_run_path, sizeof(dry_run_path), "%s/poweroff.dry-run", state_dir);
        return bbt_test_count_in_file(dry_run_path, "poweroff ");
}

/* NOW + IN_MS on the wall clock as an RFC 3339 time at +08:00 (China), whole
 * seconds rounded up. */
static const char *cn_time(int64_t in_ms, char *buf, size_t size)
{
        time_t t = (time_t)((bbt_test_wall_ms() + in_ms + 999) / 1000) + 8 * 3600;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
        return buf;
}

/* The reply to ID (waited for), as its index. */
static long wait_reply(struct sub *s, struct bbt_test_daemon *a, const char *id)
{
        WAIT_FOR((bbt_test_daemon_alive(a), find_rx(s, 0, BBT_CH_CMD_REPLY, is_reply_to, id) >= 0), 5000,
                 "no reply to %s", id);
        return find_rx(s, 0, BBT_CH_CMD_REPLY, is_reply_to, id);
}

/* Sends a command and requires a reply with OK; for ok false, its error
 * must contain ERROR_PART. Returns the reply's payload. */
static const char *expect_reply(struct sub *s, struct bbt_test_daemon *a, const char *id, const char *op,
                                const char *args, bool ok, const char *error_part)
{
        const struct rx *r;
        struct bbt_msg m;

        send_cmd(s, id, op, args);
        r = &s->rx[wait_reply(s, a, id)];
        if (r->ok != ok)
                FAIL("%s %s %s: expected ok %d: %s", id, op, args ? args : "", ok, r->payload);
        if (!ok) {
                decode_rx(r, &m);
                ASSERT_STR_CONTAINS(m.body.reply.error, error_part);
                bbt_msg_free(&m);
        }
        return r->payload;
}

static bool is_event(const struct rx *r, const void *code)
{
        return strcmp(r->code, code) == 0 && strstr(r->payload, "\"event\":true") != NULL;
}

static size_t count_events(const struct sub *s, const char *code)
{
        size_t n = 0;

        for (long i = find_rx(s, 0, BBT_CH_ALERT, is_event, code); i >= 0;
             i = find_rx(s, (size_t)i + 1, BBT_CH_ALERT, is_event, code))
                n++;
        return n;
}

/* The broker, the subscriber and the agent with C, in the test's directory
 * (env_init() done); returns at the agent's birth. */
static void start_online(struct bbt_test_broker *b, struct sub *s, struct bbt_test_daemon *a, struct conf *c)
{
        ASSERT_OK(uv_loop_init(&loop));
        bbt_test_broker_start(b, NULL);
        sub_start(s, "sub", b->port, all_topics);
        sub_sync(s);
        c->port = b->port;
        if (!c->hb)
                c->hb = "1s";
        write_conf(conf_path, c);
        agent_start(a);
        WAIT_FOR((bbt_test_daemon_alive(a), find_rx(s, 0, BBT_CH_STATE, is_birth, NULL) >= 0), 10000, "no birth");
}

static void start_all(struct bbt_test_broker *b, struct sub *s, struct bbt_test_daemon *a, struct conf *c)
{
        env_init();
        start_online(b, s, a, c);
}

/* Starts the agent again and waits for its birth (commands before its
 * subscription would be lost). */
static void restart_online(struct sub *s, struct bbt_test_daemon *a)
{
        long last = -1;
        uint32_t boot;

        for (long i = find_rx(s, 0, BBT_CH_STATE, is_birth, NULL); i >= 0;
             i = find_rx(s, (size_t)i + 1, BBT_CH_STATE, is_birth, NULL))
                last = i;
        boot = last >= 0 ? s->rx[last].boot : 0;
        agent_start(a);
        WAIT_FOR((bbt_test_daemon_alive(a), find_rx(s, 0, BBT_CH_STATE, is_birth, &boot) >= 0), 10000, "no new birth");
}

static void stop_all(struct bbt_test_broker *b, struct sub *s, struct bbt_test_daemon *a)
{
        agent_stop(a);
        run_for(200);
        check_log_clean(log_path);
        sub_close(s);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(b);
        bbt_test_passed();
}

/* A schedule sent once is kept across a restart and carried out while the
 * broker is down; the power_off event reaches the broker later. */
TEST(power_schedule_fires_offline_after_restart)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_test_daemon a;
        struct conf c = { .spool_extra = DRY_RUN_CONF };
        struct sub s;
        char t1[40], t2[40], args[200], power_file[400];
        const char *reply;

        start_all(&b, &s, &a, &c);
        snprintf(args, sizeof(args), "{\"rev\":1,\"off\":[\"%s\",\"%s\"]}", cn_time(3000, t1, sizeof(t1)),
                 cn_time(3600000, t2, sizeof(t2)));
        reply = expect_reply(&s, &a, "ps-1", "power_schedule", args, true, NULL);
        ASSERT_STR_CONTAINS(reply, "\"pending\":2");
        /* Restart with the broker down: only the agent's own file has the schedule. */
        agent_stop(&a);
        bbt_test_broker_kill(&b);
        agent_start(&a);
        WAIT_FOR((bbt_test_daemon_alive(&a), dry_run_count() == 1), 8000, "the power-off at %s did not happen", t1);
        agent_stop(&a);
        ASSERT(bbt_test_file_contains(log_path, "power: power_off: scheduled power-off at"));
        snprintf(power_file, sizeof(power_file), "%s/power", state_dir);
        ASSERT_EQ(bbt_test_count_in_file(power_file, "entry="), 1); /* t2 is left */
        /* Online again: the event was spooled. */
        bbt_test_broker_restart(&b);
        sub_sync(&s);
        restart_online(&s, &a);
        WAIT_FOR((bbt_test_daemon_alive(&a), count_events(&s, "power_off") >= 1), 8000, "no power_off event");
        ASSERT_EQ(count_events(&s, "power_postponed"), 0);
        ASSERT_EQ(dry_run_count(), 1);
        stop_all(&b, &s, &a);
}

/* In use at the time (display on, audio playing: the real drivers reading a
 * fixture tree): postponed in steps, powered off once the board is idle;
 * with at_bound skip, skipped when still in use at the bound. About 10 s:
 * the audio driver reads every 2 s. */
TEST(power_postponed_while_in_use)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct sub s;
        const char *tree = bbt_test_tree_new("agent-hw");
        char t[40], args[200];

        bbt_test_tree_put(tree, "sys/class/drm/card0-HDMI-A-1/status", "connected\n");
        bbt_test_tree_put(tree, "sys/class/drm/card0-HDMI-A-1/enabled", "enabled\n");
        bbt_test_tree_put(tree, "sys/class/drm/card0-HDMI-A-1/dpms", "On\n");
        bbt_test_tree_put(tree, "proc/asound/card0/pcm0p/sub0/status", "state: RUNNING\nowner_pid   : 1\n");
        c.root = tree;
        c.spool_extra = DRY_RUN_CONF "\n[health]\nenabled = no\n\n[input]\nenabled = no\n"
                        "\n[display]\nenabled = yes\n\n[audio]\nenabled = yes\n";
        start_all(&b, &s, &a, &c);
        WAIT_FOR((bbt_test_daemon_alive(&a), bbt_test_file_contains(log_path, "display on")), 5000, "display not on");

        snprintf(args, sizeof(args), "{\"off\":[\"%s\"],\"postpone_step\":2,\"postpone_max\":6}",
                 cn_time(1000, t, sizeof(t)));
        expect_reply(&s, &a, "ps-use-1", "power_schedule", args, true, NULL);
        WAIT_FOR((bbt_test_daemon_alive(&a), count_events(&s, "power_postponed") >= 1), 5000, "not postponed");
        ASSERT_EQ(dry_run_count(), 0);
        bbt_test_tree_put(tree, "proc/asound/card0/pcm0p/sub0/status", "closed\n");
        WAIT_FOR((bbt_test_daemon_alive(&a), count_events(&s, "power_off") >= 1), 8000, "not powered off");
        /* The event is spooled before the request runs on its worker thread. */
        WAIT_FOR((bbt_test_daemon_alive(&a), dry_run_count() == 1), 2000, "no power-off request");
        ASSERT_STR_CONTAINS(s.rx[find_rx(&s, 0, BBT_CH_ALERT, is_event, "power_off")].payload, "postponed");

        /* Still in use at the bound, and the schedule says skip. */
        bbt_test_tree_put(tree, "proc/asound/card0/pcm0p/sub0/status", "state: RUNNING\nowner_pid   : 1\n");
        run_for(2500); /* the audio driver's next read */
        snprintf(args, sizeof(args), "{\"off\":[\"%s\"],\"postpone_step\":1,\"postpone_max\":1,\"at_bound\":\"skip\"}",
                 cn_time(1000, t, sizeof(t)));
        expect_reply(&s, &a, "ps-use-2", "power_schedule", args, true, NULL);
        WAIT_FOR((bbt_test_daemon_alive(&a), count_events(&s, "power_skipped") >= 1), 6000, "not skipped");
        ASSERT_EQ(dry_run_count(), 1);
        stop_all(&b, &s, &a);
}

/* Malformed and expired commands are refused with a reason; set is checked,
 * applied, answered with the effective values and kept across a restart;
 * shutdown_at powers off at its time. */
TEST(power_and_set_commands_checked)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_test_daemon a;
        struct conf c = { .spool_extra = DRY_RUN_CONF };
        struct sub s;
        char args[200];
        const char *reply;

        start_all(&b, &s, &a, &c);
        expect_reply(&s, &a, "bad-1", "power_schedule", "{\"off\":[\"2027-01-04T18:00:00\"]}", false,
                     "cmd.args.off[0]: expected string matching");
        expect_reply(&s, &a, "bad-2", "power_schedule", "{\"off\":[\"2027-02-30T18:00:00+08:00\"]}", false,
                     "args.off[0]: 2027-02-30T18:00:00+08:00 is not a date");
        expect_reply(&s, &a, "bad-3", "power_schedule",
                     "{\"off\":[\"2027-01-05T18:00:00+08:00\",\"2027-01-04T18:00:00+08:00\"]}", false,
                     "args.off[1]: 2027-01-04T18:00:00+08:00 is not after");
        snprintf(args, sizeof(args), "{\"at\":%lld}", (long long)(bbt_test_wall_ms() - 600000));
        expect_reply(&s, &a, "bad-4", "shutdown_at", args, false, "expired: args.at");
        {
                char json[300];

                snprintf(json, sizeof(json),
                         "{\"v\":1,\"seq\":900,\"ts\":%lld,\"boot\":7,\"id\":\"bad-5\",\"op\":\"inventory\","
                         "\"expires\":%lld}", (long long)bbt_test_wall_ms(), (long long)(bbt_test_wall_ms() - 60000));
                send_raw_cmd(&s, json);
                ASSERT(!s.rx[wait_reply(&s, &a, "bad-5")].ok);
                ASSERT_STR_CONTAINS(s.rx[wait_reply(&s, &a, "bad-5")].payload, "expired: the command expired");
        }
        expect_reply(&s, &a, "set-1", "set", "{\"heartbeat_interval\":\"50ms\"}", false, "heartbeat_interval");
        expect_reply(&s, &a, "set-2", "set", "{\"bogus\":1}", false, "unknown setting bogus");
        expect_reply(&s, &a, "set-3", "set", "{\"idle_timeout\":true}", false, "idle_timeout: expected a duration");
        reply = expect_reply(&s, &a, "set-4", "set", "{\"heartbeat_interval\":\"2s\",\"idle_timeout\":30}", true, NULL);
        ASSERT_STR_CONTAINS(reply, "\"heartbeat_interval_ms\":2000");
        ASSERT_STR_CONTAINS(reply, "\"idle_timeout_ms\":30000");
        ASSERT_EQ(dry_run_count(), 0);
        /* Kept across a restart, over the file's 1s. */
        agent_stop(&a);
        restart_online(&s, &a);
        reply = expect_reply(&s, &a, "set-5", "set", "{}", true, NULL);
        ASSERT_STR_CONTAINS(reply, "\"heartbeat_interval_ms\":2000");
        ASSERT_STR_CONTAINS(reply, "\"idle_timeout_ms\":30000");
        /* A one-off power-off a second ahead. */
        snprintf(args, sizeof(args), "{\"at\":%lld}", (long long)(bbt_test_wall_ms() + 1000));
        expect_reply(&s, &a, "sa-1", "shutdown_at", args, true, NULL);
        WAIT_FOR((bbt_test_daemon_alive(&a), count_events(&s, "power_off") >= 1), 5000, "no power_off event");
        ASSERT_STR_CONTAINS(s.rx[find_rx(&s, 0, BBT_CH_ALERT, is_event, "power_off")].payload, "(command sa-1)");
        WAIT_FOR((bbt_test_daemon_alive(&a), dry_run_count() == 1), 2000, "no power-off request");
        stop_all(&b, &s, &a);
}

/* ---- Wake-on-LAN in network namespaces ---- */

static char ns_a[32], ns_b[32];

static void netns_cleanup(void)
{
        char cmd[128];

        /* Deleting a namespace removes its end of the veth pair, and so both. */
        snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", ns_a, ns_b);
        if (system(cmd) < 0)
                fprintf(stderr, "cannot remove the test's network namespaces %s, %s\n", ns_a, ns_b);
}

static bool sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool sh_ok(const char *fmt, ...)
{
        char cmd[512];
        va_list ap;
        int st;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        st = system(cmd);
        return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void enter_netns(const char *name)
{
        char path[128];
        int fd;

        snprintf(path, sizeof(path), "/run/netns/%s", name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
                FAIL("setns %s: %s", path, strerror(errno));
        close(fd);
}

/* In namespace B: receives one datagram on UDP port 9 and writes it to PATH. */
static pid_t wol_receiver(const char *path, const char *ready)
{
        pid_t pid = fork();

        if (pid < 0)
                FAIL("fork: %s", strerror(errno));
        if (pid == 0) {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9) };
                struct timeval tv = { .tv_sec = 10 };
                unsigned char buf[512];
                ssize_t n;
                int fd, one = 1;
                FILE *f;

                enter_netns(ns_b);
                fd = socket(AF_INET, SOCK_DGRAM, 0);
                if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
                    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        _exit(3);
                bbt_test_write_file(ready, "ready\n");
                n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0)
                        _exit(4);
                f = fopen(path, "we");
                if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0)
                        _exit(5);
                _exit(0);
        }
        return pid;
}

/* The agent in namespace A reports its veth (MAC, 10.77.x.1/24) in the
 * inventory and, for a wake command, broadcasts the magic packet on that
 * subnet: a receiver in namespace B, across the veth pair, gets it. */
TEST(wake_sends_magic_packet_across_netns)
{
        static const char target[] = "02:1a:2b:3c:4d:5e";
        struct bbt_test_broker b = { 0 };
        struct bbt_test_daemon a;
        struct conf c = { 0 };
        struct sub s;
        char ready[400], got[400], want[32], va[16], vb[16], net[64];
        unsigned char packet[102];
        const char *reply;
        int sub_net = 100 + getpid() % 100, st;
        pid_t rx;
        FILE *f;

        if (geteuid() != 0)
                bbt_test_skip("needs root to create network namespaces");
        snprintf(ns_a, sizeof(ns_a), "bbt-wol-a-%d", (int)getpid());
        snprintf(ns_b, sizeof(ns_b), "bbt-wol-b-%d", (int)getpid());
        snprintf(va, sizeof(va), "bwa%d", (int)getpid() % 100000);
        snprintf(vb, sizeof(vb), "bwb%d", (int)getpid() % 100000);
        if (!sh_ok("ip netns add %s 2>/dev/null", ns_a))
                bbt_test_skip("cannot create a network namespace (ip netns add): not root, no ip, or not allowed here");
        bbt_test_at_cleanup(netns_cleanup);
        if (!sh_ok("ip netns add %s && ip link add %s netns %s type veth peer name %s netns %s", ns_b, va, ns_a, vb,
                   ns_b) ||
            !sh_ok("ip -n %s link set lo up && ip -n %s addr add 10.77.%d.1/24 dev %s && ip -n %s link set %s up", ns_a,
                   ns_a, sub_net, va, ns_a, va) ||
            !sh_ok("ip -n %s link set %s address %s && ip -n %s addr add 10.77.%d.2/24 dev %s && ip -n %s link set %s up",
                   ns_b, vb, target, ns_b, sub_net, vb, ns_b, vb))
                bbt_test_skip("cannot set up the veth pair between the test's namespaces");

        env_init();
        snprintf(ready, sizeof(ready), "%s/wol-ready", tmp_dir);
        snprintf(got, sizeof(got), "%s/wol-packet", tmp_dir);
        rx = wol_receiver(got, ready);
        BBT_WAIT_FOR(access(ready, F_OK) == 0, 5000, "the receiver in %s did not start", ns_b);
        /* Everything else (broker, subscriber, agent) lives in namespace A. */
        enter_netns(ns_a);
        start_online(&b, &s, &a, &c);
        snprintf(net, sizeof(net), "\"ipv4\":\"10.77.%d.1\",\"prefix\":24", sub_net);
        WAIT_FOR((bbt_test_daemon_alive(&a), count_rx(&s, 0, BBT_CH_INVENTORY) >= 1), 10000, "no inventory");
        ASSERT_STR_CONTAINS(s.rx[find_rx(&s, 0, BBT_CH_INVENTORY, NULL, NULL)].payload, net);

        reply = expect_reply(&s, &a, "wake-1", "wake", "{\"mac\":\"02:1A:2B:3C:4D:5E\"}", true, NULL);
        snprintf(net, sizeof(net), "\"to\":\"10.77.%d.255\"", sub_net);
        ASSERT_STR_CONTAINS(reply, net);
        ASSERT_STR_CONTAINS(reply, "\"sent_by\":\"" PREFIX "\"");
        snprintf(want, sizeof(want), "\"ifname\":\"%s\"", va);
        ASSERT_STR_CONTAINS(reply, want);
        if (waitpid(rx, &st, 0) != rx || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                FAIL("the receiver in %s got nothing: %s", ns_b, bbt_test_status_text(st));
        f = fopen(got, "re");
        ASSERT(f);
        ASSERT_EQ(fread(packet, 1, sizeof(packet), f), sizeof(packet));
        ASSERT_EQ(fgetc(f), EOF);
        fclose(f);
        for (int i = 0; i < 6; i++)
                ASSERT_EQ(packet[i], 0xff);
        for (int i = 0; i < 16; i++)
                ASSERT(memcmp(packet + 6 + 6 * i, "\x02\x1a\x2b\x3c\x4d\x5e", 6) == 0);
        stop_all(&b, &s, &a);
}
