/* The JSON renderer: one compact line, {"report", "title", "lang", "tables", "notes", "settings"}. */
#include "render.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* Adds cell C of column COL to ROW as member COL->key. Returns false on
 * allocation failure. */
static bool json_cell(cJSON *row, const struct bbt_column *col, const struct bbt_cell *c)
{
        char buf[32];

        switch (c->kind) {
        case BBT_VALUE_TEXT:
                return cJSON_AddStringToObject(row, col->key, c->v.text) != NULL;
        case BBT_VALUE_INT:
                /* Raw, so that an int64 beyond 2^53 prints exactly rather than as a rounded double. */
                snprintf(buf, sizeof(buf), "%" PRId64, c->v.i);
                return cJSON_AddRawToObject(row, col->key, buf) != NULL;
        case BBT_VALUE_NUM:
                return cJSON_AddNumberToObject(row, col->key, bbt_cell_round(c->v.num, bbt_cell_decimals(col))) != NULL;
        case BBT_VALUE_EMPTY:
        default:
                return cJSON_AddNullToObject(row, col->key) != NULL;
        }
}

/* Builds the JSON document of DOC. Returns it (the caller deletes it) or NULL
 * on allocation failure. */
static cJSON *json_build(const struct bbt_document *doc, bool chinese)
{
        cJSON *root, *tables, *notes, *settings;
        size_t i, row, col;

        root = cJSON_CreateObject();
        if (!root)
                return NULL;
        if (!cJSON_AddStringToObject(root, "report", doc->name) ||
            !cJSON_AddStringToObject(root, "title", chinese ? doc->title_zh : doc->title_en) ||
            !cJSON_AddStringToObject(root, "lang", chinese ? "zh" : "en"))
                goto fail;
        tables = cJSON_AddObjectToObject(root, "tables");
        if (!tables)
                goto fail;
        for (i = 0; i < doc->n_tables; i++) {
                const struct bbt_table *t = doc->tables[i];
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
                                if (!json_cell(obj, &t->cols[col], bbt_table_cell(t, row, col)))
                                        goto fail;
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
                if (!cJSON_AddStringToObject(settings, doc->settings[i].key, doc->settings[i].value))
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
