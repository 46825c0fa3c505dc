/* bbt-notify's targets file and secrets file: one [NAME] section per webhook target in each. */
#include "notify.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbt/fileio.h"
#include "dates.h"

const char *bbt_notify_format_name(enum bbt_notify_format f)
{
        return f == BBT_NOTIFY_WECOM ? "wecom" : f == BBT_NOTIFY_DINGTALK ? "dingtalk" : "json";
}

void bbt_notify_list_clear(struct bbt_notify_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

int bbt_notify_list_add(struct bbt_notify_list *l, const char *s)
{
        char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

        if (!v)
                return -ENOMEM;
        l->v = v;
        if (!(v[l->n] = strdup(s)))
                return -ENOMEM;
        l->n++;
        return 0;
}

bool bbt_notify_list_remove(struct bbt_notify_list *l, const char *s)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i], s) == 0) {
                        free(l->v[i]);
                        memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
                        l->n--;
                        return true;
                }
        return false;
}

/* Splits "a, b,c" (Chinese commas too) into L. Returns 0 or -ENOMEM. */
static int list_parse(struct bbt_notify_list *l, const char *s)
{
        bbt_notify_list_clear(l);
        while (*s) {
                const char *cn;
                char *word;
                size_t n;
                int r;

                while (*s == ',' || *s == ' ' || *s == '\t')
                        s++;
                if (strncmp(s, "，", 3) == 0) {
                        s += 3;
                        continue;
                }
                if (!*s)
                        break;
                n = strcspn(s, ",\t ");
                cn = strstr(s, "，");
                if (cn && (size_t)(cn - s) < n)
                        n = (size_t)(cn - s);
                if (!(word = strndup(s, n)))
                        return -ENOMEM;
                r = bbt_notify_list_add(l, word);
                free(word);
                if (r < 0)
                        return r;
                s += n;
        }
        return 0;
}

bool bbt_notify_list_has(const struct bbt_notify_list *l, const char *s)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i], s) == 0)
                        return true;
        return false;
}

bool bbt_notify_target_covers(const struct bbt_notify_target *t, const char *county, const char *code,
                              const struct bbt_school *reg)
{
        if (t->counties.n && !bbt_notify_list_has(&t->counties, county))
                return false;
        if (!t->townships.n && !t->schools.n)
                return true;
        return bbt_notify_list_has(&t->schools, code) || (reg && reg->township && bbt_notify_list_has(&t->townships, reg->township));
}

void bbt_notify_targets_free(struct bbt_notify_targets *t)
{
        for (size_t i = 0; i < t->n; i++) {
                struct bbt_notify_target *x = &t->v[i];

                bbt_notify_list_clear(&x->counties);
                bbt_notify_list_clear(&x->townships);
                bbt_notify_list_clear(&x->schools);
                free(x->url);
                if (x->secret)
                        explicit_bzero(x->secret, strlen(x->secret));
                free(x->secret);
                free(x->token);
        }
        free(t->v);
        t->v = NULL;
        t->n = 0;
}

int bbt_notify_secrets_check(const char *path, char *err, size_t err_size)
{
        struct stat st;

        if (stat(path, &st) < 0) {
                int e = errno;

                snprintf(err, err_size, "%s: %s (create it: install -m 0640 -o root -g bbt-notify /dev/null %s)",
                         path, strerror(e), path);
                return -e;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(err, err_size, "%s: not a regular file", path);
                return -EINVAL;
        }
        if (st.st_uid != 0 && st.st_uid != geteuid()) {
                snprintf(err, err_size,
                         "%s: owned by uid %u, neither root nor this user (uid %u): refused (chown root %s)", path,
                         (unsigned)st.st_uid, (unsigned)geteuid(), path);
                return -EPERM;
        }
        if ((st.st_mode & 022) || bbt_private_file_check(path, NULL) == -EPERM) {
                snprintf(err, err_size,
                         "%s: mode %04o lets others read or change the webhook secrets: refused (chmod 0640 %s; "
                         "chgrp bbt-notify %s)",
                         path, (unsigned)(st.st_mode & 07777), path, path);
                return -EPERM;
        }
        return 0;
}

struct parse {
        const char *path;
        struct bbt_notify_targets *t;
        int default_digest_min;
        bool secrets;
        char *err;
        size_t err_size;
        int r;
};

static struct bbt_notify_target *find(struct bbt_notify_targets *t, const char *name)
{
        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->v[i].name, name) == 0)
                        return &t->v[i];
        return NULL;
}

static bool name_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 32)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '-' || *s == '_'))
                        return false;
        return true;
}

static int bad(struct parse *p, const char *section, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int bad(struct parse *p, const char *section, const char *key, const char *fmt, ...)
{
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(p->err, p->err_size, "[%s] %s: %s", section, key, what);
        p->r = -EINVAL;
        return 0;
}

static int on_key(void *u, const char *section, const char *key, const char *value)
{
        struct parse *p = u;
        struct bbt_notify_target *x;
        char **field = NULL;

        if (!*section) {
                snprintf(p->err, p->err_size, "%s: key outside any [target] section", key);
                p->r = -EINVAL;
                return 0;
        }
        if (!name_valid(section))
                return bad(p, section, key, "a target's name is 1 to 32 of A-Z a-z 0-9 - _%s", "");
        x = find(p->t, section);
        if (!x && p->secrets)
                return 1; /* a target taken out of the targets file keeps its secrets here: unused */
        if (!x) {
                struct bbt_notify_target *v = realloc(p->t->v, (p->t->n + 1) * sizeof(*v));

                if (!v) {
                        p->r = -ENOMEM;
                        return 0;
                }
                p->t->v = v;
                x = &v[p->t->n++];
                memset(x, 0, sizeof(*x));
                snprintf(x->name, sizeof(x->name), "%s", section);
                x->format = BBT_NOTIFY_JSON;
                x->events = BBT_NOTIFY_FAULTS | BBT_NOTIFY_DIGEST;
                x->digest_min = p->default_digest_min;
                x->min_severity = BBT_SEVERITY_WARNING;
                x->chinese = true;
        }
        if (p->secrets) {
                if (strcmp(key, "url") == 0)
                        field = &x->url;
                else if (strcmp(key, "secret") == 0)
                        field = &x->secret;
                else if (strcmp(key, "token") == 0)
                        field = &x->token;
                else
                        return bad(p, section, key, "unknown key (url, secret, token)%s", "");
                if (*field)
                        return bad(p, section, key, "set twice%s", "");
                if (field == &x->url && strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
                        return bad(p, section, key, "expected an http:// or https:// URL%s", "");
                if (!(*field = strdup(value)))
                        p->r = -ENOMEM;
                return p->r < 0 ? 0 : 1;
        }
        if (strcmp(key, "format") == 0) {
                if (strcasecmp(value, "wecom") == 0)
                        x->format = BBT_NOTIFY_WECOM;
                else if (strcasecmp(value, "dingtalk") == 0)
                        x->format = BBT_NOTIFY_DINGTALK;
                else if (strcasecmp(value, "json") == 0)
                        x->format = BBT_NOTIFY_JSON;
                else
                        return bad(p, section, key, "expected wecom, dingtalk or json, got \"%s\"", value);
        } else if (strcmp(key, "events") == 0) {
                struct bbt_notify_list l = { 0 };

                if (list_parse(&l, value) < 0) {
                        bbt_notify_list_clear(&l);
                        p->r = -ENOMEM;
                        return 0;
                }
                x->events = 0;
                for (size_t i = 0; i < l.n; i++) {
                        if (strcmp(l.v[i], "faults") == 0)
                                x->events |= BBT_NOTIFY_FAULTS;
                        else if (strcmp(l.v[i], "digest") == 0)
                                x->events |= BBT_NOTIFY_DIGEST;
                        else {
                                bbt_notify_list_clear(&l);
                                return bad(p, section, key, "expected faults, digest or both, got \"%s\"", value);
                        }
                }
                bbt_notify_list_clear(&l);
        } else if (strcmp(key, "county") == 0 || strcmp(key, "townships") == 0 || strcmp(key, "schools") == 0) {
                struct bbt_notify_list *l = key[0] == 'c' ? &x->counties : key[0] == 't' ? &x->townships : &x->schools;

                if (list_parse(l, value) < 0) {
                        p->r = -ENOMEM;
                        return 0;
                }
        } else if (strcmp(key, "digest_time") == 0) {
                if (bbt_minute_parse(value, &x->digest_min) < 0 || x->digest_min >= 24 * 60)
                        return bad(p, section, key, "expected a time of day HH:MM, got \"%s\"", value);
        } else if (strcmp(key, "min_severity") == 0) {
                if (strcasecmp(value, "warning") == 0)
                        x->min_severity = BBT_SEVERITY_WARNING;
                else if (strcasecmp(value, "error") == 0)
                        x->min_severity = BBT_SEVERITY_ERROR;
                else
                        return bad(p, section, key, "expected warning or error, got \"%s\"", value);
        } else if (strcmp(key, "rate_limit") == 0) {
                char *end;
                long v = strtol(value, &end, 10);

                if (end == value || *end || v < 1 || v > 600)
                        return bad(p, section, key, "expected messages a minute, 1 to 600, got \"%s\"", value);
                x->rate_limit = (int)v;
        } else if (strcmp(key, "lang") == 0) {
                if (strcmp(value, "zh") == 0 || strcmp(value, "en") == 0)
                        x->chinese = value[0] == 'z';
                else
                        return bad(p, section, key, "expected zh or en, got \"%s\"", value);
        } else {
                return bad(p, section, key,
                           "unknown key (format, events, county, townships, schools, digest_time, min_severity, "
                           "rate_limit, lang)%s",
                           "");
        }
        return 1;
}

static int parse_file(struct parse *p)
{
        char msg[512];
        int line = ini_parse(p->path, on_key, p);

        if (line == 0 && p->r == 0)
                return 0;
        if (line == -1) {
                snprintf(p->err, p->err_size, "%s: cannot open it", p->path);
                return -ENOENT;
        }
        if (p->r == -EINVAL || (line > 0 && p->r == 0)) {
                snprintf(msg, sizeof(msg), "%s", p->r ? p->err : "syntax error: expected [section] or key = value");
                snprintf(p->err, p->err_size, "%s:%d: %s", p->path, line, msg);
                return -EINVAL;
        }
        snprintf(p->err, p->err_size, "%s: out of memory", p->path);
        return -ENOMEM;
}

int bbt_notify_targets_load(const char *targets_path, const char *secrets_path, int default_digest_min,
                            struct bbt_notify_targets *ret, char *err, size_t err_size)
{
        struct bbt_notify_targets t = { 0 };
        struct parse p = { targets_path, &t, default_digest_min, false, err, err_size, 0 };
        int r = parse_file(&p);

        if (r == 0)
                r = bbt_notify_secrets_check(secrets_path, err, err_size);
        if (r == 0) {
                p.path = secrets_path;
                p.secrets = true;
                r = parse_file(&p);
        }
        for (size_t i = 0; r == 0 && i < t.n; i++) {
                if (!t.v[i].url) {
                        snprintf(err, err_size, "%s: [%s] url: missing (every target of %s needs its url here)",
                                 secrets_path, t.v[i].name, targets_path);
                        r = -EINVAL;
                } else if (!t.v[i].events) {
                        snprintf(err, err_size, "%s: [%s] events: empty (faults, digest or both)", targets_path,
                                 t.v[i].name);
                        r = -EINVAL;
                }
        }
        if (r < 0) {
                bbt_notify_targets_free(&t);
                return r;
        }
        *ret = t;
        return 0;
}
