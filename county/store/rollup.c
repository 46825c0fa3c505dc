/* Usage intervals cut into per-terminal-day rollups (midnight, school hours, periods); the stored ones rebuilt. */
#include "rollup.h"
#include "bbt/array.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dates.h"
#include "store.h"

/* The store's meta key under which the hash of the rules the rollups were
 * cut with is kept. */
#define RULES_KEY "rollup_rules"
/* What the rollup rows hold, mixed into the hash: a store whose rows were
 * made by an older format is rebuilt once (1: the history columns). */
#define ROLLUP_FORMAT 1
/* The meta key under which the UTC offset (minutes) the message history's
 * days were taken with is kept. */
#define HISTORY_OFFSET_KEY "history_offset"

static int64_t max64(int64_t a, int64_t b)
{
        return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
        return a < b ? a : b;
}

/* The length of [A0, A1) ∩ [B0, B1), 0 when they do not meet. */
static int64_t overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1)
{
        int64_t lo = max64(a0, b0), hi = min64(a1, b1);

        return hi > lo ? hi - lo : 0;
}

static int bells_count(const struct bbt_bells *bells)
{
        if (!bells || bells->n <= 0)
                return 0;
        return bells->n < BBT_PERIODS_MAX ? bells->n : BBT_PERIODS_MAX;
}

/* A·B/C rounded half up, for 0 <= A <= C, 0 <= B <= C, C > 0, without
 * overflowing whatever the sizes: A·B may not fit in 64 bits (an interval of
 * more than 35 days), so the product is built bit by bit modulo C. */
static int64_t mul_div_round(int64_t a, int64_t b, int64_t c)
{
        uint64_t ua = (uint64_t)a, ub = (uint64_t)b, uc = (uint64_t)c;
        uint64_t q = (ua / uc) * ub, ra = ua % uc, acc_q = 0, acc_r = 0;

        /* acc = ra·(bits of B seen so far), kept as acc_q·C + acc_r, acc_r < C. */
        for (int bit = 63; bit >= 0; bit--) {
                acc_q <<= 1;
                acc_r <<= 1; /* acc_r < C < 2^63: no wrap */
                if (acc_r >= uc) {
                        acc_r -= uc;
                        acc_q++;
                }
                if ((ub >> bit) & 1) {
                        acc_r += ra;
                        if (acc_r >= uc) {
                                acc_r -= uc;
                                acc_q++;
                        }
                }
        }
        q += acc_q;
        /* Half up: the remainder acc_r/C >= 1/2. */
        if (acc_r >= uc - acc_r)
                q++;
        return (int64_t)q;
}

void bbt_rollup_window(const struct bbt_rollup_rules *r, int32_t day, int64_t *ret_start, int64_t *ret_end)
{
        int64_t midnight = bbt_day_start_ms(day, r->offset_min);
        int n = bells_count(r->bells), first, last;

        if (n == 0) {
                /* No bells, no school hours: an empty window. */
                *ret_start = *ret_end = midnight;
                return;
        }
        first = r->bells->p[0].start_min;
        last = r->bells->p[0].end_min;
        for (int k = 1; k < n; k++) {
                if (r->bells->p[k].start_min < first)
                        first = r->bells->p[k].start_min;
                if (r->bells->p[k].end_min > last)
                        last = r->bells->p[k].end_min;
        }
        first -= r->margin_min;
        last += r->margin_min;
        /* School hours belong to their own day: a margin reaching past
         * midnight stops there, so no instant is counted for two days. */
        if (first < 0)
                first = 0;
        if (last > 24 * 60)
                last = 24 * 60;
        if (last < first)
                last = first;
        *ret_start = midnight + first * BBT_MS_PER_MIN;
        *ret_end = midnight + last * BBT_MS_PER_MIN;
}

size_t bbt_rollup_usage(const struct bbt_rollup_rules *r, const struct bbt_usage_span *u, struct bbt_day_rollup *out,
                        size_t out_max)
{
        int64_t start = u->start_ms, end = max64(u->end_ms, u->start_ms), len = end - start;
        int32_t first_day = bbt_day_of_ms(start, r->offset_min);
        int32_t last_day = len > 0 ? bbt_day_of_ms(end - 1, r->offset_min) : first_day;
        bool active = u->state == BBT_USAGE_ACTIVE;
        int n_bells = bells_count(r->bells);
        /* Interactive time only exists inside active time (the agent counts it
         * only there); anything else would let 互动使用占比 pass 1. */
        int64_t interactive = active ? min64(max64(u->interactive_ms, 0), len) : 0;
        int64_t inside_so_far = 0, credited_so_far = 0;
        size_t n = 0;

        for (int64_t day = first_day; day <= last_day && n < out_max; day++) {
                struct bbt_day_rollup *row = &out[n++];
                int64_t day0 = bbt_day_start_ms((int32_t)day, r->offset_min);
                int64_t day1 = bbt_day_start_ms((int32_t)day + 1, r->offset_min);
                int64_t a = max64(start, day0), b = min64(end, day1), ws, we, inside, credited;

                memset(row, 0, sizeof(*row));
                row->day = (int32_t)day;
                bbt_rollup_window(r, (int32_t)day, &ws, &we);
                inside = overlap(a, b, ws, we);
                row->on_ms = inside;
                row->on_all_ms = b > a ? b - a : 0;
                if (active) {
                        row->active_ms = inside;
                        row->last_active_ms = b;
                        for (int k = 0; k < n_bells; k++) {
                                int64_t p0 = day0 + r->bells->p[k].start_min * BBT_MS_PER_MIN;
                                int64_t p1 = day0 + r->bells->p[k].end_min * BBT_MS_PER_MIN;

                                /* Clipped to school hours too, for a negative margin. */
                                row->period_active_ms[k] =
                                        overlap(max64(a, ws), min64(b, we), p0, p1);
                        }
                }
                /* Cumulative rounding: the days so far together get
                 * round_half_up(interactive × inside_so_far / len), so the
                 * days' shares always add up to the share of the whole. */
                inside_so_far += inside;
                credited = len > 0 ? mul_div_round(interactive, inside_so_far, len) : 0;
                row->interactive_ms = credited - credited_so_far;
                credited_so_far = credited;
        }
        return n;
}

void bbt_day_rollup_add(struct bbt_day_rollup *a, const struct bbt_day_rollup *b)
{
        a->on_ms += b->on_ms;
        a->active_ms += b->active_ms;
        a->interactive_ms += b->interactive_ms;
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                a->period_active_ms[k] += b->period_active_ms[k];
        a->hb_count += b->hb_count;
        a->on_all_ms += b->on_all_ms;
        if (b->first_msg_ms && (!a->first_msg_ms || b->first_msg_ms < a->first_msg_ms))
                a->first_msg_ms = b->first_msg_ms;
        a->last_msg_ms = max64(a->last_msg_ms, b->last_msg_ms);
        a->last_active_ms = max64(a->last_active_ms, b->last_active_ms);
}

int bbt_day_set_add(struct bbt_day_set *s, const struct bbt_day_rollup *d)
{
        /* From the newest row: intervals and heartbeats come mostly in day order. */
        for (size_t i = s->n; i-- > 0;)
                if (s->v[i].day == d->day) {
                        bbt_day_rollup_add(&s->v[i], d);
                        return 0;
                }
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 2;
                struct bbt_day_rollup *n = realloc(s->v, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                s->v = n;
                s->cap = cap;
        }
        s->v[s->n++] = *d;
        return 0;
}

int bbt_day_set_add_usage(struct bbt_day_set *s, const struct bbt_rollup_rules *r, const struct bbt_usage_span *u)
{
        struct bbt_day_rollup rows[4];
        size_t n = bbt_rollup_usage(r, u, rows, BBT_ELEMENTSOF(rows));
        int ret = 0;

        for (size_t i = 0; ret == 0 && i < n; i++)
                ret = bbt_day_set_add(s, &rows[i]);
        return ret;
}

void bbt_day_set_free(struct bbt_day_set *s)
{
        if (!s)
                return;
        free(s->v);
        s->v = NULL;
        s->n = s->cap = 0;
}

void bbt_day_totals_of(const struct bbt_day_rule *r, const struct bbt_day_rollup *d, int n_periods,
                       struct bbt_day_totals *ret)
{
        memset(ret, 0, sizeof(*ret));
        n_periods = n_periods < 0 ? 0 : n_periods < BBT_PERIODS_MAX ? n_periods : BBT_PERIODS_MAX;
        ret->powered = d->on_ms > 0;
        ret->used = d->active_ms >= r->used_day_ms;
        for (int k = 0; k < n_periods; k++)
                ret->periods_used += d->period_active_ms[k] >= r->used_period_ms;
        ret->on_ms = d->on_ms;
        ret->active_ms = d->active_ms;
        ret->interactive_ms = d->interactive_ms;
        ret->on_all_ms = d->on_all_ms;
        if (r->heartbeat_ms > 0 && d->on_all_ms > 0) {
                /* At most ceil(expected): a heartbeat sent twice, or one
                 * stamped just after the day's last interval, must not lift
                 * 在线率 (docs/metrics.md). */
                int64_t cap = (d->on_all_ms + r->heartbeat_ms - 1) / r->heartbeat_ms;

                ret->hb_received = d->hb_count < cap ? (d->hb_count > 0 ? d->hb_count : 0) : cap;
        }
}

void bbt_day_totals_add(struct bbt_day_totals *a, const struct bbt_day_totals *b)
{
        a->powered += b->powered;
        a->used += b->used;
        a->periods_used += b->periods_used;
        a->on_ms += b->on_ms;
        a->active_ms += b->active_ms;
        a->interactive_ms += b->interactive_ms;
        a->hb_received += b->hb_received;
        a->on_all_ms += b->on_all_ms;
}

void bbt_day_totals_sub(struct bbt_day_totals *a, const struct bbt_day_totals *b)
{
        a->powered -= b->powered;
        a->used -= b->used;
        a->periods_used -= b->periods_used;
        a->on_ms -= b->on_ms;
        a->active_ms -= b->active_ms;
        a->interactive_ms -= b->interactive_ms;
        a->hb_received -= b->hb_received;
        a->on_all_ms -= b->on_all_ms;
}

/* ---- the stored rollups ---- */

int64_t bbt_rollup_config_hash(const struct bbt_rollup_config *c)
{
        uint64_t h = c->cal ? bbt_calendar_bells_hash(c->cal) : 0;

        h ^= (uint64_t)(uint32_t)c->margin_min * 0x9e3779b97f4a7c15ull;
        h ^= (uint64_t)(uint32_t)(c->offset_min + 100000) * 0xc2b2ae3d27d4eb4full;
        h ^= (uint64_t)ROLLUP_FORMAT * 0x165667b19e3779f9ull;
        return (int64_t)(h & 0x7fffffffffffffffull);
}

int bbt_rollup_config_check(struct bbt_store *store, const struct bbt_rollup_config *c)
{
        int64_t stored = 0;
        int r = bbt_store_meta_get(store, RULES_KEY, &stored);

        if (r < 0)
                return r;
        return stored == bbt_rollup_config_hash(c) ? 0 : 1;
}

/* Fills the rollups' message history (first_msg_ms, last_msg_ms) from the
 * messages the store still knows, unless it was made under C's offset
 * already: once after the history columns came (schema 3), and when
 * utc_offset changes. Only the raw records (kept raw_retention) know every
 * message: older days keep what they have. */
static int history_check(struct bbt_store *store, const struct bbt_rollup_config *c)
{
        int64_t offset = 0;
        int r = bbt_store_meta_get(store, HISTORY_OFFSET_KEY, &offset);

        if (r == 0 && offset == c->offset_min)
                return 0;
        if (r < 0 && r != -ENOENT)
                return r;
        r = bbt_store_days_history_rebuild(store, c->offset_min);
        return r == 0 ? bbt_store_meta_set(store, HISTORY_OFFSET_KEY, c->offset_min) : r;
}

int bbt_rollup_config_record(struct bbt_store *store, const struct bbt_rollup_config *c)
{
        int r = history_check(store, c);

        return r == 0 ? bbt_store_meta_set(store, RULES_KEY, bbt_rollup_config_hash(c)) : r;
}

/* One terminal being rebuilt: its bells and its days so far. */
struct rebuilt_terminal {
        int64_t id;
        const struct bbt_bells *bells;
        struct bbt_day_set days;
};

struct rebuild {
        const struct bbt_rollup_config *c;
        struct rebuilt_terminal *v; /* sorted by id */
        size_t n, cap;
        struct rebuilt_terminal *last; /* of the previous interval (they come by terminal) */
};

static int rebuild_terminal_cb(void *u, const struct bbt_store_terminal *row)
{
        struct rebuild *rb = u;
        int r = bbt_array_reserve((void **)&rb->v, &rb->cap, rb->n + 1, sizeof(*rb->v));

        if (r < 0)
                return r;
        rb->v[rb->n++] = (struct rebuilt_terminal){
                .id = row->id,
                .bells = rb->c->cal ? bbt_calendar_bells(rb->c->cal, row->county, row->school) : bbt_bells_default(),
        };
        return 0;
}

static int by_id(const void *a, const void *b)
{
        const struct rebuilt_terminal *x = a, *y = b;

        return x->id < y->id ? -1 : x->id > y->id;
}

static int rebuild_usage_cb(void *u, const struct bbt_store_usage *usage)
{
        struct rebuild *rb = u;
        struct rebuilt_terminal key = { .id = usage->terminal_id }, *t = rb->last;
        struct bbt_rollup_rules rules;

        if (rb->n == 0)
                return 0;
        if (!t || t->id != usage->terminal_id)
                t = rb->last = bsearch(&key, rb->v, rb->n, sizeof(*rb->v), by_id);
        if (!t)
                return 0; /* an interval of no known terminal: nothing to count it under */
        rules.bells = t->bells;
        rules.margin_min = rb->c->margin_min;
        rules.offset_min = rb->c->offset_min;
        return bbt_day_set_add_usage(&t->days, &rules, &usage->span);
}

int bbt_rollup_rebuild(struct bbt_store *store, const struct bbt_rollup_config *c)
{
        struct rebuild rb = { .c = c };
        int r;

        r = bbt_store_terminals_each(store, rebuild_terminal_cb, &rb);
        if (r == 0 && rb.n > 1)
                qsort(rb.v, rb.n, sizeof(*rb.v), by_id);
        if (r == 0)
                r = bbt_store_days_clear(store);
        if (r == 0)
                r = bbt_store_usage_each(store, rebuild_usage_cb, &rb);
        for (size_t i = 0; i < rb.n; i++) {
                for (size_t k = 0; r == 0 && k < rb.v[i].days.n; k++)
                        r = bbt_store_day_add(store, rb.v[i].id, &rb.v[i].days.v[k]);
                bbt_day_set_free(&rb.v[i].days);
        }
        free(rb.v);
        if (r == 0)
                r = bbt_rollup_config_record(store, c);
        return r;
}
