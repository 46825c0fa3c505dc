/* Test harness: a real mosquitto broker on a free loopback port, TLS/password fixtures, loop helpers. */
#include "broker.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define MAX_BROKERS 16
#define START_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 5000
#define DIR_PREFIX "bbt-broker-"
#define STALE_AFTER_S 600

/* What the exit handler needs, kept apart from the callers' structs, which
 * may live on a stack that is gone by then. */
static struct {
        bool used;
        pid_t pid;
        char dir[256];
} registry[MAX_BROKERS];
static pid_t registry_owner; /* forked children must not clean up the parent's */
static bool handlers_installed;

uint64_t bbt_test_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void bbt_test_sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static void rm_tree(const char *dir)
{
        if (dir[0])
                nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void reap(pid_t pid, int sig)
{
        if (pid <= 0)
                return;
        kill(pid, sig);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

static void cleanup_at_exit(void)
{
        size_t i;

        if (getpid() != registry_owner)
                return;
        for (i = 0; i < MAX_BROKERS; i++) {
                if (!registry[i].used)
                        continue;
                reap(registry[i].pid, SIGKILL);
                rm_tree(registry[i].dir);
                registry[i].used = false;
        }
}

static void cleanup_on_signal(int sig)
{
        size_t i;

        /* Only async-signal-safe calls here; the directory is swept by the
         * next run (see sweep_stale_dirs). */
        if (getpid() == registry_owner)
                for (i = 0; i < MAX_BROKERS; i++)
                        if (registry[i].used && registry[i].pid > 0)
                                kill(registry[i].pid, SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

static const char *tmp_base(void)
{
        const char *t = getenv("TMPDIR");

        return t && t[0] ? t : "/tmp";
}

/* Removes directories left by earlier test processes that were killed: the
 * owner pid in the name no longer exists, and the directory is older than
 * any test may run (a pid from another pid namespace may look dead). */
static void sweep_stale_dirs(void)
{
        char path[512];
        struct dirent *de;
        struct stat st;
        DIR *d = opendir(tmp_base());

        if (!d)
                return;
        while ((de = readdir(d))) {
                char *end;
                long pid;

                if (strncmp(de->d_name, DIR_PREFIX, strlen(DIR_PREFIX)) != 0)
                        continue;
                pid = strtol(de->d_name + strlen(DIR_PREFIX), &end, 10);
                if (pid <= 0 || *end != '-')
                        continue;
                if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", tmp_base(), de->d_name);
                if (stat(path, &st) < 0 || time(NULL) - st.st_mtime < STALE_AFTER_S)
                        continue;
                rm_tree(path);
        }
        closedir(d);
}

static void install_handlers(void)
{
        struct sigaction sa;

        if (handlers_installed)
                return;
        handlers_installed = true;
        registry_owner = getpid();
        sweep_stale_dirs();
        atexit(cleanup_at_exit);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = cleanup_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
}

static void registry_update(struct bbt_test_broker *b)
{
        size_t i;

        install_handlers();
        if (!b->slot) {
                for (i = 0; i < MAX_BROKERS; i++)
                        if (!registry[i].used)
                                break;
                if (i == MAX_BROKERS)
                        FAIL("more than %d test brokers at once", MAX_BROKERS);
                registry[i].used = true;
                b->slot = (int)i + 1;
        }
        registry[b->slot - 1].pid = b->pid;
        snprintf(registry[b->slot - 1].dir, sizeof(registry[0].dir), "%s", b->dir);
}

const char *bbt_test_broker_dir(struct bbt_test_broker *b)
{
        if (!b->dir[0]) {
                install_handlers();
                snprintf(b->dir, sizeof(b->dir), "%s/" DIR_PREFIX "%ld-XXXXXX", tmp_base(),
                         (long)getpid());
                if (!mkdtemp(b->dir))
                        FAIL("mkdtemp %s: %s", b->dir, strerror(errno));
                registry_update(b);
        }
        return b->dir;
}

int bbt_test_broker_port(const struct bbt_test_broker *b)
{
        return b->port;
}

int bbt_test_free_port(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t len = sizeof(sa);
        int fd, port;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                FAIL("socket: %s", strerror(errno));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                FAIL("bind 127.0.0.1:0: %s", strerror(errno));
        port = ntohs(sa.sin_port);
        close(fd);
        return port;
}

bool bbt_test_find_program(const char *name, char *buf, size_t size)
{
        const char *path = getenv("PATH");
        char dirs[4096];
        char *save = NULL, *d;

        if (strchr(name, '/')) {
                snprintf(buf, size, "%s", name);
                return access(buf, X_OK) == 0;
        }
        snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin:/usr/local/sbin", path ? path : "/usr/bin:/bin");
        for (d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                snprintf(buf, size, "%s/%s", d[0] ? d : ".", name);
                if (access(buf, X_OK) == 0)
                        return true;
        }
        return false;
}

static void dump_file(const char *path, const char *title)
{
        char buf[4096];
        size_t n;
        FILE *f = fopen(path, "re");

        if (!f)
                return;
        fprintf(stderr, "---- %s (%s) ----\n", title, path);
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, n, stderr);
        fprintf(stderr, "---- end of %s ----\n", title);
        fclose(f);
}

void bbt_test_broker_dump_log(const struct bbt_test_broker *b)
{
        char path[512];

        if (!b->dir[0])
                return;
        snprintf(path, sizeof(path), "%s/stderr.log", b->dir);
        dump_file(path, "mosquitto stderr");
        snprintf(path, sizeof(path), "%s/mosquitto.log", b->dir);
        dump_file(path, "mosquitto log");
}

pid_t bbt_test_spawn(const char *path, char *const argv[], int out_fd, int err_fd)
{
        pid_t parent = getpid();
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        sigset_t none;
        pid_t pid;

        if (null_fd < 0)
                FAIL("open /dev/null: %s", strerror(errno));
        fflush(stdout);
        fflush(stderr);
        sigemptyset(&none);
        pid = fork();
        if (pid < 0)
                FAIL("fork: %s", strerror(errno));
        if (pid == 0) {
                /* Only async-signal-safe calls between fork and exec. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(127);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                signal(SIGHUP, SIG_DFL);
                signal(SIGPIPE, SIG_DFL);
                if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
                        _exit(127);
                /* Test clients' sockets must not live on in the child. */
                if (close_range(3, ~0U, 0) < 0)
                        for (int fd = 3; fd < 4096; fd++)
                                close(fd);
                execv(path, argv);
                _exit(127);
        }
        close(null_fd);
        return pid;
}

void bbt_test_run_ok(const char *const argv[], const char *log_path)
{
        char path[512];
        int out_fd, status;
        pid_t pid;

        if (!bbt_test_find_program(argv[0], path, sizeof(path)))
                bbt_test_skip("%s not installed", argv[0]);
        out_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out_fd < 0)
                FAIL("open %s: %s", log_path, strerror(errno));
        pid = bbt_test_spawn(path, (char *const *)argv, out_fd, out_fd);
        close(out_fd);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        FAIL("waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                dump_file(log_path, argv[0]);
                FAIL("%s failed (status 0x%x)", argv[0], status);
        }
}

void bbt_test_write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        if (!f)
                FAIL("open %s: %s", path, strerror(errno));
        fputs(text, f);
        if (fclose(f) != 0)
                FAIL("write %s: %s", path, strerror(errno));
}

/* TEXT with every @PORT@ and @DIR@ replaced, into F. */
static void put_substituted(FILE *f, const char *text, const struct bbt_test_broker *b)
{
        for (const char *p = text; *p;) {
                if (strncmp(p, "@PORT@", 6) == 0) {
                        fprintf(f, "%d", b->port);
                        p += 6;
                } else if (strncmp(p, "@DIR@", 5) == 0) {
                        fputs(b->dir, f);
                        p += 5;
                } else {
                        fputc(*p++, f);
                }
        }
}

static void write_conf(struct bbt_test_broker *b)
{
        char path[512], head[1024];
        const char *extra = b->extra_conf ? b->extra_conf : "";
        FILE *f;

        if (b->own_conf) {
                snprintf(path, sizeof(path), "%s/mosquitto.conf", b->dir);
                f = fopen(path, "we");
                if (!f)
                        FAIL("open %s: %s", path, strerror(errno));
                fprintf(f,
                        "# generated by tests/broker.c around a given configuration\n"
                        "log_dest file %s/mosquitto.log\nlog_type all\nlog_timestamp true\n"
                        "connection_messages true\npersistence_location %s/\n%s\n",
                        b->dir, b->dir, geteuid() == 0 ? "user root" : "");
                put_substituted(f, extra, b);
                if (fclose(f) != 0)
                        FAIL("write %s: %s", path, strerror(errno));
                return;
        }
        snprintf(path, sizeof(path), "%s/mosquitto.conf", b->dir);
        snprintf(head, sizeof(head),
                 "# generated by tests/broker.c\n"
                 "persistence false\n"
                 "log_dest file %s/mosquitto.log\n"
                 "log_type all\n"
                 "log_timestamp true\n"
                 "connection_messages true\n"
                 "%s" /* as root, mosquitto would switch to user "mosquitto" */
                 "%s"
                 "listener %d 127.0.0.1\n",
                 b->dir, geteuid() == 0 ? "user root\n" : "",
                 strstr(extra, "allow_anonymous") ? "" : "allow_anonymous true\n", b->port);
        f = fopen(path, "we");
        if (!f)
                FAIL("open %s: %s", path, strerror(errno));
        fprintf(f, "%s%s\n", head, extra);
        if (fclose(f) != 0)
                FAIL("write %s: %s", path, strerror(errno));
}

static long file_size(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Whether FILE contains NEEDLE after byte OFFSET. */
static bool log_has(const char *path, long offset, const char *needle)
{
        char line[1024];
        bool found = false;
        FILE *f = fopen(path, "re");

        if (!f)
                return false;
        if (fseek(f, offset, SEEK_SET) == 0)
                while (!found && fgets(line, sizeof(line), f))
                        found = strstr(line, needle) != NULL;
        fclose(f);
        return found;
}

static bool port_accepts(int port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0)
                return false;
        ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        return ok;
}

enum launch_result { LAUNCH_OK, LAUNCH_PORT_BUSY, LAUNCH_FAILED };

static enum launch_result launch(struct bbt_test_broker *b, const char *exe)
{
        char conf[512], log_path[512], err_path[512], exe_copy[512];
        char *argv[] = { exe_copy, (char *)"-c", conf, NULL };
        uint64_t deadline;
        long log_off, err_off;
        int out_fd, status;

        snprintf(exe_copy, sizeof(exe_copy), "%s", exe);
        snprintf(conf, sizeof(conf), "%s/mosquitto.conf", b->dir);
        snprintf(log_path, sizeof(log_path), "%s/mosquitto.log", b->dir);
        snprintf(err_path, sizeof(err_path), "%s/stderr.log", b->dir);
        write_conf(b);
        log_off = file_size(log_path);
        err_off = file_size(err_path);
        out_fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out_fd < 0)
                FAIL("open %s: %s", err_path, strerror(errno));
        b->pid = bbt_test_spawn(exe, argv, out_fd, out_fd);
        close(out_fd);
        registry_update(b);

        deadline = bbt_test_now_ms() + START_TIMEOUT_MS;
        while (bbt_test_now_ms() < deadline) {
                if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
                        b->pid = 0;
                        registry_update(b);
                        if (log_has(log_path, log_off, "Address already in use") ||
                            log_has(err_path, err_off, "Address already in use"))
                                return LAUNCH_PORT_BUSY;
                        fprintf(stderr, "mosquitto exited with status 0x%x\n", status);
                        return LAUNCH_FAILED;
                }
                /* "running" is logged after the listeners are open; the
                 * connect proves the port is ours and accepting. */
                if (log_has(log_path, log_off, " running") && port_accepts(b->port))
                        return LAUNCH_OK;
                bbt_test_sleep_ms(10);
        }
        fprintf(stderr, "mosquitto did not come up within %d ms\n", START_TIMEOUT_MS);
        reap(b->pid, SIGKILL);
        b->pid = 0;
        registry_update(b);
        return LAUNCH_FAILED;
}

static void start_on(struct bbt_test_broker *b, bool new_port)
{
        char exe[512];
        int tries;

        if (access("/usr/sbin/mosquitto", X_OK) == 0)
                snprintf(exe, sizeof(exe), "/usr/sbin/mosquitto");
        else if (!bbt_test_find_program("mosquitto", exe, sizeof(exe)))
                bbt_test_skip("mosquitto not installed");
        bbt_test_broker_dir(b);
        for (tries = 0; tries < 10; tries++) {
                if (new_port)
                        b->port = bbt_test_free_port();
                switch (launch(b, exe)) {
                case LAUNCH_OK:
                        return;
                case LAUNCH_PORT_BUSY:
                        /* Someone took the port between our probe and the
                         * broker's bind: try another, or wait for it. */
                        if (!new_port)
                                bbt_test_sleep_ms(200);
                        continue;
                case LAUNCH_FAILED:
                        break;
                }
                break;
        }
        bbt_test_broker_dump_log(b);
        FAIL("cannot start mosquitto on 127.0.0.1:%d", b->port);
}

static void start_with(struct bbt_test_broker *b, const char *extra_conf, bool own_conf)
{
        if (b->pid)
                FAIL("test broker already running");
        free(b->extra_conf);
        b->extra_conf = extra_conf ? strdup(extra_conf) : NULL;
        if (extra_conf && !b->extra_conf)
                FAIL("out of memory");
        b->own_conf = own_conf;
        start_on(b, true);
}

void bbt_test_broker_start(struct bbt_test_broker *b, const char *extra_conf)
{
        start_with(b, extra_conf, false);
}

void bbt_test_broker_start_conf(struct bbt_test_broker *b, const char *conf)
{
        start_with(b, conf, true);
}

void bbt_test_broker_reload(struct bbt_test_broker *b)
{
        if (!b->pid)
                FAIL("test broker not running");
        if (kill(b->pid, SIGHUP) < 0)
                FAIL("kill -HUP %d: %s", (int)b->pid, strerror(errno));
}

void bbt_test_broker_restart(struct bbt_test_broker *b)
{
        if (!b->port)
                FAIL("test broker was never started");
        bbt_test_broker_kill(b);
        start_on(b, false);
}

void bbt_test_broker_kill(struct bbt_test_broker *b)
{
        if (!b->pid)
                return;
        reap(b->pid, SIGKILL);
        b->pid = 0;
        registry_update(b);
}

void bbt_test_broker_stop(struct bbt_test_broker *b)
{
        uint64_t deadline;

        if (b->pid) {
                kill(b->pid, SIGTERM);
                deadline = bbt_test_now_ms() + STOP_TIMEOUT_MS;
                while (waitpid(b->pid, NULL, WNOHANG) == 0) {
                        if (bbt_test_now_ms() > deadline) {
                                reap(b->pid, SIGKILL);
                                break;
                        }
                        bbt_test_sleep_ms(10);
                }
                b->pid = 0;
        }
        rm_tree(b->dir);
        if (b->slot)
                registry[b->slot - 1].used = false;
        b->slot = 0;
        b->dir[0] = '\0';
        free(b->extra_conf);
        b->extra_conf = NULL;
}

/* ---- fixtures ---- */

void bbt_test_make_ca(const char *dir, const char *ca)
{
        char cnf[512], key[512], crt[512], log_path[512], text[512];

        snprintf(cnf, sizeof(cnf), "%s/%s.cnf", dir, ca);
        snprintf(key, sizeof(key), "%s/%s.key", dir, ca);
        snprintf(crt, sizeof(crt), "%s/%s.crt", dir, ca);
        snprintf(log_path, sizeof(log_path), "%s/openssl.log", dir);
        /* Our own config, so the result does not depend on the system's. */
        snprintf(text, sizeof(text),
                 "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n"
                 "[dn]\nCN = bbt test CA %s\n"
                 "[ext]\nbasicConstraints = critical,CA:TRUE\n"
                 "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n",
                 ca);
        bbt_test_write_file(cnf, text);
        {
                const char *argv[] = { "openssl", "req", "-x509", "-config", cnf, "-newkey", "ec",
                                       "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                       "-keyout", key, "-out", crt, "-days", "2", NULL };
                bbt_test_run_ok(argv, log_path);
        }
}

void bbt_test_make_cert(const char *dir, const char *ca, const char *name, const char *san)
{
        char cnf[512], key[512], csr[512], crt[512], ca_crt[512], ca_key[512], log_path[512];
        char text[1024], serial[32];
        static unsigned counter;

        snprintf(cnf, sizeof(cnf), "%s/%s.cnf", dir, name);
        snprintf(key, sizeof(key), "%s/%s.key", dir, name);
        snprintf(csr, sizeof(csr), "%s/%s.csr", dir, name);
        snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
        snprintf(ca_crt, sizeof(ca_crt), "%s/%s.crt", dir, ca);
        snprintf(ca_key, sizeof(ca_key), "%s/%s.key", dir, ca);
        snprintf(log_path, sizeof(log_path), "%s/openssl.log", dir);
        snprintf(serial, sizeof(serial), "%lu", (unsigned long)time(NULL) * 1000 + ++counter);
        snprintf(text, sizeof(text),
                 "[req]\ndistinguished_name = dn\nprompt = no\n"
                 "[dn]\nCN = %s\n"
                 "[ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
                 "extendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = %s\n",
                 name, san);
        bbt_test_write_file(cnf, text);
        {
                const char *argv[] = { "openssl", "req", "-new", "-config", cnf, "-newkey", "ec",
                                       "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                       "-keyout", key, "-out", csr, NULL };
                bbt_test_run_ok(argv, log_path);
        }
        {
                const char *argv[] = { "openssl", "x509", "-req", "-in", csr, "-CA", ca_crt,
                                       "-CAkey", ca_key, "-set_serial", serial, "-days", "2",
                                       "-extfile", cnf, "-extensions", "ext", "-out", crt, NULL };
                bbt_test_run_ok(argv, log_path);
        }
}

void bbt_test_make_passwd(const char *path, const char *user, const char *password)
{
        char log_path[600];
        const char *argv[] = { "mosquitto_passwd", "-c", "-b", path, user, password, NULL };

        snprintf(log_path, sizeof(log_path), "%s.log", path);
        bbt_test_run_ok(argv, log_path);
}

/* ---- loop helpers ---- */

static void tick_cb(uv_timer_t *t)
{
        (void)t; /* only wakes uv_run() up */
}

static void tick_close_cb(uv_handle_t *h)
{
        *(bool *)h->data = true;
}

/* REF_TICK false: the tick does not keep the loop alive, for waiting on
 * "no more active handles" (uv_loop_alive). */
static bool run_until(uv_loop_t *loop, bool (*pred)(void *arg), void *arg, int timeout_ms,
                      bool ref_tick)
{
        uint64_t deadline = bbt_test_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
        bool ok = false, closed = false;
        uv_timer_t tick;

        uv_timer_init(loop, &tick);
        uv_timer_start(&tick, tick_cb, 10, 10);
        if (!ref_tick)
                uv_unref((uv_handle_t *)&tick);
        for (;;) {
                ok = pred ? pred(arg) : false;
                if (ok || bbt_test_now_ms() >= deadline)
                        break;
                uv_run(loop, UV_RUN_ONCE);
        }
        tick.data = &closed;
        uv_close((uv_handle_t *)&tick, tick_close_cb);
        while (!closed)
                uv_run(loop, UV_RUN_NOWAIT);
        return ok;
}

bool bbt_test_run_until(uv_loop_t *loop, bool (*pred)(void *arg), void *arg, int timeout_ms)
{
        return run_until(loop, pred, arg, timeout_ms, true);
}

static bool loop_idle(void *arg)
{
        return !uv_loop_alive(arg);
}

static void count_handle(uv_handle_t *h, void *arg)
{
        if (!uv_is_closing(h)) {
                fprintf(stderr, "open handle: %s\n", uv_handle_type_name(uv_handle_get_type(h)));
                (*(int *)arg)++;
        }
}

void bbt_test_loop_close(uv_loop_t *loop)
{
        int open_handles = 0, r;

        run_until(loop, loop_idle, loop, 5000, false);
        uv_walk(loop, count_handle, &open_handles);
        if (open_handles)
                FAIL("%d libuv handle(s) still open", open_handles);
        r = uv_loop_close(loop);
        if (r != 0)
                FAIL("uv_loop_close: %s", uv_strerror(r));
}
