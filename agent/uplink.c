/* The uplink: spool to broker in seq order within a window, acknowledgements, fsync off the loop, meta saves. */
#include "agent_internal.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/log.h"
#include "bbt/mqtt.h"
#include "spool.h"

#define TICK_MS 100       /* pacing of backlog drain and resends */
#define META_MS 1000      /* how soon a counter or witness change reaches the meta file */
#define META_ACK_MS 300000 /* how soon an ack watermark or appended mark change does, at the latest */
#define EXPIRE_MS 60000   /* how often expired spool segments are looked for, at most */

int bbt_uplink_new(struct bbt_agent *a, size_t inflight)
{
        struct bbt_uplink *u = &a->uplink;

        u->window_cap = inflight + 2;
        u->window = calloc(u->window_cap, sizeof(*u->window));
        return u->window ? 0 : -ENOMEM;
}

void bbt_uplink_free(struct bbt_agent *a)
{
        free(a->uplink.window);
        a->uplink.window = NULL;
}

static void meta_due(struct bbt_agent *a);

/* ---- the window ---- */

static void window_clear(struct bbt_uplink *u)
{
        u->window_head = u->window_len = 0;
}

static struct bbt_inflight *window_at(struct bbt_uplink *u, size_t i)
{
        return &u->window[(u->window_head + i) % u->window_cap];
}

static void window_push(struct bbt_uplink *u, uint64_t seq, int mid, bool acked)
{
        struct bbt_inflight *f = window_at(u, u->window_len);

        f->seq = seq;
        f->mid = mid;
        f->acked = acked;
        u->window_len++;
}

/* Acknowledges the window's head while it is acknowledged. */
static void window_advance(struct bbt_agent *a)
{
        struct bbt_uplink *u = &a->uplink;
        uint64_t through = 0;
        size_t n = 0;

        while (u->window_len && window_at(u, 0)->acked) {
                through = window_at(u, 0)->seq;
                u->window_head = (u->window_head + 1) % u->window_cap;
                u->window_len--;
                n++;
        }
        if (!n)
                return;
        bbt_spool_ack_through(a->spool, through);
        u->acked_through = through;
        a->stats.acked += n;
        meta_due(a);
}

bool bbt_uplink_idle(const struct bbt_agent *a)
{
        return a->uplink.window_len == 0;
}

/* With fsync = each, nothing goes out before it is on disk. */
static bool sync_gate_open(const struct bbt_agent *a)
{
        return a->cfg.fsync_policy != BBT_FSYNC_EACH || a->uplink.synced_seq >= a->uplink.appended_seq;
}

static void tick_timer_cb(uv_timer_t *t);

void bbt_uplink_kick(struct bbt_agent *a)
{
        if (!uv_is_active((uv_handle_t *)&a->uplink.tick_timer) && !a->stopped)
                uv_timer_start(&a->uplink.tick_timer, tick_timer_cb, TICK_MS, TICK_MS);
}

void bbt_uplink_pump(struct bbt_agent *a)
{
        struct bbt_uplink *u = &a->uplink;
        struct bbt_spool_record rec;
        size_t i;
        int mid, r;

        if (!a->session.connected || !sync_gate_open(a))
                return;
        while (u->window_len < u->window_cap - 2) {
                /* Paced, but for a stop: the last records go out now. */
                if (u->tokens < 1 && !a->stopping) {
                        bbt_uplink_kick(a);
                        break;
                }
                r = bbt_spool_next(a->spool, &rec);
                if (r == -ENOENT)
                        break;
                if (r < 0) {
                        bbt_log_error("spool %s: cannot read the next record: %s", a->cfg.spool_dir, strerror(-r));
                        break;
                }
                /* This session's will is the broker's to publish. A will of an
                 * earlier session goes out like any record: the broker sent it
                 * (the aggregator drops the copy) or lost it (this fills the gap). */
                if ((rec.flags & BBT_RECORD_WILL) && rec.seq == a->session.will_seq) {
                        window_push(u, rec.seq, -1, true);
                        continue;
                }
                for (i = 0; i < u->n_ahead; i++)
                        if (u->ahead[i].seq == rec.seq)
                                break;
                if (i < u->n_ahead) {
                        window_push(u, rec.seq, u->ahead[i].mid, u->ahead[i].acked);
                        continue;
                }
                /* A retained message from an earlier session is history: it
                 * must not replace what the broker retains now. */
                r = bbt_mqtt_publish(a->mqtt, rec.topic, rec.payload, rec.payload_len, 1,
                                     (rec.flags & BBT_SPOOL_RETAIN) && rec.seq >= a->session.first_seq, &mid);
                if (r < 0) {
                        if (r != -ENOTCONN)
                                bbt_log_warning("publish of seq %" PRIu64 " failed: %s", rec.seq, strerror(-r));
                        break; /* the cursor is rewound at the next connection */
                }
                window_push(u, rec.seq, mid, false);
                u->tokens -= 1;
                a->stats.published++;
        }
        /* Also when the window took only records acknowledged already (this
         * session's will, those published ahead): the watermark moves now,
         * not at the next acknowledgement. */
        window_advance(a);
}

void bbt_uplink_publish_ahead(struct bbt_agent *a, uint64_t seq, const char *topic, const char *json, size_t len,
                              bool retain)
{
        struct bbt_uplink *u = &a->uplink;
        int mid, r;

        if (a->cfg.fsync_policy == BBT_FSYNC_EACH)
                bbt_spool_sync(a->spool, NULL); /* two small records per connection */
        r = bbt_mqtt_publish(a->mqtt, topic, json, len, 1, retain, &mid);
        if (r < 0 || u->n_ahead >= BBT_UPLINK_AHEAD_MAX)
                return; /* it stays in the spool and goes out in order */
        u->ahead[u->n_ahead].seq = seq;
        u->ahead[u->n_ahead].mid = mid;
        u->ahead[u->n_ahead].acked = false;
        u->n_ahead++;
        a->stats.published++;
}

void bbt_uplink_connected(struct bbt_agent *a)
{
        struct bbt_uplink *u = &a->uplink;

        window_clear(u);
        bbt_spool_rewind(a->spool);
        u->n_ahead = 0;
        u->tokens = a->cfg.drain_rate / 10.0 > 1 ? a->cfg.drain_rate / 10.0 : 1;
}

void bbt_uplink_disconnected(struct bbt_agent *a)
{
        window_clear(&a->uplink);
        a->uplink.n_ahead = 0;
}

void bbt_uplink_acked(struct bbt_agent *a, int mid)
{
        struct bbt_uplink *u = &a->uplink;
        size_t i;

        for (i = 0; i < u->n_ahead; i++)
                if (u->ahead[i].mid == mid)
                        u->ahead[i].acked = true;
        for (i = 0; i < u->window_len; i++) {
                struct bbt_inflight *f = window_at(u, i);

                if (f->mid == mid && !f->acked) {
                        f->acked = true;
                        break;
                }
        }
        window_advance(a);
        bbt_uplink_pump(a);
}

/* ---- fsync off the loop thread ---- */

static void request_sync(struct bbt_agent *a);
static void fsync_due(struct bbt_agent *a);

static void sync_work_cb(uv_work_t *req)
{
        struct bbt_agent *a = req->data;

        a->uplink.sync_result = bbt_spool_sync(a->spool, &a->uplink.sync_synced);
}

static void sync_after_cb(uv_work_t *req, int status)
{
        struct bbt_agent *a = req->data;
        struct bbt_uplink *u = &a->uplink;

        u->sync_running = false;
        if (status == 0 && u->sync_result == 0 && u->sync_synced > u->synced_seq)
                u->synced_seq = u->sync_synced;
        else if (u->sync_result < 0)
                bbt_log_error("spool %s: fsync failed: %s", a->cfg.spool_dir, strerror(-u->sync_result));
        if (a->stopped)
                return;
        if (u->synced_seq < u->appended_seq) {
                /* Appended while this sync ran: at once, or when due. */
                if (a->cfg.fsync_policy == BBT_FSYNC_EACH)
                        request_sync(a);
                else
                        fsync_due(a);
        }
        bbt_uplink_pump(a);
}

static void request_sync(struct bbt_agent *a)
{
        struct bbt_uplink *u = &a->uplink;

        if (u->sync_running || a->stopped)
                return;
        u->sync_running = true;
        u->sync_work.data = a;
        if (uv_queue_work(a->loop, &u->sync_work, sync_work_cb, sync_after_cb) < 0)
                u->sync_running = false;
}

void bbt_uplink_appended(struct bbt_agent *a, uint64_t seq)
{
        a->uplink.appended_seq = seq;
        if (a->cfg.fsync_policy == BBT_FSYNC_EACH)
                request_sync(a);
        else
                fsync_due(a);
        meta_due(a);
}

void bbt_uplink_meta_changed(struct bbt_agent *a)
{
        meta_due(a);
}

/* ---- timers ---- */

static void tick_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = bbt_container_of(t, struct bbt_agent, uplink.tick_timer);
        struct bbt_uplink *u = &a->uplink;
        double per_tick = a->cfg.drain_rate * TICK_MS / 1000.0, resend_per_tick = a->cfg.resend_rate * TICK_MS / 1000.0;

        /* Token buckets hold at most one tick's worth (at least one message). */
        u->tokens += per_tick;
        if (u->tokens > (per_tick > 1 ? per_tick : 1))
                u->tokens = per_tick > 1 ? per_tick : 1;
        u->resend_tokens += resend_per_tick;
        if (u->resend_tokens > (resend_per_tick > 1 ? resend_per_tick : 1))
                u->resend_tokens = resend_per_tick > 1 ? resend_per_tick : 1;
        bbt_uplink_pump(a);
        u->resend_tokens -= (double)bbt_resend_run(a, (size_t)u->resend_tokens);
        /* Idle: nothing pending in the window, no backlog, no resends. */
        if (!bbt_resend_pending(a) && u->window_len == 0 && u->tokens >= (per_tick > 1 ? per_tick : 1))
                uv_timer_stop(t);
}

/* The timers below run only when they have work: the meta save META_MS after
 * the first urgent change since the last save (META_ACK_MS when only the ack
 * watermark and the appended mark moved: each heartbeat's ack would
 * otherwise cost a meta write and a wakeup of its own), the fsync
 * fsync_interval after the first record appended since the last sync. An idle
 * agent wakes for neither. */

static void meta_timer_cb(uv_timer_t *t);

/* Whether meta should be saved within META_MS. A drop alert waits for the
 * backlog's ack to be saved: promptly. */
static bool meta_urgent(struct bbt_agent *a)
{
        return bbt_spool_meta_urgent(a->spool) || a->produce.drop_raised;
}

/* The delay until the lazy deadline: META_ACK_MS after meta first changed
 * since the last save. */
static uint64_t meta_lazy_delay(struct bbt_agent *a)
{
        uint64_t now = uv_now(a->loop), due;

        if (!a->uplink.meta_dirty_since)
                a->uplink.meta_dirty_since = now;
        due = a->uplink.meta_dirty_since + META_ACK_MS;
        return due > now ? due - now : 0;
}

static void meta_due(struct bbt_agent *a)
{
        uv_timer_t *t = &a->uplink.meta_timer;
        uint64_t delay;

        if (a->stopped || !bbt_spool_meta_dirty(a->spool))
                return;
        delay = meta_lazy_delay(a);
        if (meta_urgent(a) && delay > META_MS)
                delay = META_MS;
        if (uv_is_active((uv_handle_t *)t) && uv_timer_get_due_in(t) <= delay)
                return;
        uv_timer_start(t, meta_timer_cb, delay, 0);
}

static void meta_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = bbt_container_of(t, struct bbt_agent, uplink.meta_timer);
        struct bbt_uplink *u = &a->uplink;

        if (!bbt_spool_meta_dirty(a->spool)) {
                u->meta_dirty_since = 0; /* saved meanwhile (a new session, the stop) */
                return;
        }
        /* Urgent when due (a heartbeat appended), but acknowledged since:
         * the save waits for the lazy deadline. */
        if (!meta_urgent(a) && meta_lazy_delay(a) > 0) {
                meta_due(a);
                return;
        }
        /* Saves only what changed: the ack watermark, the counters, the
         * witnesses of the seqs used (docs/spool.md). */
        if (bbt_spool_save_meta(a->spool) == 0)
                u->meta_dirty_since = 0;
        /* The backlog was acknowledged (which is a change, so this runs). */
        bbt_produce_drops_delivered(a);
        if (uv_now(a->loop) - u->expired_at >= EXPIRE_MS) {
                u->expired_at = uv_now(a->loop);
                bbt_spool_expire(a->spool);
        }
        /* A save that failed is tried again. */
        meta_due(a);
}

static void fsync_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = bbt_container_of(t, struct bbt_agent, uplink.fsync_timer);

        if (a->uplink.appended_seq > a->uplink.synced_seq)
                request_sync(a);
}

static void fsync_due(struct bbt_agent *a)
{
        if (!uv_is_active((uv_handle_t *)&a->uplink.fsync_timer) && !a->stopped)
                uv_timer_start(&a->uplink.fsync_timer, fsync_timer_cb, (uint64_t)a->cfg.fsync_interval_ms, 0);
}

void bbt_uplink_init(struct bbt_agent *a)
{
        uv_timer_init(a->loop, &a->uplink.tick_timer);
        uv_timer_init(a->loop, &a->uplink.fsync_timer);
        uv_timer_init(a->loop, &a->uplink.meta_timer);
        a->uplink.tokens = 1;
        a->uplink.expired_at = uv_now(a->loop);
}

void bbt_uplink_close(struct bbt_agent *a)
{
        bbt_agent_close_handle(a, (uv_handle_t *)&a->uplink.tick_timer);
        bbt_agent_close_handle(a, (uv_handle_t *)&a->uplink.fsync_timer);
        bbt_agent_close_handle(a, (uv_handle_t *)&a->uplink.meta_timer);
}
