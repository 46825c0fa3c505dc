/* bbt-sim: a county of simulated classroom terminals, each a real MQTT client speaking protocol v1, with its ground truth. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "bbt/log.h"
#include "bbt/mqtt.h"
#include "bbt/protocol.h"
#include "scenario.h"

#define WINDOW 20 /* messages in flight per terminal, as the agent's default */
#define RESEND_QUEUE 16 /* resend requests waiting at most, as the agent's queue */

struct client {
        struct sim *sim;
        struct sim_terminal *t;
        struct bbt_mqtt *mqtt;
        char cmd_topic[BBT_TOPIC_MAX];
        size_t next;       /* index of the next message to publish */
        size_t acked;      /* messages acknowledged */
        int inflight;
        size_t resend_from, resend_to, resend_next; /* a resend being answered (seq, inclusive) */
        char resend_id[72];
        /* Resends waiting their turn, as the agent queues them (several
         * aggregators of a share group may each ask one). */
        struct {
                size_t from, to;
                char id[72];
        } queued[RESEND_QUEUE];
        int n_queued;
        bool connected, done, closing, failed_once;
        /* --live: when the next heartbeat, usage interval and peripheral change are due (real ms) */
        int64_t next_hb, next_usage, next_periph, usage_start;
        bool periph_in;
};

struct sim {
        uv_loop_t loop;
        struct sim_scenario scn;
        struct client *clients;
        size_t n_clients;
        size_t connected, done, closed;
        const char *host;
        int port;
        int connect_rate;   /* new connections per second */
        size_t next_connect;
        double linger_s;
        uint64_t started_ms, done_ms, last_tail_ms;
        uint64_t resends, republished;
        size_t connect_failures; /* terminals that failed to connect at least once */
        double live_s;          /* --live: run this long in real time after connecting */
        int live_hb_s, live_usage_s, live_periph_s;
        uint64_t live_until_ms;
        uint64_t rng;
        uv_timer_t connect_timer, progress_timer, linger_timer, live_timer;
        uv_signal_t sigint, sigterm;
        bool stopping, quiet;
        bool tail_over; /* the linger is over: no more tail heartbeats, only what is in flight */
        int exit_code;
};

static uint64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t real_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(struct client *c);
static void stop_all(struct sim *s);
static void live_message(struct client *c, enum bbt_channel ch, int64_t now);

static int publish_msg(struct client *c, size_t i)
{
        const struct sim_msg *m = &c->t->msgs[i];
        char topic[BBT_TOPIC_MAX];
        int r;

        sim_topic(&c->sim->scn, c->t, m->channel, topic, sizeof(topic));
        /* Retained where the protocol says, but never for a resend. */
        r = bbt_mqtt_publish(c->mqtt, topic, m->json, m->len, 1, bbt_channel_retained(m->channel), NULL);
        if (r == 0)
                c->inflight++;
        return r;
}

/* Appends the reply to the resend being answered and queues it. */
static void finish_resend(struct client *c)
{
        struct bbt_msg m;
        cJSON *result = cJSON_CreateObject();

        cJSON_AddNumberToObject(result, "from", (double)c->resend_from);
        cJSON_AddNumberToObject(result, "to", (double)c->resend_to);
        cJSON_AddNumberToObject(result, "sent", (double)(c->resend_next - c->resend_from));
        cJSON_AddNumberToObject(result, "first_retained", 1);
        cJSON_AddNumberToObject(result, "last_seq", (double)c->t->n_msgs);
        bbt_msg_init(&m, BBT_CH_CMD_REPLY);
        m.ts = real_ms() + c->t->skew_ms;
        m.boot = 1;
        m.body.reply.id = c->resend_id;
        m.body.reply.ok = true;
        m.body.reply.result_json = result;
        if (sim_append(c->t, &m) < 0)
                fprintf(stderr, "bbt-sim: %s/%s: cannot answer resend %s\n", c->sim->scn.schools[c->t->school].code,
                        c->t->id, c->resend_id);
        cJSON_Delete(result);
        c->resend_id[0] = '\0';
        c->sim->scn.messages++;
        if (c->n_queued > 0) {
                snprintf(c->resend_id, sizeof(c->resend_id), "%s", c->queued[0].id);
                c->resend_from = c->resend_next = c->queued[0].from;
                c->resend_to = c->queued[0].to;
                memmove(&c->queued[0], &c->queued[1], (size_t)--c->n_queued * sizeof(c->queued[0]));
        }
}

static void pump(struct client *c)
{
        if (!c->connected || c->closing)
                return;
        while (c->inflight < WINDOW) {
                if (c->resend_id[0]) {
                        size_t seq = c->resend_next;

                        if (seq > c->resend_to || seq > c->t->n_msgs) {
                                finish_resend(c);
                                continue;
                        }
                        /* Republished unretained, byte for byte. */
                        {
                                const struct sim_msg *m = &c->t->msgs[seq - 1];
                                char topic[BBT_TOPIC_MAX];

                                sim_topic(&c->sim->scn, c->t, m->channel, topic, sizeof(topic));
                                if (bbt_mqtt_publish(c->mqtt, topic, m->json, m->len, 1, false, NULL) < 0)
                                        return;
                                c->inflight++;
                                c->resend_next++;
                                c->sim->republished++;
                        }
                        continue;
                }
                if (c->next >= c->t->n_msgs)
                        break;
                if (publish_msg(c, c->next) < 0)
                        return;
                c->next++;
        }
        if (!c->done && c->next >= c->t->n_msgs && c->inflight == 0 && !c->resend_id[0]) {
                c->done = true;
                c->sim->done++;
        }
}

static void on_publish(void *userdata, int mid)
{
        struct client *c = userdata;

        if (c->inflight > 0)
                c->inflight--;
        c->acked++;
        pump(c);
}

static void on_connect(void *userdata, bool session_present)
{
        struct client *c = userdata;

        if (!c->connected)
                c->sim->connected++;
        /* What was in flight when a connection dropped, libmosquitto sends
         * again itself; whatever is lost anyway the aggregator asks for. */
        c->connected = true;
        pump(c);
}

static void on_disconnect(void *userdata, int error, const char *reason)
{
        struct client *c = userdata;

        if (c->connected && !c->closing && !c->sim->quiet)
                fprintf(stderr, "bbt-sim: %s/%s: %s\n", c->sim->scn.schools[c->t->school].code, c->t->id, reason);
        /* A terminal that cannot connect at all retries for ever: say so. */
        if (!c->connected && !c->closing && !c->failed_once) {
                c->failed_once = true;
                if (c->sim->connect_failures++ < 5)
                        fprintf(stderr, "bbt-sim: %s/%s cannot connect: %s (retrying)\n",
                                c->sim->scn.schools[c->t->school].code, c->t->id, reason);
                else if (c->sim->connect_failures == 6)
                        fprintf(stderr, "bbt-sim: more terminals cannot connect; the progress line counts them\n");
        }
        if (c->connected)
                c->sim->connected--;
        c->connected = false;
}

static void on_message(void *userdata, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
        struct client *c = userdata;
        struct bbt_msg m;

        if (strcmp(topic, c->cmd_topic) != 0 || bbt_msg_decode(BBT_CH_CMD, payload, len, &m, NULL) < 0)
                return;
        if (m.body.cmd.op_code == BBT_OP_RESEND && c->resend_id[0] && m.body.cmd.args.resend.from >= 1 &&
            c->n_queued < RESEND_QUEUE) {
                /* One is being answered: this one waits its turn. */
                snprintf(c->queued[c->n_queued].id, sizeof(c->queued[0].id), "%s", m.body.cmd.id);
                c->queued[c->n_queued].from = (size_t)m.body.cmd.args.resend.from;
                c->queued[c->n_queued].to = (size_t)m.body.cmd.args.resend.to;
                c->n_queued++;
                c->sim->resends++;
        } else if (m.body.cmd.op_code == BBT_OP_RESEND && !c->resend_id[0] && m.body.cmd.args.resend.from >= 1) {
                snprintf(c->resend_id, sizeof(c->resend_id), "%s", m.body.cmd.id);
                c->resend_from = c->resend_next = (size_t)m.body.cmd.args.resend.from;
                c->resend_to = (size_t)m.body.cmd.args.resend.to;
                c->sim->resends++;
                if (c->done) {
                        c->done = false;
                        c->sim->done--;
                }
                pump(c);
        }
        bbt_msg_free(&m);
}

static void on_closed(void *userdata)
{
        struct client *c = userdata;

        c->sim->closed++;
        if (c->sim->closed == c->sim->n_clients) {
                uv_close((uv_handle_t *)&c->sim->connect_timer, NULL);
                uv_close((uv_handle_t *)&c->sim->progress_timer, NULL);
                uv_close((uv_handle_t *)&c->sim->linger_timer, NULL);
                uv_close((uv_handle_t *)&c->sim->live_timer, NULL);
                uv_close((uv_handle_t *)&c->sim->sigint, NULL);
                uv_close((uv_handle_t *)&c->sim->sigterm, NULL);
        }
}

static void on_disconnected(void *userdata, int status)
{
        struct client *c = userdata;

        bbt_mqtt_close(c->mqtt, on_closed);
}

static int client_start(struct sim *s, struct client *c)
{
        static const struct bbt_mqtt_callbacks cbs = {
                .on_connect = on_connect,
                .on_disconnect = on_disconnect,
                .on_message = on_message,
                .on_publish = on_publish,
        };
        struct bbt_mqtt_options o;
        char id[96];
        int r;

        bbt_mqtt_options_init(&o);
        snprintf(id, sizeof(id), "bbt-%s-%s-%s", s->scn.o.county, s->scn.schools[c->t->school].code, c->t->id);
        o.host = s->host;
        o.port = s->port;
        o.client_id = id;
        o.clean_session = true;
        o.backoff_min_ms = 200;
        o.backoff_max_ms = 5000;
        r = bbt_mqtt_new(&s->loop, &o, &cbs, c, &c->mqtt);
        if (r == 0) {
                sim_topic(&s->scn, c->t, BBT_CH_CMD, c->cmd_topic, sizeof(c->cmd_topic));
                r = bbt_mqtt_subscribe(c->mqtt, c->cmd_topic, 1);
        }
        if (r == 0)
                r = bbt_mqtt_start(c->mqtt);
        return r;
}

static void on_connect_timer(uv_timer_t *h)
{
        struct sim *s = h->data;
        size_t batch = (size_t)(s->connect_rate / 10 > 0 ? s->connect_rate / 10 : 1);

        for (size_t i = 0; i < batch && s->next_connect < s->n_clients; i++, s->next_connect++) {
                int r = client_start(s, &s->clients[s->next_connect]);

                if (r < 0) {
                        fprintf(stderr, "bbt-sim: cannot start a client: %s\n", strerror(-r));
                        s->exit_code = 1;
                        stop_all(s);
                        return;
                }
        }
        if (s->next_connect == s->n_clients)
                uv_timer_stop(h);
}

/* Every terminal disconnects cleanly (so the broker drops no will). */
static void stop_all(struct sim *s)
{
        if (s->stopping)
                return;
        s->stopping = true;
        uv_timer_stop(&s->connect_timer);
        uv_timer_stop(&s->progress_timer);
        uv_timer_stop(&s->linger_timer);
        uv_timer_stop(&s->live_timer);
        for (size_t i = 0; i < s->n_clients; i++) {
                struct client *c = &s->clients[i];

                c->closing = true;
                if (!c->mqtt) {
                        s->closed++;
                        continue;
                }
                if (!c->connected || bbt_mqtt_disconnect(c->mqtt, on_disconnected) < 0)
                        bbt_mqtt_close(c->mqtt, on_closed);
        }
        if (s->closed == s->n_clients) {
                uv_close((uv_handle_t *)&s->connect_timer, NULL);
                uv_close((uv_handle_t *)&s->progress_timer, NULL);
                uv_close((uv_handle_t *)&s->linger_timer, NULL);
                uv_close((uv_handle_t *)&s->live_timer, NULL);
                uv_close((uv_handle_t *)&s->sigint, NULL);
                uv_close((uv_handle_t *)&s->sigterm, NULL);
        }
}

static void on_linger(uv_timer_t *h)
{
        struct sim *s = h->data;

        /* The linger is over: no new tail heartbeats (each one would make its
         * terminal busy again, and with many terminals one is always busy
         * when this looks); what is in flight and any resend being answered
         * still finish. */
        if (s->done_ms)
                s->tail_over = true;
        /* Still answering a resend: wait for it. */
        if (s->done < s->n_clients)
                return;
        stop_all(s);
}

static void on_progress(uv_timer_t *h)
{
        struct sim *s = h->data;
        uint64_t acked = 0;

        for (size_t i = 0; i < s->n_clients; i++)
                acked += s->clients[i].acked;
        /* After the week, the terminals run on as agents do: a live heartbeat
         * every 2 s while they linger, so a subscriber that missed messages
         * (a broker restarted without persistence) sees the gap and asks. */
        if (s->done_ms && !s->stopping && !s->tail_over && mono_ms() - s->last_tail_ms >= 2000) {
                s->last_tail_ms = mono_ms();
                for (size_t i = 0; i < s->n_clients; i++)
                        if (s->clients[i].connected) {
                                live_message(&s->clients[i], BBT_CH_HB, real_ms());
                                pump(&s->clients[i]);
                        }
        }
        if (!s->quiet)
                fprintf(stderr,
                        "bbt-sim: %zu/%zu terminals connected, %" PRIu64 " messages acknowledged, %zu done%s\n",
                        s->connected, s->n_clients, acked, s->done,
                        s->connect_failures ? " (some failed to connect, retrying)" : "");
        if (s->done == s->n_clients && !s->done_ms && s->live_s <= 0) {
                s->done_ms = s->last_tail_ms = mono_ms();
                /* One live heartbeat each, as a running agent keeps sending:
                 * it shows the aggregator any gap at the end of the week. */
                for (size_t i = 0; i < s->n_clients; i++) {
                        live_message(&s->clients[i], BBT_CH_HB, real_ms());
                        pump(&s->clients[i]);
                }
                if (!s->quiet)
                        fprintf(stderr, "bbt-sim: everything sent in %.1f s; answering resends for %.0f s\n",
                                (double)(s->done_ms - s->started_ms) / 1000.0, s->linger_s);
                uv_timer_start(&s->linger_timer, on_linger, (uint64_t)(s->linger_s * 1000), 500);
        }
}

static uint64_t rng_next(uint64_t *st)
{
        uint64_t z = (*st += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* A heartbeat, usage interval or peripheral change of a live terminal, now. */
static void live_message(struct client *c, enum bbt_channel ch, int64_t now)
{
        struct bbt_msg m;
        struct bbt_dev dev = { .kind = BBT_KIND_STORAGE, .subsystem = "block", .bus = "usb", .vendor = "Kingston",
                               .model = "DataTraveler", .syspath = "/sys/devices/pci0000:00/usb1/1-3/block/sdb" };
        int64_t ts = now + c->t->skew_ms;

        bbt_msg_init(&m, ch);
        m.ts = ts;
        m.boot = 1;
        switch (ch) {
        case BBT_CH_HB:
                m.body.hb.uptime = 3600;
                m.body.hb.cpu = 3.0;
                m.body.hb.mem_total = 8LL << 30;
                m.body.hb.mem_available = 5LL << 30;
                m.body.hb.disk_root.total = 120LL << 30;
                m.body.hb.disk_root.free = 80LL << 30;
                m.body.hb.state = BBT_USAGE_ACTIVE;
                m.body.hb.clock_synced = true;
                break;
        case BBT_CH_USAGE:
                m.body.usage.start = c->usage_start + c->t->skew_ms;
                m.body.usage.end = ts;
                m.body.usage.state = BBT_USAGE_ACTIVE;
                m.body.usage.touch = 20;
                m.body.usage.interactive_ms = (ts - m.body.usage.start) / 2;
                c->usage_start = now;
                break;
        default:
                m.body.periph.action = c->periph_in ? BBT_PERIPH_REMOVE : BBT_PERIPH_ADD;
                m.body.periph.dev = dev;
                c->periph_in = !c->periph_in;
                break;
        }
        if (sim_append(c->t, &m) == 0) {
                c->sim->scn.messages++;
                if (c->done) {
                        c->done = false;
                        c->sim->done--;
                }
        }
}

static void on_live(uv_timer_t *h)
{
        struct sim *s = h->data;
        int64_t now = real_ms();

        if (mono_ms() >= s->live_until_ms) {
                uv_timer_stop(h);
                s->live_s = 0;
                uv_timer_start(&s->linger_timer, on_linger, (uint64_t)(s->linger_s * 1000), 500);
                return;
        }
        for (size_t i = 0; i < s->n_clients; i++) {
                struct client *c = &s->clients[i];

                if (!c->connected)
                        continue;
                if (!c->next_hb) {
                        /* Spread over the interval, so the broker sees a steady rate. */
                        c->next_hb = now + (int64_t)(rng_next(&s->rng) % ((uint64_t)s->live_hb_s * 1000));
                        c->next_usage = now + (int64_t)(rng_next(&s->rng) % ((uint64_t)s->live_usage_s * 1000));
                        c->next_periph = now + (int64_t)(rng_next(&s->rng) % ((uint64_t)s->live_periph_s * 1000));
                        c->usage_start = now;
                }
                if (now >= c->next_hb) {
                        live_message(c, BBT_CH_HB, now);
                        c->next_hb += (int64_t)s->live_hb_s * 1000;
                }
                if (now >= c->next_usage) {
                        live_message(c, BBT_CH_USAGE, now);
                        c->next_usage += (int64_t)s->live_usage_s * 1000;
                }
                if (now >= c->next_periph) {
                        live_message(c, BBT_CH_PERIPH, now);
                        c->next_periph += (int64_t)s->live_periph_s * 1000;
                }
                pump(c);
        }
}

static void on_signal(uv_signal_t *h, int signum)
{
        struct sim *s = h->data;

        fprintf(stderr, "bbt-sim: %s: stopping\n", strsignal(signum));
        s->exit_code = 1;
        stop_all(s);
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-sim [OPTION]...\n"
                "Simulate a county of 班班通 terminals over one school week, each a real MQTT client\n"
                "speaking protocol v1, faster than real time; write the registry files and the\n"
                "ground truth of the figures bbt-report should print.\n"
                "\n"
                "  -H, --host HOST          broker (default 127.0.0.1)\n"
                "  -p, --port PORT          broker port (default 1883)\n"
                "      --county CODE        6-digit county code (default 510199)\n"
                "      --schools N          schools (default 20)\n"
                "      --terminals N        terminals per school (default 30)\n"
                "      --seed S             scenario seed (default 1)\n"
                "      --week DATE          the Monday of the simulated week (default: last week's)\n"
                "      --hb-interval SECS   heartbeat interval in the simulated week (default 900)\n"
                "      --chunk SECS         usage intervals cut at least this often (default 900)\n"
                "      --left-on PCT        this share of the reporting terminals is never switched off:\n"
                "                           on in standby evenings, nights and days off (default 0)\n"
                "      --power-off HH:MM    a power-off schedule: every terminal still on is powered off\n"
                "                           at this time each day (default none)\n"
                "      --registry DIR       write schools.csv, terminals.csv, calendar.csv, bells.csv here\n"
                "      --truth FILE         write the ground truth (bbt-report JSON shape) here\n"
                "      --produced FILE      write the number of messages produced here when done\n"
                "      --only-files         write the files and exit without connecting\n"
                "      --connect-rate N     new connections per second (default 2000)\n"
                "      --linger SECS        keep answering resend commands this long after sending (default 3)\n"
                "      --live SECS          no simulated week: run live this long, in real time: a heartbeat\n"
                "                           every --live-hb (60 s), a usage interval every --live-usage\n"
                "                           (300 s), a USB stick in or out every --live-periph (600 s)\n"
                "  -q, --quiet              no progress lines\n"
                "  -h, --help, -V, --version\n"
                "\n"
                "The week: Monday to Thursday are school days, Friday a county holiday, Saturday a\n"
                "调休 make-up day; the second school is on holiday Tuesday to Thursday. Terminals: teachers\n"
                "using touch, video only, rarely used, never switched on, never reporting; a few\n"
                "with a missing document camera, a worn projector lamp, an overheat raised and\n"
                "cleared; two of the third school run 10 minutes fast. See docs/simulator.md.\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "host", required_argument, NULL, 'H' },       { "port", required_argument, NULL, 'p' },
                { "county", required_argument, NULL, 'C' },     { "schools", required_argument, NULL, 'S' },
                { "terminals", required_argument, NULL, 'T' },  { "seed", required_argument, NULL, 's' },
                { "week", required_argument, NULL, 'w' },       { "hb-interval", required_argument, NULL, 'b' },
                { "chunk", required_argument, NULL, 'k' },      { "registry", required_argument, NULL, 'r' },
                { "truth", required_argument, NULL, 't' },      { "produced", required_argument, NULL, 'P' },
                { "only-files", no_argument, NULL, 'O' },       { "connect-rate", required_argument, NULL, 'c' },
                { "linger", required_argument, NULL, 'l' },     { "quiet", no_argument, NULL, 'q' },
                { "live", required_argument, NULL, 'L' },       { "live-hb", required_argument, NULL, 'a' },
                { "live-usage", required_argument, NULL, 'u' }, { "live-periph", required_argument, NULL, 'e' },
                { "left-on", required_argument, NULL, 'N' },    { "power-off", required_argument, NULL, 'F' },
                { "help", no_argument, NULL, 'h' },             { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        struct sim_options o = { .county = "510199", .schools = 20, .terminals_per_school = 30, .seed = 1,
                                 .hb_interval_s = 900, .chunk_s = 900, .offset_min = 480, .history = true };
        const char *registry = NULL, *truth = NULL, *produced = NULL, *week = NULL;
        struct sim *s = calloc(1, sizeof(*s));
        bool only_files = false;
        int c, r;

        if (!s)
                return 1;
        s->host = "127.0.0.1";
        s->port = 1883;
        s->connect_rate = 2000;
        s->linger_s = 3;
        s->live_hb_s = 60;
        s->live_usage_s = 300;
        s->live_periph_s = 600;
        while ((c = getopt_long(argc, argv, "H:p:qhV", longopts, NULL)) != -1) {
                char *end = NULL;
                long long v = 0;

                if (optarg && strchr("pSTsbkclLaueN", c)) {
                        errno = 0;
                        v = strtoll(optarg, &end, 10);
                        if (errno || !end || *end || v < 0 || (c != 's' && v > 10000000)) {
                                fprintf(stderr, "bbt-sim: %s: expected a number\n", optarg);
                                return 2;
                        }
                }
                switch (c) {
                case 'H': s->host = optarg; break;
                case 'p': s->port = (int)v; break;
                case 'C':
                        if (!bbt_county_valid(optarg)) {
                                fprintf(stderr, "bbt-sim: --county %s: expected 6 digits\n", optarg);
                                return 2;
                        }
                        o.county = optarg;
                        break;
                case 'S': o.schools = (size_t)v; break;
                case 'T': o.terminals_per_school = (size_t)v; break;
                case 's': o.seed = (uint64_t)v; break;
                case 'w': week = optarg; break;
                case 'b': o.hb_interval_s = (int)v; break;
                case 'k': o.chunk_s = (int)v; break;
                case 'N': o.left_on_pct = (int)v; break;
                case 'F': {
                        int hh = -1, mm = -1, n = 0;

                        if (sscanf(optarg, "%2d:%2d%n", &hh, &mm, &n) == 2 && !optarg[n] && hh >= 0 && mm >= 0 &&
                            mm < 60 && hh * 60 + mm <= 24 * 60)
                                o.power_off_min = hh * 60 + mm;
                        if (o.power_off_min <= 0) {
                                fprintf(stderr, "bbt-sim: --power-off %s: expected a time HH:MM after 00:00\n", optarg);
                                return 2;
                        }
                        break;
                }
                case 'r': registry = optarg; break;
                case 't': truth = optarg; break;
                case 'P': produced = optarg; break;
                case 'O': only_files = true; break;
                case 'c': s->connect_rate = (int)v; break;
                case 'l': s->linger_s = (double)v; break;
                case 'q': s->quiet = true; break;
                case 'L': s->live_s = (double)v; o.history = false; break;
                case 'a': s->live_hb_s = (int)v; break;
                case 'u': s->live_usage_s = (int)v; break;
                case 'e': s->live_periph_s = (int)v; break;
                case 'h': usage(stdout); return 0;
                case 'V': printf("bbt-sim %s (protocol v%d)\n", BBT_VERSION, BBT_PROTOCOL_VERSION); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc || o.schools < 1 || o.terminals_per_school < 1 || o.terminals_per_school > 999 ||
            o.schools > 9999 || o.left_on_pct > 100 || o.hb_interval_s < 1 || o.chunk_s < 60 || o.chunk_s > 3600 ||
            s->connect_rate < 1 ||
            s->live_hb_s < 1 || s->live_usage_s < 1 || s->live_usage_s > 3600 || s->live_periph_s < 1) {
                fprintf(stderr, "bbt-sim: bad arguments (schools 1..9999, terminals 1..999, chunk 60..3600, "
                                "left-on 0..100)\n");
                usage(stderr);
                return 2;
        }
        o.now_ms = real_ms();
        if (week) {
                int y, m, d;
                int32_t day;

                if (sscanf(week, "%d-%d-%d", &y, &m, &d) != 3 || y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) {
                        fprintf(stderr, "bbt-sim: --week %s: expected YYYY-MM-DD\n", week);
                        return 2;
                }
                y -= m <= 2;
                {
                        int era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
                        int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
                        int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

                        day = era * 146097 + doe - 719468;
                }
                if ((day + 3) % 7 != 0) {
                        fprintf(stderr, "bbt-sim: --week %s is not a Monday\n", week);
                        return 2;
                }
                o.monday = day;
        } else {
                int32_t today = (int32_t)((o.now_ms + (int64_t)o.offset_min * 60000) / 86400000);

                o.monday = today - (today + 3) % 7 - 7; /* last week's Monday */
        }
        r = sim_scenario_build(&o, &s->scn);
        if (r < 0) {
                fprintf(stderr, "bbt-sim: cannot build the scenario: %s\n", strerror(-r));
                return 1;
        }
        if (registry && (r = sim_write_registry(&s->scn, registry)) < 0) {
                fprintf(stderr, "bbt-sim: %s: %s\n", registry, strerror(-r));
                return 1;
        }
        if (truth) {
                FILE *f = fopen(truth, "we");

                if (!f || sim_write_truth(&s->scn, f) < 0 || fclose(f) != 0) {
                        fprintf(stderr, "bbt-sim: %s: cannot write the truth\n", truth);
                        return 1;
                }
        }
        if (!s->quiet)
                fprintf(stderr, "bbt-sim: %zu schools, %zu terminals, %" PRIu64 " messages for the week of day %d\n",
                        s->scn.n_schools, s->scn.n_terminals, s->scn.messages, o.monday);
        if (only_files) {
                sim_scenario_free(&s->scn);
                free(s);
                return 0;
        }

        bbt_log_init("bbt-sim");
        bbt_log_set_level(BBT_LOG_WARNING);
        uv_loop_init(&s->loop);
        for (size_t i = 0; i < s->scn.n_terminals; i++)
                if (s->scn.terminals[i].profile != SIM_NEVER)
                        s->n_clients++;
        {
                /* Each client holds three descriptors: its connection and the
                 * socket pair libmosquitto opens for it. Raise the limit (past
                 * the hard one where allowed) and say so if it cannot fit. */
                struct rlimit rl;
                rlim_t need = (rlim_t)s->n_clients * 3 + 256;

                if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                        struct rlimit want = { need, need };

                        if (need > rl.rlim_max && setrlimit(RLIMIT_NOFILE, &want) == 0)
                                rl = want;
                        rl.rlim_cur = rl.rlim_max;
                        setrlimit(RLIMIT_NOFILE, &rl);
                        if (rl.rlim_cur < need)
                                fprintf(stderr,
                                        "bbt-sim: %llu file descriptors allow about %llu terminals, not %zu: raise "
                                        "the limit (ulimit -n) or run several bbt-sim processes\n",
                                        (unsigned long long)rl.rlim_cur,
                                        (unsigned long long)(rl.rlim_cur > 256 ? (rl.rlim_cur - 256) / 3 : 0),
                                        s->n_clients);
                }
        }
        s->clients = calloc(s->n_clients ? s->n_clients : 1, sizeof(*s->clients));
        for (size_t i = 0, j = 0; i < s->scn.n_terminals; i++)
                if (s->scn.terminals[i].profile != SIM_NEVER) {
                        s->clients[j].sim = s;
                        s->clients[j].t = &s->scn.terminals[i];
                        j++;
                }
        uv_timer_init(&s->loop, &s->connect_timer);
        uv_timer_init(&s->loop, &s->progress_timer);
        uv_timer_init(&s->loop, &s->linger_timer);
        uv_timer_init(&s->loop, &s->live_timer);
        s->live_timer.data = s;
        s->rng = o.seed ^ 0x6c697665ull;
        uv_signal_init(&s->loop, &s->sigint);
        uv_signal_init(&s->loop, &s->sigterm);
        s->connect_timer.data = s->progress_timer.data = s->linger_timer.data = s;
        s->sigint.data = s->sigterm.data = s;
        uv_signal_start(&s->sigint, on_signal, SIGINT);
        uv_signal_start(&s->sigterm, on_signal, SIGTERM);
        s->started_ms = mono_ms();
        uv_timer_start(&s->connect_timer, on_connect_timer, 0, 100);
        uv_timer_start(&s->progress_timer, on_progress, 1000, 1000);
        if (s->live_s > 0) {
                s->live_until_ms = s->started_ms + (uint64_t)(s->live_s * 1000);
                uv_timer_start(&s->live_timer, on_live, 100, 100);
        }
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        if (produced) {
                FILE *f = fopen(produced, "we");

                if (!f || fprintf(f, "%" PRIu64 "\n", s->scn.messages) < 0 || fclose(f) != 0)
                        fprintf(stderr, "bbt-sim: %s: cannot write\n", produced);
        }
        if (!s->quiet)
                fprintf(stderr, "bbt-sim: %" PRIu64 " messages produced, %" PRIu64 " resend requests answered (%" PRIu64
                                " republished)\n",
                        s->scn.messages, s->resends, s->republished);
        r = s->exit_code;
        sim_scenario_free(&s->scn);
        free(s->clients);
        free(s);
        return r;
}
