/* PJLink class 1 and 2 wire format: greetings, the MD5 auth digest, commands and replies; no I/O. */
#include "pjlink.h"
#include "bbt/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

static const char *const cmd_names[BBT_PJLINK_CMD__COUNT] = {
        [BBT_PJLINK_POWR] = "POWR", [BBT_PJLINK_INPT] = "INPT", [BBT_PJLINK_ERST] = "ERST",
        [BBT_PJLINK_LAMP] = "LAMP", [BBT_PJLINK_NAME] = "NAME", [BBT_PJLINK_INF1] = "INF1",
        [BBT_PJLINK_INF2] = "INF2", [BBT_PJLINK_INFO] = "INFO", [BBT_PJLINK_CLSS] = "CLSS",
};

const char *bbt_pjlink_cmd_name(enum bbt_pjlink_cmd cmd)
{
        if ((unsigned)cmd >= BBT_PJLINK_CMD__COUNT)
                return NULL;
        return cmd_names[cmd];
}

const char *bbt_pjlink_strerror(int err)
{
        switch (err) {
        case BBT_PJLINK_ERR1:
                return "ERR1 undefined command";
        case BBT_PJLINK_ERR2:
                return "ERR2 out of parameter";
        case BBT_PJLINK_ERR3:
                return "ERR3 unavailable time";
        case BBT_PJLINK_ERR4:
                return "ERR4 projector failure";
        case BBT_PJLINK_ERRA:
                return "ERRA authentication failed";
        default:
                return NULL;
        }
}

/* Quotes S (LEN bytes) for a reason: printable ASCII as is, the rest as \xNN,
 * cut after 40 bytes with "...". OUT needs 40 * 4 + 4 bytes. */
#define QUOTE_MAX 40
#define QUOTE_BUF (QUOTE_MAX * 4 + 4)
static const char *quote(const char *s, size_t len, char out[QUOTE_BUF])
{
        size_t i, o = 0;

        for (i = 0; i < len && i < QUOTE_MAX; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                        out[o++] = (char)c;
                else
                        o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
        }
        if (i < len) {
                memcpy(out + o, "...", 3);
                o += 3;
        }
        out[o] = '\0';
        return out;
}

static bool is_hex(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int bbt_pjlink_greeting_parse(const char *line, size_t len, struct bbt_pjlink_greeting *ret,
                              char *err, size_t err_size)
{
        struct bbt_pjlink_greeting g = { 0 };
        char q[QUOTE_BUF];
        size_t i;

        if (len > BBT_PJLINK_LINE_MAX - 1) {
                bbt_set_err(err, err_size, "greeting: %zu bytes, longer than %d", len, BBT_PJLINK_LINE_MAX - 1);
                return -EMSGSIZE;
        }
        if (len == 11 && memcmp(line, "PJLINK ERRA", 11) == 0) {
                bbt_set_err(err, err_size, "greeting: PJLINK ERRA (authentication failed)");
                return BBT_PJLINK_ERRA;
        }
        if (len == 8 && memcmp(line, "PJLINK 0", 8) == 0)
                goto ok;
        if (len == 9 + BBT_PJLINK_RANDOM_LEN && memcmp(line, "PJLINK 1 ", 9) == 0) {
                for (i = 0; i < BBT_PJLINK_RANDOM_LEN; i++)
                        if (!is_hex(line[9 + i]))
                                break;
                if (i == BBT_PJLINK_RANDOM_LEN) {
                        g.auth = true;
                        memcpy(g.random, line + 9, BBT_PJLINK_RANDOM_LEN);
                        goto ok;
                }
                bbt_set_err(err, err_size, "greeting: expected 8 hex digits after \"PJLINK 1 \", got \"%s\"",
                           quote(line + 9, len - 9, q));
                return -EBADMSG;
        }
        bbt_set_err(err, err_size, "greeting: expected \"PJLINK 0\" or \"PJLINK 1 <random>\", got \"%s\"",
                   quote(line, len, q));
        return -EBADMSG;
ok:
        *ret = g;
        return 0;
}

int bbt_pjlink_digest(const char *random, const char *password, char ret[BBT_PJLINK_DIGEST_LEN + 1])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        char input[BBT_PJLINK_RANDOM_LEN + BBT_PJLINK_PASSWORD_MAX];
        unsigned int md_len = 0;
        size_t plen, i;

        if (!random || !password || strlen(random) != BBT_PJLINK_RANDOM_LEN)
                return -EINVAL;
        for (i = 0; i < BBT_PJLINK_RANDOM_LEN; i++)
                if (!is_hex(random[i]))
                        return -EINVAL;
        plen = strlen(password);
        if (plen > BBT_PJLINK_PASSWORD_MAX)
                return -EINVAL;
        for (i = 0; i < plen; i++)
                if ((unsigned char)password[i] < 0x20 || password[i] == 0x7f)
                        return -EINVAL;
        memcpy(input, random, BBT_PJLINK_RANDOM_LEN);
        memcpy(input + BBT_PJLINK_RANDOM_LEN, password, plen);
        if (EVP_Digest(input, BBT_PJLINK_RANDOM_LEN + plen, md, &md_len, EVP_md5(), NULL) != 1 ||
            md_len != 16)
                return -EIO;
        for (i = 0; i < 16; i++) {
                ret[2 * i] = hex[md[i] >> 4];
                ret[2 * i + 1] = hex[md[i] & 15];
        }
        ret[BBT_PJLINK_DIGEST_LEN] = '\0';
        return 0;
}

int bbt_pjlink_build(enum bbt_pjlink_cmd cmd, int cls, const char *param, const char *digest,
                     char *buf, size_t size)
{
        size_t plen, i;
        int n;

        if ((unsigned)cmd >= BBT_PJLINK_CMD__COUNT || (cls != 1 && cls != 2))
                return -EINVAL;
        if (digest) {
                if (strlen(digest) != BBT_PJLINK_DIGEST_LEN)
                        return -EINVAL;
                for (i = 0; i < BBT_PJLINK_DIGEST_LEN; i++)
                        if (!is_hex(digest[i]))
                                return -EINVAL;
        }
        if (!param)
                param = "?";
        plen = strlen(param);
        if (plen == 0 || plen > BBT_PJLINK_PARAM_MAX)
                return -EINVAL;
        for (i = 0; i < plen; i++)
                if ((unsigned char)param[i] < 0x20 || (unsigned char)param[i] >= 0x7f)
                        return -EINVAL;
        n = snprintf(buf, size, "%s%%%d%s %s\r", digest ? digest : "", cls, cmd_names[cmd], param);
        if (n < 0 || (size_t)n >= size)
                return -ENOBUFS;
        return n;
}

/* Copies text S (LEN <= BBT_PJLINK_TEXT_MAX bytes) into OUT, keeping printable
 * ASCII and valid UTF-8 and escaping every other byte, and the backslash, as
 * \xNN, so the result is printable and unambiguous. */
static void escape_text(const char *s, size_t len, char out[BBT_PJLINK_TEXT_BUF])
{
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0, o = 0, n;

        while (i < len) {
                if (u[i] >= 0x20 && u[i] < 0x7f && u[i] != '\\') {
                        out[o++] = (char)u[i++];
                } else if (u[i] >= 0x80 && (n = bbt_utf8_decode(s + i, len - i, NULL)) > 0) {
                        memcpy(out + o, u + i, n);
                        o += n;
                        i += n;
                } else {
                        o += (size_t)snprintf(out + o, 5, "\\x%02x", u[i]);
                        i++;
                }
        }
        out[o] = '\0';
}

/* Parses the LAMP parameter: "hours on/off" pairs separated by spaces. */
static int parse_lamp(const char *p, size_t len, struct bbt_pjlink_reply *r, char *err, size_t err_size)
{
        char q[QUOTE_BUF];
        size_t i = 0, tok_start, tok_len;
        unsigned tokens = 0;

        r->n_lamps = 0;
        r->lamp_hours_max = 0;
        for (;;) {
                while (i < len && p[i] == ' ')
                        i++;
                if (i == len)
                        break;
                tok_start = i;
                while (i < len && p[i] != ' ')
                        i++;
                tok_len = i - tok_start;
                if (tokens / 2 >= BBT_PJLINK_LAMPS_MAX) {
                        bbt_set_err(err, err_size, "LAMP: more than %d lamps in \"%s\"", BBT_PJLINK_LAMPS_MAX,
                                   quote(p, len, q));
                        return -EBADMSG;
                }
                if (tokens % 2 == 0) {
                        int64_t h = 0;
                        size_t k;

                        for (k = 0; k < tok_len; k++)
                                if (p[tok_start + k] < '0' || p[tok_start + k] > '9')
                                        break;
                        if (tok_len > 5 || k != tok_len) {
                                bbt_set_err(err, err_size, "LAMP: lamp %u hours: expected 1-5 digits, got \"%s\"",
                                           tokens / 2 + 1, quote(p + tok_start, tok_len, q));
                                return -EBADMSG;
                        }
                        for (k = 0; k < tok_len; k++)
                                h = h * 10 + (p[tok_start + k] - '0');
                        r->lamp_hours[tokens / 2] = h;
                        if (h > r->lamp_hours_max)
                                r->lamp_hours_max = h;
                } else {
                        if (tok_len != 1 || (p[tok_start] != '0' && p[tok_start] != '1')) {
                                bbt_set_err(err, err_size, "LAMP: lamp %u on/off: expected 0 or 1, got \"%s\"",
                                           tokens / 2 + 1, quote(p + tok_start, tok_len, q));
                                return -EBADMSG;
                        }
                        r->lamp_on[tokens / 2] = p[tok_start] == '1';
                        r->n_lamps = tokens / 2 + 1;
                }
                tokens++;
        }
        if (tokens == 0 || tokens % 2 != 0) {
                bbt_set_err(err, err_size, "LAMP: expected \"hours on/off\" pairs, got \"%s\"", quote(p, len, q));
                return -EBADMSG;
        }
        return 0;
}

static bool is_input_char(char c)
{
        return (c >= '1' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/* Parses parameter P (LEN bytes) of a query reply for CMD into R. */
static int parse_value(enum bbt_pjlink_cmd cmd, const char *p, size_t len, struct bbt_pjlink_reply *r,
                       char *err, size_t err_size)
{
        const char *name = cmd_names[cmd];
        char q[QUOTE_BUF];
        size_t i;

        switch (cmd) {
        case BBT_PJLINK_POWR:
                if (len != 1 || p[0] < '0' || p[0] > '3')
                        goto bad_powr;
                r->power = (enum bbt_power)(p[0] - '0'); /* 0 off, 1 on, 2 cooling, 3 warming */
                return 0;
        case BBT_PJLINK_INPT:
                if (len != 2 || p[0] < '1' || p[0] > '9' || !is_input_char(p[1])) {
                        bbt_set_err(err, err_size, "INPT: expected two characters [1-9][1-9A-Z], got \"%s\"",
                                   quote(p, len, q));
                        return -EBADMSG;
                }
                memcpy(r->input, p, 2);
                r->input[2] = '\0';
                return 0;
        case BBT_PJLINK_ERST:
                if (len != BBT_ERST__COUNT)
                        goto bad_erst;
                for (i = 0; i < BBT_ERST__COUNT; i++) {
                        if (p[i] < '0' || p[i] > '2')
                                goto bad_erst;
                        r->erst[i] = (enum bbt_erst_level)(p[i] - '0');
                }
                return 0;
        case BBT_PJLINK_LAMP:
                return parse_lamp(p, len, r, err, err_size);
        case BBT_PJLINK_NAME:
        case BBT_PJLINK_INF1:
        case BBT_PJLINK_INF2:
        case BBT_PJLINK_INFO:
                if (len > BBT_PJLINK_TEXT_MAX) {
                        bbt_set_err(err, err_size, "%s: %zu bytes of text, at most %d", name, len,
                                   BBT_PJLINK_TEXT_MAX);
                        return -EBADMSG;
                }
                escape_text(p, len, r->text);
                return 0;
        case BBT_PJLINK_CLSS:
                if (len != 1 || p[0] < '1' || p[0] > '9') {
                        bbt_set_err(err, err_size, "CLSS: expected a class 1-9, got \"%s\"", quote(p, len, q));
                        return -EBADMSG;
                }
                r->clss = p[0] - '0';
                return 0;
        case BBT_PJLINK_CMD__COUNT:
                break;
        }
        bbt_set_err(err, err_size, "reply: unknown command");
        return -EBADMSG;
bad_powr:
        bbt_set_err(err, err_size, "POWR: expected 0-3, got \"%s\"", quote(p, len, q));
        return -EBADMSG;
bad_erst:
        bbt_set_err(err, err_size, "ERST: expected 6 digits 0-2, got \"%s\"", quote(p, len, q));
        return -EBADMSG;
}

static bool is_body_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int bbt_pjlink_reply_parse(enum bbt_pjlink_cmd cmd, int cls, bool set, const char *line, size_t len,
                           struct bbt_pjlink_reply *ret, char *err, size_t err_size)
{
        struct bbt_pjlink_reply r;
        const char *name = bbt_pjlink_cmd_name(cmd), *p;
        char q[QUOTE_BUF];
        size_t plen, i;
        int e;

        if (!name || (cls != 1 && cls != 2)) {
                bbt_set_err(err, err_size, "reply: invalid command or class");
                return -EINVAL;
        }
        if (len > BBT_PJLINK_LINE_MAX - 1) {
                bbt_set_err(err, err_size, "%s: reply of %zu bytes, longer than %d", name, len,
                           BBT_PJLINK_LINE_MAX - 1);
                return -EMSGSIZE;
        }
        if (len == 11 && memcmp(line, "PJLINK ERRA", 11) == 0) {
                bbt_set_err(err, err_size, "%s: PJLINK ERRA (authentication failed)", name);
                return BBT_PJLINK_ERRA;
        }
        if (len < 7 || line[0] != '%' || (line[1] != '1' && line[1] != '2') || line[6] != '=')
                goto bad_header;
        for (i = 2; i < 6; i++)
                if (!is_body_char(line[i]))
                        goto bad_header;
        p = line + 7;
        plen = len - 7;
        if (plen > BBT_PJLINK_PARAM_MAX) {
                bbt_set_err(err, err_size, "%s: parameter of %zu bytes, longer than %d", name, plen,
                           BBT_PJLINK_PARAM_MAX);
                return -EMSGSIZE;
        }
        if (line[1] - '0' != cls || strncasecmp(line + 2, name, 4) != 0) {
                bbt_set_err(err, err_size, "%s: skipped unsolicited \"%s\"", name, quote(line, len, q));
                return BBT_PJLINK_SKIP;
        }

        if (plen == 4 && memcmp(p, "ERR", 3) == 0) {
                e = p[3] == '1' ? BBT_PJLINK_ERR1 : p[3] == '2' ? BBT_PJLINK_ERR2 : p[3] == '3' ? BBT_PJLINK_ERR3
                  : p[3] == '4' ? BBT_PJLINK_ERR4 : p[3] == 'A' ? BBT_PJLINK_ERRA : 0;
                if (e != 0) {
                        bbt_set_err(err, err_size, "%s: %s", name, bbt_pjlink_strerror(e));
                        return e;
                }
        }

        memset(&r, 0, sizeof(r));
        r.cmd = cmd;
        r.cls = cls;
        if (set) {
                if (plen != 2 || memcmp(p, "OK", 2) != 0) {
                        bbt_set_err(err, err_size, "%s: expected OK, got \"%s\"", name, quote(p, plen, q));
                        return -EBADMSG;
                }
                r.ok = true;
        } else {
                e = parse_value(cmd, p, plen, &r, err, err_size);
                if (e < 0)
                        return e;
        }
        *ret = r;
        return 0;

bad_header:
        bbt_set_err(err, err_size, "%s: expected \"%%<class><command>=<parameter>\", got \"%s\"", name,
                   quote(line, len, q));
        return -EBADMSG;
}

void bbt_pjlink_reader_reset(struct bbt_pjlink_reader *r)
{
        r->len = 0;
        r->overflow = false;
        r->line[0] = '\0';
}

int bbt_pjlink_reader_next(struct bbt_pjlink_reader *r, const char **data, size_t *size,
                           const char **ret_line, size_t *ret_len)
{
        while (*size > 0) {
                char c = **data;

                (*data)++;
                (*size)--;
                if (c == '\0')
                        continue;
                if (c == '\r' || c == '\n') {
                        if (r->overflow) {
                                r->overflow = false;
                                continue;
                        }
                        if (r->len == 0)
                                continue; /* an empty line, or the LF of CR LF */
                        r->line[r->len] = '\0';
                        *ret_line = r->line;
                        *ret_len = r->len;
                        r->len = 0;
                        return 1;
                }
                if (r->overflow)
                        continue;
                if (r->len >= BBT_PJLINK_LINE_MAX - 1) {
                        r->overflow = true;
                        r->len = 0;
                        return -EMSGSIZE;
                }
                r->line[r->len++] = c;
        }
        return 0;
}
