/* The agent's persistent counters: the message seq (never reused, even across power loss) and the session (boot) number. */
#ifndef BBT_COUNTERS_H
#define BBT_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h" /* struct bbt_seq_range */

#define BBT_COUNTERS_DIR_DEFAULT "/var/lib/bbt-agent"
#define BBT_COUNTERS_BLOCK_DEFAULT 1000
#define BBT_COUNTERS_SEQ_MAX 9007199254740991ull /* 2^53 - 1: the protocol's largest seq */

struct bbt_counters;

struct bbt_counters_options {
        const char *dir;       /* holds DIR/state and DIR/state.lock; created (0700) if missing;
                                  NULL: BBT_COUNTERS_DIR_DEFAULT */
        const char *root;      /* the boot id is read from ROOT/proc/sys/kernel/random/boot_id;
                                  NULL: "/" (a fixture tree in tests) */
        uint32_t block;        /* seqs reserved by one write of the file; 0: BBT_COUNTERS_BLOCK_DEFAULT */
        bool recover;          /* malformed state file: start past the witnesses instead of failing */
        uint64_t recover_jump; /* the safety margin past the highest witness when the state file
                                  cannot be trusted (missing, stale, recovered); 0: 10 * block */
};

/* How many never-used seq ranges the state file remembers (the newest): one
 * a crash, until the aggregator has heard of them (a birth or a resend
 * reply names them); 256 outlast a long crash loop while offline. */
#define BBT_COUNTERS_SKIPPED_MAX 256

/* What the other durable files say about the seqs used before this start
 * (the spool, see struct bbt_spool_witness). 0 means nothing. */
struct bbt_counters_witness {
        uint64_t spool_last; /* the spool's last valid record */
        uint64_t used;       /* the highest seq another witness proves used: the newest segment's
                                name, the spool meta's ack watermark and appended mark */
        uint64_t ceiling;    /* a copy of the reservation ceiling kept elsewhere (the spool meta) */
        uint64_t boot;       /* a copy of the session counter kept elsewhere (the spool meta) */
        const struct bbt_seq_range *skipped; /* a copy of the skipped ranges kept elsewhere (the */
        size_t n_skipped;                    /* spool meta), ascending: merged with the file's */
};

/* How this run's first seq was decided (for the agent's log). */
enum bbt_counters_start {
        BBT_COUNTERS_FRESH,           /* no state file and no witness of any used seq: seq 1 */
        BBT_COUNTERS_CLEAN,           /* the previous run stopped cleanly and nothing contradicts
                                         its file: its exact next seq, no gap */
        BBT_COUNTERS_CRASH_SAME_BOOT, /* unclean stop, same kernel boot: the reservation ceiling */
        BBT_COUNTERS_CRASH_REBOOT,    /* unclean stop across a reboot (or an unknown boot id): the
                                         reservation ceiling */
        BBT_COUNTERS_STALE,           /* the state file is missing or older than another witness
                                         (the spool or its meta shows a seq at or past its
                                         ceiling): past every witness by a safety margin, a boot
                                         from the clock */
        BBT_COUNTERS_RECOVERED,       /* malformed state file and opts.recover: as STALE */
};

struct bbt_counters_start_info {
        enum bbt_counters_start start;
        uint64_t first_seq;   /* the first seq this run hands out */
        uint64_t used;        /* the highest seq the witnesses prove used (0: none) */
        bool skipped;         /* seqs SKIPPED_FROM..SKIPPED_TO (inclusive) are jumped over: none of
                                 them is in the spool; those the previous run had handed out (it
                                 cannot be known which, beyond USED) were published before the
                                 stop or never left the terminal, the rest were never used. The
                                 range is remembered in the file (bbt_counters_skipped()) */
        uint64_t skipped_from, skipped_to;
};

/* Fills OPTS with the defaults. */
void bbt_counters_options_init(struct bbt_counters_options *opts);

/* Opens the counters' state file in OPTS->dir, locks it (-EBUSY if another process has it),
 * decides this run's first seq (see enum bbt_counters_start) from the state file,
 * the witnesses W (may be NULL) and the current boot id -- never a seq any of
 * them shows used or reserved -- and persists a new reservation (marking the
 * run unclean, written twice so that losing the last write loses nothing)
 * before returning. On success *RET owns the counters (bbt_counters_close()).
 * Returns 0; -EBADMSG for a malformed state file, with ERR as "PATH:LINE: key:
 * what is wrong" (or "PATH: what is wrong") -- the agent must then refuse to
 * start, unless opts.recover is set and a witness shows a used seq; -ERANGE
 * when no seq is left below BBT_COUNTERS_SEQ_MAX; -EBUSY, -ENOMEM, or the -errno
 * of a file operation with ERR as "PATH: strerror". ERR (may be NULL) is set
 * only on failure; *RET is untouched then. */
int bbt_counters_open(const struct bbt_counters_options *opts, const struct bbt_counters_witness *w,
                      struct bbt_counters **ret, char *err, size_t err_size);

/* How the first seq was decided; valid as long as ST. */
const struct bbt_counters_start_info *bbt_counters_start_info(const struct bbt_counters *st);

/* "fresh", "clean", "crash-same-boot", "crash-reboot", "stale", "recovered". */
const char *bbt_counters_start_name(enum bbt_counters_start start);

/* Hands out the next seq in *RET. Seqs are reserved ahead in blocks: every
 * seq handed out is below the ceiling of the last *two* writes of the file,
 * so a lost last write (a power cut that undoes a rename) cannot bring a used
 * seq back; when the next seq reaches that bound, a ceiling one block higher
 * is written first; if that fails, returns its -errno and hands out nothing
 * (the next call tries again). -ERANGE past BBT_COUNTERS_SEQ_MAX. */
int bbt_counters_next_seq(struct bbt_counters *st, uint64_t *ret);

/* The seq bbt_counters_next_seq() would hand out next. */
uint64_t bbt_counters_peek_seq(const struct bbt_counters *st);

/* The never-used seq ranges the file remembers, oldest first (at most
 * BBT_COUNTERS_SKIPPED_MAX): *RET points into ST, valid until the next call on
 * ST. Returns how many. */
size_t bbt_counters_skipped(const struct bbt_counters *st, const struct bbt_seq_range **ret);

/* Increments the session counter (wrapping 4294967295 -> 0), writes it to
 * disk, and returns it in *RET_BOOT: call it at every start and before every
 * reconnect. (After an unclean stop the counter restarts one above the higher
 * of the file's and the witness's, as the last write may be lost; after a
 * stale or recovered file, at least at the clock's seconds since 1970.) Returns 0, or the -errno of the write (the counter is unchanged
 * and *RET_BOOT untouched). */
int bbt_counters_new_session(struct bbt_counters *st, uint32_t *ret_boot);

/* The current session counter (0 before the first bbt_counters_new_session() of a fresh state). */
uint32_t bbt_counters_boot(const struct bbt_counters *st);

/* The reservation ceiling on disk: every seq handed out is below it (the
 * agent keeps a copy in the spool's meta file as a second witness). */
uint64_t bbt_counters_ceiling(const struct bbt_counters *st);

/* Writes the clean-stop marker with the exact next seq, unlocks and frees ST.
 * Call it only once nothing more will be published. NULL-safe. Returns 0, or
 * the -errno of the write (ST is freed anyway; the next start then takes the
 * unclean path, which is safe). */
int bbt_counters_close(struct bbt_counters *st);

#endif
