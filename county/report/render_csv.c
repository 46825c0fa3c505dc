/* The CSV renderer: UTF-8 with a BOM and CRLF (RFC 4180) for Excel in China, guarded against formula injection. */
#include "render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
static int render(const struct bbt_document *doc, bool chinese, FILE *out)
{
        char buf[BBT_CELL_TEXT_MAX];
        size_t i, col, row;

        /* The BOM makes Excel in a Chinese locale read UTF-8 instead of GBK. */
        fputs("\xef\xbb\xbf", out);
        for (i = 0; i < doc->n_tables; i++) {
                const struct bbt_table *t = doc->tables[i];

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
                                const struct bbt_cell *c = bbt_table_cell(t, row, col);
                                const char *s = bbt_cell_format(&t->cols[col], c, chinese, buf, sizeof(buf));

                                if (col > 0)
                                        fputc(',', out);
                                /* A code's label may come from the store (a loss reason the aggregator wrote). */
                                csv_field(out, s ? s : "", c->kind == BBT_VALUE_TEXT || c->kind == BBT_VALUE_CODE);
                        }
                        fputs(CSV_EOL, out);
                }
        }
        if (doc->n_notes > 0)
                fputs(CSV_EOL, out);
        for (i = 0; i < doc->n_notes; i++) {
                /* One field: the prefix goes inside the quotes if any. */
                const char *note = chinese ? doc->notes[i].zh : doc->notes[i].en;
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
        if (doc->n_settings > 0) {
                fputs(CSV_EOL, out);
                fputs(chinese ? "设置,值" CSV_EOL : "setting,value" CSV_EOL, out);
        }
        for (i = 0; i < doc->n_settings; i++) {
                csv_field(out, chinese ? doc->settings[i].label_zh : doc->settings[i].label_en, false);
                fputc(',', out);
                csv_field(out, doc->settings[i].value, false);
                fputs(CSV_EOL, out);
        }
        return 0;
}

const struct bbt_renderer bbt_render_csv = {
        .name = "csv",
        .help = "UTF-8 with BOM, for Excel",
        .media_type = "text/csv; charset=utf-8",
        .render = render,
};
