/* Health readings from a fixture /proc and /sys tree built by the test, and the health driver around them. */
/* bbt-test: label=unit timeout=20 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "health.h"
#include "fixture-tree.h"
#include "test.h"

static char root[64];

static void put(const char *rel, const char *text)
{
        bbt_test_tree_put(root, rel, text);
}

static int synced(void)
{
        return 1;
}

static void make_tree(void)
{
        snprintf(root, sizeof(root), "%s", bbt_test_tree_new("health"));
        put("proc/uptime", "12345.67 23456.78\n");
        put("proc/loadavg", "0.52 0.31 0.08 1/123 4567\n");
        put("proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n");
        put("proc/meminfo", "MemTotal:        4000000 kB\nMemFree:          100000 kB\nMemAvailable:    1500000 kB\n");
        put("sys/class/thermal/thermal_zone0/temp", "45000\n");
        put("sys/class/thermal/thermal_zone0/type", "acpitz\n");
        put("sys/class/thermal/thermal_zone1/temp", "71500\n");
        put("sys/class/thermal/thermal_zone1/type", "x86_pkg_temp\n");
        put("sys/class/thermal/cooling_device0/type", "Fan\n");
        put("sys/class/hwmon/hwmon2/name", "nvme\n");
        put("sys/class/hwmon/hwmon2/temp1_input", "48850\n");
        put("sys/class/hwmon/hwmon2/temp1_label", "Composite\n");
        put("sys/class/net/lo/operstate", "unknown\n");
        put("sys/class/net/wlan0/operstate", "down\n");
        put("sys/class/net/eth0/operstate", "up\n");
}

TEST(reads_fixture_tree)
{
        struct bbt_health h = { .clock_synced = synced };
        struct bbt_hb hb = { 0 };
        char err[256];

        make_tree();
        ASSERT_OK(bbt_health_read(&h, root, root, &hb, err, sizeof(err)));
        ASSERT_EQ(hb.uptime, 12345);
        ASSERT_DBL_NEAR(hb.load[0], 0.52, 1e-9);
        ASSERT_DBL_NEAR(hb.load[2], 0.08, 1e-9);
        ASSERT_DBL_NEAR(hb.cpu, 0, 0); /* first reading has no interval */
        ASSERT_EQ(hb.mem_total, 4000000LL * 1024);
        ASSERT_EQ(hb.mem_available, 1500000LL * 1024);
        ASSERT_GT(hb.disk_root.total, 0);
        /* The spool on the root's own file system: no separate disk.spool. */
        ASSERT(!hb.has_disk_spool);
        {
                struct stat a, b;

                /* A spool on another file system (here /dev/shm, a tmpfs) is reported. */
                if (stat(root, &a) == 0 && stat("/dev/shm", &b) == 0 && a.st_dev != b.st_dev) {
                        ASSERT_OK(bbt_health_read(&h, root, "/dev/shm", &hb, err, sizeof(err)));
                        ASSERT(hb.has_disk_spool);
                        ASSERT_GT(hb.disk_spool.total, 0);
                }
        }
        ASSERT(hb.has_temp);
        ASSERT_DBL_NEAR(hb.temp_max, 71.5, 1e-9);
        ASSERT_STR_EQ(hb.temp_source, "thermal_zone1 (x86_pkg_temp)");
        ASSERT_EQ(hb.n_net, 2);
        ASSERT_STR_EQ(hb.net[0].ifname, "eth0");
        ASSERT(hb.net[0].up);
        ASSERT_STR_EQ(hb.net[1].ifname, "wlan0");
        ASSERT(!hb.net[1].up);
        ASSERT(hb.clock_synced);

        /* 100 more busy jiffies out of 400: 25 %. */
        put("proc/stat", "cpu  150 0 150 1100 0 0 0 0 0 0\n");
        ASSERT_OK(bbt_health_read(&h, root, NULL, &hb, err, sizeof(err)));
        ASSERT_DBL_NEAR(hb.cpu, 25.0, 1e-9);
        ASSERT(!hb.has_disk_spool);
}

TEST(hwmon_hotter_than_thermal_zones)
{
        struct bbt_health h = { .clock_synced = synced };
        struct bbt_hb hb = { 0 };
        char err[256];

        make_tree();
        put("sys/class/hwmon/hwmon0/name", "coretemp\n");
        put("sys/class/hwmon/hwmon0/temp1_input", "88000\n");
        put("sys/class/hwmon/hwmon0/temp2_input", "garbage\n");
        put("sys/class/hwmon/hwmon0/temp3_input", "999999\n"); /* implausible: ignored */
        put("sys/class/hwmon/hwmon0/temp1_crit", "100000\n");  /* not a reading */
        ASSERT_OK(bbt_health_read(&h, root, NULL, &hb, err, sizeof(err)));
        ASSERT(hb.has_temp);
        ASSERT_DBL_NEAR(hb.temp_max, 88.0, 1e-9);
        ASSERT_STR_EQ(hb.temp_source, "hwmon0/temp1 (coretemp)");
}

TEST(heartbeat_from_readings_validates)
{
        struct bbt_health h = { .clock_synced = synced };
        struct bbt_msg m;
        char err[256], *json;
        size_t len;

        make_tree();
        bbt_msg_init(&m, BBT_CH_HB);
        ASSERT_OK(bbt_health_read(&h, root, root, &m.body.hb, err, sizeof(err)));
        ASSERT_OK(bbt_msg_encode(&m, &json, &len, NULL));
        ASSERT_STR_CONTAINS(json, "\"temp\":{\"max\":71.5,\"source\":\"thermal_zone1 (x86_pkg_temp)\"}");
        free(json);
}

TEST(missing_and_malformed_sources)
{
        struct bbt_health h = { .clock_synced = synced };
        struct bbt_hb hb = { 0 };
        char err[256];

        make_tree();
        put("proc/loadavg", "garbage\n");
        ASSERT_EQ(bbt_health_read(&h, root, root, &hb, err, sizeof(err)), -EBADMSG);
        ASSERT_STR_CONTAINS(err, "/proc/loadavg: ");
        ASSERT_EQ(hb.mem_total, 4000000LL * 1024); /* the rest is still read */

        put("proc/loadavg", "0 0 0\n");
        snprintf(err, sizeof(err), "%s/proc/meminfo", root);
        unlink(err);
        ASSERT_EQ(bbt_health_read(&h, root, root, &hb, err, sizeof(err)), -ENOENT);
        ASSERT_STR_CONTAINS(err, "/proc/meminfo: No such file or directory");

        /* No thermal zones, no network: those fields are simply absent. */
        put("proc/meminfo", "MemTotal: 1 kB\nMemAvailable: 1 kB\n");
        bbt_test_tree_remove(root, "sys");
        ASSERT_OK(bbt_health_read(&h, root, root, &hb, err, sizeof(err)));
        ASSERT(!hb.has_temp);
        ASSERT_EQ(hb.n_net, 0);
}

/* ---- the driver ---- */

struct problems {
        unsigned calls, cleared;
        char last[300];
};

static void problem_cb(void *userdata, const char *source, const char *what)
{
        struct problems *p = userdata;

        ASSERT_STR_EQ(source, "health");
        p->calls++;
        if (what)
                snprintf(p->last, sizeof(p->last), "%s", what);
        else
                p->cleared++;
}

static void stopped_cb(void *userdata)
{
        (*(int *)userdata)++;
}

TEST(driver_fills_heartbeat_and_reports_problems_once)
{
        struct problems p = { 0 };
        struct bbt_driver_events ev = { .problem = problem_cb, .userdata = &p };
        struct bbt_health_options o = { .clock_synced = synced };
        struct bbt_driver_env env;
        struct bbt_driver *d;
        struct bbt_hb hb = { 0 };
        uv_loop_t loop;
        int stopped = 0;

        make_tree();
        ASSERT_OK(uv_loop_init(&loop));
        env = (struct bbt_driver_env){ .loop = &loop, .root = root, .events = &ev };
        ASSERT_OK(bbt_health_new(&env, &o, &d));
        ASSERT_STR_EQ(d->ops->name, "health");
        ASSERT(d->ops->heartbeat != NULL);
        ASSERT_OK(d->ops->start(d));

        d->ops->heartbeat(d, &hb);
        ASSERT_EQ(hb.uptime, 12345);
        ASSERT_EQ(hb.n_net, 2);
        ASSERT(hb.clock_synced);
        ASSERT_EQ(p.calls, 0);

        /* A required source breaks: said once, with where and what follows. */
        put("proc/loadavg", "garbage\n");
        d->ops->heartbeat(d, &hb);
        d->ops->heartbeat(d, &hb);
        ASSERT_EQ(p.calls, 1);
        ASSERT_STR_CONTAINS(p.last, "/proc/loadavg: ");
        ASSERT_STR_CONTAINS(p.last, "(reported as 0 until it can be read)");
        ASSERT_EQ(hb.mem_total, 4000000LL * 1024); /* the rest is still read */

        /* Another error is said again; reading again clears it once. */
        put("proc/loadavg", "0 0 0\n");
        bbt_test_tree_remove(root, "proc/meminfo");
        d->ops->heartbeat(d, &hb);
        ASSERT_EQ(p.calls, 2);
        ASSERT_STR_CONTAINS(p.last, "/proc/meminfo: No such file or directory");
        put("proc/meminfo", "MemTotal: 1 kB\nMemAvailable: 1 kB\n");
        d->ops->heartbeat(d, &hb);
        d->ops->heartbeat(d, &hb);
        ASSERT_EQ(p.calls, 3);
        ASSERT_EQ(p.cleared, 1);

        /* stop() calls back from the loop, not inside the call. */
        d->ops->stop(d, stopped_cb, &stopped);
        ASSERT_EQ(stopped, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ(stopped, 1);
        d->ops->destroy(d);
        ASSERT_OK(uv_loop_close(&loop));
}

TEST(driver_probe_shows_readings_and_problem)
{
        struct bbt_health_options o = { .clock_synced = synced };
        struct bbt_driver_env env = { .root = NULL };
        struct bbt_driver *d;
        char *text = NULL;
        size_t size = 0;
        FILE *out;

        make_tree();
        env.root = root;
        ASSERT_OK(bbt_health_new(&env, &o, &d));
        put("proc/meminfo", "MemTotal: 4 kB\n"); /* no MemAvailable: malformed */
        out = open_memstream(&text, &size);
        ASSERT(out != NULL);
        /* Not a device problem: the readings and the problem are shown, 0 returned. */
        ASSERT_OK(d->ops->probe(d, out));
        fclose(out);
        ASSERT_STR_CONTAINS(text, "uptime 12345 s, load 0.52 0.31 0.08, memory ");
        ASSERT_STR_CONTAINS(text, "; clock synchronised\n");
        ASSERT_STR_CONTAINS(text, "hottest sensor: 71.5 C (thermal_zone1 (x86_pkg_temp))\n");
        ASSERT_STR_CONTAINS(text, "network eth0: up\nnetwork wlan0: down\n");
        ASSERT_STR_CONTAINS(text, "problem: ");
        ASSERT_STR_CONTAINS(text, "/proc/meminfo: Bad message\n");
        free(text);
        /* Never started, no loop: stop() calls back at once. */
        {
                int stopped = 0;

                d->ops->stop(d, stopped_cb, &stopped);
                ASSERT_EQ(stopped, 1);
        }
        d->ops->destroy(d);
}
