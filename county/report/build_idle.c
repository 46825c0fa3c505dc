/* The idle report (闲置设备): terminals (almost) unused over their last school days, and why. */
#include "build.h"
#include "bbt/base.h"

#include <stdio.h>

/* Beside the idle list, not in it: terminals that missed the weekly rule in
 * some week of the range (they may well be in use, only too little). */
static void add_below_weekly_rule(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "weeks_judged", "考核周数", "Weeks judged", BBT_CELL_INT, 0 },
                { "weeks_below", "未达标周数", "Weeks below", BBT_CELL_INT, 0 },
                { "lessons_used", "使用节数", "Lessons with use", BBT_CELL_INT, 0 },
                { "weekly_lessons", "周均使用节数", "Weekly lessons", BBT_CELL_NUM, 1 },
        };
        struct bbt_table *t = bbt_document_add_table(doc, "below_weekly_rule", "周使用节数未达标",
                                                     "Below the weekly rule", cols, BBT_ELEMENTSOF(cols));
        char note_zh[200], note_en[200];

        for (size_t i = 0; i < d->n_terms; i++) {
                const struct bbt_report_terminal *ti = &d->terms[i];
                struct bbt_rates r;

                if (ti->acc.weeks_met >= ti->acc.weeks_judged)
                        continue;
                bbt_rates_compute(&ti->acc, &r);
                bbt_build_terminal_row(t, d, ti);
                bbt_table_set_int(t, 4, ti->acc.weeks_judged);
                bbt_table_set_int(t, 5, ti->acc.weeks_judged - ti->acc.weeks_met);
                bbt_table_set_int(t, 6, ti->acc.periods_used);
                if (r.has_days)
                        bbt_table_set_num(t, 7, r.weekly_lessons);
        }
        snprintf(note_zh, sizeof(note_zh),
                 "周使用节数要求：每 5 个上课日至少 %d 节有使用（不足 5 个上课日的周按比例），统计起止日期内的各周。",
                 d->s->weekly_lessons_min);
        snprintf(note_en, sizeof(note_en),
                 "Weekly rule: at least %d lessons with use per 5 school days (scaled for shorter weeks), "
                 "each week of the range.",
                 d->s->weekly_lessons_min);
        bbt_document_add_note(doc, note_zh, note_en);
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "used_days", "窗口内使用天数", "Days used in window", BBT_CELL_INT, 0 },
                { "last_active", "最后使用", "Last active", BBT_CELL_TIME, 0 },
                { "last_seen", "最后上报", "Last seen", BBT_CELL_TIME, 0 },
                { "reason", "原因", "Reason", BBT_CELL_CODE, 0 },
        };
        struct bbt_table *t = bbt_document_add_table(doc, "idle", "闲置设备", "Idle equipment", cols,
                                                     BBT_ELEMENTSOF(cols));
        char note_zh[160], note_en[160];

        for (size_t i = 0; i < d->n_terms; i++) {
                const struct bbt_report_terminal *ti = &d->terms[i];

                if (ti->idle == BBT_IDLE_NO)
                        continue;
                bbt_build_terminal_row(t, d, ti);
                bbt_table_set_int(t, 4, ti->idle_used);
                /* As of the end of the range; never: null. */
                bbt_table_set_time(t, 5, ti->last_active_ms);
                bbt_table_set_time(t, 6, ti->last_seen_ms);
                bbt_table_set_code(t, 7, bbt_idle_reason_code(ti->idle), bbt_idle_reason_name(ti->idle, d->o->chinese));
        }
        snprintf(note_zh, sizeof(note_zh), "闲置：截至截止日期的最近 %d 个上课日中使用不超过 %d 天。",
                 d->s->idle_window, d->s->idle_max_days);
        snprintf(note_en, sizeof(note_en), "Idle: used on at most %d of the last %d school days up to the end date.",
                 d->s->idle_max_days, d->s->idle_window);
        bbt_document_add_note(doc, note_zh, note_en);
        add_below_weekly_rule(d, doc);
        return 0;
}

const struct bbt_report_kind bbt_report_idle = {
        .name = "idle",
        .help = "闲置设备: terminals (almost) unused over the last school days",
        .title_zh = "闲置设备清单",
        .title_en = "Idle equipment",
        .needs = BBT_NEEDS_FIGURES | BBT_NEEDS_SEEN_TIMES,
        .build = build,
};
