/* The aggregator's HTTP server for Prometheus: libmicrohttpd driven from the libuv loop, never blocking it. */
#ifndef BBT_METRICS_HTTP_H
#define BBT_METRICS_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include <uv.h>

struct bbt_metrics_http;

/* Writes the current metrics text into a malloc'd buffer *RET of *RET_LEN
 * bytes (freed by the server). Returns 0 or a negative errno (the scrape
 * gets 500). Runs on the loop, between messages. */
typedef int (*bbt_metrics_http_fn)(void *userdata, char **ret, size_t *ret_len);

/* Listens on ADDR and serves GET /metrics (from FN) and GET / (a line saying
 * where the metrics are); other paths 404, other methods 405. At most a few
 * connections, each closed after TIMEOUT_S seconds without progress. Returns 0
 * and *RET, or a negative errno with ERR saying why (e.g. the port is taken). */
int bbt_metrics_http_start(uv_loop_t *loop, const struct sockaddr *addr, unsigned int timeout_s,
                           bbt_metrics_http_fn fn, void *userdata, struct bbt_metrics_http **ret, char *err,
                           size_t err_size);

/* Stops listening, drops the connections, and frees H once its handles have
 * closed (NULL-safe). */
void bbt_metrics_http_close(struct bbt_metrics_http *h);

#endif
