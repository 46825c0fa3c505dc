/* After-hours on-time (energy.c): evenings, nights, weekends, holidays, 调休 days, midnight, nights left on. */
/* bbt-test: label=unit timeout=10 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "aggregator_config.h"
#include "fixture-tree.h"
#include "ingest.h"
#include "scenario.h"
#include "calendar.h"
#include "dates.h"
#include "energy.h"
#include "import-test.h"
#include "reports.h"
#include "rollup.h"
#include "store.h"
#include "test.h"

#undef MIN
#define MIN 60000LL /* ms */
#define COUNTY "510107"
#define SCHOOL "2144010601"

/* 2026-09-01 is a Tuesday. The default bells (8 periods, 08:00–17:10) and
 * the 30-minute margin give school hours 07:30–17:40; nights run 22:00–06:00. */
#define D(m, d) bbt_day_from_ymd(2026, m, d)

static int64_t at(int32_t day, int h, int m)
{
        return bbt_day_start_ms(day, 480) + (h * 60 + m) * MIN;
}

/* A new SQLite store in a directory removed at exit. */
static struct bbt_store *open_store(void)
{
        struct bbt_store *s = NULL;
        char path[1024], err[256] = "";

        snprintf(path, sizeof(path), "%s/agg.db", bbt_test_tree_new("energy-store"));
        if (bbt_store_open(path, false, &s, err, sizeof(err)) < 0)
                FAIL("open: %s", err);
        return s;
}

static int64_t add_terminal(struct bbt_store *s, const char *terminal)
{
        struct bbt_store_terminal t = { .first_seq = -1, .high_seq = -1, .boot = -1, .inventory_seq = -1 };

        snprintf(t.county, sizeof(t.county), COUNTY);
        snprintf(t.school, sizeof(t.school), SCHOOL);
        snprintf(t.terminal, sizeof(t.terminal), "%s", terminal);
        ASSERT_OK(bbt_store_terminal_insert(s, &t));
        return t.id;
}

static void add_interval(struct bbt_store *s, int64_t id, int64_t seq, int64_t start, int64_t end,
                         enum bbt_usage_state state)
{
        struct bbt_store_usage u = { .terminal_id = id, .seq = seq, .span = { start, end, state, 0 } };

        ASSERT_OK(bbt_store_usage_insert(s, &u));
}

#define N_ROWS 4
struct rows {
        struct bbt_energy_terminal r[N_ROWS];
        char terminal[N_ROWS][BBT_ID_MAX + 1];
        int n;
};

static int row_cb(void *u, const struct bbt_energy_terminal *t)
{
        struct rows *rows = u;

        ASSERT_LT(rows->n, N_ROWS);
        ASSERT_STR_EQ(t->county, COUNTY);
        ASSERT_STR_EQ(t->school, SCHOOL);
        snprintf(rows->terminal[rows->n], sizeof(rows->terminal[0]), "%s", t->terminal);
        rows->r[rows->n++] = *t;
        return 0;
}

static struct bbt_calendar *calendar(void)
{
        struct bbt_calendar *cal;

        ASSERT_OK(bbt_calendar_new(&cal));
        ASSERT_OK(bbt_calendar_add(cal, SCHOOL, BBT_CAL_HOLIDAY, D(9, 4), D(9, 4)));  /* Friday: 校运会 */
        ASSERT_OK(bbt_calendar_add(cal, COUNTY, BBT_CAL_WORKDAY, D(9, 12), D(9, 12))); /* Saturday: 调休 */
        return cal;
}

static struct bbt_store *scenario(int64_t *ret_a, int64_t *ret_b)
{
        struct bbt_store *s = open_store();
        int64_t a = add_terminal(s, "A1"), b = add_terminal(s, "B1");

        /* Tue 09-01: 17:00–19:00 across the end of school hours (17:40):
         * 40 min school, 80 min evening; 21:00–23:30: 60 evening, 90 night. */
        add_interval(s, a, 1, at(D(9, 1), 17, 0), at(D(9, 1), 19, 0), BBT_USAGE_ACTIVE);
        add_interval(s, a, 2, at(D(9, 1), 21, 0), at(D(9, 1), 23, 30), BBT_USAGE_IDLE);
        /* Wed 09-02 23:00 – Thu 09-03 01:00 across midnight: 60 night on each day. */
        add_interval(s, a, 3, at(D(9, 2), 23, 0), at(D(9, 3), 1, 0), BBT_USAGE_STANDBY);
        /* Thu 09-03 05:00–08:00: 60 night, 90 evening (06:00–07:30), 30 school. */
        add_interval(s, a, 4, at(D(9, 3), 5, 0), at(D(9, 3), 8, 0), BBT_USAGE_IDLE);
        /* Fri 09-04, a holiday: 09:00–10:00 counts as holiday, in school hours or not. */
        add_interval(s, a, 5, at(D(9, 4), 9, 0), at(D(9, 4), 10, 0), BBT_USAGE_ACTIVE);
        /* Sat 09-05: 10:00–12:00 display off (standby) still counts: weekend. */
        add_interval(s, a, 6, at(D(9, 5), 10, 0), at(D(9, 5), 12, 0), BBT_USAGE_STANDBY);
        /* Sat 09-12, a 调休 school day: 07:00–08:00 30 evening + 30 school, 18:00–19:00 evening. */
        add_interval(s, a, 7, at(D(9, 12), 7, 0), at(D(9, 12), 8, 0), BBT_USAGE_ACTIVE);
        add_interval(s, a, 8, at(D(9, 12), 18, 0), at(D(9, 12), 19, 0), BBT_USAGE_ACTIVE);
        /* B1: only in school hours, and a zero-length interval. */
        add_interval(s, b, 1, at(D(9, 1), 9, 0), at(D(9, 1), 11, 0), BBT_USAGE_ACTIVE);
        add_interval(s, b, 2, at(D(9, 1), 23, 0), at(D(9, 1), 23, 0), BBT_USAGE_ACTIVE);
        *ret_a = a;
        *ret_b = b;
        return s;
}

static struct rows run(struct bbt_store *s, const struct bbt_calendar *cal, int32_t from, int32_t to)
{
        struct bbt_energy_rules r = BBT_ENERGY_RULES_DEFAULT;
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct rows rows = { .n = 0 };

        r.cal = cal;
        scope.from_day = from;
        scope.to_day = to;
        ASSERT_OK(bbt_energy_each(s, &r, &scope, row_cb, &rows));
        return rows;
}

TEST(hand_scenarios)
{
        struct bbt_calendar *cal = calendar();
        int64_t a, b;
        struct bbt_store *s = scenario(&a, &b);
        struct rows rows = run(s, cal, D(9, 1), D(9, 12));
        const struct bbt_energy_terminal *ra = &rows.r[0], *rb = &rows.r[1];

        ASSERT_EQ(rows.n, 2);
        ASSERT_EQ(ra->terminal_id, a);
        ASSERT_STR_EQ(rows.terminal[0], "A1");
        /* evening: 80 + 60 (09-01) + 90 (09-03) + 30 + 60 (09-12) */
        ASSERT_EQ(ra->after_ms[BBT_ENERGY_EVENING], (80 + 60 + 90 + 30 + 60) * MIN);
        /* night: 90 (09-01) + 60 (09-02) + 60 + 60 (09-03) */
        ASSERT_EQ(ra->after_ms[BBT_ENERGY_NIGHT], (90 + 60 + 60 + 60) * MIN);
        ASSERT_EQ(ra->after_ms[BBT_ENERGY_WEEKEND], 120 * MIN);
        ASSERT_EQ(ra->after_ms[BBT_ENERGY_HOLIDAY], 60 * MIN);
        ASSERT_EQ(ra->after_hours_ms, (320 + 270 + 120 + 60) * MIN);
        ASSERT_EQ(ra->school_ms, (40 + 30 + 30) * MIN);
        /* Nights of 09-01 (21:00–23:30) and 09-02 (across midnight, and 05:00–06:00 on 09-03). */
        ASSERT_EQ(ra->nights_on, 2);
        ASSERT_EQ(ra->last_night, D(9, 2));

        ASSERT_EQ(rb->terminal_id, b);
        ASSERT_EQ(rb->after_hours_ms, 0);
        ASSERT_EQ(rb->school_ms, 120 * MIN);
        ASSERT_EQ(rb->nights_on, 0);
        ASSERT_EQ(rb->last_night, INT32_MIN);
        bbt_store_close(s);
        bbt_calendar_free(cal);
}

TEST(range_cuts_days_and_nights)
{
        struct bbt_calendar *cal = calendar();
        int64_t a, b;
        struct bbt_store *s = scenario(&a, &b);
        struct rows rows = run(s, cal, D(9, 3), D(9, 3));
        const struct bbt_energy_terminal *ra = &rows.r[0];

        /* Only 09-03's part of the midnight interval counts, and 09-03's own
         * night (22:00 – 06:00 on 09-04) is empty: the night of 09-02 is
         * before the range. */
        ASSERT_EQ(ra->after_ms[BBT_ENERGY_NIGHT], (60 + 60) * MIN);
        ASSERT_EQ(ra->after_ms[BBT_ENERGY_EVENING], 90 * MIN);
        ASSERT_EQ(ra->after_ms[BBT_ENERGY_WEEKEND] + ra->after_ms[BBT_ENERGY_HOLIDAY], 0);
        ASSERT_EQ(ra->nights_on, 0);

        /* The night of the last day reaches into the next morning. */
        rows = run(s, cal, D(9, 2), D(9, 2));
        ASSERT_EQ(rows.r[0].after_ms[BBT_ENERGY_NIGHT], 60 * MIN);
        ASSERT_EQ(rows.r[0].nights_on, 1);
        ASSERT_EQ(rows.r[0].last_night, D(9, 2));

        /* Without a calendar the holiday is a school day and the 调休 Saturday a weekend. */
        rows = run(s, NULL, D(9, 4), D(9, 12));
        ASSERT_EQ(rows.r[0].after_ms[BBT_ENERGY_HOLIDAY], 0);
        ASSERT_EQ(rows.r[0].after_ms[BBT_ENERGY_WEEKEND], (120 + 60 + 60) * MIN);
        ASSERT_EQ(rows.r[0].school_ms, 60 * MIN);
        bbt_store_close(s);
        bbt_calendar_free(cal);
}

TEST(bad_arguments)
{
        struct bbt_store *s = open_store();
        struct bbt_energy_rules r = BBT_ENERGY_RULES_DEFAULT;
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct rows rows = { .n = 0 };

        /* An unbounded range is refused, not allocated. */
        ASSERT_EQ(bbt_energy_each(s, &r, &scope, row_cb, &rows), -EINVAL);
        scope.from_day = scope.to_day = D(9, 1);
        r.night_end_min = r.night_start_min;
        ASSERT_EQ(bbt_energy_each(s, &r, &scope, row_cb, &rows), -EINVAL);
        r = (struct bbt_energy_rules)BBT_ENERGY_RULES_DEFAULT;
        ASSERT_OK(bbt_energy_each(s, &r, &scope, row_cb, &rows));
        ASSERT_EQ(rows.n, 0);
        bbt_store_close(s);
}

/* ---- the energy report and the summary over the same scenario ---- */

static cJSON *report_json(struct bbt_store *s, const struct bbt_registry *reg, const struct bbt_calendar *cal,
                          const struct bbt_metric_settings *ms, const char *kind, enum bbt_report_scan scan)
{
        struct bbt_report_options o = {
                .kind = bbt_report_kind_find(kind), .from = D(9, 1), .to = D(9, 12),
                .format = bbt_renderer_find("json"), .chinese = true, .now_ms = at(D(9, 30), 12, 0), .scan = scan,
        };
        char *buf = NULL, err[256] = "";
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        cJSON *doc;

        ASSERT(f != NULL);
        if (bbt_reports_run(&o, s, reg, cal, ms, f, err, sizeof(err)) != 0)
                FAIL("%s: %s", kind, err);
        fclose(f);
        doc = cJSON_Parse(buf);
        ASSERT(doc != NULL);
        free(buf);
        return doc;
}

static double num(const cJSON *o, const char *key)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

        if (!cJSON_IsNumber(v))
                FAIL("%s: not a number", key);
        return v->valuedouble;
}

TEST(report_and_summary)
{
        struct bbt_calendar *cal = calendar();
        struct bbt_registry *reg;
        struct bbt_import_errors errs;
        struct bbt_metric_settings ms;
        struct bbt_rollup_config rc = { .margin_min = 30, .offset_min = 480 };
        struct bbt_aggregator_config cfg;
        char err[256];
        int64_t a, b;
        struct bbt_store *s = scenario(&a, &b);
        cJSON *doc, *row, *overall;

        ASSERT_OK(bbt_registry_new(&reg));
        LOAD_OK(bbt_registry_load_schools(reg,
                                          bbt_test_import_text("energy", "schools.csv",
                                                               "县区代码,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数\n"
                                                               "510107,石板镇," SCHOOL ",石板镇小学,小学,镇区,300\n"),
                                          &errs),
                errs);
        /* A1 is a board at 300 W (kind_watts), B1 of no kind (watts 250), C1 never reported. */
        LOAD_OK(bbt_registry_load_terminals(reg,
                                            bbt_test_import_text("energy", "terminals.csv",
                                                                 "学校代码,终端编号,教室,机型\n" SCHOOL ",A1,一年级(1)班,board\n" SCHOOL
                                                                 ",B1,一年级(2)班,\n" SCHOOL ",C1,一年级(3)班,projector\n"),
                                            &errs),
                errs);
        ASSERT_OK(bbt_aggregator_config_defaults(&cfg));
        ASSERT_OK(bbt_aggregator_config_set(&cfg, "energy.kind_watts", "board=300, projector=330", err, sizeof(err)));
        ASSERT_EQ(bbt_aggregator_config_set(&cfg, "energy.night_end", "23:00", err, sizeof(err)), -EINVAL);
        ASSERT_STR_CONTAINS(err, "[energy] night_end");
        ASSERT_OK(bbt_aggregator_config_set(&cfg, "energy.night_end", "06:00", err, sizeof(err)));
        {
                struct bbt_ingest_settings is;

                bbt_aggregator_config_settings(&cfg, &is);
                ms = is.metrics;
        }
        bbt_aggregator_config_free(&cfg);
        ASSERT_EQ(ms.watts.watts, 250);
        ASSERT_EQ(bbt_energy_watts_of(&ms.watts, "board"), 300);
        ASSERT_EQ(ms.night_start_min, 22 * 60);

        /* The summary reads the rollups (and their aggregates): cut them from the intervals. */
        rc.cal = cal;
        ASSERT_OK(bbt_store_begin(s));
        ASSERT_OK(bbt_rollup_rebuild(s, &rc));
        ASSERT_OK(bbt_store_commit(s));

        doc = report_json(s, reg, cal, &ms, "energy", BBT_REPORT_SCAN_AUTO);
        overall = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "objects"), "overall");
        ASSERT_EQ(num(overall, "terminals"), 3);
        ASSERT_DBL_NEAR(num(overall, "evening_hours"), 320 / 60.0, 1e-9);
        ASSERT_DBL_NEAR(num(overall, "night_hours"), 270 / 60.0, 1e-9);
        ASSERT_DBL_NEAR(num(overall, "weekend_hours"), 2, 1e-9);
        ASSERT_DBL_NEAR(num(overall, "holiday_hours"), 1, 1e-9);
        ASSERT_DBL_NEAR(num(overall, "after_hours"), 770 / 60.0, 1e-9);
        /* 770 min at 300 W = 3.85 kWh */
        ASSERT_DBL_NEAR(num(overall, "energy_kwh"), 3.85, 1e-9);
        ASSERT_EQ(num(overall, "nights_on"), 2);
        ASSERT_EQ(num(overall, "terminals_left_on"), 1);
        row = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "tables"),
                                                                   "terminals"),
                                 0);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(row, "terminal")->valuestring, "A1");
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(row, "kind")->valuestring, "board");
        ASSERT_EQ(num(row, "watts"), 300);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(row, "last_night_on")->valuestring, "2026-09-02");
        row = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "tables"),
                                                                   "terminals"),
                                 2);
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(row, "terminal")->valuestring, "C1");
        ASSERT_EQ(num(row, "watts"), 330);
        ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "after_hours")));
        ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(
                              cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "settings"),
                                                               "kind_watts"),
                              "value")
                              ->valuestring,
                      "board=300, projector=330");
        cJSON_Delete(doc);

        /* The summary gets the same hours from the day aggregates and from
         * every rollup; its energy is at the school's mean wattage,
         * (300 + 250 + 330) / 3 = 293.3 W. */
        for (int scan = BBT_REPORT_SCAN_ROWS; scan <= BBT_REPORT_SCAN_AGGREGATES; scan++) {
                doc = report_json(s, reg, cal, &ms, "summary", (enum bbt_report_scan)scan);
                overall = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "objects"),
                                                           "after_hours");
                ASSERT_DBL_NEAR(num(overall, "school_days_hours"), (320 + 270) / 60.0, 1e-9);
                ASSERT_DBL_NEAR(num(overall, "weekend_hours"), 2, 1e-9);
                ASSERT_DBL_NEAR(num(overall, "holiday_hours"), 1, 1e-9);
                ASSERT_DBL_NEAR(num(overall, "after_hours"), 770 / 60.0, 1e-9);
                ASSERT_DBL_NEAR(num(overall, "energy_kwh"), 770 / 60.0 * 880 / 3 / 1000, 1e-9);
                cJSON_Delete(doc);
        }
        bbt_store_close(s);
        bbt_registry_free(reg);
        bbt_calendar_free(cal);
}

/* ---- the simulated county: its truth, and before/after a power-off schedule ---- */

static int no_publish(void *u, const char *topic, const char *payload, size_t len)
{
        (void)u, (void)topic, (void)payload, (void)len;
        return 0;
}

struct sim_run {
        cJSON *truth;          /* the simulator's energy rows */
        int64_t after_ms;      /* the report's after-hours total ... */
        int64_t nights;        /* ... and nights left on */
        int64_t truth_after_ms;
        size_t compared;
};

static int sim_row_cb(void *u, const struct bbt_energy_terminal *t)
{
        struct sim_run *run = u;
        static const char *const keys[BBT_ENERGY__COUNT] = { "evening_hours", "night_hours", "weekend_hours",
                                                            "holiday_hours" };
        const cJSON *row;

        cJSON_ArrayForEach(row, run->truth)
        {
                if (strcmp(cJSON_GetObjectItemCaseSensitive(row, "school_code")->valuestring, t->school) != 0 ||
                    strcmp(cJSON_GetObjectItemCaseSensitive(row, "terminal")->valuestring, t->terminal) != 0)
                        continue;
                /* Exact: the truth's hours are whole milliseconds / 3 600 000. */
                for (int k = 0; k < BBT_ENERGY__COUNT; k++)
                        if (llround(num(row, keys[k]) * 3.6e6) != t->after_ms[k])
                                FAIL("%s/%s %s: report %lld ms, truth %.0f ms", t->school, t->terminal, keys[k],
                                     (long long)t->after_ms[k], num(row, keys[k]) * 3.6e6);
                ASSERT_EQ(num(row, "nights_on"), t->nights_on);
                run->after_ms += t->after_hours_ms;
                run->nights += t->nights_on;
                run->truth_after_ms += llround(num(row, "after_hours") * 3.6e6);
                run->compared++;
                return 0;
        }
        FAIL("%s/%s: not in the truth", t->school, t->terminal);
}

/* Builds the simulated week with O, ingests every message into a new store
 * and compares the after-hours figures with the simulator's truth. */
static struct sim_run sim_county(const struct sim_options *o)
{
        struct sim_scenario sc;
        struct bbt_registry *reg;
        struct bbt_calendar *cal;
        struct bbt_import_errors errs;
        struct bbt_ingest_settings set;
        struct bbt_ingest *in;
        struct bbt_store *store = open_store();
        struct bbt_energy_rules rules = BBT_ENERGY_RULES_DEFAULT;
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct sim_run run = { 0 };
        const char *root = bbt_test_tree_new("energy-sim");
        char path[1024], err[256], *text = NULL, topic[256];
        size_t size = 0;
        FILE *f;
        cJSON *truth;

        ASSERT_OK(sim_scenario_build(o, &sc));
        ASSERT_OK(sim_write_registry(&sc, root));
        ASSERT_OK(bbt_registry_new(&reg));
        ASSERT_OK(bbt_calendar_new(&cal));
        snprintf(path, sizeof(path), "%s/schools.csv", root);
        LOAD_OK(bbt_registry_load_schools(reg, path, &errs), errs);
        snprintf(path, sizeof(path), "%s/terminals.csv", root);
        LOAD_OK(bbt_registry_load_terminals(reg, path, &errs), errs);
        snprintf(path, sizeof(path), "%s/calendar.csv", root);
        LOAD_OK(bbt_calendar_load_days(cal, path, &errs), errs);
        snprintf(path, sizeof(path), "%s/bells.csv", root);
        LOAD_OK(bbt_calendar_load_bells(cal, path, &errs), errs);
        f = open_memstream(&text, &size);
        ASSERT(f != NULL);
        ASSERT_OK(sim_write_truth(&sc, f));
        fclose(f);
        truth = cJSON_Parse(text);
        free(text);
        ASSERT(truth != NULL);
        run.truth = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(truth, "tables"), "energy");
        ASSERT(cJSON_IsArray(run.truth));

        bbt_ingest_settings_default(&set);
        set.metrics.heartbeat_s = o->hb_interval_s;
        if (bbt_ingest_new(store, &set, reg, cal, no_publish, NULL, o->now_ms, &in, err, sizeof(err)) < 0)
                FAIL("ingest: %s", err);
        for (size_t i = 0; i < sc.n_terminals; i++) {
                const struct sim_terminal *t = &sc.terminals[i];

                for (size_t j = 0; j < t->n_msgs; j++) {
                        sim_topic(&sc, t, t->msgs[j].channel, topic, sizeof(topic));
                        bbt_ingest_message(in, topic, t->msgs[j].json, t->msgs[j].len,
                                           bbt_channel_retained(t->msgs[j].channel), o->now_ms);
                }
        }
        ASSERT_OK(bbt_ingest_flush(in));
        bbt_ingest_free(in);

        rules.cal = cal;
        scope.from_day = o->monday;
        scope.to_day = o->monday + 6;
        ASSERT_OK(bbt_energy_each(store, &rules, &scope, sim_row_cb, &run));
        ASSERT_EQ(run.after_ms, run.truth_after_ms);
        cJSON_Delete(truth);
        run.truth = NULL;
        bbt_store_close(store);
        bbt_registry_free(reg);
        bbt_calendar_free(cal);
        sim_scenario_free(&sc);
        return run;
}

TEST(sim_truth_and_power_off_schedule)
{
        struct sim_options o = { .county = "510199", .schools = 2, .terminals_per_school = 8, .seed = 11,
                                 .hb_interval_s = 900, .chunk_s = 900, .offset_min = 480, .history = true,
                                 .now_ms = 1795000000000LL, .left_on_pct = 40 };
        struct sim_run before, after;

        o.monday = bbt_day_from_ymd(2026, 11, 23);
        before = sim_county(&o);
        o.power_off_min = 18 * 60;
        after = sim_county(&o);
        ASSERT_GT(before.compared, 0);
        ASSERT_EQ(after.compared, before.compared);
        /* Boards left on: whole nights and the weekend. With the schedule
         * they are off at 18:00, and no night is left on. */
        ASSERT_GT(before.nights, 0);
        ASSERT_EQ(after.nights, 0);
        ASSERT_LT(after.after_ms * 5, before.after_ms);
        printf("after hours: %.1f h before, %.1f h with power-off at 18:00 (%.1f kWh and %.1f kWh at 250 W)\n",
               (double)before.after_ms / 3.6e6, (double)after.after_ms / 3.6e6, bbt_energy_kwh(before.after_ms, 250),
               bbt_energy_kwh(after.after_ms, 250));
}
