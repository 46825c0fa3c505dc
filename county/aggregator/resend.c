/* Resend requests: asking terminals for missing seqs, timing the requests, and settling what the replies say. */
#include "resend.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bbt/log.h"
#include "cache.h"

/* A terminal heard from this recently is taken to be connected. */
#define REACHABLE_MS (5 * 60 * 1000)
/* A resend whose terminal is not heard from after it is asked again after
 * this many resend_timeouts all the same (the terminal went away, or its
 * clock is far off). */
#define RESEND_BACKSTOP 10

/* ---- recording losses ---- */

/* Records FROM..TO of T as lost (or, with KIND skipped, as never used) with REASON. */
static void record_loss_kind(struct bbt_ingest *in, struct bbt_term *t, int64_t from, int64_t to,
                             enum bbt_loss_kind kind, const char *reason, int64_t now_ms)
{
        struct bbt_store_loss l = { .terminal_id = t->row.id, .from = from, .to = to, .recorded_ms = now_ms,
                                    .kind = kind };
        int64_t n = to - from + 1;

        snprintf(l.reason, sizeof(l.reason), "%s", reason);
        if (bbt__cache_begin(in) == 0 && bbt_store_loss_add(in->store, &l) == 0) {
                if (kind == BBT_LOSS_SKIPPED) {
                        t->row.skipped += n;
                        in->stats.skipped += (uint64_t)n;
                        in->counter_delta[BBT_COUNTER_SKIPPED] += n;
                } else {
                        t->row.lost += n;
                        in->stats.lost += (uint64_t)n;
                        in->counter_delta[BBT_COUNTER_LOST] += n;
                }
                in->stats.open_gap_seqs -= (uint64_t)n;
                bbt__cache_mark_dirty(in, t);
                if (kind == BBT_LOSS_SKIPPED)
                        bbt_log_info("%s/%s/%s: seq %" PRId64 "..%" PRId64 " skipped: %s", t->row.county,
                                     t->row.school, t->row.terminal, from, to, reason);
                else
                        bbt_log_warning("%s/%s/%s: seq %" PRId64 "..%" PRId64 " lost: %s", t->row.county,
                                        t->row.school, t->row.terminal, from, to, reason);
        }
}

static void record_loss(struct bbt_ingest *in, struct bbt_term *t, int64_t from, int64_t to, const char *reason,
                        int64_t now_ms)
{
        record_loss_kind(in, t, from, to, BBT_LOSS_LOST, reason, now_ms);
}

struct settle {
        struct bbt_ingest *in;
        struct bbt_term *t;
        enum bbt_loss_kind kind;
        const char *reason;
        int64_t now_ms;
};

static void settle_piece_cb(void *u, int64_t from, int64_t to)
{
        struct settle *c = u;

        record_loss_kind(c->in, c->t, from, to, c->kind, c->reason, c->now_ms);
        c->t->gaps_dirty = true;
}

/* Takes the seqs of FROM..TO that are still missing out of T's gaps and
 * records them with KIND and REASON (the agent said what became of them).
 * The live session's withheld will is left alone. */
static void settle_missing(struct bbt_ingest *in, struct bbt_term *t, int64_t from, int64_t to,
                           enum bbt_loss_kind kind, const char *reason, int64_t now_ms)
{
        struct settle c = { .in = in, .t = t, .kind = kind, .reason = reason, .now_ms = now_ms };

        bbt_gaps_take(&t->gaps, from, to, settle_piece_cb, &c);
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
static void extend_series(struct bbt_ingest *in, struct bbt_term *t, int64_t seq, int64_t now_ms)
{
        int64_t n = bbt_gaps_extend(&t->gaps, &t->row.first_seq, t->row.high_seq, seq, now_ms);

        if (n <= 0)
                return;
        in->stats.gaps_opened++;
        in->stats.open_gap_seqs += (uint64_t)n;
        t->gaps_dirty = true;
}

void bbt__resend_skipped(struct bbt_ingest *in, struct bbt_term *t, int64_t from, int64_t to, bool extend,
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
                size_t i = bbt_gaps_find(&t->gaps, h);

                if (i < t->gaps.n) {
                        h = t->gaps.v[i].from - 1;
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
                in->counter_delta[BBT_COUNTER_LOST] -= b - a + 1;
                in->stats.open_gap_seqs += (uint64_t)(b - a + 1); /* record_loss_kind takes them off again */
                record_loss_kind(in, t, a, b, BBT_LOSS_SKIPPED, "never used (skipped after an unclean stop)", now_ms);
        }
}

void bbt__resend_arrived(struct bbt_ingest *in, struct bbt_term *t, int64_t seq, const struct bbt_store_loss *l,
                         int64_t now_ms)
{
        struct bbt_store *s = in->store;

        if (bbt_store_loss_remove(s, t->row.id, seq, seq) < 0) {
                bbt_log_error("store: loss: %s", bbt_store_error(s));
                return;
        }
        if (l->kind == BBT_LOSS_SKIPPED) {
                t->row.skipped--;
                in->counter_delta[BBT_COUNTER_SKIPPED]--;
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
                        in->counter_delta[BBT_COUNTER_SKIPPED] -= n;
                        t->row.lost += n;
                        in->counter_delta[BBT_COUNTER_LOST] += n;
                        bbt_log_warning("%s/%s/%s: seq %" PRId64 " arrived inside a skipped range: %" PRId64
                                        "..%" PRId64 " below it were used, now counted lost",
                                        t->row.county, t->row.school, t->row.terminal, seq, l->from, seq - 1);
                }
        } else if (t->row.lost > 0) {
                t->row.lost--;
                in->counter_delta[BBT_COUNTER_LOST]--;
        }
        in->stats.recovered++;
        in->counter_delta[BBT_COUNTER_RECOVERED]++;
        bbt__cache_mark_dirty(in, t);
}

/* ---- the will ---- */

static void mark_will(struct bbt_term *t, int64_t w, uint32_t boot, int64_t now_ms)
{
        if (bbt_gaps_mark_will(&t->gaps, w, boot, now_ms))
                t->gaps_dirty = true;
}

void bbt__resend_expect_will(struct bbt_ingest *in, struct bbt_term *t, int64_t w, uint32_t boot, int64_t now_ms)
{
        extend_series(in, t, w, now_ms);
        mark_will(t, w, boot, now_ms);
}

/* ---- replies ---- */

/* The "missing" array of a resend reply: [{"from","to","reason"}], reason
 * "skipped" (never used), "damaged" (lost from the agent's spool: damage, or
 * its unsynced tail in a power cut), "unstored" (never written: disk full) or
 * "unknown" (one or the other, older than the skipped ranges the agent
 * remembers: counted lost, and turned skipped if the agent names it so later).
 * Unknown reasons are left to the usual resend rounds. */
static void settle_reply_missing(struct bbt_ingest *in, struct bbt_term *t, const cJSON *missing, int64_t now_ms)
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
                        bbt__resend_skipped(in, t, a, b, false, now_ms);
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

void bbt__resend_reply(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m, int64_t now_ms)
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
        for (size_t i = 0; i < t->gaps.n; i++) {
                struct bbt_store_gap *g = &t->gaps.v[i];

                if (strcmp(g->cmd_id, rp->id) != 0)
                        continue;
                g->cmd_id[0] = '\0';
                g->changed_ms = now_ms;
                t->gaps_dirty = true;
                bbt__cache_mark_dirty(in, t);
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
                        if (bbt_gaps_cut(&t->gaps, i, g->from, end) == 0) {
                                i--;
                                continue;
                        }
                }
                /* Above last_seq it never made them. */
                if (last_seq >= 0 && last_seq < g->to) {
                        int64_t start = last_seq + 1 > g->from ? last_seq + 1 : g->from;

                        record_loss_kind(in, t, start, g->to, BBT_LOSS_SKIPPED, "never produced by the agent",
                                         now_ms);
                        if (bbt_gaps_cut(&t->gaps, i, start, g->to) == 0) {
                                i--;
                                continue;
                        }
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
        bbt__resend_tick(in, t, now_ms);
}

/* ---- asking ---- */

void bbt__cmd_id(const struct bbt_ingest *in, const char *prefix, char *buf, size_t size)
{
        snprintf(buf, size, "%s-%s%" PRId64 "-%" PRId64, prefix, in->tag, in->boot, in->cmd_seq + 1);
}

int bbt__cmd_send(struct bbt_ingest *in, const struct bbt_term *t, struct bbt_msg *m, int64_t now_ms)
{
        struct bbt_topic tp;
        char topic[BBT_TOPIC_MAX];
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
        m->seq = in->cmd_seq + 1;
        m->ts = now_ms;
        m->boot = (uint32_t)in->boot;
        r = bbt_msg_encode(m, &json, &len, NULL);
        if (r < 0)
                return r;
        r = in->publish(in->userdata, topic, json, len);
        free(json);
        if (r < 0)
                return r;
        in->cmd_seq++;
        return 0;
}

static int send_resend(struct bbt_ingest *in, struct bbt_term *t, struct bbt_store_gap *g, int64_t now_ms)
{
        struct bbt_msg m;
        char id[65];
        int r;

        bbt__cmd_id(in, "rs", id, sizeof(id));
        bbt_msg_init(&m, BBT_CH_CMD);
        m.body.cmd.id = id;
        m.body.cmd.op = "resend";
        m.body.cmd.args.resend.from = g->from;
        m.body.cmd.args.resend.to = g->to;
        r = bbt__cmd_send(in, t, &m, now_ms);
        if (r < 0)
                return r;
        in->stats.resends++;
        snprintf(g->cmd_id, sizeof(g->cmd_id), "%s", id);
        g->state = BBT_GAP_REQUESTED;
        g->attempts++;
        g->changed_ms = now_ms;
        t->request_ms = now_ms;
        t->heard_after_request_ms = 0;
        t->gaps_dirty = true;
        bbt__cache_mark_dirty(in, t);
        bbt_log_info("%s/%s/%s: asked for seq %" PRId64 "..%" PRId64 " again (%s, attempt %d)", t->row.county,
                     t->row.school, t->row.terminal, g->from, g->to, id, g->attempts);
        return 0;
}

/* Whether the request out for G is overdue. Not by the clock alone: after an
 * outage the reply waits behind the broker's backlog, in the aggregator's own
 * queue; it is overdue only resend_timeout after a message the terminal made
 * after the request has arrived (so the backlog before it has drained), or
 * RESEND_BACKSTOP times that after the request if nothing comes. */
static bool unanswered(const struct bbt_term *t, const struct bbt_store_gap *g, const struct bbt_ingest_settings *s,
                       int64_t now_ms)
{
        if (t->heard_after_request_ms && t->request_ms == g->changed_ms)
                return now_ms - t->heard_after_request_ms >= s->resend_timeout_ms;
        return now_ms - g->changed_ms >= RESEND_BACKSTOP * s->resend_timeout_ms;
}

void bbt__resend_tick(struct bbt_ingest *in, struct bbt_term *t, int64_t now_ms)
{
        const struct bbt_ingest_settings *s = &in->set;
        bool outstanding = false;

        for (size_t i = 0; i < t->gaps.n; i++)
                if (t->gaps.v[i].state == BBT_GAP_REQUESTED)
                        outstanding = true;
        for (size_t i = 0; i < t->gaps.n; i++) {
                struct bbt_store_gap *g = &t->gaps.v[i];
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
                        bbt__cache_mark_dirty(in, t);
                        continue;
                }
                if (now_ms - g->detected_ms >= s->gap_give_up_ms)
                        lost = "not resent in time";
                else if (g->state == BBT_GAP_REQUESTED && unanswered(t, g, s, now_ms)) {
                        g->state = BBT_GAP_WAITING;
                        g->cmd_id[0] = '\0';
                        t->gaps_dirty = true;
                        bbt__cache_mark_dirty(in, t);
                        outstanding = false;
                        if (g->attempts >= s->resend_attempts)
                                lost = "no answer to resend";
                } else if (g->state == BBT_GAP_ANSWERED && now_ms - g->changed_ms >= s->resend_settle_ms) {
                        g->state = BBT_GAP_WAITING;
                        t->gaps_dirty = true;
                        bbt__cache_mark_dirty(in, t);
                        if (g->attempts >= s->resend_attempts)
                                lost = "resent but never received";
                }
                if (lost) {
                        record_loss(in, t, g->from, g->to, lost, now_ms);
                        bbt_gaps_remove(&t->gaps, i);
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
                if (bbt_gaps_split(&t->gaps, i, s->resend_max_range) < 0)
                        return;
                g = &t->gaps.v[i];
                if (bbt__cache_begin(in) == 0 && send_resend(in, t, g, now_ms) == 0)
                        outstanding = true;
        }
}
