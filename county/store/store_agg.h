/* What both store backends keep to follow the day aggregates (store.h, "Day aggregates"): internal to county/store/. */
#ifndef BBT_STORE_AGG_H
#define BBT_STORE_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A school as the day aggregates key it. */
struct bbt_agg_school {
        char county[7];
        char school[BBT_ID_MAX + 1];
};

/* The change of one school's day not written yet: a transaction's day_adds
 * are summed per school and day and written at commit (or before a read),
 * one row per school instead of one per terminal. */
struct bbt_agg_pending {
        bool used;
        int32_t school; /* into schools */
        int32_t day;
        struct bbt_day_totals t;
};

struct bbt_agg {
        /* The schools of the terminals seen (a terminal's school never changes). */
        struct bbt_agg_school *schools;
        size_t n_schools, cap_schools;
        int32_t *school_of;               /* terminal id → 1 + index into schools; 0: not looked up yet */
        size_t cap_school_of;
        struct bbt_agg_pending *pending;  /* open addressing by (school, day); cap_pending a power of 2 */
        size_t n_pending, cap_pending;
};

/* The index into A->schools of TERMINAL_ID's school if known, else -1. */
int32_t bbt_agg_school_cached(const struct bbt_agg *a, int64_t terminal_id);
/* Records COUNTY/SCHOOL (looked up in the store) as TERMINAL_ID's school:
 * its index into A->schools, or -ENOMEM. */
int32_t bbt_agg_school_add(struct bbt_agg *a, int64_t terminal_id, const char *county, const char *school);
/* After a rollback: a terminal inserted in it is gone, and its id may come again. */
void bbt_agg_forget_terminals(struct bbt_agg *a);

/* Adds T to the pending change of SCHOOL's DAY. */
int bbt_agg_pending_add(struct bbt_agg *a, int32_t school, int32_t day, const struct bbt_day_totals *t);
void bbt_agg_pending_drop(struct bbt_agg *a);
void bbt_agg_free(struct bbt_agg *a);

/* The day rule as the store records it: three meta keys (store.h, day_rule_get). */
#define BBT_AGG_RULE_KEYS 3
extern const char *const bbt_agg_rule_keys[BBT_AGG_RULE_KEYS];
int64_t *bbt_agg_rule_field(struct bbt_day_rule *r, size_t i);
/* Reads, or writes, the rule through S's meta_get, meta_set (-ENOENT, with
 * the error text, if none is recorded). */
int bbt_agg_rule_read(struct bbt_store *s, struct bbt_day_rule *ret);
/* The rule through a backend's cache: *CACHE if *HAS, else read (and
 * cached). Returns 0 with *RET, or what bbt_agg_rule_read returns. */
int bbt_agg_rule_cached(struct bbt_store *s, bool *has, struct bbt_day_rule *cache, struct bbt_day_rule *ret);
int bbt_agg_rule_write(struct bbt_store *s, const struct bbt_day_rule *r);

/* A day mark's update (store.h, struct bbt_store_day_marks): in the span,
 * the day's bit and 4 bits of lessons are cleared (BIT, LO_MASK, HI_MASK)
 * and set (POWERED, USED, LO, HI). */
struct bbt_agg_mark {
        int64_t span; /* day >> 5, towards −∞ */
        int64_t bit, powered, used;
        int64_t lo_mask, hi_mask, lo, hi;
};

/* What one terminal-day going from BEFORE to AFTER changes under RULE:
 * *CHANGE the school-day totals to add, and *MARK the day mark to write.
 * Returns 0 nothing changes, 1 the totals only, 2 the totals and the mark. */
int bbt_agg_judge(const struct bbt_day_rule *rule, int32_t day, const struct bbt_day_rollup *before,
                  const struct bbt_day_rollup *after, struct bbt_day_totals *change, struct bbt_agg_mark *mark);

/* The row before an add: AFTER less the counted columns of DELTA (the history columns stay AFTER's). */
void bbt_day_rollup_before(const struct bbt_day_rollup *after, const struct bbt_day_rollup *delta,
                           struct bbt_day_rollup *ret);

/* After a loss row L was deleted for FROM..TO: adds back (through S's
 * loss_add) its parts before FROM and after TO. Returns 0 or a negative errno. */
int bbt_agg_loss_remnants(struct bbt_store *s, const struct bbt_store_loss *l, int64_t from, int64_t to);

/* ---- A school's 32 days packed to a row (both backends' school_span) ----
 *
 * One row per school and 32 days (span = day >> 5), PRESENT a bit per day
 * with a total, DAYS the totals of those days in order, each as
 * BBT_AGG_SPAN_VALUES 8-byte little-endian integers (bbt_day_totals' fields
 * in order: a read is a copy, not a parse). A county's school year is
 * ~8,800 rows instead of ~150,000: a report reads them in a twentieth of the
 * time, and an ingest commit reads and rewrites the row of each school it
 * touched. */
#define BBT_AGG_SPAN_VALUES 8
#define BBT_AGG_SPAN_BYTES_MAX (BBT_STORE_MARK_DAYS * BBT_AGG_SPAN_VALUES * 8)

struct bbt_agg_span {
        uint32_t present;
        struct bbt_day_totals t[BBT_STORE_MARK_DAYS];
};

/* The 32 days DAY is in: day >> 5, as SQL shifts (towards −∞). */
int64_t bbt_agg_span_of(int32_t day);
/* Field K (0 .. BBT_AGG_SPAN_VALUES - 1) of T, in the packed order. */
int64_t *bbt_agg_totals_field(struct bbt_day_totals *t, int k);
/* Packs SD's present days into OUT (BBT_AGG_SPAN_BYTES_MAX bytes); returns the length. */
size_t bbt_agg_span_encode(const struct bbt_agg_span *sd, uint8_t *out);
/* Returns 0, or -EINVAL if the LEN bytes at P do not hold what PRESENT says. */
int bbt_agg_span_decode(uint32_t present, const uint8_t *p, size_t len, struct bbt_agg_span *sd);
/* Adds FROM's days to TO's (a day new to TO becomes present). */
void bbt_agg_span_add(struct bbt_agg_span *to, const struct bbt_agg_span *from);
/* The bits of the span starting at FIRST_DAY that are days FROM .. TO. */
uint32_t bbt_agg_span_days_in(int64_t first_day, int64_t from, int64_t to);

/* One span's rows of every school in scope, decoded: given out by day, then
 * county and school (the rows come by county and school). */
struct bbt_agg_span_rows {
        struct bbt_agg_span_row {
                char county[7];
                char school[BBT_ID_MAX + 1];
                struct bbt_agg_span sd;
        } *row;
        size_t n, cap;
        int64_t span;
};

/* A new row of V for SPAN (V's rows so far given out first if of another
 * span): *RET to fill, or the callback's non-zero result, or -ENOMEM. */
int bbt_agg_span_rows_next(struct bbt_agg_span_rows *v, int64_t span, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_school_day *d), void *u,
                           struct bbt_agg_span_row **ret);
/* Gives V's rows to CB a day at a time (the days of SCOPE only) and empties V. */
int bbt_agg_span_rows_give(struct bbt_agg_span_rows *v, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_school_day *d), void *u);

#endif
