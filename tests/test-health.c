/* Health readings from a fixture /proc and /sys tree built by the test. */
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
