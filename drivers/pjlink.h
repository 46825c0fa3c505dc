/* PJLink class 1 and 2 wire format: greetings, the MD5 auth digest, commands and replies; no I/O. */
#ifndef BBT_PJLINK_H
#define BBT_PJLINK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bbt/protocol.h"

#include "bbt/base.h"

#define BBT_PJLINK_PORT 4352
/* Longest line either side may send, terminator included (PJLink 1.04 and 2.00:
 * header 2 + body 4 + separator 1 + parameter 128 + CR 1). */
#define BBT_PJLINK_LINE_MAX 136
#define BBT_PJLINK_PARAM_MAX 128
/* Longest NAME (the spec's limit; INF1, INF2 and INFO are 32 but real devices overrun). */
#define BBT_PJLINK_TEXT_MAX 64
/* Text replies are kept with control bytes and invalid UTF-8 escaped as \xNN. */
#define BBT_PJLINK_TEXT_BUF (BBT_PJLINK_TEXT_MAX * 4 + 1)
#define BBT_PJLINK_RANDOM_LEN 8
#define BBT_PJLINK_DIGEST_LEN 32
/* PJLink passwords are at most 32 bytes. */
#define BBT_PJLINK_PASSWORD_MAX 32
#define BBT_PJLINK_LAMPS_MAX 8
/* Room for a located parse error. */
#define BBT_PJLINK_REASON_MAX 192

/* The projector's error answers, as distinct negative errno values. */
#define BBT_PJLINK_ERR1 (-EOPNOTSUPP) /* ERR1: undefined command */
#define BBT_PJLINK_ERR2 (-ERANGE)     /* ERR2: out of parameter */
#define BBT_PJLINK_ERR3 (-EBUSY)      /* ERR3: unavailable time (warming, cooling, standby) */
#define BBT_PJLINK_ERR4 (-EREMOTEIO)  /* ERR4: projector or display failure */
#define BBT_PJLINK_ERRA (-EACCES)     /* ERRA: authentication failed */
/* bbt_pjlink_reply_parse(): the line is valid PJLink but not the awaited reply
 * (an unsolicited %2LKUP=, %2POWR=, ... notification): skip it. */
#define BBT_PJLINK_SKIP 1

enum bbt_pjlink_cmd {
        BBT_PJLINK_POWR,
        BBT_PJLINK_INPT,
        BBT_PJLINK_ERST,
        BBT_PJLINK_LAMP,
        BBT_PJLINK_NAME,
        BBT_PJLINK_INF1,
        BBT_PJLINK_INF2,
        BBT_PJLINK_INFO,
        BBT_PJLINK_CLSS,
        BBT_PJLINK_CMD__COUNT,
};

/* The command's four-letter body ("POWR"), or NULL for an invalid value. */
BBT_API const char *bbt_pjlink_cmd_name(enum bbt_pjlink_cmd cmd);

/* A short English description of a PJLink error code (BBT_PJLINK_ERR1 ..
 * BBT_PJLINK_ERRA, e.g. "ERR3 unavailable time"), or NULL for any other value. */
BBT_API const char *bbt_pjlink_strerror(int err);

/* What the projector says first on every connection. */
struct bbt_pjlink_greeting {
        bool auth;                                /* "PJLINK 1 <random>" */
        char random[BBT_PJLINK_RANDOM_LEN + 1];   /* NUL-terminated; "" without auth */
};

/* Parses one greeting LINE (LEN bytes, terminator already removed, as from
 * bbt_pjlink_reader_next()) into RET (untouched on failure). Returns 0,
 * BBT_PJLINK_ERRA for "PJLINK ERRA", -EMSGSIZE for a line longer than PJLink
 * allows, -EBADMSG for anything else; every nonzero answer leaves a reason in
 * ERR (ERR_SIZE bytes; ERR may be NULL). */
BBT_API int bbt_pjlink_greeting_parse(const char *line, size_t len, struct bbt_pjlink_greeting *ret,
                                      char *err, size_t err_size);

/* Writes the lowercase hex MD5 of RANDOM followed by PASSWORD into RET
 * (BBT_PJLINK_DIGEST_LEN characters and a NUL). Returns 0, -EINVAL if RANDOM
 * is not 8 hex digits or PASSWORD is longer than 32 bytes or holds a control
 * character, -EIO if the digest is unavailable (an OpenSSL build without MD5). */
BBT_API int bbt_pjlink_digest(const char *random, const char *password,
                              char ret[BBT_PJLINK_DIGEST_LEN + 1]);

/* Writes command CMD of class CLS (1 or 2) into BUF (SIZE bytes), CR-terminated
 * and NUL-terminated: "%1POWR ?\r" when PARAM is NULL, "%1POWR 1\r" with
 * PARAM "1". DIGEST (32 hex characters, or NULL) goes in front, as on the
 * first command of an authenticated connection. Returns the length without
 * the NUL, -EINVAL for a bad class, command, digest or PARAM (empty, longer
 * than 128 bytes, or holding bytes outside printable ASCII), -ENOBUFS if SIZE
 * is short. */
BBT_API int bbt_pjlink_build(enum bbt_pjlink_cmd cmd, int cls, const char *param, const char *digest,
                             char *buf, size_t size);

/* A parsed reply. Which members are set depends on the command. */
struct bbt_pjlink_reply {
        enum bbt_pjlink_cmd cmd;
        int cls;                                  /* class in the reply header */
        bool ok;                                  /* "=OK": the answer to a set command */
        enum bbt_power power;                     /* POWR */
        char input[3];                            /* INPT, two characters: "31" */
        enum bbt_erst_level erst[BBT_ERST__COUNT];  /* ERST */
        unsigned n_lamps;                         /* LAMP: 1 .. 8 */
        int64_t lamp_hours[BBT_PJLINK_LAMPS_MAX];
        bool lamp_on[BBT_PJLINK_LAMPS_MAX];
        int64_t lamp_hours_max;                   /* the largest of lamp_hours */
        char text[BBT_PJLINK_TEXT_BUF];           /* NAME, INF1, INF2, INFO (escaped) */
        int clss;                                 /* CLSS: 1 .. 9 */
};

/* Parses one reply LINE (LEN bytes, terminator removed) awaited for command
 * CMD sent with class CLS; SET says whether it was a set command (POWR 1)
 * rather than a query. Fills RET (untouched unless 0 is returned). Returns
 *   0                   the reply, parsed;
 *   BBT_PJLINK_SKIP     a valid line for another command or class (an
 *                       unsolicited notification such as %2LKUP=): ignore it;
 *   BBT_PJLINK_ERR1..4  the projector's error answer to CMD;
 *   BBT_PJLINK_ERRA     "PJLINK ERRA" (or an ERRA parameter): wrong password;
 *   -EMSGSIZE           LINE, or its parameter, is longer than PJLink allows;
 *   -EBADMSG            anything else (a bad header, a bad value);
 *   -EINVAL             CMD or CLS is invalid.
 * Every nonzero answer leaves a reason in ERR (ERR_SIZE bytes; may be NULL)
 * naming the command and what was wrong, e.g. `POWR: expected 0-3, got "9"`. */
BBT_API int bbt_pjlink_reply_parse(enum bbt_pjlink_cmd cmd, int cls, bool set, const char *line,
                                   size_t len, struct bbt_pjlink_reply *ret, char *err, size_t err_size);

/* Splits a byte stream into lines: CR or LF ends a line, CR LF counts once,
 * NUL bytes (padding some projectors add) are dropped anywhere and empty lines
 * are skipped. Zero-initialise, or call bbt_pjlink_reader_reset(). */
struct bbt_pjlink_reader {
        char line[BBT_PJLINK_LINE_MAX + 1];
        size_t len;
        bool overflow;
};

BBT_API void bbt_pjlink_reader_reset(struct bbt_pjlink_reader *r);

/* Consumes bytes from *DATA (*SIZE bytes), advancing both, until a line is
 * complete. Returns 1 with the line (NUL-terminated, without its terminator)
 * in *RET_LINE and its length in *RET_LEN, both pointing into R and valid
 * until the next call; 0 when the input is used up and the line so far is
 * kept for the next call; -EMSGSIZE once a line runs past
 * BBT_PJLINK_LINE_MAX bytes with its terminator (the reader then skips to the
 * end of that line, so the caller may go on or give up). */
BBT_API int bbt_pjlink_reader_next(struct bbt_pjlink_reader *r, const char **data, size_t *size,
                                   const char **ret_line, size_t *ret_len);

#endif
