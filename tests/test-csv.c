/* CSV reader: encodings (UTF-8, BOM, GB18030, neither), RFC 4180 quoting, line numbers, header mapping, limits. */
/* bbt-test: label=unit timeout=10 */
#include <errno.h>
#include <iconv.h>
#include <unistd.h>

#include "csv.h"
#include "fixture-tree.h"
#include "import-test.h"
#include "test.h"

#define put(name, data, len) bbt_test_import_file("csv", (name), (data), (len))
#define put_text(name, text) bbt_test_import_text("csv", (name), (text))

enum { C_CODE, C_NAME, C_NOTE, C__COUNT };
static const struct bbt_csv_column cols[C__COUNT] = {
        [C_CODE] = { "school_code", { "学校代码", "学校标识码" }, true },
        [C_NAME] = { "school_name", { "学校名称" }, true },
        [C_NOTE] = { "note", { "备注" }, false },
};

/* TEXT converted from UTF-8 to GB18030 into OUT; returns the length. */
static size_t to_gb18030(const char *text, char *out, size_t size)
{
        iconv_t cd = iconv_open("GB18030", "UTF-8");
        char *in = (char *)text, *o = out;
        size_t left_in = strlen(text), left_out = size;

        if (cd == (iconv_t)-1)
                bbt_test_skip("iconv has no GB18030");
        if (iconv(cd, &in, &left_in, &o, &left_out) == (size_t)-1)
                FAIL("iconv to GB18030 failed");
        iconv_close(cd);
        return size - left_out;
}

static struct bbt_csv *open_ok(const char *path, struct bbt_import_errors *errs)
{
        struct bbt_csv *csv = NULL;
        int r = bbt_csv_open(path, cols, C__COUNT, errs, &csv);

        if (r != 0)
                FAIL("bbt_csv_open: %d, %s", r, errs->n_kept ? errs->msg[0] : "(no message)");
        return csv;
}

TEST(utf8_plain_and_bom)
{
        static const char body[] = "学校代码,学校名称\n4401060001,华阳小学\n";
        char bom[128];
        struct bbt_import_errors errs;
        struct bbt_csv *csv;

        csv = open_ok(put_text("plain.csv", body), &errs);
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "4401060001");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NAME), "华阳小学");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NOTE), "");
        ASSERT(!bbt_csv_has(csv, C_NOTE));
        ASSERT_EQ(bbt_csv_line(csv), 2);
        ASSERT_EQ(bbt_csv_next(csv), 0);
        bbt_csv_free(csv);

        memcpy(bom, "\xef\xbb\xbf", 3);
        memcpy(bom + 3, body, sizeof(body));
        csv = open_ok(put("bom.csv", bom, strlen(bom)), &errs);
        ASSERT(bbt_csv_has(csv, C_CODE)); /* the BOM is not part of the first header */
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NAME), "华阳小学");
        bbt_csv_free(csv);
}

TEST(gb18030)
{
        char gb[256];
        size_t n = to_gb18030("学校标识码,学校名称,备注\r\n4401060002,\"石牌小学,东校区\",𠀋字\r\n", gb, sizeof(gb));
        struct bbt_import_errors errs;
        struct bbt_csv *csv;

        /* GBK bytes are not UTF-8, so the reader must have converted them. */
        ASSERT_EQ((unsigned char)gb[0], 0xd1);
        csv = open_ok(put("gbk.csv", gb, n), &errs);
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "4401060002");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NAME), "石牌小学,东校区");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NOTE), "𠀋字"); /* a 4-byte GB18030 character */
        ASSERT_EQ(bbt_csv_next(csv), 0);
        bbt_csv_free(csv);
}

TEST(bad_encoding)
{
        /* 0x80 alone is neither UTF-8 nor GB18030. */
        static const char bytes[] = "school_code,school_name\n\xc4\xe3\xba\xc3\x80x,y\n"; /* 你好 in GBK, then 0x80 */
        struct bbt_import_errors errs;
        struct bbt_csv *csv = NULL;

        ASSERT_EQ(bbt_csv_open(put("bad.csv", bytes, sizeof(bytes) - 1), cols, C__COUNT, &errs, &csv), -EINVAL);
        ASSERT(csv == NULL);
        ASSERT_EQ(errs.count, 1);
        ASSERT_STR_EQ(errs.msg[0], "bad.csv: neither UTF-8 (byte 0xc4 at offset 24) nor GB18030 (bad sequence at "
                                   "offset 28)");

        ASSERT_EQ(bbt_csv_open(put("bombad.csv", "\xef\xbb\xbf" "a\xff", 5), cols, C__COUNT, &errs, &csv), -EINVAL);
        ASSERT_STR_EQ(errs.msg[0], "bombad.csv: starts with a UTF-8 BOM but byte 0xff at offset 4 is not UTF-8");
        ASSERT_EQ(bbt_csv_open(put("u16.csv", "\xff\xfe" "a\0", 4), cols, C__COUNT, &errs, &csv), -EINVAL);
        ASSERT_STR_CONTAINS(errs.msg[0], "UTF-16 is not supported");
        ASSERT_EQ(bbt_csv_open(put("nul.csv", "a,b\n\0", 5), cols, C__COUNT, &errs, &csv), -EINVAL);
        ASSERT_STR_EQ(errs.msg[0], "nul.csv: NUL byte at offset 4 (after decoding): not a text file");
}

TEST(quoting_and_lines)
{
        const char *path = put_text("q.csv",
                                    "note , school_name,school_code,extra\r\n"
                                    "  \"a, b\" ,\"say \"\"hi\"\"\",  c1  ,zz\r\n"
                                    "\r\n"
                                    ",,,\r\n"
                                    "\"two\r\nlines\",n2,c2\r\n"
                                    "\"\",\" padded \",c3\r\n"
                                    "x,\"\xe3\x80\x80" "n4\",\xe3\x80\x80" "c4\xe3\x80\x80\r\n"
                                    "last,n5,c5");
        struct bbt_import_errors errs;
        struct bbt_csv *csv = open_ok(path, &errs);

        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_EQ(bbt_csv_line(csv), 2);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NOTE), "a, b");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NAME), "say \"hi\"");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "c1");
        /* Lines 3 (empty) and 4 (only commas) are skipped. */
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_EQ(bbt_csv_line(csv), 5);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NOTE), "two\nlines");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "c2");
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_EQ(bbt_csv_line(csv), 7);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NOTE), "");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NAME), " padded "); /* quoted: kept as is */
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_EQ(bbt_csv_line(csv), 8);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NAME), "\xe3\x80\x80n4");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "c4"); /* U+3000 trimmed when unquoted */
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_EQ(bbt_csv_line(csv), 9);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "c5");
        ASSERT_EQ(bbt_csv_next(csv), 0);
        ASSERT_EQ(bbt_csv_next(csv), 0);
        ASSERT_EQ(bbt_csv_errors(csv), 0);
        bbt_csv_free(csv);
}

TEST(lf_and_trailing_lines)
{
        struct bbt_import_errors errs;
        struct bbt_csv *csv = open_ok(put_text("lf.csv", "school_code,school_name\na,b\n\"c\",\"d\"\n\n\n"), &errs);

        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "a");
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NAME), "d");
        ASSERT_EQ(bbt_csv_line(csv), 3);
        ASSERT_EQ(bbt_csv_next(csv), 0);
        bbt_csv_free(csv);
}

TEST(malformed_records)
{
        struct bbt_import_errors errs;
        struct bbt_csv *csv = open_ok(put_text("m.csv", "school_code,school_name\n"
                                                        "\"a\"x,b\n"
                                                        "ok,fine\n"
                                                        "c,\"never closed\nmore\n"),
                                      &errs);

        ASSERT_EQ(bbt_csv_next(csv), -EINVAL);
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "ok");
        ASSERT_EQ(bbt_csv_line(csv), 3);
        ASSERT_EQ(bbt_csv_next(csv), -EINVAL);
        ASSERT_EQ(bbt_csv_next(csv), 0);
        ASSERT_EQ(bbt_csv_errors(csv), 2);
        ASSERT_EQ(errs.count, 2);
        ASSERT_STR_EQ(errs.msg[0], "m.csv:2: field 1: text after the closing quote");
        ASSERT_STR_EQ(errs.msg[1], "m.csv:4: quoted field not closed before the end of the file");
        bbt_csv_free(csv);
}

TEST(header_mapping)
{
        struct bbt_import_errors errs;
        struct bbt_csv *csv = NULL;

        /* Free order, unknown columns ignored, English names in any case, '*' marks. */
        csv = open_ok(put_text("h.csv", "序号,School_Name,学校标识码*\n1,n,c\n"), &errs);
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "c");
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NAME), "n");
        bbt_csv_bad_value(csv, C_CODE, "expected more");
        bbt_csv_bad_value(csv, C_NAME, "expected more");
        ASSERT_STR_EQ(errs.msg[0], "h.csv:2: column school_code (学校标识码*): expected more, got \"c\"");
        ASSERT_STR_EQ(errs.msg[1], "h.csv:2: column school_name (学校名称): expected more, got \"n\"");
        bbt_csv_free(csv);

        ASSERT_EQ(bbt_csv_open(put_text("miss.csv", "学校名称,备注\nx,y\n"), cols, C__COUNT, &errs, &csv), -EINVAL);
        ASSERT_EQ(errs.count, 1);
        ASSERT_STR_EQ(errs.msg[0], "miss.csv:1: missing required column school_code (学校代码/学校标识码)");

        ASSERT_EQ(bbt_csv_open(put_text("two.csv", "学校代码,学校名称,学校标识码\n"), cols, C__COUNT, &errs, &csv),
                  -EINVAL);
        ASSERT_STR_EQ(errs.msg[0], "two.csv:1: columns 1 (学校代码) and 3 (学校标识码) are both school_code");

        ASSERT_EQ(bbt_csv_open(put_text("empty.csv", "\n\n"), cols, C__COUNT, &errs, &csv), -EINVAL);
        ASSERT_STR_EQ(errs.msg[0], "empty.csv: empty file: no header row");
}

TEST(limits_and_read_errors)
{
        static char big[BBT_CSV_FIELD_MAX + 64];
        struct bbt_import_errors errs;
        struct bbt_csv *csv = NULL;
        size_t n;

        n = (size_t)snprintf(big, sizeof(big), "school_code,school_name\nc,");
        memset(big + n, 'x', BBT_CSV_FIELD_MAX + 1);
        n += BBT_CSV_FIELD_MAX + 1;
        memcpy(big + n, "\nd,e\n", 6);
        csv = open_ok(put("big.csv", big, n + 5), &errs);
        ASSERT_EQ(bbt_csv_next(csv), -EINVAL);
        ASSERT_STR_EQ(errs.msg[0], "big.csv:2: field 2 is longer than 4096 bytes");
        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_CODE), "d");
        ASSERT_EQ(bbt_csv_line(csv), 3);
        bbt_csv_free(csv);

        csv = NULL;
        ASSERT_EQ(bbt_csv_open("/nonexistent/dir/schools.csv", cols, C__COUNT, &errs, &csv), -ENOENT);
        ASSERT_STR_EQ(errs.msg[0], "schools.csv: cannot read: No such file or directory");
        ASSERT(csv == NULL);

        /* A sparse file just over the cap: refused before reading. */
        {
                const char *path = put_text("huge.csv", "");

                ASSERT_OK(truncate(path, (off_t)BBT_CSV_FILE_MAX + 1));
                ASSERT_EQ(bbt_csv_open(path, cols, C__COUNT, &errs, &csv), -EFBIG);
                ASSERT_STR_EQ(errs.msg[0], "huge.csv: file larger than 64 MiB");
                ASSERT_OK(truncate(path, (off_t)BBT_CSV_FILE_MAX));
                ASSERT_EQ(bbt_csv_open(path, cols, C__COUNT, &errs, &csv), -EINVAL); /* read, but all NUL */
                ASSERT_STR_CONTAINS(errs.msg[0], "NUL byte at offset 0");
        }
}

TEST(error_list_caps_and_counts)
{
        struct bbt_import_errors errs;
        struct bbt_csv *csv = open_ok(put_text("many.csv", "school_code,school_name\na,b\n"), &errs);

        ASSERT_EQ(bbt_csv_next(csv), 1);
        for (int i = 0; i < 70; i++)
                bbt_csv_error_at(csv, 2, "problem %d", i);
        ASSERT_EQ(errs.count, 70);
        ASSERT_EQ(errs.n_kept, BBT_IMPORT_ERRORS_KEPT);
        ASSERT_EQ(bbt_csv_errors(csv), 70);
        ASSERT_STR_EQ(errs.msg[49], "many.csv:2: problem 49");
        bbt_csv_free(csv);

        /* A long message is cut at a character boundary, never inside one:
         * "long.csv: " and 81 three-byte characters fit in 255 bytes. */
        csv = open_ok(put_text("long.csv", "school_code,school_name\na,b\n"), &errs);
        {
                char longtext[600];

                for (int i = 0; i < 190; i++)
                        memcpy(longtext + 3 * i, "字", 3);
                longtext[570] = '\0';
                bbt_csv_error_at(csv, 0, "%s", longtext);
        }
        ASSERT_EQ(strlen(errs.msg[0]), 10 + 81 * 3);
        bbt_csv_free(csv);
}

/* A value quoted into a message keeps the message on one line (fuzz-csv found
 * a line break from a quoted cell inside "unknown peripheral \"...\""). */
TEST(error_messages_are_one_line)
{
        struct bbt_import_errors errs;
        struct bbt_csv *csv = open_ok(put_text("nl.csv", "school_code,school_name,note\n"
                                                         "a,b,\"two\nlines\ttab\x7f\"\n"),
                                      &errs);

        ASSERT_EQ(bbt_csv_next(csv), 1);
        ASSERT_STR_EQ(bbt_csv_get(csv, C_NOTE), "two\nlines\ttab\x7f");
        bbt_csv_column_error(csv, C_NOTE, "bad note \"%s\"", bbt_csv_get(csv, C_NOTE));
        bbt_csv_error_at(csv, 2, "%s", bbt_csv_get(csv, C_NOTE));
        ASSERT_EQ(errs.count, 2);
        ASSERT_STR_EQ(errs.msg[0], "nl.csv:2: column note (备注): bad note \"two lines tab \"");
        ASSERT_STR_EQ(errs.msg[1], "nl.csv:2: two lines tab ");
        bbt_csv_free(csv);
}

TEST(parse_count)
{
        long v = -1;

        ASSERT_OK(bbt_csv_parse_count("0", 10, &v));
        ASSERT_EQ(v, 0);
        ASSERT_OK(bbt_csv_parse_count("1200", 100000, &v));
        ASSERT_EQ(v, 1200);
        ASSERT_EQ(bbt_csv_parse_count("11", 10, &v), -EINVAL);
        ASSERT_EQ(bbt_csv_parse_count("-1", 10, &v), -EINVAL);
        ASSERT_EQ(bbt_csv_parse_count("", 10, &v), -EINVAL);
        ASSERT_EQ(bbt_csv_parse_count("1.0", 10, &v), -EINVAL);
        ASSERT_EQ(bbt_csv_parse_count("99999999999999999999999", 100000, &v), -EINVAL);
        ASSERT_EQ(v, 1200);
}
