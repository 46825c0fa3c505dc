/* The bbt-agent daemon's life cycle: open the durable state, start the parts, reload, stop cleanly, free. */
#include "agent_internal.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bbt/log.h"
#include "bbt/mqtt.h"
#include "bbt/notify.h"
#include "counters.h"
#include "settings.h"
#include "spool.h"

#define STOP_WAIT_MS 4000 /* how long a stop waits for acknowledgements */
#define SEQ_BLOCK 1000

static void watchdog_timer_cb(uv_timer_t *t)
{
        bbt_notify("WATCHDOG=1");
}

/* ---- stop ---- */

void bbt_agent_close_handle(struct bbt_agent *a, uv_handle_t *h)
{
        if (!uv_is_closing(h))
                uv_close(h, NULL);
}

void bbt_agent_published(struct bbt_agent *a, int mid)
{
        if (a->stopping && mid == a->shutdown_mid)
                a->shutdown_acked = true;
}

static void mqtt_closed_cb(void *userdata)
{
        struct bbt_agent *a = userdata;
        struct bbt_spool_stats st;

        a->mqtt = NULL;
        bbt_spool_save_meta(a->spool);
        bbt_spool_stats(a->spool, &st);
        bbt_log_notice("stopped: %" PRIu64 " messages produced, %" PRIu64 " acknowledged this run, %" PRIu64
                       " waiting in the spool", a->stats.produced, a->stats.acked, st.depth);
}

static void finish_stop(struct bbt_agent *a)
{
        if (a->stopped)
                return;
        a->stopped = true;
        uv_timer_stop(&a->stop_timer);
        bbt_sources_stop(a);
        bbt_poweroff_close(a);
        bbt_produce_close(a);
        bbt_uplink_close(a);
        bbt_agent_close_handle(a, (uv_handle_t *)&a->stop_timer);
        bbt_agent_close_handle(a, (uv_handle_t *)&a->watchdog_timer);
        bbt_agent_close_handle(a, (uv_handle_t *)&a->sig_term);
        bbt_agent_close_handle(a, (uv_handle_t *)&a->sig_int);
        bbt_agent_close_handle(a, (uv_handle_t *)&a->sig_hup);
        bbt_mqtt_close(a->mqtt, mqtt_closed_cb);
}

static void disconnected_cb(void *userdata, int status)
{
        finish_stop(userdata);
}

/* Polls until the shutdown state and the window are acknowledged (or
 * STOP_WAIT_MS has passed), then disconnects cleanly. */
static void stop_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = bbt_container_of(t, struct bbt_agent, stop_timer);
        struct bbt_spool_stats st;
        bool done;

        /* What the pacing held back goes out before the disconnect. */
        bbt_uplink_pump(a);
        bbt_spool_stats(a->spool, &st);
        done = !a->session.connected || (a->shutdown_acked && bbt_uplink_idle(a) && st.depth == 0);

        if (!done) {
                if (uv_now(a->loop) - a->stop_started < STOP_WAIT_MS)
                        return;
                bbt_log_warning("stop: the broker did not acknowledge everything within %d ms; "
                                "the rest stays in the spool", STOP_WAIT_MS);
        }
        uv_timer_stop(t);
        if (!a->session.connected || bbt_mqtt_disconnect(a->mqtt, disconnected_cb) < 0)
                finish_stop(a);
}

void bbt_agent_stop(struct bbt_agent *a)
{
        if (a->stopping)
                return;
        a->stopping = true;
        bbt_notify("STOPPING=1");
        bbt_log_notice("stopping");
        bbt_produce_stop(a);
        bbt_sources_flush(a);
        if (!a->session.connected) {
                finish_stop(a);
                return;
        }
        a->shutdown_mid = bbt_session_publish_shutdown(a);
        a->shutdown_acked = a->shutdown_mid < 0;
        a->stop_started = uv_now(a->loop);
        uv_timer_start(&a->stop_timer, stop_timer_cb, 0, 50);
}

static void signal_cb(uv_signal_t *s, int signum)
{
        struct bbt_agent *a = s->data;

        if (signum == SIGHUP)
                bbt_agent_reload(a);
        else
                bbt_agent_stop(a);
}

/* ---- reload ---- */

static bool same_str(const char *x, const char *y)
{
        return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

static bool connection_changed(const struct bbt_agent_config *o, const struct bbt_agent_config *n)
{
        return !same_str(o->county, n->county) || !same_str(o->school, n->school) ||
               !same_str(o->terminal, n->terminal) || !bbt_broker_config_equal(&o->broker, &n->broker);
}

int bbt_agent_reload(struct bbt_agent *a)
{
        struct bbt_agent_config fresh, old;
        char err[512];
        bool reconnect;
        int r;

        bbt_notify("RELOADING=1");
        r = bbt_agent_config_load(a->config_path, &fresh, err, sizeof(err));
        if (r < 0) {
                bbt_log_error("reload: %s; keeping the running configuration", err);
                bbt_notify("READY=1");
                return r;
        }
        if (!same_str(fresh.state_dir, a->cfg.state_dir) || !same_str(fresh.spool_dir, a->cfg.spool_dir) ||
            fresh.spool_max_bytes != a->cfg.spool_max_bytes || fresh.retain_acked_ms != a->cfg.retain_acked_ms ||
            fresh.inflight != a->cfg.inflight)
                bbt_log_warning("reload: state_dir, [spool] dir, max_size, retain_acked and inflight take effect "
                                "at the next start");
        /* What set commands changed stays over the file. */
        bbt_settings_apply(a->cfg.state_dir, &fresh);
        reconnect = connection_changed(&a->cfg, &fresh);
        old = a->cfg;
        a->cfg = fresh;
        /* Settings read only at start keep their old values. */
        a->cfg.state_dir = old.state_dir, old.state_dir = NULL;
        a->cfg.spool_dir = old.spool_dir, old.spool_dir = NULL;
        a->cfg.spool_max_bytes = old.spool_max_bytes;
        a->cfg.retain_acked_ms = old.retain_acked_ms;
        a->cfg.inflight = old.inflight;
        free(fresh.state_dir == a->cfg.state_dir ? NULL : fresh.state_dir);
        free(fresh.spool_dir == a->cfg.spool_dir ? NULL : fresh.spool_dir);
        bbt_agent_config_free(&old);

        bbt_log_set_level(bbt_agent_config_log_priority(&a->cfg));
        bbt_sources_reload(a);
        bbt_produce_start(a);
        if (reconnect) {
                bbt_log_notice("reload: broker or identity changed; reconnecting");
                bbt_session_reconnect(a);
        } else {
                bbt_log_notice("reload: configuration applied");
        }
        bbt_notify("READY=1");
        return 0;
}

/* ---- life cycle ---- */

static void spool_report_cb(void *userdata, const char *file, uint64_t offset, const char *reason)
{
        bbt_log_warning("spool: %s at byte %" PRIu64 ": %s", file, offset, reason);
}

/* Opens the counters with every witness the spool holds of the seqs used, so
 * that no seq is ever handed out twice, and logs how this run starts. */
static int open_counters(struct bbt_agent *a)
{
        const struct bbt_counters_start_info *info;
        struct bbt_counters_witness witness = { 0 };
        struct bbt_spool_witness sw;
        struct bbt_counters_options co;
        char err[512];
        int r;

        /* Every seq the spool shows used or reserved is a witness for the
         * counter: it never hands out one of them again. */
        bbt_spool_witness(a->spool, &sw);
        witness.spool_last = sw.last_seq;
        witness.used = sw.newest_name;
        if (sw.meta_acked > witness.used)
                witness.used = sw.meta_acked;
        if (sw.meta_appended > witness.used)
                witness.used = sw.meta_appended;
        witness.ceiling = sw.meta_seq_ceiling;
        witness.boot = sw.meta_boot;
        /* The spool meta's copy of the skipped ranges, merged with the state file's. */
        witness.skipped = sw.meta_skipped;
        witness.n_skipped = sw.n_meta_skipped;
        if (witness.used > sw.last_seq)
                bbt_log_warning("spool %s: records up to seq %" PRIu64 " were used but the spool ends at seq %"
                                PRIu64 " (a damaged or cut tail): they are reported lost, never reused",
                                a->cfg.spool_dir, witness.used, sw.last_seq);
        bbt_counters_options_init(&co);
        co.dir = a->cfg.state_dir;
        co.root = a->cfg.root;
        co.block = SEQ_BLOCK;
        co.recover = a->cfg.recover_state;
        r = bbt_counters_open(&co, &witness, &a->counters, err, sizeof(err));
        if (r == -EBADMSG) {
                bbt_log_error("%s; refusing to start, since a wrong counter could reuse sequence numbers. "
                              "Start once with --recover-state to continue past the spool (see bbt-agent(8))", err);
                return r;
        } else if (r < 0) {
                bbt_log_error("%s", err);
                return r;
        }
        info = bbt_counters_start_info(a->counters);
        if (info->skipped)
                bbt_log_warning("state %s: %s: first seq %" PRIu64 "; seq %" PRIu64 "..%" PRIu64
                                " skipped, never reused (the previous run stopped uncleanly; it had used at "
                                "least up to %" PRIu64 "; resend replies name the range 'skipped')",
                                a->cfg.state_dir, bbt_counters_start_name(info->start), info->first_seq,
                                info->skipped_from, info->skipped_to, info->used);
        else
                bbt_log_info("state %s: %s, first seq %" PRIu64, a->cfg.state_dir,
                             bbt_counters_start_name(info->start), info->first_seq);
        return 0;
}

/* The reservation's and the skipped ranges' second witness, in the spool's
 * meta, on disk before any seq goes out. */
static void witness_counters(struct bbt_agent *a)
{
        const struct bbt_seq_range *sk;
        size_t n, first;
        int r;

        bbt_spool_set_seq_ceiling(a->spool, bbt_counters_ceiling(a->counters));
        _Static_assert(BBT_SPOOL_SKIPPED_RANGES == BBT_COUNTERS_SKIPPED_MAX, "meta keeps every skipped range");
        n = bbt_counters_skipped(a->counters, &sk);
        first = n > BBT_SPOOL_SKIPPED_RANGES ? n - BBT_SPOOL_SKIPPED_RANGES : 0;
        bbt_spool_set_skipped(a->spool, sk + first, n - first);
        r = bbt_spool_save_meta(a->spool);
        if (r < 0)
                bbt_log_warning("spool %s: cannot save meta: %s", a->cfg.spool_dir, strerror(-r));
}

int bbt_agent_new(uv_loop_t *loop, const char *config_path, struct bbt_agent_config *config,
                  struct bbt_agent **ret)
{
        struct bbt_spool_options so;
        struct bbt_agent *a;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->loop = loop;
        a->cfg = *config;
        memset(config, 0, sizeof(*config));
        a->config_path = strdup(config_path);
        r = bbt_uplink_new(a, (size_t)a->cfg.inflight);
        if (!a->config_path || r < 0) {
                r = -ENOMEM;
                goto fail;
        }
        bbt_session_init(a);

        /* state_dir holds the spool by default: create it first. */
        if (mkdir(a->cfg.state_dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                bbt_log_error("state_dir %s: cannot create it: %s", a->cfg.state_dir, strerror(errno));
                goto fail;
        }
        bbt_settings_apply(a->cfg.state_dir, &a->cfg);
        bbt_spool_options_init(&so, a->cfg.spool_dir);
        so.max_bytes = (uint64_t)a->cfg.spool_max_bytes;
        so.retain_acked_ms = a->cfg.retain_acked_ms;
        r = bbt_spool_open(&so, spool_report_cb, a, &a->spool);
        if (r < 0) {
                bbt_log_error("spool %s: %s", a->cfg.spool_dir, strerror(-r));
                goto fail;
        }
        r = open_counters(a);
        if (r < 0)
                goto fail;
        witness_counters(a);
        *ret = a;
        return 0;
fail:
        bbt_agent_free(a);
        return r;
}

int bbt_agent_start(struct bbt_agent *a)
{
        uint64_t watchdog_usec = 0;
        char status[160];
        int r;

        /* Every handle first: a start that fails half way is stopped. */
        uv_timer_init(a->loop, &a->stop_timer);
        uv_timer_init(a->loop, &a->watchdog_timer);
        uv_signal_init(a->loop, &a->sig_term);
        uv_signal_init(a->loop, &a->sig_int);
        uv_signal_init(a->loop, &a->sig_hup);
        a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
        uv_signal_start(&a->sig_term, signal_cb, SIGTERM);
        uv_signal_start(&a->sig_int, signal_cb, SIGINT);
        uv_signal_start(&a->sig_hup, signal_cb, SIGHUP);
        bbt_produce_init(a);
        bbt_uplink_init(a);
        bbt_sources_init(a);

        r = bbt_sources_create(a, a->loop);
        if (r < 0)
                return r;
        bbt_sources_start(a);
        bbt_poweroff_start(a);
        r = bbt_session_connect(a);
        if (r < 0)
                return r;
        /* A loss not yet cleared (before a restart, or while the disk was
         * full) is announced again; it clears once the backlog is out. */
        bbt_produce_drop_alert(a);
        bbt_produce_heartbeat(a);
        bbt_produce_start(a);
        watchdog_usec = bbt_notify_watchdog_usec();
        if (watchdog_usec >= 2000)
                uv_timer_start(&a->watchdog_timer, watchdog_timer_cb, watchdog_usec / 2000, watchdog_usec / 2000);
        snprintf(status, sizeof(status), "READY=1\nSTATUS=reporting as %s", a->session.prefix);
        bbt_notify(status);
        bbt_log_notice("started: bbt-agent %s, %s, broker %s:%lld, boot %" PRIu32, BBT_VERSION, a->session.prefix,
                       a->cfg.broker.host, bbt_broker_config_port(&a->cfg.broker), a->session.boot);
        return 0;
}

int bbt_agent_probe(const struct bbt_agent_config *config, FILE *out)
{
        struct bbt_agent *a;
        uv_loop_t loop;
        int problems, r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->cfg = *config; /* borrowed: not freed here */
        r = uv_loop_init(&loop);
        if (r < 0) {
                free(a);
                return r;
        }
        fprintf(out, "bbt-agent %s probe, root %s\n", BBT_VERSION, a->cfg.root);
        /* What could be made is shown even when a later driver could not. */
        r = bbt_sources_create(a, &loop);
        problems = bbt_sources_probe(a, out);
        if (r == 0)
                fprintf(out, "\n%d problem%s found\n", problems, problems == 1 ? "" : "s");
        bbt_sources_destroy(a);
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
        free(a);
        return r < 0 ? r : problems;
}

void bbt_agent_get_stats(const struct bbt_agent *a, struct bbt_agent_stats *ret)
{
        *ret = a->stats;
}

void bbt_agent_free(struct bbt_agent *a)
{
        if (!a)
                return;
        bbt_sources_destroy(a);
        bbt_resend_free(a);
        bbt_spool_close(a->spool);
        bbt_counters_close(a->counters);
        bbt_agent_config_free(&a->cfg);
        bbt_uplink_free(a);
        free(a->config_path);
        free(a);
}
