/* School calendar (terms, holidays, 调休 make-up days) and bell schedules, per county with per-school overrides. */
#ifndef BBT_CALENDAR_H
#define BBT_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* Most periods (节次) a school day may have, evening self-study included. */
#define BBT_PERIODS_MAX 12

/* One period of the bell schedule, in minutes after local midnight, start < end. */
struct bbt_period {
        int start_min, end_min;
};

/* A bell schedule: periods in time order, not overlapping. */
struct bbt_bells {
        int n;
        struct bbt_period p[BBT_PERIODS_MAX];
};

/* The built-in schedule used where no bells file names a county or school:
 * 8 periods of 40 minutes, 08:00–11:30 and 14:00–17:10 (see docs/calendar.md). */
const struct bbt_bells *bbt_bells_default(void);

/* Calendar entries, as read from the calendar CSV (docs/calendar.md). */
enum bbt_calendar_kind {
        BBT_CAL_TERM,    /* 学期: days from..to are in term */
        BBT_CAL_HOLIDAY, /* 假期/节假日: no school on these days, even on weekdays */
        BBT_CAL_WORKDAY, /* 调休: school on these days, even at a weekend */
        BBT_CAL_HALFDAY, /* 半天: a school day that ends at noon (the power schedule's half-day time) */
        BBT_CAL_EVENT,   /* 活动日: an event (open day, exam, evening gala): no scheduled power-off */
};

struct bbt_calendar;

/* An empty calendar: no terms anywhere (every weekday is a school day), no
 * holidays, the default bells. Returns 0 or -ENOMEM. */
int bbt_calendar_new(struct bbt_calendar **ret);
/* NULL-safe. */
void bbt_calendar_free(struct bbt_calendar *cal);

/* Reads the calendar CSV at PATH into CAL (adding to what it holds). SCOPE
 * values are a 6-digit county code or a school code. On any error nothing is
 * added and ERRS (may be NULL) holds every problem found, each naming the file,
 * row and column. Returns 0, -EINVAL (bad content), -errno (cannot read). */
int bbt_calendar_load_days(struct bbt_calendar *cal, const char *path, struct bbt_import_errors *errs);
/* Reads the bell-schedule CSV at PATH into CAL, as bbt_calendar_load_days. A
 * scope's periods must not overlap; at most BBT_PERIODS_MAX per scope. */
int bbt_calendar_load_bells(struct bbt_calendar *cal, const char *path, struct bbt_import_errors *errs);

/* Adds one entry by hand (tests, tools). SCOPE: county code or school code.
 * Returns 0, -EINVAL (to < from, bad scope), -ENOMEM. */
int bbt_calendar_add(struct bbt_calendar *cal, const char *scope, enum bbt_calendar_kind kind, int32_t from,
                     int32_t to);
/* Sets SCOPE's bell schedule by hand. Returns 0, -EINVAL (overlap, order, count), -ENOMEM. */
int bbt_calendar_set_bells(struct bbt_calendar *cal, const char *scope, const struct bbt_bells *bells);

/* Whether DAY is a school day for SCHOOL (code) in COUNTY:
 *   in term  ∧ ((Monday..Friday ∧ ¬holiday) ∨ workday)
 * where "in term" uses the school's own term entries if it has any, else the
 * county's, and is true for every day when neither has any; holidays and
 * workdays of the county and of the school both apply; a workday entry beats a
 * holiday entry covering the same day. SCHOOL may be NULL (county rules only). */
bool bbt_calendar_is_school_day(const struct bbt_calendar *cal, const char *county, const char *school,
                                int32_t day);
/* What kind of day DAY is for SCHOOL in COUNTY, for the power schedule. */
enum bbt_day_type {
        BBT_DAY_SCHOOL,     /* a school day (bbt_calendar_is_school_day) */
        BBT_DAY_HALF,       /* a school day with a 半天 entry */
        BBT_DAY_NON_SCHOOL, /* a weekend, holiday or day outside the term */
        BBT_DAY_EVENT,      /* a 活动日 entry, whatever else the day is */
        BBT_DAY__COUNT
};
enum bbt_day_type bbt_calendar_day_type(const struct bbt_calendar *cal, const char *county, const char *school,
                                        int32_t day);

/* The power schedule (docs/calendar.md, "Power schedule file"): per scope
 * (county or school) the power-off second after local midnight for each
 * enum bbt_day_type but BBT_DAY_EVENT, or BBT_POWER_NONE (no power-off) or
 * BBT_POWER_INHERIT (a school row's empty cell: the county's). */
#define BBT_POWER_NONE (-1)
#define BBT_POWER_INHERIT (-2)
struct bbt_power_times {
        int off_s[BBT_DAY_EVENT]; /* by enum bbt_day_type */
};
/* Reads the power schedule CSV at PATH into CAL, as bbt_calendar_load_days;
 * a scope in the file replaces that scope's times. */
int bbt_calendar_load_power(struct bbt_calendar *cal, const char *path, struct bbt_import_errors *errs);
/* Sets SCOPE's power times by hand (tests, tools). Returns 0, -EINVAL, -ENOMEM. */
int bbt_calendar_set_power(struct bbt_calendar *cal, const char *scope, const struct bbt_power_times *p);
/* Whether any scope has power times (else no schedule is sent at all). */
bool bbt_calendar_has_power(const struct bbt_calendar *cal);
/* SCHOOL's power-off on DAY, in seconds after local midnight (0..86399), or
 * BBT_POWER_NONE: the school's own time for the day's type, else its
 * county's, else none; never on an event day. */
int bbt_calendar_power_off(const struct bbt_calendar *cal, const char *county, const char *school, int32_t day);

/* Whether SCHOOL has day entries of its own (term, holiday or workday): if
 * not, its school days are its county's (bbt_calendar_is_school_day with
 * SCHOOL NULL says the same of every day). */
bool bbt_calendar_has_own_days(const struct bbt_calendar *cal, const char *school);
/* The bell schedule for SCHOOL in COUNTY: the school's if it has one, else the
 * county's, else bbt_bells_default(). Never NULL; valid while CAL lives. */
const struct bbt_bells *bbt_calendar_bells(const struct bbt_calendar *cal, const char *county, const char *school);

/* A hash of every bell schedule CAL holds (for noticing that rollups, which are
 * cut at period boundaries, must be rebuilt). */
uint64_t bbt_calendar_bells_hash(const struct bbt_calendar *cal);

#endif
