/* The agent's persistent counters: seqs reserved in blocks ahead of use, the boot counter, a clean-stop marker. */

/*
 * DIR/state is a small text file, replaced atomically (state.tmp, fsync,
 * rename, fsync of DIR) at every change:
 *
 *     # bbt-agent counters: written by bbt-agent, see docs/spool.md
 *     version=2
 *     clean=0            1 once bbt_counters_close() has run
 *     seq_floor=1043     clean=1: exactly the next seq; clean=0: every seq
 *                        below it was used or skipped (this run's first seq)
 *     seq_ceiling=3043   every seq ever handed out is below it
 *     boot=17            the session counter
 *     boot_id=...        the kernel's boot id when the file was written
 *     skipped=5-999,...  seq ranges jumped over at a start, never used
 *                        (the newest BBT_COUNTERS_SKIPPED_MAX; version 2)
 *
 * The ceiling is raised (and written) before a seq at or above the ceiling
 * of the write before the last is handed out, so after any crash -- even one
 * that undoes the last write -- every seq at or above the file's ceiling is
 * unused. Version 1 files (no skipped=) are read and rewritten as version 2.
 */
#include "counters.h"
#include "bbt/base.h"

#include "bbt/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_NAME "state"
#define STATE_TMP_NAME "state.tmp"
#define LOCK_NAME "state.lock"
#define FILE_MAX 16384 /* 256 skipped ranges of two 16-digit numbers, and the rest */
#define BOOT_ID_MAX 64

struct bbt_counters {
        char *path; /* DIR/state, for messages */
        int dirfd, lockfd;
        uint64_t block;
        char boot_id[BOOT_ID_MAX + 1]; /* this kernel boot's id ("" if unknown) */

        uint64_t next;    /* the next seq to hand out */
        uint64_t floor;   /* as written in the file */
        uint64_t ceiling; /* as written in the file (the last write) */
        uint64_t safe;    /* the lower ceiling of the last two writes: seqs below it may go out */
        uint32_t boot;
        struct bbt_seq_range skipped[BBT_COUNTERS_SKIPPED_MAX];
        size_t n_skipped;
        struct bbt_counters_start_info info;
};

/* What the state file holds. */
struct state_file {
        bool clean;
        uint64_t floor, ceiling;
        uint32_t boot;
        char boot_id[BOOT_ID_MAX + 1];
        struct bbt_seq_range skipped[BBT_COUNTERS_SKIPPED_MAX];
        size_t n_skipped;
};

/* Reads FD into BUF as a C string: returns its length, -EFBIG if it does not
 * fit in SIZE - 1 bytes (BUF then holds the start), or -errno. */
static ssize_t read_all(int fd, char *buf, size_t size)
{
        size_t done = 0;
        char extra;

        for (;;) {
                ssize_t n = done < size - 1 ? read(fd, buf + done, size - 1 - done) : read(fd, &extra, 1);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        buf[done] = '\0';
                        return -errno;
                }
                if (n == 0)
                        break;
                if (done == size - 1) {
                        buf[done] = '\0';
                        return -EFBIG;
                }
                done += (size_t)n;
        }
        buf[done] = '\0';
        return (ssize_t)done;
}

static bool boot_id_valid(const char *s)
{
        size_t n = strlen(s);

        if (n > BOOT_ID_MAX)
                return false;
        return strspn(s, "0123456789abcdef-") == n;
}

/* This kernel boot's id from ROOT/proc/sys/kernel/random/boot_id, or "" if
 * it cannot be read (then every unclean stop counts as a reboot: safe). */
static void read_boot_id(const char *root, char out[BOOT_ID_MAX + 1])
{
        char path[4096], buf[BOOT_ID_MAX + 2];
        ssize_t n;
        int fd;

        out[0] = '\0';
        if (snprintf(path, sizeof(path), "%s/proc/sys/kernel/random/boot_id", root) >= (int)sizeof(path))
                return;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read_all(fd, buf, sizeof(buf));
        close(fd);
        if (n <= 0)
                return;
        buf[strcspn(buf, "\n")] = '\0';
        if (boot_id_valid(buf))
                memcpy(out, buf, strlen(buf) + 1);
}

/* Parses an unsigned decimal (digits only): 0, -EINVAL if it is not one,
 * -ERANGE if it is above MAX. */
static int parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
        unsigned long long v;
        char *end;

        if (s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* Parses the value of KEY at PATH:LINENO, setting ERR if it is bad. */
static int parse_key_uint(const char *path, unsigned lineno, const char *key, const char *value,
                          uint64_t max, uint64_t *ret, char *err, size_t err_size)
{
        int r = parse_uint(value, max, ret);

        if (r == -EINVAL)
                bbt_set_err(err, err_size, "%s:%u: %s: expected unsigned integer", path, lineno, key);
        else if (r == -ERANGE)
                bbt_set_err(err, err_size, "%s:%u: %s: out of range (at most %" PRIu64 ")", path, lineno, key, max);
        return r < 0 ? -EBADMSG : 0;
}

enum key { K_VERSION, K_CLEAN, K_FLOOR, K_CEILING, K_BOOT, K_BOOT_ID, K_SKIPPED, K_COUNT };
static const char *const key_names[K_COUNT] = {
        [K_VERSION] = "version", [K_CLEAN] = "clean", [K_FLOOR] = "seq_floor",
        [K_CEILING] = "seq_ceiling", [K_BOOT] = "boot", [K_BOOT_ID] = "boot_id",
        [K_SKIPPED] = "skipped",
};

/* Parses the skipped= value "A-B,C-D" (ascending, inclusive) into F. */
static int parse_skipped(const char *path, unsigned lineno, char *value, struct state_file *f, char *err,
                         size_t err_size)
{
        char *item, *save = NULL;

        for (item = strtok_r(value, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                uint64_t from, to;
                char *dash = strchr(item, '-');

                if (f->n_skipped == BBT_COUNTERS_SKIPPED_MAX) {
                        bbt_set_err(err, err_size, "%s:%u: skipped: more than %d ranges", path, lineno,
                                BBT_COUNTERS_SKIPPED_MAX);
                        return -EBADMSG;
                }
                if (dash)
                        *dash = '\0';
                if (!dash || parse_uint(item, BBT_COUNTERS_SEQ_MAX, &from) < 0 ||
                    parse_uint(dash + 1, BBT_COUNTERS_SEQ_MAX, &to) < 0 || to < from || from == 0 ||
                    (f->n_skipped && from <= f->skipped[f->n_skipped - 1].to)) {
                        bbt_set_err(err, err_size, "%s:%u: skipped: expected ascending FROM-TO ranges", path, lineno);
                        return -EBADMSG;
                }
                f->skipped[f->n_skipped].from = from;
                f->skipped[f->n_skipped].to = to;
                f->n_skipped++;
        }
        return 0;
}

/* Parses the state file TEXT (named PATH in messages) into *RET; returns 0 or
 * -EBADMSG with ERR set. */
static int parse_state(const char *path, char *text, struct state_file *ret, char *err, size_t err_size)
{
        bool seen[K_COUNT] = { false };
        struct state_file f = { 0 };
        unsigned lineno = 0, version = 0;
        char *line = text, *nl;
        int k;

        for (; *line; line = nl ? nl + 1 : line + strlen(line)) {
                char *eq, *value;
                uint64_t v;

                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                lineno++;
                if (line[0] == '\0' || line[0] == '#')
                        continue;
                eq = strchr(line, '=');
                if (!eq) {
                        bbt_set_err(err, err_size, "%s:%u: expected key=value", path, lineno);
                        return -EBADMSG;
                }
                *eq = '\0';
                value = eq + 1;
                for (k = 0; k < K_COUNT; k++)
                        if (strcmp(line, key_names[k]) == 0)
                                break;
                if (k == K_COUNT) {
                        bbt_set_err(err, err_size, "%s:%u: %.64s: unknown key", path, lineno, line);
                        return -EBADMSG;
                }
                if (seen[k]) {
                        bbt_set_err(err, err_size, "%s:%u: %s: duplicate key", path, lineno, line);
                        return -EBADMSG;
                }
                seen[k] = true;
                switch (k) {
                case K_VERSION:
                        if (parse_key_uint(path, lineno, line, value, UINT64_MAX, &v, err, err_size) < 0)
                                return -EBADMSG;
                        if (v != 1 && v != 2) {
                                bbt_set_err(err, err_size,
                                        "%s:%u: version: unsupported version %" PRIu64 " (expected 1 or 2)", path,
                                        lineno, v);
                                return -EBADMSG;
                        }
                        version = (unsigned)v;
                        break;
                case K_CLEAN:
                        if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0) {
                                bbt_set_err(err, err_size, "%s:%u: clean: expected 0 or 1", path, lineno);
                                return -EBADMSG;
                        }
                        f.clean = value[0] == '1';
                        break;
                case K_FLOOR:
                case K_CEILING:
                        if (parse_key_uint(path, lineno, line, value, BBT_COUNTERS_SEQ_MAX + 1, &v, err,
                                           err_size) < 0)
                                return -EBADMSG;
                        if (k == K_FLOOR)
                                f.floor = v;
                        else
                                f.ceiling = v;
                        break;
                case K_BOOT:
                        if (parse_key_uint(path, lineno, line, value, UINT32_MAX, &v, err, err_size) < 0)
                                return -EBADMSG;
                        f.boot = (uint32_t)v;
                        break;
                case K_BOOT_ID:
                        if (!boot_id_valid(value)) {
                                bbt_set_err(err, err_size, "%s:%u: boot_id: expected at most 64 of [0-9a-f-]",
                                        path, lineno);
                                return -EBADMSG;
                        }
                        memcpy(f.boot_id, value, strlen(value) + 1);
                        break;
                case K_SKIPPED:
                        if (version < 2) {
                                bbt_set_err(err, err_size, "%s:%u: skipped: unknown key in a version 1 file", path,
                                        lineno);
                                return -EBADMSG;
                        }
                        if (parse_skipped(path, lineno, value, &f, err, err_size) < 0)
                                return -EBADMSG;
                        break;
                }
        }
        for (k = 0; k < K_COUNT; k++) {
                if (!seen[k] && k != K_SKIPPED) {
                        bbt_set_err(err, err_size, "%s: missing key %s", path, key_names[k]);
                        return -EBADMSG;
                }
        }
        if (f.floor > f.ceiling) {
                bbt_set_err(err, err_size, "%s: seq_floor %" PRIu64 " is above seq_ceiling %" PRIu64, path,
                        f.floor, f.ceiling);
                return -EBADMSG;
        }
        *ret = f;
        return 0;
}

/* The boot counter of a malformed file, if a "boot=N" line still reads. */
static uint32_t salvage_boot(const char *text)
{
        const char *p = text;
        uint64_t v;

        while ((p = strstr(p, "boot=")) != NULL) {
                char num[16];
                size_t n;

                if (p == text || p[-1] == '\n') {
                        n = strcspn(p + 5, "\n");
                        if (n < sizeof(num)) {
                                memcpy(num, p + 5, n);
                                num[n] = '\0';
                                if (parse_uint(num, UINT32_MAX, &v) == 0)
                                        return (uint32_t)v;
                        }
                }
                p += 5;
        }
        return 0;
}

/* Writes the file with these values (and ST's skipped ranges) atomically;
 * the caller updates ST only on success. */
static int persist(struct bbt_counters *st, bool clean, uint64_t floor, uint64_t ceiling, uint32_t boot)
{
        char text[FILE_MAX];
        size_t len;

        len = (size_t)snprintf(text, sizeof(text),
                               "# bbt-agent counters: written by bbt-agent, see docs/spool.md\n"
                               "version=2\nclean=%d\nseq_floor=%" PRIu64 "\nseq_ceiling=%" PRIu64
                               "\nboot=%" PRIu32 "\nboot_id=%s\nskipped=",
                               clean ? 1 : 0, floor, ceiling, boot, st->boot_id);
        for (size_t i = 0; i < st->n_skipped && len < sizeof(text); i++)
                len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%" PRIu64 "-%" PRIu64, i ? "," : "",
                                        st->skipped[i].from, st->skipped[i].to);
        if (len + 1 >= sizeof(text))
                return -EOVERFLOW; /* cannot happen: see FILE_MAX */
        text[len++] = '\n';
        return bbt_atomic_replace(st->dirfd, STATE_TMP_NAME, STATE_NAME, text, len);
}

/* Remembers FROM..TO as never used (the oldest range goes when full). */
static void add_skipped(struct bbt_counters *st, uint64_t from, uint64_t to)
{
        if (st->n_skipped == BBT_COUNTERS_SKIPPED_MAX) {
                memmove(&st->skipped[0], &st->skipped[1], (BBT_COUNTERS_SKIPPED_MAX - 1) * sizeof(st->skipped[0]));
                st->n_skipped--;
        }
        st->skipped[st->n_skipped].from = from;
        st->skipped[st->n_skipped].to = to;
        st->n_skipped++;
}

/* ST's skipped ranges and the N of R (both ascending, each valid) as one
 * ascending list of the newest BBT_COUNTERS_SKIPPED_MAX: whichever file lost
 * its latest write, the other still knows. Overlapping ranges (the same
 * range in both) are joined. */
static void merge_skipped(struct bbt_counters *st, const struct bbt_seq_range *r, size_t n)
{
        struct bbt_seq_range all[2 * BBT_COUNTERS_SKIPPED_MAX];
        size_t a = 0, b = 0, k = 0, n_old = st->n_skipped;

        if (n > BBT_COUNTERS_SKIPPED_MAX)
                n = BBT_COUNTERS_SKIPPED_MAX;
        while (a < n_old || b < n) {
                const struct bbt_seq_range *x =
                        b == n || (a < n_old && st->skipped[a].from <= r[b].from) ? &st->skipped[a++] : &r[b++];

                if (x->from == 0 || x->to < x->from)
                        continue;
                if (k && x->from <= all[k - 1].to) {
                        if (x->to > all[k - 1].to)
                                all[k - 1].to = x->to;
                } else {
                        all[k++] = *x;
                }
        }
        st->n_skipped = 0;
        for (size_t i = k > BBT_COUNTERS_SKIPPED_MAX ? k - BBT_COUNTERS_SKIPPED_MAX : 0; i < k; i++)
                st->skipped[st->n_skipped++] = all[i];
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
        return a > b ? a : b;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void bbt_counters_options_init(struct bbt_counters_options *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->dir = BBT_COUNTERS_DIR_DEFAULT;
        opts->root = "/";
        opts->block = BBT_COUNTERS_BLOCK_DEFAULT;
}

/* Reads DIR/state into TEXT: 0, -ENOENT, or another -errno with ERR set. */
static int read_state_file(struct bbt_counters *st, char *text, size_t size, char *err, size_t err_size)
{
        ssize_t n;
        int fd;

        fd = openat(st->dirfd, STATE_NAME, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                bbt_set_err(err, err_size, "%s: %s", st->path, strerror(errno));
                return -errno;
        }
        n = read_all(fd, text, size);
        close(fd);
        if (n == -EFBIG) {
                bbt_set_err(err, err_size, "%s: longer than %d bytes", st->path, FILE_MAX - 1);
                return -EBADMSG;
        }
        if (n < 0) {
                bbt_set_err(err, err_size, "%s: %s", st->path, strerror((int)-n));
                return (int)n;
        }
        if (strlen(text) != (size_t)n) {
                bbt_set_err(err, err_size, "%s: contains a NUL byte", st->path);
                return -EBADMSG;
        }
        return 0;
}

/* A boot counter above B that no earlier session can have used: from the
 * clock (seconds since 1970) when that is higher. */
static uint32_t boot_from_clock(uint32_t b)
{
        time_t now = time(NULL);

        if (now > 0 && (uint64_t)now <= UINT32_MAX && (uint32_t)now > b)
                return (uint32_t)now;
        return b + 1;
}

int bbt_counters_open(const struct bbt_counters_options *opts, const struct bbt_counters_witness *w,
                      struct bbt_counters **ret, char *err, size_t err_size)
{
        struct bbt_counters_options o;
        struct bbt_counters_witness wit = { 0 };
        struct bbt_counters_start_info info = { 0 };
        struct state_file f = { 0 };
        struct bbt_counters *st;
        char *text = NULL;
        uint64_t used, ceiling;
        uint32_t salvaged_boot = 0;
        bool trusted;
        int r;

        if (!ret)
                return -EINVAL;
        bbt_counters_options_init(&o);
        if (opts) {
                o = *opts;
                if (!o.dir)
                        o.dir = BBT_COUNTERS_DIR_DEFAULT;
                if (!o.root)
                        o.root = "/";
                if (o.block == 0)
                        o.block = BBT_COUNTERS_BLOCK_DEFAULT;
        }
        if (o.recover_jump == 0)
                o.recover_jump = 10 * (uint64_t)o.block;
        if (w)
                wit = *w;
        /* The highest seq the other files prove used. */
        used = max_u64(wit.spool_last, wit.used);

        st = calloc(1, sizeof(*st));
        text = malloc(FILE_MAX);
        if (!st || !text) {
                r = -ENOMEM;
                bbt_set_err(err, err_size, "%s", strerror(ENOMEM));
                goto fail_free;
        }
        st->dirfd = st->lockfd = -1;
        st->block = o.block;
        if (asprintf(&st->path, "%s/%s", o.dir, STATE_NAME) < 0) {
                st->path = NULL;
                r = -ENOMEM;
                bbt_set_err(err, err_size, "%s", strerror(ENOMEM));
                goto fail_free;
        }
        if (mkdir(o.dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                bbt_set_err(err, err_size, "%s: %s", o.dir, strerror(errno));
                goto fail_free;
        }
        st->dirfd = open(o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (st->dirfd < 0) {
                r = -errno;
                bbt_set_err(err, err_size, "%s: %s", o.dir, strerror(errno));
                goto fail_free;
        }
        st->lockfd = openat(st->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (st->lockfd < 0 || flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                bbt_set_err(err, err_size, "%s/%s: %s", o.dir, LOCK_NAME,
                        r == -EBUSY ? "in use by another bbt-agent" : strerror(-r));
                goto fail_close;
        }
        read_boot_id(o.root, st->boot_id);

        r = read_state_file(st, text, FILE_MAX, err, err_size);
        if (r == 0) {
                salvaged_boot = salvage_boot(text);
                r = parse_state(st->path, text, &f, err, err_size);
        } else if (r == -EBADMSG) {
                salvaged_boot = salvage_boot(text);
        }
        if (r == -EBADMSG && !o.recover)
                goto fail_close;
        if (r == -EBADMSG && used == 0 && wit.ceiling == 0) {
                size_t n = err ? strlen(err) : 0;

                if (err && n < err_size)
                        bbt_set_err(err + n, err_size - n, " (cannot recover: the spool shows no used seq)");
                goto fail_close;
        }
        if (r < 0 && r != -EBADMSG && r != -ENOENT)
                goto fail_close;

        /*
         * Never a seq any witness shows used or reserved; when in doubt,
         * forward. The file is trusted only if no other witness is ahead of
         * it: a seq used at or past its ceiling, or a higher copy of the
         * ceiling, means the file is older than the spool (a lost write, a
         * restored backup).
         */
        if (r == 0) {
                memcpy(st->skipped, f.skipped, f.n_skipped * sizeof(f.skipped[0]));
                st->n_skipped = f.n_skipped;
        }
        merge_skipped(st, wit.skipped, wit.skipped ? wit.n_skipped : 0);
        if (r == 0) {
                trusted = used < f.ceiling && wit.ceiling <= f.ceiling &&
                          (!f.clean || used < f.floor); /* a clean file names the exact next seq */
                if (f.floor > 0)
                        used = max_u64(used, f.floor - 1); /* below the floor: used or skipped */
        } else {
                trusted = false;
        }
        ceiling = r == 0 ? max_u64(f.ceiling, wit.ceiling) : wit.ceiling;
        if (r == -ENOENT && used == 0 && wit.ceiling == 0) {
                info.start = BBT_COUNTERS_FRESH;
                st->next = 1;
                st->boot = 0;
        } else if (r == 0 && trusted && f.clean) {
                info.start = BBT_COUNTERS_CLEAN;
                st->next = f.floor;
                st->boot = f.boot;
        } else if (r == 0 && trusted) {
                info.start = st->boot_id[0] && strcmp(st->boot_id, f.boot_id) == 0 ? BBT_COUNTERS_CRASH_SAME_BOOT
                                                                                     : BBT_COUNTERS_CRASH_REBOOT;
                st->next = max_u64(ceiling, used + 1);
                /* The last write (a new session) may be the one lost. */
                st->boot = (uint32_t)max_u64(f.boot, wit.boot) + 1;
        } else {
                uint64_t b = max_u64(r == 0 ? f.boot : 0, max_u64(salvaged_boot, wit.boot));

                info.start = r == -EBADMSG ? BBT_COUNTERS_RECOVERED : BBT_COUNTERS_STALE;
                /* Nothing says how far the reservation went: past every witness by a margin. */
                st->next = max_u64(ceiling, add_sat(used + 1, o.recover_jump));
                st->boot = boot_from_clock((uint32_t)(b + 1 > UINT32_MAX ? UINT32_MAX : b + 1));
        }
        if (st->next > BBT_COUNTERS_SEQ_MAX) {
                r = -ERANGE;
                bbt_set_err(err, err_size, "%s: seq %" PRIu64 " is past the protocol's maximum", st->path, st->next);
                goto fail_close;
        }
        info.used = used;
        info.first_seq = st->next;
        if (info.start != BBT_COUNTERS_CLEAN && st->next > used + 1) {
                info.skipped = true;
                info.skipped_from = used + 1;
                info.skipped_to = st->next - 1;
                if (st->n_skipped && info.skipped_from <= st->skipped[st->n_skipped - 1].to)
                        info.skipped_from = st->skipped[st->n_skipped - 1].to + 1;
                if (info.skipped_from <= info.skipped_to)
                        add_skipped(st, info.skipped_from, info.skipped_to);
                else
                        info.skipped = false;
        }
        /* Two writes: the first reserves one block, the second two. Losing
         * the second leaves the first, which still covers every seq this run
         * hands out before its next write. */
        ceiling = max_u64(ceiling, add_sat(st->next, st->block));
        r = persist(st, false, st->next, ceiling, st->boot);
        if (r == 0) {
                st->safe = ceiling;
                ceiling = add_sat(ceiling, st->block);
                r = persist(st, false, st->next, ceiling, st->boot);
        }
        if (r < 0) {
                bbt_set_err(err, err_size, "%s: cannot write: %s", st->path, strerror(-r));
                goto fail_close;
        }
        st->floor = st->next;
        st->ceiling = ceiling;
        st->info = info;
        free(text);
        *ret = st;
        return 0;

fail_close:
        if (st->lockfd >= 0)
                close(st->lockfd);
        if (st->dirfd >= 0)
                close(st->dirfd);
fail_free:
        if (st)
                free(st->path);
        free(st);
        free(text);
        return r;
}

const struct bbt_counters_start_info *bbt_counters_start_info(const struct bbt_counters *st)
{
        return &st->info;
}

const char *bbt_counters_start_name(enum bbt_counters_start start)
{
        switch (start) {
        case BBT_COUNTERS_FRESH:
                return "fresh";
        case BBT_COUNTERS_CLEAN:
                return "clean";
        case BBT_COUNTERS_CRASH_SAME_BOOT:
                return "crash-same-boot";
        case BBT_COUNTERS_CRASH_REBOOT:
                return "crash-reboot";
        case BBT_COUNTERS_STALE:
                return "stale";
        case BBT_COUNTERS_RECOVERED:
                return "recovered";
        }
        return "?";
}

int bbt_counters_next_seq(struct bbt_counters *st, uint64_t *ret)
{
        int r;

        if (st->next > BBT_COUNTERS_SEQ_MAX)
                return -ERANGE;
        /* Keep the ceiling a block ahead of the bound SAFE, the ceiling of
         * the write before the last: one write per block. */
        while (st->next >= st->safe) {
                uint64_t ceiling = add_sat(max_u64(st->ceiling, st->next + 1), st->block);

                r = persist(st, false, st->floor, ceiling, st->boot);
                if (r < 0)
                        return r;
                st->safe = st->ceiling;
                st->ceiling = ceiling;
        }
        *ret = st->next++;
        return 0;
}

uint64_t bbt_counters_peek_seq(const struct bbt_counters *st)
{
        return st->next;
}

size_t bbt_counters_skipped(const struct bbt_counters *st, const struct bbt_seq_range **ret)
{
        *ret = st->skipped;
        return st->n_skipped;
}

int bbt_counters_new_session(struct bbt_counters *st, uint32_t *ret_boot)
{
        uint32_t boot = st->boot + 1; /* wraps to 0 after 4294967295 */
        int r;

        r = persist(st, false, st->floor, st->ceiling, boot);
        if (r < 0)
                return r;
        st->boot = boot;
        *ret_boot = boot;
        return 0;
}

uint32_t bbt_counters_boot(const struct bbt_counters *st)
{
        return st->boot;
}

uint64_t bbt_counters_ceiling(const struct bbt_counters *st)
{
        return st->ceiling;
}

int bbt_counters_close(struct bbt_counters *st)
{
        int r;

        if (!st)
                return 0;
        /* The floor of a clean file is the exact next seq; the ceiling stays
         * (it is at least as high). */
        r = persist(st, true, st->next, max_u64(st->ceiling, st->next), st->boot);
        close(st->lockfd);
        close(st->dirfd);
        free(st->path);
        free(st);
        return r;
}
