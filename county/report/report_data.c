/* What a report works on: the schools and terminals in scope, and their figures from the store's rollups and faults. */
#include "report_data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "dates.h"

/* How far back the idle window may reach to find its school days. */
#define IDLE_LOOKBACK_DAYS 400

/* The registry's schools in the options' county and school (the store
 * returns its terminals filtered already). */
static bool county_ok(const struct bbt_report_data *d, const char *county)
{
        return !d->o->county || strcmp(d->o->county, county) == 0;
}

/* ... and in the options' narrower scope, if any. */
static bool school_ok(const struct bbt_report_data *d, const char *county, const char *code,
                      const struct bbt_school *reg)
{
        return (!d->o->school || strcmp(d->o->school, code) == 0) &&
               (!d->o->school_in || d->o->school_in(d->o->school_in_data, county, code, reg));
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
        size_t c;
        void *np;

        if (n < *cap)
                return 0;
        c = *cap ? *cap * 2 : 64;
        np = realloc(*p, c * size);
        if (!np)
                return -ENOMEM;
        *p = np;
        *cap = c;
        return 0;
}

/* Makes room for at least N elements of SIZE at *P. */
static int reserve(void **p, size_t *cap, size_t n, size_t size)
{
        void *np;

        if (n <= *cap)
                return 0;
        np = realloc(*p, n * size);
        if (!np)
                return -ENOMEM;
        *p = np;
        *cap = n;
        return 0;
}

static int store_terminal_cb(void *u, const struct bbt_store_terminal_brief *t)
{
        struct bbt_report_data *d = u;

        if (grow((void **)&d->st, &d->cap_st, d->n_st, sizeof(*d->st)) < 0)
                return -ENOMEM;
        d->st[d->n_st++] = *t;
        if (t->id > d->max_store_id)
                d->max_store_id = t->id;
        return 0;
}

static ssize_t school_find(const struct bbt_report_data *d, const char *county, const char *code)
{
        /* The registry's terminals come school by school: the last one found first. */
        if (d->school_hint < d->n_schools && strcmp(d->schools[d->school_hint].code, code) == 0 &&
            strcmp(d->schools[d->school_hint].county, county) == 0)
                return (ssize_t)d->school_hint;
        for (size_t i = d->n_schools; i-- > 0;)
                if (strcmp(d->schools[i].code, code) == 0 && strcmp(d->schools[i].county, county) == 0)
                        return (ssize_t)i;
        return -1;
}

/* Whether DAY is a school day of school CODE in COUNTY: the calendar's, or
 * Monday to Friday without one. */
static bool calendar_school_day(const struct bbt_report_data *d, const char *county, const char *code, int32_t day)
{
        return d->cal ? bbt_calendar_is_school_day(d->cal, county, code, day) : bbt_day_weekday(day) <= 5;
}

bool bbt_report_data_school_day(const struct bbt_report_data *d, const struct bbt_report_school *si, int32_t day)
{
        if (day >= d->qfrom && day <= d->to)
                return si->school_day[day - d->qfrom];
        return calendar_school_day(d, si->county, si->code, day);
}

static int school_add(struct bbt_report_data *d, const char *county, const char *code, const struct bbt_school *reg,
                      size_t *ret)
{
        struct bbt_report_school *si;
        size_t n = (size_t)(d->to - d->qfrom + 1), have = 0;
        size_t *of_reg = NULL; /* the registry school's slot in school_of_reg */
        ssize_t found;
        bool shared;

        /* A registry school is only ever added with its entry (the registry's
         * codes are unique), so its index finds it without a search. */
        if (reg && d->reg && reg >= d->reg->schools && reg < d->reg->schools + d->reg->n_schools) {
                if (!d->school_of_reg && !(d->school_of_reg = calloc(d->reg->n_schools, sizeof(*d->school_of_reg))))
                        return -ENOMEM;
                of_reg = &d->school_of_reg[reg - d->reg->schools];
                found = (ssize_t)*of_reg - 1;
        } else {
                found = school_find(d, county, code);
        }
        if (found >= 0) {
                *ret = d->school_hint = (size_t)found;
                return 0;
        }
        if (grow((void **)&d->schools, &d->cap_schools, d->n_schools, sizeof(*d->schools)) < 0)
                return -ENOMEM;
        si = &d->schools[d->n_schools];
        memset(si, 0, sizeof(*si));
        snprintf(si->county, sizeof(si->county), "%s", county);
        snprintf(si->code, sizeof(si->code), "%s", code);
        si->reg = reg;
        si->bells = d->cal ? bbt_calendar_bells(d->cal, county, code) : bbt_bells_default();
        si->school_day = calloc(n, 1);
        if (!si->school_day)
                return -ENOMEM;
        shared = !d->cal || !bbt_calendar_has_own_days(d->cal, code);
        if (shared && d->county_days && strcmp(d->county_days_of, county) == 0) {
                memcpy(si->school_day, d->county_days, n);
        } else {
                for (int32_t day = d->to; day >= d->qfrom; day--)
                        si->school_day[day - d->qfrom] = calendar_school_day(d, county, code, day);
                if (shared) {
                        uint8_t *c = realloc(d->county_days, n);

                        if (!c)
                                return -ENOMEM;
                        d->county_days = c;
                        memcpy(c, si->school_day, n);
                        snprintf(d->county_days_of, sizeof(d->county_days_of), "%s", county);
                }
        }
        si->idle_from = d->qfrom;
        for (int32_t day = d->to; day >= d->qfrom; day--)
                if (si->school_day[day - d->qfrom] && have < (size_t)d->s->idle_window &&
                    ++have == (size_t)d->s->idle_window)
                        si->idle_from = day;
        if (of_reg)
                *of_reg = d->n_schools + 1;
        *ret = d->n_schools++;
        return 0;
}

static int term_add(struct bbt_report_data *d, size_t school, const char *id, const struct bbt_store_terminal_brief *st,
                    const struct bbt_terminal_entry *reg)
{
        struct bbt_report_terminal *t;

        if (grow((void **)&d->terms, &d->cap_terms, d->n_terms, sizeof(*d->terms)) < 0)
                return -ENOMEM;
        t = &d->terms[d->n_terms++];
        memset(t, 0, sizeof(*t));
        snprintf(t->id, sizeof(t->id), "%s", id);
        t->school = school;
        t->st = st;
        t->reg = reg;
        d->schools[school].n_terminals++;
        return 0;
}

/* A terminal is county, school and terminal id, as in its topic: the same
 * school and terminal codes under another county are another terminal. */
static int cmp_store_terminal(const void *a, const void *b)
{
        const struct bbt_store_terminal_brief *x = a, *y = b;
        int r = strcmp(x->school, y->school);

        if (!r)
                r = strcmp(x->terminal, y->terminal);
        return r ? r : strcmp(x->county, y->county);
}

static int cmp_store_terminal_ptr(const void *a, const void *b)
{
        return cmp_store_terminal(*(const struct bbt_store_terminal_brief *const *)a,
                                  *(const struct bbt_store_terminal_brief *const *)b);
}

/* The registry's entry for store terminal ST: the same school and code, of a
 * school of ST's county; NULL if none. */
static const struct bbt_terminal_entry *registry_entry(const struct bbt_report_data *d,
                                                       const struct bbt_store_terminal_brief *st)
{
        const struct bbt_terminal_entry *e = d->reg ? bbt_registry_terminal(d->reg, st->school, st->terminal) : NULL;
        const struct bbt_school *s = e ? bbt_registry_school(d->reg, e->school) : NULL;

        return s && strcmp(s->county, st->county) == 0 ? e : NULL;
}

/* Every terminal in scope: the registry's, and those seen on the wire only. */
static int collect(struct bbt_report_data *d)
{
        const struct bbt_store_terminal_brief **wire = NULL; /* the store's terminals not in the registry */
        size_t *st_of = NULL, n_wire = 0; /* registry terminal → 1 + index into d->st; 0: never reported */
        size_t si;
        int r;

        /* Sized once: growing by doubling copies every row again, and new
         * pages cost a fault each (a county has 20,000 terminals). */
        r = reserve((void **)&d->st, &d->cap_st, (d->reg ? d->reg->n_terminals : 0) + 64, sizeof(*d->st));
        if (r == 0)
                r = bbt_store_terminals_brief_each_in(d->store, &d->scope, store_terminal_cb, d);
        if (r == 0)
                r = reserve((void **)&d->terms, &d->cap_terms, d->n_st + (d->reg ? d->reg->n_terminals : 0) + 1,
                            sizeof(*d->terms));
        if (r < 0)
                return r;
        st_of = calloc((d->reg ? d->reg->n_terminals : 0) + 1, sizeof(*st_of));
        wire = calloc(d->n_st + 1, sizeof(*wire));
        if (!st_of || !wire) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < d->n_st; i++) {
                const struct bbt_terminal_entry *e = registry_entry(d, &d->st[i]);

                if (e)
                        st_of[e - d->reg->terminals] = i + 1;
                else
                        wire[n_wire++] = &d->st[i];
        }
        for (size_t i = 0; r == 0 && d->reg && i < d->reg->n_schools; i++) {
                const struct bbt_school *s = &d->reg->schools[i];

                if (county_ok(d, s->county) && school_ok(d, s->county, s->code, s))
                        r = school_add(d, s->county, s->code, s, &si);
        }
        for (size_t i = 0; r == 0 && d->reg && i < d->reg->n_terminals; i++) {
                const struct bbt_terminal_entry *e = &d->reg->terminals[i];
                const struct bbt_school *s = bbt_registry_school(d->reg, e->school);

                if (!s || !county_ok(d, s->county) || !school_ok(d, s->county, s->code, s))
                        continue;
                r = school_add(d, s->county, s->code, s, &si);
                if (r == 0)
                        r = term_add(d, si, e->id, st_of[i] ? &d->st[st_of[i] - 1] : NULL, e);
        }
        /* Those seen on the wire only, by school, terminal and county. */
        if (n_wire > 0)
                qsort(wire, n_wire, sizeof(*wire), cmp_store_terminal_ptr);
        for (size_t i = 0; r == 0 && i < n_wire; i++) {
                const struct bbt_store_terminal_brief *st = wire[i];
                const struct bbt_school *rs;

                /* Not in the registry and first heard of after the range: it
                 * did not exist then (the range must read the same later). */
                if (st->first_seen_ms >= d->end_ms)
                        continue;
                /* The registry's school only if it is this county's: a school
                 * code published under the wrong county must not bring that
                 * school's name, pupils and area into another county. */
                rs = d->reg ? bbt_registry_school(d->reg, st->school) : NULL;
                if (rs && strcmp(rs->county, st->county) != 0)
                        rs = NULL;
                if (!school_ok(d, st->county, st->school, rs))
                        continue;
                r = school_add(d, st->county, st->school, rs, &si);
                if (r == 0)
                        r = term_add(d, si, st->terminal, st, NULL);
        }
out:
        free(st_of);
        free(wire);
        if (r < 0)
                return r;
        d->by_store_id = calloc((size_t)d->max_store_id + 1, sizeof(*d->by_store_id));
        if (!d->by_store_id)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_terms; i++)
                if (d->terms[i].st)
                        d->by_store_id[d->terms[i].st->id] = i + 1;
        return 0;
}

/* ---- figures ---- */

/* What the idle judgement takes as the terminal's last message (both paths). */
static int64_t idle_last_seen(const struct bbt_report_terminal *t)
{
        return t->last_seen_ms;
}

/* Adds day DAY's on-time of T (a rollup's or the day totals of a school) to
 * SI's after-hours figures, if DAY is in the range. */
static void after_hours_add(const struct bbt_report_data *d, struct bbt_report_school *si, int32_t day,
                            int64_t on_ms, int64_t on_all_ms)
{
        if (day < d->o->from || day > d->to)
                return;
        if (si->school_day[day - d->qfrom])
                si->after_ms[BBT_AFTER_SCHOOL_DAYS] += on_all_ms - on_ms;
        else
                si->after_ms[bbt_day_weekday(day) >= 6 ? BBT_AFTER_WEEKEND : BBT_AFTER_HOLIDAY] += on_all_ms;
}

static void terminal_figures(struct bbt_report_data *d, struct bbt_report_terminal *t,
                             const struct bbt_day_rollup *rows, size_t n)
{
        struct bbt_report_school *si = &d->schools[t->school];
        struct bbt_terminal_days td = {
                .days = rows, .n_days = n, .school_day = si->school_day + (d->o->from - d->qfrom),
                .n_periods = si->bells->n, .intact = t->intact,
        };
        struct bbt_terminal_days idle = td;

        for (size_t i = 0; i < n; i++)
                after_hours_add(d, si, rows[i].day, rows[i].on_ms, rows[i].on_all_ms);
        bbt_rates_add(&t->acc, d->s, d->o->from, d->to, &td);
        idle.school_day = si->school_day + (si->idle_from - d->qfrom);
        t->idle = bbt_idle_judge(d->s, si->idle_from, d->to, &idle, idle_last_seen(t), &t->idle_used);
}

static void flush_buf(struct bbt_report_data *d)
{
        if (d->buf_term == 0)
                return;
        d->terms[d->buf_term - 1].seen_rows = true;
        terminal_figures(d, &d->terms[d->buf_term - 1], d->buf, d->n_buf);
        d->n_buf = 0;
        d->buf_term = 0;
}

/* 1 + the index into d->terms of the terminal STORE_ID, 0 if it is not in scope. */
static size_t term_index(const struct bbt_report_data *d, int64_t store_id)
{
        return store_id >= 0 && store_id <= d->max_store_id ? d->by_store_id[store_id] : 0;
}

const struct bbt_report_terminal *bbt_report_data_terminal(const struct bbt_report_data *d, int64_t store_id)
{
        size_t ti = term_index(d, store_id);

        return ti ? &d->terms[ti - 1] : NULL;
}

static int day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *row)
{
        struct bbt_report_data *d = u;
        size_t ti = term_index(d, terminal_id);

        if (!ti)
                return 0;
        if (ti != d->buf_term)
                flush_buf(d);
        d->buf_term = ti;
        if (grow((void **)&d->buf, &d->cap_buf, d->n_buf, sizeof(*d->buf)) < 0)
                return -ENOMEM;
        d->buf[d->n_buf++] = *row;
        return 0;
}

/* The store gives the faults open at end_ms of the terminals in scope. */
static int fault_open_cb(void *u, const struct bbt_store_fault *f)
{
        struct bbt_report_data *d = u;
        size_t ti = term_index(d, f->terminal_id);

        if (ti)
                d->terms[ti - 1].open_faults++;
        return 0;
}

/* Each terminal's last receive and active times as of the end of the range. */
static int seen_cb(void *u, const struct bbt_store_seen *seen)
{
        struct bbt_report_data *d = u;
        size_t ti = term_index(d, seen->terminal_id);

        if (ti) {
                d->terms[ti - 1].last_seen_ms = seen->last_msg_ms;
                d->terms[ti - 1].last_active_ms = seen->last_active_ms;
        }
        return 0;
}

/* The same to the day: last_seen_ms is the start of the day. */
static int seen_day_cb(void *u, const struct bbt_store_seen_day *seen)
{
        struct bbt_report_data *d = u;
        size_t ti = term_index(d, seen->terminal_id);

        if (ti && seen->day != INT32_MIN)
                d->terms[ti - 1].last_seen_ms = bbt_day_start_ms(seen->day, d->s->offset_min);
        return 0;
}

int64_t bbt_report_data_silent_from(const struct bbt_report_data *d, const struct bbt_report_school *si,
                                    int64_t last_seen_ms)
{
        int32_t last = bbt_day_of_ms(last_seen_ms, d->s->offset_min);
        int days = 0;

        for (int32_t day = last + 1; day <= d->to; day++)
                if (bbt_report_data_school_day(d, si, day) && ++days > d->s->silent_days)
                        return bbt_day_start_ms(day + 1, d->s->offset_min);
        return 0;
}

/* Silent at the end of the range: nothing received for more than
 * silent_days whole school days up to it (a range that ends now leaves today
 * out: the silence opens when such a day is over). A terminal that never
 * reported is counted from the start of the days held, and when it fell
 * silent is not known. */
static void silent_state(const struct bbt_report_data *d, struct bbt_report_terminal *t)
{
        const struct bbt_report_school *si = &d->schools[t->school];
        int64_t since;
        int days = 0;

        if (t->last_seen_ms > 0) {
                since = bbt_report_data_silent_from(d, si, t->last_seen_ms);
                t->silent = since > 0 && since <= d->end_ms;
                t->silent_since_ms = t->silent ? since : 0;
                return;
        }
        for (int32_t day = d->qfrom; day <= d->to; day++)
                if (si->school_day[day - d->qfrom] && bbt_day_start_ms(day + 1, d->s->offset_min) <= d->end_ms)
                        days++;
        t->silent = days > d->s->silent_days;
        t->silent_since_ms = 0;
}

/* Last seen and active as of the end (to the millisecond if TIMES, else
 * last seen to the day), open faults at end_ms, silent terminals, and which
 * are intact. */
static int fault_state(struct bbt_report_data *d, bool times)
{
        struct bbt_store_scope open_at_end = d->scope, upto = d->scope;
        int r;

        upto.to_day = d->to;
        r = times ? bbt_store_seen_each_in(d->store, &upto, seen_cb, d)
                  : bbt_store_seen_days_each_in(d->store, &upto, d->s->offset_min, seen_day_cb, d);
        if (r < 0)
                return r;
        open_at_end.since_ms = open_at_end.until_ms = d->end_ms;
        r = bbt_store_faults_each_in(d->store, &open_at_end, fault_open_cb, d);
        if (r < 0)
                return r;
        for (size_t i = 0; i < d->n_terms; i++) {
                struct bbt_report_terminal *t = &d->terms[i];

                silent_state(d, t);
                t->intact = !t->silent && t->open_faults == 0;
        }
        return 0;
}

/* Each terminal's rates over the range and idle judgement over its window,
 * from the rollups streamed terminal by terminal; the schools' sums. */
static int figures(struct bbt_report_data *d)
{
        struct bbt_store_scope rows = d->scope;
        int r;

        /* Rows are needed from the range's start, or the earliest idle window's. */
        rows.from_day = d->o->from;
        rows.to_day = d->to;
        for (size_t i = 0; i < d->n_schools; i++)
                if (d->schools[i].idle_from < rows.from_day)
                        rows.from_day = d->schools[i].idle_from;
        r = bbt_store_days_each_in(d->store, &rows, day_cb, d);
        if (r < 0)
                return r;
        flush_buf(d);
        for (size_t i = 0; i < d->n_terms; i++) {
                struct bbt_report_terminal *t = &d->terms[i];

                if (!t->seen_rows)
                        terminal_figures(d, t, NULL, 0);
                bbt_rates_merge(&d->schools[t->school].acc, &t->acc);
        }
        return 0;
}

/* ---- figures from the day aggregates ---- */

/* A school by county and code, for bsearch. */
struct school_key {
        const char *county, *code;
        size_t i; /* into d->schools */
};

/* What the aggregate path keeps while it reads (report_data.h's arrays by index). */
struct agg {
        struct bbt_report_data *d;
        struct school_key *by_code;    /* every school, sorted by county, code */
        struct bbt_day_totals *totals; /* per school, over its school days in the range */
        int *powered, *used;           /* per terminal, school days in its idle window */
        size_t cursor;                 /* into by_code: the school of the last row */
        /* The weekly rule: the range's Monday-to-Sunday weeks, from the week of o->from. */
        int32_t monday;                /* of the first week */
        size_t n_weeks;
        uint16_t *week_lessons;        /* [terminal × n_weeks + week]: periods used on its school days in the range */
        int *week_days;                /* [school × n_weeks + week]: its school days in the range */
        /* [school × n_spans + span − span0]: a bit per day of the 32 (as in a
         * day mark) that is a school day of its idle window, of the range. */
        int32_t span0;
        size_t n_spans;
        uint32_t *idle_mask, *range_mask;
        /* [school × n_spans + span − span0][2]: range_mask with a nibble of
         * 0xf per day, over the marks' lesson words. */
        uint64_t *range_nibbles;
        /* [span − span0]: its days cut at the weeks' Mondays, each part as
         * masks over the lesson words and its week. */
        struct week_part {
                uint64_t mask[2];
                size_t week;
        } (*parts)[6];
        uint8_t *n_parts;
};

/* Each bit of BITS (16 days) as a nibble of 0xf: those days' lesson counts in a mark's word. */
static uint64_t nibbles_of(uint32_t bits)
{
        uint64_t x = bits & 0xffff;

        x = (x | x << 24) & 0x000000ff000000ffULL;
        x = (x | x << 12) & 0x000f000f000f000fULL;
        x = (x | x << 6) & 0x0303030303030303ULL;
        x = (x | x << 3) & 0x1111111111111111ULL;
        return x * 0xf;
}

/* The nibbles of X summed in pairs, a byte each (at most 30). */
static uint64_t nibble_pairs(uint64_t x)
{
        return (x & 0x0f0f0f0f0f0f0f0fULL) + (x >> 4 & 0x0f0f0f0f0f0f0f0fULL);
}

static int cmp_school_key(const void *a, const void *b)
{
        const struct school_key *x = a, *y = b;
        int r = strcmp(x->county, y->county);

        return r ? r : strcmp(x->code, y->code);
}

/* A school's days: those of the range that are its school days. */
static int school_span_cb(void *u, const struct bbt_store_school_span *row)
{
        struct agg *a = u;
        ssize_t si = -1;
        int64_t k;
        uint32_t days;

        /* Rows come by span, then county and school: most often the next school after the last. */
        if (++a->cursor < a->d->n_schools) {
                const struct school_key *key = &a->by_code[a->cursor];

                if (strcmp(key->code, row->school) == 0 && strcmp(key->county, row->county) == 0)
                        si = (ssize_t)key->i;
        }
        if (si < 0) {
                struct school_key key = { .county = row->county, .code = row->school }, *found;

                found = a->d->n_schools ? bsearch(&key, a->by_code, a->d->n_schools, sizeof(key), cmp_school_key)
                                        : NULL;
                if (!found)
                        return 0;
                si = (ssize_t)found->i;
                a->cursor = (size_t)(found - a->by_code);
        }
        for (days = row->present; days; days &= days - 1) {
                int i = __builtin_ctz(days);

                after_hours_add(a->d, &a->d->schools[si], row->first_day + i, row->t[i].on_ms, row->t[i].on_all_ms);
        }
        k = (int64_t)(row->first_day >> 5) - a->span0;
        if (k < 0 || (size_t)k >= a->n_spans)
                return 0;
        days = row->present & a->range_mask[(size_t)si * a->n_spans + (size_t)k];
        for (; days; days &= days - 1)
                bbt_day_totals_add(&a->totals[si], &row->t[__builtin_ctz(days)]);
        return 0;
}

/* A's masks of each school's days from FROM (the earliest idle window or the
 * range's start) to d->to. */
static int day_masks(const struct bbt_report_data *d, struct agg *a, int32_t from)
{
        a->span0 = from >> 5;
        a->n_spans = d->to >= from ? (size_t)((d->to >> 5) - a->span0 + 1) : 1;
        a->idle_mask = calloc(d->n_schools * a->n_spans + 1, sizeof(*a->idle_mask));
        a->range_mask = calloc(d->n_schools * a->n_spans + 1, sizeof(*a->range_mask));
        if (!a->idle_mask || !a->range_mask)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_schools; i++) {
                const struct bbt_report_school *si = &d->schools[i];

                for (int32_t day = from < d->qfrom ? d->qfrom : from; day <= d->to; day++) {
                        size_t k = i * a->n_spans + (size_t)((day >> 5) - a->span0);
                        uint32_t bit = 1u << (day & 31);

                        if (!si->school_day[day - d->qfrom])
                                continue;
                        if (day >= si->idle_from)
                                a->idle_mask[k] |= bit;
                        if (day >= d->o->from)
                                a->range_mask[k] |= bit;
                }
        }
        a->range_nibbles = calloc(2 * (d->n_schools * a->n_spans + 1), sizeof(*a->range_nibbles));
        a->parts = calloc(a->n_spans, sizeof(*a->parts));
        a->n_parts = calloc(a->n_spans, sizeof(*a->n_parts));
        if (!a->range_nibbles || !a->parts || !a->n_parts)
                return -ENOMEM;
        for (size_t k = 0; k < d->n_schools * a->n_spans; k++) {
                a->range_nibbles[2 * k] = nibbles_of(a->range_mask[k]);
                a->range_nibbles[2 * k + 1] = nibbles_of(a->range_mask[k] >> 16);
        }
        /* No day of the range is before the first week's Monday. */
        for (size_t k = 0; k < a->n_spans; k++) {
                int32_t off = (a->span0 + (int32_t)k) * BBT_STORE_MARK_DAYS - a->monday;

                for (int i = off < 0 ? -off : 0, e; i < BBT_STORE_MARK_DAYS && a->n_parts[k] < 6; i = e) {
                        struct week_part *p = &a->parts[k][a->n_parts[k]];
                        size_t week = (size_t)((off + i) / 7);

                        if (week >= a->n_weeks)
                                break;
                        e = i + 7 - (off + i) % 7;
                        if (e > BBT_STORE_MARK_DAYS)
                                e = BBT_STORE_MARK_DAYS;
                        for (int day = i; day < e; day++)
                                p->mask[day >> 4] |= 0xfULL << 4 * (day & 15);
                        p->week = week;
                        a->n_parts[k]++;
                }
        }
        return 0;
}

static int day_marks_cb(void *u, const struct bbt_store_day_marks *m)
{
        struct agg *a = u;
        size_t ti = term_index(a->d, m->terminal_id), school;
        uint32_t idle, range;
        uint64_t l[2];
        int64_t k;

        if (!ti)
                return 0;
        school = a->d->terms[ti - 1].school;
        k = (int64_t)(m->first_day >> 5) - a->span0;
        if (k < 0 || (size_t)k >= a->n_spans)
                return 0;
        idle = a->idle_mask[school * a->n_spans + (size_t)k];
        range = a->range_mask[school * a->n_spans + (size_t)k];
        a->powered[ti - 1] += __builtin_popcount(m->powered & idle);
        a->used[ti - 1] += __builtin_popcount(m->used & idle);
        if (!range)
                return 0;
        /* The lessons of the range's school days, a week at a time: a week
         * has at most 7 × 15, so the bytes' sum (the multiplication's top
         * byte) never carries. */
        l[0] = m->lessons[0] & a->range_nibbles[2 * (school * a->n_spans + (size_t)k)];
        l[1] = m->lessons[1] & a->range_nibbles[2 * (school * a->n_spans + (size_t)k) + 1];
        if (!(l[0] | l[1]))
                return 0;
        for (int j = 0; j < a->n_parts[k]; j++) {
                const struct week_part *p = &a->parts[k][j];
                unsigned n = (unsigned)(((nibble_pairs(l[0] & p->mask[0]) + nibble_pairs(l[1] & p->mask[1])) *
                                         0x0101010101010101ULL) >> 56);

                if (n)
                        a->week_lessons[(ti - 1) * a->n_weeks + p->week] += (uint16_t)n;
        }
        return 0;
}

static int school_days_in(const struct bbt_report_data *d, const struct bbt_report_school *si, int32_t from)
{
        int n = 0;

        for (int32_t day = from; day <= d->to; day++)
                n += si->school_day[day - d->qfrom];
        return n;
}

/* The weekly rule as bbt_rates_add() judges it, from the lessons the marks
 * gave: each terminal's weeks (cut by the range) with a school day, and
 * those with enough lessons, into its own acc (with its school days and
 * lessons: what the idle report's below_weekly_rule table shows) and its
 * school's. */
static void weeks_from_aggregates(struct bbt_report_data *d, struct agg *a)
{
        for (size_t i = 0; i < d->n_schools; i++)
                for (int32_t day = d->o->from; day <= d->to; day++)
                        a->week_days[i * a->n_weeks + (size_t)((day - a->monday) / 7)] +=
                                d->schools[i].school_day[day - d->qfrom];
        for (size_t i = 0; i < d->n_terms; i++) {
                struct bbt_report_terminal *t = &d->terms[i];
                struct bbt_report_school *si = &d->schools[t->school];

                for (size_t w = 0; w < a->n_weeks; w++) {
                        int days = a->week_days[t->school * a->n_weeks + w];
                        int64_t lessons = a->week_lessons[i * a->n_weeks + w];

                        if (days == 0)
                                continue;
                        t->acc.terminal_days += days;
                        t->acc.periods_used += lessons;
                        t->acc.weeks_judged++;
                        t->acc.weeks_met += bbt_weekly_rule_met(d->s, lessons, days);
                }
                si->acc.weeks_judged += t->acc.weeks_judged;
                si->acc.weeks_met += t->acc.weeks_met;
        }
}

/* The figures bbt_rates_add() and bbt_idle_judge() would give from every
 * rollup, from the day aggregates: the schools' totals over their school
 * days, each terminal's powered and used days in its idle window, and its
 * weeks under the weekly rule. The terminals' other rates are left out
 * (BBT_NEEDS_TERMINAL_RATES scans rows). */
static int figures_from_aggregates(struct bbt_report_data *d)
{
        struct bbt_store_scope range = d->scope;
        struct agg a = { .d = d };
        int r = -ENOMEM;

        a.by_code = calloc(d->n_schools + 1, sizeof(*a.by_code));
        a.totals = calloc(d->n_schools + 1, sizeof(*a.totals));
        a.powered = calloc(d->n_terms + 1, sizeof(*a.powered));
        a.used = calloc(d->n_terms + 1, sizeof(*a.used));
        a.monday = bbt_week_monday(d->o->from);
        a.n_weeks = d->to >= d->o->from ? (size_t)((d->to - a.monday) / 7 + 1) : 1;
        a.week_lessons = calloc((d->n_terms + 1) * a.n_weeks, sizeof(*a.week_lessons));
        a.week_days = calloc((d->n_schools + 1) * a.n_weeks, sizeof(*a.week_days));
        if (!a.by_code || !a.totals || !a.powered || !a.used || !a.week_lessons || !a.week_days)
                goto out;
        for (size_t i = 0; i < d->n_schools; i++)
                a.by_code[i] = (struct school_key){ d->schools[i].county, d->schools[i].code, i };
        if (d->n_schools > 0)
                qsort(a.by_code, d->n_schools, sizeof(*a.by_code), cmp_school_key);
        range.from_day = d->o->from;
        range.to_day = d->to;
        for (size_t i = 0; i < d->n_schools; i++)
                if (d->schools[i].idle_from < range.from_day)
                        range.from_day = d->schools[i].idle_from;
        r = day_masks(d, &a, range.from_day < d->o->from ? range.from_day : d->o->from);
        if (r < 0)
                goto out;
        a.cursor = SIZE_MAX;
        range.from_day = d->o->from;
        r = bbt_store_school_spans_each_in(d->store, &range, school_span_cb, &a);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < d->n_schools; i++)
                if (d->schools[i].idle_from < range.from_day)
                        range.from_day = d->schools[i].idle_from;
        r = bbt_store_day_marks_each_in(d->store, &range, day_marks_cb, &a);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < d->n_terms; i++) {
                struct bbt_report_terminal *t = &d->terms[i];
                struct bbt_report_school *si = &d->schools[t->school];

                t->idle = bbt_idle_decide(d->s, si->idle_from, school_days_in(d, si, si->idle_from), a.powered[i],
                                          a.used[i], idle_last_seen(t));
                t->idle_used = a.used[i];
                si->acc.terminals++;
                si->acc.intact += t->intact;
        }
        for (size_t i = 0; i < d->n_schools; i++) {
                struct bbt_report_school *si = &d->schools[i];

                if (si->n_terminals > 0)
                        bbt_rates_add_totals(&si->acc, d->s,
                                             (int64_t)si->n_terminals * school_days_in(d, si, d->o->from),
                                             si->bells->n, &a.totals[i]);
        }
        weeks_from_aggregates(d, &a);
        d->from_aggregates = true;
out:
        free(a.by_code);
        free(a.totals);
        free(a.powered);
        free(a.used);
        free(a.week_lessons);
        free(a.week_days);
        free(a.idle_mask);
        free(a.range_mask);
        free(a.range_nibbles);
        free(a.parts);
        free(a.n_parts);
        return r;
}

/* 1 if the store's day aggregates give this report's figures exactly:
 * counted under the report's day rule from rollups cut with its bells and
 * settings; else 0, or a negative errno. */
static int aggregates_fit(struct bbt_report_data *d, unsigned needs)
{
        struct bbt_rollup_config c = { .cal = d->cal, .margin_min = d->s->margin_min, .offset_min = d->s->offset_min };
        struct bbt_day_rule want, have;
        int r;

        if (needs & BBT_NEEDS_TERMINAL_RATES)
                return 0;
        bbt_day_rule_of(d->s, &want);
        r = bbt_store_day_rule_get(d->store, &have);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (memcmp(&want, &have, sizeof(want)) != 0)
                return 0;
        r = bbt_rollup_config_check(d->store, &c);
        return r == 0 ? 1 : r == 1 || r == -ENOENT ? 0 : r;
}

/* The figures, from the aggregates where they fit, else from every rollup. */
static int figures_any(struct bbt_report_data *d, unsigned needs)
{
        int fit = 0;

        if (d->o->scan != BBT_REPORT_SCAN_ROWS) {
                fit = aggregates_fit(d, needs);
                if (fit < 0)
                        return fit;
                if (!fit && d->o->scan == BBT_REPORT_SCAN_AGGREGATES) {
                        snprintf(d->store->error, sizeof(d->store->error),
                                 "the store's day aggregates do not fit this report (its day rule, bells or kind)");
                        return -ESTALE;
                }
        }
        return fit ? figures_from_aggregates(d) : figures(d);
}

int bbt_report_data_gather(struct bbt_report_data *d, const struct bbt_report_options *o, struct bbt_store *store,
                           const struct bbt_registry *reg, const struct bbt_calendar *cal,
                           const struct bbt_metric_settings *s, unsigned needs)
{
        struct bbt_store_scope everything = BBT_STORE_SCOPE_ALL;
        int r;

        memset(d, 0, sizeof(*d));
        d->o = o;
        d->s = s;
        d->reg = reg;
        d->cal = cal;
        d->store = store;
        d->scope = everything;
        d->scope.county = o->county;
        d->scope.school = o->school;
        d->to = o->to;
        d->qfrom = o->from;
        if (d->to - d->qfrom < IDLE_LOOKBACK_DAYS)
                d->qfrom = d->to - IDLE_LOOKBACK_DAYS;
        d->end_ms = bbt_day_start_ms(o->to + 1, s->offset_min);
        if (o->now_ms > 0 && o->now_ms < d->end_ms) {
                d->end_ms = o->now_ms;
                d->live = true;
        }
        r = collect(d);
        if (r == 0 && (needs & (BBT_NEEDS_FAULT_STATE | BBT_NEEDS_FIGURES)))
                r = fault_state(d, (needs & BBT_NEEDS_SEEN_TIMES) || o->scan == BBT_REPORT_SCAN_ROWS);
        if (r == 0 && (needs & BBT_NEEDS_FIGURES))
                r = figures_any(d, needs);
        return r;
}

void bbt_report_data_free(struct bbt_report_data *d)
{
        for (size_t i = 0; i < d->n_schools; i++)
                free(d->schools[i].school_day);
        free(d->schools);
        free(d->school_of_reg);
        free(d->terms);
        free(d->st);
        free(d->county_days);
        free(d->by_store_id);
        free(d->buf);
}
