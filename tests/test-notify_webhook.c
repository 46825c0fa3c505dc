/* bbt-notify end to end: the real daemon over a real store, posting to a receiver on 127.0.0.1 that can fail, stall or be down. */
/* bbt-test: label=integration timeout=30 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "store.h"
#include "test.h"

#define COUNTY "510107"
#define SCHOOL1 "5101070001"
#define SCHOOL2 "5101070002"
#define DING_SECRET "SECtest0123456789abcdef"

/* ---- the receiver: libmicrohttpd, a thread per connection ---- */

/* What the receiver answers the next request to PATH (a prefix; NULL: any). */
struct action {
        int status;
        const char *body;
        int delay_ms;
        const char *path;
};

struct request {
        char url[512];
        char *body;
        bool accepted; /* answered 200 with errcode 0 */
};

static struct {
        struct MHD_Daemon *d;
        int port;
        pthread_mutex_t lock;
        struct action script[16];
        bool used[16];
        size_t n_script;
        struct request reqs[64];
        size_t n;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct upload {
        char *buf;
        size_t len;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls)
{
        struct upload *up = *con_cls;
        struct MHD_Response *resp;
        struct action a = { 200, "{\"errcode\":0,\"errmsg\":\"ok\"}", 0, NULL };
        char full[512];
        const char *q;
        enum MHD_Result ret;

        (void)cls;
        (void)version;
        (void)method;
        if (!up) {
                *con_cls = calloc(1, sizeof(*up));
                return *con_cls ? MHD_YES : MHD_NO;
        }
        if (*data_size) {
                up->buf = realloc(up->buf, up->len + *data_size + 1);
                memcpy(up->buf + up->len, data, *data_size);
                up->len += *data_size;
                up->buf[up->len] = '\0';
                *data_size = 0;
                return MHD_YES;
        }
        /* The query string, for DingTalk's signature. */
        q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timestamp");
        snprintf(full, sizeof(full), "%s", url);
        if (q) {
                const char *sign = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "sign");

                snprintf(full, sizeof(full), "%s?timestamp=%s&sign=%s", url, q, sign ? sign : "");
        }
        pthread_mutex_lock(&R.lock);
        for (size_t i = 0; i < R.n_script; i++)
                if (!R.used[i] && (!R.script[i].path || strncmp(url, R.script[i].path, strlen(R.script[i].path)) == 0)) {
                        a = R.script[i];
                        R.used[i] = true;
                        break;
                }
        pthread_mutex_unlock(&R.lock);
        if (a.delay_ms)
                bbt_test_sleep_ms((unsigned)a.delay_ms);
        pthread_mutex_lock(&R.lock);
        if (R.n < BBT_ELEMENTSOF(R.reqs)) {
                struct request *r = &R.reqs[R.n++];

                snprintf(r->url, sizeof(r->url), "%s", full);
                r->body = up->buf ? up->buf : strdup("");
                up->buf = NULL;
                r->accepted = a.status == 200 && strstr(a.body, "\"errcode\":0") && !a.delay_ms;
        }
        pthread_mutex_unlock(&R.lock);
        resp = MHD_create_response_from_buffer(strlen(a.body), (void *)a.body, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        ret = MHD_queue_response(c, (unsigned)a.status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        struct upload *up = *con_cls;

        (void)cls;
        (void)c;
        (void)toe;
        if (up) {
                free(up->buf);
                free(up);
        }
        *con_cls = NULL;
}

static void rx_start(void)
{
        R.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)R.port,
                               NULL, NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                               MHD_OPTION_END);
        ASSERT(R.d);
}

static void rx_stop(void)
{
        if (R.d)
                MHD_stop_daemon(R.d);
        R.d = NULL;
}

static void rx_script(const struct action *a, size_t n)
{
        pthread_mutex_lock(&R.lock);
        memcpy(R.script, a, n * sizeof(*a));
        memset(R.used, 0, sizeof(R.used));
        R.n_script = n;
        pthread_mutex_unlock(&R.lock);
}

static size_t rx_count(const char *path_prefix, bool accepted_only)
{
        size_t k = 0;

        pthread_mutex_lock(&R.lock);
        for (size_t i = 0; i < R.n; i++)
                k += strncmp(R.reqs[i].url, path_prefix, strlen(path_prefix)) == 0 &&
                     (!accepted_only || R.reqs[i].accepted);
        pthread_mutex_unlock(&R.lock);
        return k;
}

/* The I-th request to PATH_PREFIX (the receiver keeps them all). */
static const struct request *rx_get(const char *path_prefix, size_t i)
{
        for (size_t j = 0; j < R.n; j++)
                if (strncmp(R.reqs[j].url, path_prefix, strlen(path_prefix)) == 0 && i-- == 0)
                        return &R.reqs[j];
        FAIL("no request %zu to %s", i, path_prefix);
        return NULL;
}

static void rx_cleanup(void)
{
        rx_stop();
        for (size_t i = 0; i < R.n; i++)
                free(R.reqs[i].body);
        R.n = 0;
}

/* ---- the world: registry, store, configuration ---- */

static struct {
        const char *dir;
        char conf[512], db[512], targets[512], secrets[512], state[512], log[512], exe[512];
        struct bbt_test_daemon d;
        int64_t t_a1, t_a2; /* terminal ids */
} W;

static const char schools_csv[] = "县区代码,县区,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数,教室数\r\n"
                                  "510107,武侯区,城关街道,5101070001,城关小学,小学,城区,600,12\r\n"
                                  "510107,武侯区,石板镇,5101070002,石板初级中学,初中,乡村,200,6\r\n";
static const char terminals_csv[] = "学校代码,终端编号,教室,应配外设\r\n"
                                    "5101070001,A1,一年级(1)班,\r\n"
                                    "5101070001,A2,一年级(2)班,\r\n"
                                    "5101070002,B1,七年级(1)班,\r\n";

static void put(const char *name, const char *text, char *path, size_t size)
{
        char local[512];

        if (!path) {
                path = local;
                size = sizeof(local);
        }
        snprintf(path, size, "%s/%s", W.dir, name);
        bbt_test_write_file(path, text);
}

static int64_t add_terminal(struct bbt_store *s, const char *school, const char *id)
{
        struct bbt_store_terminal t = { .first_seq = -1, .high_seq = -1, .boot = -1, .inventory_seq = -1 };

        snprintf(t.county, sizeof(t.county), COUNTY);
        snprintf(t.school, sizeof(t.school), "%s", school);
        snprintf(t.terminal, sizeof(t.terminal), "%s", id);
        ASSERT_OK(bbt_store_terminal_insert(s, &t));
        return t.id;
}

static void raise_fault(int64_t terminal_id, const char *code, int64_t raised_ms)
{
        struct bbt_store *s;
        struct bbt_store_fault f = { .terminal_id = terminal_id, .severity = BBT_SEVERITY_ERROR,
                                     .raised_ms = raised_ms };
        char err[256];

        snprintf(f.code, sizeof(f.code), "%s", code);
        snprintf(f.source, sizeof(f.source), "agent");
        snprintf(f.detail, sizeof(f.detail), "CPU 92 °C");
        ASSERT_OK(bbt_store_open(W.db, false, &s, err, sizeof(err)));
        ASSERT_OK(bbt_store_fault_raise(s, &f));
        bbt_store_close(s);
}

/* The targets file TARGETS, the secrets pointing at the receiver, and the
 * configuration with EXTRA in [notify] (NULL: short retries, 2 s timeout). */
static void setup(const char *name, const char *targets, const char *extra)
{
        struct bbt_store *s;
        char text[4096], err[256];

        W.dir = bbt_test_tmp_init(name);
        R.port = bbt_test_free_port();
        put("schools.csv", schools_csv, NULL, 0);
        put("terminals.csv", terminals_csv, NULL, 0);
        snprintf(W.db, sizeof(W.db), "%s/aggregator.db", W.dir);
        ASSERT_OK(bbt_store_open(W.db, false, &s, err, sizeof(err)));
        W.t_a1 = add_terminal(s, SCHOOL1, "A1");
        W.t_a2 = add_terminal(s, SCHOOL1, "A2");
        add_terminal(s, SCHOOL2, "B1");
        bbt_store_close(s);
        put("notify.conf", targets, W.targets, sizeof(W.targets));
        snprintf(text, sizeof(text),
                 "[wecom]\nurl = http://127.0.0.1:%d/wecom?key=k1\n"
                 "[ding]\nurl = http://127.0.0.1:%d/ding?access_token=t1\nsecret = " DING_SECRET "\n"
                 "[json]\nurl = http://127.0.0.1:%d/json\ntoken = tok\n",
                 R.port, R.port, R.port);
        put("notify-secrets.conf", text, W.secrets, sizeof(W.secrets));
        ASSERT_OK(chmod(W.secrets, 0600));
        snprintf(W.state, sizeof(W.state), "%s/state", W.dir);
        ASSERT_OK(mkdir(W.state, 0750));
        snprintf(text, sizeof(text),
                 "[store]\npath = %s\n[registry]\nschools = %s/schools.csv\nterminals = %s/terminals.csv\n"
                 "[aggregator]\nlog_level = info\n"
                 "[notify]\ntargets = %s\nsecrets = %s\nstate_dir = %s\npoll_interval = 100ms\n"
                 "stats_interval = 1h\n%s",
                 W.db, W.dir, W.dir, W.targets, W.secrets, W.state,
                 extra ? extra : "retry_initial = 40ms\nretry_max = 200ms\ntimeout = 2s\n");
        put("aggregator.conf", text, W.conf, sizeof(W.conf));
        snprintf(W.log, sizeof(W.log), "%s/bbt-notify.log", W.dir);
        bbt_test_exe("county/notify", "bbt-notify", W.exe, sizeof(W.exe));
        bbt_test_dump_on_failure(W.log);
        bbt_test_at_cleanup(rx_cleanup);
}

static void start(void)
{
        char *argv[] = { W.exe, (char *)"-c", W.conf, NULL };

        bbt_test_daemon_start(&W.d, "bbt-notify", argv, W.log);
}

/* Waits until the daemon runs: at the first start, until it has read the
 * store once (what is open then is taken as known); later, until it started. */
static void wait_started(int starts)
{
        if (starts == 1)
                BBT_WAIT_FOR(bbt_test_file_contains(W.log, "first start:"), 5000, "bbt-notify's first read");
        else
                BBT_WAIT_FOR(bbt_test_count_in_file(W.log, "started:") >= starts, 5000, "bbt-notify's start");
        bbt_test_daemon_alive(&W.d);
}

static void stop(void)
{
        bbt_test_daemon_term(&W.d, 5000);
        bbt_test_check_sanitizers(W.log);
}

/* MS at +08:00, "YYYY-MM-DD HH:MM" or (ISO) RFC 3339, computed here (not by bbt's code). */
static const char *local_time(int64_t ms, bool iso, char *buf, size_t size)
{
        time_t t = (time_t)(ms / 1000) + 8 * 3600;
        struct tm tm;

        gmtime_r(&t, &tm);
        if (iso)
                strftime(buf, size, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
        else
                strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
        return buf;
}
#define local_minute(ms, buf, size) local_time(ms, false, buf, size)
#define local_iso(ms, buf, size) local_time(ms, true, buf, size)

static cJSON *parse(const char *body)
{
        cJSON *j = cJSON_Parse(body);

        if (!j)
                FAIL("not JSON: %s", body);
        return j;
}

static const char *str_at(const cJSON *o, const char *path)
{
        char name[64];
        const char *dot = strchr(path, '.');
        const cJSON *v;

        snprintf(name, sizeof(name), "%.*s", dot ? (int)(dot - path) : (int)strlen(path), path);
        v = cJSON_GetObjectItemCaseSensitive(o, name);
        if (dot)
                return str_at(v, dot + 1);
        if (!cJSON_IsString(v))
                FAIL("member %s is not a string", path);
        return v->valuestring;
}

/* Validates the generic body against docs/schemas/notify.schema.json with the protocol tests' validator. */
static void schema_check(const char *body)
{
        char path[600], schema[600], out[600];
        char *argv[] = { (char *)"/usr/bin/python3", NULL, (char *)"--schema", schema, path, NULL };
        char script[600];
        int st;

        snprintf(path, sizeof(path), "%s/body-%zu.json", W.dir, R.n);
        bbt_test_write_file(path, body);
        snprintf(schema, sizeof(schema), "%s/../docs/schemas/notify.schema.json", bbt_test_srcdir());
        snprintf(script, sizeof(script), "%s/notify-schema-check.py", bbt_test_srcdir());
        argv[1] = script;
        snprintf(out, sizeof(out), "%s/schema-check.log", W.dir);
        st = bbt_test_run(argv, out, out, 20000);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                bbt_test_dump_tail(out, 4000);
                FAIL("the generic body does not validate against notify.schema.json (%s)", bbt_test_status_text(st));
        }
}

static const char three_targets[] = "[wecom]\nformat = wecom\nevents = faults\n"
                                    "[ding]\nformat = dingtalk\nevents = faults\nschools = " SCHOOL1 "\n"
                                    "[json]\nformat = json\nevents = faults\ncounty = " COUNTY "\n";

/* Each format's body, exactly; the DingTalk signature; a fault open at the
 * first start is not news; the generic body validates against its schema. */
TEST(formats)
{
        int64_t now = bbt_test_wall_ms() / 60000 * 60000, t1 = now - 5 * 60000, t2 = now - 2 * 60000;
        char w1[32], w2[32], iso[40], expect[2048], key1[160], sign[128], msg[256];
        unsigned char mac[64];
        unsigned int mac_len;
        const struct request *rq;
        cJSON *j;
        const cJSON *faults;

        setup("notify-formats", three_targets, NULL);
        raise_fault(W.t_a2, "disk_low", now - 3600000); /* open before the first start */
        rx_start();
        start();
        wait_started(1);
        raise_fault(W.t_a1, "overheat", t1);
        raise_fault(W.t_a2, "projector_error", t2);
        BBT_WAIT_FOR(rx_count("/", true) >= 3, 5000, "three messages");
        bbt_test_sleep_ms(300); /* nothing more comes: one message per target */
        ASSERT_EQ(rx_count("/wecom", false), 1);
        ASSERT_EQ(rx_count("/ding", false), 1);
        ASSERT_EQ(rx_count("/json", false), 1);
        local_minute(t1, w1, sizeof(w1));
        local_minute(t2, w2, sizeof(w2));

        /* WeCom: a markdown message. */
        rq = rx_get("/wecom", 0);
        j = parse(rq->body);
        ASSERT_STR_EQ(str_at(j, "msgtype"), "markdown");
        snprintf(expect, sizeof(expect),
                 "### 班班通新故障 2 条（1 所学校）\n"
                 "- 城关小学 一年级(1)班 (A1)：温度过高（错误），自 %s 起\n"
                 "- 城关小学 一年级(2)班 (A2)：投影机故障（错误），自 %s 起\n",
                 w1, w2);
        ASSERT_STR_EQ(str_at(j, "markdown.content"), expect);
        ASSERT_EQ(cJSON_GetArraySize(j), 2);
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "markdown")), 1);
        cJSON_Delete(j);

        /* DingTalk: markdown with a title, the URL signed. */
        rq = rx_get("/ding", 0);
        j = parse(rq->body);
        ASSERT_STR_EQ(str_at(j, "msgtype"), "markdown");
        ASSERT_STR_EQ(str_at(j, "markdown.title"), "班班通新故障");
        ASSERT_STR_EQ(str_at(j, "markdown.text"), expect);
        cJSON_Delete(j);
        {
                long long ts = 0;

                ASSERT_EQ(sscanf(rq->url, "/ding?timestamp=%lld&sign=%127s", &ts, msg), 2);
                ASSERT(ts > 0 && llabs(ts - bbt_test_wall_ms()) < 60000);
                snprintf(expect, sizeof(expect), "%lld\n%s", ts, DING_SECRET);
                ASSERT(HMAC(EVP_sha256(), DING_SECRET, (int)strlen(DING_SECRET), (const unsigned char *)expect,
                            strlen(expect), mac, &mac_len));
                EVP_EncodeBlock((unsigned char *)sign, mac, (int)mac_len);
                /* libmicrohttpd has URL-decoded the argument: the Base64 text itself. */
                ASSERT_STR_EQ(msg, sign);
        }

        /* Generic JSON: every field, the dedupe keys. */
        rq = rx_get("/json", 0);
        schema_check(rq->body);
        j = parse(rq->body);
        ASSERT_STR_EQ(str_at(j, "schema"), "bbt-notify/1");
        ASSERT_STR_EQ(str_at(j, "event"), "faults");
        ASSERT_STR_EQ(str_at(j, "target"), "json");
        ASSERT_STR_EQ(str_at(j, "lang"), "zh");
        ASSERT(strncmp(str_at(j, "id"), "faults/", 7) == 0);
        faults = cJSON_GetObjectItem(j, "faults");
        ASSERT_EQ(cJSON_GetArraySize(faults), 2);
        snprintf(key1, sizeof(key1), COUNTY "/" SCHOOL1 "/A1/overheat/agent/%lld", (long long)t1);
        {
                const cJSON *f = cJSON_GetArrayItem(faults, 0);

                ASSERT_STR_EQ(str_at(f, "key"), key1);
                ASSERT_STR_EQ(str_at(f, "county"), COUNTY);
                ASSERT_STR_EQ(str_at(f, "school"), SCHOOL1);
                ASSERT_STR_EQ(str_at(f, "school_name"), "城关小学");
                ASSERT_STR_EQ(str_at(f, "township"), "城关街道");
                ASSERT_STR_EQ(str_at(f, "terminal"), "A1");
                ASSERT_STR_EQ(str_at(f, "room"), "一年级(1)班");
                ASSERT_STR_EQ(str_at(f, "fault"), "overheat");
                ASSERT_STR_EQ(str_at(f, "fault_label"), "温度过高");
                ASSERT_STR_EQ(str_at(f, "severity"), "error");
                ASSERT_STR_EQ(str_at(f, "source"), "agent");
                ASSERT_STR_EQ(str_at(f, "since"), local_iso(t1, iso, sizeof(iso)));
                ASSERT_STR_EQ(str_at(f, "detail"), "CPU 92 °C");
                ASSERT_EQ(cJSON_GetArraySize(f), 13);
                ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(faults, 1), "fault"), "projector_error");
        }
        cJSON_Delete(j);
        stop();
        bbt_test_passed();
}

/* 500 twice then 200: delivered once, retried twice; a robot's own error
 * ({"errcode":45009}) is a failure too; the counters say so. */
TEST(retry_then_delivered_once)
{
        static const struct action script[] = {
                { 500, "oops", 0, NULL },
                { 500, "oops", 0, NULL },
                { 200, "{\"errcode\":45009,\"errmsg\":\"api freq out of limit\"}", 0, "/wecom" },
        };
        char out[600];
        char *argv[] = { W.exe, (char *)"-c", W.conf, (char *)"--status", NULL };

        setup("notify-retry", "[json]\nformat = json\nevents = faults\n", NULL);
        rx_start();
        start();
        wait_started(1);
        rx_script(script, 2);
        raise_fault(W.t_a1, "overheat", bbt_test_wall_ms() - 1000);
        BBT_WAIT_FOR(rx_count("/json", true) == 1, 5000, "delivered");
        bbt_test_sleep_ms(300);
        ASSERT_EQ(rx_count("/json", false), 3);
        ASSERT_EQ(rx_count("/json", true), 1);
        ASSERT(bbt_test_file_contains(W.log, "attempt 1 failed: HTTP 500; retry 1 of 10"));
        stop();

        /* The WeCom robot's rate-limit answer, then success. */
        bbt_test_write_file(W.targets, "[json]\nformat = json\nevents = faults\n[wecom]\nformat = wecom\n");
        rx_script(script + 2, 1);
        start();
        wait_started(2);
        raise_fault(W.t_a2, "overheat", bbt_test_wall_ms() - 1000);
        BBT_WAIT_FOR(rx_count("/wecom", true) == 1 && rx_count("/json", true) == 2, 5000, "delivered");
        bbt_test_sleep_ms(300);
        ASSERT_EQ(rx_count("/wecom", false), 2);
        ASSERT(bbt_test_file_contains(W.log, "errcode 45009 (api freq out of limit)"));
        stop();
        ASSERT(bbt_test_file_contains(W.log, "retries=3 "));
        snprintf(out, sizeof(out), "%s/status.txt", W.dir);
        ASSERT_EQ(bbt_test_run(argv, out, out, 5000), 0);
        ASSERT(bbt_test_file_contains(out, "messages_sent: 3\n"));
        ASSERT(bbt_test_file_contains(out, "retries: 3\n"));
        ASSERT(bbt_test_file_contains(out, "target json: owed_faults=0"));
        bbt_test_passed();
}

/* A receiver that is down (connection refused), then one that stalls past
 * the timeout, then answers: delivered once. */
TEST(down_then_up)
{
        static const struct action stall[] = { { 200, "{\"errcode\":0,\"errmsg\":\"ok\"}", 800, NULL } };

        setup("notify-down", "[json]\nformat = json\nevents = faults\n",
              "retry_initial = 100ms\nretry_max = 300ms\ntimeout = 300ms\n");
        start();
        wait_started(1);
        raise_fault(W.t_a1, "overheat", bbt_test_wall_ms() - 1000);
        BBT_WAIT_FOR(bbt_test_count_in_file(W.log, "attempt 2 failed") >= 1, 5000, "two refused attempts");
        ASSERT(bbt_test_file_contains(W.log, "Connection refused") || bbt_test_file_contains(W.log, "connect"));
        rx_script(stall, 1);
        rx_start();
        BBT_WAIT_FOR(rx_count("/json", true) == 1, 8000, "delivered after the receiver came up");
        ASSERT(bbt_test_file_contains(W.log, "timed out"));
        bbt_test_sleep_ms(300);
        ASSERT_EQ(rx_count("/json", true), 1);
        stop();
        bbt_test_passed();
}

/* Restarts: nothing sent is sent again, nothing owed is skipped. */
TEST(restart_no_resend)
{
        int64_t now = bbt_test_wall_ms();

        setup("notify-restart", "[json]\nformat = json\nevents = faults\n", NULL);
        rx_start();
        start();
        wait_started(1);
        raise_fault(W.t_a1, "overheat", now - 2000);
        BBT_WAIT_FOR(rx_count("/json", true) == 1, 5000, "first delivered");
        stop();
        /* Raised while it is stopped: owed at the next start. */
        raise_fault(W.t_a2, "overheat", now - 1000);
        start();
        wait_started(2);
        BBT_WAIT_FOR(rx_count("/json", true) == 2, 5000, "the fault raised while stopped");
        bbt_test_sleep_ms(400);
        ASSERT_EQ(rx_count("/json", false), 2);
        ASSERT_STR_CONTAINS(rx_get("/json", 1)->body, "/A2/overheat/");
        ASSERT(!strstr(rx_get("/json", 1)->body, "/A1/overheat/"));
        stop();
        bbt_test_passed();
}

/* A county-wide outage: many faults at once go in batches of batch_max, at
 * most rate_limit messages a minute to a target. */
TEST(batches)
{
        struct bbt_store *s;
        char err[256];
        int64_t now = bbt_test_wall_ms();

        setup("notify-batch", "[json]\nformat = json\nevents = faults\n[wecom]\nformat = wecom\nrate_limit = 2\n",
              "retry_initial = 40ms\nretry_max = 200ms\nbatch_max = 40\n");
        rx_start();
        start();
        wait_started(1);
        ASSERT_OK(bbt_store_open(W.db, false, &s, err, sizeof(err)));
        ASSERT_OK(bbt_store_begin(s));
        for (int i = 0; i < 90; i++) {
                char id[16];
                struct bbt_store_fault f = { .terminal_id = 0, .severity = BBT_SEVERITY_WARNING,
                                             .raised_ms = now - 1000 + i };

                snprintf(id, sizeof(id), "X%02d", i);
                f.terminal_id = add_terminal(s, SCHOOL2, id);
                snprintf(f.code, sizeof(f.code), "offline");
                snprintf(f.source, sizeof(f.source), "aggregator");
                ASSERT_OK(bbt_store_fault_raise(s, &f));
        }
        ASSERT_OK(bbt_store_commit(s));
        bbt_store_close(s);
        /* The WeCom target may send 2 a minute: the third waits (the test does not). */
        BBT_WAIT_FOR(rx_count("/json", true) == 3 && rx_count("/wecom", true) == 2, 5000, "three batches, and two");
        bbt_test_sleep_ms(200);
        ASSERT_EQ(rx_count("/wecom", false), 2);
        {
                cJSON *j = parse(rx_get("/json", 2)->body);

                ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "faults")), 10);
                cJSON_Delete(j);
                j = parse(rx_get("/wecom", 0)->body);
                ASSERT_STR_CONTAINS(str_at(j, "markdown.content"), "### 班班通新故障 40 条（1 所学校）\n");
                ASSERT_STR_CONTAINS(str_at(j, "markdown.content"), "- ……另有 20 条，见 bbt-report faults\n");
                cJSON_Delete(j);
        }
        stop();
        bbt_test_passed();
}

/* The daily digest at the configured time, on a clock the test sets. */
TEST(digest)
{
        /* 2026-12-07 (a Monday) 07:59:59 at +08:00. */
        int64_t start_s = 1796601599LL, since = (start_s - 3 * 3600) * 1000LL;
        char env[64], w[32], expect[2048];
        const struct request *rq;
        cJSON *j;

        setup("notify-digest", "[json]\nformat = json\nevents = digest\ndigest_time = 08:00\nschools = " SCHOOL1 "\n"
                               "[wecom]\nformat = wecom\nevents = digest\ndigest_time = 08:00\nschools = " SCHOOL1 "\n",
              NULL);
        raise_fault(W.t_a1, "overheat", since);
        {
                /* A2 on from 22:00 to 23:30 on the 6th: left on last night. */
                struct bbt_store *s;
                struct bbt_store_usage u = { .terminal_id = W.t_a2, .seq = 1 };
                char err[256];

                u.span.start_ms = (start_s - 9 * 3600 - 3599) * 1000LL;
                u.span.end_ms = u.span.start_ms + 90 * 60000LL;
                u.span.state = BBT_USAGE_IDLE;
                ASSERT_OK(bbt_store_open(W.db, false, &s, err, sizeof(err)));
                ASSERT_OK(bbt_store_usage_insert(s, &u));
                bbt_store_close(s);
        }
        snprintf(env, sizeof(env), "%lld", (long long)start_s);
        setenv("BBT_NOTIFY_TEST_START", env, 1);
        rx_start();
        start();
        unsetenv("BBT_NOTIFY_TEST_START");
        wait_started(1);
        BBT_WAIT_FOR(rx_count("/json", true) == 1 && rx_count("/wecom", true) == 1, 6000, "the digests");
        bbt_test_sleep_ms(300);
        ASSERT_EQ(rx_count("/json", false), 1); /* SCHOOL2 is not this target's */
        rq = rx_get("/json", 0);
        schema_check(rq->body);
        j = parse(rq->body);
        ASSERT_STR_EQ(str_at(j, "event"), "digest");
        ASSERT_STR_EQ(str_at(j, "id"), "digest/" COUNTY "/" SCHOOL1 "/2026-12-07");
        ASSERT_STR_EQ(str_at(j, "date"), "2026-12-07");
        ASSERT_STR_EQ(str_at(j, "idle_to"), "2026-12-06");
        ASSERT_STR_EQ(str_at(j, "school.name"), "城关小学");
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "idle")), 2);
        ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "idle"), 0), "terminal"), "A1");
        ASSERT_STR_EQ(str_at(j, "night_of"), "2026-12-06");
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "left_on_last_night")), 1);
        ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "left_on_last_night"), 0), "room"),
                      "一年级(2)班");
        /* The faults report's open faults: the two terminals have never reported (silent) and A1's overheat. */
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "open_faults")), 3);
        ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "open_faults"), 0), "fault"), "silent");
        ASSERT_STR_EQ(str_at(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "open_faults"), 2), "fault"), "overheat");
        {
                const cJSON *idle0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "idle"), 0);
                const char *label = str_at(idle0, "reason_label");

                local_minute(since, w, sizeof(w));
                snprintf(expect, sizeof(expect),
                         "### 班班通日报 · 城关小学 · 2026-12-07\n"
                         "**闲置终端 2 台**（截至 2026-12-06）\n"
                         "- 一年级(1)班 (A1)：%s\n"
                         "- 一年级(2)班 (A2)：%s\n"
                         "**昨夜未关机 1 台**（2026-12-06 夜间）\n"
                         "- 一年级(2)班 (A2)\n"
                         "**未消除故障 3 条**\n"
                         "- 一年级(1)班 (A1)：长期未上报（错误）\n"
                         "- 一年级(2)班 (A2)：长期未上报（错误）\n"
                         "- 一年级(1)班 (A1)：温度过高（错误），自 %s 起\n",
                         label, label, w);
        }
        cJSON_Delete(j);
        j = parse(rx_get("/wecom", 0)->body);
        ASSERT_STR_EQ(str_at(j, "markdown.content"), expect);
        cJSON_Delete(j);
        stop();
        bbt_test_passed();
}

/* The secrets file: refused when others could read or change it; the exact rule. */
TEST(secrets_permissions)
{
        char out[600];
        char *check[] = { W.exe, (char *)"-c", W.conf, (char *)"--check-config", NULL };
        int st;

        setup("notify-secrets", three_targets, NULL);
        snprintf(out, sizeof(out), "%s/check.txt", W.dir);
        ASSERT_EQ(bbt_test_run(check, out, out, 5000), 0);
        ASSERT(bbt_test_file_contains(out, "#[ding]\n#format = dingtalk\n"));
        ASSERT(bbt_test_file_contains(out, "#signed = yes"));
        ASSERT(!bbt_test_file_contains(out, DING_SECRET));
        ASSERT(!bbt_test_file_contains(out, "key=k1"));
        ASSERT_OK(chmod(W.secrets, 0644));
        st = bbt_test_run(check, out, out, 5000);
        ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        ASSERT(bbt_test_file_contains(out, "mode 0644 lets others read or change the webhook secrets: refused"));
        ASSERT_OK(chmod(W.secrets, 0620));
        st = bbt_test_run(check, out, out, 5000);
        ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        ASSERT_OK(chmod(W.secrets, 0640)); /* group read: this process's own group */
        ASSERT_EQ(bbt_test_run(check, out, out, 5000), 0);
        /* A target without its url, and a bad format: located errors. */
        bbt_test_write_file(W.targets, "[other]\nformat = json\n");
        st = bbt_test_run(check, out, out, 5000);
        ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        ASSERT(bbt_test_file_contains(out, "[other] url: missing"));
        bbt_test_write_file(W.targets, "[wecom]\nformat = slack\n");
        st = bbt_test_run(check, out, out, 5000);
        ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        ASSERT(bbt_test_file_contains(out, "notify.conf:2: [wecom] format: expected wecom, dingtalk or json, got \"slack\""));
        bbt_test_passed();
}
