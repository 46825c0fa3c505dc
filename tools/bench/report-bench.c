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
#include "bench-county.h"
#include "bench-util.h"
#include "store.h"

#ifndef BBT_REPORT_PATH
#define BBT_REPORT_PATH "bbt-report"
#endif

static struct {
        int runs;
        const char *from, *to, *report;
} opt = {
        .runs = 5,
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
        if (optind != argc || bench_county.schools < 1 || bench_county.schools > 9999 || bench_county.per_school < 1 || bench_county.per_school > 99 ||
            opt.runs < 1 || opt.runs > 64 || bbt_day_parse(opt.from, &from) < 0 || bbt_day_parse(opt.to, &to) < 0 ||
            from > to || to - from > 3660) {
                usage(stderr);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        bench_make_tmpdir();
        bench_county_write_registry(schools, terminals, sizeof(schools));
        bench_county_write_calendar(calendar, sizeof(calendar));
        snprintf(store, sizeof(store), "%s/aggregator.db", bench_tmpdir);
        f = bench_create("aggregator.conf", conf, sizeof(conf));
        fprintf(f, "[store]\npath = %s\n[registry]\nschools = %s\nterminals = %s\ncalendar = %s\n", store, schools,
                terminals, calendar);
        bench_finish(f, conf);

        b = bench_county_build_store(store, calendar, from, to);
        db = file_size(store);
        snprintf(path, sizeof(path), "%s-wal", store);
        wal = file_size(path);
        printf("report-bench: %d schools × %d terminals = %d terminals; %ld school days in %s..%s; "
               "%ld terminal-days, %ld open faults; store built in %.1f s (CPU %.1f s)\n",
               bench_county.schools, bench_county.per_school, bench_county.schools * bench_county.per_school, b.school_days, opt.from, opt.to,
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
