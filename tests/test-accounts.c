/* Tests for county/web/accounts.c and bbt-web-user: the users file, logins, throttle, sessions, CSRF, audit. */
/* bbt-test: label=unit timeout=120 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "accounts.h"
#include "daemon.h"

/* "correct horse battery" hashed once by python3's crypt module (libcrypt),
 * with a fixed salt: a hash this code did not make must verify. */
#define KNOWN_PASSWORD "correct horse battery"
#define KNOWN_HASH "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$YAXMK9Llbqk/FSGbrI16AP6p2zwE4UhuWrJZceAG.p2"

static const char *dir;

static void setup(void)
{
        dir = bbt_test_tmp_init("accounts");
        /* Audit times in a fixed offset without tzdata: +08:00. */
        setenv("TZ", "CST-8", 1);
        tzset();
}

static const char *path_in(const char *name)
{
        static char buf[4][512];
        static int k;

        k = (k + 1) % 4;
        snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
        return buf[k];
}

/* Writes TEXT to NAME in the test directory with MODE. */
static const char *put(const char *name, const char *text, mode_t mode)
{
        const char *p = path_in(name);

        bbt_test_write_file(p, text);
        ASSERT_OK(chmod(p, mode));
        return p;
}

/* A hash of PW, made once per password per run (each costs ~0.1 s). */
static const char *hash_of(const char *pw)
{
        static struct {
                char pw[64];
                char hash[BBT_HASH_MAX + 1];
        } cache[8];

        for (size_t i = 0; i < 8; i++) {
                if (strcmp(cache[i].pw, pw) == 0)
                        return cache[i].hash;
                if (!cache[i].pw[0]) {
                        snprintf(cache[i].pw, sizeof(cache[i].pw), "%s", pw);
                        ASSERT_OK(bbt_password_hash(pw, cache[i].hash, sizeof(cache[i].hash)));
                        return cache[i].hash;
                }
        }
        FAIL("hash cache full");
}

/* The users file with ADMIN (county), TOWN (township) and HEAD (school). */
static const char *three_users(const char *name)
{
        char text[2048];

        snprintf(text, sizeof(text),
                 "# bbt-web users\n"
                 "admin:county::%s\n"
                 "town:township:510107/桂溪街道:%s\n"
                 "\n"
                 "head:school:3151010001:%s\n",
                 hash_of("admin password"), hash_of("town password"), hash_of("head password"));
        return put(name, text, 0640);
}

struct errs {
        int n;
        char msg[16][400];
};

static void collect(void *ctx, const char *msg)
{
        struct errs *e = ctx;

        if (e->n < 16)
                snprintf(e->msg[e->n], sizeof(e->msg[0]), "%s", msg);
        e->n++;
}

TEST(parse_good)
{
        struct bbt_users u;
        struct errs e = { 0 };
        const char *text = "\xEF\xBB\xBF# comment\n"
                           "  # indented comment\n"
                           "\n"
                           "all:county::" KNOWN_HASH "\n"
                           "one.county:county:510107:" KNOWN_HASH "\n"
                           "t@x:township:桂溪街道:" KNOWN_HASH "\n"
                           "t2:township:510107/桂溪街道:" KNOWN_HASH "\n"
                           "s_1:school:3151010001:" KNOWN_HASH "\n"
                           "s-2:school:510107/3151010002:" KNOWN_HASH; /* no final line end */

        ASSERT_OK(bbt_users_parse("users", text, strlen(text), &u, collect, &e));
        ASSERT_EQ(e.n, 0);
        ASSERT_EQ(u.n, 6);
        ASSERT_STR_EQ(u.v[0].name, "all");
        ASSERT_EQ(u.v[0].line, 4);
        ASSERT_EQ(u.v[0].scope.role, BBT_ROLE_COUNTY);
        ASSERT_STR_EQ(u.v[0].scope.county, "");
        ASSERT_STR_EQ(u.v[1].scope.county, "510107");
        ASSERT_EQ(u.v[2].scope.role, BBT_ROLE_TOWNSHIP);
        ASSERT_STR_EQ(u.v[2].scope.county, "");
        ASSERT_STR_EQ(u.v[2].scope.township, "桂溪街道");
        ASSERT_STR_EQ(u.v[3].scope.county, "510107");
        ASSERT_STR_EQ(u.v[3].scope.township, "桂溪街道");
        ASSERT_EQ(u.v[4].scope.role, BBT_ROLE_SCHOOL);
        ASSERT_STR_EQ(u.v[4].scope.school, "3151010001");
        ASSERT_STR_EQ(u.v[5].scope.county, "510107");
        ASSERT_STR_EQ(u.v[5].scope.school, "3151010002");
        ASSERT_EQ(u.v[5].line, 9);
        ASSERT_STR_EQ(u.v[5].hash, KNOWN_HASH);
        ASSERT(bbt_users_find(&u, "t@x") == &u.v[2]);
        ASSERT(bbt_users_find(&u, "nobody") == NULL);

        /* The scope field round-trips. */
        for (size_t i = 0; i < u.n; i++) {
                char buf[200];
                struct bbt_scope back;

                bbt_scope_format(&u.v[i].scope, buf, sizeof(buf));
                ASSERT_OK(bbt_scope_parse(u.v[i].scope.role, buf, &back, NULL, 0));
                ASSERT(memcmp(&back, &u.v[i].scope, sizeof(back)) == 0);
        }
        bbt_users_free(&u);
}

TEST(parse_bad)
{
        static const struct {
                const char *line, *reason;
        } cases[] = {
                { "admin:county:" KNOWN_HASH, "expected 4 fields name:role:scope:hash, found 3" },
                { "admin:county:::" KNOWN_HASH, "found 5" },
                { ":county::" KNOWN_HASH, "user name \"\": expected 1 to 64" },
                { "-x:county::" KNOWN_HASH, "user name \"-x\"" },
                { "a b:county::" KNOWN_HASH, "user name \"a b\"" },
                { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:county::" KNOWN_HASH,
                  "user name" },
                { "admin:root::" KNOWN_HASH, "role \"root\": expected county, township or school" },
                { "admin:county:5101:" KNOWN_HASH, "county scope \"5101\": expected a 6-digit county code" },
                { "admin:township::" KNOWN_HASH, "township scope \"\": expected [COUNTY/]TOWNSHIP" },
                { "admin:township: 桂溪:" KNOWN_HASH, "has spaces at its ends" },
                { "admin:township:a\tb:" KNOWN_HASH, "control character" },
                { "admin:school::" KNOWN_HASH, "school scope \"\": expected [COUNTY/]SCHOOL" },
                { "admin:school:学校:" KNOWN_HASH, "school scope \"学校\"" },
                { "admin:school:510107/:" KNOWN_HASH, "school scope \"510107/\"" },
                { "admin:county::secret", "password hash: expected a yescrypt hash $y$" },
                { "admin:county::$6$salt$abcdefghijkl", "password hash" },
                { "admin:county::$y$j9T$salt", "password hash" },
                { "admin:county::$y$j9T$F5Jx5fExrKuPp53xLKQ..1$", "password hash" },
                { "admin:county::" KNOWN_HASH "\r", "carriage return" },
                { "admin:county::\xff" KNOWN_HASH, "not valid UTF-8 (byte 15)" },
        };

        for (size_t i = 0; i < BBT_ELEMENTSOF(cases); i++) {
                char text[1200];
                struct bbt_users u = { .n = 99 };
                struct errs e = { 0 };

                /* The bad line is line 3, after a comment and a good line. */
                snprintf(text, sizeof(text), "# users\nok:county::%s\n%s\n", KNOWN_HASH, cases[i].line);
                ASSERT_EQ(bbt_users_parse("/etc/bbt/web-users", text, strlen(text), &u, collect, &e), -EINVAL);
                ASSERT_EQ(u.n, 0);
                ASSERT(u.v == NULL);
                if (e.n != 1)
                        FAIL("case %zu (%s): %d errors", i, cases[i].line, e.n);
                ASSERT_STR_CONTAINS(e.msg[0], "/etc/bbt/web-users:3: ");
                if (!strstr(e.msg[0], cases[i].reason))
                        FAIL("case %zu: \"%s\" lacks \"%s\"", i, e.msg[0], cases[i].reason);
        }

        /* Every problem, each with its line; a duplicate names the first. */
        {
                char text[2000];
                struct bbt_users u;
                struct errs e = { 0 };
                char longline[1100];

                memset(longline, 'x', sizeof(longline) - 1);
                longline[sizeof(longline) - 1] = '\0';
                snprintf(text, sizeof(text),
                         "a:county::%s\n"
                         "b:bad::%s\n"
                         "a:county::%s\n"
                         "%s\n"
                         "c:county::%s\n",
                         KNOWN_HASH, KNOWN_HASH, KNOWN_HASH, longline, KNOWN_HASH);
                ASSERT_EQ(bbt_users_parse("f", text, strlen(text), &u, collect, &e), -EINVAL);
                ASSERT_EQ(e.n, 3);
                ASSERT_STR_CONTAINS(e.msg[0], "f:2: role \"bad\"");
                ASSERT_STR_CONTAINS(e.msg[1], "f:3: user a is already on line 1");
                ASSERT_STR_CONTAINS(e.msg[2], "f:4: line longer than 1024 bytes");
        }
        /* NULL callback: still refused. */
        {
                struct bbt_users u;

                ASSERT_EQ(bbt_users_parse("f", "x", 1, &u, NULL, NULL), -EINVAL);
        }
}

TEST(file_refused)
{
        struct bbt_accounts *a = NULL;
        struct bbt_accounts_settings s = { 0 };
        char text[400], err[512];
        static const struct {
                mode_t mode;
                int r;
                const char *why;
        } modes[] = {
                { 0600, 0, NULL },
                { 0640, 0, NULL },
                { 0400, 0, NULL },
                { 0644, -EPERM, "mode 0644 lets every user read the password hashes; refused: chmod 0640" },
                { 0604, -EPERM, "every user read" },
                { 0660, -EPERM, "mode 0660 lets others than its owner change it" },
                { 0602, -EPERM, "change it" },
        };

        setup();
        snprintf(text, sizeof(text), "u:county::%s\n", KNOWN_HASH);
        for (size_t i = 0; i < BBT_ELEMENTSOF(modes); i++) {
                const char *p = put("users", text, modes[i].mode);

                err[0] = '\0';
                ASSERT_EQ(bbt_accounts_open(p, &s, &a, err, sizeof(err)), modes[i].r);
                if (modes[i].r == 0) {
                        ASSERT(a != NULL);
                        bbt_accounts_free(a);
                        a = NULL;
                } else {
                        ASSERT(a == NULL);
                        ASSERT_STR_CONTAINS(err, p);
                        ASSERT_STR_CONTAINS(err, modes[i].why);
                }
        }
        ASSERT_EQ(bbt_accounts_open(path_in("missing"), &s, &a, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "/missing: No such file or directory");
        ASSERT_EQ(bbt_accounts_open(dir, &s, &a, err, sizeof(err)), -EINVAL);
        ASSERT_STR_CONTAINS(err, "not a regular file");

        /* A bad line: the first problem, located, and how to see them all. */
        put("bad", "x:county::nohash\ny:county::nohash\n", 0600);
        ASSERT_EQ(bbt_accounts_open(path_in("bad"), &s, &a, err, sizeof(err)), -EINVAL);
        ASSERT_STR_CONTAINS(err, "/bad:1: password hash");
        ASSERT_STR_CONTAINS(err, "(and 1 more problems: bbt-web-user --file ");
        ASSERT(a == NULL);
        bbt_test_passed();
}

TEST(hash_verify)
{
        char h1[BBT_HASH_MAX + 1], h2[BBT_HASH_MAX + 1], big[BBT_PASSWORD_MAX + 2];

        ASSERT(bbt_password_verify(KNOWN_PASSWORD, KNOWN_HASH));
        ASSERT(!bbt_password_verify("correct horse batterY", KNOWN_HASH));
        ASSERT(!bbt_password_verify("", KNOWN_HASH));
        ASSERT(!bbt_password_verify(KNOWN_PASSWORD, "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$"));
        ASSERT(!bbt_password_verify(KNOWN_PASSWORD, ""));
        ASSERT(!bbt_password_verify(KNOWN_PASSWORD, "*"));
        ASSERT(!bbt_password_verify(NULL, KNOWN_HASH));

        ASSERT_OK(bbt_password_hash("密码 with ünïcode", h1, sizeof(h1)));
        ASSERT_OK(bbt_password_hash("密码 with ünïcode", h2, sizeof(h2)));
        ASSERT(strncmp(h1, "$y$", 3) == 0);
        ASSERT(strcmp(h1, h2) != 0); /* a fresh salt each time */
        ASSERT(bbt_password_verify("密码 with ünïcode", h1));
        ASSERT(bbt_password_verify("密码 with ünïcode", h2));
        ASSERT(!bbt_password_verify("密码 with unicode", h1));
        ASSERT_EQ(bbt_password_hash("x", h1, 10), -ENOBUFS);
        memset(big, 'p', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ASSERT_EQ(bbt_password_hash(big, h1, sizeof(h1)), -EINVAL);
        ASSERT(!bbt_password_verify(big, KNOWN_HASH));
}

static struct bbt_accounts *open_three(const struct bbt_accounts_settings *s, const char **ret_path)
{
        struct bbt_accounts *a;
        char err[512];
        const char *p = three_users("users");

        if (bbt_accounts_open(p, s, &a, err, sizeof(err)) < 0)
                FAIL("open: %s", err);
        if (ret_path)
                *ret_path = p;
        return a;
}

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

TEST(login)
{
        struct bbt_accounts_settings s = { .login_burst = 100, .addr_burst = 100 };
        struct bbt_accounts *a;
        struct bbt_session ses, ses2;
        struct bbt_accounts_stats st;
        int retry = -1;
        int64_t t0, wrong_ms = INT64_MAX, unknown_ms = INT64_MAX;

        setup();
        a = open_three(&s, NULL);
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "192.0.2.1", 1000, &ses, &retry));
        ASSERT_EQ(retry, 0);
        ASSERT_STR_EQ(ses.user, "admin");
        ASSERT_EQ(ses.scope.role, BBT_ROLE_COUNTY);
        ASSERT_EQ(strlen(ses.token), 64);
        ASSERT_EQ(strspn(ses.token, "0123456789abcdef"), 64);
        ASSERT_EQ(strlen(ses.csrf), 64);
        ASSERT(strcmp(ses.token, ses.csrf) != 0);
        ASSERT_EQ(ses.created_ms, 1000);
        ASSERT_EQ(ses.expires_ms, 1000 + BBT_SESSION_MS);
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "192.0.2.1", 1000, &ses2, NULL));
        ASSERT(strcmp(ses.token, ses2.token) != 0);

        ASSERT_OK(bbt_accounts_login(a, "town", "town password", "192.0.2.1", 1000, &ses, NULL));
        ASSERT_EQ(ses.scope.role, BBT_ROLE_TOWNSHIP);
        ASSERT_STR_EQ(ses.scope.township, "桂溪街道");
        ASSERT_STR_EQ(ses.scope.county, "510107");
        ASSERT_OK(bbt_accounts_login(a, "head", "head password", "192.0.2.1", 1000, &ses, NULL));
        ASSERT_STR_EQ(ses.scope.school, "3151010001");

        /* Wrong password and unknown user: one answer, about the same time
         * (the unknown user's check hashes a dummy; without it, it would take
         * no time at all). The best of three each, against a loaded machine. */
        for (int i = 0; i < 3; i++) {
                t0 = mono_ms();
                ASSERT_EQ(bbt_accounts_login(a, "admin", "town password", "192.0.2.1", 2000, &ses, &retry), -EACCES);
                if (mono_ms() - t0 < wrong_ms)
                        wrong_ms = mono_ms() - t0;
                t0 = mono_ms();
                ASSERT_EQ(bbt_accounts_login(a, "nobody", "town password", "192.0.2.1", 2000, &ses, &retry), -EACCES);
                if (mono_ms() - t0 < unknown_ms)
                        unknown_ms = mono_ms() - t0;
        }
        fprintf(stderr, "wrong password %" PRId64 " ms, unknown user %" PRId64 " ms\n", wrong_ms, unknown_ms);
        ASSERT_GE(wrong_ms, 5);
        ASSERT_GE(unknown_ms * 2, wrong_ms);
        ASSERT_GE(wrong_ms * 2, unknown_ms);
        ASSERT_EQ(bbt_accounts_login(a, "", "", NULL, 2000, &ses, NULL), -EACCES);
        ASSERT_EQ(bbt_accounts_login(a, "admin", NULL, "::1", 2000, &ses, NULL), -EACCES);

        bbt_accounts_stats(a, &st);
        ASSERT_EQ(st.users, 3);
        ASSERT_EQ(st.sessions, 4);
        ASSERT_EQ(st.logins, 4);
        ASSERT_EQ(st.logins_failed, 8);
        ASSERT_EQ(st.logins_throttled, 0);
        bbt_accounts_free(a);
        bbt_test_passed();
}

TEST(throttle)
{
        struct bbt_accounts_settings s = {
                .login_burst = 3, .login_refill_ms = 10000, .addr_burst = 5, .addr_refill_ms = 4000
        };
        struct bbt_accounts *a;
        struct bbt_session ses;
        struct bbt_accounts_stats st;
        int retry = -1;
        int64_t t = 1000000;

        setup();
        a = open_three(&s, NULL);
        /* (user, address): three wrong at once, then the fourth waits — even with the right password. */
        for (int i = 0; i < 3; i++)
                ASSERT_EQ(bbt_accounts_login(a, "head", "wrong", "192.0.2.7", t, &ses, &retry), -EACCES);
        ASSERT_EQ(bbt_accounts_login(a, "head", "head password", "192.0.2.7", t, &ses, &retry), -EAGAIN);
        ASSERT_EQ(retry, 10);
        ASSERT_EQ(bbt_accounts_login(a, "head", "head password", "192.0.2.7", t + 9001, &ses, &retry), -EAGAIN);
        ASSERT_EQ(retry, 1);
        /* The same user from another address is not held back by this one. */
        ASSERT_OK(bbt_accounts_login(a, "head", "head password", "192.0.2.8", t, &ses, &retry));
        /* One refill later: one more try. */
        ASSERT_EQ(bbt_accounts_login(a, "head", "wrong", "192.0.2.7", t + 10000, &ses, &retry), -EACCES);
        ASSERT_EQ(bbt_accounts_login(a, "head", "head password", "192.0.2.7", t + 10000, &ses, &retry), -EAGAIN);
        /* Two more refills: the right password gets in and forgives the pair. */
        ASSERT_OK(bbt_accounts_login(a, "head", "head password", "192.0.2.7", t + 30000, &ses, &retry));
        ASSERT_EQ(retry, 0);
        for (int i = 0; i < 3; i++)
                ASSERT_EQ(bbt_accounts_login(a, "head", "wrong", "192.0.2.7", t + 30000, &ses, &retry), -EACCES);

        /* The address: five failures over any users, then every user waits. */
        t += 200000;
        for (int i = 0; i < 5; i++) {
                char user[24];

                snprintf(user, sizeof(user), "guess%d", i);
                ASSERT_EQ(bbt_accounts_login(a, user, "x", "198.51.100.9", t, &ses, &retry), -EACCES);
        }
        ASSERT_EQ(bbt_accounts_login(a, "admin", "admin password", "198.51.100.9", t, &ses, &retry), -EAGAIN);
        ASSERT_EQ(retry, 4);
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "198.51.100.10", t, &ses, &retry));
        /* One refill later: one attempt (a success takes no token), then wait again. */
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "198.51.100.9", t + 4000, &ses, &retry));
        ASSERT_EQ(bbt_accounts_login(a, "admin", "x", "198.51.100.9", t + 4000, &ses, &retry), -EACCES);
        ASSERT_EQ(bbt_accounts_login(a, "guess9", "x", "198.51.100.9", t + 4000, &ses, &retry), -EAGAIN);
        ASSERT_EQ(retry, 4);

        bbt_accounts_stats(a, &st);
        ASSERT_EQ(st.logins_throttled, 5);
        ASSERT_EQ(st.logins, 4);
        ASSERT_EQ(st.logins_failed, 13);
        bbt_accounts_free(a);
        bbt_test_passed();
}

static int audit_lines(const char *path, cJSON **lines, int max);
static const char *field(cJSON *o, const char *key);

TEST(throttle_audit)
{
        struct bbt_accounts_settings s = { .login_burst = 2, .login_refill_ms = 10000, .addr_burst = 100 };
        struct bbt_accounts *a;
        struct bbt_session ses;
        struct bbt_accounts_stats st;
        char audit[512];
        cJSON *l[16];
        int n, throttled = 0;

        setup();
        snprintf(audit, sizeof(audit), "%s", path_in("audit.log"));
        s.audit_path = audit;
        a = open_three(&s, NULL);
        for (int i = 0; i < 2; i++)
                ASSERT_EQ(bbt_accounts_login(a, "head", "wrong", "192.0.2.7", 0, &ses, NULL), -EACCES);
        /* Hammering a closed door: counted, but one audit line per refill interval. */
        for (int i = 0; i < 500; i++)
                ASSERT_EQ(bbt_accounts_login(a, "head", "x", "192.0.2.7", i, &ses, NULL), -EAGAIN);
        for (int i = 0; i < 20; i++)
                ASSERT_EQ(bbt_accounts_login(a, "head", "x", "192.0.2.7", 9000 + i, &ses, NULL), -EAGAIN);
        bbt_accounts_stats(a, &st);
        ASSERT_EQ(st.logins_throttled, 520);
        bbt_accounts_free(a);
        n = audit_lines(audit, l, 16);
        for (int i = 0; i < n; i++) {
                if (strcmp(field(l[i], "event"), "login_throttled") == 0) {
                        if (throttled == 0)
                                ASSERT_STR_EQ(field(l[i], "detail"), "user and address");
                        throttled++;
                }
                cJSON_Delete(l[i]);
        }
        ASSERT_EQ(n, 3);
        ASSERT_EQ(throttled, 1);

        /* The next interval's line says how many went unlogged. */
        a = open_three(&s, NULL);
        for (int i = 0; i < 2; i++)
                ASSERT_EQ(bbt_accounts_login(a, "head", "wrong", "192.0.2.7", 0, &ses, NULL), -EACCES);
        for (int64_t t = 0; t <= 10000; t += 100) /* closed until 10000 (burst 2, then one per 10 s) */
                ASSERT_EQ(bbt_accounts_login(a, "head", "x", "192.0.2.7", t, &ses, NULL),
                          t < 10000 ? -EAGAIN : -EACCES);
        ASSERT_EQ(bbt_accounts_login(a, "head", "x", "192.0.2.7", 10000, &ses, NULL), -EAGAIN);
        bbt_accounts_free(a);
        n = audit_lines(audit, l, 16);
        ASSERT_EQ(n, 8);
        ASSERT_STR_EQ(field(l[5], "detail"), "user and address");
        ASSERT_STR_EQ(field(l[6], "event"), "login_failed");
        ASSERT_STR_EQ(field(l[7], "detail"), "user and address; 99 more refused since the last such line");
        for (int i = 0; i < n; i++)
                cJSON_Delete(l[i]);
        bbt_test_passed();
}

TEST(sessions)
{
        struct bbt_accounts_settings s = { .session_ms = 1000, .session_max_ms = 5000, .max_sessions = 3 };
        struct bbt_accounts *a;
        struct bbt_session one, two, x[3];
        const struct bbt_session *p;
        struct bbt_accounts_stats st;
        char bad[65];

        setup();
        a = open_three(&s, NULL);
        ASSERT_OK(bbt_accounts_login(a, "town", "town password", "::1", 10000, &one, NULL));
        ASSERT_EQ(one.expires_ms, 11000);
        /* Sliding: each use moves the end on. */
        p = bbt_accounts_session(a, one.token, 10900);
        ASSERT(p != NULL);
        ASSERT_STR_EQ(p->user, "town");
        ASSERT_STR_EQ(p->csrf, one.csrf);
        ASSERT_EQ(p->expires_ms, 11900);
        ASSERT(bbt_accounts_session(a, one.token, 11800) != NULL);
        /* ... but never past session_max_ms from the login. */
        for (int64_t t = 12700; t < 15000; t += 900)
                ASSERT(bbt_accounts_session(a, one.token, t) != NULL);
        p = bbt_accounts_session(a, one.token, 14900);
        ASSERT(p != NULL);
        ASSERT_EQ(p->expires_ms, 15000);
        ASSERT(bbt_accounts_session(a, one.token, 15000) == NULL);
        ASSERT(bbt_accounts_session(a, one.token, 15001) == NULL); /* gone for good */

        /* Idle: unused for session_ms. */
        ASSERT_OK(bbt_accounts_login(a, "town", "town password", "::1", 20000, &two, NULL));
        ASSERT(bbt_accounts_session(a, two.token, 20999) != NULL);
        ASSERT(bbt_accounts_session(a, two.token, 21999) == NULL);

        /* Unknown, altered, short and NULL tokens. */
        ASSERT_OK(bbt_accounts_login(a, "town", "town password", "::1", 30000, &two, NULL));
        snprintf(bad, sizeof(bad), "%s", two.token);
        bad[10] = bad[10] == 'a' ? 'b' : 'a';
        ASSERT(bbt_accounts_session(a, bad, 30001) == NULL);
        bad[63] = '\0';
        ASSERT(bbt_accounts_session(a, bad, 30001) == NULL);
        ASSERT(bbt_accounts_session(a, "", 30001) == NULL);
        ASSERT(bbt_accounts_session(a, NULL, 30001) == NULL);
        ASSERT(bbt_accounts_session(a, two.token, 30001) != NULL);

        /* At most three: a fourth drops the oldest. */
        for (int i = 0; i < 3; i++)
                ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "::1", 30100 + i, &x[i], NULL));
        bbt_accounts_stats(a, &st);
        ASSERT_EQ(st.sessions, 3);
        ASSERT_EQ(st.sessions_dropped, 1);
        ASSERT_EQ(st.sessions_expired, 2);
        ASSERT(bbt_accounts_session(a, two.token, 30200) == NULL);
        for (int i = 0; i < 3; i++)
                ASSERT(bbt_accounts_session(a, x[i].token, 30200) != NULL);
        /* A login ends the sessions nobody came back to. */
        ASSERT_OK(bbt_accounts_login(a, "head", "head password", "::1", 40000, &one, NULL));
        bbt_accounts_stats(a, &st);
        ASSERT_EQ(st.sessions, 1);
        ASSERT_EQ(st.sessions_expired, 5);
        ASSERT_EQ(st.sessions_dropped, 1);
        bbt_accounts_free(a);
        bbt_test_passed();
}

TEST(csrf_logout)
{
        struct bbt_accounts *a;
        struct bbt_session ses, other;
        const struct bbt_session *p;
        char bad[65];

        setup();
        a = open_three(NULL, NULL);
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "::1", 1000, &ses, NULL));
        ASSERT_OK(bbt_accounts_login(a, "head", "head password", "::1", 1000, &other, NULL));
        p = bbt_accounts_session(a, ses.token, 2000);
        ASSERT(p != NULL);
        ASSERT(bbt_session_csrf_ok(p, ses.csrf));
        ASSERT(!bbt_session_csrf_ok(p, other.csrf));
        ASSERT(!bbt_session_csrf_ok(p, ses.token));
        snprintf(bad, sizeof(bad), "%s", ses.csrf);
        bad[63] = bad[63] == '0' ? '1' : '0';
        ASSERT(!bbt_session_csrf_ok(p, bad));
        bad[62] = '\0';
        ASSERT(!bbt_session_csrf_ok(p, bad));
        ASSERT(!bbt_session_csrf_ok(p, ""));
        ASSERT(!bbt_session_csrf_ok(p, NULL));
        ASSERT(!bbt_session_csrf_ok(NULL, ses.csrf));

        bbt_accounts_logout(a, ses.token, "::1", 3000);
        ASSERT(bbt_accounts_session(a, ses.token, 3000) == NULL);
        bbt_accounts_logout(a, ses.token, "::1", 3000); /* twice: nothing */
        bbt_accounts_logout(a, "nonsense", "::1", 3000);
        bbt_accounts_logout(a, NULL, "::1", 3000);
        ASSERT(bbt_accounts_session(a, other.token, 3000) != NULL);
        bbt_accounts_free(a);
        bbt_test_passed();
}

TEST(reload)
{
        struct bbt_accounts *a;
        struct bbt_session sa, st_, sh, sa2;
        struct bbt_accounts_stats st;
        const char *path;
        char text[2048], err[512];

        setup();
        a = open_three(NULL, &path);
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "::1", 1000, &sa, NULL));
        ASSERT_OK(bbt_accounts_login(a, "town", "town password", "::1", 1000, &st_, NULL));
        ASSERT_OK(bbt_accounts_login(a, "head", "head password", "::1", 1000, &sh, NULL));

        /* admin unchanged, town gets a new password, head moves school, new joins. */
        snprintf(text, sizeof(text),
                 "admin:county::%s\n"
                 "town:township:510107/桂溪街道:%s\n"
                 "head:school:3151010002:%s\n"
                 "new:school:3151010002:%s\n",
                 hash_of("admin password"), hash_of("new town password"), hash_of("head password"),
                 hash_of("head password"));
        put("users", text, 0640);
        ASSERT_OK(bbt_accounts_reload(a, err, sizeof(err)));
        ASSERT(bbt_accounts_session(a, sa.token, 2000) != NULL);
        ASSERT(bbt_accounts_session(a, st_.token, 2000) == NULL);
        ASSERT(bbt_accounts_session(a, sh.token, 2000) == NULL);
        ASSERT_EQ(bbt_accounts_login(a, "town", "town password", "::1", 2000, &sa2, NULL), -EACCES);
        ASSERT_OK(bbt_accounts_login(a, "town", "new town password", "::1", 2000, &st_, NULL));
        ASSERT_OK(bbt_accounts_login(a, "new", "head password", "::1", 2000, &sh, NULL));
        ASSERT_STR_EQ(sh.scope.school, "3151010002");

        /* Removed: the session ends. */
        snprintf(text, sizeof(text), "admin:county::%s\n", hash_of("admin password"));
        put("users", text, 0640);
        ASSERT_OK(bbt_accounts_reload(a, err, sizeof(err)));
        ASSERT(bbt_accounts_session(a, sh.token, 3000) == NULL);
        ASSERT(bbt_accounts_session(a, st_.token, 3000) == NULL);
        ASSERT(bbt_accounts_session(a, sa.token, 3000) != NULL);

        /* A broken file: an error, and the old users and sessions stay. */
        put("users", "admin:county::broken\n", 0640);
        ASSERT_EQ(bbt_accounts_reload(a, err, sizeof(err)), -EINVAL);
        ASSERT_STR_CONTAINS(err, ":1: password hash");
        put("users", text, 0644);
        ASSERT_EQ(bbt_accounts_reload(a, err, sizeof(err)), -EPERM);
        ASSERT(bbt_accounts_session(a, sa.token, 4000) != NULL);
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "::1", 4000, &sa2, NULL));

        bbt_accounts_stats(a, &st);
        ASSERT_EQ(st.reloads, 2);
        ASSERT_EQ(st.reload_errors, 2);
        ASSERT_EQ(st.sessions_ended, 4);
        ASSERT_EQ(st.users, 1);
        bbt_accounts_free(a);
        bbt_test_passed();
}

TEST(scope)
{
        struct bbt_school s1 = { .county = "510107", .township = (char *)"桂溪街道", .code = "3151010001" };
        struct bbt_school s2 = { .county = "510107", .township = (char *)"石羊街道", .code = "3151010002" };
        struct bbt_school s3 = { .county = "510108", .township = (char *)"桂溪街道", .code = "3151080001" };
        struct bbt_school s4 = { .county = "510107", .township = NULL, .code = "3151010004" };
        struct bbt_school s5 = { .county = "510107", .township = (char *)"", .code = "3151010005" };
        const struct bbt_school *all[] = { &s1, &s2, &s3, &s4, &s5 };
        static const struct {
                enum bbt_role role;
                const char *scope;
                const char *allowed; /* one char per school in ALL: y or n */
        } cases[] = {
                { BBT_ROLE_COUNTY, "", "yyyyy" },
                { BBT_ROLE_COUNTY, "510107", "yynyy" },
                { BBT_ROLE_COUNTY, "510199", "nnnnn" },
                { BBT_ROLE_TOWNSHIP, "桂溪街道", "ynynn" },
                { BBT_ROLE_TOWNSHIP, "510107/桂溪街道", "ynnnn" },
                { BBT_ROLE_TOWNSHIP, "510108/桂溪街道", "nnynn" },
                { BBT_ROLE_TOWNSHIP, "石羊街道", "nynnn" },
                { BBT_ROLE_SCHOOL, "3151010001", "ynnnn" },
                { BBT_ROLE_SCHOOL, "510107/3151010002", "nynnn" },
                { BBT_ROLE_SCHOOL, "510108/3151010002", "nnnnn" },
                { BBT_ROLE_SCHOOL, "3151010005", "nnnny" },
        };

        for (size_t i = 0; i < BBT_ELEMENTSOF(cases); i++) {
                struct bbt_scope sc;
                char why[200];

                if (bbt_scope_parse(cases[i].role, cases[i].scope, &sc, why, sizeof(why)) < 0)
                        FAIL("case %zu: %s", i, why);
                for (size_t k = 0; k < BBT_ELEMENTSOF(all); k++)
                        if (bbt_scope_allows(&sc, all[k]) != (cases[i].allowed[k] == 'y'))
                                FAIL("%s %s and school %s: expected %c", bbt_role_name(cases[i].role),
                                     cases[i].scope, all[k]->code, cases[i].allowed[k]);
                ASSERT(!bbt_scope_allows(&sc, NULL));
                ASSERT(!bbt_scope_allows(NULL, &s1));
        }
        /* A zeroed scope of each narrower role allows nothing. */
        {
                struct bbt_scope z = { .role = BBT_ROLE_TOWNSHIP };

                ASSERT(!bbt_scope_allows(&z, &s5));
                z.role = BBT_ROLE_SCHOOL;
                ASSERT(!bbt_scope_allows(&z, &s5));
        }
}

/* The audit log's lines, parsed. */
static int audit_lines(const char *path, cJSON **lines, int max)
{
        char *text = bbt_test_slurp(path), *save = NULL;
        int n = 0;

        for (char *l = strtok_r(text, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save)) {
                lines[n] = cJSON_Parse(l);
                if (!lines[n])
                        FAIL("audit line %d is not JSON: %s", n + 1, l);
                n++;
        }
        free(text);
        return n;
}

static const char *field(cJSON *o, const char *key)
{
        cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);

        return cJSON_IsString(f) ? f->valuestring : NULL;
}

TEST(audit)
{
        struct bbt_accounts_settings s = { 0 };
        struct bbt_accounts *a;
        struct bbt_session ses;
        cJSON *l[16];
        struct stat stb;
        char err[512];
        char audit[512];
        /* 2026-12-06 12:00:00.250 UTC = 20:00:00.250 at +08:00 */
        int64_t t = 1796558400250LL, n;

        setup();
        snprintf(audit, sizeof(audit), "%s", path_in("audit.log"));
        s.audit_path = audit;
        umask(022);
        three_users("users");
        ASSERT_OK(bbt_accounts_open(path_in("users"), &s, &a, err, sizeof(err)));
        ASSERT_OK(stat(audit, &stb));
        ASSERT_EQ(stb.st_mode & 0777, 0640);
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "192.0.2.1", t, &ses, NULL));
        ASSERT_EQ(bbt_accounts_login(a, "admin", "nope", "192.0.2.1", t + 1, &ses, NULL), -EACCES);
        ASSERT_EQ(bbt_accounts_login(a, "ghost\xff\"\n", "nope", "192.0.2.1", t + 2, &ses, NULL), -EACCES);
        ASSERT_OK(bbt_accounts_audit(a, "admin", "192.0.2.1", "export", "schools.xlsx 2026-11-01..2026-11-30",
                                     t + 3));
        ASSERT_OK(bbt_accounts_audit(a, NULL, NULL, "denied", NULL, t + 4));
        ASSERT_OK(bbt_accounts_login(a, "admin", "admin password", "192.0.2.1", t + 5, &ses, NULL));
        bbt_accounts_logout(a, ses.token, "192.0.2.1", t + 6);

        /* Rotated away: a reload writes to a new file at the same path. */
        ASSERT_OK(rename(audit, path_in("audit.log.1")));
        ASSERT_OK(bbt_accounts_reload(a, err, sizeof(err)));
        ASSERT_OK(bbt_accounts_audit(a, "admin", "::1", "export", "summary.csv", t + 7));
        bbt_accounts_free(a);

        n = audit_lines(path_in("audit.log.1"), l, 16);
        ASSERT_EQ(n, 7);
        ASSERT_STR_EQ(field(l[0], "time"), "2026-12-06T20:00:00.250+08:00");
        ASSERT_STR_EQ(field(l[0], "user"), "admin");
        ASSERT_STR_EQ(field(l[0], "addr"), "192.0.2.1");
        ASSERT_STR_EQ(field(l[0], "event"), "login");
        ASSERT_STR_EQ(field(l[0], "detail"), "county");
        ASSERT_STR_EQ(field(l[1], "event"), "login_failed");
        ASSERT_STR_EQ(field(l[1], "detail"), "wrong password");
        ASSERT_STR_EQ(field(l[1], "time"), "2026-12-06T20:00:00.251+08:00");
        ASSERT_STR_EQ(field(l[2], "user"), "ghost\xEF\xBF\xBD\"\n");
        ASSERT_STR_EQ(field(l[2], "detail"), "unknown user");
        ASSERT_STR_EQ(field(l[3], "event"), "export");
        ASSERT_STR_EQ(field(l[3], "detail"), "schools.xlsx 2026-11-01..2026-11-30");
        ASSERT_STR_EQ(field(l[4], "user"), "-");
        ASSERT_STR_EQ(field(l[4], "addr"), "-");
        ASSERT_STR_EQ(field(l[4], "event"), "denied");
        ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l[4], "detail")));
        ASSERT_STR_EQ(field(l[6], "event"), "logout");
        ASSERT_STR_EQ(field(l[6], "time"), "2026-12-06T20:00:00.256+08:00");
        for (int i = 0; i < n; i++)
                cJSON_Delete(l[i]);
        n = audit_lines(audit, l, 16);
        ASSERT_EQ(n, 1);
        ASSERT_STR_EQ(field(l[0], "detail"), "summary.csv");
        cJSON_Delete(l[0]);

        /* An audit log that cannot be opened stops the start. */
        s.audit_path = path_in("no/such/dir/audit.log");
        ASSERT_EQ(bbt_accounts_open(path_in("users"), &s, &a, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "audit log ");
        bbt_test_passed();
}

/* ---- bbt-web-user ---- */

struct cli {
        int rc; /* exit status, or 128 + signal */
        char out[8192], err[8192];
};

/* Runs bbt-web-user with ARGS (NULL-terminated) and STDIN_TEXT (NULL: /dev/null) on standard input. */
static struct cli *cli(const char *stdin_text, ...)
{
        static struct cli res;
        char exe[512], *argv[24];
        const char *in = path_in("cli.in"), *out = path_in("cli.out"), *err = path_in("cli.err");
        va_list ap;
        int n = 0, status;
        pid_t pid;

        argv[n++] = (char *)bbt_test_exe("county/web", "bbt-web-user", exe, sizeof(exe));
        va_start(ap, stdin_text);
        for (const char *a; (a = va_arg(ap, const char *)) && n < 23;)
                argv[n++] = (char *)a;
        va_end(ap);
        argv[n] = NULL;
        bbt_test_write_file(in, stdin_text ? stdin_text : "");
        unlink(out);
        unlink(err);
        pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
                int i = open(stdin_text ? in : "/dev/null", O_RDONLY);
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

                /* No controlling terminal: the password cannot be asked for. */
                setsid();
                dup2(i, 0);
                dup2(o, 1);
                dup2(e, 2);
                execv(argv[0], argv);
                _exit(127);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        res.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        {
                char *o = bbt_test_slurp(out), *e = bbt_test_slurp(err);

                snprintf(res.out, sizeof(res.out), "%s", o);
                snprintf(res.err, sizeof(res.err), "%s", e);
                free(o);
                free(e);
        }
        bbt_test_check_sanitizers(err);
        return &res;
}

#define CLI_OK(r)                                                                                  \
        do {                                                                                       \
                struct cli *c_ = (r);                                                              \
                if (c_->rc != 0)                                                                   \
                        FAIL("%s: exit %d\nstdout: %s\nstderr: %s", #r, c_->rc, c_->out, c_->err); \
        } while (0)

/* Whether USER can log in with PW with the users file at PATH. */
static bool can_login(const char *path, const char *user, const char *pw)
{
        struct bbt_accounts *a;
        struct bbt_session s;
        char err[512];
        int r;

        if (bbt_accounts_open(path, NULL, &a, err, sizeof(err)) < 0)
                FAIL("open %s: %s", path, err);
        r = bbt_accounts_login(a, user, pw, "::1", 1000, &s, NULL);
        bbt_accounts_free(a);
        return r == 0;
}

static mode_t mode_of(const char *path)
{
        struct stat st;

        ASSERT_OK(stat(path, &st));
        return st.st_mode & 07777;
}

TEST(cli)
{
        char f[512];
        struct cli *r;
        struct stat st;
        char *text;

        setup();
        snprintf(f, sizeof(f), "%s", path_in("web-users"));
        umask(022);

        r = cli(NULL, "--help", NULL);
        ASSERT_EQ(r->rc, 0);
        ASSERT_STR_CONTAINS(r->out, "Usage: bbt-web-user");
        r = cli(NULL, "--version", NULL);
        ASSERT_EQ(r->rc, 0);
        ASSERT_STR_CONTAINS(r->out, "bbt-web-user " BBT_VERSION);

        /* A new file: 0640, one line per user. */
        CLI_OK(cli("admin password 1\n", "--file", f, "add", "admin", "--role", "county", "--password-stdin", NULL));
        ASSERT_EQ(mode_of(f), 0640);
        CLI_OK(cli("town password 1\r\n", "-f", f, "add", "town", "--role", "township", "--county", "510107",
                   "--township", "桂溪街道", "--password-stdin", NULL));
        r = cli("head password 1", "-f", f, "--password-stdin", "add", "head", "--role", "school", "--school",
                "3151010001", NULL);
        CLI_OK(r);
        ASSERT_STR_CONTAINS(r->out, "added head: school 3151010001");
        ASSERT_STR_CONTAINS(r->out, "systemctl reload bbt-web");
        ASSERT(can_login(f, "admin", "admin password 1"));
        ASSERT(can_login(f, "town", "town password 1"));
        ASSERT(can_login(f, "head", "head password 1"));

        r = cli(NULL, "-f", f, "list", NULL);
        CLI_OK(r);
        ASSERT_STR_CONTAINS(r->out, "admin                    county    (every county)\n");
        ASSERT_STR_CONTAINS(r->out, "town                     township  510107/桂溪街道\n");
        ASSERT_STR_CONTAINS(r->out, "head                     school    3151010001\n");
        ASSERT(!strstr(r->out, "$y$"));
        r = cli(NULL, "-f", f, "check", NULL);
        CLI_OK(r);
        ASSERT_STR_CONTAINS(r->out, "3 users (1 county, 1 township, 1 school)");

        /* Refused: nothing changes. */
        text = bbt_test_slurp(f);
        r = cli("another password\n", "-f", f, "add", "head", "--role", "school", "--school", "x1",
                "--password-stdin", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "user head already exists (line 3)");
        r = cli("short\n", "-f", f, "add", "new", "--role", "county", "--password-stdin", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "at least 10 characters");
        r = cli("new\n", "-f", f, "add", "new", "--role", "county", "--password-stdin", NULL);
        ASSERT_EQ(r->rc, 1);
        r = cli("newnewnewnew\n", "-f", f, "add", "newnewnewnew", "--role", "county", "--password-stdin", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "must not be the user name");
        r = cli("", "-f", f, "add", "new", "--role", "county", "--password-stdin", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "no password on standard input");
        r = cli(NULL, "-f", f, "add", "new", "--role", "county", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "use --password-stdin");
        r = cli("a good password\n", "-f", f, "passwd", "nobody", "--password-stdin", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "no user nobody in");
        r = cli(NULL, "-f", f, "del", "nobody", NULL);
        ASSERT_EQ(r->rc, 1);
        {
                char *now = bbt_test_slurp(f);

                ASSERT_STR_EQ(now, text);
                free(now);
        }
        free(text);

        /* Bad usage: 2. */
        static const char *const usage_cases[][9] = {
                { "add", "x", NULL },
                { "add", "x", "--role", "admin", NULL },
                { "add", "x", "--role", "county", "--school", "1", NULL },
                { "add", "x", "--role", "township", NULL },
                { "add", "x", "--role", "school", "--township", "t", "--school", "s", NULL },
                { "add", "x", "--role", "county", "--county", "12", NULL },
                { "add", "-x", NULL },
                { "add", "a:b", "--role", "county", NULL },
                { "passwd", NULL },
                { "list", "extra", NULL },
                { "frobnicate", NULL },
                { "del", "x", "--role", "county", NULL },
                { "list", "--password-stdin", NULL },
                { "--no-such-option", NULL },
                { NULL },
        };
        for (size_t i = 0; usage_cases[i][0]; i++) {
                const char *const *u = usage_cases[i];

                r = cli(NULL, "-f", f, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8]);
                if (r->rc != 2)
                        FAIL("usage case %zu (%s %s): exit %d, %s", i, u[0], u[1] ? u[1] : "", r->rc, r->err);
                ASSERT(r->err[0] != '\0');
        }
        r = cli(NULL, "-f", f, NULL);
        ASSERT_EQ(r->rc, 2);
        ASSERT_STR_CONTAINS(r->err, "which command?");

        /* passwd keeps the owner, group, comments and order; mode 0640. */
        text = bbt_test_slurp(f);
        {
                char with_comment[4096];

                snprintf(with_comment, sizeof(with_comment), "# the county's users\n%s# end\n", text);
                bbt_test_write_file(f, with_comment);
        }
        free(text);
        ASSERT_OK(chown(f, 1234, 5678));
        ASSERT_OK(chmod(f, 0600));
        CLI_OK(cli("head password 2\n", "-f", f, "passwd", "head", "--password-stdin", NULL));
        ASSERT_OK(stat(f, &st));
        ASSERT_EQ(st.st_uid, 1234);
        ASSERT_EQ(st.st_gid, 5678);
        ASSERT_EQ(st.st_mode & 07777, 0640);
        ASSERT(!can_login(f, "head", "head password 1"));
        ASSERT(can_login(f, "head", "head password 2"));
        text = bbt_test_slurp(f);
        ASSERT(strncmp(text, "# the county's users\nadmin:county::$y$", 38) == 0);
        ASSERT_STR_CONTAINS(text, "\nhead:school:3151010001:$y$");
        ASSERT(strlen(text) > 7 && strcmp(text + strlen(text) - 7, "\n# end\n") == 0);
        free(text);

        /* del */
        CLI_OK(cli(NULL, "-f", f, "del", "town", NULL));
        ASSERT_EQ(mode_of(f), 0640);
        r = cli(NULL, "-f", f, "list", NULL);
        ASSERT(!strstr(r->out, "town"));
        r = cli(NULL, "-f", f, "check", NULL);
        ASSERT_STR_CONTAINS(r->out, "2 users (1 county, 0 township, 1 school)");
        ASSERT(can_login(f, "admin", "admin password 1"));
        {
                /* No temporary file left behind. */
                char cmd[700];

                snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s | grep '^\\.web-users')\"", dir);
                ASSERT_EQ(system(cmd), 0);
        }

        /* check: every problem with its line; a file others can read is refused. */
        {
                const char *bad = put("bad-users", "a:county::x\nb:admin::x\n# fine\nc:school::x\n", 0640);

                r = cli(NULL, "-f", bad, "check", NULL);
                ASSERT_EQ(r->rc, 1);
                ASSERT_STR_CONTAINS(r->err, "/bad-users:1: password hash");
                ASSERT_STR_CONTAINS(r->err, "/bad-users:2: role \"admin\"");
                ASSERT_STR_CONTAINS(r->err, "/bad-users:4: school scope \"\"");
                ASSERT_STR_CONTAINS(r->err, "3 problems in ");
                r = cli("a good password\n", "-f", bad, "passwd", "a", "--password-stdin", NULL);
                ASSERT_EQ(r->rc, 1);
        }
        ASSERT_OK(chmod(f, 0644));
        r = cli(NULL, "-f", f, "check", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "mode 0644 lets every user read the password hashes");
        bbt_test_passed();
}

/* Reads from FD into BUF (appending at *LEN) until NEEDLE is in it or 10 s pass. */
static bool pty_wait(int fd, char *buf, size_t size, size_t *len, const char *needle)
{
        uint64_t end = bbt_test_now_ms() + 10000;

        while (!strstr(buf, needle)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (bbt_test_now_ms() > end || poll(&p, 1, 100) < 0)
                        return false;
                if (!(p.revents & (POLLIN | POLLHUP)))
                        continue;
                n = read(fd, buf + *len, size - 1 - *len);
                if (n <= 0)
                        return false; /* EIO: the child closed the terminal */
                *len += (size_t)n;
                buf[*len] = '\0';
        }
        return true;
}

TEST(cli_terminal)
{
        char f[512], exe[512], out[4096] = "";
        size_t len = 0;
        int master, status;
        pid_t pid;

        setup();
        snprintf(f, sizeof(f), "%s", path_in("web-users"));
        CLI_OK(cli("head password 1\n", "-f", f, "add", "head", "--role", "school", "--school", "3151010001",
                   "--password-stdin", NULL));
        bbt_test_exe("county/web", "bbt-web-user", exe, sizeof(exe));
        /* On a terminal of its own: asked twice, never echoed. */
        pid = forkpty(&master, NULL, NULL, NULL);
        ASSERT(pid >= 0);
        if (pid == 0) {
                execl(exe, exe, "-f", f, "passwd", "head", (char *)NULL);
                _exit(127);
        }
        if (!pty_wait(master, out, sizeof(out), &len, "New password for head: "))
                FAIL("no prompt: \"%s\"", out);
        ASSERT_EQ(write(master, "typed password 7\n", 17), 17);
        if (!pty_wait(master, out, sizeof(out), &len, "Retype it: "))
                FAIL("no second prompt: \"%s\"", out);
        ASSERT_EQ(write(master, "typed password 7\n", 17), 17);
        pty_wait(master, out, sizeof(out), &len, "\x01"); /* to the end */
        close(master);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                FAIL("%s: \"%s\"", bbt_test_status_text(status), out);
        ASSERT(!strstr(out, "typed password"));
        ASSERT_STR_CONTAINS(out, "new password for head");
        ASSERT(can_login(f, "head", "typed password 7"));
        bbt_test_passed();
}

TEST(cli_registry)
{
        char f[512], conf[512], schools[512], text[1024];
        struct cli *r;

        setup();
        snprintf(f, sizeof(f), "%s", path_in("web-users"));
        snprintf(schools, sizeof(schools), "%s",
                 put("schools.csv",
                     "县区代码,县区,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数,教室数\n"
                     "440106,天河区,石牌街道,2144010601,华阳小学,小学,城区,1200,30\n"
                     "440183,增城区,派潭镇,2144018301,派潭学校,初中,乡村,450,18\n",
                     0644));
        snprintf(text, sizeof(text), "[registry]\nschools = %s\n", schools);
        snprintf(conf, sizeof(conf), "%s", put("aggregator.conf", text, 0644));

        CLI_OK(cli("a long password\n", "-f", f, "-c", conf, "--registry-check", "add", "s1", "--role", "school",
                   "--school", "2144010601", "--password-stdin", NULL));
        CLI_OK(cli("a long password\n", "-f", f, "-c", conf, "--registry-check", "add", "t1", "--role", "township",
                   "--township", "派潭镇", "--county", "440183", "--password-stdin", NULL));
        CLI_OK(cli("a long password\n", "-f", f, "-c", conf, "--registry-check", "add", "c1", "--role", "county",
                   "--county", "440106", "--password-stdin", NULL));
        r = cli("a long password\n", "-f", f, "-c", conf, "--registry-check", "add", "s2", "--role", "school",
                "--school", "2144010699", "--password-stdin", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "school scope \"2144010699\" matches no school of the registry");
        r = cli("a long password\n", "-f", f, "-c", conf, "--registry-check", "add", "t2", "--role", "township",
                "--township", "派潭镇", "--county", "440106", "--password-stdin", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "township scope \"440106/派潭镇\" matches no school");
        /* Without the check, anything well-formed goes in; check finds it by line. */
        CLI_OK(cli("a long password\n", "-f", f, "add", "s2", "--role", "school", "--school", "2144010699",
                   "--password-stdin", NULL));
        r = cli(NULL, "-f", f, "-c", conf, "check", "--registry-check", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "/web-users:4: school scope \"2144010699\" matches no school");
        CLI_OK(cli(NULL, "-f", f, "del", "s2", NULL));
        r = cli(NULL, "-f", f, "-c", conf, "check", "--registry-check", NULL);
        CLI_OK(r);
        ASSERT_STR_CONTAINS(r->out, "3 users (1 county, 1 township, 1 school), each matching the registry");
        r = cli(NULL, "-f", f, "-c", path_in("none.conf"), "check", "--registry-check", NULL);
        ASSERT_EQ(r->rc, 1);
        ASSERT_STR_CONTAINS(r->err, "--registry-check: ");
        bbt_test_passed();
}
