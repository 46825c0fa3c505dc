/* The agent's persistent counters: seqs never reused across clean stops, crashes and power loss; boot; file errors. */
/* bbt-test: label=unit timeout=30 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "counters.h"
#include "bbt/base.h"
#include "test.h"

#define BOOT_A "0f8a2b1c-1111-4a4a-9b9b-123456789abc"
#define BOOT_B "77d1e0aa-2222-4c4c-8d8d-cba987654321"

static char tmp_root[64];
static char dir[128];  /* the state directory */
static char root[128]; /* the fake / holding proc/sys/kernel/random/boot_id */
static char state_path[160];

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static void cleanup(void)
{
        if (tmp_root[0])
                nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        ASSERT(f);
        fputs(text, f);
        ASSERT_OK(fclose(f));
}

static void set_boot_id(const char *id)
{
        char path[256];

        snprintf(path, sizeof(path), "%s/proc/sys/kernel/random/boot_id", root);
        if (id) {
                char line[80];

                snprintf(line, sizeof(line), "%s\n", id);
                write_file(path, line);
        } else {
                unlink(path);
        }
}

static void setup(void)
{
        char path[256];

        snprintf(tmp_root, sizeof(tmp_root), "/tmp/bbt-state-XXXXXX");
        ASSERT(mkdtemp(tmp_root));
        atexit(cleanup);
        snprintf(dir, sizeof(dir), "%s/state", tmp_root);
        snprintf(root, sizeof(root), "%s/root", tmp_root);
        snprintf(state_path, sizeof(state_path), "%s/state", dir);
        snprintf(path, sizeof(path), "%s/root", tmp_root);
        ASSERT_OK(mkdir(path, 0755));
        snprintf(path, sizeof(path), "%s/root/proc", tmp_root);
        ASSERT_OK(mkdir(path, 0755));
        snprintf(path, sizeof(path), "%s/root/proc/sys", tmp_root);
        ASSERT_OK(mkdir(path, 0755));
        snprintf(path, sizeof(path), "%s/root/proc/sys/kernel", tmp_root);
        ASSERT_OK(mkdir(path, 0755));
        snprintf(path, sizeof(path), "%s/root/proc/sys/kernel/random", tmp_root);
        ASSERT_OK(mkdir(path, 0755));
        set_boot_id(BOOT_A);
}

static int try_open_w(uint32_t block, const struct bbt_counters_witness *w, bool recover, struct bbt_counters **ret,
                      char *err, size_t err_size)
{
        struct bbt_counters_options opts;

        bbt_counters_options_init(&opts);
        opts.dir = dir;
        opts.root = root;
        opts.block = block;
        opts.recover = recover;
        return bbt_counters_open(&opts, w, ret, err, err_size);
}

static int try_open(uint32_t block, uint64_t spool_last, bool recover, struct bbt_counters **ret, char *err,
                    size_t err_size)
{
        struct bbt_counters_witness w = { .spool_last = spool_last };

        return try_open_w(block, &w, recover, ret, err, err_size);
}

static struct bbt_counters *open_w(uint32_t block, const struct bbt_counters_witness *w)
{
        struct bbt_counters *st = NULL;
        char err[512] = "";
        int r = try_open_w(block, w, false, &st, err, sizeof(err));

        if (r < 0)
                FAIL("bbt_counters_open: %s (%s)", strerror(-r), err);
        ASSERT(st != NULL);
        return st;
}

static struct bbt_counters *open_st(uint32_t block, uint64_t spool_last)
{
        struct bbt_counters_witness w = { .spool_last = spool_last };

        return open_w(block, &w);
}

/* The value of KEY in the state file. */
static uint64_t file_value(const char *key)
{
        char text[4096], *p;
        size_t klen = strlen(key);
        FILE *f = fopen(state_path, "r");
        size_t n;

        ASSERT(f);
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, key, klen) == 0 && p[klen] == '=')
                        return strtoull(p + klen + 1, NULL, 10);
        FAIL("%s not in %s: %s", key, state_path, text);
}

/* The whole state file, in BUF. */
static void read_state(char *buf, size_t size)
{
        FILE *f = fopen(state_path, "r");
        size_t n;

        ASSERT(f);
        n = fread(buf, 1, size - 1, f);
        fclose(f);
        buf[n] = '\0';
}

static uint64_t take(struct bbt_counters *st)
{
        uint64_t seq = 0;

        ASSERT_OK(bbt_counters_next_seq(st, &seq));
        return seq;
}

/* Runs an agent that opens the state with the witness SPOOL_LAST, hands out
 * N seqs and is killed; returns the last seq it handed out. */
static uint64_t crashed_run(uint32_t block, uint64_t spool_last, int n)
{
        uint64_t last = 0;
        int fds[2], status;
        pid_t pid;

        ASSERT_OK(pipe(fds));
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
                struct bbt_counters *st = NULL;

                close(fds[0]);
                if (try_open(block, spool_last, false, &st, NULL, 0) < 0)
                        _exit(1);
                for (int i = 0; i < n; i++)
                        if (bbt_counters_next_seq(st, &last) < 0)
                                _exit(2);
                if (write(fds[1], &last, sizeof(last)) != sizeof(last))
                        _exit(4);
                _exit(0); /* kill -9: no bbt_counters_close() */
        }
        close(fds[1]);
        ASSERT_EQ(read(fds[0], &last, sizeof(last)), (ssize_t)sizeof(last));
        close(fds[0]);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
        return last;
}

TEST(fresh_start)
{
        const struct bbt_counters_start_info *info;
        struct bbt_counters *st;
        struct stat s;

        setup();
        st = open_st(0, 0);
        info = bbt_counters_start_info(st);
        ASSERT_EQ(info->start, BBT_COUNTERS_FRESH);
        ASSERT_STR_EQ(bbt_counters_start_name(info->start), "fresh");
        ASSERT_EQ(info->first_seq, 1);
        ASSERT(!info->skipped);
        ASSERT_EQ(bbt_counters_peek_seq(st), 1);
        /* Two writes at open: one block, then two blocks ahead. */
        ASSERT_EQ(bbt_counters_ceiling(st), 1 + 2 * BBT_COUNTERS_BLOCK_DEFAULT);
        ASSERT_EQ(bbt_counters_boot(st), 0);
        /* The reservation and the unclean marker are on disk before any seq. */
        ASSERT_EQ(file_value("version"), 2);
        ASSERT_EQ(file_value("clean"), 0);
        ASSERT_EQ(file_value("seq_ceiling"), 1 + 2 * BBT_COUNTERS_BLOCK_DEFAULT);
        ASSERT_OK(stat(dir, &s));
        ASSERT_EQ(s.st_mode & 0777, 0700);
        ASSERT_EQ(take(st), 1);
        ASSERT_EQ(take(st), 2);
        ASSERT_OK(bbt_counters_close(st));
        ASSERT_OK(bbt_counters_close(NULL));
}

TEST(missing_state_file_jumps_past_the_spool)
{
        const struct bbt_counters_start_info *info;
        struct bbt_counters_witness w = { .spool_last = 41, .used = 45, .ceiling = 0 };
        struct bbt_counters *st;

        setup();
        /* No state file but a spool (the file was deleted, or lost): nothing
         * says how far the numbering went, so past every witness by a margin. */
        st = open_w(10, &w);
        info = bbt_counters_start_info(st);
        ASSERT_EQ(info->start, BBT_COUNTERS_STALE);
        ASSERT_EQ(info->used, 45);
        ASSERT_EQ(info->first_seq, 46 + 100);
        ASSERT(info->skipped);
        ASSERT_EQ(info->skipped_from, 46);
        ASSERT_EQ(info->skipped_to, 145);
        ASSERT_GT(bbt_counters_boot(st), 1000000000u); /* from the clock */
        ASSERT_EQ(take(st), 146);
        bbt_counters_close(st);
}

TEST(clean_restart_continues_exactly)
{
        const struct bbt_counters_start_info *info;
        struct bbt_counters *st;

        setup();
        st = open_st(10, 0);
        for (int i = 1; i <= 25; i++)
                ASSERT_EQ(take(st), i);
        ASSERT_OK(bbt_counters_close(st));
        ASSERT_EQ(file_value("clean"), 1);
        ASSERT_EQ(file_value("seq_floor"), 26);

        /* Even across a reboot, and whatever the spool says below it. */
        set_boot_id(BOOT_B);
        st = open_st(10, 20);
        info = bbt_counters_start_info(st);
        ASSERT_EQ(info->start, BBT_COUNTERS_CLEAN);
        ASSERT_EQ(info->first_seq, 26);
        ASSERT(!info->skipped);
        ASSERT_EQ(take(st), 26);
        ASSERT_EQ(file_value("clean"), 0);
        bbt_counters_close(st);
}

TEST(clean_file_contradicted_by_the_spool)
{
        struct bbt_counters_witness w = { .spool_last = 30 };
        const struct bbt_counters_start_info *info;
        struct bbt_counters *st;

        setup();
        st = open_st(10, 0);
        for (int i = 1; i <= 25; i++)
                take(st);
        ASSERT_OK(bbt_counters_close(st));
        /* An older clean file (restored from a backup) while the spool went on to 30. */
        st = open_w(10, &w);
        info = bbt_counters_start_info(st);
        ASSERT_EQ(info->start, BBT_COUNTERS_STALE);
        ASSERT_GT(info->first_seq, 30);
        ASSERT_EQ(info->skipped_from, 31);
        ASSERT_EQ(take(st), info->first_seq);
        bbt_counters_close(st);
}

TEST(unclean_same_boot_jumps_to_ceiling)
{
        const struct bbt_counters_start_info *info;
        struct bbt_counters *st;
        uint64_t last;

        setup();
        last = crashed_run(100, 0, 57);
        ASSERT_EQ(last, 57);
        ASSERT_EQ(file_value("seq_ceiling"), 201);
        /* The spool holds 1..55 (56 and 57 were handed out but not spooled, or
         * the tail was cut): neither is handed out again. */
        st = open_st(100, 55);
        info = bbt_counters_start_info(st);
        ASSERT_EQ(info->start, BBT_COUNTERS_CRASH_SAME_BOOT);
        ASSERT_STR_EQ(bbt_counters_start_name(info->start), "crash-same-boot");
        ASSERT_EQ(info->first_seq, 201);
        ASSERT_EQ(info->used, 55);
        ASSERT(info->skipped);
        ASSERT_EQ(info->skipped_from, 56);
        ASSERT_EQ(info->skipped_to, 200);
        ASSERT_EQ(take(st), 201);
        bbt_counters_close(st);
}

/* The reproduction: kill -9, the tail of the spool zeroed, the meta
 * file's ack watermark ahead of what is left. */
TEST(damaged_tail_never_reused)
{
        struct bbt_counters_witness w = { .spool_last = 55, .used = 64 };
        const struct bbt_counters_start_info *info;
        struct bbt_counters *st;

        setup();
        crashed_run(100, 0, 65);
        st = open_w(100, &w);
        info = bbt_counters_start_info(st);
        ASSERT_EQ(info->start, BBT_COUNTERS_CRASH_SAME_BOOT);
        ASSERT_EQ(info->used, 64);
        ASSERT_EQ(info->skipped_from, 65);
        ASSERT_EQ(info->skipped_to, 200);
        ASSERT_EQ(take(st), 201);
        bbt_counters_close(st);
}

TEST(unclean_new_boot_jumps_to_ceiling)
{
        const struct bbt_counters_start_info *info;
        struct bbt_counters *st;
        uint64_t last;

        setup();
        last = crashed_run(100, 0, 150); /* 1..150: ceiling now 301 */
        ASSERT_EQ(last, 150);
        ASSERT_EQ(file_value("seq_ceiling"), 301);
        /* Power loss: the spool kept only up to 140, although 141..150 may have been published. */
        set_boot_id(BOOT_B);
        st = open_st(100, 140);
        info = bbt_counters_start_info(st);
        ASSERT_EQ(info->start, BBT_COUNTERS_CRASH_REBOOT);
        ASSERT_EQ(info->first_seq, 301);
        ASSERT(info->skipped);
        ASSERT_EQ(info->skipped_from, 141);
        ASSERT_EQ(info->skipped_to, 300);
        ASSERT_EQ(take(st), 301);
        ASSERT_EQ(file_value("seq_ceiling"), 501);
        bbt_counters_close(st);
}

TEST(unreadable_boot_id_counts_as_reboot)
{
        struct bbt_counters *st;

        setup();
        crashed_run(100, 0, 5);
        set_boot_id(NULL);
        st = open_st(100, 5);
        ASSERT_EQ(bbt_counters_start_info(st)->start, BBT_COUNTERS_CRASH_REBOOT);
        ASSERT_EQ(take(st), 201);
        bbt_counters_close(st);
}

TEST(skipped_ranges_remembered)
{
        const struct bbt_seq_range *r;
        struct bbt_counters *st;
        enum { RUNS = BBT_COUNTERS_SKIPPED_MAX + 8 };
        static uint64_t first_seqs[RUNS];
        size_t n;

        setup();
        first_seqs[0] = 1;
        for (int i = 1; i < RUNS; i++)
                first_seqs[i] = crashed_run(10, 0, 1); /* each run: one seq, then a crash */
        st = open_st(10, 0);
        n = bbt_counters_skipped(st, &r);
        /* The newest BBT_COUNTERS_SKIPPED_MAX ranges, ascending, each ending
         * just below a run's first seq. */
        ASSERT_EQ(n, BBT_COUNTERS_SKIPPED_MAX);
        for (size_t i = 0; i < n; i++) {
                ASSERT_LE(r[i].from, r[i].to);
                if (i > 0)
                        ASSERT_GT(r[i].from, r[i - 1].to);
                ASSERT_EQ(r[i].to + 1, i + 1 < n ? first_seqs[RUNS - (n - 1) + i] : bbt_counters_peek_seq(st));
        }
        ASSERT_OK(bbt_counters_close(st));
        /* A clean restart keeps them. */
        st = open_st(10, 0);
        ASSERT_EQ(bbt_counters_skipped(st, &r), BBT_COUNTERS_SKIPPED_MAX);
        bbt_counters_close(st);
}

TEST(reservation_persisted_before_use)
{
        struct bbt_counters *st;

        setup();
        st = open_st(10, 0);
        for (uint64_t want = 1; want <= 35; want++) {
                uint64_t seq = take(st);

                ASSERT_EQ(seq, want);
                /* Whatever happens now, even if this last write is lost, the
                 * write before it (one block lower) already covers SEQ. */
                ASSERT_GT(file_value("seq_ceiling") - 10, seq);
                ASSERT_EQ(bbt_counters_ceiling(st), file_value("seq_ceiling"));
        }
        ASSERT_EQ(file_value("seq_ceiling"), 51);
        bbt_counters_close(st);
}

/* The state file as the first of the two writes at open left it: the same
 * as the second, one block lower. */
static void first_open_write(const char *after_open, uint64_t block, char *out, size_t size)
{
        const char *p = strstr(after_open, "seq_ceiling=");
        unsigned long long c;
        int n;

        ASSERT(p);
        c = strtoull(p + 12, NULL, 10);
        n = snprintf(out, size, "%.*sseq_ceiling=%llu%s", (int)(p - after_open), after_open, c - block,
                     strchr(p, '\n'));
        ASSERT(n > 0 && (size_t)n < size);
}

/* A run of N seqs whose last write of the state file is undone (the version
 * before it put back, as a power cut that loses a rename would), for every N
 * up to a few blocks: the next start never hands out a seq used before. */
TEST(lost_last_write_never_reuses)
{
        setup();
        for (int n = 1; n <= 45; n++) {
                struct bbt_counters *st;
                uint64_t last = 0, first;
                int fds[2], status;
                pid_t pid;

                unlink(state_path);
                st = open_st(10, 0);
                for (int i = 0; i < n % 7; i++)
                        take(st);
                ASSERT_OK(bbt_counters_close(st));
                ASSERT_OK(pipe(fds));
                pid = fork();
                ASSERT(pid >= 0);
                if (pid == 0) {
                        static char prev[4096], latest[4096], cur[4096];
                        struct bbt_counters *c = NULL;

                        close(fds[0]);
                        if (try_open(10, 0, false, &c, NULL, 0) < 0)
                                _exit(1);
                        read_state(latest, sizeof(latest));
                        first_open_write(latest, 10, prev, sizeof(prev));
                        for (int i = 0; i < n; i++) {
                                if (bbt_counters_next_seq(c, &last) < 0)
                                        _exit(2);
                                read_state(cur, sizeof(cur));
                                if (strcmp(cur, latest) != 0) {
                                        memcpy(prev, latest, sizeof(prev));
                                        memcpy(latest, cur, sizeof(latest));
                                }
                        }
                        write_file(state_path, prev); /* the last write is lost */
                        if (write(fds[1], &last, sizeof(last)) != sizeof(last))
                                _exit(3);
                        _exit(0);
                }
                close(fds[1]);
                ASSERT_EQ(read(fds[0], &last, sizeof(last)), (ssize_t)sizeof(last));
                close(fds[0]);
                ASSERT_EQ(waitpid(pid, &status, 0), pid);
                ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                st = open_st(10, 0);
                first = bbt_counters_peek_seq(st);
                if (first <= last)
                        FAIL("after %d seqs (last %llu) and a lost last write, the next start begins at %llu", n,
                             (unsigned long long)last, (unsigned long long)first);
                ASSERT_OK(bbt_counters_close(st));
        }
}

TEST(persist_failure_hands_out_nothing)
{
        struct bbt_counters *st;
        struct rlimit rl;
        uint64_t seq = 12345;
        uint32_t boot = 777;

        setup();
        signal(SIGXFSZ, SIG_IGN);
        st = open_st(10, 0);
        for (int i = 1; i <= 10; i++)
                take(st);
        /* The disk refuses the next reservation. */
        ASSERT_OK(getrlimit(RLIMIT_FSIZE, &rl));
        rl.rlim_cur = 0;
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &rl));
        ASSERT_EQ(bbt_counters_next_seq(st, &seq), -EFBIG);
        ASSERT_EQ(seq, 12345);
        ASSERT_EQ(bbt_counters_new_session(st, &boot), -EFBIG);
        ASSERT_EQ(boot, 777);
        ASSERT_EQ(bbt_counters_boot(st), 0);
        ASSERT_EQ(bbt_counters_peek_seq(st), 11);
        ASSERT_EQ(file_value("seq_ceiling"), 21);
        rl.rlim_cur = rl.rlim_max;
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &rl));
        ASSERT_EQ(take(st), 11);
        ASSERT_EQ(file_value("seq_ceiling"), 31);
        bbt_counters_close(st);
}

TEST(stale_file_restored_from_backup)
{
        char old[4096];
        struct bbt_counters *st;
        uint64_t last;

        setup();
        st = open_st(10, 0);
        take(st);
        read_state(old, sizeof(old)); /* ceiling 21 */
        for (int i = 0; i < 60; i++)
                last = take(st);
        bbt_counters_close(st);
        ASSERT_EQ(last, 61);
        /* The old file comes back (clean=0, ceiling 21); the spool lost its
         * tail too, but its meta kept the reservation's copy. */
        write_file(state_path, old);
        {
                struct bbt_counters_witness w = { .spool_last = 15, .ceiling = 81 };
                const struct bbt_counters_start_info *info;

                st = open_w(10, &w);
                info = bbt_counters_start_info(st);
                ASSERT_EQ(info->start, BBT_COUNTERS_STALE);
                ASSERT_GE(info->first_seq, 81);
                ASSERT_GT(info->first_seq, last);
                bbt_counters_close(st);
        }
}

TEST(boot_increments)
{
        struct bbt_counters *st;
        uint32_t boot = 0;

        setup();
        st = open_st(0, 0);
        ASSERT_OK(bbt_counters_new_session(st, &boot));
        ASSERT_EQ(boot, 1);
        ASSERT_EQ(file_value("boot"), 1);
        ASSERT_OK(bbt_counters_new_session(st, &boot)); /* a reconnect */
        ASSERT_EQ(boot, 2);
        ASSERT_EQ(bbt_counters_boot(st), 2);
        ASSERT_OK(bbt_counters_close(st));
        st = open_st(0, 0);
        ASSERT_EQ(bbt_counters_boot(st), 2);
        ASSERT_OK(bbt_counters_new_session(st, &boot));
        ASSERT_EQ(boot, 3);
        bbt_counters_close(st);
        /* After a crash it goes one further: the crashed run's last write
         * (a new session) may be the one a power cut lost. */
        crashed_run(0, 0, 0);
        st = open_st(0, 0);
        ASSERT_EQ(bbt_counters_boot(st), 4);
        bbt_counters_close(st);
}

TEST(boot_wraps)
{
        struct bbt_counters *st;
        uint32_t boot = 1;

        setup();
        ASSERT_OK(mkdir(dir, 0700));
        write_file(state_path, "version=1\nclean=1\nseq_floor=7\nseq_ceiling=9\nboot=4294967295\nboot_id=\n");
        st = open_st(0, 0);
        ASSERT_EQ(bbt_counters_start_info(st)->start, BBT_COUNTERS_CLEAN);
        ASSERT_EQ(bbt_counters_peek_seq(st), 7);
        ASSERT_OK(bbt_counters_new_session(st, &boot));
        ASSERT_EQ(boot, 0);
        bbt_counters_close(st);
}

TEST(corrupt_file_errors)
{
        static const struct {
                const char *text, *err;
        } cases[] = {
                { "version=1\nclean=0\nseq_ceiling=abc\n", ":3: seq_ceiling: expected unsigned integer" },
                { "version=1\nclean=0\nseq_floor=-5\n", ":3: seq_floor: expected unsigned integer" },
                { "version=1\nseq_floor=9007199254740993\n", ":2: seq_floor: out of range (at most 9007199254740992)" },
                { "version=1\nseq_floor=12 \n", ":2: seq_floor: expected unsigned integer" },
                { "version=3\n", ":1: version: unsupported version 3 (expected 1 or 2)" },
                { "# c\nversion=1\nclean=yes\n", ":3: clean: expected 0 or 1" },
                { "version=1\nboot=4294967296\n", ":2: boot: out of range (at most 4294967295)" },
                { "version=1\nseq_floor 5\n", ":2: expected key=value" },
                { "version=1\ncolour=blue\n", ":2: colour: unknown key" },
                { "version=1\nversion=1\n", ":2: version: duplicate key" },
                { "version=1\nboot_id=NOT A UUID\n", ":2: boot_id: expected at most 64 of [0-9a-f-]" },
                { "version=1\nclean=0\nseq_floor=5\nseq_ceiling=9\nboot=1\n", ": missing key boot_id" },
                { "version=1\nclean=0\nseq_floor=50\nseq_ceiling=9\nboot=1\nboot_id=\n",
                  ": seq_floor 50 is above seq_ceiling 9" },
                { "", ": missing key version" },
                { "version=1\nskipped=1-2\n", ":2: skipped: unknown key in a version 1 file" },
                { "version=2\nskipped=5-3\n", ":2: skipped: expected ascending FROM-TO ranges" },
                { "version=2\nskipped=1-3,3-9\n", ":2: skipped: expected ascending FROM-TO ranges" },
                { "version=2\nskipped=7\n", ":2: skipped: expected ascending FROM-TO ranges" },
        };

        setup();
        ASSERT_OK(mkdir(dir, 0700));
        for (size_t i = 0; i < BBT_ELEMENTSOF(cases); i++) {
                struct bbt_counters *st = NULL;
                char err[512] = "", want[512];

                write_file(state_path, cases[i].text);
                ASSERT_EQ(try_open(0, 100, false, &st, err, sizeof(err)), -EBADMSG);
                ASSERT(st == NULL);
                snprintf(want, sizeof(want), "%s%s", state_path, cases[i].err);
                ASSERT_STR_EQ(err, want);
        }
}

TEST(recover_from_corrupt_file)
{
        const struct bbt_counters_start_info *info;
        struct bbt_counters *st = NULL;
        char err[512] = "";

        setup();
        ASSERT_OK(mkdir(dir, 0700));
        write_file(state_path, "version=1\nboot=42\nseq_ceiling=\x01\x02garbage\n");
        /* Nothing to go by: refuse, even when asked to recover. */
        ASSERT_EQ(try_open(10, 0, true, &st, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_CONTAINS(err, "cannot recover: the spool shows no used seq");
        ASSERT(st == NULL);

        ASSERT_OK(try_open(10, 500, true, &st, err, sizeof(err)));
        info = bbt_counters_start_info(st);
        ASSERT_EQ(info->start, BBT_COUNTERS_RECOVERED);
        ASSERT_EQ(info->first_seq, 501 + 100);
        ASSERT(info->skipped);
        ASSERT_EQ(info->skipped_from, 501);
        ASSERT_EQ(info->skipped_to, 600);
        ASSERT_GT(bbt_counters_boot(st), 42); /* from the clock: above any counter reached */
        ASSERT_EQ(take(st), 601);
        ASSERT_OK(bbt_counters_close(st));
        /* The file is whole again. */
        st = open_st(10, 0);
        ASSERT_EQ(bbt_counters_start_info(st)->start, BBT_COUNTERS_CLEAN);
        ASSERT_EQ(take(st), 602);
        bbt_counters_close(st);
}

TEST(second_open_busy)
{
        struct bbt_counters *st, *other = NULL;
        char err[512] = "";

        setup();
        st = open_st(0, 0);
        ASSERT_EQ(try_open(0, 0, false, &other, err, sizeof(err)), -EBUSY);
        ASSERT(other == NULL);
        ASSERT_STR_CONTAINS(err, "in use by another bbt-agent");
        bbt_counters_close(st);
}

/* The skipped ranges are kept twice (state file and spool meta): a state
 * file that lost them (an older copy came back) gets them from the witness. */
TEST(skipped_ranges_merged_from_the_meta_copy)
{
        static const struct bbt_seq_range copy[] = { { 5, 99 }, { 120, 300 } };
        struct bbt_counters_witness w = { .spool_last = 4, .ceiling = 0, .skipped = copy, .n_skipped = 2 };
        const struct bbt_seq_range *r;
        struct bbt_counters *st;

        setup();
        ASSERT_OK(mkdir(dir, 0700));
        write_file(state_path, "version=2\nclean=1\nseq_floor=400\nseq_ceiling=420\nboot=3\nboot_id=\nskipped=5-99\n");
        st = open_w(10, &w);
        ASSERT_EQ(bbt_counters_start_info(st)->start, BBT_COUNTERS_CLEAN);
        ASSERT_EQ(bbt_counters_skipped(st, &r), 2);
        ASSERT_EQ(r[0].from, 5);
        ASSERT_EQ(r[0].to, 99);
        ASSERT_EQ(r[1].from, 120);
        ASSERT_EQ(r[1].to, 300);
        ASSERT_OK(bbt_counters_close(st));
        ASSERT_EQ(file_value("seq_floor"), 400);
}
