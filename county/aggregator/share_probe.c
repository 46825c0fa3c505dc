/* The share-group probe (share_probe.h): a probe topic inside the subscription, the clock, what arrived. */
#include "share_probe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define LEVELS 6 /* bbt/v1/{county}/{school}/{terminal}/cmd */
#define MARK "_probe"

/* The probe topic's levels where FILTER leaves them open. */
static const char *const defaults[LEVELS] = { "bbt", "v1", "000000", MARK, NULL, "cmd" };

int bbt_share_probe_init(struct bbt_share_probe *p, const char *filter, const char *client_id, int64_t timeout_ms,
                         char *err, size_t err_size)
{
        char levels[LEVELS][64], term[40];
        const char *f = filter;
        size_t n = 0;

        memset(p, 0, sizeof(*p));
        p->timeout_ms = timeout_ms;
        /* "_probe-" and the client id in the characters a topic level may hold. */
        snprintf(term, sizeof(term), MARK "-%.25s", client_id && *client_id ? client_id : "aggregator");
        for (char *c = term; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                      *c == '-'))
                        *c = '-';
        memset(levels, 0, sizeof(levels));
        /* Each level of FILTER: "+" leaves it open, "#" all the rest. */
        for (;;) {
                size_t len = strcspn(f, "/");

                if (len == 1 && *f == '#')
                        break;
                if (n == LEVELS || len >= sizeof(levels[0]))
                        goto no_topic;
                if (!(len == 1 && *f == '+'))
                        snprintf(levels[n], sizeof(levels[n]), "%.*s", (int)len, f);
                n++;
                if (!f[len]) {
                        if (n != LEVELS)
                                goto no_topic;
                        break;
                }
                f += len + 1;
        }
        /* A school and a terminal both fixed: the probe would be that terminal's command. */
        if (levels[3][0] && levels[4][0])
                goto no_topic;
        for (size_t i = 0; i < LEVELS; i++) {
                if (levels[i][0] && defaults[i] && i != 2 && i != 3 && strcmp(levels[i], defaults[i]) != 0)
                        goto no_topic;
                if (!levels[i][0])
                        snprintf(levels[i], sizeof(levels[i]), "%s", defaults[i] ? defaults[i] : term);
        }
        snprintf(p->topic, sizeof(p->topic), "%s/%s/%s/%s/%s/%s", levels[0], levels[1], levels[2], levels[3], levels[4],
                 levels[5]);
        return 0;
no_topic:
        snprintf(err, err_size,
                 "[broker] topic %s: no probe topic inside it (a cmd topic bbt/v1/COUNTY/SCHOOL/TERMINAL/cmd "
                 "naming no terminal)",
                 filter);
        return -EINVAL;
}

void bbt_share_probe_connected(struct bbt_share_probe *p, int64_t now_ms)
{
        if (!p->started_ms)
                p->started_ms = now_ms ? now_ms : 1;
}

enum bbt_share_probe_action bbt_share_probe_tick(struct bbt_share_probe *p, int64_t now_ms)
{
        if (p->delivered || !p->started_ms)
                return BBT_SHARE_PROBE_WAIT;
        if (p->timeout_ms > 0 && now_ms - p->started_ms >= p->timeout_ms)
                return BBT_SHARE_PROBE_REFUSE;
        if (p->last_sent_ms && now_ms - p->last_sent_ms < BBT_SHARE_PROBE_INTERVAL_MS)
                return BBT_SHARE_PROBE_WAIT;
        p->last_sent_ms = now_ms;
        p->sent++;
        return BBT_SHARE_PROBE_SEND;
}

/* Whether TOPIC is a probe: bbt/v1/C/_probe/T/cmd or bbt/v1/C/S/_probe-X/cmd. */
static bool is_probe(const char *topic)
{
        const char *l[LEVELS];
        size_t n = 1;

        l[0] = topic;
        for (const char *t = topic; (t = strchr(t, '/')); t++) {
                if (n == LEVELS)
                        return false;
                l[n++] = t + 1;
        }
        if (n != LEVELS || strcmp(l[5], "cmd") != 0)
                return false;
        return strncmp(l[3], MARK "/", strlen(MARK) + 1) == 0 || strncmp(l[4], MARK "-", strlen(MARK) + 1) == 0;
}

bool bbt_share_probe_message(struct bbt_share_probe *p, const char *topic)
{
        p->delivered = true;
        if (!is_probe(topic))
                return false;
        p->received++;
        return true;
}
