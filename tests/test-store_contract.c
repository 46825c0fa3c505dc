/* The store contract (store.h) every backend keeps, checked through the bbt_store_*() calls alone, on each backend. */
/* bbt-test: label=unit timeout=60 postgresql */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bbt/base.h"
#include "store.h"
#include "test.h"
#ifdef BBT_HAVE_POSTGRESQL
#include "pg-server.h"
#endif

/* ---- the backends ----
 *
 * Every case runs on each backend of this table, as its own ctest entry:
 * store_contract.CASE on SQLite, store_contract.pg_CASE on PostgreSQL; each
 * time on a fresh, empty store. A backend entry is a way to make such a
 * store's location for bbt_store_open(): a new file for SQLite; for
 * PostgreSQL, a new database on the server the test run starts
 * (tests/pg-server.h), and its postgresql:// URI. Nothing below the table
 * knows which backend it runs on. */

struct backend {
        const char *name;
        /* Writes the location of a new, empty store into BUF (SIZE bytes).
         * Returns false, with the reason in BUF, if the backend cannot run
         * here; the case is then skipped. */
        bool (*fresh)(char *buf, size_t size);
};

static char sqlite_dir[64];

static void sqlite_cleanup(void)
{
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sqlite_dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", sqlite_dir);
}

static bool sqlite_fresh(char *buf, size_t size)
{
        static int n;

        if (!sqlite_dir[0]) {
                snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/bbt-contract-XXXXXX");
                ASSERT(mkdtemp(sqlite_dir) != NULL);
                atexit(sqlite_cleanup);
        }
        snprintf(buf, size, "%s/store-%d.db", sqlite_dir, ++n);
        return true;
}

#ifdef BBT_HAVE_POSTGRESQL
static bool pg_fresh(char *buf, size_t size)
{
        return bbt_test_pg_database(buf, size);
}
#else
static bool pg_fresh(char *buf, size_t size)
{
        snprintf(buf, size, "the PostgreSQL backend is not built (BBT_POSTGRESQL=OFF)");
        return false;
}
#endif

static const struct backend sqlite_backend = { "sqlite", sqlite_fresh };
static const struct backend pg_backend = { "postgresql", pg_fresh };

/* The backend the case runs on now, for messages. */
static const char *current = "?";

/* Runs ONE_CASE on a fresh store of backend B (skipped if B cannot run here). */
static void on_backend(const struct backend *b, void (*one_case)(const char *location))
{
        char location[512];

        current = b->name;
        if (!b->fresh(location, sizeof(location)))
                bbt_test_skip("%s: %s", current, location);
        one_case(location);
}

static struct bbt_store *open_store(const char *location, bool read_only)
{
        struct bbt_store *s = NULL;
        char err[512] = "";
        int r = bbt_store_open(location, read_only, &s, err, sizeof(err));

        if (r < 0)
                FAIL("%s: open %s: %s (%s)", current, location, err, strerror(-r));
        return s;
}

/* ---- helpers ---- */

/* Rows are written down as space-separated tokens; a terminal as its code. */
#define OUT_SIZE 2048

static void add(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(char *out, const char *fmt, ...)
{
        size_t n = strlen(out);
        va_list ap;

        if (n)
                out[n++] = ' ';
        va_start(ap, fmt);
        vsnprintf(out + n, OUT_SIZE - n, fmt, ap);
        va_end(ap);
}

/* The terminals inserted by the running case: store key → code. */
static struct {
        int64_t id;
        char code[16];
} names[16];
static size_t n_names;

static const char *code_of(int64_t id)
{
        for (size_t i = 0; i < n_names; i++)
                if (names[i].id == id)
                        return names[i].code;
        return "?";
}

static struct bbt_store_terminal terminal(const char *county, const char *school, const char *code)
{
        struct bbt_store_terminal t = { .first_seq = -1, .high_seq = -1, .boot = -1, .inventory_seq = -1 };

        snprintf(t.county, sizeof(t.county), "%s", county);
        snprintf(t.school, sizeof(t.school), "%s", school);
        snprintf(t.terminal, sizeof(t.terminal), "%s", code);
        return t;
}

/* Inserts terminal CODE of SCHOOL in COUNTY, known below as NAME. */
static int64_t insert_terminal(struct bbt_store *s, const char *county, const char *school, const char *code,
                               const char *name)
{
        struct bbt_store_terminal t = terminal(county, school, code);

        ASSERT_OK(bbt_store_terminal_insert(s, &t));
        ASSERT_GT(t.id, 0);
        ASSERT_LT(n_names, BBT_ELEMENTSOF(names));
        names[n_names].id = t.id;
        snprintf(names[n_names].code, sizeof(names[n_names].code), "%s", name);
        n_names++;
        return t.id;
}

static void forget_terminals(void)
{
        n_names = 0;
}

static int terminal_cb(void *u, const struct bbt_store_terminal *t)
{
        add(u, "%s/%s/%s", t->county, t->school, t->terminal);
        return 0;
}

static int brief_cb(void *u, const struct bbt_store_terminal_brief *t)
{
        add(u, "%s/%s/%s:%lld-%lld/%lld/%lld/%lld/%lld/%lld/%lld/%lld/%s/%s", t->county, t->school, t->terminal,
            (long long)t->first_seq, (long long)t->high_seq, (long long)t->received, (long long)t->duplicates,
            (long long)t->lost, (long long)t->skipped, (long long)t->conflicts, (long long)t->spool_dropped,
            (long long)t->first_seen_ms, t->online ? "on" : "off", t->version);
        return 0;
}

static int gap_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        add(u, "%s:%lld-%lld:%d:%d:%lld:%lld:%s:%lld", code_of(terminal_id), (long long)g->from, (long long)g->to,
            (int)g->state, g->attempts, (long long)g->detected_ms, (long long)g->changed_ms, g->cmd_id,
            (long long)g->boot);
        return 0;
}

static int conflict_cb(void *u, const struct bbt_store_conflict *c)
{
        add(u, "%s:%lld:%s:%lld:%lld:%lld:%llx:%llx", code_of(c->terminal_id), (long long)c->seq,
            bbt_channel_name(c->channel), (long long)c->ts, (long long)c->recv_ms, (long long)c->boot,
            (unsigned long long)c->stored_hash, (unsigned long long)c->hash);
        return 0;
}

static int usage_cb(void *u, const struct bbt_store_usage *x)
{
        add(u, "%s:%lld:%lld-%lld:%s:%lld:%lld:%lld/%lld/%lld/%lld", code_of(x->terminal_id), (long long)x->seq,
            (long long)x->span.start_ms, (long long)x->span.end_ms, bbt_usage_state_name(x->span.state),
            (long long)x->span.interactive_ms, (long long)x->audio_ms, (long long)x->touch, (long long)x->pen,
            (long long)x->mouse, (long long)x->key);
        return 0;
}

static int day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        add(u, "%s:%d:%lld/%lld/%lld/%lld/%lld:p1=%lld:p12=%lld", code_of(terminal_id), (int)d->day,
            (long long)d->on_ms, (long long)d->active_ms, (long long)d->interactive_ms, (long long)d->hb_count,
            (long long)d->on_all_ms, (long long)d->period_active_ms[0], (long long)d->period_active_ms[11]);
        return 0;
}

static int loss_cb(void *u, const struct bbt_store_loss *l)
{
        add(u, "%s:%lld-%lld:%s:%lld:%s", code_of(l->terminal_id), (long long)l->from, (long long)l->to,
            l->kind == BBT_LOSS_SKIPPED ? "skipped" : "lost", (long long)l->recorded_ms, l->reason);
        return 0;
}

static int fault_cb(void *u, const struct bbt_store_fault *f)
{
        add(u, "%s:%s:%s:%d:%lld-%lld:%s", code_of(f->terminal_id), f->code, f->source, (int)f->severity,
            (long long)f->raised_ms, (long long)f->cleared_ms, f->detail);
        return 0;
}

static int device_cb(void *u, const struct bbt_store_device *d)
{
        add(u, "%s:%s:%s:%s:%s:%s:%s:%s:%s:%s", code_of(d->terminal_id), bbt_periph_kind_name(d->kind),
            d->subsystem, d->bus, d->vendor_id, d->model_id, d->vendor, d->model, d->serial, d->syspath);
        return 0;
}

static int counter_cb(void *u, const char *name, int64_t value)
{
        add(u, "%s=%lld", name, (long long)value);
        return 0;
}

/* Stops after the first row with 7. */
static int stop_cb(void *u, const struct bbt_store_terminal *t)
{
        ++*(int *)u;
        return 7;
}

static int copy_terminal_cb(void *u, const struct bbt_store_terminal *t)
{
        struct bbt_store_terminal *want = u;

        if (t->id == want->id)
                *want = *t;
        return 0;
}

static struct bbt_store_device device(enum bbt_periph_kind kind, const char *vendor, const char *serial)
{
        struct bbt_store_device d = { .kind = kind };

        snprintf(d.subsystem, sizeof(d.subsystem), "usb");
        snprintf(d.bus, sizeof(d.bus), "usb");
        snprintf(d.vendor_id, sizeof(d.vendor_id), "1a2b");
        snprintf(d.model_id, sizeof(d.model_id), "3c4d");
        snprintf(d.vendor, sizeof(d.vendor), "%s", vendor);
        snprintf(d.model, sizeof(d.model), "型号-%s", vendor);
        snprintf(d.serial, sizeof(d.serial), "%s", serial);
        snprintf(d.syspath, sizeof(d.syspath), "/sys/devices/%s", serial);
        return d;
}

static struct bbt_store_usage usage(int64_t terminal_id, int64_t seq, int64_t start_ms, int64_t end_ms)
{
        struct bbt_store_usage x = {
                .terminal_id = terminal_id, .seq = seq,
                .span = { .start_ms = start_ms, .end_ms = end_ms, .state = BBT_USAGE_ACTIVE,
                          .interactive_ms = (end_ms - start_ms) / 2 },
                .audio_ms = 5, .touch = 1, .pen = 2, .mouse = 3, .key = 4,
        };

        return x;
}

static struct bbt_store_fault fault(int64_t terminal_id, const char *code, const char *source, int64_t raised_ms)
{
        struct bbt_store_fault f = { .terminal_id = terminal_id, .severity = BBT_SEVERITY_ERROR,
                                     .raised_ms = raised_ms };

        snprintf(f.code, sizeof(f.code), "%s", code);
        snprintf(f.source, sizeof(f.source), "%s", source);
        snprintf(f.detail, sizeof(f.detail), "CPU 92.0°C");
        return f;
}

static struct bbt_store_loss loss(int64_t terminal_id, int64_t from, int64_t to, enum bbt_loss_kind kind,
                                  int64_t recorded_ms, const char *reason)
{
        struct bbt_store_loss l = { .terminal_id = terminal_id, .from = from, .to = to, .kind = kind,
                                    .recorded_ms = recorded_ms };

        snprintf(l.reason, sizeof(l.reason), "%s", reason);
        return l;
}

/* ---- meta, opening ---- */

static void meta_case(const char *location)
{
        struct bbt_store *s = open_store(location, false), *missing = NULL;
        char path[600], err[256] = "";
        int64_t v = 0;

        ASSERT_EQ(bbt_store_meta_get(s, "boot", &v), -ENOENT);
        ASSERT_OK(bbt_store_meta_set(s, "boot", 7));
        ASSERT_OK(bbt_store_meta_set(s, "big", INT64_MAX));
        ASSERT_OK(bbt_store_meta_set(s, "boot", -3)); /* set again: replaced */
        ASSERT_OK(bbt_store_meta_get(s, "boot", &v));
        ASSERT_EQ(v, -3);
        ASSERT_OK(bbt_store_meta_get(s, "big", &v));
        ASSERT(v == INT64_MAX);
        bbt_store_close(s);
        /* Reopened read-only: what was written is there, and writing is refused. */
        s = open_store(location, true);
        ASSERT_OK(bbt_store_meta_get(s, "boot", &v));
        ASSERT_EQ(v, -3);
        ASSERT_EQ(bbt_store_meta_set(s, "boot", 1), -EROFS);
        ASSERT(strcmp(bbt_store_error(s), "no error") != 0);
        bbt_store_close(s);
        bbt_store_close(NULL);
        ASSERT_STR_EQ(bbt_store_error(NULL), "no error");
        /* Read-only never creates a store. */
        snprintf(path, sizeof(path), "%s-none", location);
        ASSERT_EQ(bbt_store_open(path, true, &missing, err, sizeof(err)), -ENOENT);
        ASSERT(err[0] != '\0');
}

/* meta_get and meta_set; reopening read-only; a read-only store refuses writes. */
TEST(meta_and_read_only)
{
        on_backend(&sqlite_backend, meta_case);
}

TEST(pg_meta_and_read_only)
{
        on_backend(&pg_backend, meta_case);
}

/* ---- the change marker ---- */

static void data_version_case(const char *location)
{
        struct bbt_store *w = open_store(location, false), *r;
        uint64_t a, b, c;

        ASSERT_OK(bbt_store_meta_set(w, "boot", 1));
        r = open_store(location, true);
        ASSERT_OK(bbt_store_data_version(r, &a));
        ASSERT_OK(bbt_store_data_version(r, &b));
        ASSERT(a == b); /* nothing committed in between */
        ASSERT_OK(bbt_store_begin(w));
        ASSERT_OK(bbt_store_meta_set(w, "boot", 2));
        ASSERT_OK(bbt_store_commit(w));
        ASSERT_OK(bbt_store_data_version(r, &c));
        ASSERT(c != b); /* another connection committed */
        ASSERT_OK(bbt_store_meta_set(w, "boot", 3)); /* outside a transaction: committed at once */
        ASSERT_OK(bbt_store_data_version(r, &a));
        ASSERT(a != c);
        bbt_store_close(r);
        bbt_store_close(w);
}

/* data_version: the same number while no other connection commits, another after each commit. */
TEST(data_version)
{
        on_backend(&sqlite_backend, data_version_case);
}

TEST(pg_data_version)
{
        on_backend(&pg_backend, data_version_case);
}

/* ---- terminals ---- */

static void terminals_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_terminal t = terminal("510107", "S1", "a"), dup, back;
        char out[OUT_SIZE] = "";
        int64_t b, c;
        int n = 0;

        forget_terminals();
        ASSERT_OK(bbt_store_terminal_insert(s, &t));
        ASSERT_GT(t.id, 0);
        b = insert_terminal(s, "510107", "S1", "b", "b");
        /* The same school and terminal codes under another county: another terminal. */
        c = insert_terminal(s, "510108", "S1", "a", "a2");
        ASSERT(b != t.id && c != t.id && c != b);
        dup = terminal("510107", "S1", "a");
        ASSERT_EQ(bbt_store_terminal_insert(s, &dup), -EEXIST);
        /* An update writes every field of the row. */
        t.first_seq = 0, t.high_seq = 99, t.received = 95, t.duplicates = 4, t.lost = 2, t.skipped = 1;
        t.conflicts = 3, t.first_seen_ms = 1000, t.last_seen_ms = 9000, t.last_active_ms = 8000;
        t.online = true, t.boot = 12, t.online_since_ms = 7000, t.offline_since_ms = 6000;
        t.offline_reason = BBT_OFFLINE_LOST, t.skew_known = true, t.skew_ms = -1500, t.spool_dropped = 6;
        t.inventory_seq = 42;
        snprintf(t.version, sizeof(t.version), "0.1.0");
        snprintf(t.hostname, sizeof(t.hostname), "r101");
        snprintf(t.os, sizeof(t.os), "Debian GNU/Linux 12 (bookworm)");
        snprintf(t.machine_id, sizeof(t.machine_id), "0123456789abcdef0123456789abcdef");
        snprintf(t.last_hb, sizeof(t.last_hb), "{\"cpu\":12,\"名称\":\"班班通\"}");
        ASSERT_OK(bbt_store_terminal_update(s, &t));
        bbt_store_close(s);

        s = open_store(location, true);
        ASSERT_OK(bbt_store_terminals_each(s, terminal_cb, out));
        ASSERT_STR_EQ(out, "510107/S1/a 510107/S1/b 510108/S1/a"); /* by id: as inserted */
        memset(&back, 0, sizeof(back));
        back.id = t.id;
        ASSERT_OK(bbt_store_terminals_each(s, copy_terminal_cb, &back));
        ASSERT_EQ(back.first_seq, 0);
        ASSERT_EQ(back.high_seq, 99);
        ASSERT_EQ(back.received, 95);
        ASSERT_EQ(back.duplicates, 4);
        ASSERT_EQ(back.lost, 2);
        ASSERT_EQ(back.skipped, 1);
        ASSERT_EQ(back.conflicts, 3);
        ASSERT_EQ(back.first_seen_ms, 1000);
        ASSERT_EQ(back.last_seen_ms, 9000);
        ASSERT_EQ(back.last_active_ms, 8000);
        ASSERT(back.online);
        ASSERT_EQ(back.boot, 12);
        ASSERT_EQ(back.online_since_ms, 7000);
        ASSERT_EQ(back.offline_since_ms, 6000);
        ASSERT_EQ(back.offline_reason, BBT_OFFLINE_LOST);
        ASSERT(back.skew_known);
        ASSERT_EQ(back.skew_ms, -1500);
        ASSERT_EQ(back.spool_dropped, 6);
        ASSERT_EQ(back.inventory_seq, 42);
        ASSERT_STR_EQ(back.version, "0.1.0");
        ASSERT_STR_EQ(back.hostname, "r101");
        ASSERT_STR_EQ(back.os, "Debian GNU/Linux 12 (bookworm)");
        ASSERT_STR_EQ(back.machine_id, "0123456789abcdef0123456789abcdef");
        ASSERT_STR_EQ(back.last_hb, "{\"cpu\":12,\"名称\":\"班班通\"}");
        /* A new terminal's row as inserted: nothing seen yet. */
        memset(&back, 0, sizeof(back));
        back.id = b;
        ASSERT_OK(bbt_store_terminals_each(s, copy_terminal_cb, &back));
        ASSERT_STR_EQ(back.terminal, "b");
        ASSERT_EQ(back.first_seq, -1);
        ASSERT_EQ(back.high_seq, -1);
        ASSERT_EQ(back.boot, -1);
        ASSERT_EQ(back.inventory_seq, -1);
        ASSERT(!back.online);
        /* Brief: the same rows and fields, in a scope. */
        {
                struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;

                out[0] = '\0';
                scope.county = "510107";
                ASSERT_OK(bbt_store_terminals_brief_each_in(s, &scope, brief_cb, out));
                ASSERT_STR_EQ(out, "510107/S1/a:0-99/95/4/2/1/3/6/1000/on/0.1.0 510107/S1/b:-1--1/0/0/0/0/0/0/0/off/");
        }
        /* An iterator stops at the callback's first non-zero result and returns it. */
        ASSERT_EQ(bbt_store_terminals_each(s, stop_cb, &n), 7);
        ASSERT_EQ(n, 1);
        bbt_store_close(s);
}

/* terminal_insert gives keys and refuses a second (county, school,
 * terminal); terminal_update writes every field; rows come by id, also brief. */
TEST(terminals)
{
        on_backend(&sqlite_backend, terminals_case);
}

TEST(pg_terminals)
{
        on_backend(&pg_backend, terminals_case);
}

/* ---- raw messages, conflicts ---- */

static void raw_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_conflict c = { .seq = 5, .channel = BBT_CH_USAGE, .ts = 100, .recv_ms = 300, .boot = 3,
                                        .stored_hash = 11, .hash = 12 };
        const uint64_t big = 0xfedcba9876543210ULL; /* past INT64_MAX */
        char out[OUT_SIZE] = "", *payload = NULL;
        uint64_t hash = 0;
        size_t len = 0;
        int64_t a, b;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        ASSERT_EQ(bbt_store_raw_insert(s, a, 5, BBT_CH_USAGE, 100, 200, 3, "{\"a\":1}", 7, 11, NULL), 1);
        /* The same message again: not stored; the stored payload's hash back. */
        ASSERT_EQ(bbt_store_raw_insert(s, a, 5, BBT_CH_USAGE, 100, 250, 3, "{\"a\":1}", 7, 11, &hash), 0);
        ASSERT_EQ(hash, 11);
        ASSERT_EQ(bbt_store_raw_insert(s, a, 5, BBT_CH_USAGE, 100, 250, 3, "{\"a\":1}", 7, 11, NULL), 0);
        /* Another payload under the seq: not stored either, the first one's hash back: a conflict. */
        hash = 0;
        ASSERT_EQ(bbt_store_raw_insert(s, a, 5, BBT_CH_USAGE, 100, 300, 3, "{\"a\":2}", 7, 12, &hash), 0);
        ASSERT_EQ(hash, 11);
        c.terminal_id = a;
        ASSERT_OK(bbt_store_conflict_add(s, &c, "{\"a\":2}", 7));
        /* The seq is the terminal's: another terminal may use it. */
        ASSERT_EQ(bbt_store_raw_insert(s, b, 5, BBT_CH_USAGE, 100, 200, 3, "{\"b\":1}", 7, 13, NULL), 1);
        /* A 64-bit hash comes back whole. */
        ASSERT_EQ(bbt_store_raw_insert(s, a, 6, BBT_CH_HB, 100, 200, 3, "{}", 2, big, NULL), 1);
        ASSERT_EQ(bbt_store_raw_insert(s, a, 6, BBT_CH_HB, 100, 200, 3, "{}", 2, big, &hash), 0);
        ASSERT(hash == big);
        c.seq = 6, c.channel = BBT_CH_HB, c.stored_hash = big, c.hash = 1;
        ASSERT_OK(bbt_store_conflict_add(s, &c, "{ }", 3));

        ASSERT_OK(bbt_store_raw_payload(s, a, 5, &payload, &len));
        ASSERT_EQ(len, 7);
        ASSERT_STR_EQ(payload, "{\"a\":1}"); /* the first payload stays */
        free(payload);
        ASSERT_OK(bbt_store_raw_payload(s, b, 5, &payload, &len));
        ASSERT_STR_EQ(payload, "{\"b\":1}");
        free(payload);
        ASSERT_EQ(bbt_store_raw_payload(s, a, 7, &payload, &len), -ENOENT);
        ASSERT_OK(bbt_store_conflicts_each(s, conflict_cb, out));
        ASSERT_STR_EQ(out, "a:5:usage:100:300:3:b:c a:6:hb:100:300:3:fedcba9876543210:1");
        bbt_store_close(s);
}

/* raw_insert keeps the first payload of a (terminal, seq) and hands back its
 * hash for every later one; conflicts are kept beside it. */
TEST(raw_exactly_once_and_conflicts)
{
        on_backend(&sqlite_backend, raw_case);
}

TEST(pg_raw_exactly_once_and_conflicts)
{
        on_backend(&pg_backend, raw_case);
}

/* ---- gaps ---- */

static void gaps_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_gap g[3] = {
                { .from = 7, .to = 7, .detected_ms = 100, .state = BBT_GAP_WAITING, .changed_ms = 100 },
                { .from = 3, .to = 4, .detected_ms = 90, .state = BBT_GAP_REQUESTED, .attempts = 2,
                  .changed_ms = 150, .cmd_id = "rs-1-1" },
                { .from = 10, .to = 19, .detected_ms = 95, .state = BBT_GAP_WILL, .changed_ms = 95, .boot = 4 },
        };
        char out[OUT_SIZE] = "";
        int64_t a, b;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        ASSERT_OK(bbt_store_gaps_replace(s, b, &g[0], 1));
        ASSERT_OK(bbt_store_gaps_replace(s, a, g, 3));
        ASSERT_OK(bbt_store_gaps_each(s, gap_cb, out));
        /* By terminal, then from. */
        ASSERT_STR_EQ(out, "a:3-4:1:2:90:150:rs-1-1:0 a:7-7:0:0:100:100::0 a:10-19:3:0:95:95::4 "
                           "b:7-7:0:0:100:100::0");
        /* Replacing one terminal's gaps leaves the other's alone. */
        g[1].state = BBT_GAP_ANSWERED;
        ASSERT_OK(bbt_store_gaps_replace(s, a, &g[1], 1));
        out[0] = '\0';
        ASSERT_OK(bbt_store_gaps_each(s, gap_cb, out));
        ASSERT_STR_EQ(out, "a:3-4:2:2:90:150:rs-1-1:0 b:7-7:0:0:100:100::0");
        ASSERT_OK(bbt_store_gaps_replace(s, a, NULL, 0));
        out[0] = '\0';
        ASSERT_OK(bbt_store_gaps_each(s, gap_cb, out));
        ASSERT_STR_EQ(out, "b:7-7:0:0:100:100::0");
        bbt_store_close(s);
}

/* gaps_replace replaces one terminal's whole set; gaps come by terminal, then from. */
TEST(gaps_replace_and_each)
{
        on_backend(&sqlite_backend, gaps_case);
}

TEST(pg_gaps_replace_and_each)
{
        on_backend(&pg_backend, gaps_case);
}

/* ---- terminal_lock ---- */

static void lock_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_gap g[2] = {
                { .from = 3, .to = 4, .detected_ms = 90, .state = BBT_GAP_REQUESTED, .attempts = 1,
                  .changed_ms = 150, .cmd_id = "rs-1-1" },
                { .from = 7, .to = 7, .detected_ms = 100, .state = BBT_GAP_WAITING, .changed_ms = 100 },
        };
        struct bbt_store_terminal t, want;
        char out[OUT_SIZE] = "";
        int64_t a, b, n_gaps = -1;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        want = terminal("510107", "S1", "a");
        want.id = a;
        want.high_seq = 9;
        want.received = 7;
        want.boot = 3;
        want.online = true;
        snprintf(want.last_hb, sizeof(want.last_hb), "{\"ts\":1}");
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_terminal_update(s, &want));
        ASSERT_OK(bbt_store_gaps_replace(s, a, g, 2));
        ASSERT_OK(bbt_store_commit(s));

        /* By id: the whole row, and how many gaps it has. */
        ASSERT_OK(bbt_store_begin(s));
        memset(&t, 0, sizeof(t));
        t.id = a;
        ASSERT_EQ(bbt_store_terminal_lock(s, &t, false, &n_gaps), 1);
        ASSERT_EQ(n_gaps, 2);
        ASSERT_EQ(t.id, a);
        ASSERT_EQ(t.high_seq, 9);
        ASSERT_EQ(t.received, 7);
        ASSERT_EQ(t.boot, 3);
        ASSERT(t.online);
        ASSERT_STR_EQ(t.terminal, "a");
        ASSERT_STR_EQ(t.last_hb, "{\"ts\":1}");
        /* By county, school and terminal: the key is found. */
        memset(&t, 0, sizeof(t));
        snprintf(t.county, sizeof(t.county), "510107");
        snprintf(t.school, sizeof(t.school), "S1");
        snprintf(t.terminal, sizeof(t.terminal), "b");
        ASSERT_EQ(bbt_store_terminal_lock(s, &t, true, &n_gaps), 1);
        ASSERT_EQ(t.id, b);
        ASSERT_EQ(n_gaps, 0);
        /* A terminal the store does not hold. */
        memset(&t, 0, sizeof(t));
        t.id = a + b + 100;
        ASSERT_EQ(bbt_store_terminal_lock(s, &t, true, &n_gaps), -ENOENT);
        memset(&t, 0, sizeof(t));
        snprintf(t.county, sizeof(t.county), "510107");
        snprintf(t.school, sizeof(t.school), "S1");
        snprintf(t.terminal, sizeof(t.terminal), "zz");
        ASSERT_EQ(bbt_store_terminal_lock(s, &t, true, &n_gaps), -ENOENT);
        /* One terminal's gaps, by from. */
        ASSERT_OK(bbt_store_terminal_gaps_each(s, a, gap_cb, out));
        ASSERT_STR_EQ(out, "a:3-4:1:1:90:150:rs-1-1:0 a:7-7:0:0:100:100::0");
        out[0] = '\0';
        ASSERT_OK(bbt_store_terminal_gaps_each(s, b, gap_cb, out));
        ASSERT_STR_EQ(out, "");
        ASSERT_OK(bbt_store_commit(s));
        bbt_store_close(s);
}

/* terminal_lock reads one row (by id or by key) with its number of gaps; -ENOENT for none. */
TEST(terminal_lock_reads_the_row)
{
        on_backend(&sqlite_backend, lock_case);
}

TEST(pg_terminal_lock_reads_the_row)
{
        on_backend(&pg_backend, lock_case);
}

/* ---- losses ---- */

static void losses_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_loss l, found;
        char out[OUT_SIZE] = "";
        int64_t a, b;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        l = loss(a, 10, 20, BBT_LOSS_SKIPPED, 1000, "never used (skipped after an unclean stop)");
        ASSERT_OK(bbt_store_loss_add(s, &l));
        l = loss(a, 30, 30, BBT_LOSS_LOST, 2000, "no answer to resend");
        ASSERT_OK(bbt_store_loss_add(s, &l));
        l = loss(b, 10, 12, BBT_LOSS_LOST, 3000, "not resent in time");
        ASSERT_OK(bbt_store_loss_add(s, &l));

        /* find: the row overlapping a range with the lowest from, or 0. */
        ASSERT_EQ(bbt_store_loss_find(s, a, 15, 15, &found), 1);
        ASSERT_EQ(found.terminal_id, a);
        ASSERT_EQ(found.from, 10);
        ASSERT_EQ(found.to, 20);
        ASSERT_EQ(found.kind, BBT_LOSS_SKIPPED);
        ASSERT_EQ(found.recorded_ms, 1000);
        ASSERT_STR_EQ(found.reason, "never used (skipped after an unclean stop)");
        ASSERT_EQ(bbt_store_loss_find(s, a, 25, 25, &found), 0);
        ASSERT_EQ(bbt_store_loss_find(s, a, 21, 40, &found), 1);
        ASSERT_EQ(found.from, 30);
        ASSERT_EQ(bbt_store_loss_find(s, a, 0, 100, &found), 1);
        ASSERT_EQ(found.from, 10);
        ASSERT_EQ(bbt_store_loss_find(s, a, 20, 30, &found), 1); /* both ends inclusive */
        ASSERT_EQ(found.from, 10);
        ASSERT_EQ(bbt_store_loss_find(s, b, 13, 29, &found), 0);

        /* remove: cut out of one row (split in two), a whole row, nothing. */
        ASSERT_OK(bbt_store_loss_remove(s, a, 14, 16));
        ASSERT_OK(bbt_store_loss_remove(s, a, 25, 40));
        ASSERT_OK(bbt_store_loss_remove(s, a, 50, 60));
        ASSERT_OK(bbt_store_loss_remove(s, b, 12, 12)); /* shortened at the end */
        /* In the order added, the pieces a removal leaves counting as added then. */
        ASSERT_OK(bbt_store_losses_each(s, loss_cb, out));
        ASSERT_STR_EQ(out, "a:10-13:skipped:1000:never used (skipped after an unclean stop) "
                           "a:17-20:skipped:1000:never used (skipped after an unclean stop) "
                           "b:10-11:lost:3000:not resent in time");
        ASSERT_EQ(bbt_store_loss_find(s, a, 14, 16, &found), 0);
        ASSERT_OK(bbt_store_loss_remove(s, a, 0, 100));
        out[0] = '\0';
        ASSERT_OK(bbt_store_losses_each(s, loss_cb, out));
        ASSERT_STR_EQ(out, "b:10-11:lost:3000:not resent in time");
        bbt_store_close(s);
}

/* loss_add, loss_find (lowest from overlapping), loss_remove (delete,
 * shorten, split), losses_each. */
TEST(losses_add_find_remove_split)
{
        on_backend(&sqlite_backend, losses_case);
}

TEST(pg_losses_add_find_remove_split)
{
        on_backend(&pg_backend, losses_case);
}

/* ---- faults ---- */

static void faults_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_fault f;
        char out[OUT_SIZE] = "";
        int64_t a, b;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        f = fault(a, "overheat", "agent", 1000);
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        f.raised_ms = 1100; /* open already: no second row */
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        f = fault(a, "overheat", "aggregator", 1200); /* another source: another fault */
        f.severity = BBT_SEVERITY_WARNING;
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        ASSERT_OK(bbt_store_fault_clear(s, a, "overheat", "agent", 2000));
        ASSERT_OK(bbt_store_fault_clear(s, a, "overheat", "agent", 2100)); /* none open: nothing */
        f = fault(a, "overheat", "agent", 1500); /* a late raise, older than the clear: not reopened */
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        f.raised_ms = 2000; /* raised at the clear's instant: still not */
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        f.raised_ms = 2500; /* after it: a new fault */
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        /* A clear only closes a fault raised at or before it. */
        f = fault(b, "disk_low", "agent", 5000);
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        ASSERT_OK(bbt_store_fault_clear(s, b, "disk_low", "agent", 4000));
        /* A clear at the epoch still closes (0 would read as open). */
        f = fault(b, "silent", "aggregator", 0);
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        ASSERT_OK(bbt_store_fault_clear(s, b, "silent", "aggregator", 0));
        ASSERT_OK(bbt_store_fault_clear(s, b, "nothing", "agent", 9000));
        ASSERT_OK(bbt_store_faults_each(s, fault_cb, out));
        /* By terminal, then raised_ms. */
        ASSERT_STR_EQ(out, "a:overheat:agent:1:1000-2000:CPU 92.0°C a:overheat:aggregator:0:1200-0:CPU 92.0°C "
                           "a:overheat:agent:1:2500-0:CPU 92.0°C b:silent:aggregator:1:0-1:CPU 92.0°C "
                           "b:disk_low:agent:1:5000-0:CPU 92.0°C");
        bbt_store_close(s);
}

/* fault_raise opens once (not again while open, nor for a raise older than
 * the last clear); fault_clear closes what was raised before it. */
TEST(faults_raise_and_clear_rules)
{
        on_backend(&sqlite_backend, faults_case);
}

TEST(pg_faults_raise_and_clear_rules)
{
        on_backend(&pg_backend, faults_case);
}

/* ---- inventory, peripheral events, counters ---- */

static void inventory_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_device devs[3] = {
                device(BBT_KIND_DISPLAY, "Seewo", "SW-1"),
                device(BBT_KIND_CAMERA, "Hikvision", "HK-2"),
                device(BBT_KIND_AUDIO_OUT, "Edifier", "ED-3"),
        };
        char out[OUT_SIZE] = "";
        int64_t a, b;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        ASSERT_OK(bbt_store_inventory_replace(s, b, &devs[2], 1));
        ASSERT_OK(bbt_store_inventory_replace(s, a, devs, 3));
        ASSERT_OK(bbt_store_inventory_each(s, device_cb, out));
        /* By terminal, each in the order given. */
        ASSERT_STR_EQ(out, "a:display:usb:usb:1a2b:3c4d:Seewo:型号-Seewo:SW-1:/sys/devices/SW-1 "
                           "a:camera:usb:usb:1a2b:3c4d:Hikvision:型号-Hikvision:HK-2:/sys/devices/HK-2 "
                           "a:audio_out:usb:usb:1a2b:3c4d:Edifier:型号-Edifier:ED-3:/sys/devices/ED-3 "
                           "b:audio_out:usb:usb:1a2b:3c4d:Edifier:型号-Edifier:ED-3:/sys/devices/ED-3");
        ASSERT_OK(bbt_store_inventory_replace(s, a, &devs[1], 1));
        out[0] = '\0';
        ASSERT_OK(bbt_store_inventory_each(s, device_cb, out));
        ASSERT_STR_EQ(out, "a:camera:usb:usb:1a2b:3c4d:Hikvision:型号-Hikvision:HK-2:/sys/devices/HK-2 "
                           "b:audio_out:usb:usb:1a2b:3c4d:Edifier:型号-Edifier:ED-3:/sys/devices/ED-3");
        ASSERT_OK(bbt_store_inventory_replace(s, b, NULL, 0));
        devs[0].terminal_id = a;
        ASSERT_OK(bbt_store_periph_add(s, 9, 1000, BBT_PERIPH_REMOVE, &devs[0]));
        out[0] = '\0';
        ASSERT_OK(bbt_store_inventory_each(s, device_cb, out));
        ASSERT_STR_EQ(out, "a:camera:usb:usb:1a2b:3c4d:Hikvision:型号-Hikvision:HK-2:/sys/devices/HK-2");

        ASSERT_OK(bbt_store_counter_add(s, "stored", 3));
        ASSERT_OK(bbt_store_counter_add(s, "rejected.field", 1));
        ASSERT_OK(bbt_store_counter_add(s, "stored", 4));
        ASSERT_OK(bbt_store_counter_add(s, "stored", -2));
        out[0] = '\0';
        ASSERT_OK(bbt_store_counters_each(s, counter_cb, out));
        ASSERT_STR_EQ(out, "rejected.field=1 stored=5"); /* by name */
        bbt_store_close(s);
}

/* inventory_replace replaces one terminal's set, kept in the order given;
 * counters add up and come by name. */
TEST(inventory_and_counters)
{
        on_backend(&sqlite_backend, inventory_case);
}

TEST(pg_inventory_and_counters)
{
        on_backend(&pg_backend, inventory_case);
}

/* ---- events and wired NICs (docs/operations.md) ---- */

static int event_cb(void *u, const struct bbt_store_event *e)
{
        add(u, "%s:%lld@%lld:%s:%d:%s", code_of(e->terminal_id), (long long)e->seq, (long long)e->ts, e->code,
            (int)e->severity, e->detail);
        return 0;
}

static int net_cb(void *u, const struct bbt_store_net *n)
{
        add(u, "%s:%lld:%s:%s:%s/%d", code_of(n->terminal_id), (long long)n->seq, n->ifname, n->mac, n->ipv4,
            n->prefix);
        return 0;
}

static void events_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct bbt_store_event e = { .seq = 5, .ts = 2000, .code = "power_off", .severity = BBT_SEVERITY_WARNING,
                                     .detail = "定时关机 18:00" };
        struct bbt_store_net n = { .seq = 3, .ifname = "enp3s0", .mac = "00:1a:2b:3c:4d:5e", .ipv4 = "10.1.2.3",
                                   .prefix = 24 };
        char out[OUT_SIZE] = "";
        int64_t a, b, c;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        c = insert_terminal(s, "510107", "S2", "c", "c");
        e.terminal_id = b;
        ASSERT_OK(bbt_store_event_add(s, &e));
        e.terminal_id = a, e.seq = 7, e.ts = 3000;
        snprintf(e.code, sizeof(e.code), "power_postponed");
        ASSERT_OK(bbt_store_event_add(s, &e));
        e.terminal_id = c, e.seq = 1, e.ts = 1000, e.severity = BBT_SEVERITY_ERROR;
        snprintf(e.code, sizeof(e.code), "power_failed");
        ASSERT_OK(bbt_store_event_add(s, &e));
        ASSERT_OK(bbt_store_events_each_in(s, NULL, event_cb, out));
        ASSERT_STR_EQ(out, "a:7@3000:power_postponed:0:定时关机 18:00 b:5@2000:power_off:0:定时关机 18:00 "
                           "c:1@1000:power_failed:1:定时关机 18:00");
        scope.school = "S1";
        scope.since_ms = 2000, scope.until_ms = 3000;
        out[0] = '\0';
        ASSERT_OK(bbt_store_events_each_in(s, &scope, event_cb, out));
        ASSERT_STR_EQ(out, "b:5@2000:power_off:0:定时关机 18:00");

        n.terminal_id = a;
        ASSERT_OK(bbt_store_net_set(s, &n));
        n.terminal_id = c, n.seq = 9;
        snprintf(n.ipv4, sizeof(n.ipv4), "%s", "");
        n.prefix = -1;
        ASSERT_OK(bbt_store_net_set(s, &n));
        /* An older inventory's NIC does not replace a newer one's; a newer does. */
        n.terminal_id = a, n.seq = 2;
        snprintf(n.mac, sizeof(n.mac), "%s", "00:00:00:00:00:01");
        ASSERT_OK(bbt_store_net_set(s, &n));
        out[0] = '\0';
        ASSERT_OK(bbt_store_nets_each_in(s, NULL, net_cb, out));
        ASSERT_STR_EQ(out, "a:3:enp3s0:00:1a:2b:3c:4d:5e:10.1.2.3/24 c:9:enp3s0:00:1a:2b:3c:4d:5e:/-1");
        n.seq = 4;
        ASSERT_OK(bbt_store_net_set(s, &n));
        out[0] = '\0';
        ASSERT_OK(bbt_store_nets_each_in(s, &scope, net_cb, out)); /* S1 only */
        ASSERT_STR_EQ(out, "a:4:enp3s0:00:00:00:00:00:01:/-1");
        bbt_store_close(s);
}

static int audit_cb(void *u, const struct bbt_store_audit *a)
{
        add(u, "%s:%s@%lld-%lld:%s/%s/%s:%s:%s:%s:%s:%s", a->cmd_id, a->operator_name, (long long)a->sent_ms,
            (long long)a->done_ms, a->county, a->school, a->terminal, a->via, a->op, a->args, a->result, a->detail);
        return 0;
}

static void audit_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct bbt_store_audit a = { .cmd_id = "ctl-w-1-1", .operator_name = "watch", .sent_ms = 2000,
                                     .county = "510107", .school = "S1", .terminal = "r1", .op = "set",
                                     .args = "{\"idle_timeout\":\"5m\"}", .result = "pending" };
        char out[OUT_SIZE] = "";

        ASSERT_OK(bbt_store_audit_put(s, &a));
        /* The result replaces pending; who, when, target and args stay. */
        a.done_ms = 2500;
        snprintf(a.result, sizeof(a.result), "ok");
        snprintf(a.detail, sizeof(a.detail), "空闲 5 分钟");
        snprintf(a.args, sizeof(a.args), "{}");
        ASSERT_OK(bbt_store_audit_put(s, &a));
        a = (struct bbt_store_audit){ .cmd_id = "ctl-w-1-0", .operator_name = "check", .sent_ms = 1000,
                                      .done_ms = 11000, .county = "510107", .school = "S2", .terminal = "r9",
                                      .via = "r8", .op = "wake", .args = "{}", .result = "timeout" };
        ASSERT_OK(bbt_store_audit_put(s, &a));
        ASSERT_OK(bbt_store_audits_each_in(s, NULL, audit_cb, out));
        ASSERT_STR_EQ(out, "ctl-w-1-0:check@1000-11000:510107/S2/r9:r8:wake:{}:timeout: "
                           "ctl-w-1-1:watch@2000-2500:510107/S1/r1::set:{\"idle_timeout\":\"5m\"}:ok:空闲 5 分钟");
        scope.school = "S1";
        out[0] = '\0';
        ASSERT_OK(bbt_store_audits_each_in(s, &scope, audit_cb, out));
        ASSERT_STR_CONTAINS(out, "ctl-w-1-1:");
        ASSERT(!strstr(out, "ctl-w-1-0"));
        scope.school = NULL;
        scope.since_ms = 1001, scope.until_ms = 2000;
        out[0] = '\0';
        ASSERT_OK(bbt_store_audits_each_in(s, &scope, audit_cb, out));
        ASSERT_STR_EQ(out, "");
        bbt_store_close(s);
}

/* The audit trail: a command's row is written when sent and completed with its
 * result; rows by time, within the scope's county, school and times. */
TEST(audit_put_and_each)
{
        on_backend(&sqlite_backend, audit_case);
}

TEST(pg_audit_put_and_each)
{
        on_backend(&pg_backend, audit_case);
}

/* Events come by terminal and time within the scope; a terminal's NIC is the
 * newest inventory's. */
TEST(events_and_nets)
{
        on_backend(&sqlite_backend, events_case);
}

TEST(pg_events_and_nets)
{
        on_backend(&pg_backend, events_case);
}

/* ---- usage intervals, day rollups, pruning ---- */

static void days_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_day_rollup d = { .day = 10, .on_ms = 100, .active_ms = 50, .interactive_ms = 20, .hb_count = 2,
                                    .on_all_ms = 120 };
        struct bbt_store_usage x;
        char out[OUT_SIZE] = "";
        int64_t a, b;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        d.period_active_ms[0] = 30;
        d.period_active_ms[11] = 7;
        ASSERT_OK(bbt_store_day_add(s, b, &d));
        ASSERT_OK(bbt_store_day_add(s, a, &d));
        ASSERT_OK(bbt_store_day_add(s, a, &d)); /* adds to the row */
        d.day = 11;
        ASSERT_OK(bbt_store_day_add(s, a, &d));
        ASSERT_OK(bbt_store_days_each(s, 10, 10, day_cb, out));
        ASSERT_STR_EQ(out, "a:10:200/100/40/4/240:p1=60:p12=14 b:10:100/50/20/2/120:p1=30:p12=7");
        out[0] = '\0';
        ASSERT_OK(bbt_store_days_each(s, 11, 99, day_cb, out));
        ASSERT_STR_EQ(out, "a:11:100/50/20/2/120:p1=30:p12=7");
        out[0] = '\0';
        ASSERT_OK(bbt_store_days_each(s, 12, 99, day_cb, out));
        ASSERT_STR_EQ(out, "");
        /* Cleared for a rebuild: usage columns zero, heartbeats kept. */
        ASSERT_OK(bbt_store_days_clear(s));
        out[0] = '\0';
        ASSERT_OK(bbt_store_days_each(s, INT32_MIN, INT32_MAX, day_cb, out));
        ASSERT_STR_EQ(out, "a:10:0/0/0/4/0:p1=0:p12=0 a:11:0/0/0/2/0:p1=0:p12=0 b:10:0/0/0/2/0:p1=0:p12=0");

        x = usage(a, 2, 5000, 6000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        x = usage(b, 1, 1000, 2000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        x = usage(a, 1, 3000, 4000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        x = usage(a, 1, 3000, 9000); /* (terminal, seq) again: the first stays */
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        out[0] = '\0';
        ASSERT_OK(bbt_store_usage_each(s, usage_cb, out));
        ASSERT_STR_EQ(out, "a:1:3000-4000:active:500:5:1/2/3/4 a:2:5000-6000:active:500:5:1/2/3/4 "
                           "b:1:1000-2000:active:500:5:1/2/3/4");
        bbt_store_close(s);
}

/* day_add adds into a terminal's day; days_each over a range by terminal then
 * day; days_clear zeroes the usage columns; usage_insert keeps the first
 * interval of a (terminal, seq). */
TEST(days_and_usage)
{
        on_backend(&sqlite_backend, days_case);
}

TEST(pg_days_and_usage)
{
        on_backend(&pg_backend, days_case);
}

static int school_day_cb(void *u, const struct bbt_store_school_day *d)
{
        const struct bbt_day_totals *t = &d->t;
        static const struct bbt_day_totals zero;

        if (memcmp(t, &zero, sizeof(zero)) == 0)
                return 0; /* an all-zero row may or may not be there */
        add(u, "%s/%s:%d:%lld/%lld/%lld:%lld/%lld/%lld:%lld/%lld", d->county, d->school, (int)d->day,
            (long long)t->powered, (long long)t->used, (long long)t->periods_used, (long long)t->on_ms,
            (long long)t->active_ms, (long long)t->interactive_ms, (long long)t->hb_received,
            (long long)t->on_all_ms);
        return 0;
}

static int marks_cb(void *u, const struct bbt_store_day_marks *m)
{
        char lessons[8];

        for (int i = 0; i < BBT_STORE_MARK_DAYS; i++) {
                int n = bbt_store_mark_lessons(m, i);

                snprintf(lessons, sizeof(lessons), n ? "/%d" : "", n);
                if ((m->powered | m->used) >> i & 1 || n)
                        add(u, "%s:%d:%s%s%s", code_of(m->terminal_id), (int)(m->first_day + i),
                            m->powered >> i & 1 ? "p" : "", m->used >> i & 1 ? "u" : "", lessons);
        }
        return 0;
}

/* The days of a span as school_day_cb writes them. */
static int school_span_cb(void *u, const struct bbt_store_school_span *sp)
{
        for (uint32_t days = sp->present; days; days &= days - 1) {
                int i = __builtin_ctz(days);
                struct bbt_store_school_day d = { .day = sp->first_day + i, .t = sp->t[i] };

                memcpy(d.county, sp->county, sizeof(d.county));
                memcpy(d.school, sp->school, sizeof(d.school));
                school_day_cb(u, &d);
        }
        return 0;
}

static int cmp_token(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* OUT's space-separated tokens sorted, in place. */
static void sort_tokens(char *out)
{
        char *tok[256], copy[OUT_SIZE], *save = NULL;
        size_t n = 0;

        snprintf(copy, sizeof(copy), "%s", out);
        for (char *t = strtok_r(copy, " ", &save); t && n < 256; t = strtok_r(NULL, " ", &save))
                tok[n++] = t;
        qsort(tok, n, sizeof(*tok), cmp_token);
        out[0] = '\0';
        for (size_t i = 0; i < n; i++)
                add(out, "%s", tok[i]);
}

static void aggregates_of(struct bbt_store *s, const struct bbt_store_scope *scope, char *days, char *marks)
{
        char spans[OUT_SIZE] = "", sorted[OUT_SIZE];

        days[0] = marks[0] = '\0';
        ASSERT_OK(bbt_store_school_days_each_in(s, scope, school_day_cb, days));
        ASSERT_OK(bbt_store_day_marks_each_in(s, scope, marks_cb, marks));
        /* school_spans_each: the same days, a school's 32 at a time. */
        ASSERT_OK(bbt_store_school_spans_each_in(s, scope, school_span_cb, spans));
        snprintf(sorted, sizeof(sorted), "%s", days);
        sort_tokens(sorted);
        sort_tokens(spans);
        ASSERT_STR_EQ(spans, sorted);
}

static void aggregates_case(const char *location)
{
        const int64_t M = 60000;
        struct bbt_day_rule rule = { .used_day_ms = 10 * M, .used_period_ms = 10 * M, .heartbeat_ms = M }, got;
        struct bbt_day_rule other = { .used_day_ms = 5 * M, .used_period_ms = 20 * M, .heartbeat_ms = 30000 };
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct bbt_store *s = open_store(location, false), *ro;
        char days[OUT_SIZE], marks[OUT_SIZE], days2[OUT_SIZE], marks2[OUT_SIZE];
        struct bbt_day_rollup d = { .day = 31, .on_ms = 60 * M, .active_ms = 6 * M, .interactive_ms = 2 * M,
                                    .hb_count = 70, .on_all_ms = 65 * M };
        int64_t a, b, c;

        forget_terminals();
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_day_rule_set(s, &rule));
        ASSERT_OK(bbt_store_day_rule_get(s, &got));
        ASSERT_EQ(got.used_day_ms, rule.used_day_ms);
        ASSERT_EQ(got.heartbeat_ms, rule.heartbeat_ms);
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        c = insert_terminal(s, "510108", "S1", "c", "c"); /* the same school code in another county */
        d.period_active_ms[0] = 12 * M;
        d.period_active_ms[1] = 9 * M;
        ASSERT_OK(bbt_store_day_add(s, a, &d)); /* powered, not used (6 < 10 min); 1 period; 65 expected, 70 sent */
        aggregates_of(s, NULL, days, marks);
        ASSERT_STR_EQ(days, "510107/S1:31:1/0/1:3600000/360000/120000:65/3900000");
        ASSERT_STR_EQ(marks, "a:31:p/1"); /* day 31: its lessons in the sign bits */
        ASSERT_OK(bbt_store_day_add(s, a, &d)); /* the same day again: now used, both periods, 130 heartbeats */
        d.day = 32;                               /* the next 32 days */
        ASSERT_OK(bbt_store_day_add(s, b, &d));
        ASSERT_OK(bbt_store_day_add(s, c, &d));
        d = (struct bbt_day_rollup){ .day = 32, .hb_count = 3 }; /* heartbeats only: never on */
        ASSERT_OK(bbt_store_day_add(s, a, &d));
        aggregates_of(s, NULL, days, marks);
        ASSERT_STR_EQ(days, "510107/S1:31:1/1/2:7200000/720000/240000:130/7800000 "
                            "510107/S1:32:1/0/1:3600000/360000/120000:65/3900000 "
                            "510108/S1:32:1/0/1:3600000/360000/120000:65/3900000");
        ASSERT_STR_EQ(marks, "a:31:pu/2 b:32:p/1 c:32:p/1");
        /* Scope: county, school and days. */
        scope.county = "510108";
        aggregates_of(s, &scope, days, marks);
        ASSERT_STR_EQ(days, "510108/S1:32:1/0/1:3600000/360000/120000:65/3900000");
        ASSERT_STR_EQ(marks, "c:32:p/1");
        scope.county = NULL;
        scope.school = "S1";
        scope.from_day = scope.to_day = 31;
        aggregates_of(s, &scope, days, marks);
        ASSERT_STR_EQ(days, "510107/S1:31:1/1/2:7200000/720000/240000:130/7800000");
        ASSERT_STR_EQ(marks, "a:31:pu/2"); /* 31 is alone in its 32 days */
        scope.school = "S2";
        aggregates_of(s, &scope, days, marks);
        ASSERT_STR_EQ(days, "");
        ASSERT_STR_EQ(marks, "");
        ASSERT_OK(bbt_store_commit(s));

        /* Another rule recounts them all from the rollups; back again gives what day_add kept. */
        aggregates_of(s, NULL, days, marks);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_day_rule_set(s, &other));
        aggregates_of(s, NULL, days2, marks2);
        ASSERT_STR_EQ(days2, "510107/S1:31:1/1/1:7200000/720000/240000:140/7800000 "
                             "510107/S1:32:1/1/0:3600000/360000/120000:70/3900000 "
                             "510108/S1:32:1/1/0:3600000/360000/120000:70/3900000");
        ASSERT_STR_EQ(marks2, "a:31:pu/1 b:32:pu c:32:pu"); /* 18 and 12 < 20 min */
        ASSERT_OK(bbt_store_rollback(s)); /* and a rollback takes the rule back with it */
        ASSERT_OK(bbt_store_day_rule_get(s, &got));
        ASSERT_EQ(got.used_day_ms, rule.used_day_ms);
        aggregates_of(s, NULL, days2, marks2);
        ASSERT_STR_EQ(days2, days);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_day_rule_set(s, &other));
        ASSERT_OK(bbt_store_day_rule_set(s, &rule));
        ASSERT_OK(bbt_store_commit(s));
        aggregates_of(s, NULL, days2, marks2);
        ASSERT_STR_EQ(days2, days);
        ASSERT_STR_EQ(marks2, marks);
        ASSERT_EQ(bbt_store_day_rule_set(s, &(struct bbt_day_rule){ 0, M, M }), -EINVAL);

        /* Read-only: what was committed. */
        ro = open_store(location, true);
        aggregates_of(ro, NULL, days2, marks2);
        ASSERT_STR_EQ(days2, days);
        bbt_store_close(ro);

        /* A terminal whose insert was rolled back: its key may come again for another school's. */
        ASSERT_OK(bbt_store_begin(s));
        d = (struct bbt_day_rollup){ .day = 40, .on_ms = M };
        ASSERT_OK(bbt_store_day_add(s, insert_terminal(s, "510107", "S2", "x", "x"), &d));
        ASSERT_OK(bbt_store_rollback(s));
        ASSERT_OK(bbt_store_begin(s));
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                d.period_active_ms[k] = 10 * M; /* every period used: 12 in 4 bits */
        ASSERT_OK(bbt_store_day_add(s, insert_terminal(s, "510107", "S3", "y", "y"), &d));
        scope = (struct bbt_store_scope)BBT_STORE_SCOPE_ALL;
        scope.from_day = 40;
        aggregates_of(s, &scope, days2, marks2); /* a transaction reads its own changes */
        ASSERT_STR_EQ(days2, "510107/S3:40:1/0/12:60000/0/0:0/0");
        ASSERT_OK(bbt_store_commit(s));
        aggregates_of(s, &scope, days2, marks2);
        ASSERT_STR_EQ(days2, "510107/S3:40:1/0/12:60000/0/0:0/0");
        /* Days 32 and 40 share their 32 days; y has x's key (the code of the first name wins). */
        ASSERT_STR_EQ(marks2, strcmp(code_of(names[n_names - 1].id), "x") == 0 ? "b:32:p/1 c:32:p/1 x:40:p/12"
                                                                                : "b:32:p/1 c:32:p/1 y:40:p/12");

        /* Several days of one terminal's 32 in one transaction, with no read
         * between: an existing mark's lessons replaced (1 → 2), not or-ed. */
        ASSERT_OK(bbt_store_begin(s));
        d = (struct bbt_day_rollup){ .day = 32, .active_ms = 4 * M, .period_active_ms = { 0, M } };
        ASSERT_OK(bbt_store_day_add(s, b, &d)); /* 10 min active: used; 12 and 10 min: 2 periods */
        d = (struct bbt_day_rollup){ .day = 33, .on_ms = M, .period_active_ms = { 10 * M } };
        ASSERT_OK(bbt_store_day_add(s, b, &d));
        d = (struct bbt_day_rollup){ .day = 34, .hb_count = 3 };
        ASSERT_OK(bbt_store_day_add(s, b, &d));
        ASSERT_OK(bbt_store_commit(s));
        aggregates_of(s, &scope, days2, marks2);
        ASSERT_STR_EQ(marks2, strcmp(code_of(names[n_names - 1].id), "x") == 0
                                      ? "b:32:pu/2 b:33:p/1 c:32:p/1 x:40:p/12"
                                      : "b:32:pu/2 b:33:p/1 c:32:p/1 y:40:p/12");

        /* Cleared with the rollups' usage for a rebuild. */
        ASSERT_OK(bbt_store_days_clear(s));
        aggregates_of(s, NULL, days, marks);
        ASSERT_STR_EQ(days, "");
        ASSERT_STR_EQ(marks, "");
        bbt_store_close(s);
}

/* The day aggregates follow every day_add (a day crossing a threshold when
 * added to), per school and day and per terminal's day marks; filtered by
 * scope; recounted when the day rule changes; cleared with the rollups. */
TEST(day_aggregates)
{
        on_backend(&sqlite_backend, aggregates_case);
}

TEST(pg_day_aggregates)
{
        on_backend(&pg_backend, aggregates_case);
}

/* ---- history: the day rollups' message and active times, read as of a day ---- */

static int history_day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        add(u, "%s:%d:%lld-%lld/%lld/hb%lld", code_of(terminal_id), (int)d->day, (long long)d->first_msg_ms,
            (long long)d->last_msg_ms, (long long)d->last_active_ms, (long long)d->hb_count);
        return 0;
}

static int seen_cb(void *u, const struct bbt_store_seen *seen)
{
        add(u, "%s:%lld/%lld", code_of(seen->terminal_id), (long long)seen->last_msg_ms,
            (long long)seen->last_active_ms);
        return 0;
}

static void history_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct bbt_store_terminal t;
        struct bbt_day_rollup d;
        char out[OUT_SIZE] = "";
        int64_t a, b, c;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S2", "b", "b");
        c = insert_terminal(s, "510108", "S1", "c", "c");
        /* Day 10: a heard at 500 and 300 (the earlier first, the later last),
         * active until 450 then 400 (the later stays); heartbeats add up. */
        d = (struct bbt_day_rollup){ .day = 10, .hb_count = 1, .first_msg_ms = 500, .last_msg_ms = 500,
                                     .last_active_ms = 450 };
        ASSERT_OK(bbt_store_day_add(s, a, &d));
        d = (struct bbt_day_rollup){ .day = 10, .hb_count = 1, .first_msg_ms = 300, .last_msg_ms = 300,
                                     .last_active_ms = 400 };
        ASSERT_OK(bbt_store_day_add(s, a, &d));
        /* A row without history (0) leaves it as it is. */
        d = (struct bbt_day_rollup){ .day = 10, .on_ms = 5 };
        ASSERT_OK(bbt_store_day_add(s, a, &d));
        /* Day 12: heard, not active; day 13: active (a late interval), not heard. */
        d = (struct bbt_day_rollup){ .day = 12, .first_msg_ms = 1200, .last_msg_ms = 1250 };
        ASSERT_OK(bbt_store_day_add(s, a, &d));
        d = (struct bbt_day_rollup){ .day = 13, .active_ms = 9, .last_active_ms = 1300 };
        ASSERT_OK(bbt_store_day_add(s, a, &d));
        d = (struct bbt_day_rollup){ .day = 11, .first_msg_ms = 1100, .last_msg_ms = 1100, .last_active_ms = 1150 };
        ASSERT_OK(bbt_store_day_add(s, b, &d));
        ASSERT_OK(bbt_store_days_each(s, INT32_MIN, INT32_MAX, history_day_cb, out));
        ASSERT_STR_EQ(out, "a:10:300-500/450/hb2 a:12:1200-1250/0/hb0 a:13:0-0/1300/hb0 b:11:1100-1100/1150/hb0");

        /* As of a day: the latest of each up to it; every terminal in scope, by id. */
        out[0] = '\0';
        scope.to_day = 12;
        ASSERT_OK(bbt_store_seen_each_in(s, &scope, seen_cb, out));
        ASSERT_STR_EQ(out, "a:1250/450 b:1100/1150 c:0/0");
        out[0] = '\0';
        scope.to_day = 13;
        ASSERT_OK(bbt_store_seen_each_in(s, &scope, seen_cb, out));
        ASSERT_STR_EQ(out, "a:1250/1300 b:1100/1150 c:0/0");
        out[0] = '\0';
        scope.to_day = 10;
        scope.school = "S1";
        ASSERT_OK(bbt_store_seen_each_in(s, &scope, seen_cb, out));
        ASSERT_STR_EQ(out, "a:500/450 c:0/0");
        out[0] = '\0';
        scope.county = "510107";
        scope.from_day = 11;
        scope.to_day = 99;
        ASSERT_OK(bbt_store_seen_each_in(s, &scope, seen_cb, out));
        ASSERT_STR_EQ(out, "a:1250/1300");

        /* Cleared for a rebuild: the active ends go with the usage columns,
         * the message times stay. */
        ASSERT_OK(bbt_store_days_clear(s));
        out[0] = '\0';
        ASSERT_OK(bbt_store_days_each(s, INT32_MIN, INT32_MAX, history_day_cb, out));
        ASSERT_STR_EQ(out, "a:10:300-500/0/hb2 a:12:1200-1250/0/hb0 a:13:0-0/0/hb0 b:11:1100-1100/0/hb0");

        /* Rebuilt (UTC offset 0) from the raw records, each at min(stamp,
         * receive) (no skew known), and the terminals' first and last
         * receive: merged into what the rows hold. */
        ASSERT_EQ(bbt_store_raw_insert(s, c, 1, BBT_CH_HB, 86400000LL * 20 + 7000, 86400000LL * 20 + 9000, 1, "{}",
                                       2, 1, NULL), 1);
        ASSERT_EQ(bbt_store_raw_insert(s, c, 2, BBT_CH_HB, 86400000LL * 20 + 60000, 86400000LL * 20 + 50000, 1,
                                       "{}", 2, 2, NULL), 1);
        t = terminal("510107", "S1", "a");
        t.id = a;
        t.first_seen_ms = 301;
        t.last_seen_ms = 86400000LL * 14 + 5;
        ASSERT_OK(bbt_store_terminal_update(s, &t));
        ASSERT_OK(bbt_store_days_history_rebuild(s, 0));
        out[0] = '\0';
        ASSERT_OK(bbt_store_days_each(s, INT32_MIN, INT32_MAX, history_day_cb, out));
        /* a: 301 on day 0 (a new row), day 14's last receive; c: day 20, the
         * first at its stamp (7000, before its receive), the second at its
         * receive (50000, before its stamp). */
        ASSERT_STR_EQ(out, "a:0:301-301/0/hb0 a:10:300-500/0/hb2 a:12:1200-1250/0/hb0 a:13:0-0/0/hb0 "
                           "a:14:1209600005-1209600005/0/hb0 b:11:1100-1100/0/hb0 "
                           "c:20:1728007000-1728050000/0/hb0");
        bbt_store_close(s);
}

/* day_add merges the history columns (earliest first message, latest last
 * message and active end); seen_each reads a terminal's latest as of a day
 * in a scope; days_clear keeps the message times; days_history_rebuild adds
 * the raw records' and the terminals' times. */
TEST(history)
{
        on_backend(&sqlite_backend, history_case);
}

TEST(pg_history)
{
        on_backend(&pg_backend, history_case);
}

/* ---- seen to the day: seen_days_each against the rollups ---- */

#define SEEN_TERMINALS 6
#define DAY_MS 86400000LL

/* Each terminal's days with a message (0-terminated), chosen around span
 * edges (multiples of 32), far back (more than two months before the to_days
 * tried) and after them. */
static const int32_t seen_days[SEEN_TERMINALS][8] = {
        { 20480, 20511, 20512, 20530, 0 },
        { 20400, 0 },          /* long before */
        { 20529, 20531, 20543, 0 },
        { 0 },                 /* never */
        { 20256, 20543, 0 },   /* far back, then the end of a span */
        { 20512, 0 },
};

struct seen_check {
        int64_t ids[SEEN_TERMINALS];
        int32_t got[SEEN_TERMINALS];
        int n;
};

static int seen_day_cb(void *u, const struct bbt_store_seen_day *seen)
{
        struct seen_check *c = u;

        for (int i = 0; i < SEEN_TERMINALS; i++)
                if (c->ids[i] == seen->terminal_id)
                        c->got[i] = seen->day;
        c->n++;
        return 0;
}

/* What seen_days_each must say for terminal I: the latest of its days in FROM..TO. */
static int32_t seen_expected(int i, int32_t from, int32_t to)
{
        int32_t best = INT32_MIN;

        for (int k = 0; seen_days[i][k]; k++)
                if (seen_days[i][k] >= from && seen_days[i][k] <= to && seen_days[i][k] > best)
                        best = seen_days[i][k];
        return best;
}

static void seen_days_check(struct bbt_store *s, struct seen_check *c, const char *when)
{
        static const int32_t tos[] = { 20479, 20480, 20510, 20511, 20512, 20520, 20530, 20531, 20542, 20543, 20600 };
        static const int32_t froms[] = { INT32_MIN, 20300, 20481, 20512, 20531 };

        for (size_t f = 0; f < BBT_ELEMENTSOF(froms); f++) {
                for (size_t t = 0; t < BBT_ELEMENTSOF(tos); t++) {
                        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;

                        scope.from_day = froms[f];
                        scope.to_day = tos[t];
                        c->n = 0;
                        for (int i = 0; i < SEEN_TERMINALS; i++)
                                c->got[i] = 12345;
                        ASSERT_OK(bbt_store_seen_days_each_in(s, &scope, 0, seen_day_cb, c));
                        ASSERT_EQ(c->n, SEEN_TERMINALS);
                        for (int i = 0; i < SEEN_TERMINALS; i++)
                                if (c->got[i] != seen_expected(i, froms[f], tos[t]))
                                        FAIL("%s: %s: terminal %d, days %d..%d: seen day %d, expected %d", current,
                                             when, i, (int)froms[f], (int)tos[t], (int)c->got[i],
                                             (int)seen_expected(i, froms[f], tos[t]));
                }
        }
        /* A scope: only its terminals (the even ones are in S1). */
        {
                struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;

                scope.school = "S1";
                scope.to_day = 20531;
                c->n = 0;
                for (int i = 0; i < SEEN_TERMINALS; i++)
                        c->got[i] = 12345;
                ASSERT_OK(bbt_store_seen_days_each_in(s, &scope, 0, seen_day_cb, c));
                ASSERT_EQ(c->n, SEEN_TERMINALS / 2);
                for (int i = 0; i < SEEN_TERMINALS; i++)
                        ASSERT_EQ(c->got[i], i % 2 ? 12345 : seen_expected(i, INT32_MIN, 20531));
        }
}

static void seen_days_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_day_rule rule = BBT_DAY_RULE_DEFAULT, other = rule;
        struct seen_check c = { 0 };
        char code[16];

        forget_terminals();
        ASSERT_OK(bbt_store_begin(s));
        for (int i = 0; i < SEEN_TERMINALS; i++) {
                snprintf(code, sizeof(code), "t%d", i);
                c.ids[i] = insert_terminal(s, "510107", i % 2 ? "S2" : "S1", code, code);
                for (int k = 0; seen_days[i][k]; k++) {
                        int64_t at = seen_days[i][k] * DAY_MS + 3600000 * (k + 1);
                        struct bbt_day_rollup d = { .day = seen_days[i][k], .first_msg_ms = at, .last_msg_ms = at };

                        ASSERT_OK(bbt_store_day_add(s, c.ids[i], &d));
                        /* Again, and a row of the day with usage only: the same answer. */
                        ASSERT_OK(bbt_store_day_add(s, c.ids[i], &d));
                        d = (struct bbt_day_rollup){ .day = seen_days[i][k] + 1, .on_ms = 60000,
                                                     .active_ms = 60000 };
                        ASSERT_OK(bbt_store_day_add(s, c.ids[i], &d));
                }
        }
        ASSERT_OK(bbt_store_commit(s));
        seen_days_check(s, &c, "after day_add");
        /* The rule's recount, the rollups' rebuild, the history rebuild keep it. */
        other.used_day_ms *= 2;
        ASSERT_OK(bbt_store_day_rule_set(s, &other));
        seen_days_check(s, &c, "after a recount");
        ASSERT_OK(bbt_store_days_clear(s));
        seen_days_check(s, &c, "after days_clear");
        ASSERT_OK(bbt_store_days_history_rebuild(s, 0));
        seen_days_check(s, &c, "after the history rebuild");
        ASSERT_OK(bbt_store_day_rule_set(s, &rule));
        /* A rolled-back day_add leaves nothing, and the same day is marked
         * when added again. */
        ASSERT_OK(bbt_store_begin(s));
        {
                struct bbt_day_rollup d = { .day = 20600, .first_msg_ms = 20600 * DAY_MS, .last_msg_ms = 20600 * DAY_MS };

                ASSERT_OK(bbt_store_day_add(s, c.ids[3], &d));
                ASSERT_OK(bbt_store_rollback(s));
                seen_days_check(s, &c, "after a rollback");
                ASSERT_OK(bbt_store_day_add(s, c.ids[3], &d));
        }
        {
                struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;

                scope.to_day = 20600;
                ASSERT_OK(bbt_store_seen_days_each_in(s, &scope, 0, seen_day_cb, &c));
                ASSERT_EQ(c.got[3], 20600);
        }
        bbt_store_close(s);
}

/* seen_days_each gives, for every terminal in scope, the latest day in its
 * range with a message — what seen_each gives, to the day — whatever the
 * range's edges are against the backend's summaries (SQLite: 32-day marks,
 * read two months back), after recounts, rebuilds and a rollback. */
TEST(seen_days)
{
        on_backend(&sqlite_backend, seen_days_case);
}

TEST(pg_seen_days)
{
        on_backend(&pg_backend, seen_days_case);
}

static void prune_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_usage x;
        char out[OUT_SIZE] = "", *payload;
        size_t len;
        int64_t a, b;

        forget_terminals();
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        ASSERT_OK(bbt_store_begin(s));
        /* Received at 100, 110, ... 290 by two terminals in turn. */
        for (int i = 0; i < 20; i++)
                ASSERT_EQ(bbt_store_raw_insert(s, i % 2 ? b : a, i, BBT_CH_HB, 0, 100 + 10 * i, 1, "{}", 2, 1, NULL),
                          1);
        x = usage(a, 1, 0, 1000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        x = usage(a, 2, 1000, 3000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        ASSERT_OK(bbt_store_commit(s));
        ASSERT_OK(bbt_store_prune(s, 0, 0)); /* 0: keep */
        for (int i = 0; i < 20; i++) {
                ASSERT_OK(bbt_store_raw_payload(s, i % 2 ? b : a, i, &payload, &len));
                free(payload);
        }
        ASSERT_OK(bbt_store_prune(s, 155, 2000)); /* received 100..150 go; usage ended before 2000 goes */
        for (int i = 0; i < 20; i++) {
                int r = bbt_store_raw_payload(s, i % 2 ? b : a, i, &payload, &len);

                if (i < 6) {
                        ASSERT_EQ(r, -ENOENT);
                } else {
                        ASSERT_OK(r);
                        free(payload);
                }
        }
        ASSERT_OK(bbt_store_usage_each(s, usage_cb, out));
        ASSERT_STR_EQ(out, "a:2:1000-3000:active:1000:5:1/2/3/4");
        ASSERT_OK(bbt_store_prune(s, 1000, 0));
        ASSERT_EQ(bbt_store_raw_payload(s, b, 19, &payload, &len), -ENOENT);
        ASSERT_OK(bbt_store_prune(s, 1000, 0)); /* nothing left: fine */
        bbt_store_close(s);
}

/* prune deletes raw messages received, and usage intervals ended, before a time. */
TEST(prune)
{
        on_backend(&sqlite_backend, prune_case);
}

TEST(pg_prune)
{
        on_backend(&pg_backend, prune_case);
}

/* ---- transactions ---- */

static void transactions_case(const char *location)
{
        struct bbt_store *w = open_store(location, false), *r;
        char out[OUT_SIZE] = "";
        int64_t v = 0;

        forget_terminals();
        ASSERT_OK(bbt_store_meta_set(w, "x", 0)); /* outside a transaction: committed at once */
        r = open_store(location, true);
        ASSERT_OK(bbt_store_meta_get(r, "x", &v));
        ASSERT_EQ(v, 0);
        /* Not seen by a reader before commit, all of it after. */
        ASSERT_OK(bbt_store_begin(w));
        ASSERT_OK(bbt_store_meta_set(w, "x", 1));
        insert_terminal(w, "510107", "S1", "a", "a");
        ASSERT_OK(bbt_store_meta_get(w, "x", &v)); /* the writer sees its own */
        ASSERT_EQ(v, 1);
        ASSERT_OK(bbt_store_meta_get(r, "x", &v));
        ASSERT_EQ(v, 0);
        ASSERT_OK(bbt_store_terminals_each(r, terminal_cb, out));
        ASSERT_STR_EQ(out, "");
        ASSERT_OK(bbt_store_commit(w));
        ASSERT_OK(bbt_store_meta_get(r, "x", &v));
        ASSERT_EQ(v, 1);
        ASSERT_OK(bbt_store_terminals_each(r, terminal_cb, out));
        ASSERT_STR_EQ(out, "510107/S1/a");
        /* Rolled back: gone for both. */
        ASSERT_OK(bbt_store_begin(w));
        ASSERT_OK(bbt_store_meta_set(w, "x", 2));
        insert_terminal(w, "510107", "S1", "b", "b");
        ASSERT_OK(bbt_store_rollback(w));
        ASSERT_OK(bbt_store_rollback(w)); /* none open: nothing to do */
        ASSERT_OK(bbt_store_meta_get(w, "x", &v));
        ASSERT_EQ(v, 1);
        out[0] = '\0';
        ASSERT_OK(bbt_store_terminals_each(w, terminal_cb, out));
        ASSERT_STR_EQ(out, "510107/S1/a");
        /* Closed with a transaction open: rolled back. */
        ASSERT_OK(bbt_store_begin(w));
        ASSERT_OK(bbt_store_meta_set(w, "x", 3));
        bbt_store_close(w);
        ASSERT_OK(bbt_store_meta_get(r, "x", &v));
        ASSERT_EQ(v, 1);
        bbt_store_close(r);
        w = open_store(location, false);
        ASSERT_OK(bbt_store_meta_get(w, "x", &v));
        ASSERT_EQ(v, 1);
        bbt_store_close(w);
}

/* begin/commit publish writes at once; rollback, or a close before commit, discards them. */
TEST(transactions)
{
        on_backend(&sqlite_backend, transactions_case);
}

TEST(pg_transactions)
{
        on_backend(&pg_backend, transactions_case);
}

/* ---- scope ---- */

/* Short rows for the scope cases: the terminal and what tells the row apart. */
static int scope_terminal_cb(void *u, const struct bbt_store_terminal *t)
{
        add(u, "%s", t->terminal);
        return 0;
}

static int scope_gap_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        add(u, "%s:%lld", code_of(terminal_id), (long long)g->from);
        return 0;
}

static int scope_conflict_cb(void *u, const struct bbt_store_conflict *c)
{
        add(u, "%s:%lld", code_of(c->terminal_id), (long long)c->seq);
        return 0;
}

static int scope_usage_cb(void *u, const struct bbt_store_usage *x)
{
        add(u, "%s:%lld", code_of(x->terminal_id), (long long)x->seq);
        return 0;
}

static int scope_day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        add(u, "%s:%d", code_of(terminal_id), (int)d->day);
        return 0;
}

static int scope_loss_cb(void *u, const struct bbt_store_loss *l)
{
        add(u, "%s:%lld", code_of(l->terminal_id), (long long)l->from);
        return 0;
}

static int scope_fault_cb(void *u, const struct bbt_store_fault *f)
{
        add(u, "%s:%s", code_of(f->terminal_id), f->code);
        return 0;
}

static int scope_device_cb(void *u, const struct bbt_store_device *d)
{
        add(u, "%s:%s", code_of(d->terminal_id), d->serial);
        return 0;
}

/* What each _in iterator should return for a scope. */
struct in_scope {
        const char *terminals, *gaps, *conflicts, *usage, *days, *losses, *faults, *inventory;
};

static void expect_scope(struct bbt_store *s, const struct bbt_store_scope *scope, const struct in_scope *want)
{
        char rows[OUT_SIZE];

#define EXPECT_ROWS(call, field)                                                                                \
        do {                                                                                                    \
                rows[0] = '\0';                                                                                 \
                ASSERT_OK(call);                                                                                \
                if (strcmp(rows, want->field) != 0)                                                             \
                        FAIL("%s: %s in scope %s/%s, days %d..%d, ms %lld..%lld: \"%s\", expected \"%s\"",      \
                             current, #field, scope && scope->county ? scope->county : "*",                    \
                             scope && scope->school ? scope->school : "*", scope ? scope->from_day : 0,         \
                             scope ? scope->to_day : 0, scope ? (long long)scope->since_ms : 0,                 \
                             scope ? (long long)scope->until_ms : 0, rows, want->field);                        \
        } while (0)
        EXPECT_ROWS(bbt_store_terminals_each_in(s, scope, scope_terminal_cb, rows), terminals);
        EXPECT_ROWS(bbt_store_gaps_each_in(s, scope, scope_gap_cb, rows), gaps);
        EXPECT_ROWS(bbt_store_conflicts_each_in(s, scope, scope_conflict_cb, rows), conflicts);
        EXPECT_ROWS(bbt_store_usage_each_in(s, scope, scope_usage_cb, rows), usage);
        EXPECT_ROWS(bbt_store_days_each_in(s, scope, scope_day_cb, rows), days);
        EXPECT_ROWS(bbt_store_losses_each_in(s, scope, scope_loss_cb, rows), losses);
        EXPECT_ROWS(bbt_store_faults_each_in(s, scope, scope_fault_cb, rows), faults);
        EXPECT_ROWS(bbt_store_inventory_each_in(s, scope, scope_device_cb, rows), inventory);
#undef EXPECT_ROWS
}

/* Four terminals: a, b of school S1 and c of S2 in county 510107, and d of a
 * school with the same code S1 in county 510108; a row of every kind for
 * most of them, at times and days the scopes below tell apart. */
static void scope_fill(struct bbt_store *s)
{
        static const int64_t faults[][3] = { /* raised, cleared (0: open) */
                { 1000, 2000 }, { 1500, 0 }, { 2500, 2600 }, { 100, 0 },
        };
        struct bbt_store_gap g = { .state = BBT_GAP_WAITING };
        struct bbt_store_conflict c = { .channel = BBT_CH_HB };
        struct bbt_day_rollup day = { .on_ms = 1 };
        struct bbt_store_device dev;
        struct bbt_store_fault f;
        struct bbt_store_usage x;
        struct bbt_store_loss l;
        int64_t a, b, cc, d;

        forget_terminals();
        ASSERT_OK(bbt_store_begin(s));
        a = insert_terminal(s, "510107", "S1", "a", "a");
        b = insert_terminal(s, "510107", "S1", "b", "b");
        cc = insert_terminal(s, "510107", "S2", "c", "c");
        d = insert_terminal(s, "510108", "S1", "d", "d");
        g.from = 1, g.to = 2;
        ASSERT_OK(bbt_store_gaps_replace(s, a, &g, 1));
        g.from = 5, g.to = 6;
        ASSERT_OK(bbt_store_gaps_replace(s, cc, &g, 1));
        g.from = 9, g.to = 9;
        ASSERT_OK(bbt_store_gaps_replace(s, d, &g, 1));
        c.terminal_id = a, c.seq = 3, c.recv_ms = 1000;
        ASSERT_OK(bbt_store_conflict_add(s, &c, "{}", 2));
        c.terminal_id = cc, c.seq = 4, c.recv_ms = 2000;
        ASSERT_OK(bbt_store_conflict_add(s, &c, "{}", 2));
        c.terminal_id = d, c.seq = 5, c.recv_ms = 3000;
        ASSERT_OK(bbt_store_conflict_add(s, &c, "{}", 2));
        x = usage(a, 1, 1000, 2000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        x = usage(b, 1, 2500, 3000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        x = usage(cc, 1, 3000, 4000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        x = usage(d, 1, 500, 5000);
        ASSERT_OK(bbt_store_usage_insert(s, &x));
        for (int32_t k = 10; k <= 12; k++) {
                day.day = k;
                ASSERT_OK(bbt_store_day_add(s, a, &day));
        }
        day.day = 11;
        ASSERT_OK(bbt_store_day_add(s, b, &day));
        day.day = 12;
        ASSERT_OK(bbt_store_day_add(s, cc, &day));
        ASSERT_OK(bbt_store_day_add(s, d, &day));
        day.day = 10;
        ASSERT_OK(bbt_store_day_add(s, d, &day));
        l = loss(a, 1, 1, BBT_LOSS_LOST, 1000, "x");
        ASSERT_OK(bbt_store_loss_add(s, &l));
        l = loss(b, 2, 3, BBT_LOSS_LOST, 2000, "x");
        ASSERT_OK(bbt_store_loss_add(s, &l));
        l = loss(d, 4, 4, BBT_LOSS_SKIPPED, 3000, "x");
        ASSERT_OK(bbt_store_loss_add(s, &l));
        for (int k = 0; k < 4; k++) {
                int64_t id = k < 2 ? a : k == 2 ? cc : d;
                char code[16];

                snprintf(code, sizeof(code), "f%d", k + 1);
                f = fault(id, code, "agent", faults[k][0]);
                ASSERT_OK(bbt_store_fault_raise(s, &f));
                if (faults[k][1])
                        ASSERT_OK(bbt_store_fault_clear(s, id, code, "agent", faults[k][1]));
        }
        dev = device(BBT_KIND_DISPLAY, "Seewo", "A1");
        ASSERT_OK(bbt_store_inventory_replace(s, a, &dev, 1));
        {
                struct bbt_store_device two[2] = { device(BBT_KIND_DISPLAY, "Seewo", "A1"),
                                                   device(BBT_KIND_CAMERA, "Hik", "A2") };

                ASSERT_OK(bbt_store_inventory_replace(s, a, two, 2));
        }
        dev = device(BBT_KIND_DISPLAY, "Seewo", "C1");
        ASSERT_OK(bbt_store_inventory_replace(s, cc, &dev, 1));
        dev = device(BBT_KIND_DISPLAY, "Seewo", "D1");
        ASSERT_OK(bbt_store_inventory_replace(s, d, &dev, 1));
        ASSERT_OK(bbt_store_commit(s));
}

static const struct in_scope everything = {
        .terminals = "a b c d", .gaps = "a:1 c:5 d:9", .conflicts = "a:3 c:4 d:5", .usage = "a:1 b:1 c:1 d:1",
        .days = "a:10 a:11 a:12 b:11 c:12 d:10 d:12", .losses = "a:1 b:2 d:4", .faults = "a:f1 a:f2 c:f3 d:f4",
        .inventory = "a:A1 a:A2 c:C1 d:D1",
};

static void scope_who_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        char rows[OUT_SIZE] = "";

        scope_fill(s);
        bbt_store_close(s);
        s = open_store(location, true); /* what bbt-report does */
        expect_scope(s, NULL, &everything);
        expect_scope(s, &scope, &everything);
        /* X_each is X_each_in with no scope. */
        ASSERT_OK(bbt_store_terminals_each(s, scope_terminal_cb, rows));
        ASSERT_STR_EQ(rows, everything.terminals);

        scope.county = "510107";
        expect_scope(s, &scope, &(struct in_scope){
                .terminals = "a b c", .gaps = "a:1 c:5", .conflicts = "a:3 c:4", .usage = "a:1 b:1 c:1",
                .days = "a:10 a:11 a:12 b:11 c:12", .losses = "a:1 b:2", .faults = "a:f1 a:f2 c:f3",
                .inventory = "a:A1 a:A2 c:C1" });
        scope.school = "S1";
        expect_scope(s, &scope, &(struct in_scope){
                .terminals = "a b", .gaps = "a:1", .conflicts = "a:3", .usage = "a:1 b:1",
                .days = "a:10 a:11 a:12 b:11", .losses = "a:1 b:2", .faults = "a:f1 a:f2",
                .inventory = "a:A1 a:A2" });
        /* A school code alone: that code in every county. */
        scope.county = NULL;
        expect_scope(s, &scope, &(struct in_scope){
                .terminals = "a b d", .gaps = "a:1 d:9", .conflicts = "a:3 d:5", .usage = "a:1 b:1 d:1",
                .days = "a:10 a:11 a:12 b:11 d:10 d:12", .losses = "a:1 b:2 d:4", .faults = "a:f1 a:f2 d:f4",
                .inventory = "a:A1 a:A2 d:D1" });
        scope.county = "510108";
        scope.school = NULL;
        expect_scope(s, &scope, &(struct in_scope){
                .terminals = "d", .gaps = "d:9", .conflicts = "d:5", .usage = "d:1", .days = "d:10 d:12",
                .losses = "d:4", .faults = "d:f4", .inventory = "d:D1" });
        scope.county = "510107";
        scope.school = "S9";
        expect_scope(s, &scope, &(struct in_scope){ "", "", "", "", "", "", "", "" });
        bbt_store_close(s);
}

/* County and school pick the terminals whose rows every _in iterator gives. */
TEST(scope_county_and_school)
{
        on_backend(&sqlite_backend, scope_who_case);
}

TEST(pg_scope_county_and_school)
{
        on_backend(&pg_backend, scope_who_case);
}

static void scope_when_case(const char *location)
{
        struct bbt_store *s = open_store(location, false);
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct in_scope want = everything;

        scope_fill(s);
        /* Days bound the rollups only. */
        scope.from_day = 11;
        scope.to_day = 12;
        want.days = "a:11 a:12 b:11 c:12 d:12";
        expect_scope(s, &scope, &want);
        scope.from_day = 12;
        scope.to_day = 11;
        want.days = "";
        expect_scope(s, &scope, &want);

        /* Times bound the timed rows: usage overlapping [since, until),
         * conflicts and losses within it, faults raised before until and not
         * cleared before since. */
        scope = (struct bbt_store_scope)BBT_STORE_SCOPE_ALL;
        want = everything;
        scope.since_ms = 2000;
        scope.until_ms = 3000;
        want.usage = "b:1 d:1";
        want.conflicts = "c:4";
        want.losses = "b:2";
        want.faults = "a:f1 a:f2 c:f3 d:f4";
        expect_scope(s, &scope, &want);
        /* At one instant: the faults open then (cleared at that instant counts). */
        scope.since_ms = scope.until_ms = 2000;
        want.usage = "d:1";
        want.conflicts = "";
        want.losses = "";
        want.faults = "a:f1 a:f2 d:f4";
        expect_scope(s, &scope, &want);
        scope.since_ms = scope.until_ms = 2700;
        want.usage = "b:1 d:1"; /* running then */
        want.faults = "a:f2 d:f4";
        expect_scope(s, &scope, &want);
        /* Who and when together. */
        scope.county = "510107";
        scope.since_ms = scope.until_ms = 2000;
        scope.from_day = scope.to_day = 12;
        want = (struct in_scope){ .terminals = "a b c", .gaps = "a:1 c:5", .conflicts = "", .usage = "",
                                  .days = "a:12 c:12", .losses = "", .faults = "a:f1 a:f2",
                                  .inventory = "a:A1 a:A2 c:C1" };
        expect_scope(s, &scope, &want);
        bbt_store_close(s);
}

/* Days bound the rollups, times the timed rows, each as store.h says. */
TEST(scope_days_and_times)
{
        on_backend(&sqlite_backend, scope_when_case);
}

TEST(pg_scope_days_and_times)
{
        on_backend(&pg_backend, scope_when_case);
}
