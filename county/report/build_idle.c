/* The idle report (闲置设备): terminals (almost) unused over their last school days, and why. */
#include "build.h"
#include "bbt/base.h"

#include <stdio.h>

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
                /* Never: null. */
                bbt_table_set_time(t, 5, ti->st ? ti->st->last_active_ms : 0);
                bbt_table_set_time(t, 6, ti->st ? ti->st->last_seen_ms : 0);
                bbt_table_set_code(t, 7, bbt_idle_reason_code(ti->idle), bbt_idle_reason_name(ti->idle, d->o->chinese));
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
