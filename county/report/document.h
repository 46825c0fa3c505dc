/* The report document: titled tables of typed cells, notes and settings, in Chinese and English, and no layout. */
#ifndef BBT_DOCUMENT_H
#define BBT_DOCUMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A report builder (reports.h) fills a document through the functions below;
 * a renderer (render.h) reads it through the structs and never changes it.
 * The document says what a figure is (a rate, a count, a number with so many
 * decimals, a text) and leaves how it looks to the renderer. */

enum bbt_cell_type {
        BBT_CELL_TEXT,
        BBT_CELL_INT,
        BBT_CELL_RATE, /* a fraction 0..1: "85.3%" in a text table, 0.8531 in CSV (4 decimals), unrounded in JSON */
        BBT_CELL_NUM,  /* a number with the column's decimals (unrounded in JSON) */
        BBT_CELL_CODE, /* a machine code [a-z0-9_]+ with its translated label: JSON "KEY" and "KEY_label",
                        * the label elsewhere */
        BBT_CELL_BOOL, /* JSON true/false; 是/否 (yes/no) elsewhere */
        BBT_CELL_TIME, /* an instant: ISO 8601 with the document's UTC offset in JSON,
                        * local "YYYY-MM-DD HH:MM" elsewhere */
};

struct bbt_column {
        const char *key;  /* JSON member name, [a-z0-9_]+ */
        const char *zh;   /* heading in Chinese */
        const char *en;   /* heading in English */
        enum bbt_cell_type type;
        int decimals;     /* BBT_CELL_NUM */
};

/* What a cell holds. */
enum bbt_value_kind {
        BBT_VALUE_EMPTY,
        BBT_VALUE_TEXT,
        BBT_VALUE_INT,
        BBT_VALUE_NUM,
        BBT_VALUE_CODE,
        BBT_VALUE_BOOL,
        BBT_VALUE_TIME,
};

struct bbt_cell {
        enum bbt_value_kind kind;
        union {
                char *text; /* owned; valid UTF-8 */
                int64_t i;
                double num; /* finite */
                struct {
                        char *code;  /* owned; [a-z0-9_]+ */
                        char *label; /* owned; valid UTF-8 */
                } code;
                bool b;
                struct {
                        int64_t ms;     /* > 0: ms since the epoch */
                        int offset_min; /* the document's UTC offset when the cell was set */
                } time;
        } v;
};

struct bbt_table {
        struct bbt_document *doc; /* the owner, where errors are remembered */
        char *key;                /* JSON member, [a-z0-9_]+ */
        char *caption_zh;
        char *caption_en;
        const struct bbt_column *cols; /* the builder's (static) array */
        size_t n_cols;
        struct bbt_cell *cells; /* row-major, n_rows * n_cols */
        size_t n_rows;
        size_t cap_rows;
        bool object; /* an object, not a list: exactly one row (bbt_document_add_object) */
};

struct bbt_setting {
        char *key; /* JSON member, [a-z0-9_]+ */
        char *label_zh;
        char *label_en;
        char *value;              /* as the text and CSV footers show it */
        enum bbt_value_kind kind; /* its JSON value: TEXT the string VALUE, INT the number I,
                                   * TIME the instant I (ms), EMPTY null */
        int64_t i;
        char *unit;               /* NULL, or the unit of an INT: "min", "s", "school_days", "days", "pupils" */
};

struct bbt_note {
        char *zh;
        char *en;
};

/* Every string in a document is valid UTF-8 (invalid bytes were replaced by
 * U+FFFD when it was set). */
struct bbt_document {
        char *name;     /* the report kind: "summary", "balance", ... */
        char *title_zh;
        char *title_en;
        struct bbt_table **tables;
        size_t n_tables, cap_tables;
        struct bbt_setting *settings; /* in the order added */
        size_t n_settings, cap_settings;
        struct bbt_note *notes;
        size_t n_notes, cap_notes;
        int offset_min; /* UTC offset of local time (BBT_CELL_TIME cells), minutes; set before building */
        int error; /* the first failure while building; renderers are not called then */
};

/* A document for report NAME ("summary", "balance", ...) with a title in both
 * languages. Returns NULL on allocation failure. */
struct bbt_document *bbt_document_new(const char *name, const char *title_zh, const char *title_en);
/* NULL-safe; frees its tables too. */
void bbt_document_free(struct bbt_document *d);

/* Adds a table KEY (JSON member, [a-z0-9_]+) with a caption and COLS (kept
 * by reference: the array must outlive the document; static arrays are meant).
 * Returns the table, owned by D, or NULL on allocation failure (or a bad or
 * repeated key, or no columns: -EINVAL). Either failure is remembered in
 * D->error, and the set functions accept the NULL. */
struct bbt_table *bbt_document_add_table(struct bbt_document *d, const char *key, const char *caption_zh,
                                         const char *caption_en, const struct bbt_column *cols, size_t n_cols);
/* Adds an object KEY: a table of exactly one row (already added, its cells
 * empty), for figures that are not rows of a list (a gap between areas). JSON
 * shows it as an object under "objects", text and CSV as a table of one row.
 * Returns it, or NULL as bbt_document_add_table does. */
struct bbt_table *bbt_document_add_object(struct bbt_document *d, const char *key, const char *caption_zh,
                                          const char *caption_en, const struct bbt_column *cols, size_t n_cols);
/* Starts a new row; every cell starts empty (null in JSON, "—" in a text
 * table, empty in CSV). Returns 0 or -ENOMEM (also remembered). */
int bbt_table_add_row(struct bbt_table *t);
/* Set a cell of the last row (COL indexes the table's columns). Strings are
 * copied (invalid UTF-8 bytes become U+FFFD); a NULL string or a non-finite
 * number leaves the cell empty. set_int also fills RATE and NUM columns.
 * Failures are remembered in the document: -ENOMEM, or -EINVAL for no row
 * yet, COL out of range or a value of the wrong type. */
void bbt_table_set_text(struct bbt_table *t, size_t col, const char *s);
void bbt_table_set_int(struct bbt_table *t, size_t col, int64_t v);
void bbt_table_set_num(struct bbt_table *t, size_t col, double v); /* RATE and NUM columns */
/* A CODE cell: CODE ([a-z0-9_]+, else -EINVAL) and its translated LABEL (NULL:
 * the code). A NULL CODE leaves the cell empty. */
void bbt_table_set_code(struct bbt_table *t, size_t col, const char *code, const char *label);
/* True if S is a valid code (and JSON member name): [a-z0-9_]+. */
bool bbt_code_valid(const char *s);
void bbt_table_set_bool(struct bbt_table *t, size_t col, bool v);
/* A TIME cell at MS (ms since the epoch), in the document's UTC offset;
 * MS <= 0 (never) leaves the cell empty. */
void bbt_table_set_time(struct bbt_table *t, size_t col, int64_t ms);

/* The cell at ROW, COL of T (both in range). */
static inline const struct bbt_cell *bbt_table_cell(const struct bbt_table *t, size_t row, size_t col)
{
        return &t->cells[row * t->n_cols + col];
}

/* Adds a line to the settings footer: KEY (JSON member) = VALUE, with a label
 * in both languages (the text footer shows the label, whose parentheses name
 * the unit, and the value). JSON gives {"value", "unit", "label"}. Each
 * returns 0, -ENOMEM or -EINVAL (a bad or repeated key); failures are also
 * remembered. add_setting: a text (a NULL VALUE is null, shown as "—");
 * _int: a number with its UNIT (NULL: none); _time: an instant (ms) in the
 * document's UTC offset; _none: null in JSON, shown as SHOWN ("全部" for no
 * county filter). */
int bbt_document_add_setting(struct bbt_document *d, const char *key, const char *label_zh, const char *label_en,
                             const char *value);
int bbt_document_add_setting_int(struct bbt_document *d, const char *key, const char *label_zh,
                                 const char *label_en, int64_t value, const char *unit);
int bbt_document_add_setting_time(struct bbt_document *d, const char *key, const char *label_zh,
                                  const char *label_en, int64_t ms);
int bbt_document_add_setting_none(struct bbt_document *d, const char *key, const char *label_zh,
                                  const char *label_en, const char *shown);
/* Adds a footnote in both languages. Returns 0 or -ENOMEM (also remembered). */
int bbt_document_add_note(struct bbt_document *d, const char *zh, const char *en);

/* ---- for renderers: the numbers as every output shows them ---- */

/* Large enough for any cell bbt_cell_format writes (DBL_MAX with 10 decimals). */
#define BBT_CELL_TEXT_MAX 400

/* Decimals of COL's numbers: RATE 4, NUM its own within 0..10. */
int bbt_cell_decimals(const struct bbt_column *col);
/* V rounded half away from zero to DECIMALS places, without a negative zero.
 * The result is the double nearest to a decimal of at most 15 significant
 * digits (for |V| < 1e11 at 4 places), so "%.15g" prints it back exactly.
 * Values too large to scale are returned as they are. */
double bbt_cell_round(double v, int decimals);
/* Cell C of column COL as plain text in Chinese or English: its text, the
 * integer, the number with bbt_cell_decimals(COL) decimals, a code's label,
 * 是/否 (yes/no), a time as local "YYYY-MM-DD HH:MM", written to BUF (SIZE
 * bytes, BBT_CELL_TEXT_MAX is enough) where needed. Returns the text, or NULL
 * for an empty cell. */
const char *bbt_cell_format(const struct bbt_column *col, const struct bbt_cell *c, bool chinese, char *buf,
                            size_t size);

/* The instant MS at UTC+OFFSET_MIN: local "YYYY-MM-DD HH:MM" (ISO false) or
 * ISO 8601 "YYYY-MM-DDTHH:MM:SS[.mmm]+HH:MM" (ISO true), in BUF (SIZE bytes,
 * 32 is enough). Returns BUF. */
char *bbt_time_format(int64_t ms, int offset_min, bool iso, char *buf, size_t size);
/* V as the shortest decimal text that reads back as V ("%.15g", "%.16g" or
 * "%.17g"), in BUF (SIZE bytes, 32 is enough). Returns BUF. */
char *bbt_num_format(double v, char *buf, size_t size);

#endif
