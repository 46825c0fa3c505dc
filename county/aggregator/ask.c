/* Asking a terminal for its birth and inventory (ask.h). */
/*
 * The aggregator learns a terminal's session (online, boot, version, host)
 * from its birth and its peripherals from its inventory, both published
 * retained. A broker that never delivers retained messages to a wildcard
 * subscription (RabbitMQ's MQTT plugin; docs/brokers.md), or an aggregator
 * that starts with a new store after the births went by, leaves it knowing
 * neither until the terminal's next birth — days, for a board left on. So
 * when a message comes from a terminal whose state or inventory is unknown,
 * the terminal is asked: op "state" republishes its session's birth as it
 * was (its own seq; protocol/SPEC.md, cmd), op "inventory" publishes the
 * current list. Once a run per terminal, rate-limited, counted, logged.
 */
#include "ask.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bbt/log.h"

#define ASK_LOG_PER_MIN 20

/* One token a terminal, [ingest] ask_rate a second, as many in the bucket at most. */
static bool take_token(struct bbt_ingest *in, int64_t now_ms)
{
        double rate = (double)in->set.ask_rate;

        if (in->ask_tokens_ms && now_ms > in->ask_tokens_ms)
                in->ask_tokens += (double)(now_ms - in->ask_tokens_ms) * rate / 1000.0;
        else if (!in->ask_tokens_ms)
                in->ask_tokens = rate; /* full at the start */
        if (now_ms > in->ask_tokens_ms)
                in->ask_tokens_ms = now_ms;
        if (in->ask_tokens > rate)
                in->ask_tokens = rate;
        if (in->ask_tokens < 1.0)
                return false;
        in->ask_tokens -= 1.0;
        return true;
}

static int send_op(struct bbt_ingest *in, struct bbt_term *t, const char *op, char *id, size_t id_size, int64_t now_ms)
{
        struct bbt_msg m;

        bbt__cmd_id(in, "as", id, id_size);
        bbt_msg_init(&m, BBT_CH_CMD);
        m.body.cmd.id = id;
        m.body.cmd.op = op;
        return bbt__cmd_send(in, t, &m, now_ms);
}

static bool log_ok(struct bbt_ingest *in)
{
        if (!in->ask_log.what)
                in->ask_log = (struct bbt_log_limit){ .window_ms = bbt__mono_ms(), .what = "asks for a birth or inventory" };
        return bbt__log_limit_ok(&in->ask_log, bbt__mono_ms(), ASK_LOG_PER_MIN);
}

void bbt__ask_heard(struct bbt_ingest *in, struct bbt_term *t, enum bbt_channel ch, int64_t now_ms)
{
        bool no_inventory = t->row.inventory_seq < 0;
        char state_id[80] = "", inventory_id[80] = "";

        /* A birth seen (now or in an earlier run) is followed by its
         * inventory, live: only a terminal whose session is unknown is asked
         * (SPEC.md, Sessions), and for its inventory too when that is unknown. */
        if (in->set.ask_rate <= 0 || t->asked || t->row.boot >= 0 || ch == BBT_CH_STATE || ch == BBT_CH_INVENTORY)
                return;
        if (!in->connected || !in->publish || !take_token(in, now_ms))
                return; /* asked at its next message */
        if (send_op(in, t, "state", state_id, sizeof(state_id), now_ms) < 0)
                return; /* asked at its next message */
        if (no_inventory && send_op(in, t, "inventory", inventory_id, sizeof(inventory_id), now_ms) < 0)
                inventory_id[0] = '\0';
        t->asked = true;
        in->stats.asks++;
        if (log_ok(in))
                bbt_log_info("%s/%s/%s: its birth%s not known (never delivered retained: a new store, or a broker "
                             "that delivers no retained messages to wildcard subscriptions, docs/brokers.md): asked "
                             "the terminal (%s%s%s)",
                             t->row.county, t->row.school, t->row.terminal, no_inventory ? " and inventory" : "",
                             state_id, inventory_id[0] ? ", " : "", inventory_id);
}

bool bbt__ask_reply(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m)
{
        const struct bbt_cmd_reply *rp = &m->body.reply;

        if (strncmp(rp->id, "as-", 3) != 0)
                return false;
        if (rp->ok)
                return true;
        in->stats.asks_refused++;
        if (log_ok(in))
                bbt_log_warning("%s/%s/%s: ask %s refused: %s (an agent older than the state op learns of its "
                                "session at its next birth)",
                                t->row.county, t->row.school, t->row.terminal, rp->id,
                                rp->error ? rp->error : "(no reason given)");
        return true;
}
