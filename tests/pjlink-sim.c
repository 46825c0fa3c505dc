/* A PJLink projector simulator on 127.0.0.1 for tests: class 1 and 2, auth, power transitions, real devices' quirks. */
#include "pjlink-sim.h"
#include "bbt/base.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#ifndef container_of
#endif

#define IN_MAX 256
#define OUT_MAX 1024

/* One client connection: a socket and a timer (slow greeting, split replies). */
struct bbt_pjlink_sim_conn {
        struct bbt_pjlink_sim_conn *next;
        struct bbt_pjlink_sim *sim;
        uv_tcp_t tcp;
        uv_timer_t timer;
        unsigned open_handles;
        bool closing;
        bool authed;
        unsigned replies;
        char random[9];
        char in[IN_MAX];
        size_t in_len;
        char rest[OUT_MAX]; /* the second half of a split reply */
        size_t rest_len;
        bool rest_then_close;
};

struct sim_write {
        uv_write_t req;
        struct bbt_pjlink_sim_conn *conn;
        bool then_close;
        size_t len;
        char buf[];
};

void bbt_pjlink_sim_init(struct bbt_pjlink_sim *s)
{
        memset(s, 0, sizeof(*s));
        s->cls = 1;
        s->power = BBT_POWER_OFF;
        memcpy(s->input, "31", 3);
        memcpy(s->erst, "000000", 7);
        s->n_lamps = 1;
        s->lamp_hours[0] = 1200;
        s->name = "Classroom";
        s->inf1 = "SIMCO";
        s->inf2 = "PJ-1000";
        s->info = "sim firmware 1.0";
        s->rng = 0x498e4a67u;
}

static void conn_handle_closed(uv_handle_t *h)
{
        struct bbt_pjlink_sim_conn *c = h->data;

        if (--c->open_handles == 0)
                free(c);
}

static void conn_close(struct bbt_pjlink_sim_conn *c)
{
        struct bbt_pjlink_sim_conn **pp;

        if (c->closing)
                return;
        c->closing = true;
        for (pp = &c->sim->conns; *pp; pp = &(*pp)->next)
                if (*pp == c) {
                        *pp = c->next;
                        break;
                }
        c->sim->open_conns--;
        uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
        uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void write_done(uv_write_t *req, int status)
{
        struct sim_write *w = bbt_container_of(req, struct sim_write, req);
        struct bbt_pjlink_sim_conn *c = w->conn;
        bool then_close = w->then_close;

        free(w);
        if (then_close && status != UV_ECANCELED)
                conn_close(c);
}

static void conn_write(struct bbt_pjlink_sim_conn *c, const char *data, size_t len, bool then_close)
{
        struct sim_write *w;
        uv_buf_t b;

        if (c->closing)
                return;
        w = malloc(sizeof(*w) + len);
        if (!w) {
                conn_close(c);
                return;
        }
        w->conn = c;
        w->then_close = then_close;
        w->len = len;
        memcpy(w->buf, data, len);
        b = uv_buf_init(w->buf, (unsigned)len);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done) < 0) {
                free(w);
                conn_close(c);
        }
}

static void split_timer_cb(uv_timer_t *t)
{
        struct bbt_pjlink_sim_conn *c = t->data;

        conn_write(c, c->rest, c->rest_len, c->rest_then_close);
        c->rest_len = 0;
}

/* Sends LINE with "\r", the padding, and the configured quirks. */
static void send_line(struct bbt_pjlink_sim_conn *c, const char *line, bool reply, bool then_close)
{
        struct bbt_pjlink_sim *s = c->sim;
        char out[OUT_MAX];
        size_t n = 0, pad, half;

        if (reply && s->lkup_before_reply)
                n += (size_t)snprintf(out + n, sizeof(out) - n, "%%2LKUP=00:1b:2c:3d:4e:5f\r");
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s\r", line);
        pad = s->nul_padding < sizeof(out) - n ? s->nul_padding : sizeof(out) - n;
        memset(out + n, 0, pad);
        n += pad;
        if (reply && s->split_ms && n >= 2) {
                half = n / 2;
                conn_write(c, out, half, false);
                memcpy(c->rest, out + half, n - half);
                c->rest_len = n - half;
                c->rest_then_close = then_close;
                uv_timer_start(&c->timer, split_timer_cb, s->split_ms, 0);
                return;
        }
        conn_write(c, out, n, then_close);
}

static void send_greeting(struct bbt_pjlink_sim_conn *c)
{
        char line[32];

        if (c->sim->greeting) {
                send_line(c, c->sim->greeting, false, false);
                return;
        }
        if (c->sim->password)
                snprintf(line, sizeof(line), "PJLINK 1 %s", c->random);
        else
                snprintf(line, sizeof(line), "PJLINK 0");
        send_line(c, line, false, false);
}

static void greeting_timer_cb(uv_timer_t *t)
{
        send_greeting(t->data);
}

static void power_timer_cb(uv_timer_t *t)
{
        struct bbt_pjlink_sim *s = t->data;

        s->power = s->power_target;
}

static void set_power(struct bbt_pjlink_sim *s, bool on)
{
        enum bbt_power via = on ? BBT_POWER_WARMING : BBT_POWER_COOLING;
        unsigned ms = on ? s->warm_ms : s->cool_ms;

        s->power_target = on ? BBT_POWER_ON : BBT_POWER_OFF;
        if (ms == 0) {
                s->power = s->power_target;
                return;
        }
        s->power = via;
        uv_timer_start(&s->power_timer, power_timer_cb, ms, 0);
}

static bool expected_digest(const char *random, const char *password, char hex[33])
{
        static const char digits[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        char input[128];
        int n = snprintf(input, sizeof(input), "%s%s", random, password);

        if (n < 0 || (size_t)n >= sizeof(input) ||
            EVP_Digest(input, (size_t)n, md, &md_len, EVP_md5(), NULL) != 1 || md_len != 16)
                return false;
        for (int i = 0; i < 16; i++) {
                hex[2 * i] = digits[md[i] >> 4];
                hex[2 * i + 1] = digits[md[i] & 15];
        }
        hex[32] = '\0';
        return true;
}

/* The answer's parameter to BODY with PARAM, into OUT. */
static void answer(struct bbt_pjlink_sim *s, int cls, const char *body, const char *param, char *out, size_t size)
{
        bool query = strcmp(param, "?") == 0;
        size_t n = 0;

        if (cls > s->cls) {
                snprintf(out, size, "ERR1");
        } else if (strcmp(body, "POWR") == 0) {
                if (query)
                        snprintf(out, size, "%d", (int)s->power);
                else if (strcmp(param, "1") == 0 || strcmp(param, "0") == 0) {
                        bool on = param[0] == '1';

                        if ((on && s->power == BBT_POWER_COOLING) || (!on && s->power == BBT_POWER_WARMING)) {
                                snprintf(out, size, "ERR3");
                                return;
                        }
                        if ((on && s->power == BBT_POWER_OFF) || (!on && s->power == BBT_POWER_ON))
                                set_power(s, on);
                        s->power_sets++;
                        snprintf(out, size, "OK");
                } else
                        snprintf(out, size, "ERR2");
        } else if (strcmp(body, "INPT") == 0) {
                if (query)
                        snprintf(out, size, "%s", s->input);
                else if (strlen(param) == 2 && param[0] >= '1' && param[0] <= '6') {
                        memcpy(s->input, param, 3);
                        snprintf(out, size, "OK");
                } else
                        snprintf(out, size, "ERR2");
        } else if (!query) {
                snprintf(out, size, "ERR2");
        } else if (strcmp(body, "ERST") == 0) {
                snprintf(out, size, "%s", s->erst);
        } else if (strcmp(body, "LAMP") == 0) {
                bool lit = s->power == BBT_POWER_ON || s->power == BBT_POWER_WARMING;

                if (s->n_lamps == 0) {
                        snprintf(out, size, "ERR1");
                        return;
                }
                out[0] = '\0';
                for (unsigned i = 0; i < s->n_lamps && i < BBT_PJLINK_SIM_LAMPS_MAX; i++)
                        n += (size_t)snprintf(out + n, size - n, "%s%lld %d", i ? " " : "",
                                              (long long)s->lamp_hours[i], lit ? 1 : 0);
        } else if (strcmp(body, "NAME") == 0) {
                snprintf(out, size, "%s", s->name ? s->name : "");
        } else if (strcmp(body, "INF1") == 0) {
                snprintf(out, size, "%s", s->inf1 ? s->inf1 : "");
        } else if (strcmp(body, "INF2") == 0) {
                snprintf(out, size, "%s", s->inf2 ? s->inf2 : "");
        } else if (strcmp(body, "INFO") == 0) {
                snprintf(out, size, "%s", s->info ? s->info : "");
        } else if (strcmp(body, "CLSS") == 0) {
                snprintf(out, size, "%d", s->cls);
        } else {
                snprintf(out, size, "ERR1");
        }
}

static void handle_line(struct bbt_pjlink_sim_conn *c, char *line, size_t len)
{
        struct bbt_pjlink_sim *s = c->sim;
        char digest[33], body[5], param[IN_MAX], value[512], reply[600];
        bool close_now;
        int cls;

        if (!c->authed && s->password) {
                if (len < 32 || !expected_digest(c->random, s->password, digest) ||
                    strncasecmp(line, digest, 32) != 0) {
                        s->auth_failed++;
                        send_line(c, "PJLINK ERRA", false, true);
                        return;
                }
                s->auth_ok++;
                line += 32;
                len -= 32;
        }
        c->authed = true;
        s->commands++;
        snprintf(s->last_command, sizeof(s->last_command), "%.*s", (int)len, line);
        if (s->erra) {
                send_line(c, "PJLINK ERRA", false, true);
                return;
        }
        if (s->silent)
                return;
        if (len < 8 || line[0] != '%' || (line[1] != '1' && line[1] != '2') || line[6] != ' ') {
                if (len >= 6 && line[0] == '%') {
                        snprintf(reply, sizeof(reply), "%.6s=ERR1", line);
                        send_line(c, reply, true, false);
                }
                return;
        }
        cls = line[1] - '0';
        memcpy(body, line + 2, 4);
        body[4] = '\0';
        snprintf(param, sizeof(param), "%.*s", (int)(len - 7), line + 7);
        if (s->hangup_on && strcmp(body, s->hangup_on) == 0) {
                conn_close(c);
                return;
        }
        bool raw = s->raw_reply && (!s->raw_cmd || strcmp(body, s->raw_cmd) == 0);

        if (raw)
                snprintf(value, sizeof(value), "%s", s->raw_reply);
        else if (s->err_cmd && strcmp(body, s->err_cmd) == 0)
                snprintf(value, sizeof(value), "ERR%c", s->err_code);
        else
                answer(s, cls, body, param, value, sizeof(value));
        if (raw)
                snprintf(reply, sizeof(reply), "%s", value);
        else
                snprintf(reply, sizeof(reply), "%%%d%s=%s", cls, body, value);
        c->replies++;
        close_now = s->close_after && c->replies >= s->close_after;
        send_line(c, reply, true, close_now);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        struct bbt_pjlink_sim_conn *c = h->data;

        *buf = uv_buf_init(c->in + c->in_len, (unsigned)(IN_MAX - c->in_len));
}

static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        struct bbt_pjlink_sim_conn *c = stream->data;
        size_t i, start = 0;

        if (nread < 0) {
                conn_close(c);
                return;
        }
        c->in_len += (size_t)nread;
        for (i = 0; i < c->in_len && !c->closing; i++) {
                if (c->in[i] != '\r')
                        continue;
                c->in[i] = '\0';
                handle_line(c, c->in + start, i - start);
                start = i + 1;
        }
        if (c->closing)
                return;
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        if (c->in_len == IN_MAX)
                conn_close(c); /* a line longer than any PJLink line */
}

static void on_connection(uv_stream_t *server, int status)
{
        struct bbt_pjlink_sim *s = bbt_container_of((uv_tcp_t *)server, struct bbt_pjlink_sim, server);
        struct bbt_pjlink_sim_conn *c;

        if (status < 0)
                return;
        c = calloc(1, sizeof(*c));
        if (!c)
                return;
        c->sim = s;
        uv_tcp_init(s->loop, &c->tcp);
        uv_timer_init(s->loop, &c->timer);
        c->tcp.data = c;
        c->timer.data = c;
        c->open_handles = 2;
        c->next = s->conns;
        s->conns = c;
        s->open_conns++;
        if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
                conn_close(c);
                return;
        }
        s->connections++;
        if (s->random) {
                snprintf(c->random, sizeof(c->random), "%s", s->random);
        } else {
                s->rng = s->rng * 1103515245u + 12345u;
                snprintf(c->random, sizeof(c->random), "%08x", s->rng);
        }
        uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
        if (s->greeting_delay_ms)
                uv_timer_start(&c->timer, greeting_timer_cb, s->greeting_delay_ms, 0);
        else
                send_greeting(c);
}

int bbt_pjlink_sim_start(struct bbt_pjlink_sim *s, uv_loop_t *loop)
{
        struct sockaddr_in addr;
        struct sockaddr_storage bound;
        int r, len = sizeof(bound);

        /* A client that hangs up while we write must not kill the test. */
        signal(SIGPIPE, SIG_IGN);
        s->loop = loop;
        uv_ip4_addr("127.0.0.1", 0, &addr);
        r = uv_tcp_init(loop, &s->server);
        if (r < 0)
                return r;
        uv_timer_init(loop, &s->power_timer);
        s->power_timer.data = s;
        s->running = true;
        r = uv_tcp_bind(&s->server, (const struct sockaddr *)&addr, 0);
        if (r == 0)
                r = uv_listen((uv_stream_t *)&s->server, 16, on_connection);
        if (r == 0)
                r = uv_tcp_getsockname(&s->server, (struct sockaddr *)&bound, &len);
        if (r < 0) {
                bbt_pjlink_sim_stop(s);
                return r;
        }
        s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        return 0;
}

void bbt_pjlink_sim_drop_all(struct bbt_pjlink_sim *s)
{
        while (s->conns)
                conn_close(s->conns);
}

void bbt_pjlink_sim_stop(struct bbt_pjlink_sim *s)
{
        if (!s->running)
                return;
        s->running = false;
        bbt_pjlink_sim_drop_all(s);
        uv_close((uv_handle_t *)&s->server, NULL);
        uv_close((uv_handle_t *)&s->power_timer, NULL);
}
