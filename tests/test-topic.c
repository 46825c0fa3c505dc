/* Topic build and parse: the ID rules and every malformed shape. */
/* bbt-test: label=unit timeout=10 */
#include <errno.h>

#include "bbt/protocol.h"
#include "bbt/base.h"
#include "test.h"

static const char id32[] = "abcdefghijABCDEFGHIJ0123456789_-";

TEST(build_parse_every_channel)
{
        struct bbt_topic t = { "510107", "3151010001", "r101", BBT_CH_STATE }, back;
        char buf[BBT_TOPIC_MAX], err[128];
        int ch;

        for (ch = 0; ch < BBT_CH__COUNT; ch++) {
                t.channel = (enum bbt_channel)ch;
                ASSERT_GT(bbt_topic_build(&t, buf, sizeof(buf)), 0);
                ASSERT_OK(bbt_topic_parse(buf, &back, err, sizeof(err)));
                ASSERT_STR_EQ(back.county, "510107");
                ASSERT_STR_EQ(back.school, "3151010001");
                ASSERT_STR_EQ(back.terminal, "r101");
                ASSERT_EQ(back.channel, ch);
        }
        t.channel = BBT_CH_CMD_REPLY;
        ASSERT_EQ(bbt_topic_build(&t, buf, sizeof(buf)), (int)strlen("bbt/v1/510107/3151010001/r101/cmd/reply"));
        ASSERT_STR_EQ(buf, "bbt/v1/510107/3151010001/r101/cmd/reply");
}

TEST(longest_topic_fits)
{
        struct bbt_topic t = { "999999", "", "", BBT_CH_CMD_REPLY }, back;
        char buf[BBT_TOPIC_MAX];

        memcpy(t.school, id32, 33);
        memcpy(t.terminal, id32, 33);
        ASSERT_GT(bbt_topic_build(&t, buf, sizeof(buf)), 0);
        ASSERT_OK(bbt_topic_parse(buf, &back, NULL, 0));
        ASSERT_STR_EQ(back.terminal, id32);
        ASSERT_EQ(bbt_topic_build(&t, buf, 20), -ENOBUFS);
}

TEST(build_rejects_bad_ids)
{
        struct bbt_topic t = { "51010", "s", "t", BBT_CH_HB };
        char buf[BBT_TOPIC_MAX];

        ASSERT_EQ(bbt_topic_build(&t, buf, sizeof(buf)), -EINVAL);
        memcpy(t.county, "510107", 7);
        memcpy(t.school, "a/b", 4);
        ASSERT_EQ(bbt_topic_build(&t, buf, sizeof(buf)), -EINVAL);
        memcpy(t.school, "s", 2);
        memcpy(t.terminal, "+", 2);
        ASSERT_EQ(bbt_topic_build(&t, buf, sizeof(buf)), -EINVAL);
        memcpy(t.terminal, "t", 2);
        t.channel = BBT_CH__COUNT;
        ASSERT_EQ(bbt_topic_build(&t, buf, sizeof(buf)), -EINVAL);
}

TEST(parse_rejects_malformed)
{
        static const struct {
                const char *topic, *reason;
        } bad[] = {
                { "", "expected prefix" },
                { "bbt/v2/510107/s/t/hb", "expected prefix" },
                { "BBT/v1/510107/s/t/hb", "expected prefix" },
                { "bbt/v1/51010/s/t/hb", "county" },
                { "bbt/v1/5101077/s/t/hb", "county" },
                { "bbt/v1/51010a/s/t/hb", "county" },
                { "bbt/v1/510107//t/hb", "school" },
                { "bbt/v1/510107/s+/t/hb", "school" },
                { "bbt/v1/510107/s#/t/hb", "school" },
                { "bbt/v1/510107/学校/t/hb", "school" },
                { "bbt/v1/510107/abcdefghijABCDEFGHIJ0123456789_-x/t/hb", "school" },
                { "bbt/v1/510107/s/t", "terminal" },
                { "bbt/v1/510107/s/t t/hb", "terminal" },
                { "bbt/v1/510107/s/t/", "channel" },
                { "bbt/v1/510107/s/t/hb/extra", "channel" },
                { "bbt/v1/510107/s/t/HB", "channel" },
                { "bbt/v1/510107/s/t/cmd/", "channel" },
                { "bbt/v1/510107/s/t/#", "channel" },
        };
        struct bbt_topic t;
        char err[128];
        size_t i;

        for (i = 0; i < BBT_ELEMENTSOF(bad); i++) {
                memset(&t, 0x5a, sizeof(t));
                if (bbt_topic_parse(bad[i].topic, &t, err, sizeof(err)) != -EINVAL)
                        FAIL("accepted \"%s\"", bad[i].topic);
                ASSERT_STR_CONTAINS(err, bad[i].reason);
                ASSERT_EQ(t.county[0], 0x5a); /* untouched on failure */
        }
        ASSERT_EQ(bbt_topic_parse(NULL, &t, NULL, 0), -EINVAL);
}

TEST(id_rules)
{
        ASSERT(bbt_id_valid("a"));
        ASSERT(bbt_id_valid(id32));
        ASSERT(!bbt_id_valid(""));
        ASSERT(!bbt_id_valid("a.b"));
        ASSERT(!bbt_id_valid("abcdefghijABCDEFGHIJ0123456789_-x"));
        ASSERT(!bbt_id_valid(NULL));
        ASSERT(bbt_county_valid("000000"));
        ASSERT(!bbt_county_valid("00000"));
        ASSERT(!bbt_county_valid("0000000"));
}

TEST(channel_names)
{
        ASSERT_STR_EQ(bbt_channel_name(BBT_CH_CMD_REPLY), "cmd/reply");
        ASSERT_EQ(bbt_channel_from_name("inventory"), BBT_CH_INVENTORY);
        ASSERT_EQ(bbt_channel_from_name("reply"), BBT_CH_INVALID);
        ASSERT(bbt_channel_name(BBT_CH__COUNT) == NULL);
        ASSERT(bbt_channel_name(BBT_CH_INVALID) == NULL);
        ASSERT(bbt_channel_retained(BBT_CH_STATE));
        ASSERT(bbt_channel_retained(BBT_CH_INVENTORY));
        ASSERT(!bbt_channel_retained(BBT_CH_HB));
}
