/* bbt-sim's scenario: a seeded county of schools and terminals, their school week as protocol messages, and its ground truth. */
#include "scenario.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define MIN_MS 60000LL
#define DAY_MS 86400000LL
#define MARGIN_MIN 30
#define USED_MIN 10       /* the aggregator's default used_day_min and used_period_min */
#define WEEKLY_MIN 10     /* the aggregator's default weekly_lessons_min (per 5 school days) */
#define MIN_PUPILS 50

static const char *const profile_names[SIM_PROFILE__COUNT] = { "touch", "video", "rare", "standby_only", "never" };

const char *sim_profile_name(enum sim_profile p)
{
        return p < SIM_PROFILE__COUNT ? profile_names[p] : "?";
}

/* ---- a seeded generator (splitmix64) ---- */

static uint64_t rng_next(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* Uniform in 0 .. n-1. */
static int rng_int(uint64_t *s, int n)
{
        return n <= 1 ? 0 : (int)(rng_next(s) % (uint64_t)n);
}

static bool rng_chance(uint64_t *s, int percent)
{
        return rng_int(s, 100) < percent;
}

/* ---- the calendar of the week ---- */

/* Monday..Thursday: school; Friday: a county holiday; Saturday: a county 调休
 * make-up day; Sunday: none. A school "on holiday" is off Tuesday..Thursday. */
bool sim_school_day(const struct sim_scenario *s, const struct sim_school *sc, int d)
{
        (void)s;
        if (sc->holiday && d >= 1 && d <= 3)
                return false;
        return d <= 3 || d == 5;
}

static const struct sim_bells *bells_of(const struct sim_scenario *s, const struct sim_school *sc)
{
        return sc->own_bells ? &s->own_bells : &s->county_bells;
}

static void window_of(const struct sim_bells *b, int *ret_start, int *ret_end)
{
        *ret_start = b->p[0].start_min - MARGIN_MIN;
        *ret_end = b->p[b->n - 1].end_min + MARGIN_MIN;
}

/* ---- messages ---- */

static int64_t day_ms(const struct sim_scenario *s, int d, int minute)
{
        return ((int64_t)(s->o.monday + d) * DAY_MS) - (int64_t)s->o.offset_min * MIN_MS + minute * MIN_MS;
}

int sim_append(struct sim_terminal *t, struct bbt_msg *m)
{
        char *json = NULL;
        size_t len = 0;
        int r;

        if (t->n_msgs == t->cap_msgs) {
                size_t cap = t->cap_msgs ? t->cap_msgs * 2 : 256;
                struct sim_msg *n = realloc(t->msgs, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                t->msgs = n;
                t->cap_msgs = cap;
        }
        m->seq = (int64_t)t->n_msgs + 1;
        r = bbt_msg_encode(m, &json, &len, NULL);
        if (r < 0)
                return r;
        t->msgs[t->n_msgs].channel = m->channel;
        t->msgs[t->n_msgs].json = json;
        t->msgs[t->n_msgs].len = len;
        t->n_msgs++;
        return 0;
}

static int add_hb(struct sim_terminal *t, int64_t ts, enum bbt_usage_state state, int64_t depth)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_HB);
        m.ts = ts;
        m.boot = 1;
        m.body.hb.uptime = 3600;
        m.body.hb.load[0] = 0.3;
        m.body.hb.load[1] = 0.25;
        m.body.hb.load[2] = 0.2;
        m.body.hb.cpu = 4.5;
        m.body.hb.mem_total = 8LL << 30;
        m.body.hb.mem_available = 5LL << 30;
        m.body.hb.disk_root.total = 120LL << 30;
        m.body.hb.disk_root.free = 80LL << 30;
        m.body.hb.state = state;
        m.body.hb.spool_depth = depth;
        m.body.hb.clock_synced = t->skew_ms == 0;
        if (t->lamp) {
                m.body.hb.has_projector = true;
                m.body.hb.projector.reachable = true;
                m.body.hb.projector.has_power = true;
                m.body.hb.projector.power = BBT_POWER_ON;
                m.body.hb.projector.has_lamp_hours = true;
                m.body.hb.projector.lamp_hours = 3600;
        }
        return sim_append(t, &m);
}

static int add_alert(struct sim_terminal *t, int64_t ts, const char *code, bool raised, const char *detail)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_ALERT);
        m.ts = ts;
        m.boot = 1;
        m.body.alert.code = code;
        m.body.alert.severity = BBT_SEVERITY_WARNING;
        m.body.alert.state = raised ? BBT_ALERT_RAISED : BBT_ALERT_CLEARED;
        m.body.alert.detail = detail;
        return sim_append(t, &m);
}

/* One usage interval [A, B) in minutes of day D, on the true clock. */
struct seg {
        int a, b;
        enum bbt_usage_state state;
        int period; /* active inside this period, or -1 */
};

struct day_plan {
        struct seg seg[64];
        int n;
};

static void plan_add(struct day_plan *p, int a, int b, enum bbt_usage_state st, int period)
{
        if (b <= a || p->n == (int)(sizeof(p->seg) / sizeof(p->seg[0])))
                return;
        p->seg[p->n++] = (struct seg){ a, b, st, period };
}

/* The day of a terminal that is used: power on, periods used or not, power off. */
static void plan_day(uint64_t *rng, const struct sim_bells *b, enum sim_profile prof, bool rare_day,
                     struct day_plan *p)
{
        int ws, we, on, off, cur;
        int use_pct = prof == SIM_TOUCH ? 75 : prof == SIM_VIDEO ? 50 : rare_day ? 40 : 0;

        p->n = 0;
        window_of(b, &ws, &we);
        on = ws + 10 + rng_int(rng, 15);
        off = we - 10 - rng_int(rng, 15);
        if (prof == SIM_STANDBY_ONLY) {
                plan_add(p, on, off, BBT_USAGE_STANDBY, -1);
                return;
        }
        cur = on;
        for (int k = 0; k < b->n; k++) {
                const struct sim_period *q = &b->p[k];
                bool lunch = k > 0 && q->start_min - b->p[k - 1].end_min > 60;

                plan_add(p, cur, q->start_min, k == 0 || lunch ? BBT_USAGE_STANDBY : BBT_USAGE_IDLE, -1);
                if (rng_chance(rng, use_pct)) {
                        int a = q->start_min + 1 + rng_int(rng, 3);
                        int len = q->end_min - a;
                        int dur = 12 + rng_int(rng, len - 12 + 1);

                        plan_add(p, q->start_min, a, BBT_USAGE_IDLE, -1);
                        plan_add(p, a, a + dur, BBT_USAGE_ACTIVE, k);
                        plan_add(p, a + dur, q->end_min, BBT_USAGE_IDLE, -1);
                } else {
                        plan_add(p, q->start_min, q->end_min, rng_chance(rng, 50) ? BBT_USAGE_IDLE : BBT_USAGE_STANDBY,
                                 -1);
                }
                cur = q->end_min;
        }
        plan_add(p, cur, off, BBT_USAGE_STANDBY, -1);
}

/* A short session on a day off (a holiday): it must not count. */
static void plan_off_day(struct day_plan *p)
{
        p->n = 0;
        plan_add(p, 9 * 60, 9 * 60 + 40, BBT_USAGE_ACTIVE, -1);
}

static int64_t overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1)
{
        int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;

        return hi > lo ? hi - lo : 0;
}

/* The night truth of [C, CE) on day D with school hours [W0, W1): its time
 * before 06:00 or from 22:00 outside them, and the nights it falls in. */
static void night_add(const struct sim_scenario *s, struct sim_terminal *t, int d, int64_t c, int64_t ce, int64_t w0,
                      int64_t w1)
{
        int64_t d0 = day_ms(s, d, 0), morning = day_ms(s, d, 6 * 60), evening = day_ms(s, d, 22 * 60);
        int64_t d1 = day_ms(s, d, 24 * 60);

        t->day[d].night_ms += overlap(c, ce, d0, morning) - overlap(c > w0 ? c : w0, ce < w1 ? ce : w1, d0, morning);
        t->day[d].night_ms += overlap(c, ce, evening, d1) - overlap(c > w0 ? c : w0, ce < w1 ? ce : w1, evening, d1);
        if (overlap(c, ce, evening, d1) > 0)
                t->night_on[d] = true;
        if (d > 0 && overlap(c, ce, d0, morning) > 0)
                t->night_on[d - 1] = true;
}

/* A terminal left on (T->left_on) is on in standby around what P plans for
 * day D: from midnight and until midnight, or the whole day if P is empty;
 * with a power-off schedule it goes off at that time and stays off until
 * it is switched on again. A schedule cuts every plan at its time. */
static void plan_after_hours(const struct sim_scenario *s, const struct sim_terminal *t, struct day_plan *p)
{
        struct day_plan q = { .n = 0 };
        int off = s->o.power_off_min > 0 ? s->o.power_off_min : -1;

        if (t->left_on) {
                if (off < 0 && p->n == 0) {
                        plan_add(&q, 0, 24 * 60, BBT_USAGE_STANDBY, -1);
                } else if (p->n > 0) {
                        if (off < 0)
                                plan_add(&q, 0, p->seg[0].a, BBT_USAGE_STANDBY, -1);
                        for (int i = 0; i < p->n; i++)
                                plan_add(&q, p->seg[i].a, p->seg[i].b, p->seg[i].state, p->seg[i].period);
                        plan_add(&q, p->seg[p->n - 1].b, off < 0 ? 24 * 60 : off, BBT_USAGE_STANDBY, -1);
                }
                *p = q;
        }
        if (off < 0)
                return;
        q.n = 0;
        for (int i = 0; i < p->n; i++)
                plan_add(&q, p->seg[i].a, p->seg[i].b < off ? p->seg[i].b : off, p->seg[i].state, p->seg[i].period);
        *p = q;
}

/* Emits the plan of day D as usage intervals (cut every chunk_s) and
 * heartbeats, in time order, and adds it to the truth of that day. */
static int emit_day(struct sim_scenario *s, struct sim_terminal *t, int d, const struct day_plan *p, uint64_t *rng)
{
        const struct sim_school *sc = &s->schools[t->school];
        struct sim_day *day = &t->day[d];
        int64_t hb_step = (int64_t)s->o.hb_interval_s * 1000, chunk = (int64_t)s->o.chunk_s * 1000;
        int64_t start, end, next_hb;
        int ws, we, r = 0;

        if (p->n == 0)
                return 0;
        window_of(bells_of(s, sc), &ws, &we);
        start = day_ms(s, d, p->seg[0].a);
        end = day_ms(s, d, p->seg[p->n - 1].b);
        next_hb = start;
        for (int i = 0; r == 0 && i < p->n; i++) {
                const struct seg *g = &p->seg[i];
                int64_t a = day_ms(s, d, g->a), b = day_ms(s, d, g->b);
                int64_t w0 = day_ms(s, d, ws), w1 = day_ms(s, d, we);

                for (int64_t c = a; r == 0 && c < b; c += chunk) {
                        int64_t ce = c + chunk < b ? c + chunk : b, len = ce - c;
                        int64_t lo = c > w0 ? c : w0, hi = ce < w1 ? ce : w1;
                        struct bbt_msg m;

                        /* Heartbeats due before this interval closes go first. */
                        while (r == 0 && next_hb <= ce && next_hb <= end) {
                                if (!t->stalls || !rng_chance(rng, 25)) {
                                        r = add_hb(t, next_hb + t->skew_ms, g->state, 1);
                                        day->hb++;
                                }
                                next_hb += hb_step;
                        }
                        bbt_msg_init(&m, BBT_CH_USAGE);
                        m.boot = 1;
                        m.body.usage.start = c + t->skew_ms;
                        m.body.usage.end = ce + t->skew_ms;
                        m.ts = m.body.usage.end;
                        m.body.usage.state = g->state;
                        if (g->state == BBT_USAGE_ACTIVE && t->profile == SIM_VIDEO) {
                                m.body.usage.audio_ms = len;
                        } else if (g->state == BBT_USAGE_ACTIVE) {
                                m.body.usage.interactive_ms = len * 6 / 10;
                                m.body.usage.touch = len / 20000;
                                m.body.usage.pen = len / 120000;
                        }
                        if (r == 0)
                                r = sim_append(t, &m);
                        /* The truth, on the true clock. */
                        day->on_all_ms += len;
                        night_add(s, t, d, c, ce, w0, w1);
                        if (hi > lo) {
                                day->on_ms += hi - lo;
                                if (g->state == BBT_USAGE_ACTIVE) {
                                        day->active_ms += hi - lo;
                                        day->interactive_ms += m.body.usage.interactive_ms;
                                        if (g->period >= 0)
                                                day->period_ms[g->period] += len;
                                }
                        }
                }
        }
        while (r == 0 && next_hb <= end) {
                if (!t->stalls || !rng_chance(rng, 25)) {
                        r = add_hb(t, next_hb + t->skew_ms, BBT_USAGE_STANDBY, 1);
                        day->hb++;
                }
                next_hb += hb_step;
        }
        return r;
}

static int gen_terminal(struct sim_scenario *s, struct sim_terminal *t, uint64_t *rng)
{
        const struct sim_school *sc = &s->schools[t->school];
        const struct sim_bells *b = bells_of(s, sc);
        struct bbt_dev devs[4];
        struct bbt_msg m;
        struct day_plan plan;
        char host[80], machine[40];
        int rare_day = -1, n_school_days = 0, r;
        size_t n_devs = 0;

        if (t->profile == SIM_NEVER)
                return 0;
        snprintf(host, sizeof(host), "%s-%s", sc->code, t->id);
        snprintf(machine, sizeof(machine), "%016" PRIx64 "%016" PRIx64, rng_next(rng), rng_next(rng));
        bbt_msg_init(&m, BBT_CH_STATE);
        m.ts = s->o.now_ms + t->skew_ms;
        m.boot = 1;
        m.body.state.online = true;
        m.body.state.version = "bbt-sim " BBT_VERSION;
        m.body.state.hostname = host;
        m.body.state.os = "bbt-sim";
        m.body.state.machine_id = machine;
        r = sim_append(t, &m);
        if (r < 0)
                return r;
        /* The inventory: the panel, its touch frame, speakers and, unless
         * broken, the document camera (展台) the registry expects. */
        memset(devs, 0, sizeof(devs));
        devs[n_devs++] = (struct bbt_dev){ .kind = BBT_KIND_DISPLAY, .subsystem = "drm",
                                           .syspath = "/sys/devices/pci0000:00/0000:00:02.0/drm/card0/card0-HDMI-A-1" };
        devs[n_devs++] = (struct bbt_dev){ .kind = BBT_KIND_TOUCH, .subsystem = "input", .bus = "usb",
                                           .vendor = "鸿合科技", .model = "触摸框",
                                           .syspath = "/sys/devices/pci0000:00/usb1/1-5/input/input12" };
        devs[n_devs++] = (struct bbt_dev){ .kind = BBT_KIND_AUDIO_OUT, .subsystem = "sound",
                                           .syspath = "/sys/devices/pci0000:00/0000:00:1f.3/sound/card0" };
        if (!t->broken_camera)
                devs[n_devs++] = (struct bbt_dev){ .kind = BBT_KIND_CAMERA, .subsystem = "video4linux",
                                                   .bus = "usb", .vendor = "良田", .model = "高拍仪",
                                                   .syspath = "/sys/devices/pci0000:00/usb1/1-2/video4linux/video0" };
        bbt_msg_init(&m, BBT_CH_INVENTORY);
        m.ts = s->o.history ? day_ms(s, 0, 7 * 60 + 30) + t->skew_ms : s->o.now_ms + t->skew_ms;
        m.boot = 1;
        m.body.inventory.n_devices = n_devs;
        m.body.inventory.devices = devs;
        r = sim_append(t, &m);
        /* A clock that is off shows in live heartbeats first, so the
         * aggregator corrects what follows. */
        for (int i = 0; r == 0 && t->skew_ms && i < 3; i++)
                r = add_hb(t, s->o.now_ms + t->skew_ms + i, BBT_USAGE_IDLE, 0);
        if (r < 0 || !s->o.history)
                return r;
        if (t->lamp)
                r = add_alert(t, day_ms(s, 0, 7 * 60 + 50) + t->skew_ms, "lamp_hours", true,
                              "lamp 3600 h, limit 3000 h");
        for (int d = 0; d < SIM_DAYS; d++)
                n_school_days += sim_school_day(s, sc, d);
        if (t->profile == SIM_RARE && n_school_days > 0) {
                int k = rng_int(rng, n_school_days);

                for (int d = 0; d < SIM_DAYS; d++)
                        if (sim_school_day(s, sc, d) && k-- == 0)
                                rare_day = d;
        }
        for (int d = 0; r == 0 && d < SIM_DAYS; d++) {
                if (sim_school_day(s, sc, d)) {
                        plan_day(rng, b, t->profile, d == rare_day, &plan);
                } else if (d == 4 && t->profile == SIM_TOUCH && rng_chance(rng, 30)) {
                        plan_off_day(&plan);
                } else if (t->left_on) {
                        plan.n = 0;
                } else {
                        continue;
                }
                plan_after_hours(s, t, &plan);
                r = emit_day(s, t, d, &plan, rng);
                if (r == 0 && t->overheat && d == 1) {
                        r = add_alert(t, day_ms(s, d, 14 * 60) + t->skew_ms, "overheat", true, "92.0 °C");
                        if (r == 0)
                                r = add_alert(t, day_ms(s, d, 15 * 60) + t->skew_ms, "overheat", false, "61.0 °C");
                }
        }
        return r;
}

static const char *const townships[3][2] = {
        { "城关街道", "东城街道" }, { "石桥镇", "河口镇" }, { "青山乡", "白云乡" },
};

int sim_scenario_build(const struct sim_options *o, struct sim_scenario *s)
{
        static const struct sim_bells county = { 8, { { 480, 520 }, { 530, 570 }, { 590, 630 }, { 640, 680 },
                                                       { 840, 880 }, { 890, 930 }, { 940, 980 }, { 990, 1030 } } };
        static const struct sim_bells own = { 7, { { 500, 540 }, { 550, 590 }, { 610, 650 }, { 660, 700 },
                                                    { 870, 910 }, { 920, 960 }, { 970, 1010 } } };
        uint64_t rng = o->seed ^ 0x6262742d73696dull;
        int r = 0;

        memset(s, 0, sizeof(*s));
        s->o = *o;
        s->county_bells = county;
        s->own_bells = own;
        s->n_schools = o->schools;
        s->n_terminals = o->schools * o->terminals_per_school;
        s->schools = calloc(s->n_schools ? s->n_schools : 1, sizeof(*s->schools));
        s->terminals = calloc(s->n_terminals ? s->n_terminals : 1, sizeof(*s->terminals));
        if (!s->schools || !s->terminals) {
                sim_scenario_free(s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_schools; i++) {
                struct sim_school *sc = &s->schools[i];
                static const char *const kinds[] = { "小学", "初级中学", "九年一贯制学校" };

                snprintf(sc->code, sizeof(sc->code), "%s%04zu", o->county, i + 1);
                sc->type = i % 5 == 4 ? 1 : i % 7 == 6 ? 2 : 0;
                sc->area = (int)(i % 3);
                snprintf(sc->township, sizeof(sc->township), "%s", townships[sc->area][(i / 3) % 2]);
                snprintf(sc->name, sizeof(sc->name), "%s第%zu%s", sc->township, i / 6 + 1, kinds[sc->type]);
                /* The last school is small: the 差异系数 leaves it out. */
                sc->students = i + 1 == s->n_schools && s->n_schools > 2 ? 30 : 200 + rng_int(&rng, 1300);
                sc->students_primary = sc->type == 0 ? sc->students : sc->type == 2 ? sc->students * 2 / 3 : 0;
                sc->students_junior = sc->students - sc->students_primary;
                sc->own_bells = i % 4 == 3;
                sc->holiday = i == 1;
        }
        for (size_t i = 0; i < s->n_terminals; i++) {
                struct sim_terminal *t = &s->terminals[i];
                int roll = rng_int(&rng, 100);
                size_t k = i % o->terminals_per_school;

                t->school = i / o->terminals_per_school;
                snprintf(t->id, sizeof(t->id), "r%03zu", k + 1);
                snprintf(t->room, sizeof(t->room), "%zu年级%zu班", k / 4 + 1, k % 4 + 1);
                t->profile = roll < 55 ? SIM_TOUCH : roll < 75 ? SIM_VIDEO : roll < 83 ? SIM_RARE
                             : roll < 91 ? SIM_STANDBY_ONLY : SIM_NEVER;
                t->broken_camera = t->profile != SIM_NEVER && rng_chance(&rng, 5);
                t->lamp = t->profile != SIM_NEVER && rng_chance(&rng, 5);
                t->overheat = t->profile != SIM_NEVER && rng_chance(&rng, 3);
                t->stalls = t->profile != SIM_NEVER && rng_chance(&rng, 8);
                /* Two terminals of the third school run 10 minutes fast. */
                if (t->school == 2 && (k == 1 || k == 3)) {
                        t->profile = SIM_TOUCH;
                        t->skew_ms = 600000;
                }
        }
        /* Who is left on is drawn apart, so the rest of the week stays what the seed made it. */
        for (size_t i = 0; o->left_on_pct > 0 && i < s->n_terminals; i++) {
                uint64_t lrng = (o->seed ^ 0x6c6566746f6eull) + i * 0x9e3779b97f4a7c15ull;

                (void)rng_next(&lrng);
                s->terminals[i].left_on = s->terminals[i].profile != SIM_NEVER && rng_chance(&lrng, o->left_on_pct);
        }
        for (size_t i = 0; r == 0 && i < s->n_terminals; i++) {
                r = gen_terminal(s, &s->terminals[i], &rng);
                s->messages += s->terminals[i].n_msgs;
        }
        if (r < 0)
                sim_scenario_free(s);
        return r;
}

void sim_scenario_free(struct sim_scenario *s)
{
        for (size_t i = 0; s->terminals && i < s->n_terminals; i++) {
                for (size_t j = 0; j < s->terminals[i].n_msgs; j++)
                        free(s->terminals[i].msgs[j].json);
                free(s->terminals[i].msgs);
        }
        free(s->terminals);
        free(s->schools);
        memset(s, 0, sizeof(*s));
}

void sim_topic(const struct sim_scenario *s, const struct sim_terminal *t, enum bbt_channel ch, char *buf,
               size_t size)
{
        snprintf(buf, size, "bbt/v1/%s/%s/%s/%s", s->o.county, s->schools[t->school].code, t->id,
                 bbt_channel_name(ch));
}

/* ---- the registry files ---- */

static FILE *open_in(const char *dir, const char *name)
{
        char path[1024];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        if (f)
                fputs("\xEF\xBB\xBF", f); /* as Excel writes UTF-8 */
        return f;
}

static void date_of(const struct sim_scenario *s, int d, char *buf, size_t size)
{
        /* Civil date of day number monday + d (days since 1970-01-01). */
        int64_t z = (int64_t)s->o.monday + d + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
        int doe = (int)(z - era * 146097), yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        int dd = doy - (153 * mp + 2) / 5 + 1, mm = mp < 10 ? mp + 3 : mp - 9;
        int yy = (int)(yoe + era * 400) + (mm <= 2);

        snprintf(buf, size, "%04d-%02d-%02d", yy, mm, dd);
}

int sim_write_registry(const struct sim_scenario *s, const char *dir)
{
        static const char *const types[] = { "小学", "初中", "九年一贯制" };
        static const char *const areas[] = { "城区", "镇区", "乡村" };
        FILE *f;
        char a[32], b[32];
        int bad = 0;

        f = open_in(dir, "schools.csv");
        if (!f)
                return -errno;
        fprintf(f, "县区代码,县区,乡镇/街道,学校代码,学校名称,学校类型,城乡类型,学生数,教室数,小学部学生数,初中部学生数\r\n");
        for (size_t i = 0; i < s->n_schools; i++) {
                const struct sim_school *sc = &s->schools[i];

                fprintf(f, "%s,模拟县,%s,%s,%s,%s,%s,%ld,%zu,%ld,%ld\r\n", s->o.county, sc->township, sc->code, sc->name,
                        types[sc->type], areas[sc->area], sc->students, s->o.terminals_per_school,
                        sc->students_primary, sc->students_junior);
        }
        bad |= fclose(f);
        f = open_in(dir, "terminals.csv");
        if (!f)
                return -errno;
        fprintf(f, "学校代码,终端编号,教室,应配外设\r\n");
        for (size_t i = 0; i < s->n_terminals; i++) {
                const struct sim_terminal *t = &s->terminals[i];

                fprintf(f, "%s,%s,%s,展台;触摸框\r\n", s->schools[t->school].code, t->id, t->room);
        }
        bad |= fclose(f);
        f = open_in(dir, "calendar.csv");
        if (!f)
                return -errno;
        fprintf(f, "范围,类型,开始日期,结束日期,名称\r\n");
        date_of(s, -70, a, sizeof(a));
        date_of(s, 60, b, sizeof(b));
        fprintf(f, "%s,学期,%s,%s,模拟学期\r\n", s->o.county, a, b);
        date_of(s, 4, a, sizeof(a));
        fprintf(f, "%s,假期,%s,%s,周五放假\r\n", s->o.county, a, a);
        date_of(s, 5, a, sizeof(a));
        fprintf(f, "%s,调休,%s,%s,周六补课\r\n", s->o.county, a, a);
        for (size_t i = 0; i < s->n_schools; i++)
                if (s->schools[i].holiday) {
                        date_of(s, 1, a, sizeof(a));
                        date_of(s, 3, b, sizeof(b));
                        fprintf(f, "%s,假期,%s,%s,校运会\r\n", s->schools[i].code, a, b);
                }
        bad |= fclose(f);
        f = open_in(dir, "bells.csv");
        if (!f)
                return -errno;
        fprintf(f, "范围,节次,开始时间,结束时间\r\n");
        for (int k = 0; k < s->county_bells.n; k++)
                fprintf(f, "%s,%d,%02d:%02d,%02d:%02d\r\n", s->o.county, k + 1, s->county_bells.p[k].start_min / 60,
                        s->county_bells.p[k].start_min % 60, s->county_bells.p[k].end_min / 60,
                        s->county_bells.p[k].end_min % 60);
        for (size_t i = 0; i < s->n_schools; i++)
                for (int k = 0; s->schools[i].own_bells && k < s->own_bells.n; k++)
                        fprintf(f, "%s,%d,%02d:%02d,%02d:%02d\r\n", s->schools[i].code, k + 1,
                                s->own_bells.p[k].start_min / 60, s->own_bells.p[k].start_min % 60,
                                s->own_bells.p[k].end_min / 60, s->own_bells.p[k].end_min % 60);
        bad |= fclose(f);
        return bad ? -EIO : 0;
}

/* ---- the ground truth ---- */

/* Sums over a set of terminals, as METRICS.md defines them. */
struct truth {
        int64_t terminals, days, powered, used, active_ms, interactive_ms, periods_used, periods, intact;
        int64_t weeks, weeks_met; /* the weekly rule: the simulated week is one Monday..Sunday */
        double hb_expected, hb_received;
};

static void truth_add(struct truth *a, const struct truth *b)
{
        a->terminals += b->terminals;
        a->days += b->days;
        a->powered += b->powered;
        a->used += b->used;
        a->active_ms += b->active_ms;
        a->interactive_ms += b->interactive_ms;
        a->periods_used += b->periods_used;
        a->periods += b->periods;
        a->intact += b->intact;
        a->weeks += b->weeks;
        a->weeks_met += b->weeks_met;
        a->hb_expected += b->hb_expected;
        a->hb_received += b->hb_received;
}

static void terminal_truth(const struct sim_scenario *s, const struct sim_terminal *t, struct truth *ret)
{
        const struct sim_school *sc = &s->schools[t->school];
        int n_periods = bells_of(s, sc)->n;
        double hb_ms = (double)s->o.hb_interval_s * 1000.0;

        memset(ret, 0, sizeof(*ret));
        ret->terminals = 1;
        /* Open at the end of the week: the lamp alert, the missing camera, and
         * for a terminal that never reported the silent fault. (The clock-skew
         * fault opens now, after the week.) */
        ret->intact = t->profile != SIM_NEVER && !t->lamp && !t->broken_camera;
        for (int d = 0; d < SIM_DAYS; d++) {
                const struct sim_day *day = &t->day[d];

                if (!sim_school_day(s, sc, d))
                        continue;
                ret->days++;
                ret->periods += n_periods;
                ret->powered += day->on_ms > 0;
                ret->used += day->active_ms >= USED_MIN * MIN_MS;
                ret->active_ms += day->active_ms;
                ret->interactive_ms += day->interactive_ms;
                for (int k = 0; k < n_periods; k++)
                        ret->periods_used += day->period_ms[k] >= USED_MIN * MIN_MS;
                if (day->on_all_ms > 0) {
                        double expected = (double)day->on_all_ms / hb_ms;
                        double cap = ceil(expected);

                        ret->hb_expected += expected;
                        ret->hb_received += (double)day->hb < cap ? (double)day->hb : cap;
                }
        }
        /* The week meets the rule with WEEKLY_MIN lessons per 5 of its school days. */
        ret->weeks = ret->days > 0;
        ret->weeks_met = ret->days > 0 && 5 * ret->periods_used >= WEEKLY_MIN * ret->days;
}

/* The rate columns of bbt-report, undefined ones as null. */
static void put_rates(cJSON *row, const struct truth *x)
{
        cJSON_AddNumberToObject(row, "terminals", (double)x->terminals);
        if (x->days) {
                cJSON_AddNumberToObject(row, "power_on_rate", (double)x->powered / (double)x->days);
                cJSON_AddNumberToObject(row, "usage_rate", (double)x->used / (double)x->days);
                cJSON_AddNumberToObject(row, "avg_daily_hours", (double)x->active_ms / 3600000.0 / (double)x->days);
                cJSON_AddNumberToObject(row, "weekly_lessons", (double)x->periods_used / ((double)x->days / 5.0));
        } else {
                cJSON_AddNullToObject(row, "power_on_rate");
                cJSON_AddNullToObject(row, "usage_rate");
                cJSON_AddNullToObject(row, "avg_daily_hours");
                cJSON_AddNullToObject(row, "weekly_lessons");
        }
        if (x->periods)
                cJSON_AddNumberToObject(row, "period_usage_rate", (double)x->periods_used / (double)x->periods);
        else
                cJSON_AddNullToObject(row, "period_usage_rate");
        if (x->active_ms)
                cJSON_AddNumberToObject(row, "interactive_share", (double)x->interactive_ms / (double)x->active_ms);
        else
                cJSON_AddNullToObject(row, "interactive_share");
        if (x->hb_expected > 0) {
                double online = x->hb_received / x->hb_expected;

                cJSON_AddNumberToObject(row, "online_rate", online > 1 ? 1 : online);
        } else {
                cJSON_AddNullToObject(row, "online_rate");
        }
        if (x->terminals)
                cJSON_AddNumberToObject(row, "intact_rate", (double)x->intact / (double)x->terminals);
        else
                cJSON_AddNullToObject(row, "intact_rate");
        if (x->weeks)
                cJSON_AddNumberToObject(row, "weekly_rule_rate", (double)x->weeks_met / (double)x->weeks);
        else
                cJSON_AddNullToObject(row, "weekly_rule_rate");
}

/* The idle reason's code in bbt-report, or NULL when not idle. The window is
 * the last 10 school days up to Sunday; only this week has data, and all of
 * the week's school days are in it. */
static const char *idle_reason(const struct sim_scenario *s, const struct sim_terminal *t)
{
        const struct sim_school *sc = &s->schools[t->school];
        int used = 0, powered = 0;

        if (t->profile == SIM_NEVER)
                return "never_reported";
        for (int d = 0; d < SIM_DAYS; d++) {
                if (!sim_school_day(s, sc, d))
                        continue;
                powered += t->day[d].on_ms > 0;
                used += t->day[d].active_ms >= USED_MIN * MIN_MS;
        }
        if (!powered)
                return "not_powered";
        return used == 0 ? "not_used" : NULL;
}

static double indicator(const struct sim_scenario *s, const struct sim_school *sc, const struct truth *x, int ind,
                        bool *defined)
{
        *defined = true;
        switch (ind) {
        case 0:
                return (double)s->o.terminals_per_school / (double)sc->students * 100.0;
        case 1:
                *defined = x->days > 0;
                return x->days ? (double)x->active_ms / 3600000.0 / (double)x->days : 0;
        case 2:
                *defined = x->days > 0;
                return x->days ? (double)x->used / (double)x->days : 0;
        default:
                *defined = x->periods > 0;
                return x->periods ? (double)x->periods_used / (double)x->periods : 0;
        }
}

/* The section's pupils of SC, or -1 when it has no such section. */
static long section_pupils(const struct sim_school *sc, int section)
{
        if (section == 0)
                return sc->type == 1 ? -1 : sc->students_primary;
        return sc->type == 0 ? -1 : sc->students_junior;
}

/* 差异系数 rows for one section: the official student-weighted formula. */
static void balance_rows(const struct sim_scenario *s, const struct truth *per_school, int section, cJSON *rows)
{
        static const char *const names[] = { "terminals_per_100", "avg_daily_hours", "usage_rate", "period_usage_rate" };

        for (int ind = 0; ind < 4; ind++) {
                double sum_px = 0, mean = 0, spread = 0;
                long pupils = 0;
                int schools = 0, left_out = 0;
                cJSON *row = cJSON_CreateObject();
                bool def;

                for (size_t i = 0; i < s->n_schools; i++) {
                        long p = section_pupils(&s->schools[i], section);
                        double x = indicator(s, &s->schools[i], &per_school[i], ind, &def);

                        if (p < 0)
                                continue;
                        if (!def || p < MIN_PUPILS || p == 0) {
                                left_out++;
                                continue;
                        }
                        schools++;
                        pupils += p;
                        sum_px += (double)p * x;
                }
                if (pupils > 0)
                        mean = sum_px / (double)pupils;
                for (size_t i = 0; pupils > 0 && i < s->n_schools; i++) {
                        long p = section_pupils(&s->schools[i], section);
                        double x = indicator(s, &s->schools[i], &per_school[i], ind, &def);

                        if (p >= MIN_PUPILS && def)
                                spread += (double)p / (double)pupils * (x - mean) * (x - mean);
                }
                cJSON_AddStringToObject(row, "indicator", names[ind]);
                cJSON_AddNumberToObject(row, "schools", schools);
                cJSON_AddNumberToObject(row, "left_out", left_out);
                if (schools) {
                        cJSON_AddNumberToObject(row, "mean", mean);
                        cJSON_AddNumberToObject(row, "sd", sqrt(spread));
                }
                if (schools && mean != 0)
                        cJSON_AddNumberToObject(row, "cv", sqrt(spread) / mean);
                else
                        cJSON_AddNullToObject(row, "cv");
                cJSON_AddItemToArray(rows, row);
        }
}

/* A terminal's row of the energy report (docs/metrics.md, "After-hours energy"). */
static cJSON *energy_row(const struct sim_scenario *s, const struct sim_terminal *t)
{
        const struct sim_school *sc = &s->schools[t->school];
        cJSON *row = cJSON_CreateObject();
        int64_t ms[4] = { 0 }; /* evening, night, weekend, holiday */
        int nights = 0;
        static const char *const keys[4] = { "evening_hours", "night_hours", "weekend_hours", "holiday_hours" };

        cJSON_AddStringToObject(row, "school_code", sc->code);
        cJSON_AddStringToObject(row, "terminal", t->id);
        for (int d = 0; d < SIM_DAYS; d++) {
                const struct sim_day *day = &t->day[d];

                if (sim_school_day(s, sc, d)) {
                        ms[0] += day->on_all_ms - day->on_ms - day->night_ms;
                        ms[1] += day->night_ms;
                } else {
                        ms[d >= 5 ? 2 : 3] += day->on_all_ms;
                }
                nights += t->night_on[d];
        }
        for (int k = 0; k < 4; k++)
                if (t->profile == SIM_NEVER)
                        cJSON_AddNullToObject(row, keys[k]);
                else
                        cJSON_AddNumberToObject(row, keys[k], (double)ms[k] / 3600000.0);
        if (t->profile == SIM_NEVER) {
                cJSON_AddNullToObject(row, "after_hours");
                cJSON_AddNullToObject(row, "nights_on");
        } else {
                cJSON_AddNumberToObject(row, "after_hours", (double)(ms[0] + ms[1] + ms[2] + ms[3]) / 3600000.0);
                cJSON_AddNumberToObject(row, "nights_on", nights);
        }
        return row;
}

int sim_write_truth(const struct sim_scenario *s, FILE *out)
{
        cJSON *root = cJSON_CreateObject(), *tables = cJSON_CreateObject();
        cJSON *overall = cJSON_CreateArray(), *schools = cJSON_CreateArray(), *terms = cJSON_CreateArray();
        cJSON *idle = cJSON_CreateArray(), *primary = cJSON_CreateArray(), *junior = cJSON_CreateArray();
        cJSON *energy = cJSON_CreateArray();
        struct truth all = { 0 }, *per_school = calloc(s->n_schools + 1, sizeof(*per_school));
        int64_t *idle_per_school = calloc(s->n_schools + 1, sizeof(int64_t));
        int64_t idle_all = 0, faulty = 0;
        char *text;
        cJSON *row;
        int r = 0;

        if (!per_school || !idle_per_school) {
                free(per_school);
                free(idle_per_school);
                cJSON_Delete(root);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_terminals; i++) {
                const struct sim_terminal *t = &s->terminals[i];
                const struct sim_school *sc = &s->schools[t->school];
                const char *why = idle_reason(s, t);
                struct truth x;

                terminal_truth(s, t, &x);
                truth_add(&per_school[t->school], &x);
                truth_add(&all, &x);
                faulty += !x.intact;
                row = cJSON_CreateObject();
                cJSON_AddStringToObject(row, "school_code", sc->code);
                cJSON_AddStringToObject(row, "terminal", t->id);
                cJSON_AddStringToObject(row, "profile", sim_profile_name(t->profile));
                put_rates(row, &x);
                cJSON_DeleteItemFromObject(row, "terminals");
                cJSON_AddItemToArray(terms, row);
                cJSON_AddItemToArray(energy, energy_row(s, t));
                if (why) {
                        idle_per_school[t->school]++;
                        idle_all++;
                        row = cJSON_CreateObject();
                        cJSON_AddStringToObject(row, "school_code", sc->code);
                        cJSON_AddStringToObject(row, "terminal", t->id);
                        cJSON_AddStringToObject(row, "reason", why);
                        cJSON_AddItemToArray(idle, row);
                }
        }
        for (size_t i = 0; i < s->n_schools; i++) {
                row = cJSON_CreateObject();
                cJSON_AddStringToObject(row, "school_code", s->schools[i].code);
                cJSON_AddStringToObject(row, "school_name", s->schools[i].name);
                put_rates(row, &per_school[i]);
                cJSON_AddNumberToObject(row, "idle", (double)idle_per_school[i]);
                cJSON_AddItemToArray(schools, row);
        }
        row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "schools", (double)s->n_schools);
        put_rates(row, &all);
        cJSON_AddNumberToObject(row, "idle", (double)idle_all);
        cJSON_AddNumberToObject(row, "faulty", (double)faulty);
        cJSON_AddItemToArray(overall, row);
        balance_rows(s, per_school, 0, primary);
        balance_rows(s, per_school, 1, junior);

        cJSON_AddStringToObject(root, "report", "truth");
        cJSON_AddNumberToObject(root, "seed", (double)s->o.seed);
        cJSON_AddNumberToObject(root, "messages", (double)s->messages);
        cJSON_AddItemToObject(tables, "overall", overall);
        cJSON_AddItemToObject(tables, "schools", schools);
        cJSON_AddItemToObject(tables, "terminals", terms);
        cJSON_AddItemToObject(tables, "idle", idle);
        cJSON_AddItemToObject(tables, "primary", primary);
        cJSON_AddItemToObject(tables, "junior", junior);
        cJSON_AddItemToObject(tables, "energy", energy);
        cJSON_AddItemToObject(root, "tables", tables);
        text = cJSON_Print(root);
        if (!text || fprintf(out, "%s\n", text) < 0)
                r = -EIO;
        free(text);
        cJSON_Delete(root);
        free(per_school);
        free(idle_per_school);
        return r;
}
