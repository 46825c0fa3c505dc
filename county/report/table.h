/* Report output: tables rendered as an aligned text table, CSV (UTF-8 BOM, for Excel) or JSON, in Chinese or English. */
#ifndef BBT_TABLE_H
#define BBT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum bbt_format { BBT_FORMAT_TABLE, BBT_FORMAT_CSV, BBT_FORMAT_JSON };
/* "table", "csv", "json" → 0 and *RET, or -EINVAL. */
int bbt_format_parse(const char *s, enum bbt_format *ret);

enum bbt_cell_type {
        BBT_CELL_TEXT,
        BBT_CELL_INT,
        BBT_CELL_RATE, /* a fraction 0..1: "85.3%" in a table, 0.8531 in CSV/JSON (4 decimals) */
        BBT_CELL_NUM,  /* a number with the column's decimals */
};

struct bbt_column {
        const char *key;  /* JSON member name, [a-z0-9_]+ */
        const char *zh;   /* heading in Chinese */
        const char *en;   /* heading in English */
        enum bbt_cell_type type;
        int decimals;     /* BBT_CELL_NUM */
};

struct bbt_report;
struct bbt_table;

/* A report named NAME ("summary", "balance", ...) with a title in both
 * languages. Returns NULL on allocation failure. */
struct bbt_report *bbt_report_new(const char *name, const char *title_zh, const char *title_en);
/* NULL-safe; frees its tables too. */
void bbt_report_free(struct bbt_report *r);

/* Adds a table KEY (JSON member, [a-z0-9_]+) with a caption and COLS (copied
 * by reference: the array must outlive the report; static tables are meant).
 * Returns the table, owned by R, or NULL on allocation failure (or a bad or
 * repeated key, or no columns: -EINVAL). Either failure is remembered and
 * returned by bbt_report_render, and the set functions accept the NULL. */
struct bbt_table *bbt_report_add_table(struct bbt_report *r, const char *key, const char *caption_zh,
                                       const char *caption_en, const struct bbt_column *cols, size_t n_cols);
/* Starts a new row; every cell starts empty (null in JSON, "—" in a table, empty in CSV).
 * Returns 0 or -ENOMEM (also remembered for bbt_report_render). */
int bbt_table_add_row(struct bbt_table *t);
/* Set a cell of the last row (COL indexes the table's columns). Strings are
 * copied (invalid UTF-8 bytes become U+FFFD); a NULL string or a non-finite
 * number leaves the cell empty. set_int also fills RATE and NUM columns.
 * Failures are remembered and returned by bbt_report_render: -ENOMEM, or
 * -EINVAL for no row yet, COL out of range or a value of the wrong type. */
void bbt_table_set_text(struct bbt_table *t, size_t col, const char *s);
void bbt_table_set_int(struct bbt_table *t, size_t col, int64_t v);
void bbt_table_set_num(struct bbt_table *t, size_t col, double v); /* RATE and NUM columns */

/* Adds a line to the report's settings footer: KEY (JSON member) = VALUE, with
 * a label in both languages. Printed in the order added. Returns 0, -ENOMEM
 * or -EINVAL (a bad or repeated key); failures are also remembered. */
int bbt_report_add_setting(struct bbt_report *r, const char *key, const char *label_zh, const char *label_en,
                           const char *value);
/* Adds a footnote in both languages ("注：…" / "Note: …" lines in a table and
 * CSV; JSON gets them as "notes"). Returns 0 or -ENOMEM (also remembered). */
int bbt_report_add_note(struct bbt_report *r, const char *zh, const char *en);

/* Writes R to OUT. TABLE: title, each table with its caption and aligned
 * columns (East Asian wide characters count as two cells), then notes and
 * settings. CSV: a UTF-8 BOM, then each table as a caption line, a header line
 * and rows (RFC 4180 quoting), tables separated by an empty line, then the
 * settings as "setting,value" rows. JSON: {"report", "title", "lang",
 * "tables": {KEY: [ {column key: value, ...}, ... ]}, "notes": [...],
 * "settings": {KEY: VALUE}}. Returns 0, -EIO if writing failed, -ENOMEM if
 * rendering ran out of memory, or the first failure remembered while R was
 * built (then nothing is written). */
int bbt_report_render(const struct bbt_report *r, enum bbt_format fmt, bool chinese, FILE *out);

#endif
