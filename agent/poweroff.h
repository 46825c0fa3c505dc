/* The power schedule: power-off times from the aggregator (power_schedule, shutdown_at), kept in state_dir/power, carried out at their time, postponed while the board is in use; every power-off and postponement reported as an event. */
#ifndef BBT_AGENT_POWEROFF_H
#define BBT_AGENT_POWEROFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "bbt/protocol.h"

struct bbt_agent;

#define BBT_POWER_FILE "power"
#define BBT_POWER_ONCE_MAX 16
/* A power-off time more than this late (the agent was not running then)
 * is not carried out. */
#define BBT_POWER_LATE_MS (5 * 60 * 1000)

struct bbt_power_entry {
        int64_t at;        /* ms since the epoch, the time asked for */
        int64_t postponed; /* ms of postponement so far: due at at + postponed */
        char origin[72];   /* "schedule" or the shutdown_at command's id */
};

struct bbt_poweroff {
        /* The schedule's settings; 0 / -1: the configuration's. */
        int64_t rev, step_ms, max_ms;
        int at_bound;
        size_t n;
        struct bbt_power_entry e[BBT_POWER_SCHEDULE_MAX + BBT_POWER_ONCE_MAX]; /* by due time */
        uv_timer_t timer;
        uv_work_t work;
        bool working, timer_open;
        /* The request's own copies: a reload may replace the configuration
         * while the worker thread runs. */
        const void *work_ops;
        char work_target[512], work_method[16];
        int work_status;
        char work_err[256];
};

/* Loads state_dir/power (a damaged file is logged and set aside) and starts
 * the timer. */
void bbt_poweroff_start(struct bbt_agent *a);
/* Closes the timer, as part of the stop. */
void bbt_poweroff_close(struct bbt_agent *a);

/* The commands. Each returns 0 with a result (may be NULL), or a negative
 * errno with the reason in ERR. */
int bbt_poweroff_at(struct bbt_agent *a, const char *id, int64_t at, cJSON **ret_result, char *err, size_t err_size);
int bbt_poweroff_schedule(struct bbt_agent *a, const cJSON *args, cJSON **ret_result, char *err, size_t err_size);

#endif
