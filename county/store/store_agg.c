/* What both store backends keep to follow the day aggregates: schools, pending school-day changes, day marks. */
#include "store_agg.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/array.h"

int32_t bbt_agg_school_cached(const struct bbt_agg *a, int64_t terminal_id)
{
        if (terminal_id > 0 && (size_t)terminal_id < a->cap_school_of && a->school_of[terminal_id])
                return a->school_of[terminal_id] - 1;
        return -1;
}

int32_t bbt_agg_school_add(struct bbt_agg *a, int64_t terminal_id, const char *county, const char *school)
{
        bool cache = terminal_id > 0 && terminal_id < (1 << 24);
        int32_t i;
        int r;

        /* From the newest: a school's terminals come together. */
        for (i = (int32_t)a->n_schools - 1; i >= 0; i--)
                if (strcmp(a->schools[i].school, school) == 0 && strcmp(a->schools[i].county, county) == 0)
                        break;
        if (i < 0) {
                struct bbt_agg_school *sc;

                r = bbt_array_reserve((void **)&a->schools, &a->cap_schools, a->n_schools + 1, sizeof(*sc));
                if (r < 0)
                        return r;
                sc = &a->schools[a->n_schools];
                memset(sc, 0, sizeof(*sc));
                strncpy(sc->county, county, sizeof(sc->county) - 1);
                strncpy(sc->school, school, sizeof(sc->school) - 1);
                i = (int32_t)a->n_schools++;
        }
        if (cache) {
                size_t had = a->cap_school_of;

                r = bbt_array_reserve((void **)&a->school_of, &a->cap_school_of, (size_t)terminal_id + 1,
                                      sizeof(*a->school_of));
                if (r < 0)
                        return r;
                memset(a->school_of + had, 0, (a->cap_school_of - had) * sizeof(*a->school_of));
                a->school_of[terminal_id] = i + 1;
        }
        return i;
}

void bbt_agg_forget_terminals(struct bbt_agg *a)
{
        if (a->cap_school_of)
                memset(a->school_of, 0, a->cap_school_of * sizeof(*a->school_of));
}

static size_t pending_slot(const struct bbt_agg_pending *v, size_t cap, int32_t school, int32_t day)
{
        size_t i = ((uint32_t)school * 0x9e3779b1u ^ (uint32_t)day * 0x85ebca6bu) & (cap - 1);

        while (v[i].used && (v[i].school != school || v[i].day != day))
                i = (i + 1) & (cap - 1);
        return i;
}

int bbt_agg_pending_add(struct bbt_agg *a, int32_t school, int32_t day, const struct bbt_day_totals *t)
{
        struct bbt_agg_pending *p;

        if ((a->n_pending + 1) * 2 > a->cap_pending) {
                size_t cap = a->cap_pending ? a->cap_pending * 2 : 256;
                struct bbt_agg_pending *v = calloc(cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < a->cap_pending; i++)
                        if (a->pending[i].used)
                                v[pending_slot(v, cap, a->pending[i].school, a->pending[i].day)] = a->pending[i];
                free(a->pending);
                a->pending = v;
                a->cap_pending = cap;
        }
        p = &a->pending[pending_slot(a->pending, a->cap_pending, school, day)];
        if (!p->used) {
                *p = (struct bbt_agg_pending){ .used = true, .school = school, .day = day };
                a->n_pending++;
        }
        bbt_day_totals_add(&p->t, t);
        return 0;
}

void bbt_agg_pending_drop(struct bbt_agg *a)
{
        if (a->n_pending)
                memset(a->pending, 0, a->cap_pending * sizeof(*a->pending));
        a->n_pending = 0;
}

void bbt_agg_free(struct bbt_agg *a)
{
        free(a->schools);
        free(a->school_of);
        free(a->pending);
        memset(a, 0, sizeof(*a));
}

static bool totals_zero(const struct bbt_day_totals *t)
{
        static const struct bbt_day_totals zero;

        return memcmp(t, &zero, sizeof(zero)) == 0;
}

int bbt_agg_judge(const struct bbt_day_rule *rule, int32_t day, const struct bbt_day_rollup *before,
                  const struct bbt_day_rollup *after, struct bbt_day_totals *change, struct bbt_agg_mark *mark)
{
        struct bbt_day_totals b, now;
        int64_t bit = (int64_t)1 << ((uint32_t)day & (BBT_STORE_MARK_DAYS - 1));
        unsigned shift = 4 * ((uint32_t)day & 15);
        uint64_t nibble = (uint64_t)0xf << shift, lessons;
        bool hi = ((uint32_t)day & 16) != 0;

        bbt_day_totals_of(rule, after, BBT_PERIODS_MAX, change);
        bbt_day_totals_of(rule, before, BBT_PERIODS_MAX, &b);
        bbt_day_totals_sub(change, &b);
        if (totals_zero(change))
                return 0;
        if (change->powered == 0 && change->used == 0 && change->periods_used == 0)
                return 1;
        bbt_day_totals_of(rule, after, BBT_PERIODS_MAX, &now);
        lessons = (uint64_t)now.periods_used << shift;
        *mark = (struct bbt_agg_mark){
                .span = day >= 0 ? day / BBT_STORE_MARK_DAYS
                                 : -((-(int64_t)day + BBT_STORE_MARK_DAYS - 1) / BBT_STORE_MARK_DAYS),
                .bit = bit,
                .powered = now.powered ? bit : 0,
                .used = now.used ? bit : 0,
                .lo_mask = hi ? 0 : (int64_t)nibble,
                .hi_mask = hi ? (int64_t)nibble : 0,
                .lo = hi ? 0 : (int64_t)lessons,
                .hi = hi ? (int64_t)lessons : 0,
        };
        return 2;
}

void bbt_day_rollup_before(const struct bbt_day_rollup *after, const struct bbt_day_rollup *delta,
                           struct bbt_day_rollup *ret)
{
        *ret = *after;
        ret->on_ms -= delta->on_ms;
        ret->active_ms -= delta->active_ms;
        ret->interactive_ms -= delta->interactive_ms;
        ret->hb_count -= delta->hb_count;
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                ret->period_active_ms[k] -= delta->period_active_ms[k];
        ret->on_all_ms -= delta->on_all_ms;
}

const char *const bbt_agg_rule_keys[BBT_AGG_RULE_KEYS] = { "day_rule.used_day_ms", "day_rule.used_period_ms",
                                                           "day_rule.heartbeat_ms" };

int64_t *bbt_agg_rule_field(struct bbt_day_rule *r, size_t i)
{
        return i == 0 ? &r->used_day_ms : i == 1 ? &r->used_period_ms : &r->heartbeat_ms;
}

int bbt_agg_rule_read(struct bbt_store *s, struct bbt_day_rule *ret)
{
        int e = 0;

        for (size_t i = 0; e == 0 && i < BBT_AGG_RULE_KEYS; i++)
                e = s->ops->meta_get(s, bbt_agg_rule_keys[i], bbt_agg_rule_field(ret, i));
        if (e == -ENOENT)
                snprintf(s->error, sizeof(s->error), "no day rule recorded");
        return e;
}

int bbt_agg_rule_write(struct bbt_store *s, const struct bbt_day_rule *r)
{
        int e = 0;

        for (size_t i = 0; e == 0 && i < BBT_AGG_RULE_KEYS; i++)
                e = s->ops->meta_set(s, bbt_agg_rule_keys[i], *bbt_agg_rule_field((struct bbt_day_rule *)r, i));
        return e;
}

int bbt_agg_rule_cached(struct bbt_store *s, bool *has, struct bbt_day_rule *cache, struct bbt_day_rule *ret)
{
        struct bbt_day_rule r;
        int e;

        if (!*has) {
                e = bbt_agg_rule_read(s, &r);
                if (e < 0)
                        return e;
                *cache = r;
                *has = true;
        }
        *ret = *cache;
        return 0;
}

int bbt_agg_loss_remnants(struct bbt_store *s, const struct bbt_store_loss *l, int64_t from, int64_t to)
{
        int r = 0;

        if (from > l->from) {
                struct bbt_store_loss left = *l;

                left.to = from - 1;
                r = s->ops->loss_add(s, &left);
        }
        if (r == 0 && to < l->to) {
                struct bbt_store_loss right = *l;

                right.from = to + 1;
                r = s->ops->loss_add(s, &right);
        }
        return r;
}

int64_t bbt_agg_span_of(int32_t day)
{
        return day >= 0 ? day / BBT_STORE_MARK_DAYS : -((-(int64_t)day + BBT_STORE_MARK_DAYS - 1) / BBT_STORE_MARK_DAYS);
}

int64_t *bbt_agg_totals_field(struct bbt_day_totals *t, int k)
{
        static const size_t offset[BBT_AGG_SPAN_VALUES] = {
                offsetof(struct bbt_day_totals, powered),        offsetof(struct bbt_day_totals, used),
                offsetof(struct bbt_day_totals, periods_used),   offsetof(struct bbt_day_totals, on_ms),
                offsetof(struct bbt_day_totals, active_ms),      offsetof(struct bbt_day_totals, interactive_ms),
                offsetof(struct bbt_day_totals, hb_received),    offsetof(struct bbt_day_totals, on_all_ms),
        };

        return (int64_t *)((char *)t + offset[k]);
}

size_t bbt_agg_span_encode(const struct bbt_agg_span *sd, uint8_t *out)
{
        size_t n = 0;

        for (int i = 0; i < BBT_STORE_MARK_DAYS; i++) {
                if (!(sd->present >> i & 1))
                        continue;
                for (int k = 0; k < BBT_AGG_SPAN_VALUES; k++, n += 8) {
                        uint64_t v = htole64((uint64_t)*bbt_agg_totals_field((struct bbt_day_totals *)&sd->t[i], k));

                        memcpy(out + n, &v, sizeof(v));
                }
        }
        return n;
}

int bbt_agg_span_decode(uint32_t present, const uint8_t *p, size_t len, struct bbt_agg_span *sd)
{
        if (len != (size_t)__builtin_popcount(present) * BBT_AGG_SPAN_VALUES * 8)
                return -EINVAL;
        memset(sd, 0, sizeof(*sd));
        sd->present = present;
        for (int i = 0; i < BBT_STORE_MARK_DAYS; i++) {
                if (!(present >> i & 1))
                        continue;
                for (int k = 0; k < BBT_AGG_SPAN_VALUES; k++, p += 8) {
                        uint64_t v;

                        memcpy(&v, p, sizeof(v));
                        *bbt_agg_totals_field(&sd->t[i], k) = (int64_t)le64toh(v);
                }
        }
        return 0;
}

void bbt_agg_span_add(struct bbt_agg_span *to, const struct bbt_agg_span *from)
{
        for (uint32_t b = from->present; b; b &= b - 1) {
                int d = __builtin_ctz(b);

                to->present |= 1u << d;
                bbt_day_totals_add(&to->t[d], &from->t[d]);
        }
}

uint32_t bbt_agg_span_days_in(int64_t first_day, int64_t from, int64_t to)
{
        int64_t lo = from - first_day, hi = to - first_day;
        uint64_t in = 0xffffffffu;

        if (hi < BBT_STORE_MARK_DAYS - 1)
                in &= hi < 0 ? 0 : ((uint64_t)2 << hi) - 1;
        if (lo > 0)
                in &= lo >= BBT_STORE_MARK_DAYS ? 0 : ~(((uint64_t)1 << lo) - 1);
        return (uint32_t)in;
}

int bbt_agg_span_rows_next(struct bbt_agg_span_rows *v, int64_t span, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_school_day *d), void *u,
                           struct bbt_agg_span_row **ret)
{
        int r = 0;

        if (v->n && span != v->span)
                r = bbt_agg_span_rows_give(v, scope, cb, u);
        if (r == 0)
                r = bbt_array_reserve((void **)&v->row, &v->cap, v->n + 1, sizeof(*v->row));
        if (r != 0)
                return r;
        v->span = span;
        *ret = &v->row[v->n++];
        return 0;
}

int bbt_agg_span_rows_give(struct bbt_agg_span_rows *v, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_school_day *d), void *u)
{
        int r = 0;

        for (int i = 0; r == 0 && i < BBT_STORE_MARK_DAYS; i++) {
                int64_t day = v->span * BBT_STORE_MARK_DAYS + i;

                if (day < scope->from_day || day > scope->to_day)
                        continue;
                for (size_t k = 0; r == 0 && k < v->n; k++) {
                        struct bbt_store_school_day d;

                        if (!(v->row[k].sd.present >> i & 1))
                                continue;
                        memcpy(d.county, v->row[k].county, sizeof(d.county));
                        memcpy(d.school, v->row[k].school, sizeof(d.school));
                        d.day = (int32_t)day;
                        d.t = v->row[k].sd.t[i];
                        r = cb(u, &d);
                }
        }
        v->n = 0;
        return r;
}
