/* bench-util: what the benchmarks that start a broker and an aggregator share.
 *
 * One program at a time: the state (program name, temp dir, the cleanup hook,
 * the signal flag) is global, as it is in a benchmark's main(). Everything that
 * fails here calls bench_die(): the message on stderr prefixed with the
 * program's name, the program's cleanup hook (stop what it started, remove the
 * temp dir), exit 1. */
#ifndef BBT_BENCH_UTIL_H
#define BBT_BENCH_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bbt/protocol.h>

struct mosquitto;
struct sqlite3;
struct sqlite3_stmt;

/* ---- the program ---- */

extern const char *bench_prog;           /* prefix of messages, e.g. "ingest-bench" */
extern bool bench_keep, bench_verbose;   /* --keep, --verbose */
extern char bench_tmpdir[256];           /* "" until bench_make_tmpdir() */
extern volatile sig_atomic_t bench_got_signal;

/* Sets the program name and the cleanup hook bench_die() runs, and catches
 * SIGINT, SIGTERM and SIGHUP (into bench_got_signal); ignores SIGPIPE. */
void bench_init(const char *prog, void (*cleanup)(void));
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* bench_die() if a signal came. */
void bench_check_signal(void);

/* Raises RLIMIT_NOFILE (which children inherit) to WANT: past the hard limit
 * as root, else to the hard limit. Says what it got in SAID. */
void bench_raise_nofile(long want, char *said, size_t size);

/* $TMPDIR/PROG.XXXXXX (or /tmp), into bench_tmpdir. */
void bench_make_tmpdir(void);
/* Removes bench_tmpdir, or says it is kept (--keep); then it is "". */
void bench_remove_tmpdir(void);

/* OPT's argument ARG as an integer in MIN..MAX, or bench_die() saying so. */
long long bench_number(const char *opt, const char *arg, long long min, long long max);

/* ---- time ---- */

double bench_now(void);       /* CLOCK_MONOTONIC, seconds */
int64_t bench_real_ms(void);  /* CLOCK_REALTIME, ms since the epoch */
void bench_sleep_ms(long ms);

/* ---- processes ---- */

/* fork + exec ARGV with stdout and stderr appended to LOG; SIGINT ignored in
 * the child (the bench stops it). */
pid_t bench_spawn(char *const argv[], const char *log);
/* SIGTERM, up to 10 s, then SIGKILL. Returns the wait status, -1 if none. */
int bench_stop_pid(pid_t pid);
/* bench_stop_pid(*PID) (said with --verbose), then *PID = -1. Returns the status. */
int bench_stop_child(pid_t *pid, const char *what);
/* utime + stime of PID in seconds, -1 if unknown. */
double bench_cpu_of(pid_t pid);
/* This process's CPU time in seconds. */
double bench_cpu_self(void);
/* wchar (bytes passed to write(2) and friends) of PID, -1 if unknown. */
long long bench_wchar_of(pid_t pid);
/* VmRSS and VmHWM of PID in kB from /proc/PID/status; false if gone. */
bool bench_mem_of(pid_t pid, long *rss_kb, long *hwm_kb);

void bench_write_file(const char *path, const char *text);

/* ---- the broker ---- */

int bench_free_port(void);
bool bench_port_open(int port);

/* Starts mosquitto (path MOSQUITTO) on 127.0.0.1 on a free port from a
 * generated config in the temp dir (CONF_NAME) that lets it queue everything
 * for a slow QoS 1 subscriber, plus EXTRA (config lines, may be NULL); its
 * output goes to LOG_NAME in the temp dir. Sets *PID as soon as it runs (so
 * that the cleanup hook can stop it) and *PORT when it listens. */
void bench_broker_start(const char *mosquitto, const char *conf_name, const char *log_name, const char *extra,
                        pid_t *pid, int *port);

/* ---- an MQTT client of the bench's own (libmosquitto, this thread) ---- */

struct bench_pub {
        struct mosquitto *mosq;
        long acked;
        bool connected;
};

/* Connects to 127.0.0.1:PORT (MQTT 3.1.1, TCP_NODELAY, clean session, up to
 * WINDOW in flight; CLIENT_ID may be NULL) and waits up to 10 s for the CONNACK. */
void bench_pub_open(struct bench_pub *p, const char *client_id, int port, int window);
void bench_pub_close(struct bench_pub *p);

/* ---- messages ---- */

/* Topic of SCHOOL/TERMINAL of COUNTY, channel CH, into BUF. */
void bench_topic(const char *county, const char *school, const char *terminal, enum bbt_channel ch, char *buf,
                 size_t size);
/* An online state (birth) with SEQ and TS (ms), boot 3, encoded (caller frees). */
char *bench_encode_state(int64_t seq, int64_t ts, size_t *len);

/* ---- the aggregator's store, read-only ---- */

struct bench_store {
        struct sqlite3 *db;
        void *pg;       /* PGconn: PATH is a postgresql:// URI */
        char path[512];
};

/* Opens the store read-only if it is not open yet: an SQLite file, or a
 * postgresql:// URI (if built with PostgreSQL). False while it is not there
 * (or cannot be opened). */
bool bench_store_open(struct bench_store *q);
/* The first column of the first row of SQL as an integer, -1 if none (or the
 * store or its schema is not there yet). */
long bench_store_value(struct bench_store *q, const char *sql);
void bench_store_close(struct bench_store *q);

/* Runs SQL (CREATE/DROP DATABASE) on the maintenance database "postgres" of
 * the PostgreSQL server at BASE_URI (postgresql://USER@HOST:PORT);
 * bench_die() if it fails or the bench is built without PostgreSQL. */
void bench_pg_admin(const char *base_uri, const char *sql);

/* ---- the aggregator's config ---- */

/* Appends "[SECTION]\nKEY = VALUE\n" for SET ("SECTION.KEY=VALUE") to BUF
 * (SIZE bytes). False if SET is not of that form. */
bool bench_add_set(char *buf, size_t size, const char *set);

/* ---- statistics ---- */

int bench_cmp_double(const void *a, const void *b);
/* The P-th percentile (0..100, nearest rank) of the N values of V (sorted in place); NAN if N is 0. */
double bench_percentile(double *v, size_t n, double p);

#endif
