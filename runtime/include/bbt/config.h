/* INI configuration read into a caller's struct through a table of option descriptors. */
#ifndef BBT_CONFIG_H
#define BBT_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "bbt/base.h"

/* The type of an option, and the C type of the field at its offset. */
enum bbt_option_type {
        BBT_OPT_STRING,   /* char *, malloc'd ("" for an empty value), freed by bbt_config_free() */
        BBT_OPT_PATH,     /* char *, malloc'd; must be absolute; an empty value stores NULL */
        BBT_OPT_BOOL,     /* bool: true/false, yes/no, on/off, 1/0 (any case) */
        BBT_OPT_INT,      /* long long, decimal with optional sign */
        BBT_OPT_DURATION, /* long long milliseconds: "250ms", "30s", "5m", "2h", "1d", "1h30m";
                             a bare number is seconds */
        BBT_OPT_SIZE,     /* long long bytes: "512", "64K", "10M", "1G", "1T" (powers of 1024) */
        BBT_OPT_ENUM,     /* int: index into enum_values (matched in any case) */
};

/* One option. A table of these (one per key, like redis' static_configs[])
 * describes a daemon's whole configuration. */
struct bbt_option {
        const char *section;        /* "[section]" it lives in; "" for keys before any section */
        const char *name;           /* key within the section */
        enum bbt_option_type type;
        size_t offset;              /* offsetof(struct your_config, field) */
        const char *default_value;  /* as it would be written in the file; NULL: NULL/0/false/index 0 */
        long long min, max;         /* INT, DURATION (ms), SIZE (bytes); both 0: no bounds (for
                                       DURATION and SIZE that still means >= 0). LLONG_MIN or
                                       LLONG_MAX leave one end open. */
        const char *const *enum_values; /* ENUM: NULL-terminated list of accepted names */
        const char *help;           /* one line, printed above the key by bbt_config_dump() */
};

/* Fills the fields the table names in RET with the defaults. RET's previous
 * field values are overwritten, not freed. Returns 0; or -EINVAL if a default
 * in the table does not parse (a bug in the table; RET untouched, ERR says
 * which), or -ENOMEM. ERR (may be NULL) gets a one-line message on failure. */
BBT_API int bbt_config_defaults(const struct bbt_option *opts, size_t n_opts, void *ret,
                                char *err, size_t err_size);

/* Reads the INI file at PATH over the defaults into RET. On success the fields
 * the table names are overwritten (not freed: load into a fresh struct, then
 * bbt_config_free() the old one and swap) and RET owns the strings in them.
 * On failure RET is untouched and ERR (may be NULL) holds the first problem as
 * "PATH:LINE: [section] key: what is wrong" or "PATH: strerror".
 * Returns 0, -ENOENT / -EACCES / ... if the file cannot be read, -EINVAL for
 * bad content, -ENOMEM. */
BBT_API int bbt_config_load(const struct bbt_option *opts, size_t n_opts, const char *path,
                            void *ret, char *err, size_t err_size);

/* bbt_config_load() into a scratch struct of SIZE bytes, then CHECK (may be
 * NULL) for what one key alone cannot say; only when both pass is the result
 * copied into RET. CHECK returns 0 or a negative errno with ERR filled as
 * "PATH: [section] key: what is wrong"; it may normalise the struct. RET is
 * untouched on failure and the scratch struct's strings are freed. */
BBT_API int bbt_config_load_checked(const struct bbt_option *opts, size_t n_opts, const char *path, void *ret,
                                    size_t size, int (*check)(const char *path, void *cfg, char *err, size_t err_size),
                                    char *err, size_t err_size);

/* Sets the option KEY ("section.name", or "name" for a key outside any section)
 * in CFG to VALUE, parsed and checked as in a file (e.g. a command-line
 * override). A string the field held before is freed. Returns 0, or -ENOENT
 * for an unknown key, -EINVAL for a bad value, -ENOMEM; CFG is untouched on
 * failure and ERR (may be NULL) holds "KEY: what is wrong". */
BBT_API int bbt_config_set(const struct bbt_option *opts, size_t n_opts, void *cfg,
                           const char *key, const char *value, char *err, size_t err_size);

/* Frees the strings the table names in CFG and sets them to NULL. CFG itself is
 * the caller's. NULL CFG is a no-op; calling it twice is harmless. */
BBT_API void bbt_config_free(const struct bbt_option *opts, size_t n_opts, void *cfg);

/* Writes CFG to OUT as an INI file that bbt_config_load() reads back to the same
 * values: keys grouped by section in table order, each preceded by its help as a
 * "#" comment. Returns 0, -EINVAL for a NULL argument or a bad table, or -EIO
 * if writing failed. */
BBT_API int bbt_config_dump(const struct bbt_option *opts, size_t n_opts, const void *cfg,
                            FILE *out);

#ifdef __cplusplus
}
#endif

#endif
