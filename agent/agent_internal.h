/* The agent's parts and the one context they share: which part owns which field, and the calls between them. */
#ifndef BBT_AGENT_INTERNAL_H
#define BBT_AGENT_INTERNAL_H

/*
 * bbt-agent is six parts around one struct bbt_agent, each in its own file:
 *
 *   agent.c     the life cycle: new, start, reload, stop, free, --probe
 *   sources.c   the drivers (a table of what the configuration enables), what
 *               they report, the usage tracker, what a heartbeat carries
 *   produce.c   a message becomes a record: seq, encode, spool; heartbeats;
 *               the spool_drop alert
 *   uplink.c    records go to the broker in seq order within a window,
 *               acknowledgements move the spool's watermark; fsync and meta saves
 *   session.c   the broker connection: boot counter, will, birth, the first
 *               messages after a connect, the connection's callbacks
 *   commands.c  commands from the aggregator: dispatch, the reply cache,
 *               projector power; resend.c: resend jobs and their replies
 *
 * Each part owns the sub-struct named after it below and its own uv handles;
 * the others may read its fields but change them only through its functions.
 * The spool, the counters, the connection, the configuration and the stats
 * are shared: every part uses them, bbt_agent_new() and session.c create them.
 * Everything runs on the loop thread, but for the fsync work in uplink.c.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

#include "agent.h"
#include "agent_config.h"
#include "commands.h"
#include "poweroff.h"
#include "produce.h"
#include "bbt/base.h"
#include "resend.h"
#include "session.h"
#include "sources.h"
#include "uplink.h"


struct bbt_agent {
        uv_loop_t *loop;
        char *config_path;
        struct bbt_agent_config cfg; /* replaced whole by bbt_agent_reload() */
        struct bbt_agent_stats stats; /* each part counts its own */

        /* Shared: opened by bbt_agent_new(), closed by bbt_agent_free(). */
        struct bbt_spool *spool;
        struct bbt_counters *counters;
        /* The broker connection: made and replaced by session.c, used by
         * every part that publishes. NULL while there is none. */
        struct bbt_mqtt *mqtt;

        struct bbt_sources sources;
        struct bbt_produce produce;
        struct bbt_uplink uplink;
        struct bbt_session session;
        struct bbt_commands commands;
        struct bbt_resend resend;
        struct bbt_poweroff power;

        /* The life cycle (agent.c). */
        uv_timer_t stop_timer, watchdog_timer;
        uv_signal_t sig_term, sig_int, sig_hup;
        bool stopping, stopped;
        uint64_t stop_started;
        int shutdown_mid;
        bool shutdown_acked;
};

static inline int64_t bbt_agent_clock_ms(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wall-clock ms, for the stamps of messages. */
static inline int64_t bbt_agent_now_real(void)
{
        return bbt_agent_clock_ms(CLOCK_REALTIME);
}

/* Monotonic ms, for durations. */
static inline int64_t bbt_agent_now_mono(void)
{
        return bbt_agent_clock_ms(CLOCK_MONOTONIC);
}

/* Closes H (a handle of any part) as part of the stop; NULL-safe on handles
 * already closing. */
void bbt_agent_close_handle(struct bbt_agent *a, uv_handle_t *h);

/* The small state files in STATE_DIR (settings, power): read NAME whole
 * into BUF (SIZE bytes, NUL-terminated; -EFBIG if it does not fit), or
 * replace it atomically with TEXT (mode 0600). Return 0 or -errno. */
int bbt_agent_state_read(const char *state_dir, const char *name, char *buf, size_t size);
int bbt_agent_state_write(const char *state_dir, const char *name, const char *text);

/* The broker's shutdown ack, seen by session.c's on_publish. */
void bbt_agent_published(struct bbt_agent *a, int mid);

#endif
