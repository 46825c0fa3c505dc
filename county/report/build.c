/* What the report builders share: registry names, peripheral kinds, the rate columns, idle counts. */
#include "build.h"

#include <string.h>


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
        bbt_table_set_text(t, 1, si->reg ? si->reg->name : NULL); /* null: not in the registry */
        bbt_table_set_text(t, 2, term->id);
        bbt_table_set_text(t, 3, term->reg && term->reg->room && *term->reg->room ? term->reg->room : NULL);
}

void bbt_build_set_periph_kind(struct bbt_table *t, size_t col, const struct bbt_report_data *d,
                               enum bbt_periph_kind k)
{
        static const char *const labels[BBT_KIND__COUNT][2] = {
                [BBT_KIND_CAMERA] = { "摄像头", "camera" },
                [BBT_KIND_AUDIO_IN] = { "音频输入(麦克风)", "audio input" },
                [BBT_KIND_AUDIO_OUT] = { "音频输出(音箱)", "audio output" },
                [BBT_KIND_TOUCH] = { "触摸屏", "touch screen" },
                [BBT_KIND_PEN] = { "电子笔", "pen" },
                [BBT_KIND_KEYBOARD] = { "键盘", "keyboard" },
                [BBT_KIND_MOUSE] = { "鼠标", "mouse" },
                [BBT_KIND_STORAGE] = { "存储设备", "storage" },
                [BBT_KIND_DISPLAY] = { "显示器", "display" },
                [BBT_KIND_PROJECTOR] = { "投影机", "projector" },
                [BBT_KIND_NETWORK] = { "网卡", "network adapter" },
                [BBT_KIND_OTHER] = { "其他", "other" },
        };

        if ((int)k < 0 || k >= BBT_KIND__COUNT)
                return; /* empty */
        bbt_table_set_code(t, col, bbt_periph_kind_name(k), labels[k][!d->o->chinese]);
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
