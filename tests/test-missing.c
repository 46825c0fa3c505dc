/* Tests for agent/missing.c: what a resend reply says of the seqs the spool does not hold. */
/* bbt-test: label=unit timeout=10 */
#include "test.h"

#include "bbt/base.h"
#include "missing.h"

#define R(a, b) { (a), (b) }

static void expect_entry(const struct bbt_missing *m, uint64_t from, uint64_t to, enum bbt_missing_reason r)
{
        ASSERT_EQ(m->from, from);
        ASSERT_EQ(m->to, to);
        ASSERT_STR_EQ(bbt_missing_reason_name(m->reason), bbt_missing_reason_name(r));
}

TEST(split_by_what_the_agent_knows)
{
        const struct bbt_seq_range skipped[] = { R(100, 199), R(500, 599) };
        const struct bbt_seq_range unstored[] = { R(60, 61) };
        const struct bbt_seq_range req[] = { R(50, 120), R(300, 300) };
        struct bbt_missing_facts f = { .skipped = skipped, .n_skipped = 2, .skipped_complete = true,
                                       .unstored = unstored, .n_unstored = 1, .first_available = 55 };
        struct bbt_missing out[16];
        size_t n = bbt_missing_classify(req, BBT_ELEMENTSOF(req), &f, out, BBT_ELEMENTSOF(out));

        /* 50..54 lie below the spool's oldest record: first_retained says it. */
        ASSERT_EQ(n, 6);
        expect_entry(&out[0], 55, 59, BBT_MISSING_DAMAGED);
        expect_entry(&out[1], 60, 61, BBT_MISSING_UNSTORED);
        expect_entry(&out[2], 62, 99, BBT_MISSING_DAMAGED);
        expect_entry(&out[3], 100, 199, BBT_MISSING_SKIPPED); /* whole, beyond the request */
        expect_entry(&out[4], 300, 300, BBT_MISSING_DAMAGED);
        expect_entry(&out[5], 500, 599, BBT_MISSING_SKIPPED); /* every other remembered range */
        /* ... while there is room: */
        n = bbt_missing_classify(req, 1, &f, out, BBT_ELEMENTSOF(out));
        ASSERT_EQ(n, 5);
        expect_entry(&out[4], 500, 599, BBT_MISSING_SKIPPED);
        n = bbt_missing_classify(req, 1, &f, out, 2);
        ASSERT_EQ(n, 2);
}

TEST(forgotten_ranges_make_older_seqs_unknown)
{
        /* The list is full: ranges older than 1000..1099 may have been
         * forgotten, so what lies below 1000 and is not in the spool may have
         * been skipped as well as lost. */
        const struct bbt_seq_range skipped[] = { R(1000, 1099), R(2000, 2099) };
        const struct bbt_seq_range req[] = { R(400, 1200) };
        struct bbt_missing_facts f = { .skipped = skipped, .n_skipped = 2, .skipped_complete = false,
                                       .first_available = 300 };
        struct bbt_missing out[16];
        size_t n = bbt_missing_classify(req, 1, &f, out, BBT_ELEMENTSOF(out));

        ASSERT_EQ(n, 4);
        expect_entry(&out[0], 400, 999, BBT_MISSING_UNKNOWN);
        expect_entry(&out[1], 1000, 1099, BBT_MISSING_SKIPPED);
        expect_entry(&out[2], 1100, 1200, BBT_MISSING_DAMAGED);
        expect_entry(&out[3], 2000, 2099, BBT_MISSING_SKIPPED);

        /* Complete, the same gap is damaged. */
        f.skipped_complete = true;
        n = bbt_missing_classify(req, 1, &f, out, BBT_ELEMENTSOF(out));
        expect_entry(&out[0], 400, 999, BBT_MISSING_DAMAGED);
}

TEST(empty_spool_and_no_ranges)
{
        const struct bbt_seq_range req[] = { R(1, 10) };
        struct bbt_missing_facts f = { .skipped_complete = true };
        struct bbt_missing out[4];

        /* Nothing in the spool: all of it is below first_retained. */
        ASSERT_EQ(bbt_missing_classify(req, 1, &f, out, BBT_ELEMENTSOF(out)), 0);
        f.first_available = 1;
        ASSERT_EQ(bbt_missing_classify(req, 1, &f, out, BBT_ELEMENTSOF(out)), 1);
        expect_entry(&out[0], 1, 10, BBT_MISSING_DAMAGED);
        ASSERT_STR_EQ(bbt_missing_reason_name(BBT_MISSING_UNKNOWN), "unknown");
}
