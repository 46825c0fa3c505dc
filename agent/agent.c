/* The bbt-agent daemon: every message is spooled, then published in seq order; commands answered; clean stop. */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bbt/fileio.h"
#include "bbt/log.h"
#include "bbt/mqtt.h"
#include "bbt/notify.h"
#include "bbt/protocol.h"
#include "audio.h"
#include "display.h"
#include "health.h"
#include "input.h"
#include "periph.h"
#include "projector.h"
#include "spool.h"
#include "counters.h"
#include "usage_tracker.h"

#define TICK_MS 100          /* pacing of backlog drain and resends */
#define META_MS 1000         /* how often acknowledgements are saved */
#define EXPIRE_MS 60000      /* how often expired spool segments are removed */
#define STOP_WAIT_MS 4000    /* how long a stop waits for acknowledgements */
#define MAX_RESEND_JOBS 8
#define RECENT_CMD_IDS 16
#define SEQ_BLOCK 1000

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Spool record flags: bit 0 is the MQTT retain flag (spool.h); bit 1 marks a
 * will, stored so that no seq is ever missing: the uplink leaves the current
 * session's will to the broker and sends earlier ones unretained. */
#define RECORD_WILL 0x02

struct inflight {
        uint64_t seq;
        int mid;
        bool acked;
};

#define RESEND_MISSING_MAX 64 /* ranges a resend reply names as missing */

struct resend_job {
        char id[65];
        uint64_t from, to, next, sent;
        uint64_t withheld; /* the live session's will, if in the range (0: not) */
        uint64_t expect;   /* the seq after the last record the spool gave (FROM at first) */
        struct bbt_spool_seq_range *missing; /* seqs of the range the spool does not hold */
        size_t n_missing;
};

struct bbt_agent {
        uv_loop_t *loop;
        char *config_path;
        struct bbt_agent_config cfg;
        char prefix[BBT_TOPIC_MAX]; /* "bbt/v1/county/school/terminal/" */
        char cmd_topic[BBT_TOPIC_MAX];

        struct bbt_mqtt *mqtt;
        struct bbt_spool *spool;
        struct bbt_counters *counters; /* the seq and boot counters */
        struct bbt_usage_tracker usage;
        char hostname[65], os[129], machine_id[65];

        uv_timer_t hb_timer, tick_timer, fsync_timer, usage_timer, meta_timer, stop_timer, watchdog_timer;
        uv_signal_t sig_term, sig_int, sig_hup;
        int open_handles;

        /* fsync off the loop thread */
        uv_work_t sync_work;
        bool sync_running;
        int sync_result;
        uint64_t appended_seq, synced_seq, sync_synced;

        /* the MQTT session */
        uint32_t boot;
        uint64_t will_seq;
        int64_t will_ts;
        bool connected, session_used;
        uint64_t session_first_seq; /* retained records older than this go out unretained */
        struct {
                uint64_t seq;
                int mid;
                bool acked;
        } early[2]; /* birth and inventory, sent ahead of the backlog */
        size_t n_early;
        unsigned connect_failures;

        /* the uplink window, in spool order */
        struct inflight *window;
        size_t window_cap, window_head, window_len;
        double tokens, resend_tokens;
        uint64_t acked_through;
        unsigned meta_ticks; /* meta saves since the last expiry pass */

        struct resend_job jobs[MAX_RESEND_JOBS];
        size_t n_jobs;
        struct {
                char id[65];
                bool answered, ok;
                char error[160];
        } recent[RECENT_CMD_IDS]; /* commands seen lately, and how they were answered */
        size_t recent_next;
        uint64_t prev_will_seq; /* the will of the session that ended last, 0: none */

        bool spool_drop_raised; /* a spool_drop alert is raised and not yet cleared */

        /* hardware drivers */
        struct bbt_driver_events driver_events;
        struct bbt_driver *drivers[6];
        size_t n_drivers;
        struct bbt_driver *periph, *projector;
        bool display_panel_on, display_projector_on;
        bool has_projector_status;
        struct bbt_projector_status projector_status;
        char projector_input[17];

        bool stopping, stopped;
        uint64_t stop_started;
        int shutdown_mid;
        bool shutdown_acked;
        struct bbt_agent_stats stats;
};

static int64_t clock_ms(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_real(void)
{
        return clock_ms(CLOCK_REALTIME);
}

static int64_t now_mono(void)
{
        return clock_ms(CLOCK_MONOTONIC);
}

/* The port actually used: 0 in the file means the MQTT default. */
static long long broker_port(const struct bbt_agent *a)
{
        return bbt_broker_config_port(&a->cfg.broker);
}

static void build_topic(const struct bbt_agent *a, enum bbt_channel ch, char *buf, size_t size)
{
        snprintf(buf, size, "%s%s", a->prefix, bbt_channel_name(ch));
}

/* ---- producing messages ---- */

static void pump(struct bbt_agent *a);
static void request_sync(struct bbt_agent *a);
static void raise_drop_alert(struct bbt_agent *a);

/* Gives M the next seq, the time and the session, encodes it and appends it to
 * the spool. Returns 0 with the JSON in *RET_JSON (may be NULL: then freed
 * here), or a negative errno (logged; the message is lost and counted). */
static int produce_record(struct bbt_agent *a, struct bbt_msg *m, unsigned flags, char **ret_json,
                          size_t *ret_len)
{
        char topic[BBT_TOPIC_MAX], errtext[300];
        struct bbt_error err;
        uint64_t seq, dropped = 0;
        char *json;
        size_t len;
        int r;

        r = bbt_counters_next_seq(a->counters, &seq);
        if (r < 0) {
                bbt_log_error("cannot reserve a sequence number in %s: %s; %s message lost (counted in hb "
                              "spool.dropped)", a->cfg.state_dir, strerror(-r), bbt_channel_name(m->channel));
                bbt_spool_note_unstored(a->spool, 0);
                return r;
        }
        bbt_spool_set_seq_ceiling(a->spool, bbt_counters_ceiling(a->counters));
        m->seq = (int64_t)seq;
        m->ts = now_real();
        m->boot = a->boot;
        r = bbt_msg_encode(m, &json, &len, &err);
        if (r < 0) {
                bbt_log_error("internal: %s message seq %" PRIu64 " does not encode: %s",
                              bbt_channel_name(m->channel), seq, bbt_error_format(&err, errtext, sizeof(errtext)));
                bbt_spool_note_unstored(a->spool, seq);
                return r;
        }
        build_topic(a, m->channel, topic, sizeof(topic));
        if (bbt_channel_retained(m->channel))
                flags |= BBT_SPOOL_RETAIN;
        r = bbt_spool_append(a->spool, seq, m->ts, flags, topic, json, len, &dropped);
        if (r < 0) {
                /* The spool counts it and remembers its seq for resend replies. */
                bbt_log_error("spool %s: cannot store %s seq %" PRIu64 ": %s; message lost (counted in hb spool.dropped)",
                              a->cfg.spool_dir, bbt_channel_name(m->channel), seq, strerror(-r));
                a->stats.spool_errors++;
                free(json);
                return r;
        }
        a->stats.produced++;
        a->appended_seq = seq;
        if (dropped) {
                bbt_log_warning("spool %s is full (max_size %lld bytes): dropped the %" PRIu64
                                " oldest unsent records", a->cfg.spool_dir, a->cfg.spool_max_bytes, dropped);
        }
        if (a->cfg.fsync_policy == BBT_FSYNC_EACH)
                request_sync(a);
        if (ret_json) {
                *ret_json = json;
                *ret_len = len;
        } else {
                free(json);
        }
        if (!a->spool_drop_raised)
                raise_drop_alert(a);
        return 0;
}

/* Raises the spool_drop alert when messages were lost (dropped from a full
 * spool, or not stored at all) since the alert was last cleared; the counts
 * and the clear mark live in the spool's meta file, so a restart neither
 * forgets a loss nor leaves an alert uncleared. */
static void raise_drop_alert(struct bbt_agent *a)
{
        struct bbt_spool_stats st;
        struct bbt_msg alert;
        char detail[200];

        bbt_spool_stats(a->spool, &st);
        if (st.dropped + st.unstored <= st.drop_cleared)
                return;
        a->spool_drop_raised = true;
        snprintf(detail, sizeof(detail),
                 "%" PRIu64 " messages lost: %" PRIu64 " unsent records dropped from the full spool (max_size %lld "
                 "bytes), %" PRIu64 " could not be stored (disk full or write error), in all",
                 st.dropped + st.unstored - st.drop_cleared, st.dropped, a->cfg.spool_max_bytes, st.unstored);
        bbt_msg_init(&alert, BBT_CH_ALERT);
        alert.body.alert.code = "spool_drop";
        alert.body.alert.severity = BBT_SEVERITY_WARNING;
        alert.body.alert.state = BBT_ALERT_RAISED;
        alert.body.alert.detail = detail;
        produce_record(a, &alert, 0, NULL, NULL);
}

/* Produces M and lets the uplink send it. */
static int produce(struct bbt_agent *a, struct bbt_msg *m)
{
        int r = produce_record(a, m, 0, NULL, NULL);

        pump(a);
        return r;
}

static void produce_alert(struct bbt_agent *a, const char *code, enum bbt_severity sev,
                          enum bbt_alert_state state, const char *detail)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_ALERT);
        m.body.alert.code = code;
        m.body.alert.severity = sev;
        m.body.alert.state = state;
        m.body.alert.detail = detail;
        produce(a, &m);
}

static void usage_emit_cb(void *userdata, const struct bbt_usage *interval)
{
        struct bbt_agent *a = userdata;
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_USAGE);
        m.body.usage = *interval;
        produce(a, &m);
}

static void produce_heartbeat(struct bbt_agent *a)
{
        struct bbt_spool_stats st;
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_HB);
        /* The drivers read at heartbeat time: health, while [health] enabled. */
        for (size_t i = 0; a->cfg.health_enabled && i < a->n_drivers; i++)
                if (a->drivers[i]->ops->heartbeat)
                        a->drivers[i]->ops->heartbeat(a->drivers[i], &m.body.hb);
        m.body.hb.state = bbt_usage_tracker_state(&a->usage);
        if (a->has_projector_status) {
                m.body.hb.has_projector = true;
                m.body.hb.projector = a->projector_status;
        }
        bbt_spool_stats(a->spool, &st);
        m.body.hb.spool_depth = (int64_t)st.depth;
        m.body.hb.spool_dropped = (int64_t)(st.dropped + st.unstored);
        produce(a, &m);
}

static void read_identity(struct bbt_agent *a)
{
        char path[4096], line[512];
        struct utsname u;
        FILE *f;

        if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
                snprintf(a->hostname, sizeof(a->hostname), "unknown");
        snprintf(a->os, sizeof(a->os), "Linux");
        if (uname(&u) == 0)
                snprintf(a->os, sizeof(a->os), "%.20s %.60s", u.sysname, u.release);
        snprintf(path, sizeof(path), "%s/etc/os-release", a->cfg.root);
        f = fopen(path, "re");
        if (f) {
                while (fgets(line, sizeof(line), f)) {
                        if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
                                char *v = line + 12;

                                v[strcspn(v, "\n")] = '\0';
                                if (*v == '"') {
                                        v++;
                                        v[strcspn(v, "\"")] = '\0';
                                }
                                /* os is text(128): keep it short and whole characters. */
                                snprintf(a->os, sizeof(a->os), "%.100s", v);
                                break;
                        }
                }
                fclose(f);
        }
        snprintf(a->machine_id, sizeof(a->machine_id), "unknown");
        snprintf(path, sizeof(path), "%s/etc/machine-id", a->cfg.root);
        f = fopen(path, "re");
        if (f) {
                if (fgets(line, sizeof(line), f)) {
                        line[strcspn(line, "\n")] = '\0';
                        if (*line && strlen(line) <= 64 && strspn(line, "0123456789abcdefABCDEF") == strlen(line))
                                snprintf(a->machine_id, sizeof(a->machine_id), "%.64s", line);
                }
                fclose(f);
        }
}

/* ---- the session: boot counter, will, birth ---- */

static void will_msg(const struct bbt_agent *a, struct bbt_msg *m, enum bbt_state_reason reason)
{
        bbt_msg_init(m, BBT_CH_STATE);
        m->seq = (int64_t)a->will_seq;
        m->ts = a->will_ts;
        m->boot = a->boot;
        m->body.state.online = false;
        m->body.state.reason = reason;
}

/* Starts a new session: the next boot, a will with the next seq, stored in the
 * spool (so a resend can replay it) and handed to the connection. */
/* Hands the current session's will to the connection (if there is one yet). */
static int hand_will(struct bbt_agent *a)
{
        struct bbt_mqtt_will will;
        struct bbt_msg m;
        char topic[BBT_TOPIC_MAX], *json;
        size_t len;
        int r;

        if (!a->mqtt)
                return 0;
        will_msg(a, &m, BBT_REASON_LOST);
        r = bbt_msg_encode(&m, &json, &len, NULL);
        if (r < 0)
                return r;
        build_topic(a, BBT_CH_STATE, topic, sizeof(topic));
        will = (struct bbt_mqtt_will){ .topic = topic, .payload = json, .len = len, .qos = 1, .retain = true };
        r = bbt_mqtt_set_will(a->mqtt, &will);
        free(json);
        return r;
}

static int new_session(struct bbt_agent *a)
{
        struct bbt_msg m;
        int r;

        r = bbt_counters_new_session(a->counters, &a->boot);
        if (r < 0) {
                bbt_log_error("cannot save the boot counter in %s: %s", a->cfg.state_dir, strerror(-r));
                return r;
        }
        /* Its second witness, on disk before the session uses it (a reconnect
         * is rare: the short blocking write is the state file's too). */
        bbt_spool_set_boot(a->spool, a->boot);
        r = bbt_spool_save_meta(a->spool);
        if (r < 0)
                bbt_log_warning("spool %s: cannot save meta: %s", a->cfg.spool_dir, strerror(-r));
        a->stats.boot = a->boot;
        bbt_msg_init(&m, BBT_CH_STATE);
        m.body.state.online = false;
        m.body.state.reason = BBT_REASON_LOST;
        r = produce_record(a, &m, RECORD_WILL, NULL, NULL);
        if (r < 0)
                return r;
        a->will_seq = (uint64_t)m.seq;
        a->will_ts = m.ts;
        a->session_used = false;
        return hand_will(a);
}

/* Produces a message and publishes it at once, ahead of the backlog. */
static void produce_early(struct bbt_agent *a, struct bbt_msg *m)
{
        char topic[BBT_TOPIC_MAX], *json;
        size_t len;
        int mid, r;

        if (produce_record(a, m, 0, &json, &len) < 0)
                return;
        build_topic(a, m->channel, topic, sizeof(topic));
        if (a->cfg.fsync_policy == BBT_FSYNC_EACH)
                bbt_spool_sync(a->spool, NULL); /* two small records per connection */
        r = bbt_mqtt_publish(a->mqtt, topic, json, len, 1, bbt_channel_retained(m->channel), &mid);
        free(json);
        if (r < 0 || a->n_early >= 2)
                return; /* it stays in the spool and goes out in order */
        a->early[a->n_early].seq = (uint64_t)m->seq;
        a->early[a->n_early].mid = mid;
        a->early[a->n_early].acked = false;
        a->n_early++;
        a->stats.published++;
}

static void produce_inventory(struct bbt_agent *a, bool early)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_INVENTORY);
        if (a->periph) {
                const struct bbt_dev *devs;

                m.body.inventory.n_devices = bbt_periph_inventory(a->periph, &devs);
                m.body.inventory.devices = (struct bbt_dev *)devs;
        }
        if (early)
                produce_early(a, &m);
        else
                produce(a, &m);
}

/* ---- the uplink: spool to broker, in order, within a window ---- */

static void window_clear(struct bbt_agent *a)
{
        a->window_head = a->window_len = 0;
}

static struct inflight *window_at(struct bbt_agent *a, size_t i)
{
        return &a->window[(a->window_head + i) % a->window_cap];
}

static void window_push(struct bbt_agent *a, uint64_t seq, int mid, bool acked)
{
        struct inflight *f = window_at(a, a->window_len);

        f->seq = seq;
        f->mid = mid;
        f->acked = acked;
        a->window_len++;
}

/* Acknowledges the window's head while it is acknowledged. */
static void window_advance(struct bbt_agent *a)
{
        uint64_t through = 0;
        size_t n = 0;

        while (a->window_len && window_at(a, 0)->acked) {
                through = window_at(a, 0)->seq;
                a->window_head = (a->window_head + 1) % a->window_cap;
                a->window_len--;
                n++;
        }
        if (!n)
                return;
        bbt_spool_ack_through(a->spool, through);
        a->acked_through = through;
        a->stats.acked += n;
}

static bool sync_gate_open(const struct bbt_agent *a)
{
        return a->cfg.fsync_policy != BBT_FSYNC_EACH || a->synced_seq >= a->appended_seq;
}

static void tick_timer_cb(uv_timer_t *t);

static void ensure_ticking(struct bbt_agent *a)
{
        if (!uv_is_active((uv_handle_t *)&a->tick_timer) && !a->stopped)
                uv_timer_start(&a->tick_timer, tick_timer_cb, TICK_MS, TICK_MS);
}

static void pump(struct bbt_agent *a)
{
        struct bbt_spool_record rec;
        size_t i;
        int mid, r;

        if (!a->connected || !sync_gate_open(a))
                return;
        while (a->window_len < a->window_cap - 2) {
                /* Paced, but for a stop: the last records go out now. */
                if (a->tokens < 1 && !a->stopping) {
                        ensure_ticking(a);
                        return;
                }
                r = bbt_spool_next(a->spool, &rec);
                if (r == -ENOENT)
                        return;
                if (r < 0) {
                        bbt_log_error("spool %s: cannot read the next record: %s", a->cfg.spool_dir, strerror(-r));
                        return;
                }
                /* This session's will is the broker's to publish. A will of an
                 * earlier session goes out like any record: the broker sent it
                 * (the aggregator drops the copy) or lost it (this fills the gap). */
                if ((rec.flags & RECORD_WILL) && rec.seq == a->will_seq) {
                        window_push(a, rec.seq, -1, true);
                        continue;
                }
                for (i = 0; i < a->n_early; i++)
                        if (a->early[i].seq == rec.seq)
                                break;
                if (i < a->n_early) {
                        window_push(a, rec.seq, a->early[i].mid, a->early[i].acked);
                        continue;
                }
                /* A retained message from an earlier session is history: it
                 * must not replace what the broker retains now. */
                r = bbt_mqtt_publish(a->mqtt, rec.topic, rec.payload, rec.payload_len, 1,
                                     (rec.flags & BBT_SPOOL_RETAIN) && rec.seq >= a->session_first_seq, &mid);
                if (r < 0) {
                        if (r != -ENOTCONN)
                                bbt_log_warning("publish of seq %" PRIu64 " failed: %s", rec.seq, strerror(-r));
                        return; /* the cursor is rewound at the next connection */
                }
                window_push(a, rec.seq, mid, false);
                a->tokens -= 1;
                a->stats.published++;
        }
        window_advance(a);
}

/* ---- fsync off the loop thread ---- */

static void sync_work_cb(uv_work_t *req)
{
        struct bbt_agent *a = req->data;

        a->sync_result = bbt_spool_sync(a->spool, &a->sync_synced);
}

static void sync_after_cb(uv_work_t *req, int status)
{
        struct bbt_agent *a = req->data;

        a->sync_running = false;
        if (status == 0 && a->sync_result == 0 && a->sync_synced > a->synced_seq)
                a->synced_seq = a->sync_synced;
        else if (a->sync_result < 0)
                bbt_log_error("spool %s: fsync failed: %s", a->cfg.spool_dir, strerror(-a->sync_result));
        if (a->stopped)
                return;
        if (a->synced_seq < a->appended_seq && a->cfg.fsync_policy == BBT_FSYNC_EACH)
                request_sync(a);
        pump(a);
}

static void request_sync(struct bbt_agent *a)
{
        if (a->sync_running || a->stopped)
                return;
        a->sync_running = true;
        a->sync_work.data = a;
        if (uv_queue_work(a->loop, &a->sync_work, sync_work_cb, sync_after_cb) < 0)
                a->sync_running = false;
}

/* ---- resend ---- */

/* The entry for command ID if it was seen lately, else -1. */
static int recent_find(struct bbt_agent *a, const char *id)
{
        size_t i;

        for (i = 0; i < RECENT_CMD_IDS; i++)
                if (a->recent[i].id[0] && strcmp(a->recent[i].id, id) == 0)
                        return (int)i;
        return -1;
}

static void reply(struct bbt_agent *a, const char *id, bool ok, const char *error, cJSON *result)
{
        int i = recent_find(a, id);
        struct bbt_msg m;

        if (i >= 0) {
                a->recent[i].answered = true;
                a->recent[i].ok = ok;
                snprintf(a->recent[i].error, sizeof(a->recent[i].error), "%s", error ? error : "");
        }

        bbt_msg_init(&m, BBT_CH_CMD_REPLY);
        m.body.reply.id = id;
        m.body.reply.ok = ok;
        m.body.reply.error = error;
        m.body.reply.result_json = result;
        produce(a, &m);
        cJSON_Delete(result);
}

struct resend_ctx {
        struct bbt_agent *a;
        struct resend_job *job;
        int failed;
        uint64_t withheld;
};

/* Notes FROM..TO of JOB's range as not in the spool (the first
 * RESEND_MISSING_MAX ranges; the aggregator asks again for the rest). */
static void job_note_missing(struct resend_job *job, uint64_t from, uint64_t to)
{
        if (from > to || job->n_missing == RESEND_MISSING_MAX)
                return;
        if (!job->missing) {
                job->missing = calloc(RESEND_MISSING_MAX, sizeof(*job->missing));
                if (!job->missing)
                        return;
        }
        job->missing[job->n_missing].from = from;
        job->missing[job->n_missing].to = to;
        job->n_missing++;
}

static int resend_record_cb(void *userdata, const struct bbt_spool_record *rec)
{
        struct resend_ctx *ctx = userdata;
        int mid, r;

        if (rec->seq > ctx->job->expect)
                job_note_missing(ctx->job, ctx->job->expect, rec->seq - 1);
        ctx->job->expect = rec->seq + 1;

        /* The live session's will would end the session in the eyes of a
         * consumer: it stays the broker's to publish. Other history goes out,
         * never retained. */
        if (rec->seq == ctx->a->will_seq) {
                ctx->withheld = rec->seq;
                return 0;
        }
        r = bbt_mqtt_publish(ctx->a->mqtt, rec->topic, rec->payload, rec->payload_len, 1, false, &mid);
        if (r < 0) {
                ctx->failed = r;
                return 1; /* not taken: carry on from here after reconnecting */
        }
        ctx->a->stats.resent++;
        ctx->a->stats.published++;
        return 0;
}

static void drop_job(struct bbt_agent *a)
{
        free(a->jobs[0].missing);
        memmove(&a->jobs[0], &a->jobs[1], (a->n_jobs - 1) * sizeof(a->jobs[0]));
        a->n_jobs--;
}

/* Adds {"from","to","reason"} to the reply's ARRAY. */
static void add_missing(cJSON *array, uint64_t from, uint64_t to, const char *reason)
{
        cJSON *o = cJSON_CreateObject();

        cJSON_AddNumberToObject(o, "from", (double)from);
        cJSON_AddNumberToObject(o, "to", (double)to);
        cJSON_AddStringToObject(o, "reason", reason);
        cJSON_AddItemToArray(array, o);
}

/* The first part of FROM..TO inside one of the N ranges R (ascending), in
 * *RET; false if none. */
static bool first_overlap(const struct bbt_seq_range *r, size_t n, uint64_t from, uint64_t to,
                          struct bbt_seq_range *ret)
{
        for (size_t i = 0; i < n; i++) {
                if (r[i].to < from || r[i].from > to)
                        continue;
                ret->from = r[i].from > from ? r[i].from : from;
                ret->to = r[i].to < to ? r[i].to : to;
                return true;
        }
        return false;
}

/* Splits each seq range of the resend that the spool does not hold by what
 * the agent knows of it: never used (skipped at a start after an unclean
 * stop: named whole, even where it reaches beyond the request), not stored
 * (a failed append), or neither -- a record lost from the spool (damage, a
 * tail cut off after a crash). Parts that are neither and lie below
 * FIRST_AVAILABLE are left to the reply's first_retained. */
static cJSON *missing_json(struct bbt_agent *a, const struct resend_job *job, uint64_t first_available)
{
        struct bbt_spool_seq_range u[BBT_SPOOL_UNSTORED_RANGES];
        struct bbt_seq_range unstored[BBT_SPOOL_UNSTORED_RANGES];
        const struct bbt_seq_range *skipped, *last_skipped = NULL;
        size_t n_skipped, n_unstored;
        cJSON *array = cJSON_CreateArray();

        n_skipped = bbt_counters_skipped(a->counters, &skipped);
        n_unstored = bbt_spool_unstored_seqs(a->spool, u, BBT_SPOOL_UNSTORED_RANGES);
        for (size_t i = 0; i < n_unstored; i++) {
                unstored[i].from = u[i].from;
                unstored[i].to = u[i].to;
        }
        for (size_t i = 0; i < job->n_missing; i++) {
                uint64_t at = job->missing[i].from, end = job->missing[i].to;

                while (at <= end && cJSON_GetArraySize(array) < RESEND_MISSING_MAX) {
                        struct bbt_seq_range sk, us;
                        bool in_s = first_overlap(skipped, n_skipped, at, end, &sk);
                        bool in_u = first_overlap(unstored, n_unstored, at, end, &us);
                        uint64_t upto = end;

                        if (in_s && sk.from == at) {
                                /* The whole range skipped, also beyond the
                                 * request: what arrived of it anywhere tells
                                 * the aggregator how much was used. */
                                const struct bbt_seq_range *whole = NULL;

                                for (size_t k = 0; k < n_skipped; k++)
                                        if (at >= skipped[k].from && at <= skipped[k].to)
                                                whole = &skipped[k];
                                if (whole && (!last_skipped || last_skipped != whole))
                                        add_missing(array, whole->from, whole->to, "skipped");
                                last_skipped = whole;
                                upto = sk.to;
                        } else if (in_u && us.from == at) {
                                add_missing(array, at, us.to, "unstored");
                                upto = us.to;
                        } else {
                                /* Up to the next range the agent knows more of. */
                                if (in_s && sk.from - 1 < upto)
                                        upto = sk.from - 1;
                                if (in_u && us.from - 1 < upto)
                                        upto = us.from - 1;
                                if (first_available > 0 && upto >= first_available)
                                        add_missing(array, at > first_available ? at : first_available, upto,
                                                    "damaged");
                        }
                        if (upto == UINT64_MAX)
                                break;
                        at = upto + 1;
                }
        }
        /* And every other range skipped (the newest first, while there is
         * room): the aggregator settles them all in this one round, also
         * those whose births were lost. */
        for (size_t k = n_skipped; k-- > 0 && cJSON_GetArraySize(array) < RESEND_MISSING_MAX;) {
                bool listed = false;
                const cJSON *e;

                cJSON_ArrayForEach(e, array)
                        if ((uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "from")) == skipped[k].from)
                                listed = true;
                if (!listed)
                        add_missing(array, skipped[k].from, skipped[k].to, "skipped");
        }
        return array;
}

static void finish_job(struct bbt_agent *a, struct resend_job *job, const struct bbt_spool_range *range)
{
        cJSON *result = cJSON_CreateObject(), *missing;
        uint64_t end = job->to < range->last_seq ? job->to : range->last_seq;

        /* The seqs after the last record given, up to the spool's last. */
        if (job->expect <= end)
                job_note_missing(job, job->expect, end);

        cJSON_AddNumberToObject(result, "from", (double)job->from);
        cJSON_AddNumberToObject(result, "to", (double)job->to);
        cJSON_AddNumberToObject(result, "sent", (double)job->sent);
        /* Below first_retained the spool no longer holds the range; above
         * last_seq nothing was ever produced. */
        cJSON_AddNumberToObject(result, "first_retained", (double)range->first_available);
        cJSON_AddNumberToObject(result, "last_seq", (double)range->last_seq);
        /* The will of the live session is the broker's to publish when the
         * session ends (or the clean stop's): not a gap, not lost. */
        if (job->withheld) {
                cJSON *w = cJSON_AddArrayToObject(result, "withheld");

                cJSON_AddItemToArray(w, cJSON_CreateNumber((double)job->withheld));
        }
        /* What the agent knows of the seqs it does not hold: not a gap to
         * ask for again. */
        missing = missing_json(a, job, range->first_available);
        if (cJSON_GetArraySize(missing) > 0)
                cJSON_AddItemToObject(result, "missing", missing);
        else
                cJSON_Delete(missing);
        bbt_log_info("resend %s: seq %" PRIu64 "..%" PRIu64 ": %" PRIu64 " records republished", job->id, job->from,
                     job->to, job->sent);
        reply(a, job->id, true, NULL, result);
        drop_job(a);
}

static void run_resend(struct bbt_agent *a)
{
        struct resend_ctx ctx = { .a = a, .job = &a->jobs[0] };
        struct bbt_spool_range range;
        struct resend_job *job;
        size_t budget;
        int r;

        if (!a->n_jobs || !a->connected)
                return;
        job = &a->jobs[0];
        budget = (size_t)a->resend_tokens;
        if (!budget)
                return;
        r = bbt_spool_read_range(a->spool, job->next, job->to, budget, resend_record_cb, &ctx, &range);
        if (r < 0) {
                bbt_log_error("resend %s: cannot read the spool: %s", job->id, strerror(-r));
                reply(a, job->id, false, "cannot read the spool", NULL);
                drop_job(a);
                return;
        }
        a->resend_tokens -= (double)range.delivered;
        /* The withheld will is not sent: the reply names it instead. */
        job->sent += range.delivered - (ctx.withheld ? 1 : 0);
        if (ctx.withheld)
                job->withheld = ctx.withheld;
        job->next = range.next;
        if (range.done)
                finish_job(a, job, &range);
}

/* ---- commands ---- */

static void recent_add(struct bbt_agent *a, const char *id)
{
        memset(&a->recent[a->recent_next], 0, sizeof(a->recent[0]));
        snprintf(a->recent[a->recent_next].id, sizeof(a->recent[0].id), "%s", id);
        a->recent_next = (a->recent_next + 1) % RECENT_CMD_IDS;
}

/* The id of a command that failed validation, if it has a usable one. */
static bool salvage_id(const void *payload, size_t len, char *buf, size_t size)
{
        cJSON *root = cJSON_ParseWithLength(payload, len);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
        bool ok = cJSON_IsString(id) && bbt_id_valid(id->valuestring) == true;

        if (ok)
                snprintf(buf, size, "%s", id->valuestring);
        cJSON_Delete(root);
        return ok;
}

struct power_request {
        struct bbt_agent *a;
        char id[65];
};

static void projector_power_cb(void *userdata, int status, const char *reason)
{
        struct power_request *req = userdata;
        char error[200];

        if (status < 0)
                snprintf(error, sizeof(error), "projector: %s", reason ? reason : strerror(-status));
        if (!req->a->stopped)
                reply(req->a, req->id, status == 0, status == 0 ? NULL : error, NULL);
        free(req);
}

/* projector_power: answered when the projector has accepted or refused it. */
static void start_projector_power(struct bbt_agent *a, const char *id, bool on)
{
        struct power_request *req;
        int r;

        if (!a->projector) {
                reply(a, id, false, "no projector configured ([projector] host)", NULL);
                return;
        }
        req = calloc(1, sizeof(*req));
        if (!req) {
                reply(a, id, false, "out of memory", NULL);
                return;
        }
        req->a = a;
        snprintf(req->id, sizeof(req->id), "%s", id);
        r = bbt_projector_power(a->projector, on, projector_power_cb, req);
        if (r < 0) {
                reply(a, id, false, r == -EBUSY ? "busy: a projector power command is pending" : strerror(-r), NULL);
                free(req);
        }
}

static void handle_cmd(struct bbt_agent *a, const void *payload, size_t len)
{
        char errtext[300], id[65];
        struct bbt_error err;
        struct bbt_msg m;
        const struct bbt_cmd *c;
        int r;

        a->stats.cmd_received++;
        r = bbt_msg_decode(BBT_CH_CMD, payload, len, &m, &err);
        if (r < 0) {
                a->stats.cmd_rejected++;
                bbt_log_warning("%s: rejected command: %s", a->cmd_topic, bbt_error_format(&err, errtext, sizeof(errtext)));
                if (salvage_id(payload, len, id, sizeof(id)))
                        reply(a, id, false, errtext, NULL);
                return;
        }
        c = &m.body.cmd;
        r = recent_find(a, c->id);
        if (r >= 0) {
                /* QoS 1 may deliver twice, and a reply may have been lost:
                 * answer again, never run it again. */
                bbt_log_debug("command %s repeated: answering again without running it", c->id);
                if (a->recent[r].answered)
                        reply(a, c->id, a->recent[r].ok, a->recent[r].ok ? NULL : a->recent[r].error, NULL);
                goto out;
        }
        recent_add(a, c->id);
        bbt_log_info("command %s: %s", c->id, c->op);
        switch (c->op_code) {
        case BBT_OP_RESEND:
                if (a->n_jobs == MAX_RESEND_JOBS) {
                        reply(a, c->id, false, "busy: too many resend requests queued", NULL);
                        break;
                }
                snprintf(a->jobs[a->n_jobs].id, sizeof(a->jobs[0].id), "%s", c->id);
                a->jobs[a->n_jobs].from = (uint64_t)c->args.resend.from;
                a->jobs[a->n_jobs].to = (uint64_t)c->args.resend.to;
                a->jobs[a->n_jobs].next = (uint64_t)c->args.resend.from;
                a->jobs[a->n_jobs].expect = (uint64_t)c->args.resend.from;
                a->jobs[a->n_jobs].sent = 0;
                a->jobs[a->n_jobs].withheld = 0;
                a->jobs[a->n_jobs].missing = NULL;
                a->jobs[a->n_jobs].n_missing = 0;
                a->n_jobs++;
                ensure_ticking(a);
                break;
        case BBT_OP_PROJECTOR_POWER:
                start_projector_power(a, c->id, c->args.projector_power.on);
                break;
        case BBT_OP_INVENTORY:
                produce_inventory(a, false);
                reply(a, c->id, true, NULL, NULL);
                break;
        default:
                snprintf(errtext, sizeof(errtext), "unsupported op %s", c->op);
                reply(a, c->id, false, errtext, NULL);
                break;
        }
out:
        bbt_msg_free(&m);
}

static int prev_will_cb(void *userdata, const struct bbt_spool_record *rec)
{
        struct bbt_agent *a = userdata;
        int mid;

        if (bbt_mqtt_publish(a->mqtt, rec->topic, rec->payload, rec->payload_len, 1, false, &mid) == 0)
                a->stats.published++;
        return 0;
}

/* The broker publishes a dropped session's will, unless it crashed first: send
 * it once more, unretained, so its seq is never missing (the aggregator drops
 * the copy if the broker's got through). */
static void republish_prev_will(struct bbt_agent *a)
{
        struct bbt_spool_range range;

        if (!a->prev_will_seq)
                return;
        bbt_spool_read_range(a->spool, a->prev_will_seq, a->prev_will_seq, 1, prev_will_cb, a, &range);
        a->prev_will_seq = 0;
}

/* ---- connection callbacks ---- */

static void on_connect(void *userdata, bool session_present)
{
        struct bbt_agent *a = userdata;
        struct bbt_msg birth;

        a->connected = true;
        a->session_used = true;
        a->connect_failures = 0;
        bbt_log_notice("connected to %s:%lld (boot %" PRIu32 ")", a->cfg.broker.host, broker_port(a), a->boot);
        window_clear(a);
        bbt_spool_rewind(a->spool);
        a->n_early = 0;
        a->tokens = a->cfg.drain_rate / 10.0 > 1 ? a->cfg.drain_rate / 10.0 : 1;

        bbt_msg_init(&birth, BBT_CH_STATE);
        birth.body.state.online = true;
        birth.body.state.version = BBT_VERSION;
        birth.body.state.hostname = a->hostname;
        birth.body.state.os = a->os;
        birth.body.state.machine_id = a->machine_id;
        /* Tells the aggregator that this seq comes only when the session ends. */
        birth.body.state.has_will_seq = a->will_seq > 0;
        birth.body.state.will_seq = (int64_t)a->will_seq;
        /* And which seqs this run skipped at its start: not to be asked for. */
        {
                const struct bbt_counters_start_info *info = bbt_counters_start_info(a->counters);

                if (info->skipped) {
                        birth.body.state.has_skipped_from = birth.body.state.has_skipped_to = true;
                        birth.body.state.skipped_from = (int64_t)info->skipped_from;
                        birth.body.state.skipped_to = (int64_t)info->skipped_to;
                }
        }
        a->session_first_seq = a->will_seq;
        produce_early(a, &birth);
        produce_inventory(a, true);
        republish_prev_will(a);
        pump(a);
        ensure_ticking(a);
}

static void on_disconnect(void *userdata, int error, const char *reason)
{
        struct bbt_agent *a = userdata;

        if (a->connected && (a->stopping || error == 0)) {
                a->connected = false;
                bbt_log_info("disconnected from %s:%lld", a->cfg.broker.host, broker_port(a));
        } else if (a->connected) {
                a->connected = false;
                bbt_log_warning("connection to %s:%lld lost: %s; reconnecting with backoff", a->cfg.broker.host,
                                broker_port(a), reason);
        } else if (error && (a->connect_failures++ % 10) == 0) {
                bbt_log_warning("cannot connect to %s:%lld: %s (attempt %u; retrying with backoff)", a->cfg.broker.host,
                                broker_port(a), reason, a->connect_failures);
        }
        window_clear(a);
        a->n_early = 0;
        /* A session the broker accepted is over: the next one gets a new boot
         * and a new will. A will that never reached a broker is reused. */
        if (a->session_used && !a->stopping) {
                a->prev_will_seq = a->will_seq;
                new_session(a);
        }
}

static void on_publish(void *userdata, int mid)
{
        struct bbt_agent *a = userdata;
        size_t i;

        if (a->stopping && mid == a->shutdown_mid)
                a->shutdown_acked = true;
        for (i = 0; i < a->n_early; i++)
                if (a->early[i].mid == mid)
                        a->early[i].acked = true;
        for (i = 0; i < a->window_len; i++) {
                struct inflight *f = window_at(a, i);

                if (f->mid == mid && !f->acked) {
                        f->acked = true;
                        break;
                }
        }
        window_advance(a);
        pump(a);
}

static void on_message(void *userdata, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
        struct bbt_agent *a = userdata;

        if (strcmp(topic, a->cmd_topic) != 0 || a->stopping)
                return;
        handle_cmd(a, payload, len);
}

static void on_mqtt_log(void *userdata, int priority, const char *line)
{
        /* The agent logs what matters about the connection itself. */
        bbt_log_debug("%s", line);
}

static int connect_broker(struct bbt_agent *a)
{
        static const struct bbt_mqtt_callbacks cbs = {
                .on_connect = on_connect,
                .on_disconnect = on_disconnect,
                .on_message = on_message,
                .on_publish = on_publish,
                .on_log = on_mqtt_log,
        };
        struct bbt_mqtt_options o;
        char password[256] = "", client_id[80], err[300];
        int r;

        bbt_mqtt_options_init(&o);
        r = bbt_broker_config_mqtt_options(&a->cfg.broker, password, sizeof(password), &o, err, sizeof(err));
        if (r < 0) {
                bbt_log_error("%s", err);
                return r;
        }
        snprintf(client_id, sizeof(client_id), "bbt-%s-%s-%s", a->cfg.county, a->cfg.school, a->cfg.terminal);
        o.client_id = client_id;
        o.clean_session = true;
        r = bbt_mqtt_new(a->loop, &o, &cbs, a, &a->mqtt);
        explicit_bzero(password, sizeof(password));
        if (r < 0) {
                bbt_log_error("broker settings: %s", strerror(-r));
                return r;
        }
        r = bbt_mqtt_subscribe(a->mqtt, a->cmd_topic, 1);
        /* A new session if the last one was used (or there is none yet), else
         * the will that never reached a broker goes to this connection. */
        if (r == 0)
                r = a->session_used || a->will_seq == 0 ? new_session(a) : hand_will(a);
        if (r == 0)
                r = bbt_mqtt_start(a->mqtt);
        return r;
}

/* ---- what the drivers observe ---- */

static void ev_input(void *userdata, enum bbt_input_class cls, uint64_t count)
{
        struct bbt_agent *a = userdata;

        bbt_usage_tracker_input(&a->usage, cls, (int64_t)count, now_mono(), now_real());
}

/* The display counts as on when the panel/monitor or the projector is on. */
static void ev_display(void *userdata, bool on, const char *source)
{
        struct bbt_agent *a = userdata;

        if (source && strcmp(source, "projector") == 0)
                a->display_projector_on = on;
        else
                a->display_panel_on = on;
        bbt_log_info("display %s (%s)", on ? "on" : "off", source ? source : "?");
        bbt_usage_tracker_display(&a->usage, a->display_panel_on || a->display_projector_on, now_mono(),
                                  now_real());
}

static void ev_audio(void *userdata, bool playing)
{
        struct bbt_agent *a = userdata;

        bbt_usage_tracker_audio(&a->usage, playing, now_mono(), now_real());
}

static void ev_periph(void *userdata, enum bbt_periph_action action, const struct bbt_dev *dev)
{
        struct bbt_agent *a = userdata;
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_PERIPH);
        m.body.periph.action = action;
        m.body.periph.dev = *dev;
        bbt_log_info("peripheral %s: %s %s", action == BBT_PERIPH_ADD ? "added" : "removed",
                     bbt_periph_kind_name(dev->kind), dev->syspath);
        produce(a, &m);
}

static void ev_inventory(void *userdata, const struct bbt_dev *devs, size_t n)
{
        produce_inventory(userdata, false);
}

static void ev_projector(void *userdata, const struct bbt_projector_status *status)
{
        struct bbt_agent *a = userdata;

        a->projector_status = *status;
        a->projector_status.input = NULL;
        if (status->input) {
                snprintf(a->projector_input, sizeof(a->projector_input), "%s", status->input);
                a->projector_status.input = a->projector_input;
        }
        a->has_projector_status = true;
}

static void ev_alert(void *userdata, const char *code, enum bbt_severity severity, enum bbt_alert_state state,
                     const char *detail)
{
        struct bbt_agent *a = userdata;

        bbt_log_notice("alert %s %s: %s", code, state == BBT_ALERT_RAISED ? "raised" : "cleared",
                       detail ? detail : "");
        produce_alert(a, code, severity, state, detail);
}

static void ev_problem(void *userdata, const char *source, const char *what)
{
        if (what)
                bbt_log_warning("%s: %s", source, what);
        else
                bbt_log_notice("%s: working again", source);
}

/* Creates the drivers the configuration enables (not started). LOOP may be a
 * loop that never runs, for --probe. Returns 0 or a negative errno (logged). */
static int create_drivers(struct bbt_agent *a, uv_loop_t *loop)
{
        struct bbt_driver_env env = { .loop = loop, .root = a->cfg.root, .events = &a->driver_events };
        struct bbt_driver *d;
        int r = 0;

        a->driver_events = (struct bbt_driver_events){
                .input = ev_input, .display = ev_display, .audio = ev_audio, .periph = ev_periph,
                .inventory = ev_inventory, .projector = ev_projector, .alert = ev_alert, .problem = ev_problem,
                .userdata = a,
        };
        /* Always there (--probe shows it); [health] enabled says whether heartbeats carry it. */
        {
                struct bbt_health_options o = { .spool_dir = a->cfg.spool_dir };

                if ((r = bbt_health_new(&env, &o, &d)) < 0)
                        goto fail;
                a->drivers[a->n_drivers++] = d;
        }
        if (a->cfg.input_enabled) {
                struct bbt_input_options o = { 0 };

                if ((r = bbt_input_new(&env, &o, &d)) < 0)
                        goto fail;
                a->drivers[a->n_drivers++] = d;
        }
        if (a->cfg.display_enabled) {
                struct bbt_display_options o = { 0 };

                if ((r = bbt_display_new(&env, &o, &d)) < 0)
                        goto fail;
                a->drivers[a->n_drivers++] = d;
        }
        if (a->cfg.audio_enabled) {
                struct bbt_audio_options o = { 0 };

                if ((r = bbt_audio_new(&env, &o, &d)) < 0)
                        goto fail;
                a->drivers[a->n_drivers++] = d;
        }
        if (a->cfg.periph_enabled) {
                struct bbt_periph_options o = { .debounce_ms = (unsigned)a->cfg.periph_debounce_ms };

                bbt_periph_expect_parse(a->cfg.periph_expect ? a->cfg.periph_expect : "", &o.expect);
                if ((r = bbt_periph_new(&env, &o, &d)) < 0)
                        goto fail;
                a->drivers[a->n_drivers++] = a->periph = d;
        }
        if (a->cfg.projector_host && *a->cfg.projector_host) {
                struct bbt_projector_options o;

                bbt_projector_options_init(&o);
                o.host = a->cfg.projector_host;
                o.port = (uint16_t)a->cfg.projector_port;
                o.password = a->cfg.projector_password && *a->cfg.projector_password ? a->cfg.projector_password : NULL;
                o.poll_interval_ms = (uint32_t)a->cfg.projector_poll_ms;
                o.timeout_ms = (uint32_t)a->cfg.projector_timeout_ms;
                o.lamp_hours_limit = a->cfg.projector_lamp_hours_limit;
                o.unreachable_alert_ms = (uint32_t)a->cfg.projector_unreachable_alert_ms;
                if ((r = bbt_projector_new(&env, &o, &d)) < 0)
                        goto fail;
                a->drivers[a->n_drivers++] = a->projector = d;
        }
        return 0;
fail:
        bbt_log_error("drivers: cannot create driver %zu: %s", a->n_drivers + 1, strerror(-r));
        return r;
}

static void destroy_drivers(struct bbt_agent *a)
{
        while (a->n_drivers) {
                struct bbt_driver *d = a->drivers[--a->n_drivers];

                d->ops->destroy(d);
        }
        a->periph = a->projector = NULL;
}

static void driver_stopped_cb(void *userdata)
{
}

/* ---- timers ---- */

static void hb_timer_cb(uv_timer_t *t)
{
        produce_heartbeat(container_of(t, struct bbt_agent, hb_timer));
}

static void usage_timer_cb(uv_timer_t *t);

static void arm_usage_timer(struct bbt_agent *a)
{
        int64_t due = bbt_usage_tracker_next_deadline(&a->usage) - now_mono();

        uv_timer_start(&a->usage_timer, usage_timer_cb, due > 0 ? (uint64_t)due : 0, 0);
}

static void usage_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = container_of(t, struct bbt_agent, usage_timer);

        bbt_usage_tracker_tick(&a->usage, now_mono(), now_real());
        arm_usage_timer(a);
}

static void tick_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = container_of(t, struct bbt_agent, tick_timer);
        double per_tick = a->cfg.drain_rate * TICK_MS / 1000.0, resend_per_tick = a->cfg.resend_rate * TICK_MS / 1000.0;

        /* Token buckets hold at most one tick's worth (at least one message). */
        a->tokens += per_tick;
        if (a->tokens > (per_tick > 1 ? per_tick : 1))
                a->tokens = per_tick > 1 ? per_tick : 1;
        a->resend_tokens += resend_per_tick;
        if (a->resend_tokens > (resend_per_tick > 1 ? resend_per_tick : 1))
                a->resend_tokens = resend_per_tick > 1 ? resend_per_tick : 1;
        pump(a);
        run_resend(a);
        /* Idle: nothing pending in the window, no backlog, no resends. */
        if (!a->n_jobs && a->window_len == 0 && a->tokens >= (per_tick > 1 ? per_tick : 1))
                uv_timer_stop(t);
}

static void meta_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = container_of(t, struct bbt_agent, meta_timer);
        struct bbt_spool_stats st;

        /* Saves only what changed: the ack watermark, the counters, the
         * witnesses of the seqs used (docs/spool.md). */
        bbt_spool_save_meta(a->spool);
        bbt_spool_stats(a->spool, &st);
        if (a->spool_drop_raised && st.depth == 0) {
                a->spool_drop_raised = false;
                bbt_spool_clear_drops(a->spool);
                produce_alert(a, "spool_drop", BBT_SEVERITY_WARNING, BBT_ALERT_CLEARED, "backlog delivered");
        }
        if (++a->meta_ticks * META_MS >= EXPIRE_MS) {
                a->meta_ticks = 0;
                bbt_spool_expire(a->spool);
        }
}

static void fsync_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = container_of(t, struct bbt_agent, fsync_timer);

        if (a->appended_seq > a->synced_seq)
                request_sync(a);
}

static void watchdog_timer_cb(uv_timer_t *t)
{
        bbt_notify("WATCHDOG=1");
}

/* ---- stop ---- */

static void handle_closed_cb(uv_handle_t *h)
{
        struct bbt_agent *a = h->data;

        a->open_handles--;
}

static void close_handle(struct bbt_agent *a, uv_handle_t *h)
{
        if (!uv_is_closing(h)) {
                h->data = a;
                uv_close(h, handle_closed_cb);
        }
}

static void mqtt_closed_cb(void *userdata)
{
        struct bbt_agent *a = userdata;
        struct bbt_spool_stats st;

        a->mqtt = NULL;
        bbt_spool_save_meta(a->spool);
        bbt_spool_stats(a->spool, &st);
        bbt_log_notice("stopped: %" PRIu64 " messages produced, %" PRIu64 " acknowledged this run, %" PRIu64
                       " waiting in the spool", a->stats.produced, a->stats.acked, st.depth);
}

static void finish_stop(struct bbt_agent *a)
{
        if (a->stopped)
                return;
        a->stopped = true;
        uv_timer_stop(&a->stop_timer);
        for (size_t i = 0; i < a->n_drivers; i++)
                a->drivers[i]->ops->stop(a->drivers[i], driver_stopped_cb, a);
        close_handle(a, (uv_handle_t *)&a->hb_timer);
        close_handle(a, (uv_handle_t *)&a->tick_timer);
        close_handle(a, (uv_handle_t *)&a->fsync_timer);
        close_handle(a, (uv_handle_t *)&a->usage_timer);
        close_handle(a, (uv_handle_t *)&a->meta_timer);
        close_handle(a, (uv_handle_t *)&a->stop_timer);
        close_handle(a, (uv_handle_t *)&a->watchdog_timer);
        close_handle(a, (uv_handle_t *)&a->sig_term);
        close_handle(a, (uv_handle_t *)&a->sig_int);
        close_handle(a, (uv_handle_t *)&a->sig_hup);
        bbt_mqtt_close(a->mqtt, mqtt_closed_cb);
}

static void disconnected_cb(void *userdata, int status)
{
        finish_stop(userdata);
}

/* Polls until the shutdown state and the window are acknowledged (or
 * STOP_WAIT_MS has passed), then disconnects cleanly. */
static void stop_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = container_of(t, struct bbt_agent, stop_timer);
        struct bbt_spool_stats st;
        bool done;

        /* What the pacing held back goes out before the disconnect. */
        pump(a);
        bbt_spool_stats(a->spool, &st);
        done = !a->connected || (a->shutdown_acked && a->window_len == 0 && st.depth == 0);

        if (!done) {
                if (uv_now(a->loop) - a->stop_started < STOP_WAIT_MS)
                        return;
                bbt_log_warning("stop: the broker did not acknowledge everything within %d ms; "
                                "the rest stays in the spool", STOP_WAIT_MS);
        }
        uv_timer_stop(t);
        if (!a->connected || bbt_mqtt_disconnect(a->mqtt, disconnected_cb) < 0)
                finish_stop(a);
}

/* Publishes the clean-stop state of the current session on its state topic:
 * it takes the will's seq and boot, so each session ends with one offline
 * state. Returns the mid, or -1 if it could not be handed to the connection. */
static int publish_shutdown(struct bbt_agent *a)
{
        struct bbt_msg m;
        char topic[BBT_TOPIC_MAX], *json;
        size_t len;
        int mid = -1;

        will_msg(a, &m, BBT_REASON_SHUTDOWN);
        build_topic(a, BBT_CH_STATE, topic, sizeof(topic));
        if (bbt_msg_encode(&m, &json, &len, NULL) == 0) {
                if (bbt_mqtt_publish(a->mqtt, topic, json, len, 1, true, &mid) < 0)
                        mid = -1;
                else
                        a->stats.published++;
                free(json);
        }
        return mid;
}

void bbt_agent_stop(struct bbt_agent *a)
{
        if (a->stopping)
                return;
        a->stopping = true;
        bbt_notify("STOPPING=1");
        bbt_log_notice("stopping");
        uv_timer_stop(&a->hb_timer);
        uv_timer_stop(&a->usage_timer);
        bbt_usage_tracker_flush(&a->usage, now_mono(), now_real());
        if (!a->connected) {
                finish_stop(a);
                return;
        }
        a->shutdown_mid = publish_shutdown(a);
        a->shutdown_acked = a->shutdown_mid < 0;
        a->stop_started = uv_now(a->loop);
        uv_timer_start(&a->stop_timer, stop_timer_cb, 0, 50);
}

static void signal_cb(uv_signal_t *s, int signum)
{
        struct bbt_agent *a = s->data;

        if (signum == SIGHUP)
                bbt_agent_reload(a);
        else
                bbt_agent_stop(a);
}

/* ---- reload ---- */

static bool same_str(const char *x, const char *y)
{
        return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

static bool connection_changed(const struct bbt_agent_config *o, const struct bbt_agent_config *n)
{
        return !same_str(o->county, n->county) || !same_str(o->school, n->school) ||
               !same_str(o->terminal, n->terminal) || !bbt_broker_config_equal(&o->broker, &n->broker);
}

static void set_prefix(struct bbt_agent *a)
{
        snprintf(a->prefix, sizeof(a->prefix), "bbt/v1/%s/%s/%s/", a->cfg.county, a->cfg.school, a->cfg.terminal);
        build_topic(a, BBT_CH_CMD, a->cmd_topic, sizeof(a->cmd_topic));
}

static void reconnect_closed_cb(void *userdata)
{
        struct bbt_agent *a = userdata;

        a->mqtt = NULL;
        if (connect_broker(a) < 0)
                bbt_log_error("reload: cannot start the new broker connection");
}

static void reconnect_disconnected_cb(void *userdata, int status)
{
        struct bbt_agent *a = userdata;

        bbt_mqtt_close(a->mqtt, reconnect_closed_cb);
}

int bbt_agent_reload(struct bbt_agent *a)
{
        struct bbt_agent_config fresh, old;
        char err[512];
        bool reconnect;
        int r;

        bbt_notify("RELOADING=1");
        r = bbt_agent_config_load(a->config_path, &fresh, err, sizeof(err));
        if (r < 0) {
                bbt_log_error("reload: %s; keeping the running configuration", err);
                bbt_notify("READY=1");
                return r;
        }
        if (!same_str(fresh.state_dir, a->cfg.state_dir) || !same_str(fresh.spool_dir, a->cfg.spool_dir) ||
            fresh.spool_max_bytes != a->cfg.spool_max_bytes || fresh.retain_acked_ms != a->cfg.retain_acked_ms ||
            fresh.inflight != a->cfg.inflight)
                bbt_log_warning("reload: state_dir, [spool] dir, max_size, retain_acked and inflight take effect "
                                "at the next start");
        reconnect = connection_changed(&a->cfg, &fresh);
        old = a->cfg;
        a->cfg = fresh;
        /* Settings read only at start keep their old values. */
        a->cfg.state_dir = old.state_dir, old.state_dir = NULL;
        a->cfg.spool_dir = old.spool_dir, old.spool_dir = NULL;
        a->cfg.spool_max_bytes = old.spool_max_bytes;
        a->cfg.retain_acked_ms = old.retain_acked_ms;
        a->cfg.inflight = old.inflight;
        free(fresh.state_dir == a->cfg.state_dir ? NULL : fresh.state_dir);
        free(fresh.spool_dir == a->cfg.spool_dir ? NULL : fresh.spool_dir);
        bbt_agent_config_free(&old);

        bbt_log_set_level(bbt_agent_config_log_priority(&a->cfg));
        a->usage.idle_timeout_ms = a->cfg.idle_timeout_ms;
        a->usage.flush_ms = a->cfg.usage_flush_ms;
        arm_usage_timer(a);
        uv_timer_start(&a->hb_timer, hb_timer_cb, (uint64_t)a->cfg.heartbeat_ms, (uint64_t)a->cfg.heartbeat_ms);
        uv_timer_start(&a->fsync_timer, fsync_timer_cb, (uint64_t)a->cfg.fsync_interval_ms,
                       (uint64_t)a->cfg.fsync_interval_ms);
        if (reconnect) {
                bbt_log_notice("reload: broker or identity changed; reconnecting");
                /* End this session cleanly on its own topic, then start a new one. */
                if (a->connected)
                        publish_shutdown(a);
                set_prefix(a);
                a->session_used = true;
                if (a->mqtt && bbt_mqtt_disconnect(a->mqtt, reconnect_disconnected_cb) < 0)
                        bbt_mqtt_close(a->mqtt, reconnect_closed_cb);
                else if (!a->mqtt)
                        connect_broker(a);
        } else {
                bbt_log_notice("reload: configuration applied");
        }
        bbt_notify("READY=1");
        return 0;
}

/* ---- life cycle ---- */

static void spool_report_cb(void *userdata, const char *file, uint64_t offset, const char *reason)
{
        bbt_log_warning("spool: %s at byte %" PRIu64 ": %s", file, offset, reason);
}

int bbt_agent_new(uv_loop_t *loop, const char *config_path, struct bbt_agent_config *config,
                  struct bbt_agent **ret)
{
        const struct bbt_counters_start_info *info;
        struct bbt_seq_range meta_skipped[BBT_SPOOL_SKIPPED_RANGES];
        struct bbt_counters_witness witness = { 0 };
        struct bbt_spool_witness sw;
        struct bbt_counters_options sto;
        struct bbt_spool_options so;
        struct bbt_agent *a;
        char err[512];
        int r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->loop = loop;
        a->cfg = *config;
        memset(config, 0, sizeof(*config));
        a->config_path = strdup(config_path);
        a->window_cap = (size_t)a->cfg.inflight + 2;
        a->window = calloc(a->window_cap, sizeof(*a->window));
        if (!a->config_path || !a->window) {
                r = -ENOMEM;
                goto fail;
        }
        set_prefix(a);
        read_identity(a);

        /* state_dir holds the spool by default: create it first. */
        if (mkdir(a->cfg.state_dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                bbt_log_error("state_dir %s: cannot create it: %s", a->cfg.state_dir, strerror(errno));
                goto fail;
        }
        bbt_spool_options_init(&so, a->cfg.spool_dir);
        so.max_bytes = (uint64_t)a->cfg.spool_max_bytes;
        so.retain_acked_ms = a->cfg.retain_acked_ms;
        r = bbt_spool_open(&so, spool_report_cb, a, &a->spool);
        if (r < 0) {
                bbt_log_error("spool %s: %s", a->cfg.spool_dir, strerror(-r));
                goto fail;
        }
        /* Every seq the spool shows used or reserved is a witness for the
         * counter: it never hands out one of them again. */
        bbt_spool_witness(a->spool, &sw);
        witness.spool_last = sw.last_seq;
        witness.used = sw.newest_name;
        if (sw.meta_acked > witness.used)
                witness.used = sw.meta_acked;
        if (sw.meta_appended > witness.used)
                witness.used = sw.meta_appended;
        witness.ceiling = sw.meta_seq_ceiling;
        witness.boot = sw.meta_boot;
        /* The spool meta's copy of the skipped ranges, merged with the state file's. */
        for (size_t i = 0; i < sw.n_meta_skipped; i++) {
                meta_skipped[i].from = sw.meta_skipped[i].from;
                meta_skipped[i].to = sw.meta_skipped[i].to;
        }
        witness.skipped = meta_skipped;
        witness.n_skipped = sw.n_meta_skipped;
        if (witness.used > sw.last_seq)
                bbt_log_warning("spool %s: records up to seq %" PRIu64 " were used but the spool ends at seq %"
                                PRIu64 " (a damaged or cut tail): they are reported lost, never reused",
                                a->cfg.spool_dir, witness.used, sw.last_seq);
        bbt_counters_options_init(&sto);
        sto.dir = a->cfg.state_dir;
        sto.root = a->cfg.root;
        sto.block = SEQ_BLOCK;
        sto.recover = a->cfg.recover_state;
        r = bbt_counters_open(&sto, &witness, &a->counters, err, sizeof(err));
        if (r == -EBADMSG) {
                bbt_log_error("%s; refusing to start, since a wrong counter could reuse sequence numbers. "
                              "Start once with --recover-state to continue past the spool (see bbt-agent(8))", err);
                goto fail;
        } else if (r < 0) {
                bbt_log_error("%s", err);
                goto fail;
        }
        info = bbt_counters_start_info(a->counters);
        if (info->skipped)
                bbt_log_warning("state %s: %s: first seq %" PRIu64 "; seq %" PRIu64 "..%" PRIu64
                                " skipped, never reused (the previous run stopped uncleanly; it had used at "
                                "least up to %" PRIu64 "; resend replies name the range 'skipped')",
                                a->cfg.state_dir, bbt_counters_start_name(info->start), info->first_seq,
                                info->skipped_from, info->skipped_to, info->used);
        else
                bbt_log_info("state %s: %s, first seq %" PRIu64, a->cfg.state_dir,
                             bbt_counters_start_name(info->start), info->first_seq);
        /* The reservation's and the skipped ranges' second witness, on disk
         * before any seq goes out. */
        bbt_spool_set_seq_ceiling(a->spool, bbt_counters_ceiling(a->counters));
        _Static_assert(BBT_SPOOL_SKIPPED_RANGES == BBT_COUNTERS_SKIPPED_MAX, "meta keeps every skipped range");
        {
                struct bbt_spool_seq_range copy[BBT_SPOOL_SKIPPED_RANGES];
                const struct bbt_seq_range *sk;
                size_t n = bbt_counters_skipped(a->counters, &sk), first = n > BBT_SPOOL_SKIPPED_RANGES ? n - BBT_SPOOL_SKIPPED_RANGES : 0;

                for (size_t i = first; i < n; i++) {
                        copy[i - first].from = sk[i].from;
                        copy[i - first].to = sk[i].to;
                }
                bbt_spool_set_skipped(a->spool, copy, n - first);
        }
        r = bbt_spool_save_meta(a->spool);
        if (r < 0)
                bbt_log_warning("spool %s: cannot save meta: %s", a->cfg.spool_dir, strerror(-r));
        r = 0;
        *ret = a;
        return 0;
fail:
        bbt_agent_free(a);
        return r;
}

int bbt_agent_start(struct bbt_agent *a)
{
        uint64_t watchdog_usec = 0;
        int r;

        uv_timer_init(a->loop, &a->hb_timer);
        uv_timer_init(a->loop, &a->tick_timer);
        uv_timer_init(a->loop, &a->fsync_timer);
        uv_timer_init(a->loop, &a->usage_timer);
        uv_timer_init(a->loop, &a->meta_timer);
        uv_timer_init(a->loop, &a->stop_timer);
        uv_timer_init(a->loop, &a->watchdog_timer);
        uv_signal_init(a->loop, &a->sig_term);
        uv_signal_init(a->loop, &a->sig_int);
        uv_signal_init(a->loop, &a->sig_hup);
        a->open_handles = 10;
        a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
        uv_signal_start(&a->sig_term, signal_cb, SIGTERM);
        uv_signal_start(&a->sig_int, signal_cb, SIGINT);
        uv_signal_start(&a->sig_hup, signal_cb, SIGHUP);

        bbt_usage_tracker_init(&a->usage, a->cfg.idle_timeout_ms, a->cfg.usage_flush_ms, usage_emit_cb, a,
                               now_mono(), now_real());
        arm_usage_timer(a);
        a->tokens = 1;

        r = create_drivers(a, a->loop);
        if (r < 0)
                return r;
        for (size_t i = 0; i < a->n_drivers; i++) {
                int q = a->drivers[i]->ops->start(a->drivers[i]);

                if (q < 0)
                        bbt_log_warning("driver %s: cannot start: %s; carrying on without it",
                                        a->drivers[i]->ops->name, strerror(-q));
        }

        r = connect_broker(a);
        if (r < 0)
                return r;
        /* A loss not yet cleared (before a restart, or while the disk was
         * full) is announced again; it clears once the backlog is out. */
        raise_drop_alert(a);
        produce_heartbeat(a);
        uv_timer_start(&a->hb_timer, hb_timer_cb, (uint64_t)a->cfg.heartbeat_ms, (uint64_t)a->cfg.heartbeat_ms);
        uv_timer_start(&a->meta_timer, meta_timer_cb, META_MS, META_MS);
        if (a->cfg.fsync_policy == BBT_FSYNC_INTERVAL)
                uv_timer_start(&a->fsync_timer, fsync_timer_cb, (uint64_t)a->cfg.fsync_interval_ms,
                               (uint64_t)a->cfg.fsync_interval_ms);
        watchdog_usec = bbt_notify_watchdog_usec();
        if (watchdog_usec >= 2000)
                uv_timer_start(&a->watchdog_timer, watchdog_timer_cb, watchdog_usec / 2000, watchdog_usec / 2000);
        {
                char status[160];

                snprintf(status, sizeof(status), "READY=1\nSTATUS=reporting as %s", a->prefix);
                bbt_notify(status);
        }
        bbt_log_notice("started: bbt-agent %s, %s, broker %s:%lld, boot %" PRIu32, BBT_VERSION, a->prefix,
                       a->cfg.broker.host, broker_port(a), a->boot);
        return 0;
}

int bbt_agent_probe(const struct bbt_agent_config *config, FILE *out)
{
        struct bbt_agent *a;
        uv_loop_t loop;
        int problems = 0;
        size_t i;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->cfg = *config; /* borrowed: not freed here */
        r = uv_loop_init(&loop);
        if (r < 0) {
                free(a);
                return r;
        }
        fprintf(out, "bbt-agent %s probe, root %s\n", BBT_VERSION, a->cfg.root);
        r = create_drivers(a, &loop);
        for (i = 0; r == 0 && i < a->n_drivers; i++) {
                fprintf(out, "\n== %s ==\n", a->drivers[i]->ops->name);
                int q = a->drivers[i]->ops->probe(a->drivers[i], out);

                if (q < 0) {
                        fprintf(out, "PROBLEM: %s: %s\n", a->drivers[i]->ops->name, strerror(-q));
                        problems++;
                }
        }
        if (r == 0)
                fprintf(out, "\n%d problem%s found\n", problems, problems == 1 ? "" : "s");
        destroy_drivers(a);
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
        free(a);
        return r < 0 ? r : problems;
}

void bbt_agent_get_stats(const struct bbt_agent *a, struct bbt_agent_stats *ret)
{
        *ret = a->stats;
}

void bbt_agent_free(struct bbt_agent *a)
{
        if (!a)
                return;
        destroy_drivers(a);
        for (size_t i = 0; i < a->n_jobs; i++)
                free(a->jobs[i].missing);
        bbt_spool_close(a->spool);
        bbt_counters_close(a->counters);
        bbt_agent_config_free(&a->cfg);
        free(a->window);
        free(a->config_path);
        free(a);
}
