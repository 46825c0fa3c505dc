/* The county broker's security, end to end: the shipped broker-config with the files bbt-provision makes, on a real mosquitto, each threat its own case. */
/* bbt-test: label=integration timeout=90 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mosquitto.h>

#include "bbt/protocol.h"
#include "bbt/base.h"
#include "broker.h"
#include "daemon.h"
#include "store.h"
#include "tcp-proxy.h"
#include "test.h"

/*
 * Every case runs in a private temporary directory: bbt-provision makes the
 * credentials, ACL, certificates and bundles for a small registry, and
 * mosquitto runs with broker-config/mosquitto-county.conf exactly as shipped
 * except for its paths (/etc/mosquitto/bbt/ -> the broker's directory) and its
 * ports (free loopback ports). The clients are libmosquitto clients of this
 * process over TLS, checking the broker's certificate and host name. The
 * registry has the same terminal ID, r101, in two schools.
 *
 * Observers use different user names (the aggregator, an operator): on a
 * broker where the client id is the user name, two connections with one user
 * name take over each other, which is the point.
 */

#define COUNTY "510107"
#define SCHOOL_A "3151010001"
#define SCHOOL_B "3151010002"
#define USER_A COUNTY "/" SCHOOL_A "/r101" /* terminal A */
#define USER_B COUNTY "/" SCHOOL_A "/r102" /* terminal B, same school */
#define USER_C COUNTY "/" SCHOOL_B "/r101" /* terminal C: A's terminal ID in another school */
#define TOPIC(user, ch) "bbt/v1/" user "/" ch
#define AGGREGATOR "bbt-aggregator"
#define OPERATOR "ops"
#define MAX_CLIENTS 16
#define MAX_MSGS 512

static struct {
        const char *dir;
        char schools[400], terminals[400], out[400], provision_log[400];
        struct bbt_test_broker county;
        int tls_port, cert_port;
        const char *out_dir; /* the output directory of the last provision() */
} env;

/* ---- set-up ---- */

static void write_registry(bool with_b)
{
        bbt_test_write_file(env.schools, "county_code,school_code,school_name,type,area,students\n"
                                         COUNTY "," SCHOOL_A ",一小,primary,urban,800\n"
                                         COUNTY "," SCHOOL_B ",二小,primary,rural,300\n");
        bbt_test_write_file(env.terminals, with_b ? "school_code,terminal_id,room\n" SCHOOL_A ",r101,一年级(1)班\n"
                                                    SCHOOL_A ",r102,一年级(2)班\n" SCHOOL_B ",r101,一年级(1)班\n"
                                                  : "school_code,terminal_id,room\n" SCHOOL_A ",r101,一年级(1)班\n"
                                                    SCHOOL_B ",r101,一年级(1)班\n");
}

static void setup(void)
{
        env.dir = bbt_test_tmp_init("broker-security");
        snprintf(env.schools, sizeof(env.schools), "%s/schools.csv", env.dir);
        snprintf(env.terminals, sizeof(env.terminals), "%s/terminals.csv", env.dir);
        snprintf(env.out, sizeof(env.out), "%s/out", env.dir);
        snprintf(env.provision_log, sizeof(env.provision_log), "%s/provision.log", env.dir);
        env.tls_port = bbt_test_free_port();
        env.cert_port = bbt_test_free_port();
        while (env.cert_port == env.tls_port)
                env.cert_port = bbt_test_free_port();
        write_registry(true);
        bbt_test_dump_on_failure(env.provision_log);
}

/* Runs bbt-provision on the registry into OUT (NULL: env.out) with the test's
 * broker names and ports and the NULL-terminated EXTRA arguments. */
static void provision_into(const char *out, const char *const *extra)
{
        char exe[512], tls[16], cert[16];
        const char *argv[40] = { bbt_test_exe("tools/provision", "bbt-provision", exe, sizeof(exe)),
                                 "-o", out ? out : env.out, "-s", env.schools, "-t", env.terminals,
                                 "--broker", "127.0.0.1", "--broker", "localhost", "--port", tls,
                                 "--cert-port", cert, "--operator", OPERATOR };
        size_t n = 0;
        int status;

        snprintf(tls, sizeof(tls), "%d", env.tls_port);
        snprintf(cert, sizeof(cert), "%d", env.cert_port);
        while (argv[n])
                n++;
        for (; extra && *extra && n < 38; extra++)
                argv[n++] = *extra;
        argv[n] = NULL;
        status = bbt_test_run((char *const *)argv, env.provision_log, env.provision_log, 30000);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                FAIL("bbt-provision: %s", bbt_test_status_text(status));
        env.out_dir = out ? out : env.out;
}

static void provision(const char *const *extra)
{
        provision_into(NULL, extra);
}

/* OUT/REL, read whole (malloc'ed). */
static char *out_file(const char *rel)
{
        char path[600];

        snprintf(path, sizeof(path), "%s/%s", env.out_dir, rel);
        return bbt_test_slurp(path);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
        char *text = bbt_test_slurp(from);
        int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        if (fd < 0)
                FAIL("open %s: %s", to, strerror(errno));
        if (!*text)
                FAIL("%s: empty or missing", from);
        if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fchmod(fd, mode) < 0)
                FAIL("write %s: %s", to, strerror(errno));
        close(fd);
        free(text);
}

/* What docs/deploy.md does: the files of DIR/broker into the broker's /etc/mosquitto/bbt/. */
static void install_broker_files(struct bbt_test_broker *b, const char *from_dir)
{
        static const char *const files[] = { "ca.crt", "broker.crt", "broker.key", "passwd", "acl", "crl.pem" };
        const char *dir = bbt_test_broker_dir(b);

        for (size_t i = 0; i < BBT_ELEMENTSOF(files); i++) {
                char from[600], to[600];

                snprintf(from, sizeof(from), "%s/%s", from_dir, files[i]);
                snprintf(to, sizeof(to), "%s/%s", dir, files[i]);
                copy_file(from, to, 0640);
        }
}

/* TEXT with the one occurrence of OLD replaced by NEW (fails if OLD is missing
 * or repeated: a change to the shipped file must not go untested). */
static char *replace_once(char *text, const char *old, const char *new_text)
{
        char *at = strstr(text, old), *out;
        size_t len;

        if (!at || strstr(at + 1, old))
                FAIL("the configuration has %s \"%s\"", at ? "more than one" : "no", old);
        len = strlen(text) - strlen(old) + strlen(new_text) + 1;
        out = malloc(len);
        snprintf(out, len, "%.*s%s%s", (int)(at - text), text, new_text, at + strlen(old));
        free(text);
        return out;
}

static char *replace_all(char *text, const char *old, const char *new_text)
{
        size_t n = 0, len, at = 0;
        char *out;

        for (const char *p = text; (p = strstr(p, old)); p += strlen(old))
                n++;
        if (!n)
                FAIL("the configuration has no \"%s\"", old);
        len = strlen(text) + n * strlen(new_text) + 1;
        out = malloc(len);
        for (const char *p = text, *q; p; p = q ? q + strlen(old) : NULL) {
                q = strstr(p, old);
                at += (size_t)snprintf(out + at, len - at, "%.*s%s", q ? (int)(q - p) : (int)strlen(p), p,
                                       q ? new_text : "");
        }
        free(text);
        return out;
}

/* broker-config/mosquitto-county.conf with the test's paths and ports. */
static char *county_conf(void)
{
        char path[600], line[64];
        char *text;

        snprintf(path, sizeof(path), "%s/../broker-config/mosquitto-county.conf", bbt_test_srcdir());
        text = bbt_test_slurp(path);
        if (!*text)
                FAIL("%s: missing", path);
        text = replace_all(text, "/etc/mosquitto/bbt/", "@DIR@/");
        text = replace_once(text, "\nlistener 1883 127.0.0.1\n", "\nlistener @PORT@ 127.0.0.1\n");
        snprintf(line, sizeof(line), "\nlistener %d 127.0.0.1\n", env.tls_port);
        text = replace_once(text, "\nlistener 8883\n", line);
        snprintf(line, sizeof(line), "\nlistener %d 127.0.0.1\n", env.cert_port);
        text = replace_once(text, "\nlistener 8884\n", line);
        return text;
}

/* The county broker with the last provision()'s files. */
static void county_start(void)
{
        char from[600], log[600];
        char *conf = county_conf();

        snprintf(from, sizeof(from), "%s/broker", env.out_dir);
        install_broker_files(&env.county, from);
        bbt_test_broker_start_conf(&env.county, conf);
        free(conf);
        snprintf(log, sizeof(log), "%s/mosquitto.log", env.county.dir);
        bbt_test_dump_on_failure(log);
}

/* Installs the files of a new provision() run and reloads, as an operator would. */
static void county_reload(void)
{
        char from[600];

        snprintf(from, sizeof(from), "%s/broker", env.out_dir);
        install_broker_files(&env.county, from);
        bbt_test_broker_reload(&env.county);
}

/* ---- clients ---- */

struct client {
        struct mosquitto *m;
        const char *label;
        int connack;          /* -1 until the CONNACK */
        bool session_present;
        int connects, disconnects;
        int n_msgs;
        char msgs[MAX_MSGS][160]; /* "topic payload" */
        int subacks;
        int loop_rc;          /* the last mosquitto_loop() result */
};

static struct client *clients[MAX_CLIENTS];
static int n_clients;

static void on_connect_cb(struct mosquitto *m, void *ud, int rc, int flags)
{
        struct client *c = ud;

        (void)m;
        c->connack = rc;
        c->session_present = flags & 1;
        if (rc == 0)
                c->connects++;
}

static void on_disconnect_cb(struct mosquitto *m, void *ud, int rc)
{
        struct client *c = ud;

        (void)m;
        (void)rc;
        c->disconnects++;
}

static void on_message_cb(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
        struct client *c = ud;

        (void)m;
        if (c->n_msgs < MAX_MSGS)
                snprintf(c->msgs[c->n_msgs++], sizeof(c->msgs[0]), "%s %.*s", msg->topic, msg->payloadlen,
                         (const char *)msg->payload);
}

static void on_subscribe_cb(struct mosquitto *m, void *ud, int mid, int n, const int *qos)
{
        (void)m, (void)mid, (void)n, (void)qos;
        ((struct client *)ud)->subacks++;
}

struct creds {
        const char *user;
        char password[128];                /* the text, not a file; "" for none */
        const char *cafile;                /* NULL: plain MQTT */
        const char *certfile, *keyfile;
};

/* A client LABEL with client id ID (NULL: none), not yet connected. */
static void client_init(struct client *c, const char *label, const char *id, bool clean, const struct creds *cr)
{
        static bool lib_ready;

        if (!lib_ready) {
                mosquitto_lib_init();
                lib_ready = true;
        }
        for (int i = 0; i < n_clients; i++)
                if (clients[i] == c)
                        FAIL("%s: client_init on a client still open (%s)", label, c->label);
        memset(c, 0, sizeof(*c));
        c->label = label;
        c->connack = -1;
        c->m = mosquitto_new(id, clean, c);
        if (!c->m)
                FAIL("mosquitto_new: %s", strerror(errno));
        mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        if (cr->user)
                ASSERT_EQ(mosquitto_username_pw_set(c->m, cr->user, cr->password[0] ? cr->password : NULL),
                          MOSQ_ERR_SUCCESS);
        if (cr->cafile)
                ASSERT_EQ(mosquitto_tls_set(c->m, cr->cafile, NULL, cr->certfile, cr->keyfile, NULL),
                          MOSQ_ERR_SUCCESS);
        mosquitto_connect_with_flags_callback_set(c->m, on_connect_cb);
        mosquitto_disconnect_callback_set(c->m, on_disconnect_cb);
        mosquitto_message_callback_set(c->m, on_message_cb);
        mosquitto_subscribe_callback_set(c->m, on_subscribe_cb);
        if (n_clients == MAX_CLIENTS)
                FAIL("too many clients");
        clients[n_clients++] = c;
}

/* One round of network work for every client (up to 5 ms each). */
static void pump(void)
{
        for (int i = 0; i < n_clients; i++)
                if (clients[i]->m)
                        clients[i]->loop_rc = mosquitto_loop(clients[i]->m, 5, 1);
}

#define WAIT(cond, ms, ...) BBT_WAIT_STEP(cond, ms, pump(), __VA_ARGS__)

static void pump_for(int ms)
{
        uint64_t end = bbt_test_now_ms() + (uint64_t)ms;

        while (bbt_test_now_ms() < end)
                pump();
}

/* Connects to 127.0.0.1:PORT; returns the CONNACK code (0 accepted, 5 not
 * authorised), or -1 when the TCP or TLS connection itself failed. */
static int client_connect_within(struct client *c, int port, int timeout_ms)
{
        int rc;

        c->connack = -1;
        rc = mosquitto_connect(c->m, "127.0.0.1", port, 30);
        if (rc != MOSQ_ERR_SUCCESS)
                return -1;
        {
                uint64_t end = bbt_test_now_ms() + (uint64_t)timeout_ms;
                int disc = c->disconnects;

                c->loop_rc = MOSQ_ERR_SUCCESS;
                /* A failed TLS handshake ends the loop with an error and no callback. */
                while (c->connack < 0 && c->disconnects == disc && c->loop_rc == MOSQ_ERR_SUCCESS &&
                       bbt_test_now_ms() < end)
                        pump();
        }
        return c->connack;
}

static int client_connect(struct client *c, int port)
{
        return client_connect_within(c, port, 5000);
}

static void client_connect_ok(struct client *c, int port)
{
        int rc = client_connect(c, port);

        if (rc != 0)
                FAIL("%s: connection to port %d refused (%d: %s)", c->label, port, rc,
                     rc > 0 ? mosquitto_connack_string(rc) : "no TCP/TLS connection");
}

static void client_close(struct client *c)
{
        for (int i = 0; i < n_clients; i++)
                if (clients[i] == c)
                        clients[i] = clients[--n_clients];
        if (c->m) {
                mosquitto_disconnect(c->m);
                mosquitto_loop(c->m, 5, 1);
                mosquitto_destroy(c->m);
        }
        c->m = NULL;
}

static void subscribe(struct client *c, const char *pattern)
{
        int subacks = c->subacks;

        ASSERT_EQ(mosquitto_subscribe(c->m, NULL, pattern, 1), MOSQ_ERR_SUCCESS);
        WAIT(c->subacks > subacks, 5000, "%s: no SUBACK for %s", c->label, pattern);
}

static void publish(struct client *c, const char *topic, const char *payload, bool retain)
{
        ASSERT_EQ(mosquitto_publish(c->m, NULL, topic, (int)strlen(payload), payload, 1, retain), MOSQ_ERR_SUCCESS);
        pump();
}

static bool has_msg(const struct client *c, const char *topic, const char *payload)
{
        char want[160];

        snprintf(want, sizeof(want), "%s %s", topic, payload);
        for (int i = 0; i < c->n_msgs; i++)
                if (strcmp(c->msgs[i], want) == 0)
                        return true;
        return false;
}

static int count_msgs(const struct client *c, const char *needle)
{
        int n = 0;

        for (int i = 0; i < c->n_msgs; i++)
                n += strstr(c->msgs[i], needle) != NULL;
        return n;
}

static void dump_msgs(const struct client *c)
{
        fprintf(stderr, "%s received %d message(s):\n", c->label, c->n_msgs);
        for (int i = 0; i < c->n_msgs; i++)
                fprintf(stderr, "  %s\n", c->msgs[i]);
}

/* ---- credentials from the bundles ---- */

static char cafile[600];

/* The first line of OUT/REL into BUF. */
static void secret(const char *rel, char *buf, size_t size)
{
        char *text = out_file(rel);

        text[strcspn(text, "\n")] = '\0';
        if (!*text)
                FAIL("%s/%s: no secret", env.out_dir, rel);
        snprintf(buf, size, "%s", text);
        free(text);
}

/* A terminal's password from its bundle, into BUF. */
static void terminal_secret(const char *school, const char *terminal, char *buf, size_t size)
{
        char rel[200];

        snprintf(rel, sizeof(rel), "terminals/" COUNTY "-%s/%s/agent.password", school, terminal);
        secret(rel, buf, size);
}

static void terminal_creds(struct creds *cr, const char *user, const char *school, const char *terminal)
{
        snprintf(cafile, sizeof(cafile), "%s/broker/ca.crt", env.out_dir);
        *cr = (struct creds){ .user = user, .cafile = cafile };
        terminal_secret(school, terminal, cr->password, sizeof(cr->password));
}

/* The aggregator (plain MQTT on loopback, as it runs beside the broker) or an operator (TLS). */
static void account_creds(struct creds *cr, const char *kind, const char *name, bool tls)
{
        char rel[200];

        snprintf(cafile, sizeof(cafile), "%s/broker/ca.crt", env.out_dir);
        snprintf(rel, sizeof(rel), "%ss/%s/%s.password", kind, name, kind);
        *cr = (struct creds){ .user = name, .cafile = tls ? cafile : NULL };
        secret(rel, cr->password, sizeof(cr->password));
}

/* An observer that reads everything: the aggregator on loopback. */
static void aggregator_open(struct client *c, bool clean)
{
        struct creds cr;

        account_creds(&cr, "aggregator", AGGREGATOR, false);
        client_init(c, "aggregator", AGGREGATOR, clean, &cr);
        client_connect_ok(c, bbt_test_broker_port(&env.county));
        subscribe(c, "bbt/v1/#");
}

static void terminal_open(struct client *c, const char *label, const char *id, const char *user, const char *school,
                          const char *terminal)
{
        struct creds cr;

        terminal_creds(&cr, user, school, terminal);
        client_init(c, label, id, true, &cr);
        client_connect_ok(c, env.tls_port);
}

static void finish(void)
{
        while (n_clients)
                client_close(clients[n_clients - 1]);
        mosquitto_lib_cleanup();
        bbt_test_broker_stop(&env.county);
        bbt_test_passed();
}

/* ---- the cases ---- */

/* A terminal publishing under B's topics (or C's, its own ID in another
 * school; or commands to itself) is neither delivered to the aggregator nor
 * kept as a retained message; its own messages are. */
TEST(terminal_publishes_only_as_itself)
{
        struct client agg, a, late;
        struct creds cr;

        setup();
        provision(NULL);
        county_start();
        aggregator_open(&agg, true);
        terminal_open(&a, "A", "bbt-" COUNTY "-" SCHOOL_A "-r101", USER_A, SCHOOL_A, "r101");
        publish(&a, TOPIC(USER_B, "hb"), "forged-hb-for-B", false);
        publish(&a, TOPIC(USER_B, "state"), "forged-state-for-B", true);
        publish(&a, TOPIC(USER_C, "usage"), "forged-usage-for-C", false);
        publish(&a, TOPIC(USER_C, "state"), "forged-state-for-C", true);
        publish(&a, TOPIC(USER_A, "cmd"), "forged-command", false);
        publish(&a, "$SYS/broker/forged", "sys", false);
        publish(&a, TOPIC(USER_A, "state"), "own-state", true);
        publish(&a, TOPIC(USER_A, "cmd/reply"), "own-reply", false);
        publish(&a, TOPIC(USER_A, "hb"), "own-hb-last", false);
        /* QoS 1 in order on one connection: once the last is there, every
         * earlier message that was going to be delivered has been. */
        WAIT(has_msg(&agg, TOPIC(USER_A, "hb"), "own-hb-last"), 5000, "A's own heartbeat was not delivered");
        pump_for(200);
        if (count_msgs(&agg, "forged") || count_msgs(&agg, "sys") ||
            !has_msg(&agg, TOPIC(USER_A, "state"), "own-state") || !has_msg(&agg, TOPIC(USER_A, "cmd/reply"), "own-reply")) {
                dump_msgs(&agg);
                FAIL("the aggregator saw a forged message, or missed one of A's own");
        }
        /* Nothing forged was stored as retained: a new subscriber gets A's own state only. */
        account_creds(&cr, "operator", OPERATOR, true);
        client_init(&late, "late", OPERATOR, true, &cr);
        client_connect_ok(&late, env.tls_port);
        subscribe(&late, "bbt/v1/+/+/+/state");
        WAIT(has_msg(&late, TOPIC(USER_A, "state"), "own-state"), 5000, "A's retained state is not kept");
        pump_for(300);
        if (late.n_msgs != 1) {
                dump_msgs(&late);
                FAIL("a forged state was kept as retained");
        }
        finish();
}

/* A connecting with B's client id (the agent's form, or B's user name) does
 * not disconnect B, and does not make the broker publish B's will. */
TEST(terminal_cannot_take_over_another_terminals_session)
{
        struct client agg, a1, a2, b;
        struct creds cr;

        setup();
        provision(NULL);
        county_start();
        aggregator_open(&agg, true);
        terminal_creds(&cr, USER_B, SCHOOL_A, "r102");
        client_init(&b, "B", "bbt-" COUNTY "-" SCHOOL_A "-r102", true, &cr);
        ASSERT_EQ(mosquitto_will_set(b.m, TOPIC(USER_B, "state"), 8, "B-offline", 1, true), MOSQ_ERR_SUCCESS);
        client_connect_ok(&b, env.tls_port);
        terminal_open(&a1, "A with B's client id", "bbt-" COUNTY "-" SCHOOL_A "-r102", USER_A, SCHOOL_A, "r101");
        client_close(&a1);
        terminal_open(&a2, "A with B's user name as id", USER_B, USER_A, SCHOOL_A, "r101");
        pump_for(500);
        ASSERT_EQ(b.disconnects, 0);
        ASSERT_EQ(count_msgs(&agg, "B-offline"), 0);
        publish(&b, TOPIC(USER_B, "hb"), "B-still-here", false);
        WAIT(has_msg(&agg, TOPIC(USER_B, "hb"), "B-still-here"), 5000, "B's heartbeat after A's attempts");
        /* A's own session is what A took: its messages are A's. */
        publish(&a2, TOPIC(USER_A, "hb"), "A-as-itself", false);
        WAIT(has_msg(&agg, TOPIC(USER_A, "hb"), "A-as-itself"), 5000, "A's heartbeat");
        ASSERT_EQ(b.disconnects, 0);
        finish();
}

/* A connecting with the aggregator's client id, clean session, neither
 * disconnects the aggregator nor wipes its persistent session: the messages
 * queued for it while it was away are all delivered when it comes back. */
TEST(terminal_cannot_take_over_the_aggregators_session)
{
        struct client agg, a, a_again;
        char payload[32];

        setup();
        provision(NULL);
        county_start();
        aggregator_open(&agg, false);
        /* While connected: A with the aggregator's id does not push it off. */
        terminal_open(&a, "A as bbt-aggregator", AGGREGATOR, USER_A, SCHOOL_A, "r101");
        pump_for(300);
        ASSERT_EQ(agg.disconnects, 0);
        publish(&a, TOPIC(USER_A, "hb"), "while-connected", false);
        WAIT(has_msg(&agg, TOPIC(USER_A, "hb"), "while-connected"), 5000, "the aggregator lost its subscription");
        /* Away: messages queue in its session. */
        client_close(&agg);
        for (int i = 0; i < 20; i++) {
                snprintf(payload, sizeof(payload), "queued-%02d", i);
                publish(&a, TOPIC(USER_A, "hb"), payload, false);
        }
        pump_for(200);
        client_close(&a);
        /* A tries again to take the session, clean, then leaves. */
        terminal_open(&a_again, "A as bbt-aggregator, clean", AGGREGATOR, USER_A, SCHOOL_A, "r101");
        pump_for(200);
        client_close(&a_again);
        {
                struct creds cr;
                struct client back;

                account_creds(&cr, "aggregator", AGGREGATOR, false);
                client_init(&back, "aggregator back", AGGREGATOR, false, &cr);
                client_connect_ok(&back, bbt_test_broker_port(&env.county));
                ASSERT(back.session_present);
                WAIT(count_msgs(&back, "queued-") == 20, 5000, "the aggregator got %d of its 20 queued messages",
                     count_msgs(&back, "queued-"));
                client_close(&back);
        }
        finish();
}

/* A terminal subscribed to everything receives its own commands only: not
 * B's commands, not anyone's telemetry. */
TEST(terminal_reads_only_its_own_commands)
{
        struct client ops, a, b;
        struct creds cr;

        setup();
        provision(NULL);
        county_start();
        terminal_open(&a, "A", NULL, USER_A, SCHOOL_A, "r101");
        subscribe(&a, "bbt/v1/#");
        subscribe(&a, TOPIC(USER_B, "cmd"));
        subscribe(&a, "#");
        subscribe(&a, TOPIC(USER_A, "cmd"));
        terminal_open(&b, "B", NULL, USER_B, SCHOOL_A, "r102");
        subscribe(&b, TOPIC(USER_B, "cmd"));
        account_creds(&cr, "operator", OPERATOR, true);
        client_init(&ops, "operator", NULL, true, &cr);
        client_connect_ok(&ops, env.tls_port);
        publish(&b, TOPIC(USER_B, "hb"), "B-telemetry", false);
        publish(&ops, TOPIC(USER_B, "cmd"), "command-for-B", false);
        publish(&ops, TOPIC(USER_C, "cmd"), "command-for-C", false);
        publish(&ops, TOPIC(USER_A, "cmd"), "command-for-A", false);
        WAIT(has_msg(&a, TOPIC(USER_A, "cmd"), "command-for-A"), 5000, "A did not get its own command");
        WAIT(has_msg(&b, TOPIC(USER_B, "cmd"), "command-for-B"), 5000, "B did not get its own command");
        pump_for(300);
        if (a.n_msgs != 1) {
                dump_msgs(&a);
                FAIL("A received more than its own command");
        }
        /* A terminal cannot send commands either: B never gets A's. */
        publish(&a, TOPIC(USER_B, "cmd"), "A-commands-B", false);
        publish(&ops, TOPIC(USER_B, "cmd"), "second-for-B", false);
        WAIT(has_msg(&b, TOPIC(USER_B, "cmd"), "second-for-B"), 5000, "B's second command");
        ASSERT_EQ(count_msgs(&b, "A-commands-B"), 0);
        finish();
}

/* --acl explicit (for a broker that substitutes %u only as a whole topic
 * level) gives the same rights as the patterns. */
TEST(explicit_acl_gives_the_same_rights)
{
        static const char *const explicit_acl[] = { "--acl", "explicit", NULL };
        struct client agg, ops, a;

        setup();
        provision(explicit_acl);
        county_start();
        aggregator_open(&agg, true);
        terminal_open(&a, "A", NULL, USER_A, SCHOOL_A, "r101");
        subscribe(&a, "bbt/v1/#");
        {
                struct creds cr;

                account_creds(&cr, "operator", OPERATOR, true);
                client_init(&ops, "operator", NULL, true, &cr);
                client_connect_ok(&ops, env.tls_port);
        }
        publish(&a, TOPIC(USER_B, "hb"), "forged-hb-for-B", false);
        publish(&a, TOPIC(USER_C, "hb"), "forged-hb-for-C", false);
        publish(&a, TOPIC(USER_A, "cmd"), "forged-command", false);
        publish(&ops, TOPIC(USER_B, "cmd"), "command-for-B", false);
        publish(&ops, TOPIC(USER_A, "cmd"), "command-for-A", false);
        publish(&a, TOPIC(USER_A, "hb"), "own-hb-last", false);
        WAIT(has_msg(&agg, TOPIC(USER_A, "hb"), "own-hb-last"), 5000, "A's own heartbeat");
        WAIT(has_msg(&a, TOPIC(USER_A, "cmd"), "command-for-A"), 5000, "A's own command");
        pump_for(200);
        if (count_msgs(&agg, "forged") || a.n_msgs != 1) {
                dump_msgs(&agg);
                dump_msgs(&a);
                FAIL("with the explicit ACL, a forged message got through or A read more than its command");
        }
        finish();
}

/* No user name, a wrong password, an unknown user: refused on every listener. */
TEST(anonymous_and_wrong_passwords_are_refused)
{
        struct client c;
        struct creds cr;
        char good[128];

        setup();
        provision(NULL);
        county_start();
        terminal_secret(SCHOOL_A, "r101", good, sizeof(good));
        snprintf(cafile, sizeof(cafile), "%s/broker/ca.crt", env.out_dir);
        cr = (struct creds){ .cafile = cafile };
        client_init(&c, "anonymous TLS", NULL, true, &cr);
        ASSERT_EQ(client_connect(&c, env.tls_port), 5);
        client_close(&c);
        cr = (struct creds){ 0 };
        client_init(&c, "anonymous loopback", NULL, true, &cr);
        ASSERT_EQ(client_connect(&c, bbt_test_broker_port(&env.county)), 5);
        client_close(&c);
        cr = (struct creds){ .user = USER_A, .password = "not-the-password", .cafile = cafile };
        client_init(&c, "wrong password", NULL, true, &cr);
        ASSERT_EQ(client_connect(&c, env.tls_port), 5);
        client_close(&c);
        cr = (struct creds){ .user = USER_B, .cafile = cafile };
        snprintf(cr.password, sizeof(cr.password), "%s", good);
        client_init(&c, "A's password as B", NULL, true, &cr);
        ASSERT_EQ(client_connect(&c, env.tls_port), 5);
        client_close(&c);
        cr.user = COUNTY "/" SCHOOL_A "/r999";
        client_init(&c, "unknown user", NULL, true, &cr);
        ASSERT_EQ(client_connect(&c, env.tls_port), 5);
        client_close(&c);
        cr.user = USER_A;
        client_init(&c, "A", NULL, true, &cr);
        ASSERT_EQ(client_connect(&c, env.tls_port), 0);
        client_close(&c);
        finish();
}

/* TLS with another CA (the broker's certificate does not chain to it), and
 * plain MQTT on the TLS port, never get a session. */
TEST(tls_without_the_right_ca_is_refused)
{
        struct client c;
        struct creds cr;
        char other_out[600], other_ca[700], own_ca[700];

        setup();
        provision(NULL);
        county_start();
        terminal_creds(&cr, USER_A, SCHOOL_A, "r101");
        snprintf(own_ca, sizeof(own_ca), "%s", cr.cafile);
        /* Another county's CA, made the same way. */
        snprintf(other_out, sizeof(other_out), "%s/other-county", env.dir);
        provision_into(other_out, NULL);
        snprintf(other_ca, sizeof(other_ca), "%s/broker/ca.crt", other_out);
        cr.cafile = other_ca;
        client_init(&c, "A with another CA", NULL, true, &cr);
        ASSERT_EQ(client_connect(&c, env.tls_port), -1);
        client_close(&c);
        cr.cafile = NULL;
        client_init(&c, "A without TLS", NULL, true, &cr);
        /* The broker waits for a TLS handshake that never comes: no CONNACK. */
        ASSERT_NE(client_connect_within(&c, env.tls_port, 1000), 0);
        client_close(&c);
        cr.cafile = own_ca;
        client_init(&c, "A", NULL, true, &cr);
        ASSERT_EQ(client_connect(&c, env.tls_port), 0);
        client_close(&c);
        finish();
}

/* B removed from the registry: after bbt-provision and a reload (SIGHUP), B
 * is disconnected and refused; A and the aggregator stay connected. */
TEST(revoked_terminal_is_refused_and_reload_keeps_the_others)
{
        struct client agg, a, b;
        struct creds cr;

        setup();
        provision(NULL);
        county_start();
        aggregator_open(&agg, false);
        terminal_open(&a, "A", NULL, USER_A, SCHOOL_A, "r101");
        terminal_creds(&cr, USER_B, SCHOOL_A, "r102");
        client_init(&b, "B", NULL, true, &cr);
        client_connect_ok(&b, env.tls_port);
        write_registry(false);
        provision(NULL);
        {
                char *passwd = out_file("broker/passwd");

                ASSERT(strstr(passwd, USER_B ":") == NULL);
                free(passwd);
        }
        county_reload();
        WAIT(b.disconnects > 0, 5000, "revoked B is still connected after the reload");
        pump_for(300);
        ASSERT_EQ(a.disconnects, 0);
        ASSERT_EQ(agg.disconnects, 0);
        publish(&a, TOPIC(USER_A, "hb"), "after-reload", false);
        WAIT(has_msg(&agg, TOPIC(USER_A, "hb"), "after-reload"), 5000, "A's heartbeat after the reload");
        client_close(&b);
        client_init(&b, "B again", NULL, true, &cr);
        ASSERT_EQ(client_connect(&b, env.tls_port), 5);
        ASSERT_EQ(a.disconnects, 0);
        ASSERT_EQ(agg.disconnects, 0);
        finish();
}

/* --rotate A: after the reload A's old secret is refused (and its old
 * connection dropped), the new one accepted; B is untouched. */
TEST(rotated_terminal_works_with_its_new_secret_only)
{
        static const char *const rotate[] = { "--rotate", SCHOOL_A "/r101", NULL };
        struct client agg, a_old, b, c;
        struct creds old_cr, new_cr;
        char b_before[128], b_after[128];

        setup();
        provision(NULL);
        county_start();
        aggregator_open(&agg, true);
        terminal_creds(&old_cr, USER_A, SCHOOL_A, "r101");
        terminal_secret(SCHOOL_A, "r102", b_before, sizeof(b_before));
        client_init(&a_old, "A (old secret)", NULL, true, &old_cr);
        client_connect_ok(&a_old, env.tls_port);
        terminal_open(&b, "B", NULL, USER_B, SCHOOL_A, "r102");
        provision(rotate);
        terminal_creds(&new_cr, USER_A, SCHOOL_A, "r101");
        ASSERT(strcmp(old_cr.password, new_cr.password) != 0);
        terminal_secret(SCHOOL_A, "r102", b_after, sizeof(b_after));
        ASSERT_STR_EQ(b_after, b_before);
        county_reload();
        WAIT(a_old.disconnects > 0, 5000, "A's connection with the old secret survived the reload");
        pump_for(300);
        ASSERT_EQ(b.disconnects, 0);
        ASSERT_EQ(agg.disconnects, 0);
        client_close(&a_old);
        client_init(&c, "A with the old secret", NULL, true, &old_cr);
        ASSERT_EQ(client_connect(&c, env.tls_port), 5);
        client_close(&c);
        client_init(&c, "A with the new secret", NULL, true, &new_cr);
        client_connect_ok(&c, env.tls_port);
        publish(&c, TOPIC(USER_A, "hb"), "rotated", false);
        WAIT(has_msg(&agg, TOPIC(USER_A, "hb"), "rotated"), 5000, "A's heartbeat with the new secret");
        finish();
}

/* With --client-certs: a terminal logs in by certificate on the certificate
 * port (its common name is its user name, so the ACL holds); no certificate,
 * or one on the CRL after a rotation, is refused. A terminal removed from the
 * registry whose connection is still open is denied everything after the
 * reload (mosquitto checks the CRL at the handshake only). */
TEST(client_certificates_and_the_crl)
{
        static const char *const certs[] = { "--client-certs", NULL };
        static const char *const rotate[] = { "--rotate", SCHOOL_A "/r101", NULL };
        struct client agg, a, b, c;
        struct creds cr;
        char dir_a[600], dir_b[600], crt[700], key[700], old_crt[700], old_key[700], b_crt[700], b_key[700];

        setup();
        provision(certs);
        county_start();
        aggregator_open(&agg, true);
        snprintf(dir_a, sizeof(dir_a), "%s/terminals/" COUNTY "-" SCHOOL_A "/r101", env.out_dir);
        snprintf(dir_b, sizeof(dir_b), "%s/terminals/" COUNTY "-" SCHOOL_A "/r102", env.out_dir);
        snprintf(crt, sizeof(crt), "%s/agent.crt", dir_a);
        snprintf(key, sizeof(key), "%s/agent.key", dir_a);
        snprintf(cafile, sizeof(cafile), "%s/broker/ca.crt", env.out_dir);
        {
                char path[700], *passwd = out_file("broker/passwd");

                snprintf(path, sizeof(path), "%s/agent.password", dir_a);
                ASSERT(access(path, F_OK) < 0);
                ASSERT(strstr(passwd, USER_A) == NULL);
                free(passwd);
        }
        /* Copies, as the terminals hold them: the bundles change below. */
        snprintf(old_crt, sizeof(old_crt), "%s/a-old.crt", env.dir);
        snprintf(old_key, sizeof(old_key), "%s/a-old.key", env.dir);
        snprintf(b_crt, sizeof(b_crt), "%s/b.crt", env.dir);
        snprintf(b_key, sizeof(b_key), "%s/b.key", env.dir);
        copy_file(crt, old_crt, 0600);
        copy_file(key, old_key, 0600);
        snprintf(crt, sizeof(crt), "%s/agent.crt", dir_b);
        copy_file(crt, b_crt, 0600);
        snprintf(crt, sizeof(crt), "%s/agent.key", dir_b);
        copy_file(crt, b_key, 0600);
        cr = (struct creds){ .cafile = cafile, .certfile = old_crt, .keyfile = old_key };
        client_init(&a, "A by certificate", NULL, true, &cr);
        client_connect_ok(&a, env.cert_port);
        cr = (struct creds){ .cafile = cafile, .certfile = b_crt, .keyfile = b_key };
        client_init(&b, "B by certificate", NULL, true, &cr);
        client_connect_ok(&b, env.cert_port);
        publish(&a, TOPIC(USER_B, "hb"), "forged-by-cert", false);
        publish(&a, TOPIC(USER_A, "hb"), "own-by-cert", false);
        WAIT(has_msg(&agg, TOPIC(USER_A, "hb"), "own-by-cert"), 5000, "A's heartbeat by certificate");
        ASSERT_EQ(count_msgs(&agg, "forged"), 0);
        /* Without a certificate: no session on that port. */
        cr = (struct creds){ .cafile = cafile };
        client_init(&c, "no certificate", NULL, true, &cr);
        ASSERT_NE(client_connect(&c, env.cert_port), 0);
        client_close(&c);
        /* A rotated (its old certificate on the CRL), B removed from the registry. */
        write_registry(false);
        provision(rotate);
        county_reload();
        pump_for(300);
        publish(&b, TOPIC(USER_B, "hb"), "revoked-B-still-connected", false);
        client_close(&a);
        cr = (struct creds){ .cafile = cafile, .certfile = old_crt, .keyfile = old_key };
        client_init(&c, "A with its revoked certificate", NULL, true, &cr);
        ASSERT_NE(client_connect(&c, env.cert_port), 0);
        client_close(&c);
        snprintf(crt, sizeof(crt), "%s/agent.crt", dir_a);
        snprintf(key, sizeof(key), "%s/agent.key", dir_a);
        cr = (struct creds){ .cafile = cafile, .certfile = crt, .keyfile = key };
        client_init(&c, "A with its new certificate", NULL, true, &cr);
        client_connect_ok(&c, env.cert_port);
        publish(&c, TOPIC(USER_A, "hb"), "new-cert", false);
        WAIT(has_msg(&agg, TOPIC(USER_A, "hb"), "new-cert"), 5000, "A's heartbeat with its new certificate");
        ASSERT_EQ(count_msgs(&agg, "revoked-B-still-connected"), 0);
        client_close(&c);
        cr = (struct creds){ .cafile = cafile, .certfile = b_crt, .keyfile = b_key };
        client_init(&c, "B with its revoked certificate", NULL, true, &cr);
        ASSERT_NE(client_connect(&c, env.cert_port), 0);
        finish();
}

/* A school bridge's credentials write its own school's terminals' topics and
 * read their commands, and nothing of another school. */
TEST(school_bridge_cannot_publish_for_another_school)
{
        static const char *const bridge[] = { "--bridge", SCHOOL_A "=127.0.0.1", NULL };
        struct client agg, br, ops;
        struct creds cr;
        char *conf;

        setup();
        provision(bridge);
        county_start();
        aggregator_open(&agg, true);
        /* The bridge's password, as the generated school broker configuration has it. */
        conf = out_file("terminals/" COUNTY "-" SCHOOL_A "/school.broker/bbt-school.conf");
        snprintf(cafile, sizeof(cafile), "%s/broker/ca.crt", env.out_dir);
        cr = (struct creds){ .user = "bridge-" COUNTY "-" SCHOOL_A, .cafile = cafile };
        {
                char *p = strstr(conf, "\nremote_password ");

                ASSERT(p != NULL);
                p += strlen("\nremote_password ");
                snprintf(cr.password, sizeof(cr.password), "%.*s", (int)strcspn(p, "\n"), p);
        }
        client_init(&br, "school A's bridge", "bridge-" COUNTY "-" SCHOOL_A, false, &cr);
        client_connect_ok(&br, env.tls_port);
        subscribe(&br, "bbt/v1/" COUNTY "/+/+/cmd");
        publish(&br, TOPIC(USER_C, "hb"), "forged-for-school-B", false);
        publish(&br, TOPIC(USER_C, "state"), "forged-state-for-school-B", true);
        publish(&br, TOPIC(USER_A, "cmd"), "forged-command", false);
        publish(&br, TOPIC(USER_B, "hb"), "school-A-terminal", false);
        WAIT(has_msg(&agg, TOPIC(USER_B, "hb"), "school-A-terminal"), 5000, "the bridge's own school's message");
        pump_for(200);
        ASSERT_EQ(count_msgs(&agg, "forged"), 0);
        account_creds(&cr, "operator", OPERATOR, true);
        client_init(&ops, "operator", NULL, true, &cr);
        client_connect_ok(&ops, env.tls_port);
        publish(&ops, TOPIC(USER_C, "cmd"), "command-for-school-B", false);
        publish(&ops, TOPIC(USER_A, "cmd"), "command-for-school-A", false);
        WAIT(has_msg(&br, TOPIC(USER_A, "cmd"), "command-for-school-A"), 5000, "the bridge's own school's command");
        pump_for(200);
        ASSERT_EQ(count_msgs(&br, "school-B"), 0);
        free(conf);
        finish();
}

/* ---- school brokers bridged to the county ---- */

#define CUT_MS 6000 /* the county broker is away this long: the issue asks for minutes; the bridge's
                     * reconnect and queue behave the same after seconds (restart_timeout 1 2 here) */
#define HB_MS 200   /* the agents' heartbeat here */

/* The store's id of SCHOOL's TERMINAL, as SQL. */
static const char *term_sql(const char *school, const char *terminal)
{
        static char sql[256];

        snprintf(sql, sizeof(sql),
                 "(SELECT id FROM terminal WHERE county = '" COUNTY "' AND school = '%s' AND terminal = '%s')",
                 school, terminal);
        return sql;
}

static int64_t raw_count(const char *db, const char *school, const char *terminal)
{
        return bbt_test_db_int(db, 0, "SELECT count(*) FROM raw WHERE terminal_id = %s", term_sql(school, terminal));
}

static int64_t raw_max(const char *db, const char *school, const char *terminal)
{
        return bbt_test_db_int(db, 0, "SELECT coalesce(max(seq), 0) FROM raw WHERE terminal_id = %s",
                               term_sql(school, terminal));
}

/* Seqs the aggregator holds as the live session's will (BBT_GAP_WILL): not missing. */
static int64_t will_seqs(const char *db, const char *school, const char *terminal)
{
        return bbt_test_db_int(db, 0,
                               "SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM gap WHERE state = %d AND "
                               "terminal_id = %s",
                               (int)BBT_GAP_WILL, term_sql(school, terminal));
}

/* Every seq of the terminal up to the highest stored is there once, but the
 * live will; no gap open and nothing lost in the whole store. */
static bool complete(const char *db, const char *school, const char *terminal)
{
        int64_t max = raw_max(db, school, terminal);

        return max > 0 && raw_count(db, school, terminal) + will_seqs(db, school, terminal) == max &&
               bbt_test_db_int(db, 0, "SELECT count(*) FROM gap WHERE state <> %d", (int)BBT_GAP_WILL) == 0 &&
               bbt_test_db_int(db, 0, "SELECT count(*) FROM loss") == 0;
}

/* SCHOOL's generated school broker configuration with the test's paths and
 * ports, its bridge to 127.0.0.1:COUNTY_PORT (the county's TLS port, or a
 * proxy in front of it). */
static char *school_conf(const char *school_dir, int cert_port, int county_port)
{
        char path[700], line[64], to[64];
        char *text;

        snprintf(path, sizeof(path), "%s/bbt-school.conf", school_dir);
        text = bbt_test_slurp(path);
        if (!*text)
                FAIL("%s: missing", path);
        text = replace_all(text, "/etc/mosquitto/bbt/", "@DIR@/");
        text = replace_once(text, "\nlistener 8883\n", "\nlistener @PORT@ 127.0.0.1\n");
        snprintf(line, sizeof(line), "\nlistener %d 127.0.0.1\n", cert_port);
        text = replace_once(text, "\nlistener 8884\n", line);
        /* Retry quickly, so that a short cut shows what a long one would. */
        text = replace_once(text, "\nrestart_timeout 5 60\n", "\nrestart_timeout 1 2\n");
        snprintf(line, sizeof(line), "\naddress 127.0.0.1:%d\n", env.tls_port);
        if (!strstr(text, line))
                FAIL("the bridge does not connect to the county's TLS port: no \"%s\"", line + 1);
        snprintf(to, sizeof(to), "\naddress 127.0.0.1:%d\n", county_port);
        return replace_once(text, line, to);
}

/* SCHOOL's broker, from the school's folder of the last provision(), as its IT
 * person installs it, bridged to 127.0.0.1:COUNTY_PORT. */
static void school_broker_start(struct bbt_test_broker *b, const char *school, int county_port)
{
        char school_dir[600], log[600];
        char *conf;

        snprintf(school_dir, sizeof(school_dir), "%s/terminals/" COUNTY "-%s/school.broker", env.out_dir, school);
        install_broker_files(b, school_dir);
        conf = school_conf(school_dir, bbt_test_free_port(), county_port);
        bbt_test_broker_start_conf(b, conf);
        free(conf);
        snprintf(log, sizeof(log), "%s/mosquitto.log", b->dir);
        bbt_test_dump_tail_on_failure(log, 16384);
}

/* SCHOOL's TERMINAL: its bundle of the last provision() (made with
 * --conf-dir CONF_DIR) installed in a directory of its own, pointed at the
 * school broker on SCHOOL_PORT, with the test's own settings appended (a
 * heartbeat every HB_MS, no drivers); then bbt-agent started on it. */
static void agent_start(struct bbt_test_daemon *d, const char *school, const char *terminal, const char *conf_dir,
                        int school_port)
{
        static const char *const files[] = { "agent.conf", "agent.password", "ca.crt" };
        static const mode_t modes[] = { 0640, 0600, 0644 };
        char dir[500], agent_conf[600], log[600], from[700], to[700], exe[512];
        char *conf, *text;
        size_t len;

        snprintf(dir, sizeof(dir), "%s/agent-%s-%s", env.dir, school, terminal);
        if (mkdir(dir, 0755) < 0)
                FAIL("mkdir %s: %s", dir, strerror(errno));
        for (size_t i = 0; i < BBT_ELEMENTSOF(files); i++) {
                snprintf(from, sizeof(from), "%s/terminals/" COUNTY "-%s/%s/%s", env.out_dir, school, terminal,
                         files[i]);
                snprintf(to, sizeof(to), "%s/%s", dir, files[i]);
                copy_file(from, to, modes[i]);
        }
        snprintf(agent_conf, sizeof(agent_conf), "%s/agent.conf", dir);
        conf = bbt_test_slurp(agent_conf);
        snprintf(from, sizeof(from), "%s/", conf_dir);
        snprintf(to, sizeof(to), "%s/", dir);
        conf = replace_all(conf, from, to);
        snprintf(from, sizeof(from), "\nport = %d\n", env.tls_port);
        snprintf(to, sizeof(to), "\nport = %d\n", school_port);
        conf = replace_once(conf, from, to); /* the school broker's port (8883 on both in production) */
        if (!strstr(conf, "\nhost = 127.0.0.1\n"))
                FAIL("the bundle does not connect to the school broker:\n%s", conf);
        len = strlen(conf) + 2 * strlen(dir) + 512;
        text = malloc(len);
        snprintf(text, len,
                 "%s\n# the test's own\n[broker]\nbackoff_min = 200ms\nbackoff_max = 1s\n"
                 "[agent]\nstate_dir = %s/state\nheartbeat_interval = %dms\nusage_flush = 1s\nlog_level = debug\n"
                 "[spool]\ndir = %s/spool\n[input]\nenabled = no\n[display]\nenabled = no\n[audio]\nenabled = no\n"
                 "[peripherals]\nenabled = no\n",
                 conf, dir, HB_MS, dir);
        free(conf);
        bbt_test_write_file(agent_conf, text);
        free(text);
        snprintf(to, sizeof(to), "%s/state", dir);
        if (mkdir(to, 0700) < 0)
                FAIL("mkdir %s: %s", to, strerror(errno));
        snprintf(log, sizeof(log), "%s/agent.log", dir);
        bbt_test_dump_tail_on_failure(log, 8192);
        {
                char *argv[] = { (char *)bbt_test_exe("agent", "bbt-agent", exe, sizeof(exe)), (char *)"-c", agent_conf,
                                 NULL };

                bbt_test_daemon_start(d, "bbt-agent", argv, log);
        }
}

/* The aggregator beside the county broker, with its provisioned credentials,
 * on the SQLite store STORE. */
static void aggregator_start(struct bbt_test_daemon *d, const char *store)
{
        char conf[450], log[450], exe[512], text[2048];

        snprintf(conf, sizeof(conf), "%s/aggregator.conf", env.dir);
        snprintf(log, sizeof(log), "%s/aggregator.log", env.dir);
        snprintf(text, sizeof(text),
                 "[broker]\nhost = 127.0.0.1\nport = %d\nusername = " AGGREGATOR "\nclient_id = " AGGREGATOR "\n"
                 "password_file = %s/aggregators/" AGGREGATOR "/aggregator.password\nkeepalive = 5s\n"
                 "backoff_min = 100ms\nbackoff_max = 1s\n\n[store]\npath = %s\nbatch_interval = 100ms\n\n"
                 "[registry]\n\n[ingest]\ngap_grace = 500ms\nresend_timeout = 2s\nresend_settle = 1s\n\n"
                 "[aggregator]\nlog_level = debug\n",
                 bbt_test_broker_port(&env.county), env.out_dir, store);
        bbt_test_write_file(conf, text);
        bbt_test_dump_tail_on_failure(log, 16384);
        {
                char *argv[] = { (char *)bbt_test_exe("county/aggregator", "bbt-aggregator", exe, sizeof(exe)),
                                 (char *)"-c", conf, NULL };

                bbt_test_daemon_start(d, "bbt-aggregator", argv, log);
        }
}

/* A terminal of school A behind its school broker reaches the county
 * aggregator exactly once across a cut of the county broker (kill -9, then
 * started again): the bridge reconnects and delivers the school's queue. */
TEST(bridged_terminal_reaches_the_county_exactly_once_across_a_cut)
{
        static struct bbt_test_broker school;
        struct bbt_test_daemon agent = { 0 }, agg = { 0 };
        char bridge_arg[64], conf_dir[400], store[450];
        int64_t before;

        setup();
        snprintf(conf_dir, sizeof(conf_dir), "%s/etc-bbt", env.dir);
        snprintf(bridge_arg, sizeof(bridge_arg), SCHOOL_A "=127.0.0.1");
        {
                const char *extra[] = { "--bridge", bridge_arg, "--conf-dir", conf_dir, NULL };

                provision(extra);
        }
        county_start();
        school_broker_start(&school, SCHOOL_A, env.tls_port);
        snprintf(store, sizeof(store), "%s/aggregator.db", env.dir);
        aggregator_start(&agg, store);
        agent_start(&agent, SCHOOL_A, "r101", conf_dir, bbt_test_broker_port(&school));
        BBT_WAIT_FOR((bbt_test_daemon_alive(&agent), bbt_test_daemon_alive(&agg), raw_count(store, SCHOOL_A, "r101") >= 5),
                     20000, "nothing from the terminal behind the bridge reached the county's store (%" PRId64 " rows)",
                     raw_count(store, SCHOOL_A, "r101"));

        /* The cut: the county broker dies; the school keeps taking the terminal's messages. */
        bbt_test_broker_kill(&env.county);
        before = raw_max(store, SCHOOL_A, "r101");
        bbt_test_sleep_ms(CUT_MS);
        bbt_test_daemon_alive(&agent);
        bbt_test_broker_restart(&env.county);
        BBT_WAIT_FOR((bbt_test_daemon_alive(&agent), bbt_test_daemon_alive(&agg),
                      raw_max(store, SCHOOL_A, "r101") >= before + CUT_MS / HB_MS * 3 / 4 &&
                              complete(store, SCHOOL_A, "r101")),
                     45000,
                     "after the cut: stored %" PRId64 " up to seq %" PRId64 " (%" PRId64 " before the cut), %" PRId64
                     " held as the will, %" PRId64 " gap(s) open, %" PRId64 " lost",
                     raw_count(store, SCHOOL_A, "r101"), raw_max(store, SCHOOL_A, "r101"), before,
                     will_seqs(store, SCHOOL_A, "r101"), bbt_test_db_int(store, 0, "SELECT count(*) FROM gap"),
                     bbt_test_db_int(store, 0, "SELECT count(*) FROM loss"));
        fprintf(stderr, "stored seqs 1..%" PRId64 " once each (%" PRId64 " before the cut of %d ms)\n",
                raw_max(store, SCHOOL_A, "r101"), before, CUT_MS);
        bbt_test_daemon_term(&agent, 6000);
        bbt_test_daemon_term(&agg, 6000);
        bbt_test_check_sanitizers(agent.log);
        bbt_test_check_sanitizers(agg.log);
        bbt_test_broker_stop(&school);
        finish();
}

/* Several schools, each with its own broker bridged to the county and
 * several agents behind it, one aggregator at the county; the bridges of two
 * schools are cut (their connections closed and new ones refused, as a link
 * going down) while the third school keeps reporting, then restored. Every
 * seq of every terminal is stored exactly once: none missing, no gap open,
 * nothing lost, and after a clean stop of the agents, each terminal's raw rows
 * are exactly the seqs it produced (its last, the offline state, included). */
#define FLEET_SCHOOLS 3
#define FLEET_TERMINALS 3
#define FLEET_CUT 2 /* the first this many schools' bridges are cut */

TEST(bridged_schools_reach_the_county_exactly_once_across_a_bridge_cut)
{
        static const char *const codes[FLEET_SCHOOLS] = { SCHOOL_A, SCHOOL_B, "3151010003" };
        static struct bbt_test_broker school[FLEET_SCHOOLS];
        static const char *const terms[FLEET_TERMINALS] = { "r101", "r102", "r103" };
        struct bbt_test_proxy *proxy[FLEET_SCHOOLS];
        struct bbt_test_daemon agent[FLEET_SCHOOLS][FLEET_TERMINALS], agg = { 0 };
        int64_t before[FLEET_SCHOOLS][FLEET_TERMINALS];
        char conf_dir[400], store[450], bridge_arg[FLEET_SCHOOLS][64], registry[1024];
        const char *extra[3 * FLEET_SCHOOLS + 3];
        size_t n_extra = 0, at;
        uint64_t t0 = bbt_test_now_ms();

        memset(agent, 0, sizeof(agent));
        setup();
        at = (size_t)snprintf(registry, sizeof(registry), "school_code,terminal_id,room\n");
        for (int s = 0; s < FLEET_SCHOOLS; s++)
                for (int t = 0; t < FLEET_TERMINALS; t++)
                        at += (size_t)snprintf(registry + at, sizeof(registry) - at, "%s,%s,%d\n", codes[s], terms[t],
                                               t + 1);
        bbt_test_write_file(env.terminals, registry);
        bbt_test_write_file(env.schools, "county_code,school_code,school_name,type,area,students\n"
                                         COUNTY "," SCHOOL_A ",一小,primary,urban,800\n"
                                         COUNTY "," SCHOOL_B ",二小,primary,rural,300\n"
                                         COUNTY ",3151010003,三小,primary,rural,300\n");
        snprintf(conf_dir, sizeof(conf_dir), "%s/etc-bbt", env.dir);
        for (int s = 0; s < FLEET_SCHOOLS; s++) {
                snprintf(bridge_arg[s], sizeof(bridge_arg[s]), "%s=127.0.0.1", codes[s]);
                extra[n_extra++] = "--bridge";
                extra[n_extra++] = bridge_arg[s];
        }
        extra[n_extra++] = "--conf-dir";
        extra[n_extra++] = conf_dir;
        extra[n_extra] = NULL;
        provision(extra);
        county_start();
        snprintf(store, sizeof(store), "%s/aggregator.db", env.dir);
        aggregator_start(&agg, store);
        /* Each school broker's bridge through a path of its own that the test can cut. */
        for (int s = 0; s < FLEET_SCHOOLS; s++) {
                proxy[s] = bbt_test_proxy_start(env.tls_port);
                school_broker_start(&school[s], codes[s], bbt_test_proxy_port(proxy[s]));
        }
        for (int s = 0; s < FLEET_SCHOOLS; s++)
                for (int t = 0; t < FLEET_TERMINALS; t++)
                        agent_start(&agent[s][t], codes[s], terms[t], conf_dir, bbt_test_broker_port(&school[s]));

#define EACH_TERMINAL(cond)                                                     \
        ({                                                                      \
                bool all_ = true;                                               \
                for (int s = 0; s < FLEET_SCHOOLS && all_; s++)                 \
                        for (int t = 0; t < FLEET_TERMINALS && all_; t++) {     \
                                bbt_test_daemon_alive(&agent[s][t]);            \
                                all_ = (cond);                                  \
                        }                                                       \
                bbt_test_daemon_alive(&agg);                                    \
                all_;                                                           \
        })
        BBT_WAIT_FOR(EACH_TERMINAL(raw_count(store, codes[s], terms[t]) >= 3), 20000,
                     "not every terminal behind the bridges reached the county's store (%" PRId64 " rows in all)",
                     bbt_test_db_int(store, 0, "SELECT count(*) FROM raw"));

        /* The cut: the first schools' links to the county go down; the last
         * school's terminals keep reaching the county meanwhile. */
        for (int s = 0; s < FLEET_CUT; s++)
                bbt_test_proxy_cut(proxy[s]);
        for (int s = 0; s < FLEET_SCHOOLS; s++)
                for (int t = 0; t < FLEET_TERMINALS; t++)
                        before[s][t] = raw_max(store, codes[s], terms[t]);
        BBT_WAIT_FOR(EACH_TERMINAL(s < FLEET_CUT || raw_max(store, codes[s], terms[t]) >= before[s][t] + 10), 10000,
                     "the uncut school's terminals stopped reaching the county during the cut");
        for (int s = 0; s < FLEET_CUT; s++)
                for (int t = 0; t < FLEET_TERMINALS; t++)
                        ASSERT_LT(raw_max(store, codes[s], terms[t]), before[s][t] + 5); /* what was in flight */
        for (int s = 0; s < FLEET_CUT; s++)
                bbt_test_proxy_restore(proxy[s]);

        /* The school brokers' queues reach the county: every seq once. */
        BBT_WAIT_FOR(EACH_TERMINAL(raw_max(store, codes[s], terms[t]) >= before[s][t] + 10 &&
                                   complete(store, codes[s], terms[t])),
                     20000,
                     "after the cut: %" PRId64 " rows, %" PRId64 " gap(s) open, %" PRId64 " lost",
                     bbt_test_db_int(store, 0, "SELECT count(*) FROM raw"),
                     bbt_test_db_int(store, 0, "SELECT count(*) FROM gap WHERE state <> %d", (int)BBT_GAP_WILL),
                     bbt_test_db_int(store, 0, "SELECT count(*) FROM loss"));
        for (int s = 0; s < FLEET_CUT; s++) {
                struct bbt_test_proxy_stats st;

                bbt_test_proxy_get_stats(proxy[s], &st);
                ASSERT_GE(st.forwarded, 2); /* the bridge came back through the path that was cut */
        }

        /* A clean stop: each agent's last message is its offline state; then
         * the raw rows are exactly 1..last, and no will or gap is left. */
        for (int s = 0; s < FLEET_SCHOOLS; s++)
                for (int t = 0; t < FLEET_TERMINALS; t++)
                        bbt_test_daemon_term(&agent[s][t], 6000);
#undef EACH_TERMINAL
        BBT_WAIT_FOR(bbt_test_db_int(store, -1,
                                     "SELECT count(*) FROM terminal WHERE online = 0 AND "
                                     "(SELECT count(*) FROM raw WHERE terminal_id = terminal.id) = high_seq") ==
                             FLEET_SCHOOLS * FLEET_TERMINALS &&
                             bbt_test_db_int(store, -1, "SELECT count(*) FROM gap") == 0,
                     10000, "after the agents stopped: %" PRId64 " of %d terminals offline with every seq stored once",
                     bbt_test_db_int(store, -1,
                                     "SELECT count(*) FROM terminal WHERE online = 0 AND "
                                     "(SELECT count(*) FROM raw WHERE terminal_id = terminal.id) = high_seq"),
                     FLEET_SCHOOLS * FLEET_TERMINALS);
        ASSERT_EQ(bbt_test_db_int(store, -1, "SELECT count(*) FROM loss"), 0);
        fprintf(stderr, "%d terminals behind %d bridged school brokers: %" PRId64 " messages stored once each "
                        "(%" PRId64 " duplicates received and dropped) in %.1f s\n",
                FLEET_SCHOOLS * FLEET_TERMINALS, FLEET_SCHOOLS, bbt_test_db_int(store, 0, "SELECT count(*) FROM raw"),
                bbt_test_db_int(store, 0, "SELECT coalesce(sum(duplicates), 0) FROM terminal"),
                (double)(bbt_test_now_ms() - t0) / 1000);
        bbt_test_daemon_term(&agg, 6000);
        for (int s = 0; s < FLEET_SCHOOLS; s++) {
                for (int t = 0; t < FLEET_TERMINALS; t++)
                        bbt_test_check_sanitizers(agent[s][t].log);
                bbt_test_broker_stop(&school[s]);
                bbt_test_proxy_stop(proxy[s]);
        }
        bbt_test_check_sanitizers(agg.log);
        finish();
}
