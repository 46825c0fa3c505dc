/* bbt-aggregator's configuration (also read by bbt-report): every key, its default and range, from one INI file. */
#ifndef BBT_AGGREGATOR_CONFIG_H
#define BBT_AGGREGATOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bbt/broker_config.h"
#include "calendar.h"
#include "ingest.h"
#include "registry.h"

#define BBT_AGGREGATOR_CONFIG_PATH "/etc/bbt/aggregator.conf"

struct bbt_aggregator_config {
        /* [broker] */
        struct bbt_broker_config broker;
        char *client_id, *topic, *share_group;
        long long share_probe_timeout_ms;
        /* [store] */
        char *store_path;
        long long batch_size, batch_interval_ms, raw_retention_ms, usage_retention_ms;
        /* [registry] */
        char *schools, *terminals, *calendar, *bells;
        /* [ingest] */
        long long gap_grace_ms, resend_timeout_ms, resend_settle_ms, resend_attempts, resend_max_range;
        long long gap_give_up_ms, skew_samples, skew_min_ms, skew_warmup_ms;
        long long ask_rate;
        /* [metrics] */
        char *utc_offset;
        long long used_day_ms, used_period_ms, margin_ms, heartbeat_ms;
        long long idle_window, idle_max_days, silent_days, min_pupils, clock_skew_limit_ms;
        long long weekly_lessons_min;
        /* [energy] */
        long long energy_watts;
        char *energy_kind_watts, *energy_night_start, *energy_night_end;
        /* [power] */
        char *power_schedule;
        long long power_days, power_send_rate, power_expires_ms;
        /* [aggregator] */
        int log_level;
        char *metrics_listen; /* "" or NULL: no metrics server */
        long long metrics_timeout_ms;
        /* [web]: bbt-web only (docs/web.md) */
        char *web_listen, *web_users, *web_audit_log, *web_static_dir, *web_tls_cert, *web_tls_key;
        long long web_session_ms, web_login_burst, web_login_refill_ms, web_threads, web_max_connections;
        long long web_timeout_ms;
        /* [notify]: bbt-notify only (docs/notifications.md) */
        char *notify_targets, *notify_secrets, *notify_state_dir, *notify_digest_time;
        long long notify_poll_ms, notify_lookback_ms, notify_batch_max, notify_rate_limit, notify_timeout_ms;
        long long notify_retry_initial_ms, notify_retry_max_ms, notify_retry_attempts, notify_stats_ms;
        long long web_cache_bytes, web_cache_stale_ms;
};

/* Loads PATH over the defaults into RET and checks what one key alone cannot.
 * Returns 0, or a negative errno with ERR as "PATH:LINE: [section] key: reason".
 * RET is untouched on failure; free it with bbt_aggregator_config_free(). */
int bbt_aggregator_config_load(const char *path, struct bbt_aggregator_config *ret, char *err, size_t err_size);
/* The built-in defaults (no file). Returns 0 or -ENOMEM. */
int bbt_aggregator_config_defaults(struct bbt_aggregator_config *ret);
void bbt_aggregator_config_free(struct bbt_aggregator_config *cfg);
int bbt_aggregator_config_dump(const struct bbt_aggregator_config *cfg, FILE *out);
/* Sets "section.key" to VALUE as if written in the file (command-line overrides),
 * then checks the whole configuration again. Returns 0 or a negative errno with
 * ERR; on failure after the value was set, CFG holds it: discard CFG. */
int bbt_aggregator_config_set(struct bbt_aggregator_config *cfg, const char *key, const char *value, char *err,
                              size_t err_size);
int bbt_aggregator_config_log_priority(const struct bbt_aggregator_config *cfg);

/* The ingest and metric settings the configuration describes. */
void bbt_aggregator_config_settings(const struct bbt_aggregator_config *cfg, struct bbt_ingest_settings *ret);
/* The indicator settings' defaults, from the option table. */
void bbt_metric_settings_default(struct bbt_metric_settings *ret);

/* Reads the registry and calendar files the configuration names (those left
 * empty are skipped). On failure every problem has been written to ERRS_OUT
 * (one line each) and nothing is returned. Returns 0 with *RET_REG and
 * *RET_CAL (free both), or a negative errno. */
int bbt_aggregator_load_registry(const struct bbt_aggregator_config *cfg, FILE *errs_out,
                                 struct bbt_registry **ret_reg, struct bbt_calendar **ret_cal);

#endif
