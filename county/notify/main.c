/* bbt-notify: posts new faults and a daily digest per school to webhooks (WeCom, DingTalk, generic JSON), reading the aggregator's store. */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator_config.h"
#include "bbt/log.h"
#include "notifier.h"
#include "store.h"

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-notify [OPTION]...\n"
                "Post the county's new faults and a daily digest per school (idle terminals,\n"
                "open faults) to webhooks: WeCom (企业微信) and DingTalk (钉钉) group robots, or\n"
                "any receiver of a JSON POST. Reads bbt-aggregator's store, never writes it.\n"
                "\n"
                "  -c, --config FILE   configuration (default " BBT_AGGREGATOR_CONFIG_PATH "): the\n"
                "                      aggregator's, with its [notify] section\n"
                "      --check-config  check the configuration, the targets and secrets files and\n"
                "                      the registry, print the settings, exit\n"
                "      --status        print the counters and what is still owed to each target\n"
                "                      (from the state file), exit\n"
                "  -h, --help          show this help\n"
                "  -V, --version       show the version\n"
                "\n"
                "Signals: SIGTERM/SIGINT save the state and stop, SIGHUP reads the store at once,\n"
                "SIGUSR1 logs the counters.\n"
                "Exit status: 0 stopped cleanly, 1 runtime failure, 2 bad usage or configuration.\n"
                "See bbt-notify(8) and docs/notifications.md.\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'k' },
                { "status", no_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        const char *config_path = BBT_AGGREGATOR_CONFIG_PATH;
        struct bbt_aggregator_config cfg;
        struct bbt_notifier *n = NULL;
        bool check_only = false, status = false;
        char err[1024];
        sigset_t set;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'k':
                        check_only = true;
                        break;
                case 's':
                        status = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("bbt-notify %s (store schema %d, libcurl %s)\n", BBT_VERSION, BBT_STORE_SCHEMA_VERSION,
                               curl_version_info(CURLVERSION_NOW)->version);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "bbt-notify: unexpected argument %s\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        bbt_log_init("bbt-notify");
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGUSR1);
        sigprocmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (bbt_aggregator_config_load(config_path, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "bbt-notify: %s\n", err);
                return 2;
        }
        bbt_log_set_level(bbt_aggregator_config_log_priority(&cfg));
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "bbt-notify: libcurl cannot start\n");
                bbt_aggregator_config_free(&cfg);
                return 1;
        }
        r = bbt_notifier_new(&cfg, !check_only, stderr, &n);
        if (r < 0) {
                fprintf(stderr, "bbt-notify: %s: the configuration has a problem (above); nothing was sent\n",
                        config_path);
                curl_global_cleanup();
                bbt_aggregator_config_free(&cfg);
                return 2;
        }
        if (check_only || status) {
                if (check_only) {
                        r = bbt_aggregator_config_dump(&cfg, stdout);
                        bbt_notifier_dump_targets(n, stdout);
                } else {
                        bbt_notifier_print_status(n, stdout);
                }
                bbt_notifier_free(n);
                curl_global_cleanup();
                bbt_aggregator_config_free(&cfg);
                return r < 0 ? 1 : 0;
        }
        r = bbt_notifier_run(n);
        if (r < 0)
                bbt_log_error("%s", strerror(-r));
        bbt_notifier_free(n);
        curl_global_cleanup();
        bbt_aggregator_config_free(&cfg);
        return r < 0 ? 1 : 0;
}
