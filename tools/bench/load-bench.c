/* load-bench: one broker and one bbt-aggregator under a county of live terminals.
 *
 * In a temporary directory, on 127.0.0.1:
 *
 *   1. RLIMIT_NOFILE raised (past the hard limit when root) so that the broker
 *      and the simulator, which inherit it, can each hold a socket per terminal;
 *   2. bbt-sim --only-files writes the county's registry (schools, terminals,
 *      calendar, bells) for the same seed;
 *   3. mosquitto from a generated config that drops no QoS 1 message
 *      (bench-util.c) and takes any number of connections;
 *   4. bbt-aggregator on a fresh SQLite store with that registry, batches at
 *      their defaults;
 *   5. the probe, a terminal of this process's own (<county>/probe/p1): a birth
 *      (seq 1) and, once it is stored, a periph event (seq 2, 3, ...) every
 *      second at QoS 1, each encoded with bbt_msg_encode; the time of each
 *      publish is kept;
 *   6. bbt-sim --live DURATION: SCHOOLS x TERMINALS terminals (9 % of them never
 *      report, by the scenario), each a real MQTT client, connecting at
 *      --connect-rate, then a heartbeat every 60 s, a usage interval every
 *      300 s and a USB stick in or out every 600 s, in real time.
 *
 * While it runs, this process reads the store read-only (as bbt-report does)
 * every 10 ms for the probe's periph_event rows: the latency of each probe
 * event is from its publish to the first read that sees it committed. Every
 * second it samples the store's 'stored' counter, the simulator's progress line
 * (terminals connected, messages acknowledged by the broker) and the CPU time
 * and memory of the aggregator, the broker and the simulator from /proc. The
 * connect storm is timed from the simulator's start until every terminal's
 * birth and inventory are stored (polled every 100 ms while it lasts).
 *
 * The figures are taken over a window at the end of the live run (the last
 * --window seconds, once the storm is over). When the simulator has stopped,
 * the bench waits until the store holds everything it produced, stops the
 * aggregator and checks that the store holds every produced message exactly
 * once: raw rows = produced = 'stored', nothing rejected, no gap open.
 *
 * With --school-brokers N, the terminals are a bridged fleet: N more
 * mosquittos, the school (or township) brokers, each bridged to the county
 * broker above over plain TCP on loopback with the bridge settings
 * bbt-provision writes (broker-config/mosquitto-school.conf: both sessions
 * persistent, QoS 1 out for the terminals' channels, commands in; no TLS and no
 * credentials here). The simulators connect to the school brokers (simulator i
 * to broker i mod N; each school broker holds at most the descriptor limit's
 * connections), the probe to the first one; the aggregator alone to the county.
 *
 * Bounded: it gives up after --max-total seconds (600). Exit status: 0
 * measured and the store check passed, 3 the store check failed, 1 something
 * failed (a process died, a timeout), 2 bad usage. SIGINT, SIGTERM, SIGHUP: stop
 * what was started, remove the temp dir, exit 1. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mosquitto.h>
#include <sqlite3.h>

#include <bbt/protocol.h>

#include "bench-util.h"
#include "bbt/base.h"

#ifndef BBT_AGGREGATOR_PATH
#define BBT_AGGREGATOR_PATH "bbt-aggregator"
#endif
#ifndef BBT_SIM_PATH
#define BBT_SIM_PATH "bbt-sim"
#endif
#ifndef BBT_REPORT_PATH
#define BBT_REPORT_PATH "bbt-report"
#endif

#define PROBE_SCHOOL "probe"
#define PROBE_TERMINAL "p1"
#define POLL_S 0.010      /* the probe poller */
#define STORM_POLL_S 0.1  /* births and inventories stored, while the storm lasts */
#define SAMPLE_S 1.0
#define MAX_SAMPLES 4096
#define MAX_PROBES 4096

static struct {
        int schools, terminals, connect_rate;
        int duration, window, max_total, drain;
        int hb, usage, periph;
        unsigned long seed;
        long nofile;
        int sims, edges;
        const char *county;
        const char *aggregator, *sim, *report, *mosquitto;
        bool registry;
        char sets[2048];
} opt = {
        .schools = 200,
        .terminals = 100,
        .connect_rate = 1000,
        .duration = 480,
        .window = 300,
        .max_total = 600,
        .drain = 60,
        .hb = 60,
        .usage = 300,
        .periph = 600,
        .seed = 1,
        .nofile = 65536,
        .county = "510199",
        .aggregator = BBT_AGGREGATOR_PATH,
        .sim = BBT_SIM_PATH,
        .report = BBT_REPORT_PATH,
        .mosquitto = "mosquitto",
        .registry = true,
};

#define MAX_SIMS 40
#define MAX_EDGES 16

static pid_t broker_pid = -1, agg_pid = -1;
static int broker_port;
/* --school-brokers: the school brokers, bridged to the county broker above */
static pid_t edge_pid[MAX_EDGES];
static int edge_port[MAX_EDGES];
static struct bench_pub probe;

/* The simulator processes: one county each (libmosquitto takes three
 * descriptors per client, so one process may not hold them all). */
struct simlog;
static struct simproc {
        pid_t pid;
        char county[8];
        char schools[16], log[512], produced[512], regdir[600], rate[16], port[16];
        long long produced_n;
        int status;
} sims[MAX_SIMS];
static int n_sims;

static void cleanup(void)
{
        bench_pub_close(&probe);
        for (int i = 0; i < n_sims; i++)
                bench_stop_child(&sims[i].pid, "bbt-sim");
        bench_stop_child(&agg_pid, "aggregator");
        for (int i = 0; i < opt.edges; i++)
                bench_stop_child(&edge_pid[i], "school mosquitto");
        bench_stop_child(&broker_pid, "mosquitto");
        bench_remove_tmpdir();
}

/* ---- the file descriptor limit ---- */

static void raise_nofile(char *said, size_t size)
{
        struct rlimit rl;

        bench_raise_nofile(opt.nofile, said, size);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)opt.schools * (rlim_t)opt.terminals + 1024)
                fprintf(stderr, "load-bench: warning: only %llu file descriptors for %d terminals (about 91 %% of "
                                "them connect): the broker may run out\n",
                        (unsigned long long)rl.rlim_cur, opt.schools * opt.terminals);
}

/* ---- the simulator's progress lines ---- */

struct simlog {
        int fd;
        char buf[8192];
        size_t len;
        long connected, clients, done;
        long long acked;
        double t_line;          /* when the last progress line was read */
        long other_lines;       /* anything else it said (disconnects, errors) */
        char first_other[3][256];
};

static void simlog_read(struct simlog *s, double now)
{
        for (;;) {
                ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
                char *line, *nl;

                if (n <= 0)
                        return;
                s->len += (size_t)n;
                s->buf[s->len] = '\0';
                line = s->buf;
                while ((nl = strchr(line, '\n'))) {
                        long c, n_cl, d;
                        long long a;

                        *nl = '\0';
                        if (sscanf(line, "bbt-sim: %ld/%ld terminals connected, %lld messages acknowledged, %ld done",
                                   &c, &n_cl, &a, &d) == 4) {
                                s->connected = c, s->clients = n_cl, s->acked = a, s->done = d;
                                s->t_line = now;
                        } else if (!strstr(line, " messages for the week ") && !strstr(line, "everything sent in") &&
                           !strstr(line, " messages produced, ")) {
                                if (s->other_lines < 3)
                                        snprintf(s->first_other[s->other_lines], sizeof(s->first_other[0]), "%.*s",
                                                 (int)sizeof(s->first_other[0]) - 1, line);
                                s->other_lines++;
                        }
                        line = nl + 1;
                }
                s->len = strlen(line);
                memmove(s->buf, line, s->len);
                if (s->len == sizeof(s->buf) - 1)
                        s->len = 0; /* a line this long is not a progress line */
        }
}

/* Reads every simulator's log and sums them into ALL. */
static void simlog_all(struct simlog *sl, int n, struct simlog *all, double now)
{
        int other = 0;

        all->connected = all->clients = all->done = 0;
        all->acked = 0;
        all->other_lines = 0;
        for (int i = 0; i < n; i++) {
                if (sl[i].fd >= 0)
                        simlog_read(&sl[i], now);
                all->connected += sl[i].connected;
                all->clients += sl[i].clients;
                all->done += sl[i].done;
                all->acked += sl[i].acked;
                all->other_lines += sl[i].other_lines;
                for (long k = 0; k < sl[i].other_lines && k < 3 && other < 3; k++)
                        snprintf(all->first_other[other++], sizeof(all->first_other[0]), "%s", sl[i].first_other[k]);
                if (sl[i].t_line > all->t_line)
                        all->t_line = sl[i].t_line;
        }
}

/* ---- the store ---- */

struct store {
        struct bench_store s;
        sqlite3_stmt *periph;  /* the probe's periph rows after an id */
        sqlite3_stmt *stored;  /* 'stored' minus the probe's received */
        sqlite3_stmt *births;  /* terminals with their inventory stored (the probe has none) */
        long probe_id;
        long long last_row;
};

static sqlite3_stmt *prepare(struct store *q, const char *sql)
{
        sqlite3_stmt *st;

        if (sqlite3_prepare_v2(q->s.db, sql, -1, &st, NULL) != SQLITE_OK)
                bench_die("store: %s: %s", sql, sqlite3_errmsg(q->s.db));
        return st;
}

static void store_prepare(struct store *q)
{
        char sql[512];

        snprintf(sql, sizeof(sql), "SELECT id, seq FROM periph_event WHERE id > ?1 AND terminal_id = %ld ORDER BY id",
                 q->probe_id);
        q->periph = prepare(q, sql);
        snprintf(sql, sizeof(sql),
                 "SELECT coalesce((SELECT value FROM counter WHERE name = 'stored'), 0)"
                 " - coalesce((SELECT received FROM terminal WHERE id = %ld), 0)",
                 q->probe_id);
        q->stored = prepare(q, sql);
        q->births = prepare(q, "SELECT count(*) FROM terminal WHERE inventory_seq >= 0");
}

static long long step_value(sqlite3_stmt *st)
{
        long long v = -1;

        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return v;
}

static void store_close(struct store *q)
{
        sqlite3_finalize(q->periph);
        sqlite3_finalize(q->stored);
        sqlite3_finalize(q->births);
        q->periph = q->stored = q->births = NULL;
        bench_store_close(&q->s);
}

/* ---- the probe ---- */

static double pub_t[MAX_PROBES], vis_t[MAX_PROBES]; /* by seq; 0: not yet */
static int64_t probe_seq;                          /* the last one published */

static void probe_publish(enum bbt_channel ch)
{
        static const struct bbt_dev dev = { .kind = BBT_KIND_STORAGE, .subsystem = "block", .bus = "usb",
                                            .vendor = "Kingston", .model = "DataTraveler",
                                            .syspath = "/sys/devices/pci0000:00/usb1/1-4/block/sdc" };
        char topic[BBT_TOPIC_MAX], ebuf[300];
        struct bbt_error e;
        struct bbt_msg m;
        char *json;
        size_t len;
        int64_t seq = probe_seq + 1;
        int rc;

        if (seq >= MAX_PROBES)
                return;
        if (ch == BBT_CH_STATE) {
                json = bench_encode_state(seq, bench_real_ms(), &len);
        } else {
                bbt_msg_init(&m, BBT_CH_PERIPH);
                m.seq = seq;
                m.ts = bench_real_ms();
                m.boot = 3;
                m.body.periph.action = seq % 2 ? BBT_PERIPH_REMOVE : BBT_PERIPH_ADD;
                m.body.periph.dev = dev;
                if (bbt_msg_encode(&m, &json, &len, &e) < 0)
                        bench_die("encode periph: %s", bbt_error_format(&e, ebuf, sizeof(ebuf)));
        }
        bench_topic(opt.county, PROBE_SCHOOL, PROBE_TERMINAL, ch, topic, sizeof(topic));
        /* Not threaded: libmosquitto writes the packet to the socket in this call. */
        pub_t[seq] = bench_now();
        rc = mosquitto_publish(probe.mosq, NULL, topic, (int)len, json, 1, bbt_channel_retained(ch));
        free(json);
        if (rc != MOSQ_ERR_SUCCESS)
                bench_die("probe: publish: %s", mosquitto_strerror(rc));
        probe_seq = seq;
}

/* The probe's periph rows committed since the last look. */
static void probe_poll(struct store *q)
{
        double t = bench_now(); /* the read transaction starts now: what it sees was committed by then */

        sqlite3_bind_int64(q->periph, 1, q->last_row);
        while (sqlite3_step(q->periph) == SQLITE_ROW) {
                long long id = sqlite3_column_int64(q->periph, 0), seq = sqlite3_column_int64(q->periph, 1);

                q->last_row = id;
                if (seq > 0 && seq < MAX_PROBES && vis_t[seq] == 0)
                        vis_t[seq] = t;
        }
        sqlite3_reset(q->periph);
}

/* ---- samples ---- */

struct proc_sample {
        double cpu;
        long rss, hwm;
};

struct sample {
        double t;
        long long stored;
        long births;
        long long acked;       /* the simulator's, as of its last progress line */
        double t_acked;        /* when that line was read */
        long connected;
        struct proc_sample agg, broker, sim, edge; /* edge: the school brokers, summed */
        double cpu_self;
};

static struct sample samples[MAX_SAMPLES];
static int n_samples;

static void proc_sample(pid_t pid, struct proc_sample *p)
{
        p->cpu = pid > 0 ? bench_cpu_of(pid) : -1;
        if (pid <= 0 || !bench_mem_of(pid, &p->rss, &p->hwm))
                p->rss = p->hwm = -1;
}

/* The processes PIDS, summed (-1 once one has stopped). */
static void sum_sample(const pid_t *pids, int n, struct proc_sample *p)
{
        p->cpu = 0;
        p->rss = p->hwm = 0;
        for (int i = 0; i < n; i++) {
                struct proc_sample one;

                proc_sample(pids[i], &one);
                if (one.cpu < 0 || one.rss < 0) {
                        p->cpu = -1;
                        p->rss = p->hwm = -1;
                        return;
                }
                p->cpu += one.cpu;
                p->rss += one.rss;
                p->hwm += one.hwm;
        }
}

/* The simulators, summed. */
static void sims_sample(struct proc_sample *p)
{
        pid_t pids[MAX_SIMS];

        for (int i = 0; i < n_sims; i++)
                pids[i] = sims[i].pid;
        sum_sample(pids, n_sims, p);
}

/* The first sample at or after T (the last one if none). */
static const struct sample *sample_at(double t)
{
        for (int i = 0; i < n_samples; i++)
                if (samples[i].t >= t)
                        return &samples[i];
        return &samples[n_samples - 1];
}

/* The last sample at or before T (the first one if none). */
static const struct sample *sample_before(double t)
{
        for (int i = n_samples - 1; i >= 0; i--)
                if (samples[i].t <= t)
                        return &samples[i];
        return &samples[0];
}

static double pct_cpu(const struct proc_sample *a, const struct proc_sample *b, double secs)
{
        return a->cpu < 0 || b->cpu < 0 ? NAN : 100.0 * (b->cpu - a->cpu) / secs;
}

struct lat {
        size_t n, missing;
        double p50, p90, p99, max;
};

/* Latency (ms) of the probe events published in [T0, T1]. */
static struct lat latency(double t0, double t1)
{
        static double v[MAX_PROBES];
        struct lat l = { 0 };

        for (int64_t s = 2; s <= probe_seq; s++) {
                if (pub_t[s] < t0 || pub_t[s] > t1)
                        continue;
                if (vis_t[s] == 0) {
                        l.missing++;
                        continue;
                }
                v[l.n++] = 1000.0 * (vis_t[s] - pub_t[s]);
        }
        l.p50 = bench_percentile(v, l.n, 50);
        l.p90 = bench_percentile(v, l.n, 90);
        l.p99 = bench_percentile(v, l.n, 99);
        l.max = bench_percentile(v, l.n, 100);
        return l;
}

/* ---- main ---- */

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: load-bench [OPTION]...\n"
                "One mosquitto and one bbt-aggregator under a county of live simulated terminals\n"
                "(bbt-sim --live), on 127.0.0.1: ingest rate, probe latency (periph event published\n"
                "-> committed in the store), CPU and memory, the connect storm, exactly-once.\n"
                "\n"
                "      --schools N        schools (default 200)\n"
                "      --terminals N      terminals per school (default 100; 9 %% of them never report)\n"
                "      --connect-rate N   the simulator's new connections per second (default 1000)\n"
                "      --duration SECS    the simulator's live run (default 480)\n"
                "      --window SECS      measure over the last this many seconds of it (default 300)\n"
                "      --drain SECS       afterwards, wait at most this long for the store (default 60)\n"
                "      --max-total SECS   give up after this long in all (default 600)\n"
                "      --live-hb SECS, --live-usage SECS, --live-periph SECS\n"
                "                         the simulator's intervals (default 60, 300, 600)\n"
                "      --county CODE      (default 510199)\n"
                "      --seed S           the simulator's scenario seed (default 1)\n"
                "      --nofile N         RLIMIT_NOFILE to set, past the hard limit when root (default 65536)\n"
                "      --sims N           run the schools in N bbt-sim processes, one county each (counties\n"
                "                         CODE, CODE+1, ...; default: as few as the descriptor limit allows,\n"
                "                         at 3 per terminal)\n"
                "      --school-brokers N a bridged fleet: N school brokers bridged to the county broker\n"
                "                         (plain TCP on loopback), the simulators and the probe behind\n"
                "                         them (default 0: everything on the county broker)\n"
                "      --no-registry      run the aggregator without the county's registry files\n"
                "      --set SECTION.KEY=VALUE  add to the aggregator's config, e.g. store.batch_size=5000\n"
                "      --aggregator PATH, --sim PATH, --report PATH, --mosquitto PATH\n"
                "                         the programs (default the ones built with this; mosquitto from PATH)\n"
                "      --markdown         print the results as Markdown tables too\n"
                "  -k, --keep             keep the temporary directory (configs, logs, store)\n"
                "  -v, --verbose          more output\n"
                "  -h, --help             show this help\n");
}

static int parse_int(const char *s, long lo, long hi, long *ret)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                return -1;
        *ret = v;
        return 0;
}

static void print_proc(const char *name, const struct proc_sample *a, const struct proc_sample *b, double secs,
                       long rss_max)
{
        printf("  %-14s CPU %6.1f %% of one core; VmRSS %ld kB at the end (%ld kB peak sampled), VmHWM %ld kB\n",
               name, pct_cpu(a, b, secs), b->rss, rss_max, b->hwm);
}

int main(int argc, char **argv)
{
        enum {
                O_SCHOOLS = 256, O_TERMINALS, O_RATE, O_DURATION, O_WINDOW, O_DRAIN, O_MAX_TOTAL, O_HB, O_USAGE,
                O_PERIPH, O_COUNTY, O_SEED, O_NOFILE, O_NO_REGISTRY, O_SET, O_AGG, O_SIM, O_REPORT, O_MOSQ, O_MD, O_SIMS, O_EDGES,
        };
        static const struct option longopts[] = {
                { "schools", required_argument, NULL, O_SCHOOLS },
                { "terminals", required_argument, NULL, O_TERMINALS },
                { "connect-rate", required_argument, NULL, O_RATE },
                { "duration", required_argument, NULL, O_DURATION },
                { "window", required_argument, NULL, O_WINDOW },
                { "drain", required_argument, NULL, O_DRAIN },
                { "max-total", required_argument, NULL, O_MAX_TOTAL },
                { "live-hb", required_argument, NULL, O_HB },
                { "live-usage", required_argument, NULL, O_USAGE },
                { "live-periph", required_argument, NULL, O_PERIPH },
                { "county", required_argument, NULL, O_COUNTY },
                { "seed", required_argument, NULL, O_SEED },
                { "nofile", required_argument, NULL, O_NOFILE },
                { "sims", required_argument, NULL, O_SIMS },
                { "school-brokers", required_argument, NULL, O_EDGES },
                { "no-registry", no_argument, NULL, O_NO_REGISTRY },
                { "set", required_argument, NULL, O_SET },
                { "aggregator", required_argument, NULL, O_AGG },
                { "sim", required_argument, NULL, O_SIM },
                { "report", required_argument, NULL, O_REPORT },
                { "mosquitto", required_argument, NULL, O_MOSQ },
                { "markdown", no_argument, NULL, O_MD },
                { "keep", no_argument, NULL, 'k' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        char nofile_said[256], regdir[512], conf[512], agg_log[512], text[8192];
        char a_terms[16], a_dur[16], a_hb[16], a_usage[16], a_periph[16], a_seed[32];
        struct store q = { 0 };
        static struct simlog sl[MAX_SIMS];
        struct simlog all = { .fd = -1 };
        int sims_running;
        bool markdown = false;
        double t_begin, deadline, t_sim0, t_sim_end = 0, t_all_connected = 0, t_storm_done = 0, t_drained = 0;
        double next_probe, next_poll, next_storm_poll, next_sample;
        long long produced = -1;
        int c, sim_status = -1, exit_code = 0;

        while ((c = getopt_long(argc, argv, "kvh", longopts, NULL)) != -1) {
                long v = 0;

                if (optarg && c != O_COUNTY && c != O_SET && (c < O_AGG || c >= O_SIMS) &&
                    parse_int(optarg, 0, 100000000, &v) < 0) {
                        fprintf(stderr, "load-bench: %s: expected a number\n", optarg);
                        return 2;
                }
                switch (c) {
                case O_SCHOOLS: opt.schools = (int)v; break;
                case O_TERMINALS: opt.terminals = (int)v; break;
                case O_RATE: opt.connect_rate = (int)v; break;
                case O_DURATION: opt.duration = (int)v; break;
                case O_WINDOW: opt.window = (int)v; break;
                case O_DRAIN: opt.drain = (int)v; break;
                case O_MAX_TOTAL: opt.max_total = (int)v; break;
                case O_HB: opt.hb = (int)v; break;
                case O_USAGE: opt.usage = (int)v; break;
                case O_PERIPH: opt.periph = (int)v; break;
                case O_SEED: opt.seed = (unsigned long)v; break;
                case O_NOFILE: opt.nofile = v; break;
                case O_SIMS: opt.sims = (int)v; break;
                case O_EDGES: opt.edges = (int)v; break;
                case O_COUNTY:
                        if (!bbt_county_valid(optarg)) {
                                fprintf(stderr, "load-bench: --county %s: expected 6 digits\n", optarg);
                                return 2;
                        }
                        opt.county = optarg;
                        break;
                case O_NO_REGISTRY: opt.registry = false; break;
                case O_SET:
                        if (!bench_add_set(opt.sets, sizeof(opt.sets), optarg)) {
                                fprintf(stderr, "load-bench: --set %s: expected SECTION.KEY=VALUE\n", optarg);
                                return 2;
                        }
                        break;
                case O_AGG: opt.aggregator = optarg; break;
                case O_SIM: opt.sim = optarg; break;
                case O_REPORT: opt.report = optarg; break;
                case O_MOSQ: opt.mosquitto = optarg; break;
                case O_MD: markdown = true; break;
                case 'k': bench_keep = true; break;
                case 'v': bench_verbose = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc || opt.schools < 1 || opt.schools > 9999 || opt.terminals < 1 || opt.terminals > 999 ||
            opt.connect_rate < 1 || opt.duration < 10 || opt.window < 1 || opt.window >= opt.duration ||
            opt.hb < 1 || opt.usage < 1 || opt.usage > 3600 || opt.periph < 1 || opt.nofile < 1024 ||
            opt.duration + 30 > opt.max_total || opt.duration >= MAX_PROBES - 64 || opt.max_total >= MAX_SAMPLES ||
            opt.sims > MAX_SIMS || opt.sims > opt.schools || opt.edges > MAX_EDGES) {
                fprintf(stderr, "load-bench: bad arguments (the window must be shorter than the duration, the "
                                "duration + 30 s within --max-total, at most %d s)\n",
                        MAX_SAMPLES - 1);
                usage(stderr);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        bench_init("load-bench", cleanup);
        t_begin = bench_now();
        deadline = t_begin + opt.max_total;
        raise_nofile(nofile_said, sizeof(nofile_said));
        printf("load-bench: %s\n", nofile_said);
        bench_make_tmpdir();
        mosquitto_lib_init();
        snprintf(a_terms, sizeof(a_terms), "%d", opt.terminals);
        snprintf(a_seed, sizeof(a_seed), "%lu", opt.seed);
        snprintf(regdir, sizeof(regdir), "%s/registry", bench_tmpdir);
        if (opt.registry)
                mkdir(regdir, 0755);
        {
                struct rlimit rl;

                getrlimit(RLIMIT_NOFILE, &rl);
                n_sims = opt.sims;
                /* libmosquitto: a TCP socket and a socketpair per client. */
                while (n_sims == 0 || (n_sims < opt.schools && n_sims < MAX_SIMS &&
                                       3 * (rlim_t)((opt.schools + n_sims - 1) / n_sims) * (rlim_t)opt.terminals +
                                                       256 > rl.rlim_cur))
                        n_sims++;
                while (n_sims < opt.edges && n_sims < opt.schools && n_sims < MAX_SIMS)
                        n_sims++; /* a simulator behind each school broker */
                /* Each school broker: a descriptor per terminal behind it. */
                for (int e = 0; e < opt.edges; e++) {
                        long long behind = 0;

                        for (int i = e; i < n_sims; i += opt.edges)
                                behind += (long long)(opt.schools / n_sims + (i < opt.schools % n_sims)) * opt.terminals;
                        if (behind + 256 > (long long)rl.rlim_cur)
                                bench_die("school broker %d would hold up to %lld terminals, past its %llu descriptors: "
                                          "use more --school-brokers",
                                          e + 1, behind, (unsigned long long)rl.rlim_cur);
                }
        }
        for (int i = 0; i < n_sims; i++) {
                struct simproc *sp = &sims[i];
                int status;

                sp->pid = -1;
                snprintf(sp->county, sizeof(sp->county), "%06ld", atol(opt.county) + i);
                snprintf(sp->schools, sizeof(sp->schools), "%d", opt.schools / n_sims + (i < opt.schools % n_sims));
                snprintf(sp->rate, sizeof(sp->rate), "%d",
                         opt.connect_rate / n_sims > 0 ? opt.connect_rate / n_sims : 1);
                snprintf(sp->log, sizeof(sp->log), "%s/bbt-sim-%d.log", bench_tmpdir, i + 1);
                snprintf(sp->produced, sizeof(sp->produced), "%s/produced-%d.txt", bench_tmpdir, i + 1);
                snprintf(sp->regdir, sizeof(sp->regdir), "%s/%d", regdir, i + 1);
                if (!bbt_county_valid(sp->county))
                        bench_die("county %s: not 6 digits (choose a lower --county)", sp->county);
                if (!opt.registry)
                        continue;
                /* The registry, for the same scenario (no history: births and inventories only). */
                {
                        char *argv_f[] = { (char *)opt.sim, "--only-files", "--live", "1", "--county", sp->county,
                                           "--schools", sp->schools, "--terminals", a_terms, "--seed", a_seed,
                                           "--registry", sp->regdir, "-q", NULL };

                        mkdir(sp->regdir, 0755);
                        sp->pid = bench_spawn(argv_f, sp->log);
                        for (double t0 = bench_now(); waitpid(sp->pid, &status, WNOHANG) != sp->pid;) {
                                bench_check_signal();
                                if (bench_now() - t0 > 60)
                                        bench_die("bbt-sim --only-files took more than 60 s");
                                bench_sleep_ms(20);
                        }
                        sp->pid = -1;
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                                bench_die("bbt-sim --only-files failed (status %d; see %s)", status, sp->log);
                }
        }
        /* One registry of all the counties: the first file whole, the others without their header. */
        if (opt.registry) {
                static const char *const files[] = { "schools.csv", "terminals.csv", "calendar.csv", "bells.csv" };

                for (size_t f = 0; f < BBT_ELEMENTSOF(files); f++) {
                        char path[1024], line[4096];
                        FILE *out;

                        snprintf(path, sizeof(path), "%s/%s", regdir, files[f]);
                        out = fopen(path, "we");
                        if (!out)
                                bench_die("%s: %s", path, strerror(errno));
                        for (int i = 0; i < n_sims; i++) {
                                FILE *in;
                                bool first = true;

                                snprintf(path, sizeof(path), "%s/%s", sims[i].regdir, files[f]);
                                in = fopen(path, "re");
                                if (!in)
                                        bench_die("%s: %s", path, strerror(errno));
                                while (fgets(line, sizeof(line), in)) {
                                        if (!first || i == 0)
                                                fputs(line, out);
                                        first = false;
                                }
                                fclose(in);
                        }
                        if (fclose(out) != 0)
                                bench_die("%s: %s", regdir, strerror(errno));
                }
        }

        /* The broker: mosquitto's defaults take any number of connections
         * (max_connections -1); the descriptors are what limits it. */
        bench_broker_start(opt.mosquitto, "mosquitto.conf", "mosquitto.log", "max_connections -1\n", &broker_pid,
                           &broker_port);
        /* The school brokers: the bridge of broker-config/mosquitto-school.conf
         * (persistent sessions on both sides, QoS 1, the terminals' channels out
         * and their commands in), in plain TCP and without credentials, to the
         * county broker's port; it retries after 1 s rather than 5. */
        for (int e = 0; e < opt.edges; e++) {
                char name[64], log_name[64];

                snprintf(name, sizeof(name), "mosquitto-school-%d.conf", e + 1);
                snprintf(log_name, sizeof(log_name), "mosquitto-school-%d.log", e + 1);
                snprintf(text, sizeof(text),
                         "max_connections -1\n"
                         "connection bbt-county\naddress 127.0.0.1:%d\nbridge_protocol_version mqttv311\n"
                         "remote_clientid bbt-bench-school-%d\nlocal_clientid bbt-bench-school-%d.local\n"
                         "cleansession false\nlocal_cleansession false\ntry_private true\nnotifications false\n"
                         "restart_timeout 1 5\nkeepalive_interval 60\n"
                         "topic bbt/v1/+/+/+/state out 1\ntopic bbt/v1/+/+/+/hb out 1\n"
                         "topic bbt/v1/+/+/+/usage out 1\ntopic bbt/v1/+/+/+/periph out 1\n"
                         "topic bbt/v1/+/+/+/inventory out 1\ntopic bbt/v1/+/+/+/alert out 1\n"
                         "topic bbt/v1/+/+/+/cmd/reply out 1\ntopic bbt/v1/+/+/+/cmd in 1\n",
                         broker_port, e + 1, e + 1);
                edge_pid[e] = -1;
                bench_broker_start(opt.mosquitto, name, log_name, text, &edge_pid[e], &edge_port[e]);
        }

        /* The aggregator. */
        snprintf(conf, sizeof(conf), "%s/aggregator.conf", bench_tmpdir);
        snprintf(q.s.path, sizeof(q.s.path), "%s/store.db", bench_tmpdir);
        snprintf(agg_log, sizeof(agg_log), "%s/aggregator.log", bench_tmpdir);
        {
                char reg[2304] = "";
                char *argv_a[] = { (char *)opt.aggregator, "-c", conf, NULL };

                if (opt.registry)
                        snprintf(reg, sizeof(reg),
                                 "[registry]\nschools = %s/schools.csv\nterminals = %s/terminals.csv\n"
                                 "calendar = %s/calendar.csv\nbells = %s/bells.csv\n",
                                 regdir, regdir, regdir, regdir);
                snprintf(text, sizeof(text),
                         "# generated by load-bench: broker, store, the county's registry; everything else at its "
                         "default\n"
                         "[broker]\nhost = 127.0.0.1\nport = %d\nclient_id = bbt-load-aggregator\n"
                         "[store]\npath = %s\n"
                         "%s"
                         "[aggregator]\nlog_level = %s\n"
                         "%s",
                         broker_port, q.s.path, reg, bench_verbose ? "info" : "notice", opt.sets);
                bench_write_file(conf, text);
                agg_pid = bench_spawn(argv_a, agg_log);
        }

        /* The probe's birth, until the store has it. */
        {
                char id[64];
                double t0 = bench_now();
                int status;

                snprintf(id, sizeof(id), "bbt-%s-" PROBE_SCHOOL "-" PROBE_TERMINAL, opt.county);
                bench_pub_open(&probe, id, opt.edges ? edge_port[0] : broker_port, 100);
                probe_publish(BBT_CH_STATE); /* retained: the aggregator has it once subscribed */
                for (;;) {
                        bench_check_signal();
                        if (waitpid(agg_pid, &status, WNOHANG) == agg_pid) {
                                agg_pid = -1;
                                bench_die("the aggregator died before it was ready (see %s)", agg_log);
                        }
                        if (bench_now() - t0 > 30)
                                bench_die("the probe's birth was not stored within 30 s (see %s)", agg_log);
                        if (mosquitto_loop(probe.mosq, 10, 1) != MOSQ_ERR_SUCCESS)
                                bench_die("probe: connection lost");
                        if (bench_store_open(&q.s) &&
                            (q.probe_id = bench_store_value(&q.s, "SELECT id FROM terminal WHERE school = '" PROBE_SCHOOL
                                                                  "' AND terminal = '" PROBE_TERMINAL
                                                                  "' AND received > 0")) > 0)
                                break;
                }
                store_prepare(&q);
                if (bench_verbose)
                        fprintf(stderr, "load-bench: probe stored after %.2f s (terminal id %ld)\n", bench_now() - t0,
                                q.probe_id);
        }

        /* The simulators. */
        snprintf(a_dur, sizeof(a_dur), "%d", opt.duration);
        snprintf(a_hb, sizeof(a_hb), "%d", opt.hb);
        snprintf(a_usage, sizeof(a_usage), "%d", opt.usage);
        snprintf(a_periph, sizeof(a_periph), "%d", opt.periph);
        for (int i = 0; i < n_sims; i++) {
                struct simproc *sp = &sims[i];
                char *argv_s[] = { (char *)opt.sim,  "--port",        sp->port,     "--county",    sp->county,
                                   "--schools",      sp->schools,     "--terminals", a_terms,      "--seed",
                                   a_seed,           "--connect-rate", sp->rate,    "--live",      a_dur,
                                   "--live-hb",      a_hb,            "--live-usage", a_usage,     "--live-periph",
                                   a_periph,         "--produced",    sp->produced, NULL };

                snprintf(sp->port, sizeof(sp->port), "%d", opt.edges ? edge_port[i % opt.edges] : broker_port);
                sl[i].fd = open(sp->log, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
                if (sl[i].fd < 0)
                        bench_die("%s: %s", sp->log, strerror(errno));
                lseek(sl[i].fd, 0, SEEK_END); /* past what --only-files said */
                sp->pid = bench_spawn(argv_s, sp->log);
        }
        t_sim0 = bench_now();
        printf("load-bench: bbt-sim --live %d: %d schools x %d terminals in %d process%s (counties %s..%s), "
               "connecting %d a second; probe every 1 s; up to %d s in all\n",
               opt.duration, opt.schools, opt.terminals, n_sims, n_sims > 1 ? "es" : "", sims[0].county,
               sims[n_sims - 1].county, opt.connect_rate, opt.max_total);
        if (opt.edges)
                printf("load-bench: behind %d school broker%s bridged to the county broker (the probe behind the "
                       "first)\n",
                       opt.edges, opt.edges > 1 ? "s" : "");

        next_probe = next_poll = next_storm_poll = next_sample = t_sim0;
        for (;;) {
                double t = bench_now(), wait_s;
                int status;

                bench_check_signal();
                if (t > deadline)
                        bench_die("timeout after %d s: the simulator %s, %lld of %lld produced stored", opt.max_total,
                                  !t_sim_end ? "still running" : "done", samples[n_samples ? n_samples - 1 : 0].stored,
                                  produced);
                if (!t_sim_end && t >= next_probe) {
                        probe_publish(BBT_CH_PERIPH);
                        next_probe += 1.0;
                }
                if (t >= next_poll) {
                        probe_poll(&q);
                        next_poll = t + POLL_S;
                }
                if (!t_storm_done && t >= next_storm_poll) {
                        long births = (long)step_value(q.births);

                        next_storm_poll = t + STORM_POLL_S;
                        if (all.clients > 0 && births >= all.clients) {
                                t_storm_done = bench_now();
                                printf("load-bench: connect storm: all %ld terminals' births and inventories stored "
                                       "%.1f s after the simulator started\n",
                                       all.clients, t_storm_done - t_sim0);
                        }
                }
                if (t >= next_sample && n_samples < MAX_SAMPLES) {
                        struct sample *s = &samples[n_samples++];

                        simlog_all(sl, n_sims, &all, t);
                        if (!t_all_connected && all.clients > 0 && all.connected == all.clients) {
                                t_all_connected = all.t_line;
                                printf("load-bench: all %ld terminals connected %.1f s after the simulator started\n",
                                       all.clients, t_all_connected - t_sim0);
                        }
                        s->t = t;
                        s->stored = step_value(q.stored);
                        s->births = t_storm_done ? all.clients : (long)step_value(q.births);
                        s->acked = all.acked;
                        s->t_acked = all.t_line;
                        s->connected = all.connected;
                        proc_sample(agg_pid, &s->agg);
                        proc_sample(broker_pid, &s->broker);
                        sims_sample(&s->sim);
                        sum_sample(edge_pid, opt.edges, &s->edge);
                        s->cpu_self = bench_cpu_self();
                        next_sample += SAMPLE_S;
                        if (bench_verbose && n_samples % 10 == 0)
                                fprintf(stderr,
                                        "load-bench: %4.0f s: %ld/%ld connected, %lld acked, %lld stored, %ld with "
                                        "inventory; aggregator %.1f s CPU, %ld kB\n",
                                        t - t_sim0, all.connected, all.clients, all.acked, s->stored, s->births,
                                        s->agg.cpu, s->agg.rss);
                        if (t_sim_end && produced >= 0 && s->stored >= produced && !t_drained) {
                                t_drained = t;
                                break;
                        }
                        if (t_sim_end && t - t_sim_end > opt.drain)
                                bench_die("the store has %lld of the %lld messages produced %d s after the simulator "
                                          "stopped (see %s)",
                                          s->stored, produced, opt.drain, agg_log);
                }
                if (waitpid(agg_pid, &status, WNOHANG) == agg_pid) {
                        agg_pid = -1;
                        bench_die("the aggregator died (status %d; see %s)", status, agg_log);
                }
                if (waitpid(broker_pid, &status, WNOHANG) == broker_pid) {
                        broker_pid = -1;
                        bench_die("mosquitto died (status %d)", status);
                }
                for (int e = 0; e < opt.edges; e++)
                        if (waitpid(edge_pid[e], &status, WNOHANG) == edge_pid[e]) {
                                edge_pid[e] = -1;
                                bench_die("school mosquitto %d died (status %d; see mosquitto-school-%d.log)", e + 1,
                                          status, e + 1);
                        }
                sims_running = 0;
                for (int i = 0; i < n_sims; i++) {
                        struct simproc *sp = &sims[i];
                        FILE *f;

                        if (sp->pid <= 0)
                                continue;
                        if (waitpid(sp->pid, &status, WNOHANG) != sp->pid) {
                                sims_running++;
                                continue;
                        }
                        sp->pid = -1;
                        sp->status = status;
                        f = fopen(sp->produced, "re");
                        if (!f || fscanf(f, "%lld", &sp->produced_n) != 1)
                                bench_die("bbt-sim stopped (status %d) without writing %s (see %s)", status,
                                          sp->produced, sp->log);
                        fclose(f);
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                                sim_status = status;
                }
                if (!sims_running && !t_sim_end) {
                        t_sim_end = bench_now();
                        simlog_all(sl, n_sims, &all, t_sim_end);
                        produced = 0;
                        for (int i = 0; i < n_sims; i++)
                                produced += sims[i].produced_n;
                        if (sim_status == -1)
                                sim_status = 0;
                        printf("load-bench: bbt-sim stopped after %.1f s (status %d): %lld messages produced\n",
                               t_sim_end - t_sim0, WIFEXITED(sim_status) ? WEXITSTATUS(sim_status) : -1, produced);
                        if (!t_storm_done)
                                bench_die("the connect storm never finished: %lld of %ld terminals with an inventory",
                                          step_value(q.births), all.clients);
                }
                /* Until the next thing due. */
                wait_s = next_poll - bench_now();
                if (!t_sim_end && next_probe - bench_now() < wait_s)
                        wait_s = next_probe - bench_now();
                if (mosquitto_loop(probe.mosq, wait_s > 0.001 ? (int)(wait_s * 1000) : 1, 1) != MOSQ_ERR_SUCCESS)
                        bench_die("probe: connection to the broker lost");
        }
        /* The last probe events: a second at most. */
        for (double t0 = bench_now(); bench_now() - t0 < 1.0 && !vis_t[probe_seq];) {
                mosquitto_loop(probe.mosq, 10, 1);
                probe_poll(&q);
        }

        /* A report over the live store, as a county would run it. */
        {
                char out[512], rlog[512];
                char *argv_r[] = { (char *)opt.report, "loss", "-c", conf, "-o", out, NULL };
                double t0 = bench_now();
                pid_t pid;
                int status;

                snprintf(out, sizeof(out), "%s/report-loss.txt", bench_tmpdir);
                snprintf(rlog, sizeof(rlog), "%s/report.log", bench_tmpdir);
                pid = bench_spawn(argv_r, rlog);
                while (waitpid(pid, &status, WNOHANG) != pid) {
                        if (bench_now() - t0 > 60) {
                                bench_stop_pid(pid);
                                status = -1;
                                break;
                        }
                        bench_sleep_ms(10);
                }
                printf("load-bench: bbt-report loss on the live store: %.2f s, status %d (%s)\n", bench_now() - t0,
                       status, out);
        }

        /* Stop the aggregator (it commits what it has) and check the store. */
        bench_pub_close(&probe);
        {
                int status = bench_stop_child(&agg_pid, "aggregator");
                long long raw, stored, dups, dup_rows, rejected, lost, gaps, high, probe_rows, probe_recv;
                char sql[512];

                store_close(&q);
                if (!bench_store_open(&q.s))
                        bench_die("cannot open the store after the run");
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM raw WHERE terminal_id != %ld", q.probe_id);
                raw = bench_store_value(&q.s, sql);
                snprintf(sql, sizeof(sql),
                         "SELECT (SELECT value FROM counter WHERE name = 'stored') - (SELECT received FROM terminal "
                         "WHERE id = %ld)",
                         q.probe_id);
                stored = bench_store_value(&q.s, sql);
                dups = bench_store_value(&q.s, "SELECT coalesce((SELECT value FROM counter WHERE name = "
                                               "'duplicates'), 0)");
                dup_rows = bench_store_value(&q.s, "SELECT coalesce(sum(duplicates), 0) FROM terminal");
                rejected = bench_store_value(&q.s, "SELECT coalesce(sum(value), 0) FROM counter WHERE name LIKE "
                                                   "'reject_%'");
                lost = bench_store_value(&q.s, "SELECT coalesce(sum(lost), 0) FROM terminal");
                gaps = bench_store_value(&q.s, "SELECT count(*) FROM gap");
                snprintf(sql, sizeof(sql), "SELECT coalesce(sum(high_seq), 0) FROM terminal WHERE id != %ld",
                         q.probe_id);
                high = bench_store_value(&q.s, sql);
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM periph_event WHERE terminal_id = %ld", q.probe_id);
                probe_rows = bench_store_value(&q.s, sql);
                snprintf(sql, sizeof(sql), "SELECT received FROM terminal WHERE id = %ld", q.probe_id);
                probe_recv = bench_store_value(&q.s, sql);
                bench_store_close(&q.s);
                printf("load-bench: the store after the run (aggregator exit status %d): %lld raw rows for %lld "
                       "produced, 'stored' %lld, sum of high seqs %lld; duplicates received %lld (terminals' %lld), "
                       "rejected %lld, lost %lld, gaps open %lld; probe: %lld of %" PRId64
                       " periph events, %lld received\n",
                       status, raw, produced, stored, high, dups, dup_rows, rejected, lost, gaps, probe_rows,
                       probe_seq - 1, probe_recv);
                if (raw == produced && stored == produced && high == produced && rejected == 0 && gaps == 0 &&
                    lost == 0 && probe_rows == probe_seq - 1 && probe_recv == probe_seq) {
                        printf("load-bench: exactly once: every produced message stored once (%lld = %lld), nothing "
                               "rejected, lost or missing: PASS\n",
                               raw, produced);
                } else {
                        printf("load-bench: exactly once: FAIL\n");
                        exit_code = 3;
                }
        }
        for (int e = 0; e < opt.edges; e++)
                bench_stop_child(&edge_pid[e], "school mosquitto");
        bench_stop_child(&broker_pid, "mosquitto");

        /* The figures. */
        {
                double w1 = t_sim0 + opt.duration - 2, w0 = w1 - opt.window, secs;
                const struct sample *a, *b, *st0, *st1;
                struct lat lw, ls;
                long rss_max[4] = { 0, 0, 0, 0 };
                double offered, stored_rate, expected, storm_secs, storm_peak = 0;
                bool clamped = false;

                if (w0 < t_storm_done + 10) {
                        w0 = t_storm_done + 10;
                        clamped = true;
                }
                a = sample_at(w0);
                b = sample_before(w1);
                secs = b->t - a->t;
                if (secs <= 0)
                        bench_die("no steady state to measure: the storm ended %.0f s into a %d s run",
                                  t_storm_done - t_sim0, opt.duration);
                for (const struct sample *s = a; s <= b; s++) {
                        rss_max[0] = s->agg.rss > rss_max[0] ? s->agg.rss : rss_max[0];
                        rss_max[1] = s->broker.rss > rss_max[1] ? s->broker.rss : rss_max[1];
                        rss_max[2] = s->sim.rss > rss_max[2] ? s->sim.rss : rss_max[2];
                        rss_max[3] = s->edge.rss > rss_max[3] ? s->edge.rss : rss_max[3];
                }
                offered = b->t_acked > a->t_acked ? (double)(b->acked - a->acked) / (b->t_acked - a->t_acked) : NAN;
                stored_rate = (double)(b->stored - a->stored) / secs;
                expected = (double)all.clients * (1.0 / opt.hb + 1.0 / opt.usage + 1.0 / opt.periph);
                lw = latency(a->t, b->t);
                ls = latency(t_sim0, t_storm_done);
                storm_secs = t_storm_done - t_sim0;
                st0 = &samples[0];
                st1 = sample_at(t_storm_done);
                for (const struct sample *s = st0 + 1; s <= st1; s++)
                        if ((double)(s->stored - (s - 1)->stored) / (s->t - (s - 1)->t) > storm_peak)
                                storm_peak = (double)(s->stored - (s - 1)->stored) / (s->t - (s - 1)->t);

                printf("\nload-bench: %ld terminals connected (%d x %d in the registry), heartbeat %d s, usage %d s, "
                       "periph %d s; measured over %.0f s (%.0f..%.0f s after the simulator started)%s\n",
                       all.clients, opt.schools, opt.terminals, opt.hb, opt.usage, opt.periph, secs, a->t - t_sim0,
                       b->t - t_sim0, clamped ? ", clamped to start 10 s after the connect storm" : "");
                printf("  offered        %8.1f msgs/s (acknowledged by the broker to the simulator; expected %.1f)\n",
                       offered, expected);
                printf("  stored         %8.1f msgs/s (counter 'stored'); stored / offered %.3f\n", stored_rate,
                       stored_rate / offered);
                printf("  probe latency  p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms over %zu events (%zu not "
                       "seen); poll every %.0f ms\n",
                       lw.p50, lw.p90, lw.p99, lw.max, lw.n, lw.missing, POLL_S * 1000);
                print_proc("bbt-aggregator", &a->agg, &b->agg, secs, rss_max[0]);
                print_proc(opt.edges ? "county broker" : "mosquitto", &a->broker, &b->broker, secs, rss_max[1]);
                if (opt.edges)
                        print_proc(opt.edges > 1 ? "school brokers" : "school broker", &a->edge, &b->edge, secs,
                                   rss_max[3]);
                print_proc(n_sims > 1 ? "bbt-sim (sum)" : "bbt-sim", &a->sim, &b->sim, secs, rss_max[2]);
                printf("  load-bench     CPU %6.1f %% of one core (probe, poller, sampling)\n",
                       100 * (b->cpu_self - a->cpu_self) / secs);
                printf("  connect storm  %ld terminals connected in %.1f s, births and inventories stored in %.1f s "
                       "(%lld messages; peak %.0f stored/s); aggregator %.0f %%, broker %.0f %% of a core over it; "
                       "probe latency p50 %.0f ms, max %.0f ms (%zu events, %zu not seen)\n",
                       all.clients, t_all_connected - t_sim0, storm_secs, st1->stored - st0->stored, storm_peak,
                       pct_cpu(&st0->agg, &st1->agg, st1->t - st0->t), pct_cpu(&st0->broker, &st1->broker,
                                                                              st1->t - st0->t),
                       ls.p50, ls.max, ls.n, ls.missing);
                printf("  drain          the store held all %lld produced %.1f s after the simulator stopped "
                       "(status %d)\n",
                       produced, t_drained - t_sim_end, WIFEXITED(sim_status) ? WEXITSTATUS(sim_status) : -1);
                if (all.other_lines)
                        printf("  bbt-sim said %ld other lines, e.g. \"%s\"\n", all.other_lines, all.first_other[0]);
                printf("  total          %.0f s; %s\n", bench_now() - t_begin, nofile_said);
                if (markdown) {
                        printf("\n| figure | value |\n| --- | ---: |\n");
                        printf("| terminals connected (registry %d × %d; %d bbt-sim process%s) | %ld |\n", opt.schools,
                               opt.terminals, n_sims, n_sims > 1 ? "es" : "", all.clients);
                        printf("| window | last %.0f s of %d s live |\n", secs, opt.duration);
                        printf("| offered (broker-acknowledged to bbt-sim) | %.1f msgs/s (expected %.1f) |\n", offered,
                               expected);
                        printf("| stored (counter `stored`) | %.1f msgs/s (%.3f × offered) |\n", stored_rate,
                               stored_rate / offered);
                        printf("| probe latency p50 / p90 / p99 / max | %.0f / %.0f / %.0f / %.0f ms (%zu events) |\n",
                               lw.p50, lw.p90, lw.p99, lw.max, lw.n);
                        printf("| bbt-aggregator CPU | %.1f %% of one core |\n", pct_cpu(&a->agg, &b->agg, secs));
                        printf("| bbt-aggregator VmRSS end / VmHWM | %ld kB / %ld kB |\n", b->agg.rss, b->agg.hwm);
                        printf("| %s CPU | %.1f %% of one core |\n", opt.edges ? "county mosquitto" : "mosquitto",
                               pct_cpu(&a->broker, &b->broker, secs));
                        printf("| %s VmRSS end / VmHWM | %ld kB / %ld kB |\n",
                               opt.edges ? "county mosquitto" : "mosquitto", b->broker.rss, b->broker.hwm);
                        if (opt.edges) {
                                printf("| %d school mosquittos (sum) CPU | %.1f %% of one core |\n", opt.edges,
                                       pct_cpu(&a->edge, &b->edge, secs));
                                printf("| %d school mosquittos (sum) VmRSS end / VmHWM | %ld kB / %ld kB |\n",
                                       opt.edges, b->edge.rss, b->edge.hwm);
                        }
                        printf("| bbt-sim CPU | %.1f %% of one core |\n", pct_cpu(&a->sim, &b->sim, secs));
                        printf("| bbt-sim VmRSS end / VmHWM | %ld kB / %ld kB |\n", b->sim.rss, b->sim.hwm);
                        printf("| connect storm: all connected | %.1f s |\n", t_all_connected - t_sim0);
                        printf("| connect storm: all births + inventories stored | %.1f s (peak %.0f stored/s) |\n",
                               storm_secs, storm_peak);
                        printf("| probe latency during the storm p50 / max | %.0f / %.0f ms (%zu events) |\n", ls.p50,
                               ls.max, ls.n);
                        printf("| store after the run | %lld produced, %lld stored |\n", produced,
                               samples[n_samples - 1].stored);
                }
        }
        for (int i = 0; i < n_sims; i++)
                close(sl[i].fd);
        cleanup();
        return exit_code;
}
