/* Ingest: validate, deduplicate on (terminal, seq), track gaps and ask for resends, sessions, clock skew, rollups. */
#ifndef BBT_INGEST_H
#define BBT_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "indicators.h"
#include "registry.h"
#include "store.h"

/* Why a message was not stored. Counted per reason, in memory and in the store. */
enum bbt_reject {
        BBT_REJECT_TOPIC,       /* not bbt/v1/{county}/{school}/{terminal}/{channel} */
        BBT_REJECT_SIZE,        /* payload over 16384 bytes */
        BBT_REJECT_JSON,        /* not JSON, not UTF-8, not an object */
        BBT_REJECT_VERSION,     /* "v" other than 1 */
        BBT_REJECT_FIELD,       /* a field breaks a rule */
        BBT_REJECT_STORE,       /* the store refused it (disk full, I/O error) */
        BBT_REJECT__COUNT
};
/* "reject_topic", ...: the counter's name. */
const char *bbt_reject_name(enum bbt_reject r);

struct bbt_ingest_settings {
        int64_t batch_size;         /* commit after this many messages (1000) */
        int64_t gap_grace_ms;       /* a missing seq is asked for after this long (30 s) */
        int64_t resend_timeout_ms;  /* a resend unanswered this long is asked again (60 s) */
        int64_t resend_settle_ms;   /* after the agent's reply, wait this long for the messages (30 s) */
        int resend_attempts;        /* asked this many times in vain: lost (5) */
        int64_t resend_max_range;   /* seqs asked for in one command at most (5000) */
        int64_t gap_give_up_ms;     /* a gap still open after this long is lost (8 d: the agent keeps 7 d) */
        int skew_samples;           /* live heartbeats kept for the skew estimate (5) */
        int64_t skew_min_ms;        /* |skew| below this is taken as 0: an NTP-synchronised clock (2 s) */
        int64_t skew_warmup_ms;     /* heartbeats received this soon after connecting are not samples (30 s) */
        int power_days;             /* power schedule: days sent ahead (14; 0: none sent) */
        int power_send_rate;        /* power schedules sent a second at most (100) */
        int64_t power_expires_ms;   /* a schedule not delivered within this is not carried out (1 d) */
        int ask_rate;               /* terminals asked for their birth/inventory a second at most (100; 0: never) */
        struct bbt_metric_settings metrics;
        /* Several aggregators write the store (a share group: docs/aggregator.md,
         * "Several aggregators"): a terminal's row is locked and read afresh
         * before a batch uses it. INSTANCE names this one (its client id): its
         * start count and command ids are its own. Both off by default. */
        bool shared;
        const char *instance;
};
/* The defaults (in brackets above), from bbt-aggregator's option table, the
 * one place they are defined (aggregator_config.c). */
void bbt_ingest_settings_default(struct bbt_ingest_settings *s);

/* The upper bounds (seconds) of the batch commit latency histogram's buckets. */
#define BBT_COMMIT_BUCKETS 14
extern const double bbt_commit_bucket_s[BBT_COMMIT_BUCKETS];

struct bbt_ingest_stats {
        uint64_t received;          /* messages handed to bbt_ingest_message() */
        uint64_t stored;            /* new messages stored */
        uint64_t duplicates;        /* dropped as already stored */
        uint64_t ignored;           /* commands (cmd channel) seen on the bus: not telemetry */
        uint64_t rejected[BBT_REJECT__COUNT];
        uint64_t stale_state;       /* offline states of an older session, ignored */
        uint64_t gaps_opened;       /* seq ranges found missing */
        uint64_t resends;           /* resend commands sent */
        uint64_t recovered;         /* missing seqs that arrived later */
        uint64_t lost;              /* seqs recorded as lost (records that existed) */
        uint64_t skipped;           /* seqs recorded as skipped (the agent never used them) */
        uint64_t conflicts;         /* messages with a different payload under a stored seq */
        uint64_t power_sent;        /* power_schedule commands sent */
        uint64_t power_answered;    /* ... answered ok */
        uint64_t power_refused;     /* ... refused by the agent (ok: false) */
        uint64_t power_failed;      /* ... that could not be built or published */
        uint64_t asks;              /* terminals asked for their birth or inventory (ask.c) */
        uint64_t asks_refused;      /* ... that refused (an older agent: "unsupported op state") */
        uint64_t events;            /* one-off agent events (alert.event: power_off, power_postponed...), kept in raw */
        uint64_t commits, commit_failures;
        /* Successful commits (writing the batch's rows, counters and the
         * COMMIT) that took at most bbt_commit_bucket_s[i] (cumulative, as a
         * Prometheus histogram), and the seconds all of them took. */
        uint64_t commit_le[BBT_COMMIT_BUCKETS];
        double commit_seconds;
        uint64_t terminals;         /* terminals known */
        uint64_t open_gap_seqs;     /* seqs currently missing and not yet given up */
        uint64_t claims;            /* shared: terminal rows locked and read afresh */
        uint64_t claim_waits;       /* ... found held by another aggregator: the batch committed, then waited */
};

/* Sends one command: TOPIC and a JSON payload. Returns 0 or a negative errno
 * (-ENOTCONN when the broker is away: the command is asked again later). */
typedef int (*bbt_ingest_publish_fn)(void *userdata, const char *topic, const char *payload, size_t len);

struct bbt_ingest;

/* Creates the ingest state over STORE (borrowed; must outlive it), loading
 * every terminal and open gap the store holds. REG and CAL (borrowed, may be
 * NULL: then no registry and the default calendar) link terminals to schools
 * and bell schedules. Rebuilds the usage rollups if the bell schedules or
 * rollup settings changed since they were computed. Returns 0 and *RET, or a
 * negative errno with ERR saying why. */
int bbt_ingest_new(struct bbt_store *store, const struct bbt_ingest_settings *settings,
                   const struct bbt_registry *reg, const struct bbt_calendar *cal, bbt_ingest_publish_fn publish,
                   void *userdata, int64_t now_ms, struct bbt_ingest **ret, char *err, size_t err_size);
/* Commits what is pending and frees IN (NULL-safe). Returns nothing: a failed
 * last commit is logged (the agents resend what it held). */
void bbt_ingest_free(struct bbt_ingest *in);

/* Replaces the registry and calendar (after a reload); rebuilds rollups if the
 * bells changed. Returns 0 or a negative errno. */
int bbt_ingest_set_registry(struct bbt_ingest *in, const struct bbt_registry *reg, const struct bbt_calendar *cal,
                            int64_t now_ms);

/* Handles one message as received from the broker at RECV_MS. Never fails: a
 * bad message is counted, logged (rate-limited) with its topic and the field,
 * and dropped. Commits when a batch is full. */
void bbt_ingest_message(struct bbt_ingest *in, const char *topic, const void *payload, size_t len, bool retained,
                        int64_t recv_ms);

/* Commits the open batch, if any. Returns 0 or a negative errno (the batch was
 * rolled back and the in-memory state reloaded from the store). */
int bbt_ingest_flush(struct bbt_ingest *in);

/* Periodic work (call about once a second): asks for missing ranges whose
 * grace period passed, repeats unanswered requests, records as lost what will
 * not come back. */
void bbt_ingest_tick(struct bbt_ingest *in, int64_t now_ms);

/* The broker connection came up (CONNECTED) or went away: commands wait while
 * it is away, and heartbeats delivered from the broker's queue right after a
 * connect are not used for clock skew. */
void bbt_ingest_set_connected(struct bbt_ingest *in, bool connected, int64_t now_ms);

/* Deletes raw records and usage intervals past their retention (ms; 0 keeps). */
int bbt_ingest_prune(struct bbt_ingest *in, int64_t raw_retention_ms, int64_t usage_retention_ms, int64_t now_ms);

void bbt_ingest_get_stats(const struct bbt_ingest *in, struct bbt_ingest_stats *ret);

/* One county's terminals in the census. */
struct bbt_ingest_county {
        char county[7];
        uint64_t terminals; /* known: each has published at least once */
        uint64_t online;    /* online: its last session's birth arrived, and no will or clean stop since
                             * (the store's terminal.online, bbt-report terminals' 在线 column) */
};

/* What the terminal cache holds now, summed (never per terminal): for
 * monitoring. Taken from the terminals' rows and gap lists themselves, which
 * the store holds once the batch commits. */
struct bbt_ingest_census {
        struct bbt_ingest_county *counties; /* ordered by code */
        size_t n_counties;
        uint64_t gaps[BBT_GAP_WILL + 1];     /* missing ranges, by enum bbt_gap_state */
        uint64_t gap_seqs[BBT_GAP_WILL + 1]; /* seqs in them */
        uint64_t lost, skipped;              /* seqs recorded as lost / skipped and not arrived since */
};

/* Counts IN's terminals into *RET (free with bbt_ingest_census_free()).
 * Returns 0 or -ENOMEM. */
int bbt_ingest_census(const struct bbt_ingest *in, struct bbt_ingest_census *ret);
void bbt_ingest_census_free(struct bbt_ingest_census *c);

/* Commits the open batch, then recomputes every usage rollup from the stored
 * usage intervals (bbt_rollup_rebuild(), county/store/rollup.c) in a
 * transaction of its own. Returns 0 or a negative errno (rolled back). */
int bbt_ingest_rebuild_rollups(struct bbt_ingest *in);

#endif
