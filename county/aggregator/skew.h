/* Clock skew: how far a terminal's clock is off, estimated from its live heartbeats (arithmetic only, no I/O). */
#ifndef BBT_SKEW_H
#define BBT_SKEW_H

#include <stdbool.h>
#include <stdint.h>

/* Samples kept at most (the setting skew_samples must not exceed it). */
#define BBT_SKEW_SAMPLES_MAX 16

/* The last samples of one terminal: a heartbeat's ts − its receive time,
 * that is the skew minus the delivery delay. Zero-initialised it is empty. */
struct bbt_skew {
        int64_t sample[BBT_SKEW_SAMPLES_MAX];
        int64_t at[BBT_SKEW_SAMPLES_MAX]; /* each sample's receive time; 0: the seed */
        int n, next; /* samples held; where the next one goes */
        int64_t changed_ms; /* the date bbt_skew_since() gave the last change of side; 0: none yet */
        int side;           /* that side: 1 past the limit, 0 within it (as zero-initialised), -1 not known */
};

/* Starts S from SKEW_MS, the estimate kept in the store: the oldest sample,
 * replaced when the window comes round to it. */
void bbt_skew_seed(struct bbt_skew *s, int64_t skew_ms);

/* Whether a heartbeat received at RECV_MS can serve as a sample: sent live
 * (the agent's spool empty, not the broker's retained copy) while the broker
 * connection is up and has been for WARMUP_MS (CONNECTED_MS: since when), so
 * that no queue delivered it late. */
bool bbt_skew_is_live(int64_t spool_depth, bool retained, bool connected, int64_t connected_ms, int64_t warmup_ms,
                      int64_t recv_ms);

/* Adds the sample TS − RECV_MS to S, which keeps the last WINDOW samples
 * (1..BBT_SKEW_SAMPLES_MAX; another value means 5). Once it holds
 * min(WINDOW, 3), returns true with the estimate in *RET_MS: the largest
 * sample (the delivery delay is never negative, so the least delayed sample
 * is the closest), 0 when it lies within ±MIN_MS (an NTP-synchronised clock).
 * Returns false before that (*RET_MS untouched). */
bool bbt_skew_add(struct bbt_skew *s, int window, int64_t min_ms, int64_t ts, int64_t recv_ms, int64_t *ret_ms);

/* When the estimate came to the side of LIMIT_MS it is on now (PAST: its
 * magnitude is over the limit): the receive time of the earliest sample held
 * that is on that side itself, the first heartbeat that showed it; RECV_MS
 * when no sample is (only the seed). Never earlier than the previous change
 * of side, which S remembers. This dates the clock_skew fault at the time the
 * skew was in effect rather than when the window of samples confirmed it
 * (docs/metrics.md, "Clock skew"). */
int64_t bbt_skew_since(struct bbt_skew *s, int64_t limit_ms, bool past, int64_t recv_ms);

/* TS, a time on a terminal's clock, on the true clock: SKEW_MS taken off when
 * KNOWN. */
static inline int64_t bbt_skew_correct(bool known, int64_t skew_ms, int64_t ts)
{
        return known ? ts - skew_ms : ts;
}

#endif
