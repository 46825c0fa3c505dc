/* What the report builders share: times in the report's zone and language, registry names, the rate columns. */
#include "build.h"

#include <stdio.h>
#include <string.h>

#include "dates.h"

void bbt_build_time(const struct bbt_report_data *d, int64_t ms, char *buf, size_t size)
{
        int64_t local;
        int32_t day;
        int minute;

        if (ms <= 0) {
                snprintf(buf, size, "%s", L(d, "从未", "never"));
                return;
        }
        local = ms + (int64_t)d->s->offset_min * BBT_MS_PER_MIN;
        day = bbt_day_of_ms(ms, d->s->offset_min);
        minute = (int)((local - (int64_t)day * BBT_MS_PER_DAY) / BBT_MS_PER_MIN);
        bbt_day_format(day, buf, size);
        snprintf(buf + strlen(buf), size > strlen(buf) ? size - strlen(buf) : 0, " %02d:%02d", minute / 60,
                 minute % 60);
}

const char *bbt_build_school_name(const struct bbt_report_school *si)
{
        return si->reg ? si->reg->name : "";
}

const char *bbt_build_township(const struct bbt_report_school *si)
{
        return si->reg && si->reg->township ? si->reg->township : "";
}

void bbt_build_terminal_row(struct bbt_table *t, const struct bbt_report_data *d,
                            const struct bbt_report_terminal *term)
{
        const struct bbt_report_school *si = &d->schools[term->school];

        bbt_table_add_row(t);
        bbt_table_set_text(t, 0, si->code);
        bbt_table_set_text(t, 1, bbt_build_school_name(si));
        bbt_table_set_text(t, 2, term->id);
        bbt_table_set_text(t, 3, term->reg && term->reg->room ? term->reg->room : "");
}

void bbt_build_set_rates(struct bbt_table *t, size_t first, const struct bbt_rates_acc *acc)
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
        if (r.has_weeks)
                bbt_table_set_num(t, first + 8, r.weekly_rule_rate);
}

size_t bbt_build_count_idle(const struct bbt_report_data *d, size_t school, bool all)
{
        size_t n = 0;

        for (size_t i = 0; i < d->n_terms; i++)
                if ((all || d->terms[i].school == school) && d->terms[i].idle != BBT_IDLE_NO)
                        n++;
        return n;
}
