/* Ingest: validate, deduplicate on (terminal, seq), one handler per channel, prune; its parts are beside it. */
/*
 * A message goes: bbt_ingest_message() checks topic and payload, finds its
 * terminal in the cache (cache.c), records its seq in the terminal's gaps
 * (gaps.c), stores the raw row once, and hands it to its channel's handler
 * (handlers[] below). Missing seqs are asked for and settled by resend.c;
 * heartbeats estimate the clock skew (skew.c); usage intervals are cut into
 * day rollups (rollup.c in county/store). The batch is written by cache.c.
 */
#include "ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/array.h"
#include "bbt/base.h"
#include "ask.h"
#include "bbt/log.h"
#include "cache.h"
#include "dates.h"
#include "ingest_internal.h"
#include "power_schedule.h"
#include "resend.h"

#define FAULT_SOURCE_AGENT "agent"
#define FAULT_SOURCE_AGGREGATOR "aggregator"
/* Rejections logged per minute at most; the rest are counted. */
#define REJECT_LOG_PER_MIN 20

static const char *const reject_names[BBT_REJECT__COUNT] = {
        [BBT_REJECT_TOPIC] = "reject_topic", [BBT_REJECT_SIZE] = "reject_size",
        [BBT_REJECT_JSON] = "reject_json",   [BBT_REJECT_VERSION] = "reject_version",
        [BBT_REJECT_FIELD] = "reject_field", [BBT_REJECT_STORE] = "reject_store",
};

/* From half a millisecond (a small batch on a fast disk) to ten seconds (a
 * rollup rebuild, a disk in trouble): the buckets of the batch commit latency. */
const double bbt_commit_bucket_s[BBT_COMMIT_BUCKETS] = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

const char *bbt_reject_name(enum bbt_reject r)
{
        return r >= 0 && r < BBT_REJECT__COUNT ? reject_names[r] : "reject_unknown";
}

/* Whether one more line may be logged at NOW_MS (at most PER_MIN a minute). */
bool bbt__log_limit_ok(struct bbt_log_limit *l, int64_t now_ms, int per_min)
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

/* 64-bit FNV-1a: the payload hash kept beside a raw row (never 0, which
 * means "not known"). Its start value is not FNV's basis (a digit short):
 * stored hashes were made with it, so it stays. */
#define PAYLOAD_HASH_START 1469598103934665603ull

static uint64_t payload_hash(const void *data, size_t len)
{
        uint64_t h = bbt_fnv1a(PAYLOAD_HASH_START, data, len);

        return h ? h : 1;
}

int bbt_ingest_flush(struct bbt_ingest *in)
{
        return bbt__cache_commit(in);
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
        if (!bbt__log_limit_ok(&in->reject_log, now_ms, REJECT_LOG_PER_MIN))
                return;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        bbt_log_warning("%s (%s)", line, reject_names[why]);
}

/* ---- seq tracking ---- */

/* Whether SEQ is new for T; if so, records it (closing or splitting a gap,
 * opening one before it) and counts what changed. Returns 1 new, 0 already
 * seen, -ENOMEM. */
static int track_seq(struct bbt_ingest *in, struct bbt_term *t, int64_t seq, int64_t now_ms)
{
        struct bbt_gaps_change c;
        int r = bbt_gaps_track(&t->gaps, &t->row.first_seq, &t->row.high_seq, seq, now_ms, &c);

        if (c.opened) {
                t->gaps_dirty = true;
                in->stats.gaps_opened++;
                in->stats.open_gap_seqs += (uint64_t)c.opened;
        }
        if (c.filled) {
                t->gaps_dirty = true;
                in->stats.open_gap_seqs--;
                in->stats.recovered++;
                in->counter_delta[BBT_COUNTER_RECOVERED]++;
        }
        return r;
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
static bool check_conflict(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m, enum bbt_channel ch,
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
        in->counter_delta[BBT_COUNTER_SEQ_CONFLICT]++;
        bbt__cache_mark_dirty(in, t);
        if (bbt__log_limit_ok(&in->conflict_log, recv_ms, REJECT_LOG_PER_MIN))
                bbt_log_warning("%s/%s/%s: seq %" PRId64 " CONFLICT: a different %s message under a seq already "
                                "stored (the terminal used the seq twice); both kept (seq_conflict)",
                                t->row.county, t->row.school, t->row.terminal, m->seq, bbt_channel_name(ch));
        return true;
}

/* ---- channels: one handler each ---- */

/* How a message came: the broker's retained copy or not, and when. */
struct delivery {
        bool retained;
        int64_t recv_ms;
};

/* Applies a new, stored message M of T's. */
typedef void channel_handler(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m,
                             const struct delivery *d);

static void rules_of(const struct bbt_ingest *in, const struct bbt_term *t, struct bbt_rollup_rules *r)
{
        r->bells = t->bells;
        r->margin_min = in->set.metrics.margin_min;
        r->offset_min = in->set.metrics.offset_min;
}

static void fault_set(struct bbt_ingest *in, struct bbt_term *t, const char *code, bool open, enum bbt_severity sev,
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

static void handle_state(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m,
                         const struct delivery *d)
{
        const struct bbt_state *st = &m->body.state;
        int64_t recv_ms = d->recv_ms;

        /* The seqs this run of the agent skipped at its start: a fact, also in
         * a birth replayed late. Settled at once, not asked for. */
        if (st->online && st->has_skipped_from)
                bbt__resend_skipped(in, t, st->skipped_from, st->skipped_to, true, recv_ms);
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
                        bbt__resend_expect_will(in, t, st->will_seq, m->boot, recv_ms);
                bbt__power_birth(in, t);
                return;
        }
        if (t->row.boot >= 0 && (int64_t)m->boot < t->row.boot) {
                /* The will of a session already replaced by a newer birth. */
                in->stats.stale_state++;
                in->counter_delta[BBT_COUNTER_STALE_STATE]++;
                return;
        }
        t->row.online = false;
        t->row.boot = m->boot;
        t->row.offline_since_ms = recv_ms;
        t->row.offline_reason = st->reason == BBT_REASON_SHUTDOWN ? BBT_OFFLINE_SHUTDOWN : BBT_OFFLINE_LOST;
}

/* A live heartbeat is a clock skew sample; past clock_skew_limit a fault opens. */
static void update_skew(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m, bool retained,
                        int64_t recv_ms)
{
        int64_t best;
        bool past;
        char detail[128];

        if (!bbt_skew_is_live(m->body.hb.spool_depth, retained, in->connected, in->connected_ms,
                              in->set.skew_warmup_ms, recv_ms) ||
            !bbt_skew_add(&t->skew, in->set.skew_samples, in->set.skew_min_ms, m->ts, recv_ms, &best))
                return;
        t->row.skew_known = true;
        t->row.skew_ms = best;
        past = llabs(best) > in->set.metrics.clock_skew_limit_ms;
        snprintf(detail, sizeof(detail), "terminal clock %+.1f s off", (double)best / 1000.0);
        /* Dated when the skew was in effect: from the first heartbeat that showed it. */
        fault_set(in, t, "clock_skew", past, BBT_SEVERITY_WARNING, detail,
                  bbt_skew_since(&t->skew, in->set.metrics.clock_skew_limit_ms, past, recv_ms));
}

static void handle_hb(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m, const struct delivery *d)
{
        const struct bbt_hb *hb = &m->body.hb;
        struct bbt_day_rollup day;

        update_skew(in, t, m, d->retained, d->recv_ms);
        memset(&day, 0, sizeof(day));
        day.day = bbt_day_of_ms(bbt__term_corrected(t, m->ts), in->set.metrics.offset_min);
        day.hb_count = 1;
        bbt_day_set_add(&t->pending, &day);
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

static void handle_usage(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m,
                         const struct delivery *d)
{
        const struct bbt_usage *u = &m->body.usage;
        struct bbt_store_usage row = {
                .terminal_id = t->row.id, .seq = m->seq,
                .span = { .start_ms = bbt__term_corrected(t, u->start), .end_ms = bbt__term_corrected(t, u->end),
                          .state = u->state, .interactive_ms = u->interactive_ms },
                .audio_ms = u->audio_ms, .touch = u->touch, .pen = u->pen, .mouse = u->mouse, .key = u->key,
        };
        struct bbt_rollup_rules rules;

        (void)d;
        if (bbt_store_usage_insert(in->store, &row) < 0)
                bbt_log_error("store: usage: %s", bbt_store_error(in->store));
        rules_of(in, t, &rules);
        bbt_day_set_add_usage(&t->pending, &rules, &row.span);
        if (u->state == BBT_USAGE_ACTIVE && row.span.end_ms > t->row.last_active_ms)
                t->row.last_active_ms = row.span.end_ms;
}

static void dev_of(const struct bbt_term *t, const struct bbt_dev *d, struct bbt_store_device *ret)
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
static void check_expected(struct bbt_ingest *in, struct bbt_term *t, uint32_t present, int64_t when_ms)
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

/* The wired NIC of the inventory, for Wake-on-LAN (docs/operations.md). */
static void store_net(struct bbt_ingest *in, struct bbt_term *t, int64_t seq, const struct bbt_net_addr *net)
{
        struct bbt_store_net n = { .terminal_id = t->row.id, .seq = seq, .prefix = -1 };

        snprintf(n.ifname, sizeof(n.ifname), "%s", net->ifname);
        snprintf(n.mac, sizeof(n.mac), "%s", net->mac);
        if (net->ipv4) {
                snprintf(n.ipv4, sizeof(n.ipv4), "%s", net->ipv4);
                n.prefix = (int)net->prefix;
        }
        if (bbt_store_net_set(in->store, &n) < 0)
                bbt_log_error("store: net: %s", bbt_store_error(in->store));
}

static void handle_inventory(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m,
                             const struct delivery *d)
{
        const struct bbt_inventory *inv = &m->body.inventory;
        struct bbt_store_device *devs;
        uint32_t present = 0;

        (void)d;
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
        else {
                if (inv->has_net)
                        store_net(in, t, m->seq, &inv->net);
                t->row.inventory_seq = m->seq;
        }
        free(devs);
        check_expected(in, t, present, bbt__term_corrected(t, m->ts));
}

static void handle_periph(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m,
                          const struct delivery *d)
{
        struct bbt_store_device dev;

        (void)d;
        dev_of(t, &m->body.periph.dev, &dev);
        if (bbt_store_periph_add(in->store, m->seq, bbt__term_corrected(t, m->ts), m->body.periph.action, &dev) < 0)
                bbt_log_error("store: periph: %s", bbt_store_error(in->store));
}

static void handle_alert(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m,
                         const struct delivery *d)
{
        const struct bbt_alert *a = &m->body.alert;
        struct bbt_store *s = in->store;
        struct bbt_store_fault f = { .terminal_id = t->row.id, .severity = a->severity,
                                     .raised_ms = bbt__term_corrected(t, m->ts) };
        int r;

        (void)d;
        if (a->has_event && a->event) {
                /* A one-off event (the power schedule's power_off,
                 * power_postponed...): not a condition, so no fault. The
                 * store keeps it in its events (and the message in raw;
                 * docs/operations.md, "Where the county sees them"). */
                struct bbt_store_event e = { .terminal_id = t->row.id, .seq = m->seq, .ts = f.raised_ms,
                                             .severity = a->severity };

                snprintf(e.code, sizeof(e.code), "%s", a->code);
                snprintf(e.detail, sizeof(e.detail), "%s", a->detail ? a->detail : "");
                in->stats.events++;
                bbt_log_info("%s/%s/%s: event %s: %s", t->row.county, t->row.school, t->row.terminal, a->code,
                             e.detail);
                if (bbt_store_event_add(s, &e) < 0)
                        bbt_log_error("store: event %s: %s", a->code, bbt_store_error(s));
                return;
        }
        snprintf(f.code, sizeof(f.code), "%s", a->code);
        snprintf(f.source, sizeof(f.source), "%s", FAULT_SOURCE_AGENT);
        snprintf(f.detail, sizeof(f.detail), "%s", a->detail ? a->detail : "");
        /* A clear raises first too: the raise may not have arrived yet (lost
         * in a gap and resent later: messages arrive out of order). Raising
         * is a no-op when the fault is open, or already cleared at or after
         * this clear; with no raise seen, it leaves a fault raised and
         * cleared at the same instant, and the late raise finds it cleared
         * instead of opening a fault that no clear would ever close. */
        r = bbt_store_fault_raise(s, &f);
        if (r == 0 && a->state != BBT_ALERT_RAISED)
                r = bbt_store_fault_clear(s, t->row.id, a->code, FAULT_SOURCE_AGENT, f.raised_ms);
        if (r < 0)
                bbt_log_error("store: alert %s: %s", a->code, bbt_store_error(s));
}

/* A reply to a command: ours are resend requests (resend.c) and power schedules (power_schedule.c). */
static void handle_reply(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m,
                         const struct delivery *d)
{
        if (!bbt__power_reply(in, t, m) && !bbt__ask_reply(in, t, m))
                bbt__resend_reply(in, t, m, d->recv_ms);
}

/* One handler per channel; commands (BBT_CH_CMD) are not telemetry and never
 * get this far. */
static channel_handler *const handlers[BBT_CH__COUNT] = {
        [BBT_CH_STATE] = handle_state,         [BBT_CH_HB] = handle_hb,       [BBT_CH_USAGE] = handle_usage,
        [BBT_CH_PERIPH] = handle_periph,       [BBT_CH_INVENTORY] = handle_inventory,
        [BBT_CH_ALERT] = handle_alert,         [BBT_CH_CMD_REPLY] = handle_reply,
};

/* The message history (docs/metrics.md, "History"): a message of T's sent
 * at TS (its clock) and received at RECV_MS, kept as its day's first or last
 * message at the time it was sent, or received if that is earlier (a clock
 * not corrected yet cannot put it in the future). */
static void heard(struct bbt_ingest *in, struct bbt_term *t, int64_t ts, int64_t recv_ms)
{
        int64_t when = bbt__term_corrected(t, ts) < recv_ms ? bbt__term_corrected(t, ts) : recv_ms;
        struct bbt_day_rollup day = { .day = bbt_day_of_ms(when, in->set.metrics.offset_min),
                                      .first_msg_ms = when, .last_msg_ms = when };

        bbt_day_set_add(&t->pending, &day);
}

void bbt_ingest_message(struct bbt_ingest *in, const char *topic, const void *payload, size_t len, bool retained,
                        int64_t recv_ms)
{
        struct bbt_topic tp;
        struct bbt_msg m;
        struct bbt_error e;
        struct bbt_term *t;
        char why[160], etext[300];
        struct delivery d = { .retained = retained, .recv_ms = recv_ms };
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
        if (bbt__cache_begin(in) < 0 || !(t = bbt__cache_get(in, &tp, recv_ms)) || bbt__cache_claim(in, t, true) < 0) {
                reject(in, BBT_REJECT_STORE, recv_ms, "%s: seq %" PRId64 ": not stored: %s", topic, m.seq,
                       bbt_store_error(in->store));
                bbt_msg_free(&m);
                return;
        }
        /* Made after our outstanding resend request: the reply, if any, is not
         * stuck behind a backlog any more (see unanswered()). */
        if (t->request_ms && !t->heard_after_request_ms && bbt__term_corrected(t, m.ts) >= t->request_ms)
                t->heard_after_request_ms = recv_ms;
        r = track_seq(in, t, m.seq, recv_ms);
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
                                bbt__resend_arrived(in, t, m.seq, &l, recv_ms);
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
                        in->counter_delta[BBT_COUNTER_DUPLICATES]++;
                        bbt__cache_mark_dirty(in, t);
                }
                bbt_msg_free(&m);
                return;
        }
        if (handlers[tp.channel])
                handlers[tp.channel](in, t, &m, &d);
        bbt__ask_heard(in, t, tp.channel, recv_ms);
        heard(in, t, m.ts, recv_ms);
        bbt_msg_free(&m);
        t->row.received++;
        if (recv_ms > t->row.last_seen_ms)
                t->row.last_seen_ms = recv_ms;
        in->stats.stored++;
        in->counter_delta[BBT_COUNTER_STORED]++;
        bbt__cache_mark_dirty(in, t);
        if (++in->batch_n >= in->set.batch_size)
                bbt_ingest_flush(in);
}

/* The terminals with gaps in the store, by id, each once. */
struct gapped {
        int64_t *ids;
        size_t n, cap;
};

static int gapped_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        struct gapped *x = u;

        (void)g;
        if (x->n && x->ids[x->n - 1] == terminal_id)
                return 0;
        if (bbt_array_reserve((void **)&x->ids, &x->cap, x->n + 1, sizeof(*x->ids)) < 0)
                return -ENOMEM;
        x->ids[x->n++] = terminal_id;
        return 0;
}

/* Shared: every gap in the store is looked after, whichever aggregator
 * found it: each one each SHARED_TICK_MS claims the terminals with gaps that
 * no other batch holds, and asks, waits or gives up as alone; the gap's
 * state in the store (requested when, by which command) keeps two from
 * asking twice. */
#define SHARED_TICK_MS 1000

static void shared_tick(struct bbt_ingest *in, int64_t now_ms)
{
        struct gapped x = { 0 };
        int r;

        /* (Less a little: the tick timer runs every SHARED_TICK_MS, give or take.) */
        if (now_ms >= in->shared_tick_ms && now_ms - in->shared_tick_ms < SHARED_TICK_MS - 100)
                return;
        in->shared_tick_ms = now_ms;
        /* No terminal held: claims below read every row afresh. */
        if (bbt_ingest_flush(in) < 0)
                return;
        r = bbt_store_gaps_each(in->store, gapped_cb, &x);
        if (r < 0)
                bbt_log_error("store: gaps: %s", bbt_store_error(in->store));
        for (size_t i = 0; r == 0 && i < x.n; i++) {
                struct bbt_term *t = bbt__cache_claim_id(in, x.ids[i]);

                if (t && t->gaps.n)
                        bbt__resend_tick(in, t, now_ms);
        }
        free(x.ids);
        bbt_ingest_flush(in);
}

void bbt_ingest_tick(struct bbt_ingest *in, int64_t now_ms)
{
        if (in->set.shared)
                shared_tick(in, now_ms);
        else
                for (size_t i = 0; i < in->n_terms; i++)
                        if (in->terms[i]->gaps.n)
                                bbt__resend_tick(in, in->terms[i], now_ms);
        bbt__power_tick(in, now_ms);
}

void bbt_ingest_set_connected(struct bbt_ingest *in, bool connected, int64_t now_ms)
{
        in->connected = connected;
        if (connected)
                in->connected_ms = now_ms;
}

/* ---- rollups: rebuilt (rollup.c) when the rules they were cut with change ---- */

static const struct bbt_rollup_config *rollup_config(const struct bbt_ingest *in, struct bbt_rollup_config *ret)
{
        ret->cal = in->cal;
        ret->margin_min = in->set.metrics.margin_min;
        ret->offset_min = in->set.metrics.offset_min;
        return ret;
}

int bbt_ingest_rebuild_rollups(struct bbt_ingest *in)
{
        struct bbt_rollup_config c;
        int r;

        r = bbt_ingest_flush(in);
        if (r == 0)
                r = bbt__cache_begin(in);
        if (r == 0)
                r = bbt_rollup_rebuild(in->store, rollup_config(in, &c));
        if (r == 0)
                return bbt_ingest_flush(in);
        bbt__cache_rollback(in);
        return r;
}

/* The day aggregates are counted under the metrics' day rule: recounted
 * from the rollups when the thresholds or heartbeat interval changed. */
static int check_day_rule(struct bbt_ingest *in)
{
        struct bbt_day_rule want, have;
        int r = bbt_store_day_rule_get(in->store, &have);

        bbt_day_rule_of(&in->set.metrics, &want);
        if (r == 0 && memcmp(&have, &want, sizeof(want)) == 0)
                return 0;
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == 0)
                bbt_log_notice("usage thresholds or heartbeat interval changed: recounting the day aggregates");
        r = bbt_ingest_flush(in);
        if (r == 0)
                r = bbt__cache_begin(in);
        if (r == 0)
                r = bbt_store_day_rule_set(in->store, &want);
        if (r == 0)
                return bbt_ingest_flush(in);
        bbt__cache_rollback(in);
        return r;
}

static int check_rules(struct bbt_ingest *in)
{
        struct bbt_rollup_config c;
        int r = check_day_rule(in);

        if (r < 0)
                return r;
        r = bbt_rollup_config_check(in->store, rollup_config(in, &c));

        if (r == 0)
                return 0;
        if (r == -ENOENT) {
                /* A new store: nothing to rebuild. */
                r = bbt__cache_begin(in);
                if (r == 0)
                        r = bbt_rollup_config_record(in->store, &c);
                return r == 0 ? bbt_ingest_flush(in) : r;
        }
        if (r < 0)
                return r;
        bbt_log_notice("bell schedules or school-hour settings changed, or the rollups are of an older version: "
                       "rebuilding the usage rollups");
        return bbt_ingest_rebuild_rollups(in);
}

int bbt_ingest_set_registry(struct bbt_ingest *in, const struct bbt_registry *reg, const struct bbt_calendar *cal,
                            int64_t now_ms)
{
        int r = bbt_ingest_flush(in);

        in->reg = reg;
        in->cal = cal;
        bbt__cache_relink(in);
        bbt__power_changed(in);
        return r == 0 ? check_rules(in) : r;
}

int bbt_ingest_prune(struct bbt_ingest *in, int64_t raw_retention_ms, int64_t usage_retention_ms, int64_t now_ms)
{
        int r = bbt_ingest_flush(in);

        if (r == 0)
                r = bbt__cache_begin(in);
        if (r == 0)
                r = bbt_store_prune(in->store, raw_retention_ms ? now_ms - raw_retention_ms : 0,
                                          usage_retention_ms ? now_ms - usage_retention_ms : 0);
        if (r < 0) {
                bbt__cache_rollback(in);
                return r;
        }
        in->batch_n++;
        return bbt_ingest_flush(in);
}

void bbt_ingest_get_stats(const struct bbt_ingest *in, struct bbt_ingest_stats *ret)
{
        *ret = in->stats;
}

/* The county entry for CODE in C (kept ordered), added if new. */
static struct bbt_ingest_county *census_county(struct bbt_ingest_census *c, size_t *cap, const char *code)
{
        size_t lo = 0, hi = c->n_counties;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int cmp = strcmp(c->counties[mid].county, code);

                if (cmp == 0)
                        return &c->counties[mid];
                if (cmp < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (bbt_array_reserve((void **)&c->counties, cap, c->n_counties + 1, sizeof(*c->counties)) < 0)
                return NULL;
        memmove(&c->counties[lo + 1], &c->counties[lo], (c->n_counties - lo) * sizeof(*c->counties));
        c->n_counties++;
        memset(&c->counties[lo], 0, sizeof(c->counties[lo]));
        snprintf(c->counties[lo].county, sizeof(c->counties[lo].county), "%s", code);
        return &c->counties[lo];
}

int bbt_ingest_census(const struct bbt_ingest *in, struct bbt_ingest_census *ret)
{
        struct bbt_ingest_census c = { 0 };
        struct bbt_ingest_county *county = NULL;
        size_t cap = 0;

        for (size_t i = 0; i < in->n_terms; i++) {
                const struct bbt_term *t = in->terms[i];

                /* Terminals come in store id order: mostly a county at a time. */
                if (!county || strcmp(county->county, t->row.county) != 0)
                        county = census_county(&c, &cap, t->row.county);
                if (!county) {
                        bbt_ingest_census_free(&c);
                        return -ENOMEM;
                }
                county->terminals++;
                county->online += t->row.online;
                c.lost += (uint64_t)t->row.lost;
                c.skipped += (uint64_t)t->row.skipped;
                for (size_t g = 0; g < t->gaps.n; g++) {
                        const struct bbt_store_gap *gap = &t->gaps.v[g];

                        if (gap->state > BBT_GAP_WILL)
                                continue;
                        c.gaps[gap->state]++;
                        c.gap_seqs[gap->state] += (uint64_t)(gap->to - gap->from + 1);
                }
        }
        *ret = c;
        return 0;
}

void bbt_ingest_census_free(struct bbt_ingest_census *c)
{
        free(c->counties);
        c->counties = NULL;
        c->n_counties = 0;
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
        in->reject_log = (struct bbt_log_limit){ .window_ms = now_ms, .what = "rejected messages" };
        in->conflict_log = (struct bbt_log_limit){ .window_ms = now_ms, .what = "seq conflicts" };
        in->commit_log = (struct bbt_log_limit){ .window_ms = bbt__mono_ms(), .what = "failed commits" };
        in->power_log = (struct bbt_log_limit){ .window_ms = bbt__mono_ms(), .what = "refused power schedules" };
        if (in->set.shared && in->set.instance && *in->set.instance) {
                const char *name = in->set.instance;

                snprintf(in->tag, sizeof(in->tag), "%08" PRIx32 "-",
                         (uint32_t)bbt_fnv1a(BBT_FNV1A_BASIS, name, strlen(name)));
                snprintf(in->boot_key, sizeof(in->boot_key), "boot@%.60s", name);
                snprintf(in->cmd_seq_key, sizeof(in->cmd_seq_key), "cmd_seq@%.60s", name);
        } else {
                in->set.instance = NULL;
                snprintf(in->boot_key, sizeof(in->boot_key), "boot");
                snprintf(in->cmd_seq_key, sizeof(in->cmd_seq_key), "cmd_seq");
        }
        r = bbt__cache_load(in);
        if (r == 0 && bbt_store_meta_get(store, in->boot_key, &in->boot) == -ENOENT)
                in->boot = 0;
        in->boot++;
        if (r == 0)
                r = bbt__cache_begin(in);
        if (r == 0)
                r = bbt_store_meta_set(store, in->boot_key, in->boot);
        if (r == 0)
                r = bbt_ingest_flush(in);
        if (r == 0)
                r = check_rules(in);
        if (r < 0) {
                snprintf(err, err_size, "store: %s", bbt_store_error(store));
                if (in->in_tx)
                        bbt__cache_rollback(in);
                bbt__cache_free(in);
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
        bbt__cache_free(in);
        free(in);
}
