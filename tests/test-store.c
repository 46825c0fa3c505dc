/* The SQLite store: schema creation and version checks, every operation's round trip, read-only opening. */
/* bbt-test: label=unit timeout=30 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "test.h"

static char dir[64];
static char path[128];

static void cleanup(void)
{
        char cmd[160];

        if (dir[0]) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", dir);
        }
}

static void setup(void)
{
        snprintf(dir, sizeof(dir), "/tmp/bbt-store-XXXXXX");
        ASSERT(mkdtemp(dir) != NULL);
        atexit(cleanup);
        snprintf(path, sizeof(path), "%s/agg.db", dir);
}

static struct bbt_store *open_rw(void)
{
        struct bbt_store *s = NULL;
        char err[256];

        if (bbt_store_open(path, false, &s, err, sizeof(err)) < 0)
                FAIL("open: %s", err);
        return s;
}

static void exec_sql(const char *sql)
{
        sqlite3 *db;

        ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

static int count_terms(void *u, const struct bbt_store_terminal *t)
{
        (*(int *)u)++;
        return 0;
}

TEST(create_reopen_and_versions)
{
        struct bbt_store *s;
        char err[256] = "";
        int64_t v = 0;
        int n = 0;

        setup();
        /* Read-only on a missing store: ENOENT, nothing created. */
        ASSERT_EQ(bbt_store_open(path, true, &s, err, sizeof(err)), -ENOENT);
        ASSERT(access(path, F_OK) < 0);
        s = open_rw();
        ASSERT_STR_EQ(s->ops->name, "sqlite");
        ASSERT_EQ(bbt_store_meta_get(s, "nothing", &v), -ENOENT);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_meta_set(s, "boot", 7));
        ASSERT_OK(bbt_store_commit(s));
        bbt_store_close(s);
        /* Reopened read-only: what was committed is there. */
        ASSERT_OK(bbt_store_open(path, true, &s, err, sizeof(err)));
        ASSERT_OK(bbt_store_meta_get(s, "boot", &v));
        ASSERT_EQ(v, 7);
        ASSERT_OK(bbt_store_terminals_each(s, count_terms, &n));
        ASSERT_EQ(n, 0);
        bbt_store_close(s);

        /* A newer schema is refused with a message saying so. */
        exec_sql("PRAGMA user_version = 99");
        ASSERT_EQ(bbt_store_open(path, false, &s, err, sizeof(err)), -EPROTO);
        ASSERT_STR_CONTAINS(err, "schema version 99 is newer");
        ASSERT_EQ(bbt_store_open(path, true, &s, err, sizeof(err)), -EPROTO);
        exec_sql("PRAGMA user_version = 1");
}

TEST(foreign_database_refused)
{
        struct bbt_store *s;
        char err[256] = "";

        setup();
        exec_sql("CREATE TABLE t(x)");
        ASSERT_EQ(bbt_store_open(path, false, &s, err, sizeof(err)), -EPROTO);
        ASSERT_STR_CONTAINS(err, "not a bbt store");
        ASSERT_EQ(bbt_store_open("postgresql://db/bbt", false, &s, err, sizeof(err)), -EPROTONOSUPPORT);
        ASSERT_EQ(bbt_store_open("", false, &s, err, sizeof(err)), -EINVAL);
}

static int first_terminal(void *u, const struct bbt_store_terminal *t)
{
        *(struct bbt_store_terminal *)u = *t;
        return 1;
}

static int sum_days(void *u, int64_t id, const struct bbt_day_rollup *d)
{
        struct bbt_day_rollup *sum = u;

        sum->day = d->day;
        bbt_day_rollup_add(sum, d);
        return 0;
}

static int count_faults(void *u, const struct bbt_store_fault *f)
{
        int *open = u;

        open[f->cleared_ms == 0]++;
        return 0;
}

TEST(round_trips)
{
        uint64_t hash = 0;
        struct bbt_store *s;
        struct bbt_store_terminal t = { .first_seq = 1, .high_seq = 9, .boot = 3, .inventory_seq = -1 }, back;
        struct bbt_store_gap g[2] = { { .from = 3, .to = 4, .state = BBT_GAP_REQUESTED, .cmd_id = "rs-1-1" },
                                      { .from = 7, .to = 7 } };
        struct bbt_day_rollup d = { .day = 20000, .on_ms = 10, .active_ms = 5, .hb_count = 1, .on_all_ms = 12 };
        struct bbt_day_rollup sum = { 0 };
        struct bbt_store_fault f = { .code = "overheat", .source = "agent", .raised_ms = 1000 };
        int faults[2] = { 0, 0 };

        setup();
        s = open_rw();
        snprintf(t.county, sizeof(t.county), "510107");
        snprintf(t.school, sizeof(t.school), "3151010001");
        snprintf(t.terminal, sizeof(t.terminal), "r101");
        snprintf(t.version, sizeof(t.version), "0.1.0");
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_terminal_insert(s, &t));
        ASSERT_GT(t.id, 0);
        t.received = 42;
        ASSERT_OK(bbt_store_terminal_update(s, &t));
        ASSERT_OK(bbt_store_gaps_replace(s, t.id, g, 2));
        ASSERT_EQ(bbt_store_raw_insert(s, t.id, 5, BBT_CH_HB, 1, 2, 3, "{}", 2, 77, NULL), 1);
        ASSERT_EQ(bbt_store_raw_insert(s, t.id, 5, BBT_CH_HB, 1, 2, 3, "{}", 2, 77, &hash), 0); /* (terminal, seq) once */
        ASSERT_EQ(hash, 77); /* the stored payload's hash comes back */
        ASSERT_OK(bbt_store_day_add(s, t.id, &d));
        ASSERT_OK(bbt_store_day_add(s, t.id, &d)); /* rollups add up */
        f.terminal_id = t.id;
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        ASSERT_OK(bbt_store_fault_raise(s, &f)); /* already open: one row */
        ASSERT_OK(bbt_store_fault_clear(s, t.id, "overheat", "agent", 2000));
        f.raised_ms = 1500; /* a late raise, older than the clear: does not reopen */
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        ASSERT_OK(bbt_store_counter_add(s, "stored", 3));
        ASSERT_OK(bbt_store_counter_add(s, "stored", 4));
        ASSERT_OK(bbt_store_commit(s));

        ASSERT_EQ(bbt_store_terminals_each(s, first_terminal, &back), 1);
        ASSERT_EQ(back.id, t.id);
        ASSERT_STR_EQ(back.terminal, "r101");
        ASSERT_STR_EQ(back.version, "0.1.0");
        ASSERT_EQ(back.received, 42);
        ASSERT_EQ(back.high_seq, 9);
        ASSERT_EQ(back.inventory_seq, -1);
        ASSERT_OK(bbt_store_days_each(s, 19999, 20001, sum_days, &sum));
        ASSERT_EQ(sum.on_ms, 20);
        ASSERT_EQ(sum.on_all_ms, 24);
        ASSERT_EQ(sum.hb_count, 2);
        ASSERT_OK(bbt_store_faults_each(s, count_faults, faults));
        ASSERT_EQ(faults[1], 0); /* none open */
        ASSERT_EQ(faults[0], 1); /* one closed */
        /* Usage columns zeroed for a rebuild, heartbeats kept. */
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_days_clear(s));
        ASSERT_OK(bbt_store_commit(s));
        memset(&sum, 0, sizeof(sum));
        ASSERT_OK(bbt_store_days_each(s, 19999, 20001, sum_days, &sum));
        ASSERT_EQ(sum.on_ms, 0);
        ASSERT_EQ(sum.hb_count, 2);
        bbt_store_close(s);
}

TEST(rollback_discards)
{
        struct bbt_store *s;
        int64_t v;

        setup();
        s = open_rw();
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_meta_set(s, "x", 1));
        ASSERT_OK(bbt_store_rollback(s));
        ASSERT_EQ(bbt_store_meta_get(s, "x", &v), -ENOENT);
        /* Closing with a transaction open rolls it back. */
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_meta_set(s, "x", 2));
        bbt_store_close(s);
        s = open_rw();
        ASSERT_EQ(bbt_store_meta_get(s, "x", &v), -ENOENT);
        bbt_store_close(s);
}

static int64_t raw_rows(void)
{
        sqlite3 *db;
        sqlite3_stmt *st;
        int64_t n = -1;

        ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM raw", -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

TEST(prune_by_receive_time)
{
        struct bbt_store *s;

        setup();
        s = open_rw();
        ASSERT_OK(bbt_store_begin(s));
        /* Received at 100, 110, ... 290 by two terminals in turn. */
        for (int i = 0; i < 20; i++)
                ASSERT_EQ(bbt_store_raw_insert(s, 1 + i % 2, i, BBT_CH_HB, 0, 100 + 10 * i, 1, "{}", 2, 1, NULL), 1);
        ASSERT_OK(bbt_store_commit(s));
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_prune(s, 0, 0)); /* keeps everything */
        ASSERT_OK(bbt_store_commit(s));
        ASSERT_EQ(raw_rows(), 20);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_prune(s, 155, 0)); /* 100..150 go: 6 rows */
        ASSERT_OK(bbt_store_commit(s));
        ASSERT_EQ(raw_rows(), 14);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_prune(s, 155, 0)); /* again: nothing more */
        ASSERT_OK(bbt_store_prune(s, 1000, 0)); /* all */
        ASSERT_OK(bbt_store_commit(s));
        ASSERT_EQ(raw_rows(), 0);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_prune(s, 1000, 0)); /* an empty table */
        ASSERT_OK(bbt_store_commit(s));
        bbt_store_close(s);
}

static int collect_losses(void *u, const struct bbt_store_loss *l)
{
        char *out = u;
        size_t n = strlen(out);

        snprintf(out + n, 1024 - n, "%s%lld-%lld:%s:%s", n ? " " : "", (long long)l->from, (long long)l->to,
                 l->kind == BBT_LOSS_SKIPPED ? "skipped" : "lost", l->reason);
        return 0;
}

static int count_conflicts(void *u, const struct bbt_store_conflict *c)
{
        ++*(int *)u;
        ASSERT_EQ(c->seq, 9);
        ASSERT_EQ(c->stored_hash, 11);
        ASSERT_EQ(c->hash, 12);
        return 0;
}

/* Loss rows of both kinds: found by seq, cut and split by a range; conflicts kept. */
TEST(losses_skipped_and_conflicts)
{
        struct bbt_store_loss l = { .terminal_id = 1, .from = 10, .to = 20, .kind = BBT_LOSS_SKIPPED },
                              found;
        struct bbt_store_conflict c = { .terminal_id = 1, .seq = 9, .channel = BBT_CH_HB, .stored_hash = 11,
                                        .hash = 12 };
        char out[1024] = "", *payload = NULL;
        size_t len = 0;
        struct bbt_store *s;
        int n = 0;

        setup();
        s = open_rw();
        ASSERT_OK(bbt_store_begin(s));
        snprintf(l.reason, sizeof(l.reason), "never used");
        ASSERT_OK(bbt_store_loss_add(s, &l));
        l.from = 30, l.to = 30, l.kind = BBT_LOSS_LOST;
        snprintf(l.reason, sizeof(l.reason), "gone");
        ASSERT_OK(bbt_store_loss_add(s, &l));
        ASSERT_EQ(bbt_store_loss_find(s, 1, 15, 15, &found), 1);
        ASSERT_EQ(found.kind, BBT_LOSS_SKIPPED);
        ASSERT_EQ(found.from, 10);
        ASSERT_EQ(bbt_store_loss_find(s, 1, 25, 25, &found), 0);
        ASSERT_EQ(bbt_store_loss_find(s, 2, 15, 15, &found), 0);
        ASSERT_EQ(bbt_store_loss_find(s, 1, 21, 40, &found), 1); /* the first row overlapping a range */
        ASSERT_EQ(found.from, 30);
        /* A range across both rows: the first is split, the second goes. */
        ASSERT_OK(bbt_store_loss_remove(s, 1, 14, 16));
        ASSERT_OK(bbt_store_loss_remove(s, 1, 25, 40));
        ASSERT_OK(bbt_store_losses_each(s, collect_losses, out));
        ASSERT_STR_EQ(out, "10-13:skipped:never used 17-20:skipped:never used");
        /* A conflicting payload is kept beside the stored one. */
        ASSERT_EQ(bbt_store_raw_insert(s, 1, 9, BBT_CH_HB, 1, 2, 3, "{\"a\":1}", 7, 11, NULL), 1);
        ASSERT_OK(bbt_store_conflict_add(s, &c, "{\"a\":2}", 7));
        ASSERT_OK(bbt_store_conflicts_each(s, count_conflicts, &n));
        ASSERT_EQ(n, 1);
        ASSERT_OK(bbt_store_raw_payload(s, 1, 9, &payload, &len));
        ASSERT_STR_EQ(payload, "{\"a\":1}");
        ASSERT_EQ(len, 7);
        free(payload);
        ASSERT_EQ(bbt_store_raw_payload(s, 1, 10, &payload, &len), -ENOENT);
        ASSERT_OK(bbt_store_commit(s));
        bbt_store_close(s);
}

/* A schema 1 store (before skipped seqs, conflicts and payload hashes) is
 * migrated: its rows stay, losses count as lost, old raw rows have no hash. */
TEST(migrates_schema_1)
{
        struct bbt_store_terminal t = { 0 };
        struct bbt_store_loss found;
        struct bbt_store *s;
        uint64_t hash = 99;
        char err[256] = "";
        int64_t v = 0;

        setup();
        s = open_rw();
        bbt_store_close(s);
        /* Back to schema 1, with a row in each changed table. */
        exec_sql("DROP TABLE conflict; DROP INDEX loss_seq; ALTER TABLE loss DROP COLUMN kind;"
                 "ALTER TABLE raw DROP COLUMN hash; ALTER TABLE terminal DROP COLUMN skipped;"
                 "ALTER TABLE terminal DROP COLUMN conflicts;"
                 "INSERT INTO terminal VALUES(1, '510107', 's1', 't1', 1, 9, 9, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0,"
                 " 0, 0, 0, '', '', '', '', '', -1);"
                 "INSERT INTO loss VALUES(1, 1, 4, 5, 0, 'no answer to resend');"
                 "INSERT INTO raw VALUES(1, 1, 3, 2, 0, 0, 1, '{}');"
                 "PRAGMA user_version = 1");
        ASSERT_OK(bbt_store_open(path, false, &s, err, sizeof(err)));
        ASSERT_EQ(bbt_store_meta_get(s, "nothing", &v), -ENOENT);
        ASSERT_EQ(bbt_store_terminals_each(s, first_terminal, &t), 1);
        ASSERT_EQ(t.lost, 2);
        ASSERT_EQ(t.skipped, 0);
        ASSERT_EQ(t.conflicts, 0);
        ASSERT_EQ(bbt_store_loss_find(s, 1, 5, 5, &found), 1);
        ASSERT_EQ(found.kind, BBT_LOSS_LOST);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_EQ(bbt_store_raw_insert(s, 1, 3, BBT_CH_HB, 0, 0, 1, "{}", 2, 5, &hash), 0);
        ASSERT_EQ(hash, 0); /* not known for a row from schema 1 */
        ASSERT_OK(bbt_store_commit(s));
        bbt_store_close(s);
}
