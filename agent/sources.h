/* The agent's sources: the drivers its configuration enables, what they report, the usage tracker fed by them. */
#ifndef BBT_AGENT_SOURCES_H
#define BBT_AGENT_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <uv.h>

#include "bbt/driver.h"
#include "bbt/protocol.h"
#include "usage_tracker.h"
#include "wol.h"

struct bbt_agent;

struct bbt_source_kind; /* an entry of the table in sources.c */

/* One driver the configuration enabled, and what kind it is. */
struct bbt_source {
        struct bbt_driver *driver;
        const struct bbt_source_kind *kind;
};

struct bbt_sources {
        struct bbt_driver_events events; /* what every driver reports to (userdata: the agent) */
        struct bbt_source *list;         /* in the order of the table in sources.c */
        size_t n, cap;
        struct bbt_driver *periph, *projector; /* among DRIVERS, or NULL: for the inventory
                                                  and the projector_power command */

        /* What the drivers said last. */
        bool display_panel_on, display_projector_on;
        bool has_projector_status;
        struct bbt_projector_status projector_status; /* .input points into projector_input */
        char projector_input[17];
        struct bbt_wired_nic nic; /* the inventory's net points into it */

        /* Input, display and audio make usage intervals. */
        struct bbt_usage_tracker usage;
        uv_timer_t usage_timer;
};

/* Creates the drivers the configuration enables (not started), on LOOP, which
 * may be a loop that never runs (for --probe). Returns 0 or a negative errno
 * (logged); what was created is freed by bbt_sources_destroy(). */
int bbt_sources_create(struct bbt_agent *a, uv_loop_t *loop);

/* Starts the usage tracker and its timer (the display off: standby). */
void bbt_sources_init(struct bbt_agent *a);

/* Starts every driver made by bbt_sources_create() (one that cannot start is
 * logged and left out). */
void bbt_sources_start(struct bbt_agent *a);

/* Applies a reloaded idle_timeout and usage_flush. */
void bbt_sources_reload(struct bbt_agent *a);

/* Closes the open usage interval at a stop (it is produced) and stops the
 * usage timer. */
void bbt_sources_flush(struct bbt_agent *a);

/* Stops every driver and closes the usage timer, as part of the stop. */
void bbt_sources_stop(struct bbt_agent *a);

/* Writes what each driver sees now (--probe); returns the problems found. */
int bbt_sources_probe(struct bbt_agent *a, FILE *out);

/* Frees the drivers (after bbt_sources_stop() has closed their handles, or
 * never started). */
void bbt_sources_destroy(struct bbt_agent *a);

/* Fills HB with what the sources say now: the readings of every driver read
 * at heartbeat time (health, while [health] enabled), the usage state, the
 * projector's last status.
 * Strings point into the sources until the next call. */
void bbt_sources_heartbeat(struct bbt_agent *a, struct bbt_hb *hb);

/* Initialises M as the inventory of the peripherals now (empty without the
 * peripherals driver); its devices point into the driver until it changes. */
void bbt_sources_inventory(struct bbt_agent *a, struct bbt_msg *m);

#endif
