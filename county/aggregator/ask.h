/* Asking a terminal for its birth and inventory when the aggregator knows neither: no retained delivery needed. */
#ifndef BBT_ASK_H
#define BBT_ASK_H

#include <stdbool.h>
#include <stdint.h>

#include "bbt/protocol.h"
#include "ingest_internal.h"

/* A new message on channel CH of T's was stored at NOW_MS: if T's session
 * is unknown (no birth or offline state ever seen) and the message is
 * neither a state nor an inventory, asks the terminal for its birth (cmd op
 * "state") and, if unknown too, its inventory (op "inventory"): once a run,
 * at most [ingest] ask_rate terminals a second (one over the rate, or while
 * the broker is away, is asked at its next message). */
void bbt__ask_heard(struct bbt_ingest *in, struct bbt_term *t, enum bbt_channel ch, int64_t now_ms);

/* A cmd/reply M of T's: true if it answers one of our asks (counted). */
bool bbt__ask_reply(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m);

#endif
