/* What the agent says of the seqs a resend asks for that its spool does not hold. */
#ifndef BBT_AGENT_MISSING_H
#define BBT_AGENT_MISSING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"

/* The reasons of a resend reply's result.missing (protocol/SPEC.md). */
enum bbt_missing_reason {
        BBT_MISSING_SKIPPED,  /* never used: jumped over at a start after an unclean stop */
        BBT_MISSING_UNSTORED, /* could not be written: disk full or a write error */
        BBT_MISSING_DAMAGED,  /* was in the spool and is gone */
        BBT_MISSING_UNKNOWN,  /* used and gone, or never used: older than the skipped ranges remembered */
};

struct bbt_missing {
        uint64_t from, to;
        enum bbt_missing_reason reason;
};

/* The protocol's word for R. */
const char *bbt_missing_reason_name(enum bbt_missing_reason r);

/* What the agent knows. All lists ascending, ranges valid and disjoint. */
struct bbt_missing_facts {
        const struct bbt_seq_range *skipped; /* ranges never used that it remembers */
        size_t n_skipped;
        bool skipped_complete;               /* false when older ranges were forgotten (the list was
                                              * full): below skipped[0] it cannot tell damaged from
                                              * skipped */
        const struct bbt_seq_range *unstored; /* seqs whose append failed */
        size_t n_unstored;
        uint64_t first_available;            /* the spool's oldest record; parts below it are left to
                                              * the reply's first_retained (0: the spool is empty) */
};

/* Splits each of the N_REQ ranges REQ (the requested seqs the spool does not
 * hold, ascending) by what FACTS say of it, into at most MAX entries of OUT:
 * a skipped range is named whole (also beyond the request: what arrived of it
 * anywhere tells the aggregator how much was used), then, while there is
 * room, every other remembered skipped range, the newest first (so the
 * aggregator settles them all in one round, also those whose births were
 * lost). Returns the number of entries. */
size_t bbt_missing_classify(const struct bbt_seq_range *req, size_t n_req, const struct bbt_missing_facts *facts,
                            struct bbt_missing *out, size_t max);

#endif
