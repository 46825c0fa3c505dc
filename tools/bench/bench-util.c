/* bench-util: process, broker, client and store helpers of the benchmarks (see bench-util.h). */
#include "bench-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <sqlite3.h>
#ifdef BBT_HAVE_POSTGRESQL
#include <libpq-fe.h>
#endif

const char *bench_prog = "bench";
bool bench_keep, bench_verbose;
char bench_tmpdir[256];
volatile sig_atomic_t bench_got_signal;

static void (*cleanup_hook)(void);

/* ---- the program ---- */

static void on_signal(int sig)
{
        bench_got_signal = sig;
}

void bench_init(const char *prog, void (*cleanup)(void))
{
        struct sigaction sa;

        bench_prog = prog;
        cleanup_hook = cleanup;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

void bench_die(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s: ", bench_prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (cleanup_hook)
                cleanup_hook();
        exit(1);
}

void bench_check_signal(void)
{
        if (bench_got_signal)
                bench_die("%s: stopping", strsignal(bench_got_signal));
}

long long bench_number(const char *opt, const char *arg, long long min, long long max)
{
        char *end = NULL;
        long long v;

        errno = 0;
        v = strtoll(arg, &end, 10);
        if (errno || end == arg || *end || v < min || v > max)
                bench_die("%s %s: expected an integer %lld..%lld", opt, arg, min, max);
        return v;
}

void bench_raise_nofile(long want_n, char *said, size_t size)
{
        struct rlimit was, rl;
        char why[160] = "";

        if (getrlimit(RLIMIT_NOFILE, &was) < 0)
                bench_die("getrlimit: %s", strerror(errno));
        rl = was;
        if ((rlim_t)want_n > rl.rlim_max) {
                struct rlimit want = { (rlim_t)want_n, (rlim_t)want_n };

                /* Past the hard limit: root (CAP_SYS_RESOURCE) only, up to fs.nr_open. */
                if (setrlimit(RLIMIT_NOFILE, &want) == 0)
                        rl = want;
                else
                        snprintf(why, sizeof(why), "; raising the hard limit to %ld: %s", want_n, strerror(errno));
        }
        rl.rlim_cur = (rlim_t)want_n < rl.rlim_max ? (rlim_t)want_n : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                bench_die("setrlimit: %s", strerror(errno));
        getrlimit(RLIMIT_NOFILE, &rl);
        snprintf(said, size, "RLIMIT_NOFILE %llu (hard %llu; was %llu, hard %llu%s)", (unsigned long long)rl.rlim_cur,
                 (unsigned long long)rl.rlim_max, (unsigned long long)was.rlim_cur, (unsigned long long)was.rlim_max,
                 why);
}

void bench_make_tmpdir(void)
{
        snprintf(bench_tmpdir, sizeof(bench_tmpdir), "%s/%s.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                 bench_prog);
        if (!mkdtemp(bench_tmpdir)) {
                bench_tmpdir[0] = '\0';
                bench_die("mkdtemp: %s", strerror(errno));
        }
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
        (void)st, (void)flag, (void)f;
        return remove(path);
}

void bench_remove_tmpdir(void)
{
        if (!bench_tmpdir[0])
                return;
        if (bench_keep)
                fprintf(stderr, "%s: kept %s\n", bench_prog, bench_tmpdir);
        else
                nftw(bench_tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        bench_tmpdir[0] = '\0';
}

/* ---- time ---- */

double bench_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t bench_real_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bench_sleep_ms(long ms)
{
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        nanosleep(&ts, NULL);
}

/* ---- processes ---- */

pid_t bench_spawn(char *const argv[], const char *log)
{
        pid_t pid = fork();

        if (pid < 0)
                bench_die("fork: %s", strerror(errno));
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

                signal(SIGINT, SIG_IGN); /* the bench stops it; a ^C goes to the bench */
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execvp(argv[0], argv);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        return pid;
}

int bench_stop_pid(pid_t pid)
{
        int status;

        if (pid <= 0)
                return -1;
        if (waitpid(pid, &status, WNOHANG) == pid)
                return status;
        kill(pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                bench_sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return status;
}

int bench_stop_child(pid_t *pid, const char *what)
{
        int status = bench_stop_pid(*pid);

        if (bench_verbose && status != -1)
                fprintf(stderr, "%s: %s %d stopped (status %d)\n", bench_prog, what, (int)*pid, status);
        *pid = -1;
        return status;
}

double bench_cpu_of(pid_t pid)
{
        char path[64], buf[1024], *p;
        unsigned long ut, st;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return -1;
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bench_cpu_self(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long bench_wchar_of(pid_t pid)
{
        char path[64], key[32];
        long long v, ret = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fscanf(f, "%31[^:]: %lld\n", key, &v) == 2)
                if (strcmp(key, "wchar") == 0)
                        ret = v;
        fclose(f);
        return ret;
}

bool bench_mem_of(pid_t pid, long *rss_kb, long *hwm_kb)
{
        char path[64], line[256];
        FILE *f;
        bool any = false;

        *rss_kb = *hwm_kb = -1;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        while (fgets(line, sizeof(line), f)) {
                if (sscanf(line, "VmRSS: %ld", rss_kb) == 1 || sscanf(line, "VmHWM: %ld", hwm_kb) == 1)
                        any = true;
        }
        fclose(f);
        return any;
}

void bench_write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        if (!f || fputs(text, f) < 0 || fclose(f) != 0)
                bench_die("%s: %s", path, strerror(errno));
}

/* ---- the broker ---- */

int bench_free_port(void)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0)
                port = ntohs(a.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}

bool bench_port_open(int port)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok;

        if (fd < 0)
                return false;
        ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        return ok;
}

void bench_broker_start(const char *mosquitto, const char *conf_name, const char *log_name, const char *extra,
                        pid_t *pid, int *port_out)
{
        char conf[512], log[512], text[4096];

        for (int attempt = 0; attempt < 10; attempt++) {
                int port = bench_free_port();
                char *argv[] = { (char *)mosquitto, "-c", conf, NULL };

                snprintf(conf, sizeof(conf), "%s/%s", bench_tmpdir, conf_name);
                snprintf(log, sizeof(log), "%s/%s", bench_tmpdir, log_name);
                /* max_queued_messages: QoS 1 messages beyond those in flight are
                 * queued per client, and dropped beyond this (default 1000);
                 * max_inflight_messages: outgoing QoS 1 in flight per client
                 * (default 20); the byte limits are 0 (none) by default. */
                snprintf(text, sizeof(text),
                         "listener %d 127.0.0.1\n"
                         "allow_anonymous true\n"
                         "persistence false\n"
                         "max_queued_messages 10000000\n"
                         "max_queued_bytes 0\n"
                         "max_inflight_messages 1000\n"
                         "max_inflight_bytes 0\n"
                         "set_tcp_nodelay true\n"
                         "log_dest stderr\n"
                         "log_type error\n"
                         "log_type warning\n"
                         "%s",
                         port, extra ? extra : "");
                bench_write_file(conf, text);
                *pid = bench_spawn(argv, log);
                for (int i = 0; i < 500; i++) {
                        int status;

                        bench_check_signal();
                        if (waitpid(*pid, &status, WNOHANG) == *pid) {
                                *pid = -1;
                                break;
                        }
                        if (bench_port_open(port)) {
                                *port_out = port;
                                return;
                        }
                        bench_sleep_ms(10);
                }
                bench_stop_child(pid, "mosquitto");
        }
        bench_die("cannot start mosquitto on a free port (see %s)", log);
}

/* ---- an MQTT client of the bench's own ---- */

static void pub_on_connect(struct mosquitto *m, void *obj, int rc)
{
        struct bench_pub *p = obj;

        (void)m;
        if (rc != 0)
                bench_die("publisher refused: %s", mosquitto_connack_string(rc));
        p->connected = true;
}

static void pub_on_publish(struct mosquitto *m, void *obj, int mid)
{
        struct bench_pub *p = obj;

        (void)m, (void)mid;
        p->acked++;
}

void bench_pub_open(struct bench_pub *p, const char *client_id, int port, int window)
{
        memset(p, 0, sizeof(*p));
        p->mosq = mosquitto_new(client_id, true, p);
        if (!p->mosq)
                bench_die("mosquitto_new: %s", strerror(errno));
        mosquitto_int_option(p->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        mosquitto_int_option(p->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_max_inflight_messages_set(p->mosq, (unsigned)window);
        mosquitto_connect_callback_set(p->mosq, pub_on_connect);
        mosquitto_publish_callback_set(p->mosq, pub_on_publish);
        if (mosquitto_connect(p->mosq, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS)
                bench_die("publisher: cannot connect to 127.0.0.1:%d", port);
        for (double t0 = bench_now(); !p->connected;) {
                bench_check_signal();
                if (bench_now() - t0 > 10)
                        bench_die("publisher: no CONNACK");
                if (mosquitto_loop(p->mosq, 10, 1) != MOSQ_ERR_SUCCESS)
                        bench_die("publisher: connection lost");
        }
}

void bench_pub_close(struct bench_pub *p)
{
        if (!p->mosq)
                return;
        mosquitto_disconnect(p->mosq);
        mosquitto_loop(p->mosq, 10, 1);
        mosquitto_destroy(p->mosq);
        p->mosq = NULL;
}

/* ---- messages ---- */

void bench_topic(const char *county, const char *school, const char *terminal, enum bbt_channel ch, char *buf,
                 size_t size)
{
        struct bbt_topic tp = { .channel = ch };

        snprintf(tp.county, sizeof(tp.county), "%s", county);
        snprintf(tp.school, sizeof(tp.school), "%s", school);
        snprintf(tp.terminal, sizeof(tp.terminal), "%s", terminal);
        if (bbt_topic_build(&tp, buf, size) < 0)
                bench_die("topic %s/%s: invalid", school, terminal);
}

char *bench_encode_state(int64_t seq, int64_t ts, size_t *len)
{
        struct bbt_msg m;
        struct bbt_error e;
        char *json, ebuf[300];

        bbt_msg_init(&m, BBT_CH_STATE);
        m.seq = seq;
        m.ts = ts;
        m.boot = 3;
        m.body.state.online = true;
        m.body.state.version = "0.1.0";
        m.body.state.hostname = "bbt-classroom";
        m.body.state.os = "Debian GNU/Linux 12 (bookworm)";
        m.body.state.machine_id = "0123456789abcdef0123456789abcdef";
        if (bbt_msg_encode(&m, &json, len, &e) < 0)
                bench_die("encode state: %s", bbt_error_format(&e, ebuf, sizeof(ebuf)));
        return json;
}

/* ---- the aggregator's store, read-only ---- */

bool bench_store_open(struct bench_store *q)
{
        if (q->db || q->pg)
                return true;
        if (strncmp(q->path, "postgresql://", 13) == 0) {
#ifdef BBT_HAVE_POSTGRESQL
                PGconn *c = PQconnectdb(q->path);

                if (PQstatus(c) != CONNECTION_OK) {
                        PQfinish(c);
                        return false;
                }
                q->pg = c;
                return true;
#else
                return false;
#endif
        }
        if (access(q->path, F_OK) != 0)
                return false;
        if (sqlite3_open_v2(q->path, &q->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                sqlite3_close(q->db);
                q->db = NULL;
                return false;
        }
        sqlite3_busy_timeout(q->db, 1000);
        return true;
}

long bench_store_value(struct bench_store *q, const char *sql)
{
        sqlite3_stmt *st;
        long v = -1;

#ifdef BBT_HAVE_POSTGRESQL
        if (q->pg) {
                PGresult *res = PQexec(q->pg, sql);

                if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
                        v = atol(PQgetvalue(res, 0, 0));
                PQclear(res);
                return v;
        }
#endif
        if (!q->db || sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
                return -1;
        if (sqlite3_step(st) == SQLITE_ROW)
                v = (long)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

void bench_store_close(struct bench_store *q)
{
#ifdef BBT_HAVE_POSTGRESQL
        PQfinish(q->pg);
#endif
        q->pg = NULL;
        sqlite3_close(q->db);
        q->db = NULL;
}

void bench_pg_admin(const char *base_uri, const char *sql)
{
#ifdef BBT_HAVE_POSTGRESQL
        char uri[600];
        PGconn *c;
        PGresult *res;

        snprintf(uri, sizeof(uri), "%s/postgres", base_uri);
        c = PQconnectdb(uri);
        res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                bench_die("postgresql: %s: %s", sql, PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
#else
        (void)base_uri;
        (void)sql;
        bench_die("built without PostgreSQL (BBT_POSTGRESQL=OFF)");
#endif
}

/* ---- the aggregator's config ---- */

bool bench_add_set(char *buf, size_t size, const char *set)
{
        const char *dot = strchr(set, '.'), *eq = strchr(set, '=');
        size_t len = strlen(buf);

        if (!dot || !eq || eq < dot)
                return false;
        snprintf(buf + len, size - len, "[%.*s]\n%.*s = %s\n", (int)(dot - set), set, (int)(eq - dot - 1), dot + 1,
                 eq + 1);
        return true;
}

/* ---- statistics ---- */

int bench_cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

double bench_percentile(double *v, size_t n, double p)
{
        size_t rank;

        if (n == 0)
                return NAN;
        qsort(v, n, sizeof(*v), bench_cmp_double);
        rank = (size_t)ceil(p / 100.0 * (double)n);
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return v[rank - 1];
}
