/* The power schedule (定时关机) sent to each terminal: computed from the calendar, sent at its birth, when it changes and daily. */
#include "power_schedule.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bbt/log.h"
#include "cache.h"
#include "dates.h"
#include "ingest_internal.h"

/* Refusals logged a minute at most; the rest are counted. */
#define REFUSAL_LOG_PER_MIN 20

static void format_time(int32_t day, int sec, int offset_min, char *buf, size_t size)
{
        int y, m, d, off = offset_min < 0 ? -offset_min : offset_min;
        int n;

        bbt_day_to_ymd(day, &y, &m, &d);
        n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, sec / 3600, sec / 60 % 60, sec % 60);
        if (n < 0 || (size_t)n >= size)
                return;
        if (offset_min == 0)
                snprintf(buf + n, size - (size_t)n, "Z");
        else
                snprintf(buf + n, size - (size_t)n, "%c%02d:%02d", offset_min < 0 ? '-' : '+', off / 60, off % 60);
}

void bbt_power_plan_build(const struct bbt_calendar *cal, const char *county, const char *school, int64_t now_ms,
                          int days, int offset_min, struct bbt_power_plan *ret)
{
        int32_t today = bbt_day_of_ms(now_ms, offset_min);
        uint64_t h = 0xcbf29ce484222325ULL;

        memset(ret, 0, sizeof(*ret));
        if (days > BBT_POWER_DAYS_MAX)
                days = BBT_POWER_DAYS_MAX;
        for (int i = 0; i < days; i++) {
                int sec = bbt_calendar_power_off(cal, county, school, today + i);

                if (sec == BBT_POWER_NONE)
                        continue;
                ret->off_ms[ret->n] = bbt_day_start_ms(today + i, offset_min) + sec * 1000LL;
                format_time(today + i, sec, offset_min, ret->off[ret->n], sizeof(ret->off[0]));
                for (const char *p = ret->off[ret->n]; *p; p++)
                        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
                h = (h ^ ';') * 0x100000001b3ULL;
                ret->n++;
        }
        /* 1.. so that 0 means "nothing sent yet". */
        ret->rev = (int64_t)(h % (uint64_t)BBT_INT_MAX) + 1;
}

static void mark_due(struct bbt_ingest *in, struct bbt_term *t, uint8_t due)
{
        if (!t->power_due)
                in->power_due_n++;
        if (due > t->power_due)
                t->power_due = due;
}

void bbt__power_birth(struct bbt_ingest *in, struct bbt_term *t)
{
        if (in->set.power_days > 0 && bbt_calendar_has_power(in->cal))
                mark_due(in, t, BBT_POWER_DUE_FORCE);
}

void bbt__power_changed(struct bbt_ingest *in)
{
        /* Without power times anywhere the schedules sent so far stay (a
         * county switching the schedule off sends empty ones by a row with
         * none in every column). */
        if (in->set.power_days <= 0 || !bbt_calendar_has_power(in->cal))
                return;
        for (size_t i = 0; i < in->n_terms; i++)
                if (in->terms[i]->row.online)
                        mark_due(in, in->terms[i], BBT_POWER_DUE_CHANGED);
}

bool bbt__power_reply(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m)
{
        const struct bbt_cmd_reply *rp = &m->body.reply;

        if (strncmp(rp->id, "ps-", 3) != 0)
                return false;
        if (rp->ok) {
                in->stats.power_answered++;
                return true;
        }
        in->stats.power_refused++;
        /* A refused schedule is sent again at the next change or birth. */
        t->power_rev = 0;
        if (bbt__log_limit_ok(&in->power_log, bbt__mono_ms(), REFUSAL_LOG_PER_MIN))
                bbt_log_warning("%s/%s/%s: power schedule %s refused: %s", t->row.county, t->row.school,
                                t->row.terminal, rp->id, rp->error ? rp->error : "(no reason given)");
        return true;
}

/* Sends T its schedule. Returns 1 sent, 0 unchanged (not sent), or a
 * negative errno (-ENOTCONN: the broker is away; sent later). */
static int send_power(struct bbt_ingest *in, struct bbt_term *t, int64_t now_ms)
{
        const struct bbt_ingest_settings *s = &in->set;
        struct bbt_power_plan plan;
        struct bbt_msg m;
        char id[65];
        cJSON *args, *off;
        int r;

        bbt_power_plan_build(in->cal, t->row.county, t->row.school, now_ms, s->power_days, s->metrics.offset_min,
                             &plan);
        if (t->power_due != BBT_POWER_DUE_FORCE && plan.rev == t->power_rev)
                return 0;
        if (!in->publish || !in->connected)
                return -ENOTCONN;
        args = cJSON_CreateObject();
        off = args ? cJSON_AddArrayToObject(args, "off") : NULL;
        for (int i = 0; off && i < plan.n; i++)
                if (!cJSON_AddItemToArray(off, cJSON_CreateString(plan.off[i])))
                        off = NULL;
        if (!off || !cJSON_AddNumberToObject(args, "rev", (double)plan.rev)) {
                cJSON_Delete(args);
                return -ENOMEM;
        }
        bbt__cmd_id(in, "ps", id, sizeof(id));
        bbt_msg_init(&m, BBT_CH_CMD);
        m.body.cmd.id = id;
        m.body.cmd.op = "power_schedule";
        m.body.cmd.has_expires = true;
        m.body.cmd.expires = now_ms + s->power_expires_ms;
        m.body.cmd.args_json = args;
        r = bbt__cmd_send(in, t, &m, now_ms);
        cJSON_Delete(args);
        if (r < 0)
                return r;
        in->stats.power_sent++;
        t->power_rev = plan.rev;
        bbt_log_debug("%s/%s/%s: power schedule %s sent: %d power-offs, rev %" PRId64, t->row.county,
                      t->row.school, t->row.terminal, id, plan.n, plan.rev);
        return 1;
}

void bbt__power_tick(struct bbt_ingest *in, int64_t now_ms)
{
        const struct bbt_ingest_settings *s = &in->set;
        int32_t today;
        double budget;

        if (s->power_days <= 0 || !bbt_calendar_has_power(in->cal))
                return;
        /* The window rolls at local midnight: every schedule changes. */
        today = bbt_day_of_ms(now_ms, s->metrics.offset_min);
        if (today != in->power_day)
                bbt__power_changed(in); /* also at the start: terminals already online */
        in->power_day = today;
        /* A token bucket of power_send_rate a second, holding a second's worth:
         * 20,000 terminals born at once are sent theirs over 20,000 / rate s. */
        if (in->power_tokens_ms)
                in->power_tokens += (double)(now_ms - in->power_tokens_ms) * (double)s->power_send_rate / 1000.0;
        else
                in->power_tokens = (double)s->power_send_rate; /* full at the start */
        in->power_tokens_ms = now_ms;
        if (in->power_tokens > (double)s->power_send_rate)
                in->power_tokens = (double)s->power_send_rate;
        if (!in->power_due_n || !in->connected)
                return;
        budget = in->power_tokens;
        for (size_t scanned = 0; scanned < in->n_terms && in->power_due_n && budget >= 1.0; scanned++) {
                struct bbt_term *t;
                int r;

                if (in->power_cursor >= in->n_terms)
                        in->power_cursor = 0;
                t = in->terms[in->power_cursor++];
                if (!t->power_due)
                        continue;
                if (!t->row.online) {
                        /* Its next birth sends it. */
                        t->power_due = 0;
                        in->power_due_n--;
                        continue;
                }
                r = send_power(in, t, now_ms);
                if (r == -ENOTCONN)
                        break;
                if (r == 0)
                        bbt_log_debug("%s/%s/%s: power schedule unchanged (rev %" PRId64 "): not sent again",
                                      t->row.county, t->row.school, t->row.terminal, t->power_rev);
                if (r < 0) {
                        in->stats.power_failed++;
                        bbt_log_error("%s/%s/%s: power schedule not sent: %s", t->row.county, t->row.school,
                                      t->row.terminal, strerror(-r));
                }
                t->power_due = 0;
                in->power_due_n--;
                if (r > 0)
                        budget -= 1.0;
        }
        in->power_tokens = budget;
}
