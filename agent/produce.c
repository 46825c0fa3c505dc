/* Producing records: seq, time and session, encode, append to the spool; heartbeats; the spool_drop alert. */
#include "agent_internal.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/log.h"
#include "counters.h"
#include "spool.h"

int bbt_produce_record(struct bbt_agent *a, struct bbt_msg *m, unsigned flags, char **ret_json, size_t *ret_len)
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
                bbt_uplink_meta_changed(a);
                return r;
        }
        bbt_spool_set_seq_ceiling(a->spool, bbt_counters_ceiling(a->counters));
        m->seq = (int64_t)seq;
        m->ts = bbt_agent_now_real();
        m->boot = a->session.boot;
        r = bbt_msg_encode(m, &json, &len, &err);
        if (r < 0) {
                bbt_log_error("internal: %s message seq %" PRIu64 " does not encode: %s",
                              bbt_channel_name(m->channel), seq, bbt_error_format(&err, errtext, sizeof(errtext)));
                bbt_spool_note_unstored(a->spool, seq);
                bbt_uplink_meta_changed(a);
                return r;
        }
        bbt_session_topic(a, m->channel, topic, sizeof(topic));
        if (bbt_channel_retained(m->channel))
                flags |= BBT_SPOOL_RETAIN;
        r = bbt_spool_append(a->spool, seq, m->ts, flags, topic, json, len, &dropped);
        if (r < 0) {
                /* The spool counts it and remembers its seq for resend replies. */
                bbt_log_error("spool %s: cannot store %s seq %" PRIu64 ": %s; message lost (counted in hb spool.dropped)",
                              a->cfg.spool_dir, bbt_channel_name(m->channel), seq, strerror(-r));
                a->stats.spool_errors++;
                free(json);
                bbt_uplink_meta_changed(a);
                return r;
        }
        a->stats.produced++;
        if (dropped) {
                bbt_log_warning("spool %s is full (max_size %lld bytes): dropped the %" PRIu64
                                " oldest unsent records", a->cfg.spool_dir, a->cfg.spool_max_bytes, dropped);
        }
        bbt_uplink_appended(a, seq);
        if (ret_json) {
                *ret_json = json;
                *ret_len = len;
        } else {
                free(json);
        }
        if (!a->produce.drop_raised)
                bbt_produce_drop_alert(a);
        return 0;
}

void bbt_produce_drop_alert(struct bbt_agent *a)
{
        struct bbt_spool_stats st;
        struct bbt_msg alert;
        char detail[200];

        bbt_spool_stats(a->spool, &st);
        if (st.dropped + st.unstored <= st.drop_cleared)
                return;
        a->produce.drop_raised = true;
        snprintf(detail, sizeof(detail),
                 "%" PRIu64 " messages lost: %" PRIu64 " unsent records dropped from the full spool (max_size %lld "
                 "bytes), %" PRIu64 " could not be stored (disk full or write error), in all",
                 st.dropped + st.unstored - st.drop_cleared, st.dropped, a->cfg.spool_max_bytes, st.unstored);
        bbt_msg_init(&alert, BBT_CH_ALERT);
        alert.body.alert.code = "spool_drop";
        alert.body.alert.severity = BBT_SEVERITY_WARNING;
        alert.body.alert.state = BBT_ALERT_RAISED;
        alert.body.alert.detail = detail;
        bbt_produce_record(a, &alert, 0, NULL, NULL);
}

void bbt_produce_drops_delivered(struct bbt_agent *a)
{
        struct bbt_spool_stats st;

        if (!a->produce.drop_raised)
                return;
        bbt_spool_stats(a->spool, &st);
        if (st.depth != 0)
                return;
        a->produce.drop_raised = false;
        bbt_spool_clear_drops(a->spool);
        bbt_produce_alert(a, "spool_drop", BBT_SEVERITY_WARNING, BBT_ALERT_CLEARED, "backlog delivered");
}

int bbt_produce(struct bbt_agent *a, struct bbt_msg *m)
{
        int r = bbt_produce_record(a, m, 0, NULL, NULL);

        bbt_uplink_pump(a);
        return r;
}

void bbt_produce_alert(struct bbt_agent *a, const char *code, enum bbt_severity sev, enum bbt_alert_state state,
                       const char *detail)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_ALERT);
        m.body.alert.code = code;
        m.body.alert.severity = sev;
        m.body.alert.state = state;
        m.body.alert.detail = detail;
        bbt_produce(a, &m);
}

void bbt_produce_heartbeat(struct bbt_agent *a)
{
        struct bbt_spool_stats st;
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_HB);
        bbt_sources_heartbeat(a, &m.body.hb);
        bbt_spool_stats(a->spool, &st);
        m.body.hb.spool_depth = (int64_t)st.depth;
        m.body.hb.spool_dropped = (int64_t)(st.dropped + st.unstored);
        bbt_produce(a, &m);
}

/* ---- the heartbeat timer ---- */

static void hb_timer_cb(uv_timer_t *t)
{
        bbt_produce_heartbeat(bbt_container_of(t, struct bbt_agent, produce.hb_timer));
}

void bbt_produce_init(struct bbt_agent *a)
{
        uv_timer_init(a->loop, &a->produce.hb_timer);
}

void bbt_produce_start(struct bbt_agent *a)
{
        uv_timer_start(&a->produce.hb_timer, hb_timer_cb, (uint64_t)a->cfg.heartbeat_ms, (uint64_t)a->cfg.heartbeat_ms);
}

void bbt_produce_stop(struct bbt_agent *a)
{
        uv_timer_stop(&a->produce.hb_timer);
}

void bbt_produce_close(struct bbt_agent *a)
{
        bbt_agent_close_handle(a, (uv_handle_t *)&a->produce.hb_timer);
}
