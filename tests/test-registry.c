/* Registry: schools and terminals CSV import, validation messages, all-or-nothing, lookups, peripheral lists. */
/* bbt-test: label=unit timeout=20 */
#include <errno.h>
#include <iconv.h>

#include "fixture-tree.h"
#include "registry.h"
#include "import-test.h"
#include "test.h"

#define put(name, data, len) bbt_test_import_file("registry", (name), (data), (len))
#define put_text(name, text) bbt_test_import_text("registry", (name), (text))

static struct bbt_registry *new_registry(void)
{
        struct bbt_registry *reg = NULL;

        ASSERT_OK(bbt_registry_new(&reg));
        return reg;
}

static const char schools_zh[] =
        "县区代码,县区,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数,教室数,小学部学生数,初中部学生数\n"
        "440106,天河区,石牌街道,2144010601,华阳小学,小学,城区,1200,30,,\n"
        "440106,天河区,,2144010602,\"天河中学,初中部\",初中,城市,800,,,\n"
        "440183,增城区,派潭镇,2144018301,派潭九年一贯制学校,九年一贯制,乡村,450,18,300,150\n";

TEST(schools_chinese_headers)
{
        struct bbt_registry *reg = new_registry();
        struct bbt_import_errors errs;
        const struct bbt_school *s;

        LOAD_OK(bbt_registry_load_schools(reg, put_text("schools.csv", schools_zh), &errs), errs);
        ASSERT_EQ(errs.count, 0);
        ASSERT_EQ(reg->n_schools, 3);
        s = bbt_registry_school(reg, "2144010601");
        ASSERT(s == &reg->schools[0]);
        ASSERT_STR_EQ(s->county, "440106");
        ASSERT_STR_EQ(s->county_name, "天河区");
        ASSERT_STR_EQ(s->township, "石牌街道");
        ASSERT_STR_EQ(s->name, "华阳小学");
        ASSERT_EQ(s->type, BBT_SCHOOL_PRIMARY);
        ASSERT_EQ(s->area, BBT_AREA_URBAN);
        ASSERT_EQ(s->students, 1200);
        ASSERT_EQ(s->students_primary, 1200);
        ASSERT_EQ(s->students_junior, 0);
        ASSERT_EQ(s->classrooms, 30);

        s = bbt_registry_school(reg, "2144010602");
        ASSERT_STR_EQ(s->name, "天河中学,初中部");
        ASSERT_STR_EQ(s->township, "");
        ASSERT_EQ(s->type, BBT_SCHOOL_JUNIOR);
        ASSERT_EQ(s->area, BBT_AREA_URBAN); /* 城市, the older wording */
        ASSERT_EQ(s->students_primary, 0);
        ASSERT_EQ(s->students_junior, 800);
        ASSERT_EQ(s->classrooms, 0);

        s = bbt_registry_school(reg, "2144018301");
        ASSERT_EQ(s->type, BBT_SCHOOL_NINE_YEAR);
        ASSERT_EQ(s->area, BBT_AREA_RURAL);
        ASSERT_EQ(s->students_primary, 300);
        ASSERT_EQ(s->students_junior, 150);
        ASSERT(bbt_registry_school(reg, "2144018302") == NULL);
        ASSERT(bbt_registry_school(reg, "") == NULL);
        bbt_registry_free(reg);
}

TEST(schools_english_gb18030_crlf)
{
        static const char text[] = "school_code,school_name,county_code,type,area,students,classrooms\r\n"
                                   "S-01,新塘镇第一小学,440183,primary,town,320,12\r\n"
                                   "S_02,仙村中学,440183,junior,rural,0,0\r\n";
        char gb[512];
        iconv_t cd = iconv_open("GB18030", "UTF-8");
        char *in = (char *)text, *out = gb;
        size_t left_in = strlen(text), left_out = sizeof(gb);
        struct bbt_registry *reg = new_registry();
        struct bbt_import_errors errs;

        if (cd == (iconv_t)-1)
                bbt_test_skip("iconv has no GB18030");
        ASSERT(iconv(cd, &in, &left_in, &out, &left_out) != (size_t)-1);
        iconv_close(cd);
        LOAD_OK(bbt_registry_load_schools(reg, put("gbk.csv", gb, sizeof(gb) - left_out), &errs), errs);
        ASSERT_EQ(reg->n_schools, 2);
        ASSERT_STR_EQ(bbt_registry_school(reg, "S-01")->name, "新塘镇第一小学");
        ASSERT_EQ(bbt_registry_school(reg, "S-01")->area, BBT_AREA_TOWN);
        ASSERT_STR_EQ(bbt_registry_school(reg, "S-01")->county_name, "");
        ASSERT_EQ(bbt_registry_school(reg, "S_02")->students, 0);
        bbt_registry_free(reg);
}

TEST(schools_bad_values)
{
        struct bbt_registry *reg = new_registry();
        struct bbt_import_errors errs;
        const char *path = put_text("schools.csv",
                                    "县区代码,学校代码,学校名称,学校类型,城乡,学生数,班级数\n"
                                    "440106,A1,甲小学,小学,城区,300,10\n"
                                    "44010,A2,乙小学,小学,城区,300,10\n"
                                    "440106,A 3,丙小学,小学,城区,300,10\n"
                                    "440106,A4,,中学,郊区,300,10\n"
                                    "\n"
                                    "440106,A5,戊小学,小学,乡村,三百,-1\n"
                                    "440106,A6,己小学,小学,乡村,,\n");

        ASSERT_EQ(bbt_registry_load_schools(reg, path, &errs), -EINVAL);
        ASSERT_EQ(errs.count, 8);
        ASSERT_EQ(errs.n_kept, 8);
        ASSERT_STR_EQ(errs.msg[0],
                      "schools.csv:3: column county_code (县区代码): expected a 6-digit county code, got \"44010\"");
        ASSERT_STR_EQ(errs.msg[1],
                      "schools.csv:4: column school_code (学校代码): expected 1 to 32 of A-Z a-z 0-9 _ -, got \"A 3\"");
        ASSERT_STR_EQ(errs.msg[2], "schools.csv:5: column school_name (学校名称): required but empty");
        ASSERT_STR_EQ(errs.msg[3], "schools.csv:5: column type (学校类型): expected 小学, 初中 or 九年一贯制, got \"中学\"");
        ASSERT_STR_EQ(errs.msg[4], "schools.csv:5: column area (城乡): expected 城区, 镇区 or 乡村, got \"郊区\"");
        ASSERT_STR_EQ(errs.msg[5], "schools.csv:7: column students (学生数): expected an integer >= 0, got \"三百\"");
        ASSERT_STR_EQ(errs.msg[6], "schools.csv:7: column classrooms (班级数): expected an integer >= 0, got \"-1\"");
        ASSERT_STR_EQ(errs.msg[7], "schools.csv:8: column students (学生数): required but empty");
        /* All or nothing: the good first row was not kept. */
        ASSERT_EQ(reg->n_schools, 0);
        ASSERT(bbt_registry_school(reg, "A1") == NULL);
        bbt_registry_free(reg);
}

TEST(schools_missing_columns)
{
        struct bbt_registry *reg = new_registry();
        struct bbt_import_errors errs;

        ASSERT_EQ(bbt_registry_load_schools(reg, put_text("s.csv", "学校代码,学校名称,学校类型,城乡类型\nA,B,小学,城区\n"),
                                            &errs),
                  -EINVAL);
        ASSERT_EQ(errs.count, 2);
        ASSERT_STR_EQ(errs.msg[0], "s.csv:1: missing required column county_code (县区代码/区县代码/县代码/行政区划代码)");
        ASSERT_STR_EQ(errs.msg[1], "s.csv:1: missing required column students (学生数/在校生数)");
        ASSERT_EQ(bbt_registry_load_schools(reg, "/nonexistent/s.csv", &errs), -ENOENT);
        ASSERT_EQ(bbt_registry_load_schools(reg, "/nonexistent/s.csv", NULL), -ENOENT);
        bbt_registry_free(reg);
}

TEST(nine_year_sections)
{
        struct bbt_registry *reg = new_registry();
        struct bbt_import_errors errs;
        const char *path = put_text("s.csv",
                                    "county_code,school_code,school_name,type,area,students,"
                                    "students_primary,students_junior\n"
                                    "440106,N1,一贯制甲,九年一贯制,城区,450,300,100\n"
                                    "440106,N2,一贯制乙,nine_year,城区,450,,150\n"
                                    "440106,P1,小学甲,小学,城区,200,190,\n"
                                    "440106,J1,初中甲,初中,城区,200,5,200\n"
                                    "440106,P2,小学乙,完全小学,城区,200,200,0\n");

        ASSERT_EQ(bbt_registry_load_schools(reg, path, &errs), -EINVAL);
        ASSERT_EQ(errs.count, 4);
        ASSERT_STR_EQ(errs.msg[0],
                      "s.csv:2: students_primary + students_junior = 300 + 100 = 400, but students = 450");
        ASSERT_STR_EQ(errs.msg[1], "s.csv:3: column students_primary (小学部学生数): required for a 九年一贯制 school");
        ASSERT_STR_EQ(errs.msg[2], "s.csv:4: column students_primary (小学部学生数): 190, but a 小学 has students = 200");
        ASSERT_STR_EQ(errs.msg[3], "s.csv:5: column students_primary (小学部学生数): 5, but a 初中 has no primary section");
        ASSERT_EQ(reg->n_schools, 0);

        path = put_text("ok.csv", "county_code,school_code,school_name,type,area,students,"
                                  "students_primary,students_junior\n"
                                  "440106,N1,一贯制甲,九年一贯制学校,城区,450,300,150\n"
                                  "440106,P2,小学乙,完全小学,122,200,200,0\n");
        LOAD_OK(bbt_registry_load_schools(reg, path, &errs), errs);
        ASSERT_EQ(bbt_registry_school(reg, "N1")->students_junior, 150);
        ASSERT_EQ(bbt_registry_school(reg, "P2")->type, BBT_SCHOOL_PRIMARY);
        ASSERT_EQ(bbt_registry_school(reg, "P2")->area, BBT_AREA_TOWN);
        bbt_registry_free(reg);
}

TEST(duplicate_schools)
{
        struct bbt_registry *reg = new_registry();
        struct bbt_import_errors errs;
        static const char head[] = "county_code,school_code,school_name,type,area,students\n";
        char text[512];

        snprintf(text, sizeof(text), "%s440106,A,甲,小学,城区,1\n440106,B,乙,小学,城区,1\n440106,A,丙,小学,城区,1\n",
                 head);
        ASSERT_EQ(bbt_registry_load_schools(reg, put_text("d.csv", text), &errs), -EINVAL);
        ASSERT_EQ(errs.count, 1);
        ASSERT_STR_EQ(errs.msg[0], "d.csv:4: column school_code (学校代码): school A is also on line 2");
        ASSERT_EQ(reg->n_schools, 0);

        snprintf(text, sizeof(text), "%s440106,A,甲,小学,城区,1\n", head);
        LOAD_OK(bbt_registry_load_schools(reg, put_text("one.csv", text), &errs), errs);
        snprintf(text, sizeof(text), "%s440106,C,丙,小学,城区,1\n440106,A,丁,小学,城区,1\n", head);
        ASSERT_EQ(bbt_registry_load_schools(reg, put_text("two.csv", text), &errs), -EINVAL);
        ASSERT_STR_EQ(errs.msg[0], "two.csv:3: column school_code (学校代码): school A is already in the registry");
        /* The failed file left the first one's school alone and added nothing. */
        ASSERT_EQ(reg->n_schools, 1);
        ASSERT(bbt_registry_school(reg, "C") == NULL);
        ASSERT_STR_EQ(bbt_registry_school(reg, "A")->name, "甲");
        bbt_registry_free(reg);
}

static struct bbt_registry *two_schools(void)
{
        struct bbt_registry *reg = new_registry();
        struct bbt_import_errors errs;

        LOAD_OK(bbt_registry_load_schools(reg,
                                          put_text("s.csv", "county_code,school_code,school_name,type,area,students\n"
                                                            "440106,A,甲,小学,城区,100\n"
                                                            "440106,B,乙,初中,城区,100\n"),
                                          &errs),
                errs);
        return reg;
}

TEST(terminals)
{
        struct bbt_registry *reg = two_schools();
        struct bbt_import_errors errs;
        const struct bbt_terminal_entry *t;
        const char *path = put_text("terminals.csv",
                                    "\xef\xbb\xbf学校代码,终端编号,教室,应配外设\r\n"
                                    "A,T01,一年级(1)班,展台、音箱、触摸框\r\n"
                                    "A,T02,,\r\n"
                                    "B,T01,\"实验室, 二楼\",\"camera;projector, audio_out\"\r\n");

        LOAD_OK(bbt_registry_load_terminals(reg, path, &errs), errs);
        ASSERT_EQ(reg->n_terminals, 3);
        t = bbt_registry_terminal(reg, "A", "T01");
        ASSERT(t == &reg->terminals[0]);
        ASSERT_STR_EQ(t->room, "一年级(1)班");
        ASSERT_EQ(t->expected, (1u << BBT_KIND_CAMERA) | (1u << BBT_KIND_AUDIO_OUT) | (1u << BBT_KIND_TOUCH));
        t = bbt_registry_terminal(reg, "A", "T02");
        ASSERT_STR_EQ(t->room, "");
        ASSERT_EQ(t->expected, 0);
        t = bbt_registry_terminal(reg, "B", "T01");
        ASSERT_STR_EQ(t->school, "B");
        ASSERT_STR_EQ(t->room, "实验室, 二楼");
        ASSERT_EQ(t->expected, (1u << BBT_KIND_CAMERA) | (1u << BBT_KIND_PROJECTOR) | (1u << BBT_KIND_AUDIO_OUT));
        ASSERT(bbt_registry_terminal(reg, "B", "T02") == NULL);
        ASSERT(bbt_registry_terminal(reg, "C", "T01") == NULL);
        bbt_registry_free(reg);
}

TEST(terminals_errors)
{
        struct bbt_registry *reg = two_schools();
        struct bbt_import_errors errs;
        const char *path = put_text("t.csv",
                                    "terminal_id,school_code,expected\n"
                                    "T01,A,camera\n"
                                    "T02,Z,\n"
                                    "T01,A,\n"
                                    "T/3,A,\n"
                                    "T04,A,展台;打印机\n");

        ASSERT_EQ(bbt_registry_load_terminals(reg, path, &errs), -EINVAL);
        ASSERT_EQ(errs.count, 4);
        ASSERT_STR_EQ(errs.msg[0], "t.csv:3: column school_code (学校代码): no school Z in the registry");
        ASSERT_STR_EQ(errs.msg[1], "t.csv:4: column terminal_id (终端编号): terminal T01 of school A is also on line 2");
        ASSERT_STR_EQ(errs.msg[2],
                      "t.csv:5: column terminal_id (终端编号): expected 1 to 32 of A-Z a-z 0-9 _ -, got \"T/3\"");
        ASSERT_STR_EQ(errs.msg[3], "t.csv:6: column expected (应配外设): unknown peripheral \"打印机\"");
        ASSERT_EQ(reg->n_terminals, 0);
        ASSERT(bbt_registry_terminal(reg, "A", "T01") == NULL);

        ASSERT_EQ(bbt_registry_load_terminals(reg, put_text("t2.csv", "school_code,room\nA,x\n"), &errs), -EINVAL);
        ASSERT_STR_EQ(errs.msg[0], "t2.csv:1: missing required column terminal_id (终端编号/终端ID/设备编号)");
        bbt_registry_free(reg);
}

/* Found by fuzz-csv: a quoted "expected" cell with a line break put the
 * break into the "unknown peripheral" message, which must be one line. */
static void assert_one_line_messages(const struct bbt_import_errors *e)
{
        for (size_t i = 0; i < e->n_kept; i++)
                for (const char *c = e->msg[i]; *c; c++)
                        if ((unsigned char)*c < 0x20 || *c == 0x7f)
                                FAIL("control byte 0x%02x in message %zu: \"%s\"", (unsigned char)*c, i, e->msg[i]);
}

TEST(terminals_error_messages_are_one_line)
{
        static const char fuzz_input[] =
                "school_code,terminal_id,room,expected\n"
                "S-03,t1du,\"\n"
                "2p14\"\"\"\"\"\"\"\"\"\"\"\"scho\t\"\"\"\t\t\t\t\t\t\t\t\t\t\t,\"\n"
                "2p14\"\"\"\"\"\"\"\"\"\"\"\"\x87\x9c\x97\x90\xf6\xdd\xdd\xdd\t\t\t\t\t\t\t\t\t\t?\t\t\t\t\t\t\t\t\t\t\t\t\"\"c\t\t\"";
        struct bbt_registry *reg = two_schools();
        struct bbt_import_errors errs;

        ASSERT_EQ(bbt_registry_load_terminals(reg, put_text("t.csv", "school_code,terminal_id,room,expected\n"
                                                                     "A,T01,,\"展台\n打印机\"\n"
                                                                     "A,T02,,\"camera\r\nweb\x01" "cam\tpen\"\n"),
                                              &errs),
                  -EINVAL);
        ASSERT_EQ(errs.count, 2);
        /* Line breaks separate kinds (Alt+Enter in an Excel cell); a control
         * character inside a word is shown as a space. */
        ASSERT_STR_EQ(errs.msg[0], "t.csv:2: column expected (应配外设): unknown peripheral \"打印机\"");
        ASSERT_STR_EQ(errs.msg[1], "t.csv:4: column expected (应配外设): unknown peripheral \"web cam\"");
        assert_one_line_messages(&errs);
        ASSERT_EQ(reg->n_terminals, 0);

        /* The fuzzer's input as it found it (not UTF-8, so it is read as GB18030). */
        ASSERT_EQ(bbt_registry_load_terminals(reg, put("fuzz.csv", fuzz_input, sizeof(fuzz_input) - 1), &errs),
                  -EINVAL);
        ASSERT_GT(errs.n_kept, 0);
        assert_one_line_messages(&errs);
        ASSERT_EQ(reg->n_terminals, 0);
        bbt_registry_free(reg);
}

TEST(many_terminals_lookup)
{
        struct bbt_registry *reg = two_schools();
        struct bbt_import_errors errs;
        size_t cap = 64 + 20000 * 16, n;
        char *text = malloc(cap);
        const struct bbt_terminal_entry *t;
        char id[16];

        ASSERT(text);
        n = (size_t)snprintf(text, cap, "school_code,terminal_id\n");
        for (int i = 0; i < 20000; i++)
                n += (size_t)snprintf(text + n, cap - n, "%c,T%05d\n", i % 2 ? 'B' : 'A', i);
        LOAD_OK(bbt_registry_load_terminals(reg, put("many.csv", text, n), &errs), errs);
        free(text);
        ASSERT_EQ(reg->n_terminals, 20000);
        for (int i = 0; i < 20000; i++) {
                snprintf(id, sizeof(id), "T%05d", i);
                t = bbt_registry_terminal(reg, i % 2 ? "B" : "A", id);
                ASSERT(t == &reg->terminals[i]);
                ASSERT(bbt_registry_terminal(reg, i % 2 ? "A" : "B", id) == NULL);
        }
        bbt_registry_free(reg);
}

TEST(periph_kinds)
{
        uint32_t m = 0;
        char bad[16];

        ASSERT_OK(bbt_periph_kinds_parse("", &m, bad, sizeof(bad)));
        ASSERT_EQ(m, 0);
        ASSERT_OK(bbt_periph_kinds_parse("实物展台，麦克风；扬声器 触摸屏|笔、键盘,鼠标;U盘 存储 显示器 投影机 网卡", &m, bad,
                                         sizeof(bad)));
        ASSERT_EQ(m, (1u << BBT_KIND_CAMERA) | (1u << BBT_KIND_AUDIO_IN) | (1u << BBT_KIND_AUDIO_OUT) |
                             (1u << BBT_KIND_TOUCH) | (1u << BBT_KIND_PEN) | (1u << BBT_KIND_KEYBOARD) |
                             (1u << BBT_KIND_MOUSE) | (1u << BBT_KIND_STORAGE) | (1u << BBT_KIND_DISPLAY) |
                             (1u << BBT_KIND_PROJECTOR) | (1u << BBT_KIND_NETWORK));
        ASSERT_OK(bbt_periph_kinds_parse("展台\n触摸框\r\n", &m, bad, sizeof(bad)));
        ASSERT_EQ(m, (1u << BBT_KIND_CAMERA) | (1u << BBT_KIND_TOUCH));
        ASSERT_OK(bbt_periph_kinds_parse(" Camera ; AUDIO_IN,,pen ", &m, bad, sizeof(bad)));
        ASSERT_EQ(m, (1u << BBT_KIND_CAMERA) | (1u << BBT_KIND_AUDIO_IN) | (1u << BBT_KIND_PEN));
        m = 7;
        ASSERT_EQ(bbt_periph_kinds_parse("camera;webcam", &m, bad, sizeof(bad)), -EINVAL);
        ASSERT_STR_EQ(bad, "webcam");
        ASSERT_EQ(m, 7);
        /* The offending word is cut at a character boundary: 5 of 麦克疯疯 fit. */
        ASSERT_EQ(bbt_periph_kinds_parse("麦克疯疯", &m, bad, 8), -EINVAL);
        ASSERT_STR_EQ(bad, "麦克");
}

TEST(names)
{
        ASSERT_STR_EQ(bbt_school_type_name(BBT_SCHOOL_NINE_YEAR, true), "九年一贯制");
        ASSERT_STR_EQ(bbt_school_type_name(BBT_SCHOOL_JUNIOR, false), "junior");
        ASSERT_STR_EQ(bbt_area_name(BBT_AREA_TOWN, true), "镇区");
        ASSERT_STR_EQ(bbt_area_name(BBT_AREA_RURAL, false), "rural");
        ASSERT_STR_EQ(bbt_area_name(BBT_AREA__COUNT, false), "?");
        bbt_registry_free(NULL);
}
