/* The report kinds' table, and making one report: gather its data, run its builder, add the settings, render. */
#include "reports.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "dates.h"

extern const struct bbt_report_kind bbt_report_summary;
extern const struct bbt_report_kind bbt_report_schools;
extern const struct bbt_report_kind bbt_report_terminals;
extern const struct bbt_report_kind bbt_report_idle;
extern const struct bbt_report_kind bbt_report_faults;
extern const struct bbt_report_kind bbt_report_balance;
extern const struct bbt_report_kind bbt_report_inventory;
extern const struct bbt_report_kind bbt_report_loss;
extern const struct bbt_report_kind bbt_report_record;
extern const struct bbt_report_kind bbt_report_energy;
extern const struct bbt_report_kind bbt_report_audit;

/* Every kind of report, in the order --help lists them. */
static const struct bbt_report_kind *const kinds[] = {
        &bbt_report_summary, &bbt_report_schools, &bbt_report_terminals, &bbt_report_idle,
        &bbt_report_faults,  &bbt_report_balance, &bbt_report_inventory, &bbt_report_loss,
        &bbt_report_record,  &bbt_report_energy,
        &bbt_report_audit,
};

const struct bbt_report_kind *bbt_report_kind_find(const char *name)
{
        for (size_t i = 0; name && i < BBT_ELEMENTSOF(kinds); i++)
                if (strcmp(kinds[i]->name, name) == 0)
                        return kinds[i];
        return NULL;
}

const struct bbt_report_kind *bbt_report_kind_at(size_t i)
{
        return i < BBT_ELEMENTSOF(kinds) ? kinds[i] : NULL;
}

int bbt_report_options_range(struct bbt_report_options *o, const char *from, const char *to, const char *week,
                             int32_t today, const char *prefix, const char **bad, char *err, size_t err_size)
{
        const char *p = prefix ? prefix : "";
        int32_t day;

        o->to = today;
        if (to && bbt_day_parse(to, &o->to) < 0) {
                *bad = "to";
                snprintf(err, err_size, "%sto %s: expected a date YYYY-MM-DD", p, to);
                return -EINVAL;
        }
        o->from = o->to - 29;
        if (from && bbt_day_parse(from, &o->from) < 0) {
                *bad = "from";
                snprintf(err, err_size, "%sfrom %s: expected a date YYYY-MM-DD", p, from);
                return -EINVAL;
        }
        if (o->from > o->to) {
                *bad = "from";
                snprintf(err, err_size, "%sfrom is after %sto", p, p);
                return -EINVAL;
        }
        /* --week DATE: the week, Monday to Sunday, that holds DATE. A report
         * for one week (the record) without it takes the week of --to. */
        day = o->to;
        if (week && (from || to)) {
                *bad = "week";
                snprintf(err, err_size, "%sweek replaces %sfrom and %sto", p, p, p);
                return -EINVAL;
        }
        if (week && bbt_day_parse(week, &day) < 0) {
                *bad = "week";
                snprintf(err, err_size, "%sweek %s: expected a date YYYY-MM-DD", p, week);
                return -EINVAL;
        }
        if (!week && (o->kind->needs & BBT_NEEDS_WEEK) && from) {
                *bad = "from";
                snprintf(err, err_size, "%s covers one week, Monday to Sunday: give %sweek DATE", o->kind->name, p);
                return -EINVAL;
        }
        if (week || (o->kind->needs & BBT_NEEDS_WEEK)) {
                o->from = bbt_week_monday(day);
                o->to = o->from + 6;
        }
        if ((o->kind->needs & BBT_NEEDS_SCHOOL) && !o->school) {
                *bad = "school";
                snprintf(err, err_size, "%s is for one school: give %sschool CODE", o->kind->name, p);
                return -EINVAL;
        }
        if (o->to - o->from > 3660) {
                *bad = week ? "week" : "from";
                snprintf(err, err_size, "a range of at most ten years, please");
                return -EINVAL;
        }
        return 0;
}

/* The settings footer every report ends with: range, filters, thresholds,
 * time zone, store, when and by which version. */
static void add_settings(const struct bbt_report_data *d, struct bbt_document *doc)
{
        const struct bbt_metric_settings *s = d->s;
        char v[640], from[16], to[16];

        bbt_day_format(d->o->from, from, sizeof(from));
        bbt_day_format(d->o->to, to, sizeof(to));
        bbt_document_add_setting(doc, "from", "起始日期", "From", from);
        bbt_document_add_setting(doc, "to", "截止日期", "To", to);
        /* No filter: null in JSON, "全部" in the footer. */
        if (d->o->county)
                bbt_document_add_setting(doc, "county", "县区", "County", d->o->county);
        else
                bbt_document_add_setting_none(doc, "county", "县区", "County", L(d, "全部", "all"));
        if (d->o->school)
                bbt_document_add_setting(doc, "school", "学校", "School", d->o->school);
        else
                bbt_document_add_setting_none(doc, "school", "学校", "School", L(d, "全部", "all"));
        bbt_document_add_setting_int(doc, "used_day_min", "当日使用判定(分钟)", "Used day (min)", s->used_day_min,
                                     "min");
        bbt_document_add_setting_int(doc, "used_period_min", "单节使用判定(分钟)", "Used period (min)",
                                     s->used_period_min, "min");
        bbt_document_add_setting_int(doc, "school_hours_margin", "在校时段前后延伸(分钟)",
                                     "School-hours margin (min)", s->margin_min, "min");
        bbt_document_add_setting_int(doc, "heartbeat_interval", "心跳间隔(秒)", "Heartbeat interval (s)",
                                     s->heartbeat_s, "s");
        bbt_document_add_setting_int(doc, "idle_window", "闲置判定窗口(上课日)", "Idle window (school days)",
                                     s->idle_window, "school_days");
        bbt_document_add_setting_int(doc, "idle_max_days", "闲置判定最多使用天数", "Idle: used on at most (days)",
                                     s->idle_max_days, "school_days");
        bbt_document_add_setting_int(doc, "silent_days", "离线故障判定(上课日)", "Silent fault after (school days)",
                                     s->silent_days, "school_days");
        bbt_document_add_setting_int(doc, "min_pupils", "差异系数最少学生数", "Balance: minimum pupils",
                                     s->min_pupils, "pupils");
        snprintf(v, sizeof(v), "%c%02d:%02d", s->offset_min < 0 ? '-' : '+', abs(s->offset_min) / 60,
                 abs(s->offset_min) % 60);
        bbt_document_add_setting(doc, "utc_offset", "时区", "UTC offset", v);
        bbt_document_add_setting_int(doc, "clock_skew_limit", "时钟偏差上限(秒)", "Clock skew limit (s)",
                                     s->clock_skew_limit_ms / 1000, "s");
        bbt_document_add_setting_int(doc, "weekly_lessons_min", "每周使用节数要求(每5个上课日)",
                                     "Weekly rule: lessons per 5 school days", s->weekly_lessons_min, "lessons");
        if (d->o->kind->needs & BBT_NEEDS_ENERGY) {
                bbt_document_add_setting_int(doc, "watts", "终端功率(瓦)", "Terminal watts", s->watts.watts, "W");
                if (s->watts.n > 0)
                        bbt_document_add_setting(doc, "kind_watts", "各机型功率(瓦)", "Watts by kind",
                                                 bbt_energy_watts_format(&s->watts, v, sizeof(v)));
                else
                        bbt_document_add_setting_none(doc, "kind_watts", "各机型功率(瓦)", "Watts by kind",
                                                      L(d, "无", "none"));
                snprintf(v, sizeof(v), "%02d:%02d", s->night_start_min / 60, s->night_start_min % 60);
                bbt_document_add_setting(doc, "night_start", "夜间开始", "Night starts", v);
                snprintf(v, sizeof(v), "%02d:%02d", s->night_end_min / 60, s->night_end_min % 60);
                bbt_document_add_setting(doc, "night_end", "夜间结束(次日)", "Night ends (next day)", v);
        }
        if (d->o->store_label)
                bbt_document_add_setting(doc, "store", "数据库", "Store", d->o->store_label);
        bbt_document_add_setting_time(doc, "generated", "生成时间", "Generated", d->o->now_ms);
        bbt_document_add_setting(doc, "version", "版本", "Version", "bbt " BBT_VERSION);
}

int bbt_report_build(const struct bbt_report_options *o, struct bbt_store *store, const struct bbt_registry *reg,
                     const struct bbt_calendar *cal, const struct bbt_metric_settings *s, struct bbt_document **ret,
                     char *err, size_t err_size)
{
        const struct bbt_report_kind *k = o->kind;
        struct bbt_report_data d;
        struct bbt_document *doc = NULL;
        int r;

        if (!k || o->to < o->from) {
                snprintf(err, err_size, "bad report options");
                return -EINVAL;
        }
        if ((k->needs & BBT_NEEDS_SCHOOL) && !o->school) {
                snprintf(err, err_size, "the %s report is for one school: give its code", k->name);
                return -EINVAL;
        }
        if ((k->needs & BBT_NEEDS_WEEK) && (bbt_day_weekday(o->from) != 1 || o->to != o->from + 6)) {
                snprintf(err, err_size, "the %s report is for one week, Monday to Sunday", k->name);
                return -EINVAL;
        }
        r = bbt_report_data_gather(&d, o, store, reg, cal, s, k->needs);
        if (r == 0) {
                doc = bbt_document_new(k->name, k->title_zh, k->title_en);
                if (doc)
                        doc->offset_min = s->offset_min;
                r = doc ? k->build(&d, doc) : -ENOMEM;
        }
        if (r == 0)
                add_settings(&d, doc);
        bbt_report_data_free(&d);
        if (r < 0)
                snprintf(err, err_size, "%s", r == -ENOMEM ? "out of memory" : bbt_store_error(store));
        else if (doc->error < 0) /* a builder's mistake: a bad key, column or value type */
                snprintf(err, err_size, "building the %s report: %s", k->name, strerror(-(r = doc->error)));
        if (r < 0) {
                bbt_document_free(doc);
                return r;
        }
        *ret = doc;
        return 0;
}

int bbt_reports_run(const struct bbt_report_options *o, struct bbt_store *store, const struct bbt_registry *reg,
                    const struct bbt_calendar *cal, const struct bbt_metric_settings *s, FILE *out, char *err,
                    size_t err_size)
{
        struct bbt_document *doc;
        int r;

        r = bbt_report_build(o, store, reg, cal, s, &doc, err, err_size);
        if (r < 0)
                return r;
        r = bbt_document_render(doc, o->format ? o->format : bbt_renderer_at(0), o->chinese, out);
        if (r < 0)
                snprintf(err, err_size, "%s", r == -ENOMEM ? "out of memory" : strerror(-r));
        bbt_document_free(doc);
        return r;
}
