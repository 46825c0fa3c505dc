/* What the report builders (build_*.c) share: the language, names, peripheral kinds and the rate columns. */
#ifndef BBT_BUILD_H
#define BBT_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report_data.h"

/* ZH or EN, in the report's language. */
static inline const char *L(const struct bbt_report_data *d, const char *zh, const char *en)
{
        return d->o->chinese ? zh : en;
}

/* The registry's name and township of a school, "" where there is none. */
const char *bbt_build_school_name(const struct bbt_report_school *si);
const char *bbt_build_township(const struct bbt_report_school *si);

/* The columns that say which terminal a row is about, in this order. */
#define BBT_TERMINAL_COLUMNS                                                                                \
        { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },                                     \
        { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },                                          \
        { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },                                               \
        { "room", "教室", "Room", BBT_CELL_TEXT, 0 }

/* Adds a row to T with BBT_TERMINAL_COLUMNS (its first four) filled for TERM;
 * the name of a school not in the registry and a room not given are null. */
void bbt_build_terminal_row(struct bbt_table *t, const struct bbt_report_data *d,
                            const struct bbt_report_terminal *term);

/* Sets CODE cell COL of T's last row to peripheral kind K: its protocol name
 * ("touch") and its label in the report's language (触摸屏). */
void bbt_build_set_periph_kind(struct bbt_table *t, size_t col, const struct bbt_report_data *d,
                               enum bbt_periph_kind k);

/* The rate columns every level shares, in this order. */
#define BBT_RATE_COLUMNS                                                                                    \
        { "power_on_rate", "开机率", "Power-on rate", BBT_CELL_RATE, 0 },                                   \
        { "usage_rate", "使用率", "Usage rate", BBT_CELL_RATE, 0 },                                         \
        { "avg_daily_hours", "日均使用时长(小时)", "Avg daily hours", BBT_CELL_NUM, 2 },                    \
        { "period_usage_rate", "堂堂用率", "Per-lesson use", BBT_CELL_RATE, 0 },                            \
        { "interactive_share", "互动使用占比", "Interactive share", BBT_CELL_RATE, 0 },                     \
        { "online_rate", "在线率", "Online rate", BBT_CELL_RATE, 0 },                                       \
        { "intact_rate", "设备完好率", "Intact rate", BBT_CELL_RATE, 0 },                                   \
        { "weekly_lessons", "周均使用节数", "Weekly lessons", BBT_CELL_NUM, 1 },                         \
        { "weekly_rule_rate", "周节数达标率", "Weekly rule met", BBT_CELL_RATE, 0 }
#define BBT_N_RATE_COLUMNS 9

/* Fills the 9 rate columns of T's last row starting at FIRST from ACC;
 * undefined rates stay empty. */
void bbt_build_set_rates(struct bbt_table *t, size_t first, const struct bbt_rates_acc *acc);

/* Idle terminals of school SCHOOL, or of every school if ALL. */
size_t bbt_build_count_idle(const struct bbt_report_data *d, size_t school, bool all);

#endif
