/* bbt-agent: command line, configuration, and the loop. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent.h"
#include "agent_config.h"
#include "bbt/log.h"
#include "bbt/protocol.h"

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: bbt-agent [OPTION]...\n"
                "Report how this classroom terminal (班班通) is used and how healthy it is,\n"
                "over MQTT to the county's bbt-aggregator. Every message is stored in an\n"
                "on-disk spool before it is sent, so nothing is lost while offline.\n"
                "\n"
                "  -c, --config FILE   configuration file (default " BBT_AGENT_CONFIG_PATH ")\n"
                "      --check-config  check the configuration, print the effective settings, exit\n"
                "      --probe         print what each driver sees on this machine now, exit\n"
                "  -f, --foreground    accepted for compatibility; bbt-agent never forks\n"
                "      --recover-state if the state file is malformed, continue after the spool's\n"
                "                      last seq (skipping ahead) instead of refusing to start\n"
                "  -h, --help          show this help\n"
                "  -V, --version       show the version\n"
                "\n"
                "Signals: SIGTERM/SIGINT stop cleanly (within 5 s), SIGHUP reloads the file.\n"
                "Exit status: 0 stopped cleanly, 1 runtime failure, 2 bad usage or configuration.\n"
                "See bbt-agent(8) and bbt-agent.conf(5).\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'k' },
                { "probe", no_argument, NULL, 'p' },
                { "foreground", no_argument, NULL, 'f' },
                { "recover-state", no_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        const char *config_path = BBT_AGENT_CONFIG_PATH;
        struct bbt_agent_config cfg;
        struct bbt_agent *agent = NULL;
        bool check_only = false, recover = false, probe = false;
        uv_loop_t loop;
        char err[1024];
        int c, r;

        while ((c = getopt_long(argc, argv, "c:fhV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'k':
                        check_only = true;
                        break;
                case 'p':
                        probe = true;
                        break;
                case 'f':
                        break;
                case 'r':
                        recover = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("bbt-agent %s (protocol v%d)\n", BBT_VERSION, BBT_PROTOCOL_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "bbt-agent: unexpected argument %s\n", argv[optind]);
                usage(stderr);
                return 2;
        }

        bbt_log_init("bbt-agent");
        r = bbt_agent_config_load(config_path, &cfg, err, sizeof(err));
        if (r < 0) {
                bbt_log_error("%s", err);
                return 2;
        }
        if (probe) {
                r = bbt_agent_probe(&cfg, stdout);
                bbt_agent_config_free(&cfg);
                /* 0 all well, 3 a configured device has a problem, 1 the probe could not run. */
                return r < 0 ? 1 : r > 0 ? 3 : 0;
        }
        if (check_only) {
                bbt_agent_config_dump(&cfg, stdout);
                bbt_agent_config_free(&cfg);
                fprintf(stderr, "%s: ok\n", config_path);
                return 0;
        }
        bbt_log_set_level(bbt_agent_config_log_priority(&cfg));
        cfg.recover_state = recover;

        if (uv_loop_init(&loop) < 0) {
                bbt_log_error("cannot create the event loop");
                bbt_agent_config_free(&cfg);
                return 1;
        }
        r = bbt_agent_new(&loop, config_path, &cfg, &agent);
        bbt_agent_config_free(&cfg);
        if (r == 0)
                r = bbt_agent_start(agent);
        if (r < 0) {
                bbt_log_error("cannot start: %s", strerror(-r));
                if (agent)
                        bbt_agent_stop(agent);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        bbt_agent_free(agent);
        if (uv_loop_close(&loop) != 0)
                bbt_log_debug("event loop closed with handles still open");
        return r < 0 ? 1 : 0;
}
