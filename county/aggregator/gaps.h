/* Sequence gaps: one terminal's seq series and the ranges missing from it, as arithmetic on a sorted list (no I/O). */
#ifndef BBT_GAPS_H
#define BBT_GAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The ranges of seqs missing from one terminal's series FIRST..HIGH (the
 * first and the highest seq received; both -1 before the first message):
 * sorted by from, never overlapping. Two gaps may touch (a range cut at
 * resend_max_range): each keeps its own request state, so gaps are never
 * merged. Zero-initialised it is empty; bbt_gaps_free() releases it. */
struct bbt_gaps {
        struct bbt_store_gap *v;
        size_t n, cap;
};

/* What bbt_gaps_track() did to the series. */
struct bbt_gaps_change {
        int64_t opened; /* seqs in the gap it opened (0: none) */
        bool filled;    /* the seq was missing (in a gap) and is not any more */
};

/* Frees G's ranges and empties it (NULL-safe). */
void bbt_gaps_free(struct bbt_gaps *g);

/* Inserts GAP as G->v[I] (I <= G->n), the ones from I on moving up. The
 * caller keeps the order. Returns 0 or -ENOMEM. Pointers into G->v are stale
 * after it. */
int bbt_gaps_insert(struct bbt_gaps *g, size_t i, const struct bbt_store_gap *gap);

/* Removes G->v[I]. */
void bbt_gaps_remove(struct bbt_gaps *g, size_t i);

/* The index of the gap holding SEQ, or G->n if SEQ is in none. */
size_t bbt_gaps_find(const struct bbt_gaps *g, int64_t seq);

/* The number of seqs missing in G, of every state. */
int64_t bbt_gaps_count(const struct bbt_gaps *g);

/* Records the arrival of SEQ at NOW_MS in the series *FIRST_SEQ..*HIGH_SEQ
 * with gaps G. Above the series it raises *HIGH_SEQ, opening a gap for what
 * lies between; below it (a backlog sent after the terminal's birth) it
 * lowers *FIRST_SEQ, likewise; inside, it takes SEQ out of the gap holding it
 * (the gap goes, shrinks, or splits in two). New gaps are BBT_GAP_WAITING,
 * detected and changed at NOW_MS. *RET says what changed, also on -ENOMEM.
 * Returns 1 if SEQ is new, 0 if it is inside the series and in no gap
 * (received already, or settled as lost), -ENOMEM. */
int bbt_gaps_track(struct bbt_gaps *g, int64_t *first_seq, int64_t *high_seq, int64_t seq, int64_t now_ms,
                   struct bbt_gaps_change *ret);

/* The agent names SEQ (its will, the start of a range it skipped) below the
 * series *FIRST_SEQ..HIGH_SEQ: the series reaches back to it, and SEQ up to
 * the old first seq becomes a gap like any other (SEQ itself not received).
 * Returns the seqs opened, 0 when SEQ is not below the series or the series
 * is empty (nothing changes), -ENOMEM (nothing changes). */
int64_t bbt_gaps_extend(struct bbt_gaps *g, int64_t *first_seq, int64_t high_seq, int64_t seq, int64_t now_ms);

/* Takes FROM..TO, which lie inside gap I, out of it: the gap goes, shrinks
 * at one end, or splits in two around it (both halves keep its state).
 * Returns how many gaps now stand where gap I stood (0, 1 or 2), or -ENOMEM
 * when the split could not be made (gap I then ends below FROM: the part
 * above TO is no longer held). */
int bbt_gaps_cut(struct bbt_gaps *g, size_t i, int64_t from, int64_t to);

/* Takes what is missing of FROM..TO out of G, gap by gap in order, leaving
 * will gaps (BBT_GAP_WILL) alone. Before each piece A..B is cut, calls
 * PIECE_CB(U, A, B) (which must not change G). Returns 0 or -ENOMEM (a split
 * failed; the pieces reported so far are out). */
int bbt_gaps_take(struct bbt_gaps *g, int64_t from, int64_t to, void (*piece_cb)(void *u, int64_t from, int64_t to),
                  void *u);

/* When gap I holds more than MAX seqs, cuts it after the first MAX: the rest
 * becomes gap I+1 with the same state. Returns 0 or -ENOMEM (gap I is cut
 * all the same; the rest is no longer held). */
int bbt_gaps_split(struct bbt_gaps *g, size_t i, int64_t max);

/* Seq W is the will of the live session BOOT, which the agent holds back:
 * if W is missing, it becomes a one-seq gap of its own in state
 * BBT_GAP_WILL (changed at NOW_MS, no command), split out of the gap holding
 * it. Returns true if G changed. */
bool bbt_gaps_mark_will(struct bbt_gaps *g, int64_t w, int64_t boot, int64_t now_ms);

#endif
