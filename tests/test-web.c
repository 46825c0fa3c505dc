/* bbt-web over real HTTP on loopback: every endpoint against a simulated county's store, bodies equal to bbt-report's, errors, roles and scope, CSRF, downloads, static files, the OpenAPI document. */
/* bbt-test: label=integration timeout=120 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "accounts.h"
#include "bbt/log.h"
#include "daemon.h"
#include "dates.h"
#include "ingest.h"
#include "registry.h"
#include "reports.h"
#include "scenario.h"
#include "store.h"
#include "test.h"
#include "web.h"

#define COUNTY "510199"
#define N_SCHOOLS 7 /* schools 1 and 7 share the township 城关街道 */
#define PASSWORD "correct horse battery"

static struct {
        char dir[512];
        char conf[600], db[600], audit[600], log[600];
        struct sim_scenario sim;
        int32_t monday;
        int port;
        struct bbt_test_daemon web;
        char idle_terminal[40]; /* school 2's that is on and idle now */
        char exe[512];
} W;

/* ---- a small HTTP/1.1 client ---- */

struct reply {
        int status;
        char *head; /* the header lines */
        char *body;
        size_t len;
        cJSON *json; /* the body, if it parses */
};

static void reply_free(struct reply *r)
{
        free(r->head);
        free(r->body);
        cJSON_Delete(r->json);
        memset(r, 0, sizeof(*r));
}

/* Sends RAW as it is and reads the reply to the end (Connection: close). */
static void http_raw_(const char *raw, size_t raw_len, bool half_close, struct reply *ret);
static void http_raw(const char *raw, size_t raw_len, struct reply *ret)
{
        http_raw_(raw, raw_len, false, ret);
}

/* Garbage: sent, then the sending side closed, so the server sees its end. */
static void http_garbage(const char *raw, size_t raw_len)
{
        struct reply r;

        http_raw_(raw, raw_len, true, &r);
        reply_free(&r);
}

static void http_raw_(const char *raw, size_t raw_len, bool half_close, struct reply *ret)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)W.port) };
        char *buf = NULL, *split;
        size_t len = 0, cap = 0;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = { .tv_sec = 20 };

        memset(ret, 0, sizeof(*ret));
        ASSERT(fd >= 0);
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ASSERT_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
        ASSERT_EQ(write(fd, raw, raw_len), (ssize_t)raw_len);
        if (half_close)
                shutdown(fd, SHUT_WR);
        for (;;) {
                ssize_t n;

                if (cap - len < 65536) {
                        cap = cap ? cap * 2 : 131072;
                        buf = realloc(buf, cap);
                        ASSERT(buf);
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        split = strstr(buf, "\r\n\r\n");
        if (!split) {
                ret->status = 0;
                free(buf);
                return;
        }
        ret->head = strndup(buf, (size_t)(split - buf) + 2);
        ret->len = len - (size_t)(split + 4 - buf);
        ret->body = malloc(ret->len + 1);
        memcpy(ret->body, split + 4, ret->len);
        ret->body[ret->len] = '\0';
        sscanf(buf, "HTTP/1.1 %d", &ret->status);
        ret->json = cJSON_ParseWithLength(ret->body, ret->len);
        free(buf);
}

struct session {
        char cookie[128];
        char csrf[80];
};

static void http(const char *method, const char *path, const struct session *s, const char *csrf,
                 const char *type, const char *body, struct reply *ret)
{
        char *req = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&req, &len);

        fprintf(f, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
        if (s)
                fprintf(f, "Cookie: bbt_session=%s\r\n", s->cookie);
        if (csrf)
                fprintf(f, "X-CSRF-Token: %s\r\n", csrf);
        if (body)
                fprintf(f, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s", type, strlen(body), body);
        else
                fprintf(f, "\r\n");
        fclose(f);
        http_raw(req, len, ret);
        free(req);
}

static void get(const struct session *s, struct reply *ret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void get(const struct session *s, struct reply *ret, const char *fmt, ...)
{
        char path[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(path, sizeof(path), fmt, ap);
        va_end(ap);
        http("GET", path, s, NULL, NULL, NULL, ret);
}

/* The value of header NAME (case-insensitive) into BUF, or NULL. */
static const char *header(const struct reply *r, const char *name, char *buf, size_t size)
{
        size_t n = strlen(name);

        for (const char *line = r->head ? strstr(r->head, "\r\n") : NULL; line && line[2];
             line = strstr(line + 2, "\r\n")) {
                const char *l = line + 2;

                if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
                        const char *v = l + n + 1, *end = strstr(v, "\r\n");

                        while (*v == ' ')
                                v++;
                        snprintf(buf, size, "%.*s", (int)(end - v), v);
                        return buf;
                }
        }
        return NULL;
}

/* An error reply: STATUS, {"error":{"code":CODE,"message":...}} (and the parameter, if PARAM). */
static void expect_error(struct reply *r, int status, const char *code, const char *param)
{
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "parameter");
        char type[128];

        if (r->status != status)
                FAIL("expected %d, got %d: %s", status, r->status, r->body ? r->body : "(no reply)");
        ASSERT(header(r, "Content-Type", type, sizeof(type)));
        ASSERT_STR_EQ(type, "application/json");
        ASSERT(cJSON_IsString(c) && cJSON_IsString(m) && *m->valuestring);
        ASSERT_STR_EQ(c->valuestring, code);
        if (param) {
                ASSERT(cJSON_IsString(p));
                ASSERT_STR_EQ(p->valuestring, param);
        }
        reply_free(r);
}

static void login(const char *user, struct session *s)
{
        struct reply r;
        char body[256], cookie[256];
        const cJSON *csrf;

        snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"" PASSWORD "\"}", user);
        http("POST", "/api/v1/login", NULL, NULL, "application/json", body, &r);
        if (r.status != 200)
                FAIL("login %s: %d %s", user, r.status, r.body);
        ASSERT(header(&r, "Set-Cookie", cookie, sizeof(cookie)));
        ASSERT_STR_CONTAINS(cookie, "HttpOnly");
        ASSERT_STR_CONTAINS(cookie, "SameSite=Strict");
        ASSERT_STR_CONTAINS(cookie, "Path=/");
        ASSERT(!strstr(cookie, "Secure")); /* plain HTTP */
        ASSERT_EQ(sscanf(cookie, "bbt_session=%127[0-9a-f]", s->cookie), 1);
        csrf = cJSON_GetObjectItemCaseSensitive(r.json, "csrf_token");
        ASSERT(cJSON_IsString(csrf));
        snprintf(s->csrf, sizeof(s->csrf), "%s", csrf->valuestring);
        reply_free(&r);
}

/* ---- the world ---- */

static void write_users(void)
{
        char path[600], hash[256], text[2048];
        const struct sim_school *s1 = &W.sim.schools[0], *s2 = &W.sim.schools[1];

        ASSERT_OK(bbt_password_hash(PASSWORD, hash, sizeof(hash)));
        snprintf(text, sizeof(text),
                 "# bbt-web users\n"
                 "admin:county::%s\n"
                 "town:township:" COUNTY "/%s:%s\n"
                 "viewer:school:%s:%s\n",
                 hash, s1->township, hash, s2->code, hash);
        snprintf(path, sizeof(path), "%s/users", W.dir);
        bbt_test_write_file(path, text);
        ASSERT_OK(chmod(path, 0600));
}

/* Two terminals live now: one in use, one on and idle; the rest offline. */
static int live_cb(void *u, const struct bbt_store_terminal *t)
{
        struct bbt_store_terminal *v = u;

        /* The first of school 1's and of school 2's that reported. */
        for (int i = 0; i < 2; i++)
                if (v[i].id == 0 && strcmp(t->school, W.sim.schools[i].code) == 0)
                        v[i] = *t;
        return 0;
}

static void make_live(struct bbt_store *store)
{
        struct bbt_store_terminal t[2] = { 0 };
        int64_t now = bbt_test_wall_ms();

        ASSERT_OK(bbt_store_terminals_each(store, live_cb, t));
        ASSERT(t[0].id > 0 && t[1].id > 0);
        for (int i = 0; i < 2; i++) {
                t[i].online = true;
                t[i].online_since_ms = now - 3600000;
                t[i].last_seen_ms = now - 1000;
                snprintf(t[i].last_hb, sizeof(t[i].last_hb),
                         "{\"ts\":%lld,\"state\":\"%s\",\"uptime\":3600,\"cpu\":3.5,\"mem_available\":1000000,"
                         "\"disk_free\":2000000,\"spool_depth\":0,\"clock_synced\":true}",
                         (long long)(now - 1000), i == 0 ? "active" : "idle");
                ASSERT_OK(bbt_store_terminal_update(store, &t[i]));
        }
        snprintf(W.idle_terminal, sizeof(W.idle_terminal), "%s", t[1].terminal);
}

static void write_config(const char *extra)
{
        static char text[16384];

        snprintf(text, sizeof(text),
                 "[store]\npath = %s\n"
                 "[registry]\nschools = %s/schools.csv\nterminals = %s/terminals.csv\n"
                 "calendar = %s/calendar.csv\nbells = %s/bells.csv\n"
                 "[aggregator]\nlog_level = info\n"
                 "[web]\nlisten = 127.0.0.1:%d\nusers = %s/users\naudit_log = %s\nstatic_dir = %s/www\n"
                 "threads = 2\n%s",
                 W.db, W.dir, W.dir, W.dir, W.dir, W.port, W.dir, W.audit, W.dir, extra ? extra : "");
        bbt_test_write_file(W.conf, text);
}

static void setup(void)
{
        struct sim_options o = { .county = COUNTY, .schools = N_SCHOOLS, .terminals_per_school = 2, .seed = 5,
                                 .hb_interval_s = 900, .chunk_s = 900, .offset_min = 480, .history = true };
        struct bbt_import_errors errs;
        struct bbt_registry *reg;
        struct bbt_calendar *cal;
        struct bbt_ingest_settings set;
        struct bbt_store *store;
        struct bbt_ingest *in;
        char path[700], err[256];
        int64_t now_ms;

        bbt_log_set_level(3);
        snprintf(W.dir, sizeof(W.dir), "%s", bbt_test_tmp_init("web"));
        snprintf(W.conf, sizeof(W.conf), "%s/aggregator.conf", W.dir);
        snprintf(W.db, sizeof(W.db), "%s/aggregator.db", W.dir);
        snprintf(W.audit, sizeof(W.audit), "%s/audit.log", W.dir);
        snprintf(W.log, sizeof(W.log), "%s/web.log", W.dir);
        o.monday = W.monday = bbt_day_from_ymd(2026, 11, 23);
        now_ms = bbt_day_start_ms(W.monday + 7, 480) + 8 * 3600000LL;
        o.now_ms = now_ms;
        ASSERT_OK(sim_scenario_build(&o, &W.sim));
        ASSERT_OK(sim_write_registry(&W.sim, W.dir));
        ASSERT_STR_EQ(W.sim.schools[0].township, W.sim.schools[6].township);

        ASSERT_OK(bbt_registry_new(&reg));
        snprintf(path, sizeof(path), "%s/schools.csv", W.dir);
        if (bbt_registry_load_schools(reg, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        snprintf(path, sizeof(path), "%s/terminals.csv", W.dir);
        if (bbt_registry_load_terminals(reg, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        ASSERT_OK(bbt_calendar_new(&cal));
        snprintf(path, sizeof(path), "%s/calendar.csv", W.dir);
        if (bbt_calendar_load_days(cal, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        snprintf(path, sizeof(path), "%s/bells.csv", W.dir);
        if (bbt_calendar_load_bells(cal, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        ASSERT_OK(bbt_store_open(W.db, false, &store, err, sizeof(err)));
        bbt_ingest_settings_default(&set);
        if (bbt_ingest_new(store, &set, reg, cal, NULL, NULL, now_ms, &in, err, sizeof(err)) != 0)
                FAIL("bbt_ingest_new: %s", err);
        for (size_t i = 0; i < W.sim.n_terminals; i++) {
                const struct sim_terminal *t = &W.sim.terminals[i];

                for (size_t j = 0; j < t->n_msgs; j++) {
                        char topic[256];

                        sim_topic(&W.sim, t, t->msgs[j].channel, topic, sizeof(topic));
                        bbt_ingest_message(in, topic, t->msgs[j].json, t->msgs[j].len, false,
                                           now_ms - 60000 + (int64_t)j);
                }
        }
        ASSERT_OK(bbt_ingest_flush(in));
        bbt_ingest_free(in);
        make_live(store);
        bbt_store_close(store);
        bbt_registry_free(reg);
        bbt_calendar_free(cal);

        write_users();
        snprintf(path, sizeof(path), "%s/www", W.dir);
        ASSERT_OK(mkdir(path, 0755));
        snprintf(path, sizeof(path), "%s/www/index.html", W.dir);
        bbt_test_write_file(path, "<!doctype html><title>bbt</title>\n");
        snprintf(path, sizeof(path), "%s/www/js", W.dir);
        ASSERT_OK(mkdir(path, 0755));
        snprintf(path, sizeof(path), "%s/www/js/app.js", W.dir);
        bbt_test_write_file(path, "console.log('bbt');\n");
        snprintf(path, sizeof(path), "%s/www/js/leak.txt", W.dir);
        ASSERT_OK(symlink(W.conf, path)); /* a link out of the directory is never followed */
        snprintf(path, sizeof(path), "%s/secret.txt", W.dir);
        bbt_test_write_file(path, "not for the web\n");
        W.port = bbt_test_free_port();
        write_config(NULL);
        bbt_test_exe("county/web", "bbt-web", W.exe, sizeof(W.exe));
}

static void start(void)
{
        char *argv[] = { W.exe, (char *)"-c", W.conf, NULL };

        bbt_test_dump_on_failure(W.log);
        bbt_test_daemon_start(&W.web, "bbt-web", argv, W.log);
        BBT_WAIT_FOR(bbt_test_file_contains(W.log, "listening on"), 10000, "bbt-web did not start");
}

static void stop(void)
{
        bbt_test_daemon_term(&W.web, 10000);
        bbt_test_check_sanitizers(W.log);
        ASSERT(bbt_test_file_contains(W.log, "requests: requests="));
        sim_scenario_free(&W.sim);
        bbt_test_passed();
}

static void date(int32_t day, char *buf)
{
        bbt_day_format(day, buf, 16);
}

/* ---- bodies equal bbt-report's ---- */

/* J without its settings' "generated" (the instant each was made). */
static void drop_generated(cJSON *j)
{
        cJSON *settings = cJSON_GetObjectItemCaseSensitive(j, "settings");

        ASSERT(cJSON_GetObjectItemCaseSensitive(settings, "generated"));
        cJSON_DeleteItemFromObjectCaseSensitive(settings, "generated");
}

/* bbt-report KIND ARGS... --format json with the same configuration, parsed. */
static cJSON *bbt_report(const char *kind, const char *const *args)
{
        char exe[512], out[700], err[700];
        char *argv[16] = { (char *)bbt_test_exe("county/report", "bbt-report", exe, sizeof(exe)), (char *)kind,
                           (char *)"-c", W.conf, (char *)"--format", (char *)"json" };
        size_t n = 6;
        char *text;
        cJSON *j;
        int st;

        for (size_t i = 0; args[i] && n < 15; i++)
                argv[n++] = (char *)args[i];
        argv[n] = NULL;
        snprintf(out, sizeof(out), "%s/report.json", W.dir);
        snprintf(err, sizeof(err), "%s/report.err", W.dir);
        unlink(out);
        st = bbt_test_run(argv, out, err, 20000);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                bbt_test_dump_tail(err, 2000);
                FAIL("bbt-report %s: %s", kind, bbt_test_status_text(st));
        }
        text = bbt_test_slurp(out);
        j = cJSON_Parse(text);
        free(text);
        ASSERT(j);
        return j;
}

/* The API's KIND with QUERY equals bbt-report's with ARGS (NULL-terminated), but for the time each was generated. */
#define SAME(s, kind, query, ...) same_as_bbt_report(s, kind, query, (const char *const[]){ __VA_ARGS__, NULL })
static void same_as_bbt_report(const struct session *s, const char *kind, const char *query, const char *const *args)
{
        struct reply r;
        cJSON *want = bbt_report(kind, args);
        char type[128];

        get(s, &r, "/api/v1/reports/%s?%s", kind, query);
        if (r.status != 200)
                FAIL("%s?%s: %d %s", kind, query, r.status, r.body);
        ASSERT(header(&r, "Content-Type", type, sizeof(type)));
        ASSERT_STR_EQ(type, "application/json");
        ASSERT(r.json);
        drop_generated(r.json);
        drop_generated(want);
        if (!cJSON_Compare(r.json, want, true)) {
                char *a = cJSON_PrintUnformatted(r.json), *b = cJSON_PrintUnformatted(want);

                FAIL("%s?%s differs from bbt-report:\n  api: %.3000s\n  cli: %.3000s", kind, query, a, b);
        }
        cJSON_Delete(want);
        reply_free(&r);
}

/* Every kind as the county administrator (every school) and as the school
 * viewer (its school: bbt-report --school), both languages. */
TEST(reports_equal_bbt_report)
{
        struct session admin, viewer;
        const struct bbt_report_kind *k;
        char from[16], to[16], q[256], week[16];
        const char *school;

        setup();
        school = W.sim.schools[1].code;
        start();
        login("admin", &admin);
        login("viewer", &viewer);
        date(W.monday - 14, from);
        date(W.monday + 6, to);
        date(W.monday + 2, week);
        for (size_t i = 0; (k = bbt_report_kind_at(i)); i++) {
                if (k->needs & BBT_NEEDS_WEEK) {
                        snprintf(q, sizeof(q), "school=%s&week=%s", school, week);
                        SAME(&admin, k->name, q, "--school", school, "--week", week);
                        /* A school viewer's own school is the default. */
                        snprintf(q, sizeof(q), "week=%s&lang=en", week);
                        SAME(&viewer, k->name, q, "--school", school, "--week", week, "--lang", "en");
                        continue;
                }
                snprintf(q, sizeof(q), "from=%s&to=%s", from, to);
                SAME(&admin, k->name, q, "--from", from, "--to", to);
                snprintf(q, sizeof(q), "from=%s&to=%s&lang=en&county=" COUNTY, from, to);
                SAME(&admin, k->name, q, "--from", from, "--to", to, "--lang", "en", "--county", COUNTY);
                if (strcmp(k->name, "loss") == 0)
                        continue; /* store-wide: county administrators only */
                snprintf(q, sizeof(q), "from=%s&to=%s", from, to);
                SAME(&viewer, k->name, q, "--from", from, "--to", to, "--school", school);
        }
        stop();
}

/* ---- errors: each a JSON error with its code, counted; the server goes on ---- */

static long long counter(const struct session *admin, const char *name)
{
        struct reply r;
        const cJSON *v;
        long long n;

        get(admin, &r, "/api/v1/server");
        ASSERT_EQ(r.status, 200);
        v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r.json, "requests"), name);
        ASSERT(cJSON_IsNumber(v));
        n = (long long)v->valuedouble;
        reply_free(&r);
        return n;
}

TEST(errors)
{
        struct session admin, viewer, gone;
        struct reply r;
        long long bad0, req0;
        char big[20000], allow[64];
        int i;

        setup();
        start();
        login("admin", &admin);
        bad0 = counter(&admin, "bad_request");
        req0 = counter(&admin, "requests");

        /* 400, naming the parameter. */
        get(&admin, &r, "/api/v1/reports/summary?county=5101");
        expect_error(&r, 400, "bad_parameter", "county");
        get(&admin, &r, "/api/v1/reports/summary?school=a%%20b");
        expect_error(&r, 400, "bad_parameter", "school");
        get(&admin, &r, "/api/v1/reports/summary?from=2026-02-30");
        expect_error(&r, 400, "bad_parameter", "from");
        get(&admin, &r, "/api/v1/reports/summary?to=yesterday");
        expect_error(&r, 400, "bad_parameter", "to");
        get(&admin, &r, "/api/v1/reports/summary?from=2026-11-20&to=2026-11-01");
        expect_error(&r, 400, "bad_parameter", "from");
        get(&admin, &r, "/api/v1/reports/summary?week=2026-11-23&from=2026-11-01");
        expect_error(&r, 400, "bad_parameter", "week");
        get(&admin, &r, "/api/v1/reports/summary?lang=fr");
        expect_error(&r, 400, "bad_parameter", "lang");
        get(&admin, &r, "/api/v1/reports/summary?format=pdf");
        expect_error(&r, 400, "bad_parameter", "format");
        get(&admin, &r, "/api/v1/reports/summary?colour=blue");
        expect_error(&r, 400, "bad_parameter", "colour");
        get(&admin, &r, "/api/v1/reports/summary?lang=zh&lang=en");
        expect_error(&r, 400, "bad_parameter", "lang");
        get(&admin, &r, "/api/v1/reports/record?week=2026-11-23");
        expect_error(&r, 400, "bad_parameter", "school");
        get(&admin, &r, "/api/v1/terminals/%s/bad.id", W.sim.schools[0].code);
        expect_error(&r, 400, "bad_parameter", "terminal");
        get(&admin, &r, "/api/v1/terminals/%s/%s?date=2026-13-01", W.sim.schools[0].code, W.sim.terminals[0].id);
        expect_error(&r, 400, "bad_parameter", "date");
        ASSERT_EQ(counter(&admin, "bad_request") - bad0, 13);

        /* 404 and 405. */
        get(&admin, &r, "/api/v1/reports/nosuch");
        expect_error(&r, 404, "not_found", NULL);
        get(&admin, &r, "/api/v1/nosuch");
        expect_error(&r, 404, "not_found", NULL);
        get(&admin, &r, "/api/v2/reports/summary");
        expect_error(&r, 404, "not_found", NULL);
        get(&admin, &r, "/api/v1/terminals/%s/NOSUCH", W.sim.schools[0].code);
        expect_error(&r, 404, "not_found", NULL);
        http("POST", "/api/v1/reports/summary", &admin, admin.csrf, "application/json", "{}", &r);
        ASSERT(header(&r, "Allow", allow, sizeof(allow)));
        ASSERT_STR_EQ(allow, "GET, HEAD");
        expect_error(&r, 405, "method_not_allowed", NULL);
        http("DELETE", "/api/v1/me", &admin, admin.csrf, NULL, NULL, &r);
        expect_error(&r, 405, "method_not_allowed", NULL);
        get(NULL, &r, "/api/v1/login");
        expect_error(&r, 405, "method_not_allowed", NULL);
        http("PUT", "/index.html", NULL, NULL, "text/plain", "x", &r);
        expect_error(&r, 405, "method_not_allowed", NULL);

        /* 401: no session, a wrong one, a failed login. */
        get(NULL, &r, "/api/v1/reports/summary");
        expect_error(&r, 401, "unauthorized", NULL);
        get(NULL, &r, "/api/v1/me");
        expect_error(&r, 401, "unauthorized", NULL);
        http("GET", "/api/v1/status", &(struct session){ .cookie = "00ff" }, NULL, NULL, NULL, &r);
        expect_error(&r, 401, "unauthorized", NULL);
        http("POST", "/api/v1/login", NULL, NULL, "application/json", "{\"user\":\"admin\",\"password\":\"wrong\"}",
             &r);
        expect_error(&r, 401, "login_failed", NULL);
        http("POST", "/api/v1/login", NULL, NULL, "application/json", "{\"user\":\"nobody\",\"password\":\"x\"}", &r);
        expect_error(&r, 401, "login_failed", NULL);
        http("POST", "/api/v1/login", NULL, NULL, "application/json", "not json", &r);
        expect_error(&r, 400, "bad_parameter", NULL);
        http("POST", "/api/v1/login", NULL, NULL, "text/plain", "user=admin", &r);
        expect_error(&r, 400, "bad_parameter", NULL);
        /* Failed logins are throttled (login_burst 5), then even the right password waits. */
        for (i = 0; i < 8; i++) {
                http("POST", "/api/v1/login", NULL, NULL, "application/json",
                     "{\"user\":\"town\",\"password\":\"guess\"}", &r);
                if (r.status == 429)
                        break;
                expect_error(&r, 401, "login_failed", NULL);
        }
        ASSERT_EQ(i, 5);
        ASSERT(header(&r, "Retry-After", allow, sizeof(allow)));
        ASSERT_GT(atoi(allow), 0);
        expect_error(&r, 429, "throttled", NULL);
        http("POST", "/api/v1/login", NULL, NULL, "application/json",
             "{\"user\":\"town\",\"password\":\"" PASSWORD "\"}", &r);
        expect_error(&r, 429, "throttled", NULL);
        ASSERT(bbt_test_file_contains(W.audit, "\"login_failed\""));
        /* A form works as well as JSON. */
        http("POST", "/api/v1/login", NULL, NULL, "application/x-www-form-urlencoded",
             "user=viewer&password=correct+horse%20battery", &r);
        ASSERT_EQ(r.status, 200);
        reply_free(&r);

        /* 403: CSRF missing or wrong on a state change. */
        login("viewer", &viewer);
        http("POST", "/api/v1/logout", &viewer, NULL, "application/json", "{}", &r);
        expect_error(&r, 403, "csrf", NULL);
        http("POST", "/api/v1/logout", &viewer, admin.csrf, "application/json", "{}", &r);
        expect_error(&r, 403, "csrf", NULL);
        get(&viewer, &r, "/api/v1/me");
        ASSERT_EQ(r.status, 200);
        reply_free(&r);
        gone = viewer;
        http("POST", "/api/v1/logout", &viewer, viewer.csrf, "application/json", "{}", &r);
        ASSERT_EQ(r.status, 200);
        reply_free(&r);
        get(&gone, &r, "/api/v1/me");
        expect_error(&r, 401, "unauthorized", NULL);
        ASSERT(bbt_test_file_contains(W.audit, "\"logout\""));
        ASSERT(bbt_test_file_contains(W.audit, "\"denied\""));

        /* 413, and requests that are not HTTP: the server goes on. */
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        http("POST", "/api/v1/login", NULL, NULL, "application/json", big, &r);
        expect_error(&r, 413, "too_large", NULL);
        http_garbage("GARBAGE\r\n\r\n", 11);
        http_garbage("GET /api/v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 55);
        http_garbage("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11); /* a TLS hello */
        http_garbage("GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX: \x01\x02\xff\r\n", 38); /* cut short */
        bbt_test_daemon_alive(&W.web);
        get(&admin, &r, "/api/v1/me");
        ASSERT_EQ(r.status, 200);
        reply_free(&r);
        /* Every request above was counted. */
        ASSERT_GE(counter(&admin, "requests") - req0, 35);
        ASSERT_GE(counter(&admin, "unauthorized"), 6);
        ASSERT_GE(counter(&admin, "forbidden"), 2);
        ASSERT_GE(counter(&admin, "not_found"), 4);
        ASSERT_GE(counter(&admin, "method_not_allowed"), 4);
        ASSERT_GE(counter(&admin, "too_large"), 1);
        ASSERT_EQ(counter(&admin, "throttled"), 2);
        /* The garbage was connections that never became requests (at least two of the four). */
        ASSERT_GE(counter(&admin, "connections"), counter(&admin, "requests") + 1);
        stop();
}

/* ---- scope: each role sees exactly its schools, on every endpoint ---- */

/* Whether BODY names any school of the county other than those in KEEP (a
 * bit per school index). */
static void only_schools(const struct reply *r, unsigned keep, const char *what)
{
        for (size_t i = 0; i < W.sim.n_schools; i++) {
                bool named = strstr(r->body, W.sim.schools[i].code) != NULL;

                if (!(keep & (1u << i)) && named)
                        FAIL("%s shows school %s, outside the scope: %.2000s", what, W.sim.schools[i].code, r->body);
        }
}

static void scope_lists(const struct session *s, unsigned keep, bool sees_loss)
{
        const struct bbt_report_kind *k;
        struct reply r;
        char week[16];

        date(W.monday, week);
        for (size_t i = 0; (k = bbt_report_kind_at(i)); i++) {
                if (k->needs & BBT_NEEDS_SCHOOL)
                        continue;
                get(s, &r, "/api/v1/reports/%s?week=%s", k->name, week);
                if (strcmp(k->name, "loss") == 0 && !sees_loss) {
                        expect_error(&r, 403, "forbidden", NULL);
                        continue;
                }
                if (r.status != 200)
                        FAIL("%s: %d %s", k->name, r.status, r.body);
                only_schools(&r, keep, k->name);
                reply_free(&r);
                get(s, &r, "/api/v1/reports/%s?week=%s&format=csv", k->name, week);
                ASSERT_EQ(r.status, 200);
                only_schools(&r, keep, k->name);
                reply_free(&r);
        }
        get(s, &r, "/api/v1/status");
        ASSERT_EQ(r.status, 200);
        only_schools(&r, keep, "status");
        reply_free(&r);
}

/* Every school outside KEEP: 403 on every endpoint that takes a school. */
static void scope_refuses(const struct session *s, unsigned keep)
{
        struct reply r;
        char week[16];

        date(W.monday, week);
        for (size_t i = 0; i < W.sim.n_schools; i++) {
                const char *code = W.sim.schools[i].code;
                const struct bbt_report_kind *k;

                if (keep & (1u << i))
                        continue;
                for (size_t j = 0; (k = bbt_report_kind_at(j)); j++) {
                        get(s, &r, "/api/v1/reports/%s?school=%s&week=%s", k->name, code, week);
                        expect_error(&r, 403, "forbidden", NULL);
                }
                get(s, &r, "/api/v1/status?school=%s", code);
                expect_error(&r, 403, "forbidden", NULL);
                get(s, &r, "/api/v1/terminals/%s/%s", code, W.sim.terminals[2 * i].id);
                expect_error(&r, 403, "forbidden", NULL);
                get(s, &r, "/api/v1/terminals/%s/NOSUCH", code);
                expect_error(&r, 403, "forbidden", NULL); /* not 404: nothing is told about it */
        }
        get(s, &r, "/api/v1/reports/summary?county=510100");
        if (r.status != 403) /* a county admin of every county sees an empty county */
                ASSERT_EQ(r.status, 200);
        reply_free(&r);
        get(s, &r, "/api/v1/status?school=NOSUCHSCHOOL");
        ASSERT(r.status == 403 || r.status == 200);
        if (r.status == 200)
                only_schools(&r, 0, "status of an unknown school");
        reply_free(&r);
}

TEST(scope)
{
        struct session admin, town, viewer;
        struct reply r;
        const cJSON *scope;

        setup();
        start();
        login("admin", &admin);
        login("town", &town);
        login("viewer", &viewer);

        get(&viewer, &r, "/api/v1/me");
        ASSERT_EQ(r.status, 200);
        scope = cJSON_GetObjectItemCaseSensitive(r.json, "scope");
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(scope, "role")->valuestring, "school");
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(scope, "school")->valuestring, W.sim.schools[1].code);
        reply_free(&r);

        /* The county administrator sees every school. */
        get(&admin, &r, "/api/v1/reports/schools?week=2026-11-23");
        ASSERT_EQ(r.status, 200);
        for (size_t i = 0; i < W.sim.n_schools; i++)
                ASSERT(strstr(r.body, W.sim.schools[i].code));
        reply_free(&r);
        scope_lists(&admin, ~0u, true);

        /* The township viewer: schools 1 and 7 (城关街道). */
        scope_lists(&town, 1u << 0 | 1u << 6, false);
        scope_refuses(&town, 1u << 0 | 1u << 6);
        get(&town, &r, "/api/v1/reports/schools?week=2026-11-23");
        ASSERT(strstr(r.body, W.sim.schools[0].code) && strstr(r.body, W.sim.schools[6].code));
        reply_free(&r);

        /* The school viewer: school 2 only. */
        scope_lists(&viewer, 1u << 1, false);
        scope_refuses(&viewer, 1u << 1);
        get(&viewer, &r, "/api/v1/reports/terminals?week=2026-11-23&school=%s", W.sim.schools[1].code);
        ASSERT_EQ(r.status, 200);
        ASSERT(strstr(r.body, W.sim.schools[1].code));
        reply_free(&r);
        get(&viewer, &r, "/api/v1/server");
        expect_error(&r, 403, "forbidden", NULL);
        stop();
}

/* ---- downloads ---- */

static void download(const struct session *s, const char *query, const char *type, const char *file)
{
        struct reply r;
        char got[256];

        get(s, &r, "/api/v1/reports/%s", query);
        if (r.status != 200)
                FAIL("%s: %d %s", query, r.status, r.body);
        ASSERT(header(&r, "Content-Type", got, sizeof(got)));
        ASSERT_STR_EQ(got, type);
        ASSERT(header(&r, "Content-Disposition", got, sizeof(got)));
        ASSERT_STR_EQ(got, file);
        ASSERT_GT(r.len, 100);
        if (strstr(type, "spreadsheetml"))
                ASSERT(memcmp(r.body, "PK\x03\x04", 4) == 0); /* a zip: the workbook */
        reply_free(&r);
}

TEST(downloads)
{
        struct session viewer;
        char want[256], path[600];
        const char *code;
        struct dirent *e;
        DIR *d;

        setup();
        code = W.sim.schools[1].code;
        snprintf(path, sizeof(path), "%s/tmp", W.dir);
        ASSERT_OK(mkdir(path, 0700));
        setenv("TMPDIR", path, 1); /* the daemon's private temporary files go there */
        start();
        login("viewer", &viewer);
        snprintf(want, sizeof(want), "attachment; filename=\"bbt-schools-%s-2026-11-23_2026-11-29.csv\"", code);
        download(&viewer, "schools?week=2026-11-23&format=csv", "text/csv; charset=utf-8", want);
        snprintf(want, sizeof(want), "attachment; filename=\"bbt-record-%s-2026-11-23_2026-11-29.xlsx\"", code);
        download(&viewer, "record?week=2026-11-25&format=xlsx",
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", want);
        snprintf(want, sizeof(want), "attachment; filename=\"bbt-summary-%s-2026-11-23_2026-11-29.txt\"", code);
        download(&viewer, "summary?week=2026-11-23&format=table&lang=en", "text/plain; charset=utf-8", want);
        /* Each export is in the audit log, with its user. */
        ASSERT_EQ(bbt_test_count_in_file(W.audit, "\"export\""), 3);
        ASSERT(bbt_test_file_contains(W.audit, "\"viewer\""));
        ASSERT(bbt_test_file_contains(W.audit, "format=xlsx"));
        /* Nothing is left in its temporary directory. */
        snprintf(path, sizeof(path), "%s/tmp", W.dir);
        d = opendir(path);
        ASSERT(d);
        while ((e = readdir(d)))
                ASSERT(strncmp(e->d_name, "bbt-web-", 8) != 0);
        closedir(d);
        stop();
}

/* ---- a terminal's day, the live status ---- */

TEST(terminal_and_status)
{
        struct session admin, viewer;
        struct reply r;
        const struct sim_terminal *t = NULL;
        const cJSON *tl, *s, *c, *per;
        char day[16];
        bool found_active = false;

        setup();
        for (size_t i = 0; i < W.sim.n_terminals; i++)
                if (strcmp(W.sim.terminals[i].id, W.idle_terminal) == 0 && W.sim.terminals[i].school == 1)
                        t = &W.sim.terminals[i];
        ASSERT(t);
        start();
        login("admin", &admin);
        login("viewer", &viewer);
        date(W.monday, day);
        get(&viewer, &r, "/api/v1/terminals/%s/%s?date=%s", W.sim.schools[t->school].code, t->id, day);
        if (r.status != 200)
                FAIL("%d %s", r.status, r.body);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(r.json, "terminal")->valuestring, t->id);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(r.json, "date")->valuestring, day);
        ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "registered")));
        ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "online")));
        ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r.json, "last_heard")));
        ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r.json, "room")));
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r.json, "health"), "state")
                              ->valuestring,
                      "idle");
        tl = cJSON_GetObjectItemCaseSensitive(r.json, "timeline");
        ASSERT(cJSON_IsArray(tl));
        cJSON_ArrayForEach(s, tl)
        {
                const char *st = cJSON_GetObjectItemCaseSensitive(s, "state")->valuestring;

                ASSERT(strcmp(st, "standby") == 0 || strcmp(st, "idle") == 0 || strcmp(st, "active") == 0);
                ASSERT_STR_CONTAINS(cJSON_GetObjectItemCaseSensitive(s, "start")->valuestring, day);
                found_active |= strcmp(st, "active") == 0;
        }
        if (t->profile == SIM_TOUCH || t->profile == SIM_VIDEO)
                ASSERT(found_active);
        per = cJSON_GetObjectItemCaseSensitive(r.json, "peripherals");
        ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(per, "present")));
        ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(per, "missing")));
        ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(r.json, "faults")));
        reply_free(&r);

        /* The live status: terminal 1 in use, terminal 3 on, the rest offline or never. */
        get(&admin, &r, "/api/v1/status");
        ASSERT_EQ(r.status, 200);
        c = cJSON_GetObjectItemCaseSensitive(r.json, "totals");
        ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(c, "in_use")->valueint, 1);
        ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(c, "on")->valueint, 1);
        ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(c, "terminals")->valueint, (int)W.sim.n_terminals);
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "schools")), N_SCHOOLS);
        reply_free(&r);
        get(&viewer, &r, "/api/v1/status");
        ASSERT_EQ(r.status, 200);
        c = cJSON_GetObjectItemCaseSensitive(r.json, "totals");
        ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(c, "on")->valueint, 1);
        ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(c, "in_use")->valueint, 0);
        ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(c, "terminals")->valueint, 2);
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "schools")), 1);
        reply_free(&r);
        get(&admin, &r, "/api/v1/reports");
        ASSERT_EQ(r.status, 200);
        {
                size_t kinds = 0;

                while (bbt_report_kind_at(kinds))
                        kinds++;
                ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "reports")), (int)kinds);
        }
        reply_free(&r);
        stop();
}

/* ---- static files ---- */

TEST(static_files)
{
        struct reply r;
        char type[128];

        setup();
        start();
        get(NULL, &r, "/");
        ASSERT_EQ(r.status, 200);
        ASSERT(header(&r, "Content-Type", type, sizeof(type)));
        ASSERT_STR_EQ(type, "text/html; charset=utf-8");
        ASSERT_STR_CONTAINS(r.body, "<title>bbt</title>");
        reply_free(&r);
        get(NULL, &r, "/js/app.js");
        ASSERT_EQ(r.status, 200);
        ASSERT(header(&r, "Content-Type", type, sizeof(type)));
        ASSERT_STR_EQ(type, "text/javascript; charset=utf-8");
        reply_free(&r);
        get(NULL, &r, "/js/");
        expect_error(&r, 404, "not_found", NULL);
        /* Nothing outside the directory, however asked. */
        get(NULL, &r, "/../secret.txt");
        expect_error(&r, 404, "not_found", NULL);
        get(NULL, &r, "/js/../../secret.txt");
        expect_error(&r, 404, "not_found", NULL);
        get(NULL, &r, "/%%2e%%2e/secret.txt");
        expect_error(&r, 404, "not_found", NULL);
        get(NULL, &r, "/js/leak.txt");
        expect_error(&r, 404, "not_found", NULL);
        get(NULL, &r, "//etc/passwd");
        expect_error(&r, 404, "not_found", NULL);
        get(NULL, &r, "/nosuch.html");
        expect_error(&r, 404, "not_found", NULL);
        stop();
}

/* ---- the command line ---- */

TEST(command_line)
{
        char out[700], err[700], *text;
        char *check[] = { W.exe, (char *)"-c", W.conf, (char *)"--check-config", NULL };
        char *help[] = { W.exe, (char *)"--help", NULL };
        char *version[] = { W.exe, (char *)"--version", NULL };

        setup();
        snprintf(out, sizeof(out), "%s/out", W.dir);
        snprintf(err, sizeof(err), "%s/err", W.dir);
        ASSERT_EQ(bbt_test_run(check, out, err, 10000), 0);
        ASSERT(bbt_test_file_contains(out, "[web]"));
        ASSERT(bbt_test_file_contains(out, "session_lifetime = 30m"));
        ASSERT_EQ(bbt_test_run(help, out, err, 10000), 0);
        ASSERT(bbt_test_file_contains(out, "--check-config"));
        ASSERT_EQ(bbt_test_run(version, out, err, 10000), 0);
        ASSERT(bbt_test_file_contains(out, "bbt-web " BBT_VERSION));

        /* Bad: each refused with exit 2 and the file, the key and why. */
        write_config("tls_cert = /nonexistent.pem\n");
        ASSERT_EQ(WEXITSTATUS(bbt_test_run(check, out, err, 10000)), 2);
        ASSERT(bbt_test_file_contains(err, "tls_cert and tls_key go together"));
        write_config("tls_cert = /nonexistent.pem\ntls_key = /nonexistent.key\n");
        ASSERT_EQ(WEXITSTATUS(bbt_test_run(check, out, err, 10000)), 2);
        ASSERT(bbt_test_file_contains(err, "/nonexistent.pem"));
        bbt_test_write_file(W.conf, "[web]\nlisten = localhost\n");
        ASSERT_EQ(WEXITSTATUS(bbt_test_run(check, out, err, 10000)), 2);
        ASSERT(bbt_test_file_contains(err, "[web] listen: localhost: expected HOST:PORT"));
        bbt_test_write_file(W.conf, "[web]\nthreads = 0\n");
        ASSERT_EQ(WEXITSTATUS(bbt_test_run(check, out, err, 10000)), 2);
        ASSERT(bbt_test_file_contains(err, "threads"));
        write_config(NULL);
        snprintf(out, sizeof(out), "%s/users", W.dir);
        ASSERT_OK(chmod(out, 0644)); /* readable by others: refused */
        snprintf(out, sizeof(out), "%s/out", W.dir);
        ASSERT_EQ(WEXITSTATUS(bbt_test_run(check, out, err, 10000)), 2);
        text = bbt_test_slurp(err);
        ASSERT_STR_CONTAINS(text, "users");
        free(text);
        sim_scenario_free(&W.sim);
        bbt_test_passed();
}

/* ---- the OpenAPI document: every route in it, and only those ---- */

static bool has_op(const cJSON *paths, const char *path, const char *method)
{
        char m[8];
        size_t i;

        for (i = 0; method[i] && i < sizeof(m) - 1; i++)
                m[i] = (char)(method[i] | 0x20);
        m[i] = '\0';
        return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(paths, path), m) != NULL;
}

/* Every "$ref" under J points at something in DOC ("#/a/b/c"). */
static void refs_resolve(const cJSON *doc, const cJSON *j)
{
        const cJSON *c;

        if (cJSON_IsString(j) && j->string && strcmp(j->string, "$ref") == 0) {
                char path[256], *save = NULL;
                const cJSON *at = doc;

                ASSERT(strncmp(j->valuestring, "#/", 2) == 0);
                snprintf(path, sizeof(path), "%s", j->valuestring + 2);
                for (char *seg = strtok_r(path, "/", &save); seg && at; seg = strtok_r(NULL, "/", &save))
                        at = cJSON_GetObjectItemCaseSensitive(at, seg);
                if (!at)
                        FAIL("docs/openapi.json: $ref %s points at nothing", j->valuestring);
                return;
        }
        cJSON_ArrayForEach(c, j)
        {
                refs_resolve(doc, c);
        }
}

TEST(openapi)
{
        char path[600], *text;
        const struct bbt_web_route_info *rt;
        const struct bbt_report_kind *k;
        cJSON *doc, *paths, *p, *op;
        size_t n_ops = 0, n_routes = 0;

        snprintf(path, sizeof(path), "%s/../docs/openapi.json", bbt_test_srcdir());
        text = bbt_test_slurp(path);
        doc = cJSON_Parse(text);
        free(text);
        if (!doc)
                FAIL("%s does not parse as JSON", path);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "openapi")->valuestring, "3.0.3");
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "info"), "version")
                              ->valuestring,
                      BBT_VERSION);
        paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
        for (size_t i = 0; (rt = bbt_web_route_at(i)); i++) {
                if (strcmp(rt->path, "/api/v1/reports/{kind}") == 0) {
                        for (size_t j = 0; (k = bbt_report_kind_at(j)); j++) {
                                char one[128];

                                snprintf(one, sizeof(one), "/api/v1/reports/%s", k->name);
                                if (!has_op(paths, one, rt->method))
                                        FAIL("docs/openapi.json: no %s %s", rt->method, one);
                                n_routes++;
                        }
                        continue;
                }
                if (!has_op(paths, rt->path, rt->method))
                        FAIL("docs/openapi.json: no %s %s", rt->method, rt->path);
                n_routes++;
        }
        /* ... and nothing the server does not have. */
        cJSON_ArrayForEach(p, paths)
        {
                cJSON_ArrayForEach(op, p)
                {
                        const cJSON *responses = cJSON_GetObjectItemCaseSensitive(op, "responses");

                        if (strcmp(op->string, "parameters") == 0)
                                continue;
                        ASSERT(cJSON_IsObject(responses));
                        ASSERT(cJSON_GetObjectItemCaseSensitive(op, "summary"));
                        n_ops++;
                }
        }
        if (n_ops != n_routes)
                FAIL("docs/openapi.json has %zu operations, the server %zu routes", n_ops, n_routes);
        refs_resolve(doc, doc);
        cJSON_Delete(doc);
}

/* ---- HTTPS built in ---- */

TEST(tls)
{
        char cert[700], key[700], out[700], err[700], script[2048], port[16];
        char *openssl[] = { (char *)"/usr/bin/openssl", (char *)"req", (char *)"-x509", (char *)"-newkey",
                            (char *)"ec", (char *)"-pkeyopt", (char *)"ec_paramgen_curve:P-256", (char *)"-nodes",
                            (char *)"-keyout", key, (char *)"-out", cert, (char *)"-days", (char *)"2",
                            (char *)"-subj", (char *)"/CN=127.0.0.1", NULL };
        char *check[] = { W.exe, (char *)"-c", W.conf, (char *)"--check-config", NULL };
        char *py[] = { (char *)"/usr/bin/python3", (char *)"-c", script, port, NULL };
        char extra[1600];
        struct reply r;

        setup();
        snprintf(cert, sizeof(cert), "%s/web.crt", W.dir);
        snprintf(key, sizeof(key), "%s/web.key", W.dir);
        snprintf(out, sizeof(out), "%s/out", W.dir);
        snprintf(err, sizeof(err), "%s/err", W.dir);
        if (access(openssl[0], X_OK) < 0 || access(py[0], X_OK) < 0)
                FAIL("needs openssl and python3 (scripts/install-deps)");
        ASSERT_EQ(bbt_test_run(openssl, out, err, 20000), 0);
        snprintf(extra, sizeof(extra), "tls_cert = %s\ntls_key = %s\n", cert, key);
        write_config(extra);
        /* A key others can read is refused. */
        ASSERT_OK(chmod(key, 0644));
        ASSERT_EQ(WEXITSTATUS(bbt_test_run(check, out, err, 10000)), 2);
        ASSERT(bbt_test_file_contains(err, "readable by other users"));
        ASSERT_OK(chmod(key, 0600));
        ASSERT_EQ(bbt_test_run(check, out, err, 10000), 0);
        start();
        /* Plain HTTP on the HTTPS port gets no HTTP answer. */
        http_raw("GET /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 54, &r);
        ASSERT_EQ(r.status, 0);
        reply_free(&r);
        /* Over TLS (python3's ssl, certificate not checked: it is self-signed): the cookie is Secure. */
        snprintf(port, sizeof(port), "%d", W.port);
        snprintf(script, sizeof(script),
                 "import http.client, json, ssl, sys\n"
                 "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
                 "c = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=10)\n"
                 "c.request('POST', '/api/v1/login', json.dumps({'user': 'viewer', 'password': '" PASSWORD "'}),\n"
                 "          {'Content-Type': 'application/json'})\n"
                 "r = c.getresponse(); b = json.loads(r.read()); cookie = r.getheader('Set-Cookie')\n"
                 "assert r.status == 200, (r.status, b)\n"
                 "assert 'Secure' in cookie and 'HttpOnly' in cookie, cookie\n"
                 "assert r.getheader('Strict-Transport-Security'), r.getheaders()\n"
                 "c.request('GET', '/api/v1/status', headers={'Cookie': cookie.split(';')[0]})\n"
                 "r = c.getresponse(); b = json.loads(r.read())\n"
                 "assert r.status == 200 and b['totals']['terminals'] == 2, (r.status, b)\n"
                 "print('tls ok')\n");
        if (bbt_test_run(py, out, err, 30000) != 0) {
                bbt_test_dump_tail(err, 4000);
                FAIL("HTTPS requests failed");
        }
        ASSERT(bbt_test_file_contains(out, "tls ok"));
        ASSERT(bbt_test_file_contains(W.log, "https"));
        stop();
}
