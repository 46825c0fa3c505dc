/* XLSX read back against CSV: the manifest tests/xlsx-check.py reads, and running it. */
#include "xlsx-readback.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "test.h"

/* How xlsx-check.py names COL's type. No default: a new column type must be
 * named here (-Wswitch) and checked there. */
static const char *type_name(const struct bbt_column *col, char *buf, size_t size)
{
        switch (col->type) {
        case BBT_CELL_TEXT:
        case BBT_CELL_CODE: /* its label */
        case BBT_CELL_BOOL: /* 是/否 */
                return "text";
        case BBT_CELL_TIME:
                return "time";
        case BBT_CELL_INT:
                return "int";
        case BBT_CELL_RATE:
                return "rate";
        case BBT_CELL_NUM:
                snprintf(buf, size, "num:%d", bbt_cell_decimals(col));
                return buf;
        }
        FAIL("column %s: a type xlsx-check.py does not know", col->key);
}

cJSON *bbt_test_xlsx_case(const struct bbt_document *doc, bool chinese, const char *csv_path, const char *xlsx_path)
{
        cJSON *c = cJSON_CreateObject(), *tables;
        char buf[16];

        ASSERT(c);
        tables = cJSON_AddArrayToObject(c, "tables");
        cJSON_AddStringToObject(c, "csv", csv_path);
        cJSON_AddStringToObject(c, "xlsx", xlsx_path);
        cJSON_AddBoolToObject(c, "chinese", chinese);
        cJSON_AddStringToObject(c, "title", chinese ? doc->title_zh : doc->title_en);
        for (size_t i = 0; i < doc->n_tables; i++) {
                const struct bbt_table *t = doc->tables[i];
                cJSON *tj = cJSON_CreateObject(), *types = cJSON_AddArrayToObject(tj, "types");

                cJSON_AddStringToObject(tj, "caption", chinese ? t->caption_zh : t->caption_en);
                for (size_t col = 0; col < t->n_cols; col++)
                        cJSON_AddItemToArray(types, cJSON_CreateString(type_name(&t->cols[col], buf, sizeof(buf))));
                cJSON_AddItemToArray(tables, tj);
        }
        return c;
}

int bbt_test_xlsx_check(const cJSON *manifest, const char *dir, char **out)
{
        char script[512], path[600], log[600], *text = cJSON_Print(manifest), *argv[4];
        int status;

        ASSERT(text);
        snprintf(script, sizeof(script), "%s/xlsx-check.py", bbt_test_srcdir());
        snprintf(path, sizeof(path), "%s/manifest.json", dir);
        snprintf(log, sizeof(log), "%s/xlsx-check.log", dir);
        bbt_test_write_file(path, text);
        free(text);
        unlink(log);
        argv[0] = "/usr/bin/python3";
        argv[1] = script;
        argv[2] = path;
        argv[3] = NULL;
        status = bbt_test_run(argv, log, log, 60000);
        if (!WIFEXITED(status))
                FAIL("xlsx-check.py: %s", bbt_test_status_text(status));
        *out = bbt_test_slurp(log);
        return WEXITSTATUS(status);
}
