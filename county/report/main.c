/* bbt-report: the evaluation figures from the aggregator's store, as a table, CSV, JSON or an Excel workbook. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator_config.h"
#include "bbt/base.h"
#include "bbt/log.h"
#include "dates.h"
#include "reports.h"
#include "store.h"

/* The report kinds' names, "summary, schools, ...". */
static void kind_names(FILE *out)
{
        const struct bbt_report_kind *k;

        for (size_t i = 0; (k = bbt_report_kind_at(i)); i++)
                fprintf(out, "%s%s", i ? ", " : "", k->name);
}

/* The renderers' names, "table, csv or json". */
static void format_names(FILE *out)
{
        const struct bbt_renderer *f;

        for (size_t i = 0; (f = bbt_renderer_at(i)); i++)
                fprintf(out, "%s%s", i == 0 ? "" : bbt_renderer_at(i + 1) ? ", " : " or ", f->name);
}

static void usage(FILE *out)
{
        const struct bbt_report_kind *k;
        const struct bbt_renderer *f;

        fprintf(out,
                "Usage: bbt-report REPORT [OPTION]...\n"
                "Print the 班班通 evaluation figures from bbt-aggregator's store.\n"
                "\n"
                "Reports:\n");
        for (size_t i = 0; (k = bbt_report_kind_at(i)); i++) {
                const char *line = k->help, *nl;

                fprintf(out, "  %-11s ", k->name);
                while ((nl = strchr(line, '\n'))) {
                        fprintf(out, "%.*s\n%14s", (int)(nl - line), line, "");
                        line = nl + 1;
                }
                fprintf(out, "%s\n", line);
        }
        fprintf(out,
                "\n"
                "Options:\n"
                "  -c, --config FILE    aggregator configuration (default " BBT_AGGREGATOR_CONFIG_PATH
                "; built-in\n"
                "                       defaults if that file does not exist)\n"
                "      --store PATH     the store, instead of the configuration's [store] path\n"
                "                       (an SQLite file or a postgresql:// URI)\n"
                "      --county CODE    only this county (6 digits)\n"
                "      --school CODE    only this school\n"
                "      --from DATE      first day, YYYY-MM-DD (default: 29 days before --to)\n"
                "      --to DATE        last day, YYYY-MM-DD (default: today)\n"
                "      --week DATE      the week, Monday to Sunday, that holds DATE (instead of\n"
                "                       --from and --to; record: default the week of --to)\n"
                "  -f, --format FMT     ");
        for (size_t i = 0, col = 23; (f = bbt_renderer_at(i)); i++) {
                const char *note = i == 0 ? "default" : f->help;
                char item[128];
                int len = snprintf(item, sizeof(item), note ? "%s (%s)" : "%s", f->name, note);

                if (i > 0 && col + 2 + (size_t)len > 79) { /* a new line under the first */
                        fprintf(out, ",\n%23s", "");
                        col = 23;
                } else if (i > 0) {
                        fputs(", ", out);
                        col += 2;
                }
                fputs(item, out);
                col += (size_t)len;
        }
        fprintf(out,
                "\n"
                "      --lang LANG      zh (default) or en\n"
                "  -o, --output FILE    write to FILE (replaced whole, or left as it was)\n"
                "                       instead of standard output; xlsx needs it\n"
                "      --set KEY=VALUE  override a setting, e.g. metrics.used_day_min=15m\n"
                "  -h, --help           show this help\n"
                "  -V, --version        show the version\n"
                "\n"
                "Every report ends with the settings it used. Exit status: 0 success, 1 failure,\n"
                "2 bad usage or configuration. See bbt-report(1) and docs/metrics.md.\n");
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'c' },
                { "store", required_argument, NULL, 's' },
                { "county", required_argument, NULL, 'C' },
                { "school", required_argument, NULL, 'S' },
                { "from", required_argument, NULL, 'F' },
                { "to", required_argument, NULL, 'T' },
                { "week", required_argument, NULL, 'W' },
                { "format", required_argument, NULL, 'f' },
                { "lang", required_argument, NULL, 'l' },
                { "output", required_argument, NULL, 'o' },
                { "set", required_argument, NULL, 'x' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        struct bbt_report_options o = { .chinese = true, .format = bbt_renderer_at(0) };
        const char *store_location = NULL;
        char store_shown[1024];
        const char *config_path = NULL, *store_path = NULL, *output = NULL, *from = NULL, *to = NULL;
        const char *week = NULL, *bad;
        const char *sets[32];
        size_t n_sets = 0;
        struct bbt_aggregator_config cfg;
        struct bbt_ingest_settings set;
        struct bbt_registry *reg = NULL;
        struct bbt_calendar *cal = NULL;
        struct bbt_store *store = NULL;
        struct bbt_document *doc = NULL;
        char err[1024];
        int c, r, rc = 1;

        while ((c = getopt_long(argc, argv, "c:f:o:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 's':
                        store_path = optarg;
                        break;
                case 'C':
                        if (!bbt_county_valid(optarg)) {
                                fprintf(stderr, "bbt-report: --county %s: expected 6 digits\n", optarg);
                                return 2;
                        }
                        o.county = optarg;
                        break;
                case 'S':
                        if (!bbt_id_valid(optarg)) {
                                fprintf(stderr, "bbt-report: --school %s: expected 1 to 32 of A-Z a-z 0-9 _ -\n",
                                        optarg);
                                return 2;
                        }
                        o.school = optarg;
                        break;
                case 'F':
                        from = optarg;
                        break;
                case 'T':
                        to = optarg;
                        break;
                case 'W':
                        week = optarg;
                        break;
                case 'f':
                        o.format = bbt_renderer_find(optarg);
                        if (!o.format) {
                                fprintf(stderr, "bbt-report: --format %s: expected ", optarg);
                                format_names(stderr);
                                fputs("\n", stderr);
                                return 2;
                        }
                        break;
                case 'l':
                        if (strcmp(optarg, "zh") != 0 && strcmp(optarg, "en") != 0) {
                                fprintf(stderr, "bbt-report: --lang %s: expected zh or en\n", optarg);
                                return 2;
                        }
                        o.chinese = strcmp(optarg, "zh") == 0;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case 'x':
                        if (n_sets == BBT_ELEMENTSOF(sets) || !strchr(optarg, '=')) {
                                fprintf(stderr, "bbt-report: --set %s: expected KEY=VALUE (at most 32)\n", optarg);
                                return 2;
                        }
                        sets[n_sets++] = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("bbt-report %s (store schema %d)\n", BBT_VERSION, BBT_STORE_SCHEMA_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                fputs("bbt-report: which report? (", stderr);
                kind_names(stderr);
                fputs(")\n", stderr);
                usage(stderr);
                return 2;
        }
        o.kind = bbt_report_kind_find(argv[optind]);
        if (!o.kind) {
                fprintf(stderr, "bbt-report: unknown report %s (", argv[optind]);
                kind_names(stderr);
                fputs(")\n", stderr);
                return 2;
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "bbt-report: unexpected argument %s\n", argv[optind + 1]);
                return 2;
        }
        if (o.format->binary && !output) {
                fprintf(stderr, "bbt-report: --format %s writes a file, not to standard output: add -o FILE\n",
                        o.format->name);
                return 2;
        }
        bbt_log_init("bbt-report");

        if (!config_path && access(BBT_AGGREGATOR_CONFIG_PATH, F_OK) == 0)
                config_path = BBT_AGGREGATOR_CONFIG_PATH;
        r = config_path ? bbt_aggregator_config_load(config_path, &cfg, err, sizeof(err))
                        : bbt_aggregator_config_defaults(&cfg);
        if (r < 0) {
                fprintf(stderr, "bbt-report: %s\n", config_path ? err : strerror(-r));
                return 2;
        }
        for (size_t i = 0; i < n_sets; i++) {
                char key[128];
                const char *eq = strchr(sets[i], '=');

                snprintf(key, sizeof(key), "%.*s", (int)(eq - sets[i]), sets[i]);
                if (bbt_aggregator_config_set(&cfg, key, eq + 1, err, sizeof(err)) < 0) {
                        fprintf(stderr, "bbt-report: --set %s\n", err);
                        rc = 2;
                        goto out;
                }
        }
        bbt_aggregator_config_settings(&cfg, &set);
        o.now_ms = now_ms();
        r = bbt_report_options_range(&o, from, to, week, bbt_day_of_ms(o.now_ms, set.metrics.offset_min), "--",
                                     &bad, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "bbt-report: %s\n", err);
                rc = 2;
                goto out;
        }
        if (bbt_aggregator_load_registry(&cfg, stderr, &reg, &cal) < 0) {
                rc = 2;
                goto out;
        }
        store_location = store_path ? store_path : cfg.store_path;
        /* What the report shows: a PostgreSQL URI without its password. */
        o.store_label = bbt_store_location_redact(store_location, store_shown, sizeof(store_shown));
        /* Internal, for tools/bench/report-bench and the tests: force the
         * day-rollup scan or the day aggregates (reports.h). */
        if (getenv("BBT_REPORT_SCAN"))
                o.scan = strcmp(getenv("BBT_REPORT_SCAN"), "rows") == 0         ? BBT_REPORT_SCAN_ROWS
                         : strcmp(getenv("BBT_REPORT_SCAN"), "aggregates") == 0 ? BBT_REPORT_SCAN_AGGREGATES
                                                                                : BBT_REPORT_SCAN_AUTO;
        r = bbt_store_open(store_location, true, &store, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "bbt-report: store: %s\n", err);
                goto out;
        }
        if (output) {
                /* Atomically: FILE is the whole report or what it was before. */
                r = bbt_report_build(&o, store, reg, cal, &set.metrics, &doc, err, sizeof(err));
                if (r == 0)
                        r = bbt_document_render_file(doc, o.format, o.chinese, output, err, sizeof(err));
        } else {
                r = bbt_reports_run(&o, store, reg, cal, &set.metrics, stdout, err, sizeof(err));
        }
        if (r < 0) {
                fprintf(stderr, "bbt-report: %s\n", err);
                goto out;
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "bbt-report: writing the report failed: %s\n", strerror(errno));
                goto out;
        }
        rc = 0;
out:
        bbt_document_free(doc);
        bbt_store_close(store);
        bbt_registry_free(reg);
        bbt_calendar_free(cal);
        bbt_aggregator_config_free(&cfg);
        return rc;
}
