/* Test harness: a private temporary directory, the real daemons as child processes, their logs, and the aggregator's store read-only. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "test.h"

#define MAX_CHILDREN 64
#define MAX_HOOKS 8
#define MAX_DUMPS 8

static char tmp_dir[256];
static pid_t owner_pid;
static bool passed;
static pid_t children[MAX_CHILDREN];
static void (*hooks[MAX_HOOKS])(void);
static size_t n_hooks;
static struct {
        char path[320];
        long max;
} dumps[MAX_DUMPS];

int64_t bbt_test_wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *bbt_test_slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf;
        long size;

        if (!f) {
                buf = strdup("");
                if (!buf)
                        FAIL("out of memory");
                return buf;
        }
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)(size > 0 ? size : 0) + 1);
        if (!buf)
                FAIL("out of memory");
        buf[fread(buf, 1, (size_t)(size > 0 ? size : 0), f)] = '\0';
        fclose(f);
        return buf;
}

int bbt_test_count_in_file(const char *path, const char *needle)
{
        char *text = bbt_test_slurp(path), *p = text, *end = text + strlen(text);
        size_t len = strlen(needle);
        int n = 0;

        /* memmem with explicit lengths: ASan's strict_string_checks makes every
         * strstr() call measure the rest of the text, so a loop of them over a
         * broker log of some megabytes takes quadratic time. */
        while ((p = memmem(p, (size_t)(end - p), needle, len))) {
                n++;
                p += len;
        }
        free(text);
        return n;
}

bool bbt_test_file_contains(const char *path, const char *needle)
{
        char *text = bbt_test_slurp(path);
        bool found = strstr(text, needle) != NULL;

        free(text);
        return found;
}

void bbt_test_dump_tail(const char *path, long max)
{
        char buf[4096];
        size_t n;
        long size;
        FILE *f = fopen(path, "re");

        if (!f)
                return;
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fprintf(stderr, "---- %s (%ld bytes%s) ----\n", path, size, size > max ? ", tail" : "");
        fseek(f, size > max ? size - max : 0, SEEK_SET);
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, n, stderr);
        fprintf(stderr, "---- end of %s ----\n", path);
        fclose(f);
}

/* ---- the temporary directory and cleanup ---- */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static void reap_children(void)
{
        for (size_t i = 0; i < MAX_CHILDREN; i++) {
                if (children[i] <= 0)
                        continue;
                kill(children[i], SIGKILL);
                while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR)
                        ;
                children[i] = 0;
        }
}

static void cleanup_at_exit(void)
{
        if (getpid() != owner_pid)
                return;
        reap_children();
        if (!passed || getenv("BBT_TEST_VERBOSE"))
                for (size_t i = 0; i < MAX_DUMPS; i++)
                        if (dumps[i].path[0])
                                bbt_test_dump_tail(dumps[i].path, dumps[i].max);
        while (n_hooks > 0)
                hooks[--n_hooks]();
        if (tmp_dir[0] && getenv("BBT_TEST_KEEP"))
                fprintf(stderr, "BBT_TEST_KEEP: kept %s\n", tmp_dir);
        else if (tmp_dir[0])
                nftw(tmp_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

const char *bbt_test_tmp_init(const char *name)
{
        const char *t = getenv("TMPDIR");

        owner_pid = getpid();
        snprintf(tmp_dir, sizeof(tmp_dir), "%s/bbt-%s-test-XXXXXX", t && *t ? t : "/tmp", name);
        if (!mkdtemp(tmp_dir))
                FAIL("mkdtemp %s: %s", tmp_dir, strerror(errno));
        atexit(cleanup_at_exit);
        return tmp_dir;
}

const char *bbt_test_tmp_dir(void)
{
        return tmp_dir;
}

void bbt_test_at_cleanup(void (*fn)(void))
{
        if (n_hooks == MAX_HOOKS)
                FAIL("too many cleanup hooks");
        hooks[n_hooks++] = fn;
}

void bbt_test_dump_tail_on_failure(const char *path, long max)
{
        for (size_t i = 0; i < MAX_DUMPS; i++)
                if (strcmp(dumps[i].path, path) == 0)
                        return;
        for (size_t i = 0; i < MAX_DUMPS; i++)
                if (!dumps[i].path[0]) {
                        snprintf(dumps[i].path, sizeof(dumps[i].path), "%s", path);
                        dumps[i].max = max;
                        return;
                }
}

void bbt_test_dump_on_failure(const char *path)
{
        bbt_test_dump_tail_on_failure(path, 64 * 1024);
}

void bbt_test_passed(void)
{
        passed = true;
}

/* ---- child processes ---- */

static void child_add(pid_t pid)
{
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (children[i] <= 0) {
                        children[i] = pid;
                        return;
                }
        kill(pid, SIGKILL);
        FAIL("too many child processes");
}

static void child_forget(pid_t pid)
{
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == pid)
                        children[i] = 0;
}

const char *bbt_test_exe(const char *dir, const char *name, char *buf, size_t size)
{
        snprintf(buf, size, "%s/%s/%s", bbt_test_bindir(), dir, name);
        if (access(buf, X_OK) < 0)
                FAIL("%s: %s (build the %s target)", buf, strerror(errno), name);
        return buf;
}

/* Opens PATH to append to, failing the test if it cannot. */
static int open_log(const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd < 0)
                FAIL("open %s: %s", path, strerror(errno));
        return fd;
}

static pid_t spawn_child(char *const argv[], int out_fd, int err_fd)
{
        pid_t pid = bbt_test_spawn(argv[0], argv, out_fd, err_fd);

        child_add(pid);
        return pid;
}

void bbt_test_daemon_start(struct bbt_test_daemon *d, const char *name, char *const argv[], const char *log)
{
        int out_fd;
        char mark[128];

        snprintf(d->name, sizeof(d->name), "%s", name);
        snprintf(d->log, sizeof(d->log), "%s", log);
        bbt_test_dump_on_failure(log);
        out_fd = open_log(log);
        snprintf(mark, sizeof(mark), "==== test: %s start %d ====\n", name, ++d->starts);
        if (write(out_fd, mark, strlen(mark)) < 0)
                FAIL("write %s: %s", log, strerror(errno));
        d->pid = spawn_child(argv, out_fd, out_fd);
        close(out_fd);
}

int bbt_test_run(char *const argv[], const char *out_path, const char *err_path, int timeout_ms)
{
        uint64_t deadline = bbt_test_now_ms() + (uint64_t)timeout_ms;
        int out_fd = open_log(out_path);
        int err_fd = strcmp(out_path, err_path) == 0 ? out_fd : open_log(err_path);
        pid_t pid = spawn_child(argv, out_fd, err_fd);
        int status;

        if (err_fd != out_fd)
                close(err_fd);
        close(out_fd);
        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);

                if (r == pid)
                        break;
                if (bbt_test_now_ms() > deadline)
                        FAIL("%s did not exit within %d ms", argv[0], timeout_ms);
                bbt_test_sleep_ms(10);
        }
        child_forget(pid);
        return status;
}

bool bbt_test_daemon_exited(struct bbt_test_daemon *d)
{
        pid_t r;

        if (!d->pid)
                return true;
        r = waitpid(d->pid, &d->status, WNOHANG);
        if (r == 0)
                return false;
        child_forget(d->pid);
        d->pid = 0;
        return true;
}

const char *bbt_test_status_text(int status)
{
        static char buf[64];

        if (WIFEXITED(status))
                snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(status));
        else
                snprintf(buf, sizeof(buf), "status 0x%x", status);
        return buf;
}

void bbt_test_daemon_alive(struct bbt_test_daemon *d)
{
        if (bbt_test_daemon_exited(d))
                FAIL("%s ended unexpectedly: %s (log %s)", d->name, bbt_test_status_text(d->status), d->log);
}

void bbt_test_daemon_kill9(struct bbt_test_daemon *d)
{
        if (!d->pid)
                return;
        kill(d->pid, SIGKILL);
        while (waitpid(d->pid, &d->status, 0) < 0 && errno == EINTR)
                ;
        child_forget(d->pid);
        d->pid = 0;
}

int bbt_test_daemon_term(struct bbt_test_daemon *d, int timeout_ms)
{
        uint64_t t0 = bbt_test_now_ms();

        if (!d->pid)
                FAIL("%s is not running", d->name);
        kill(d->pid, SIGTERM);
        while (!bbt_test_daemon_exited(d)) {
                if (bbt_test_now_ms() - t0 > (uint64_t)timeout_ms)
                        FAIL("%s did not exit within %d ms of SIGTERM", d->name, timeout_ms);
                bbt_test_sleep_ms(5);
        }
        if (!WIFEXITED(d->status) || WEXITSTATUS(d->status) != 0)
                FAIL("%s after SIGTERM: expected exit 0, got %s", d->name, bbt_test_status_text(d->status));
        return (int)(bbt_test_now_ms() - t0);
}

void bbt_test_check_sanitizers(const char *log)
{
        static const char *const bad[] = { "Sanitizer", "runtime error:", NULL };

        for (size_t i = 0; bad[i]; i++)
                if (bbt_test_count_in_file(log, bad[i]))
                        FAIL("%s has a sanitizer report (\"%s\"; the log is printed below)", log, bad[i]);
}

/* ---- the store ---- */

static sqlite3 *db_open(const char *path)
{
        sqlite3 *db = NULL;

        if (access(path, F_OK) < 0)
                return NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return NULL;
        }
        sqlite3_busy_timeout(db, 5000);
        return db;
}

int64_t bbt_test_db_int(const char *db_path, int64_t default_value, const char *fmt, ...)
{
        char sql[2048];
        sqlite3_stmt *st = NULL;
        int64_t v = default_value;
        sqlite3 *db;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(sql, sizeof(sql), fmt, ap);
        va_end(ap);
        if (!(db = db_open(db_path)))
                return default_value;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
            sqlite3_column_type(st, 0) != SQLITE_NULL)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

const char *bbt_test_db_text(const char *db_path, char *buf, size_t size, const char *fmt, ...)
{
        char sql[2048];
        sqlite3_stmt *st = NULL;
        sqlite3 *db;
        va_list ap;

        buf[0] = '\0';
        va_start(ap, fmt);
        vsnprintf(sql, sizeof(sql), fmt, ap);
        va_end(ap);
        if (!(db = db_open(db_path)))
                return buf;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
            sqlite3_column_text(st, 0))
                snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return buf;
}

const char *bbt_test_db_missing(const char *db_path, const char *sql, int64_t from, int64_t to, char *buf,
                                size_t size, int64_t *ret_count)
{
        sqlite3_stmt *st = NULL;
        int64_t expect = from, seq, count = 0;
        size_t len = 0;
        sqlite3 *db = db_open(db_path);

        buf[0] = '\0';
        if (ret_count)
                *ret_count = to - from + 1;
        if (!db)
                return "(no store)";
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return "(query failed)";
        }
        for (;;) {
                bool row = sqlite3_step(st) == SQLITE_ROW;

                seq = row ? sqlite3_column_int64(st, 0) : to + 1;
                if (seq > expect && expect <= to) {
                        int64_t end = seq - 1 < to ? seq - 1 : to;

                        count += end - expect + 1;
                        if (len + 48 < size)
                                len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64 "..%" PRId64,
                                                        len ? ", " : "", expect, end);
                        else if (len + 4 < size && !strstr(buf, "..."))
                                len += (size_t)snprintf(buf + len, size - len, ", ...");
                }
                if (seq >= expect)
                        expect = seq + 1;
                if (!row)
                        break;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (ret_count)
                *ret_count = count;
        return buf;
}
