/* Report documents and renderers: CJK alignment, numbers, empty cells, CSV quoting and guard, exact JSON, XLSX read back, -o written atomically, errors. */
/* bbt-test: label=unit timeout=10 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "render.h"
#include "bbt/base.h"
#include "daemon.h"
#include "fixture-tree.h"
#include "test.h"
#include "xlsx-readback.h"

#define BOM "\xef\xbb\xbf"

static const struct bbt_column school_cols[] = {
        { "school", "学校", "School", BBT_CELL_TEXT, 0 },
        { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
        { "usage_rate", "使用率", "Usage", BBT_CELL_RATE, 0 },
        { "hours", "日均时长", "Hours/day", BBT_CELL_NUM, 1 },
};

static const struct bbt_column township_cols[] = {
        { "township", "乡镇", "Township", BBT_CELL_TEXT, 0 },
        { "schools", "学校数", "Schools", BBT_CELL_INT, 0 },
        { "cv", "差异系数", "CV", BBT_CELL_NUM, 3 },
};

/* Renders R into a string the caller frees; fails the case if render does not return 0. */
static char *render(const struct bbt_document *r, const char *fmt, bool chinese)
{
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);

        ASSERT(out);
        ASSERT_OK(bbt_document_render(r, bbt_renderer_find(fmt), chinese, out));
        ASSERT_EQ(fclose(out), 0);
        ASSERT_EQ(strlen(text), len);
        return text;
}

/* Renders R in FMT and compares with EXPECTED. */
static void expect(const struct bbt_document *r, const char *fmt, bool chinese, const char *expected)
{
        char *text = render(r, fmt, chinese);

        ASSERT_STR_EQ(text, expected);
        free(text);
}

/* Three schools: a Chinese name, one with full-width brackets, a mixed one
 * with empty cells; a note and two settings. */
static struct bbt_document *schools_report(void)
{
        struct bbt_document *r = bbt_document_new("summary", "班班通使用情况", "Smart-board usage");
        struct bbt_table *t;

        ASSERT(r);
        t = bbt_document_add_table(r, "schools", "各校使用情况", "Usage by school", school_cols, 4);
        ASSERT(t);
        ASSERT_OK(bbt_table_add_row(t));
        bbt_table_set_text(t, 0, "城关第一小学");
        bbt_table_set_int(t, 1, 12);
        bbt_table_set_num(t, 2, 0.85309);
        bbt_table_set_num(t, 3, 3.46);
        ASSERT_OK(bbt_table_add_row(t));
        bbt_table_set_text(t, 0, "红星小学（东校区）");
        bbt_table_set_int(t, 1, 8);
        bbt_table_set_num(t, 2, 1.0);
        bbt_table_set_num(t, 3, 0.04);
        ASSERT_OK(bbt_table_add_row(t));
        bbt_table_set_text(t, 0, "A小学");
        bbt_table_set_num(t, 2, 0.0);
        bbt_table_set_num(t, 3, NAN); /* no lessons: an empty cell */
        ASSERT_OK(bbt_document_add_note(r, "使用率＝使用课时÷总课时。", "Usage = lessons used / lessons."));
        ASSERT_OK(bbt_document_add_setting(r, "from", "起始日期", "From", "2026-09-01"));
        ASSERT_OK(bbt_document_add_setting_int(r, "min_pupils", "最少学生数", "Min. pupils", 50, "pupils"));
        return r;
}

/* Formats are found by name in the renderers' table; the first is the default. */
TEST(renderer_table)
{
        const struct bbt_renderer *f;
        size_t n = 0;

        ASSERT_STR_EQ(bbt_renderer_find("csv")->name, "csv");
        ASSERT_STR_EQ(bbt_renderer_find("json")->name, "json");
        ASSERT_STR_EQ(bbt_renderer_find("table")->name, "table");
        ASSERT_STR_EQ(bbt_renderer_at(0)->name, "table");
        ASSERT(bbt_renderer_find("CSV") == NULL);
        ASSERT(bbt_renderer_find("") == NULL);
        ASSERT(bbt_renderer_find(NULL) == NULL);
        /* Every entry is complete, findable by its own name, and renders:
         * a text format to a stream, a binary one (xlsx) to a file only. */
        for (; (f = bbt_renderer_at(n)); n++) {
                struct bbt_document *r = schools_report();
                char *text;

                ASSERT(f->name && *f->name && f->media_type && (f->render || f->render_file));
                ASSERT(bbt_renderer_find(f->name) == f);
                if (f->render) {
                        ASSERT(!f->binary);
                        text = render(r, f->name, true);
                        ASSERT_STR_CONTAINS(text, "红星小学（东校区）");
                } else {
                        const char *dir = bbt_test_tree_new("render");
                        char path[512], err[600];

                        ASSERT(f->binary);
                        snprintf(path, sizeof(path), "%s/out", dir);
                        ASSERT_OK(bbt_document_render_file(r, f, true, path, err, sizeof(err)));
                        text = bbt_test_slurp(path);
                        ASSERT(memcmp(text, "PK\x03\x04", 4) == 0); /* a zip */
                        ASSERT_EQ(bbt_document_render(r, f, true, stdout), -ENOTSUP);
                }
                free(text);
                bbt_document_free(r);
        }
        ASSERT_EQ(n, 4);
        ASSERT(bbt_renderer_at(n) == NULL);
        ASSERT(bbt_renderer_find("xlsx")->binary);
}

/* -o FILE: written whole into a temporary file beside it, then renamed over
 * it; on failure FILE keeps what it had and nothing is left behind. */
TEST(render_file_atomic)
{
        const char *dir = bbt_test_tree_new("render");
        struct bbt_document *r = schools_report(), *bad;
        const struct bbt_renderer *csv = bbt_renderer_find("csv"), *xlsx = bbt_renderer_find("xlsx");
        char path[512], err[600], *text;
        struct stat st;
        DIR *d;
        struct dirent *e;

        snprintf(path, sizeof(path), "%s/report.csv", dir);
        bbt_test_write_file(path, "old");
        ASSERT_OK(chmod(path, 0640));
        ASSERT_OK(bbt_document_render_file(r, csv, true, path, err, sizeof(err)));
        text = bbt_test_slurp(path);
        ASSERT(strncmp(text, BOM "各校使用情况\r\n", strlen(BOM "各校使用情况\r\n")) == 0);
        free(text);
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0640); /* a replaced file keeps its mode */

        /* A document that failed while built: nothing written, FILE as it was. */
        bad = bbt_document_new("x", "x", "x");
        ASSERT(bbt_document_add_table(bad, "Bad Key", "x", "x", school_cols, 4) == NULL);
        ASSERT_EQ(bbt_document_render_file(bad, xlsx, true, path, err, sizeof(err)), -EINVAL);
        bbt_document_free(bad);
        text = bbt_test_slurp(path);
        ASSERT(strncmp(text, BOM "各校使用情况", strlen(BOM "各校使用情况")) == 0);
        free(text);

        /* No such directory: a located error. */
        snprintf(path, sizeof(path), "%s/none/report.xlsx", dir);
        ASSERT_EQ(bbt_document_render_file(r, xlsx, true, path, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "none/report.xlsx: No such file or directory");
        /* Not a regular file: a stream format writes into it, xlsx refuses. */
        ASSERT_OK(bbt_document_render_file(r, csv, true, "/dev/null", err, sizeof(err)));
        ASSERT_EQ(bbt_document_render_file(r, xlsx, true, "/dev/null", err, sizeof(err)), -EINVAL);
        ASSERT_STR_CONTAINS(err, "/dev/null: not a regular file");

        d = opendir(dir);
        ASSERT(d != NULL);
        while ((e = readdir(d)))
                if (e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                        FAIL("left behind: %s", e->d_name);
        closedir(d);
        bbt_document_free(r);
}

/* The workbook where Excel has rules: sheet names too long, with forbidden
 * characters, an apostrophe at an end, the same as another without regard to
 * case or as the settings sheet; a table without rows; texts that look like
 * formulas or numbers; negative numbers. Read back by openpyxl against the CSV. */
TEST(xlsx_edge_cases)
{
        static const struct bbt_column cols[] = {
                { "name", "名称", "Name", BBT_CELL_TEXT, 0 },
                { "n", "数量", "Count", BBT_CELL_INT, 0 },
                { "rate", "比率", "Rate", BBT_CELL_RATE, 0 },
                { "x", "数值", "Value", BBT_CELL_NUM, 2 },
        };
        static const char *const captions[] = {
                "一个非常非常非常长的表格标题，超过了Excel允许的三十一个字符的限制，还要再长一点",
                "一个非常非常非常长的表格标题，超过了Excel允许的三十一个字符的限制，第二张",
                "a/b:c*d?[e]\\f",
                "'引号'",
                "Usage",
                "USAGE",
                "设置",
                "空表",
        };
        static const char *const texts[] = { "=SUM(A1:A2)", "-3", "+86 10", "@user", "-x", "0012", "line\nbreak" };
        const char *dir = bbt_test_tree_new("xlsx");
        struct bbt_document *r = bbt_document_new("edge", "边界情况", "Edge cases");
        cJSON *manifest = cJSON_CreateArray();
        char csv[512], xlsx[512], err[600], *out;

        for (size_t i = 0; i < BBT_ELEMENTSOF(captions); i++) {
                char key[16];
                struct bbt_table *t;

                snprintf(key, sizeof(key), "t%zu", i);
                t = bbt_document_add_table(r, key, captions[i], captions[i], cols, BBT_ELEMENTSOF(cols));
                for (size_t row = 0; i + 1 < BBT_ELEMENTSOF(captions) && row < BBT_ELEMENTSOF(texts); row++) {
                        ASSERT_OK(bbt_table_add_row(t));
                        bbt_table_set_text(t, 0, texts[row]);
                        bbt_table_set_int(t, 1, (int64_t)row * -1000000007LL);
                        bbt_table_set_num(t, 2, row == 3 ? NAN : 0.00049 * (double)row - 0.001);
                        /* 3 × -1.005 = -3.0149999999999997: a tie in the workbook's 16 digits */
                        bbt_table_set_num(t, 3, -1.005 * (double)row);
                }
        }
        bbt_document_add_note(r, "=注释", "=note");
        bbt_document_add_setting(r, "from", "起始日期", "From", "2026-09-01");
        ASSERT_OK(r->error);
        for (int zh = 1; zh >= 0; zh--) {
                snprintf(csv, sizeof(csv), "%s/edge-%d.csv", dir, zh);
                snprintf(xlsx, sizeof(xlsx), "%s/edge-%d.xlsx", dir, zh);
                ASSERT_OK(bbt_document_render_file(r, bbt_renderer_find("csv"), zh, csv, err, sizeof(err)));
                ASSERT_OK(bbt_document_render_file(r, bbt_renderer_find("xlsx"), zh, xlsx, err, sizeof(err)));
                cJSON_AddItemToArray(manifest, bbt_test_xlsx_case(r, zh, csv, xlsx));
        }
        if (bbt_test_xlsx_check(manifest, dir, &out) != 0)
                FAIL("the XLSX files differ from the CSV:\n%s", out);
        fputs(out, stderr);
        free(out);
        cJSON_Delete(manifest);
        bbt_document_free(r);
}

/* Chinese names are two cells a character, "—" one; numbers to the right. */
TEST(text_cjk_alignment_zh)
{
        struct bbt_document *r = schools_report();

        expect(r, "table", true,
               "班班通使用情况\n"
               "\n"
               "各校使用情况\n"
               "学校                终端数  使用率  日均时长\n"
               "------------------  ------  ------  --------\n"
               "城关第一小学            12   85.3%       3.5\n"
               "红星小学（东校区）       8  100.0%       0.0\n"
               "A小学                    —    0.0%         —\n"
               "\n"
               "注：使用率＝使用课时÷总课时。\n"
               "\n"
               "设置\n"
               "起始日期：2026-09-01\n"
               "最少学生数：50\n");
        bbt_document_free(r);
}

TEST(text_en_settings)
{
        struct bbt_document *r = schools_report();

        expect(r, "table", false,
               "Smart-board usage\n"
               "\n"
               "Usage by school\n"
               "School              Terminals   Usage  Hours/day\n"
               "------------------  ---------  ------  ---------\n"
               "城关第一小学               12   85.3%        3.5\n"
               "红星小学（东校区）          8  100.0%        0.0\n"
               "A小学                       —    0.0%          —\n"
               "\n"
               "Note: Usage = lessons used / lessons.\n"
               "\n"
               "Settings\n"
               "From: 2026-09-01\n"
               "Min. pupils: 50\n");
        bbt_document_free(r);
}

/* Other wide and zero-width characters: Hangul, full-width digits, a
 * combining accent, CJK extension B; a newline in a name becomes a space. */
TEST(text_width_ranges)
{
        static const struct bbt_column cols[] = {
                { "name", "名称", "Name", BBT_CELL_TEXT, 0 },
                { "n", "数", "N", BBT_CELL_INT, 0 },
        };
        struct bbt_document *r = bbt_document_new("x", "标题", "Title");
        struct bbt_table *t = bbt_document_add_table(r, "t", "表", "T", cols, 2);

        ASSERT(t);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "한국어"); /* 6 cells */
        bbt_table_set_int(t, 1, 1);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "１２３ab"); /* 8 cells */
        bbt_table_set_int(t, 1, 2);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "e\xcc\x81t\xc3\xa9"); /* "étè" with a combining acute: 3 cells */
        bbt_table_set_int(t, 1, 3);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "\xf0\xa0\x80\x80村\n二"); /* U+20000, 村, newline, 二: 7 cells */
        bbt_table_set_int(t, 1, 4);
        expect(r, "table", false,
               "Title\n"
               "\n"
               "T\n"
               "Name      N\n"
               "--------  -\n"
               "한국어    1\n"
               "１２３ab  2\n"
               "e\xcc\x81t\xc3\xa9       3\n"
               "\xf0\xa0\x80\x80村 二   4\n");
        bbt_document_free(r);
}

TEST(csv_zh)
{
        struct bbt_document *r = schools_report();

        expect(r, "csv", true,
               BOM "各校使用情况\r\n"
               "学校,终端数,使用率,日均时长\r\n"
               "城关第一小学,12,0.8531,3.5\r\n"
               "红星小学（东校区）,8,1.0000,0.0\r\n"
               "A小学,,0.0000,\r\n"
               "\r\n"
               "注：使用率＝使用课时÷总课时。\r\n"
               "\r\n"
               "设置,值\r\n"
               "起始日期,2026-09-01\r\n"
               "最少学生数,50\r\n");
        bbt_document_free(r);
}

TEST(csv_en)
{
        struct bbt_document *r = schools_report();

        expect(r, "csv", false,
               BOM "Usage by school\r\n"
               "School,Terminals,Usage,Hours/day\r\n"
               "城关第一小学,12,0.8531,3.5\r\n"
               "红星小学（东校区）,8,1.0000,0.0\r\n"
               "A小学,,0.0000,\r\n"
               "\r\n"
               "Note: Usage = lessons used / lessons.\r\n"
               "\r\n"
               "setting,value\r\n"
               "From,2026-09-01\r\n"
               "Min. pupils,50\r\n");
        bbt_document_free(r);
}

/* A name with a comma, quotes and a newline: one quoted field in CSV, a space in a table, escapes in JSON. */
TEST(csv_quoting)
{
        static const struct bbt_column cols[] = {
                { "name", "名称", "Name", BBT_CELL_TEXT, 0 },
                { "n", "数", "N, count", BBT_CELL_INT, 0 },
        };
        struct bbt_document *r = bbt_document_new("q", "标题", "Title");
        struct bbt_table *t = bbt_document_add_table(r, "t", "表", "Table \"q\"", cols, 2);

        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "Hill \"Top\", 第二小学\n分校");
        bbt_table_set_int(t, 1, 7);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "plain");
        bbt_table_set_int(t, 1, -3);
        ASSERT_OK(bbt_document_add_setting(r, "where", "地区", "Where", "X县, Y镇"));
        expect(r, "csv", false,
               BOM "\"Table \"\"q\"\"\"\r\n"
               "Name,\"N, count\"\r\n"
               "\"Hill \"\"Top\"\", 第二小学\n分校\",7\r\n"
               "plain,-3\r\n"
               "\r\n"
               "setting,value\r\n"
               "Where,\"X县, Y镇\"\r\n");
        expect(r, "table", false,
               "Title\n"
               "\n"
               "Table \"q\"\n"
               "Name                       N, count\n"
               "-------------------------  --------\n"
               "Hill \"Top\", 第二小学 分校         7\n"
               "plain                            -3\n"
               "\n"
               "Settings\n"
               "Where: X县, Y镇\n");
        expect(r, "json", false,
               "{\"schema\":\"bbt-report/1\",\"report\":\"q\",\"title\":\"Title\",\"lang\":\"en\",\"tables\":{\"t\":["
               "{\"name\":\"Hill \\\"Top\\\", 第二小学\\n分校\",\"n\":7},{\"name\":\"plain\",\"n\":-3}]},"
               "\"objects\":{},\"headings\":{\"t\":{\"caption\":\"Table \\\"q\\\"\",\"columns\":{\"name\":\"Name\","
               "\"n\":\"N, count\"}}},"
               "\"notes\":[],\"settings\":{\"where\":{\"value\":\"X县, Y镇\",\"unit\":null,\"label\":\"Where\"}}}\n");
        bbt_document_free(r);
}

/* Text cells Excel would run as formulas get an apostrophe; numbers and "-12.5" do not. */
TEST(csv_formula_guard)
{
        static const struct bbt_column cols[] = {
                { "name", "名称", "Name", BBT_CELL_TEXT, 0 },
                { "delta", "变化", "Delta", BBT_CELL_NUM, 1 },
        };
        static const char *const names[] = {
                "=HYPERLINK(\"http://x\",\"y\")", "+8613800000000", "@SUM(A1:A9)", "-1+2", "-", "\t=1",
                "-12.5", "东-西", "a=b", "—",
        };
        struct bbt_document *r = bbt_document_new("g", "标题", "Title");
        struct bbt_table *t = bbt_document_add_table(r, "t", "表", "T", cols, 2);
        char *json;
        size_t i;

        for (i = 0; i < BBT_ELEMENTSOF(names); i++) {
                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, names[i]);
        }
        bbt_table_set_num(t, 1, -2.25); /* a number cell is never guarded */
        expect(r, "csv", false,
               BOM "T\r\n"
               "Name,Delta\r\n"
               "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",\r\n"
               "'+8613800000000,\r\n"
               "'@SUM(A1:A9),\r\n"
               "'-1+2,\r\n"
               "'-,\r\n"
               "'\t=1,\r\n"
               "-12.5,\r\n"
               "东-西,\r\n"
               "a=b,\r\n"
               "—,-2.3\r\n");
        /* Only CSV is guarded. */
        json = render(r, "json", false);
        ASSERT_STR_CONTAINS(json, "{\"name\":\"+8613800000000\",\"delta\":null}");
        ASSERT_STR_CONTAINS(json, "{\"name\":\"—\",\"delta\":-2.25}"); /* unrounded */
        free(json);
        bbt_document_free(r);
}

TEST(json_exact_and_parses)
{
        struct bbt_document *r = schools_report();
        char *text = render(r, "json", true);
        const cJSON *tables, *rows, *row, *item;
        cJSON *root;

        ASSERT_STR_EQ(text,
                      "{\"schema\":\"bbt-report/1\",\"report\":\"summary\",\"title\":\"班班通使用情况\","
                      "\"lang\":\"zh\",\"tables\":{\"schools\":["
                      "{\"school\":\"城关第一小学\",\"terminals\":12,\"usage_rate\":0.85309,\"hours\":3.46},"
                      "{\"school\":\"红星小学（东校区）\",\"terminals\":8,\"usage_rate\":1,\"hours\":0.04},"
                      "{\"school\":\"A小学\",\"terminals\":null,\"usage_rate\":0,\"hours\":null}]},"
                      "\"objects\":{},\"headings\":{\"schools\":{\"caption\":\"各校使用情况\",\"columns\":{"
                      "\"school\":\"学校\",\"terminals\":\"终端数\",\"usage_rate\":\"使用率\",\"hours\":\"日均时长\"}}},"
                      "\"notes\":[\"使用率＝使用课时÷总课时。\"],"
                      "\"settings\":{\"from\":{\"value\":\"2026-09-01\",\"unit\":null,\"label\":\"起始日期\"},"
                      "\"min_pupils\":{\"value\":50,\"unit\":\"pupils\",\"label\":\"最少学生数\"}}}\n");

        root = cJSON_Parse(text);
        ASSERT(root);
        ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "lang")), "zh");
        tables = cJSON_GetObjectItemCaseSensitive(root, "tables");
        rows = cJSON_GetObjectItemCaseSensitive(tables, "schools");
        ASSERT(cJSON_IsArray(rows));
        ASSERT_EQ(cJSON_GetArraySize(rows), 3);
        row = cJSON_GetArrayItem(rows, 0);
        ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "school")), "城关第一小学");
        ASSERT_EQ(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "terminals")), 12);
        ASSERT_DBL_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "usage_rate")), 0.85309, 0);
        row = cJSON_GetArrayItem(rows, 2);
        ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "terminals")));
        ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "hours")));
        item = cJSON_GetObjectItemCaseSensitive(root, "settings");
        item = cJSON_GetObjectItemCaseSensitive(item, "min_pupils");
        ASSERT_EQ(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(item, "value")), 50);
        ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "unit")), "pupils");
        cJSON_Delete(root);
        free(text);

        /* English: the title and notes change, keys and values do not. */
        text = render(r, "json", false);
        ASSERT_STR_CONTAINS(text, "\"title\":\"Smart-board usage\",\"lang\":\"en\"");
        ASSERT_STR_CONTAINS(text, "\"notes\":[\"Usage = lessons used / lessons.\"]");
        free(text);
        bbt_document_free(r);
}

/* JSON numbers are unrounded: each reads back as the very double set, in the
 * shortest text that does (no cJSON 17-digit noise where fewer digits do). */
TEST(json_numbers_exact_and_shortest)
{
        static const struct bbt_column cols[] = {
                { "rate", "率", "Rate", BBT_CELL_RATE, 0 },
                { "num", "数", "Num", BBT_CELL_NUM, 2 },
        };
        struct bbt_document *r = bbt_document_new("n", "数", "N");
        struct bbt_table *t = bbt_document_add_table(r, "t", "表", "T", cols, 2);
        const cJSON *row;
        cJSON *root;
        char *text, buf[32], shorter[400];
        int k = 0;

        for (k = 0; k <= 10000; k++) {
                bbt_table_add_row(t);
                bbt_table_set_num(t, 0, k / 10000.0 + (k % 2 ? 1e-9 : -1e-9));
                bbt_table_set_num(t, 1, k * 12.34 + 0.001); /* 37.020999999999994 needs 17 digits */
        }
        text = render(r, "json", false);
        ASSERT_STR_CONTAINS(text, "{\"rate\":0.000300001,\"num\":37.020999999999994}");
        ASSERT_STR_CONTAINS(text, "{\"rate\":-1e-09,\"num\":0.001}"); /* no noise where there is none */
        root = cJSON_Parse(text);
        ASSERT(root);
        k = 0;
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "tables"), "t"))
        {
                double rate = k / 10000.0 + (k % 2 ? 1e-9 : -1e-9), num = k * 12.34 + 0.001;

                ASSERT(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "rate")) == rate);
                ASSERT(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "num")) == num);
                /* Shortest: one significant digit fewer does not read back. */
                for (int i = 0; i < 2; i++) {
                        double v = i ? num : rate;
                        int digits = 0;

                        bbt_num_format(v, buf, sizeof(buf));
                        for (const char *p = buf; *p && *p != 'e'; p++)
                                digits += *p >= '0' && *p <= '9';
                        snprintf(shorter, sizeof(shorter), "%.*g", digits - 1, v);
                        if (digits > 1 && strtod(shorter, NULL) == v && strlen(shorter) < strlen(buf))
                                FAIL("%s is not the shortest for %.17g: %s is", buf, v, shorter);
                }
                k++;
        }
        ASSERT_EQ(k, 10001);
        cJSON_Delete(root);
        free(text);
        bbt_document_free(r);
}

/* Rounding half away from zero, no "-0.0", big integers exact, set_int into a NUM column. */
TEST(rates_and_nums)
{
        static const struct bbt_column cols[] = {
                { "rate", "率", "Rate", BBT_CELL_RATE, 0 },
                { "num", "数", "Num", BBT_CELL_NUM, 1 },
                { "n", "计数", "Count", BBT_CELL_INT, 0 },
        };
        struct bbt_document *r = bbt_document_new("n", "数", "N");
        struct bbt_table *t = bbt_document_add_table(r, "t", "表", "T", cols, 3);

        bbt_table_add_row(t);
        bbt_table_set_num(t, 0, 0.12344);
        bbt_table_set_num(t, 1, -0.04); /* rounds to zero: no sign */
        bbt_table_set_int(t, 2, INT64_MAX);
        bbt_table_add_row(t);
        bbt_table_set_num(t, 0, -0.00001);
        bbt_table_set_int(t, 1, 42);
        bbt_table_set_int(t, 2, INT64_MIN);
        bbt_table_add_row(t);
        bbt_table_set_num(t, 0, 0.9996);
        bbt_table_set_num(t, 1, 2.25);
        bbt_table_set_int(t, 2, 0);
        bbt_table_add_row(t);
        bbt_table_set_num(t, 0, INFINITY);
        bbt_table_set_num(t, 1, 1234567.96);
        expect(r, "table", false,
               "N\n"
               "\n"
               "T\n"
               "  Rate        Num                 Count\n"
               "------  ---------  --------------------\n"
               " 12.3%        0.0   9223372036854775807\n"
               "  0.0%       42.0  -9223372036854775808\n"
               "100.0%        2.3                     0\n"
               "     —  1234568.0                     —\n");
        expect(r, "csv", false,
               BOM "T\r\n"
               "Rate,Num,Count\r\n"
               "0.1234,0.0,9223372036854775807\r\n"
               "0.0000,42.0,-9223372036854775808\r\n"
               "0.9996,2.3,0\r\n"
               ",1234568.0,\r\n");
        /* JSON: unrounded, integers exact. */
        expect(r, "json", false,
               "{\"schema\":\"bbt-report/1\",\"report\":\"n\",\"title\":\"N\",\"lang\":\"en\",\"tables\":{\"t\":["
               "{\"rate\":0.12344,\"num\":-0.04,\"n\":9223372036854775807},"
               "{\"rate\":-1e-05,\"num\":42,\"n\":-9223372036854775808},"
               "{\"rate\":0.9996,\"num\":2.25,\"n\":0},"
               "{\"rate\":null,\"num\":1234567.96,\"n\":null}]},\"objects\":{},"
               "\"headings\":{\"t\":{\"caption\":\"T\",\"columns\":{\"rate\":\"Rate\",\"num\":\"Num\",\"n\":\"Count\"}}},"
               "\"notes\":[],\"settings\":{}}\n");
        bbt_document_free(r);
}

/* Two tables, in the order added, in all three formats. */
TEST(two_tables)
{
        struct bbt_document *r = bbt_document_new("balance", "均衡情况", "Balance");
        struct bbt_table *s = bbt_document_add_table(r, "schools", "学校", "Schools", school_cols, 4);
        struct bbt_table *t = bbt_document_add_table(r, "townships", "乡镇", "Townships", township_cols, 3);

        ASSERT(s && t);
        ASSERT_OK(bbt_table_add_row(t));
        bbt_table_set_text(t, 0, "城关镇");
        bbt_table_set_int(t, 1, 5);
        bbt_table_set_num(t, 2, 0.51512);
        ASSERT_OK(bbt_table_add_row(s));
        bbt_table_set_text(s, 0, "城关第一小学");
        bbt_table_set_int(s, 1, 12);
        bbt_table_set_num(s, 2, 0.5);
        bbt_table_set_num(s, 3, 2);
        ASSERT_OK(bbt_table_add_row(t));
        bbt_table_set_text(t, 0, "红星乡");
        bbt_table_set_int(t, 1, 3);
        bbt_table_set_num(t, 2, -0.00004);
        expect(r, "table", true,
               "均衡情况\n"
               "\n"
               "学校\n"
               "学校          终端数  使用率  日均时长\n"
               "------------  ------  ------  --------\n"
               "城关第一小学      12   50.0%       2.0\n"
               "\n"
               "乡镇\n"
               "乡镇    学校数  差异系数\n"
               "------  ------  --------\n"
               "城关镇       5     0.515\n"
               "红星乡       3     0.000\n");
        expect(r, "csv", true,
               BOM "学校\r\n"
               "学校,终端数,使用率,日均时长\r\n"
               "城关第一小学,12,0.5000,2.0\r\n"
               "\r\n"
               "乡镇\r\n"
               "乡镇,学校数,差异系数\r\n"
               "城关镇,5,0.515\r\n"
               "红星乡,3,0.000\r\n");
        expect(r, "json", true,
               "{\"schema\":\"bbt-report/1\",\"report\":\"balance\",\"title\":\"均衡情况\",\"lang\":\"zh\",\"tables\":{"
               "\"schools\":[{\"school\":\"城关第一小学\",\"terminals\":12,\"usage_rate\":0.5,\"hours\":2}],"
               "\"townships\":[{\"township\":\"城关镇\",\"schools\":5,\"cv\":0.51512},"
               "{\"township\":\"红星乡\",\"schools\":3,\"cv\":-4e-05}]},\"objects\":{},\"headings\":{"
               "\"schools\":{\"caption\":\"学校\",\"columns\":{\"school\":\"学校\",\"terminals\":\"终端数\","
               "\"usage_rate\":\"使用率\",\"hours\":\"日均时长\"}},"
               "\"townships\":{\"caption\":\"乡镇\",\"columns\":{\"township\":\"乡镇\",\"schools\":\"学校数\","
               "\"cv\":\"差异系数\"}}},"
               "\"notes\":[],\"settings\":{}}\n");
        bbt_document_free(r);
}

/* A table with no rows keeps its caption and header; JSON has an empty array. */
TEST(zero_rows)
{
        struct bbt_document *r = bbt_document_new("alerts", "告警", "Alerts");
        struct bbt_table *t = bbt_document_add_table(r, "townships", "乡镇", "Townships", township_cols, 3);

        ASSERT(t);
        ASSERT_OK(bbt_document_add_setting(r, "day", "日期", "Day", "2026-12-01"));
        expect(r, "table", true,
               "告警\n"
               "\n"
               "乡镇\n"
               "乡镇  学校数  差异系数\n"
               "----  ------  --------\n"
               "（无数据）\n"
               "\n"
               "设置\n"
               "日期：2026-12-01\n");
        expect(r, "table", false,
               "Alerts\n"
               "\n"
               "Townships\n"
               "Township  Schools  CV\n"
               "--------  -------  --\n"
               "(no data)\n"
               "\n"
               "Settings\n"
               "Day: 2026-12-01\n");
        expect(r, "csv", true,
               BOM "乡镇\r\n"
               "乡镇,学校数,差异系数\r\n"
               "\r\n"
               "设置,值\r\n"
               "日期,2026-12-01\r\n");
        expect(r, "json", false,
               "{\"schema\":\"bbt-report/1\",\"report\":\"alerts\",\"title\":\"Alerts\",\"lang\":\"en\","
               "\"tables\":{\"townships\":[]},\"objects\":{},\"headings\":{\"townships\":{\"caption\":\"Townships\","
               "\"columns\":{\"township\":\"Township\",\"schools\":\"Schools\",\"cv\":\"CV\"}}},"
               "\"notes\":[],\"settings\":{\"day\":{\"value\":\"2026-12-01\",\"unit\":null,\"label\":\"Day\"}}}\n");
        bbt_document_free(r);

        /* No tables, notes or settings at all. */
        r = bbt_document_new("empty", "空", "Empty");
        expect(r, "table", true, "空\n");
        expect(r, "csv", true, BOM);
        expect(r, "json", true,
               "{\"schema\":\"bbt-report/1\",\"report\":\"empty\",\"title\":\"空\",\"lang\":\"zh\",\"tables\":{},"
               "\"objects\":{},\"headings\":{},\"notes\":[],\"settings\":{}}\n");
        bbt_document_free(r);
}

/* Invalid UTF-8 becomes U+FFFD, so the JSON stays valid. */
TEST(invalid_utf8_replaced)
{
        static const struct bbt_column cols[] = { { "name", "名称", "Name", BBT_CELL_TEXT, 0 } };
        struct bbt_document *r = bbt_document_new("u", "标题", "Title");
        struct bbt_table *t = bbt_document_add_table(r, "t", "表", "T", cols, 1);
        char *text;
        cJSON *root;

        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "\xff好\xc3"); /* a stray byte and a cut sequence */
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "\xed\xa0\x80\xc0\xaf"); /* a surrogate and an overlong '/' */
        text = render(r, "json", false);
        ASSERT_STR_CONTAINS(text, "[{\"name\":\"\xef\xbf\xbd好\xef\xbf\xbd\"},{\"name\":\""
                                  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}]");
        root = cJSON_Parse(text);
        ASSERT(root);
        cJSON_Delete(root);
        free(text);
        bbt_document_free(r);
}

/* A failing stream gives -EIO. */
TEST(write_error_eio)
{
        struct bbt_document *r = schools_report();
        FILE *out = fopen("/dev/full", "we");

        if (!out)
                bbt_test_skip("no /dev/full: %s", strerror(errno));
        ASSERT_EQ(bbt_document_render(r, bbt_renderer_find("table"), true, out), -EIO);
        fclose(out);
        out = fopen("/dev/full", "we");
        ASSERT(out);
        ASSERT_EQ(bbt_document_render(r, bbt_renderer_find("json"), true, out), -EIO);
        fclose(out);
        bbt_document_free(r);
}

/* Renders R expecting ERROR and no output at all. */
static void expect_error(const struct bbt_document *r, int error)
{
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);

        ASSERT(out);
        ASSERT_EQ(bbt_document_render(r, bbt_renderer_find("csv"), true, out), error);
        ASSERT_EQ(fclose(out), 0);
        ASSERT_EQ(len, 0);
        free(text);
}

/* Mistakes while building are remembered and returned by render, which then writes nothing. */
TEST(build_errors_remembered)
{
        static const struct bbt_column bad_key[] = { { "Name", "名称", "Name", BBT_CELL_TEXT, 0 } };
        struct bbt_document *r;
        struct bbt_table *t;

        /* A cell before any row. */
        r = bbt_document_new("e", "错", "E");
        t = bbt_document_add_table(r, "t", "表", "T", school_cols, 4);
        bbt_table_set_int(t, 1, 3);
        expect_error(r, -EINVAL);
        bbt_document_free(r);

        /* A fraction into an INT column, text into a number column, a column out of range. */
        r = bbt_document_new("e", "错", "E");
        t = bbt_document_add_table(r, "t", "表", "T", school_cols, 4);
        bbt_table_add_row(t);
        bbt_table_set_num(t, 1, 0.5);
        expect_error(r, -EINVAL);
        bbt_document_free(r);
        r = bbt_document_new("e", "错", "E");
        t = bbt_document_add_table(r, "t", "表", "T", school_cols, 4);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 2, "85%");
        expect_error(r, -EINVAL);
        bbt_document_free(r);
        r = bbt_document_new("e", "错", "E");
        t = bbt_document_add_table(r, "t", "表", "T", school_cols, 4);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 4, "x");
        expect_error(r, -EINVAL);
        bbt_document_free(r);

        /* Bad and repeated keys; the set functions take the NULL table. */
        r = bbt_document_new("e", "错", "E");
        ASSERT(!bbt_document_add_table(r, "Bad-Key", "表", "T", school_cols, 4));
        ASSERT(!bbt_document_add_table(r, "t", "表", "T", bad_key, 1));
        ASSERT(!bbt_document_add_table(r, "t", "表", "T", school_cols, 0));
        t = bbt_document_add_table(r, "t", "表", "T", school_cols, 4);
        ASSERT(t);
        ASSERT(!bbt_document_add_table(r, "t", "表", "T", school_cols, 4));
        ASSERT_EQ(bbt_table_add_row(NULL), -EINVAL);
        bbt_table_set_text(NULL, 0, "x");
        bbt_table_set_int(NULL, 0, 1);
        bbt_table_set_num(NULL, 0, 1);
        ASSERT_OK(bbt_document_add_setting(r, "k", "键", "Key", "v"));
        ASSERT_EQ(bbt_document_add_setting(r, "k", "键", "Key", "w"), -EINVAL);
        ASSERT_EQ(bbt_document_add_setting(r, "", "键", "Key", "w"), -EINVAL);
        expect_error(r, -EINVAL);
        bbt_document_free(r);

        /* A cell emptied again with NULL is fine; so is replacing text. */
        r = bbt_document_new("e", "错", "E");
        t = bbt_document_add_table(r, "t", "表", "T", school_cols, 4);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "first");
        bbt_table_set_text(t, 0, "second");
        bbt_table_set_int(t, 1, 5);
        bbt_table_set_text(t, 1, NULL);
        expect(r, "csv", false, BOM "T\r\nSchool,Terminals,Usage,Hours/day\r\nsecond,,,\r\n");
        bbt_document_free(r);
        bbt_document_free(NULL);
        ASSERT_EQ(bbt_document_render(NULL, bbt_renderer_find("csv"), false, stdout), -EINVAL);
}

/* Many rows grow the cell array and free cleanly. */
TEST(many_rows)
{
        struct bbt_document *r = bbt_document_new("m", "多", "Many");
        struct bbt_table *t = bbt_document_add_table(r, "t", "表", "T", township_cols, 3);
        char name[32], *text;
        int i;

        for (i = 0; i < 5000; i++) {
                ASSERT_OK(bbt_table_add_row(t));
                snprintf(name, sizeof(name), "乡镇%d", i);
                bbt_table_set_text(t, 0, name);
                bbt_table_set_int(t, 1, i);
        }
        text = render(r, "table", true);
        ASSERT_STR_CONTAINS(text, "\n乡镇4999    4999         —\n");
        free(text);
        bbt_document_free(r);
}

/* Codes, booleans, times, an object and typed settings in all three formats:
 * JSON has the code beside its label, true/false, ISO 8601 with the offset,
 * null for never; text and CSV the label, 是/否 and local minutes. */
TEST(typed_cells)
{
        static const struct bbt_column cols[] = {
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "area", "城乡", "Area", BBT_CELL_CODE, 0 },
                { "online", "在线", "Online", BBT_CELL_BOOL, 0 },
                { "last_seen", "最后上报", "Last seen", BBT_CELL_TIME, 0 },
        };
        static const struct bbt_column gap_cols[] = { { "usage_rate", "使用率", "Usage", BBT_CELL_RATE, 0 } };
        struct bbt_document *r = bbt_document_new("k", "类型", "Types");
        struct bbt_table *t, *o;

        ASSERT(r);
        r->offset_min = 480;
        t = bbt_document_add_table(r, "t", "终端", "Terminals", cols, 4);
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "A1");
        bbt_table_set_code(t, 1, "urban", "城区");
        bbt_table_set_bool(t, 2, true);
        bbt_table_set_time(t, 3, 1788221100000LL); /* 2026-09-01 00:05 UTC = 08:05 at +08:00 */
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "B2");
        bbt_table_set_code(t, 1, "rural", NULL); /* no label: the code */
        bbt_table_set_bool(t, 2, false);
        bbt_table_set_time(t, 3, 0); /* never: empty */
        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, "C3");
        bbt_table_set_time(t, 3, 1788221100123LL);
        o = bbt_document_add_object(r, "gap", "差距", "Gap", gap_cols, 1);
        ASSERT(o && o->object && o->n_rows == 1);
        bbt_table_set_num(o, 0, 0.123456789);
        ASSERT_OK(bbt_document_add_setting_int(r, "window", "窗口(上课日)", "Window (school days)", 10,
                                               "school_days"));
        ASSERT_OK(bbt_document_add_setting_time(r, "generated", "生成时间", "Generated", 1788221100000LL));
        ASSERT_OK(bbt_document_add_setting_none(r, "county", "县区", "County", "全部"));
        expect(r, "table", true,
               "类型\n"
               "\n"
               "终端\n"
               "终端  城乡   在线  最后上报\n"
               "----  -----  ----  ----------------\n"
               "A1    城区   是    2026-09-01 08:05\n"
               "B2    rural  否    —\n"
               "C3    —      —     2026-09-01 08:05\n"
               "\n"
               "差距\n"
               "使用率\n"
               "------\n"
               " 12.3%\n"
               "\n"
               "设置\n"
               "窗口(上课日)：10\n"
               "生成时间：2026-09-01 08:05\n"
               "县区：全部\n");
        expect(r, "csv", false,
               BOM "Terminals\r\n"
               "Terminal,Area,Online,Last seen\r\n"
               "A1,城区,yes,2026-09-01 08:05\r\n"
               "B2,rural,no,\r\n"
               "C3,,,2026-09-01 08:05\r\n"
               "\r\n"
               "Gap\r\n"
               "Usage\r\n"
               "0.1235\r\n"
               "\r\n"
               "setting,value\r\n"
               "Window (school days),10\r\n"
               "Generated,2026-09-01 08:05\r\n"
               "County,全部\r\n");
        expect(r, "json", true,
               "{\"schema\":\"bbt-report/1\",\"report\":\"k\",\"title\":\"类型\",\"lang\":\"zh\",\"tables\":{\"t\":["
               "{\"terminal\":\"A1\",\"area\":\"urban\",\"area_label\":\"城区\",\"online\":true,"
               "\"last_seen\":\"2026-09-01T08:05:00+08:00\"},"
               "{\"terminal\":\"B2\",\"area\":\"rural\",\"area_label\":\"rural\",\"online\":false,\"last_seen\":null},"
               "{\"terminal\":\"C3\",\"area\":null,\"area_label\":null,\"online\":null,"
               "\"last_seen\":\"2026-09-01T08:05:00.123+08:00\"}]},"
               "\"objects\":{\"gap\":{\"usage_rate\":0.123456789}},"
               "\"headings\":{\"t\":{\"caption\":\"终端\",\"columns\":{\"terminal\":\"终端\",\"area\":\"城乡\","
               "\"online\":\"在线\",\"last_seen\":\"最后上报\"}},\"gap\":{\"caption\":\"差距\",\"columns\":{"
               "\"usage_rate\":\"使用率\"}}},\"notes\":[],\"settings\":{"
               "\"window\":{\"value\":10,\"unit\":\"school_days\",\"label\":\"窗口(上课日)\"},"
               "\"generated\":{\"value\":\"2026-09-01T08:05:00+08:00\",\"unit\":null,\"label\":\"生成时间\"},"
               "\"county\":{\"value\":null,\"unit\":null,\"label\":\"县区\"}}}\n");
        /* West of Greenwich, and an offset of less than an hour keeps its sign. */
        {
                char buf[40];

                ASSERT_STR_EQ(bbt_time_format(1788221100000LL, -330, true, buf, sizeof(buf)),
                              "2026-08-31T18:35:00-05:30");
                ASSERT_STR_EQ(bbt_time_format(1788221100000LL, -30, true, buf, sizeof(buf)),
                              "2026-08-31T23:35:00-00:30");
                ASSERT_STR_EQ(bbt_time_format(1788221100000LL, -30, false, buf, sizeof(buf)), "2026-08-31 23:35");
        }
        bbt_document_free(r);
}

/* Codes are [a-z0-9_]+; a CODE column's KEY_label may not clash with another
 * key; an object has one row; each setter takes only its own type. */
TEST(typed_cells_errors)
{
        static const struct bbt_column clash[] = {
                { "area", "城乡", "Area", BBT_CELL_CODE, 0 },
                { "area_label", "城乡名称", "Area name", BBT_CELL_TEXT, 0 },
        };
        static const struct bbt_column cols[] = {
                { "area", "城乡", "Area", BBT_CELL_CODE, 0 },
                { "online", "在线", "Online", BBT_CELL_BOOL, 0 },
                { "at", "时间", "At", BBT_CELL_TIME, 0 },
        };
        static const char *const bad_codes[] = { "Urban", "城区", "", "a-b", "a b" };
        struct bbt_document *r;
        struct bbt_table *t;

        r = bbt_document_new("e", "错", "E");
        ASSERT(!bbt_document_add_table(r, "t", "表", "T", clash, 2));
        expect_error(r, -EINVAL);
        bbt_document_free(r);
        for (size_t i = 0; i < BBT_ELEMENTSOF(bad_codes); i++) {
                r = bbt_document_new("e", "错", "E");
                t = bbt_document_add_table(r, "t", "表", "T", cols, 3);
                bbt_table_add_row(t);
                bbt_table_set_code(t, 0, bad_codes[i], "x");
                expect_error(r, -EINVAL);
                bbt_document_free(r);
        }
        /* Wrong types: text into a code, a bool into a time, a time into a bool, an int into a bool. */
        for (int k = 0; k < 4; k++) {
                r = bbt_document_new("e", "错", "E");
                t = bbt_document_add_table(r, "t", "表", "T", cols, 3);
                bbt_table_add_row(t);
                if (k == 0)
                        bbt_table_set_text(t, 0, "urban");
                else if (k == 1)
                        bbt_table_set_bool(t, 2, true);
                else if (k == 2)
                        bbt_table_set_time(t, 1, 1000);
                else
                        bbt_table_set_int(t, 1, 1);
                expect_error(r, -EINVAL);
                bbt_document_free(r);
        }
        /* An object takes no second row. */
        r = bbt_document_new("e", "错", "E");
        t = bbt_document_add_object(r, "o", "对象", "O", cols, 3);
        ASSERT(t);
        ASSERT_EQ(bbt_table_add_row(t), -EINVAL);
        expect_error(r, -EINVAL);
        bbt_document_free(r);
        /* The NULL table is taken; a code replaced frees the first. */
        bbt_table_set_code(NULL, 0, "x", "y");
        bbt_table_set_bool(NULL, 0, true);
        bbt_table_set_time(NULL, 0, 1);
        r = bbt_document_new("e", "错", "E");
        t = bbt_document_add_table(r, "t", "表", "T", cols, 3);
        bbt_table_add_row(t);
        bbt_table_set_code(t, 0, "urban", "城区");
        bbt_table_set_code(t, 0, "town", "镇区");
        expect(r, "csv", true, BOM "表\r\n城乡,在线,时间\r\n镇区,,\r\n");
        bbt_document_free(r);
}
