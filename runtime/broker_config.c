/* The [broker] section both daemons share: its checks and the MQTT options it gives. */
#include "bbt/broker_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/fileio.h"

int bbt_broker_config_check(struct bbt_broker_config *c, const char **ret_key, const char **ret_what)
{
        const char *key = NULL, *what = NULL;

        if (c->username && !*c->username) {
                free(c->username);
                c->username = NULL;
        }
        if (!c->host || !*c->host)
                key = "[broker] host", what = "must not be empty";
        else if (!c->tls_cert_file != !c->tls_key_file)
                key = "[broker] tls_cert_file", what = "tls_cert_file and tls_key_file go together";
        else if (c->tls_cert_file && !c->tls_ca_file && !c->tls_ca_path)
                key = "[broker] tls_ca_file", what = "a client certificate needs tls_ca_file or tls_ca_path";
        else if (c->backoff_max_ms < c->backoff_min_ms)
                key = "[broker] backoff_max", what = "must not be less than backoff_min";
        else if (c->password_file && !c->username)
                key = "[broker] password_file", what = "needs a username";
        if (!what)
                return 0;
        *ret_key = key;
        *ret_what = what;
        return -EINVAL;
}

long long bbt_broker_config_port(const struct bbt_broker_config *c)
{
        if (c->port)
                return c->port;
        return c->tls_ca_file || c->tls_ca_path ? 8883 : 1883;
}

static bool same_str(const char *x, const char *y)
{
        return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

bool bbt_broker_config_equal(const struct bbt_broker_config *a, const struct bbt_broker_config *b)
{
        return same_str(a->host, b->host) && a->port == b->port && same_str(a->username, b->username) &&
               same_str(a->password_file, b->password_file) && same_str(a->tls_ca_file, b->tls_ca_file) &&
               same_str(a->tls_ca_path, b->tls_ca_path) && same_str(a->tls_cert_file, b->tls_cert_file) &&
               same_str(a->tls_key_file, b->tls_key_file) && a->keepalive_ms == b->keepalive_ms &&
               a->backoff_min_ms == b->backoff_min_ms && a->backoff_max_ms == b->backoff_max_ms;
}

/* Refuses a password or key file that other users can read: a student
 * account on a terminal must not be able to take the terminal's identity. */
static int check_private(const char *path, char *err, size_t err_size)
{
        unsigned mode = 0;
        int r = bbt_private_file_check(path, &mode);

        if (r == -EPERM)
                snprintf(err, err_size,
                         "%s: other users can read this secret (mode %04o); make it private: chmod 600 %s "
                         "(owned by the user this daemon runs as)",
                         path, mode, path);
        else if (r < 0)
                snprintf(err, err_size, "%s: %s", path, strerror(-r));
        return r;
}

int bbt_broker_config_mqtt_options(const struct bbt_broker_config *c, char *password, size_t size,
                                   struct bbt_mqtt_options *o, char *err, size_t err_size)
{
        int r;

        password[0] = '\0';
        if (c->tls_key_file && (r = check_private(c->tls_key_file, err, err_size)) < 0)
                return r;
        if (c->password_file) {
                r = check_private(c->password_file, err, err_size);
                if (r < 0)
                        return r;
                r = bbt_read_secret_file(c->password_file, password, size);
                if (r < 0) {
                        snprintf(err, err_size, "%s: %s", c->password_file, strerror(-r));
                        return r;
                }
        }
        o->host = c->host;
        o->port = (int)c->port;
        o->username = c->username;
        o->password = c->password_file ? password : NULL;
        o->tls_ca_file = c->tls_ca_file;
        o->tls_ca_path = c->tls_ca_path;
        o->tls_cert_file = c->tls_cert_file;
        o->tls_key_file = c->tls_key_file;
        o->keepalive_s = (int)(c->keepalive_ms / 1000);
        o->backoff_min_ms = (unsigned)c->backoff_min_ms;
        o->backoff_max_ms = (unsigned)c->backoff_max_ms;
        return 0;
}
