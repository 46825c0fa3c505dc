/* bbt-web: the county's HTTP server, its JSON API over the store (read-only) and the dashboard's static files. */
#ifndef BBT_WEB_H
#define BBT_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "aggregator_config.h"

/* The routes of the API, for its OpenAPI document's test: PATH with {name}
 * for a path parameter, METHOD "GET" or "POST". */
struct bbt_web_route_info {
        const char *path;
        const char *method;
        bool needs_session;
};
/* The I-th route, or NULL past the end. "/api/v1/reports/{kind}" stands for
 * one path per report kind (bbt_report_kind_at()). */
const struct bbt_web_route_info *bbt_web_route_at(size_t i);

struct bbt_web;

/* Opens what the server works from, as CFG (kept, not copied: the caller
 * frees it after bbt_web_free) says: the registry and calendar, the users
 * file, the TLS files. Returns 0 and *RET, or a negative errno with every
 * problem written to ERRS (one line each). */
int bbt_web_new(const struct bbt_aggregator_config *cfg, FILE *errs, struct bbt_web **ret);
/* Checks [web] listen: one or more HOST:PORT or [IPV6]:PORT. Returns 0 or
 * -EINVAL with ERR. */
int bbt_web_listen_check(const char *listen, char *err, size_t err_size);
/* Listens on every [web] listen address. Returns 0, or a negative errno
 * with ERR saying which address failed and why. */
int bbt_web_start(struct bbt_web *w, char *err, size_t err_size);
/* SIGHUP: reads the registry, calendar and users files again; what fails
 * keeps the old (logged). */
void bbt_web_reload(struct bbt_web *w);
/* Stops listening, waits for the requests in progress, frees. NULL-safe. */
void bbt_web_free(struct bbt_web *w);
/* Logs the request counters (at exit). */
void bbt_web_log_counters(struct bbt_web *w);

#endif
