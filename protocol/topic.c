/* Topic names bbt/v1/{county}/{school}/{terminal}/{channel}: build and strict parse. */
#include "bbt/protocol.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const channel_names[BBT_CH__COUNT] = {
        [BBT_CH_STATE] = "state",         [BBT_CH_HB] = "hb",
        [BBT_CH_USAGE] = "usage",         [BBT_CH_PERIPH] = "periph",
        [BBT_CH_INVENTORY] = "inventory", [BBT_CH_ALERT] = "alert",
        [BBT_CH_CMD] = "cmd",             [BBT_CH_CMD_REPLY] = "cmd/reply",
};

const char *bbt_channel_name(enum bbt_channel ch)
{
        if ((int)ch < 0 || ch >= BBT_CH__COUNT)
                return NULL;
        return channel_names[ch];
}

enum bbt_channel bbt_channel_from_name(const char *name)
{
        int i;

        if (!name)
                return BBT_CH_INVALID;
        for (i = 0; i < BBT_CH__COUNT; i++)
                if (strcmp(channel_names[i], name) == 0)
                        return (enum bbt_channel)i;
        return BBT_CH_INVALID;
}

bool bbt_channel_retained(enum bbt_channel ch)
{
        return ch == BBT_CH_STATE || ch == BBT_CH_INVENTORY;
}

bool bbt_county_valid(const char *s)
{
        size_t i;

        if (!s)
                return false;
        for (i = 0; i < 6; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return s[6] == '\0';
}

static bool id_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
}

/* Length of the ID at the start of S up to END (a '/' or NUL), or 0 if invalid. */
static size_t id_span(const char *s)
{
        size_t n = 0;

        while (s[n] != '\0' && s[n] != '/') {
                if (!id_char(s[n]) || n == BBT_ID_MAX)
                        return 0;
                n++;
        }
        return n;
}

bool bbt_id_valid(const char *s)
{
        size_t n;

        if (!s)
                return false;
        n = id_span(s);
        return n > 0 && s[n] == '\0';
}

int bbt_topic_build(const struct bbt_topic *t, char *buf, size_t size)
{
        const char *ch = bbt_channel_name(t->channel);
        int n;

        if (!ch || !bbt_county_valid(t->county) || !bbt_id_valid(t->school) ||
            !bbt_id_valid(t->terminal))
                return -EINVAL;
        n = snprintf(buf, size, "bbt/v1/%s/%s/%s/%s", t->county, t->school, t->terminal, ch);
        if (n < 0)
                return -EINVAL;
        if ((size_t)n >= size)
                return -ENOBUFS;
        return n;
}

static int topic_error(char *err, size_t err_size, const char *what)
{
        if (err && err_size)
                snprintf(err, err_size, "topic: %s", what);
        return -EINVAL;
}

int bbt_topic_parse(const char *topic, struct bbt_topic *ret, char *err, size_t err_size)
{
        struct bbt_topic t;
        const char *p;
        size_t n;

        memset(&t, 0, sizeof(t));
        if (!topic)
                return topic_error(err, err_size, "missing");
        if (strncmp(topic, "bbt/v1/", 7) != 0)
                return topic_error(err, err_size, "expected prefix bbt/v1/");
        p = topic + 7;

        for (n = 0; n < 6 && p[n] >= '0' && p[n] <= '9'; n++)
                ;
        if (n != 6 || p[6] != '/')
                return topic_error(err, err_size, "county: expected 6 digits");
        memcpy(t.county, p, 6);
        p += 7;

        n = id_span(p);
        if (n == 0 || p[n] != '/')
                return topic_error(err, err_size, "school: expected [A-Za-z0-9_-]{1,32}");
        memcpy(t.school, p, n);
        p += n + 1;

        n = id_span(p);
        if (n == 0 || p[n] != '/')
                return topic_error(err, err_size, "terminal: expected [A-Za-z0-9_-]{1,32}");
        memcpy(t.terminal, p, n);
        p += n + 1;

        t.channel = bbt_channel_from_name(p);
        if (t.channel == BBT_CH_INVALID)
                return topic_error(err, err_size, "channel: expected state, hb, usage, periph, inventory, alert, cmd or cmd/reply");
        *ret = t;
        return 0;
}
