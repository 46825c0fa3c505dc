/* The indicators: per-terminal-day judgements, rates over terminals and days, the idle list (docs/metrics.md). */
#include "indicators.h"

#include <string.h>

#include "balance.h"
#include "dates.h"

/* Days summed at a time on the stack: rows may come in any order and more
 * than once per day, so each block of days is gathered in one pass. */
#define DAYS_BLOCK 32

bool bbt_day_powered(const struct bbt_day_rollup *d)
{
        return d->on_ms > 0;
}

bool bbt_day_used(const struct bbt_metric_settings *s, const struct bbt_day_rollup *d)
{
        return d->active_ms >= (int64_t)s->used_day_min * BBT_MS_PER_MIN;
}

bool bbt_period_used(const struct bbt_metric_settings *s, const struct bbt_day_rollup *d, int k)
{
        if (k < 0 || k >= BBT_PERIODS_MAX)
                return false;
        return d->period_active_ms[k] >= (int64_t)s->used_period_min * BBT_MS_PER_MIN;
}

static bool is_school_day(const struct bbt_terminal_days *t, int32_t from, int64_t day)
{
        return t->school_day && t->school_day[day - from] != 0;
}

/* Sums T's rows for the days LO..HI (HI - LO < DAYS_BLOCK, within the range
 * starting at FROM) into SUM[day - LO]; rows on other days or on days that are
 * not school days are left out. */
static void gather(const struct bbt_terminal_days *t, int32_t from, int64_t lo, int64_t hi,
                   struct bbt_day_rollup *sum)
{
        memset(sum, 0, sizeof(*sum) * (size_t)(hi - lo + 1));
        for (int64_t d = lo; d <= hi; d++)
                sum[d - lo].day = (int32_t)d;
        for (size_t i = 0; i < t->n_days; i++) {
                int64_t d = t->days[i].day;

                if (d < lo || d > hi || !is_school_day(t, from, d))
                        continue;
                bbt_day_rollup_add(&sum[d - lo], &t->days[i]);
        }
}

static int clamp_periods(int n)
{
        if (n < 0)
                return 0;
        return n < BBT_PERIODS_MAX ? n : BBT_PERIODS_MAX;
}

void bbt_day_rule_of(const struct bbt_metric_settings *s, struct bbt_day_rule *ret)
{
        ret->used_day_ms = (int64_t)s->used_day_min * BBT_MS_PER_MIN;
        ret->used_period_ms = (int64_t)s->used_period_min * BBT_MS_PER_MIN;
        ret->heartbeat_ms = (int64_t)s->heartbeat_s * 1000;
}

static void hb_expected(struct bbt_rates_acc *acc)
{
        acc->hb_expected = acc->hb_interval_ms > 0 ? (double)acc->hb_on_ms / (double)acc->hb_interval_ms : 0;
}

void bbt_rates_add_totals(struct bbt_rates_acc *acc, const struct bbt_metric_settings *s, int64_t terminal_days,
                          int n_periods, const struct bbt_day_totals *t)
{
        int64_t hb_ms = (int64_t)s->heartbeat_s * 1000;

        acc->terminal_days += terminal_days;
        acc->periods_scheduled += terminal_days * clamp_periods(n_periods);
        acc->powered_days += t->powered;
        acc->used_days += t->used;
        acc->periods_used += t->periods_used;
        acc->on_ms += t->on_ms;
        acc->active_ms += t->active_ms;
        acc->interactive_ms += t->interactive_ms;
        if (hb_ms > 0 && terminal_days > 0) {
                /* Heartbeats and on-time over the whole day (the agent beats
                 * whenever it runs, school hours or not); the cap is in T. */
                acc->hb_received += t->hb_received;
                acc->hb_on_ms += t->on_all_ms;
                acc->hb_interval_ms = hb_ms;
                hb_expected(acc);
        }
}

int32_t bbt_week_monday(int32_t day)
{
        return day - (bbt_day_weekday(day) - 1);
}

bool bbt_weekly_rule_met(const struct bbt_metric_settings *s, int64_t lessons, int school_days)
{
        return school_days > 0 && 5 * lessons >= (int64_t)s->weekly_lessons_min * school_days;
}

int64_t bbt_weekly_rule_required(const struct bbt_metric_settings *s, int school_days)
{
        int64_t need = (int64_t)s->weekly_lessons_min * (school_days > 0 ? school_days : 0);

        return (need + 4) / 5;
}

/* One terminal's week while its days are added: judged when the next week starts or the range ends. */
struct week_tally {
        int32_t monday;
        int school_days;
        int64_t lessons;
};

static void week_close(struct bbt_rates_acc *acc, const struct bbt_metric_settings *s, struct week_tally *w)
{
        if (w->school_days > 0) {
                acc->weeks_judged++;
                acc->weeks_met += bbt_weekly_rule_met(s, w->lessons, w->school_days);
        }
        w->school_days = 0;
        w->lessons = 0;
}

/* Adds one school day of one terminal (its rows already summed) into ACC;
 * returns its lessons with use. */
static int64_t add_day(struct bbt_rates_acc *acc, const struct bbt_metric_settings *s, const struct bbt_day_rule *rule,
                       const struct bbt_day_rollup *d, int n_periods)
{
        struct bbt_day_totals t;

        bbt_day_totals_of(rule, d, n_periods, &t);
        bbt_rates_add_totals(acc, s, 1, n_periods, &t);
        return t.periods_used;
}

void bbt_rates_add(struct bbt_rates_acc *acc, const struct bbt_metric_settings *s, int32_t from, int32_t to,
                   const struct bbt_terminal_days *t)
{
        struct bbt_day_rollup sum[DAYS_BLOCK];
        int n_periods = clamp_periods(t->n_periods);
        struct bbt_day_rule rule;
        struct week_tally w = { .monday = bbt_week_monday(from) };

        bbt_day_rule_of(s, &rule);
        acc->terminals++;
        acc->intact += t->intact;
        for (int64_t lo = from; lo <= to; lo += DAYS_BLOCK) {
                int64_t hi = lo + DAYS_BLOCK - 1 < to ? lo + DAYS_BLOCK - 1 : to;

                gather(t, from, lo, hi, sum);
                for (int64_t d = lo; d <= hi; d++) {
                        if (!is_school_day(t, from, d))
                                continue;
                        if (bbt_week_monday((int32_t)d) != w.monday) {
                                week_close(acc, s, &w);
                                w.monday = bbt_week_monday((int32_t)d);
                        }
                        w.lessons += add_day(acc, s, &rule, &sum[d - lo], n_periods);
                        w.school_days++;
                }
        }
        week_close(acc, s, &w);
}

void bbt_rates_merge(struct bbt_rates_acc *into, const struct bbt_rates_acc *from)
{
        into->terminals += from->terminals;
        into->terminal_days += from->terminal_days;
        into->powered_days += from->powered_days;
        into->used_days += from->used_days;
        into->on_ms += from->on_ms;
        into->active_ms += from->active_ms;
        into->interactive_ms += from->interactive_ms;
        into->periods_used += from->periods_used;
        into->periods_scheduled += from->periods_scheduled;
        into->hb_received += from->hb_received;
        into->hb_on_ms += from->hb_on_ms;
        if (from->hb_interval_ms > 0)
                into->hb_interval_ms = from->hb_interval_ms;
        hb_expected(into);
        into->intact += from->intact;
        into->weeks_judged += from->weeks_judged;
        into->weeks_met += from->weeks_met;
}

void bbt_rates_compute(const struct bbt_rates_acc *acc, struct bbt_rates *ret)
{
        struct bbt_rates r;

        memset(&r, 0, sizeof(r));
        r.has_days = acc->terminal_days > 0;
        r.has_periods = acc->periods_scheduled > 0;
        r.has_active = acc->active_ms > 0;
        r.has_online = acc->hb_expected > 0;
        r.has_terminals = acc->terminals > 0;
        r.has_weeks = acc->weeks_judged > 0;
        if (r.has_days) {
                double days = (double)acc->terminal_days;

                r.power_on_rate = (double)acc->powered_days / days;
                r.usage_rate = (double)acc->used_days / days;
                r.avg_daily_hours = (double)acc->active_ms / 3600000.0 / days;
                /* Σ weeks = Σ school days / 5. */
                r.weekly_lessons = (double)acc->periods_used / (days / 5.0);
        }
        if (r.has_periods)
                r.period_usage_rate = (double)acc->periods_used / (double)acc->periods_scheduled;
        if (r.has_active)
                r.interactive_share = (double)acc->interactive_ms / (double)acc->active_ms;
        if (r.has_online) {
                /* The per-day cap is ceil(expected), so the sum may pass the
                 * expected count by a fraction: 在线率 is at most 1. */
                r.online_rate = (double)acc->hb_received / acc->hb_expected;
                if (r.online_rate > 1)
                        r.online_rate = 1;
        }
        if (r.has_terminals)
                r.intact_rate = (double)acc->intact / (double)acc->terminals;
        if (r.has_weeks)
                r.weekly_rule_rate = (double)acc->weeks_met / (double)acc->weeks_judged;
        *ret = r;
}

/* Each reason's code, Chinese and English name. */
static const char *const idle_reasons[BBT_IDLE__COUNT][3] = {
        [BBT_IDLE_NO] = { "no", "否", "no" },
        [BBT_IDLE_NEVER_REPORTED] = { "never_reported", "从未上报", "never reported" },
        [BBT_IDLE_OFFLINE] = { "offline", "离线", "offline" },
        [BBT_IDLE_NOT_POWERED] = { "not_powered", "未开机", "never powered on" },
        [BBT_IDLE_NOT_USED] = { "not_used", "开机未使用", "powered but not used" },
};

const char *bbt_idle_reason_name(enum bbt_idle_reason r, bool chinese)
{
        if ((int)r < 0 || r >= BBT_IDLE__COUNT)
                return "?";
        return idle_reasons[r][chinese ? 1 : 2];
}

const char *bbt_idle_reason_code(enum bbt_idle_reason r)
{
        if ((int)r < 0 || r >= BBT_IDLE__COUNT)
                return NULL;
        return idle_reasons[r][0];
}

enum bbt_idle_reason bbt_idle_judge(const struct bbt_metric_settings *s, int32_t from, int32_t to,
                                    const struct bbt_terminal_days *t, int64_t last_seen_ms, int *ret_used)
{
        struct bbt_day_rollup sum[DAYS_BLOCK];
        int school_days = 0, powered = 0, used = 0;

        for (int64_t lo = from; lo <= to; lo += DAYS_BLOCK) {
                int64_t hi = lo + DAYS_BLOCK - 1 < to ? lo + DAYS_BLOCK - 1 : to;

                gather(t, from, lo, hi, sum);
                for (int64_t d = lo; d <= hi; d++) {
                        if (!is_school_day(t, from, d))
                                continue;
                        school_days++;
                        powered += bbt_day_powered(&sum[d - lo]);
                        used += bbt_day_used(s, &sum[d - lo]);
                }
        }
        if (ret_used)
                *ret_used = used;
        return bbt_idle_decide(s, from, school_days, powered, used, last_seen_ms);
}

enum bbt_idle_reason bbt_idle_decide(const struct bbt_metric_settings *s, int32_t from, int school_days, int powered,
                                     int used, int64_t last_seen_ms)
{
        if (last_seen_ms == 0)
                return BBT_IDLE_NEVER_REPORTED;
        /* Without a school day in the window nobody could have used it. */
        if (school_days == 0)
                return BBT_IDLE_NO;
        if (bbt_day_of_ms(last_seen_ms, s->offset_min) < from)
                return BBT_IDLE_OFFLINE;
        if (powered == 0)
                return BBT_IDLE_NOT_POWERED;
        if (used <= s->idle_max_days)
                return BBT_IDLE_NOT_USED;
        return BBT_IDLE_NO;
}
