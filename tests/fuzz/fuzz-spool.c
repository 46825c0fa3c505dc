/* libFuzzer target: the spool's on-disk records and meta file (agent/spool.c), read back after damage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                                  \
        do {                                                                         \
                if (!(cond)) {                                                       \
                        fprintf(stderr, "fuzz-spool: check failed: %s\n", #cond);   \
                        abort();                                                     \
                }                                                                    \
        } while (0)

/*
 * One input is a small program: the records to append through the real
 * bbt_spool_append() (so the files are the spool's own, CRCs and all), then
 * what to do to the files on disk -- flip and zero bytes, cut and extend
 * files, delete one, leave a stray segment, replace the meta file with text
 * from the input -- and then the spool is opened again on what is left.
 *
 *   byte 0      mode: bit 0 the rest of the input is the meta file; bit 1
 *               large records in a 128 KiB spool (several segments, the oldest
 *               dropped when full); bit 2 a stray segment named past the end,
 *               its first N bytes of a header
 *   byte 1      records (low 5 bits), then 3 bytes each: seq gap, topic
 *               length, payload length
 *   next byte   damage steps (low 4 bits), then 4 bytes each: what, which
 *               file, where (2 bytes, a fraction of the file's size)
 *   the rest    meta text (mode bit 0)
 *
 * What must hold after any damage: the open succeeds; what it gives back is
 * in seq order, within the format's limits, and as many records as the depth
 * says; a resend range read agrees; and the spool still takes the next record
 * and has it after another reopen.
 */

static char dir[256];

static void remove_all(void)
{
        DIR *d = opendir(dir);
        struct dirent *de;

        CHECK(d != NULL);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        CHECK(unlinkat(dirfd(d), de->d_name, 0) == 0);
        closedir(d);
}

static void cleanup(void)
{
        if (dir[0]) {
                remove_all();
                rmdir(dir);
        }
}

static void setup(void)
{
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

        snprintf(dir, sizeof(dir), "%s/fuzz-spool.XXXXXX", base);
        CHECK(mkdtemp(dir) != NULL);
        atexit(cleanup);
}

struct input {
        const unsigned char *p;
        size_t left;
};

static unsigned next_byte(struct input *in)
{
        if (!in->left)
                return 0;
        in->left--;
        return *in->p++;
}

static void fill_options(struct bbt_spool_options *o, bool small)
{
        bbt_spool_options_init(o, dir);
        if (small)
                o->max_bytes = 128 << 10; /* segments of 64 KiB, two of them at most */
        o->retain_acked_ms = 0;
}

static void report_cb(void *userdata, const char *path, uint64_t offset, const char *reason)
{
        CHECK(path && reason && reason[0]);
        (*(unsigned *)userdata)++;
}

/* The segment files, by name (which is seq order), in NAMES; returns how many. */
static size_t list_segments(char names[][32], size_t max)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        CHECK(d != NULL);
        while ((de = readdir(d)) && n < max) {
                size_t len = strlen(de->d_name);

                if (len == 24 && strcmp(de->d_name + 20, ".seg") == 0)
                        snprintf(names[n++], 32, "%s", de->d_name);
        }
        closedir(d);
        qsort(names, n, 32, (int (*)(const void *, const void *))strcmp);
        return n;
}

static void damage(const char *name, unsigned what, unsigned where)
{
        char path[320];
        struct stat st;
        off_t at;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return;
        CHECK(fstat(fd, &st) == 0);
        at = (off_t)(((uint64_t)where * (uint64_t)st.st_size) >> 16);
        switch (what % 5) {
        case 0: { /* flip some bits of one byte */
                unsigned char b;

                if (at < st.st_size && pread(fd, &b, 1, at) == 1) {
                        b ^= (unsigned char)(1u << (where % 8));
                        CHECK(pwrite(fd, &b, 1, at) == 1);
                }
                break;
        }
        case 1: /* cut the file there (a torn write, a lost tail) */
                CHECK(ftruncate(fd, at) == 0);
                break;
        case 2: { /* garbage after the end */
                unsigned char junk[16];

                memset(junk, (int)(where & 0xff), sizeof(junk));
                CHECK(pwrite(fd, junk, 1 + where % sizeof(junk), st.st_size) > 0);
                break;
        }
        case 3: { /* a zeroed block (a sector that never reached the disk) */
                static const unsigned char zero[64];

                if (at < st.st_size)
                        CHECK(pwrite(fd, zero, sizeof(zero), at) == (ssize_t)sizeof(zero));
                break;
        }
        case 4: /* the file is gone */
                CHECK(unlink(path) == 0);
                break;
        }
        close(fd);
}

static void write_file(const char *name, const void *data, size_t len)
{
        char path[320];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        CHECK(len == 0 || write(fd, data, len) == (ssize_t)len);
        close(fd);
}

struct range_check {
        uint64_t prev;
        size_t n;
};

static int range_cb(void *userdata, const struct bbt_spool_record *rec)
{
        struct range_check *rc = userdata;

        CHECK(rec->seq > rc->prev);
        CHECK(rec->topic_len >= 1 && rec->topic_len <= BBT_SPOOL_TOPIC_MAX);
        CHECK(rec->payload_len <= BBT_SPOOL_PAYLOAD_MAX);
        rc->prev = rec->seq;
        rc->n++;
        return 0;
}

/* Everything the spool hands out is in order and within limits. */
static void check_spool(struct bbt_spool *sp, uint64_t *ret_next_seq)
{
        struct bbt_spool_stats st;
        struct bbt_spool_witness w;
        struct bbt_spool_record rec;
        struct bbt_spool_range range;
        struct range_check rc = { 0 };
        uint64_t prev = 0, n = 0, next;
        int r;

        bbt_spool_stats(sp, &st);
        bbt_spool_witness(sp, &w);
        CHECK(st.oldest_seq <= st.last_seq);
        CHECK(st.acked <= st.last_seq || st.last_seq == 0);
        CHECK(w.last_seq == st.last_seq);
        while ((r = bbt_spool_next(sp, &rec)) == 0) {
                CHECK(rec.seq > prev && rec.seq > st.acked && rec.seq <= st.last_seq);
                CHECK(rec.topic_len >= 1 && rec.topic_len <= BBT_SPOOL_TOPIC_MAX);
                CHECK(strlen(rec.topic) == rec.topic_len);
                CHECK(rec.payload_len <= BBT_SPOOL_PAYLOAD_MAX);
                CHECK(((const char *)rec.payload)[rec.payload_len] == '\0');
                prev = rec.seq;
                n++;
        }
        CHECK(r == -ENOENT);
        CHECK(n == st.depth);

        /* A resend of everything gives every record still held, in order. */
        if (st.last_seq) {
                r = bbt_spool_read_range(sp, 1, st.last_seq, 1000, range_cb, &rc, &range);
                CHECK(r == 0);
                CHECK(range.delivered == rc.n && rc.n >= n);
                CHECK(rc.prev == st.last_seq);
        }
        CHECK(bbt_spool_ack_through(sp, st.last_seq) == 0);
        bbt_spool_stats(sp, &st);
        CHECK(st.depth == 0);
        CHECK(bbt_spool_expire(sp) >= 0);

        /* The next seq past every seq the files show used, as the agent's
         * counters pick it (they weigh meta's copies too). */
        next = st.last_seq > w.newest_name ? st.last_seq : w.newest_name;
        *ret_next_seq = next + 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
        struct input in = { data, size };
        struct bbt_spool_options o;
        struct bbt_spool_stats st;
        struct bbt_spool *sp;
        struct bbt_spool_range range;
        struct range_check rc = { 0 };
        char names[64][32], topic[BBT_SPOOL_TOPIC_MAX + 1];
        static char payload[BBT_SPOOL_PAYLOAD_MAX];
        unsigned mode, n, reports = 0;
        uint64_t seq = 0, next_seq;
        size_t n_segs;

        if (!dir[0])
                setup();
        remove_all();
        mode = next_byte(&in);
        fill_options(&o, mode & 2);

        /* The records, through the spool itself. */
        CHECK(bbt_spool_open(&o, NULL, NULL, &sp) == 0);
        n = next_byte(&in) & 31;
        for (unsigned i = 0; i < n; i++) {
                unsigned gap = next_byte(&in) & 3, tlen = 1 + next_byte(&in) % BBT_SPOOL_TOPIC_MAX;
                unsigned plen = next_byte(&in);
                int r;

                if (mode & 2)
                        plen *= 64;
                seq += 1 + gap;
                memset(topic, 'a' + (int)(seq % 26), tlen);
                topic[tlen] = '\0';
                memset(payload, '0' + (int)(seq % 10), plen);
                r = bbt_spool_append(sp, seq, (int64_t)seq * 1000, (uint8_t)(seq & 1), topic, payload, plen, NULL);
                CHECK(r == 0);
        }
        CHECK(bbt_spool_close(sp) == 0);

        /* The damage. */
        n = next_byte(&in) & 15;
        for (unsigned i = 0; i < n; i++) {
                unsigned what = next_byte(&in), which = next_byte(&in);
                unsigned where = next_byte(&in) << 8;

                where |= next_byte(&in);
                n_segs = list_segments(names, 64);
                if (which % (n_segs + 1) == n_segs)
                        damage("meta", what, where);
                else
                        damage(names[which % (n_segs + 1)], what, where);
        }
        if (mode & 4) {
                /* A segment created past the end, cut inside its header. */
                static const unsigned char header[8] = { 0x42, 0x42, 0x54, 0x53, 1, 0, 0, 0 };
                char name[32];

                snprintf(name, sizeof(name), "%020llu.seg", (unsigned long long)seq + 5);
                write_file(name, header, (mode >> 3) % 9);
        }
        if (mode & 1)
                write_file("meta", in.p, in.left);

        /* What is left, read back. */
        CHECK(bbt_spool_open(&o, report_cb, &reports, &sp) == 0);
        check_spool(sp, &next_seq);

        /* Still takes the next record, and has it after a reopen. */
        CHECK(bbt_spool_append(sp, next_seq, 1, 0, "t", "{}", 2, NULL) == 0);
        CHECK(bbt_spool_save_meta(sp) == 0);
        CHECK(bbt_spool_close(sp) == 0);
        CHECK(bbt_spool_open(&o, report_cb, &reports, &sp) == 0);
        bbt_spool_stats(sp, &st);
        CHECK(st.last_seq == next_seq);
        CHECK(bbt_spool_read_range(sp, next_seq, next_seq, 1, range_cb, &rc, &range) == 0);
        CHECK(rc.n == 1 && rc.prev == next_seq);
        CHECK(bbt_spool_close(sp) == 0);
        return 0;
}
