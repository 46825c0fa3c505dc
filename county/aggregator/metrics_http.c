/* The aggregator's HTTP server for Prometheus: libmicrohttpd in external epoll mode, driven from the libuv loop. */
/*
 * MHD runs without a thread of its own (MHD_USE_EPOLL, no internal polling
 * thread): it keeps its listening socket and connections in an epoll set whose
 * descriptor (MHD_DAEMON_INFO_EPOLL_FD) a uv_poll watches on the aggregator's
 * loop. When that is readable, or when the time MHD_get_timeout() asked for
 * has passed (a uv_timer), MHD_run() does what is ready without blocking and
 * returns; so a scrape is served between two messages, on the loop, and reads
 * ingest's state without locks. A client that connects and sends nothing, or
 * reads slowly, costs a socket until its timeout, never the loop.
 */
#include "metrics_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "bbt/log.h"
#include "metrics.h"

/* Enough for a Prometheus server or two and a person with curl. */
#define CONNECTIONS_MAX 16
#define CONNECTIONS_PER_IP_MAX 8
/* A connection with nothing received or sent for this long is closed. */

struct bbt_metrics_http {
        struct MHD_Daemon *mhd;
        uv_poll_t poll;
        uv_timer_t timer;
        int open_handles;
        bbt_metrics_http_fn fn;
        void *userdata;
        char last_error[256]; /* MHD's last message, for a failed start */
};

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        struct bbt_metrics_http *h = cls;
        size_t n;

        vsnprintf(h->last_error, sizeof(h->last_error), fmt, ap);
        n = strlen(h->last_error);
        while (n && (h->last_error[n - 1] == '\n' || h->last_error[n - 1] == '.'))
                h->last_error[--n] = '\0';
        /* Mostly clients going away early: not the operator's concern. */
        bbt_log_debug("metrics: %s", h->last_error);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, const char *type, void *body,
                               size_t len, enum MHD_ResponseMemoryMode mode, const char *allow)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
        enum MHD_Result r;

        if (!resp) {
                if (mode == MHD_RESPMEM_MUST_FREE)
                        free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (allow)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned int status, const char *body, const char *allow)
{
        return respond(c, status, "text/plain; charset=utf-8", (void *)body, strlen(body), MHD_RESPMEM_PERSISTENT,
                       allow);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
        static const char index[] = "bbt-aggregator " BBT_VERSION "\nPrometheus metrics: /metrics\n";
        struct bbt_metrics_http *h = cls;
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        char *body = NULL;
        size_t len = 0;

        (void)version, (void)upload_data, (void)upload_data_size, (void)req_cls;
        if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0)
                return text(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n", NULL);
        if (!get)
                return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: only GET and HEAD\n", "GET, HEAD");
        if (strcmp(url, "/") == 0)
                return text(c, MHD_HTTP_OK, index, NULL);
        if (h->fn(h->userdata, &body, &len) < 0)
                return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "the metrics could not be gathered (out of memory)\n",
                            NULL);
        return respond(c, MHD_HTTP_OK, BBT_METRICS_MEDIA_TYPE, body, len, MHD_RESPMEM_MUST_FREE, NULL);
}

static void run(struct bbt_metrics_http *h);

static void on_timer(uv_timer_t *t)
{
        run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
        (void)status, (void)events;
        run(p->data);
}

/* Lets MHD do what is ready, then waits for its epoll set or its timeout. */
static void run(struct bbt_metrics_http *h)
{
        MHD_UNSIGNED_LONG_LONG timeout;

        MHD_run(h->mhd);
        /* MHD_YES with 0: work is pending already (data read but not yet
         * handled): run again on the next turn of the loop. */
        if (MHD_get_timeout(h->mhd, &timeout) == MHD_YES)
                uv_timer_start(&h->timer, on_timer, timeout, 0);
        else
                uv_timer_stop(&h->timer);
}

int bbt_metrics_http_start(uv_loop_t *loop, const struct sockaddr *addr, unsigned int timeout_s,
                           bbt_metrics_http_fn fn, void *userdata, struct bbt_metrics_http **ret, char *err,
                           size_t err_size)
{
        struct bbt_metrics_http *h = calloc(1, sizeof(*h));
        const union MHD_DaemonInfo *info;
        unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
        /* Ignored beside MHD_OPTION_SOCK_ADDR but named in MHD's messages. */
        uint16_t port = ntohs(addr->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)addr)->sin6_port
                                                          : ((const struct sockaddr_in *)addr)->sin_port);
        int r;

        if (!h)
                return -ENOMEM;
        h->fn = fn;
        h->userdata = userdata;
        if (addr->sa_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        h->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, h,
                                  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                                  MHD_OPTION_SOCK_ADDR, addr,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTIONS_MAX,
                                  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)CONNECTIONS_PER_IP_MAX,
                                  MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                                  MHD_OPTION_END);
        if (!h->mhd) {
                snprintf(err, err_size, "%s", *h->last_error ? h->last_error : "libmicrohttpd could not start");
                free(h);
                return -EADDRNOTAVAIL;
        }
        info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                snprintf(err, err_size, "libmicrohttpd has no epoll descriptor");
                MHD_stop_daemon(h->mhd);
                free(h);
                return -ENOTSUP;
        }
        r = uv_poll_init(loop, &h->poll, info->epoll_fd);
        if (r < 0) {
                snprintf(err, err_size, "cannot watch libmicrohttpd's epoll descriptor: %s", uv_strerror(r));
                MHD_stop_daemon(h->mhd);
                free(h);
                return r;
        }
        uv_timer_init(loop, &h->timer);
        h->poll.data = h->timer.data = h;
        h->open_handles = 2;
        uv_poll_start(&h->poll, UV_READABLE, on_poll);
        run(h);
        *ret = h;
        return 0;
}

static void on_closed(uv_handle_t *handle)
{
        struct bbt_metrics_http *h = handle->data;

        if (--h->open_handles > 0)
                return;
        /* The epoll descriptor is MHD's: closed here, no longer watched. */
        MHD_stop_daemon(h->mhd);
        free(h);
}

void bbt_metrics_http_close(struct bbt_metrics_http *h)
{
        if (!h)
                return;
        uv_poll_stop(&h->poll);
        uv_timer_stop(&h->timer);
        uv_close((uv_handle_t *)&h->poll, on_closed);
        uv_close((uv_handle_t *)&h->timer, on_closed);
}
