/* CSV files exported from Excel: RFC 4180 records, UTF-8/BOM/GB18030, columns by English or Chinese header. */
#ifndef BBT_CSV_H
#define BBT_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "registry.h"

#define BBT_CSV_FILE_MAX (64u << 20) /* bytes of the file as stored */
#define BBT_CSV_FIELD_MAX 4096       /* bytes of one field after decoding */
#define BBT_CSV_FIELDS_MAX 512       /* fields of one record */
#define BBT_CSV_ALIASES_MAX 6

/* One column a reader expects. NAME matches a header cell case-insensitively,
 * an alias exactly; a trailing '*' or '＊' on a header cell (templates mark
 * required columns so) is ignored. */
struct bbt_csv_column {
        const char *name;                           /* English header, e.g. "school_code" */
        const char *aliases[BBT_CSV_ALIASES_MAX];   /* Chinese headers, NULL after the last */
        bool required;
};

struct bbt_csv;

/* Reads the whole file at PATH (at most BBT_CSV_FILE_MAX bytes), decodes it to
 * UTF-8 (a UTF-8 BOM is stripped; a file that is not valid UTF-8 is converted
 * from GB18030 with iconv), reads the header (the first non-empty record) and
 * maps the N_COLS columns COLS (which must outlive the reader) onto it.
 * Messages go to ERRS (may be NULL; it is cleared first) naming the file by its
 * base name. Returns 0 and *RET (free with bbt_csv_free); -EINVAL (bad
 * encoding, a required column missing, no header), -EFBIG, -ENOMEM or -errno
 * from open/read, each with a message in ERRS; *RET is untouched on failure. */
int bbt_csv_open(const char *path, const struct bbt_csv_column *cols, size_t n_cols, struct bbt_import_errors *errs,
                 struct bbt_csv **ret);
/* NULL-safe. */
void bbt_csv_free(struct bbt_csv *csv);

/* Moves to the next record that is not fully empty. Returns 1 when there is
 * one, 0 at the end, -EINVAL when this record is malformed (already reported;
 * call again for the next one). After an unterminated quote it returns
 * -EINVAL once and then 0. */
int bbt_csv_next(struct bbt_csv *csv);
/* The current record's value of column COL (index into the COLS given to
 * bbt_csv_open): trimmed of spaces, tabs and U+3000 unless it was quoted; ""
 * when the header lacks the column or the record is short. Valid until the
 * next bbt_csv_next(). */
const char *bbt_csv_get(const struct bbt_csv *csv, size_t col);
/* Whether the header has column COL. */
bool bbt_csv_has(const struct bbt_csv *csv, size_t col);
/* The physical line (1-based) where the current record starts. */
unsigned bbt_csv_line(const struct bbt_csv *csv);
/* The file's base name, as messages give it. */
const char *bbt_csv_name(const struct bbt_csv *csv);

/* Adds "NAME:LINE: <message>" to the errors (LINE 0: "NAME: <message>"). */
void bbt_csv_error_at(struct bbt_csv *csv, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Adds "NAME:LINE: column COL (header): <message>" for the current record;
 * the header is the cell as written in the file, or the first alias when the
 * file used the English name. */
void bbt_csv_column_error(struct bbt_csv *csv, size_t col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* bbt_csv_column_error(csv, col, "%s, got \"<value>\"", WHAT) with the current
 * value (shortened to 60 bytes at a character boundary). */
void bbt_csv_bad_value(struct bbt_csv *csv, size_t col, const char *what);
/* Problems reported so far, kept or not. */
size_t bbt_csv_errors(const struct bbt_csv *csv);

/* Parses a count: ASCII digits only, 0..MAX. Returns 0 and *RET, or -EINVAL. */
int bbt_csv_parse_count(const char *s, long max, long *ret);

#endif
