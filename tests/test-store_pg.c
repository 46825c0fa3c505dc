/* What the PostgreSQL backend does beyond the store contract: a location's password never shown, reconnecting. */
/* bbt-test: label=unit timeout=60 postgresql */
#include <errno.h>
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
#endif
