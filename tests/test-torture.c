/* The seq torture: the real agent killed -9 at random moments, its files damaged as a power cut can, against a real broker and aggregator; no seq is ever used twice and every missing one is accounted for. */
/* bbt-test: label=integration timeout=600 */

/*
 * test-torture seq_power_cuts, with the environment:
 *   BBT_TORTURE_TRIALS  trials (default 100; CI runs the default, a manual
 *                       run ten times that, see docs/spool.md "Reliability")
 *   BBT_TORTURE_SEED    the seed (default: from the clock; printed)
 *   BBT_TORTURE_MIN_MS, BBT_TORTURE_MAX_MS   the agent's run before each kill (50, 700)
 *   BBT_TORTURE_VERBOSE=1  a line per trial; BBT_TEST_VERBOSE=1 prints the logs
 *   BBT_TEST_KEEP=1     keeps the directory; BBT_TORTURE_SAVE=1 keeps a copy of
 *                       the newest segment and meta after each trial in it
 *
 * One broker (mosquitto on a free loopback port), one bbt-aggregator, one
 * bbt-agent connected through a TCP proxy that some trials cut. Each trial
 * starts the agent, lets it run a random time (heartbeats and usage records
 * every 100 ms, fsync "each" or "interval" at random), kills it with SIGKILL,
 * and then damages its files the ways a power cut or bad storage can:
 *
 *   - the newest spool segment loses its last N bytes (truncated, or zeroed
 *     in place: an extended size whose data never reached the disk);
 *   - the state file or the spool's meta file (one of the two) goes back to
 *     an older copy, as if its latest writes were lost;
 *   - the kernel's boot id changes (a reboot).
 *
 * (Both small files rolled back together, with the spool's tail, would leave
 * no witness of the seqs used after that moment anywhere on the terminal;
 * that case is outside the agent's promise -- docs/spool.md, "What the agent
 * cannot know" -- and the aggregator's conflict detection is the net. So a
 * file is rolled back only while the other is not itself an older copy: an
 * agent killed before it wrote anything would otherwise carry one trial's
 * rollback into the next.)
 *
 * A subscriber on the broker sees every message published: after each trial,
 * no seq may carry two different payloads (the will and the clean stop of one
 * session share a seq by design). At the end the agent runs cleanly once more
 * and stops, the aggregator settles, and its store must hold: no conflict;
 * every seq the broker delivered, once; every record left in the spool after
 * the last trial's damage; and every other seq of 1..max exactly once among the lost and
 * the skipped, the lost ones only seqs that existed (in the spool before the
 * damage, or published), and the counts on the terminal's row equal to the
 * rows. Past 256 unclean stops the agent forgets its oldest skipped ranges;
 * what it then cannot tell about is lost "unknown" to it, counted apart (and
 * allowed only then). The summary line says how many trials ran and what was found.
 *
 * It fails with the seed to repeat it; it is skipped (77) if mosquitto is
 * missing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <sqlite3.h>

#include "bbt/mqtt.h"
#include "bbt/protocol.h"
#include "counters.h"
#include "broker.h"
#include "daemon.h"
#include "spool.h"
#include "tcp-proxy.h"
#include "test.h"

#define COUNTY "510107"
#define SCHOOL "3151010001"
#define TERMINAL "r101"
#define AGG_CLIENT_ID "bbt-aggregator-torture"
#define BROKER_CONF "max_queued_messages 1000000\nmax_inflight_messages 0\n"
#define TERM_SQL "(SELECT id FROM terminal WHERE terminal = '" TERMINAL "')"
#define HISTORY 24 /* versions kept of the state and meta files */
#define SMALL_MAX 20000 /* bytes of a state or meta file (the state file holds up to 16 KiB) */

/* ---- options ---- */

static struct {
        int trials, min_ms, max_ms;
        unsigned seed;
        bool verbose;
} opt = { .trials = 100, .min_ms = 50, .max_ms = 700 };

/* ---- a set of seqs (open addressing) with a payload hash each ---- */

struct entry {
        int64_t seq; /* 0: empty */
        uint64_t hash;
        uint32_t boot;
        bool offline_state;
};

struct seqset {
        struct entry *e;
        size_t cap, n;
};

static struct entry *set_find(struct seqset *s, int64_t seq, bool add)
{
        size_t i;

        if (add && (s->n + 1) * 2 > s->cap) {
                struct seqset grown = { calloc(s->cap ? s->cap * 2 : 1024, sizeof(struct entry)),
                                        s->cap ? s->cap * 2 : 1024, 0 };

                if (!grown.e)
                        FAIL("out of memory");
                for (size_t k = 0; k < s->cap; k++)
                        if (s->e[k].seq)
                                *set_find(&grown, s->e[k].seq, true) = s->e[k];
                free(s->e);
                *s = grown;
        }
        if (!s->cap)
                return NULL;
        for (i = (size_t)((uint64_t)seq * 11400714819323198485ull) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
                if (s->e[i].seq == seq)
                        return &s->e[i];
                if (s->e[i].seq == 0) {
                        if (!add)
                                return NULL;
                        s->e[i].seq = seq;
                        s->n++;
                        return &s->e[i];
                }
        }
}

static bool set_has(struct seqset *s, int64_t seq)
{
        return set_find(s, seq, false) != NULL;
}

static void set_add(struct seqset *s, int64_t seq)
{
        set_find(s, seq, true);
}

static uint64_t fnv(const void *data, size_t len)
{
        const unsigned char *p = data;
        uint64_t h = 1469598103934665603ull;

        for (size_t i = 0; i < len; i++)
                h = (h ^ p[i]) * 1099511628211ull;
        return h;
}

/* ---- the world ---- */

static struct {
        char dir[256], root[320], state_dir[320], spool_dir[320], agent_conf[320], agg_conf[320], store[320];
        char agent_log[320], agg_log[320], boot_id_path[400];
        struct bbt_test_broker broker;
        struct bbt_test_proxy *proxy;
        struct bbt_test_daemon agent, agg;
        uv_loop_t loop;
        char newest[700];
        struct bbt_mqtt *sub;
        bool sub_closed;
        unsigned probes;

        struct seqset published; /* every seq the broker delivered, with its payload's hash */
        struct seqset existed;   /* every seq the agent used, as far as the test can see */
        struct seqset survivors; /* records in the spool after the last trial's damage */
        uint64_t reuses, deliveries;
        char reuse_text[1024];

        /* Versions of the small files, oldest first. */
        struct version {
                char text[SMALL_MAX];
                size_t len;
        } hist[2][HISTORY];
        int n_hist[2];
        bool behind[2]; /* the file is an older copy the agent has not written over since */
} W;

enum { F_STATE, F_META };

/* ---- the broker-side witness ---- */

static void sub_on_message(void *userdata, const char *topic, const void *payload, size_t len, int qos,
                           bool retain)
{
        struct bbt_topic t;
        struct bbt_msg m;
        struct entry *e;
        uint64_t h;
        bool offline;

        if (strcmp(topic, "torture/probe") == 0) {
                W.probes++;
                return;
        }
        if (bbt_topic_parse(topic, &t, NULL, 0) < 0 || t.channel == BBT_CH_CMD)
                return;
        if (bbt_msg_decode(t.channel, payload, len, &m, NULL) < 0)
                FAIL("the agent published a message that does not decode on %s: %.*s", topic, (int)len,
                     (const char *)payload);
        W.deliveries++;
        h = fnv(payload, len) ^ fnv(topic, strlen(topic));
        offline = t.channel == BBT_CH_STATE && !m.body.state.online;
        e = set_find(&W.published, m.seq, false);
        if (!e) {
                e = set_find(&W.published, m.seq, true);
                e->hash = h;
                e->boot = m.boot;
                e->offline_state = offline;
                set_add(&W.existed, m.seq);
        } else if (e->hash != h && !(e->offline_state && offline && e->boot == m.boot)) {
                /* The same seq with another message: a seq used twice. */
                if (!W.reuses)
                        snprintf(W.reuse_text, sizeof(W.reuse_text), "seq %" PRId64 " REUSED: %s %.*s", m.seq,
                                 topic, (int)len, (const char *)payload);
                W.reuses++;
        }
        bbt_msg_free(&m);
}

static void sub_on_closed(void *userdata)
{
        W.sub_closed = true;
}

static void sub_start(void)
{
        static const struct bbt_mqtt_callbacks cbs = { .on_message = sub_on_message };
        struct bbt_mqtt_options o;
        uint64_t deadline = bbt_test_now_ms() + 15000;

        bbt_mqtt_options_init(&o);
        o.host = "127.0.0.1";
        o.port = bbt_test_broker_port(&W.broker);
        o.client_id = "bbt-torture-witness";
        o.clean_session = false; /* nothing published is missed, even across a reconnect */
        o.backoff_min_ms = 100;
        o.backoff_max_ms = 500;
        ASSERT_OK(bbt_mqtt_new(&W.loop, &o, &cbs, NULL, &W.sub));
        ASSERT_OK(bbt_mqtt_subscribe(W.sub, "bbt/v1/#", 1));
        ASSERT_OK(bbt_mqtt_subscribe(W.sub, "torture/probe", 1));
        ASSERT_OK(bbt_mqtt_start(W.sub));
        /* Subscribed once a probe of its own comes back. */
        while (W.probes == 0) {
                if (bbt_mqtt_is_connected(W.sub))
                        bbt_mqtt_publish(W.sub, "torture/probe", "p", 1, 1, false, NULL);
                bbt_test_run_until(&W.loop, NULL, NULL, 100);
                if (bbt_test_now_ms() > deadline)
                        FAIL("the witness subscriber did not come up");
        }
}

/* ---- files ---- */

static ssize_t read_file(const char *path, char *buf, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -1;
        n = read(fd, buf, size);
        close(fd);
        return n;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0 || write(fd, data, len) != (ssize_t)len)
                FAIL("cannot write %s: %s", path, strerror(errno));
        close(fd);
}

static const char *small_file(int which, char *buf, size_t size)
{
        snprintf(buf, size, "%s", which == F_STATE ? W.state_dir : W.spool_dir);
        strncat(buf, which == F_STATE ? "/state" : "/meta", size - strlen(buf) - 1);
        return buf;
}

/* Keeps the current version of the state and meta files if it is new. */
static void snapshot(void)
{
        for (int f = 0; f < 2; f++) {
                struct version v;
                char path[400];
                ssize_t n = read_file(small_file(f, path, sizeof(path)), v.text, sizeof(v.text));
                int k = W.n_hist[f];

                if (n <= 0)
                        continue;
                if ((size_t)n == sizeof(v.text))
                        FAIL("%s is larger than the test can keep (%zu bytes)", path, sizeof(v.text));
                v.len = (size_t)n;
                if (k && W.hist[f][k - 1].len == v.len && memcmp(W.hist[f][k - 1].text, v.text, v.len) == 0)
                        continue;
                if (k == HISTORY) {
                        memmove(&W.hist[f][0], &W.hist[f][1], (HISTORY - 1) * sizeof(v));
                        k--;
                }
                W.hist[f][k] = v;
                W.n_hist[f] = k + 1;
                W.behind[f] = false;
        }
}

/* Puts back an older version of file F: the one before the last, or any
 * older. Returns a word for the log, or NULL when there is none -- or when
 * the other small file is itself still an older copy: an agent killed before
 * it wrote either again would otherwise find both rolled back at once, which
 * is outside its promise (see the top of this file). */
static const char *revert(int f, unsigned *seed)
{
        char path[400], now[SMALL_MAX];
        ssize_t n = read_file(small_file(f, path, sizeof(path)), now, sizeof(now));
        int k = W.n_hist[f], pick;

        if (W.behind[!f])
                return NULL;

        /* The versions that differ from what is on disk now. */
        while (k > 0 && n >= 0 && W.hist[f][k - 1].len == (size_t)n && memcmp(W.hist[f][k - 1].text, now, (size_t)n) == 0)
                k--;
        if (k == 0)
                return NULL;
        pick = rand_r(seed) % 2 ? k - 1 : (int)(rand_r(seed) % (unsigned)k);
        write_bytes(path, W.hist[f][pick].text, W.hist[f][pick].len);
        W.n_hist[f] = pick + 1; /* what came after it never happened */
        W.behind[f] = true;
        return pick == k - 1 ? "previous" : "older";
}

/* ---- the spool, read by the test's own parser (not the agent's code) ---- */

static uint32_t le32(const unsigned char *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Adds the seq of every record with a good CRC in every segment to SET;
 * returns the newest segment's path in NEWEST (or ""). */
static void scan_spool(struct seqset *set, char *newest, size_t size)
{
        DIR *d = opendir(W.spool_dir);
        struct dirent *de;
        char best[64] = "";

        newest[0] = '\0';
        if (!d)
                return;
        while ((de = readdir(d))) {
                char path[700];
                unsigned char *buf;
                struct stat st;
                size_t len, off;
                int fd;

                if (strlen(de->d_name) != 24 || strcmp(de->d_name + 20, ".seg") != 0)
                        continue;
                if (strcmp(de->d_name, best) > 0)
                        memcpy(best, de->d_name, 25); /* 24 characters and the NUL */
                snprintf(path, sizeof(path), "%s/%s", W.spool_dir, de->d_name);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0) {
                        if (fd >= 0)
                                close(fd);
                        continue;
                }
                len = (size_t)st.st_size;
                buf = malloc(len + 1);
                if (!buf || read(fd, buf, len) != (ssize_t)len) {
                        free(buf);
                        close(fd);
                        continue;
                }
                close(fd);
                /* Records anywhere: magic, length, CRC over the body. */
                for (off = 8; off + 12 + 20 <= len; off++) {
                        uint32_t blen;
                        uint64_t seq = 0;

                        if (le32(buf + off) != 0xEC52B8FEu)
                                continue;
                        blen = le32(buf + off + 4);
                        if (blen < 20 || blen > 20 + 128 + 16384 || off + 12 + blen > len)
                                continue;
                        if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), buf + off + 12, blen) != le32(buf + off + 8))
                                continue;
                        for (int i = 7; i >= 0; i--)
                                seq = seq << 8 | buf[off + 12 + (size_t)i];
                        set_add(set, (int64_t)seq);
                        off += 12 + blen - 1;
                }
                free(buf);
        }
        closedir(d);
        if (best[0])
                snprintf(newest, size, "%s/%s", W.spool_dir, best);
}

/* Opens a copy of the spool as the agent's next start will (the copy, so
 * that the test does not repair the original) and fails, with the offsets,
 * if it does not keep every record the test's own parser finds in it. */
static int count_cb(void *userdata, const struct bbt_spool_record *rec)
{
        set_add(userdata, (int64_t)rec->seq);
        return 0;
}

static void check_spool_keeps(const char *newest, int trial)
{
        struct seqset found = { 0 }, kept = { 0 };
        struct bbt_spool_options so;
        struct bbt_spool_range range;
        struct bbt_spool *sp;
        char copy[400], cmd[1200];
        uint64_t from = 1;

        snprintf(copy, sizeof(copy), "%s/spool-copy", W.dir);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", copy, W.spool_dir, copy);
        if (system(cmd) != 0)
                FAIL("cannot copy the spool");
        scan_spool(&found, (char[700]){ 0 }, 700);
        bbt_spool_options_init(&so, copy);
        so.max_bytes = 64ull << 20;
        ASSERT_OK(bbt_spool_open(&so, NULL, NULL, &sp));
        do {
                ASSERT_OK(bbt_spool_read_range(sp, from, UINT64_MAX - 1, 100000, count_cb, &kept, &range));
                from = range.next;
        } while (!range.done);
        bbt_spool_close(sp);
        for (size_t k = 0; k < found.cap; k++)
                if (found.e[k].seq && !set_has(&kept, found.e[k].seq)) {
                        snprintf(cmd, sizeof(cmd), "cp '%s' '%s/segment-after-trial-%d'", newest, W.dir, trial);
                        if (system(cmd) != 0)
                                fprintf(stderr, "(could not keep the segment)\n");
                        FAIL("trial %d: the spool drops seq %" PRId64 ", a whole record with a good CRC in %s",
                             trial, found.e[k].seq, newest);
                }
        free(found.e);
        free(kept.e);
}

/* ---- processes ---- */

/* Writes the agent's configuration; returns whether it syncs every record. */
static bool write_agent_conf(unsigned *seed)
{
        char text[2048];
        bool each = rand_r(seed) % 3 == 0;

        snprintf(text, sizeof(text),
                 "# written by tests/torture.c\n"
                 "[identity]\ncounty = " COUNTY "\nschool = " SCHOOL "\nterminal = " TERMINAL "\n"
                 "[broker]\nhost = 127.0.0.1\nport = %d\nbackoff_min = 100ms\nbackoff_max = 1s\nkeepalive = 5s\n"
                 "[agent]\nstate_dir = %s\nroot = %s\nlog_level = info\nheartbeat_interval = 100ms\n"
                 "usage_flush = 100ms\n"
                 "[spool]\ndir = %s\nmax_size = 64M\nfsync = %s\nfsync_interval = %dms\ndrain_rate = 1000\n"
                 "[health]\nenabled = no\n[input]\nenabled = no\n[display]\nenabled = no\n[audio]\nenabled = no\n"
                 "[peripherals]\nenabled = no\n",
                 bbt_test_proxy_port(W.proxy), W.state_dir, W.root, W.spool_dir, each ? "each" : "interval",
                 50 + (int)(rand_r(seed) % 950));
        bbt_test_write_file(W.agent_conf, text);
        return each;
}

static void write_agg_conf(void)
{
        char text[2048];

        snprintf(text, sizeof(text),
                 "# written by tests/torture.c\n"
                 "[broker]\nhost = 127.0.0.1\nport = %d\nclient_id = " AGG_CLIENT_ID "\nkeepalive = 5s\n"
                 "backoff_min = 100ms\nbackoff_max = 1s\n"
                 "[store]\npath = %s\nbatch_interval = 100ms\n"
                 "[registry]\n"
                 "[ingest]\ngap_grace = 500ms\nresend_timeout = 1s\nresend_settle = 1s\n"
                 "[aggregator]\nlog_level = info\n",
                 bbt_test_broker_port(&W.broker), W.store);
        bbt_test_write_file(W.agg_conf, text);
}

static void set_boot_id(unsigned *seed)
{
        char id[64];

        snprintf(id, sizeof(id), "%08x-%04x-4%03x-8%03x-%08x%04x\n", rand_r(seed), rand_r(seed) & 0xffff,
                 rand_r(seed) & 0xfff, rand_r(seed) & 0xfff, rand_r(seed), rand_r(seed) & 0xffff);
        bbt_test_write_file(W.boot_id_path, id);
}

static void run_loop(int ms)
{
        uint64_t t0 = bbt_test_now_ms();

        while (bbt_test_now_ms() - t0 < (uint64_t)ms) {
                bbt_test_run_until(&W.loop, NULL, NULL, 5);
                bbt_test_daemon_alive(&W.agg);
        }
}

static void agent_start(void)
{
        char exe[512];
        char *argv[] = { (char *)bbt_test_exe("agent", "bbt-agent", exe, sizeof(exe)), (char *)"-c", W.agent_conf,
                         NULL };

        bbt_test_daemon_start(&W.agent, "bbt-agent", argv, W.agent_log);
}

static void setup(void)
{
        char exe[512], path[400];
        char *argv[] = { (char *)bbt_test_exe("county/aggregator", "bbt-aggregator", exe, sizeof(exe)), (char *)"-c",
                         W.agg_conf, NULL };

        snprintf(W.dir, sizeof(W.dir), "%s", bbt_test_tmp_init("torture"));
        snprintf(W.root, sizeof(W.root), "%s/root", W.dir);
        snprintf(W.state_dir, sizeof(W.state_dir), "%s/state", W.dir);
        snprintf(W.spool_dir, sizeof(W.spool_dir), "%s/state/spool", W.dir);
        snprintf(W.agent_conf, sizeof(W.agent_conf), "%s/agent.conf", W.dir);
        snprintf(W.agg_conf, sizeof(W.agg_conf), "%s/aggregator.conf", W.dir);
        snprintf(W.store, sizeof(W.store), "%s/aggregator.db", W.dir);
        snprintf(W.agent_log, sizeof(W.agent_log), "%s/agent.log", W.dir);
        snprintf(W.agg_log, sizeof(W.agg_log), "%s/aggregator.log", W.dir);
        snprintf(W.boot_id_path, sizeof(W.boot_id_path), "%s/proc/sys/kernel/random/boot_id", W.root);
        for (const char *sub = "/root/proc/sys/kernel/random"; sub;) {
                /* mkdir -p */
                char p[400];

                snprintf(p, sizeof(p), "%s%s", W.dir, sub);
                for (char *c = p + strlen(W.dir) + 1; *c; c++)
                        if (*c == '/') {
                                *c = '\0';
                                mkdir(p, 0755);
                                *c = '/';
                        }
                mkdir(p, 0755);
                sub = NULL;
        }
        bbt_test_dump_tail_on_failure(W.agent_log, 6000);
        bbt_test_dump_tail_on_failure(W.agg_log, 6000);
        ASSERT_OK(uv_loop_init(&W.loop));
        bbt_test_broker_start(&W.broker, BROKER_CONF);
        snprintf(path, sizeof(path), "%s/mosquitto.log", W.broker.dir);
        bbt_test_dump_tail_on_failure(path, 3000);
        W.proxy = bbt_test_proxy_start(bbt_test_broker_port(&W.broker));
        sub_start();
        write_agg_conf();
        bbt_test_daemon_start(&W.agg, "bbt-aggregator", argv, W.agg_log);
        /* Subscribed before the agent publishes: a slow start (the sanitizer
         * build) would otherwise miss the first seqs, which only the retained
         * state would bring, and count as lost what the broker delivered. */
        {
                uint64_t deadline = bbt_test_now_ms() + 15000;

                while (!bbt_test_file_contains(W.agg_log, "broker: connected")) {
                        if (bbt_test_now_ms() > deadline)
                                FAIL("the aggregator did not connect to the broker within 15 s");
                        run_loop(50);
                }
                run_loop(300); /* its SUBSCRIBE, sent on connect, reaches the broker */
        }
}

/* ---- one trial ---- */

struct tally {
        int trials, cut, zeroed, truncated, state_back, meta_back, reboots, offline, fsync_each;
};

static void trial(int i, unsigned *seed, struct tally *t)
{
        int run_ms = opt.min_ms + (int)(rand_r(seed) % (unsigned)(opt.max_ms - opt.min_ms + 1));
        bool offline = rand_r(seed) % 4 == 0;
        char newest[700], what[256] = "";
        uint64_t t0;
        int damage;

        if (write_agent_conf(seed))
                t->fsync_each++;
        if (offline) {
                bbt_test_proxy_cut(W.proxy);
                t->offline++;
        }
        agent_start();
        t0 = bbt_test_now_ms();
        while (bbt_test_now_ms() - t0 < (uint64_t)run_ms) {
                bbt_test_run_until(&W.loop, NULL, NULL, 3);
                snapshot();
                bbt_test_daemon_alive(&W.agg);
                if (bbt_test_daemon_exited(&W.agent))
                        FAIL("trial %d: bbt-agent ended by itself (status %s)", i,
                             bbt_test_status_text(W.agent.status));
        }
        bbt_test_daemon_kill9(&W.agent);
        snapshot();

        /* What existed: every record in the spool now (the page cache has them). */
        scan_spool(&W.existed, newest, sizeof(newest));

        /* The damage. */
        damage = (int)(rand_r(seed) % 100);
        if (newest[0] && damage < 50) {
                struct stat st;

                if (stat(newest, &st) == 0 && st.st_size > 8) {
                        off_t n = 1 + (off_t)(rand_r(seed) % 8192);

                        if (n > st.st_size - 8)
                                n = st.st_size - 8;
                        if (damage < 25) {
                                if (truncate(newest, st.st_size - n) < 0)
                                        FAIL("truncate %s: %s", newest, strerror(errno));
                                t->truncated++;
                                snprintf(what + strlen(what), sizeof(what) - strlen(what), " tail-cut %lld",
                                         (long long)n);
                        } else {
                                char zeros[8192] = { 0 };
                                int fd = open(newest, O_WRONLY | O_CLOEXEC);

                                if (fd < 0 || pwrite(fd, zeros, (size_t)n, st.st_size - n) != (ssize_t)n)
                                        FAIL("zero %s: %s", newest, strerror(errno));
                                close(fd);
                                t->zeroed++;
                                snprintf(what + strlen(what), sizeof(what) - strlen(what), " tail-zeroed %lld",
                                         (long long)n);
                        }
                }
        }
        damage = (int)(rand_r(seed) % 100);
        if (damage < 20) {
                const char *how = revert(F_STATE, seed);

                if (how) {
                        t->state_back++;
                        snprintf(what + strlen(what), sizeof(what) - strlen(what), " state-%s", how);
                }
        } else if (damage < 40) {
                const char *how = revert(F_META, seed);

                if (how) {
                        t->meta_back++;
                        snprintf(what + strlen(what), sizeof(what) - strlen(what), " meta-%s", how);
                }
        }
        if (rand_r(seed) % 100 < 30) {
                set_boot_id(seed);
                t->reboots++;
                snprintf(what + strlen(what), sizeof(what) - strlen(what), " reboot");
        }
        if (what[0])
                t->cut++;
        /* What is left in the spool will be sent (unless later damage takes
         * it first): the spool keeps all of it. */
        free(W.survivors.e);
        memset(&W.survivors, 0, sizeof(W.survivors));
        scan_spool(&W.survivors, newest, sizeof(newest));
        if (newest[0])
                check_spool_keeps(newest, i);
        if (newest[0] && getenv("BBT_TORTURE_SAVE")) {
                char cmd[2400];

                snprintf(cmd, sizeof(cmd), "cp '%s' '%s/seg-after-%d'; cp '%s/meta' '%s/meta-after-%d'", newest,
                         W.dir, i, W.spool_dir, W.dir, i);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot save\n");
        }
        if (offline)
                bbt_test_proxy_restore(W.proxy);
        if (opt.verbose)
                fprintf(stderr, "trial %d: %d ms%s%s; %zu seqs published so far\n", i, run_ms,
                        offline ? " offline" : "", what, W.published.n);
        if (W.reuses)
                FAIL("trial %d (%d ms%s%s): %s", i, run_ms, offline ? " offline" : "", what, W.reuse_text);
        t->trials++;
}

/* ---- the end ---- */

static int64_t db(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t db(const char *fmt, ...)
{
        char sql[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(sql, sizeof(sql), fmt, ap);
        va_end(ap);
        return bbt_test_db_int(W.store, -1, "%s", sql);
}

/* Whether the aggregator holds or accounts for every seq of 1..max, with no
 * gap open but, with LIVE, the running session's will (state 3, waiting). */
static bool settled(bool live, int64_t *gaps, int64_t *stored, int64_t *accounted, int64_t *max)
{
        int64_t wills = live ? db("SELECT count(*) FROM gap WHERE state = 3") : 0;

        *gaps = db("SELECT count(*) FROM gap") - wills;
        *max = db("SELECT max(seq) FROM raw");
        *stored = db("SELECT count(*) FROM raw WHERE terminal_id = " TERM_SQL);
        *accounted = db("SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM loss");
        return *gaps == 0 && *stored + *accounted + wills == *max;
}

static void settle(void)
{
        int64_t gaps, stored, accounted, max;
        int limit_s = 120 + opt.trials / 5;
        uint64_t deadline = bbt_test_now_ms() + (uint64_t)limit_s * 1000;
        unsigned seed = opt.seed;

        /* One clean run, kept up until the aggregator has everything it can
         * get (what is left in the spool goes out, resends are answered). */
        write_agent_conf(&seed);
        agent_start();
        run_loop(2000);
        while (!settled(true, &gaps, &stored, &accounted, &max)) {
                if (bbt_test_now_ms() > deadline)
                        FAIL("the aggregator did not settle in %d s: %" PRId64 " gaps open (first: %" PRId64
                             "..%" PRId64 ", state %" PRId64 ", %" PRId64 " attempts), %" PRId64
                             " stored + %" PRId64 " lost or skipped of 1..%" PRId64,
                             limit_s, gaps, db("SELECT min(from_seq) FROM gap"),
                             db("SELECT to_seq FROM gap ORDER BY from_seq LIMIT 1"),
                             db("SELECT state FROM gap ORDER BY from_seq LIMIT 1"),
                             db("SELECT attempts FROM gap ORDER BY from_seq LIMIT 1"), stored, accounted, max);
                bbt_test_daemon_alive(&W.agent);
                run_loop(500);
        }
        /* The clean stop: its offline state ends the last session. */
        bbt_test_daemon_term(&W.agent, 8000);
        deadline = bbt_test_now_ms() + 30000;
        run_loop(1000);
        while (!settled(false, &gaps, &stored, &accounted, &max)) {
                if (bbt_test_now_ms() > deadline)
                        FAIL("after the clean stop: %" PRId64 " gaps open, %" PRId64 " stored + %" PRId64
                             " lost or skipped of 1..%" PRId64,
                             gaps, stored, accounted, max);
                run_loop(500);
        }
        run_loop(1500);
}

/* The loss reason of seqs the agent could not tell about (older than the
 * skipped ranges it remembers): lost or never used, honestly unknown. */
#define LOSS_UNKNOWN "the agent cannot tell: lost, or never used"

struct check_ctx {
        int64_t lost_not_existing, skipped_existing, missing, bad, lost, skipped, unknown, unknown_not_existing;
        char first_bad[256], first_phantom[256];
};

/* The store's raw seqs and loss rows, read once (read-only). */
struct loss_row {
        int64_t from, to;
        int kind;
        char reason[64];
};

static void check_store(struct check_ctx *c)
{
        struct seqset raw = { 0 };
        struct loss_row *rows = NULL;
        size_t n_rows = 0, cap = 0;
        sqlite3 *db3;
        sqlite3_stmt *st;
        int64_t max = 0;

        memset(c, 0, sizeof(*c));
        if (db("SELECT count(*) FROM conflict"))
                FAIL("the aggregator recorded %" PRId64 " seq conflicts", db("SELECT count(*) FROM conflict"));
        if (sqlite3_open_v2(W.store, &db3, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
                FAIL("cannot open %s", W.store);
        if (sqlite3_prepare_v2(db3, "SELECT seq FROM raw WHERE terminal_id = " TERM_SQL, -1, &st, NULL) != SQLITE_OK)
                FAIL("sqlite: %s", sqlite3_errmsg(db3));
        while (sqlite3_step(st) == SQLITE_ROW) {
                int64_t seq = sqlite3_column_int64(st, 0);
                struct entry *e = set_find(&raw, seq, false);

                if (e)
                        FAIL("seq %" PRId64 " stored twice", seq);
                set_add(&raw, seq);
                if (seq > max)
                        max = seq;
        }
        sqlite3_finalize(st);
        if (sqlite3_prepare_v2(db3, "SELECT from_seq, to_seq, kind, reason FROM loss ORDER BY from_seq", -1, &st, NULL) !=
            SQLITE_OK)
                FAIL("sqlite: %s", sqlite3_errmsg(db3));
        while (sqlite3_step(st) == SQLITE_ROW) {
                if (n_rows == cap) {
                        cap = cap ? 2 * cap : 256;
                        rows = realloc(rows, cap * sizeof(*rows));
                        if (!rows)
                                FAIL("out of memory");
                }
                rows[n_rows].from = sqlite3_column_int64(st, 0);
                rows[n_rows].to = sqlite3_column_int64(st, 1);
                rows[n_rows].kind = sqlite3_column_int(st, 2);
                snprintf(rows[n_rows].reason, sizeof(rows[n_rows].reason), "%s",
                         (const char *)sqlite3_column_text(st, 3));
                if (n_rows && rows[n_rows].from <= rows[n_rows - 1].to)
                        FAIL("loss rows overlap: %" PRId64 "..%" PRId64 " and %" PRId64 "..%" PRId64,
                             rows[n_rows - 1].from, rows[n_rows - 1].to, rows[n_rows].from, rows[n_rows].to);
                n_rows++;
        }
        sqlite3_finalize(st);
        sqlite3_close(db3);

        /* Every seq published, and every record the damage left, is stored. */
        for (size_t k = 0; k < W.published.cap; k++)
                if (W.published.e[k].seq && !set_has(&raw, W.published.e[k].seq))
                        FAIL("seq %" PRId64 " was published but is not stored", W.published.e[k].seq);
        for (size_t k = 0; k < W.survivors.cap; k++)
                if (W.survivors.e[k].seq && !set_has(&raw, W.survivors.e[k].seq))
                        FAIL("seq %" PRId64 " was in the spool after the damage but is not stored",
                             W.survivors.e[k].seq);
        /* Every other seq of 1..max: in exactly one loss row (rows do not overlap). */
        for (int64_t seq = 1, r = 0; seq <= max; seq++) {
                bool stored = set_has(&raw, seq);

                while ((size_t)r < n_rows && rows[r].to < seq)
                        r++;
                if ((size_t)r < n_rows && rows[r].from <= seq) {
                        if (stored) {
                                if (!c->bad++)
                                        snprintf(c->first_bad, sizeof(c->first_bad),
                                                 "seq %" PRId64 " is stored and in a loss row", seq);
                                continue;
                        }
                        c->missing++;
                        if (rows[r].kind == 0 && strcmp(rows[r].reason, LOSS_UNKNOWN) == 0) {
                                c->lost++;
                                c->unknown++;
                                if (!set_has(&W.existed, seq))
                                        c->unknown_not_existing++;
                        } else if (rows[r].kind == 0) {
                                c->lost++;
                                if (!set_has(&W.existed, seq) && !c->lost_not_existing++)
                                        snprintf(c->first_phantom, sizeof(c->first_phantom),
                                                 "first: seq %" PRId64 " in lost %" PRId64 "..%" PRId64 " \"%s\"", seq,
                                                 rows[r].from, rows[r].to, rows[r].reason);
                        } else {
                                c->skipped++;
                                if (set_has(&W.existed, seq))
                                        c->skipped_existing++;
                        }
                } else if (!stored) {
                        if (!c->bad++)
                                snprintf(c->first_bad, sizeof(c->first_bad), "seq %" PRId64 " is neither stored nor "
                                         "in a loss row", seq);
                }
        }
        free(rows);
        free(raw.e);
}

static int env_int(const char *name, int def)
{
        const char *v = getenv(name);

        return v && *v ? atoi(v) : def;
}

TEST(seq_power_cuts)
{
        struct tally t = { 0 };
        struct check_ctx c;
        uint64_t started = bbt_test_now_ms();
        unsigned seed;

        opt.trials = env_int("BBT_TORTURE_TRIALS", opt.trials);
        opt.min_ms = env_int("BBT_TORTURE_MIN_MS", opt.min_ms);
        opt.max_ms = env_int("BBT_TORTURE_MAX_MS", opt.max_ms);
        opt.verbose = env_int("BBT_TORTURE_VERBOSE", 0) != 0;
        opt.seed = getenv("BBT_TORTURE_SEED") ? (unsigned)strtoul(getenv("BBT_TORTURE_SEED"), NULL, 0)
                                              : (unsigned)time(NULL) ^ (unsigned)getpid();
        if (opt.trials < 1 || opt.min_ms < 1 || opt.max_ms < opt.min_ms)
                FAIL("bad BBT_TORTURE_* settings: %d trials, %d..%d ms", opt.trials, opt.min_ms, opt.max_ms);
        seed = opt.seed;
        fprintf(stderr, "torture: %d trials, seed %u (repeat with BBT_TORTURE_SEED=%u)\n", opt.trials, opt.seed,
                opt.seed);
        setup();
        set_boot_id(&seed);
        /* The aggregator's account of a terminal starts with the first seq it
         * hears of (docs/aggregator.md): let it hear of seq 1 before the
         * torture starts. */
        write_agent_conf(&seed);
        agent_start();
        {
                uint64_t deadline = bbt_test_now_ms() + 15000;

                while (db("SELECT first_seq FROM terminal") != 1) {
                        if (bbt_test_now_ms() > deadline)
                                FAIL("the aggregator did not hear from the agent within 15 s");
                        run_loop(50);
                }
                bbt_test_daemon_kill9(&W.agent);
                snapshot();
                scan_spool(&W.existed, W.newest, sizeof(W.newest));
        }
        for (int i = 1; i <= opt.trials; i++) {
                trial(i, &seed, &t);
                if (i % 50 == 0)
                        fprintf(stderr, "torture: %d trials, %zu seqs published, %.0f s\n", i, W.published.n,
                                (double)(bbt_test_now_ms() - started) / 1000);
        }
        settle();
        if (W.reuses)
                FAIL("after the last run: %s", W.reuse_text);
        check_store(&c);
        fprintf(stderr,
                "torture: %d trials (%d offline, %d with fsync=each; damage: %d tails cut, %d zeroed, %d state and "
                "%d meta files rolled back, %d reboots) in %.0f s, seed %u\n"
                "  broker: %zu seqs published (%" PRIu64 " deliveries), none used twice\n"
                "  store: %" PRId64 " stored, %" PRId64 " lost, %" PRId64 " skipped, 0 conflicts; lost seqs that "
                "never existed: %" PRId64 "; seqs that existed but are counted skipped (used after the last witness, "
                "never published, destroyed by the damage): %" PRId64 "; lost as unknown to the agent (older than "
                "the %d skipped ranges it remembers): %" PRId64 ", of which never used: %" PRId64 "\n",
                t.trials, t.offline, t.fsync_each, t.truncated, t.zeroed, t.state_back, t.meta_back, t.reboots,
                (double)(bbt_test_now_ms() - started) / 1000, opt.seed, W.published.n, W.deliveries,
                db("SELECT count(*) FROM raw"), c.lost, c.skipped, c.lost_not_existing, c.skipped_existing,
                BBT_COUNTERS_SKIPPED_MAX, c.unknown, c.unknown_not_existing);
        if (c.bad)
                FAIL("%" PRId64 " missing seqs not accounted for exactly once; first: %s", c.bad, c.first_bad);
        /* The agent forgets skipped ranges only past BBT_COUNTERS_SKIPPED_MAX
         * unclean stops: fewer trials, nothing may be unknown to it. */
        if (c.unknown && t.trials <= BBT_COUNTERS_SKIPPED_MAX)
                FAIL("%" PRId64 " seqs lost as unknown to the agent after only %d unclean stops", c.unknown, t.trials);
        if (c.lost_not_existing)
                FAIL("%" PRId64 " seqs recorded lost that the agent never used (phantom losses); %s",
                     c.lost_not_existing, c.first_phantom);
        if (db("SELECT lost FROM terminal") != db("SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM loss WHERE kind = 0") ||
            db("SELECT skipped FROM terminal") !=
                    db("SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM loss WHERE kind = 1"))
                FAIL("the terminal's lost/skipped counts differ from its loss rows");
        bbt_test_daemon_term(&W.agg, 8000);
        bbt_test_check_sanitizers(W.agg_log);
        bbt_test_check_sanitizers(W.agent_log);
        bbt_mqtt_close(W.sub, sub_on_closed);
        bbt_test_run_until(&W.loop, NULL, NULL, 200);
        bbt_test_loop_close(&W.loop);
        bbt_test_proxy_stop(W.proxy);
        bbt_test_broker_stop(&W.broker);
        free(W.published.e);
        free(W.existed.e);
        free(W.survivors.e);
        bbt_test_passed();
}
