/* The MQTT session: identity and topics, boot counter, will, birth and the first messages after a connect. */
#ifndef BBT_AGENT_SESSION_H
#define BBT_AGENT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bbt/protocol.h"

struct bbt_agent;

struct bbt_session {
        char prefix[BBT_TOPIC_MAX]; /* "bbt/v1/county/school/terminal/" */
        char cmd_topic[BBT_TOPIC_MAX];
        char hostname[65], os[129], machine_id[65]; /* for the birth */

        uint32_t boot;
        uint64_t will_seq;  /* the live session's will, stored in the spool (0: none yet) */
        int64_t will_ts;
        bool connected;
        bool used;          /* the broker accepted this session: the next connect starts a new one */
        uint64_t first_seq; /* retained records older than this go out unretained */
        unsigned connect_failures;
        uint64_t prev_will_seq; /* the will of the session that ended last, 0: none */
        uint64_t birth_seq;     /* the live session's birth (0: none yet) */
};

/* Sets the topics from the identity and reads what the birth says of this
 * machine (host name, OS, machine id). */
void bbt_session_init(struct bbt_agent *a);

/* Writes the topic of channel CH of this terminal into BUF. */
void bbt_session_topic(const struct bbt_agent *a, enum bbt_channel ch, char *buf, size_t size);

/* Creates the broker connection, subscribes to the commands, hands it the
 * session's will (a new session if the last one was used) and starts it.
 * Returns 0 or a negative errno (logged). */
int bbt_session_connect(struct bbt_agent *a);

/* Publishes the live session's birth again as it was (from the spool, its
 * own seq), unretained: the "state" command. Returns 0 with *SEQ set,
 * -ENOTCONN (no session), -ENOENT (no longer in the spool) or -errno. */
int bbt_session_republish_birth(struct bbt_agent *a, uint64_t *seq);

/* Publishes the clean-stop state of the current session on its state topic:
 * it takes the will's seq and boot, so each session ends with one offline
 * state. Returns the mid, or -1 if it could not be handed to the connection. */
int bbt_session_publish_shutdown(struct bbt_agent *a);

/* After a reload changed the broker or the identity: ends this session
 * cleanly and connects anew under the new topics. */
void bbt_session_reconnect(struct bbt_agent *a);

#endif
