/* The official student-weighted coefficient of variation (差异系数) across schools. */
#ifndef BBT_BALANCE_H
#define BBT_BALANCE_H

#include <stdbool.h>
#include <stddef.h>

/* Schools with fewer pupils than this are left out by default (a setting). */
#define BBT_BALANCE_MIN_PUPILS_DEFAULT 50

enum bbt_section { BBT_SECTION_PRIMARY, BBT_SECTION_JUNIOR };

/* One school's value of an indicator and its enrolment in the section. */
struct bbt_balance_input {
        double value;  /* X_i */
        long pupils;   /* P_i */
};

struct bbt_balance {
        size_t schools;     /* schools counted (enough pupils) */
        size_t left_out;    /* schools below the pupil minimum */
        long pupils;        /* P = Σ P_i of those counted */
        double mean;        /* X̄ = Σ P_i·X_i / P */
        double sd;          /* S = sqrt(Σ (P_i/P)·(X_i − X̄)²) */
        double cv;          /* CV = S / X̄; 0 when X̄ is 0 */
        bool defined;       /* false when no school was counted or X̄ is 0 */
        bool quality;       /* 优质均衡: CV ≤ 0.50 (primary) or ≤ 0.45 (junior) */
        bool basic;         /* 基本均衡: CV ≤ 0.65 (primary) or ≤ 0.55 (junior) */
};

/* Computes the student-weighted mean, deviation and CV of N schools' values
 * for SECTION, leaving out schools with fewer than MIN_PUPILS pupils, and
 * judges the CV against the section's thresholds. Returns 0, or -EINVAL for a
 * negative enrolment or a non-finite value (RET untouched). */
int bbt_balance_compute(const struct bbt_balance_input *schools, size_t n, enum bbt_section section,
                        long min_pupils, struct bbt_balance *ret);

/* The thresholds: 优质均衡 and 基本均衡 upper bounds of the CV for SECTION. */
void bbt_balance_thresholds(enum bbt_section section, double *ret_quality, double *ret_basic);

/* 优质均衡's standard for each school: at least this many 网络多媒体教室 per
 * 100 pupils, 2.3 (primary) or 2.4 (junior). */
double bbt_balance_classrooms_standard(enum bbt_section section);

#endif
