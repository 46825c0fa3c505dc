/* The MQTT session: boot counter, will, birth, the first messages after a connect, the connection's callbacks. */
#include "agent_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bbt/log.h"
#include "bbt/mqtt.h"
#include "counters.h"
#include "spool.h"

/* The port actually used: 0 in the file means the MQTT default. */
static long long broker_port(const struct bbt_agent *a)
{
        return bbt_broker_config_port(&a->cfg.broker);
}

void bbt_session_topic(const struct bbt_agent *a, enum bbt_channel ch, char *buf, size_t size)
{
        snprintf(buf, size, "%s%s", a->session.prefix, bbt_channel_name(ch));
}

static void set_prefix(struct bbt_agent *a)
{
        snprintf(a->session.prefix, sizeof(a->session.prefix), "bbt/v1/%s/%s/%s/", a->cfg.county, a->cfg.school,
                 a->cfg.terminal);
        bbt_session_topic(a, BBT_CH_CMD, a->session.cmd_topic, sizeof(a->session.cmd_topic));
}

static void read_identity(struct bbt_agent *a)
{
        struct bbt_session *s = &a->session;
        char path[4096], line[512];
        struct utsname u;
        FILE *f;

        if (gethostname(s->hostname, sizeof(s->hostname) - 1) < 0)
                snprintf(s->hostname, sizeof(s->hostname), "unknown");
        snprintf(s->os, sizeof(s->os), "Linux");
        if (uname(&u) == 0)
                snprintf(s->os, sizeof(s->os), "%.20s %.60s", u.sysname, u.release);
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
                                snprintf(s->os, sizeof(s->os), "%.100s", v);
                                break;
                        }
                }
                fclose(f);
        }
        snprintf(s->machine_id, sizeof(s->machine_id), "unknown");
        snprintf(path, sizeof(path), "%s/etc/machine-id", a->cfg.root);
        f = fopen(path, "re");
        if (f) {
                if (fgets(line, sizeof(line), f)) {
                        line[strcspn(line, "\n")] = '\0';
                        if (*line && strlen(line) <= 64 && strspn(line, "0123456789abcdefABCDEF") == strlen(line))
                                snprintf(s->machine_id, sizeof(s->machine_id), "%.64s", line);
                }
                fclose(f);
        }
}

void bbt_session_init(struct bbt_agent *a)
{
        set_prefix(a);
        read_identity(a);
}

/* ---- boot counter, will ---- */

static void will_msg(const struct bbt_agent *a, struct bbt_msg *m, enum bbt_state_reason reason)
{
        bbt_msg_init(m, BBT_CH_STATE);
        m->seq = (int64_t)a->session.will_seq;
        m->ts = a->session.will_ts;
        m->boot = a->session.boot;
        m->body.state.online = false;
        m->body.state.reason = reason;
}

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
        bbt_session_topic(a, BBT_CH_STATE, topic, sizeof(topic));
        will = (struct bbt_mqtt_will){ .topic = topic, .payload = json, .len = len, .qos = 1, .retain = true };
        r = bbt_mqtt_set_will(a->mqtt, &will);
        free(json);
        return r;
}

/* Starts a new session: the next boot, a will with the next seq, stored in the
 * spool (so a resend can replay it) and handed to the connection. */
static int new_session(struct bbt_agent *a)
{
        struct bbt_session *s = &a->session;
        struct bbt_msg m;
        int r;

        r = bbt_counters_new_session(a->counters, &s->boot);
        if (r < 0) {
                bbt_log_error("cannot save the boot counter in %s: %s", a->cfg.state_dir, strerror(-r));
                return r;
        }
        /* Its second witness, on disk before the session uses it (a reconnect
         * is rare: the short blocking write is the state file's too). */
        bbt_spool_set_boot(a->spool, s->boot);
        r = bbt_spool_save_meta(a->spool);
        if (r < 0)
                bbt_log_warning("spool %s: cannot save meta: %s", a->cfg.spool_dir, strerror(-r));
        a->stats.boot = s->boot;
        bbt_msg_init(&m, BBT_CH_STATE);
        m.body.state.online = false;
        m.body.state.reason = BBT_REASON_LOST;
        r = bbt_produce_record(a, &m, BBT_RECORD_WILL, NULL, NULL);
        if (r < 0)
                return r;
        s->will_seq = (uint64_t)m.seq;
        s->will_ts = m.ts;
        s->used = false;
        return hand_will(a);
}

/* ---- the first messages after a connect ---- */

/* Produces a message and publishes it at once, ahead of the backlog. */
static void produce_early(struct bbt_agent *a, struct bbt_msg *m)
{
        char topic[BBT_TOPIC_MAX], *json;
        size_t len;

        if (bbt_produce_record(a, m, 0, &json, &len) < 0)
                return;
        bbt_session_topic(a, m->channel, topic, sizeof(topic));
        bbt_uplink_publish_ahead(a, (uint64_t)m->seq, topic, json, len, bbt_channel_retained(m->channel));
        free(json);
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

        if (!a->session.prev_will_seq)
                return;
        bbt_spool_read_range(a->spool, a->session.prev_will_seq, a->session.prev_will_seq, 1, prev_will_cb, a,
                             &range);
        a->session.prev_will_seq = 0;
}

int bbt_session_republish_birth(struct bbt_agent *a, uint64_t *seq)
{
        struct bbt_spool_range range;
        uint64_t published = a->stats.published;
        int r;

        if (!a->session.connected || !a->session.birth_seq)
                return -ENOTCONN;
        r = bbt_spool_read_range(a->spool, a->session.birth_seq, a->session.birth_seq, 1, prev_will_cb, a, &range);
        if (r < 0)
                return r;
        if (!range.delivered)
                return -ENOENT;
        *seq = a->session.birth_seq;
        return a->stats.published > published ? 0 : -EIO;
}

/* ---- connection callbacks ---- */

static void on_connect(void *userdata, bool session_present)
{
        struct bbt_agent *a = userdata;
        struct bbt_session *s = &a->session;
        const struct bbt_counters_start_info *info = bbt_counters_start_info(a->counters);
        struct bbt_msg birth, inventory;

        s->connected = true;
        s->used = true;
        s->connect_failures = 0;
        bbt_log_notice("connected to %s:%lld (boot %" PRIu32 ")", a->cfg.broker.host, broker_port(a), s->boot);
        bbt_uplink_connected(a);

        bbt_msg_init(&birth, BBT_CH_STATE);
        birth.body.state.online = true;
        birth.body.state.version = BBT_VERSION;
        birth.body.state.hostname = s->hostname;
        birth.body.state.os = s->os;
        birth.body.state.machine_id = s->machine_id;
        /* Tells the aggregator that this seq comes only when the session ends. */
        birth.body.state.has_will_seq = s->will_seq > 0;
        birth.body.state.will_seq = (int64_t)s->will_seq;
        /* And which seqs this run skipped at its start: not to be asked for. */
        if (info->skipped) {
                birth.body.state.has_skipped_from = birth.body.state.has_skipped_to = true;
                birth.body.state.skipped_from = (int64_t)info->skipped_from;
                birth.body.state.skipped_to = (int64_t)info->skipped_to;
        }
        s->first_seq = s->will_seq;
        produce_early(a, &birth);
        s->birth_seq = birth.seq > 0 ? (uint64_t)birth.seq : 0;
        bbt_sources_inventory(a, &inventory);
        produce_early(a, &inventory);
        republish_prev_will(a);
        bbt_uplink_pump(a);
        bbt_uplink_kick(a);
}

static void on_disconnect(void *userdata, int error, const char *reason)
{
        struct bbt_agent *a = userdata;
        struct bbt_session *s = &a->session;

        if (s->connected && (a->stopping || error == 0)) {
                s->connected = false;
                bbt_log_info("disconnected from %s:%lld", a->cfg.broker.host, broker_port(a));
        } else if (s->connected) {
                s->connected = false;
                bbt_log_warning("connection to %s:%lld lost: %s; reconnecting with backoff", a->cfg.broker.host,
                                broker_port(a), reason);
        } else if (error && (s->connect_failures++ % 10) == 0) {
                bbt_log_warning("cannot connect to %s:%lld: %s (attempt %u; retrying with backoff)", a->cfg.broker.host,
                                broker_port(a), reason, s->connect_failures);
        }
        bbt_uplink_disconnected(a);
        /* A session the broker accepted is over: the next one gets a new boot
         * and a new will. A will that never reached a broker is reused. */
        if (s->used && !a->stopping) {
                s->prev_will_seq = s->will_seq;
                new_session(a);
        }
}

static void on_publish(void *userdata, int mid)
{
        struct bbt_agent *a = userdata;

        bbt_agent_published(a, mid);
        bbt_uplink_acked(a, mid);
}

static void on_message(void *userdata, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
        struct bbt_agent *a = userdata;

        if (strcmp(topic, a->session.cmd_topic) != 0 || a->stopping)
                return;
        bbt_commands_handle(a, payload, len);
}

static void on_mqtt_log(void *userdata, int priority, const char *line)
{
        /* The agent logs what matters about the connection itself. */
        bbt_log_debug("%s", line);
}

int bbt_session_connect(struct bbt_agent *a)
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
        r = bbt_mqtt_subscribe(a->mqtt, a->session.cmd_topic, 1);
        /* A new session if the last one was used (or there is none yet), else
         * the will that never reached a broker goes to this connection. */
        if (r == 0)
                r = a->session.used || a->session.will_seq == 0 ? new_session(a) : hand_will(a);
        if (r == 0)
                r = bbt_mqtt_start(a->mqtt);
        return r;
}

int bbt_session_publish_shutdown(struct bbt_agent *a)
{
        struct bbt_msg m;
        char topic[BBT_TOPIC_MAX], *json;
        size_t len;
        int mid = -1;

        will_msg(a, &m, BBT_REASON_SHUTDOWN);
        bbt_session_topic(a, BBT_CH_STATE, topic, sizeof(topic));
        if (bbt_msg_encode(&m, &json, &len, NULL) == 0) {
                if (bbt_mqtt_publish(a->mqtt, topic, json, len, 1, true, &mid) < 0)
                        mid = -1;
                else
                        a->stats.published++;
                free(json);
        }
        return mid;
}

/* ---- reconnecting after a reload ---- */

static void reconnect_closed_cb(void *userdata)
{
        struct bbt_agent *a = userdata;

        a->mqtt = NULL;
        if (bbt_session_connect(a) < 0)
                bbt_log_error("reload: cannot start the new broker connection");
}

static void reconnect_disconnected_cb(void *userdata, int status)
{
        struct bbt_agent *a = userdata;

        bbt_mqtt_close(a->mqtt, reconnect_closed_cb);
}

void bbt_session_reconnect(struct bbt_agent *a)
{
        /* End this session cleanly on its own topic, then start a new one. */
        if (a->session.connected)
                bbt_session_publish_shutdown(a);
        set_prefix(a);
        a->session.used = true;
        if (a->mqtt && bbt_mqtt_disconnect(a->mqtt, reconnect_disconnected_cb) < 0)
                bbt_mqtt_close(a->mqtt, reconnect_closed_cb);
        else if (!a->mqtt)
                bbt_session_connect(a);
}
