/* The agent's sources: a table of drivers the configuration enables, their event callbacks, the usage tracker. */
#include "agent_internal.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/array.h"
#include "bbt/log.h"
#include "audio.h"
#include "display.h"
#include "health.h"
#include "input.h"
#include "periph.h"
#include "projector.h"
#include "wol.h"

/* ---- what the drivers observe ---- */

static void ev_input(void *userdata, enum bbt_input_class cls, uint64_t count)
{
        struct bbt_agent *a = userdata;

        bbt_usage_tracker_input(&a->sources.usage, cls, (int64_t)count, bbt_agent_now_mono(), bbt_agent_now_real());
}

/* The display counts as on when the panel/monitor or the projector is on. */
static void ev_display(void *userdata, bool on, const char *source)
{
        struct bbt_agent *a = userdata;
        struct bbt_sources *s = &a->sources;

        if (source && strcmp(source, "projector") == 0)
                s->display_projector_on = on;
        else
                s->display_panel_on = on;
        bbt_log_info("display %s (%s)", on ? "on" : "off", source ? source : "?");
        bbt_usage_tracker_display(&s->usage, s->display_panel_on || s->display_projector_on, bbt_agent_now_mono(),
                                  bbt_agent_now_real());
}

static void ev_audio(void *userdata, bool playing)
{
        struct bbt_agent *a = userdata;

        bbt_usage_tracker_audio(&a->sources.usage, playing, bbt_agent_now_mono(), bbt_agent_now_real());
}

static void ev_periph(void *userdata, enum bbt_periph_action action, const struct bbt_dev *dev)
{
        struct bbt_agent *a = userdata;
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_PERIPH);
        m.body.periph.action = action;
        m.body.periph.dev = *dev;
        bbt_log_info("peripheral %s: %s %s", action == BBT_PERIPH_ADD ? "added" : "removed",
                     bbt_periph_kind_name(dev->kind), dev->syspath);
        bbt_produce(a, &m);
}

static void ev_inventory(void *userdata, const struct bbt_dev *devs, size_t n)
{
        struct bbt_agent *a = userdata;
        struct bbt_msg m;

        bbt_sources_inventory(a, &m);
        bbt_produce(a, &m);
}

static void ev_projector(void *userdata, const struct bbt_projector_status *status)
{
        struct bbt_agent *a = userdata;
        struct bbt_sources *s = &a->sources;

        s->projector_status = *status;
        s->projector_status.input = NULL;
        if (status->input) {
                snprintf(s->projector_input, sizeof(s->projector_input), "%s", status->input);
                s->projector_status.input = s->projector_input;
        }
        s->has_projector_status = true;
}

static void ev_alert(void *userdata, const char *code, enum bbt_severity severity, enum bbt_alert_state state,
                     const char *detail)
{
        struct bbt_agent *a = userdata;

        bbt_log_notice("alert %s %s: %s", code, state == BBT_ALERT_RAISED ? "raised" : "cleared",
                       detail ? detail : "");
        bbt_produce_alert(a, code, severity, state, detail);
}

static void ev_problem(void *userdata, const char *source, const char *what)
{
        if (what)
                bbt_log_warning("%s: %s", source, what);
        else
                bbt_log_notice("%s: working again", source);
}

/* ---- the table of sources ---- */

/* What the agent needs a driver for beyond its events. */
enum source_role { ROLE_NONE, ROLE_PERIPH, ROLE_PROJECTOR };

struct bbt_source_kind {
        const char *name;
        enum source_role role;
        /* Whether CFG enables it (read at the start). */
        bool (*enabled)(const struct bbt_agent_config *cfg);
        /* For a driver read at heartbeat time: whether heartbeats carry its
         * readings, asked at each one so that a reload applies at once. NULL:
         * always. */
        bool (*in_heartbeat)(const struct bbt_agent_config *cfg);
        int (*create)(const struct bbt_agent_config *cfg, const struct bbt_driver_env *env, struct bbt_driver **ret);
};

/* Always there (--probe shows it); [health] enabled says whether heartbeats carry it. */
static bool health_enabled(const struct bbt_agent_config *cfg)
{
        return true;
}

static bool health_in_heartbeat(const struct bbt_agent_config *cfg)
{
        return cfg->health_enabled;
}

static int health_create(const struct bbt_agent_config *cfg, const struct bbt_driver_env *env,
                         struct bbt_driver **ret)
{
        struct bbt_health_options o = { .spool_dir = cfg->spool_dir };

        return bbt_health_new(env, &o, ret);
}

static bool input_enabled(const struct bbt_agent_config *cfg)
{
        return cfg->input_enabled;
}

static int input_create(const struct bbt_agent_config *cfg, const struct bbt_driver_env *env,
                        struct bbt_driver **ret)
{
        struct bbt_input_options o = { 0 };

        return bbt_input_new(env, &o, ret);
}

static bool display_enabled(const struct bbt_agent_config *cfg)
{
        return cfg->display_enabled;
}

static int display_create(const struct bbt_agent_config *cfg, const struct bbt_driver_env *env,
                          struct bbt_driver **ret)
{
        struct bbt_display_options o = { 0 };

        return bbt_display_new(env, &o, ret);
}

static bool audio_enabled(const struct bbt_agent_config *cfg)
{
        return cfg->audio_enabled;
}

static int audio_create(const struct bbt_agent_config *cfg, const struct bbt_driver_env *env,
                        struct bbt_driver **ret)
{
        struct bbt_audio_options o = { 0 };

        return bbt_audio_new(env, &o, ret);
}

static bool periph_enabled(const struct bbt_agent_config *cfg)
{
        return cfg->periph_enabled;
}

static int periph_create(const struct bbt_agent_config *cfg, const struct bbt_driver_env *env,
                         struct bbt_driver **ret)
{
        struct bbt_periph_options o = { .debounce_ms = (unsigned)cfg->periph_debounce_ms };

        bbt_periph_expect_parse(cfg->periph_expect ? cfg->periph_expect : "", &o.expect);
        return bbt_periph_new(env, &o, ret);
}

static bool projector_enabled(const struct bbt_agent_config *cfg)
{
        return cfg->projector_host && *cfg->projector_host;
}

static int projector_create(const struct bbt_agent_config *cfg, const struct bbt_driver_env *env,
                            struct bbt_driver **ret)
{
        struct bbt_projector_options o;

        bbt_projector_options_init(&o);
        o.host = cfg->projector_host;
        o.port = (uint16_t)cfg->projector_port;
        o.password = cfg->projector_password && *cfg->projector_password ? cfg->projector_password : NULL;
        o.poll_interval_ms = (uint32_t)cfg->projector_poll_ms;
        o.timeout_ms = (uint32_t)cfg->projector_timeout_ms;
        o.lamp_hours_limit = cfg->projector_lamp_hours_limit;
        o.unreachable_alert_ms = (uint32_t)cfg->projector_unreachable_alert_ms;
        return bbt_projector_new(env, &o, ret);
}

/* In the order they are created, started and probed. A new source is one
 * more line here (and its options in agent_config.c). */
static const struct bbt_source_kind source_kinds[] = {
        { "health", ROLE_NONE, health_enabled, health_in_heartbeat, health_create },
        { "input", ROLE_NONE, input_enabled, NULL, input_create },
        { "display", ROLE_NONE, display_enabled, NULL, display_create },
        { "audio", ROLE_NONE, audio_enabled, NULL, audio_create },
        { "periph", ROLE_PERIPH, periph_enabled, NULL, periph_create },
        { "projector", ROLE_PROJECTOR, projector_enabled, NULL, projector_create },
};

int bbt_sources_create(struct bbt_agent *a, uv_loop_t *loop)
{
        struct bbt_sources *s = &a->sources;
        struct bbt_driver_env env = { .loop = loop, .root = a->cfg.root, .events = &s->events };
        struct bbt_driver *d;
        int r;

        s->events = (struct bbt_driver_events){
                .input = ev_input, .display = ev_display, .audio = ev_audio, .periph = ev_periph,
                .inventory = ev_inventory, .projector = ev_projector, .alert = ev_alert, .problem = ev_problem,
                .userdata = a,
        };
        for (size_t i = 0; i < BBT_ELEMENTSOF(source_kinds); i++) {
                const struct bbt_source_kind *k = &source_kinds[i];

                if (!k->enabled(&a->cfg))
                        continue;
                r = bbt_array_reserve((void **)&s->list, &s->cap, s->n + 1, sizeof(*s->list));
                if (r == 0)
                        r = k->create(&a->cfg, &env, &d);
                if (r < 0) {
                        bbt_log_error("drivers: cannot create driver %s: %s", k->name, strerror(-r));
                        return r;
                }
                s->list[s->n++] = (struct bbt_source){ .driver = d, .kind = k };
                if (k->role == ROLE_PERIPH)
                        s->periph = d;
                else if (k->role == ROLE_PROJECTOR)
                        s->projector = d;
        }
        return 0;
}

/* ---- usage ---- */

static void usage_emit_cb(void *userdata, const struct bbt_usage *interval)
{
        struct bbt_agent *a = userdata;
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_USAGE);
        m.body.usage = *interval;
        bbt_produce(a, &m);
}

static void usage_timer_cb(uv_timer_t *t);

/* Wakes at the tracker's next deadline: an idle timeout, an hour, a flush. */
static void arm_usage_timer(struct bbt_agent *a)
{
        int64_t due = bbt_usage_tracker_next_deadline(&a->sources.usage) - bbt_agent_now_mono();

        uv_timer_start(&a->sources.usage_timer, usage_timer_cb, due > 0 ? (uint64_t)due : 0, 0);
}

static void usage_timer_cb(uv_timer_t *t)
{
        struct bbt_agent *a = bbt_container_of(t, struct bbt_agent, sources.usage_timer);

        bbt_usage_tracker_tick(&a->sources.usage, bbt_agent_now_mono(), bbt_agent_now_real());
        arm_usage_timer(a);
}

void bbt_sources_init(struct bbt_agent *a)
{
        struct bbt_sources *s = &a->sources;

        uv_timer_init(a->loop, &s->usage_timer);
        bbt_usage_tracker_init(&s->usage, a->cfg.idle_timeout_ms, a->cfg.usage_flush_ms, usage_emit_cb, a,
                               bbt_agent_now_mono(), bbt_agent_now_real());
        arm_usage_timer(a);
}

void bbt_sources_start(struct bbt_agent *a)
{
        struct bbt_sources *s = &a->sources;

        for (size_t i = 0; i < s->n; i++) {
                struct bbt_driver *d = s->list[i].driver;
                int q = d->ops->start(d);

                if (q < 0)
                        bbt_log_warning("driver %s: cannot start: %s; carrying on without it", d->ops->name,
                                        strerror(-q));
        }
}

void bbt_sources_reload(struct bbt_agent *a)
{
        a->sources.usage.idle_timeout_ms = a->cfg.idle_timeout_ms;
        a->sources.usage.flush_ms = a->cfg.usage_flush_ms;
        arm_usage_timer(a);
}

void bbt_sources_flush(struct bbt_agent *a)
{
        uv_timer_stop(&a->sources.usage_timer);
        bbt_usage_tracker_flush(&a->sources.usage, bbt_agent_now_mono(), bbt_agent_now_real());
}

static void driver_stopped_cb(void *userdata)
{
}

void bbt_sources_stop(struct bbt_agent *a)
{
        struct bbt_sources *s = &a->sources;

        for (size_t i = 0; i < s->n; i++)
                s->list[i].driver->ops->stop(s->list[i].driver, driver_stopped_cb, a);
        bbt_agent_close_handle(a, (uv_handle_t *)&s->usage_timer);
}

int bbt_sources_probe(struct bbt_agent *a, FILE *out)
{
        struct bbt_sources *s = &a->sources;
        int problems = 0;

        for (size_t i = 0; i < s->n; i++) {
                struct bbt_driver *d = s->list[i].driver;
                int q;

                fprintf(out, "\n== %s ==\n", d->ops->name);
                q = d->ops->probe(d, out);
                if (q < 0) {
                        fprintf(out, "PROBLEM: %s: %s\n", d->ops->name, strerror(-q));
                        problems++;
                }
        }
        return problems;
}

void bbt_sources_destroy(struct bbt_agent *a)
{
        struct bbt_sources *s = &a->sources;

        while (s->n) {
                struct bbt_driver *d = s->list[--s->n].driver;

                d->ops->destroy(d);
        }
        free(s->list);
        s->list = NULL;
        s->cap = 0;
        s->periph = s->projector = NULL;
}

/* ---- what a heartbeat carries ---- */

void bbt_sources_heartbeat(struct bbt_agent *a, struct bbt_hb *hb)
{
        struct bbt_sources *s = &a->sources;

        for (size_t i = 0; i < s->n; i++) {
                struct bbt_driver *d = s->list[i].driver;
                const struct bbt_source_kind *k = s->list[i].kind;

                if (d->ops->heartbeat && (!k->in_heartbeat || k->in_heartbeat(&a->cfg)))
                        d->ops->heartbeat(d, hb);
        }
        hb->state = bbt_usage_tracker_state(&s->usage);
        if (s->has_projector_status) {
                hb->has_projector = true;
                hb->projector = s->projector_status;
        }
}

void bbt_sources_inventory(struct bbt_agent *a, struct bbt_msg *m)
{
        bbt_msg_init(m, BBT_CH_INVENTORY);
        if (a->sources.periph) {
                const struct bbt_dev *devs;

                m->body.inventory.n_devices = bbt_periph_inventory(a->sources.periph, &devs);
                m->body.inventory.devices = (struct bbt_dev *)devs;
        }
        /* The wired NIC, for Wake-on-LAN: a neighbour's aggregator command
         * needs this terminal's MAC and subnet. */
        if (bbt_wired_nic_find(a->cfg.root, a->cfg.network_interface, &a->sources.nic) == 0) {
                struct bbt_net_addr *n = &m->body.inventory.net;

                m->body.inventory.has_net = true;
                n->ifname = a->sources.nic.ifname;
                n->mac = a->sources.nic.mac;
                if (a->sources.nic.has_ipv4) {
                        n->ipv4 = a->sources.nic.ipv4;
                        n->has_prefix = true;
                        n->prefix = a->sources.nic.prefix;
                }
        }
}
