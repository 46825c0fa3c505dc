/* libFuzzer target: the PJLink line reader, greeting and reply parsers (drivers/pjlink.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pjlink.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                                  \
        do {                                                                         \
                if (!(cond)) {                                                       \
                        fprintf(stderr, "fuzz-pjlink: check failed: %s\n", #cond);  \
                        abort();                                                     \
                }                                                                    \
        } while (0)

/* A reason is a NUL-terminated, non-empty string that fits its buffer. */
static void check_reason(const char *err)
{
        CHECK(memchr(err, '\0', BBT_PJLINK_REASON_MAX) != NULL);
        CHECK(err[0] != '\0');
}

/* Text out of the parser has no control bytes and ends in its buffer. */
static void check_text(const char *text)
{
        size_t n;

        CHECK(memchr(text, '\0', BBT_PJLINK_TEXT_BUF) != NULL);
        n = strlen(text);
        CHECK(n < BBT_PJLINK_TEXT_BUF);
        for (size_t i = 0; i < n; i++)
                CHECK((unsigned char)text[i] >= 0x20 && text[i] != 0x7f);
}

static void check_line(const char *line, size_t len, enum bbt_pjlink_cmd cmd, int cls, bool set)
{
        struct bbt_pjlink_greeting g, g0;
        struct bbt_pjlink_reply r, r0;
        char err[BBT_PJLINK_REASON_MAX];
        int rc;

        CHECK(len > 0 && len <= BBT_PJLINK_LINE_MAX - 1);
        CHECK(strlen(line) == len);
        CHECK(memchr(line, '\r', len) == NULL && memchr(line, '\n', len) == NULL);

        memset(&g, 0xa5, sizeof(g));
        g0 = g;
        rc = bbt_pjlink_greeting_parse(line, len, &g, err, sizeof(err));
        if (rc == 0) {
                CHECK(g.auth ? strlen(g.random) == BBT_PJLINK_RANDOM_LEN : g.random[0] == '\0');
                if (g.auth) {
                        char d[BBT_PJLINK_DIGEST_LEN + 1];

                        CHECK(bbt_pjlink_digest(g.random, "JBMIAProjectorLink", d) == 0);
                        CHECK(strlen(d) == BBT_PJLINK_DIGEST_LEN);
                }
        } else {
                CHECK(rc == BBT_PJLINK_ERRA || rc == -EBADMSG || rc == -EMSGSIZE);
                CHECK(memcmp(&g, &g0, sizeof(g)) == 0); /* untouched */
                check_reason(err);
        }

        memset(&r, 0x5a, sizeof(r));
        r0 = r;
        rc = bbt_pjlink_reply_parse(cmd, cls, set, line, len, &r, err, sizeof(err));
        if (rc != 0) {
                CHECK(rc == BBT_PJLINK_SKIP || rc == BBT_PJLINK_ERR1 || rc == BBT_PJLINK_ERR2 ||
                      rc == BBT_PJLINK_ERR3 || rc == BBT_PJLINK_ERR4 || rc == BBT_PJLINK_ERRA ||
                      rc == -EBADMSG || rc == -EMSGSIZE);
                CHECK(memcmp(&r, &r0, sizeof(r)) == 0);
                check_reason(err);
                return;
        }
        CHECK(r.cmd == cmd && r.cls == cls);
        if (set) {
                CHECK(r.ok);
                return;
        }
        switch (cmd) {
        case BBT_PJLINK_POWR:
                CHECK(r.power >= BBT_POWER_OFF && r.power <= BBT_POWER_WARMING);
                break;
        case BBT_PJLINK_INPT:
                CHECK(strlen(r.input) == 2);
                break;
        case BBT_PJLINK_ERST:
                for (int i = 0; i < BBT_ERST__COUNT; i++)
                        CHECK(r.erst[i] <= BBT_ERST_ERROR);
                break;
        case BBT_PJLINK_LAMP: {
                int64_t max = 0;

                CHECK(r.n_lamps >= 1 && r.n_lamps <= BBT_PJLINK_LAMPS_MAX);
                for (unsigned i = 0; i < r.n_lamps; i++) {
                        CHECK(r.lamp_hours[i] >= 0 && r.lamp_hours[i] <= 99999);
                        if (r.lamp_hours[i] > max)
                                max = r.lamp_hours[i];
                }
                CHECK(r.lamp_hours_max == max);
                break;
        }
        case BBT_PJLINK_NAME:
        case BBT_PJLINK_INF1:
        case BBT_PJLINK_INF2:
        case BBT_PJLINK_INFO:
                check_text(r.text);
                break;
        case BBT_PJLINK_CLSS:
                CHECK(r.clss >= 1 && r.clss <= 9);
                break;
        default:
                CHECK(0);
        }
}

/* Byte 0 picks the command, the class and query or set; byte 1 where the
 * stream is split in two reads; the rest is what the projector sent. */
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
        struct bbt_pjlink_reader rd;
        enum bbt_pjlink_cmd cmd;
        const char *p, *line;
        size_t left, split, len, lines = 0;
        bool set;
        int cls, rc;

        if (size < 2)
                return 0;
        cmd = (enum bbt_pjlink_cmd)((data[0] & 0x0f) % BBT_PJLINK_CMD__COUNT);
        cls = (data[0] & 0x10) ? 2 : 1;
        set = (data[0] & 0x20) != 0;
        split = size > 2 ? data[1] % (size - 2 + 1) : 0;
        data += 2;
        size -= 2;

        bbt_pjlink_reader_reset(&rd);
        for (int part = 0; part < 2; part++) {
                p = (const char *)data + (part ? split : 0);
                left = part ? size - split : split;
                while ((rc = bbt_pjlink_reader_next(&rd, &p, &left, &line, &len)) != 0) {
                        CHECK(rc == 1 || rc == -EMSGSIZE);
                        if (rc == 1) {
                                check_line(line, len, cmd, cls, set);
                                lines++;
                        }
                }
                CHECK(left == 0);
        }
        CHECK(lines <= size);
        return 0;
}
