/* bare-publisher: the baseline for tools/bench/agent-footprint.sh.
 *
 * A minimal MQTT client on libuv + libmosquitto, driven from the uv loop the
 * way bbt-agent drives it (mosquitto_socket + uv_poll, loop_read/loop_write,
 * loop_misc on a 1 s timer; no threads), publishing QoS 1 messages of the
 * sizes and on the schedule bbt-agent has at its default settings:
 *
 *   at connect   retained state (~180 bytes) and retained inventory (~60 bytes)
 *   at start     a heartbeat (~420 bytes), then one every --hb-interval (60 s)
 *   every 300 s  a usage interval (~170 bytes)
 *   at stop      the open usage interval, then retained offline state
 *                (~80 bytes; the same is the will)
 *
 * No spool, no /proc reading, no configuration file: what is left is the cost
 * of the libraries and the connection, which is what the agent is compared to.
 * Self-contained on purpose: it does not link the project's runtime. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <uv.h>

#define TOPIC_MAX 256
#define MISC_MS 1000
#define RECONNECT_MS 1000
#define STOP_WAIT_MS 2000

static struct {
        const char *host;
        int port;
        const char *prefix;
        const char *client_id;
        uint64_t hb_ms, usage_ms;
        int keepalive_s;
} opt = {
        .host = "127.0.0.1",
        .port = 1883,
        .prefix = "bbt/v1/000000/bench/bare/",
        .client_id = "bbt-bench-bare",
        .hb_ms = 60000,
        .usage_ms = 300000,
        .keepalive_s = 60,
};

static uv_loop_t loop;
static struct mosquitto *mosq;
static uv_poll_t poll_h;
static bool polling, poll_closing;
static int poll_events;
static uv_timer_t misc_timer, hb_timer, usage_timer, reconnect_timer, stop_timer;
static uv_signal_t sig_term, sig_int;
static bool connected, stopping;
static int stop_mid = -1;
static uint64_t seq;
static int64_t start_real, usage_start;
static unsigned long n_published, n_acked, n_connects;
static bool hb_pending, usage_pending; /* produced while offline: sent at the next connect */

static int64_t now_real(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void poll_cb(uv_poll_t *h, int status, int events);

/* Readable always, writable only while libmosquitto has something to write. */
static void poll_update(void)
{
        int events = UV_READABLE;

        if (!polling)
                return;
        if (mosquitto_want_write(mosq))
                events |= UV_WRITABLE;
        if (events != poll_events && uv_poll_start(&poll_h, events, poll_cb) == 0)
                poll_events = events;
}

static void poll_closed_cb(uv_handle_t *h)
{
        (void)h;
        poll_closing = false;
}

static void poll_stop(void)
{
        if (!polling)
                return;
        polling = false;
        poll_closing = true;
        uv_close((uv_handle_t *)&poll_h, poll_closed_cb);
}

static void reconnect_cb(uv_timer_t *t);

static void schedule_reconnect(void)
{
        if (!stopping)
                uv_timer_start(&reconnect_timer, reconnect_cb, RECONNECT_MS, 0);
}

static int poll_begin(void)
{
        int fd = mosquitto_socket(mosq);

        if (fd < 0)
                return -ENOTCONN;
        /* Reconnects run from a timer a second later: the old handle is closed by then. */
        if (poll_closing)
                return -EBUSY;
        if (uv_poll_init_socket(&loop, &poll_h, fd) < 0)
                return -EIO;
        polling = true;
        poll_events = 0;
        poll_update();
        return 0;
}

/* The socket is closed (by the broker, an error, a keepalive timeout or our
 * DISCONNECT): stop watching it, then reconnect or finish stopping. */
static void socket_gone(int rc)
{
        if (!polling)
                return;
        if (!stopping)
                fprintf(stderr, "bare-publisher: connection lost: %s\n", mosquitto_strerror(rc));
        connected = false;
        poll_stop();
        if (stopping)
                uv_stop(&loop);
        else
                schedule_reconnect();
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
        int rc = MOSQ_ERR_SUCCESS;

        (void)h;
        if (status < 0)
                events = UV_READABLE; /* let loop_read see the error */
        if (events & UV_READABLE)
                rc = mosquitto_loop_read(mosq, 1);
        if (rc == MOSQ_ERR_SUCCESS && (events & UV_WRITABLE))
                rc = mosquitto_loop_write(mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(mosq) < 0) {
                socket_gone(rc);
                return;
        }
        poll_update();
}

static void misc_cb(uv_timer_t *t)
{
        int rc;

        (void)t;
        if (!polling)
                return;
        /* Sends PINGREQ when due; closes the socket when PINGRESP is late. */
        rc = mosquitto_loop_misc(mosq);
        if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(mosq) < 0)
                socket_gone(rc);
        else
                poll_update();
}

static void publish(const char *channel, const char *payload, bool retain, int *mid)
{
        char topic[TOPIC_MAX];
        int rc;

        snprintf(topic, sizeof(topic), "%s%s", opt.prefix, channel);
        rc = mosquitto_publish(mosq, mid, topic, (int)strlen(payload), payload, 1, retain);
        if (rc != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "bare-publisher: publish %s: %s\n", channel, mosquitto_strerror(rc));
                return;
        }
        n_published++;
        poll_update();
}

/* The messages: the same fields as bbt-agent's, so the same sizes. */

static void send_state_online(void)
{
        char buf[512];

        snprintf(buf, sizeof(buf),
                 "{\"v\":1,\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"boot\":1,\"online\":true,"
                 "\"version\":\"0.1.0\",\"hostname\":\"bench\",\"os\":\"Debian GNU/Linux 12 (bookworm)\","
                 "\"machine_id\":\"00000000000000000000000000000000\"}",
                 ++seq, now_real());
        publish("state", buf, true, NULL);
}

static void state_offline(char *buf, size_t size, const char *reason)
{
        snprintf(buf, size, "{\"v\":1,\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"boot\":1,\"online\":false,"
                 "\"reason\":\"%s\"}", ++seq, now_real(), reason);
}

static void send_inventory(void)
{
        char buf[256];

        snprintf(buf, sizeof(buf), "{\"v\":1,\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"boot\":1,\"devices\":[]}",
                 ++seq, now_real());
        publish("inventory", buf, true, NULL);
}

static void send_heartbeat(void)
{
        char buf[768];
        int64_t ts = now_real();

        snprintf(buf, sizeof(buf),
                 "{\"v\":1,\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"boot\":1,\"uptime\":%" PRId64 ","
                 "\"load\":[0.12,0.08,0.05],\"cpu\":1.25,"
                 "\"mem\":{\"total\":8250511360,\"available\":6123456512},"
                 "\"disk\":{\"root\":{\"total\":270553174016,\"free\":85688283136},"
                 "\"spool\":{\"total\":270553174016,\"free\":85688283136}},"
                 "\"net\":[{\"ifname\":\"eth0\",\"up\":true},{\"ifname\":\"wlan0\",\"up\":false},"
                 "{\"ifname\":\"lo0\",\"up\":false}],"
                 "\"state\":\"standby\",\"spool\":{\"depth\":0,\"dropped\":0},\"clock_synced\":false}",
                 ++seq, ts, 5000 + (ts - start_real) / 1000);
        if (connected)
                publish("hb", buf, false, NULL);
        else
                hb_pending = true;
}

static void send_usage(void)
{
        char buf[512];
        int64_t end = now_real();

        snprintf(buf, sizeof(buf),
                 "{\"v\":1,\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"boot\":1,\"start\":%" PRId64 ",\"end\":%" PRId64 ","
                 "\"state\":\"standby\",\"touch\":0,\"pen\":0,\"mouse\":0,\"key\":0,\"interactive_ms\":0,\"audio_ms\":0}",
                 ++seq, end, usage_start, end);
        usage_start = end;
        if (connected)
                publish("usage", buf, false, NULL);
        else
                usage_pending = true;
}

static void hb_cb(uv_timer_t *t)
{
        (void)t;
        send_heartbeat();
}

static void usage_cb(uv_timer_t *t)
{
        (void)t;
        send_usage();
}

/* ---- libmosquitto callbacks (inside loop_read/loop_write/loop_misc) ---- */

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
        char topic[TOPIC_MAX];

        (void)m, (void)obj;
        if (rc != 0) {
                fprintf(stderr, "bare-publisher: connection refused: %s\n", mosquitto_connack_string(rc));
                return;
        }
        connected = true;
        n_connects++;
        snprintf(topic, sizeof(topic), "%scmd", opt.prefix);
        mosquitto_subscribe(mosq, NULL, topic, 1);
        send_state_online();
        send_inventory();
        if (hb_pending)
                hb_pending = false, send_heartbeat();
        if (usage_pending)
                usage_pending = false, send_usage();
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
        (void)m, (void)obj, (void)rc;
        connected = false;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
        (void)m, (void)obj;
        n_acked++;
        if (stopping && mid == stop_mid) {
                mosquitto_disconnect(mosq);
                poll_update();
        }
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
        (void)m, (void)obj, (void)msg; /* commands are not answered by the baseline */
}

/* ---- connect, reconnect, stop ---- */

static int do_connect(bool first)
{
        int rc = first ? mosquitto_connect(mosq, opt.host, opt.port, opt.keepalive_s) : mosquitto_reconnect(mosq);

        if (rc != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "bare-publisher: cannot connect to %s:%d: %s\n", opt.host, opt.port,
                        rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
                return -1;
        }
        return poll_begin();
}

static void reconnect_cb(uv_timer_t *t)
{
        (void)t;
        if (do_connect(false) < 0)
                schedule_reconnect();
}

static void stop_timer_cb(uv_timer_t *t)
{
        (void)t;
        uv_stop(&loop);
}

static void signal_cb(uv_signal_t *s, int signum)
{
        char buf[256];

        (void)s, (void)signum;
        if (stopping) {
                uv_stop(&loop);
                return;
        }
        stopping = true;
        uv_timer_stop(&hb_timer);
        uv_timer_stop(&usage_timer);
        uv_timer_stop(&reconnect_timer);
        uv_timer_start(&stop_timer, stop_timer_cb, STOP_WAIT_MS, 0);
        if (!connected) {
                uv_stop(&loop);
                return;
        }
        /* Like the agent: the open usage interval, then the offline state. */
        send_usage();
        state_offline(buf, sizeof(buf), "shutdown");
        publish("state", buf, true, &stop_mid);
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bare-publisher [OPTION]...\n"
                "Baseline for the agent footprint benchmark: a minimal libuv + libmosquitto\n"
                "client publishing QoS 1 messages like bbt-agent at its default settings.\n"
                "\n"
                "  --host HOST            broker host (default 127.0.0.1)\n"
                "  --port PORT            broker port (default 1883)\n"
                "  --topic-prefix PREFIX  topic prefix (default bbt/v1/000000/bench/bare/)\n"
                "  --client-id ID         MQTT client id (default bbt-bench-bare)\n"
                "  --hb-interval SECONDS  heartbeat interval (default 60)\n"
                "  --usage-interval SECONDS  usage interval (default 300)\n"
                "  -h, --help             show this help\n"
                "\n"
                "SIGTERM/SIGINT: publish the offline state, disconnect, print counts, exit 0.\n");
}

static bool parse_seconds(const char *s, uint64_t *ms)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || *end || v < 0.1 || v > 86400)
                return false;
        *ms = (uint64_t)(v * 1000);
        return true;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "host", required_argument, NULL, 'H' },
                { "port", required_argument, NULL, 'p' },
                { "topic-prefix", required_argument, NULL, 't' },
                { "client-id", required_argument, NULL, 'i' },
                { "hb-interval", required_argument, NULL, 'b' },
                { "usage-interval", required_argument, NULL, 'u' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        char will[256];
        char topic[TOPIC_MAX];
        char *end = NULL;
        int c;

        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (c) {
                case 'H':
                        opt.host = optarg;
                        break;
                case 'p':
                        opt.port = (int)strtol(optarg, &end, 10);
                        if (*optarg == '\0' || *end || opt.port <= 0 || opt.port > 65535) {
                                fprintf(stderr, "bare-publisher: bad port %s\n", optarg);
                                return 2;
                        }
                        break;
                case 't':
                        opt.prefix = optarg;
                        break;
                case 'i':
                        opt.client_id = optarg;
                        break;
                case 'b':
                case 'u':
                        if (!parse_seconds(optarg, c == 'b' ? &opt.hb_ms : &opt.usage_ms)) {
                                fprintf(stderr, "bare-publisher: bad interval %s\n", optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);
        start_real = usage_start = now_real();

        uv_loop_init(&loop);
        mosquitto_lib_init();
        mosq = mosquitto_new(opt.client_id, true, NULL);
        if (!mosq) {
                fprintf(stderr, "bare-publisher: mosquitto_new: %s\n", strerror(errno));
                return 1;
        }
        mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_connect_callback_set(mosq, on_connect);
        mosquitto_disconnect_callback_set(mosq, on_disconnect);
        mosquitto_publish_callback_set(mosq, on_publish);
        mosquitto_message_callback_set(mosq, on_message);
        snprintf(topic, sizeof(topic), "%sstate", opt.prefix);
        state_offline(will, sizeof(will), "lost");
        mosquitto_will_set(mosq, topic, (int)strlen(will), will, 1, true);

        uv_timer_init(&loop, &misc_timer);
        uv_timer_init(&loop, &hb_timer);
        uv_timer_init(&loop, &usage_timer);
        uv_timer_init(&loop, &reconnect_timer);
        uv_timer_init(&loop, &stop_timer);
        uv_signal_init(&loop, &sig_term);
        uv_signal_init(&loop, &sig_int);
        uv_signal_start(&sig_term, signal_cb, SIGTERM);
        uv_signal_start(&sig_int, signal_cb, SIGINT);

        /* A blocking connect: on loopback it is immediate, and it keeps the
         * baseline free of the thread pool. */
        if (do_connect(true) < 0)
                schedule_reconnect();
        uv_timer_start(&misc_timer, misc_cb, MISC_MS, MISC_MS);
        /* Like the agent: the first heartbeat at start (it goes out once the
         * CONNACK is in), then every interval. */
        uv_timer_start(&hb_timer, hb_cb, 0, opt.hb_ms);
        uv_timer_start(&usage_timer, usage_cb, opt.usage_ms, opt.usage_ms);
        uv_run(&loop, UV_RUN_DEFAULT);

        fprintf(stderr, "bare-publisher: %lu published, %lu acknowledged, %lu connects\n", n_published, n_acked,
                n_connects);
        poll_stop();
        mosquitto_destroy(mosq);
        mosquitto_lib_cleanup();
        return 0;
}
