/* The crash-safe on-disk store-and-forward spool: segment files of CRC-checked records, a send cursor, an ack watermark. */

/*
 * On-disk format (version 1). All integers little-endian, packed byte by byte.
 *
 * DIR/NNNNNNNNNNNNNNNNNNNN.seg   a segment, named by the (20-digit, zero-padded)
 *                                seq of the first record it was created with
 *   file header, 8 bytes:  u32 magic 0x53544242 ("BBTS")  u32 format version (1)
 *   then records, back to back:
 *     u32 magic 0xEC52B8FE (bytes FE B8 52 EC: 0xFE never occurs in UTF-8,
 *                           so a JSON payload can never hold a record header)
 *     u32 body length  (20 + topic length + payload length)
 *     u32 CRC-32 (zlib crc32()) of the body
 *     body: u64 seq, i64 ts_ms, u8 flags (bit 0: MQTT retain), u8 reserved (0),
 *           u16 topic length (1..128), topic bytes, payload bytes (0..16384)
 * DIR/meta       "key=value" lines (version=2; version 1 files, with acked
 *                and dropped only, are read too), replaced atomically
 *                (meta.tmp, fdatasync, rename, fsync of DIR): the ack
 *                watermark, the drop counters, and the witnesses of which
 *                seqs were used (see docs/spool.md, "meta")
 * DIR/lock       empty; flock()ed while a spool is open
 *
 * Seqs strictly increase through a segment and from one segment to the next.
 * Only the newest segment is ever written to, and only by appending whole
 * records with one write(); a failed write is truncated back. At open every
 * record is read and its CRC checked: a bad record is skipped by searching
 * forward for the next offset holding a record whose CRC checks; bad bytes at
 * the end of the newest segment (a write torn by a crash) are cut off.
 *
 * In memory: per segment a few numbers (struct segment), two cursors (send,
 * ack) and a cached read position for resends; never a per-record index.
 */
#include "spool.h"
#include "bbt/base.h"

#include "bbt/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FILE_MAGIC 0x53544242u
#define FILE_VERSION 1u
#define REC_MAGIC 0xEC52B8FEu
#define SEG_HEADER_SIZE 8u
#define REC_HEADER_SIZE 12u
#define BODY_FIXED 20u
#define BODY_MAX (BODY_FIXED + BBT_SPOOL_TOPIC_MAX + BBT_SPOOL_PAYLOAD_MAX)
#define REC_MAX (REC_HEADER_SIZE + BODY_MAX)
/* The first read of a record: header and a typical body in one pread(). */
#define READ_AHEAD 2048u
#define SEG_NAME_LEN 24 /* 20 digits + ".seg" */
#define RETIRED_MAX 4
#define META_VERSION 2u
#define META_MAX 16384 /* bytes of a meta file: 272 ranges of two 16-digit numbers, and the rest */
#define META_NAME "meta"
#define META_TMP_NAME "meta.tmp"
#define LOCK_NAME "lock"

/* What parse_at() found at an offset. */
enum parse_status {
        PARSE_OK = 0,
        PARSE_END,       /* the offset is the end of the data */
        PARSE_TRUNCATED, /* the record would run past the end */
        PARSE_BAD_MAGIC,
        PARSE_BAD_LENGTH,
        PARSE_BAD_CRC,
        PARSE_SEQ_ORDER, /* a valid record, but its seq is not above the one before */
};

static const char *const parse_reasons[] = {
        [PARSE_OK] = "ok",
        [PARSE_END] = "end",
        [PARSE_TRUNCATED] = "truncated record",
        [PARSE_BAD_MAGIC] = "bad magic",
        [PARSE_BAD_LENGTH] = "length out of range",
        [PARSE_BAD_CRC] = "crc mismatch",
        [PARSE_SEQ_ORDER] = "seq out of order",
};

struct segment {
        uint64_t name_seq;  /* from the file name: unique, the key of a segment */
        uint64_t min_seq;   /* records below this are out of order (set when the segment is entered) */
        uint64_t first_seq; /* first and last valid record: meaningful when count > 0 */
        uint64_t last_seq;
        uint64_t count;     /* valid records */
        uint64_t bytes;     /* file size; for the newest segment, the end of the last good record */
        int64_t newest_ts;  /* highest ts_ms of its records (or the file's mtime if it has none) */
};

/* A read position: the record at OFF of segment IDX is the next one (if OFF
 * holds corrupt bytes, readers resync from there). */
struct cursor {
        size_t idx;
        uint64_t off;
        uint64_t in_seg;   /* valid records of segment IDX before OFF */
        uint64_t prev_seq; /* seq of the record before OFF, when HAS_PREV */
        bool has_prev;
};

/* A read-only descriptor kept open on one segment. */
struct reader {
        uint64_t name_seq;
        int fd;
};

struct bbt_spool {
        char *dir;
        int dirfd, lockfd;
        uint64_t max_bytes, segment_bytes;
        int64_t retain_acked_ms;
        int64_t (*clock_ms)(void *userdata);
        void *clock_userdata;

        struct segment *segs; /* oldest first */
        size_t n_segs, cap_segs;
        uint64_t total_bytes;
        bool cur_writable;  /* the newest segment takes appends */
        bool need_truncate; /* a failed write could not be cut back yet */
        bool have_last;
        uint64_t last_seq;
        uint64_t depth, corrupt;

        struct cursor send, ack;
        struct reader send_rd, ack_rd, range_rd;
        bool range_hint_valid;
        uint64_t range_hint_seq;
        struct cursor range_hint;

        struct bbt_spool_witness witness; /* what the files said at open */

        uint8_t *next_buf; /* bbt_spool_next()'s records */
        uint8_t *work_buf; /* everything else: scan, acks, ranges, building appends */

        /* LOCK guards the fields below it, which bbt_spool_sync() and
         * bbt_spool_save_meta() read from other threads. The loop thread
         * reads them without the lock (it is their only writer). */
        pthread_mutex_t lock;
        int wfd; /* O_APPEND descriptor of the newest segment, or -1 */
        int retired[RETIRED_MAX]; /* descriptors of segments closed since the last sync */
        size_t n_retired;
        bool dir_dirty;       /* a segment was created since the last sync */
        uint64_t written_seq; /* the last seq written */
        uint64_t synced_seq;
        uint64_t acked;       /* the ack watermark */
        uint64_t dropped;
        uint64_t unstored;    /* messages the spool was asked to store but could not */
        uint64_t drop_cleared; /* dropped + unstored when the agent last cleared its alert */
        uint64_t seq_ceiling; /* the agent's seq reservation, kept here as a second witness */
        uint64_t agent_boot;  /* the agent's session counter, likewise */
        struct bbt_seq_range unstored_seqs[BBT_SPOOL_UNSTORED_RANGES];
        size_t n_unstored_seqs;
        struct bbt_seq_range skipped[BBT_SPOOL_SKIPPED_RANGES]; /* the agent's, a copy */
        size_t n_skipped;
        struct bbt_seq_range meta_skipped[BBT_SPOOL_SKIPPED_RANGES]; /* as read at open */
        uint64_t meta_gen;    /* bumped at every change of a field saved in meta but the two below */
        uint64_t ack_gen;     /* bumped when the ack watermark moves: it may reach meta late */

        pthread_mutex_t meta_lock; /* serialises meta file writes; guards meta_saved_* */
        uint64_t meta_saved_gen, meta_saved_ack_gen, meta_saved_appended;
};

static void put_u16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
        return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
        return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t crc_of(const uint8_t *p, size_t len)
{
        return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)len);
}

static int64_t realtime_ms(void *userdata)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seg_name(char buf[SEG_NAME_LEN + 1], uint64_t seq)
{
        snprintf(buf, SEG_NAME_LEN + 1, "%020" PRIu64 ".seg", seq);
}

/* Parses "NNNNNNNNNNNNNNNNNNNN.seg" into *RET; false for any other name. */
static bool parse_seg_name(const char *name, uint64_t *ret)
{
        uint64_t v = 0;

        if (strlen(name) != SEG_NAME_LEN || strcmp(name + 20, ".seg") != 0)
                return false;
        for (int i = 0; i < 20; i++) {
                unsigned d;

                if (name[i] < '0' || name[i] > '9')
                        return false;
                d = (unsigned)(name[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *ret = v;
        return true;
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

/* Reads up to LEN bytes at OFF; returns the count (short only at end of file) or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        return (ssize_t)done;
}

static int truncate_fd(int fd, uint64_t size)
{
        while (ftruncate(fd, (off_t)size) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

/* Reads the record at OFF (which must end by LIMIT) into BUF (REC_MAX + 1
 * bytes) and, if it is valid with seq >= MIN_SEQ, fills *REC (payload
 * pointing into BUF) and *RET_SIZE. Returns a parse_status or -errno. */
static int parse_at(int fd, uint64_t off, uint64_t limit, uint8_t *buf, uint64_t min_seq,
                    struct bbt_spool_record *rec, uint32_t *ret_size)
{
        uint64_t avail;
        uint32_t len, tlen;
        size_t first;
        ssize_t n;

        if (off >= limit)
                return PARSE_END;
        avail = limit - off;
        if (avail < REC_HEADER_SIZE)
                return PARSE_TRUNCATED;
        first = avail < READ_AHEAD ? (size_t)avail : READ_AHEAD;
        n = pread_full(fd, buf, first, off);
        if (n < 0)
                return (int)n;
        if ((size_t)n < REC_HEADER_SIZE)
                return PARSE_TRUNCATED; /* the file is shorter than we were told */
        if (get_u32(buf) != REC_MAGIC)
                return PARSE_BAD_MAGIC;
        len = get_u32(buf + 4);
        if (len < BODY_FIXED + 1 || len > BODY_MAX)
                return PARSE_BAD_LENGTH;
        if (REC_HEADER_SIZE + (uint64_t)len > avail)
                return PARSE_TRUNCATED;
        if ((size_t)n < REC_HEADER_SIZE + len) {
                ssize_t m = pread_full(fd, buf + n, REC_HEADER_SIZE + len - (size_t)n, off + (uint64_t)n);

                if (m < 0)
                        return (int)m;
                if ((size_t)(n + m) < REC_HEADER_SIZE + len)
                        return PARSE_TRUNCATED;
        }
        if (crc_of(buf + REC_HEADER_SIZE, len) != get_u32(buf + 8))
                return PARSE_BAD_CRC;
        tlen = get_u16(buf + REC_HEADER_SIZE + 18);
        /* A CRC-valid body with inconsistent lengths was written wrong: treat it as corrupt. */
        if (tlen < 1 || tlen > BBT_SPOOL_TOPIC_MAX || BODY_FIXED + tlen > len ||
            len - BODY_FIXED - tlen > BBT_SPOOL_PAYLOAD_MAX)
                return PARSE_BAD_LENGTH;
        if (get_u64(buf + REC_HEADER_SIZE) < min_seq)
                return PARSE_SEQ_ORDER;

        rec->seq = get_u64(buf + REC_HEADER_SIZE);
        rec->ts_ms = (int64_t)get_u64(buf + REC_HEADER_SIZE + 8);
        rec->flags = buf[REC_HEADER_SIZE + 16];
        memcpy(rec->topic, buf + REC_HEADER_SIZE + BODY_FIXED, tlen);
        rec->topic[tlen] = '\0';
        rec->topic_len = tlen;
        rec->payload = buf + REC_HEADER_SIZE + BODY_FIXED + tlen;
        rec->payload_len = len - BODY_FIXED - tlen;
        buf[REC_HEADER_SIZE + len] = '\0';
        *ret_size = REC_HEADER_SIZE + len;
        return PARSE_OK;
}

/* Finds the first offset in [FROM, LIMIT) holding a valid record with seq >=
 * MIN_SEQ: fills *REC, *RET_OFF and *RET_SIZE as parse_at() and returns 1;
 * returns 0 if there is none, or -errno. */
static int resync(int fd, uint64_t from, uint64_t limit, uint8_t *buf, uint64_t min_seq,
                  struct bbt_spool_record *rec, uint64_t *ret_off, uint32_t *ret_size)
{
        static const uint8_t magic[4] = { 0xFE, 0xB8, 0x52, 0xEC };
        uint8_t chunk[4096];
        uint64_t pos = from;

        while (pos + 4 <= limit) {
                size_t want = limit - pos < sizeof(chunk) ? (size_t)(limit - pos) : sizeof(chunk);
                ssize_t n = pread_full(fd, chunk, want, pos);
                const uint8_t *hit, *p;

                if (n < 0)
                        return (int)n;
                if (n < 4)
                        return 0;
                for (p = chunk; (hit = memmem(p, (size_t)(chunk + n - p), magic, 4)) != NULL; p = hit + 1) {
                        uint64_t at = pos + (uint64_t)(hit - chunk);
                        int r = parse_at(fd, at, limit, buf, min_seq, rec, ret_size);

                        if (r < 0)
                                return r;
                        if (r == PARSE_OK) {
                                *ret_off = at;
                                return 1;
                        }
                }
                /* Keep the last 3 bytes: a magic may straddle two chunks. */
                pos += (uint64_t)n - 3;
        }
        return 0;
}

/* The read-only descriptor of SEG through the cache RD, or -errno. */
static int reader_fd(struct bbt_spool *sp, struct reader *rd, const struct segment *seg)
{
        char name[SEG_NAME_LEN + 1];
        int fd;

        if (rd->fd >= 0 && rd->name_seq == seg->name_seq)
                return rd->fd;
        close_fd(&rd->fd);
        seg_name(name, seg->name_seq);
        fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        rd->fd = fd;
        rd->name_seq = seg->name_seq;
        return fd;
}

static uint64_t cursor_min_seq(const struct cursor *cur, const struct segment *seg)
{
        uint64_t min = seg->min_seq;

        if (cur->has_prev && cur->prev_seq + 1 > min)
                min = cur->prev_seq + 1;
        return min;
}

/* Moves CUR to the start of the next segment; false if IDX is the newest. */
static bool cursor_next_segment(struct bbt_spool *sp, struct cursor *cur)
{
        const struct segment *seg = &sp->segs[cur->idx];

        if (cur->idx + 1 >= sp->n_segs)
                return false;
        if (cur == &sp->ack) {
                /* Leaving a segment acknowledges all of it, whatever this pass read. */
                uint64_t left = seg->count > cur->in_seg ? seg->count - cur->in_seg : 0;

                sp->depth = sp->depth > left ? sp->depth - left : 0;
        }
        cur->idx++;
        cur->off = SEG_HEADER_SIZE;
        cur->in_seg = 0;
        return true;
}

/* Positions CUR on the next valid record (skipping corrupt bytes and ended
 * segments) and reads it into BUF and *REC without passing it; *RET_SIZE is its
 * size. Returns 0, -ENOENT at the end of the newest segment, or -errno. */
static int cursor_peek(struct bbt_spool *sp, struct cursor *cur, struct reader *rd, uint8_t *buf,
                       struct bbt_spool_record *rec, uint32_t *ret_size)
{
        for (;;) {
                const struct segment *seg;
                uint64_t at;
                int fd, r;

                if (cur->idx >= sp->n_segs)
                        return -ENOENT;
                seg = &sp->segs[cur->idx];
                if (cur->off < SEG_HEADER_SIZE)
                        cur->off = SEG_HEADER_SIZE;
                if (cur->in_seg >= seg->count || cur->off >= seg->bytes) {
                        if (!cursor_next_segment(sp, cur))
                                return -ENOENT;
                        continue;
                }
                fd = reader_fd(sp, rd, seg);
                if (fd < 0)
                        return fd;
                r = parse_at(fd, cur->off, seg->bytes, buf, cursor_min_seq(cur, seg), rec, ret_size);
                if (r < 0)
                        return r;
                if (r == PARSE_OK)
                        return 0;
                if (r == PARSE_END)
                        continue; /* off >= bytes: next turn moves on */
                /* Corruption the scan at open reported: skip it the same way. */
                r = resync(fd, cur->off + 1, seg->bytes, buf, cursor_min_seq(cur, seg), rec, &at, ret_size);
                if (r < 0)
                        return r;
                if (r == 1) {
                        cur->off = at;
                        return 0;
                }
                cur->off = seg->bytes;
        }
}

static void cursor_pass(struct cursor *cur, const struct bbt_spool_record *rec, uint32_t size)
{
        cur->off += size;
        cur->in_seg++;
        cur->prev_seq = rec->seq;
        cur->has_prev = true;
}

static bool cursor_before(const struct cursor *a, const struct cursor *b)
{
        return a->idx < b->idx || (a->idx == b->idx && a->off < b->off);
}

/* What DIR/meta holds (a snapshot taken under the lock). */
struct meta {
        uint64_t acked, dropped, unstored, drop_cleared, appended, seq_ceiling, boot;
        struct bbt_seq_range unstored_seqs[BBT_SPOOL_UNSTORED_RANGES];
        size_t n_unstored_seqs;
        struct bbt_seq_range skipped[BBT_SPOOL_SKIPPED_RANGES];
        size_t n_skipped;
};

/* Appends "A-B,C-D" to TEXT at *LEN. */
static void put_ranges(char *text, size_t size, size_t *len, const struct bbt_seq_range *r, size_t n)
{
        for (size_t i = 0; i < n && *len < size; i++)
                *len += (size_t)snprintf(text + *len, size - *len, "%s%" PRIu64 "-%" PRIu64, i ? "," : "", r[i].from,
                                         r[i].to);
}

/* Writes DIR/meta atomically. Caller holds meta_lock. */
static int write_meta(struct bbt_spool *sp, const struct meta *m)
{
        char text[META_MAX];
        size_t len;

        len = (size_t)snprintf(text, sizeof(text),
                               "version=%u\nacked=%" PRIu64 "\ndropped=%" PRIu64 "\nunstored=%" PRIu64
                               "\ndrop_cleared=%" PRIu64 "\nappended=%" PRIu64 "\nseq_ceiling=%" PRIu64
                               "\nboot=%" PRIu64 "\nunstored_seqs=",
                               META_VERSION, m->acked, m->dropped, m->unstored, m->drop_cleared, m->appended,
                               m->seq_ceiling, m->boot);
        put_ranges(text, sizeof(text), &len, m->unstored_seqs, m->n_unstored_seqs);
        if (len < sizeof(text))
                len += (size_t)snprintf(text + len, sizeof(text) - len, "\nskipped=");
        put_ranges(text, sizeof(text), &len, m->skipped, m->n_skipped);
        if (len + 1 >= sizeof(text))
                return -EOVERFLOW; /* cannot happen: see META_MAX */
        text[len++] = '\n';
        return bbt_atomic_replace(sp->dirfd, META_TMP_NAME, META_NAME, text, len);
}

int bbt_spool_save_meta(struct bbt_spool *sp)
{
        struct meta m;
        uint64_t gen, ack_gen;
        int r = 0;

        pthread_mutex_lock(&sp->meta_lock);
        pthread_mutex_lock(&sp->lock);
        m.acked = sp->acked;
        m.dropped = sp->dropped;
        m.unstored = sp->unstored;
        m.drop_cleared = sp->drop_cleared;
        m.appended = sp->written_seq;
        m.seq_ceiling = sp->seq_ceiling;
        m.boot = sp->agent_boot;
        m.n_unstored_seqs = sp->n_unstored_seqs;
        memcpy(m.unstored_seqs, sp->unstored_seqs, sizeof(m.unstored_seqs));
        m.n_skipped = sp->n_skipped;
        memcpy(m.skipped, sp->skipped, sizeof(m.skipped));
        gen = sp->meta_gen;
        ack_gen = sp->ack_gen;
        pthread_mutex_unlock(&sp->lock);
        if (gen != sp->meta_saved_gen || ack_gen != sp->meta_saved_ack_gen || m.appended != sp->meta_saved_appended) {
                r = write_meta(sp, &m);
                if (r == 0) {
                        sp->meta_saved_gen = gen;
                        sp->meta_saved_ack_gen = ack_gen;
                        sp->meta_saved_appended = m.appended;
                }
        }
        pthread_mutex_unlock(&sp->meta_lock);
        return r;
}

bool bbt_spool_meta_dirty(struct bbt_spool *sp)
{
        bool dirty;

        pthread_mutex_lock(&sp->meta_lock);
        pthread_mutex_lock(&sp->lock);
        dirty = sp->meta_gen != sp->meta_saved_gen || sp->ack_gen != sp->meta_saved_ack_gen ||
                sp->written_seq != sp->meta_saved_appended;
        pthread_mutex_unlock(&sp->lock);
        pthread_mutex_unlock(&sp->meta_lock);
        return dirty;
}

bool bbt_spool_meta_urgent(struct bbt_spool *sp)
{
        bool urgent;

        pthread_mutex_lock(&sp->meta_lock);
        pthread_mutex_lock(&sp->lock);
        /* The appended mark is the only witness of records not yet
         * acknowledged, should the disk lose the segment's tail. */
        urgent = sp->meta_gen != sp->meta_saved_gen ||
                 (sp->written_seq != sp->meta_saved_appended && sp->acked < sp->written_seq);
        pthread_mutex_unlock(&sp->lock);
        pthread_mutex_unlock(&sp->meta_lock);
        return urgent;
}

/* Parses "A-B,C-D" (inclusive ranges, ascending) into at most MAX of R. */
static const char *parse_ranges(char *value, struct bbt_seq_range *r, size_t max, size_t *ret_n)
{
        char *item, *save = NULL;

        *ret_n = 0;
        for (item = strtok_r(value, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                unsigned long long from, to;
                char *dash, *end;

                if (*ret_n == max)
                        return "too many ranges";
                dash = strchr(item, '-');
                if (!dash || item[0] < '0' || item[0] > '9' || dash[1] < '0' || dash[1] > '9')
                        return "expected FROM-TO";
                errno = 0;
                from = strtoull(item, &end, 10);
                if (errno || end != dash)
                        return "expected FROM-TO";
                to = strtoull(dash + 1, &end, 10);
                if (errno || *end != '\0' || to < from)
                        return "expected FROM-TO";
                r[*ret_n].from = from;
                r[*ret_n].to = to;
                (*ret_n)++;
        }
        return NULL;
}

/* Parses the meta file TEXT into *M; returns NULL or what is wrong. */
static const char *parse_meta(char *text, struct meta *m)
{
        static const char *const keys[] = { "acked", "dropped", "unstored", "drop_cleared", "appended",
                                            "seq_ceiling", "boot" };
        uint64_t *fields[] = { &m->acked, &m->dropped, &m->unstored, &m->drop_cleared, &m->appended,
                               &m->seq_ceiling, &m->boot };
        bool have_version = false, have_acked = false, have_dropped = false;
        char *line, *save = NULL;
        unsigned version = 0;

        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '='), *end;
                unsigned long long v;
                size_t k;

                if (!eq)
                        return "expected key=value";
                *eq = '\0';
                if (strcmp(line, "unstored_seqs") == 0 || strcmp(line, "skipped") == 0) {
                        bool unstored = line[0] == 'u';
                        const char *bad;

                        if (version < 2)
                                return "unknown key";
                        bad = unstored ? parse_ranges(eq + 1, m->unstored_seqs, BBT_SPOOL_UNSTORED_RANGES,
                                                      &m->n_unstored_seqs)
                                       : parse_ranges(eq + 1, m->skipped, BBT_SPOOL_SKIPPED_RANGES, &m->n_skipped);
                        if (bad)
                                return bad;
                        continue;
                }
                if (eq[1] < '0' || eq[1] > '9')
                        return "expected unsigned integer";
                errno = 0;
                v = strtoull(eq + 1, &end, 10);
                if (errno != 0 || *end != '\0')
                        return "expected unsigned integer";
                if (strcmp(line, "version") == 0) {
                        if (v != 1 && v != META_VERSION)
                                return "unsupported version";
                        version = (unsigned)v;
                        have_version = true;
                        continue;
                }
                if (!have_version)
                        return "version must come first";
                for (k = 0; k < BBT_ELEMENTSOF(keys); k++)
                        if (strcmp(line, keys[k]) == 0)
                                break;
                /* Version 1 has acked and dropped only. */
                if (k == BBT_ELEMENTSOF(keys) || (version == 1 && k > 1))
                        return "unknown key";
                *fields[k] = v;
                have_acked |= k == 0;
                have_dropped |= k == 1;
        }
        if (!have_version || !have_acked || !have_dropped)
                return "missing key";
        return NULL;
}

static void report(struct bbt_spool *sp, bbt_spool_report_cb cb, void *userdata, const char *name,
                   uint64_t off, const char *reason)
{
        char path[4096];

        if (!cb)
                return;
        snprintf(path, sizeof(path), "%s/%s", sp->dir, name);
        cb(userdata, path, off, reason);
}

/* Loads DIR/meta; a missing file means nothing acknowledged or dropped, a bad
 * one is reported and treated as missing (records are sent again: the
 * aggregator drops duplicates). */
static int load_meta(struct bbt_spool *sp, bbt_spool_report_cb cb, void *userdata)
{
        char text[META_MAX + 1], reason[96];
        struct meta m = { 0 };
        const char *bad;
        ssize_t n;
        int fd;

        fd = openat(sp->dirfd, META_NAME, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        n = pread_full(fd, text, sizeof(text) - 1, 0);
        close(fd);
        if (n < 0)
                return (int)n;
        text[n] = '\0';
        bad = (size_t)n == sizeof(text) - 1 ? "file too long" :
              strlen(text) != (size_t)n ? "NUL byte" : parse_meta(text, &m);
        if (bad) {
                snprintf(reason, sizeof(reason), "bad meta file (%s): ack watermark and drop count reset", bad);
                report(sp, cb, userdata, META_NAME, 0, reason);
                sp->witness.meta_bad = true;
                return 0;
        }
        sp->acked = m.acked;
        sp->dropped = m.dropped;
        sp->unstored = m.unstored;
        sp->drop_cleared = m.drop_cleared;
        sp->seq_ceiling = m.seq_ceiling;
        sp->n_unstored_seqs = m.n_unstored_seqs;
        memcpy(sp->unstored_seqs, m.unstored_seqs, sizeof(m.unstored_seqs));
        sp->witness.meta_acked = m.acked;
        sp->witness.meta_appended = m.appended;
        sp->witness.meta_seq_ceiling = m.seq_ceiling;
        sp->witness.meta_boot = m.boot;
        sp->agent_boot = m.boot;
        memcpy(sp->meta_skipped, m.skipped, sizeof(m.skipped));
        sp->witness.meta_skipped = sp->meta_skipped;
        sp->witness.n_meta_skipped = m.n_skipped;
        memcpy(sp->skipped, m.skipped, sizeof(m.skipped));
        sp->n_skipped = m.n_skipped;
        return 0;
}

static int ensure_seg_cap(struct bbt_spool *sp, size_t n)
{
        struct segment *segs;
        size_t cap;

        if (n <= sp->cap_segs)
                return 0;
        cap = sp->cap_segs ? sp->cap_segs * 2 : 16;
        while (cap < n)
                cap *= 2;
        segs = realloc(sp->segs, cap * sizeof(*segs));
        if (!segs)
                return -ENOMEM;
        sp->segs = segs;
        sp->cap_segs = cap;
        return 0;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* The seqs in the names of DIR's segment files, sorted, in *RET (malloc'd). */
static int list_segments(struct bbt_spool *sp, uint64_t **ret, size_t *ret_n)
{
        uint64_t *names = NULL, *grown;
        size_t n = 0, cap = 0;
        struct dirent *de;
        DIR *d;
        int fd, r = 0;

        fd = openat(sp->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d)) != NULL) {
                uint64_t seq;

                if (!parse_seg_name(de->d_name, &seq))
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        grown = realloc(names, cap * sizeof(*names));
                        if (!grown) {
                                r = -ENOMEM;
                                goto out;
                        }
                        names = grown;
                }
                names[n++] = seq;
        }
        if (errno != 0)
                r = -errno;
out:
        closedir(d);
        if (r < 0) {
                free(names);
                return r;
        }
        if (n > 0)
                qsort(names, n, sizeof(*names), cmp_u64);
        *ret = names;
        *ret_n = n;
        return 0;
}

/* Scans segment SEG (the newest if NEWEST): checks every record, reports
 * problems, cuts a torn tail of the newest segment, counts depth and places
 * the ack cursor. Sets *RET_REMOVE when the file held nothing and was deleted. */
static int scan_segment(struct bbt_spool *sp, struct segment *seg, bool newest,
                        bbt_spool_report_cb cb, void *userdata, bool *ret_remove)
{
        char name[SEG_NAME_LEN + 1];
        uint8_t hdr[SEG_HEADER_SIZE];
        struct bbt_spool_record rec;
        struct stat st;
        uint64_t off, size, min;
        bool header_ok;
        ssize_t n;
        int fd, r = 0;

        *ret_remove = false;
        seg_name(name, seg->name_seq);
        fd = openat(sp->dirfd, name, (newest ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        size = (uint64_t)st.st_size;
        seg->bytes = size;
        seg->count = 0;
        seg->newest_ts = 0;
        min = sp->have_last && sp->last_seq + 1 > seg->name_seq ? sp->last_seq + 1 : seg->name_seq;
        seg->min_seq = min;

        if (size < SEG_HEADER_SIZE) {
                /* Created but never written whole: it holds no record. */
                if (newest)
                        sp->witness.tail_cut = true;
                else {
                        report(sp, cb, userdata, name, 0, "bad file header");
                        sp->corrupt++;
                }
                if (unlinkat(sp->dirfd, name, 0) < 0 && errno != ENOENT) {
                        r = -errno;
                        goto out;
                }
                *ret_remove = true;
                goto out;
        }
        n = pread_full(fd, hdr, sizeof(hdr), 0);
        if (n < 0) {
                r = (int)n;
                goto out;
        }
        header_ok = (size_t)n == sizeof(hdr) && get_u32(hdr) == FILE_MAGIC;
        if (header_ok && get_u32(hdr + 4) != FILE_VERSION) {
                /* Another format (a newer agent's): leave it alone, never append to it. */
                report(sp, cb, userdata, name, 4, "unsupported format version");
                sp->corrupt++;
                seg->newest_ts = (int64_t)st.st_mtime * 1000;
                seg->bytes = size;
                if (newest)
                        sp->cur_writable = false;
                goto out;
        }
        if (!header_ok) {
                report(sp, cb, userdata, name, 0, "bad file header");
                sp->corrupt++;
                if (newest)
                        sp->cur_writable = false;
        }

        off = SEG_HEADER_SIZE;
        for (;;) {
                uint64_t at;
                uint32_t rsize;

                r = parse_at(fd, off, size, sp->work_buf, min, &rec, &rsize);
                if (r < 0)
                        goto out;
                if (r == PARSE_END)
                        break;
                if (r != PARSE_OK) {
                        int status = r;

                        r = resync(fd, off + 1, size, sp->work_buf, min, &rec, &at, &rsize);
                        if (r < 0)
                                goto out;
                        if (r == 0 && newest && header_ok) {
                                report(sp, cb, userdata, name, off, "torn record at tail, truncated");
                                sp->witness.tail_cut = true;
                                r = truncate_fd(fd, off);
                                if (r < 0)
                                        goto out;
                                size = off;
                                seg->bytes = size;
                                break;
                        }
                        report(sp, cb, userdata, name, off, parse_reasons[status]);
                        sp->corrupt++;
                        if (r == 0)
                                break;
                        off = at;
                }
                r = 0;
                if (seg->count == 0 || rec.ts_ms > seg->newest_ts)
                        seg->newest_ts = rec.ts_ms;
                if (seg->count == 0)
                        seg->first_seq = rec.seq;
                seg->last_seq = rec.seq;
                seg->count++;
                sp->have_last = true;
                sp->last_seq = rec.seq;
                /* The first unacknowledged record: where the ack cursor waits. */
                if (rec.seq > sp->acked && sp->ack.idx == SIZE_MAX) {
                        sp->ack.idx = (size_t)(seg - sp->segs);
                        sp->ack.off = off;
                        sp->ack.in_seg = seg->count - 1;
                }
                if (rec.seq > sp->acked)
                        sp->depth++;
                else {
                        sp->ack.prev_seq = rec.seq;
                        sp->ack.has_prev = true;
                }
                min = rec.seq + 1;
                off += rsize;
        }
        r = 0;
        if (newest && header_ok && seg->count == 0) {
                /* Only a header left after cutting a torn record: nothing to keep. */
                if (unlinkat(sp->dirfd, name, 0) < 0 && errno != ENOENT) {
                        r = -errno;
                        goto out;
                }
                *ret_remove = true;
        }
out:
        close(fd);
        return r;
}

/* Reads every segment in, oldest first. */
static int scan_all(struct bbt_spool *sp, bbt_spool_report_cb cb, void *userdata)
{
        uint64_t *names = NULL;
        size_t n = 0, i;
        int r;

        r = list_segments(sp, &names, &n);
        if (r < 0)
                return r;
        r = ensure_seg_cap(sp, n);
        if (r < 0)
                goto out;
        sp->ack.idx = SIZE_MAX;
        /* A segment is named by the seq it was created for: even emptied by
         * damage, its name says that seq was used. */
        if (n > 0)
                sp->witness.newest_name = names[n - 1];
        for (i = 0; i < n; i++) {
                struct segment *seg = &sp->segs[sp->n_segs];
                bool newest = i + 1 == n, removed;

                memset(seg, 0, sizeof(*seg));
                seg->name_seq = names[i];
                sp->cur_writable = true;
                r = scan_segment(sp, seg, newest, cb, userdata, &removed);
                if (r < 0)
                        goto out;
                if (removed) {
                        sp->cur_writable = false;
                        continue;
                }
                sp->total_bytes += seg->bytes;
                sp->n_segs++;
        }
        /* The newest surviving segment takes appends only if it was the newest file. */
        if (sp->n_segs == 0 || sp->segs[sp->n_segs - 1].name_seq != names[n - 1])
                sp->cur_writable = false;
        if (sp->ack.idx == SIZE_MAX) {
                /* Everything is acknowledged: wait at the end of the newest segment. */
                sp->ack.idx = sp->n_segs ? sp->n_segs - 1 : 0;
                sp->ack.off = sp->n_segs ? sp->segs[sp->n_segs - 1].bytes : SEG_HEADER_SIZE;
                sp->ack.in_seg = sp->n_segs ? sp->segs[sp->n_segs - 1].count : 0;
        }
out:
        free(names);
        return r;
}

void bbt_spool_options_init(struct bbt_spool_options *opts, const char *dir)
{
        memset(opts, 0, sizeof(*opts));
        opts->dir = dir;
        opts->max_bytes = BBT_SPOOL_MAX_BYTES_DEFAULT;
        opts->retain_acked_ms = BBT_SPOOL_RETAIN_ACKED_DEFAULT;
}

int bbt_spool_open(const struct bbt_spool_options *opts, bbt_spool_report_cb report_cb,
                   void *userdata, struct bbt_spool **ret)
{
        struct bbt_spool *sp;
        uint64_t max_bytes, segment_bytes;
        int r;

        if (!opts || !opts->dir || !opts->dir[0] || opts->retain_acked_ms < 0 || !ret)
                return -EINVAL;
        max_bytes = opts->max_bytes ? opts->max_bytes : BBT_SPOOL_MAX_BYTES_DEFAULT;
        segment_bytes = opts->segment_bytes ? opts->segment_bytes : max_bytes / 16;
        if (segment_bytes < BBT_SPOOL_SEGMENT_BYTES_MIN)
                segment_bytes = BBT_SPOOL_SEGMENT_BYTES_MIN;
        if (segment_bytes > max_bytes / 2)
                return -EINVAL;

        sp = calloc(1, sizeof(*sp));
        if (!sp)
                return -ENOMEM;
        sp->dirfd = sp->lockfd = sp->wfd = -1;
        sp->send_rd.fd = sp->ack_rd.fd = sp->range_rd.fd = -1;
        sp->max_bytes = max_bytes;
        sp->segment_bytes = segment_bytes;
        sp->retain_acked_ms = opts->retain_acked_ms;
        sp->clock_ms = opts->clock_ms ? opts->clock_ms : realtime_ms;
        sp->clock_userdata = opts->clock_userdata;
        r = -ENOMEM;
        if (pthread_mutex_init(&sp->lock, NULL) != 0)
                goto fail_free;
        if (pthread_mutex_init(&sp->meta_lock, NULL) != 0)
                goto fail_lock;
        sp->dir = strdup(opts->dir);
        sp->next_buf = malloc(REC_MAX + 1);
        sp->work_buf = malloc(SEG_HEADER_SIZE + REC_MAX + 1);
        if (!sp->dir || !sp->next_buf || !sp->work_buf)
                goto fail;

        if (mkdir(sp->dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                goto fail;
        }
        sp->dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sp->dirfd < 0) {
                r = -errno;
                goto fail;
        }
        sp->lockfd = openat(sp->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (sp->lockfd < 0) {
                r = -errno;
                goto fail;
        }
        if (flock(sp->lockfd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                goto fail;
        }
        r = load_meta(sp, report_cb, userdata);
        if (r < 0)
                goto fail;
        r = scan_all(sp, report_cb, userdata);
        if (r < 0)
                goto fail;
        /* A watermark past the records on disk (their tail was lost) would
         * hide the records appended next: never trust more than the disk. */
        if (sp->acked > sp->last_seq) {
                sp->acked = sp->last_seq;
                sp->meta_gen++;
        }
        sp->send = sp->ack;
        sp->written_seq = sp->synced_seq = sp->last_seq;
        sp->meta_saved_appended = sp->witness.meta_appended;
        sp->witness.last_seq = sp->last_seq;
        sp->witness.corrupt = sp->corrupt;
        if (sp->cur_writable) {
                char name[SEG_NAME_LEN + 1];

                seg_name(name, sp->segs[sp->n_segs - 1].name_seq);
                sp->wfd = openat(sp->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
                if (sp->wfd < 0) {
                        r = -errno;
                        goto fail;
                }
        }
        *ret = sp;
        return 0;

fail:
        close_fd(&sp->wfd);
        close_fd(&sp->lockfd);
        close_fd(&sp->dirfd);
        free(sp->work_buf);
        free(sp->next_buf);
        free(sp->dir);
        free(sp->segs);
        pthread_mutex_destroy(&sp->meta_lock);
fail_lock:
        pthread_mutex_destroy(&sp->lock);
fail_free:
        free(sp);
        return r;
}

/* Closes a retired descriptor after syncing it. */
static int retire_sync_close(int fd)
{
        int r = bbt_fsync_fd(fd, true);

        close(fd);
        return r;
}

/* Deletes the oldest segment (never the newest); its unacknowledged records
 * are counted as dropped. Returns how many were, or -errno. */
static int64_t delete_oldest(struct bbt_spool *sp)
{
        struct segment *seg = &sp->segs[0];
        char name[SEG_NAME_LEN + 1];
        uint64_t unacked = 0;
        struct cursor *curs[] = { &sp->send, &sp->ack };

        if (sp->n_segs < 2)
                return -EINVAL;
        seg_name(name, seg->name_seq);
        if (unlinkat(sp->dirfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        if (sp->ack.idx == 0 && seg->count > sp->ack.in_seg)
                unacked = seg->count - sp->ack.in_seg;
        sp->depth = sp->depth > unacked ? sp->depth - unacked : 0;
        sp->total_bytes -= seg->bytes;
        for (size_t i = 0; i < BBT_ELEMENTSOF(curs); i++) {
                if (curs[i]->idx == 0) {
                        curs[i]->off = SEG_HEADER_SIZE;
                        curs[i]->in_seg = 0;
                } else {
                        curs[i]->idx--;
                }
        }
        sp->range_hint_valid = false;
        memmove(&sp->segs[0], &sp->segs[1], (sp->n_segs - 1) * sizeof(*seg));
        sp->n_segs--;
        if (unacked > 0) {
                pthread_mutex_lock(&sp->lock);
                sp->dropped += unacked;
                sp->meta_gen++;
                pthread_mutex_unlock(&sp->lock);
        }
        return (int64_t)unacked;
}

/* Serialises a record into BUF; returns its size. */
static size_t build_record(uint8_t *buf, uint64_t seq, int64_t ts_ms, uint8_t flags,
                           const char *topic, size_t tlen, const void *payload, size_t len)
{
        uint8_t *body = buf + REC_HEADER_SIZE;
        uint32_t body_len = (uint32_t)(BODY_FIXED + tlen + len);

        put_u64(body, seq);
        put_u64(body + 8, (uint64_t)ts_ms);
        body[16] = flags;
        body[17] = 0;
        put_u16(body + 18, (uint16_t)tlen);
        memcpy(body + BODY_FIXED, topic, tlen);
        if (len > 0)
                memcpy(body + BODY_FIXED + tlen, payload, len);
        put_u32(buf, REC_MAGIC);
        put_u32(buf + 4, body_len);
        put_u32(buf + 8, crc_of(body, body_len));
        return REC_HEADER_SIZE + body_len;
}

/* Starts a new segment named SEQ holding the record already built at
 * work_buf + SEG_HEADER_SIZE (SIZE bytes). On failure no file is left. */
static int start_segment(struct bbt_spool *sp, uint64_t seq, int64_t ts_ms, size_t size)
{
        char name[SEG_NAME_LEN + 1];
        struct segment *seg;
        int fd, r, stale = -1;

        r = ensure_seg_cap(sp, sp->n_segs + 1);
        if (r < 0)
                return r;
        seg_name(name, seq);
        /* O_TRUNC: a file by this name can only be a leftover holding nothing we index. */
        fd = openat(sp->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        put_u32(sp->work_buf, FILE_MAGIC);
        put_u32(sp->work_buf + 4, FILE_VERSION);
        r = bbt_write_full(fd, sp->work_buf, SEG_HEADER_SIZE + size);
        if (r < 0) {
                close(fd);
                unlinkat(sp->dirfd, name, 0);
                return r;
        }

        pthread_mutex_lock(&sp->lock);
        if (sp->wfd >= 0) {
                if (sp->n_retired == RETIRED_MAX) {
                        stale = sp->retired[0];
                        memmove(&sp->retired[0], &sp->retired[1], (RETIRED_MAX - 1) * sizeof(int));
                        sp->n_retired--;
                }
                sp->retired[sp->n_retired++] = sp->wfd;
        }
        sp->wfd = fd;
        sp->dir_dirty = true;
        sp->written_seq = seq;
        pthread_mutex_unlock(&sp->lock);
        /* More rotations than syncs: make the oldest closed segment durable here. */
        if (stale >= 0)
                retire_sync_close(stale);

        seg = &sp->segs[sp->n_segs++];
        memset(seg, 0, sizeof(*seg));
        seg->name_seq = seg->min_seq = seg->first_seq = seg->last_seq = seq;
        seg->count = 1;
        seg->bytes = SEG_HEADER_SIZE + size;
        seg->newest_ts = ts_ms;
        sp->cur_writable = true;
        sp->need_truncate = false;
        return 0;
}

void bbt_spool_note_unstored(struct bbt_spool *sp, uint64_t seq)
{
        struct bbt_seq_range *last;

        pthread_mutex_lock(&sp->lock);
        sp->unstored++;
        sp->meta_gen++;
        if (seq > 0) {
                last = sp->n_unstored_seqs ? &sp->unstored_seqs[sp->n_unstored_seqs - 1] : NULL;
                if (last && seq >= last->from && seq <= last->to + 1) {
                        if (seq > last->to)
                                last->to = seq;
                } else {
                        /* The newest ranges matter: the oldest one goes. */
                        if (sp->n_unstored_seqs == BBT_SPOOL_UNSTORED_RANGES) {
                                memmove(&sp->unstored_seqs[0], &sp->unstored_seqs[1],
                                        (BBT_SPOOL_UNSTORED_RANGES - 1) * sizeof(sp->unstored_seqs[0]));
                                sp->n_unstored_seqs--;
                        }
                        sp->unstored_seqs[sp->n_unstored_seqs].from = seq;
                        sp->unstored_seqs[sp->n_unstored_seqs].to = seq;
                        sp->n_unstored_seqs++;
                }
        }
        pthread_mutex_unlock(&sp->lock);
}

static int append_record(struct bbt_spool *sp, uint64_t seq, int64_t ts_ms, uint8_t flags, const char *topic,
                         size_t tlen, const void *payload, size_t len, uint64_t *ret_dropped);

int bbt_spool_append(struct bbt_spool *sp, uint64_t seq, int64_t ts_ms, uint8_t flags,
                     const char *topic, const void *payload, size_t len, uint64_t *ret_dropped)
{
        size_t tlen;
        int r;

        if (ret_dropped)
                *ret_dropped = 0;
        if (!sp || !topic || (!payload && len > 0) || seq == 0)
                return -EINVAL;
        tlen = strnlen(topic, BBT_SPOOL_TOPIC_MAX + 1);
        if (tlen == 0 || tlen > BBT_SPOOL_TOPIC_MAX || len > BBT_SPOOL_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (sp->have_last && seq <= sp->last_seq)
                return -EINVAL;
        r = append_record(sp, seq, ts_ms, flags, topic, tlen, payload, len, ret_dropped);
        if (r < 0)
                bbt_spool_note_unstored(sp, seq);
        return r;
}

/* bbt_spool_append() once the arguments are checked. */
static int append_record(struct bbt_spool *sp, uint64_t seq, int64_t ts_ms, uint8_t flags, const char *topic,
                         size_t tlen, const void *payload, size_t len, uint64_t *ret_dropped)
{
        uint64_t dropped = 0, need;
        struct segment *cur;
        size_t size;
        bool rotate;
        int r;

        cur = sp->n_segs ? &sp->segs[sp->n_segs - 1] : NULL;
        if (cur && sp->cur_writable && sp->need_truncate) {
                r = truncate_fd(sp->wfd, cur->bytes);
                if (r < 0)
                        return r;
                sp->need_truncate = false;
        }
        size = REC_HEADER_SIZE + BODY_FIXED + tlen + len;
        rotate = !cur || !sp->cur_writable || (cur->count > 0 && cur->bytes + size > sp->segment_bytes);
        need = size + (rotate ? SEG_HEADER_SIZE : 0);
        while (sp->total_bytes + need > sp->max_bytes && sp->n_segs > 1) {
                int64_t d = delete_oldest(sp);

                if (d < 0)
                        break; /* cannot delete: go over the bound rather than lose this record */
                dropped += (uint64_t)d;
        }
        if (dropped > 0)
                bbt_spool_save_meta(sp); /* failure: stays dirty, the agent's timer retries */
        cur = sp->n_segs ? &sp->segs[sp->n_segs - 1] : NULL; /* deleting moved the array */

        build_record(sp->work_buf + SEG_HEADER_SIZE, seq, ts_ms, flags, topic, tlen, payload, len);
        if (rotate) {
                r = start_segment(sp, seq, ts_ms, size);
                if (r < 0)
                        return r;
        } else {
                r = bbt_write_full(sp->wfd, sp->work_buf + SEG_HEADER_SIZE, size);
                if (r < 0) {
                        /* Never leave half a record for the next append to follow. */
                        if (truncate_fd(sp->wfd, cur->bytes) < 0)
                                sp->need_truncate = true;
                        return r;
                }
                pthread_mutex_lock(&sp->lock);
                sp->written_seq = seq;
                pthread_mutex_unlock(&sp->lock);
                if (cur->count == 0 || ts_ms > cur->newest_ts)
                        cur->newest_ts = ts_ms;
                if (cur->count == 0)
                        cur->first_seq = seq;
                cur->last_seq = seq;
                cur->count++;
                cur->bytes += size;
        }
        sp->total_bytes += need;
        sp->have_last = true;
        sp->last_seq = seq;
        sp->depth++;
        if (ret_dropped)
                *ret_dropped = dropped;
        return 0;
}

int bbt_spool_sync(struct bbt_spool *sp, uint64_t *ret_synced)
{
        int fds[RETIRED_MAX + 1], dirfd = -1, r = 0;
        size_t n = 0, i;
        uint64_t upto, synced;

        pthread_mutex_lock(&sp->lock);
        for (i = 0; i < sp->n_retired; i++)
                fds[n++] = sp->retired[i];
        sp->n_retired = 0;
        if (sp->wfd >= 0) {
                int fd = fcntl(sp->wfd, F_DUPFD_CLOEXEC, 0);

                if (fd < 0)
                        r = -errno;
                else
                        fds[n++] = fd;
        }
        if (sp->dir_dirty && r == 0) {
                dirfd = fcntl(sp->dirfd, F_DUPFD_CLOEXEC, 0);
                if (dirfd < 0)
                        r = -errno;
                else
                        sp->dir_dirty = false;
        }
        upto = sp->written_seq;
        pthread_mutex_unlock(&sp->lock);

        for (i = 0; i < n; i++) {
                int q = retire_sync_close(fds[i]);

                if (q < 0 && r == 0)
                        r = q;
        }
        if (dirfd >= 0) {
                int q = bbt_fsync_fd(dirfd, false);

                close(dirfd);
                if (q < 0) {
                        pthread_mutex_lock(&sp->lock);
                        sp->dir_dirty = true;
                        pthread_mutex_unlock(&sp->lock);
                        if (r == 0)
                                r = q;
                }
        }
        if (r < 0)
                return r;
        pthread_mutex_lock(&sp->lock);
        if (upto > sp->synced_seq)
                sp->synced_seq = upto;
        synced = sp->synced_seq;
        pthread_mutex_unlock(&sp->lock);
        if (ret_synced)
                *ret_synced = synced;
        return 0;
}

int bbt_spool_next(struct bbt_spool *sp, struct bbt_spool_record *ret)
{
        struct bbt_spool_record rec;
        uint32_t size;
        int r;

        r = cursor_peek(sp, &sp->send, &sp->send_rd, sp->next_buf, &rec, &size);
        if (r < 0)
                return r;
        cursor_pass(&sp->send, &rec, size);
        *ret = rec;
        return 0;
}

void bbt_spool_rewind(struct bbt_spool *sp)
{
        sp->send = sp->ack;
}

int bbt_spool_ack_through(struct bbt_spool *sp, uint64_t seq)
{
        struct bbt_spool_record rec;
        uint32_t size;
        int r;

        if (!sp->have_last)
                return 0;
        if (seq > sp->last_seq)
                seq = sp->last_seq;
        if (seq <= sp->acked)
                return 0;
        while (sp->ack.idx < sp->n_segs) {
                struct segment *seg = &sp->segs[sp->ack.idx];

                if (seg->count > sp->ack.in_seg && seg->last_seq <= seq) {
                        /* The rest of this segment is covered: no need to read it. */
                        uint64_t left = seg->count - sp->ack.in_seg;

                        sp->depth = sp->depth > left ? sp->depth - left : 0;
                        sp->ack.in_seg = seg->count;
                        sp->ack.prev_seq = seg->last_seq;
                        sp->ack.has_prev = true;
                        sp->ack.off = seg->bytes;
                        if (!cursor_next_segment(sp, &sp->ack))
                                break;
                        continue;
                }
                r = cursor_peek(sp, &sp->ack, &sp->ack_rd, sp->work_buf, &rec, &size);
                if (r == -ENOENT)
                        break;
                if (r < 0)
                        return r;
                if (rec.seq > seq)
                        break;
                cursor_pass(&sp->ack, &rec, size);
                if (sp->depth > 0)
                        sp->depth--;
        }
        pthread_mutex_lock(&sp->lock);
        sp->acked = seq;
        sp->ack_gen++;
        pthread_mutex_unlock(&sp->lock);
        if (cursor_before(&sp->send, &sp->ack))
                sp->send = sp->ack;
        return 0;
}

int bbt_spool_expire(struct bbt_spool *sp)
{
        int64_t now = sp->clock_ms(sp->clock_userdata);
        int deleted = 0;

        while (sp->n_segs > 1) {
                const struct segment *seg = &sp->segs[0];
                bool acked = seg->count == 0 || seg->last_seq <= sp->acked;
                int64_t d;

                /* now - newest_ts >= retain, without overflow (the difference fits a u64) */
                if (!acked || seg->newest_ts > now ||
                    (uint64_t)now - (uint64_t)seg->newest_ts < (uint64_t)sp->retain_acked_ms)
                        break;
                d = delete_oldest(sp);
                if (d < 0)
                        return deleted > 0 ? deleted : (int)d;
                deleted++;
        }
        return deleted;
}

/* Index of the segment to start reading FROM at: the last non-empty one
 * whose first seq is <= FROM, else the oldest. */
static size_t find_segment(const struct bbt_spool *sp, uint64_t from)
{
        size_t i, found = 0;

        for (i = 0; i < sp->n_segs; i++) {
                if (sp->segs[i].count == 0)
                        continue;
                if (sp->segs[i].first_seq > from)
                        break;
                found = i;
        }
        return found;
}

static uint64_t oldest_seq(const struct bbt_spool *sp)
{
        for (size_t i = 0; i < sp->n_segs; i++)
                if (sp->segs[i].count > 0)
                        return sp->segs[i].first_seq;
        return 0;
}

int bbt_spool_read_range(struct bbt_spool *sp, uint64_t from, uint64_t to, size_t max_records,
                         bbt_spool_range_cb cb, void *userdata, struct bbt_spool_range *ret)
{
        struct bbt_spool_range res = { 0 };
        struct bbt_spool_record rec;
        struct cursor cur;
        uint32_t size;
        int r;

        if (!sp || !cb || !ret || from > to || max_records == 0)
                return -EINVAL;
        res.first_available = oldest_seq(sp);
        res.last_seq = bbt_spool_last_seq(sp);
        res.next = to == UINT64_MAX ? to : to + 1;
        res.done = true;
        if (!sp->have_last || from > sp->last_seq || res.first_available == 0) {
                *ret = res;
                return 0;
        }
        if (sp->range_hint_valid && sp->range_hint_seq == from) {
                cur = sp->range_hint;
        } else {
                memset(&cur, 0, sizeof(cur));
                cur.idx = find_segment(sp, from);
                cur.off = SEG_HEADER_SIZE;
        }
        sp->range_hint_valid = false;
        for (;;) {
                r = cursor_peek(sp, &cur, &sp->range_rd, sp->work_buf, &rec, &size);
                if (r == -ENOENT || (r == 0 && rec.seq > to))
                        break;
                if (r < 0)
                        return r;
                if (rec.seq < from) {
                        cursor_pass(&cur, &rec, size);
                        continue;
                }
                if (res.delivered < max_records) {
                        r = cb(userdata, &rec);
                        if (r < 0)
                                return r;
                }
                if (res.delivered == max_records || r > 0) {
                        res.next = rec.seq;
                        res.done = false;
                        sp->range_hint = cur;
                        sp->range_hint_seq = rec.seq;
                        sp->range_hint_valid = true;
                        break;
                }
                cursor_pass(&cur, &rec, size);
                res.delivered++;
        }
        *ret = res;
        return 0;
}

uint64_t bbt_spool_last_seq(const struct bbt_spool *sp)
{
        return sp->have_last ? sp->last_seq : 0;
}

void bbt_spool_stats(const struct bbt_spool *sp, struct bbt_spool_stats *ret)
{
        struct bbt_spool_stats s = { 0 };

        s.depth = sp->depth;
        s.dropped = sp->dropped;
        s.corrupt = sp->corrupt;
        s.bytes = sp->total_bytes;
        s.segments = sp->n_segs;
        s.oldest_seq = oldest_seq(sp);
        s.last_seq = bbt_spool_last_seq(sp);
        s.acked = sp->acked;
        s.unstored = sp->unstored;
        s.drop_cleared = sp->drop_cleared;
        *ret = s;
}

void bbt_spool_witness(const struct bbt_spool *sp, struct bbt_spool_witness *ret)
{
        *ret = sp->witness;
}

/* Sets *FIELD (a counter saved in meta) to VALUE, marking meta changed. */
static void set_meta_u64(struct bbt_spool *sp, uint64_t *field, uint64_t value)
{
        pthread_mutex_lock(&sp->lock);
        if (*field != value) {
                *field = value;
                sp->meta_gen++;
        }
        pthread_mutex_unlock(&sp->lock);
}

void bbt_spool_set_seq_ceiling(struct bbt_spool *sp, uint64_t ceiling)
{
        set_meta_u64(sp, &sp->seq_ceiling, ceiling);
}

void bbt_spool_set_boot(struct bbt_spool *sp, uint64_t boot)
{
        set_meta_u64(sp, &sp->agent_boot, boot);
}

void bbt_spool_set_skipped(struct bbt_spool *sp, const struct bbt_seq_range *ranges, size_t n)
{
        if (n > BBT_SPOOL_SKIPPED_RANGES) {
                ranges += n - BBT_SPOOL_SKIPPED_RANGES; /* the newest */
                n = BBT_SPOOL_SKIPPED_RANGES;
        }
        pthread_mutex_lock(&sp->lock);
        if (n != sp->n_skipped || memcmp(sp->skipped, ranges, n * sizeof(*ranges)) != 0) {
                memcpy(sp->skipped, ranges, n * sizeof(*ranges));
                sp->n_skipped = n;
                sp->meta_gen++;
        }
        pthread_mutex_unlock(&sp->lock);
}

void bbt_spool_clear_drops(struct bbt_spool *sp)
{
        set_meta_u64(sp, &sp->drop_cleared, sp->dropped + sp->unstored); /* both written on this thread */
}

size_t bbt_spool_unstored_seqs(const struct bbt_spool *sp, struct bbt_seq_range *ret, size_t max)
{
        size_t n = sp->n_unstored_seqs < max ? sp->n_unstored_seqs : max;

        memcpy(ret, sp->unstored_seqs, n * sizeof(*ret));
        return n;
}

int bbt_spool_close(struct bbt_spool *sp)
{
        int r, q;

        if (!sp)
                return 0;
        r = bbt_spool_sync(sp, NULL);
        q = bbt_spool_save_meta(sp);
        if (r == 0)
                r = q;
        for (size_t i = 0; i < sp->n_retired; i++)
                close(sp->retired[i]);
        close_fd(&sp->wfd);
        close_fd(&sp->send_rd.fd);
        close_fd(&sp->ack_rd.fd);
        close_fd(&sp->range_rd.fd);
        close_fd(&sp->lockfd);
        close_fd(&sp->dirfd);
        pthread_mutex_destroy(&sp->meta_lock);
        pthread_mutex_destroy(&sp->lock);
        free(sp->work_buf);
        free(sp->next_buf);
        free(sp->segs);
        free(sp->dir);
        free(sp);
        return r;
}
