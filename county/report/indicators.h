/* The indicators (METRICS.md) from per-terminal-day rollups: rates, the idle judgement, their settings. */
#ifndef BBT_INDICATORS_H
#define BBT_INDICATORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "energy.h"
#include "rollup.h"

/* Every threshold is a setting; reports print them at their foot. */
struct bbt_metric_settings {
        int used_day_min;        /* a day is "used" with active minutes >= this (10) */
        int used_period_min;     /* a period is "used" with active minutes inside it >= this (10) */
        int margin_min;          /* school hours = first period start − margin .. last end + margin (30) */
        int heartbeat_s;         /* the agents' heartbeat interval, for 在线率 (60) */
        int idle_window;         /* idle list: school days looked at (10) */
        int idle_max_days;       /* idle: used on at most this many of them (0) */
        int silent_days;         /* fault "silent": no message for more school days than this (3) */
        long min_pupils;         /* 差异系数: schools with fewer pupils left out (50) */
        int offset_min;          /* local time = UTC + this (480, Asia/Shanghai) */
        int64_t clock_skew_limit_ms; /* fault clock_skew past this (300000) */
        int weekly_lessons_min;  /* weekly rule: lessons with use per terminal per five school days (10) */
        /* [energy]: after-hours on-time and its energy (docs/metrics.md, "After-hours energy") */
        struct bbt_energy_watts watts; /* watts (250) and kind_watts (none) */
        int night_start_min, night_end_min; /* the night window, 22:00 .. 06:00 */
};

/* The defaults (in brackets above) are defined once, in bbt-aggregator's
 * option table: bbt_metric_settings_default() in aggregator_config.h. */

/* One terminal's rollups over the range FROM..TO (inclusive days). */
struct bbt_terminal_days {
        const struct bbt_day_rollup *days; /* any order; rows outside FROM..TO or on non-school days are ignored */
        size_t n_days;
        const uint8_t *school_day;         /* school_day[d - FROM] != 0: d is a school day for its school */
        int n_periods;                     /* periods in its school's bell schedule */
        bool intact;                       /* no open fault at the end of the range */
};

/* Sums over a set of terminals; merge them upward terminal → school → township → county. */
struct bbt_rates_acc {
        int64_t terminals;
        int64_t terminal_days;     /* Σ school days of each terminal: the denominator of 开机率/使用率 */
        int64_t powered_days;      /* Σ powered_on */
        int64_t used_days;         /* Σ used */
        int64_t on_ms, active_ms, interactive_ms;
        int64_t periods_used;      /* Σ period_used */
        int64_t periods_scheduled; /* Σ over school days of the periods in the bell schedule */
        int64_t hb_received;       /* heartbeats in school hours, capped per day at the expected count */
        int64_t hb_on_ms;          /* Σ on_all_ms: summed as integers, so any order gives the same hb_expected */
        int64_t hb_interval_ms;    /* the heartbeat interval hb_expected is counted in */
        double hb_expected;        /* hb_on_ms / hb_interval_ms */
        int64_t intact;            /* terminals with no open fault */
        int64_t weeks_judged;      /* terminal-weeks with a school day in the range: the weekly rule's denominator */
        int64_t weeks_met;         /* of them, those with enough lessons with use (bbt_weekly_rule_met) */
};

/* The rates; a rate whose denominator is 0 is undefined (has_* false) and is
 * reported as "—", never as 0. */
struct bbt_rates {
        double power_on_rate;      /* 开机率 */
        double usage_rate;         /* 使用率 */
        double avg_daily_hours;    /* 日均使用时长 */
        double period_usage_rate;  /* 堂堂用率 */
        double interactive_share;  /* 互动使用占比 */
        double online_rate;        /* 在线率 */
        double intact_rate;        /* 设备完好率 */
        double weekly_lessons;     /* 周均使用节数: Σ period_used / (Σ school days / 5) */
        double weekly_rule_rate;   /* 周节数达标率: weeks_met / weeks_judged */
        bool has_days;             /* terminal_days > 0: the first four and weekly_lessons */
        bool has_periods;          /* periods_scheduled > 0: period_usage_rate */
        bool has_active;           /* active_ms > 0: interactive_share */
        bool has_online;           /* hb_expected > 0: online_rate */
        bool has_terminals;        /* terminals > 0: intact_rate */
        bool has_weeks;            /* weeks_judged > 0: weekly_rule_rate */
};

/* Adds one terminal (a terminal that never reported passes no rows and still
 * counts in every denominator). */
void bbt_rates_add(struct bbt_rates_acc *acc, const struct bbt_metric_settings *s, int32_t from, int32_t to,
                   const struct bbt_terminal_days *t);
/* Adds TERMINAL_DAYS school days of terminals with N_PERIODS periods whose
 * rollups, judged under S (bbt_day_rule_of()), sum to T: what the store's
 * day aggregates hold. bbt_rates_add() adds each day so. */
void bbt_rates_add_totals(struct bbt_rates_acc *acc, const struct bbt_metric_settings *s, int64_t terminal_days,
                          int n_periods, const struct bbt_day_totals *t);
/* The day rule of S: its thresholds and heartbeat interval in ms. */
void bbt_day_rule_of(const struct bbt_metric_settings *s, struct bbt_day_rule *ret);
/* INTO += FROM. */
void bbt_rates_merge(struct bbt_rates_acc *into, const struct bbt_rates_acc *from);
/* The rates of ACC. */
void bbt_rates_compute(const struct bbt_rates_acc *acc, struct bbt_rates *ret);

/* Whether a day row is "used" / powered / its period K used, under S. */
bool bbt_day_used(const struct bbt_metric_settings *s, const struct bbt_day_rollup *d);
bool bbt_day_powered(const struct bbt_day_rollup *d);
bool bbt_period_used(const struct bbt_metric_settings *s, const struct bbt_day_rollup *d, int k);

/* The first day (Monday) of the week, Monday to Sunday, that DAY is in. */
int32_t bbt_week_monday(int32_t day);
/* The weekly rule: a terminal-week with SCHOOL_DAYS school days (in the
 * range) and LESSONS lessons with use on them meets it when
 *   5 × LESSONS ≥ weekly_lessons_min × SCHOOL_DAYS,
 * the minimum scaled to the week's school days (docs/metrics.md). A week
 * without a school day is not judged: false. */
bool bbt_weekly_rule_met(const struct bbt_metric_settings *s, int64_t lessons, int school_days);
/* The lessons with use a week of SCHOOL_DAYS school days needs:
 * ceil(weekly_lessons_min × SCHOOL_DAYS / 5). */
int64_t bbt_weekly_rule_required(const struct bbt_metric_settings *s, int school_days);

enum bbt_idle_reason {
        BBT_IDLE_NO,             /* not idle */
        BBT_IDLE_NEVER_REPORTED, /* 从未上报: nothing ever received from it */
        BBT_IDLE_OFFLINE,        /* 离线: nothing received during the window */
        BBT_IDLE_NOT_POWERED,    /* 未开机: reported, but never on in school hours in the window */
        BBT_IDLE_NOT_USED,       /* 开机未使用: on, but used on too few days */
        BBT_IDLE__COUNT
};
const char *bbt_idle_reason_name(enum bbt_idle_reason r, bool chinese);
/* The reason's machine code: "no", "never_reported", "offline", "not_powered", "not_used". */
const char *bbt_idle_reason_code(enum bbt_idle_reason r);

/* The idle judgement of one terminal over the window FROM..TO (the caller picks
 * FROM so that it holds the last idle_window school days up to TO; T's
 * school_day is indexed from FROM). LAST_SEEN_MS is the receive time of the
 * newest message from the terminal, 0 if none ever. Idle when the days used
 * in the window are <= idle_max_days (METRICS.md says "fewer than", which with
 * its default of 0 could never hold; see docs/metrics.md). RET_USED (may be
 * NULL) gets the days used. */
/* The idle judgement from the counts over the window FROM..TO: its
 * SCHOOL_DAYS, the days POWERED and USED among them (bbt_idle_judge() counts
 * them from rollups). */
enum bbt_idle_reason bbt_idle_decide(const struct bbt_metric_settings *s, int32_t from, int school_days, int powered,
                                     int used, int64_t last_seen_ms);
enum bbt_idle_reason bbt_idle_judge(const struct bbt_metric_settings *s, int32_t from, int32_t to,
                                    const struct bbt_terminal_days *t, int64_t last_seen_ms, int *ret_used);

#endif
