/* bbt-provision: a county's broker credentials, ACL, certificates and terminal bundles, from the registry CSV files. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "acl.h"
#include "bbt/protocol.h"
#include "bundle.h"
#include "credential.h"
#include "ledger.h"
#include "pki.h"
#include "registry.h"

#define CA_DAYS 7300           /* 20 years: replacing the CA means new bundles everywhere */
#define RENEW_BEFORE_S (90L * 86400) /* a server certificate this close to its end is issued anew */
#define CRL_RENEW_BEFORE_S (30L * 86400)
#define NAME_MAX_LEN 64

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

static const char *prog = "bbt-provision";

struct options {
        const char *out, *schools, *terminals, *conf_dir;
        const char **brokers, **aggregators, **operators, **bridges, **revokes, **rotates;
        size_t n_brokers, n_aggregators, n_operators, n_bridges, n_revokes, n_rotates;
        long port, cert_port, days; /* -1: keep the ledger's */
        int client_certs, acl_explicit; /* -1: keep the ledger's */
        bool quiet;
};

struct counts {
        size_t added, kept, rotated, revoked, reactivated;
};

struct run {
        struct options opt;
        struct bbt_registry *reg;
        struct bbt_ledger led;
        EVP_PKEY *ca_key;
        X509 *ca;
        int64_t now;
        int outfd;
        struct counts terminals;
        size_t certs_issued;
        bool ledger_existed;
        /* progress */
        bool tty;
        double last_progress;
        int last_decile;
};

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s: ", prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-provision -o DIR -s SCHOOLS.csv -t TERMINALS.csv [--broker HOST]... [OPTION]...\n"
                "Make or update a county's broker credentials, ACL, certificates and terminal bundles\n"
                "from the registry: a password (or client certificate) per terminal, the broker's\n"
                "password file and ACL, a private CA and the broker's certificate, a CRL, one bundle\n"
                "per terminal and one archive per school. Running it again keeps every unchanged\n"
                "terminal's secret, revokes terminals gone from the registry and adds new ones.\n"
                "\n"
                "  -o, --out DIR            output and state directory (created, mode 0700); its\n"
                "                           'ledger' remembers every secret: back it up, keep it private\n"
                "  -s, --schools FILE       the schools CSV (docs/registry.md)\n"
                "  -t, --terminals FILE     the terminals CSV\n"
                "      --broker HOST        the county broker's DNS name or IP address, repeatable; all go\n"
                "                           into its certificate, the first is what terminals connect to\n"
                "                           (required on the first run, remembered)\n"
                "      --port N             TLS port for passwords (8883)\n"
                "      --cert-port N        TLS port for client certificates (8884)\n"
                "      --client-certs       terminals log in with a client certificate, not a password\n"
                "      --no-client-certs    terminals log in with a password (the default)\n"
                "      --acl MODE           'pattern' (default): %%u patterns, the same few lines for any\n"
                "                           number of terminals (mosquitto 2.0); 'explicit': lines per terminal\n"
                "      --aggregator NAME    credentials for an aggregator instance, repeatable (the first run\n"
                "                           makes 'bbt-aggregator' if none is named)\n"
                "      --operator NAME      credentials for an operator: reads everything, sends commands\n"
                "      --bridge SCHOOL=HOST[,HOST]...\n"
                "                           the school has a broker at HOST that bridges to the county: its\n"
                "                           certificate, bridge credentials and configuration; the school's\n"
                "                           terminals connect to it\n"
                "      --revoke NAME        revoke an aggregator, operator or bridge (bridge-COUNTY-SCHOOL);\n"
                "                           a terminal is revoked by removing it from the registry\n"
                "      --rotate NAME        new secret (and certificate) for one terminal (SCHOOL/TERMINAL or\n"
                "                           COUNTY/SCHOOL/TERMINAL), aggregator, operator or bridge; repeatable\n"
                "      --conf-dir DIR       where bundles go on a terminal (/etc/bbt)\n"
                "      --days N             validity of new certificates in days (3650)\n"
                "  -q, --quiet              no progress, only errors\n"
                "  -h, --help               show this help\n"
                "  -V, --version            show the version\n"
                "\n"
                "Exit status: 0 done, 1 failed (nothing half-written is used), 2 bad usage or input.\n"
                "Output: DIR/broker/ (install in /etc/mosquitto/bbt/, then reload mosquitto),\n"
                "DIR/terminals/COUNTY-SCHOOL/TERMINAL/, DIR/schools/COUNTY-SCHOOL.tar.gz,\n"
                "DIR/aggregators/NAME/, DIR/operators/NAME/. See bbt-provision(1), docs/deploy.md.\n");
}

/* ---- options ---- */

static long number(const char *opt, const char *arg, long lo, long hi)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(arg, &end, 10);
        if (errno || end == arg || *end || v < lo || v > hi) {
                say("%s: expected a number from %ld to %ld, got \"%s\"", opt, lo, hi, arg);
                exit(EXIT_USAGE);
        }
        return v;
}

/* An aggregator's or operator's name: it is its broker user name and a folder name. */
static bool account_name_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > NAME_MAX_LEN || strcmp(s, "ca") == 0 || strcmp(s, "broker") == 0 ||
            strncmp(s, "broker-", 7) == 0 || strncmp(s, "bridge-", 7) == 0)
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

enum {
        O_BROKER = 256,
        O_PORT,
        O_CERT_PORT,
        O_CLIENT_CERTS,
        O_NO_CLIENT_CERTS,
        O_ACL,
        O_AGGREGATOR,
        O_OPERATOR,
        O_BRIDGE,
        O_REVOKE,
        O_ROTATE,
        O_CONF_DIR,
        O_DAYS,
};

static void parse_options(int argc, char **argv, struct options *o)
{
        static const struct option longopts[] = {
                { "out", required_argument, NULL, 'o' },
                { "schools", required_argument, NULL, 's' },
                { "terminals", required_argument, NULL, 't' },
                { "broker", required_argument, NULL, O_BROKER },
                { "port", required_argument, NULL, O_PORT },
                { "cert-port", required_argument, NULL, O_CERT_PORT },
                { "client-certs", no_argument, NULL, O_CLIENT_CERTS },
                { "no-client-certs", no_argument, NULL, O_NO_CLIENT_CERTS },
                { "acl", required_argument, NULL, O_ACL },
                { "aggregator", required_argument, NULL, O_AGGREGATOR },
                { "operator", required_argument, NULL, O_OPERATOR },
                { "bridge", required_argument, NULL, O_BRIDGE },
                { "revoke", required_argument, NULL, O_REVOKE },
                { "rotate", required_argument, NULL, O_ROTATE },
                { "conf-dir", required_argument, NULL, O_CONF_DIR },
                { "days", required_argument, NULL, O_DAYS },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { 0 },
        };
        size_t max = (size_t)argc + 1;
        int c;

        memset(o, 0, sizeof(*o));
        o->port = o->cert_port = o->days = -1;
        o->client_certs = o->acl_explicit = -1;
        o->brokers = calloc(max, sizeof(char *));
        o->aggregators = calloc(max, sizeof(char *));
        o->operators = calloc(max, sizeof(char *));
        o->bridges = calloc(max, sizeof(char *));
        o->revokes = calloc(max, sizeof(char *));
        o->rotates = calloc(max, sizeof(char *));
        if (!o->brokers || !o->aggregators || !o->operators || !o->bridges || !o->revokes || !o->rotates) {
                say("out of memory");
                exit(EXIT_FAILED);
        }
        while ((c = getopt_long(argc, argv, "o:s:t:qhV", longopts, NULL)) != -1) {
                switch (c) {
                case 'o': o->out = optarg; break;
                case 's': o->schools = optarg; break;
                case 't': o->terminals = optarg; break;
                case 'q': o->quiet = true; break;
                case 'h': usage(stdout); exit(0);
                case 'V': printf("bbt-provision %s (protocol v%d)\n", BBT_VERSION, BBT_PROTOCOL_VERSION); exit(0);
                case O_BROKER: o->brokers[o->n_brokers++] = optarg; break;
                case O_PORT: o->port = number("--port", optarg, 1, 65535); break;
                case O_CERT_PORT: o->cert_port = number("--cert-port", optarg, 1, 65535); break;
                case O_CLIENT_CERTS: o->client_certs = 1; break;
                case O_NO_CLIENT_CERTS: o->client_certs = 0; break;
                case O_ACL:
                        if (strcmp(optarg, "pattern") != 0 && strcmp(optarg, "explicit") != 0) {
                                say("--acl: expected pattern or explicit, got \"%s\"", optarg);
                                exit(EXIT_USAGE);
                        }
                        o->acl_explicit = optarg[0] == 'e';
                        break;
                case O_AGGREGATOR: o->aggregators[o->n_aggregators++] = optarg; break;
                case O_OPERATOR: o->operators[o->n_operators++] = optarg; break;
                case O_BRIDGE: o->bridges[o->n_bridges++] = optarg; break;
                case O_REVOKE: o->revokes[o->n_revokes++] = optarg; break;
                case O_ROTATE: o->rotates[o->n_rotates++] = optarg; break;
                case O_CONF_DIR: o->conf_dir = optarg; break;
                case O_DAYS: o->days = number("--days", optarg, 1, 36500); break;
                default: usage(stderr); exit(EXIT_USAGE);
                }
        }
        if (optind != argc) {
                say("unexpected argument \"%s\"", argv[optind]);
                usage(stderr);
                exit(EXIT_USAGE);
        }
        if (!o->out || !o->schools || !o->terminals) {
                say("%s is required", !o->out ? "--out" : !o->schools ? "--schools" : "--terminals");
                usage(stderr);
                exit(EXIT_USAGE);
        }
        for (size_t i = 0; i < o->n_brokers; i++)
                if (!bbt_pki_host_valid(o->brokers[i])) {
                        say("--broker %s: expected a DNS name or an IP address", o->brokers[i]);
                        exit(EXIT_USAGE);
                }
        for (size_t i = 0; i < o->n_aggregators + o->n_operators; i++) {
                const char *n = i < o->n_aggregators ? o->aggregators[i] : o->operators[i - o->n_aggregators];

                if (!account_name_valid(n)) {
                        say("%s %s: expected 1 to %d of A-Z a-z 0-9 _ -, not ca, broker, broker-* or bridge-*",
                            i < o->n_aggregators ? "--aggregator" : "--operator", n, NAME_MAX_LEN);
                        exit(EXIT_USAGE);
                }
        }
        if (o->conf_dir && (o->conf_dir[0] != '/' || strpbrk(o->conf_dir, " \t\n\"'\\$`"))) {
                say("--conf-dir %s: expected an absolute path without spaces or quotes", o->conf_dir);
                exit(EXIT_USAGE);
        }
}

/* ---- progress ---- */

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "WHAT: DONE/TOTAL", on a terminal as one line redrawn at most 5 times a
 * second, otherwise a line at every tenth of a large job. */
static void progress(struct run *run, const char *what, size_t done, size_t total)
{
        double t = now_s();
        int decile = total ? (int)(done * 10 / total) : 10;

        if (run->opt.quiet || total < 100)
                return;
        if (run->tty) {
                if (done < total && t - run->last_progress < 0.2)
                        return;
                run->last_progress = t;
                fprintf(stderr, "\r%s: %s: %zu/%zu terminals%s", prog, what, done, total, done == total ? "\n" : "");
        } else if (total >= 2000 && (decile != run->last_decile || done == total)) {
                run->last_decile = done == total ? -1 : decile;
                say("%s: %zu/%zu terminals", what, done, total);
        }
}

static void bundle_progress(void *userdata, size_t done, size_t total)
{
        progress(userdata, "writing bundles", done, total);
}

/* ---- issuing ---- */

static int openssl_failed(const char *what)
{
        char buf[256];

        say("%s: %s", what, bbt_pki_error(buf, sizeof(buf)));
        return -EIO;
}

static int give_secret(struct run *run, struct bbt_principal *p)
{
        int r = bbt_credential_secret_new(p->secret);

        if (r == 0)
                r = bbt_credential_hash(p->secret, p->hash);
        if (r < 0) {
                say("%s: cannot make a secret: %s", p->name, strerror(-r));
                return r;
        }
        p->issued = run->now;
        return 0;
}

/* A new key and certificate for P (common name CN, the N HOSTS): the old
 * certificate, if any, goes on the CRL unless it is a server's. */
static int give_cert(struct run *run, struct bbt_principal *p, const char *cn, const char *const *hosts, size_t n,
                     unsigned usage)
{
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        char *key_b64 = NULL, *cert_b64 = NULL, serial[BBT_PKI_SERIAL_MAX];
        int r;

        r = bbt_pki_key_new(&key);
        if (r == 0)
                r = bbt_pki_issue(run->ca, run->ca_key, key, cn, hosts, n, usage, (int)run->led.set.days, &cert);
        if (r == 0)
                r = bbt_pki_serial_hex(cert, serial);
        if (r == 0)
                r = bbt_pki_key_to_b64(key, &key_b64);
        if (r == 0)
                r = bbt_pki_cert_to_b64(cert, &cert_b64);
        EVP_PKEY_free(key);
        X509_free(cert);
        if (r < 0) {
                free(cert_b64);
                if (key_b64)
                        OPENSSL_clear_free(key_b64, strlen(key_b64));
                if (r == -EIO)
                        return openssl_failed(p->name);
                say("%s: %s", p->name, strerror(-r));
                return r;
        }
        if (p->serial[0] && p->kind != BBT_PRINCIPAL_SERVER &&
            (r = bbt_ledger_crl_add(&run->led, p->serial, run->now, p->name)) < 0)
                return r;
        if (p->key)
                OPENSSL_clear_free(p->key, strlen(p->key));
        free(p->cert);
        p->key = key_b64;
        p->cert = cert_b64;
        memcpy(p->serial, serial, sizeof(serial));
        p->issued = run->now;
        run->certs_issued++;
        return 0;
}

static void revoke_principal(struct run *run, struct bbt_principal *p)
{
        if (p->revoked)
                return;
        if (p->serial[0] && bbt_ledger_crl_add(&run->led, p->serial, run->now, p->name) < 0)
                say("%s: out of memory", p->name);
        p->revoked = true;
        p->revoked_at = run->now;
        bbt_principal_forget_secrets(p);
}

/* Makes P active again with new credentials (it was revoked). */
static int reactivate(struct run *run, struct bbt_principal *p)
{
        p->revoked = false;
        p->revoked_at = 0;
        /* Its old certificate is on the CRL: a new one is issued if needed. */
        memset(p->serial, 0, sizeof(p->serial));
        bbt_ledger_set_str(&p->cert, NULL);
        return give_secret(run, p);
}

/* ---- the CA and servers ---- */

static int load_or_make_ca(struct run *run)
{
        struct bbt_principal *p = bbt_ledger_find(&run->led, "ca");
        char cn[128];
        int r;

        if (p) {
                if (!p->key || !p->cert || bbt_pki_key_from_b64(p->key, &run->ca_key) < 0 ||
                    bbt_pki_cert_from_b64(p->cert, &run->ca) < 0) {
                        say("%s/" BBT_BUNDLE_LEDGER ": the CA's key or certificate does not decode", run->opt.out);
                        return -EINVAL;
                }
                if (bbt_pki_cert_valid_s(run->ca) < RENEW_BEFORE_S)
                        say("warning: the CA certificate ends in %ld days; every bundle will need a new one",
                            bbt_pki_cert_valid_s(run->ca) / 86400);
                return 0;
        }
        snprintf(cn, sizeof(cn), "bbt county CA (%s)", run->led.set.brokers[0]);
        r = bbt_pki_key_new(&run->ca_key);
        if (r == 0)
                r = bbt_pki_ca_new(run->ca_key, cn, CA_DAYS, &run->ca);
        if (r < 0)
                return openssl_failed("the CA");
        p = bbt_ledger_add(&run->led, BBT_PRINCIPAL_CA, "ca");
        if (!p || bbt_pki_key_to_b64(run->ca_key, &p->key) < 0 || bbt_pki_cert_to_b64(run->ca, &p->cert) < 0 ||
            bbt_pki_serial_hex(run->ca, p->serial) < 0) {
                say("the CA: out of memory");
                return -ENOMEM;
        }
        p->issued = run->now;
        bbt_ledger_sort(&run->led);
        return 0;
}

/* Splits comma-separated TEXT into at most MAX hosts in BUF (pointers into COPY). */
static size_t split_hosts(char *copy, const char **buf, size_t max)
{
        size_t n = 0;
        char *save = NULL;

        for (char *h = strtok_r(copy, ",", &save); h && n < max; h = strtok_r(NULL, ",", &save))
                buf[n++] = h;
        return n;
}

static char *join_hosts(const char *const *hosts, size_t n)
{
        size_t len = 1, at = 0;
        char *s;

        for (size_t i = 0; i < n; i++)
                len += strlen(hosts[i]) + 1;
        s = malloc(len);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++)
                at += (size_t)snprintf(s + at, len - at, "%s%s", i ? "," : "", hosts[i]);
        s[at] = '\0';
        return s;
}

/* The server certificate NAME for the N HOSTS: issued when missing, when its
 * names differ, or when it ends within 90 days. */
static int ensure_server(struct run *run, const char *name, const char *const *hosts, size_t n)
{
        struct bbt_principal *p = bbt_ledger_find(&run->led, name);
        X509 *cert = NULL;
        bool fits;
        int r;

        if (!p) {
                p = bbt_ledger_add(&run->led, BBT_PRINCIPAL_SERVER, name);
                if (!p)
                        return -ENOMEM;
        }
        fits = !p->revoked && p->cert && bbt_pki_cert_from_b64(p->cert, &cert) == 0 &&
               bbt_pki_cert_signed_by(cert, run->ca) && bbt_pki_cert_fits(cert, hosts[0], hosts, n, RENEW_BEFORE_S);
        X509_free(cert);
        if (fits)
                return 0;
        p->revoked = false;
        p->revoked_at = 0;
        r = give_cert(run, p, hosts[0], hosts, n, BBT_PKI_SERVER);
        if (r == 0)
                r = bbt_ledger_set_str(&p->hosts, NULL);
        if (r == 0 && !(p->hosts = join_hosts(hosts, n)))
                r = -ENOMEM;
        if (r == 0 && !run->opt.quiet)
                say("issued the certificate of %s for %s", name, p->hosts);
        bbt_ledger_sort(&run->led);
        return r;
}

/* ---- terminals ---- */

static void terminal_name(const struct run *run, const struct bbt_terminal_entry *t, char *buf, size_t size)
{
        const struct bbt_school *s = bbt_registry_school(run->reg, t->school);

        snprintf(buf, size, "%s/%s/%s", s ? s->county : "?", t->school, t->id);
}

static int reconcile_terminals(struct run *run)
{
        struct bbt_ledger *l = &run->led;
        const struct bbt_registry *reg = run->reg;
        bool *missing = calloc(reg->n_terminals + 1, sizeof(bool));
        char name[128];
        int r = 0;

        if (!missing)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                l->p[i].wanted = false;
        /* Lookups first, additions after: the ledger is sorted only before them. */
        for (size_t i = 0; i < reg->n_terminals && r == 0; i++) {
                struct bbt_principal *p;

                terminal_name(run, &reg->terminals[i], name, sizeof(name));
                p = bbt_ledger_find(l, name);
                if (!p) {
                        missing[i] = true;
                } else if (p->kind != BBT_PRINCIPAL_TERMINAL) {
                        say("%s: in the ledger as a %s", name, bbt_principal_kind_name(p->kind));
                        r = -EINVAL;
                } else {
                        p->wanted = true;
                        if (p->revoked) {
                                r = reactivate(run, p);
                                run->terminals.reactivated++;
                        } else {
                                run->terminals.kept++;
                        }
                }
        }
        for (size_t i = 0; i < l->n && r == 0; i++)
                if (l->p[i].kind == BBT_PRINCIPAL_TERMINAL && !l->p[i].wanted && !l->p[i].revoked) {
                        revoke_principal(run, &l->p[i]);
                        run->terminals.revoked++;
                }
        for (size_t i = 0; i < reg->n_terminals && r == 0; i++) {
                struct bbt_principal *p;

                if (!missing[i])
                        continue;
                terminal_name(run, &reg->terminals[i], name, sizeof(name));
                p = bbt_ledger_add(l, BBT_PRINCIPAL_TERMINAL, name);
                r = p ? give_secret(run, p) : -ENOMEM;
                if (p)
                        p->wanted = true;
                run->terminals.added++;
        }
        free(missing);
        bbt_ledger_sort(l);
        return r;
}

/* Every active terminal has a client certificate (with --client-certs). */
static int ensure_terminal_certs(struct run *run)
{
        struct bbt_ledger *l = &run->led;
        size_t need = 0, done = 0;

        for (size_t i = 0; i < l->n; i++)
                need += l->p[i].kind == BBT_PRINCIPAL_TERMINAL && !l->p[i].revoked && !l->p[i].cert;
        for (size_t i = 0; i < l->n; i++) {
                struct bbt_principal *p = &l->p[i];
                int r;

                if (p->kind != BBT_PRINCIPAL_TERMINAL || p->revoked || p->cert)
                        continue;
                r = give_cert(run, p, p->name, NULL, 0, BBT_PKI_CLIENT);
                if (r < 0)
                        return r;
                progress(run, "issuing client certificates", ++done, need);
        }
        return 0;
}

/* ---- aggregators, operators, bridges ---- */

static int ensure_account(struct run *run, enum bbt_principal_kind kind, const char *name)
{
        struct bbt_principal *p = bbt_ledger_find(&run->led, name);

        if (p && p->kind != kind) {
                say("%s: already in the ledger as a %s", name, bbt_principal_kind_name(p->kind));
                return -EINVAL;
        }
        if (p)
                return p->revoked ? reactivate(run, p) : 0;
        p = bbt_ledger_add(&run->led, kind, name);
        if (!p)
                return -ENOMEM;
        if (give_secret(run, p) < 0)
                return -EIO;
        bbt_ledger_sort(&run->led);
        return 0;
}

static int ensure_bridge(struct run *run, const char *arg)
{
        const char *eq = strchr(arg, '='), *hosts[16];
        char school[BBT_ID_MAX + 1], copy[1024], name[128], server[128];
        const struct bbt_school *s;
        struct bbt_principal *p;
        size_t n;
        int r;

        if (!eq || (size_t)(eq - arg) > BBT_ID_MAX || strlen(eq + 1) >= sizeof(copy)) {
                say("--bridge %s: expected SCHOOL=HOST[,HOST]...", arg);
                return -EINVAL;
        }
        snprintf(school, sizeof(school), "%.*s", (int)(eq - arg), arg);
        s = bbt_registry_school(run->reg, school);
        if (!s) {
                say("--bridge %s: no school %s in the registry", arg, school);
                return -EINVAL;
        }
        memcpy(copy, eq + 1, strlen(eq + 1) + 1);
        n = split_hosts(copy, hosts, 16);
        for (size_t i = 0; i < n; i++)
                if (!bbt_pki_host_valid(hosts[i])) {
                        say("--bridge %s: %s is not a DNS name or an IP address", arg, hosts[i]);
                        return -EINVAL;
                }
        if (n == 0) {
                say("--bridge %s: no host", arg);
                return -EINVAL;
        }
        if (strchr(run->led.set.brokers[0], ':')) {
                say("--bridge: the first --broker (%s) is an IPv6 address, which a mosquitto bridge's address "
                    "cannot take; give a name or an IPv4 address first",
                    run->led.set.brokers[0]);
                return -EINVAL;
        }
        snprintf(name, sizeof(name), "bridge-%s-%s", s->county, s->code);
        snprintf(server, sizeof(server), "broker-%s-%s", s->county, s->code);
        r = ensure_account(run, BBT_PRINCIPAL_BRIDGE, name);
        if (r == 0)
                r = ensure_server(run, server, hosts, n);
        if (r == 0 && (p = bbt_ledger_find(&run->led, name))) {
                char *joined = join_hosts(hosts, n);

                if (!joined)
                        return -ENOMEM;
                free(p->hosts);
                p->hosts = joined;
        }
        return r;
}

static int revoke_named(struct run *run, const char *name)
{
        struct bbt_principal *p = bbt_ledger_find(&run->led, name);

        if (!p || (p->kind != BBT_PRINCIPAL_AGGREGATOR && p->kind != BBT_PRINCIPAL_OPERATOR &&
                   p->kind != BBT_PRINCIPAL_BRIDGE)) {
                say("--revoke %s: no aggregator, operator or bridge of that name in the ledger%s", name,
                    p && p->kind == BBT_PRINCIPAL_TERMINAL ? " (a terminal is revoked by removing it from the registry)"
                                                           : "");
                return -EINVAL;
        }
        if (p->kind == BBT_PRINCIPAL_BRIDGE) {
                char server[128];
                struct bbt_principal *sp;

                snprintf(server, sizeof(server), "broker-%s", name + strlen("bridge-"));
                sp = bbt_ledger_find(&run->led, server);
                /* A school broker that is gone must not be trusted by the terminals. */
                if (sp)
                        revoke_principal(run, sp);
        }
        revoke_principal(run, p);
        return 0;
}

/* NAME as the ledger names it: SCHOOL/TERMINAL gets its county. */
static const char *resolve(const struct run *run, const char *name, char *buf, size_t size)
{
        const char *slash = strchr(name, '/');
        char school[BBT_ID_MAX + 1];
        const struct bbt_school *s;

        if (!slash || strchr(slash + 1, '/') || (size_t)(slash - name) > BBT_ID_MAX)
                return name;
        snprintf(school, sizeof(school), "%.*s", (int)(slash - name), name);
        s = bbt_registry_school(run->reg, school);
        if (!s)
                return name;
        snprintf(buf, size, "%s/%s", s->county, name);
        return buf;
}

static int rotate_named(struct run *run, const char *arg)
{
        char buf[160];
        const char *name = resolve(run, arg, buf, sizeof(buf));
        struct bbt_principal *p = bbt_ledger_find(&run->led, name);
        int r;

        if (!p || p->revoked || p->kind == BBT_PRINCIPAL_CA || p->kind == BBT_PRINCIPAL_SERVER) {
                say("--rotate %s: no active terminal, aggregator, operator or bridge of that name", arg);
                return -EINVAL;
        }
        r = give_secret(run, p);
        if (r == 0 && p->cert)
                r = give_cert(run, p, p->name, NULL, 0, BBT_PKI_CLIENT);
        if (r == 0 && p->kind == BBT_PRINCIPAL_TERMINAL)
                run->terminals.rotated++;
        if (r == 0 && !run->opt.quiet)
                say("rotated %s: install its new bundle, then reload the broker", p->name);
        return r;
}

/* A new CRL when a serial was revoked since the last one, or it ends within 30 days. */
static int ensure_crl(struct run *run)
{
        struct bbt_ledger *l = &run->led;
        struct bbt_pki_revoked *list;
        X509_CRL *crl = NULL;
        bool fresh = false;
        char *b64 = NULL;
        int r;

        if (l->crl_b64 && l->crl_listed == l->n_crl && bbt_pki_crl_from_b64(l->crl_b64, &crl) == 0)
                fresh = bbt_pki_crl_valid_s(crl) > CRL_RENEW_BEFORE_S;
        X509_CRL_free(crl);
        crl = NULL;
        if (fresh)
                return 0;
        list = calloc(l->n_crl + 1, sizeof(*list));
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_crl; i++)
                list[i] = (struct bbt_pki_revoked){ .serial_hex = l->crl[i].serial, .when = l->crl[i].when };
        r = bbt_pki_crl_new(run->ca, run->ca_key, list, l->n_crl, l->crl_number + 1, (int)l->set.days, &crl);
        free(list);
        if (r == 0)
                r = bbt_pki_crl_to_b64(crl, &b64);
        X509_CRL_free(crl);
        if (r < 0)
                return r == -EIO ? openssl_failed("the CRL") : r;
        free(l->crl_b64);
        l->crl_b64 = b64;
        l->crl_number++;
        l->crl_listed = l->n_crl;
        return 0;
}

/* ---- settings ---- */

static int apply_settings(struct run *run)
{
        struct bbt_ledger_settings *s = &run->led.set;
        const struct options *o = &run->opt;

        if (o->n_brokers) {
                for (size_t i = 0; i < s->n_brokers; i++)
                        free(s->brokers[i]);
                free(s->brokers);
                s->brokers = calloc(o->n_brokers, sizeof(char *));
                if (!s->brokers)
                        return -ENOMEM;
                for (s->n_brokers = 0; s->n_brokers < o->n_brokers; s->n_brokers++)
                        if (!(s->brokers[s->n_brokers] = strdup(o->brokers[s->n_brokers])))
                                return -ENOMEM;
        }
        if (!s->n_brokers) {
                say("--broker is required on the first run: the county broker's DNS name or IP address, as the "
                    "terminals will reach it");
                return -EINVAL;
        }
        if (o->port > 0)
                s->port = o->port;
        if (o->cert_port > 0)
                s->cert_port = o->cert_port;
        if (o->days > 0)
                s->days = o->days;
        if (o->client_certs >= 0)
                s->client_certs = o->client_certs;
        if (o->acl_explicit >= 0)
                s->acl_explicit = o->acl_explicit;
        if (o->conf_dir && bbt_ledger_set_str(&s->conf_dir, o->conf_dir) < 0)
                return -ENOMEM;
        if (s->port == s->cert_port) {
                say("--port and --cert-port must differ (both %ld)", s->port);
                return -EINVAL;
        }
        return 0;
}

/* ---- the run ---- */

static int load_registry(struct run *run)
{
        struct bbt_import_errors *errs = calloc(1, sizeof(*errs));
        int r;

        if (!errs || bbt_registry_new(&run->reg) < 0) {
                free(errs);
                say("out of memory");
                return -ENOMEM;
        }
        r = bbt_registry_load_schools(run->reg, run->opt.schools, errs);
        if (r == 0)
                r = bbt_registry_load_terminals(run->reg, run->opt.terminals, errs);
        if (r < 0) {
                for (size_t i = 0; i < errs->n_kept; i++)
                        fprintf(stderr, "%s\n", errs->msg[i]);
                if (errs->count > errs->n_kept)
                        say("... and %zu more problems", errs->count - errs->n_kept);
                if (errs->count == 0)
                        say("%s: %s", run->opt.terminals, strerror(-r));
                say("the registry was not read: nothing changed");
        }
        free(errs);
        return r;
}

static int open_out(struct run *run)
{
        if (mkdir(run->opt.out, 0700) < 0 && errno != EEXIST) {
                say("%s: %s", run->opt.out, strerror(errno));
                return -errno;
        }
        run->outfd = open(run->opt.out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (run->outfd < 0) {
                say("%s: %s", run->opt.out, strerror(errno));
                return -errno;
        }
        /* It holds every secret. */
        if (fchmod(run->outfd, 0700) < 0) {
                say("%s: cannot make it private: %s", run->opt.out, strerror(errno));
                return -errno;
        }
        if (flock(run->outfd, LOCK_EX | LOCK_NB) < 0) {
                say("%s: %s", run->opt.out,
                    errno == EWOULDBLOCK ? "another bbt-provision is working on it" : strerror(errno));
                return -errno;
        }
        return 0;
}

static int load_ledger(struct run *run)
{
        char path[4096], err[600];
        int r;

        snprintf(path, sizeof(path), "%s/" BBT_BUNDLE_LEDGER, run->opt.out);
        bbt_ledger_init(&run->led);
        r = bbt_ledger_load(&run->led, path, err, sizeof(err));
        if (r == -ENOENT) {
                bbt_ledger_clear(&run->led);
                return 0;
        }
        if (r < 0) {
                say("%s", err);
                say("the ledger holds every issued secret: restore it from a backup rather than start anew");
                return r;
        }
        run->ledger_existed = true;
        return 0;
}

static size_t count_active(const struct bbt_ledger *l, enum bbt_principal_kind kind)
{
        size_t n = 0;

        for (size_t i = 0; i < l->n; i++)
                n += l->p[i].kind == kind && !l->p[i].revoked;
        return n;
}

static int provision(struct run *run)
{
        struct bbt_ledger *l = &run->led;
        struct bbt_bundle_input in;
        char err[600];
        int r;

        if ((r = load_registry(run)) < 0)
                return EXIT_USAGE;
        if (open_out(run) < 0 || load_ledger(run) < 0)
                return EXIT_FAILED;
        if ((r = apply_settings(run)) < 0)
                return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        run->now = (int64_t)time(NULL);
        if (load_or_make_ca(run) < 0)
                return EXIT_FAILED;
        if (ensure_server(run, "broker", (const char *const *)l->set.brokers, l->set.n_brokers) < 0)
                return EXIT_FAILED;
        if ((r = reconcile_terminals(run)) < 0)
                return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        if (count_active(l, BBT_PRINCIPAL_AGGREGATOR) == 0 && run->opt.n_aggregators == 0 &&
            ensure_account(run, BBT_PRINCIPAL_AGGREGATOR, "bbt-aggregator") < 0)
                return EXIT_FAILED;
        for (size_t i = 0; i < run->opt.n_aggregators; i++)
                if ((r = ensure_account(run, BBT_PRINCIPAL_AGGREGATOR, run->opt.aggregators[i])) < 0)
                        return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        for (size_t i = 0; i < run->opt.n_operators; i++)
                if ((r = ensure_account(run, BBT_PRINCIPAL_OPERATOR, run->opt.operators[i])) < 0)
                        return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        for (size_t i = 0; i < run->opt.n_bridges; i++)
                if ((r = ensure_bridge(run, run->opt.bridges[i])) < 0)
                        return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        for (size_t i = 0; i < run->opt.n_revokes; i++)
                if ((r = revoke_named(run, run->opt.revokes[i])) < 0)
                        return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        for (size_t i = 0; i < run->opt.n_rotates; i++)
                if ((r = rotate_named(run, run->opt.rotates[i])) < 0)
                        return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        if (l->set.client_certs && ensure_terminal_certs(run) < 0)
                return EXIT_FAILED;
        if (ensure_crl(run) < 0)
                return EXIT_FAILED;
        /* The ledger first: a bundle must never hold a secret the ledger forgot. */
        r = bbt_ledger_save(l, run->outfd, BBT_BUNDLE_LEDGER);
        if (r < 0) {
                say("%s/" BBT_BUNDLE_LEDGER ": %s (nothing changed)", run->opt.out, strerror(-r));
                return EXIT_FAILED;
        }
        in = (struct bbt_bundle_input){
                .ledger = l, .reg = run->reg, .outfd = run->outfd, .progress = bundle_progress, .userdata = run,
        };
        r = bbt_bundle_write(&in, err, sizeof(err));
        if (r < 0) {
                say("%s: %s", run->opt.out, err);
                say("the ledger is saved: run bbt-provision again to finish the bundles");
                return EXIT_FAILED;
        }
        if (!run->opt.quiet) {
                say("%zu terminals: %zu new, %zu unchanged, %zu rotated, %zu revoked, %zu back in the registry; "
                    "%zu aggregator(s), %zu operator(s), %zu bridge(s); %zu certificate(s) issued",
                    count_active(l, BBT_PRINCIPAL_TERMINAL), run->terminals.added,
                    run->terminals.kept > run->terminals.rotated ? run->terminals.kept - run->terminals.rotated : 0,
                    run->terminals.rotated, run->terminals.revoked,
                    run->terminals.reactivated, count_active(l, BBT_PRINCIPAL_AGGREGATOR),
                    count_active(l, BBT_PRINCIPAL_OPERATOR), count_active(l, BBT_PRINCIPAL_BRIDGE),
                    run->certs_issued);
                say("next: install %s/" BBT_BUNDLE_BROKER_DIR "/* in /etc/mosquitto/bbt/ and reload mosquitto; "
                    "hand out %s/" BBT_BUNDLE_SCHOOLS_DIR "/*.tar.gz (docs/deploy.md)",
                    run->opt.out, run->opt.out);
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct run run = { .outfd = -1, .last_decile = -1 };
        int status;

        parse_options(argc, argv, &run.opt);
        run.tty = isatty(STDERR_FILENO);
        umask(077);
        bbt_ledger_init(&run.led);
        status = provision(&run);
        bbt_ledger_clear(&run.led);
        bbt_registry_free(run.reg);
        EVP_PKEY_free(run.ca_key);
        X509_free(run.ca);
        if (run.outfd >= 0)
                close(run.outfd);
        free(run.opt.brokers);
        free(run.opt.aggregators);
        free(run.opt.operators);
        free(run.opt.bridges);
        free(run.opt.revokes);
        free(run.opt.rotates);
        return status;
}
