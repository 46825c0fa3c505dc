/* report-bench: how long bbt-report summary, schools, balance and idle take on a county's school year,
 * from the store's day aggregates and from every day rollup (the row scan), in the same run.
 *
 * In a temporary directory it writes the registry of a county (--schools
 * schools × --per-school terminals; 800 × 25 = 20,000 by default), its
 * calendar, a configuration naming them and the store of its school year
 * (bench-county.h says how). Then it
 * runs, for each report, bbt-report REPORT --from --to over the year with the
 * output to a file, once per path to warm the page cache and then --runs
 * times per path, the two paths alternating (BBT_REPORT_SCAN=aggregates and
 * =rows, the internal switch of reports.h): wall time (CLOCK_MONOTONIC around
 * fork, exec and wait) and CPU time (user + sys of the child, wait4). It
 * prints the medians, the ratio of the row scan to the aggregates, whether
 * the two outputs are the same bytes (but for the generation time), the
 * store's size on disk, and a hyperfine command line to repeat the timing.
 *
 * With --postgresql URI (a server's base URI, postgresql://USER@HOST:PORT, a
 * role that may create databases) it builds the same store, the same data
 * through the same store ops, into a new database on that server too
 * (bbt_report_bench_PID, dropped at the end unless --keep) and times the same
 * reports on both backends in the same run, alternating: SQLite's aggregates,
 * its row scan (unless --no-rows), PostgreSQL's aggregates and its row scan
 * (unless --no-rows). Every path's output must be the same bytes as SQLite's
 * aggregates'. --reports picks the reports.
 *
 * Exit status: 0 measured (the verdict is printed), 1 something failed (or
 * the paths' outputs differ), 2 bad usage. SIGINT/SIGTERM/SIGHUP: the
 * running bbt-report is stopped, the temporary directory removed and the
 * PostgreSQL database dropped. */
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
#include "bench-county.h"
#include "bench-util.h"
#include "store.h"

#ifndef BBT_REPORT_PATH
#define BBT_REPORT_PATH "bbt-report"
#endif

#define MAX_RUNS 64

static struct {
        int runs;
        const char *from, *to, *report;
        const char *pg;      /* --postgresql: a server's base URI; NULL: SQLite only */
        char reports[128];   /* --reports, comma-separated */
        bool rows;           /* time the row scan too */
        bool pg_by_day;      /* --by-day: build the PostgreSQL store a day at a time */
} opt = {
        .runs = 5,
        .from = "2025-09-01",
        .to = "2026-07-10",
        .report = BBT_REPORT_PATH,
        .reports = "summary,schools,balance,idle",
        .rows = true,
};

static pid_t child = -1;
static char pg_db[64];   /* the database created on the server at opt.pg; "" if none */

/* Drops the bench's database unless --keep (once, even when it fails and bench_die() comes back here). */
static void pg_drop(void)
{
        char sql[128];

        if (!pg_db[0])
                return;
        if (bench_keep) {
                fprintf(stderr, "%s: keeping the database %s/%s\n", bench_prog, opt.pg, pg_db);
                pg_db[0] = '\0';
                return;
        }
        snprintf(sql, sizeof(sql), "DROP DATABASE %s", pg_db);
        pg_db[0] = '\0';
        bench_pg_admin(opt.pg, sql);
}

/* bench_die()'s hook: stop the report being timed, remove the directory, drop the database. */
static void cleanup(void)
{
        if (child > 0) {
                kill(child, SIGTERM);
                waitpid(child, NULL, 0);
                child = -1;
        }
        bench_remove_tmpdir();
        pg_drop();
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
 * the report was generated (it may differ by a minute between the runs) and
 * the one that names the store. */
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
                if ((strstr(la, "Generated") && strstr(lb, "Generated")) ||
                    (strncmp(la, "Store: ", 7) == 0 && strncmp(lb, "Store: ", 7) == 0))
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
                "county, from the day aggregates and from every day rollup; with --postgresql, on an\n"
                "SQLite and a PostgreSQL store of the same data in the same run.\n"
                "\n"
                "      --schools N       schools (default 800)\n"
                "      --per-school N    terminals per school (default 25)\n"
                "      --from DATE       first day (default 2025-09-01)\n"
                "      --to DATE         last day (default 2026-07-10)\n"
                "  -r, --runs N          timed runs of each report and path after one warm-up (default 5,\n"
                "                        at most 64)\n"
                "      --reports LIST    the reports to time, comma-separated (default\n"
                "                        summary,schools,balance,idle)\n"
                "      --no-rows         do not time the row scan (BBT_REPORT_SCAN=rows)\n"
                "      --postgresql URI  also build the store in a new database on the PostgreSQL server\n"
                "                        at URI (postgresql://USER@HOST:PORT) and time the reports there\n"
                "      --tx-schools N    schools per store transaction while building (default 1)\n"
                "      --by-day          build the PostgreSQL store as ingest writes: a transaction a day\n"
                "                        over every terminal (its tables then lie in the order ingest\n"
                "                        gives them); the same data either way\n"
                "      --seed S          generator seed (default 1)\n"
                "      --report PATH     bbt-report to run (default the one built with this)\n"
                "  -k, --keep            keep the temporary directory (CSVs, config, store, outputs) and\n"
                "                        the PostgreSQL database\n"
                "  -h, --help            show this help\n");
}

/* A store a report runs on, and how. */
struct path {
        const char *name; /* "sqlite", "postgresql" */
        const char *conf;
        const char *scan; /* BBT_REPORT_SCAN */
        double target;    /* seconds, for the aggregates; 0: none */
};

/* Prints what the store built (a line) and returns its size in bytes. */
static long long store_built(const char *name, const struct bench_county_built *b, long long bytes)
{
        int terminals = bench_county.schools * bench_county.per_school;

        printf("%s: store built in %.1f s (this process's CPU %.1f s); %.1f MiB on disk, %.1f KiB a terminal "
               "over the %ld school days\n",
               name, b->secs, b->cpu, (double)bytes / 1048576.0, (double)bytes / 1024.0 / terminals, b->school_days);
        return bytes;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "schools", required_argument, NULL, 'S' },
                { "per-school", required_argument, NULL, 'P' },
                { "from", required_argument, NULL, 'F' },
                { "to", required_argument, NULL, 'T' },
                { "runs", required_argument, NULL, 'r' },
                { "reports", required_argument, NULL, 'L' },
                { "no-rows", no_argument, NULL, 'N' },
                { "postgresql", required_argument, NULL, 'G' },
                { "tx-schools", required_argument, NULL, 'X' },
                { "by-day", no_argument, NULL, 'D' },
                { "seed", required_argument, NULL, 's' },
                { "report", required_argument, NULL, 'R' },
                { "keep", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        char schools[512], terminals[512], calendar[512], conf[512], pg_conf[512], store[512], pg_store[400];
        char path[600], *reports[8], *save = NULL;
        struct path paths[4];
        size_t n_paths = 0, n_reports = 0;
        struct bench_county_built b;
        int32_t from, to;
        long db, wal;
        FILE *f;
        int c;

        bench_init("report-bench", cleanup);
        while ((c = getopt_long(argc, argv, "r:kh", longopts, NULL)) != -1) {
                switch (c) {
                case 'S':
                        bench_county.schools = (int)bench_number("--schools", optarg, 1, 100000);
                        break;
                case 'P':
                        bench_county.per_school = (int)bench_number("--per-school", optarg, 1, 10000);
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
                case 'L':
                        if (strlen(optarg) >= sizeof(opt.reports)) {
                                usage(stderr);
                                return 2;
                        }
                        snprintf(opt.reports, sizeof(opt.reports), "%s", optarg);
                        break;
                case 'N':
                        opt.rows = false;
                        break;
                case 'G':
                        opt.pg = optarg;
                        break;
                case 'X':
                        bench_county.schools_per_tx = (int)bench_number("--tx-schools", optarg, 1, 100000);
                        break;
                case 'D':
                        opt.pg_by_day = true;
                        break;
                case 's':
                        bench_county.seed = (unsigned)bench_number("--seed", optarg, 0, 4294967295LL);
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
        for (char *r = strtok_r(opt.reports, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
                if (n_reports == BBT_ELEMENTSOF(reports) || (strcmp(r, "summary") && strcmp(r, "schools") &&
                                                             strcmp(r, "balance") && strcmp(r, "idle"))) {
                        fprintf(stderr, "report-bench: --reports: %s: not one of summary, schools, balance, idle\n", r);
                        return 2;
                }
                reports[n_reports++] = r;
        }
        if (optind != argc || n_reports == 0 || bench_county.schools < 1 || bench_county.schools > 9999 ||
            bench_county.per_school < 1 || bench_county.per_school > 99 || opt.runs < 1 || opt.runs > MAX_RUNS ||
            bbt_day_parse(opt.from, &from) < 0 || bbt_day_parse(opt.to, &to) < 0 || from > to || to - from > 3660 ||
            (opt.pg && (!bbt_store_location_is_pg(opt.pg) || strlen(opt.pg) > 300))) {
                usage(stderr);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        bench_county.progress = "";
        bench_make_tmpdir();
        bench_county_write_registry(schools, terminals, sizeof(schools));
        bench_county_write_calendar(calendar, sizeof(calendar));
        snprintf(store, sizeof(store), "%s/aggregator.db", bench_tmpdir);
        f = bench_create("aggregator.conf", conf, sizeof(conf));
        fprintf(f, "[store]\npath = %s\n[registry]\nschools = %s\nterminals = %s\ncalendar = %s\n", store, schools,
                terminals, calendar);
        bench_finish(f, conf);
        printf("report-bench: %d schools × %d terminals = %d terminals; %s..%s; SQLite built %d school(s) a "
               "transaction%s\n", bench_county.schools, bench_county.per_school,
               bench_county.schools * bench_county.per_school, opt.from, opt.to, bench_county.schools_per_tx,
               !opt.pg ? "" : opt.pg_by_day ? ", PostgreSQL a day a transaction" : ", PostgreSQL the same");

        bench_county.progress = "sqlite";
        b = bench_county_build_store(store, calendar, from, to);
        db = file_size(store);
        snprintf(path, sizeof(path), "%s-wal", store);
        wal = file_size(path);
        printf("%ld school days, %ld terminal-days, %ld open faults\n", b.school_days, b.terminal_days, b.faults);
        store_built("sqlite", &b, db + wal);
        paths[n_paths++] = (struct path){ "sqlite", conf, "aggregates", 0.3 };
        if (opt.rows)
                paths[n_paths++] = (struct path){ "sqlite", conf, "rows", 0 };
        if (opt.pg) {
                struct bench_store q = { 0 };
                char sql[128];
                long long bytes;

                snprintf(sql, sizeof(sql), "CREATE DATABASE bbt_report_bench_%ld", (long)getpid());
                bench_pg_admin(opt.pg, sql);
                snprintf(pg_db, sizeof(pg_db), "bbt_report_bench_%ld", (long)getpid());
                snprintf(pg_store, sizeof(pg_store), "%s/%s", opt.pg, pg_db);
                f = bench_create("aggregator-pg.conf", pg_conf, sizeof(pg_conf));
                fprintf(f, "[store]\npath = %s\n[registry]\nschools = %s\nterminals = %s\ncalendar = %s\n", pg_store,
                        schools, terminals, calendar);
                bench_finish(f, pg_conf);
                bench_county.progress = "postgresql";
                bench_county.by_day = opt.pg_by_day;
                b = bench_county_build_store(pg_store, calendar, from, to);
                snprintf(q.path, sizeof(q.path), "%s", pg_store);
                if (!bench_store_open(&q))
                        bench_die("%s: cannot connect", pg_store);
                /* What a report reads finds its statistics, as autovacuum would leave them. */
                bench_store_value(&q, "VACUUM ANALYZE");
                bytes = bench_store_value(&q, "SELECT pg_database_size(current_database())");
                bench_store_close(&q);
                store_built("postgresql", &b, bytes);
                paths[n_paths++] = (struct path){ "postgresql", pg_conf, "aggregates", 1.0 };
                if (opt.rows)
                        paths[n_paths++] = (struct path){ "postgresql", pg_conf, "rows", 0 };
        }

        printf("%-8s %-11s %-10s %9s %9s %9s %9s   %s\n", "report", "store", "path", "wall med", "wall min",
               "wall max", "cpu med", "target (aggregates; 0.3 s SQLite, 1 s PostgreSQL)");
        for (size_t k = 0; k < n_reports; k++) {
                char from_arg[32], to_arg[32], out[4][600];
                double wall[4][MAX_RUNS], cpu[4][MAX_RUNS], med[4], cmed[4];

                snprintf(from_arg, sizeof(from_arg), "%s", opt.from);
                snprintf(to_arg, sizeof(to_arg), "%s", opt.to);
                for (size_t p = 0; p < n_paths; p++) {
                        char *args[] = { (char *)opt.report, reports[k], "-c", (char *)paths[p].conf, "--from",
                                         from_arg, "--to", to_arg, "--lang", "en", NULL };

                        snprintf(out[p], sizeof(out[p]), "%s/%s.%s.%s.txt", bench_tmpdir, reports[k], paths[p].name,
                                 paths[p].scan);
                        run_timed(args, paths[p].scan, out[p], &cpu[p][0]); /* warm-up: the caches */
                }
                /* Alternating, so a neighbour's load falls on every path alike. */
                for (int i = 0; i < opt.runs; i++)
                        for (size_t p = 0; p < n_paths; p++) {
                                char *args[] = { (char *)opt.report, reports[k], "-c", (char *)paths[p].conf,
                                                 "--from", from_arg, "--to", to_arg, "--lang", "en", NULL };

                                wall[p][i] = run_timed(args, paths[p].scan, out[p], &cpu[p][i]);
                        }
                for (size_t p = 0; p < n_paths; p++) {
                        med[p] = median(wall[p], opt.runs);
                        cmed[p] = median(cpu[p], opt.runs);
                        printf("%-8s %-11s %-10s %8.3fs %8.3fs %8.3fs %8.3fs   %s\n", reports[k], paths[p].name,
                               paths[p].scan, med[p], wall[p][0], wall[p][opt.runs - 1], cmed[p],
                               !paths[p].target ? "" : med[p] < paths[p].target ? "PASS" : "MISS");
                }
                for (size_t p = 1; p < n_paths; p++) {
                        printf("%-8s %s %s / sqlite aggregates: wall %.2f×, cpu %.2f×; output %s\n", reports[k],
                               paths[p].name, paths[p].scan, med[0] > 0 ? med[p] / med[0] : 0,
                               cmed[0] > 0 ? cmed[p] / cmed[0] : 0,
                               same_output(out[0], out[p]) ? "identical" : "DIFFERS");
                        if (!same_output(out[0], out[p]))
                                bench_die("%s: the outputs differ: %s %s", reports[k], out[0], out[p]);
                }
                printf("%-8s output %ld bytes\n", reports[k], file_size(out[0]));
        }
        printf("to repeat with hyperfine (--keep keeps the stores): hyperfine -w 1 -r %d "
               "'BBT_REPORT_SCAN=aggregates %s summary -c %s --from %s --to %s'",
               opt.runs, opt.report, conf, opt.from, opt.to);
        if (opt.pg)
                printf(" 'BBT_REPORT_SCAN=aggregates %s summary -c %s --from %s --to %s'", opt.report, pg_conf,
                       opt.from, opt.to);
        printf("\n");
        cleanup();
        return 0;
}
