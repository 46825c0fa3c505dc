/* Report output: tables rendered as an aligned text table, CSV (UTF-8 BOM, for Excel) or JSON (see table.h). */
#include "table.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

enum cell_kind { CELL_EMPTY, CELL_TEXT, CELL_INT, CELL_NUM };

struct cell {
        enum cell_kind kind;
        union {
                char *text; /* owned */
                int64_t i;
                double num;
        } v;
};

struct bbt_table {
        struct bbt_report *report; /* the owner, where errors are remembered */
        char *key;
        char *caption_zh;
        char *caption_en;
        const struct bbt_column *cols; /* the caller's */
        size_t n_cols;
        struct cell *cells; /* row-major, n_rows * n_cols */
        size_t n_rows;
        size_t cap_rows;
};

struct setting {
        char *key;
        char *label_zh;
        char *label_en;
        char *value;
};

struct note {
        char *zh;
        char *en;
};

struct bbt_report {
        char *name;
        char *title_zh;
        char *title_en;
        struct bbt_table **tables;
        size_t n_tables;
        size_t cap_tables;
        struct setting *settings;
        size_t n_settings;
        size_t cap_settings;
        struct note *notes;
        size_t n_notes;
        size_t cap_notes;
        int error; /* the first failure while building, returned by render */
};

/* The empty cell in a text table: U+2014 EM DASH (counted as one cell). */
#define EMPTY_TABLE_CELL "\xe2\x80\x94"
#define UTF8_REPLACEMENT "\xef\xbf\xbd"
/* Large enough for any double with %.10f (DBL_MAX has 309 integer digits). */
#define NUMBER_BUF 400
#define MAX_DECIMALS 10

/* ---- UTF-8 and display width ---- */

struct range {
        uint32_t first;
        uint32_t last;
};

/* Characters that take no cell: combining marks (Mn, Me), zero-width and
 * bidi format characters, conjoining Hangul vowels and finals, variation
 * selectors. Sorted; the scripts a county report meets, not all of Unicode. */
static const struct range zero_width[] = {
        { 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x0591, 0x05bd }, { 0x05bf, 0x05bf },
        { 0x05c1, 0x05c2 }, { 0x05c4, 0x05c5 }, { 0x05c7, 0x05c7 }, { 0x0610, 0x061a },
        { 0x064b, 0x065f }, { 0x0670, 0x0670 }, { 0x06d6, 0x06dc }, { 0x06df, 0x06e4 },
        { 0x06e7, 0x06e8 }, { 0x06ea, 0x06ed }, { 0x0e31, 0x0e31 }, { 0x0e34, 0x0e3a },
        { 0x0e47, 0x0e4e }, { 0x0f18, 0x0f19 }, { 0x0f35, 0x0f35 }, { 0x0f37, 0x0f37 },
        { 0x0f39, 0x0f39 }, { 0x0f71, 0x0f7e }, { 0x0f80, 0x0f84 }, { 0x0f86, 0x0f87 },
        { 0x0f8d, 0x0fbc }, { 0x1160, 0x11ff }, { 0x1ab0, 0x1aff }, { 0x1dc0, 0x1dff },
        { 0x200b, 0x200f }, { 0x202a, 0x202e }, { 0x2060, 0x2064 }, { 0x2066, 0x206f },
        { 0x20d0, 0x20ff }, { 0x302a, 0x302d }, { 0x3099, 0x309a }, { 0xfe00, 0xfe0f },
        { 0xfe20, 0xfe2f }, { 0xfeff, 0xfeff }, { 0xe0001, 0xe0001 }, { 0xe0020, 0xe007f },
        { 0xe0100, 0xe01ef },
};

/* East Asian Wide (W) and Fullwidth (F) characters: two cells. Sorted.
 * Ambiguous ones (—, ·, “”) stay one cell, as wcwidth() has them in a
 * UTF-8 locale. */
static const struct range double_width[] = {
        { 0x1100, 0x115f },   /* Hangul Jamo initial consonants */
        { 0x231a, 0x231b },   /* watch, hourglass */
        { 0x2329, 0x232a },   /* angle brackets 〈〉 */
        { 0x2e80, 0x303e },   /* CJK radicals, Kangxi, CJK symbols and punctuation 、。「」 */
        { 0x3041, 0x33ff },   /* kana, Bopomofo, Hangul compatibility Jamo, enclosed CJK, CJK compatibility */
        { 0x3400, 0x4dbf },   /* CJK extension A */
        { 0x4e00, 0x9fff },   /* CJK unified ideographs */
        { 0xa000, 0xa4cf },   /* Yi */
        { 0xa960, 0xa97f },   /* Hangul Jamo extended A */
        { 0xac00, 0xd7a3 },   /* Hangul syllables */
        { 0xf900, 0xfaff },   /* CJK compatibility ideographs */
        { 0xfe10, 0xfe19 },   /* vertical forms */
        { 0xfe30, 0xfe6f },   /* CJK compatibility forms, small form variants */
        { 0xff00, 0xff60 },   /* fullwidth forms （），：！ */
        { 0xffe0, 0xffe6 },   /* fullwidth signs ￥ */
        { 0x16fe0, 0x16fe4 }, /* ideographic symbols */
        { 0x17000, 0x18cff }, /* Tangut */
        { 0x1b000, 0x1b2ff }, /* kana supplement and extensions, Nüshu */
        { 0x1f300, 0x1f64f }, /* pictographs, emoticons */
        { 0x1f900, 0x1f9ff }, /* supplemental pictographs */
        { 0x20000, 0x2fffd }, /* CJK extensions B..F, compatibility supplement */
        { 0x30000, 0x3fffd }, /* CJK extensions G, H */
};

/* True if CP falls in one of the N sorted ranges. */
static bool in_ranges(uint32_t cp, const struct range *ranges, size_t n)
{
        size_t lo = 0, hi = n;

        if (cp < ranges[0].first || cp > ranges[n - 1].last)
                return false;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (cp > ranges[mid].last)
                        lo = mid + 1;
                else if (cp < ranges[mid].first)
                        hi = mid;
                else
                        return true;
        }
        return false;
}

/* Terminal cells CP takes: 0, 1 or 2. Control characters are 1 because the
 * text table prints them as a space. */
static size_t codepoint_width(uint32_t cp)
{
        if (cp < 0x300)
                return 1;
        if (in_ranges(cp, zero_width, BBT_ELEMENTSOF(zero_width)))
                return 0;
        if (in_ranges(cp, double_width, BBT_ELEMENTSOF(double_width)))
                return 2;
        return 1;
}

/* Terminal cells the UTF-8 string S takes, without depending on the locale.
 * A byte that does not start a valid sequence counts as one cell. */
static size_t display_width(const char *s)
{
        size_t width = 0;

        while (*s) {
                uint32_t cp;
                size_t len = bbt_utf8_decode(s, 4, &cp);

                if (len == 0) {
                        width++;
                        s++;
                        continue;
                }
                width += codepoint_width(cp);
                s += len;
        }
        return width;
}

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

/* Remembers the first error while building R; render returns it. */
static void report_fail(struct bbt_report *r, int error)
{
        if (r && r->error == 0)
                r->error = error;
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
                if (t->cells[i].kind == CELL_TEXT)
                        free(t->cells[i].v.text);
        free(t->cells);
        free(t->key);
        free(t->caption_zh);
        free(t->caption_en);
        free(t);
}

void bbt_report_free(struct bbt_report *r)
{
        size_t i;

        if (!r)
                return;
        for (i = 0; i < r->n_tables; i++)
                table_free(r->tables[i]);
        free(r->tables);
        for (i = 0; i < r->n_settings; i++) {
                free(r->settings[i].key);
                free(r->settings[i].label_zh);
                free(r->settings[i].label_en);
                free(r->settings[i].value);
        }
        free(r->settings);
        for (i = 0; i < r->n_notes; i++) {
                free(r->notes[i].zh);
                free(r->notes[i].en);
        }
        free(r->notes);
        free(r->name);
        free(r->title_zh);
        free(r->title_en);
        free(r);
}

struct bbt_report *bbt_report_new(const char *name, const char *title_zh, const char *title_en)
{
        struct bbt_report *r;

        r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->name = utf8_dup(name);
        r->title_zh = utf8_dup(title_zh);
        r->title_en = utf8_dup(title_en);
        if (!r->name || !r->title_zh || !r->title_en) {
                bbt_report_free(r);
                return NULL;
        }
        return r;
}

int bbt_format_parse(const char *s, enum bbt_format *ret)
{
        static const struct {
                const char *name;
                enum bbt_format fmt;
        } formats[] = {
                { "table", BBT_FORMAT_TABLE },
                { "csv", BBT_FORMAT_CSV },
                { "json", BBT_FORMAT_JSON },
        };
        size_t i;

        if (!s)
                return -EINVAL;
        for (i = 0; i < BBT_ELEMENTSOF(formats); i++)
                if (strcmp(s, formats[i].name) == 0) {
                        *ret = formats[i].fmt;
                        return 0;
                }
        return -EINVAL;
}

struct bbt_table *bbt_report_add_table(struct bbt_report *r, const char *key, const char *caption_zh,
                                       const char *caption_en, const struct bbt_column *cols, size_t n_cols)
{
        struct bbt_table *t, **tables;
        size_t i;

        if (!r)
                return NULL;
        if (!key_valid(key) || !cols || n_cols == 0 || n_cols > SIZE_MAX / sizeof(struct cell) / 8)
                goto fail_invalid;
        for (i = 0; i < n_cols; i++)
                if (!key_valid(cols[i].key) || (unsigned)cols[i].type > BBT_CELL_NUM)
                        goto fail_invalid;
        for (i = 0; i < r->n_tables; i++)
                if (strcmp(r->tables[i]->key, key) == 0)
                        goto fail_invalid;

        tables = grow(r->tables, &r->cap_tables, r->n_tables, sizeof(*r->tables));
        if (!tables)
                goto fail_nomem;
        r->tables = tables;
        t = calloc(1, sizeof(*t));
        if (!t)
                goto fail_nomem;
        t->report = r;
        t->cols = cols;
        t->n_cols = n_cols;
        t->key = strdup(key);
        t->caption_zh = utf8_dup(caption_zh);
        t->caption_en = utf8_dup(caption_en);
        if (!t->key || !t->caption_zh || !t->caption_en) {
                table_free(t);
                goto fail_nomem;
        }
        r->tables[r->n_tables++] = t;
        return t;

fail_nomem:
        report_fail(r, -ENOMEM);
        return NULL;
fail_invalid:
        report_fail(r, -EINVAL);
        return NULL;
}

int bbt_table_add_row(struct bbt_table *t)
{
        struct cell *cells;
        size_t i;

        if (!t)
                return -EINVAL;
        cells = grow(t->cells, &t->cap_rows, t->n_rows, t->n_cols * sizeof(*t->cells));
        if (!cells) {
                report_fail(t->report, -ENOMEM);
                return -ENOMEM;
        }
        t->cells = cells;
        for (i = 0; i < t->n_cols; i++)
                cells[t->n_rows * t->n_cols + i].kind = CELL_EMPTY;
        t->n_rows++;
        return 0;
}

/* The cell COL of T's last row, emptied (its text freed), or NULL after
 * remembering -EINVAL if there is no row yet or COL is out of range. */
static struct cell *last_row_cell(struct bbt_table *t, size_t col)
{
        struct cell *c;

        if (t->n_rows == 0 || col >= t->n_cols) {
                report_fail(t->report, -EINVAL);
                return NULL;
        }
        c = &t->cells[(t->n_rows - 1) * t->n_cols + col];
        if (c->kind == CELL_TEXT)
                free(c->v.text);
        c->kind = CELL_EMPTY;
        return c;
}

void bbt_table_set_text(struct bbt_table *t, size_t col, const char *s)
{
        struct cell *c;

        if (!t)
                return; /* add_table failed, and the report remembers why */
        c = last_row_cell(t, col);
        if (!c || !s)
                return;
        if (t->cols[col].type != BBT_CELL_TEXT) {
                report_fail(t->report, -EINVAL);
                return;
        }
        c->v.text = utf8_dup(s);
        if (!c->v.text) {
                report_fail(t->report, -ENOMEM);
                return;
        }
        c->kind = CELL_TEXT;
}

void bbt_table_set_int(struct bbt_table *t, size_t col, int64_t v)
{
        struct cell *c;

        if (!t)
                return;
        c = last_row_cell(t, col);
        if (!c)
                return;
        switch (t->cols[col].type) {
        case BBT_CELL_INT:
                c->kind = CELL_INT;
                c->v.i = v;
                break;
        case BBT_CELL_RATE:
        case BBT_CELL_NUM:
                c->kind = CELL_NUM;
                c->v.num = (double)v;
                break;
        default:
                report_fail(t->report, -EINVAL);
                break;
        }
}

void bbt_table_set_num(struct bbt_table *t, size_t col, double v)
{
        struct cell *c;

        if (!t)
                return;
        c = last_row_cell(t, col);
        if (!c)
                return;
        if (t->cols[col].type != BBT_CELL_RATE && t->cols[col].type != BBT_CELL_NUM) {
                report_fail(t->report, -EINVAL);
                return;
        }
        /* A rate over no pupils is NaN: shown as an empty cell, never "nan". */
        if (!isfinite(v))
                return;
        c->kind = CELL_NUM;
        c->v.num = v;
}

int bbt_report_add_setting(struct bbt_report *r, const char *key, const char *label_zh, const char *label_en,
                           const char *value)
{
        struct setting *settings, s;
        size_t i;

        if (!r)
                return -EINVAL;
        if (!key_valid(key))
                goto fail_invalid;
        for (i = 0; i < r->n_settings; i++)
                if (strcmp(r->settings[i].key, key) == 0)
                        goto fail_invalid;
        settings = grow(r->settings, &r->cap_settings, r->n_settings, sizeof(*r->settings));
        if (!settings)
                goto fail_nomem;
        r->settings = settings;
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
        r->settings[r->n_settings++] = s;
        return 0;

fail_nomem:
        report_fail(r, -ENOMEM);
        return -ENOMEM;
fail_invalid:
        report_fail(r, -EINVAL);
        return -EINVAL;
}

int bbt_report_add_note(struct bbt_report *r, const char *zh, const char *en)
{
        struct note *notes, n;

        if (!r)
                return -EINVAL;
        notes = grow(r->notes, &r->cap_notes, r->n_notes, sizeof(*r->notes));
        if (!notes)
                goto fail_nomem;
        r->notes = notes;
        n.zh = utf8_dup(zh);
        n.en = utf8_dup(en);
        if (!n.zh || !n.en) {
                free(n.zh);
                free(n.en);
                goto fail_nomem;
        }
        r->notes[r->n_notes++] = n;
        return 0;

fail_nomem:
        report_fail(r, -ENOMEM);
        return -ENOMEM;
}

/* ---- numbers ---- */

/* Decimals of a column: RATE has 4 in CSV and JSON; NUM its own, within 0..10. */
static int column_decimals(const struct bbt_column *col)
{
        if (col->type == BBT_CELL_RATE)
                return 4;
        if (col->decimals < 0)
                return 0;
        return col->decimals > MAX_DECIMALS ? MAX_DECIMALS : col->decimals;
}

/* V rounded half away from zero to DECIMALS places, without a negative zero.
 * The result is the double nearest to a decimal of at most 15 significant
 * digits (for |V| < 1e11 at 4 places), so "%.15g" prints it back exactly and
 * cJSON does not fall back to noisy "%.17g". Values too large to scale are
 * returned as they are. */
static double round_to(double v, int decimals)
{
        double scale = pow(10, decimals), scaled = v * scale;

        if (fabs(scaled) < 9007199254740992.0) /* 2^53 */
                v = round(scaled) / scale;
        return v == 0 ? 0 : v;
}

/* Writes cell C of column COL into BUF as FMT shows it; returns the text
 * (BUF, the cell's own string, or the empty-cell mark). */
static const char *cell_text(const struct bbt_column *col, const struct cell *c, enum bbt_format fmt, char *buf,
                             size_t size)
{
        switch (c->kind) {
        case CELL_TEXT:
                return c->v.text;
        case CELL_INT:
                snprintf(buf, size, "%" PRId64, c->v.i);
                return buf;
        case CELL_NUM:
                if (col->type == BBT_CELL_RATE && fmt == BBT_FORMAT_TABLE)
                        snprintf(buf, size, "%.1f%%", round_to(c->v.num, 3) * 100);
                else
                        snprintf(buf, size, "%.*f", column_decimals(col), round_to(c->v.num, column_decimals(col)));
                return buf;
        case CELL_EMPTY:
        default:
                break;
        }
        return fmt == BBT_FORMAT_TABLE ? EMPTY_TABLE_CELL : "";
}

/* ---- text table ---- */

/* Writes S with control characters (a newline in a school name) as spaces,
 * so that they cannot break a line of the table. */
static void put_text(FILE *out, const char *s)
{
        for (; *s; s++)
                fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, out);
}

static void put_spaces(FILE *out, size_t n)
{
        while (n--)
                fputc(' ', out);
}

static bool column_right_aligned(const struct bbt_column *col)
{
        return col->type != BBT_CELL_TEXT;
}

/* Writes row ROW of T (SIZE_MAX: the header) padded to WIDTHS, columns two
 * spaces apart, with no trailing blanks. */
static void table_row(FILE *out, const struct bbt_table *t, size_t row, const size_t *widths, bool chinese)
{
        char buf[NUMBER_BUF];
        size_t i;

        for (i = 0; i < t->n_cols; i++) {
                const struct bbt_column *col = &t->cols[i];
                const char *s;
                size_t pad;

                if (row == SIZE_MAX)
                        s = chinese ? col->zh : col->en;
                else
                        s = cell_text(col, &t->cells[row * t->n_cols + i], BBT_FORMAT_TABLE, buf, sizeof(buf));
                if (!s)
                        s = "";
                pad = widths[i] - display_width(s);
                if (i > 0)
                        fputs("  ", out);
                if (column_right_aligned(col)) {
                        put_spaces(out, pad);
                        put_text(out, s);
                } else {
                        put_text(out, s);
                        if (i + 1 < t->n_cols)
                                put_spaces(out, pad);
                }
        }
        fputs("\n", out);
}

/* Writes T as caption, header, a dashed rule and rows. Returns 0 or -ENOMEM. */
static int table_write(FILE *out, const struct bbt_table *t, bool chinese)
{
        char buf[NUMBER_BUF];
        size_t *widths, i, row;

        widths = calloc(t->n_cols, sizeof(*widths));
        if (!widths)
                return -ENOMEM;
        for (i = 0; i < t->n_cols; i++) {
                const char *heading = chinese ? t->cols[i].zh : t->cols[i].en;

                widths[i] = display_width(heading ? heading : "");
                for (row = 0; row < t->n_rows; row++) {
                        const char *s = cell_text(&t->cols[i], &t->cells[row * t->n_cols + i], BBT_FORMAT_TABLE,
                                                  buf, sizeof(buf));
                        size_t w = display_width(s);

                        if (w > widths[i])
                                widths[i] = w;
                }
        }

        put_text(out, chinese ? t->caption_zh : t->caption_en);
        fputs("\n", out);
        table_row(out, t, SIZE_MAX, widths, chinese);
        for (i = 0; i < t->n_cols; i++) {
                if (i > 0)
                        fputs("  ", out);
                for (size_t j = 0; j < widths[i]; j++)
                        fputc('-', out);
        }
        fputs("\n", out);
        for (row = 0; row < t->n_rows; row++)
                table_row(out, t, row, widths, chinese);
        if (t->n_rows == 0)
                fputs(chinese ? "（无数据）\n" : "(no data)\n", out);
        free(widths);
        return 0;
}

/* The text format: title, each table after an empty line, then the notes
 * and the settings, each block after an empty line. */
static int render_table(const struct bbt_report *r, bool chinese, FILE *out)
{
        size_t i;
        int ret;

        put_text(out, chinese ? r->title_zh : r->title_en);
        fputs("\n", out);
        for (i = 0; i < r->n_tables; i++) {
                fputs("\n", out);
                ret = table_write(out, r->tables[i], chinese);
                if (ret < 0)
                        return ret;
        }
        if (r->n_notes > 0)
                fputs("\n", out);
        for (i = 0; i < r->n_notes; i++) {
                fputs(chinese ? "注：" : "Note: ", out);
                put_text(out, chinese ? r->notes[i].zh : r->notes[i].en);
                fputs("\n", out);
        }
        if (r->n_settings > 0)
                fputs(chinese ? "\n设置\n" : "\nSettings\n", out);
        for (i = 0; i < r->n_settings; i++) {
                put_text(out, chinese ? r->settings[i].label_zh : r->settings[i].label_en);
                /* A full-width colon after a Chinese label, as in "注：". */
                fputs(chinese ? "：" : ": ", out);
                put_text(out, r->settings[i].value);
                fputs("\n", out);
        }
        return 0;
}

/* ---- CSV ---- */

/* Records end in CRLF: RFC 4180 says so and Excel, what county centres open
 * these files with, expects it. */
#define CSV_EOL "\r\n"

/* True if S is a plain decimal number: -?[0-9]+(\.[0-9]+)? */
static bool plain_number(const char *s)
{
        if (*s == '-')
                s++;
        if (!(*s >= '0' && *s <= '9'))
                return false;
        while (*s >= '0' && *s <= '9')
                s++;
        if (*s == '.') {
                s++;
                if (!(*s >= '0' && *s <= '9'))
                        return false;
                while (*s >= '0' && *s <= '9')
                        s++;
        }
        return *s == '\0';
}

/* Formula injection (OWASP "CSV injection"): Excel runs a field that starts
 * with = + - @ (or a tab or CR before one) as a formula. Text cells that
 * start so get a leading apostrophe, which makes them text; a '-' that
 * starts a plain number ("-3", "-0.5") is left alone. Numeric cells,
 * headings, captions and settings are ours and never guarded. */
static bool csv_needs_guard(const char *s)
{
        switch (s[0]) {
        case '=':
        case '+':
        case '@':
        case '\t':
        case '\r':
                return true;
        case '-':
                return !plain_number(s);
        default:
                return false;
        }
}

/* Writes S as one RFC 4180 field: quoted if it holds a comma, quote, CR or
 * LF, with quotes doubled; GUARD applies the formula-injection guard. */
static void csv_field(FILE *out, const char *s, bool guard)
{
        bool quoted;

        if (!s)
                s = "";
        quoted = strpbrk(s, ",\"\r\n") != NULL;
        if (quoted)
                fputc('"', out);
        if (guard && csv_needs_guard(s))
                fputc('\'', out);
        for (; *s; s++) {
                if (*s == '"')
                        fputc('"', out);
                fputc(*s, out);
        }
        if (quoted)
                fputc('"', out);
}

/* The CSV format: BOM, then per table a caption line, a header line and rows,
 * tables an empty line apart; then the notes and the settings after an
 * empty line each. */
static int render_csv(const struct bbt_report *r, bool chinese, FILE *out)
{
        char buf[NUMBER_BUF];
        size_t i, col, row;

        /* The BOM makes Excel in a Chinese locale read UTF-8 instead of GBK. */
        fputs("\xef\xbb\xbf", out);
        for (i = 0; i < r->n_tables; i++) {
                const struct bbt_table *t = r->tables[i];

                if (i > 0)
                        fputs(CSV_EOL, out);
                csv_field(out, chinese ? t->caption_zh : t->caption_en, false);
                fputs(CSV_EOL, out);
                for (col = 0; col < t->n_cols; col++) {
                        if (col > 0)
                                fputc(',', out);
                        csv_field(out, chinese ? t->cols[col].zh : t->cols[col].en, false);
                }
                fputs(CSV_EOL, out);
                for (row = 0; row < t->n_rows; row++) {
                        for (col = 0; col < t->n_cols; col++) {
                                const struct cell *c = &t->cells[row * t->n_cols + col];

                                if (col > 0)
                                        fputc(',', out);
                                csv_field(out, cell_text(&t->cols[col], c, BBT_FORMAT_CSV, buf, sizeof(buf)),
                                          c->kind == CELL_TEXT);
                        }
                        fputs(CSV_EOL, out);
                }
        }
        if (r->n_notes > 0)
                fputs(CSV_EOL, out);
        for (i = 0; i < r->n_notes; i++) {
                /* One field: the prefix goes inside the quotes if any. */
                const char *note = chinese ? r->notes[i].zh : r->notes[i].en;
                const char *prefix = chinese ? "注：" : "Note: ";
                size_t size = strlen(prefix) + strlen(note) + 1;
                char *line = malloc(size);

                if (!line)
                        return -ENOMEM;
                snprintf(line, size, "%s%s", prefix, note);
                csv_field(out, line, false);
                fputs(CSV_EOL, out);
                free(line);
        }
        if (r->n_settings > 0) {
                fputs(CSV_EOL, out);
                fputs(chinese ? "设置,值" CSV_EOL : "setting,value" CSV_EOL, out);
        }
        for (i = 0; i < r->n_settings; i++) {
                csv_field(out, chinese ? r->settings[i].label_zh : r->settings[i].label_en, false);
                fputc(',', out);
                csv_field(out, r->settings[i].value, false);
                fputs(CSV_EOL, out);
        }
        return 0;
}

/* ---- JSON ---- */

/* Adds cell C of column COL to ROW as member COL->key. Returns false on
 * allocation failure. */
static bool json_cell(cJSON *row, const struct bbt_column *col, const struct cell *c)
{
        char buf[32];

        switch (c->kind) {
        case CELL_TEXT:
                return cJSON_AddStringToObject(row, col->key, c->v.text) != NULL;
        case CELL_INT:
                /* Raw, so that an int64 beyond 2^53 prints exactly rather than as a rounded double. */
                snprintf(buf, sizeof(buf), "%" PRId64, c->v.i);
                return cJSON_AddRawToObject(row, col->key, buf) != NULL;
        case CELL_NUM:
                return cJSON_AddNumberToObject(row, col->key, round_to(c->v.num, column_decimals(col))) != NULL;
        case CELL_EMPTY:
        default:
                return cJSON_AddNullToObject(row, col->key) != NULL;
        }
}

/* Builds the JSON document of R. Returns it (the caller deletes it) or NULL
 * on allocation failure. */
static cJSON *json_build(const struct bbt_report *r, bool chinese)
{
        cJSON *root, *tables, *notes, *settings;
        size_t i, row, col;

        root = cJSON_CreateObject();
        if (!root)
                return NULL;
        if (!cJSON_AddStringToObject(root, "report", r->name) ||
            !cJSON_AddStringToObject(root, "title", chinese ? r->title_zh : r->title_en) ||
            !cJSON_AddStringToObject(root, "lang", chinese ? "zh" : "en"))
                goto fail;
        tables = cJSON_AddObjectToObject(root, "tables");
        if (!tables)
                goto fail;
        for (i = 0; i < r->n_tables; i++) {
                const struct bbt_table *t = r->tables[i];
                cJSON *rows = cJSON_AddArrayToObject(tables, t->key);

                if (!rows)
                        goto fail;
                for (row = 0; row < t->n_rows; row++) {
                        cJSON *obj = cJSON_CreateObject();

                        /* ROWS owns OBJ once added; delete it here only if adding fails. */
                        if (!obj)
                                goto fail;
                        if (!cJSON_AddItemToArray(rows, obj)) {
                                cJSON_Delete(obj);
                                goto fail;
                        }
                        for (col = 0; col < t->n_cols; col++)
                                if (!json_cell(obj, &t->cols[col], &t->cells[row * t->n_cols + col]))
                                        goto fail;
                }
        }
        notes = cJSON_AddArrayToObject(root, "notes");
        if (!notes)
                goto fail;
        for (i = 0; i < r->n_notes; i++) {
                cJSON *s = cJSON_CreateString(chinese ? r->notes[i].zh : r->notes[i].en);

                if (!s)
                        goto fail;
                if (!cJSON_AddItemToArray(notes, s)) {
                        cJSON_Delete(s);
                        goto fail;
                }
        }
        settings = cJSON_AddObjectToObject(root, "settings");
        if (!settings)
                goto fail;
        for (i = 0; i < r->n_settings; i++)
                if (!cJSON_AddStringToObject(settings, r->settings[i].key, r->settings[i].value))
                        goto fail;
        return root;

fail:
        cJSON_Delete(root);
        return NULL;
}

/* The JSON format: one compact line. */
static int render_json(const struct bbt_report *r, bool chinese, FILE *out)
{
        cJSON *root;
        char *text;

        root = json_build(r, chinese);
        if (!root)
                return -ENOMEM;
        text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (!text)
                return -ENOMEM;
        fputs(text, out);
        fputs("\n", out);
        cJSON_free(text);
        return 0;
}

int bbt_report_render(const struct bbt_report *r, enum bbt_format fmt, bool chinese, FILE *out)
{
        int ret;

        if (!r || !out)
                return -EINVAL;
        if (r->error < 0)
                return r->error;
        switch (fmt) {
        case BBT_FORMAT_TABLE:
                ret = render_table(r, chinese, out);
                break;
        case BBT_FORMAT_CSV:
                ret = render_csv(r, chinese, out);
                break;
        case BBT_FORMAT_JSON:
                ret = render_json(r, chinese, out);
                break;
        default:
                return -EINVAL;
        }
        if (ret < 0)
                return ret;
        /* Flush so that a full disk shows now, not at the caller's fclose(). */
        if (fflush(out) != 0 || ferror(out))
                return -EIO;
        return 0;
}
