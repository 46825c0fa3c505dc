/* History: a report for a past range reads the same whenever it runs, however much data came after the range. */
/* bbt-test: label=unit timeout=120 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bbt/base.h"
#include "bbt/log.h"
#include "bbt/protocol.h"
#include "aggregator_config.h"
#include "calendar.h"
#include "dates.h"
#include "fixture-tree.h"
#include "import-test.h"
#include "ingest.h"
#include "registry.h"
#include "reports.h"
#include "store.h"
#include "test.h"

/*
 * County 510107, one school (5101070001), a term from Mon 2026-08-31 with no
 * holiday: the school days are Monday to Friday. Bells 08:00-08:40,
 * 08:50-09:30, 10:00-10:40, 10:50-11:30. Local time is UTC+8.
 *
 * The week reported: Mon 09-07 .. Sun 09-13. The store is first filled up to
 * the end of that week ("the next day": reports run Mon 09-14 07:00), then
 * with four more weeks (reports run again Mon 10-12 08:00).
 *
 * A working day of a terminal (work()): five heartbeats stamped 08:00:30 ..
 * 08:04:30 and the usage interval 08:00-08:20 sent at 08:20, each received
 * 0.5 s after its stamp (live heartbeats: clock-skew samples of -0.5 s, an
 * estimate of 0).
 *
 * Up to the end of the week:
 *   T1  works (active) every school day from 08-31.
 *   T2  works 08-31, 09-01, 09-02, then nothing: last message 09-02 08:20.
 *   T3  works every school day; a disk_low alert raised Thu 09-10 08:30.
 *   T4  works every school day; on Thu 09-10 its clock is 600 s fast (set
 *       right again on Fri 09-11).
 *   T5  never reports.
 *   T6  on every school day, never used (idle intervals).
 * After the week:
 *   T1, T3, T4 go on working; T3's disk_low clears Tue 09-15 10:00; T4's
 *   clock is 600 s fast again Tue 09-15 and Wed 09-16, right from Thu 09-17.
 *   T2 comes back: a birth Wed 09-16 07:55, then works every school day.
 *   T6 is used from Mon 09-14. T5 still never reports. X, a terminal not in
 *   the registry, starts reporting Mon 09-14.
 */

#define AUG31 20696 /* Mon 2026-08-31 */
#define MON (AUG31 + 7) /* Mon 2026-09-07 */
#define SUN (MON + 6)
#undef MIN
#define MIN 60000LL
#define FAST (600 * 1000LL) /* T4's clock, when wrong */

static const char schools_csv[] =
        "县区代码,县区,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数,教室数,小学部学生数,初中部学生数\r\n"
        "510107,武侯区,城关街道,5101070001,城关小学,小学,城区,600,12,,\r\n";
static const char terminals_csv[] = "学校代码,终端编号,教室,应配外设\r\n"
                                    "5101070001,T1,一年级(1)班,\r\n"
                                    "5101070001,T2,一年级(2)班,\r\n"
                                    "5101070001,T3,二年级(1)班,\r\n"
                                    "5101070001,T4,二年级(2)班,\r\n"
                                    "5101070001,T5,三年级(1)班,\r\n"
                                    "5101070001,T6,三年级(2)班,\r\n";
static const char calendar_csv[] = "范围,类型,开始日期,结束日期,名称\r\n"
                                   "510107,学期,2026/8/31,2027/1/22,2026年秋季学期\r\n";
static const char bells_csv[] = "范围,节次,开始时间,结束时间\r\n"
                                "510107,1,08:00,08:40\r\n"
                                "510107,2,08:50,09:30\r\n"
                                "510107,3,10:00,10:40\r\n"
                                "510107,4,10:50,11:30\r\n";

static struct {
        const char *dir;
        struct bbt_registry *reg;
        struct bbt_calendar *cal;
        struct bbt_store *store;
        struct bbt_ingest *in;
} W;

static void cleanup(void)
{
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
        const char *terminal;
        int64_t seq;
        int64_t clock; /* how far the terminal's clock is ahead */
};

/* Sends M as F's next message, happening at the true time WHEN: stamped by
 * F's clock, received half a second later. */
static void feed(struct feeder *f, struct bbt_msg *m, int64_t when)
{
        struct bbt_topic tp = { .channel = m->channel };
        char topic[BBT_TOPIC_MAX], etext[300];
        struct bbt_error e;
        char *json = NULL;
        size_t len;

        snprintf(tp.county, sizeof(tp.county), "510107");
        snprintf(tp.school, sizeof(tp.school), "5101070001");
        snprintf(tp.terminal, sizeof(tp.terminal), "%s", f->terminal);
        ASSERT_GT(bbt_topic_build(&tp, topic, sizeof(topic)), 0);
        m->seq = f->seq++;
        m->ts = when + f->clock;
        m->boot = 1;
        if (bbt_msg_encode(m, &json, &len, &e) < 0)
                FAIL("encode %s: %s", topic, bbt_error_format(&e, etext, sizeof(etext)));
        bbt_ingest_message(W.in, topic, json, len, false, when + 500);
        free(json);
}

static void birth(struct feeder *f, int64_t when)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_STATE);
        m.body.state.online = true;
        m.body.state.version = "2.1.0";
        m.body.state.hostname = "bbt-classroom";
        m.body.state.os = "Debian GNU/Linux 12 (bookworm)";
        m.body.state.machine_id = "0123456789abcdef0123456789abcdef";
        feed(f, &m, when);
}

/* A working day: five heartbeats from 08:00:30, the interval 08:00-08:20 in STATE. */
static void work(struct feeder *f, int32_t day, enum bbt_usage_state state)
{
        struct bbt_msg m;

        for (int k = 0; k < 5; k++) {
                bbt_msg_init(&m, BBT_CH_HB);
                m.body.hb.uptime = 3600;
                m.body.hb.mem_total = 4294967296LL, m.body.hb.mem_available = 2147483648LL;
                m.body.hb.disk_root.total = 64000000000LL, m.body.hb.disk_root.free = 32000000000LL;
                m.body.hb.state = state;
                m.body.hb.clock_synced = true;
                feed(f, &m, at(day, 8, 0) + 30000 + k * MIN);
        }
        bbt_msg_init(&m, BBT_CH_USAGE);
        m.body.usage.start = at(day, 8, 0) + f->clock;
        m.body.usage.end = at(day, 8, 20) + f->clock;
        m.body.usage.state = state;
        feed(f, &m, at(day, 8, 20));
}

static void alert(struct feeder *f, const char *code, enum bbt_alert_state st, int64_t when)
{
        struct bbt_msg m;

        bbt_msg_init(&m, BBT_CH_ALERT);
        m.body.alert.code = code;
        m.body.alert.severity = BBT_SEVERITY_WARNING;
        m.body.alert.state = st;
        m.body.alert.detail = "root 95% full";
        feed(f, &m, when);
}

static bool school_day(int32_t day)
{
        return bbt_day_weekday(day) <= 5;
}

static struct feeder t1 = { "T1", 0, 0 }, t2 = { "T2", 0, 0 }, t3 = { "T3", 0, 0 }, t4 = { "T4", 0, 0 },
                     t6 = { "T6", 0, 0 }, x = { "X", 0, 0 };

/* The store up to the end of the week. */
static void build(void)
{
        static struct bbt_import_errors errs;
        struct bbt_ingest_settings set;
        char path[600], err[256];

        bbt_log_set_level(3);
        W.dir = bbt_test_tree_new("history");
        atexit(cleanup);
        ASSERT_EQ(bbt_day_from_ymd(2026, 8, 31), AUG31);
        ASSERT_EQ(bbt_day_weekday(AUG31), 1);
        ASSERT_OK(bbt_registry_new(&W.reg));
        LOAD_OK(bbt_registry_load_schools(W.reg, bbt_test_import_text("history", "schools.csv", schools_csv), &errs),
                errs);
        LOAD_OK(bbt_registry_load_terminals(W.reg, bbt_test_import_text("history", "terminals.csv", terminals_csv),
                                            &errs),
                errs);
        ASSERT_OK(bbt_calendar_new(&W.cal));
        LOAD_OK(bbt_calendar_load_days(W.cal, bbt_test_import_text("history", "calendar.csv", calendar_csv), &errs),
                errs);
        LOAD_OK(bbt_calendar_load_bells(W.cal, bbt_test_import_text("history", "bells.csv", bells_csv), &errs), errs);
        snprintf(path, sizeof(path), "%s/bbt.db", W.dir);
        ASSERT_OK(bbt_store_open(path, false, &W.store, err, sizeof(err)));
        bbt_ingest_settings_default(&set);
        set.skew_warmup_ms = 0;
        if (bbt_ingest_new(W.store, &set, W.reg, W.cal, NULL, NULL, at(AUG31, 7, 0), &W.in, err, sizeof(err)) != 0)
                FAIL("bbt_ingest_new: %s", err);
        bbt_ingest_set_connected(W.in, true, at(AUG31, 7, 0));

        birth(&t1, at(AUG31, 7, 50));
        birth(&t2, at(AUG31, 7, 50));
        birth(&t3, at(AUG31, 7, 50));
        birth(&t4, at(AUG31, 7, 50));
        birth(&t6, at(AUG31, 7, 50));
        for (int32_t day = AUG31; day <= SUN; day++) {
                if (!school_day(day))
                        continue;
                work(&t1, day, BBT_USAGE_ACTIVE);
                if (day <= AUG31 + 2)
                        work(&t2, day, BBT_USAGE_ACTIVE);
                work(&t3, day, BBT_USAGE_ACTIVE);
                if (day == MON + 3)
                        alert(&t3, "disk_low", BBT_ALERT_RAISED, at(day, 8, 30));
                t4.clock = day == MON + 3 ? FAST : 0;
                work(&t4, day, BBT_USAGE_ACTIVE);
                work(&t6, day, BBT_USAGE_IDLE);
        }
        ASSERT_OK(bbt_ingest_flush(W.in));
}

/* Four more weeks, Mon 09-14 .. Sun 10-11. */
static void later(void)
{
        birth(&x, at(MON + 7, 7, 50));
        for (int32_t day = MON + 7; day <= MON + 34; day++) {
                if (!school_day(day))
                        continue;
                work(&t1, day, BBT_USAGE_ACTIVE);
                if (day == MON + 9)
                        birth(&t2, at(day, 7, 55));
                if (day >= MON + 9)
                        work(&t2, day, BBT_USAGE_ACTIVE);
                work(&t3, day, BBT_USAGE_ACTIVE);
                if (day == MON + 8)
                        alert(&t3, "disk_low", BBT_ALERT_CLEARED, at(day, 10, 0));
                t4.clock = day == MON + 8 || day == MON + 9 ? FAST : 0;
                work(&t4, day, BBT_USAGE_ACTIVE);
                work(&t6, day, BBT_USAGE_ACTIVE);
                work(&x, day, BBT_USAGE_ACTIVE);
        }
        ASSERT_OK(bbt_ingest_flush(W.in));
}

static const struct bbt_metric_settings *settings(void)
{
        static struct bbt_metric_settings s;

        bbt_metric_settings_default(&s);
        return &s;
}

/* Report KIND for FROM..TO run at NOW in FMT, with the time of generation
 * (the only thing that may differ) replaced by "<now>". Returns it, malloc'd. */
static char *report(const char *kind, int32_t from, int32_t to, const char *fmt, bool chinese, int64_t now)
{
        struct bbt_report_options o = {
                .kind = bbt_report_kind_find(kind), .county = "510107", .from = from, .to = to,
                .format = bbt_renderer_find(fmt), .chinese = chinese, .now_ms = now, .store_label = "test.db",
        };
        char *buf = NULL, err[256] = "", stamp[32], *p;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        int32_t day = bbt_day_of_ms(now, 480);
        int minute = (int)((now - bbt_day_start_ms(day, 480)) / MIN);

        ASSERT(o.kind && o.format && f);
        if (bbt_reports_run(&o, W.store, W.reg, W.cal, settings(), f, err, sizeof(err)) != 0)
                FAIL("%s %s: %s", kind, fmt, err);
        fclose(f);
        bbt_day_format(day, stamp, sizeof(stamp));
        snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), " %02d:%02d", minute / 60, minute % 60);
        for (int form = 0; form < 2; form++) {
                /* The run's own time: local in text and CSV, ISO 8601 in JSON. */
                if (form)
                        bbt_time_format(now, 480, true, stamp, sizeof(stamp));
                for (p = strstr(buf, stamp); p; p = strstr(p, stamp)) {
                        memmove(p + 5, p + strlen(stamp), strlen(p + strlen(stamp)) + 1);
                        memcpy(p, "<now>", 5);
                }
        }
        return buf;
}

static cJSON *report_json(const char *kind, int32_t from, int32_t to, int64_t now)
{
        char *text = report(kind, from, to, "json", true, now);
        cJSON *doc = cJSON_Parse(text);

        if (!doc)
                FAIL("not JSON: %s", text);
        free(text);
        return doc;
}

static const cJSON *row_at(const cJSON *doc, const char *table, int i)
{
        const cJSON *r = cJSON_GetArrayItem(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "tables"), table), i);

        if (!r)
                FAIL("table %s has no row %d", table, i);
        return r;
}

static int rows(const cJSON *doc, const char *table)
{
        return cJSON_GetArraySize(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "tables"), table));
}

static void check_str(int line, const cJSON *row, const char *col, const char *want)
{
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(row, col);

        if (want == NULL) {
                if (!cJSON_IsNull(c))
                        bbt_test__fail(__FILE__, line, "%s: expected null, got \"%s\"", col,
                                       cJSON_IsString(c) ? c->valuestring : "(not a string)");
                return;
        }
        if (!cJSON_IsString(c) || strcmp(c->valuestring, want) != 0)
                bbt_test__fail(__FILE__, line, "%s: expected \"%s\", got \"%s\"", col, want,
                               cJSON_IsString(c) ? c->valuestring : "(not a string)");
}
#define STR(row, col, want) check_str(__LINE__, row, col, want)

static const char *const kinds[] = { "summary", "schools", "terminals", "idle", "faults", "balance" };
static const char *const formats[] = { "table", "csv", "json" };
#define N_OUT (BBT_ELEMENTSOF(kinds) * BBT_ELEMENTSOF(formats) * 2)

/* Every affected report of the week, in every format and both languages. */
static void week_reports(char **out, int64_t now)
{
        size_t n = 0;

        for (size_t k = 0; k < BBT_ELEMENTSOF(kinds); k++)
                for (size_t f = 0; f < BBT_ELEMENTSOF(formats); f++)
                        for (int zh = 0; zh < 2; zh++)
                                out[n++] = report(kinds[k], MON, SUN, formats[f], zh, now);
}

/* The week's reports run the next day and again four weeks later, after
 * everything above arrived, are the same to the byte (the time of
 * generation aside). */
TEST(past_week_same_later)
{
        char *first[N_OUT], *again[N_OUT];
        size_t n = 0;

        build();
        week_reports(first, at(MON + 7, 7, 0));
        later();
        week_reports(again, at(MON + 35, 8, 0));
        for (size_t k = 0; k < BBT_ELEMENTSOF(kinds); k++)
                for (size_t f = 0; f < BBT_ELEMENTSOF(formats); f++)
                        for (int zh = 0; zh < 2; zh++, n++) {
                                if (strcmp(first[n], again[n]) != 0) {
                                        fprintf(stderr, "---- the next day:\n%s\n---- four weeks later:\n%s\n",
                                                first[n], again[n]);
                                        FAIL("%s --format %s --lang %s differs", kinds[k], formats[f],
                                             zh ? "zh" : "en");
                                }
                                ASSERT(strstr(first[n], "<now>") != NULL);
                        }
        for (n = 0; n < N_OUT; n++) {
                free(first[n]);
                free(again[n]);
        }
}

/*
 * The week's faults, by hand:
 *   T2  last message Wed 09-02 08:20 (the usage sent then). School days
 *       after it: Thu 09-03, Fri 09-04, Mon 09-07, Tue 09-08; the fourth is
 *       more than silent_days (3): silent from the end of Tue 09-08, that is
 *       09-09 00:00. Open at the end of the week.
 *   T5  never reported: silent, since when not known.
 *   T3  disk_low from Thu 09-10 08:30, open at the end of the week.
 *   T4  clock_skew: Thu's heartbeats, 600 s fast, were received 08:00:30.5,
 *       08:01:30.5, 08:02:30.5 ...; the estimate needs three samples
 *       (08:02:30.5) but the fault dates from the first, 08:00:30.5. On
 *       Friday the clock is right; the window of 5 samples keeps a 600 s one
 *       until the fifth right heartbeat (08:04:30.5), and the clear dates
 *       from the first, Fri 08:00:30.5.
 * Intact at the end: T1, T4, T6 of 6 = 0.5.
 * In Mon 09-07 .. Sun 09-20 (reported after everything arrived): T2's spell
 * ends with its birth Wed 09-16 07:55; T3's disk_low cleared Tue 09-15
 * 10:00; T4's second clock_skew: Tue 09-15 08:00:30.5 to Thu 09-17
 * 08:00:30.5. Intact at Sun 09-20's end: all but T5 = 5/6, X (reporting from
 * 09-14, not registered) included: 6/7.
 */
TEST(faults_opened_and_cleared)
{
        cJSON *doc;
        const cJSON *r;

        build();
        doc = report_json("faults", MON, SUN, at(MON + 7, 7, 0));
        ASSERT_EQ(rows(doc, "faults"), 4);
        r = row_at(doc, "faults", 0);
        STR(r, "terminal", "T2");
        STR(r, "fault", "silent");
        STR(r, "since", "2026-09-09T00:00:00+08:00");
        STR(r, "cleared", NULL);
        STR(r, "detail", "2026-09-02 08:20 后超过 3 个上课日未收到任何数据");
        r = row_at(doc, "faults", 1);
        STR(r, "terminal", "T5");
        STR(r, "fault", "silent");
        STR(r, "since", NULL);
        STR(r, "cleared", NULL);
        r = row_at(doc, "faults", 2);
        STR(r, "terminal", "T3");
        STR(r, "fault", "disk_low");
        STR(r, "since", "2026-09-10T08:30:00+08:00");
        STR(r, "cleared", NULL);
        r = row_at(doc, "faults", 3);
        STR(r, "terminal", "T4");
        STR(r, "fault", "clock_skew");
        STR(r, "since", "2026-09-10T08:00:30.500+08:00");
        STR(r, "cleared", "2026-09-11T08:00:30.500+08:00");
        cJSON_Delete(doc);
        doc = report_json("summary", MON, SUN, at(MON + 7, 7, 0));
        ASSERT(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "objects"), "overall"), "intact_rate")->valuedouble == 0.5);
        cJSON_Delete(doc);

        later();
        doc = report_json("faults", MON, MON + 13, at(MON + 35, 8, 0));
        ASSERT_EQ(rows(doc, "faults"), 5);
        r = row_at(doc, "faults", 0);
        STR(r, "terminal", "T2");
        STR(r, "fault", "silent");
        STR(r, "since", "2026-09-09T00:00:00+08:00");
        STR(r, "cleared", "2026-09-16T07:55:00+08:00");
        r = row_at(doc, "faults", 1);
        STR(r, "terminal", "T5");
        STR(r, "cleared", NULL);
        r = row_at(doc, "faults", 2);
        STR(r, "terminal", "T3");
        STR(r, "since", "2026-09-10T08:30:00+08:00");
        STR(r, "cleared", "2026-09-15T10:00:00+08:00");
        r = row_at(doc, "faults", 3);
        STR(r, "fault", "clock_skew");
        STR(r, "since", "2026-09-10T08:00:30.500+08:00");
        STR(r, "cleared", "2026-09-11T08:00:30.500+08:00");
        r = row_at(doc, "faults", 4);
        STR(r, "terminal", "T4");
        STR(r, "fault", "clock_skew");
        STR(r, "since", "2026-09-15T08:00:30.500+08:00");
        STR(r, "cleared", "2026-09-17T08:00:30.500+08:00");
        cJSON_Delete(doc);
        doc = report_json("summary", MON, MON + 13, at(MON + 35, 8, 0));
        r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "objects"), "overall");
        ASSERT(cJSON_GetObjectItemCaseSensitive(r, "terminals")->valuedouble == 7);
        ASSERT(cJSON_GetObjectItemCaseSensitive(r, "intact_rate")->valuedouble == 6.0 / 7); /* unrounded */
        cJSON_Delete(doc);
}

/*
 * Last seen and last active as of the end of the week: T6 was on but never
 * used up to it (开机未使用, last active never, last seen its Fri 09-11 08:20
 * usage message), whatever it did after; T1 last seen Fri 09-11 08:20 too,
 * not at its later messages.
 */
TEST(last_seen_and_idle_as_of_the_end)
{
        cJSON *doc;
        const cJSON *r;

        build();
        later();
        doc = report_json("idle", MON, SUN, at(MON + 35, 8, 0));
        ASSERT_EQ(rows(doc, "idle"), 2);
        r = row_at(doc, "idle", 0);
        STR(r, "terminal", "T5");
        STR(r, "reason_label", "从未上报");
        STR(r, "last_seen", NULL);
        r = row_at(doc, "idle", 1);
        STR(r, "terminal", "T6");
        STR(r, "reason_label", "开机未使用");
        STR(r, "last_active", NULL);
        STR(r, "last_seen", "2026-09-11T08:20:00+08:00");
        cJSON_Delete(doc);
        doc = report_json("terminals", MON, SUN, at(MON + 35, 8, 0));
        ASSERT_EQ(rows(doc, "terminals"), 6); /* X started after the week */
        STR(row_at(doc, "terminals", 0), "last_seen", "2026-09-11T08:20:00+08:00");
        STR(row_at(doc, "terminals", 1), "last_seen", "2026-09-02T08:20:00+08:00");
        cJSON_Delete(doc);
        /* The same range up to now shows what is current. */
        doc = report_json("terminals", MON, MON + 35, at(MON + 35, 8, 0));
        ASSERT_EQ(rows(doc, "terminals"), 7);
        STR(row_at(doc, "terminals", 0), "last_seen", "2026-10-09T08:20:00+08:00");
        ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row_at(doc, "terminals", 0), "online")));
        cJSON_Delete(doc);
}
