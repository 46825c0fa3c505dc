/* The reports end to end: CSV registry and calendar, protocol messages through the ingest into SQLite, bbt_reports_run as JSON/CSV, every figure checked against hand arithmetic. */
/* bbt-test: label=unit timeout=60 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bbt/log.h"
#include "bbt/protocol.h"
#include "calendar.h"
#include "dates.h"
#include "aggregator_config.h"
#include "fixture-tree.h"
#include "ingest.h"
#include "registry.h"
#include "reports.h"
#include "store.h"
#include "test.h"

/*
 * The scenario: county 510107 (武侯区), the school week Mon 2026-09-07 .. Sun
 * 2026-09-13. Wednesday 09-09 is a county holiday (县运动会), Saturday 09-12 a
 * 调休 make-up school day. The county's term starts Monday 2026-08-31, so the
 * idle window (10 school days up to Sun 09-13) is exactly
 *   Mon 08-31, Tue 09-01, Wed 09-02, Thu 09-03, Fri 09-04,
 *   Mon 09-07, Tue 09-08, Thu 09-10, Fri 09-11, Sat 09-12.
 * School days of the week for 510107: Mon, Tue, Thu, Fri, Sat = 5.
 *
 * Schools (510107):
 *   A 5101070001 城关小学, 城关街道, 小学, 城区, 600 pupils: terminals A1, A2
 *   B 5101070002 石板初级中学, 石板镇, 初中, 乡村, 200 pupils: B1, B2 (B2 never reports)
 *   C 5101070003 石板镇九年一贯制学校, 石板镇, 九年一贯制, 镇区, 340 = 300 primary + 40 junior: C1
 * and, to check the county filter, a school of the neighbouring county 510108
 * (no calendar entries: every weekday is a school day, the holiday and the 调休
 * are not its; no bells: the built-in 8 periods):
 *   D 5101080001 金牛小学, no township, 小学, 城区, 120 pupils: D1
 *
 * Bells: county 510107 has 4 periods 08:00-08:40, 08:50-09:30, 10:00-10:40,
 * 10:50-11:30, so school hours (margin 30) are 07:30-12:00. School C overrides
 * with 3 periods 08:00-08:45, 08:55-09:40, 14:00-14:45: school hours 07:30-15:15.
 *
 * Local time is UTC+8: local midnight starting day N is N × 86 400 000 −
 * 28 800 000 ms. Mon 2026-09-07 is day 20703, so its local midnight is
 * 20703 × 86 400 000 − 28 800 000 = 1 788 739 200 000 − 28 800 000
 * = 1 788 710 400 000 (= 2026-09-06 16:00 UTC).
 */

#define MON 20703 /* 2026-09-07 */
#define TUE (MON + 1)
#define WED (MON + 2)
#define THU (MON + 3)
#define FRI (MON + 4)
#define SAT (MON + 5)
#define SUN (MON + 6)
#define SEP1 (MON - 6) /* Tue 2026-09-01 */
#undef MIN /* sys/param.h, through aggregator_config.h */
#define MIN 60000LL
#define NONE NAN /* an undefined rate: JSON null */

static const char schools_csv[] =
        "县区代码,县区,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数,教室数,小学部学生数,初中部学生数\r\n"
        "510107,武侯区,城关街道,5101070001,城关小学,小学,城区,600,12,,\r\n"
        "510107,武侯区,石板镇,5101070002,石板初级中学,初中,乡村,200,6,,\r\n"
        "510107,武侯区,石板镇,5101070003,石板镇九年一贯制学校,九年一贯制,镇区,340,9,300,40\r\n"
        "510108,成华区,,5101080001,金牛小学,小学,城区,120,4,,\r\n";
static const char terminals_csv[] = "学校代码,终端编号,教室,应配外设\r\n"
                                    "5101070001,A1,一年级(1)班,展台、触摸框\r\n"
                                    "5101070001,A2,一年级(2)班,展台\r\n"
                                    "5101070002,B1,七年级(1)班,展台\r\n"
                                    "5101070002,B2,七年级(2)班,展台\r\n"
                                    "5101070003,C1,三年级(1)班,\r\n"
                                    "5101080001,D1,二年级(1)班,\r\n";
static const char calendar_csv[] = "范围,类型,开始日期,结束日期,名称\r\n"
                                   "510107,学期,2026/8/31,2027/1/22,2026年秋季学期\r\n"
                                   "510107,节假日,2026-09-09,,县运动会\r\n"
                                   "510107,调休,2026-09-12,,调休上课\r\n";
static const char bells_csv[] = "范围,节次,开始时间,结束时间\r\n"
                                "510107,1,08:00,08:40\r\n"
                                "510107,2,08:50,09:30\r\n"
                                "510107,3,10:00,10:40\r\n"
                                "510107,4,10:50,11:30\r\n"
                                "5101070003,3,14:00,14:45\r\n"
                                "5101070003,1,08:00,08:45\r\n"
                                "5101070003,2,08:55,09:40\r\n";

/* ---- the world: built once per case (each case is its own process) ---- */

static struct {
        const char *dir;
        struct bbt_registry *reg;
        struct bbt_calendar *cal;
        struct bbt_store *store;
        struct bbt_ingest *in;
        cJSON *docs[64];
        size_t n_docs;
        char *texts[16];
        size_t n_texts;
} W;

static void cleanup(void)
{
        for (size_t i = 0; i < W.n_docs; i++)
                cJSON_Delete(W.docs[i]);
        for (size_t i = 0; i < W.n_texts; i++)
                free(W.texts[i]);
        bbt_ingest_free(W.in);
        bbt_store_close(W.store);
        bbt_calendar_free(W.cal);
        bbt_registry_free(W.reg);
        memset(&W, 0, sizeof(W));
}

/* Local time DAY hh:mm as ms since the epoch. */
static int64_t at(int32_t day, int h, int m)
{
        return bbt_day_start_ms(day, 480) + (int64_t)(h * 60 + m) * MIN;
}

struct feeder {
        const char *county, *school, *terminal;
        int64_t seq;
};

static void feed_seq(struct feeder *f, struct bbt_msg *m, int64_t seq, int64_t ts, int64_t recv)
{
        struct bbt_topic tp = { .channel = m->channel };
        char topic[BBT_TOPIC_MAX], etext[300];
        struct bbt_error e;
        char *json = NULL;
        size_t len;
        int r;

        snprintf(tp.county, sizeof(tp.county), "%s", f->county);
        snprintf(tp.school, sizeof(tp.school), "%s", f->school);
        snprintf(tp.terminal, sizeof(tp.terminal), "%s", f->terminal);
        ASSERT_GT(bbt_topic_build(&tp, topic, sizeof(topic)), 0);
        m->seq = seq;
        m->ts = ts;
        m->boot = 1;
        r = bbt_msg_encode(m, &json, &len, &e);
        if (r < 0)
                FAIL("encode %s seq %lld: %s", topic, (long long)seq, bbt_error_format(&e, etext, sizeof(etext)));
        bbt_ingest_message(W.in, topic, json, len, false, recv);
        free(json);
}

/* Sends M as F's next message, stamped TS by the agent and received half a second later. */
static void feed(struct feeder *f, struct bbt_msg *m, int64_t ts)
{
        feed_seq(f, m, f->seq++, ts, ts + 500);
}

static void birth(struct feeder *f, int64_t ts)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_STATE);
        m.body.state.online = true;
        m.body.state.version = "2.1.0";
        m.body.state.hostname = "bbt-classroom";
        m.body.state.os = "Debian GNU/Linux 12 (bookworm)";
        m.body.state.machine_id = "0123456789abcdef0123456789abcdef";
        feed(f, &m, ts);
}

static void shutdown_state(struct feeder *f, int64_t ts)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_STATE);
        m.body.state.online = false;
        m.body.state.reason = BBT_REASON_SHUTDOWN;
        feed(f, &m, ts);
}

static void hb_msg(struct bbt_msg *m, enum bbt_usage_state state)
{
        bbt_msg_init(m, BBT_CH_HB);
        m->body.hb.uptime = 3600;
        m->body.hb.cpu = 12.5;
        m->body.hb.mem_total = 4294967296LL, m->body.hb.mem_available = 2147483648LL;
        m->body.hb.disk_root.total = 64000000000LL, m->body.hb.disk_root.free = 32000000000LL;
        m->body.hb.state = state;
        m->body.hb.clock_synced = true;
}

/* N heartbeats, one a minute, stamped START + 30 s, START + 90 s, ... */
static void hbs(struct feeder *f, int64_t start, int n, enum bbt_usage_state state)
{
        struct bbt_msg m;

        for (int k = 0; k < n; k++) {
                hb_msg(&m, state);
                feed(f, &m, start + 30000 + k * MIN);
        }
}

static void usage_msg(struct bbt_msg *m, int64_t start, int64_t end, enum bbt_usage_state state, int64_t inter)
{
        bbt_msg_init(m, BBT_CH_USAGE);
        m->body.usage.start = start;
        m->body.usage.end = end;
        m->body.usage.state = state;
        m->body.usage.interactive_ms = inter;
        m->body.usage.touch = inter ? 40 : 0;
}

/* An interval [START, END) with its heartbeats (one per whole minute of it),
 * the usage message sent when it closes. */
static void interval(struct feeder *f, int64_t start, int64_t end, enum bbt_usage_state state, int64_t inter,
                     int n_hbs)
{
        struct bbt_msg m;

        hbs(f, start, n_hbs, state);
        usage_msg(&m, start, end, state, inter);
        feed(f, &m, end);
}

static void alert(struct feeder *f, const char *code, enum bbt_severity sev, enum bbt_alert_state st,
                  const char *detail, int64_t ts)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_ALERT);
        m.body.alert.code = code;
        m.body.alert.severity = sev;
        m.body.alert.state = st;
        m.body.alert.detail = detail;
        feed(f, &m, ts);
}

static struct bbt_dev dev(enum bbt_periph_kind kind, const char *subsystem, const char *syspath, const char *vendor,
                          const char *model, const char *serial)
{
        struct bbt_dev d = { .kind = kind, .subsystem = subsystem, .syspath = syspath, .bus = "usb",
                             .vendor = vendor, .model = model, .serial = serial };

        return d;
}

static void inventory(struct feeder *f, struct bbt_dev *devs, size_t n, int64_t ts)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_INVENTORY);
        m.body.inventory.n_devices = n;
        m.body.inventory.devices = devs;
        feed(f, &m, ts);
}

static const char *write_file(const char *name, const char *text)
{
        static char paths[4][512];
        static int next;
        char *p = paths[next++ % 4];

        bbt_test_tree_put(W.dir, name, text);
        snprintf(p, sizeof(paths[0]), "%s/%s", W.dir, name);
        return p;
}

static void load_ok(int r, const struct bbt_import_errors *e, const char *what)
{
        if (r != 0) {
                for (size_t i = 0; i < e->n_kept; i++)
                        fprintf(stderr, "  %s\n", e->msg[i]);
                FAIL("loading %s: %d", what, r);
        }
}

static void build(void)
{
        static struct bbt_import_errors errs;
        struct bbt_ingest_settings set;
        char path[600], err[256];
        struct feeder a1 = { "510107", "5101070001", "A1", 0 }, a2 = { "510107", "5101070001", "A2", 0 };
        struct feeder b1 = { "510107", "5101070002", "B1", 0 }, c1 = { "510107", "5101070003", "C1", 0 };
        struct feeder d1 = { "510108", "5101080001", "D1", 0 };
        struct bbt_dev inv_a1[2], inv_a2[2], inv_b1[2], inv_c1[2];
        struct bbt_msg m;
        struct bbt_ingest_stats st;
        const char *bad_usage;

        bbt_log_set_level(3); /* errors only: the scenario's rejected message is meant */
        W.dir = bbt_test_tree_new("reports");
        atexit(cleanup); /* runs before the tree's removal (registered later) */

        /* The day arithmetic the comments rely on. */
        ASSERT_EQ(bbt_day_from_ymd(2026, 9, 7), MON);
        ASSERT_EQ(bbt_day_weekday(MON), 1);
        ASSERT_EQ(bbt_day_start_ms(MON, 480), 1788710400000LL);
        ASSERT_EQ(at(TUE, 7, 40), 1788710400000LL + 86400000LL + 460 * MIN);

        ASSERT_OK(bbt_registry_new(&W.reg));
        load_ok(bbt_registry_load_schools(W.reg, write_file("schools.csv", schools_csv), &errs), &errs, "schools");
        load_ok(bbt_registry_load_terminals(W.reg, write_file("terminals.csv", terminals_csv), &errs), &errs,
                "terminals");
        ASSERT_OK(bbt_calendar_new(&W.cal));
        load_ok(bbt_calendar_load_days(W.cal, write_file("calendar.csv", calendar_csv), &errs), &errs, "calendar");
        load_ok(bbt_calendar_load_bells(W.cal, write_file("bells.csv", bells_csv), &errs), &errs, "bells");
        ASSERT(!bbt_calendar_is_school_day(W.cal, "510107", "5101070001", WED));
        ASSERT(bbt_calendar_is_school_day(W.cal, "510107", "5101070001", SAT));
        ASSERT(bbt_calendar_is_school_day(W.cal, "510108", "5101080001", WED));
        ASSERT(!bbt_calendar_is_school_day(W.cal, "510108", "5101080001", SAT));
        ASSERT_EQ(bbt_calendar_bells(W.cal, "510107", "5101070003")->n, 3);
        ASSERT_EQ(bbt_calendar_bells(W.cal, "510107", "5101070002")->n, 4);
        ASSERT_EQ(bbt_calendar_bells(W.cal, "510108", "5101080001")->n, 8);

        snprintf(path, sizeof(path), "%s/bbt.db", W.dir);
        ASSERT_OK(bbt_store_open(path, false, &W.store, err, sizeof(err)));
        bbt_ingest_settings_default(&set);
        set.skew_warmup_ms = 0;
        if (bbt_ingest_new(W.store, &set, W.reg, W.cal, NULL, NULL, at(SEP1, 7, 0), &W.in, err, sizeof(err)) != 0)
                FAIL("bbt_ingest_new: %s", err);
        /* Connected: live heartbeats are skew samples; each arrives 0.5 s after
         * its stamp, so the skew estimate is -500 ms, below skew_min (2 s): 0. */
        bbt_ingest_set_connected(W.in, true, at(SEP1, 7, 0));

        /* ---- D1 (510108): used once, on Tue 09-01, before the scenario week; then silent.
         * birth, 40 hbs, 1 usage = 42 messages, seq 0..41. Last seen 09-01 08:40. */
        birth(&d1, at(SEP1, 7, 50));
        interval(&d1, at(SEP1, 8, 0), at(SEP1, 8, 40), BBT_USAGE_ACTIVE, 0, 40);

        /* ---- A1: the heavy user (city primary school, 4 county periods). */
        birth(&a1, at(MON, 7, 45));
        inv_a1[0] = dev(BBT_KIND_CAMERA, "video4linux", "/sys/class/video4linux/video0", "Eloam", "展台 S500", "EL-01");
        inv_a1[1] = dev(BBT_KIND_TOUCH, "input", "/sys/devices/virtual/input/input5", "IRTouch", "IR-86", "IR-77");
        inventory(&a1, inv_a1, 2, at(MON, 7, 46));
        /* Mon: 07:50-08:50 active, interactive 30 min: 60 min in school hours
         *      (07:30-12:00); period 1 [08:00,08:40) gets 40 min, period 2
         *      starts 08:50 and gets nothing.
         *      08:50-09:30 idle: 40 min on, not active.
         *      09:55-10:25 active, interactive 10 min: 30 min; period 3
         *      [10:00,10:40) gets 25 min (used).
         * Mon: on 130 min, active 90 min, interactive 1 800 000 + 600 000 =
         *      2 400 000, periods used 2 (1 and 3); on over the day 130 min, 130 hbs. */
        interval(&a1, at(MON, 7, 50), at(MON, 8, 50), BBT_USAGE_ACTIVE, 30 * MIN, 60);
        interval(&a1, at(MON, 8, 50), at(MON, 9, 30), BBT_USAGE_IDLE, 0, 40);
        interval(&a1, at(MON, 9, 55), at(MON, 10, 25), BBT_USAGE_ACTIVE, 10 * MIN, 30);
        /* Tue: 07:40-08:20 active (UTC Mon 23:40 - Tue 00:20: one local day):
         *      40 min, period 1 gets 20 min (used).
         *      10:45-11:45 active, interactive 20 min: 60 min; period 3 ended
         *      10:40 (0), period 4 [10:50,11:30) gets 40 min.
         * Tue: on 100, active 100 min, interactive 1 200 000, periods 2; 100 hbs. */
        ASSERT_EQ(bbt_day_of_ms(at(TUE, 7, 40), 0), MON); /* a UTC day earlier */
        interval(&a1, at(TUE, 7, 40), at(TUE, 8, 20), BBT_USAGE_ACTIVE, 0, 40);
        interval(&a1, at(TUE, 10, 45), at(TUE, 11, 45), BBT_USAGE_ACTIVE, 20 * MIN, 60);
        /* The Tue 10:45 usage (seq 236: birth 0, inventory 1, Mon 130 hbs + 3
         * usages = seq 2..134, Tue 07:40: 40 hbs 135..174 + usage 175, then 60
         * hbs 176..235 + usage 236) resent after a reconnect: a duplicate,
         * which must not count twice. */
        usage_msg(&m, at(TUE, 10, 45), at(TUE, 11, 45), BBT_USAGE_ACTIVE, 20 * MIN);
        feed_seq(&a1, &m, 236, at(TUE, 11, 45), at(TUE, 12, 0));
        /* Wed (holiday): 08:00-09:00 active, 60 hbs: counts for nothing. */
        interval(&a1, at(WED, 8, 0), at(WED, 9, 0), BBT_USAGE_ACTIVE, 10 * MIN, 60);
        /* Thu: 08:00-08:40 active, all of it interactive: on/active 40 min,
         *      interactive 2 400 000, period 1 used; 40 hbs. */
        interval(&a1, at(THU, 8, 0), at(THU, 8, 40), BBT_USAGE_ACTIVE, 40 * MIN, 40);
        /* Fri: 08:50-09:30 active: 40 min, period 2 used; 40 hbs.
         *      23:30 Fri - 00:30 Sat idle (left on overnight): no school-hours
         *      time on either day; 30 min on-time and 30 hbs on each day. */
        interval(&a1, at(FRI, 8, 50), at(FRI, 9, 30), BBT_USAGE_ACTIVE, 0, 40);
        interval(&a1, at(FRI, 23, 30), at(SAT, 0, 30), BBT_USAGE_IDLE, 0, 60);
        /* Sat (调休, a school day): 10:00-10:40 active, interactive 20 min:
         *      40 min, period 3 used; 40 hbs. Sat on-time 30 + 40 = 70 min, 70 hbs. */
        interval(&a1, at(SAT, 10, 0), at(SAT, 10, 40), BBT_USAGE_ACTIVE, 20 * MIN, 40);
        /* Sun: not a school day: 09:00-10:00 active, 60 hbs, counts for nothing. */
        interval(&a1, at(SUN, 9, 0), at(SUN, 10, 0), BBT_USAGE_ACTIVE, 0, 60);
        /* A1 messages: birth, inventory, 11 usages, 130+100+60+40+40+60+40+60 =
         * 530 hbs: 543 stored, seq 0..542, 1 duplicate. Last seen Sun 10:00
         * (the usage received 10:00:00.5), last active Sun 10:00. */

        /* A message breaking a rule (interactive longer than the interval): rejected, counted. */
        bad_usage = "{\"v\":1,\"seq\":9999,\"ts\":1788800000000,\"boot\":1,\"start\":1788790000000,"
                    "\"end\":1788790060000,\"state\":\"active\",\"touch\":1,\"pen\":0,\"mouse\":0,\"key\":0,"
                    "\"interactive_ms\":60001,\"audio_ms\":0}";
        bbt_ingest_message(W.in, "bbt/v1/510107/5101070001/A1/usage", bad_usage, strlen(bad_usage), false,
                           at(TUE, 12, 1));

        /* ---- A2: switched on, never used (city primary, expects a 展台 it lacks). */
        birth(&a2, at(MON, 7, 44));
        inv_a2[0] = dev(BBT_KIND_TOUCH, "input", "/sys/devices/virtual/input/input6", "IRTouch", "IR-86", "IR-78");
        inv_a2[1] = dev(BBT_KIND_AUDIO_OUT, "sound", "/sys/class/sound/card1", "Edifier", "R12U", "ED-5");
        /* No camera: periph_missing raised at the inventory's stamp, Mon 07:45. */
        inventory(&a2, inv_a2, 2, at(MON, 7, 45));
        /* Mon: off.
         * Tue: 09:00:00.000-09:09:59.999 active = 599 999 ms, one ms short of
         *      used_day_min (10 min = 600 000 ms): not used; in period 2
         *      [08:50,09:30) 599 999 ms, not used either. 10 hbs; on-time
         *      599 999 ms expects 9.99998333 heartbeats, the day's cap is
         *      ceil = 10, so all 10 count. */
        interval(&a2, at(TUE, 9, 0), at(TUE, 9, 10) - 1, BBT_USAGE_ACTIVE, 0, 10);
        /* Thu: 08:00-09:00 standby: 60 min on, not active; 60 hbs.
         *      A disk_low alert at 08:30, never cleared. */
        interval(&a2, at(THU, 8, 0), at(THU, 9, 0), BBT_USAGE_STANDBY, 0, 60);
        alert(&a2, "disk_low", BBT_SEVERITY_WARNING, BBT_ALERT_RAISED, "root 95% full", at(THU, 8, 30));
        /* Fri: 07:00-08:00 idle: 30 min in school hours (07:30-08:00), 60 min
         *      over the day; 55 hbs (5 lost to the network, never sent: no gap). */
        interval(&a2, at(FRI, 7, 0), at(FRI, 8, 0), BBT_USAGE_IDLE, 0, 55);
        shutdown_state(&a2, at(FRI, 8, 1));
        /* A2: birth, inventory, 3 usages, 125 hbs, 1 alert, 1 shutdown = 132,
         * seq 0..131. Last seen Fri 08:01, last active Tue 09:09:59.999. */

        /* ---- B1: reports, but never on in school hours on a school day (rural junior). */
        birth(&b1, at(MON, 7, 0));
        inv_b1[0] = dev(BBT_KIND_CAMERA, "video4linux", "/sys/class/video4linux/video0", "Eloam", "展台 S300", "EL-02");
        inv_b1[1] = dev(BBT_KIND_DISPLAY, "drm", "/sys/class/drm/card0-HDMI-A-1", "Seewo", "F86", "SW-9");
        inventory(&b1, inv_b1, 2, at(MON, 7, 1)); /* seq 1 */
        /* Mon: 18:00-19:00 idle (evening): no school hours; 60 min over the day, 60 hbs. */
        interval(&b1, at(MON, 18, 0), at(MON, 19, 0), BBT_USAGE_IDLE, 0, 60); /* hbs 2..61, usage 62 */
        /* Tue: 06:00-07:00 standby, before school hours: 60 min over the day;
         *      40 hbs (20 never sent). */
        interval(&b1, at(TUE, 6, 0), at(TUE, 7, 0), BBT_USAGE_STANDBY, 0, 40); /* hbs 63..102, usage 103 */
        /* Resent after a reconnect: the Mon usage, one Mon hb and the inventory: 3 duplicates. */
        usage_msg(&m, at(MON, 18, 0), at(MON, 19, 0), BBT_USAGE_IDLE, 0);
        feed_seq(&b1, &m, 62, at(MON, 19, 0), at(TUE, 12, 0));
        hb_msg(&m, BBT_USAGE_IDLE);
        feed_seq(&b1, &m, 2, at(MON, 18, 0) + 30000, at(TUE, 12, 0));
        bbt_msg_init(&m, BBT_CH_INVENTORY);
        m.body.inventory.n_devices = 2;
        m.body.inventory.devices = inv_b1;
        feed_seq(&b1, &m, 1, at(MON, 7, 1), at(TUE, 12, 0));
        /* Seq 104 and 105 never arrive: a gap of 2, still missing. */
        b1.seq += 2;
        /* Wed (holiday): 08:00-09:00 active, 60 hbs: nothing. */
        interval(&b1, at(WED, 8, 0), at(WED, 9, 0), BBT_USAGE_ACTIVE, 0, 60);
        /* Thu: 12:00-13:00 active with 10 min interactive: school hours end at
         *      12:00, so nothing of it counts but the 60 min over the day
         *      (60 hbs); its interactive share, 10 min × 0/60, is 0. */
        interval(&b1, at(THU, 12, 0), at(THU, 13, 0), BBT_USAGE_ACTIVE, 10 * MIN, 60);
        /* Sun: 09:00-10:00 standby, 60 hbs: not a school day. */
        interval(&b1, at(SUN, 9, 0), at(SUN, 10, 0), BBT_USAGE_STANDBY, 0, 60);
        /* B1: birth, inventory, 5 usages, 60+40+60+60+60 = 280 hbs = 287
         * stored, seq 0..288 with 104..105 missing, 3 duplicates. Last seen
         * Sun 10:00, last active Thu 13:00. */

        /* ---- C1: the school's own bells (3 periods; school hours 07:30-15:15). */
        birth(&c1, at(MON, 7, 30));
        inv_c1[0] = dev(BBT_KIND_DISPLAY, "drm", "/sys/class/drm/card0-HDMI-A-1", "Seewo", "F75", "SW-1");
        inv_c1[1] = dev(BBT_KIND_AUDIO_OUT, "sound", "/sys/class/sound/card1", "Edifier", "R12U", "ED-6");
        inventory(&c1, inv_c1, 2, at(MON, 7, 31));
        /* Mon: 13:50-14:50 active, interactive 30 min: all 60 min in the
         *      school's hours (under the county's bells, ending 12:00, it
         *      would be nothing); period 3 [14:00,14:45) gets 45 min.
         *      An overheat alert raised at 14:10 and cleared at 14:30. */
        hbs(&c1, at(MON, 13, 50), 60, BBT_USAGE_ACTIVE);
        alert(&c1, "overheat", BBT_SEVERITY_ERROR, BBT_ALERT_RAISED, "CPU 92.0°C", at(MON, 14, 10));
        alert(&c1, "overheat", BBT_SEVERITY_ERROR, BBT_ALERT_CLEARED, NULL, at(MON, 14, 30));
        usage_msg(&m, at(MON, 13, 50), at(MON, 14, 50), BBT_USAGE_ACTIVE, 30 * MIN);
        feed(&c1, &m, at(MON, 14, 50));
        /* Tue: 08:30-09:00 active, interactive 15 min: 30 min; period 1
         *      [08:00,08:45) 15 min (used), period 2 [08:55,09:40) 5 min (not). */
        interval(&c1, at(TUE, 8, 30), at(TUE, 9, 0), BBT_USAGE_ACTIVE, 15 * MIN, 30);
        /* Thu: 15:05-16:05 active, interactive 50 min: exactly 10 min
         *      (600 000 ms) in school hours, ending 15:15: used; interactive
         *      share 3 000 000 × 600 000 / 3 600 000 = 500 000. No period. */
        interval(&c1, at(THU, 15, 5), at(THU, 16, 5), BBT_USAGE_ACTIVE, 50 * MIN, 60);
        /* C1: birth, inventory, 3 usages, 150 hbs, 2 alerts = 157, seq 0..156.
         * Last seen Thu 16:05. */

        ASSERT_OK(bbt_ingest_flush(W.in));
        bbt_ingest_get_stats(W.in, &st);
        /* 42 + 543 + 132 + 287 + 157 = 1161 stored; 1 + 3 duplicates; 1 rejected. */
        ASSERT_EQ(st.stored, 1161);
        ASSERT_EQ(st.duplicates, 4);
        ASSERT_EQ(st.rejected[BBT_REJECT_FIELD], 1);
        ASSERT_EQ(st.open_gap_seqs, 2);
}

/* ---- running reports ---- */

static const struct bbt_metric_settings *default_settings(void)
{
        static struct bbt_metric_settings s;

        bbt_metric_settings_default(&s);
        return &s;
}

/* Runs a report into memory; returns the text (owned by W). */
static const char *run_text(const char *kind, const char *county, const char *school, int32_t from, int32_t to,
                            const char *fmt, bool chinese, const struct bbt_metric_settings *s)
{
        struct bbt_report_options o = {
                .kind = bbt_report_kind_find(kind), .county = county, .school = school, .from = from, .to = to,
                .format = bbt_renderer_find(fmt), .chinese = chinese, .now_ms = at(MON + 7, 8, 0),
                .store_label = "test.db",
        };
        char *buf = NULL, err[256] = "";
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        int r;

        ASSERT(f != NULL);
        r = bbt_reports_run(&o, W.store, W.reg, W.cal, s ? s : default_settings(), f, err, sizeof(err));
        fclose(f);
        if (r != 0) {
                free(buf);
                FAIL("bbt_reports_run %s: %d %s", kind, r, err);
        }
        ASSERT_LT(W.n_texts, sizeof(W.texts) / sizeof(W.texts[0]));
        W.texts[W.n_texts++] = buf;
        return buf;
}

static cJSON *run(const char *kind, const char *county, const char *school, int32_t from, int32_t to,
                  bool chinese, const struct bbt_metric_settings *s)
{
        const char *text = run_text(kind, county, school, from, to, "json", chinese, s);
        cJSON *doc = cJSON_Parse(text);

        if (!doc)
                FAIL("not JSON: %s", text);
        ASSERT_LT(W.n_docs, sizeof(W.docs) / sizeof(W.docs[0]));
        W.docs[W.n_docs++] = doc;
        /* The text buffer is not needed any more. */
        free(W.texts[--W.n_texts]);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "report")->valuestring, kind);
        return doc;
}

static const cJSON *table(const cJSON *doc, const char *key)
{
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "tables"), key);

        if (!cJSON_IsArray(t))
                FAIL("no table %s", key);
        return t;
}

static int rows(const cJSON *doc, const char *key)
{
        return cJSON_GetArraySize(table(doc, key));
}

static const cJSON *row_at(const cJSON *doc, const char *key, int i)
{
        const cJSON *r = cJSON_GetArrayItem(table(doc, key), i);

        if (!r)
                FAIL("table %s has no row %d", key, i);
        return r;
}

/* The row of table KEY whose column COL is the string VALUE. */
static const cJSON *row_where(const cJSON *doc, const char *key, const char *col, const char *value)
{
        const cJSON *r;

        cJSON_ArrayForEach(r, table(doc, key))
        {
                const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, col);

                if (cJSON_IsString(c) && strcmp(c->valuestring, value) == 0)
                        return r;
        }
        FAIL("table %s: no row with %s = %s", key, col, value);
}

static const cJSON *cell(int line, const cJSON *row, const char *col)
{
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(row, col);

        if (!c)
                bbt_test__fail(__FILE__, line, "no column %s", col);
        return c;
}

/* A number rounded as the report prints it (rates 4 decimals, others their
 * column's): compared to the printed value, or NONE for null. */
static void check_num(int line, const cJSON *row, const char *col, double want)
{
        const cJSON *c = cell(line, row, col);

        if (isnan(want)) {
                if (!cJSON_IsNull(c))
                        bbt_test__fail(__FILE__, line, "%s: expected null, got %s", col,
                                       cJSON_IsNumber(c) ? "a number" : "something else");
                return;
        }
        if (!cJSON_IsNumber(c))
                bbt_test__fail(__FILE__, line, "%s: expected %.10g, got %s", col, want,
                               cJSON_IsNull(c) ? "null" : "a non-number");
        if (fabs(c->valuedouble - want) > 1e-9)
                bbt_test__fail(__FILE__, line, "%s: expected %.10g, got %.10g", col, want, c->valuedouble);
}

static void check_str(int line, const cJSON *row, const char *col, const char *want)
{
        const cJSON *c = cell(line, row, col);

        if (!cJSON_IsString(c) || strcmp(c->valuestring, want) != 0)
                bbt_test__fail(__FILE__, line, "%s: expected \"%s\", got \"%s\"", col, want,
                               cJSON_IsString(c) ? c->valuestring : "(not a string)");
}

#define NUM(row, col, want) check_num(__LINE__, row, col, want)
#define STR(row, col, want) check_str(__LINE__, row, col, want)

/* The eight rate columns, as printed: rates to 4 decimals, avg_daily_hours
 * to 2, weekly_lessons to 1. */
#define RATES(row, power, usage, hours, period, inter, online, intact, weekly)                                    \
        do {                                                                                                       \
                NUM(row, "power_on_rate", power);                                                                  \
                NUM(row, "usage_rate", usage);                                                                     \
                NUM(row, "avg_daily_hours", hours);                                                                \
                NUM(row, "period_usage_rate", period);                                                             \
                NUM(row, "interactive_share", inter);                                                              \
                NUM(row, "online_rate", online);                                                                   \
                NUM(row, "intact_rate", intact);                                                                   \
                NUM(row, "weekly_lessons", weekly);                                                                \
        } while (0)

/*
 * Per terminal over Mon..Sun 09-07..13 (school days Mon Tue Thu Fri Sat: 5 each;
 * the holiday and Sunday rows are left out):
 *
 * A1  on 130+100+40+40+40 = 350 min; active 90+100+40+40+40 = 310 min
 *     = 18 600 000 ms; interactive 2 400 000 + 1 200 000 + 2 400 000 + 0 +
 *     1 200 000 = 7 200 000; powered 5, used 5; periods used 2+2+1+1+1 = 7 of
 *     5 × 4 = 20; heartbeats expected 130+100+40+70+70 = 410 = received.
 *     power 5/5 = 1; usage 1; hours 18 600 000 / 3 600 000 / 5 = 1.0333 →
 *     1.03; period 7/20 = 0.35; interactive 7 200 000 / 18 600 000 = 12/31
 *     = 0.38710 → 0.3871; online 410/410 = 1; intact 1; weekly 7 / (5/5) = 7.
 * A2  on 599 999 + 3 600 000 + 1 800 000 = 5 999 999; active 599 999;
 *     interactive 0; powered 3 (Tue Thu Fri), used 0; periods 0 of 20;
 *     expected (599 999 + 3 600 000 + 3 600 000) / 60 000 = 129.99998333,
 *     received 10 + 60 + 55 = 125; open faults periph_missing, disk_low.
 *     power 3/5 = 0.6; usage 0; hours 599 999 / 3 600 000 / 5 = 0.0333 →
 *     0.03; period 0; interactive 0 / 599 999 = 0; online 125 / 129.99998333
 *     = 0.96154 → 0.9615; intact 0; weekly 0.
 * B1  nothing in school hours: powered 0, used 0, active 0; expected
 *     60 + 60 + 60 = 180 (Mon Tue Thu), received 60 + 40 + 60 = 160.
 *     power 0; usage 0; hours 0; period 0/20 = 0; interactive null (no
 *     active time); online 160/180 = 0.8889; intact 1; weekly 0.
 * B2  never reported: 5 terminal-days, 20 periods, nothing else; silent.
 *     0, 0, 0, 0, null, null, intact 0, 0.
 * C1  on = active = 60 + 30 + 10 = 100 min = 6 000 000; interactive
 *     1 800 000 + 900 000 + 500 000 = 3 200 000; powered 3, used 3 (Mon Tue
 *     Thu); periods used 2 (Mon p3, Tue p1) of 5 × 3 = 15; heartbeats
 *     60 + 30 + 60 = 150 of 150. power 0.6; usage 0.6; hours 6 000 000 /
 *     3 600 000 / 5 = 0.3333 → 0.33; period 2/15 = 0.1333; interactive
 *     3 200 000 / 6 000 000 = 0.5333; online 1; intact 1; weekly 2.
 *
 * School A (A1 + A2): 10 terminal-days; powered 8 → 0.8; used 5 → 0.5;
 *     active 19 199 999 → 19 199 999 / 3 600 000 / 10 = 0.53333 → 0.53;
 *     periods 7/40 = 0.175; interactive 7 200 000 / 19 199 999 = 0.37500002 →
 *     0.375; online 535 / 539.99998333 = 0.99074 → 0.9907; intact 1/2 = 0.5;
 *     weekly 7 / (10/5) = 3.5.
 * School B (B1 + B2): 0, 0, 0, 0/40 = 0, null, 160/180 = 0.8889, 1/2 = 0.5, 0.
 * School C = C1.
 * Township 石板镇 (B + C): 15 terminal-days; powered 3 → 0.2; used 3 → 0.2;
 *     hours 6 000 000 / 3 600 000 / 15 = 0.1111 → 0.11; periods 2/55 =
 *     0.03636 → 0.0364; interactive 3 200 000 / 6 000 000 = 0.5333; online
 *     (160 + 150) / (180 + 150) = 0.93939 → 0.9394; intact 2/3 = 0.6667;
 *     weekly 2 / (15/5) = 0.667 → 0.7.
 * County 510107: 25 terminal-days; powered 8 + 0 + 3 = 11 → 0.44; used
 *     5 + 0 + 3 = 8 → 0.32; active 19 199 999 + 6 000 000 = 25 199 999 →
 *     25 199 999 / 3 600 000 / 25 = 0.27999999 → 0.28; periods 9 / 95 =
 *     0.094737 → 0.0947; interactive 10 400 000 / 25 199 999 = 0.412698 →
 *     0.4127; online 845 / 869.99998333 = 0.971264 → 0.9713; intact 3/5 =
 *     0.6; weekly 9 / (25/5) = 1.8. Idle: A2, B1, B2 = 3; faulty A2, B2 = 2.
 */

#define RATES_A1(r) RATES(r, 1, 1, 1.03, 0.35, 0.3871, 1, 1, 7)
#define RATES_A2(r) RATES(r, 0.6, 0, 0.03, 0, 0, 0.9615, 0, 0)
#define RATES_B1(r) RATES(r, 0, 0, 0, 0, NONE, 0.8889, 1, 0)
#define RATES_B2(r) RATES(r, 0, 0, 0, 0, NONE, NONE, 0, 0)
#define RATES_C1(r) RATES(r, 0.6, 0.6, 0.33, 0.1333, 0.5333, 1, 1, 2)
#define RATES_A(r) RATES(r, 0.8, 0.5, 0.53, 0.175, 0.375, 0.9907, 0.5, 3.5)
#define RATES_B(r) RATES(r, 0, 0, 0, 0, NONE, 0.8889, 0.5, 0)
#define RATES_C(r) RATES_C1(r)
#define RATES_BC(r) RATES(r, 0.2, 0.2, 0.11, 0.0364, 0.5333, 0.9394, 0.6667, 0.7)
#define RATES_COUNTY(r) RATES(r, 0.44, 0.32, 0.28, 0.0947, 0.4127, 0.9713, 0.6, 1.8)

static void check_settings(const cJSON *doc, const char *from, const char *to, const char *county,
                           const char *used_day_min)
{
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "settings");

        ASSERT(cJSON_IsObject(s));
        STR(s, "from", from);
        STR(s, "to", to);
        STR(s, "county", county);
        STR(s, "used_day_min", used_day_min);
        STR(s, "used_period_min", "10");
        STR(s, "school_hours_margin", "30");
        STR(s, "heartbeat_interval", "60");
        STR(s, "idle_window", "10");
        STR(s, "idle_max_days", "0");
        STR(s, "silent_days", "3");
        STR(s, "min_pupils", "50");
        STR(s, "utc_offset", "+08:00");
        STR(s, "clock_skew_limit", "300");
        STR(s, "store", "test.db");
        STR(s, "generated", "2026-09-14 08:00");
        ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(s, "version")));
}

/* ---- the cases ---- */

TEST(summary)
{
        const cJSON *doc, *r;

        build();
        doc = run("summary", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "title")->valuestring, "班班通使用情况汇总");
        ASSERT_EQ(rows(doc, "overall"), 1);
        r = row_at(doc, "overall", 0);
        STR(r, "scope", "510107");
        NUM(r, "schools", 3);
        NUM(r, "terminals", 5);
        RATES_COUNTY(r);
        NUM(r, "idle", 3);
        NUM(r, "faulty", 2);

        /* Townships in registry order: 城关街道 (A), 石板镇 (B + C). */
        ASSERT_EQ(rows(doc, "townships"), 2);
        r = row_at(doc, "townships", 0);
        STR(r, "township", "城关街道");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 2);
        RATES_A(r);
        r = row_at(doc, "townships", 1);
        STR(r, "township", "石板镇");
        NUM(r, "schools", 2);
        NUM(r, "terminals", 3);
        RATES_BC(r);

        /* 城区 = A, 镇区 = C, 乡村 = B, then the gap (highest − lowest of the defined):
         *   power  0.8 − 0 = 0.8         usage  0.6 − 0 = 0.6
         *   hours  0.53333 − 0 → 0.53    period 0.175 − 0 = 0.175
         *   inter  0.53333 − 0.37500002 = 0.158333 → 0.1583 (乡村 undefined, left out)
         *   online 1 − 0.88889 = 0.1111  intact 1 − 0.5 = 0.5   weekly 3.5 − 0 = 3.5 */
        ASSERT_EQ(rows(doc, "areas"), 4);
        r = row_at(doc, "areas", 0);
        STR(r, "area", "城区");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 2);
        RATES_A(r);
        r = row_at(doc, "areas", 1);
        STR(r, "area", "镇区");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 1);
        RATES_C(r);
        r = row_at(doc, "areas", 2);
        STR(r, "area", "乡村");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 2);
        RATES_B(r);
        r = row_at(doc, "areas", 3);
        STR(r, "area", "差距(最高−最低)");
        NUM(r, "schools", NONE);
        NUM(r, "terminals", NONE);
        RATES(r, 0.8, 0.6, 0.53, 0.175, 0.1583, 0.1111, 0.5, 3.5);
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "10");
}

TEST(summary_all_counties)
{
        const cJSON *doc, *r;

        build();
        /* D (510108) adds 5 school days (Mon..Fri: the holiday and 调休 are
         * 510107's) and 8 default periods a day, with nothing used in the week:
         * 30 terminal-days; power 11/30 = 0.3667; usage 8/30 = 0.2667; hours
         * 25 199 999 / 3 600 000 / 30 = 0.2333 → 0.23; periods 9 / (95 + 40) =
         * 0.0667; interactive and online as before (D1 had no on-time in the
         * week); intact: D1 is silent (last seen Tue 09-01; 8 school days of
         * its own since, > 3), so 3/6 = 0.5; weekly 9 / (30/5) = 1.5. */
        doc = run("summary", NULL, NULL, MON, SUN, true, NULL);
        r = row_at(doc, "overall", 0);
        STR(r, "scope", "全部");
        NUM(r, "schools", 4);
        NUM(r, "terminals", 6);
        RATES(r, 0.3667, 0.2667, 0.23, 0.0667, 0.4127, 0.9713, 0.5, 1.5);
        /* D1 was used on Tue 09-01, inside its 10-school-day window (from Mon 08-31): not idle. */
        NUM(r, "idle", 3);
        NUM(r, "faulty", 3);
        ASSERT_EQ(rows(doc, "townships"), 3);
        r = row_at(doc, "townships", 2);
        STR(r, "township", "(未登记)");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 1);
        /* D alone: 5 days, 40 periods, nothing: 0, 0, 0, 0, null, null, intact 0, 0. */
        RATES(r, 0, 0, 0, 0, NONE, NONE, 0, 0);
        /* 城区 now A + D: 15 terminal-days; powered 8 → 0.5333; used 5 →
         * 0.3333; hours 19 199 999 / 3 600 000 / 15 = 0.3556 → 0.36; periods
         * 7/80 = 0.0875; interactive 0.375; online 0.9907; intact 1/3 =
         * 0.3333; weekly 7 / 3 = 2.333 → 2.3. */
        r = row_where(doc, "areas", "area", "城区");
        NUM(r, "schools", 2);
        NUM(r, "terminals", 3);
        RATES(r, 0.5333, 0.3333, 0.36, 0.0875, 0.375, 0.9907, 0.3333, 2.3);
        check_settings(doc, "2026-09-07", "2026-09-13", "全部", "10");

        /* The other county alone. */
        doc = run("summary", "510108", NULL, MON, SUN, true, NULL);
        r = row_at(doc, "overall", 0);
        STR(r, "scope", "510108");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 1);
        RATES(r, 0, 0, 0, 0, NONE, NONE, 0, 0);
        /* A county with nothing: no terminals, every rate undefined, intact too. */
        doc = run("summary", "510199", NULL, MON, SUN, true, NULL);
        r = row_at(doc, "overall", 0);
        NUM(r, "schools", 0);
        NUM(r, "terminals", 0);
        RATES(r, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE);
        ASSERT_EQ(rows(doc, "townships"), 0);
        ASSERT_EQ(rows(doc, "areas"), 1); /* the gap row, empty */
        RATES(row_at(doc, "areas", 0), NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE);
}

TEST(schools)
{
        const cJSON *doc, *r;

        build();
        doc = run("schools", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "schools"), 3);
        r = row_at(doc, "schools", 0);
        STR(r, "school_code", "5101070001");
        STR(r, "school_name", "城关小学");
        STR(r, "township", "城关街道");
        STR(r, "type", "小学");
        STR(r, "area", "城区");
        NUM(r, "students", 600);
        NUM(r, "terminals", 2);
        RATES_A(r);
        NUM(r, "idle", 1); /* A2 */
        r = row_at(doc, "schools", 1);
        STR(r, "school_code", "5101070002");
        STR(r, "type", "初中");
        STR(r, "area", "乡村");
        NUM(r, "students", 200);
        NUM(r, "terminals", 2);
        RATES_B(r);
        NUM(r, "idle", 2); /* B1, B2 */
        r = row_at(doc, "schools", 2);
        STR(r, "school_code", "5101070003");
        STR(r, "school_name", "石板镇九年一贯制学校");
        STR(r, "type", "九年一贯制");
        STR(r, "area", "镇区");
        NUM(r, "students", 340);
        NUM(r, "terminals", 1);
        RATES_C(r);
        NUM(r, "idle", 0);
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "10");
}

TEST(school_filter)
{
        const cJSON *doc, *r;

        build();
        doc = run("summary", NULL, "5101070001", MON, SUN, true, NULL);
        r = row_at(doc, "overall", 0);
        STR(r, "scope", "5101070001");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 2);
        RATES_A(r);
        NUM(r, "idle", 1);
        NUM(r, "faulty", 1);
        ASSERT_EQ(rows(doc, "areas"), 2); /* 城区 and the gap, which is 0 for one area */
        RATES(row_at(doc, "areas", 1), 0, 0, 0, 0, 0, 0, 0, 0);
        STR(cJSON_GetObjectItemCaseSensitive(doc, "settings"), "school", "5101070001");

        doc = run("terminals", "510107", "5101070003", MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "terminals"), 1);
        RATES_C1(row_at(doc, "terminals", 0));
        /* A school of another county: nothing. */
        doc = run("terminals", "510108", "5101070003", MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "terminals"), 0);
}

TEST(terminals)
{
        const cJSON *doc, *r;

        build();
        doc = run("terminals", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "terminals"), 5);
        r = row_at(doc, "terminals", 0);
        STR(r, "school_code", "5101070001");
        STR(r, "school_name", "城关小学");
        STR(r, "terminal", "A1");
        STR(r, "room", "一年级(1)班");
        NUM(r, "online", NONE); /* a past range: what is current is not shown */
        STR(r, "last_seen", "2026-09-13 10:00");
        RATES_A1(r);
        NUM(r, "open_faults", 0);
        NUM(r, "version", NONE);
        r = row_at(doc, "terminals", 1);
        STR(r, "terminal", "A2");
        NUM(r, "online", NONE);
        STR(r, "last_seen", "2026-09-11 08:01");
        RATES_A2(r);
        NUM(r, "open_faults", 2); /* periph_missing, disk_low */
        r = row_at(doc, "terminals", 2);
        STR(r, "terminal", "B1");
        STR(r, "last_seen", "2026-09-13 10:00");
        RATES_B1(r);
        NUM(r, "open_faults", 0);
        r = row_at(doc, "terminals", 3);
        STR(r, "school_code", "5101070002");
        STR(r, "terminal", "B2");
        STR(r, "room", "七年级(2)班");
        STR(r, "last_seen", "从未");
        RATES_B2(r);
        NUM(r, "open_faults", 1); /* silent */
        r = row_at(doc, "terminals", 4);
        STR(r, "terminal", "C1");
        STR(r, "last_seen", "2026-09-10 16:05");
        RATES_C1(r);
        NUM(r, "open_faults", 0); /* the overheat was cleared */
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "10");

        /* A range up to today (now is Mon 09-14 08:00): online and the agent
         * version, which are kept as current values only, are shown. */
        doc = run("terminals", "510107", NULL, MON, MON + 7, true, NULL);
        r = row_at(doc, "terminals", 0);
        STR(r, "online", "是");
        STR(r, "version", "2.1.0");
        STR(row_at(doc, "terminals", 1), "online", "否"); /* A2 shut down cleanly on Fri 08:01 */
        STR(row_at(doc, "terminals", 2), "online", "是");
        STR(row_at(doc, "terminals", 3), "online", "否");
        STR(row_at(doc, "terminals", 3), "version", "");
}

TEST(idle)
{
        const cJSON *doc, *r;
        struct bbt_metric_settings s;

        build();
        /* Window Mon 08-31 .. Sat 09-12 (10 school days of 510107; the term
         * starts 08-31). A1 used 5 days, C1 3: not idle. */
        doc = run("idle", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "idle"), 3);
        r = row_at(doc, "idle", 0);
        STR(r, "terminal", "A2");
        STR(r, "school_name", "城关小学");
        STR(r, "room", "一年级(2)班");
        NUM(r, "used_days", 0);
        STR(r, "last_active", "2026-09-08 09:09"); /* the 599 999 ms ended 09:09:59.999 */
        STR(r, "last_seen", "2026-09-11 08:01");
        STR(r, "reason", "开机未使用");
        r = row_at(doc, "idle", 1);
        STR(r, "terminal", "B1");
        NUM(r, "used_days", 0);
        STR(r, "last_active", "2026-09-10 13:00"); /* active, but after school hours */
        STR(r, "last_seen", "2026-09-13 10:00");
        STR(r, "reason", "未开机");
        r = row_at(doc, "idle", 2);
        STR(r, "terminal", "B2");
        NUM(r, "used_days", 0);
        STR(r, "last_active", "从未");
        STR(r, "last_seen", "从未");
        STR(r, "reason", "从未上报");
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "10");

        /* All counties: D1's window is Mon 08-31 .. Fri 09-11 (its weekdays);
         * used on Tue 09-01, so not idle. */
        doc = run("idle", NULL, NULL, MON, SUN, false, NULL);
        ASSERT_EQ(rows(doc, "idle"), 3);
        STR(row_at(doc, "idle", 0), "reason", "powered but not used");
        STR(row_at(doc, "idle", 1), "reason", "never powered on");
        STR(row_at(doc, "idle", 2), "reason", "never reported");
        STR(row_at(doc, "idle", 2), "last_seen", "never");

        /* A window of 5 school days: 510107's is Mon 09-07 .. Sat 09-12, D's
         * Mon 09-07 .. Fri 09-11. D1 was last seen Tue 09-01, before it: offline. */
        bbt_metric_settings_default(&s);
        s.idle_window = 5;
        doc = run("idle", NULL, NULL, MON, SUN, true, &s);
        ASSERT_EQ(rows(doc, "idle"), 4);
        r = row_where(doc, "idle", "terminal", "D1");
        STR(r, "school_code", "5101080001");
        NUM(r, "used_days", 0);
        STR(r, "last_active", "2026-09-01 08:40");
        STR(r, "last_seen", "2026-09-01 08:40");
        STR(r, "reason", "离线");
        STR(row_where(doc, "idle", "terminal", "A2"), "reason", "开机未使用");
        STR(cJSON_GetObjectItemCaseSensitive(doc, "settings"), "idle_window", "5");

        /* Idle when used on at most 3 days: C1 (used Mon, Tue, Thu) joins A2, B1, B2; A1 (5) does not. */
        bbt_metric_settings_default(&s);
        s.idle_max_days = 3;
        doc = run("idle", "510107", NULL, MON, SUN, true, &s);
        ASSERT_EQ(rows(doc, "idle"), 4);
        r = row_where(doc, "idle", "terminal", "C1");
        NUM(r, "used_days", 3);
        STR(r, "reason", "开机未使用");
}

TEST(faults)
{
        const cJSON *doc, *r;

        build();
        /* Present in Mon 09-07 .. Sun 09-13: B2 silent (never reported: when
         * that began is not known) and still open; A2's periph_missing (the
         * inventory had no camera) and disk_low (an agent alert never
         * cleared), open at the end; C1's overheat, cleared on Monday. */
        doc = run("faults", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "faults"), 4);
        r = row_at(doc, "faults", 0);
        STR(r, "school_code", "5101070002");
        STR(r, "terminal", "B2");
        STR(r, "code", "silent");
        STR(r, "name", "长期未上报");
        STR(r, "severity", "错误");
        STR(r, "source", "平台");
        STR(r, "since", "从未");
        NUM(r, "cleared", NONE);
        STR(r, "detail", "超过 3 个上课日未收到任何数据");
        r = row_at(doc, "faults", 1);
        STR(r, "terminal", "A2");
        STR(r, "room", "一年级(2)班");
        STR(r, "code", "periph_missing");
        STR(r, "name", "外设缺失");
        STR(r, "severity", "警告");
        STR(r, "source", "平台");
        STR(r, "since", "2026-09-07 07:45");
        NUM(r, "cleared", NONE);
        STR(r, "detail", "expected but absent: camera");
        r = row_at(doc, "faults", 2);
        STR(r, "terminal", "A2");
        STR(r, "code", "disk_low");
        STR(r, "name", "磁盘空间不足");
        STR(r, "severity", "警告");
        STR(r, "source", "终端");
        STR(r, "since", "2026-09-10 08:30");
        NUM(r, "cleared", NONE);
        STR(r, "detail", "root 95% full");
        r = row_at(doc, "faults", 3);
        STR(r, "terminal", "C1");
        STR(r, "code", "overheat");
        STR(r, "since", "2026-09-07 14:10");
        STR(r, "cleared", "2026-09-07 14:30");
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "10");

        /* Up to Mon 09-07: the overheat (raised 14:10, cleared 14:30) with its
         * cleared time; disk_low not raised yet. */
        doc = run("faults", "510107", NULL, MON, MON, true, NULL);
        ASSERT_EQ(rows(doc, "faults"), 3);
        STR(row_at(doc, "faults", 0), "code", "silent");
        STR(row_at(doc, "faults", 1), "code", "periph_missing");
        STR(row_at(doc, "faults", 2), "code", "overheat");
        STR(row_at(doc, "faults", 2), "cleared", "2026-09-07 14:30");
        /* The Sunday before: nothing of it yet. */
        doc = run("faults", "510107", NULL, MON - 1, MON - 1, true, NULL);
        ASSERT_EQ(rows(doc, "faults"), 5); /* every terminal silent: none had reported */

        /* All counties: D1, last heard of Tue 09-01 08:40; its 510108 school
         * days after it are Wed 09-02, Thu 09-03, Fri 09-04, Mon 09-07: the
         * fourth (more than silent_days = 3) makes it silent, from the end of
         * Mon 09-07. */
        doc = run("faults", NULL, NULL, MON, SUN, false, NULL);
        ASSERT_EQ(rows(doc, "faults"), 5);
        r = row_where(doc, "faults", "terminal", "D1");
        STR(r, "code", "silent");
        STR(r, "name", "silent");
        STR(r, "source", "aggregator");
        STR(r, "since", "2026-09-08 00:00");
        NUM(r, "cleared", NONE);
        STR(r, "detail", "nothing received for over 3 school days after 2026-09-01 08:40");
}

TEST(balance)
{
        const cJSON *doc, *r;
        struct bbt_metric_settings s;

        build();
        /* Primary: A (600 pupils) and C's primary section (300); junior: B
         * (200), C's junior section (40 < 50: left out).
         *
         * Values per school (C's terminals per 100 uses all its 340 pupils):
         *   A: terminals/100 = 2/600 × 100 = 0.33333; hours 0.533333;
         *      usage 0.5; period 0.175
         *   B: 2/200 × 100 = 1; 0; 0; 0
         *   C: 1/340 × 100 = 0.294118; 0.333333; 0.6; 0.133333
         * Primary, weights 600/900 = 2/3 and 1/3; for two schools
         * S = |X_A − X_C| × sqrt(2/3 × 1/3) = |X_A − X_C| × 0.4714045:
         *   terminals/100: X̄ = (600 × 0.33333 + 300 × 0.294118)/900 = 0.320261;
         *      S = 0.0392157 × 0.4714045 = 0.018486; CV = 0.057723 → 0.058
         *   hours: X̄ = (2 × 0.533333 + 0.333333)/3 = 0.466667; S = 0.2 ×
         *      0.4714045 = 0.094281; CV = 0.202030 → 0.202
         *   usage: X̄ = (2 × 0.5 + 0.6)/3 = 0.533333; S = 0.1 × 0.4714 =
         *      0.047140; CV = 0.088388 → 0.088
         *   period: X̄ = (2 × 0.175 + 0.133333)/3 = 0.161111; S = 0.041667 ×
         *      0.4714 = 0.019642; CV = 0.121915 → 0.122
         * Junior, B alone: terminals/100 X̄ = 1, S = 0, CV = 0 (优质均衡);
         * the usage indicators are all 0: X̄ = 0, CV undefined. */
        doc = run("balance", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "primary"), 4);
        r = row_at(doc, "primary", 0);
        STR(r, "indicator", "每百名学生拥有网络多媒体教室数");
        NUM(r, "schools", 2);
        NUM(r, "left_out", 0);
        NUM(r, "mean", 0.320);
        NUM(r, "sd", 0.018);
        NUM(r, "cv", 0.058);
        NUM(r, "quality_max", 0.50);
        NUM(r, "basic_max", 0.65);
        STR(r, "result", "达到优质均衡");
        r = row_at(doc, "primary", 1);
        STR(r, "indicator", "日均使用时长");
        NUM(r, "mean", 0.467);
        NUM(r, "sd", 0.094);
        NUM(r, "cv", 0.202);
        r = row_at(doc, "primary", 2);
        STR(r, "indicator", "使用率");
        NUM(r, "mean", 0.533);
        NUM(r, "sd", 0.047);
        NUM(r, "cv", 0.088);
        r = row_at(doc, "primary", 3);
        STR(r, "indicator", "堂堂用率");
        NUM(r, "mean", 0.161);
        NUM(r, "sd", 0.020);
        NUM(r, "cv", 0.122);
        STR(r, "result", "达到优质均衡");

        ASSERT_EQ(rows(doc, "junior"), 4);
        r = row_at(doc, "junior", 0);
        NUM(r, "schools", 1);
        NUM(r, "left_out", 1);
        NUM(r, "mean", 1);
        NUM(r, "sd", 0);
        NUM(r, "cv", 0);
        NUM(r, "quality_max", 0.45);
        NUM(r, "basic_max", 0.55);
        STR(r, "result", "达到优质均衡");
        for (int i = 1; i < 4; i++) {
                r = row_at(doc, "junior", i);
                NUM(r, "schools", 1);
                NUM(r, "left_out", 1);
                NUM(r, "mean", 0);
                NUM(r, "sd", 0);
                NUM(r, "cv", NONE);
                STR(r, "result", "无法计算");
        }

        /* Values: A primary, B junior, C primary, C junior. */
        ASSERT_EQ(rows(doc, "values"), 4);
        r = row_at(doc, "values", 0);
        STR(r, "school_code", "5101070001");
        STR(r, "section", "小学");
        NUM(r, "pupils", 600);
        NUM(r, "terminals_per_100", 0.33);
        NUM(r, "avg_daily_hours", 0.53);
        NUM(r, "usage_rate", 0.5);
        NUM(r, "period_usage_rate", 0.175);
        r = row_at(doc, "values", 1);
        STR(r, "school_code", "5101070002");
        STR(r, "section", "初中");
        NUM(r, "pupils", 200);
        NUM(r, "terminals_per_100", 1);
        NUM(r, "avg_daily_hours", 0);
        NUM(r, "usage_rate", 0);
        NUM(r, "period_usage_rate", 0);
        r = row_at(doc, "values", 2);
        STR(r, "school_code", "5101070003");
        STR(r, "section", "小学");
        NUM(r, "pupils", 300);
        NUM(r, "terminals_per_100", 0.29);
        NUM(r, "avg_daily_hours", 0.33);
        NUM(r, "usage_rate", 0.6);
        NUM(r, "period_usage_rate", 0.1333);
        r = row_at(doc, "values", 3);
        STR(r, "section", "初中");
        NUM(r, "pupils", 40);
        NUM(r, "terminals_per_100", 0.29);
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "10");

        /* With min_pupils 30, C's 40 junior pupils count. Weights 200/240 =
         * 5/6 and 40/240 = 1/6, S = |X_B − X_C| × sqrt(5/36) = |X_B − X_C| × 0.372678:
         *   terminals/100: X̄ = (5 × 1 + 0.294118)/6 = 0.882353; S = 0.705882 ×
         *      0.372678 = 0.263067; CV = 0.298142 → 0.298 (优质均衡, ≤ 0.45)
         *   hours: X̄ = 0.333333/6 = 0.055556; S = 0.333333 × 0.372678 =
         *      0.124226; CV = sqrt(5) = 2.236068 → 2.236 (未达标)
         *   usage: X̄ = 0.6/6 = 0.1; S = 0.6 × 0.372678 = 0.223607; CV = 2.236 */
        bbt_metric_settings_default(&s);
        s.min_pupils = 30;
        doc = run("balance", "510107", NULL, MON, SUN, true, &s);
        r = row_at(doc, "junior", 0);
        NUM(r, "schools", 2);
        NUM(r, "left_out", 0);
        NUM(r, "mean", 0.882);
        NUM(r, "sd", 0.263);
        NUM(r, "cv", 0.298);
        STR(r, "result", "达到优质均衡");
        r = row_at(doc, "junior", 1);
        NUM(r, "mean", 0.056);
        NUM(r, "sd", 0.124);
        NUM(r, "cv", 2.236);
        STR(r, "result", "未达标");
        r = row_at(doc, "junior", 2);
        NUM(r, "mean", 0.1);
        NUM(r, "sd", 0.224);
        NUM(r, "cv", 2.236);
        STR(cJSON_GetObjectItemCaseSensitive(doc, "settings"), "min_pupils", "30");
}

TEST(inventory)
{
        const cJSON *doc, *r;

        build();
        doc = run("inventory", "510107", NULL, MON, SUN, true, NULL);
        /* Two devices each from A1, A2, B1, C1 (B1's resent inventory is a duplicate). */
        ASSERT_EQ(rows(doc, "devices"), 8);
        r = row_at(doc, "devices", 0);
        STR(r, "school_code", "5101070001");
        STR(r, "terminal", "A1");
        STR(r, "room", "一年级(1)班");
        STR(r, "kind", "camera");
        STR(r, "vendor", "Eloam");
        STR(r, "model", "展台 S500");
        STR(r, "serial", "EL-01");
        STR(r, "bus", "usb");
        STR(row_at(doc, "devices", 1), "kind", "touch");
        STR(row_at(doc, "devices", 2), "terminal", "A2");
        STR(row_at(doc, "devices", 3), "kind", "audio_out");
        STR(row_at(doc, "devices", 4), "terminal", "B1");
        STR(row_at(doc, "devices", 7), "terminal", "C1");
        /* Expected but absent: A2's 展台, and B2's, which never reported
         * anything; A1 and B1 have theirs, C1 expects nothing. */
        ASSERT_EQ(rows(doc, "missing"), 2);
        r = row_at(doc, "missing", 0);
        STR(r, "terminal", "A2");
        STR(r, "school_name", "城关小学");
        STR(r, "missing", "camera");
        r = row_at(doc, "missing", 1);
        STR(r, "terminal", "B2");
        STR(r, "missing", "camera");
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "10");
}

TEST(loss)
{
        const cJSON *doc, *r;

        build();
        doc = run("loss", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "terminals"), 5);
        r = row_where(doc, "terminals", "terminal", "A1");
        NUM(r, "received", 543);
        NUM(r, "duplicates", 1);
        NUM(r, "lost", 0);
        NUM(r, "missing", 0);
        NUM(r, "spool_dropped", 0);
        NUM(r, "first_seq", 0);
        NUM(r, "last_seq", 542);
        r = row_where(doc, "terminals", "terminal", "A2");
        NUM(r, "received", 132);
        NUM(r, "duplicates", 0);
        NUM(r, "missing", 0);
        NUM(r, "last_seq", 131);
        r = row_where(doc, "terminals", "terminal", "B1");
        STR(r, "school_code", "5101070002");
        NUM(r, "received", 287);
        NUM(r, "duplicates", 3);
        NUM(r, "lost", 0);
        NUM(r, "missing", 2); /* seq 104..105 */
        NUM(r, "first_seq", 0);
        NUM(r, "last_seq", 288);
        r = row_where(doc, "terminals", "terminal", "B2");
        NUM(r, "received", NONE);
        NUM(r, "duplicates", NONE);
        NUM(r, "missing", NONE);
        NUM(r, "last_seq", NONE);
        r = row_where(doc, "terminals", "terminal", "C1");
        NUM(r, "received", 157);
        NUM(r, "last_seq", 156);
        /* The counters are over all terminals: 42 + 543 + 132 + 287 + 157 = 1161 stored. */
        NUM(row_where(doc, "counters", "counter", "stored"), "value", 1161);
        NUM(row_where(doc, "counters", "counter", "duplicates"), "value", 4);
        NUM(row_where(doc, "counters", "counter", "reject_field"), "value", 1);
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "10");
}

/* Lost, skipped and conflicting seqs are shown apart, each with its reason. */
TEST(loss_skipped_and_conflicts)
{
        struct feeder b1 = { "510107", "5101070002", "B1", 0 }, c1 = { "510107", "5101070003", "C1", 0 };
        const cJSON *doc, *r;
        struct bbt_msg m;
        cJSON *result;

        build();
        /* B1's gap 104..105: the agent says 104 was lost from its spool and
         * 105 never used. */
        bbt_msg_init(&m, BBT_CH_CMD_REPLY);
        result = cJSON_Parse("{\"from\":104,\"to\":105,\"sent\":0,\"first_retained\":1,\"last_seq\":289,"
                             "\"missing\":[{\"from\":104,\"to\":104,\"reason\":\"damaged\"},"
                             "{\"from\":105,\"to\":105,\"reason\":\"skipped\"}]}");
        m.body.reply.id = "rs-1-1";
        m.body.reply.ok = true;
        m.body.reply.result_json = result;
        feed_seq(&b1, &m, 289, at(SUN, 9, 0), at(SUN, 9, 0));
        cJSON_Delete(result);
        /* C1 uses seq 5 a second time, for a different heartbeat. */
        hb_msg(&m, BBT_USAGE_IDLE);
        m.body.hb.uptime = 999999;
        feed_seq(&c1, &m, 5, at(SUN, 9, 1), at(SUN, 9, 1));
        ASSERT_OK(bbt_ingest_flush(W.in));

        doc = run("loss", "510107", NULL, MON, SUN, true, NULL);
        r = row_where(doc, "terminals", "terminal", "B1");
        NUM(r, "lost", 1);
        NUM(r, "skipped", 1);
        NUM(r, "conflicts", 0);
        NUM(r, "missing", 0);
        r = row_where(doc, "terminals", "terminal", "C1");
        NUM(r, "conflicts", 1);
        NUM(r, "lost", 0);
        ASSERT_EQ(rows(doc, "ranges"), 2);
        r = row_where(doc, "ranges", "kind", "lost");
        NUM(r, "from_seq", 104);
        NUM(r, "to_seq", 104);
        NUM(r, "count", 1);
        STR(r, "reason", "终端缓存损坏或断电时未写入磁盘");
        r = row_where(doc, "ranges", "kind", "skipped");
        NUM(r, "from_seq", 105);
        STR(r, "kind_name", "跳过（未使用）");
        STR(r, "reason", "未使用（终端异常停止后跳过的序号）");
        ASSERT_EQ(rows(doc, "conflicts"), 1);
        r = row_at(doc, "conflicts", 0);
        STR(r, "terminal", "C1");
        NUM(r, "seq", 5);
        STR(r, "channel", "hb");
        NUM(row_where(doc, "counters", "counter", "seq_conflict"), "value", 1);
        NUM(row_where(doc, "counters", "counter", "skipped"), "value", 1);
        NUM(row_where(doc, "counters", "counter", "lost"), "value", 1);
        /* In English, the reasons as recorded. */
        doc = run("loss", "510107", NULL, MON, SUN, false, NULL);
        STR(row_where(doc, "ranges", "kind", "skipped"), "reason", "never used (skipped after an unclean stop)");
}

/* A range without a school day: the holiday alone, and the Sunday alone. */
TEST(no_school_days)
{
        const cJSON *doc, *r;
        int32_t days[2] = { WED, SUN };

        build();
        for (int i = 0; i < 2; i++) {
                doc = run("summary", "510107", NULL, days[i], days[i], true, NULL);
                r = row_at(doc, "overall", 0);
                NUM(r, "terminals", 5);
                /* Every rate over days is undefined, not 0; 设备完好率 counts
                 * terminals: A1, B1, C1 intact, A2 (periph_missing since Mon)
                 * and B2 (silent) not: 3/5. */
                RATES(r, NONE, NONE, NONE, NONE, NONE, NONE, 0.6, NONE);
                r = row_at(doc, "areas", 0);
                RATES(r, NONE, NONE, NONE, NONE, NONE, NONE, 0.5, NONE);
                doc = run("schools", "510107", NULL, days[i], days[i], true, NULL);
                RATES(row_at(doc, "schools", 2), NONE, NONE, NONE, NONE, NONE, NONE, 1, NONE);
                doc = run("balance", "510107", NULL, days[i], days[i], true, NULL);
                /* Terminals per 100 pupils needs no school day; the others are undefined for every school. */
                NUM(row_at(doc, "primary", 0), "cv", 0.058);
                r = row_at(doc, "primary", 1);
                NUM(r, "schools", 0);
                NUM(r, "left_out", 2);
                NUM(r, "mean", NONE);
                NUM(r, "cv", NONE);
                STR(r, "result", "无法计算");
        }
}

/* used_day_min 11: C1's Monday (60 min) and Tuesday (30 min) stay used, its
 * Thursday (exactly 10 min) drops: used 2/5 = 0.4; nothing else moves. */
TEST(settings_change)
{
        const cJSON *doc;
        struct bbt_metric_settings s;

        build();
        bbt_metric_settings_default(&s);
        s.used_day_min = 11;
        doc = run("terminals", "510107", "5101070003", MON, SUN, true, &s);
        RATES(row_at(doc, "terminals", 0), 0.6, 0.4, 0.33, 0.1333, 0.5333, 1, 1, 2);
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", "11");
}

TEST(every_report_has_settings)
{
        const struct bbt_report_kind *kind;

        build();
        for (size_t k = 0; (kind = bbt_report_kind_at(k)); k++) {
                const cJSON *doc = run(kind->name, "510107", NULL, MON, SUN, k % 2 == 0, NULL);
                const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "settings");

                ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "notes")));
                STR(s, "from", "2026-09-07");
                STR(s, "to", "2026-09-13");
                STR(s, "used_day_min", "10");
                STR(s, "min_pupils", "50");
                STR(s, "utc_offset", "+08:00");
                STR(doc, "lang", k % 2 == 0 ? "zh" : "en");
        }
}

TEST(csv)
{
        const char *text;

        build();
        text = run_text("summary", "510107", NULL, MON, SUN, "csv", true, NULL);
        ASSERT(memcmp(text, "\xef\xbb\xbf", 3) == 0);
        ASSERT_STR_CONTAINS(text, "\xef\xbb\xbf总体\r\n范围,学校数,终端数,开机率,使用率,日均使用时长(小时),堂堂用率,"
                                  "互动使用占比,在线率,设备完好率,周均使用节数,闲置终端,故障终端\r\n");
        /* The overall row, as in the JSON: rates to 4 decimals, hours 2, weekly 1. */
        ASSERT_STR_CONTAINS(text, "510107,3,5,0.4400,0.3200,0.28,0.0947,0.4127,0.9713,0.6000,1.8,3,2\r\n");
        ASSERT_STR_CONTAINS(text, "乡镇/街道,学校数,终端数,开机率");
        /* 乡村: interactive share undefined, an empty cell. */
        ASSERT_STR_CONTAINS(text, "乡村,1,2,0.0000,0.0000,0.00,0.0000,,0.8889,0.5000,0.0\r\n");
        ASSERT_STR_CONTAINS(text, "设置,值\r\n");
        ASSERT_STR_CONTAINS(text, "起始日期,2026-09-07\r\n");
        ASSERT_STR_CONTAINS(text, "截止日期,2026-09-13\r\n");
        ASSERT_STR_CONTAINS(text, "当日使用判定(分钟),10\r\n");

        text = run_text("idle", "510107", NULL, MON, SUN, "csv", true, NULL);
        ASSERT(memcmp(text, "\xef\xbb\xbf", 3) == 0);
        ASSERT_STR_CONTAINS(text, "学校代码,学校名称,终端,教室,窗口内使用天数,最后使用,最后上报,原因\r\n");
        ASSERT_STR_CONTAINS(text, "从未上报");
}

TEST(english)
{
        const cJSON *doc, *r;
        const char *text;

        build();
        doc = run("summary", "510107", NULL, MON, SUN, false, NULL);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "lang")->valuestring, "en");
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "title")->valuestring, "Classroom terminal use: summary");
        STR(row_at(doc, "areas", 0), "area", "urban");
        STR(row_at(doc, "areas", 1), "area", "town");
        STR(row_at(doc, "areas", 2), "area", "rural");
        STR(row_at(doc, "areas", 3), "area", "Gap (highest − lowest)");
        RATES_COUNTY(row_at(doc, "overall", 0));
        doc = run("schools", "510107", NULL, MON, SUN, false, NULL);
        r = row_at(doc, "schools", 2);
        STR(r, "type", "nine_year");
        STR(r, "area", "town");

        text = run_text("summary", "510107", NULL, MON, SUN, "csv", false, NULL);
        ASSERT(memcmp(text, "\xef\xbb\xbf", 3) == 0);
        ASSERT_STR_CONTAINS(text, "Scope,Schools,Terminals,Power-on rate,Usage rate,Avg daily hours,Per-lesson use,"
                                  "Interactive share,Online rate,Intact rate,Weekly lessons,Idle,Faulty\r\n");
        ASSERT_STR_CONTAINS(text, "setting,value\r\n");
        ASSERT_STR_CONTAINS(text, "From,2026-09-07\r\n");
        ASSERT(strstr(text, "开机率") == NULL);
}

/* An agent misconfigured with the neighbouring county's code publishes as
 * 510108/5101070001/A1: a different terminal (the topic's county is part of
 * its identity), not registered. The registered A1 of 510107 keeps its own
 * figures, and 510107's report does not grow a second A1. */
TEST(same_codes_other_county)
{
        struct feeder x = { "510108", "5101070001", "A1", 0 };
        const cJSON *doc, *r;

        build();
        birth(&x, at(TUE, 7, 0));
        interval(&x, at(TUE, 8, 0), at(TUE, 8, 40), BBT_USAGE_ACTIVE, 0, 40);
        ASSERT_OK(bbt_ingest_flush(W.in));

        doc = run("terminals", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "terminals"), 5);
        r = row_at(doc, "terminals", 0);
        STR(r, "terminal", "A1");
        STR(r, "last_seen", "2026-09-13 10:00");
        RATES_A1(r);
        doc = run("summary", "510107", NULL, MON, SUN, true, NULL);
        RATES_COUNTY(row_at(doc, "overall", 0));
        doc = run("loss", "510107", NULL, MON, SUN, true, NULL);
        NUM(row_where(doc, "terminals", "terminal", "A1"), "received", 543);

        /* Under 510108 it shows as a terminal of a school code the county's
         * registry does not have: D's school days (Mon..Fri, 8 default
         * periods); used Tue, 40 min, period 1. */
        doc = run("terminals", "510108", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "terminals"), 2);
        r = row_where(doc, "terminals", "school_code", "5101070001");
        STR(r, "terminal", "A1");
        STR(r, "room", "");
        STR(r, "last_seen", "2026-09-08 08:40");
        STR(r, "school_name", "");
        /* 510108's days (Mon..Fri) and the default bells (8 periods; the agent's
         * rollups were cut with them too): 5 terminal-days, 40 periods.
         * power 1/5 = 0.2; usage 0.2; hours 40/60/5 = 0.1333 → 0.13; period
         * 1/40 = 0.025; interactive 0/40 min = 0; online 40/40 = 1; intact 1
         * (last seen Tue, 3 school days since: not more than 3); weekly 1. */
        RATES(r, 0.2, 0.2, 0.13, 0.025, 0, 1, 1, 1);
        /* Not 城关小学 of 510107: no name, type, area or pupils under 510108, and
         * no place in 510108's areas or balance. */
        doc = run("schools", "510108", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "schools"), 2);
        r = row_where(doc, "schools", "school_code", "5101070001");
        STR(r, "school_name", "");
        NUM(r, "students", NONE);
        NUM(r, "terminals", 1);
        doc = run("summary", "510108", NULL, MON, SUN, true, NULL);
        r = row_at(doc, "overall", 0);
        NUM(r, "schools", 2);
        NUM(r, "terminals", 2);
        r = row_where(doc, "areas", "area", "城区");
        NUM(r, "schools", 1); /* D only */
        NUM(r, "terminals", 1);
        doc = run("balance", "510108", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "values"), 1);
        STR(row_at(doc, "values", 0), "school_code", "5101080001");
}
