/* The summary: the selection overall, by township, and 城区/镇区/乡村 with the gap between them (an object). */
#include "build.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t count_faulty(const struct bbt_report_data *d)
{
        size_t n = 0;

        for (size_t i = 0; i < d->n_terms; i++)
                n += !d->terms[i].intact;
        return n;
}

/* After-hours on-time and its energy from the schools' day totals (no
 * interval scan: the energy report splits it further, per terminal). A
 * school's energy is at the mean wattage of its terminals. */
static int after_hours(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                { "school_days_hours", "上课日课外开机(小时)", "School days, after hours (h)", BBT_CELL_NUM, 1 },
                { "weekend_hours", "周末开机(小时)", "Weekends (h)", BBT_CELL_NUM, 1 },
                { "holiday_hours", "节假日开机(小时)", "Holidays (h)", BBT_CELL_NUM, 1 },
                { "after_hours", "课外开机合计(小时)", "After hours (h)", BBT_CELL_NUM, 1 },
                { "energy_kwh", "估算电量(千瓦时)", "Energy (kWh)", BBT_CELL_NUM, 1 },
        };
        int64_t sum[BBT_AFTER__COUNT] = { 0 }, total = 0, *watts = calloc(d->n_schools + 1, sizeof(*watts));
        double kwh = 0;
        struct bbt_table *t;

        if (!watts)
                return -ENOMEM;
        for (size_t j = 0; j < d->n_terms; j++)
                watts[d->terms[j].school] +=
                        bbt_energy_watts_of(&d->s->watts, d->terms[j].reg ? d->terms[j].reg->kind : NULL);
        for (size_t i = 0; i < d->n_schools; i++) {
                const struct bbt_report_school *si = &d->schools[i];
                int64_t ms = 0;

                for (int k = 0; k < BBT_AFTER__COUNT; k++) {
                        sum[k] += si->after_ms[k];
                        ms += si->after_ms[k];
                }
                kwh += si->n_terminals ? bbt_energy_kwh(ms, 1) * (double)watts[i] / (double)si->n_terminals
                                       : bbt_energy_kwh(ms, d->s->watts.watts);
        }
        free(watts);
        t = bbt_document_add_object(doc, "after_hours", "课外开机与能耗", "After-hours on-time and energy", cols,
                                    BBT_ELEMENTSOF(cols));
        for (int k = 0; k < BBT_AFTER__COUNT; k++) {
                bbt_table_set_num(t, (size_t)k, (double)sum[k] / 3.6e6);
                total += sum[k];
        }
        bbt_table_set_num(t, 3, (double)total / 3.6e6);
        bbt_table_set_num(t, 4, kwh);
        return 0;
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column overall_cols[] = {
                { "scope", "范围", "Scope", BBT_CELL_CODE, 0 }, /* all, county or school; the label names it */
                { "schools", "学校数", "Schools", BBT_CELL_INT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                BBT_RATE_COLUMNS,
                { "idle", "闲置终端", "Idle", BBT_CELL_INT, 0 },
                { "faulty", "故障终端", "Faulty", BBT_CELL_INT, 0 },
        };
        static const struct bbt_column township_cols[] = {
                { "township", "乡镇/街道", "Township", BBT_CELL_TEXT, 0 },
                { "schools", "学校数", "Schools", BBT_CELL_INT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                BBT_RATE_COLUMNS,
        };
        static const struct bbt_column area_cols[] = {
                { "area", "城乡", "Area", BBT_CELL_CODE, 0 },
                { "schools", "学校数", "Schools", BBT_CELL_INT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                BBT_RATE_COLUMNS,
        };
        static const struct bbt_column gap_cols[] = { BBT_RATE_COLUMNS };
        struct bbt_rates_acc all = { 0 }, area[BBT_AREA__COUNT] = { { 0 } };
        size_t area_schools[BBT_AREA__COUNT] = { 0 };
        struct bbt_table *t;

        for (size_t i = 0; i < d->n_schools; i++) {
                bbt_rates_merge(&all, &d->schools[i].acc);
                if (d->schools[i].reg) {
                        bbt_rates_merge(&area[d->schools[i].reg->area], &d->schools[i].acc);
                        area_schools[d->schools[i].reg->area]++;
                }
        }
        t = bbt_document_add_object(doc, "overall", "总体", "Overall", overall_cols, BBT_ELEMENTSOF(overall_cols));
        if (d->o->school)
                bbt_table_set_code(t, 0, "school", d->o->school);
        else if (d->o->county)
                bbt_table_set_code(t, 0, "county", d->o->county);
        else
                bbt_table_set_code(t, 0, "all", L(d, "全部", "all"));
        bbt_table_set_int(t, 1, (int64_t)d->n_schools);
        bbt_table_set_int(t, 2, (int64_t)d->n_terms);
        bbt_build_set_rates(t, 3, &all);
        bbt_table_set_int(t, 3 + BBT_N_RATE_COLUMNS, (int64_t)bbt_build_count_idle(d, 0, true));
        bbt_table_set_int(t, 4 + BBT_N_RATE_COLUMNS, (int64_t)count_faulty(d));

        /* By township, in the order townships first appear in the registry. */
        t = bbt_document_add_table(doc, "townships", "按乡镇", "By township", township_cols,
                                   BBT_ELEMENTSOF(township_cols));
        for (size_t i = 0; i < d->n_schools; i++) {
                const char *tw = bbt_build_township(&d->schools[i]);
                struct bbt_rates_acc acc = { 0 };
                size_t schools = 0;
                bool first = true;

                for (size_t j = 0; j < i; j++)
                        if (strcmp(bbt_build_township(&d->schools[j]), tw) == 0)
                                first = false;
                if (!first)
                        continue;
                for (size_t j = i; j < d->n_schools; j++)
                        if (strcmp(bbt_build_township(&d->schools[j]), tw) == 0) {
                                bbt_rates_merge(&acc, &d->schools[j].acc);
                                schools++;
                        }
                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, *tw ? tw : NULL); /* not registered: null */
                bbt_table_set_int(t, 1, (int64_t)schools);
                bbt_table_set_int(t, 2, acc.terminals);
                bbt_build_set_rates(t, 3, &acc);
        }

        /* 城区 / 镇区 / 乡村, and the gap between the highest and lowest as an object of its own. */
        t = bbt_document_add_table(doc, "areas", "城乡对比", "Urban, town and rural", area_cols,
                                   BBT_ELEMENTSOF(area_cols));
        {
                double hi[BBT_N_RATE_COLUMNS], lo[BBT_N_RATE_COLUMNS];
                bool have[BBT_N_RATE_COLUMNS] = { false };

                for (int a = 0; a < BBT_AREA__COUNT; a++) {
                        struct bbt_rates r;
                        double v[BBT_N_RATE_COLUMNS];
                        bool def[BBT_N_RATE_COLUMNS];

                        if (!area_schools[a])
                                continue;
                        bbt_table_add_row(t);
                        bbt_table_set_code(t, 0, bbt_area_name((enum bbt_area)a, false),
                                           bbt_area_name((enum bbt_area)a, d->o->chinese));
                        bbt_table_set_int(t, 1, (int64_t)area_schools[a]);
                        bbt_table_set_int(t, 2, area[a].terminals);
                        bbt_build_set_rates(t, 3, &area[a]);
                        bbt_rates_compute(&area[a], &r);
                        v[0] = r.power_on_rate, v[1] = r.usage_rate, v[2] = r.avg_daily_hours;
                        v[3] = r.period_usage_rate, v[4] = r.interactive_share, v[5] = r.online_rate;
                        v[6] = r.intact_rate, v[7] = r.weekly_lessons;
                        v[8] = r.weekly_rule_rate, def[8] = r.has_weeks;
                        def[0] = def[1] = def[2] = def[7] = r.has_days;
                        def[3] = r.has_periods, def[4] = r.has_active, def[5] = r.has_online;
                        def[6] = r.has_terminals;
                        for (int k = 0; k < BBT_N_RATE_COLUMNS; k++) {
                                if (!def[k])
                                        continue;
                                if (!have[k] || v[k] > hi[k])
                                        hi[k] = v[k];
                                if (!have[k] || v[k] < lo[k])
                                        lo[k] = v[k];
                                have[k] = true;
                        }
                }
                t = bbt_document_add_object(doc, "area_gap", "城乡差距(最高−最低)", "Area gap (highest − lowest)",
                                            gap_cols, BBT_ELEMENTSOF(gap_cols));
                for (int k = 0; k < BBT_N_RATE_COLUMNS; k++)
                        if (have[k])
                                bbt_table_set_num(t, (size_t)k, hi[k] - lo[k]);
        }
        if (after_hours(d, doc) < 0)
                return -ENOMEM;
        bbt_document_add_note(doc, "终端数含从未上报的登记终端；未上报即未使用。",
                              "Terminals include registered ones that never reported: they count as unused.");
        bbt_document_add_note(doc,
                              "课外开机：上课日在校时段以外、周末和节假日的开机时长（含熄屏待机），定义见 energy 报表；"
                              "估算电量按各校终端的平均功率。",
                              "After hours: on-time outside school hours on school days and on weekends and "
                              "holidays (standby included), as in the energy report; energy at each school's mean "
                              "terminal wattage.");
        return 0;
}

const struct bbt_report_kind bbt_report_summary = {
        .name = "summary",
        .help = "county figures overall, by township and 城区/镇区/乡村 with the gap",
        .title_zh = "班班通使用情况汇总",
        .title_en = "Classroom terminal use: summary",
        .needs = BBT_NEEDS_FIGURES | BBT_NEEDS_ENERGY,
        .build = build,
};
