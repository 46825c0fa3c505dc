/* bbt-ctl (county/ctl/): the choice of a Wake-on-LAN neighbour against a
 * store, and the tool end to end with the real agent and a real broker:
 * power-off at a time (the agent's dry-run method), set, a school with a
 * terminal offline, wake through a neighbour, the audit rows. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "broker.h"
#include "daemon.h"
#include "neighbour.h"
#include "store.h"
#include "test.h"

#define COUNTY "510107"
#define SCHOOL "3151010001"

static char dir[256], store_path[320];

static int64_t add_terminal(struct bbt_store *s, const char *school, const char *name, bool online,
                            int64_t online_since_ms, const char *mac, const char *ipv4, int prefix)
{
        struct bbt_store_terminal t = { .first_seq = -1, .high_seq = -1, .boot = -1, .inventory_seq = -1 };
        struct bbt_store_net n = { .seq = 1, .prefix = prefix };

        snprintf(t.county, sizeof(t.county), COUNTY);
        snprintf(t.school, sizeof(t.school), "%s", school);
        snprintf(t.terminal, sizeof(t.terminal), "%s", name);
        ASSERT_OK(bbt_store_terminal_insert(s, &t));
        t.online = online, t.online_since_ms = online_since_ms;
        ASSERT_OK(bbt_store_terminal_update(s, &t));
        if (mac) {
                n.terminal_id = t.id;
                snprintf(n.ifname, sizeof(n.ifname), "enp3s0");
                snprintf(n.mac, sizeof(n.mac), "%s", mac);
                snprintf(n.ipv4, sizeof(n.ipv4), "%s", ipv4);
                ASSERT_OK(bbt_store_net_set(s, &n));
        }
        return t.id;
}

static struct bbt_store *new_store(void)
{
        struct bbt_store *s;
        char err[300];

        snprintf(dir, sizeof(dir), "%s", bbt_test_tmp_init("ctl"));
        snprintf(store_path, sizeof(store_path), "%s/store.db", dir);
        if (bbt_store_open(store_path, false, &s, err, sizeof(err)) < 0)
                FAIL("open %s: %s", store_path, err);
        return s;
}

/* The neighbour is online, of the same school and subnet, not the target;
 * of several, the one online the longest. */
TEST(neighbour_same_school_subnet_online)
{
        struct bbt_store *s = new_store();
        struct bbt_ctl_wake w;
        char err[300];

        add_terminal(s, SCHOOL, "r1", false, 0, "00:1a:2b:3c:4d:01", "10.9.0.11", 24);    /* the target */
        add_terminal(s, SCHOOL, "r2", false, 0, "00:1a:2b:3c:4d:02", "10.9.0.12", 24);    /* offline */
        add_terminal(s, SCHOOL, "r3", true, 500, "00:1a:2b:3c:4d:03", "10.9.1.13", 24);   /* other subnet */
        add_terminal(s, "3151010002", "r4", true, 100, "00:1a:2b:3c:4d:04", "10.9.0.14", 24); /* other school */
        add_terminal(s, SCHOOL, "r5", true, 300, "00:1a:2b:3c:4d:05", "10.9.0.15", 24);
        add_terminal(s, SCHOOL, "r6", true, 200, "00:1a:2b:3c:4d:06", "10.9.0.16", 24);   /* online longest */
        add_terminal(s, SCHOOL, "r7", true, 50, "00:1a:2b:3c:4d:07", "10.9.0.17", 16);    /* other prefix */
        add_terminal(s, SCHOOL, "r8", true, 0, NULL, NULL, 0);                            /* no NIC known */
        add_terminal(s, SCHOOL, "r9", false, 0, "00:1a:2b:3c:4d:09", "", -1);             /* no address */
        ASSERT_OK(bbt_ctl_pick_neighbour(s, COUNTY, SCHOOL, "r1", &w, err, sizeof(err)));
        ASSERT_STR_EQ(w.via, "r6");
        ASSERT_STR_EQ(w.mac, "00:1a:2b:3c:4d:01");
        ASSERT_STR_EQ(w.via_ipv4, "10.9.0.16");
        /* r3's subnet has only r3; r2 is offline and is nobody's neighbour. */
        ASSERT_EQ(bbt_ctl_pick_neighbour(s, COUNTY, SCHOOL, "r3", &w, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "no online terminal of school " SCHOOL " in its subnet 10.9.1.13/24");
        ASSERT_EQ(bbt_ctl_pick_neighbour(s, COUNTY, SCHOOL, "r8", &w, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "names no wired NIC");
        ASSERT_EQ(bbt_ctl_pick_neighbour(s, COUNTY, SCHOOL, "r9", &w, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "no IPv4 address known");
        ASSERT_EQ(bbt_ctl_pick_neighbour(s, COUNTY, SCHOOL, "nobody", &w, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "not in the store");
        /* r6 offline now: r5 (the same subnet, online) takes over. */
        {
                struct bbt_store_terminal t = { .first_seq = -1, .high_seq = -1, .boot = -1, .inventory_seq = -1 };

                snprintf(t.county, sizeof(t.county), COUNTY);
                snprintf(t.school, sizeof(t.school), SCHOOL);
                snprintf(t.terminal, sizeof(t.terminal), "r6");
                t.id = 6;
                ASSERT_OK(bbt_store_terminal_update(s, &t));
        }
        ASSERT_OK(bbt_ctl_pick_neighbour(s, COUNTY, SCHOOL, "r1", &w, err, sizeof(err)));
        ASSERT_STR_EQ(w.via, "r5");
        bbt_store_close(s);
        bbt_test_passed();
}

/* ---- end to end ---- */

static char conf_path[320], agent_conf[320], agent_log[320], state_dir[320], out_path[320], err_path[320];

static void write_text(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void write_text(const char *path, const char *fmt, ...)
{
        FILE *f = fopen(path, "we");
        va_list ap;

        if (!f)
                FAIL("open %s: %s", path, strerror(errno));
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        if (fclose(f) != 0)
                FAIL("write %s", path);
}

/* Runs bbt-ctl with ARGS (NULL-terminated); returns its exit status, with its
 * table in out_path and its progress in err_path. */
static int ctl(const char *first, ...)
{
        static char exe[512];
        char *argv[32];
        int n = 0, st;
        va_list ap;

        argv[n++] = (char *)bbt_test_exe("county/ctl", "bbt-ctl", exe, sizeof(exe));
        argv[n++] = (char *)"-c";
        argv[n++] = conf_path;
        va_start(ap, first);
        for (const char *a = first; a && n < 31; a = va_arg(ap, const char *))
                argv[n++] = (char *)a;
        va_end(ap);
        argv[n] = NULL;
        unlink(out_path);
        unlink(err_path);
        st = bbt_test_run(argv, out_path, err_path, 15000);
        if (!WIFEXITED(st))
                FAIL("bbt-ctl: %s", bbt_test_status_text(st));
        return WEXITSTATUS(st);
}

/* The table's row for TERMINAL (county/school/terminal) in out_path, its
 * columns joined by one space; "" if none. */
static const char *row(const char *terminal)
{
        static char line[2048];
        char raw[2048];
        FILE *f = fopen(out_path, "re");

        line[0] = '\0';
        while (f && fgets(raw, sizeof(raw), f)) {
                size_t n = 0;

                if (strncmp(raw, terminal, strlen(terminal)) != 0 || raw[strlen(terminal)] != ' ')
                        continue;
                for (const char *p = raw; *p && *p != '\n'; p++)
                        if (*p != ' ' || (n && line[n - 1] != ' '))
                                line[n++] = *p;
                line[n] = '\0';
                break;
        }
        if (f)
                fclose(f);
        return line;
}

static int audit_cb(void *u, const struct bbt_store_audit *a)
{
        char *out = u;
        size_t n = strlen(out);

        snprintf(out + n, 4096 - n, "%s %s %s %s %s|", a->terminal, a->via[0] ? a->via : "-", a->op, a->result,
                 a->operator_name);
        ASSERT(a->done_ms >= a->sent_ms);
        ASSERT_STR_CONTAINS(a->cmd_id, "ctl-");
        return 0;
}

TEST(end_to_end_with_agent)
{
        struct bbt_test_broker b = { 0 };
        struct bbt_test_daemon a;
        struct bbt_store *s = new_store();
        char exe[512], dry_run[400], audit[4096] = "", at[320];
        char *argv[4];
        int64_t t0;

        /* r1 runs the real agent; r2 has none (offline), in r1's subnet. */
        add_terminal(s, SCHOOL, "r1", true, 1000, "00:1a:2b:3c:4d:01", "10.9.0.11", 24);
        add_terminal(s, SCHOOL, "r2", false, 0, "00:1a:2b:3c:4d:02", "10.9.0.12", 24);
        bbt_store_close(s);
        bbt_test_broker_start(&b, NULL);
        snprintf(conf_path, sizeof(conf_path), "%s/aggregator.conf", dir);
        snprintf(agent_conf, sizeof(agent_conf), "%s/agent.conf", dir);
        snprintf(agent_log, sizeof(agent_log), "%s/agent.log", dir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
        snprintf(out_path, sizeof(out_path), "%s/ctl.out", dir);
        snprintf(err_path, sizeof(err_path), "%s/ctl.err", dir);
        snprintf(dry_run, sizeof(dry_run), "%s/poweroff.dry-run", state_dir);
        ASSERT_OK(mkdir(state_dir, 0700));
        write_text(conf_path, "[broker]\nhost = 127.0.0.1\nport = %d\nusername = watch\n\n[store]\npath = %s\n",
                   b.port, store_path);
        /* The wake test proves the routing, not the packet (tests/test-agent.c does):
         * no such interface here, so the neighbour answers with its reason. */
        write_text(agent_conf,
                   "[identity]\ncounty = " COUNTY "\nschool = " SCHOOL "\nterminal = r1\n\n"
                   "[broker]\nhost = 127.0.0.1\nport = %d\nbackoff_min = 200ms\nbackoff_max = 1s\n\n"
                   "[agent]\nstate_dir = %s\nlog_level = debug\nheartbeat_interval = 1s\n\n[spool]\ndir = %s/spool\n\n"
                   "[power]\nmethod = dry-run\n\n[network]\ninterface = bbtnone0\n\n[input]\nenabled = no\n\n"
                   "[display]\nenabled = no\n\n[audio]\nenabled = no\n\n[peripherals]\nenabled = no\n",
                   b.port, state_dir, dir);
        bbt_test_dump_tail_on_failure(agent_log, 32 * 1024);
        bbt_test_dump_tail_on_failure(err_path, 8 * 1024);
        argv[0] = (char *)bbt_test_exe("agent", "bbt-agent", exe, sizeof(exe));
        argv[1] = (char *)"-c", argv[2] = agent_conf, argv[3] = NULL;
        memset(&a, 0, sizeof(a));
        bbt_test_daemon_start(&a, "bbt-agent", argv, agent_log);
        BBT_WAIT_FOR((bbt_test_daemon_alive(&a), bbt_test_file_contains(agent_log, "connected to")), 10000,
                     "the agent did not connect");

        /* A power-off a second ahead: scheduled, then done (dry run). */
        ASSERT_EQ(ctl("poweroff", "--at", "+1s", COUNTY "/" SCHOOL "/r1", NULL), 0);
        ASSERT(bbt_test_file_contains(out_path, COUNTY "/" SCHOOL "/r1"));
        ASSERT(bbt_test_file_contains(out_path, "\"pending\":1"));
        ASSERT(bbt_test_file_contains(err_path, "[1/1] " COUNTY "/" SCHOOL "/r1 poweroff --at +1s: ok"));
        BBT_WAIT_FOR((bbt_test_daemon_alive(&a), bbt_test_count_in_file(dry_run, "poweroff ") == 1), 5000,
                     "the power-off did not happen");
        /* set: the effective value; a bad value gives the agent's reason. */
        ASSERT_EQ(ctl("set", "idle_timeout=30s", COUNTY "/" SCHOOL "/r1", NULL), 0);
        ASSERT_STR_CONTAINS(row(COUNTY "/" SCHOOL "/r1"), "ok {\"heartbeat_interval_ms\":1000,\"idle_timeout_ms\":30000}");
        ASSERT_EQ(ctl("set", "idle_timeout=1s", COUNTY "/" SCHOOL "/r1", NULL), 1);
        ASSERT_STR_CONTAINS(row(COUNTY "/" SCHOOL "/r1"), "set {\"idle_timeout\":\"1s\"} - error agent.idle_timeout: expected a duration between 10s and 1h");
        /* The school: r1 answers, r2 is offline (a timeout row, exit status 1). */
        t0 = bbt_test_wall_ms();
        ASSERT_EQ(ctl("--timeout", "1s", "projector", "off", COUNTY "/" SCHOOL, NULL), 1);
        ASSERT_LT(bbt_test_wall_ms() - t0, 5000);
        ASSERT_STR_CONTAINS(row(COUNTY "/" SCHOOL "/r2"), "projector off - timeout no reply in 1.0s");
        ASSERT_STR_CONTAINS(row(COUNTY "/" SCHOOL "/r1"), "projector off - error no projector configured");
        /* wake r2: sent to r1, its neighbour, which answers. */
        ASSERT_EQ(ctl("--dry-run", "wake", COUNTY "/" SCHOOL "/r2", NULL), 0);
        ASSERT_STR_CONTAINS(row(COUNTY "/" SCHOOL "/r2"), "wake r1 dry-run {\"mac\":\"00:1a:2b:3c:4d:02\"}");
        ASSERT_EQ(ctl("wake", COUNTY "/" SCHOOL "/r2", NULL), 1);
        ASSERT_STR_CONTAINS(row(COUNTY "/" SCHOOL "/r2"), "wake r1 error");
        ASSERT_STR_CONTAINS(row(COUNTY "/" SCHOOL "/r2"), "bbtnone0");
        /* A list from standard input is refused when a line is not a target. */
        snprintf(at, sizeof(at), "%s/list", dir);
        write_text(at, "# r1 only\n" COUNTY "/" SCHOOL "/r1\nr9\n");
        ASSERT_EQ(ctl("-f", at, "set", "idle_timeout=30s", NULL), 2);
        ASSERT(bbt_test_file_contains(err_path, "list:3: r9: expected COUNTY/SCHOOL/TERMINAL"));

        /* The audit trail: every command sent, with its result and who. */
        ASSERT_OK(bbt_store_open(store_path, true, &s, audit, sizeof(audit)));
        audit[0] = '\0';
        ASSERT_OK(bbt_store_audits_each_in(s, NULL, audit_cb, audit));
        bbt_store_close(s);
        ASSERT_STR_EQ(audit, "r1 - shutdown_at ok watch|r1 - set ok watch|r1 - set error watch|"
                             "r1 - projector_power error watch|r2 - projector_power timeout watch|"
                             "r2 r1 wake error watch|");

        /* ... and bbt-report shows them (English, CSV: a row per command). */
        {
                static char rexe[512];
                char *rargv[] = { (char *)bbt_test_exe("county/report", "bbt-report", rexe, sizeof(rexe)),
                                  (char *)"-c", conf_path, (char *)"audit", (char *)"--lang", (char *)"en", (char *)"--format",
                                  (char *)"csv", NULL };
                char *csv;

                ASSERT_EQ(bbt_test_run(rargv, out_path, err_path, 10000), 0);
                csv = bbt_test_slurp(out_path);
                ASSERT_STR_CONTAINS(csv, ",watch," SCHOOL ",r2,r1,wake,\"{\"\"mac\"\":\"\"00:1a:2b:3c:4d:02\"\"}\",error,");
                ASSERT_STR_CONTAINS(csv, ",r2,,projector power,\"{\"\"on\"\":false}\",timeout,\"no reply in 1.0s");
                ASSERT_STR_CONTAINS(csv, ",r1,,set,\"{\"\"idle_timeout\"\":\"\"30s\"\"}\",ok,");
                free(csv);
        }

        /* No broker there: not_sent rows, exit status 1, within the timeout. */
        {
                char port[32];

                snprintf(port, sizeof(port), "broker.port=%d", bbt_test_free_port());
                ASSERT_EQ(ctl("-o", port, "--timeout", "500ms", "set", "idle_timeout=30s", COUNTY "/" SCHOOL "/r1",
                              NULL), 1);
                ASSERT_STR_CONTAINS(row(COUNTY "/" SCHOOL "/r1"), "- not_sent no connection to the broker");
        }

        bbt_test_daemon_term(&a, 5000);
        bbt_test_broker_stop(&b);
        bbt_test_passed();
}
