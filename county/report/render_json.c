/* The JSON renderer: one compact line, the contract of docs/report-json.md (schema "bbt-report/1"). */
#include "render.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* The contract's name and major version: raised on any change a program
 * reading the JSON could trip over (docs/report-json.md, "Versions"). */
#define REPORT_SCHEMA "bbt-report/1"

/* Adds NUM to OBJ as member KEY, unrounded: the shortest text that reads back
 * as the same double. Returns false on allocation failure. */
static bool add_num(cJSON *obj, const char *key, double num)
{
        char buf[32];

        return cJSON_AddRawToObject(obj, key, bbt_num_format(num, buf, sizeof(buf))) != NULL;
}

/* Adds the instant MS at UTC+OFFSET_MIN to OBJ as member KEY in ISO 8601. */
static bool add_time(cJSON *obj, const char *key, int64_t ms, int offset_min)
{
        char buf[40];

        return cJSON_AddStringToObject(obj, key, bbt_time_format(ms, offset_min, true, buf, sizeof(buf))) != NULL;
}

/* Adds cell C of column COL to ROW as member COL->key (and COL->key_label
 * for a code). Returns false on allocation failure. */
static bool json_cell(cJSON *row, const struct bbt_column *col, const struct bbt_cell *c)
{
        char buf[32], label_key[96];

        if (col->type == BBT_CELL_CODE) {
                snprintf(label_key, sizeof(label_key), "%s_label", col->key);
                if (c->kind != BBT_VALUE_CODE)
                        return cJSON_AddNullToObject(row, col->key) && cJSON_AddNullToObject(row, label_key);
                return cJSON_AddStringToObject(row, col->key, c->v.code.code) &&
                       cJSON_AddStringToObject(row, label_key, c->v.code.label);
        }
        switch (c->kind) {
        case BBT_VALUE_TEXT:
                return cJSON_AddStringToObject(row, col->key, c->v.text) != NULL;
        case BBT_VALUE_INT:
                /* Raw, so that an int64 beyond 2^53 prints exactly rather than as a rounded double. */
                snprintf(buf, sizeof(buf), "%" PRId64, c->v.i);
                return cJSON_AddRawToObject(row, col->key, buf) != NULL;
        case BBT_VALUE_NUM:
                return add_num(row, col->key, c->v.num);
        case BBT_VALUE_BOOL:
                return cJSON_AddBoolToObject(row, col->key, c->v.b) != NULL;
        case BBT_VALUE_TIME:
                return add_time(row, col->key, c->v.time.ms, c->v.time.offset_min);
        case BBT_VALUE_EMPTY:
        default:
                return cJSON_AddNullToObject(row, col->key) != NULL;
        }
}

/* Row ROW of T as a new object, or NULL on allocation failure. */
static cJSON *json_row(const struct bbt_table *t, size_t row)
{
        cJSON *obj = cJSON_CreateObject();

        if (!obj)
                return NULL;
        for (size_t col = 0; col < t->n_cols; col++)
                if (!json_cell(obj, &t->cols[col], bbt_table_cell(t, row, col))) {
                        cJSON_Delete(obj);
                        return NULL;
                }
        return obj;
}

/* Adds {"caption", "columns": {key: heading}} of T to HEADINGS. */
static bool json_headings(cJSON *headings, const struct bbt_table *t, bool chinese)
{
        cJSON *h = cJSON_AddObjectToObject(headings, t->key), *cols;

        if (!h || !cJSON_AddStringToObject(h, "caption", chinese ? t->caption_zh : t->caption_en))
                return false;
        cols = cJSON_AddObjectToObject(h, "columns");
        if (!cols)
                return false;
        for (size_t col = 0; col < t->n_cols; col++)
                if (!cJSON_AddStringToObject(cols, t->cols[col].key, chinese ? t->cols[col].zh : t->cols[col].en))
                        return false;
        return true;
}

/* Adds setting S to SETTINGS as {"value", "unit", "label"}. */
static bool json_setting(cJSON *settings, const struct bbt_setting *s, int offset_min, bool chinese)
{
        cJSON *obj = cJSON_AddObjectToObject(settings, s->key);
        char buf[32];
        bool ok;

        if (!obj)
                return false;
        switch (s->kind) {
        case BBT_VALUE_TEXT:
                ok = cJSON_AddStringToObject(obj, "value", s->value) != NULL;
                break;
        case BBT_VALUE_INT:
                snprintf(buf, sizeof(buf), "%" PRId64, s->i);
                ok = cJSON_AddRawToObject(obj, "value", buf) != NULL;
                break;
        case BBT_VALUE_TIME:
                ok = add_time(obj, "value", s->i, offset_min);
                break;
        default:
                ok = cJSON_AddNullToObject(obj, "value") != NULL;
                break;
        }
        if (!ok)
                return false;
        ok = s->unit ? cJSON_AddStringToObject(obj, "unit", s->unit) != NULL
                     : cJSON_AddNullToObject(obj, "unit") != NULL;
        return ok && cJSON_AddStringToObject(obj, "label", chinese ? s->label_zh : s->label_en);
}

/* Builds the JSON document of DOC. Returns it (the caller deletes it) or NULL
 * on allocation failure. */
static cJSON *json_build(const struct bbt_document *doc, bool chinese)
{
        cJSON *root, *tables, *objects, *headings, *notes, *settings;
        size_t i, row;

        root = cJSON_CreateObject();
        if (!root)
                return NULL;
        if (!cJSON_AddStringToObject(root, "schema", REPORT_SCHEMA) ||
            !cJSON_AddStringToObject(root, "report", doc->name) ||
            !cJSON_AddStringToObject(root, "title", chinese ? doc->title_zh : doc->title_en) ||
            !cJSON_AddStringToObject(root, "lang", chinese ? "zh" : "en"))
                goto fail;
        tables = cJSON_AddObjectToObject(root, "tables");
        objects = cJSON_AddObjectToObject(root, "objects");
        headings = cJSON_AddObjectToObject(root, "headings");
        if (!tables || !objects || !headings)
                goto fail;
        for (i = 0; i < doc->n_tables; i++) {
                const struct bbt_table *t = doc->tables[i];
                cJSON *rows;

                if (!json_headings(headings, t, chinese))
                        goto fail;
                if (t->object) {
                        cJSON *obj = json_row(t, 0);

                        if (!obj)
                                goto fail;
                        if (!cJSON_AddItemToObject(objects, t->key, obj)) {
                                cJSON_Delete(obj);
                                goto fail;
                        }
                        continue;
                }
                rows = cJSON_AddArrayToObject(tables, t->key);
                if (!rows)
                        goto fail;
                for (row = 0; row < t->n_rows; row++) {
                        cJSON *obj = json_row(t, row);

                        /* ROWS owns OBJ once added; delete it here only if adding fails. */
                        if (!obj)
                                goto fail;
                        if (!cJSON_AddItemToArray(rows, obj)) {
                                cJSON_Delete(obj);
                                goto fail;
                        }
                }
        }
        notes = cJSON_AddArrayToObject(root, "notes");
        if (!notes)
                goto fail;
        for (i = 0; i < doc->n_notes; i++) {
                cJSON *s = cJSON_CreateString(chinese ? doc->notes[i].zh : doc->notes[i].en);

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
        for (i = 0; i < doc->n_settings; i++)
                if (!json_setting(settings, &doc->settings[i], doc->offset_min, chinese))
                        goto fail;
        return root;

fail:
        cJSON_Delete(root);
        return NULL;
}

/* The JSON format: one compact line. */
static int render(const struct bbt_document *doc, bool chinese, FILE *out)
{
        cJSON *root;
        char *text;

        root = json_build(doc, chinese);
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

const struct bbt_renderer bbt_render_json = {
        .name = "json",
        .help = NULL,
        .media_type = "application/json",
        .render = render,
};
