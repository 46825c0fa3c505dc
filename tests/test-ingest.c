/* Ingest over a real SQLite store: dedup, gaps and resend, sessions, clock skew, rejects, crash recovery, faults, rollups. */
/* bbt-test: label=unit timeout=60 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "bbt/log.h"
#include "dates.h"
#include "fixture-tree.h"
#include "ingest.h"
#include "calendar.h"
#include "test.h"

#define COUNTY "510107"
#define SCHOOL "S1"
#define TERM "T1"
#define OFFSET 480
#define MIN 60000LL
#define HOUR 3600000LL
/* Monday 2026-09-07. */
#define DAY 20703
/* Local DAY at HH:MM as an instant. */
#define AT(h, m) (bbt_day_start_ms(DAY, OFFSET) + (h) * HOUR + (m) * MIN)

/* ---- the fake broker side: commands the ingest publishes ---- */

#define CMDS_MAX 128
struct sent_cmd {
        char topic[BBT_TOPIC_MAX];
        char id[65];
        char op[33];
        int64_t from, to, seq;
};

static struct {
        struct sent_cmd cmd[CMDS_MAX];
        int n;
        int fail_with; /* returned instead of publishing when non-zero */
} sent;

static int publish_cb(void *userdata, const char *topic, const char *payload, size_t len)
{
        struct bbt_msg m;
        struct bbt_error e;
        struct sent_cmd *c;
        char etext[300];

        ASSERT(userdata == &sent);
        if (sent.fail_with)
                return sent.fail_with;
        if (sent.n == CMDS_MAX)
                FAIL("more than %d commands", CMDS_MAX);
        if (bbt_msg_decode(BBT_CH_CMD, payload, len, &m, &e) < 0)
                FAIL("ingest sent an invalid cmd: %s: %.*s", bbt_error_format(&e, etext, sizeof(etext)), (int)len,
                     payload);
        c = &sent.cmd[sent.n++];
        snprintf(c->topic, sizeof(c->topic), "%s", topic);
        snprintf(c->id, sizeof(c->id), "%s", m.body.cmd.id);
        snprintf(c->op, sizeof(c->op), "%s", m.body.cmd.op);
        c->seq = m.seq;
        if (m.body.cmd.op_code == BBT_OP_RESEND) {
                c->from = m.body.cmd.args.resend.from;
                c->to = m.body.cmd.args.resend.to;
        }
        bbt_msg_free(&m);
        return 0;
}

#define ASSERT_RESEND(i, term, from_, to_)                                                      \
        do {                                                                                     \
                ASSERT_GT(sent.n, (i));                                                          \
                ASSERT_STR_EQ(sent.cmd[i].topic, "bbt/v1/" COUNTY "/" SCHOOL "/" term "/cmd");  \
                ASSERT_STR_EQ(sent.cmd[i].op, "resend");                                        \
                ASSERT_EQ(sent.cmd[i].from, (from_));                                            \
                ASSERT_EQ(sent.cmd[i].to, (to_));                                                \
        } while (0)

/* ---- the fixture: a temporary directory, a store, an ingest ---- */

static struct {
        char dir[256];
        char db[512];
        struct bbt_store *store;
        struct bbt_ingest *in;
        struct bbt_ingest_settings set;
        const struct bbt_registry *reg;
        const struct bbt_calendar *cal;
} F;

static void settings(void)
{
        bbt_ingest_settings_default(&F.set);
        /* Most cases feed a terminal without a birth: asking it for one
         * (ask.c) is off but in the ask_* cases. */
        F.set.ask_rate = 0;
}

static void open_ingest(int64_t now_ms)
{
        char err[512] = "";
        int r;

        ASSERT_OK(bbt_store_open(F.db, false, &F.store, err, sizeof(err)));
        r = bbt_ingest_new(F.store, &F.set, F.reg, F.cal, publish_cb, &sent, now_ms, &F.in, err, sizeof(err));
        if (r < 0)
                FAIL("bbt_ingest_new: %d: %s", r, err);
}

static void close_ingest(void)
{
        bbt_ingest_free(F.in);
        bbt_store_close(F.store);
        F.in = NULL;
        F.store = NULL;
}

/* A fresh directory and store; cases that need other settings change F.set
 * between settings() and open_ingest(). */
static void setup_dir(void)
{
        static const char *root;
        static int n_cases;

        /* Rejects and resends are logged; keep the output to what matters. */
        bbt_log_set_level(BBT_LOG_ERR);
        /* One temporary tree (removed at exit), a fresh directory in it per
         * case, so that `test-ingest` can also run every case in one process. */
        if (!root) {
                root = bbt_test_tree_new("ingest");
                atexit(close_ingest); /* runs before the tree's removal */
        }
        close_ingest();
        snprintf(F.dir, sizeof(F.dir), "%s/case-%d", root, n_cases++);
        if (mkdir(F.dir, 0700) < 0)
                FAIL("mkdir %s: %s", F.dir, strerror(errno));
        snprintf(F.db, sizeof(F.db), "%s/store.db", F.dir);
        F.reg = NULL;
        F.cal = NULL;
        memset(&sent, 0, sizeof(sent));
}

static void setup(void)
{
        setup_dir();
        settings();
}

/* ---- messages ---- */

static struct bbt_msg msg(enum bbt_channel ch, int64_t seq, int64_t ts, uint32_t boot)
{
        struct bbt_msg m;

        bbt_msg_init(&m, ch);
        m.seq = seq;
        m.ts = ts;
        m.boot = boot;
        return m;
}

static void topic_of(const char *terminal, enum bbt_channel ch, char *buf, size_t size)
{
        struct bbt_topic tp = { .channel = ch };

        snprintf(tp.county, sizeof(tp.county), "%s", COUNTY);
        snprintf(tp.school, sizeof(tp.school), "%s", SCHOOL);
        snprintf(tp.terminal, sizeof(tp.terminal), "%s", terminal);
        ASSERT_GT(bbt_topic_build(&tp, buf, size), 0);
}

/* Encodes M and hands it to the ingest as received from TERMINAL at RECV_MS. */
static void feed_to(const char *terminal, const struct bbt_msg *m, int64_t recv_ms)
{
        char topic[BBT_TOPIC_MAX], etext[300];
        struct bbt_error e;
        char *json = NULL;
        size_t len;

        topic_of(terminal, m->channel, topic, sizeof(topic));
        if (bbt_msg_encode(m, &json, &len, &e) < 0)
                FAIL("encode: %s", bbt_error_format(&e, etext, sizeof(etext)));
        bbt_ingest_message(F.in, topic, json, len, bbt_channel_retained(m->channel), recv_ms);
        free(json);
}

static void feed(const struct bbt_msg *m, int64_t recv_ms)
{
        feed_to(TERM, m, recv_ms);
}

/* A hand-written payload on TERM's CHANNEL. */
static void feed_raw(const char *channel, const void *payload, size_t len, int64_t recv_ms)
{
        char topic[BBT_TOPIC_MAX];

        snprintf(topic, sizeof(topic), "bbt/v1/" COUNTY "/" SCHOOL "/" TERM "/%s", channel);
        bbt_ingest_message(F.in, topic, payload, len, false, recv_ms);
}

static void birth_to(const char *terminal, int64_t seq, uint32_t boot, int64_t recv_ms)
{
        struct bbt_msg m = msg(BBT_CH_STATE, seq, recv_ms, boot);

        m.body.state.online = true;
        m.body.state.version = "0.3.1";
        m.body.state.hostname = "r101-ops";
        m.body.state.os = "Debian GNU/Linux 12 (bookworm)";
        m.body.state.machine_id = "3f2a9c0d4e5b6a7c";
        feed_to(terminal, &m, recv_ms);
}

static void birth(int64_t seq, uint32_t boot, int64_t recv_ms)
{
        birth_to(TERM, seq, boot, recv_ms);
}

static void offline(int64_t seq, uint32_t boot, enum bbt_state_reason reason, int64_t recv_ms)
{
        struct bbt_msg m = msg(BBT_CH_STATE, seq, recv_ms - 5000, boot);

        m.body.state.reason = reason;
        feed(&m, recv_ms);
}

static struct bbt_msg hb_msg(int64_t seq, int64_t ts, int64_t spool_depth)
{
        struct bbt_msg m = msg(BBT_CH_HB, seq, ts, 1);
        struct bbt_hb *hb = &m.body.hb;

        hb->uptime = 3600;
        hb->load[0] = 0.5;
        hb->cpu = 7.5;
        hb->mem_total = 8000000000, hb->mem_available = 4000000000;
        hb->disk_root.total = 100000000000, hb->disk_root.free = 50000000000;
        hb->state = BBT_USAGE_ACTIVE;
        hb->spool_depth = spool_depth;
        hb->clock_synced = true;
        return m;
}

/* A heartbeat from the backlog (spool depth 1: never a skew sample). */
static void hb_to(const char *terminal, int64_t seq, int64_t ts, int64_t recv_ms)
{
        struct bbt_msg m = hb_msg(seq, ts, 1);

        feed_to(terminal, &m, recv_ms);
}

static void hbs_to(const char *terminal, int64_t from, int64_t to, int64_t recv_ms)
{
        for (int64_t s = from; s <= to; s++)
                hb_to(terminal, s, recv_ms, recv_ms);
}

static void hbs(int64_t from, int64_t to, int64_t recv_ms)
{
        hbs_to(TERM, from, to, recv_ms);
}

/* A live heartbeat stamped TS by the terminal, received at RECV_MS. */
static void live_hb(int64_t seq, int64_t ts, int64_t recv_ms)
{
        struct bbt_msg m = hb_msg(seq, ts, 0);

        feed(&m, recv_ms);
}

static struct bbt_msg usage_msg(int64_t seq, int64_t start, int64_t end, enum bbt_usage_state state,
                                int64_t interactive_ms)
{
        struct bbt_msg m = msg(BBT_CH_USAGE, seq, end, 1);

        m.body.usage = (struct bbt_usage){ .start = start, .end = end, .state = state, .touch = 3, .pen = 1,
                                           .interactive_ms = interactive_ms };
        return m;
}

static void usage(int64_t seq, int64_t start, int64_t end, enum bbt_usage_state state, int64_t interactive_ms,
                  int64_t recv_ms)
{
        struct bbt_msg m = usage_msg(seq, start, end, state, interactive_ms);

        feed(&m, recv_ms);
}

static void alert(int64_t seq, int64_t ts, const char *code, enum bbt_alert_state state, int64_t recv_ms)
{
        struct bbt_msg m = msg(BBT_CH_ALERT, seq, ts, 1);

        m.body.alert.code = code;
        m.body.alert.severity = BBT_SEVERITY_ERROR;
        m.body.alert.state = state;
        m.body.alert.detail = state == BBT_ALERT_RAISED ? "x86_pkg_temp 92.0 °C" : NULL;
        feed(&m, recv_ms);
}

static const struct bbt_dev dev_touch = { .kind = BBT_KIND_TOUCH, .subsystem = "input", .bus = "usb",
                                          .vendor_id = "2575", .model_id = "7317", .vendor = "鸿合科技",
                                          .model = "HiteVision 触摸框",
                                          .syspath = "/sys/devices/pci0000:00/usb1/1-5/input/input12" };
static const struct bbt_dev dev_camera = { .kind = BBT_KIND_CAMERA, .subsystem = "video4linux", .bus = "usb",
                                           .vendor_id = "046d", .model_id = "0825", .model = "展台 C270",
                                           .syspath = "/sys/devices/pci0000:00/usb1/1-2/video4linux/video0" };

static void inventory_to(const char *terminal, int64_t seq, int64_t ts, const struct bbt_dev *devs, size_t n,
                         int64_t recv_ms)
{
        struct bbt_msg m = msg(BBT_CH_INVENTORY, seq, ts, 1);

        m.body.inventory.n_devices = n;
        m.body.inventory.devices = (struct bbt_dev *)devs;
        feed_to(terminal, &m, recv_ms);
}

/* The agent's answer to a resend: RESULT members as the agent fills them. */
static void resend_reply(int64_t seq, const char *id, int64_t from, int64_t to, int64_t sent_n,
                         int64_t first_retained, int64_t last_seq, int64_t recv_ms)
{
        struct bbt_msg m = msg(BBT_CH_CMD_REPLY, seq, recv_ms, 1);
        cJSON *result = cJSON_CreateObject();

        ASSERT(result);
        cJSON_AddNumberToObject(result, "from", (double)from);
        cJSON_AddNumberToObject(result, "to", (double)to);
        cJSON_AddNumberToObject(result, "sent", (double)sent_n);
        cJSON_AddNumberToObject(result, "first_retained", (double)first_retained);
        cJSON_AddNumberToObject(result, "last_seq", (double)last_seq);
        m.body.reply.id = id;
        m.body.reply.ok = true;
        m.body.reply.result_json = result; /* encode copies it; ours to delete */
        feed(&m, recv_ms);
        cJSON_Delete(result);
}

/* A resend reply whose result.missing is MISSING (a JSON array text). */
static void resend_reply_missing(int64_t seq, const char *id, int64_t from, int64_t to, const char *missing,
                                 int64_t recv_ms)
{
        struct bbt_msg m = msg(BBT_CH_CMD_REPLY, seq, recv_ms, 1);
        cJSON *result = cJSON_CreateObject();

        ASSERT(result);
        cJSON_AddNumberToObject(result, "from", (double)from);
        cJSON_AddNumberToObject(result, "to", (double)to);
        cJSON_AddNumberToObject(result, "sent", 0);
        cJSON_AddNumberToObject(result, "first_retained", 1);
        cJSON_AddNumberToObject(result, "last_seq", (double)seq);
        cJSON_AddItemToObject(result, "missing", cJSON_Parse(missing));
        m.body.reply.id = id;
        m.body.reply.ok = true;
        m.body.reply.result_json = result;
        feed(&m, recv_ms);
        cJSON_Delete(result);
}

/* ---- reading the store back (after a commit) ---- */

static void commit(void)
{
        ASSERT_OK(bbt_ingest_flush(F.in));
}

struct find_term {
        const char *terminal;
        struct bbt_store_terminal row;
        int found;
};

static int find_term_cb(void *u, const struct bbt_store_terminal *t)
{
        struct find_term *f = u;

        if (strcmp(t->terminal, f->terminal) == 0 && strcmp(t->school, SCHOOL) == 0) {
                f->row = *t;
                f->found++;
        }
        return 0;
}

static struct bbt_store_terminal term_row_of(const char *terminal)
{
        struct find_term f = { .terminal = terminal };

        commit();
        ASSERT_OK(bbt_store_terminals_each(F.store, find_term_cb, &f));
        if (f.found != 1)
                FAIL("terminal %s: found %d times in the store", terminal, f.found);
        return f.row;
}

static struct bbt_store_terminal term_row(void)
{
        return term_row_of(TERM);
}

static int count_cb(void *u, const struct bbt_store_terminal *t)
{
        (void)t;
        (*(int *)u)++;
        return 0;
}

static int n_terminals(void)
{
        int n = 0;

        commit();
        ASSERT_OK(bbt_store_terminals_each(F.store, count_cb, &n));
        return n;
}

#define ROWS_MAX 64
static struct {
        struct bbt_store_gap gap[ROWS_MAX];
        int64_t gap_terminal[ROWS_MAX];
        size_t n_gaps;
        struct bbt_store_loss loss[ROWS_MAX];
        size_t n_losses;
        struct bbt_store_fault fault[ROWS_MAX];
        size_t n_faults;
        struct bbt_day_rollup day[ROWS_MAX];
        int64_t day_terminal[ROWS_MAX];
        size_t n_days;
        struct bbt_store_device dev[ROWS_MAX];
        size_t n_devs;
        struct bbt_store_usage usage[ROWS_MAX];
        size_t n_usage;
} R;

static int gap_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        (void)u;
        ASSERT_LT(R.n_gaps, ROWS_MAX);
        R.gap_terminal[R.n_gaps] = terminal_id;
        R.gap[R.n_gaps++] = *g;
        return 0;
}

static size_t read_gaps(void)
{
        commit();
        R.n_gaps = 0;
        ASSERT_OK(bbt_store_gaps_each(F.store, gap_cb, NULL));
        return R.n_gaps;
}

static int loss_cb(void *u, const struct bbt_store_loss *l)
{
        (void)u;
        ASSERT_LT(R.n_losses, ROWS_MAX);
        R.loss[R.n_losses++] = *l;
        return 0;
}

static size_t read_losses(void)
{
        commit();
        R.n_losses = 0;
        ASSERT_OK(bbt_store_losses_each(F.store, loss_cb, NULL));
        return R.n_losses;
}

static int fault_cb(void *u, const struct bbt_store_fault *f)
{
        (void)u;
        ASSERT_LT(R.n_faults, ROWS_MAX);
        R.fault[R.n_faults++] = *f;
        return 0;
}

static size_t read_faults(void)
{
        commit();
        R.n_faults = 0;
        ASSERT_OK(bbt_store_faults_each(F.store, fault_cb, NULL));
        return R.n_faults;
}

static int day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        (void)u;
        ASSERT_LT(R.n_days, ROWS_MAX);
        R.day_terminal[R.n_days] = terminal_id;
        R.day[R.n_days++] = *d;
        return 0;
}

static size_t read_days(void)
{
        commit();
        R.n_days = 0;
        ASSERT_OK(bbt_store_days_each(F.store, 0, INT32_MAX, day_cb, NULL));
        return R.n_days;
}

static const struct bbt_day_rollup *day_row(int32_t day)
{
        for (size_t i = 0; i < R.n_days; i++)
                if (R.day[i].day == day)
                        return &R.day[i];
        FAIL("no rollup for day %d", (int)day);
}

static int dev_cb(void *u, const struct bbt_store_device *d)
{
        (void)u;
        ASSERT_LT(R.n_devs, ROWS_MAX);
        R.dev[R.n_devs++] = *d;
        return 0;
}

static size_t read_inventory(void)
{
        commit();
        R.n_devs = 0;
        ASSERT_OK(bbt_store_inventory_each(F.store, dev_cb, NULL));
        return R.n_devs;
}

static int usage_cb(void *u, const struct bbt_store_usage *x)
{
        (void)u;
        ASSERT_LT(R.n_usage, ROWS_MAX);
        R.usage[R.n_usage++] = *x;
        return 0;
}

static size_t read_usage(void)
{
        commit();
        R.n_usage = 0;
        ASSERT_OK(bbt_store_usage_each(F.store, usage_cb, NULL));
        return R.n_usage;
}

struct find_counter {
        const char *name;
        int64_t value;
};

static int counter_cb(void *u, const char *name, int64_t value)
{
        struct find_counter *c = u;

        if (strcmp(name, c->name) == 0)
                c->value = value;
        return 0;
}

/* The store's counter NAME; -1 when it was never written. */
static int64_t counter(const char *name)
{
        struct find_counter c = { .name = name, .value = -1 };

        commit();
        ASSERT_OK(bbt_store_counters_each(F.store, counter_cb, &c));
        return c.value;
}

static struct bbt_ingest_stats stats(void)
{
        struct bbt_ingest_stats s;

        bbt_ingest_get_stats(F.in, &s);
        return s;
}

/* One integer from SQL run on the store file through a connection of our own
 * (so it sees committed data only). */
static int64_t sql_int(const char *query)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t v;

        if (sqlite3_open_v2(F.db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
                FAIL("open %s: %s", F.db, db ? sqlite3_errmsg(db) : "?");
        if (sqlite3_prepare_v2(db, query, -1, &st, NULL) != SQLITE_OK)
                FAIL("%s: %s", query, sqlite3_errmsg(db));
        if (sqlite3_step(st) != SQLITE_ROW)
                FAIL("%s: no row: %s", query, sqlite3_errmsg(db));
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static int64_t raw_count(void)
{
        return sql_int("SELECT count(*) FROM raw");
}

/* Every seq FROM..TO of the (only) terminal stored exactly once, and nothing else. */
static void assert_raw_exactly(int64_t from, int64_t to)
{
        char q[256];

        snprintf(q, sizeof(q),
                 "SELECT count(DISTINCT seq) = %" PRId64 " AND count(*) = %" PRId64 " AND min(seq) = %" PRId64
                 " AND max(seq) = %" PRId64 " FROM raw",
                 to - from + 1, to - from + 1, from, to);
        ASSERT_EQ(sql_int(q), 1);
}

static void assert_rollup_eq(const struct bbt_day_rollup *got, const struct bbt_day_rollup *want)
{
        ASSERT_EQ(got->day, want->day);
        ASSERT_EQ(got->on_ms, want->on_ms);
        ASSERT_EQ(got->active_ms, want->active_ms);
        ASSERT_EQ(got->interactive_ms, want->interactive_ms);
        ASSERT_EQ(got->on_all_ms, want->on_all_ms);
        ASSERT_EQ(got->hb_count, want->hb_count);
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                if (got->period_active_ms[k] != want->period_active_ms[k])
                        FAIL("day %d period %d: active %" PRId64 " vs %" PRId64, (int)got->day, k,
                             got->period_active_ms[k], want->period_active_ms[k]);
}

/* ---- the cases ---- */

TEST(every_channel_stored_once)
{
        struct bbt_store_terminal t;
        struct bbt_ingest_stats s;
        struct bbt_msg m;
        int64_t t0 = AT(8, 0);

        setup();
        open_ingest(t0);
        birth(1, 3, t0);
        hb_to(TERM, 2, t0 + 1000, t0 + 1100);
        usage(3, AT(8, 0), AT(8, 5), BBT_USAGE_ACTIVE, 120000, t0 + 2000);
        m = msg(BBT_CH_PERIPH, 4, t0 + 3000, 3);
        m.body.periph.action = BBT_PERIPH_ADD;
        m.body.periph.dev = dev_camera;
        feed(&m, t0 + 3000);
        inventory_to(TERM, 5, t0 + 4000, &dev_camera, 1, t0 + 4000);
        alert(6, t0 + 5000, "overheat", BBT_ALERT_RAISED, t0 + 5000);
        m = msg(BBT_CH_CMD_REPLY, 7, t0 + 6000, 3);
        m.body.reply.id = "admin-1";
        m.body.reply.ok = true;
        feed(&m, t0 + 6000);
        /* Received out of order in time: last_seen is the newest receive time. */
        m = msg(BBT_CH_CMD_REPLY, 8, t0 + 500, 3);
        m.body.reply.id = "admin-2";
        m.body.reply.ok = false;
        m.body.reply.error = "unsupported op";
        feed(&m, t0 + 500);

        s = stats();
        ASSERT_EQ(s.received, 8);
        ASSERT_EQ(s.stored, 8);
        ASSERT_EQ(s.duplicates, 0);
        ASSERT_EQ(s.terminals, 1);
        ASSERT_EQ(s.gaps_opened, 0);
        ASSERT_EQ(s.lost, 0);
        for (int i = 0; i < BBT_REJECT__COUNT; i++)
                ASSERT_EQ(s.rejected[i], 0);

        t = term_row();
        ASSERT_STR_EQ(t.county, COUNTY);
        ASSERT_EQ(t.first_seq, 1);
        ASSERT_EQ(t.high_seq, 8);
        ASSERT_EQ(t.received, 8);
        ASSERT_EQ(t.duplicates, 0);
        ASSERT_EQ(t.lost, 0);
        ASSERT_EQ(t.first_seen_ms, t0);
        ASSERT_EQ(t.last_seen_ms, t0 + 6000);
        ASSERT(t.online);
        ASSERT_EQ(t.boot, 3);
        ASSERT_EQ(t.online_since_ms, t0);
        ASSERT_STR_EQ(t.hostname, "r101-ops");
        ASSERT_STR_EQ(t.version, "0.3.1");
        ASSERT_EQ(t.last_active_ms, AT(8, 5));
        ASSERT_EQ(t.inventory_seq, 5);
        ASSERT_STR_CONTAINS(t.last_hb, "\"uptime\":3600");

        ASSERT_EQ(counter("stored"), 8);
        ASSERT_EQ(counter("duplicates"), -1);
        ASSERT_EQ(raw_count(), 8);
        for (int ch = 0; ch < BBT_CH__COUNT; ch++) {
                char q[96];

                snprintf(q, sizeof(q), "SELECT count(*) FROM raw WHERE channel = %d", ch);
                ASSERT_EQ(sql_int(q), ch == BBT_CH_CMD ? 0 : ch == BBT_CH_CMD_REPLY ? 2 : 1);
        }
        ASSERT_EQ(sql_int("SELECT count(*) FROM periph_event WHERE seq = 4 AND kind = 0 AND action = 0"), 1);
        ASSERT_EQ(read_usage(), 1);
        ASSERT_EQ(R.usage[0].seq, 3);
        ASSERT_EQ(R.usage[0].span.start_ms, AT(8, 0));
        ASSERT_EQ(R.usage[0].span.end_ms, AT(8, 5));
        ASSERT_EQ(R.usage[0].touch, 3);
        ASSERT_EQ(read_inventory(), 1);
        ASSERT_EQ(R.dev[0].kind, BBT_KIND_CAMERA);
        ASSERT_STR_EQ(R.dev[0].model, "展台 C270");
        ASSERT_EQ(read_faults(), 1);
        ASSERT_STR_EQ(R.fault[0].code, "overheat");
        ASSERT_STR_EQ(R.fault[0].source, "agent");
        ASSERT_EQ(read_days(), 1);
        ASSERT_EQ(R.day[0].day, DAY);
        ASSERT_EQ(R.day[0].hb_count, 1);
        ASSERT_EQ(R.day[0].active_ms, 5 * MIN);
        ASSERT_EQ(R.day[0].period_active_ms[0], 5 * MIN);
        ASSERT_EQ(R.day[0].interactive_ms, 120000);
        ASSERT_EQ(read_gaps(), 0);
}

TEST(duplicates_dropped)
{
        struct bbt_store_terminal t;
        struct bbt_ingest_stats s;
        int64_t t0 = AT(8, 0);

        setup();
        F.set.batch_size = 30; /* the replay spans several commits */
        open_ingest(t0);
        for (int64_t seq = 1; seq <= 100; seq++)
                usage(seq, AT(8, 0) + (seq - 1) * MIN, AT(8, 0) + seq * MIN, BBT_USAGE_ACTIVE, 0, t0 + seq);
        /* One QoS 1 redelivery, then a whole spool replay. */
        usage(50, AT(8, 49), AT(8, 50), BBT_USAGE_ACTIVE, 0, t0 + 200);
        for (int64_t seq = 1; seq <= 100; seq++)
                usage(seq, AT(8, 0) + (seq - 1) * MIN, AT(8, 0) + seq * MIN, BBT_USAGE_ACTIVE, 0, t0 + 300 + seq);

        s = stats();
        ASSERT_EQ(s.received, 201);
        ASSERT_EQ(s.stored, 100);
        ASSERT_EQ(s.duplicates, 101);
        ASSERT_EQ(s.recovered, 0);
        t = term_row();
        ASSERT_EQ(t.received, 100);
        ASSERT_EQ(t.duplicates, 101);
        ASSERT_EQ(t.first_seq, 1);
        ASSERT_EQ(t.high_seq, 100);
        /* Duplicates (possibly the broker's redelivery of old messages) are
         * no sign of life: last_seen is the newest stored message. */
        ASSERT_EQ(t.last_seen_ms, t0 + 100);
        ASSERT_EQ(counter("stored"), 100);
        ASSERT_EQ(counter("duplicates"), 101);
        assert_raw_exactly(1, 100);
        ASSERT_EQ(sql_int("SELECT count(*) FROM usage"), 100);
        /* The rollup counted each interval once: 100 minutes from 08:00. */
        ASSERT_EQ(read_days(), 1);
        ASSERT_EQ(R.day[0].active_ms, 100 * MIN);
        ASSERT_EQ(R.day[0].on_all_ms, 100 * MIN);
        ASSERT_EQ(R.day[0].period_active_ms[0], 40 * MIN);
        ASSERT_EQ(R.day[0].period_active_ms[1], 40 * MIN);
        ASSERT_EQ(R.day[0].period_active_ms[2], 0); /* 09:50 not reached */
}

TEST(out_of_order_no_loss)
{
        int64_t order[200], lo = -1, hi = -1, want_recovered = 0, want_gaps = 0;
        uint64_t rng = 20260907;
        struct bbt_ingest_stats s;
        struct bbt_store_terminal t;
        int64_t t0 = AT(9, 0);

        setup();
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(0, 1, t0);
        for (int i = 0; i < 200; i++)
                order[i] = i + 1;
        for (int i = 199; i > 0; i--) { /* Fisher-Yates with a fixed LCG */
                int j;
                int64_t x;

                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                j = (int)((rng >> 33) % (uint64_t)(i + 1));
                x = order[i], order[i] = order[j], order[j] = x;
        }
        /* What the ingest must count: a seq inside the series seen so far
         * fills a gap; one beyond either end with a jump opens one. */
        lo = hi = 0;
        for (int i = 0; i < 200; i++) {
                int64_t q = order[i];

                if (q > hi) {
                        want_gaps += q > hi + 1;
                        hi = q;
                } else if (q < lo) {
                        want_gaps += q < lo - 1;
                        lo = q;
                } else {
                        want_recovered++;
                }
                hb_to(TERM, q, t0 + i, t0 + i);
        }
        ASSERT_GT(want_recovered, 100); /* the shuffle really shuffled */

        s = stats();
        ASSERT_EQ(s.stored, 201);
        ASSERT_EQ(s.duplicates, 0);
        ASSERT_EQ(s.recovered, want_recovered);
        ASSERT_EQ(s.gaps_opened, want_gaps);
        ASSERT_EQ(s.open_gap_seqs, 0);
        ASSERT_EQ(s.lost, 0);
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(read_losses(), 0);
        t = term_row();
        ASSERT_EQ(t.first_seq, 0);
        ASSERT_EQ(t.high_seq, 200);
        ASSERT_EQ(t.received, 201);
        ASSERT_EQ(t.lost, 0);
        ASSERT_EQ(counter("recovered"), want_recovered);
        assert_raw_exactly(0, 200);
        /* Nothing is missing, so nothing is asked for. */
        bbt_ingest_tick(F.in, t0 + 10 * MIN);
        ASSERT_EQ(sent.n, 0);
}

TEST(gap_asked_after_grace)
{
        struct bbt_ingest_stats s;
        int64_t t0 = AT(9, 0), found;

        setup();
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(1, 1, t0);
        hbs(2, 10, t0 + 1000);
        hbs(20, 30, t0 + 2000);

        s = stats();
        ASSERT_EQ(s.gaps_opened, 1);
        ASSERT_EQ(s.open_gap_seqs, 9);
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].from, 11);
        ASSERT_EQ(R.gap[0].to, 19);
        ASSERT_EQ(R.gap[0].state, BBT_GAP_WAITING);
        ASSERT_EQ(R.gap[0].attempts, 0);
        ASSERT_EQ(R.gap[0].detected_ms, t0 + 2000);

        bbt_ingest_tick(F.in, t0 + 2000 + 29999);
        ASSERT_EQ(sent.n, 0);
        bbt_ingest_tick(F.in, t0 + 2000 + 30000);
        ASSERT_EQ(sent.n, 1);
        ASSERT_RESEND(0, TERM, 11, 19);
        ASSERT_STR_EQ(sent.cmd[0].id, "rs-1-1");
        ASSERT_EQ(sent.cmd[0].seq, 1);
        ASSERT_EQ(stats().resends, 1);
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].state, BBT_GAP_REQUESTED);
        ASSERT_EQ(R.gap[0].attempts, 1);
        ASSERT_STR_EQ(R.gap[0].cmd_id, "rs-1-1");
        ASSERT_EQ(R.gap[0].changed_ms, t0 + 32000);

        /* A second gap: one request out per terminal at a time. */
        hbs(40, 45, t0 + 3000);
        bbt_ingest_tick(F.in, t0 + 40000);
        bbt_ingest_tick(F.in, t0 + 50000);
        ASSERT_EQ(sent.n, 1);
        ASSERT_EQ(read_gaps(), 2);
        ASSERT_EQ(R.gap[1].from, 31);
        ASSERT_EQ(R.gap[1].to, 39);
        ASSERT_EQ(R.gap[1].state, BBT_GAP_WAITING);
        /* The first one filled: the second is asked for at the next tick. */
        hbs(11, 19, t0 + 51000);
        bbt_ingest_tick(F.in, t0 + 52000);
        ASSERT_EQ(sent.n, 2);
        ASSERT_RESEND(1, TERM, 31, 39);
        ASSERT_STR_EQ(sent.cmd[1].id, "rs-1-2");
        ASSERT_EQ(sent.cmd[1].seq, 2);

        /* The command counter survives a restart of the aggregator, whose
         * own boot goes up: ids never repeat. */
        close_ingest();
        ASSERT_EQ(sql_int("SELECT value FROM meta WHERE key = 'cmd_seq'"), 2);
        found = sql_int("SELECT value FROM meta WHERE key = 'boot'");
        ASSERT_EQ(found, 1);
        open_ingest(t0 + 60000);
        bbt_ingest_set_connected(F.in, true, t0 + 60000);
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].state, BBT_GAP_REQUESTED);
        /* The terminal is heard from (a message it made after the request),
         * and no answer comes in resend_timeout: asked again. (After a
         * restart the aggregator waits for that afresh.) */
        live_hb(46, t0 + 60500, t0 + 60500);
        bbt_ingest_tick(F.in, t0 + 60500 + 60000 - 1);
        ASSERT_EQ(sent.n, 2);
        bbt_ingest_tick(F.in, t0 + 60500 + 60000);
        ASSERT_EQ(sent.n, 3);
        ASSERT_RESEND(2, TERM, 31, 39);
        ASSERT_STR_EQ(sent.cmd[2].id, "rs-2-3");
        ASSERT_EQ(sent.cmd[2].seq, 3);
}

TEST(resend_needs_online_and_connected)
{
        int64_t t0 = AT(9, 0);

        setup();
        open_ingest(t0);
        /* T1 online; T2 never sent a birth but is heard from. */
        birth(1, 1, t0);
        hbs(2, 3, t0);
        hbs(10, 10, t0 + 1000);
        hbs_to("T2", 1, 3, t0);
        hbs_to("T2", 10, 10, t0 + 1000);
        /* Not connected: nothing goes out, and nothing is lost for it. */
        bbt_ingest_tick(F.in, t0 + 40000);
        ASSERT_EQ(sent.n, 0);
        ASSERT_EQ(read_gaps(), 2);
        ASSERT_EQ(R.gap[0].state, BBT_GAP_WAITING);
        ASSERT_EQ(R.gap[0].attempts, 0);
        bbt_ingest_set_connected(F.in, true, t0 + 41000);
        bbt_ingest_tick(F.in, t0 + 42000);
        ASSERT_EQ(sent.n, 2);
        ASSERT_RESEND(0, "T1", 4, 9);
        /* Its birth may itself be missing: heard from 41 s ago is enough. */
        ASSERT_RESEND(1, "T2", 4, 9);
        birth_to("T2", 11, 1, t0 + 43000);
        bbt_ingest_tick(F.in, t0 + 44000);
        ASSERT_EQ(sent.n, 2);
        /* A publish refused by the client (broker away) is asked again later. */
        offline(12, 1, BBT_REASON_LOST, t0 + 45000);
        hbs_to("T2", 20, 20, t0 + 45000);
        sent.fail_with = -ENOTCONN;
        bbt_ingest_tick(F.in, t0 + 45000 + 60000 + 30000);
        ASSERT_EQ(sent.n, 2);
        sent.fail_with = 0;
        /* T1 went offline: its unanswered request is not repeated. */
        bbt_ingest_tick(F.in, t0 + 45000 + 60000 + 31000);
        ASSERT_EQ(sent.n, 3);
        ASSERT_RESEND(2, "T2", 4, 9); /* the first T2 gap timed out and is re-asked */
        /* T3: no birth, and silent for more than 5 minutes: not asked. */
        hbs_to("T3", 1, 3, t0);
        hbs_to("T3", 10, 10, t0 + 1000);
        bbt_ingest_tick(F.in, t0 + 1000 + 5 * 60000 + 1);
        for (int i = 0; i < sent.n; i++)
                ASSERT(strstr(sent.cmd[i].topic, "/T3/") == NULL);
}

TEST(resend_max_range_split)
{
        int64_t t0 = AT(9, 0);

        setup();
        F.set.resend_max_range = 4;
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(1, 1, t0);
        hbs(2, 10, t0);
        hbs(20, 20, t0 + 1000);
        bbt_ingest_tick(F.in, t0 + 31000);
        ASSERT_EQ(sent.n, 1);
        ASSERT_RESEND(0, TERM, 11, 14);
        ASSERT_EQ(read_gaps(), 2);
        ASSERT_EQ(R.gap[0].from, 11);
        ASSERT_EQ(R.gap[0].to, 14);
        ASSERT_EQ(R.gap[0].state, BBT_GAP_REQUESTED);
        ASSERT_EQ(R.gap[1].from, 15);
        ASSERT_EQ(R.gap[1].to, 19);
        ASSERT_EQ(R.gap[1].state, BBT_GAP_WAITING);
        ASSERT_EQ(stats().open_gap_seqs, 9);
        hbs(11, 14, t0 + 32000);
        bbt_ingest_tick(F.in, t0 + 33000);
        ASSERT_EQ(sent.n, 2);
        ASSERT_RESEND(1, TERM, 15, 18);
        hbs(15, 18, t0 + 34000);
        bbt_ingest_tick(F.in, t0 + 35000);
        ASSERT_EQ(sent.n, 3);
        ASSERT_RESEND(2, TERM, 19, 19);
        hbs(19, 19, t0 + 36000);
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(stats().open_gap_seqs, 0);
        ASSERT_EQ(stats().recovered, 9);
        ASSERT_EQ(read_losses(), 0);
        assert_raw_exactly(1, 20);
}

/* seqs 1 (birth) ..10 and 20..30, connected: the gap 11..19 asked for at T0 + 32 s. */
static int64_t gap_11_19(void)
{
        int64_t t0 = AT(9, 0);

        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(1, 1, t0);
        hbs(2, 10, t0 + 1000);
        hbs(20, 30, t0 + 2000);
        bbt_ingest_tick(F.in, t0 + 32000);
        ASSERT_EQ(sent.n, 1);
        ASSERT_RESEND(0, TERM, 11, 19);
        return t0 + 32000;
}

TEST(resend_filled)
{
        struct bbt_ingest_stats s;
        struct bbt_store_terminal t;
        int64_t asked;

        setup();
        asked = gap_11_19();
        for (int64_t seq = 11; seq <= 19; seq++)
                hb_to(TERM, seq, asked - 20000, asked + 500);
        resend_reply(31, sent.cmd[0].id, 11, 19, 9, 1, 30, asked + 600);
        bbt_ingest_tick(F.in, asked + 10 * MIN);
        ASSERT_EQ(sent.n, 1);
        s = stats();
        ASSERT_EQ(s.recovered, 9);
        ASSERT_EQ(s.open_gap_seqs, 0);
        ASSERT_EQ(s.lost, 0);
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(read_losses(), 0);
        t = term_row();
        ASSERT_EQ(t.lost, 0);
        ASSERT_EQ(t.received, 31);
        ASSERT_EQ(t.high_seq, 31);
        ASSERT_EQ(counter("recovered"), 9);
        assert_raw_exactly(1, 31);
}

TEST(resend_reply_first_retained)
{
        struct bbt_ingest_stats s;
        struct bbt_store_terminal t;
        int64_t asked;

        setup();
        asked = gap_11_19();
        resend_reply(31, "rs-1-1", 11, 19, 5, 15, 30, asked + 400);
        s = stats();
        ASSERT_EQ(s.lost, 4);
        ASSERT_EQ(s.open_gap_seqs, 5);
        ASSERT_EQ(read_losses(), 1);
        ASSERT_EQ(R.loss[0].from, 11);
        ASSERT_EQ(R.loss[0].to, 14);
        ASSERT_EQ(R.loss[0].recorded_ms, asked + 400);
        ASSERT_STR_EQ(R.loss[0].reason, "no longer in the agent's spool");
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].from, 15);
        ASSERT_EQ(R.gap[0].to, 19);
        ASSERT_EQ(R.gap[0].state, BBT_GAP_ANSWERED);
        ASSERT_STR_EQ(R.gap[0].cmd_id, "");
        for (int64_t seq = 15; seq <= 19; seq++)
                hb_to(TERM, seq, asked - 20000, asked + 500);
        s = stats();
        ASSERT_EQ(s.recovered, 5);
        ASSERT_EQ(s.lost, 4);
        ASSERT_EQ(s.open_gap_seqs, 0);
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(read_losses(), 1);
        t = term_row();
        ASSERT_EQ(t.lost, 4);
        ASSERT_EQ(t.received, 27);
        ASSERT_EQ(counter("lost"), 4);
        bbt_ingest_tick(F.in, asked + 10 * MIN);
        ASSERT_EQ(sent.n, 1);
        /* A reply to a command that is not ours changes nothing. */
        resend_reply(32, "rs-9-9", 30, 40, 0, 35, 40, asked + 11 * MIN);
        ASSERT_EQ(read_losses(), 1);
        ASSERT_EQ(term_row().lost, 4);
}

TEST(resend_unanswered_lost)
{
        struct bbt_store_terminal t;
        int64_t asked;

        setup();
        asked = gap_11_19();
        for (int k = 1; k < 5; k++) {
                /* Each request is followed at once by a message the terminal
                 * made after it: no backlog holds the answer back. */
                live_hb(30 + k, asked + (k - 1) * 60000, asked + (k - 1) * 60000);
                bbt_ingest_tick(F.in, asked + k * 60000 - 1);
                ASSERT_EQ(sent.n, k);
                bbt_ingest_tick(F.in, asked + k * 60000);
                ASSERT_EQ(sent.n, k + 1);
                ASSERT_RESEND(k, TERM, 11, 19);
                ASSERT_NE(strcmp(sent.cmd[k].id, sent.cmd[k - 1].id), 0);
        }
        live_hb(35, asked + 4 * 60000, asked + 4 * 60000);
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].attempts, 5);
        bbt_ingest_tick(F.in, asked + 5 * 60000);
        ASSERT_EQ(sent.n, 5);
        ASSERT_EQ(stats().resends, 5);
        ASSERT_EQ(stats().lost, 9);
        ASSERT_EQ(stats().open_gap_seqs, 0);
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(read_losses(), 1);
        ASSERT_EQ(R.loss[0].from, 11);
        ASSERT_EQ(R.loss[0].to, 19);
        ASSERT_EQ(R.loss[0].recorded_ms, asked + 5 * 60000);
        ASSERT_STR_EQ(R.loss[0].reason, "no answer to resend");
        t = term_row();
        ASSERT_EQ(t.lost, 9);
        ASSERT_EQ(counter("lost"), 9);
        /* One of them turns up after all: no longer lost. */
        hb_to(TERM, 12, asked, asked + 6 * 60000);
        t = term_row();
        ASSERT_EQ(t.lost, 8);
        ASSERT_EQ(t.received, 27);
        ASSERT_EQ(t.duplicates, 0);
        ASSERT_EQ(stats().recovered, 1);
        ASSERT_EQ(counter("lost"), 8);
        ASSERT_EQ(counter("recovered"), 1);
        /* And again: now a plain duplicate. */
        hb_to(TERM, 12, asked, asked + 7 * 60000);
        t = term_row();
        ASSERT_EQ(t.lost, 8);
        ASSERT_EQ(t.duplicates, 1);
        ASSERT_EQ(stats().recovered, 1);
}

TEST(resend_give_up)
{
        int64_t t0 = AT(9, 0), detected = t0 + 2000;

        setup();
        F.set.gap_give_up_ms = HOUR;
        F.set.resend_attempts = 1000;
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(1, 1, t0);
        hbs(2, 10, t0 + 1000);
        hbs(20, 30, detected);
        /* The terminal keeps sending (a live heartbeat every 10 s): asked
         * again resend_timeout after it is heard from, for an hour. */
        for (int64_t now = t0 + 30000, seq = 31; now < detected + HOUR; now += 10000) {
                live_hb(seq++, now, now);
                bbt_ingest_tick(F.in, now);
        }
        ASSERT_GE(sent.n, 45);
        ASSERT_LE(sent.n, 60);
        fprintf(stderr, "%zu requests in an hour\n", (size_t)sent.n);
        ASSERT_EQ(read_losses(), 0);
        {
                int before = (int)sent.n;

                bbt_ingest_tick(F.in, detected + HOUR);
                ASSERT_EQ((int)sent.n, before);
        }
        ASSERT_EQ(read_losses(), 1);
        ASSERT_EQ(R.loss[0].from, 11);
        ASSERT_EQ(R.loss[0].to, 19);
        ASSERT_STR_EQ(R.loss[0].reason, "not resent in time");
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(term_row().lost, 9);
        ASSERT_EQ(stats().open_gap_seqs, 0);
}

TEST(backlog_below_first_seq)
{
        struct bbt_ingest_stats s;
        struct bbt_store_terminal t;
        int64_t t0 = AT(9, 0);

        setup();
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(1000, 9, t0);
        for (int64_t seq = 900; seq <= 999; seq++)
                hb_to(TERM, seq, t0 - (1000 - seq) * MIN, t0 + 100 + seq);
        s = stats();
        ASSERT_EQ(s.stored, 101);
        ASSERT_EQ(s.gaps_opened, 1);  /* 901..999 when 900 came */
        ASSERT_EQ(s.recovered, 99);   /* then filled from below */
        ASSERT_EQ(s.open_gap_seqs, 0);
        ASSERT_EQ(s.lost, 0);
        t = term_row();
        ASSERT_EQ(t.first_seq, 900);
        ASSERT_EQ(t.high_seq, 1000);
        ASSERT_EQ(t.received, 101);
        ASSERT_EQ(t.lost, 0);
        ASSERT(t.online);
        ASSERT_EQ(t.boot, 9);
        ASSERT_EQ(read_gaps(), 0);
        bbt_ingest_tick(F.in, t0 + HOUR);
        ASSERT_EQ(sent.n, 0);
        assert_raw_exactly(900, 1000);
        /* Heartbeats older than the newest do not describe the terminal now. */
        ASSERT_STR_EQ(t.last_hb, "");
        /* A newer one does. */
        live_hb(1001, t0 + HOUR, t0 + HOUR);
        ASSERT_STR_CONTAINS(term_row().last_hb, "\"spool_depth\":0");
        /* Backlog arriving newest first extends the series without any gap. */
        for (int64_t seq = 899; seq >= 800; seq--)
                hb_to(TERM, seq, t0 - (1000 - seq) * MIN, t0 + HOUR + 1);
        s = stats();
        ASSERT_EQ(s.gaps_opened, 1);
        ASSERT_EQ(s.recovered, 99);
        ASSERT_EQ(term_row().first_seq, 800);
        assert_raw_exactly(800, 1001);
}

TEST(birth_and_will)
{
        struct bbt_store_terminal t;
        int64_t t0 = AT(7, 30);

        setup();
        open_ingest(t0);
        birth(10, 5, t0);
        t = term_row();
        ASSERT(t.online);
        ASSERT_EQ(t.boot, 5);
        ASSERT_EQ(t.online_since_ms, t0);
        /* The will of session 4, published by the broker late: ignored. */
        offline(9, 4, BBT_REASON_LOST, t0 + 1000);
        t = term_row();
        ASSERT(t.online);
        ASSERT_EQ(t.boot, 5);
        ASSERT_EQ(stats().stale_state, 1);
        ASSERT_EQ(counter("stale_state"), 1);
        ASSERT_EQ(t.received, 2);
        /* Session 5's own will: offline, lost. */
        offline(11, 5, BBT_REASON_LOST, t0 + 2000);
        t = term_row();
        ASSERT(!t.online);
        ASSERT_EQ(t.offline_reason, BBT_OFFLINE_LOST);
        ASSERT_EQ(t.offline_since_ms, t0 + 2000);
        ASSERT_EQ(t.boot, 5);
        /* The clean stop reuses the will's seq: the two deduplicate. */
        offline(11, 5, BBT_REASON_SHUTDOWN, t0 + 2100);
        t = term_row();
        ASSERT_EQ(t.offline_reason, BBT_OFFLINE_LOST);
        ASSERT_EQ(t.duplicates, 1);
        /* A newer session. */
        birth(12, 6, t0 + 3000);
        t = term_row();
        ASSERT(t.online);
        ASSERT_EQ(t.boot, 6);
        ASSERT_EQ(t.online_since_ms, t0 + 3000);
        /* Its clean stop. */
        offline(13, 6, BBT_REASON_SHUTDOWN, t0 + 4000);
        t = term_row();
        ASSERT(!t.online);
        ASSERT_EQ(t.offline_reason, BBT_OFFLINE_SHUTDOWN);
        ASSERT_EQ(t.offline_since_ms, t0 + 4000);
        birth(14, 7, t0 + 5000);
        /* An old birth replayed late does not take the session back. */
        birth(8, 4, t0 + 6000);
        t = term_row();
        ASSERT(t.online);
        ASSERT_EQ(t.boot, 7);
        ASSERT_EQ(t.online_since_ms, t0 + 5000);
        ASSERT_EQ(stats().stale_state, 1);
        ASSERT_EQ(t.first_seq, 8);
        ASSERT_EQ(t.high_seq, 14);
        ASSERT_EQ(t.received, 7);
        /* It all survives a restart. */
        close_ingest();
        open_ingest(t0 + 7000);
        t = term_row();
        ASSERT(t.online);
        ASSERT_EQ(t.boot, 7);
        offline(7, 3, BBT_REASON_LOST, t0 + 8000);
        ASSERT(term_row().online);
        ASSERT_EQ(counter("stale_state"), 2);
        /* Session 8's birth (seq 20) is lost in a gap; its will comes, then
         * the birth, resent: the session is over, the terminal stays offline. */
        offline(21, 8, BBT_REASON_LOST, t0 + 9000);
        t = term_row();
        ASSERT(!t.online);
        ASSERT_EQ(t.boot, 8);
        birth(20, 8, t0 + 10000);
        t = term_row();
        ASSERT(!t.online);
        ASSERT_EQ(t.offline_since_ms, t0 + 9000);
        ASSERT_EQ(t.offline_reason, BBT_OFFLINE_LOST);
        /* The next session starts as usual. */
        birth(22, 9, t0 + 11000);
        ASSERT(term_row().online);
        ASSERT_EQ(term_row().boot, 9);
}

TEST(clock_skew)
{
        struct bbt_store_terminal t;
        int64_t c = AT(7, 55), p, seq = 1, hb_day = 0, hb_next_day = 0;
        struct bbt_rollup_rules rules = { .bells = bbt_bells_default(), .margin_min = 30, .offset_min = OFFSET };
        struct bbt_usage_span span;
        struct bbt_day_rollup want[2];

        setup();
        open_ingest(c);
        birth(seq++, 1, c);
        bbt_ingest_set_connected(F.in, true, c);
        /* Within skew_warmup after connecting: the broker's queue, not a sample. */
        live_hb(seq++, c + 10000 + 600000, c + 10000);
        /* From the backlog: not a sample. */
        {
                struct bbt_msg m = hb_msg(seq++, c + 40000 + 600000, 3);

                feed(&m, c + 40000);
        }
        hb_day += 2; /* both stamped 08:05 terminal time, uncorrected */
        t = term_row();
        ASSERT(!t.skew_known);
        ASSERT_EQ(t.skew_ms, 0);
        /* Three live ones, clock 10 min fast, delivery delays 250, 0, 120 ms. */
        p = c + 60000;
        live_hb(seq++, p + 600000, p + 250);
        live_hb(seq++, p + 60000 + 600000, p + 60000);
        ASSERT(!term_row().skew_known); /* two samples are not enough */
        live_hb(seq++, p + 120000 + 600000, p + 120000 + 120);
        hb_day += 3;
        t = term_row();
        ASSERT(t.skew_known);
        ASSERT_EQ(t.skew_ms, 600000);
        ASSERT_EQ(read_faults(), 1);
        ASSERT_STR_EQ(R.fault[0].code, "clock_skew");
        ASSERT_STR_EQ(R.fault[0].source, "aggregator");
        ASSERT_EQ(R.fault[0].severity, BBT_SEVERITY_WARNING);
        /* Dated when the skew was in effect: the receive time of the first
         * heartbeat that showed it (the third only confirmed it). */
        ASSERT_EQ(R.fault[0].raised_ms, p + 250);
        ASSERT_EQ(R.fault[0].cleared_ms, 0);
        ASSERT_STR_CONTAINS(R.fault[0].detail, "+600.0 s");

        /* 09:00-09:40 on the terminal's clock is 08:50-09:30: exactly the
         * second period, where uncorrected it would straddle two. */
        usage(seq++, AT(9, 0), AT(9, 40), BBT_USAGE_ACTIVE, 20 * MIN, AT(9, 31));
        ASSERT_EQ(read_usage(), 1);
        ASSERT_EQ(R.usage[0].span.start_ms, AT(8, 50));
        ASSERT_EQ(R.usage[0].span.end_ms, AT(9, 30));
        ASSERT_EQ(term_row().last_active_ms, AT(9, 30));
        ASSERT_EQ(read_days(), 1);
        ASSERT_EQ(R.day[0].day, DAY);
        ASSERT_EQ(R.day[0].active_ms, 40 * MIN);
        ASSERT_EQ(R.day[0].period_active_ms[0], 0);
        ASSERT_EQ(R.day[0].period_active_ms[1], 40 * MIN);
        ASSERT_EQ(R.day[0].period_active_ms[2], 0);
        ASSERT_EQ(R.day[0].interactive_ms, 20 * MIN);

        /* Across midnight: 23:55-00:25 terminal time is 23:45-00:15, and a
         * heartbeat stamped 00:05 belongs to the day before. */
        live_hb(seq++, AT(24, 5), AT(23, 55));
        hb_day++;
        usage(seq++, AT(23, 55), AT(24, 25), BBT_USAGE_IDLE, 0, AT(24, 16));
        span = (struct bbt_usage_span){ .start_ms = AT(23, 45), .end_ms = AT(24, 15), .state = BBT_USAGE_IDLE };
        ASSERT_EQ(bbt_rollup_usage(&rules, &span, want, 2), 2);
        ASSERT_EQ(read_days(), 2);
        ASSERT_EQ(day_row(DAY)->hb_count, hb_day);
        ASSERT_EQ(day_row(DAY)->on_all_ms, 40 * MIN + want[0].on_all_ms);
        ASSERT_EQ(want[0].on_all_ms, 15 * MIN);
        ASSERT_EQ(day_row(DAY + 1)->on_all_ms, 15 * MIN);
        ASSERT_EQ(day_row(DAY + 1)->hb_count, hb_next_day);

        /* A reconnect: heartbeats in its warm-up are not samples, however odd. */
        bbt_ingest_set_connected(F.in, false, AT(24, 20));
        bbt_ingest_set_connected(F.in, true, AT(24, 20));
        live_hb(seq++, AT(24, 20) + 10000 - 900000, AT(24, 20) + 10000);
        hb_day++; /* 00:05:10 on the terminal's clock, 23:55:10 true */
        ASSERT_EQ(term_row().skew_ms, 600000);

        /* The clock set right, to within 1.5 s (under skew_min): the four
         * newest samples still hold a 600 s one; the fifth clears it. */
        p = AT(24, 30);
        for (int i = 0; i < 4; i++)
                live_hb(seq++, p + i * MIN + 1500, p + i * MIN);
        t = term_row();
        ASSERT_EQ(t.skew_ms, 600000);
        ASSERT_EQ(read_faults(), 1);
        ASSERT_EQ(R.fault[0].cleared_ms, 0);
        live_hb(seq++, p + 4 * MIN + 1500, p + 4 * MIN);
        t = term_row();
        ASSERT(t.skew_known);
        ASSERT_EQ(t.skew_ms, 0);
        ASSERT_EQ(read_faults(), 1);
        /* Cleared when the clock was right: the first of those five, not
         * the fifth that confirmed it. */
        ASSERT_EQ(R.fault[0].cleared_ms, p);
        hb_next_day += 5;
        /* Now uncorrected: 01:00-01:10 stays 01:00-01:10. */
        usage(seq++, AT(25, 0), AT(25, 10), BBT_USAGE_STANDBY, 0, AT(25, 10));
        ASSERT_EQ(read_usage(), 3);
        ASSERT_EQ(R.usage[2].span.start_ms, AT(25, 0));
        ASSERT_EQ(read_days(), 2);
        ASSERT_EQ(day_row(DAY + 1)->hb_count, hb_next_day);
        ASSERT_EQ(day_row(DAY + 1)->on_all_ms, 25 * MIN);
        ASSERT_EQ(day_row(DAY)->hb_count, hb_day);
        ASSERT_EQ(read_faults(), 1);
}

TEST(malformed_payloads)
{
        static const char hb_ok[] =
                "{\"v\":1,\"seq\":5,\"ts\":1788739200000,\"boot\":1,\"uptime\":1,\"load\":[0,0,0],\"cpu\":1,"
                "\"mem\":{\"total\":1,\"available\":1},\"disk\":{\"root\":{\"total\":1,\"free\":1}},\"net\":[],"
                "\"state\":\"idle\",\"spool\":{\"depth\":1,\"dropped\":0},\"clock_synced\":true}";
        const char *hb_v2 = "{\"v\":2,\"seq\":5,\"ts\":1,\"boot\":1}";
        const char *hb_missing =
                "{\"v\":1,\"seq\":5,\"ts\":1788739200000,\"boot\":1,\"uptime\":1,\"load\":[0,0,0],"
                "\"mem\":{\"total\":1,\"available\":1},\"disk\":{\"root\":{\"total\":1,\"free\":1}},\"net\":[],"
                "\"state\":\"idle\",\"spool\":{\"depth\":1,\"dropped\":0},\"clock_synced\":true}";
        const char *alert_type = "{\"v\":1,\"seq\":\"5\",\"ts\":1,\"boot\":1,\"code\":\"x\",\"severity\":\"warning\","
                                 "\"state\":\"raised\"}";
        const char *usage_back = "{\"v\":1,\"seq\":5,\"ts\":1,\"boot\":1,\"start\":2000,\"end\":1000,"
                                 "\"state\":\"idle\",\"touch\":0,\"pen\":0,\"mouse\":0,\"key\":0,"
                                 "\"interactive_ms\":0,\"audio_ms\":0}";
        const char *cmd = "{\"v\":1,\"seq\":88,\"ts\":1,\"boot\":3,\"id\":\"c-1\",\"op\":\"inventory\"}";
        char bom[sizeof(hb_ok) + 3], *big;
        struct bbt_ingest_stats s;
        struct bbt_store_terminal t;
        int64_t now = AT(10, 0);
        size_t big_len = BBT_MSG_MAX + 1;

        setup();
        open_ingest(now);
        /* Topics: too many levels, bad county, Chinese, empty. */
        bbt_ingest_message(F.in, "bbt/v1/" COUNTY "/" SCHOOL "/" TERM "/hb/x", hb_ok, strlen(hb_ok), false, now);
        bbt_ingest_message(F.in, "bbt/v1/51010/" SCHOOL "/" TERM "/hb", hb_ok, strlen(hb_ok), false, now);
        bbt_ingest_message(F.in, "bbt/v1/" COUNTY "/一小/" TERM "/hb", hb_ok, strlen(hb_ok), false, now);
        bbt_ingest_message(F.in, "", hb_ok, strlen(hb_ok), false, now);
        /* Payloads. */
        feed_raw("hb", "{\"v\":1,", 7, now);
        feed_raw("hb", "{\"v\":1,\"x\":\"\xff\"}", 15, now);
        memcpy(bom, "\xef\xbb\xbf", 3);
        memcpy(bom + 3, hb_ok, sizeof(hb_ok));
        feed_raw("hb", bom, strlen(bom), now);
        feed_raw("hb", "", 0, now);
        big = malloc(big_len);
        ASSERT(big);
        memset(big, ' ', big_len);
        memcpy(big, hb_ok, strlen(hb_ok)); /* valid JSON, padded past the limit */
        feed_raw("hb", big, big_len, now);
        free(big);
        feed_raw("hb", hb_v2, strlen(hb_v2), now);
        feed_raw("hb", hb_missing, strlen(hb_missing), now);
        feed_raw("alert", alert_type, strlen(alert_type), now);
        feed_raw("usage", usage_back, strlen(usage_back), now);
        feed_raw("hb", "[1,2]", 5, now);
        /* A command on the bus (ours, echoed by a wildcard subscription). */
        feed_raw("cmd", cmd, strlen(cmd), now);

        s = stats();
        ASSERT_EQ(s.received, 15);
        ASSERT_EQ(s.stored, 0);
        ASSERT_EQ(s.ignored, 1);
        ASSERT_EQ(s.rejected[BBT_REJECT_TOPIC], 4);
        ASSERT_EQ(s.rejected[BBT_REJECT_JSON], 5);
        ASSERT_EQ(s.rejected[BBT_REJECT_SIZE], 1);
        ASSERT_EQ(s.rejected[BBT_REJECT_VERSION], 1);
        ASSERT_EQ(s.rejected[BBT_REJECT_FIELD], 3);
        ASSERT_EQ(s.rejected[BBT_REJECT_STORE], 0);
        ASSERT_EQ(s.terminals, 0);
        /* Counted in the store too, even with nothing else to commit. */
        ASSERT_EQ(counter("reject_topic"), 4);
        ASSERT_EQ(counter("reject_json"), 5);
        ASSERT_EQ(counter("reject_size"), 1);
        ASSERT_EQ(counter("reject_version"), 1);
        ASSERT_EQ(counter("reject_field"), 3);
        ASSERT_EQ(counter("reject_store"), -1);
        ASSERT_EQ(n_terminals(), 0);
        ASSERT_EQ(raw_count(), 0);

        /* The next valid message is stored. */
        feed_raw("hb", hb_ok, strlen(hb_ok), now + 1);
        s = stats();
        ASSERT_EQ(s.stored, 1);
        t = term_row();
        ASSERT_EQ(t.received, 1);
        ASSERT_EQ(t.high_seq, 5);
        ASSERT_EQ(raw_count(), 1);
        ASSERT_EQ(counter("reject_json"), 5);
        ASSERT_EQ(counter("stored"), 1);
        /* Exactly the payload, byte for byte. */
        ASSERT_EQ(sql_int("SELECT length(payload) FROM raw"), (int64_t)strlen(hb_ok));
}

/* The aggregator killed (kill -9) with a batch open: a child ingests and
 * _exit()s without committing; the parent carries on from the store. */
TEST(crash_with_open_batch)
{
        struct bbt_ingest_stats s;
        struct bbt_store_terminal t;
        int64_t t0 = AT(9, 0);
        pid_t pid;
        int status;

        setup();
        F.set.batch_size = 100;
        fflush(NULL);
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
                /* No FAIL() here: exit() would run the parent's atexit cleanups. */
                char err[256];

                if (bbt_store_open(F.db, false, &F.store, err, sizeof(err)) < 0 ||
                    bbt_ingest_new(F.store, &F.set, NULL, NULL, publish_cb, &sent, t0, &F.in, err, sizeof(err)) < 0)
                        _exit(2);
                bbt_ingest_set_connected(F.in, true, t0);
                birth(1, 1, t0);
                /* 1..450 but 250..259: commits after 100, 200, 300, 400 stored
                 * (seq 410); 411..450 are in the open batch when it dies. */
                for (int64_t seq = 2; seq <= 450; seq++)
                        if (seq < 250 || seq > 259)
                                hb_to(TERM, seq, t0 + seq, t0 + seq);
                bbt_ingest_get_stats(F.in, &s);
                _exit(s.commits == 6 && s.stored == 440 ? 0 : 3); /* 2 in bbt_ingest_new */
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);

        ASSERT_EQ(sql_int("SELECT count(*) FROM raw"), 400);
        ASSERT_EQ(sql_int("SELECT max(seq) FROM raw"), 410);
        open_ingest(t0 + MIN);
        t = term_row();
        ASSERT_EQ(t.high_seq, 410);
        ASSERT_EQ(t.received, 400);
        ASSERT(t.online);
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].from, 250);
        ASSERT_EQ(R.gap[0].to, 259);
        ASSERT_EQ(stats().open_gap_seqs, 10);
        /* The agent's spool replays what the broker had not acknowledged. */
        bbt_ingest_set_connected(F.in, true, t0 + MIN);
        for (int64_t seq = 401; seq <= 600; seq++)
                hb_to(TERM, seq, t0 + seq, t0 + MIN + seq);
        s = stats();
        ASSERT_EQ(s.duplicates, 10);
        ASSERT_EQ(s.stored, 190);
        bbt_ingest_tick(F.in, t0 + 2 * MIN);
        ASSERT_EQ(sent.n, 1);
        ASSERT_RESEND(0, TERM, 250, 259);
        for (int64_t seq = 250; seq <= 259; seq++)
                hb_to(TERM, seq, t0 + seq, t0 + 2 * MIN + 1);
        close_ingest();
        assert_raw_exactly(1, 600);
        open_ingest(t0 + 3 * MIN);
        t = term_row();
        ASSERT_EQ(t.first_seq, 1);
        ASSERT_EQ(t.high_seq, 600);
        ASSERT_EQ(t.received, 600);
        ASSERT_EQ(t.lost, 0);
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(read_losses(), 0);
        ASSERT_EQ(counter("stored"), 600);
}

static void write_registry(struct bbt_registry **ret)
{
        struct bbt_import_errors errs;
        char path[600];
        int r;

        bbt_test_tree_put(F.dir, "schools.csv",
                          "county_code,school_code,school_name,type,area,students\n"
                          "510107,S1,第一小学,小学,城区,300\n");
        bbt_test_tree_put(F.dir, "terminals.csv",
                          "school_code,terminal_id,room,expected\n"
                          "S1,T1,一年级(1)班,camera;touch\n"
                          "S1,T2,二年级(1)班,\n");
        ASSERT_OK(bbt_registry_new(ret));
        snprintf(path, sizeof(path), "%s/schools.csv", F.dir);
        r = bbt_registry_load_schools(*ret, path, &errs);
        if (r == 0) {
                snprintf(path, sizeof(path), "%s/terminals.csv", F.dir);
                r = bbt_registry_load_terminals(*ret, path, &errs);
        }
        if (r < 0)
                FAIL("registry: %d: %s", r, errs.n_kept ? errs.msg[0] : "");
}

static struct bbt_registry *test_reg;

TEST(inventory_expected_peripherals)
{
        const struct bbt_dev both[2] = { dev_touch, dev_camera };
        struct bbt_store_terminal t;
        int64_t t0 = AT(8, 0);

        setup();
        write_registry(&test_reg);
        F.reg = test_reg;
        open_ingest(t0);
        birth(1, 1, t0);
        inventory_to(TERM, 2, t0 + 1000, &dev_touch, 1, t0 + 1000);
        ASSERT_EQ(read_inventory(), 1);
        ASSERT_EQ(R.dev[0].kind, BBT_KIND_TOUCH);
        ASSERT_STR_EQ(R.dev[0].vendor, "鸿合科技");
        ASSERT_STR_EQ(R.dev[0].vendor_id, "2575");
        ASSERT_EQ(read_faults(), 1);
        ASSERT_STR_EQ(R.fault[0].code, "periph_missing");
        ASSERT_STR_EQ(R.fault[0].source, "aggregator");
        ASSERT_STR_EQ(R.fault[0].detail, "expected but absent: camera");
        ASSERT_EQ(R.fault[0].raised_ms, t0 + 1000);
        ASSERT_EQ(R.fault[0].cleared_ms, 0);
        /* The same list again (a retained copy after a reconnect): still one fault. */
        inventory_to(TERM, 3, t0 + 2000, &dev_touch, 1, t0 + 2000);
        ASSERT_EQ(read_faults(), 1);
        /* The camera plugged in. */
        inventory_to(TERM, 5, t0 + 5000, both, 2, t0 + 5000);
        ASSERT_EQ(read_inventory(), 2);
        ASSERT_EQ(read_faults(), 1);
        ASSERT_EQ(R.fault[0].cleared_ms, t0 + 5000);
        /* seq 4, older, arrives late: ignored. */
        inventory_to(TERM, 4, t0 + 4000, &dev_touch, 1, t0 + 6000);
        ASSERT_EQ(read_inventory(), 2);
        ASSERT_EQ(read_faults(), 1);
        ASSERT_EQ(R.fault[0].cleared_ms, t0 + 5000);
        t = term_row();
        ASSERT_EQ(t.inventory_seq, 5);
        ASSERT_EQ(t.received, 5);
        /* Now the touch frame is gone: a new fault naming it. */
        inventory_to(TERM, 6, t0 + 7000, &dev_camera, 1, t0 + 7000);
        ASSERT_EQ(read_faults(), 2);
        ASSERT_STR_EQ(R.fault[1].detail, "expected but absent: touch");
        ASSERT_EQ(R.fault[1].cleared_ms, 0);
        /* T2 expects nothing, T3 is not in the registry: no fault either way. */
        inventory_to("T2", 1, t0, NULL, 0, t0);
        inventory_to("T3", 1, t0, NULL, 0, t0);
        ASSERT_EQ(read_faults(), 2);
        ASSERT_EQ(read_inventory(), 1);
        close_ingest();
        bbt_registry_free(test_reg);
        F.reg = NULL;
}

TEST(alerts_raise_and_clear)
{
        int64_t t0 = AT(8, 0);

        setup();
        open_ingest(t0);
        birth(1, 1, t0);
        alert(2, t0 + 1000, "overheat", BBT_ALERT_RAISED, t0 + 1000);
        ASSERT_EQ(read_faults(), 1);
        ASSERT_STR_EQ(R.fault[0].code, "overheat");
        ASSERT_STR_EQ(R.fault[0].source, "agent");
        ASSERT_EQ(R.fault[0].severity, BBT_SEVERITY_ERROR);
        ASSERT_STR_EQ(R.fault[0].detail, "x86_pkg_temp 92.0 °C");
        ASSERT_EQ(R.fault[0].raised_ms, t0 + 1000);
        ASSERT_EQ(R.fault[0].cleared_ms, 0);
        /* seq 3 (a second raise) is missing; the clear comes first. */
        alert(4, t0 + 3000, "overheat", BBT_ALERT_CLEARED, t0 + 3000);
        ASSERT_EQ(read_faults(), 1);
        ASSERT_EQ(R.fault[0].cleared_ms, t0 + 3000);
        /* The resent raise, older than the clear: does not reopen it. */
        alert(3, t0 + 2000, "overheat", BBT_ALERT_RAISED, t0 + 60000);
        ASSERT_EQ(read_faults(), 1);
        ASSERT_EQ(R.fault[0].cleared_ms, t0 + 3000);
        /* A later raise opens a new one. */
        alert(5, t0 + 4000, "overheat", BBT_ALERT_RAISED, t0 + 61000);
        ASSERT_EQ(read_faults(), 2);
        ASSERT_EQ(R.fault[1].raised_ms, t0 + 4000);
        ASSERT_EQ(R.fault[1].cleared_ms, 0);
        alert(6, t0 + 5000, "overheat", BBT_ALERT_CLEARED, t0 + 62000);
        ASSERT_EQ(read_faults(), 2);
        ASSERT_EQ(R.fault[1].cleared_ms, t0 + 5000);

        /* disk_low: its raise lost in a gap, the clear arrives first, then
         * the raise is resent. It must not stay open for ever. */
        alert(8, t0 + 8000, "disk_low", BBT_ALERT_CLEARED, t0 + 63000);
        alert(7, t0 + 7000, "disk_low", BBT_ALERT_RAISED, t0 + 64000);
        read_faults();
        for (size_t i = 0; i < R.n_faults; i++)
                if (strcmp(R.fault[i].code, "disk_low") == 0 && R.fault[i].cleared_ms == 0)
                        FAIL("disk_low left open after its clear (raised %" PRId64 ")", R.fault[i].raised_ms);
        /* What is left: the fault as far as the clear tells, raised and
         * cleared at its time (the late raise cannot move its start). */
        ASSERT_EQ(R.n_faults, 3);
        ASSERT_STR_EQ(R.fault[2].code, "disk_low");
        ASSERT_STR_EQ(R.fault[2].source, "agent");
        ASSERT_EQ(R.fault[2].raised_ms, t0 + 8000);
        ASSERT_EQ(R.fault[2].cleared_ms, t0 + 8000);
        /* A clear of a fault raised later (newer raise first) leaves that open. */
        alert(10, t0 + 10000, "overheat", BBT_ALERT_RAISED, t0 + 65000);
        alert(9, t0 + 9000, "overheat", BBT_ALERT_CLEARED, t0 + 66000);
        ASSERT_EQ(read_faults(), 4);
        ASSERT_EQ(R.fault[3].raised_ms, t0 + 10000);
        ASSERT_EQ(R.fault[3].cleared_ms, 0);
}

static struct bbt_store_event got_event;
static struct bbt_store_net got_net;
static int n_events, n_nets;

static int event_cb(void *u, const struct bbt_store_event *e)
{
        (void)u;
        got_event = *e;
        n_events++;
        return 0;
}

static int net_cb(void *u, const struct bbt_store_net *n)
{
        (void)u;
        got_net = *n;
        n_nets++;
        return 0;
}

/* An alert with event true (power_off...) is stored as an event, not
 * rejected, and opens no fault; the inventory's wired NIC is kept, the
 * newest inventory's. */
TEST(alert_events_stored_not_faults)
{
        struct bbt_store_scope school = BBT_STORE_SCOPE_ALL;
        int64_t t0 = AT(18, 0);
        struct bbt_msg m;
        struct bbt_ingest_stats s;

        setup();
        open_ingest(t0);
        birth(1, 1, t0);
        m = msg(BBT_CH_ALERT, 2, t0 + 1000, 1);
        m.body.alert.code = "power_off";
        m.body.alert.severity = BBT_SEVERITY_WARNING;
        m.body.alert.state = BBT_ALERT_RAISED;
        m.body.alert.detail = "scheduled power-off at 2026-12-07 18:00:00 +0800: powering off (logind)";
        m.body.alert.has_event = m.body.alert.event = true;
        feed(&m, t0 + 1000);
        ASSERT_EQ(read_faults(), 0);
        s = stats();
        ASSERT_EQ(s.stored, 2);
        ASSERT_EQ(s.events, 1);
        for (int i = 0; i < BBT_REJECT__COUNT; i++)
                ASSERT_EQ(s.rejected[i], 0);
        school.county = COUNTY;
        school.school = SCHOOL;
        ASSERT_OK(bbt_store_events_each_in(F.store, &school, event_cb, NULL));
        ASSERT_EQ(n_events, 1);
        ASSERT_STR_EQ(got_event.code, "power_off");
        ASSERT_EQ(got_event.seq, 2);
        ASSERT_EQ(got_event.ts, t0 + 1000);
        ASSERT_STR_CONTAINS(got_event.detail, "powering off (logind)");

        /* The wired NIC: a newer inventory replaces it, an older one does not. */
        m = msg(BBT_CH_INVENTORY, 4, t0 + 2000, 1);
        m.body.inventory.has_net = true;
        m.body.inventory.net = (struct bbt_net_addr){ .ifname = "enp3s0", .mac = "00:1a:2b:3c:4d:5e",
                                                      .ipv4 = "192.168.10.23", .has_prefix = true, .prefix = 24 };
        feed(&m, t0 + 2000);
        m = msg(BBT_CH_INVENTORY, 3, t0 + 1500, 1);
        m.body.inventory.has_net = true;
        m.body.inventory.net = (struct bbt_net_addr){ .ifname = "eth0", .mac = "00:00:00:00:00:01" };
        feed(&m, t0 + 2100);
        commit();
        ASSERT_OK(bbt_store_nets_each_in(F.store, &school, net_cb, NULL));
        ASSERT_EQ(n_nets, 1);
        ASSERT_STR_EQ(got_net.mac, "00:1a:2b:3c:4d:5e");
        ASSERT_STR_EQ(got_net.ipv4, "192.168.10.23");
        ASSERT_EQ(got_net.prefix, 24);
        ASSERT_EQ(got_net.seq, 4);
}

TEST(rollups_and_rebuild)
{
        struct bbt_rollup_rules rules = { .bells = bbt_bells_default(), .margin_min = 30, .offset_min = OFFSET };
        struct bbt_usage_span spans[2] = {
                /* 08:20-09:00: across the 08:40 bell into the break and period 2. */
                { .start_ms = AT(8, 20), .end_ms = AT(9, 0), .state = BBT_USAGE_ACTIVE, .interactive_ms = 10 * MIN },
                /* 23:30-00:20: across midnight. */
                { .start_ms = AT(23, 30), .end_ms = AT(24, 20), .state = BBT_USAGE_ACTIVE,
                  .interactive_ms = 25 * MIN },
        };
        struct bbt_day_rollup want[2], part[2];
        struct bbt_bells bells = { .n = 3, .p = { { 8 * 60 + 30, 9 * 60 + 15 }, { 9 * 60 + 25, 10 * 60 + 10 },
                                                  { 21 * 60, 23 * 60 + 45 } } };
        struct bbt_calendar *cal = NULL;
        size_t n;

        setup();
        open_ingest(AT(8, 0));
        hb_to(TERM, 1, AT(8, 10), AT(8, 10));
        usage(2, spans[0].start_ms, spans[0].end_ms, spans[0].state, spans[0].interactive_ms, AT(9, 0));
        hb_to(TERM, 3, AT(23, 50), AT(23, 50));
        usage(4, spans[1].start_ms, spans[1].end_ms, spans[1].state, spans[1].interactive_ms, AT(24, 20));
        hb_to(TERM, 5, AT(24, 10), AT(24, 10));
        /* Standby and idle time count as on, never as active. */
        usage(6, AT(10, 0), AT(10, 30), BBT_USAGE_IDLE, 0, AT(10, 30));

        memset(want, 0, sizeof(want));
        want[0].day = DAY;
        want[1].day = DAY + 1;
        for (int i = 0; i < 2; i++) {
                n = bbt_rollup_usage(&rules, &spans[i], part, 2);
                for (size_t k = 0; k < n; k++)
                        bbt_day_rollup_add(&want[part[k].day - DAY], &part[k]);
        }
        {
                struct bbt_usage_span idle = { .start_ms = AT(10, 0), .end_ms = AT(10, 30), .state = BBT_USAGE_IDLE };

                ASSERT_EQ(bbt_rollup_usage(&rules, &idle, part, 2), 1);
                bbt_day_rollup_add(&want[0], &part[0]);
        }
        want[0].hb_count = 2;
        want[1].hb_count = 1;
        ASSERT_EQ(read_days(), 2);
        assert_rollup_eq(day_row(DAY), &want[0]);
        assert_rollup_eq(day_row(DAY + 1), &want[1]);
        /* By hand, a few of them: period 1 08:20-08:40, period 2 08:50-09:00;
         * school hours end 17:40, so the evening counts only as on_all. */
        ASSERT_EQ(day_row(DAY)->period_active_ms[0], 20 * MIN);
        ASSERT_EQ(day_row(DAY)->period_active_ms[1], 10 * MIN);
        ASSERT_EQ(day_row(DAY)->active_ms, 40 * MIN);
        ASSERT_EQ(day_row(DAY)->on_ms, 70 * MIN);
        ASSERT_EQ(day_row(DAY)->on_all_ms, 40 * MIN + 30 * MIN + 30 * MIN);
        ASSERT_EQ(day_row(DAY + 1)->on_all_ms, 20 * MIN);
        ASSERT_EQ(day_row(DAY + 1)->active_ms, 0);

        /* New bells for the county: rebuilt from the stored intervals. */
        ASSERT_OK(bbt_calendar_new(&cal));
        ASSERT_OK(bbt_calendar_set_bells(cal, COUNTY, &bells));
        ASSERT_OK(bbt_ingest_set_registry(F.in, NULL, cal, AT(25, 0)));
        rules.bells = &bells;
        memset(want, 0, sizeof(want));
        want[0].day = DAY;
        want[1].day = DAY + 1;
        for (int i = 0; i < 2; i++) {
                n = bbt_rollup_usage(&rules, &spans[i], part, 2);
                for (size_t k = 0; k < n; k++)
                        bbt_day_rollup_add(&want[part[k].day - DAY], &part[k]);
        }
        {
                struct bbt_usage_span idle = { .start_ms = AT(10, 0), .end_ms = AT(10, 30), .state = BBT_USAGE_IDLE };

                ASSERT_EQ(bbt_rollup_usage(&rules, &idle, part, 2), 1);
                bbt_day_rollup_add(&want[0], &part[0]);
        }
        want[0].hb_count = 2;
        want[1].hb_count = 1;
        ASSERT_EQ(read_days(), 2);
        assert_rollup_eq(day_row(DAY), &want[0]);
        assert_rollup_eq(day_row(DAY + 1), &want[1]);
        /* 08:30-09:00 in the new period 1; 23:30-23:45 in period 3 and school
         * hours now run to midnight. */
        ASSERT_EQ(day_row(DAY)->period_active_ms[0], 30 * MIN);
        ASSERT_EQ(day_row(DAY)->period_active_ms[1], 0);
        ASSERT_EQ(day_row(DAY)->period_active_ms[2], 15 * MIN);
        ASSERT_EQ(day_row(DAY)->active_ms, 40 * MIN + 30 * MIN);
        ASSERT_EQ(day_row(DAY)->on_all_ms, 100 * MIN);

        /* Restarted with the same calendar: nothing to rebuild, nothing doubled. */
        close_ingest();
        F.cal = cal;
        open_ingest(AT(26, 0));
        ASSERT_EQ(read_days(), 2);
        assert_rollup_eq(day_row(DAY), &want[0]);
        assert_rollup_eq(day_row(DAY + 1), &want[1]);
        close_ingest();
        bbt_calendar_free(cal);
        F.cal = NULL;
}

/* The disk fills during a commit: the batch is rolled back, its messages are
 * asked for again, and nothing is half stored. RLIMIT_FSIZE plays the full disk. */
TEST(commit_failure)
{
        struct rlimit old, lim;
        struct stat st;
        struct bbt_ingest_stats s;
        char wal[600], pad[14001], payload[16000];
        int64_t t0 = AT(9, 0);
        int r;

        setup();
        F.set.batch_size = 100000; /* commits only when told */
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(1, 1, t0);
        hbs(2, 10, t0);
        commit();
        ASSERT_EQ(raw_count(), 10);

        snprintf(wal, sizeof(wal), "%s-wal", F.db);
        ASSERT_OK(getrlimit(RLIMIT_FSIZE, &old));
        lim = old;
        lim.rlim_cur = 0;
        if (stat(F.db, &st) == 0)
                lim.rlim_cur = (rlim_t)st.st_size;
        if (stat(wal, &st) == 0 && (rlim_t)st.st_size > lim.rlim_cur)
                lim.rlim_cur = (rlim_t)st.st_size;
        if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < lim.rlim_cur)
                bbt_test_skip("RLIMIT_FSIZE already below the store's size");
        signal(SIGXFSZ, SIG_IGN);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &lim));
        /* 200 messages of 14 KB each: far more than the WAL can hold now. */
        memset(pad, 'x', sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = '\0';
        for (int64_t seq = 11; seq <= 210; seq++) {
                int len = snprintf(payload, sizeof(payload),
                                   "{\"v\":1,\"seq\":%" PRId64 ",\"ts\":%" PRId64 ",\"boot\":1,\"code\":\"disk_low\","
                                   "\"severity\":\"warning\",\"state\":\"cleared\",\"pad\":\"%s\"}",
                                   seq, t0, pad);

                feed_raw("alert", payload, (size_t)len, t0 + 1000);
        }
        ASSERT_EQ(stats().stored, 210);
        r = bbt_ingest_flush(F.in);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &old));
        ASSERT_LT(r, 0);
        s = stats();
        ASSERT_EQ(s.commit_failures, 1);
        /* Nothing of the batch in the store, and the ingest knows it. */
        ASSERT_EQ(raw_count(), 10);
        ASSERT_EQ(term_row().high_seq, 10);
        ASSERT_EQ(term_row().received, 10);
        ASSERT_EQ(read_faults(), 0);
        /* The agent goes on: the missing ones show up as a gap and are asked for. */
        hbs(211, 211, t0 + 2000);
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].from, 11);
        ASSERT_EQ(R.gap[0].to, 210);
        bbt_ingest_tick(F.in, t0 + 40000);
        ASSERT_EQ(sent.n, 1);
        ASSERT_RESEND(0, TERM, 11, 210);
        hbs(11, 210, t0 + 41000);
        commit();
        assert_raw_exactly(1, 211);
        ASSERT_EQ(term_row().received, 211);
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(counter("stored"), 211);
}

TEST(will_seq_expected_not_asked)
{
        int64_t t0 = AT(9, 0);
        struct bbt_msg m;

        setup();
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        /* Session boot 1: its will took seq 1, the birth is seq 2 and says so. */
        m = msg(BBT_CH_STATE, 2, t0, 1);
        m.body.state.online = true;
        m.body.state.version = "0.3.1";
        m.body.state.hostname = "r101-ops";
        m.body.state.os = "Debian GNU/Linux 12 (bookworm)";
        m.body.state.machine_id = "3f2a9c0d4e5b6a7c";
        m.body.state.has_will_seq = true;
        m.body.state.will_seq = 1;
        feed(&m, t0);
        hbs(3, 10, t0 + 1000);
        /* The series starts at the will; seq 1 waits, it is neither asked for nor lost. */
        bbt_ingest_tick(F.in, t0 + 120000);
        bbt_ingest_tick(F.in, t0 + 9LL * 86400000);
        ASSERT_EQ(sent.n, 0);
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].from, 1);
        ASSERT_EQ(R.gap[0].to, 1);
        ASSERT_EQ(R.gap[0].state, BBT_GAP_WILL);
        ASSERT_EQ(R.gap[0].boot, 1);
        /* A newer session began without it (the broker lost it): now it is asked for. */
        birth(11, 2, t0 + 9LL * 86400000 + 1000);
        bbt_ingest_tick(F.in, t0 + 9LL * 86400000 + 2000);
        bbt_ingest_tick(F.in, t0 + 9LL * 86400000 + 40000);
        ASSERT_EQ(sent.n, 1);
        ASSERT_RESEND(0, TERM, 1, 1);
        /* It comes: nothing missing, nothing lost. */
        offline(1, 1, BBT_REASON_LOST, t0 + 9LL * 86400000 + 41000);
        bbt_ingest_flush(F.in);
        ASSERT_EQ(read_gaps(), 0);
}

/* The reply names what the agent does not hold: damaged and unstored seqs
 * are lost at once (with the agent's reason), skipped ones are not lost at
 * all, and nothing is asked for again. */
TEST(resend_reply_missing_settles_gaps)
{
        struct bbt_store_terminal t;
        struct bbt_ingest_stats s;
        int64_t asked;

        setup();
        asked = gap_11_19();
        resend_reply_missing(31, sent.cmd[0].id, 11, 19,
                             "[{\"from\":11,\"to\":12,\"reason\":\"damaged\"},"
                             "{\"from\":13,\"to\":13,\"reason\":\"unstored\"},"
                             "{\"from\":14,\"to\":19,\"reason\":\"skipped\"}]",
                             asked + 400);
        s = stats();
        ASSERT_EQ(s.lost, 3);
        ASSERT_EQ(s.skipped, 6);
        ASSERT_EQ(s.open_gap_seqs, 0);
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(read_losses(), 3);
        ASSERT_EQ(R.loss[0].kind, BBT_LOSS_LOST);
        ASSERT_STR_CONTAINS(R.loss[0].reason, "lost from the agent's spool");
        ASSERT_EQ(R.loss[1].kind, BBT_LOSS_LOST);
        ASSERT_STR_CONTAINS(R.loss[1].reason, "never stored");
        ASSERT_EQ(R.loss[2].kind, BBT_LOSS_SKIPPED);
        ASSERT_EQ(R.loss[2].from, 14);
        ASSERT_EQ(R.loss[2].to, 19);
        t = term_row();
        ASSERT_EQ(t.lost, 3);
        ASSERT_EQ(t.skipped, 6);
        ASSERT_EQ(counter("lost"), 3);
        ASSERT_EQ(counter("skipped"), 6);
        bbt_ingest_tick(F.in, asked + 10 * MIN);
        ASSERT_EQ(sent.n, 1);
}

/* "unknown": the agent no longer remembers whether those seqs were used. They
 * count as lost with that reason, and turn skipped when the agent names them
 * so after all (another reply that lists the range). */
TEST(resend_reply_unknown_is_lost_until_named_skipped)
{
        struct bbt_ingest_stats s;
        int64_t asked;

        setup();
        asked = gap_11_19();
        resend_reply_missing(31, sent.cmd[0].id, 11, 19, "[{\"from\":11,\"to\":19,\"reason\":\"unknown\"}]",
                             asked + 400);
        s = stats();
        ASSERT_EQ(s.lost, 9);
        ASSERT_EQ(s.open_gap_seqs, 0);
        ASSERT_EQ(read_losses(), 1);
        ASSERT_EQ(R.loss[0].kind, BBT_LOSS_LOST);
        ASSERT_STR_EQ(R.loss[0].reason, "the agent cannot tell: lost, or never used");
        /* A later reply (to another request) names 14..19 skipped. */
        resend_reply_missing(32, sent.cmd[0].id, 11, 19, "[{\"from\":14,\"to\":19,\"reason\":\"skipped\"}]",
                             asked + 800);
        s = stats();
        ASSERT_EQ(s.lost, 3);
        ASSERT_EQ(s.skipped, 6);
        ASSERT_EQ(term_row().lost, 3);
        ASSERT_EQ(term_row().skipped, 6);
}

/* A skipped range of which some seqs did arrive (published before the stop):
 * every seq is handed out in order, so those below the highest arrival were
 * used and are lost; only the ones above it are skipped. */
TEST(skipped_range_partly_received)
{
        struct bbt_ingest_stats s;
        int64_t t0 = AT(9, 0);

        setup();
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(1, 1, t0);
        hbs(2, 10, t0 + 1000);
        hb_to(TERM, 14, t0, t0 + 1100); /* published before the kill; 11..13 never arrived */
        birth(30, 2, t0 + 2000);        /* the next run starts at 30 */
        bbt_ingest_tick(F.in, t0 + 32000);
        ASSERT_EQ(sent.n, 1);
        ASSERT_RESEND(0, TERM, 11, 13); /* one request at a time */
        /* The agent's spool ends at 10: it skipped 11..29, and names the
         * whole range, beyond the request. */
        resend_reply_missing(31, sent.cmd[0].id, 11, 13, "[{\"from\":11,\"to\":29,\"reason\":\"skipped\"}]",
                             t0 + 32500);
        s = stats();
        ASSERT_EQ(s.lost, 3);    /* 11..13 */
        ASSERT_EQ(s.skipped, 15); /* 15..29 */
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(read_losses(), 2);
        ASSERT_EQ(R.loss[0].from, 11);
        ASSERT_EQ(R.loss[0].to, 13);
        ASSERT_EQ(R.loss[0].kind, BBT_LOSS_LOST);
        ASSERT_EQ(R.loss[1].from, 15);
        ASSERT_EQ(R.loss[1].to, 29);
        ASSERT_EQ(R.loss[1].kind, BBT_LOSS_SKIPPED);
        /* A straggler of the old run from the broker's queue: 15..21 were used
         * too (lost), 22 is stored, 23..29 stay skipped. */
        hb_to(TERM, 22, t0, t0 + 40000);
        s = stats();
        ASSERT_EQ(s.recovered, 1);
        ASSERT_EQ(term_row().lost, 3 + 7);
        ASSERT_EQ(term_row().skipped, 7);
        ASSERT_EQ(read_losses(), 3);
        ASSERT_EQ(R.loss[2].from, 15);
        ASSERT_EQ(R.loss[2].to, 21);
        ASSERT_EQ(R.loss[2].kind, BBT_LOSS_LOST);
        ASSERT_EQ(R.loss[1].from, 23);
        ASSERT_EQ(R.loss[1].kind, BBT_LOSS_SKIPPED);
        ASSERT_EQ(counter("lost"), 10);
        ASSERT_EQ(counter("skipped"), 7);
        /* A lost one arriving after all leaves its row. */
        hb_to(TERM, 12, t0, t0 + 41000);
        ASSERT_EQ(term_row().lost, 9);
        ASSERT_EQ(sql_int("SELECT count(*) FROM raw WHERE seq IN (12, 14, 22)"), 3);
        ASSERT_EQ(sql_int("SELECT count(*) FROM loss WHERE 12 BETWEEN from_seq AND to_seq"), 0);
}

/* A different payload under a stored seq is a conflict: counted, logged,
 * kept; the stored message stays and is not processed twice. A will and its
 * clean stop share a seq by design and are not a conflict. */
TEST(seq_conflict_detected_and_kept)
{
        struct bbt_msg m;
        int64_t t0 = AT(9, 0);

        setup();
        open_ingest(t0);
        birth(1, 1, t0);
        usage(2, AT(8, 0), AT(8, 10), BBT_USAGE_ACTIVE, 0, t0 + 1);
        usage(2, AT(8, 0), AT(8, 10), BBT_USAGE_ACTIVE, 0, t0 + 2); /* a real duplicate */
        ASSERT_EQ(stats().duplicates, 1);
        ASSERT_EQ(stats().conflicts, 0);
        usage(2, AT(9, 0), AT(9, 30), BBT_USAGE_ACTIVE, 0, t0 + 3); /* the seq used again */
        ASSERT_EQ(stats().conflicts, 1);
        ASSERT_EQ(stats().duplicates, 1);
        ASSERT_EQ(term_row().conflicts, 1);
        ASSERT_EQ(counter("seq_conflict"), 1);
        ASSERT_EQ(sql_int("SELECT count(*) FROM conflict WHERE seq = 2"), 1);
        ASSERT_EQ(sql_int("SELECT count(*) FROM usage"), 1); /* not counted twice */
        ASSERT_EQ(sql_int("SELECT end_ms - start_ms FROM usage WHERE seq = 2"), 10 * MIN);
        /* Will and clean stop of one session: not a conflict. */
        m = msg(BBT_CH_STATE, 3, t0, 1);
        m.body.state.reason = BBT_REASON_LOST;
        feed(&m, t0 + 10);
        m.body.state.reason = BBT_REASON_SHUTDOWN;
        feed(&m, t0 + 11);
        ASSERT_EQ(stats().conflicts, 1);
        ASSERT_EQ(stats().duplicates, 2);
}

/* After an outage the broker delivers a backlog first; a resend's answer
 * waits behind it in the aggregator's own queue. The request is not "
 * unanswered" until a message the terminal made after it has arrived (and
 * resend_timeout more has passed), or ten resend_timeouts if it never does. */
TEST(resend_timed_from_after_the_backlog)
{
        int64_t asked;

        setup();
        asked = gap_11_19();
        /* The backlog: old messages of the terminal, made before the request. */
        for (int64_t seq = 31; seq <= 40; seq++)
                hb_to(TERM, seq, asked - 60000, asked + (seq - 30) * 20000);
        bbt_ingest_tick(F.in, asked + 5 * 60000);
        ASSERT_EQ(sent.n, 1); /* not asked again: still waiting behind the backlog */
        ASSERT_EQ(read_gaps(), 1);
        ASSERT_EQ(R.gap[0].state, BBT_GAP_REQUESTED);
        /* A message made after the request arrives: the answer is due resend_timeout later. */
        live_hb(41, asked + 5 * 60000 + 1, asked + 5 * 60000 + 1);
        bbt_ingest_tick(F.in, asked + 6 * 60000);
        ASSERT_EQ(sent.n, 1);
        bbt_ingest_tick(F.in, asked + 6 * 60000 + 1);
        ASSERT_EQ(sent.n, 2);
        /* Never heard from again: asked after ten resend_timeouts all the same. */
        bbt_ingest_tick(F.in, asked + 6 * 60000 + 1 + 10 * 60000 - 1);
        ASSERT_EQ(sent.n, 2);
        bbt_ingest_tick(F.in, asked + 6 * 60000 + 1 + 10 * 60000);
        ASSERT_EQ(sent.n, 3);
        ASSERT_EQ(stats().lost, 0);
}

/* The birth of session BOOT at SEQ, naming FROM..TO as skipped by its run. */
static void birth_skipped(int64_t seq, uint32_t boot, int64_t from, int64_t to, int64_t recv_ms)
{
        struct bbt_msg m = msg(BBT_CH_STATE, seq, recv_ms, boot);

        m.body.state.online = true;
        m.body.state.version = "0.2.0";
        m.body.state.hostname = "r101-ops";
        m.body.state.os = "Linux";
        m.body.state.machine_id = "3f2a9c0d";
        m.body.state.has_skipped_from = m.body.state.has_skipped_to = true;
        m.body.state.skipped_from = from;
        m.body.state.skipped_to = to;
        feed(&m, recv_ms);
}

/* A birth names the range its run skipped at the start: settled at once,
 * never asked for; a seq of it that arrived earlier counts the ones below
 * it as lost. */
TEST(birth_settles_skipped_range)
{
        int64_t t0 = AT(9, 0);

        setup();
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        birth(1, 1, t0);
        hbs(2, 10, t0 + 1000);
        hb_to(TERM, 12, t0, t0 + 1100); /* published before the kill */
        birth_skipped(2001, 2, 11, 2000, t0 + 2000); /* the agent knew of 1..10 only */
        ASSERT_EQ(read_gaps(), 0);
        ASSERT_EQ(stats().lost, 1);     /* 11: used (12 came), never received */
        ASSERT_EQ(stats().skipped, 1988); /* 13..2000 */
        ASSERT_EQ(stats().open_gap_seqs, 0);
        bbt_ingest_tick(F.in, t0 + 10 * MIN);
        ASSERT_EQ(sent.n, 0);
        ASSERT_EQ(term_row().online, true);
        ASSERT_EQ(term_row().boot, 2);
}

/* A range given up as lost because nobody answered, which the agent later
 * says it never used (its birth names it after a crash loop): skipped after all. */
TEST(unanswered_loss_reclassified_as_skipped)
{
        int64_t asked;

        setup();
        F.set.resend_attempts = 1;
        asked = gap_11_19();
        live_hb(31, asked, asked);
        bbt_ingest_tick(F.in, asked + 60000);
        ASSERT_EQ(stats().lost, 9);
        ASSERT_EQ(term_row().lost, 9);
        birth_skipped(40, 3, 11, 19, asked + 70000);
        ASSERT_EQ(term_row().lost, 0);
        ASSERT_EQ(term_row().skipped, 9);
        ASSERT_EQ(counter("lost"), 0);
        ASSERT_EQ(counter("skipped"), 9);
        ASSERT_EQ(sql_int("SELECT count(*) FROM loss WHERE kind = 0"), 0);
        ASSERT_EQ(sql_int("SELECT sum(to_seq - from_seq + 1) FROM loss WHERE kind = 1"), 9);
        ASSERT_EQ(read_gaps(), 1); /* 32..39: just a gap, asked for */
        ASSERT_EQ(R.gap[0].from, 32);
}

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "r");
        char *buf = calloc(1, 1 << 20);
        size_t n;

        ASSERT(f && buf);
        n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

/* A disk that stays full: every commit fails, but the error is logged at
 * most six times a minute (with the running count), not at every batch. */
TEST(commit_failure_log_rate_limited)
{
        struct rlimit old, lim;
        struct stat st;
        char wal[600], pad[14001], payload[16000], logpath[600];
        int64_t t0 = AT(9, 0);
        int saved_err, fd, lines;
        char *text, *p;

        setup();
        F.set.batch_size = 100000;
        open_ingest(t0);
        birth(1, 1, t0);
        commit();
        snprintf(wal, sizeof(wal), "%s-wal", F.db);
        ASSERT_OK(getrlimit(RLIMIT_FSIZE, &old));
        lim = old;
        lim.rlim_cur = 0;
        if (stat(F.db, &st) == 0)
                lim.rlim_cur = (rlim_t)st.st_size;
        if (stat(wal, &st) == 0 && (rlim_t)st.st_size > lim.rlim_cur)
                lim.rlim_cur = (rlim_t)st.st_size;
        if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < lim.rlim_cur)
                bbt_test_skip("RLIMIT_FSIZE already below the store's size");
        signal(SIGXFSZ, SIG_IGN);
        memset(pad, 'x', sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = '\0';
        snprintf(logpath, sizeof(logpath), "%s.log", F.db);
        fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ASSERT(fd >= 0);
        saved_err = dup(2);
        dup2(fd, 2);
        close(fd);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &lim));
        for (int k = 0; k < 30; k++) {
                for (int64_t seq = 2 + 40 * k; seq < 2 + 40 * (k + 1); seq++) {
                        int len = snprintf(payload, sizeof(payload),
                                           "{\"v\":1,\"seq\":%" PRId64 ",\"ts\":%" PRId64 ",\"boot\":1,\"code\":"
                                           "\"disk_low\",\"severity\":\"warning\",\"state\":\"cleared\",\"pad\":\"%s\"}",
                                           seq, t0, pad);

                        feed_raw("alert", payload, (size_t)len, t0 + 1000);
                }
                bbt_ingest_flush(F.in);
        }
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &old));
        fflush(stderr);
        dup2(saved_err, 2);
        close(saved_err);
        ASSERT_EQ(stats().commit_failures, 30);
        text = slurp(logpath);
        for (lines = 0, p = text; (p = strstr(p, "cannot commit")); p++)
                lines++;
        fprintf(stderr, "30 failed commits, %d logged:\n%s", lines, text);
        ASSERT_LE(lines, 6);
        ASSERT_GE(lines, 1);
        ASSERT(strstr(text, "failed commits so far"));
        free(text);
}

/* Power schedules: sent at each birth at most power_send_rate a second (a
 * burst of births waits its turn), answers and refusals counted, sent again
 * only when the content changes (a new calendar, the window rolling a day). */
TEST(power_schedule_rate_limited_and_counted)
{
        struct bbt_calendar *cal = NULL, *cal2 = NULL;
        struct bbt_power_times p = { { 18 * 3600, BBT_POWER_INHERIT, BBT_POWER_NONE } };
        struct bbt_ingest_stats st;
        int64_t t0 = AT(9, 0);
        char name[16];

        setup();
        F.set.power_send_rate = 10;
        ASSERT_OK(bbt_calendar_new(&cal));
        ASSERT_OK(bbt_calendar_set_power(cal, COUNTY, &p));
        F.cal = cal;
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        for (int i = 0; i < 30; i++) {
                snprintf(name, sizeof(name), "P%02d", i);
                birth_to(name, 1, 1, t0);
        }
        ASSERT_EQ(sent.n, 0); /* never from the message path */
        bbt_ingest_tick(F.in, t0);
        ASSERT_EQ(sent.n, 10);
        bbt_ingest_tick(F.in, t0 + 500);
        ASSERT_EQ(sent.n, 15);
        bbt_ingest_tick(F.in, t0 + 1500);
        ASSERT_EQ(sent.n, 25);
        bbt_ingest_tick(F.in, t0 + 2500);
        bbt_ingest_tick(F.in, t0 + 3500);
        ASSERT_EQ(sent.n, 30);
        for (int i = 0; i < 30; i++) {
                snprintf(name, sizeof(name), "P%02d", i);
                ASSERT_STR_CONTAINS(sent.cmd[i].topic, name);
                ASSERT_STR_EQ(sent.cmd[i].op, "power_schedule");
                ASSERT(strncmp(sent.cmd[i].id, "ps-", 3) == 0);
        }
        /* One answer, one refusal (logged with the terminal and reason). */
        {
                struct bbt_msg m = msg(BBT_CH_CMD_REPLY, 2, t0 + 4000, 1);

                m.body.reply.id = sent.cmd[0].id;
                m.body.reply.ok = true;
                feed_to("P00", &m, t0 + 4000);
                m.body.reply.id = sent.cmd[1].id;
                m.body.reply.ok = false;
                m.body.reply.error = "expired: the command expired 5 s ago";
                feed_to("P01", &m, t0 + 4000);
        }
        bbt_ingest_get_stats(F.in, &st);
        ASSERT_EQ(st.power_sent, 30);
        ASSERT_EQ(st.power_answered, 1);
        ASSERT_EQ(st.power_refused, 1);
        ASSERT_EQ(st.power_failed, 0);
        /* The same calendar again: nothing new but the refused one. */
        ASSERT_OK(bbt_ingest_set_registry(F.in, NULL, cal, t0 + 5000));
        bbt_ingest_tick(F.in, t0 + 10000);
        bbt_ingest_tick(F.in, t0 + 20000);
        ASSERT_EQ(sent.n, 31);
        ASSERT_STR_CONTAINS(sent.cmd[30].topic, "P01");
        /* Another time: all again, at the rate. */
        p.off_s[0] = 17 * 3600;
        ASSERT_OK(bbt_calendar_new(&cal2));
        ASSERT_OK(bbt_calendar_set_power(cal2, COUNTY, &p));
        ASSERT_OK(bbt_ingest_set_registry(F.in, NULL, cal2, t0 + 21000));
        bbt_ingest_tick(F.in, t0 + 21000);
        ASSERT_EQ(sent.n, 31 + 10);
        bbt_ingest_tick(F.in, t0 + 22000);
        ASSERT_EQ(sent.n, 51);
        bbt_ingest_tick(F.in, t0 + 23000);
        bbt_ingest_tick(F.in, t0 + 24000);
        ASSERT_EQ(sent.n, 61);
        /* The next local day: the window rolls, every schedule changes. */
        for (int i = 0; i < 5; i++)
                bbt_ingest_tick(F.in, AT(24, 0) + i * 1000);
        ASSERT_EQ(sent.n, 91);
        close_ingest();
        bbt_calendar_free(cal);
        bbt_calendar_free(cal2);
}

/* ---- asking a terminal whose session is unknown (ask.c) ---- */

/* A terminal heard from without its birth (a broker that never delivered
 * the retained one) is asked for its birth and inventory once; the birth
 * it sends back (below the seqs received) makes its session known and its
 * backlog a gap; a terminal whose birth came is never asked. */
TEST(ask_unknown_terminal_once)
{
        int64_t t0 = AT(9, 0);

        setup();
        F.set.ask_rate = 100;
        open_ingest(t0);
        bbt_ingest_set_connected(F.in, true, t0);
        hbs(40, 45, t0 + 1000);
        ASSERT_EQ(sent.n, 2);
        ASSERT_STR_EQ(sent.cmd[0].topic, "bbt/v1/" COUNTY "/" SCHOOL "/" TERM "/cmd");
        ASSERT_STR_EQ(sent.cmd[0].op, "state");
        ASSERT_STR_EQ(sent.cmd[0].id, "as-1-1");
        ASSERT_STR_EQ(sent.cmd[1].op, "inventory");
        ASSERT_STR_EQ(sent.cmd[1].topic, sent.cmd[0].topic);
        ASSERT_EQ(stats().asks, 1);
        /* The answers: the birth (seq 30, before the heartbeats) and a new inventory. */
        birth(30, 1, t0 + 2000);
        inventory_to(TERM, 46, t0 + 2000, NULL, 0, t0 + 2000);
        ASSERT_OK(bbt_ingest_flush(F.in));
        ASSERT_EQ(sql_int("SELECT online FROM terminal WHERE terminal = '" TERM "'"), 1);
        ASSERT_EQ(sql_int("SELECT boot FROM terminal WHERE terminal = '" TERM "'"), 1);
        ASSERT_EQ(sql_int("SELECT inventory_seq FROM terminal WHERE terminal = '" TERM "'"), 46);
        ASSERT_EQ(stats().open_gap_seqs, 9); /* 31..39: the session's backlog, asked for as a gap */
        hbs(47, 50, t0 + 3000);
        /* Another terminal: its birth first, then heartbeats: nothing to ask. */
        birth_to("T2", 1, 1, t0 + 3000);
        hbs_to("T2", 2, 5, t0 + 3000);
        ASSERT_EQ(sent.n, 2);
        ASSERT_EQ(stats().asks, 1);
        close_ingest();
}

/* At most ask_rate terminals a second; one over the rate, or heard while
 * the broker is away, is asked at its next message. A refusal (an older
 * agent) is counted, and not asked again. */
TEST(ask_rate_limited_and_refusal_counted)
{
        int64_t t0 = AT(9, 0);
        struct bbt_msg m;
        char term[16];

        setup();
        F.set.ask_rate = 2;
        open_ingest(t0);
        hb_to("T9", 1, t0, t0);
        ASSERT_EQ(sent.n, 0); /* not connected */
        bbt_ingest_set_connected(F.in, true, t0);
        for (int i = 1; i <= 5; i++) {
                snprintf(term, sizeof(term), "T%d", i);
                hb_to(term, 10, t0 + 100, t0 + 100);
        }
        ASSERT_EQ(sent.n, 4); /* T1 and T2: state and inventory each */
        ASSERT_EQ(stats().asks, 2);
        hb_to("T3", 11, t0 + 1100, t0 + 1100);
        hb_to("T4", 11, t0 + 1100, t0 + 1100);
        hb_to("T5", 11, t0 + 1100, t0 + 1100);
        ASSERT_EQ(stats().asks, 4);
        ASSERT_STR_CONTAINS(sent.cmd[6].topic, "/T4/cmd");
        hb_to("T9", 2, t0 + 5000, t0 + 5000);
        ASSERT_EQ(stats().asks, 5);
        /* T1 is an older agent. */
        m = msg(BBT_CH_CMD_REPLY, 11, t0 + 6000, 1);
        m.body.reply.id = sent.cmd[0].id;
        m.body.reply.ok = false;
        m.body.reply.error = "unsupported op state";
        feed_to("T1", &m, t0 + 6000);
        hb_to("T1", 12, t0 + 7000, t0 + 7000);
        ASSERT_EQ(stats().asks_refused, 1);
        ASSERT_EQ(stats().asks, 5);
        ASSERT_EQ(sent.n, 10);
        close_ingest();
}
