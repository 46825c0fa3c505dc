/* MQTT client on a libuv loop: libmosquitto driven by uv_poll/uv_timer, with reconnect and backoff. */
#include "bbt/mqtt.h"
#include "bbt/base.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <syslog.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#ifndef container_of
#endif

#define LINE_LEN 256
#define WORKER_LOG_LINES 4
/* How often mosquitto_loop_misc() runs while connecting or disconnecting:
 * libmosquitto keeps time in whole seconds, so a finer tick would gain
 * nothing. Once connected it runs only at the keepalive deadline (see
 * keepalive_arm()). */
#define MISC_INTERVAL_MS 1000

enum conn_state {
        ST_IDLE,          /* created, never started */
        ST_RESOLVING,     /* connect step running on the thread pool */
        ST_CONNECTING,    /* socket open, waiting for TCP/TLS/CONNACK */
        ST_CONNECTED,     /* CONNACK 0 received */
        ST_WAITING,       /* backing off before the next attempt */
        ST_DISCONNECTING, /* DISCONNECT queued, waiting for it to be written */
        ST_STOPPED,       /* disconnected on request */
        ST_CLOSED,        /* bbt_mqtt_close() called */
};

enum poll_state { POLL_NONE, POLL_ACTIVE, POLL_CLOSING };

struct subscription {
        struct subscription *next;
        int qos;
        int mid; /* of the last SUBSCRIBE sent, to match its SUBACK */
        char pattern[];
};

struct bbt_mqtt {
        uv_loop_t *loop;
        struct mosquitto *mosq;
        struct bbt_mqtt_callbacks cbs;
        void *userdata;

        char *host;
        int port;
        int keepalive_s;
        bool tls;
        unsigned backoff_min_ms;
        unsigned backoff_max_ms;
        unsigned connect_timeout_ms;

        char *will_topic;
        void *will_payload;
        size_t will_len;
        int will_qos;
        bool will_retain;

        struct subscription *subs;

        enum conn_state state;
        bool was_connected; /* the current/last socket got CONNACK 0 */
        unsigned attempt;   /* consecutive failures since the last CONNACK 0 */
        uint32_t rnd;

        uv_poll_t poll;
        enum poll_state poll_state;
        int poll_events;
        bool poll_restart; /* start polling the new socket once the old handle closed */
        bool write_stalled;

        /* One timer for whatever the state waits on: the backoff delay, the
         * connect timeout, the disconnect deadline, or a deferred completion. */
        uv_timer_t timer;
        uv_timer_t misc_timer;
        /* The CLOCK_MONOTONIC seconds of the last packet known to have gone
         * out and come in: never later than libmosquitto's own marks. */
        int64_t ka_out_s, ka_in_s;
        bool end_pending; /* the socket closed inside an API call: finish from the loop */

        uv_work_t connect_work;
        bool work_pending;
        bool in_worker; /* only the worker touches mosq; set before queueing, cleared after */
        int work_rc;
        int work_errno;
        char worker_log[WORKER_LOG_LINES][LINE_LEN];
        int worker_log_prio[WORKER_LOG_LINES];
        unsigned worker_log_n;

        /* What ended the current socket, gathered from libmosquitto's callbacks. */
        int connack_code;
        bool mosq_disc_seen;
        int mosq_disc_rc;
        int mosq_disc_errno;
        int forced_err;
        char forced_reason[LINE_LEN];
        char last_error[LINE_LEN];

        bbt_mqtt_disconnect_cb disconnect_cb;
        bool disconnect_pending; /* disconnect_cb still owed */
        int disconnect_status;

        bbt_mqtt_close_cb close_cb;
        unsigned closing; /* handles and work still to finish before freeing */

        struct bbt_mqtt_stats stats;
        /* Message ids of QoS 1/2 publishes awaiting their acknowledgement: tells
         * a PUBACK apart from libmosquitto's "QoS 0 message written" callback. */
        uint64_t ack_pending[65536 / 64];
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
/* OpenSSL keeps per-thread state (error queue, random generators) for the
 * thread-pool thread that ran the TLS part of a connect step. libuv's pool
 * threads outlive OpenSSL's atexit cleanup, which orphans that state, so it
 * is freed after each step. Looked up at run time: we link libmosquitto,
 * which may or may not be built with OpenSSL. */
static void (*openssl_thread_stop)(void);

/* libmosquitto's global init is not refcounted and its cleanup tears down
 * OpenSSL state that a later init does not rebuild, so it runs once per
 * process and is never undone. */
static void lib_init_once(void)
{
        struct sigaction sa;
        void *sym;

        mosquitto_lib_init();
        /* libmosquitto and OpenSSL write to sockets without MSG_NOSIGNAL: a
         * broker that goes away mid-write would kill the process. */
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
                memset(&sa, 0, sizeof(sa));
                sa.sa_handler = SIG_IGN;
                sigaction(SIGPIPE, &sa, NULL);
        }
        sym = dlsym(RTLD_DEFAULT, "OPENSSL_thread_stop");
        if (sym)
                memcpy(&openssl_thread_stop, &sym, sizeof(sym));
}

static void *memdup(const void *p, size_t len)
{
        void *r = malloc(len ? len : 1);

        if (r && len)
                memcpy(r, p, len);
        return r;
}

static char *strdup_or_null(const char *s, bool *oom)
{
        char *r;

        if (!s)
                return NULL;
        r = strdup(s);
        if (!r)
                *oom = true;
        return r;
}

static void mqtt_log(struct bbt_mqtt *m, int prio, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void mqtt_log(struct bbt_mqtt *m, int prio, const char *fmt, ...)
{
        char line[LINE_LEN * 2];
        va_list ap;

        if (!m->cbs.on_log)
                return;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        m->cbs.on_log(m->userdata, prio, line);
}

static void copy_line(char *dst, const char *src)
{
        snprintf(dst, LINE_LEN, "%s", src);
}

/* ---- error mapping ---- */

static int mosq_to_errno(int rc, int saved_errno)
{
        switch (rc) {
        case MOSQ_ERR_SUCCESS:
                return 0;
        case MOSQ_ERR_NOMEM:
                return -ENOMEM;
        case MOSQ_ERR_INVAL:
        case MOSQ_ERR_MALFORMED_UTF8:
        case MOSQ_ERR_TOPIC_ALIAS_INVALID:
                return -EINVAL;
        case MOSQ_ERR_NO_CONN:
                return -ENOTCONN;
        case MOSQ_ERR_CONN_REFUSED:
                return -ECONNREFUSED;
        case MOSQ_ERR_NOT_FOUND:
                return -ENOENT;
        case MOSQ_ERR_CONN_LOST:
                return -ECONNRESET;
        case MOSQ_ERR_TLS:
        case MOSQ_ERR_TLS_HANDSHAKE:
        case MOSQ_ERR_OCSP:
                return -EKEYREJECTED;
        case MOSQ_ERR_PAYLOAD_SIZE:
        case MOSQ_ERR_OVERSIZE_PACKET:
                return -EMSGSIZE;
        case MOSQ_ERR_NOT_SUPPORTED:
        case MOSQ_ERR_QOS_NOT_SUPPORTED:
        case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        case MOSQ_ERR_AUTH:
                return -EACCES;
        case MOSQ_ERR_ACL_DENIED:
                return -EPERM;
        case MOSQ_ERR_ERRNO:
                return saved_errno > 0 ? -saved_errno : -EIO;
        case MOSQ_ERR_EAI:
        case MOSQ_ERR_LOOKUP:
                return -EHOSTUNREACH;
        case MOSQ_ERR_KEEPALIVE:
        case MOSQ_ERR_TIMEOUT:
                return -ETIMEDOUT;
        case MOSQ_ERR_PROTOCOL:
        case MOSQ_ERR_MALFORMED_PACKET:
        case MOSQ_ERR_DUPLICATE_PROPERTY:
        case MOSQ_ERR_PROXY:
                return -EPROTO;
        default:
                return -EIO;
        }
}

/* CONNACK return codes: 1..5 in MQTT 3.1.1, reason codes >= 0x80 in MQTT 5. */
static int connack_to_errno(int code)
{
        switch (code) {
        case CONNACK_REFUSED_PROTOCOL_VERSION:
        case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
                return -EPROTONOSUPPORT;
        case CONNACK_REFUSED_IDENTIFIER_REJECTED:
        case MQTT_RC_CLIENTID_NOT_VALID:
                return -EINVAL;
        case CONNACK_REFUSED_BAD_USERNAME_PASSWORD:
        case CONNACK_REFUSED_NOT_AUTHORIZED:
        case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
        case MQTT_RC_NOT_AUTHORIZED:
        case MQTT_RC_BANNED:
        case MQTT_RC_BAD_AUTHENTICATION_METHOD:
                return -EACCES;
        default:
                return -ECONNREFUSED;
        }
}

static const char *connack_text(int code)
{
        return code >= 0x80 ? mosquitto_reason_string(code) : mosquitto_connack_string(code);
}

/* ---- backoff ---- */

unsigned bbt_mqtt_backoff_ms(unsigned attempt, unsigned min_ms, unsigned max_ms, uint32_t rnd)
{
        uint64_t nominal, half, delay;
        unsigned i;

        if (min_ms == 0)
                min_ms = 1;
        if (max_ms < min_ms)
                max_ms = min_ms;
        nominal = min_ms;
        for (i = 0; i < attempt && nominal < max_ms; i++)
                nominal *= 2;
        if (nominal > max_ms)
                nominal = max_ms;
        /* Equal jitter: a fixed half keeps a floor under the delay (no
         * spinning), the random half spreads a fleet that lost its broker at
         * the same moment. */
        half = nominal / 2;
        delay = half + rnd % (nominal - half + 1);
        return delay ? (unsigned)delay : 1;
}

static uint32_t next_random(struct bbt_mqtt *m)
{
        /* xorshift32: plenty for jitter, no global state, no syscalls. */
        uint32_t x = m->rnd;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        m->rnd = x;
        return x;
}

/* ---- acknowledgement tracking ---- */

static void ack_mark(struct bbt_mqtt *m, int mid)
{
        m->ack_pending[(unsigned)mid / 64 % 1024] |= UINT64_C(1) << ((unsigned)mid % 64);
}

static bool ack_take(struct bbt_mqtt *m, int mid)
{
        uint64_t *word = &m->ack_pending[(unsigned)mid / 64 % 1024];
        uint64_t bit = UINT64_C(1) << ((unsigned)mid % 64);

        if (!(*word & bit))
                return false;
        *word &= ~bit;
        return true;
}

/* ---- the socket watcher ---- */

static void poll_cb(uv_poll_t *handle, int status, int events);
static void timer_cb(uv_timer_t *handle);
static void misc_timer_cb(uv_timer_t *handle);
static void maybe_finish_close(struct bbt_mqtt *m);
static void connection_ended(struct bbt_mqtt *m, int call_rc, int call_errno);
static void drop_connection(struct bbt_mqtt *m, int err, const char *reason);
static void poll_update(struct bbt_mqtt *m);

static void poll_close_cb(uv_handle_t *handle)
{
        struct bbt_mqtt *m = bbt_container_of((uv_poll_t *)handle, struct bbt_mqtt, poll);
        int fd;

        m->poll_state = POLL_NONE;
        if (m->state == ST_CLOSED) {
                m->closing--;
                maybe_finish_close(m);
                return;
        }
        if (m->poll_restart) {
                m->poll_restart = false;
                fd = mosquitto_socket(m->mosq);
                if (fd >= 0 && uv_poll_init_socket(m->loop, &m->poll, fd) == 0) {
                        m->poll_state = POLL_ACTIVE;
                        m->poll_events = 0;
                        poll_update(m);
                }
        }
}

static void poll_close(struct bbt_mqtt *m)
{
        m->poll_restart = false;
        if (m->poll_state != POLL_ACTIVE)
                return;
        m->poll_state = POLL_CLOSING;
        uv_close((uv_handle_t *)&m->poll, poll_close_cb);
}

/* Whether the connection may still be inside the TLS handshake, where
 * libmosquitto reports want_write even when it only waits to read. */
static bool tls_handshaking(const struct bbt_mqtt *m)
{
        return m->tls && !m->was_connected &&
               (m->state == ST_CONNECTING || m->state == ST_DISCONNECTING);
}

/* Arms the poll for reading always, for writing only when libmosquitto has
 * something to write. */
static void poll_update(struct bbt_mqtt *m)
{
        int events = UV_READABLE;

        if (m->poll_state != POLL_ACTIVE)
                return;
        if (mosquitto_want_write(m->mosq) && !m->write_stalled)
                events |= UV_WRITABLE;
        if (events == m->poll_events)
                return;
        if (uv_poll_start(&m->poll, events, poll_cb) == 0)
                m->poll_events = events;
}

static int poll_begin(struct bbt_mqtt *m)
{
        int fd = mosquitto_socket(m->mosq);
        int r;

        if (fd < 0)
                return -ENOTCONN;
        /* libmosquitto opens its socket without O_CLOEXEC. */
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        m->write_stalled = false;
        if (m->poll_state == POLL_CLOSING) {
                m->poll_restart = true;
                return 0;
        }
        r = uv_poll_init_socket(m->loop, &m->poll, fd);
        if (r < 0)
                return r;
        m->poll_state = POLL_ACTIVE;
        m->poll_events = 0;
        poll_update(m);
        return 0;
}

static bool socket_states(enum conn_state s)
{
        return s == ST_CONNECTING || s == ST_CONNECTED || s == ST_DISCONNECTING;
}

/* ---- the keepalive deadline ----
 *
 * libmosquitto's loop_misc() does one thing: the keepalive check, which
 * sends PINGREQ once nothing has gone out for keepalive seconds or nothing
 * has come in for as long (whole seconds of CLOCK_MONOTONIC), and closes the
 * socket when a PINGRESP is that late. While connected the misc timer is
 * armed for that moment only, computed from the traffic seen here: every
 * publish, subscribe, unsubscribe and write this file makes, and every
 * packet callback. The one traffic not seen here is the ping exchange, which
 * loop_misc() itself starts: a check that comes due sends PINGREQ and resets
 * libmosquitto's marks to now, and so are ours. The check runs a twentieth
 * of the keepalive after that moment (see keepalive_arm()), and a mark here
 * may be a second behind libmosquitto's (a write that finished in the next
 * second), so a ping goes out at most keepalive / 20 + 1 s late: well within
 * the broker's 1.5 x keepalive. While connecting or disconnecting the timer
 * ticks every MISC_INTERVAL_MS as before (which also lets a stalled TLS
 * handshake write again). An idle connection wakes the loop about once a
 * keepalive instead of every second. */

static int64_t mono_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec;
}

static void misc_timer_cb(uv_timer_t *handle);

static void keepalive_arm(struct bbt_mqtt *m)
{
        int64_t due_ms, now_ms;

        if (m->state != ST_CONNECTED) {
                if (!uv_is_active((uv_handle_t *)&m->misc_timer) ||
                    uv_timer_get_repeat(&m->misc_timer) != MISC_INTERVAL_MS)
                        uv_timer_start(&m->misc_timer, misc_timer_cb, MISC_INTERVAL_MS, MISC_INTERVAL_MS);
                return;
        }
        /* uv_now() is CLOCK_MONOTONIC in ms, as libmosquitto's clock in s.
         * A twentieth of the keepalive later than libmosquitto would ping: a
         * publish due about then (a heartbeat every keepalive seconds) makes
         * the ping unneeded; the broker waits 1.5 x keepalive. */
        due_ms = ((m->ka_out_s < m->ka_in_s ? m->ka_out_s : m->ka_in_s) + m->keepalive_s) * 1000 +
                 m->keepalive_s * 50;
        now_ms = (int64_t)uv_now(m->loop);
        uv_timer_start(&m->misc_timer, misc_timer_cb, due_ms > now_ms ? (uint64_t)(due_ms - now_ms) : 0, 0);
}

/* Notes a packet gone out (OUT) or come in (IN) at T_S (mono_s() taken
 * before the call that moved it), and moves the deadline. */
static void keepalive_note(struct bbt_mqtt *m, int64_t t_s, bool out, bool in)
{
        if (out && t_s > m->ka_out_s)
                m->ka_out_s = t_s;
        if (in && t_s > m->ka_in_s)
                m->ka_in_s = t_s;
        if (m->state == ST_CONNECTED && uv_is_active((uv_handle_t *)&m->misc_timer))
                keepalive_arm(m);
}

/* Makes the loop notice a broken connection: shutting the socket down turns
 * into EOF on the next read, where libmosquitto closes it. */
static void kick_connection(struct bbt_mqtt *m)
{
        int fd = mosquitto_socket(m->mosq);

        if (fd >= 0)
                (void)shutdown(fd, SHUT_RDWR);
        if (m->poll_state == POLL_ACTIVE && !(m->poll_events & UV_READABLE))
                poll_update(m);
}

/* Runs after every libmosquitto call made from the loop. Returns true when
 * the caller must stop touching the connection (it ended, or M is closing).
 * FROM_API: the call came from a bbt_mqtt_*() function, where callbacks must
 * not run, so an ended connection is finished from the loop instead. */
static bool after_call(struct bbt_mqtt *m, int rc, int saved_errno, bool from_api)
{
        if (m->state == ST_CLOSED)
                return true;
        if (!socket_states(m->state))
                return true;
        if (mosquitto_socket(m->mosq) < 0) {
                poll_close(m);
                uv_timer_stop(&m->misc_timer);
                if (from_api) {
                        if (!m->end_pending) {
                                m->end_pending = true;
                                m->work_rc = rc;
                                m->work_errno = saved_errno;
                                uv_timer_start(&m->timer, timer_cb, 0, 0);
                        }
                        return true;
                }
                connection_ended(m, rc, saved_errno);
                return true;
        }
        if (m->end_pending)
                return true;
        poll_update(m);
        return false;
}

/* 0 if the socket is open and fine, else why not. Used during the TLS
 * handshake, where libmosquitto 2.0 treats EOF and resets as "try again"
 * (SSL_ERROR_SYSCALL) and would leave a dead socket readable forever. */
static int socket_health(int fd)
{
        socklen_t len = sizeof(int);
        int so_error = 0;
        ssize_t n;
        char c;

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 && so_error)
                return -so_error;
        n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0)
                return -ECONNRESET;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return -errno;
        return 0;
}

static void poll_cb(uv_poll_t *handle, int status, int events)
{
        struct bbt_mqtt *m = bbt_container_of(handle, struct bbt_mqtt, poll);
        char reason[LINE_LEN], ebuf[128];
        int rc, err, fd;

        fd = mosquitto_socket(m->mosq);
        if (status < 0 || ((events & UV_READABLE) && tls_handshaking(m))) {
                err = fd >= 0 ? socket_health(fd) : -ENOTCONN;
                if (status < 0 && !err)
                        err = status == UV_EBADF ? -EIO : status;
                if (err) {
                        m->poll_events = 0; /* on POLLERR libuv stopped the watcher */
                        snprintf(reason, sizeof(reason), "%s: %s",
                                 tls_handshaking(m) ? "connection failed during the TLS handshake"
                                                    : "socket error",
                                 strerror_r(-err, ebuf, sizeof(ebuf)));
                        drop_connection(m, err, reason);
                        return;
                }
        }
        if (events & UV_READABLE) {
                m->write_stalled = false;
                rc = mosquitto_loop_read(m->mosq, 1);
                err = errno;
                if (after_call(m, rc, err, false))
                        return;
        }
        if (events & UV_WRITABLE) {
                bool handshaking = tls_handshaking(m);

                if (handshaking) {
                        /* loop_read drives the TLS handshake; loop_write does
                         * nothing until it is done. */
                        rc = mosquitto_loop_read(m->mosq, 1);
                        err = errno;
                        if (after_call(m, rc, err, false))
                                return;
                }
                int64_t t_s = mono_s();

                rc = mosquitto_loop_write(m->mosq, 1);
                err = errno;
                if (after_call(m, rc, err, false))
                        return;
                keepalive_note(m, t_s, true, false);
                /* Still "wanting to write" after a writable socket was offered
                 * means the handshake waits for the server: stop asking for
                 * writability until something arrives (or the misc tick). */
                if (handshaking && mosquitto_want_write(m->mosq)) {
                        m->write_stalled = true;
                        poll_update(m);
                }
        }
}

/* ---- the connection cycle ---- */

static void connect_work_cb(uv_work_t *req);
static void connect_after_cb(uv_work_t *req, int status);

static void reset_attempt_state(struct bbt_mqtt *m)
{
        m->was_connected = false;
        m->connack_code = 0;
        m->mosq_disc_seen = false;
        m->mosq_disc_rc = 0;
        m->mosq_disc_errno = 0;
        m->forced_err = 0;
        m->forced_reason[0] = '\0';
        m->last_error[0] = '\0';
        m->end_pending = false;
        m->write_stalled = false;
}

static void begin_connect(struct bbt_mqtt *m)
{
        int r, rc;

        reset_attempt_state(m);
        /* The will goes out with CONNECT, so the latest one is set here, on
         * the loop thread, while no other thread touches mosq. */
        if (m->will_topic)
                rc = mosquitto_will_set(m->mosq, m->will_topic, (int)m->will_len, m->will_payload,
                                        m->will_qos, m->will_retain);
        else
                rc = mosquitto_will_clear(m->mosq);
        if (rc != MOSQ_ERR_SUCCESS)
                mqtt_log(m, LOG_WARNING, "mqtt: cannot set the will: %s", mosquitto_strerror(rc));

        m->stats.connect_attempts++;
        m->ka_out_s = m->ka_in_s = mono_s(); /* CONNECT goes out after this */
        m->state = ST_RESOLVING;
        m->in_worker = true;
        m->worker_log_n = 0;
        /* mosquitto_connect_async() resolves the host with a blocking
         * getaddrinfo(), so the whole connect step runs on the thread pool.
         * Resolving first and passing an address instead would break TLS:
         * libmosquitto checks the certificate against the host string it was
         * given, and sends it as SNI. */
        r = uv_queue_work(m->loop, &m->connect_work, connect_work_cb, connect_after_cb);
        if (r < 0) {
                m->in_worker = false;
                m->forced_err = r;
                copy_line(m->forced_reason, "cannot queue the connect step");
                connection_ended(m, MOSQ_ERR_SUCCESS, 0);
                return;
        }
        m->work_pending = true;
}

static void connect_work_cb(uv_work_t *req)
{
        struct bbt_mqtt *m = bbt_container_of(req, struct bbt_mqtt, connect_work);

        errno = 0;
        m->work_rc = mosquitto_connect_async(m->mosq, m->host, m->port, m->keepalive_s);
        m->work_errno = errno;
        if (openssl_thread_stop)
                openssl_thread_stop();
}

static void connect_after_cb(uv_work_t *req, int status)
{
        struct bbt_mqtt *m = bbt_container_of(req, struct bbt_mqtt, connect_work);
        unsigned i;
        int r;

        m->work_pending = false;
        m->in_worker = false;
        if (m->state == ST_CLOSED) {
                m->closing--;
                maybe_finish_close(m);
                return;
        }
        for (i = 0; i < m->worker_log_n; i++)
                mqtt_log(m, m->worker_log_prio[i], "%s", m->worker_log[i]);
        if (status < 0 || m->work_rc != MOSQ_ERR_SUCCESS || mosquitto_socket(m->mosq) < 0) {
                if (status < 0) {
                        m->forced_err = status;
                        copy_line(m->forced_reason, "connect step cancelled");
                }
                connection_ended(m, m->work_rc != MOSQ_ERR_SUCCESS ? m->work_rc : MOSQ_ERR_NO_CONN,
                                 m->work_errno);
                return;
        }

        r = poll_begin(m);
        if (r < 0) {
                m->forced_err = r;
                copy_line(m->forced_reason, "cannot watch the socket");
                connection_ended(m, MOSQ_ERR_SUCCESS, 0);
                return;
        }
        keepalive_arm(m);
        if (m->state == ST_DISCONNECTING) {
                /* bbt_mqtt_disconnect() came while resolving: CONNECT may
                 * already be on the wire, so end with DISCONNECT, not a close. */
                r = mosquitto_disconnect(m->mosq);
                (void)after_call(m, r, errno, false);
                return;
        }
        m->state = ST_CONNECTING;
        uv_timer_start(&m->timer, timer_cb, m->connect_timeout_ms, 0);
        /* Flushes what the worker could not write yet (CONNECT). */
        (void)after_call(m, MOSQ_ERR_SUCCESS, 0, false);
}

static void schedule_retry(struct bbt_mqtt *m)
{
        unsigned delay = bbt_mqtt_backoff_ms(m->attempt, m->backoff_min_ms, m->backoff_max_ms,
                                             next_random(m));

        if (m->attempt < UINT_MAX)
                m->attempt++;
        m->stats.last_backoff_ms = delay;
        m->state = ST_WAITING;
        /* Timers count from the loop's cached time, which may be stale by
         * however long this iteration has run so far. */
        uv_update_time(m->loop);
        uv_timer_start(&m->timer, timer_cb, delay, 0);
}

/* Why the socket ended, as an errno and a sentence. */
static int describe_end(struct bbt_mqtt *m, enum conn_state prev, int call_rc, int call_errno,
                        char *reason, size_t size)
{
        char ebuf[128];
        int err;

        if (m->forced_err) {
                err = m->forced_err;
                snprintf(reason, size, "%s", m->forced_reason);
        } else if (m->connack_code) {
                err = connack_to_errno(m->connack_code);
                snprintf(reason, size, "connection refused by the broker: %s",
                         connack_text(m->connack_code));
        } else if (m->mosq_disc_seen && m->mosq_disc_rc == 0 && prev == ST_DISCONNECTING) {
                err = 0;
                snprintf(reason, size, "disconnected on request");
        } else {
                int rc = m->mosq_disc_seen ? m->mosq_disc_rc : call_rc;
                int e = m->mosq_disc_seen ? m->mosq_disc_errno : call_errno;

                if (rc == MOSQ_ERR_SUCCESS || rc >= 0x80) {
                        /* Socket closed without an error: an MQTT 5 DISCONNECT
                         * from the broker, or a bare close. */
                        err = -ECONNRESET;
                        if (rc >= 0x80)
                                snprintf(reason, size, "disconnected by the broker: %s",
                                         mosquitto_reason_string(rc));
                        else
                                snprintf(reason, size, "connection closed");
                } else {
                        err = mosq_to_errno(rc, e);
                        if (rc == MOSQ_ERR_ERRNO)
                                snprintf(reason, size, "%s: %s",
                                         prev == ST_CONNECTED ? "connection lost" : "connect failed",
                                         strerror_r(-err, ebuf, sizeof(ebuf)));
                        else if (rc == MOSQ_ERR_KEEPALIVE)
                                snprintf(reason, size, "keepalive timeout: the broker stopped answering");
                        else if (err == -EKEYREJECTED)
                                snprintf(reason, size, "TLS handshake failed");
                        else
                                snprintf(reason, size, "%s: %s",
                                         prev == ST_CONNECTED ? "connection lost" : "connect failed",
                                         mosquitto_strerror(rc));
                }
        }
        if (err && m->last_error[0]) {
                size_t n = strlen(reason);

                if (n < size)
                        snprintf(reason + n, size - n, " (%s)", m->last_error);
        }
        return err;
}

static void finish_disconnect(struct bbt_mqtt *m)
{
        bbt_mqtt_disconnect_cb cb = m->disconnect_cb;
        int status = m->disconnect_status;

        if (!m->disconnect_pending)
                return;
        m->disconnect_pending = false;
        m->disconnect_cb = NULL;
        if (cb)
                cb(m->userdata, status);
}

/* The socket is gone (or the attempt failed before one existed): update the
 * counters, pick the next state, then tell the user. */
static void connection_ended(struct bbt_mqtt *m, int call_rc, int call_errno)
{
        enum conn_state prev = m->state;
        char reason[LINE_LEN * 2];
        int err;

        poll_close(m);
        uv_timer_stop(&m->timer);
        uv_timer_stop(&m->misc_timer);
        m->end_pending = false;
        err = describe_end(m, prev, call_rc, call_errno, reason, sizeof(reason));
        if (m->was_connected)
                m->stats.disconnects++;
        else
                m->stats.connect_failures++;

        if (prev == ST_DISCONNECTING) {
                m->state = ST_STOPPED;
                /* Only an accepted session can leave a will behind. */
                m->disconnect_status = m->was_connected ? err : 0;
                mqtt_log(m, LOG_INFO, "mqtt: %s:%d: %s", m->host, m->port, reason);
                if (m->cbs.on_disconnect)
                        m->cbs.on_disconnect(m->userdata, err, reason);
                finish_disconnect(m);
                return;
        }

        schedule_retry(m);
        /* Informational: the daemon sees the same through on_disconnect and
         * decides how loudly to report it. */
        mqtt_log(m, LOG_INFO, "mqtt: %s:%d: %s; retrying in %u ms", m->host, m->port, reason,
                 m->stats.last_backoff_ms);
        if (m->cbs.on_disconnect)
                m->cbs.on_disconnect(m->userdata, err ? err : -ECONNRESET, reason);
}

/* Ends the current socket from our side (timeouts, errors libmosquitto did
 * not act on). */
static void drop_connection(struct bbt_mqtt *m, int err, const char *reason)
{
        int fd = mosquitto_socket(m->mosq);
        int rc;

        m->forced_err = err;
        copy_line(m->forced_reason, reason);
        if (fd >= 0) {
                (void)shutdown(fd, SHUT_RDWR);
                /* Let libmosquitto see the EOF and close its socket now. In
                 * the middle of a TLS handshake it will not; the next connect
                 * or mosquitto_destroy() closes it then. */
                rc = mosquitto_loop_read(m->mosq, 1);
                if (after_call(m, rc, errno, false))
                        return;
        }
        connection_ended(m, MOSQ_ERR_SUCCESS, 0);
}

static void timer_cb(uv_timer_t *handle)
{
        struct bbt_mqtt *m = bbt_container_of(handle, struct bbt_mqtt, timer);

        if (m->end_pending) {
                connection_ended(m, m->work_rc, m->work_errno);
                return;
        }
        switch (m->state) {
        case ST_WAITING:
                begin_connect(m);
                break;
        case ST_CONNECTING: {
                char reason[LINE_LEN];

                snprintf(reason, sizeof(reason), "connect timed out after %u ms",
                         m->connect_timeout_ms);
                drop_connection(m, -ETIMEDOUT, reason);
                break;
        }
        case ST_DISCONNECTING:
                drop_connection(m, -ETIMEDOUT, "DISCONNECT could not be sent in time");
                break;
        case ST_STOPPED:
        case ST_IDLE:
                finish_disconnect(m);
                break;
        default:
                break;
        }
}

static void misc_timer_cb(uv_timer_t *handle)
{
        struct bbt_mqtt *m = bbt_container_of(handle, struct bbt_mqtt, misc_timer);
        int rc;

        int64_t now_s;

        if (!socket_states(m->state) || m->end_pending)
                return;
        now_s = mono_s();
        if (m->state == ST_CONNECTED && now_s < (m->ka_out_s < m->ka_in_s ? m->ka_out_s : m->ka_in_s) + m->keepalive_s) {
                keepalive_arm(m); /* a second early (see above) */
                return;
        }
        m->write_stalled = false;
        /* Sends PINGREQ when due and closes the socket when PINGRESP is late. */
        rc = mosquitto_loop_misc(m->mosq);
        if (m->state == ST_CONNECTED)
                m->ka_out_s = m->ka_in_s = now_s; /* as libmosquitto resets its marks for the ping */
        if (after_call(m, rc, errno, false))
                return;
        if (m->state == ST_CONNECTED)
                keepalive_arm(m);
}

/* ---- libmosquitto callbacks (on the loop thread, inside loop_read/write/misc) ---- */

static void resubscribe(struct bbt_mqtt *m)
{
        struct subscription *s;
        int rc;

        for (s = m->subs; s; s = s->next) {
                int64_t t_s = mono_s();

                rc = mosquitto_subscribe(m->mosq, &s->mid, s->pattern, s->qos);
                if (rc != MOSQ_ERR_SUCCESS)
                        mqtt_log(m, LOG_WARNING, "mqtt: cannot subscribe to %s: %s", s->pattern,
                                 mosquitto_strerror(rc));
                else
                        keepalive_note(m, t_s, true, false);
        }
}

static void on_connect_cb(struct mosquitto *mosq, void *obj, int rc, int flags)
{
        struct bbt_mqtt *m = obj;

        if (m->state != ST_CONNECTING)
                return;
        if (rc != 0) {
                /* libmosquitto closes the socket right after this callback. */
                m->connack_code = rc;
                return;
        }
        m->state = ST_CONNECTED;
        m->was_connected = true;
        m->write_stalled = false;
        m->attempt = 0;
        m->stats.connects++;
        uv_timer_stop(&m->timer);
        /* CONNECT went out after the connect step began (ka_out_s), CONNACK
         * came in now; from here the misc timer waits for the deadline. */
        m->ka_in_s = mono_s();
        keepalive_arm(m);
        resubscribe(m);
        mqtt_log(m, LOG_INFO, "mqtt: connected to %s:%d", m->host, m->port);
        if (m->cbs.on_connect)
                m->cbs.on_connect(m->userdata, flags & 1);
}

static void on_disconnect_cb(struct mosquitto *mosq, void *obj, int rc)
{
        struct bbt_mqtt *m = obj;

        m->mosq_disc_errno = errno;
        m->mosq_disc_seen = true;
        m->mosq_disc_rc = rc;
}

static void on_publish_cb(struct mosquitto *mosq, void *obj, int mid)
{
        struct bbt_mqtt *m = obj;

        if (!ack_take(m, mid))
                return; /* a QoS 0 message was written: nothing to report */
        keepalive_note(m, mono_s(), false, true);
        m->stats.pubacks++;
        if (m->state != ST_CLOSED && m->cbs.on_publish)
                m->cbs.on_publish(m->userdata, mid);
}

static void on_message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
        struct bbt_mqtt *m = obj;

        m->stats.messages_received++;
        /* In, and its PUBACK out (or queued, then noted by the write). */
        keepalive_note(m, mono_s(), msg->qos > 0, true);
        if (m->state != ST_CLOSED && m->cbs.on_message)
                m->cbs.on_message(m->userdata, msg->topic, msg->payload, (size_t)msg->payloadlen,
                                  msg->qos, msg->retain);
}

static void on_subscribe_cb(struct mosquitto *mosq, void *obj, int mid, int qos_count,
                            const int *granted_qos)
{
        struct bbt_mqtt *m = obj;
        struct subscription *s;

        keepalive_note(m, mono_s(), false, true);
        if (qos_count < 1 || granted_qos[0] < 0x80)
                return;
        for (s = m->subs; s; s = s->next)
                if (s->mid == mid) {
                        mqtt_log(m, LOG_ERR, "mqtt: the broker refused the subscription to %s",
                                 s->pattern);
                        return;
                }
}

/* Keeps the first error lines of an attempt: the first one usually names
 * the cause ("host name verification failed"), later ones repeat it. */
static void note_error(struct bbt_mqtt *m, const char *line)
{
        size_t n = strlen(m->last_error);

        if (n == 0)
                copy_line(m->last_error, line);
        else if (n + 3 < LINE_LEN && !strstr(m->last_error, "; "))
                snprintf(m->last_error + n, LINE_LEN - n, "; %s", line);
}

static int log_prio(int level)
{
        switch (level) {
        case MOSQ_LOG_ERR:
                return LOG_ERR;
        case MOSQ_LOG_WARNING:
                return LOG_WARNING;
        case MOSQ_LOG_NOTICE:
                return LOG_NOTICE;
        case MOSQ_LOG_INFO:
                return LOG_INFO;
        default:
                return LOG_DEBUG;
        }
}

static void on_log_cb(struct mosquitto *mosq, void *obj, int level, const char *line)
{
        struct bbt_mqtt *m = obj;
        int prio = log_prio(level);

        if (prio <= LOG_ERR)
                note_error(m, line);
        if (m->in_worker) {
                /* On the thread pool: keep it for the loop thread to pass on. */
                if (m->worker_log_n < WORKER_LOG_LINES) {
                        copy_line(m->worker_log[m->worker_log_n], line);
                        m->worker_log_prio[m->worker_log_n] = prio;
                        m->worker_log_n++;
                }
                return;
        }
        if (m->state != ST_CLOSED && m->cbs.on_log)
                m->cbs.on_log(m->userdata, prio, line);
}

/* ---- public API ---- */

void bbt_mqtt_options_init(struct bbt_mqtt_options *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->keepalive_s = BBT_MQTT_KEEPALIVE_S;
        opts->clean_session = true;
        opts->protocol = BBT_MQTT_V311;
        opts->backoff_min_ms = BBT_MQTT_BACKOFF_MIN_MS;
        opts->backoff_max_ms = BBT_MQTT_BACKOFF_MAX_MS;
        opts->connect_timeout_ms = BBT_MQTT_CONNECT_TIMEOUT_MS;
}

static int check_readable(const char *path)
{
        if (path && access(path, R_OK) < 0)
                return -errno;
        return 0;
}

static int will_validate(const struct bbt_mqtt_will *w)
{
        if (!w || !w->topic)
                return 0;
        if (mosquitto_pub_topic_check(w->topic) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        if (w->qos < 0 || w->qos > 2 || (w->len && !w->payload))
                return -EINVAL;
        if (w->len > MQTT_MAX_PAYLOAD)
                return -EMSGSIZE;
        return 0;
}

static int will_store(struct bbt_mqtt *m, const struct bbt_mqtt_will *w)
{
        char *topic = NULL;
        void *payload = NULL;

        if (w && w->topic) {
                topic = strdup(w->topic);
                payload = memdup(w->payload, w->len);
                if (!topic || !payload) {
                        free(topic);
                        free(payload);
                        return -ENOMEM;
                }
        }
        free(m->will_topic);
        free(m->will_payload);
        m->will_topic = topic;
        m->will_payload = payload;
        m->will_len = topic ? w->len : 0;
        m->will_qos = topic ? w->qos : 0;
        m->will_retain = topic ? w->retain : false;
        return 0;
}

static void free_fields(struct bbt_mqtt *m)
{
        struct subscription *s, *next;

        for (s = m->subs; s; s = next) {
                next = s->next;
                free(s);
        }
        if (m->mosq)
                mosquitto_destroy(m->mosq);
        free(m->host);
        free(m->will_topic);
        free(m->will_payload);
        free(m);
}

static int mosq_configure(struct bbt_mqtt *m, const struct bbt_mqtt_options *o)
{
        int rc;

        rc = mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                                  o->protocol == BBT_MQTT_V5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        if (rc == MOSQ_ERR_SUCCESS && o->username)
                rc = mosquitto_username_pw_set(m->mosq, o->username, o->password);
        if (rc == MOSQ_ERR_SUCCESS && m->tls) {
                rc = mosquitto_tls_set(m->mosq, o->tls_ca_file, o->tls_ca_path, o->tls_cert_file,
                                       o->tls_key_file, NULL);
                if (rc == MOSQ_ERR_SUCCESS)
                        rc = mosquitto_tls_insecure_set(m->mosq, o->tls_insecure);
        }
        if (rc != MOSQ_ERR_SUCCESS)
                return mosq_to_errno(rc, errno);

        mosquitto_connect_with_flags_callback_set(m->mosq, on_connect_cb);
        mosquitto_disconnect_callback_set(m->mosq, on_disconnect_cb);
        mosquitto_publish_callback_set(m->mosq, on_publish_cb);
        mosquitto_message_callback_set(m->mosq, on_message_cb);
        mosquitto_subscribe_callback_set(m->mosq, on_subscribe_cb);
        mosquitto_log_callback_set(m->mosq, on_log_cb);
        return 0;
}

int bbt_mqtt_new(uv_loop_t *loop, const struct bbt_mqtt_options *o,
                 const struct bbt_mqtt_callbacks *cbs, void *userdata, struct bbt_mqtt **ret)
{
        struct bbt_mqtt *m;
        bool oom = false;
        uint32_t seed;
        int r;

        if (!loop || !o || !ret || !o->host || !o->host[0])
                return -EINVAL;
        if (o->port < 0 || o->port > 65535)
                return -EINVAL;
        if (o->keepalive_s != 0 && (o->keepalive_s < 5 || o->keepalive_s > 65535))
                return -EINVAL;
        if (o->password && !o->username)
                return -EINVAL;
        if (!o->client_id && !o->clean_session)
                return -EINVAL;
        if (o->protocol != BBT_MQTT_V311 && o->protocol != BBT_MQTT_V5)
                return -EINVAL;
        if (!o->tls_ca_file && !o->tls_ca_path && (o->tls_cert_file || o->tls_key_file))
                return -EINVAL;
        if (!o->tls_cert_file != !o->tls_key_file)
                return -EINVAL;
        r = will_validate(&o->will);
        if (r < 0)
                return r;
        if ((r = check_readable(o->tls_ca_file)) < 0 || (r = check_readable(o->tls_ca_path)) < 0 ||
            (r = check_readable(o->tls_cert_file)) < 0 || (r = check_readable(o->tls_key_file)) < 0)
                return r;

        pthread_once(&lib_once, lib_init_once);

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->loop = loop;
        if (cbs)
                m->cbs = *cbs;
        m->userdata = userdata;
        m->tls = o->tls_ca_file || o->tls_ca_path;
        m->port = o->port ? o->port : (m->tls ? 8883 : 1883);
        m->keepalive_s = o->keepalive_s ? o->keepalive_s : BBT_MQTT_KEEPALIVE_S;
        m->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : BBT_MQTT_BACKOFF_MIN_MS;
        m->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : BBT_MQTT_BACKOFF_MAX_MS;
        if (m->backoff_max_ms < m->backoff_min_ms)
                m->backoff_max_ms = m->backoff_min_ms;
        m->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms
                                                      : BBT_MQTT_CONNECT_TIMEOUT_MS;
        m->host = strdup_or_null(o->host, &oom);
        if (oom) {
                r = -ENOMEM;
                goto fail;
        }
        r = will_store(m, &o->will);
        if (r < 0)
                goto fail;

        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
                seed = (uint32_t)uv_hrtime() ^ (uint32_t)getpid() ^ (uint32_t)(uintptr_t)m;
        m->rnd = seed ? seed : 0x9e3779b9u;

        errno = 0;
        m->mosq = mosquitto_new(o->client_id, o->clean_session, m);
        if (!m->mosq) {
                r = errno == EINVAL ? -EINVAL : -ENOMEM;
                goto fail;
        }
        r = mosq_configure(m, o);
        if (r < 0)
                goto fail;

        /* Cannot fail once the loop is valid; kept last so that a failure
         * above needs no handle closed. */
        uv_timer_init(loop, &m->timer);
        uv_timer_init(loop, &m->misc_timer);
        m->state = ST_IDLE;
        *ret = m;
        return 0;

fail:
        free_fields(m);
        return r;
}

int bbt_mqtt_start(struct bbt_mqtt *m)
{
        if (!m || m->state == ST_CLOSED)
                return -EINVAL;
        switch (m->state) {
        case ST_IDLE:
        case ST_STOPPED:
                break;
        case ST_DISCONNECTING:
                return -EBUSY;
        default:
                return -EALREADY;
        }
        if (m->disconnect_pending)
                return -EBUSY; /* its completion is still to be delivered */
        m->attempt = 0;
        begin_connect(m);
        return 0;
}

static struct subscription *sub_find(struct bbt_mqtt *m, const char *pattern,
                                     struct subscription ***ret_link)
{
        struct subscription **link;

        for (link = &m->subs; *link; link = &(*link)->next)
                if (strcmp((*link)->pattern, pattern) == 0) {
                        if (ret_link)
                                *ret_link = link;
                        return *link;
                }
        return NULL;
}

int bbt_mqtt_subscribe(struct bbt_mqtt *m, const char *pattern, int qos)
{
        struct subscription *s;
        size_t len;
        int64_t t_s;
        int rc, err;

        if (!m || m->state == ST_CLOSED || !pattern || qos < 0 || qos > 2)
                return -EINVAL;
        if (mosquitto_sub_topic_check(pattern) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        s = sub_find(m, pattern, NULL);
        if (!s) {
                len = strlen(pattern);
                s = malloc(sizeof(*s) + len + 1);
                if (!s)
                        return -ENOMEM;
                memcpy(s->pattern, pattern, len + 1);
                s->mid = 0;
                s->next = m->subs;
                m->subs = s;
        }
        s->qos = qos;
        if (m->state != ST_CONNECTED || m->end_pending)
                return 0;
        t_s = mono_s();
        rc = mosquitto_subscribe(m->mosq, &s->mid, pattern, qos);
        err = errno;
        if (rc == MOSQ_ERR_NOMEM)
                return -ENOMEM;
        if (rc == MOSQ_ERR_SUCCESS)
                keepalive_note(m, t_s, true, false);
        /* On a write error the connection is broken; the reconnect resends. */
        if (!after_call(m, rc, err, true) && rc != MOSQ_ERR_SUCCESS)
                kick_connection(m);
        return 0;
}

int bbt_mqtt_unsubscribe(struct bbt_mqtt *m, const char *pattern)
{
        struct subscription *s, **link = NULL;
        int64_t t_s;
        int rc;

        if (!m || m->state == ST_CLOSED || !pattern)
                return -EINVAL;
        s = sub_find(m, pattern, &link);
        if (!s)
                return -ENOENT;
        *link = s->next;
        free(s);
        if (m->state != ST_CONNECTED || m->end_pending)
                return 0;
        t_s = mono_s();
        rc = mosquitto_unsubscribe(m->mosq, NULL, pattern);
        if (rc == MOSQ_ERR_SUCCESS)
                keepalive_note(m, t_s, true, false);
        if (!after_call(m, rc, errno, true) && rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NOMEM)
                kick_connection(m);
        return 0;
}

int bbt_mqtt_publish(struct bbt_mqtt *m, const char *topic, const void *payload, size_t len,
                     int qos, bool retain, int *ret_mid)
{
        int64_t t_s;
        int mid = 0, rc, err;

        if (!m || m->state == ST_CLOSED || !topic || qos < 0 || qos > 2 || (len && !payload))
                return -EINVAL;
        if (len > MQTT_MAX_PAYLOAD)
                return -EMSGSIZE;
        if (mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
            mosquitto_validate_utf8(topic, (int)strlen(topic)) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        if (m->state != ST_CONNECTED || m->end_pending)
                return -ENOTCONN;
        t_s = mono_s();
        rc = mosquitto_publish(m->mosq, &mid, topic, (int)len, payload, qos, retain);
        err = errno;
        switch (rc) {
        case MOSQ_ERR_SUCCESS:
                keepalive_note(m, t_s, true, false);
                break;
        case MOSQ_ERR_ERRNO:
        case MOSQ_ERR_CONN_LOST:
        case MOSQ_ERR_NO_CONN:
                /* The write failed. A QoS 1/2 message stays queued in
                 * libmosquitto and goes out again after the reconnect; a QoS 0
                 * one is lost with the connection. */
                if (!after_call(m, rc, err, true))
                        kick_connection(m);
                if (qos == 0)
                        return -ENOTCONN;
                break;
        default:
                return mosq_to_errno(rc, err);
        }
        if (qos > 0)
                ack_mark(m, mid);
        m->stats.publishes++;
        if (rc == MOSQ_ERR_SUCCESS)
                (void)after_call(m, rc, 0, true);
        if (ret_mid)
                *ret_mid = mid;
        return 0;
}

bool bbt_mqtt_is_connected(const struct bbt_mqtt *m)
{
        return m && m->state == ST_CONNECTED && !m->end_pending;
}

int bbt_mqtt_set_will(struct bbt_mqtt *m, const struct bbt_mqtt_will *will)
{
        int r;

        if (!m || m->state == ST_CLOSED)
                return -EINVAL;
        r = will_validate(will);
        if (r < 0)
                return r;
        return will_store(m, will);
}

int bbt_mqtt_disconnect(struct bbt_mqtt *m, bbt_mqtt_disconnect_cb cb)
{
        int rc;

        if (!m || m->state == ST_CLOSED)
                return -EINVAL;
        if (m->state == ST_DISCONNECTING || m->disconnect_pending)
                return -EALREADY;
        m->disconnect_cb = cb;
        m->disconnect_pending = true;
        m->disconnect_status = 0;

        switch (m->state) {
        case ST_IDLE:
        case ST_STOPPED:
        case ST_WAITING:
                /* Nothing on the wire: done, reported from the loop. */
                m->state = ST_STOPPED;
                uv_timer_start(&m->timer, timer_cb, 0, 0);
                return 0;
        case ST_RESOLVING:
                /* connect_after_cb() sends DISCONNECT once the socket exists. */
                m->state = ST_DISCONNECTING;
                return 0;
        default:
                break;
        }
        m->state = ST_DISCONNECTING;
        if (m->end_pending)
                return 0; /* already closed: the deferred end reports it */
        if (uv_is_active((uv_handle_t *)&m->misc_timer))
                keepalive_arm(m); /* back to ticking */
        uv_timer_start(&m->timer, timer_cb, m->connect_timeout_ms, 0);
        /* DISCONNECT is queued behind everything already queued, so pending
         * publishes are written first. */
        rc = mosquitto_disconnect(m->mosq);
        if (!after_call(m, rc, errno, true) && rc != MOSQ_ERR_SUCCESS)
                kick_connection(m);
        return 0;
}

static void timer_close_cb(uv_handle_t *handle)
{
        struct bbt_mqtt *m = bbt_container_of((uv_timer_t *)handle, struct bbt_mqtt, timer);

        m->closing--;
        maybe_finish_close(m);
}

static void misc_timer_close_cb(uv_handle_t *handle)
{
        struct bbt_mqtt *m = bbt_container_of((uv_timer_t *)handle, struct bbt_mqtt, misc_timer);

        m->closing--;
        maybe_finish_close(m);
}

static void maybe_finish_close(struct bbt_mqtt *m)
{
        bbt_mqtt_close_cb cb;
        void *userdata;

        if (m->closing)
                return;
        if (m->disconnect_pending) {
                m->disconnect_status = -ECANCELED;
                finish_disconnect(m);
        }
        cb = m->close_cb;
        userdata = m->userdata;
        free_fields(m);
        if (cb)
                cb(userdata);
}

void bbt_mqtt_close(struct bbt_mqtt *m, bbt_mqtt_close_cb cb)
{
        if (!m || m->state == ST_CLOSED)
                return;
        m->state = ST_CLOSED;
        m->close_cb = cb;
        m->closing = 2;
        uv_close((uv_handle_t *)&m->timer, timer_close_cb);
        uv_close((uv_handle_t *)&m->misc_timer, misc_timer_close_cb);
        if (m->poll_state == POLL_ACTIVE) {
                m->closing++;
                m->poll_state = POLL_CLOSING;
                uv_close((uv_handle_t *)&m->poll, poll_close_cb);
        } else if (m->poll_state == POLL_CLOSING) {
                m->closing++; /* its pending close callback counts down */
        }
        m->poll_restart = false;
        if (m->work_pending) {
                m->closing++;
                /* If it already runs, its after-callback comes as usual. */
                (void)uv_cancel((uv_req_t *)&m->connect_work);
        }
}

void bbt_mqtt_get_stats(const struct bbt_mqtt *m, struct bbt_mqtt_stats *ret)
{
        if (!m || !ret)
                return;
        *ret = m->stats;
}
