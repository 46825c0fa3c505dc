/* Civil dates as day numbers (days since 1970-01-01) and local school time from a fixed UTC offset. */
#ifndef BBT_DATES_H
#define BBT_DATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* China keeps one time zone without daylight saving (since 1991), so local
 * school time is UTC plus a fixed offset; Asia/Shanghai is +08:00. */
#define BBT_UTC_OFFSET_DEFAULT_MIN 480
#define BBT_MS_PER_DAY 86400000LL
#define BBT_MS_PER_MIN 60000LL

/* The day number of the proleptic Gregorian date Y-M-D (any M 1..12, D 1..31;
 * not checked: use bbt_day_parse for input). 1970-01-01 is 0. */
int32_t bbt_day_from_ymd(int y, int m, int d);
/* The date of DAY into *Y, *M, *D. */
void bbt_day_to_ymd(int32_t day, int *y, int *m, int *d);
/* ISO weekday of DAY: 1 = Monday .. 7 = Sunday. */
int bbt_day_weekday(int32_t day);
/* Parses "YYYY-MM-DD" (also "YYYY/MM/DD" and "YYYY/M/D", as Excel writes dates
 * in China), years 1970..9999, checking that the date exists. Returns 0 and
 * *RET, or -EINVAL (*RET untouched). */
int bbt_day_parse(const char *s, int32_t *ret);
/* Writes DAY as "YYYY-MM-DD" into BUF (at least 11 bytes). Returns BUF. */
char *bbt_day_format(int32_t day, char *buf, size_t size);

/* The local day of the instant MS (ms since the epoch) at UTC+OFFSET_MIN. */
int32_t bbt_day_of_ms(int64_t ms, int offset_min);
/* The instant (ms since the epoch) of local midnight starting DAY. */
int64_t bbt_day_start_ms(int32_t day, int offset_min);

/* Parses a time of day "HH:MM" (0:00..24:00) into minutes after midnight.
 * Returns 0 and *RET, or -EINVAL. */
int bbt_minute_parse(const char *s, int *ret);
/* Parses a UTC offset "+08:00", "-05:30", "+8" or "UTC+8" into minutes
 * (-840..840). Returns 0 and *RET, or -EINVAL. */
int bbt_utc_offset_parse(const char *s, int *ret);

#endif
