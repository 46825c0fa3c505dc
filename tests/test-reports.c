/* The reports end to end: CSV registry and calendar, protocol messages through the ingest into SQLite, bbt_reports_run as JSON/CSV, bbt-report's XLSX read back against its CSV, every figure checked against hand arithmetic. */
/* bbt-test: label=unit timeout=60 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bbt/log.h"
#include "bbt/protocol.h"
#include "calendar.h"
#include "daemon.h"
#include "dates.h"
#include "aggregator_config.h"
#include "fixture-tree.h"
#include "ingest.h"
#include "registry.h"
#include "reports.h"
#include "store.h"
#include "test.h"
#include "xlsx-readback.h"

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

/* Object KEY of DOC (a figure that is not a row of a list). */
static const cJSON *object(const cJSON *doc, const char *key)
{
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "objects"), key);

        if (!cJSON_IsObject(o))
                FAIL("no object %s", key);
        return o;
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

/* The decimals text and CSV print column COL with; -1: an exact number (the
 * JSON has every number unrounded). */
static int printed_decimals(const char *col)
{
        static const struct {
                const char *col;
                int decimals;
        } cols[] = {
                { "power_on_rate", 4 },    { "usage_rate", 4 },  { "period_usage_rate", 4 }, { "interactive_share", 4 },
                { "online_rate", 4 },      { "intact_rate", 4 }, { "avg_daily_hours", 2 },   { "weekly_lessons", 1 },
                { "mean", 3 },             { "sd", 3 },          { "cv", 3 },                { "quality_max", 2 },
                { "basic_max", 2 },        { "terminals_per_100", 2 },
                { "weekly_rule_rate", 4 }, /* the inspection table's actual value */ { "value", 3 },
        };

        for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
                if (strcmp(cols[i].col, col) == 0)
                        return cols[i].decimals;
        return -1;
}

/* A number of the JSON (unrounded), rounded as the report prints it (rates 4
 * decimals, others their column's): compared to the printed value, or NONE
 * for null. */
static void check_num(int line, const cJSON *row, const char *col, double want)
{
        const cJSON *c = cell(line, row, col);
        int decimals = printed_decimals(col);
        double got;

        if (isnan(want)) {
                if (!cJSON_IsNull(c))
                        bbt_test__fail(__FILE__, line, "%s: expected null, got %s", col,
                                       cJSON_IsNumber(c) ? "a number" : "something else");
                return;
        }
        if (!cJSON_IsNumber(c))
                bbt_test__fail(__FILE__, line, "%s: expected %.10g, got %s", col, want,
                               cJSON_IsNull(c) ? "null" : "a non-number");
        got = decimals < 0 ? c->valuedouble : bbt_cell_round(c->valuedouble, decimals);
        if (fabs(got - want) > 1e-9)
                bbt_test__fail(__FILE__, line, "%s: expected %.10g, got %.10g (%.17g)", col, want, got,
                               c->valuedouble);
}

static void check_str(int line, const cJSON *row, const char *col, const char *want)
{
        const cJSON *c = cell(line, row, col);

        if (!cJSON_IsString(c) || strcmp(c->valuestring, want) != 0)
                bbt_test__fail(__FILE__, line, "%s: expected \"%s\", got \"%s\"", col, want,
                               cJSON_IsString(c) ? c->valuestring : "(not a string)");
}

/* A code column: COL holds CODE and COL_label LABEL (both null for NULL). */
static void check_code(int line, const cJSON *row, const char *col, const char *code, const char *label)
{
        char label_col[96];

        snprintf(label_col, sizeof(label_col), "%s_label", col);
        if (!code) {
                if (!cJSON_IsNull(cell(line, row, col)) || !cJSON_IsNull(cell(line, row, label_col)))
                        bbt_test__fail(__FILE__, line, "%s: expected null and a null label", col);
                return;
        }
        check_str(line, row, col, code);
        check_str(line, row, label_col, label);
}

static void check_bool(int line, const cJSON *row, const char *col, bool want)
{
        const cJSON *c = cell(line, row, col);

        if (!cJSON_IsBool(c) || cJSON_IsTrue(c) != want)
                bbt_test__fail(__FILE__, line, "%s: expected %s", col, want ? "true" : "false");
}

static void check_null(int line, const cJSON *row, const char *col)
{
        if (!cJSON_IsNull(cell(line, row, col)))
                bbt_test__fail(__FILE__, line, "%s: expected null", col);
}

#define NUM(row, col, want) check_num(__LINE__, row, col, want)
#define STR(row, col, want) check_str(__LINE__, row, col, want)
#define CODE(row, col, code, label) check_code(__LINE__, row, col, code, label)
#define BOOL(row, col, want) check_bool(__LINE__, row, col, want)
#define NUL(row, col) check_null(__LINE__, row, col)

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

/* Setting KEY of DOC: {"value": WANT (a string; NULL: null), "unit": null}. */
static void check_setting_str(int line, const cJSON *doc, const char *key, const char *want)
{
        const cJSON *s = cell(line, cJSON_GetObjectItemCaseSensitive(doc, "settings"), key);

        if (!cJSON_IsObject(s) || !cJSON_IsNull(cell(line, s, "unit")) || !cJSON_IsString(cell(line, s, "label")))
                bbt_test__fail(__FILE__, line, "setting %s: not {value, unit: null, label}", key);
        if (!want) {
                if (!cJSON_IsNull(cell(line, s, "value")))
                        bbt_test__fail(__FILE__, line, "setting %s: expected null", key);
                return;
        }
        check_str(line, s, "value", want);
}

/* Setting KEY of DOC: {"value": WANT (a number), "unit": UNIT}. */
static void check_setting_num(int line, const cJSON *doc, const char *key, double want, const char *unit)
{
        const cJSON *s = cell(line, cJSON_GetObjectItemCaseSensitive(doc, "settings"), key);

        if (!cJSON_IsObject(s))
                bbt_test__fail(__FILE__, line, "setting %s: not an object", key);
        check_num(line, s, "value", want);
        check_str(line, s, "unit", unit);
}

#define SETTING_STR(doc, key, want) check_setting_str(__LINE__, doc, key, want)
#define SETTING_NUM(doc, key, want, unit) check_setting_num(__LINE__, doc, key, want, unit)

static void check_settings(const cJSON *doc, const char *from, const char *to, const char *county,
                           int used_day_min)
{
        ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "settings")));
        SETTING_STR(doc, "from", from);
        SETTING_STR(doc, "to", to);
        SETTING_STR(doc, "county", county);
        SETTING_NUM(doc, "used_day_min", used_day_min, "min");
        SETTING_NUM(doc, "used_period_min", 10, "min");
        SETTING_NUM(doc, "school_hours_margin", 30, "min");
        SETTING_NUM(doc, "heartbeat_interval", 60, "s");
        SETTING_NUM(doc, "idle_window", 10, "school_days");
        SETTING_NUM(doc, "idle_max_days", 0, "school_days");
        SETTING_NUM(doc, "silent_days", 3, "school_days");
        SETTING_NUM(doc, "min_pupils", 50, "pupils");
        SETTING_STR(doc, "utc_offset", "+08:00");
        SETTING_NUM(doc, "clock_skew_limit", 300, "s");
        SETTING_STR(doc, "store", "test.db");
        SETTING_STR(doc, "generated", "2026-09-14T08:00:00+08:00");
        ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(doc, "settings"), "version"), "value")));
}

/* ---- the cases ---- */

TEST(summary)
{
        const cJSON *doc, *r;

        build();
        doc = run("summary", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "title")->valuestring, "班班通使用情况汇总");
        r = object(doc, "overall");
        CODE(r, "scope", "county", "510107");
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

        /* 城区 = A, 镇区 = C, 乡村 = B, and the gap (highest − lowest of the defined), an object:
         *   power  0.8 − 0 = 0.8         usage  0.6 − 0 = 0.6
         *   hours  0.53333 − 0 → 0.53    period 0.175 − 0 = 0.175
         *   inter  0.53333 − 0.37500002 = 0.158333 → 0.1583 (乡村 undefined, left out)
         *   online 1 − 0.88889 = 0.1111  intact 1 − 0.5 = 0.5   weekly 3.5 − 0 = 3.5 */
        ASSERT_EQ(rows(doc, "areas"), 3);
        r = row_at(doc, "areas", 0);
        CODE(r, "area", "urban", "城区");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 2);
        RATES_A(r);
        r = row_at(doc, "areas", 1);
        CODE(r, "area", "town", "镇区");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 1);
        RATES_C(r);
        r = row_at(doc, "areas", 2);
        CODE(r, "area", "rural", "乡村");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 2);
        RATES_B(r);
        r = object(doc, "area_gap");
        ASSERT_EQ(cJSON_GetArraySize(r), 9); /* the nine rates alone */
        RATES(r, 0.8, 0.6, 0.53, 0.175, 0.1583, 0.1111, 0.5, 3.5);
        /* Unrounded: 0.53333 − 0 is 19 199 999 / 3 600 000 / 10 to the last bit. */
        ASSERT(cJSON_GetObjectItemCaseSensitive(r, "avg_daily_hours")->valuedouble == 19199999.0 / 3600000.0 / 10);
        ASSERT(cJSON_GetObjectItemCaseSensitive(object(doc, "overall"), "avg_daily_hours")->valuedouble ==
               25199999.0 / 3600000.0 / 25);
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 10);
        SETTING_STR(doc, "school", NULL); /* no filter: null in JSON */
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
        r = object(doc, "overall");
        CODE(r, "scope", "all", "全部");
        NUM(r, "schools", 4);
        NUM(r, "terminals", 6);
        RATES(r, 0.3667, 0.2667, 0.23, 0.0667, 0.4127, 0.9713, 0.5, 1.5);
        /* D1 was used on Tue 09-01, inside its 10-school-day window (from Mon 08-31): not idle. */
        NUM(r, "idle", 3);
        NUM(r, "faulty", 3);
        ASSERT_EQ(rows(doc, "townships"), 3);
        r = row_at(doc, "townships", 2);
        NUL(r, "township"); /* not registered */
        NUM(r, "schools", 1);
        NUM(r, "terminals", 1);
        /* D alone: 5 days, 40 periods, nothing: 0, 0, 0, 0, null, null, intact 0, 0. */
        RATES(r, 0, 0, 0, 0, NONE, NONE, 0, 0);
        /* 城区 now A + D: 15 terminal-days; powered 8 → 0.5333; used 5 →
         * 0.3333; hours 19 199 999 / 3 600 000 / 15 = 0.3556 → 0.36; periods
         * 7/80 = 0.0875; interactive 0.375; online 0.9907; intact 1/3 =
         * 0.3333; weekly 7 / 3 = 2.333 → 2.3. */
        r = row_where(doc, "areas", "area", "urban");
        NUM(r, "schools", 2);
        NUM(r, "terminals", 3);
        RATES(r, 0.5333, 0.3333, 0.36, 0.0875, 0.375, 0.9907, 0.3333, 2.3);
        check_settings(doc, "2026-09-07", "2026-09-13", NULL, 10);

        /* The other county alone. */
        doc = run("summary", "510108", NULL, MON, SUN, true, NULL);
        r = object(doc, "overall");
        CODE(r, "scope", "county", "510108");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 1);
        RATES(r, 0, 0, 0, 0, NONE, NONE, 0, 0);
        /* A county with nothing: no terminals, every rate undefined, intact too. */
        doc = run("summary", "510199", NULL, MON, SUN, true, NULL);
        r = object(doc, "overall");
        NUM(r, "schools", 0);
        NUM(r, "terminals", 0);
        RATES(r, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE);
        ASSERT_EQ(rows(doc, "townships"), 0);
        ASSERT_EQ(rows(doc, "areas"), 0);
        RATES(object(doc, "area_gap"), NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE);
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
        CODE(r, "type", "primary", "小学");
        CODE(r, "area", "urban", "城区");
        NUM(r, "students", 600);
        NUM(r, "terminals", 2);
        RATES_A(r);
        NUM(r, "idle", 1); /* A2 */
        r = row_at(doc, "schools", 1);
        STR(r, "school_code", "5101070002");
        CODE(r, "type", "junior", "初中");
        CODE(r, "area", "rural", "乡村");
        NUM(r, "students", 200);
        NUM(r, "terminals", 2);
        RATES_B(r);
        NUM(r, "idle", 2); /* B1, B2 */
        r = row_at(doc, "schools", 2);
        STR(r, "school_code", "5101070003");
        STR(r, "school_name", "石板镇九年一贯制学校");
        CODE(r, "type", "nine_year", "九年一贯制");
        CODE(r, "area", "town", "镇区");
        NUM(r, "students", 340);
        NUM(r, "terminals", 1);
        RATES_C(r);
        NUM(r, "idle", 0);
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 10);
}

TEST(school_filter)
{
        const cJSON *doc, *r;

        build();
        doc = run("summary", NULL, "5101070001", MON, SUN, true, NULL);
        r = object(doc, "overall");
        CODE(r, "scope", "school", "5101070001");
        NUM(r, "schools", 1);
        NUM(r, "terminals", 2);
        RATES_A(r);
        NUM(r, "idle", 1);
        NUM(r, "faulty", 1);
        ASSERT_EQ(rows(doc, "areas"), 1); /* 城区; the gap is 0 for one area */
        RATES(object(doc, "area_gap"), 0, 0, 0, 0, 0, 0, 0, 0);
        SETTING_STR(doc, "school", "5101070001");

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
        NUL(r, "online"); /* a past range: what is current is not shown */
        STR(r, "last_seen", "2026-09-13T10:00:00+08:00");
        RATES_A1(r);
        NUM(r, "open_faults", 0);
        NUM(r, "version", NONE);
        r = row_at(doc, "terminals", 1);
        STR(r, "terminal", "A2");
        NUL(r, "online");
        STR(r, "last_seen", "2026-09-11T08:01:00+08:00");
        RATES_A2(r);
        NUM(r, "open_faults", 2); /* periph_missing, disk_low */
        r = row_at(doc, "terminals", 2);
        STR(r, "terminal", "B1");
        STR(r, "last_seen", "2026-09-13T10:00:00+08:00");
        RATES_B1(r);
        NUM(r, "open_faults", 0);
        r = row_at(doc, "terminals", 3);
        STR(r, "school_code", "5101070002");
        STR(r, "terminal", "B2");
        STR(r, "room", "七年级(2)班");
        NUL(r, "online");
        NUL(r, "last_seen"); /* never */
        RATES_B2(r);
        NUM(r, "open_faults", 1); /* silent */
        NUL(r, "version");
        r = row_at(doc, "terminals", 4);
        STR(r, "terminal", "C1");
        STR(r, "last_seen", "2026-09-10T16:05:00+08:00");
        RATES_C1(r);
        NUM(r, "open_faults", 0); /* the overheat was cleared */
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 10);

        /* A range up to today (now is Mon 09-14 08:00): online and the agent
         * version, which are kept as current values only, are shown. */
        doc = run("terminals", "510107", NULL, MON, MON + 7, true, NULL);
        r = row_at(doc, "terminals", 0);
        BOOL(r, "online", true);
        STR(r, "version", "2.1.0");
        BOOL(row_at(doc, "terminals", 1), "online", false); /* A2 shut down cleanly on Fri 08:01 */
        BOOL(row_at(doc, "terminals", 2), "online", true);
        BOOL(row_at(doc, "terminals", 3), "online", false);
        NUL(row_at(doc, "terminals", 3), "version");
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
        STR(r, "last_active", "2026-09-08T09:09:59.999+08:00"); /* the 599 999 ms interval's end, to the ms */
        STR(r, "last_seen", "2026-09-11T08:01:00+08:00");
        CODE(r, "reason", "not_used", "开机未使用");
        r = row_at(doc, "idle", 1);
        STR(r, "terminal", "B1");
        NUM(r, "used_days", 0);
        STR(r, "last_active", "2026-09-10T13:00:00+08:00"); /* active, but after school hours */
        STR(r, "last_seen", "2026-09-13T10:00:00+08:00");
        CODE(r, "reason", "not_powered", "未开机");
        r = row_at(doc, "idle", 2);
        STR(r, "terminal", "B2");
        NUM(r, "used_days", 0);
        NUL(r, "last_active"); /* never: null, not a word */
        NUL(r, "last_seen");
        CODE(r, "reason", "never_reported", "从未上报");
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 10);

        /* All counties: D1's window is Mon 08-31 .. Fri 09-11 (its weekdays);
         * used on Tue 09-01, so not idle. */
        doc = run("idle", NULL, NULL, MON, SUN, false, NULL);
        ASSERT_EQ(rows(doc, "idle"), 3);
        CODE(row_at(doc, "idle", 0), "reason", "not_used", "powered but not used");
        CODE(row_at(doc, "idle", 1), "reason", "not_powered", "never powered on");
        CODE(row_at(doc, "idle", 2), "reason", "never_reported", "never reported");
        NUL(row_at(doc, "idle", 2), "last_seen");

        /* A window of 5 school days: 510107's is Mon 09-07 .. Sat 09-12, D's
         * Mon 09-07 .. Fri 09-11. D1 was last seen Tue 09-01, before it: offline. */
        bbt_metric_settings_default(&s);
        s.idle_window = 5;
        doc = run("idle", NULL, NULL, MON, SUN, true, &s);
        ASSERT_EQ(rows(doc, "idle"), 4);
        r = row_where(doc, "idle", "terminal", "D1");
        STR(r, "school_code", "5101080001");
        NUM(r, "used_days", 0);
        STR(r, "last_active", "2026-09-01T08:40:00+08:00");
        STR(r, "last_seen", "2026-09-01T08:40:00+08:00");
        CODE(r, "reason", "offline", "离线");
        CODE(row_where(doc, "idle", "terminal", "A2"), "reason", "not_used", "开机未使用");
        SETTING_NUM(doc, "idle_window", 5, "school_days");

        /* Idle when used on at most 3 days: C1 (used Mon, Tue, Thu) joins A2, B1, B2; A1 (5) does not. */
        bbt_metric_settings_default(&s);
        s.idle_max_days = 3;
        doc = run("idle", "510107", NULL, MON, SUN, true, &s);
        ASSERT_EQ(rows(doc, "idle"), 4);
        r = row_where(doc, "idle", "terminal", "C1");
        NUM(r, "used_days", 3);
        CODE(r, "reason", "not_used", "开机未使用");
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
        CODE(r, "fault", "silent", "长期未上报");
        CODE(r, "severity", "error", "错误");
        CODE(r, "source", "aggregator", "平台");
        NUL(r, "since"); /* never seen */
        NUL(r, "cleared");
        STR(r, "detail", "超过 3 个上课日未收到任何数据");
        r = row_at(doc, "faults", 1);
        STR(r, "terminal", "A2");
        STR(r, "room", "一年级(2)班");
        CODE(r, "fault", "periph_missing", "外设缺失");
        CODE(r, "severity", "warning", "警告");
        CODE(r, "source", "aggregator", "平台");
        STR(r, "since", "2026-09-07T07:45:00+08:00");
        NUL(r, "cleared");
        STR(r, "detail", "expected but absent: camera");
        r = row_at(doc, "faults", 2);
        STR(r, "terminal", "A2");
        CODE(r, "fault", "disk_low", "磁盘空间不足");
        CODE(r, "severity", "warning", "警告");
        CODE(r, "source", "agent", "终端");
        STR(r, "since", "2026-09-10T08:30:00+08:00");
        NUL(r, "cleared");
        STR(r, "detail", "root 95% full");
        r = row_at(doc, "faults", 3);
        STR(r, "terminal", "C1");
        CODE(r, "fault", "overheat", "温度过高");
        STR(r, "since", "2026-09-07T14:10:00+08:00");
        STR(r, "cleared", "2026-09-07T14:30:00+08:00");
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 10);

        /* Up to Mon 09-07: the overheat (raised 14:10, cleared 14:30) with its
         * cleared time; disk_low not raised yet. */
        doc = run("faults", "510107", NULL, MON, MON, true, NULL);
        ASSERT_EQ(rows(doc, "faults"), 3);
        STR(row_at(doc, "faults", 0), "fault", "silent");
        STR(row_at(doc, "faults", 1), "fault", "periph_missing");
        STR(row_at(doc, "faults", 2), "fault", "overheat");
        STR(row_at(doc, "faults", 2), "cleared", "2026-09-07T14:30:00+08:00");
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
        CODE(r, "fault", "silent", "silent");
        CODE(r, "source", "aggregator", "aggregator");
        STR(r, "since", "2026-09-08T00:00:00+08:00");
        NUL(r, "cleared");
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
        CODE(r, "indicator", "terminals_per_100", "每百名学生拥有网络多媒体教室数");
        NUM(r, "schools", 2);
        NUM(r, "left_out", 0);
        NUM(r, "mean", 0.320);
        NUM(r, "sd", 0.018);
        NUM(r, "cv", 0.058);
        NUM(r, "quality_max", 0.50);
        NUM(r, "basic_max", 0.65);
        CODE(r, "result", "quality", "达到优质均衡");
        r = row_at(doc, "primary", 1);
        CODE(r, "indicator", "avg_daily_hours", "日均使用时长");
        NUM(r, "mean", 0.467);
        NUM(r, "sd", 0.094);
        NUM(r, "cv", 0.202);
        r = row_at(doc, "primary", 2);
        CODE(r, "indicator", "usage_rate", "使用率");
        NUM(r, "mean", 0.533);
        NUM(r, "sd", 0.047);
        NUM(r, "cv", 0.088);
        r = row_at(doc, "primary", 3);
        CODE(r, "indicator", "period_usage_rate", "堂堂用率");
        NUM(r, "mean", 0.161);
        NUM(r, "sd", 0.020);
        NUM(r, "cv", 0.122);
        CODE(r, "result", "quality", "达到优质均衡");

        ASSERT_EQ(rows(doc, "junior"), 4);
        r = row_at(doc, "junior", 0);
        NUM(r, "schools", 1);
        NUM(r, "left_out", 1);
        NUM(r, "mean", 1);
        NUM(r, "sd", 0);
        NUM(r, "cv", 0);
        NUM(r, "quality_max", 0.45);
        NUM(r, "basic_max", 0.55);
        CODE(r, "result", "quality", "达到优质均衡");
        for (int i = 1; i < 4; i++) {
                r = row_at(doc, "junior", i);
                NUM(r, "schools", 1);
                NUM(r, "left_out", 1);
                NUM(r, "mean", 0);
                NUM(r, "sd", 0);
                NUM(r, "cv", NONE);
                CODE(r, "result", "undefined", "无法计算");
        }

        /* Values: A primary, B junior, C primary, C junior. */
        ASSERT_EQ(rows(doc, "values"), 4);
        r = row_at(doc, "values", 0);
        STR(r, "school_code", "5101070001");
        CODE(r, "section", "primary", "小学");
        NUM(r, "pupils", 600);
        NUM(r, "terminals_per_100", 0.33);
        NUM(r, "avg_daily_hours", 0.53);
        NUM(r, "usage_rate", 0.5);
        NUM(r, "period_usage_rate", 0.175);
        r = row_at(doc, "values", 1);
        STR(r, "school_code", "5101070002");
        CODE(r, "section", "junior", "初中");
        NUM(r, "pupils", 200);
        NUM(r, "terminals_per_100", 1);
        NUM(r, "avg_daily_hours", 0);
        NUM(r, "usage_rate", 0);
        NUM(r, "period_usage_rate", 0);
        r = row_at(doc, "values", 2);
        STR(r, "school_code", "5101070003");
        CODE(r, "section", "primary", "小学");
        NUM(r, "pupils", 300);
        NUM(r, "terminals_per_100", 0.29);
        NUM(r, "avg_daily_hours", 0.33);
        NUM(r, "usage_rate", 0.6);
        NUM(r, "period_usage_rate", 0.1333);
        r = row_at(doc, "values", 3);
        CODE(r, "section", "junior", "初中");
        NUM(r, "pupils", 40);
        NUM(r, "terminals_per_100", 0.29);
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 10);

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
        CODE(r, "result", "quality", "达到优质均衡");
        r = row_at(doc, "junior", 1);
        NUM(r, "mean", 0.056);
        NUM(r, "sd", 0.124);
        NUM(r, "cv", 2.236);
        CODE(r, "result", "not_balanced", "未达标");
        r = row_at(doc, "junior", 2);
        NUM(r, "mean", 0.1);
        NUM(r, "sd", 0.224);
        NUM(r, "cv", 2.236);
        SETTING_NUM(doc, "min_pupils", 30, "pupils");
}

/* The balance report's inspection layout (优质均衡督导评估表). */
TEST(balance_inspection)
{
        /* The same schools, codes and terminals with other pupil numbers, so
         * that some schools meet the standard: A 80 pupils, B 200, C 42 =
         * 30 primary + 12 junior. */
        static const char small_csv[] =
                "县区代码,县区,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数,教室数,小学部学生数,初中部学生数\r\n"
                "510107,武侯区,城关街道,5101070001,城关小学,小学,城区,80,12,,\r\n"
                "510107,武侯区,石板镇,5101070002,石板初级中学,初中,乡村,200,6,,\r\n"
                "510107,武侯区,石板镇,5101070003,石板镇九年一贯制学校,九年一贯制,镇区,42,9,30,12\r\n"
                "510108,成华区,,5101080001,金牛小学,小学,城区,120,4,,\r\n";
        static struct bbt_import_errors errs;
        struct bbt_registry *small = NULL, *reg;
        struct bbt_metric_settings s;
        const cJSON *doc, *r;

        build();
        /* The scenario's registry: multimedia classrooms (terminals) per 100
         * pupils A 2/600 × 100 = 0.333, B 2/200 × 100 = 1, C 1/340 × 100 =
         * 0.294 (both sections): no school meets 2.3 / 2.4. Then the CV rows,
         * as in the balance case: primary 0.058, 0.202, 0.088, 0.122 (all
         * ≤ 0.50); junior 0 (≤ 0.45), then undefined thrice. */
        doc = run("balance", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "inspection"), 4 + 8);
        r = row_at(doc, "inspection", 0);
        NUM(r, "no", 1);
        STR(r, "school", "城关小学");
        CODE(r, "indicator", "terminals_per_100", "每百名学生拥有网络多媒体教室数");
        STR(r, "standard", "≥2.3");
        NUM(r, "value", 0.333);
        BOOL(r, "met", false);
        r = row_at(doc, "inspection", 1);
        STR(r, "school", "石板初级中学");
        STR(r, "standard", "≥2.4");
        NUM(r, "value", 1);
        BOOL(r, "met", false);
        r = row_at(doc, "inspection", 2);
        STR(r, "school", "石板镇九年一贯制学校（小学部）");
        NUM(r, "value", 0.294);
        r = row_at(doc, "inspection", 3);
        STR(r, "school", "石板镇九年一贯制学校（初中部）");
        STR(r, "standard", "≥2.4");
        NUM(r, "value", 0.294);
        BOOL(r, "met", false);
        r = row_at(doc, "inspection", 4);
        NUM(r, "no", 5);
        STR(r, "school", "校际（小学）");
        CODE(r, "indicator", "cv_terminals_per_100", "差异系数：每百名学生拥有网络多媒体教室数");
        STR(r, "standard", "≤0.50");
        NUM(r, "value", 0.058);
        BOOL(r, "met", true);
        NUM(row_at(doc, "inspection", 5), "value", 0.202);
        r = row_at(doc, "inspection", 8);
        STR(r, "school", "校际（初中）");
        STR(r, "standard", "≤0.45");
        NUM(r, "value", 0);
        BOOL(r, "met", true);
        r = row_at(doc, "inspection", 9);
        CODE(r, "indicator", "cv_avg_daily_hours", "差异系数：日均使用时长");
        NUM(r, "value", NONE);
        NUL(r, "met");
        ASSERT_EQ(rows(doc, "inspection_counts"), 2);
        r = row_at(doc, "inspection_counts", 0);
        CODE(r, "section", "primary", "小学");
        STR(r, "standard", "≥2.3");
        NUM(r, "schools", 2);
        NUM(r, "met", 0);
        NUM(r, "met_rate", 0);
        r = row_at(doc, "inspection_counts", 1);
        CODE(r, "section", "junior", "初中");
        NUM(r, "schools", 2);
        NUM(r, "met", 0);

        /* The smaller schools, and min_pupils 10 so that C's sections count
         * in the CVs.
         *   A 2/80 × 100 = 2.5 ≥ 2.3: 是.   B 2/200 × 100 = 1 < 2.4: 否.
         *   C 1/42 × 100 = 2.380952: primary ≥ 2.3 是, junior < 2.4 否 (the
         *   whole school's ratio, judged on each section).
         * Counts: primary 2 of 2 (rate 1), junior 0 of 2.
         * Primary CVs, A (80 pupils) and C (30), weights 8/11 and 3/11, for
         * two schools S = |X_A − X_C| × sqrt(8 × 3)/11 = |X_A − X_C| × 0.445362:
         *   per 100: X̄ = (8 × 2.5 + 3 × 2.380952)/11 = 2.467532; S = 0.119048 ×
         *      0.445362 = 0.053019; CV = 0.021487 → 0.021 (是)
         *   hours: A 0.533333, C 0.333333: X̄ = (8 × 0.533333 + 3 × 0.333333)/11
         *      = 0.478788; S = 0.2 × 0.445362 = 0.089072; CV = 0.186036 → 0.186
         *   usage: A 0.5, C 0.6: X̄ = 5.8/11 = 0.527273; S = 0.044536; CV =
         *      0.084465 → 0.084
         *   period: A 0.175, C 0.133333: X̄ = 1.8/11 = 0.163636; S = 0.041667 ×
         *      0.445362 = 0.018557; CV = 0.113402 → 0.113
         * Junior CVs, B (200) and C (12), weights 200/212 and 12/212:
         *   per 100: X̄ = (200 × 1 + 12 × 2.380952)/212 = 1.078167; S =
         *      1.380952 × sqrt(200 × 12)/212 = 1.380952 × 0.231084 = 0.319116;
         *      CV = 0.295980 → 0.296 (≤ 0.45: 是)
         *   hours, usage, period: B's are 0, so X̄ = X_C × 12/212, S = X_C ×
         *      sqrt(200 × 12)/212 and CV = sqrt(200/12) = 4.082483 → 4.082 (否). */
        ASSERT_OK(bbt_registry_new(&small));
        load_ok(bbt_registry_load_schools(small, write_file("schools-small.csv", small_csv), &errs), &errs,
                "schools");
        load_ok(bbt_registry_load_terminals(small, write_file("terminals-small.csv", terminals_csv), &errs), &errs,
                "terminals");
        bbt_metric_settings_default(&s);
        s.min_pupils = 10;
        reg = W.reg;
        W.reg = small;
        doc = run("balance", "510107", NULL, MON, SUN, true, &s);
        W.reg = reg;
        bbt_registry_free(small);
        r = row_at(doc, "inspection", 0);
        NUM(r, "value", 2.5);
        BOOL(r, "met", true);
        r = row_at(doc, "inspection", 1);
        NUM(r, "value", 1);
        BOOL(r, "met", false);
        r = row_at(doc, "inspection", 2);
        STR(r, "standard", "≥2.3");
        NUM(r, "value", 2.381);
        BOOL(r, "met", true);
        r = row_at(doc, "inspection", 3);
        STR(r, "standard", "≥2.4");
        NUM(r, "value", 2.381);
        BOOL(r, "met", false);
        r = row_at(doc, "inspection", 4);
        NUM(r, "value", 0.021);
        BOOL(r, "met", true);
        NUM(row_at(doc, "inspection", 5), "value", 0.186);
        NUM(row_at(doc, "inspection", 6), "value", 0.084);
        NUM(row_at(doc, "inspection", 7), "value", 0.113);
        r = row_at(doc, "inspection", 8);
        NUM(r, "value", 0.296);
        BOOL(r, "met", true);
        for (int i = 9; i < 12; i++) {
                r = row_at(doc, "inspection", i);
                NUM(r, "value", 4.082);
                BOOL(r, "met", false);
        }
        r = row_at(doc, "inspection_counts", 0);
        NUM(r, "schools", 2);
        NUM(r, "met", 2);
        NUM(r, "met_rate", 1);
        r = row_at(doc, "inspection_counts", 1);
        NUM(r, "schools", 2);
        NUM(r, "met", 0);
        NUM(r, "met_rate", 0);
        /* The CV table says the same. */
        NUM(row_at(doc, "primary", 0), "cv", 0.021);
        NUM(row_at(doc, "junior", 0), "cv", 0.296);
        NUM(row_at(doc, "junior", 1), "cv", 4.082);
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
        CODE(r, "kind", "camera", "摄像头");
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
        CODE(r, "missing", "camera", "摄像头");
        r = row_at(doc, "missing", 1);
        STR(r, "terminal", "B2");
        CODE(r, "missing", "camera", "摄像头");
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 10);
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
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 10);
}

/* Lost, skipped and conflicting seqs are shown apart, each with its reason. */
/* After build(): B1's gap 104..105 settled by the agent's reply (104 lost
 * from its spool, 105 never used), and C1's seq 5 used a second time. */
static void feed_skip_and_conflict(void)
{
        struct feeder b1 = { "510107", "5101070002", "B1", 0 }, c1 = { "510107", "5101070003", "C1", 0 };
        struct bbt_msg m;
        cJSON *result;

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
}

TEST(loss_skipped_and_conflicts)
{
        const cJSON *doc, *r;

        build();
        feed_skip_and_conflict();
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
        CODE(r, "kind", "lost", "丢失");
        CODE(r, "reason", "spool_damaged", "终端缓存损坏或断电时未写入磁盘");
        r = row_where(doc, "ranges", "kind", "skipped");
        NUM(r, "from_seq", 105);
        CODE(r, "kind", "skipped", "跳过（未使用）");
        CODE(r, "reason", "unclean_skipped", "未使用（终端异常停止后跳过的序号）");
        ASSERT_EQ(rows(doc, "conflicts"), 1);
        r = row_at(doc, "conflicts", 0);
        STR(r, "terminal", "C1");
        NUM(r, "seq", 5);
        CODE(r, "channel", "hb", "心跳");
        NUM(row_where(doc, "counters", "counter", "seq_conflict"), "value", 1);
        NUM(row_where(doc, "counters", "counter", "skipped"), "value", 1);
        NUM(row_where(doc, "counters", "counter", "lost"), "value", 1);
        /* In English, the reasons as recorded; the codes do not change. */
        doc = run("loss", "510107", NULL, MON, SUN, false, NULL);
        CODE(row_where(doc, "ranges", "kind", "skipped"), "reason", "unclean_skipped",
             "never used (skipped after an unclean stop)");
}

/* A range without a school day: the holiday alone, and the Sunday alone. */
TEST(no_school_days)
{
        const cJSON *doc, *r;
        int32_t days[2] = { WED, SUN };

        build();
        for (int i = 0; i < 2; i++) {
                doc = run("summary", "510107", NULL, days[i], days[i], true, NULL);
                r = object(doc, "overall");
                NUM(r, "terminals", 5);
                /* Every rate over days is undefined, not 0; 设备完好率 counts
                 * terminals: A1, B1, C1 intact, A2 (periph_missing since Mon)
                 * and B2 (silent) not: 3/5. */
                RATES(r, NONE, NONE, NONE, NONE, NONE, NONE, 0.6, NONE);
                NUM(r, "weekly_rule_rate", NONE); /* no week with a school day */
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
                CODE(r, "result", "undefined", "无法计算");
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
        check_settings(doc, "2026-09-07", "2026-09-13", "510107", 11);
}

TEST(every_report_has_settings)
{
        const struct bbt_report_kind *kind;

        build();
        for (size_t k = 0; (kind = bbt_report_kind_at(k)); k++) {
                const char *school = kind->needs & BBT_NEEDS_SCHOOL ? "5101070001" : NULL;
                const cJSON *doc = run(kind->name, "510107", school, MON, SUN, k % 2 == 0, NULL);
                const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "settings");

                ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "notes")));
                ASSERT(cJSON_IsObject(s));
                SETTING_STR(doc, "from", "2026-09-07");
                SETTING_STR(doc, "to", "2026-09-13");
                SETTING_NUM(doc, "used_day_min", 10, "min");
                SETTING_NUM(doc, "min_pupils", 50, "pupils");
                SETTING_STR(doc, "utc_offset", "+08:00");
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
                                  "互动使用占比,在线率,设备完好率,周均使用节数,周节数达标率,闲置终端,故障终端\r\n");
        /* The overall row, as in the JSON: rates to 4 decimals, hours 2, weekly 1. */
        ASSERT_STR_CONTAINS(text, "510107,3,5,0.4400,0.3200,0.28,0.0947,0.4127,0.9713,0.6000,1.8,0.0000,3,2\r\n");
        ASSERT_STR_CONTAINS(text, "乡镇/街道,学校数,终端数,开机率");
        /* 乡村: interactive share undefined, an empty cell. */
        ASSERT_STR_CONTAINS(text, "乡村,1,2,0.0000,0.0000,0.00,0.0000,,0.8889,0.5000,0.0,0.0000\r\n");
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
        CODE(row_at(doc, "areas", 0), "area", "urban", "urban");
        CODE(row_at(doc, "areas", 1), "area", "town", "town");
        CODE(row_at(doc, "areas", 2), "area", "rural", "rural");
        ASSERT_EQ(rows(doc, "areas"), 3);
        RATES_COUNTY(object(doc, "overall"));
        doc = run("schools", "510107", NULL, MON, SUN, false, NULL);
        r = row_at(doc, "schools", 2);
        CODE(r, "type", "nine_year", "nine_year");
        CODE(r, "area", "town", "town");

        text = run_text("summary", "510107", NULL, MON, SUN, "csv", false, NULL);
        ASSERT(memcmp(text, "\xef\xbb\xbf", 3) == 0);
        ASSERT_STR_CONTAINS(text, "Scope,Schools,Terminals,Power-on rate,Usage rate,Avg daily hours,Per-lesson use,"
                                  "Interactive share,Online rate,Intact rate,Weekly lessons,Weekly rule met,Idle,"
                                  "Faulty\r\n");
        ASSERT_STR_CONTAINS(text, "setting,value\r\n");
        ASSERT_STR_CONTAINS(text, "From,2026-09-07\r\n");
        ASSERT(strstr(text, "开机率") == NULL);
}

/* An agent misconfigured with the neighbouring county's code publishes as
 * 510108/5101070001/A1: a different terminal (the topic's county is part of
 * its identity), not registered. The registered A1 of 510107 keeps its own
 * figures, and 510107's report does not grow a second A1. */
/* After build(): an agent of 510107's school 5101070001 misconfigured with
 * the county 510108, used on Tue. */
static void feed_other_county_a1(void)
{
        struct feeder x = { "510108", "5101070001", "A1", 0 };

        birth(&x, at(TUE, 7, 0));
        interval(&x, at(TUE, 8, 0), at(TUE, 8, 40), BBT_USAGE_ACTIVE, 0, 40);
        ASSERT_OK(bbt_ingest_flush(W.in));
}

/* Two commands bbt-ctl recorded: a wake through a neighbour that was answered,
 * and a set that was not (the audit table, store schema 7). */
static void feed_audit(void)
{
        struct bbt_store_audit a = { .cmd_id = "ctl-watch-1-1", .operator_name = "watch", .county = "510107",
                                     .school = "5101070001", .terminal = "A1", .via = "A2", .op = "wake",
                                     .args = "{\"mac\":\"00:1a:2b:3c:4d:5e\"}", .result = "ok",
                                     .detail = "{\"sent_by\":\"bbt/v1/510107/5101070001/A2/\"}" };

        a.sent_ms = at(TUE, 7, 0), a.done_ms = at(TUE, 7, 0) + 300;
        ASSERT_OK(bbt_store_audit_put(W.store, &a));
        a = (struct bbt_store_audit){ .cmd_id = "ctl-watch-1-2", .operator_name = "watch", .county = "510107",
                                      .school = "5101070001", .terminal = "A2", .op = "set",
                                      .args = "{\"idle_timeout\":\"5m\"}", .result = "timeout",
                                      .detail = "no reply in 10.0s" };
        a.sent_ms = at(WED, 18, 0), a.done_ms = at(WED, 18, 0) + 10000;
        ASSERT_OK(bbt_store_audit_put(W.store, &a));
}

/* bbt-report audit: every command in the range and scope, Chinese labels first. */
TEST(audit)
{
        const cJSON *doc, *r;

        build();
        feed_audit();
        doc = run("audit", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "commands"), 2);
        r = row_at(doc, "commands", 0);
        STR(r, "sent_at", "2026-09-08T07:00:00+08:00");
        STR(r, "terminal", "A1");
        STR(r, "via", "A2");
        STR(r, "command", "wake");
        STR(r, "command_label", "远程开机");
        STR(r, "result_label", "成功");
        STR(row_at(doc, "commands", 1), "result", "timeout");
        doc = run("audit", "510107", NULL, WED, WED, false, NULL);
        ASSERT_EQ(rows(doc, "commands"), 1);
        STR(row_at(doc, "commands", 0), "result_label", "timeout");
        doc = run("audit", "510108", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "commands"), 0);
}

TEST(same_codes_other_county)
{
        const cJSON *doc, *r;

        build();
        feed_other_county_a1();

        doc = run("terminals", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "terminals"), 5);
        r = row_at(doc, "terminals", 0);
        STR(r, "terminal", "A1");
        STR(r, "last_seen", "2026-09-13T10:00:00+08:00");
        RATES_A1(r);
        doc = run("summary", "510107", NULL, MON, SUN, true, NULL);
        RATES_COUNTY(object(doc, "overall"));
        doc = run("loss", "510107", NULL, MON, SUN, true, NULL);
        NUM(row_where(doc, "terminals", "terminal", "A1"), "received", 543);

        /* Under 510108 it shows as a terminal of a school code the county's
         * registry does not have: D's school days (Mon..Fri, 8 default
         * periods); used Tue, 40 min, period 1. */
        doc = run("terminals", "510108", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "terminals"), 2);
        r = row_where(doc, "terminals", "school_code", "5101070001");
        STR(r, "terminal", "A1");
        NUL(r, "room");
        STR(r, "last_seen", "2026-09-08T08:40:00+08:00");
        NUL(r, "school_name"); /* not in 510108's registry */
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
        NUL(r, "school_name");
        NUL(r, "type");
        NUL(r, "type_label");
        NUM(r, "students", NONE);
        NUM(r, "terminals", 1);
        doc = run("summary", "510108", NULL, MON, SUN, true, NULL);
        r = object(doc, "overall");
        NUM(r, "schools", 2);
        NUM(r, "terminals", 2);
        r = row_where(doc, "areas", "area", "urban");
        NUM(r, "schools", 1); /* D only */
        NUM(r, "terminals", 1);
        doc = run("balance", "510108", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "values"), 1);
        STR(row_at(doc, "values", 0), "school_code", "5101080001");
}

/* ---- the weekly rule (docs/metrics.md): lessons with use per terminal-week ---- */

/*
 * Mon..Sun 09-07..13, 5 school days for every 510107 terminal; lessons with
 * use (periods used) from the per-terminal figures above: A1 7, A2 0, B1 0,
 * B2 0, C1 2. With the default minimum 10 no terminal-week meets the rule.
 * With weekly_lessons_min 2: A1 and C1 meet it, the others do not:
 *   A 1/2 = 0.5, B 0/2 = 0, C 1/1 = 1, 石板镇 (B + C) 1/3 = 0.3333,
 *   county 510107 2/5 = 0.4; with 510108 (D1 unused in the week) 2/6 = 0.3333.
 * With 7, A1 (5 × 7 = 35 >= 7 × 5) still meets it exactly; C1 does not.
 */
TEST(weekly_rule)
{
        const cJSON *doc, *r;
        struct bbt_metric_settings s;

        build();
        doc = run("summary", "510107", NULL, MON, SUN, true, NULL);
        NUM(object(doc, "overall"), "weekly_rule_rate", 0);
        SETTING_NUM(doc, "weekly_lessons_min", 10, "lessons");

        bbt_metric_settings_default(&s);
        s.weekly_lessons_min = 2;
        doc = run("summary", "510107", NULL, MON, SUN, true, &s);
        SETTING_NUM(doc, "weekly_lessons_min", 2, "lessons");
        r = object(doc, "overall");
        NUM(r, "weekly_rule_rate", 0.4);
        RATES_COUNTY(r); /* the other figures do not move */
        NUM(r, "idle", 3);
        NUM(row_at(doc, "townships", 0), "weekly_rule_rate", 0.5);
        NUM(row_at(doc, "townships", 1), "weekly_rule_rate", 0.3333);
        NUM(row_where(doc, "areas", "area", "urban"), "weekly_rule_rate", 0.5);
        NUM(row_where(doc, "areas", "area", "town"), "weekly_rule_rate", 1);
        NUM(row_where(doc, "areas", "area", "rural"), "weekly_rule_rate", 0);
        NUM(object(doc, "area_gap"), "weekly_rule_rate", 1);
        doc = run("schools", "510107", NULL, MON, SUN, true, &s);
        NUM(row_at(doc, "schools", 0), "weekly_rule_rate", 0.5);
        NUM(row_at(doc, "schools", 1), "weekly_rule_rate", 0);
        NUM(row_at(doc, "schools", 2), "weekly_rule_rate", 1);
        doc = run("terminals", "510107", NULL, MON, SUN, true, &s);
        NUM(row_where(doc, "terminals", "terminal", "A1"), "weekly_rule_rate", 1);
        NUM(row_where(doc, "terminals", "terminal", "B2"), "weekly_rule_rate", 0);
        doc = run("summary", NULL, NULL, MON, SUN, true, &s);
        NUM(object(doc, "overall"), "weekly_rule_rate", 0.3333);

        /* Beside the idle list: below the rule, with the figures; the idle list itself is unchanged. */
        doc = run("idle", "510107", NULL, MON, SUN, true, &s);
        ASSERT_EQ(rows(doc, "idle"), 3);
        ASSERT_EQ(rows(doc, "below_weekly_rule"), 3);
        r = row_at(doc, "below_weekly_rule", 0);
        STR(r, "terminal", "A2");
        NUM(r, "weeks_judged", 1);
        NUM(r, "weeks_below", 1);
        NUM(r, "lessons_used", 0);
        NUM(r, "weekly_lessons", 0);
        STR(row_at(doc, "below_weekly_rule", 1), "terminal", "B1");
        STR(row_at(doc, "below_weekly_rule", 2), "terminal", "B2");
        s.weekly_lessons_min = 7;
        doc = run("idle", "510107", NULL, MON, SUN, true, &s);
        ASSERT_EQ(rows(doc, "below_weekly_rule"), 4);
        r = row_where(doc, "below_weekly_rule", "terminal", "C1");
        NUM(r, "weeks_judged", 1);
        NUM(r, "weeks_below", 1);
        NUM(r, "lessons_used", 2);
        NUM(r, "weekly_lessons", 2);
        doc = run("idle", "510107", NULL, MON, SUN, true, NULL);
        ASSERT_EQ(rows(doc, "below_weekly_rule"), 5);
        NUM(row_where(doc, "below_weekly_rule", "terminal", "A1"), "lessons_used", 7);
}

/*
 * A range that starts and ends mid-week: Tue 09-01 .. Tue 09-08, minimum 2.
 * 510107's term starts Mon 08-31. Week of 08-31: Tue..Fri in the range, 4
 * school days, needs ceil(2 × 4 / 5) = 2; week of 09-07: Mon, Tue, needs
 * ceil(2 × 2 / 5) = 1. Nothing was used in the first week (the scenario's
 * 510107 terminals start on 09-07). Second week: A1 Mon 2 + Tue 2 = 4 (met),
 * C1 Mon p3 + Tue p1 = 2 (met), A2, B1, B2 0.
 *   A 1/4 = 0.25, 石板镇 (B 0/4, C 1/2) 1/6 = 0.1667, county 2/10 = 0.2.
 * D1 (510108, every weekday): week of 08-31 Tue..Fri 4 days, used period 1
 * on Tue 09-01 (08:00-08:40): 1 lesson, 5 × 1 < 2 × 4: below; week of 09-07:
 * nothing: below. With minimum 1 the first week needs ceil(4/5) = 1: met.
 */
TEST(weekly_rule_partial_weeks)
{
        const cJSON *doc, *r;
        struct bbt_metric_settings s;

        build();
        bbt_metric_settings_default(&s);
        s.weekly_lessons_min = 2;
        doc = run("summary", "510107", NULL, SEP1, TUE, true, &s);
        NUM(object(doc, "overall"), "weekly_rule_rate", 0.2);
        NUM(row_at(doc, "townships", 0), "weekly_rule_rate", 0.25);
        NUM(row_at(doc, "townships", 1), "weekly_rule_rate", 0.1667);
        doc = run("idle", "510108", NULL, SEP1, TUE, true, &s);
        r = row_where(doc, "below_weekly_rule", "terminal", "D1");
        NUM(r, "weeks_judged", 2);
        NUM(r, "weeks_below", 2);
        NUM(r, "lessons_used", 1);
        s.weekly_lessons_min = 1;
        doc = run("idle", "510108", NULL, SEP1, TUE, true, &s);
        r = row_where(doc, "below_weekly_rule", "terminal", "D1");
        NUM(r, "weeks_below", 1);
        doc = run("terminals", "510108", NULL, SEP1, TUE, true, &s);
        NUM(row_at(doc, "terminals", 0), "weekly_rule_rate", 0.5);
}

/* ---- the usage record (班班通使用记录表) ---- */

/* One day row of a classroom's table: date, weekday, day type, lessons with
 * use, minutes, interactive minutes, then the periods' minutes (NONE: blank). */
static void record_day(int line, const cJSON *r, const char *date, const char *weekday, const char *type,
                       double lessons, double active, double inter, const double *periods, int n_periods)
{
        char col[32];

        check_str(line, r, "date", date);
        check_str(line, r, "weekday_label", weekday);
        check_str(line, r, "day_type_label", type);
        check_num(line, r, "lessons_used", lessons);
        check_num(line, r, "active_min", active);
        check_num(line, r, "interactive_min", inter);
        for (int k = 0; k < n_periods; k++) {
                snprintf(col, sizeof(col), "period_%d", k + 1);
                check_num(line, r, col, periods[k]);
        }
        snprintf(col, sizeof(col), "period_%d", n_periods + 1);
        if (cJSON_GetObjectItemCaseSensitive(r, col))
                bbt_test__fail(__FILE__, line, "a column %s past the school's %d periods", col, n_periods);
}
#define DAY(r, date, wd, type, lessons, active, inter, ...)                                                       \
        do {                                                                                                       \
                const double p_[] = { __VA_ARGS__ };                                                               \
                record_day(__LINE__, r, date, wd, type, lessons, active, inter, p_,                               \
                           (int)(sizeof(p_) / sizeof(p_[0])));                                                     \
        } while (0)

/*
 * School A's week Mon 09-07 .. Sun 09-13, bells 08:00-08:40, 08:50-09:30,
 * 10:00-10:40, 10:50-11:30 (school hours 07:30-12:00); minutes rounded down.
 * A1 (from the scenario's intervals):
 *   Mon  07:50-08:50 active (crosses period 1's start and end): p1 40, 60 min
 *        in school hours, interactive 30; 09:55-10:25 active: p3 25 (10:00-
 *        10:25), 30 min, interactive 10. Day 90 min, interactive 40, lessons 2.
 *   Tue  07:40-08:20: p1 20; 10:45-11:45: p4 40 (10:50-11:30), 60 min in
 *        school hours (to 11:45), interactive 20. Day 100, 20, lessons 2.
 *   Wed  holiday (县运动会): 60 active minutes, shown as 节假日, blank.
 *   Thu  08:00-08:40: p1 40, 40, interactive 40, lessons 1.
 *   Fri  08:50-09:30: p2 40, 40, 0, lessons 1 (the 23:30 idle counts nothing).
 *   Sat  调休: 10:00-10:40: p3 40, 40, interactive 20, lessons 1.
 *   Sun  休息日: blank (its 60 active minutes are not counted).
 *   Week: lessons 7, 310 min, interactive 120, p1 100, p2 40, p3 65, p4 40;
 *   5 school days need 10: 未达标.
 * A2: Mon off (0); Tue 09:00-09:09:59.999 active = 599 999 ms: p2 9 min (not
 *   a lesson with use), 9 min; Thu standby, Fri idle: 0 active. Week: 0
 *   lessons, 9 min (599 999 ms), p2 9: 未达标.
 */
TEST(record)
{
        const cJSON *doc, *r;
        const char *text;
        struct bbt_metric_settings s;

        build();
        doc = run("record", "510107", "5101070001", MON, SUN, true, NULL);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "title")->valuestring, "班班通使用记录表");
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "tables")), 3);
        ASSERT_EQ(rows(doc, "classrooms"), 2);
        r = row_at(doc, "classrooms", 0);
        STR(r, "school_code", "5101070001");
        STR(r, "terminal", "A1");
        STR(r, "room", "一年级(1)班");
        NUM(r, "school_days", 5);
        NUM(r, "lessons_used", 7);
        NUM(r, "lessons_required", 10);
        BOOL(r, "weekly_rule", false);
        NUM(r, "active_min", 310);
        NUM(r, "interactive_min", 120);
        r = row_at(doc, "classrooms", 1);
        STR(r, "terminal", "A2");
        NUM(r, "lessons_used", 0);
        NUM(r, "active_min", 9);
        NUM(r, "interactive_min", 0);

        ASSERT_EQ(rows(doc, "record_1"), 8);
        DAY(row_at(doc, "record_1", 0), "2026-09-07", "星期一", "上课日", 2, 90, 40, 40, 0, 25, 0);
        DAY(row_at(doc, "record_1", 1), "2026-09-08", "星期二", "上课日", 2, 100, 20, 20, 0, 0, 40);
        DAY(row_at(doc, "record_1", 2), "2026-09-09", "星期三", "节假日", NONE, NONE, NONE, NONE, NONE, NONE, NONE);
        DAY(row_at(doc, "record_1", 3), "2026-09-10", "星期四", "上课日", 1, 40, 40, 40, 0, 0, 0);
        DAY(row_at(doc, "record_1", 4), "2026-09-11", "星期五", "上课日", 1, 40, 0, 0, 40, 0, 0);
        DAY(row_at(doc, "record_1", 5), "2026-09-12", "星期六", "调休上课", 1, 40, 20, 0, 0, 40, 0);
        DAY(row_at(doc, "record_1", 6), "2026-09-13", "星期日", "休息日", NONE, NONE, NONE, NONE, NONE, NONE, NONE);
        r = row_at(doc, "record_1", 7);
        NUL(r, "date");
        CODE(r, "day_type", "week_total", "本周合计");
        NUM(r, "lessons_used", 7);
        NUM(r, "active_min", 310);
        NUM(r, "interactive_min", 120);
        NUM(r, "period_1", 100);
        NUM(r, "period_2", 40);
        NUM(r, "period_3", 65);
        NUM(r, "period_4", 40);

        ASSERT_EQ(rows(doc, "record_2"), 8);
        DAY(row_at(doc, "record_2", 0), "2026-09-07", "星期一", "上课日", 0, 0, 0, 0, 0, 0, 0);
        DAY(row_at(doc, "record_2", 1), "2026-09-08", "星期二", "上课日", 0, 9, 0, 0, 9, 0, 0);
        DAY(row_at(doc, "record_2", 3), "2026-09-10", "星期四", "上课日", 0, 0, 0, 0, 0, 0, 0);
        r = row_at(doc, "record_2", 7);
        NUM(r, "lessons_used", 0);
        NUM(r, "active_min", 9);
        NUM(r, "period_2", 9);
        CODE(r, "day_type", "week_total", "本周合计");

        /* With a minimum of 7, A1's week meets the rule exactly (5 × 7 >= 7 × 5). */
        bbt_metric_settings_default(&s);
        s.weekly_lessons_min = 7;
        doc = run("record", "510107", "5101070001", MON, SUN, true, &s);
        r = row_at(doc, "classrooms", 0);
        NUM(r, "lessons_required", 7);
        BOOL(r, "weekly_rule", true);
        BOOL(row_at(doc, "classrooms", 1), "weekly_rule", false);

        /* CSV: one section per table, captioned with the room and the terminal. */
        text = run_text("record", "510107", "5101070001", MON, SUN, "csv", true, NULL);
        ASSERT_STR_CONTAINS(text, "\xef\xbb\xbf本周汇总\r\n学校代码,学校名称,终端,教室,上课天数,有使用节数,要求节数,"
                                  "周节数是否达标,使用时长(分钟),互动时长(分钟)\r\n"
                                  "5101070001,城关小学,A1,一年级(1)班,5,7,10,否,310,120\r\n");
        ASSERT_STR_CONTAINS(text, "\r\n\r\n一年级(1)班 A1\r\n日期,星期,类别,有使用节数,使用时长(分钟),互动时长(分钟),"
                                  "第1节(分钟),第2节(分钟),第3节(分钟),第4节(分钟)\r\n"
                                  "2026-09-07,星期一,上课日,2,90,40,40,0,25,0\r\n");
        ASSERT_STR_CONTAINS(text, "2026-09-09,星期三,节假日,,,,,,,\r\n");
        ASSERT_STR_CONTAINS(text, "\r\n,,本周合计,7,310,120,100,40,65,40\r\n");
        ASSERT_STR_CONTAINS(text, "\r\n\r\n一年级(2)班 A2\r\n");
        ASSERT_STR_CONTAINS(text, "5101070001 节次时间：第1节 08:00–08:40，第2节 08:50–09:30，第3节 10:00–10:40，"
                                  "第4节 10:50–11:30");
        ASSERT_STR_CONTAINS(text, "每周使用节数要求(每5个上课日),10\r\n");
}

/*
 * School C's own bells (3 periods; school hours 07:30-15:15), in English.
 * C1: Mon 13:50-14:50 active: p3 45 (14:00-14:45), 60 min, interactive 30.
 *     Tue 08:30-09:00: p1 15 (08:30-08:45), p2 5 (08:55-09:00), 30 min,
 *     interactive 15; lessons 1 (p2's 5 min is short of 10).
 *     Thu 15:05-16:05: 10 min in school hours (to 15:15), no period;
 *     interactive 500 000 ms = 8 min rounded down.
 *   Week: lessons 2, 100 min, interactive 3 200 000 ms = 53 min; needs 10: below.
 */
TEST(record_own_bells)
{
        const cJSON *doc, *r;

        build();
        doc = run("record", "510107", "5101070003", MON, SUN, false, NULL);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "title")->valuestring, "Classroom terminal usage record");
        ASSERT_EQ(rows(doc, "classrooms"), 1);
        DAY(row_at(doc, "record_1", 0), "2026-09-07", "Monday", "school day", 1, 60, 30, 0, 0, 45);
        DAY(row_at(doc, "record_1", 1), "2026-09-08", "Tuesday", "school day", 1, 30, 15, 15, 5, 0);
        DAY(row_at(doc, "record_1", 2), "2026-09-09", "Wednesday", "holiday", NONE, NONE, NONE, NONE, NONE, NONE);
        DAY(row_at(doc, "record_1", 3), "2026-09-10", "Thursday", "school day", 0, 10, 8, 0, 0, 0);
        DAY(row_at(doc, "record_1", 5), "2026-09-12", "Saturday", "make-up school day", 0, 0, 0, 0, 0, 0);
        DAY(row_at(doc, "record_1", 6), "2026-09-13", "Sunday", "weekend", NONE, NONE, NONE, NONE, NONE, NONE);
        r = row_at(doc, "record_1", 7);
        NUL(r, "date");
        CODE(r, "day_type", "week_total", "Week total");
        NUM(r, "lessons_used", 2);
        NUM(r, "active_min", 100);
        NUM(r, "interactive_min", 53);
        NUM(r, "period_1", 15);
        NUM(r, "period_2", 5);
        NUM(r, "period_3", 45);
        r = row_at(doc, "classrooms", 0);
        BOOL(r, "weekly_rule", false);
        NUM(r, "lessons_required", 10);

        /* The week of 510108's school D: Mon..Fri school days, the weekend off,
         * 8 default periods, D1 unused in the week: zeros, not blanks. */
        doc = run("record", "510108", "5101080001", MON, SUN, true, NULL);
        DAY(row_at(doc, "record_1", 2), "2026-09-09", "星期三", "上课日", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        DAY(row_at(doc, "record_1", 5), "2026-09-12", "星期六", "休息日", NONE, NONE, NONE, NONE, NONE, NONE, NONE,
            NONE, NONE, NONE, NONE);
        /* The week of 09-01 (Tue 09-01 .. Fri, Mon 08-31 in term for 510108: 5
         * school days): D1 used period 1 on Tue (08:00-08:40): 1 lesson of 10 needed. */
        doc = run("record", "510108", "5101080001", MON - 7, MON - 1, true, NULL);
        r = row_at(doc, "classrooms", 0);
        NUM(r, "school_days", 5);
        NUM(r, "lessons_used", 1);
        NUM(r, "active_min", 40);
        DAY(row_at(doc, "record_1", 1), "2026-09-01", "星期二", "上课日", 1, 40, 0, 40, 0, 0, 0, 0, 0, 0, 0);
}

/* The record is one school's week: anything else is refused with the reason. */
TEST(record_needs_school_and_week)
{
        struct bbt_report_options o = {
                .kind = bbt_report_kind_find("record"), .county = "510107", .school = NULL, .from = MON,
                .to = SUN, .chinese = true, .now_ms = at(MON + 7, 8, 0),
        };
        struct bbt_document *doc = NULL;
        char err[256] = "";

        build();
        ASSERT(o.kind != NULL);
        ASSERT(o.kind->needs & BBT_NEEDS_SCHOOL);
        ASSERT_EQ(bbt_report_build(&o, W.store, W.reg, W.cal, default_settings(), &doc, err, sizeof(err)), -EINVAL);
        ASSERT_STR_CONTAINS(err, "one school");
        o.school = "5101070001";
        o.from = TUE; /* Tue .. Sun: not a Monday-to-Sunday week */
        ASSERT_EQ(bbt_report_build(&o, W.store, W.reg, W.cal, default_settings(), &doc, err, sizeof(err)), -EINVAL);
        ASSERT_STR_CONTAINS(err, "one week");
        o.from = MON;
        o.to = SUN + 7;
        ASSERT_EQ(bbt_report_build(&o, W.store, W.reg, W.cal, default_settings(), &doc, err, sizeof(err)), -EINVAL);
        o.to = SUN;
        ASSERT_OK(bbt_report_build(&o, W.store, W.reg, W.cal, default_settings(), &doc, err, sizeof(err)));
        ASSERT_EQ(doc->n_tables, 3);
        bbt_document_free(doc);
}

/* The week not over yet (now Thu 09-10 09:00): Fri and Sat are 未到, blank,
 * and the week is judged on its school days so far: A1 Mon, Tue, Thu = 3
 * (Wed a holiday), lessons 2 + 2 + 1 = 5, needs ceil(10 × 3 / 5) = 6: 未达标;
 * 90 + 100 + 40 = 230 min. */
TEST(record_week_not_over)
{
        struct bbt_report_options o = {
                .kind = bbt_report_kind_find("record"), .county = "510107", .school = "5101070001", .from = MON,
                .to = SUN, .chinese = true, .now_ms = at(THU, 9, 0),
        };
        struct bbt_document *doc = NULL;
        const struct bbt_table *sum, *a1;
        char err[256] = "";

        build();
        ASSERT_OK(bbt_report_build(&o, W.store, W.reg, W.cal, default_settings(), &doc, err, sizeof(err)));
        sum = doc->tables[0];
        a1 = doc->tables[1];
        ASSERT_STR_EQ(sum->key, "classrooms");
        ASSERT_EQ(bbt_table_cell(sum, 0, 4)->v.i, 3);   /* school days so far */
        ASSERT_EQ(bbt_table_cell(sum, 0, 5)->v.i, 5);   /* lessons with use */
        ASSERT_EQ(bbt_table_cell(sum, 0, 6)->v.i, 6);   /* required */
        ASSERT(!bbt_table_cell(sum, 0, 7)->v.b);
        ASSERT_EQ(bbt_table_cell(sum, 0, 8)->v.i, 230);
        ASSERT_STR_EQ(a1->caption_zh, "一年级(1)班 A1");
        ASSERT_STR_EQ(bbt_table_cell(a1, 3, 2)->v.code.code, "school_day");  /* Thu: today, so far */
        ASSERT_EQ(bbt_table_cell(a1, 3, 3)->v.i, 1);
        ASSERT_STR_EQ(bbt_table_cell(a1, 4, 2)->v.code.code, "not_yet");    /* Fri */
        ASSERT_EQ(bbt_table_cell(a1, 4, 3)->kind, BBT_VALUE_EMPTY);
        ASSERT_STR_EQ(bbt_table_cell(a1, 5, 2)->v.code.code, "not_yet");    /* Sat (调休) */
        ASSERT_STR_EQ(bbt_table_cell(a1, 6, 2)->v.code.code, "weekend");  /* Sun */
        ASSERT_EQ(bbt_table_cell(a1, 7, 3)->v.i, 5);
        bbt_document_free(doc);
}

/* ---- bbt-report's Excel files, read back ---- */

/* Runs bbt-report with ARGS (NULL-terminated, after the program); returns
 * its exit status, with its output in W.dir/bbt-report.log. */
static int report_cli(const char *const *args)
{
        char exe[512], log[600], *argv[32];
        size_t n = 0;
        int status;

        argv[n++] = (char *)bbt_test_exe("county/report", "bbt-report", exe, sizeof(exe));
        for (size_t i = 0; args[i] && n < BBT_ELEMENTSOF(argv) - 1; i++)
                argv[n++] = (char *)args[i];
        argv[n] = NULL;
        snprintf(log, sizeof(log), "%s/bbt-report.log", W.dir);
        unlink(log);
        status = bbt_test_run(argv, log, log, 30000);
        if (!WIFEXITED(status))
                FAIL("bbt-report %s: %s", args[0], bbt_test_status_text(status));
        return WEXITSTATUS(status);
}

/* Runs xlsx-check.py over MANIFEST; returns its exit status, its output in
 * *OUT (owned by W). */
static int xlsx_check(const cJSON *manifest, const char **out)
{
        char *text;
        int r = bbt_test_xlsx_check(manifest, W.dir, &text);

        ASSERT_LT(W.n_texts, sizeof(W.texts) / sizeof(W.texts[0]));
        W.texts[W.n_texts++] = text;
        *out = text;
        return r;
}

/* Every report kind, in both languages, through bbt-report as CSV and as
 * XLSX; the XLSX read back by openpyxl must equal the CSV cell by cell. */
TEST(xlsx_readback)
{
        const struct bbt_report_kind *kind;
        const char *out, *path;
        char conf[2048], csv[600], xlsx[600], name[64], err[256], *text, *cut;
        cJSON *manifest = cJSON_CreateArray(), *bad;

        build();
        snprintf(conf, sizeof(conf),
                 "[store]\npath = %s/bbt.db\n"
                 "[registry]\nschools = %s/schools.csv\nterminals = %s/terminals.csv\n"
                 "calendar = %s/calendar.csv\nbells = %s/bells.csv\n",
                 W.dir, W.dir, W.dir, W.dir, W.dir);
        path = write_file("aggregator.conf", conf);
        snprintf(conf, sizeof(conf), "%s", path);
        for (size_t k = 0; (kind = bbt_report_kind_at(k)); k++)
                for (int zh = 1; zh >= 0; zh--) {
                        /* The record report wants one school and a week (BBT_NEEDS_*). */
                        const char *school = kind->needs & BBT_NEEDS_SCHOOL ? "5101070001" : NULL;
                        bool week = kind->needs & BBT_NEEDS_WEEK;
                        struct bbt_report_options o = {
                                .kind = kind, .county = "510107", .school = school, .from = MON, .to = SUN,
                                .chinese = zh, .now_ms = at(MON + 7, 8, 0),
                        };
                        struct bbt_document *doc;

                        snprintf(csv, sizeof(csv), "%s/%s-%s.csv", W.dir, kind->name, zh ? "zh" : "en");
                        snprintf(xlsx, sizeof(xlsx), "%s/%s-%s.xlsx", W.dir, kind->name, zh ? "zh" : "en");
                        for (int f = 0; f < 2; f++) {
                                const char *args[] = { kind->name, "-c", conf, "--county", "510107",
                                                       "--lang", zh ? "zh" : "en", "--format", f ? "xlsx" : "csv",
                                                       "-o", f ? xlsx : csv,
                                                       week ? "--week" : "--from", "2026-09-07",
                                                       week ? "--school" : "--to", week ? school : "2026-09-13",
                                                       NULL };

                                if (report_cli(args) != 0) {
                                        snprintf(err, sizeof(err), "%s/bbt-report.log", W.dir);
                                        FAIL("bbt-report %s --format %s: %s", kind->name, args[8],
                                             bbt_test_slurp(err));
                                }
                        }
                        /* The types from the same document, built here. */
                        ASSERT_OK(bbt_report_build(&o, W.store, W.reg, W.cal, default_settings(), &doc, err,
                                                   sizeof(err)));
                        cJSON_AddItemToArray(manifest, bbt_test_xlsx_case(doc, zh, csv, xlsx));
                        bbt_document_free(doc);
                }
        if (xlsx_check(manifest, &out) != 0)
                FAIL("the XLSX files differ from the CSV:\n%s", out);
        fputs(out, stderr); /* "xlsx-check: N workbooks, M cells compared, 0 mismatches" */
        snprintf(err, sizeof(err), "%d workbooks", cJSON_GetArraySize(manifest));
        ASSERT_STR_CONTAINS(out, err);
        ASSERT_STR_CONTAINS(out, " 0 mismatches");
        /* Written atomically: no temporary file left beside them. */
        {
                DIR *dir = opendir(W.dir);
                struct dirent *e;

                ASSERT(dir != NULL);
                while ((e = readdir(dir)))
                        if (strncmp(e->d_name, ".bbt-report.", 12) == 0)
                                FAIL("left behind: %s", e->d_name);
                closedir(dir);
        }

        /* The check can fail: the summary's CSV with the county's usage rate
         * changed (0.3200 → 0.3201) and the schools' with a school renamed. */
        bad = cJSON_CreateArray();
        for (int i = 0; i < 2; i++) {
                const char *kind_name = i ? "schools" : "summary", *from = i ? "城关小学" : ",0.3200,";
                const char *to = i ? "城关中学" : ",0.3201,";
                cJSON *c = cJSON_Duplicate(cJSON_GetArrayItem(manifest, i ? 2 : 0), true);

                snprintf(csv, sizeof(csv), "%s/%s-zh.csv", W.dir, kind_name);
                text = bbt_test_slurp(csv);
                cut = strstr(text, from);
                ASSERT(cut != NULL);
                memcpy(cut, to, strlen(to)); /* same length */
                snprintf(name, sizeof(name), "%s-bad.csv", kind_name);
                cJSON_ReplaceItemInObject(c, "csv", cJSON_CreateString(write_file(name, text)));
                free(text);
                cJSON_AddItemToArray(bad, c);
        }
        ASSERT_EQ(xlsx_check(bad, &out), 1);
        ASSERT_STR_CONTAINS(out, "rounds to 0.3200, CSV has 0.3201");
        ASSERT_STR_CONTAINS(out, "'城关小学', CSV has '城关中学'");
        ASSERT_STR_CONTAINS(out, "2 mismatches");
        cJSON_Delete(bad);
        cJSON_Delete(manifest);

        /* xlsx is a file: never standard output. */
        {
                const char *args[] = { "summary", "-c", conf, "--format", "xlsx", NULL };

                ASSERT_EQ(report_cli(args), 2);
                snprintf(err, sizeof(err), "%s/bbt-report.log", W.dir);
                ASSERT(bbt_test_file_contains(err, "--format xlsx writes a file, not to standard output: add -o FILE"));
        }
}

/* Every report kind of the table as JSON, over the fixture with all it can
 * show (faults, idle terminals, lost, skipped and conflicting seqs, a school
 * outside the registry, a county with nothing, a range without a school day),
 * in both languages. With BBT_REPORT_JSON_DUMP set, writes "<kind>\t<json>"
 * lines to that file for tests/report-schema-check.py, which validates each
 * against docs/schemas/report-<kind>.schema.json (ctest reports.json_schema). */
TEST(json_every_kind)
{
        static const struct {
                const char *county, *school;
                int32_t from, to;
        } variants[] = {
                { "510107", NULL, MON, SUN },
                { NULL, NULL, MON, SUN },
                { NULL, "5101070001", MON, SUN },
                { "510108", NULL, MON, SUN },
                { "510199", NULL, MON, SUN },
                { "510107", NULL, WED, WED },
        };
        const char *path = getenv("BBT_REPORT_JSON_DUMP");
        const struct bbt_report_kind *kind;
        FILE *dump = NULL;
        size_t k, lines = 0;

        build();
        feed_skip_and_conflict();
        feed_other_county_a1();
        feed_audit();
        if (path && *path) {
                dump = fopen(path, "w");
                ASSERT(dump);
        }
        for (k = 0; (kind = bbt_report_kind_at(k)); k++)
                for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++)
                        for (int zh = 0; zh < 2; zh++) {
                                /* The record report: one school, one week (BBT_NEEDS_*). */
                                bool one = kind->needs & BBT_NEEDS_SCHOOL;
                                const char *text = run_text(kind->name, variants[v].county,
                                                            one && !variants[v].school ? "5101070001"
                                                                                      : variants[v].school,
                                                            one ? MON : variants[v].from, one ? SUN : variants[v].to,
                                                            "json", zh, NULL);
                                cJSON *doc = cJSON_Parse(text);

                                if (!doc)
                                        FAIL("%s: not JSON: %s", kind->name, text);
                                ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(doc, "schema")->valuestring,
                                              "bbt-report/1");
                                cJSON_Delete(doc);
                                ASSERT(strchr(text, '\n') == text + strlen(text) - 1); /* one line */
                                if (dump)
                                        ASSERT(fprintf(dump, "%s\t%s", kind->name, text) > 0);
                                free(W.texts[--W.n_texts]);
                                lines++;
                        }
        ASSERT_EQ(lines, k * 12);
        if (dump)
                ASSERT_EQ(fclose(dump), 0);
}
