/* The text table renderer: title, captions, columns aligned for a terminal (CJK characters two cells wide). */
#include "render.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The empty cell: U+2014 EM DASH (counted as one cell). */
#define EMPTY_CELL "\xe2\x80\x94"

/* ---- display width ---- */

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

/* Cell C of column COL as the table shows it: rates as percentages with one
 * decimal, other numbers as in every format, "—" for an empty cell. */
static const char *cell_text(const struct bbt_column *col, const struct bbt_cell *c, bool chinese, char *buf,
                             size_t size)
{
        const char *s;

        if (c->kind == BBT_VALUE_NUM && col->type == BBT_CELL_RATE) {
                snprintf(buf, size, "%.1f%%", bbt_cell_round(c->v.num, 3) * 100);
                return buf;
        }
        s = bbt_cell_format(col, c, chinese, buf, size);
        return s ? s : EMPTY_CELL;
}

/* ---- writing ---- */

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

/* Numbers right, words and times left. */
static bool column_right_aligned(const struct bbt_column *col)
{
        return col->type == BBT_CELL_INT || col->type == BBT_CELL_RATE || col->type == BBT_CELL_NUM;
}

/* Writes row ROW of T (SIZE_MAX: the header) padded to WIDTHS, columns two
 * spaces apart, with no trailing blanks. */
static void table_row(FILE *out, const struct bbt_table *t, size_t row, const size_t *widths, bool chinese)
{
        char buf[BBT_CELL_TEXT_MAX];
        size_t i;

        for (i = 0; i < t->n_cols; i++) {
                const struct bbt_column *col = &t->cols[i];
                const char *s;
                size_t pad;

                if (row == SIZE_MAX)
                        s = chinese ? col->zh : col->en;
                else
                        s = cell_text(col, bbt_table_cell(t, row, i), chinese, buf, sizeof(buf));
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
        char buf[BBT_CELL_TEXT_MAX];
        size_t *widths, i, row;

        widths = calloc(t->n_cols, sizeof(*widths));
        if (!widths)
                return -ENOMEM;
        for (i = 0; i < t->n_cols; i++) {
                const char *heading = chinese ? t->cols[i].zh : t->cols[i].en;

                widths[i] = display_width(heading ? heading : "");
                for (row = 0; row < t->n_rows; row++) {
                        const char *s = cell_text(&t->cols[i], bbt_table_cell(t, row, i), chinese, buf,
                                                  sizeof(buf));
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
static int render(const struct bbt_document *doc, bool chinese, FILE *out)
{
        size_t i;
        int ret;

        put_text(out, chinese ? doc->title_zh : doc->title_en);
        fputs("\n", out);
        for (i = 0; i < doc->n_tables; i++) {
                fputs("\n", out);
                ret = table_write(out, doc->tables[i], chinese);
                if (ret < 0)
                        return ret;
        }
        if (doc->n_notes > 0)
                fputs("\n", out);
        for (i = 0; i < doc->n_notes; i++) {
                fputs(chinese ? "注：" : "Note: ", out);
                put_text(out, chinese ? doc->notes[i].zh : doc->notes[i].en);
                fputs("\n", out);
        }
        if (doc->n_settings > 0)
                fputs(chinese ? "\n设置\n" : "\nSettings\n", out);
        for (i = 0; i < doc->n_settings; i++) {
                put_text(out, chinese ? doc->settings[i].label_zh : doc->settings[i].label_en);
                /* A full-width colon after a Chinese label, as in "注：". */
                fputs(chinese ? "：" : ": ", out);
                put_text(out, doc->settings[i].value);
                fputs("\n", out);
        }
        return 0;
}

const struct bbt_renderer bbt_render_text = {
        .name = "table",
        .help = NULL,
        .media_type = "text/plain; charset=utf-8",
        .render = render,
};
