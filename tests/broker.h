/* Test harness: a real mosquitto broker on a free loopback port, TLS/password fixtures, loop helpers. */
#ifndef BBT_TEST_BROKER_H
#define BBT_TEST_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

/* Zero-initialise before the first use. A broker that is still running when
 * the test exits (FAIL, exit(), SIGTERM/SIGINT, or the test runner's SIGKILL
 * through PR_SET_PDEATHSIG) is killed, and its directory removed. */
struct bbt_test_broker {
        pid_t pid;      /* 0 when not running */
        int port;       /* 127.0.0.1:port; kept across kill/restart */
        int slot;       /* 1 + index in the cleanup registry, 0 for none */
        char dir[256];  /* private temporary directory, "" until created */
        char *extra_conf;
        bool own_conf;  /* extra_conf is the whole configuration (bbt_test_broker_start_conf) */
};

/* Starts /usr/sbin/mosquitto (or one found on PATH) with a generated
 * mosquitto.conf in the broker's directory: a listener on 127.0.0.1 and a
 * free port, persistence off, logging to <dir>/mosquitto.log, and
 * "allow_anonymous true" unless EXTRA_CONF (appended after the listener line,
 * so listener options such as certfile apply to it; may be NULL) mentions
 * allow_anonymous. Returns once the port accepts connections. Skips the test
 * (exit 77) if mosquitto is not installed; fails it, printing the broker's
 * log, if it does not come up within 5 s. */
void bbt_test_broker_start(struct bbt_test_broker *b, const char *extra_conf);
/* Like bbt_test_broker_start, but CONF is the whole configuration after the
 * harness's own lines (logging to the broker's directory, persistence there,
 * "user root" as root): no listener and no allow_anonymous are added. In
 * CONF, "@PORT@" becomes the free port the harness chose and "@DIR@" the
 * broker's directory (where fixtures go: bbt_test_broker_dir). CONF must open
 * a listener on 127.0.0.1:@PORT@; the harness waits until it accepts. For
 * testing a shipped configuration with its paths and ports replaced. */
void bbt_test_broker_start_conf(struct bbt_test_broker *b, const char *conf);
/* SIGHUP: mosquitto reads its password file, ACL and CRL again. */
void bbt_test_broker_reload(struct bbt_test_broker *b);
/* SIGTERM (SIGKILL after 5 s), then removes the directory. Idempotent. */
void bbt_test_broker_stop(struct bbt_test_broker *b);
/* SIGKILL, like a crash. Keeps the port, the configuration and the directory. */
void bbt_test_broker_kill(struct bbt_test_broker *b);
/* Starts the broker again on the same port with the same configuration
 * (killing it first if it still runs). */
void bbt_test_broker_restart(struct bbt_test_broker *b);
int bbt_test_broker_port(const struct bbt_test_broker *b);
/* The broker's private directory, created on the first call, for fixtures
 * (certificates, password files) to be named in EXTRA_CONF. */
const char *bbt_test_broker_dir(struct bbt_test_broker *b);
/* Prints the broker's log to stderr. */
void bbt_test_broker_dump_log(const struct bbt_test_broker *b);

/* A loopback TCP port that was free a moment ago. */
int bbt_test_free_port(void);
/* Full path of program NAME in PATH, /usr/sbin or /sbin, into BUF; false if none. */
bool bbt_test_find_program(const char *name, char *buf, size_t size);
/* fork + exec PATH with ARGV: stdin from /dev/null, stdout to OUT_FD and
 * stderr to ERR_FD (may be the same), no other descriptor inherited, signals
 * unblocked and at their defaults, and SIGKILL when this process dies. Fails
 * the test if it cannot fork. The caller reaps the child. */
pid_t bbt_test_spawn(const char *path, char *const argv[], int out_fd, int err_fd);
/* Runs ARGV (argv[0] searched like bbt_test_find_program) with output to
 * LOG_PATH; fails the test, printing the output, unless it exits 0. */
void bbt_test_run_ok(const char *const argv[], const char *log_path);

/* In DIR: a throwaway CA "<ca>.crt"/"<ca>.key" (EC P-256, valid 2 days).
 * Skips the test if openssl is not installed. */
void bbt_test_make_ca(const char *dir, const char *ca);
/* In DIR: "<name>.crt"/"<name>.key" signed by CA, with subjectAltName SAN
 * (e.g. "IP:127.0.0.1,DNS:localhost"), usable by servers and clients. */
void bbt_test_make_cert(const char *dir, const char *ca, const char *name, const char *san);
/* Writes a mosquitto password file PATH with one user. Skips the test if
 * mosquitto_passwd is not installed. */
void bbt_test_make_passwd(const char *path, const char *user, const char *password);

/* Runs LOOP until PRED(ARG) is true (checked at least every 10 ms) or
 * TIMEOUT_MS passed; returns PRED's last answer. PRED may be NULL: then it
 * just runs the loop for TIMEOUT_MS. */
bool bbt_test_run_until(uv_loop_t *loop, bool (*pred)(void *arg), void *arg, int timeout_ms);
/* Lets every pending close/request finish (at most 5 s), fails the test if a
 * handle is still open, then closes LOOP. */
void bbt_test_loop_close(uv_loop_t *loop);
/* Milliseconds on a monotonic clock. */
uint64_t bbt_test_now_ms(void);
void bbt_test_sleep_ms(int ms);
/* Writes TEXT to PATH (created or truncated); fails the test if it cannot. */
void bbt_test_write_file(const char *path, const char *text);

#endif
