/* bbt-agent's configuration: every key, its default and range, loaded from one INI file. */
#ifndef BBT_AGENT_CONFIG_H
#define BBT_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bbt/broker_config.h"

#define BBT_AGENT_CONFIG_PATH "/etc/bbt/agent.conf"

enum bbt_fsync_policy { BBT_FSYNC_EACH, BBT_FSYNC_INTERVAL };

struct bbt_agent_config {
        /* [identity] */
        char *county, *school, *terminal;
        /* [broker] */
        struct bbt_broker_config broker;
        /* [agent] */
        char *state_dir;
        char *root;
        int log_level; /* index into bbt_agent_log_levels: 0 = error .. 4 = debug */
        long long heartbeat_ms, usage_flush_ms, idle_timeout_ms;
        /* [spool] */
        char *spool_dir;
        long long spool_max_bytes;
        int fsync_policy;
        long long fsync_interval_ms, retain_acked_ms;
        long long inflight, drain_rate, resend_rate;
        /* [health] */
        bool health_enabled;
        /* [input], [display], [audio], [peripherals], [projector] */
        bool input_enabled, display_enabled, audio_enabled, periph_enabled;
        char *periph_expect;
        long long periph_debounce_ms;
        char *projector_host, *projector_password;
        long long projector_port, projector_poll_ms, projector_timeout_ms, projector_lamp_hours_limit;
        long long projector_unreachable_alert_ms;
        /* [power] */
        char *power_method;
        long long power_postpone_step_ms, power_postpone_max_ms;
        int power_at_bound; /* index into bbt_agent_at_bound_names */
        /* [network] */
        char *network_interface;
        /* Not in the file: --recover-state (start past the spool if the state file is malformed). */
        bool recover_state;
};

extern const char *const bbt_agent_log_levels[];
/* [power] at_bound: what a postponement does at its bound while still in use. */
enum { BBT_AT_BOUND_POWEROFF, BBT_AT_BOUND_SKIP };
extern const char *const bbt_agent_at_bound_names[];

/* Loads PATH over the defaults into RET and checks what one key alone cannot
 * (identity IDs, TLS pairs, backoff order). Returns 0, or a negative errno with
 * ERR as "PATH:LINE: [section] key: reason" or "PATH: [section] key: reason".
 * RET is untouched on failure; on success the caller frees it with
 * bbt_agent_config_free(). */
int bbt_agent_config_load(const char *path, struct bbt_agent_config *ret, char *err, size_t err_size);

/* Sets [agent] KEY (heartbeat_interval or idle_timeout, as the set command
 * names them) in CFG to VALUE, parsed and bounded as in the file. Returns 0,
 * -ENOENT for another key, -EINVAL for a bad value (ERR says why). */
int bbt_agent_config_set_runtime(struct bbt_agent_config *cfg, const char *key, const char *value, char *err,
                                 size_t err_size);

/* Frees the strings in CFG (NULL-safe). */
void bbt_agent_config_free(struct bbt_agent_config *cfg);

/* Writes the effective configuration as INI, with each key's help. */
int bbt_agent_config_dump(const struct bbt_agent_config *cfg, FILE *out);

/* The syslog priority of CFG's log_level. */
int bbt_agent_config_log_priority(const struct bbt_agent_config *cfg);

#endif
