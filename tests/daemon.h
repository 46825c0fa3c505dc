/* Test harness: a private temporary directory, the real daemons as child processes, their logs, and the aggregator's store read-only. */
#ifndef BBT_TEST_DAEMON_H
#define BBT_TEST_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker.h" /* bbt_test_now_ms, bbt_test_sleep_ms, bbt_test_write_file */

/* ---- the temporary directory and cleanup ---- */

/* Creates $TMPDIR/bbt-NAME-test-XXXXXX and registers an exit handler that
 * kills every child started with bbt_test_daemon_start(), runs the hooks
 * added with bbt_test_at_cleanup() (newest first), prints the logs named
 * with bbt_test_dump_on_failure() unless bbt_test_passed() was called (or
 * BBT_TEST_VERBOSE is set: always), and removes the directory. Returns it. */
const char *bbt_test_tmp_init(const char *name);
const char *bbt_test_tmp_dir(void);
/* Runs FN at exit before the directory is removed (e.g. unmounting in it);
 * at most 8 hooks. */
void bbt_test_at_cleanup(void (*fn)(void));
/* A log printed (its last 64 KiB) if the case fails; at most 8. */
void bbt_test_dump_on_failure(const char *path);
/* The same with its last MAX bytes (the first call for a path decides). */
void bbt_test_dump_tail_on_failure(const char *path, long max);
/* The case passed: no logs are printed at exit. */
void bbt_test_passed(void);

/* ---- child processes ---- */

struct bbt_test_daemon {
        pid_t pid;    /* 0 when not running */
        int status;   /* wait status of the last run that ended */
        int starts;
        char log[320];
        char name[32];
};

/* Starts ARGV (argv[0] a full path) with stdin from /dev/null, stdout and
 * stderr appended to LOG, no other descriptor inherited, and SIGKILL when
 * the test process dies. A "==== test: NAME start N ====" line marks each
 * start in LOG. */
void bbt_test_daemon_start(struct bbt_test_daemon *d, const char *name, char *const argv[], const char *log);
/* Whether it ended (then reaped, with d->status set). */
bool bbt_test_daemon_exited(struct bbt_test_daemon *d);
/* Fails the test if it ended. */
void bbt_test_daemon_alive(struct bbt_test_daemon *d);
void bbt_test_daemon_kill9(struct bbt_test_daemon *d);
/* SIGTERM; fails the test unless it exits 0 within TIMEOUT_MS. Returns how
 * long it took. */
int bbt_test_daemon_term(struct bbt_test_daemon *d, int timeout_ms);
/* Runs ARGV (argv[0] a full path) to its end like bbt_test_daemon_start
 * but with stdout appended to OUT_PATH and stderr to ERR_PATH (the same file
 * if equal), no start mark and no log printed on failure; fails the test if
 * it runs longer than TIMEOUT_MS. Returns its wait status. */
int bbt_test_run(char *const argv[], const char *out_path, const char *err_path, int timeout_ms);
/* "exit N" / "killed by signal N". */
const char *bbt_test_status_text(int status);
/* Fails the test if LOG holds a sanitizer report. */
void bbt_test_check_sanitizers(const char *log);
/* The built daemon DIR/NAME under the build tree (e.g. "agent", "bbt-agent"). */
const char *bbt_test_exe(const char *dir, const char *name, char *buf, size_t size);

/* ---- files ---- */

/* The whole file as a string (malloc'ed; "" if unreadable). */
char *bbt_test_slurp(const char *path);
int bbt_test_count_in_file(const char *path, const char *needle);
bool bbt_test_file_contains(const char *path, const char *needle);
void bbt_test_dump_tail(const char *path, long max);
/* Milliseconds since the epoch (CLOCK_REALTIME), for message timestamps. */
int64_t bbt_test_wall_ms(void);

/* Runs STEP (a statement that lets time pass: a sleep, an event loop for a
 * while) until COND or MS milliseconds; then fails with the message. */
#define BBT_WAIT_STEP(cond, ms, step, ...)                                              \
        do {                                                                            \
                uint64_t bbt_deadline_ = bbt_test_now_ms() + (uint64_t)(ms);           \
                while (!(cond)) {                                                       \
                        if (bbt_test_now_ms() > bbt_deadline_) {                        \
                                fprintf(stderr, "timed out after %d ms waiting for %s\n", (int)(ms), #cond); \
                                FAIL(__VA_ARGS__);                                      \
                        }                                                               \
                        step;                                                           \
                }                                                                       \
        } while (0)
/* Waits (polling every 20 ms) until COND or MS milliseconds; then fails with
 * the message. */
#define BBT_WAIT_FOR(cond, ms, ...) BBT_WAIT_STEP(cond, ms, bbt_test_sleep_ms(20), __VA_ARGS__)

/* ---- the aggregator's store (SQLite), read-only while it runs ---- */

/* The first column of the first row of SQL (printf-style) on the store at
 * DB_PATH, as an integer; DEFAULT_VALUE when there is no row, no store yet
 * or no such table. */
int64_t bbt_test_db_int(const char *db_path, int64_t default_value, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* The same, as text into BUF ("" if none). */
const char *bbt_test_db_text(const char *db_path, char *buf, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* The seqs in FROM..TO that SQL (which must select seqs in ascending order)
 * does not return, as "a..b, c..c" into BUF; "" when none is missing. The
 * number of such seqs in *RET_COUNT if not NULL. */
const char *bbt_test_db_missing(const char *db_path, const char *sql, int64_t from, int64_t to, char *buf,
                                size_t size, int64_t *ret_count);

#endif
