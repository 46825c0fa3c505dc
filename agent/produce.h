/* Producing records: a message gets its seq, time and session, is encoded and appended to the spool; heartbeats; the spool_drop alert. */
#ifndef BBT_AGENT_PRODUCE_H
#define BBT_AGENT_PRODUCE_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "bbt/protocol.h"

struct bbt_agent;

/* Spool record flags: bit 0 is the MQTT retain flag (BBT_SPOOL_RETAIN); bit 1
 * marks a will, stored so that no seq is ever missing: the uplink leaves the
 * current session's will to the broker and sends earlier ones unretained. */
#define BBT_RECORD_WILL 0x02

struct bbt_produce {
        bool drop_raised; /* a spool_drop alert is raised and not yet cleared */
        uv_timer_t hb_timer;
};

/* Gives M the next seq, the time and the session's boot, encodes it and
 * appends it to the spool with FLAGS (BBT_RECORD_WILL; retain is added for
 * retained channels). Returns 0 with the JSON in *RET_JSON and its length in
 * *RET_LEN (the caller frees it; RET_JSON may be NULL: then freed here), or a
 * negative errno (logged; the message is lost and counted). Does not publish:
 * see bbt_produce(). */
int bbt_produce_record(struct bbt_agent *a, struct bbt_msg *m, unsigned flags, char **ret_json, size_t *ret_len);

/* Produces M and lets the uplink send it. Returns as bbt_produce_record(). */
int bbt_produce(struct bbt_agent *a, struct bbt_msg *m);

/* Produces an alert with CODE, SEV, STATE and DETAIL (may be NULL). */
void bbt_produce_alert(struct bbt_agent *a, const char *code, enum bbt_severity sev, enum bbt_alert_state state,
                       const char *detail);

/* Produces a heartbeat: what the sources say now and the spool's depth and drops. */
void bbt_produce_heartbeat(struct bbt_agent *a);

/* Raises the spool_drop alert when messages were lost (dropped from a full
 * spool, or not stored at all) since the alert was last cleared; the counts
 * and the clear mark live in the spool's meta file, so a restart neither
 * forgets a loss nor leaves an alert uncleared. */
void bbt_produce_drop_alert(struct bbt_agent *a);

/* Clears a raised spool_drop alert once the spool is empty: the backlog is
 * delivered. */
void bbt_produce_drops_delivered(struct bbt_agent *a);

/* The heartbeat timer: init (before anything can fail in a start), start
 * (every heartbeat_ms, again at a reload) and stop. */
void bbt_produce_init(struct bbt_agent *a);
void bbt_produce_start(struct bbt_agent *a);
void bbt_produce_stop(struct bbt_agent *a);

/* Closes the heartbeat timer, as part of the stop. */
void bbt_produce_close(struct bbt_agent *a);

#endif
