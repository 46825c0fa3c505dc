/* api-bench: bbt-web's API latency under concurrent clients on a county's school year, with the response cache and
 * without it (the baseline), in the same run.
 *
 * In a temporary directory (or --dir, reused when it holds a store already)
 * it writes the registry, calendar and store of a generated county's school
 * year (bench-county.h; --schools × --per-school terminals, 200 × 25 = 5,000
 * by default), a users file with a county administrator and a school viewer
 * (of the first school) made by bbt-web-user, and two configurations; then
 * starts two bbt-web on free loopback ports, one with the response cache
 * ([web] cache_size 64M, cache_stale 0: every store change is seen at once)
 * and one without (cache_size 0), and logs in to each.
 *
 * Then, on each server in turn, --clients client threads (one keep-alive
 * connection each, like wrk's) ask:
 *   summary      the county administrator's summary over the school year
 *   schools      the same for the schools report
 *   school page  what the dashboard's school page asks for, as the school
 *                viewer (county/web/www/js/app.js schoolView): the status of
 *                its school, its faults, idle and schools reports over the
 *                year and the record of the year's last week, one after the
 *                other on the connection; "page" is the five together
 * cold: --rounds times, the bench writes to the store (a meta row, through
 * the store API: the store's data_version moves on, as when the aggregator
 * commits a batch) and every client asks once, all at the same moment (after
 * one summary per server, timed apart: the first request after the start
 * opens the store and reads it in); warm:
 * for --duration seconds each client asks again as soon as it has its
 * answer. It prints per endpoint and phase the answers, the rate, the
 * latency's p50, p99 and max (each request from its write to the last byte
 * of its answer, CLOCK_MONOTONIC), bbt-web's CPU time per answer, the cached
 * server's p99 against the 200 ms target, and the uncached / cached ratios.
 *
 * Exit status: 0 measured, 1 something failed (a status other than 200), 2
 * bad usage. SIGINT/SIGTERM/SIGHUP stop the servers and remove the directory. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bbt/base.h"
#include "bench-county.h"
#include "bench-util.h"
#include "dates.h"
#include "store.h"

#ifndef BBT_WEB_PATH
#define BBT_WEB_PATH "bbt-web"
#endif
#ifndef BBT_WEB_USER_PATH
#define BBT_WEB_USER_PATH "bbt-web-user"
#endif

#define FROM "2025-09-01"
#define TO "2026-07-10"
#define LAST_WEEK "2026-07-06"
#define PASSWORD "api-bench password"
#define MAX_CLIENTS 256
#define MAX_PATHS 6

static struct {
        int clients, rounds, threads;
        double duration;
        const char *dir, *web, *web_user;
} opt = {
        .clients = 20,
        .rounds = 5,
        .threads = 4,
        .duration = 10,
        .web = BBT_WEB_PATH,
        .web_user = BBT_WEB_USER_PATH,
};

/* One bbt-web. */
struct server {
        const char *name;
        bool cache;
        pid_t pid;
        int port;
        char conf[600], log[600];
        char admin[128], viewer[128]; /* session cookies */
};

static struct server servers[2] = { { .name = "cache", .cache = true }, { .name = "no cache", .cache = false } };

static void cleanup(void)
{
        for (int i = 0; i < 2; i++)
                bench_stop_child(&servers[i].pid, servers[i].name);
        bench_remove_tmpdir();
}

/* ---- a keep-alive HTTP/1.1 client ---- */

struct conn {
        int fd;
        char buf[65536];
};

static int conn_open(int port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                bench_die("connect to 127.0.0.1:%d: %s", port, strerror(errno));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return fd;
}

/* Writes REQ and reads its answer to the last byte of the body (Content-Length).
 * Returns the status; *COOKIE (if not NULL) gets bbt_session's value from a Set-Cookie. */
static int roundtrip(struct conn *c, const char *req, size_t len, char *cookie, size_t cookie_size)
{
        size_t have = 0, head, body = 0;
        char *end, *p;
        int status = 0;

        for (size_t off = 0; off < len;) {
                ssize_t n = write(c->fd, req + off, len - off);

                if (n <= 0)
                        return -1;
                off += (size_t)n;
        }
        for (;;) {
                ssize_t n = read(c->fd, c->buf + have, sizeof(c->buf) - 1 - have);

                if (n <= 0)
                        return -1;
                have += (size_t)n;
                c->buf[have] = '\0';
                if ((end = strstr(c->buf, "\r\n\r\n")))
                        break;
                if (have == sizeof(c->buf) - 1)
                        return -1;
        }
        head = (size_t)(end + 4 - c->buf);
        sscanf(c->buf, "HTTP/1.1 %d", &status);
        for (p = strstr(c->buf, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
                if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
                        body = strtoul(p + 17, NULL, 10);
                if (cookie && strncasecmp(p + 2, "Set-Cookie: bbt_session=", 24) == 0)
                        snprintf(cookie, cookie_size, "%.*s", (int)strcspn(p + 26, ";\r"), p + 26);
        }
        for (size_t left = head + body > have ? head + body - have : 0; left > 0;) {
                ssize_t n = read(c->fd, c->buf, left < sizeof(c->buf) ? left : sizeof(c->buf));

                if (n <= 0)
                        return -1;
                left -= (size_t)n;
        }
        return status;
}

static void login(struct server *s, const char *user, char *cookie, size_t size)
{
        struct conn *c = malloc(sizeof(*c));
        char req[512], body[128];
        int st;

        snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"" PASSWORD "\"}", user);
        snprintf(req, sizeof(req),
                 "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 strlen(body), body);
        c->fd = conn_open(s->port);
        *cookie = '\0';
        st = roundtrip(c, req, strlen(req), cookie, size);
        close(c->fd);
        free(c);
        if (st != 200 || !*cookie)
                bench_die("%s: login %s: status %d; see %s", s->name, user, st, s->log);
}

/* ---- the clients ---- */

struct samples {
        double *v;
        size_t n, cap;
};

static void sample_add(struct samples *s, double v)
{
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 1024;
                s->v = realloc(s->v, s->cap * sizeof(*s->v));
                if (!s->v)
                        bench_die("out of memory");
        }
        s->v[s->n++] = v;
}

/* What every client asks in a phase, in order; samples[n_paths] is the whole pass. */
static struct {
        const char *names[MAX_PATHS];
        char reqs[MAX_PATHS][1024];
        size_t n_paths;
        int port;
        bool cold;
        double until;           /* warm: the end */
        pthread_barrier_t start, done;
        volatile bool quit;
        int failed_status;
} P;

struct client {
        pthread_t th;
        struct conn c;
        struct samples s[MAX_PATHS + 1];
};

static struct client *clients;

/* One pass: every path once. False on a failure (the status into P). */
static bool pass(struct client *cl)
{
        double t0 = bench_now();

        for (size_t i = 0; i < P.n_paths; i++) {
                double a = bench_now();
                int st = roundtrip(&cl->c, P.reqs[i], strlen(P.reqs[i]), NULL, 0);

                if (st != 200) {
                        P.failed_status = st;
                        return false;
                }
                sample_add(&cl->s[i], bench_now() - a);
        }
        if (P.n_paths > 1)
                sample_add(&cl->s[P.n_paths], bench_now() - t0);
        return true;
}

static void *client_main(void *u)
{
        struct client *cl = u;

        for (;;) {
                pthread_barrier_wait(&P.start);
                if (P.quit)
                        return NULL;
                if (P.cold) {
                        if (!pass(cl))
                                P.quit = true;
                } else {
                        while (!P.quit && bench_now() < P.until)
                                if (!pass(cl))
                                        P.quit = true;
                }
                pthread_barrier_wait(&P.done);
        }
}

struct result {
        size_t n;
        double rate, p50, p99, max, cpu_ms;
};

static void print_row(const char *server, const char *name, const char *phase, const struct result *r)
{
        printf("%-9s %-12s %-5s %7zu %8.1f %9.1f %9.1f %9.1f %8.2f\n", server, name, phase, r->n, r->rate,
               r->p50 * 1000, r->p99 * 1000, r->max * 1000, r->cpu_ms);
}

/* The clients' samples of path I into R (and cleared). */
static void collect(size_t i, double secs, double cpu, size_t answers, struct result *r)
{
        struct samples all = { 0 };

        for (int c = 0; c < opt.clients; c++) {
                for (size_t k = 0; k < clients[c].s[i].n; k++)
                        sample_add(&all, clients[c].s[i].v[k]);
                clients[c].s[i].n = 0;
        }
        r->n = all.n;
        r->rate = secs > 0 ? (double)all.n / secs : 0;
        r->p50 = bench_percentile(all.v, all.n, 50);
        r->p99 = bench_percentile(all.v, all.n, 99);
        r->max = all.n ? all.v[all.n - 1] : NAN;
        r->cpu_ms = answers ? cpu * 1000 / (double)answers : 0;
        free(all.v);
}

/* Runs a phase of server S over the paths in P; RES[i] for each path and the pass. */
static void phase(struct server *s, struct bbt_store *store, bool cold, struct result *res)
{
        double t0, secs, cpu0, cpu;
        size_t answers = 0;

        P.cold = cold;
        cpu0 = bench_cpu_of(s->pid);
        t0 = bench_now();
        for (int round = 0; round < (cold ? opt.rounds : 1); round++) {
                bench_check_signal();
                if (cold) {
                        /* A commit of another connection: the store's change marker moves on. */
                        if (bbt_store_meta_set(store, "api_bench", (int64_t)(bench_now() * 1000)) < 0)
                                bench_die("store: %s", bbt_store_error(store));
                } else {
                        P.until = bench_now() + opt.duration;
                }
                pthread_barrier_wait(&P.start);
                pthread_barrier_wait(&P.done);
                if (P.quit)
                        bench_die("%s: a request got status %d; see %s", s->name, P.failed_status, s->log);
        }
        secs = bench_now() - t0;
        cpu = bench_cpu_of(s->pid) - cpu0;
        for (int c = 0; c < opt.clients; c++)
                answers += clients[c].s[0].n * P.n_paths;
        for (size_t i = 0; i <= P.n_paths; i++)
                if (i < P.n_paths || P.n_paths > 1)
                        collect(i, cold ? 0 : secs, cpu, answers, &res[i]);
}

/* ---- setup ---- */

static void run_with_stdin(char *const argv[], const char *input, const char *log)
{
        int fds[2], status;
        pid_t pid;

        if (pipe(fds) < 0)
                bench_die("pipe: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
                bench_die("fork: %s", strerror(errno));
        if (pid == 0) {
                dup2(fds[0], 0);
                close(fds[1]);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execv(argv[0], argv);
                _exit(127);
        }
        close(fds[0]);
        if (write(fds[1], input, strlen(input)) < 0)
                bench_die("write: %s", strerror(errno));
        close(fds[1]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                bench_die("%s %s %s failed; see %s", argv[0], argv[1], argv[2], log);
}

static void write_users(const char *conf, const char *school, char *users, size_t size)
{
        char log[600];
        char *admin[] = { (char *)opt.web_user, "add", "admin", "--role", "county", "--password-stdin", "-f", users,
                          "-c", (char *)conf, NULL };
        char *viewer[] = { (char *)opt.web_user, "add", "viewer", "--role", "school", "--school", (char *)school,
                           "--password-stdin", "-f", users, "-c", (char *)conf, NULL };

        snprintf(users, size, "%s/users", bench_tmpdir);
        snprintf(log, sizeof(log), "%s/web-user.log", bench_tmpdir);
        unlink(users);
        run_with_stdin(admin, PASSWORD "\n", log);
        run_with_stdin(viewer, PASSWORD "\n", log);
}

static void start_server(struct server *s, const char *base_conf, const char *users)
{
        char *argv[] = { (char *)opt.web, "-c", s->conf, NULL };
        FILE *f;

        s->port = bench_free_port();
        snprintf(s->log, sizeof(s->log), "%s/web-%s.log", bench_tmpdir, s->cache ? "cache" : "nocache");
        unlink(s->log);
        f = bench_create(s->cache ? "web-cache.conf" : "web-nocache.conf", s->conf, sizeof(s->conf));
        fprintf(f, "%s[web]\nlisten = 127.0.0.1:%d\nusers = %s\naudit_log = %s/audit-%d.log\nstatic_dir = %s\n"
                   "threads = %d\ncache_size = %s\ncache_stale = 0\n",
                base_conf, s->port, users, bench_tmpdir, s->port, bench_tmpdir, opt.threads,
                s->cache ? "64M" : "0");
        bench_finish(f, s->conf);
        s->pid = bench_spawn(argv, s->log);
        for (int i = 0; i < 1000 && !bench_port_open(s->port); i++) {
                if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
                        s->pid = -1;
                        bench_die("%s: bbt-web stopped; see %s", s->name, s->log);
                }
                bench_sleep_ms(10);
        }
        if (!bench_port_open(s->port))
                bench_die("%s: bbt-web does not listen; see %s", s->name, s->log);
        login(s, "admin", s->admin, sizeof(s->admin));
        login(s, "viewer", s->viewer, sizeof(s->viewer));
}

/* The first report after the start (opening the store, reading its pages in),
 * timed apart: the phases measure a running server. */
static void first_request(struct server *s, const char *path)
{
        struct conn *c = malloc(sizeof(*c));
        char req[1024];
        double t0;
        int st;

        if (!c)
                bench_die("out of memory");
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: bbt_session=%s\r\n\r\n", path,
                 s->admin);
        c->fd = conn_open(s->port);
        t0 = bench_now();
        st = roundtrip(c, req, strlen(req), NULL, 0);
        if (st != 200)
                bench_die("%s: %s: status %d; see %s", s->name, path, st, s->log);
        printf("%s: the first request after the start (summary): %.1f ms\n", s->name, (bench_now() - t0) * 1000);
        close(c->fd);
        free(c);
}

static void set_paths(const struct server *s, const char *const *names, const char *const *paths, size_t n,
                      const char *cookie)
{
        P.n_paths = n;
        P.port = s->port;
        for (size_t i = 0; i < n; i++) {
                P.names[i] = names[i];
                snprintf(P.reqs[i], sizeof(P.reqs[i]),
                         "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: bbt_session=%s\r\n\r\n", paths[i], cookie);
        }
}

static void connect_clients(const struct server *s)
{
        for (int c = 0; c < opt.clients; c++) {
                if (clients[c].c.fd > 0)
                        close(clients[c].c.fd);
                clients[c].c.fd = conn_open(s->port);
        }
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: api-bench [OPTION]...\n"
                "bbt-web's API latency (p50, p99, max) for the summary, the schools report and a school\n"
                "page under concurrent keep-alive clients, with the response cache and without it.\n"
                "\n"
                "      --schools N     schools (default 200)\n"
                "      --per-school N  terminals per school (default 25)\n"
                "  -c, --clients N     concurrent clients (default 20)\n"
                "  -d, --duration S    seconds of each warm phase (default 10)\n"
                "  -r, --rounds N      cold rounds: a store change, then every client asks once (default 5)\n"
                "      --threads N     bbt-web's [web] threads (default 4, its default)\n"
                "      --dir DIR       work in DIR and keep it; a store there is used again (--schools and\n"
                "                      --per-school must then be those it was built with)\n"
                "      --web PATH      bbt-web to run (default the one built with this)\n"
                "      --web-user PATH bbt-web-user to run (default the one built with this)\n"
                "  -k, --keep          keep the temporary directory (CSVs, config, store, logs)\n"
                "  -h, --help          show this help\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "schools", required_argument, NULL, 'S' },  { "per-school", required_argument, NULL, 'P' },
                { "clients", required_argument, NULL, 'c' },  { "duration", required_argument, NULL, 'd' },
                { "rounds", required_argument, NULL, 'r' },   { "threads", required_argument, NULL, 'T' },
                { "dir", required_argument, NULL, 'D' },      { "web", required_argument, NULL, 'W' },
                { "web-user", required_argument, NULL, 'U' }, { "keep", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
        };
        static const char *const page_names[] = { "status", "faults", "idle", "record", "schools", "page" };
        char schools[512], terminals[512], calendar[512], store_path[512], users[512], base[4096], school[32];
        char summary_q[256], schools_q[256], page_q[5][256];
        struct result res[2][3][MAX_PATHS + 1][2]; /* server, group, path, cold/warm */
        struct bbt_store *store;
        struct stat st;
        char err[512];
        int32_t from, to;
        double load[3];
        int c;

        bench_init("api-bench", cleanup);
        bench_county.schools = 200;
        while ((c = getopt_long(argc, argv, "c:d:r:kh", longopts, NULL)) != -1) {
                switch (c) {
                case 'S': bench_county.schools = (int)bench_number("--schools", optarg, 1, 9999); break;
                case 'P': bench_county.per_school = (int)bench_number("--per-school", optarg, 1, 99); break;
                case 'c': opt.clients = (int)bench_number("--clients", optarg, 1, MAX_CLIENTS); break;
                case 'd': opt.duration = (double)bench_number("--duration", optarg, 1, 3600); break;
                case 'r': opt.rounds = (int)bench_number("--rounds", optarg, 1, 1000); break;
                case 'T': opt.threads = (int)bench_number("--threads", optarg, 1, 64); break;
                case 'D': opt.dir = optarg; break;
                case 'W': opt.web = optarg; break;
                case 'U': opt.web_user = optarg; break;
                case 'k': bench_keep = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (opt.dir) {
                if (mkdir(opt.dir, 0700) < 0 && errno != EEXIST)
                        bench_die("%s: %s", opt.dir, strerror(errno));
                snprintf(bench_tmpdir, sizeof(bench_tmpdir), "%s", opt.dir);
                bench_keep = true;
        } else {
                bench_make_tmpdir();
        }
        bbt_day_parse(FROM, &from);
        bbt_day_parse(TO, &to);
        snprintf(store_path, sizeof(store_path), "%s/aggregator.db", bench_tmpdir);
        bench_county_write_registry(schools, terminals, sizeof(schools));
        bench_county_write_calendar(calendar, sizeof(calendar));
        if (stat(store_path, &st) == 0) {
                printf("api-bench: the store of %s again (%.1f MiB)\n", store_path, (double)st.st_size / 1048576.0);
        } else {
                struct bench_county_built b = bench_county_build_store(store_path, calendar, from, to);

                printf("api-bench: %d schools × %d terminals = %d terminals; %ld school days in " FROM ".." TO
                       "; %ld terminal-days, %ld open faults; store built in %.1f s\n",
                       bench_county.schools, bench_county.per_school, bench_county.schools * bench_county.per_school,
                       b.school_days, b.terminal_days, b.faults, b.secs);
        }
        snprintf(base, sizeof(base), "[store]\npath = %s\n[registry]\nschools = %s\nterminals = %s\ncalendar = %s\n",
                 store_path, schools, terminals, calendar);
        {
                char conf[600];
                FILE *f = bench_create("aggregator.conf", conf, sizeof(conf));

                fputs(base, f);
                bench_finish(f, conf);
                bench_county_school(0, school, sizeof(school));
                write_users(conf, school, users, sizeof(users));
        }
        for (int i = 0; i < 2; i++)
                start_server(&servers[i], base, users);
        if (bbt_store_open(store_path, false, &store, err, sizeof(err)) < 0)
                bench_die("store: %s", err);

        snprintf(summary_q, sizeof(summary_q), "/api/v1/reports/summary?from=" FROM "&to=" TO "&lang=zh");
        snprintf(schools_q, sizeof(schools_q), "/api/v1/reports/schools?from=" FROM "&to=" TO "&lang=zh");
        snprintf(page_q[0], sizeof(page_q[0]), "/api/v1/status?school=%s", school);
        snprintf(page_q[1], sizeof(page_q[1]), "/api/v1/reports/faults?from=" FROM "&to=" TO "&school=%s&lang=zh",
                 school);
        snprintf(page_q[2], sizeof(page_q[2]), "/api/v1/reports/idle?from=" FROM "&to=" TO "&school=%s&lang=zh",
                 school);
        snprintf(page_q[3], sizeof(page_q[3]), "/api/v1/reports/record?week=" LAST_WEEK "&school=%s&lang=zh",
                 school);
        snprintf(page_q[4], sizeof(page_q[4]), "/api/v1/reports/schools?from=" FROM "&to=" TO "&school=%s&lang=zh",
                 school);

        for (int i = 0; i < 2; i++)
                first_request(&servers[i], summary_q);
        clients = calloc((size_t)opt.clients, sizeof(*clients));
        if (!clients)
                bench_die("out of memory");
        pthread_barrier_init(&P.start, NULL, (unsigned)opt.clients + 1);
        pthread_barrier_init(&P.done, NULL, (unsigned)opt.clients + 1);
        for (int i = 0; i < opt.clients; i++)
                if (pthread_create(&clients[i].th, NULL, client_main, &clients[i]) != 0)
                        bench_die("pthread_create failed");

        if (getloadavg(load, 3) == 3)
                printf("load average before: %.2f %.2f %.2f; %ld CPUs online\n", load[0], load[1], load[2],
                       sysconf(_SC_NPROCESSORS_ONLN));
        printf("%d clients, bbt-web threads %d, warm phases %.0f s, cold %d rounds\n", opt.clients, opt.threads,
               opt.duration, opt.rounds);
        printf("%-9s %-12s %-5s %7s %8s %9s %9s %9s %8s\n", "server", "endpoint", "phase", "answers", "req/s",
               "p50 ms", "p99 ms", "max ms", "cpu ms");
        for (int g = 0; g < 3; g++) {
                /* The two servers one after the other per group, so a neighbour's load falls on both alike. */
                for (int si = 0; si < 2; si++) {
                        struct server *s = &servers[si];
                        const char *const one[] = { g == 0 ? "summary" : "schools" };
                        const char *const q1[] = { g == 0 ? summary_q : schools_q };
                        const char *const qp[] = { page_q[0], page_q[1], page_q[2], page_q[3], page_q[4] };

                        if (g < 2)
                                set_paths(s, one, q1, 1, s->admin);
                        else
                                set_paths(s, page_names, qp, 5, s->viewer);
                        connect_clients(s);
                        for (int ph = 0; ph < 2; ph++) {
                                struct result tmp[MAX_PATHS + 1];

                                phase(s, store, ph == 0, tmp);
                                for (size_t i = 0; i <= P.n_paths; i++)
                                        res[si][g][i][ph] = tmp[i];
                        }
                        for (size_t i = 0; i <= P.n_paths && (i < P.n_paths || P.n_paths > 1); i++)
                                for (int ph = 0; ph < 2; ph++)
                                        print_row(s->name, g < 2 ? one[0] : page_names[i], ph ? "warm" : "cold",
                                                  &res[si][g][i][ph]);
                }
        }
        if (getloadavg(load, 3) == 3)
                printf("load average after: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
        {
                static const char *const gnames[] = { "summary", "schools", "page" };
                bool pass = true;

                for (int g = 0; g < 3; g++) {
                        size_t key = g < 2 ? 0 : 5, n = g < 2 ? 1 : 5;

                        for (int ph = 0; ph < 2; ph++) {
                                const struct result *a = &res[0][g][key][ph], *b = &res[1][g][key][ph];

                                printf("%-8s %s: p99 %.1f ms with the cache, %.1f ms without (%.1f×), p50 %.1f×",
                                       gnames[g], ph ? "warm" : "cold", a->p99 * 1000, b->p99 * 1000,
                                       b->p99 / a->p99, b->p50 / a->p50);
                                if (ph)
                                        printf(", %.0f vs %.0f req/s (%.1f×)", a->rate, b->rate, a->rate / b->rate);
                                printf("\n");
                                /* The target is per request: each endpoint's p99 (not the page's five together). */
                                for (size_t i = 0; i < n; i++)
                                        if (res[0][g][i][ph].p99 >= 0.2) {
                                                printf("  MISS: %s %s p99 %.1f ms >= 200 ms\n",
                                                       g < 2 ? gnames[g] : page_names[i], ph ? "warm" : "cold",
                                                       res[0][g][i][ph].p99 * 1000);
                                                pass = false;
                                        }
                        }
                }
                printf("verdict: %s\n", pass ? "PASS (with the cache every endpoint's p99 < 200 ms, cold and warm)"
                                              : "MISS (above)");
        }
        P.quit = true;
        pthread_barrier_wait(&P.start);
        for (int i = 0; i < opt.clients; i++) {
                pthread_join(clients[i].th, NULL);
                close(clients[i].c.fd);
                for (int k = 0; k <= MAX_PATHS; k++)
                        free(clients[i].s[k].v);
        }
        free(clients);
        bbt_store_close(store);
        printf("to repeat: %s%s%s\n", argv[0], opt.dir ? " --dir " : "", opt.dir ? opt.dir : "");
        cleanup();
        return 0;
}
