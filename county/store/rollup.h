/* Cutting usage intervals and heartbeats into per-terminal-day rollups (METRICS.md); rebuilding the stored ones. */
#ifndef BBT_ROLLUP_H
#define BBT_ROLLUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bbt/protocol.h>

#include "calendar.h"

/* One usage interval on the school's clock: the agent's start/end after the
 * terminal's clock-skew correction. end_ms >= start_ms. */
struct bbt_usage_span {
        int64_t start_ms, end_ms;
        enum bbt_usage_state state;
        int64_t interactive_ms; /* <= end_ms - start_ms */
};

/* What one terminal did on one local day, within its school hours: from the
 * first period's start − margin to the last period's end + margin. */
struct bbt_day_rollup {
        int32_t day;                                 /* local day number (dates.h) */
        int64_t on_ms;                               /* standby + idle + active */
        int64_t active_ms;
        int64_t interactive_ms;
        int64_t period_active_ms[BBT_PERIODS_MAX];   /* active time inside period k */
        int64_t hb_count;                            /* heartbeats stamped on this day (whole day) */
        int64_t on_all_ms;                           /* standby + idle + active over the whole day */
        /* History (docs/metrics.md, "History"); 0: none. Added by min/max, not summed. */
        int64_t first_msg_ms, last_msg_ms;           /* the day's first and last message, each at its
                                                      * message time: sent (true clock), or received
                                                      * if that is earlier */
        int64_t last_active_ms;                      /* end of the latest active time on this day (clipped
                                                      * at midnight), in or out of school hours */
};

/* How rollups are cut: the school's bells, the margin around them, the UTC offset. */
struct bbt_rollup_rules {
        const struct bbt_bells *bells;
        int margin_min;  /* METRICS.md: 30 */
        int offset_min;  /* local time = UTC + offset */
};

/* The school-hours window of DAY as instants [*RET_START, *RET_END). */
void bbt_rollup_window(const struct bbt_rollup_rules *r, int32_t day, int64_t *ret_start, int64_t *ret_end);

/* Cuts U at local midnights, the school-hours window and period boundaries,
 * and writes one zero-initialised-then-filled row per local day U touches into
 * OUT (at most OUT_MAX rows, in day order; an interval spans at most two days
 * when it obeys the protocol's one-hour limit). interactive_ms is shared out in
 * proportion to the part of the interval inside school hours. Every row is
 * written even when its contribution is zero. Returns the number of rows. */
size_t bbt_rollup_usage(const struct bbt_rollup_rules *r, const struct bbt_usage_span *u, struct bbt_day_rollup *out,
                        size_t out_max);

/* Adds B's counters into A (same day); the history fields take the earlier
 * first and the later last (0 is none). */
void bbt_day_rollup_add(struct bbt_day_rollup *a, const struct bbt_day_rollup *b);

/* Day rollups of one terminal waiting to be added to the store: one row a
 * day, in the order the days were first seen. Zero-initialised it is empty;
 * bbt_day_set_free() releases it. */
struct bbt_day_set {
        struct bbt_day_rollup *v;
        size_t n, cap;
};

/* Adds D into S: into the row of D's day, or as a new row. Returns 0 or -ENOMEM. */
int bbt_day_set_add(struct bbt_day_set *s, const struct bbt_day_rollup *d);

/* Cuts U with R (bbt_rollup_usage()) and adds every row into S. Returns 0 or -ENOMEM. */
int bbt_day_set_add_usage(struct bbt_day_set *s, const struct bbt_rollup_rules *r, const struct bbt_usage_span *u);

/* Frees S's rows and empties it (NULL-safe). */
void bbt_day_set_free(struct bbt_day_set *s);

/* ---- the day judgement the stored aggregates count by ---- */

/* What makes a day "used", a period "used" and how many heartbeats it
 * expects: the thresholds of docs/metrics.md in milliseconds. The store's
 * day aggregates (store.h, "Day aggregates") are counted under one rule. */
struct bbt_day_rule {
        int64_t used_day_ms;    /* a day is used with active_ms >= this (> 0) */
        int64_t used_period_ms; /* a period is used with its active time >= this (> 0) */
        int64_t heartbeat_ms;   /* the agents' heartbeat interval (> 0) */
};

/* The rule a new or migrated store starts with: the metrics defaults (10
 * min, 10 min, 60 s; bbt-aggregator records its own on start). */
#define BBT_DAY_RULE_DEFAULT { .used_day_ms = 600000, .used_period_ms = 600000, .heartbeat_ms = 60000 }

/* What day rollups count for under a rule, summed over terminal-days: the
 * figures docs/metrics.md sums over school days. */
struct bbt_day_totals {
        int64_t powered;      /* days with on_ms > 0 */
        int64_t used;         /* days with active_ms >= used_day_ms */
        int64_t periods_used; /* periods (of the first N counted) with active time >= used_period_ms */
        int64_t on_ms, active_ms, interactive_ms;
        int64_t hb_received;  /* heartbeats, each day at most ceil(on_all_ms / heartbeat_ms) */
        int64_t on_all_ms;
};

/* The totals of the one day rollup D under R, counting its first N_PERIODS
 * periods (BBT_PERIODS_MAX: all; a rollup cut with a school's bells has no
 * active time past them). */
void bbt_day_totals_of(const struct bbt_day_rule *r, const struct bbt_day_rollup *d, int n_periods,
                       struct bbt_day_totals *ret);

/* A += B, or A -= B. */
void bbt_day_totals_add(struct bbt_day_totals *a, const struct bbt_day_totals *b);
void bbt_day_totals_sub(struct bbt_day_totals *a, const struct bbt_day_totals *b);

/* ---- the stored rollups: rebuilt when the rules they were cut with change ---- */

struct bbt_store;

/* What every terminal's rollups are cut with: the bells of its school in
 * CAL (NULL: the default bells for all), the margin and the UTC offset. */
struct bbt_rollup_config {
        const struct bbt_calendar *cal;
        int margin_min;
        int offset_min;
};

/* A hash of C: every school's bells, the margin, the offset (>= 0). */
int64_t bbt_rollup_config_hash(const struct bbt_rollup_config *c);

/* Whether STORE's rollups were cut with C (the hash recorded with them):
 * returns 0 yes, 1 no (they want bbt_rollup_rebuild()), -ENOENT none
 * recorded (a new store), or a negative errno. */
int bbt_rollup_config_check(struct bbt_store *store, const struct bbt_rollup_config *c);

/* Records C as what STORE's rollups are cut with, in the caller's
 * transaction; first fills the rollups' message history from what the store
 * still has (the raw records, the terminals' first and last receive) unless
 * it was made under C's UTC offset already. Returns 0 or a negative errno. */
int bbt_rollup_config_record(struct bbt_store *store, const struct bbt_rollup_config *c);

/* Recomputes the usage columns of every day rollup in STORE from its stored
 * usage intervals, each cut with its terminal's bells under C (heartbeat
 * counts stay), adds the message times still known (the raw records kept and
 * each terminal's first and last receive) to the history under C's offset,
 * and records C. Runs in the caller's transaction (between
 * bbt_store_begin() and bbt_store_commit(); on failure roll it back); holds
 * every terminal's rebuilt days in memory until the intervals are read.
 * Returns 0 or a negative errno (bbt_store_error() says why, or -ENOMEM). */
int bbt_rollup_rebuild(struct bbt_store *store, const struct bbt_rollup_config *c);

#endif
