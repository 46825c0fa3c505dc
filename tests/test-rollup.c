/* Rollups: school hours, cuts at periods, breaks and midnight, the interactive split; day sets; the rebuild. */
/* bbt-test: label=unit timeout=10 */
#include <errno.h>
#include <unistd.h>

#include "calendar.h"
#include "dates.h"
#include "rollup.h"
#include "store.h"
#include "test.h"

#define MIN 60000LL /* ms */

/* Six periods, built by hand (calendar.c is not used here):
 *   k:  0 08:00–08:40  1 08:50–09:30  2 09:50–10:30  3 10:40–11:20
 *       4 14:00–14:40  5 14:50–15:30
 * With the 30-minute margin, school hours are 07:30–16:00 local. */
static const struct bbt_bells bells = {
        .n = 6,
        .p = { { 480, 520 }, { 530, 570 }, { 590, 630 }, { 640, 680 }, { 840, 880 }, { 890, 930 } },
};
static const struct bbt_rollup_rules rules = { .bells = &bells, .margin_min = 30, .offset_min = 480 };

/* 2026-09-01, a Tuesday: day 20697. */
#define D 20697

/* The instant of local (UTC+8) time H:M on DAY. */
static int64_t at(int32_t day, int h, int m)
{
        return bbt_day_start_ms(day, 480) + (h * 60 + m) * MIN;
}

/* Rolls up one interval that must give exactly one row, for DAY. */
static struct bbt_day_rollup one_row(const struct bbt_rollup_rules *r, int64_t start, int64_t end,
                                     enum bbt_usage_state state, int64_t interactive, int32_t day)
{
        struct bbt_usage_span u = { start, end, state, interactive };
        struct bbt_day_rollup out[3];

        ASSERT_EQ(bbt_rollup_usage(r, &u, out, 3), 1);
        ASSERT_EQ(out[0].day, day);
        return out[0];
}

static void assert_periods(const struct bbt_day_rollup *row, const int64_t *want)
{
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                if (row->period_active_ms[k] != want[k])
                        FAIL("period %d: %lld vs %lld", k, (long long)row->period_active_ms[k],
                             (long long)want[k]);
}

TEST(window)
{
        int64_t s, e;

        ASSERT_EQ(bbt_day_from_ymd(2026, 9, 1), D);
        /* Local midnight of D = D·86 400 000 − 8·3 600 000
         *   = 1 788 220 800 000 − 28 800 000 = 1 788 192 000 000 (UTC ms).
         * 07:30 = +27 000 000 → 1 788 219 000 000 (23:30 UTC on Aug 31);
         * 16:00 = +57 600 000 → 1 788 249 600 000. */
        bbt_rollup_window(&rules, D, &s, &e);
        ASSERT_EQ(s, 1788219000000LL);
        ASSERT_EQ(e, 1788249600000LL);

        /* A margin of 0: exactly 08:00–15:30. */
        struct bbt_rollup_rules r0 = rules;
        r0.margin_min = 0;
        bbt_rollup_window(&r0, D, &s, &e);
        ASSERT_EQ(s, at(D, 8, 0));
        ASSERT_EQ(e, at(D, 15, 30));

        /* No bells: an empty window. */
        struct bbt_bells none = { .n = 0 };
        r0.bells = &none;
        bbt_rollup_window(&r0, D, &s, &e);
        ASSERT_EQ(s, e);
}

TEST(inside_one_period)
{
        /* Active 08:05–08:30: 25 min = 1 500 000 ms, all inside period 0;
         * 10 min interactive, all of it inside school hours. */
        struct bbt_day_rollup row = one_row(&rules, at(D, 8, 5), at(D, 8, 30), BBT_USAGE_ACTIVE, 10 * MIN, D);
        int64_t want[BBT_PERIODS_MAX] = { 1500000 };

        ASSERT_EQ(row.on_ms, 1500000);
        ASSERT_EQ(row.active_ms, 1500000);
        ASSERT_EQ(row.interactive_ms, 600000);
        ASSERT_EQ(row.hb_count, 0);
        assert_periods(&row, want);
}

TEST(across_period_boundary)
{
        /* Active 08:30–08:55 = 25 min: period 0 gets 08:30–08:40 = 600 000,
         * the 10-min break 08:40–08:50 none, period 1 08:50–08:55 = 300 000. */
        struct bbt_day_rollup row = one_row(&rules, at(D, 8, 30), at(D, 8, 55), BBT_USAGE_ACTIVE, 0, D);
        int64_t want[BBT_PERIODS_MAX] = { 600000, 300000 };

        ASSERT_EQ(row.on_ms, 1500000);
        ASSERT_EQ(row.active_ms, 1500000);
        ASSERT_EQ(row.interactive_ms, 0);
        assert_periods(&row, want);
}

TEST(across_break)
{
        /* Active 09:20–10:00 = 40 min = 2 400 000: period 1 09:20–09:30 =
         * 600 000, the 大课间 09:30–09:50 counts in active_ms only, period 2
         * 09:50–10:00 = 600 000. */
        struct bbt_day_rollup row = one_row(&rules, at(D, 9, 20), at(D, 10, 0), BBT_USAGE_ACTIVE, 0, D);
        int64_t want[BBT_PERIODS_MAX] = { 0, 600000, 600000 };

        ASSERT_EQ(row.on_ms, 2400000);
        ASSERT_EQ(row.active_ms, 2400000);
        assert_periods(&row, want);

        /* The lunch break 11:20–14:00 is inside school hours but no period:
         * 11:00–14:10 = 190 min; period 3 gets 11:00–11:20, period 4 14:00–14:10. */
        row = one_row(&rules, at(D, 11, 0), at(D, 14, 10), BBT_USAGE_ACTIVE, 0, D);
        int64_t want2[BBT_PERIODS_MAX] = { 0, 0, 0, 20 * MIN, 10 * MIN };
        ASSERT_EQ(row.active_ms, 190 * MIN);
        assert_periods(&row, want2);
}

TEST(across_midnight)
{
        struct bbt_usage_span u;
        struct bbt_day_rollup out[3];

        /* 23:30–00:30 Beijing = 15:30–16:30 UTC on D: 1 788 220 800 000 +
         * 55 800 000 = 1 788 276 600 000 to 1 788 280 200 000. Local
         * midnight (16:00 UTC) is 1 788 278 400 000, so the interval touches
         * D and D+1; both are outside school hours: two rows of zeros. */
        u = (struct bbt_usage_span){ 1788276600000LL, 1788280200000LL, BBT_USAGE_ACTIVE, 20 * MIN };
        ASSERT_EQ(at(D + 1, 0, 0), 1788278400000LL);
        ASSERT_EQ(bbt_rollup_usage(&rules, &u, out, 3), 2);
        ASSERT_EQ(out[0].day, D);
        ASSERT_EQ(out[1].day, D + 1);
        for (int i = 0; i < 2; i++) {
                ASSERT_EQ(out[i].on_ms, 0);
                ASSERT_EQ(out[i].active_ms, 0);
                ASSERT_EQ(out[i].interactive_ms, 0);
                ASSERT_EQ(out[i].period_active_ms[0], 0);
        }

        /* A boarding school with evening self-study 21:00–23:40: school hours
         * 07:30 .. 23:40 + 30 = 24:10, which stops at midnight (24:00).
         * Active 23:30–00:30 with 30 min interactive:
         *   D:   inside 23:30–24:00 = 1 800 000; period 21:00–23:40 gets
         *        23:30–23:40 = 600 000; interactive round(1 800 000 × 1 800 000
         *        / 3 600 000) = 900 000.
         *   D+1: 00:00–00:30 is before 07:30: nothing. */
        struct bbt_bells night = { .n = 2, .p = { { 480, 520 }, { 1260, 1420 } } };
        struct bbt_rollup_rules rn = { .bells = &night, .margin_min = 30, .offset_min = 480 };
        u.interactive_ms = 30 * MIN;
        ASSERT_EQ(bbt_rollup_usage(&rn, &u, out, 3), 2);
        ASSERT_EQ(out[0].on_ms, 1800000);
        ASSERT_EQ(out[0].active_ms, 1800000);
        ASSERT_EQ(out[0].period_active_ms[1], 600000);
        ASSERT_EQ(out[0].interactive_ms, 900000);
        ASSERT_EQ(out[1].on_ms, 0);
        ASSERT_EQ(out[1].interactive_ms, 0);

        /* Ending exactly at local midnight touches one day only. */
        u = (struct bbt_usage_span){ at(D, 23, 30), at(D + 1, 0, 0), BBT_USAGE_IDLE, 0 };
        ASSERT_EQ(bbt_rollup_usage(&rn, &u, out, 3), 1);
        ASSERT_EQ(out[0].day, D);
        ASSERT_EQ(out[0].on_ms, 1800000);
        ASSERT_EQ(out[0].active_ms, 0);

        /* OUT_MAX is respected. */
        u = (struct bbt_usage_span){ at(D, 23, 30), at(D + 1, 0, 30), BBT_USAGE_ACTIVE, 0 };
        ASSERT_EQ(bbt_rollup_usage(&rn, &u, out, 1), 1);
        ASSERT_EQ(out[0].day, D);
        ASSERT_EQ(bbt_rollup_usage(&rn, &u, out, 0), 0);
}

TEST(partly_outside_school_hours)
{
        /* Active 07:00–07:50 (3 000 000 ms), school hours from 07:30: inside
         * 07:30–07:50 = 1 200 000, before period 0. Interactive 1 000 000 of
         * the whole: round(1 000 000 × 1 200 000 / 3 000 000) = 400 000. */
        struct bbt_day_rollup row = one_row(&rules, at(D, 7, 0), at(D, 7, 50), BBT_USAGE_ACTIVE, 1000000, D);
        int64_t none[BBT_PERIODS_MAX] = { 0 };

        ASSERT_EQ(row.on_ms, 1200000);
        ASSERT_EQ(row.on_all_ms, 3000000); /* the whole interval, for 在线率 */
        ASSERT_EQ(row.active_ms, 1200000);
        ASSERT_EQ(row.interactive_ms, 400000);
        assert_periods(&row, none);

        /* 15:20–16:30 active: inside 15:20–16:00 = 2 400 000; period 5 gets
         * 15:20–15:30 = 600 000. */
        row = one_row(&rules, at(D, 15, 20), at(D, 16, 30), BBT_USAGE_ACTIVE, 0, D);
        ASSERT_EQ(row.active_ms, 2400000);
        ASSERT_EQ(row.period_active_ms[5], 600000);

        /* Wholly outside: 18:00–19:00 gives a row of zeros. */
        row = one_row(&rules, at(D, 18, 0), at(D, 19, 0), BBT_USAGE_ACTIVE, 30 * MIN, D);
        ASSERT_EQ(row.on_ms, 0);
        ASSERT_EQ(row.on_all_ms, 3600000);
        ASSERT_EQ(row.active_ms, 0);
        ASSERT_EQ(row.interactive_ms, 0);
}

TEST(standby_and_idle)
{
        int64_t none[BBT_PERIODS_MAX] = { 0 };
        struct bbt_day_rollup row;

        /* Standby 10:00–10:20 = 1 200 000: on only. */
        row = one_row(&rules, at(D, 10, 0), at(D, 10, 20), BBT_USAGE_STANDBY, 0, D);
        ASSERT_EQ(row.on_ms, 1200000);
        ASSERT_EQ(row.active_ms, 0);
        ASSERT_EQ(row.interactive_ms, 0);
        assert_periods(&row, none);

        /* Idle 10:35–10:45 = 600 000, 5 min of it inside period 3: on only,
         * no period time; an interactive figure on a non-active interval is
         * not counted. */
        row = one_row(&rules, at(D, 10, 35), at(D, 10, 45), BBT_USAGE_IDLE, 5000, D);
        ASSERT_EQ(row.on_ms, 600000);
        ASSERT_EQ(row.active_ms, 0);
        ASSERT_EQ(row.interactive_ms, 0);
        assert_periods(&row, none);

        /* A zero-length interval still gives its row. */
        row = one_row(&rules, at(D, 9, 0), at(D, 9, 0), BBT_USAGE_ACTIVE, 0, D);
        ASSERT_EQ(row.on_ms, 0);
}

TEST(interactive_split_rounding)
{
        /* School hours 00:00–24:00 (margins clamped at midnight both ends). */
        struct bbt_bells allday = { .n = 2, .p = { { 10, 50 }, { 1380, 1430 } } };
        struct bbt_rollup_rules ra = { .bells = &allday, .margin_min = 30, .offset_min = 480 };
        int64_t midnight = at(D + 1, 0, 0);
        struct bbt_day_rollup out[40];
        struct bbt_usage_span u;

        /* 23:30–00:30, 3 600 000 ms, interactive 1 000 001, half on each day.
         * D gets round_half_up(1 000 001 × 1 800 000 / 3 600 000) =
         * round(500 000.5) = 500 001; D+1 gets the rest of
         * round(1 000 001 × 3 600 000 / 3 600 000) = 1 000 001: 500 000.
         * (Rounding each day on its own would give 500 001 twice: 1 ms created.) */
        u = (struct bbt_usage_span){ at(D, 23, 30), at(D + 1, 0, 30), BBT_USAGE_ACTIVE, 1000001 };
        ASSERT_EQ(bbt_rollup_usage(&ra, &u, out, 3), 2);
        ASSERT_EQ(out[0].on_ms, 1800000);
        ASSERT_EQ(out[1].on_ms, 1800000);
        ASSERT_EQ(out[0].interactive_ms, 500001);
        ASSERT_EQ(out[1].interactive_ms, 500000);

        /* [midnight − 1, midnight + 2): 3 ms, 1 on D, 2 on D+1; interactive 2.
         * D: round(2 × 1 / 3) = round(0.667) = 1; D+1: round(2 × 3 / 3) − 1 = 1. */
        u = (struct bbt_usage_span){ midnight - 1, midnight + 2, BBT_USAGE_ACTIVE, 2 };
        ASSERT_EQ(bbt_rollup_usage(&ra, &u, out, 3), 2);
        ASSERT_EQ(out[0].interactive_ms, 1);
        ASSERT_EQ(out[1].interactive_ms, 1);
        /* Interactive 1: D round(1/3) = 0, D+1 gets 1. */
        u.interactive_ms = 1;
        ASSERT_EQ(bbt_rollup_usage(&ra, &u, out, 3), 2);
        ASSERT_EQ(out[0].interactive_ms, 0);
        ASSERT_EQ(out[1].interactive_ms, 1);
        /* [midnight − 2, midnight + 2), interactive 1: D round(1 × 2 / 4) =
         * round(0.5) = 1 (half up), D+1 0. */
        u = (struct bbt_usage_span){ midnight - 2, midnight + 2, BBT_USAGE_ACTIVE, 1 };
        ASSERT_EQ(bbt_rollup_usage(&ra, &u, out, 3), 2);
        ASSERT_EQ(out[0].interactive_ms, 1);
        ASSERT_EQ(out[1].interactive_ms, 0);

        /* The standard bells, 15:59:59.999–16:00:00.002: 3 ms, of which the
         * 1 ms before 16:00 is inside school hours; interactive 3 → 3 × 1 / 3 = 1. */
        u = (struct bbt_usage_span){ at(D, 16, 0) - 1, at(D, 16, 0) + 2, BBT_USAGE_ACTIVE, 3 };
        ASSERT_EQ(bbt_rollup_usage(&rules, &u, out, 3), 1);
        ASSERT_EQ(out[0].active_ms, 1);
        ASSERT_EQ(out[0].interactive_ms, 1);
        /* An interactive figure larger than the interval is cut to it. */
        u.interactive_ms = 100;
        ASSERT_EQ(bbt_rollup_usage(&rules, &u, out, 3), 1);
        ASSERT_EQ(out[0].interactive_ms, 1);

        /* Far beyond the protocol's one hour, where interactive × inside no
         * longer fits in 64 bits: 40 whole days, L = 3 456 000 000 ms,
         * interactive L − 1. After k days the share is
         * round((L − 1)·k·86 400 000 / L) = round(k·86 400 000 − k/40):
         * k·86 400 000 for k ≤ 20 (k = 20 is exactly .5 below: half up),
         * one less for k ≥ 21. So day 21 (index 20) gets 86 399 999 and every
         * other day 86 400 000, together L − 1. */
        int64_t len = 40 * BBT_MS_PER_DAY, total = 0;
        u = (struct bbt_usage_span){ at(D, 0, 0), at(D + 40, 0, 0), BBT_USAGE_ACTIVE, len - 1 };
        ASSERT_EQ(bbt_rollup_usage(&ra, &u, out, 40), 40);
        for (int i = 0; i < 40; i++) {
                ASSERT_EQ(out[i].day, D + i);
                ASSERT_EQ(out[i].active_ms, BBT_MS_PER_DAY);
                ASSERT_EQ(out[i].interactive_ms, i == 20 ? BBT_MS_PER_DAY - 1 : BBT_MS_PER_DAY);
                total += out[i].interactive_ms;
        }
        ASSERT_EQ(total, len - 1);
}

TEST(day_rollup_add)
{
        struct bbt_day_rollup a = { .day = D, .on_ms = 5, .active_ms = 3, .interactive_ms = 1, .hb_count = 2 };
        struct bbt_day_rollup b = { .day = D, .on_ms = 7, .active_ms = 6, .interactive_ms = 4, .hb_count = 9 };

        a.period_active_ms[0] = 1;
        b.period_active_ms[0] = 2;
        b.period_active_ms[BBT_PERIODS_MAX - 1] = 11;
        bbt_day_rollup_add(&a, &b);
        ASSERT_EQ(a.day, D);
        ASSERT_EQ(a.on_ms, 12);
        ASSERT_EQ(a.active_ms, 9);
        ASSERT_EQ(a.interactive_ms, 5);
        ASSERT_EQ(a.hb_count, 11);
        ASSERT_EQ(a.period_active_ms[0], 3);
        ASSERT_EQ(a.period_active_ms[BBT_PERIODS_MAX - 1], 11);
}

TEST(day_set)
{
        struct bbt_day_set set = { 0 };
        struct bbt_day_rollup a = { .day = D, .hb_count = 1 }, b = { .day = D + 1, .hb_count = 2 };
        struct bbt_usage_span u = { at(D, 23, 30), at(D + 1, 0, 20), BBT_USAGE_ACTIVE, 0 };

        ASSERT_OK(bbt_day_set_add(&set, &a));
        ASSERT_OK(bbt_day_set_add(&set, &b));
        ASSERT_OK(bbt_day_set_add(&set, &a));
        /* One row a day, in the order first seen. */
        ASSERT_EQ(set.n, 2);
        ASSERT_EQ(set.v[0].day, D);
        ASSERT_EQ(set.v[0].hb_count, 2);
        ASSERT_EQ(set.v[1].day, D + 1);
        ASSERT_EQ(set.v[1].hb_count, 2);
        /* An interval across midnight adds to both days, and a day before them comes last. */
        ASSERT_OK(bbt_day_set_add_usage(&set, &rules, &u));
        ASSERT_EQ(set.n, 2);
        ASSERT_EQ(set.v[0].on_all_ms, 30 * MIN);
        ASSERT_EQ(set.v[1].on_all_ms, 20 * MIN);
        a.day = D - 1;
        ASSERT_OK(bbt_day_set_add(&set, &a));
        ASSERT_EQ(set.n, 3);
        ASSERT_EQ(set.v[2].day, D - 1);
        bbt_day_set_free(&set);
        ASSERT_EQ(set.n, 0);
        ASSERT(set.v == NULL);
        bbt_day_set_free(NULL);
}

/* ---- the rebuild, over a real SQLite store ---- */

static char store_dir[64];

static void remove_store_dir(void)
{
        char path[128];

        snprintf(path, sizeof(path), "%s/agg.db", store_dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/agg.db-wal", store_dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/agg.db-shm", store_dir);
        unlink(path);
        rmdir(store_dir);
}

static struct bbt_store *open_store(void)
{
        struct bbt_store *s = NULL;
        char path[128], err[256] = "";

        snprintf(store_dir, sizeof(store_dir), "/tmp/bbt-rollup-XXXXXX");
        ASSERT(mkdtemp(store_dir) != NULL);
        atexit(remove_store_dir);
        snprintf(path, sizeof(path), "%s/agg.db", store_dir);
        if (bbt_store_open(path, false, &s, err, sizeof(err)) < 0)
                FAIL("open: %s", err);
        return s;
}

static int64_t add_terminal(struct bbt_store *s, const char *school, const char *terminal)
{
        struct bbt_store_terminal t = { .first_seq = -1, .high_seq = -1, .boot = -1, .inventory_seq = -1 };

        snprintf(t.county, sizeof(t.county), "510107");
        snprintf(t.school, sizeof(t.school), "%s", school);
        snprintf(t.terminal, sizeof(t.terminal), "%s", terminal);
        ASSERT_OK(bbt_store_terminal_insert(s, &t));
        ASSERT_GT(t.id, 0);
        return t.id;
}

struct days_read {
        int64_t terminal_id[8];
        struct bbt_day_rollup d[8];
        int n;
};

static int read_day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        struct days_read *r = u;

        ASSERT_LT(r->n, 8);
        r->terminal_id[r->n] = terminal_id;
        r->d[r->n++] = *d;
        return 0;
}

static void assert_day_eq(const struct bbt_day_rollup *got, const struct bbt_day_rollup *want)
{
        ASSERT_EQ(got->day, want->day);
        ASSERT_EQ(got->on_ms, want->on_ms);
        ASSERT_EQ(got->active_ms, want->active_ms);
        ASSERT_EQ(got->interactive_ms, want->interactive_ms);
        ASSERT_EQ(got->hb_count, want->hb_count);
        ASSERT_EQ(got->on_all_ms, want->on_all_ms);
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                ASSERT_EQ(got->period_active_ms[k], want->period_active_ms[k]);
}

/* Every terminal's intervals cut again with its own school's bells; the
 * heartbeat counts stay, the old usage columns go; the rules recorded. */
TEST(rebuild_from_the_store)
{
        struct bbt_store *s = open_store();
        struct bbt_calendar *cal = NULL;
        struct bbt_rollup_config c = { .margin_min = 30, .offset_min = 480 };
        /* S2 has its own bells: one long morning period. */
        struct bbt_bells s2_bells = { .n = 1, .p = { { 8 * 60, 12 * 60 } } };
        struct bbt_rollup_rules r1, r2;
        struct bbt_store_usage u[3] = {
                { .seq = 2, .span = { at(D, 8, 20), at(D, 9, 0), BBT_USAGE_ACTIVE, 10 * MIN } },
                { .seq = 3, .span = { at(D, 10, 0), at(D, 10, 30), BBT_USAGE_IDLE, 0 } },
                { .seq = 7, .span = { at(D, 23, 40), at(D + 1, 0, 10), BBT_USAGE_ACTIVE, 6 * MIN } },
        };
        struct bbt_day_rollup old = { .day = D, .on_ms = 999, .active_ms = 999, .hb_count = 5 };
        struct bbt_day_rollup want[4], rows[2];
        struct days_read got = { .n = 0 };
        int64_t t1, t2, t3;

        ASSERT_OK(bbt_calendar_new(&cal));
        ASSERT_OK(bbt_calendar_set_bells(cal, "S2", &s2_bells));
        c.cal = cal;
        ASSERT_EQ(bbt_rollup_config_check(s, &c), -ENOENT);

        ASSERT_OK(bbt_store_begin(s));
        t1 = add_terminal(s, "S1", "T1");
        t2 = add_terminal(s, "S2", "T2");
        t3 = add_terminal(s, "S1", "T3"); /* heartbeats, no intervals */
        u[0].terminal_id = u[1].terminal_id = t1;
        u[2].terminal_id = t2;
        for (int i = 0; i < 3; i++)
                ASSERT_OK(bbt_store_usage_insert(s, &u[i]));
        ASSERT_OK(bbt_store_day_add(s, t1, &old));
        old.hb_count = 3;
        ASSERT_OK(bbt_store_day_add(s, t2, &old));
        old.day = D + 2;
        old.hb_count = 1;
        ASSERT_OK(bbt_store_day_add(s, t3, &old));
        ASSERT_OK(bbt_store_commit(s));

        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_rollup_rebuild(s, &c));
        ASSERT_OK(bbt_store_commit(s));

        /* What each should hold: its intervals cut with its bells, plus its heartbeats. */
        r1 = (struct bbt_rollup_rules){ .bells = bbt_calendar_bells(cal, "510107", "S1"), .margin_min = 30,
                                        .offset_min = 480 };
        r2 = r1;
        r2.bells = bbt_calendar_bells(cal, "510107", "S2");
        ASSERT(r1.bells != r2.bells);
        memset(want, 0, sizeof(want));
        want[0].day = D;
        want[0].hb_count = 5;
        for (int i = 0; i < 2; i++) {
                ASSERT_EQ(bbt_rollup_usage(&r1, &u[i].span, rows, 2), 1);
                bbt_day_rollup_add(&want[0], &rows[0]);
        }
        ASSERT_EQ(bbt_rollup_usage(&r2, &u[2].span, rows, 2), 2);
        want[1] = rows[0];
        want[1].hb_count = 3;
        want[2] = rows[1];
        want[3] = (struct bbt_day_rollup){ .day = D + 2, .hb_count = 1 };

        ASSERT_OK(bbt_store_days_each(s, D - 1, D + 5, read_day_cb, &got));
        ASSERT_EQ(got.n, 4);
        ASSERT_EQ(got.terminal_id[0], t1);
        assert_day_eq(&got.d[0], &want[0]);
        ASSERT_EQ(got.terminal_id[1], t2);
        assert_day_eq(&got.d[1], &want[1]);
        ASSERT_EQ(got.terminal_id[2], t2);
        assert_day_eq(&got.d[2], &want[2]);
        ASSERT_EQ(got.terminal_id[3], t3);
        assert_day_eq(&got.d[3], &want[3]);
        /* By hand: S1 (default bells) 08:20-08:40 in period 1, 08:50-09:00 in
         * period 2; S2's one period holds nothing of the late evening. */
        ASSERT_EQ(got.d[0].period_active_ms[0], 20 * MIN);
        ASSERT_EQ(got.d[0].period_active_ms[1], 10 * MIN);
        ASSERT_EQ(got.d[0].active_ms, 40 * MIN);
        ASSERT_EQ(got.d[1].active_ms, 0);
        ASSERT_EQ(got.d[1].on_all_ms, 20 * MIN);

        /* The rules are recorded: the same config is current, another is not. */
        ASSERT_EQ(bbt_rollup_config_check(s, &c), 0);
        c.margin_min = 20;
        ASSERT_EQ(bbt_rollup_config_check(s, &c), 1);
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_rollup_config_record(s, &c));
        ASSERT_OK(bbt_store_commit(s));
        ASSERT_EQ(bbt_rollup_config_check(s, &c), 0);
        c.cal = NULL;
        ASSERT_EQ(bbt_rollup_config_check(s, &c), 1);
        bbt_store_close(s);
        bbt_calendar_free(cal);
}

TEST(config_hash)
{
        struct bbt_calendar *cal = NULL;
        struct bbt_bells b = { .n = 1, .p = { { 8 * 60, 9 * 60 } } };
        struct bbt_rollup_config a = { .margin_min = 30, .offset_min = 480 }, x;
        int64_t h = bbt_rollup_config_hash(&a);

        ASSERT_GE(h, 0);
        x = a;
        ASSERT_EQ(bbt_rollup_config_hash(&x), h);
        x.margin_min = 31;
        ASSERT_NE(bbt_rollup_config_hash(&x), h);
        x = a;
        x.offset_min = 420;
        ASSERT_NE(bbt_rollup_config_hash(&x), h);
        ASSERT_OK(bbt_calendar_new(&cal));
        x = a;
        x.cal = cal;
        ASSERT_OK(bbt_calendar_set_bells(cal, "510107", &b));
        ASSERT_NE(bbt_rollup_config_hash(&x), h);
        ASSERT_GE(bbt_rollup_config_hash(&x), 0);
        bbt_calendar_free(cal);
}
