/* Ingest: validate, deduplicate on (terminal, seq), track gaps and ask for resends, sessions, clock skew, rollups. */
#include "ingest.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bbt/log.h"
#include "dates.h"

#define FAULT_SOURCE_AGENT "agent"
#define FAULT_SOURCE_AGGREGATOR "aggregator"
#define SKEW_SAMPLES_MAX 16
/* A terminal heard from this recently is taken to be connected. */
#define REACHABLE_MS (5 * 60 * 1000)
/* Rejections logged per minute at most; the rest are counted. */
#define REJECT_LOG_PER_MIN 20
/* A resend whose terminal is not heard from after it is asked again after
 * this many resend_timeouts all the same (the terminal went away, or its
 * clock is far off). */
#define RESEND_BACKSTOP 10

static const char *const reject_names[BBT_REJECT__COUNT] = {
        [BBT_REJECT_TOPIC] = "reject_topic", [BBT_REJECT_SIZE] = "reject_size",
        [BBT_REJECT_JSON] = "reject_json",   [BBT_REJECT_VERSION] = "reject_version",
        [BBT_REJECT_FIELD] = "reject_field", [BBT_REJECT_STORE] = "reject_store",
};

const char *bbt_reject_name(enum bbt_reject r)
{
        return r >= 0 && r < BBT_REJECT__COUNT ? reject_names[r] : "reject_unknown";
}

void bbt_ingest_settings_default(struct bbt_ingest_settings *s)
{
        memset(s, 0, sizeof(*s));
        s->batch_size = 1000;
        s->gap_grace_ms = 30000;
        s->resend_timeout_ms = 60000;
        s->resend_settle_ms = 30000;
        s->resend_attempts = 5;
        s->resend_max_range = 5000;
        s->gap_give_up_ms = 8LL * 86400000;
        s->skew_samples = 5;
        s->skew_min_ms = 2000;
        s->skew_warmup_ms = 30000;
        bbt_metric_settings_default(&s->metrics);
}

/* What the terminal's row keeps of its newest heartbeat. */
struct hb_summary {
        int64_t ts, uptime, mem_available, disk_free, spool_depth, lamp_hours;
        double cpu, temp;
        enum bbt_usage_state state;
        bool has_temp, has_projector, projector_reachable, clock_synced;
};

/* At most a number of log lines a minute for one kind of event; the rest
 * are counted and summed up when the minute is over. */
struct log_limit {
        int64_t window_ms;
        int count, suppressed;
        const char *what; /* "rejected messages", ... */
};

/* Whether one more line may be logged at NOW_MS (at most PER_MIN a minute). */
static bool log_limit_ok(struct log_limit *l, int64_t now_ms, int per_min)
{
        if (now_ms - l->window_ms >= 60000) {
                if (l->suppressed)
                        bbt_log_warning("%d more %s in the last minute were not logged", l->suppressed, l->what);
                l->window_ms = now_ms;
                l->count = l->suppressed = 0;
        }
        if (l->count >= per_min) {
                l->suppressed++;
                return false;
        }
        l->count++;
        return true;
}

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 64-bit FNV-1a: the payload hash kept beside a raw row (never 0, which
 * means "not known"). */
static uint64_t payload_hash(const void *data, size_t len)
{
        const unsigned char *p = data;
        uint64_t h = 1469598103934665603ull;

        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 1099511628211ull;
        }
        return h ? h : 1;
}

/* One terminal in memory: its store row, its gaps, what waits for the next commit. */
struct term {
        struct hb_summary hb;
        bool hb_dirty;
        struct bbt_store_terminal row;
        struct bbt_store_gap *gaps; /* sorted by from, not overlapping */
        size_t n_gaps, cap_gaps;
        struct bbt_day_rollup *pending; /* rollup deltas not yet written */
        size_t n_pending, cap_pending;
        int64_t skew_sample[SKEW_SAMPLES_MAX];
        int n_samples, next_sample;
        const struct bbt_terminal_entry *entry; /* registry, or NULL */
        const struct bbt_bells *bells;
        bool dirty, gaps_dirty;
        struct term *next_dirty;
        /* The outstanding resend: when it was sent, and when a message the
         * terminal made after that first arrived (0: none yet). Its answer is
         * waited for from then on: until then it may sit behind a backlog. */
        int64_t request_ms, heard_after_request_ms;
};

struct bbt_ingest {
        struct bbt_store *store;
        struct bbt_ingest_settings set;
        const struct bbt_registry *reg;
        const struct bbt_calendar *cal;
        bbt_ingest_publish_fn publish;
        void *userdata;

        struct term **terms;  /* all terminals */
        size_t n_terms, cap_terms;
        struct term **table;  /* open addressing by county/school/terminal */
        size_t table_size;    /* power of two */

        bool in_tx;
        int64_t batch_n;
        struct term *dirty;
        uint64_t counter_delta[BBT_REJECT__COUNT];
        int64_t dup_delta, stored_delta, lost_delta, recovered_delta, stale_delta, skipped_delta, conflict_delta;

        int64_t cmd_seq, boot;
        bool connected;
        int64_t connected_ms;
        struct log_limit reject_log, conflict_log, commit_log;
        struct bbt_ingest_stats stats;
};

/* ---- the terminal table ---- */

static uint64_t key_hash(const char *county, const char *school, const char *terminal)
{
        uint64_t h = 1469598103934665603ull;
        const char *parts[3] = { county, school, terminal };

        for (int i = 0; i < 3; i++) {
                for (const char *p = parts[i]; *p; p++)
                        h = (h ^ (unsigned char)*p) * 1099511628211ull;
                h = (h ^ '/') * 1099511628211ull;
        }
        return h;
}

static struct term **slot(struct bbt_ingest *in, const char *county, const char *school, const char *terminal)
{
        size_t mask = in->table_size - 1, i = (size_t)key_hash(county, school, terminal) & mask;

        for (;; i = (i + 1) & mask) {
                struct term *t = in->table[i];

                if (!t || (strcmp(t->row.terminal, terminal) == 0 && strcmp(t->row.school, school) == 0 &&
                           strcmp(t->row.county, county) == 0))
                        return &in->table[i];
        }
}

static int table_grow(struct bbt_ingest *in)
{
        size_t size = in->table_size ? in->table_size * 2 : 1024;
        struct term **old = in->table;
        size_t old_size = in->table_size;

        in->table = calloc(size, sizeof(*in->table));
        if (!in->table) {
                in->table = old;
                return -ENOMEM;
        }
        in->table_size = size;
        for (size_t i = 0; i < old_size; i++)
                if (old[i])
                        *slot(in, old[i]->row.county, old[i]->row.school, old[i]->row.terminal) = old[i];
        free(old);
        return 0;
}

static void link_registry(struct bbt_ingest *in, struct term *t)
{
        const struct bbt_school *school = in->reg ? bbt_registry_school(in->reg, t->row.school) : NULL;

        /* The same codes published under another county are another terminal. */
        t->entry = school && strcmp(school->county, t->row.county) == 0
                           ? bbt_registry_terminal(in->reg, t->row.school, t->row.terminal)
                           : NULL;
        t->bells = in->cal ? bbt_calendar_bells(in->cal, t->row.county, t->row.school) : bbt_bells_default();
}

/* Adds T (owned from now on) to the table. */
static int add_term(struct bbt_ingest *in, struct term *t)
{
        int r;

        if ((in->n_terms + 1) * 2 > in->table_size) {
                r = table_grow(in);
                if (r < 0)
                        return r;
        }
        if (in->n_terms == in->cap_terms) {
                size_t cap = in->cap_terms ? in->cap_terms * 2 : 256;
                struct term **n = realloc(in->terms, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                in->terms = n;
                in->cap_terms = cap;
        }
        in->terms[in->n_terms++] = t;
        *slot(in, t->row.county, t->row.school, t->row.terminal) = t;
        link_registry(in, t);
        in->stats.terminals = in->n_terms;
        return 0;
}

static void free_terms(struct bbt_ingest *in)
{
        for (size_t i = 0; i < in->n_terms; i++) {
                free(in->terms[i]->gaps);
                free(in->terms[i]->pending);
                free(in->terms[i]);
        }
        free(in->terms);
        free(in->table);
        in->terms = NULL;
        in->table = NULL;
        in->n_terms = in->cap_terms = in->table_size = 0;
        in->dirty = NULL;
}

static void mark_dirty(struct bbt_ingest *in, struct term *t)
{
        if (!t->dirty) {
                t->dirty = true;
                t->next_dirty = in->dirty;
                in->dirty = t;
        }
}

/* ---- loading ---- */

static int load_terminal_cb(void *u, const struct bbt_store_terminal *row)
{
        struct bbt_ingest *in = u;
        struct term *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        t->row = *row;
        if (t->row.skew_known)
                t->skew_sample[t->n_samples++] = t->row.skew_ms;
        r = add_term(in, t);
        if (r < 0)
                free(t);
        return r;
}

static struct term *find_by_id(struct bbt_ingest *in, int64_t id)
{
        /* Loaded in id order: a binary search over the array. */
        size_t lo = 0, hi = in->n_terms;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (in->terms[mid]->row.id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < in->n_terms && in->terms[lo]->row.id == id ? in->terms[lo] : NULL;
}

static int gap_insert_at(struct term *t, size_t i, const struct bbt_store_gap *g)
{
        if (t->n_gaps == t->cap_gaps) {
                size_t cap = t->cap_gaps ? t->cap_gaps * 2 : 4;
                struct bbt_store_gap *n = realloc(t->gaps, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                t->gaps = n;
                t->cap_gaps = cap;
        }
        memmove(&t->gaps[i + 1], &t->gaps[i], (t->n_gaps - i) * sizeof(*g));
        t->gaps[i] = *g;
        t->n_gaps++;
        return 0;
}

static void gap_remove_at(struct term *t, size_t i)
{
        memmove(&t->gaps[i], &t->gaps[i + 1], (t->n_gaps - i - 1) * sizeof(t->gaps[0]));
        t->n_gaps--;
}

static int load_gap_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        struct bbt_ingest *in = u;
        struct term *t = find_by_id(in, terminal_id);

        if (!t)
                return 0;
        in->stats.open_gap_seqs += (uint64_t)(g->to - g->from + 1);
        if (g->state == BBT_GAP_REQUESTED) {
                /* Its answer is waited for afresh: from a message made after it. */
                t->request_ms = g->changed_ms;
                t->heard_after_request_ms = 0;
        }
        return gap_insert_at(t, t->n_gaps, g);
}

static int load_state(struct bbt_ingest *in)
{
        int r;

        free_terms(in);
        in->stats.open_gap_seqs = 0;
        r = bbt_store_terminals_each(in->store, load_terminal_cb, in);
        if (r == 0)
                r = bbt_store_gaps_each(in->store, load_gap_cb, in);
        if (r == 0 && bbt_store_meta_get(in->store, "cmd_seq", &in->cmd_seq) == -ENOENT)
                in->cmd_seq = 0;
        return r;
}

/* ---- transactions ---- */

static int ensure_tx(struct bbt_ingest *in)
{
        int r;

        if (in->in_tx)
                return 0;
        r = bbt_store_begin(in->store);
        if (r == 0)
                in->in_tx = true;
        return r;
}

static void format_hb(struct term *t);

static int write_dirty(struct bbt_ingest *in)
{
        struct bbt_store *s = in->store;
        int r = 0;

        for (struct term *t = in->dirty; t && r == 0; t = t->next_dirty) {
                for (size_t i = 0; r == 0 && i < t->n_pending; i++)
                        r = bbt_store_day_add(s, t->row.id, &t->pending[i]);
                if (r == 0 && t->gaps_dirty)
                        r = bbt_store_gaps_replace(s, t->row.id, t->gaps, t->n_gaps);
                if (t->hb_dirty)
                        format_hb(t);
                if (r == 0)
                        r = bbt_store_terminal_update(s, &t->row);
        }
        for (int i = 0; r == 0 && i < BBT_REJECT__COUNT; i++)
                if (in->counter_delta[i])
                        r = bbt_store_counter_add(s, reject_names[i], (int64_t)in->counter_delta[i]);
        if (r == 0 && in->dup_delta)
                r = bbt_store_counter_add(s, "duplicates", in->dup_delta);
        if (r == 0 && in->stored_delta)
                r = bbt_store_counter_add(s, "stored", in->stored_delta);
        if (r == 0 && in->lost_delta)
                r = bbt_store_counter_add(s, "lost", in->lost_delta);
        if (r == 0 && in->recovered_delta)
                r = bbt_store_counter_add(s, "recovered", in->recovered_delta);
        if (r == 0 && in->stale_delta)
                r = bbt_store_counter_add(s, "stale_state", in->stale_delta);
        if (r == 0 && in->skipped_delta)
                r = bbt_store_counter_add(s, "skipped", in->skipped_delta);
        if (r == 0 && in->conflict_delta)
                r = bbt_store_counter_add(s, "seq_conflict", in->conflict_delta);
        if (r == 0)
                r = bbt_store_meta_set(s, "cmd_seq", in->cmd_seq);
        return r;
}

static void clear_dirty(struct bbt_ingest *in)
{
        struct term *t = in->dirty;

        while (t) {
                struct term *next = t->next_dirty;

                t->dirty = t->gaps_dirty = false;
                t->n_pending = 0;
                t->next_dirty = NULL;
                t = next;
        }
        in->dirty = NULL;
        memset(in->counter_delta, 0, sizeof(in->counter_delta));
        in->dup_delta = in->stored_delta = in->lost_delta = in->recovered_delta = in->stale_delta = 0;
        in->skipped_delta = in->conflict_delta = 0;
        in->batch_n = 0;
}

/* Whether counters changed that no dirty terminal will carry to the store
 * (rejected messages: they belong to no terminal). */
static bool counters_pending(const struct bbt_ingest *in)
{
        for (int i = 0; i < BBT_REJECT__COUNT; i++)
                if (in->counter_delta[i])
                        return true;
        return in->dup_delta || in->stored_delta || in->lost_delta || in->recovered_delta || in->stale_delta ||
               in->skipped_delta || in->conflict_delta;
}

int bbt_ingest_flush(struct bbt_ingest *in)
{
        int r;

        if (!in->in_tx && !in->dirty && !counters_pending(in))
                return 0;
        r = ensure_tx(in);
        if (r == 0)
                r = write_dirty(in);
        if (r == 0)
                r = bbt_store_commit(in->store);
        if (r == 0) {
                in->in_tx = false;
                in->stats.commits++;
                clear_dirty(in);
                return 0;
        }
        /* The batch is gone from the store but not from memory: roll back and
         * reload, so that what it held shows up as gaps and is asked for again. */
        in->stats.commit_failures++;
        if (log_limit_ok(&in->commit_log, mono_ms(), 6))
                bbt_log_error("store: cannot commit %" PRId64 " messages: %s; rolled back, they will be asked for "
                              "again (%" PRIu64 " failed commits so far)",
                              in->batch_n, bbt_store_error(in->store), in->stats.commit_failures);
        bbt_store_rollback(in->store);
        in->in_tx = false;
        clear_dirty(in);
        if (load_state(in) < 0)
                bbt_log_error("store: cannot reload the state: %s", bbt_store_error(in->store));
        return r;
}

/* ---- logging of rejects ---- */

static void reject(struct bbt_ingest *in, enum bbt_reject why, int64_t now_ms, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void reject(struct bbt_ingest *in, enum bbt_reject why, int64_t now_ms, const char *fmt, ...)
{
        char line[1024];
        va_list ap;

        in->stats.rejected[why]++;
        in->counter_delta[why]++;
        if (!log_limit_ok(&in->reject_log, now_ms, REJECT_LOG_PER_MIN))
                return;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        bbt_log_warning("%s (%s)", line, reject_names[why]);
}

/* ---- seq tracking ---- */

/* Whether SEQ is new for T; if so, records it (closing or splitting a gap,
 * opening one before it). Returns 1 new, 0 already seen, -ENOMEM. */
static int track_seq(struct bbt_ingest *in, struct term *t, int64_t seq, int64_t now_ms, bool *ret_was_missing)
{
        struct bbt_store_gap g = { .state = BBT_GAP_WAITING, .detected_ms = now_ms, .changed_ms = now_ms };

        *ret_was_missing = false;
        if (t->row.high_seq < 0) {
                t->row.first_seq = t->row.high_seq = seq;
                return 1;
        }
        if (seq > t->row.high_seq) {
                if (seq > t->row.high_seq + 1) {
                        g.from = t->row.high_seq + 1;
                        g.to = seq - 1;
                        if (gap_insert_at(t, t->n_gaps, &g) < 0)
                                return -ENOMEM;
                        t->gaps_dirty = true;
                        in->stats.gaps_opened++;
                        in->stats.open_gap_seqs += (uint64_t)(g.to - g.from + 1);
                }
                t->row.high_seq = seq;
                return 1;
        }
        if (seq < t->row.first_seq) {
                /* Older than anything seen (a backlog that follows the birth):
                 * the series reaches further back, with a gap up to it. */
                if (seq < t->row.first_seq - 1) {
                        g.from = seq + 1;
                        g.to = t->row.first_seq - 1;
                        if (gap_insert_at(t, 0, &g) < 0)
                                return -ENOMEM;
                        t->gaps_dirty = true;
                        in->stats.gaps_opened++;
                        in->stats.open_gap_seqs += (uint64_t)(g.to - g.from + 1);
                }
                t->row.first_seq = seq;
                return 1;
        }
        for (size_t i = 0; i < t->n_gaps; i++) {
                struct bbt_store_gap *x = &t->gaps[i];

                if (seq < x->from)
                        break;
                if (seq > x->to)
                        continue;
                *ret_was_missing = true;
                t->gaps_dirty = true;
                in->stats.open_gap_seqs--;
                in->stats.recovered++;
                in->recovered_delta++;
                if (x->from == x->to) {
                        gap_remove_at(t, i);
                } else if (seq == x->from) {
                        x->from++;
                } else if (seq == x->to) {
                        x->to--;
                } else {
                        struct bbt_store_gap right = *x;

                        right.from = seq + 1;
                        x->to = seq - 1;
                        if (gap_insert_at(t, i + 1, &right) < 0)
                                return -ENOMEM;
                }
                return 1;
        }
        /* Inside the series and in no gap: stored already, or recorded as lost
         * and arriving after all. The store tells which. */
        return 0;
}

/* Records FROM..TO of T as lost (or, with KIND skipped, as never used) with REASON. */
static void record_loss_kind(struct bbt_ingest *in, struct term *t, int64_t from, int64_t to,
                             enum bbt_loss_kind kind, const char *reason, int64_t now_ms)
{
        struct bbt_store_loss l = { .terminal_id = t->row.id, .from = from, .to = to, .recorded_ms = now_ms,
                                    .kind = kind };
        int64_t n = to - from + 1;

        snprintf(l.reason, sizeof(l.reason), "%s", reason);
        if (ensure_tx(in) == 0 && bbt_store_loss_add(in->store, &l) == 0) {
                if (kind == BBT_LOSS_SKIPPED) {
                        t->row.skipped += n;
                        in->stats.skipped += (uint64_t)n;
                        in->skipped_delta += n;
                } else {
                        t->row.lost += n;
                        in->stats.lost += (uint64_t)n;
                        in->lost_delta += n;
                }
                in->stats.open_gap_seqs -= (uint64_t)n;
                mark_dirty(in, t);
                if (kind == BBT_LOSS_SKIPPED)
                        bbt_log_info("%s/%s/%s: seq %" PRId64 "..%" PRId64 " skipped: %s", t->row.county,
                                     t->row.school, t->row.terminal, from, to, reason);
                else
                        bbt_log_warning("%s/%s/%s: seq %" PRId64 "..%" PRId64 " lost: %s", t->row.county,
                                        t->row.school, t->row.terminal, from, to, reason);
        }
}

static void record_loss(struct bbt_ingest *in, struct term *t, int64_t from, int64_t to, const char *reason,
                        int64_t now_ms)
{
        record_loss_kind(in, t, from, to, BBT_LOSS_LOST, reason, now_ms);
}

/* Takes the seqs of FROM..TO that are still missing out of T's gaps and
 * records them with KIND and REASON (the agent said what became of them).
 * The live session's withheld will is left alone. */
static void settle_missing(struct bbt_ingest *in, struct term *t, int64_t from, int64_t to,
                           enum bbt_loss_kind kind, const char *reason, int64_t now_ms)
{
        for (size_t i = 0; i < t->n_gaps && from <= to; i++) {
                struct bbt_store_gap *g = &t->gaps[i];
                int64_t a, b;

                if (g->to < from || g->state == BBT_GAP_WILL)
                        continue;
                if (g->from > to)
                        break;
                a = g->from > from ? g->from : from;
                b = g->to < to ? g->to : to;
                record_loss_kind(in, t, a, b, kind, reason, now_ms);
                t->gaps_dirty = true;
                if (a == g->from && b == g->to) {
                        gap_remove_at(t, i);
                        i--;
                } else if (a == g->from) {
                        g->from = b + 1;
                } else if (b == g->to) {
                        g->to = a - 1;
                } else {
                        struct bbt_store_gap right = *g;

                        right.from = b + 1;
                        g->to = a - 1;
                        if (gap_insert_at(t, i + 1, &right) < 0)
                                return;
                        i++;
                }
        }
}

/* The loss reason of seqs the agent cannot tell about (a resend reply's
 * "unknown"): older than the skipped ranges it remembers. */
#define LOSS_UNKNOWN "the agent cannot tell: lost, or never used"

/* Whether REASON is a conclusion, not a fact (nobody answered, nothing came,
 * the agent could not tell), which a statement of the agent's about those
 * seqs replaces. */
static bool inferred_loss(const char *reason)
{
        return strcmp(reason, LOSS_UNKNOWN) == 0 || strcmp(reason, "no answer to resend") == 0 ||
               strcmp(reason, "resent but never received") == 0 ||
               strcmp(reason, "not resent in time") == 0;
}

/* The agent names SEQ (its will, a range it skipped) below the series the
 * aggregator knows: the series reaches back to it, what lies between is a
 * gap like any other. */
static void extend_series(struct bbt_ingest *in, struct term *t, int64_t seq, int64_t now_ms)
{
        struct bbt_store_gap g = { .state = BBT_GAP_WAITING, .detected_ms = now_ms, .changed_ms = now_ms };

        if (t->row.high_seq < 0 || seq >= t->row.first_seq)
                return;
        g.from = seq;
        g.to = t->row.first_seq - 1;
        if (gap_insert_at(t, 0, &g) < 0)
                return;
        in->stats.gaps_opened++;
        in->stats.open_gap_seqs += (uint64_t)(g.to - g.from + 1);
        t->row.first_seq = seq;
        t->gaps_dirty = true;
}

/* The agent says it never used FROM..TO (it jumped over them at a start
 * after an unclean stop, not knowing how far its previous run had gone).
 * Seqs are handed out in order: below the highest of the range that did
 * arrive, every seq was used, so the missing ones there are lost; above it,
 * skipped -- also those recorded lost already because nobody answered. With
 * EXTEND (the range of a birth's own run), a range below the series the
 * aggregator knows extends it. */
static void settle_skipped(struct bbt_ingest *in, struct term *t, int64_t from, int64_t to, bool extend,
                           int64_t now_ms)
{
        struct bbt_store *s = in->store;
        int64_t lo, h;
        struct bbt_store_loss l;

        /* A birth's own range is part of the series, even below what arrived. */
        if (extend)
                extend_series(in, t, from, now_ms);
        lo = from > t->row.first_seq ? from : t->row.first_seq;
        h = to < t->row.high_seq ? to : t->row.high_seq;

        /* The highest seq of the range received: in the series, in no gap, in no loss row. */
        while (t->row.high_seq >= 0 && h >= lo) {
                size_t i;

                for (i = 0; i < t->n_gaps; i++)
                        if (h >= t->gaps[i].from && h <= t->gaps[i].to)
                                break;
                if (i < t->n_gaps) {
                        h = t->gaps[i].from - 1;
                        continue;
                }
                if (bbt_store_loss_find(s, t->row.id, h, h, &l) == 1) {
                        h = l.from - 1;
                        continue;
                }
                break;
        }
        if (t->row.high_seq < 0 || h < lo)
                h = from - 1;
        if (h >= from)
                settle_missing(in, t, from, h, BBT_LOSS_LOST,
                               "used before an unclean stop, not in the agent's spool", now_ms);
        settle_missing(in, t, h + 1, to, BBT_LOSS_SKIPPED, "never used (skipped after an unclean stop)", now_ms);
        /* What was given up as lost above H: never used after all. */
        for (int64_t at = h + 1; at <= to && bbt_store_loss_find(s, t->row.id, at, to, &l) == 1;) {
                int64_t a = l.from > at ? l.from : at, b = l.to < to ? l.to : to;

                at = b + 1;
                if (l.kind != BBT_LOSS_LOST || !inferred_loss(l.reason))
                        continue;
                if (bbt_store_loss_remove(s, t->row.id, a, b) < 0) {
                        bbt_log_error("store: loss: %s", bbt_store_error(s));
                        return;
                }
                t->row.lost -= b - a + 1;
                in->stats.lost -= (uint64_t)(b - a + 1);
                in->lost_delta -= b - a + 1;
                in->stats.open_gap_seqs += (uint64_t)(b - a + 1); /* record_loss_kind takes them off again */
                record_loss_kind(in, t, a, b, BBT_LOSS_SKIPPED, "never used (skipped after an unclean stop)", now_ms);
        }
}

/* A seq recorded in loss row L arrived after all: it leaves the row; if the
 * row said "skipped", the seqs below it in the row were used too (seqs are
 * handed out in order), so they turn lost. */
static void loss_arrived(struct bbt_ingest *in, struct term *t, int64_t seq, const struct bbt_store_loss *l,
                         int64_t now_ms)
{
        struct bbt_store *s = in->store;

        if (bbt_store_loss_remove(s, t->row.id, seq, seq) < 0) {
                bbt_log_error("store: loss: %s", bbt_store_error(s));
                return;
        }
        if (l->kind == BBT_LOSS_SKIPPED) {
                t->row.skipped--;
                in->skipped_delta--;
                if (l->from < seq) {
                        struct bbt_store_loss lost = *l;
                        int64_t n = seq - l->from;

                        lost.to = seq - 1;
                        lost.kind = BBT_LOSS_LOST;
                        lost.recorded_ms = now_ms;
                        snprintf(lost.reason, sizeof(lost.reason), "used before an unclean stop, never received");
                        if (bbt_store_loss_remove(s, t->row.id, l->from, seq - 1) < 0 ||
                            bbt_store_loss_add(s, &lost) < 0) {
                                bbt_log_error("store: loss: %s", bbt_store_error(s));
                                return;
                        }
                        t->row.skipped -= n;
                        in->skipped_delta -= n;
                        t->row.lost += n;
                        in->lost_delta += n;
                        bbt_log_warning("%s/%s/%s: seq %" PRId64 " arrived inside a skipped range: %" PRId64
                                        "..%" PRId64 " below it were used, now counted lost",
                                        t->row.county, t->row.school, t->row.terminal, seq, l->from, seq - 1);
                }
        } else if (t->row.lost > 0) {
                t->row.lost--;
                in->lost_delta--;
        }
        in->stats.recovered++;
        in->recovered_delta++;
        mark_dirty(in, t);
}

/* Whether two payloads under one seq are the session's will and its clean
 * stop: offline states of the same session (protocol/SPEC.md, "Sessions"),
 * not a conflict. */
static bool will_twins(enum bbt_channel ch, const char *a, size_t alen, const void *b, size_t blen)
{
        struct bbt_msg x, y;
        bool twins = false;

        if (ch != BBT_CH_STATE)
                return false;
        if (bbt_msg_decode(ch, a, alen, &x, NULL) < 0)
                return false;
        if (bbt_msg_decode(ch, b, blen, &y, NULL) == 0) {
                twins = !x.body.state.online && !y.body.state.online && x.seq == y.seq && x.boot == y.boot;
                bbt_msg_free(&y);
        }
        bbt_msg_free(&x);
        return twins;
}

/* The message M (PAYLOAD) has a seq already stored under another hash:
 * unless it is a will/clean-stop twin, the terminal used the seq twice.
 * Counted, logged, and kept beside the stored one. Returns true if it was a
 * conflict (else an ordinary duplicate). */
static bool check_conflict(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m, enum bbt_channel ch,
                           const void *payload, size_t len, uint64_t hash, uint64_t stored_hash, int64_t recv_ms)
{
        struct bbt_store_conflict c = { .terminal_id = t->row.id, .seq = m->seq, .channel = ch, .ts = m->ts,
                                        .recv_ms = recv_ms, .boot = m->boot, .stored_hash = stored_hash,
                                        .hash = hash };
        char *stored = NULL;
        size_t stored_len = 0;

        if (bbt_store_raw_payload(in->store, t->row.id, m->seq, &stored, &stored_len) == 0 &&
            will_twins(ch, stored, stored_len, payload, len)) {
                free(stored);
                return false;
        }
        free(stored);
        if (bbt_store_conflict_add(in->store, &c, payload, len) < 0)
                bbt_log_error("store: conflict: %s", bbt_store_error(in->store));
        t->row.conflicts++;
        in->stats.conflicts++;
        in->conflict_delta++;
        mark_dirty(in, t);
        if (log_limit_ok(&in->conflict_log, recv_ms, REJECT_LOG_PER_MIN))
                bbt_log_warning("%s/%s/%s: seq %" PRId64 " CONFLICT: a different %s message under a seq already "
                                "stored (the terminal used the seq twice); both kept (seq_conflict)",
                                t->row.county, t->row.school, t->row.terminal, m->seq, bbt_channel_name(ch));
        return true;
}

/* ---- pending rollups ---- */

static int pending_add(struct term *t, const struct bbt_day_rollup *d)
{
        for (size_t i = 0; i < t->n_pending; i++)
                if (t->pending[i].day == d->day) {
                        bbt_day_rollup_add(&t->pending[i], d);
                        return 0;
                }
        if (t->n_pending == t->cap_pending) {
                size_t cap = t->cap_pending ? t->cap_pending * 2 : 2;
                struct bbt_day_rollup *n = realloc(t->pending, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                t->pending = n;
                t->cap_pending = cap;
        }
        t->pending[t->n_pending++] = *d;
        return 0;
}

static void rules_of(const struct bbt_ingest *in, const struct term *t, struct bbt_rollup_rules *r)
{
        r->bells = t->bells;
        r->margin_min = in->set.metrics.margin_min;
        r->offset_min = in->set.metrics.offset_min;
}

/* The terminal's timestamp TS on the true clock. */
static int64_t corrected(const struct term *t, int64_t ts)
{
        return t->row.skew_known ? ts - t->row.skew_ms : ts;
}

/* ---- channels ---- */

static void fault_set(struct bbt_ingest *in, struct term *t, const char *code, bool open, enum bbt_severity sev,
                      const char *detail, int64_t when_ms)
{
        struct bbt_store *s = in->store;
        struct bbt_store_fault f = { .terminal_id = t->row.id, .severity = sev, .raised_ms = when_ms };
        int r;

        if (open) {
                snprintf(f.code, sizeof(f.code), "%s", code);
                snprintf(f.source, sizeof(f.source), "%s", FAULT_SOURCE_AGGREGATOR);
                snprintf(f.detail, sizeof(f.detail), "%s", detail ? detail : "");
                r = bbt_store_fault_raise(s, &f);
        } else {
                r = bbt_store_fault_clear(s, t->row.id, code, FAULT_SOURCE_AGGREGATOR, when_ms);
        }
        if (r < 0)
                bbt_log_error("store: fault %s: %s", code, bbt_store_error(s));
}

static void expect_will(struct bbt_ingest *in, struct term *t, int64_t w, uint32_t boot, int64_t now_ms);

static void handle_state(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m, int64_t recv_ms)
{
        const struct bbt_state *st = &m->body.state;

        /* The seqs this run of the agent skipped at its start: a fact, also in
         * a birth replayed late. Settled at once, not asked for. */
        if (st->online && st->has_skipped_from)
                settle_skipped(in, t, st->skipped_from, st->skipped_to, true, recv_ms);
        if (st->online) {
                if (t->row.boot >= 0 && (int64_t)m->boot < t->row.boot)
                        return; /* a birth of an older session, replayed */
                /* The birth of a session whose will or clean stop came first
                 * (the birth resent from a gap): that session is over. Every
                 * new session has a new boot, so this birth is stale. */
                if ((int64_t)m->boot == t->row.boot && !t->row.online && t->row.offline_reason != BBT_OFFLINE_NONE)
                        return;
                t->row.online = true;
                t->row.boot = m->boot;
                t->row.online_since_ms = recv_ms;
                snprintf(t->row.version, sizeof(t->row.version), "%s", st->version);
                snprintf(t->row.hostname, sizeof(t->row.hostname), "%s", st->hostname);
                snprintf(t->row.os, sizeof(t->row.os), "%s", st->os);
                snprintf(t->row.machine_id, sizeof(t->row.machine_id), "%s", st->machine_id);
                if (st->has_will_seq)
                        expect_will(in, t, st->will_seq, m->boot, recv_ms);
                return;
        }
        if (t->row.boot >= 0 && (int64_t)m->boot < t->row.boot) {
                /* The will of a session already replaced by a newer birth. */
                in->stats.stale_state++;
                in->stale_delta++;
                return;
        }
        t->row.online = false;
        t->row.boot = m->boot;
        t->row.offline_since_ms = recv_ms;
        t->row.offline_reason = st->reason == BBT_REASON_SHUTDOWN ? BBT_OFFLINE_SHUTDOWN : BBT_OFFLINE_LOST;
}

static void update_skew(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m, bool retained,
                        int64_t recv_ms)
{
        int n = in->set.skew_samples > 0 && in->set.skew_samples <= SKEW_SAMPLES_MAX ? in->set.skew_samples : 5;
        int64_t best;
        char detail[128];

        if (m->body.hb.spool_depth != 0 || retained || !in->connected ||
            recv_ms - in->connected_ms < in->set.skew_warmup_ms)
                return;
        /* ts − receive time is the skew minus the delivery delay; the delay is
         * never negative, so the largest recent sample is the best estimate. */
        t->skew_sample[t->next_sample] = m->ts - recv_ms;
        t->next_sample = (t->next_sample + 1) % n;
        if (t->n_samples < n)
                t->n_samples++;
        if (t->n_samples < (n < 3 ? n : 3))
                return;
        best = t->skew_sample[0];
        for (int i = 1; i < t->n_samples; i++)
                if (t->skew_sample[i] > best)
                        best = t->skew_sample[i];
        if (best > -in->set.skew_min_ms && best < in->set.skew_min_ms)
                best = 0;
        t->row.skew_known = true;
        t->row.skew_ms = best;
        snprintf(detail, sizeof(detail), "terminal clock %+.1f s off", (double)best / 1000.0);
        fault_set(in, t, "clock_skew", llabs(best) > in->set.metrics.clock_skew_limit_ms, BBT_SEVERITY_WARNING,
                  detail, recv_ms);
}

static void handle_hb(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m, bool retained, int64_t recv_ms)
{
        const struct bbt_hb *hb = &m->body.hb;
        struct bbt_day_rollup d;

        update_skew(in, t, m, retained, recv_ms);
        memset(&d, 0, sizeof(d));
        d.day = bbt_day_of_ms(corrected(t, m->ts), in->set.metrics.offset_min);
        d.hb_count = 1;
        pending_add(t, &d);
        /* Only the newest heartbeat describes the terminal now. */
        if (m->seq < t->row.high_seq)
                return;
        t->row.spool_dropped = hb->spool_dropped;
        /* Formatted when the terminal's row is written, once a batch. */
        t->hb.ts = m->ts;
        t->hb.state = hb->state;
        t->hb.uptime = hb->uptime;
        t->hb.cpu = hb->cpu;
        t->hb.mem_available = hb->mem_available;
        t->hb.disk_free = hb->disk_root.free;
        t->hb.has_temp = hb->has_temp;
        t->hb.temp = hb->temp_max;
        t->hb.has_projector = hb->has_projector;
        t->hb.projector_reachable = hb->projector.reachable;
        t->hb.lamp_hours = hb->projector.has_lamp_hours ? hb->projector.lamp_hours : -1;
        t->hb.spool_depth = hb->spool_depth;
        t->hb.clock_synced = hb->clock_synced;
        t->hb_dirty = true;
}

/* The newest heartbeat's summary, as JSON, into the terminal's row. */
static void format_hb(struct term *t)
{
        const struct hb_summary *h = &t->hb;
        char temp[48] = "", proj[96] = "";

        if (h->has_temp)
                snprintf(temp, sizeof(temp), ",\"temp\":%.1f", h->temp);
        if (h->has_projector)
                snprintf(proj, sizeof(proj), ",\"projector\":{\"reachable\":%s,\"lamp_hours\":%" PRId64 "}",
                         h->projector_reachable ? "true" : "false", h->lamp_hours);
        snprintf(t->row.last_hb, sizeof(t->row.last_hb),
                 "{\"ts\":%" PRId64 ",\"state\":\"%s\",\"uptime\":%" PRId64 ",\"cpu\":%.1f,\"mem_available\":%" PRId64
                 ",\"disk_free\":%" PRId64 "%s%s,\"spool_depth\":%" PRId64 ",\"clock_synced\":%s}",
                 h->ts, bbt_usage_state_name(h->state), h->uptime, h->cpu, h->mem_available, h->disk_free, temp,
                 proj, h->spool_depth, h->clock_synced ? "true" : "false");
        t->hb_dirty = false;
}

static int add_usage_rollups(struct bbt_ingest *in, struct term *t, const struct bbt_usage_span *span)
{
        struct bbt_rollup_rules rules;
        struct bbt_day_rollup rows[4];
        size_t n;
        int r = 0;

        rules_of(in, t, &rules);
        n = bbt_rollup_usage(&rules, span, rows, BBT_ELEMENTSOF(rows));
        for (size_t i = 0; r == 0 && i < n; i++)
                r = pending_add(t, &rows[i]);
        return r;
}

static void handle_usage(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m)
{
        const struct bbt_usage *u = &m->body.usage;
        struct bbt_store_usage row = {
                .terminal_id = t->row.id, .seq = m->seq,
                .span = { .start_ms = corrected(t, u->start), .end_ms = corrected(t, u->end), .state = u->state,
                          .interactive_ms = u->interactive_ms },
                .audio_ms = u->audio_ms, .touch = u->touch, .pen = u->pen, .mouse = u->mouse, .key = u->key,
        };

        if (bbt_store_usage_insert(in->store, &row) < 0)
                bbt_log_error("store: usage: %s", bbt_store_error(in->store));
        add_usage_rollups(in, t, &row.span);
        if (u->state == BBT_USAGE_ACTIVE && row.span.end_ms > t->row.last_active_ms)
                t->row.last_active_ms = row.span.end_ms;
}

static void dev_of(const struct term *t, const struct bbt_dev *d, struct bbt_store_device *ret)
{
        memset(ret, 0, sizeof(*ret));
        ret->terminal_id = t->row.id;
        ret->kind = d->kind;
        snprintf(ret->subsystem, sizeof(ret->subsystem), "%s", d->subsystem ? d->subsystem : "");
        snprintf(ret->bus, sizeof(ret->bus), "%s", d->bus ? d->bus : "");
        snprintf(ret->vendor_id, sizeof(ret->vendor_id), "%s", d->vendor_id ? d->vendor_id : "");
        snprintf(ret->model_id, sizeof(ret->model_id), "%s", d->model_id ? d->model_id : "");
        snprintf(ret->vendor, sizeof(ret->vendor), "%s", d->vendor ? d->vendor : "");
        snprintf(ret->model, sizeof(ret->model), "%s", d->model ? d->model : "");
        snprintf(ret->serial, sizeof(ret->serial), "%s", d->serial ? d->serial : "");
        snprintf(ret->syspath, sizeof(ret->syspath), "%s", d->syspath ? d->syspath : "");
}

/* The registry's expected peripherals against the inventory: periph_missing. */
static void check_expected(struct bbt_ingest *in, struct term *t, uint32_t present, int64_t when_ms)
{
        uint32_t missing;
        char detail[256] = "";
        size_t len = 0;

        if (!t->entry || !t->entry->expected)
                return;
        missing = t->entry->expected & ~present;
        for (int k = 0; k < BBT_KIND__COUNT; k++)
                if (missing & (1u << k))
                        len += (size_t)snprintf(detail + len, len < sizeof(detail) ? sizeof(detail) - len : 0,
                                                "%s%s", len ? ", " : "expected but absent: ",
                                                bbt_periph_kind_name((enum bbt_periph_kind)k));
        fault_set(in, t, "periph_missing", missing != 0, BBT_SEVERITY_WARNING, detail, when_ms);
}

static void handle_inventory(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m)
{
        const struct bbt_inventory *inv = &m->body.inventory;
        struct bbt_store_device *devs;
        uint32_t present = 0;

        if (m->seq <= t->row.inventory_seq)
                return; /* an older list, resent: the newer one stands */
        devs = calloc(inv->n_devices ? inv->n_devices : 1, sizeof(*devs));
        if (!devs)
                return;
        for (size_t i = 0; i < inv->n_devices; i++) {
                dev_of(t, &inv->devices[i], &devs[i]);
                present |= 1u << inv->devices[i].kind;
        }
        if (bbt_store_inventory_replace(in->store, t->row.id, devs, inv->n_devices) < 0)
                bbt_log_error("store: inventory: %s", bbt_store_error(in->store));
        else
                t->row.inventory_seq = m->seq;
        free(devs);
        check_expected(in, t, present, corrected(t, m->ts));
}

static void handle_periph(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m)
{
        struct bbt_store_device d;

        dev_of(t, &m->body.periph.dev, &d);
        if (bbt_store_periph_add(in->store, m->seq, corrected(t, m->ts), m->body.periph.action, &d) < 0)
                bbt_log_error("store: periph: %s", bbt_store_error(in->store));
}

static void handle_alert(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m)
{
        const struct bbt_alert *a = &m->body.alert;
        struct bbt_store *s = in->store;
        int r;

        if (a->state == BBT_ALERT_RAISED) {
                struct bbt_store_fault f = { .terminal_id = t->row.id, .severity = a->severity,
                                             .raised_ms = corrected(t, m->ts) };

                snprintf(f.code, sizeof(f.code), "%s", a->code);
                snprintf(f.source, sizeof(f.source), "%s", FAULT_SOURCE_AGENT);
                snprintf(f.detail, sizeof(f.detail), "%s", a->detail ? a->detail : "");
                r = bbt_store_fault_raise(s, &f);
        } else {
                /* The raise may not have arrived yet (lost in a gap and
                 * resent later: messages arrive out of order). Raise first
                 * (a no-op when the fault is open, or already cleared at or
                 * after this clear), then clear: with no raise seen, that
                 * leaves a fault raised and cleared at the same instant, and
                 * the late raise finds it cleared instead of opening a fault
                 * that no clear would ever close. */
                struct bbt_store_fault f = { .terminal_id = t->row.id, .severity = a->severity,
                                             .raised_ms = corrected(t, m->ts) };

                snprintf(f.code, sizeof(f.code), "%s", a->code);
                snprintf(f.source, sizeof(f.source), "%s", FAULT_SOURCE_AGENT);
                snprintf(f.detail, sizeof(f.detail), "%s", a->detail ? a->detail : "");
                r = bbt_store_fault_raise(s, &f);
                if (r == 0)
                        r = bbt_store_fault_clear(s, t->row.id, a->code, FAULT_SOURCE_AGENT, f.raised_ms);
        }
        if (r < 0)
                bbt_log_error("store: alert %s: %s", a->code, bbt_store_error(s));
}

/* Seq W of T is the will of the live session BOOT, which the agent holds
 * back: it becomes a gap of its own that is neither asked for nor lost while
 * that session lasts. */
static void mark_will(struct term *t, int64_t w, uint32_t boot, int64_t now_ms)
{
        for (size_t i = 0; i < t->n_gaps; i++) {
                struct bbt_store_gap *g = &t->gaps[i], mid;

                if (w < g->from || w > g->to)
                        continue;
                if (g->state == BBT_GAP_WILL)
                        return;
                mid = *g;
                mid.from = mid.to = w;
                mid.state = BBT_GAP_WILL;
                mid.boot = boot;
                mid.changed_ms = now_ms;
                mid.cmd_id[0] = '\0';
                if (g->from == w && g->to == w) {
                        *g = mid;
                } else if (g->from == w) {
                        g->from = w + 1;
                        gap_insert_at(t, i, &mid);
                } else if (g->to == w) {
                        g->to = w - 1;
                        gap_insert_at(t, i + 1, &mid);
                } else {
                        struct bbt_store_gap right = *g;

                        right.from = w + 1;
                        g->to = w - 1;
                        if (gap_insert_at(t, i + 1, &mid) == 0)
                                gap_insert_at(t, i + 2, &right);
                }
                t->gaps_dirty = true;
                return;
        }
}

/* The birth of session BOOT says its will has seq W: it comes only when the
 * session ends, so it is expected, not asked for. A W below the series extends
 * it (the will is the session's first seq). */
static void expect_will(struct bbt_ingest *in, struct term *t, int64_t w, uint32_t boot, int64_t now_ms)
{
        extend_series(in, t, w, now_ms);
        mark_will(t, w, boot, now_ms);
}

/* The "missing" array of a resend reply: [{"from","to","reason"}], reason
 * "skipped" (never used), "damaged" (lost from the agent's spool: damage, or
 * its unsynced tail in a power cut), "unstored" (never written: disk full) or
 * "unknown" (one or the other, older than the skipped ranges the agent
 * remembers: counted lost, and turned skipped if the agent names it so later).
 * Unknown reasons are left to the usual resend rounds. */
static void settle_reply_missing(struct bbt_ingest *in, struct term *t, const cJSON *missing, int64_t now_ms)
{
        const cJSON *item;

        cJSON_ArrayForEach(item, missing) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(item, "from");
                const cJSON *to = cJSON_GetObjectItemCaseSensitive(item, "to");
                const cJSON *why = cJSON_GetObjectItemCaseSensitive(item, "reason");
                int64_t a, b;

                if (!cJSON_IsNumber(f) || !cJSON_IsNumber(to) || !cJSON_IsString(why))
                        continue;
                a = (int64_t)f->valuedouble;
                b = (int64_t)to->valuedouble;
                if (a < 0 || b < a)
                        continue;
                if (strcmp(why->valuestring, "skipped") == 0)
                        settle_skipped(in, t, a, b, false, now_ms);
                else if (strcmp(why->valuestring, "damaged") == 0)
                        settle_missing(in, t, a, b, BBT_LOSS_LOST,
                                       "lost from the agent's spool (damage, or a power cut)", now_ms);
                else if (strcmp(why->valuestring, "unstored") == 0)
                        settle_missing(in, t, a, b, BBT_LOSS_LOST,
                                       "never stored by the agent (disk full or write error)", now_ms);
                else if (strcmp(why->valuestring, "unknown") == 0)
                        settle_missing(in, t, a, b, BBT_LOSS_LOST, LOSS_UNKNOWN, now_ms);
        }
}

/* A reply to one of our resend commands: what the agent still had. */
static void tick_terminal(struct bbt_ingest *in, struct term *t, int64_t now_ms);

static void handle_reply(struct bbt_ingest *in, struct term *t, const struct bbt_msg *m, int64_t now_ms)
{
        const struct bbt_cmd_reply *rp = &m->body.reply;
        const cJSON *res = rp->result_json, *fr, *lr, *wh, *w;
        int64_t first_retained = -1, last_seq = -1;

        if (strncmp(rp->id, "rs-", 3) != 0)
                return;
        fr = res ? cJSON_GetObjectItemCaseSensitive(res, "first_retained") : NULL;
        lr = res ? cJSON_GetObjectItemCaseSensitive(res, "last_seq") : NULL;
        if (cJSON_IsNumber(fr))
                first_retained = (int64_t)fr->valuedouble;
        if (cJSON_IsNumber(lr))
                last_seq = (int64_t)lr->valuedouble;
        wh = res ? cJSON_GetObjectItemCaseSensitive(res, "withheld") : NULL;
        /* What the agent knows of the seqs it does not hold: never used, or
         * records lost on the terminal. Not to be asked for again. */
        if (rp->ok)
                settle_reply_missing(in, t, res ? cJSON_GetObjectItemCaseSensitive(res, "missing") : NULL, now_ms);
        for (size_t i = 0; i < t->n_gaps; i++) {
                struct bbt_store_gap *g = &t->gaps[i];

                if (strcmp(g->cmd_id, rp->id) != 0)
                        continue;
                g->cmd_id[0] = '\0';
                g->changed_ms = now_ms;
                t->gaps_dirty = true;
                mark_dirty(in, t);
                if (!rp->ok) {
                        bbt_log_warning("%s/%s/%s: resend %s refused: %s", t->row.county, t->row.school,
                                        t->row.terminal, rp->id, rp->error ? rp->error : "");
                        g->state = BBT_GAP_WAITING;
                        continue;
                }
                g->state = BBT_GAP_ANSWERED;
                /* Below first_retained the agent's spool no longer has them. */
                if (first_retained > g->from) {
                        int64_t end = first_retained - 1 < g->to ? first_retained - 1 : g->to;

                        record_loss(in, t, g->from, end, "no longer in the agent's spool", now_ms);
                        if (end == g->to) {
                                gap_remove_at(t, i);
                                i--;
                                continue;
                        }
                        g->from = end + 1;
                }
                if (last_seq >= 0 && last_seq < g->to) {
                        int64_t start = last_seq + 1 > g->from ? last_seq + 1 : g->from;

                        record_loss_kind(in, t, start, g->to, BBT_LOSS_SKIPPED, "never produced by the agent",
                                         now_ms);
                        if (start == g->from) {
                                gap_remove_at(t, i);
                                i--;
                                continue;
                        }
                        g->to = start - 1;
                }
        }
        /* The live session's will: it arrives when the session ends. */
        if (rp->ok && cJSON_IsArray(wh))
                cJSON_ArrayForEach(w, wh)
                        if (cJSON_IsNumber(w))
                                mark_will(t, (int64_t)w->valuedouble, m->boot, now_ms);
        /* The terminal answers: its next gap is asked for now, not at the next
         * tick (one request at a time still; a backlog of gaps after a crash
         * loop is settled at the pace of the replies). */
        tick_terminal(in, t, now_ms);
}

static struct term *terminal_for(struct bbt_ingest *in, const struct bbt_topic *tp, int64_t recv_ms)
{
        struct term **sl, *t;

        if (in->table_size == 0 && table_grow(in) < 0)
                return NULL;
        sl = slot(in, tp->county, tp->school, tp->terminal);
        if (*sl)
                return *sl;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        snprintf(t->row.county, sizeof(t->row.county), "%s", tp->county);
        snprintf(t->row.school, sizeof(t->row.school), "%s", tp->school);
        snprintf(t->row.terminal, sizeof(t->row.terminal), "%s", tp->terminal);
        t->row.first_seq = t->row.high_seq = -1;
        t->row.boot = -1;
        t->row.inventory_seq = -1;
        t->row.first_seen_ms = recv_ms;
        if (ensure_tx(in) < 0 || bbt_store_terminal_insert(in->store, &t->row) < 0 || add_term(in, t) < 0) {
                bbt_log_error("store: cannot add terminal %s/%s/%s: %s", tp->county, tp->school, tp->terminal,
                              bbt_store_error(in->store));
                free(t);
                return NULL;
        }
        if (!t->entry && in->reg && in->reg->n_terminals > 0)
                bbt_log_notice("terminal %s/%s/%s is not in the registry; its figures count under its school code",
                               tp->county, tp->school, tp->terminal);
        return t;
}

void bbt_ingest_message(struct bbt_ingest *in, const char *topic, const void *payload, size_t len, bool retained,
                        int64_t recv_ms)
{
        struct bbt_topic tp;
        struct bbt_msg m;
        struct bbt_error e;
        struct term *t;
        char why[160], etext[300];
        bool was_missing;
        int r;

        in->stats.received++;
        if (bbt_topic_parse(topic, &tp, why, sizeof(why)) < 0) {
                reject(in, BBT_REJECT_TOPIC, recv_ms, "topic %.120s: %s", topic, why);
                return;
        }
        if (tp.channel == BBT_CH_CMD) {
                in->stats.ignored++; /* commands (ours or an admin's), not telemetry */
                return;
        }
        r = bbt_msg_decode(tp.channel, payload, len, &m, &e);
        if (r < 0) {
                enum bbt_reject why_code = r == -EMSGSIZE          ? BBT_REJECT_SIZE
                                           : r == -EBADMSG         ? BBT_REJECT_JSON
                                           : r == -EPROTONOSUPPORT ? BBT_REJECT_VERSION
                                           : r == -EINVAL          ? BBT_REJECT_FIELD
                                                                   : BBT_REJECT_STORE;

                /* JSON, but not an object ("[1]", "5"): the decoder calls that
                 * a field error at the top; we count it as not a message at all. */
                if (r == -EINVAL && strcmp(e.path, bbt_channel_name(tp.channel)) == 0 &&
                    strcmp(e.rule, "expected object") == 0)
                        why_code = BBT_REJECT_JSON;

                reject(in, why_code, recv_ms, "%s: rejected: %s", topic, bbt_error_format(&e, etext, sizeof(etext)));
                return;
        }
        if (ensure_tx(in) < 0 || !(t = terminal_for(in, &tp, recv_ms))) {
                reject(in, BBT_REJECT_STORE, recv_ms, "%s: seq %" PRId64 ": not stored: %s", topic, m.seq,
                       bbt_store_error(in->store));
                bbt_msg_free(&m);
                return;
        }
        /* Made after our outstanding resend request: the reply, if any, is not
         * stuck behind a backlog any more (see unanswered()). */
        if (t->request_ms && !t->heard_after_request_ms && corrected(t, m.ts) >= t->request_ms)
                t->heard_after_request_ms = recv_ms;
        r = track_seq(in, t, m.seq, recv_ms, &was_missing);
        if (r >= 0) {
                uint64_t hash = payload_hash(payload, len), stored_hash = 0;
                int stored = bbt_store_raw_insert(in->store, t->row.id, m.seq, tp.channel, m.ts, recv_ms, m.boot,
                                                        payload, len, hash, &stored_hash);

                if (stored < 0) {
                        reject(in, BBT_REJECT_STORE, recv_ms, "%s: seq %" PRId64 ": not stored: %s", topic, m.seq,
                               bbt_store_error(in->store));
                        bbt_msg_free(&m);
                        return;
                }
                if (r == 0 && stored == 1) {
                        struct bbt_store_loss l;
                        int found = bbt_store_loss_find(in->store, t->row.id, m.seq, m.seq, &l);

                        if (found == 1) {
                                /* Recorded as lost or skipped, and here after all. */
                                bbt_log_notice("%s: seq %" PRId64 " arrived after being recorded as %s", topic, m.seq,
                                               l.kind == BBT_LOSS_SKIPPED ? "skipped" : "lost");
                                loss_arrived(in, t, m.seq, &l, recv_ms);
                        } else {
                                /* Seen long ago, its raw row pruned since: a duplicate. */
                                if (found < 0)
                                        bbt_log_error("store: loss: %s", bbt_store_error(in->store));
                                stored = 0;
                        }
                }
                if (stored == 0 && stored_hash && stored_hash != hash &&
                    check_conflict(in, t, &m, tp.channel, payload, len, hash, stored_hash, recv_ms)) {
                        bbt_msg_free(&m);
                        return;
                }
                r = stored;
        }
        if (r <= 0) {
                if (r == 0) {
                        t->row.duplicates++;
                        in->stats.duplicates++;
                        in->dup_delta++;
                        mark_dirty(in, t);
                }
                bbt_msg_free(&m);
                return;
        }
        switch (tp.channel) {
        case BBT_CH_STATE:
                handle_state(in, t, &m, recv_ms);
                break;
        case BBT_CH_HB:
                handle_hb(in, t, &m, retained, recv_ms);
                break;
        case BBT_CH_USAGE:
                handle_usage(in, t, &m);
                break;
        case BBT_CH_PERIPH:
                handle_periph(in, t, &m);
                break;
        case BBT_CH_INVENTORY:
                handle_inventory(in, t, &m);
                break;
        case BBT_CH_ALERT:
                handle_alert(in, t, &m);
                break;
        case BBT_CH_CMD_REPLY:
                handle_reply(in, t, &m, recv_ms);
                break;
        default:
                break;
        }
        bbt_msg_free(&m);
        t->row.received++;
        if (recv_ms > t->row.last_seen_ms)
                t->row.last_seen_ms = recv_ms;
        in->stats.stored++;
        in->stored_delta++;
        mark_dirty(in, t);
        if (++in->batch_n >= in->set.batch_size)
                bbt_ingest_flush(in);
}

/* ---- resend ---- */

static int send_resend(struct bbt_ingest *in, struct term *t, struct bbt_store_gap *g, int64_t now_ms)
{
        struct bbt_topic tp;
        struct bbt_msg m;
        char topic[BBT_TOPIC_MAX], id[65];
        char *json = NULL;
        size_t len;
        int r;

        if (!in->publish || !in->connected)
                return -ENOTCONN;
        snprintf(tp.county, sizeof(tp.county), "%s", t->row.county);
        snprintf(tp.school, sizeof(tp.school), "%s", t->row.school);
        snprintf(tp.terminal, sizeof(tp.terminal), "%s", t->row.terminal);
        tp.channel = BBT_CH_CMD;
        r = bbt_topic_build(&tp, topic, sizeof(topic));
        if (r < 0)
                return r;
        snprintf(id, sizeof(id), "rs-%" PRId64 "-%" PRId64, in->boot, in->cmd_seq + 1);
        bbt_msg_init(&m, BBT_CH_CMD);
        m.seq = in->cmd_seq + 1;
        m.ts = now_ms;
        m.boot = (uint32_t)in->boot;
        m.body.cmd.id = id;
        m.body.cmd.op = "resend";
        m.body.cmd.args.resend.from = g->from;
        m.body.cmd.args.resend.to = g->to;
        r = bbt_msg_encode(&m, &json, &len, NULL);
        if (r < 0)
                return r;
        r = in->publish(in->userdata, topic, json, len);
        free(json);
        if (r < 0)
                return r;
        in->cmd_seq++;
        in->stats.resends++;
        snprintf(g->cmd_id, sizeof(g->cmd_id), "%s", id);
        g->state = BBT_GAP_REQUESTED;
        g->attempts++;
        g->changed_ms = now_ms;
        t->request_ms = now_ms;
        t->heard_after_request_ms = 0;
        t->gaps_dirty = true;
        mark_dirty(in, t);
        bbt_log_info("%s/%s/%s: asked for seq %" PRId64 "..%" PRId64 " again (%s, attempt %d)", t->row.county,
                     t->row.school, t->row.terminal, g->from, g->to, id, g->attempts);
        return 0;
}

/* Whether the request out for G is overdue. Not by the clock alone: after an
 * outage the reply waits behind the broker's backlog, in the aggregator's own
 * queue; it is overdue only resend_timeout after a message the terminal made
 * after the request has arrived (so the backlog before it has drained), or
 * RESEND_BACKSTOP times that after the request if nothing comes. */
static bool unanswered(const struct term *t, const struct bbt_store_gap *g, const struct bbt_ingest_settings *s,
                       int64_t now_ms)
{
        if (t->heard_after_request_ms && t->request_ms == g->changed_ms)
                return now_ms - t->heard_after_request_ms >= s->resend_timeout_ms;
        return now_ms - g->changed_ms >= RESEND_BACKSTOP * s->resend_timeout_ms;
}

static void tick_terminal(struct bbt_ingest *in, struct term *t, int64_t now_ms)
{
        const struct bbt_ingest_settings *s = &in->set;
        bool outstanding = false;

        for (size_t i = 0; i < t->n_gaps; i++)
                if (t->gaps[i].state == BBT_GAP_REQUESTED)
                        outstanding = true;
        for (size_t i = 0; i < t->n_gaps; i++) {
                struct bbt_store_gap *g = &t->gaps[i];
                const char *lost = NULL;

                if (g->state == BBT_GAP_WILL) {
                        /* Its session still runs: wait. A newer session means
                         * it ended without its will arriving: ask for it (the
                         * agent keeps it in its spool). */
                        if (t->row.boot <= g->boot)
                                continue;
                        g->state = BBT_GAP_WAITING;
                        g->attempts = 0;
                        g->detected_ms = g->changed_ms = now_ms;
                        t->gaps_dirty = true;
                        mark_dirty(in, t);
                        continue;
                }
                if (now_ms - g->detected_ms >= s->gap_give_up_ms)
                        lost = "not resent in time";
                else if (g->state == BBT_GAP_REQUESTED && unanswered(t, g, s, now_ms)) {
                        g->state = BBT_GAP_WAITING;
                        g->cmd_id[0] = '\0';
                        t->gaps_dirty = true;
                        mark_dirty(in, t);
                        outstanding = false;
                        if (g->attempts >= s->resend_attempts)
                                lost = "no answer to resend";
                } else if (g->state == BBT_GAP_ANSWERED && now_ms - g->changed_ms >= s->resend_settle_ms) {
                        g->state = BBT_GAP_WAITING;
                        t->gaps_dirty = true;
                        mark_dirty(in, t);
                        if (g->attempts >= s->resend_attempts)
                                lost = "resent but never received";
                }
                if (lost) {
                        record_loss(in, t, g->from, g->to, lost, now_ms);
                        gap_remove_at(t, i);
                        i--;
                        t->gaps_dirty = true;
                        continue;
                }
                /* One request at a time per terminal, and only to a terminal
                 * that can answer: online, or heard from lately (its birth may
                 * itself be in a gap). */
                if (g->state != BBT_GAP_WAITING || outstanding ||
                    !(t->row.online || (t->row.last_seen_ms > t->row.offline_since_ms &&
                                        now_ms - t->row.last_seen_ms < REACHABLE_MS)))
                        continue;
                if (now_ms - (g->attempts ? g->changed_ms : g->detected_ms) < s->gap_grace_ms)
                        continue;
                if (g->to - g->from + 1 > s->resend_max_range) {
                        struct bbt_store_gap rest = *g;

                        rest.from = g->from + s->resend_max_range;
                        g->to = rest.from - 1;
                        if (gap_insert_at(t, i + 1, &rest) < 0)
                                return;
                        g = &t->gaps[i];
                }
                if (ensure_tx(in) == 0 && send_resend(in, t, g, now_ms) == 0)
                        outstanding = true;
        }
}

void bbt_ingest_tick(struct bbt_ingest *in, int64_t now_ms)
{
        for (size_t i = 0; i < in->n_terms; i++)
                if (in->terms[i]->n_gaps)
                        tick_terminal(in, in->terms[i], now_ms);
}

void bbt_ingest_set_connected(struct bbt_ingest *in, bool connected, int64_t now_ms)
{
        in->connected = connected;
        if (connected)
                in->connected_ms = now_ms;
}

/* ---- rollups from scratch ---- */

struct rebuild_ctx {
        struct bbt_ingest *in;
        struct term *t;
        int r;
};

static int rebuild_cb(void *u, const struct bbt_store_usage *usage)
{
        struct rebuild_ctx *c = u;

        if (!c->t || c->t->row.id != usage->terminal_id)
                c->t = find_by_id(c->in, usage->terminal_id);
        if (!c->t)
                return 0;
        mark_dirty(c->in, c->t);
        return add_usage_rollups(c->in, c->t, &usage->span);
}

static uint64_t rules_hash(const struct bbt_ingest *in)
{
        uint64_t h = in->cal ? bbt_calendar_bells_hash(in->cal) : 0;

        h ^= (uint64_t)(uint32_t)in->set.metrics.margin_min * 0x9e3779b97f4a7c15ull;
        h ^= (uint64_t)(uint32_t)(in->set.metrics.offset_min + 100000) * 0xc2b2ae3d27d4eb4full;
        return h & 0x7fffffffffffffffull;
}

int bbt_ingest_rebuild_rollups(struct bbt_ingest *in)
{
        struct rebuild_ctx c = { .in = in };
        int r;

        r = bbt_ingest_flush(in);
        if (r == 0)
                r = ensure_tx(in);
        if (r == 0)
                r = bbt_store_days_clear(in->store);
        if (r == 0)
                r = bbt_store_usage_each(in->store, rebuild_cb, &c);
        if (r == 0)
                r = bbt_store_meta_set(in->store, "rollup_rules", (int64_t)rules_hash(in));
        if (r == 0)
                return bbt_ingest_flush(in);
        bbt_store_rollback(in->store);
        in->in_tx = false;
        clear_dirty(in);
        return r;
}

static int check_rules(struct bbt_ingest *in)
{
        int64_t stored = 0;
        int r = bbt_store_meta_get(in->store, "rollup_rules", &stored);

        if (r == 0 && stored == (int64_t)rules_hash(in))
                return 0;
        if (r == -ENOENT) {
                /* A new store: nothing to rebuild. */
                r = ensure_tx(in);
                if (r == 0)
                        r = bbt_store_meta_set(in->store, "rollup_rules", (int64_t)rules_hash(in));
                return r == 0 ? bbt_ingest_flush(in) : r;
        }
        if (r < 0)
                return r;
        bbt_log_notice("bell schedules or school-hour settings changed: rebuilding the usage rollups");
        return bbt_ingest_rebuild_rollups(in);
}

int bbt_ingest_set_registry(struct bbt_ingest *in, const struct bbt_registry *reg, const struct bbt_calendar *cal,
                            int64_t now_ms)
{
        int r = bbt_ingest_flush(in);

        in->reg = reg;
        in->cal = cal;
        for (size_t i = 0; i < in->n_terms; i++)
                link_registry(in, in->terms[i]);
        return r == 0 ? check_rules(in) : r;
}

int bbt_ingest_prune(struct bbt_ingest *in, int64_t raw_retention_ms, int64_t usage_retention_ms, int64_t now_ms)
{
        int r = bbt_ingest_flush(in);

        if (r == 0)
                r = ensure_tx(in);
        if (r == 0)
                r = bbt_store_prune(in->store, raw_retention_ms ? now_ms - raw_retention_ms : 0,
                                          usage_retention_ms ? now_ms - usage_retention_ms : 0);
        if (r < 0) {
                bbt_store_rollback(in->store);
                in->in_tx = false;
                return r;
        }
        in->batch_n++;
        return bbt_ingest_flush(in);
}

void bbt_ingest_get_stats(const struct bbt_ingest *in, struct bbt_ingest_stats *ret)
{
        *ret = in->stats;
}

int bbt_ingest_new(struct bbt_store *store, const struct bbt_ingest_settings *settings,
                   const struct bbt_registry *reg, const struct bbt_calendar *cal, bbt_ingest_publish_fn publish,
                   void *userdata, int64_t now_ms, struct bbt_ingest **ret, char *err, size_t err_size)
{
        struct bbt_ingest *in = calloc(1, sizeof(*in));
        int r;

        if (!in)
                return -ENOMEM;
        in->store = store;
        in->set = *settings;
        if (in->set.batch_size < 1)
                in->set.batch_size = 1;
        in->reg = reg;
        in->cal = cal;
        in->publish = publish;
        in->userdata = userdata;
        in->reject_log = (struct log_limit){ .window_ms = now_ms, .what = "rejected messages" };
        in->conflict_log = (struct log_limit){ .window_ms = now_ms, .what = "seq conflicts" };
        in->commit_log = (struct log_limit){ .window_ms = mono_ms(), .what = "failed commits" };
        r = load_state(in);
        if (r == 0 && bbt_store_meta_get(store, "boot", &in->boot) == -ENOENT)
                in->boot = 0;
        in->boot++;
        if (r == 0)
                r = ensure_tx(in);
        if (r == 0)
                r = bbt_store_meta_set(store, "boot", in->boot);
        if (r == 0)
                r = bbt_ingest_flush(in);
        if (r == 0)
                r = check_rules(in);
        if (r < 0) {
                snprintf(err, err_size, "store: %s", bbt_store_error(store));
                if (in->in_tx)
                        bbt_store_rollback(store);
                free_terms(in);
                free(in);
                return r;
        }
        *ret = in;
        return 0;
}

void bbt_ingest_free(struct bbt_ingest *in)
{
        if (!in)
                return;
        if (bbt_ingest_flush(in) < 0)
                bbt_log_error("store: the last batch was not committed; the agents will be asked for it again");
        free_terms(in);
        free(in);
}
