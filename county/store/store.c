/* The store front: picks the backend for a location; the calls every user makes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dates.h"
#include "store.h"

static const struct bbt_store_scope everything = BBT_STORE_SCOPE_ALL;

int bbt_store_open(const char *location, bool read_only, struct bbt_store **ret, char *err, size_t err_size)
{
        if (!location || !*location) {
                if (err)
                        snprintf(err, err_size, "no store location given");
                return -EINVAL;
        }
        if (bbt_store_location_is_pg(location)) {
#ifdef BBT_HAVE_POSTGRESQL
                return bbt_store_pg_open(location, read_only, ret, err, err_size);
#else
                char shown[512];

                if (err)
                        snprintf(err, err_size, "%s: the PostgreSQL backend is not built into this bbt",
                                 bbt_store_location_redact(location, shown, sizeof(shown)));
                return -EPROTONOSUPPORT;
#endif
        }
        return bbt_store_sqlite_open(location, read_only, ret, err, err_size);
}

bool bbt_store_location_is_pg(const char *location)
{
        return location && (strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0);
}

/* Appends LEN bytes of S to BUF (SIZE bytes, *N used), truncating. */
static void put(char *buf, size_t size, size_t *n, const char *s, size_t len)
{
        if (*n + 1 >= size)
                return;
        if (len > size - 1 - *n)
                len = size - 1 - *n;
        memcpy(buf + *n, s, len);
        *n += len;
        buf[*n] = '\0';
}

char *bbt_store_location_redact(const char *location, char *buf, size_t size)
{
        const char *p, *end, *at = NULL, *colon;
        size_t n = 0;

        if (!size)
                return buf;
        buf[0] = '\0';
        if (!location)
                return buf;
        if (!bbt_store_location_is_pg(location)) {
                put(buf, size, &n, location, strlen(location));
                return buf;
        }
        /* scheme://[user[:password]@]host...: the password runs from the
         * user part's first ':' to the last '@' before the path. */
        p = strstr(location, "://") + 3;
        end = p + strcspn(p, "/?#");
        for (const char *c = p; c < end; c++)
                if (*c == '@')
                        at = c;
        colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
        if (colon) {
                put(buf, size, &n, location, (size_t)(colon + 1 - location));
                put(buf, size, &n, "***", 3);
                p = at;
        } else {
                p = location;
        }
        /* Then the rest, with the value of each password= parameter hidden. */
        while (*p) {
                size_t len = strcspn(p, "?&");

                if (strncmp(p, "password=", 9) == 0 && p > location && (p[-1] == '?' || p[-1] == '&')) {
                        put(buf, size, &n, "password=***", 12);
                        p += strcspn(p, "&#");
                        continue;
                }
                put(buf, size, &n, p, len + (p[len] ? 1 : 0));
                p += len + (p[len] ? 1 : 0);
        }
        return buf;
}

void bbt_store_close(struct bbt_store *s)
{
        if (s)
                s->ops->close(s);
}

const char *bbt_store_error(const struct bbt_store *s)
{
        return s && s->error[0] ? s->error : "no error";
}

int bbt_store_begin(struct bbt_store *s)
{
        return s->ops->begin(s);
}

int bbt_store_commit(struct bbt_store *s)
{
        return s->ops->commit(s);
}

int bbt_store_rollback(struct bbt_store *s)
{
        return s->ops->rollback(s);
}

int bbt_store_meta_get(struct bbt_store *s, const char *key, int64_t *ret)
{
        return s->ops->meta_get(s, key, ret);
}

int bbt_store_meta_set(struct bbt_store *s, const char *key, int64_t value)
{
        return s->ops->meta_set(s, key, value);
}

int bbt_store_data_version(struct bbt_store *s, uint64_t *ret)
{
        return s->ops->data_version ? s->ops->data_version(s, ret) : -ENOTSUP;
}

int bbt_store_terminal_insert(struct bbt_store *s, struct bbt_store_terminal *t)
{
        return s->ops->terminal_insert(s, t);
}

int bbt_store_terminal_update(struct bbt_store *s, const struct bbt_store_terminal *t)
{
        return s->ops->terminal_update(s, t);
}

int bbt_store_terminals_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_terminal *t), void *u)
{
        return s->ops->terminals_each(s, &everything, cb, u);
}

struct brief_adapter {
        int (*cb)(void *u, const struct bbt_store_terminal_brief *t);
        void *u;
};

static int brief_of(void *u, const struct bbt_store_terminal *t)
{
        const struct brief_adapter *a = u;
        struct bbt_store_terminal_brief b = {
                .id = t->id, .first_seq = t->first_seq, .high_seq = t->high_seq, .received = t->received,
                .duplicates = t->duplicates, .lost = t->lost, .skipped = t->skipped, .conflicts = t->conflicts,
                .spool_dropped = t->spool_dropped, .first_seen_ms = t->first_seen_ms, .online = t->online,
        };

        memcpy(b.county, t->county, sizeof(b.county));
        memcpy(b.school, t->school, sizeof(b.school));
        memcpy(b.terminal, t->terminal, sizeof(b.terminal));
        memcpy(b.version, t->version, sizeof(b.version));
        return a->cb(a->u, &b);
}

int bbt_store_terminals_brief_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                      int (*cb)(void *u, const struct bbt_store_terminal_brief *t), void *u)
{
        struct brief_adapter a = { .cb = cb, .u = u };

        if (!scope)
                scope = &everything;
        if (s->ops->terminals_brief_each)
                return s->ops->terminals_brief_each(s, scope, cb, u);
        return s->ops->terminals_each(s, scope, brief_of, &a);
}

int bbt_store_terminals_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_terminal *t), void *u)
{
        return s->ops->terminals_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_terminal_lock(struct bbt_store *s, struct bbt_store_terminal *t, bool wait, int64_t *ret_gaps)
{
        return s->ops->terminal_lock(s, t, wait, ret_gaps);
}

int bbt_store_terminal_gaps_each(struct bbt_store *s, int64_t terminal_id,
                                 int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u)
{
        return s->ops->terminal_gaps_each(s, terminal_id, cb, u);
}

int bbt_store_gaps_replace(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_gap *gaps, size_t n)
{
        return s->ops->gaps_replace(s, terminal_id, gaps, n);
}

int bbt_store_gaps_each(struct bbt_store *s, int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g),
                        void *u)
{
        return s->ops->gaps_each(s, &everything, cb, u);
}

int bbt_store_gaps_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u)
{
        return s->ops->gaps_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_raw_insert(struct bbt_store *s, int64_t terminal_id, int64_t seq, enum bbt_channel ch, int64_t ts,
                         int64_t recv_ms, uint32_t boot, const void *payload, size_t len, uint64_t hash,
                         uint64_t *ret_stored_hash)
{
        return s->ops->raw_insert(s, terminal_id, seq, ch, ts, recv_ms, boot, payload, len, hash, ret_stored_hash);
}

int bbt_store_raw_payload(struct bbt_store *s, int64_t terminal_id, int64_t seq, char **ret, size_t *ret_len)
{
        return s->ops->raw_payload(s, terminal_id, seq, ret, ret_len);
}

int bbt_store_conflict_add(struct bbt_store *s, const struct bbt_store_conflict *c, const void *payload, size_t len)
{
        return s->ops->conflict_add(s, c, payload, len);
}

int bbt_store_conflicts_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_conflict *c), void *u)
{
        return s->ops->conflicts_each(s, &everything, cb, u);
}

int bbt_store_conflicts_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_conflict *c), void *u)
{
        return s->ops->conflicts_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_usage_insert(struct bbt_store *s, const struct bbt_store_usage *u)
{
        return s->ops->usage_insert(s, u);
}

int bbt_store_usage_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_usage *usage), void *u)
{
        return s->ops->usage_each(s, &everything, cb, u);
}

int bbt_store_usage_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                            int (*cb)(void *u, const struct bbt_store_usage *usage), void *u)
{
        return s->ops->usage_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_day_add(struct bbt_store *s, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        return s->ops->day_add(s, terminal_id, d);
}

int bbt_store_days_clear(struct bbt_store *s)
{
        return s->ops->days_clear(s);
}

int bbt_store_days_each(struct bbt_store *s, int32_t from, int32_t to, int (*cb)(void *u, int64_t terminal_id,
                        const struct bbt_day_rollup *d), void *u)
{
        struct bbt_store_scope days = BBT_STORE_SCOPE_ALL;

        days.from_day = from;
        days.to_day = to;
        return s->ops->days_each(s, &days, cb, u);
}

int bbt_store_days_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, int64_t terminal_id, const struct bbt_day_rollup *d), void *u)
{
        return s->ops->days_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_day_rule_get(struct bbt_store *s, struct bbt_day_rule *ret)
{
        return s->ops->day_rule_get(s, ret);
}

int bbt_store_day_rule_set(struct bbt_store *s, const struct bbt_day_rule *r)
{
        return s->ops->day_rule_set(s, r);
}

struct span_adapter {
        int (*cb)(void *u, const struct bbt_store_school_span *d);
        void *u;
        struct bbt_store_school_span span;
};

static int span_of_day(void *u, const struct bbt_store_school_day *d)
{
        struct span_adapter *a = u;
        int i = d->day & 31;

        memcpy(a->span.county, d->county, sizeof(a->span.county));
        memcpy(a->span.school, d->school, sizeof(a->span.school));
        a->span.first_day = d->day - i;
        a->span.present = 1u << i;
        a->span.t[i] = d->t;
        return a->cb(a->u, &a->span);
}

int bbt_store_school_spans_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                   int (*cb)(void *u, const struct bbt_store_school_span *d), void *u)
{
        struct span_adapter *a;
        int r;

        if (!scope)
                scope = &everything;
        if (s->ops->school_spans_each)
                return s->ops->school_spans_each(s, scope, cb, u);
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->cb = cb;
        a->u = u;
        r = s->ops->school_days_each(s, scope, span_of_day, a);
        free(a);
        return r;
}

int bbt_store_school_days_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                  int (*cb)(void *u, const struct bbt_store_school_day *d), void *u)
{
        return s->ops->school_days_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_day_marks_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_day_marks *m), void *u)
{
        return s->ops->day_marks_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_seen_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_seen *seen), void *u)
{
        return s->ops->seen_each(s, scope ? scope : &everything, cb, u);
}

struct seen_days_adapter {
        int offset_min;
        int (*cb)(void *u, const struct bbt_store_seen_day *seen);
        void *u;
};

static int seen_day_of(void *u, const struct bbt_store_seen *seen)
{
        const struct seen_days_adapter *a = u;
        struct bbt_store_seen_day d = {
                .terminal_id = seen->terminal_id,
                .day = seen->last_msg_ms > 0 ? bbt_day_of_ms(seen->last_msg_ms, a->offset_min) : INT32_MIN,
        };

        return a->cb(a->u, &d);
}

int bbt_store_seen_days_each_in(struct bbt_store *s, const struct bbt_store_scope *scope, int offset_min,
                                int (*cb)(void *u, const struct bbt_store_seen_day *seen), void *u)
{
        struct seen_days_adapter a = { .offset_min = offset_min, .cb = cb, .u = u };

        if (!scope)
                scope = &everything;
        if (s->ops->seen_days_each)
                return s->ops->seen_days_each(s, scope, cb, u);
        return s->ops->seen_each(s, scope, seen_day_of, &a);
}

int bbt_store_days_history_rebuild(struct bbt_store *s, int offset_min)
{
        return s->ops->days_history_rebuild(s, offset_min);
}

int bbt_store_loss_add(struct bbt_store *s, const struct bbt_store_loss *l)
{
        return s->ops->loss_add(s, l);
}

int bbt_store_loss_find(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to, struct bbt_store_loss *ret)
{
        return s->ops->loss_find(s, terminal_id, from, to, ret);
}

int bbt_store_loss_remove(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to)
{
        return s->ops->loss_remove(s, terminal_id, from, to);
}

int bbt_store_losses_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_loss *l), void *u)
{
        return s->ops->losses_each(s, &everything, cb, u);
}

int bbt_store_losses_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_loss *l), void *u)
{
        return s->ops->losses_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_fault_raise(struct bbt_store *s, const struct bbt_store_fault *f)
{
        return s->ops->fault_raise(s, f);
}

int bbt_store_fault_clear(struct bbt_store *s, int64_t terminal_id, const char *code, const char *source,
                          int64_t cleared_ms)
{
        return s->ops->fault_clear(s, terminal_id, code, source, cleared_ms);
}

int bbt_store_faults_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_fault *f), void *u)
{
        return s->ops->faults_each(s, &everything, cb, u);
}

int bbt_store_faults_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_fault *f), void *u)
{
        return s->ops->faults_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_inventory_replace(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_device *devs, size_t n)
{
        return s->ops->inventory_replace(s, terminal_id, devs, n);
}

int bbt_store_inventory_each(struct bbt_store *s, int (*cb)(void *u, const struct bbt_store_device *d), void *u)
{
        return s->ops->inventory_each(s, &everything, cb, u);
}

int bbt_store_inventory_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_device *d), void *u)
{
        return s->ops->inventory_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_periph_add(struct bbt_store *s, int64_t seq, int64_t ts, enum bbt_periph_action action,
                         const struct bbt_store_device *d)
{
        return s->ops->periph_add(s, seq, ts, action, d);
}

int bbt_store_event_add(struct bbt_store *s, const struct bbt_store_event *e)
{
        return s->ops->event_add(s, e);
}

int bbt_store_events_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_event *e), void *u)
{
        return s->ops->events_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_net_set(struct bbt_store *s, const struct bbt_store_net *n)
{
        return s->ops->net_set(s, n);
}

int bbt_store_nets_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                           int (*cb)(void *u, const struct bbt_store_net *n), void *u)
{
        return s->ops->nets_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_audit_put(struct bbt_store *s, const struct bbt_store_audit *a)
{
        return s->ops->audit_put(s, a);
}

int bbt_store_audits_each_in(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_audit *a), void *u)
{
        return s->ops->audits_each(s, scope ? scope : &everything, cb, u);
}

int bbt_store_counter_add(struct bbt_store *s, const char *name, int64_t delta)
{
        return s->ops->counter_add(s, name, delta);
}

int bbt_store_counters_each(struct bbt_store *s, int (*cb)(void *u, const char *name, int64_t value), void *u)
{
        return s->ops->counters_each(s, cb, u);
}

int bbt_store_prune(struct bbt_store *s, int64_t raw_before_ms, int64_t usage_before_ms)
{
        return s->ops->prune(s, raw_before_ms, usage_before_ms);
}
