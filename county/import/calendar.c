/* School calendar and bells: per-scope merged day ranges searched by bisection, CSV import, schedule hash. */
#include "calendar.h"
#include "bbt/base.h"
#include "bbt/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dates.h"
#include "csv.h"

#define KINDS 5
/* The kinds that decide whether a day is a school day. */
#define SCHOOL_KINDS 3

static const struct bbt_bells default_bells = {
        .n = 8,
        .p = {
                { 8 * 60, 8 * 60 + 40 },        /* 08:00-08:40 */
                { 8 * 60 + 50, 9 * 60 + 30 },   /* 08:50-09:30 */
                { 9 * 60 + 50, 10 * 60 + 30 },  /* 09:50-10:30, after the 20-minute 大课间 */
                { 10 * 60 + 50, 11 * 60 + 30 }, /* 10:50-11:30, after 眼保健操 */
                { 14 * 60, 14 * 60 + 40 },      /* 14:00-14:40 */
                { 14 * 60 + 50, 15 * 60 + 30 }, /* 14:50-15:30 */
                { 15 * 60 + 40, 16 * 60 + 20 }, /* 15:40-16:20 */
                { 16 * 60 + 30, 17 * 60 + 10 }, /* 16:30-17:10 */
        },
};

const struct bbt_bells *bbt_bells_default(void)
{
        return &default_bells;
}

struct range {
        int32_t from, to; /* inclusive */
};

/* Sorted, merged (neither overlapping nor adjacent) day ranges. */
struct range_set {
        struct range *r;
        size_t n, cap;
};

struct scope {
        char code[BBT_ID_MAX + 1];
        struct range_set set[KINDS]; /* by enum bbt_calendar_kind */
        size_t pending[KINDS];       /* ranges an import is about to add */
        bool has_bells;
        struct bbt_bells bells;
        bool has_power;
        struct bbt_power_times power;
};

struct bbt_calendar {
        struct scope **scope; /* sorted by code */
        size_t n, cap;
        bool has_power;
};

int bbt_calendar_new(struct bbt_calendar **ret)
{
        struct bbt_calendar *cal = calloc(1, sizeof(*cal));

        if (!cal)
                return -ENOMEM;
        *ret = cal;
        return 0;
}

void bbt_calendar_free(struct bbt_calendar *cal)
{
        if (!cal)
                return;
        for (size_t i = 0; i < cal->n; i++) {
                for (int k = 0; k < KINDS; k++)
                        free(cal->scope[i]->set[k].r);
                free(cal->scope[i]);
        }
        free(cal->scope);
        free(cal);
}

/* Index of the first scope whose code is >= CODE. */
static size_t scope_lower_bound(const struct bbt_calendar *cal, const char *code)
{
        size_t lo = 0, hi = cal->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strcmp(cal->scope[mid]->code, code) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static const struct scope *scope_find(const struct bbt_calendar *cal, const char *code)
{
        size_t i;

        if (!code || !cal->n)
                return NULL;
        i = scope_lower_bound(cal, code);
        return i < cal->n && strcmp(cal->scope[i]->code, code) == 0 ? cal->scope[i] : NULL;
}

/* The scope CODE (valid), created empty if new. An empty scope changes no
 * answer, so creating one ahead of a failing import is harmless. */
static int scope_get(struct bbt_calendar *cal, const char *code, struct scope **ret)
{
        size_t i = scope_lower_bound(cal, code);
        struct scope *s;

        if (i < cal->n && strcmp(cal->scope[i]->code, code) == 0) {
                *ret = cal->scope[i];
                return 0;
        }
        if (cal->n == cal->cap) {
                size_t ncap = cal->cap ? cal->cap * 2 : 8;
                struct scope **ns = realloc(cal->scope, ncap * sizeof(*ns));

                if (!ns)
                        return -ENOMEM;
                cal->scope = ns;
                cal->cap = ncap;
        }
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        memcpy(s->code, code, strlen(code) + 1);
        memmove(cal->scope + i + 1, cal->scope + i, (cal->n - i) * sizeof(*cal->scope));
        cal->scope[i] = s;
        cal->n++;
        *ret = s;
        return 0;
}

static int range_reserve(struct range_set *rs, size_t more)
{
        size_t ncap;
        struct range *nr;

        if (rs->n + more <= rs->cap)
                return 0;
        ncap = rs->cap ? rs->cap : 8;
        while (ncap < rs->n + more)
                ncap *= 2;
        nr = realloc(rs->r, ncap * sizeof(*nr));
        if (!nr)
                return -ENOMEM;
        rs->r = nr;
        rs->cap = ncap;
        return 0;
}

static int range_cmp(const void *a, const void *b)
{
        const struct range *x = a, *y = b;

        return x->from < y->from ? -1 : x->from > y->from;
}

/* Sorts and merges RS in place. */
static void range_normalize(struct range_set *rs)
{
        size_t out = 0;

        if (rs->n < 2)
                return;
        qsort(rs->r, rs->n, sizeof(*rs->r), range_cmp);
        for (size_t i = 1; i < rs->n; i++) {
                if ((int64_t)rs->r[i].from <= (int64_t)rs->r[out].to + 1) {
                        if (rs->r[i].to > rs->r[out].to)
                                rs->r[out].to = rs->r[i].to;
                } else {
                        rs->r[++out] = rs->r[i];
                }
        }
        rs->n = out + 1;
}

static bool range_contains(const struct range_set *rs, int32_t day)
{
        size_t lo = 0, hi = rs->n;

        /* The last range starting on or before DAY. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (rs->r[mid].from <= day)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo > 0 && day <= rs->r[lo - 1].to;
}

int bbt_calendar_add(struct bbt_calendar *cal, const char *scope, enum bbt_calendar_kind kind, int32_t from,
                     int32_t to)
{
        struct scope *s;
        struct range_set *rs;
        int r;

        if (!scope || !bbt_id_valid(scope) || (unsigned)kind >= KINDS || to < from)
                return -EINVAL;
        r = scope_get(cal, scope, &s);
        if (r < 0)
                return r;
        rs = &s->set[kind];
        r = range_reserve(rs, 1);
        if (r < 0)
                return r;
        rs->r[rs->n++] = (struct range){ from, to };
        range_normalize(rs);
        return 0;
}

static int check_bells(const struct bbt_bells *b)
{
        if (b->n < 1 || b->n > BBT_PERIODS_MAX)
                return -EINVAL;
        for (int i = 0; i < b->n; i++) {
                if (b->p[i].start_min < 0 || b->p[i].end_min > 24 * 60 || b->p[i].start_min >= b->p[i].end_min)
                        return -EINVAL;
                if (i > 0 && b->p[i].start_min < b->p[i - 1].end_min)
                        return -EINVAL;
        }
        return 0;
}

int bbt_calendar_set_bells(struct bbt_calendar *cal, const char *scope, const struct bbt_bells *bells)
{
        struct scope *s;
        int r;

        if (!scope || !bbt_id_valid(scope) || !bells || check_bells(bells) < 0)
                return -EINVAL;
        r = scope_get(cal, scope, &s);
        if (r < 0)
                return r;
        memset(&s->bells, 0, sizeof(s->bells));
        s->bells.n = bells->n;
        memcpy(s->bells.p, bells->p, (size_t)bells->n * sizeof(bells->p[0]));
        s->has_bells = true;
        return 0;
}

bool bbt_calendar_is_school_day(const struct bbt_calendar *cal, const char *county, const char *school,
                                int32_t day)
{
        const struct scope *c = scope_find(cal, county), *s = scope_find(cal, school);
        bool in_term, holiday = false, workday = false;

        if (s && s->set[BBT_CAL_TERM].n)
                in_term = range_contains(&s->set[BBT_CAL_TERM], day);
        else if (c && c->set[BBT_CAL_TERM].n)
                in_term = range_contains(&c->set[BBT_CAL_TERM], day);
        else
                in_term = true;
        if (!in_term)
                return false;
        if (c) {
                holiday = range_contains(&c->set[BBT_CAL_HOLIDAY], day);
                workday = range_contains(&c->set[BBT_CAL_WORKDAY], day);
        }
        if (s) {
                holiday = holiday || range_contains(&s->set[BBT_CAL_HOLIDAY], day);
                workday = workday || range_contains(&s->set[BBT_CAL_WORKDAY], day);
        }
        return workday || (bbt_day_weekday(day) <= 5 && !holiday);
}

bool bbt_calendar_has_own_days(const struct bbt_calendar *cal, const char *school)
{
        const struct scope *s = scope_find(cal, school);

        for (int k = 0; s && k < SCHOOL_KINDS; k++)
                if (s->set[k].n)
                        return true;
        return false;
}

const struct bbt_bells *bbt_calendar_bells(const struct bbt_calendar *cal, const char *county, const char *school)
{
        const struct scope *s = scope_find(cal, school);

        if (s && s->has_bells)
                return &s->bells;
        s = scope_find(cal, county);
        if (s && s->has_bells)
                return &s->bells;
        return &default_bells;
}

static uint64_t fnv_int(uint64_t h, int v)
{
        unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                               (unsigned char)(v >> 24) };

        return bbt_fnv1a(h, b, sizeof(b));
}

static uint64_t hash_bells(uint64_t h, const struct bbt_bells *b)
{
        h = fnv_int(h, b->n);
        for (int i = 0; i < b->n; i++) {
                h = fnv_int(h, b->p[i].start_min);
                h = fnv_int(h, b->p[i].end_min);
        }
        return h;
}

uint64_t bbt_calendar_bells_hash(const struct bbt_calendar *cal)
{
        uint64_t h = BBT_FNV1A_BASIS;

        /* The default first, so a new built-in schedule changes the hash too;
         * then the scopes in code order, each code with its terminator. */
        h = hash_bells(h, &default_bells);
        for (size_t i = 0; i < cal->n; i++) {
                const struct scope *s = cal->scope[i];

                if (!s->has_bells)
                        continue;
                h = bbt_fnv1a(h, s->code, strlen(s->code) + 1);
                h = hash_bells(h, &s->bells);
        }
        return h;
}

/* ---- calendar CSV ---- */

enum { DC_SCOPE, DC_KIND, DC_FROM, DC_TO, DC_NAME, DC__COUNT };
static const struct bbt_csv_column day_columns[DC__COUNT] = {
        [DC_SCOPE] = { "scope", { "范围", "适用范围" }, true },
        [DC_KIND] = { "kind", { "类型" }, true },
        [DC_FROM] = { "from", { "开始日期", "起始日期", "日期" }, true },
        [DC_TO] = { "to", { "结束日期" }, false },
        [DC_NAME] = { "name", { "名称", "备注" }, false },
};

static const struct {
        const char *text;
        enum bbt_calendar_kind kind;
} kind_words[] = {
        { "term", BBT_CAL_TERM },       { "学期", BBT_CAL_TERM },       { "holiday", BBT_CAL_HOLIDAY },
        { "假期", BBT_CAL_HOLIDAY },    { "节假日", BBT_CAL_HOLIDAY },  { "放假", BBT_CAL_HOLIDAY },
        { "寒假", BBT_CAL_HOLIDAY },    { "暑假", BBT_CAL_HOLIDAY },    { "workday", BBT_CAL_WORKDAY },
        { "调休", BBT_CAL_WORKDAY },    { "上课", BBT_CAL_WORKDAY },    { "补课", BBT_CAL_WORKDAY },
        { "补班", BBT_CAL_WORKDAY },    { "halfday", BBT_CAL_HALFDAY }, { "半天", BBT_CAL_HALFDAY },
        { "半日", BBT_CAL_HALFDAY },    { "event", BBT_CAL_EVENT },     { "活动日", BBT_CAL_EVENT },
        { "活动", BBT_CAL_EVENT },
};

struct day_entry {
        struct scope *scope;
        char code[BBT_ID_MAX + 1];
        enum bbt_calendar_kind kind;
        int32_t from, to;
};

static int day_from_row(struct bbt_csv *csv, struct day_entry *e)
{
        const char *v;
        size_t before = bbt_csv_errors(csv);
        bool kind_ok = false;

        memset(e, 0, sizeof(*e));
        v = bbt_csv_get(csv, DC_SCOPE);
        if (bbt_id_valid(v))
                memcpy(e->code, v, strlen(v) + 1);
        else
                bbt_csv_bad_value(csv, DC_SCOPE, "expected a 6-digit county code or a school code");
        v = bbt_csv_get(csv, DC_KIND);
        for (size_t i = 0; i < BBT_ELEMENTSOF(kind_words) && !kind_ok; i++)
                if (strcasecmp(v, kind_words[i].text) == 0) {
                        e->kind = kind_words[i].kind;
                        kind_ok = true;
                }
        if (!kind_ok)
                bbt_csv_bad_value(csv, DC_KIND, "expected term, holiday, workday, halfday or event (学期, 假期, 调休, 半天, 活动日)");
        if (bbt_day_parse(bbt_csv_get(csv, DC_FROM), &e->from) < 0) {
                bbt_csv_bad_value(csv, DC_FROM, "expected a date YYYY-MM-DD");
        } else if (!*bbt_csv_get(csv, DC_TO)) {
                e->to = e->from;
        } else if (bbt_day_parse(bbt_csv_get(csv, DC_TO), &e->to) < 0) {
                bbt_csv_bad_value(csv, DC_TO, "expected a date YYYY-MM-DD");
        } else if (e->to < e->from) {
                bbt_csv_bad_value(csv, DC_TO, "before the start date");
        }
        return bbt_csv_errors(csv) == before ? 0 : -EINVAL;
}

int bbt_calendar_load_days(struct bbt_calendar *cal, const char *path, struct bbt_import_errors *errs)
{
        struct day_entry *e = NULL;
        size_t n = 0, cap = 0;
        struct bbt_csv *csv = NULL;
        int r;

        r = bbt_csv_open(path, day_columns, DC__COUNT, errs, &csv);
        if (r < 0)
                return r;
        while ((r = bbt_csv_next(csv)) != 0) {
                struct day_entry d;

                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        goto out;
                if (day_from_row(csv, &d) < 0)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct day_entry *ne = realloc(e, ncap * sizeof(*ne));

                        if (!ne) {
                                r = -ENOMEM;
                                goto out;
                        }
                        e = ne;
                        cap = ncap;
                }
                e[n++] = d;
        }
        if (bbt_csv_errors(csv) > 0) {
                r = -EINVAL;
                goto out;
        }
        /* All or nothing even when memory runs out: first create the scopes
         * and reserve room for every range, then add them without allocating. */
        for (size_t i = 0; i < n; i++) {
                r = scope_get(cal, e[i].code, &e[i].scope);
                if (r < 0)
                        goto out;
        }
        for (size_t i = 0; i < n; i++)
                e[i].scope->pending[e[i].kind]++;
        for (size_t i = 0; i < n && r == 0; i++)
                r = range_reserve(&e[i].scope->set[e[i].kind], e[i].scope->pending[e[i].kind]);
        for (size_t i = 0; i < n; i++)
                e[i].scope->pending[e[i].kind] = 0;
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n; i++) {
                struct range_set *rs = &e[i].scope->set[e[i].kind];

                rs->r[rs->n++] = (struct range){ e[i].from, e[i].to };
        }
        for (size_t i = 0; i < cal->n; i++)
                for (int k = 0; k < KINDS; k++)
                        range_normalize(&cal->scope[i]->set[k]);
        r = 0;
out:
        free(e);
        bbt_csv_free(csv);
        return r;
}

/* ---- bells CSV ---- */

enum { BC_SCOPE, BC_PERIOD, BC_START, BC_END, BC__COUNT };
static const struct bbt_csv_column bell_columns[BC__COUNT] = {
        [BC_SCOPE] = { "scope", { "范围", "适用范围" }, true },
        [BC_PERIOD] = { "period", { "节次", "节" }, true },
        [BC_START] = { "start", { "开始时间", "上课时间" }, true },
        [BC_END] = { "end", { "结束时间", "下课时间" }, true },
};

struct bell_row {
        char code[BBT_ID_MAX + 1];
        int period;
        struct bbt_period p;
        unsigned line;
};

struct bell_group {
        char code[BBT_ID_MAX + 1];
        struct bbt_bells bells;
        struct scope *scope;
};

static int bell_row_cmp(const void *a, const void *b)
{
        const struct bell_row *x = a, *y = b;
        int c = strcmp(x->code, y->code);

        if (c)
                return c;
        if (x->period != y->period)
                return x->period < y->period ? -1 : 1;
        return x->line < y->line ? -1 : x->line > y->line;
}

static int bell_from_row(struct bbt_csv *csv, struct bell_row *b)
{
        const char *v;
        long period;
        size_t before = bbt_csv_errors(csv);

        memset(b, 0, sizeof(*b));
        b->line = bbt_csv_line(csv);
        v = bbt_csv_get(csv, BC_SCOPE);
        if (bbt_id_valid(v))
                memcpy(b->code, v, strlen(v) + 1);
        else
                bbt_csv_bad_value(csv, BC_SCOPE, "expected a 6-digit county code or a school code");
        if (bbt_csv_parse_count(bbt_csv_get(csv, BC_PERIOD), BBT_PERIODS_MAX, &period) < 0 || period < 1)
                bbt_csv_bad_value(csv, BC_PERIOD, "expected a period number 1..12");
        else
                b->period = (int)period;
        if (bbt_minute_parse(bbt_csv_get(csv, BC_START), &b->p.start_min) < 0)
                bbt_csv_bad_value(csv, BC_START, "expected a time HH:MM");
        else if (bbt_minute_parse(bbt_csv_get(csv, BC_END), &b->p.end_min) < 0)
                bbt_csv_bad_value(csv, BC_END, "expected a time HH:MM");
        else if (b->p.end_min <= b->p.start_min)
                bbt_csv_bad_value(csv, BC_END, "not after the start time");
        return bbt_csv_errors(csv) == before ? 0 : -EINVAL;
}

static void format_period(const struct bbt_period *p, char *buf, size_t size)
{
        snprintf(buf, size, "%02d:%02d-%02d:%02d", p->start_min / 60, p->start_min % 60, p->end_min / 60,
                 p->end_min % 60);
}

/* Checks the rows B[0..N) of one scope (sorted by period) and builds *RET. */
static void bells_from_rows(struct bbt_csv *csv, const struct bell_row *b, size_t n, struct bbt_bells *ret)
{
        memset(ret, 0, sizeof(*ret));
        for (size_t i = 0; i < n; i++) {
                char this[32], prev[32];

                if (i > 0 && b[i].period == b[i - 1].period) {
                        bbt_csv_error_at(csv, b[i].line, "scope %s: period %d is also on line %u", b[i].code,
                                         b[i].period, b[i - 1].line);
                        continue;
                }
                if (b[i].period != ret->n + 1) {
                        bbt_csv_error_at(csv, b[i].line, "scope %s: period %d, but period %d is missing", b[i].code,
                                         b[i].period, ret->n + 1);
                        return;
                }
                if (ret->n > 0 && b[i].p.start_min < ret->p[ret->n - 1].end_min) {
                        format_period(&b[i].p, this, sizeof(this));
                        format_period(&ret->p[ret->n - 1], prev, sizeof(prev));
                        bbt_csv_error_at(csv, b[i].line, "scope %s: period %d (%s) overlaps period %d (%s)",
                                         b[i].code, b[i].period, this, ret->n, prev);
                }
                ret->p[ret->n++] = b[i].p;
        }
}

int bbt_calendar_load_bells(struct bbt_calendar *cal, const char *path, struct bbt_import_errors *errs)
{
        struct bell_row *rows = NULL;
        struct bell_group *groups = NULL;
        size_t n = 0, cap = 0, n_groups = 0;
        struct bbt_csv *csv = NULL;
        int r;

        r = bbt_csv_open(path, bell_columns, BC__COUNT, errs, &csv);
        if (r < 0)
                return r;
        while ((r = bbt_csv_next(csv)) != 0) {
                struct bell_row b;

                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        goto out;
                if (bell_from_row(csv, &b) < 0)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct bell_row *nr = realloc(rows, ncap * sizeof(*nr));

                        if (!nr) {
                                r = -ENOMEM;
                                goto out;
                        }
                        rows = nr;
                        cap = ncap;
                }
                rows[n++] = b;
        }
        if (n > 0)
                qsort(rows, n, sizeof(*rows), bell_row_cmp);
        groups = calloc(n ? n : 1, sizeof(*groups));
        if (!groups) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0, j; i < n; i = j) {
                for (j = i + 1; j < n && strcmp(rows[j].code, rows[i].code) == 0; j++)
                        ;
                memcpy(groups[n_groups].code, rows[i].code, sizeof(rows[i].code));
                bells_from_rows(csv, rows + i, j - i, &groups[n_groups].bells);
                n_groups++;
        }
        if (bbt_csv_errors(csv) > 0) {
                r = -EINVAL;
                goto out;
        }
        /* Create every scope first, so that running out of memory adds nothing. */
        for (size_t g = 0; g < n_groups; g++) {
                r = scope_get(cal, groups[g].code, &groups[g].scope);
                if (r < 0)
                        goto out;
        }
        for (size_t g = 0; g < n_groups; g++) {
                groups[g].scope->bells = groups[g].bells;
                groups[g].scope->has_bells = true;
        }
out:
        free(groups);
        free(rows);
        bbt_csv_free(csv);
        return r;
}

/* ---- day types and the power schedule ---- */

static bool either_has(const struct scope *c, const struct scope *s, int kind, int32_t day)
{
        return (c && range_contains(&c->set[kind], day)) || (s && range_contains(&s->set[kind], day));
}

enum bbt_day_type bbt_calendar_day_type(const struct bbt_calendar *cal, const char *county, const char *school,
                                        int32_t day)
{
        const struct scope *c = scope_find(cal, county), *s = scope_find(cal, school);

        if (either_has(c, s, BBT_CAL_EVENT, day))
                return BBT_DAY_EVENT;
        if (!bbt_calendar_is_school_day(cal, county, school, day))
                return BBT_DAY_NON_SCHOOL;
        return either_has(c, s, BBT_CAL_HALFDAY, day) ? BBT_DAY_HALF : BBT_DAY_SCHOOL;
}

static int check_power(const struct bbt_power_times *p)
{
        for (int t = 0; t < BBT_DAY_EVENT; t++)
                if (p->off_s[t] < BBT_POWER_INHERIT || p->off_s[t] >= 86400)
                        return -EINVAL;
        return 0;
}

int bbt_calendar_set_power(struct bbt_calendar *cal, const char *scope, const struct bbt_power_times *p)
{
        struct scope *s;
        int r;

        if (!scope || !bbt_id_valid(scope) || !p || check_power(p) < 0)
                return -EINVAL;
        r = scope_get(cal, scope, &s);
        if (r < 0)
                return r;
        s->power = *p;
        s->has_power = cal->has_power = true;
        return 0;
}

bool bbt_calendar_has_power(const struct bbt_calendar *cal)
{
        return cal && cal->has_power;
}

static int power_lookup(const struct scope *c, const struct scope *s, enum bbt_day_type t)
{
        int v = s && s->has_power ? s->power.off_s[t] : BBT_POWER_INHERIT;

        if (v == BBT_POWER_INHERIT && c && c->has_power)
                v = c->power.off_s[t];
        return v;
}

int bbt_calendar_power_off(const struct bbt_calendar *cal, const char *county, const char *school, int32_t day)
{
        const struct scope *c, *s;
        enum bbt_day_type t;
        int v;

        if (!bbt_calendar_has_power(cal))
                return BBT_POWER_NONE;
        t = bbt_calendar_day_type(cal, county, school, day);
        if (t == BBT_DAY_EVENT)
                return BBT_POWER_NONE;
        c = scope_find(cal, county);
        s = scope_find(cal, school);
        v = power_lookup(c, s, t);
        /* A half day nobody gave a time for is powered off as a school day. */
        if (v == BBT_POWER_INHERIT && t == BBT_DAY_HALF)
                v = power_lookup(c, s, BBT_DAY_SCHOOL);
        return v == BBT_POWER_INHERIT ? BBT_POWER_NONE : v;
}

enum { PC_SCOPE, PC_SCHOOL_DAY, PC_HALF_DAY, PC_NON_SCHOOL_DAY, PC_NAME, PC__COUNT };
static const struct bbt_csv_column power_columns[PC__COUNT] = {
        [PC_SCOPE] = { "scope", { "范围", "适用范围" }, true },
        [PC_SCHOOL_DAY] = { "school_day", { "上课日", "上学日" }, true },
        [PC_HALF_DAY] = { "half_day", { "半天" }, false },
        [PC_NON_SCHOOL_DAY] = { "non_school_day", { "非上课日", "休息日" }, false },
        [PC_NAME] = { "name", { "名称", "备注" }, false },
};

static const char *const power_none_words[] = { "none", "no", "-", "不关机", "无", "否" };

struct power_row {
        char code[BBT_ID_MAX + 1];
        struct bbt_power_times p;
        unsigned line;
        struct scope *scope;
};

/* A time of day "18:00", "8:30" or "18:00:30" (00:00:00..23:59:59) in
 * seconds after midnight. Returns 0 and *RET, or -EINVAL. */
static int second_parse(const char *s, int *ret)
{
        int h, m, sec = 0, n = 0, len = (int)strlen(s);

        if (len < 4 || len > 8 || strspn(s, "0123456789:") != (size_t)len ||
            (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || n != (s[1] == ':' ? 4 : 5)))
                return -EINVAL;
        if (s[n] && (s[n] != ':' || sscanf(s + n + 1, "%2d", &sec) != 1 || strlen(s + n + 1) != 2))
                return -EINVAL;
        if (h > 23 || m > 59 || sec > 59)
                return -EINVAL;
        *ret = (h * 60 + m) * 60 + sec;
        return 0;
}

static int power_from_row(struct bbt_csv *csv, struct power_row *row)
{
        static const int col_of[BBT_DAY_EVENT] = { [BBT_DAY_SCHOOL] = PC_SCHOOL_DAY, [BBT_DAY_HALF] = PC_HALF_DAY,
                                                   [BBT_DAY_NON_SCHOOL] = PC_NON_SCHOOL_DAY };
        size_t before = bbt_csv_errors(csv);
        const char *v = bbt_csv_get(csv, PC_SCOPE);

        memset(row, 0, sizeof(*row));
        row->line = bbt_csv_line(csv);
        if (bbt_id_valid(v))
                memcpy(row->code, v, strlen(v) + 1);
        else
                bbt_csv_bad_value(csv, PC_SCOPE, "expected a 6-digit county code or a school code");
        for (int t = 0; t < BBT_DAY_EVENT; t++) {
                bool none = false;
                int sec;

                v = bbt_csv_get(csv, (size_t)col_of[t]);
                row->p.off_s[t] = BBT_POWER_INHERIT;
                if (!*v)
                        continue;
                for (size_t i = 0; i < BBT_ELEMENTSOF(power_none_words); i++)
                        none = none || strcasecmp(v, power_none_words[i]) == 0;
                if (none)
                        row->p.off_s[t] = BBT_POWER_NONE;
                else if (second_parse(v, &sec) < 0)
                        bbt_csv_bad_value(csv, (size_t)col_of[t],
                                          "expected a time HH:MM (00:00..23:59), none (不关机) or nothing");
                else
                        row->p.off_s[t] = sec;
        }
        return bbt_csv_errors(csv) == before ? 0 : -EINVAL;
}

static int power_row_cmp(const void *a, const void *b)
{
        const struct power_row *x = a, *y = b;
        int c = strcmp(x->code, y->code);

        return c ? c : x->line < y->line ? -1 : x->line > y->line;
}

int bbt_calendar_load_power(struct bbt_calendar *cal, const char *path, struct bbt_import_errors *errs)
{
        struct power_row *rows = NULL;
        size_t n = 0, cap = 0;
        struct bbt_csv *csv = NULL;
        int r;

        r = bbt_csv_open(path, power_columns, PC__COUNT, errs, &csv);
        if (r < 0)
                return r;
        while ((r = bbt_csv_next(csv)) != 0) {
                struct power_row p;

                if (r == -EINVAL)
                        continue;
                if (r < 0)
                        goto out;
                if (power_from_row(csv, &p) < 0)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct power_row *nr = realloc(rows, ncap * sizeof(*nr));

                        if (!nr) {
                                r = -ENOMEM;
                                goto out;
                        }
                        rows = nr;
                        cap = ncap;
                }
                rows[n++] = p;
        }
        if (n > 0)
                qsort(rows, n, sizeof(*rows), power_row_cmp);
        for (size_t i = 1; i < n; i++)
                if (strcmp(rows[i].code, rows[i - 1].code) == 0)
                        bbt_csv_error_at(csv, rows[i].line, "scope %s is also on line %u", rows[i].code,
                                         rows[i - 1].line);
        if (bbt_csv_errors(csv) > 0) {
                r = -EINVAL;
                goto out;
        }
        /* Create every scope first, so that running out of memory adds nothing. */
        for (size_t i = 0; i < n; i++) {
                r = scope_get(cal, rows[i].code, &rows[i].scope);
                if (r < 0)
                        goto out;
        }
        for (size_t i = 0; i < n; i++) {
                rows[i].scope->power = rows[i].p;
                rows[i].scope->has_power = true;
        }
        cal->has_power = cal->has_power || n > 0;
        r = 0;
out:
        free(rows);
        bbt_csv_free(csv);
        return r;
}
