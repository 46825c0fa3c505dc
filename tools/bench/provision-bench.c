/* provision-bench: bbt-provision on the load benchmark's 20,000-terminal registry, and the county broker loading and reloading what it makes.
 *
 * In a temporary directory, on 127.0.0.1:
 *
 *   1. bbt-sim --only-files writes the registry load-bench uses (200 schools of
 *      100 terminals, county 510199, seed 1);
 *   2. the baseline: mosquitto_passwd -U hashes a file of as many plain
 *      user:password lines, the one step every way of provisioning a mosquitto
 *      password file must take, done by mosquitto's own tool;
 *   3. bbt-provision: the first run; a second with nothing changed; one with
 *      --rotate of one terminal; --client-certs (a key and a certificate per
 *      terminal) into a second directory; --acl explicit into a third;
 *   4. mosquitto with broker-config/mosquitto-county.conf (paths and ports
 *      replaced, as the tests do) and the files of the pattern output, then of
 *      the explicit one: time from exec until it listens, and its RSS;
 *   5. for each: SIGHUP with no client connected, then with every terminal
 *      connected (plain MQTT 3.1.1 clients of this process on the loopback
 *      listener, each with its own user name and password from its bundle) -
 *      the reload time is from the signal until a probe's CONNACK, since
 *      mosquitto reloads before it serves anything else - and whether every
 *      connected terminal still answers a PINGREQ afterwards.
 *
 * Bounded: every wait has a limit. Exit status: 0 measured, 3 a reload dropped
 * terminals, 1 something failed, 2 bad usage. SIGINT, SIGTERM, SIGHUP: stop
 * what was started, remove the temp dir, exit 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"

#ifndef BBT_PROVISION_PATH
#define BBT_PROVISION_PATH "bbt-provision"
#endif
#ifndef BBT_SIM_PATH
#define BBT_SIM_PATH "bbt-sim"
#endif
#ifndef BBT_COUNTY_CONF
#define BBT_COUNTY_CONF "/usr/share/bbt/broker-config/mosquitto-county.conf"
#endif

#define CONNECTS_IN_FLIGHT 50 /* mosquitto listens with a backlog of 100 */

static struct {
        int schools, terminals, clients;
        bool explicit_acl, certs, markdown;
        const char *provision, *sim, *mosquitto, *mosquitto_passwd, *county_conf, *county;
} opt = {
        .schools = 200,
        .terminals = 100,
        .clients = -1,
        .explicit_acl = true,
        .certs = true,
        .provision = BBT_PROVISION_PATH,
        .sim = BBT_SIM_PATH,
        .mosquitto = "mosquitto",
        .mosquitto_passwd = "mosquitto_passwd",
        .county_conf = BBT_COUNTY_CONF,
        .county = "510199",
};

static pid_t broker_pid = -1;

static void cleanup(void)
{
        bench_stop_child(&broker_pid, "mosquitto");
        bench_remove_tmpdir();
}

/* ---- running a program ---- */

struct timed {
        double wall, cpu;
};

/* Runs ARGV to its end (output to LOG), dies unless it exits 0; its wall and CPU time. */
static struct timed run_timed(char *const argv[], const char *log)
{
        struct timed t = { 0 };
        struct rusage ru;
        double t0 = bench_now();
        pid_t pid = bench_spawn(argv, log);
        int status;

        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        bench_die("wait4: %s", strerror(errno));
        t.wall = bench_now() - t0;
        t.cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                (double)ru.ru_stime.tv_usec / 1e6;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                bench_die("%s failed (status 0x%x; see %s)", argv[0], status, log);
        if (bench_verbose)
                printf("%s: %s: %.2f s wall, %.2f s CPU\n", bench_prog, argv[0], t.wall, t.cpu);
        return t;
}

static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "re");
        char *buf;
        long n;

        if (!f)
                bench_die("%s: %s", path, strerror(errno));
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        buf = malloc((size_t)n + 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
                bench_die("%s: cannot read", path);
        buf[n] = '\0';
        fclose(f);
        if (len)
                *len = (size_t)n;
        return buf;
}

static long count_lines(const char *text)
{
        long n = 0;

        for (; *text; text++)
                n += *text == '\n';
        return n;
}

/* ---- the registry and its credentials ---- */

struct terminal {
        char user[160], password[64];
};

static struct terminal *terms;
static size_t n_terms;

/* The terminals of the registry, with their passwords from the bundles in OUT. */
static void read_terminals(const char *regdir, const char *out)
{
        char path[1024], line[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/terminals.csv", regdir);
        f = fopen(path, "re");
        if (!f)
                bench_die("%s: %s", path, strerror(errno));
        terms = calloc((size_t)opt.schools * (size_t)opt.terminals + 1, sizeof(*terms));
        if (!terms || !fgets(line, sizeof(line), f))
                bench_die("%s: empty", path);
        while (fgets(line, sizeof(line), f) && n_terms < (size_t)opt.schools * (size_t)opt.terminals) {
                char school[64], id[64];
                struct terminal *t = &terms[n_terms];
                FILE *pf;

                if (sscanf(line, "%63[^,],%63[^,\n]", school, id) != 2)
                        continue;
                /* bbt-sim's school codes begin with the county code. */
                snprintf(t->user, sizeof(t->user), "%.6s/%s/%s", school, school, id);
                snprintf(path, sizeof(path), "%s/terminals/%.6s-%s/%s/agent.password", out, school, school, id);
                pf = fopen(path, "re");
                if (!pf || !fgets(t->password, sizeof(t->password), pf))
                        bench_die("%s: cannot read", path);
                fclose(pf);
                t->password[strcspn(t->password, "\n")] = '\0';
                n_terms++;
        }
        fclose(f);
}

/* ---- the broker ---- */

static int loop_port, tls_port, cert_port;

/* TEXT with every OLD replaced by NEW (OLD must occur). */
static char *replace(char *text, const char *old, const char *new_text)
{
        size_t n = 0, len, at = 0;
        char *out;

        for (const char *p = text; (p = strstr(p, old)); p += strlen(old))
                n++;
        if (!n)
                bench_die("%s: no \"%s\"", opt.county_conf, old);
        len = strlen(text) + n * strlen(new_text) + 1;
        out = malloc(len);
        for (const char *p = text, *q; p; p = q ? q + strlen(old) : NULL) {
                q = strstr(p, old);
                at += (size_t)snprintf(out + at, len - at, "%.*s%s", q ? (int)(q - p) : (int)strlen(p), p,
                                       q ? new_text : "");
        }
        free(text);
        return out;
}

static bool log_says(const char *path, const char *needle)
{
        char line[1024];
        bool found = false;
        FILE *f = fopen(path, "re");

        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, needle) != NULL;
        fclose(f);
        return found;
}

/* Starts mosquitto on the shipped county configuration with the broker files
 * of OUT; returns the seconds until it listened. */
static double broker_start(const char *out, const char *name)
{
        char conf[600], log[600], etc[700], head[1600], line[64];
        char *argv[] = { (char *)opt.mosquitto, (char *)"-c", conf, NULL };
        char *text = slurp(opt.county_conf, NULL);
        double t0;

        snprintf(etc, sizeof(etc), "%s/broker/", out);
        text = replace(text, "/etc/mosquitto/bbt/", etc);
        snprintf(line, sizeof(line), "\nlistener %d 127.0.0.1\n", loop_port);
        text = replace(text, "\nlistener 1883 127.0.0.1\n", line);
        snprintf(line, sizeof(line), "\nlistener %d 127.0.0.1\n", tls_port);
        text = replace(text, "\nlistener 8883\n", line);
        snprintf(line, sizeof(line), "\nlistener %d 127.0.0.1\n", cert_port);
        text = replace(text, "\nlistener 8884\n", line);
        snprintf(conf, sizeof(conf), "%s/mosquitto-%s.conf", bench_tmpdir, name);
        snprintf(log, sizeof(log), "%s/mosquitto-%s.log", bench_tmpdir, name);
        snprintf(head, sizeof(head), "# provision-bench: broker-config/mosquitto-county.conf with its paths and ports\n"
                                     "log_dest stderr\npersistence_location %s/\n%s\n",
                 bench_tmpdir, geteuid() == 0 ? "user root" : "");
        {
                size_t len = strlen(head) + strlen(text) + 1;
                char *all = malloc(len);

                snprintf(all, len, "%s%s", head, text);
                bench_write_file(conf, all);
                free(all);
        }
        free(text);
        t0 = bench_now();
        broker_pid = bench_spawn(argv, log);
        /* Listening on the first port is not ready: signal handlers come after
         * the last listener, and "running" is logged then. */
        while (!bench_port_open(loop_port) || !log_says(log, " running")) {
                int status;

                bench_check_signal();
                if (waitpid(broker_pid, &status, WNOHANG) == broker_pid) {
                        broker_pid = -1;
                        bench_die("mosquitto exited (status 0x%x; see %s)", status, log);
                }
                if (bench_now() - t0 > 300)
                        bench_die("mosquitto did not listen within 300 s");
                bench_sleep_ms(2);
        }
        return bench_now() - t0;
}

/* ---- plain MQTT 3.1.1 clients ---- */

enum { C_CONNECTING, C_CONNECT_SENT, C_UP, C_PING_SENT, C_DEAD };

struct conn {
        int fd, state;
        uint8_t in[4];
        size_t have;
};

static struct conn *conns;
static int epfd = -1;

static size_t put_str(uint8_t *p, const char *s)
{
        size_t n = strlen(s);

        p[0] = (uint8_t)(n >> 8);
        p[1] = (uint8_t)n;
        memcpy(p + 2, s, n);
        return n + 2;
}

/* CONNECT with USER/PASSWORD, clean session, no keepalive, into BUF; its length. */
static size_t connect_packet(uint8_t *buf, const char *user, const char *password)
{
        uint8_t body[512];
        size_t n = 0, rem, len = 0;

        n += put_str(body + n, "MQTT");
        body[n++] = 4;    /* 3.1.1 */
        body[n++] = 0xc2; /* user name, password, clean session */
        body[n++] = 0;
        body[n++] = 0;    /* keepalive 0: no pings needed */
        n += put_str(body + n, "");
        n += put_str(body + n, user);
        n += put_str(body + n, password);
        buf[len++] = 0x10;
        rem = n;
        do {
                uint8_t b = rem & 0x7f;

                rem >>= 7;
                buf[len++] = (uint8_t)(b | (rem ? 0x80 : 0));
        } while (rem);
        memcpy(buf + len, body, n);
        return len + n;
}

static int tcp_connect(int port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

        if (fd < 0)
                bench_die("socket: %s", strerror(errno));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                bench_die("connect: %s", strerror(errno));
        return fd;
}

/* Reads what C's socket has: a CONNACK (4 bytes) or a PINGRESP (2). */
static void conn_read(struct conn *c)
{
        size_t want = c->state == C_CONNECT_SENT ? 4 : 2;
        ssize_t n = read(c->fd, c->in + c->have, want - c->have);

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                c->state = C_DEAD;
                return;
        }
        if (n < 0)
                return;
        c->have += (size_t)n;
        if (c->have < want)
                return;
        c->have = 0;
        if (c->state == C_CONNECT_SENT)
                c->state = c->in[0] == 0x20 && c->in[3] == 0 ? C_UP : C_DEAD;
        else if (c->state == C_PING_SENT)
                c->state = c->in[0] == 0xd0 ? C_UP : C_DEAD;
}

static void conn_send(struct conn *c, const void *p, size_t len)
{
        if (write(c->fd, p, len) != (ssize_t)len)
                c->state = C_DEAD;
}

/* Connects the N terminals; returns how many are up, and the time in *SECS. */
static size_t connect_all(size_t n, double *secs)
{
        struct epoll_event ev, evs[256];
        size_t next = 0, pending = 0, up = 0, dead = 0;
        double t0 = bench_now();

        conns = calloc(n, sizeof(*conns));
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!conns || epfd < 0)
                bench_die("out of memory or epoll: %s", strerror(errno));
        while (up + dead < n) {
                while (next < n && pending < CONNECTS_IN_FLIGHT) {
                        struct conn *c = &conns[next];

                        c->fd = tcp_connect(loop_port);
                        c->state = C_CONNECTING;
                        ev = (struct epoll_event){ .events = EPOLLOUT | EPOLLIN, .data.u64 = next };
                        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
                        next++;
                        pending++;
                }
                int k = epoll_wait(epfd, evs, 256, 1000);

                bench_check_signal();
                if (bench_now() - t0 > 300)
                        bench_die("connecting took more than 300 s (%zu up, %zu refused)", up, dead);
                for (int i = 0; i < k; i++) {
                        size_t idx = (size_t)evs[i].data.u64;
                        struct conn *c = &conns[idx];
                        int before = c->state;

                        if (c->state == C_CONNECTING && (evs[i].events & EPOLLOUT)) {
                                uint8_t pkt[600];
                                size_t len = connect_packet(pkt, terms[idx].user, terms[idx].password);

                                c->state = C_CONNECT_SENT;
                                conn_send(c, pkt, len);
                                ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = idx };
                                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                        } else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                                conn_read(c);
                        }
                        if (before != c->state && (c->state == C_UP || c->state == C_DEAD)) {
                                pending--;
                                if (c->state == C_UP)
                                        up++;
                                else
                                        dead++;
                        }
                }
        }
        *secs = bench_now() - t0;
        return up;
}

/* PINGREQ to every terminal that is up; how many answer within 60 s. */
static size_t ping_all(size_t n)
{
        static const uint8_t ping[] = { 0xc0, 0x00 };
        struct epoll_event evs[256];
        size_t waiting = 0, answered = 0;
        double t0 = bench_now();

        for (size_t i = 0; i < n; i++)
                if (conns[i].state == C_UP) {
                        conns[i].state = C_PING_SENT;
                        conn_send(&conns[i], ping, sizeof(ping));
                        waiting += conns[i].state == C_PING_SENT;
                }
        while (answered < waiting && bench_now() - t0 < 60) {
                int k = epoll_wait(epfd, evs, 256, 1000);

                bench_check_signal();
                for (int i = 0; i < k; i++) {
                        struct conn *c = &conns[evs[i].data.u64];

                        if (c->state != C_PING_SENT)
                                continue;
                        conn_read(c);
                        if (c->state == C_UP)
                                answered++;
                        else if (c->state == C_DEAD)
                                waiting--;
                }
        }
        return answered;
}

static void close_all(size_t n)
{
        for (size_t i = 0; conns && i < n; i++)
                close(conns[i].fd);
        free(conns);
        conns = NULL;
        if (epfd >= 0)
                close(epfd);
        epfd = -1;
}

/* SIGHUP, then a probe CONNECT as USER/PASSWORD: seconds until its CONNACK. */
static double reload(const char *user, const char *password)
{
        uint8_t pkt[600], ack[4];
        size_t len = connect_packet(pkt, user, password), have = 0;
        double t0 = bench_now();
        int fd, flags;

        if (kill(broker_pid, SIGHUP) < 0)
                bench_die("kill -HUP: %s", strerror(errno));
        fd = tcp_connect(loop_port);
        flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        {
                struct timeval tv = { 300, 0 };

                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        }
        if (write(fd, pkt, len) != (ssize_t)len)
                bench_die("probe: write: %s", strerror(errno));
        while (have < 4) {
                ssize_t n = read(fd, ack + have, 4 - have);

                if (n <= 0)
                        bench_die("probe: no CONNACK after the reload (%s)", n < 0 ? strerror(errno) : "closed");
                have += (size_t)n;
        }
        if (ack[0] != 0x20 || ack[3] != 0)
                bench_die("probe: CONNACK refused (%u)", ack[3]);
        close(fd);
        return bench_now() - t0;
}

/* ---- the run ---- */

struct broker_figures {
        double start, reload_idle, reload_busy, connect;
        long rss_kb;
        size_t tried, up, answered;
};

static void measure_broker(const char *out, const char *name, const char *agg_pw, struct broker_figures *f)
{
        size_t n = opt.clients >= 0 && (size_t)opt.clients < n_terms ? (size_t)opt.clients : n_terms;
        struct rlimit rl;
        long hwm;

        /* This process and the broker each need a descriptor per terminal. */
        getrlimit(RLIMIT_NOFILE, &rl);
        if (opt.clients < 0 && n + 256 > rl.rlim_cur) {
                n = rl.rlim_cur > 256 ? rl.rlim_cur - 256 : 0;
                if (!opt.markdown)
                        printf("%s: connecting %zu terminals, not %zu: RLIMIT_NOFILE is %llu here\n", bench_prog, n,
                               n_terms, (unsigned long long)rl.rlim_cur);
        }
        f->tried = n;

        f->start = broker_start(out, name);
        bench_mem_of(broker_pid, &f->rss_kb, &hwm);
        f->reload_idle = reload("bbt-aggregator", agg_pw);
        if (n) {
                f->up = connect_all(n, &f->connect);
                f->reload_busy = reload("bbt-aggregator", agg_pw);
                f->answered = ping_all(n);
                close_all(n);
        }
        bench_stop_child(&broker_pid, "mosquitto");
        if (!opt.markdown)
                printf("%s: broker (%s ACL): listening after %.2f s (RSS %ld kB), reload idle %.3f s; %zu of %zu "
                       "terminals connected in %.1f s; reload with them %.3f s; %zu answer after it\n",
                       bench_prog, name, f->start, f->rss_kb, f->reload_idle, f->up, n, f->connect, f->reload_busy,
                       f->answered);
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: provision-bench [OPTION]...\n"
                "bbt-provision on the load benchmark's registry (200 schools x 100 terminals), and the\n"
                "county broker loading and reloading the files it makes, with every terminal connected.\n"
                "\n"
                "      --schools N        schools (default 200)\n"
                "      --terminals N      terminals per school (default 100)\n"
                "      --clients N        terminals connected for the busy reload (default all; 0: none)\n"
                "      --no-explicit      skip the explicit-ACL output and broker\n"
                "      --no-certs         skip the --client-certs run\n"
                "      --county-conf F    the county configuration (default the source tree's)\n"
                "      --markdown         print the results as the BENCHMARKS.md section's table\n"
                "  -k, --keep             keep the temporary directory\n"
                "  -v, --verbose          say each step\n"
                "  -h, --help\n");
}

int main(int argc, char **argv)
{
        enum { O_SCHOOLS = 256, O_TERMINALS, O_CLIENTS, O_NO_EXPLICIT, O_NO_CERTS, O_CONF, O_MARKDOWN };
        static const struct option longopts[] = {
                { "schools", required_argument, NULL, O_SCHOOLS },
                { "terminals", required_argument, NULL, O_TERMINALS },
                { "clients", required_argument, NULL, O_CLIENTS },
                { "no-explicit", no_argument, NULL, O_NO_EXPLICIT },
                { "no-certs", no_argument, NULL, O_NO_CERTS },
                { "county-conf", required_argument, NULL, O_CONF },
                { "markdown", no_argument, NULL, O_MARKDOWN },
                { "keep", no_argument, NULL, 'k' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        char regdir[512], out[3][512], log[600], nofile[256], a_schools[16], a_terms[16], tls[16], cert[16];
        char passwd_path[600], agg_pw[64];
        struct timed base, first, again, rotate, certs = { 0 }, expl = { 0 };
        struct broker_figures pat = { 0 }, exp = { 0 };
        size_t acl_len[2] = { 0 }, passwd_len;
        long acl_lines[2] = { 0 };
        int c;

        while ((c = getopt_long(argc, argv, "kvh", longopts, NULL)) != -1) {
                switch (c) {
                case O_SCHOOLS: opt.schools = (int)bench_number("--schools", optarg, 1, 9999); break;
                case O_TERMINALS: opt.terminals = (int)bench_number("--terminals", optarg, 1, 999); break;
                case O_CLIENTS: opt.clients = (int)bench_number("--clients", optarg, 0, 10000000); break;
                case O_NO_EXPLICIT: opt.explicit_acl = false; break;
                case O_NO_CERTS: opt.certs = false; break;
                case O_CONF: opt.county_conf = optarg; break;
                case O_MARKDOWN: opt.markdown = true; break;
                case 'k': bench_keep = true; break;
                case 'v': bench_verbose = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        bench_init("provision-bench", cleanup);
        bench_raise_nofile(65536, nofile, sizeof(nofile));
        if (!opt.markdown)
                printf("provision-bench: %s\n", nofile);
        bench_make_tmpdir();
        loop_port = bench_free_port();
        do
                tls_port = bench_free_port();
        while (tls_port == loop_port);
        do
                cert_port = bench_free_port();
        while (cert_port == loop_port || cert_port == tls_port);
        snprintf(tls, sizeof(tls), "%d", tls_port);
        snprintf(cert, sizeof(cert), "%d", cert_port);

        /* 1. The registry. */
        snprintf(regdir, sizeof(regdir), "%s/registry", bench_tmpdir);
        snprintf(a_schools, sizeof(a_schools), "%d", opt.schools);
        snprintf(a_terms, sizeof(a_terms), "%d", opt.terminals);
        mkdir(regdir, 0700);
        {
                char *args[] = { (char *)opt.sim, "--only-files", "--live", "1", "--county", (char *)opt.county,
                                 "--schools", a_schools, "--terminals", a_terms, "--seed", "1", "--registry", regdir,
                                 "-q", NULL };

                snprintf(log, sizeof(log), "%s/bbt-sim.log", bench_tmpdir);
                run_timed(args, log);
        }
        for (int i = 0; i < 3; i++)
                snprintf(out[i], sizeof(out[i]), "%s/out-%s", bench_tmpdir,
                         i == 0 ? "pattern" : i == 1 ? "certs" : "explicit");
        snprintf(log, sizeof(log), "%s/provision.log", bench_tmpdir);
        {
                char schools[600], terminals[600];
                char *args[] = { (char *)opt.provision, "-o", out[0], "-s", schools, "-t", terminals, "--broker",
                                 "127.0.0.1", "--broker", "localhost", "--port", tls, "--cert-port", cert, "-q",
                                 NULL, NULL, NULL, NULL };

                snprintf(schools, sizeof(schools), "%s/schools.csv", regdir);
                snprintf(terminals, sizeof(terminals), "%s/terminals.csv", regdir);
                /* 3. bbt-provision, four ways. */
                first = run_timed(args, log);
                again = run_timed(args, log);
                args[16] = "--rotate";
                args[17] = "5101990001/r001";
                rotate = run_timed(args, log);
                args[16] = args[17] = NULL;
                if (opt.certs) {
                        args[2] = out[1];
                        args[16] = "--client-certs";
                        certs = run_timed(args, log);
                }
                if (opt.explicit_acl) {
                        args[2] = out[2];
                        args[16] = "--acl";
                        args[17] = "explicit";
                        expl = run_timed(args, log);
                }
        }
        /* 2. The baseline: mosquitto_passwd -U on as many plain passwords. */
        read_terminals(regdir, out[0]);
        snprintf(passwd_path, sizeof(passwd_path), "%s/plain.passwd", bench_tmpdir);
        {
                FILE *f = fopen(passwd_path, "we");
                char *args[] = { (char *)opt.mosquitto_passwd, "-U", passwd_path, NULL };

                if (!f)
                        bench_die("%s: %s", passwd_path, strerror(errno));
                for (size_t i = 0; i < n_terms; i++)
                        fprintf(f, "%s:%s\n", terms[i].user, terms[i].password);
                fclose(f);
                snprintf(log, sizeof(log), "%s/mosquitto_passwd.log", bench_tmpdir);
                base = run_timed(args, log);
        }
        for (int i = 0; i < 2; i++) {
                char path[700], *text;

                if (i == 1 && !opt.explicit_acl)
                        break;
                snprintf(path, sizeof(path), "%s/broker/acl", out[i == 0 ? 0 : 2]);
                text = slurp(path, &acl_len[i]);
                acl_lines[i] = count_lines(text);
                free(text);
        }
        {
                char path[700], *text;

                snprintf(path, sizeof(path), "%s/broker/passwd", out[0]);
                free(slurp(path, &passwd_len));
                snprintf(path, sizeof(path), "%s/aggregators/bbt-aggregator/aggregator.password", out[0]);
                text = slurp(path, NULL);
                snprintf(agg_pw, sizeof(agg_pw), "%.*s", (int)strcspn(text, "\n"), text);
                free(text);
        }
        /* 4 and 5. The broker with each ACL. */
        measure_broker(out[0], "pattern", agg_pw, &pat);
        if (opt.explicit_acl) {
                char path[700], *text;

                /* The explicit output has its own secrets. */
                free(terms);
                terms = NULL;
                n_terms = 0;
                read_terminals(regdir, out[2]);
                snprintf(path, sizeof(path), "%s/aggregators/bbt-aggregator/aggregator.password", out[2]);
                text = slurp(path, NULL);
                snprintf(agg_pw, sizeof(agg_pw), "%.*s", (int)strcspn(text, "\n"), text);
                free(text);
                measure_broker(out[2], "explicit", agg_pw, &exp);
        }

        printf("\n| %d terminals (%d schools × %d) | figure |\n| --- | --- |\n", opt.schools * opt.terminals,
               opt.schools, opt.terminals);
        printf("| baseline: `mosquitto_passwd -U` hashing %zu passwords | %.2f s (CPU %.2f s) |\n", n_terms,
               base.wall, base.cpu);
        printf("| `bbt-provision`, first run (secrets, hashes, CA, broker certificate, CRL, ACL, %zu bundles, %d "
               "archives) | %.2f s (CPU %.2f s) = %.2f× the baseline |\n",
               n_terms, opt.schools, first.wall, first.cpu, first.wall / base.wall);
        printf("| again, nothing changed (nothing rewritten) | %.2f s (CPU %.2f s) |\n", again.wall, again.cpu);
        printf("| `--rotate` one terminal | %.2f s (CPU %.2f s) |\n", rotate.wall, rotate.cpu);
        if (opt.certs)
                printf("| `--client-certs`, first run (a key and a certificate per terminal) | %.2f s (CPU %.2f s) |\n",
                       certs.wall, certs.cpu);
        if (opt.explicit_acl)
                printf("| `--acl explicit`, first run | %.2f s (CPU %.2f s) |\n", expl.wall, expl.cpu);
        printf("| password file | %zu bytes |\n", passwd_len);
        printf("| ACL, `pattern` | %ld lines, %zu bytes |\n", acl_lines[0], acl_len[0]);
        if (opt.explicit_acl)
                printf("| ACL, `explicit` | %ld lines, %zu bytes |\n", acl_lines[1], acl_len[1]);
        for (int i = 0; i < (opt.explicit_acl ? 2 : 1); i++) {
                const struct broker_figures *f = i == 0 ? &pat : &exp;
                const char *name = i == 0 ? "pattern" : "explicit";

                printf("| mosquitto start until listening, `%s` ACL | %.2f s (RSS %ld kB) |\n", name, f->start,
                       f->rss_kb);
                printf("| reload (SIGHUP → a probe's CONNACK), no client, `%s` | %.3f s |\n", name, f->reload_idle);
                if (f->up || f->answered)
                        printf("| %zu of %zu terminals connect (own user name and password each), `%s` | %.1f s |\n"
                               "| reload with them connected, `%s` | %.2f s; %zu of %zu still answer a PINGREQ |\n",
                               f->up, f->tried, name, f->connect, name, f->reload_busy, f->answered, f->up);
        }
        cleanup();
        return pat.answered < pat.up || exp.answered < exp.up ? 3 : 0;
}
