/* The terminal cache: every terminal's row and gaps in memory, changed rows written back once a batch. */
/*
 * The cache is loaded from the store when ingest starts (and again after a
 * failed commit); from then on it is the truth and the store its copy. A
 * message changes a terminal in memory and marks it dirty; the batch commit
 * writes each dirty terminal back and adds the batch's counters, in one
 * transaction with the batch's messages.
 *
 * ONE WRITER. Alone on its store, ingest writes terminal rows and gap lists
 * whole from memory (bbt_store_terminal_update(), bbt_store_gaps_replace())
 * and decides which seqs are missing from memory alone.
 *
 * SEVERAL WRITERS (a share group, settings.shared). Every aggregator of the
 * group gets part of every terminal's messages. Memory is then only a copy
 * of what the store held when the open transaction locked the terminal's
 * row: bbt__cache_claim() locks the row before anything of the terminal is
 * read or changed and reads the row and its gaps afresh; the batch writes
 * them back whole as alone, and the lock, held to the commit, keeps every
 * other writer out of them meanwhile. A writer never waits for a row while
 * it holds others (it commits its batch first), so no two wait for each
 * other. What terminals share — counters and the school-day aggregates — is
 * added, never overwritten; the start count and the command counter are
 * kept per aggregator (meta "boot@<name>", "cmd_seq@<name>"), and command
 * ids carry the aggregator's tag. docs/aggregator.md, "Several aggregators".
 */
#include "cache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/array.h"
#include "bbt/base.h"
#include "bbt/log.h"

/* The names of the counters after the rejects, in enum bbt_counter's order. */
static const char *const counter_names[BBT_COUNTER__COUNT - BBT_REJECT__COUNT] = {
        "duplicates", "stored", "lost", "recovered", "stale_state", "skipped", "seq_conflict",
};

static const char *counter_name(int c)
{
        return c < BBT_REJECT__COUNT ? bbt_reject_name((enum bbt_reject)c) : counter_names[c - BBT_REJECT__COUNT];
}

/* ---- the table ---- */

static uint64_t key_hash(const char *county, const char *school, const char *terminal)
{
        uint64_t h = BBT_FNV1A_BASIS;
        const char *parts[3] = { county, school, terminal };

        for (int i = 0; i < 3; i++)
                h = bbt_fnv1a(bbt_fnv1a(h, parts[i], strlen(parts[i])), "/", 1);
        return h;
}

static struct bbt_term **slot(struct bbt_ingest *in, const char *county, const char *school, const char *terminal)
{
        size_t mask = in->table_size - 1, i = (size_t)key_hash(county, school, terminal) & mask;

        for (;; i = (i + 1) & mask) {
                struct bbt_term *t = in->table[i];

                if (!t || (strcmp(t->row.terminal, terminal) == 0 && strcmp(t->row.school, school) == 0 &&
                           strcmp(t->row.county, county) == 0))
                        return &in->table[i];
        }
}

static int table_grow(struct bbt_ingest *in)
{
        size_t size = in->table_size ? in->table_size * 2 : 1024;
        struct bbt_term **old = in->table;
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

static void link_registry(struct bbt_ingest *in, struct bbt_term *t)
{
        const struct bbt_school *school = in->reg ? bbt_registry_school(in->reg, t->row.school) : NULL;

        /* The same codes published under another county are another terminal. */
        t->entry = school && strcmp(school->county, t->row.county) == 0
                           ? bbt_registry_terminal(in->reg, t->row.school, t->row.terminal)
                           : NULL;
        t->bells = in->cal ? bbt_calendar_bells(in->cal, t->row.county, t->row.school) : bbt_bells_default();
}

void bbt__cache_relink(struct bbt_ingest *in)
{
        for (size_t i = 0; i < in->n_terms; i++)
                link_registry(in, in->terms[i]);
}

/* Adds T (owned from now on) to the table. */
static int add_term(struct bbt_ingest *in, struct bbt_term *t)
{
        int r;

        if ((in->n_terms + 1) * 2 > in->table_size) {
                r = table_grow(in);
                if (r < 0)
                        return r;
        }
        r = bbt_array_reserve((void **)&in->terms, &in->cap_terms, in->n_terms + 1, sizeof(*in->terms));
        if (r < 0)
                return r;
        in->terms[in->n_terms++] = t;
        *slot(in, t->row.county, t->row.school, t->row.terminal) = t;
        link_registry(in, t);
        in->stats.terminals = in->n_terms;
        return 0;
}

void bbt__cache_free(struct bbt_ingest *in)
{
        for (size_t i = 0; i < in->n_terms; i++) {
                bbt_gaps_free(&in->terms[i]->gaps);
                bbt_day_set_free(&in->terms[i]->pending);
                free(in->terms[i]);
        }
        free(in->terms);
        free(in->table);
        in->terms = NULL;
        in->table = NULL;
        in->n_terms = in->cap_terms = in->table_size = 0;
        in->dirty = NULL;
        in->claimed = NULL;
}

void bbt__cache_mark_dirty(struct bbt_ingest *in, struct bbt_term *t)
{
        if (!t->dirty) {
                t->dirty = true;
                t->next_dirty = in->dirty;
                in->dirty = t;
        }
}

/* ---- several writers ---- */

static void link_claimed(struct bbt_ingest *in, struct bbt_term *t)
{
        t->claimed = true;
        t->next_claimed = in->claimed;
        in->claimed = t;
        in->stats.claims++;
}

static int refresh_gap_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        struct bbt_term *t = u;

        (void)terminal_id;
        return bbt_gaps_insert(&t->gaps, t->gaps.n, g);
}

/* T's row becomes ROW (just read under its lock) and its gaps the store's
 * (N_GAPS of them). An outstanding request of another aggregator's is
 * waited for as after a restart: from a message made after it. */
static int refresh(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_store_terminal *row, int64_t n_gaps)
{
        int64_t before = bbt_gaps_count(&t->gaps), after;
        int r = 0;

        t->row = *row;
        bbt_gaps_free(&t->gaps);
        if (n_gaps > 0)
                r = bbt_store_terminal_gaps_each(in->store, t->row.id, refresh_gap_cb, t);
        after = bbt_gaps_count(&t->gaps);
        in->stats.open_gap_seqs = in->stats.open_gap_seqs + (uint64_t)after - (uint64_t)before;
        for (size_t i = 0; i < t->gaps.n; i++)
                if (t->gaps.v[i].state == BBT_GAP_REQUESTED && t->request_ms != t->gaps.v[i].changed_ms) {
                        t->request_ms = t->gaps.v[i].changed_ms;
                        t->heard_after_request_ms = 0;
                }
        return r;
}

int bbt__cache_claim(struct bbt_ingest *in, struct bbt_term *t, bool wait)
{
        struct bbt_store_terminal row;
        int64_t n_gaps = 0;
        int r;

        if (!in->set.shared || t->claimed)
                return 1;
        memset(&row, 0, sizeof(row));
        row.id = t->row.id;
        r = bbt__cache_begin(in);
        if (r == 0)
                r = bbt_store_terminal_lock(in->store, &row, false, &n_gaps);
        if (r == 0) {
                if (!wait)
                        return 0;
                /* Another aggregator's batch holds it: commit ours (hold
                 * nothing while waiting: no two writers wait for each other),
                 * then wait for its commit. */
                in->stats.claim_waits++;
                bbt__cache_commit(in);
                r = bbt__cache_begin(in);
                if (r == 0)
                        r = bbt_store_terminal_lock(in->store, &row, true, &n_gaps);
        }
        if (r < 0)
                return r;
        r = refresh(in, t, &row, n_gaps);
        if (r < 0)
                return r;
        link_claimed(in, t);
        return 1;
}

struct bbt_term *bbt__cache_claim_id(struct bbt_ingest *in, int64_t id)
{
        struct bbt_store_terminal row;
        struct bbt_term **sl, *t;
        int64_t n_gaps = 0;

        memset(&row, 0, sizeof(row));
        row.id = id;
        if (bbt__cache_begin(in) < 0 || bbt_store_terminal_lock(in->store, &row, false, &n_gaps) != 1)
                return NULL;
        if (in->table_size == 0 && table_grow(in) < 0)
                return NULL;
        sl = slot(in, row.county, row.school, row.terminal);
        t = *sl;
        if (t && t->claimed)
                return t;
        if (!t) {
                t = calloc(1, sizeof(*t));
                if (!t)
                        return NULL;
                t->row = row;
                if (add_term(in, t) < 0) {
                        free(t);
                        return NULL;
                }
        }
        if (refresh(in, t, &row, n_gaps) < 0)
                return NULL;
        link_claimed(in, t);
        return t;
}

/* Shared: a terminal not in memory. Another aggregator may be adding it
 * too, or have added it: the batch so far is committed first (its rows are
 * not held while waiting for the other's), then the row is added, or locked
 * and read if it is there. */
static struct bbt_term *shared_add(struct bbt_ingest *in, struct bbt_term *t)
{
        struct bbt_store_terminal row = t->row;
        int64_t n_gaps = 0;
        int r;

        bbt__cache_commit(in);
        r = bbt__cache_begin(in);
        if (r == 0)
                r = bbt_store_terminal_insert(in->store, &row);
        if (r == -EEXIST) {
                row.id = 0;
                r = bbt_store_terminal_lock(in->store, &row, true, &n_gaps);
        }
        if (r >= 0)
                r = refresh(in, t, &row, n_gaps);
        if (r >= 0)
                r = add_term(in, t);
        if (r < 0) {
                bbt_log_error("store: cannot add terminal %s/%s/%s: %s", t->row.county, t->row.school, t->row.terminal,
                              bbt_store_error(in->store));
                bbt_gaps_free(&t->gaps);
                free(t);
                return NULL;
        }
        link_claimed(in, t);
        return t;
}

struct bbt_term *bbt__cache_get(struct bbt_ingest *in, const struct bbt_topic *tp, int64_t recv_ms)
{
        struct bbt_term **sl, *t;

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
        if (in->set.shared)
                return shared_add(in, t);
        if (bbt__cache_begin(in) < 0 || bbt_store_terminal_insert(in->store, &t->row) < 0 || add_term(in, t) < 0) {
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

/* ---- loading ---- */

static int load_terminal_cb(void *u, const struct bbt_store_terminal *row)
{
        struct bbt_ingest *in = u;
        struct bbt_term *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        t->row = *row;
        if (t->row.skew_known)
                bbt_skew_seed(&t->skew, t->row.skew_ms);
        r = add_term(in, t);
        if (r < 0)
                free(t);
        return r;
}

static struct bbt_term *find_by_id(struct bbt_ingest *in, int64_t id)
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

static int load_gap_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        struct bbt_ingest *in = u;
        struct bbt_term *t = find_by_id(in, terminal_id);

        if (!t)
                return 0;
        in->stats.open_gap_seqs += (uint64_t)(g->to - g->from + 1);
        if (g->state == BBT_GAP_REQUESTED) {
                /* Its answer is waited for afresh: from a message made after it. */
                t->request_ms = g->changed_ms;
                t->heard_after_request_ms = 0;
        }
        return bbt_gaps_insert(&t->gaps, t->gaps.n, g);
}

int bbt__cache_load(struct bbt_ingest *in)
{
        int r;

        bbt__cache_free(in);
        in->stats.open_gap_seqs = 0;
        /* New terminal structs: none is due a power schedule or knows what it
         * was sent; the next tick looks at every online one again. */
        in->power_due_n = in->power_cursor = 0;
        in->power_day = 0;
        r = bbt_store_terminals_each(in->store, load_terminal_cb, in);
        if (r == 0)
                r = bbt_store_gaps_each(in->store, load_gap_cb, in);
        if (r == 0 && bbt_store_meta_get(in->store, in->cmd_seq_key, &in->cmd_seq) == -ENOENT)
                in->cmd_seq = 0;
        return r;
}

/* ---- the batch ---- */

int bbt__cache_begin(struct bbt_ingest *in)
{
        int r;

        if (in->in_tx)
                return 0;
        r = bbt_store_begin(in->store);
        if (r == 0)
                in->in_tx = true;
        return r;
}

/* The newest heartbeat's summary, as JSON, into the terminal's row. */
static void format_hb(struct bbt_term *t)
{
        const struct bbt_hb_summary *h = &t->hb;
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

static int write_dirty(struct bbt_ingest *in)
{
        struct bbt_store *s = in->store;
        int r = 0;

        for (struct bbt_term *t = in->dirty; t && r == 0; t = t->next_dirty) {
                for (size_t i = 0; r == 0 && i < t->pending.n; i++)
                        r = bbt_store_day_add(s, t->row.id, &t->pending.v[i]);
                if (r == 0 && t->gaps_dirty)
                        r = bbt_store_gaps_replace(s, t->row.id, t->gaps.v, t->gaps.n);
                if (t->hb_dirty)
                        format_hb(t);
                if (r == 0)
                        r = bbt_store_terminal_update(s, &t->row);
        }
        for (int i = 0; r == 0 && i < BBT_COUNTER__COUNT; i++)
                if (in->counter_delta[i])
                        r = bbt_store_counter_add(s, counter_name(i), in->counter_delta[i]);
        if (r == 0)
                r = bbt_store_meta_set(s, in->cmd_seq_key, in->cmd_seq);
        return r;
}

static void clear_dirty(struct bbt_ingest *in)
{
        struct bbt_term *t = in->dirty;

        while (t) {
                struct bbt_term *next = t->next_dirty;

                t->dirty = t->gaps_dirty = false;
                t->pending.n = 0;
                t->next_dirty = NULL;
                t = next;
        }
        in->dirty = NULL;
        for (t = in->claimed; t; t = t->next_claimed)
                t->claimed = false;
        in->claimed = NULL;
        memset(in->counter_delta, 0, sizeof(in->counter_delta));
        in->batch_n = 0;
}

/* Whether counters changed that no dirty terminal will carry to the store
 * (rejected messages: they belong to no terminal). */
static bool counters_pending(const struct bbt_ingest *in)
{
        for (int i = 0; i < BBT_COUNTER__COUNT; i++)
                if (in->counter_delta[i])
                        return true;
        return false;
}

/* A successful commit that took SECONDS, into the latency histogram. */
static void observe_commit(struct bbt_ingest_stats *s, double seconds)
{
        s->commits++;
        s->commit_seconds += seconds;
        for (int i = 0; i < BBT_COMMIT_BUCKETS; i++)
                if (seconds <= bbt_commit_bucket_s[i])
                        s->commit_le[i]++;
}

static double mono_seconds(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bbt__cache_commit(struct bbt_ingest *in)
{
        double start;
        int r;

        if (!in->in_tx && !in->dirty && !counters_pending(in))
                return 0;
        start = mono_seconds();
        r = bbt__cache_begin(in);
        if (r == 0)
                r = write_dirty(in);
        if (r == 0)
                r = bbt_store_commit(in->store);
        if (r == 0) {
                in->in_tx = false;
                observe_commit(&in->stats, mono_seconds() - start);
                clear_dirty(in);
                return 0;
        }
        /* The batch is gone from the store but not from memory: roll back and
         * reload, so that what it held shows up as gaps and is asked for again. */
        in->stats.commit_failures++;
        if (bbt__log_limit_ok(&in->commit_log, bbt__mono_ms(), 6))
                bbt_log_error("store: cannot commit %" PRId64 " messages: %s; rolled back, they will be asked for "
                              "again (%" PRIu64 " failed commits so far)",
                              in->batch_n, bbt_store_error(in->store), in->stats.commit_failures);
        bbt__cache_rollback(in);
        /* Shared, memory is read afresh under each lock anyway. */
        if (!in->set.shared && bbt__cache_load(in) < 0)
                bbt_log_error("store: cannot reload the state: %s", bbt_store_error(in->store));
        return r;
}

void bbt__cache_rollback(struct bbt_ingest *in)
{
        bbt_store_rollback(in->store);
        in->in_tx = false;
        clear_dirty(in);
}
