/* The report document: building it (every string made valid UTF-8), and its numbers as renderers show them. */
#include "document.h"
#include "bbt/base.h"

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

static void table_free(struct bbt_table *t)
{
        size_t i;

        if (!t)
                return;
        for (i = 0; i < t->n_rows * t->n_cols; i++)
                if (t->cells[i].kind == BBT_VALUE_TEXT)
                        free(t->cells[i].v.text);
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
                if (!key_valid(cols[i].key) || (unsigned)cols[i].type > BBT_CELL_NUM)
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

int bbt_table_add_row(struct bbt_table *t)
{
        struct bbt_cell *cells;
        size_t i;

        if (!t)
                return -EINVAL;
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

        if (t->n_rows == 0 || col >= t->n_cols) {
                doc_fail(t->doc, -EINVAL);
                return NULL;
        }
        c = &t->cells[(t->n_rows - 1) * t->n_cols + col];
        if (c->kind == BBT_VALUE_TEXT)
                free(c->v.text);
        c->kind = BBT_VALUE_EMPTY;
        return c;
}

void bbt_table_set_text(struct bbt_table *t, size_t col, const char *s)
{
        struct bbt_cell *c;

        if (!t)
                return; /* add_table failed, and the document remembers why */
        c = last_row_cell(t, col);
        if (!c || !s)
                return;
        if (t->cols[col].type != BBT_CELL_TEXT) {
                doc_fail(t->doc, -EINVAL);
                return;
        }
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

        if (!t)
                return;
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

        if (!t)
                return;
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

int bbt_document_add_setting(struct bbt_document *d, const char *key, const char *label_zh, const char *label_en,
                             const char *value)
{
        struct bbt_setting *settings, s;
        size_t i;

        if (!d)
                return -EINVAL;
        if (!key_valid(key))
                goto fail_invalid;
        for (i = 0; i < d->n_settings; i++)
                if (strcmp(d->settings[i].key, key) == 0)
                        goto fail_invalid;
        settings = grow(d->settings, &d->cap_settings, d->n_settings, sizeof(*d->settings));
        if (!settings)
                goto fail_nomem;
        d->settings = settings;
        s.key = strdup(key);
        s.label_zh = utf8_dup(label_zh);
        s.label_en = utf8_dup(label_en);
        s.value = utf8_dup(value);
        if (!s.key || !s.label_zh || !s.label_en || !s.value) {
                free(s.key);
                free(s.label_zh);
                free(s.label_en);
                free(s.value);
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

const char *bbt_cell_format(const struct bbt_column *col, const struct bbt_cell *c, char *buf, size_t size)
{
        switch (c->kind) {
        case BBT_VALUE_TEXT:
                return c->v.text;
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
