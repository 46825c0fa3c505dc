/* A real PostgreSQL 15 for the tests, in a temporary directory, as an unprivileged user, always stopped. */
#include "pg-server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* Longest a server lives (a guard for a test run killed before its fixture's cleanup). */
#define LIFETIME_S 1800

struct server {
        char dir[128];  /* the temporary directory: data/, the socket, the log */
        int port;
};

static const char *bindir(void)
{
        const char *d = getenv("BBT_PG_BINDIR");

        return d && *d ? d : "/usr/lib/postgresql/15/bin";
}

/* Runs ARGV (no shell) as the unprivileged user when we are root; its output
 * goes to LOG. Returns its exit status, or -1. */
static int run(char *const argv[], const char *log)
{
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -1;
        if (pid == 0) {
                int fd;

                if (geteuid() == 0) {
                        /* initdb and postgres refuse root: the postgres user of
                         * Debian's packages, or nobody. */
                        struct passwd *pw = getpwnam("postgres");

                        if (!pw)
                                pw = getpwnam("nobody");
                        if (!pw || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                                _exit(126);
                }
                /* Opened as that user: the server appends to it too. */
                fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execv(argv[0], argv);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void remove_tree(const char *dir)
{
        char *argv[] = { "/bin/rm", "-rf", (char *)dir, NULL };
        pid_t pid = fork();

        if (pid == 0) {
                execv(argv[0], argv);
                _exit(127);
        }
        if (pid > 0)
                waitpid(pid, NULL, 0);
}

static int free_port(void)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
                port = ntohs(a.sin_port);
        close(fd);
        return port;
}

static void server_stop(const struct server *s)
{
        char data[160], ctl[256], log[160];
        char *argv[] = { ctl, "-D", data, "-m", "immediate", "-w", "stop", NULL };

        if (!s->dir[0])
                return;
        snprintf(ctl, sizeof(ctl), "%s/pg_ctl", bindir());
        snprintf(data, sizeof(data), "%s/data", s->dir);
        snprintf(log, sizeof(log), "%s/ctl.log", s->dir);
        if (access(data, F_OK) == 0)
                run(argv, log);
        remove_tree(s->dir);
}

/* Stops S when WATCH (a pipe's read end, -1: none) reaches end of file — the
 * process that started it is gone, however it ended — or after LIFETIME_S,
 * or not at all if its directory is gone already (stopped by its owner). */
static void watchdog(const struct server *s, int watch)
{
        char data[160];
        pid_t pid = fork();

        if (pid != 0) {
                if (watch >= 0)
                        close(watch);
                return;
        }
        setsid();
        /* Hold nothing of the parent's open: ctest waits for a test's output
         * pipes to close. */
        for (int fd = 0; fd < 1024; fd++)
                if (fd != watch)
                        close(fd);
        open("/dev/null", O_RDWR);
        dup2(0, 1);
        dup2(0, 2);
        snprintf(data, sizeof(data), "%s/data", s->dir);
        for (time_t end = time(NULL) + LIFETIME_S; time(NULL) < end;) {
                struct pollfd p = { .fd = watch, .events = POLLIN };
                char c;

                if (access(data, F_OK) < 0)
                        _exit(0);
                if (watch >= 0 && poll(&p, 1, 1000) > 0 && read(watch, &c, 1) <= 0)
                        break;
                if (watch < 0)
                        sleep(1);
        }
        server_stop(s);
        _exit(0);
}

/* Starts a server in a new temporary directory. Returns 0, 77 (not
 * installed), or 1, with the reason in WHY. */
static int server_start(struct server *s, int watch, char *why, size_t why_size)
{
        char initdb[256], ctl[256], data[160], log[160], opts[512];
        char *init_argv[] = { initdb, "-D", data, "-U", "bbt", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                              "--no-sync", "--no-instructions", NULL };
        char *start_argv[] = { ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", opts, "start", NULL };

        memset(s, 0, sizeof(*s));
        snprintf(initdb, sizeof(initdb), "%s/initdb", bindir());
        snprintf(ctl, sizeof(ctl), "%s/pg_ctl", bindir());
        if (access(initdb, X_OK) < 0 || access(ctl, X_OK) < 0) {
                snprintf(why, why_size, "%s: no PostgreSQL 15 (apt-get install postgresql-15; scripts/install-deps)",
                         initdb);
                return 77;
        }
        snprintf(s->dir, sizeof(s->dir), "/tmp/bbt-pg-XXXXXX");
        if (!mkdtemp(s->dir)) {
                snprintf(why, why_size, "mkdtemp: %s", strerror(errno));
                s->dir[0] = '\0';
                return 1;
        }
        if (geteuid() == 0) {
                struct passwd *pw = getpwnam("postgres");

                if (!pw)
                        pw = getpwnam("nobody");
                if (!pw || chown(s->dir, pw->pw_uid, pw->pw_gid) < 0) {
                        snprintf(why, why_size, "%s: cannot hand it to an unprivileged user", s->dir);
                        remove_tree(s->dir);
                        return 1;
                }
        }
        snprintf(data, sizeof(data), "%s/data", s->dir);
        snprintf(log, sizeof(log), "%s/server.log", s->dir);
        if (run(init_argv, log) != 0) {
                snprintf(why, why_size, "initdb failed (see %s)", log);
                return 1;
        }
        /* A port free a moment ago may be taken by the time the server binds
         * it: a few tries. Loopback only, the socket in our directory; no
         * durability needed. */
        for (int attempt = 0; attempt < 5; attempt++) {
                s->port = free_port();
                snprintf(opts, sizeof(opts),
                         "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off"
                         " -c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB"
                         " -c log_min_messages=warning",
                         s->port, s->dir);
                if (s->port > 0 && run(start_argv, log) == 0) {
                        watchdog(s, watch);
                        return 0;
                }
        }
        snprintf(why, why_size, "pg_ctl start failed (see %s)", log);
        return 1;
}

/* ---- in this process ---- */

static struct server own;
static char uri[96];
static int watch_write = -1;

static void own_stop(void)
{
        server_stop(&own);
        own.dir[0] = '\0';
        if (watch_write >= 0)
                close(watch_write);
}

static bool read_state(const char *state_dir, struct server *s)
{
        char path[512];
        FILE *f;
        bool ok;

        snprintf(path, sizeof(path), "%s/server", state_dir);
        f = fopen(path, "r");
        if (!f)
                return false;
        ok = fscanf(f, "%127s %d", s->dir, &s->port) == 2;
        fclose(f);
        return ok;
}

const char *bbt_test_pg_uri(char *why, size_t why_size)
{
        const char *state = getenv("BBT_TEST_PG");
        struct server fx;
        int pipefd[2], r;

        if (uri[0])
                return uri;
        if (state && *state && read_state(state, &fx)) {
                snprintf(uri, sizeof(uri), "postgresql://bbt@127.0.0.1:%d", fx.port);
                return uri;
        }
        if (state && *state) {
                snprintf(why, why_size, "%s/server: the postgresql fixture did not start a server (see its output)",
                         state);
                return NULL;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                snprintf(why, why_size, "pipe: %s", strerror(errno));
                return NULL;
        }
        r = server_start(&own, pipefd[0], why, why_size);
        if (r != 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                if (own.dir[0])
                        remove_tree(own.dir);
                own.dir[0] = '\0';
                return NULL;
        }
        watch_write = pipefd[1];
        atexit(own_stop);
        snprintf(uri, sizeof(uri), "postgresql://bbt@127.0.0.1:%d", own.port);
        return uri;
}

bool bbt_test_pg_database(char *buf, size_t size)
{
        static int n;
        const char *base = bbt_test_pg_uri(buf, size);
        char admin[160], create[96], name[64];
        PGconn *c;
        PGresult *res;
        bool ok;

        if (!base)
                return false;
        snprintf(admin, sizeof(admin), "%s/postgres", base);
        snprintf(name, sizeof(name), "bbt_%ld_%d", (long)getpid(), ++n);
        snprintf(create, sizeof(create), "CREATE DATABASE %s", name);
        c = PQconnectdb(admin);
        res = PQexec(c, create);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
                snprintf(buf, size, "%s: %s", create, PQerrorMessage(c));
        else
                snprintf(buf, size, "%s/%s", base, name);
        PQclear(res);
        PQfinish(c);
        return ok;
}

/* ---- ctest's fixture ---- */

int bbt_test_pg_fixture_start(const char *state_dir)
{
        struct server s;
        char why[512], path[512];
        FILE *f;
        int r;

        bbt_test_pg_fixture_stop(state_dir); /* a server left by a killed run */
        mkdir(state_dir, 0755);
        r = server_start(&s, -1, why, sizeof(why));
        if (r != 0) {
                fprintf(stderr, "postgresql: %s\n", why);
                if (s.dir[0] && r != 77)
                        remove_tree(s.dir);
                return r;
        }
        snprintf(path, sizeof(path), "%s/server", state_dir);
        f = fopen(path, "w");
        if (!f || fprintf(f, "%s %d\n", s.dir, s.port) < 0 || fclose(f) != 0) {
                fprintf(stderr, "postgresql: %s: %s\n", path, strerror(errno));
                server_stop(&s);
                return 1;
        }
        printf("postgresql: PostgreSQL 15 on 127.0.0.1:%d, in %s\n", s.port, s.dir);
        return 0;
}

int bbt_test_pg_fixture_stop(const char *state_dir)
{
        struct server s;
        char path[512];

        if (!read_state(state_dir, &s))
                return 0;
        server_stop(&s);
        snprintf(path, sizeof(path), "%s/server", state_dir);
        unlink(path);
        printf("postgresql: stopped the server on 127.0.0.1:%d\n", s.port);
        return 0;
}
