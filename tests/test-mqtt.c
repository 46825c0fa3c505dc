/* Tests for runtime/mqtt.c against a real mosquitto broker on 127.0.0.1. */
/* bbt-test: label=integration timeout=60 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "bbt/mqtt.h"
#include "bbt/base.h"
#include "broker.h"
#include "test.h"

#define MAX_SEEN 64

struct seen_msg {
        char topic[128];
        char payload[128];
        int qos;
        bool retain;
};

/* Everything the callbacks saw, for the assertions. */
struct client {
        struct bbt_mqtt *m;
        const char *name;
        int connects;
        bool session_present;
        int disconnects;
        int last_err;
        char last_reason[512];
        uint64_t disconnect_ms[MAX_SEEN];
        int pubacks;
        int last_ack_mid;
        int n_msgs;
        struct seen_msg msgs[MAX_SEEN];
        bool disconnect_done;
        int disconnect_status;
        bool closed;
        bool close_in_on_message;
};

#define WAIT_FOR(loop, cond, ms)                                                         \
        do {                                                                             \
                uint64_t wait_deadline_ = bbt_test_now_ms() + (ms);                      \
                while (!(cond)) {                                                        \
                        if (bbt_test_now_ms() > wait_deadline_)                          \
                                FAIL("timed out after %d ms waiting for %s", (int)(ms),  \
                                     #cond);                                             \
                        bbt_test_run_until((loop), NULL, NULL, 10);                      \
                }                                                                        \
        } while (0)

static void on_connect(void *userdata, bool session_present)
{
        struct client *c = userdata;

        c->connects++;
        c->session_present = session_present;
}

static void on_disconnect(void *userdata, int error, const char *reason)
{
        struct client *c = userdata;

        if (c->disconnects < MAX_SEEN)
                c->disconnect_ms[c->disconnects] = bbt_test_now_ms();
        c->disconnects++;
        c->last_err = error;
        snprintf(c->last_reason, sizeof(c->last_reason), "%s", reason);
        fprintf(stderr, "[%s] on_disconnect: %d (%s): %s\n", c->name, error,
                error ? strerror(-error) : "ok", reason);
}

static void on_message(void *userdata, const char *topic, const void *payload, size_t len,
                       int qos, bool retain)
{
        struct client *c = userdata;
        struct seen_msg *s;

        if (c->n_msgs < MAX_SEEN) {
                s = &c->msgs[c->n_msgs];
                snprintf(s->topic, sizeof(s->topic), "%s", topic);
                snprintf(s->payload, sizeof(s->payload), "%.*s", (int)len, (const char *)payload);
                s->qos = qos;
                s->retain = retain;
        }
        c->n_msgs++;
        if (c->close_in_on_message) {
                c->close_in_on_message = false;
                bbt_mqtt_close(c->m, NULL);
                c->m = NULL;
                c->closed = true;
        }
}

static void on_publish(void *userdata, int mid)
{
        struct client *c = userdata;

        c->pubacks++;
        c->last_ack_mid = mid;
}

static void on_log(void *userdata, int priority, const char *line)
{
        struct client *c = userdata;

        if (priority <= LOG_NOTICE || getenv("BBT_TEST_VERBOSE"))
                fprintf(stderr, "[%s] log %d: %s\n", c->name, priority, line);
}

static const struct bbt_mqtt_callbacks callbacks = {
        .on_connect = on_connect,
        .on_disconnect = on_disconnect,
        .on_message = on_message,
        .on_publish = on_publish,
        .on_log = on_log,
};

static void on_disconnect_done(void *userdata, int status)
{
        struct client *c = userdata;

        c->disconnect_done = true;
        c->disconnect_status = status;
}

static void on_closed(void *userdata)
{
        struct client *c = userdata;

        c->closed = true;
}

/* Options for a client of the test broker on PORT: fast backoff for tests. */
static void test_options(struct bbt_mqtt_options *o, int port, const char *client_id)
{
        bbt_mqtt_options_init(o);
        o->host = "127.0.0.1";
        o->port = port;
        o->client_id = client_id;
        o->backoff_min_ms = 200;
        o->backoff_max_ms = 800;
        o->connect_timeout_ms = 5000;
}

static void client_new(struct client *c, uv_loop_t *loop, const struct bbt_mqtt_options *o)
{
        const char *name = c->name ? c->name : o->client_id;

        memset(c, 0, sizeof(*c));
        c->name = name ? name : "client";
        ASSERT_OK(bbt_mqtt_new(loop, o, &callbacks, c, &c->m));
}

static void client_close(struct client *c, uv_loop_t *loop)
{
        if (!c->m)
                return;
        bbt_mqtt_close(c->m, on_closed);
        c->m = NULL;
        WAIT_FOR(loop, c->closed, 5000);
}

static bool saw_message(const struct client *c, const char *topic, const char *payload)
{
        int i;

        for (i = 0; i < c->n_msgs && i < MAX_SEEN; i++)
                if (strcmp(c->msgs[i].topic, topic) == 0 &&
                    (!payload || strcmp(c->msgs[i].payload, payload) == 0))
                        return true;
        return false;
}

static void publish_ok(struct client *c, const char *topic, const char *payload, int qos,
                       bool retain, int *ret_mid)
{
        ASSERT_OK(bbt_mqtt_publish(c->m, topic, payload, strlen(payload), qos, retain, ret_mid));
}

/* Starts C and waits for its CONNACK. */
static void connect_client(struct client *c, uv_loop_t *loop)
{
        int before = c->connects;

        ASSERT_OK(bbt_mqtt_start(c->m));
        WAIT_FOR(loop, c->connects > before, 10000);
        ASSERT(bbt_mqtt_is_connected(c->m));
}

/* ---- backoff, as a pure function ---- */

TEST(backoff_schedule)
{
        static const struct {
                unsigned attempt, lo, hi;
        } cases[] = {
                { 0, 500, 1000 },     { 1, 1000, 2000 },    { 2, 2000, 4000 },
                { 3, 4000, 8000 },    { 4, 8000, 16000 },   { 5, 16000, 32000 },
                { 6, 30000, 60000 },  { 7, 30000, 60000 },  { 40, 30000, 60000 },
                { 1000, 30000, 60000 }, { UINT32_MAX, 30000, 60000 },
        };
        unsigned i, lo_seen = UINT32_MAX, hi_seen = 0;
        uint32_t r = 12345;

        for (i = 0; i < BBT_ELEMENTSOF(cases); i++) {
                /* The random input spans exactly the documented interval. */
                ASSERT_EQ(bbt_mqtt_backoff_ms(cases[i].attempt, 1000, 60000, 0), cases[i].lo);
                ASSERT_EQ(bbt_mqtt_backoff_ms(cases[i].attempt, 1000, 60000,
                                              cases[i].hi - cases[i].lo),
                          cases[i].hi);
                ASSERT_EQ(bbt_mqtt_backoff_ms(cases[i].attempt, 1000, 60000,
                                              cases[i].hi - cases[i].lo + 1),
                          cases[i].lo);
                ASSERT_LE(bbt_mqtt_backoff_ms(cases[i].attempt, 1000, 60000, UINT32_MAX),
                          cases[i].hi);
        }
        /* Uniform over [n/2, n]: both ends are reached, nothing outside. */
        for (i = 0; i < 10000; i++) {
                unsigned d;

                r ^= r << 13;
                r ^= r >> 17;
                r ^= r << 5;
                d = bbt_mqtt_backoff_ms(3, 1000, 60000, r);
                ASSERT_GE(d, 4000);
                ASSERT_LE(d, 8000);
                lo_seen = d < lo_seen ? d : lo_seen;
                hi_seen = d > hi_seen ? d : hi_seen;
        }
        ASSERT_LT(lo_seen, 4100);
        ASSERT_GT(hi_seen, 7900);
        /* Degenerate settings stay sane: never 0 ms, max below min means min. */
        ASSERT_EQ(bbt_mqtt_backoff_ms(0, 0, 0, 0), 1);
        ASSERT_EQ(bbt_mqtt_backoff_ms(5, 0, 0, UINT32_MAX), 1);
        ASSERT_EQ(bbt_mqtt_backoff_ms(3, 500, 100, 0), 250);
        ASSERT_EQ(bbt_mqtt_backoff_ms(3, 500, 100, 250), 500);
        /* A huge minimum does not overflow. */
        ASSERT_EQ(bbt_mqtt_backoff_ms(9, UINT32_MAX - 1, UINT32_MAX, 0), UINT32_MAX / 2);
}

TEST(bad_arguments)
{
        struct bbt_mqtt_options o;
        struct bbt_mqtt *m = NULL;
        uv_loop_t loop;
        struct client c = { .name = "args" };

        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, 1883, "bbt-test-args");
        o.host = NULL;
        ASSERT_EQ(bbt_mqtt_new(&loop, &o, &callbacks, NULL, &m), -EINVAL);
        test_options(&o, 1883, NULL);
        o.clean_session = false;
        ASSERT_EQ(bbt_mqtt_new(&loop, &o, &callbacks, NULL, &m), -EINVAL);
        test_options(&o, 1883, "x");
        o.keepalive_s = 3;
        ASSERT_EQ(bbt_mqtt_new(&loop, &o, &callbacks, NULL, &m), -EINVAL);
        test_options(&o, 1883, "x");
        o.password = "secret";
        ASSERT_EQ(bbt_mqtt_new(&loop, &o, &callbacks, NULL, &m), -EINVAL);
        test_options(&o, 1883, "x");
        o.tls_ca_file = "/nonexistent/ca.crt";
        ASSERT_EQ(bbt_mqtt_new(&loop, &o, &callbacks, NULL, &m), -ENOENT);
        test_options(&o, 1883, "x");
        o.will.topic = "bbt/+/bad";
        ASSERT_EQ(bbt_mqtt_new(&loop, &o, &callbacks, NULL, &m), -EINVAL);
        ASSERT(m == NULL);

        test_options(&o, bbt_test_free_port(), "bbt-test-args");
        client_new(&c, &loop, &o);
        ASSERT_EQ(bbt_mqtt_publish(c.m, "bbt/t", "x", 1, 1, false, NULL), -ENOTCONN);
        ASSERT_EQ(bbt_mqtt_publish(c.m, "bbt/#", "x", 1, 1, false, NULL), -EINVAL);
        ASSERT_EQ(bbt_mqtt_publish(c.m, "bbt/t", "x", 1, 3, false, NULL), -EINVAL);
        ASSERT_EQ(bbt_mqtt_subscribe(c.m, "bbt/#/x", 1), -EINVAL);
        ASSERT_EQ(bbt_mqtt_subscribe(c.m, "bbt/#", 3), -EINVAL);
        ASSERT_OK(bbt_mqtt_subscribe(c.m, "bbt/#", 1));
        ASSERT_OK(bbt_mqtt_subscribe(c.m, "$share/agg/bbt/+/x", 1));
        ASSERT_EQ(bbt_mqtt_unsubscribe(c.m, "bbt/other"), -ENOENT);
        ASSERT_OK(bbt_mqtt_unsubscribe(c.m, "bbt/#"));
        ASSERT(!bbt_mqtt_is_connected(c.m));
        ASSERT_OK(bbt_mqtt_start(c.m));
        ASSERT_EQ(bbt_mqtt_start(c.m), -EALREADY);
        ASSERT_EQ(bbt_mqtt_publish(c.m, "bbt/t", "x", 1, 1, false, NULL), -ENOTCONN);
        client_close(&c, &loop);
        bbt_mqtt_close(NULL, NULL);
        bbt_test_loop_close(&loop);
}

/* ---- against the broker ---- */

TEST(publish_qos1_roundtrip)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct bbt_mqtt_stats st;
        struct client c = { .name = "a" };
        uv_loop_t loop;
        int mid = -1, mid0 = -1;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-a");
        client_new(&c, &loop, &o);
        /* Remembered before the connection exists, sent at CONNACK. */
        ASSERT_OK(bbt_mqtt_subscribe(c.m, "bbt/test/#", 1));
        connect_client(&c, &loop);

        publish_ok(&c, "bbt/test/one", "hello", 1, false, &mid);
        ASSERT_GT(mid, 0);
        WAIT_FOR(&loop, c.n_msgs == 1 && c.pubacks == 1, 5000);
        ASSERT_EQ(c.last_ack_mid, mid);
        ASSERT_STR_EQ(c.msgs[0].topic, "bbt/test/one");
        ASSERT_STR_EQ(c.msgs[0].payload, "hello");
        ASSERT_EQ(c.msgs[0].qos, 1);
        ASSERT(!c.msgs[0].retain);

        /* QoS 0 has no acknowledgement, so no on_publish. */
        publish_ok(&c, "bbt/test/zero", "z", 0, false, &mid0);
        ASSERT_NE(mid0, mid);
        WAIT_FOR(&loop, c.n_msgs == 2, 5000);
        ASSERT_EQ(c.msgs[1].qos, 0);
        bbt_test_run_until(&loop, NULL, NULL, 100);
        ASSERT_EQ(c.pubacks, 1);

        /* An empty payload is a valid message. */
        ASSERT_OK(bbt_mqtt_publish(c.m, "bbt/test/empty", NULL, 0, 1, false, NULL));
        WAIT_FOR(&loop, c.n_msgs == 3 && c.pubacks == 2, 5000);
        ASSERT_STR_EQ(c.msgs[2].payload, "");

        ASSERT_OK(bbt_mqtt_disconnect(c.m, on_disconnect_done));
        ASSERT_EQ(bbt_mqtt_disconnect(c.m, on_disconnect_done), -EALREADY);
        WAIT_FOR(&loop, c.disconnect_done, 5000);
        ASSERT_EQ(c.disconnect_status, 0);
        ASSERT_EQ(c.last_err, 0);
        ASSERT(!bbt_mqtt_is_connected(c.m));
        ASSERT_EQ(bbt_mqtt_publish(c.m, "bbt/test/late", "x", 1, 1, false, NULL), -ENOTCONN);

        bbt_mqtt_get_stats(c.m, &st);
        ASSERT_EQ(st.connect_attempts, 1);
        ASSERT_EQ(st.connects, 1);
        ASSERT_EQ(st.connect_failures, 0);
        ASSERT_EQ(st.disconnects, 1);
        ASSERT_EQ(st.publishes, 3);
        ASSERT_EQ(st.pubacks, 2);
        ASSERT_EQ(st.messages_received, 3);

        client_close(&c, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

TEST(protocol_v5_roundtrip)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client c = { .name = "v5" };
        uv_loop_t loop;
        int mid = -1;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-v5");
        o.protocol = BBT_MQTT_V5;
        client_new(&c, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(c.m, "bbt/v5/#", 1));
        connect_client(&c, &loop);
        publish_ok(&c, "bbt/v5/x", "five", 1, false, &mid);
        WAIT_FOR(&loop, c.n_msgs == 1 && c.pubacks == 1, 5000);
        ASSERT_EQ(c.last_ack_mid, mid);
        ASSERT_STR_EQ(c.msgs[0].payload, "five");
        ASSERT_OK(bbt_mqtt_disconnect(c.m, on_disconnect_done));
        WAIT_FOR(&loop, c.disconnect_done, 5000);
        ASSERT_EQ(c.disconnect_status, 0);
        client_close(&c, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

/* Nothing listens: every attempt is refused, and the gaps between attempts
 * follow the backoff (200 ms doubling to 800 ms, each jittered to [n/2, n]). */
TEST(backoff_grows_when_refused)
{
        struct bbt_mqtt_options o;
        struct bbt_mqtt_stats st;
        struct client c = { .name = "refused" };
        uv_loop_t loop;
        static const unsigned nominal[] = { 200, 400, 800, 800 };
        /* Attempt setup and a loaded (or valgrind-slowed) machine add delay;
         * nothing can make a gap shorter than its floor. */
        const unsigned slack = 400;
        unsigned i;

        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_free_port(), "bbt-test-refused");
        client_new(&c, &loop, &o);
        ASSERT_OK(bbt_mqtt_start(c.m));
        WAIT_FOR(&loop, c.disconnects >= 5, 10000);
        ASSERT_EQ(c.last_err, -ECONNREFUSED);
        ASSERT_STR_CONTAINS(c.last_reason, "refused");
        ASSERT_EQ(c.connects, 0);
        for (i = 0; i < 4; i++) {
                uint64_t gap = c.disconnect_ms[i + 1] - c.disconnect_ms[i];

                fprintf(stderr, "gap %u: %llu ms (nominal %u)\n", i, (unsigned long long)gap,
                        nominal[i]);
                ASSERT_GE(gap + 2, nominal[i] / 2); /* ms rounding */
                ASSERT_LE(gap, nominal[i] + slack);
        }
        ASSERT_GT(c.disconnect_ms[4] - c.disconnect_ms[3], c.disconnect_ms[1] - c.disconnect_ms[0]);
        bbt_mqtt_get_stats(c.m, &st);
        ASSERT_GE(st.connect_failures, 5);
        ASSERT_EQ(st.connects, 0);
        ASSERT_GE(st.last_backoff_ms, 400);
        ASSERT_LE(st.last_backoff_ms, 800);
        ASSERT(!bbt_mqtt_is_connected(c.m));

        /* Stopping while backing off completes at once and stops retrying. */
        ASSERT_OK(bbt_mqtt_disconnect(c.m, on_disconnect_done));
        WAIT_FOR(&loop, c.disconnect_done, 1000);
        ASSERT_EQ(c.disconnect_status, 0);
        bbt_mqtt_get_stats(c.m, &st);
        bbt_test_run_until(&loop, NULL, NULL, 1200);
        {
                struct bbt_mqtt_stats later;

                bbt_mqtt_get_stats(c.m, &later);
                ASSERT_EQ(later.connect_attempts, st.connect_attempts);
        }
        client_close(&c, &loop);
        bbt_test_loop_close(&loop);
}

TEST(reconnect_and_resubscribe_after_broker_restart)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct bbt_mqtt_stats st;
        struct client a = { .name = "a" }, p = { .name = "publisher" };
        uv_loop_t loop;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-a");
        client_new(&a, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(a.m, "bbt/a/#", 1));
        ASSERT_OK(bbt_mqtt_subscribe(a.m, "bbt/b/#", 1));
        connect_client(&a, &loop);
        /* Forgotten now, so not resubscribed after the restart. */
        ASSERT_OK(bbt_mqtt_unsubscribe(a.m, "bbt/b/#"));

        bbt_test_broker_kill(&b);
        WAIT_FOR(&loop, a.disconnects == 1, 5000);
        ASSERT(!bbt_mqtt_is_connected(a.m));
        ASSERT_LT(a.last_err, 0);
        ASSERT_EQ(bbt_mqtt_publish(a.m, "bbt/a/x", "x", 1, 1, false, NULL), -ENOTCONN);

        /* Down for a while: a few refused attempts. */
        WAIT_FOR(&loop, a.disconnects >= 3, 5000);
        bbt_test_broker_restart(&b);
        WAIT_FOR(&loop, a.connects == 2, 10000);

        /* Another client publishes after the restart: the subscription was
         * re-sent by the module on its own. b/ first, so that it would have
         * arrived before a/ if a were still subscribed to it. */
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-publisher");
        client_new(&p, &loop, &o);
        connect_client(&p, &loop);
        publish_ok(&p, "bbt/b/x", "not subscribed", 1, false, NULL);
        publish_ok(&p, "bbt/a/x", "after restart", 1, false, NULL);
        WAIT_FOR(&loop, saw_message(&a, "bbt/a/x", "after restart"), 5000);
        WAIT_FOR(&loop, p.pubacks == 2, 5000);
        ASSERT(!saw_message(&a, "bbt/b/x", NULL));

        bbt_mqtt_get_stats(a.m, &st);
        ASSERT_EQ(st.connects, 2);
        ASSERT_EQ(st.disconnects, 1);
        ASSERT_GE(st.connect_failures, 2);
        client_close(&a, &loop);
        client_close(&p, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

/* A QoS 1 message the broker never acknowledged is sent again after the
 * reconnect, and on_publish reports it then. */
TEST(unacknowledged_qos1_resent_after_reconnect)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client a = { .name = "a" }, s = { .name = "subscriber" };
        uv_loop_t loop;
        int mid = -1;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-a");
        client_new(&a, &loop, &o);
        connect_client(&a, &loop);

        /* A frozen broker takes the bytes but never answers. */
        ASSERT_OK(kill(b.pid, SIGSTOP));
        publish_ok(&a, "bbt/resend/x", "in flight", 1, true, &mid);
        bbt_test_run_until(&loop, NULL, NULL, 200);
        ASSERT_EQ(a.pubacks, 0);
        bbt_test_broker_kill(&b);
        WAIT_FOR(&loop, a.disconnects >= 1, 5000);
        bbt_test_broker_restart(&b);
        WAIT_FOR(&loop, a.pubacks == 1, 10000);
        ASSERT_EQ(a.last_ack_mid, mid);

        /* Retained, so a late subscriber proves it reached the new broker. */
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-subscriber");
        client_new(&s, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(s.m, "bbt/resend/#", 1));
        connect_client(&s, &loop);
        WAIT_FOR(&loop, saw_message(&s, "bbt/resend/x", "in flight"), 5000);
        ASSERT(s.msgs[0].retain);

        client_close(&a, &loop);
        client_close(&s, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

/* ---- the will ---- */

struct will_child {
        struct bbt_mqtt *m;
        int ready_fd;
        bool change_will;
        int connects;
};

static void child_disconnected(void *userdata, int status)
{
        struct will_child *w = userdata;

        if (status != 0 || bbt_mqtt_start(w->m) != 0)
                _exit(3);
}

static void child_on_connect(void *userdata, bool session_present)
{
        static const struct bbt_mqtt_will next = {
                .topic = "bbt/will/child", .payload = "new will", .len = 8, .qos = 1,
        };
        struct will_child *w = userdata;

        w->connects++;
        if (w->change_will && w->connects == 1) {
                /* Takes effect at the next CONNECT: reconnect to get there. */
                if (bbt_mqtt_set_will(w->m, &next) != 0 ||
                    bbt_mqtt_disconnect(w->m, child_disconnected) != 0)
                        _exit(3);
                return;
        }
        if (write(w->ready_fd, "c", 1) != 1)
                _exit(3);
}

/* The forked client: connects with a will, says so on READY_FD, then idles
 * until the parent SIGKILLs it. */
static _Noreturn void run_will_child(int port, int ready_fd, bool change_will)
{
        struct bbt_mqtt_callbacks cbs = { .on_connect = child_on_connect };
        struct will_child w = { .ready_fd = ready_fd, .change_will = change_will };
        struct bbt_mqtt_options o;
        uv_loop_t loop;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(2);
        if (uv_loop_init(&loop) != 0)
                _exit(2);
        test_options(&o, port, "bbt-test-will-child");
        o.will.topic = "bbt/will/child";
        o.will.payload = change_will ? "old will" : "lost";
        o.will.len = change_will ? 8 : 4;
        o.will.qos = 1;
        if (bbt_mqtt_new(&loop, &o, &cbs, &w, &w.m) != 0 || bbt_mqtt_start(w.m) != 0)
                _exit(2);
        uv_run(&loop, UV_RUN_DEFAULT);
        _exit(2);
}

static bool pipe_has_byte(int fd)
{
        char ch;

        return read(fd, &ch, 1) == 1;
}

static void will_on_kill(bool change_will, const char *expected)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client s = { .name = "subscriber" };
        uv_loop_t loop;
        int fds[2], status;
        pid_t child;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-will-watcher");
        client_new(&s, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(s.m, "bbt/will/#", 1));
        connect_client(&s, &loop);

        ASSERT_OK(pipe2(fds, O_CLOEXEC | O_NONBLOCK));
        fflush(NULL);
        child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
                close(fds[0]);
                run_will_child(bbt_test_broker_port(&b), fds[1], change_will);
        }
        close(fds[1]);
        WAIT_FOR(&loop, pipe_has_byte(fds[0]), 10000);
        close(fds[0]);
        ASSERT_OK(kill(child, SIGKILL));
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        WAIT_FOR(&loop, saw_message(&s, "bbt/will/child", expected), 5000);
        bbt_test_run_until(&loop, NULL, NULL, 200);
        /* The clean disconnect in the change_will case sent no will. */
        ASSERT_EQ(s.n_msgs, 1);

        client_close(&s, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

TEST(will_delivered_when_client_killed)
{
        will_on_kill(false, "lost");
}

TEST(will_change_applies_on_next_connect)
{
        will_on_kill(true, "new will");
}

TEST(clean_disconnect_sends_no_will)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client s = { .name = "subscriber" }, w = { .name = "w" }, x = { .name = "x" };
        uv_loop_t loop;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-watcher");
        client_new(&s, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(s.m, "bbt/will/#", 1));
        connect_client(&s, &loop);

        test_options(&o, bbt_test_broker_port(&b), "bbt-test-w");
        o.will.topic = "bbt/will/w";
        o.will.payload = "lost";
        o.will.len = 4;
        o.will.qos = 1;
        client_new(&w, &loop, &o);
        connect_client(&w, &loop);
        /* Queued right before the DISCONNECT: must still be written. */
        publish_ok(&w, "bbt/will/last-words", "flushed", 1, false, NULL);
        ASSERT_OK(bbt_mqtt_disconnect(w.m, on_disconnect_done));
        WAIT_FOR(&loop, w.disconnect_done, 5000);
        ASSERT_EQ(w.disconnect_status, 0);
        WAIT_FOR(&loop, saw_message(&s, "bbt/will/last-words", "flushed"), 5000);

        /* A marker published afterwards arrives; the will never does. */
        bbt_test_run_until(&loop, NULL, NULL, 300);
        publish_ok(&s, "bbt/will/marker", "m", 1, false, NULL);
        WAIT_FOR(&loop, saw_message(&s, "bbt/will/marker", "m"), 5000);
        bbt_test_run_until(&loop, NULL, NULL, 200);
        ASSERT(!saw_message(&s, "bbt/will/w", NULL));

        /* Contrast: bbt_mqtt_close() without a disconnect drops the
         * connection, and the broker publishes the will. */
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-x");
        o.will.topic = "bbt/will/x";
        o.will.payload = "dropped";
        o.will.len = 7;
        client_new(&x, &loop, &o);
        connect_client(&x, &loop);
        client_close(&x, &loop);
        WAIT_FOR(&loop, saw_message(&s, "bbt/will/x", "dropped"), 5000);

        client_close(&w, &loop);
        client_close(&s, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

TEST(disconnect_stops_reconnecting_and_start_resumes)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct bbt_mqtt_stats st;
        struct client c = { .name = "c" };
        uv_loop_t loop;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-c");
        client_new(&c, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(c.m, "bbt/c/#", 1));
        connect_client(&c, &loop);
        ASSERT_OK(bbt_mqtt_disconnect(c.m, on_disconnect_done));
        ASSERT_EQ(bbt_mqtt_start(c.m), -EBUSY);
        WAIT_FOR(&loop, c.disconnect_done, 5000);
        bbt_test_run_until(&loop, NULL, NULL, 1000);
        bbt_mqtt_get_stats(c.m, &st);
        ASSERT_EQ(st.connect_attempts, 1);
        ASSERT(!bbt_mqtt_is_connected(c.m));

        /* Started again, it reconnects and resubscribes. */
        connect_client(&c, &loop);
        publish_ok(&c, "bbt/c/x", "again", 1, false, NULL);
        WAIT_FOR(&loop, saw_message(&c, "bbt/c/x", "again"), 5000);

        /* Disconnect right after start, while the connect step still runs. */
        c.disconnect_done = false;
        ASSERT_OK(bbt_mqtt_disconnect(c.m, on_disconnect_done));
        WAIT_FOR(&loop, c.disconnect_done, 5000);
        ASSERT_OK(bbt_mqtt_start(c.m));
        c.disconnect_done = false;
        ASSERT_OK(bbt_mqtt_disconnect(c.m, on_disconnect_done));
        WAIT_FOR(&loop, c.disconnect_done, 5000);
        ASSERT_EQ(c.disconnect_status, 0);
        bbt_test_run_until(&loop, NULL, NULL, 500);
        ASSERT(!bbt_mqtt_is_connected(c.m));

        client_close(&c, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

TEST(close_in_any_state)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client c = { .name = "c" }, d = { .name = "d" };
        uv_loop_t loop;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-close");

        /* Never started. */
        client_new(&c, &loop, &o);
        client_close(&c, &loop);
        /* While the connect step runs on the thread pool. */
        client_new(&c, &loop, &o);
        ASSERT_OK(bbt_mqtt_start(c.m));
        client_close(&c, &loop);
        /* With a disconnect pending: it completes with -ECANCELED. */
        client_new(&c, &loop, &o);
        connect_client(&c, &loop);
        ASSERT_OK(bbt_mqtt_disconnect(c.m, on_disconnect_done));
        client_close(&c, &loop);
        ASSERT(c.disconnect_done);
        ASSERT(c.disconnect_status == 0 || c.disconnect_status == -ECANCELED);
        /* From inside on_message. */
        client_new(&c, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(c.m, "bbt/close/#", 0));
        connect_client(&c, &loop);
        c.close_in_on_message = true;
        publish_ok(&c, "bbt/close/x", "bye", 0, false, NULL);
        WAIT_FOR(&loop, c.closed, 5000);
        /* While backing off. */
        test_options(&o, bbt_test_free_port(), "bbt-test-close-d");
        client_new(&d, &loop, &o);
        ASSERT_OK(bbt_mqtt_start(d.m));
        WAIT_FOR(&loop, d.disconnects >= 1, 5000);
        client_close(&d, &loop);

        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

/* ---- authentication ---- */

TEST(password_auth)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct bbt_mqtt_stats st;
        struct client good = { .name = "good" }, bad = { .name = "bad" }, anon = { .name = "anon" };
        char passwd[512], conf[1024];
        uv_loop_t loop;
        int mid = -1;

        snprintf(passwd, sizeof(passwd), "%s/passwd", bbt_test_broker_dir(&b));
        bbt_test_make_passwd(passwd, "terminal-1", "s3cret");
        snprintf(conf, sizeof(conf), "allow_anonymous false\npassword_file %s\n", passwd);
        bbt_test_broker_start(&b, conf);
        ASSERT_OK(uv_loop_init(&loop));

        test_options(&o, bbt_test_broker_port(&b), "bbt-test-good");
        o.username = "terminal-1";
        o.password = "s3cret";
        client_new(&good, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(good.m, "bbt/auth/#", 1));
        connect_client(&good, &loop);
        publish_ok(&good, "bbt/auth/x", "in", 1, false, &mid);
        WAIT_FOR(&loop, good.n_msgs == 1 && good.pubacks == 1, 5000);

        o.client_id = "bbt-test-bad";
        o.password = "wrong";
        client_new(&bad, &loop, &o);
        ASSERT_OK(bbt_mqtt_start(bad.m));
        o.client_id = "bbt-test-anon";
        o.username = NULL;
        o.password = NULL;
        client_new(&anon, &loop, &o);
        ASSERT_OK(bbt_mqtt_start(anon.m));
        WAIT_FOR(&loop, bad.disconnects >= 3 && anon.disconnects >= 1, 10000);
        ASSERT_EQ(bad.last_err, -EACCES);
        ASSERT_STR_CONTAINS(bad.last_reason, "refused");
        ASSERT_EQ(anon.last_err, -EACCES);
        ASSERT_EQ(bad.connects, 0);
        ASSERT(!bbt_mqtt_is_connected(bad.m));

        /* It keeps trying, but paced by the backoff: at most one attempt per
         * 100 ms floor, far fewer once it has grown to 400-800 ms. */
        bbt_mqtt_get_stats(bad.m, &st);
        {
                struct bbt_mqtt_stats later;
                uint64_t attempts = st.connect_attempts;

                bbt_test_run_until(&loop, NULL, NULL, 2000);
                bbt_mqtt_get_stats(bad.m, &later);
                ASSERT_GE(later.connect_attempts, attempts + 2);
                ASSERT_LE(later.connect_attempts, attempts + 6);
                ASSERT_EQ(later.connects, 0);
        }
        /* The good client was not disturbed. */
        ASSERT_EQ(good.disconnects, 0);

        client_close(&good, &loop);
        client_close(&bad, &loop);
        client_close(&anon, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

/* ---- TLS ---- */

/* Starts a TLS broker whose certificate, signed by "ca", has SAN. */
static void start_tls_broker(struct bbt_test_broker *b, const char *san)
{
        char conf[2048];
        const char *dir = bbt_test_broker_dir(b);

        bbt_test_make_ca(dir, "ca");
        bbt_test_make_cert(dir, "ca", "server", san);
        snprintf(conf, sizeof(conf), "cafile %s/ca.crt\ncertfile %s/server.crt\nkeyfile %s/server.key\n",
                 dir, dir, dir);
        bbt_test_broker_start(b, conf);
}

TEST(tls_verified_connection)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client c = { .name = "tls" };
        char ca[512];
        uv_loop_t loop;
        int mid = -1;

        start_tls_broker(&b, "IP:127.0.0.1,DNS:localhost");
        snprintf(ca, sizeof(ca), "%s/ca.crt", bbt_test_broker_dir(&b));
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-tls");
        o.tls_ca_file = ca;
        client_new(&c, &loop, &o);
        ASSERT_OK(bbt_mqtt_subscribe(c.m, "bbt/tls/#", 1));
        connect_client(&c, &loop);
        publish_ok(&c, "bbt/tls/x", "secret", 1, false, &mid);
        WAIT_FOR(&loop, c.n_msgs == 1 && c.pubacks == 1, 5000);
        ASSERT_EQ(c.last_ack_mid, mid);
        ASSERT_STR_EQ(c.msgs[0].payload, "secret");

        /* Survives a broker restart like a plain connection. */
        bbt_test_broker_restart(&b);
        WAIT_FOR(&loop, c.connects == 2, 10000);
        publish_ok(&c, "bbt/tls/y", "again", 1, false, NULL);
        WAIT_FOR(&loop, saw_message(&c, "bbt/tls/y", "again"), 5000);

        ASSERT_OK(bbt_mqtt_disconnect(c.m, on_disconnect_done));
        WAIT_FOR(&loop, c.disconnect_done, 5000);
        ASSERT_EQ(c.disconnect_status, 0);
        client_close(&c, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

TEST(tls_rejects_unknown_ca_and_plain_clients)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client other = { .name = "other-ca" }, plain = { .name = "plain" };
        char other_ca[512];
        uv_loop_t loop;

        start_tls_broker(&b, "IP:127.0.0.1");
        bbt_test_make_ca(bbt_test_broker_dir(&b), "other");
        snprintf(other_ca, sizeof(other_ca), "%s/other.crt", bbt_test_broker_dir(&b));
        ASSERT_OK(uv_loop_init(&loop));

        test_options(&o, bbt_test_broker_port(&b), "bbt-test-other");
        o.tls_ca_file = other_ca;
        client_new(&other, &loop, &o);
        ASSERT_OK(bbt_mqtt_start(other.m));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-plain");
        client_new(&plain, &loop, &o);
        ASSERT_OK(bbt_mqtt_start(plain.m));

        WAIT_FOR(&loop, other.disconnects >= 2 && plain.disconnects >= 2, 10000);
        ASSERT_EQ(other.last_err, -EKEYREJECTED);
        ASSERT_STR_CONTAINS(other.last_reason, "certificate verify failed");
        ASSERT_EQ(other.connects, 0);
        ASSERT_LT(plain.last_err, 0);
        ASSERT_EQ(plain.connects, 0);

        client_close(&other, &loop);
        client_close(&plain, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

/* The host name is checked against the certificate even though the name is
 * resolved on another thread; tls_insecure turns only that check off. */
TEST(tls_checks_host_name)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client strict = { .name = "strict" }, lax = { .name = "insecure" };
        char ca[512];
        uv_loop_t loop;

        start_tls_broker(&b, "DNS:broker.bbt-test.invalid");
        snprintf(ca, sizeof(ca), "%s/ca.crt", bbt_test_broker_dir(&b));
        ASSERT_OK(uv_loop_init(&loop));

        test_options(&o, bbt_test_broker_port(&b), "bbt-test-strict");
        o.tls_ca_file = ca;
        client_new(&strict, &loop, &o);
        ASSERT_OK(bbt_mqtt_start(strict.m));
        WAIT_FOR(&loop, strict.disconnects >= 1, 10000);
        ASSERT_EQ(strict.last_err, -EKEYREJECTED);
        ASSERT_EQ(strict.connects, 0);

        o.client_id = "bbt-test-insecure";
        o.tls_insecure = true;
        client_new(&lax, &loop, &o);
        connect_client(&lax, &loop);

        client_close(&strict, &loop);
        client_close(&lax, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}

/* ---- keepalive ---- */

/* Whether the broker's log (ARG: its path) shows a PINGREQ from the client. */
static bool log_has_pingreq(void *arg)
{
        char line[1024];
        bool found = false;
        FILE *f = fopen(arg, "re");

        while (f && !found && fgets(line, sizeof(line), f))
                found = strstr(line, "PINGREQ from bbt-test-ka") != NULL;
        if (f)
                fclose(f);
        return found;
}

TEST(keepalive_pings_and_detects_a_frozen_broker)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_mqtt_options o;
        struct client c = { .name = "ka" };
        char log_path[512];
        bool pinged;
        uv_loop_t loop;

        bbt_test_broker_start(&b, NULL);
        ASSERT_OK(uv_loop_init(&loop));
        test_options(&o, bbt_test_broker_port(&b), "bbt-test-ka");
        o.keepalive_s = 5;
        client_new(&c, &loop, &o);
        connect_client(&c, &loop);

        /* Idle past the keepalive: PINGREQ keeps the connection (the broker
         * would drop a silent client after 1.5 x keepalive). The broker's
         * log is read until it shows the ping (a loaded machine may write
         * it late), then the client must still be connected past 8 s. */
        snprintf(log_path, sizeof(log_path), "%s/mosquitto.log", bbt_test_broker_dir(&b));
        pinged = bbt_test_run_until(&loop, log_has_pingreq, log_path, 15000);
        ASSERT(pinged);
        bbt_test_run_until(&loop, NULL, NULL, 8000);
        ASSERT(bbt_mqtt_is_connected(c.m));
        ASSERT_EQ(c.disconnects, 0);

        /* A broker that stops answering is noticed by the missing PINGRESP. */
        ASSERT_OK(kill(b.pid, SIGSTOP));
        WAIT_FOR(&loop, c.disconnects == 1, 15000);
        ASSERT_EQ(c.last_err, -ETIMEDOUT);
        bbt_test_broker_kill(&b);

        client_close(&c, &loop);
        bbt_test_loop_close(&loop);
        bbt_test_broker_stop(&b);
}
