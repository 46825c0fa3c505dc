/* The usage record (班班通使用记录表): one school's week, a table per classroom of days × periods in minutes. */
#include "build.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dates.h"

#define WEEK_DAYS 7

/* The columns of a classroom's table: the day's figures first, then one
 * column per period. A school's table uses the first RECORD_FIXED_COLS +
 * its number of periods, so one static array serves every bell schedule. */
#define RECORD_FIXED_COLS 6
#define PERIOD_COL(n)                                                                                       \
        { "period_" #n, "第" #n "节(分钟)", "Period " #n " (min)", BBT_CELL_INT, 0 }
static const struct bbt_column record_cols[RECORD_FIXED_COLS + BBT_PERIODS_MAX] = {
        { "date", "日期", "Date", BBT_CELL_TEXT, 0 },
        { "weekday", "星期", "Weekday", BBT_CELL_CODE, 0 },
        { "day_type", "类别", "Day", BBT_CELL_CODE, 0 },
        { "lessons_used", "有使用节数", "Lessons with use", BBT_CELL_INT, 0 },
        { "active_min", "使用时长(分钟)", "Minutes used", BBT_CELL_INT, 0 },
        { "interactive_min", "互动时长(分钟)", "Interactive minutes", BBT_CELL_INT, 0 },
        PERIOD_COL(1), PERIOD_COL(2), PERIOD_COL(3), PERIOD_COL(4),  PERIOD_COL(5),  PERIOD_COL(6),
        PERIOD_COL(7), PERIOD_COL(8), PERIOD_COL(9), PERIOD_COL(10), PERIOD_COL(11), PERIOD_COL(12),
};

/* Whole minutes, rounded down: a period shows 10 exactly when it has the
 * 10 minutes used_period_min asks for (thresholds are whole minutes). */
static int64_t minutes(int64_t ms)
{
        return ms > 0 ? ms / BBT_MS_PER_MIN : 0;
}

struct record {
        struct bbt_report_data *d;
        struct bbt_day_rollup *days; /* [terminal index × WEEK_DAYS + day − from], summed */
};

static int day_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *row)
{
        struct record *rec = u;
        const struct bbt_report_terminal *t = bbt_report_data_terminal(rec->d, terminal_id);
        int32_t i = row->day - rec->d->o->from;

        if (t && i >= 0 && i < WEEK_DAYS)
                bbt_day_rollup_add(&rec->days[(size_t)(t - rec->d->terms) * WEEK_DAYS + (size_t)i], row);
        return 0;
}

static bool is_school_day(const struct bbt_report_data *d, const struct bbt_report_school *si, int32_t day)
{
        return si->school_day[day - d->qfrom] != 0;
}

/* A day after today (the week is not over): nothing to record yet. */
static bool is_future(const struct bbt_report_data *d, int32_t day)
{
        return d->o->now_ms > 0 && day > bbt_day_of_ms(d->o->now_ms, d->s->offset_min);
}

/* The school days the record counts: those up to today. */
static bool is_counted(const struct bbt_report_data *d, const struct bbt_report_school *si, int32_t day)
{
        return is_school_day(d, si, day) && !is_future(d, day);
}

/* The week of one terminal: what its table's total row and the summary row show. */
struct week {
        int school_days;
        int64_t lessons;
        int64_t active_ms, interactive_ms;
        int64_t period_ms[BBT_PERIODS_MAX];
};

static void week_of(const struct bbt_report_data *d, const struct bbt_report_terminal *t,
                    const struct bbt_day_rollup *days, struct week *w)
{
        const struct bbt_report_school *si = &d->schools[t->school];

        memset(w, 0, sizeof(*w));
        for (int i = 0; i < WEEK_DAYS; i++) {
                if (!is_counted(d, si, d->o->from + i))
                        continue;
                w->school_days++;
                w->active_ms += days[i].active_ms;
                w->interactive_ms += days[i].interactive_ms;
                for (int k = 0; k < si->bells->n; k++) {
                        w->lessons += bbt_period_used(d->s, &days[i], k);
                        w->period_ms[k] += days[i].period_active_ms[k];
                }
        }
}

/* Sets column COL of TAB's last row to the kind of DAY, code and label. */
static void set_day_type(struct bbt_table *tab, size_t col, const struct bbt_report_data *d,
                         const struct bbt_report_school *si, int32_t day)
{
        bool weekend = bbt_day_weekday(day) >= 6;

        if (is_school_day(d, si, day) && is_future(d, day))
                bbt_table_set_code(tab, col, "not_yet", L(d, "未到", "not yet"));
        else if (is_school_day(d, si, day))
                bbt_table_set_code(tab, col, weekend ? "makeup_day" : "school_day",
                                   weekend ? L(d, "调休上课", "make-up school day") : L(d, "上课日", "school day"));
        else
                bbt_table_set_code(tab, col, weekend ? "weekend" : "holiday",
                                   weekend ? L(d, "休息日", "weekend") : L(d, "节假日", "holiday"));
}

/* One classroom's table: a row per day of the week, then the week's total. */
static void classroom_table(struct bbt_report_data *d, struct bbt_document *doc, size_t n,
                            const struct bbt_report_terminal *t, const struct bbt_day_rollup *days)
{
        static const struct weekday {
                const char *code, *zh, *en;
        } weekdays[7] = {
                { "mon", "星期一", "Monday" },   { "tue", "星期二", "Tuesday" }, { "wed", "星期三", "Wednesday" },
                { "thu", "星期四", "Thursday" }, { "fri", "星期五", "Friday" },  { "sat", "星期六", "Saturday" },
                { "sun", "星期日", "Sunday" },
        };
        const struct bbt_report_school *si = &d->schools[t->school];
        const char *room = t->reg && t->reg->room ? t->reg->room : "";
        int n_periods = si->bells->n < BBT_PERIODS_MAX ? si->bells->n : BBT_PERIODS_MAX;
        char key[32], caption[2 * BBT_ID_MAX + 256], date[16];
        struct bbt_table *tab;
        struct week w;

        snprintf(key, sizeof(key), "record_%zu", n);
        snprintf(caption, sizeof(caption), "%s%s%s", room, *room ? " " : "", t->id);
        tab = bbt_document_add_table(doc, key, caption, caption, record_cols,
                                     RECORD_FIXED_COLS + (size_t)n_periods);
        for (int i = 0; i < WEEK_DAYS; i++) {
                int32_t day = d->o->from + i;
                const struct weekday *wd;
                int lessons = 0;

                bbt_table_add_row(tab);
                bbt_table_set_text(tab, 0, bbt_day_format(day, date, sizeof(date)));
                wd = &weekdays[bbt_day_weekday(day) - 1];
                bbt_table_set_code(tab, 1, wd->code, d->o->chinese ? wd->zh : wd->en);
                set_day_type(tab, 2, d, si, day);
                /* Not a school day (or not yet): nothing counts, so nothing is shown (not 0). */
                if (!is_counted(d, si, day))
                        continue;
                for (int k = 0; k < n_periods; k++) {
                        lessons += bbt_period_used(d->s, &days[i], k);
                        bbt_table_set_int(tab, RECORD_FIXED_COLS + (size_t)k,
                                          minutes(days[i].period_active_ms[k]));
                }
                bbt_table_set_int(tab, 3, lessons);
                bbt_table_set_int(tab, 4, minutes(days[i].active_ms));
                bbt_table_set_int(tab, 5, minutes(days[i].interactive_ms));
        }
        week_of(d, t, days, &w);
        /* The paper form's last line; its verdict is in the classrooms table. */
        bbt_table_add_row(tab);
        bbt_table_set_code(tab, 2, "week_total", L(d, "本周合计", "Week total"));
        if (w.school_days == 0)
                return;
        bbt_table_set_int(tab, 3, w.lessons);
        bbt_table_set_int(tab, 4, minutes(w.active_ms));
        bbt_table_set_int(tab, 5, minutes(w.interactive_ms));
        for (int k = 0; k < n_periods; k++)
                bbt_table_set_int(tab, RECORD_FIXED_COLS + (size_t)k, minutes(w.period_ms[k]));
}

/* The first table: every classroom's week against the weekly rule. */
static void summary_row(struct bbt_report_data *d, struct bbt_table *tab, const struct bbt_report_terminal *t,
                        const struct bbt_day_rollup *days)
{
        struct week w;

        week_of(d, t, days, &w);
        bbt_build_terminal_row(tab, d, t);
        bbt_table_set_int(tab, 4, w.school_days);
        if (w.school_days == 0)
                return;
        bbt_table_set_int(tab, 5, w.lessons);
        bbt_table_set_int(tab, 6, bbt_weekly_rule_required(d->s, w.school_days));
        bbt_table_set_bool(tab, 7, bbt_weekly_rule_met(d->s, w.lessons, w.school_days));
        bbt_table_set_int(tab, 8, minutes(w.active_ms));
        bbt_table_set_int(tab, 9, minutes(w.interactive_ms));
}

/* The notes: the bells of each school in the record (usually one), and the rule. */
static void add_notes(struct bbt_report_data *d, struct bbt_document *doc)
{
        char zh[1024], en[1024];

        for (size_t i = 0; i < d->n_schools; i++) {
                const struct bbt_bells *b = d->schools[i].bells;
                size_t nz = 0, ne = 0;

                nz += (size_t)snprintf(zh, sizeof(zh), "%s 节次时间：", d->schools[i].code);
                ne += (size_t)snprintf(en, sizeof(en), "%s periods:", d->schools[i].code);
                for (int k = 0; k < b->n && nz < sizeof(zh) && ne < sizeof(en); k++) {
                        const struct bbt_period *p = &b->p[k];

                        nz += (size_t)snprintf(zh + nz, sizeof(zh) - nz, "%s第%d节 %02d:%02d–%02d:%02d", k ? "，" : "",
                                               k + 1, p->start_min / 60, p->start_min % 60, p->end_min / 60,
                                               p->end_min % 60);
                        ne += (size_t)snprintf(en + ne, sizeof(en) - ne, "%s %d %02d:%02d–%02d:%02d", k ? "," : "",
                                               k + 1, p->start_min / 60, p->start_min % 60, p->end_min / 60,
                                               p->end_min % 60);
                }
                bbt_document_add_note(doc, zh, en);
        }
        snprintf(zh, sizeof(zh),
                 "分钟为在校时段内的使用（active）分钟，不足一分钟舍去；某节使用满 %d 分钟即为该节有使用。"
                 "互动时长按天统计（终端只报告每段使用中的互动总时长，不报告发生在哪一节）。"
                 "休息日和节假日的使用不计入任何指标，不填。",
                 d->s->used_period_min);
        snprintf(en, sizeof(en),
                 "Minutes of active use in school hours, rounded down; a lesson has use with %d minutes in it. "
                 "Interactive minutes are per day (the terminal reports how long an interval was interactive, "
                 "not in which period). Use on weekends and holidays counts for nothing and is left blank.",
                 d->s->used_period_min);
        bbt_document_add_note(doc, zh, en);
        snprintf(zh, sizeof(zh),
                 "周使用节数要求：每 5 个上课日至少 %d 节有使用；上课日不足或多于 5 天的周按比例（要求节数 = "
                 "⌈%d × 上课天数 / 5⌉）。",
                 d->s->weekly_lessons_min, d->s->weekly_lessons_min);
        snprintf(en, sizeof(en),
                 "Weekly rule: at least %d lessons with use per 5 school days; a week with more or fewer school "
                 "days needs ceil(%d × school days / 5).",
                 d->s->weekly_lessons_min, d->s->weekly_lessons_min);
        bbt_document_add_note(doc, zh, en);
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column summary_cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "school_days", "上课天数", "School days", BBT_CELL_INT, 0 },
                { "lessons_used", "有使用节数", "Lessons with use", BBT_CELL_INT, 0 },
                { "lessons_required", "要求节数", "Lessons required", BBT_CELL_INT, 0 },
                { "weekly_rule", "周节数是否达标", "Weekly rule met", BBT_CELL_BOOL, 0 },
                { "active_min", "使用时长(分钟)", "Minutes used", BBT_CELL_INT, 0 },
                { "interactive_min", "互动时长(分钟)", "Interactive minutes", BBT_CELL_INT, 0 },
        };
        struct bbt_store_scope week = d->scope;
        struct record rec = { .d = d };
        struct bbt_table *tab;
        int r;

        /* bbt_report_build() made sure: one week, Monday to Sunday. */
        rec.days = calloc(d->n_terms ? d->n_terms * WEEK_DAYS : 1, sizeof(*rec.days));
        if (!rec.days)
                return -ENOMEM;
        week.from_day = d->o->from;
        week.to_day = d->o->to;
        r = bbt_store_days_each_in(d->store, &week, day_cb, &rec);
        if (r < 0) {
                free(rec.days);
                return r;
        }
        tab = bbt_document_add_table(doc, "classrooms", "本周汇总", "Week summary", summary_cols,
                                     BBT_ELEMENTSOF(summary_cols));
        for (size_t i = 0; i < d->n_terms; i++)
                summary_row(d, tab, &d->terms[i], &rec.days[i * WEEK_DAYS]);
        for (size_t i = 0; i < d->n_terms; i++)
                classroom_table(d, doc, i + 1, &d->terms[i], &rec.days[i * WEEK_DAYS]);
        add_notes(d, doc);
        free(rec.days);
        return 0;
}

const struct bbt_report_kind bbt_report_record = {
        .name = "record",
        .help = "班班通使用记录表: one school's week (--school, --week), a table per\n"
                "classroom: days × periods in minutes, against the weekly rule",
        .title_zh = "班班通使用记录表",
        .title_en = "Classroom terminal usage record",
        .needs = BBT_NEEDS_SCHOOL | BBT_NEEDS_WEEK,
        .build = build,
};
