/* CSV reader for registry and calendar imports: decoding, RFC 4180 records parsed in place, headers, messages. */
#include "csv.h"
#include "bbt/base.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* How much of a bad value a message quotes. */
#define SHOWN_MAX 60

struct bbt_csv {
        const struct bbt_csv_column *cols;
        size_t n_cols;
        struct bbt_import_errors *errs;
        size_t n_errors;
        char name[128];        /* base name of the path */

        char *buf;             /* decoded text, NUL-terminated; records are unescaped in place */
        size_t len;
        size_t pos;            /* where the next record starts */
        unsigned line;         /* physical line at POS */
        bool fatal;            /* an unterminated quote ended the file */

        unsigned rec_line;     /* line of the current record */
        char **field;          /* the current record's fields, pointing into BUF */
        size_t n_fields, field_cap;
        int *map;              /* per column: field index in the header, -1 if absent */
        char **header;         /* per column: the header cell as written (copy), NULL if absent */
};

/* Cuts S at its last complete UTF-8 character, so a truncated message stays valid. */
static void utf8_cut_tail(char *s)
{
        size_t len = strlen(s), i = len, need;
        unsigned char c;

        while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
                i--;
        if (i == 0)
                return;
        c = (unsigned char)s[i - 1];
        need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (len - (i - 1) < need)
                s[i - 1] = '\0';
}

static void add_message(struct bbt_csv *csv, const char *prefix, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

static void add_message(struct bbt_csv *csv, const char *prefix, const char *fmt, va_list ap)
{
        struct bbt_import_errors *e = csv->errs;
        char *m;
        int n;

        csv->n_errors++;
        if (!e)
                return;
        e->count++;
        if (e->n_kept >= BBT_IMPORT_ERRORS_KEPT)
                return;
        m = e->msg[e->n_kept++];
        n = snprintf(m, sizeof(e->msg[0]), "%s", prefix);
        if (n >= 0 && (size_t)n < sizeof(e->msg[0]))
                vsnprintf(m + n, sizeof(e->msg[0]) - (size_t)n, fmt, ap);
        utf8_cut_tail(m);
        /* One line each: values quoted into the message (a peripheral word, a
         * code) may hold a line break or tab from a quoted field. */
        for (; *m; m++)
                if ((unsigned char)*m < 0x20 || *m == 0x7f)
                        *m = ' ';
}

void bbt_csv_error_at(struct bbt_csv *csv, unsigned line, const char *fmt, ...)
{
        char prefix[160];
        va_list ap;

        if (line > 0)
                snprintf(prefix, sizeof(prefix), "%s:%u: ", csv->name, line);
        else
                snprintf(prefix, sizeof(prefix), "%s: ", csv->name);
        va_start(ap, fmt);
        add_message(csv, prefix, fmt, ap);
        va_end(ap);
}

static const char *column_label(const struct bbt_csv *csv, size_t col)
{
        const struct bbt_csv_column *c = &csv->cols[col];

        if (csv->header && csv->header[col] && strcasecmp(csv->header[col], c->name) != 0)
                return csv->header[col];
        return c->aliases[0] ? c->aliases[0] : NULL;
}

void bbt_csv_column_error(struct bbt_csv *csv, size_t col, const char *fmt, ...)
{
        char prefix[224];
        const char *label = column_label(csv, col);
        va_list ap;

        if (label)
                snprintf(prefix, sizeof(prefix), "%s:%u: column %s (%s): ", csv->name, csv->rec_line,
                         csv->cols[col].name, label);
        else
                snprintf(prefix, sizeof(prefix), "%s:%u: column %s: ", csv->name, csv->rec_line,
                         csv->cols[col].name);
        va_start(ap, fmt);
        add_message(csv, prefix, fmt, ap);
        va_end(ap);
}

void bbt_csv_bad_value(struct bbt_csv *csv, size_t col, const char *what)
{
        char shown[SHOWN_MAX + 4];
        const char *v = bbt_csv_get(csv, col);
        size_t n = strlen(v);

        snprintf(shown, SHOWN_MAX + 1, "%s", v);
        utf8_cut_tail(shown);
        for (char *p = shown; *p; p++)
                if ((unsigned char)*p < 0x20)
                        *p = ' ';
        if (n > SHOWN_MAX)
                memcpy(shown + strlen(shown), "...", 4);
        bbt_csv_column_error(csv, col, "%s, got \"%s\"", what, shown);
}

size_t bbt_csv_errors(const struct bbt_csv *csv)
{
        return csv->n_errors;
}

const char *bbt_csv_name(const struct bbt_csv *csv)
{
        return csv->name;
}

unsigned bbt_csv_line(const struct bbt_csv *csv)
{
        return csv->rec_line;
}

int bbt_csv_parse_count(const char *s, long max, long *ret)
{
        long v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (max - (*s - '0')) / 10)
                        return -EINVAL;
                v = v * 10 + (*s - '0');
        }
        *ret = v;
        return 0;
}

/* Converts LEN bytes of GB18030 at IN into a new NUL-terminated UTF-8 buffer.
 * Returns 0, -EILSEQ with *RET_BAD the offset of the first bad sequence, -ENOMEM. */
static int gb18030_decode(const char *in, size_t len, char **ret, size_t *ret_len, size_t *ret_bad)
{
        iconv_t cd;
        size_t cap = len + len / 2 + 16, left_in = len, left_out;
        char *out, *src = (char *)in, *dst;
        int r = 0;

        cd = iconv_open("UTF-8", "GB18030");
        if (cd == (iconv_t)-1)
                return -errno;
        out = malloc(cap);
        if (!out) {
                r = -ENOMEM;
                goto out_close;
        }
        dst = out;
        left_out = cap - 1;
        while (left_in > 0) {
                if (iconv(cd, &src, &left_in, &dst, &left_out) != (size_t)-1)
                        break;
                if (errno == E2BIG) {
                        size_t used = (size_t)(dst - out);
                        char *bigger = realloc(out, cap * 2);

                        if (!bigger) {
                                r = -ENOMEM;
                                goto out_free;
                        }
                        out = bigger;
                        cap *= 2;
                        dst = out + used;
                        left_out = cap - 1 - used;
                        continue;
                }
                /* EILSEQ: a bad sequence; EINVAL: one cut off at the end. */
                *ret_bad = (size_t)(src - in);
                r = -EILSEQ;
                goto out_free;
        }
        *dst = '\0';
        *ret_len = (size_t)(dst - out);
        *ret = out;
        out = NULL;
out_free:
        free(out);
out_close:
        iconv_close(cd);
        return r;
}

/* Reads PATH whole into a new buffer. Returns 0, -EFBIG, -ENOMEM or -errno. */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
        struct stat st;
        size_t len = 0, cap;
        char *buf = NULL;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        if (S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                goto out;
        }
        if (st.st_size > (off_t)BBT_CSV_FILE_MAX) {
                r = -EFBIG;
                goto out;
        }
        /* Not trusting st_size (pipes, files that grow): read until EOF, capped. */
        cap = (size_t)st.st_size + 1;
        buf = malloc(cap);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        char *bigger;

                        if (cap > BBT_CSV_FILE_MAX) {
                                r = -EFBIG;
                                goto out;
                        }
                        bigger = realloc(buf, cap * 2);
                        if (!bigger) {
                                r = -ENOMEM;
                                goto out;
                        }
                        buf = bigger;
                        cap *= 2;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > BBT_CSV_FILE_MAX) {
                r = -EFBIG;
                goto out;
        }
        *ret = buf;
        *ret_len = len;
        buf = NULL;
out:
        free(buf);
        close(fd);
        return r;
}

/* Turns the raw bytes into csv->buf as UTF-8. Takes RAW. Returns 0 or -EINVAL/-ENOMEM, reported. */
static int decode(struct bbt_csv *csv, char *raw, size_t len)
{
        const unsigned char *u = (const unsigned char *)raw;
        size_t bad, bad_gb = 0, nul;
        int r;

        if (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff))) {
                bbt_csv_error_at(csv, 0, "UTF-16 is not supported: save the file as \"CSV UTF-8\"");
                free(raw);
                return -EINVAL;
        }
        if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
                bad = bbt_utf8_invalid_at((const char *)u + 3, len - 3);
                if (bad < len - 3) {
                        bbt_csv_error_at(csv, 0, "starts with a UTF-8 BOM but byte 0x%02x at offset %zu is not UTF-8",
                                         u[3 + bad], bad + 3);
                        free(raw);
                        return -EINVAL;
                }
                memmove(raw, raw + 3, len - 3);
                len -= 3;
                csv->buf = raw;
        } else if ((bad = bbt_utf8_invalid_at((const char *)u, len)) == len) {
                csv->buf = raw;
        } else {
                r = gb18030_decode(raw, len, &csv->buf, &len, &bad_gb);
                if (r == -EILSEQ)
                        bbt_csv_error_at(csv, 0,
                                         "neither UTF-8 (byte 0x%02x at offset %zu) nor GB18030 (bad sequence at "
                                         "offset %zu)",
                                         u[bad], bad, bad_gb);
                else if (r < 0)
                        bbt_csv_error_at(csv, 0, "cannot convert from GB18030: %s", strerror(-r));
                free(raw);
                if (r < 0)
                        return r == -ENOMEM ? -ENOMEM : -EINVAL;
        }
        /* read_file leaves room for the terminator: len < cap. */
        csv->buf[len] = '\0';
        csv->len = len;
        nul = strlen(csv->buf);
        if (nul < len) {
                bbt_csv_error_at(csv, 0, "NUL byte at offset %zu (after decoding): not a text file", nul);
                return -EINVAL;
        }
        return 0;
}

static bool is_blank_at(const char *p, size_t *ret_n)
{
        if (*p == ' ' || *p == '\t') {
                *ret_n = 1;
                return true;
        }
        if ((unsigned char)p[0] == 0xe3 && (unsigned char)p[1] == 0x80 && (unsigned char)p[2] == 0x80) {
                *ret_n = 3; /* U+3000 IDEOGRAPHIC SPACE, typed with a Chinese input method */
                return true;
        }
        return false;
}

/* Consumes the line end at csv->pos (LF, CRLF or a lone CR) if there is one. */
static bool eat_newline(struct bbt_csv *csv)
{
        char *b = csv->buf;

        if (b[csv->pos] == '\n' || b[csv->pos] == '\r') {
                if (b[csv->pos] == '\r' && b[csv->pos + 1] == '\n')
                        csv->pos++;
                csv->pos++;
                csv->line++;
                return true;
        }
        return false;
}

static int push_field(struct bbt_csv *csv, char *f)
{
        if (csv->n_fields == csv->field_cap) {
                size_t ncap = csv->field_cap ? csv->field_cap * 2 : 16;
                char **nf = realloc(csv->field, ncap * sizeof(*nf));

                if (!nf)
                        return -ENOMEM;
                csv->field = nf;
                csv->field_cap = ncap;
        }
        csv->field[csv->n_fields++] = f;
        return 0;
}

/* Parses one record at csv->pos into csv->field, unescaping in place (the
 * write position never passes the read position: every field drops at least
 * its delimiter, and the buffer has a spare byte at the end). Returns 1, 0 at
 * the end, -EINVAL (reported; the rest of the record is skipped), -ENOMEM. */
static int parse_record(struct bbt_csv *csv)
{
        char *b = csv->buf;
        size_t w, n;
        bool bad = false;
        int r;

        csv->n_fields = 0;
        if (csv->fatal || csv->pos >= csv->len)
                return 0;
        csv->rec_line = csv->line;
        w = csv->pos;
        for (;;) {
                char *start = b + w, delim;
                size_t flen = 0;

                while (is_blank_at(b + csv->pos, &n))
                        csv->pos += n;
                if (b[csv->pos] == '"') {
                        unsigned qline = csv->line;

                        csv->pos++;
                        for (;;) {
                                char c = b[csv->pos];

                                if (csv->pos >= csv->len) {
                                        bbt_csv_error_at(csv, qline,
                                                         "quoted field not closed before the end of the file");
                                        csv->fatal = true;
                                        return -EINVAL;
                                }
                                if (c == '"' && b[csv->pos + 1] == '"') {
                                        csv->pos += 2;
                                } else if (c == '"') {
                                        csv->pos++;
                                        break;
                                } else if (c == '\r' || c == '\n') {
                                        eat_newline(csv);
                                        c = '\n';
                                } else {
                                        csv->pos++;
                                }
                                if (flen < BBT_CSV_FIELD_MAX)
                                        b[w++] = c;
                                flen++;
                        }
                        while (is_blank_at(b + csv->pos, &n))
                                csv->pos += n;
                        if (b[csv->pos] != ',' && b[csv->pos] != '\r' && b[csv->pos] != '\n' && csv->pos < csv->len &&
                            !bad) {
                                bbt_csv_error_at(csv, csv->line, "field %zu: text after the closing quote",
                                                 csv->n_fields + 1);
                                bad = true;
                        }
                        /* Skip whatever follows up to the delimiter. */
                        while (csv->pos < csv->len && b[csv->pos] != ',' && b[csv->pos] != '\r' && b[csv->pos] != '\n')
                                csv->pos++;
                } else {
                        size_t from = csv->pos, to;

                        while (csv->pos < csv->len && b[csv->pos] != ',' && b[csv->pos] != '\r' && b[csv->pos] != '\n')
                                csv->pos++;
                        to = csv->pos;
                        while (to > from) {
                                if (b[to - 1] == ' ' || b[to - 1] == '\t')
                                        to--;
                                else if (to - from >= 3 && (unsigned char)b[to - 3] == 0xe3 &&
                                         (unsigned char)b[to - 2] == 0x80 && (unsigned char)b[to - 1] == 0x80)
                                        to -= 3;
                                else
                                        break;
                        }
                        flen = to - from;
                        memmove(b + w, b + from, flen < BBT_CSV_FIELD_MAX ? flen : BBT_CSV_FIELD_MAX);
                        w += flen < BBT_CSV_FIELD_MAX ? flen : BBT_CSV_FIELD_MAX;
                }
                if (flen > BBT_CSV_FIELD_MAX && !bad) {
                        bbt_csv_error_at(csv, csv->rec_line, "field %zu is longer than %d bytes", csv->n_fields + 1,
                                         BBT_CSV_FIELD_MAX);
                        bad = true;
                }
                if (csv->n_fields == BBT_CSV_FIELDS_MAX && !bad) {
                        bbt_csv_error_at(csv, csv->rec_line, "more than %d fields", BBT_CSV_FIELDS_MAX);
                        bad = true;
                }
                /* Read the delimiter before writing the terminator: W may equal POS. */
                delim = b[csv->pos];
                b[w++] = '\0';
                if (!bad) {
                        r = push_field(csv, start);
                        if (r < 0)
                                return r;
                }
                if (delim == ',') {
                        csv->pos++;
                        continue;
                }
                /* Not eat_newline(): the terminator may have overwritten it. */
                if (delim == '\r' || delim == '\n') {
                        csv->pos += delim == '\r' && b[csv->pos + 1] == '\n' ? 2 : 1;
                        csv->line++;
                } else {
                        csv->pos = csv->len;
                }
                break;
        }
        return bad ? -EINVAL : 1;
}

static bool record_empty(const struct bbt_csv *csv)
{
        for (size_t i = 0; i < csv->n_fields; i++)
                if (csv->field[i][0])
                        return false;
        return true;
}

int bbt_csv_next(struct bbt_csv *csv)
{
        int r;

        do {
                r = parse_record(csv);
        } while (r == 1 && record_empty(csv));
        return r;
}

const char *bbt_csv_get(const struct bbt_csv *csv, size_t col)
{
        int i;

        if (col >= csv->n_cols)
                return "";
        i = csv->map[col];
        if (i < 0 || (size_t)i >= csv->n_fields)
                return "";
        return csv->field[i];
}

bool bbt_csv_has(const struct bbt_csv *csv, size_t col)
{
        return col < csv->n_cols && csv->map[col] >= 0;
}

static bool header_matches(const struct bbt_csv_column *c, const char *cell)
{
        char key[BBT_CSV_FIELD_MAX + 1];
        size_t n = strlen(cell);

        memcpy(key, cell, n + 1);
        if (n >= 1 && key[n - 1] == '*')
                key[--n] = '\0';
        else if (n >= 3 && strcmp(key + n - 3, "\xef\xbc\x8a") == 0) /* ＊ */
                key[n -= 3] = '\0';
        while (n > 0 && (key[n - 1] == ' ' || key[n - 1] == '\t'))
                key[--n] = '\0';
        if (strcasecmp(key, c->name) == 0)
                return true;
        for (size_t k = 0; k < BBT_CSV_ALIASES_MAX && c->aliases[k]; k++)
                if (strcmp(key, c->aliases[k]) == 0)
                        return true;
        return false;
}

static int map_header(struct bbt_csv *csv)
{
        int r;

        r = bbt_csv_next(csv);
        if (r == 0) {
                bbt_csv_error_at(csv, 0, "empty file: no header row");
                return -EINVAL;
        }
        if (r < 0)
                return r;
        for (size_t f = 0; f < csv->n_fields; f++) {
                for (size_t c = 0; c < csv->n_cols; c++) {
                        if (!header_matches(&csv->cols[c], csv->field[f]))
                                continue;
                        if (csv->map[c] >= 0) {
                                bbt_csv_error_at(csv, csv->rec_line, "columns %d (%s) and %zu (%s) are both %s",
                                                 csv->map[c] + 1, csv->header[c], f + 1, csv->field[f],
                                                 csv->cols[c].name);
                                continue;
                        }
                        csv->map[c] = (int)f;
                        csv->header[c] = strdup(csv->field[f]);
                        if (!csv->header[c])
                                return -ENOMEM;
                }
        }
        for (size_t c = 0; c < csv->n_cols; c++) {
                char aliases[200] = "";
                size_t used = 0;

                if (csv->map[c] >= 0 || !csv->cols[c].required)
                        continue;
                for (size_t k = 0; k < BBT_CSV_ALIASES_MAX && csv->cols[c].aliases[k]; k++) {
                        int n = snprintf(aliases + used, sizeof(aliases) - used, "%s%s", k ? "/" : "",
                                         csv->cols[c].aliases[k]);

                        if (n < 0 || (size_t)n >= sizeof(aliases) - used)
                                break;
                        used += (size_t)n;
                }
                if (used)
                        bbt_csv_error_at(csv, csv->rec_line, "missing required column %s (%s)", csv->cols[c].name,
                                         aliases);
                else
                        bbt_csv_error_at(csv, csv->rec_line, "missing required column %s", csv->cols[c].name);
        }
        return csv->n_errors ? -EINVAL : 0;
}

void bbt_csv_free(struct bbt_csv *csv)
{
        if (!csv)
                return;
        if (csv->header)
                for (size_t c = 0; c < csv->n_cols; c++)
                        free(csv->header[c]);
        free(csv->header);
        free(csv->map);
        free(csv->field);
        free(csv->buf);
        free(csv);
}

int bbt_csv_open(const char *path, const struct bbt_csv_column *cols, size_t n_cols, struct bbt_import_errors *errs,
                 struct bbt_csv **ret)
{
        struct bbt_csv *csv;
        const char *base = strrchr(path, '/');
        char *raw = NULL;
        size_t len = 0;
        int r;

        if (errs) {
                errs->count = 0;
                errs->n_kept = 0;
        }
        csv = calloc(1, sizeof(*csv));
        if (!csv)
                return -ENOMEM;
        csv->cols = cols;
        csv->n_cols = n_cols;
        csv->errs = errs;
        csv->line = 1;
        snprintf(csv->name, sizeof(csv->name), "%s", base && base[1] ? base + 1 : path);
        utf8_cut_tail(csv->name);
        csv->map = malloc((n_cols ? n_cols : 1) * sizeof(*csv->map));
        csv->header = calloc(n_cols ? n_cols : 1, sizeof(*csv->header));
        if (!csv->map || !csv->header) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t c = 0; c < n_cols; c++)
                csv->map[c] = -1;

        r = read_file(path, &raw, &len);
        if (r == -EFBIG) {
                bbt_csv_error_at(csv, 0, "file larger than %u MiB", BBT_CSV_FILE_MAX >> 20);
                goto fail;
        }
        if (r < 0) {
                bbt_csv_error_at(csv, 0, "cannot read: %s", strerror(-r));
                goto fail;
        }
        r = decode(csv, raw, len);
        if (r < 0)
                goto fail;
        r = map_header(csv);
        if (r < 0)
                goto fail;
        *ret = csv;
        return 0;
fail:
        bbt_csv_free(csv);
        return r;
}
