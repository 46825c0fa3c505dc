/* The terminal cache: every terminal's row and gaps in memory, changed rows written back once a batch. */
#ifndef BBT_CACHE_H
#define BBT_CACHE_H

#include <bbt/protocol.h>

#include "ingest_internal.h"

/* Replaces IN's terminals with those the store holds, with their open gaps,
 * and reads the resend command counter. Returns 0 or a negative errno (IN
 * then holds what was read so far). */
int bbt__cache_load(struct bbt_ingest *in);

/* Frees every terminal of IN (the open batch is forgotten, not written). */
void bbt__cache_free(struct bbt_ingest *in);

/* Links every terminal to IN's registry entry and bells again (after a reload). */
void bbt__cache_relink(struct bbt_ingest *in);

/* The terminal of topic TP; a terminal not seen before is added to the store
 * (in the open batch) and the cache, first seen at RECV_MS. Returns NULL when
 * it cannot be added (logged). */
struct bbt_term *bbt__cache_get(struct bbt_ingest *in, const struct bbt_topic *tp, int64_t recv_ms);

/* Shared (several writers): locks T's row for the open transaction (opening
 * one) and reads it and its gaps afresh, unless this transaction holds it
 * already. When another writer holds it: without WAIT returns 0; with WAIT
 * commits the batch so far, then waits. Returns 1 (T is claimed; always,
 * alone on the store), 0 or a negative errno. */
int bbt__cache_claim(struct bbt_ingest *in, struct bbt_term *t, bool wait);

/* Shared: claims the terminal with store id ID without waiting, adding it to
 * memory if it is new here. NULL when held elsewhere, gone, or on an error.
 * Call with no terminal claimed (right after a commit). */
struct bbt_term *bbt__cache_claim_id(struct bbt_ingest *in, int64_t id);

/* T's row (and gaps, with gaps_dirty) goes to the store with the batch. */
void bbt__cache_mark_dirty(struct bbt_ingest *in, struct bbt_term *t);

/* Opens the batch's transaction if none is open. Returns 0 or a negative errno. */
int bbt__cache_begin(struct bbt_ingest *in);

/* Writes the dirty terminals and the counters and commits the batch. On
 * failure rolls back and (alone on the store) reloads the cache from it, so
 * that what the batch held shows up as gaps again. Returns 0 or a negative
 * errno. */
int bbt__cache_commit(struct bbt_ingest *in);

/* Rolls the open transaction back and forgets the batch (the cache keeps
 * what it changed in memory; bbt__cache_commit() reloads after a failure). */
void bbt__cache_rollback(struct bbt_ingest *in);

#endif
