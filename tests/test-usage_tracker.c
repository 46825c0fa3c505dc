/* The usage state machine on synthetic timelines. */
/* bbt-test: label=unit timeout=10 */
#include "test.h"
#include "usage_tracker.h"

#define S 1000LL
#define MINUTE (60 * S)
#define HOUR (60 * MINUTE)
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

        start(5 * MINUTE, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        ASSERT_EQ(n_got, 0); /* the empty standby interval is not sent */
        for (m = 1; m <= 40; m++) {
                bbt_usage_tracker_input(&t, BBT_INPUT_TOUCH, 3, m * MINUTE, B + m * MINUTE);
                if (m == 10)
                        bbt_usage_tracker_input(&t, BBT_INPUT_KEY, 2, m * MINUTE, B + m * MINUTE);
        }
        /* A reading from the past (another thread's stale clock) changes nothing. */
        bbt_usage_tracker_input(&t, BBT_INPUT_MOUSE, 1, 39 * MINUTE, B + 39 * MINUTE);
        bbt_usage_tracker_tick(&t, 50 * MINUTE, B + 50 * MINUTE);
        ASSERT_EQ(n_got, 2);
        EXPECT(0, BBT_USAGE_IDLE, 0, 1 * MINUTE);
        EXPECT(1, BBT_USAGE_ACTIVE, 1 * MINUTE, 45 * MINUTE); /* last touch at 40 min + 5 min timeout */
        ASSERT_EQ(got[1].touch, 120);
        ASSERT_EQ(got[1].key, 2);
        ASSERT_EQ(got[1].mouse, 1);
        ASSERT_EQ(got[1].interactive_ms, 44 * MINUTE);
        ASSERT_EQ(got[1].audio_ms, 0);
        ASSERT_EQ(bbt_usage_tracker_state(&t), BBT_USAGE_IDLE);
        bbt_usage_tracker_flush(&t, 55 * MINUTE, B + 55 * MINUTE);
        EXPECT(2, BBT_USAGE_IDLE, 45 * MINUTE, 55 * MINUTE);
        assert_well_formed();
}

TEST(video_without_input)
{
        start(5 * MINUTE, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_audio(&t, true, 2 * MINUTE, B + 2 * MINUTE);
        bbt_usage_tracker_audio(&t, false, 32 * MINUTE, B + 32 * MINUTE);
        ASSERT_EQ(n_got, 2);
        EXPECT(1, BBT_USAGE_ACTIVE, 2 * MINUTE, 32 * MINUTE);
        ASSERT_EQ(got[1].audio_ms, 30 * MINUTE);
        ASSERT_EQ(got[1].interactive_ms, 0);
        ASSERT_EQ(bbt_usage_tracker_state(&t), BBT_USAGE_IDLE);
}

TEST(mouse_is_active_but_not_interactive)
{
        start(5 * MINUTE, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_MOUSE, 10, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_PEN, 1, 2 * MINUTE, B + 2 * MINUTE);
        bbt_usage_tracker_tick(&t, 20 * MINUTE, B + 20 * MINUTE);
        EXPECT(0, BBT_USAGE_ACTIVE, 0, 7 * MINUTE);
        ASSERT_EQ(got[0].interactive_ms, 5 * MINUTE); /* from the pen at 2 min to 7 min */
        ASSERT_EQ(got[0].mouse, 10);
        ASSERT_EQ(got[0].pen, 1);
}

TEST(display_off_is_standby)
{
        start(5 * MINUTE, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_TOUCH, 1, 1 * MINUTE, B + 1 * MINUTE);
        bbt_usage_tracker_display(&t, false, 3 * MINUTE, B + 3 * MINUTE);
        /* Input with the display off does not make the terminal active. */
        bbt_usage_tracker_input(&t, BBT_INPUT_KEY, 1, 4 * MINUTE, B + 4 * MINUTE);
        bbt_usage_tracker_flush(&t, 10 * MINUTE, B + 10 * MINUTE);
        ASSERT_EQ(n_got, 3);
        EXPECT(1, BBT_USAGE_ACTIVE, 1 * MINUTE, 3 * MINUTE);
        EXPECT(2, BBT_USAGE_STANDBY, 3 * MINUTE, 10 * MINUTE);
        ASSERT_EQ(got[2].key, 1);
}

TEST(idle_timeout_edges)
{
        start(5 * MINUTE, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_KEY, 1, 0, B);
        /* One ms before the timeout: still active; another key extends it. */
        bbt_usage_tracker_tick(&t, 5 * MINUTE - 1, B + 5 * MINUTE - 1);
        ASSERT_EQ(bbt_usage_tracker_state(&t), BBT_USAGE_ACTIVE);
        bbt_usage_tracker_input(&t, BBT_INPUT_KEY, 1, 5 * MINUTE - 1, B + 5 * MINUTE - 1);
        bbt_usage_tracker_tick(&t, 10 * MINUTE - 2, B + 10 * MINUTE - 2);
        ASSERT_EQ(n_got, 0);
        /* Exactly at the timeout it is idle, and the interval ends there even
         * when the tick comes late. */
        bbt_usage_tracker_tick(&t, 12 * MINUTE, B + 12 * MINUTE);
        ASSERT_EQ(n_got, 1);
        EXPECT(0, BBT_USAGE_ACTIVE, 0, 10 * MINUTE - 1);
        ASSERT_EQ(bbt_usage_tracker_next_deadline(&t), 10 * MINUTE - 1 + HOUR - (10 * MINUTE - 1));
}

TEST(hour_boundaries_and_flush)
{
        start(5 * MINUTE, 25 * MINUTE);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_audio(&t, true, 50 * MINUTE, B + 50 * MINUTE);
        bbt_usage_tracker_tick(&t, 80 * MINUTE, B + 80 * MINUTE);
        /* idle 0-25 (flush), 25-50 (state change), active 50-60 (hour), 60-80 still open at 80? flush is 25. */
        EXPECT(0, BBT_USAGE_IDLE, 0, 25 * MINUTE);
        EXPECT(1, BBT_USAGE_IDLE, 25 * MINUTE, 50 * MINUTE);
        EXPECT(2, BBT_USAGE_ACTIVE, 50 * MINUTE, 60 * MINUTE);
        ASSERT_EQ(n_got, 3);
        bbt_usage_tracker_tick(&t, 90 * MINUTE, B + 90 * MINUTE);
        EXPECT(3, BBT_USAGE_ACTIVE, 60 * MINUTE, 85 * MINUTE);
        ASSERT_EQ(got[3].audio_ms, 25 * MINUTE);
        assert_well_formed();
}

TEST(clock_jumps_back_an_hour)
{
        start(5 * MINUTE, 10 * MINUTE);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_tick(&t, 15 * MINUTE, B + 15 * MINUTE);
        /* The wall clock is stepped back by an hour at mono 15 min. */
        bbt_usage_tracker_input(&t, BBT_INPUT_TOUCH, 1, 16 * MINUTE, B + 16 * MINUTE - HOUR);
        bbt_usage_tracker_tick(&t, 40 * MINUTE, B + 40 * MINUTE - HOUR);
        bbt_usage_tracker_flush(&t, 41 * MINUTE, B + 41 * MINUTE - HOUR);
        ASSERT_GE(n_got, 4);
        assert_well_formed();
        /* Durations are kept: the monotonic time adds up. */
        int64_t total = 0;
        for (int i = 0; i < n_got; i++)
                total += got[i].end - got[i].start;
        ASSERT_EQ(total, 41 * MINUTE);
}

TEST(clock_jumps_forward_and_suspend)
{
        start(5 * MINUTE, HOUR);
        bbt_usage_tracker_display(&t, true, 0, B);
        bbt_usage_tracker_input(&t, BBT_INPUT_TOUCH, 1, 1 * MINUTE, B + 1 * MINUTE);
        /* Suspended for 8 h: CLOCK_MONOTONIC stood still, the wall clock did not. */
        bbt_usage_tracker_tick(&t, 2 * MINUTE, B + 8 * HOUR + 2 * MINUTE);
        bbt_usage_tracker_flush(&t, 3 * MINUTE, B + 8 * HOUR + 3 * MINUTE);
        assert_well_formed();
        int64_t total = 0;
        for (int i = 0; i < n_got; i++)
                total += got[i].end - got[i].start;
        ASSERT_EQ(total, 3 * MINUTE);
        /* The interval after the flush starts on the wall clock as it now reads. */
        ASSERT_EQ(t.start_real, B + 8 * HOUR + 3 * MINUTE);
}
