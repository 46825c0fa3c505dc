/* The bbt-aggregator daemon end to end: the real binary against a real mosquitto on 127.0.0.1, fed by fake terminals, checked in its SQLite store. */
/* bbt-test: label=integration timeout=120 */
#include <errno.h>
#include <signal.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>

#include "bbt/protocol.h"
#include "broker.h"
#include "daemon.h"
#include "test.h"

/*
 * Every test runs in a private temporary directory (aggregator.conf, the
 * store, registry files, the daemon's log), starts the harness's broker with
 * its queue limits raised, bbt-aggregator as a child process (PR_SET_PDEATHSIG,
 * and killed by an exit handler; tests/daemon.h), and one or more fake terminals: plain
 * libmosquitto clients that publish protocol messages built with
 * bbt_msg_encode at QoS 1, keep every message they made (their "spool"), and
 * answer the daemon's resend commands from it. The store is read with the
 * sqlite3 API on a read-only connection while the daemon runs (WAL).
 * On failure the daemon's and the broker's logs are printed.
 *
 * Environment: BBT_TEST_VERBOSE=1 prints every command a fake terminal gets,
 * and the logs even when the case passes.
 */

#define COUNTY "510107"
#define SCHOOL "3151010001"

/* Global options in mosquitto 2.0 (mosquitto.conf(5): "This option applies
 * globally"), so their place after the harness's listener line does not
 * matter. The defaults (1000 queued, 20 in flight per client) would drop
 * what queues for the daemon's session while it is down. */
#define BROKER_CONF "max_queued_messages 1000000\nmax_inflight_messages 0\n"

/* ---- the temporary directory, cleanup ---- */

static char tmp_dir[256], conf_path[320], store_path[320], log_path[320], client_id[64];
static struct bbt_test_broker broker;

static void env_init(void)
{
        snprintf(tmp_dir, sizeof(tmp_dir), "%s", bbt_test_tmp_init("aggregator"));
        snprintf(conf_path, sizeof(conf_path), "%s/aggregator.conf", tmp_dir);
        snprintf(store_path, sizeof(store_path), "%s/aggregator.db", tmp_dir);
        snprintf(log_path, sizeof(log_path), "%s/aggregator.log", tmp_dir);
        snprintf(client_id, sizeof(client_id), "bbt-aggregator-test-%ld", (long)getpid());
        bbt_test_dump_on_failure(log_path);
        mosquitto_lib_init();
}

static void fakes_free(void);

/* The case passed: frees what it made (so that a sanitizer build reports
 * only real leaks) and keeps the logs from being printed. */
static void pass(void)
{
        fakes_free();
        bbt_test_broker_stop(&broker);
        mosquitto_lib_cleanup();
        bbt_test_passed();
}

/* ---- the daemon ---- */

struct conf {
        const char *batch_interval; /* NULL: 100ms */
        const char *batch_size;     /* NULL: 1000 */
        const char *registry;       /* lines of the [registry] section, or NULL */
};

static void write_conf(const struct conf *c)
{
        char text[4096];

        snprintf(text, sizeof(text),
                 "# written by tests/test-aggregator.c\n"
                 "[broker]\n"
                 "host = 127.0.0.1\n"
                 "port = %d\n"
                 "client_id = %s\n"
                 "keepalive = 5s\n"
                 "backoff_min = 100ms\n"
                 "backoff_max = 1s\n"
                 "\n"
                 "[store]\n"
                 "path = %s\n"
                 "batch_interval = %s\n"
                 "batch_size = %s\n"
                 "\n"
                 "[registry]\n"
                 "%s"
                 "\n"
                 "[ingest]\n"
                 "gap_grace = 500ms\n"
                 "resend_timeout = 2s\n"
                 "resend_settle = 1s\n"
                 "\n"
                 "[aggregator]\n"
                 "log_level = debug\n",
                 bbt_test_broker_port(&broker), client_id, store_path,
                 c && c->batch_interval ? c->batch_interval : "100ms", c && c->batch_size ? c->batch_size : "1000",
                 c && c->registry ? c->registry : "");
        bbt_test_write_file(conf_path, text);
}

static int broker_log_count(const char *what)
{
        char path[512], needle[160];

        snprintf(path, sizeof(path), "%s/mosquitto.log", broker.dir);
        snprintf(needle, sizeof(needle), "%s %s", what, client_id);
        return bbt_test_count_in_file(path, needle);
}

/* Starts bbt-aggregator -c conf_path and waits until its subscription is in
 * place: the broker logged its SUBACK to the daemon's client id. */
static void daemon_start(struct bbt_test_daemon *d)
{
        char exe[512];
        char *argv[] = { (char *)bbt_test_exe("county/aggregator", "bbt-aggregator", exe, sizeof(exe)), (char *)"-c",
                         conf_path, NULL };
        int subacks = broker_log_count("Sending SUBACK to");
        uint64_t deadline = bbt_test_now_ms() + 15000;

        bbt_test_daemon_start(d, "daemon", argv, log_path);
        while (broker_log_count("Sending SUBACK to") <= subacks) {
                if (bbt_test_daemon_exited(d))
                        FAIL("bbt-aggregator exited during start-up (status 0x%x)", d->status);
                if (bbt_test_now_ms() > deadline)
                        FAIL("bbt-aggregator did not subscribe within 15 s");
                bbt_test_sleep_ms(10);
        }
}

/* ---- the store, read-only ---- */

/* bbt_test_db_int and bbt_test_db_text on this test's store. */
#define db_int(default_value, ...) bbt_test_db_int(store_path, default_value, __VA_ARGS__)
#define db_text(buf, size, ...) bbt_test_db_text(store_path, buf, size, __VA_ARGS__)

/* The terminal id of the terminal named by a "%s" argument, in SQL. */
#define TERM_ID "(SELECT id FROM terminal WHERE county = '" COUNTY "' AND school = '" SCHOOL "' AND terminal = '%s')"

static int64_t raw_count(const char *term)
{
        return db_int(0, "SELECT count(*) FROM raw WHERE terminal_id = " TERM_ID, term);
}

static int64_t counter(const char *name)
{
        return db_int(0, "SELECT value FROM counter WHERE name = '%s'", name);
}

static int64_t loss_rows(void)
{
        return db_int(0, "SELECT count(*) FROM loss");
}

/* The seqs of 1..N not in raw for TERM, as "a..b, c" into BUF. */
static const char *missing_seqs(const char *term, int64_t n, char *buf, size_t size)
{
        char sql[512];

        snprintf(sql, sizeof(sql), "SELECT seq FROM raw WHERE terminal_id = " TERM_ID " ORDER BY seq", term);
        return bbt_test_db_missing(store_path, sql, 1, n, buf, size, NULL);
}

/* Every seq 1..N of TERM stored exactly once (raw's primary key is
 * (terminal, seq), so count, min and max say it), and nothing else. */
static void assert_all_stored(const char *term, int64_t n)
{
        int64_t count = raw_count(term);
        int64_t lo = db_int(-1, "SELECT min(seq) FROM raw WHERE terminal_id = " TERM_ID, term);
        int64_t hi = db_int(-1, "SELECT max(seq) FROM raw WHERE terminal_id = " TERM_ID, term);
        char missing[512];

        if (count != n || lo != 1 || hi != n)
                FAIL("%s: expected seqs 1..%" PRId64 " stored once each, got %" PRId64 " rows, seqs %" PRId64
                     "..%" PRId64 "; missing: %s",
                     term, n, count, lo, hi, missing_seqs(term, n, missing, sizeof(missing)));
}

/* ---- fake terminals ---- */

struct stored_msg {
        enum bbt_channel ch;
        char *payload;
        size_t len;
};

struct fake {
        const char *name; /* the terminal id */
        struct mosquitto *mosq;
        char prefix[BBT_TOPIC_MAX];
        uint32_t boot;
        int64_t last_seq;          /* the highest seq made */
        struct stored_msg *msgs;   /* index = seq */
        size_t cap;
        bool answer_resend;        /* republish from msgs on a resend command */
        int64_t first_retained;    /* what the "spool" still has: seqs from here on */
        int resends;               /* resend commands received */
        int64_t last_from, last_to;
        bool connected, subscribed;
        int connects;
        uint64_t next_reconnect;
        uint64_t published, acked; /* QoS 1 publishes sent and PUBACKed */
};

#define MAX_FAKES 4
static struct fake *fakes[MAX_FAKES];
static size_t n_fakes;

static void fake_publish_raw(struct fake *f, enum bbt_channel ch, const void *payload, size_t len, bool retain)
{
        char topic[BBT_TOPIC_MAX + 16];
        int rc;

        snprintf(topic, sizeof(topic), "%s%s", f->prefix, bbt_channel_name(ch));
        rc = mosquitto_publish(f->mosq, NULL, topic, (int)len, payload, 1, retain);
        if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
                FAIL("[%s] publish %s: %s", f->name, topic, mosquitto_strerror(rc));
        if (rc == MOSQ_ERR_SUCCESS)
                f->published++;
}

/* Publishes the message numbered SEQ again, byte for byte. */
static void fake_publish(struct fake *f, int64_t seq, bool retain)
{
        const struct stored_msg *m;

        if (seq < 1 || seq > f->last_seq || !f->msgs[seq].payload)
                FAIL("[%s] no message %" PRId64, f->name, seq);
        m = &f->msgs[seq];
        fake_publish_raw(f, m->ch, m->payload, m->len, retain);
}

/* Gives M the next seq, encodes it and keeps it; publishes it if PUBLISH
 * (retained on the channels that are). Returns the seq. */
static int64_t fake_add(struct fake *f, struct bbt_msg *m, bool publish)
{
        struct bbt_error err;
        char errtext[300], *json = NULL;
        size_t len;
        int r;

        m->seq = f->last_seq + 1;
        m->boot = f->boot;
        if (!m->ts)
                m->ts = bbt_test_wall_ms();
        r = bbt_msg_encode(m, &json, &len, &err);
        if (r < 0)
                FAIL("[%s] encode %s: %s (%s)", f->name, bbt_channel_name(m->channel),
                     bbt_error_format(&err, errtext, sizeof(errtext)), strerror(-r));
        if ((size_t)m->seq >= f->cap) {
                size_t cap = f->cap ? f->cap * 2 : 1024;

                while (cap <= (size_t)m->seq)
                        cap *= 2;
                f->msgs = realloc(f->msgs, cap * sizeof(*f->msgs));
                if (!f->msgs)
                        FAIL("out of memory");
                memset(f->msgs + f->cap, 0, (cap - f->cap) * sizeof(*f->msgs));
                f->cap = cap;
        }
        f->msgs[m->seq] = (struct stored_msg){ .ch = m->channel, .payload = json, .len = len };
        f->last_seq = m->seq;
        if (publish)
                fake_publish(f, m->seq, bbt_channel_retained(m->channel));
        return m->seq;
}

/* Takes back the last message made (never published as valid), so the
 * series stays without a hole. */
static void fake_unmake_last(struct fake *f)
{
        free(f->msgs[f->last_seq].payload);
        f->msgs[f->last_seq].payload = NULL;
        f->last_seq--;
}

static int64_t fake_birth(struct fake *f)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_STATE);
        m.body.state.online = true;
        m.body.state.version = "0.1.0";
        m.body.state.hostname = f->name;
        m.body.state.os = "Debian GNU/Linux 12 (bookworm)";
        m.body.state.machine_id = "4f1c9a5e2b7d4c1e8a6f3b2d9c0e1f2a";
        return fake_add(f, &m, true);
}

static int64_t fake_hb(struct fake *f, bool publish)
{
        struct bbt_msg m;
        struct bbt_hb *hb = &m.body.hb;

        bbt_msg_init(&m, BBT_CH_HB);
        hb->uptime = 3600;
        hb->load[0] = 0.5;
        hb->cpu = 7.5;
        hb->mem_total = 8244236288;
        hb->mem_available = 5368709120;
        hb->disk_root.total = 119453777920;
        hb->disk_root.free = 80530636800;
        hb->state = BBT_USAGE_ACTIVE;
        /* Not live: keeps the clock-skew estimate (and its fault) out of it. */
        hb->spool_depth = 1;
        hb->clock_synced = true;
        return fake_add(f, &m, publish);
}

static void fake_message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
        struct fake *f = obj;
        struct bbt_msg cmd, reply;
        struct bbt_error err;
        char errtext[300];
        cJSON *result;
        int64_t from, to, sent = 0;

        if (bbt_msg_decode(BBT_CH_CMD, msg->payload, (size_t)msg->payloadlen, &cmd, &err) < 0)
                FAIL("[%s] the daemon sent a command that does not decode: %s: %.*s", f->name,
                     bbt_error_format(&err, errtext, sizeof(errtext)), msg->payloadlen, (const char *)msg->payload);
        if (getenv("BBT_TEST_VERBOSE"))
                fprintf(stderr, "[%s] %s %.*s\n", f->name, msg->topic, msg->payloadlen, (const char *)msg->payload);
        if (cmd.body.cmd.op_code != BBT_OP_RESEND)
                FAIL("[%s] unexpected command op %s", f->name, cmd.body.cmd.op);
        f->resends++;
        f->last_from = cmd.body.cmd.args.resend.from;
        f->last_to = cmd.body.cmd.args.resend.to;
        if (!f->answer_resend) {
                bbt_msg_free(&cmd);
                return;
        }
        /* As the agent: what the spool still has, unchanged and never retained,
         * then the reply numbered in the terminal's own series. */
        from = f->last_from > f->first_retained ? f->last_from : f->first_retained;
        to = f->last_to < f->last_seq ? f->last_to : f->last_seq;
        for (int64_t s = from; s <= to; s++) {
                fake_publish(f, s, false);
                sent++;
        }
        result = cJSON_CreateObject();
        cJSON_AddNumberToObject(result, "from", (double)f->last_from);
        cJSON_AddNumberToObject(result, "to", (double)f->last_to);
        cJSON_AddNumberToObject(result, "sent", (double)sent);
        cJSON_AddNumberToObject(result, "first_retained", (double)f->first_retained);
        /* The reply takes the next seq: that is the last one produced. */
        cJSON_AddNumberToObject(result, "last_seq", (double)(f->last_seq + 1));
        bbt_msg_init(&reply, BBT_CH_CMD_REPLY);
        reply.body.reply.id = cmd.body.cmd.id;
        reply.body.reply.ok = true;
        reply.body.reply.result_json = result;
        fake_add(f, &reply, true);
        cJSON_Delete(result);
        bbt_msg_free(&cmd);
}

static void fake_connect_cb(struct mosquitto *mosq, void *obj, int rc)
{
        struct fake *f = obj;
        char topic[BBT_TOPIC_MAX + 8];

        if (rc != 0)
                return;
        f->connected = true;
        f->connects++;
        /* A clean session each time: subscribe again on every connect. */
        snprintf(topic, sizeof(topic), "%scmd", f->prefix);
        mosquitto_subscribe(mosq, NULL, topic, 1);
}

static void fake_subscribe_cb(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted)
{
        ((struct fake *)obj)->subscribed = true;
}

static void fake_publish_cb(struct mosquitto *mosq, void *obj, int mid)
{
        ((struct fake *)obj)->acked++;
}

static void fake_disconnect_cb(struct mosquitto *mosq, void *obj, int rc)
{
        struct fake *f = obj;

        f->connected = f->subscribed = false;
}

/* Runs every fake terminal's libmosquitto for about MS milliseconds,
 * reconnecting those whose connection dropped (100 ms apart). */
static void pump(int ms)
{
        uint64_t end = bbt_test_now_ms() + (uint64_t)ms;

        do {
                for (size_t i = 0; i < n_fakes; i++) {
                        struct fake *f = fakes[i];
                        int rc = mosquitto_loop(f->mosq, n_fakes > 1 ? 1 : 5, 1);

                        if (rc == MOSQ_ERR_SUCCESS)
                                continue;
                        f->connected = f->subscribed = false;
                        if (bbt_test_now_ms() >= f->next_reconnect) {
                                f->next_reconnect = bbt_test_now_ms() + 100;
                                mosquitto_reconnect(f->mosq);
                        }
                }
                if (!n_fakes)
                        bbt_test_sleep_ms(5);
        } while (bbt_test_now_ms() < end);
}

static void fake_wait_connected(struct fake *f)
{
        uint64_t deadline = bbt_test_now_ms() + 10000;

        while (!f->subscribed) {
                if (bbt_test_now_ms() > deadline)
                        FAIL("[%s] not connected and subscribed within 10 s", f->name);
                pump(10);
        }
}

/* A fake terminal TERM of school SCHOOL in county COUNTY, connected, subscribed to its cmd topic. */
static void fake_start(struct fake *f, const char *term)
{
        char id[64];
        int rc;

        memset(f, 0, sizeof(*f));
        f->name = term;
        f->boot = 3;
        f->answer_resend = true;
        f->first_retained = 1;
        snprintf(f->prefix, sizeof(f->prefix), "bbt/v1/" COUNTY "/" SCHOOL "/%s/", term);
        snprintf(id, sizeof(id), "bbt-test-fake-%s-%ld", term, (long)getpid());
        f->mosq = mosquitto_new(id, true, f);
        if (!f->mosq)
                FAIL("mosquitto_new: %s", strerror(errno));
        mosquitto_connect_callback_set(f->mosq, fake_connect_cb);
        mosquitto_disconnect_callback_set(f->mosq, fake_disconnect_cb);
        mosquitto_subscribe_callback_set(f->mosq, fake_subscribe_cb);
        mosquitto_message_callback_set(f->mosq, fake_message_cb);
        mosquitto_publish_callback_set(f->mosq, fake_publish_cb);
        /* No limit of our own: publish at full speed. */
        mosquitto_max_inflight_messages_set(f->mosq, 0);
        rc = mosquitto_connect(f->mosq, "127.0.0.1", bbt_test_broker_port(&broker), 10);
        if (rc != MOSQ_ERR_SUCCESS)
                FAIL("[%s] connect: %s", term, mosquitto_strerror(rc));
        if (n_fakes == MAX_FAKES)
                FAIL("too many fake terminals");
        fakes[n_fakes++] = f;
        fake_wait_connected(f);
}

/* Waits (pumping the fakes) until the broker acknowledged everything F
 * published. */
static void fake_drain(struct fake *f)
{
        uint64_t deadline = bbt_test_now_ms() + 20000;

        while (f->acked < f->published) {
                if (bbt_test_now_ms() > deadline)
                        FAIL("[%s] %" PRIu64 " of %" PRIu64 " publishes acknowledged after 20 s", f->name, f->acked,
                             f->published);
                pump(5);
        }
}

static void fakes_free(void)
{
        for (size_t i = 0; i < n_fakes; i++) {
                struct fake *f = fakes[i];

                mosquitto_disconnect(f->mosq);
                mosquitto_destroy(f->mosq);
                f->mosq = NULL;
                for (size_t s = 0; s < f->cap; s++)
                        free(f->msgs[s].payload);
                free(f->msgs);
                f->msgs = NULL;
                f->cap = 0;
        }
        n_fakes = 0;
}

/* Pumps until COND (an expression) holds, failing after MS milliseconds. */
#define WAIT_FOR(cond, ms, ...) BBT_WAIT_STEP(cond, ms, pump(20), __VA_ARGS__)

/* Common start: a broker with raised limits and a configuration file. */
static void setup(const struct conf *c)
{
        char path[512];

        env_init();
        bbt_test_broker_start(&broker, BROKER_CONF);
        snprintf(path, sizeof(path), "%s/mosquitto.log", broker.dir);
        bbt_test_dump_tail_on_failure(path, 16 * 1024);
        write_conf(c);
}

/* ---- 2. every channel ---- */

static void publish_all_channels(struct fake *f, const char *alert_code)
{
        struct bbt_msg m;
        struct bbt_dev devs[2] = {
                { .kind = BBT_KIND_TOUCH, .subsystem = "input", .syspath = "/sys/devices/virtual/input/input5",
                  .vendor = "鸿合科技", .model = "HiteVision 触摸框" },
                { .kind = BBT_KIND_DISPLAY, .subsystem = "drm", .syspath = "/sys/class/drm/card0-HDMI-A-1" },
        };
        int64_t now = bbt_test_wall_ms();

        fake_birth(f);
        fake_hb(f, true);

        bbt_msg_init(&m, BBT_CH_USAGE);
        m.body.usage = (struct bbt_usage){ .start = now - 300000, .end = now, .state = BBT_USAGE_ACTIVE,
                                           .touch = 42, .pen = 7, .interactive_ms = 180000, .audio_ms = 65000 };
        fake_add(f, &m, true);

        bbt_msg_init(&m, BBT_CH_PERIPH);
        m.body.periph.action = BBT_PERIPH_ADD;
        m.body.periph.dev = (struct bbt_dev){ .kind = BBT_KIND_CAMERA, .subsystem = "video4linux",
                                              .syspath = "/sys/devices/usb1/1-2/video4linux/video0",
                                              .bus = "usb", .vendor_id = "046d", .model_id = "0825",
                                              .vendor = "Logitech", .model = "展台 C270" };
        fake_add(f, &m, true);

        bbt_msg_init(&m, BBT_CH_INVENTORY);
        m.body.inventory.n_devices = 2;
        m.body.inventory.devices = devs;
        fake_add(f, &m, true);

        bbt_msg_init(&m, BBT_CH_ALERT);
        m.body.alert = (struct bbt_alert){ .code = alert_code, .severity = BBT_SEVERITY_WARNING,
                                           .state = BBT_ALERT_RAISED, .detail = "x86_pkg_temp 92.0 °C" };
        fake_add(f, &m, true);

        bbt_msg_init(&m, BBT_CH_CMD_REPLY);
        m.body.reply.id = "admin-inv-1";
        m.body.reply.ok = true;
        fake_add(f, &m, true);
}

TEST(ingest_all_channels)
{
        struct bbt_test_daemon d = { 0 };
        struct fake a, b;
        struct bbt_msg m;
        char text[256];

        setup(NULL);
        daemon_start(&d);
        fake_start(&a, "r101");
        fake_start(&b, "r102");
        publish_all_channels(&a, "overheat");
        publish_all_channels(&b, "disk_low");
        WAIT_FOR(raw_count("r101") == 7 && raw_count("r102") == 7, 15000, "r101 %" PRId64 ", r102 %" PRId64,
                 raw_count("r101"), raw_count("r102"));
        assert_all_stored("r101", 7);
        assert_all_stored("r102", 7);
        for (int ch = 0; ch < BBT_CH__COUNT; ch++)
                if (ch != BBT_CH_CMD)
                        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM raw WHERE channel = %d", ch), 2);
        /* The payload is kept byte for byte. */
        ASSERT_STR_EQ(db_text(text, sizeof(text), "SELECT payload FROM raw WHERE seq = 7 AND terminal_id = " TERM_ID, "r101"),
                      a.msgs[7].payload);

        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM terminal"), 2);
        ASSERT_EQ(db_int(-1, "SELECT online FROM terminal WHERE terminal = 'r101'"), 1);
        ASSERT_EQ(db_int(-1, "SELECT boot FROM terminal WHERE terminal = 'r102'"), 3);
        ASSERT_EQ(db_int(-1, "SELECT high_seq FROM terminal WHERE terminal = 'r101'"), 7);
        ASSERT_EQ(db_int(-1, "SELECT received FROM terminal WHERE terminal = 'r102'"), 7);
        ASSERT_STR_EQ(db_text(text, sizeof(text), "SELECT hostname FROM terminal WHERE terminal = 'r102'"), "r102");
        ASSERT_STR_EQ(db_text(text, sizeof(text), "SELECT version FROM terminal WHERE terminal = 'r101'"), "0.1.0");

        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM usage"), 2);
        ASSERT_EQ(db_int(-1, "SELECT sum(touch) FROM usage"), 84);
        ASSERT_GE(db_int(-1, "SELECT count(*) FROM day_rollup"), 2);
        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM periph_event"), 2);
        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM inventory WHERE terminal_id = " TERM_ID, "r101"), 2);
        ASSERT_STR_EQ(db_text(text, sizeof(text),
                              "SELECT model FROM inventory WHERE terminal_id = " TERM_ID " AND kind = %d", "r101",
                              BBT_KIND_TOUCH),
                      "HiteVision 触摸框");

        /* An alert opens a fault from the agent; clearing it closes it. */
        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM fault WHERE code = 'overheat' AND source = 'agent' AND cleared_ms = 0"
                             " AND terminal_id = " TERM_ID, "r101"),
                  1);
        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM fault WHERE code = 'disk_low' AND cleared_ms = 0"), 1);
        bbt_msg_init(&m, BBT_CH_ALERT);
        m.body.alert = (struct bbt_alert){ .code = "overheat", .severity = BBT_SEVERITY_WARNING,
                                           .state = BBT_ALERT_CLEARED };
        fake_add(&a, &m, true);
        WAIT_FOR(db_int(-1, "SELECT count(*) FROM fault WHERE code = 'overheat' AND cleared_ms > 0") == 1, 10000,
                 "the overheat fault was not cleared");
        assert_all_stored("r101", 8);
        ASSERT_EQ(loss_rows(), 0);
        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM gap"), 0);
        ASSERT_EQ(counter("stored"), 15);
        bbt_test_daemon_term(&d, 5000);
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* ---- 3. malformed messages ---- */

TEST(malformed_counted)
{
        struct bbt_test_daemon d = { 0 };
        struct fake a;
        char big[BBT_MSG_MAX + 64], *v2;
        char *hb;
        size_t n;
        int64_t seq;

        setup(NULL);
        daemon_start(&d);
        fake_start(&a, "r101");
        fake_birth(&a);
        WAIT_FOR(raw_count("r101") == 1, 10000, "the birth was not stored");

        /* Bad topic: a 5-digit county, under the daemon's bbt/v1/#. */
        mosquitto_publish(a.mosq, NULL, "bbt/v1/51010/" SCHOOL "/r101/hb", 2, "{}", 1, false);
        /* Not JSON. */
        fake_publish_raw(&a, BBT_CH_HB, "not json at all", 15, false);
        /* Over 16 KiB, whatever it holds. */
        memset(big, ' ', sizeof(big));
        memcpy(big, "{\"v\":1}", 7);
        fake_publish_raw(&a, BBT_CH_HB, big, BBT_MSG_MAX + 1, false);
        /* v = 2: an hb otherwise valid. */
        seq = fake_hb(&a, false);
        hb = a.msgs[seq].payload;
        v2 = strdup(hb);
        ASSERT(strncmp(v2, "{\"v\":1,", 7) == 0);
        v2[5] = '2';
        fake_publish_raw(&a, BBT_CH_HB, v2, strlen(v2), false);
        free(v2);
        /* A required field missing: an hb without its cpu. */
        {
                char *p, *cut = strdup(hb);

                ASSERT((p = strstr(cut, ",\"cpu\":")));
                n = strcspn(p + 1, ",");
                memmove(p, p + 1 + n, strlen(p + 1 + n) + 1);
                fake_publish_raw(&a, BBT_CH_HB, cut, strlen(cut), false);
                free(cut);
        }
        /* Seq 2 was only ever published broken: it is made again, valid. */
        fake_unmake_last(&a);
        fake_hb(&a, true);
        WAIT_FOR(counter("reject_field") == 1 && raw_count("r101") == 2, 15000,
                 "counters: topic %" PRId64 " json %" PRId64 " size %" PRId64 " version %" PRId64 " field %" PRId64
                 "; rows %" PRId64,
                 counter("reject_topic"), counter("reject_json"), counter("reject_size"), counter("reject_version"),
                 counter("reject_field"), raw_count("r101"));
        ASSERT_EQ(counter("reject_topic"), 1);
        ASSERT_EQ(counter("reject_json"), 1);
        ASSERT_EQ(counter("reject_size"), 1);
        ASSERT_EQ(counter("reject_version"), 1);
        ASSERT_EQ(counter("reject_field"), 1);
        ASSERT_EQ(counter("reject_store"), 0);
        bbt_test_daemon_alive(&d);
        assert_all_stored("r101", 2);
        ASSERT_EQ(loss_rows(), 0);
        ASSERT_EQ(a.resends, 0);
        ASSERT(bbt_test_count_in_file(log_path, "reject_size") >= 1);
        bbt_test_daemon_term(&d, 5000);
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* Rejections with no valid message after them must still reach the store:
 * at the next batch commit, or at the latest when the daemon stops. */
TEST(reject_counters_without_traffic)
{
        struct bbt_test_daemon d = { 0 };
        struct fake a;

        setup(NULL);
        daemon_start(&d);
        fake_start(&a, "r101");
        fake_birth(&a);
        WAIT_FOR(raw_count("r101") == 1, 10000, "the birth was not stored");
        fake_publish_raw(&a, BBT_CH_HB, "not json", 8, false);
        fake_publish_raw(&a, BBT_CH_USAGE, "{\"v\":", 5, false);
        fake_drain(&a);
        /* Several batch intervals (100 ms) and resend ticks (1 s). */
        {
                uint64_t deadline = bbt_test_now_ms() + 3000;

                while (counter("reject_json") < 2 && bbt_test_now_ms() < deadline)
                        pump(50);
        }
        bbt_test_daemon_term(&d, 5000);
        if (counter("reject_json") != 2)
                FAIL("BUG (aggregator/ingest.c, bbt_ingest_flush): %" PRId64 " of 2 reject_json counted in the store "
                     "after 3 s and a clean stop; reject() only bumps counter_delta, and flush returns early when "
                     "no transaction is open and no terminal is dirty, so the counts are never written",
                     counter("reject_json"));
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* ---- 4. duplicates ---- */

TEST(duplicates_and_replay)
{
        struct bbt_test_daemon d = { 0 };
        struct fake a;

        setup(NULL);
        daemon_start(&d);
        fake_start(&a, "r101");
        fake_birth(&a);
        for (int i = 2; i <= 300; i++) {
                fake_hb(&a, true);
                if (i % 50 == 0)
                        pump(1);
        }
        WAIT_FOR(raw_count("r101") == 300, 15000, "stored %" PRId64 " of 300", raw_count("r101"));
        for (int64_t s = 100; s <= 200; s++)
                fake_publish(&a, s, false);
        WAIT_FOR(counter("duplicates") >= 101, 15000, "duplicates %" PRId64 " of 101", counter("duplicates"));
        pump(500);
        assert_all_stored("r101", 300);
        ASSERT_EQ(counter("duplicates"), 101);
        ASSERT_EQ(db_int(-1, "SELECT duplicates FROM terminal WHERE terminal = 'r101'"), 101);
        ASSERT_EQ(counter("stored"), 300);
        ASSERT_EQ(loss_rows(), 0);
        ASSERT_EQ(a.resends, 0);
        bbt_test_daemon_term(&d, 5000);
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* ---- 5. gaps and resend ---- */

/* 1..50 without 20..29, then 51: the daemon asks for 20..29. */
static void gap_scenario(int64_t first_retained)
{
        struct bbt_test_daemon d = { 0 };
        struct fake a;
        int64_t n;

        setup(NULL);
        daemon_start(&d);
        fake_start(&a, "r101");
        a.first_retained = first_retained;
        fake_birth(&a);
        for (int i = 2; i <= 51; i++)
                fake_hb(&a, i < 20 || i > 29);
        WAIT_FOR(a.resends >= 1, 15000, "no resend command (stored %" PRId64 ")", raw_count("r101"));
        ASSERT_EQ(a.last_from, 20);
        ASSERT_EQ(a.last_to, 29);
        /* The reply took seq 52. */
        n = 52;
        if (first_retained <= 20) {
                WAIT_FOR(raw_count("r101") == n, 15000, "stored %" PRId64 " of %" PRId64, raw_count("r101"), n);
                pump(2500); /* past resend_settle: nothing more may happen */
                assert_all_stored("r101", n);
                ASSERT_EQ(loss_rows(), 0);
        } else {
                char missing[256];

                WAIT_FOR(loss_rows() == 1 && raw_count("r101") == n - 5, 15000, "loss rows %" PRId64 ", stored %" PRId64,
                         loss_rows(), raw_count("r101"));
                pump(2500);
                ASSERT_EQ(raw_count("r101"), n - 5);
                ASSERT_STR_EQ(missing_seqs("r101", n, missing, sizeof(missing)), "20..24");
                ASSERT_EQ(loss_rows(), 1);
                ASSERT_EQ(db_int(-1, "SELECT from_seq FROM loss"), 20);
                ASSERT_EQ(db_int(-1, "SELECT to_seq FROM loss"), 24);
                ASSERT_EQ(db_int(-1, "SELECT lost FROM terminal WHERE terminal = 'r101'"), 5);
                ASSERT_EQ(counter("lost"), 5);
        }
        ASSERT_EQ(a.resends, 1);
        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM gap"), 0);
        bbt_test_daemon_term(&d, 5000);
        bbt_test_check_sanitizers(log_path);
        pass();
}

TEST(gap_resend)
{
        gap_scenario(1);
}

TEST(gap_resend_partly_gone)
{
        gap_scenario(25);
}

/* A terminal that never answers, though it keeps sending: asked
 * resend_attempts (5) times, resend_timeout (2 s) after each time it is heard
 * from again, then the range is recorded as lost. */
TEST(gap_no_answer)
{
        struct bbt_test_daemon d = { 0 };
        struct fake a;
        char reason[64];

        setup(NULL);
        daemon_start(&d);
        fake_start(&a, "r101");
        a.answer_resend = false;
        fake_birth(&a);
        for (int i = 2; i <= 40; i++)
                fake_hb(&a, i < 20 || i > 29);
        {
                uint64_t next = 0;

                /* A live heartbeat every 300 ms: made after each request. */
                WAIT_FOR((bbt_test_now_ms() >= next ? (fake_hb(&a, true), next = bbt_test_now_ms() + 300) : 0,
                          loss_rows() == 1),
                         30000, "no loss after %d resends", a.resends);
        }
        ASSERT_EQ(a.resends, 5);
        ASSERT_EQ(a.last_from, 20);
        ASSERT_EQ(a.last_to, 29);
        ASSERT_EQ(db_int(-1, "SELECT from_seq FROM loss"), 20);
        ASSERT_EQ(db_int(-1, "SELECT to_seq FROM loss"), 29);
        ASSERT_STR_EQ(db_text(reason, sizeof(reason), "SELECT reason FROM loss"), "no answer to resend");
        ASSERT_EQ(db_int(-1, "SELECT count(*) FROM gap"), 0);
        /* The last live heartbeat may still be on its way: count once it is in. */
        WAIT_FOR(db_int(-1, "SELECT high_seq FROM terminal WHERE terminal = 'r101'") == a.last_seq, 5000,
                 "seq %" PRId64 " was not stored", a.last_seq);
        {
                int64_t stored = raw_count("r101");

                ASSERT_EQ(stored, db_int(-1, "SELECT high_seq - first_seq + 1 FROM terminal WHERE terminal = 'r101'") -
                                          10);
                /* Arriving after all, a lost seq is stored and no longer counted lost. */
                fake_publish(&a, 25, false);
                WAIT_FOR(raw_count("r101") == stored + 1, 10000, "seq 25 was not stored after its loss");
        }
        WAIT_FOR(db_int(-1, "SELECT lost FROM terminal WHERE terminal = 'r101'") == 9, 5000, "lost %" PRId64,
                 db_int(-1, "SELECT lost FROM terminal WHERE terminal = 'r101'"));
        ASSERT_EQ(counter("lost"), 9);
        bbt_test_daemon_term(&d, 5000);
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* ---- 6. kill -9 while ingesting ---- */

TEST(kill9_during_ingest)
{
        const int64_t N = 5000;
        struct bbt_test_daemon d = { 0 };
        struct fake a;
        uint64_t deadline, killed_at = 0, checked_at = 0;
        int64_t acked_at_kill = 0, stored_at_kill = 0;
        bool killed = false, restarted = false;
        int acks0;

        setup(NULL);
        daemon_start(&d);
        fake_start(&a, "r101");
        acks0 = broker_log_count("Received PUBACK from");
        fake_birth(&a);
        WAIT_FOR(raw_count("r101") == 1, 10000, "the birth was not stored");
        deadline = bbt_test_now_ms() + 60000;
        /* About 2500 messages a second, in bursts of 25. Once the daemon has
         * stored a fifth, it is killed at a moment when it has acknowledged
         * (PUBACK, in the broker's log) at least 20 more than it committed:
         * those are gone from the broker and must come back by resend. It is
         * restarted 300 ms later while the stream goes on into the broker's
         * queue for its session. */
        while (a.last_seq < N || !restarted) {
                for (int i = 0; i < 25 && a.last_seq < N; i++)
                        fake_hb(&a, true);
                pump(10);
                /* Reading the broker's log costs more as it grows: look at
                 * most every 50 ms, and kill anyway once most is sent (a slow
                 * sanitizer build may never lag by 20). */
                if (!killed && bbt_test_now_ms() - checked_at >= 50 && raw_count("r101") >= N / 5) {
                        int64_t acked = broker_log_count("Received PUBACK from") - acks0, stored = raw_count("r101");

                        checked_at = bbt_test_now_ms();
                        if (acked - stored >= 20 || a.last_seq >= N * 4 / 5) {
                                bbt_test_daemon_kill9(&d);
                                killed = true;
                                killed_at = bbt_test_now_ms();
                                acked_at_kill = broker_log_count("Received PUBACK from") - acks0;
                                stored_at_kill = raw_count("r101");
                        }
                }
                if (killed && !restarted && bbt_test_now_ms() - killed_at >= 300) {
                        daemon_start(&d);
                        restarted = true;
                }
                if (bbt_test_now_ms() > deadline)
                        FAIL("the stream did not finish within 60 s (seq %" PRId64 ")", a.last_seq);
        }
        fprintf(stderr, "killed with %" PRId64 " of %" PRId64 " committed, %" PRId64 " acknowledged\n",
                stored_at_kill, N, acked_at_kill);
        if (stored_at_kill >= N - 1)
                FAIL("the daemon stored everything (%" PRId64 ") before it could be killed", stored_at_kill);
        /* Replies to resends take seqs too: the series ends at a.last_seq. */
        while (raw_count("r101") < a.last_seq) {
                if (bbt_test_now_ms() > deadline) {
                        char missing[512];

                        FAIL("after 60 s %" PRId64 " of %" PRId64 " stored, %" PRId64 " loss rows, %d resends; missing %s",
                             raw_count("r101"), a.last_seq, loss_rows(), a.resends,
                             missing_seqs("r101", a.last_seq, missing, sizeof(missing)));
                }
                pump(50);
                bbt_test_daemon_alive(&d);
        }
        pump(1500);
        assert_all_stored("r101", a.last_seq);
        ASSERT_EQ(loss_rows(), 0);
        fprintf(stderr, "%d resend commands (last %" PRId64 "..%" PRId64 "), %" PRId64 " duplicates, %" PRId64
                " recovered\n",
                a.resends, a.last_from, a.last_to, counter("duplicates"), counter("recovered"));
        /* Acknowledged but never committed: only a resend brings them back. */
        if (acked_at_kill > stored_at_kill) {
                ASSERT_GE(a.resends, 1);
                ASSERT_GE(counter("recovered"), acked_at_kill - stored_at_kill);
        }
        bbt_test_daemon_term(&d, 5000);
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* ---- 7. SIGTERM ---- */

TEST(sigterm_clean)
{
        /* Commits only on a full batch or every minute: what is stored after
         * the stop was committed by the stop. */
        struct conf c = { .batch_interval = "60s", .batch_size = "100000" };
        struct bbt_test_daemon d = { 0 };
        struct fake a;
        int acks;
        char integrity[32];

        setup(&c);
        daemon_start(&d);
        fake_start(&a, "r101");
        acks = broker_log_count("Received PUBACK from");
        fake_birth(&a);
        for (int i = 2; i <= 200; i++)
                fake_hb(&a, true);
        /* The daemon acknowledged all 200 to the broker: they are in its memory. */
        WAIT_FOR(broker_log_count("Received PUBACK from") - acks >= 200, 15000, "the daemon acked %d of 200",
                 broker_log_count("Received PUBACK from") - acks);
        /* Nothing committed yet (batch_interval 60s): what is stored after the
         * stop, the stop committed. */
        ASSERT_EQ(raw_count("r101"), 0);
        fprintf(stderr, "exited %d ms after SIGTERM\n", bbt_test_daemon_term(&d, 5000));
        assert_all_stored("r101", 200);
        ASSERT_EQ(counter("stored"), 200);
        ASSERT(bbt_test_count_in_file(log_path, "stopping") >= 1);
        /* The store is whole and reopens. */
        ASSERT_STR_EQ(db_text(integrity, sizeof(integrity), "PRAGMA integrity_check"), "ok");
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* The broker is gone (the daemon is backing off between attempts): SIGTERM
 * still stops it at once, and commits what it holds. */
TEST(sigterm_broker_down)
{
        struct conf c = { .batch_interval = "60s", .batch_size = "100000" };
        struct bbt_test_daemon d = { 0 };
        struct fake a;
        int acks, warnings;

        setup(&c);
        daemon_start(&d);
        fake_start(&a, "r101");
        acks = broker_log_count("Received PUBACK from");
        fake_birth(&a);
        for (int i = 2; i <= 50; i++)
                fake_hb(&a, true);
        WAIT_FOR(broker_log_count("Received PUBACK from") - acks >= 50, 15000, "the daemon acked %d of 50",
                 broker_log_count("Received PUBACK from") - acks);
        warnings = bbt_test_count_in_file(log_path, "; reconnecting");
        bbt_test_broker_kill(&broker);
        WAIT_FOR(bbt_test_count_in_file(log_path, "; reconnecting") > warnings, 10000, "the daemon did not notice");
        pump(500);
        bbt_test_daemon_term(&d, 5000);
        assert_all_stored("r101", 50);
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* ---- 8. broker restart ---- */

TEST(broker_restart)
{
        struct bbt_test_daemon d = { 0 };
        struct fake a;
        int64_t at_kill = 0, after_restart;
        int connects, subacks;
        uint64_t deadline;

        setup(NULL);
        daemon_start(&d);
        fake_start(&a, "r101");
        fake_birth(&a);
        /* A stream of bursts; the broker dies under it once 100 are stored. */
        deadline = bbt_test_now_ms() + 15000;
        while (raw_count("r101") < 100) {
                for (int i = 0; i < 10; i++)
                        fake_hb(&a, true);
                pump(10);
                if (bbt_test_now_ms() > deadline)
                        FAIL("stored %" PRId64 " of %" PRId64, raw_count("r101"), a.last_seq);
        }
        for (int i = 0; i < 10; i++)
                fake_hb(&a, true);
        at_kill = a.last_seq;
        connects = bbt_test_count_in_file(log_path, "broker: connected");
        subacks = broker_log_count("Sending SUBACK to");
        bbt_test_broker_kill(&broker);
        pump(300);
        bbt_test_broker_restart(&broker);
        /* The daemon reconnects (backoff 100 ms..1 s) and subscribes again:
         * its session died with the broker (no persistence). */
        deadline = bbt_test_now_ms() + 15000;
        while (bbt_test_count_in_file(log_path, "broker: connected") <= connects || !a.subscribed ||
               broker_log_count("Sending SUBACK to") <= subacks) {
                if (bbt_test_now_ms() > deadline)
                        FAIL("the daemon (connected %d times, %d subscriptions) or the fake terminal (%s) did not "
                             "come back",
                             bbt_test_count_in_file(log_path, "broker: connected"), broker_log_count("Sending SUBACK to"),
                             a.subscribed ? "subscribed" : "not subscribed");
                pump(20);
        }
        /* The restarted broker has lost the retained birth, not the daemon
         * its record of it: the terminal is still online and asked for gaps. */
        after_restart = a.last_seq + 1;
        for (int i = 0; i < 300; i++) {
                fake_hb(&a, true);
                if (i % 20 == 0)
                        pump(5);
        }
        deadline = bbt_test_now_ms() + 30000;
        while (raw_count("r101") < a.last_seq) {
                if (bbt_test_now_ms() > deadline) {
                        char missing[512];

                        FAIL("%" PRId64 " of %" PRId64 " stored (published before the kill: 1..%" PRId64
                             ", after the restart: %" PRId64 "..); missing %s",
                             raw_count("r101"), a.last_seq, at_kill, after_restart,
                             missing_seqs("r101", a.last_seq, missing, sizeof(missing)));
                }
                pump(50);
        }
        pump(1500);
        assert_all_stored("r101", a.last_seq);
        ASSERT_EQ(loss_rows(), 0);
        fprintf(stderr, "killed the broker at seq %" PRId64 "; %d resend commands (last %" PRId64 "..%" PRId64 ")\n",
                at_kill, a.resends, a.last_from, a.last_to);
        bbt_test_daemon_alive(&d);
        bbt_test_daemon_term(&d, 5000);
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* ---- 9. SIGHUP ---- */

static char schools_csv[320], terminals_csv[320];

static void write_registry(const char *extra_school_row, const char *terminals)
{
        char text[2048];

        snprintf(text, sizeof(text),
                 "county_code,school_code,school_name,type,area,students\n"
                 COUNTY "," SCHOOL ",成都市第一小学,小学,城区,800\n"
                 "%s",
                 extra_school_row ? extra_school_row : "");
        bbt_test_write_file(schools_csv, text);
        bbt_test_write_file(terminals_csv, terminals);
}

static void hup_and_wait(struct bbt_test_daemon *d, const char *needle, int before)
{
        uint64_t deadline = bbt_test_now_ms() + 10000;

        kill(d->pid, SIGHUP);
        while (bbt_test_count_in_file(log_path, needle) <= before) {
                bbt_test_daemon_alive(d);
                if (bbt_test_now_ms() > deadline)
                        FAIL("no \"%s\" in the log within 10 s of SIGHUP", needle);
                pump(20);
        }
}

TEST(sighup_reload)
{
        struct bbt_test_daemon d = { 0 };
        struct conf c = { 0 };
        struct fake a;
        struct bbt_msg m;
        char registry[1024];
        const char *ok2 = "reload: 2 schools, 3 terminals in the registry";
        const char *ok1 = "reload: 1 schools, 1 terminals in the registry";
        const char *bad = "keeping the previous registry";
        int n_ok1, n_bad;

        setup(NULL);
        snprintf(schools_csv, sizeof(schools_csv), "%s/schools.csv", tmp_dir);
        snprintf(terminals_csv, sizeof(terminals_csv), "%s/terminals.csv", tmp_dir);
        snprintf(registry, sizeof(registry), "schools = %s\nterminals = %s\n", schools_csv, terminals_csv);
        c.registry = registry;
        write_conf(&c);
        /* r101 is in the registry with no expected peripherals. */
        write_registry(NULL, "school_code,terminal_id,room,expected\n" SCHOOL ",r101,一年级1班,\n");
        daemon_start(&d);
        ASSERT(bbt_test_count_in_file(log_path, "1 schools and 1 terminals in the registry") == 1);
        fake_start(&a, "r101");
        fake_birth(&a);
        WAIT_FOR(raw_count("r101") == 1, 10000, "the birth was not stored");

        /* A second school, two more terminals; r101 now expects a camera. */
        write_registry("510107,3151010002,成都市第二小学,初中,镇区,300\n",
                       "school_code,terminal_id,room,expected\n"
                       SCHOOL ",r101,一年级1班,实物展台\n"
                       SCHOOL ",r102,一年级2班,\n"
                       "3151010002,lab1,物理实验室,camera;projector\n");
        hup_and_wait(&d, ok2, 0);
        /* The new registry is in use: an inventory without a camera opens periph_missing. */
        bbt_msg_init(&m, BBT_CH_INVENTORY);
        fake_add(&a, &m, true);
        WAIT_FOR(db_int(-1, "SELECT count(*) FROM fault WHERE code = 'periph_missing' AND source = 'aggregator'"
                            " AND cleared_ms = 0") == 1,
                 10000, "no periph_missing fault after the reload");

        /* A broken schools file: the old registry stays, the error names file:line. */
        write_registry("510107,3151010003,成都市第三小学,小学,乡村,三百\n", "school_code,terminal_id,room,expected\n");
        n_bad = bbt_test_count_in_file(log_path, bad);
        hup_and_wait(&d, bad, n_bad);
        ASSERT(bbt_test_count_in_file(log_path, "schools.csv:3:") >= 1);
        ASSERT_EQ(bbt_test_count_in_file(log_path, ok2), 1);
        /* A terminal whose school is unknown: also refused, with its line. */
        write_registry(NULL, "school_code,terminal_id,room,expected\n" SCHOOL ",r101,,\n9999999999,x1,,\n");
        hup_and_wait(&d, bad, n_bad + 1);
        ASSERT(bbt_test_count_in_file(log_path, "terminals.csv:3:") >= 1);

        /* Still running, still storing, and a good file is taken again. */
        fake_hb(&a, true);
        WAIT_FOR(raw_count("r101") == 3, 10000, "stored %" PRId64 " of 3 after the failed reloads", raw_count("r101"));
        write_registry(NULL, "school_code,terminal_id,room,expected\n" SCHOOL ",r101,一年级1班,\n");
        n_ok1 = bbt_test_count_in_file(log_path, ok1);
        hup_and_wait(&d, ok1, n_ok1);
        bbt_test_daemon_term(&d, 5000);
        bbt_test_check_sanitizers(log_path);
        pass();
}

/* Two aggregators configured with one client id take the session from each
 * other at every connect: the daemon says so, and what to change, instead of
 * only "connection lost". */
TEST(same_client_id_takeover_detected)
{
        struct bbt_test_daemon d1 = { 0 }, d2 = { 0 };
        char conf1[sizeof(conf_path)], store1[sizeof(store_path)], log2[sizeof(log_path)], exe[512];
        char *argv[] = { (char *)bbt_test_exe("county/aggregator", "bbt-aggregator", exe, sizeof(exe)), (char *)"-c",
                         conf_path, NULL };
        const char *needle = "Another client is most likely connecting with the same client id";

        setup(NULL);
        daemon_start(&d1);
        /* The second one: the same configuration but its own store and log. */
        memcpy(conf1, conf_path, sizeof(conf1));
        memcpy(store1, store_path, sizeof(store1));
        snprintf(conf_path, sizeof(conf_path), "%s/second.conf", tmp_dir);
        snprintf(store_path, sizeof(store_path), "%s/second.db", tmp_dir);
        snprintf(log2, sizeof(log2), "%s/second.log", tmp_dir);
        write_conf(NULL);
        bbt_test_dump_on_failure(log2);
        bbt_test_daemon_start(&d2, "second", argv, log2);
        WAIT_FOR(bbt_test_count_in_file(log_path, needle) + bbt_test_count_in_file(log2, needle) > 0, 30000,
                 "neither aggregator said that its client id is taken over");
        fprintf(stderr, "takeover reported (first: %d, second: %d)\n", bbt_test_count_in_file(log_path, needle),
                bbt_test_count_in_file(log2, needle));
        ASSERT(bbt_test_count_in_file(log_path, "[broker] client_id") + bbt_test_count_in_file(log2, "[broker] client_id") > 0);
        bbt_test_daemon_term(&d2, 5000);
        memcpy(conf_path, conf1, sizeof(conf1));
        memcpy(store_path, store1, sizeof(store1));
        bbt_test_daemon_term(&d1, 5000);
        bbt_test_check_sanitizers(log_path);
        bbt_test_check_sanitizers(log2);
        pass();
}
