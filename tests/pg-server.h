/* A real PostgreSQL 15 for the tests: one server per test run (ctest's
 * postgresql fixture) or per test binary, in a temporary directory, always stopped. */
#ifndef BBT_TEST_PG_SERVER_H
#define BBT_TEST_PG_SERVER_H

#include <stdbool.h>
#include <stddef.h>

/* The server's base URI, "postgresql://bbt@127.0.0.1:PORT" (trust
 * authentication, loopback only). The server is the one ctest's
 * postgresql.start fixture started (the environment's BBT_TEST_PG names its
 * state directory) or, when the binary runs alone, one this process starts
 * on first use and stops at exit. NULL, with the reason in WHY, if none can
 * run here (no /usr/lib/postgresql/15/bin: scripts/install-deps). */
const char *bbt_test_pg_uri(char *why, size_t why_size);

/* Creates a new, empty database and writes its URI into BUF. Returns false,
 * with the reason in BUF, if no server can run here. */
bool bbt_test_pg_database(char *buf, size_t size);

/* The fixture's two halves (tests/pg-fixture.c): starts a server whose state
 * (temporary directory, port) is written to STATE_DIR; stops it and removes
 * its directory. Each returns 0, 77 if PostgreSQL is not installed, or 1. */
int bbt_test_pg_fixture_start(const char *state_dir);
int bbt_test_pg_fixture_stop(const char *state_dir);

#endif
