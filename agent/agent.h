/* The bbt-agent daemon: spool every message, publish it in order, answer commands, stop cleanly. */
#ifndef BBT_AGENT_H
#define BBT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "agent_config.h"

struct bbt_agent;

/* Counters a test or --probe can read. */
struct bbt_agent_stats {
        uint64_t produced;        /* messages appended to the spool */
        uint64_t published;       /* publishes handed to the broker connection (incl. resends) */
        uint64_t acked;           /* spooled records acknowledged by the broker */
        uint64_t resent;          /* records republished for resend commands */
        uint64_t cmd_received, cmd_rejected;
        uint64_t spool_errors;    /* appends that failed (disk full, I/O error) */
        uint32_t boot;
};

/* Creates the agent on LOOP with CONFIG (the agent takes ownership of its
 * strings) read from CONFIG_PATH (kept for SIGHUP reloads): opens the state
 * directory and the spool, and logs what it found there. Returns 0, or a
 * negative errno with the reason logged. */
int bbt_agent_new(uv_loop_t *loop, const char *config_path, struct bbt_agent_config *config,
                  struct bbt_agent **ret);

/* Starts the timers, signal handlers and the broker connection. */
int bbt_agent_start(struct bbt_agent *a);

/* Stops as on SIGTERM: closes the open usage interval, publishes the shutdown
 * state, waits (at most ~4 s) for the broker to acknowledge what is in
 * flight, disconnects cleanly, saves the spool and the counters, and closes
 * every handle, so uv_run() returns. */
void bbt_agent_stop(struct bbt_agent *a);

/* Re-reads the configuration file, as on SIGHUP. Returns 0, or a negative
 * errno (the old configuration stays) with the reason logged. */
int bbt_agent_reload(struct bbt_agent *a);

/* Prints what each enabled driver and the health readings see now, for
 * `bbt-agent --probe`; opens neither the spool nor the broker connection.
 * Returns the number of problems found (a driver's probe that failed: the
 * projector unreachable...), or a negative errno when the probe cannot run. */
int bbt_agent_probe(const struct bbt_agent_config *config, FILE *out);

void bbt_agent_get_stats(const struct bbt_agent *a, struct bbt_agent_stats *ret);

/* Frees an agent whose loop has stopped (after bbt_agent_stop()). NULL-safe. */
void bbt_agent_free(struct bbt_agent *a);

#endif
