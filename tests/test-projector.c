/* Tests for drivers/projector.c against the PJLink simulator on 127.0.0.1. */
/* bbt-test: label=integration timeout=30 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bbt/driver.h"
#include "broker.h"
#include "pjlink-sim.h"
#include "pjlink.h"
#include "projector.h"
#include "test.h"

#define MAX_ALERTS 32

struct seen_alert {
        char code[32];
        enum bbt_severity severity;
        enum bbt_alert_state state;
        char detail[256];
};

/* Everything the driver reported. */
struct seen {
        int n_status;
        struct bbt_projector_status status; /* the last one; input copied below */
        char input[17];
        int n_reachable, n_unreachable;
        int n_display;
        bool display_on;
        char display_source[32];
        int n_alerts;
        struct seen_alert alerts[MAX_ALERTS];
        int power_calls, power_status;
        char power_reason[256];
        bool stopped;
        int n_problems;
        char problem[256]; /* the last one; "" after "fine again" */
};

/* One test's world: a loop, a simulator, a driver. */
struct world {
        uv_loop_t loop;
        struct bbt_pjlink_sim sim;
        struct bbt_driver_events events;
        struct bbt_driver *d;
        struct seen seen;
};

#define WAIT_FOR(w, cond, ms)                                                                    \
        do {                                                                                     \
                uint64_t wait_deadline_ = bbt_test_now_ms() + (ms);                              \
                while (!(cond)) {                                                                \
                        if (bbt_test_now_ms() > wait_deadline_)                                  \
                                FAIL("timed out after %d ms waiting for %s (last error: %s)",    \
                                     (int)(ms), #cond,                                           \
                                     (w)->d ? bbt_projector_last_error((w)->d) : "-");          \
                        bbt_test_run_until(&(w)->loop, NULL, NULL, 5);                           \
                }                                                                                \
        } while (0)

static void on_projector(void *userdata, const struct bbt_projector_status *st)
{
        struct seen *s = userdata;

        s->n_status++;
        s->status = *st;
        if (st->reachable)
                s->n_reachable++;
        else
                s->n_unreachable++;
        snprintf(s->input, sizeof(s->input), "%s", st->input ? st->input : "");
        s->status.input = NULL;
}

static void on_display(void *userdata, bool on, const char *source)
{
        struct seen *s = userdata;

        s->n_display++;
        s->display_on = on;
        snprintf(s->display_source, sizeof(s->display_source), "%s", source);
}

static void on_alert(void *userdata, const char *code, enum bbt_severity severity, enum bbt_alert_state state,
                     const char *detail)
{
        struct seen *s = userdata;
        struct seen_alert *a;

        if (s->n_alerts == MAX_ALERTS)
                FAIL("too many alerts");
        a = &s->alerts[s->n_alerts++];
        snprintf(a->code, sizeof(a->code), "%s", code);
        a->severity = severity;
        a->state = state;
        snprintf(a->detail, sizeof(a->detail), "%s", detail ? detail : "");
}

static void on_problem(void *userdata, const char *source, const char *what)
{
        struct seen *s = userdata;

        ASSERT_STR_EQ(source, "projector");
        s->n_problems++;
        snprintf(s->problem, sizeof(s->problem), "%s", what ? what : "");
}

static void on_power(void *userdata, int status, const char *reason)
{
        struct seen *s = userdata;

        s->power_calls++;
        s->power_status = status;
        snprintf(s->power_reason, sizeof(s->power_reason), "%s", reason ? reason : "");
}

static void on_stopped(void *userdata)
{
        ((struct seen *)userdata)->stopped = true;
}

/* Starts the loop and the simulator (the caller sets its options after). */
static void world_init(struct world *w)
{
        memset(w, 0, sizeof(*w));
        ASSERT_OK(uv_loop_init(&w->loop));
        bbt_pjlink_sim_init(&w->sim);
        ASSERT_OK(bbt_pjlink_sim_start(&w->sim, &w->loop));
        w->events.projector = on_projector;
        w->events.display = on_display;
        w->events.alert = on_alert;
        w->events.problem = on_problem;
        w->events.userdata = &w->seen;
}

/* Test defaults: poll every 100 ms, 1 s timeout. */
static void options(struct world *w, struct bbt_projector_options *o)
{
        bbt_projector_options_init(o);
        o->host = "127.0.0.1";
        o->port = (uint16_t)w->sim.port;
        o->poll_interval_ms = 100;
        o->timeout_ms = 1000;
}

static void driver_start(struct world *w, const struct bbt_projector_options *o)
{
        struct bbt_driver_env env = { .loop = &w->loop, .root = "/", .events = &w->events };

        ASSERT_OK(bbt_projector_new(&env, o, &w->d));
        ASSERT_STR_EQ(w->d->ops->name, "projector");
        ASSERT_OK(w->d->ops->start(w->d));
}

/* Stops the driver and the simulator, then checks every handle closed. */
static void world_end(struct world *w)
{
        if (w->d) {
                w->d->ops->stop(w->d, on_stopped, &w->seen);
                ASSERT(!w->seen.stopped); /* DONE comes from the loop */
                WAIT_FOR(w, w->seen.stopped, 5000);
                w->d->ops->destroy(w->d);
                w->d = NULL;
        }
        bbt_pjlink_sim_stop(&w->sim);
        bbt_test_loop_close(&w->loop);
}

static int count_alerts(const struct seen *s, const char *code, enum bbt_alert_state state)
{
        int n = 0;

        for (int i = 0; i < s->n_alerts; i++)
                if (strcmp(s->alerts[i].code, code) == 0 && s->alerts[i].state == state)
                        n++;
        return n;
}

static const struct seen_alert *last_alert(const struct seen *s, const char *code)
{
        for (int i = s->n_alerts - 1; i >= 0; i--)
                if (strcmp(s->alerts[i].code, code) == 0)
                        return &s->alerts[i];
        return NULL;
}

TEST(full_poll_with_auth)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.cls = 2;
        w.sim.password = "JBMIAProjectorLink";
        w.sim.power = BBT_POWER_ON;
        memcpy(w.sim.input, "3A", 3);
        w.sim.n_lamps = 2;
        w.sim.lamp_hours[0] = 1500;
        w.sim.lamp_hours[1] = 2310;
        options(&w, &o);
        o.password = "JBMIAProjectorLink";
        driver_start(&w, &o);

        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(w.seen.status.reachable);
        ASSERT(w.seen.status.has_power);
        ASSERT_EQ(w.seen.status.power, BBT_POWER_ON);
        ASSERT_STR_EQ(w.seen.input, "3A"); /* asked with %2INPT after CLSS said 2 */
        ASSERT(w.seen.status.has_erst);
        for (int i = 0; i < BBT_ERST__COUNT; i++)
                ASSERT_EQ(w.seen.status.erst[i], BBT_ERST_OK);
        ASSERT(w.seen.status.has_lamp_hours);
        ASSERT_EQ(w.seen.status.lamp_hours, 2310); /* the most used lamp */
        ASSERT_EQ(w.sim.auth_ok, 1);
        ASSERT_EQ(w.sim.auth_failed, 0);
        ASSERT_EQ(w.sim.commands, 9); /* CLSS POWR INPT ERST LAMP NAME INF1 INF2 INFO */
        ASSERT_EQ(w.seen.n_display, 1);
        ASSERT(w.seen.display_on);
        ASSERT_STR_EQ(w.seen.display_source, "projector");
        ASSERT_EQ(w.seen.n_alerts, 0);

        /* Later polls ask only what changes, each on a new authenticated connection. */
        WAIT_FOR(&w, w.seen.n_status >= 3, 5000);
        ASSERT_STR_EQ(w.sim.last_command, "%1LAMP ?");
        ASSERT_EQ(w.sim.commands, 9 + 4 * (unsigned)(w.seen.n_status - 1));
        ASSERT_EQ(w.sim.auth_ok, (unsigned)w.seen.n_status);
        ASSERT_EQ(w.seen.n_display, 1); /* no repeats */
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.polls, (uint64_t)w.seen.n_status);
        ASSERT_EQ(st.polls_ok, st.polls);
        ASSERT_STR_EQ(bbt_projector_last_error(w.d), "");
        world_end(&w);
}

TEST(poll_without_auth_class1)
{
        struct world w;
        struct bbt_projector_options o;

        world_init(&w);
        w.sim.power = BBT_POWER_OFF;
        options(&w, &o);
        o.password = "unused"; /* "PJLINK 0": no digest is sent */
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(w.seen.status.reachable);
        ASSERT_EQ(w.seen.status.power, BBT_POWER_OFF);
        ASSERT_STR_EQ(w.seen.input, "31");
        ASSERT_EQ(w.seen.status.lamp_hours, 1200);
        ASSERT_EQ(w.sim.auth_ok, 0);
        ASSERT_EQ(w.seen.n_display, 1);
        ASSERT(!w.seen.display_on);
        world_end(&w);
}

TEST(wrong_password_reports_erra)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.password = "right";
        w.sim.power = BBT_POWER_ON;
        options(&w, &o);
        o.password = "wrong";
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 2, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT(!w.seen.status.has_power);
        ASSERT_EQ(w.seen.n_reachable, 0);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "ERRA");
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "auth:");
        ASSERT_GE(w.sim.auth_failed, 2);
        ASSERT_EQ(w.sim.auth_ok, 0);
        ASSERT_EQ(w.seen.n_display, 0); /* unknown, not "off" */
        bbt_projector_get_stats(w.d, &st);
        ASSERT_GE(st.fail_auth, 2);
        ASSERT_EQ(st.polls_ok, 0);
        world_end(&w);
}

/* A wrong password is reported once (not at every poll) with its reason;
 * after unreachable_alert_ms without a good poll, projector_unreachable is
 * raised with the reason, and cleared once the password is right. */
TEST(unreachable_reported_once_and_alerted)
{
        struct world w;
        struct bbt_projector_options o;
        const struct seen_alert *a;

        world_init(&w);
        w.sim.password = "right";
        w.sim.power = BBT_POWER_ON;
        options(&w, &o);
        o.password = "wrong";
        o.unreachable_alert_ms = 600;
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 3, 5000);
        ASSERT_EQ(w.seen.n_problems, 1);
        ASSERT_STR_CONTAINS(w.seen.problem, "unreachable: auth:");
        ASSERT_STR_CONTAINS(w.seen.problem, "ERRA");
        ASSERT_EQ(count_alerts(&w.seen, "projector_unreachable", BBT_ALERT_RAISED), 0);
        WAIT_FOR(&w, count_alerts(&w.seen, "projector_unreachable", BBT_ALERT_RAISED) == 1, 5000);
        a = last_alert(&w.seen, "projector_unreachable");
        ASSERT_EQ(a->severity, BBT_SEVERITY_WARNING);
        ASSERT_STR_CONTAINS(a->detail, "127.0.0.1:");
        ASSERT_STR_CONTAINS(a->detail, "ERRA");
        ASSERT_GE(w.seen.n_status, 6);
        ASSERT_EQ(w.seen.n_problems, 1); /* still once */
        /* The simulator's password changes to the configured one. */
        w.sim.password = "wrong";
        WAIT_FOR(&w, count_alerts(&w.seen, "projector_unreachable", BBT_ALERT_CLEARED) == 1, 5000);
        ASSERT_EQ(w.seen.n_problems, 2);
        ASSERT_STR_EQ(w.seen.problem, "");
        ASSERT_EQ(count_alerts(&w.seen, "projector_unreachable", BBT_ALERT_RAISED), 1);
        world_end(&w);
}

TEST(password_required_but_none_configured)
{
        struct world w;
        struct bbt_projector_options o;

        world_init(&w);
        w.sim.password = "secret";
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "requires a password");
        ASSERT_EQ(w.sim.commands, 0); /* nothing was sent */
        world_end(&w);
}

TEST(erra_after_right_digest)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.erra = true;
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(!w.seen.status.reachable);
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.fail_auth, 1);
        world_end(&w);
}

TEST(erst_alert_raised_changed_cleared_once)
{
        struct world w;
        struct bbt_projector_options o;
        const struct seen_alert *a;
        int n;

        world_init(&w);
        w.sim.power = BBT_POWER_ON;
        memcpy(w.sim.erst, "010000", 7); /* lamp warning */
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT_EQ(w.seen.n_alerts, 1);
        a = last_alert(&w.seen, "projector_error");
        ASSERT(a);
        ASSERT_EQ(a->state, BBT_ALERT_RAISED);
        ASSERT_EQ(a->severity, BBT_SEVERITY_WARNING);
        ASSERT_STR_EQ(a->detail, "lamp: warning");

        /* Same condition for several polls: no repeats. */
        n = w.seen.n_status;
        WAIT_FOR(&w, w.seen.n_status >= n + 3, 5000);
        ASSERT_EQ(w.seen.n_alerts, 1);

        /* Worse: raised again with severity error and both items named. */
        memcpy(w.sim.erst, "020010", 7);
        WAIT_FOR(&w, w.seen.n_alerts >= 2, 5000);
        a = last_alert(&w.seen, "projector_error");
        ASSERT_EQ(a->state, BBT_ALERT_RAISED);
        ASSERT_EQ(a->severity, BBT_SEVERITY_ERROR);
        ASSERT_STR_EQ(a->detail, "lamp: error, filter: warning");
        n = w.seen.n_status;
        WAIT_FOR(&w, w.seen.n_status >= n + 3, 5000);
        ASSERT_EQ(w.seen.n_alerts, 2);

        /* Unreachable for a while: the condition is unknown, nothing is cleared. */
        w.sim.silent = true;
        n = w.seen.n_unreachable;
        WAIT_FOR(&w, w.seen.n_unreachable >= n + 1, 5000);
        ASSERT_EQ(w.seen.n_alerts, 2);
        w.sim.silent = false;

        /* All ok: cleared exactly once, with the severity it had. */
        memcpy(w.sim.erst, "000000", 7);
        WAIT_FOR(&w, w.seen.n_alerts >= 3, 5000);
        a = last_alert(&w.seen, "projector_error");
        ASSERT_EQ(a->state, BBT_ALERT_CLEARED);
        ASSERT_EQ(a->severity, BBT_SEVERITY_ERROR);
        n = w.seen.n_status;
        WAIT_FOR(&w, w.seen.n_status >= n + 3, 5000);
        ASSERT_EQ(w.seen.n_alerts, 3);
        ASSERT_EQ(count_alerts(&w.seen, "projector_error", BBT_ALERT_CLEARED), 1);
        world_end(&w);
}

TEST(lamp_hours_alert)
{
        struct world w;
        struct bbt_projector_options o;
        const struct seen_alert *a;
        int n;

        world_init(&w);
        w.sim.power = BBT_POWER_ON;
        w.sim.n_lamps = 2;
        w.sim.lamp_hours[0] = 2999;
        w.sim.lamp_hours[1] = 100;
        options(&w, &o);
        o.lamp_hours_limit = 3000;
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 2, 5000);
        ASSERT_EQ(w.seen.n_alerts, 0);

        w.sim.lamp_hours[0] = 3012;
        WAIT_FOR(&w, w.seen.n_alerts >= 1, 5000);
        a = last_alert(&w.seen, "lamp_hours");
        ASSERT(a);
        ASSERT_EQ(a->state, BBT_ALERT_RAISED);
        ASSERT_EQ(a->severity, BBT_SEVERITY_WARNING);
        ASSERT_STR_EQ(a->detail, "lamp 1: 3012 h; limit 3000 h");
        n = w.seen.n_status;
        w.sim.lamp_hours[0] = 3013;
        WAIT_FOR(&w, w.seen.n_status >= n + 3, 5000);
        ASSERT_EQ(w.seen.n_alerts, 1);
        ASSERT_EQ(w.seen.status.lamp_hours, 3013);

        /* A new lamp: cleared once. */
        w.sim.lamp_hours[0] = 0;
        WAIT_FOR(&w, w.seen.n_alerts >= 2, 5000);
        a = last_alert(&w.seen, "lamp_hours");
        ASSERT_EQ(a->state, BBT_ALERT_CLEARED);
        n = w.seen.n_status;
        WAIT_FOR(&w, w.seen.n_status >= n + 2, 5000);
        ASSERT_EQ(w.seen.n_alerts, 2);
        world_end(&w);
}

TEST(no_lamp_alert_without_limit)
{
        struct world w;
        struct bbt_projector_options o;

        world_init(&w);
        w.sim.lamp_hours[0] = 99999;
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 2, 5000);
        ASSERT_EQ(w.seen.status.lamp_hours, 99999);
        ASSERT_EQ(w.seen.n_alerts, 0);
        world_end(&w);
}

TEST(connection_closed_mid_poll_retried_next_poll)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;
        int n;

        world_init(&w);
        w.sim.power = BBT_POWER_ON;
        w.sim.hangup_on = "POWR"; /* closes without answering, before any reply */
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_unreachable >= 2, 5000);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "closed");
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "POWR");
        bbt_projector_get_stats(w.d, &st);
        ASSERT_GE(st.fail_closed, 2);

        /* Fixed: the next poll works. */
        w.sim.hangup_on = NULL;
        n = w.seen.n_reachable;
        WAIT_FOR(&w, w.seen.n_reachable > n, 5000);
        ASSERT(w.seen.status.reachable);
        ASSERT_EQ(w.seen.status.power, BBT_POWER_ON);
        ASSERT_STR_EQ(bbt_projector_last_error(w.d), "");
        world_end(&w);
}

TEST(projector_closing_after_each_exchange)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.password = "pw"; /* each new connection authenticates again */
        w.sim.power = BBT_POWER_ON;
        w.sim.close_after = 1;
        options(&w, &o);
        o.password = "pw";
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 2, 8000);
        ASSERT(w.seen.status.reachable);
        ASSERT(w.seen.status.has_lamp_hours);
        ASSERT_EQ(w.seen.n_unreachable, 0);
        bbt_projector_get_stats(w.d, &st);
        ASSERT_GE(st.reconnects, 8 + 3);
        ASSERT_EQ(w.sim.auth_failed, 0);
        world_end(&w);
}

TEST(hangup_in_the_middle_of_a_poll)
{
        struct world w;
        struct bbt_projector_options o;

        world_init(&w);
        w.sim.power = BBT_POWER_ON;
        w.sim.close_after = 3;
        w.sim.hangup_on = "ERST";
        options(&w, &o);
        driver_start(&w, &o);
        /* ERST always hangs up on a fresh connection: the poll fails, the driver
         * goes on polling. */
        WAIT_FOR(&w, w.seen.n_unreachable >= 2, 8000);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "ERST");
        world_end(&w);
}

TEST(no_answer_times_out_within_timeout)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;
        uint64_t t0, elapsed;

        world_init(&w);
        w.sim.silent = true;
        options(&w, &o);
        o.timeout_ms = 300;
        o.poll_interval_ms = 60000;
        t0 = bbt_test_now_ms();
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        elapsed = bbt_test_now_ms() - t0;
        ASSERT(!w.seen.status.reachable);
        ASSERT_GE(elapsed, 300);
        ASSERT_LT(elapsed, 300 + 700);
        ASSERT_STR_EQ(bbt_projector_last_error(w.d), "timeout: no reply to CLSS within 300 ms");
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.fail_timeout, 1);
        world_end(&w);
}

TEST(slow_greeting)
{
        struct world w;
        struct bbt_projector_options o;

        world_init(&w);
        w.sim.greeting_delay_ms = 600;
        options(&w, &o);
        o.timeout_ms = 300;
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT_STR_EQ(bbt_projector_last_error(w.d), "timeout: no greeting within 300 ms");
        world_end(&w);

        /* Slow but within the timeout: fine. */
        world_init(&w);
        w.sim.greeting_delay_ms = 150;
        options(&w, &o);
        o.timeout_ms = 1000;
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(w.seen.status.reachable);
        world_end(&w);
}

TEST(bad_greetings)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        /* Something else listens on the port. */
        world_init(&w);
        w.sim.greeting = "SSH-2.0-OpenSSH_9.2";
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "protocol: greeting: expected \"PJLINK 0\"");
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "SSH-2.0");
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.fail_protocol, 1);
        ASSERT_EQ(w.sim.commands, 0);
        world_end(&w);

        /* "PJLINK ERRA" as the greeting (class 2 projectors locked out). */
        world_init(&w);
        w.sim.greeting = "PJLINK ERRA";
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "auth: greeting: PJLINK ERRA");
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.fail_auth, 1);
        world_end(&w);
}

TEST(closed_before_the_greeting)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.greeting_delay_ms = 2000;
        options(&w, &o);
        o.timeout_ms = 3000;
        driver_start(&w, &o);
        WAIT_FOR(&w, w.sim.open_conns >= 1, 5000);
        bbt_pjlink_sim_drop_all(&w.sim);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT_STR_EQ(bbt_projector_last_error(w.d),
                      "closed: the projector closed the connection before the greeting");
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.fail_closed, 1);
        ASSERT_EQ(st.reconnects, 0);
        world_end(&w);
}

TEST(host_name_is_resolved)
{
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
        struct world w;
        struct bbt_projector_options o;

        /* Only a name that resolves to 127.0.0.1 from /etc/hosts; no other traffic. */
        if (getaddrinfo("localhost", NULL, &hints, &res) != 0)
                bbt_test_skip("localhost does not resolve here");
        freeaddrinfo(res);
        world_init(&w);
        w.sim.power = BBT_POWER_ON;
        options(&w, &o);
        o.host = "localhost"; /* if it also gives ::1 first, that is refused and 127.0.0.1 tried next */
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(w.seen.status.reachable);
        ASSERT_EQ(w.seen.status.power, BBT_POWER_ON);
        world_end(&w);
}

TEST(connection_refused)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        options(&w, &o);
        o.port = (uint16_t)bbt_test_free_port();
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 2, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "connect: 127.0.0.1 port");
        bbt_projector_get_stats(w.d, &st);
        ASSERT_GE(st.fail_connect, 2);
        world_end(&w);
}

TEST(err3_on_lamp_while_warming)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.power = BBT_POWER_WARMING;
        w.sim.err_cmd = "LAMP";
        w.sim.err_code = '3';
        options(&w, &o);
        o.lamp_hours_limit = 1;
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 2, 5000);
        ASSERT(w.seen.status.reachable);
        ASSERT_EQ(w.seen.status.power, BBT_POWER_WARMING);
        ASSERT(!w.seen.status.has_lamp_hours);
        ASSERT(w.seen.status.has_erst);
        ASSERT_EQ(w.seen.n_display, 1);
        ASSERT(w.seen.display_on); /* warming counts as on */
        ASSERT_EQ(w.seen.n_alerts, 0);
        bbt_projector_get_stats(w.d, &st);
        ASSERT_GE(st.cmd_errors, 2);
        world_end(&w);
}

TEST(each_error_code_leaves_the_item_out)
{
        static const char codes[] = { '1', '2', '4' };
        struct world w;
        struct bbt_projector_options o;

        for (size_t i = 0; i < sizeof(codes); i++) {
                world_init(&w);
                w.sim.power = BBT_POWER_ON;
                w.sim.err_cmd = "ERST";
                w.sim.err_code = codes[i];
                options(&w, &o);
                driver_start(&w, &o);
                WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
                ASSERT(w.seen.status.reachable);
                ASSERT(!w.seen.status.has_erst);
                ASSERT(w.seen.status.has_lamp_hours);
                world_end(&w);
        }
        /* ERRA as a parameter is an authentication failure. */
        world_init(&w);
        w.sim.err_cmd = "POWR";
        w.sim.err_code = 'A';
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "ERRA");
        world_end(&w);
}

TEST(display_follows_power)
{
        struct world w;
        struct bbt_projector_options o;

        world_init(&w);
        w.sim.power = BBT_POWER_OFF;
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_display >= 1, 5000);
        ASSERT(!w.seen.display_on);
        w.sim.power = BBT_POWER_WARMING;
        WAIT_FOR(&w, w.seen.n_display >= 2, 5000);
        ASSERT(w.seen.display_on);
        w.sim.power = BBT_POWER_ON; /* still on: no event */
        WAIT_FOR(&w, w.seen.status.power == BBT_POWER_ON, 5000);
        w.sim.power = BBT_POWER_COOLING;
        WAIT_FOR(&w, w.seen.n_display >= 3, 5000);
        ASSERT(!w.seen.display_on);
        w.sim.power = BBT_POWER_OFF;
        WAIT_FOR(&w, w.seen.status.power == BBT_POWER_OFF, 5000);
        ASSERT_EQ(w.seen.n_display, 3);
        world_end(&w);
}

TEST(power_command)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.password = "JBMIAProjectorLink";
        w.sim.power = BBT_POWER_OFF;
        w.sim.warm_ms = 400;
        w.sim.cool_ms = 400;
        options(&w, &o);
        o.password = "JBMIAProjectorLink";
        o.poll_interval_ms = 60000; /* only the poll after the command will show the change */
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_display >= 1, 5000);
        ASSERT(!w.seen.display_on);

        ASSERT_OK(bbt_projector_power(w.d, true, on_power, &w.seen));
        ASSERT_EQ(bbt_projector_power(w.d, false, on_power, &w.seen), -EBUSY);
        WAIT_FOR(&w, w.seen.power_calls == 1, 5000);
        ASSERT_EQ(w.seen.power_status, 0);
        ASSERT_EQ(w.sim.power_sets, 1);
        /* The poll right after shows it warming, and the display on. */
        WAIT_FOR(&w, w.seen.n_display >= 2, 5000);
        ASSERT(w.seen.display_on);
        ASSERT_EQ(w.seen.status.power, BBT_POWER_WARMING);

        /* Off while warming: the projector says ERR3. */
        ASSERT_OK(bbt_projector_power(w.d, false, on_power, &w.seen));
        WAIT_FOR(&w, w.seen.power_calls == 2, 5000);
        ASSERT_EQ(w.seen.power_status, BBT_PJLINK_ERR3);
        ASSERT_STR_CONTAINS(w.seen.power_reason, "ERR3");

        /* Once on, off works; the display follows. */
        WAIT_FOR(&w, w.sim.power == BBT_POWER_ON, 5000);
        ASSERT_OK(bbt_projector_power(w.d, false, on_power, &w.seen));
        WAIT_FOR(&w, w.seen.power_calls == 3, 5000);
        ASSERT_EQ(w.seen.power_status, 0);
        WAIT_FOR(&w, w.seen.n_display >= 3, 5000);
        ASSERT(!w.seen.display_on);
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.power_ok, 2);
        ASSERT_EQ(st.power_failed, 1);
        world_end(&w);
}

TEST(power_command_unreachable_and_cancelled)
{
        struct world w;
        struct bbt_projector_options o;

        world_init(&w);
        w.sim.silent = true;
        options(&w, &o);
        o.timeout_ms = 200;
        o.poll_interval_ms = 60000;
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT_OK(bbt_projector_power(w.d, true, on_power, &w.seen));
        WAIT_FOR(&w, w.seen.power_calls == 1, 5000);
        ASSERT_EQ(w.seen.power_status, -ETIMEDOUT);
        ASSERT_STR_CONTAINS(w.seen.power_reason, "no reply to POWR");

        /* Pending when the driver stops: called back with -ECANCELED. */
        ASSERT_OK(bbt_projector_power(w.d, true, on_power, &w.seen));
        world_end(&w);
        ASSERT_EQ(w.seen.power_calls, 2);
        ASSERT_EQ(w.seen.power_status, -ECANCELED);
}

TEST(quirks_nul_padding_lkup_split_replies)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.cls = 2;
        w.sim.password = "pw";
        w.sim.power = BBT_POWER_ON;
        w.sim.nul_padding = 100;
        w.sim.lkup_before_reply = true;
        w.sim.split_ms = 20;
        w.sim.name = "\xe4\xb8\x89\xe5\xb9\xb4\xe7\xba\xa7\x01";
        options(&w, &o);
        o.password = "pw";
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 2, 8000);
        ASSERT(w.seen.status.reachable);
        ASSERT_EQ(w.seen.n_unreachable, 0);
        ASSERT_EQ(w.seen.status.power, BBT_POWER_ON);
        ASSERT_EQ(w.seen.status.lamp_hours, 1200);
        bbt_projector_get_stats(w.d, &st);
        ASSERT_GE(st.skipped, 9 + 4);
        ASSERT_EQ(st.bad_replies, 0);
        world_end(&w);
}

TEST(garbage_reply_leaves_item_out)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        world_init(&w);
        w.sim.power = BBT_POWER_ON;
        w.sim.raw_cmd = "POWR";
        w.sim.raw_reply = "%1POWR=7";
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(w.seen.status.reachable);
        ASSERT(!w.seen.status.has_power);
        ASSERT_STR_EQ(w.seen.input, "31"); /* the rest is still read */
        ASSERT_EQ(w.seen.n_display, 0);
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.bad_replies, 1);
        world_end(&w);

        /* Not PJLink at all in place of the ERST reply: that item only. */
        world_init(&w);
        w.sim.power = BBT_POWER_ON;
        w.sim.raw_cmd = "ERST";
        w.sim.raw_reply = "HTTP/1.1 400 Bad Request";
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(w.seen.status.reachable);
        ASSERT(w.seen.status.has_power);
        ASSERT(!w.seen.status.has_erst);
        ASSERT(w.seen.status.has_lamp_hours);
        world_end(&w);
}

TEST(overlong_line_is_a_protocol_error)
{
        static char big[300];
        struct world w;
        struct bbt_projector_options o;
        struct bbt_projector_stats st;

        memset(big, 'x', sizeof(big) - 1);
        world_init(&w);
        w.sim.raw_reply = big;
        options(&w, &o);
        driver_start(&w, &o);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        ASSERT(!w.seen.status.reachable);
        ASSERT_STR_CONTAINS(bbt_projector_last_error(w.d), "protocol: a line longer than 136");
        bbt_projector_get_stats(w.d, &st);
        ASSERT_EQ(st.fail_protocol, 1);
        world_end(&w);
}

TEST(stop_mid_poll)
{
        struct world w;
        struct bbt_projector_options o;

        world_init(&w);
        w.sim.silent = true;
        options(&w, &o);
        o.timeout_ms = 10000;
        driver_start(&w, &o);
        WAIT_FOR(&w, w.sim.commands >= 1, 5000);
        world_end(&w); /* stops while waiting for a reply: no leak, no callback after */
        ASSERT_EQ(w.seen.n_status, 0);
}

TEST(stop_without_start_and_bad_options)
{
        struct world w;
        struct bbt_projector_options o;
        struct bbt_driver_env env;
        struct bbt_driver *d = NULL;

        world_init(&w);
        env = (struct bbt_driver_env){ .loop = &w.loop, .root = "/", .events = &w.events };
        options(&w, &o);
        o.host = NULL;
        ASSERT_EQ(bbt_projector_new(&env, &o, &d), -EINVAL);
        o.host = "127.0.0.1";
        o.password = "123456789012345678901234567890123";
        ASSERT_EQ(bbt_projector_new(&env, &o, &d), -EINVAL);
        o.password = "pw\n";
        ASSERT_EQ(bbt_projector_new(&env, &o, &d), -EINVAL);
        o.password = NULL;
        o.lamp_hours_limit = -1;
        ASSERT_EQ(bbt_projector_new(&env, &o, &d), -EINVAL);
        ASSERT(d == NULL);
        o.lamp_hours_limit = 0;
        ASSERT_OK(bbt_projector_new(&env, &o, &w.d));
        ASSERT_EQ(bbt_projector_power(w.d, true, on_power, &w.seen), -EINVAL); /* not started */
        ASSERT_EQ(bbt_projector_power(NULL, true, on_power, &w.seen), -EINVAL);
        w.d->ops->destroy(NULL);
        world_end(&w); /* stop() before start(): DONE still comes from the loop */
}

/* The probe blocks on a private loop, so for it the simulator runs on its own
 * loop in a thread; the test reads the simulator only after joining it. */
struct sim_thread {
        uv_loop_t loop;
        uv_async_t quit;
        uv_thread_t thread;
        struct bbt_pjlink_sim sim;
};

static void sim_quit_cb(uv_async_t *a)
{
        struct sim_thread *t = a->data;

        bbt_pjlink_sim_stop(&t->sim);
        uv_close((uv_handle_t *)&t->quit, NULL);
}

static void sim_thread_main(void *arg)
{
        struct sim_thread *t = arg;

        uv_run(&t->loop, UV_RUN_DEFAULT);
}

/* Probes a driver for 127.0.0.1:PORT into a string (freed by the caller); returns probe()'s answer. */
static int probe_to_string(int port, const char *password, char **ret)
{
        struct bbt_projector_options o;
        struct bbt_driver_env env = { .loop = NULL, .root = "/", .events = NULL };
        struct bbt_driver *d;
        uv_loop_t loop;
        size_t size = 0;
        FILE *out;
        int r;

        ASSERT_OK(uv_loop_init(&loop));
        env.loop = &loop;
        bbt_projector_options_init(&o);
        o.host = "127.0.0.1";
        o.port = (uint16_t)port;
        o.password = password;
        o.timeout_ms = 1000;
        ASSERT_OK(bbt_projector_new(&env, &o, &d));
        out = open_memstream(ret, &size);
        ASSERT(out);
        r = d->ops->probe(d, out);
        fclose(out);
        fprintf(stderr, "%s", *ret);
        d->ops->destroy(d); /* never started */
        bbt_test_loop_close(&loop);
        return r;
}

TEST(probe_prints_what_it_sees)
{
        struct sim_thread t;
        char *text = NULL;

        memset(&t, 0, sizeof(t));
        ASSERT_OK(uv_loop_init(&t.loop));
        bbt_pjlink_sim_init(&t.sim);
        t.sim.cls = 2;
        t.sim.password = "pw";
        t.sim.power = BBT_POWER_ON;
        memcpy(t.sim.erst, "000020", 7);
        t.sim.n_lamps = 2;
        t.sim.lamp_hours[1] = 777;
        t.sim.name = "Room 3-2";
        t.sim.err_cmd = "INFO";
        t.sim.err_code = '1';
        ASSERT_OK(bbt_pjlink_sim_start(&t.sim, &t.loop));
        ASSERT_OK(uv_async_init(&t.loop, &t.quit, sim_quit_cb));
        t.quit.data = &t;
        ASSERT_OK(uv_thread_create(&t.thread, sim_thread_main, &t));

        ASSERT_OK(probe_to_string(t.sim.port, "pw", &text));
        ASSERT_STR_CONTAINS(text, "reachable:    yes (authenticated)");
        ASSERT_STR_CONTAINS(text, "class:        2");
        ASSERT_STR_CONTAINS(text, "power:        on");
        ASSERT_STR_CONTAINS(text, "input:        31");
        ASSERT_STR_CONTAINS(text, "errors:       fan ok, lamp ok, temp ok, cover ok, filter error, other ok");
        ASSERT_STR_CONTAINS(text, "lamps:        1200 h (on), 777 h (on)");
        ASSERT_STR_CONTAINS(text, "name:         \"Room 3-2\"");
        ASSERT_STR_CONTAINS(text, "manufacturer: \"SIMCO\"");
        ASSERT_STR_CONTAINS(text, "product:      \"PJ-1000\"");
        ASSERT_STR_CONTAINS(text, "other info:   unavailable (INFO: ERR1 undefined command)");
        free(text);

        ASSERT_OK(uv_async_send(&t.quit));
        ASSERT_OK(uv_thread_join(&t.thread));
        ASSERT_EQ(t.sim.auth_ok, 1);
        bbt_test_loop_close(&t.loop);
}

TEST(probe_unreachable)
{
        struct world w;
        struct bbt_projector_options o;
        char *text = NULL;
        size_t size = 0;
        FILE *out;
        int r;

        r = probe_to_string(bbt_test_free_port(), NULL, &text);
        ASSERT_EQ(r, -ECONNREFUSED);
        ASSERT_STR_CONTAINS(text, "reachable:    no (connect: 127.0.0.1 port");
        ASSERT_STR_CONTAINS(text, "connection refused");
        free(text);

        /* A running driver's probe also says how its own polls went. */
        world_init(&w);
        options(&w, &o);
        o.port = (uint16_t)bbt_test_free_port();
        driver_start(&w, &o);
        ASSERT_EQ(w.d->ops->start(w.d), -EALREADY);
        WAIT_FOR(&w, w.seen.n_status >= 1, 5000);
        text = NULL;
        out = open_memstream(&text, &size);
        ASSERT(out);
        ASSERT_EQ(w.d->ops->probe(w.d, out), -ECONNREFUSED);
        fclose(out);
        fprintf(stderr, "%s", text);
        ASSERT_STR_CONTAINS(text, "driver:       1 polls, 0 ok; last error: connect: 127.0.0.1 port");
        free(text);
        world_end(&w);
}
