/* report-bench: how long bbt-report summary, schools, balance and idle take on a county's school year,
 * from the store's day aggregates and from every day rollup (the row scan), in the same run.
 *
 * In a temporary directory it writes the registry of a county (--schools
 * schools × --per-school terminals; 800 × 25 = 20,000 by default), a calendar
 * (two terms in 2025-09-01..2026-07-10 with the national holidays and their
 * make-up days: 185 school days) and a configuration naming them; then builds
 * the store directly through the store ops: one terminal row per terminal and,
 * for every terminal and school day, one day rollup (day_add, which keeps the
 * day aggregates) with seeded random but plausible values (about 92 % of
 * terminal-days powered, 2–9 h on, a share of it active, the eight periods'
 * active time, the heartbeats), one transaction per school; a few open
 * faults; the rollup rules and day rule bbt-aggregator would record. Then it
 * runs, for each report, bbt-report REPORT --from --to over the year with the
 * output to a file, once per path to warm the page cache and then --runs
 * times per path, the two paths alternating (BBT_REPORT_SCAN=aggregates and
 * =rows, the internal switch of reports.h): wall time (CLOCK_MONOTONIC around
 * fork, exec and wait) and CPU time (user + sys of the child, wait4). It
 * prints the medians, the ratio of the row scan to the aggregates, whether
 * the two outputs are the same bytes (but for the generation time), the
 * store's size on disk, and a hyperfine command line to repeat the timing.
 *
 * Exit status: 0 measured (the verdict is printed), 1 something failed (or
 * the two paths' outputs differ), 2 bad usage. SIGINT/SIGTERM/SIGHUP: the
 * running bbt-report is stopped and the temporary directory removed. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aggregator_config.h"
#include "calendar.h"
#include "bbt/base.h"
#include "dates.h"
#include "indicators.h"
#include "registry.h"
#include "bench-util.h"
#include "store.h"

#ifndef BBT_REPORT_PATH
#define BBT_REPORT_PATH "bbt-report"
#endif

#define COUNTY "510107"
#define OFFSET_MIN 480
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL

static struct {
        int schools, per_school, runs;
        unsigned seed;
        const char *from, *to, *report;
} opt = {
        .schools = 800,
        .per_school = 25,
        .runs = 5,
        .seed = 1,
        .from = "2025-09-01",
        .to = "2026-07-10",
        .report = BBT_REPORT_PATH,
};

static pid_t child = -1;

/* bench_die()'s hook: stop the report being timed, remove the directory. */
static void cleanup(void)
{
        if (child > 0) {
                kill(child, SIGTERM);
                waitpid(child, NULL, 0);
                child = -1;
        }
        bench_remove_tmpdir();
}

static unsigned long long rng_state;

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

static FILE *create(const char *name, char *path, size_t size)
{
        FILE *f;

        snprintf(path, size, "%s/%s", bench_tmpdir, name);
        f = fopen(path, "we");
        if (!f)
                bench_die("%s: %s", path, strerror(errno));
        return f;
}

static void finish(FILE *f, const char *path)
{
        if (ferror(f) || fclose(f) != 0)
                bench_die("%s: write failed", path);
}

static const char *school_code(int s, char *buf, size_t size)
{
        snprintf(buf, size, "51010760%02d%02d", s / 100, s % 100);
        return buf;
}

static void write_registry(char *schools, char *terminals, size_t size)
{
        static const char *const towns[] = { "城关镇", "东街街道", "西街街道", "南山镇", "北坝镇", "河口镇",
                                              "石桥乡", "清水乡", "白云乡", "红岩乡", "青龙镇", "金沙乡" };
        FILE *f = create("schools.csv", schools, size);
        char code[32];

        fputs("县区代码,县区,乡镇/街道,学校标识码,学校名称,学校类型,城乡类型,学生数,教室数,小学部学生数,初中部学生数\n", f);
        for (int s = 0; s < opt.schools; s++) {
                unsigned ty = rnd() % 100, ar = rnd() % 100;
                const char *type = ty < 60 ? "小学" : ty < 85 ? "初中" : "九年一贯制";
                const char *area = ar < 30 ? "城区" : ar < 65 ? "镇区" : "乡村";
                long students = (long)uni(150, 2500);

                fprintf(f, "%s,示范县,%s,%s,示范县第%d%s,%s,%s,%ld,%d,", COUNTY, towns[s % 12],
                        school_code(s, code, sizeof(code)), s + 1, ty < 60 ? "小学" : ty < 85 ? "中学" : "学校", type,
                        area, students, opt.per_school);
                if (ty >= 85)
                        fprintf(f, "%ld,%ld\n", students * 2 / 3, students - students * 2 / 3);
                else
                        fputs(",\n", f);
        }
        finish(f, schools);
        f = create("terminals.csv", terminals, size);
        fputs("学校代码,终端编号,教室,应配外设\n", f);
        for (int s = 0; s < opt.schools; s++)
                for (int t = 0; t < opt.per_school; t++)
                        fprintf(f, "%s,T%02d,%d年级(%d)班,展台、音箱、触摸框\n", school_code(s, code, sizeof(code)),
                                t + 1, t / 4 + 1, t % 4 + 1);
        finish(f, terminals);
}

static void write_calendar(char *path, size_t size)
{
        FILE *f = create("calendar.csv", path, size);

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
        finish(f, path);
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

struct built {
        long terminal_days, school_days, faults;
        double secs, cpu;
};

static struct built build_store(const char *path, const char *calendar_path, int32_t from, int32_t to)
{
        struct bbt_import_errors *errs = calloc(1, sizeof(*errs));
        struct bbt_calendar *cal = NULL;
        struct bbt_store *s = NULL;
        struct built b = { 0 };
        char err[512], code[32];
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
        for (int sc = 0; sc < opt.schools; sc++) {
                int quality = 70 + (int)(rnd() % 28); /* how often this school switches on */

                bench_check_signal();
                school_code(sc, code, sizeof(code));
                if (bbt_store_begin(s) < 0)
                        bench_die("store: %s", bbt_store_error(s));
                for (int t = 0; t < opt.per_school; t++) {
                        struct bbt_store_terminal row;
                        int64_t seq = 0;

                        memset(&row, 0, sizeof(row));
                        snprintf(row.county, sizeof(row.county), "%s", COUNTY);
                        snprintf(row.school, sizeof(row.school), "%s", code);
                        snprintf(row.terminal, sizeof(row.terminal), "T%02d", t + 1);
                        row.first_seq = 1;
                        row.boot = 212;
                        row.inventory_seq = 1;
                        row.online = true;
                        row.first_seen_ms = ((int64_t)from * 86400 + 8 * 3600) * 1000 - OFFSET_MIN * MIN_MS;
                        row.last_seen_ms = row.online_since_ms = end_ms - uni(0, HOUR_MS);
                        snprintf(row.version, sizeof(row.version), "0.1.0");
                        snprintf(row.hostname, sizeof(row.hostname), "bbt-%s-t%02d", code, t + 1);
                        snprintf(row.os, sizeof(row.os), "Debian GNU/Linux 12 (bookworm)");
                        snprintf(row.machine_id, sizeof(row.machine_id), "%032x", (unsigned)(sc * 100 + t));
                        snprintf(row.last_hb, sizeof(row.last_hb), "{\"ts\":%" PRId64 ",\"state\":\"standby\"}",
                                 row.last_seen_ms);
                        if (bbt_store_terminal_insert(s, &row) < 0)
                                bench_die("store: %s", bbt_store_error(s));
                        for (int32_t d = from; d <= to; d++) {
                                struct bbt_day_rollup dr;

                                if (!school_day[d - from])
                                        continue;
                                make_day(&dr, d, quality);
                                seq += dr.hb_count + dr.on_ms / (5 * MIN_MS);
                                if (bbt_store_day_add(s, row.id, &dr) < 0)
                                        bench_die("store: %s", bbt_store_error(s));
                                b.terminal_days++;
                        }
                        row.high_seq = seq;
                        row.received = seq;
                        if (bbt_store_terminal_update(s, &row) < 0)
                                bench_die("store: %s", bbt_store_error(s));
                        if (rnd() % 100 < 3) {
                                struct bbt_store_fault f = { .terminal_id = row.id, .severity = BBT_SEVERITY_WARNING,
                                                             .raised_ms = end_ms - uni(HOUR_MS, 30 * 24 * HOUR_MS) };

                                snprintf(f.code, sizeof(f.code), "disk_low");
                                snprintf(f.source, sizeof(f.source), "agent");
                                snprintf(f.detail, sizeof(f.detail), "root file system 96%% full");
                                if (bbt_store_fault_raise(s, &f) < 0)
                                        bench_die("store: %s", bbt_store_error(s));
                                b.faults++;
                        }
                }
                if (bbt_store_commit(s) < 0)
                        bench_die("store: %s", bbt_store_error(s));
        }
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

static long file_size(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Runs ARGV with stdout and stderr to OUT, with BBT_REPORT_SCAN=SCAN; returns
 * the wall time and *RET_CPU the child's user + sys time; dies on failure. */
static double run_timed(char *const argv[], const char *scan, const char *out, double *ret_cpu)
{
        double t0 = bench_now(), t;
        struct rusage ru;
        int status;

        child = fork();
        if (child < 0)
                bench_die("fork: %s", strerror(errno));
        if (child == 0) {
                int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                setenv("BBT_REPORT_SCAN", scan, 1);
                execv(argv[0], argv);
                _exit(127);
        }
        while (wait4(child, &status, 0, &ru) < 0 && errno == EINTR)
                ;
        t = bench_now() - t0;
        child = -1;
        bench_check_signal();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                bench_die("%s %s (BBT_REPORT_SCAN=%s) failed (status %d); see %s", argv[0], argv[1], scan, status,
                          out);
        *ret_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                   (double)ru.ru_stime.tv_usec / 1e6;
        return t;
}

/* Whether files A and B hold the same bytes, but for the line that says when
 * the report was generated (it may differ by a minute between the runs). */
static bool same_output(const char *a, const char *b)
{
        FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
        char la[4096], lb[4096];
        bool same = fa && fb;

        while (same) {
                char *ra = fgets(la, sizeof(la), fa), *rb = fgets(lb, sizeof(lb), fb);

                if (!ra || !rb) {
                        same = !ra && !rb;
                        break;
                }
                if (strstr(la, "Generated") && strstr(lb, "Generated"))
                        continue;
                same = strcmp(la, lb) == 0;
        }
        if (fa)
                fclose(fa);
        if (fb)
                fclose(fb);
        return same;
}

static double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: report-bench [OPTION]...\n"
                "Time bbt-report summary, schools, balance and idle over a school year of a generated\n"
                "county, from the day aggregates and from every day rollup.\n"
                "\n"
                "      --schools N     schools (default 800)\n"
                "      --per-school N  terminals per school (default 25)\n"
                "      --from DATE     first day (default 2025-09-01)\n"
                "      --to DATE       last day (default 2026-07-10)\n"
                "  -r, --runs N        timed runs of each report and path after one warm-up (default 5,\n"
                "                      at most 64)\n"
                "      --seed S        generator seed (default 1)\n"
                "      --report PATH   bbt-report to run (default the one built with this)\n"
                "  -k, --keep          keep the temporary directory (CSVs, config, store, outputs)\n"
                "  -h, --help          show this help\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "schools", required_argument, NULL, 'S' },
                { "per-school", required_argument, NULL, 'P' },
                { "from", required_argument, NULL, 'F' },
                { "to", required_argument, NULL, 'T' },
                { "runs", required_argument, NULL, 'r' },
                { "seed", required_argument, NULL, 's' },
                { "report", required_argument, NULL, 'R' },
                { "keep", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        static const char *const reports[] = { "summary", "schools", "balance", "idle" };
        char schools[512], terminals[512], calendar[512], conf[512], store[512], path[600];
        struct built b;
        int32_t from, to;
        long db, wal;
        FILE *f;
        int c;

        bench_init("report-bench", cleanup);
        while ((c = getopt_long(argc, argv, "r:kh", longopts, NULL)) != -1) {
                switch (c) {
                case 'S':
                        opt.schools = (int)bench_number("--schools", optarg, 1, 100000);
                        break;
                case 'P':
                        opt.per_school = (int)bench_number("--per-school", optarg, 1, 10000);
                        break;
                case 'F':
                        opt.from = optarg;
                        break;
                case 'T':
                        opt.to = optarg;
                        break;
                case 'r':
                        opt.runs = (int)bench_number("--runs", optarg, 1, 100);
                        break;
                case 's':
                        opt.seed = (unsigned)bench_number("--seed", optarg, 0, 4294967295LL);
                        break;
                case 'R':
                        opt.report = optarg;
                        break;
                case 'k':
                        bench_keep = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc || opt.schools < 1 || opt.schools > 9999 || opt.per_school < 1 || opt.per_school > 99 ||
            opt.runs < 1 || opt.runs > 64 || bbt_day_parse(opt.from, &from) < 0 || bbt_day_parse(opt.to, &to) < 0 ||
            from > to || to - from > 3660) {
                usage(stderr);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        bench_make_tmpdir();
        rng_state = opt.seed;
        write_registry(schools, terminals, sizeof(schools));
        write_calendar(calendar, sizeof(calendar));
        snprintf(store, sizeof(store), "%s/aggregator.db", bench_tmpdir);
        f = create("aggregator.conf", conf, sizeof(conf));
        fprintf(f, "[store]\npath = %s\n[registry]\nschools = %s\nterminals = %s\ncalendar = %s\n", store, schools,
                terminals, calendar);
        finish(f, conf);

        b = build_store(store, calendar, from, to);
        db = file_size(store);
        snprintf(path, sizeof(path), "%s-wal", store);
        wal = file_size(path);
        printf("report-bench: %d schools × %d terminals = %d terminals; %ld school days in %s..%s; "
               "%ld terminal-days, %ld open faults; store built in %.1f s (CPU %.1f s)\n",
               opt.schools, opt.per_school, opt.schools * opt.per_school, b.school_days, opt.from, opt.to,
               b.terminal_days, b.faults, b.secs, b.cpu);
        printf("store on disk: %.1f MiB (%ld bytes; WAL %ld bytes)\n", (double)(db + wal) / 1048576.0, db, wal);

        printf("%-8s %-10s %9s %9s %9s %9s   %s\n", "report", "path", "wall med", "wall min", "wall max", "cpu med",
               "target < 0.3 s");
        for (size_t k = 0; k < BBT_ELEMENTSOF(reports); k++) {
                static const char *const scans[] = { "aggregates", "rows" };
                char from_arg[32], to_arg[32], out[2][600];
                char *args[] = { (char *)opt.report, (char *)reports[k], "-c", conf, "--from", from_arg,
                                 "--to", to_arg, "--lang", "en", NULL };
                double wall[2][64], cpu[2][64], med[2], cmed[2];
                bool same;

                snprintf(from_arg, sizeof(from_arg), "%s", opt.from);
                snprintf(to_arg, sizeof(to_arg), "%s", opt.to);
                for (int p = 0; p < 2; p++) {
                        snprintf(out[p], sizeof(out[p]), "%s/%s.%s.txt", bench_tmpdir, reports[k], scans[p]);
                        run_timed(args, scans[p], out[p], &cpu[p][0]); /* warm-up: the page cache */
                }
                /* Alternating, so a neighbour's load falls on both alike. */
                for (int i = 0; i < opt.runs; i++)
                        for (int p = 0; p < 2; p++)
                                wall[p][i] = run_timed(args, scans[p], out[p], &cpu[p][i]);
                same = same_output(out[0], out[1]);
                for (int p = 0; p < 2; p++) {
                        med[p] = median(wall[p], opt.runs);
                        cmed[p] = median(cpu[p], opt.runs);
                        printf("%-8s %-10s %8.3fs %8.3fs %8.3fs %8.3fs   %s\n", reports[k], scans[p], med[p], wall[p][0],
                               wall[p][opt.runs - 1], cmed[p], p ? "" : med[p] < 0.3 ? "PASS" : "MISS");
                }
                printf("%-8s row scan / aggregates: wall %.1f×, cpu %.1f×; outputs %s (%ld bytes)\n", reports[k],
                       med[0] > 0 ? med[1] / med[0] : 0, cmed[0] > 0 ? cmed[1] / cmed[0] : 0,
                       same ? "identical" : "DIFFER", file_size(out[0]));
                if (!same)
                        bench_die("%s: the outputs of the two paths differ: %s %s", reports[k], out[0], out[1]);
        }
        printf("to repeat with hyperfine (--keep keeps the store): hyperfine -w 1 -r %d "
               "'BBT_REPORT_SCAN=aggregates %s summary -c %s --from %s --to %s' "
               "'BBT_REPORT_SCAN=rows %s summary -c %s --from %s --to %s'\n",
               opt.runs, opt.report, conf, opt.from, opt.to, opt.report, conf, opt.from, opt.to);
        cleanup();
        return 0;
}
