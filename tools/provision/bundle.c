/* Writes bbt-provision's outputs: broker files, agent.conf bundles, per-school tar.gz archives (libarchive); only what changed. */
#include "bundle.h"
#include "bbt/base.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "acl.h"
#include "bbt/fileio.h"
#include "bbt/protocol.h"
#include "school_conf.h" /* bbt_school_conf_template: broker-config/mosquitto-school.conf */

#define FILE_MAX (1u << 20) /* larger existing files are rewritten, not compared */
#define AGENT_USER "bbt-agent"

/* What one run writes, and the first error. */
struct writer {
        const struct bbt_bundle_input *in;
        const struct bbt_ledger *l;
        char *ca_pem, *crl_pem;
        size_t ca_len, crl_len;
        char *err;
        size_t err_size;
        int r;
};

__attribute__((format(printf, 3, 4))) static int fail(struct writer *w, int r, const char *fmt, ...)
{
        va_list ap;

        if (w->r == 0) {
                va_start(ap, fmt);
                vsnprintf(w->err, w->err_size, fmt, ap);
                va_end(ap);
                w->r = r;
        }
        return r;
}

/* ---- files ---- */

/* Creates every directory of PATH (relative to DIRFD), mode 0700. */
static int mkdirs(int dirfd, const char *path)
{
        char buf[1024];

        if (strlen(path) >= sizeof(buf))
                return -ENAMETOOLONG;
        memcpy(buf, path, strlen(path) + 1);
        for (char *p = buf + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;

                *p = '\0';
                if (mkdirat(dirfd, buf, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *p = c;
                if (!c)
                        return 0;
        }
}

/* Whether DIRFD/PATH holds exactly LEN bytes of DATA with MODE. */
static bool same_file(int dirfd, const char *path, const void *data, size_t len, mode_t mode)
{
        struct stat st;
        bool same = false;
        char *buf;
        int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return false;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len && len <= FILE_MAX &&
            (st.st_mode & 07777) == mode && (buf = malloc(len + 1))) {
                same = read(fd, buf, len + 1) == (ssize_t)len && memcmp(buf, data, len) == 0;
                OPENSSL_clear_free(buf, len + 1);
        }
        close(fd);
        return same;
}

/* Writes DATA to DIRFD/PATH (its directories created) through a temporary
 * file and a rename, unless it is already there. Not synced: everything
 * here can be written again from the ledger; bbt_bundle_write syncs once. */
static int put(struct writer *w, const char *path, const void *data, size_t len, mode_t mode)
{
        int dirfd = w->in->outfd, fd, r;
        char tmp[1100], *slash;

        if (w->r)
                return w->r;
        if (same_file(dirfd, path, data, len, mode))
                return 0;
        slash = strrchr(path, '/');
        if (slash) {
                char dir[1024];

                snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
                if ((r = mkdirs(dirfd, dir)) < 0)
                        return fail(w, r, "%s: %s", dir, strerror(-r));
        }
        snprintf(tmp, sizeof(tmp), "%.*s.%s.tmp", slash ? (int)(slash - path + 1) : 0, path,
                 slash ? slash + 1 : path);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return fail(w, -errno, "%s: %s", tmp, strerror(errno));
        r = bbt_write_full(fd, data, len);
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat(dirfd, tmp, dirfd, path) < 0)
                r = -errno;
        if (r < 0) {
                unlinkat(dirfd, tmp, 0);
                return fail(w, r, "%s: %s", path, strerror(-r));
        }
        return 0;
}

static int put_str(struct writer *w, const char *path, const char *text, mode_t mode)
{
        return put(w, path, text, strlen(text), mode);
}

/* Removes DIRFD/PATH and everything under it (not following links). */
static int remove_tree(int parent, const char *path)
{
        int fd = openat(parent, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        DIR *d;
        struct dirent *de;

        if (fd < 0)
                return unlinkat(parent, path, 0) == 0 || errno == ENOENT ? 0 : -errno;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        remove_tree(dirfd(d), de->d_name);
        closedir(d);
        return unlinkat(parent, path, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Removes the entries of directory DIRFD/PATH that KEEP(userdata, name) does not want. */
static void prune(struct writer *w, const char *path, bool (*keep)(struct writer *, const char *dir, const char *name),
                  const char *dir_arg)
{
        int fd = openat(w->in->outfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
                        continue;
                if (!keep(w, dir_arg, de->d_name)) {
                        int r = remove_tree(dirfd(d), de->d_name);

                        if (r < 0)
                                fail(w, r, "%s/%s: %s", path, de->d_name, strerror(-r));
                }
        }
        closedir(d);
}

/* ---- PEM from the ledger ---- */

/* PEM of the base64 DER B64 with LABEL, or NULL. */
static char *pem(const char *b64, const char *label, size_t *len)
{
        char *text = NULL;

        if (b64 && bbt_pki_pem_from_b64(b64, label, &text, len) < 0)
                text = NULL;
        return text;
}

static char *cert_pem(const char *b64, size_t *len)
{
        return pem(b64, "CERTIFICATE", len);
}

static char *key_pem(const char *b64, size_t *len)
{
        return pem(b64, "PRIVATE KEY", len);
}

static void free_secret(char *s, size_t len)
{
        if (s)
                OPENSSL_clear_free(s, len);
}

/* ---- an archive in memory ---- */

struct tarball {
        struct archive *a;
        void *buf;
        size_t size, used;
        int64_t mtime;
};

static int tar_open(struct tarball *t, int64_t mtime)
{
        t->size = 16u << 20; /* pages are touched only as the archive grows */
        t->buf = malloc(t->size);
        t->a = archive_write_new();
        t->used = 0;
        t->mtime = mtime;
        if (!t->buf || !t->a || archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
            archive_write_add_filter_gzip(t->a) != ARCHIVE_OK ||
            /* No time in the gzip header: an unchanged school gives the same bytes. */
            archive_write_set_filter_option(t->a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
            archive_write_open_memory(t->a, t->buf, t->size, &t->used) != ARCHIVE_OK)
                return -ENOMEM;
        return 0;
}

static int tar_add(struct tarball *t, const char *path, const void *data, size_t len, mode_t mode)
{
        struct archive_entry *e = archive_entry_new();
        int ok;

        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, path);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_entry_set_filetype(e, data ? AE_IFREG : AE_IFDIR);
        archive_entry_set_perm(e, mode);
        archive_entry_set_uname(e, "root");
        archive_entry_set_gname(e, "root");
        archive_entry_set_mtime(e, (time_t)t->mtime, 0);
        ok = archive_write_header(t->a, e) == ARCHIVE_OK &&
             (!data || archive_write_data(t->a, data, len) == (la_ssize_t)len);
        archive_entry_free(e);
        return ok ? 0 : -EFBIG;
}

static void tar_free(struct tarball *t)
{
        if (t->a)
                archive_write_free(t->a);
        if (t->buf) {
                OPENSSL_cleanse(t->buf, t->used);
                free(t->buf);
        }
        memset(t, 0, sizeof(*t));
}

/* Closes the archive; it is then t->buf[0..t->used). */
static int tar_close(struct tarball *t)
{
        return archive_write_close(t->a) == ARCHIVE_OK ? 0 : -EFBIG;
}

/* ---- texts ---- */

static const char *conf_dir(const struct bbt_ledger *l)
{
        return l->set.conf_dir ? l->set.conf_dir : "/etc/bbt";
}

/* ROOM without line breaks or other control characters, for a comment line. */
static void comment_safe(const char *room, char *buf, size_t size)
{
        size_t n = 0;

        for (; *room && n + 1 < size; room++)
                buf[n++] = (unsigned char)*room < 0x20 || *room == 0x7f ? ' ' : *room;
        buf[n] = '\0';
}

char *bbt_bundle_agent_conf(const struct bbt_ledger *l, const char *county, const char *school, const char *terminal,
                            const char *room, uint32_t expected, const char *host, long port)
{
        const char *dir = conf_dir(l);
        char room_c[512], expect[256] = "", *text = NULL;
        size_t len = 0, n = 0;
        FILE *f;

        comment_safe(room, room_c, sizeof(room_c));
        for (int k = 0; k < BBT_KIND__COUNT; k++)
                if (expected & (1u << k))
                        n += (size_t)snprintf(expect + n, sizeof(expect) - n, "%s%s", n ? ", " : "",
                                              bbt_periph_kind_name((enum bbt_periph_kind)k));
        f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        fprintf(f,
                "# bbt-agent configuration of terminal %s, school %s, county %s%s%s\n"
                "# Written by bbt-provision %s: install it as %s/agent.conf (README.txt).\n"
                "# Every other key is at its default: bbt-agent.conf(5).\n\n"
                "[identity]\ncounty = %s\nschool = %s\nterminal = %s\n\n"
                "[broker]\nhost = %s\nport = %ld\n"
                "; the broker takes the user name as the client id\n"
                "username = %s/%s/%s\n",
                terminal, school, county, room_c[0] ? ", room " : "", room_c, BBT_VERSION, dir, county, school,
                terminal, host, port, county, school, terminal);
        if (l->set.client_certs)
                fprintf(f, "tls_cert_file = %s/agent.crt\ntls_key_file = %s/agent.key\n", dir, dir);
        else
                fprintf(f, "password_file = %s/agent.password\n", dir);
        fprintf(f, "tls_ca_file = %s/ca.crt\n", dir);
        if (expect[0])
                fprintf(f, "\n[peripherals]\n; what the registry says the room has\nexpect = %s\n", expect);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

#define README_FMT \
        "bbt 终端配置包 — 县区 %s，学校 %s（bbt-provision %s 生成）\n" \
        "\n" \
        "每台终端一个文件夹，以终端编号命名，内含该终端的 agent.conf（身份、服务器地址、TLS）、\n" \
        "%s和县区 CA 证书 ca.crt。\n" \
        "\n" \
        "安装：在每台终端上先安装 bbt-agent 软件包，再把本包解压到该终端（或 U 盘），以 root 运行\n" \
        "    sh install.sh 终端编号        例如：sh install.sh r101\n" \
        "它把该终端的文件装到 %s/（密钥只有 " AGENT_USER " 用户能读），检查配置，启用并重启 bbt-agent。\n" \
        "检查：journalctl -u bbt-agent 里应有 \"broker: connected\"。\n" \
        "\n" \
        "本包含全校终端的密钥，请妥善保管；装完后删除 U 盘上的副本。\n" \
        "%s" \
        "\n" \
        "----\n" \
        "bbt terminal bundles — county %s, school %s (written by bbt-provision %s)\n" \
        "\n" \
        "One folder per terminal, named by its terminal ID, with its agent.conf (identity, broker,\n" \
        "TLS), %s and the county's CA certificate ca.crt.\n" \
        "\n" \
        "Install: on each terminal, install the bbt-agent package, unpack this archive there (or\n" \
        "use it from a USB stick) and run as root\n" \
        "    sh install.sh TERMINAL        e.g. sh install.sh r101\n" \
        "It installs that terminal's files into %s/ (secrets readable by the user " AGENT_USER "\n" \
        "only), checks the configuration, enables and restarts bbt-agent. Check: journalctl -u bbt-agent\n" \
        "shows \"broker: connected\".\n" \
        "\n" \
        "This archive holds every terminal's secret: keep it safe, and delete copies on USB\n" \
        "sticks once the terminals are installed.\n" \
        "%s"

#define INSTALL_FMT \
        "#!/bin/sh\n" \
        "# Installs one terminal's bbt bundle from this folder: sh install.sh TERMINAL (as root).\n" \
        "# Written by bbt-provision %s.\n" \
        "set -eu\n" \
        "here=$(dirname \"$0\")\n" \
        "conf=%s\n" \
        "t=${1:-}\n" \
        "case $t in\n" \
        "''|*[!A-Za-z0-9_-]*)\n" \
        "    echo \"usage: sh install.sh TERMINAL, one of:\" $(cd \"$here\" && ls -d */ | tr -d /) >&2\n" \
        "    exit 2 ;;\n" \
        "esac\n" \
        "[ -f \"$here/$t/agent.conf\" ] || { echo \"install.sh: no terminal $t here\" >&2; exit 2; }\n" \
        "[ \"$(id -u)\" -eq 0 ] || { echo \"install.sh: run as root\" >&2; exit 1; }\n" \
        "getent passwd " AGENT_USER " >/dev/null ||\n" \
        "    { echo \"install.sh: no user " AGENT_USER ": install the bbt-agent package first\" >&2; exit 1; }\n" \
        "install -d -m 0755 \"$conf\"\n" \
        "install -m 0640 -o root -g " AGENT_USER " \"$here/$t/agent.conf\" \"$conf/agent.conf\"\n" \
        "install -m 0644 -o root -g root \"$here/$t/ca.crt\" \"$conf/ca.crt\"\n" \
        "for f in agent.password agent.key; do\n" \
        "    if [ -f \"$here/$t/$f\" ]; then\n" \
        "        install -m 0600 -o " AGENT_USER " -g " AGENT_USER " \"$here/$t/$f\" \"$conf/$f\"\n" \
        "    fi\n" \
        "done\n" \
        "if [ -f \"$here/$t/agent.crt\" ]; then install -m 0644 \"$here/$t/agent.crt\" \"$conf/agent.crt\"; fi\n" \
        "bbt-agent -c \"$conf/agent.conf\" --check-config >/dev/null\n" \
        "if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then\n" \
        "    systemctl enable bbt-agent\n" \
        "    systemctl restart bbt-agent\n" \
        "fi\n" \
        "echo \"install.sh: terminal $t installed in $conf\"\n"

/* TEMPLATE with every @NAME@ of the N pairs VARS replaced, as a new string. */
static char *fill(const char *template, const char *const (*vars)[2], size_t n)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return NULL;
        for (const char *p = template; *p;) {
                size_t i = 0;

                if (*p == '@')
                        for (; i < n; i++)
                                if (strncmp(p + 1, vars[i][0], strlen(vars[i][0])) == 0 &&
                                    p[1 + strlen(vars[i][0])] == '@')
                                        break;
                if (*p == '@' && i < n) {
                        fputs(vars[i][1], f);
                        p += strlen(vars[i][0]) + 2;
                } else {
                        fputc(*p++, f);
                }
        }
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

/* ---- the broker's files ---- */

/* Writes the password file and ACL of SCOPE as PREFIX/passwd and PREFIX/acl,
 * and into T (when not NULL) as ARC_PREFIX/passwd and .../acl. */
static int put_access(struct writer *w, const struct bbt_acl_scope *scope, const char *prefix, struct tarball *t,
                      const char *arc_prefix)
{
        static const char *const names[] = { "passwd", "acl" };

        for (int i = 0; i < 2; i++) {
                char path[512], *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                int r;

                if (!f)
                        return fail(w, -ENOMEM, "out of memory");
                r = i == 0 ? bbt_acl_write_passwd(w->l, scope, f) : bbt_acl_write_acl(w->l, scope, f);
                if (fclose(f) != 0 && r == 0)
                        r = -ENOMEM;
                snprintf(path, sizeof(path), "%s/%s", prefix, names[i]);
                if (r == 0)
                        put(w, path, text, len, 0600);
                if (r == 0 && t) {
                        snprintf(path, sizeof(path), "%s/%s", arc_prefix, names[i]);
                        r = tar_add(t, path, text, len, 0600);
                }
                free_secret(text, len);
                if (r < 0)
                        return fail(w, r, "%s/%s: %s", prefix, names[i], strerror(-r));
        }
        return w->r;
}

static int put_county_broker(struct writer *w)
{
        const struct bbt_principal *b = bbt_ledger_find(w->l, "broker");
        struct bbt_acl_scope all = { 0 };
        size_t clen = 0, klen = 0;
        char *crt, *key;

        if (!b || !b->cert || !b->key)
                return fail(w, -EINVAL, "the ledger has no broker certificate");
        crt = cert_pem(b->cert, &clen);
        key = key_pem(b->key, &klen);
        if (!crt || !key) {
                free(crt);
                free_secret(key, klen);
                return fail(w, -EINVAL, "the ledger's broker certificate or key does not decode");
        }
        put(w, BBT_BUNDLE_BROKER_DIR "/ca.crt", w->ca_pem, w->ca_len, 0644);
        put(w, BBT_BUNDLE_BROKER_DIR "/crl.pem", w->crl_pem, w->crl_len, 0644);
        put(w, BBT_BUNDLE_BROKER_DIR "/broker.crt", crt, clen, 0644);
        put(w, BBT_BUNDLE_BROKER_DIR "/broker.key", key, klen, 0600);
        free(crt);
        free_secret(key, klen);
        return put_access(w, &all, BBT_BUNDLE_BROKER_DIR, NULL, NULL);
}

/* An aggregator's or operator's folder: its password, the CA, and for an
 * aggregator the [broker] section of its aggregator.conf. */
static int put_account(struct writer *w, const struct bbt_principal *p)
{
        const char *dir = p->kind == BBT_PRINCIPAL_AGGREGATOR ? BBT_BUNDLE_AGGREGATORS_DIR : BBT_BUNDLE_OPERATORS_DIR;
        const char *what = p->kind == BBT_PRINCIPAL_AGGREGATOR ? "aggregator" : "operator";
        char path[512], line[BBT_CREDENTIAL_SECRET_LEN + 2], conf[1024];

        snprintf(path, sizeof(path), "%s/%s/ca.crt", dir, p->name);
        put(w, path, w->ca_pem, w->ca_len, 0644);
        snprintf(path, sizeof(path), "%s/%s/%s.password", dir, p->name, what);
        snprintf(line, sizeof(line), "%s\n", p->secret);
        put_str(w, path, line, 0600);
        OPENSSL_cleanse(line, sizeof(line));
        if (p->kind != BBT_PRINCIPAL_AGGREGATOR)
                return w->r;
        snprintf(conf, sizeof(conf),
                 "# The [broker] section of aggregator %s's /etc/bbt/aggregator.conf, written by\n"
                 "# bbt-provision %s: plain MQTT on the broker's loopback listener (the aggregator\n"
                 "# runs on the broker's machine). Install aggregator.password as %s/aggregator.password,\n"
                 "# owned by the aggregator's user, mode 0600.\n"
                 "[broker]\nhost = 127.0.0.1\nport = 1883\n"
                 "; the broker takes the user name as the client id: keep client_id the same\n"
                 "username = %s\nclient_id = %s\npassword_file = %s/aggregator.password\n",
                 p->name, BBT_VERSION, conf_dir(w->l), p->name, p->name, conf_dir(w->l));
        snprintf(path, sizeof(path), "%s/%s/broker.conf", dir, p->name);
        return put_str(w, path, conf, 0644);
}

/* ---- schools ---- */

/* The school's bridge, if it has an active one. */
static const struct bbt_principal *school_bridge(const struct bbt_ledger *l, const char *county, const char *school)
{
        char name[128];
        const struct bbt_principal *p;

        snprintf(name, sizeof(name), "bridge-%s-%s", county, school);
        p = bbt_ledger_find(l, name);
        return p && !p->revoked ? p : NULL;
}

/* The host a school's terminals connect to: its school broker's first name, or the county's. */
static const char *school_host(const struct bbt_ledger *l, const struct bbt_principal *bridge, char *buf, size_t size)
{
        if (bridge && bridge->hosts) {
                snprintf(buf, size, "%.*s", (int)strcspn(bridge->hosts, ","), bridge->hosts);
                return buf;
        }
        return l->set.brokers[0];
}

/* One file of a terminal: into its bundle folder and the school's archive. */
static int put_both(struct writer *w, struct tarball *t, const char *dir, const char *arc_dir, const char *name,
                    const void *data, size_t len, mode_t mode)
{
        char path[512];
        int r;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (put(w, path, data, len, mode) < 0)
                return w->r;
        snprintf(path, sizeof(path), "%s/%s", arc_dir, name);
        r = tar_add(t, path, data, len, mode);
        return r < 0 ? fail(w, r, "%s: %s", path, strerror(-r)) : 0;
}

static int put_terminal(struct writer *w, struct tarball *t, const struct bbt_school *s,
                        const struct bbt_terminal_entry *te, const struct bbt_principal *p, const char *host,
                        const char *school_dir, const char *arc_school)
{
        char dir[512], arc[512], *conf;
        long port = w->l->set.client_certs ? w->l->set.cert_port : w->l->set.port;

        snprintf(dir, sizeof(dir), "%s/%s", school_dir, te->id);
        snprintf(arc, sizeof(arc), "%s/%s", arc_school, te->id);
        conf = bbt_bundle_agent_conf(w->l, s->county, s->code, te->id, te->room, te->expected, host, port);
        if (!conf)
                return fail(w, -ENOMEM, "out of memory");
        put_both(w, t, dir, arc, "agent.conf", conf, strlen(conf), 0640);
        free(conf);
        put_both(w, t, dir, arc, "ca.crt", w->ca_pem, w->ca_len, 0644);
        if (w->l->set.client_certs) {
                size_t clen = 0, klen = 0;
                char *crt = cert_pem(p->cert, &clen), *key = key_pem(p->key, &klen);

                if (!crt || !key)
                        fail(w, -EINVAL, "%s: the ledger's certificate or key does not decode", p->name);
                else {
                        put_both(w, t, dir, arc, "agent.crt", crt, clen, 0644);
                        put_both(w, t, dir, arc, "agent.key", key, klen, 0600);
                }
                free(crt);
                free_secret(key, klen);
        } else {
                char line[BBT_CREDENTIAL_SECRET_LEN + 2];

                snprintf(line, sizeof(line), "%s\n", p->secret);
                put_both(w, t, dir, arc, "agent.password", line, strlen(line), 0600);
                OPENSSL_cleanse(line, sizeof(line));
        }
        return w->r;
}

/* The school broker's files: its mosquitto configuration with the bridge to
 * the county, its certificate, the CA, the CRL, and its school's password
 * file and ACL. */
static int put_school_broker(struct writer *w, struct tarball *t, const struct bbt_school *s,
                             const struct bbt_principal *bridge, const char *school_dir, const char *arc_school)
{
        char dir[512], arc[512], server_name[128], address[300], port[16];
        const struct bbt_principal *server;
        struct bbt_acl_scope scope = { .county = s->county, .school = s->code };
        size_t clen = 0, klen = 0;
        char *crt, *key, *conf;

        snprintf(dir, sizeof(dir), "%s/" BBT_BUNDLE_SCHOOL_BROKER_DIR, school_dir);
        snprintf(arc, sizeof(arc), "%s/" BBT_BUNDLE_SCHOOL_BROKER_DIR, arc_school);
        snprintf(server_name, sizeof(server_name), "broker-%s-%s", s->county, s->code);
        server = bbt_ledger_find(w->l, server_name);
        if (!server || !server->cert || !server->key)
                return fail(w, -EINVAL, "the ledger has no certificate for %s", server_name);
        snprintf(address, sizeof(address), "%s:%ld", w->l->set.brokers[0], w->l->set.port);
        snprintf(port, sizeof(port), "%ld", w->l->set.port);
        {
                const char *const vars[][2] = {
                        { "COUNTY", s->county },        { "SCHOOL", s->code },
                        { "COUNTY_ADDRESS", address },  { "BRIDGE_USER", bridge->name },
                        { "BRIDGE_PASSWORD", bridge->secret },
                };

                conf = fill(bbt_school_conf_template, vars, BBT_ELEMENTSOF(vars));
        }
        crt = cert_pem(server->cert, &clen);
        key = key_pem(server->key, &klen);
        if (!conf || !crt || !key)
                fail(w, -EINVAL, "%s: cannot make the school broker's files", server_name);
        else {
                put_both(w, t, dir, arc, "bbt-school.conf", conf, strlen(conf), 0640);
                put_both(w, t, dir, arc, "broker.crt", crt, clen, 0644);
                put_both(w, t, dir, arc, "broker.key", key, klen, 0600);
                put_both(w, t, dir, arc, "ca.crt", w->ca_pem, w->ca_len, 0644);
                put_both(w, t, dir, arc, "crl.pem", w->crl_pem, w->crl_len, 0644);
                put_access(w, &scope, dir, t, arc);
        }
        free_secret(conf, conf ? strlen(conf) : 0);
        free(crt);
        free_secret(key, klen);
        return w->r;
}

/* Writes the bundles of the school's N terminals (indexes IX into the
 * registry) and its archive. */
static int put_school(struct writer *w, const struct bbt_school *s, const size_t *ix, size_t n)
{
        const struct bbt_registry *reg = w->in->reg;
        const struct bbt_principal *bridge = school_bridge(w->l, s->county, s->code);
        char school_dir[256], arc_school[128], path[512], host_buf[256], *text;
        const char *host = school_host(w->l, bridge, host_buf, sizeof(host_buf));
        const char *what = w->l->set.client_certs ? "客户端证书 agent.crt 与私钥 agent.key"
                                                  : "密码文件 agent.password";
        const char *what_en = w->l->set.client_certs ? "its client certificate agent.crt and key agent.key"
                                                     : "its password file agent.password";
        struct tarball t = { 0 };
        int64_t mtime = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                char name[128];
                const struct bbt_principal *p;

                snprintf(name, sizeof(name), "%s/%s/%s", s->county, s->code, reg->terminals[ix[i]].id);
                p = bbt_ledger_find(w->l, name);
                if (p && p->issued > mtime)
                        mtime = p->issued;
        }
        snprintf(arc_school, sizeof(arc_school), "%s-%s", s->county, s->code);
        snprintf(school_dir, sizeof(school_dir), BBT_BUNDLE_TERMINALS_DIR "/%s", arc_school);
        if ((r = tar_open(&t, mtime)) < 0) {
                tar_free(&t);
                return fail(w, r, "out of memory");
        }
        tar_add(&t, arc_school, NULL, 0, 0755);
        {
                const char *bridged = bridge ? "本校终端连接学校的 broker（school.broker/ 内有其配置，见 docs/deploy.md）。\n" : "";
                const char *bridged_en =
                        bridge ? "The terminals connect to the school's broker (its files are in school.broker/; "
                                 "docs/deploy.md).\n"
                               : "";
                size_t len = sizeof(README_FMT) + 1024;

                text = malloc(len);
                if (!text) {
                        tar_free(&t);
                        return fail(w, -ENOMEM, "out of memory");
                }
                snprintf(text, len, README_FMT, s->county, s->code, BBT_VERSION, what, conf_dir(w->l), bridged,
                         s->county, s->code, BBT_VERSION, what_en, conf_dir(w->l), bridged_en);
                put_both(w, &t, school_dir, arc_school, "README.txt", text, strlen(text), 0644);
                snprintf(text, len, INSTALL_FMT, BBT_VERSION, conf_dir(w->l));
                put_both(w, &t, school_dir, arc_school, "install.sh", text, strlen(text), 0755);
                free(text);
        }
        for (size_t i = 0; i < n && !w->r; i++) {
                const struct bbt_terminal_entry *te = &reg->terminals[ix[i]];
                char name[128];
                const struct bbt_principal *p;

                snprintf(name, sizeof(name), "%s/%s/%s", s->county, s->code, te->id);
                p = bbt_ledger_find(w->l, name);
                if (!p || p->revoked)
                        fail(w, -EINVAL, "%s: not in the ledger", name);
                else
                        put_terminal(w, &t, s, te, p, host, school_dir, arc_school);
        }
        if (bridge && !w->r)
                put_school_broker(w, &t, s, bridge, school_dir, arc_school);
        if (!w->r && (r = tar_close(&t)) < 0)
                fail(w, r, "%s.tar.gz: larger than %zu bytes", arc_school, t.size);
        if (!w->r) {
                snprintf(path, sizeof(path), BBT_BUNDLE_SCHOOLS_DIR "/%s.tar.gz", arc_school);
                put(w, path, t.buf, t.used, 0600);
        }
        tar_free(&t);
        return w->r;
}

/* ---- what stays ---- */

static bool keep_school_entry(struct writer *w, const char *school_dir, const char *name)
{
        char county[8], pname[160];
        const char *school = school_dir + 7;
        const struct bbt_principal *p;

        if (strcmp(name, "README.txt") == 0 || strcmp(name, "install.sh") == 0)
                return true;
        snprintf(county, sizeof(county), "%.6s", school_dir);
        if (strcmp(name, BBT_BUNDLE_SCHOOL_BROKER_DIR) == 0)
                return school_bridge(w->l, county, school) != NULL;
        snprintf(pname, sizeof(pname), "%s/%s/%s", county, school, name);
        p = bbt_ledger_find(w->l, pname);
        return p && !p->revoked && p->kind == BBT_PRINCIPAL_TERMINAL;
}

/* Whether "<county>-<school>" (with SUFFIX) names a school with an active terminal. */
static bool school_active(struct writer *w, const char *name, const char *suffix)
{
        const struct bbt_registry *reg = w->in->reg;
        size_t len = strlen(name), sl = strlen(suffix);
        char code[BBT_ID_MAX + 1];
        const struct bbt_school *s;

        if (len < 8 + sl || name[6] != '-' || strcmp(name + len - sl, suffix) != 0 || len - 7 - sl > BBT_ID_MAX)
                return false;
        snprintf(code, sizeof(code), "%.*s", (int)(len - 7 - sl), name + 7);
        s = bbt_registry_school(reg, code);
        if (!s || strncmp(s->county, name, 6) != 0)
                return false;
        for (size_t i = 0; i < reg->n_terminals; i++)
                if (strcmp(reg->terminals[i].school, code) == 0)
                        return true;
        return false;
}

static bool keep_terminals_entry(struct writer *w, const char *unused, const char *name)
{
        (void)unused;
        return school_active(w, name, "");
}

static bool keep_schools_entry(struct writer *w, const char *unused, const char *name)
{
        (void)unused;
        return school_active(w, name, ".tar.gz");
}

static bool keep_account(struct writer *w, const char *kind, const char *name)
{
        const struct bbt_principal *p = bbt_ledger_find(w->l, name);

        return p && !p->revoked && strcmp(bbt_principal_kind_name(p->kind), kind) == 0;
}

/* ---- all of it ---- */

static int by_school_then_id(const void *a, const void *b, void *reg_arg)
{
        const struct bbt_registry *reg = reg_arg;
        const struct bbt_terminal_entry *x = &reg->terminals[*(const size_t *)a],
                                        *y = &reg->terminals[*(const size_t *)b];
        int c = strcmp(x->school, y->school);

        return c ? c : strcmp(x->id, y->id);
}

int bbt_bundle_write(const struct bbt_bundle_input *in, char *err, size_t err_size)
{
        const struct bbt_registry *reg = in->reg;
        const struct bbt_principal *ca;
        struct writer w = { .in = in, .l = in->ledger, .err = err, .err_size = err_size };
        size_t *ix = NULL, done = 0;

        ca = bbt_ledger_find(w.l, "ca");
        w.ca_pem = ca ? cert_pem(ca->cert, &w.ca_len) : NULL;
        w.crl_pem = pem(w.l->crl_b64, "X509 CRL", &w.crl_len);
        if (!w.ca_pem || !w.crl_pem || !w.l->set.n_brokers) {
                fail(&w, -EINVAL, "the ledger has no CA, CRL or broker name");
                goto done;
        }
        if (put_county_broker(&w) < 0)
                goto done;
        for (size_t i = 0; i < w.l->n; i++) {
                const struct bbt_principal *p = &w.l->p[i];

                if (!p->revoked && (p->kind == BBT_PRINCIPAL_AGGREGATOR || p->kind == BBT_PRINCIPAL_OPERATOR) &&
                    put_account(&w, p) < 0)
                        goto done;
        }
        /* Terminals, school by school. */
        ix = malloc((reg->n_terminals + 1) * sizeof(*ix));
        if (!ix) {
                fail(&w, -ENOMEM, "out of memory");
                goto done;
        }
        for (size_t i = 0; i < reg->n_terminals; i++)
                ix[i] = i;
        qsort_r(ix, reg->n_terminals, sizeof(*ix), by_school_then_id, (void *)reg);
        for (size_t i = 0; i < reg->n_terminals && !w.r;) {
                size_t j = i;
                const struct bbt_school *s = bbt_registry_school(reg, reg->terminals[ix[i]].school);

                while (j < reg->n_terminals && strcmp(reg->terminals[ix[j]].school, reg->terminals[ix[i]].school) == 0)
                        j++;
                if (!s)
                        fail(&w, -EINVAL, "school %s: not in the registry", reg->terminals[ix[i]].school);
                else if (put_school(&w, s, ix + i, j - i) == 0) {
                        char school_dir[256];

                        snprintf(school_dir, sizeof(school_dir), BBT_BUNDLE_TERMINALS_DIR "/%s-%s", s->county,
                                 s->code);
                        prune(&w, school_dir, keep_school_entry, school_dir + strlen(BBT_BUNDLE_TERMINALS_DIR "/"));
                }
                done += j - i;
                if (in->progress)
                        in->progress(in->userdata, done, reg->n_terminals);
                i = j;
        }
        if (w.r)
                goto done;
        prune(&w, BBT_BUNDLE_TERMINALS_DIR, keep_terminals_entry, NULL);
        prune(&w, BBT_BUNDLE_SCHOOLS_DIR, keep_schools_entry, NULL);
        prune(&w, BBT_BUNDLE_AGGREGATORS_DIR, keep_account, "aggregator");
        prune(&w, BBT_BUNDLE_OPERATORS_DIR, keep_account, "operator");
        if (!w.r && syncfs(in->outfd) < 0)
                fail(&w, -errno, "syncfs: %s", strerror(errno));
done:
        free(ix);
        free(w.ca_pem);
        free(w.crl_pem);
        return w.r;
}
