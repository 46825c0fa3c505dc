/* The aggregator's Prometheus metrics: the text exposition of what ingest counts, and the address it is served on. */
#ifndef BBT_METRICS_H
#define BBT_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "ingest.h"
#include "registry.h"

/* Where the metrics come from: nothing here is counted twice, every figure
 * is read from the part that already keeps it. */
struct bbt_metrics_source {
        const struct bbt_ingest *ingest;
        const struct bbt_registry *reg; /* may be NULL */
        const char *store_path;         /* the SQLite store: its size and its -wal's */
        int64_t start_ms;               /* when the process started (wall clock) */
        bool broker_connected;
};

/* The media type of bbt_metrics_write()'s text (Prometheus text format 0.0.4). */
#define BBT_METRICS_MEDIA_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes every metric with its HELP and TYPE to OUT. Returns 0, -ENOMEM or -EIO. */
int bbt_metrics_write(const struct bbt_metrics_source *src, FILE *out);

/* Parses a listen address: "IPv4:PORT" or "[IPv6]:PORT", literal addresses
 * only (no host names: nothing to resolve at start), PORT 1..65535. Returns 0
 * with *RET and *RET_LEN, or -EINVAL. */
int bbt_listen_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len);

#endif
