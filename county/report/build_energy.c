/* The energy report: on-time outside school hours and its energy, per terminal and school (docs/metrics.md). */
#include "build.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdlib.h>

#include "dates.h"
#include "energy.h"

/* The hour columns, in this order, after the columns that say whose they are. */
#define HOUR_COLUMNS                                                                                       \
        { "evening_hours", "晚间开机(小时)", "Evening (h)", BBT_CELL_NUM, 2 },                               \
        { "night_hours", "夜间开机(小时)", "Night (h)", BBT_CELL_NUM, 2 },                                   \
        { "weekend_hours", "周末开机(小时)", "Weekend (h)", BBT_CELL_NUM, 2 },                               \
        { "holiday_hours", "节假日开机(小时)", "Holiday (h)", BBT_CELL_NUM, 2 },                             \
        { "after_hours", "课外开机合计(小时)", "After hours (h)", BBT_CELL_NUM, 2 },                          \
        { "energy_kwh", "估算电量(千瓦时)", "Energy (kWh)", BBT_CELL_NUM, 1 },                               \
        { "nights_on", "过夜开机(夜次)", "Nights left on", BBT_CELL_INT, 0 }
#define N_HOUR_COLUMNS 7

/* What a terminal, a school or the whole selection adds up to. */
struct energy_sum {
        int64_t after_ms[BBT_ENERGY__COUNT];
        double kwh;
        int64_t nights_on;
        int64_t terminals_left_on; /* with at least one night on */
        bool known;                /* a terminal that reported (else its cells are null) */
        int watts;
        int32_t last_night;
};

struct energy_build {
        struct bbt_report_data *d;
        struct energy_sum *terms; /* by index into d->terms */
};

static int energy_cb(void *u, const struct bbt_energy_terminal *row)
{
        struct energy_build *b = u;
        const struct bbt_report_terminal *t = bbt_report_data_terminal(b->d, row->terminal_id);
        struct energy_sum *s;

        if (!t)
                return 0;
        s = &b->terms[t - b->d->terms];
        for (int k = 0; k < BBT_ENERGY__COUNT; k++)
                s->after_ms[k] = row->after_ms[k];
        s->kwh = bbt_energy_kwh(row->after_hours_ms, s->watts);
        s->nights_on = row->nights_on;
        s->terminals_left_on = row->nights_on > 0;
        s->last_night = row->last_night;
        return 0;
}

static void sum_add(struct energy_sum *into, const struct energy_sum *s)
{
        for (int k = 0; k < BBT_ENERGY__COUNT; k++)
                into->after_ms[k] += s->after_ms[k];
        into->kwh += s->kwh;
        into->nights_on += s->nights_on;
        into->terminals_left_on += s->terminals_left_on;
        into->known |= s->known;
}

/* The N_HOUR_COLUMNS from FIRST of T's last row. */
static void set_sum(struct bbt_table *t, size_t first, const struct energy_sum *s)
{
        int64_t total = 0;

        if (!s->known)
                return;
        for (int k = 0; k < BBT_ENERGY__COUNT; k++) {
                bbt_table_set_num(t, first + (size_t)k, (double)s->after_ms[k] / 3.6e6);
                total += s->after_ms[k];
        }
        bbt_table_set_num(t, first + 4, (double)total / 3.6e6);
        bbt_table_set_num(t, first + 5, s->kwh);
        bbt_table_set_int(t, first + 6, s->nights_on);
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column overall_cols[] = {
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                HOUR_COLUMNS,
                { "terminals_left_on", "曾过夜开机终端", "Terminals left on overnight", BBT_CELL_INT, 0 },
        };
        static const struct bbt_column school_cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                HOUR_COLUMNS,
                { "terminals_left_on", "曾过夜开机终端", "Terminals left on overnight", BBT_CELL_INT, 0 },
        };
        static const struct bbt_column terminal_cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "kind", "机型", "Kind", BBT_CELL_TEXT, 0 },
                { "watts", "功率(瓦)", "Watts", BBT_CELL_INT, 0 },
                HOUR_COLUMNS,
                { "last_night_on", "最近过夜开机", "Last night left on", BBT_CELL_TEXT, 0 },
        };
        struct bbt_energy_rules rules = {
                .cal = d->cal, .margin_min = d->s->margin_min, .offset_min = d->s->offset_min,
                .night_start_min = d->s->night_start_min, .night_end_min = d->s->night_end_min,
        };
        struct bbt_store_scope scope = d->scope;
        struct energy_build b = { .d = d };
        struct energy_sum all = { .known = true }, *schools;
        struct bbt_table *t;
        char day[16];
        int r;

        b.terms = calloc(d->n_terms + 1, sizeof(*b.terms));
        schools = calloc(d->n_schools + 1, sizeof(*schools));
        if (!b.terms || !schools) {
                free(b.terms);
                free(schools);
                return -ENOMEM;
        }
        for (size_t i = 0; i < d->n_terms; i++) {
                const struct bbt_report_terminal *ti = &d->terms[i];

                b.terms[i].known = ti->st != NULL;
                b.terms[i].watts = bbt_energy_watts_of(&d->s->watts, ti->reg ? ti->reg->kind : NULL);
                b.terms[i].last_night = INT32_MIN;
        }
        scope.from_day = d->o->from;
        scope.to_day = d->o->to;
        r = bbt_energy_each(d->store, &rules, &scope, energy_cb, &b);
        if (r < 0)
                goto out;

        for (size_t i = 0; i < d->n_terms; i++)
                sum_add(&schools[d->terms[i].school], &b.terms[i]);
        for (size_t i = 0; i < d->n_schools; i++)
                sum_add(&all, &schools[i]);

        t = bbt_document_add_object(doc, "overall", "总计", "Total", overall_cols, BBT_ELEMENTSOF(overall_cols));
        bbt_table_set_int(t, 0, (int64_t)d->n_terms);
        set_sum(t, 1, &all);
        bbt_table_set_int(t, 1 + N_HOUR_COLUMNS, all.terminals_left_on);

        t = bbt_document_add_table(doc, "schools", "各校", "By school", school_cols, BBT_ELEMENTSOF(school_cols));
        for (size_t i = 0; i < d->n_schools; i++) {
                const struct bbt_report_school *si = &d->schools[i];

                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, si->code);
                bbt_table_set_text(t, 1, si->reg ? si->reg->name : NULL);
                bbt_table_set_int(t, 2, (int64_t)si->n_terminals);
                set_sum(t, 3, &schools[i]);
                if (schools[i].known)
                        bbt_table_set_int(t, 3 + N_HOUR_COLUMNS, schools[i].terminals_left_on);
        }

        t = bbt_document_add_table(doc, "terminals", "各终端", "By terminal", terminal_cols,
                                   BBT_ELEMENTSOF(terminal_cols));
        for (size_t i = 0; i < d->n_terms; i++) {
                const struct bbt_report_terminal *ti = &d->terms[i];
                const struct energy_sum *s = &b.terms[i];

                bbt_build_terminal_row(t, d, ti);
                bbt_table_set_text(t, 4, ti->reg && *ti->reg->kind ? ti->reg->kind : NULL);
                bbt_table_set_int(t, 5, s->watts);
                set_sum(t, 6, s);
                if (s->last_night != INT32_MIN)
                        bbt_table_set_text(t, 6 + N_HOUR_COLUMNS, bbt_day_format(s->last_night, day, sizeof(day)));
        }

        bbt_document_add_note(doc,
                              "课外开机：上课日在校时段（首节前至末节后各延伸 school_hours_margin）以外的开机时长，"
                              "以及周末、节假日全天的开机时长；熄屏待机也算开机（电脑在运行）。",
                              "After hours: on-time outside school hours (first period to last, each widened by "
                              "school_hours_margin) on school days, and all on-time on weekends and holidays; "
                              "standby with the display off counts as on (the PC runs).");
        bbt_document_add_note(doc,
                              "夜间为 night_start 至次日 night_end；过夜开机为夜间任一时刻开机的夜次。"
                              "电量按机型功率估算（电量 = 课外开机时长 × 功率），未上报的终端为空。",
                              "Night runs from night_start to night_end the next morning; a night left on is one in "
                              "which the terminal was on at any time. Energy is estimated at the kind's wattage "
                              "(after-hours time × watts); terminals that never reported are left blank.");
out:
        free(b.terms);
        free(schools);
        return r;
}

const struct bbt_report_kind bbt_report_energy = {
        .name = "energy",
        .help = "on-time outside school hours (evenings, nights, weekends, holidays), nights left on\n"
                "and the estimated energy, per school and terminal",
        .title_zh = "课外开机与能耗",
        .title_en = "After-hours on-time and energy",
        .needs = BBT_NEEDS_ENERGY,
        .build = build,
};
