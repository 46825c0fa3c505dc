/* After-hours on-time of terminals, by kind of time (evening, night, weekend, holiday), and the nights left on. */
#ifndef BBT_ENERGY_H
#define BBT_ENERGY_H

/* docs/metrics.md, "After-hours energy", is the definition; this is its
 * code. A terminal is on while any of its usage intervals covers the
 * instant, whatever the state (standby with the display off, idle, active):
 * the agent runs, so the PC is powered. Each instant a terminal is on, on
 * local day D of its school, is
 *   - school hours: D is a school day and the instant lies in D's school
 *     hours (first period − margin .. last period + margin, as the
 *     rollups cut them): not after-hours, counted in school_ms;
 *   - weekend: D is not a school day and is a Saturday or Sunday;
 *   - holiday: D is not a school day and is a Monday .. Friday (holiday,
 *     vacation, outside the term);
 *   - night: D is a school day, outside school hours, and the time of day is
 *     before night_end or from night_start on;
 *   - evening: D is a school day, outside school hours, and not night (from
 *     night_end to school hours in the morning, from the end of school hours
 *     to night_start).
 * A 调休 working Saturday is a school day like any other. The night of day D
 * is [D night_start, D+1 night_end); a terminal was left on that night when
 * it was on at any instant of it (whatever kind of day D is). */

#include <stdbool.h>
#include <stdint.h>

#include "calendar.h"
#include "store.h"

enum bbt_energy_kind {
        BBT_ENERGY_EVENING,
        BBT_ENERGY_NIGHT,
        BBT_ENERGY_WEEKEND,
        BBT_ENERGY_HOLIDAY,
        BBT_ENERGY__COUNT
};

/* "evening", "night", "weekend", "holiday" (codes) or 晚间, 夜间, 周末, 节假日. */
const char *bbt_energy_kind_code(enum bbt_energy_kind k);
const char *bbt_energy_kind_name(enum bbt_energy_kind k, bool chinese);

struct bbt_energy_rules {
        const struct bbt_calendar *cal; /* school days and bells; NULL: Monday..Friday, the default bells */
        int margin_min;                 /* [metrics] school_hours_margin (30) */
        int offset_min;                 /* [metrics] utc_offset in minutes (480) */
        int night_start_min;            /* [energy] night_start (22:00 = 1320), 0 < .. <= 1440 */
        int night_end_min;              /* [energy] night_end (06:00 = 360), 0 <= .. < night_start_min */
};
#define BBT_ENERGY_RULES_DEFAULT                                                                             \
        { .cal = NULL, .margin_min = 30, .offset_min = 480, .night_start_min = 22 * 60, .night_end_min = 6 * 60 }

/* One terminal's after-hours figures over the days FROM..TO of a scope. */
struct bbt_energy_terminal {
        int64_t terminal_id;                /* the store's key */
        const char *county, *school, *terminal;
        int64_t after_ms[BBT_ENERGY__COUNT]; /* on-time of each kind on days FROM..TO */
        int64_t after_hours_ms;             /* their sum */
        int64_t school_ms;                  /* on-time in school hours of school days FROM..TO */
        int nights_on;                      /* nights of days FROM..TO it was on in */
        int32_t last_night;                 /* the latest of those nights (its day D); INT32_MIN: none */
};

/* Calls CB once for every terminal of STORE in SCOPE's county and school (in
 * the store's id order, those without any on-time too) with its figures over
 * the local days SCOPE->from_day .. SCOPE->to_day (both given, at most 3660
 * days; since_ms and until_ms are ignored) under R: the days' on-time by kind,
 * and the nights of those days (the night of TO reaches into TO + 1) it was
 * on in. The pointers in the row are valid during the call. Reads the usage
 * intervals (not the rollups): cost in proportion to the intervals in range.
 * Returns 0, CB's first non-zero result, -EINVAL (a bad range or rules),
 * -ENOMEM, or a store error (bbt_store_error()). */
int bbt_energy_each(struct bbt_store *store, const struct bbt_energy_rules *r, const struct bbt_store_scope *scope,
                    int (*cb)(void *u, const struct bbt_energy_terminal *t), void *u);

/* The wattage of each terminal kind (the registry's 机型 column): [energy]
 * watts and kind_watts. */
#define BBT_ENERGY_KINDS_MAX 16
struct bbt_energy_watts {
        int watts; /* a terminal of no listed kind (250) */
        int n;
        struct {
                char kind[33];
                int watts;
        } k[BBT_ENERGY_KINDS_MAX];
};

/* Parses kind_watts, "KIND=W" items separated by commas, semicolons or
 * spaces ("board=250, projector=330"; "" none), into RET->n and RET->k (watts
 * is left alone). W is 1..10000. Returns 0, or -EINVAL with ERR saying why. */
int bbt_energy_watts_parse(const char *s, struct bbt_energy_watts *ret, char *err, size_t err_size);
/* Writes W's kinds back as "KIND=W, ..." into BUF. Returns BUF. */
char *bbt_energy_watts_format(const struct bbt_energy_watts *w, char *buf, size_t size);
/* The wattage of a terminal of KIND (NULL or "": none). */
int bbt_energy_watts_of(const struct bbt_energy_watts *w, const char *kind);

/* Energy in kWh of MS milliseconds at WATTS. */
static inline double bbt_energy_kwh(int64_t ms, int watts)
{
        return (double)ms * watts / 3.6e9;
}

#endif
