/* 差异系数: METRICS.md's check vector, exclusion of small schools, thresholds, edge cases. */
/* bbt-test: label=unit timeout=10 */
#include <errno.h>
#include <math.h>

#include "balance.h"
#include "test.h"

/* Books per pupil of five schools, (pupils, books), from METRICS.md. */
static const long pupils[] = { 45, 37, 89, 76, 55 };
static const long books[] = { 279, 137, 935, 160, 402 };

static void fill(struct bbt_balance_input *in)
{
        for (int i = 0; i < 5; i++) {
                in[i].pupils = pupils[i];
                in[i].value = (double)books[i] / (double)pupils[i];
        }
}

TEST(check_vector)
{
        struct bbt_balance_input in[5];
        struct bbt_balance b;
        char text[64];

        fill(in);
        ASSERT_OK(bbt_balance_compute(in, 5, BBT_SECTION_PRIMARY, 0, &b));
        ASSERT_EQ(b.schools, 5);
        ASSERT_EQ(b.pupils, 302);
        /* Published to three decimals: X̄ = 6.334, S = 3.264, CV = 0.515. */
        snprintf(text, sizeof(text), "%.3f %.3f %.3f", b.mean, b.sd, b.cv);
        ASSERT_STR_EQ(text, "6.334 3.264 0.515");
        ASSERT(b.defined);
        ASSERT(!b.quality); /* 0.515 > 0.50 for primary */
        ASSERT(b.basic);    /* <= 0.65 */
        ASSERT_OK(bbt_balance_compute(in, 5, BBT_SECTION_JUNIOR, 0, &b));
        ASSERT(!b.quality);
        ASSERT(b.basic); /* <= 0.55 */
}

TEST(small_schools_left_out)
{
        struct bbt_balance_input in[5];
        struct bbt_balance b;

        fill(in);
        /* 45 and 37 pupils are under the default minimum of 50. */
        ASSERT_OK(bbt_balance_compute(in, 5, BBT_SECTION_PRIMARY, BBT_BALANCE_MIN_PUPILS_DEFAULT, &b));
        ASSERT_EQ(b.schools, 3);
        ASSERT_EQ(b.left_out, 2);
        ASSERT_EQ(b.pupils, 220);
        ASSERT_DBL_NEAR(b.mean, 1497.0 / 220.0, 1e-12);
        ASSERT_DBL_NEAR(b.cv, 0.534618, 1e-6);
}

TEST(equal_schools_and_edges)
{
        struct bbt_balance_input in[3] = { { 2.5, 100 }, { 2.5, 300 }, { 2.5, 60 } };
        struct bbt_balance b;
        double q, basic;

        ASSERT_OK(bbt_balance_compute(in, 3, BBT_SECTION_JUNIOR, 50, &b));
        ASSERT_DBL_NEAR(b.cv, 0, 0);
        ASSERT(b.quality && b.basic);

        /* All zero: the CV is undefined, not 0/0. */
        in[0].value = in[1].value = in[2].value = 0;
        ASSERT_OK(bbt_balance_compute(in, 3, BBT_SECTION_PRIMARY, 50, &b));
        ASSERT(!b.defined && !b.quality && !b.basic);

        /* No school big enough. */
        ASSERT_OK(bbt_balance_compute(in, 3, BBT_SECTION_PRIMARY, 1000, &b));
        ASSERT_EQ(b.schools, 0);
        ASSERT(!b.defined);
        ASSERT_OK(bbt_balance_compute(NULL, 0, BBT_SECTION_PRIMARY, 50, &b));
        ASSERT(!b.defined);

        in[1].pupils = -1;
        ASSERT_EQ(bbt_balance_compute(in, 3, BBT_SECTION_PRIMARY, 50, &b), -EINVAL);
        in[1].pupils = 300;
        in[1].value = NAN;
        ASSERT_EQ(bbt_balance_compute(in, 3, BBT_SECTION_PRIMARY, 50, &b), -EINVAL);

        bbt_balance_thresholds(BBT_SECTION_PRIMARY, &q, &basic);
        ASSERT_DBL_NEAR(q, 0.50, 0);
        ASSERT_DBL_NEAR(basic, 0.65, 0);
        bbt_balance_thresholds(BBT_SECTION_JUNIOR, &q, &basic);
        ASSERT_DBL_NEAR(q, 0.45, 0);
        ASSERT_DBL_NEAR(basic, 0.55, 0);
}
