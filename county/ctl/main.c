/* bbt-ctl: an operator's commands to terminals (power off, wake, projector,
 * set), to one terminal, a school or a list, with a table of results and an
 * audit row per command in the store (docs/operations.md, "bbt-ctl"). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <bbt/protocol.h>

#include "aggregator_config.h"
#include "bbt/base.h"
#include "bbt/broker_config.h"
#include "bbt/config.h"
#include "bbt/mqtt.h"
#include "neighbour.h"
#include "store.h"

#define EXIT_FAILED 1 /* some command failed or was not answered */
#define EXIT_USAGE 2  /* bad arguments, configuration, store or broker */
#define REPLY_TOPIC "bbt/v1/+/+/+/cmd/reply"

struct job {
        char county[7], school[BBT_ID_MAX + 1], terminal[BBT_ID_MAX + 1];
        char via[BBT_ID_MAX + 1]; /* who carries it out, when not the target (wake) */
        char args[513];
        char id[65];
        int64_t sent_ms;
        bool done;
        char result[16];
        char detail[1025];
};

struct ctl {
        struct bbt_aggregator_config cfg;
        struct bbt_store *store;
        uv_loop_t *loop;
        struct bbt_mqtt *mqtt;
        uv_timer_t timer;
        struct job *jobs;
        size_t n, cap, n_done;
        char op[33];           /* the protocol op */
        char label[600];       /* the command as the operator wrote it */
        char user[65];
        long long timeout_ms, expires_ms;
        int64_t start_ms;
        bool sent, dry_run, quiet;
        char connect_error[256];
};

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-ctl [OPTIONS] COMMAND [ARGS] TARGET...\n"
                "Sends commands to terminals through the broker with an operator's credentials, waits for\n"
                "their replies, prints a table of results and records each command in the store's audit table.\n"
                "\n"
                "Commands:\n"
                "  poweroff [--at TIME]      power off now, or once at TIME (RFC 3339 with offset, e.g.\n"
                "                            2026-12-07T18:00:00+08:00, or +DURATION from now: +30m)\n"
                "  wake                      Wake-on-LAN: an online terminal of the same school and IPv4\n"
                "                            subnet sends the magic packet for the target's MAC\n"
                "  projector on|off          switch the terminal's projector (PJLink)\n"
                "  set KEY=VALUE...          change agent settings (idle_timeout, heartbeat_interval: 30s, 5m);\n"
                "                            the agent checks, keeps and answers the effective values\n"
                "\n"
                "Targets: COUNTY/SCHOOL/TERMINAL (one terminal), COUNTY/SCHOOL (every terminal of the school\n"
                "the store knows), or -f FILE (one target a line, # comments; - for standard input).\n"
                "\n"
                "Options:\n"
                "  -c, --config FILE         aggregator configuration: [store] and [broker] (default "
                BBT_AGGREGATOR_CONFIG_PATH ")\n"
                "  -u, --user NAME           the operator's broker user name (overrides [broker] username)\n"
                "  -p, --password-file FILE  the operator's password file, e.g. bbt-provision's\n"
                "                            operators/NAME/operator.password (overrides [broker] password_file)\n"
                "  -o, --set SECTION.KEY=VALUE  override one configuration key (e.g. broker.tls_ca_file=...)\n"
                "  -f, --file FILE           read targets from FILE (- : standard input)\n"
                "      --at TIME             poweroff: when (see above)\n"
                "  -t, --timeout DURATION    how long to wait for each reply (default 10s)\n"
                "      --expires DURATION    after this the agent refuses the command (default 60s, at least\n"
                "                            the timeout)\n"
                "  -n, --dry-run             show the targets (and wake's neighbours); send nothing\n"
                "  -q, --quiet               no progress on standard error\n"
                "  -h, --help                this help\n"
                "  -V, --version             version\n"
                "\n"
                "Exit status: 0 every command succeeded; 1 some failed, were not answered or could not be\n"
                "sent (the broker unreachable or refusing the operator: not_sent rows); 2 a usage,\n"
                "configuration or store error, before anything was sent. See bbt-ctl(8).\n");
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
        va_list ap;

        fputs("bbt-ctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(EXIT_USAGE);
}

/* ---- targets ---- */

static struct job *job_add(struct ctl *c, const char *county, const char *school, const char *terminal)
{
        struct job *j;

        for (size_t i = 0; i < c->n; i++)
                if (!strcmp(c->jobs[i].county, county) && !strcmp(c->jobs[i].school, school) &&
                    !strcmp(c->jobs[i].terminal, terminal))
                        return NULL; /* named twice: once is enough */
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 32;
                struct job *p = realloc(c->jobs, cap * sizeof(*p));

                if (!p)
                        die("out of memory");
                c->jobs = p, c->cap = cap;
        }
        j = &c->jobs[c->n++];
        memset(j, 0, sizeof(*j));
        snprintf(j->county, sizeof(j->county), "%s", county);
        snprintf(j->school, sizeof(j->school), "%s", school);
        snprintf(j->terminal, sizeof(j->terminal), "%s", terminal);
        return j;
}

static int school_cb(void *u, const struct bbt_store_terminal_brief *t)
{
        job_add(u, t->county, t->school, t->terminal);
        return 0;
}

/* Adds TARGET (COUNTY/SCHOOL/TERMINAL or COUNTY/SCHOOL); WHERE names it in errors. */
static void target_add(struct ctl *c, const char *target, const char *where)
{
        char county[16] = "", school[64] = "", terminal[64] = "", extra[2] = "";
        int n = sscanf(target, "%15[^/]/%63[^/]/%63[^/]%1s", county, school, terminal, extra);
        size_t before = c->n;

        if (n < 2 || n > 3 || !bbt_county_valid(county) || !bbt_id_valid(school) ||
            (n == 3 && !bbt_id_valid(terminal)) || target[strlen(target) - 1] == '/')
                die("%s%s: expected COUNTY/SCHOOL/TERMINAL or COUNTY/SCHOOL (e.g. 510107/3151010001/r101)", where,
                    target);
        if (n == 3) {
                job_add(c, county, school, terminal);
                return;
        }
        {
                struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;

                scope.county = county, scope.school = school;
                if (bbt_store_terminals_brief_each_in(c->store, &scope, school_cb, c) < 0)
                        die("store: %s", bbt_store_error(c->store));
        }
        if (c->n == before)
                die("%s%s: the store knows no terminal of that school", where, target);
}

static void targets_from_file(struct ctl *c, const char *path)
{
        FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
        char line[256], where[300];
        int no = 0;

        if (!f)
                die("%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f)) {
                char *s = line, *e;

                no++;
                s += strspn(s, " \t");
                e = s + strcspn(s, "#\r\n");
                while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                *e = '\0';
                if (!*s)
                        continue;
                snprintf(where, sizeof(where), "%s:%d: ", strcmp(path, "-") ? path : "<stdin>", no);
                target_add(c, s, where);
        }
        if (ferror(f))
                die("%s: %s", path, strerror(errno));
        if (f != stdin)
                fclose(f);
}

/* ---- the command ---- */

/* TIME: RFC 3339 with an offset, or +DURATION from now. */
static int64_t parse_at(const char *s)
{
        int64_t ms;
        int off;

        if (s[0] == '+') {
                static const struct bbt_option opt = { .section = "", .name = "at", .type = BBT_OPT_DURATION,
                                                       .offset = 0, .min = 0, .max = 0 };
                long long d = 0;
                char err[200];

                if (bbt_config_set(&opt, 1, &d, "at", s + 1, err, sizeof(err)) < 0)
                        die("--at %s: %s", s, err);
                return wall_ms() + d;
        }
        if (bbt_rfc3339_parse(s, &ms, &off) < 0)
                die("--at %s: expected an RFC 3339 time with seconds and offset (2026-12-07T18:00:00+08:00) or "
                    "+DURATION (+30m)", s);
        return ms;
}

static long long parse_duration(const char *opt, const char *s)
{
        static const struct bbt_option o = { .section = "", .name = "d", .type = BBT_OPT_DURATION, .offset = 0,
                                             .min = 100, .max = 86400000 };
        long long d = 0;
        char err[200];

        if (bbt_config_set(&o, 1, &d, "d", s, err, sizeof(err)) < 0)
                die("%s %s: expected a duration from 100ms to 1d (10s, 2m)", opt, s);
        return d;
}

/* The set arguments KEY=VALUE... as a JSON object (values as strings: the agent parses durations). */
static void set_args(char *buf, size_t size, char **kv, int n)
{
        cJSON *o = cJSON_CreateObject();
        char *text;

        for (int i = 0; i < n; i++) {
                char *eq = strchr(kv[i], '=');
                char key[64];

                if (!eq || eq == kv[i] || (size_t)(eq - kv[i]) >= sizeof(key))
                        die("set: %s: expected KEY=VALUE (idle_timeout=5m)", kv[i]);
                snprintf(key, sizeof(key), "%.*s", (int)(eq - kv[i]), kv[i]);
                cJSON_AddStringToObject(o, key, eq + 1);
        }
        text = cJSON_PrintUnformatted(o);
        if (!text || strlen(text) >= size)
                die("set: the settings are too long");
        snprintf(buf, size, "%s", text);
        cJSON_free(text);
        cJSON_Delete(o);
}

/* ---- results and audit ---- */

static void audit(struct ctl *c, const struct job *j)
{
        struct bbt_store_audit a = { 0 };

        snprintf(a.cmd_id, sizeof(a.cmd_id), "%s", j->id);
        snprintf(a.operator_name, sizeof(a.operator_name), "%s", c->user);
        a.sent_ms = j->sent_ms ? j->sent_ms : wall_ms();
        a.done_ms = j->done ? wall_ms() : 0;
        snprintf(a.county, sizeof(a.county), "%s", j->county);
        snprintf(a.school, sizeof(a.school), "%s", j->school);
        snprintf(a.terminal, sizeof(a.terminal), "%s", j->terminal);
        snprintf(a.via, sizeof(a.via), "%s", j->via);
        snprintf(a.op, sizeof(a.op), "%s", c->op);
        snprintf(a.args, sizeof(a.args), "%s", j->args);
        snprintf(a.result, sizeof(a.result), "%s", j->done ? j->result : "pending");
        snprintf(a.detail, sizeof(a.detail), "%s", j->detail);
        if (bbt_store_audit_put(c->store, &a) < 0)
                fprintf(stderr, "bbt-ctl: cannot record command %s in the audit table: %s\n", j->id,
                        bbt_store_error(c->store));
}

static void finish(struct ctl *c, struct job *j, const char *result, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void finish(struct ctl *c, struct job *j, const char *result, const char *fmt, ...)
{
        va_list ap;

        if (j->done)
                return;
        j->done = true;
        snprintf(j->result, sizeof(j->result), "%s", result);
        va_start(ap, fmt);
        vsnprintf(j->detail, sizeof(j->detail), fmt, ap);
        va_end(ap);
        c->n_done++;
        if (c->store && j->id[0] && !c->dry_run)
                audit(c, j);
        if (!c->quiet)
                fprintf(stderr, "bbt-ctl: [%zu/%zu] %s/%s/%s %s: %s%s%s\n", c->n_done, c->n, j->county, j->school,
                        j->terminal, c->label, result, j->detail[0] ? ": " : "", j->detail);
}

static void print_table(const struct ctl *c)
{
        size_t w = strlen("terminal");

        for (size_t i = 0; i < c->n; i++) {
                size_t l = strlen(c->jobs[i].county) + strlen(c->jobs[i].school) + strlen(c->jobs[i].terminal) + 2;

                if (l > w)
                        w = l;
        }
        printf("%-*s  %-20s  %-8s  %-10s  %s\n", (int)w, "terminal", "command", "via", "result", "detail");
        for (size_t i = 0; i < c->n; i++) {
                const struct job *j = &c->jobs[i];
                char name[128];

                snprintf(name, sizeof(name), "%s/%s/%s", j->county, j->school, j->terminal);
                printf("%-*s  %-20s  %-8s  %-10s  %s\n", (int)w, name, c->label, j->via[0] ? j->via : "-",
                       c->dry_run && !j->done ? "dry-run" : j->result, c->dry_run && !j->done ? j->args : j->detail);
        }
}

/* ---- MQTT ---- */

static void stop(struct ctl *c)
{
        if (uv_is_closing((uv_handle_t *)&c->timer))
                return;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, NULL);
        if (c->mqtt) {
                bbt_mqtt_close(c->mqtt, NULL);
                c->mqtt = NULL;
        }
}

static void send_all(struct ctl *c)
{
        int64_t now = wall_ms();
        uint32_t boot = (uint32_t)getpid();

        if (bbt_store_begin(c->store) < 0)
                fprintf(stderr, "bbt-ctl: store: %s\n", bbt_store_error(c->store));
        for (size_t i = 0; i < c->n; i++) {
                struct job *j = &c->jobs[i];
                char topic[BBT_TOPIC_MAX], *text;
                struct bbt_topic t = { .channel = BBT_CH_CMD };
                cJSON *o;
                int r;

                if (j->done)
                        continue;
                snprintf(t.county, sizeof(t.county), "%s", j->county);
                snprintf(t.school, sizeof(t.school), "%s", j->school);
                snprintf(t.terminal, sizeof(t.terminal), "%s", j->via[0] ? j->via : j->terminal);
                bbt_topic_build(&t, topic, sizeof(topic));
                o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "v", 1);
                cJSON_AddNumberToObject(o, "seq", (double)(i + 1));
                cJSON_AddNumberToObject(o, "ts", (double)now);
                cJSON_AddNumberToObject(o, "boot", boot);
                cJSON_AddStringToObject(o, "id", j->id);
                cJSON_AddStringToObject(o, "op", c->op);
                cJSON_AddItemToObject(o, "args", cJSON_Parse(j->args));
                cJSON_AddNumberToObject(o, "expires", (double)(now + c->expires_ms));
                text = cJSON_PrintUnformatted(o);
                cJSON_Delete(o);
                j->sent_ms = now;
                r = text ? bbt_mqtt_publish(c->mqtt, topic, text, strlen(text), 1, false, NULL) : -ENOMEM;
                cJSON_free(text);
                audit(c, j);
                if (r < 0)
                        finish(c, j, "not_sent", "publish: %s", strerror(-r));
        }
        if (bbt_store_commit(c->store) < 0)
                fprintf(stderr, "bbt-ctl: store: %s\n", bbt_store_error(c->store));
        c->sent = true;
        c->start_ms = now;
}

static void on_connect(void *u, bool session_present)
{
        struct ctl *c = u;

        (void)session_present;
        if (!c->sent)
                send_all(c);
}

static void on_disconnect(void *u, int error, const char *reason)
{
        struct ctl *c = u;

        if (error && !c->sent)
                snprintf(c->connect_error, sizeof(c->connect_error), "%s", reason);
        if (error && (error == -EACCES || error == -EKEYREJECTED)) {
                /* Credentials or TLS: retrying will not help. */
                for (size_t i = 0; i < c->n; i++)
                        finish(c, &c->jobs[i], "not_sent", "broker: %s", reason);
                stop(c);
        }
}

static void on_message(void *u, const char *topic, const void *payload, size_t len, int qos, bool retain)
{
        struct ctl *c = u;
        struct bbt_topic t;
        struct bbt_msg m;
        struct bbt_error e;
        char err[300];

        (void)qos, (void)retain;
        if (bbt_topic_parse(topic, &t, NULL, 0) < 0 || t.channel != BBT_CH_CMD_REPLY)
                return;
        if (bbt_msg_decode(BBT_CH_CMD_REPLY, payload, len, &m, &e) < 0) {
                fprintf(stderr, "bbt-ctl: %s: a reply that does not decode: %s\n", topic,
                        bbt_error_format(&e, err, sizeof(err)));
                return;
        }
        for (size_t i = 0; i < c->n; i++) {
                struct job *j = &c->jobs[i];
                const char *from = j->via[0] ? j->via : j->terminal;
                char *result;

                if (j->done || strcmp(j->id, m.body.reply.id) || strcmp(t.county, j->county) ||
                    strcmp(t.school, j->school) || strcmp(t.terminal, from))
                        continue;
                result = m.body.reply.result_json ? cJSON_PrintUnformatted(m.body.reply.result_json) : NULL;
                if (m.body.reply.ok)
                        finish(c, j, "ok", "%s", result ? result : "");
                else
                        finish(c, j, "error", "%s", m.body.reply.error ? m.body.reply.error : "");
                cJSON_free(result);
                break;
        }
        bbt_msg_free(&m);
        if (c->n_done == c->n)
                stop(c);
}

static void on_tick(uv_timer_t *timer)
{
        struct ctl *c = timer->data;
        int64_t now = wall_ms();

        if (!c->sent) {
                if (now - c->start_ms < c->timeout_ms)
                        return;
                for (size_t i = 0; i < c->n; i++)
                        finish(c, &c->jobs[i], "not_sent", "no connection to the broker in %llds%s%s",
                               c->timeout_ms / 1000, c->connect_error[0] ? ": " : "", c->connect_error);
        } else {
                for (size_t i = 0; i < c->n; i++)
                        if (!c->jobs[i].done && now - c->jobs[i].sent_ms >= c->timeout_ms)
                                finish(c, &c->jobs[i], "timeout",
                                       "no reply in %.1fs (the agent refuses it after %.0fs: offline, or "
                                       "delivered late)",
                                       (double)c->timeout_ms / 1000, (double)c->expires_ms / 1000);
        }
        if (c->n_done == c->n)
                stop(c);
}

static void connect_and_run(struct ctl *c)
{
        struct bbt_mqtt_options o;
        struct bbt_mqtt_callbacks cbs = { .on_connect = on_connect, .on_disconnect = on_disconnect,
                                          .on_message = on_message };
        char password[512], err[512];
        int r;

        bbt_mqtt_options_init(&o);
        if ((r = bbt_broker_config_mqtt_options(&c->cfg.broker, password, sizeof(password), &o, err, sizeof(err))) < 0)
                die("%s", err);
        /* The broker takes the user name as the client id (bbt-provision's
         * broker configuration): a second bbt-ctl of the same operator takes
         * over the first's connection. */
        o.client_id = NULL;
        o.clean_session = true;
        o.connect_timeout_ms = (unsigned)c->timeout_ms;
        o.backoff_min_ms = 200;
        o.backoff_max_ms = 2000;
        r = bbt_mqtt_new(c->loop, &o, &cbs, c, &c->mqtt);
        explicit_bzero(password, sizeof(password));
        if (r < 0)
                die("broker: %s", strerror(-r));
        if ((r = bbt_mqtt_subscribe(c->mqtt, REPLY_TOPIC, 1)) < 0 || (r = bbt_mqtt_start(c->mqtt)) < 0)
                die("broker: %s", strerror(-r));
        c->start_ms = wall_ms();
        uv_timer_init(c->loop, &c->timer);
        c->timer.data = c;
        uv_timer_start(&c->timer, on_tick, 100, 100);
        uv_run(c->loop, UV_RUN_DEFAULT);
}

/* ---- main ---- */

/* The operator's name for audit rows and command ids: the broker user, or the login. */
static void operator_name(struct ctl *c)
{
        const char *u = c->cfg.broker.username;
        struct passwd *pw;

        if (!u || !*u)
                u = (pw = getpwuid(getuid())) ? pw->pw_name : "unknown";
        snprintf(c->user, sizeof(c->user), "%s", u);
}

int main(int argc, char **argv)
{
        enum { O_AT = 256, O_EXPIRES };
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'c' },   { "user", required_argument, NULL, 'u' },
                { "password-file", required_argument, NULL, 'p' }, { "set", required_argument, NULL, 'o' },
                { "file", required_argument, NULL, 'f' },     { "at", required_argument, NULL, O_AT },
                { "timeout", required_argument, NULL, 't' },  { "expires", required_argument, NULL, O_EXPIRES },
                { "dry-run", no_argument, NULL, 'n' },        { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },           { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        struct ctl c = { .timeout_ms = 10000, .expires_ms = 60000 };
        const char *config = NULL, *user = NULL, *password_file = NULL, *at = NULL, *cmd;
        const char **files = calloc((size_t)argc, sizeof(char *)), **sets = calloc((size_t)argc, sizeof(char *));
        size_t n_files = 0, n_sets = 0;
        bool expires_given = false;
        char err[600], idbase[64];
        int opt, argi, r, status = 0;

        if (!files || !sets)
                die("out of memory");
        while ((opt = getopt_long(argc, argv, "c:u:p:o:f:t:nqhV", longopts, NULL)) != -1) {
                switch (opt) {
                case 'c': config = optarg; break;
                case 'u': user = optarg; break;
                case 'p': password_file = optarg; break;
                case 'o': sets[n_sets++] = optarg; break;
                case 'f': files[n_files++] = optarg; break;
                case O_AT: at = optarg; break;
                case 't': c.timeout_ms = parse_duration("--timeout", optarg); break;
                case O_EXPIRES: c.expires_ms = parse_duration("--expires", optarg), expires_given = true; break;
                case 'n': c.dry_run = true; break;
                case 'q': c.quiet = true; break;
                case 'h': usage(stdout); return 0;
                case 'V': printf("bbt-ctl %s (store schema %d)\n", BBT_VERSION, BBT_STORE_SCHEMA_VERSION); return 0;
                default: usage(stderr); return EXIT_USAGE;
                }
        }
        if (!expires_given && c.expires_ms < c.timeout_ms)
                c.expires_ms = c.timeout_ms;
        if (c.expires_ms < c.timeout_ms)
                die("--expires must be at least --timeout: a command must not run after it was given up");
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        cmd = argv[optind];
        argi = optind + 1;
        {
                char args[513] = "{}";

                if (!strcmp(cmd, "poweroff")) {
                        snprintf(c.op, sizeof(c.op), "shutdown_at");
                        snprintf(args, sizeof(args), "{\"at\":%lld}", (long long)(at ? parse_at(at) : wall_ms()));
                        snprintf(c.label, sizeof(c.label), "poweroff%s%s", at ? " --at " : "", at ? at : "");
                } else if (!strcmp(cmd, "wake")) {
                        snprintf(c.op, sizeof(c.op), "wake");
                        snprintf(c.label, sizeof(c.label), "wake");
                } else if (!strcmp(cmd, "projector")) {
                        const char *v = argi < argc ? argv[argi++] : "";

                        if (strcmp(v, "on") && strcmp(v, "off"))
                                die("projector: expected on or off");
                        snprintf(c.op, sizeof(c.op), "projector_power");
                        snprintf(args, sizeof(args), "{\"on\":%s}", !strcmp(v, "on") ? "true" : "false");
                        snprintf(c.label, sizeof(c.label), "projector %s", v);
                } else if (!strcmp(cmd, "set")) {
                        int first = argi;

                        while (argi < argc && strchr(argv[argi], '=') && !strchr(argv[argi], '/'))
                                argi++;
                        if (argi == first)
                                die("set: expected KEY=VALUE... (idle_timeout=5m heartbeat_interval=30s)");
                        set_args(args, sizeof(args), argv + first, argi - first);
                        snprintf(c.op, sizeof(c.op), "set");
                        snprintf(c.label, sizeof(c.label), "set %s", args);
                } else {
                        die("unknown command %s (poweroff, wake, projector, set; see --help)", cmd);
                }
                if (at && strcmp(cmd, "poweroff"))
                        die("--at is for poweroff only");
                if (!config && access(BBT_AGGREGATOR_CONFIG_PATH, F_OK) == 0)
                        config = BBT_AGGREGATOR_CONFIG_PATH;
                r = config ? bbt_aggregator_config_load(config, &c.cfg, err, sizeof(err))
                           : bbt_aggregator_config_defaults(&c.cfg);
                if (r < 0)
                        die("%s", config ? err : "cannot set the configuration's defaults");
                if (user && bbt_aggregator_config_set(&c.cfg, "broker.username", user, err, sizeof(err)) < 0)
                        die("--user: %s", err);
                if (password_file &&
                    bbt_aggregator_config_set(&c.cfg, "broker.password_file", password_file, err, sizeof(err)) < 0)
                        die("--password-file: %s", err);
                for (size_t i = 0; i < n_sets; i++) {
                        char key[128];
                        const char *eq = strchr(sets[i], '=');

                        if (!eq || (size_t)(eq - sets[i]) >= sizeof(key))
                                die("--set %s: expected SECTION.KEY=VALUE", sets[i]);
                        snprintf(key, sizeof(key), "%.*s", (int)(eq - sets[i]), sets[i]);
                        if (bbt_aggregator_config_set(&c.cfg, key, eq + 1, err, sizeof(err)) < 0)
                                die("--set: %s", err);
                }
                {
                        const char *k, *w;

                        if (bbt_broker_config_check(&c.cfg.broker, &k, &w) < 0)
                                die("%s: %s", k, w);
                }
                if (!c.cfg.store_path)
                        die("no store: set [store] path in %s (or --set store.path=...)",
                            config ? config : BBT_AGGREGATOR_CONFIG_PATH);
                operator_name(&c);
                /* The audit rows are written into the store: open it for writing
                 * unless nothing is sent. */
                if ((r = bbt_store_open(c.cfg.store_path, c.dry_run, &c.store, err, sizeof(err))) < 0)
                        die("store %s: %s", c.cfg.store_path, err);
                for (; argi < argc; argi++)
                        target_add(&c, argv[argi], "");
                for (size_t i = 0; i < n_files; i++)
                        targets_from_file(&c, files[i]);
                if (!c.n)
                        die("no target: name COUNTY/SCHOOL/TERMINAL, COUNTY/SCHOOL or -f FILE");
                {
                        /* ctl-<user>-<time>-<n>: unique per operator, time and command. */
                        char safe[24];
                        size_t k = 0;

                        for (const char *p = c.user; *p && k < sizeof(safe) - 1; p++)
                                safe[k++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                                   (*p >= '0' && *p <= '9') || *p == '_' ? *p : '_');
                        safe[k] = '\0';
                        snprintf(idbase, sizeof(idbase), "ctl-%s-%lld", safe, (long long)wall_ms());
                }
                for (size_t i = 0; i < c.n; i++) {
                        struct job *j = &c.jobs[i];

                        snprintf(j->id, sizeof(j->id), "%.44s-%u", idbase, (unsigned)((i + 1) % 10000000u));
                        snprintf(j->args, sizeof(j->args), "%s", args);
                        if (!strcmp(c.op, "wake")) {
                                struct bbt_ctl_wake w;
                                char why[300];

                                r = bbt_ctl_pick_neighbour(c.store, j->county, j->school, j->terminal, &w, why,
                                                           sizeof(why));
                                if (r == -ENOENT) {
                                        if (!c.dry_run)
                                                j->sent_ms = wall_ms();
                                        finish(&c, j, "not_sent", "%s", why);
                                        continue;
                                }
                                if (r < 0)
                                        die("%s", why);
                                snprintf(j->via, sizeof(j->via), "%s", w.via);
                                snprintf(j->args, sizeof(j->args), "{\"mac\":\"%s\"}", w.mac);
                        }
                }
        }
        if (c.dry_run) {
                c.quiet = true;
                print_table(&c);
                goto out;
        }
        c.loop = uv_default_loop();
        if (c.n_done < c.n)
                connect_and_run(&c);
        print_table(&c);
        for (size_t i = 0; i < c.n; i++)
                if (strcmp(c.jobs[i].result, "ok"))
                        status = EXIT_FAILED;
        uv_loop_close(c.loop);
out:
        bbt_store_close(c.store);
        bbt_aggregator_config_free(&c.cfg);
        free(c.jobs);
        free(files);
        free(sets);
        return status;
}
