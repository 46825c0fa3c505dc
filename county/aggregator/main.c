/* bbt-aggregator: command line, configuration, the broker subscription and the loop. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "aggregator_config.h"
#include "bbt/log.h"
#include "bbt/mqtt.h"
#include "bbt/notify.h"
#include "bbt/protocol.h"
#include "ingest.h"
#include "metrics.h"
#include "metrics_http.h"
#include "share_probe.h"
#include "store.h"

#define TICK_MS 1000
#define STATS_MS (5 * 60 * 1000)
#define PRUNE_MS (60 * 60 * 1000)
/* After the metrics server could not listen (its port taken), it tries again
 * this often; ingest goes on meanwhile. */
#define METRICS_RETRY_MS 30000

/* A connection the broker drops within TAKEOVER_SHORT_MS of making it, the
 * TAKEOVER_DROPS-th time within TAKEOVER_WINDOW_MS, is taken for a client id
 * used twice; said at most every TAKEOVER_LOG_MS. */
#define TAKEOVER_SHORT_MS 10000
#define TAKEOVER_DROPS 3
#define TAKEOVER_WINDOW_MS 60000
#define TAKEOVER_LOG_MS 300000

struct daemon {
        uv_loop_t *loop;
        const char *config_path;
        struct bbt_aggregator_config cfg;
        struct bbt_store *store;
        struct bbt_registry *reg;
        struct bbt_calendar *cal;
        struct bbt_ingest *ingest;
        struct bbt_mqtt *mqtt;
        uv_timer_t flush_timer, tick_timer, stats_timer, prune_timer, watchdog_timer, metrics_timer;
        struct bbt_metrics_http *metrics;
        int64_t start_ms;
        uv_signal_t sigterm, sigint, sighup;
        int open_handles;
        bool stopping;
        int exit_code;
        /* Connections the broker dropped soon after they were made: another
         * client taking over our client id (docs/aggregator.md). */
        uint64_t connected_mono;
        uint64_t short_drops[TAKEOVER_DROPS]; /* monotonic ms, newest last */
        size_t n_short_drops;
        uint64_t takeover_logged_mono;
        /* [broker] share_group: does anything arrive through the share? (share_probe.h) */
        struct bbt_share_probe probe;
        bool probing;
        uv_timer_t probe_timer;
};

static uint64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-aggregator [OPTION]...\n"
                "Take in the county's 班班通 telemetry from the MQTT broker: validate it, store\n"
                "every message exactly once, ask terminals for what went missing, and keep the\n"
                "figures bbt-report prints (开机率, 使用率, 堂堂用率, 差异系数, ...) up to date.\n"
                "\n"
                "  -c, --config FILE   configuration file (default " BBT_AGGREGATOR_CONFIG_PATH ")\n"
                "      --check-config  check the configuration and the registry files it names,\n"
                "                      print the effective settings, exit\n"
                "      --rebuild       recompute the usage rollups from the stored intervals, exit\n"
                "  -f, --foreground    accepted for compatibility; bbt-aggregator never forks\n"
                "  -h, --help          show this help\n"
                "  -V, --version       show the version\n"
                "\n"
                "Signals: SIGTERM/SIGINT commit and stop cleanly, SIGHUP re-reads the registry,\n"
                "calendar, bell-schedule and power-schedule files (broker and store settings\n"
                "need a restart).\n"
                "Exit status: 0 stopped cleanly, 1 runtime failure, 2 bad usage or configuration.\n"
                "See bbt-aggregator(8) and bbt-aggregator.conf(5).\n");
}

static void on_handle_closed(uv_handle_t *h)
{
        struct daemon *d = h->data;

        d->open_handles--;
}

static void close_handle(struct daemon *d, uv_handle_t *h)
{
        /* A handle start() never reached (the store did not open) is all
         * zeros, with no loop: nothing to close. */
        if (h->loop && !uv_is_closing(h)) {
                h->data = d;
                d->open_handles++;
                uv_close(h, on_handle_closed);
        }
}

static void close_all(struct daemon *d)
{
        close_handle(d, (uv_handle_t *)&d->flush_timer);
        close_handle(d, (uv_handle_t *)&d->tick_timer);
        close_handle(d, (uv_handle_t *)&d->stats_timer);
        close_handle(d, (uv_handle_t *)&d->prune_timer);
        close_handle(d, (uv_handle_t *)&d->watchdog_timer);
        close_handle(d, (uv_handle_t *)&d->metrics_timer);
        close_handle(d, (uv_handle_t *)&d->probe_timer);
        bbt_metrics_http_close(d->metrics);
        d->metrics = NULL;
        close_handle(d, (uv_handle_t *)&d->sigterm);
        close_handle(d, (uv_handle_t *)&d->sigint);
        close_handle(d, (uv_handle_t *)&d->sighup);
        if (d->mqtt) {
                bbt_mqtt_close(d->mqtt, NULL);
                d->mqtt = NULL;
        }
}

static void log_stats(struct daemon *d)
{
        struct bbt_ingest_stats s;
        uint64_t rejected = 0;

        bbt_ingest_get_stats(d->ingest, &s);
        for (int i = 0; i < BBT_REJECT__COUNT; i++)
                rejected += s.rejected[i];
        bbt_log_info("ingest: %" PRIu64 " received, %" PRIu64 " stored, %" PRIu64 " duplicates, %" PRIu64
                     " rejected, %" PRIu64 " resend requests, %" PRIu64 " recovered, %" PRIu64 " lost, %" PRIu64
                     " seqs missing now, %" PRIu64 " terminals",
                     s.received, s.stored, s.duplicates, rejected, s.resends, s.recovered, s.lost, s.open_gap_seqs,
                     s.terminals);
        if (s.asks)
                bbt_log_info("asks: %" PRIu64 " terminals asked for their birth or inventory, %" PRIu64 " refused",
                             s.asks, s.asks_refused);
        if (s.power_sent || s.power_failed)
                bbt_log_info("power schedules: %" PRIu64 " sent, %" PRIu64 " answered, %" PRIu64 " refused, %" PRIu64
                             " not sent",
                             s.power_sent, s.power_answered, s.power_refused, s.power_failed);
}

static void on_disconnected(void *userdata, int status)
{
        struct daemon *d = userdata;

        if (status < 0)
                bbt_log_warning("broker: the connection did not end cleanly: %s", strerror(-status));
        close_all(d);
}

static void stop(struct daemon *d)
{
        if (d->stopping)
                return;
        d->stopping = true;
        bbt_notify("STOPPING=1");
        if (d->ingest && bbt_ingest_flush(d->ingest) < 0)
                d->exit_code = 1;
        if (d->ingest)
                log_stats(d);
        if (d->mqtt && bbt_mqtt_is_connected(d->mqtt) && bbt_mqtt_disconnect(d->mqtt, on_disconnected) == 0)
                return;
        close_all(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
        struct daemon *d = h->data;

        bbt_log_info("%s: stopping", strsignal(signum));
        stop(d);
}

static void reload(struct daemon *d)
{
        struct bbt_registry *reg = NULL;
        struct bbt_calendar *cal = NULL;
        char *text = NULL;
        size_t len = 0;
        FILE *errs = open_memstream(&text, &len);
        int r;

        if (!errs)
                return;
        r = bbt_aggregator_load_registry(&d->cfg, errs, &reg, &cal);
        fclose(errs);
        if (r < 0) {
                char *line, *save = NULL;

                for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        bbt_log_error("%s", line);
                bbt_log_error("reload: the registry files have problems; keeping the previous registry");
                free(text);
                return;
        }
        free(text);
        r = bbt_ingest_set_registry(d->ingest, reg, cal, now_ms());
        bbt_registry_free(d->reg);
        bbt_calendar_free(d->cal);
        d->reg = reg;
        d->cal = cal;
        if (r < 0)
                bbt_log_error("reload: %s", strerror(-r));
        else
                bbt_log_info("reload: %zu schools, %zu terminals in the registry", reg->n_schools, reg->n_terminals);
}

static void on_sighup(uv_signal_t *h, int signum)
{
        struct daemon *d = h->data;

        bbt_notify("RELOADING=1");
        reload(d);
        bbt_notify("READY=1");
}

static void on_flush(uv_timer_t *t)
{
        struct daemon *d = t->data;

        bbt_ingest_flush(d->ingest);
}

static void on_tick(uv_timer_t *t)
{
        struct daemon *d = t->data;

        bbt_ingest_tick(d->ingest, now_ms());
}

static void on_stats(uv_timer_t *t)
{
        log_stats(t->data);
}

static void on_prune(uv_timer_t *t)
{
        struct daemon *d = t->data;

        if (bbt_ingest_prune(d->ingest, d->cfg.raw_retention_ms, d->cfg.usage_retention_ms, now_ms()) < 0)
                bbt_log_error("store: pruning old records failed: %s", bbt_store_error(d->store));
}

static void on_watchdog(uv_timer_t *t)
{
        bbt_notify("WATCHDOG=1");
}

static void on_connect(void *userdata, bool session_present)
{
        struct daemon *d = userdata;

        bbt_log_info("broker: connected to %s:%lld (%s session)", d->cfg.broker.host, bbt_broker_config_port(&d->cfg.broker),
                     session_present ? "kept" : "new");
        d->connected_mono = mono_ms();
        bbt_ingest_set_connected(d->ingest, true, now_ms());
        if (d->probing)
                bbt_share_probe_connected(&d->probe, (int64_t)d->connected_mono);
}

/* The broker closed a connection CONNECTED_FOR ms old: if that keeps
 * happening soon after connecting, another client is using our client id
 * (each connection with an id ends the older one: MQTT's session takeover). */
static void check_takeover(struct daemon *d, uint64_t connected_for, const char *reason)
{
        uint64_t now = mono_ms();

        if (connected_for >= TAKEOVER_SHORT_MS)
                return;
        if (d->n_short_drops == TAKEOVER_DROPS) {
                memmove(&d->short_drops[0], &d->short_drops[1], (TAKEOVER_DROPS - 1) * sizeof(d->short_drops[0]));
                d->n_short_drops--;
        }
        d->short_drops[d->n_short_drops++] = now;
        if (d->n_short_drops < TAKEOVER_DROPS || now - d->short_drops[0] > TAKEOVER_WINDOW_MS)
                return;
        if (d->takeover_logged_mono && now - d->takeover_logged_mono < TAKEOVER_LOG_MS)
                return;
        d->takeover_logged_mono = now;
        bbt_log_error("broker: the connection as client id \"%s\" was closed by the broker %d times within %d s, "
                      "each soon after connecting (last: %s). Another client is most likely connecting with the "
                      "same client id -- a second bbt-aggregator with the same [broker] client_id, or a copied "
                      "configuration: each connection ends the other's session, and each stores only part of the "
                      "data. Give every aggregator its own [broker] client_id (and, to spread the load, its own "
                      "store and [broker] topic: docs/aggregator.md), and a terminal credential its own client id "
                      "(see docs/deploy.md)",
                      d->cfg.client_id, TAKEOVER_DROPS, TAKEOVER_WINDOW_MS / 1000, reason);
}

static void on_disconnect(void *userdata, int error, const char *reason)
{
        struct daemon *d = userdata;
        bool was_connected = d->connected_mono != 0;

        bbt_ingest_set_connected(d->ingest, false, now_ms());
        if (!d->stopping)
                bbt_log_warning("broker: %s; reconnecting", reason);
        if (was_connected && !d->stopping && error)
                check_takeover(d, mono_ms() - d->connected_mono, reason);
        d->connected_mono = 0;
}

static void on_message(void *userdata, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
        struct daemon *d = userdata;

        if (d->probing) {
                bool first = !d->probe.delivered, probe = bbt_share_probe_message(&d->probe, topic);

                if (first)
                        bbt_log_info("broker: the share group delivers ($share/%s/%s: first message after %.1f s)",
                                     d->cfg.share_group, d->cfg.topic,
                                     (double)(mono_ms() - (uint64_t)d->probe.started_ms) / 1000.0);
                if (probe)
                        return; /* a probe (ours or another member's), not telemetry */
        }
        bbt_ingest_message(d->ingest, topic, payload, len, retain, now_ms());
}

/* Until something arrives through the share group: a probe a second, and
 * after [broker] share_probe_timeout connected with nothing, a clear refusal. */
static void on_probe_timer(uv_timer_t *t)
{
        struct daemon *d = t->data;
        char payload[200];
        int len;

        if (d->stopping || !d->connected_mono)
                return;
        switch (bbt_share_probe_tick(&d->probe, (int64_t)mono_ms())) {
        case BBT_SHARE_PROBE_SEND:
                len = snprintf(payload, sizeof(payload), "{\"probe\":\"%s\",\"n\":%" PRIu64 "}", d->cfg.client_id,
                               d->probe.sent);
                if (bbt_mqtt_publish(d->mqtt, d->probe.topic, payload, (size_t)len, 1, false, NULL) < 0)
                        bbt_log_debug("broker: share probe not sent");
                break;
        case BBT_SHARE_PROBE_REFUSE:
                bbt_log_error("broker: nothing arrived through the shared subscription $share/%s/%s in the %lld s "
                              "since connecting, not even this aggregator's own %" PRIu64 " probes on %s. The broker "
                              "accepted the subscription but does not deliver shared subscriptions (RabbitMQ's MQTT "
                              "plugin does this), or this account may not publish there (bbt-provision's ACL lets an "
                              "aggregator write bbt/v1/+/+/+/cmd). Remove [broker] share_group (one aggregator per "
                              "topic on this broker), or use a broker with shared subscriptions (mosquitto 2, EMQX): "
                              "see docs/brokers.md. ([broker] share_probe_timeout = 0 turns this check off.)",
                              d->cfg.share_group, d->cfg.topic, d->cfg.share_probe_timeout_ms / 1000, d->probe.sent,
                              d->probe.topic);
                d->exit_code = 2; /* a configuration that cannot work: not restarted by systemd */
                stop(d);
                break;
        case BBT_SHARE_PROBE_WAIT:
                if (d->probe.delivered)
                        uv_timer_stop(t);
                break;
        }
}

static void on_mqtt_log(void *userdata, int priority, const char *line)
{
        bbt_log_debug("%s", line);
}

static int publish_cb(void *userdata, const char *topic, const char *payload, size_t len)
{
        struct daemon *d = userdata;

        return bbt_mqtt_publish(d->mqtt, topic, payload, len, 1, false, NULL);
}

static int connect_broker(struct daemon *d)
{
        static const struct bbt_mqtt_callbacks cbs = {
                .on_connect = on_connect,
                .on_disconnect = on_disconnect,
                .on_message = on_message,
                .on_log = on_mqtt_log,
        };
        struct bbt_mqtt_options o;
        char password[256] = "", pattern[512], err[300];
        int r;

        bbt_mqtt_options_init(&o);
        r = bbt_broker_config_mqtt_options(&d->cfg.broker, password, sizeof(password), &o, err, sizeof(err));
        if (r < 0) {
                bbt_log_error("%s", err);
                return r;
        }
        o.client_id = d->cfg.client_id;
        /* A persistent session: the broker queues what arrives while the
         * aggregator restarts (bounded by its max_queued_messages). */
        o.clean_session = false;
        r = bbt_mqtt_new(d->loop, &o, &cbs, d, &d->mqtt);
        explicit_bzero(password, sizeof(password));
        if (r < 0) {
                bbt_log_error("broker settings: %s", strerror(-r));
                return r;
        }
        if (d->cfg.share_group && *d->cfg.share_group) {
                snprintf(pattern, sizeof(pattern), "$share/%s/%s", d->cfg.share_group, d->cfg.topic);
                if (d->cfg.share_probe_timeout_ms > 0 &&
                    bbt_share_probe_init(&d->probe, d->cfg.topic, d->cfg.client_id, d->cfg.share_probe_timeout_ms,
                                         err, sizeof(err)) < 0) {
                        bbt_log_warning("%s: cannot check that the share group delivers", err);
                } else if (d->cfg.share_probe_timeout_ms > 0) {
                        d->probing = true;
                        uv_timer_start(&d->probe_timer, on_probe_timer, 100, BBT_SHARE_PROBE_INTERVAL_MS / 4);
                }
        } else
                snprintf(pattern, sizeof(pattern), "%s", d->cfg.topic);
        r = bbt_mqtt_subscribe(d->mqtt, pattern, 1);
        if (r < 0) {
                bbt_log_error("[broker] topic %s: %s", pattern, strerror(-r));
                return r;
        }
        bbt_log_info("broker: subscribing to %s on %s:%lld as %s", pattern, d->cfg.broker.host, bbt_broker_config_port(&d->cfg.broker),
                     d->cfg.client_id);
        return bbt_mqtt_start(d->mqtt);
}

static int metrics_text(void *userdata, char **ret, size_t *ret_len)
{
        struct daemon *d = userdata;
        struct bbt_metrics_source src = {
                .ingest = d->ingest, .reg = d->reg, .store_path = d->cfg.store_path, .start_ms = d->start_ms,
                .broker_connected = d->connected_mono != 0,
        };
        FILE *f = open_memstream(ret, ret_len);
        int r;

        if (!f)
                return -ENOMEM;
        r = bbt_metrics_write(&src, f);
        if (fclose(f) != 0 && r == 0)
                r = -ENOMEM;
        if (r < 0) {
                free(*ret);
                *ret = NULL;
        }
        return r;
}

/* Starts the metrics server on [aggregator] metrics_listen; if the address
 * cannot be had, says so and tries again every METRICS_RETRY_MS: monitoring
 * never stops ingest. */
static void start_metrics(uv_timer_t *t)
{
        struct daemon *d = t->data;
        struct sockaddr_storage sa;
        socklen_t sa_len;
        char err[300];
        int r;

        if (d->metrics || d->stopping)
                return;
        /* Checked with the configuration already. */
        if (bbt_listen_parse(d->cfg.metrics_listen, &sa, &sa_len) < 0)
                return;
        r = bbt_metrics_http_start(d->loop, (struct sockaddr *)&sa,
                                   (unsigned int)(d->cfg.metrics_timeout_ms / 1000), metrics_text, d, &d->metrics, err, sizeof(err));
        if (r == 0) {
                bbt_log_info("metrics: serving http://%s/metrics", d->cfg.metrics_listen);
                uv_timer_stop(t);
                return;
        }
        if (!uv_is_active((uv_handle_t *)t)) {
                bbt_log_error("metrics: cannot listen on %s ([aggregator] metrics_listen): %s; ingest goes on, "
                              "trying again every %d s",
                              d->cfg.metrics_listen, err, METRICS_RETRY_MS / 1000);
                uv_timer_start(t, start_metrics, METRICS_RETRY_MS, METRICS_RETRY_MS);
        } else {
                bbt_log_debug("metrics: cannot listen on %s: %s", d->cfg.metrics_listen, err);
        }
}

static void start_timer(struct daemon *d, uv_timer_t *t, uv_timer_cb cb, uint64_t every_ms)
{
        uv_timer_init(d->loop, t);
        t->data = d;
        uv_timer_start(t, cb, every_ms, every_ms);
}

static int start(struct daemon *d)
{
        struct bbt_ingest_settings set;
        char err[1024];
        uint64_t wd;
        int r;

        r = bbt_store_open(d->cfg.store_path, false, &d->store, err, sizeof(err));
        if (r < 0) {
                bbt_log_error("store: %s", err);
                return r;
        }
        bbt_aggregator_config_settings(&d->cfg, &set);
        r = bbt_ingest_new(d->store, &set, d->reg, d->cal, publish_cb, d, now_ms(), &d->ingest, err, sizeof(err));
        if (r < 0) {
                bbt_log_error("%s", err);
                return r;
        }
        start_timer(d, &d->flush_timer, on_flush, (uint64_t)d->cfg.batch_interval_ms);
        start_timer(d, &d->tick_timer, on_tick, TICK_MS);
        start_timer(d, &d->stats_timer, on_stats, STATS_MS);
        start_timer(d, &d->prune_timer, on_prune, PRUNE_MS);
        uv_timer_init(d->loop, &d->metrics_timer);
        d->metrics_timer.data = d;
        uv_timer_init(d->loop, &d->probe_timer);
        d->probe_timer.data = d;
        if (d->cfg.metrics_listen && *d->cfg.metrics_listen)
                start_metrics(&d->metrics_timer);
        else
                bbt_log_info("metrics: off ([aggregator] metrics_listen is empty)");
        wd = bbt_notify_watchdog_usec();
        uv_timer_init(d->loop, &d->watchdog_timer);
        d->watchdog_timer.data = d;
        if (wd)
                uv_timer_start(&d->watchdog_timer, on_watchdog, wd / 2000, wd / 2000);
        uv_signal_init(d->loop, &d->sigterm);
        uv_signal_init(d->loop, &d->sigint);
        uv_signal_init(d->loop, &d->sighup);
        d->sigterm.data = d->sigint.data = d->sighup.data = d;
        uv_signal_start(&d->sigterm, on_signal, SIGTERM);
        uv_signal_start(&d->sigint, on_signal, SIGINT);
        uv_signal_start(&d->sighup, on_sighup, SIGHUP);
        r = connect_broker(d);
        if (r < 0)
                return r;
        on_prune(&d->prune_timer);
        bbt_log_info("bbt-aggregator %s: store %s (%s), %zu schools and %zu terminals in the registry", BBT_VERSION,
                     bbt_store_location_redact(d->cfg.store_path, err, sizeof(err)), d->store->ops->name,
                     d->reg->n_schools, d->reg->n_terminals);
        bbt_notify("READY=1\nSTATUS=ingesting");
        return 0;
}

static int load_registry_logged(struct daemon *d)
{
        char *text = NULL, *line, *save = NULL;
        size_t len = 0;
        FILE *errs = open_memstream(&text, &len);
        int r;

        if (!errs)
                return -ENOMEM;
        r = bbt_aggregator_load_registry(&d->cfg, errs, &d->reg, &d->cal);
        fclose(errs);
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                bbt_log_error("%s", line);
        free(text);
        return r;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'k' },
                { "rebuild", no_argument, NULL, 'r' },
                { "foreground", no_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        struct daemon d = { .config_path = BBT_AGGREGATOR_CONFIG_PATH, .start_ms = now_ms() };
        bool check_only = false, rebuild = false;
        uv_loop_t loop;
        char err[1024];
        int c, r;

        while ((c = getopt_long(argc, argv, "c:fhV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        d.config_path = optarg;
                        break;
                case 'k':
                        check_only = true;
                        break;
                case 'r':
                        rebuild = true;
                        break;
                case 'f':
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("bbt-aggregator %s (protocol v%d, store schema %d)\n", BBT_VERSION,
                               BBT_PROTOCOL_VERSION, BBT_STORE_SCHEMA_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "bbt-aggregator: unexpected argument %s\n", argv[optind]);
                usage(stderr);
                return 2;
        }

        bbt_log_init("bbt-aggregator");
        r = bbt_aggregator_config_load(d.config_path, &d.cfg, err, sizeof(err));
        if (r < 0) {
                bbt_log_error("%s", err);
                return 2;
        }
        bbt_log_set_level(bbt_aggregator_config_log_priority(&d.cfg));
        if (load_registry_logged(&d) < 0) {
                bbt_aggregator_config_free(&d.cfg);
                return 2;
        }
        if (check_only) {
                bbt_aggregator_config_dump(&d.cfg, stdout);
                fprintf(stderr, "%s: ok (%zu schools, %zu terminals)\n", d.config_path, d.reg->n_schools,
                        d.reg->n_terminals);
                r = 0;
                goto out;
        }
        if (rebuild) {
                struct bbt_ingest_settings set;

                r = bbt_store_open(d.cfg.store_path, false, &d.store, err, sizeof(err));
                if (r < 0) {
                        bbt_log_error("store: %s", err);
                        r = 1;
                        goto out;
                }
                bbt_aggregator_config_settings(&d.cfg, &set);
                r = bbt_ingest_new(d.store, &set, d.reg, d.cal, NULL, NULL, now_ms(), &d.ingest, err, sizeof(err));
                if (r == 0)
                        r = bbt_ingest_rebuild_rollups(d.ingest);
                if (r < 0)
                        bbt_log_error("rebuild: %s", r == -EBUSY ? "the store is busy" : bbt_store_error(d.store));
                else
                        bbt_log_info("rebuild: usage rollups recomputed");
                r = r < 0 ? 1 : 0;
                goto out;
        }

        if (uv_loop_init(&loop) < 0) {
                bbt_log_error("cannot create the event loop");
                r = 1;
                goto out;
        }
        d.loop = &loop;
        r = start(&d);
        if (r < 0) {
                d.exit_code = 1;
                stop(&d);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) != 0)
                bbt_log_debug("event loop closed with handles still open");
        r = d.exit_code;
out:
        bbt_ingest_free(d.ingest);
        bbt_store_close(d.store);
        bbt_registry_free(d.reg);
        bbt_calendar_free(d.cal);
        bbt_aggregator_config_free(&d.cfg);
        return r;
}
