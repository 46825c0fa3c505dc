/* bbt-notify: webhook targets, their secrets, and the message bodies of each format (docs/notifications.md). */
#ifndef BBT_NOTIFY_WEBHOOK_H
#define BBT_NOTIFY_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bbt/protocol.h>

#include "registry.h"

enum bbt_notify_format { BBT_NOTIFY_WECOM, BBT_NOTIFY_DINGTALK, BBT_NOTIFY_JSON };
enum { BBT_NOTIFY_FAULTS = 1 << 0, BBT_NOTIFY_DIGEST = 1 << 1 };

/* A comma-separated list of words, split. */
struct bbt_notify_list {
        char **v;
        size_t n;
};

/* L with a copy of S added: 0 or -ENOMEM. */
int bbt_notify_list_add(struct bbt_notify_list *l, const char *s);
/* Takes S out of L; whether it was there. */
bool bbt_notify_list_remove(struct bbt_notify_list *l, const char *s);
bool bbt_notify_list_has(const struct bbt_notify_list *l, const char *s);
void bbt_notify_list_clear(struct bbt_notify_list *l);

/* One [NAME] section of the targets file, with its secrets. */
struct bbt_notify_target {
        char name[33];
        enum bbt_notify_format format;
        unsigned events;                     /* BBT_NOTIFY_* */
        struct bbt_notify_list counties, townships, schools; /* all empty: the whole registry */
        int digest_min;                      /* minutes after local midnight */
        enum bbt_severity min_severity;
        bool chinese;
        int rate_limit;                      /* messages a minute; 0: [notify] rate_limit */
        char *url, *secret, *token;          /* from the secrets file; secret, token may be NULL */
};

struct bbt_notify_targets {
        struct bbt_notify_target *v;
        size_t n;
};

/* Refuses a secrets file others could read or change: it must be a regular
 * file owned by root or by this process's user, writable by its owner only,
 * and readable by nobody else but its group when that group is root's or
 * this process's (0600, or 0640 root:bbt-notify). Returns 0 or a negative
 * errno with ERR saying what is wrong and how to fix it. */
int bbt_notify_secrets_check(const char *path, char *err, size_t err_size);

/* Reads the targets file and the secrets file (checked as above); every
 * target needs a url, and a DingTalk secret is used to sign. DEFAULT_DIGEST_MIN
 * is [notify] digest_time. Returns 0 and *RET (free with
 * bbt_notify_targets_free), or a negative errno with ERR as "PATH:LINE: ...". */
int bbt_notify_targets_load(const char *targets_path, const char *secrets_path, int default_digest_min,
                            struct bbt_notify_targets *ret, char *err, size_t err_size);
void bbt_notify_targets_free(struct bbt_notify_targets *t);
/* Whether target T covers school CODE of COUNTY (REG its registry row, or NULL). */
bool bbt_notify_target_covers(const struct bbt_notify_target *t, const char *county, const char *code,
                              const struct bbt_school *reg);
const char *bbt_notify_format_name(enum bbt_notify_format f);

/* A fault as a message shows it. KEY identifies it for good (the dedupe key):
 * "COUNTY/SCHOOL/TERMINAL/CODE/SOURCE/RAISED_MS". */
struct bbt_notify_fault {
        char key[160];
        char county[7], school[BBT_ID_MAX + 1], terminal[BBT_ID_MAX + 1];
        char code[33], source[16];
        enum bbt_severity severity;
        int64_t raised_ms;
        char detail[513];
        /* filled from the registry when the message is made */
        const char *school_name, *township, *room;
};

/* An idle terminal in a digest (the idle report's row). */
struct bbt_notify_idle {
        const char *terminal, *room, *reason, *reason_label;
        int64_t used_days, last_active_ms; /* last_active_ms 0: never */
};

/* A terminal left on last night (the energy report's nights_on, county/report/energy.h). */
struct bbt_notify_left_on {
        const char *terminal, *room;
};

/* A school's daily digest. */
struct bbt_notify_digest {
        char county[7], school[BBT_ID_MAX + 1];
        const char *school_name, *township;
        int32_t day;                       /* the local day of the digest */
        int32_t idle_to;                   /* the idle judgement's last day */
        const struct bbt_notify_idle *idle;
        size_t n_idle;
        const struct bbt_notify_fault *open; /* open faults now */
        size_t n_open;
        const struct bbt_notify_left_on *left_on; /* on at some time of the night of DAY - 1 */
        size_t n_left_on;
};

/* The JSON body of a message to T about N new faults (N >= 1, each with its
 * names filled), made at NOW_MS. Returns a malloc'd string, or NULL (ENOMEM). */
char *bbt_notify_body_faults(const struct bbt_notify_target *t, const struct bbt_notify_fault *f, size_t n,
                             int offset_min, int64_t now_ms);
/* The JSON body of a digest to T. */
char *bbt_notify_body_digest(const struct bbt_notify_target *t, const struct bbt_notify_digest *d, int offset_min,
                             int64_t now_ms);
/* The dedupe key of a digest: "digest/COUNTY/SCHOOL/YYYY-MM-DD". */
void bbt_notify_digest_key(const char *county, const char *school, int32_t day, char *buf, size_t size);

/* DingTalk's signature of a request at TIMESTAMP_MS with SECRET:
 * Base64(HMAC-SHA256(key SECRET, "TIMESTAMP_MS\nSECRET")), not yet URL-encoded.
 * Returns 0, or -EIO. */
int bbt_notify_dingtalk_sign(const char *secret, int64_t timestamp_ms, char *buf, size_t size);

#endif
