/* MQTT client on a libuv loop: libmosquitto driven by uv_poll/uv_timer, with reconnect and backoff. */
#ifndef BBT_MQTT_H
#define BBT_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "bbt/base.h"

#define BBT_MQTT_BACKOFF_MIN_MS 1000u
#define BBT_MQTT_BACKOFF_MAX_MS 60000u
#define BBT_MQTT_CONNECT_TIMEOUT_MS 10000u
#define BBT_MQTT_KEEPALIVE_S 60

enum bbt_mqtt_protocol {
        BBT_MQTT_V311 = 0, /* the default */
        BBT_MQTT_V5,
};

/* The last will: published by the broker when the connection ends without a
 * clean DISCONNECT (crash, kill -9, network cut, keepalive timeout). */
struct bbt_mqtt_will {
        const char *topic; /* NULL: no will */
        const void *payload;
        size_t len;
        int qos;
        bool retain;
};

/* Every string is copied by bbt_mqtt_new(); the caller keeps ownership of its own. */
struct bbt_mqtt_options {
        const char *host;      /* required; a name is resolved off the loop thread */
        int port;              /* 0: 1883, or 8883 with TLS */
        const char *client_id; /* NULL: the broker assigns one (needs clean_session) */
        const char *username;  /* NULL: anonymous */
        const char *password;
        /* TLS is on when tls_ca_file or tls_ca_path is set. The server's
         * certificate must chain to that CA and name `host` (DNS or IP SAN). */
        const char *tls_ca_file;
        const char *tls_ca_path;
        const char *tls_cert_file; /* client certificate, with tls_key_file */
        const char *tls_key_file;
        bool tls_insecure;         /* skip the host name check: tests only */
        int keepalive_s;           /* 0: 60; otherwise 5..65535 */
        bool clean_session;
        enum bbt_mqtt_protocol protocol;
        unsigned backoff_min_ms;     /* 0: 1000 */
        unsigned backoff_max_ms;     /* 0: 60000 */
        unsigned connect_timeout_ms; /* 0: 10000; TCP + TLS + CONNACK must fit */
        struct bbt_mqtt_will will;
};

/* All optional. Called from the loop thread, never from inside a bbt_mqtt_*()
 * call. Any of them may call any bbt_mqtt_*() function, bbt_mqtt_close() too. */
struct bbt_mqtt_callbacks {
        /* The broker accepted the connection; remembered subscriptions have
         * already been re-sent. session_present: the broker kept our session. */
        void (*on_connect)(void *userdata, bool session_present);
        /* A connection ended, or an attempt to make one failed. error is 0
         * after bbt_mqtt_disconnect(), otherwise a negative errno:
         * -ECONNREFUSED (nothing listening, or the broker is unavailable),
         * -EACCES (bad user name/password or not authorised), -EKEYREJECTED
         * (TLS handshake or certificate check failed), -ETIMEDOUT (connect
         * or keepalive timeout), -ECONNRESET (connection lost),
         * -EHOSTUNREACH (name did not resolve), -EPROTO, ... reason is a
         * human-readable sentence, valid during the call only. Unless
         * stopped, the next attempt is already scheduled. */
        void (*on_disconnect)(void *userdata, int error, const char *reason);
        /* A message on a subscribed topic. topic and payload are valid during
         * the call only. */
        void (*on_message)(void *userdata, const char *topic, const void *payload, size_t len,
                           int qos, bool retain);
        /* The broker acknowledged the QoS 1 (PUBACK) or QoS 2 (PUBCOMP)
         * message that bbt_mqtt_publish() returned mid for. Never for QoS 0. */
        void (*on_publish)(void *userdata, int mid);
        /* Optional: a log line from this module or libmosquitto, with a
         * syslog priority (LOG_ERR .. LOG_DEBUG). The module logs nothing itself. */
        void (*on_log)(void *userdata, int priority, const char *line);
};

struct bbt_mqtt_stats {
        uint64_t connect_attempts;  /* connections tried */
        uint64_t connects;          /* accepted by the broker (CONNACK 0) */
        uint64_t connect_failures;  /* attempts that ended without CONNACK 0 */
        uint64_t disconnects;       /* accepted connections that ended, clean or not */
        uint64_t publishes;         /* messages accepted by bbt_mqtt_publish() */
        uint64_t pubacks;           /* QoS 1/2 messages acknowledged by the broker */
        uint64_t messages_received; /* on_message calls */
        unsigned last_backoff_ms;   /* the most recent delay before a retry */
};

struct bbt_mqtt;

typedef void (*bbt_mqtt_disconnect_cb)(void *userdata, int status);
typedef void (*bbt_mqtt_close_cb)(void *userdata);

/* Fills OPTS with the defaults: port 0 (1883/8883), keepalive 60 s,
 * clean_session true, MQTT 3.1.1, backoff 1 s .. 60 s, connect timeout 10 s. */
BBT_API void bbt_mqtt_options_init(struct bbt_mqtt_options *opts);

/* Creates a client on LOOP that does not connect until bbt_mqtt_start().
 * The first call in a process also sets SIGPIPE to SIG_IGN if it is still at
 * its default: libmosquitto writes without MSG_NOSIGNAL.
 * Copies OPTS and CBS. USERDATA is passed to every callback. On success
 * stores the new client in *RET and returns 0; the caller frees it with
 * bbt_mqtt_close(). Returns -EINVAL for bad options (missing host, keepalive
 * out of range, password without user name, no client id without clean
 * session, TLS files without a CA), -ENOENT if a TLS file cannot be read,
 * -ENOMEM. *RET is untouched on failure. Reads the TLS files: call it at
 * start-up, not from a hot path. */
BBT_API int bbt_mqtt_new(uv_loop_t *loop, const struct bbt_mqtt_options *opts,
                         const struct bbt_mqtt_callbacks *cbs, void *userdata,
                         struct bbt_mqtt **ret);

/* Starts connecting, and keeps reconnecting with backoff until
 * bbt_mqtt_disconnect() or bbt_mqtt_close(). Never blocks the loop. Returns 0,
 * -EALREADY if already started, -EBUSY while a disconnect is in progress.
 * May be called again after a disconnect has completed. */
BBT_API int bbt_mqtt_start(struct bbt_mqtt *m);

/* Remembers PATTERN (wildcards allowed, also $share/...) with QOS and
 * subscribes now if connected; it is re-sent on every (re)connect. Subscribing
 * to a remembered pattern again changes its QoS. Returns 0, -EINVAL for a bad
 * pattern or QoS, -ENOMEM. A refusal by the broker is logged through on_log. */
BBT_API int bbt_mqtt_subscribe(struct bbt_mqtt *m, const char *pattern, int qos);

/* Forgets PATTERN and unsubscribes now if connected. Returns 0, -EINVAL, or
 * -ENOENT if the pattern was not remembered (nothing is sent then). */
BBT_API int bbt_mqtt_unsubscribe(struct bbt_mqtt *m, const char *pattern);

/* Publishes LEN bytes of PAYLOAD (copied) on TOPIC. On success stores the
 * message id in *RET_MID (may be NULL) and returns 0; for QoS 1/2, on_publish
 * reports that id once the broker has acknowledged it. When not connected
 * returns -ENOTCONN and queues nothing: the caller decides whether to keep
 * the message (the agent's spool does). A QoS 1/2 message accepted while
 * connected is kept by libmosquitto until acknowledged, and re-sent after a
 * reconnect if the connection drops first (so it may arrive twice). Other
 * errors: -EINVAL (bad topic or QoS), -EMSGSIZE, -ENOMEM. */
BBT_API int bbt_mqtt_publish(struct bbt_mqtt *m, const char *topic, const void *payload,
                             size_t len, int qos, bool retain, int *ret_mid);

/* Whether the broker has accepted the current connection. */
BBT_API bool bbt_mqtt_is_connected(const struct bbt_mqtt *m);

/* Replaces the will (copied; NULL or a NULL topic removes it). The broker
 * learns it at CONNECT, so it takes effect on the next connection. Returns 0,
 * -EINVAL, -ENOMEM. */
BBT_API int bbt_mqtt_set_will(struct bbt_mqtt *m, const struct bbt_mqtt_will *will);

/* Ends the connection cleanly: writes everything queued, then an MQTT
 * DISCONNECT, so the broker discards the will; stops reconnecting. CB (may be
 * NULL) runs once, from the loop, with 0, or a negative errno if an accepted
 * connection could not be ended cleanly (lost or not flushed within the
 * connect timeout), or -ECANCELED if bbt_mqtt_close() came first. Returns 0,
 * or -EALREADY if a disconnect is already in progress. */
BBT_API int bbt_mqtt_disconnect(struct bbt_mqtt *m, bbt_mqtt_disconnect_cb cb);

/* Closes the client: drops any connection at once (without DISCONNECT: the
 * broker will publish the will), stops all timers, and when every libuv
 * handle has closed calls CB (may be NULL) and frees M. M must not be used
 * after this call. NULL is a no-op. */
BBT_API void bbt_mqtt_close(struct bbt_mqtt *m, bbt_mqtt_close_cb cb);

/* Copies the counters into *RET. */
BBT_API void bbt_mqtt_get_stats(const struct bbt_mqtt *m, struct bbt_mqtt_stats *ret);

/* The delay before retry number ATTEMPT (0 for the first retry after a
 * failure or a lost connection), in ms: "equal jitter", uniform in
 * [n/2, n] where n = min(MAX_MS, MIN_MS * 2^ATTEMPT), and never 0. RND is a
 * uniformly random 32-bit value. Pure, for tests and documentation. */
BBT_API unsigned bbt_mqtt_backoff_ms(unsigned attempt, unsigned min_ms, unsigned max_ms,
                                     uint32_t rnd);

#ifdef __cplusplus
}
#endif

#endif
