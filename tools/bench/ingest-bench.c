/* ingest-bench: bbt-aggregator's ingest rate from the broker into the store,
 * against a bare libmosquitto QoS 1 subscriber that only counts, in the same run.
 *
 * For each run, in a temporary directory:
 *
 *   1. mosquitto on 127.0.0.1 on a free port, from a generated config that
 *      lets it queue everything for a slow subscriber (max_queued_messages,
 *      max_inflight_messages; nothing is dropped), started afresh for every
 *      measurement so that no session of an earlier one lingers;
 *   2. the subscriber: either the bare one (a child of this process: libuv +
 *      libmosquitto driven exactly as runtime/mqtt.c drives it, a persistent
 *      session, QoS 1 on bbt/v1/#, counting messages) or bbt-aggregator with a
 *      generated config (store in the temp dir, batch settings at their
 *      defaults);
 *   3. probes (a heartbeat of terminal PROBE/P01 every 100 ms) until the
 *      subscriber has one: then it is subscribed;
 *   4. this process publishes the N pre-encoded messages at QoS 1 as fast as
 *      the broker acknowledges them (a window of 1000 in flight).
 *
 * The clock starts just before the first of the N is published and stops when
 * the bare subscriber has received the N-th (it reports its CLOCK_MONOTONIC
 * times through a pipe), or when the aggregator's store says N are stored:
 * counter 'stored' minus the probe terminal's 'received', read from a
 * read-only SQLite connection every 10 ms (both are written in the same
 * transaction). Runs alternate bare, aggregator, bare, aggregator, ...; the
 * medians and the ratio aggregator / bare are printed.
 *
 * The messages: a fixed, seeded mix over --terminals terminals (200 schools
 * of 25 for 5,000, 40 schools for the default 1,000), each terminal's seq rising from 1: a
 * state birth first, then heartbeats (~400 bytes) with a usage interval about
 * every sixth message, interleaved round-robin across the terminals.
 *
 * With --postgresql URI (a server's base URI, postgresql://USER@HOST:PORT, a
 * role that may create databases), every run measures a third subscriber:
 * bbt-aggregator with a PostgreSQL store (a new database per measurement,
 * dropped after it), polled like the SQLite one; the ratios PostgreSQL /
 * bare and PostgreSQL / SQLite are printed too. With --share-group as well,
 * a fourth: two bbt-aggregators in one MQTT share group writing one
 * PostgreSQL database (docs/aggregator.md, "Several aggregators"), their
 * CPU summed; the ratio two / one on PostgreSQL is printed.
 *
 * Exit status: 0 measured (the verdict is printed, not returned), 1 something
 * failed (a process died, a timeout, messages missing), 2 bad usage. SIGINT,
 * SIGTERM, SIGHUP: stop what was started, remove the temp dir, exit 1. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <sqlite3.h>
#include <uv.h>

#include <bbt/protocol.h>

#include "bench-util.h"

#ifndef BBT_AGGREGATOR_PATH
#define BBT_AGGREGATOR_PATH "bbt-aggregator"
#endif

#define COUNTY "510107"
#define PROBE_SCHOOL "PROBE"
#define PROBE_TERMINAL "P01"
#define WINDOW 1000
#define TERMS_PER_SCHOOL 25

static struct {
        long n;
        int runs;
        int terminals;
        int usage_every; /* about one in this many messages is a usage interval */
        unsigned seed;
        double timeout_s;
        const char *aggregator;
        const char *mosquitto;
        char sets[2048]; /* extra aggregator config: "[section]\nkey = value\n"... */
        const char *pg;  /* --postgresql: a server's base URI; NULL: SQLite only */
        bool share;      /* --share-group: also two aggregators in a share group on PostgreSQL */
} opt = {
        .n = 200000,
        .runs = 3,
        .terminals = 1000,
        .usage_every = 6,
        .seed = 1,
        .timeout_s = 300,
        .aggregator = BBT_AGGREGATOR_PATH,
        .mosquitto = "mosquitto",
};

static pid_t broker_pid = -1, sub_pid = -1, sub2_pid = -1;
static int broker_port;

static void cleanup(void)
{
        bench_stop_child(&sub_pid, "subscriber");
        bench_stop_child(&sub2_pid, "second aggregator");
        bench_stop_child(&broker_pid, "mosquitto");
        bench_remove_tmpdir();
}

/* ---- the broker ---- */

static void broker_start(int run)
{
        char log[64];

        snprintf(log, sizeof(log), "mosquitto-%d.log", run);
        bench_broker_start(opt.mosquitto, "mosquitto.conf", log, NULL, &broker_pid, &broker_port);
}

/* ---- the messages ---- */

struct msgs {
        char *arena;
        size_t *off;       /* n + 1 offsets into arena */
        int *term;         /* terminal index of each message */
        enum bbt_channel *ch;
        char **topics;     /* terminals × channel (state, hb, usage) */
        size_t bytes;
        long n_hb, n_usage, n_state;
};

static const char *school_of(int t, char *buf, size_t size)
{
        snprintf(buf, size, "S%03d", t / TERMS_PER_SCHOOL + 1);
        return buf;
}

static void topic_of(const char *school, const char *terminal, enum bbt_channel ch, char *buf, size_t size)
{
        bench_topic(COUNTY, school, terminal, ch, buf, size);
}

static int topic_slot(enum bbt_channel ch)
{
        return ch == BBT_CH_STATE ? 0 : ch == BBT_CH_HB ? 1 : 2;
}

static unsigned long long rng_state;

static uint32_t rnd(void)
{
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        return (uint32_t)(rng_state >> 33);
}

static char *encode_hb(int64_t seq, int64_t ts, int t, size_t *len)
{
        static const char *const ifs[] = { "eth0", "wlan0", "docker0" };
        struct bbt_msg m;
        struct bbt_error e;
        char *json, ebuf[300];
        struct bbt_hb *hb = &m.body.hb;

        bbt_msg_init(&m, BBT_CH_HB);
        m.seq = seq;
        m.ts = ts;
        m.boot = 3;
        hb->uptime = 3600 + seq * 60;
        hb->load[0] = (rnd() % 300) / 100.0;
        hb->load[1] = (rnd() % 200) / 100.0;
        hb->load[2] = (rnd() % 100) / 100.0;
        hb->cpu = (rnd() % 10000) / 100.0;
        hb->mem_total = 8250511360;
        hb->mem_available = 2000000000 + (int64_t)(rnd() % 4000000) * 1000;
        hb->disk_root.total = 270553174016;
        hb->disk_root.free = 85688283136 - (int64_t)(rnd() % 1000000) * 4096;
        hb->has_disk_spool = true;
        hb->disk_spool = hb->disk_root;
        hb->has_temp = true;
        hb->temp_max = 40 + (rnd() % 300) / 10.0;
        hb->temp_source = "coretemp";
        hb->n_net = 3;
        for (int i = 0; i < 3; i++) {
                hb->net[i].ifname = ifs[i];
                hb->net[i].up = i == 0 || (i == 1 && t % 3 == 0);
        }
        hb->state = (enum bbt_usage_state)(rnd() % BBT_USAGE__COUNT);
        hb->spool_depth = 0;
        hb->spool_dropped = 0;
        hb->clock_synced = true;
        if (bbt_msg_encode(&m, &json, len, &e) < 0)
                bench_die("encode hb: %s", bbt_error_format(&e, ebuf, sizeof(ebuf)));
        return json;
}

static char *encode_usage(int64_t seq, int64_t ts, size_t *len)
{
        struct bbt_msg m;
        struct bbt_error e;
        char *json, ebuf[300];
        struct bbt_usage *u = &m.body.usage;

        bbt_msg_init(&m, BBT_CH_USAGE);
        m.seq = seq;
        m.ts = ts;
        m.boot = 3;
        u->start = ts - 300000;
        u->end = ts;
        u->state = (enum bbt_usage_state)(rnd() % BBT_USAGE__COUNT);
        if (u->state == BBT_USAGE_ACTIVE) {
                u->touch = rnd() % 2000;
                u->pen = rnd() % 200;
                u->mouse = rnd() % 500;
                u->key = rnd() % 100;
                u->interactive_ms = rnd() % 300000;
                u->audio_ms = rnd() % 300000;
        }
        if (bbt_msg_encode(&m, &json, len, &e) < 0)
                bench_die("encode usage: %s", bbt_error_format(&e, ebuf, sizeof(ebuf)));
        return json;
}

static void msgs_make(struct msgs *ms)
{
        int64_t *seq = calloc((size_t)opt.terminals, sizeof(*seq));
        long per_term = (opt.n + opt.terminals - 1) / opt.terminals;
        int64_t t0 = bench_real_ms() - per_term * 60000; /* the last heartbeats are about now */
        size_t cap = (size_t)opt.n * 450 + 4096, used = 0;

        memset(ms, 0, sizeof(*ms));
        rng_state = opt.seed;
        ms->arena = malloc(cap);
        ms->off = malloc(((size_t)opt.n + 1) * sizeof(*ms->off));
        ms->term = malloc((size_t)opt.n * sizeof(*ms->term));
        ms->ch = malloc((size_t)opt.n * sizeof(*ms->ch));
        ms->topics = calloc((size_t)opt.terminals * 3, sizeof(*ms->topics));
        if (!seq || !ms->arena || !ms->off || !ms->term || !ms->ch || !ms->topics)
                bench_die("out of memory for %ld messages", opt.n);
        for (int t = 0; t < opt.terminals; t++) {
                static const enum bbt_channel chs[3] = { BBT_CH_STATE, BBT_CH_HB, BBT_CH_USAGE };
                char school[16], term[16], topic[BBT_TOPIC_MAX];

                school_of(t, school, sizeof(school));
                snprintf(term, sizeof(term), "T%02d", t % TERMS_PER_SCHOOL + 1);
                for (int c = 0; c < 3; c++) {
                        topic_of(school, term, chs[c], topic, sizeof(topic));
                        ms->topics[t * 3 + c] = strdup(topic);
                }
        }
        for (long i = 0; i < opt.n; i++) {
                int t = (int)(i % opt.terminals);
                int64_t s = ++seq[t];
                int64_t ts = t0 + s * 60000 + t * 37;
                enum bbt_channel ch;
                size_t len;
                char *json;

                if (s == 1)
                        ch = BBT_CH_STATE, json = bench_encode_state(s, ts, &len), ms->n_state++;
                else if (rnd() % (unsigned)opt.usage_every == 0)
                        ch = BBT_CH_USAGE, json = encode_usage(s, ts, &len), ms->n_usage++;
                else
                        ch = BBT_CH_HB, json = encode_hb(s, ts, t, &len), ms->n_hb++;
                if (used + len > cap) {
                        cap *= 2;
                        ms->arena = realloc(ms->arena, cap);
                        if (!ms->arena)
                                bench_die("out of memory");
                }
                memcpy(ms->arena + used, json, len);
                free(json);
                ms->off[i] = used;
                used += len;
                ms->term[i] = t;
                ms->ch[i] = ch;
        }
        ms->off[opt.n] = used;
        ms->bytes = used;
        free(seq);
}

/* ---- the bare subscriber (a child process) ---- */

static struct {
        uv_loop_t loop;
        uv_poll_t poll;
        uv_timer_t misc;
        struct mosquitto *mosq;
        int poll_events;
        int out_fd;
        bool ready, done;
        long count;
        double first, last;
} bare;

static void bare_poll_cb(uv_poll_t *h, int status, int events);

static void bare_poll_update(void)
{
        int events = UV_READABLE;

        if (mosquitto_want_write(bare.mosq))
                events |= UV_WRITABLE;
        if (events != bare.poll_events && uv_poll_start(&bare.poll, events, bare_poll_cb) == 0)
                bare.poll_events = events;
}

/* As runtime/mqtt.c: one loop_read (which reads one packet when nothing is
 * queued) per readable event, loop_write when writable. */
static void bare_poll_cb(uv_poll_t *h, int status, int events)
{
        int rc = MOSQ_ERR_SUCCESS;

        (void)h;
        if (status < 0)
                events = UV_READABLE;
        if (events & UV_READABLE)
                rc = mosquitto_loop_read(bare.mosq, 1);
        if (rc == MOSQ_ERR_SUCCESS && (events & UV_WRITABLE))
                rc = mosquitto_loop_write(bare.mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(bare.mosq) < 0) {
                fprintf(stderr, "bare subscriber: connection lost: %s\n", mosquitto_strerror(rc));
                _exit(1);
        }
        if (bare.done) {
                uv_stop(&bare.loop);
                return;
        }
        bare_poll_update();
}

static void bare_misc_cb(uv_timer_t *t)
{
        (void)t;
        if (mosquitto_loop_misc(bare.mosq) != MOSQ_ERR_SUCCESS)
                _exit(1);
        bare_poll_update();
}

static void bare_on_connect(struct mosquitto *m, void *obj, int rc)
{
        (void)obj;
        if (rc != 0) {
                fprintf(stderr, "bare subscriber: refused: %s\n", mosquitto_connack_string(rc));
                _exit(1);
        }
        mosquitto_subscribe(m, NULL, "bbt/v1/#", 1);
}

static void bare_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
        char line[128];
        double t = bench_now();

        (void)m, (void)obj;
        if (strstr(msg->topic, "/" PROBE_SCHOOL "/")) {
                if (!bare.ready) {
                        bare.ready = true;
                        if (write(bare.out_fd, "R\n", 2) != 2)
                                _exit(1);
                }
                return;
        }
        if (bare.count++ == 0)
                bare.first = t;
        bare.last = t;
        if (bare.count == opt.n) {
                int len = snprintf(line, sizeof(line), "D %.9f %.9f %ld %.3f\n", bare.first, bare.last, bare.count,
                                   bench_cpu_self());

                bare.done = true;
                if (write(bare.out_fd, line, (size_t)len) != len)
                        _exit(1);
        }
}

static void bare_main(int out_fd)
{
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        bare.out_fd = out_fd;
        uv_loop_init(&bare.loop);
        mosquitto_lib_init();
        bare.mosq = mosquitto_new("bbt-bench-bare-sub", false, NULL);
        if (!bare.mosq)
                _exit(1);
        mosquitto_int_option(bare.mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        mosquitto_int_option(bare.mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_connect_callback_set(bare.mosq, bare_on_connect);
        mosquitto_message_callback_set(bare.mosq, bare_on_message);
        if (mosquitto_connect(bare.mosq, "127.0.0.1", broker_port, 60) != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "bare subscriber: cannot connect\n");
                _exit(1);
        }
        uv_poll_init_socket(&bare.loop, &bare.poll, mosquitto_socket(bare.mosq));
        bare_poll_update();
        uv_timer_init(&bare.loop, &bare.misc);
        uv_timer_start(&bare.misc, bare_misc_cb, 1000, 1000);
        uv_run(&bare.loop, UV_RUN_DEFAULT);
        mosquitto_disconnect(bare.mosq);
        mosquitto_loop_write(bare.mosq, 1);
        _exit(0);
}

/* ---- the publisher (this process) ---- */

static int64_t probe_seq;

static void publish_probe(struct bench_pub *p)
{
        char topic[BBT_TOPIC_MAX];
        size_t len;
        char *json = encode_hb(++probe_seq, bench_real_ms(), 0, &len);

        topic_of(PROBE_SCHOOL, PROBE_TERMINAL, BBT_CH_HB, topic, sizeof(topic));
        if (mosquitto_publish(p->mosq, NULL, topic, (int)len, json, 1, false) != MOSQ_ERR_SUCCESS)
                bench_die("publisher: probe not sent");
        free(json);
}

/* ---- the aggregator's store, read-only ---- */

struct poller {
        struct bench_store s;
        sqlite3_stmt *st;
};

#define STORED_SQL                                                                                  \
        "SELECT coalesce((SELECT value FROM counter WHERE name = 'stored'), 0)"                     \
        " - coalesce((SELECT received FROM terminal WHERE school = '" PROBE_SCHOOL "'), 0)"

/* Messages of the benchmark stored so far (probes excluded); -1 if the store
 * is not there yet. */
static long store_count(struct poller *q)
{
        long v = -1;
        int rc;

        if (!bench_store_open(&q->s))
                return -1;
        if (q->s.pg)
                return bench_store_value(&q->s, STORED_SQL);
        if (!q->st &&
            sqlite3_prepare_v2(q->s.db, STORED_SQL, -1, &q->st, NULL) != SQLITE_OK) {
                /* Schema not created yet. */
                sqlite3_finalize(q->st);
                q->st = NULL;
                return -1;
        }
        rc = sqlite3_step(q->st);
        if (rc == SQLITE_ROW)
                v = (long)sqlite3_column_int64(q->st, 0);
        sqlite3_reset(q->st);
        return v;
}

static long store_counter(struct poller *q, const char *sql)
{
        return bench_store_value(&q->s, sql);
}

static void poller_close(struct poller *q)
{
        sqlite3_finalize(q->st);
        q->st = NULL;
        bench_store_close(&q->s);
}

/* ---- one measurement ---- */

struct result {
        double rate;        /* msgs/s from the first publish to the last received or stored */
        double secs;
        double pub_secs;    /* until the broker acknowledged the last publish */
        double first_last;  /* bare: first to last received */
        double cpu_sub, cpu_broker, cpu_pub;
        long long wchar;    /* aggregator: bytes written while measuring (sockets and files) */
};

enum sub_kind { SUB_BARE, SUB_AGGREGATOR, SUB_AGGREGATOR_PG, SUB_AGGREGATOR_PG2 };

/* Reads a line from FD (non-blocking) into BUF; true when one is complete. */
static bool read_line(int fd, char *buf, size_t size, size_t *len)
{
        while (*len + 1 < size) {
                ssize_t n = read(fd, buf + *len, 1);

                if (n <= 0)
                        return false;
                if (buf[(*len)++] == '\n') {
                        buf[*len] = '\0';
                        return true;
                }
        }
        return true;
}

/* A PostgreSQL measurement's line: X's rate against the bare subscriber's and against OTHER's. */
static void print_store_run(int r, const char *label, const char *who, const struct result *x,
                            const struct result *base, const char *other_name, const struct result *other)
{
        printf("run %d  %s %9.0f msgs/s  (%.2f s; publisher acked in %.2f s; CPU s: %s %.2f broker %.2f pub %.2f)"
               "  / bare %.3f  / %s %.3f\n",
               r + 1, label, x->rate, x->secs, x->pub_secs, who, x->cpu_sub, x->cpu_broker, x->cpu_pub,
               x->rate / base->rate, other_name, x->rate / other->rate);
}

static struct result measure(const struct msgs *ms, enum sub_kind kind, int run)
{
        struct result res = { 0 };
        struct poller q = { 0 };
        struct bench_pub p;
        int pipefd[2] = { -1, -1 };
        char line[256], log[512];
        size_t line_len = 0;
        double t_probe, t_next_poll, t0, t_end = 0, deadline, cpu_sub0, cpu_broker0, cpu_pub0;
        long long wchar0;
        long published = 0, stored = 0;
        bool ready = false, pub_done = false;
        int status;

        broker_start(run);
        if (kind == SUB_BARE) {
                if (pipe2(pipefd, O_CLOEXEC) < 0)
                        bench_die("pipe: %s", strerror(errno));
                fflush(NULL);
                sub_pid = fork();
                if (sub_pid < 0)
                        bench_die("fork: %s", strerror(errno));
                if (sub_pid == 0) {
                        close(pipefd[0]);
                        bare_main(pipefd[1]);
                }
                close(pipefd[1]);
                fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
        } else {
                char conf[512], text[4096];
                char *argv[] = { (char *)opt.aggregator, "-c", conf, NULL };

                snprintf(conf, sizeof(conf), "%s/aggregator-%d.conf", bench_tmpdir, run);
                if (kind != SUB_AGGREGATOR) {
                        char sql[128];

                        snprintf(sql, sizeof(sql), "CREATE DATABASE bbt_bench_%ld_%d", (long)getpid(), run);
                        bench_pg_admin(opt.pg, sql);
                        snprintf(q.s.path, sizeof(q.s.path), "%s/bbt_bench_%ld_%d", opt.pg, (long)getpid(), run);
                } else {
                        snprintf(q.s.path, sizeof(q.s.path), "%s/store-%d.db", bench_tmpdir, run);
                }
                for (int k = 0; k < (kind == SUB_AGGREGATOR_PG2 ? 2 : 1); k++) {
                        snprintf(conf, sizeof(conf), "%s/aggregator-%d%s.conf", bench_tmpdir, run, k ? "b" : "");
                        snprintf(log, sizeof(log), "%s/aggregator-%d%s.log", bench_tmpdir, run, k ? "b" : "");
                        snprintf(text, sizeof(text),
                                 "# generated by ingest-bench: broker and store; everything else at its default\n"
                                 "[broker]\nhost = 127.0.0.1\nport = %d\nclient_id = bbt-bench-aggregator%s\n%s"
                                 "[store]\npath = %s\n"
                                 "[aggregator]\nlog_level = %s\n%s"
                                 "%s",
                                 broker_port, k ? "-b" : "", kind == SUB_AGGREGATOR_PG2 ? "share_group = bench\n" : "",
                                 q.s.path, bench_verbose ? "info" : "notice",
                                 kind == SUB_AGGREGATOR_PG2 ? "metrics_listen =\n" : "", opt.sets);
                        bench_write_file(conf, text);
                        if (k)
                                sub2_pid = bench_spawn(argv, log);
                        else
                                sub_pid = bench_spawn(argv, log);
                }
        }

        bench_pub_open(&p, NULL, broker_port, WINDOW);
        /* Probes until the subscriber has one. */
        t_probe = bench_now();
        for (double t_last_probe = 0; !ready;) {
                bench_check_signal();
                if (waitpid(sub_pid, &status, WNOHANG) == sub_pid) {
                        sub_pid = -1;
                        bench_die("the %s died before it was ready%s%s", kind == SUB_BARE ? "bare subscriber" : "aggregator",
                            kind == SUB_BARE ? "" : " (see ", kind == SUB_BARE ? "" : log);
                }
                if (bench_now() - t_probe > 30)
                        bench_die("the subscriber did not receive a probe in 30 s");
                if (bench_now() - t_last_probe >= 0.1) {
                        publish_probe(&p);
                        t_last_probe = bench_now();
                }
                mosquitto_loop(p.mosq, 10, 1);
                if (kind == SUB_BARE)
                        ready = read_line(pipefd[0], line, sizeof(line), &line_len) && line[0] == 'R';
                else
                        ready = store_count(&q) >= 0 &&
                                store_counter(&q, "SELECT received FROM terminal WHERE school = '" PROBE_SCHOOL "'") > 0;
        }
        line_len = 0;
        /* Let the last probes' acknowledgements come back. */
        for (double t = bench_now(); bench_now() - t < 0.2;)
                mosquitto_loop(p.mosq, 10, 1);
        p.acked = 0;

        cpu_sub0 = bench_cpu_of(sub_pid) + (sub2_pid > 0 ? bench_cpu_of(sub2_pid) : 0);
        cpu_broker0 = bench_cpu_of(broker_pid);
        cpu_pub0 = bench_cpu_self();
        wchar0 = bench_wchar_of(sub_pid);
        t0 = bench_now();
        t_next_poll = t0;
        deadline = t0 + opt.timeout_s;
        for (;;) {
                double t;

                bench_check_signal();
                while (published < opt.n && published - p.acked < WINDOW) {
                        long i = published;
                        const char *topic = ms->topics[ms->term[i] * 3 + topic_slot(ms->ch[i])];
                        int rc = mosquitto_publish(p.mosq, NULL, topic, (int)(ms->off[i + 1] - ms->off[i]),
                                                   ms->arena + ms->off[i], 1, false);

                        if (rc != MOSQ_ERR_SUCCESS)
                                bench_die("publish: %s", mosquitto_strerror(rc));
                        published++;
                }
                if (!pub_done && p.acked >= opt.n) {
                        pub_done = true;
                        res.pub_secs = bench_now() - t0;
                }
                if (mosquitto_loop(p.mosq, pub_done ? 5 : 1, 1) != MOSQ_ERR_SUCCESS)
                        bench_die("publisher: connection lost");
                t = bench_now();
                if (kind == SUB_BARE) {
                        if (read_line(pipefd[0], line, sizeof(line), &line_len)) {
                                double first, last, cpu;
                                long count;

                                if (sscanf(line, "D %lf %lf %ld %lf", &first, &last, &count, &cpu) != 4)
                                        bench_die("bare subscriber said: %s", line);
                                t_end = last;
                                res.first_last = last - first;
                                res.cpu_sub = cpu;
                                break;
                        }
                } else if (t >= t_next_poll) {
                        stored = store_count(&q);
                        t_next_poll = t + 0.01;
                        if (stored >= opt.n) {
                                t_end = bench_now();
                                res.cpu_sub = bench_cpu_of(sub_pid) + (sub2_pid > 0 ? bench_cpu_of(sub2_pid) : 0) -
                                              cpu_sub0;
                                res.wchar = bench_wchar_of(sub_pid) - wchar0;
                                break;
                        }
                }
                if (waitpid(sub_pid, &status, WNOHANG) == sub_pid) {
                        sub_pid = -1;
                        bench_die("the subscriber died during the run");
                }
                if (sub2_pid > 0 && waitpid(sub2_pid, &status, WNOHANG) == sub2_pid) {
                        sub2_pid = -1;
                        bench_die("the second aggregator died during the run");
                }
                if (t > deadline)
                        bench_die("timeout after %.0f s: %ld published, %ld acknowledged, %ld stored", opt.timeout_s,
                            published, p.acked, stored);
        }
        res.cpu_broker = bench_cpu_of(broker_pid) - cpu_broker0;
        res.cpu_pub = bench_cpu_self() - cpu_pub0;
        res.secs = t_end - t0;
        res.rate = (double)opt.n / res.secs;
        if (!pub_done)
                res.pub_secs = res.secs;
        bench_pub_close(&p);
        if (kind == SUB_BARE) {
                close(pipefd[0]);
                bench_stop_child(&sub_pid, "bare subscriber");
        } else {
                long rejected;

                bench_stop_child(&sub_pid, "aggregator");
                bench_stop_child(&sub2_pid, "second aggregator");
                stored = store_count(&q);
                rejected = store_counter(&q, "SELECT coalesce(sum(value), 0) FROM counter WHERE name LIKE 'reject_%'");
                if (stored != opt.n || rejected != 0)
                        bench_die("the store has %ld of the %ld messages and %ld rejected (see %s)", stored, opt.n,
                            rejected, log);
                poller_close(&q);
                if (kind != SUB_AGGREGATOR && !bench_keep) {
                        char sql[128];

                        snprintf(sql, sizeof(sql), "DROP DATABASE bbt_bench_%ld_%d", (long)getpid(), run);
                        bench_pg_admin(opt.pg, sql);
                }
        }
        bench_stop_child(&broker_pid, "mosquitto");
        return res;
}

/* ---- main ---- */

static double median(const double *v, int n)
{
        double s[64];

        memcpy(s, v, (size_t)n * sizeof(*v));
        qsort(s, (size_t)n, sizeof(*s), bench_cmp_double);
        return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: ingest-bench [OPTION]...\n"
                "bbt-aggregator's ingest rate (broker -> store) against a bare libmosquitto QoS 1\n"
                "subscriber that only counts, side by side, on 127.0.0.1.\n"
                "\n"
                "  -n, --messages N     messages per measurement (default 200000)\n"
                "  -r, --runs R         measurements of each, alternating (default 3, at most 32)\n"
                "  -t, --terminals T    terminals the messages are spread over (default 1000)\n"
                "      --usage-every K  about one message in K is a usage interval (default 6)\n"
                "      --seed S         message generator seed (default 1)\n"
                "      --timeout SECS   give up on a measurement after this long (default 300)\n"
                "      --aggregator PATH  bbt-aggregator to run (default the one built with this)\n"
                "      --mosquitto PATH   broker (default mosquitto from PATH)\n"
                "      --set SECTION.KEY=VALUE  add to the aggregator's config, e.g. store.batch_size=10000\n"
                "      --markdown       print the results as a Markdown table too\n"
                "      --postgresql URI     also measure bbt-aggregator with a PostgreSQL store on the\n"
                "                           server at URI (postgresql://USER@HOST:PORT; a database per run)\n"
                "      --share-group        with --postgresql, also two bbt-aggregators in one MQTT share\n"
                "                           group writing one PostgreSQL database\n"
                "  -k, --keep           keep the temporary directory (configs, logs, stores)\n"
                "  -v, --verbose        more output\n"
                "  -h, --help           show this help\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "messages", required_argument, NULL, 'n' },
                { "runs", required_argument, NULL, 'r' },
                { "terminals", required_argument, NULL, 't' },
                { "usage-every", required_argument, NULL, 'u' },
                { "seed", required_argument, NULL, 's' },
                { "timeout", required_argument, NULL, 'T' },
                { "aggregator", required_argument, NULL, 'A' },
                { "mosquitto", required_argument, NULL, 'M' },
                { "markdown", no_argument, NULL, 'm' },
                { "set", required_argument, NULL, 'x' },
                { "keep", no_argument, NULL, 'k' },
                { "postgresql", required_argument, NULL, 'P' },
                { "share-group", no_argument, NULL, 'G' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        struct result bare_r[32], agg_r[32], pg_r[32], pg2_r[32];
        double v[32], w[32];
        struct msgs ms;
        bool markdown = false;
        int c;

        bench_init("ingest-bench", cleanup);
        while ((c = getopt_long(argc, argv, "n:r:t:kvh", longopts, NULL)) != -1) {
                switch (c) {
                case 'n':
                        opt.n = bench_number("--messages", optarg, 1, 100000000);
                        break;
                case 'r':
                        opt.runs = (int)bench_number("--runs", optarg, 1, 32);
                        break;
                case 't':
                        opt.terminals = (int)bench_number("--terminals", optarg, 1, 1000000);
                        break;
                case 'u':
                        opt.usage_every = (int)bench_number("--usage-every", optarg, 1, 1000000);
                        break;
                case 's':
                        opt.seed = (unsigned)bench_number("--seed", optarg, 0, 4294967295LL);
                        break;
                case 'T':
                        opt.timeout_s = atof(optarg);
                        break;
                case 'A':
                        opt.aggregator = optarg;
                        break;
                case 'M':
                        opt.mosquitto = optarg;
                        break;
                case 'm':
                        markdown = true;
                        break;
                case 'x':
                        if (!bench_add_set(opt.sets, sizeof(opt.sets), optarg)) {
                                fprintf(stderr, "ingest-bench: --set %s: expected SECTION.KEY=VALUE\n", optarg);
                                return 2;
                        }
                        break;
                case 'k':
                        bench_keep = true;
                        break;
                case 'P':
                        opt.pg = optarg;
                        break;
                case 'G':
                        opt.share = true;
                        break;
                case 'v':
                        bench_verbose = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc || opt.n < 1 || opt.runs < 1 || opt.runs > 32 || opt.terminals < 1 ||
            opt.terminals > 100000 || opt.usage_every < 1 || opt.timeout_s <= 0 || (opt.share && !opt.pg)) {
                usage(stderr);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        bench_make_tmpdir();
        msgs_make(&ms);
        printf("ingest-bench: %ld messages (%ld hb, %ld usage, %ld state; %.0f bytes on average, %.1f MB) over %d "
               "terminals, %d runs each\n",
               opt.n, ms.n_hb, ms.n_usage, ms.n_state, (double)ms.bytes / (double)opt.n, (double)ms.bytes / 1e6,
               opt.terminals, opt.runs);
        mosquitto_lib_init();
        for (int r = 0; r < opt.runs; r++) {
                bare_r[r] = measure(&ms, SUB_BARE, 4 * r);
                printf("run %d  bare:       %9.0f msgs/s  (%.2f s; first-to-last %.2f s; publisher acked in %.2f s; "
                       "CPU s: sub %.2f broker %.2f pub %.2f)\n",
                       r + 1, bare_r[r].rate, bare_r[r].secs, bare_r[r].first_last, bare_r[r].pub_secs,
                       bare_r[r].cpu_sub, bare_r[r].cpu_broker, bare_r[r].cpu_pub);
                agg_r[r] = measure(&ms, SUB_AGGREGATOR, 4 * r + 1);
                printf("run %d  aggregator: %9.0f msgs/s  (%.2f s; publisher acked in %.2f s; "
                       "CPU s: aggregator %.2f broker %.2f pub %.2f; aggregator wrote %.0f bytes/msg)  ratio %.3f\n",
                       r + 1, agg_r[r].rate, agg_r[r].secs, agg_r[r].pub_secs, agg_r[r].cpu_sub, agg_r[r].cpu_broker,
                       agg_r[r].cpu_pub, (double)agg_r[r].wchar / (double)opt.n, agg_r[r].rate / bare_r[r].rate);
                if (!opt.pg)
                        continue;
                pg_r[r] = measure(&ms, SUB_AGGREGATOR_PG, 4 * r + 2);
                print_store_run(r, "postgresql:", "aggregator", &pg_r[r], &bare_r[r], "sqlite", &agg_r[r]);
                if (!opt.share)
                        continue;
                pg2_r[r] = measure(&ms, SUB_AGGREGATOR_PG2, 4 * r + 3);
                print_store_run(r, "2 on pg:   ", "aggregators", &pg2_r[r], &bare_r[r], "one on pg", &pg_r[r]);
        }
        for (int r = 0; r < opt.runs; r++)
                v[r] = bare_r[r].rate, w[r] = agg_r[r].rate;
        {
                double mb = median(v, opt.runs), ma = median(w, opt.runs), ratios[32], cb[32], ca[32];

                for (int r = 0; r < opt.runs; r++) {
                        ratios[r] = agg_r[r].rate / bare_r[r].rate;
                        cb[r] = bare_r[r].cpu_sub / bare_r[r].secs;
                        ca[r] = agg_r[r].cpu_sub / agg_r[r].secs;
                }
                printf("median bare: %.0f msgs/s, aggregator: %.0f msgs/s; ratio of medians %.3f, median ratio %.3f "
                       "(target >= 0.8): %s\n",
                       mb, ma, ma / mb, median(ratios, opt.runs), median(ratios, opt.runs) >= 0.8 ? "PASS" : "MISS");
                printf("median subscriber CPU while measuring: bare %.0f %%, aggregator %.0f %% of one core\n",
                       100 * median(cb, opt.runs), 100 * median(ca, opt.runs));
                if (markdown) {
                        printf("\n| run | bare subscriber (msgs/s) | bbt-aggregator stored (msgs/s) | aggregator / bare |\n"
                               "| ---: | ---: | ---: | ---: |\n");
                        for (int r = 0; r < opt.runs; r++)
                                printf("| %d | %.0f | %.0f | %.2f |\n", r + 1, bare_r[r].rate, agg_r[r].rate,
                                       ratios[r]);
                        printf("| **median** | **%.0f** | **%.0f** | **%.2f** |\n", mb, ma, median(ratios, opt.runs));
                }
                if (opt.pg) {
                        double x[32], y[32], z[32], cp[32];

                        for (int r = 0; r < opt.runs; r++) {
                                x[r] = pg_r[r].rate;
                                y[r] = pg_r[r].rate / bare_r[r].rate;
                                z[r] = pg_r[r].rate / agg_r[r].rate;
                                cp[r] = pg_r[r].cpu_sub / pg_r[r].secs;
                        }
                        printf("median postgresql: %.0f msgs/s; median ratio to bare %.3f, to sqlite %.3f; "
                               "aggregator CPU %.0f %% of one core\n",
                               median(x, opt.runs), median(y, opt.runs), median(z, opt.runs),
                               100 * median(cp, opt.runs));
                        if (markdown) {
                                printf("\n| run | bare (msgs/s) | SQLite store (msgs/s) | PostgreSQL store (msgs/s) |"
                                       " PostgreSQL / bare | PostgreSQL / SQLite |\n"
                                       "| ---: | ---: | ---: | ---: | ---: | ---: |\n");
                                for (int r = 0; r < opt.runs; r++)
                                        printf("| %d | %.0f | %.0f | %.0f | %.2f | %.2f |\n", r + 1, bare_r[r].rate,
                                               agg_r[r].rate, pg_r[r].rate, y[r], z[r]);
                                printf("| **median** | **%.0f** | **%.0f** | **%.0f** | **%.2f** | **%.2f** |\n", mb,
                                       ma, median(x, opt.runs), median(y, opt.runs), median(z, opt.runs));
                        }
                }
                if (opt.share) {
                        double x[32], y[32], cp[32];

                        for (int r = 0; r < opt.runs; r++) {
                                x[r] = pg2_r[r].rate;
                                y[r] = pg2_r[r].rate / pg_r[r].rate;
                                cp[r] = pg2_r[r].cpu_sub / pg2_r[r].secs;
                        }
                        printf("median two aggregators on postgresql: %.0f msgs/s; median ratio to one %.3f; "
                               "their CPU %.0f %% of one core\n",
                               median(x, opt.runs), median(y, opt.runs), 100 * median(cp, opt.runs));
                        if (markdown) {
                                printf("\n| run | one aggregator, PostgreSQL (msgs/s) | two in a share group (msgs/s) |"
                                       " two / one |\n| ---: | ---: | ---: | ---: |\n");
                                for (int r = 0; r < opt.runs; r++)
                                        printf("| %d | %.0f | %.0f | %.2f |\n", r + 1, pg_r[r].rate, pg2_r[r].rate, y[r]);
                        }
                }
        }
        cleanup();
        return 0;
}
