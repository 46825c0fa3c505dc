/* Tests for base/base.c: the one UTF-8 checker, and the array-size macro. */
/* bbt-test: label=unit timeout=10 */
#include "test.h"

#include <string.h>

#include "bbt/base.h"

TEST(decode_valid_sequences)
{
        uint32_t cp = 0;

        ASSERT_EQ(bbt_utf8_decode("A", 1, &cp), 1);
        ASSERT_EQ(cp, 'A');
        ASSERT_EQ(bbt_utf8_decode("\xc3\xa9", 2, &cp), 2); /* é */
        ASSERT_EQ(cp, 0xe9);
        ASSERT_EQ(bbt_utf8_decode("班", 3, &cp), 3);
        ASSERT_EQ(cp, 0x73ed);
        ASSERT_EQ(bbt_utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4); /* U+1F600 */
        ASSERT_EQ(cp, 0x1f600);
        ASSERT_EQ(bbt_utf8_decode("\xf4\x8f\xbf\xbf", 4, NULL), 4); /* U+10FFFF */
        ASSERT_EQ(bbt_utf8_decode("", 1, &cp), 1); /* the NUL is one byte */
        ASSERT_EQ(cp, 0);
}

TEST(decode_refuses_what_rfc3629_excludes)
{
        static const char *const bad[] = {
                "\x80",             /* lone continuation */
                "\xc0\xaf",         /* overlong '/' */
                "\xc1\xbf",         /* overlong */
                "\xe0\x80\xaf",     /* overlong, three bytes */
                "\xed\xa0\x80",     /* surrogate U+D800 */
                "\xed\xbf\xbf",     /* surrogate U+DFFF */
                "\xf0\x80\x80\xaf", /* overlong, four bytes */
                "\xf4\x90\x80\x80", /* past U+10FFFF */
                "\xf5\x80\x80\x80", /* never a lead byte */
                "\xff",
                "\xe7\x8f",         /* cut: NUL where a continuation should be */
        };

        for (size_t i = 0; i < BBT_ELEMENTSOF(bad); i++)
                ASSERT_EQ(bbt_utf8_decode(bad[i], strlen(bad[i]) + 1, NULL), 0);
        /* A sequence cut by LEN, though the bytes are there. */
        ASSERT_EQ(bbt_utf8_decode("班", 2, NULL), 0);
        ASSERT_EQ(bbt_utf8_decode("A", 0, NULL), 0);
}

TEST(invalid_at_and_chars)
{
        const char s[] = "班班通\xed\xa0\x80ok";

        ASSERT_EQ(bbt_utf8_invalid_at(s, 9), 9);
        ASSERT_EQ(bbt_utf8_invalid_at(s, sizeof(s) - 1), 9);
        ASSERT_EQ(bbt_utf8_invalid_at(s, 8), 6); /* the third character cut */
        ASSERT_EQ(bbt_utf8_chars("班班通ok"), 5);
        ASSERT_EQ(bbt_utf8_chars(""), 0);
}
