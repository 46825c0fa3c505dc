/* The power schedule: kept in state_dir/power, fired by a timer on the wall clock, postponed while the board is in use, carried out through the [power] method's ops on a worker thread. */
#include "agent_internal.h"
#include "poweroff.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bbt/log.h"
#include "power.h"

#define RECHECK_MS 60000 /* the timer never sleeps longer: the wall clock may step */
#define MIN_MS 60000

/* T as local time, "2026-12-07 18:00:00 +0800". */
static const char *local_text(int64_t t, char *buf, size_t size)
{
        time_t s = (time_t)(t / 1000);
        struct tm tm;

        if (!localtime_r(&s, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
                snprintf(buf, size, "%" PRId64 " ms", t);
        return buf;
}

static int64_t due(const struct bbt_power_entry *e)
{
        return e->at + e->postponed;
}

static int64_t step_ms(const struct bbt_agent *a)
{
        return a->power.step_ms > 0 ? a->power.step_ms : a->cfg.power_postpone_step_ms;
}

static int64_t max_ms(const struct bbt_agent *a)
{
        return a->power.max_ms >= 0 ? a->power.max_ms : a->cfg.power_postpone_max_ms;
}

static int at_bound(const struct bbt_agent *a)
{
        return a->power.at_bound >= 0 ? a->power.at_bound : a->cfg.power_at_bound;
}

static int cmp_entry(const void *x, const void *y)
{
        int64_t a = due(x), b = due(y);

        return a < b ? -1 : a > b;
}

/* ---- the file ---- */

/*
 * state_dir/power, replaced atomically at every change:
 *
 *   version=1
 *   rev=3
 *   step_ms=600000          (absent: the configuration's)
 *   max_ms=3600000
 *   at_bound=poweroff
 *   entry=AT POSTPONED ORIGIN
 */
static int save(struct bbt_agent *a)
{
        struct bbt_poweroff *p = &a->power;
        size_t size = 256 + p->n * 120, len;
        char *text = malloc(size);
        int r;

        if (!text)
                return -ENOMEM;
        len = (size_t)snprintf(text, size, "version=1\nrev=%" PRId64 "\n", p->rev);
        if (p->step_ms > 0)
                len += (size_t)snprintf(text + len, size - len, "step_ms=%" PRId64 "\n", p->step_ms);
        if (p->max_ms >= 0)
                len += (size_t)snprintf(text + len, size - len, "max_ms=%" PRId64 "\n", p->max_ms);
        if (p->at_bound >= 0)
                len += (size_t)snprintf(text + len, size - len, "at_bound=%s\n", bbt_agent_at_bound_names[p->at_bound]);
        for (size_t i = 0; i < p->n; i++)
                len += (size_t)snprintf(text + len, size - len, "entry=%" PRId64 " %" PRId64 " %s\n", p->e[i].at,
                                        p->e[i].postponed, p->e[i].origin);
        r = bbt_agent_state_write(a->cfg.state_dir, BBT_POWER_FILE, text);
        free(text);
        if (r < 0)
                bbt_log_error("%s/" BBT_POWER_FILE ": cannot save the power schedule: %s", a->cfg.state_dir,
                              strerror(-r));
        return r;
}

static void reset(struct bbt_poweroff *p)
{
        p->rev = 0;
        p->step_ms = 0;
        p->max_ms = -1;
        p->at_bound = -1;
        p->n = 0;
}

/* Returns 0, or the 1-based number of the first bad line. */
static int parse(struct bbt_poweroff *p, char *text)
{
        char *line, *save_ptr = NULL;
        int n = 0;

        for (line = strtok_r(text, "\n", &save_ptr); line; line = strtok_r(NULL, "\n", &save_ptr)) {
                struct bbt_power_entry e = { 0 };
                long long x, y;
                int used = 0;

                n++;
                if (sscanf(line, "version=%lld%n", &x, &used) == 1 && !line[used] && x == 1)
                        continue;
                if (sscanf(line, "rev=%lld%n", &x, &used) == 1 && !line[used] && x >= 0)
                        p->rev = x;
                else if (sscanf(line, "step_ms=%lld%n", &x, &used) == 1 && !line[used] && x >= 1000 && x <= 3600000)
                        p->step_ms = x;
                else if (sscanf(line, "max_ms=%lld%n", &x, &used) == 1 && !line[used] && x >= 0 && x <= 86400000)
                        p->max_ms = x;
                else if (strcmp(line, "at_bound=poweroff") == 0)
                        p->at_bound = BBT_AT_BOUND_POWEROFF;
                else if (strcmp(line, "at_bound=skip") == 0)
                        p->at_bound = BBT_AT_BOUND_SKIP;
                else if (sscanf(line, "entry=%lld %lld %71s%n", &x, &y, e.origin, &used) == 3 && !line[used] &&
                         x >= 0 && y >= 0 && p->n < BBT_ELEMENTSOF(p->e)) {
                        e.at = x, e.postponed = y;
                        p->e[p->n++] = e;
                } else
                        return n;
        }
        return 0;
}

static void load(struct bbt_agent *a)
{
        struct bbt_poweroff *p = &a->power;
        char *text = malloc(16384), path[512];
        int r, bad;

        reset(p);
        if (!text)
                return;
        r = bbt_agent_state_read(a->cfg.state_dir, BBT_POWER_FILE, text, 16384);
        if (r == -ENOENT) {
                free(text);
                return;
        }
        bad = r < 0 ? 0 : parse(p, text);
        free(text);
        if (r < 0 || bad) {
                /* Set aside for a look, never guessed at: no schedule until
                 * the aggregator sends it again (it does at every birth). */
                snprintf(path, sizeof(path), "%s/" BBT_POWER_FILE, a->cfg.state_dir);
                if (r < 0)
                        bbt_log_error("%s: %s; no power schedule until the aggregator sends one", path, strerror(-r));
                else
                        bbt_log_error("%s:%d: not understood; no power schedule until the aggregator sends one (the "
                                      "file is kept as %s.bad)", path, bad, path);
                if (r == 0) {
                        char bad_path[520];

                        snprintf(bad_path, sizeof(bad_path), "%s.bad", path);
                        rename(path, bad_path);
                }
                reset(p);
                return;
        }
        qsort(p->e, p->n, sizeof(p->e[0]), cmp_entry);
        if (p->n) {
                char when[64];

                bbt_log_info("power schedule (rev %" PRId64 "): %zu power-off time%s, the next at %s", p->rev, p->n,
                             p->n == 1 ? "" : "s", local_text(due(&p->e[0]), when, sizeof(when)));
        }
}

/* ---- firing ---- */

static void arm(struct bbt_agent *a);

static void event(struct bbt_agent *a, const char *code, enum bbt_severity sev, const char *detail)
{
        struct bbt_msg m;

        bbt_log_notice("power: %s: %s", code, detail);
        bbt_msg_init(&m, BBT_CH_ALERT);
        m.body.alert.code = code;
        m.body.alert.severity = sev;
        m.body.alert.state = BBT_ALERT_RAISED;
        m.body.alert.detail = detail;
        m.body.alert.has_event = m.body.alert.event = true;
        bbt_produce(a, &m);
}

static void remove_first(struct bbt_poweroff *p)
{
        memmove(&p->e[0], &p->e[1], (p->n - 1) * sizeof(p->e[0]));
        p->n--;
}

static void work_cb(uv_work_t *w)
{
        struct bbt_poweroff *p = &((struct bbt_agent *)w->data)->power;
        const struct bbt_power_ops *ops = p->work_ops;

        p->work_err[0] = '\0';
        p->work_status = ops ? ops->poweroff(p->work_target, p->work_err, sizeof(p->work_err)) : -EINVAL;
}

static void after_work_cb(uv_work_t *w, int status)
{
        struct bbt_agent *a = w->data;
        char detail[320];

        a->power.working = false;
        if (a->stopped)
                return;
        if (status == 0 && a->power.work_status == 0) {
                bbt_log_notice("power: power-off requested (%s)", a->power.work_method);
        } else {
                snprintf(detail, sizeof(detail), "power-off failed: %s",
                         a->power.work_err[0] ? a->power.work_err : strerror(-a->power.work_status));
                event(a, "power_failed", BBT_SEVERITY_ERROR, detail);
        }
        arm(a);
}

/* Whether someone is using the board now (the usage tracker's state). */
static bool in_use(struct bbt_agent *a)
{
        bbt_usage_tracker_tick(&a->sources.usage, bbt_agent_now_mono(), bbt_agent_now_real());
        return bbt_usage_tracker_state(&a->sources.usage) == BBT_USAGE_ACTIVE;
}

static void origin_text(const struct bbt_power_entry *e, char *buf, size_t size)
{
        char when[64];

        local_text(e->at, when, sizeof(when));
        if (strcmp(e->origin, "schedule") == 0)
                snprintf(buf, size, "scheduled power-off at %s", when);
        else
                snprintf(buf, size, "power-off at %s (command %s)", when, e->origin);
}

/* Carries out or postpones the first entry, which is due. */
static void fire(struct bbt_agent *a, int64_t now)
{
        struct bbt_poweroff *p = &a->power;
        struct bbt_power_entry e = p->e[0];
        char what[160], when[64], detail[400];

        origin_text(&e, what, sizeof(what));
        if (now - due(&e) > BBT_POWER_LATE_MS) {
                bbt_log_notice("power: %s missed (the agent was not running then); not carried out", what);
                remove_first(p);
                save(a);
                return;
        }
        if (in_use(a)) {
                if (e.postponed + step_ms(a) <= max_ms(a)) {
                        p->e[0].postponed += step_ms(a);
                        qsort(p->e, p->n, sizeof(p->e[0]), cmp_entry);
                        snprintf(detail, sizeof(detail), "%s: the board is in use; postponed %" PRId64 " s to %s (%" PRId64
                                 " of at most %" PRId64 " s)", what, step_ms(a) / 1000,
                                 local_text(due(&e) + step_ms(a), when, sizeof(when)), (e.postponed + step_ms(a)) / 1000,
                                 max_ms(a) / 1000);
                        save(a);
                        event(a, "power_postponed", BBT_SEVERITY_WARNING, detail);
                        return;
                }
                if (at_bound(a) == BBT_AT_BOUND_SKIP) {
                        snprintf(detail, sizeof(detail), "%s: the board is still in use after %" PRId64
                                 " s of postponement; not powered off this time", what, e.postponed / 1000);
                        remove_first(p);
                        save(a);
                        event(a, "power_skipped", BBT_SEVERITY_WARNING, detail);
                        return;
                }
        }
        if (e.postponed)
                snprintf(detail, sizeof(detail), "%s, postponed %" PRId64 " s: powering off (%s)%s", what,
                         e.postponed / 1000, a->cfg.power_method,
                         in_use(a) ? "; the board was still in use at the bound" : "");
        else
                snprintf(detail, sizeof(detail), "%s: powering off (%s)", what, a->cfg.power_method);
        remove_first(p);
        save(a);
        event(a, "power_off", BBT_SEVERITY_WARNING, detail);
        /* The event is in the spool before the request: a logind shutdown
         * stops the agent cleanly, which sends what it can. */
        a->power.working = true;
        a->power.work.data = a;
        a->power.work_ops = bbt_power_ops_find(a->cfg.power_method);
        snprintf(a->power.work_method, sizeof(a->power.work_method), "%s", a->cfg.power_method);
        snprintf(a->power.work_target, sizeof(a->power.work_target), "%s/poweroff.dry-run", a->cfg.state_dir);
        if (uv_queue_work(a->loop, &a->power.work, work_cb, after_work_cb) < 0) {
                a->power.working = false;
                event(a, "power_failed", BBT_SEVERITY_ERROR, "power-off failed: cannot start the request");
        }
}

static void timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = bbt_container_of(t, struct bbt_agent, power.timer);
        int64_t now = bbt_agent_now_real();

        /* One at a time, while the previous request is pending. */
        while (!a->power.working && a->power.n && due(&a->power.e[0]) <= now)
                fire(a, now);
        arm(a);
}

static void arm(struct bbt_agent *a)
{
        int64_t wait;

        if (!a->power.timer_open || a->stopping)
                return;
        if (a->power.n == 0 || a->power.working) {
                uv_timer_stop(&a->power.timer);
                return;
        }
        wait = due(&a->power.e[0]) - bbt_agent_now_real();
        if (wait < 0)
                wait = 0;
        uv_timer_start(&a->power.timer, timer_cb, (uint64_t)(wait < RECHECK_MS ? wait : RECHECK_MS), 0);
}

void bbt_poweroff_start(struct bbt_agent *a)
{
        uv_timer_init(a->loop, &a->power.timer);
        a->power.timer_open = true;
        load(a);
        arm(a);
}

void bbt_poweroff_close(struct bbt_agent *a)
{
        if (!a->power.timer_open)
                return;
        bbt_agent_close_handle(a, (uv_handle_t *)&a->power.timer);
}

/* ---- the commands ---- */

static cJSON *next_result(struct bbt_agent *a)
{
        cJSON *r = cJSON_CreateObject();
        char when[64];

        cJSON_AddNumberToObject(r, "pending", (double)a->power.n);
        if (a->power.n) {
                cJSON_AddNumberToObject(r, "next", (double)due(&a->power.e[0]));
                cJSON_AddStringToObject(r, "next_local", local_text(due(&a->power.e[0]), when, sizeof(when)));
        }
        return r;
}

int bbt_poweroff_at(struct bbt_agent *a, const char *id, int64_t at, cJSON **ret_result, char *err, size_t err_size)
{
        struct bbt_poweroff *p = &a->power;
        int64_t now = bbt_agent_now_real();
        size_t once = 0;
        char when[64];

        if (now - at > BBT_POWER_LATE_MS) {
                snprintf(err, err_size, "expired: args.at (%s) is %" PRId64 " s in the past", local_text(at, when, sizeof(when)),
                         (now - at) / 1000);
                return -ETIME;
        }
        for (size_t i = 0; i < p->n; i++)
                once += strcmp(p->e[i].origin, "schedule") != 0;
        if (once >= BBT_POWER_ONCE_MAX || p->n >= BBT_ELEMENTSOF(p->e)) {
                snprintf(err, err_size, "busy: %d one-off power-offs are pending already", BBT_POWER_ONCE_MAX);
                return -EBUSY;
        }
        p->e[p->n] = (struct bbt_power_entry){ .at = at };
        snprintf(p->e[p->n].origin, sizeof(p->e[0].origin), "%s", id);
        p->n++;
        qsort(p->e, p->n, sizeof(p->e[0]), cmp_entry);
        save(a);
        bbt_log_notice("power: power-off at %s (command %s)", local_text(at, when, sizeof(when)), id);
        *ret_result = next_result(a);
        arm(a);
        return 0;
}

static int64_t int_arg(const cJSON *args, const char *name, int64_t absent)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);

        return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : absent;
}

int bbt_poweroff_schedule(struct bbt_agent *a, const cJSON *args, cJSON **ret_result, char *err, size_t err_size)
{
        struct bbt_poweroff *p = &a->power, fresh;
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(args, "off"), *item;
        const cJSON *bound = cJSON_GetObjectItemCaseSensitive(args, "at_bound");
        int64_t now = bbt_agent_now_real(), prev = -1, t;
        size_t i = 0, past = 0;
        cJSON *result;
        char when[64];

        /* The decoder checked the shapes; the calendar and the order are ours. */
        memset(&fresh.e, 0, sizeof(fresh.e));
        fresh.n = 0;
        fresh.rev = int_arg(args, "rev", 0);
        fresh.step_ms = int_arg(args, "postpone_step", 0) * 1000;
        fresh.max_ms = int_arg(args, "postpone_max", -1000) * 1000;
        if (fresh.max_ms < 0)
                fresh.max_ms = -1;
        fresh.at_bound = !cJSON_IsString(bound) ? -1
                         : strcmp(bound->valuestring, "skip") == 0 ? BBT_AT_BOUND_SKIP : BBT_AT_BOUND_POWEROFF;
        cJSON_ArrayForEach(item, off) {
                if (bbt_rfc3339_parse(item->valuestring, &t, NULL) < 0) {
                        snprintf(err, err_size, "args.off[%zu]: %s is not a date", i, item->valuestring);
                        return -EINVAL;
                }
                if (t <= prev) {
                        snprintf(err, err_size, "args.off[%zu]: %s is not after the time before it", i,
                                 item->valuestring);
                        return -EINVAL;
                }
                prev = t;
                i++;
                if (t < now) {
                        past++;
                        continue;
                }
                fresh.e[fresh.n] = (struct bbt_power_entry){ .at = t };
                snprintf(fresh.e[fresh.n].origin, sizeof(fresh.e[0].origin), "schedule");
                /* A time already postponed keeps its postponement. */
                for (size_t k = 0; k < p->n; k++)
                        if (p->e[k].at == t && strcmp(p->e[k].origin, "schedule") == 0)
                                fresh.e[fresh.n].postponed = p->e[k].postponed;
                fresh.n++;
        }
        /* One-off power-offs (shutdown_at) stay; the schedule is replaced. */
        for (size_t k = 0; k < p->n && fresh.n < BBT_ELEMENTSOF(fresh.e); k++)
                if (strcmp(p->e[k].origin, "schedule") != 0)
                        fresh.e[fresh.n++] = p->e[k];
        qsort(fresh.e, fresh.n, sizeof(fresh.e[0]), cmp_entry);
        p->rev = fresh.rev, p->step_ms = fresh.step_ms, p->max_ms = fresh.max_ms, p->at_bound = fresh.at_bound;
        memcpy(p->e, fresh.e, sizeof(p->e));
        p->n = fresh.n;
        if (save(a) < 0) {
                snprintf(err, err_size, "cannot save %s/" BBT_POWER_FILE " (it is applied until the agent stops)",
                         a->cfg.state_dir);
                arm(a);
                return -EIO;
        }
        bbt_log_notice("power schedule rev %" PRId64 ": %zu power-off time%s%s%s (%zu in the past ignored)", p->rev,
                       p->n, p->n == 1 ? "" : "s", p->n ? ", the next at " : "",
                       p->n ? local_text(due(&p->e[0]), when, sizeof(when)) : "", past);
        result = next_result(a);
        cJSON_AddNumberToObject(result, "rev", (double)p->rev);
        cJSON_AddNumberToObject(result, "past", (double)past);
        cJSON_AddNumberToObject(result, "postpone_step", (double)(step_ms(a) / 1000));
        cJSON_AddNumberToObject(result, "postpone_max", (double)(max_ms(a) / 1000));
        cJSON_AddStringToObject(result, "at_bound", bbt_agent_at_bound_names[at_bound(a)]);
        *ret_result = result;
        arm(a);
        return 0;
}
