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

/* The indicators' codes: the keys of their columns in the values table. */
static const char *const ind_code[IND__COUNT] = { "terminals_per_100", "avg_daily_hours", "usage_rate",
                                                 "period_usage_rate" };
static const char *const ind_zh[IND__COUNT] = { "每百名学生拥有网络多媒体教室数", "日均使用时长", "使用率",
                                               "堂堂用率" };
static const char *const ind_en[IND__COUNT] = { "Multimedia classrooms per 100 pupils", "Avg daily hours",
                                               "Usage rate", "Per-lesson use" };

/* The 差异系数 of indicator IND across the schools of section SEC, IN having
 * room for every school; *UNDEFINED counts the schools left out because their
 * value is undefined. Returns 0 or -EINVAL. */
static int section_balance(const struct bbt_report_data *d, struct bbt_balance_input *in, enum bbt_section sec,
                           int ind, struct bbt_balance *b, size_t *undefined)
{
        size_t n = 0;

        *undefined = 0;
        for (size_t i = 0; i < d->n_schools; i++) {
                const struct bbt_report_school *si = &d->schools[i];
                long pupils;
                double v;

                if (!si->reg || (pupils = section_pupils(si->reg, sec)) < 0)
                        continue;
                if (!indicator(si, ind, &v)) {
                        (*undefined)++;
                        continue;
                }
                in[n].value = v;
                in[n].pupils = pupils;
                n++;
        }
        return bbt_balance_compute(in, n, sec, d->s->min_pupils, b);
}

/* The inspection layout counties hand in (优质均衡督导评估): for each school
 * and section 每百名学生拥有网络多媒体教室数 against its standard, then each
 * indicator's 差异系数 against its bound; and a table of how many schools met
 * the standard. A 九年一贯制 school is judged on each section, with the
 * school's whole ratio (terminals are not assigned to sections). */
static void add_inspection(struct bbt_report_data *d, struct bbt_document *doc, struct bbt_balance_input *in)
{
        static const struct bbt_column cols[] = {
                { "no", "序号", "No.", BBT_CELL_INT, 0 },
                { "school", "学校", "School", BBT_CELL_TEXT, 0 },
                { "indicator", "指标", "Indicator", BBT_CELL_CODE, 0 },
                { "standard", "基本值/标准值", "Standard", BBT_CELL_TEXT, 0 },
                { "value", "实际值", "Actual value", BBT_CELL_NUM, 3 },
                { "met", "是否达标", "Met", BBT_CELL_BOOL, 0 }, /* empty: cannot be computed */
        };
        static const struct bbt_column count_cols[] = {
                { "section", "学段", "Section", BBT_CELL_CODE, 0 },
                { "indicator", "指标", "Indicator", BBT_CELL_CODE, 0 },
                { "standard", "标准值", "Standard", BBT_CELL_TEXT, 0 },
                { "schools", "学校数", "Schools", BBT_CELL_INT, 0 },
                { "met", "达标学校数", "Schools meeting it", BBT_CELL_INT, 0 },
                { "met_rate", "达标率", "Share meeting it", BBT_CELL_RATE, 0 },
        };
        size_t judged[2] = { 0, 0 }, met[2] = { 0, 0 };
        struct bbt_table *t, *ct;
        char label[600], standard[32], code[64];
        int64_t no = 0;

        t = bbt_document_add_table(doc, "inspection", "优质均衡督导评估表", "Inspection (quality balance)", cols,
                                   BBT_ELEMENTSOF(cols));
        for (size_t i = 0; i < d->n_schools; i++) {
                const struct bbt_report_school *si = &d->schools[i];

                if (!si->reg)
                        continue;
                for (int sec = 0; sec < 2; sec++) {
                        double want = bbt_balance_classrooms_standard((enum bbt_section)sec), v;

                        if (section_pupils(si->reg, (enum bbt_section)sec) < 0)
                                continue;
                        if (si->reg->type != BBT_SCHOOL_NINE_YEAR)
                                snprintf(label, sizeof(label), "%s", si->reg->name);
                        else if (d->o->chinese)
                                snprintf(label, sizeof(label), "%s（%s）", si->reg->name, sec ? "初中部" : "小学部");
                        else
                                snprintf(label, sizeof(label), "%s (%s)", si->reg->name, sec ? "junior" : "primary");
                        snprintf(standard, sizeof(standard), "≥%.1f", want);
                        bbt_table_add_row(t);
                        bbt_table_set_int(t, 0, ++no);
                        bbt_table_set_text(t, 1, label);
                        bbt_table_set_code(t, 2, ind_code[IND_TERMINALS_PER_100],
                                           L(d, ind_zh[IND_TERMINALS_PER_100], ind_en[IND_TERMINALS_PER_100]));
                        bbt_table_set_text(t, 3, standard);
                        if (!indicator(si, IND_TERMINALS_PER_100, &v)) /* no pupils: neither value nor verdict */
                                continue;
                        bbt_table_set_num(t, 4, v);
                        bbt_table_set_bool(t, 5, v >= want);
                        judged[sec]++;
                        met[sec] += v >= want;
                }
        }
        for (int sec = 0; sec < 2; sec++) {
                double quality, basic;

                bbt_balance_thresholds((enum bbt_section)sec, &quality, &basic);
                snprintf(standard, sizeof(standard), "≤%.2f", quality);
                for (int ind = 0; ind < IND__COUNT; ind++) {
                        struct bbt_balance b;
                        size_t undefined;

                        if (section_balance(d, in, (enum bbt_section)sec, ind, &b, &undefined) < 0)
                                continue;
                        snprintf(label, sizeof(label), "%s%s", L(d, "差异系数：", "CV: "),
                                 L(d, ind_zh[ind], ind_en[ind]));
                        snprintf(code, sizeof(code), "cv_%s", ind_code[ind]);
                        bbt_table_add_row(t);
                        bbt_table_set_int(t, 0, ++no);
                        bbt_table_set_text(t, 1, sec ? L(d, "校际（初中）", "Across schools (junior)")
                                                     : L(d, "校际（小学）", "Across schools (primary)"));
                        bbt_table_set_code(t, 2, code, label);
                        bbt_table_set_text(t, 3, standard);
                        if (b.defined) {
                                bbt_table_set_num(t, 4, b.cv);
                                bbt_table_set_bool(t, 5, b.quality);
                        }
                }
        }

        ct = bbt_document_add_table(doc, "inspection_counts", "达标学校数", "Schools meeting the standard",
                                    count_cols, BBT_ELEMENTSOF(count_cols));
        for (int sec = 0; sec < 2; sec++) {
                snprintf(standard, sizeof(standard), "≥%.1f", bbt_balance_classrooms_standard((enum bbt_section)sec));
                bbt_table_add_row(ct);
                bbt_table_set_code(ct, 0, sec ? "junior" : "primary",
                                   sec ? L(d, "初中", "junior") : L(d, "小学", "primary"));
                bbt_table_set_code(ct, 1, ind_code[IND_TERMINALS_PER_100],
                                   L(d, ind_zh[IND_TERMINALS_PER_100], ind_en[IND_TERMINALS_PER_100]));
                bbt_table_set_text(ct, 2, standard);
                bbt_table_set_int(ct, 3, (int64_t)judged[sec]);
                bbt_table_set_int(ct, 4, (int64_t)met[sec]);
                if (judged[sec])
                        bbt_table_set_num(ct, 5, (double)met[sec] / (double)judged[sec]);
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
                        size_t undefined;

                        if (section_balance(d, in, (enum bbt_section)sec, ind, &b, &undefined) < 0)
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
        add_inspection(d, doc, in);
        bbt_document_add_note(doc,
                              "督导评估表：网络多媒体教室数为学校的班班通终端数；每所学校的每百名学生拥有网络多媒体教室数"
                              "不低于优质均衡标准（小学2.3、初中2.4）为达标，九年一贯制学校按全校比值分别对照小学、"
                              "初中标准；差异系数不高于0.50（小学）、0.45（初中）为达标。",
                              "Inspection: a school's multimedia classrooms are its 班班通 terminals; a school meets "
                              "the quality-balance standard with at least 2.3 (primary) or 2.4 (junior) of them per "
                              "100 pupils, a nine-year school judged on each section with its whole-school ratio; a "
                              "CV meets it at no more than 0.50 (primary) or 0.45 (junior).");
        free(in);
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
