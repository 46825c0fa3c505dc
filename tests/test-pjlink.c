/* Unit tests for drivers/pjlink.c: the PJLink wire format without I/O. */
/* bbt-test: label=unit timeout=30 */
#include <errno.h>
#include <string.h>

#include "pjlink.h"
#include "bbt/base.h"
#include "test.h"

/* Parses LINE (a C string) as the reply to a query CMD of class 1. */
static int parse1(enum bbt_pjlink_cmd cmd, const char *line, struct bbt_pjlink_reply *r, char *err, size_t size)
{
        return bbt_pjlink_reply_parse(cmd, 1, false, line, strlen(line), r, err, size);
}

/* Feeds DATA (LEN bytes) to a fresh reader, joining the lines it yields with '|'. */
static int read_all(const char *data, size_t len, char *out, size_t size)
{
        struct bbt_pjlink_reader rd;
        const char *line;
        size_t n, o = 0;
        int r, errors = 0;

        bbt_pjlink_reader_reset(&rd);
        out[0] = '\0';
        while ((r = bbt_pjlink_reader_next(&rd, &data, &len, &line, &n)) != 0) {
                if (r < 0) {
                        errors++;
                        o += (size_t)snprintf(out + o, size - o, "%s<too long>", o ? "|" : "");
                        continue;
                }
                ASSERT_EQ(strlen(line), n);
                o += (size_t)snprintf(out + o, size - o, "%s%s", o ? "|" : "", line);
        }
        return errors;
}

TEST(digest_check_vector)
{
        char d[BBT_PJLINK_DIGEST_LEN + 1];

        ASSERT_OK(bbt_pjlink_digest("498e4a67", "JBMIAProjectorLink", d));
        ASSERT_STR_EQ(d, "5d8409bc1c3fa39749434aa3a5c38682");
}

TEST(digest_rejects_bad_input)
{
        char d[BBT_PJLINK_DIGEST_LEN + 1] = "untouched";

        ASSERT_EQ(bbt_pjlink_digest("498e4a6", "x", d), -EINVAL);
        ASSERT_EQ(bbt_pjlink_digest("498e4a678", "x", d), -EINVAL);
        ASSERT_EQ(bbt_pjlink_digest("498e4a6g", "x", d), -EINVAL);
        ASSERT_EQ(bbt_pjlink_digest("498e4a67", "123456789012345678901234567890123", d), -EINVAL);
        ASSERT_EQ(bbt_pjlink_digest("498e4a67", "pass\rword", d), -EINVAL);
        ASSERT_EQ(bbt_pjlink_digest(NULL, "x", d), -EINVAL);
        ASSERT_STR_EQ(d, "untouched");
        /* 32 bytes is the longest password PJLink allows. */
        ASSERT_OK(bbt_pjlink_digest("498E4A67", "12345678901234567890123456789012", d));
        ASSERT_EQ(strlen(d), 32);
}

TEST(greeting_no_auth)
{
        struct bbt_pjlink_greeting g = { .auth = true };

        ASSERT_OK(bbt_pjlink_greeting_parse("PJLINK 0", 8, &g, NULL, 0));
        ASSERT(!g.auth);
        ASSERT_STR_EQ(g.random, "");
}

TEST(greeting_auth)
{
        struct bbt_pjlink_greeting g;

        ASSERT_OK(bbt_pjlink_greeting_parse("PJLINK 1 498e4a67", 17, &g, NULL, 0));
        ASSERT(g.auth);
        ASSERT_STR_EQ(g.random, "498e4a67");
}

TEST(greeting_erra)
{
        struct bbt_pjlink_greeting g;
        char err[BBT_PJLINK_REASON_MAX];

        ASSERT_EQ(bbt_pjlink_greeting_parse("PJLINK ERRA", 11, &g, err, sizeof(err)), BBT_PJLINK_ERRA);
        ASSERT_STR_CONTAINS(err, "ERRA");
}

TEST(greeting_garbage)
{
        static const char *const bad[] = {
                "PJLINK 2", "PJLINK 1", "PJLINK 1 498e4a6", "PJLINK 1 498e4a678", "PJLINK 1 498e4a6z",
                "PJLINK 0 ", "pjlink", "", "HTTP/1.1 400 Bad Request", "%1POWR=1", "PJLINK  0",
        };
        struct bbt_pjlink_greeting g = { .auth = true, .random = "keep" };
        char err[BBT_PJLINK_REASON_MAX], big[300];

        for (size_t i = 0; i < BBT_ELEMENTSOF(bad); i++) {
                err[0] = '\0';
                ASSERT_EQ(bbt_pjlink_greeting_parse(bad[i], strlen(bad[i]), &g, err, sizeof(err)), -EBADMSG);
                ASSERT_STR_CONTAINS(err, "greeting: ");
        }
        ASSERT_EQ(bbt_pjlink_greeting_parse("PJLINK\0" "0", 8, &g, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_CONTAINS(err, "\\x00"); /* a NUL is shown, not cut */
        memset(big, 'A', sizeof(big));
        ASSERT_EQ(bbt_pjlink_greeting_parse(big, sizeof(big), &g, err, sizeof(err)), -EMSGSIZE);
        ASSERT(g.auth);
        ASSERT_STR_EQ(g.random, "keep");
}

TEST(build_queries)
{
        static const struct {
                enum bbt_pjlink_cmd cmd;
                const char *want;
        } cases[] = {
                { BBT_PJLINK_POWR, "%1POWR ?\r" }, { BBT_PJLINK_INPT, "%1INPT ?\r" },
                { BBT_PJLINK_ERST, "%1ERST ?\r" }, { BBT_PJLINK_LAMP, "%1LAMP ?\r" },
                { BBT_PJLINK_NAME, "%1NAME ?\r" }, { BBT_PJLINK_INF1, "%1INF1 ?\r" },
                { BBT_PJLINK_INF2, "%1INF2 ?\r" }, { BBT_PJLINK_INFO, "%1INFO ?\r" },
                { BBT_PJLINK_CLSS, "%1CLSS ?\r" },
        };
        char buf[64];

        for (size_t i = 0; i < BBT_ELEMENTSOF(cases); i++) {
                ASSERT_EQ(bbt_pjlink_build(cases[i].cmd, 1, NULL, NULL, buf, sizeof(buf)),
                          (int)strlen(cases[i].want));
                ASSERT_STR_EQ(buf, cases[i].want);
        }
}

TEST(build_class2_power_and_digest)
{
        char buf[80];

        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_INPT, 2, NULL, NULL, buf, sizeof(buf)), 9);
        ASSERT_STR_EQ(buf, "%2INPT ?\r");
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 1, "1", NULL, buf, sizeof(buf)), 9);
        ASSERT_STR_EQ(buf, "%1POWR 1\r");
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 1, "0", NULL, buf, sizeof(buf)), 9);
        ASSERT_STR_EQ(buf, "%1POWR 0\r");
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 1, NULL, "5d8409bc1c3fa39749434aa3a5c38682", buf, sizeof(buf)),
                  41);
        ASSERT_STR_EQ(buf, "5d8409bc1c3fa39749434aa3a5c38682%1POWR ?\r");
}

TEST(build_rejects)
{
        char buf[200], param[130];

        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 3, NULL, NULL, buf, sizeof(buf)), -EINVAL);
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_CMD__COUNT, 1, NULL, NULL, buf, sizeof(buf)), -EINVAL);
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 1, "", NULL, buf, sizeof(buf)), -EINVAL);
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 1, "1\r%1POWR 0", NULL, buf, sizeof(buf)), -EINVAL);
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 1, NULL, "short", buf, sizeof(buf)), -EINVAL);
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 1, NULL, "zz8409bc1c3fa39749434aa3a5c38682", buf, sizeof(buf)),
                  -EINVAL);
        memset(param, 'x', 129);
        param[129] = '\0';
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_NAME, 1, param, NULL, buf, sizeof(buf)), -EINVAL);
        param[128] = '\0';
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_NAME, 1, param, NULL, buf, sizeof(buf)), BBT_PJLINK_LINE_MAX);
        ASSERT_EQ(bbt_pjlink_build(BBT_PJLINK_POWR, 1, NULL, NULL, buf, 9), -ENOBUFS);
}

TEST(reply_powr)
{
        static const enum bbt_power want[] = { BBT_POWER_OFF, BBT_POWER_ON, BBT_POWER_COOLING, BBT_POWER_WARMING };
        struct bbt_pjlink_reply r;
        char line[32];

        for (int i = 0; i < 4; i++) {
                snprintf(line, sizeof(line), "%%1POWR=%d", i);
                ASSERT_OK(parse1(BBT_PJLINK_POWR, line, &r, NULL, 0));
                ASSERT_EQ(r.power, want[i]);
                ASSERT_EQ(r.cmd, BBT_PJLINK_POWR);
                ASSERT_EQ(r.cls, 1);
                ASSERT(!r.ok);
        }
        /* The body is matched without regard to case. */
        ASSERT_OK(parse1(BBT_PJLINK_POWR, "%1powr=1", &r, NULL, 0));
        ASSERT_EQ(r.power, BBT_POWER_ON);
}

TEST(reply_powr_bad_value_is_located)
{
        struct bbt_pjlink_reply r = { .power = BBT_POWER_WARMING };
        char err[BBT_PJLINK_REASON_MAX];

        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%1POWR=9", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_EQ(err, "POWR: expected 0-3, got \"9\"");
        ASSERT_EQ(r.power, BBT_POWER_WARMING); /* untouched */
        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%1POWR=", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_EQ(err, "POWR: expected 0-3, got \"\"");
        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%1POWR=01", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%1POWR=OK", &r, err, sizeof(err)), -EBADMSG);
}

TEST(reply_power_set)
{
        struct bbt_pjlink_reply r;
        char err[BBT_PJLINK_REASON_MAX];

        ASSERT_OK(bbt_pjlink_reply_parse(BBT_PJLINK_POWR, 1, true, "%1POWR=OK", 9, &r, NULL, 0));
        ASSERT(r.ok);
        ASSERT_EQ(bbt_pjlink_reply_parse(BBT_PJLINK_POWR, 1, true, "%1POWR=1", 8, &r, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_EQ(err, "POWR: expected OK, got \"1\"");
        ASSERT_EQ(bbt_pjlink_reply_parse(BBT_PJLINK_POWR, 1, true, "%1POWR=ERR3", 11, &r, err, sizeof(err)),
                  BBT_PJLINK_ERR3);
}

TEST(reply_inpt)
{
        struct bbt_pjlink_reply r;
        char err[BBT_PJLINK_REASON_MAX];

        ASSERT_OK(parse1(BBT_PJLINK_INPT, "%1INPT=31", &r, NULL, 0));
        ASSERT_STR_EQ(r.input, "31");
        ASSERT_OK(bbt_pjlink_reply_parse(BBT_PJLINK_INPT, 2, false, "%2INPT=6Z", 9, &r, NULL, 0));
        ASSERT_STR_EQ(r.input, "6Z");
        ASSERT_EQ(r.cls, 2);
        ASSERT_EQ(parse1(BBT_PJLINK_INPT, "%1INPT=3", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_EQ(err, "INPT: expected two characters [1-9][1-9A-Z], got \"3\"");
        ASSERT_EQ(parse1(BBT_PJLINK_INPT, "%1INPT=311", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_EQ(parse1(BBT_PJLINK_INPT, "%1INPT=01", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_EQ(parse1(BBT_PJLINK_INPT, "%1INPT=3a", &r, err, sizeof(err)), -EBADMSG);
}

TEST(reply_erst)
{
        struct bbt_pjlink_reply r;
        char err[BBT_PJLINK_REASON_MAX];

        ASSERT_OK(parse1(BBT_PJLINK_ERST, "%1ERST=000000", &r, NULL, 0));
        for (int i = 0; i < BBT_ERST__COUNT; i++)
                ASSERT_EQ(r.erst[i], BBT_ERST_OK);
        ASSERT_OK(parse1(BBT_PJLINK_ERST, "%1ERST=012012", &r, NULL, 0));
        ASSERT_EQ(r.erst[BBT_ERST_FAN], BBT_ERST_OK);
        ASSERT_EQ(r.erst[BBT_ERST_LAMP], BBT_ERST_WARNING);
        ASSERT_EQ(r.erst[BBT_ERST_TEMP], BBT_ERST_ERROR);
        ASSERT_EQ(r.erst[BBT_ERST_COVER], BBT_ERST_OK);
        ASSERT_EQ(r.erst[BBT_ERST_FILTER], BBT_ERST_WARNING);
        ASSERT_EQ(r.erst[BBT_ERST_OTHER], BBT_ERST_ERROR);
        ASSERT_EQ(parse1(BBT_PJLINK_ERST, "%1ERST=000300", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_EQ(err, "ERST: expected 6 digits 0-2, got \"000300\"");
        ASSERT_EQ(parse1(BBT_PJLINK_ERST, "%1ERST=00000", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_EQ(parse1(BBT_PJLINK_ERST, "%1ERST=0000000", &r, err, sizeof(err)), -EBADMSG);
}

TEST(reply_lamp_single)
{
        struct bbt_pjlink_reply r;

        ASSERT_OK(parse1(BBT_PJLINK_LAMP, "%1LAMP=12345 1", &r, NULL, 0));
        ASSERT_EQ(r.n_lamps, 1);
        ASSERT_EQ(r.lamp_hours[0], 12345);
        ASSERT(r.lamp_on[0]);
        ASSERT_EQ(r.lamp_hours_max, 12345);
        ASSERT_OK(parse1(BBT_PJLINK_LAMP, "%1LAMP=0 0", &r, NULL, 0));
        ASSERT_EQ(r.lamp_hours_max, 0);
        ASSERT(!r.lamp_on[0]);
}

TEST(reply_lamp_multiple_gives_max)
{
        struct bbt_pjlink_reply r;

        ASSERT_OK(parse1(BBT_PJLINK_LAMP, "%1LAMP=1200 1 3400 0 99999 1", &r, NULL, 0));
        ASSERT_EQ(r.n_lamps, 3);
        ASSERT_EQ(r.lamp_hours[1], 3400);
        ASSERT(!r.lamp_on[1]);
        ASSERT_EQ(r.lamp_hours_max, 99999);
        ASSERT_OK(parse1(BBT_PJLINK_LAMP, "%1LAMP=1 0 2 0 3 0 4 0 5 0 6 0 7 0 8 1", &r, NULL, 0));
        ASSERT_EQ(r.n_lamps, 8);
        ASSERT_EQ(r.lamp_hours_max, 8);
}

TEST(reply_lamp_bad)
{
        static const struct {
                const char *line, *want;
        } cases[] = {
                { "%1LAMP=", "LAMP: expected \"hours on/off\" pairs, got \"\"" },
                { "%1LAMP=1200", "LAMP: expected \"hours on/off\" pairs, got \"1200\"" },
                { "%1LAMP=1200 2", "LAMP: lamp 1 on/off: expected 0 or 1, got \"2\"" },
                { "%1LAMP=1200 1 abc 0", "LAMP: lamp 2 hours: expected 1-5 digits, got \"abc\"" },
                { "%1LAMP=123456 1", "LAMP: lamp 1 hours: expected 1-5 digits, got \"123456\"" },
                { "%1LAMP=-1 1", "LAMP: lamp 1 hours: expected 1-5 digits, got \"-1\"" },
                { "%1LAMP=1 0 2 0 3 0 4 0 5 0 6 0 7 0 8 1 9 0", "LAMP: more than 8 lamps" },
        };
        struct bbt_pjlink_reply r;
        char err[BBT_PJLINK_REASON_MAX];

        for (size_t i = 0; i < BBT_ELEMENTSOF(cases); i++) {
                ASSERT_EQ(parse1(BBT_PJLINK_LAMP, cases[i].line, &r, err, sizeof(err)), -EBADMSG);
                ASSERT_STR_CONTAINS(err, cases[i].want);
        }
}

TEST(reply_text)
{
        static const enum bbt_pjlink_cmd cmds[] = { BBT_PJLINK_NAME, BBT_PJLINK_INF1, BBT_PJLINK_INF2,
                                                    BBT_PJLINK_INFO };
        struct bbt_pjlink_reply r;
        char line[128];

        for (size_t i = 0; i < 4; i++) {
                snprintf(line, sizeof(line), "%%1%s=Room 3-2 EB-X41", bbt_pjlink_cmd_name(cmds[i]));
                ASSERT_OK(parse1(cmds[i], line, &r, NULL, 0));
                ASSERT_STR_EQ(r.text, "Room 3-2 EB-X41");
        }
        ASSERT_OK(parse1(BBT_PJLINK_NAME, "%1NAME=", &r, NULL, 0));
        ASSERT_STR_EQ(r.text, "");
        /* UTF-8 (a Chinese classroom name) is kept as it is. */
        ASSERT_OK(parse1(BBT_PJLINK_NAME, "%1NAME=\xe4\xb8\x89\xe5\xb9\xb4\xe7\xba\xa7", &r, NULL, 0));
        ASSERT_STR_EQ(r.text, "\xe4\xb8\x89\xe5\xb9\xb4\xe7\xba\xa7");
}

TEST(reply_text_escapes_non_printable)
{
        struct bbt_pjlink_reply r;

        ASSERT_OK(parse1(BBT_PJLINK_NAME, "%1NAME=a\x01" "b\x7f" "c\\d", &r, NULL, 0));
        ASSERT_STR_EQ(r.text, "a\\x01b\\x7fc\\x5cd");
        /* Invalid UTF-8 (GBK bytes, a lone continuation, an overlong form) is escaped bytewise. */
        ASSERT_OK(parse1(BBT_PJLINK_INF1, "%1INF1=\xc8\xfd|\x80|\xc0\xaf|\xed\xa0\x80", &r, NULL, 0));
        ASSERT_STR_EQ(r.text, "\\xc8\\xfd|\\x80|\\xc0\\xaf|\\xed\\xa0\\x80");
}

TEST(reply_text_length_limit)
{
        struct bbt_pjlink_reply r;
        char line[128], err[BBT_PJLINK_REASON_MAX];

        memcpy(line, "%1NAME=", 7);
        memset(line + 7, '\x01', 64);
        ASSERT_OK(bbt_pjlink_reply_parse(BBT_PJLINK_NAME, 1, false, line, 7 + 64, &r, NULL, 0));
        ASSERT_EQ(strlen(r.text), 64 * 4); /* the worst case fits */
        memset(line + 7, 'n', 65);
        ASSERT_EQ(bbt_pjlink_reply_parse(BBT_PJLINK_NAME, 1, false, line, 7 + 65, &r, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_EQ(err, "NAME: 65 bytes of text, at most 64");
}

TEST(reply_clss)
{
        struct bbt_pjlink_reply r;
        char err[BBT_PJLINK_REASON_MAX];

        ASSERT_OK(parse1(BBT_PJLINK_CLSS, "%1CLSS=1", &r, NULL, 0));
        ASSERT_EQ(r.clss, 1);
        ASSERT_OK(parse1(BBT_PJLINK_CLSS, "%1CLSS=2", &r, NULL, 0));
        ASSERT_EQ(r.clss, 2);
        ASSERT_EQ(parse1(BBT_PJLINK_CLSS, "%1CLSS=0", &r, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_EQ(err, "CLSS: expected a class 1-9, got \"0\"");
        ASSERT_EQ(parse1(BBT_PJLINK_CLSS, "%1CLSS=12", &r, err, sizeof(err)), -EBADMSG);
}

TEST(reply_error_codes)
{
        static const struct {
                const char *param;
                int want;
                const char *text;
        } cases[] = {
                { "ERR1", BBT_PJLINK_ERR1, "LAMP: ERR1 undefined command" },
                { "ERR2", BBT_PJLINK_ERR2, "LAMP: ERR2 out of parameter" },
                { "ERR3", BBT_PJLINK_ERR3, "LAMP: ERR3 unavailable time" },
                { "ERR4", BBT_PJLINK_ERR4, "LAMP: ERR4 projector failure" },
                { "ERRA", BBT_PJLINK_ERRA, "LAMP: ERRA authentication failed" },
        };
        struct bbt_pjlink_reply r;
        char line[32], err[BBT_PJLINK_REASON_MAX];

        for (size_t i = 0; i < BBT_ELEMENTSOF(cases); i++) {
                snprintf(line, sizeof(line), "%%1LAMP=%s", cases[i].param);
                ASSERT_EQ(parse1(BBT_PJLINK_LAMP, line, &r, err, sizeof(err)), cases[i].want);
                ASSERT_STR_EQ(err, cases[i].text);
                ASSERT_LT(cases[i].want, 0);
        }
        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "PJLINK ERRA", &r, err, sizeof(err)), BBT_PJLINK_ERRA);
        ASSERT_STR_EQ(err, "POWR: PJLINK ERRA (authentication failed)");
        /* ERR5 is not an error code: it is a bad value. */
        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%1POWR=ERR5", &r, err, sizeof(err)), -EBADMSG);
}

TEST(error_codes_distinct)
{
        const int codes[] = { BBT_PJLINK_ERR1, BBT_PJLINK_ERR2, BBT_PJLINK_ERR3, BBT_PJLINK_ERR4, BBT_PJLINK_ERRA,
                              -EBADMSG, -EMSGSIZE, -EINVAL };

        for (size_t i = 0; i < 8; i++)
                for (size_t j = i + 1; j < 8; j++)
                        ASSERT_NE(codes[i], codes[j]);
        for (size_t i = 0; i < 5; i++)
                ASSERT(bbt_pjlink_strerror(codes[i]) != NULL);
        ASSERT(bbt_pjlink_strerror(-EBADMSG) == NULL);
        ASSERT(bbt_pjlink_strerror(0) == NULL);
}

TEST(reply_skips_unsolicited)
{
        struct bbt_pjlink_reply r = { .power = BBT_POWER_COOLING };
        char err[BBT_PJLINK_REASON_MAX];

        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%2LKUP=00:1b:2c:3d:4e:5f", &r, err, sizeof(err)), BBT_PJLINK_SKIP);
        ASSERT_STR_CONTAINS(err, "LKUP");
        /* A class 2 status notification for the same command is not the reply either. */
        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%2POWR=1", &r, err, sizeof(err)), BBT_PJLINK_SKIP);
        /* A late reply to an earlier command. */
        ASSERT_EQ(parse1(BBT_PJLINK_LAMP, "%1ERST=000000", &r, err, sizeof(err)), BBT_PJLINK_SKIP);
        ASSERT_EQ(r.power, BBT_POWER_COOLING);
        /* ...but an overlong notification is still an error. */
        char big[200];
        memcpy(big, "%2LKUP=", 7);
        memset(big + 7, 'x', 129);
        ASSERT_EQ(bbt_pjlink_reply_parse(BBT_PJLINK_POWR, 1, false, big, 136, &r, err, sizeof(err)), -EMSGSIZE);
}

TEST(reply_length_limits)
{
        struct bbt_pjlink_reply r;
        char line[300], err[BBT_PJLINK_REASON_MAX];

        /* 7 + 128 = 135 bytes (136 with CR): the longest line; a LAMP list of spaces. */
        memcpy(line, "%1LAMP=1 0", 10);
        memset(line + 10, ' ', 125);
        ASSERT_OK(bbt_pjlink_reply_parse(BBT_PJLINK_LAMP, 1, false, line, 135, &r, err, sizeof(err)));
        line[135] = ' ';
        ASSERT_EQ(bbt_pjlink_reply_parse(BBT_PJLINK_LAMP, 1, false, line, 136, &r, err, sizeof(err)), -EMSGSIZE);
        ASSERT_STR_EQ(err, "LAMP: reply of 136 bytes, longer than 135");
        memset(line + 10, ' ', 280);
        ASSERT_EQ(bbt_pjlink_reply_parse(BBT_PJLINK_LAMP, 1, false, line, 290, &r, err, sizeof(err)), -EMSGSIZE);
}

TEST(reply_garbage)
{
        static const char *const bad[] = {
                "", "%", "%1POWR", "%1POWR 1", "%3POWR=1", "%1PO R=1", "1POWR=1", "PJLINK 0",
                "PJLINK 1 498e4a67", "\x80\x81\x82\x83\x84\x85\x86\x87", "%1POWR:1", "%1PÖWR=1",
        };
        struct bbt_pjlink_reply r;
        char err[BBT_PJLINK_REASON_MAX];

        for (size_t i = 0; i < BBT_ELEMENTSOF(bad); i++) {
                err[0] = '\0';
                ASSERT_EQ(parse1(BBT_PJLINK_POWR, bad[i], &r, err, sizeof(err)), -EBADMSG);
                ASSERT_STR_CONTAINS(err, "POWR: expected \"%<class><command>=<parameter>\"");
        }
        /* A NUL inside a line passed directly is data, shown escaped. */
        ASSERT_EQ(bbt_pjlink_reply_parse(BBT_PJLINK_POWR, 1, false, "%1POWR=\0", 8, &r, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_EQ(err, "POWR: expected 0-3, got \"\\x00\"");
        /* A small error buffer truncates; no buffer at all is fine. */
        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%1POWR=9", &r, err, 8), -EBADMSG);
        ASSERT_STR_EQ(err, "POWR: e");
        ASSERT_EQ(parse1(BBT_PJLINK_POWR, "%1POWR=9", &r, NULL, 0), -EBADMSG);
        ASSERT_EQ(bbt_pjlink_reply_parse(BBT_PJLINK_POWR, 3, false, "%1POWR=1", 8, &r, err, sizeof(err)), -EINVAL);
}

TEST(reader_strips_nul_padding)
{
        static const char data[] = "PJLINK 0\r\0\0\0\0%1POWR=1\r\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        char out[256];

        ASSERT_EQ(read_all(data, sizeof(data) - 1, out, sizeof(out)), 0);
        ASSERT_STR_EQ(out, "PJLINK 0|%1POWR=1");
        /* Padding in front of a line and inside it is dropped too. */
        ASSERT_EQ(read_all("\0\0%1PO\0WR=0\r", 12, out, sizeof(out)), 0);
        ASSERT_STR_EQ(out, "%1POWR=0");
}

TEST(reader_crlf_and_lf)
{
        char out[256];

        ASSERT_EQ(read_all("%1POWR=1\r\n%1INPT=31\n\r\n%1ERST=000000\r", 37, out, sizeof(out)), 0);
        ASSERT_STR_EQ(out, "%1POWR=1|%1INPT=31|%1ERST=000000");
}

TEST(reader_partial_reads)
{
        static const char data[] = "%2LKUP=00:1b:2c:3d:4e:5f\r%1LAMP=1200 1\r";
        struct bbt_pjlink_reader rd;
        const char *p, *line;
        size_t left, n;
        int lines = 0, r;

        bbt_pjlink_reader_reset(&rd);
        /* One byte at a time. */
        for (size_t i = 0; i < sizeof(data) - 1; i++) {
                p = data + i;
                left = 1;
                r = bbt_pjlink_reader_next(&rd, &p, &left, &line, &n);
                ASSERT_EQ(left, 0);
                if (r == 1) {
                        lines++;
                        ASSERT_STR_EQ(line, lines == 1 ? "%2LKUP=00:1b:2c:3d:4e:5f" : "%1LAMP=1200 1");
                } else {
                        ASSERT_EQ(r, 0);
                }
        }
        ASSERT_EQ(lines, 2);
}

TEST(reader_multiple_lines_in_one_read)
{
        static const char data[] = "%2LKUP=00:1b:2c:3d:4e:5f\r%1POWR=3\r%1INP";
        struct bbt_pjlink_reader rd;
        const char *p = data, *line;
        size_t left = sizeof(data) - 1, n;

        bbt_pjlink_reader_reset(&rd);
        ASSERT_EQ(bbt_pjlink_reader_next(&rd, &p, &left, &line, &n), 1);
        ASSERT_STR_EQ(line, "%2LKUP=00:1b:2c:3d:4e:5f");
        ASSERT_EQ(bbt_pjlink_reader_next(&rd, &p, &left, &line, &n), 1);
        ASSERT_STR_EQ(line, "%1POWR=3");
        ASSERT_EQ(bbt_pjlink_reader_next(&rd, &p, &left, &line, &n), 0);
        ASSERT_EQ(left, 0);
        p = "T=31\r";
        left = 5;
        ASSERT_EQ(bbt_pjlink_reader_next(&rd, &p, &left, &line, &n), 1);
        ASSERT_STR_EQ(line, "%1INPT=31");
        ASSERT_EQ(n, 9);
}

TEST(reader_line_length_limit)
{
        char data[400], out[512];

        /* 135 bytes and CR: the longest line. */
        memset(data, 'a', 135);
        data[135] = '\r';
        ASSERT_EQ(read_all(data, 136, out, sizeof(out)), 0);
        ASSERT_EQ(strlen(out), 135);
        /* 136 bytes: too long, reported once, and the reader recovers at the next line. */
        memset(data, 'a', 136);
        memcpy(data + 136, "\r%1POWR=1\r", 10);
        ASSERT_EQ(read_all(data, 146, out, sizeof(out)), 1);
        ASSERT_STR_EQ(out, "<too long>|%1POWR=1");
        memset(data, 'b', 399);
        data[399] = '\r';
        ASSERT_EQ(read_all(data, 400, out, sizeof(out)), 1);
        ASSERT_STR_EQ(out, "<too long>");
}

TEST(cmd_names)
{
        ASSERT_STR_EQ(bbt_pjlink_cmd_name(BBT_PJLINK_POWR), "POWR");
        ASSERT_STR_EQ(bbt_pjlink_cmd_name(BBT_PJLINK_CLSS), "CLSS");
        ASSERT(bbt_pjlink_cmd_name(BBT_PJLINK_CMD__COUNT) == NULL);
        ASSERT(bbt_pjlink_cmd_name((enum bbt_pjlink_cmd)-1) == NULL);
}
