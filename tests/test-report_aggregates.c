/* Reports from the store's day aggregates are byte for byte the reports from every day rollup: a simulated county, every kind, stream format and language (the usage record over whole weeks), ragged ranges, own calendars, after a rebuild. */
/* bbt-test: label=unit timeout=300 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator_config.h"
#include "bbt/log.h"
#include "calendar.h"
#include "dates.h"
#include "fixture-tree.h"
#include "ingest.h"
#include "registry.h"
#include "reports.h"
#include "rollup.h"
#include "scenario.h"
#include "store.h"
#include "test.h"

#define COUNTY "510199"
#define DAY_MS 86400000LL

static struct {
        const char *dir;
        struct sim_scenario sim;
        int32_t monday;
        struct bbt_registry *reg;
        struct bbt_calendar *cal;  /* what the ingest cut the rollups with */
        struct bbt_store *store;
        struct bbt_ingest *in;
        struct bbt_metric_settings set;
        int64_t now_ms;
        int compared;              /* reports compared, for the record */
} W;

static unsigned long long rng = 7;

static int64_t rnd(int64_t lo, int64_t hi)
{
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        return lo + (int64_t)((rng >> 33) % (unsigned long long)(hi - lo + 1));
}

static void load(struct bbt_calendar **cal, const char *days_csv)
{
        struct bbt_import_errors errs;
        char path[600];

        ASSERT_OK(bbt_calendar_new(cal));
        if (bbt_calendar_load_days(*cal, days_csv, &errs) < 0)
                FAIL("%s: %s", days_csv, errs.msg[0]);
        snprintf(path, sizeof(path), "%s/bells.csv", W.dir);
        if (bbt_calendar_load_bells(*cal, path, &errs) < 0)
                FAIL("bells: %s", errs.msg[0]);
}

static void date_of(int32_t day, char *buf, size_t size)
{
        bbt_day_format(day, buf, size);
}

/* The simulator's calendar, plus a holiday of school 1 of its own and one of
 * the county's in the weeks before the simulated one: written to NAME. */
static const char *calendar_with(const char *name, bool extra_holidays)
{
        static char path[600];
        char src[600], line[512], a[16], b[16];
        FILE *in, *out;

        snprintf(src, sizeof(src), "%s/calendar.csv", W.dir);
        snprintf(path, sizeof(path), "%s/%s", W.dir, name);
        in = fopen(src, "r");
        out = fopen(path, "w");
        ASSERT(in && out);
        while (fgets(line, sizeof(line), in))
                fputs(line, out);
        if (extra_holidays) {
                date_of(W.monday - 19, a, sizeof(a));
                date_of(W.monday - 12, b, sizeof(b));
                fprintf(out, "%s,假期,%s,%s,研学旅行\r\n", W.sim.schools[1].code, a, b);
                date_of(W.monday - 40, a, sizeof(a));
                date_of(W.monday - 38, b, sizeof(b));
                fprintf(out, "%s,节假日,%s,%s,县运动会\r\n", COUNTY, a, b);
        }
        fclose(in);
        ASSERT_EQ(fclose(out), 0);
        return path;
}

/* A terminal seen on the wire only, in another county, with a school code of this one's. */
static void stray_terminal(void)
{
        struct bbt_store_terminal stray = { 0 };

        snprintf(stray.county, sizeof(stray.county), "510198");
        snprintf(stray.school, sizeof(stray.school), "%s", W.sim.schools[0].code);
        snprintf(stray.terminal, sizeof(stray.terminal), "X1");
        stray.first_seq = stray.high_seq = -1;
        stray.last_seen_ms = W.now_ms - 3 * DAY_MS;
        ASSERT_OK(bbt_store_begin(W.store));
        ASSERT_OK(bbt_store_terminal_insert(W.store, &stray));
        ASSERT_OK(bbt_store_commit(W.store));
}

struct ids {
        int64_t id[512];
        int periods[512]; /* of the terminal's school's bells */
        size_t n;
};

static int store_ids_cb(void *u, const struct bbt_store_terminal *t)
{
        struct ids *ids = u;

        ASSERT_LT(ids->n, 512);
        ids->id[ids->n] = t->id;
        ids->periods[ids->n++] = bbt_calendar_bells(W.cal, t->county, t->school)->n;
        return 0;
}

/* Day rollups put straight into the store, as the ingest's batches add them:
 * for every terminal in the store (some days not at all, some twice), over
 * the nine weeks before the simulated one, weekends included. */
static void add_random_days(void)
{
        static struct ids ids;

        ASSERT_OK(bbt_store_terminals_each(W.store, store_ids_cb, &ids));
        ASSERT_OK(bbt_store_begin(W.store));
        for (size_t i = 0; i < ids.n; i++)
                for (int32_t day = W.monday - 63; day < W.monday; day++) {
                        struct bbt_day_rollup d = { .day = day };
                        int adds = (int)rnd(0, 9) < 2 ? 0 : (int)rnd(1, 2);

                        for (int k = 0; k < adds; k++) {
                                int64_t on = rnd(0, 8) == 0 ? 0 : rnd(60000, 8 * 3600000LL);

                                d.on_ms = on;
                                d.on_all_ms = on + rnd(0, 3600000);
                                /* Often around the used-day threshold (10 min). */
                                d.active_ms = on ? rnd(0, 4) == 0 ? rnd(0, 1200000) : on * rnd(5, 80) / 100 : 0;
                                d.interactive_ms = d.active_ms * rnd(0, 60) / 100;
                                d.hb_count = d.on_all_ms / 60000 + rnd(-5, 8);
                                for (int q = 0; q < BBT_PERIODS_MAX; q++)
                                        /* Cut with its bells: no time past its last period. */
                                        d.period_active_ms[q] = q < ids.periods[i] && rnd(0, 2) ? rnd(0, 1500000) : 0;
                                ASSERT_OK(bbt_store_day_add(W.store, ids.id[i], &d));
                        }
                }
        ASSERT_OK(bbt_store_commit(W.store));
}

static void setup(void)
{
        struct sim_options o = { .county = COUNTY, .schools = 6, .terminals_per_school = 8, .seed = 11,
                                 .hb_interval_s = 900, .chunk_s = 900, .offset_min = 480, .history = true };
        struct bbt_import_errors errs;
        struct bbt_ingest_settings set;
        char path[600], err[256];

        bbt_log_set_level(3);
        W.dir = bbt_test_tree_new("report-aggregates");
        o.monday = W.monday = bbt_day_from_ymd(2026, 11, 23);
        W.now_ms = bbt_day_start_ms(W.monday + 7, 480) + 8 * 3600000LL;
        o.now_ms = W.now_ms;
        ASSERT_OK(sim_scenario_build(&o, &W.sim));
        ASSERT_OK(sim_write_registry(&W.sim, W.dir));
        ASSERT(W.sim.schools[3].own_bells);
        ASSERT_OK(bbt_registry_new(&W.reg));
        snprintf(path, sizeof(path), "%s/schools.csv", W.dir);
        if (bbt_registry_load_schools(W.reg, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        snprintf(path, sizeof(path), "%s/terminals.csv", W.dir);
        if (bbt_registry_load_terminals(W.reg, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        load(&W.cal, calendar_with("calendar-ingest.csv", true));
        bbt_metric_settings_default(&W.set);

        snprintf(path, sizeof(path), "%s/bbt.db", W.dir);
        ASSERT_OK(bbt_store_open(path, false, &W.store, err, sizeof(err)));
        bbt_ingest_settings_default(&set);
        if (bbt_ingest_new(W.store, &set, W.reg, W.cal, NULL, NULL, W.now_ms, &W.in, err, sizeof(err)) != 0)
                FAIL("bbt_ingest_new: %s", err);
        /* The simulated week through the ingest, terminal by terminal. */
        for (size_t i = 0; i < W.sim.n_terminals; i++) {
                const struct sim_terminal *t = &W.sim.terminals[i];

                for (size_t j = 0; j < t->n_msgs; j++) {
                        char topic[256];

                        sim_topic(&W.sim, t, t->msgs[j].channel, topic, sizeof(topic));
                        bbt_ingest_message(W.in, topic, t->msgs[j].json, t->msgs[j].len, false,
                                           W.now_ms - 60000 + (int64_t)j);
                }
        }
        ASSERT_OK(bbt_ingest_flush(W.in));
        stray_terminal();
        add_random_days();
}

static void teardown(void)
{
        bbt_ingest_free(W.in);
        bbt_store_close(W.store);
        bbt_registry_free(W.reg);
        bbt_calendar_free(W.cal);
        sim_scenario_free(&W.sim);
}

/* Report KIND as format FMT into a string (caller frees), or NULL with *RET the error. */
static char *report(const struct bbt_report_kind *k, const struct bbt_renderer *fmt, bool chinese,
                    const char *school, int32_t from, int32_t to, enum bbt_report_scan scan,
                    const struct bbt_calendar *cal, const struct bbt_metric_settings *s, int *ret)
{
        struct bbt_report_options o = {
                .kind = k, .county = NULL, .school = school, .from = from, .to = to, .format = fmt,
                .chinese = chinese, .now_ms = W.now_ms, .store_label = "test.db", .scan = scan,
        };
        char *buf = NULL, err[256] = "";
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ASSERT(f != NULL);
        *ret = bbt_reports_run(&o, W.store, W.reg, cal, s, f, err, sizeof(err));
        fclose(f);
        if (*ret != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* Every kind, format and language over FROM..TO: the aggregates (where the
 * kind can use them: AGGREGATES must work) give the row scan's bytes. Kinds
 * for one school or one week (the usage record) where the range is one; the
 * stream formats (an Excel workbook is written from the same document, which
 * the JSON shows cell by cell). */
static void same_everywhere(const char *school, int32_t from, int32_t to, const struct bbt_calendar *cal)
{
        const struct bbt_report_kind *k;
        const struct bbt_renderer *fmt;
        bool week = bbt_day_weekday(from) == 1 && to == from + 6;

        for (size_t i = 0; (k = bbt_report_kind_at(i)) != NULL; i++)
                for (size_t f = 0; (fmt = bbt_renderer_at(f)) != NULL; f++)
                        for (int zh = 0; zh < 2; zh++) {
                                if (((k->needs & BBT_NEEDS_SCHOOL) && !school) ||
                                    ((k->needs & BBT_NEEDS_WEEK) && !week) || !fmt->render)
                                        continue;
                                bool agg = (k->needs & BBT_NEEDS_FIGURES) && !(k->needs & BBT_NEEDS_TERMINAL_RATES);
                                int r1, r2;
                                char *rows = report(k, fmt, zh, school, from, to, BBT_REPORT_SCAN_ROWS, cal, &W.set,
                                                    &r1);
                                char *fast = report(k, fmt, zh, school, from, to,
                                                    agg ? BBT_REPORT_SCAN_AGGREGATES : BBT_REPORT_SCAN_AUTO, cal,
                                                    &W.set, &r2);

                                if (r1 != 0 || r2 != 0)
                                        FAIL("%s as %s: %d %d", k->name, fmt->name, r1, r2);
                                if (strcmp(rows, fast) != 0)
                                        FAIL("%s as %s (%s, %s, days %d..%d): the aggregates differ from the row "
                                             "scan:\n--- rows\n%s\n--- aggregates\n%s",
                                             k->name, fmt->name, zh ? "zh" : "en", school ? school : "county",
                                             (int)from, (int)to, rows, fast);
                                W.compared++;
                                free(rows);
                                free(fast);
                        }
}

/* The ranges: the simulated week; whole and ragged (Tuesday .. Thursday)
 * spans over the weeks before it; a day; a range ending in the holiday of a
 * school's own calendar; one before any data. */
static void same_over_ranges(const struct bbt_calendar *cal)
{
        const int32_t m = W.monday;
        const int32_t ranges[][2] = {
                { m, m + 6 },      { m - 63, m + 6 }, { m - 62, m + 3 }, { m - 33, m - 17 },
                { m - 15, m - 15 }, { m - 40, m + 2 }, { m - 20, m - 13 }, { m - 200, m - 150 },
        };

        for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
                same_everywhere(NULL, ranges[i][0], ranges[i][1], cal);
        /* One school: the one with its own bells, and the one with its own
         * holidays; whole weeks too, for the usage record. */
        same_everywhere(W.sim.schools[3].code, m - 30, m + 4, cal);
        same_everywhere(W.sim.schools[1].code, m - 25, m - 10, cal);
        same_everywhere(W.sim.schools[3].code, m, m + 6, cal);
        same_everywhere(W.sim.schools[1].code, m - 14, m - 8, cal);
}

TEST(same_as_row_scan)
{
        const struct bbt_renderer *json = bbt_renderer_find("json");
        char *doc;
        int r;

        setup();
        same_over_ranges(W.cal);
        /* Not vacuous: the weekly rule has weeks met and missed, and terminals below it. */
        doc = report(bbt_report_kind_find("summary"), json, false, NULL, W.monday - 62, W.monday + 3,
                     BBT_REPORT_SCAN_AGGREGATES, W.cal, &W.set, &r);
        ASSERT(doc && strstr(doc, "\"weekly_rule_rate\":0.") != NULL);
        free(doc);
        doc = report(bbt_report_kind_find("idle"), json, false, NULL, W.monday - 62, W.monday + 3,
                     BBT_REPORT_SCAN_AGGREGATES, W.cal, &W.set, &r);
        ASSERT(doc && strstr(doc, "\"weeks_below\":1") != NULL);
        free(doc);
        /* (10 ranges × 8 kinds + 2 school weeks × the record) × 3 formats × 2 languages */
        ASSERT_GE(W.compared, 492);
        teardown();
}

/* The calendar re-imported after the ingest (holidays moved): the aggregates
 * bake in no calendar, so they still give the row scan's figures. */
TEST(same_after_calendar_change)
{
        struct bbt_calendar *other;

        setup();
        load(&other, calendar_with("calendar-later.csv", false));
        same_over_ranges(other);
        bbt_calendar_free(other);
        teardown();
}

/* After the rollups are rebuilt from the stored intervals (the directly
 * added days lose their usage, the heartbeats stay), the aggregates follow. */
TEST(same_after_rebuild)
{
        setup();
        ASSERT_OK(bbt_ingest_rebuild_rollups(W.in));
        same_over_ranges(W.cal);
        teardown();
}

/* Where the aggregates do not fit the report, it scans the rows: other
 * thresholds (until the aggregator recounts them), other bells, and the
 * terminals report, which needs each terminal's rates. */
TEST(falls_back_to_rows)
{
        const struct bbt_report_kind *summary = bbt_report_kind_find("summary");
        const struct bbt_renderer *json = bbt_renderer_find("json");
        struct bbt_metric_settings other;
        struct bbt_calendar *bells;
        struct bbt_day_rule rule;
        char *a, *b, path[600];
        struct bbt_import_errors errs;
        FILE *f;
        int r;

        setup();
        other = W.set;
        other.used_day_min = 20;
        ASSERT_EQ(report(summary, json, true, NULL, W.monday - 30, W.monday + 6, BBT_REPORT_SCAN_AGGREGATES, W.cal,
                         &other, &r), NULL);
        ASSERT_EQ(r, -ESTALE);
        a = report(summary, json, true, NULL, W.monday - 30, W.monday + 6, BBT_REPORT_SCAN_AUTO, W.cal, &other, &r);
        b = report(summary, json, true, NULL, W.monday - 30, W.monday + 6, BBT_REPORT_SCAN_ROWS, W.cal, &other, &r);
        ASSERT(a && b);
        ASSERT_STR_EQ(a, b);
        free(a);
        free(b);
        /* Recounted under the new thresholds, they fit again. */
        bbt_day_rule_of(&other, &rule);
        ASSERT_OK(bbt_store_begin(W.store));
        ASSERT_OK(bbt_store_day_rule_set(W.store, &rule));
        ASSERT_OK(bbt_store_commit(W.store));
        W.set = other;
        same_everywhere(NULL, W.monday - 45, W.monday + 3, W.cal);

        /* Other bells than the rollups were cut with. */
        snprintf(path, sizeof(path), "%s/bells.csv", W.dir);
        f = fopen(path, "a");
        ASSERT(f != NULL);
        fprintf(f, "%s,1,08:00,08:40\r\n", W.sim.schools[0].code);
        fclose(f);
        load(&bells, calendar_with("calendar-ingest.csv", true));
        ASSERT_EQ(report(summary, json, true, NULL, W.monday, W.monday + 6, BBT_REPORT_SCAN_AGGREGATES, bells, &W.set,
                         &r), NULL);
        ASSERT_EQ(r, -ESTALE);
        bbt_calendar_free(bells);

        ASSERT_EQ(report(bbt_report_kind_find("terminals"), json, true, NULL, W.monday, W.monday + 6,
                         BBT_REPORT_SCAN_AGGREGATES, W.cal, &W.set, &r), NULL);
        ASSERT_EQ(r, -ESTALE);
        (void)errs;
        teardown();
}
