/* The ledger file: one line per setting, principal and revoked serial; read strictly, written atomically with mode 0600. */
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bbt/array.h"
#include "bbt/fileio.h"

#define MAGIC "bbt-provision-ledger 1"
#define MAX_FIELDS 16

static const char *const kind_names[BBT_PRINCIPAL__COUNT] = {
        [BBT_PRINCIPAL_CA] = "ca",
        [BBT_PRINCIPAL_SERVER] = "server",
        [BBT_PRINCIPAL_TERMINAL] = "terminal",
        [BBT_PRINCIPAL_AGGREGATOR] = "aggregator",
        [BBT_PRINCIPAL_OPERATOR] = "operator",
        [BBT_PRINCIPAL_BRIDGE] = "bridge",
};

const char *bbt_principal_kind_name(enum bbt_principal_kind k)
{
        return (unsigned)k < BBT_PRINCIPAL__COUNT ? kind_names[k] : "?";
}

void bbt_ledger_init(struct bbt_ledger *l)
{
        memset(l, 0, sizeof(*l));
        l->set.port = 8883;
        l->set.cert_port = 8884;
        l->set.days = 3650;
}

int bbt_ledger_set_str(char **field, const char *value)
{
        char *copy = NULL;

        if (value && !(copy = strdup(value)))
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

static void free_secret_str(char **s)
{
        if (*s)
                OPENSSL_clear_free(*s, strlen(*s));
        *s = NULL;
}

void bbt_principal_forget_secrets(struct bbt_principal *p)
{
        OPENSSL_cleanse(p->secret, sizeof(p->secret));
        OPENSSL_cleanse(p->hash, sizeof(p->hash));
        free_secret_str(&p->key);
}

static void principal_clear(struct bbt_principal *p)
{
        bbt_principal_forget_secrets(p);
        free(p->name);
        free(p->hosts);
        free(p->cert);
}

void bbt_ledger_clear(struct bbt_ledger *l)
{
        for (size_t i = 0; i < l->n; i++)
                principal_clear(&l->p[i]);
        free(l->p);
        for (size_t i = 0; i < l->n_crl; i++)
                free(l->crl[i].name);
        free(l->crl);
        free(l->crl_b64);
        for (size_t i = 0; i < l->set.n_brokers; i++)
                free(l->set.brokers[i]);
        free(l->set.brokers);
        free(l->set.conf_dir);
        bbt_ledger_init(l);
}

struct bbt_principal *bbt_ledger_add(struct bbt_ledger *l, enum bbt_principal_kind kind, const char *name)
{
        struct bbt_principal *p;

        if (bbt_array_reserve((void **)&l->p, &l->cap, l->n + 1, sizeof(*l->p)) < 0)
                return NULL;
        p = &l->p[l->n];
        memset(p, 0, sizeof(*p));
        p->kind = kind;
        p->name = strdup(name);
        if (!p->name)
                return NULL;
        l->n++;
        return p;
}

int bbt_ledger_crl_add(struct bbt_ledger *l, const char *serial, int64_t when, const char *name)
{
        struct bbt_crl_entry *e;

        if (bbt_array_reserve((void **)&l->crl, &l->cap_crl, l->n_crl + 1, sizeof(*l->crl)) < 0)
                return -ENOMEM;
        e = &l->crl[l->n_crl];
        snprintf(e->serial, sizeof(e->serial), "%s", serial);
        e->when = when;
        e->name = strdup(name);
        if (!e->name)
                return -ENOMEM;
        l->n_crl++;
        return 0;
}

static int by_name(const void *a, const void *b)
{
        return strcmp(((const struct bbt_principal *)a)->name, ((const struct bbt_principal *)b)->name);
}

void bbt_ledger_sort(struct bbt_ledger *l)
{
        if (l->n_sorted != l->n)
                qsort(l->p, l->n, sizeof(*l->p), by_name);
        l->n_sorted = l->n;
}

struct bbt_principal *bbt_ledger_find(const struct bbt_ledger *l, const char *name)
{
        struct bbt_principal key = { .name = (char *)name };

        if (!l->n_sorted)
                return NULL;
        return bsearch(&key, l->p, l->n_sorted, sizeof(*l->p), by_name);
}

/* ---- reading ---- */

struct reader {
        const char *path;
        unsigned line;
        char *err;
        size_t err_size;
};

__attribute__((format(printf, 2, 3))) static int bad(struct reader *rd, const char *fmt, ...)
{
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(rd->err, rd->err_size, "%s:%u: %s", rd->path, rd->line, what);
        return -EINVAL;
}

/* "-" is an empty field. */
static const char *field(const char *s)
{
        return strcmp(s, "-") == 0 ? NULL : s;
}

static int parse_i64(const char *s, int64_t *ret)
{
        char *end;
        long long v;

        if (!s) {
                *ret = 0;
                return 0;
        }
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_long(const char *s, long lo, long hi, long *ret)
{
        int64_t v;

        if (!s || parse_i64(s, &v) < 0 || v < lo || v > hi)
                return -EINVAL;
        *ret = (long)v;
        return 0;
}

static int copy_fixed(char *dst, size_t size, const char *src)
{
        if (!src) {
                dst[0] = '\0';
                return 0;
        }
        if (strlen(src) >= size)
                return -EINVAL;
        memcpy(dst, src, strlen(src) + 1);
        return 0;
}

static int parse_setting(struct reader *rd, struct bbt_ledger *l, char **f, size_t n, const char *rest)
{
        struct bbt_ledger_settings *s = &l->set;

        if (n < 3)
                return bad(rd, "setting without a value");
        if (strcmp(f[1], "broker") == 0) {
                char *copy = strdup(f[2]), **brokers = realloc(s->brokers, (s->n_brokers + 1) * sizeof(*brokers));

                if (brokers)
                        s->brokers = brokers;
                if (!copy || !brokers) {
                        free(copy);
                        return -ENOMEM;
                }
                s->brokers[s->n_brokers++] = copy;
                return 0;
        }
        if (strcmp(f[1], "port") == 0)
                return parse_long(f[2], 1, 65535, &s->port) < 0 ? bad(rd, "port: expected 1..65535") : 0;
        if (strcmp(f[1], "cert_port") == 0)
                return parse_long(f[2], 1, 65535, &s->cert_port) < 0 ? bad(rd, "cert_port: expected 1..65535") : 0;
        if (strcmp(f[1], "days") == 0)
                return parse_long(f[2], 1, 36500, &s->days) < 0 ? bad(rd, "days: expected 1..36500") : 0;
        if (strcmp(f[1], "client_certs") == 0 || strcmp(f[1], "acl") == 0) {
                bool *flag = f[1][0] == 'c' ? &s->client_certs : &s->acl_explicit;
                const char *yes = f[1][0] == 'c' ? "yes" : "explicit", *no = f[1][0] == 'c' ? "no" : "pattern";

                if (strcmp(f[2], yes) != 0 && strcmp(f[2], no) != 0)
                        return bad(rd, "%s: expected %s or %s", f[1], yes, no);
                *flag = strcmp(f[2], yes) == 0;
                return 0;
        }
        if (strcmp(f[1], "conf_dir") == 0)
                return bbt_ledger_set_str(&s->conf_dir, rest);
        return bad(rd, "unknown setting \"%s\"", f[1]);
}

/* p KIND NAME STATUS ISSUED REVOKED_AT SECRET HASH SERIAL HOSTS KEY CERT */
static int parse_principal(struct reader *rd, struct bbt_ledger *l, char **f, size_t n)
{
        struct bbt_principal *p;
        int kind = -1;

        if (n != 12)
                return bad(rd, "principal: expected 12 fields, got %zu", n);
        for (int k = 0; k < BBT_PRINCIPAL__COUNT; k++)
                if (strcmp(f[1], kind_names[k]) == 0)
                        kind = k;
        if (kind < 0)
                return bad(rd, "unknown kind \"%s\"", f[1]);
        if (strcmp(f[3], "active") != 0 && strcmp(f[3], "revoked") != 0)
                return bad(rd, "status: expected active or revoked");
        p = bbt_ledger_add(l, (enum bbt_principal_kind)kind, f[2]);
        if (!p)
                return -ENOMEM;
        p->revoked = f[3][0] == 'r';
        if (parse_i64(field(f[4]), &p->issued) < 0 || parse_i64(field(f[5]), &p->revoked_at) < 0)
                return bad(rd, "%s: bad time", f[2]);
        if (copy_fixed(p->secret, sizeof(p->secret), field(f[6])) < 0 ||
            copy_fixed(p->hash, sizeof(p->hash), field(f[7])) < 0 ||
            copy_fixed(p->serial, sizeof(p->serial), field(f[8])) < 0)
                return bad(rd, "%s: a field is too long", f[2]);
        if (bbt_ledger_set_str(&p->hosts, field(f[9])) < 0 || bbt_ledger_set_str(&p->key, field(f[10])) < 0 ||
            bbt_ledger_set_str(&p->cert, field(f[11])) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_line(struct reader *rd, struct bbt_ledger *l, char *line)
{
        char *f[MAX_FIELDS], *save = NULL, *tok, *rest = NULL;
        size_t n = 0;

        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || line[0] == '#')
                return 0;
        /* A setting's value is the rest of the line (conf_dir may hold spaces). */
        if (strncmp(line, "set ", 4) == 0 && (rest = strchr(line + 4, ' '))) {
                *rest++ = '\0';
                f[0] = line;
                f[1] = line + 4;
                f[2] = rest;
                return parse_setting(rd, l, f, 3, rest);
        }
        for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                if (n == MAX_FIELDS)
                        return bad(rd, "too many fields");
                f[n++] = tok;
        }
        if (n == 0)
                return bad(rd, "a line of spaces");
        if (strcmp(f[0], "set") == 0)
                return parse_setting(rd, l, f, n, rest);
        if (strcmp(f[0], "p") == 0)
                return parse_principal(rd, l, f, n);
        if (strcmp(f[0], "r") == 0) {
                int64_t when;

                if (n != 4 || parse_i64(f[2], &when) < 0 || strlen(f[1]) >= BBT_PKI_SERIAL_MAX)
                        return bad(rd, "revoked serial: expected SERIAL TIME NAME");
                return bbt_ledger_crl_add(l, f[1], when, f[3]);
        }
        if (strcmp(f[0], "crl") == 0) {
                int64_t listed;

                if (n != 4 || parse_long(f[1], 0, 1L << 40, &l->crl_number) < 0 || parse_i64(f[2], &listed) < 0)
                        return bad(rd, "crl: expected NUMBER LISTED DER");
                l->crl_listed = (size_t)listed;
                return bbt_ledger_set_str(&l->crl_b64, f[3]);
        }
        return bad(rd, "unknown line \"%s\"", f[0]);
}

int bbt_ledger_load(struct bbt_ledger *l, const char *path, char *err, size_t err_size)
{
        struct reader rd = { .path = path, .err = err, .err_size = err_size };
        char *line = NULL;
        size_t cap = 0;
        FILE *f = fopen(path, "re");
        int r = 0;

        if (!f) {
                snprintf(err, err_size, "%s: %s", path, strerror(errno));
                return -errno;
        }
        while (r == 0 && getline(&line, &cap, f) >= 0) {
                rd.line++;
                if (rd.line == 1) {
                        if (strncmp(line, MAGIC, strlen(MAGIC)) != 0 || (line[strlen(MAGIC)] != '\n'))
                                r = bad(&rd, "not a bbt-provision ledger (expected \"%s\")", MAGIC);
                        continue;
                }
                r = parse_line(&rd, l, line);
        }
        if (r == 0 && rd.line == 0)
                r = bad(&rd, "empty file");
        if (r == 0 && l->crl_listed > l->n_crl)
                r = bad(&rd, "the CRL lists more serials than the ledger holds");
        if (line)
                OPENSSL_clear_free(line, cap);
        fclose(f);
        if (r == -ENOMEM)
                snprintf(err, err_size, "%s: out of memory", path);
        if (r == 0) {
                l->n_sorted = 0;
                bbt_ledger_sort(l);
                for (size_t i = 1; i < l->n; i++)
                        if (strcmp(l->p[i - 1].name, l->p[i].name) == 0) {
                                snprintf(err, err_size, "%s: %s is listed twice", path, l->p[i].name);
                                return -EINVAL;
                        }
        }
        return r;
}

/* ---- writing ---- */

static const char *dash(const char *s)
{
        return s && *s ? s : "-";
}

static void write_principal(FILE *f, const struct bbt_principal *p)
{
        fprintf(f, "p %s %s %s %" PRId64 " %" PRId64 " %s %s %s %s %s %s\n", kind_names[p->kind], p->name,
                p->revoked ? "revoked" : "active", p->issued, p->revoked_at, dash(p->secret), dash(p->hash),
                dash(p->serial), dash(p->hosts), dash(p->key), dash(p->cert));
}

/* Whether DIRFD/NAME holds exactly the LEN bytes of TEXT already. */
static bool unchanged(int dirfd, const char *name, const char *text, size_t len)
{
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char *old = malloc(len + 1);
        bool same = false;
        size_t got = 0;
        ssize_t n;

        if (fd >= 0 && old) {
                while (got <= len && (n = read(fd, old + got, len + 1 - got)) > 0)
                        got += (size_t)n;
                same = got == len && memcmp(old, text, len) == 0;
        }
        if (fd >= 0)
                close(fd);
        if (old)
                OPENSSL_clear_free(old, len + 1);
        return same;
}

int bbt_ledger_save(struct bbt_ledger *l, int dirfd, const char *name)
{
        const struct bbt_ledger_settings *s = &l->set;
        char tmp[256], *text = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        bbt_ledger_sort(l);
        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, MAGIC "\n"
                   "# bbt-provision's record of the credentials it issued. SECRET: keep it mode 0600,\n"
                   "# back it up where only the county's administrators can read it. Do not edit.\n");
        for (size_t i = 0; i < s->n_brokers; i++)
                fprintf(f, "set broker %s\n", s->brokers[i]);
        fprintf(f, "set port %ld\nset cert_port %ld\nset client_certs %s\nset acl %s\nset days %ld\n", s->port,
                s->cert_port, s->client_certs ? "yes" : "no", s->acl_explicit ? "explicit" : "pattern", s->days);
        if (s->conf_dir)
                fprintf(f, "set conf_dir %s\n", s->conf_dir);
        if (l->crl_b64)
                fprintf(f, "crl %ld %zu %s\n", l->crl_number, l->crl_listed, l->crl_b64);
        for (size_t i = 0; i < l->n_crl; i++)
                fprintf(f, "r %s %" PRId64 " %s\n", l->crl[i].serial, l->crl[i].when, l->crl[i].name);
        for (size_t i = 0; i < l->n; i++)
                write_principal(f, &l->p[i]);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
        r = unchanged(dirfd, name, text, len) ? 0 : bbt_atomic_replace(dirfd, tmp, name, text, len);
        OPENSSL_clear_free(text, len);
        return r;
}
