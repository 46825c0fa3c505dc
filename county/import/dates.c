/* Dates as day numbers (proleptic Gregorian), local school time, and their text forms. */
#include "dates.h"

#include "bbt/base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Howard Hinnant's days_from_civil (base) / civil_from_days, in eras of 400 years. */
int32_t bbt_day_from_ymd(int y, int m, int d)
{
        return (int32_t)bbt_days_from_civil(y, m, d);
}

void bbt_day_to_ymd(int32_t day, int *ret_y, int *ret_m, int *ret_d)
{
        int64_t z = (int64_t)day + 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int doe = (int)(z - era * 146097);
        int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int mp = (5 * doy + 2) / 153;
        int d = doy - (153 * mp + 2) / 5 + 1;
        int m = mp < 10 ? mp + 3 : mp - 9;

        *ret_y = (int)(yoe + era * 400) + (m <= 2);
        *ret_m = m;
        *ret_d = d;
}

int bbt_day_weekday(int32_t day)
{
        /* 1970-01-01 was a Thursday (4). */
        int w = (int)(((int64_t)day + 3) % 7);

        if (w < 0)
                w += 7;
        return w + 1;
}

static int days_in_month(int y, int m)
{
        static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads 1..MAXD digits at *P into *RET; advances *P. */
static bool read_digits(const char **p, int mind, int maxd, int *ret)
{
        int n = 0, v = 0;

        while (**p >= '0' && **p <= '9' && n < maxd) {
                v = v * 10 + (**p - '0');
                (*p)++;
                n++;
        }
        if (n < mind)
                return false;
        *ret = v;
        return true;
}

int bbt_day_parse(const char *s, int32_t *ret)
{
        const char *p = s;
        int y, m, d;
        char sep;

        if (!s || !read_digits(&p, 4, 4, &y))
                return -EINVAL;
        sep = *p;
        if (sep != '-' && sep != '/')
                return -EINVAL;
        p++;
        if (!read_digits(&p, 1, 2, &m) || *p != sep)
                return -EINVAL;
        p++;
        if (!read_digits(&p, 1, 2, &d) || *p != '\0')
                return -EINVAL;
        if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
                return -EINVAL;
        *ret = bbt_day_from_ymd(y, m, d);
        return 0;
}

char *bbt_day_format(int32_t day, char *buf, size_t size)
{
        int y, m, d;

        bbt_day_to_ymd(day, &y, &m, &d);
        snprintf(buf, size, "%04d-%02d-%02d", y, m, d);
        return buf;
}

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;

        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int32_t bbt_day_of_ms(int64_t ms, int offset_min)
{
        return (int32_t)floor_div(ms + (int64_t)offset_min * BBT_MS_PER_MIN, BBT_MS_PER_DAY);
}

int64_t bbt_day_start_ms(int32_t day, int offset_min)
{
        return (int64_t)day * BBT_MS_PER_DAY - (int64_t)offset_min * BBT_MS_PER_MIN;
}

int bbt_minute_parse(const char *s, int *ret)
{
        const char *p = s;
        int h, m;

        if (!s || !read_digits(&p, 1, 2, &h) || (*p != ':' && *p != '.'))
                return -EINVAL;
        p++;
        if (!read_digits(&p, 2, 2, &m))
                return -EINVAL;
        /* Excel may add seconds: "08:00:00". */
        if (*p == ':') {
                int sec;

                p++;
                if (!read_digits(&p, 2, 2, &sec) || sec != 0)
                        return -EINVAL;
        }
        if (*p != '\0' || m > 59 || h > 24 || (h == 24 && m != 0))
                return -EINVAL;
        *ret = h * 60 + m;
        return 0;
}

int bbt_utc_offset_parse(const char *s, int *ret)
{
        const char *p = s;
        int sign, h, m = 0;

        if (!s)
                return -EINVAL;
        if (strncmp(p, "UTC", 3) == 0 || strncmp(p, "GMT", 3) == 0)
                p += 3;
        if (*p != '+' && *p != '-')
                return -EINVAL;
        sign = *p == '-' ? -1 : 1;
        p++;
        if (!read_digits(&p, 1, 2, &h))
                return -EINVAL;
        if (*p == ':') {
                p++;
                if (!read_digits(&p, 2, 2, &m))
                        return -EINVAL;
        }
        if (*p != '\0' || h > 14 || m > 59 || h * 60 + m > 840)
                return -EINVAL;
        *ret = sign * (h * 60 + m);
        return 0;
}
