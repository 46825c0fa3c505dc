/* Clock skew on its own: which heartbeats are samples, the window, the largest sample, the dead band, the seed. */
/* bbt-test: label=unit timeout=10 */
#include "skew.h"
#include "test.h"

#define S 1000LL /* ms */
#define T0 1800000000000LL

/* Adds a heartbeat stamped TS and received at RECV to SK (window 5, dead band 2 s). */
static bool add(struct bbt_skew *sk, int64_t ts, int64_t recv, int64_t *ret)
{
        return bbt_skew_add(sk, 5, 2 * S, ts, recv, ret);
}

TEST(live_samples_only)
{
        /* Spool empty, not retained, connected for 30 s or more. */
        ASSERT(bbt_skew_is_live(0, false, true, T0, 30 * S, T0 + 30 * S));
        ASSERT(bbt_skew_is_live(0, false, true, T0, 30 * S, T0 + 3600 * S));
        /* A backlog from the agent's spool, the broker's retained copy, no
         * connection, or the broker's queue right after connecting: delayed. */
        ASSERT(!bbt_skew_is_live(1, false, true, T0, 30 * S, T0 + 3600 * S));
        ASSERT(!bbt_skew_is_live(0, true, true, T0, 30 * S, T0 + 3600 * S));
        ASSERT(!bbt_skew_is_live(0, false, false, T0, 30 * S, T0 + 3600 * S));
        ASSERT(!bbt_skew_is_live(0, false, true, T0, 30 * S, T0 + 30 * S - 1));
}

/* The delay only ever adds to the receive time: the largest ts − recv of the
 * window is the estimate, once three samples are in. */
TEST(largest_sample_after_three)
{
        struct bbt_skew sk = { .n = 0 };
        int64_t est = -1;

        /* The terminal is 90 s ahead; deliveries take 0.3, 2 and 0.1 s. */
        ASSERT(!add(&sk, T0 + 90 * S, T0 + 300, &est));
        ASSERT(!add(&sk, T0 + 150 * S, T0 + 60 * S + 2 * S, &est));
        ASSERT_EQ(est, -1); /* untouched before */
        ASSERT(add(&sk, T0 + 210 * S, T0 + 120 * S + 100, &est));
        ASSERT_EQ(est, 90 * S - 100);
        /* Behind by a minute: negative. */
        sk = (struct bbt_skew){ .n = 0 };
        ASSERT(!add(&sk, T0 - 60 * S, T0 + 500, &est));
        ASSERT(!add(&sk, T0, T0 + 60 * S + 200, &est));
        ASSERT(add(&sk, T0 + 60 * S, T0 + 120 * S + 900, &est));
        ASSERT_EQ(est, -60 * S - 200);
}

TEST(dead_band_is_zero)
{
        struct bbt_skew sk = { .n = 0 };
        int64_t est = -1;

        for (int i = 0; i < 3; i++)
                add(&sk, T0 + 1999, T0, &est);
        ASSERT_EQ(est, 0);
        for (int i = 0; i < 3; i++)
                add(&sk, T0 - 1999, T0, &est);
        ASSERT_EQ(est, 0);
        /* At the edge it counts. */
        for (int i = 0; i < 5; i++)
                add(&sk, T0 + 2 * S, T0, &est);
        ASSERT_EQ(est, 2 * S);
        for (int i = 0; i < 5; i++)
                add(&sk, T0 - 2 * S, T0, &est);
        ASSERT_EQ(est, -2 * S);
}

/* Only the last WINDOW samples count: a clock corrected by NTP is seen
 * as soon as the old samples roll out. */
TEST(window_rolls)
{
        struct bbt_skew sk = { .n = 0 };
        int64_t est;

        for (int i = 0; i < 5; i++)
                add(&sk, T0 + 600 * S, T0, &est);
        ASSERT_EQ(est, 600 * S);
        for (int i = 0; i < 4; i++) {
                ASSERT(add(&sk, T0, T0, &est));
                ASSERT_EQ(est, 600 * S);
        }
        ASSERT(add(&sk, T0, T0, &est));
        ASSERT_EQ(est, 0);
        ASSERT_EQ(sk.n, 5);
}

/* A window of 1 or 2 needs that many samples; out of range means 5. */
TEST(window_sizes)
{
        struct bbt_skew sk = { .n = 0 };
        int64_t est = 0;

        ASSERT(bbt_skew_add(&sk, 1, 0, T0 + 7 * S, T0, &est));
        ASSERT_EQ(est, 7 * S);
        ASSERT(bbt_skew_add(&sk, 1, 0, T0 + 3 * S, T0, &est));
        ASSERT_EQ(est, 3 * S); /* the window holds one */
        sk = (struct bbt_skew){ .n = 0 };
        ASSERT(!bbt_skew_add(&sk, 2, 0, T0 + 7 * S, T0, &est));
        ASSERT(bbt_skew_add(&sk, 2, 0, T0 + 3 * S, T0, &est));
        ASSERT_EQ(est, 7 * S);
        for (int w = 0; w < 3; w++) {
                static const int windows[3] = { -1, 0, BBT_SKEW_SAMPLES_MAX + 1 };

                sk = (struct bbt_skew){ .n = 0 };
                for (int i = 0; i < 7; i++)
                        bbt_skew_add(&sk, windows[w], 0, T0 + i * S, T0, &est);
                ASSERT_EQ(sk.n, 5);
                ASSERT_EQ(est, 6 * S);
        }
        /* The largest window the struct holds. */
        sk = (struct bbt_skew){ .n = 0 };
        for (int i = 0; i < BBT_SKEW_SAMPLES_MAX + 3; i++)
                bbt_skew_add(&sk, BBT_SKEW_SAMPLES_MAX, 0, T0 + (i == 2 ? 50 : 1) * S, T0, &est);
        ASSERT_EQ(sk.n, BBT_SKEW_SAMPLES_MAX);
        ASSERT_EQ(est, 1 * S); /* sample 2 rolled out */
}

/* The estimate kept in the store seeds the window after a restart: it is the
 * oldest sample, replaced when the window comes round to it. */
TEST(seeded_from_the_store)
{
        struct bbt_skew sk = { .n = 0 };
        int64_t est = 0;

        bbt_skew_seed(&sk, 45 * S);
        ASSERT_EQ(sk.n, 1);
        ASSERT_EQ(sk.sample[0], 45 * S);
        ASSERT(!add(&sk, T0 + 30 * S, T0, &est));
        ASSERT(add(&sk, T0 + 31 * S, T0, &est));
        ASSERT_EQ(est, 45 * S);
        for (int i = 0; i < 3; i++) /* the window comes round: the seed goes */
                add(&sk, T0 + 31 * S, T0, &est);
        ASSERT_EQ(est, 31 * S);
}

/* A clock behind: no empty slot may count as a sample (it read 0 once, so
 * the clock_skew fault cleared and came back, and a minute went uncorrected). */
TEST(seeded_clock_behind_never_reads_zero)
{
        struct bbt_skew sk = { .n = 0 };
        int64_t est = 1;

        bbt_skew_seed(&sk, -45 * S);
        ASSERT(!add(&sk, T0 - 30 * S, T0, &est));
        for (int i = 0; i < 8; i++) {
                ASSERT(add(&sk, T0 - 31 * S, T0, &est));
                ASSERT(est <= -30 * S);
        }
}

TEST(correct)
{
        ASSERT_EQ(bbt_skew_correct(true, 90 * S, T0 + 90 * S), T0);
        ASSERT_EQ(bbt_skew_correct(true, -60 * S, T0 - 60 * S), T0);
        ASSERT_EQ(bbt_skew_correct(false, 90 * S, T0), T0);
}

/* When the skew was in effect (limit 300 s, window 5): a clock 600 s fast
 * from the heartbeat received at T0 + 60 s; the estimate needs three samples
 * (T0 + 180 s) but the fault dates from the first that showed it. */
TEST(since_first_sample_that_showed_it)
{
        struct bbt_skew sk = { .n = 0 };
        const int64_t limit = 300 * S;
        int64_t est = 0, r;

        ASSERT(!add(&sk, T0 + 1 * S, T0, &est)); /* right */
        ASSERT(!add(&sk, T0 + 60 * S + 600 * S, T0 + 60 * S, &est));
        ASSERT(add(&sk, T0 + 120 * S + 600 * S - 20 * S, T0 + 120 * S, &est)); /* delayed 20 s */
        ASSERT_EQ(est, 600 * S);
        r = bbt_skew_since(&sk, limit, true, T0 + 120 * S);
        ASSERT_EQ(r, T0 + 60 * S);
        /* Still past: the same date (the fault is open already). */
        ASSERT(add(&sk, T0 + 180 * S + 600 * S, T0 + 180 * S, &est));
        ASSERT_EQ(bbt_skew_since(&sk, limit, true, T0 + 180 * S), T0 + 60 * S);
        /* Set right at T0 + 240 s: the 600 s samples hold the estimate until
         * the window has none (the fifth right sample, T0 + 480 s), and the
         * clear dates from the first right one. */
        for (int i = 4; i <= 7; i++) {
                ASSERT(add(&sk, T0 + i * 60 * S + 1 * S, T0 + i * 60 * S, &est));
                ASSERT_EQ(est, 600 * S);
        }
        ASSERT(add(&sk, T0 + 480 * S + 1 * S, T0 + 480 * S, &est));
        ASSERT_EQ(est, 0);
        ASSERT_EQ(bbt_skew_since(&sk, limit, false, T0 + 480 * S), T0 + 240 * S);
}

/* A clock behind: every sample shows it (a delay only makes a sample
 * smaller), so the estimate turns at once and the first sample dates it. A
 * date never goes back past the previous change of side. */
TEST(since_clock_behind_and_never_back)
{
        struct bbt_skew sk = { .n = 0 };
        const int64_t limit = 300 * S;
        int64_t est = 0;

        add(&sk, T0 - 400 * S, T0, &est);
        add(&sk, T0 + 60 * S - 400 * S, T0 + 60 * S, &est);
        ASSERT(add(&sk, T0 + 120 * S - 400 * S, T0 + 120 * S, &est));
        ASSERT_EQ(est, -400 * S);
        ASSERT_EQ(bbt_skew_since(&sk, limit, true, T0 + 120 * S), T0);
        /* Right again: the largest sample is the right one, at once. */
        ASSERT(add(&sk, T0 + 180 * S, T0 + 180 * S, &est));
        ASSERT_EQ(est, 0);
        ASSERT_EQ(bbt_skew_since(&sk, limit, false, T0 + 180 * S), T0 + 180 * S);
        /* Seeded (an aggregator restart) with no sample past the limit held:
         * dated at the heartbeat that turned it. */
        bbt_skew_seed(&sk, -400 * S);
        ASSERT_EQ(bbt_skew_since(&sk, limit, true, T0 + 900 * S), T0 + 900 * S);
        /* And a side change dated before the previous one is moved up to it. */
        add(&sk, T0 + 100 * S, T0 + 100 * S, &est); /* a sample received "earlier" (a stepped wall clock) */
        ASSERT_EQ(bbt_skew_since(&sk, limit, false, T0 + 960 * S), T0 + 900 * S);
}
