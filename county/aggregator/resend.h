/* Resend requests: asking terminals for missing seqs, timing the requests, and settling what the replies say. */
#ifndef BBT_RESEND_H
#define BBT_RESEND_H

#include <stdbool.h>
#include <stdint.h>

#include <bbt/protocol.h>

#include "ingest_internal.h"

/* T's periodic work at NOW_MS: asks for the next missing range whose grace
 * passed (one request at a time, only when the terminal can answer), asks
 * again when a request went unanswered or its resent messages never came,
 * and records as lost what will not come back. */
void bbt__resend_tick(struct bbt_ingest *in, struct bbt_term *t, int64_t now_ms);

/* A cmd_reply M from T received at NOW_MS: if it answers one of our resend
 * commands ("rs-..."), settles what the agent says it no longer holds or
 * never used (result.first_retained, last_seq, missing) and its withheld
 * will, then asks for T's next range at once. */
void bbt__resend_reply(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m, int64_t now_ms);

/* The agent says it never used FROM..TO (skipped at a start after an
 * unclean stop): what of it is missing is settled at once, as skipped above
 * the highest seq of it that arrived and as lost below (seqs are handed out
 * in order); losses the aggregator only inferred there become skipped. With
 * EXTEND (the range in a birth), a range below T's series extends it. */
void bbt__resend_skipped(struct bbt_ingest *in, struct bbt_term *t, int64_t from, int64_t to, bool extend,
                         int64_t now_ms);

/* The birth of session BOOT says its will has seq W: it comes when the
 * session ends, so it is expected, not asked for. A W below the series
 * extends it (the will is the session's first seq). */
void bbt__resend_expect_will(struct bbt_ingest *in, struct bbt_term *t, int64_t w, uint32_t boot, int64_t now_ms);

/* Seq SEQ of T, recorded in loss row L, arrived after all (at NOW_MS): it
 * leaves the row and the counts; arriving inside a skipped range, it shows
 * that the seqs below it in the range were used, and they turn lost. */
void bbt__resend_arrived(struct bbt_ingest *in, struct bbt_term *t, int64_t seq, const struct bbt_store_loss *l,
                         int64_t now_ms);

#endif
