/* The report document: building it (every string made valid UTF-8), and its numbers as renderers show them. */
#include "document.h"
#include "bbt/base.h"
#include "dates.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTF8_REPLACEMENT "\xef\xbf\xbd"
#define MAX_DECIMALS 10

/* Returns a malloc'ed copy of S (NULL taken as "") in which every byte that
 * does not start a valid UTF-8 sequence is replaced by U+FFFD, so that every
 * format, JSON above all, gets valid UTF-8. NULL on allocation failure. */
static char *utf8_dup(const char *s)
{
        const char *p;
        size_t size = 1;
        char *copy, *q;

        if (!s)
                s = "";
        for (p = s; *p;) {
                uint32_t cp;
                size_t len = bbt_utf8_decode(p, 4, &cp);

                size += len ? len : strlen(UTF8_REPLACEMENT);
                p += len ? len : 1;
        }
        copy = malloc(size);
        if (!copy)
                return NULL;
        for (p = s, q = copy; *p;) {
                uint32_t cp;
                size_t len = bbt_utf8_decode(p, 4, &cp);

                if (len) {
                        memcpy(q, p, len);
                        q += len;
                        p += len;
                } else {
                        memcpy(q, UTF8_REPLACEMENT, strlen(UTF8_REPLACEMENT));
                        q += strlen(UTF8_REPLACEMENT);
                        p++;
                }
        }
        *q = '\0';
        return copy;
}

/* ---- building ---- */

/* Remembers the first error while building D; rendering returns it. */
static void doc_fail(struct bbt_document *d, int error)
{
        if (d && d->error == 0)
                d->error = error;
}

/* True if KEY is a JSON member name as the header asks: [a-z0-9_]+. */
static bool key_valid(const char *key)
{
        if (!key || !*key)
                return false;
        for (; *key; key++)
                if (!((*key >= 'a' && *key <= 'z') || (*key >= '0' && *key <= '9') || *key == '_'))
                        return false;
        return true;
}

bool bbt_code_valid(const char *s)
{
        return key_valid(s);
}

/* Returns ITEMS (N used, *CAP allocated, each SIZE bytes) with room for one
 * more, updating *CAP, or NULL with ITEMS untouched on allocation failure. */
static void *grow(void *items, size_t *cap, size_t n, size_t size)
{
        size_t new_cap;
        void *p;

        if (n < *cap)
                return items;
        new_cap = *cap ? *cap * 2 : 8;
        if (new_cap < *cap || new_cap > SIZE_MAX / size)
                return NULL;
        p = realloc(items, new_cap * size);
        if (p)
                *cap = new_cap;
        return p;
}

/* Frees what cell C owns and leaves it empty. */
static void cell_clear(struct bbt_cell *c)
{
        if (c->kind == BBT_VALUE_TEXT)
                free(c->v.text);
        else if (c->kind == BBT_VALUE_CODE) {
                free(c->v.code.code);
                free(c->v.code.label);
        }
        c->kind = BBT_VALUE_EMPTY;
}

static void table_free(struct bbt_table *t)
{
        size_t i;

        if (!t)
                return;
        for (i = 0; i < t->n_rows * t->n_cols; i++)
                cell_clear(&t->cells[i]);
        free(t->cells);
        free(t->key);
        free(t->caption_zh);
        free(t->caption_en);
        free(t);
}

void bbt_document_free(struct bbt_document *d)
{
        size_t i;

        if (!d)
                return;
        for (i = 0; i < d->n_tables; i++)
                table_free(d->tables[i]);
        free(d->tables);
        for (i = 0; i < d->n_settings; i++) {
                free(d->settings[i].key);
                free(d->settings[i].label_zh);
                free(d->settings[i].label_en);
                free(d->settings[i].value);
                free(d->settings[i].unit);
        }
        free(d->settings);
        for (i = 0; i < d->n_notes; i++) {
                free(d->notes[i].zh);
                free(d->notes[i].en);
        }
        free(d->notes);
        free(d->name);
        free(d->title_zh);
        free(d->title_en);
        free(d);
}

struct bbt_document *bbt_document_new(const char *name, const char *title_zh, const char *title_en)
{
        struct bbt_document *d;

        d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->name = utf8_dup(name);
        d->title_zh = utf8_dup(title_zh);
        d->title_en = utf8_dup(title_en);
        if (!d->name || !d->title_zh || !d->title_en) {
                bbt_document_free(d);
                return NULL;
        }
        return d;
}

/* True if the JSON members of COLS (N) are distinct: each key, and KEY_label
 * beside a CODE column's key. */
static bool column_keys_distinct(const struct bbt_column *cols, size_t n)
{
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                        size_t len = strlen(cols[j].key);

                        if (i != j && strcmp(cols[i].key, cols[j].key) == 0)
                                return false;
                        if (cols[j].type == BBT_CELL_CODE && strncmp(cols[i].key, cols[j].key, len) == 0 &&
                            strcmp(cols[i].key + len, "_label") == 0)
                                return false;
                }
        return true;
}

struct bbt_table *bbt_document_add_table(struct bbt_document *d, const char *key, const char *caption_zh,
                                         const char *caption_en, const struct bbt_column *cols, size_t n_cols)
{
        struct bbt_table *t, **tables;
        size_t i;

        if (!d)
                return NULL;
        if (!key_valid(key) || !cols || n_cols == 0 || n_cols > SIZE_MAX / sizeof(struct bbt_cell) / 8)
                goto fail_invalid;
        for (i = 0; i < n_cols; i++)
                if (!key_valid(cols[i].key) || strlen(cols[i].key) > 64 || (unsigned)cols[i].type > BBT_CELL_TIME)
                        goto fail_invalid;
        if (!column_keys_distinct(cols, n_cols))
                goto fail_invalid;
        for (i = 0; i < d->n_tables; i++)
                if (strcmp(d->tables[i]->key, key) == 0)
                        goto fail_invalid;

        tables = grow(d->tables, &d->cap_tables, d->n_tables, sizeof(*d->tables));
        if (!tables)
                goto fail_nomem;
        d->tables = tables;
        t = calloc(1, sizeof(*t));
        if (!t)
                goto fail_nomem;
        t->doc = d;
        t->cols = cols;
        t->n_cols = n_cols;
        t->key = strdup(key);
        t->caption_zh = utf8_dup(caption_zh);
        t->caption_en = utf8_dup(caption_en);
        if (!t->key || !t->caption_zh || !t->caption_en) {
                table_free(t);
                goto fail_nomem;
        }
        d->tables[d->n_tables++] = t;
        return t;

fail_nomem:
        doc_fail(d, -ENOMEM);
        return NULL;
fail_invalid:
        doc_fail(d, -EINVAL);
        return NULL;
}

struct bbt_table *bbt_document_add_object(struct bbt_document *d, const char *key, const char *caption_zh,
                                          const char *caption_en, const struct bbt_column *cols, size_t n_cols)
{
        struct bbt_table *t = bbt_document_add_table(d, key, caption_zh, caption_en, cols, n_cols);

        if (!t)
                return NULL;
        if (bbt_table_add_row(t) < 0)
                return NULL; /* remembered */
        t->object = true;
        return t;
}

int bbt_table_add_row(struct bbt_table *t)
{
        struct bbt_cell *cells;
        size_t i;

        if (!t)
                return -EINVAL;
        if (t->object) { /* an object has its one row */
                doc_fail(t->doc, -EINVAL);
                return -EINVAL;
        }
        cells = grow(t->cells, &t->cap_rows, t->n_rows, t->n_cols * sizeof(*t->cells));
        if (!cells) {
                doc_fail(t->doc, -ENOMEM);
                return -ENOMEM;
        }
        t->cells = cells;
        for (i = 0; i < t->n_cols; i++)
                cells[t->n_rows * t->n_cols + i].kind = BBT_VALUE_EMPTY;
        t->n_rows++;
        return 0;
}

/* The cell COL of T's last row, emptied (its text freed), or NULL after
 * remembering -EINVAL if there is no row yet or COL is out of range. */
static struct bbt_cell *last_row_cell(struct bbt_table *t, size_t col)
{
        struct bbt_cell *c;

        if (!t)
                return NULL; /* add_table failed, and the document remembers why */
        if (t->n_rows == 0 || col >= t->n_cols) {
                doc_fail(t->doc, -EINVAL);
                return NULL;
        }
        c = &t->cells[(t->n_rows - 1) * t->n_cols + col];
        cell_clear(c);
        return c;
}

/* The cell COL of T's last row, emptied, if COL is of TYPE; else NULL after
 * remembering -EINVAL. */
static struct bbt_cell *typed_cell(struct bbt_table *t, size_t col, enum bbt_cell_type type)
{
        struct bbt_cell *c = last_row_cell(t, col);

        if (c && t->cols[col].type != type) {
                doc_fail(t->doc, -EINVAL);
                return NULL;
        }
        return c;
}

void bbt_table_set_text(struct bbt_table *t, size_t col, const char *s)
{
        /* A NULL string empties the cell of any column. */
        struct bbt_cell *c = s ? typed_cell(t, col, BBT_CELL_TEXT) : last_row_cell(t, col);

        if (!c || !s)
                return;
        c->v.text = utf8_dup(s);
        if (!c->v.text) {
                doc_fail(t->doc, -ENOMEM);
                return;
        }
        c->kind = BBT_VALUE_TEXT;
}

void bbt_table_set_int(struct bbt_table *t, size_t col, int64_t v)
{
        struct bbt_cell *c;

        c = last_row_cell(t, col);
        if (!c)
                return;
        switch (t->cols[col].type) {
        case BBT_CELL_INT:
                c->kind = BBT_VALUE_INT;
                c->v.i = v;
                break;
        case BBT_CELL_RATE:
        case BBT_CELL_NUM:
                c->kind = BBT_VALUE_NUM;
                c->v.num = (double)v;
                break;
        default:
                doc_fail(t->doc, -EINVAL);
                break;
        }
}

void bbt_table_set_num(struct bbt_table *t, size_t col, double v)
{
        struct bbt_cell *c;

        c = last_row_cell(t, col);
        if (!c)
                return;
        if (t->cols[col].type != BBT_CELL_RATE && t->cols[col].type != BBT_CELL_NUM) {
                doc_fail(t->doc, -EINVAL);
                return;
        }
        /* A rate over no pupils is NaN: shown as an empty cell, never "nan". */
        if (!isfinite(v))
                return;
        c->kind = BBT_VALUE_NUM;
        c->v.num = v;
}

void bbt_table_set_code(struct bbt_table *t, size_t col, const char *code, const char *label)
{
        struct bbt_cell *c;

        c = typed_cell(t, col, BBT_CELL_CODE);
        if (!c || !code)
                return;
        if (!key_valid(code)) {
                doc_fail(t->doc, -EINVAL);
                return;
        }
        c->v.code.code = strdup(code);
        c->v.code.label = utf8_dup(label ? label : code);
        if (!c->v.code.code || !c->v.code.label) {
                free(c->v.code.code);
                free(c->v.code.label);
                doc_fail(t->doc, -ENOMEM);
                return;
        }
        c->kind = BBT_VALUE_CODE;
}

void bbt_table_set_bool(struct bbt_table *t, size_t col, bool v)
{
        struct bbt_cell *c;

        c = typed_cell(t, col, BBT_CELL_BOOL);
        if (!c)
                return;
        c->kind = BBT_VALUE_BOOL;
        c->v.b = v;
}

void bbt_table_set_time(struct bbt_table *t, size_t col, int64_t ms)
{
        struct bbt_cell *c;

        c = typed_cell(t, col, BBT_CELL_TIME);
        if (!c || ms <= 0)
                return;
        c->kind = BBT_VALUE_TIME;
        c->v.time.ms = ms;
        c->v.time.offset_min = t->doc->offset_min;
}

/* Adds setting KEY: shown as SHOWN (NULL: "—"), in JSON as KIND with I, and
 * UNIT. */
static int add_setting(struct bbt_document *d, const char *key, const char *label_zh, const char *label_en,
                       const char *shown, enum bbt_value_kind kind, int64_t i, const char *unit)
{
        struct bbt_setting *settings, s = { 0 };

        if (!d)
                return -EINVAL;
        if (!key_valid(key))
                goto fail_invalid;
        for (size_t j = 0; j < d->n_settings; j++)
                if (strcmp(d->settings[j].key, key) == 0)
                        goto fail_invalid;
        settings = grow(d->settings, &d->cap_settings, d->n_settings, sizeof(*d->settings));
        if (!settings)
                goto fail_nomem;
        d->settings = settings;
        s.key = strdup(key);
        s.label_zh = utf8_dup(label_zh);
        s.label_en = utf8_dup(label_en);
        s.value = utf8_dup(shown ? shown : "\xe2\x80\x94"); /* an em dash, as an empty cell */
        s.unit = unit ? utf8_dup(unit) : NULL;
        s.kind = kind;
        s.i = i;
        if (!s.key || !s.label_zh || !s.label_en || !s.value || (unit && !s.unit)) {
                free(s.key);
                free(s.label_zh);
                free(s.label_en);
                free(s.value);
                free(s.unit);
                goto fail_nomem;
        }
        d->settings[d->n_settings++] = s;
        return 0;

fail_nomem:
        doc_fail(d, -ENOMEM);
        return -ENOMEM;
fail_invalid:
        doc_fail(d, -EINVAL);
        return -EINVAL;
}

int bbt_document_add_setting(struct bbt_document *d, const char *key, const char *label_zh, const char *label_en,
                             const char *value)
{
        return add_setting(d, key, label_zh, label_en, value, value ? BBT_VALUE_TEXT : BBT_VALUE_EMPTY, 0, NULL);
}

int bbt_document_add_setting_int(struct bbt_document *d, const char *key, const char *label_zh,
                                 const char *label_en, int64_t value, const char *unit)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRId64, value);
        return add_setting(d, key, label_zh, label_en, buf, BBT_VALUE_INT, value, unit);
}

int bbt_document_add_setting_time(struct bbt_document *d, const char *key, const char *label_zh,
                                  const char *label_en, int64_t ms)
{
        char buf[32];

        if (!d)
                return -EINVAL;
        if (ms <= 0)
                return add_setting(d, key, label_zh, label_en, NULL, BBT_VALUE_EMPTY, 0, NULL);
        bbt_time_format(ms, d->offset_min, false, buf, sizeof(buf));
        return add_setting(d, key, label_zh, label_en, buf, BBT_VALUE_TIME, ms, NULL);
}

int bbt_document_add_setting_none(struct bbt_document *d, const char *key, const char *label_zh,
                                  const char *label_en, const char *shown)
{
        return add_setting(d, key, label_zh, label_en, shown, BBT_VALUE_EMPTY, 0, NULL);
}

int bbt_document_add_note(struct bbt_document *d, const char *zh, const char *en)
{
        struct bbt_note *notes, n;

        if (!d)
                return -EINVAL;
        notes = grow(d->notes, &d->cap_notes, d->n_notes, sizeof(*d->notes));
        if (!notes)
                goto fail_nomem;
        d->notes = notes;
        n.zh = utf8_dup(zh);
        n.en = utf8_dup(en);
        if (!n.zh || !n.en) {
                free(n.zh);
                free(n.en);
                goto fail_nomem;
        }
        d->notes[d->n_notes++] = n;
        return 0;

fail_nomem:
        doc_fail(d, -ENOMEM);
        return -ENOMEM;
}

/* ---- numbers ---- */

int bbt_cell_decimals(const struct bbt_column *col)
{
        if (col->type == BBT_CELL_RATE)
                return 4;
        if (col->decimals < 0)
                return 0;
        return col->decimals > MAX_DECIMALS ? MAX_DECIMALS : col->decimals;
}

/* cJSON prints a double that "%.15g" gives back exactly that way, and falls
 * back to a noisy "%.17g" otherwise: hence the 15 digits. */
double bbt_cell_round(double v, int decimals)
{
        double scale = pow(10, decimals), scaled = v * scale;

        if (fabs(scaled) < 9007199254740992.0) /* 2^53 */
                v = round(scaled) / scale;
        return v == 0 ? 0 : v;
}

char *bbt_time_format(int64_t ms, int offset_min, bool iso, char *buf, size_t size)
{
        int64_t local = ms + (int64_t)offset_min * BBT_MS_PER_MIN;
        int32_t day = bbt_day_of_ms(ms, offset_min);
        int64_t in_day = local - (int64_t)day * BBT_MS_PER_DAY; /* 0 .. BBT_MS_PER_DAY - 1 */
        int minute = (int)(in_day / BBT_MS_PER_MIN), sec = (int)(in_day / 1000 % 60), milli = (int)(in_day % 1000);
        int y, m, dd, off = offset_min < 0 ? -offset_min : offset_min;

        bbt_day_to_ymd(day, &y, &m, &dd);
        if (!iso)
                snprintf(buf, size, "%04d-%02d-%02d %02d:%02d", y, m, dd, minute / 60, minute % 60);
        else if (milli)
                snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", y, m, dd, minute / 60,
                         minute % 60, sec, milli, offset_min < 0 ? '-' : '+', off / 60, off % 60);
        else
                snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, m, dd, minute / 60, minute % 60,
                         sec, offset_min < 0 ? '-' : '+', off / 60, off % 60);
        return buf;
}

char *bbt_num_format(double v, char *buf, size_t size)
{
        /* "%.15g" is the shortest whenever a text of at most 15 digits reads
         * back as V (V is then within half an ulp of it, and rounding V to 15
         * digits gives it back); 17 digits always read back. */
        for (int digits = 15; digits <= 17; digits++) {
                snprintf(buf, size, "%.*g", digits, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        return buf;
}

const char *bbt_cell_format(const struct bbt_column *col, const struct bbt_cell *c, bool chinese, char *buf,
                            size_t size)
{
        switch (c->kind) {
        case BBT_VALUE_TEXT:
                return c->v.text;
        case BBT_VALUE_CODE:
                return c->v.code.label;
        case BBT_VALUE_BOOL:
                return c->v.b ? (chinese ? "是" : "yes") : (chinese ? "否" : "no");
        case BBT_VALUE_TIME:
                return bbt_time_format(c->v.time.ms, c->v.time.offset_min, false, buf, size);
        case BBT_VALUE_INT:
                snprintf(buf, size, "%" PRId64, c->v.i);
                return buf;
        case BBT_VALUE_NUM:
                snprintf(buf, size, "%.*f", bbt_cell_decimals(col), bbt_cell_round(c->v.num, bbt_cell_decimals(col)));
                return buf;
        case BBT_VALUE_EMPTY:
        default:
                return NULL;
        }
}
