/* The uplink: spooled records to the broker in seq order within a window; acks move the spool's watermark; fsync off the loop. */
#ifndef BBT_AGENT_UPLINK_H
#define BBT_AGENT_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct bbt_agent;

/* A record handed to the connection, waiting for its acknowledgement. */
struct bbt_inflight {
        uint64_t seq;
        int mid;
        bool acked;
};

/* How many records may be published ahead of the backlog (birth, inventory). */
#define BBT_UPLINK_AHEAD_MAX 2

struct bbt_uplink {
        /* The window, in spool order: a ring of inflight + 2 entries. */
        struct bbt_inflight *window;
        size_t window_cap, window_head, window_len;
        /* Records published ahead of the backlog since the connect. */
        struct bbt_inflight ahead[BBT_UPLINK_AHEAD_MAX];
        size_t n_ahead;
        double tokens, resend_tokens; /* pacing: drain_rate and resend_rate */
        uint64_t acked_through;
        uv_timer_t tick_timer; /* paces the backlog and resends; stopped when idle */

        /* fsync off the loop thread */
        uv_work_t sync_work;
        bool sync_running;
        int sync_result;
        uint64_t appended_seq, synced_seq, sync_synced;
        uv_timer_t fsync_timer; /* fsync = interval: due fsync_interval after an append */

        uv_timer_t meta_timer; /* saves acks and counters to the spool's meta: due after a change */
        uint64_t expired_at;   /* uv_now() of the last look for expired segments */
        uint64_t meta_dirty_since; /* uv_now() when meta first changed after the last save; 0: saved */
};

/* Allocates the window for INFLIGHT records. Returns 0 or -ENOMEM. */
int bbt_uplink_new(struct bbt_agent *a, size_t inflight);

/* Inits the timers (before anything can fail in a start). They run only
 * when they have work: see bbt_uplink_appended(). */
void bbt_uplink_init(struct bbt_agent *a);

/* Publishes what the window and the pacing allow, in spool order. */
void bbt_uplink_pump(struct bbt_agent *a);

/* Makes the pacing timer run (a backlog, a resend job). */
void bbt_uplink_kick(struct bbt_agent *a);

/* SEQ was appended to the spool: it is synced by the fsync policy (at once,
 * or fsync_interval after the first record appended since the last sync),
 * and the meta file saved within a second. */
void bbt_uplink_appended(struct bbt_agent *a, uint64_t seq);

/* Something the spool's meta file keeps changed without an append (a message
 * that could not be stored): it is saved within a second. */
void bbt_uplink_meta_changed(struct bbt_agent *a);

/* Publishes the record SEQ (TOPIC, JSON of LEN bytes, RETAIN) now, ahead of
 * the backlog; the window accounts for it when the spool reaches it. With
 * fsync = each it is synced first. A record that cannot be published now
 * stays in the spool and goes out in order. */
void bbt_uplink_publish_ahead(struct bbt_agent *a, uint64_t seq, const char *topic, const char *json, size_t len,
                              bool retain);

/* A new connection: everything not acknowledged is sent again, from the
 * oldest. */
void bbt_uplink_connected(struct bbt_agent *a);

/* The connection ended: nothing is in flight any more. */
void bbt_uplink_disconnected(struct bbt_agent *a);

/* The broker acknowledged MID. */
void bbt_uplink_acked(struct bbt_agent *a, int mid);

/* Nothing waits for an acknowledgement. */
bool bbt_uplink_idle(const struct bbt_agent *a);

/* Closes the timers, as part of the stop (a running fsync finishes). */
void bbt_uplink_close(struct bbt_agent *a);

/* Frees the window. */
void bbt_uplink_free(struct bbt_agent *a);

#endif
