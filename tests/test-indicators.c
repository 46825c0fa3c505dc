/* Rates over terminal-days: school days, holidays and 调休, thresholds, 在线率's cap, unreported terminals, merge, the idle list. */
/* bbt-test: label=unit timeout=10 */
#include "dates.h"
#include "aggregator_config.h"
#include "indicators.h"
#include "test.h"

#undef MIN /* sys/param.h, through aggregator_config.h */
#define MIN 60000LL /* ms */
#define EPS 1e-12

/* Monday 2026-09-07 is day 20703 (2026-09-01, a Tuesday, is 20697). */
#define MON 20703

static struct bbt_metric_settings settings(void)
{
        struct bbt_metric_settings s;

        bbt_metric_settings_default(&s);
        return s;
}

static struct bbt_day_rollup row(int32_t day, int64_t on, int64_t active, int64_t interactive, int64_t hb)
{
        struct bbt_day_rollup r = { .day = day, .on_ms = on, .active_ms = active, .interactive_ms = interactive,
                                    .hb_count = hb, .on_all_ms = on };

        return r;
}

/* The week Mon 09-07 .. Sun 09-13: Wednesday a holiday (school_day 0),
 * Saturday none, Sunday a 调休 make-up day (1): 5 school days. */
static const uint8_t week[7] = { 1, 1, 0, 1, 1, 0, 1 };

/* Terminal A over that week, rows in no particular order, Sunday in two rows.
 *   Mon  on 10 800 000  active 7 200 000  inter 1 800 000  hb 170
 *        p0 2 400 000 (used), p1 600 000 (exactly 10 min: used),
 *        p2 599 999 (not), p6 2 400 000 (beyond its 6 periods: ignored)
 *   Tue  on 600 000     active 0          powered, not used   hb 12
 *   Wed  holiday: on 7 200 000 active 7 200 000 p0 2 400 000: ignored
 *   Thu  on 600 000     active 600 000 (exactly 10 min: used)  inter 300 000
 *        p4 600 000 (used)  hb 10
 *   Fri  on 599 999     active 599 999 (not used)  p5 599 999 (not)  hb 10
 *   Sat  not a school day: on/active 3 600 000: ignored
 *   Sun  row 1: on 1 800 000 active 1 500 000 p0 1 500 000 hb 30
 *        row 2: on 1 800 000 active 1 500 000 p0 900 000 p1 600 000 hb 30
 *        summed: on 3 600 000 active 3 000 000 p0 2 400 000 p1 600 000 hb 60
 *   Sun+1 (outside the range): ignored */
static size_t terminal_a(struct bbt_day_rollup *r)
{
        size_t n = 0;

        r[n] = row(MON + 6, 1800000, 1500000, 0, 30);
        r[n].period_active_ms[0] = 1500000;
        n++;
        r[n] = row(MON + 3, 600000, 600000, 300000, 10);
        r[n].period_active_ms[4] = 600000;
        n++;
        r[n] = row(MON, 10800000, 7200000, 1800000, 170);
        r[n].period_active_ms[0] = 2400000;
        r[n].period_active_ms[1] = 600000;
        r[n].period_active_ms[2] = 599999;
        r[n].period_active_ms[6] = 2400000;
        n++;
        r[n] = row(MON + 2, 7200000, 7200000, 0, 120);
        r[n].period_active_ms[0] = 2400000;
        n++;
        r[n] = row(MON + 7, 3600000, 3600000, 0, 60);
        n++;
        r[n] = row(MON + 1, 600000, 0, 0, 12);
        n++;
        r[n] = row(MON + 5, 3600000, 3600000, 0, 60);
        n++;
        r[n] = row(MON + 4, 599999, 599999, 0, 10);
        r[n].period_active_ms[5] = 599999;
        n++;
        r[n] = row(MON + 6, 1800000, 1500000, 0, 30);
        r[n].period_active_ms[0] = 900000;
        r[n].period_active_ms[1] = 600000;
        n++;
        return n;
}

TEST(settings_default)
{
        struct bbt_metric_settings s = settings();

        ASSERT_EQ(s.used_day_min, 10);
        ASSERT_EQ(s.used_period_min, 10);
        ASSERT_EQ(s.margin_min, 30);
        ASSERT_EQ(s.heartbeat_s, 60);
        ASSERT_EQ(s.idle_window, 10);
        ASSERT_EQ(s.idle_max_days, 0);
        ASSERT_EQ(s.silent_days, 3);
        ASSERT_EQ(s.min_pupils, 50);
        ASSERT_EQ(s.offset_min, 480);
        ASSERT_EQ(s.clock_skew_limit_ms, 300000);
        ASSERT_EQ(s.weekly_lessons_min, 10);
}

TEST(day_thresholds)
{
        struct bbt_metric_settings s = settings();
        struct bbt_day_rollup d = row(MON, 0, 600000, 0, 0);

        /* 10 min = 600 000 ms is used; 9 min 59.999 s is not. */
        ASSERT(bbt_day_used(&s, &d));
        d.active_ms = 599999;
        ASSERT(!bbt_day_used(&s, &d));
        s.used_day_min = 5;
        d.active_ms = 300000;
        ASSERT(bbt_day_used(&s, &d));
        d.active_ms = 299999;
        ASSERT(!bbt_day_used(&s, &d));

        ASSERT(!bbt_day_powered(&d));
        d.on_ms = 1;
        ASSERT(bbt_day_powered(&d));
}

TEST(period_thresholds)
{
        struct bbt_metric_settings s = settings();
        struct bbt_day_rollup d = row(MON, 1800000, 1800000, 0, 0);
        uint8_t one = 1;
        struct bbt_terminal_days t = { &d, 1, &one, 6, true };
        struct bbt_rates_acc acc = { 0 };
        struct bbt_rates r;

        d.period_active_ms[0] = 600000;
        d.period_active_ms[1] = 599999;
        d.period_active_ms[BBT_PERIODS_MAX - 1] = 600000;
        ASSERT(bbt_period_used(&s, &d, 0));
        ASSERT(!bbt_period_used(&s, &d, 1));
        ASSERT(!bbt_period_used(&s, &d, 2));
        ASSERT(bbt_period_used(&s, &d, BBT_PERIODS_MAX - 1));
        ASSERT(!bbt_period_used(&s, &d, -1));
        ASSERT(!bbt_period_used(&s, &d, BBT_PERIODS_MAX));

        /* 6 periods scheduled; only p0 used (p11 is past the schedule): 1/6. */
        bbt_rates_add(&acc, &s, MON, MON, &t);
        ASSERT_EQ(acc.periods_used, 1);
        ASSERT_EQ(acc.periods_scheduled, 6);
        bbt_rates_compute(&acc, &r);
        ASSERT(r.has_periods);
        ASSERT_DBL_NEAR(r.period_usage_rate, 1.0 / 6.0, EPS);
        /* 1 period used on 1 school day: weekly lessons 1 / (1/5) = 5. */
        ASSERT_DBL_NEAR(r.weekly_lessons, 5.0, EPS);
}

TEST(school_week_with_holiday_and_makeup_day)
{
        struct bbt_metric_settings s = settings();
        struct bbt_day_rollup rows[16];
        struct bbt_terminal_days a = { rows, terminal_a(rows), week, 6, true };
        struct bbt_rates_acc acc = { 0 };
        struct bbt_rates r;

        bbt_rates_add(&acc, &s, MON, MON + 6, &a);
        ASSERT_EQ(acc.terminals, 1);
        ASSERT_EQ(acc.terminal_days, 5);        /* Mon Tue Thu Fri Sun */
        ASSERT_EQ(acc.periods_scheduled, 30);   /* 5 × 6 */
        ASSERT_EQ(acc.powered_days, 5);
        ASSERT_EQ(acc.used_days, 3);            /* Mon, Thu (exactly 10 min), Sun */
        /* 10 800 000 + 600 000 + 600 000 + 599 999 + 3 600 000 */
        ASSERT_EQ(acc.on_ms, 16199999);
        /* 7 200 000 + 0 + 600 000 + 599 999 + 3 000 000 */
        ASSERT_EQ(acc.active_ms, 11399999);
        ASSERT_EQ(acc.interactive_ms, 2100000); /* 1 800 000 + 300 000 */
        ASSERT_EQ(acc.periods_used, 5);         /* Mon p0 p1, Thu p4, Sun p0 p1 (summed rows) */
        /* Caps ceil(expected): Mon 180 (170 came), Tue 10 (12 came → 10),
         * Thu 10, Fri ceil(9.99998) = 10, Sun 60: 170 + 10 + 10 + 10 + 60. */
        ASSERT_EQ(acc.hb_received, 260);
        ASSERT_DBL_NEAR(acc.hb_expected, 16199999.0 / 60000.0, 1e-9); /* 269.99998333 */
        ASSERT_EQ(acc.intact, 1);

        bbt_rates_compute(&acc, &r);
        ASSERT(r.has_days && r.has_periods && r.has_active && r.has_online && r.has_terminals);
        ASSERT_DBL_NEAR(r.power_on_rate, 1.0, EPS);              /* 5 / 5 */
        ASSERT_DBL_NEAR(r.usage_rate, 0.6, EPS);                 /* 3 / 5 */
        ASSERT_DBL_NEAR(r.avg_daily_hours, 0.6333332777777778, EPS); /* 11 399 999 / 3 600 000 / 5 */
        ASSERT_DBL_NEAR(r.period_usage_rate, 5.0 / 30.0, EPS);
        ASSERT_DBL_NEAR(r.interactive_share, 0.184210542474609, EPS); /* 2 100 000 / 11 399 999 */
        ASSERT_DBL_NEAR(r.online_rate, 0.9629630224051249, EPS); /* 260 / 269.99998333 */
        ASSERT_DBL_NEAR(r.intact_rate, 1.0, EPS);
        ASSERT_DBL_NEAR(r.weekly_lessons, 5.0, EPS);             /* 5 / (5 / 5) */
}

TEST(unreported_terminal_counts)
{
        struct bbt_metric_settings s = settings();
        struct bbt_day_rollup rows[16];
        struct bbt_terminal_days a = { rows, terminal_a(rows), week, 6, true };
        struct bbt_terminal_days b = { NULL, 0, week, 6, false }; /* never reported */
        struct bbt_rates_acc acc = { 0 };
        struct bbt_rates r;

        bbt_rates_add(&acc, &s, MON, MON + 6, &a);
        bbt_rates_add(&acc, &s, MON, MON + 6, &b);
        ASSERT_EQ(acc.terminals, 2);
        ASSERT_EQ(acc.terminal_days, 10);
        ASSERT_EQ(acc.periods_scheduled, 60);
        ASSERT_EQ(acc.hb_received, 260);
        bbt_rates_compute(&acc, &r);
        /* Every rate with B in its denominator halves. */
        ASSERT_DBL_NEAR(r.power_on_rate, 0.5, EPS);              /* 5 / 10 */
        ASSERT_DBL_NEAR(r.usage_rate, 0.3, EPS);                 /* 3 / 10 */
        ASSERT_DBL_NEAR(r.avg_daily_hours, 0.3166666388888889, EPS); /* 11 399 999 / 3 600 000 / 10 */
        ASSERT_DBL_NEAR(r.period_usage_rate, 5.0 / 60.0, EPS);
        ASSERT_DBL_NEAR(r.weekly_lessons, 2.5, EPS);             /* 5 / (10 / 5) */
        ASSERT_DBL_NEAR(r.intact_rate, 0.5, EPS);                /* 1 / 2 */
        /* Shares of what happened do not move: B had no on-time, no active time. */
        ASSERT_DBL_NEAR(r.interactive_share, 0.184210542474609, EPS);
        ASSERT_DBL_NEAR(r.online_rate, 0.9629630224051249, EPS);
}

TEST(merge)
{
        struct bbt_metric_settings s = settings();
        struct bbt_day_rollup rows[16];
        struct bbt_terminal_days a = { rows, terminal_a(rows), week, 6, true };
        struct bbt_terminal_days b = { NULL, 0, week, 6, false };
        struct bbt_rates_acc both = { 0 }, sa = { 0 }, sb = { 0 }, county = { 0 };
        struct bbt_rates r;

        bbt_rates_add(&both, &s, MON, MON + 6, &a);
        bbt_rates_add(&both, &s, MON, MON + 6, &b);
        bbt_rates_add(&sa, &s, MON, MON + 6, &a);
        bbt_rates_add(&sb, &s, MON, MON + 6, &b);
        bbt_rates_merge(&county, &sa);
        bbt_rates_merge(&county, &sb);
        ASSERT_EQ(county.terminals, 2);
        ASSERT_EQ(county.terminal_days, both.terminal_days);
        ASSERT_EQ(county.powered_days, both.powered_days);
        ASSERT_EQ(county.used_days, both.used_days);
        ASSERT_EQ(county.on_ms, both.on_ms);
        ASSERT_EQ(county.active_ms, both.active_ms);
        ASSERT_EQ(county.interactive_ms, both.interactive_ms);
        ASSERT_EQ(county.periods_used, both.periods_used);
        ASSERT_EQ(county.periods_scheduled, both.periods_scheduled);
        ASSERT_EQ(county.hb_received, both.hb_received);
        ASSERT_DBL_NEAR(county.hb_expected, both.hb_expected, 0);
        ASSERT_EQ(county.intact, 1);
        bbt_rates_compute(&county, &r);
        ASSERT_DBL_NEAR(r.usage_rate, 0.3, EPS);
        ASSERT_DBL_NEAR(r.intact_rate, 0.5, EPS);
}

TEST(online_rate_cap)
{
        struct bbt_metric_settings s = settings();
        uint8_t two[2] = { 1, 1 };
        /* Day 1: on 150 000 → expected 2.5, 5 came, capped at ceil(2.5) = 3.
         * Day 2: on 600 000 → expected 10, 7 came (3 missing). */
        struct bbt_day_rollup rows[2] = { row(MON, 150000, 0, 0, 5), row(MON + 1, 600000, 0, 0, 7) };
        struct bbt_terminal_days t = { rows, 2, two, 6, true };
        struct bbt_rates_acc acc = { 0 };
        struct bbt_rates r;

        bbt_rates_add(&acc, &s, MON, MON + 1, &t);
        ASSERT_EQ(acc.hb_received, 10);           /* 3 + 7 */
        ASSERT_DBL_NEAR(acc.hb_expected, 12.5, EPS);
        bbt_rates_compute(&acc, &r);
        ASSERT_DBL_NEAR(r.online_rate, 0.8, EPS); /* 10 / 12.5 */
        ASSERT(!r.has_active);

        /* Day 1 alone: 3 / 2.5 = 1.2 is reported as 1. */
        acc = (struct bbt_rates_acc){ 0 };
        bbt_rates_add(&acc, &s, MON, MON, &t);
        ASSERT_EQ(acc.hb_received, 3);
        bbt_rates_compute(&acc, &r);
        ASSERT_DBL_NEAR(r.online_rate, 1.0, EPS);

        /* A 30-second heartbeat: day 2 expects 20, so 7 / 20 = 0.35. */
        s.heartbeat_s = 30;
        acc = (struct bbt_rates_acc){ 0 };
        bbt_rates_add(&acc, &s, MON + 1, MON + 1, &(struct bbt_terminal_days){ rows + 1, 1, two, 6, true });
        bbt_rates_compute(&acc, &r);
        ASSERT_DBL_NEAR(acc.hb_expected, 20.0, EPS);
        ASSERT_DBL_NEAR(r.online_rate, 0.35, EPS);
}

TEST(intact_rate)
{
        struct bbt_metric_settings s = settings();
        struct bbt_terminal_days t = { NULL, 0, week, 6, true };
        struct bbt_rates_acc acc = { 0 };
        struct bbt_rates r;

        bbt_rates_add(&acc, &s, MON, MON + 6, &t);
        bbt_rates_add(&acc, &s, MON, MON + 6, &t);
        t.intact = false;
        bbt_rates_add(&acc, &s, MON, MON + 6, &t);
        bbt_rates_compute(&acc, &r);
        ASSERT_EQ(acc.terminals, 3);
        ASSERT_EQ(acc.intact, 2);
        ASSERT(r.has_terminals);
        ASSERT_DBL_NEAR(r.intact_rate, 2.0 / 3.0, EPS);
        /* Nothing reported: 0 (defined, all three terminals count), not undefined. */
        ASSERT(r.has_days);
        ASSERT_DBL_NEAR(r.power_on_rate, 0, 0);
        ASSERT(!r.has_online);
}

TEST(weekly_lessons)
{
        struct bbt_metric_settings s = settings();
        /* Two weeks Mon 09-07 .. Fri 09-18, weekends off, Friday 09-11 a
         * holiday: 9 school days. Every day (holiday included) p0 and p1 used:
         * 9 × 2 = 18 periods used; Σ weeks = 9 / 5; 18 / (9/5) = 10. */
        uint8_t days[12] = { 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1 };
        struct bbt_day_rollup rows[12];
        struct bbt_terminal_days t = { rows, 12, days, 6, true };
        struct bbt_rates_acc acc = { 0 };
        struct bbt_rates r;

        for (int i = 0; i < 12; i++) {
                rows[i] = row(MON + i, 1200000, 1200000, 0, 20);
                rows[i].period_active_ms[0] = rows[i].period_active_ms[1] = 600000;
        }
        bbt_rates_add(&acc, &s, MON, MON + 11, &t);
        ASSERT_EQ(acc.terminal_days, 9);
        ASSERT_EQ(acc.periods_used, 18);
        ASSERT_EQ(acc.periods_scheduled, 54);
        bbt_rates_compute(&acc, &r);
        ASSERT_DBL_NEAR(r.weekly_lessons, 10.0, EPS);
        ASSERT_DBL_NEAR(r.usage_rate, 1.0, EPS);
        ASSERT_DBL_NEAR(r.avg_daily_hours, 1.0 / 3.0, EPS); /* 20 min a day */
        /* The weekly rule (10 per 5 school days): week 1 has 4 school days and
         * 8 lessons, needing ceil(10 × 4 / 5) = 8: met; week 2 has 5 and 10: met. */
        ASSERT_EQ(acc.weeks_judged, 2);
        ASSERT_EQ(acc.weeks_met, 2);
        ASSERT(r.has_weeks);
        ASSERT_DBL_NEAR(r.weekly_rule_rate, 1.0, EPS);
}

TEST(weekly_rule_threshold)
{
        struct bbt_metric_settings s = settings();

        ASSERT_EQ(s.weekly_lessons_min, 10);
        /* Met when 5 × lessons >= min × school days: the minimum per five
         * school days, scaled to the week's. */
        ASSERT(bbt_weekly_rule_met(&s, 10, 5));
        ASSERT(!bbt_weekly_rule_met(&s, 9, 5));
        ASSERT(bbt_weekly_rule_met(&s, 6, 3));  /* 30 >= 30 */
        ASSERT(!bbt_weekly_rule_met(&s, 5, 3)); /* 25 < 30 */
        ASSERT(bbt_weekly_rule_met(&s, 12, 6)); /* a 调休 week of six school days needs 12 */
        ASSERT(!bbt_weekly_rule_met(&s, 11, 6));
        ASSERT(!bbt_weekly_rule_met(&s, 99, 0)); /* no school day: not judged */
        ASSERT_EQ(bbt_weekly_rule_required(&s, 5), 10);
        ASSERT_EQ(bbt_weekly_rule_required(&s, 4), 8);
        ASSERT_EQ(bbt_weekly_rule_required(&s, 1), 2);
        ASSERT_EQ(bbt_weekly_rule_required(&s, 6), 12);
        ASSERT_EQ(bbt_weekly_rule_required(&s, 0), 0);
        /* With 7: three school days need ceil(21 / 5) = 5 (25 >= 21), and 4 is short (20 < 21). */
        s.weekly_lessons_min = 7;
        ASSERT_EQ(bbt_weekly_rule_required(&s, 3), 5);
        ASSERT(bbt_weekly_rule_met(&s, 5, 3));
        ASSERT(!bbt_weekly_rule_met(&s, 4, 3));
        /* 0: every week with a school day meets it. */
        s.weekly_lessons_min = 0;
        ASSERT(bbt_weekly_rule_met(&s, 0, 5));
        /* Weeks run Monday to Sunday. */
        ASSERT_EQ(bbt_week_monday(MON), MON);
        ASSERT_EQ(bbt_week_monday(MON + 6), MON);
        ASSERT_EQ(bbt_week_monday(MON + 7), MON + 7);
        ASSERT_EQ(bbt_week_monday(MON - 1), MON - 7);
}

/*
 * The weekly rule over a range that starts and ends mid-week, with a holiday:
 * Wed 09-09 .. Tue 09-22 (14 days), weekdays are school days except Thu 09-17.
 *   week of 09-07: Wed, Thu, Fri in range = 3 school days, needs ceil(30/5) = 6
 *   week of 09-14: Mon, Tue, Wed, Fri (Thu a holiday) = 4, needs 8
 *   week of 09-21: Mon, Tue in range = 2, needs 4
 * Terminal P: 2 lessons on each school day: 6, 8, 4: all three met.
 * Terminal Q: 1 lesson a day, plus 4 on the holiday (not counted): 3, 4, 2: none met.
 * Terminal R: 2 a day in the first week, 1 after: 6 (met), 4, 2: one met.
 * Terminal S: never reported: 3 weeks judged, none met.
 * School X = P + Q: 3 / 6 = 0.5; school Y = R + S: 1 / 6; county 4 / 12 = 1/3.
 * A weekend-only range judges nothing: undefined, not 0.
 */
TEST(weekly_rule_rate)
{
        struct bbt_metric_settings s = settings();
        int32_t from = MON + 2, to = MON + 15;
        uint8_t days[14];
        struct bbt_day_rollup p[14], q[14], rr[14];
        struct bbt_rates_acc acc_p = { 0 }, acc_q = { 0 }, acc_r = { 0 }, acc_s = { 0 };
        struct bbt_rates_acc x = { 0 }, y = { 0 }, county = { 0 }, none = { 0 };
        struct bbt_rates r;

        for (int i = 0; i < 14; i++) {
                int32_t day = from + i;

                days[i] = bbt_day_weekday(day) <= 5 && day != MON + 10;
                p[i] = row(day, 2400000, 2400000, 0, 40);
                p[i].period_active_ms[0] = p[i].period_active_ms[1] = 1200000;
                q[i] = row(day, 1200000, 1200000, 0, 20);
                q[i].period_active_ms[2] = 1200000;
                if (day == MON + 10)
                        q[i].period_active_ms[0] = q[i].period_active_ms[1] = q[i].period_active_ms[3] =
                                q[i].period_active_ms[4] = 600000;
                rr[i] = day < MON + 7 ? p[i] : q[i];
        }
        ASSERT_EQ(bbt_day_weekday(MON + 10), 4);
        {
                struct bbt_terminal_days tp = { p, 14, days, 6, true }, tq = { q, 14, days, 6, true };
                struct bbt_terminal_days tr = { rr, 14, days, 6, true }, ts = { NULL, 0, days, 6, true };

                bbt_rates_add(&acc_p, &s, from, to, &tp);
                bbt_rates_add(&acc_q, &s, from, to, &tq);
                bbt_rates_add(&acc_r, &s, from, to, &tr);
                bbt_rates_add(&acc_s, &s, from, to, &ts);
        }
        ASSERT_EQ(acc_p.terminal_days, 9);
        ASSERT_EQ(acc_p.weeks_judged, 3);
        ASSERT_EQ(acc_p.weeks_met, 3);
        ASSERT_EQ(acc_q.periods_used, 9);
        ASSERT_EQ(acc_q.weeks_judged, 3);
        ASSERT_EQ(acc_q.weeks_met, 0);
        ASSERT_EQ(acc_r.weeks_judged, 3);
        ASSERT_EQ(acc_r.weeks_met, 1);
        ASSERT_EQ(acc_s.weeks_judged, 3);
        ASSERT_EQ(acc_s.weeks_met, 0);
        bbt_rates_merge(&x, &acc_p);
        bbt_rates_merge(&x, &acc_q);
        bbt_rates_merge(&y, &acc_r);
        bbt_rates_merge(&y, &acc_s);
        bbt_rates_merge(&county, &x);
        bbt_rates_merge(&county, &y);
        bbt_rates_compute(&x, &r);
        ASSERT_DBL_NEAR(r.weekly_rule_rate, 0.5, EPS);
        bbt_rates_compute(&y, &r);
        ASSERT_DBL_NEAR(r.weekly_rule_rate, 1.0 / 6.0, EPS);
        bbt_rates_compute(&county, &r);
        ASSERT(r.has_weeks);
        ASSERT_DBL_NEAR(r.weekly_rule_rate, 4.0 / 12.0, EPS);

        /* Minimum 4: Q's weeks need ceil(4 × 3/5) = 3, ceil(16/5) = 4, ceil(8/5) = 2: all met. */
        s.weekly_lessons_min = 4;
        acc_q = (struct bbt_rates_acc){ 0 };
        {
                struct bbt_terminal_days tq = { q, 14, days, 6, true };

                bbt_rates_add(&acc_q, &s, from, to, &tq);
        }
        ASSERT_EQ(acc_q.weeks_met, 3);

        /* Sat 09-12 .. Sun 09-13: no school day, nothing judged. */
        {
                struct bbt_terminal_days tp = { p + 3, 2, days + 3, 6, true };

                bbt_rates_add(&none, &s, MON + 5, MON + 6, &tp);
        }
        ASSERT_EQ(none.weeks_judged, 0);
        bbt_rates_compute(&none, &r);
        ASSERT(!r.has_weeks);
        ASSERT_DBL_NEAR(r.weekly_rule_rate, 0, 0);
}

TEST(long_range_any_order)
{
        /* 100 days (over three blocks of 32), every day a school day, rows
         * newest first: used on every third day (d % 3 == 0: 34 days). */
        struct bbt_metric_settings s = settings();
        uint8_t days[100];
        struct bbt_day_rollup rows[100];
        struct bbt_terminal_days t = { rows, 100, days, 6, true };
        struct bbt_rates_acc acc = { 0 };

        for (int i = 0; i < 100; i++) {
                days[i] = 1;
                rows[i] = row(MON + 99 - i, 60000, (99 - i) % 3 == 0 ? 600000 : 0, 0, 1);
        }
        bbt_rates_add(&acc, &s, MON, MON + 99, &t);
        ASSERT_EQ(acc.terminal_days, 100);
        ASSERT_EQ(acc.powered_days, 100);
        ASSERT_EQ(acc.used_days, 34);
        ASSERT_EQ(acc.active_ms, 34 * 600000);
        ASSERT_EQ(acc.hb_received, 100);
}

TEST(undefined_rates)
{
        struct bbt_metric_settings s = settings();
        uint8_t none[7] = { 0 };
        struct bbt_day_rollup busy = row(MON, 3600000, 3600000, 600000, 60);
        struct bbt_terminal_days t = { &busy, 1, none, 6, true };
        struct bbt_rates_acc acc = { 0 };
        struct bbt_rates r;

        /* Nothing at all. */
        bbt_rates_compute(&acc, &r);
        ASSERT(!r.has_days && !r.has_periods && !r.has_active && !r.has_online && !r.has_terminals);
        ASSERT_DBL_NEAR(r.usage_rate, 0, 0);

        /* A terminal with no school day in the range: its rows do not count. */
        bbt_rates_add(&acc, &s, MON, MON + 6, &t);
        bbt_rates_compute(&acc, &r);
        ASSERT_EQ(acc.terminal_days, 0);
        ASSERT_EQ(acc.active_ms, 0);
        ASSERT(!r.has_days && !r.has_periods && !r.has_active && !r.has_online);
        ASSERT(r.has_terminals);
        ASSERT_DBL_NEAR(r.intact_rate, 1.0, EPS);

        /* School days with standby only: 互动使用占比 has no active time. */
        struct bbt_day_rollup standby = row(MON, 1200000, 0, 0, 20);
        struct bbt_terminal_days u = { &standby, 1, week, 6, true };
        acc = (struct bbt_rates_acc){ 0 };
        bbt_rates_add(&acc, &s, MON, MON + 6, &u);
        bbt_rates_compute(&acc, &r);
        ASSERT(r.has_days && r.has_periods && r.has_online);
        ASSERT(!r.has_active);
        ASSERT_DBL_NEAR(r.power_on_rate, 0.2, EPS); /* 1 / 5 */
        ASSERT_DBL_NEAR(r.online_rate, 1.0, EPS);   /* 20 / 20 */

        /* No bells: days count, no period is scheduled. */
        u.n_periods = 0;
        acc = (struct bbt_rates_acc){ 0 };
        bbt_rates_add(&acc, &s, MON, MON + 6, &u);
        bbt_rates_compute(&acc, &r);
        ASSERT(r.has_days && !r.has_periods);

        /* An empty range (TO before FROM): the terminal only. */
        acc = (struct bbt_rates_acc){ 0 };
        bbt_rates_add(&acc, &s, MON, MON - 1, &u);
        ASSERT_EQ(acc.terminals, 1);
        ASSERT_EQ(acc.terminal_days, 0);
}

/* Ten school days: Mon 09-07 .. Fri 09-18 with the weekend between. */
static const uint8_t ten[12] = { 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1 };
#define TO (MON + 11)

TEST(idle_never_reported_and_offline)
{
        struct bbt_metric_settings s = settings();
        struct bbt_terminal_days t = { NULL, 0, ten, 6, true };
        int used = -1;

        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, 0, &used), BBT_IDLE_NEVER_REPORTED);
        ASSERT_EQ(used, 0);
        /* Last seen 09-06 23:59:59.999 local (15:59:59.999 UTC): before the window. */
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, bbt_day_start_ms(MON, 480) - 1, &used), BBT_IDLE_OFFLINE);
        /* Last seen 09-07 00:00 local, which is still 09-06 in UTC: in the
         * window, but never on in school hours. */
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, bbt_day_start_ms(MON, 480), &used), BBT_IDLE_NOT_POWERED);
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, bbt_day_start_ms(MON, 480), NULL), BBT_IDLE_NOT_POWERED);
}

TEST(idle_not_powered_and_not_used)
{
        struct bbt_metric_settings s = settings();
        int64_t seen = bbt_day_start_ms(TO, 480) + 9 * 3600000LL;
        struct bbt_day_rollup rows[6];
        struct bbt_terminal_days t = { rows, 0, ten, 6, true };
        int used = -1;

        /* Used all Saturday (not a school day): still never powered on a school day. */
        rows[t.n_days++] = row(MON + 5, 3 * 3600000LL, 3 * 3600000LL, 0, 180);
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, seen, &used), BBT_IDLE_NOT_POWERED);
        ASSERT_EQ(used, 0);

        /* Mon standby 20 min, Tue active 9 min 59.999 s: powered, used 0 days. */
        rows[t.n_days++] = row(MON, 1200000, 0, 0, 20);
        rows[t.n_days++] = row(MON + 1, 599999, 599999, 0, 10);
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, seen, &used), BBT_IDLE_NOT_USED);
        ASSERT_EQ(used, 0);

        /* Thu: two rows of 5 minutes, summed: 10 minutes, used 1 day: not idle. */
        rows[t.n_days++] = row(MON + 3, 300000, 300000, 0, 5);
        rows[t.n_days++] = row(MON + 3, 300000, 300000, 0, 5);
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, seen, &used), BBT_IDLE_NO);
        ASSERT_EQ(used, 1);

        /* idle_max_days 1: used on at most 1 day is idle. */
        s.idle_max_days = 1;
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, seen, &used), BBT_IDLE_NOT_USED);
        ASSERT_EQ(used, 1);
        rows[t.n_days++] = row(TO, 1200000, 1200000, 0, 20);
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, seen, &used), BBT_IDLE_NO);
        ASSERT_EQ(used, 2);
}

TEST(idle_without_school_days)
{
        struct bbt_metric_settings s = settings();
        uint8_t none[12] = { 0 };
        struct bbt_terminal_days t = { NULL, 0, none, 6, true };

        /* A window of holidays judges nobody idle, except what never reported. */
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, bbt_day_start_ms(MON, 480) - 1, NULL), BBT_IDLE_NO);
        ASSERT_EQ(bbt_idle_judge(&s, MON, TO, &t, 0, NULL), BBT_IDLE_NEVER_REPORTED);
}

TEST(idle_reason_names)
{
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_NO, true), "否");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_NEVER_REPORTED, true), "从未上报");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_OFFLINE, true), "离线");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_NOT_POWERED, true), "未开机");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_NOT_USED, true), "开机未使用");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_NO, false), "no");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_NEVER_REPORTED, false), "never reported");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_OFFLINE, false), "offline");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_NOT_POWERED, false), "never powered on");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE_NOT_USED, false), "powered but not used");
        ASSERT_STR_EQ(bbt_idle_reason_name(BBT_IDLE__COUNT, false), "?");
}
