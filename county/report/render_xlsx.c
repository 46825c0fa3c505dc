/* The XLSX renderer: a sheet per table with its caption and a frozen header, numbers as numbers in their formats, then the notes and the settings, through libxlsxwriter. */
#include "render.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <xlsxwriter.h>

/* Excel's limits: a sheet name has at most 31 characters, a cell at most
 * 32,767, a sheet at most 1,048,576 rows. */
#define SHEET_NAME_MAX 31
#define SHEET_NAME_SIZE (SHEET_NAME_MAX * 4 + 1)
#define CELL_CHARS_MAX 32767
#define SHEET_ROWS_MAX 1048576u

/* Column widths, in Excel's units (about one digit or half a Chinese character). */
#define WIDTH_MIN 6
#define WIDTH_MAX 60
#define WIDTH_NOTE 100

/* Every table sheet and the settings sheet: a title row, the header row
 * (frozen with it, repeated on every printed page), then the data. */
#define ROW_TITLE 0
#define ROW_HEADER 1
#define ROW_DATA 2

struct xlsx {
        lxw_workbook *wb;
        const struct bbt_document *doc;
        bool chinese;
        lxw_format *title, *header, *text, *note, *integer, *rate, *time;
        lxw_format *num[11]; /* 0 … 10 decimals, made when first needed */
        char (*names)[SHEET_NAME_SIZE]; /* sheet names so far */
        size_t n_names;
        lxw_error error; /* the first failure */
};

static void fail(struct xlsx *x, lxw_error e)
{
        if (e != LXW_NO_ERROR && x->error == LXW_NO_ERROR)
                x->error = e;
}

/* ---- text ---- */

/* The code point at *P (valid UTF-8, as every document string is), moving *P past it. */
static uint32_t next_cp(const char **p)
{
        uint32_t cp;
        size_t len = bbt_utf8_decode(*p, 4, &cp);

        if (len == 0) { /* cannot happen for a document string; step over the byte */
                cp = (unsigned char)**p;
                len = 1;
        }
        *p += len;
        return cp;
}

/* Appends code point CP to BUF at *LEN as UTF-8 (BUF has room). */
static void put_cp(char *buf, size_t *len, uint32_t cp)
{
        unsigned char *q = (unsigned char *)buf + *len;

        if (cp < 0x80) {
                q[0] = (unsigned char)cp;
                *len += 1;
        } else if (cp < 0x800) {
                q[0] = (unsigned char)(0xc0 | cp >> 6);
                q[1] = (unsigned char)(0x80 | (cp & 0x3f));
                *len += 2;
        } else if (cp < 0x10000) {
                q[0] = (unsigned char)(0xe0 | cp >> 12);
                q[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                q[2] = (unsigned char)(0x80 | (cp & 0x3f));
                *len += 3;
        } else {
                q[0] = (unsigned char)(0xf0 | cp >> 18);
                q[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                q[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                q[3] = (unsigned char)(0x80 | (cp & 0x3f));
                *len += 4;
        }
        buf[*len] = '\0';
}

/* How wide S shows in a cell: East Asian characters count two, the widest line counts. */
static size_t text_width(const char *s)
{
        size_t w = 0, line = 0;

        while (*s) {
                uint32_t cp = next_cp(&s);

                if (cp == '\n') {
                        line = 0;
                        continue;
                }
                line += cp >= 0x1100 ? 2 : 1;
                if (line > w)
                        w = line;
        }
        return w;
}

/* Writes text S, cut to Excel's cell limit at a character boundary if it is
 * longer (no report has such a cell; a registry name could, in theory). */
static lxw_error write_text(lxw_worksheet *ws, lxw_row_t row, lxw_col_t col, const char *s, lxw_format *f)
{
        size_t len = strlen(s), cut = 0, chars = 0;
        lxw_error e;
        char *copy;

        if (len <= CELL_CHARS_MAX) /* bytes ≥ characters */
                return worksheet_write_string(ws, row, col, s, f);
        while (s[cut] && chars < CELL_CHARS_MAX) {
                const char *p = s + cut;

                next_cp(&p);
                cut = (size_t)(p - s);
                chars++;
        }
        copy = strndup(s, cut);
        if (!copy)
                return LXW_ERROR_MEMORY_MALLOC_FAILED;
        e = worksheet_write_string(ws, row, col, copy, f);
        free(copy);
        return e;
}

/* ---- sheet names ---- */

/* Characters Excel refuses in a sheet name, and the full-width forms that
 * stand in for them. */
static uint32_t sheet_char(uint32_t cp)
{
        switch (cp) {
        case '[': return 0xff3b;
        case ']': return 0xff3d;
        case ':': return 0xff1a;
        case '*': return 0xff0a;
        case '?': return 0xff1f;
        case '/': return 0xff0f;
        case '\\': return 0xff3c;
        default: return cp < 0x20 || cp == 0x7f ? ' ' : cp;
        }
}

/* WANT as a sheet name in BUF: forbidden characters replaced, at most MAX
 * characters, no apostrophe at either end, not empty. */
static void sheet_name_clean(const char *want, size_t max, char *buf)
{
        size_t len = 0, chars = 0;

        buf[0] = '\0';
        while (*want && chars < max) {
                uint32_t cp = sheet_char(next_cp(&want));

                if (cp == '\'' && (chars == 0 || !*want || chars + 1 == max))
                        cp = 0x2019; /* ’ */
                put_cp(buf, &len, cp);
                chars++;
        }
        if (len == 0)
                snprintf(buf, SHEET_NAME_SIZE, "Sheet");
}

/* A sheet name from WANT that no earlier sheet has (Excel compares them
 * without regard to case): WANT cleaned, or cut and numbered "(2)", "(3)"….
 * Returns the name (valid until the next call) or NULL on allocation failure. */
static const char *sheet_name(struct xlsx *x, const char *want)
{
        char(*names)[SHEET_NAME_SIZE] = realloc(x->names, (x->n_names + 1) * sizeof(*x->names));
        char *buf, suffix[16];

        if (!names)
                return NULL;
        x->names = names;
        buf = names[x->n_names];
        for (unsigned n = 1;; n++) {
                bool taken = false;

                if (n == 1) {
                        sheet_name_clean(want, SHEET_NAME_MAX, buf);
                } else {
                        size_t len;

                        snprintf(suffix, sizeof(suffix), "(%u)", n);
                        sheet_name_clean(want, SHEET_NAME_MAX - strlen(suffix), buf);
                        len = strlen(buf);
                        /* An apostrophe may end the cut name now that the suffix follows. */
                        snprintf(buf + len, SHEET_NAME_SIZE - len, "%s", suffix);
                }
                for (size_t i = 0; i < x->n_names && !taken; i++)
                        taken = strcasecmp(names[i], buf) == 0;
                if (!taken)
                        break;
        }
        x->n_names++;
        return buf;
}

/* ---- formats ---- */

/* The number format with DECIMALS (0 … 10) places: "0", "0.0", "0.00"…. */
static lxw_format *num_format(struct xlsx *x, int decimals)
{
        char code[16] = "0.";

        if (!x->num[decimals]) {
                x->num[decimals] = workbook_add_format(x->wb);
                if (!x->num[decimals])
                        return NULL;
                if (decimals == 0) {
                        code[1] = '\0';
                } else {
                        memset(code + 2, '0', (size_t)decimals);
                        code[2 + decimals] = '\0';
                }
                format_set_num_format(x->num[decimals], code);
        }
        return x->num[decimals];
}

static int make_formats(struct xlsx *x)
{
        x->title = workbook_add_format(x->wb);
        x->header = workbook_add_format(x->wb);
        x->text = workbook_add_format(x->wb);
        x->note = workbook_add_format(x->wb);
        x->integer = workbook_add_format(x->wb);
        x->rate = workbook_add_format(x->wb);
        x->time = workbook_add_format(x->wb);
        if (!x->title || !x->header || !x->text || !x->note || !x->integer || !x->rate || !x->time)
                return -ENOMEM;
        format_set_num_format(x->time, "yyyy-mm-dd hh:mm");
        format_set_bold(x->title);
        format_set_font_size(x->title, 13);
        format_set_bold(x->header);
        format_set_bg_color(x->header, 0xDDEBF7);
        format_set_bottom(x->header, LXW_BORDER_THIN);
        format_set_text_wrap(x->header);
        format_set_align(x->header, LXW_ALIGN_VERTICAL_CENTER);
        format_set_num_format(x->text, "@");
        format_set_text_wrap(x->note);
        format_set_align(x->note, LXW_ALIGN_VERTICAL_TOP);
        format_set_num_format(x->integer, "0");
        format_set_num_format(x->rate, "0.0%");
        return 0;
}

/* ---- cells: one case per column type ---- */

/* The two switches below have a case for every column type and no default,
 * so that a new type (-Wswitch) shows the lines to add here: its format and
 * how its value is written. */

/* The format of COL's cells. */
static lxw_format *column_format(struct xlsx *x, const struct bbt_column *col)
{
        switch (col->type) {
        case BBT_CELL_TEXT:
        case BBT_CELL_CODE:
        case BBT_CELL_BOOL:
                return x->text;
        case BBT_CELL_TIME:
                return x->time;
        case BBT_CELL_INT:
                return x->integer;
        case BBT_CELL_RATE:
                return x->rate;
        case BBT_CELL_NUM:
                return num_format(x, bbt_cell_decimals(col));
        }
        return x->text;
}

/* Writes cell C of column COL: text as text, numbers as numbers (unrounded:
 * the format rounds what shows, and a sum in Excel adds the true values), a
 * code as its label, a boolean as 是/否 (yes/no), a time as an Excel date
 * and time on the school's clock (Excel has no time zones). */
static lxw_error write_cell(struct xlsx *x, lxw_worksheet *ws, lxw_row_t row, lxw_col_t ci,
                            const struct bbt_column *col, const struct bbt_cell *c)
{
        lxw_format *f = column_format(x, col);

        if (!f)
                return LXW_ERROR_MEMORY_MALLOC_FAILED;
        if (c->kind == BBT_VALUE_EMPTY)
                return LXW_NO_ERROR; /* blank, as in CSV */
        switch (col->type) {
        case BBT_CELL_TEXT:
                if (c->kind == BBT_VALUE_TEXT)
                        return write_text(ws, row, ci, c->v.text, f);
                break;
        case BBT_CELL_INT:
        case BBT_CELL_RATE:
        case BBT_CELL_NUM:
                if (c->kind == BBT_VALUE_INT)
                        return worksheet_write_number(ws, row, ci, (double)c->v.i, f);
                if (c->kind == BBT_VALUE_NUM)
                        return worksheet_write_number(ws, row, ci, c->v.num, f);
                break;
        case BBT_CELL_CODE:
                if (c->kind == BBT_VALUE_CODE)
                        return write_text(ws, row, ci, c->v.code.label, f);
                break;
        case BBT_CELL_BOOL:
                if (c->kind == BBT_VALUE_BOOL)
                        return write_text(ws, row, ci, c->v.b ? (x->chinese ? "是" : "yes") : (x->chinese ? "否" : "no"),
                                          f);
                break;
        case BBT_CELL_TIME:
                /* Whole minutes, as the CSV shows them. */
                if (c->kind == BBT_VALUE_TIME)
                        return worksheet_write_unixtime(
                                ws, row, ci,
                                (c->v.time.ms - c->v.time.ms % 60000) / 1000 + (int64_t)c->v.time.offset_min * 60, f);
                break;
        }
        return LXW_ERROR_PARAMETER_VALIDATION; /* a value the document never holds in such a column */
}

/* How wide cell C of column COL shows. */
static size_t cell_width(const struct xlsx *x, const struct bbt_column *col, const struct bbt_cell *c)
{
        char buf[BBT_CELL_TEXT_MAX];
        const char *s;

        if (col->type == BBT_CELL_RATE && c->kind == BBT_VALUE_NUM) {
                snprintf(buf, sizeof(buf), "%.1f%%", c->v.num * 100);
                return strlen(buf);
        }
        s = bbt_cell_format(col, c, x->chinese, buf, sizeof(buf));
        return s ? text_width(s) : 0;
}

/* Sets column CI's width from its widest shown text W (the header's included). */
static void set_width(struct xlsx *x, lxw_worksheet *ws, lxw_col_t ci, size_t w)
{
        double width = (double)w + 2;

        if (width < WIDTH_MIN)
                width = WIDTH_MIN;
        if (width > WIDTH_MAX)
                width = WIDTH_MAX;
        fail(x, worksheet_set_column(ws, ci, ci, width, NULL));
}

/* ---- sheets ---- */

/* TITLE centred in a page header, in BUF: '&' doubled (a header's escape),
 * cut at a character boundary to fit. */
static const char *header_text(const char *title, char *buf, size_t size)
{
        size_t n = (size_t)snprintf(buf, size, "&C");

        while (*title) {
                const char *p = title;
                size_t len;

                next_cp(&p);
                len = (size_t)(p - title);
                if (n + len + (*title == '&') >= size)
                        break;
                if (*title == '&')
                        buf[n++] = '&';
                memcpy(buf + n, title, len);
                n += len;
                title = p;
        }
        buf[n] = '\0';
        return buf;
}

/* A new sheet named from WANT, set up for print: landscape, one page wide,
 * the report's title above and page numbers below, title and header rows
 * frozen and repeated. NULL on failure (remembered). */
static lxw_worksheet *add_sheet(struct xlsx *x, const char *want)
{
        const char *name = sheet_name(x, want);
        lxw_worksheet *ws;
        char header[256];

        if (!name) {
                fail(x, LXW_ERROR_MEMORY_MALLOC_FAILED);
                return NULL;
        }
        ws = workbook_add_worksheet(x->wb, name);
        if (!ws) {
                /* libxlsxwriter's temporary file, or memory */
                fail(x, LXW_ERROR_CREATING_TMPFILE);
                return NULL;
        }
        worksheet_set_landscape(ws);
        worksheet_fit_to_pages(ws, 1, 0);
        fail(x, worksheet_set_header(ws, header_text(x->chinese ? x->doc->title_zh : x->doc->title_en, header,
                                                     sizeof(header))));
        fail(x, worksheet_set_footer(ws, "&C&P / &N"));
        fail(x, worksheet_repeat_rows(ws, ROW_TITLE, ROW_HEADER));
        worksheet_freeze_panes(ws, ROW_DATA, 0);
        return ws;
}

static int table_sheet(struct xlsx *x, const struct bbt_table *t)
{
        lxw_worksheet *ws;
        size_t *width;

        if (t->n_rows > SHEET_ROWS_MAX - ROW_DATA || t->n_cols > LXW_COL_MAX)
                return -EFBIG;
        ws = add_sheet(x, x->chinese ? t->caption_zh : t->caption_en);
        width = calloc(t->n_cols, sizeof(*width));
        if (!ws || !width) {
                free(width);
                return ws ? -ENOMEM : 0;
        }
        /* Rows in order: constant-memory mode writes each row out when the next starts. */
        fail(x, write_text(ws, ROW_TITLE, 0, x->chinese ? t->caption_zh : t->caption_en, x->title));
        for (size_t ci = 0; ci < t->n_cols; ci++) {
                const char *h = x->chinese ? t->cols[ci].zh : t->cols[ci].en;

                fail(x, write_text(ws, ROW_HEADER, (lxw_col_t)ci, h, x->header));
                width[ci] = text_width(h) + 1; /* bold */
        }
        for (size_t row = 0; row < t->n_rows && x->error == LXW_NO_ERROR; row++)
                for (size_t ci = 0; ci < t->n_cols; ci++) {
                        const struct bbt_cell *c = bbt_table_cell(t, row, ci);
                        size_t w = cell_width(x, &t->cols[ci], c);

                        fail(x, write_cell(x, ws, (lxw_row_t)(ROW_DATA + row), (lxw_col_t)ci, &t->cols[ci], c));
                        if (w > width[ci])
                                width[ci] = w;
                }
        for (size_t ci = 0; ci < t->n_cols; ci++)
                set_width(x, ws, (lxw_col_t)ci, width[ci]);
        fail(x, worksheet_autofilter(ws, ROW_HEADER, 0, (lxw_row_t)(ROW_HEADER + t->n_rows),
                                     (lxw_col_t)(t->n_cols - 1)));
        free(width);
        return 0;
}

/* The notes, one a row, wrapped. */
static void notes_sheet(struct xlsx *x)
{
        const struct bbt_document *doc = x->doc;
        lxw_worksheet *ws;

        if (doc->n_notes == 0)
                return;
        ws = add_sheet(x, x->chinese ? "说明" : "Notes");
        if (!ws)
                return;
        fail(x, write_text(ws, ROW_TITLE, 0, x->chinese ? doc->title_zh : doc->title_en, x->title));
        fail(x, write_text(ws, ROW_HEADER, 0, x->chinese ? "说明" : "Note", x->header));
        for (size_t i = 0; i < doc->n_notes; i++)
                fail(x, write_text(ws, (lxw_row_t)(ROW_DATA + i), 0, x->chinese ? doc->notes[i].zh : doc->notes[i].en,
                                   x->note));
        fail(x, worksheet_set_column(ws, 0, 0, WIDTH_NOTE, NULL));
}

/* The settings, as text: label and value. */
static void settings_sheet(struct xlsx *x)
{
        const struct bbt_document *doc = x->doc;
        size_t w0, w1;
        lxw_worksheet *ws;

        ws = add_sheet(x, x->chinese ? "设置" : "Settings");
        if (!ws)
                return;
        fail(x, write_text(ws, ROW_TITLE, 0, x->chinese ? doc->title_zh : doc->title_en, x->title));
        fail(x, write_text(ws, ROW_HEADER, 0, x->chinese ? "设置" : "Setting", x->header));
        fail(x, write_text(ws, ROW_HEADER, 1, x->chinese ? "值" : "Value", x->header));
        w0 = w1 = 0;
        for (size_t i = 0; i < doc->n_settings; i++) {
                const struct bbt_setting *s = &doc->settings[i];
                const char *label = x->chinese ? s->label_zh : s->label_en;

                fail(x, write_text(ws, (lxw_row_t)(ROW_DATA + i), 0, label, x->text));
                fail(x, write_text(ws, (lxw_row_t)(ROW_DATA + i), 1, s->value, x->text));
                if (text_width(label) > w0)
                        w0 = text_width(label);
                if (text_width(s->value) > w1)
                        w1 = text_width(s->value);
        }
        set_width(x, ws, 0, w0);
        set_width(x, ws, 1, w1);
}

/* ---- the workbook ---- */

/* A libxlsxwriter error as a negative errno. */
static int lxw_errno(lxw_error e)
{
        switch (e) {
        case LXW_NO_ERROR:
                return 0;
        case LXW_ERROR_MEMORY_MALLOC_FAILED:
                return -ENOMEM;
        case LXW_ERROR_CREATING_XLSX_FILE:
        case LXW_ERROR_CREATING_TMPFILE:
        case LXW_ERROR_READING_TMPFILE:
                return errno > 0 ? -errno : -EIO;
        case LXW_ERROR_ZIP_FILE_OPERATION:
        case LXW_ERROR_ZIP_FILE_ADD:
        case LXW_ERROR_ZIP_CLOSE:
                return -EIO;
        default:
                return -EINVAL;
        }
}

static int render_file(const struct bbt_document *doc, bool chinese, const char *path, const char *tmpdir)
{
        lxw_workbook_options opt = {
                /* Each row goes to a temporary file as soon as the next
                 * starts, so a 20,000-terminal sheet costs no more memory
                 * than a small one; the files go where the output goes. */
                .constant_memory = LXW_TRUE,
                .tmpdir = (char *)tmpdir,
                .use_zip64 = LXW_FALSE,
        };
        char subject[64];
        lxw_doc_properties props = {
                .title = chinese ? doc->title_zh : doc->title_en,
                .subject = subject,
                .author = "bbt " BBT_VERSION,
                .keywords = doc->name,
                .comments = chinese ? "班班通应用评估 bbt-report" : "班班通 evaluation, bbt-report",
        };
        struct xlsx x = { .doc = doc, .chinese = chinese };
        int r = 0;
        lxw_error e;

        snprintf(subject, sizeof(subject), "bbt-report %s", doc->name);
        x.wb = workbook_new_opt(path, &opt);
        if (!x.wb)
                return -ENOMEM;
        r = make_formats(&x);
        if (r == 0)
                fail(&x, workbook_set_properties(x.wb, &props));
        for (size_t i = 0; r == 0 && i < doc->n_tables && x.error == LXW_NO_ERROR; i++)
                r = table_sheet(&x, doc->tables[i]);
        if (r == 0 && x.error == LXW_NO_ERROR)
                notes_sheet(&x);
        if (r == 0 && x.error == LXW_NO_ERROR)
                settings_sheet(&x);
        errno = 0;
        e = workbook_close(x.wb); /* writes PATH, and frees the workbook either way */
        if (r == 0)
                r = lxw_errno(x.error != LXW_NO_ERROR ? x.error : e);
        free(x.names);
        return r;
}

const struct bbt_renderer bbt_render_xlsx = {
        .name = "xlsx",
        .help = "Excel workbook, with -o FILE",
        .media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        .render_file = render_file,
        .binary = true,
};
