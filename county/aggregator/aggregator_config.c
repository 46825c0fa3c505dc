/* bbt-aggregator's option table, the checks that span several keys, and loading the registry files. */
#include "aggregator_config.h"
#include "bbt/base.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/config.h"
#include "bbt/log.h"
#include "bbt/protocol.h"
#include "dates.h"
#include "metrics.h"
#include "store.h"

static const char *const log_levels[] = { "error", "warning", "notice", "info", "debug", NULL };

#define OPT(sec, key, t, field, def, lo, hi, text)                                                       \
        {                                                                                                \
                .section = sec, .name = key, .type = t,                                                 \
                .offset = offsetof(struct bbt_aggregator_config, field), .default_value = def,          \
                .min = lo, .max = hi, .help = text,                                                     \
        }
#define SECONDS(n) ((long long)(n) * 1000)
#define DAYS(n) ((long long)(n) * 86400000)

/* Keep docs/aggregator.md and docs/man/bbt-aggregator.conf.5 in step with this table. */
static const struct bbt_option options[] = {
        BBT_BROKER_OPTIONS(struct bbt_aggregator_config, broker, "30s"),
        OPT("broker", "client_id", BBT_OPT_STRING, client_id, "bbt-aggregator", 0, 0,
            "MQTT client id; the broker keeps this session's messages while the aggregator is away"),
        OPT("broker", "topic", BBT_OPT_STRING, topic, "bbt/v1/#", 0, 0,
            "What to subscribe to, e.g. bbt/v1/510107/# for one county"),
        OPT("broker", "share_group", BBT_OPT_STRING, share_group, "", 0, 0,
            "Subscribe as $share/GROUP/TOPIC with the other aggregators of GROUP, all writing one "
            "PostgreSQL store (docs/aggregator.md, Several aggregators); empty: alone"),

        OPT("broker", "share_probe_timeout", BBT_OPT_DURATION, share_probe_timeout_ms, "30s", 0, DAYS(1),
            "With share_group: exit with an error if nothing at all (not even the aggregator's own probes) "
            "arrives through the shared subscription within this long after connecting (docs/brokers.md); 0: no check"),

        OPT("store", "path", BBT_OPT_STRING, store_path, "/var/lib/bbt-aggregator/aggregator.db", 0, 0,
            "The store: an SQLite file (an absolute path, created if missing), or a PostgreSQL database as a "
            "libpq URI postgresql://USER@HOST:PORT/DATABASE (docs/aggregator.md, PostgreSQL)"),
        OPT("store", "batch_size", BBT_OPT_INT, batch_size, "1000", 1, 1000000,
            "Messages per transaction at most"),
        OPT("store", "batch_interval", BBT_OPT_DURATION, batch_interval_ms, "200ms", 10, SECONDS(60),
            "A transaction is committed at least this often"),
        OPT("store", "raw_retention", BBT_OPT_DURATION, raw_retention_ms, "30d", DAYS(8), DAYS(3660),
            "How long each raw message is kept (at least 8 d: longer than the agents keep theirs)"),
        OPT("store", "usage_retention", BBT_OPT_DURATION, usage_retention_ms, "400d", DAYS(8), DAYS(3660),
            "How long usage intervals are kept (rollups are rebuilt from them when the bells change)"),

        OPT("registry", "schools", BBT_OPT_PATH, schools, NULL, 0, 0,
            "Schools CSV (docs/registry.md); empty: none, terminals count under their school codes"),
        OPT("registry", "terminals", BBT_OPT_PATH, terminals, NULL, 0, 0, "Terminals CSV (docs/registry.md)"),
        OPT("registry", "calendar", BBT_OPT_PATH, calendar, NULL, 0, 0,
            "School calendar CSV: terms, holidays, make-up days (docs/calendar.md); empty: every weekday"),
        OPT("registry", "bells", BBT_OPT_PATH, bells, NULL, 0, 0,
            "Bell schedules CSV (docs/calendar.md); empty: the built-in 8 periods"),

        OPT("ingest", "gap_grace", BBT_OPT_DURATION, gap_grace_ms, "30s", 0, DAYS(1),
            "A missing seq is asked for (resend) after this long"),
        OPT("ingest", "resend_timeout", BBT_OPT_DURATION, resend_timeout_ms, "60s", SECONDS(1), DAYS(1),
            "A resend the agent has not answered within this is asked again"),
        OPT("ingest", "resend_settle", BBT_OPT_DURATION, resend_settle_ms, "30s", 0, DAYS(1),
            "After the agent answered, how long to wait for the resent messages"),
        OPT("ingest", "resend_attempts", BBT_OPT_INT, resend_attempts, "5", 1, 1000,
            "Requests for one range before what is still missing is recorded as lost"),
        OPT("ingest", "resend_max_range", BBT_OPT_INT, resend_max_range, "5000", 1, 1000000,
            "Most seqs asked for in one command"),
        OPT("ingest", "gap_give_up", BBT_OPT_DURATION, gap_give_up_ms, "8d", SECONDS(1), DAYS(366),
            "A gap still open after this long is recorded as lost"),
        OPT("ingest", "skew_samples", BBT_OPT_INT, skew_samples, "5", 1, 16,
            "Live heartbeats the clock-skew estimate is taken from"),
        OPT("ingest", "skew_min", BBT_OPT_DURATION, skew_min_ms, "2s", 0, SECONDS(3600),
            "A clock off by less than this is taken as right (no correction)"),
        OPT("ingest", "skew_warmup", BBT_OPT_DURATION, skew_warmup_ms, "30s", 0, SECONDS(3600),
            "Heartbeats received this soon after connecting (the broker's queue) are not skew samples"),

        OPT("ingest", "ask_rate", BBT_OPT_INT, ask_rate, "100", 0, 100000,
            "Terminals asked a second at most for their birth and inventory when a message comes from one whose "
            "state or inventory is not known (no retained delivery: docs/brokers.md); 0: never ask"),

        OPT("metrics", "utc_offset", BBT_OPT_STRING, utc_offset, "+08:00", 0, 0,
            "Local school time as an offset from UTC (Asia/Shanghai: +08:00)"),
        OPT("metrics", "used_day_min", BBT_OPT_DURATION, used_day_ms, "10m", SECONDS(60), DAYS(1),
            "A terminal is used on a day with at least this much active time in school hours"),
        OPT("metrics", "used_period_min", BBT_OPT_DURATION, used_period_ms, "10m", SECONDS(60), SECONDS(86400),
            "A period (节次) is used with at least this much active time inside it"),
        OPT("metrics", "school_hours_margin", BBT_OPT_DURATION, margin_ms, "30m", 0, SECONDS(6 * 3600),
            "School hours run from the first period's start minus this to the last period's end plus this"),
        OPT("metrics", "heartbeat_interval", BBT_OPT_DURATION, heartbeat_ms, "60s", SECONDS(1), SECONDS(3600),
            "The agents' heartbeat interval, for 在线率"),
        OPT("metrics", "idle_window", BBT_OPT_INT, idle_window, "10", 1, 366,
            "Idle list: the last this many school days are looked at"),
        OPT("metrics", "idle_max_days", BBT_OPT_INT, idle_max_days, "0", 0, 366,
            "Idle list: a terminal used on at most this many of them is idle"),
        OPT("metrics", "silent_days", BBT_OPT_INT, silent_days, "3", 1, 366,
            "Fault 'silent': nothing received for more than this many school days"),
        OPT("metrics", "min_pupils", BBT_OPT_INT, min_pupils, "50", 0, 1000000,
            "差异系数: schools with fewer pupils in the section are left out"),
        OPT("metrics", "clock_skew_limit", BBT_OPT_DURATION, clock_skew_limit_ms, "5m", SECONDS(1), DAYS(1),
            "Fault 'clock_skew' when a terminal's clock is further off than this"),
        OPT("metrics", "weekly_lessons_min", BBT_OPT_INT, weekly_lessons_min, "10", 0, 7 * BBT_PERIODS_MAX,
            "Weekly rule: lessons with use a terminal needs per week of five school days (scaled to the "
            "week's school days)"),

        OPT("energy", "watts", BBT_OPT_INT, energy_watts, "250", 1, 10000,
            "After-hours energy: watts of a terminal (panel and PC) of no kind listed in kind_watts"),
        OPT("energy", "kind_watts", BBT_OPT_STRING, energy_kind_watts, "", 0, 0,
            "Watts per terminal kind (the registry's kind column): KIND=W, ... e.g. board=250, projector=330"),
        OPT("energy", "night_start", BBT_OPT_STRING, energy_night_start, "22:00", 0, 0,
            "After-hours energy: the night (nights left on) starts at this local time ..."),
        OPT("energy", "night_end", BBT_OPT_STRING, energy_night_end, "06:00", 0, 0,
            "... and ends at this one the next morning (before night_start)"),
        OPT("power", "schedule", BBT_OPT_PATH, power_schedule, NULL, 0, 0,
            "Power schedule CSV (定时关机): power-off times by day type, per county with per-school rows "
            "(docs/calendar.md); empty: no schedules are sent"),
        OPT("power", "days", BBT_OPT_INT, power_days, "14", 1, 31,
            "Each terminal is sent the power-off times of this many days from today"),
        OPT("power", "send_rate", BBT_OPT_INT, power_send_rate, "100", 1, 100000,
            "Power schedules sent a second at most (terminals coming online together wait their turn)"),
        OPT("power", "expires", BBT_OPT_DURATION, power_expires_ms, "1d", SECONDS(60), DAYS(7),
            "A schedule delivered later than this after it was sent is refused by the agent"),

        { .section = "aggregator", .name = "log_level", .type = BBT_OPT_ENUM,
          .offset = offsetof(struct bbt_aggregator_config, log_level), .default_value = "info",
          .enum_values = log_levels, .help = "Least severe level logged: error, warning, notice, info, debug" },
        OPT("aggregator", "metrics_listen", BBT_OPT_STRING, metrics_listen, "127.0.0.1:9811", 0, 0,
            "Serve Prometheus metrics at http://ADDRESS:PORT/metrics (IPv4 or [IPv6] address); empty: off; "
            "needs a restart"),
        OPT("aggregator", "metrics_timeout", BBT_OPT_DURATION, metrics_timeout_ms, "10s", SECONDS(1), SECONDS(300),
            "A metrics connection that makes no progress for this long is closed; needs a restart"),

        /* bbt-web's; bbt-aggregator reads and ignores them (docs/web.md). */
        OPT("web", "listen", BBT_OPT_STRING, web_listen, "127.0.0.1:8080", 0, 0,
            "bbt-web listens on these HOST:PORT, separated by commas ([::1]:8080 for IPv6); restart to change"),
        OPT("web", "users", BBT_OPT_PATH, web_users, "/etc/bbt/web-users", 0, 0,
            "bbt-web's users file (docs/web.md), not readable by others; SIGHUP re-reads it"),
        OPT("web", "session_lifetime", BBT_OPT_DURATION, web_session_ms, "30m", SECONDS(60), DAYS(1),
            "A web session ends this long after its last use (and 12 h after the login however busy)"),
        OPT("web", "login_burst", BBT_OPT_INT, web_login_burst, "5", 1, 1000,
            "Failed logins one user from one address may make at once ..."),
        OPT("web", "login_refill", BBT_OPT_DURATION, web_login_refill_ms, "1m", SECONDS(1), DAYS(1),
            "... and one more after each such interval"),
        OPT("web", "audit_log", BBT_OPT_PATH, web_audit_log, "/var/log/bbt-web/audit.log", 0, 0,
            "Logins, logouts, refusals and exports, one JSON object a line; empty: none"),
        OPT("web", "static_dir", BBT_OPT_PATH, web_static_dir, "/usr/share/bbt-web/www", 0, 0,
            "The dashboard's files, served at /"),
        OPT("web", "tls_cert", BBT_OPT_PATH, web_tls_cert, NULL, 0, 0,
            "PEM certificate (chain) for HTTPS; empty: plain HTTP (loopback or behind a proxy)"),
        OPT("web", "tls_key", BBT_OPT_PATH, web_tls_key, NULL, 0, 0, "PEM private key of tls_cert"),
        OPT("web", "threads", BBT_OPT_INT, web_threads, "4", 1, 64,
            "Worker threads, each with its own read-only store connection: reports answered at once"),
        OPT("web", "max_connections", BBT_OPT_INT, web_max_connections, "256", 1, 100000,
            "Open connections at most; more are refused"),
        OPT("web", "connection_timeout", BBT_OPT_DURATION, web_timeout_ms, "30s", SECONDS(1), SECONDS(3600),
            "An idle connection is closed after this long"),

        /* bbt-notify's; bbt-aggregator reads and ignores them (docs/notifications.md). */
        OPT("notify", "targets", BBT_OPT_PATH, notify_targets, "/etc/bbt/notify.conf", 0, 0,
            "bbt-notify's webhook targets: one [NAME] section each (format, events, scope, digest_time)"),
        OPT("notify", "secrets", BBT_OPT_PATH, notify_secrets, "/etc/bbt/notify-secrets.conf", 0, 0,
            "The targets' URLs and signing secrets; owner root, group bbt-notify, mode 0640 at most"),
        OPT("notify", "state_dir", BBT_OPT_PATH, notify_state_dir, "/var/lib/bbt-notify", 0, 0,
            "Where bbt-notify keeps what it has sent and what it still owes (state.json)"),
        OPT("notify", "poll_interval", BBT_OPT_DURATION, notify_poll_ms, "30s", 100, SECONDS(3600),
            "The store is read for new faults this often"),
        OPT("notify", "lookback", BBT_OPT_DURATION, notify_lookback_ms, "1d", SECONDS(60), DAYS(30),
            "A fault raised longer ago than this (a late alert) is not announced as new"),
        OPT("notify", "digest_time", BBT_OPT_STRING, notify_digest_time, "07:30", 0, 0,
            "Local time (HH:MM, [metrics] utc_offset) of the daily digest; a target may set its own"),
        OPT("notify", "batch_max", BBT_OPT_INT, notify_batch_max, "100", 1, 1000,
            "New faults in one message at most; more wait for the next message"),
        OPT("notify", "rate_limit", BBT_OPT_INT, notify_rate_limit, "20", 1, 600,
            "Messages per minute to one target at most (WeCom and DingTalk robots take 20)"),
        OPT("notify", "timeout", BBT_OPT_DURATION, notify_timeout_ms, "15s", 100, SECONDS(300),
            "One webhook request (connect, send, answer) may take this long"),
        OPT("notify", "retry_initial", BBT_OPT_DURATION, notify_retry_initial_ms, "10s", 10, SECONDS(3600),
            "The first retry of a failed message waits about this long; each next one twice as long"),
        OPT("notify", "retry_max", BBT_OPT_DURATION, notify_retry_max_ms, "10m", 10, DAYS(1),
            "The longest wait between two attempts"),
        OPT("notify", "retry_attempts", BBT_OPT_INT, notify_retry_attempts, "10", 0, 1000,
            "Retries of a message before it is dropped (and counted as failed)"),
        OPT("notify", "stats_interval", BBT_OPT_DURATION, notify_stats_ms, "1h", SECONDS(1), DAYS(1),
            "The counters (sent, retried, failed, dropped) are logged this often"),
        OPT("web", "cache_size", BBT_OPT_SIZE, web_cache_bytes, "64M", 0, 16LL << 30,
            "Report bodies kept in memory at most (docs/web.md, \"The response cache\"); 0: no cache"),
        OPT("web", "cache_stale", BBT_OPT_DURATION, web_cache_stale_ms, "5s", 0, SECONDS(3600),
            "A cached report may be served this long after the store changed (0: recompute at once)"),
};
#define N_OPTIONS (BBT_ELEMENTSOF(options))

/* The [energy] keys into M (when not NULL); NULL, or what is wrong with *KEY. */
static const char *energy_settings(const struct bbt_aggregator_config *c, struct bbt_metric_settings *m,
                                   const char **key, char *err, size_t err_size)
{
        struct bbt_energy_watts w = { .watts = (int)c->energy_watts };
        int start = 0, end = 0;

        if (bbt_energy_watts_parse(c->energy_kind_watts, &w, err, err_size) < 0) {
                *key = "[energy] kind_watts";
                return err;
        }
        if (!c->energy_night_start || bbt_minute_parse(c->energy_night_start, &start) < 0 || start == 0) {
                *key = "[energy] night_start";
                return "expected a time of day HH:MM after 00:00, e.g. 22:00";
        }
        if (!c->energy_night_end || bbt_minute_parse(c->energy_night_end, &end) < 0 || end >= start) {
                *key = "[energy] night_end";
                return "expected a time of day HH:MM before night_start, e.g. 06:00";
        }
        if (m) {
                m->watts = w;
                m->night_start_min = start;
                m->night_end_min = end;
        }
        return NULL;
}

static int check(const char *path, void *cfg, char *err, size_t err_size)
{
        struct bbt_aggregator_config *c = cfg;
        const char *what = NULL, *key = NULL;
        char energy_err[160];
        struct sockaddr_storage sa;
        socklen_t sa_len;
        int offset, minute;

        if (bbt_broker_config_check(&c->broker, &key, &what) < 0) {
                /* key and what are set */
        } else if (!c->client_id || !*c->client_id || strlen(c->client_id) > 64) {
                key = "[broker] client_id", what = "expected 1 to 64 characters";
        } else if (!c->topic || !*c->topic) {
                key = "[broker] topic", what = "must not be empty";
        } else if (c->share_group && strpbrk(c->share_group, "/+#")) {
                key = "[broker] share_group", what = "must not contain / + #";
        } else if (!c->store_path || !*c->store_path) {
                key = "[store] path", what = "must not be empty";
        } else if (c->store_path[0] != '/' && !bbt_store_location_is_pg(c->store_path)) {
                key = "[store] path", what = "expected an absolute path or a postgresql:// URI";
        } else if (c->terminals && !c->schools) {
                key = "[registry] terminals", what = "needs [registry] schools";
        } else if (c->used_day_ms % 60000 || c->used_period_ms % 60000 || c->margin_ms % 60000) {
                key = c->used_day_ms % 60000      ? "[metrics] used_day_min"
                      : c->used_period_ms % 60000 ? "[metrics] used_period_min"
                                                  : "[metrics] school_hours_margin";
                what = "expected whole minutes, e.g. 10m";
        } else if (bbt_utc_offset_parse(c->utc_offset, &offset) < 0) {
                key = "[metrics] utc_offset", what = "expected an offset such as +08:00";
        } else if ((what = energy_settings(c, NULL, &key, energy_err, sizeof(energy_err)))) {
                /* key and what are set */
        } else if (bbt_minute_parse(c->notify_digest_time, &minute) < 0 || minute >= 24 * 60) {
                key = "[notify] digest_time", what = "expected a time of day HH:MM, e.g. 07:30";
        } else if (!c->web_tls_cert != !c->web_tls_key) {
                key = c->web_tls_cert ? "[web] tls_key" : "[web] tls_cert", what = "tls_cert and tls_key go together";
        } else if (c->metrics_listen && *c->metrics_listen &&
                   bbt_listen_parse(c->metrics_listen, &sa, &sa_len) < 0) {
                snprintf(err, err_size,
                         "%s: [aggregator] metrics_listen: expected ADDRESS:PORT with an IPv4 address or an IPv6 "
                         "address in brackets and a port from 1 to 65535 (127.0.0.1:9811, [::1]:9811), or nothing "
                         "for no metrics server, got \"%s\"",
                         path, c->metrics_listen);
                return -EINVAL;
        }
        if (!what)
                return 0;
        snprintf(err, err_size, "%s: %s: %s", path, key, what);
        return -EINVAL;
}

int bbt_aggregator_config_load(const char *path, struct bbt_aggregator_config *ret, char *err, size_t err_size)
{
        return bbt_config_load_checked(options, N_OPTIONS, path, ret, sizeof(*ret), check, err, err_size);
}

int bbt_aggregator_config_defaults(struct bbt_aggregator_config *ret)
{
        memset(ret, 0, sizeof(*ret));
        return bbt_config_defaults(options, N_OPTIONS, ret, NULL, 0);
}

int bbt_aggregator_config_set(struct bbt_aggregator_config *cfg, const char *key, const char *value, char *err,
                              size_t err_size)
{
        int r = bbt_config_set(options, N_OPTIONS, cfg, key, value, err, err_size);

        /* The checks across keys hold for overrides too (the caller gives up on failure). */
        return r < 0 ? r : check(key, cfg, err, err_size);
}

void bbt_aggregator_config_free(struct bbt_aggregator_config *cfg)
{
        bbt_config_free(options, N_OPTIONS, cfg);
}

int bbt_aggregator_config_dump(const struct bbt_aggregator_config *cfg, FILE *out)
{
        struct bbt_aggregator_config shown = *cfg; /* shallow: the strings stay cfg's */
        char store[1024];

        /* A PostgreSQL URI's password is never printed (it reads back as "***"). */
        if (cfg->store_path)
                shown.store_path = bbt_store_location_redact(cfg->store_path, store, sizeof(store));
        return bbt_config_dump(options, N_OPTIONS, &shown, out);
}

int bbt_aggregator_config_log_priority(const struct bbt_aggregator_config *cfg)
{
        return BBT_LOG_ERR + cfg->log_level;
}

void bbt_aggregator_config_settings(const struct bbt_aggregator_config *c, struct bbt_ingest_settings *s)
{
        struct bbt_metric_settings *m = &s->metrics;
        int offset = BBT_UTC_OFFSET_DEFAULT_MIN;

        memset(s, 0, sizeof(*s));
        s->batch_size = c->batch_size;
        s->gap_grace_ms = c->gap_grace_ms;
        s->resend_timeout_ms = c->resend_timeout_ms;
        s->resend_settle_ms = c->resend_settle_ms;
        s->resend_attempts = (int)c->resend_attempts;
        s->resend_max_range = c->resend_max_range;
        s->gap_give_up_ms = c->gap_give_up_ms;
        s->skew_samples = (int)c->skew_samples;
        s->skew_min_ms = c->skew_min_ms;
        s->skew_warmup_ms = c->skew_warmup_ms;
        s->ask_rate = (int)c->ask_rate;
        s->power_days = (int)c->power_days;
        s->power_send_rate = (int)c->power_send_rate;
        s->power_expires_ms = c->power_expires_ms;
        /* A share group: its members write one store together. */
        s->shared = c->share_group && *c->share_group;
        s->instance = c->client_id;
        bbt_utc_offset_parse(c->utc_offset, &offset);
        m->offset_min = offset;
        m->used_day_min = (int)(c->used_day_ms / 60000);
        m->used_period_min = (int)(c->used_period_ms / 60000);
        m->margin_min = (int)(c->margin_ms / 60000);
        m->heartbeat_s = (int)(c->heartbeat_ms / 1000);
        m->idle_window = (int)c->idle_window;
        m->idle_max_days = (int)c->idle_max_days;
        m->silent_days = (int)c->silent_days;
        m->min_pupils = (long)c->min_pupils;
        m->clock_skew_limit_ms = c->clock_skew_limit_ms;
        m->weekly_lessons_min = (int)c->weekly_lessons_min;
        {
                const char *key;
                char err[160];

                /* Checked when loaded: the defaults stay where a value is bad. */
                m->watts.watts = (int)c->energy_watts;
                m->night_start_min = 22 * 60;
                m->night_end_min = 6 * 60;
                (void)energy_settings(c, m, &key, err, sizeof(err));
        }
}

void bbt_ingest_settings_default(struct bbt_ingest_settings *s)
{
        struct bbt_aggregator_config c = { 0 };

        /* Only ENOMEM can fail here (the table's defaults are tested). */
        if (bbt_config_defaults(options, N_OPTIONS, &c, NULL, 0) < 0)
                abort();
        bbt_aggregator_config_settings(&c, s);
        bbt_config_free(options, N_OPTIONS, &c);
}

void bbt_metric_settings_default(struct bbt_metric_settings *m)
{
        struct bbt_ingest_settings s;

        bbt_ingest_settings_default(&s);
        *m = s.metrics;
}

static void print_errors(FILE *out, const struct bbt_import_errors *e)
{
        for (size_t i = 0; i < e->n_kept; i++)
                fprintf(out, "%s\n", e->msg[i]);
        if (e->count > e->n_kept)
                fprintf(out, "... and %zu more problems\n", e->count - e->n_kept);
}

int bbt_aggregator_load_registry(const struct bbt_aggregator_config *cfg, FILE *errs_out,
                                 struct bbt_registry **ret_reg, struct bbt_calendar **ret_cal)
{
        struct bbt_registry *reg = NULL;
        struct bbt_calendar *cal = NULL;
        struct bbt_import_errors *errs = calloc(1, sizeof(*errs));
        int r;

        if (!errs)
                return -ENOMEM;
        r = bbt_registry_new(&reg);
        if (r == 0)
                r = bbt_calendar_new(&cal);
        if (r == 0 && cfg->schools)
                r = bbt_registry_load_schools(reg, cfg->schools, errs);
        if (r == 0 && cfg->terminals)
                r = bbt_registry_load_terminals(reg, cfg->terminals, errs);
        if (r == 0 && cfg->calendar)
                r = bbt_calendar_load_days(cal, cfg->calendar, errs);
        if (r == 0 && cfg->bells)
                r = bbt_calendar_load_bells(cal, cfg->bells, errs);
        if (r == 0 && cfg->power_schedule)
                r = bbt_calendar_load_power(cal, cfg->power_schedule, errs);
        if (r < 0) {
                if (errs->n_kept == 0)
                        fprintf(errs_out, "registry: %s\n", strerror(-r));
                print_errors(errs_out, errs);
                bbt_registry_free(reg);
                bbt_calendar_free(cal);
                free(errs);
                return r;
        }
        free(errs);
        *ret_reg = reg;
        *ret_cal = cal;
        return 0;
}
