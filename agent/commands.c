/* Commands from the aggregator: one handler per op, each answered once; a repeat is answered again, never run again. */
#include "agent_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/log.h"
#include "projector.h"
#include "settings.h"
#include "wol.h"

/* The entry for command ID if it was seen lately, else -1. */
static int recent_find(const struct bbt_commands *c, const char *id)
{
        for (size_t i = 0; i < BBT_RECENT_CMD_IDS; i++)
                if (c->recent[i].id[0] && strcmp(c->recent[i].id, id) == 0)
                        return (int)i;
        return -1;
}

static void recent_add(struct bbt_commands *c, const char *id)
{
        memset(&c->recent[c->recent_next], 0, sizeof(c->recent[0]));
        snprintf(c->recent[c->recent_next].id, sizeof(c->recent[0].id), "%s", id);
        c->recent_next = (c->recent_next + 1) % BBT_RECENT_CMD_IDS;
}

void bbt_commands_reply(struct bbt_agent *a, const char *id, bool ok, const char *error, cJSON *result)
{
        struct bbt_commands *c = &a->commands;
        int i = recent_find(c, id);
        struct bbt_msg m;

        if (i >= 0) {
                c->recent[i].answered = true;
                c->recent[i].ok = ok;
                snprintf(c->recent[i].error, sizeof(c->recent[i].error), "%s", error ? error : "");
        }

        bbt_msg_init(&m, BBT_CH_CMD_REPLY);
        m.body.reply.id = id;
        m.body.reply.ok = ok;
        m.body.reply.error = error;
        m.body.reply.result_json = result;
        bbt_produce(a, &m);
        cJSON_Delete(result);
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

/* ---- the ops ---- */

static void op_resend(struct bbt_agent *a, const struct bbt_cmd *c)
{
        if (bbt_resend_queue(a, c->id, (uint64_t)c->args.resend.from, (uint64_t)c->args.resend.to) < 0) {
                bbt_commands_reply(a, c->id, false, "busy: too many resend requests queued", NULL);
                return;
        }
        bbt_uplink_kick(a);
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
                bbt_commands_reply(req->a, req->id, status == 0, status == 0 ? NULL : error, NULL);
        free(req);
}

/* projector_power: answered when the projector has accepted or refused it. */
static void op_projector_power(struct bbt_agent *a, const struct bbt_cmd *c)
{
        struct power_request *req;
        int r;

        if (!a->sources.projector) {
                bbt_commands_reply(a, c->id, false, "no projector configured ([projector] host)", NULL);
                return;
        }
        req = calloc(1, sizeof(*req));
        if (!req) {
                bbt_commands_reply(a, c->id, false, "out of memory", NULL);
                return;
        }
        req->a = a;
        snprintf(req->id, sizeof(req->id), "%s", c->id);
        r = bbt_projector_power(a->sources.projector, c->args.projector_power.on, projector_power_cb, req);
        if (r < 0) {
                bbt_commands_reply(a, c->id, false,
                                   r == -EBUSY ? "busy: a projector power command is pending" : strerror(-r), NULL);
                free(req);
        }
}

static void op_inventory(struct bbt_agent *a, const struct bbt_cmd *c)
{
        struct bbt_msg m;

        bbt_sources_inventory(a, &m);
        bbt_produce(a, &m);
        bbt_commands_reply(a, c->id, true, NULL, NULL);
}

/* state: the session's birth once more, for a consumer that never got the
 * retained one (protocol/SPEC.md, cmd). */
static void op_state(struct bbt_agent *a, const struct bbt_cmd *c)
{
        char err[160];
        cJSON *result;
        uint64_t seq = 0;
        int r = bbt_session_republish_birth(a, &seq);

        if (r < 0) {
                snprintf(err, sizeof(err), "%s",
                         r == -ENOENT ? "the birth of this session is no longer in the spool" : strerror(-r));
                bbt_commands_reply(a, c->id, false, err, NULL);
                return;
        }
        result = cJSON_CreateObject();
        cJSON_AddNumberToObject(result, "seq", (double)seq);
        cJSON_AddNumberToObject(result, "boot", (double)a->session.boot);
        bbt_commands_reply(a, c->id, true, NULL, result);
}

/* Answers with RESULT when R is 0, else with ERR. */
static void reply_result(struct bbt_agent *a, const struct bbt_cmd *c, int r, cJSON *result, const char *err)
{
        bbt_commands_reply(a, c->id, r == 0, r == 0 ? NULL : err, r == 0 ? result : NULL);
        if (r < 0)
                cJSON_Delete(result);
}

static void op_set(struct bbt_agent *a, const struct bbt_cmd *c)
{
        cJSON *result = NULL;
        char err[256];
        int r = bbt_settings_set(a, c->args_json, &result, err, sizeof(err));

        reply_result(a, c, r, result, err);
}

static void op_shutdown_at(struct bbt_agent *a, const struct bbt_cmd *c)
{
        cJSON *result = NULL;
        char err[256];
        int r = bbt_poweroff_at(a, c->id, c->args.shutdown_at.at, &result, err, sizeof(err));

        reply_result(a, c, r, result, err);
}

static void op_power_schedule(struct bbt_agent *a, const struct bbt_cmd *c)
{
        cJSON *result = NULL;
        char err[256];
        int r = bbt_poweroff_schedule(a, c->args_json, &result, err, sizeof(err));

        reply_result(a, c, r, result, err);
}

/* wake: the magic packet to the subnet of this terminal's wired NIC; the
 * reply says who sent it and from where. */
static void op_wake(struct bbt_agent *a, const struct bbt_cmd *c)
{
        struct bbt_wired_nic nic;
        cJSON *result;
        char err[256];
        int r;

        r = bbt_wired_nic_find(a->cfg.root, a->cfg.network_interface, &nic);
        if (r < 0) {
                snprintf(err, sizeof(err), "no wired network interface%s%s: %s",
                         a->cfg.network_interface && *a->cfg.network_interface ? " " : "",
                         a->cfg.network_interface ? a->cfg.network_interface : "", strerror(-r));
                bbt_commands_reply(a, c->id, false, err, NULL);
                return;
        }
        r = bbt_wol_send(&nic, c->args.wake.mac, err, sizeof(err));
        if (r < 0) {
                bbt_commands_reply(a, c->id, false, err, NULL);
                return;
        }
        bbt_log_notice("wake: magic packet for %s sent to %s:%d from %s (%s)", c->args.wake.mac, nic.broadcast,
                       BBT_WOL_PORT, nic.ifname, nic.ipv4);
        result = cJSON_CreateObject();
        cJSON_AddStringToObject(result, "sent_by", a->session.prefix);
        cJSON_AddStringToObject(result, "mac", c->args.wake.mac);
        cJSON_AddStringToObject(result, "ifname", nic.ifname);
        cJSON_AddStringToObject(result, "from", nic.ipv4);
        cJSON_AddStringToObject(result, "to", nic.broadcast);
        cJSON_AddNumberToObject(result, "port", BBT_WOL_PORT);
        bbt_commands_reply(a, c->id, true, NULL, result);
}

void bbt_commands_handle(struct bbt_agent *a, const void *payload, size_t len)
{
        struct bbt_commands *cmds = &a->commands;
        char errtext[300], id[65];
        struct bbt_error err;
        struct bbt_msg m;
        const struct bbt_cmd *c;
        int r;

        a->stats.cmd_received++;
        r = bbt_msg_decode(BBT_CH_CMD, payload, len, &m, &err);
        if (r < 0) {
                a->stats.cmd_rejected++;
                bbt_log_warning("%s: rejected command: %s", a->session.cmd_topic,
                                bbt_error_format(&err, errtext, sizeof(errtext)));
                if (salvage_id(payload, len, id, sizeof(id)))
                        bbt_commands_reply(a, id, false, errtext, NULL);
                return;
        }
        c = &m.body.cmd;
        r = recent_find(cmds, c->id);
        if (r >= 0) {
                /* QoS 1 may deliver twice, and a reply may have been lost:
                 * answer again, never run it again. */
                bbt_log_debug("command %s repeated: answering again without running it", c->id);
                if (cmds->recent[r].answered)
                        bbt_commands_reply(a, c->id, cmds->recent[r].ok,
                                           cmds->recent[r].ok ? NULL : cmds->recent[r].error, NULL);
                goto out;
        }
        recent_add(cmds, c->id);
        bbt_log_info("command %s: %s", c->id, c->op);
        if (c->has_expires && c->expires < bbt_agent_now_real()) {
                snprintf(errtext, sizeof(errtext), "expired: the command expired %lld s ago (terminal clock)",
                         (long long)((bbt_agent_now_real() - c->expires) / 1000));
                a->stats.cmd_rejected++;
                bbt_log_warning("command %s: %s", c->id, errtext);
                bbt_commands_reply(a, c->id, false, errtext, NULL);
                goto out;
        }
        switch (c->op_code) {
        case BBT_OP_RESEND:
                op_resend(a, c);
                break;
        case BBT_OP_PROJECTOR_POWER:
                op_projector_power(a, c);
                break;
        case BBT_OP_INVENTORY:
                op_inventory(a, c);
                break;
        case BBT_OP_STATE:
                op_state(a, c);
                break;
        case BBT_OP_SET:
                op_set(a, c);
                break;
        case BBT_OP_SHUTDOWN_AT:
                op_shutdown_at(a, c);
                break;
        case BBT_OP_POWER_SCHEDULE:
                op_power_schedule(a, c);
                break;
        case BBT_OP_WAKE:
                op_wake(a, c);
                break;
        default:
                snprintf(errtext, sizeof(errtext), "unsupported op %s", c->op);
                bbt_commands_reply(a, c->id, false, errtext, NULL);
                break;
        }
out:
        bbt_msg_free(&m);
}
