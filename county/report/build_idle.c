/* The idle report (闲置设备): terminals (almost) unused over their last school days, and why. */
#include "build.h"
#include "bbt/base.h"

#include <stdio.h>

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "used_days", "窗口内使用天数", "Days used in window", BBT_CELL_INT, 0 },
                { "last_active", "最后使用", "Last active", BBT_CELL_TEXT, 0 },
                { "last_seen", "最后上报", "Last seen", BBT_CELL_TEXT, 0 },
                { "reason", "原因", "Reason", BBT_CELL_TEXT, 0 },
        };
        struct bbt_table *t = bbt_document_add_table(doc, "idle", "闲置设备", "Idle equipment", cols,
                                                     BBT_ELEMENTSOF(cols));
        char when[32], note_zh[160], note_en[160];

        for (size_t i = 0; i < d->n_terms; i++) {
                const struct bbt_report_terminal *ti = &d->terms[i];

                if (ti->idle == BBT_IDLE_NO)
                        continue;
                bbt_build_terminal_row(t, d, ti);
                bbt_table_set_int(t, 4, ti->idle_used);
                bbt_build_time(d, ti->last_active_ms, when, sizeof(when));
                bbt_table_set_text(t, 5, when);
                bbt_build_time(d, ti->last_seen_ms, when, sizeof(when));
                bbt_table_set_text(t, 6, when);
                bbt_table_set_text(t, 7, bbt_idle_reason_name(ti->idle, d->o->chinese));
        }
        snprintf(note_zh, sizeof(note_zh), "闲置：截至截止日期的最近 %d 个上课日中使用不超过 %d 天。",
                 d->s->idle_window, d->s->idle_max_days);
        snprintf(note_en, sizeof(note_en), "Idle: used on at most %d of the last %d school days up to the end date.",
                 d->s->idle_max_days, d->s->idle_window);
        bbt_document_add_note(doc, note_zh, note_en);
        return 0;
}

const struct bbt_report_kind bbt_report_idle = {
        .name = "idle",
        .help = "闲置设备: terminals (almost) unused over the last school days",
        .title_zh = "闲置设备清单",
        .title_en = "Idle equipment",
        .needs = BBT_NEEDS_FIGURES,
        .build = build,
};
