/* bench-county: a generated county's school year (bench-county.h). */
#include "bench-county.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator_config.h"
#include "bench-util.h"
#include "calendar.h"
#include "dates.h"
#include "indicators.h"
#include "rollup.h"
#include "store.h"

#define COUNTY BENCH_COUNTY
#define OFFSET_MIN 480
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL

struct bench_county_opts bench_county = { .schools = 800, .per_school = 25, .seed = 1, .schools_per_tx = 1 };

static unsigned long long rng_state;

/* Restarts the generator for one thing of the store: school, terminal or
 * terminal-day (WHAT, INDEX, DAY), so that a value does not depend on the
 * order the store is built in. */
static void rng_at(int what, long index, int32_t day)
{
        unsigned long long z = (unsigned long long)bench_county.seed * 0x9e3779b97f4a7c15ull ^
                               (unsigned long long)what << 56 ^ (unsigned long long)index << 24 ^ (uint32_t)day;

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; /* splitmix64's finaliser */
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        rng_state = z ^ (z >> 31);
}

static uint32_t rnd(void)
{
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        return (uint32_t)(rng_state >> 33);
}

/* Uniform in [lo, hi]. */
static int64_t uni(int64_t lo, int64_t hi)
{
        return lo + (int64_t)(((uint64_t)rnd() << 31 ^ rnd()) % (uint64_t)(hi - lo + 1));
}


FILE *bench_create(const char *name, char *path, size_t size)
{
        FILE *f;

        snprintf(path, size, "%s/%s", bench_tmpdir, name);
        f = fopen(path, "we");
        if (!f)
                bench_die("%s: %s", path, strerror(errno));
        return f;
}

void bench_finish(FILE *f, const char *path)
{
        if (ferror(f) || fclose(f) != 0)
                bench_die("%s: write failed", path);
}


const char *bench_county_school(int s, char *buf, size_t size)
{
        snprintf(buf, size, "51010760%02d%02d", s / 100, s % 100);
        return buf;
}


void bench_county_write_registry(char *schools, char *terminals, size_t size)
{
        static const char *const towns[] = { "城关镇", "东街街道", "西街街道", "南山镇", "北坝镇", "河口镇",
                                              "石桥乡", "清水乡", "白云乡", "红岩乡", "青龙镇", "金沙乡" };
        FILE *f = bench_create("schools.csv", schools, size);
        char code[32];

        rng_state = bench_county.seed;

        fputs("县区代码,县区,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数,教室数,小学部学生数,初中部学生数\n", f);
        for (int s = 0; s < bench_county.schools; s++) {
                unsigned ty = rnd() % 100, ar = rnd() % 100;
                const char *type = ty < 60 ? "小学" : ty < 85 ? "初中" : "九年一贯制";
                const char *area = ar < 30 ? "城区" : ar < 65 ? "镇区" : "乡村";
                long students = (long)uni(150, 2500);

                fprintf(f, "%s,示范县,%s,%s,示范县第%d%s,%s,%s,%ld,%d,", COUNTY, towns[s % 12],
                        bench_county_school(s, code, sizeof(code)), s + 1, ty < 60 ? "小学" : ty < 85 ? "中学" : "学校", type,
                        area, students, bench_county.per_school);
                if (ty >= 85)
                        fprintf(f, "%ld,%ld\n", students * 2 / 3, students - students * 2 / 3);
                else
                        fputs(",\n", f);
        }
        bench_finish(f, schools);
        f = bench_create("terminals.csv", terminals, size);
        fputs("学校代码,终端编号,教室,应配外设\n", f);
        for (int s = 0; s < bench_county.schools; s++)
                for (int t = 0; t < bench_county.per_school; t++)
                        fprintf(f, "%s,T%02d,%d年级(%d)班,展台、音箱、触摸框\n", bench_county_school(s, code, sizeof(code)),
                                t + 1, t / 4 + 1, t % 4 + 1);
        bench_finish(f, terminals);
}


void bench_county_write_calendar(char *path, size_t size)
{
        FILE *f = bench_create("calendar.csv", path, size);

        fputs("范围,类型,开始日期,结束日期,名称\n"
              COUNTY ",学期,2025-09-01,2026-01-16,2025年秋季学期\n"
              COUNTY ",节假日,2025-10-01,2025-10-08,国庆节、中秋节\n"
              COUNTY ",调休,2025-09-28,,国庆调休\n"
              COUNTY ",调休,2025-10-11,,国庆调休\n"
              COUNTY ",节假日,2026-01-01,2026-01-03,元旦\n"
              COUNTY ",学期,2026-03-02,2026-07-10,2026年春季学期\n"
              COUNTY ",节假日,2026-04-04,2026-04-06,清明节\n"
              COUNTY ",节假日,2026-05-01,2026-05-05,劳动节\n"
              COUNTY ",调休,2026-05-09,,劳动节调休\n"
              COUNTY ",节假日,2026-06-19,2026-06-21,端午节\n",
              f);
        bench_finish(f, path);
}


/* One terminal's plausible day. */
static void make_day(struct bbt_day_rollup *d, int32_t day, int quality)
{
        memset(d, 0, sizeof(*d));
        d->day = day;
        if ((int)(rnd() % 100) >= quality) {
                d->hb_count = 0; /* not switched on */
                return;
        }
        d->on_ms = uni(2 * HOUR_MS, 9 * HOUR_MS);
        d->on_all_ms = d->on_ms + uni(0, HOUR_MS);
        /* Some days on but hardly used (under used_day_min), most used for a while. */
        d->active_ms = rnd() % 100 < 12 ? uni(0, 9 * MIN_MS) : d->on_ms * (int64_t)uni(10, 80) / 100;
        d->interactive_ms = d->active_ms * (int64_t)uni(10, 50) / 100;
        d->hb_count = d->on_all_ms / MIN_MS - uni(0, 3);
        for (int k = 0; k < 8; k++)
                if (rnd() % 100 < 70)
                        d->period_active_ms[k] = uni(0, 45 * MIN_MS) * d->active_ms / d->on_ms;
        /* The history columns, as the ingest keeps them: heard from about
         * 07:30 for the day's on-time, active until some time before the end. */
        d->first_msg_ms = (int64_t)day * 86400000 - OFFSET_MIN * MIN_MS + 7 * HOUR_MS + uni(20 * MIN_MS, 50 * MIN_MS);
        d->last_msg_ms = d->first_msg_ms + d->on_all_ms;
        if (d->active_ms > 0)
                d->last_active_ms = d->first_msg_ms + uni(d->active_ms, d->on_ms);
}


/* Terminal T of school SC (code CODE) as the store knows it at the end of the year (but its seqs). */
static void make_terminal(struct bbt_store_terminal *row, int sc, int t, const char *code, int32_t from, int64_t end_ms)
{
        rng_at(1, (long)sc * bench_county.per_school + t, 0);
        memset(row, 0, sizeof(*row));
        snprintf(row->county, sizeof(row->county), "%s", COUNTY);
        snprintf(row->school, sizeof(row->school), "%s", code);
        snprintf(row->terminal, sizeof(row->terminal), "T%02d", t + 1);
        row->first_seq = 1;
        row->boot = 212;
        row->inventory_seq = 1;
        row->online = true;
        row->first_seen_ms = ((int64_t)from * 86400 + 8 * 3600) * 1000 - OFFSET_MIN * MIN_MS;
        row->last_seen_ms = row->online_since_ms = end_ms - uni(0, HOUR_MS);
        snprintf(row->version, sizeof(row->version), "0.1.0");
        snprintf(row->hostname, sizeof(row->hostname), "bbt-%s-t%02d", code, t + 1);
        snprintf(row->os, sizeof(row->os), "Debian GNU/Linux 12 (bookworm)");
        snprintf(row->machine_id, sizeof(row->machine_id), "%032x", (unsigned)(sc * 100 + t));
        snprintf(row->last_hb, sizeof(row->last_hb), "{\"ts\":%" PRId64 ",\"state\":\"standby\"}",
                 row->last_seen_ms);
}

/* About 3 % of terminals: an open fault. */
static void maybe_fault(struct bbt_store *s, long terminal, const struct bbt_store_terminal *row, int64_t end_ms,
                        struct bench_county_built *b)
{
        rng_at(2, terminal, 0);
        if (rnd() % 100 < 3) {
                struct bbt_store_fault f = { .terminal_id = row->id, .severity = BBT_SEVERITY_WARNING,
                                             .raised_ms = end_ms - uni(HOUR_MS, 30 * 24 * HOUR_MS) };

                snprintf(f.code, sizeof(f.code), "disk_low");
                snprintf(f.source, sizeof(f.source), "agent");
                snprintf(f.detail, sizeof(f.detail), "root file system 96%% full");
                if (bbt_store_fault_raise(s, &f) < 0)
                        bench_die("store: %s", bbt_store_error(s));
                b->faults++;
        }
}

/* How often school SC switches its terminals on, in percent of days. */
static int school_quality(int sc)
{
        rng_at(3, sc, 0);
        return 70 + (int)(rnd() % 28);
}

static void progress(const char *unit, long done, long all, double t0)
{
        if (bench_county.progress && done * 10 / all != (done - 1) * 10 / all)
                fprintf(stderr, "%s: %s: %ld of %ld %s stored (%.0f s)\n", bench_prog, bench_county.progress, done,
                        all, unit, bench_now() - t0);
}

/* The year a school at a time: every day of a terminal, then the next. */
static void build_by_school(struct bbt_store *s, const bool *school_day, int32_t from, int32_t to, int64_t end_ms,
                            struct bench_county_built *b, double t0)
{
        char code[32];

        for (int sc = 0; sc < bench_county.schools; sc++) {
                int quality = school_quality(sc);

                bench_check_signal();
                bench_county_school(sc, code, sizeof(code));
                if (sc % bench_county.schools_per_tx == 0 && bbt_store_begin(s) < 0)
                        bench_die("store: %s", bbt_store_error(s));
                for (int t = 0; t < bench_county.per_school; t++) {
                        struct bbt_store_terminal row;
                        int64_t seq = 0;

                        make_terminal(&row, sc, t, code, from, end_ms);
                        if (bbt_store_terminal_insert(s, &row) < 0)
                                bench_die("store: %s", bbt_store_error(s));
                        for (int32_t d = from; d <= to; d++) {
                                struct bbt_day_rollup dr;

                                if (!school_day[d - from])
                                        continue;
                                rng_at(4, (long)sc * bench_county.per_school + t, d);
                                make_day(&dr, d, quality);
                                seq += dr.hb_count + dr.on_ms / (5 * MIN_MS);
                                if (bbt_store_day_add(s, row.id, &dr) < 0)
                                        bench_die("store: %s", bbt_store_error(s));
                                b->terminal_days++;
                        }
                        row.high_seq = seq;
                        row.received = seq;
                        if (bbt_store_terminal_update(s, &row) < 0)
                                bench_die("store: %s", bbt_store_error(s));
                        maybe_fault(s, (long)sc * bench_county.per_school + t, &row, end_ms, b);
                }
                if ((sc + 1) % bench_county.schools_per_tx == 0 || sc + 1 == bench_county.schools) {
                        if (bbt_store_commit(s) < 0)
                                bench_die("store: %s", bbt_store_error(s));
                }
                progress("schools", sc + 1, bench_county.schools, t0);
        }
}

/* The year as ingest writes it: the terminals, then a transaction a day
 * over every terminal, then the terminals' seqs and faults. */
static void build_by_day(struct bbt_store *s, const bool *school_day, int32_t from, int32_t to, int64_t end_ms,
                         struct bench_county_built *b, double t0)
{
        size_t n = (size_t)bench_county.schools * (size_t)bench_county.per_school;
        struct bbt_store_terminal *rows = calloc(n, sizeof(*rows));
        int *quality = calloc((size_t)bench_county.schools, sizeof(*quality));
        char code[32];

        if (!rows || !quality)
                bench_die("out of memory");
        if (bbt_store_begin(s) < 0)
                bench_die("store: %s", bbt_store_error(s));
        for (int sc = 0; sc < bench_county.schools; sc++) {
                quality[sc] = school_quality(sc);
                bench_county_school(sc, code, sizeof(code));
                for (int t = 0; t < bench_county.per_school; t++) {
                        struct bbt_store_terminal *row = &rows[(size_t)sc * (size_t)bench_county.per_school + (size_t)t];

                        make_terminal(row, sc, t, code, from, end_ms);
                        if (bbt_store_terminal_insert(s, row) < 0)
                                bench_die("store: %s", bbt_store_error(s));
                }
        }
        if (bbt_store_commit(s) < 0)
                bench_die("store: %s", bbt_store_error(s));
        for (int32_t d = from; d <= to; d++) {
                if (!school_day[d - from])
                        continue;
                bench_check_signal();
                if (bbt_store_begin(s) < 0)
                        bench_die("store: %s", bbt_store_error(s));
                for (size_t i = 0; i < n; i++) {
                        struct bbt_day_rollup dr;

                        rng_at(4, (long)i, d);
                        make_day(&dr, d, quality[i / (size_t)bench_county.per_school]);
                        rows[i].high_seq += dr.hb_count + dr.on_ms / (5 * MIN_MS);
                        if (bbt_store_day_add(s, rows[i].id, &dr) < 0)
                                bench_die("store: %s", bbt_store_error(s));
                        b->terminal_days++;
                }
                if (bbt_store_commit(s) < 0)
                        bench_die("store: %s", bbt_store_error(s));
                progress("days", b->terminal_days / (long)n, b->school_days, t0);
        }
        if (bbt_store_begin(s) < 0)
                bench_die("store: %s", bbt_store_error(s));
        for (size_t i = 0; i < n; i++) {
                rows[i].received = rows[i].high_seq;
                if (bbt_store_terminal_update(s, &rows[i]) < 0)
                        bench_die("store: %s", bbt_store_error(s));
                maybe_fault(s, (long)i, &rows[i], end_ms, b);
        }
        if (bbt_store_commit(s) < 0)
                bench_die("store: %s", bbt_store_error(s));
        free(rows);
        free(quality);
}


struct bench_county_built bench_county_build_store(const char *path, const char *calendar_path, int32_t from,
                                                   int32_t to)
{
        struct bbt_import_errors *errs = calloc(1, sizeof(*errs));
        struct bbt_calendar *cal = NULL;
        struct bbt_store *s = NULL;
        struct bench_county_built b = { 0 };
        char err[512];
        int64_t end_ms = ((int64_t)to * 86400 + 17 * 3600) * 1000 - OFFSET_MIN * MIN_MS;
        double t0 = bench_now(), c0 = bench_cpu_self();
        bool *school_day;
        int r;

        if (!errs || bbt_calendar_new(&cal) < 0)
                bench_die("out of memory");
        if (bbt_calendar_load_days(cal, calendar_path, errs) < 0)
                bench_die("calendar: %s", errs->n_kept ? errs->msg[0] : "cannot load");
        school_day = calloc((size_t)(to - from + 1), sizeof(*school_day));
        for (int32_t d = from; d <= to; d++)
                if ((school_day[d - from] = bbt_calendar_is_school_day(cal, COUNTY, NULL, d)))
                        b.school_days++;
        r = bbt_store_open(path, false, &s, err, sizeof(err));
        if (r < 0)
                bench_die("store: %s", err);
        if (bench_county.by_day)
                build_by_day(s, school_day, from, to, end_ms, &b, t0);
        else
                build_by_school(s, school_day, from, to, end_ms, &b, t0);
        {
                /* What bbt-aggregator records with the default settings: the
                 * rules the rollups were cut with, the day rule. */
                struct bbt_metric_settings m;
                struct bbt_rollup_config rc;
                struct bbt_day_rule rule;

                bbt_metric_settings_default(&m);
                rc = (struct bbt_rollup_config){ .cal = cal, .margin_min = m.margin_min, .offset_min = m.offset_min };
                bbt_day_rule_of(&m, &rule);
                if (bbt_store_begin(s) < 0 || bbt_rollup_config_record(s, &rc) < 0 ||
                    bbt_store_day_rule_set(s, &rule) < 0 || bbt_store_commit(s) < 0)
                        bench_die("store: %s", bbt_store_error(s));
        }
        bbt_store_close(s);
        bbt_calendar_free(cal);
        free(school_day);
        free(errs);
        b.secs = bench_now() - t0;
        b.cpu = bench_cpu_self() - c0;
        return b;
}

