/* bbt-aggregator's Prometheus /metrics end to end: the real daemon and a real mosquitto on 127.0.0.1, scraped over a loopback socket, checked against the store and by promtool. */
/* bbt-test: label=integration timeout=90 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bbt/protocol.h"
#include "broker.h"
#include "daemon.h"
#include "test.h"

/*
 * Each case: a private directory, the harness's broker, bbt-aggregator with
 * [aggregator] metrics_listen on a free loopback port, and one plain
 * libmosquitto client publishing protocol messages (bbt_msg_encode) at QoS 1
 * as terminals of two counties. The scrape is read with a plain socket (no
 * HTTP library between the test and the server), its figures compared with
 * what was sent and with the store, and the whole text given to promtool
 * (Debian's prometheus package, installed by scripts/install-deps): a
 * missing promtool fails the case rather than skipping it.
 */

#define BROKER_CONF "max_queued_messages 1000000\nmax_inflight_messages 0\n"
#define TERM_A "bbt/v1/510107/3151010001/r101/"
#define TERM_B "bbt/v1/510108/3151020001/r201/"

static char tmp_dir[256], conf_path[320], store_path[320], log_path[320], client_id[64];
static struct bbt_test_broker broker;
static struct bbt_test_daemon daemon_;
static int metrics_port;
static struct mosquitto *pub;
static int pub_sent, pub_acked;

/* ---- the daemon ---- */

static void write_registry(void)
{
        char path[400];

        snprintf(path, sizeof(path), "%s/schools.csv", tmp_dir);
        bbt_test_write_file(path, "county_code,school_code,school_name,type,area,students\n"
                                  "510107,3151010001,一小,primary,urban,800\n"
                                  "510108,3151020001,二小,primary,rural,300\n");
        snprintf(path, sizeof(path), "%s/terminals.csv", tmp_dir);
        bbt_test_write_file(path, "school_code,terminal_id,room,expected\n"
                                  "3151010001,r101,一年级1班,\n"
                                  "3151010001,r102,一年级2班,\n"
                                  "3151020001,r201,一年级1班,\n");
}

static int broker_subacks(void)
{
        char path[512], needle[160];

        snprintf(path, sizeof(path), "%s/mosquitto.log", broker.dir);
        snprintf(needle, sizeof(needle), "Sending SUBACK to %s", client_id);
        return bbt_test_count_in_file(path, needle);
}

static void setup_timeout(const char *name, const char *timeout);

static void setup(const char *name)
{
        setup_timeout(name, "10s");
}

static void setup_timeout(const char *name, const char *timeout)
{
        char text[2048], exe[512];
        char *argv[] = { (char *)bbt_test_exe("county/aggregator", "bbt-aggregator", exe, sizeof(exe)), (char *)"-c",
                         conf_path, NULL };

        snprintf(tmp_dir, sizeof(tmp_dir), "%s", bbt_test_tmp_init(name));
        snprintf(conf_path, sizeof(conf_path), "%s/aggregator.conf", tmp_dir);
        snprintf(store_path, sizeof(store_path), "%s/aggregator.db", tmp_dir);
        snprintf(log_path, sizeof(log_path), "%s/aggregator.log", tmp_dir);
        snprintf(client_id, sizeof(client_id), "bbt-metrics-test-%ld", (long)getpid());
        bbt_test_dump_on_failure(log_path);
        mosquitto_lib_init();
        bbt_test_broker_start(&broker, BROKER_CONF);
        write_registry();
        metrics_port = bbt_test_free_port();
        /* gap_grace of a day: a gap stays "waiting", no resend is asked. */
        snprintf(text, sizeof(text),
                 "[broker]\nhost = 127.0.0.1\nport = %d\nclient_id = %s\nkeepalive = 5s\n"
                 "backoff_min = 100ms\nbackoff_max = 1s\n"
                 "[store]\npath = %s\nbatch_interval = 50ms\n"
                 "[registry]\nschools = %s/schools.csv\nterminals = %s/terminals.csv\n"
                 "[ingest]\ngap_grace = 1d\n"
                 "[aggregator]\nlog_level = debug\nmetrics_listen = 127.0.0.1:%d\nmetrics_timeout = %s\n",
                 bbt_test_broker_port(&broker), client_id, store_path, tmp_dir, tmp_dir, metrics_port, timeout);
        bbt_test_write_file(conf_path, text);
        bbt_test_daemon_start(&daemon_, "aggregator", argv, log_path);
        BBT_WAIT_FOR(broker_subacks() > 0 || bbt_test_daemon_exited(&daemon_), 15000,
                     "bbt-aggregator did not subscribe within 15 s");
        bbt_test_daemon_alive(&daemon_);
}

/* Stops the daemon (exit 0, no sanitizer report) and the broker. */
static void teardown(void)
{
        if (pub) {
                mosquitto_disconnect(pub);
                mosquitto_destroy(pub);
                pub = NULL;
        }
        bbt_test_daemon_term(&daemon_, 15000);
        bbt_test_check_sanitizers(log_path);
        bbt_test_broker_stop(&broker);
        mosquitto_lib_cleanup();
        bbt_test_passed();
}

/* ---- publishing ---- */

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
        pub_acked++;
}

static void pub_connect(void)
{
        pub = mosquitto_new(NULL, true, NULL);
        ASSERT(pub);
        mosquitto_publish_callback_set(pub, on_publish);
        ASSERT_EQ(mosquitto_connect(pub, "127.0.0.1", bbt_test_broker_port(&broker), 5), MOSQ_ERR_SUCCESS);
}

static void pub_raw(const char *topic, const char *payload, size_t len)
{
        int rc = mosquitto_publish(pub, NULL, topic, (int)len, payload, 1, false);

        if (rc != MOSQ_ERR_SUCCESS)
                FAIL("publish %s: %s", topic, mosquitto_strerror(rc));
        pub_sent++;
}

/* Every publish acknowledged by the broker. */
static void pub_flush(void)
{
        BBT_WAIT_STEP(pub_acked == pub_sent, 10000, mosquitto_loop(pub, 10, 1), "the broker acknowledged %d of %d",
                      pub_acked, pub_sent);
}

/* M under PREFIX with SEQ and BOOT 1, encoded by the protocol library. */
static void pub_msg(const char *prefix, struct bbt_msg *m, int64_t seq)
{
        char topic[BBT_TOPIC_MAX + 16], *json = NULL;
        size_t len;

        m->seq = seq;
        m->boot = 1;
        m->ts = bbt_test_wall_ms();
        ASSERT_OK(bbt_msg_encode(m, &json, &len, NULL));
        snprintf(topic, sizeof(topic), "%s%s", prefix, bbt_channel_name(m->channel));
        pub_raw(topic, json, len);
        free(json);
}

static void pub_birth(const char *prefix, int64_t seq)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_STATE);
        m.body.state.online = true;
        m.body.state.version = "0.1.0";
        m.body.state.hostname = "r101";
        m.body.state.os = "Debian GNU/Linux 12 (bookworm)";
        m.body.state.machine_id = "4f1c9a5e2b7d4c1e8a6f3b2d9c0e1f2a";
        pub_msg(prefix, &m, seq);
}

static void pub_hb(const char *prefix, int64_t seq)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_HB);
        m.body.hb.uptime = 3600;
        m.body.hb.cpu = 7.5;
        m.body.hb.mem_total = 8244236288;
        m.body.hb.mem_available = 5368709120;
        m.body.hb.disk_root.total = 119453777920;
        m.body.hb.disk_root.free = 80530636800;
        m.body.hb.state = BBT_USAGE_IDLE;
        m.body.hb.spool_depth = 1; /* not live: no clock-skew sample */
        m.body.hb.clock_synced = true;
        pub_msg(prefix, &m, seq);
}

/* The store's counter NAME (0 if none yet). */
static int64_t store_counter(const char *name)
{
        return bbt_test_db_int(store_path, 0, "SELECT value FROM counter WHERE name = '%s'", name);
}

/* ---- HTTP over a plain socket ---- */

static int connect_metrics(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)metrics_port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ASSERT(fd >= 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                FAIL("connect 127.0.0.1:%d: %s", metrics_port, strerror(errno));
        return fd;
}

/* Reads FD to its end (the server closes: "Connection: close" asked) within
 * TIMEOUT_MS. Returns the bytes (malloc'd). */
static char *read_all(int fd, int timeout_ms)
{
        size_t len = 0, cap = 65536;
        char *buf = malloc(cap);
        uint64_t deadline = bbt_test_now_ms() + (uint64_t)timeout_ms;

        ASSERT(buf);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (bbt_test_now_ms() > deadline)
                        FAIL("the metrics server did not finish its answer within %d ms", timeout_ms);
                if (poll(&p, 1, 100) <= 0)
                        continue;
                if (len + 1 >= cap) {
                        cap *= 2;
                        buf = realloc(buf, cap);
                        ASSERT(buf);
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0 && errno == ECONNRESET)
                        break;
                if (n < 0)
                        FAIL("read: %s", strerror(errno));
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return buf;
}

struct http_answer {
        int status;
        char *raw;        /* the whole answer */
        const char *body; /* into raw */
};

static void http(const char *method, const char *path, struct http_answer *ret)
{
        char req[256];
        int fd = connect_metrics();
        const char *sep;

        snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method, path);
        ASSERT_EQ(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        ret->raw = read_all(fd, 5000);
        close(fd);
        if (sscanf(ret->raw, "HTTP/1.1 %d ", &ret->status) != 1)
                FAIL("%s %s: not an HTTP answer: \"%.200s\"", method, path, ret->raw);
        sep = strstr(ret->raw, "\r\n\r\n");
        ASSERT(sep);
        ret->body = sep + 4;
}

/* METHOD PATH is answered STATUS with WANT somewhere in the answer. */
static void expect_answer(const char *method, const char *path, int status, const char *want)
{
        struct http_answer a;

        http(method, path, &a);
        if (a.status != status || !strstr(a.raw, want))
                FAIL("%s %s: expected %d with \"%s\", got:\n%s", method, path, status, want, a.raw);
        free(a.raw);
}

/* The scrape's body (malloc'd); fails unless 200 with the text format's type. */
static char *scrape(void)
{
        struct http_answer a;
        char *body;

        http("GET", "/metrics", &a);
        ASSERT_EQ(a.status, 200);
        ASSERT_STR_CONTAINS(a.raw, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
        body = strdup(a.body);
        free(a.raw);
        return body;
}

/* The value of the sample SERIES ("name" or "name{label=\"v\"}") in TEXT;
 * NAN if there is none. */
static double value(const char *text, const char *series)
{
        size_t n = strlen(series);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, series, n) == 0 && p[n] == ' ')
                        return strtod(p + n + 1, NULL);
        return NAN;
}

#define ASSERT_METRIC(text, series, expected)                                                      \
        do {                                                                                       \
                double bbt_v_ = value(text, series);                                               \
                if (isnan(bbt_v_) || bbt_v_ != (double)(expected))                                 \
                        FAIL("%s: expected %.17g, got %.17g in:\n%s", series, (double)(expected), bbt_v_, text); \
        } while (0)

static double rejected_sum(const char *text)
{
        static const char *const reasons[] = { "topic", "size", "json", "version", "field", "store" };
        char series[96];
        double sum = 0;

        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
                snprintf(series, sizeof(series), "bbt_messages_rejected_total{reason=\"%s\"}", reasons[i]);
                sum += value(text, series);
        }
        return sum;
}

/* The source tree's file REL (e.g. "docs/aggregator.md"), malloc'd. */
static char *source_file(const char *rel)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/../%s", bbt_test_srcdir(), rel);
        return bbt_test_slurp(path);
}

/* Every metric family of the scrape TEXT is in docs/aggregator.md's table
 * and in bbt-aggregator(8). */
static void assert_documented(const char *text)
{
        char *md = source_file("docs/aggregator.md"), *man = source_file("docs/man/bbt-aggregator.8");
        int families = 0;

        for (const char *p = strstr(text, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
                char name[128], needle[160], needle2[160];

                if (sscanf(p, "# TYPE %127s", name) != 1)
                        FAIL("a TYPE line without a name");
                snprintf(needle, sizeof(needle), "| `%s`", name);
                snprintf(needle2, sizeof(needle2), "| `%s{", name);
                if (!strstr(md, needle) && !strstr(md, needle2))
                        FAIL("%s is not in docs/aggregator.md's table of metrics (\"Monitoring\")", name);
                if (!strstr(man, name))
                        FAIL("%s is not in docs/man/bbt-aggregator.8 (METRICS)", name);
                families++;
        }
        ASSERT_GE(families, 20);
        free(md);
        free(man);
}

/* ---- promtool ---- */

static void find_promtool(char *buf, size_t size)
{
        if (!bbt_test_find_program("promtool", buf, size))
                FAIL("promtool not found: it is in Debian's prometheus package, which scripts/install-deps "
                     "installs; the scrape must be checked by it");
}

/* promtool check metrics on TEXT: its exit status, its output in *OUT (malloc'd). */
static int promtool(const char *text, char **out)
{
        char promtool_path[512], in_path[400], out_path[400];
        int status;

        find_promtool(promtool_path, sizeof(promtool_path));
        snprintf(in_path, sizeof(in_path), "%s/scrape.txt", tmp_dir);
        snprintf(out_path, sizeof(out_path), "%s/promtool.out", tmp_dir);
        bbt_test_write_file(in_path, text);
        {
                /* promtool check metrics reads standard input. */
                char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"exec \"$0\" check metrics < \"$1\"",
                                 promtool_path, in_path, NULL };

                status = bbt_test_run(argv, out_path, out_path, 30000);
        }
        *out = bbt_test_slurp(out_path);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ---- cases ---- */

/* What was fed shows in the scrape: received, stored, a duplicate, rejects by
 * reason, a command ignored, a gap, terminals known and online by county and
 * the registry's; the figures equal the store's; promtool finds nothing; the
 * commit histogram is whole; other paths and methods are refused. */
TEST(scrape)
{
        char *text, *out;
        struct http_answer a;
        struct stat st;
        double start, wal;
        int64_t t0 = bbt_test_wall_ms() / 1000;

        setup("metrics");
        pub_connect();
        pub_birth(TERM_A, 1);
        pub_hb(TERM_A, 2);
        pub_flush();
        pub_hb(TERM_A, 4);                                /* seq 3 missing: a gap */
        pub_raw(TERM_A "hb", "not json", 8);              /* rejected: json */
        pub_raw("bbt/v1/nonsense", "{}", 2);               /* rejected: topic */
        pub_raw(TERM_A "cmd", "{\"v\":1}", 7);            /* a command: ignored */
        pub_hb(TERM_B, 1);                                /* another county, never born: not online */
        pub_flush();
        /* Seq 2 again, byte for byte as a redelivery: the stored payload. */
        {
                const char *sql = "SELECT payload FROM raw WHERE seq = 2 AND terminal_id = (SELECT id FROM terminal "
                                  "WHERE terminal = 'r101')";
                char buf[4096];

                BBT_WAIT_FOR(*bbt_test_db_text(store_path, buf, sizeof(buf), "%s", sql), 10000,
                             "seq 2 was not stored");
                pub_raw(TERM_A "hb", buf, strlen(buf)); /* a duplicate */
        }
        pub_flush();
        /* 4 stored and 1 duplicate, committed (the store's counter follows each batch). */
        BBT_WAIT_FOR(store_counter("duplicates") == 1 && store_counter("stored") == 4, 10000,
                     "the store counted %" PRId64 " stored, %" PRId64 " duplicates", store_counter("stored"),
                     store_counter("duplicates"));

        /* TERM_B, never born, was asked for its birth and inventory (ask.c):
         * the two commands come back through the aggregator's own
         * subscription, received and ignored. */
        for (uint64_t end = bbt_test_now_ms() + 10000;; free(text)) {
                text = scrape();
                if (value(text, "bbt_messages_ignored_total") >= 3 || bbt_test_now_ms() > end)
                        break;
                bbt_test_sleep_ms(20);
        }
        ASSERT_METRIC(text, "bbt_terminal_asks_total{result=\"asked\"}", 1);
        ASSERT_METRIC(text, "bbt_terminal_asks_total{result=\"refused\"}", 0);
        ASSERT_METRIC(text, "bbt_messages_received_total", 10);
        ASSERT_METRIC(text, "bbt_messages_stored_total", 4);
        ASSERT_METRIC(text, "bbt_messages_duplicate_total", 1);
        ASSERT_METRIC(text, "bbt_messages_rejected_total{reason=\"json\"}", 1);
        ASSERT_METRIC(text, "bbt_messages_rejected_total{reason=\"topic\"}", 1);
        ASSERT_METRIC(text, "bbt_messages_rejected_total{reason=\"field\"}", 0);
        ASSERT_METRIC(text, "bbt_messages_rejected_total{reason=\"size\"}", 0);
        ASSERT_METRIC(text, "bbt_messages_rejected_total{reason=\"version\"}", 0);
        ASSERT_METRIC(text, "bbt_messages_rejected_total{reason=\"store\"}", 0);
        ASSERT_METRIC(text, "bbt_messages_ignored_total", 3);
        ASSERT_METRIC(text, "bbt_seq_conflicts_total", 0);
        ASSERT_METRIC(text, "bbt_gaps_detected_total", 1);
        ASSERT_METRIC(text, "bbt_gaps_open{state=\"waiting\"}", 1);
        ASSERT_METRIC(text, "bbt_gap_seqs_open{state=\"waiting\"}", 1);
        ASSERT_METRIC(text, "bbt_gaps_open{state=\"requested\"}", 0);
        ASSERT_METRIC(text, "bbt_resend_requests_total", 0);
        ASSERT_METRIC(text, "bbt_seqs_lost", 0);
        ASSERT_METRIC(text, "bbt_terminals{county=\"510107\"}", 1);
        ASSERT_METRIC(text, "bbt_terminals{county=\"510108\"}", 1);
        ASSERT_METRIC(text, "bbt_terminals_online{county=\"510107\"}", 1);
        ASSERT_METRIC(text, "bbt_terminals_online{county=\"510108\"}", 0);
        ASSERT_METRIC(text, "bbt_registry_terminals{county=\"510107\"}", 2);
        ASSERT_METRIC(text, "bbt_registry_terminals{county=\"510108\"}", 1);
        ASSERT_METRIC(text, "bbt_broker_connected", 1);
        ASSERT_METRIC(text, "bbt_build_info{version=\"" BBT_VERSION "\"}", 1);
        /* The same figures as the store's (a fresh store: all-time = this process). */
        ASSERT_METRIC(text, "bbt_messages_stored_total", store_counter("stored"));
        ASSERT_METRIC(text, "bbt_messages_rejected_total{reason=\"json\"}", store_counter("reject_json"));
        ASSERT_METRIC(text, "bbt_terminals_online{county=\"510107\"}",
                      bbt_test_db_int(store_path, -1, "SELECT count(*) FROM terminal WHERE county = '510107' AND online"));
        ASSERT_METRIC(text, "bbt_gap_seqs_open{state=\"waiting\"}",
                      bbt_test_db_int(store_path, -1, "SELECT sum(to_seq - from_seq + 1) FROM gap"));
        /* Every message is accounted for once. */
        ASSERT_EQ(value(text, "bbt_messages_received_total"),
                  value(text, "bbt_messages_stored_total") + value(text, "bbt_messages_duplicate_total") +
                          rejected_sum(text) + value(text, "bbt_messages_ignored_total") +
                          value(text, "bbt_seq_conflicts_total"));
        start = value(text, "process_start_time_seconds");
        ASSERT(start >= (double)t0 - 60 && start <= (double)bbt_test_wall_ms() / 1000 + 1);

        /* The histogram: cumulative buckets, +Inf equal to the count, at
         * least one commit (each batch), and a sum that is some time. */
        {
                static const char *const les[] = { "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                                   "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf" };
                char series[128];
                double prev = 0, count = value(text, "bbt_store_commit_duration_seconds_count");

                ASSERT(count >= 1);
                for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
                        double v;

                        snprintf(series, sizeof(series), "bbt_store_commit_duration_seconds_bucket{le=\"%s\"}", les[i]);
                        v = value(text, series);
                        if (isnan(v) || v < prev)
                                FAIL("%s: %g after %g", series, v, prev);
                        prev = v;
                }
                ASSERT(prev == count);
                ASSERT(value(text, "bbt_store_commit_duration_seconds_sum") > 0);
        }
        /* The store's files, as stat() sees them with nothing being written. */
        ASSERT_OK(stat(store_path, &st));
        ASSERT_METRIC(text, "bbt_store_size_bytes{file=\"database\"}", st.st_size);
        wal = value(text, "bbt_store_size_bytes{file=\"wal\"}");
        ASSERT(!isnan(wal));

        assert_documented(text);
        /* promtool: the scrape is clean (its lint included) ... */
        if (promtool(text, &out) != 0 || *out)
                FAIL("promtool check metrics found problems:\n%s", out);
        free(out);
        /* ... and it is a checker that can fail: a counter without _total. */
        ASSERT_NE(promtool("# HELP bbt_x X\n# TYPE bbt_x counter\nbbt_x 1\n", &out), 0);
        ASSERT_STR_CONTAINS(out, "_total");
        free(out);
        free(text);

        /* Only GET (and HEAD) on / and /metrics. */
        expect_answer("GET", "/nonsense", 404, "not found");
        expect_answer("POST", "/metrics", 405, "Allow: GET, HEAD\r\n");
        expect_answer("DELETE", "/", 405, "Allow: GET, HEAD\r\n");
        expect_answer("HEAD", "/metrics", 200, "Content-Type: text/plain; version=0.0.4");
        expect_answer("GET", "/", 200, "Prometheus metrics: /metrics");
        http("HEAD", "/metrics", &a);
        ASSERT_STR_EQ(a.body, "");
        free(a.raw);
        teardown();
}

/* Clients that connect and send nothing, or half a request, hold neither the
 * loop nor ingest: messages are stored meanwhile, a scrape is answered, the
 * server closes them after its timeout (10 s), and one address cannot take
 * more than its share of connections (8). */
TEST(slow_clients)
{
        enum { SILENT = 5, MSGS = 300 };
        int silent[SILENT], partial, extra[8];
        char *text, *rest;
        uint64_t t0;

        /* metrics_timeout 2s: the test waits it out (10 s by default). */
        setup_timeout("metrics-slow", "2s");
        pub_connect();
        for (int i = 0; i < SILENT; i++)
                silent[i] = connect_metrics();
        partial = connect_metrics();
        ASSERT_EQ(write(partial, "GET /metr", 9), 9);
        t0 = bbt_test_now_ms();
        pub_birth(TERM_A, 1);
        for (int s = 2; s <= MSGS; s++)
                pub_hb(TERM_A, s);
        pub_flush();
        BBT_WAIT_FOR(store_counter("stored") == MSGS, 10000, "stored %" PRId64 " of %d while slow clients were connected",
                     store_counter("stored"), MSGS);
        /* A scrape on another connection meanwhile. */
        text = scrape();
        ASSERT_METRIC(text, "bbt_messages_stored_total", MSGS);
        free(text);
        /* Closed by the server after its timeout, not before the messages were in. */
        for (int i = 0; i < SILENT; i++) {
                rest = read_all(silent[i], 20000);
                ASSERT_STR_EQ(rest, "");
                free(rest);
                close(silent[i]);
        }
        rest = read_all(partial, 5000);
        free(rest);
        close(partial);
        ASSERT_GE(bbt_test_now_ms() - t0, 1500);

        /* One address: 8 connections at most; the ninth is closed at once. */
        for (int i = 0; i < 8; i++)
                extra[i] = connect_metrics();
        {
                int ninth = connect_metrics();
                uint64_t t1 = bbt_test_now_ms();

                rest = read_all(ninth, 5000);
                ASSERT_STR_EQ(rest, "");
                ASSERT_LT(bbt_test_now_ms() - t1, 3000);
                free(rest);
                close(ninth);
        }
        for (int i = 0; i < 8; i++)
                close(extra[i]);
        /* And the server still answers once they are gone. */
        bbt_test_sleep_ms(200);
        text = scrape();
        ASSERT_METRIC(text, "bbt_messages_received_total", MSGS);
        free(text);
        teardown();
}

/* The scrape configuration and the alert rules docs/aggregator.md shows
 * ("Monitoring") are what promtool accepts. */
TEST(docs_examples)
{
        char promtool_path[512], path[400], out_path[400];
        char *md = source_file("docs/aggregator.md"), *section = strstr(md, "\n## Monitoring\n"), *end;
        const char *const what[2] = { "config", "rules" };
        int blocks = 0;

        snprintf(tmp_dir, sizeof(tmp_dir), "%s", bbt_test_tmp_init("metrics-docs"));
        find_promtool(promtool_path, sizeof(promtool_path));
        ASSERT(section);
        end = strstr(section + 1, "\n## ");
        if (end)
                *end = '\0';
        for (char *p = strstr(section, "```yaml\n"); p && blocks < 2; p = strstr(p, "```yaml\n")) {
                char *close;
                int status;

                p += strlen("```yaml\n");
                close = strstr(p, "```");
                ASSERT(close);
                *close = '\0';
                snprintf(path, sizeof(path), "%s/%s.yml", tmp_dir, what[blocks]);
                snprintf(out_path, sizeof(out_path), "%s/%s.out", tmp_dir, what[blocks]);
                bbt_test_write_file(path, p);
                {
                        char *argv[] = { promtool_path, (char *)"check", (char *)what[blocks], path, NULL };

                        status = bbt_test_run(argv, out_path, out_path, 30000);
                }
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        char *out = bbt_test_slurp(out_path);

                        FAIL("promtool check %s on docs/aggregator.md's example:\n%s", what[blocks], out);
                }
                blocks++;
                p = close + 1;
        }
        ASSERT_EQ(blocks, 2);
        free(md);
        bbt_test_passed();
}
