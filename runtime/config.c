/* INI configuration read into a caller's struct through a table of option descriptors. */
#include "bbt/config.h"
#include "bbt/base.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

/* Room for "expected ..., got "<value>"": values are at most one line (< 200 bytes
 * with Debian's libinih), enum lists a few dozen names. */
#define WHY_MAX 1024

union value {
        char *str;
        bool boolean;
        long long num;
        int index;
};

struct unit {
        const char *suffix;
        long long factor;
};

/* Largest first: formatting picks the first that divides the value exactly. */
static const struct unit duration_units[] = {
        { "d", 86400000LL }, { "h", 3600000LL }, { "m", 60000LL }, { "s", 1000LL }, { "ms", 1LL },
};
static const struct unit size_units[] = {
        { "T", 1LL << 40 }, { "G", 1LL << 30 }, { "M", 1LL << 20 }, { "K", 1LL << 10 },
};

static const char *const bool_true[] = { "true", "yes", "on", "1" };
static const char *const bool_false[] = { "false", "no", "off", "0" };


/* State shared by the inih reader and handler callbacks while loading one file. */
struct load_state {
        const struct bbt_option *opts;
        size_t n_opts;
        unsigned char *cfg;  /* the temporary being filled, not the caller's struct */
        unsigned *set_line;  /* per option: the line that set it, 0 if none yet */
        FILE *file;
        const char *path;
        unsigned line;       /* number of the line last handed to inih */
        int error;           /* first error as negative errno, 0 if none */
        unsigned error_line; /* its line, 0 if it is not about a line (I/O) */
        unsigned hint_line;  /* first line that looks malformed, for inih's syntax errors */
        const char *hint;
        char *err;
        size_t err_size;
};

/* Appends to BUF at *POS, never past SIZE; *POS stops at SIZE - 1 once full. */
static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (*pos + 1 >= size)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        *pos = (size_t)n >= size - *pos ? size - 1 : *pos + (size_t)n;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_string_type(enum bbt_option_type type)
{
        return type == BBT_OPT_STRING || type == BBT_OPT_PATH;
}

static size_t field_size(enum bbt_option_type type)
{
        switch (type) {
        case BBT_OPT_STRING:
        case BBT_OPT_PATH:
                return sizeof(char *);
        case BBT_OPT_BOOL:
                return sizeof(bool);
        case BBT_OPT_INT:
        case BBT_OPT_DURATION:
        case BBT_OPT_SIZE:
                return sizeof(long long);
        case BBT_OPT_ENUM:
                return sizeof(int);
        }
        return 0;
}

/* Fields are read and written with memcpy: the offset comes from the caller's
 * table, and this way a wrong one is a wrong value rather than a misaligned access. */
static void field_get(const struct bbt_option *o, const void *cfg, union value *ret)
{
        const unsigned char *p = (const unsigned char *)cfg + o->offset;

        memset(ret, 0, sizeof(*ret));
        switch (o->type) {
        case BBT_OPT_STRING:
        case BBT_OPT_PATH:
                memcpy(&ret->str, p, sizeof(ret->str));
                break;
        case BBT_OPT_BOOL:
                memcpy(&ret->boolean, p, sizeof(ret->boolean));
                break;
        case BBT_OPT_INT:
        case BBT_OPT_DURATION:
        case BBT_OPT_SIZE:
                memcpy(&ret->num, p, sizeof(ret->num));
                break;
        case BBT_OPT_ENUM:
                memcpy(&ret->index, p, sizeof(ret->index));
                break;
        }
}

/* Stores V into the field, freeing the string it held; the field owns V's string after. */
static void field_put(const struct bbt_option *o, void *cfg, const union value *v)
{
        unsigned char *p = (unsigned char *)cfg + o->offset;

        switch (o->type) {
        case BBT_OPT_STRING:
        case BBT_OPT_PATH: {
                char *old;

                memcpy(&old, p, sizeof(old));
                free(old);
                memcpy(p, &v->str, sizeof(v->str));
                break;
        }
        case BBT_OPT_BOOL:
                memcpy(p, &v->boolean, sizeof(v->boolean));
                break;
        case BBT_OPT_INT:
        case BBT_OPT_DURATION:
        case BBT_OPT_SIZE:
                memcpy(p, &v->num, sizeof(v->num));
                break;
        case BBT_OPT_ENUM:
                memcpy(p, &v->index, sizeof(v->index));
                break;
        }
}

/* Bytes a scratch copy of the caller's struct needs to hold every field in the table. */
static size_t scratch_size(const struct bbt_option *opts, size_t n_opts)
{
        size_t i, size = 1;

        for (i = 0; i < n_opts; i++)
                if (opts[i].offset + field_size(opts[i].type) > size)
                        size = opts[i].offset + field_size(opts[i].type);
        return size;
}

/* The accepted range of a numeric option, with "both 0" meaning no bounds. */
static void option_bounds(const struct bbt_option *o, long long *ret_min, long long *ret_max)
{
        long long floor = o->type == BBT_OPT_INT ? LLONG_MIN : 0;

        if (o->min == 0 && o->max == 0) {
                *ret_min = floor;
                *ret_max = LLONG_MAX;
                return;
        }
        *ret_min = o->min < floor ? floor : o->min;
        *ret_max = o->max;
}

static void format_duration(long long ms, char *buf, size_t size)
{
        size_t i;

        if (ms == 0) {
                snprintf(buf, size, "0s");
                return;
        }
        for (i = 0; i < BBT_ELEMENTSOF(duration_units); i++)
                if (ms % duration_units[i].factor == 0) {
                        snprintf(buf, size, "%lld%s", ms / duration_units[i].factor,
                                 duration_units[i].suffix);
                        return;
                }
}

static void format_size(long long bytes, char *buf, size_t size)
{
        size_t i;

        if (bytes != 0)
                for (i = 0; i < BBT_ELEMENTSOF(size_units); i++)
                        if (bytes % size_units[i].factor == 0) {
                                snprintf(buf, size, "%lld%s", bytes / size_units[i].factor,
                                         size_units[i].suffix);
                                return;
                        }
        snprintf(buf, size, "%lld", bytes);
}

static void format_number(const struct bbt_option *o, long long v, char *buf, size_t size)
{
        if (o->type == BBT_OPT_DURATION)
                format_duration(v, buf, size);
        else if (o->type == BBT_OPT_SIZE)
                format_size(v, buf, size);
        else
                snprintf(buf, size, "%lld", v);
}

/* Writes "expected <what the option takes>, got "VALUE"" into WHY. */
static void describe_expected(const struct bbt_option *o, const char *value, char *why,
                              size_t why_size)
{
        size_t pos = 0, i;

        append(why, why_size, &pos, "expected ");
        switch (o->type) {
        case BBT_OPT_STRING:
                append(why, why_size, &pos, "a single-line string");
                break;
        case BBT_OPT_PATH:
                append(why, why_size, &pos, "an absolute path");
                break;
        case BBT_OPT_BOOL:
                append(why, why_size, &pos, "a boolean (true/false, yes/no, on/off, 1/0)");
                break;
        case BBT_OPT_ENUM:
                append(why, why_size, &pos, "one of ");
                for (i = 0; o->enum_values[i]; i++)
                        append(why, why_size, &pos, "%s%s", i ? "|" : "", o->enum_values[i]);
                break;
        case BBT_OPT_INT:
        case BBT_OPT_DURATION:
        case BBT_OPT_SIZE: {
                long long lo, hi, floor = o->type == BBT_OPT_INT ? LLONG_MIN : 0;
                char lo_text[32], hi_text[32];

                option_bounds(o, &lo, &hi);
                format_number(o, lo, lo_text, sizeof(lo_text));
                format_number(o, hi, hi_text, sizeof(hi_text));
                append(why, why_size, &pos, "%s",
                       o->type == BBT_OPT_INT        ? "an integer"
                       : o->type == BBT_OPT_DURATION ? "a duration"
                                                     : "a size");
                if (lo != floor && hi != LLONG_MAX)
                        append(why, why_size, &pos, " between %s and %s", lo_text, hi_text);
                else if (lo != floor)
                        append(why, why_size, &pos, " of at least %s", lo_text);
                else if (hi != LLONG_MAX)
                        append(why, why_size, &pos, " of at most %s", hi_text);
                break;
        }
        }
        append(why, why_size, &pos, ", got \"%s\"", value);
}

/* Decimal integer with optional sign, nothing else (no spaces, no 0x). */
static int parse_integer(const char *s, long long *ret)
{
        const char *digits = (*s == '-' || *s == '+') ? s + 1 : s;
        char *end;
        long long v;

        if (!is_digit(*digits))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Reads the run of digits at *P into RET, advancing *P; -ERANGE past LLONG_MAX. */
static int parse_digits(const char **p, long long *ret)
{
        long long n = 0;

        if (!is_digit(**p))
                return -EINVAL;
        for (; is_digit(**p); (*p)++) {
                int d = **p - '0';

                if (n > (LLONG_MAX - d) / 10)
                        return -ERANGE;
                n = n * 10 + d;
        }
        *ret = n;
        return 0;
}

/* "250ms", "30s", "5m", "2h", "1d", combined as in "1h30m"; a lone bare number is
 * seconds. Units in any case. RET in milliseconds. */
static int parse_duration(const char *s, long long *ret)
{
        const char *p = s;
        long long total = 0;
        int parts = 0, r;

        if (*p == '\0')
                return -EINVAL;
        while (*p != '\0') {
                const char *unit;
                long long n, factor = 0;
                size_t len, i;

                r = parse_digits(&p, &n);
                if (r < 0)
                        return r;
                unit = p;
                while (*p != '\0' && !is_digit(*p))
                        p++;
                len = (size_t)(p - unit);
                if (len == 0 && parts == 0 && *p == '\0')
                        factor = 1000;
                for (i = 0; len > 0 && i < BBT_ELEMENTSOF(duration_units); i++)
                        if (strlen(duration_units[i].suffix) == len &&
                            strncasecmp(unit, duration_units[i].suffix, len) == 0)
                                factor = duration_units[i].factor;
                if (factor == 0)
                        return -EINVAL;
                if (n > LLONG_MAX / factor || total > LLONG_MAX - n * factor)
                        return -ERANGE;
                total += n * factor;
                parts++;
        }
        *ret = total;
        return 0;
}

/* "512", "64K", "10M", "1G", "1T" (powers of 1024, any case). RET in bytes. */
static int parse_size(const char *s, long long *ret)
{
        const char *p = s;
        long long n, factor = 1;
        size_t i;
        int r;

        r = parse_digits(&p, &n);
        if (r < 0)
                return r;
        if (*p != '\0') {
                factor = 0;
                for (i = 0; i < BBT_ELEMENTSOF(size_units); i++)
                        if (strcasecmp(p, size_units[i].suffix) == 0)
                                factor = size_units[i].factor;
                if (factor == 0)
                        return -EINVAL;
        }
        if (n > LLONG_MAX / factor)
                return -ERANGE;
        *ret = n * factor;
        return 0;
}

static int parse_bool(const char *s, bool *ret)
{
        size_t i;

        for (i = 0; i < BBT_ELEMENTSOF(bool_true); i++) {
                if (strcasecmp(s, bool_true[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, bool_false[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* Parses TEXT for option O into RET (a malloc'd string for string types, owned by
 * the caller). Returns 0, -EINVAL with WHY set, or -ENOMEM. */
static int parse_value(const struct bbt_option *o, const char *text, union value *ret,
                       char *why, size_t why_size)
{
        union value v;
        long long lo, hi;
        int r = 0;
        size_t i;

        memset(&v, 0, sizeof(v));
        switch (o->type) {
        case BBT_OPT_STRING:
        case BBT_OPT_PATH:
                if (strpbrk(text, "\r\n")) {
                        r = -EINVAL;
                        break;
                }
                if (o->type == BBT_OPT_PATH && text[0] == '\0')
                        break; /* unset */
                if (o->type == BBT_OPT_PATH && text[0] != '/') {
                        r = -EINVAL;
                        break;
                }
                v.str = strdup(text);
                if (!v.str) {
                        snprintf(why, why_size, "out of memory");
                        return -ENOMEM;
                }
                break;
        case BBT_OPT_BOOL:
                r = parse_bool(text, &v.boolean);
                break;
        case BBT_OPT_INT:
        case BBT_OPT_DURATION:
        case BBT_OPT_SIZE:
                r = o->type == BBT_OPT_INT        ? parse_integer(text, &v.num)
                    : o->type == BBT_OPT_DURATION ? parse_duration(text, &v.num)
                                                  : parse_size(text, &v.num);
                option_bounds(o, &lo, &hi);
                if (r == 0 && (v.num < lo || v.num > hi))
                        r = -ERANGE;
                break;
        case BBT_OPT_ENUM:
                r = -EINVAL;
                for (i = 0; o->enum_values[i]; i++)
                        if (strcasecmp(text, o->enum_values[i]) == 0) {
                                v.index = (int)i;
                                r = 0;
                                break;
                        }
                break;
        }
        if (r < 0) {
                describe_expected(o, text, why, why_size);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* Writes "[section] name" (or "name" outside any section) into BUF. */
static void key_label(const char *section, const char *name, char *buf, size_t size)
{
        if (section[0] != '\0')
                snprintf(buf, size, "[%s] %s", section, name);
        else
                snprintf(buf, size, "%s", name);
}

/* Catches mistakes in a table (they are bugs, so they are reported up front).
 * Returns 0 or -EINVAL with ERR set. */
static int check_table(const struct bbt_option *opts, size_t n_opts, char *err, size_t err_size)
{
        size_t i, j;

        if (!opts && n_opts > 0) {
                bbt_set_err(err, err_size, "option table: NULL");
                return -EINVAL;
        }
        for (i = 0; i < n_opts; i++) {
                const struct bbt_option *o = &opts[i];
                const char *bad = NULL;

                if (!o->section || !o->name || o->name[0] == '\0') {
                        bbt_set_err(err, err_size, "option table: entry %zu: no section or name", i);
                        return -EINVAL;
                }
                if (field_size(o->type) == 0)
                        bad = "unknown type";
                else if (o->type == BBT_OPT_ENUM && (!o->enum_values || !o->enum_values[0]))
                        bad = "enum without values";
                else if (o->min > o->max)
                        bad = "min above max";
                for (j = 0; !bad && j < i; j++)
                        if (strcmp(opts[j].section, o->section) == 0 &&
                            strcmp(opts[j].name, o->name) == 0)
                                bad = "listed twice";
                if (bad) {
                        char label[256];

                        key_label(o->section, o->name, label, sizeof(label));
                        bbt_set_err(err, err_size, "option table: %s: %s", label, bad);
                        return -EINVAL;
                }
        }
        return 0;
}

static void free_strings(const struct bbt_option *opts, size_t n_opts, void *cfg)
{
        static const union value unset;
        size_t i;

        for (i = 0; i < n_opts; i++)
                if (is_string_type(opts[i].type))
                        field_put(&opts[i], cfg, &unset);
}

/* Moves every field the table names from SCRATCH to RET (strings change owner). */
static void move_fields(const struct bbt_option *opts, size_t n_opts, void *ret,
                        const unsigned char *scratch)
{
        size_t i;

        for (i = 0; i < n_opts; i++)
                memcpy((unsigned char *)ret + opts[i].offset, scratch + opts[i].offset,
                       field_size(opts[i].type));
}

/* Sets every option of a zeroed SCRATCH to its default. Returns 0, -EINVAL
 * (a default that does not parse) or -ENOMEM, with ERR set. */
static int apply_defaults(const struct bbt_option *opts, size_t n_opts, unsigned char *scratch,
                          char *err, size_t err_size)
{
        char why[WHY_MAX], label[256];
        union value v;
        size_t i;
        int r;

        for (i = 0; i < n_opts; i++) {
                if (!opts[i].default_value)
                        continue; /* the zeroed scratch already holds NULL/0/false/index 0 */
                r = parse_value(&opts[i], opts[i].default_value, &v, why, sizeof(why));
                if (r < 0) {
                        key_label(opts[i].section, opts[i].name, label, sizeof(label));
                        bbt_set_err(err, err_size, "default of %s: %s", label, why);
                        return r;
                }
                field_put(&opts[i], scratch, &v);
        }
        return 0;
}

int bbt_config_defaults(const struct bbt_option *opts, size_t n_opts, void *ret, char *err,
                        size_t err_size)
{
        unsigned char *scratch;
        int r;

        if (!ret) {
                bbt_set_err(err, err_size, "%s", strerror(EINVAL));
                return -EINVAL;
        }
        r = check_table(opts, n_opts, err, err_size);
        if (r < 0)
                return r;
        scratch = calloc(1, scratch_size(opts, n_opts));
        if (!scratch) {
                bbt_set_err(err, err_size, "%s", strerror(ENOMEM));
                return -ENOMEM;
        }
        r = apply_defaults(opts, n_opts, scratch, err, err_size);
        if (r < 0) {
                free_strings(opts, n_opts, scratch);
                free(scratch);
                return r;
        }
        move_fields(opts, n_opts, ret, scratch);
        free(scratch);
        return 0;
}

/* Records the first error of a load, at the current line, as "PATH:LINE: MESSAGE". */
static void load_fail(struct load_state *st, int error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void load_fail(struct load_state *st, int error, const char *fmt, ...)
{
        char msg[WHY_MAX + 256];
        va_list ap;

        if (st->error)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        st->error = error;
        st->error_line = st->line;
        bbt_set_err(st->err, st->err_size, "%s:%u: %s", st->path, st->line, msg);
}

static bool section_known(const struct load_state *st, const char *name, size_t len)
{
        size_t i;

        for (i = 0; i < st->n_opts; i++)
                if (strlen(st->opts[i].section) == len &&
                    memcmp(st->opts[i].section, name, len) == 0)
                        return true;
        return false;
}

/* inih's line source (an fgets stand-in). It counts lines, which Debian's
 * libinih (built without INI_HANDLER_LINENO) does not pass to the handler, and
 * normalises each line before inih sees it: drops a UTF-8 BOM, CR of CRLF and
 * leading blanks (so an indented key is a key, never a continuation line), and
 * stops the parse at lines too long for inih's buffer (which it would split),
 * NUL bytes, unknown sections and after the first error. */
static char *reader_cb(char *str, int num, void *stream)
{
        struct load_state *st = stream;
        size_t len = 0, max, skip = 0;
        bool any = false, too_long = false, cr = false;
        int c;

        if (st->error || num < 3)
                return NULL;
        /* inih needs room after the text for "\n" and the NUL. */
        max = (size_t)num - 2;
        errno = 0;
        while ((c = getc(st->file)) != EOF) {
                any = true;
                if (cr && c != '\n') {
                        if (len < max)
                                str[len++] = '\r';
                        else
                                too_long = true;
                }
                cr = c == '\r';
                if (c == '\n')
                        break;
                if (cr)
                        continue;
                if (len < max)
                        str[len++] = (char)c;
                else
                        too_long = true;
        }
        if (ferror(st->file)) {
                int e = errno ? errno : EIO;

                st->error = -e;
                st->error_line = 0;
                bbt_set_err(st->err, st->err_size, "%s: %s", st->path, strerror(e));
                return NULL;
        }
        if (!any)
                return NULL;
        st->line++;

        if (too_long) {
                load_fail(st, -EINVAL, "line too long (more than %zu characters)", max);
                return NULL;
        }
        if (memchr(str, '\0', len)) {
                load_fail(st, -EINVAL, "line contains a NUL byte");
                return NULL;
        }
        if (st->line == 1 && len >= 3 && memcmp(str, "\xEF\xBB\xBF", 3) == 0)
                skip = 3;
        while (skip < len && (str[skip] == ' ' || str[skip] == '\t'))
                skip++;
        memmove(str, str + skip, len - skip);
        len -= skip;
        str[len] = '\n';
        str[len + 1] = '\0';

        if (str[0] == '[') {
                const char *close = memchr(str, ']', len);

                if (!close) {
                        if (!st->hint_line) {
                                st->hint_line = st->line;
                                st->hint = "missing ']' after the section name";
                        }
                } else if (close == str + 1 ||
                           !section_known(st, str + 1, (size_t)(close - str - 1))) {
                        load_fail(st, -EINVAL, "[%.*s]: unknown section", (int)(close - str - 1),
                                  str + 1);
                        return NULL;
                }
        } else if (len > 0 && str[0] != ';' && str[0] != '#' && !memchr(str, '=', len) &&
                   !memchr(str, ':', len) && !st->hint_line) {
                st->hint_line = st->line;
                st->hint = "expected \"key = value\"";
        }
        return str;
}

/* inih's callback for each "key = value" line, with VALUE trimmed and inline
 * comments removed. Returns 1 to go on, 0 after recording an error. */
static int handler_cb(void *user, const char *section, const char *name, const char *value)
{
        struct load_state *st = user;
        char why[WHY_MAX], label[256];
        const struct bbt_option *o = NULL;
        union value v;
        size_t i;
        int r;

        if (st->error)
                return 0;
        if (name[0] == '\0') {
                load_fail(st, -EINVAL, "syntax error: no key before '='");
                return 0;
        }
        key_label(section, name, label, sizeof(label));
        for (i = 0; i < st->n_opts; i++)
                if (strcmp(st->opts[i].section, section) == 0 &&
                    strcmp(st->opts[i].name, name) == 0) {
                        o = &st->opts[i];
                        break;
                }
        if (!o) {
                if (section[0] == '\0' && !section_known(st, "", 0))
                        load_fail(st, -EINVAL, "%s: key outside any section", label);
                else
                        load_fail(st, -EINVAL, "%s: unknown key", label);
                return 0;
        }
        if (st->set_line[i]) {
                load_fail(st, -EINVAL, "%s: duplicate key (first set on line %u)", label,
                          st->set_line[i]);
                return 0;
        }
        r = parse_value(o, value ? value : "", &v, why, sizeof(why));
        if (r < 0) {
                load_fail(st, r, "%s: %s", label, why);
                return 0;
        }
        field_put(o, st->cfg, &v);
        st->set_line[i] = st->line;
        return 1;
}

int bbt_config_load(const struct bbt_option *opts, size_t n_opts, const char *path, void *ret,
                    char *err, size_t err_size)
{
        struct load_state st = {
                .opts = opts, .n_opts = n_opts, .path = path, .err = err, .err_size = err_size,
        };
        int r;

        if (!path || !ret) {
                bbt_set_err(err, err_size, "%s", strerror(EINVAL));
                return -EINVAL;
        }
        r = check_table(opts, n_opts, err, err_size);
        if (r < 0)
                return r;

        st.cfg = calloc(1, scratch_size(opts, n_opts));
        st.set_line = calloc(n_opts ? n_opts : 1, sizeof(*st.set_line));
        if (!st.cfg || !st.set_line) {
                r = -ENOMEM;
                bbt_set_err(err, err_size, "%s", strerror(ENOMEM));
                goto fail_alloc;
        }
        r = apply_defaults(opts, n_opts, st.cfg, err, err_size);
        if (r < 0)
                goto fail_defaults;

        st.file = fopen(path, "re");
        if (!st.file) {
                r = -errno;
                bbt_set_err(err, err_size, "%s: %s", path, strerror(errno));
                goto fail_defaults;
        }

        r = ini_parse_stream(reader_cb, &st, handler_cb, &st);
        /* inih returns the first line it found wrong: a handler error of ours, or
         * its own syntax error, which may come before ours. */
        if (r > 0 && (st.error == 0 || (st.error_line > 0 && (unsigned)r < st.error_line))) {
                st.line = (unsigned)r;
                st.error = 0;
                load_fail(&st, -EINVAL, "syntax error%s%s",
                          st.hint_line == (unsigned)r ? ": " : "",
                          st.hint_line == (unsigned)r ? st.hint : "");
        } else if (r < 0 && st.error == 0) {
                st.error = -ENOMEM;
                bbt_set_err(err, err_size, "%s: %s", path, strerror(ENOMEM));
        }
        if (st.error < 0) {
                r = st.error;
                goto fail_parse;
        }

        move_fields(opts, n_opts, ret, st.cfg);
        fclose(st.file);
        free(st.set_line);
        free(st.cfg);
        return 0;

fail_parse:
        fclose(st.file);
fail_defaults:
        free_strings(opts, n_opts, st.cfg);
fail_alloc:
        free(st.set_line);
        free(st.cfg);
        return r;
}

/* Whether KEY names O: "section.name", or "name" for a key outside any section. */
static bool key_matches(const struct bbt_option *o, const char *key)
{
        size_t n = strlen(o->section);

        if (n == 0)
                return strcmp(key, o->name) == 0;
        return strncmp(key, o->section, n) == 0 && key[n] == '.' &&
               strcmp(key + n + 1, o->name) == 0;
}

int bbt_config_set(const struct bbt_option *opts, size_t n_opts, void *cfg, const char *key,
                   const char *value, char *err, size_t err_size)
{
        const struct bbt_option *o = NULL;
        char why[WHY_MAX];
        char *trimmed;
        size_t i, len;
        union value v;
        int r;

        if (!cfg || !key || !value) {
                bbt_set_err(err, err_size, "%s", strerror(EINVAL));
                return -EINVAL;
        }
        r = check_table(opts, n_opts, err, err_size);
        if (r < 0)
                return r;
        for (i = 0; i < n_opts && !o; i++)
                if (key_matches(&opts[i], key))
                        o = &opts[i];
        if (!o) {
                bbt_set_err(err, err_size, "%s: unknown key", key);
                return -ENOENT;
        }

        /* Trimmed as inih trims a value in a file, so set and load agree. */
        while (*value == ' ' || *value == '\t')
                value++;
        len = strlen(value);
        while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
                len--;
        trimmed = strndup(value, len);
        if (!trimmed) {
                bbt_set_err(err, err_size, "%s: %s", key, strerror(ENOMEM));
                return -ENOMEM;
        }
        r = parse_value(o, trimmed, &v, why, sizeof(why));
        free(trimmed);
        if (r < 0) {
                bbt_set_err(err, err_size, "%s: %s", key, why);
                return r;
        }
        field_put(o, cfg, &v);
        return 0;
}

void bbt_config_free(const struct bbt_option *opts, size_t n_opts, void *cfg)
{
        if (!cfg || !opts)
                return;
        free_strings(opts, n_opts, cfg);
}

/* TEXT as "# " comment lines of at most COMMENT_COLS characters, broken
 * between words (a word longer than that gets a line of its own): the dump
 * must load back, and the loader refuses lines of 200 characters or more. */
#define COMMENT_COLS 100

static void dump_comment(const char *text, FILE *out)
{
        size_t col = 0;

        while (*text) {
                size_t n = strcspn(text, " ");

                if (n > 0) {
                        if (col > 0 && col + 1 + n > COMMENT_COLS) {
                                fputc('\n', out);
                                col = 0;
                        }
                        col += (size_t)fprintf(out, "%s%.*s", col ? " " : "# ", (int)n, text);
                }
                text += n;
                text += strspn(text, " ");
        }
        if (col > 0)
                fputc('\n', out);
}

static void dump_option(const struct bbt_option *o, const void *cfg, FILE *out)
{
        char text[64];
        union value v;

        if (o->help && o->help[0] != '\0')
                dump_comment(o->help, out);
        field_get(o, cfg, &v);
        switch (o->type) {
        case BBT_OPT_STRING:
        case BBT_OPT_PATH:
                if (v.str && v.str[0] == ';')
                        /* "key = ;x" would read back as an inline comment: only a
                         * ';' with a blank before it starts one. */
                        fprintf(out, "%s =%s\n", o->name, v.str);
                else if (v.str)
                        fprintf(out, "%s = %s\n", o->name, v.str);
                else if (o->type == BBT_OPT_PATH)
                        fprintf(out, "%s =\n", o->name);
                else
                        /* Commented out: an empty value would read back as "", not unset. */
                        fprintf(out, "#%s =\n", o->name);
                return;
        case BBT_OPT_BOOL:
                fprintf(out, "%s = %s\n", o->name, v.boolean ? "true" : "false");
                return;
        case BBT_OPT_INT:
        case BBT_OPT_DURATION:
        case BBT_OPT_SIZE:
                format_number(o, v.num, text, sizeof(text));
                fprintf(out, "%s = %s\n", o->name, text);
                return;
        case BBT_OPT_ENUM: {
                size_t count = 0;

                while (o->enum_values[count])
                        count++;
                if (v.index >= 0 && (size_t)v.index < count)
                        fprintf(out, "%s = %s\n", o->name, o->enum_values[v.index]);
                else
                        fprintf(out, "# %s = (invalid index %d)\n", o->name, v.index);
                return;
        }
        }
}

int bbt_config_dump(const struct bbt_option *opts, size_t n_opts, const void *cfg, FILE *out)
{
        bool wrote = false;
        size_t i, j;

        if (!out || !cfg || check_table(opts, n_opts, NULL, 0) < 0)
                return -EINVAL;
        /* Keys outside any section first: in INI they cannot follow a header. */
        for (i = 0; i < n_opts; i++)
                if (opts[i].section[0] == '\0') {
                        dump_option(&opts[i], cfg, out);
                        wrote = true;
                }
        /* Then each section once, in order of first appearance in the table. */
        for (i = 0; i < n_opts; i++) {
                bool seen = opts[i].section[0] == '\0';

                for (j = 0; j < i && !seen; j++)
                        seen = strcmp(opts[j].section, opts[i].section) == 0;
                if (seen)
                        continue;
                fprintf(out, "%s[%s]\n", wrote ? "\n" : "", opts[i].section);
                wrote = true;
                for (j = i; j < n_opts; j++)
                        if (strcmp(opts[j].section, opts[i].section) == 0)
                                dump_option(&opts[j], cfg, out);
        }
        if (fflush(out) != 0 || ferror(out))
                return -EIO;
        return 0;
}

int bbt_config_load_checked(const struct bbt_option *opts, size_t n_opts, const char *path, void *ret,
                            size_t size, int (*check)(const char *path, void *cfg, char *err, size_t err_size),
                            char *err, size_t err_size)
{
        void *c = calloc(1, size);
        int r;

        if (!c)
                return -ENOMEM;
        r = bbt_config_load(opts, n_opts, path, c, err, err_size);
        if (r == 0 && check)
                r = check(path, c, err, err_size);
        if (r == 0)
                memcpy(ret, c, size);
        else
                bbt_config_free(opts, n_opts, c);
        free(c);
        return r;
}
