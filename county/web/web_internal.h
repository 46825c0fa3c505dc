/* bbt-web's parts between its files: the server's state, one request as the handlers see it, replies, the scope. */
#ifndef BBT_WEB_INTERNAL_H
#define BBT_WEB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include <cjson/cJSON.h>

#include "accounts.h"
#include "web_cache.h"
#include "calendar.h"
#include "indicators.h"
#include "registry.h"
#include "reports.h"
#include "store.h"
#include "web.h"

#define WEB_LISTEN_MAX 8
#define WEB_BODY_MAX (16 * 1024) /* a request body (the login form) at most */

/* What SIGHUP replaces: requests in progress keep the one they took. */
struct web_world {
        int refs;
        uint64_t serial;  /* a cache key's part: bodies made with another world are not served */
        struct bbt_registry *reg;
        struct bbt_calendar *cal;
};

/* Every request is counted once as REQUESTS and once under what it got. */
enum web_counter {
        WEB_REQUESTS,
        WEB_OK,              /* 2xx and 304 */
        WEB_BAD_REQUEST,     /* 400: a bad parameter or body */
        WEB_UNAUTHORIZED,    /* 401: no session, or a failed login */
        WEB_FORBIDDEN,       /* 403: out of scope, or no CSRF token */
        WEB_NOT_FOUND,       /* 404 */
        WEB_METHOD,          /* 405 */
        WEB_TOO_LARGE,       /* 413 */
        WEB_THROTTLED,       /* 429: logins */
        WEB_UNAVAILABLE,     /* 503: the store cannot be opened (yet) */
        WEB_ERROR,           /* 500 */
        WEB_LOGINS,          /* of the OK: sessions begun */
        WEB_EXPORTS,         /* of the OK: downloads written to the audit log */
        WEB_CONNECTIONS,     /* TCP connections accepted (what is not HTTP never becomes a request) */
        WEB_ABORTED,         /* requests ended before their answer was sent: client gone, timeout, error */
        WEB_C__COUNT
};
extern const char *const bbt_web_counter_names[WEB_C__COUNT];

struct bbt_web {
        const struct bbt_aggregator_config *cfg;
        struct bbt_metric_settings metrics;
        struct MHD_Daemon *mhd[WEB_LISTEN_MAX];
        size_t n_mhd;
        bool tls;
        char *tls_cert, *tls_key;   /* PEM, read at start */
        pthread_mutex_t lock;       /* world and pool */
        struct web_world *world;
        struct bbt_store **pool;    /* read-only store handles not in use */
        size_t n_pool, cap_pool;
        pthread_mutex_t acc_lock;   /* the accounts module is not thread-safe */
        struct bbt_accounts *acc;
        uint64_t counters[WEB_C__COUNT];
        int64_t started_ms;
        uint64_t world_serial;
        /* The response cache (NULL: [web] cache_size = 0) and the store's
         * change marker: one store handle of its own, whose data_version
         * moves GEN on (web_store_generation). */
        struct web_cache *cache;
        pthread_mutex_t gen_lock;
        struct bbt_store *watch;
        uint64_t watch_version, gen;
        bool watch_failed;  /* said once */
};

/* A request's body while it arrives. */
struct web_req {
        char *body;
        size_t len;
        bool too_large;
};

/* One request as a handler sees it. */
struct web_call {
        struct bbt_web *w;
        struct MHD_Connection *c;
        struct web_req *rq;
        const char *method, *url;
        const char *arg[2];       /* the route's path parameters */
        char addr[64];            /* the client's address */
        bool has_session;
        struct bbt_session s;     /* a copy of the caller's session */
        struct web_world *world;  /* taken for the call */
        int64_t now_ms;
        unsigned status;          /* the answer's, once queued */
};

int64_t web_now_ms(void);
void web_count(struct bbt_web *w, enum web_counter c);

/* Replies. Each queues the response and returns MHD's answer. */
enum MHD_Result web_error(struct web_call *k, unsigned status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* 405 with Allow: ALLOW. */
enum MHD_Result web_method_not_allowed(struct web_call *k, const char *allow);
/* 400 naming the parameter PARAM. */
enum MHD_Result web_bad_param(struct web_call *k, const char *param, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* BODY (malloc'd, taken) of LEN bytes as TYPE; DISPOSITION (may be NULL) a
 * Content-Disposition. */
enum MHD_Result web_send(struct web_call *k, unsigned status, const char *type, char *body, size_t len,
                         const char *disposition);
/* The same with an ETag header (ETAG may be NULL). */
enum MHD_Result web_send_tagged(struct web_call *k, unsigned status, const char *type, char *body, size_t len,
                                const char *disposition, const char *etag);
/* J (taken) as JSON. */
enum MHD_Result web_send_json(struct web_call *k, unsigned status, cJSON *j);
/* An open file FD (taken) of SIZE bytes. */
enum MHD_Result web_send_fd(struct web_call *k, const char *type, int fd, uint64_t size, const char *disposition,
                            bool cache);

/* The response cache (web_cache.h, docs/web.md "The response cache").
 * The store's generation: it changes when the store does. False if the
 * store cannot say (no cache then). */
bool web_store_generation(struct bbt_web *w, uint64_t *gen);
/* Makes a body: true with *BODY (malloc'd), *LEN and *TYPE (static), or
 * false after answering K itself (*RET: an error). */
typedef bool (*web_make_fn)(struct web_call *k, void *u, char **body, size_t *len, const char **type,
                            enum MHD_Result *ret);
/* Answers K with the body of KEY (the endpoint and its normalized query;
 * the caller's scope and the registry are added here): from the cache when
 * it holds one made at the store's generation, or within STALE_MS of a
 * change, and not older than MAX_AGE_MS (< 0: no bound); else made by MAKE
 * (once for all the requests asking at the same time) and kept. 304 when
 * If-None-Match names its ETag. DISPOSITION (may be NULL) as for web_send. */
enum MHD_Result web_cached(struct web_call *k, const char *key, int64_t max_age_ms, int64_t stale_ms,
                           web_make_fn make, void *u, const char *disposition);

/* A download: counted and written to the audit log with WHAT. */
void web_audit_export(struct web_call *k, const char *what);

/* Reads the query: each parameter must be one of NAMES (NULL-terminated)
 * and given once; VALUES[i] gets NAMES[i]'s value or NULL. Returns true, or
 * false after answering 400 (*RET). */
bool web_params(struct web_call *k, const char *const *names, const char **values, enum MHD_Result *ret);

/* A read-only store handle for this request (opened on first need, one per
 * worker at most), or NULL with ERR; give it back with web_store_put. */
struct bbt_store *web_store_get(struct bbt_web *w, char *err, size_t err_size);
void web_store_put(struct bbt_web *w, struct bbt_store *s);

/* Whether the caller's scope lets it see school CODE (of COUNTY, NULL: the
 * registry's or any). */
bool web_school_visible(const struct web_call *k, const char *county, const char *code);
/* Narrows O to the caller's scope: its county and school where it has one,
 * and the predicate for the rest (FILTER holds what it needs, and must live
 * as long as O). */
struct web_scope_filter {
        const struct bbt_scope *scope;
        const struct bbt_registry *reg;
};
void web_scope_options(const struct web_call *k, struct bbt_report_options *o, struct web_scope_filter *filter);
/* Whether the caller may see every county's store-wide figures (a county
 * admin without a county). */
bool web_scope_everything(const struct web_call *k);

/* The handlers (api.c, static.c). */
enum MHD_Result web_h_reports(struct web_call *k);
enum MHD_Result web_h_report(struct web_call *k);
enum MHD_Result web_h_terminal(struct web_call *k);
enum MHD_Result web_h_status(struct web_call *k);
enum MHD_Result web_static(struct web_call *k);

#endif
