/* The shared base: the error-message setter and the one UTF-8 checker (RFC 3629, with its exclusions). */
#include "bbt/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void bbt_set_err(char *err, size_t err_size, const char *fmt, ...)
{
        va_list ap;

        if (!err || err_size == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
}

size_t bbt_utf8_decode(const char *s, size_t len, uint32_t *ret_cp)
{
        const unsigned char *p = (const unsigned char *)s;
        uint32_t cp, min;
        size_t n, i;

        if (len == 0)
                return 0;
        if (p[0] < 0x80) {
                n = 1;
                cp = p[0];
                goto out;
        }
        if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                n = 2;
                cp = p[0] & 0x1f;
                min = 0x80;
        } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                n = 3;
                cp = p[0] & 0x0f;
                min = 0x800;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                n = 4;
                cp = p[0] & 0x07;
                min = 0x10000;
        } else {
                return 0;
        }
        if (len < n)
                return 0;
        for (i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80) /* also stops at a NUL */
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
out:
        if (ret_cp)
                *ret_cp = cp;
        return n;
}

size_t bbt_utf8_invalid_at(const char *s, size_t len)
{
        size_t i = 0, n;

        while (i < len) {
                uint64_t w;

                /* ASCII, most of a CSV: no decoding, eight bytes at a time. */
                if (len - i >= sizeof(w)) {
                        memcpy(&w, s + i, sizeof(w));
                        if (!(w & 0x8080808080808080ULL)) {
                                i += sizeof(w);
                                continue;
                        }
                }
                if ((unsigned char)s[i] < 0x80) {
                        i++;
                        continue;
                }
                n = bbt_utf8_decode(s + i, len - i, NULL);
                if (n == 0)
                        return i;
                i += n;
        }
        return len;
}

size_t bbt_utf8_chars(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        n++;
        return n;
}

int64_t bbt_days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}
