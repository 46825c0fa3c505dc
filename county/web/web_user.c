/* bbt-web-user: add, change, remove, list and check the users of bbt-web's users file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "accounts.h"
#include "aggregator_config.h"
#include "bbt/base.h"
#include "bbt/fileio.h"
#include "bbt/protocol.h"
#include "registry.h"

#define USERS_PATH "/etc/bbt/web-users"
#define USERS_GROUP "bbt-web" /* a new file's group, if there is such a group */

static const char *prog = "bbt-web-user";

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-web-user [OPTION]... COMMAND [NAME]\n"
                "Manage the users of bbt-web, the county and school dashboard: who may sign in\n"
                "and which schools each sees.\n"
                "\n"
                "Commands:\n"
                "  add NAME     add a user with --role and its scope; asks for the password\n"
                "  passwd NAME  set a user's password (its sessions end when bbt-web reloads)\n"
                "  del NAME     remove a user\n"
                "  list         the users, their roles and scopes\n"
                "  check        check the file: its mode, and every line (each problem with\n"
                "               its line number)\n"
                "\n"
                "Options:\n"
                "  -f, --file PATH       the users file (default " USERS_PATH ")\n"
                "      --role ROLE       add: county (every school, or those of --county),\n"
                "                        township (the schools of --township) or school (the\n"
                "                        one school --school)\n"
                "      --county CODE     the 6-digit county code: narrows any role\n"
                "      --township NAME   the township as the registry's schools file names it\n"
                "      --school CODE     the school code (学校标识码) as in the registry\n"
                "      --password-stdin  read the password from the first line of standard input\n"
                "                        (for scripts) instead of asking on the terminal\n"
                "      --registry-check  add, check: the county, township or school must match\n"
                "                        at least one school of the registry\n"
                "  -c, --config FILE     aggregator configuration naming the registry (default\n"
                "                        " BBT_AGGREGATOR_CONFIG_PATH ")\n"
                "  -h, --help            show this help\n"
                "  -V, --version         show the version\n"
                "\n"
                "Passwords have at least %d characters and are stored as yescrypt hashes. The\n"
                "file is rewritten atomically with mode 0640; bbt-web reads it again when\n"
                "reloaded (systemctl reload bbt-web). Exit status: 0 success, 1 failure, 2 bad\n"
                "usage. See bbt-web-user(8).\n",
                BBT_PASSWORD_MIN);
}

/* ---- the password ---- */

static struct termios saved_tio;
static int tty_fd = -1;
static volatile sig_atomic_t tio_saved;

static void restore_tty(void)
{
        if (tio_saved && tty_fd >= 0)
                tcsetattr(tty_fd, TCSAFLUSH, &saved_tio);
        tio_saved = 0;
}

static void on_signal(int sig)
{
        restore_tty();
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Reads one line of at most SIZE - 1 bytes from FD into BUF, without its
 * line end. Returns its length, -EMSGSIZE if longer, -ENODATA at end of
 * input before any line end or byte, or -errno. */
static ssize_t read_line(int fd, char *buf, size_t size)
{
        size_t n = 0;

        for (;;) {
                char c;
                ssize_t r = read(fd, &c, 1);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0) {
                        if (n == 0)
                                return -ENODATA;
                        break;
                }
                if (c == '\n')
                        break;
                if (n + 1 >= size) {
                        explicit_bzero(buf, size);
                        return -EMSGSIZE;
                }
                buf[n++] = c;
        }
        if (n > 0 && buf[n - 1] == '\r')
                n--;
        buf[n] = '\0';
        return (ssize_t)n;
}

/* Asks on the terminal, without echo. */
static ssize_t ask(const char *prompt, char *buf, size_t size)
{
        struct termios tio;
        ssize_t r;

        if (tcgetattr(tty_fd, &saved_tio) < 0)
                return -errno;
        tio = saved_tio;
        tio.c_lflag &= ~(tcflag_t)ECHO;
        tio.c_lflag |= ECHONL;
        tio_saved = 1;
        if (tcsetattr(tty_fd, TCSAFLUSH, &tio) < 0) {
                tio_saved = 0;
                return -errno;
        }
        /* The prompt once echo is off: nothing typed after it is shown. */
        dprintf(tty_fd, "%s", prompt);
        r = read_line(tty_fd, buf, size);
        restore_tty();
        return r;
}

/* Whether PW may be USER's password; says why not. */
static bool password_ok(const char *user, const char *pw)
{
        size_t n = strlen(pw);

        if (bbt_utf8_invalid_at(pw, n) != n) {
                fprintf(stderr, "%s: the password is not valid UTF-8\n", prog);
                return false;
        }
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f) {
                        fprintf(stderr, "%s: the password holds a control character\n", prog);
                        return false;
                }
        if (bbt_utf8_chars(pw) < BBT_PASSWORD_MIN) {
                fprintf(stderr, "%s: a password needs at least %d characters\n", prog, BBT_PASSWORD_MIN);
                return false;
        }
        if (strcmp(pw, user) == 0) {
                fprintf(stderr, "%s: the password must not be the user name\n", prog);
                return false;
        }
        return true;
}

/* The new password for USER into BUF: from standard input's first line, or
 * asked twice on the terminal. Returns 0, or 1 with the reason written. */
static int get_password(const char *user, bool from_stdin, char *buf, size_t size)
{
        char again[BBT_PASSWORD_MAX + 2];
        ssize_t r;

        if (from_stdin) {
                r = read_line(STDIN_FILENO, buf, size);
                if (r == -ENODATA || r == 0) {
                        fprintf(stderr, "%s: --password-stdin: no password on standard input\n", prog);
                        return 1;
                }
                if (r == -EMSGSIZE) {
                        fprintf(stderr, "%s: --password-stdin: longer than %d bytes\n", prog, BBT_PASSWORD_MAX);
                        return 1;
                }
                if (r < 0) {
                        fprintf(stderr, "%s: --password-stdin: %s\n", prog, strerror((int)-r));
                        return 1;
                }
                return password_ok(user, buf) ? 0 : 1;
        }
        tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (tty_fd < 0) {
                fprintf(stderr, "%s: no terminal to ask for the password on (%s): use --password-stdin\n", prog,
                        strerror(errno));
                return 1;
        }
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        signal(SIGQUIT, on_signal);
        for (int tries = 0;; tries++) {
                char prompt[160];

                snprintf(prompt, sizeof(prompt), "New password for %s: ", user);
                r = ask(prompt, buf, size);
                if (r >= 0 && !password_ok(user, buf)) {
                        if (tries < 2)
                                continue;
                        r = -EINVAL;
                }
                if (r >= 0)
                        r = ask("Retype it: ", again, sizeof(again));
                if (r >= 0 && strcmp(buf, again) != 0) {
                        fprintf(stderr, "%s: the passwords differ\n", prog);
                        r = tries < 2 ? -EAGAIN : -EINVAL;
                }
                explicit_bzero(again, sizeof(again));
                if (r != -EAGAIN)
                        break;
        }
        close(tty_fd);
        tty_fd = -1;
        if (r == -EMSGSIZE)
                fprintf(stderr, "%s: a password of at most %d bytes, please\n", prog, BBT_PASSWORD_MAX);
        else if (r == -ENODATA)
                fprintf(stderr, "%s: no password given\n", prog);
        else if (r < 0 && r != -EINVAL)
                fprintf(stderr, "%s: reading the password: %s\n", prog, strerror((int)-r));
        return r < 0 ? 1 : 0;
}

/* ---- the file ---- */

struct users_file {
        const char *path;
        char *text;   /* "" if there is no file yet */
        size_t len;
        bool exists;
        struct stat st;
        struct bbt_users users;
        int lock_fd;  /* the directory, locked against other bbt-web-user runs */
};

static void print_error(void *ctx, const char *msg)
{
        fprintf(stderr, "%s\n", msg);
        (*(size_t *)ctx)++;
}

static void dir_of(const char *path, char *buf, size_t size)
{
        const char *slash = strrchr(path, '/');

        if (!slash)
                snprintf(buf, size, ".");
        else if (slash == path)
                snprintf(buf, size, "/");
        else
                snprintf(buf, size, "%.*s", (int)(slash - path), path);
}

/* Reads and parses F->path (missing: an empty file if MAY_BE_MISSING).
 * With LOCK, first takes the lock on its directory that every change holds.
 * Returns 0, or 1 with every problem written. */
static int load(struct users_file *f, bool may_be_missing, bool lock)
{
        char err[600], dir[4096];
        size_t n_errors = 0;
        int r;

        f->lock_fd = -1;
        if (lock) {
                dir_of(f->path, dir, sizeof(dir));
                f->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (f->lock_fd < 0) {
                        fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
                        return 1;
                }
                if (flock(f->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                        fprintf(stderr, "%s: waiting for another bbt-web-user on %s\n", prog, f->path);
                        if (flock(f->lock_fd, LOCK_EX) < 0) {
                                fprintf(stderr, "%s: locking %s: %s\n", prog, dir, strerror(errno));
                                return 1;
                        }
                }
        }
        r = bbt_users_read(f->path, &f->text, &f->len, err, sizeof(err));
        if (r == -ENOENT && may_be_missing) {
                f->text = strdup("");
                f->len = 0;
                return f->text ? 0 : 1;
        }
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", prog, err);
                return 1;
        }
        f->exists = true;
        if (stat(f->path, &f->st) < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, f->path, strerror(errno));
                return 1;
        }
        r = bbt_users_parse(f->path, f->text, f->len, &f->users, print_error, &n_errors);
        if (r == -ENOMEM) {
                fprintf(stderr, "%s: out of memory\n", prog);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "%s: %zu problem%s in %s\n", prog, n_errors, n_errors == 1 ? "" : "s", f->path);
                return 1;
        }
        return 0;
}

static void unload(struct users_file *f)
{
        if (f->text)
                explicit_bzero(f->text, f->len);
        free(f->text);
        f->text = NULL;
        bbt_users_free(&f->users);
        if (f->lock_fd >= 0)
                close(f->lock_fd);
        f->lock_fd = -1;
}

/* Replaces F's file with LEN bytes of TEXT: a temporary file in the same
 * directory, mode 0640, the old file's owner and group (a new one: this
 * user, and the group bbt-web if there is one), synced, renamed over it,
 * the directory synced. Returns 0, or 1 with the reason written. */
static int rewrite(struct users_file *f, const char *text, size_t len)
{
        char dir[4096], tmp[4200];
        const char *base = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
        uid_t uid = f->exists ? f->st.st_uid : geteuid();
        gid_t gid = f->exists ? f->st.st_gid : getegid();
        int fd, dfd = -1, r;

        if (!f->exists) {
                struct group *g = getgrnam(USERS_GROUP);

                if (g)
                        gid = g->gr_gid;
        }
        dir_of(f->path, dir, sizeof(dir));
        snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "%s: cannot write in %s: %s\n", prog, dir, strerror(errno));
                return 1;
        }
        /* Owner and group first, then the mode: never readable by a wrong
         * group. Only root can give a file away; another user keeps its own. */
        if (fchown(fd, uid, gid) < 0 && geteuid() == 0) {
                r = -errno;
                goto fail;
        }
        if (fchmod(fd, 0640) < 0) {
                r = -errno;
                goto fail;
        }
        r = bbt_write_full(fd, text, len);
        if (r == 0)
                r = bbt_fsync_fd(fd, false);
        if (r < 0)
                goto fail;
        if (close(fd) < 0) {
                fd = -1;
                r = -errno;
                goto fail;
        }
        fd = -1;
        if (rename(tmp, f->path) < 0) {
                r = -errno;
                goto fail;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
                bbt_fsync_fd(dfd, false);
                close(dfd);
        }
        return 0;
fail:
        fprintf(stderr, "%s: writing %s: %s; the file is unchanged\n", prog, f->path, strerror(-r));
        if (fd >= 0)
                close(fd);
        unlink(tmp);
        return 1;
}

/* F's text with line LINE (from 1) replaced by REPLACEMENT (a whole line,
 * with its '\n'; "" removes the line); LINE 0 appends it. Malloc'ed. */
static char *edit_line(const struct users_file *f, unsigned line, const char *replacement, size_t *ret_len)
{
        size_t rl = strlen(replacement), start = 0, end = f->len, cap = f->len + rl + 2, n = 0;
        char *out = malloc(cap);

        if (!out)
                return NULL;
        if (line > 0) {
                unsigned l = 1;

                for (size_t i = 0; i < f->len && l < line; i++)
                        if (f->text[i] == '\n') {
                                l++;
                                start = i + 1;
                        }
                /* A BOM stays where it is, in front of line 1. */
                if (line == 1 && f->len >= 3 && memcmp(f->text, "\xEF\xBB\xBF", 3) == 0)
                        start = 3;
                end = start;
                while (end < f->len && f->text[end] != '\n')
                        end++;
                if (end < f->len)
                        end++;
        } else {
                start = end = f->len;
        }
        memcpy(out, f->text, start);
        n = start;
        if (line == 0 && n > 0 && out[n - 1] != '\n')
                out[n++] = '\n';
        memcpy(out + n, replacement, rl);
        n += rl;
        memcpy(out + n, f->text + end, f->len - end);
        n += f->len - end;
        out[n] = '\0';
        *ret_len = n;
        return out;
}

static char *user_line(const char *name, const struct bbt_scope *scope, const char *hash)
{
        char sc[200], *line;

        bbt_scope_format(scope, sc, sizeof(sc));
        if (asprintf(&line, "%s:%s:%s:%s\n", name, bbt_role_name(scope->role), sc, hash) < 0)
                return NULL;
        return line;
}

/* Replaces line LINE of F (0: adds a last line) with NAME's entry and
 * rewrites the file. Returns 0, or 1 with the reason written. */
static int write_user(struct users_file *f, unsigned line, const char *name, const struct bbt_scope *scope,
                      const char *hash)
{
        char *entry = user_line(name, scope, hash), *text = NULL;
        size_t len;
        int rc = 1;

        if (entry)
                text = edit_line(f, line, entry, &len);
        if (!text)
                fprintf(stderr, "%s: out of memory\n", prog);
        else
                rc = rewrite(f, text, len);
        free(entry);
        free(text);
        return rc;
}

/* NAME's new password (get_password), hashed into HASH. Returns 0, or 1
 * with the reason written. */
static int new_hash(const char *name, bool from_stdin, char *hash, size_t size)
{
        char pw[BBT_PASSWORD_MAX + 2];
        int r;

        if (get_password(name, from_stdin, pw, sizeof(pw)) != 0)
                return 1;
        r = bbt_password_hash(pw, hash, size);
        explicit_bzero(pw, sizeof(pw));
        if (r < 0) {
                fprintf(stderr, "%s: hashing the password: %s\n", prog, strerror(-r));
                return 1;
        }
        return 0;
}

/* ---- the registry ---- */

/* Whether each of SCOPES (N of them; LINES their lines in PATH, or NULL)
 * allows at least one school of the registry CONFIG names. Returns 0, or 1
 * with every problem written. */
static int registry_check(const char *config, const char *path, const struct bbt_scope *scopes,
                          const unsigned *lines, size_t n)
{
        struct bbt_aggregator_config cfg;
        struct bbt_registry *reg = NULL;
        struct bbt_import_errors *errs = calloc(1, sizeof(*errs));
        char err[1024];
        int r, rc = 1;

        if (!errs)
                return 1;
        r = bbt_aggregator_config_load(config, &cfg, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "%s: --registry-check: %s\n", prog, err);
                free(errs);
                return 1;
        }
        if (!cfg.schools || !*cfg.schools) {
                fprintf(stderr, "%s: --registry-check: %s names no schools file ([registry] schools)\n", prog,
                        config);
                goto out;
        }
        r = bbt_registry_new(&reg);
        if (r == 0)
                r = bbt_registry_load_schools(reg, cfg.schools, errs);
        if (r < 0) {
                fprintf(stderr, "%s: --registry-check: %s: %s\n", prog, cfg.schools, strerror(-r));
                for (size_t i = 0; i < errs->n_kept; i++)
                        fprintf(stderr, "%s\n", errs->msg[i]);
                goto out;
        }
        rc = 0;
        for (size_t i = 0; i < n; i++) {
                char sc[200];
                bool any = false;

                for (size_t k = 0; k < reg->n_schools && !any; k++)
                        any = bbt_scope_allows(&scopes[i], &reg->schools[k]);
                if (any)
                        continue;
                bbt_scope_format(&scopes[i], sc, sizeof(sc));
                if (lines)
                        fprintf(stderr, "%s:%u: ", path, lines[i]);
                else
                        fprintf(stderr, "%s: ", prog);
                fprintf(stderr, "%s scope \"%s\" matches no school of the registry (%s)\n",
                        bbt_role_name(scopes[i].role), sc, cfg.schools);
                rc = 1;
        }
out:
        bbt_registry_free(reg);
        bbt_aggregator_config_free(&cfg);
        free(errs);
        return rc;
}

/* ---- the commands ---- */

struct args {
        const char *file, *config;
        const char *role, *county, *township, *school;
        bool password_stdin, registry_check;
};

static void reload_hint(void)
{
        printf("bbt-web applies it when reloaded: systemctl reload bbt-web\n");
}

static int cmd_add(const struct args *a, const char *name)
{
        struct users_file f = { .path = a->file };
        char scope_text[200], why[300], hash[BBT_HASH_MAX + 1];
        struct bbt_scope scope;
        enum bbt_role role;
        int rc = 1;

        if (!a->role) {
                fprintf(stderr, "%s: add %s: which --role? county, township or school\n", prog, name);
                return 2;
        }
        if (bbt_role_parse(a->role, &role) < 0) {
                fprintf(stderr, "%s: --role %s: expected county, township or school\n", prog, a->role);
                return 2;
        }
        if (role == BBT_ROLE_COUNTY && (a->township || a->school)) {
                fprintf(stderr, "%s: --role county takes --county CODE only (or nothing: every county)\n", prog);
                return 2;
        }
        if (role == BBT_ROLE_TOWNSHIP && (!a->township || a->school)) {
                fprintf(stderr, "%s: --role township needs --township NAME (and may have --county CODE)\n", prog);
                return 2;
        }
        if (role == BBT_ROLE_SCHOOL && (!a->school || a->township)) {
                fprintf(stderr, "%s: --role school needs --school CODE (and may have --county CODE)\n", prog);
                return 2;
        }
        if (a->county && !bbt_county_valid(a->county)) {
                fprintf(stderr, "%s: --county %s: expected 6 digits\n", prog, a->county);
                return 2;
        }
        snprintf(scope_text, sizeof(scope_text), "%s%s%s", a->county ? a->county : "",
                 a->county && role != BBT_ROLE_COUNTY ? "/" : "",
                 role == BBT_ROLE_TOWNSHIP ? a->township : role == BBT_ROLE_SCHOOL ? a->school : "");
        if (bbt_scope_parse(role, scope_text, &scope, why, sizeof(why)) < 0) {
                fprintf(stderr, "%s: %s\n", prog, why);
                return 2;
        }
        /* A first look without the lock: no password asked for in vain. */
        if (load(&f, true, false) != 0)
                goto out;
        if (bbt_users_find(&f.users, name)) {
                fprintf(stderr, "%s: user %s already exists (line %u): to change the password: %s passwd %s\n", prog,
                        name, bbt_users_find(&f.users, name)->line, prog, name);
                goto out;
        }
        unload(&f);
        if (a->registry_check && registry_check(a->config, a->file, &scope, NULL, 1) != 0)
                goto out;
        if (new_hash(name, a->password_stdin, hash, sizeof(hash)) != 0)
                goto out;
        if (load(&f, true, true) != 0)
                goto out;
        if (bbt_users_find(&f.users, name)) {
                fprintf(stderr, "%s: user %s was added meanwhile\n", prog, name);
                goto out;
        }
        if (write_user(&f, 0, name, &scope, hash) != 0)
                goto out;
        printf("added %s: %s %s\n", name, bbt_role_name(role), *scope_text ? scope_text : "(every county)");
        reload_hint();
        rc = 0;
out:
        unload(&f);
        return rc;
}

static int cmd_passwd(const struct args *a, const char *name)
{
        struct users_file f = { .path = a->file };
        char hash[BBT_HASH_MAX + 1];
        const struct bbt_user *u;
        int rc = 1;

        if (load(&f, false, false) != 0)
                goto out;
        if (!bbt_users_find(&f.users, name)) {
                fprintf(stderr, "%s: no user %s in %s (add one with: %s add %s --role ...)\n", prog, name, a->file,
                        prog, name);
                goto out;
        }
        unload(&f);
        if (new_hash(name, a->password_stdin, hash, sizeof(hash)) != 0)
                goto out;
        if (load(&f, false, true) != 0)
                goto out;
        u = bbt_users_find(&f.users, name);
        if (!u) {
                fprintf(stderr, "%s: user %s was removed meanwhile\n", prog, name);
                goto out;
        }
        if (write_user(&f, u->line, name, &u->scope, hash) != 0)
                goto out;
        printf("new password for %s\n", name);
        reload_hint();
        rc = 0;
out:
        unload(&f);
        return rc;
}

static int cmd_del(const struct args *a, const char *name)
{
        struct users_file f = { .path = a->file };
        const struct bbt_user *u;
        char *text = NULL;
        size_t len;
        int rc = 1;

        if (load(&f, false, true) != 0)
                goto out;
        u = bbt_users_find(&f.users, name);
        if (!u) {
                fprintf(stderr, "%s: no user %s in %s\n", prog, name, a->file);
                goto out;
        }
        text = edit_line(&f, u->line, "", &len);
        if (!text) {
                fprintf(stderr, "%s: out of memory\n", prog);
                goto out;
        }
        if (rewrite(&f, text, len) != 0)
                goto out;
        printf("removed %s\n", name);
        reload_hint();
        rc = 0;
out:
        free(text);
        unload(&f);
        return rc;
}

static int cmd_list(const struct args *a)
{
        struct users_file f = { .path = a->file };
        int rc = 1;

        if (load(&f, false, false) != 0)
                goto out;
        printf("%-24s %-9s %s\n", "NAME", "ROLE", "SCOPE");
        for (size_t i = 0; i < f.users.n; i++) {
                char sc[200];

                bbt_scope_format(&f.users.v[i].scope, sc, sizeof(sc));
                printf("%-24s %-9s %s\n", f.users.v[i].name, bbt_role_name(f.users.v[i].scope.role),
                       *sc ? sc : "(every county)");
        }
        rc = 0;
out:
        unload(&f);
        return rc;
}

static int cmd_check(const struct args *a)
{
        struct users_file f = { .path = a->file };
        size_t count[3] = { 0 };
        int rc = 1;

        if (load(&f, false, false) != 0)
                goto out;
        for (size_t i = 0; i < f.users.n; i++)
                count[f.users.v[i].scope.role]++;
        if (a->registry_check) {
                struct bbt_scope *scopes = calloc(f.users.n + 1, sizeof(*scopes));
                unsigned *lines = calloc(f.users.n + 1, sizeof(*lines));
                size_t n = 0;

                if (!scopes || !lines) {
                        free(scopes);
                        free(lines);
                        goto out;
                }
                for (size_t i = 0; i < f.users.n; i++) {
                        scopes[n] = f.users.v[i].scope;
                        lines[n++] = f.users.v[i].line;
                }
                rc = registry_check(a->config, a->file, scopes, lines, n);
                free(scopes);
                free(lines);
                if (rc != 0)
                        goto out;
        }
        printf("%s: %zu user%s (%zu county, %zu township, %zu school)%s\n", a->file, f.users.n,
               f.users.n == 1 ? "" : "s", count[BBT_ROLE_COUNTY], count[BBT_ROLE_TOWNSHIP], count[BBT_ROLE_SCHOOL],
               a->registry_check ? ", each matching the registry" : "");
        rc = 0;
out:
        unload(&f);
        return rc;
}

int main(int argc, char **argv)
{
        enum { OPT_ROLE = 256, OPT_COUNTY, OPT_TOWNSHIP, OPT_SCHOOL, OPT_STDIN, OPT_REGISTRY };
        static const struct option longopts[] = {
                { "file", required_argument, NULL, 'f' },
                { "config", required_argument, NULL, 'c' },
                { "role", required_argument, NULL, OPT_ROLE },
                { "county", required_argument, NULL, OPT_COUNTY },
                { "township", required_argument, NULL, OPT_TOWNSHIP },
                { "school", required_argument, NULL, OPT_SCHOOL },
                { "password-stdin", no_argument, NULL, OPT_STDIN },
                { "registry-check", no_argument, NULL, OPT_REGISTRY },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        struct args a = { .file = USERS_PATH, .config = BBT_AGGREGATOR_CONFIG_PATH };
        const char *cmd, *name = NULL;
        bool needs_name, adds;
        int c;

        while ((c = getopt_long(argc, argv, "f:c:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        a.file = optarg;
                        break;
                case 'c':
                        a.config = optarg;
                        break;
                case OPT_ROLE:
                        a.role = optarg;
                        break;
                case OPT_COUNTY:
                        a.county = optarg;
                        break;
                case OPT_TOWNSHIP:
                        a.township = optarg;
                        break;
                case OPT_SCHOOL:
                        a.school = optarg;
                        break;
                case OPT_STDIN:
                        a.password_stdin = true;
                        break;
                case OPT_REGISTRY:
                        a.registry_check = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("bbt-web-user %s\n", BBT_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try '%s --help'.\n", prog);
                        return 2;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "%s: which command? add, passwd, del, list or check\nTry '%s --help'.\n", prog, prog);
                return 2;
        }
        cmd = argv[optind++];
        needs_name = strcmp(cmd, "add") == 0 || strcmp(cmd, "passwd") == 0 || strcmp(cmd, "del") == 0;
        if (!needs_name && strcmp(cmd, "list") != 0 && strcmp(cmd, "check") != 0) {
                fprintf(stderr, "%s: unknown command %s: expected add, passwd, del, list or check\n", prog, cmd);
                return 2;
        }
        if (needs_name) {
                if (optind >= argc) {
                        fprintf(stderr, "%s: %s: which user? %s %s NAME\n", prog, cmd, prog, cmd);
                        return 2;
                }
                name = argv[optind++];
                if (!bbt_user_name_valid(name)) {
                        fprintf(stderr, "%s: user name \"%s\": expected 1 to %d of A-Z a-z 0-9 . _ @ -, not "
                                        "starting with -\n",
                                prog, name, BBT_USER_NAME_MAX);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "%s: unexpected argument %s\n", prog, argv[optind]);
                return 2;
        }
        adds = strcmp(cmd, "add") == 0;
        if (!adds && (a.role || a.county || a.township || a.school)) {
                fprintf(stderr, "%s: --role, --county, --township and --school are for add (to change a scope: "
                                "del, then add)\n",
                        prog);
                return 2;
        }
        if (a.password_stdin && !adds && strcmp(cmd, "passwd") != 0) {
                fprintf(stderr, "%s: --password-stdin is for add and passwd\n", prog);
                return 2;
        }
        if (a.registry_check && !adds && strcmp(cmd, "check") != 0) {
                fprintf(stderr, "%s: --registry-check is for add and check\n", prog);
                return 2;
        }
        umask(0077);
        if (adds)
                return cmd_add(&a, name);
        if (strcmp(cmd, "passwd") == 0)
                return cmd_passwd(&a, name);
        if (strcmp(cmd, "del") == 0)
                return cmd_del(&a, name);
        if (strcmp(cmd, "list") == 0)
                return cmd_list(&a);
        return cmd_check(&a);
}
