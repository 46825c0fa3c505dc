/* The projector driver: polls a PJLink projector over TCP on the loop, reports status and alerts. */
#include "projector.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pjlink.h"

#ifndef container_of
#endif

#define REASON_MAX 256
#define MAX_STEPS 10
/* Reconnects within one session after the projector closed between replies:
 * one per command covers projectors that close after every exchange. */
#define MAX_RECONNECTS MAX_STEPS
#define DAY_MS (24u * 3600u * 1000u)

enum session_kind { SESSION_POLL, SESSION_POWER, SESSION_PROBE };
enum phase { PH_IDLE, PH_RESOLVING, PH_CONNECTING, PH_GREETING, PH_REPLY };
enum fail_kind { FAIL_NONE, FAIL_RESOLVE, FAIL_CONNECT, FAIL_TIMEOUT, FAIL_CLOSED, FAIL_AUTH, FAIL_PROTOCOL };

/* One command of a session and what came back. */
struct step {
        enum bbt_pjlink_cmd cmd;
        int cls;
        const char *param; /* NULL: a query */
        bool done;
        int result;        /* 0, BBT_PJLINK_ERR1..4 or -EBADMSG once done */
        struct bbt_pjlink_reply reply;
        char reason[BBT_PJLINK_REASON_MAX];
};

/* A command on its way out; freed by its write callback. */
struct write_req {
        uv_write_t req;
        char buf[BBT_PJLINK_DIGEST_LEN + BBT_PJLINK_LINE_MAX + 1];
};

struct projector {
        struct bbt_driver base;
        struct bbt_projector_options opts; /* strings point at host and password below */
        char *host;
        char *password;
        char port_str[8];
        bool probe_mode; /* a probe's private copy: reports nothing */

        uv_timer_t poll_timer;
        uv_timer_t step_timer;
        bool timers_init;
        uv_getaddrinfo_t gai_req;
        bool gai_pending;
        struct addrinfo *addrs;
        struct addrinfo *addr; /* the address being tried or connected */
        uv_tcp_t tcp;
        bool tcp_open;         /* initialised, close callback still to come */
        bool tcp_closing;
        uv_connect_t connect_req;
        int connect_err;
        char read_buf[512];

        bool started, stopping;
        unsigned stop_pending;
        void (*stop_done)(void *userdata);
        void *stop_userdata;

        /* The session in progress: one connection (or several, when the
         * projector closes between replies) and a list of commands. */
        bool in_session;
        enum session_kind kind;
        enum phase phase;
        bool reconnect_wanted; /* connect to the same address once the socket closed */
        bool next_addr_wanted; /* try the next address once the socket closed */
        struct step steps[MAX_STEPS];
        unsigned n_steps, cur;
        unsigned replies_on_conn, reconnects;
        char digest[BBT_PJLINK_DIGEST_LEN + 1];
        bool need_digest, digest_sent;
        struct bbt_pjlink_reader reader;
        enum fail_kind fail;
        int fail_err;
        char fail_reason[REASON_MAX];

        /* Queued work. */
        bool poll_due;
        bool power_pending, power_running, power_on;
        bbt_projector_power_cb power_cb;
        void *power_userdata;

        /* What is known from earlier polls. */
        int clss;       /* 0 until CLSS answered */
        bool have_info; /* CLSS, NAME, INF1, INF2, INFO were asked */
        bool display_known, display_on;
        int erst_alert; /* -1, or the severity raised */
        char erst_detail[REASON_MAX];
        bool lamp_alert;
        char problem[REASON_MAX]; /* the problem last reported ("" none) */
        uint64_t unreachable_since; /* loop time of the first failed poll in a row (0: reachable) */
        bool unreachable_alert;

        struct bbt_projector_stats stats;
        char last_error[REASON_MAX];
};

static const struct bbt_driver_ops projector_ops;

static const char *const erst_item_names[BBT_ERST__COUNT] = {
        [BBT_ERST_FAN] = "fan", [BBT_ERST_LAMP] = "lamp", [BBT_ERST_TEMP] = "temp",
        [BBT_ERST_COVER] = "cover", [BBT_ERST_FILTER] = "filter", [BBT_ERST_OTHER] = "other",
};
static const char *const erst_level_names[] = { "ok", "warning", "error" };
static const char *const power_names[] = { "off", "on", "cooling", "warming", "unknown" };

static void session_start(struct projector *p, enum session_kind kind);
static void session_fail(struct projector *p, enum fail_kind kind, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void try_connect(struct projector *p);
static void connect_addr(struct projector *p);
static void send_step(struct projector *p);
static void maybe_continue(struct projector *p);
static void step_timer_cb(uv_timer_t *t);
static void poll_timer_cb(uv_timer_t *t);

static struct projector *to_projector(struct bbt_driver *d)
{
        return bbt_container_of(d, struct projector, base);
}

void bbt_projector_options_init(struct bbt_projector_options *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->port = BBT_PJLINK_PORT;
        opts->poll_interval_ms = BBT_PROJECTOR_POLL_INTERVAL_MS;
        opts->timeout_ms = BBT_PROJECTOR_TIMEOUT_MS;
}

/* ---- small helpers ---- */

static bool busy(const struct projector *p)
{
        return p->in_session || p->tcp_open || p->gai_pending;
}

static void arm_step_timer(struct projector *p)
{
        uv_timer_start(&p->step_timer, step_timer_cb, p->opts.timeout_ms, 0);
}

static void maybe_stop_done(struct projector *p)
{
        void (*done)(void *userdata) = p->stop_done;

        if (!p->stopping || p->stop_pending > 0 || p->tcp_open || p->gai_pending || !done)
                return;
        p->stop_done = NULL;
        done(p->stop_userdata);
}

static void tcp_close_cb(uv_handle_t *h)
{
        struct projector *p = bbt_container_of((uv_tcp_t *)h, struct projector, tcp);

        p->tcp_open = false;
        p->tcp_closing = false;
        if (p->stopping) {
                maybe_stop_done(p);
                return;
        }
        if (p->in_session && p->reconnect_wanted) {
                p->reconnect_wanted = false;
                connect_addr(p);
                return;
        }
        if (p->in_session && p->next_addr_wanted) {
                p->next_addr_wanted = false;
                p->addr = p->addr ? p->addr->ai_next : NULL;
                try_connect(p);
                return;
        }
        maybe_continue(p);
}

static void tcp_close(struct projector *p)
{
        if (!p->tcp_open || p->tcp_closing)
                return;
        p->tcp_closing = true;
        uv_close((uv_handle_t *)&p->tcp, tcp_close_cb);
}

static const struct step *find_step(const struct projector *p, enum bbt_pjlink_cmd cmd)
{
        for (unsigned i = 0; i < p->n_steps; i++)
                if (p->steps[i].cmd == cmd && !p->steps[i].param)
                        return &p->steps[i];
        return NULL;
}

static const struct bbt_pjlink_reply *step_reply(const struct projector *p, enum bbt_pjlink_cmd cmd)
{
        const struct step *s = find_step(p, cmd);

        return s && s->done && s->result == 0 ? &s->reply : NULL;
}

/* ---- reporting ---- */

static void status_from_steps(const struct projector *p, bool ok, struct bbt_projector_status *st)
{
        const struct bbt_pjlink_reply *r;

        memset(st, 0, sizeof(*st));
        st->reachable = ok;
        st->power = BBT_POWER_UNKNOWN;
        if (!ok)
                return;
        if ((r = step_reply(p, BBT_PJLINK_POWR))) {
                st->has_power = true;
                st->power = r->power;
        }
        if ((r = step_reply(p, BBT_PJLINK_INPT)))
                st->input = r->input;
        if ((r = step_reply(p, BBT_PJLINK_ERST))) {
                st->has_erst = true;
                memcpy(st->erst, r->erst, sizeof(st->erst));
        }
        if ((r = step_reply(p, BBT_PJLINK_LAMP))) {
                st->has_lamp_hours = true;
                st->lamp_hours = r->lamp_hours_max;
        }
}

static void alert(struct projector *p, const char *code, enum bbt_severity sev, enum bbt_alert_state state,
                  const char *detail)
{
        const struct bbt_driver_events *ev = p->base.env.events;

        if (ev && ev->alert && !p->stopping)
                ev->alert(ev->userdata, code, sev, state, detail);
}

/* projector_error: raised with the worst level and the items that are not
 * ok; raised again only when the severity or the items change; cleared once. */
static void update_erst_alert(struct projector *p, const struct bbt_projector_status *st)
{
        char detail[REASON_MAX];
        enum bbt_erst_level worst = BBT_ERST_OK;
        size_t o = 0;
        int sev;

        if (!st->has_erst)
                return;
        detail[0] = '\0';
        for (int i = 0; i < BBT_ERST__COUNT; i++) {
                if (st->erst[i] == BBT_ERST_OK)
                        continue;
                if (st->erst[i] > worst)
                        worst = st->erst[i];
                o += (size_t)snprintf(detail + o, sizeof(detail) - o, "%s%s: %s", o ? ", " : "",
                                      erst_item_names[i], erst_level_names[st->erst[i]]);
        }
        if (worst == BBT_ERST_OK) {
                if (p->erst_alert >= 0) {
                        sev = p->erst_alert;
                        p->erst_alert = -1;
                        p->erst_detail[0] = '\0';
                        alert(p, "projector_error", (enum bbt_severity)sev, BBT_ALERT_CLEARED, "all items ok");
                }
                return;
        }
        sev = worst == BBT_ERST_ERROR ? BBT_SEVERITY_ERROR : BBT_SEVERITY_WARNING;
        if (p->erst_alert == sev && strcmp(p->erst_detail, detail) == 0)
                return;
        p->erst_alert = sev;
        snprintf(p->erst_detail, sizeof(p->erst_detail), "%s", detail);
        alert(p, "projector_error", (enum bbt_severity)sev, BBT_ALERT_RAISED, detail);
}

/* lamp_hours: raised once when a lamp reaches the limit, cleared once all are
 * under it again (a new lamp). */
static void update_lamp_alert(struct projector *p)
{
        const struct bbt_pjlink_reply *r = step_reply(p, BBT_PJLINK_LAMP);
        char detail[REASON_MAX];
        int64_t limit = p->opts.lamp_hours_limit;
        size_t o = 0;

        if (!r || limit <= 0)
                return;
        if (r->lamp_hours_max >= limit && !p->lamp_alert) {
                for (unsigned i = 0; i < r->n_lamps; i++)
                        if (r->lamp_hours[i] >= limit)
                                o += (size_t)snprintf(detail + o, sizeof(detail) - o, "%slamp %u: %" PRId64 " h",
                                                      o ? ", " : "", i + 1, r->lamp_hours[i]);
                snprintf(detail + o, sizeof(detail) - o, "; limit %" PRId64 " h", limit);
                p->lamp_alert = true;
                alert(p, "lamp_hours", BBT_SEVERITY_WARNING, BBT_ALERT_RAISED, detail);
        } else if (r->lamp_hours_max < limit && p->lamp_alert) {
                snprintf(detail, sizeof(detail), "%" PRId64 " h, under the limit %" PRId64 " h", r->lamp_hours_max,
                         limit);
                p->lamp_alert = false;
                alert(p, "lamp_hours", BBT_SEVERITY_WARNING, BBT_ALERT_CLEARED, detail);
        }
}

/* Reports a change of what is wrong (WHAT "" when fine) for the log. */
static void set_problem(struct projector *p, const char *what)
{
        const struct bbt_driver_events *ev = p->base.env.events;

        if (strcmp(p->problem, what) == 0)
                return;
        snprintf(p->problem, sizeof(p->problem), "%s", what);
        if (ev && ev->problem && !p->stopping)
                ev->problem(ev->userdata, "projector", what[0] ? what : NULL);
}

/* A projector that stays unreachable (or refuses the password) for
 * unreachable_alert_ms raises projector_unreachable with the reason; the
 * first good poll clears it. */
static void update_reachability(struct projector *p, bool ok)
{
        uint64_t now = uv_now(p->base.env.loop);
        char detail[REASON_MAX + 64];

        if (ok) {
                set_problem(p, "");
                p->unreachable_since = 0;
                if (p->unreachable_alert) {
                        p->unreachable_alert = false;
                        alert(p, "projector_unreachable", BBT_SEVERITY_WARNING, BBT_ALERT_CLEARED, "reachable");
                }
                return;
        }
        snprintf(detail, sizeof(detail), "unreachable: %s", p->fail_reason);
        set_problem(p, detail);
        if (!p->unreachable_since)
                p->unreachable_since = now ? now : 1;
        if (!p->unreachable_alert && p->opts.unreachable_alert_ms &&
            now - p->unreachable_since >= p->opts.unreachable_alert_ms) {
                p->unreachable_alert = true;
                snprintf(detail, sizeof(detail), "%s:%s unreachable for %" PRIu64 " s: %s", p->host, p->port_str,
                         (now - p->unreachable_since) / 1000, p->fail_reason);
                alert(p, "projector_unreachable", BBT_SEVERITY_WARNING, BBT_ALERT_RAISED, detail);
        }
}

static void report_poll(struct projector *p, bool ok)
{
        const struct bbt_driver_events *ev = p->base.env.events;
        struct bbt_projector_status st;

        status_from_steps(p, ok, &st);
        if (ev && ev->projector && !p->stopping)
                ev->projector(ev->userdata, &st);
        update_reachability(p, ok);
        if (!ok)
                return; /* unreachable: the display and the alerts are unknown, not changed */
        if (st.has_power) {
                bool on = st.power == BBT_POWER_ON || st.power == BBT_POWER_WARMING;

                if (!p->display_known || p->display_on != on) {
                        p->display_known = true;
                        p->display_on = on;
                        if (ev && ev->display && !p->stopping)
                                ev->display(ev->userdata, on, "projector");
                }
        }
        update_erst_alert(p, &st);
        update_lamp_alert(p);
}

/* ---- sessions ---- */

static void session_end(struct projector *p)
{
        bool ok = p->fail == FAIL_NONE;
        enum session_kind kind = p->kind;
        bbt_projector_power_cb cb;
        void *cb_userdata;
        char reason[REASON_MAX];
        int status = 0;

        uv_timer_stop(&p->step_timer);
        p->in_session = false;
        p->phase = PH_IDLE;
        p->reconnect_wanted = p->next_addr_wanted = false;
        tcp_close(p);
        if (p->addrs) {
                uv_freeaddrinfo(p->addrs);
                p->addrs = NULL;
                p->addr = NULL;
        }
        if (p->gai_pending)
                uv_cancel((uv_req_t *)&p->gai_req);

        switch (p->fail) {
        case FAIL_NONE:
                break;
        case FAIL_RESOLVE:
                p->stats.fail_resolve++;
                break;
        case FAIL_CONNECT:
                p->stats.fail_connect++;
                break;
        case FAIL_TIMEOUT:
                p->stats.fail_timeout++;
                break;
        case FAIL_CLOSED:
                p->stats.fail_closed++;
                break;
        case FAIL_AUTH:
                p->stats.fail_auth++;
                break;
        case FAIL_PROTOCOL:
                p->stats.fail_protocol++;
                break;
        }

        if (kind == SESSION_POWER) {
                const struct step *s = &p->steps[0];

                if (!ok) {
                        status = p->fail_err;
                        snprintf(reason, sizeof(reason), "%s", p->fail_reason);
                } else if (s->result != 0) {
                        status = s->result;
                        snprintf(reason, sizeof(reason), "%s", s->reason);
                }
                if (status == 0)
                        p->stats.power_ok++;
                else
                        p->stats.power_failed++;
                cb = p->power_cb;
                cb_userdata = p->power_userdata;
                p->power_pending = p->power_running = false;
                p->power_cb = NULL;
                if (status == 0 && !p->stopping) {
                        /* Poll at once so the warming/cooling state is reported. */
                        uv_timer_stop(&p->poll_timer);
                        p->poll_due = true;
                }
                if (cb)
                        cb(cb_userdata, status, status ? reason : NULL);
        } else if (kind == SESSION_POLL) {
                p->stats.polls++;
                if (ok) {
                        p->stats.polls_ok++;
                        p->last_error[0] = '\0';
                        p->have_info = true;
                } else {
                        snprintf(p->last_error, sizeof(p->last_error), "%s", p->fail_reason);
                }
                if (!p->stopping)
                        uv_timer_start(&p->poll_timer, poll_timer_cb, p->opts.poll_interval_ms, 0);
                report_poll(p, ok);
        }
        if (!p->stopping)
                maybe_continue(p);
}

static void session_fail(struct projector *p, enum fail_kind kind, int err, const char *fmt, ...)
{
        va_list ap;

        if (!p->in_session)
                return;
        p->fail = kind;
        p->fail_err = err;
        va_start(ap, fmt);
        vsnprintf(p->fail_reason, sizeof(p->fail_reason), fmt, ap);
        va_end(ap);
        session_end(p);
}

static const char *phase_what(const struct projector *p, char *buf, size_t size)
{
        switch (p->phase) {
        case PH_RESOLVING:
                snprintf(buf, size, "%s did not resolve", p->host);
                break;
        case PH_CONNECTING:
                snprintf(buf, size, "no TCP connection to %s port %s", p->host, p->port_str);
                break;
        case PH_GREETING:
                snprintf(buf, size, "no greeting");
                break;
        case PH_REPLY:
                snprintf(buf, size, "no reply to %s", bbt_pjlink_cmd_name(p->steps[p->cur].cmd));
                break;
        case PH_IDLE:
                snprintf(buf, size, "idle");
                break;
        }
        return buf;
}

static void step_timer_cb(uv_timer_t *t)
{
        struct projector *p = bbt_container_of(t, struct projector, step_timer);
        char what[128];

        session_fail(p, FAIL_TIMEOUT, -ETIMEDOUT, "timeout: %s within %" PRIu32 " ms",
                     phase_what(p, what, sizeof(what)), p->opts.timeout_ms);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
        struct projector *p = bbt_container_of(req, struct projector, gai_req);

        p->gai_pending = false;
        if (p->stopping) {
                uv_freeaddrinfo(res);
                maybe_stop_done(p);
                return;
        }
        if (!p->in_session || p->phase != PH_RESOLVING) {
                /* The session timed out while the resolver ran. */
                uv_freeaddrinfo(res);
                maybe_continue(p);
                return;
        }
        if (status < 0) {
                uv_freeaddrinfo(res);
                session_fail(p, FAIL_RESOLVE, -EHOSTUNREACH, "resolve: %s: %s", p->host, uv_strerror(status));
                return;
        }
        p->addrs = res;
        p->addr = res;
        try_connect(p);
}

static void try_connect(struct projector *p)
{
        while (p->addr && p->addr->ai_family != AF_INET && p->addr->ai_family != AF_INET6)
                p->addr = p->addr->ai_next;
        if (!p->addr) {
                int err = p->connect_err ? p->connect_err : -EHOSTUNREACH;

                session_fail(p, FAIL_CONNECT, err, "connect: %s port %s: %s", p->host, p->port_str,
                             uv_strerror(err));
                return;
        }
        connect_addr(p);
}

static void on_conn_lost(struct projector *p, int err)
{
        char what[128];

        if (!p->in_session || p->tcp_closing)
                return;
        if (p->phase == PH_REPLY && p->replies_on_conn > 0 && p->reconnects < MAX_RECONNECTS) {
                /* Many projectors close after each exchange: carry on from the
                 * command that was not answered, on a new connection. */
                p->reconnects++;
                p->stats.reconnects++;
                p->reconnect_wanted = true;
                p->phase = PH_CONNECTING;
                arm_step_timer(p);
                tcp_close(p);
                return;
        }
        if (p->phase == PH_GREETING)
                snprintf(what, sizeof(what), "before the greeting");
        else
                snprintf(what, sizeof(what), "waiting for the %s reply",
                         bbt_pjlink_cmd_name(p->steps[p->cur].cmd));
        if (err == UV_EOF)
                session_fail(p, FAIL_CLOSED, -ECONNRESET, "closed: the projector closed the connection %s", what);
        else
                session_fail(p, FAIL_CLOSED, err, "closed: %s %s", uv_strerror(err), what);
}

static void write_cb(uv_write_t *req, int status)
{
        struct write_req *w = bbt_container_of(req, struct write_req, req);
        struct projector *p = bbt_container_of((uv_tcp_t *)req->handle, struct projector, tcp);

        free(w);
        if (status < 0 && status != UV_ECANCELED)
                on_conn_lost(p, status);
}

static void session_complete(struct projector *p)
{
        p->fail = FAIL_NONE;
        session_end(p);
}

static void handle_reply(struct projector *p, const char *line, size_t len)
{
        struct step *s = &p->steps[p->cur];
        struct bbt_pjlink_reply reply;
        char reason[BBT_PJLINK_REASON_MAX];
        int r;

        r = bbt_pjlink_reply_parse(s->cmd, s->cls, s->param != NULL, line, len, &reply, reason, sizeof(reason));
        if (r == BBT_PJLINK_SKIP) {
                p->stats.skipped++;
                return;
        }
        if (r == BBT_PJLINK_ERRA) {
                session_fail(p, FAIL_AUTH, BBT_PJLINK_ERRA, "auth: %s%s", reason,
                             p->password ? " (wrong password?)" : "");
                return;
        }
        if (r == -EMSGSIZE || r == -EINVAL) {
                session_fail(p, FAIL_PROTOCOL, -EPROTO, "protocol: %s", reason);
                return;
        }
        /* A bad value or an ERRn leaves this item out; the stream stays in step,
         * since a stray reply to an earlier command is skipped by its name. */
        s->done = true;
        s->result = r;
        if (r == 0)
                s->reply = reply;
        else
                snprintf(s->reason, sizeof(s->reason), "%s", reason);
        if (r == -EBADMSG)
                p->stats.bad_replies++;
        else if (r < 0)
                p->stats.cmd_errors++;
        if (r == 0 && s->cmd == BBT_PJLINK_CLSS && !s->param)
                p->clss = reply.clss;
        p->replies_on_conn++;
        p->cur++;
        if (p->cur == p->n_steps)
                session_complete(p);
        else
                send_step(p);
}

static void handle_greeting(struct projector *p, const char *line, size_t len)
{
        struct bbt_pjlink_greeting g;
        char reason[BBT_PJLINK_REASON_MAX];
        int r;

        r = bbt_pjlink_greeting_parse(line, len, &g, reason, sizeof(reason));
        if (r == BBT_PJLINK_ERRA) {
                session_fail(p, FAIL_AUTH, r, "auth: %s", reason);
                return;
        }
        if (r < 0) {
                session_fail(p, FAIL_PROTOCOL, -EPROTO, "protocol: %s", reason);
                return;
        }
        p->need_digest = g.auth;
        p->digest_sent = false;
        if (g.auth) {
                if (!p->password) {
                        session_fail(p, FAIL_AUTH, BBT_PJLINK_ERRA,
                                     "auth: the projector requires a password and none is configured");
                        return;
                }
                r = bbt_pjlink_digest(g.random, p->password, p->digest);
                if (r < 0) {
                        session_fail(p, FAIL_AUTH, r, "auth: cannot compute the MD5 digest: %s", strerror(-r));
                        return;
                }
        }
        send_step(p);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        struct projector *p = bbt_container_of((uv_tcp_t *)h, struct projector, tcp);

        *buf = uv_buf_init(p->read_buf, sizeof(p->read_buf));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct projector *p = bbt_container_of((uv_tcp_t *)stream, struct projector, tcp);
        const char *data = buf->base, *line;
        size_t size, len;
        int r;

        if (nread < 0) {
                on_conn_lost(p, (int)nread);
                return;
        }
        size = (size_t)nread;
        while (size > 0 && p->in_session && !p->tcp_closing &&
               (p->phase == PH_GREETING || p->phase == PH_REPLY)) {
                r = bbt_pjlink_reader_next(&p->reader, &data, &size, &line, &len);
                if (r == 0)
                        break;
                if (r < 0) {
                        session_fail(p, FAIL_PROTOCOL, -EPROTO, "protocol: a line longer than %d bytes",
                                     BBT_PJLINK_LINE_MAX);
                        return;
                }
                if (p->phase == PH_GREETING)
                        handle_greeting(p, line, len);
                else
                        handle_reply(p, line, len);
        }
}

static void send_step(struct projector *p)
{
        struct step *s = &p->steps[p->cur];
        struct write_req *w;
        uv_buf_t b;
        int n, r;

        if (s->cmd == BBT_PJLINK_INPT)
                s->cls = p->clss >= 2 ? 2 : 1; /* class 2 inputs go up to Z */
        w = malloc(sizeof(*w));
        if (!w) {
                session_fail(p, FAIL_CONNECT, -ENOMEM, "out of memory");
                return;
        }
        n = bbt_pjlink_build(s->cmd, s->cls, s->param, p->need_digest && !p->digest_sent ? p->digest : NULL,
                             w->buf, sizeof(w->buf));
        if (n < 0) {
                free(w);
                session_fail(p, FAIL_PROTOCOL, n, "internal: cannot build %s", bbt_pjlink_cmd_name(s->cmd));
                return;
        }
        b = uv_buf_init(w->buf, (unsigned)n);
        r = uv_write(&w->req, (uv_stream_t *)&p->tcp, &b, 1, write_cb);
        if (r < 0) {
                free(w);
                on_conn_lost(p, r);
                return;
        }
        if (p->need_digest)
                p->digest_sent = true;
        p->phase = PH_REPLY;
        arm_step_timer(p);
}

static void connect_cb(uv_connect_t *req, int status)
{
        struct projector *p = bbt_container_of(req, struct projector, connect_req);
        int r;

        if (status == UV_ECANCELED || !p->in_session || p->tcp_closing)
                return;
        if (status < 0) {
                p->connect_err = status;
                p->next_addr_wanted = true;
                tcp_close(p);
                return;
        }
        r = uv_read_start((uv_stream_t *)&p->tcp, alloc_cb, read_cb);
        if (r < 0) {
                session_fail(p, FAIL_CONNECT, r, "connect: %s", uv_strerror(r));
                return;
        }
        p->phase = PH_GREETING;
        arm_step_timer(p);
}

static void connect_addr(struct projector *p)
{
        int r;

        r = uv_tcp_init(p->base.env.loop, &p->tcp);
        if (r < 0) {
                session_fail(p, FAIL_CONNECT, r, "connect: %s", uv_strerror(r));
                return;
        }
        p->tcp_open = true;
        p->tcp_closing = false;
        bbt_pjlink_reader_reset(&p->reader);
        p->replies_on_conn = 0;
        p->digest_sent = false;
        p->phase = PH_CONNECTING;
        arm_step_timer(p);
        r = uv_tcp_connect(&p->connect_req, &p->tcp, p->addr->ai_addr, connect_cb);
        if (r < 0) {
                p->connect_err = r;
                p->next_addr_wanted = true;
                tcp_close(p);
                return;
        }
        uv_tcp_nodelay(&p->tcp, 1);
}

static void add_step(struct projector *p, enum bbt_pjlink_cmd cmd, const char *param)
{
        struct step *s = &p->steps[p->n_steps++];

        memset(s, 0, sizeof(*s));
        s->cmd = cmd;
        s->cls = 1;
        s->param = param;
}

static void session_start(struct projector *p, enum session_kind kind)
{
        struct addrinfo hints;
        bool info = kind == SESSION_PROBE || (kind == SESSION_POLL && !p->have_info);
        int r;

        p->n_steps = 0;
        p->cur = 0;
        if (kind == SESSION_POWER) {
                add_step(p, BBT_PJLINK_POWR, p->power_on ? "1" : "0");
        } else {
                if (info)
                        add_step(p, BBT_PJLINK_CLSS, NULL);
                add_step(p, BBT_PJLINK_POWR, NULL);
                add_step(p, BBT_PJLINK_INPT, NULL);
                add_step(p, BBT_PJLINK_ERST, NULL);
                add_step(p, BBT_PJLINK_LAMP, NULL);
                if (info) {
                        add_step(p, BBT_PJLINK_NAME, NULL);
                        add_step(p, BBT_PJLINK_INF1, NULL);
                        add_step(p, BBT_PJLINK_INF2, NULL);
                        add_step(p, BBT_PJLINK_INFO, NULL);
                }
        }
        p->in_session = true;
        p->kind = kind;
        p->fail = FAIL_NONE;
        p->fail_err = 0;
        p->fail_reason[0] = '\0';
        p->reconnects = 0;
        p->connect_err = 0;
        p->reconnect_wanted = p->next_addr_wanted = false;
        p->phase = PH_RESOLVING;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        /* Always on the thread pool, even for an address: a name may take seconds. */
        r = uv_getaddrinfo(p->base.env.loop, &p->gai_req, gai_cb, p->host, p->port_str, &hints);
        if (r < 0) {
                session_fail(p, FAIL_RESOLVE, -EHOSTUNREACH, "resolve: %s: %s", p->host, uv_strerror(r));
                return;
        }
        p->gai_pending = true;
        arm_step_timer(p);
}

/* Starts what is queued once the previous session's socket and resolver are done. */
static void maybe_continue(struct projector *p)
{
        if (p->stopping || !p->started || busy(p))
                return;
        if (p->power_pending && !p->power_running) {
                p->power_running = true;
                session_start(p, SESSION_POWER);
        } else if (p->poll_due) {
                p->poll_due = false;
                session_start(p, SESSION_POLL);
        }
}

static void poll_timer_cb(uv_timer_t *t)
{
        struct projector *p = bbt_container_of(t, struct projector, poll_timer);

        p->poll_due = true;
        maybe_continue(p);
}

/* ---- the driver operations ---- */

static int projector_start(struct bbt_driver *d)
{
        struct projector *p = to_projector(d);
        struct sigaction sa;

        if (p->started || p->stopping)
                return -EALREADY;
        /* libuv writes with write(2): a projector that hangs up mid-write
         * must not kill the daemon with SIGPIPE. */
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
                memset(&sa, 0, sizeof(sa));
                sa.sa_handler = SIG_IGN;
                sigaction(SIGPIPE, &sa, NULL);
        }
        uv_timer_init(d->env.loop, &p->poll_timer);
        uv_timer_init(d->env.loop, &p->step_timer);
        p->timers_init = true;
        p->started = true;
        /* The first poll right away (from the loop, not inside start()). */
        uv_timer_start(&p->poll_timer, poll_timer_cb, 0, 0);
        return 0;
}

static void stop_timer_closed_cb(uv_handle_t *h)
{
        struct projector *p = h->data;

        p->stop_pending--;
        maybe_stop_done(p);
}

static void projector_stop(struct bbt_driver *d, void (*done)(void *userdata), void *userdata)
{
        struct projector *p = to_projector(d);
        bbt_projector_power_cb cb = NULL;
        void *cb_userdata = NULL;

        if (p->stopping)
                return;
        p->stopping = true;
        p->stop_done = done;
        p->stop_userdata = userdata;
        if (!p->timers_init) {
                /* Never started: two timers to close, so DONE still comes from the loop. */
                uv_timer_init(d->env.loop, &p->poll_timer);
                uv_timer_init(d->env.loop, &p->step_timer);
                p->timers_init = true;
        }
        p->poll_timer.data = p;
        p->step_timer.data = p;
        p->stop_pending = 2;
        uv_close((uv_handle_t *)&p->poll_timer, stop_timer_closed_cb);
        uv_close((uv_handle_t *)&p->step_timer, stop_timer_closed_cb);
        p->in_session = false;
        p->reconnect_wanted = p->next_addr_wanted = false;
        tcp_close(p);
        if (p->gai_pending)
                uv_cancel((uv_req_t *)&p->gai_req);
        if (p->power_pending) {
                cb = p->power_cb;
                cb_userdata = p->power_userdata;
                p->power_pending = p->power_running = false;
                p->power_cb = NULL;
                p->stats.power_failed++;
        }
        if (cb)
                cb(cb_userdata, -ECANCELED, "the projector driver stopped");
}

static void projector_destroy(struct bbt_driver *d)
{
        struct projector *p;

        if (!d)
                return;
        p = to_projector(d);
        if (p->addrs)
                uv_freeaddrinfo(p->addrs);
        free(p->host);
        free(p->password);
        free(p);
}

static int projector_create(const struct bbt_driver_env *env, const struct bbt_projector_options *opts,
                            struct projector **ret)
{
        struct projector *p;
        size_t i, plen;

        if (!env || !env->loop || !opts || !opts->host || !opts->host[0] || strlen(opts->host) > 253 ||
            opts->poll_interval_ms > DAY_MS || opts->timeout_ms > DAY_MS || opts->lamp_hours_limit < 0)
                return -EINVAL;
        if (opts->password) {
                plen = strlen(opts->password);
                if (plen > BBT_PJLINK_PASSWORD_MAX)
                        return -EINVAL;
                for (i = 0; i < plen; i++)
                        if ((unsigned char)opts->password[i] < 0x20 || opts->password[i] == 0x7f)
                                return -EINVAL;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->base.ops = &projector_ops;
        p->base.env = *env;
        p->opts = *opts;
        p->host = strdup(opts->host);
        if (!p->host)
                goto fail;
        /* An empty password (`password =` in the config) means none. */
        if (opts->password && opts->password[0]) {
                p->password = strdup(opts->password);
                if (!p->password)
                        goto fail;
        }
        p->opts.host = p->host;
        p->opts.password = p->password;
        if (p->opts.port == 0)
                p->opts.port = BBT_PJLINK_PORT;
        if (p->opts.poll_interval_ms == 0)
                p->opts.poll_interval_ms = BBT_PROJECTOR_POLL_INTERVAL_MS;
        if (p->opts.timeout_ms == 0)
                p->opts.timeout_ms = BBT_PROJECTOR_TIMEOUT_MS;
        snprintf(p->port_str, sizeof(p->port_str), "%u", (unsigned)p->opts.port);
        p->erst_alert = -1;
        *ret = p;
        return 0;
fail:
        projector_destroy(&p->base);
        return -ENOMEM;
}

int bbt_projector_new(const struct bbt_driver_env *env, const struct bbt_projector_options *opts,
                      struct bbt_driver **ret)
{
        struct projector *p = NULL;
        int r;

        r = projector_create(env, opts, &p);
        if (r < 0)
                return r;
        *ret = &p->base;
        return 0;
}

int bbt_projector_power(struct bbt_driver *d, bool on, bbt_projector_power_cb cb, void *userdata)
{
        struct projector *p;

        if (!d || d->ops != &projector_ops)
                return -EINVAL;
        p = to_projector(d);
        if (!p->started || p->stopping)
                return -EINVAL;
        if (p->power_pending)
                return -EBUSY;
        p->power_pending = true;
        p->power_running = false;
        p->power_on = on;
        p->power_cb = cb;
        p->power_userdata = userdata;
        maybe_continue(p);
        return 0;
}

void bbt_projector_get_stats(const struct bbt_driver *d, struct bbt_projector_stats *ret)
{
        *ret = bbt_container_of(d, const struct projector, base)->stats;
}

const char *bbt_projector_last_error(const struct bbt_driver *d)
{
        return bbt_container_of(d, const struct projector, base)->last_error;
}

/* ---- probe ---- */

static void probe_stopped_cb(void *userdata)
{
        *(bool *)userdata = true;
}

static void print_step(FILE *out, const struct projector *q, enum bbt_pjlink_cmd cmd, const char *label)
{
        const struct step *s = find_step(q, cmd);
        const struct bbt_pjlink_reply *r;

        if (!s || !s->done) {
                fprintf(out, "  %-13s (not asked)\n", label);
                return;
        }
        if (s->result != 0) {
                fprintf(out, "  %-13s unavailable (%s)\n", label, s->reason);
                return;
        }
        r = &s->reply;
        fprintf(out, "  %-13s ", label);
        switch (cmd) {
        case BBT_PJLINK_POWR:
                fprintf(out, "%s\n", power_names[r->power]);
                break;
        case BBT_PJLINK_INPT:
                fprintf(out, "%s\n", r->input);
                break;
        case BBT_PJLINK_ERST:
                for (int i = 0; i < BBT_ERST__COUNT; i++)
                        fprintf(out, "%s%s %s", i ? ", " : "", erst_item_names[i], erst_level_names[r->erst[i]]);
                fputc('\n', out);
                break;
        case BBT_PJLINK_LAMP:
                for (unsigned i = 0; i < r->n_lamps; i++)
                        fprintf(out, "%s%" PRId64 " h (%s)", i ? ", " : "", r->lamp_hours[i],
                                r->lamp_on[i] ? "on" : "off");
                fputc('\n', out);
                break;
        case BBT_PJLINK_CLSS:
                fprintf(out, "%d\n", r->clss);
                break;
        default:
                fprintf(out, "\"%s\"\n", r->text);
                break;
        }
}

/* One poll on a private loop, printed: for `bbt-agent --probe`. Blocks for at
 * most a few timeouts (plus the resolver's own time for a slow name). */
static int projector_probe(struct bbt_driver *d, FILE *out)
{
        struct projector *p = to_projector(d), *q = NULL;
        struct bbt_driver_env env;
        uv_loop_t loop;
        bool stopped = false;
        int r;

        fprintf(out, "projector (PJLink): %s port %s, %s, poll every %" PRIu32 " ms, timeout %" PRIu32 " ms\n",
                p->host, p->port_str, p->password ? "with password" : "no password", p->opts.poll_interval_ms,
                p->opts.timeout_ms);
        if (p->stats.polls > 0)
                fprintf(out, "  driver:       %" PRIu64 " polls, %" PRIu64 " ok%s%s\n", p->stats.polls,
                        p->stats.polls_ok, p->last_error[0] ? "; last error: " : "", p->last_error);
        r = uv_loop_init(&loop);
        if (r < 0) {
                fprintf(out, "  reachable:    unknown (uv_loop_init: %s)\n", uv_strerror(r));
                return r;
        }
        env = d->env;
        env.loop = &loop;
        env.events = NULL;
        r = projector_create(&env, &p->opts, &q);
        if (r < 0) {
                fprintf(out, "  reachable:    unknown (%s)\n", strerror(-r));
                uv_loop_close(&loop);
                return r;
        }
        q->probe_mode = true;
        uv_timer_init(&loop, &q->poll_timer);
        uv_timer_init(&loop, &q->step_timer);
        q->timers_init = true;
        q->started = true;
        session_start(q, SESSION_PROBE);
        uv_run(&loop, UV_RUN_DEFAULT);

        if (q->fail != FAIL_NONE) {
                fprintf(out, "  reachable:    no (%s)\n", q->fail_reason);
                r = q->fail_err < 0 ? q->fail_err : -EIO;
        } else {
                fprintf(out, "  reachable:    yes%s\n", q->need_digest ? " (authenticated)" : "");
                print_step(out, q, BBT_PJLINK_CLSS, "class:");
                print_step(out, q, BBT_PJLINK_POWR, "power:");
                print_step(out, q, BBT_PJLINK_INPT, "input:");
                print_step(out, q, BBT_PJLINK_ERST, "errors:");
                print_step(out, q, BBT_PJLINK_LAMP, "lamps:");
                print_step(out, q, BBT_PJLINK_NAME, "name:");
                print_step(out, q, BBT_PJLINK_INF1, "manufacturer:");
                print_step(out, q, BBT_PJLINK_INF2, "product:");
                print_step(out, q, BBT_PJLINK_INFO, "other info:");
                if (q->stats.reconnects || q->stats.skipped)
                        fprintf(out, "  quirks:       %" PRIu64 " reconnects, %" PRIu64 " unsolicited lines skipped\n",
                                q->stats.reconnects, q->stats.skipped);
                r = 0;
        }
        projector_stop(&q->base, probe_stopped_cb, &stopped);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (!stopped || uv_loop_close(&loop) != 0)
                fprintf(out, "  (internal: the probe's loop did not wind down)\n");
        projector_destroy(&q->base);
        return r;
}

static const struct bbt_driver_ops projector_ops = {
        .name = "projector",
        .start = projector_start,
        .stop = projector_stop,
        .probe = projector_probe,
        .destroy = projector_destroy,
};
