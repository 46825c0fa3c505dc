/* Tests for county/web/accounts.c and bbt-web-user: the users file, hashes, logins, throttling, sessions, CSRF, reload, scopes, the audit log. */
/* bbt-test: label=unit timeout=120 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
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
                char user[16];

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
