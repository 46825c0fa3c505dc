/* The share-group probe: refuse a $share/ subscription that the broker accepts and then delivers nothing to. */
#ifndef BBT_SHARE_PROBE_H
#define BBT_SHARE_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Some brokers accept SUBSCRIBE $share/GROUP/TOPIC and never deliver a
 * message through it (RabbitMQ's MQTT plugin takes "$share/GROUP/..." for an
 * ordinary topic filter that no publisher's topic matches). An aggregator in
 * such a group would run forever and store nothing. So, until the first
 * message arrives through the share, the aggregator publishes a probe now and
 * then to a topic inside its own subscription that its broker account may
 * write (a cmd topic: bbt/v1/+/+/+/cmd, bbt-provision's aggregator ACL) and
 * that names no terminal (school "_probe", or terminal "_probe-<client>" when
 * the topic fixes the school). Any message counts, the probe or telemetry; a
 * probe is counted and never handed to ingest. With mosquitto's round robin
 * a member of a group of k gets one of every k messages, so some probe
 * arrives within k probes. Nothing at all within the timeout: refused.
 * Pure logic; the daemon's timer drives it (main.c).
 */

/* Probes are sent this often while none has arrived. */
#define BBT_SHARE_PROBE_INTERVAL_MS 1000

struct bbt_share_probe {
        char topic[400];     /* where the probes go */
        int64_t timeout_ms;  /* refused after this long connected with nothing (0: never) */
        int64_t started_ms;  /* the first connect (0: not connected yet) */
        int64_t last_sent_ms;
        bool delivered;      /* something arrived through the share */
        uint64_t sent, received;
};

enum bbt_share_probe_action {
        BBT_SHARE_PROBE_WAIT,   /* nothing to do now */
        BBT_SHARE_PROBE_SEND,   /* publish a probe to p->topic */
        BBT_SHARE_PROBE_REFUSE, /* nothing arrived within the timeout */
};

/* Prepares P for the subscription topic FILTER (the [broker] topic, without
 * the $share/GROUP/ prefix) and CLIENT_ID. Returns 0, or -EINVAL with ERR
 * saying why when FILTER admits no probe topic (it names a single terminal,
 * or no cmd topic at all). */
int bbt_share_probe_init(struct bbt_share_probe *p, const char *filter, const char *client_id, int64_t timeout_ms,
                         char *err, size_t err_size);

/* The broker connection came up at NOW_MS (monotonic): the clock starts at the first. */
void bbt_share_probe_connected(struct bbt_share_probe *p, int64_t now_ms);

/* What to do at NOW_MS (monotonic) while connected; call about once a second. */
enum bbt_share_probe_action bbt_share_probe_tick(struct bbt_share_probe *p, int64_t now_ms);

/* A message on TOPIC arrived through the share: the group delivers. Returns
 * true if it is a probe (counted; not telemetry: not for ingest). */
bool bbt_share_probe_message(struct bbt_share_probe *p, const char *topic);

#endif
