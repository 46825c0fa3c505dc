/* What the PostgreSQL backend does beyond the store contract: a location's password never shown, reconnecting, two writers, the migration to packed school-days. */
/* bbt-test: label=unit timeout=60 postgresql */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "test.h"
#ifdef BBT_HAVE_POSTGRESQL
#include <libpq-fe.h>

#include "pg-server.h"
#endif

/* A URI's password, in the user part or as a parameter, is replaced; the rest stays. */
TEST(location_redact)
{
        static const char *const cases[][2] = {
                { "/var/lib/bbt-aggregator/aggregator.db", "/var/lib/bbt-aggregator/aggregator.db" },
                { "postgresql://bbt@db:5432/county", "postgresql://bbt@db:5432/county" },
                { "postgresql://bbt:secret@db:5432/county", "postgresql://bbt:***@db:5432/county" },
                { "postgres://bbt:p%40ss@w0rd@db/county", "postgres://bbt:***@db/county" },
                { "postgresql://bbt:secret@db/county?sslmode=require&password=x&connect_timeout=5",
                  "postgresql://bbt:***@db/county?sslmode=require&password=***&connect_timeout=5" },
                { "postgresql:///county?host=/run/postgresql&password=abc", "postgresql:///county?host=/run/postgresql&password=***" },
                { "postgresql://db/county?password=", "postgresql://db/county?password=***" },
                { "postgresql://db/county?mypassword=x", "postgresql://db/county?mypassword=x" },
                { "postgresql://bbt:secret@", "postgresql://bbt:***@" },
        };
        char buf[256], small[24];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                ASSERT_STR_EQ(bbt_store_location_redact(cases[i][0], buf, sizeof(buf)), cases[i][1]);
        /* Truncated, never past the buffer, and the password still not there. */
        bbt_store_location_redact("postgresql://bbt:secret-secret@db/county", small, sizeof(small));
        ASSERT_EQ(strlen(small), sizeof(small) - 1);
        ASSERT(strstr(small, "secret") == NULL);
        ASSERT_STR_EQ(bbt_store_location_redact(NULL, buf, sizeof(buf)), "");
        ASSERT(bbt_store_location_is_pg("postgres://x") && bbt_store_location_is_pg("postgresql://x"));
        ASSERT(!bbt_store_location_is_pg("/tmp/postgresql://x"));
}

#ifdef BBT_HAVE_POSTGRESQL
static void fresh(char *uri, size_t size)
{
        if (!bbt_test_pg_database(uri, size))
                bbt_test_skip("postgresql: %s", uri);
}

/* Ends every other session on the store's database (what a server restart does to it). */
static void drop_sessions(const char *uri)
{
        PGconn *c = PQconnectdb(uri);
        PGresult *res = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE datname = current_database() AND pid <> pg_backend_pid()");

        ASSERT_EQ(PQresultStatus(res), PGRES_TUPLES_OK);
        ASSERT_STR_EQ(PQgetvalue(res, 0, 0), "1");
        PQclear(res);
        PQfinish(c);
}

/* A connection the server drops is opened again by the next call outside a
 * transaction; inside one, the transaction fails and is rolled back, and the
 * next begins on a new connection. */
TEST(pg_reconnects)
{
        struct bbt_store *s = NULL;
        char uri[512], err[512];
        int64_t v = 0;

        fresh(uri, sizeof(uri));
        ASSERT_OK(bbt_store_open(uri, false, &s, err, sizeof(err)));
        ASSERT_OK(bbt_store_meta_set(s, "x", 1));
        drop_sessions(uri);
        ASSERT_OK(bbt_store_meta_get(s, "x", &v)); /* prepared again on the new session */
        ASSERT_EQ(v, 1);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_meta_set(s, "x", 2));
        drop_sessions(uri);
        ASSERT(bbt_store_meta_set(s, "x", 3) < 0);
        ASSERT(strcmp(bbt_store_error(s), "no error") != 0);
        ASSERT(bbt_store_commit(s) < 0);
        ASSERT_OK(bbt_store_rollback(s));
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_store_meta_get(s, "x", &v));
        ASSERT_EQ(v, 1); /* the lost transaction wrote nothing */
        ASSERT_OK(bbt_store_meta_set(s, "x", 4));
        ASSERT_OK(bbt_store_commit(s));
        ASSERT_OK(bbt_store_meta_get(s, "x", &v));
        ASSERT_EQ(v, 4);
        bbt_store_close(s);
}

static int64_t add_terminal(struct bbt_store *s, const char *code)
{
        struct bbt_store_terminal t = { .first_seq = -1, .high_seq = -1, .boot = -1, .inventory_seq = -1 };

        snprintf(t.county, sizeof(t.county), "510107");
        snprintf(t.school, sizeof(t.school), "S1");
        snprintf(t.terminal, sizeof(t.terminal), "%s", code);
        ASSERT_OK(bbt_store_terminal_insert(s, &t));
        return t.id;
}

/* Two writers on one database (a share group): a terminal's row is held by
 * one transaction at a time; the other is told so at once (0), not made to
 * wait, and gets it, with what the first wrote, once that one commits. A
 * second writer adding a terminal that exists gets -EEXIST and can go on in
 * its transaction. */
TEST(pg_two_writers_lock_terminal_rows)
{
        struct bbt_store *w1 = NULL, *w2 = NULL;
        struct bbt_store_terminal t, row;
        char uri[512], err[512];
        int64_t a, b, n_gaps = 0;
        uint64_t seen = 0;

        fresh(uri, sizeof(uri));
        ASSERT_OK(bbt_store_open(uri, false, &w1, err, sizeof(err)));
        ASSERT_OK(bbt_store_open(uri, false, &w2, err, sizeof(err)));
        a = add_terminal(w1, "a");
        b = add_terminal(w1, "b");

        ASSERT_OK(bbt_store_begin(w1));
        memset(&row, 0, sizeof(row));
        row.id = a;
        ASSERT_EQ(bbt_store_terminal_lock(w1, &row, false, &n_gaps), 1);
        row.received = 5;
        ASSERT_OK(bbt_store_terminal_update(w1, &row));

        ASSERT_OK(bbt_store_begin(w2));
        memset(&t, 0, sizeof(t));
        t.id = a;
        ASSERT_EQ(bbt_store_terminal_lock(w2, &t, false, &n_gaps), 0); /* held by w1 */
        memset(&t, 0, sizeof(t));
        t.id = b;
        ASSERT_EQ(bbt_store_terminal_lock(w2, &t, false, &n_gaps), 1); /* another row: free */
        /* A terminal already there: -EEXIST, and the transaction goes on. */
        memset(&t, 0, sizeof(t));
        t.first_seq = t.high_seq = t.boot = t.inventory_seq = -1;
        snprintf(t.county, sizeof(t.county), "510107");
        snprintf(t.school, sizeof(t.school), "S1");
        snprintf(t.terminal, sizeof(t.terminal), "b");
        ASSERT_EQ(bbt_store_terminal_insert(w2, &t), -EEXIST);
        ASSERT_OK(bbt_store_meta_set(w2, "alive", 1));

        ASSERT_OK(bbt_store_commit(w1));
        memset(&t, 0, sizeof(t));
        t.id = a;
        ASSERT_EQ(bbt_store_terminal_lock(w2, &t, false, &n_gaps), 1);
        ASSERT_EQ(t.received, 5); /* what w1 committed */
        ASSERT_OK(bbt_store_commit(w2));
        ASSERT_OK(bbt_store_meta_get(w1, "alive", (int64_t *)&seen));
        ASSERT_EQ(seen, 1);
        bbt_store_close(w1);
        bbt_store_close(w2);
}

/* A database that is something else is refused, not written into; one that does not exist is -ENOENT. */
TEST(pg_foreign_or_missing_database)
{
        struct bbt_store *s = NULL;
        char uri[512], missing[600], err[512] = "";
        PGconn *c;
        PGresult *res;

        fresh(uri, sizeof(uri));
        c = PQconnectdb(uri);
        res = PQexec(c, "CREATE TABLE invoices(id int)");
        ASSERT_EQ(PQresultStatus(res), PGRES_COMMAND_OK);
        PQclear(res);
        PQfinish(c);
        ASSERT_EQ(bbt_store_open(uri, false, &s, err, sizeof(err)), -EPROTO);
        ASSERT_STR_CONTAINS(err, "not a bbt store");
        snprintf(missing, sizeof(missing), "%s_none", uri);
        ASSERT_EQ(bbt_store_open(missing, false, &s, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "does not exist");
}
static void exec_ok(PGconn *c, const char *sql)
{
        PGresult *res = PQexec(c, sql);

        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                FAIL("%s: %s", sql, PQerrorMessage(c));
        PQclear(res);
}

struct days {
        struct bbt_store_school_day v[256];
        size_t n;
};

static int day_cb(void *u, const struct bbt_store_school_day *d)
{
        struct days *x = u;

        ASSERT_LT(x->n, 256);
        x->v[x->n++] = *d;
        return 0;
}

static void read_days(struct bbt_store *s, int32_t from, int32_t to, struct days *ret)
{
        struct bbt_store_scope scope = { .from_day = from, .to_day = to };

        ret->n = 0;
        ASSERT_OK(bbt_store_school_days_each_in(s, &scope, day_cb, ret));
}

/* A schema 7 store (a row a school-day in school_day) opened by this build:
 * its school-days packed 32 to a row of school_span, the same days and
 * totals read back, school_day gone; days crossing a span's end, two
 * schools, a day with nothing but a heartbeat. */
TEST(pg_migrates_school_days_to_spans)
{
        struct bbt_store *s = NULL;
        struct days before, after;
        char uri[512], err[512], sql[512];
        int64_t ids[3];
        PGconn *c;
        PGresult *res;

        fresh(uri, sizeof(uri));
        ASSERT_OK(bbt_store_open(uri, false, &s, err, sizeof(err)));
        ids[0] = add_terminal(s, "a");
        ids[1] = add_terminal(s, "b");
        {
                struct bbt_store_terminal t = { .first_seq = -1, .high_seq = -1, .boot = -1, .inventory_seq = -1 };

                snprintf(t.county, sizeof(t.county), "510107");
                snprintf(t.school, sizeof(t.school), "S2");
                snprintf(t.terminal, sizeof(t.terminal), "c");
                ASSERT_OK(bbt_store_terminal_insert(s, &t));
                ids[2] = t.id;
        }
        ASSERT_OK(bbt_store_begin(s));
        for (int32_t day = 20340; day < 20360; day++) /* span 635 ends at 20351 */
                for (int i = 0; i < 3; i++) {
                        struct bbt_day_rollup d = { .day = day };

                        if ((day + i) % 5 == 0)
                                continue;
                        d.hb_count = 3 + i;
                        d.on_all_ms = d.on_ms = (day % 3) * 3600000LL + i * 60000;
                        d.active_ms = d.on_ms / 2;
                        d.interactive_ms = d.active_ms / 3;
                        d.period_active_ms[0] = d.active_ms / 4;
                        d.period_active_ms[3] = 1200000;
                        ASSERT_OK(bbt_store_day_add(s, ids[i], &d));
                }
        ASSERT_OK(bbt_store_commit(s));
        read_days(s, 20300, 20400, &before);
        ASSERT(before.n > 30);
        bbt_store_close(s);

        /* Back to schema 7: its table, the same rows, no school_span. */
        c = PQconnectdb(uri);
        ASSERT_EQ(PQstatus(c), CONNECTION_OK);
        exec_ok(c, "BEGIN");
        exec_ok(c, "CREATE TABLE school_day(day bigint NOT NULL, county text NOT NULL, school text NOT NULL,"
                   " powered bigint NOT NULL, used bigint NOT NULL, periods_used bigint NOT NULL,"
                   " on_ms bigint NOT NULL, active_ms bigint NOT NULL, interactive_ms bigint NOT NULL,"
                   " hb_received bigint NOT NULL, on_all_ms bigint NOT NULL, PRIMARY KEY(day, county, school))");
        for (size_t i = 0; i < before.n; i++) {
                const struct bbt_store_school_day *d = &before.v[i];

                snprintf(sql, sizeof(sql),
                         "INSERT INTO school_day VALUES(%d, '%s', '%s', %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld)",
                         (int)d->day, d->county, d->school, (long long)d->t.powered, (long long)d->t.used,
                         (long long)d->t.periods_used, (long long)d->t.on_ms, (long long)d->t.active_ms,
                         (long long)d->t.interactive_ms, (long long)d->t.hb_received, (long long)d->t.on_all_ms);
                exec_ok(c, sql);
        }
        exec_ok(c, "DROP TABLE school_span");
        exec_ok(c, "UPDATE bbt_schema SET version = 7");
        exec_ok(c, "COMMIT");

        /* A reader asks for the migration; a writer makes it. */
        ASSERT(bbt_store_open(uri, true, &s, err, sizeof(err)) < 0);
        ASSERT_OK(bbt_store_open(uri, false, &s, err, sizeof(err)));
        read_days(s, 20300, 20400, &after);
        ASSERT_EQ(after.n, before.n);
        for (size_t i = 0; i < before.n; i++) {
                ASSERT_STR_EQ(after.v[i].county, before.v[i].county);
                ASSERT_STR_EQ(after.v[i].school, before.v[i].school);
                ASSERT_EQ(after.v[i].day, before.v[i].day);
                ASSERT(memcmp(&after.v[i].t, &before.v[i].t, sizeof(after.v[i].t)) == 0);
        }
        /* A cut inside a span: its days alone. */
        read_days(s, 20350, 20353, &after);
        ASSERT(after.n > 0);
        for (size_t i = 0; i < after.n; i++)
                ASSERT(after.v[i].day >= 20350 && after.v[i].day <= 20353);
        bbt_store_close(s);
        res = PQexec(c, "SELECT to_regclass('school_day') IS NULL, (SELECT version FROM bbt_schema),"
                        " (SELECT count(*) FROM school_span)");
        ASSERT_EQ(PQresultStatus(res), PGRES_TUPLES_OK);
        ASSERT_STR_EQ(PQgetvalue(res, 0, 0), "t");
        ASSERT_EQ(atoi(PQgetvalue(res, 0, 1)), BBT_STORE_SCHEMA_VERSION);
        ASSERT_STR_EQ(PQgetvalue(res, 0, 2), "4"); /* S1 and S2, spans 635 and 636 */
        PQclear(res);
        PQfinish(c);
}
#endif
