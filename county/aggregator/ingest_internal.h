/* The ingest's state, shared by its parts (ingest.c, cache.c, resend.c); not an interface for anything else. */
#ifndef BBT_INGEST_INTERNAL_H
#define BBT_INGEST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "gaps.h"
#include "ingest.h"
#include "rollup.h"
#include "skew.h"
#include "store.h"

/* What the terminal's row keeps of its newest heartbeat. */
struct bbt_hb_summary {
        int64_t ts, uptime, mem_available, disk_free, spool_depth, lamp_hours;
        double cpu, temp;
        enum bbt_usage_state state;
        bool has_temp, has_projector, projector_reachable, clock_synced;
};

/* At most a number of log lines a minute for one kind of event; the rest
 * are counted and summed up when the minute is over. */
struct bbt_log_limit {
        int64_t window_ms;
        int count, suppressed;
        const char *what; /* "rejected messages", ... */
};

/* Whether one more line may be logged at NOW_MS (at most PER_MIN a minute). */
bool bbt__log_limit_ok(struct bbt_log_limit *l, int64_t now_ms, int per_min);

/* The store's counters a batch adds to: the rejects first (enum bbt_reject),
 * then these. */
enum bbt_counter {
        BBT_COUNTER_DUPLICATES = BBT_REJECT__COUNT,
        BBT_COUNTER_STORED,
        BBT_COUNTER_LOST,
        BBT_COUNTER_RECOVERED,
        BBT_COUNTER_STALE_STATE,
        BBT_COUNTER_SKIPPED,
        BBT_COUNTER_SEQ_CONFLICT,
        BBT_COUNTER__COUNT
};

/* One terminal in memory: its store row, its gaps, what waits for the next commit. */
struct bbt_term {
        struct bbt_store_terminal row;
        struct bbt_hb_summary hb;
        bool hb_dirty;                  /* hb not yet formatted into row.last_hb */
        struct bbt_gaps gaps;           /* row.first_seq..row.high_seq's missing ranges */
        struct bbt_day_set pending;     /* rollup deltas not yet written */
        struct bbt_skew skew;
        const struct bbt_terminal_entry *entry; /* registry, or NULL */
        const struct bbt_bells *bells;
        bool dirty, gaps_dirty;
        struct bbt_term *next_dirty;
        /* Shared: the row is locked by the open transaction and memory holds
         * what the store holds (cache.c, bbt__cache_claim()). */
        bool claimed;
        struct bbt_term *next_claimed;
        /* The outstanding resend: when it was sent, and when a message the
         * terminal made after that first arrived (0: none yet). Its answer is
         * waited for from then on: until then it may sit behind a backlog. */
        int64_t request_ms, heard_after_request_ms;
        /* The power schedule (power_schedule.c): the rev last sent (0: none), and
         * whether one is due (BBT_POWER_DUE_*). */
        int64_t power_rev;
        uint8_t power_due;
        bool asked; /* asked for its birth or inventory (ask.c): once a run */
};
enum { BBT_POWER_DUE_CHANGED = 1, BBT_POWER_DUE_FORCE = 2 };

struct bbt_ingest {
        struct bbt_store *store;
        struct bbt_ingest_settings set;
        const struct bbt_registry *reg;
        const struct bbt_calendar *cal;
        bbt_ingest_publish_fn publish;
        void *userdata;

        /* The terminal cache (cache.c). */
        struct bbt_term **terms; /* all terminals, in store id order */
        size_t n_terms, cap_terms;
        struct bbt_term **table; /* open addressing by county/school/terminal */
        size_t table_size;       /* power of two */

        /* The open batch (cache.c): written and committed together. */
        bool in_tx;
        int64_t batch_n;
        struct bbt_term *dirty;
        struct bbt_term *claimed; /* shared: the terminals locked by the open transaction */
        int64_t counter_delta[BBT_COUNTER__COUNT];

        /* Resend commands (resend.c): ids are rs-<tag><boot>-<cmd_seq>, the
         * tag "" alone, "<8 hex digits of the instance's name>-" in a share
         * group; boot and cmd_seq are kept under meta keys of their own there. */
        int64_t cmd_seq, boot;
        char tag[16];
        char boot_key[80], cmd_seq_key[80];
        int64_t shared_tick_ms; /* shared: when the store's gaps were last looked at */
        bool connected;
        int64_t connected_ms;

        /* Power schedules (power_schedule.c): the local day they were computed for,
         * the send rate's token bucket, the terminals due and where the
         * round-robin scan stands. */
        int32_t power_day;
        double power_tokens;
        int64_t power_tokens_ms;
        size_t power_due_n, power_cursor;

        /* Asking terminals for their birth and inventory (ask.c): the rate's token bucket. */
        double ask_tokens;
        int64_t ask_tokens_ms;

        struct bbt_log_limit reject_log, conflict_log, commit_log, power_log, ask_log;
        struct bbt_ingest_stats stats;
};

/* A new command id PREFIX-<boot>-<cmd_seq + 1> into BUF (ours: rs- resend, ps- power schedule). */
void bbt__cmd_id(const struct bbt_ingest *in, const char *prefix, char *buf, size_t size);
/* Publishes the command M (id, op and arguments filled) to T's cmd topic,
 * numbered in the aggregator's own command series (seq, ts and boot are set
 * here). Returns 0, -ENOTCONN (the broker is away: send it later) or another
 * negative errno. */
int bbt__cmd_send(struct bbt_ingest *in, const struct bbt_term *t, struct bbt_msg *m, int64_t now_ms);

/* CLOCK_MONOTONIC in ms: for what must not follow the wall clock (log limits). */
static inline int64_t bbt__mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The terminal's timestamp TS on the true clock. */
static inline int64_t bbt__term_corrected(const struct bbt_term *t, int64_t ts)
{
        return bbt_skew_correct(t->row.skew_known, t->row.skew_ms, ts);
}

#endif
