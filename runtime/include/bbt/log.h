/* Daemon logging: one line per call on stderr, "<N>" syslog prefixes for journald, plain on a TTY. */
#ifndef BBT_LOG_H
#define BBT_LOG_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "bbt/base.h"

/* Levels are syslog priorities: journald reads "<N>" off the start of each line. */
enum {
        BBT_LOG_ERR = 3,
        BBT_LOG_WARNING = 4,
        BBT_LOG_NOTICE = 5,
        BBT_LOG_INFO = 6,
        BBT_LOG_DEBUG = 7,
};

/* Longest line written, prefix and "\n" included. Below PIPE_BUF (4096), so a line
 * written to a pipe arrives whole even when forked children share the fd. */
#define BBT_LOG_LINE_MAX 2048

/* How each line starts. */
enum bbt_log_prefix {
        BBT_LOG_PREFIX_AUTO,   /* TTY if the fd is a terminal, else SYSLOG (the default) */
        BBT_LOG_PREFIX_SYSLOG, /* "<3>message": what journald parses off a stream */
        BBT_LOG_PREFIX_TTY,    /* "ident: error: message" for a human at a terminal */
};

/* Sets the program name shown in TTY mode (copied; NULL keeps the current one,
 * which starts as the executable's name) and re-detects whether the log fd is a
 * TTY. Not thread-safe: call it at start-up, before other threads or forks. */
BBT_API void bbt_log_init(const char *ident);

/* Messages with a level above LEVEL (less severe) are dropped. The default is
 * BBT_LOG_INFO. Returns 0, or -EINVAL (level unchanged) if LEVEL is not 3..7. */
BBT_API int bbt_log_set_level(int level);

/* The current maximum level. */
BBT_API int bbt_log_get_level(void);

/* Parses "error", "warning", "notice", "info" or "debug" (any case) into RET
 * (untouched on failure). Returns 0, or -EINVAL for NULL or any other name. */
BBT_API int bbt_log_level_parse(const char *name, int *ret);

/* The name bbt_log_level_parse() accepts for LEVEL ("error" for 3), or NULL if
 * LEVEL is not 3..7. The string is static. */
BBT_API const char *bbt_log_level_name(int level);

/* Sends log lines to FD (default 2) instead; the caller keeps owning FD. In
 * BBT_LOG_PREFIX_AUTO mode the TTY check is redone for the new fd. For tests
 * and for daemons that log somewhere other than stderr. */
BBT_API void bbt_log_set_fd(int fd);

/* Forces the line prefix style (BBT_LOG_PREFIX_AUTO restores detection).
 * Returns 0, or -EINVAL for an unknown value. */
BBT_API int bbt_log_set_prefix(enum bbt_log_prefix mode);

/* Formats one message and writes it as one line with one write(2). The message
 * is cut to fit BBT_LOG_LINE_MAX and then ends in "..."; a trailing newline is
 * dropped and embedded CR/LF become spaces (other control characters '?'), so
 * one call is always one line. errno is preserved, so "%m" works. Messages
 * above the current level are dropped. */
BBT_API void bbt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Internal: the level threshold the macros below compare against. */
BBT_API extern int bbt__log_max_level;

/* Cheap level check: arguments of a disabled message are not even evaluated,
 * so keep side effects out of them. */
#define bbt_log_at(level, ...)                                                   \
        do {                                                                     \
                if ((level) <= bbt__log_max_level)                               \
                        bbt_log((level), __VA_ARGS__);                           \
        } while (0)

#define bbt_log_error(...) bbt_log_at(BBT_LOG_ERR, __VA_ARGS__)
#define bbt_log_warning(...) bbt_log_at(BBT_LOG_WARNING, __VA_ARGS__)
#define bbt_log_notice(...) bbt_log_at(BBT_LOG_NOTICE, __VA_ARGS__)
#define bbt_log_info(...) bbt_log_at(BBT_LOG_INFO, __VA_ARGS__)
#define bbt_log_debug(...) bbt_log_at(BBT_LOG_DEBUG, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif
