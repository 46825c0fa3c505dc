/* Day numbers, dates, weekdays, local time at a fixed UTC offset, time-of-day and offset parsing. */
/* bbt-test: label=unit timeout=10 */
#include <errno.h>

#include "dates.h"
#include "test.h"

TEST(day_numbers)
{
        char buf[16];
        int y, m, d;

        ASSERT_EQ(bbt_day_from_ymd(1970, 1, 1), 0);
        ASSERT_EQ(bbt_day_from_ymd(2000, 3, 1), 11017);
        ASSERT_EQ(bbt_day_from_ymd(2026, 12, 1), 20788);
        for (int32_t day = 0; day < 40000; day += 7) {
                bbt_day_to_ymd(day, &y, &m, &d);
                ASSERT_EQ(bbt_day_from_ymd(y, m, d), day);
        }
        ASSERT_STR_EQ(bbt_day_format(bbt_day_from_ymd(2024, 2, 29), buf, sizeof(buf)), "2024-02-29");
        /* 1970-01-01 was a Thursday, 2026-12-01 a Tuesday. */
        ASSERT_EQ(bbt_day_weekday(0), 4);
        ASSERT_EQ(bbt_day_weekday(20788), 2);
}

TEST(day_parse)
{
        int32_t day = -1;

        ASSERT_OK(bbt_day_parse("2026-09-01", &day));
        ASSERT_EQ(day, bbt_day_from_ymd(2026, 9, 1));
        ASSERT_OK(bbt_day_parse("2026/9/1", &day));
        ASSERT_EQ(day, bbt_day_from_ymd(2026, 9, 1));
        ASSERT_OK(bbt_day_parse("2024-02-29", &day));
        ASSERT_EQ(bbt_day_parse("2025-02-29", &day), -EINVAL);
        ASSERT_EQ(bbt_day_parse("2026-13-01", &day), -EINVAL);
        ASSERT_EQ(bbt_day_parse("2026-09-01x", &day), -EINVAL);
        ASSERT_EQ(bbt_day_parse("2026-09/01", &day), -EINVAL);
        ASSERT_EQ(bbt_day_parse("26-09-01", &day), -EINVAL);
        ASSERT_EQ(bbt_day_parse("", &day), -EINVAL);
}

TEST(local_days)
{
        /* 2026-09-01 00:00 in Beijing is 2026-08-31 16:00 UTC. */
        int32_t day = bbt_day_from_ymd(2026, 9, 1);
        int64_t start = bbt_day_start_ms(day, 480);

        ASSERT_EQ(start, (int64_t)day * 86400000LL - 8 * 3600000LL);
        ASSERT_EQ(bbt_day_of_ms(start, 480), day);
        ASSERT_EQ(bbt_day_of_ms(start - 1, 480), day - 1);
        ASSERT_EQ(bbt_day_of_ms(start + 86400000LL - 1, 480), day);
        ASSERT_EQ(bbt_day_of_ms(-1, 0), -1);
}

TEST(minutes_and_offsets)
{
        int v = -1;

        ASSERT_OK(bbt_minute_parse("08:00", &v));
        ASSERT_EQ(v, 480);
        ASSERT_OK(bbt_minute_parse("8:05", &v));
        ASSERT_EQ(v, 485);
        ASSERT_OK(bbt_minute_parse("14:40:00", &v));
        ASSERT_EQ(v, 880);
        ASSERT_OK(bbt_minute_parse("24:00", &v));
        ASSERT_EQ(v, 1440);
        ASSERT_EQ(bbt_minute_parse("24:01", &v), -EINVAL);
        ASSERT_EQ(bbt_minute_parse("08:60", &v), -EINVAL);
        ASSERT_EQ(bbt_minute_parse("0800", &v), -EINVAL);
        ASSERT_OK(bbt_utc_offset_parse("+08:00", &v));
        ASSERT_EQ(v, 480);
        ASSERT_OK(bbt_utc_offset_parse("UTC+8", &v));
        ASSERT_EQ(v, 480);
        ASSERT_OK(bbt_utc_offset_parse("-05:30", &v));
        ASSERT_EQ(v, -330);
        ASSERT_EQ(bbt_utc_offset_parse("08:00", &v), -EINVAL);
        ASSERT_EQ(bbt_utc_offset_parse("+15", &v), -EINVAL);
}
