/* Resend jobs: a range of seqs republished from the spool, paced, then a reply saying what the spool does not hold and why. */
#ifndef BBT_AGENT_RESEND_H
#define BBT_AGENT_RESEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bbt_agent;

#define BBT_RESEND_JOBS_MAX 8

struct bbt_seq_range;

struct bbt_resend_job {
        char id[65];
        uint64_t from, to, next, sent;
        uint64_t withheld; /* the live session's will, if in the range (0: not) */
        uint64_t expect;   /* the seq after the last record the spool gave (FROM at first) */
        struct bbt_seq_range *missing; /* seqs of the range the spool does not hold */
        size_t n_missing;
};

struct bbt_resend {
        struct bbt_resend_job jobs[BBT_RESEND_JOBS_MAX]; /* the first runs; the rest wait */
        size_t n_jobs;
};

/* Queues the resend of FROM..TO for command ID. Returns 0, or -EBUSY when
 * BBT_RESEND_JOBS_MAX are queued already. */
int bbt_resend_queue(struct bbt_agent *a, const char *id, uint64_t from, uint64_t to);

/* Republishes at most BUDGET records of the first job (while connected), and
 * replies once the job is done. Returns the records the spool gave. */
size_t bbt_resend_run(struct bbt_agent *a, size_t budget);

/* A job is queued. */
bool bbt_resend_pending(const struct bbt_agent *a);

/* Frees the queued jobs. */
void bbt_resend_free(struct bbt_agent *a);

#endif
