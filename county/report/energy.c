/* After-hours on-time and nights left on, from the stored usage intervals (docs/metrics.md, "After-hours energy"). */
#include "energy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dates.h"
#include "rollup.h"

/* At most this many days in one call: ten years. */
#define RANGE_DAYS_MAX 3660

const char *bbt_energy_kind_code(enum bbt_energy_kind k)
{
        static const char *const codes[BBT_ENERGY__COUNT] = { "evening", "night", "weekend", "holiday" };

        return (unsigned)k < BBT_ENERGY__COUNT ? codes[k] : "?";
}

const char *bbt_energy_kind_name(enum bbt_energy_kind k, bool chinese)
{
        static const char *const zh[BBT_ENERGY__COUNT] = { "晚间", "夜间", "周末", "节假日" };
        static const char *const en[BBT_ENERGY__COUNT] = { "Evening", "Night", "Weekend", "Holiday" };

        if ((unsigned)k >= BBT_ENERGY__COUNT)
                return "?";
        return chinese ? zh[k] : en[k];
}

static int64_t max64(int64_t a, int64_t b)
{
        return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
        return a < b ? a : b;
}

/* The length of [a0, a1) ∩ [b0, b1) ∩ [c0, c1). */
static int64_t overlap3(int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t c0, int64_t c1)
{
        int64_t lo = max64(a0, max64(b0, c0)), hi = min64(a1, min64(b1, c1));

        return hi > lo ? hi - lo : 0;
}

struct energy_run {
        const struct bbt_energy_rules *r;
        int32_t from, to;
        int64_t since, until;     /* the days' instants [since, until) */
        struct bbt_store_terminal_brief *t;
        struct bbt_energy_terminal *row;
        size_t n, cap;
        size_t cur;               /* the terminal whose intervals come now; n: none yet */
        uint8_t *nights;          /* cur's nights on, a byte per day FROM..TO */
        const struct bbt_bells *bells;
};

static int terminal_add(void *u, const struct bbt_store_terminal_brief *t)
{
        struct energy_run *e = u;

        if (e->n == e->cap) {
                size_t cap = e->cap ? 2 * e->cap : 256;
                void *a = realloc(e->t, cap * sizeof(*e->t));

                if (!a)
                        return -ENOMEM;
                e->t = a;
                a = realloc(e->row, cap * sizeof(*e->row));
                if (!a)
                        return -ENOMEM;
                e->row = a;
                e->cap = cap;
        }
        e->t[e->n] = *t;
        e->n++;
        return 0;
}

static bool school_day(const struct energy_run *e, const struct bbt_store_terminal_brief *t, int32_t day)
{
        if (e->r->cal)
                return bbt_calendar_is_school_day(e->r->cal, t->county, t->school, day);
        return bbt_day_weekday(day) <= 5;
}

/* The nights of the terminal E->cur into its row. */
static void nights_close(struct energy_run *e)
{
        struct bbt_energy_terminal *row;

        if (e->cur >= e->n)
                return;
        row = &e->row[e->cur];
        for (int32_t d = e->from; d <= e->to; d++)
                if (e->nights[d - e->from]) {
                        row->nights_on++;
                        row->last_night = d;
                }
        memset(e->nights, 0, (size_t)(e->to - e->from + 1));
}

static size_t terminal_find(const struct energy_run *e, int64_t id)
{
        size_t lo = 0, hi = e->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (e->t[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < e->n && e->t[lo].id == id ? lo : e->n;
}

static int interval_add(void *u, const struct bbt_store_usage *usage)
{
        struct energy_run *e = u;
        const struct bbt_energy_rules *r = e->r;
        const struct bbt_store_terminal_brief *t;
        struct bbt_energy_terminal *row;
        struct bbt_rollup_rules rules;
        int64_t s = usage->span.start_ms, end = usage->span.end_ms, a, b;
        const int64_t ns = r->night_start_min * BBT_MS_PER_MIN, ne = r->night_end_min * BBT_MS_PER_MIN;

        if (e->cur >= e->n || e->t[e->cur].id != usage->terminal_id) {
                /* The store gives the intervals by terminal (store.h). */
                nights_close(e);
                e->cur = terminal_find(e, usage->terminal_id);
                if (e->cur >= e->n)
                        return 0;
                e->bells = e->r->cal ? bbt_calendar_bells(e->r->cal, e->t[e->cur].county, e->t[e->cur].school)
                                     : bbt_bells_default();
        }
        if (end <= s)
                return 0;
        t = &e->t[e->cur];
        row = &e->row[e->cur];

        /* The nights it touches: that of the day before its start to that of its last day. */
        for (int32_t d = bbt_day_of_ms(s, r->offset_min) - 1; d <= bbt_day_of_ms(end - 1, r->offset_min); d++) {
                int64_t d0 = bbt_day_start_ms(d, r->offset_min);

                if (d >= e->from && d <= e->to && overlap3(s, end, d0 + ns, d0 + BBT_MS_PER_DAY + ne, s, end) > 0)
                        e->nights[d - e->from] = 1;
        }

        /* The on-time of the days FROM..TO, each piece by kind. */
        a = max64(s, e->since);
        b = min64(end, e->until);
        rules = (struct bbt_rollup_rules){ .bells = e->bells, .margin_min = r->margin_min,
                                           .offset_min = r->offset_min };
        while (a < b) {
                int32_t day = bbt_day_of_ms(a, r->offset_min);
                int64_t d0 = bbt_day_start_ms(day, r->offset_min), d1 = d0 + BBT_MS_PER_DAY;
                int64_t pb = min64(b, d1), ws, we, in, night;

                if (!school_day(e, t, day)) {
                        row->after_ms[bbt_day_weekday(day) >= 6 ? BBT_ENERGY_WEEKEND : BBT_ENERGY_HOLIDAY] += pb - a;
                } else {
                        bbt_rollup_window(&rules, day, &ws, &we);
                        in = overlap3(a, pb, ws, we, a, pb);
                        night = overlap3(a, pb, d0, d0 + ne, a, pb) - overlap3(a, pb, d0, d0 + ne, ws, we) +
                                overlap3(a, pb, d0 + ns, d1, a, pb) - overlap3(a, pb, d0 + ns, d1, ws, we);
                        row->school_ms += in;
                        row->after_ms[BBT_ENERGY_NIGHT] += night;
                        row->after_ms[BBT_ENERGY_EVENING] += pb - a - in - night;
                }
                a = pb;
        }
        return 0;
}

int bbt_energy_each(struct bbt_store *store, const struct bbt_energy_rules *r, const struct bbt_store_scope *scope,
                    int (*cb)(void *u, const struct bbt_energy_terminal *t), void *u)
{
        struct energy_run e = { .r = r };
        struct bbt_store_scope q;
        int ret;

        if (!r || !scope || scope->from_day > scope->to_day ||
            (int64_t)scope->to_day - scope->from_day >= RANGE_DAYS_MAX || r->night_end_min < 0 ||
            r->night_end_min >= r->night_start_min || r->night_start_min > 24 * 60)
                return -EINVAL;
        e.from = scope->from_day;
        e.to = scope->to_day;
        e.since = bbt_day_start_ms(e.from, r->offset_min);
        e.until = bbt_day_start_ms(e.to + 1, r->offset_min);
        e.nights = calloc((size_t)(e.to - e.from + 1), 1);
        if (!e.nights)
                return -ENOMEM;

        q = *scope;
        q.since_ms = e.since;
        q.until_ms = e.until + r->night_end_min * BBT_MS_PER_MIN; /* the night of TO */
        ret = bbt_store_terminals_brief_each_in(store, &q, terminal_add, &e);
        if (ret < 0)
                goto out;
        for (size_t i = 0; i < e.n; i++)
                e.row[i] = (struct bbt_energy_terminal){ .terminal_id = e.t[i].id, .county = e.t[i].county,
                                                         .school = e.t[i].school, .terminal = e.t[i].terminal,
                                                         .last_night = INT32_MIN };
        e.cur = e.n;
        if (e.n > 0) {
                ret = bbt_store_usage_each_in(store, &q, interval_add, &e);
                if (ret < 0)
                        goto out;
                nights_close(&e);
        }
        for (size_t i = 0; i < e.n && ret == 0; i++) {
                struct bbt_energy_terminal *row = &e.row[i];

                for (int k = 0; k < BBT_ENERGY__COUNT; k++)
                        row->after_hours_ms += row->after_ms[k];
                ret = cb(u, row);
        }
out:
        free(e.t);
        free(e.row);
        free(e.nights);
        return ret;
}

int bbt_energy_watts_parse(const char *s, struct bbt_energy_watts *ret, char *err, size_t err_size)
{
        const char *sep = ", ;\t";
        struct bbt_energy_watts w = { .watts = ret->watts };

        while (s && *s) {
                size_t len = strcspn(s, sep), klen;
                const char *eq = memchr(s, '=', len);
                char num[16], *end;
                long v;

                if (len == 0) {
                        s++;
                        continue;
                }
                klen = eq ? (size_t)(eq - s) : 0;
                if (!eq || klen == 0 || klen >= sizeof(w.k[0].kind) || len - klen - 1 == 0 ||
                    len - klen - 1 >= sizeof(num)) {
                        snprintf(err, err_size, "expected KIND=WATTS items (board=250, projector=330), got \"%.*s\"",
                                 (int)len, s);
                        return -EINVAL;
                }
                memcpy(num, eq + 1, len - klen - 1);
                num[len - klen - 1] = '\0';
                v = strtol(num, &end, 10);
                if (*end || end == num || v < 1 || v > 10000) {
                        snprintf(err, err_size, "%.*s: expected watts from 1 to 10000, got \"%s\"", (int)klen, s, num);
                        return -EINVAL;
                }
                for (int i = 0; i < w.n; i++)
                        if (strlen(w.k[i].kind) == klen && memcmp(w.k[i].kind, s, klen) == 0) {
                                snprintf(err, err_size, "kind %.*s is given twice", (int)klen, s);
                                return -EINVAL;
                        }
                if (w.n == BBT_ENERGY_KINDS_MAX) {
                        snprintf(err, err_size, "at most %d kinds", BBT_ENERGY_KINDS_MAX);
                        return -EINVAL;
                }
                memcpy(w.k[w.n].kind, s, klen);
                w.k[w.n].kind[klen] = '\0';
                w.k[w.n++].watts = (int)v;
                s += len;
        }
        *ret = w;
        return 0;
}

char *bbt_energy_watts_format(const struct bbt_energy_watts *w, char *buf, size_t size)
{
        size_t at = 0;

        if (size > 0)
                buf[0] = '\0';
        for (int i = 0; i < w->n && at < size; i++) {
                int n = snprintf(buf + at, size - at, "%s%s=%d", i ? ", " : "", w->k[i].kind, w->k[i].watts);

                if (n < 0)
                        break;
                at += (size_t)n;
        }
        return buf;
}

int bbt_energy_watts_of(const struct bbt_energy_watts *w, const char *kind)
{
        for (int i = 0; kind && *kind && i < w->n; i++)
                if (strcmp(w->k[i].kind, kind) == 0)
                        return w->k[i].watts;
        return w->watts;
}
