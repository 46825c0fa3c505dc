/* bbt-report's reports: the store, registry and calendar turned into the evaluation tables (METRICS.md). */
#include "reports.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "dates.h"

/* How far back the idle window may reach to find its school days. */
#define IDLE_LOOKBACK_DAYS 400

static const char *const kind_names[BBT_REPORT__COUNT] = {
        "summary", "schools", "terminals", "idle", "faults", "balance", "inventory", "loss",
};

const char *bbt_report_kind_name(enum bbt_report_kind k)
{
        return k >= 0 && k < BBT_REPORT__COUNT ? kind_names[k] : "?";
}

int bbt_report_kind_parse(const char *s, enum bbt_report_kind *ret)
{
        for (int i = 0; i < BBT_REPORT__COUNT; i++)
                if (s && strcmp(s, kind_names[i]) == 0) {
                        *ret = (enum bbt_report_kind)i;
                        return 0;
                }
        return -EINVAL;
}

/* ---- the data one report works on ---- */

struct school_info {
        char county[7];
        char code[BBT_ID_MAX + 1];
        const struct bbt_school *reg; /* NULL: a school code seen on the wire only */
        uint8_t *school_day;          /* over ctx->qfrom .. ctx->to */
        int32_t idle_from;            /* first day of the idle window */
        const struct bbt_bells *bells;
        size_t n_terminals;
        struct bbt_rates_acc acc;
};

struct term_info {
        char id[BBT_ID_MAX + 1];
        size_t school;                         /* index into ctx->schools */
        const struct bbt_store_terminal *st;   /* NULL: registered, never reported */
        const struct bbt_terminal_entry *reg;  /* NULL: not in the registry */
        struct bbt_rates_acc acc;
        enum bbt_idle_reason idle;
        int idle_used;
        bool silent, intact;
        int open_faults;
        bool seen_rows;
};

struct ctx {
        const struct bbt_report_options *o;
        const struct bbt_metric_settings *s;
        const struct bbt_registry *reg;
        const struct bbt_calendar *cal;
        struct bbt_store *store;
        int32_t qfrom, to;   /* days held in school_day arrays */
        int64_t end_ms;      /* the end of the range, or now if earlier */
        struct bbt_store_terminal *st;
        size_t n_st, cap_st;
        struct school_info *schools;
        size_t n_schools, cap_schools;
        struct term_info *terms;
        size_t n_terms, cap_terms;
        size_t *by_store_id; /* store id → 1 + index into terms; 0: not in scope */
        int64_t max_store_id;
        struct bbt_day_rollup *buf; /* one terminal's rows while streaming */
        size_t n_buf, cap_buf;
        size_t buf_term;
};

static bool county_ok(const struct ctx *c, const char *county)
{
        return !c->o->county || strcmp(c->o->county, county) == 0;
}

static bool school_ok(const struct ctx *c, const char *code)
{
        return !c->o->school || strcmp(c->o->school, code) == 0;
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

static int store_terminal_cb(void *u, const struct bbt_store_terminal *t)
{
        struct ctx *c = u;

        if (grow((void **)&c->st, &c->cap_st, c->n_st, sizeof(*c->st)) < 0)
                return -ENOMEM;
        c->st[c->n_st++] = *t;
        if (t->id > c->max_store_id)
                c->max_store_id = t->id;
        return 0;
}

static ssize_t school_find(const struct ctx *c, const char *county, const char *code)
{
        for (size_t i = c->n_schools; i-- > 0;)
                if (strcmp(c->schools[i].code, code) == 0 && strcmp(c->schools[i].county, county) == 0)
                        return (ssize_t)i;
        return -1;
}

static int school_add(struct ctx *c, const char *county, const char *code, const struct bbt_school *reg,
                      size_t *ret)
{
        struct school_info *si;
        ssize_t found = school_find(c, county, code);
        size_t n = (size_t)(c->to - c->qfrom + 1), have = 0;

        if (found >= 0) {
                *ret = (size_t)found;
                return 0;
        }
        if (grow((void **)&c->schools, &c->cap_schools, c->n_schools, sizeof(*c->schools)) < 0)
                return -ENOMEM;
        si = &c->schools[c->n_schools];
        memset(si, 0, sizeof(*si));
        snprintf(si->county, sizeof(si->county), "%s", county);
        snprintf(si->code, sizeof(si->code), "%s", code);
        si->reg = reg;
        si->bells = c->cal ? bbt_calendar_bells(c->cal, county, code) : bbt_bells_default();
        si->school_day = calloc(n, 1);
        if (!si->school_day)
                return -ENOMEM;
        si->idle_from = c->qfrom;
        for (int32_t d = c->to; d >= c->qfrom; d--) {
                bool sd = c->cal ? bbt_calendar_is_school_day(c->cal, county, code, d)
                                 : bbt_day_weekday(d) <= 5;

                si->school_day[d - c->qfrom] = sd;
                if (sd && have < (size_t)c->s->idle_window && ++have == (size_t)c->s->idle_window)
                        si->idle_from = d;
        }
        *ret = c->n_schools++;
        return 0;
}

static int term_add(struct ctx *c, size_t school, const char *id, const struct bbt_store_terminal *st,
                    const struct bbt_terminal_entry *reg)
{
        struct term_info *t;

        if (grow((void **)&c->terms, &c->cap_terms, c->n_terms, sizeof(*c->terms)) < 0)
                return -ENOMEM;
        t = &c->terms[c->n_terms++];
        memset(t, 0, sizeof(*t));
        snprintf(t->id, sizeof(t->id), "%s", id);
        t->school = school;
        t->st = st;
        t->reg = reg;
        c->schools[school].n_terminals++;
        return 0;
}

/* A terminal is county, school and terminal id, as in its topic: the same
 * school and terminal codes under another county are another terminal. */
static int cmp_store_terminal(const void *a, const void *b)
{
        const struct bbt_store_terminal *x = a, *y = b;
        int r = strcmp(x->school, y->school);

        if (!r)
                r = strcmp(x->terminal, y->terminal);
        return r ? r : strcmp(x->county, y->county);
}

/* The store's row for terminal ID of SCHOOL in COUNTY, or NULL. */
static struct bbt_store_terminal *store_find(struct ctx *c, const char *county, const char *school, const char *id)
{
        struct bbt_store_terminal key;

        memset(&key, 0, sizeof(key));
        snprintf(key.county, sizeof(key.county), "%s", county);
        snprintf(key.school, sizeof(key.school), "%s", school);
        snprintf(key.terminal, sizeof(key.terminal), "%s", id);
        return bsearch(&key, c->st, c->n_st, sizeof(*c->st), cmp_store_terminal);
}

/* Every terminal in scope: the registry's, and those seen on the wire only. */
static int collect(struct ctx *c)
{
        bool *matched = NULL;
        size_t si;
        int r;

        r = bbt_store_terminals_each(c->store, store_terminal_cb, c);
        if (r < 0)
                return r;
        qsort(c->st, c->n_st, sizeof(*c->st), cmp_store_terminal);
        matched = calloc(c->n_st + 1, sizeof(*matched));
        if (!matched)
                return -ENOMEM;
        for (size_t i = 0; r == 0 && c->reg && i < c->reg->n_schools; i++) {
                const struct bbt_school *s = &c->reg->schools[i];

                if (county_ok(c, s->county) && school_ok(c, s->code))
                        r = school_add(c, s->county, s->code, s, &si);
        }
        for (size_t i = 0; r == 0 && c->reg && i < c->reg->n_terminals; i++) {
                const struct bbt_terminal_entry *e = &c->reg->terminals[i];
                const struct bbt_school *s = bbt_registry_school(c->reg, e->school);
                struct bbt_store_terminal *st;

                if (!s || !county_ok(c, s->county) || !school_ok(c, s->code))
                        continue;
                st = store_find(c, s->county, e->school, e->id);
                if (st)
                        matched[st - c->st] = true;
                r = school_add(c, s->county, s->code, s, &si);
                if (r == 0)
                        r = term_add(c, si, e->id, st, e);
        }
        for (size_t i = 0; r == 0 && i < c->n_st; i++) {
                const struct bbt_store_terminal *st = &c->st[i];
                const struct bbt_school *rs;

                if (matched[i] || !county_ok(c, st->county) || !school_ok(c, st->school))
                        continue;
                /* The registry's school only if it is this county's: a school
                 * code published under the wrong county must not bring that
                 * school's name, pupils and area into another county. */
                rs = c->reg ? bbt_registry_school(c->reg, st->school) : NULL;
                if (rs && strcmp(rs->county, st->county) != 0)
                        rs = NULL;
                r = school_add(c, st->county, st->school, rs, &si);
                if (r == 0)
                        r = term_add(c, si, st->terminal, st, NULL);
        }
        free(matched);
        if (r < 0)
                return r;
        c->by_store_id = calloc((size_t)c->max_store_id + 1, sizeof(*c->by_store_id));
        if (!c->by_store_id)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_terms; i++)
                if (c->terms[i].st)
                        c->by_store_id[c->terms[i].st->id] = i + 1;
        return 0;
}

/* ---- figures ---- */

static void terminal_figures(struct ctx *c, struct term_info *t, const struct bbt_day_rollup *rows, size_t n)
{
        struct school_info *si = &c->schools[t->school];
        struct bbt_terminal_days td = {
                .days = rows, .n_days = n, .school_day = si->school_day + (c->o->from - c->qfrom),
                .n_periods = si->bells->n, .intact = t->intact,
        };
        struct bbt_terminal_days idle = td;

        bbt_rates_add(&t->acc, c->s, c->o->from, c->to, &td);
        idle.school_day = si->school_day + (si->idle_from - c->qfrom);
        t->idle = bbt_idle_judge(c->s, si->idle_from, c->to, &idle, t->st ? t->st->last_seen_ms : 0, &t->idle_used);
}

static void flush_buf(struct ctx *c)
{
        if (c->buf_term == 0)
                return;
        c->terms[c->buf_term - 1].seen_rows = true;
        terminal_figures(c, &c->terms[c->buf_term - 1], c->buf, c->n_buf);
        c->n_buf = 0;
        c->buf_term = 0;
}

static int day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        struct ctx *c = u;
        size_t ti = terminal_id >= 0 && terminal_id <= c->max_store_id ? c->by_store_id[terminal_id] : 0;

        if (!ti)
                return 0;
        if (ti != c->buf_term)
                flush_buf(c);
        c->buf_term = ti;
        if (grow((void **)&c->buf, &c->cap_buf, c->n_buf, sizeof(*c->buf)) < 0)
                return -ENOMEM;
        c->buf[c->n_buf++] = *d;
        return 0;
}

static int fault_open_cb(void *u, const struct bbt_store_fault *f)
{
        struct ctx *c = u;
        size_t ti = f->terminal_id >= 0 && f->terminal_id <= c->max_store_id ? c->by_store_id[f->terminal_id] : 0;

        if (ti && f->raised_ms < c->end_ms && (f->cleared_ms == 0 || f->cleared_ms >= c->end_ms))
                c->terms[ti - 1].open_faults++;
        return 0;
}

/* Silent: nothing received for more than silent_days school days up to TO. */
static bool is_silent(const struct ctx *c, const struct term_info *t)
{
        const struct school_info *si = &c->schools[t->school];
        int32_t last = t->st && t->st->last_seen_ms ? bbt_day_of_ms(t->st->last_seen_ms, c->s->offset_min)
                                                    : c->qfrom - 1;
        /* Only whole days count: a range that ends now leaves today out. */
        int32_t end = c->end_ms < bbt_day_start_ms(c->to + 1, c->s->offset_min) ? c->to - 1 : c->to;
        int days = 0;

        for (int32_t d = last + 1 > c->qfrom ? last + 1 : c->qfrom; d <= end; d++)
                days += si->school_day[d - c->qfrom];
        return days > c->s->silent_days;
}

static int compute(struct ctx *c)
{
        int32_t rows_from;
        int r;

        r = bbt_store_faults_each(c->store, fault_open_cb, c);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_terms; i++) {
                struct term_info *t = &c->terms[i];

                t->silent = is_silent(c, t);
                t->intact = !t->silent && t->open_faults == 0;
        }
        /* Rows are needed from the range's start, or the earliest idle window's. */
        rows_from = c->o->from;
        for (size_t i = 0; i < c->n_schools; i++)
                if (c->schools[i].idle_from < rows_from)
                        rows_from = c->schools[i].idle_from;
        r = bbt_store_days_each(c->store, rows_from, c->to, day_cb, c);
        if (r < 0)
                return r;
        flush_buf(c);
        for (size_t i = 0; i < c->n_terms; i++) {
                struct term_info *t = &c->terms[i];

                if (!t->seen_rows)
                        terminal_figures(c, t, NULL, 0);
                bbt_rates_merge(&c->schools[t->school].acc, &t->acc);
        }
        return 0;
}

static void free_ctx(struct ctx *c)
{
        for (size_t i = 0; i < c->n_schools; i++)
                free(c->schools[i].school_day);
        free(c->schools);
        free(c->terms);
        free(c->st);
        free(c->by_store_id);
        free(c->buf);
}

/* ---- formatting helpers ---- */

static const char *L(const struct ctx *c, const char *zh, const char *en)
{
        return c->o->chinese ? zh : en;
}

static void format_time(const struct ctx *c, int64_t ms, char *buf, size_t size)
{
        int64_t local;
        int32_t day;
        int minute;

        if (ms <= 0) {
                snprintf(buf, size, "%s", L(c, "从未", "never"));
                return;
        }
        local = ms + (int64_t)c->s->offset_min * BBT_MS_PER_MIN;
        day = bbt_day_of_ms(ms, c->s->offset_min);
        minute = (int)((local - (int64_t)day * BBT_MS_PER_DAY) / BBT_MS_PER_MIN);
        bbt_day_format(day, buf, size);
        snprintf(buf + strlen(buf), size > strlen(buf) ? size - strlen(buf) : 0, " %02d:%02d", minute / 60,
                 minute % 60);
}

static const char *school_name(const struct school_info *si)
{
        return si->reg ? si->reg->name : "";
}

/* The rate columns every level shares, in this order. */
#define RATE_COLUMNS                                                                                        \
        { "power_on_rate", "开机率", "Power-on rate", BBT_CELL_RATE, 0 },                                   \
        { "usage_rate", "使用率", "Usage rate", BBT_CELL_RATE, 0 },                                         \
        { "avg_daily_hours", "日均使用时长(小时)", "Avg daily hours", BBT_CELL_NUM, 2 },                    \
        { "period_usage_rate", "堂堂用率", "Per-lesson use", BBT_CELL_RATE, 0 },                            \
        { "interactive_share", "互动使用占比", "Interactive share", BBT_CELL_RATE, 0 },                     \
        { "online_rate", "在线率", "Online rate", BBT_CELL_RATE, 0 },                                       \
        { "intact_rate", "设备完好率", "Intact rate", BBT_CELL_RATE, 0 },                                   \
        { "weekly_lessons", "周均使用节数", "Weekly lessons", BBT_CELL_NUM, 1 }
#define N_RATE_COLUMNS 8

/* Fills the 8 rate columns starting at FIRST; undefined rates stay empty. */
static void set_rates(struct bbt_table *t, size_t first, const struct bbt_rates_acc *acc)
{
        struct bbt_rates r;

        bbt_rates_compute(acc, &r);
        if (r.has_days) {
                bbt_table_set_num(t, first, r.power_on_rate);
                bbt_table_set_num(t, first + 1, r.usage_rate);
                bbt_table_set_num(t, first + 2, r.avg_daily_hours);
                bbt_table_set_num(t, first + 7, r.weekly_lessons);
        }
        if (r.has_periods)
                bbt_table_set_num(t, first + 3, r.period_usage_rate);
        if (r.has_active)
                bbt_table_set_num(t, first + 4, r.interactive_share);
        if (r.has_online)
                bbt_table_set_num(t, first + 5, r.online_rate);
        if (r.has_terminals)
                bbt_table_set_num(t, first + 6, r.intact_rate);
}

static void add_settings(const struct ctx *c, struct bbt_report *rep)
{
        const struct bbt_metric_settings *s = c->s;
        char v[64], from[16], to[16];

        bbt_day_format(c->o->from, from, sizeof(from));
        bbt_day_format(c->o->to, to, sizeof(to));
        bbt_report_add_setting(rep, "from", "起始日期", "From", from);
        bbt_report_add_setting(rep, "to", "截止日期", "To", to);
        bbt_report_add_setting(rep, "county", "县区", "County", c->o->county ? c->o->county : L(c, "全部", "all"));
        bbt_report_add_setting(rep, "school", "学校", "School", c->o->school ? c->o->school : L(c, "全部", "all"));
        snprintf(v, sizeof(v), "%d", s->used_day_min);
        bbt_report_add_setting(rep, "used_day_min", "当日使用判定(分钟)", "Used day (min)", v);
        snprintf(v, sizeof(v), "%d", s->used_period_min);
        bbt_report_add_setting(rep, "used_period_min", "单节使用判定(分钟)", "Used period (min)", v);
        snprintf(v, sizeof(v), "%d", s->margin_min);
        bbt_report_add_setting(rep, "school_hours_margin", "在校时段前后延伸(分钟)", "School-hours margin (min)",
                               v);
        snprintf(v, sizeof(v), "%d", s->heartbeat_s);
        bbt_report_add_setting(rep, "heartbeat_interval", "心跳间隔(秒)", "Heartbeat interval (s)", v);
        snprintf(v, sizeof(v), "%d", s->idle_window);
        bbt_report_add_setting(rep, "idle_window", "闲置判定窗口(上课日)", "Idle window (school days)", v);
        snprintf(v, sizeof(v), "%d", s->idle_max_days);
        bbt_report_add_setting(rep, "idle_max_days", "闲置判定最多使用天数", "Idle: used on at most (days)", v);
        snprintf(v, sizeof(v), "%d", s->silent_days);
        bbt_report_add_setting(rep, "silent_days", "离线故障判定(上课日)", "Silent fault after (school days)", v);
        snprintf(v, sizeof(v), "%ld", s->min_pupils);
        bbt_report_add_setting(rep, "min_pupils", "差异系数最少学生数", "Balance: minimum pupils", v);
        snprintf(v, sizeof(v), "%+03d:%02d", s->offset_min / 60, abs(s->offset_min) % 60);
        bbt_report_add_setting(rep, "utc_offset", "时区", "UTC offset", v);
        snprintf(v, sizeof(v), "%" PRId64, s->clock_skew_limit_ms / 1000);
        bbt_report_add_setting(rep, "clock_skew_limit", "时钟偏差上限(秒)", "Clock skew limit (s)", v);
        if (c->o->store_label)
                bbt_report_add_setting(rep, "store", "数据库", "Store", c->o->store_label);
        format_time(c, c->o->now_ms, v, sizeof(v));
        bbt_report_add_setting(rep, "generated", "生成时间", "Generated", v);
        bbt_report_add_setting(rep, "version", "版本", "Version", "bbt " BBT_VERSION);
}

/* ---- the reports ---- */

static size_t count_idle(const struct ctx *c, size_t school, bool all)
{
        size_t n = 0;

        for (size_t i = 0; i < c->n_terms; i++)
                if ((all || c->terms[i].school == school) && c->terms[i].idle != BBT_IDLE_NO)
                        n++;
        return n;
}

static size_t count_faulty(const struct ctx *c)
{
        size_t n = 0;

        for (size_t i = 0; i < c->n_terms; i++)
                n += !c->terms[i].intact;
        return n;
}

static const char *township_of(const struct school_info *si)
{
        return si->reg && si->reg->township ? si->reg->township : "";
}

static int report_summary(struct ctx *c, struct bbt_report *rep)
{
        static const struct bbt_column overall_cols[] = {
                { "scope", "范围", "Scope", BBT_CELL_TEXT, 0 },
                { "schools", "学校数", "Schools", BBT_CELL_INT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                RATE_COLUMNS,
                { "idle", "闲置终端", "Idle", BBT_CELL_INT, 0 },
                { "faulty", "故障终端", "Faulty", BBT_CELL_INT, 0 },
        };
        static const struct bbt_column township_cols[] = {
                { "township", "乡镇/街道", "Township", BBT_CELL_TEXT, 0 },
                { "schools", "学校数", "Schools", BBT_CELL_INT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                RATE_COLUMNS,
        };
        static const struct bbt_column area_cols[] = {
                { "area", "城乡", "Area", BBT_CELL_TEXT, 0 },
                { "schools", "学校数", "Schools", BBT_CELL_INT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                RATE_COLUMNS,
        };
        struct bbt_rates_acc all = { 0 }, area[BBT_AREA__COUNT] = { { 0 } };
        size_t area_schools[BBT_AREA__COUNT] = { 0 };
        struct bbt_table *t;
        char scope[64];

        for (size_t i = 0; i < c->n_schools; i++) {
                bbt_rates_merge(&all, &c->schools[i].acc);
                if (c->schools[i].reg) {
                        bbt_rates_merge(&area[c->schools[i].reg->area], &c->schools[i].acc);
                        area_schools[c->schools[i].reg->area]++;
                }
        }
        t = bbt_report_add_table(rep, "overall", "总体", "Overall", overall_cols, BBT_ELEMENTSOF(overall_cols));
        bbt_table_add_row(t);
        snprintf(scope, sizeof(scope), "%s", c->o->school ? c->o->school : c->o->county ? c->o->county
                                                                           : L(c, "全部", "all"));
        bbt_table_set_text(t, 0, scope);
        bbt_table_set_int(t, 1, (int64_t)c->n_schools);
        bbt_table_set_int(t, 2, (int64_t)c->n_terms);
        set_rates(t, 3, &all);
        bbt_table_set_int(t, 3 + N_RATE_COLUMNS, (int64_t)count_idle(c, 0, true));
        bbt_table_set_int(t, 4 + N_RATE_COLUMNS, (int64_t)count_faulty(c));

        /* By township, in the order townships first appear in the registry. */
        t = bbt_report_add_table(rep, "townships", "按乡镇", "By township", township_cols,
                                 BBT_ELEMENTSOF(township_cols));
        for (size_t i = 0; i < c->n_schools; i++) {
                const char *tw = township_of(&c->schools[i]);
                struct bbt_rates_acc acc = { 0 };
                size_t schools = 0;
                bool first = true;

                for (size_t j = 0; j < i; j++)
                        if (strcmp(township_of(&c->schools[j]), tw) == 0)
                                first = false;
                if (!first)
                        continue;
                for (size_t j = i; j < c->n_schools; j++)
                        if (strcmp(township_of(&c->schools[j]), tw) == 0) {
                                bbt_rates_merge(&acc, &c->schools[j].acc);
                                schools++;
                        }
                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, *tw ? tw : L(c, "(未登记)", "(not registered)"));
                bbt_table_set_int(t, 1, (int64_t)schools);
                bbt_table_set_int(t, 2, acc.terminals);
                set_rates(t, 3, &acc);
        }

        /* 城区 / 镇区 / 乡村 and the gap between the highest and lowest. */
        t = bbt_report_add_table(rep, "areas", "城乡对比", "Urban, town and rural", area_cols, BBT_ELEMENTSOF(area_cols));
        {
                double hi[N_RATE_COLUMNS], lo[N_RATE_COLUMNS];
                bool have[N_RATE_COLUMNS] = { false };

                for (int a = 0; a < BBT_AREA__COUNT; a++) {
                        struct bbt_rates r;
                        double v[N_RATE_COLUMNS];
                        bool def[N_RATE_COLUMNS];

                        if (!area_schools[a])
                                continue;
                        bbt_table_add_row(t);
                        bbt_table_set_text(t, 0, bbt_area_name((enum bbt_area)a, c->o->chinese));
                        bbt_table_set_int(t, 1, (int64_t)area_schools[a]);
                        bbt_table_set_int(t, 2, area[a].terminals);
                        set_rates(t, 3, &area[a]);
                        bbt_rates_compute(&area[a], &r);
                        v[0] = r.power_on_rate, v[1] = r.usage_rate, v[2] = r.avg_daily_hours;
                        v[3] = r.period_usage_rate, v[4] = r.interactive_share, v[5] = r.online_rate;
                        v[6] = r.intact_rate, v[7] = r.weekly_lessons;
                        def[0] = def[1] = def[2] = def[7] = r.has_days;
                        def[3] = r.has_periods, def[4] = r.has_active, def[5] = r.has_online;
                        def[6] = r.has_terminals;
                        for (int k = 0; k < N_RATE_COLUMNS; k++) {
                                if (!def[k])
                                        continue;
                                if (!have[k] || v[k] > hi[k])
                                        hi[k] = v[k];
                                if (!have[k] || v[k] < lo[k])
                                        lo[k] = v[k];
                                have[k] = true;
                        }
                }
                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, L(c, "差距(最高−最低)", "Gap (highest − lowest)"));
                for (int k = 0; k < N_RATE_COLUMNS; k++)
                        if (have[k])
                                bbt_table_set_num(t, 3 + (size_t)k, hi[k] - lo[k]);
        }
        bbt_report_add_note(rep, "终端数含从未上报的登记终端；未上报即未使用。",
                            "Terminals include registered ones that never reported: they count as unused.");
        return 0;
}

static int report_schools(struct ctx *c, struct bbt_report *rep)
{
        static const struct bbt_column cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "township", "乡镇/街道", "Township", BBT_CELL_TEXT, 0 },
                { "type", "类型", "Type", BBT_CELL_TEXT, 0 },
                { "area", "城乡", "Area", BBT_CELL_TEXT, 0 },
                { "students", "学生数", "Pupils", BBT_CELL_INT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                RATE_COLUMNS,
                { "idle", "闲置终端", "Idle", BBT_CELL_INT, 0 },
        };
        struct bbt_table *t = bbt_report_add_table(rep, "schools", "学校", "Schools", cols, BBT_ELEMENTSOF(cols));

        for (size_t i = 0; i < c->n_schools; i++) {
                const struct school_info *si = &c->schools[i];

                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, si->code);
                bbt_table_set_text(t, 1, school_name(si));
                bbt_table_set_text(t, 2, township_of(si));
                if (si->reg) {
                        bbt_table_set_text(t, 3, bbt_school_type_name(si->reg->type, c->o->chinese));
                        bbt_table_set_text(t, 4, bbt_area_name(si->reg->area, c->o->chinese));
                        bbt_table_set_int(t, 5, si->reg->students);
                }
                bbt_table_set_int(t, 6, (int64_t)si->n_terminals);
                set_rates(t, 7, &si->acc);
                bbt_table_set_int(t, 7 + N_RATE_COLUMNS, (int64_t)count_idle(c, i, false));
        }
        return 0;
}

static const char *room_of(const struct term_info *t)
{
        return t->reg && t->reg->room ? t->reg->room : "";
}

static int report_terminals(struct ctx *c, struct bbt_report *rep)
{
        static const struct bbt_column cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "room", "教室", "Room", BBT_CELL_TEXT, 0 },
                { "online", "在线", "Online", BBT_CELL_TEXT, 0 },
                { "last_seen", "最后上报", "Last seen", BBT_CELL_TEXT, 0 },
                RATE_COLUMNS,
                { "open_faults", "未消除故障", "Open faults", BBT_CELL_INT, 0 },
                { "version", "代理版本", "Agent version", BBT_CELL_TEXT, 0 },
        };
        struct bbt_table *t = bbt_report_add_table(rep, "terminals", "终端", "Terminals", cols, BBT_ELEMENTSOF(cols));
        char when[32];

        for (size_t i = 0; i < c->n_terms; i++) {
                const struct term_info *ti = &c->terms[i];
                const struct school_info *si = &c->schools[ti->school];

                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, si->code);
                bbt_table_set_text(t, 1, school_name(si));
                bbt_table_set_text(t, 2, ti->id);
                bbt_table_set_text(t, 3, room_of(ti));
                bbt_table_set_text(t, 4, ti->st && ti->st->online ? L(c, "是", "yes") : L(c, "否", "no"));
                format_time(c, ti->st ? ti->st->last_seen_ms : 0, when, sizeof(when));
                bbt_table_set_text(t, 5, when);
                set_rates(t, 6, &ti->acc);
                bbt_table_set_int(t, 6 + N_RATE_COLUMNS, ti->open_faults + ti->silent);
                bbt_table_set_text(t, 7 + N_RATE_COLUMNS, ti->st ? ti->st->version : "");
        }
        return 0;
}

static int report_idle(struct ctx *c, struct bbt_report *rep)
{
        static const struct bbt_column cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "room", "教室", "Room", BBT_CELL_TEXT, 0 },
                { "used_days", "窗口内使用天数", "Days used in window", BBT_CELL_INT, 0 },
                { "last_active", "最后使用", "Last active", BBT_CELL_TEXT, 0 },
                { "last_seen", "最后上报", "Last seen", BBT_CELL_TEXT, 0 },
                { "reason", "原因", "Reason", BBT_CELL_TEXT, 0 },
        };
        struct bbt_table *t = bbt_report_add_table(rep, "idle", "闲置设备", "Idle equipment", cols, BBT_ELEMENTSOF(cols));
        char when[32], note_zh[160], note_en[160];

        for (size_t i = 0; i < c->n_terms; i++) {
                const struct term_info *ti = &c->terms[i];
                const struct school_info *si = &c->schools[ti->school];

                if (ti->idle == BBT_IDLE_NO)
                        continue;
                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, si->code);
                bbt_table_set_text(t, 1, school_name(si));
                bbt_table_set_text(t, 2, ti->id);
                bbt_table_set_text(t, 3, room_of(ti));
                bbt_table_set_int(t, 4, ti->idle_used);
                format_time(c, ti->st ? ti->st->last_active_ms : 0, when, sizeof(when));
                bbt_table_set_text(t, 5, when);
                format_time(c, ti->st ? ti->st->last_seen_ms : 0, when, sizeof(when));
                bbt_table_set_text(t, 6, when);
                bbt_table_set_text(t, 7, bbt_idle_reason_name(ti->idle, c->o->chinese));
        }
        snprintf(note_zh, sizeof(note_zh), "闲置：截至截止日期的最近 %d 个上课日中使用不超过 %d 天。",
                 c->s->idle_window, c->s->idle_max_days);
        snprintf(note_en, sizeof(note_en), "Idle: used on at most %d of the last %d school days up to the end date.",
                 c->s->idle_max_days, c->s->idle_window);
        bbt_report_add_note(rep, note_zh, note_en);
        return 0;
}

static const char *fault_name(const char *code, bool chinese)
{
        static const struct {
                const char *code, *zh, *en;
        } names[] = {
                { "silent", "长期未上报", "silent" },
                { "overheat", "温度过高", "overheating" },
                { "disk_low", "磁盘空间不足", "disk space low" },
                { "periph_missing", "外设缺失", "peripheral missing" },
                { "projector_error", "投影机故障", "projector error" },
                { "lamp_hours", "灯泡超时", "lamp past its hours" },
                { "clock_skew", "时钟偏差", "clock off" },
                { "spool_drop", "缓存溢出丢弃", "spool overflow" },
                { "offline", "离线", "offline" },
        };

        for (size_t i = 0; i < BBT_ELEMENTSOF(names); i++)
                if (strcmp(names[i].code, code) == 0)
                        return chinese ? names[i].zh : names[i].en;
        return code;
}

struct fault_list_ctx {
        struct ctx *c;
        struct bbt_table *t;
};

static void fault_row(struct ctx *c, struct bbt_table *t, const struct term_info *ti, const char *code,
                      const char *severity, const char *source, int64_t since, const char *detail)
{
        const struct school_info *si = &c->schools[ti->school];
        char when[32];

        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, si->code);
        bbt_table_set_text(t, 1, school_name(si));
        bbt_table_set_text(t, 2, ti->id);
        bbt_table_set_text(t, 3, room_of(ti));
        bbt_table_set_text(t, 4, code);
        bbt_table_set_text(t, 5, fault_name(code, c->o->chinese));
        bbt_table_set_text(t, 6, severity);
        bbt_table_set_text(t, 7, source);
        format_time(c, since, when, sizeof(when));
        bbt_table_set_text(t, 8, when);
        bbt_table_set_text(t, 9, detail);
}

static int fault_list_cb(void *u, const struct bbt_store_fault *f)
{
        struct fault_list_ctx *fl = u;
        struct ctx *c = fl->c;
        size_t ti = f->terminal_id >= 0 && f->terminal_id <= c->max_store_id ? c->by_store_id[f->terminal_id] : 0;

        if (!ti || f->raised_ms >= c->end_ms || (f->cleared_ms != 0 && f->cleared_ms < c->end_ms))
                return 0;
        fault_row(c, fl->t, &c->terms[ti - 1], f->code,
                  f->severity == BBT_SEVERITY_ERROR ? L(c, "错误", "error") : L(c, "警告", "warning"),
                  strcmp(f->source, "agent") == 0 ? L(c, "终端", "terminal") : L(c, "平台", "aggregator"),
                  f->raised_ms, f->detail);
        return 0;
}

static int report_faults(struct ctx *c, struct bbt_report *rep)
{
        static const struct bbt_column cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "room", "教室", "Room", BBT_CELL_TEXT, 0 },
                { "code", "故障代码", "Code", BBT_CELL_TEXT, 0 },
                { "name", "故障", "Fault", BBT_CELL_TEXT, 0 },
                { "severity", "级别", "Severity", BBT_CELL_TEXT, 0 },
                { "source", "来源", "Source", BBT_CELL_TEXT, 0 },
                { "since", "发生时间", "Since", BBT_CELL_TEXT, 0 },
                { "detail", "详情", "Detail", BBT_CELL_TEXT, 0 },
        };
        struct fault_list_ctx fl = { c, bbt_report_add_table(rep, "faults", "未消除故障", "Open faults", cols,
                                                             BBT_ELEMENTSOF(cols)) };
        char detail[128];

        for (size_t i = 0; i < c->n_terms; i++) {
                const struct term_info *ti = &c->terms[i];

                if (!ti->silent)
                        continue;
                snprintf(detail, sizeof(detail),
                         c->o->chinese ? "超过 %d 个上课日未收到任何数据" : "nothing received for over %d school days",
                         c->s->silent_days);
                fault_row(c, fl.t, ti, "silent", L(c, "错误", "error"), L(c, "平台", "aggregator"),
                          ti->st ? ti->st->last_seen_ms : 0, detail);
        }
        return bbt_store_faults_each(c->store, fault_list_cb, &fl);
}

/* The indicators of the balance statistic, per school. */
enum { IND_TERMINALS_PER_100, IND_AVG_HOURS, IND_USAGE_RATE, IND_PERIOD_RATE, IND__COUNT };

static bool indicator(const struct school_info *si, int ind, double *ret)
{
        struct bbt_rates r;

        bbt_rates_compute(&si->acc, &r);
        switch (ind) {
        case IND_TERMINALS_PER_100:
                if (si->reg->students <= 0)
                        return false;
                *ret = (double)si->n_terminals / (double)si->reg->students * 100.0;
                return true;
        case IND_AVG_HOURS:
                *ret = r.avg_daily_hours;
                return r.has_days;
        case IND_USAGE_RATE:
                *ret = r.usage_rate;
                return r.has_days;
        default:
                *ret = r.period_usage_rate;
                return r.has_periods;
        }
}

static long section_pupils(const struct bbt_school *s, enum bbt_section sec)
{
        switch (s->type) {
        case BBT_SCHOOL_PRIMARY:
                return sec == BBT_SECTION_PRIMARY ? s->students : -1;
        case BBT_SCHOOL_JUNIOR:
                return sec == BBT_SECTION_JUNIOR ? s->students : -1;
        default:
                return sec == BBT_SECTION_PRIMARY ? s->students_primary : s->students_junior;
        }
}

static int report_balance(struct ctx *c, struct bbt_report *rep)
{
        static const struct bbt_column cols[] = {
                { "indicator", "指标", "Indicator", BBT_CELL_TEXT, 0 },
                { "schools", "计入学校数", "Schools counted", BBT_CELL_INT, 0 },
                { "left_out", "未计入学校数", "Schools left out", BBT_CELL_INT, 0 },
                { "mean", "均值", "Mean", BBT_CELL_NUM, 3 },
                { "sd", "标准差", "Std. deviation", BBT_CELL_NUM, 3 },
                { "cv", "差异系数", "CV", BBT_CELL_NUM, 3 },
                { "quality_max", "优质均衡标准", "Quality bound", BBT_CELL_NUM, 2 },
                { "basic_max", "基本均衡标准", "Basic bound", BBT_CELL_NUM, 2 },
                { "result", "结论", "Result", BBT_CELL_TEXT, 0 },
        };
        static const struct bbt_column value_cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "section", "学段", "Section", BBT_CELL_TEXT, 0 },
                { "pupils", "学生数", "Pupils", BBT_CELL_INT, 0 },
                { "terminals_per_100", "每百名学生多媒体教室数", "Classrooms per 100 pupils", BBT_CELL_NUM, 2 },
                { "avg_daily_hours", "日均使用时长(小时)", "Avg daily hours", BBT_CELL_NUM, 2 },
                { "usage_rate", "使用率", "Usage rate", BBT_CELL_RATE, 0 },
                { "period_usage_rate", "堂堂用率", "Per-lesson use", BBT_CELL_RATE, 0 },
        };
        static const char *const ind_zh[IND__COUNT] = { "每百名学生拥有网络多媒体教室数", "日均使用时长",
                                                       "使用率", "堂堂用率" };
        static const char *const ind_en[IND__COUNT] = { "Multimedia classrooms per 100 pupils", "Avg daily hours",
                                                       "Usage rate", "Per-lesson use" };
        struct bbt_balance_input *in = calloc(c->n_schools + 1, sizeof(*in));
        struct bbt_table *vt;

        if (!in)
                return -ENOMEM;
        for (int sec = 0; sec < 2; sec++) {
                struct bbt_table *t = bbt_report_add_table(rep, sec ? "junior" : "primary",
                                                           sec ? "初中差异系数" : "小学差异系数",
                                                           sec ? "Junior section" : "Primary section", cols,
                                                           BBT_ELEMENTSOF(cols));
                double quality, basic;

                bbt_balance_thresholds((enum bbt_section)sec, &quality, &basic);
                for (int ind = 0; ind < IND__COUNT; ind++) {
                        struct bbt_balance b;
                        size_t n = 0, undefined = 0;

                        for (size_t i = 0; i < c->n_schools; i++) {
                                const struct school_info *si = &c->schools[i];
                                long pupils;
                                double v;

                                if (!si->reg || (pupils = section_pupils(si->reg, (enum bbt_section)sec)) < 0)
                                        continue;
                                if (!indicator(si, ind, &v)) {
                                        undefined++;
                                        continue;
                                }
                                in[n].value = v;
                                in[n].pupils = pupils;
                                n++;
                        }
                        if (bbt_balance_compute(in, n, (enum bbt_section)sec, c->s->min_pupils, &b) < 0)
                                continue;
                        bbt_table_add_row(t);
                        bbt_table_set_text(t, 0, c->o->chinese ? ind_zh[ind] : ind_en[ind]);
                        bbt_table_set_int(t, 1, (int64_t)b.schools);
                        bbt_table_set_int(t, 2, (int64_t)(b.left_out + undefined));
                        if (b.schools) {
                                bbt_table_set_num(t, 3, b.mean);
                                bbt_table_set_num(t, 4, b.sd);
                        }
                        if (b.defined)
                                bbt_table_set_num(t, 5, b.cv);
                        bbt_table_set_num(t, 6, quality);
                        bbt_table_set_num(t, 7, basic);
                        bbt_table_set_text(t, 8, !b.defined   ? L(c, "无法计算", "undefined")
                                                 : b.quality ? L(c, "达到优质均衡", "quality balance")
                                                 : b.basic   ? L(c, "达到基本均衡", "basic balance")
                                                             : L(c, "未达标", "not balanced"));
                }
        }
        free(in);
        vt = bbt_report_add_table(rep, "values", "各校指标值", "Values per school", value_cols,
                                  BBT_ELEMENTSOF(value_cols));
        for (size_t i = 0; i < c->n_schools; i++) {
                const struct school_info *si = &c->schools[i];

                if (!si->reg)
                        continue;
                for (int sec = 0; sec < 2; sec++) {
                        long pupils = section_pupils(si->reg, (enum bbt_section)sec);
                        double v;

                        if (pupils < 0)
                                continue;
                        bbt_table_add_row(vt);
                        bbt_table_set_text(vt, 0, si->code);
                        bbt_table_set_text(vt, 1, si->reg->name);
                        bbt_table_set_text(vt, 2, sec ? L(c, "初中", "junior") : L(c, "小学", "primary"));
                        bbt_table_set_int(vt, 3, pupils);
                        for (int ind = 0; ind < IND__COUNT; ind++)
                                if (indicator(si, ind, &v))
                                        bbt_table_set_num(vt, 4 + (size_t)ind, v);
                }
        }
        bbt_report_add_note(rep,
                            "差异系数 = 学生数加权标准差 / 学生数加权均值，小学、初中分别计算；九年一贯制学校按各学段学生数分别计入。"
                            "未计入：该学段学生数不足最少学生数，或该指标在所选时段无法计算（如无上课日）的学校。",
                            "CV = pupil-weighted standard deviation / pupil-weighted mean, primary and junior apart; "
                            "a nine-year school counts in each section with that section's pupils. Left out: "
                            "schools with fewer pupils in the section than the minimum, or whose indicator cannot "
                            "be computed for the range (no school day).");
        return 0;
}

struct inventory_ctx {
        struct ctx *c;
        struct bbt_table *t;
        uint32_t *present; /* per term_info */
};

static int inventory_cb(void *u, const struct bbt_store_device *d)
{
        struct inventory_ctx *ic = u;
        struct ctx *c = ic->c;
        size_t ti = d->terminal_id >= 0 && d->terminal_id <= c->max_store_id ? c->by_store_id[d->terminal_id] : 0;
        const struct term_info *t;

        if (!ti)
                return 0;
        t = &c->terms[ti - 1];
        ic->present[ti - 1] |= 1u << d->kind;
        bbt_table_add_row(ic->t);
        bbt_table_set_text(ic->t, 0, c->schools[t->school].code);
        bbt_table_set_text(ic->t, 1, school_name(&c->schools[t->school]));
        bbt_table_set_text(ic->t, 2, t->id);
        bbt_table_set_text(ic->t, 3, room_of(t));
        bbt_table_set_text(ic->t, 4, bbt_periph_kind_name(d->kind));
        bbt_table_set_text(ic->t, 5, d->vendor);
        bbt_table_set_text(ic->t, 6, d->model);
        bbt_table_set_text(ic->t, 7, d->serial);
        bbt_table_set_text(ic->t, 8, d->bus);
        return 0;
}

static int report_inventory(struct ctx *c, struct bbt_report *rep)
{
        static const struct bbt_column cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "room", "教室", "Room", BBT_CELL_TEXT, 0 },
                { "kind", "类别", "Kind", BBT_CELL_TEXT, 0 },
                { "vendor", "厂商", "Vendor", BBT_CELL_TEXT, 0 },
                { "model", "型号", "Model", BBT_CELL_TEXT, 0 },
                { "serial", "序列号", "Serial", BBT_CELL_TEXT, 0 },
                { "bus", "接口", "Bus", BBT_CELL_TEXT, 0 },
        };
        static const struct bbt_column missing_cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "room", "教室", "Room", BBT_CELL_TEXT, 0 },
                { "missing", "缺少的外设", "Missing", BBT_CELL_TEXT, 0 },
        };
        struct inventory_ctx ic = { c, bbt_report_add_table(rep, "devices", "外设清单", "Peripherals", cols,
                                                            BBT_ELEMENTSOF(cols)), NULL };
        struct bbt_table *mt;
        int r;

        ic.present = calloc(c->n_terms + 1, sizeof(*ic.present));
        if (!ic.present)
                return -ENOMEM;
        r = bbt_store_inventory_each(c->store, inventory_cb, &ic);
        mt = bbt_report_add_table(rep, "missing", "应配未见外设", "Expected but absent", missing_cols,
                                  BBT_ELEMENTSOF(missing_cols));
        for (size_t i = 0; r == 0 && i < c->n_terms; i++) {
                const struct term_info *t = &c->terms[i];
                uint32_t missing = t->reg ? t->reg->expected & ~ic.present[i] : 0;
                char list[256] = "";
                size_t len = 0;

                if (!missing)
                        continue;
                for (int k = 0; k < BBT_KIND__COUNT; k++)
                        if (missing & (1u << k))
                                len += (size_t)snprintf(list + len, len < sizeof(list) ? sizeof(list) - len : 0,
                                                        "%s%s", len ? ", " : "",
                                                        bbt_periph_kind_name((enum bbt_periph_kind)k));
                bbt_table_add_row(mt);
                bbt_table_set_text(mt, 0, c->schools[t->school].code);
                bbt_table_set_text(mt, 1, school_name(&c->schools[t->school]));
                bbt_table_set_text(mt, 2, t->id);
                bbt_table_set_text(mt, 3, room_of(t));
                bbt_table_set_text(mt, 4, list);
        }
        free(ic.present);
        return r;
}

struct gap_sum_ctx {
        struct ctx *c;
        int64_t *missing; /* per term_info */
};

static int gap_sum_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        struct gap_sum_ctx *gs = u;
        size_t ti = terminal_id >= 0 && terminal_id <= gs->c->max_store_id ? gs->c->by_store_id[terminal_id] : 0;

        if (ti)
                gs->missing[ti - 1] += g->to - g->from + 1;
        return 0;
}

struct counter_ctx {
        const struct ctx *c;
        struct bbt_table *t;
};

static int counter_cb(void *u, const char *name, int64_t value)
{
        struct counter_ctx *cc = u;

        bbt_table_add_row(cc->t);
        bbt_table_set_text(cc->t, 0, name);
        bbt_table_set_int(cc->t, 1, value);
        return 0;
}

/* The loss reasons the aggregator records, in Chinese. */
static const char *loss_reason(const struct ctx *c, const char *reason)
{
        static const struct {
                const char *en, *zh;
        } names[] = {
                { "no longer in the agent's spool", "终端缓存中已不存在（缓存已满或已过期删除）" },
                { "never produced by the agent", "终端从未产生" },
                { "not resent in time", "补传超时" },
                { "no answer to resend", "补传请求无应答" },
                { "resent but never received", "已补传但未收到" },
                { "lost from the agent's spool (damage, or a power cut)", "终端缓存损坏或断电时未写入磁盘" },
                { "never stored by the agent (disk full or write error)", "终端未能写入缓存（磁盘已满或写入错误）" },
                { "used before an unclean stop, not in the agent's spool", "异常停止前已使用，终端缓存中没有" },
                { "used before an unclean stop, never received", "异常停止前已使用，未收到" },
                { "never used (skipped after an unclean stop)", "未使用（终端异常停止后跳过的序号）" },
                { "the agent cannot tell: lost, or never used", "终端无法判断：已丢失或从未使用（早于其记录的异常停止）" },
        };

        if (c->o->chinese)
                for (size_t i = 0; i < BBT_ELEMENTSOF(names); i++)
                        if (strcmp(reason, names[i].en) == 0)
                                return names[i].zh;
        return reason;
}

struct loss_list_ctx {
        struct ctx *c;
        struct bbt_table *t;
};

static const struct term_info *term_of(const struct ctx *c, int64_t store_id)
{
        size_t ti = store_id >= 0 && store_id <= c->max_store_id ? c->by_store_id[store_id] : 0;

        return ti ? &c->terms[ti - 1] : NULL;
}

/* A new row for the terminal STORE_ID (school code, terminal) if it is in
 * the report's scope; false if not. */
static bool terminal_row(struct loss_list_ctx *ll, int64_t store_id)
{
        const struct term_info *ti = term_of(ll->c, store_id);

        if (!ti)
                return false;
        bbt_table_add_row(ll->t);
        bbt_table_set_text(ll->t, 0, ll->c->schools[ti->school].code);
        bbt_table_set_text(ll->t, 1, ti->id);
        return true;
}

static int loss_list_cb(void *u, const struct bbt_store_loss *l)
{
        struct loss_list_ctx *ll = u;
        char when[32];

        if (!terminal_row(ll, l->terminal_id))
                return 0;
        bbt_table_set_text(ll->t, 2, l->kind == BBT_LOSS_SKIPPED ? "skipped" : "lost");
        bbt_table_set_text(ll->t, 3, l->kind == BBT_LOSS_SKIPPED ? L(ll->c, "跳过（未使用）", "skipped (never used)")
                                                                : L(ll->c, "丢失", "lost"));
        bbt_table_set_int(ll->t, 4, l->from);
        bbt_table_set_int(ll->t, 5, l->to);
        bbt_table_set_int(ll->t, 6, l->to - l->from + 1);
        bbt_table_set_text(ll->t, 7, loss_reason(ll->c, l->reason));
        format_time(ll->c, l->recorded_ms, when, sizeof(when));
        bbt_table_set_text(ll->t, 8, when);
        return 0;
}

static int conflict_list_cb(void *u, const struct bbt_store_conflict *cf)
{
        struct loss_list_ctx *ll = u;
        char when[32];

        if (!terminal_row(ll, cf->terminal_id))
                return 0;
        bbt_table_set_int(ll->t, 2, cf->seq);
        bbt_table_set_text(ll->t, 3, bbt_channel_name(cf->channel));
        format_time(ll->c, cf->recv_ms, when, sizeof(when));
        bbt_table_set_text(ll->t, 4, when);
        return 0;
}

static int report_loss(struct ctx *c, struct bbt_report *rep)
{
        static const struct bbt_column cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "received", "已存储", "Stored", BBT_CELL_INT, 0 },
                { "duplicates", "重复", "Duplicates", BBT_CELL_INT, 0 },
                { "lost", "丢失", "Lost", BBT_CELL_INT, 0 },
                { "skipped", "跳过(未使用)", "Skipped (never used)", BBT_CELL_INT, 0 },
                { "conflicts", "序号冲突", "Seq conflicts", BBT_CELL_INT, 0 },
                { "missing", "待补传", "Missing now", BBT_CELL_INT, 0 },
                { "spool_dropped", "终端缓存溢出", "Dropped by agent", BBT_CELL_INT, 0 },
                { "first_seq", "首序号", "First seq", BBT_CELL_INT, 0 },
                { "last_seq", "末序号", "Last seq", BBT_CELL_INT, 0 },
        };
        static const struct bbt_column range_cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "kind", "类别代码", "Kind code", BBT_CELL_TEXT, 0 },
                { "kind_name", "类别", "Kind", BBT_CELL_TEXT, 0 },
                { "from_seq", "起始序号", "From seq", BBT_CELL_INT, 0 },
                { "to_seq", "结束序号", "To seq", BBT_CELL_INT, 0 },
                { "count", "条数", "Count", BBT_CELL_INT, 0 },
                { "reason", "原因", "Reason", BBT_CELL_TEXT, 0 },
                { "recorded", "记录时间", "Recorded", BBT_CELL_TEXT, 0 },
        };
        static const struct bbt_column conflict_cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "seq", "序号", "Seq", BBT_CELL_INT, 0 },
                { "channel", "通道", "Channel", BBT_CELL_TEXT, 0 },
                { "received", "收到时间", "Received", BBT_CELL_TEXT, 0 },
        };
        static const struct bbt_column counter_cols[] = {
                { "counter", "计数项", "Counter", BBT_CELL_TEXT, 0 },
                { "value", "数值", "Value", BBT_CELL_INT, 0 },
        };
        struct bbt_table *t = bbt_report_add_table(rep, "terminals", "各终端传输情况", "Delivery per terminal",
                                                   cols, BBT_ELEMENTSOF(cols));
        struct gap_sum_ctx gs = { c, calloc(c->n_terms + 1, sizeof(int64_t)) };
        struct counter_ctx cc = { c, NULL };
        struct loss_list_ctx ll = { c, NULL };
        int r;

        if (!gs.missing)
                return -ENOMEM;
        r = bbt_store_gaps_each(c->store, gap_sum_cb, &gs);
        for (size_t i = 0; r == 0 && i < c->n_terms; i++) {
                const struct term_info *ti = &c->terms[i];

                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, c->schools[ti->school].code);
                bbt_table_set_text(t, 1, ti->id);
                if (!ti->st)
                        continue;
                bbt_table_set_int(t, 2, ti->st->received);
                bbt_table_set_int(t, 3, ti->st->duplicates);
                bbt_table_set_int(t, 4, ti->st->lost);
                bbt_table_set_int(t, 5, ti->st->skipped);
                bbt_table_set_int(t, 6, ti->st->conflicts);
                bbt_table_set_int(t, 7, gs.missing[i]);
                bbt_table_set_int(t, 8, ti->st->spool_dropped);
                if (ti->st->first_seq >= 0) {
                        bbt_table_set_int(t, 9, ti->st->first_seq);
                        bbt_table_set_int(t, 10, ti->st->high_seq);
                }
        }
        free(gs.missing);
        ll.t = bbt_report_add_table(rep, "ranges", "丢失与跳过的序号", "Lost and skipped seqs", range_cols,
                                    BBT_ELEMENTSOF(range_cols));
        if (r == 0)
                r = bbt_store_losses_each(c->store, loss_list_cb, &ll);
        ll.t = bbt_report_add_table(rep, "conflicts", "序号冲突", "Seq conflicts", conflict_cols,
                                    BBT_ELEMENTSOF(conflict_cols));
        if (r == 0)
                r = bbt_store_conflicts_each(c->store, conflict_list_cb, &ll);
        cc.t = bbt_report_add_table(rep, "counters", "接收计数(全部终端)", "Ingest counters (all terminals)",
                                    counter_cols, BBT_ELEMENTSOF(counter_cols));
        if (r == 0)
                r = bbt_store_counters_each(c->store, counter_cb, &cc);
        bbt_report_add_note(rep,
                            "丢失：终端产生过、但最终没有收到的消息（原因见明细）；跳过：终端异常停止（断电、崩溃）后为保证序号不重复而跳过、从未使用的序号，不是数据丢失；"
                            "序号冲突：同一序号收到了内容不同的两条消息，两条都保留；待补传：已发现缺失、仍在等待终端补传；终端缓存溢出：终端离线过久、本地缓存已满而丢弃的消息（由终端上报）。",
                            "Lost: messages the terminal produced that never arrived (reasons in the list); skipped: "
                            "seqs the terminal never used, jumped over after an unclean stop (a power cut, a crash) so "
                            "that no seq is used twice -- not a loss of data; seq conflicts: two different messages "
                            "under one seq, both kept; missing now: gaps still being asked for; dropped by agent: "
                            "discarded from a full spool on the terminal (its own count).");
        return r;
}

int bbt_reports_run(const struct bbt_report_options *o, struct bbt_store *store, const struct bbt_registry *reg,
                    const struct bbt_calendar *cal, const struct bbt_metric_settings *s, FILE *out, char *err,
                    size_t err_size)
{
        static const struct {
                const char *zh, *en;
                int (*fn)(struct ctx *c, struct bbt_report *rep);
        } kinds[BBT_REPORT__COUNT] = {
                [BBT_REPORT_SUMMARY] = { "班班通使用情况汇总", "Classroom terminal use: summary", report_summary },
                [BBT_REPORT_SCHOOLS] = { "各校使用情况", "Use per school", report_schools },
                [BBT_REPORT_TERMINALS] = { "各终端使用情况", "Use per terminal", report_terminals },
                [BBT_REPORT_IDLE] = { "闲置设备清单", "Idle equipment", report_idle },
                [BBT_REPORT_FAULTS] = { "设备故障清单", "Faults", report_faults },
                [BBT_REPORT_BALANCE] = { "校际差异系数", "Balance across schools", report_balance },
                [BBT_REPORT_INVENTORY] = { "外设清单", "Peripherals", report_inventory },
                [BBT_REPORT_LOSS] = { "数据传输完整性", "Delivery", report_loss },
        };
        struct ctx c = { .o = o, .s = s, .reg = reg, .cal = cal, .store = store };
        struct bbt_report *rep = NULL;
        int r;

        if (o->kind < 0 || o->kind >= BBT_REPORT__COUNT || o->to < o->from) {
                snprintf(err, err_size, "bad report options");
                return -EINVAL;
        }
        c.to = o->to;
        c.qfrom = o->from;
        if (c.to - c.qfrom < IDLE_LOOKBACK_DAYS)
                c.qfrom = c.to - IDLE_LOOKBACK_DAYS;
        c.end_ms = bbt_day_start_ms(o->to + 1, s->offset_min);
        if (o->now_ms > 0 && o->now_ms < c.end_ms)
                c.end_ms = o->now_ms;
        r = collect(&c);
        if (r == 0)
                r = compute(&c);
        if (r == 0) {
                rep = bbt_report_new(kind_names[o->kind], kinds[o->kind].zh, kinds[o->kind].en);
                r = rep ? kinds[o->kind].fn(&c, rep) : -ENOMEM;
        }
        if (r == 0) {
                add_settings(&c, rep);
                r = bbt_report_render(rep, o->format, o->chinese, out);
        }
        if (r < 0)
                snprintf(err, err_size, "%s", r == -ENOMEM ? "out of memory" : bbt_store_error(store));
        bbt_report_free(rep);
        free_ctx(&c);
        return r;
}
