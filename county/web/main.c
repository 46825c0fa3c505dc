/* bbt-web: the county's web server — the JSON API over the aggregator's store (read-only), downloads, the dashboard's files. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator_config.h"
#include "bbt/log.h"
#include "bbt/notify.h"
#include "store.h"
#include "web.h"

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-web [OPTION]...\n"
                "Serve the 班班通 figures of bbt-aggregator's store over HTTP: the JSON API,\n"
                "CSV and Excel downloads of every bbt-report report, and the dashboard.\n"
                "\n"
                "  -c, --config FILE   configuration (default " BBT_AGGREGATOR_CONFIG_PATH "): the\n"
                "                      aggregator's, with its [web] section\n"
                "      --check-config  check the configuration and the registry, calendar,\n"
                "                      users and TLS files it names, print the settings, exit\n"
                "  -h, --help          show this help\n"
                "  -V, --version       show the version\n"
                "\n"
                "Signals: SIGTERM/SIGINT finish the requests in progress and stop, SIGHUP re-reads\n"
                "the registry, calendar, bell-schedule and users files.\n"
                "Exit status: 0 stopped cleanly, 1 runtime failure, 2 bad usage or configuration.\n"
                "See bbt-web(8) and docs/web.md.\n");
}

/* Everything --check-config checks, and the start needs: the configuration
 * (its [web] listen too), then every file it names. */
static int load(const char *path, struct bbt_aggregator_config *cfg, struct bbt_web **ret)
{
        char err[1024];
        int r = bbt_aggregator_config_load(path, cfg, err, sizeof(err));

        if (r < 0) {
                fprintf(stderr, "bbt-web: %s\n", err);
                return r;
        }
        r = bbt_web_listen_check(cfg->web_listen, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "bbt-web: %s: %s\n", path, err);
                bbt_aggregator_config_free(cfg);
                return r;
        }
        r = bbt_web_new(cfg, stderr, ret);
        if (r < 0)
                bbt_aggregator_config_free(cfg);
        return r;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        const char *config_path = BBT_AGGREGATOR_CONFIG_PATH;
        struct bbt_aggregator_config cfg;
        struct bbt_web *w = NULL;
        bool check_only = false;
        uint64_t wd_usec;
        sigset_t set;
        char err[1024];
        int c, sig;

        while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'k':
                        check_only = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("bbt-web %s (store schema %d)\n", BBT_VERSION, BBT_STORE_SCHEMA_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "bbt-web: unexpected argument %s\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        bbt_log_init("bbt-web");
        /* The workers inherit this mask: the signals come to sigwait below. */
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (load(config_path, &cfg, &w) < 0)
                return 2;
        bbt_log_set_level(bbt_aggregator_config_log_priority(&cfg));
        if (check_only) {
                int r = bbt_aggregator_config_dump(&cfg, stdout);

                bbt_web_free(w);
                bbt_aggregator_config_free(&cfg);
                return r < 0 ? 1 : 0;
        }
        if (bbt_web_start(w, err, sizeof(err)) < 0) {
                bbt_log_error("%s", err);
                bbt_web_free(w);
                bbt_aggregator_config_free(&cfg);
                return 1;
        }
        bbt_notify("READY=1\nSTATUS=serving");
        wd_usec = bbt_notify_watchdog_usec();
        for (;;) {
                if (wd_usec) {
                        struct timespec t = { .tv_sec = (time_t)(wd_usec / 2000000),
                                              .tv_nsec = (long)(wd_usec / 2 % 1000000) * 1000 };

                        sig = sigtimedwait(&set, NULL, &t);
                        if (sig < 0) {
                                if (errno == EAGAIN)
                                        bbt_notify("WATCHDOG=1");
                                continue;
                        }
                } else if (sigwait(&set, &sig) != 0) {
                        continue;
                }
                if (sig == SIGHUP) {
                        bbt_notify("RELOADING=1");
                        bbt_web_reload(w);
                        bbt_notify("READY=1");
                        continue;
                }
                break;
        }
        bbt_log_notice("stopping (signal %d)", sig);
        bbt_notify("STOPPING=1");
        bbt_web_log_counters(w);
        bbt_web_free(w);
        bbt_aggregator_config_free(&cfg);
        return 0;
}
