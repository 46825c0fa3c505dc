/* The balance report: 校际差异系数 of four indicators for primary and junior sections, and each school's values. */
#include "build.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdlib.h>

#include "balance.h"

/* The indicators of the balance statistic, per school. */
enum { IND_TERMINALS_PER_100, IND_AVG_HOURS, IND_USAGE_RATE, IND_PERIOD_RATE, IND__COUNT };

static bool indicator(const struct bbt_report_school *si, int ind, double *ret)
{
        struct bbt_rates r;

        bbt_rates_compute(&si->acc, &r);
        switch (ind) {
        case IND_TERMINALS_PER_100:
                if (si->reg->students <= 0)
                        return false;
                *ret = (double)si->n_terminals / (double)si->reg->students * 100.0;
                return true;
        case IND_AVG_HOURS:
                *ret = r.avg_daily_hours;
                return r.has_days;
        case IND_USAGE_RATE:
                *ret = r.usage_rate;
                return r.has_days;
        default:
                *ret = r.period_usage_rate;
                return r.has_periods;
        }
}

static long section_pupils(const struct bbt_school *s, enum bbt_section sec)
{
        switch (s->type) {
        case BBT_SCHOOL_PRIMARY:
                return sec == BBT_SECTION_PRIMARY ? s->students : -1;
        case BBT_SCHOOL_JUNIOR:
                return sec == BBT_SECTION_JUNIOR ? s->students : -1;
        default:
                return sec == BBT_SECTION_PRIMARY ? s->students_primary : s->students_junior;
        }
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                { "indicator", "指标", "Indicator", BBT_CELL_CODE, 0 },
                { "schools", "计入学校数", "Schools counted", BBT_CELL_INT, 0 },
                { "left_out", "未计入学校数", "Schools left out", BBT_CELL_INT, 0 },
                { "mean", "均值", "Mean", BBT_CELL_NUM, 3 },
                { "sd", "标准差", "Std. deviation", BBT_CELL_NUM, 3 },
                { "cv", "差异系数", "CV", BBT_CELL_NUM, 3 },
                { "quality_max", "优质均衡标准", "Quality bound", BBT_CELL_NUM, 2 },
                { "basic_max", "基本均衡标准", "Basic bound", BBT_CELL_NUM, 2 },
                { "result", "结论", "Result", BBT_CELL_CODE, 0 },
        };
        static const struct bbt_column value_cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "section", "学段", "Section", BBT_CELL_CODE, 0 },
                { "pupils", "学生数", "Pupils", BBT_CELL_INT, 0 },
                { "terminals_per_100", "每百名学生多媒体教室数", "Classrooms per 100 pupils", BBT_CELL_NUM, 2 },
                { "avg_daily_hours", "日均使用时长(小时)", "Avg daily hours", BBT_CELL_NUM, 2 },
                { "usage_rate", "使用率", "Usage rate", BBT_CELL_RATE, 0 },
                { "period_usage_rate", "堂堂用率", "Per-lesson use", BBT_CELL_RATE, 0 },
        };
        /* The indicators' codes: the keys of their columns in the values table. */
        static const char *const ind_code[IND__COUNT] = { "terminals_per_100", "avg_daily_hours", "usage_rate",
                                                         "period_usage_rate" };
        static const char *const ind_zh[IND__COUNT] = { "每百名学生拥有网络多媒体教室数", "日均使用时长",
                                                       "使用率", "堂堂用率" };
        static const char *const ind_en[IND__COUNT] = { "Multimedia classrooms per 100 pupils", "Avg daily hours",
                                                       "Usage rate", "Per-lesson use" };
        struct bbt_balance_input *in = calloc(d->n_schools + 1, sizeof(*in));
        struct bbt_table *vt;

        if (!in)
                return -ENOMEM;
        for (int sec = 0; sec < 2; sec++) {
                struct bbt_table *t = bbt_document_add_table(doc, sec ? "junior" : "primary",
                                                             sec ? "初中差异系数" : "小学差异系数",
                                                             sec ? "Junior section" : "Primary section", cols,
                                                             BBT_ELEMENTSOF(cols));
                double quality, basic;

                bbt_balance_thresholds((enum bbt_section)sec, &quality, &basic);
                for (int ind = 0; ind < IND__COUNT; ind++) {
                        struct bbt_balance b;
                        size_t n = 0, undefined = 0;

                        for (size_t i = 0; i < d->n_schools; i++) {
                                const struct bbt_report_school *si = &d->schools[i];
                                long pupils;
                                double v;

                                if (!si->reg || (pupils = section_pupils(si->reg, (enum bbt_section)sec)) < 0)
                                        continue;
                                if (!indicator(si, ind, &v)) {
                                        undefined++;
                                        continue;
                                }
                                in[n].value = v;
                                in[n].pupils = pupils;
                                n++;
                        }
                        if (bbt_balance_compute(in, n, (enum bbt_section)sec, d->s->min_pupils, &b) < 0)
                                continue;
                        bbt_table_add_row(t);
                        bbt_table_set_code(t, 0, ind_code[ind], d->o->chinese ? ind_zh[ind] : ind_en[ind]);
                        bbt_table_set_int(t, 1, (int64_t)b.schools);
                        bbt_table_set_int(t, 2, (int64_t)(b.left_out + undefined));
                        if (b.schools) {
                                bbt_table_set_num(t, 3, b.mean);
                                bbt_table_set_num(t, 4, b.sd);
                        }
                        if (b.defined)
                                bbt_table_set_num(t, 5, b.cv);
                        bbt_table_set_num(t, 6, quality);
                        bbt_table_set_num(t, 7, basic);
                        if (!b.defined)
                                bbt_table_set_code(t, 8, "undefined", L(d, "无法计算", "undefined"));
                        else if (b.quality)
                                bbt_table_set_code(t, 8, "quality", L(d, "达到优质均衡", "quality balance"));
                        else if (b.basic)
                                bbt_table_set_code(t, 8, "basic", L(d, "达到基本均衡", "basic balance"));
                        else
                                bbt_table_set_code(t, 8, "not_balanced", L(d, "未达标", "not balanced"));
                }
        }
        free(in);
        vt = bbt_document_add_table(doc, "values", "各校指标值", "Values per school", value_cols,
                                    BBT_ELEMENTSOF(value_cols));
        for (size_t i = 0; i < d->n_schools; i++) {
                const struct bbt_report_school *si = &d->schools[i];

                if (!si->reg)
                        continue;
                for (int sec = 0; sec < 2; sec++) {
                        long pupils = section_pupils(si->reg, (enum bbt_section)sec);
                        double v;

                        if (pupils < 0)
                                continue;
                        bbt_table_add_row(vt);
                        bbt_table_set_text(vt, 0, si->code);
                        bbt_table_set_text(vt, 1, si->reg->name);
                        bbt_table_set_code(vt, 2, sec ? "junior" : "primary",
                                           sec ? L(d, "初中", "junior") : L(d, "小学", "primary"));
                        bbt_table_set_int(vt, 3, pupils);
                        for (int ind = 0; ind < IND__COUNT; ind++)
                                if (indicator(si, ind, &v))
                                        bbt_table_set_num(vt, 4 + (size_t)ind, v);
                }
        }
        bbt_document_add_note(doc,
                              "差异系数 = 学生数加权标准差 / 学生数加权均值，小学、初中分别计算；九年一贯制学校按各学段学生数分别计入。"
                              "未计入：该学段学生数不足最少学生数，或该指标在所选时段无法计算（如无上课日）的学校。",
                              "CV = pupil-weighted standard deviation / pupil-weighted mean, primary and junior apart; "
                              "a nine-year school counts in each section with that section's pupils. Left out: "
                              "schools with fewer pupils in the section than the minimum, or whose indicator cannot "
                              "be computed for the range (no school day).");
        return 0;
}

const struct bbt_report_kind bbt_report_balance = {
        .name = "balance",
        .help = "校际差异系数 for primary and junior sections, with the thresholds",
        .title_zh = "校际差异系数",
        .title_en = "Balance across schools",
        .needs = BBT_NEEDS_FIGURES,
        .build = build,
};
