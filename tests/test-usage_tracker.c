/* The usage state machine on synthetic timelines. */
/* bbt-test: label=unit timeout=10 */
#include "test.h"
#include "usage_tracker.h"

#define S 1000LL
#define MIN (60 * S)
#define HOUR (60 * MIN)
#define B 1699999200000LL /* a whole hour (UTC and Asia/Shanghai) */

static struct bbt_usage got[64];
static int n_got;

static void emit(void *ud, const struct bbt_usage *u)
{
        if (n_got < 64)
                got[n_got] = *u;
        n_got++;
}

static struct bbt_usage_tracker t;

static void start(int64_t idle_timeout, int64_t flush)
{
        n_got = 0;
        bbt_usage_tracker_init(&t, idle_timeout, flush, emit, NULL, 0, B);
}

#define EXPECT(i, st, s, e)                                                                 \
        do {                                                                                \
                ASSERT_GT(n_got, i);                                                        \
                ASSERT_EQ(got[i].state, st);                                                \
                ASSERT_EQ(got[i].start, B + (s));                                           \
                ASSERT_EQ(got[i].end, B + (e));                                             \
        } while (0)

static void assert_well_formed(void)
{
        for (int i = 0; i < n_got; i++) {
                ASSERT_LE(got[i].start, got[i].end);
                ASSERT_LE(got[i].interactive_ms, got[i].end - got[i].start);
                ASSERT_LE(got[i].audio_ms, got[i].end - got[i].start);
                ASSERT_LE(got[i].end - got[i].start, HOUR);
                if (i > 0)
                        ASSERT_GE(got[i].start, got[i - 1].end);
        }
}

TEST(touch_lesson)
{
        int64_t m;

        start(5 * MIN, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        ASSERT_EQ(n_got, 0); /* the empty standby interval is not sent */
        for (m = 1; m <= 40; m++) {
                bbt_usage_tracker_input(&t, BBT_INPUT_TOUCH, 3, m * MIN, B + m * MIN);
                if (m == 10)
                        bbt_usage_tracker_input(&t, BBT_INPUT_KEY, 2, m * MIN, B + m * MIN);
        }
        /* A reading from the past (another thread's stale clock) changes nothing. */
        bbt_usage_tracker_input(&t, BBT_INPUT_MOUSE, 1, 39 * MIN, B + 39 * MIN);
        bbt_usage_tracker_tick(&t, 50 * MIN, B + 50 * MIN);
        ASSERT_EQ(n_got, 2);
        EXPECT(0, BBT_USAGE_IDLE, 0, 1 * MIN);
        EXPECT(1, BBT_USAGE_ACTIVE, 1 * MIN, 45 * MIN); /* last touch at 40 min + 5 min timeout */
        ASSERT_EQ(got[1].touch, 120);
        ASSERT_EQ(got[1].key, 2);
        ASSERT_EQ(got[1].mouse, 1);
        ASSERT_EQ(got[1].interactive_ms, 44 * MIN);
        ASSERT_EQ(got[1].audio_ms, 0);
        ASSERT_EQ(bbt_usage_tracker_state(&t), BBT_USAGE_IDLE);
        bbt_usage_tracker_flush(&t, 55 * MIN, B + 55 * MIN);
        EXPECT(2, BBT_USAGE_IDLE, 45 * MIN, 55 * MIN);
        assert_well_formed();
}

TEST(video_without_input)
{
        start(5 * MIN, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_audio(&t, true, 2 * MIN, B + 2 * MIN);
        bbt_usage_tracker_audio(&t, false, 32 * MIN, B + 32 * MIN);
        ASSERT_EQ(n_got, 2);
        EXPECT(1, BBT_USAGE_ACTIVE, 2 * MIN, 32 * MIN);
        ASSERT_EQ(got[1].audio_ms, 30 * MIN);
        ASSERT_EQ(got[1].interactive_ms, 0);
        ASSERT_EQ(bbt_usage_tracker_state(&t), BBT_USAGE_IDLE);
}

TEST(mouse_is_active_but_not_interactive)
{
        start(5 * MIN, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_MOUSE, 10, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_PEN, 1, 2 * MIN, B + 2 * MIN);
        bbt_usage_tracker_tick(&t, 20 * MIN, B + 20 * MIN);
        EXPECT(0, BBT_USAGE_ACTIVE, 0, 7 * MIN);
        ASSERT_EQ(got[0].interactive_ms, 5 * MIN); /* from the pen at 2 min to 7 min */
        ASSERT_EQ(got[0].mouse, 10);
        ASSERT_EQ(got[0].pen, 1);
}

TEST(display_off_is_standby)
{
        start(5 * MIN, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_TOUCH, 1, 1 * MIN, B + 1 * MIN);
        bbt_usage_tracker_display(&t, false, 3 * MIN, B + 3 * MIN);
        /* Input with the display off does not make the terminal active. */
        bbt_usage_tracker_input(&t, BBT_INPUT_KEY, 1, 4 * MIN, B + 4 * MIN);
        bbt_usage_tracker_flush(&t, 10 * MIN, B + 10 * MIN);
        ASSERT_EQ(n_got, 3);
        EXPECT(1, BBT_USAGE_ACTIVE, 1 * MIN, 3 * MIN);
        EXPECT(2, BBT_USAGE_STANDBY, 3 * MIN, 10 * MIN);
        ASSERT_EQ(got[2].key, 1);
}

TEST(idle_timeout_edges)
{
        start(5 * MIN, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_KEY, 1, 0, B);
        /* One ms before the timeout: still active; another key extends it. */
        bbt_usage_tracker_tick(&t, 5 * MIN - 1, B + 5 * MIN - 1);
        ASSERT_EQ(bbt_usage_tracker_state(&t), BBT_USAGE_ACTIVE);
        bbt_usage_tracker_input(&t, BBT_INPUT_KEY, 1, 5 * MIN - 1, B + 5 * MIN - 1);
        bbt_usage_tracker_tick(&t, 10 * MIN - 2, B + 10 * MIN - 2);
        ASSERT_EQ(n_got, 0);
        /* Exactly at the timeout it is idle, and the interval ends there even
         * when the tick comes late. */
        bbt_usage_tracker_tick(&t, 12 * MIN, B + 12 * MIN);
        ASSERT_EQ(n_got, 1);
        EXPECT(0, BBT_USAGE_ACTIVE, 0, 10 * MIN - 1);
        ASSERT_EQ(bbt_usage_tracker_next_deadline(&t), 10 * MIN - 1 + HOUR - (10 * MIN - 1));
}

TEST(hour_boundaries_and_flush)
{
        start(5 * MIN, 25 * MIN);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_audio(&t, true, 50 * MIN, B + 50 * MIN);
        bbt_usage_tracker_tick(&t, 80 * MIN, B + 80 * MIN);
        /* idle 0-25 (flush), 25-50 (state change), active 50-60 (hour), 60-80 still open at 80? flush is 25. */
        EXPECT(0, BBT_USAGE_IDLE, 0, 25 * MIN);
        EXPECT(1, BBT_USAGE_IDLE, 25 * MIN, 50 * MIN);
        EXPECT(2, BBT_USAGE_ACTIVE, 50 * MIN, 60 * MIN);
        ASSERT_EQ(n_got, 3);
        bbt_usage_tracker_tick(&t, 90 * MIN, B + 90 * MIN);
        EXPECT(3, BBT_USAGE_ACTIVE, 60 * MIN, 85 * MIN);
        ASSERT_EQ(got[3].audio_ms, 25 * MIN);
        assert_well_formed();
}

TEST(clock_jumps_back_an_hour)
{
        start(5 * MIN, 10 * MIN);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_tick(&t, 15 * MIN, B + 15 * MIN);
        /* The wall clock is stepped back by an hour at mono 15 min. */
        bbt_usage_tracker_input(&t, BBT_INPUT_TOUCH, 1, 16 * MIN, B + 16 * MIN - HOUR);
        bbt_usage_tracker_tick(&t, 40 * MIN, B + 40 * MIN - HOUR);
        bbt_usage_tracker_flush(&t, 41 * MIN, B + 41 * MIN - HOUR);
        ASSERT_GE(n_got, 4);
        assert_well_formed();
        /* Durations are kept: the monotonic time adds up. */
        int64_t total = 0;
        for (int i = 0; i < n_got; i++)
                total += got[i].end - got[i].start;
        ASSERT_EQ(total, 41 * MIN);
}

TEST(clock_jumps_forward_and_suspend)
{
        start(5 * MIN, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_TOUCH, 1, 1 * MIN, B + 1 * MIN);
        /* Suspended for 8 h: CLOCK_MONOTONIC stood still, the wall clock did not. */
        bbt_usage_tracker_tick(&t, 2 * MIN, B + 8 * HOUR + 2 * MIN);
        bbt_usage_tracker_flush(&t, 3 * MIN, B + 8 * HOUR + 3 * MIN);
        assert_well_formed();
        int64_t total = 0;
        for (int i = 0; i < n_got; i++)
                total += got[i].end - got[i].start;
        ASSERT_EQ(total, 3 * MIN);
        /* The interval after the flush starts on the wall clock as it now reads. */
        ASSERT_EQ(t.start_real, B + 8 * HOUR + 3 * MIN);
}
