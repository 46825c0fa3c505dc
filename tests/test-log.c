/* Tests for runtime/log.c: prefixes in both modes, levels, truncation, one line per call. */
/* bbt-test: label=unit timeout=30 */
#include "test.h"

#include "bbt/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static int pipe_fds[2] = { -1, -1 };

static void close_pipe(void)
{
        if (pipe_fds[0] >= 0)
                close(pipe_fds[0]);
        if (pipe_fds[1] >= 0)
                close(pipe_fds[1]);
        pipe_fds[0] = pipe_fds[1] = -1;
        bbt_log_set_fd(STDERR_FILENO);
}

/* Points the log at a fresh non-blocking pipe with a known state. */
static void capture(enum bbt_log_prefix mode)
{
        static bool registered;

        close_pipe();
        ASSERT_OK(pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK));
        if (!registered)
                atexit(close_pipe);
        registered = true;
        bbt_log_init("bbt-test");
        bbt_log_set_fd(pipe_fds[1]);
        ASSERT_OK(bbt_log_set_prefix(mode));
        ASSERT_OK(bbt_log_set_level(BBT_LOG_DEBUG));
}

/* Everything written to the pipe so far, NUL-terminated (static buffer). */
static const char *captured(size_t *ret_len)
{
        static char buf[65536];
        size_t len = 0;
        ssize_t k;

        while (len < sizeof(buf) - 1 &&
               (k = read(pipe_fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)k;
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return buf;
}

static size_t count_char(const char *s, size_t len, char c)
{
        size_t i, n = 0;

        for (i = 0; i < len; i++)
                n += s[i] == c;
        return n;
}

TEST(syslog_prefix)
{
        capture(BBT_LOG_PREFIX_SYSLOG);
        bbt_log(BBT_LOG_ERR, "broker %s:%d unreachable", "mqtt.example", 8883);
        ASSERT_STR_EQ(captured(NULL), "<3>broker mqtt.example:8883 unreachable\n");
}

TEST(syslog_prefix_each_level)
{
        capture(BBT_LOG_PREFIX_SYSLOG);
        bbt_log_error("e");
        bbt_log_warning("w");
        bbt_log_notice("n");
        bbt_log_info("i");
        bbt_log_debug("d");
        ASSERT_STR_EQ(captured(NULL), "<3>e\n<4>w\n<5>n\n<6>i\n<7>d\n");
}

TEST(tty_prefix)
{
        capture(BBT_LOG_PREFIX_TTY);
        bbt_log_warning("disk %d%% full", 90);
        bbt_log_debug("x");
        ASSERT_STR_EQ(captured(NULL), "bbt-test: warning: disk 90% full\nbbt-test: debug: x\n");
}

TEST(tty_prefix_default_ident)
{
        capture(BBT_LOG_PREFIX_TTY);
        bbt_log_init(NULL); /* keeps "bbt-test" */
        bbt_log_error("a");
        ASSERT_STR_EQ(captured(NULL), "bbt-test: error: a\n");
}

TEST(auto_prefix_pipe_is_syslog)
{
        capture(BBT_LOG_PREFIX_AUTO);
        bbt_log_notice("started");
        ASSERT_STR_EQ(captured(NULL), "<5>started\n");
}

TEST(auto_prefix_tty)
{
        char buf[256];
        const char *slave;
        ssize_t k;
        size_t len = 0;
        int master, fd;

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
            !(slave = ptsname(master)))
                bbt_test_skip("no pseudo-terminal available: %s", strerror(errno));
        fd = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                bbt_test_skip("cannot open %s: %s", slave, strerror(errno));

        bbt_log_init("bbt-tty");
        bbt_log_set_fd(fd);
        ASSERT_OK(bbt_log_set_prefix(BBT_LOG_PREFIX_AUTO));
        ASSERT_OK(bbt_log_set_level(BBT_LOG_INFO));
        bbt_log_info("on a terminal");
        /* The terminal turns "\n" into "\r\n"; read until it arrives. */
        while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len)) {
                k = read(master, buf + len, sizeof(buf) - 1 - len);
                ASSERT_GT(k, 0);
                len += (size_t)k;
        }
        buf[len] = '\0';
        ASSERT_STR_EQ(buf, "bbt-tty: info: on a terminal\r\n");
        bbt_log_set_fd(STDERR_FILENO);
        close(fd);
        close(master);
}

static int evaluations;

static int side_effect(void)
{
        return ++evaluations;
}

TEST(level_filter)
{
        capture(BBT_LOG_PREFIX_SYSLOG);
        ASSERT_OK(bbt_log_set_level(BBT_LOG_WARNING));
        ASSERT_EQ(bbt_log_get_level(), BBT_LOG_WARNING);
        bbt_log_info("hidden %d", side_effect());
        bbt_log_debug("hidden %d", side_effect());
        bbt_log(BBT_LOG_NOTICE, "hidden too");
        ASSERT_EQ(evaluations, 0); /* disabled: arguments not even evaluated */
        bbt_log_warning("shown %d", side_effect());
        bbt_log_error("shown");
        ASSERT_EQ(evaluations, 1);
        ASSERT_STR_EQ(captured(NULL), "<4>shown 1\n<3>shown\n");
}

TEST(set_level_rejects_out_of_range)
{
        ASSERT_OK(bbt_log_set_level(BBT_LOG_NOTICE));
        ASSERT_EQ(bbt_log_set_level(2), -EINVAL);
        ASSERT_EQ(bbt_log_set_level(8), -EINVAL);
        ASSERT_EQ(bbt_log_get_level(), BBT_LOG_NOTICE);
        ASSERT_EQ(bbt_log_set_prefix((enum bbt_log_prefix)42), -EINVAL);
}

TEST(level_parse)
{
        int level = -1;

        ASSERT_OK(bbt_log_level_parse("error", &level));
        ASSERT_EQ(level, BBT_LOG_ERR);
        ASSERT_OK(bbt_log_level_parse("warning", &level));
        ASSERT_EQ(level, BBT_LOG_WARNING);
        ASSERT_OK(bbt_log_level_parse("notice", &level));
        ASSERT_EQ(level, BBT_LOG_NOTICE);
        ASSERT_OK(bbt_log_level_parse("info", &level));
        ASSERT_EQ(level, BBT_LOG_INFO);
        ASSERT_OK(bbt_log_level_parse("DEBUG", &level));
        ASSERT_EQ(level, BBT_LOG_DEBUG);

        level = 99;
        ASSERT_EQ(bbt_log_level_parse("err", &level), -EINVAL);
        ASSERT_EQ(bbt_log_level_parse("", &level), -EINVAL);
        ASSERT_EQ(bbt_log_level_parse("info ", &level), -EINVAL);
        ASSERT_EQ(bbt_log_level_parse(NULL, &level), -EINVAL);
        ASSERT_EQ(level, 99); /* untouched on failure */

        ASSERT_STR_EQ(bbt_log_level_name(BBT_LOG_WARNING), "warning");
        ASSERT(bbt_log_level_name(8) == NULL);
        ASSERT(bbt_log_level_name(-1) == NULL);
}

TEST(truncation)
{
        char msg[5000];
        const char *out;
        size_t len;

        memset(msg, 'a', sizeof(msg) - 1);
        msg[sizeof(msg) - 1] = '\0';
        capture(BBT_LOG_PREFIX_SYSLOG);
        bbt_log_error("%s", msg);
        out = captured(&len);
        ASSERT_EQ(len, BBT_LOG_LINE_MAX);
        ASSERT_EQ(count_char(out, len, '\n'), 1);
        ASSERT(strncmp(out, "<3>aaaa", 7) == 0);
        ASSERT_STR_EQ(out + len - 5, "a...\n");
}

TEST(truncation_fits_exactly)
{
        /* "<3>" + message + "\n" filling the buffer exactly is not cut. */
        char msg[BBT_LOG_LINE_MAX - 3 - 1 + 1];
        size_t len;

        memset(msg, 'b', sizeof(msg) - 1);
        msg[sizeof(msg) - 1] = '\0';
        capture(BBT_LOG_PREFIX_SYSLOG);
        bbt_log_error("%s", msg);
        ASSERT(strstr(captured(&len), "...") == NULL);
        ASSERT_EQ(len, BBT_LOG_LINE_MAX);
        bbt_log_error("%sb", msg);
        ASSERT_STR_CONTAINS(captured(&len), "b...\n");
        ASSERT_EQ(len, BBT_LOG_LINE_MAX);
}

TEST(truncation_keeps_utf8_whole)
{
        /* "班" is 3 bytes: a cut must not leave a partial sequence before "...". */
        char msg[3 * 1000 + 1];
        const char *out;
        size_t len, body, i;

        for (i = 0; i < 1000; i++)
                memcpy(msg + 3 * i, "班", 3);
        msg[sizeof(msg) - 1] = '\0';
        capture(BBT_LOG_PREFIX_SYSLOG);
        bbt_log_info("%s", msg);
        out = captured(&len);
        ASSERT_LE(len, BBT_LOG_LINE_MAX);
        ASSERT_STR_EQ(out + len - 4, "...\n");
        body = len - 3 - 4; /* minus "<6>" and "...\n" */
        ASSERT_EQ(body % 3, 0);
        for (i = 0; i < body; i += 3)
                ASSERT(memcmp(out + 3 + i, "班", 3) == 0);
}

TEST(newlines_replaced)
{
        capture(BBT_LOG_PREFIX_SYSLOG);
        bbt_log_info("first\nsecond\r\nthird\n");
        bbt_log_info("tab\tkept, escape \x1b[31m and del \x7f replaced");
        bbt_log_info("\n");
        ASSERT_STR_EQ(captured(NULL), "<6>first second  third\n"
                                      "<6>tab\tkept, escape ?[31m and del ? replaced\n"
                                      "<6>\n");
}

TEST(one_line_per_call)
{
        const char *out;
        size_t len;
        int i;

        capture(BBT_LOG_PREFIX_TTY);
        for (i = 0; i < 100; i++)
                bbt_log_info("line %d\nwith a newline inside", i);
        out = captured(&len);
        ASSERT_EQ(count_char(out, len, '\n'), 100);
        ASSERT(strncmp(out, "bbt-test: info: line 0 with a newline inside\n", 45) == 0);
}

TEST(errno_preserved)
{
        capture(BBT_LOG_PREFIX_SYSLOG);
        errno = ENOENT;
        bbt_log_error("open: %m");
        ASSERT_EQ(errno, ENOENT);
        ASSERT_STR_EQ(captured(NULL), "<3>open: No such file or directory\n");

        /* A write that fails leaves errno alone too. */
        bbt_log_set_fd(-1);
        errno = EAGAIN;
        bbt_log_error("into the void");
        ASSERT_EQ(errno, EAGAIN);
}

static char fork_dir[] = "/tmp/bbt-test-log-XXXXXX";
static char fork_file[sizeof(fork_dir) + 16];

static void remove_fork_files(void)
{
        unlink(fork_file);
        rmdir(fork_dir);
}

TEST(forked_children_do_not_interleave)
{
        enum { CHILDREN = 4, LINES = 300, WIDTH = 1500 };
        static char out[CHILDREN * LINES * (WIDTH + 64)];
        char fill[WIDTH + 1];
        size_t len = 0, lines = 0;
        ssize_t k;
        char *line, *save = NULL;
        int fd, i, j, status;

        ASSERT(mkdtemp(fork_dir) != NULL);
        snprintf(fork_file, sizeof(fork_file), "%s/log", fork_dir);
        atexit(remove_fork_files);
        fd = open(fork_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        bbt_log_set_fd(fd);
        ASSERT_OK(bbt_log_set_prefix(BBT_LOG_PREFIX_SYSLOG));
        ASSERT_OK(bbt_log_set_level(BBT_LOG_INFO));

        for (i = 0; i < CHILDREN; i++) {
                pid_t pid = fork();

                ASSERT_GE(pid, 0);
                if (pid == 0) {
                        memset(fill, 'a' + i, WIDTH);
                        fill[WIDTH] = '\0';
                        for (j = 0; j < LINES; j++)
                                bbt_log_info("child %d line %d %s", i, j, fill);
                        _exit(0);
                }
        }
        for (i = 0; i < CHILDREN; i++) {
                ASSERT_GT(wait(&status), 0);
                ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        bbt_log_set_fd(STDERR_FILENO);
        close(fd);

        fd = open(fork_file, O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        while ((k = read(fd, out + len, sizeof(out) - 1 - len)) > 0)
                len += (size_t)k;
        close(fd);
        out[len] = '\0';

        for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                int child, n, consumed = 0;
                size_t rest;

                ASSERT_EQ(sscanf(line, "<6>child %d line %d %n", &child, &n, &consumed), 2);
                ASSERT(child >= 0 && child < CHILDREN);
                rest = strlen(line + consumed);
                ASSERT_EQ(rest, WIDTH);
                memset(fill, 'a' + child, WIDTH);
                ASSERT(memcmp(line + consumed, fill, WIDTH) == 0);
                lines++;
        }
        ASSERT_EQ(lines, CHILDREN * LINES);
}
