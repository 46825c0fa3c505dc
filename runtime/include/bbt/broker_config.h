/* The [broker] section both daemons share: its option rows, its checks, and the MQTT options it gives. */
#ifndef BBT_BROKER_CONFIG_H
#define BBT_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "bbt/config.h"
#include "bbt/mqtt.h"

#include "bbt/base.h"

struct bbt_broker_config {
        char *host;
        long long port;
        char *username, *password_file;
        char *tls_ca_file, *tls_ca_path, *tls_cert_file, *tls_key_file;
        long long keepalive_ms, backoff_min_ms, backoff_max_ms;
};

#define BBT__BROKER_OPT(key, t, field, def, lo, hi, text, TYPE, MEMBER)                                    \
        {                                                                                                  \
                .section = "broker", .name = key, .type = t, .offset = offsetof(TYPE, MEMBER.field),       \
                .default_value = def, .min = lo, .max = hi, .help = text,                                  \
        }

/* The option rows of [broker] for a daemon's configuration struct TYPE that
 * holds a struct bbt_broker_config at MEMBER; BACKOFF_MAX is that daemon's
 * default longest reconnect delay ("60s"). Keep the daemons' man pages in step. */
#define BBT_BROKER_OPTIONS(TYPE, MEMBER, BACKOFF_MAX)                                                      \
        BBT__BROKER_OPT("host", BBT_OPT_STRING, host, "127.0.0.1", 0, 0, "MQTT broker host name or address", \
                        TYPE, MEMBER),                                                                     \
        BBT__BROKER_OPT("port", BBT_OPT_INT, port, "0", 0, 65535, "Broker port; 0: 1883, or 8883 with TLS",  \
                        TYPE, MEMBER),                                                                     \
        BBT__BROKER_OPT("username", BBT_OPT_STRING, username, NULL, 0, 0, "MQTT user name; empty: anonymous", \
                        TYPE, MEMBER),                                                                     \
        BBT__BROKER_OPT("password_file", BBT_OPT_PATH, password_file, NULL, 0, 0,                          \
                        "File holding the MQTT password (first line); refused if other users can read it", \
                        TYPE, MEMBER),                                                                     \
        BBT__BROKER_OPT("tls_ca_file", BBT_OPT_PATH, tls_ca_file, NULL, 0, 0,                              \
                        "CA certificate (PEM) the broker's certificate must chain to; setting it turns TLS on", \
                        TYPE, MEMBER),                                                                     \
        BBT__BROKER_OPT("tls_ca_path", BBT_OPT_PATH, tls_ca_path, NULL, 0, 0,                              \
                        "Directory of CA certificates (alternative to tls_ca_file); turns TLS on", TYPE,   \
                        MEMBER),                                                                           \
        BBT__BROKER_OPT("tls_cert_file", BBT_OPT_PATH, tls_cert_file, NULL, 0, 0,                          \
                        "Client certificate (PEM), with tls_key_file", TYPE, MEMBER),                      \
        BBT__BROKER_OPT("tls_key_file", BBT_OPT_PATH, tls_key_file, NULL, 0, 0,                            \
                        "Client private key (PEM); refused if other users can read it", TYPE, MEMBER),     \
        BBT__BROKER_OPT("keepalive", BBT_OPT_DURATION, keepalive_ms, "60s", 5000, 3600000, "MQTT keepalive", \
                        TYPE, MEMBER),                                                                     \
        BBT__BROKER_OPT("backoff_min", BBT_OPT_DURATION, backoff_min_ms, "1s", 100, 60000,                 \
                        "First delay before reconnecting; doubles up to backoff_max, with jitter", TYPE,   \
                        MEMBER),                                                                           \
        BBT__BROKER_OPT("backoff_max", BBT_OPT_DURATION, backoff_max_ms, BACKOFF_MAX, 1000, 3600000,       \
                        "Longest delay between reconnect attempts", TYPE, MEMBER)

/* Checks what one key alone cannot: a host, TLS files that go together, the
 * backoff order, a password file only with a user name. Returns 0, or -EINVAL
 * with *RET_KEY ("[broker] host") and *RET_WHAT (static strings). An empty
 * user name is turned into none (NULL) first. */
BBT_API int bbt_broker_config_check(struct bbt_broker_config *c, const char **ret_key, const char **ret_what);

/* The port actually used: the configured one, or 1883 (8883 with TLS) for 0. */
BBT_API long long bbt_broker_config_port(const struct bbt_broker_config *c);

/* Whether A and B would make the same connection. */
BBT_API bool bbt_broker_config_equal(const struct bbt_broker_config *a, const struct bbt_broker_config *b);

/* Fills O (after bbt_mqtt_options_init) from C, reading the password file into
 * PASSWORD (SIZE bytes; the caller wipes it after bbt_mqtt_new). Returns 0;
 * -EPERM if other users can read the password file or the TLS key file
 * (bbt_private_file_check), with ERR naming the file and the chmod that fixes
 * it; or -errno if one of them cannot be read (ERR says which). */
BBT_API int bbt_broker_config_mqtt_options(const struct bbt_broker_config *c, char *password, size_t size,
                                           struct bbt_mqtt_options *o, char *err, size_t err_size);

#endif
