/* The aggregator's store: one interface over a backend (SQLite or PostgreSQL, the same ops). */
#ifndef BBT_STORE_H
#define BBT_STORE_H

/* The contract every backend keeps; tests/test-store_contract.c holds each
 * backend to it through these calls alone (docs/aggregator.md, "The store").
 *
 * Calls. Users call the bbt_store_*() functions, never the ops table. Each
 *   returns 0 (or what its op says) or a negative errno: -ENOENT not there,
 *   -EEXIST a second terminal with the same county, school and code, -EBUSY
 *   another writer holds the store, -EROFS written through a read-only
 *   store, -ENOSPC, -ENOMEM, -EPROTO not a bbt store or a newer schema, -EIO
 *   anything else; bbt_store_error() says what failed. Iterators call back
 *   once per row in the order each one gives, stop at the first non-zero
 *   result of the callback and return it.
 * Identity. terminal_insert gives each (county, school, terminal) a key > 0;
 *   every terminal_id passed in is such a key. A school code is unique only
 *   within its county.
 * Transactions. Writes between begin and commit are seen by other
 *   connections all at once, at commit, and are gone after rollback (or a
 *   close or crash before commit). Writes outside a transaction commit one by
 *   one. Readers (bbt-report, any number, read-only) see committed data only.
 * Exactly once. raw_insert keeps the first payload of a (terminal, seq) and
 *   returns 1; every later one returns 0 and the stored payload's hash, so the
 *   caller tells a duplicate (same hash) from a conflict (conflict_add).
 * Scope. The _in iterators return only the rows in a scope (struct
 *   bbt_store_scope): the terminals of a county and school, days and times;
 *   the backend filters in its query, the caller gets no row to drop.
 * Aggregates. day_add and days_clear keep the day aggregates (school_days,
 *   day_marks) in step with the rollups, in the same transaction; they are
 *   counted under the recorded day rule (day_rule_set recounts them all when
 *   it changes). A row whose counts are all zero may be absent.
 * Writers. One bbt-aggregator writes a store, or several (a share group)
 *   on a backend whose terminal_lock really locks (PostgreSQL): each locks a
 *   terminal's row (terminal_lock) before it reads or writes anything of
 *   that terminal (its row, gaps, raw messages, rollups), and writes the row
 *   and the gap list back whole (terminal_update, gaps_replace) in the same
 *   transaction. What several terminals share (counters, school-day
 *   aggregates) is added, never overwritten (counter_add, day_add): docs/
 *   aggregator.md, "Several aggregators". */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bbt/protocol.h>

#include "rollup.h"

/* The schema version this build writes; older stores are migrated on open. */
#define BBT_STORE_SCHEMA_VERSION 8

enum bbt_offline_reason { BBT_OFFLINE_NONE, BBT_OFFLINE_LOST, BBT_OFFLINE_SHUTDOWN };

/* One terminal as the store knows it (seen on the wire; the registry adds names). */
struct bbt_store_terminal {
        int64_t id;                   /* the store's key, > 0 */
        char county[7];
        char school[BBT_ID_MAX + 1];
        char terminal[BBT_ID_MAX + 1];
        int64_t first_seq;            /* the first seq of its series the store holds; -1: none yet */
        int64_t high_seq;             /* the highest seq stored; -1: none yet */
        int64_t received;             /* messages stored */
        int64_t duplicates;           /* messages dropped as already stored */
        int64_t lost;                 /* seqs recorded as lost (records that existed) */
        int64_t skipped;              /* seqs the agent says it never used (skipped after an unclean stop) */
        int64_t conflicts;            /* messages with a different payload under a stored seq */
        int64_t first_seen_ms, last_seen_ms; /* receive times; 0: never */
        int64_t last_active_ms;       /* end of the newest active interval (corrected); 0: never */
        bool online;
        int64_t boot;                 /* boot of the last birth accepted; -1: none */
        int64_t online_since_ms, offline_since_ms;
        enum bbt_offline_reason offline_reason;
        bool skew_known;
        int64_t skew_ms;              /* terminal clock − true time, estimated from live heartbeats */
        int64_t spool_dropped;        /* the agent's own count of messages dropped from a full spool */
        char version[33], hostname[65], os[129], machine_id[65];
        char last_hb[1024];           /* a summary of the newest heartbeat, JSON; "" if none */
        int64_t inventory_seq;        /* seq of the inventory applied; -1: none (older ones are ignored) */
};

/* A terminal as a listing of many needs it (a report's): the row without its
 * last heartbeat, host names and session state (a tenth of its size). */
struct bbt_store_terminal_brief {
        int64_t id;
        char county[7];
        char school[BBT_ID_MAX + 1];
        char terminal[BBT_ID_MAX + 1];
        int64_t first_seq, high_seq, received, duplicates, lost, skipped, conflicts, spool_dropped;
        int64_t first_seen_ms;
        bool online;
        char version[33];
};

/* A range of seqs not (yet) received. */
enum bbt_gap_state {
        BBT_GAP_WAITING,   /* within the grace period, or waiting to ask again */
        BBT_GAP_REQUESTED, /* a resend command is out */
        BBT_GAP_ANSWERED,  /* the agent replied; waiting for the resent messages to arrive */
        BBT_GAP_WILL,      /* the live session's will, held back by the agent: it comes when the session ends */
};
struct bbt_store_gap {
        int64_t from, to;            /* inclusive */
        int64_t detected_ms;
        enum bbt_gap_state state;
        int attempts;                /* resend commands sent for it */
        int64_t changed_ms;          /* when state last changed */
        char cmd_id[65];             /* the outstanding command, "" if none */
        int64_t boot;                /* BBT_GAP_WILL: the session (boot) whose will it is */
};

struct bbt_store_fault {
        int64_t terminal_id;
        char code[33];
        char source[16];             /* "agent" (an alert) or "aggregator" (derived) */
        enum bbt_severity severity;
        char detail[513];
        int64_t raised_ms, cleared_ms; /* cleared_ms 0: open */
};

/* A one-off event a terminal reported (an alert with event true: the power
 * schedule's power_off, power_postponed...). */
struct bbt_store_event {
        int64_t terminal_id, seq;
        int64_t ts;                  /* the terminal's time, corrected for its clock skew */
        char code[33];
        enum bbt_severity severity;
        char detail[1540];           /* 512 characters of UTF-8 */
};

/* A terminal's wired NIC, from its latest inventory: for Wake-on-LAN, a
 * neighbour of the same school and subnet (ipv4/prefix) sends the packet. */
struct bbt_store_net {
        int64_t terminal_id;
        int64_t seq;                 /* of the inventory it came from */
        char ifname[16], mac[18], ipv4[16]; /* ipv4 "" when it has none */
        int prefix;                  /* -1 without ipv4 */
};

/* One operator command (bbt-ctl) and its outcome: the audit trail. The
 * target is named, not keyed: a terminal the store has not seen yet can be
 * commanded. */
struct bbt_store_audit {
        char cmd_id[65];             /* unique: the command's id */
        char operator_name[65];      /* who: the operator's broker user name */
        int64_t sent_ms, done_ms;    /* when sent; when answered or given up (0: pending) */
        char county[7];
        char school[BBT_ID_MAX + 1];
        char terminal[BBT_ID_MAX + 1];
        char via[BBT_ID_MAX + 1];    /* the terminal that carried it out for the target (wake), "" if itself */
        char op[33];
        char args[513];              /* the command's args, JSON */
        char result[16];             /* "pending", "ok", "error", "timeout", "not_sent" */
        char detail[1025];           /* the reply's error or result, or why it was not sent */
};

/* What a loss row counts: records that existed and are gone, or seqs that
 * were never used (protocol/SPEC.md, "Sequence numbers"). */
enum bbt_loss_kind { BBT_LOSS_LOST = 0, BBT_LOSS_SKIPPED = 1 };

struct bbt_store_loss {
        int64_t terminal_id;
        int64_t from, to;
        int64_t recorded_ms;
        char reason[64];
        enum bbt_loss_kind kind;
};

/* A message whose payload differs from the one stored under its (terminal,
 * seq): a seq the terminal used twice. The stored one stays in raw. */
struct bbt_store_conflict {
        int64_t terminal_id, seq;
        enum bbt_channel channel;
        int64_t ts, recv_ms, boot;
        uint64_t stored_hash, hash; /* 64-bit FNV-1a of the payloads (0: not known) */
};

/* A stored usage interval: corrected times and the agent's counters. */
struct bbt_store_usage {
        int64_t terminal_id, seq;
        struct bbt_usage_span span;
        int64_t audio_ms, touch, pen, mouse, key;
};

struct bbt_store_device {
        int64_t terminal_id;
        enum bbt_periph_kind kind;
        char subsystem[33], bus[17], vendor_id[5], model_id[5];
        char vendor[129], model[129], serial[129], syspath[257];
};

/* Day aggregates: what reports sum instead of every terminal-day rollup
 * (docs/aggregator.md, "Day aggregates"). The store keeps them with the
 * rollups, in the transaction of each day_add, judged under one day rule
 * (rollup.h): per school and day, the totals of its terminals' rollups; per
 * terminal and 32-day span, which days were powered and used. Neither bakes
 * in the calendar: a report keeps the school days of its calendar. */
struct bbt_store_school_day {
        char county[7];
        char school[BBT_ID_MAX + 1];
        int32_t day;
        struct bbt_day_totals t; /* over every period (BBT_PERIODS_MAX) */
};

/* Days FIRST_DAY .. FIRST_DAY + 31 of one school (FIRST_DAY a multiple of
 * 32): T[i] is day FIRST_DAY + i's, where bit i of PRESENT is set. */
struct bbt_store_school_span {
        char county[7];
        char school[BBT_ID_MAX + 1];
        int32_t first_day;
        uint32_t present;
        struct bbt_day_totals t[32];
};

/* Days FIRST_DAY .. FIRST_DAY + 31 of one terminal: bit i of POWERED and
 * USED is day FIRST_DAY + i (FIRST_DAY is a multiple of 32). LESSONS holds
 * each day's periods used (0..12, under the day rule's used_period_ms, over
 * every period like school_day's periods_used) in 4 bits: day FIRST_DAY + i
 * at bits 4 × (i % 16) of LESSONS[i / 16] (bbt_store_mark_lessons()). The
 * weekly rule judges each terminal's Monday-to-Sunday weeks from them. */
#define BBT_STORE_MARK_DAYS 32
struct bbt_store_day_marks {
        int64_t terminal_id;
        int32_t first_day;
        uint32_t powered, used;
        uint64_t lessons[2];
};

/* The periods used on day FIRST_DAY + I of M (0 <= I < 32). */
static inline int bbt_store_mark_lessons(const struct bbt_store_day_marks *m, int i)
{
        return (int)(m->lessons[i >> 4] >> (4 * (i & 15)) & 0xf);
}

/* A terminal's history up to a day (docs/metrics.md, "History"): the
 * time of its latest message and the end of its latest active time, kept in
 * its day rollups (first_msg_ms, last_msg_ms, last_active_ms); 0: none. */
struct bbt_store_seen {
        int64_t terminal_id;
        int64_t last_msg_ms;    /* sent (true clock), or received if earlier */
        int64_t last_active_ms;
};

/* A terminal's latest day with a message, up to a day: what bbt_store_seen
 * says, to the day (the day of the rollup holding last_msg_ms). */
struct bbt_store_seen_day {
        int64_t terminal_id;
        int32_t day; /* INT32_MIN: none */
};

/* Which rows an _in iterator returns. County and school pick terminals (the
 * county and school of their topic); the rest applies where an iterator says
 * so. Start from BBT_STORE_SCOPE_ALL; a NULL scope is everything. */
struct bbt_store_scope {
        const char *county;         /* 6 digits; NULL: every county */
        const char *school;         /* NULL: every school (of the county, if one is given) */
        int32_t from_day, to_day;   /* day rollups: from_day <= day <= to_day (local days, dates.h) */
        int64_t since_ms, until_ms; /* timed rows: see each iterator */
};
#define BBT_STORE_SCOPE_ALL                                                                                   \
        {                                                                                                     \
                .county = NULL, .school = NULL, .from_day = INT32_MIN, .to_day = INT32_MAX,                   \
                .since_ms = INT64_MIN, .until_ms = INT64_MAX                                                  \
        }

struct bbt_store;

/* What a backend provides. Every function returns 0 or a negative errno; a
 * backend keeps its own last error text for bbt_store_error(). Iterators stop
 * early when the callback returns non-zero and return that value. */
struct bbt_store_ops {
        const char *name;
        void (*close)(struct bbt_store *s);
        int (*begin)(struct bbt_store *s);
        int (*commit)(struct bbt_store *s);
        int (*rollback)(struct bbt_store *s); /* 0 with no transaction open */
        int (*meta_get)(struct bbt_store *s, const char *key, int64_t *ret);  /* -ENOENT if unset */
        int (*meta_set)(struct bbt_store *s, const char *key, int64_t value);
        /* A reader's change marker: *RET is the same on two calls of one
         * connection only if no other connection committed in between (it
         * may change without a commit). NULL: -ENOTSUP. */
        int (*data_version)(struct bbt_store *s, uint64_t *ret);
        int (*terminal_insert)(struct bbt_store *s, struct bbt_store_terminal *t); /* sets t->id; -EEXIST */
        int (*terminal_update)(struct bbt_store *s, const struct bbt_store_terminal *t);
        /* Iterators get a scope, never NULL (the calls below pass
         * BBT_STORE_SCOPE_ALL for one). Terminals in the scope's county and
         * school, ordered by id. */
        int (*terminals_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                              int (*cb)(void *u, const struct bbt_store_terminal *t), void *u);
        /* The same rows, brief. NULL: bbt_store_terminals_brief_each_in
         * makes them from terminals_each. */
        int (*terminals_brief_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                                    int (*cb)(void *u, const struct bbt_store_terminal_brief *t), void *u);
        /* Several writers (docs/aggregator.md, "Several aggregators"): locks
         * the row of terminal T->id (or, with T->id 0, of T's county, school
         * and terminal) until the transaction ends, and reads it into *T, with
         * the number of its gaps into *RET_GAPS. With WAIT, waits for another
         * transaction holding it; without, returns 0 at once. Returns 1
         * (locked), 0 (held elsewhere) or -ENOENT. A backend with one writer
         * at a time (SQLite: BEGIN IMMEDIATE locks the whole store) only reads. */
        int (*terminal_lock)(struct bbt_store *s, struct bbt_store_terminal *t, bool wait, int64_t *ret_gaps);
        /* One terminal's gaps, by from. */
        int (*terminal_gaps_each)(struct bbt_store *s, int64_t terminal_id,
                                  int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u);
        int (*gaps_replace)(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_gap *gaps, size_t n);
        /* The gaps of the terminals in scope, by terminal then from. */
        int (*gaps_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                         int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u);
        /* Returns 1 if stored, 0 if (terminal, seq) was already there; then
         * *RET_STORED_HASH (may be NULL) gets the stored payload's HASH (0:
         * not known, a row from before schema 2). */
        int (*raw_insert)(struct bbt_store *s, int64_t terminal_id, int64_t seq, enum bbt_channel ch, int64_t ts,
                          int64_t recv_ms, uint32_t boot, const void *payload, size_t len, uint64_t hash,
                          uint64_t *ret_stored_hash);
        /* The stored payload of (terminal, seq), malloc'd and NUL-terminated;
         * -ENOENT if none (pruned). */
        int (*raw_payload)(struct bbt_store *s, int64_t terminal_id, int64_t seq, char **ret, size_t *ret_len);
        int (*conflict_add)(struct bbt_store *s, const struct bbt_store_conflict *c, const void *payload, size_t len);
        /* Conflicts of the terminals in scope received in [since_ms, until_ms), in the order added. */
        int (*conflicts_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                              int (*cb)(void *u, const struct bbt_store_conflict *c), void *u);
        /* Keeps the first interval of a (terminal, seq); later ones are ignored (0). */
        int (*usage_insert)(struct bbt_store *s, const struct bbt_store_usage *u);
        /* Usage intervals of the terminals in scope that overlap [since_ms,
         * until_ms) (end_ms > since_ms and start_ms < until_ms), by terminal then seq. */
        int (*usage_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_usage *usage), void *u);
        int (*day_add)(struct bbt_store *s, int64_t terminal_id, const struct bbt_day_rollup *d);
        /* Zeroes every rollup's usage columns and last_active_ms (not hb_count
         * or the message times), to rebuild them from usage. */
        int (*days_clear)(struct bbt_store *s);
        /* Rollups of the terminals in scope with from_day <= day <= to_day, by terminal then day. */
        int (*days_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                         int (*cb)(void *u, int64_t terminal_id, const struct bbt_day_rollup *d), void *u);
        /* The rule the day aggregates are counted under; -ENOENT if none. */
        int (*day_rule_get)(struct bbt_store *s, struct bbt_day_rule *ret);
        /* Records R and, if it differs from the one recorded, recounts every
         * day aggregate from the rollups (in the caller's transaction). */
        int (*day_rule_set)(struct bbt_store *s, const struct bbt_day_rule *r);
        /* The day aggregates of the schools in scope (county, school) with
         * from_day <= day <= to_day, by day, then county and school. */
        int (*school_days_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_school_day *d), void *u);
        /* The same days, up to 32 of a school at once (a report sums them
         * through masks), with only days from_day..to_day present; a school
         * may come in several pieces of the same span. NULL:
         * bbt_store_school_spans_each_in gives each day alone. */
        int (*school_spans_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                                 int (*cb)(void *u, const struct bbt_store_school_span *d), void *u);
        /* The day marks of the terminals in scope whose 32 days meet
         * from_day..to_day (bits outside it may be set), by first_day, then
         * terminal id. */
        int (*day_marks_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                              int (*cb)(void *u, const struct bbt_store_day_marks *m), void *u);
        /* Every terminal in scope, by id, with the latest last_msg_ms and
         * the latest last_active_ms of its rollups with from_day <= day <=
         * to_day (0: none). Reads about one row per terminal, not the range. */
        int (*seen_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                         int (*cb)(void *u, const struct bbt_store_seen *seen), void *u);
        /* Every terminal in scope, by id, with the latest day from_day <=
         * day <= to_day of its rollups with last_msg_ms > 0 (INT32_MIN: none):
         * seen_each to the day, for reports that need no more. A backend may
         * answer from a summary of its days (SQLite: the seen bits of the day
         * marks) rather than a row per terminal. NULL: derived from seen_each
         * (bbt_store_seen_days_each_in). */
        int (*seen_days_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                              int (*cb)(void *u, const struct bbt_store_seen_day *seen), void *u);
        /* Adds to the rollups' message history (first_msg_ms, last_msg_ms,
         * by the local day at OFFSET_MIN) the raw records kept, each at
         * min(ts − the terminal's skew, recv_ms), and each terminal's
         * first_seen_ms and last_seen_ms; what the rows hold already stays. */
        int (*days_history_rebuild)(struct bbt_store *s, int offset_min);
        int (*loss_add)(struct bbt_store *s, const struct bbt_store_loss *l);
        /* The loss row of the terminal overlapping FROM..TO with the lowest
         * from (rows never overlap): 1 with *RET, 0 if none. */
        int (*loss_find)(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to,
                         struct bbt_store_loss *ret);
        /* Takes FROM..TO out of the terminal's loss rows (each deleted,
         * shortened or split in two): seqs that arrived after all, or that
         * change kind. */
        int (*loss_remove)(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to);
        /* Loss rows of the terminals in scope recorded in [since_ms, until_ms), in the order added (the
         * pieces loss_remove leaves count as added then). */
        int (*losses_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_loss *l), void *u);
        /* Opens a fault unless one with the same terminal, code and source is
         * open, or was cleared at or after f->raised_ms (a late, resent raise). */
        int (*fault_raise)(struct bbt_store *s, const struct bbt_store_fault *f);
        /* Clears the open fault of that terminal, code and source raised at or
         * before CLEARED_MS, if any. */
        int (*fault_clear)(struct bbt_store *s, int64_t terminal_id, const char *code, const char *source,
                           int64_t cleared_ms);
        /* Faults of the terminals in scope raised before until_ms and not
         * cleared before since_ms (open, or cleared_ms >= since_ms): with
         * since_ms == until_ms == T, the faults open at T. By terminal, then
         * raised_ms, then the order added. */
        int (*faults_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_fault *f), void *u);
        int (*inventory_replace)(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_device *devs,
                                 size_t n);
        /* The inventories of the terminals in scope, by terminal, each in the order given to replace. */
        int (*inventory_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                              int (*cb)(void *u, const struct bbt_store_device *d), void *u);
        int (*periph_add)(struct bbt_store *s, int64_t seq, int64_t ts, enum bbt_periph_action action,
                          const struct bbt_store_device *d);
        int (*event_add)(struct bbt_store *s, const struct bbt_store_event *e);
        /* Events of the terminals in scope with since_ms <= ts < until_ms, by terminal, then ts. */
        int (*events_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_event *e), void *u);
        /* Keeps N as its terminal's NIC unless one from a later inventory (higher seq) is kept. */
        int (*net_set)(struct bbt_store *s, const struct bbt_store_net *n);
        /* The NICs of the terminals in scope, by terminal. */
        int (*nets_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                         int (*cb)(void *u, const struct bbt_store_net *n), void *u);
        /* Records A, or updates the row of its cmd_id (a command's result). */
        int (*audit_put)(struct bbt_store *s, const struct bbt_store_audit *a);
        /* Audit rows of targets in scope (county, school) with since_ms <=
         * sent_ms < until_ms, by sent_ms then cmd_id. */
        int (*audits_each)(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_audit *a), void *u);
        int (*counter_add)(struct bbt_store *s, const char *name, int64_t delta);
        /* Every counter (they are the store's, not a terminal's), by name. */
        int (*counters_each)(struct bbt_store *s, int (*cb)(void *u, const char *name, int64_t value), void *u);
        /* Deletes raw records received before RAW_BEFORE_MS and usage intervals
         * that ended before USAGE_BEFORE_MS (0: keep). */
        int (*prune)(struct bbt_store *s, int64_t raw_before_ms, int64_t usage_before_ms);
};

struct bbt_store {
        const struct bbt_store_ops *ops;
        char error[512]; /* the last error, "" if none */
};

/* Opens the store at LOCATION: a file path (SQLite, created with its schema if
 * missing, migrated if older) or a postgresql:// URI (PostgreSQL, its
 * database created beforehand; the schema as for SQLite). READ_ONLY opens an existing store for reports.
 * On failure ERR (may be NULL) says why. Returns 0 and *RET, -ENOENT (no such
 * store with READ_ONLY), -EPROTO (schema newer than this build, or not a bbt
 * store), -errno. */
int bbt_store_open(const char *location, bool read_only, struct bbt_store **ret, char *err, size_t err_size);
/* NULL-safe; rolls back an open transaction. */
void bbt_store_close(struct bbt_store *s);
/* The last error's text. */
const char *bbt_store_error(const struct bbt_store *s);

/* The calls: every user of a store goes through these, never through the
 * ops table, so a backend can change what it does behind each one. Each
 * returns what its op above says. An iterator X_each_in returns the rows in
 * SCOPE (NULL: all of them); X_each is X_each_in with a NULL scope. */
int bbt_store_begin(struct bbt_store *s);
int bbt_store_commit(struct bbt_store *s);
int bbt_store_rollback(struct bbt_store *s);
int bbt_store_meta_get(struct bbt_store *s, const char *key, int64_t *ret);
int bbt_store_meta_set(struct bbt_store *s, const char *key, int64_t value);
int bbt_store_data_version(struct bbt_store *s, uint64_t *ret);
int bbt_store_terminal_insert(struct bbt_store *s, struct bbt_store_terminal *t);
int bbt_store_terminal_update(struct bbt_store *s, const struct bbt_store_terminal *t);
int bbt_store_terminals_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_terminal *t), void *u);
int bbt_store_terminals_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_terminal *t), void *u);
int bbt_store_terminals_brief_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                      int (*cb)(void *u, const struct bbt_store_terminal_brief *t), void *u);
int bbt_store_terminal_lock(struct bbt_store *s, struct bbt_store_terminal *t, bool wait, int64_t *ret_gaps);
int bbt_store_terminal_gaps_each(struct bbt_store *s, int64_t terminal_id,
                                 int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u);
int bbt_store_gaps_replace(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_gap *gaps, size_t n);
int bbt_store_gaps_each(struct bbt_store *s, int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g),
                        void *u);
int bbt_store_gaps_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u);
int bbt_store_raw_insert(struct bbt_store *s, int64_t terminal_id, int64_t seq, enum bbt_channel ch, int64_t ts,
                         int64_t recv_ms, uint32_t boot, const void *payload, size_t len, uint64_t hash,
                         uint64_t *ret_stored_hash);
int bbt_store_raw_payload(struct bbt_store *s, int64_t terminal_id, int64_t seq, char **ret, size_t *ret_len);
int bbt_store_conflict_add(struct bbt_store *s, const struct bbt_store_conflict *c, const void *payload, size_t len);
int bbt_store_conflicts_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_conflict *c), void *u);
int bbt_store_conflicts_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_conflict *c), void *u);
int bbt_store_usage_insert(struct bbt_store *s, const struct bbt_store_usage *u);
int bbt_store_usage_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_usage *usage), void *u);
int bbt_store_usage_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                            int (*cb)(void *u, const struct bbt_store_usage *usage), void *u);
int bbt_store_day_add(struct bbt_store *s, int64_t terminal_id, const struct bbt_day_rollup *d);
int bbt_store_days_clear(struct bbt_store *s);
/* Every terminal's rollups with FROM <= day <= TO. */
int bbt_store_days_each(struct bbt_store *s, int32_t from, int32_t to, int (*cb)(void *u, int64_t terminal_id,
                        const struct bbt_day_rollup *d), void *u);
int bbt_store_days_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, int64_t terminal_id, const struct bbt_day_rollup *d), void *u);
int bbt_store_day_rule_get(struct bbt_store *s, struct bbt_day_rule *ret);
int bbt_store_day_rule_set(struct bbt_store *s, const struct bbt_day_rule *r);
int bbt_store_school_days_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                  int (*cb)(void *u, const struct bbt_store_school_day *d), void *u);
int bbt_store_school_spans_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                   int (*cb)(void *u, const struct bbt_store_school_span *d), void *u);
int bbt_store_day_marks_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_day_marks *m), void *u);
int bbt_store_seen_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_seen *seen), void *u);
/* The backend's seen_days_each, or seen_each with each last_msg_ms's day at
 * OFFSET_MIN (the rollups' days are at the aggregator's UTC offset). */
int bbt_store_seen_days_each_in(struct bbt_store *s, const struct bbt_store_scope *scope, int offset_min,
                                int (*cb)(void *u, const struct bbt_store_seen_day *seen), void *u);
int bbt_store_days_history_rebuild(struct bbt_store *s, int offset_min);
int bbt_store_loss_add(struct bbt_store *s, const struct bbt_store_loss *l);
int bbt_store_loss_find(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to, struct bbt_store_loss *ret);
int bbt_store_loss_remove(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to);
int bbt_store_losses_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_loss *l), void *u);
int bbt_store_losses_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_loss *l), void *u);
int bbt_store_fault_raise(struct bbt_store *s, const struct bbt_store_fault *f);
int bbt_store_fault_clear(struct bbt_store *s, int64_t terminal_id, const char *code, const char *source,
                          int64_t cleared_ms);
int bbt_store_faults_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_fault *f), void *u);
int bbt_store_faults_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_fault *f), void *u);
int bbt_store_inventory_replace(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_device *devs,
                                size_t n);
int bbt_store_inventory_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_device *d), void *u);
int bbt_store_inventory_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_device *d), void *u);
int bbt_store_periph_add(struct bbt_store *s, int64_t seq, int64_t ts, enum bbt_periph_action action,
                         const struct bbt_store_device *d);
int bbt_store_event_add(struct bbt_store *s, const struct bbt_store_event *e);
int bbt_store_events_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_event *e), void *u);
int bbt_store_net_set(struct bbt_store *s, const struct bbt_store_net *n);
int bbt_store_nets_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_net *n), void *u);
int bbt_store_audit_put(struct bbt_store *s, const struct bbt_store_audit *a);
int bbt_store_audits_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_audit *a), void *u);
int bbt_store_counter_add(struct bbt_store *s, const char *name, int64_t delta);
int bbt_store_counters_each(struct bbt_store *s, int (*cb)(void *u, const char *name, int64_t value), void *u);
int bbt_store_prune(struct bbt_store *s, int64_t raw_before_ms, int64_t usage_before_ms);

/* The SQLite backend (store_sqlite.c). */
int bbt_store_sqlite_open(const char *path, bool read_only, struct bbt_store **ret, char *err, size_t err_size);
/* The PostgreSQL backend (store_pg.c): URI is a libpq connection URI,
 * postgresql://USER@HOST:PORT/DATABASE?... The database must exist; its
 * schema is created or migrated when opened for writing. */
int bbt_store_pg_open(const char *uri, bool read_only, struct bbt_store **ret, char *err, size_t err_size);

/* True if LOCATION names a PostgreSQL store (postgresql:// or postgres://). */
bool bbt_store_location_is_pg(const char *location);
/* LOCATION as it may be shown (logs, --dump, reports): a URI's password,
 * in the user part or a password= parameter, replaced by "***". Returns BUF. */
char *bbt_store_location_redact(const char *location, char *buf, size_t size);

#endif
