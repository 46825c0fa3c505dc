/* Daemon logging: one line per call on stderr, "<N>" syslog prefixes for journald, plain on a TTY. */
#include "bbt/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define IDENT_MAX 64

int bbt__log_max_level = BBT_LOG_INFO;

/* Process-wide: set up once at start-up from the one loop thread. */
static int log_fd = STDERR_FILENO;
static enum bbt_log_prefix prefix_mode = BBT_LOG_PREFIX_AUTO;
static bool tty_checked;
static bool fd_is_tty;
static char log_ident[IDENT_MAX];

static const char *const level_names[] = {
        [BBT_LOG_ERR] = "error", [BBT_LOG_WARNING] = "warning", [BBT_LOG_NOTICE] = "notice",
        [BBT_LOG_INFO] = "info", [BBT_LOG_DEBUG] = "debug",
};

void bbt_log_init(const char *ident)
{
        if (ident)
                snprintf(log_ident, sizeof(log_ident), "%s", ident);
        tty_checked = false;
}

int bbt_log_set_level(int level)
{
        if (level < BBT_LOG_ERR || level > BBT_LOG_DEBUG)
                return -EINVAL;
        bbt__log_max_level = level;
        return 0;
}

int bbt_log_get_level(void)
{
        return bbt__log_max_level;
}

int bbt_log_level_parse(const char *name, int *ret)
{
        int level;

        if (!name)
                return -EINVAL;
        for (level = BBT_LOG_ERR; level <= BBT_LOG_DEBUG; level++)
                if (strcasecmp(name, level_names[level]) == 0) {
                        if (ret)
                                *ret = level;
                        return 0;
                }
        return -EINVAL;
}

const char *bbt_log_level_name(int level)
{
        if (level < BBT_LOG_ERR || level > BBT_LOG_DEBUG)
                return NULL;
        return level_names[level];
}

void bbt_log_set_fd(int fd)
{
        log_fd = fd;
        tty_checked = false;
}

int bbt_log_set_prefix(enum bbt_log_prefix mode)
{
        if (mode != BBT_LOG_PREFIX_AUTO && mode != BBT_LOG_PREFIX_SYSLOG &&
            mode != BBT_LOG_PREFIX_TTY)
                return -EINVAL;
        prefix_mode = mode;
        return 0;
}

static bool use_tty_prefix(void)
{
        if (prefix_mode != BBT_LOG_PREFIX_AUTO)
                return prefix_mode == BBT_LOG_PREFIX_TTY;
        if (!tty_checked) {
                /* Checked once per fd rather than per line: isatty() is a syscall. */
                fd_is_tty = isatty(log_fd) == 1;
                tty_checked = true;
        }
        return fd_is_tty;
}

/* Writes all of BUF, retrying short writes and EINTR; gives up on other errors
 * (there is nowhere left to report a failing log). */
static void write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t k = write(fd, buf, len);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                buf += k;
                len -= (size_t)k;
        }
}

void bbt_log(int level, const char *fmt, ...)
{
        char line[BBT_LOG_LINE_MAX];
        int saved_errno = errno;
        size_t start, len, avail, i;
        va_list ap;
        int n;

        if (level > bbt__log_max_level)
                return;
        if (level < BBT_LOG_ERR)
                level = BBT_LOG_ERR;

        if (use_tty_prefix())
                n = snprintf(line, sizeof(line), "%s: %s: ",
                             log_ident[0] ? log_ident : program_invocation_short_name,
                             level_names[level]);
        else
                n = snprintf(line, sizeof(line), "<%d>", level);
        /* The ident is at most IDENT_MAX - 1 bytes, so the prefix always fits. */
        start = n > 0 ? (size_t)n : 0;

        /* vsnprintf's NUL lands where the final "\n" goes: no NUL is written out. */
        avail = sizeof(line) - start;
        errno = saved_errno;
        va_start(ap, fmt);
        n = vsnprintf(line + start, avail, fmt, ap);
        va_end(ap);

        if (n < 0) {
                n = snprintf(line + start, avail, "(bad log format: %s)", fmt);
                len = start + (n < 0 ? 0 : (size_t)n < avail ? (size_t)n : avail - 1);
        } else if ((size_t)n >= avail) {
                /* Cut: end in "..." without splitting a UTF-8 sequence. */
                size_t cut = start + avail - 1 - 3;

                while (cut > start && ((unsigned char)line[cut] & 0xC0) == 0x80)
                        cut--;
                memcpy(line + cut, "...", 3);
                len = cut + 3;
        } else {
                len = start + (size_t)n;
                while (len > start && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        len--;
        }

        for (i = start; i < len; i++) {
                unsigned char c = (unsigned char)line[i];

                if (c == '\n' || c == '\r')
                        line[i] = ' ';
                else if ((c < 0x20 && c != '\t') || c == 0x7f)
                        line[i] = '?';
        }
        line[len++] = '\n';

        write_all(log_fd, line, len);
        errno = saved_errno;
}
