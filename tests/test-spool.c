/* The on-disk spool: round trips, cursors, acks, crash recovery, corruption, size bound, retention, resend ranges. */
/* bbt-test: label=unit timeout=30 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"
#include "test.h"

#define TOPIC "bbt/v1/510107/3201234567/r101/hb"
#define TLEN (sizeof(TOPIC) - 1)
/* On-disk sizes (see the format comment in spool.c). */
#define FILE_HDR 8
#define REC_SIZE(plen) (12 + 20 + TLEN + (plen))

static char tmp_root[64];
static char dir[128];

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static void cleanup(void)
{
        if (tmp_root[0])
                nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
        snprintf(tmp_root, sizeof(tmp_root), "/tmp/bbt-spool-XXXXXX");
        ASSERT(mkdtemp(tmp_root));
        atexit(cleanup);
        snprintf(dir, sizeof(dir), "%s/spool", tmp_root);
}

struct reports {
        int n;
        char path[16][256];
        uint64_t off[16];
        char reason[16][128];
};

static void report_cb(void *userdata, const char *path, uint64_t off, const char *reason)
{
        struct reports *rep = userdata;

        fprintf(stderr, "report: %s @%llu: %s\n", path, (unsigned long long)off, reason);
        if (rep->n < 16) {
                snprintf(rep->path[rep->n], sizeof(rep->path[0]), "%s", path);
                rep->off[rep->n] = off;
                snprintf(rep->reason[rep->n], sizeof(rep->reason[0]), "%s", reason);
        }
        rep->n++;
}

static int64_t fake_now;

static int64_t fake_clock(void *userdata)
{
        return fake_now;
}

static struct bbt_spool *open_sp(uint64_t max_bytes, uint64_t segment_bytes, struct reports *rep)
{
        struct bbt_spool_options opts;
        struct bbt_spool *sp = NULL;

        bbt_spool_options_init(&opts, dir);
        opts.max_bytes = max_bytes;
        opts.segment_bytes = segment_bytes;
        opts.retain_acked_ms = 10000;
        opts.clock_ms = fake_clock;
        if (rep)
                memset(rep, 0, sizeof(*rep));
        ASSERT_OK(bbt_spool_open(&opts, rep ? report_cb : NULL, rep, &sp));
        ASSERT(sp != NULL);
        return sp;
}

/* The payload of record SEQ: PLEN deterministic bytes. */
static void make_payload(uint64_t seq, size_t plen, char *buf)
{
        for (size_t i = 0; i < plen; i++)
                buf[i] = (char)('a' + (seq * 7 + i) % 26);
}

static void append_range(struct bbt_spool *sp, uint64_t from, uint64_t to, uint64_t step, size_t plen)
{
        char payload[BBT_SPOOL_PAYLOAD_MAX];

        for (uint64_t seq = from; seq <= to; seq += step) {
                make_payload(seq, plen, payload);
                ASSERT_OK(bbt_spool_append(sp, seq, fake_now, seq % 3 == 0 ? BBT_SPOOL_RETAIN : 0, TOPIC,
                                           payload, plen, NULL));
        }
}

static void check_record(const struct bbt_spool_record *rec, uint64_t seq, size_t plen)
{
        char payload[BBT_SPOOL_PAYLOAD_MAX];

        ASSERT_EQ(rec->seq, seq);
        ASSERT_STR_EQ(rec->topic, TOPIC);
        ASSERT_EQ(rec->topic_len, TLEN);
        ASSERT_EQ(rec->payload_len, plen);
        ASSERT_EQ(rec->flags, seq % 3 == 0 ? BBT_SPOOL_RETAIN : 0);
        make_payload(seq, plen, payload);
        ASSERT(memcmp(rec->payload, payload, plen) == 0);
        ASSERT_EQ(((const char *)rec->payload)[plen], '\0');
}

/* Reads every pending record through bbt_spool_next(), expecting FROM..TO by STEP, except SKIP (0: none). */
static void expect_next(struct bbt_spool *sp, uint64_t from, uint64_t to, uint64_t step, size_t plen,
                        uint64_t skip)
{
        struct bbt_spool_record rec;

        for (uint64_t seq = from; seq <= to; seq += step) {
                if (seq == skip)
                        continue;
                ASSERT_OK(bbt_spool_next(sp, &rec));
                check_record(&rec, seq, plen);
        }
        ASSERT_EQ(bbt_spool_next(sp, &rec), -ENOENT);
}

static int count_segments(void)
{
        struct dirent *de;
        int n = 0;
        DIR *d = opendir(dir);

        ASSERT(d);
        while ((de = readdir(d)) != NULL)
                if (strstr(de->d_name, ".seg") && strlen(de->d_name) == 24)
                        n++;
        closedir(d);
        return n;
}

/* The path of the newest (NEWEST) or oldest segment file. */
static void segment_path(bool newest, char *out, size_t size)
{
        char best[32] = "";
        struct dirent *de;
        DIR *d = opendir(dir);

        ASSERT(d);
        while ((de = readdir(d)) != NULL) {
                if (strlen(de->d_name) != 24 || !strstr(de->d_name, ".seg"))
                        continue;
                if (!best[0] || (newest ? strcmp(de->d_name, best) > 0 : strcmp(de->d_name, best) < 0))
                        snprintf(best, sizeof(best), "%.24s", de->d_name);
        }
        closedir(d);
        ASSERT(best[0]);
        snprintf(out, size, "%s/%s", dir, best);
}

static uint64_t file_size(const char *path)
{
        struct stat st;

        ASSERT_OK(stat(path, &st));
        return (uint64_t)st.st_size;
}

static void poke(const char *path, uint64_t off, const void *bytes, size_t len)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);

        ASSERT(fd >= 0);
        ASSERT_EQ(pwrite(fd, bytes, len, (off_t)off), (ssize_t)len);
        close(fd);
}

TEST(roundtrip_segments)
{
        struct bbt_spool_stats stats;
        struct bbt_spool *sp;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        ASSERT_EQ(bbt_spool_last_seq(sp), 0);
        append_range(sp, 1, 300, 1, 1000);
        bbt_spool_stats(sp, &stats);
        ASSERT_GE(stats.segments, 4);
        ASSERT_EQ(stats.segments, count_segments());
        ASSERT_EQ(stats.depth, 300);
        ASSERT_EQ(stats.oldest_seq, 1);
        ASSERT_EQ(stats.last_seq, 300);
        ASSERT_EQ(stats.bytes, stats.segments * FILE_HDR + 300 * REC_SIZE(1000));
        expect_next(sp, 1, 300, 1, 1000, 0);
        ASSERT_OK(bbt_spool_ack_through(sp, 300));
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 0);
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(1 << 20, 64 << 10, NULL);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 0);
        ASSERT_EQ(stats.acked, 300);
        ASSERT_EQ(bbt_spool_last_seq(sp), 300);
        expect_next(sp, 1, 0, 1, 0, 0); /* nothing pending */
        append_range(sp, 301, 350, 1, 1000);
        expect_next(sp, 301, 350, 1, 1000, 0);
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(1 << 20, 64 << 10, NULL);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 50);
        expect_next(sp, 301, 350, 1, 1000, 0);
        ASSERT_OK(bbt_spool_close(sp));
}

TEST(rewind_resends_unacked)
{
        struct bbt_spool_record rec;
        struct bbt_spool *sp;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 1, 10, 1, 100);
        for (int i = 1; i <= 6; i++) {
                ASSERT_OK(bbt_spool_next(sp, &rec));
                ASSERT_EQ(rec.seq, i);
        }
        ASSERT_OK(bbt_spool_ack_through(sp, 3));
        bbt_spool_rewind(sp);
        expect_next(sp, 4, 10, 1, 100, 0);
        /* Rewinding with everything acked leaves nothing to send. */
        ASSERT_OK(bbt_spool_ack_through(sp, 10));
        bbt_spool_rewind(sp);
        ASSERT_EQ(bbt_spool_next(sp, &rec), -ENOENT);
        append_range(sp, 11, 12, 1, 100);
        expect_next(sp, 11, 12, 1, 100, 0);
        bbt_spool_close(sp);
}

TEST(depth_exact_after_reopen)
{
        struct bbt_spool_stats stats;
        struct bbt_spool *sp;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        /* Gaps in the seqs (the will's seq is never spooled) must not upset the count. */
        append_range(sp, 2, 400, 2, 700);
        ASSERT_OK(bbt_spool_ack_through(sp, 151)); /* 2..150: 75 records */
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 200 - 75);
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(1 << 20, 64 << 10, NULL);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 125);
        ASSERT_EQ(stats.acked, 151);
        expect_next(sp, 152, 400, 2, 700, 0);
        /* Acks within and across segments keep it exact. */
        ASSERT_OK(bbt_spool_ack_through(sp, 152));
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 124);
        ASSERT_OK(bbt_spool_ack_through(sp, 351));
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 25);
        ASSERT_OK(bbt_spool_ack_through(sp, 100)); /* lower: ignored */
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 25);
        ASSERT_OK(bbt_spool_ack_through(sp, 1000)); /* beyond the last: taken as the last */
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 0);
        ASSERT_EQ(stats.acked, 400);
        append_range(sp, 401, 401, 1, 10);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 1);
        bbt_spool_close(sp);
}

TEST(crash_resends_unsaved_acks)
{
        struct bbt_spool_stats stats;
        struct bbt_spool *sp;
        pid_t pid;
        int status;

        setup();
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
                /* A run killed after acks 6..8 were taken but not saved. */
                sp = open_sp(1 << 20, 64 << 10, NULL);
                append_range(sp, 1, 10, 1, 100);
                if (bbt_spool_ack_through(sp, 5) < 0 || bbt_spool_save_meta(sp) < 0 ||
                    bbt_spool_ack_through(sp, 8) < 0)
                        _exit(1);
                _exit(0);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        sp = open_sp(1 << 20, 64 << 10, NULL);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.acked, 5);
        ASSERT_EQ(stats.depth, 5);
        expect_next(sp, 6, 10, 1, 100, 0);
        bbt_spool_close(sp);
}

TEST(torn_tail_truncated)
{
        struct bbt_spool_stats stats;
        struct reports rep;
        struct bbt_spool *sp;
        char path[256];
        uint64_t size;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 1, 20, 1, 200);
        ASSERT_OK(bbt_spool_close(sp));
        segment_path(true, path, sizeof(path));
        size = file_size(path);
        ASSERT_EQ(size, FILE_HDR + 20 * REC_SIZE(200));
        ASSERT_OK(truncate(path, (off_t)(size - 10)));

        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 1);
        ASSERT_STR_EQ(rep.path[0], path);
        ASSERT_EQ(rep.off[0], FILE_HDR + 19 * REC_SIZE(200));
        ASSERT_STR_CONTAINS(rep.reason[0], "torn");
        ASSERT_EQ(file_size(path), FILE_HDR + 19 * REC_SIZE(200));
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.corrupt, 0);
        ASSERT_EQ(stats.depth, 19);
        ASSERT_EQ(bbt_spool_last_seq(sp), 19);
        expect_next(sp, 1, 19, 1, 200, 0);
        /* The seq that was torn was never handed out whole: it may be appended again. */
        append_range(sp, 20, 21, 1, 200);
        expect_next(sp, 20, 21, 1, 200, 0);
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 0);
        expect_next(sp, 1, 21, 1, 200, 0);
        bbt_spool_close(sp);
}

TEST(torn_new_segment_removed)
{
        struct reports rep;
        struct bbt_spool *sp;
        char path[256];
        int n;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 1, 62, 1, 1000); /* 61 fill the first segment; 62 starts the second */
        ASSERT_OK(bbt_spool_close(sp));
        n = count_segments();
        ASSERT_EQ(n, 2);
        /* A crash while the new segment's first record was being written. */
        segment_path(true, path, sizeof(path));
        ASSERT_OK(truncate(path, FILE_HDR + 40));

        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 1);
        ASSERT_STR_CONTAINS(rep.reason[0], "torn");
        ASSERT_EQ(count_segments(), 1);
        ASSERT_EQ(bbt_spool_last_seq(sp), 61);
        append_range(sp, 62, 63, 1, 1000);
        ASSERT_OK(bbt_spool_close(sp));
        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 0);
        expect_next(sp, 1, 63, 1, 1000, 0);
        bbt_spool_close(sp);
}

/* Damages record K (1-based seq) of a one-segment spool of 20 records with
 * BYTES at OFFSET within it, reopens, and checks one REASON reported at the
 * record's start and every other record delivered. */
static void damage_one(uint64_t k, uint64_t offset, const void *bytes, size_t len, const char *reason)
{
        struct bbt_spool_stats stats;
        struct reports rep;
        struct bbt_spool *sp;
        char path[256];
        uint64_t at = FILE_HDR + (k - 1) * REC_SIZE(200);

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 1, 20, 1, 200);
        ASSERT_OK(bbt_spool_close(sp));
        segment_path(true, path, sizeof(path));
        poke(path, at + offset, bytes, len);

        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 1);
        ASSERT_STR_EQ(rep.path[0], path);
        ASSERT_EQ(rep.off[0], at);
        ASSERT_STR_EQ(rep.reason[0], reason);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.corrupt, 1);
        ASSERT_EQ(stats.depth, 19);
        ASSERT_EQ(file_size(path), FILE_HDR + 20 * REC_SIZE(200)); /* nothing cut */
        expect_next(sp, 1, 20, 1, 200, k);
        /* Acks step over the bad record; appends go on after it. */
        ASSERT_OK(bbt_spool_ack_through(sp, 20));
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 0);
        append_range(sp, 21, 22, 1, 200);
        expect_next(sp, 21, 22, 1, 200, 0);
        ASSERT_OK(bbt_spool_close(sp));
        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 1);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.acked, 20);
        ASSERT_EQ(stats.depth, 2);
        ASSERT_EQ(stats.last_seq, 22);
        expect_next(sp, 21, 22, 1, 200, 0);
        bbt_spool_close(sp);
}

TEST(flipped_bytes_reported_and_skipped)
{
        damage_one(7, 12 + 20 + TLEN + 50, "\xff\xff\xff", 3, "crc mismatch");
}

TEST(garbage_length_reported_and_skipped)
{
        damage_one(7, 4, "\xf0\xff\xff\x7f", 4, "length out of range");
}

TEST(bad_magic_reported_and_skipped)
{
        damage_one(1, 0, "XXXX", 4, "bad magic");
}

TEST(older_segment_damage_kept)
{
        struct bbt_spool_stats stats;
        struct reports rep;
        struct bbt_spool *sp;
        char path[256];
        uint64_t size;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 1, 100, 1, 1000);
        ASSERT_OK(bbt_spool_close(sp));
        /* The oldest segment loses its last 5 bytes (not a crash tail: a damaged file). */
        segment_path(false, path, sizeof(path));
        size = file_size(path);
        ASSERT_OK(truncate(path, (off_t)(size - 5)));

        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 1);
        ASSERT_STR_EQ(rep.path[0], path);
        ASSERT_EQ(rep.off[0], size - REC_SIZE(1000));
        ASSERT_STR_EQ(rep.reason[0], "truncated record");
        ASSERT_EQ(file_size(path), size - 5);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.corrupt, 1);
        ASSERT_EQ(stats.depth, 99);
        expect_next(sp, 1, 100, 1, 1000, (size - FILE_HDR) / REC_SIZE(1000));
        bbt_spool_close(sp);
}

TEST(size_bound_drops_oldest)
{
        struct bbt_spool_stats stats;
        struct bbt_spool_record rec;
        char payload[1000];
        uint64_t dropped_sum = 0, seen = 0;
        struct bbt_spool *sp;

        setup();
        sp = open_sp(256 << 10, 64 << 10, NULL);
        for (uint64_t seq = 1; seq <= 1000; seq++) {
                uint64_t dropped = 99;

                make_payload(seq, sizeof(payload), payload);
                ASSERT_OK(bbt_spool_append(sp, seq, 0, seq % 3 == 0 ? BBT_SPOOL_RETAIN : 0, TOPIC, payload,
                                           sizeof(payload), &dropped));
                ASSERT_NE(dropped, 99);
                dropped_sum += dropped;
                bbt_spool_stats(sp, &stats);
                ASSERT_LE(stats.bytes, 256 << 10);
        }
        bbt_spool_stats(sp, &stats);
        ASSERT_GT(stats.dropped, 0);
        ASSERT_EQ(stats.dropped, dropped_sum);
        ASSERT_EQ(stats.dropped + stats.depth, 1000);
        ASSERT_EQ(stats.oldest_seq, stats.dropped + 1);
        ASSERT_EQ(stats.segments, count_segments());
        while (bbt_spool_next(sp, &rec) == 0) {
                check_record(&rec, stats.oldest_seq + seen, sizeof(payload));
                seen++;
        }
        ASSERT_EQ(seen, stats.depth);
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(256 << 10, 64 << 10, NULL);
        {
                struct bbt_spool_stats again;

                bbt_spool_stats(sp, &again);
                ASSERT_EQ(again.dropped, stats.dropped);
                ASSERT_EQ(again.depth, stats.depth);
        }
        bbt_spool_close(sp);
}

TEST(drops_acked_first_and_persisted_at_once)
{
        struct bbt_spool_stats stats;
        struct bbt_spool *sp;
        uint64_t child_dropped = 0;
        int fds[2], status;
        pid_t pid;

        setup();
        ASSERT_OK(pipe(fds));
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
                struct bbt_spool_stats s;

                close(fds[0]);
                sp = open_sp(256 << 10, 64 << 10, NULL);
                append_range(sp, 1, 150, 1, 1000);
                if (bbt_spool_ack_through(sp, 150) < 0)
                        _exit(1);
                /* Acked records go first and do not count as dropped. */
                append_range(sp, 151, 300, 1, 1000);
                bbt_spool_stats(sp, &s);
                if (s.dropped != 0)
                        _exit(2);
                append_range(sp, 301, 600, 1, 1000);
                bbt_spool_stats(sp, &s);
                if (write(fds[1], &s.dropped, sizeof(s.dropped)) != sizeof(s.dropped))
                        _exit(3);
                _exit(0); /* killed: no close, no save_meta */
        }
        close(fds[1]);
        ASSERT_EQ(read(fds[0], &child_dropped, sizeof(child_dropped)), (ssize_t)sizeof(child_dropped));
        close(fds[0]);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
        ASSERT_GT(child_dropped, 0);

        sp = open_sp(256 << 10, 64 << 10, NULL);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.dropped, child_dropped);
        ASSERT_EQ(stats.depth + stats.dropped, 450);
        bbt_spool_close(sp);
}

TEST(expire_with_fake_clock)
{
        struct bbt_spool_stats stats, before;
        struct bbt_spool *sp;

        setup();
        fake_now = 1000000;
        sp = open_sp(4 << 20, 64 << 10, NULL); /* retain_acked 10 s */
        append_range(sp, 1, 100, 1, 1000);
        fake_now += 5000;
        append_range(sp, 101, 200, 1, 1000);
        bbt_spool_stats(sp, &before);
        ASSERT_GE(before.segments, 4);

        /* Unacknowledged: kept however old. */
        fake_now += 100000;
        ASSERT_EQ(bbt_spool_expire(sp), 0);

        ASSERT_OK(bbt_spool_ack_through(sp, 150));
        fake_now = 1000000 + 9999;
        ASSERT_EQ(bbt_spool_expire(sp), 0); /* too young */
        fake_now = 1000000 + 10000;
        ASSERT_GT(bbt_spool_expire(sp), 0); /* the segments of 1..100 (not one with 101..) */
        bbt_spool_stats(sp, &stats);
        ASSERT_GT(stats.oldest_seq, 1);
        ASSERT_LE(stats.oldest_seq, 101);
        ASSERT_EQ(stats.segments, count_segments());
        ASSERT_EQ(stats.depth, 50);
        ASSERT_EQ(stats.dropped, 0);

        /* Everything acked and old: all but the segment being written go. */
        ASSERT_OK(bbt_spool_ack_through(sp, 200));
        fake_now = 1000000 + 5000 + 10000;
        ASSERT_GT(bbt_spool_expire(sp), 0);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.segments, 1);
        ASSERT_EQ(count_segments(), 1);
        ASSERT_EQ(stats.last_seq, 200);
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(4 << 20, 64 << 10, NULL);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.last_seq, 200);
        ASSERT_EQ(stats.depth, 0);
        bbt_spool_close(sp);
}

struct collected {
        uint64_t seqs[1000];
        size_t n;
        uint64_t stop_at; /* return 1 at this seq (0: never) */
};

static int collect_cb(void *userdata, const struct bbt_spool_record *rec)
{
        struct collected *c = userdata;

        if (c->stop_at && rec->seq == c->stop_at) {
                c->stop_at = 0;
                return 1;
        }
        check_record(rec, rec->seq, 300);
        ASSERT_LT(c->n, 1000);
        c->seqs[c->n++] = rec->seq;
        return 0;
}

static int failing_cb(void *userdata, const struct bbt_spool_record *rec)
{
        return -EAGAIN;
}

TEST(read_range_exact)
{
        struct bbt_spool_range range;
        struct collected c = { .n = 0 };
        struct bbt_spool_record rec;
        struct bbt_spool *sp;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 10, 1000, 2, 300); /* even seqs, several segments */

        ASSERT_OK(bbt_spool_read_range(sp, 100, 120, 1000, collect_cb, &c, &range));
        ASSERT(range.done);
        ASSERT_EQ(range.delivered, 11);
        ASSERT_EQ(c.n, 11);
        for (size_t i = 0; i < c.n; i++)
                ASSERT_EQ(c.seqs[i], 100 + 2 * i);
        ASSERT_EQ(range.first_available, 10);
        ASSERT_EQ(range.last_seq, 1000);

        /* Odd bounds: only the seqs that exist. */
        c.n = 0;
        ASSERT_OK(bbt_spool_read_range(sp, 501, 503, 1000, collect_cb, &c, &range));
        ASSERT_EQ(c.n, 1);
        ASSERT_EQ(c.seqs[0], 502);
        c.n = 0;
        ASSERT_OK(bbt_spool_read_range(sp, 503, 503, 1000, collect_cb, &c, &range));
        ASSERT_EQ(c.n, 0);
        ASSERT(range.done);

        /* Paced: 7 at a time, resumed from range.next, across segments. */
        c.n = 0;
        range.next = 300;
        do {
                ASSERT_OK(bbt_spool_read_range(sp, range.next, 700, 7, collect_cb, &c, &range));
                ASSERT_LE(range.delivered, 7);
        } while (!range.done);
        ASSERT_EQ(c.n, 201);
        for (size_t i = 0; i < c.n; i++)
                ASSERT_EQ(c.seqs[i], 300 + 2 * i);

        /* The callback stops before a record: it comes first next time. */
        c.n = 0;
        c.stop_at = 206;
        ASSERT_OK(bbt_spool_read_range(sp, 200, 220, 100, collect_cb, &c, &range));
        ASSERT(!range.done);
        ASSERT_EQ(range.next, 206);
        ASSERT_EQ(range.delivered, 3);
        ASSERT_OK(bbt_spool_read_range(sp, range.next, 220, 100, collect_cb, &c, &range));
        ASSERT(range.done);
        ASSERT_EQ(c.n, 11);
        ASSERT_EQ(c.seqs[3], 206);

        ASSERT_EQ(bbt_spool_read_range(sp, 200, 220, 100, failing_cb, NULL, &range), -EAGAIN);
        ASSERT_EQ(bbt_spool_read_range(sp, 220, 200, 100, collect_cb, &c, &range), -EINVAL);
        ASSERT_EQ(bbt_spool_read_range(sp, 200, 220, 0, collect_cb, &c, &range), -EINVAL);

        /* Resends do not move the send cursor. */
        ASSERT_OK(bbt_spool_next(sp, &rec));
        ASSERT_EQ(rec.seq, 10);
        bbt_spool_close(sp);
}

TEST(read_range_expired_and_beyond)
{
        struct bbt_spool_range range;
        struct collected c = { .n = 0 };
        struct bbt_spool_stats stats;
        struct bbt_spool *sp;

        setup();
        fake_now = 0;
        sp = open_sp(4 << 20, 64 << 10, NULL);
        ASSERT_OK(bbt_spool_read_range(sp, 1, 10, 10, collect_cb, &c, &range));
        ASSERT(range.done);
        ASSERT_EQ(range.first_available, 0);
        ASSERT_EQ(range.last_seq, 0);

        append_range(sp, 1, 600, 1, 300);
        ASSERT_OK(bbt_spool_ack_through(sp, 400));
        fake_now = 20000;
        ASSERT_GT(bbt_spool_expire(sp), 0);
        bbt_spool_stats(sp, &stats);
        ASSERT_GT(stats.oldest_seq, 1);

        /* Partly expired, partly beyond the last seq. */
        ASSERT_OK(bbt_spool_read_range(sp, 1, 10000, 1000, collect_cb, &c, &range));
        ASSERT(range.done);
        ASSERT_EQ(range.first_available, stats.oldest_seq);
        ASSERT_EQ(range.last_seq, 600);
        ASSERT_EQ(c.n, 600 - stats.oldest_seq + 1);
        ASSERT_EQ(c.seqs[0], stats.oldest_seq);
        ASSERT_EQ(c.seqs[c.n - 1], 600);

        /* Wholly expired; wholly beyond. */
        c.n = 0;
        ASSERT_OK(bbt_spool_read_range(sp, 1, stats.oldest_seq - 1, 1000, collect_cb, &c, &range));
        ASSERT(range.done);
        ASSERT_EQ(c.n, 0);
        ASSERT_OK(bbt_spool_read_range(sp, 601, 700, 1000, collect_cb, &c, &range));
        ASSERT(range.done);
        ASSERT_EQ(c.n, 0);
        ASSERT_OK(bbt_spool_read_range(sp, 0, UINT64_MAX, 1000, collect_cb, &c, &range));
        ASSERT(range.done);
        ASSERT_EQ(c.n, 600 - stats.oldest_seq + 1);
        bbt_spool_close(sp);
}

TEST(seq_not_increasing_rejected)
{
        struct bbt_spool_stats stats;
        struct bbt_spool *sp;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        ASSERT_EQ(bbt_spool_append(sp, 0, 0, 0, TOPIC, "x", 1, NULL), -EINVAL);
        append_range(sp, 5, 5, 1, 10);
        ASSERT_EQ(bbt_spool_append(sp, 5, 0, 0, TOPIC, "x", 1, NULL), -EINVAL);
        ASSERT_EQ(bbt_spool_append(sp, 4, 0, 0, TOPIC, "x", 1, NULL), -EINVAL);
        ASSERT_OK(bbt_spool_close(sp));
        sp = open_sp(1 << 20, 64 << 10, NULL);
        ASSERT_EQ(bbt_spool_append(sp, 3, 0, 0, TOPIC, "x", 1, NULL), -EINVAL);
        append_range(sp, 6, 6, 1, 10);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 2);
        bbt_spool_close(sp);
}

TEST(record_limits)
{
        static char big[BBT_SPOOL_PAYLOAD_MAX + 1];
        char topic[BBT_SPOOL_TOPIC_MAX + 2];
        struct bbt_spool_record rec;
        struct bbt_spool *sp;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        memset(topic, 't', sizeof(topic) - 1);
        topic[sizeof(topic) - 1] = '\0';
        ASSERT_EQ(bbt_spool_append(sp, 1, 0, 0, topic, "x", 1, NULL), -EMSGSIZE);
        ASSERT_EQ(bbt_spool_append(sp, 1, 0, 0, "", "x", 1, NULL), -EMSGSIZE);
        ASSERT_EQ(bbt_spool_append(sp, 1, 0, 0, TOPIC, big, sizeof(big), NULL), -EMSGSIZE);
        topic[BBT_SPOOL_TOPIC_MAX] = '\0';
        memset(big, '{', sizeof(big));
        ASSERT_OK(bbt_spool_append(sp, 1, -5, 0xff, topic, big, BBT_SPOOL_PAYLOAD_MAX, NULL));
        ASSERT_OK(bbt_spool_append(sp, 2, 7, 0, TOPIC, NULL, 0, NULL));
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(1 << 20, 64 << 10, NULL);
        ASSERT_OK(bbt_spool_next(sp, &rec));
        ASSERT_EQ(rec.seq, 1);
        ASSERT_EQ(rec.ts_ms, -5);
        ASSERT_EQ(rec.flags, 0xff);
        ASSERT_EQ(rec.topic_len, BBT_SPOOL_TOPIC_MAX);
        ASSERT_EQ(rec.payload_len, BBT_SPOOL_PAYLOAD_MAX);
        ASSERT(memcmp(rec.payload, big, BBT_SPOOL_PAYLOAD_MAX) == 0);
        ASSERT_OK(bbt_spool_next(sp, &rec));
        ASSERT_EQ(rec.seq, 2);
        ASSERT_EQ(rec.payload_len, 0);
        ASSERT_STR_EQ(rec.topic, TOPIC);
        bbt_spool_close(sp);
}

/* Lets writes reach only LIMIT bytes into any file (SIGXFSZ ignored: write() fails with EFBIG). */
static void limit_file_size(rlim_t limit)
{
        struct rlimit rl;

        ASSERT_OK(getrlimit(RLIMIT_FSIZE, &rl));
        rl.rlim_cur = limit;
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &rl));
}

static void unlimit_file_size(void)
{
        struct rlimit rl;

        ASSERT_OK(getrlimit(RLIMIT_FSIZE, &rl));
        rl.rlim_cur = rl.rlim_max;
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &rl));
}

TEST(write_failure_leaves_no_half_record)
{
        struct bbt_spool_stats stats;
        struct reports rep;
        struct bbt_spool *sp;
        char path[256], payload[500];
        uint64_t size;

        setup();
        signal(SIGXFSZ, SIG_IGN);
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 1, 10, 1, 500);
        segment_path(true, path, sizeof(path));
        size = file_size(path);

        /* Half of the next record fits: the short write is cut back. */
        limit_file_size(size + REC_SIZE(500) / 2);
        make_payload(11, sizeof(payload), payload);
        ASSERT_EQ(bbt_spool_append(sp, 11, 0, 0, TOPIC, payload, sizeof(payload), NULL), -EFBIG);
        ASSERT_EQ(file_size(path), size);
        /* Not even a byte fits. */
        limit_file_size(size);
        ASSERT_EQ(bbt_spool_append(sp, 11, 0, 0, TOPIC, payload, sizeof(payload), NULL), -EFBIG);
        ASSERT_EQ(file_size(path), size);
        unlimit_file_size();
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 10);
        ASSERT_EQ(stats.last_seq, 10);
        ASSERT_EQ(stats.bytes, size);

        /* The record was not spooled: the caller may try again. */
        append_range(sp, 11, 12, 1, 500);
        expect_next(sp, 1, 12, 1, 500, 0);
        ASSERT_OK(bbt_spool_close(sp));
        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 0);
        expect_next(sp, 1, 12, 1, 500, 0);
        bbt_spool_close(sp);
}

TEST(rotation_failure_leaves_no_file)
{
        struct bbt_spool_stats stats;
        struct reports rep;
        struct bbt_spool *sp;
        char payload[1000];
        uint64_t seq = 0;
        int n;

        setup();
        signal(SIGXFSZ, SIG_IGN);
        sp = open_sp(1 << 20, 64 << 10, NULL);
        /* Fill the first segment to just below a rotation. */
        while (FILE_HDR + (seq + 1) * REC_SIZE(1000) <= 64 << 10) {
                seq++;
                append_range(sp, seq, seq, 1, 1000);
        }
        n = count_segments();
        ASSERT_EQ(n, 1);
        limit_file_size(100);
        make_payload(seq + 1, sizeof(payload), payload);
        ASSERT_EQ(bbt_spool_append(sp, seq + 1, 0, 0, TOPIC, payload, sizeof(payload), NULL), -EFBIG);
        unlimit_file_size();
        ASSERT_EQ(count_segments(), 1);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.segments, 1);
        ASSERT_EQ(stats.last_seq, seq);
        append_range(sp, seq + 1, seq + 1, 1, 1000);
        ASSERT_EQ(count_segments(), 2);
        ASSERT_OK(bbt_spool_close(sp));
        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 0);
        expect_next(sp, 1, seq + 1, 1, 1000, 0);
        bbt_spool_close(sp);
}

TEST(second_open_busy)
{
        struct bbt_spool_options opts;
        struct bbt_spool *sp, *other = NULL;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        bbt_spool_options_init(&opts, dir);
        ASSERT_EQ(bbt_spool_open(&opts, NULL, NULL, &other), -EBUSY);
        ASSERT(other == NULL);
        bbt_spool_close(sp);
        ASSERT_OK(bbt_spool_open(&opts, NULL, NULL, &other));
        bbt_spool_close(other);
        bbt_spool_close(NULL);
}

TEST(bad_options)
{
        struct bbt_spool_options opts;
        struct bbt_spool *sp = NULL;

        setup();
        bbt_spool_options_init(&opts, dir);
        opts.max_bytes = 100 << 10; /* less than two 64 KiB segments */
        ASSERT_EQ(bbt_spool_open(&opts, NULL, NULL, &sp), -EINVAL);
        bbt_spool_options_init(&opts, dir);
        opts.retain_acked_ms = -1;
        ASSERT_EQ(bbt_spool_open(&opts, NULL, NULL, &sp), -EINVAL);
        bbt_spool_options_init(&opts, NULL);
        ASSERT_EQ(bbt_spool_open(&opts, NULL, NULL, &sp), -EINVAL);
        bbt_spool_options_init(&opts, "/nonexistent-bbt-parent/spool");
        ASSERT_EQ(bbt_spool_open(&opts, NULL, NULL, &sp), -ENOENT);
        ASSERT(sp == NULL);
        /* Defaults: 64 MiB, segments of 4 MiB, created 0700. */
        bbt_spool_options_init(&opts, dir);
        ASSERT_EQ(opts.max_bytes, 64u << 20);
        ASSERT_EQ(opts.retain_acked_ms, 7LL * 86400 * 1000);
        ASSERT_OK(bbt_spool_open(&opts, NULL, NULL, &sp));
        {
                struct stat st;

                ASSERT_OK(stat(dir, &st));
                ASSERT_EQ(st.st_mode & 0777, 0700);
        }
        bbt_spool_close(sp);
}

TEST(bad_meta_reported)
{
        struct bbt_spool_stats stats;
        struct reports rep;
        struct bbt_spool *sp;
        char path[256];
        FILE *f;

        setup();
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 1, 10, 1, 100);
        ASSERT_OK(bbt_spool_ack_through(sp, 10));
        ASSERT_OK(bbt_spool_close(sp));
        snprintf(path, sizeof(path), "%s/meta", dir);
        f = fopen(path, "w");
        ASSERT(f);
        fputs("version=1\nacked=banana\n", f);
        fclose(f);

        sp = open_sp(1 << 20, 64 << 10, &rep);
        ASSERT_EQ(rep.n, 1);
        ASSERT_STR_EQ(rep.path[0], path);
        ASSERT_STR_CONTAINS(rep.reason[0], "bad meta file");
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.acked, 0);
        ASSERT_EQ(stats.depth, 10); /* sent again; the aggregator drops the duplicates */
        expect_next(sp, 1, 10, 1, 100, 0);
        bbt_spool_close(sp);
}

struct sync_thread {
        struct bbt_spool *sp;
        atomic_bool stop;
        int errors, syncs;
};

static void *sync_main(void *arg)
{
        struct sync_thread *t = arg;

        while (!atomic_load(&t->stop)) {
                uint64_t synced;
                struct timespec ts = { 0, 200000 };

                if (bbt_spool_sync(t->sp, &synced) < 0)
                        t->errors++;
                if (bbt_spool_save_meta(t->sp) < 0)
                        t->errors++;
                t->syncs++;
                nanosleep(&ts, NULL);
        }
        return NULL;
}

TEST(sync_concurrent_with_append)
{
        struct sync_thread t = { .errors = 0 };
        struct bbt_spool_stats stats;
        struct bbt_spool *sp;
        pthread_t th;
        uint64_t synced = 0;

        setup();
        sp = open_sp(4 << 20, 64 << 10, NULL);
        t.sp = sp;
        atomic_init(&t.stop, false);
        ASSERT_OK(pthread_create(&th, NULL, sync_main, &t));
        for (uint64_t seq = 1; seq <= 1500; seq++) {
                append_range(sp, seq, seq, 1, 1000); /* a rotation every ~60 records */
                if (seq % 10 == 0)
                        ASSERT_OK(bbt_spool_ack_through(sp, seq - 5));
        }
        atomic_store(&t.stop, true);
        ASSERT_OK(pthread_join(th, NULL));
        ASSERT_EQ(t.errors, 0);
        ASSERT_GT(t.syncs, 0);
        ASSERT_OK(bbt_spool_sync(sp, &synced));
        ASSERT_EQ(synced, 1500);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.depth, 5);
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(4 << 20, 64 << 10, NULL);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.acked, 1495);
        expect_next(sp, 1496, 1500, 1, 1000, 0);
        bbt_spool_close(sp);
}

/* A failed append is counted (unstored) and its seq remembered, both kept in
 * meta across a restart with the drop-alert mark and the agent's witnesses;
 * the witness of a spool whose tail was cut still names what was used. */
TEST(unstored_and_witnesses_survive_restart)
{
        struct bbt_seq_range r[BBT_SPOOL_UNSTORED_RANGES], sk[2] = { { 100, 199 }, { 300, 399 } };
        struct bbt_spool_witness w;
        struct bbt_spool_stats stats;
        struct bbt_spool *sp;
        char path[256], payload[500];
        uint64_t size;

        setup();
        signal(SIGXFSZ, SIG_IGN);
        sp = open_sp(1 << 20, 64 << 10, NULL);
        append_range(sp, 1, 10, 1, 500);
        segment_path(true, path, sizeof(path));
        size = file_size(path);
        limit_file_size(size);
        make_payload(11, sizeof(payload), payload);
        ASSERT_EQ(bbt_spool_append(sp, 11, 0, 0, TOPIC, payload, sizeof(payload), NULL), -EFBIG);
        ASSERT_EQ(bbt_spool_append(sp, 12, 0, 0, TOPIC, payload, sizeof(payload), NULL), -EFBIG);
        unlimit_file_size();
        bbt_spool_note_unstored(sp, 0); /* lost before the append: counted, no seq */
        append_range(sp, 13, 20, 1, 500);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.unstored, 3);
        ASSERT_EQ(stats.drop_cleared, 0);
        bbt_spool_set_seq_ceiling(sp, 3001);
        bbt_spool_set_boot(sp, 77);
        bbt_spool_set_skipped(sp, sk, 2);
        ASSERT_OK(bbt_spool_close(sp));

        sp = open_sp(1 << 20, 64 << 10, NULL);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.unstored, 3); /* persisted: the hb's spool.dropped does not restart at 0 */
        ASSERT_EQ(bbt_spool_unstored_seqs(sp, r, BBT_SPOOL_UNSTORED_RANGES), 1);
        ASSERT_EQ(r[0].from, 11);
        ASSERT_EQ(r[0].to, 12);
        bbt_spool_witness(sp, &w);
        ASSERT_EQ(w.last_seq, 20);
        ASSERT_EQ(w.meta_appended, 20);
        ASSERT_EQ(w.meta_seq_ceiling, 3001);
        ASSERT_EQ(w.meta_boot, 77);
        ASSERT_EQ(w.n_meta_skipped, 2);
        ASSERT_EQ(w.meta_skipped[1].from, 300);
        bbt_spool_clear_drops(sp);
        ASSERT_OK(bbt_spool_close(sp));

        /* The tail cut off (a power cut): the witnesses still say 20 was used. */
        ASSERT_OK(truncate(path, (off_t)(size - REC_SIZE(500) * 3)));
        sp = open_sp(1 << 20, 64 << 10, NULL);
        bbt_spool_witness(sp, &w);
        ASSERT_LT(w.last_seq, 20);
        ASSERT_EQ(w.meta_appended, 20);
        bbt_spool_stats(sp, &stats);
        ASSERT_EQ(stats.drop_cleared, 3); /* the alert was cleared before the restart */
        bbt_spool_close(sp);
}
