/* bbt-agent's option table and the checks that span several keys. */
#include "agent_config.h"
#include "bbt/base.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/config.h"
#include "bbt/fileio.h"
#include "bbt/log.h"
#include "bbt/protocol.h"
#include "periph.h"
#include "power.h"

const char *const bbt_agent_log_levels[] = { "error", "warning", "notice", "info", "debug", NULL };
static const char *const fsync_names[] = { "each", "interval", NULL };
const char *const bbt_agent_at_bound_names[] = { "poweroff", "skip", NULL };

#define OPT(sec, key, t, field, def, lo, hi, text)                                               \
        {                                                                                        \
                .section = sec, .name = key, .type = t,                                         \
                .offset = offsetof(struct bbt_agent_config, field), .default_value = def,       \
                .min = lo, .max = hi, .help = text,                                             \
        }
#define SECONDS(n) ((long long)(n) * 1000)

/* Keep docs/agent.md and docs/man/bbt-agent.conf.5 in step with this table. */
static const struct bbt_option options[] = {
        OPT("identity", "county", BBT_OPT_STRING, county, NULL, 0, 0,
            "County administrative division code, 6 digits (required)"),
        OPT("identity", "school", BBT_OPT_STRING, school, NULL, 0, 0,
            "School code, [A-Za-z0-9_-]{1,32} (required)"),
        OPT("identity", "terminal", BBT_OPT_STRING, terminal, NULL, 0, 0,
            "Terminal ID within the school, usually the room, [A-Za-z0-9_-]{1,32} (required)"),

        BBT_BROKER_OPTIONS(struct bbt_agent_config, broker, "60s"),

        OPT("agent", "state_dir", BBT_OPT_PATH, state_dir, "/var/lib/bbt-agent", 0, 0,
            "Where the seq and boot counters are kept"),
        OPT("agent", "root", BBT_OPT_PATH, root, "/", 0, 0,
            "Root under which /proc and /sys are read (a fixture tree in tests)"),
        { .section = "agent", .name = "log_level", .type = BBT_OPT_ENUM,
          .offset = offsetof(struct bbt_agent_config, log_level), .default_value = "info",
          .enum_values = bbt_agent_log_levels, .help = "Least severe level logged: error, warning, notice, info, debug" },
        OPT("agent", "heartbeat_interval", BBT_OPT_DURATION, heartbeat_ms, "60s", 100, SECONDS(3600),
            "How often a heartbeat (hb) is sent"),
        OPT("agent", "usage_flush", BBT_OPT_DURATION, usage_flush_ms, "300s", 100, SECONDS(3600),
            "Longest open usage interval: at most this much usage is lost in a crash"),
        OPT("agent", "idle_timeout", BBT_OPT_DURATION, idle_timeout_ms, "300s", SECONDS(10), SECONDS(3600),
            "No input for this long (and no audio) makes the terminal idle rather than active"),

        OPT("spool", "dir", BBT_OPT_PATH, spool_dir, "/var/lib/bbt-agent/spool", 0, 0,
            "Spool directory: every message is stored here before it is published"),
        OPT("spool", "max_size", BBT_OPT_SIZE, spool_max_bytes, "64M", 128LL << 10, 16LL << 30,
            "Largest spool; past it the oldest records are dropped, counted and alerted"),
        { .section = "spool", .name = "fsync", .type = BBT_OPT_ENUM,
          .offset = offsetof(struct bbt_agent_config, fsync_policy), .default_value = "interval",
          .enum_values = fsync_names, .help = "each: fsync every record before publishing it; interval: within fsync_interval of its append" },
        OPT("spool", "fsync_interval", BBT_OPT_DURATION, fsync_interval_ms, "1000ms", 10, SECONDS(60),
            "With fsync = interval, how long after a record is appended the spool is synced"),
        OPT("spool", "retain_acked", BBT_OPT_DURATION, retain_acked_ms, "7d", 0, SECONDS(366LL * 86400),
            "How long acknowledged records are kept for resend requests (within max_size)"),
        OPT("spool", "inflight", BBT_OPT_INT, inflight, "20", 1, 1000,
            "Messages published and not yet acknowledged at most"),
        OPT("spool", "drain_rate", BBT_OPT_INT, drain_rate, "50", 1, 100000,
            "Messages per second at most when sending a backlog"),
        OPT("spool", "resend_rate", BBT_OPT_INT, resend_rate, "20", 1, 100000,
            "Messages per second at most when answering a resend command"),

        OPT("health", "enabled", BBT_OPT_BOOL, health_enabled, "yes", 0, 0,
            "Report uptime, load, cpu, memory and disk in heartbeats"),

        OPT("input", "enabled", BBT_OPT_BOOL, input_enabled, "yes", 0, 0,
            "Count touch, pen, mouse and key interactions (counts only; needs the input group)"),
        OPT("display", "enabled", BBT_OPT_BOOL, display_enabled, "yes", 0, 0,
            "Follow the display's power from DRM connectors and the backlight"),
        OPT("audio", "enabled", BBT_OPT_BOOL, audio_enabled, "yes", 0, 0,
            "Follow audio playback from ALSA (/proc/asound)"),
        OPT("peripherals", "enabled", BBT_OPT_BOOL, periph_enabled, "yes", 0, 0,
            "Report peripherals (camera, microphones, speakers, touch frame, storage, displays)"),
        OPT("peripherals", "expect", BBT_OPT_STRING, periph_expect, "", 0, 0,
            "Kinds that must be present, e.g. \"camera, touch\"; a missing one raises periph_missing"),
        OPT("peripherals", "debounce", BBT_OPT_DURATION, periph_debounce_ms, "2s", 100, SECONDS(60),
            "Plug and unplug within this long count as one change"),
        OPT("projector", "host", BBT_OPT_STRING, projector_host, "", 0, 0,
            "Projector's address for PJLink (TCP 4352); empty: no projector"),
        OPT("projector", "port", BBT_OPT_INT, projector_port, "4352", 1, 65535, "PJLink port"),
        OPT("projector", "password", BBT_OPT_STRING, projector_password, "", 0, 0,
            "PJLink password (at most 32 bytes); empty: none"),
        OPT("projector", "poll_interval", BBT_OPT_DURATION, projector_poll_ms, "30s", SECONDS(1), SECONDS(3600),
            "How often the projector is asked for its status"),
        OPT("projector", "timeout", BBT_OPT_DURATION, projector_timeout_ms, "5s", 100, SECONDS(60),
            "How long each PJLink step may take"),
        OPT("projector", "lamp_hours_limit", BBT_OPT_INT, projector_lamp_hours_limit, "0", 0, 1000000,
            "Raise lamp_hours when the lamp reaches this many hours; 0: never"),
        OPT("projector", "unreachable_alert", BBT_OPT_DURATION, projector_unreachable_alert_ms, "10m", 0,
            SECONDS(86400), "Raise projector_unreachable when no poll has succeeded for this long; 0: never"),

        OPT("power", "method", BBT_OPT_STRING, power_method, "logind", 0, 0,
            "How a scheduled power-off is done: logind (PowerOff over D-Bus) or dry-run (recorded in "
            "state_dir/poweroff.dry-run, nothing is switched off)"),
        OPT("power", "postpone_step", BBT_OPT_DURATION, power_postpone_step_ms, "10m", SECONDS(1), SECONDS(3600),
            "A power-off due while the board is in use waits this long, again and again (the schedule may say otherwise)"),
        OPT("power", "postpone_max", BBT_OPT_DURATION, power_postpone_max_ms, "60m", 0, SECONDS(86400),
            "Postponement at most, in all; then at_bound decides"),
        { .section = "power", .name = "at_bound", .type = BBT_OPT_ENUM,
          .offset = offsetof(struct bbt_agent_config, power_at_bound), .default_value = "poweroff",
          .enum_values = bbt_agent_at_bound_names,
          .help = "Still in use at postpone_max: poweroff (anyway) or skip (this power-off)" },
        OPT("network", "interface", BBT_OPT_STRING, network_interface, "", 0, 0,
            "The wired NIC reported in the inventory and used for Wake-on-LAN; empty: found automatically"),
};
#define N_OPTIONS (BBT_ELEMENTSOF(options))

static int check(const char *path, void *cfg, char *err, size_t err_size)
{
        struct bbt_agent_config *c = cfg;
        const char *what = NULL, *key = NULL;
        uint32_t expect;

        if (!c->county || !c->school || !c->terminal) {
                key = !c->county ? "[identity] county" : !c->school ? "[identity] school" : "[identity] terminal";
                what = "missing (required)";
        } else if (!bbt_county_valid(c->county)) {
                key = "[identity] county", what = "expected 6 digits";
        } else if (!bbt_id_valid(c->school)) {
                key = "[identity] school", what = "expected 1 to 32 of A-Z a-z 0-9 _ -";
        } else if (!bbt_id_valid(c->terminal)) {
                key = "[identity] terminal", what = "expected 1 to 32 of A-Z a-z 0-9 _ -";
        } else if (bbt_broker_config_check(&c->broker, &key, &what) < 0) {
                /* key and what are set */
        } else if (bbt_periph_expect_parse(c->periph_expect ? c->periph_expect : "", &expect) < 0) {
                key = "[peripherals] expect",
                what = "expected kinds among camera, audio_in, audio_out, touch, pen, keyboard, mouse, storage, "
                       "display, projector, network, other";
        } else if (!bbt_power_ops_find(c->power_method)) {
                key = "[power] method", what = "expected logind or dry-run";
        } else if (c->network_interface && strlen(c->network_interface) > 15) {
                key = "[network] interface", what = "at most 15 characters (an interface name)";
        } else if (c->projector_password && strlen(c->projector_password) > 32) {
                key = "[projector] password", what = "at most 32 bytes (PJLink)";
        } else if (c->projector_password && *c->projector_password &&
                   bbt_private_file_check(path, NULL) == -EPERM) {
                /* A student account on the terminal must not read it. */
                key = "[projector] password",
                what = "set in a file other users can read; make the file private: chmod 640 (group of the "
                       "agent's user) or 600";
        }
        if (!what)
                return 0;
        snprintf(err, err_size, "%s: %s: %s", path, key, what);
        return -EINVAL;
}

int bbt_agent_config_load(const char *path, struct bbt_agent_config *ret, char *err, size_t err_size)
{
        return bbt_config_load_checked(options, N_OPTIONS, path, ret, sizeof(*ret), check, err, err_size);
}

int bbt_agent_config_set_runtime(struct bbt_agent_config *cfg, const char *key, const char *value, char *err,
                                 size_t err_size)
{
        char full[64];

        if (strcmp(key, "heartbeat_interval") != 0 && strcmp(key, "idle_timeout") != 0) {
                snprintf(err, err_size, "unknown setting %s (settable: heartbeat_interval, idle_timeout)", key);
                return -ENOENT;
        }
        snprintf(full, sizeof(full), "agent.%s", key);
        return bbt_config_set(options, N_OPTIONS, cfg, full, value, err, err_size);
}

void bbt_agent_config_free(struct bbt_agent_config *cfg)
{
        bbt_config_free(options, N_OPTIONS, cfg);
}

int bbt_agent_config_dump(const struct bbt_agent_config *cfg, FILE *out)
{
        return bbt_config_dump(options, N_OPTIONS, cfg, out);
}

int bbt_agent_config_log_priority(const struct bbt_agent_config *cfg)
{
        return BBT_LOG_ERR + cfg->log_level;
}
