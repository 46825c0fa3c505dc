/* The SQLite backend's own ways: schema creation, versions, migration, foreign files, pruning by bisection. */
/* What every backend does is checked in test-store_contract.c. */
/* bbt-test: label=unit timeout=30 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "dates.h"
#include "rollup.h"
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
#ifdef BBT_HAVE_POSTGRESQL
        /* PostgreSQL, and no server there (loopback, port 1): refused, with libpq's reason. */
        ASSERT_EQ(bbt_store_open("postgresql://bbt:pw@127.0.0.1:1/bbt", false, &s, err, sizeof(err)), -ECONNREFUSED);
        ASSERT_STR_CONTAINS(err, "postgresql://bbt:***@127.0.0.1:1/bbt: ");
#else
        ASSERT_EQ(bbt_store_open("postgresql://127.0.0.1:1/bbt", false, &s, err, sizeof(err)), -EPROTONOSUPPORT);
#endif
        ASSERT_EQ(bbt_store_open("", false, &s, err, sizeof(err)), -EINVAL);
}

static int first_terminal(void *u, const struct bbt_store_terminal *t)
{
        *(struct bbt_store_terminal *)u = *t;
        return 1;
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
        exec_sql("DROP TABLE school_span; DROP TABLE mark_span; DELETE FROM meta WHERE key LIKE 'day_rule.%';"
                 "DROP INDEX day_rollup_active; ALTER TABLE day_rollup DROP COLUMN first_msg_ms;"
                 "ALTER TABLE day_rollup DROP COLUMN last_msg_ms; ALTER TABLE day_rollup DROP COLUMN last_active_ms;"
                 "DROP TABLE conflict; DROP INDEX loss_seq; ALTER TABLE loss DROP COLUMN kind;"
                 "ALTER TABLE raw DROP COLUMN hash; ALTER TABLE terminal DROP COLUMN skipped;"
                 "ALTER TABLE terminal DROP COLUMN conflicts;"
                 "INSERT INTO terminal VALUES(1, '510107', 's1', 't1', 1, 9, 9, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0,"
                 " 0, 0, 0, '', '', '', '', '', -1);"
                 "INSERT INTO loss VALUES(1, 1, 4, 5, 0, 'no answer to resend');"
                 "INSERT INTO raw VALUES(1, 1, 3, 2, 0, 0, 1, '{}');"
                 "DROP TABLE terminal_event; DROP TABLE terminal_net;" /* schema 6 */
                 "DROP TABLE audit;" /* schema 7 */
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

static int sum_school_days(void *u, const struct bbt_store_school_day *d)
{
        struct bbt_day_totals *t = u;

        bbt_day_totals_add(t, &d->t);
        return 0;
}

static int or_marks(void *u, const struct bbt_store_day_marks *m)
{
        uint32_t *bits = u;

        bits[0] |= m->powered;
        bits[1] |= m->used;
        for (int i = 0; i < BBT_STORE_MARK_DAYS; i++)
                bits[2] += (uint32_t)bbt_store_mark_lessons(m, i);
        return 0;
}

static int day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        struct bbt_day_rollup *out = u;

        (void)terminal_id;
        out[d->day & 1] = *d;
        return 0;
}

/* A schema 2 store (before the history) is migrated: its rollups stay, with
 * no history yet; the rollup rebuild the aggregator runs on it (its rules'
 * hash is of an older format) fills the history from the raw records
 * (message time: min(ts − skew, receive time)), the terminal's last receive
 * and the usage intervals (active ends). */
TEST(migrates_schema_2)
{
        /* Day 20703 (Mon 2026-09-07) starts at 1788710400000 at +08:00. */
        const int64_t mon = 1788710400000LL, h = 3600000LL;
        struct bbt_rollup_config c = { .cal = NULL, .margin_min = 30, .offset_min = 480 };
        struct bbt_day_rollup days[2];
        struct bbt_day_totals t = { 0 };
        struct bbt_store *s;
        char sql[2048];

        setup();
        s = open_rw();
        bbt_store_close(s);
        snprintf(sql, sizeof(sql),
                 "DROP TABLE school_span; DROP TABLE mark_span; DELETE FROM meta WHERE key LIKE 'day_rule.%%';"
                 "DROP INDEX day_rollup_active; ALTER TABLE day_rollup DROP COLUMN first_msg_ms;"
                 "ALTER TABLE day_rollup DROP COLUMN last_msg_ms; ALTER TABLE day_rollup DROP COLUMN last_active_ms;"
                 /* A terminal whose clock is 60 s fast, last heard of Tue 09:00. */
                 "INSERT INTO terminal(id, county, school, terminal, first_seq, high_seq, received, duplicates,"
                 " lost, first_seen_ms, last_seen_ms, last_active_ms, online, boot, online_since_ms,"
                 " offline_since_ms, offline_reason, skew_known, skew_ms, spool_dropped, version, hostname, os,"
                 " machine_id, last_hb, inventory_seq) VALUES(1, '510107', 's1', 't1', 0, 2, 3, 0, 0,"
                 " %lld, %lld, 0, 0, 1, 0, 0, 0, 1, 60000, 0, '', '', '', '', '', -1);"
                 /* Mon: two heartbeats, stamped 08:01 and 10:01 (08:00, 10:00 true), received 2 s later. */
                 "INSERT INTO raw(terminal_id, seq, channel, ts, recv_ms, boot, payload, hash)"
                 " VALUES(1, 0, 1, %lld, %lld, 1, '{}', 1), (1, 1, 1, %lld, %lld, 1, '{}', 2);"
                 "INSERT INTO day_rollup VALUES(1, 20703, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);"
                 /* Mon 08:00-08:40 active. */
                 "INSERT INTO usage VALUES(1, 2, %lld, %lld, 2, 0, 0, 0, 0, 0, 0);"
                 "DROP TABLE terminal_event; DROP TABLE terminal_net;" /* schema 6 */
                 "DROP TABLE audit;" /* schema 7 */
                 "PRAGMA user_version = 2",
                 (long long)(mon + 8 * h), (long long)(mon + 24 * h + 9 * h), (long long)(mon + 8 * h + 60000),
                 (long long)(mon + 8 * h + 2000), (long long)(mon + 10 * h + 60000), (long long)(mon + 10 * h + 2000),
                 (long long)(mon + 8 * h), (long long)(mon + 8 * h + 40 * 60000));
        exec_sql(sql);
        ASSERT_EQ(BBT_USAGE_ACTIVE, 2);
        s = open_rw();
        memset(days, 0, sizeof(days));
        ASSERT_OK(bbt_store_days_each(s, INT32_MIN, INT32_MAX, day_cb, days));
        ASSERT_EQ(days[1].day, 20703);
        ASSERT_EQ(days[1].hb_count, 2);
        ASSERT_EQ(days[1].last_msg_ms, 0); /* not yet */
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_rollup_rebuild(s, &c));
        ASSERT_OK(bbt_store_commit(s));
        memset(days, 0, sizeof(days));
        ASSERT_OK(bbt_store_days_each(s, INT32_MIN, INT32_MAX, day_cb, days));
        ASSERT_EQ(days[1].day, 20703);
        ASSERT_EQ(days[1].hb_count, 2);
        ASSERT_EQ(days[1].active_ms, 40 * 60000);
        /* Migrated on to schema 4: the day aggregates follow the rebuild. */
        ASSERT_OK(bbt_store_school_days_each_in(s, NULL, sum_school_days, &t));
        ASSERT_EQ(t.active_ms, 40 * 60000);
        ASSERT_EQ(t.hb_received, 2);
        ASSERT_EQ(days[1].first_msg_ms, mon + 8 * h);  /* 08:01 on its clock, 08:00 true */
        ASSERT_EQ(days[1].last_msg_ms, mon + 10 * h);
        ASSERT_EQ(days[1].last_active_ms, mon + 8 * h + 40 * 60000);
        /* Tuesday: only the terminal's last receive (its raw record is gone). */
        ASSERT_EQ(days[0].day, 20704);
        ASSERT_EQ(days[0].first_msg_ms, mon + 33 * h);
        ASSERT_EQ(days[0].last_msg_ms, mon + 33 * h);
        ASSERT_EQ(days[0].hb_count, 0);
        /* Rebuilt again (new bells): the history stays as it is. */
        c.margin_min = 20;
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_rollup_rebuild(s, &c));
        ASSERT_OK(bbt_store_commit(s));
        memset(days, 0, sizeof(days));
        ASSERT_OK(bbt_store_days_each(s, INT32_MIN, INT32_MAX, day_cb, days));
        ASSERT_EQ(days[1].first_msg_ms, mon + 8 * h);
        ASSERT_EQ(days[1].last_msg_ms, mon + 10 * h);
        ASSERT_EQ(days[1].last_active_ms, mon + 8 * h + 40 * 60000);
        ASSERT_EQ(days[0].last_msg_ms, mon + 33 * h);
        bbt_store_close(s);
}

/* Schema 3 → 4: the day aggregates counted from the rollups already there,
 * under the default day rule. */
TEST(migrates_schema_3)
{
        struct bbt_day_rule rule, def = BBT_DAY_RULE_DEFAULT;
        struct bbt_day_totals t = { 0 };
        uint32_t bits[3] = { 0 };
        struct bbt_store *s;
        char err[256] = "";

        setup();
        s = open_rw();
        bbt_store_close(s);
        exec_sql("DROP TABLE school_span; DROP TABLE mark_span; DELETE FROM meta WHERE key LIKE 'day_rule.%';"
                 "INSERT INTO terminal(id, county, school, terminal, first_seq, high_seq, received, duplicates, lost,"
                 " first_seen_ms, last_seen_ms, last_active_ms, online, boot, online_since_ms, offline_since_ms,"
                 " offline_reason, skew_known, skew_ms, spool_dropped, version, hostname, os, machine_id, last_hb,"
                 " inventory_seq) VALUES(1, '510107', 's1', 't1', 1, 9, 9, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,"
                 " '', '', '', '', '', -1);"
                 /* Day 20000 (bit 0 of its 32): used, 2 of 12 periods; day 20001: on 5 min, 90 heartbeats
                  * where ceil(3,600,000 / 60,000) = 60 count; day 20002: heartbeats only. */
                 "INSERT INTO day_rollup VALUES(1, 20000, 7200000, 1800000, 600000, 10, 7300000,"
                 " 600000, 599999, 0, 0, 0, 0, 0, 0, 0, 0, 0, 700000, 0, 0, 0);"
                 "INSERT INTO day_rollup VALUES(1, 20001, 300000, 0, 0, 90, 3600000, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
                 " 0, 0, 0, 0, 0, 0);"
                 "INSERT INTO day_rollup VALUES(1, 20002, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);"
                 "DROP TABLE terminal_event; DROP TABLE terminal_net;" /* schema 6 */
                 "DROP TABLE audit;" /* schema 7 */
                 "PRAGMA user_version = 3");
        ASSERT_OK(bbt_store_open(path, false, &s, err, sizeof(err)));
        ASSERT_OK(bbt_store_day_rule_get(s, &rule));
        ASSERT_EQ(rule.used_day_ms, def.used_day_ms);
        ASSERT_EQ(rule.used_period_ms, def.used_period_ms);
        ASSERT_EQ(rule.heartbeat_ms, def.heartbeat_ms);
        ASSERT_OK(bbt_store_school_days_each_in(s, NULL, sum_school_days, &t));
        ASSERT_EQ(t.powered, 2);
        ASSERT_EQ(t.used, 1);
        ASSERT_EQ(t.periods_used, 2); /* p1 and p12; p2 is 1 ms short */
        ASSERT_EQ(t.on_ms, 7500000);
        ASSERT_EQ(t.active_ms, 1800000);
        ASSERT_EQ(t.interactive_ms, 600000);
        ASSERT_EQ(t.hb_received, 10 + 60);
        ASSERT_EQ(t.on_all_ms, 7300000 + 3600000);
        ASSERT_OK(bbt_store_day_marks_each_in(s, NULL, or_marks, bits));
        ASSERT_EQ(bits[0], (1u << (20000 % 32)) | (1u << (20001 % 32)));
        ASSERT_EQ(bits[1], 1u << (20000 % 32));
        ASSERT_EQ(bits[2], 2); /* day 20000's p1 and p12 */
        bbt_store_close(s);
}

static int school_days_text(void *u, const struct bbt_store_school_day *d)
{
        char *out = u;
        size_t n = strlen(out);

        snprintf(out + n, 512 - n, "%d/%s:%lld/%lld/%lld/%lld/%lld/%lld/%lld/%lld ", (int)d->day, d->school,
                 (long long)d->t.powered, (long long)d->t.used, (long long)d->t.periods_used, (long long)d->t.on_ms,
                 (long long)d->t.active_ms, (long long)d->t.interactive_ms, (long long)d->t.hb_received,
                 (long long)d->t.on_all_ms);
        return 0;
}

static int seen_day_of(void *u, const struct bbt_store_seen_day *seen)
{
        int32_t *ret = u;

        *ret = seen->day;
        return 0;
}

/* A schema 4 store (day marks without their seen bits, the schools' days a
 * row each) is migrated: the bits are set from the rollups' message times,
 * and seen_days_each reads them (a day with usage but no message is not
 * seen); the schools' days are packed 32 to a row and read back the same. */
TEST(migrates_schema_4)
{
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct bbt_store *s;
        char err[256] = "";
        int32_t day = 0;

        setup();
        s = open_rw();
        bbt_store_close(s);
        /* Schema 4's school_day (county/store/store_sqlite.c's SCHEMA_DAY_AGGREGATES). */
        exec_sql("DROP TABLE mark_span; DROP TABLE school_span;"
                 "CREATE TABLE day_mark(span INTEGER NOT NULL, terminal_id INTEGER NOT NULL, powered INTEGER NOT NULL,"
                 " used INTEGER NOT NULL, lessons_lo INTEGER NOT NULL, lessons_hi INTEGER NOT NULL,"
                 " PRIMARY KEY(span, terminal_id)) WITHOUT ROWID;"
                 "CREATE TABLE school_day(day INTEGER NOT NULL, county TEXT NOT NULL, school TEXT NOT NULL,"
                 " powered INTEGER NOT NULL, used INTEGER NOT NULL, periods_used INTEGER NOT NULL,"
                 " on_ms INTEGER NOT NULL, active_ms INTEGER NOT NULL, interactive_ms INTEGER NOT NULL,"
                 " hb_received INTEGER NOT NULL, on_all_ms INTEGER NOT NULL,"
                 " PRIMARY KEY(day, county, school)) WITHOUT ROWID;"
                 /* Day 20003 and day 20033 (the next span) of s1; day 20003 of s0. */
                 "INSERT INTO school_day VALUES(20003, '510107', 's1', 1, 1, 3, 60000, 60000, 1000, 1, 60000);"
                 "INSERT INTO school_day VALUES(20033, '510107', 's1', 2, 0, 0, 7, 0, 0, 300, 9);"
                 "INSERT INTO school_day VALUES(20003, '510107', 's0', 1, 0, 0, 5, 0, 0, 0, 5);"
                 "INSERT INTO terminal(id, county, school, terminal, first_seq, high_seq, received, duplicates, lost,"
                 " first_seen_ms, last_seen_ms, last_active_ms, online, boot, online_since_ms, offline_since_ms,"
                 " offline_reason, skew_known, skew_ms, spool_dropped, version, hostname, os, machine_id, last_hb,"
                 " inventory_seq) VALUES(1, '510107', 's1', 't1', 1, 9, 9, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,"
                 " '', '', '', '', '', -1);"
                 /* Day 20000: a message; day 20003: usage only. */
                 "INSERT INTO day_rollup VALUES(1, 20000, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
                 " 1728000000000, 1728000000000, 0);"
                 "INSERT INTO day_rollup VALUES(1, 20003, 60000, 60000, 0, 0, 60000, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
                 " 0, 0, 0, 0, 0, 0);"
                 "INSERT INTO day_mark VALUES(625, 1, 8, 8, 0, 0);"
                 "DROP TABLE terminal_event; DROP TABLE terminal_net;" /* schema 6 */
                 "DROP TABLE audit;" /* schema 7 */
                 "PRAGMA user_version = 4");
        ASSERT_OK(bbt_store_open(path, false, &s, err, sizeof(err)));
        scope.to_day = 20010;
        ASSERT_OK(bbt_store_seen_days_each_in(s, &scope, 480, seen_day_of, &day));
        ASSERT_EQ(day, 20000);
        /* The schools' days, now 32 to a row: the same, by day, county, school. */
        {
                char out[512] = "";

                scope.to_day = INT32_MAX;
                ASSERT_OK(bbt_store_school_days_each_in(s, &scope, school_days_text, out));
                ASSERT_STR_EQ(out, "20003/s0:1/0/0/5/0/0/0/5 20003/s1:1/1/3/60000/60000/1000/1/60000 "
                                   "20033/s1:2/0/0/7/0/0/300/9 ");
        }
        bbt_store_close(s);
        /* From the marks, not a look into the rollups: terminal 1, powered
         * 8, used 8, seen 1 (day 20000 is bit 0 of span 625), lessons 0 and 0. */
        {
                sqlite3 *db;
                sqlite3_stmt *st;

                ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
                ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT hex(marks) FROM mark_span WHERE span = 625", -1, &st, NULL),
                          SQLITE_OK);
                ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
                ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), "0100000000000000" "08000000" "08000000"
                                                                        "01000000" "0000000000000000"
                                                                        "0000000000000000");
                sqlite3_finalize(st);
                sqlite3_close(db);
        }
}
