/* The agent's persistent counters: the message seq (never reused, even across power loss) and the session (boot) number. */
#ifndef BBT_STATE_H
#define BBT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BBT_STATE_DIR_DEFAULT "/var/lib/bbt-agent"
#define BBT_STATE_BLOCK_DEFAULT 1000
#define BBT_STATE_SEQ_MAX 9007199254740991ull /* 2^53 - 1: the protocol's largest seq */

struct bbt_state;

struct bbt_state_options {
        const char *dir;       /* holds DIR/state and DIR/state.lock; created (0700) if missing;
                                  NULL: BBT_STATE_DIR_DEFAULT */
        const char *root;      /* the boot id is read from ROOT/proc/sys/kernel/random/boot_id;
                                  NULL: "/" (a fixture tree in tests) */
        uint32_t block;        /* seqs reserved by one write of the file; 0: BBT_STATE_BLOCK_DEFAULT */
        bool recover;          /* malformed state file: start past the spool instead of failing */
        uint64_t recover_jump; /* with RECOVER, seqs skipped past the spool's last; 0: 10 * block */
};

/* How this run's first seq was decided (for the agent's log). */
enum bbt_state_start {
        BBT_STATE_FRESH,           /* no state file: the first start (after the spool's last seq, if any) */
        BBT_STATE_CLEAN,           /* the previous run stopped cleanly: its exact next seq */
        BBT_STATE_CRASH_SAME_BOOT, /* unclean stop, same kernel boot (the page cache, hence the
                                      spool's tail, survived): the spool's last seq + 1 */
        BBT_STATE_CRASH_REBOOT,    /* unclean stop across a reboot (power loss: the spool's tail may
                                      be gone although it was published): the reservation ceiling */
        BBT_STATE_RECOVERED,       /* malformed state file and opts.recover: the spool's last seq
                                      + 1 + recover_jump, and a boot from the clock */
};

struct bbt_state_start_info {
        enum bbt_state_start start;
        uint64_t first_seq;   /* the first seq this run hands out */
        bool skipped;         /* seqs SKIPPED_FROM..SKIPPED_TO (inclusive) are jumped over: some may
                                 have been published before the crash, the others never will be,
                                 and the aggregator counts those as lost (CRASH_REBOOT, RECOVERED) */
        uint64_t skipped_from, skipped_to;
};

/* Fills OPTS with the defaults. */
void bbt_state_options_init(struct bbt_state_options *opts);

/* Opens the state in OPTS->dir, locks it (-EBUSY if another process has it),
 * decides this run's first seq (see enum bbt_state_start) from the state file,
 * the current boot id and SPOOL_LAST_SEQ (the spool's last seq, 0 if empty),
 * and persists a new reservation (marking the run unclean) before returning.
 * On success *RET owns the state (bbt_state_close()). Returns 0; -EBADMSG
 * for a malformed state file, with ERR as "PATH:LINE: key: what is wrong"
 * (or "PATH: what is wrong") -- the agent must then refuse to start, unless
 * opts.recover is set and the spool is not empty; -EBUSY, -ENOMEM, or the
 * -errno of a file operation with ERR as "PATH: strerror". ERR (may be NULL)
 * is set only on failure; *RET is untouched then. */
int bbt_state_open(const struct bbt_state_options *opts, uint64_t spool_last_seq,
                   struct bbt_state **ret, char *err, size_t err_size);

/* How the first seq was decided; valid as long as ST. */
const struct bbt_state_start_info *bbt_state_start_info(const struct bbt_state *st);

/* "fresh", "clean", "crash-same-boot", "crash-reboot", "recovered". */
const char *bbt_state_start_name(enum bbt_state_start start);

/* Hands out the next seq in *RET. When it reaches the reserved ceiling, a new
 * ceiling (one block higher) is written to disk first; if that fails, returns
 * its -errno and hands out nothing (the next call tries again). -ERANGE past
 * BBT_STATE_SEQ_MAX. Use it for every message that goes through the spool. */
int bbt_state_next_seq(struct bbt_state *st, uint64_t *ret);

/* As bbt_state_next_seq(), but also records on disk that the seq is used
 * before returning it (one atomic write): for a seq that leaves the agent
 * without being spooled -- the MQTT will, set before each CONNECT -- so a crash
 * before the next spooled message cannot hand it out again. */
int bbt_state_next_seq_durable(struct bbt_state *st, uint64_t *ret);

/* The seq bbt_state_next_seq() would hand out next. */
uint64_t bbt_state_peek_seq(const struct bbt_state *st);

/* Increments the session counter (wrapping 4294967295 -> 0), writes it to
 * disk, and returns it in *RET_BOOT: call it at every start and before every
 * reconnect. Returns 0, or the -errno of the write (the counter is unchanged
 * and *RET_BOOT untouched). */
int bbt_state_new_session(struct bbt_state *st, uint32_t *ret_boot);

/* The current session counter (0 before the first bbt_state_new_session() of a fresh state). */
uint32_t bbt_state_boot(const struct bbt_state *st);

/* The reservation ceiling on disk: every seq handed out is below it. */
uint64_t bbt_state_ceiling(const struct bbt_state *st);

/* Writes the clean-stop marker with the exact next seq, unlocks and frees ST.
 * Call it only once nothing more will be published. NULL-safe. Returns 0, or
 * the -errno of the write (ST is freed anyway; the next start then takes the
 * unclean path, which is safe). */
int bbt_state_close(struct bbt_state *st);

#endif
