/* bbt-web's accounts: the users file, yescrypt hashes, sessions, login throttling, CSRF, the audit log. */
#include "accounts.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bbt/base.h"
#include "bbt/fileio.h"
#include "bbt/protocol.h"

#define USERS_FILE_MAX (1024 * 1024)
#define LINE_MAX_BYTES 1024
#define THROTTLE_MAX 4096          /* (user, address) and address entries kept */
#define ADDR_MAX 63                /* an address longer than this is cut in the throttle's key */
#define AUDIT_FIELD_MAX 512        /* bytes of a user-supplied audit field kept */

/* A token bucket as GCRA: TAT is the time the bucket would be full again.
 * An attempt is allowed while TAT - now <= (burst - 1) * refill; each failed
 * one moves TAT on by REFILL. An entry with TAT <= now is a full bucket, the
 * same as none. */
struct bucket {
        char key[2 + BBT_USER_NAME_MAX + 1 + ADDR_MAX + 1];
        int64_t tat;
        /* The audit log gets one login_throttled line per refill interval
         * and key, with the count of those refused since: a client hammering
         * a closed door must not fill the disk. */
        bool logged;
        int64_t logged_ms;
        uint64_t unlogged;
};

struct bbt_accounts {
        char *path;
        struct bbt_accounts_settings set;
        char *audit_path;
        int audit_fd;
        struct bbt_users users;
        struct bbt_session *sessions; /* n_sessions live, in no order */
        size_t n_sessions;
        struct bucket *buckets;
        size_t n_buckets;
        char dummy_hash[BBT_HASH_MAX + 1]; /* checked for an unknown user: the same time as a real one */
        struct bbt_accounts_stats st;
};

/* ---- small helpers ---- */

static bool ct_equal(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        unsigned char diff = la != lb;

        /* Walks the whole of A whatever B is: the time depends on A's length only. */
        for (size_t i = 0; i < la; i++)
                diff |= (unsigned char)a[i] ^ (unsigned char)(i < lb ? b[i] : 0);
        return diff == 0;
}

static void wipe_free(void *p, size_t size)
{
        if (!p)
                return;
        explicit_bzero(p, size);
        free(p);
}

static int random_hex(char *out, size_t nbytes)
{
        unsigned char buf[64];
        size_t got = 0;

        if (nbytes > sizeof(buf))
                return -EINVAL;
        while (got < nbytes) {
                ssize_t n = getrandom(buf + got, nbytes - got, 0);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t)n;
        }
        for (size_t i = 0; i < nbytes; i++)
                sprintf(out + 2 * i, "%02x", buf[i]);
        out[2 * nbytes] = '\0';
        explicit_bzero(buf, sizeof(buf));
        return 0;
}

/* ---- roles, scopes, the users file ---- */

static const char *const role_names[] = {
        [BBT_ROLE_COUNTY] = "county",
        [BBT_ROLE_TOWNSHIP] = "township",
        [BBT_ROLE_SCHOOL] = "school",
};

const char *bbt_role_name(enum bbt_role role)
{
        return (unsigned)role < BBT_ELEMENTSOF(role_names) ? role_names[role] : "?";
}

int bbt_role_parse(const char *s, enum bbt_role *ret)
{
        for (size_t i = 0; i < BBT_ELEMENTSOF(role_names); i++)
                if (strcmp(s, role_names[i]) == 0) {
                        *ret = (enum bbt_role)i;
                        return 0;
                }
        return -EINVAL;
}

bool bbt_user_name_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > BBT_USER_NAME_MAX || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '@' || c == '-'))
                        return false;
        }
        return true;
}

/* A township name: valid UTF-8 of 1..127 bytes, no control character, no
 * ':' (the field separator), no spaces at its ends. */
static bool township_valid(const char *s, char *why, size_t why_size)
{
        size_t n = strlen(s);

        if (n == 0 || n >= sizeof(((struct bbt_scope *)0)->township)) {
                bbt_set_err(why, why_size, "a township name of 1 to %zu bytes",
                            sizeof(((struct bbt_scope *)0)->township) - 1);
                return false;
        }
        if (bbt_utf8_invalid_at(s, n) != n) {
                bbt_set_err(why, why_size, "the township name is not valid UTF-8");
                return false;
        }
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == ':') {
                        bbt_set_err(why, why_size, "the township name holds a control character or ':'");
                        return false;
                }
        if (s[0] == ' ' || s[n - 1] == ' ') {
                bbt_set_err(why, why_size, "the township name \"%s\" has spaces at its ends", s);
                return false;
        }
        return true;
}

int bbt_scope_parse(enum bbt_role role, const char *s, struct bbt_scope *ret, char *why, size_t why_size)
{
        struct bbt_scope sc = { .role = role };
        const char *rest = s;

        /* A leading "COUNTY/" (six digits) narrows township and school scopes. */
        if (role != BBT_ROLE_COUNTY && strlen(s) > 7 && s[6] == '/') {
                char county[7];

                memcpy(county, s, 6);
                county[6] = '\0';
                if (bbt_county_valid(county)) {
                        memcpy(sc.county, county, sizeof(county));
                        rest = s + 7;
                }
        }
        switch (role) {
        case BBT_ROLE_COUNTY:
                if (*s && !bbt_county_valid(s)) {
                        bbt_set_err(why, why_size,
                                    "county scope \"%s\": expected a 6-digit county code, or nothing for every county",
                                    s);
                        return -EINVAL;
                }
                snprintf(sc.county, sizeof(sc.county), "%s", s);
                break;
        case BBT_ROLE_TOWNSHIP: {
                char reason[160];

                if (!township_valid(rest, reason, sizeof(reason))) {
                        bbt_set_err(why, why_size, "township scope \"%s\": expected [COUNTY/]TOWNSHIP with %s", s,
                                    reason);
                        return -EINVAL;
                }
                snprintf(sc.township, sizeof(sc.township), "%s", rest);
                break;
        }
        case BBT_ROLE_SCHOOL:
                if (!bbt_id_valid(rest)) {
                        bbt_set_err(why, why_size,
                                    "school scope \"%s\": expected [COUNTY/]SCHOOL, a school code of 1 to 32 of "
                                    "A-Z a-z 0-9 _ -",
                                    s);
                        return -EINVAL;
                }
                snprintf(sc.school, sizeof(sc.school), "%s", rest);
                break;
        default:
                bbt_set_err(why, why_size, "unknown role");
                return -EINVAL;
        }
        *ret = sc;
        return 0;
}

const char *bbt_scope_format(const struct bbt_scope *s, char *buf, size_t size)
{
        const char *what = s->role == BBT_ROLE_TOWNSHIP ? s->township : s->role == BBT_ROLE_SCHOOL ? s->school : "";

        if (s->role == BBT_ROLE_COUNTY)
                snprintf(buf, size, "%s", s->county);
        else
                snprintf(buf, size, "%s%s%s", s->county, *s->county ? "/" : "", what);
        return buf;
}

static bool scope_equal(const struct bbt_scope *a, const struct bbt_scope *b)
{
        return a->role == b->role && strcmp(a->county, b->county) == 0 && strcmp(a->township, b->township) == 0 &&
               strcmp(a->school, b->school) == 0;
}

bool bbt_scope_allows(const struct bbt_scope *scope, const struct bbt_school *school)
{
        if (!scope || !school)
                return false;
        if (scope->county[0] && strcmp(scope->county, school->county) != 0)
                return false;
        switch (scope->role) {
        case BBT_ROLE_COUNTY:
                return true;
        case BBT_ROLE_TOWNSHIP:
                return school->township && scope->township[0] && strcmp(school->township, scope->township) == 0;
        case BBT_ROLE_SCHOOL:
                return scope->school[0] && strcmp(school->code, scope->school) == 0;
        }
        return false;
}

/* Whether HASH is a well-formed yescrypt hash libcrypt accepts. */
static bool hash_valid(const char *hash)
{
        size_t n = strlen(hash);

        if (strncmp(hash, "$y$", 3) != 0 || n > BBT_HASH_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((hash[i] >= 'a' && hash[i] <= 'z') || (hash[i] >= 'A' && hash[i] <= 'Z') ||
                      (hash[i] >= '0' && hash[i] <= '9') || hash[i] == '.' || hash[i] == '/' || hash[i] == '$'))
                        return false;
        /* "$y$PARAMS$SALT$HASH": four '$' and a hash after the last. */
        size_t dollars = 0;
        for (size_t i = 0; i < n; i++)
                dollars += hash[i] == '$';
        return dollars == 4 && hash[n - 1] != '$' && crypt_checksalt(hash) == CRYPT_SALT_OK;
}

struct parse_ctx {
        const char *label;
        void (*on_error)(void *ctx, const char *msg);
        void *ctx;
        size_t errors;
};

static void __attribute__((format(printf, 3, 4))) parse_error(struct parse_ctx *p, unsigned line, const char *fmt,
                                                              ...)
{
        char reason[400], msg[700];
        va_list ap;

        p->errors++;
        if (!p->on_error)
                return;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        snprintf(msg, sizeof(msg), "%s:%u: %s", p->label, line, reason);
        p->on_error(p->ctx, msg);
}

/* One non-comment line (NUL-terminated, no line end) into U. */
static int parse_user_line(struct parse_ctx *p, unsigned line, char *s, struct bbt_users *u)
{
        char *field[4], *c = s, why[300];
        size_t nf = 0;
        struct bbt_user *usr;
        enum bbt_role role;

        for (;;) {
                char *colon = strchr(c, ':');

                if (nf < 4)
                        field[nf] = c;
                nf++;
                if (!colon)
                        break;
                *colon = '\0';
                c = colon + 1;
        }
        if (nf != 4) {
                parse_error(p, line, "expected 4 fields name:role:scope:hash, found %zu", nf);
                return 0;
        }
        if (!bbt_user_name_valid(field[0])) {
                parse_error(p, line,
                            "user name \"%.80s\": expected 1 to %d of A-Z a-z 0-9 . _ @ -, not starting with -",
                            field[0], BBT_USER_NAME_MAX);
                return 0;
        }
        for (size_t i = 0; i < u->n; i++)
                if (strcmp(u->v[i].name, field[0]) == 0) {
                        parse_error(p, line, "user %s is already on line %u", field[0], u->v[i].line);
                        return 0;
                }
        if (bbt_role_parse(field[1], &role) < 0) {
                parse_error(p, line, "role \"%.40s\": expected county, township or school", field[1]);
                return 0;
        }
        usr = &u->v[u->n];
        memset(usr, 0, sizeof(*usr));
        if (bbt_scope_parse(role, field[2], &usr->scope, why, sizeof(why)) < 0) {
                parse_error(p, line, "%s", why);
                return 0;
        }
        if (!hash_valid(field[3])) {
                parse_error(p, line,
                            "password hash: expected a yescrypt hash $y$... (set one with bbt-web-user passwd %s)",
                            field[0]);
                return 0;
        }
        snprintf(usr->name, sizeof(usr->name), "%s", field[0]);
        snprintf(usr->hash, sizeof(usr->hash), "%s", field[3]);
        usr->line = line;
        u->n++;
        return 0;
}

int bbt_users_parse(const char *label, const char *text, size_t len, struct bbt_users *ret,
                    void (*on_error)(void *ctx, const char *msg), void *ctx)
{
        struct parse_ctx p = { .label = label, .on_error = on_error, .ctx = ctx };
        struct bbt_users u = { 0 };
        size_t lines = 1, pos = 0;
        unsigned line = 0;
        char buf[LINE_MAX_BYTES + 1];

        *ret = (struct bbt_users){ 0 };
        for (size_t i = 0; i < len; i++)
                lines += text[i] == '\n';
        u.v = calloc(lines, sizeof(*u.v));
        if (!u.v)
                return -ENOMEM;
        /* A UTF-8 byte order mark (a file saved by Notepad) is not part of the first line. */
        if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
                pos = 3;
        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
                const char *s = text + pos;

                line++;
                pos += n + (nl != NULL);
                if (n > LINE_MAX_BYTES) {
                        parse_error(&p, line, "line longer than %d bytes", LINE_MAX_BYTES);
                        continue;
                }
                if (memchr(s, '\0', n)) {
                        parse_error(&p, line, "a NUL byte");
                        continue;
                }
                if (n > 0 && s[n - 1] == '\r') {
                        parse_error(&p, line, "a carriage return at the end: save the file with Unix line ends (LF)");
                        continue;
                }
                if (bbt_utf8_invalid_at(s, n) != n) {
                        parse_error(&p, line, "not valid UTF-8 (byte %zu)", bbt_utf8_invalid_at(s, n) + 1);
                        continue;
                }
                memcpy(buf, s, n);
                buf[n] = '\0';
                if (buf[strspn(buf, " \t")] == '\0' || buf[strspn(buf, " \t")] == '#')
                        continue; /* blank or comment */
                parse_user_line(&p, line, buf, &u);
        }
        explicit_bzero(buf, sizeof(buf));
        if (p.errors > 0) {
                bbt_users_free(&u);
                return -EINVAL;
        }
        *ret = u;
        return 0;
}

void bbt_users_free(struct bbt_users *u)
{
        if (!u)
                return;
        wipe_free(u->v, u->n * sizeof(*u->v));
        *u = (struct bbt_users){ 0 };
}

const struct bbt_user *bbt_users_find(const struct bbt_users *u, const char *name)
{
        for (size_t i = 0; i < u->n; i++)
                if (strcmp(u->v[i].name, name) == 0)
                        return &u->v[i];
        return NULL;
}

int bbt_users_read(const char *path, char **ret_text, size_t *ret_len, char *err, size_t err_size)
{
        struct stat st;
        char *text = NULL;
        size_t len = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                bbt_set_err(err, err_size, "%s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                bbt_set_err(err, err_size, "%s: %s", path, strerror(-r));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                bbt_set_err(err, err_size, "%s: not a regular file", path);
                goto out;
        }
        /* Hashes are secrets: readable by the server's group at most, and
         * changed only by its owner (bbt-web-user run as root). */
        if (st.st_mode & (S_IWGRP | S_IWOTH | S_IROTH)) {
                r = -EPERM;
                bbt_set_err(err, err_size, "%s: mode %04o lets %s; refused: chmod 0640 %s", path,
                            (unsigned)(st.st_mode & 07777),
                            (st.st_mode & (S_IWGRP | S_IWOTH)) ? "others than its owner change it"
                                                               : "every user read the password hashes",
                            path);
                goto out;
        }
        if (st.st_size > USERS_FILE_MAX) {
                r = -EFBIG;
                bbt_set_err(err, err_size, "%s: larger than %d bytes", path, USERS_FILE_MAX);
                goto out;
        }
        text = malloc((size_t)st.st_size + 1);
        if (!text) {
                r = -ENOMEM;
                bbt_set_err(err, err_size, "%s: out of memory", path);
                goto out;
        }
        while (len < (size_t)st.st_size) {
                ssize_t n = read(fd, text + len, (size_t)st.st_size - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        bbt_set_err(err, err_size, "%s: %s", path, strerror(-r));
                        goto out;
                }
                if (n == 0)
                        break; /* shrunk while read: what there is */
                len += (size_t)n;
        }
        text[len] = '\0';
        r = 0;
out:
        close(fd);
        if (r < 0 || !ret_text) {
                wipe_free(text, text ? (size_t)st.st_size + 1 : 0);
                text = NULL;
        }
        if (ret_text)
                *ret_text = text;
        if (ret_len)
                *ret_len = len;
        return r;
}

/* ---- password hashes ---- */

int bbt_password_hash(const char *password, char *out, size_t out_size)
{
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        struct crypt_data *cd;
        int r = 0;

        if (strlen(password) > BBT_PASSWORD_MAX)
                return -EINVAL;
        /* Count 0: libcrypt's default cost for yescrypt; the salt from getrandom(). */
        if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)))
                return errno ? -errno : -EINVAL;
        cd = calloc(1, sizeof(*cd));
        if (!cd)
                return -ENOMEM;
        if (!crypt_rn(password, salt, cd, sizeof(*cd)) || cd->output[0] != '$')
                r = errno ? -errno : -EINVAL;
        else if (strlen(cd->output) >= out_size || strlen(cd->output) > BBT_HASH_MAX)
                r = -ENOBUFS;
        else
                strcpy(out, cd->output);
        wipe_free(cd, sizeof(*cd));
        return r;
}

bool bbt_password_verify(const char *password, const char *hash)
{
        struct crypt_data *cd;
        bool ok;

        if (!password || !hash || strlen(password) > BBT_PASSWORD_MAX || hash[0] != '$')
                return false;
        cd = calloc(1, sizeof(*cd));
        if (!cd)
                return false;
        ok = crypt_rn(password, hash, cd, sizeof(*cd)) && cd->output[0] == '$' && ct_equal(hash, cd->output);
        wipe_free(cd, sizeof(*cd));
        return ok;
}

/* ---- the audit log ---- */

/* "2026-12-06T21:03:04.123+08:00": local time with its offset. */
static void iso_time(int64_t ms, char *buf, size_t size)
{
        int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
        time_t t = (time_t)sec;
        struct tm tm;
        int off;

        localtime_r(&t, &tm);
        off = (int)(tm.tm_gmtoff / 60 % (24 * 60)); /* minutes east of UTC, within a day */
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - sec * 1000), off < 0 ? '-' : '+',
                 abs(off) / 60, abs(off) % 60);
}

/* S as valid UTF-8 of at most AUDIT_FIELD_MAX bytes: each invalid byte
 * becomes U+FFFD (a client's bytes must not break the log's JSON). */
static char *clean_utf8(const char *s)
{
        size_t n = strlen(s), o = 0;
        char *out = malloc(AUDIT_FIELD_MAX + 4);

        if (!out)
                return NULL;
        for (size_t i = 0; i < n && o < AUDIT_FIELD_MAX;) {
                size_t k = bbt_utf8_decode(s + i, n - i, NULL);

                if (k == 0) {
                        memcpy(out + o, "\xEF\xBF\xBD", 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(out + o, s + i, k);
                        o += k;
                        i += k;
                }
        }
        out[o] = '\0';
        return out;
}

static bool add_clean(cJSON *obj, const char *key, const char *value)
{
        char *c = clean_utf8(value);
        bool ok = c && cJSON_AddStringToObject(obj, key, c);

        free(c);
        return ok;
}

static int audit_open(const char *path, int *ret_fd)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);

        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

int bbt_accounts_audit(struct bbt_accounts *a, const char *user, const char *addr, const char *event,
                       const char *detail, int64_t now_ms)
{
        char when[80], *line = NULL;
        cJSON *o;
        int r = -ENOMEM;

        if (!a || a->audit_fd < 0)
                return 0;
        iso_time(now_ms, when, sizeof(when));
        o = cJSON_CreateObject();
        if (o && cJSON_AddStringToObject(o, "time", when) && add_clean(o, "user", user && *user ? user : "-") &&
            add_clean(o, "addr", addr && *addr ? addr : "-") && add_clean(o, "event", event ? event : "-") &&
            (detail ? add_clean(o, "detail", detail) : cJSON_AddNullToObject(o, "detail") != NULL))
                line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (line) {
                size_t n = strlen(line);

                line[n] = '\n'; /* over the NUL: one write() of the whole line */
                r = bbt_write_full(a->audit_fd, line, n + 1);
                free(line);
        }
        if (r < 0)
                a->st.audit_errors++;
        return r;
}

/* ---- the accounts ---- */

static void settings_defaults(struct bbt_accounts_settings *s)
{
        if (s->session_ms <= 0)
                s->session_ms = BBT_SESSION_MS;
        if (s->session_max_ms <= 0)
                s->session_max_ms = BBT_SESSION_MAX_MS;
        if (s->session_max_ms < s->session_ms)
                s->session_max_ms = s->session_ms;
        if (s->max_sessions <= 0)
                s->max_sessions = BBT_MAX_SESSIONS;
        if (s->login_burst <= 0)
                s->login_burst = BBT_LOGIN_BURST;
        if (s->login_refill_ms <= 0)
                s->login_refill_ms = BBT_LOGIN_REFILL_MS;
        if (s->addr_burst <= 0)
                s->addr_burst = BBT_ADDR_BURST;
        if (s->addr_refill_ms <= 0)
                s->addr_refill_ms = BBT_ADDR_REFILL_MS;
}

struct first_error {
        char *err;
        size_t size;
        size_t count;
};

static void keep_first_error(void *ctx, const char *msg)
{
        struct first_error *f = ctx;

        if (f->count++ == 0)
                bbt_set_err(f->err, f->size, "%s", msg);
}

/* Reads and parses A's file into *RET. */
static int load_users(const char *path, struct bbt_users *ret, char *err, size_t err_size)
{
        struct first_error fe = { .err = err, .size = err_size };
        char *text;
        size_t len;
        int r;

        r = bbt_users_read(path, &text, &len, err, err_size);
        if (r < 0)
                return r;
        r = bbt_users_parse(path, text, len, ret, keep_first_error, &fe);
        wipe_free(text, len + 1);
        if (r == -EINVAL && fe.count > 1 && err && err_size > 0) {
                size_t n = strlen(err);

                snprintf(err + n, err_size - n, " (and %zu more problems: bbt-web-user --file %s check)", fe.count - 1,
                         path);
        } else if (r == -ENOMEM) {
                bbt_set_err(err, err_size, "%s: out of memory", path);
        }
        return r;
}

int bbt_accounts_open(const char *path, const struct bbt_accounts_settings *s, struct bbt_accounts **ret, char *err,
                      size_t err_size)
{
        struct bbt_accounts *a;
        char dummy_pw[33];
        int r;

        *ret = NULL;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->audit_fd = -1;
        if (s)
                a->set = *s;
        settings_defaults(&a->set);
        a->path = strdup(path);
        a->audit_path = a->set.audit_path ? strdup(a->set.audit_path) : NULL;
        a->set.audit_path = a->audit_path;
        a->sessions = calloc((size_t)a->set.max_sessions, sizeof(*a->sessions));
        a->buckets = calloc(THROTTLE_MAX, sizeof(*a->buckets));
        if (!a->path || (a->set.audit_path && !a->audit_path) || !a->sessions || !a->buckets) {
                r = -ENOMEM;
                bbt_set_err(err, err_size, "out of memory");
                goto fail;
        }
        r = load_users(path, &a->users, err, err_size);
        if (r < 0)
                goto fail;
        if (a->audit_path) {
                r = audit_open(a->audit_path, &a->audit_fd);
                if (r < 0) {
                        bbt_set_err(err, err_size, "audit log %s: %s", a->audit_path, strerror(-r));
                        goto fail;
                }
        }
        /* A hash of a random password with the default cost: an unknown user's
         * login checks it, so it takes as long as a wrong password. */
        r = random_hex(dummy_pw, 16);
        if (r == 0)
                r = bbt_password_hash(dummy_pw, a->dummy_hash, sizeof(a->dummy_hash));
        explicit_bzero(dummy_pw, sizeof(dummy_pw));
        if (r < 0) {
                bbt_set_err(err, err_size, "password hashing (libcrypt yescrypt): %s", strerror(-r));
                goto fail;
        }
        *ret = a;
        return 0;
fail:
        bbt_accounts_free(a);
        return r;
}

void bbt_accounts_free(struct bbt_accounts *a)
{
        if (!a)
                return;
        if (a->audit_fd >= 0)
                close(a->audit_fd);
        bbt_users_free(&a->users);
        wipe_free(a->sessions, (size_t)a->set.max_sessions * sizeof(*a->sessions));
        free(a->buckets);
        free(a->audit_path);
        free(a->path);
        free(a);
}

void bbt_accounts_stats(const struct bbt_accounts *a, struct bbt_accounts_stats *ret)
{
        *ret = a->st;
        ret->users = a->users.n;
        ret->sessions = a->n_sessions;
}

static void session_remove(struct bbt_accounts *a, size_t i)
{
        a->sessions[i] = a->sessions[--a->n_sessions];
        explicit_bzero(&a->sessions[a->n_sessions], sizeof(a->sessions[0]));
}

int bbt_accounts_reload(struct bbt_accounts *a, char *err, size_t err_size)
{
        struct bbt_users nu;
        int64_t now = 0;
        struct timespec ts;
        int r;

        r = load_users(a->path, &nu, err, err_size);
        if (r < 0) {
                a->st.reload_errors++;
                return r;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        /* Reopened for log rotation: the server reloads on SIGHUP, as logrotate sends. */
        if (a->audit_path) {
                int fd = -1;

                r = audit_open(a->audit_path, &fd);
                if (r < 0) {
                        bbt_set_err(err, err_size, "audit log %s: %s", a->audit_path, strerror(-r));
                        bbt_users_free(&nu);
                        a->st.reload_errors++;
                        return r;
                }
                if (a->audit_fd >= 0)
                        close(a->audit_fd);
                a->audit_fd = fd;
        }
        for (size_t i = 0; i < a->n_sessions;) {
                struct bbt_session *s = &a->sessions[i];
                const struct bbt_user *old = bbt_users_find(&a->users, s->user);
                const struct bbt_user *now_u = bbt_users_find(&nu, s->user);
                const char *why = !now_u                                      ? "user removed"
                                  : !old || strcmp(old->hash, now_u->hash) != 0 ? "password changed"
                                  : !scope_equal(&now_u->scope, &s->scope)      ? "scope changed"
                                                                                : NULL;

                if (!why) {
                        i++;
                        continue;
                }
                bbt_accounts_audit(a, s->user, NULL, "session_ended", why, now);
                a->st.sessions_ended++;
                session_remove(a, i);
        }
        bbt_users_free(&a->users);
        a->users = nu;
        a->st.reloads++;
        return 0;
}

/* ---- login throttling ---- */

static struct bucket *bucket_find(struct bbt_accounts *a, const char *key)
{
        for (size_t i = 0; i < a->n_buckets; i++)
                if (strcmp(a->buckets[i].key, key) == 0)
                        return &a->buckets[i];
        return NULL;
}

/* Milliseconds until KEY's bucket allows an attempt (0: now); the bucket in *RET. */
static int64_t bucket_wait(struct bbt_accounts *a, const char *key, int burst, int64_t refill, int64_t now,
                           struct bucket **ret)
{
        struct bucket *b = bucket_find(a, key);
        int64_t slack = (int64_t)(burst - 1) * refill;

        *ret = b;
        if (!b || b->tat - now <= slack)
                return 0;
        return b->tat - now - slack;
}

/* Takes a token from KEY's bucket (a failed login). */
static void bucket_take(struct bbt_accounts *a, const char *key, int64_t refill, int64_t now)
{
        struct bucket *b = bucket_find(a, key);

        if (!b) {
                if (a->n_buckets == THROTTLE_MAX) {
                        /* Full: forget the full buckets (the same as none); if
                         * none is, the one that would be full soonest. */
                        size_t soonest = 0;

                        for (size_t i = 0; i < a->n_buckets;) {
                                if (a->buckets[i].tat <= now) {
                                        a->buckets[i] = a->buckets[--a->n_buckets];
                                        continue;
                                }
                                if (a->buckets[i].tat < a->buckets[soonest].tat)
                                        soonest = i;
                                i++;
                        }
                        if (a->n_buckets == THROTTLE_MAX) {
                                a->buckets[soonest] = a->buckets[--a->n_buckets];
                                a->st.throttle_evicted++;
                        }
                }
                b = &a->buckets[a->n_buckets++];
                memset(b, 0, sizeof(*b));
                snprintf(b->key, sizeof(b->key), "%s", key);
                b->tat = now;
        }
        b->tat = (b->tat > now ? b->tat : now) + refill;
}

static void bucket_forget(struct bbt_accounts *a, const char *key)
{
        struct bucket *b = bucket_find(a, key);

        if (b)
                *b = a->buckets[--a->n_buckets];
}

static void throttle_keys(const char *user, const char *addr, char *pair, size_t pair_size, char *host,
                          size_t host_size)
{
        snprintf(pair, pair_size, "u\x1f%.*s\x1f%.*s", BBT_USER_NAME_MAX, user, ADDR_MAX, addr);
        snprintf(host, host_size, "a\x1f%.*s", ADDR_MAX, addr);
}

/* ---- sessions ---- */

static int session_new(struct bbt_accounts *a, const struct bbt_user *u, const char *addr, int64_t now,
                       struct bbt_session *ret)
{
        struct bbt_session s = { 0 };
        int r;

        snprintf(s.user, sizeof(s.user), "%s", u->name);
        s.scope = u->scope;
        r = random_hex(s.token, 32);
        if (r == 0)
                r = random_hex(s.csrf, 32);
        if (r < 0)
                return r;
        s.created_ms = now;
        s.expires_ms = now + a->set.session_ms;
        /* Sessions nobody came back to end here, not only when next used. */
        for (size_t i = 0; i < a->n_sessions;) {
                struct bbt_session *o = &a->sessions[i];
                bool max_age = now >= o->created_ms + a->set.session_max_ms;

                if (now < o->expires_ms && !max_age) {
                        i++;
                        continue;
                }
                bbt_accounts_audit(a, o->user, NULL, "session_expired", max_age ? "maximum age" : "idle", now);
                a->st.sessions_expired++;
                session_remove(a, i);
        }
        if (a->n_sessions == (size_t)a->set.max_sessions) {
                size_t oldest = 0;

                for (size_t i = 1; i < a->n_sessions; i++)
                        if (a->sessions[i].created_ms < a->sessions[oldest].created_ms)
                                oldest = i;
                bbt_accounts_audit(a, a->sessions[oldest].user, addr, "session_dropped",
                                   "the oldest session, to stay within max_sessions", now);
                a->st.sessions_dropped++;
                session_remove(a, oldest);
        }
        a->sessions[a->n_sessions++] = s;
        *ret = s;
        explicit_bzero(&s, sizeof(s));
        return 0;
}

int bbt_accounts_login(struct bbt_accounts *a, const char *user, const char *password, const char *addr,
                       int64_t now_ms, struct bbt_session *ret, int *retry_after_s)
{
        char pair[sizeof(((struct bucket *)0)->key)], host[sizeof(pair)];
        const struct bbt_user *u = NULL;
        struct bucket *pb, *hb;
        int64_t wait, w;
        bool ok;
        int r;

        if (retry_after_s)
                *retry_after_s = 0;
        if (!user)
                user = "";
        if (!password)
                password = "";
        if (!addr || !*addr)
                addr = "-";
        throttle_keys(user, addr, pair, sizeof(pair), host, sizeof(host));
        wait = bucket_wait(a, pair, a->set.login_burst, a->set.login_refill_ms, now_ms, &pb);
        w = bucket_wait(a, host, a->set.addr_burst, a->set.addr_refill_ms, now_ms, &hb);
        if (wait > 0 || w > 0) {
                struct bucket *b = w > wait ? hb : pb;
                int64_t refill = w > wait ? a->set.addr_refill_ms : a->set.login_refill_ms;
                int64_t s = ((w > wait ? w : wait) + 999) / 1000;

                if (retry_after_s)
                        *retry_after_s = s > INT_MAX ? INT_MAX : (int)s;
                a->st.logins_throttled++;
                if (!b->logged || now_ms - b->logged_ms >= refill) {
                        char detail[96];
                        int n = snprintf(detail, sizeof(detail), "%s", b == hb ? "address" : "user and address");

                        if (b->unlogged > 0)
                                snprintf(detail + n, sizeof(detail) - (size_t)n,
                                         "; %" PRIu64 " more refused since the last such line", b->unlogged);
                        bbt_accounts_audit(a, user, addr, "login_throttled", detail, now_ms);
                        b->logged = true;
                        b->logged_ms = now_ms;
                        b->unlogged = 0;
                } else {
                        b->unlogged++;
                }
                return -EAGAIN;
        }
        if (strlen(user) <= BBT_USER_NAME_MAX)
                u = bbt_users_find(&a->users, user);
        /* An unknown user costs one hash too: the same answer, about the same time. */
        ok = bbt_password_verify(password, u ? u->hash : a->dummy_hash) && u;
        if (!ok) {
                bucket_take(a, pair, a->set.login_refill_ms, now_ms);
                bucket_take(a, host, a->set.addr_refill_ms, now_ms);
                a->st.logins_failed++;
                bbt_accounts_audit(a, user, addr, "login_failed", u ? "wrong password" : "unknown user", now_ms);
                return -EACCES;
        }
        bucket_forget(a, pair);
        r = session_new(a, u, addr, now_ms, ret);
        if (r < 0) {
                bbt_accounts_audit(a, user, addr, "login_failed", "no random bytes for a session", now_ms);
                return r;
        }
        a->st.logins++;
        bbt_accounts_audit(a, user, addr, "login", bbt_role_name(u->scope.role), now_ms);
        return 0;
}

/* The index of the session with TOKEN, or -1. Every live session's token is
 * compared in full, in constant time. */
static ssize_t session_index(struct bbt_accounts *a, const char *token)
{
        ssize_t found = -1;

        if (!token || strlen(token) != 64)
                return -1;
        for (size_t i = 0; i < a->n_sessions; i++)
                if (ct_equal(a->sessions[i].token, token))
                        found = (ssize_t)i;
        return found;
}

const struct bbt_session *bbt_accounts_session(struct bbt_accounts *a, const char *token, int64_t now_ms)
{
        ssize_t i = session_index(a, token);
        struct bbt_session *s;
        int64_t end;

        if (i < 0)
                return NULL;
        s = &a->sessions[i];
        end = s->created_ms + a->set.session_max_ms;
        if (now_ms >= s->expires_ms || now_ms >= end) {
                bbt_accounts_audit(a, s->user, NULL, "session_expired", now_ms >= end ? "maximum age" : "idle",
                                   now_ms);
                a->st.sessions_expired++;
                session_remove(a, (size_t)i);
                return NULL;
        }
        s->expires_ms = now_ms + a->set.session_ms < end ? now_ms + a->set.session_ms : end;
        return s;
}

bool bbt_session_csrf_ok(const struct bbt_session *s, const char *csrf)
{
        return s && csrf && s->csrf[0] && strlen(csrf) == 64 && ct_equal(s->csrf, csrf);
}

void bbt_accounts_logout(struct bbt_accounts *a, const char *token, const char *addr, int64_t now_ms)
{
        ssize_t i = session_index(a, token);

        if (i < 0)
                return;
        bbt_accounts_audit(a, a->sessions[i].user, addr, "logout", NULL, now_ms);
        session_remove(a, (size_t)i);
}
