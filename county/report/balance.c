/* 差异系数: the student-weighted coefficient of variation of an indicator across schools (METRICS.md). */
#include "balance.h"

#include <errno.h>
#include <math.h>
#include <string.h>

void bbt_balance_thresholds(enum bbt_section section, double *ret_quality, double *ret_basic)
{
        *ret_quality = section == BBT_SECTION_JUNIOR ? 0.45 : 0.50;
        *ret_basic = section == BBT_SECTION_JUNIOR ? 0.55 : 0.65;
}

double bbt_balance_classrooms_standard(enum bbt_section section)
{
        return section == BBT_SECTION_JUNIOR ? 2.4 : 2.3;
}

int bbt_balance_compute(const struct bbt_balance_input *schools, size_t n, enum bbt_section section,
                        long min_pupils, struct bbt_balance *ret)
{
        struct bbt_balance b;
        double weighted = 0, spread = 0, quality, basic;
        size_t i;

        memset(&b, 0, sizeof(b));
        for (i = 0; i < n; i++)
                if (schools[i].pupils < 0 || !isfinite(schools[i].value))
                        return -EINVAL;
        for (i = 0; i < n; i++) {
                if (schools[i].pupils < min_pupils || schools[i].pupils == 0) {
                        b.left_out++;
                        continue;
                }
                b.schools++;
                b.pupils += schools[i].pupils;
                weighted += (double)schools[i].pupils * schools[i].value;
        }
        if (b.pupils > 0) {
                b.mean = weighted / (double)b.pupils;
                for (i = 0; i < n; i++) {
                        double d;

                        if (schools[i].pupils < min_pupils || schools[i].pupils == 0)
                                continue;
                        d = schools[i].value - b.mean;
                        spread += (double)schools[i].pupils / (double)b.pupils * d * d;
                }
                b.sd = sqrt(spread);
        }
        b.defined = b.pupils > 0 && b.mean != 0;
        b.cv = b.defined ? b.sd / b.mean : 0;
        bbt_balance_thresholds(section, &quality, &basic);
        b.quality = b.defined && b.cv <= quality;
        b.basic = b.defined && b.cv <= basic;
        *ret = b;
        return 0;
}
