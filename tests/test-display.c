/* Display driver against fixture /sys/class/{drm,backlight} trees built by the test. */
/* bbt-test: label=unit timeout=20 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "display.h"
#include "fixture-tree.h"
#include "test.h"

static char root[64];

static void make_root(void)
{
        snprintf(root, sizeof(root), "%s", bbt_test_tree_new("display"));
}

static void make_parents(const char *rel)
{
        bbt_test_tree_mkdirs(root, rel);
}

static void put_bytes(const char *rel, const char *data, size_t len)
{
        bbt_test_tree_put_bytes(root, rel, data, len);
}

static void put(const char *rel, const char *text)
{
        bbt_test_tree_put(root, rel, text);
}

static void remove_tree(const char *rel)
{
        bbt_test_tree_remove(root, rel);
}

static void connector(const char *name, const char *status, const char *enabled, const char *dpms)
{
        char rel[256];

        snprintf(rel, sizeof(rel), "sys/class/drm/%s/status", name);
        put(rel, status);
        snprintf(rel, sizeof(rel), "sys/class/drm/%s/enabled", name);
        put(rel, enabled);
        snprintf(rel, sizeof(rel), "sys/class/drm/%s/dpms", name);
        put(rel, dpms);
}

static void backlight(const char *name, const char *bl_power, const char *brightness)
{
        char rel[256];

        snprintf(rel, sizeof(rel), "sys/class/backlight/%s/bl_power", name);
        put(rel, bl_power);
        snprintf(rel, sizeof(rel), "sys/class/backlight/%s/brightness", name);
        put(rel, brightness);
        snprintf(rel, sizeof(rel), "sys/class/backlight/%s/max_brightness", name);
        put(rel, "255\n");
}

/* A card with the files a real one has beside its connectors. */
static void card(void)
{
        put("sys/class/drm/version", "drm 1.1.0 20060810\n");
        put("sys/class/drm/card0/dev", "226:0\n");
        put("sys/class/drm/renderD128/dev", "226:128\n");
}

static enum bbt_display_state read_state(char *source, size_t size)
{
        enum bbt_display_state state = BBT_DISPLAY_UNKNOWN;

        ASSERT_OK(bbt_display_read(root, &state, source, size));
        return state;
}

#define ASSERT_STATE(want, want_source)                                            \
        do {                                                                       \
                char src_[300];                                                    \
                ASSERT_EQ(read_state(src_, sizeof(src_)), want);                   \
                ASSERT_STR_EQ(src_, want_source);                                  \
        } while (0)

/* What the driver reported. */
struct recorder {
        int n;
        bool on[32];
        char source[32][300];
        bool stopped;
};

static void on_display(void *userdata, bool on, const char *source)
{
        struct recorder *rec = userdata;

        ASSERT_LT(rec->n, 32);
        rec->on[rec->n] = on;
        snprintf(rec->source[rec->n], sizeof(rec->source[rec->n]), "%s", source);
        rec->n++;
}

struct harness {
        uv_loop_t loop;
        struct bbt_driver_events events;
        struct recorder rec;
        struct bbt_driver *driver;
        int want; /* for has_events */
};

/* A loop and a started driver reporting into H->rec. With LOW, that
 * RLIMIT_NOFILE is in force only while the driver's start() runs. */
static void start_with_limit(struct harness *h, uint64_t safety_poll_ms, const struct rlimit *low,
                             const struct rlimit *saved)
{
        struct bbt_display_options opts = { .safety_poll_ms = safety_poll_ms };
        struct bbt_driver_env env;
        int r;

        memset(h, 0, sizeof(*h));
        ASSERT_OK(uv_loop_init(&h->loop));
        h->events.display = on_display;
        h->events.userdata = &h->rec;
        env = (struct bbt_driver_env){ .loop = &h->loop, .root = root, .events = &h->events };
        ASSERT_OK(bbt_display_new(&env, &opts, &h->driver));
        if (low)
                ASSERT_OK(setrlimit(RLIMIT_NOFILE, low) < 0 ? -errno : 0);
        r = h->driver->ops->start(h->driver);
        if (low)
                ASSERT_OK(setrlimit(RLIMIT_NOFILE, saved) < 0 ? -errno : 0);
        ASSERT_OK(r);
}

static void start(struct harness *h, uint64_t safety_poll_ms)
{
        start_with_limit(h, safety_poll_ms, NULL, NULL);
}

static bool has_events(void *arg)
{
        struct harness *h = arg;

        return h->rec.n >= h->want;
}

/* Runs the loop until the driver has reported N events in all (at most TIMEOUT_MS). */
static bool wait_events(struct harness *h, int n, int timeout_ms)
{
        h->want = n;
        return bbt_test_run_until(&h->loop, has_events, h, timeout_ms);
}

static void stopped_cb(void *userdata)
{
        ((struct recorder *)userdata)->stopped = true;
}

static bool is_stopped(void *arg)
{
        return ((struct recorder *)arg)->stopped;
}

static void finish(struct harness *h)
{
        h->driver->ops->stop(h->driver, stopped_cb, &h->rec);
        ASSERT(!h->rec.stopped); /* DONE comes from the loop, not from stop() */
        ASSERT(bbt_test_run_until(&h->loop, is_stopped, &h->rec, 2000));
        h->driver->ops->destroy(h->driver);
        bbt_test_loop_close(&h->loop);
}

TEST(connected_enabled_on_is_on)
{
        struct harness h;

        make_root();
        card();
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "On\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card0-HDMI-A-1");

        start(&h, 10000);
        ASSERT(wait_events(&h, 1, 2000));
        ASSERT_EQ(h.rec.n, 1);
        ASSERT(h.rec.on[0]);
        ASSERT_STR_EQ(h.rec.source[0], "drm card0-HDMI-A-1");
        finish(&h);
}

TEST(dpms_off_is_off)
{
        struct harness h;

        make_root();
        card();
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "Off\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "drm card0-HDMI-A-1");
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "Standby\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "drm card0-HDMI-A-1");
        connector("card0-HDMI-A-1", "connected\n", "disabled\n", "On\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "drm card0-HDMI-A-1");

        start(&h, 10000);
        ASSERT(wait_events(&h, 1, 2000));
        ASSERT(!h.rec.on[0]);
        finish(&h);
}

TEST(disconnected_is_off)
{
        make_root();
        card();
        /* A stale enabled/On after unplugging does not make it on. */
        connector("card0-HDMI-A-1", "disconnected\n", "enabled\n", "On\n");
        connector("card0-DP-1", "disconnected\n", "disabled\n", "Off\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "drm card0-DP-1");
}

TEST(backlight_bl_power_off_is_off)
{
        make_root();
        card();
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "On\n");
        backlight("intel_backlight", "0\n", "120\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card0-HDMI-A-1");
        backlight("intel_backlight", "4\n", "120\n"); /* FB_BLANK_POWERDOWN */
        ASSERT_STATE(BBT_DISPLAY_OFF, "backlight intel_backlight");
        backlight("intel_backlight", "1\n", "120\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "backlight intel_backlight");
}

TEST(backlight_brightness_zero_is_off)
{
        make_root();
        card();
        connector("card0-eDP-1", "connected\n", "enabled\n", "On\n");
        backlight("acpi_video0", "0\n", "0\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "backlight acpi_video0");
        backlight("acpi_video0", "0\n", "1\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card0-eDP-1");
}

TEST(backlight_only_panel)
{
        struct harness h;

        /* Some smart panels: a backlight, no DRM connector information. */
        make_root();
        backlight("panel_backlight", "0\n", "80\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "backlight panel_backlight");

        start(&h, 100);
        ASSERT(wait_events(&h, 1, 2000));
        ASSERT(h.rec.on[0]);
        ASSERT_STR_EQ(h.rec.source[0], "backlight panel_backlight");
        backlight("panel_backlight", "0\n", "0\n");
        ASSERT(wait_events(&h, 2, 2000));
        ASSERT(!h.rec.on[1]);
        ASSERT_STR_EQ(h.rec.source[1], "backlight panel_backlight");
        backlight("panel_backlight", "4\n", "80\n");
        ASSERT(!wait_events(&h, 3, 400)); /* still off */
        backlight("panel_backlight", "0\n", "80\n");
        ASSERT(wait_events(&h, 3, 2000));
        ASSERT(h.rec.on[2]);
        finish(&h);
}

TEST(nothing_is_unknown)
{
        struct harness h;
        char out[4096] = "";
        FILE *f;

        make_root();
        ASSERT_STATE(BBT_DISPLAY_UNKNOWN, "");
        /* A card without connectors, and a backlight with nothing readable, tell nothing either. */
        card();
        put("sys/class/backlight/broken/max_brightness", "255\n");
        put("sys/class/drm/card0-HDMI-A-1/enabled", "enabled\n"); /* no status */
        ASSERT_STATE(BBT_DISPLAY_UNKNOWN, "");

        start(&h, 50);
        ASSERT(!wait_events(&h, 1, 400));
        ASSERT_EQ(h.rec.n, 0);

        f = fmemopen(out, sizeof(out) - 1, "w");
        ASSERT(f);
        ASSERT_OK(h.driver->ops->probe(h.driver, f));
        fclose(f);
        ASSERT_STR_CONTAINS(out, "display: unknown");
        ASSERT_STR_CONTAINS(out, "nothing will be reported");
        ASSERT_STR_CONTAINS(out, root);
        finish(&h);
}

TEST(multiple_connectors_one_on)
{
        make_root();
        card();
        connector("card0-DP-1", "disconnected\n", "disabled\n", "Off\n");
        connector("card0-HDMI-A-1", "connected\n", "disabled\n", "Off\n");
        connector("card0-HDMI-A-2", "connected\n", "enabled\n", "On\n");
        connector("card1-VGA-1", "connected\n", "enabled\n", "Off\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card0-HDMI-A-2");
        connector("card0-HDMI-A-2", "connected\n", "enabled\n", "Suspend\n");
        /* Off: named after the first connector with something plugged in. */
        ASSERT_STATE(BBT_DISPLAY_OFF, "drm card0-HDMI-A-1");
        connector("card1-VGA-1", "connected\n", "enabled\n", "On\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card1-VGA-1");
}

TEST(unknown_status_and_writeback)
{
        make_root();
        card();
        /* VGA without load detection says "unknown" yet is driven: it counts. */
        connector("card0-VGA-1", "unknown\n", "enabled\n", "On\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card0-VGA-1");
        connector("card0-VGA-1", "unknown\n", "disabled\n", "Off\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "drm card0-VGA-1");
        /* A writeback connector has no screen behind it. */
        remove_tree("sys/class/drm/card0-VGA-1");
        connector("card0-Writeback-1", "unknown\n", "enabled\n", "On\n");
        ASSERT_STATE(BBT_DISPLAY_UNKNOWN, "");
}

TEST(backlight_of_one_connector)
{
        char path[512];

        /* A laptop-style panel (eDP with its own backlight) and a projector on HDMI. */
        make_root();
        card();
        connector("card0-eDP-1", "connected\n", "enabled\n", "On\n");
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "On\n");
        backlight("intel_backlight", "0\n", "0\n");
        snprintf(path, sizeof(path), "%s/sys/class/backlight/intel_backlight/device", root);
        ASSERT_OK(symlink("../../card0-eDP-1", path) < 0 ? -errno : 0);
        /* The panel's backlight is off, but the projector still shows. */
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card0-HDMI-A-1");
        connector("card0-HDMI-A-1", "disconnected\n", "disabled\n", "Off\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "backlight intel_backlight");
        backlight("intel_backlight", "0\n", "90\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card0-eDP-1");
        /* A backlight not tied to a connector (acpi_video) speaks for the whole display. */
        backlight("acpi_video0", "0\n", "0\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "backlight acpi_video0");
}

TEST(safety_poll_notices_change)
{
        struct harness h;
        uint64_t t0;

        make_root();
        card();
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "On\n");
        start(&h, 300);
        ASSERT(wait_events(&h, 1, 2000));
        ASSERT(h.rec.on[0]);

        /* dpms goes Off without any uevent: the next safety poll sees it. */
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "Off\n");
        t0 = bbt_test_now_ms();
        ASSERT(wait_events(&h, 2, 3000));
        ASSERT_LE(bbt_test_now_ms() - t0, 300 + 500); /* one interval, plus slack for a loaded machine */
        ASSERT(!h.rec.on[1]);
        ASSERT_STR_EQ(h.rec.source[1], "drm card0-HDMI-A-1");
        finish(&h);
}

/* With nothing to watch the driver stops polling (it waits for a drm or
 * backlight uevent, tests/test-display_udev.c): a connector that appears
 * without one is not read. */
TEST(no_display_no_poll)
{
        struct harness h;
        int r;

        make_root();
        start(&h, 50);
        r = bbt_display_monitor_error(h.driver);
        if (r < 0)
                bbt_test_skip("no uevent socket here (%s): the driver keeps polling", strerror(-r));
        ASSERT(!wait_events(&h, 1, 300));
        card();
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "On\n");
        /* Ten poll intervals: a driver still polling would have read it. */
        ASSERT(!wait_events(&h, 1, 500));
        ASSERT_EQ(h.rec.n, 0);
        finish(&h);
}

TEST(events_only_on_change)
{
        struct harness h;

        make_root();
        card();
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "On\n");
        connector("card0-HDMI-A-2", "disconnected\n", "disabled\n", "Off\n");
        start(&h, 50);
        ASSERT(wait_events(&h, 1, 2000));
        /* Many polls, nothing changed: nothing more. */
        ASSERT(!wait_events(&h, 2, 400));
        /* Another connector takes over: still on, so still nothing. */
        connector("card0-HDMI-A-2", "connected\n", "enabled\n", "On\n");
        connector("card0-HDMI-A-1", "disconnected\n", "disabled\n", "Off\n");
        ASSERT(!wait_events(&h, 2, 300));
        /* (A card going away and coming back, which uevents announce, is in
         * test-display_udev.c's poll_waits_for_a_display.) */
        connector("card0-HDMI-A-2", "connected\n", "enabled\n", "Off\n");
        ASSERT(wait_events(&h, 2, 2000));
        ASSERT(!h.rec.on[1]);
        ASSERT(!wait_events(&h, 3, 300));
        ASSERT_EQ(h.rec.n, 2);
        finish(&h);
}

TEST(malformed_files)
{
        static const char garbage[] = "\x01\xff\x00connected\x1b[2J";
        char big[8192], out[8192] = "", path[512];
        struct harness h;
        FILE *f;

        make_root();
        card();
        memset(big, 'x', sizeof(big));
        /* Nothing here is a valid "on" connector. */
        put_bytes("sys/class/drm/card0-HDMI-A-1/status", garbage, sizeof(garbage) - 1);
        put("sys/class/drm/card0-HDMI-A-1/enabled", "enabled\n");
        put("sys/class/drm/card0-HDMI-A-1/dpms", "On\n");
        put_bytes("sys/class/drm/card0-HDMI-A-2/status", big, sizeof(big));
        put("sys/class/drm/card0-HDMI-A-2/enabled", "");
        put("sys/class/drm/card0-HDMI-A-2/dpms", "On");
        put("sys/class/drm/card0-DP-1/status", "connected"); /* no enabled, no dpms */
        put("sys/class/drm/card0-DP-2/status", "connected\n");
        put("sys/class/drm/card0-DP-2/enabled", "enabled\n");
        put("sys/class/drm/card0-DP-2/dpms", "on\n"); /* the kernel writes "On" */
        put("sys/class/drm/card0-/status", "connected\n");   /* not a connector name */
        put("sys/class/drm/cardX-DP-3/status", "connected\n");
        make_parents("sys/class/drm/card0-DP-4/status/x"); /* status is a directory */
        put("sys/class/drm/card0-DP-4/enabled", "enabled\n");
        put("sys/class/drm/card0-DP-4/dpms", "On\n");
        snprintf(path, sizeof(path), "%s/sys/class/drm/card0-DP-5", root);
        ASSERT_OK(symlink("nowhere", path) < 0 ? -errno : 0); /* dangling */
        ASSERT_STATE(BBT_DISPLAY_OFF, "drm card0-DP-1");

        /* Backlights with unparseable values say nothing; a valid one still counts. */
        backlight("bad1", "abc\n", "-5\n");
        backlight("bad2", "99999999999999999999999\n", "12x\n");
        put_bytes("sys/class/backlight/bad3/brightness", big, sizeof(big));
        backlight("good", "0\n", "10\n");
        connector("card0-DP-2", "connected\n", "enabled\n", "On\n");
        ASSERT_STATE(BBT_DISPLAY_ON, "drm card0-DP-2");
        /* A bl_power readable on its own still decides. */
        put("sys/class/backlight/bad1/bl_power", "2\n");
        ASSERT_STATE(BBT_DISPLAY_OFF, "backlight bad1");

        start(&h, 50);
        ASSERT(wait_events(&h, 1, 2000));
        ASSERT(!h.rec.on[0]);
        f = fmemopen(out, sizeof(out) - 1, "w");
        ASSERT(f);
        ASSERT_OK(h.driver->ops->probe(h.driver, f));
        fclose(f);
        ASSERT_STR_CONTAINS(out, "display: off (backlight bad1)");
        ASSERT_STR_CONTAINS(out, "drm card0-HDMI-A-1: status=??"); /* control bytes not echoed */
        ASSERT(strchr(out, '\x1b') == NULL);
        finish(&h);
}

TEST(probe_lists_what_it_reads)
{
        struct bbt_driver_env env = { .loop = NULL, .root = NULL, .events = NULL };
        const struct bbt_driver_ops *ops;
        struct bbt_driver *d = NULL;
        char out[4096] = "";
        FILE *f;

        make_root();
        card();
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "On\n");
        connector("card0-DP-1", "disconnected\n", "disabled\n", "Off\n");
        backlight("intel_backlight", "0\n", "120\n");

        ASSERT_EQ(bbt_display_new(&env, NULL, &d), -EINVAL);
        ASSERT(d == NULL);
        env.root = root;
        /* probe() needs no loop and no start(). */
        ASSERT_OK(bbt_display_new(&env, NULL, &d));
        ASSERT_EQ(bbt_display_monitor_error(d), -ENOTCONN);
        f = fmemopen(out, sizeof(out) - 1, "w");
        ASSERT(f);
        ASSERT_OK(d->ops->probe(d, f));
        fclose(f);
        ASSERT_STR_CONTAINS(out, "display: on (drm card0-HDMI-A-1)\n");
        ASSERT_STR_CONTAINS(out, "drm card0-HDMI-A-1: status=connected enabled=enabled dpms=On -> on\n");
        ASSERT_STR_CONTAINS(out, "drm card0-DP-1: status=disconnected enabled=disabled dpms=Off -> off\n");
        ASSERT_STR_CONTAINS(out, "backlight intel_backlight: bl_power=0 brightness=120 -> on\n");
        ASSERT_STR_CONTAINS(out, "re-read on drm/backlight uevents and every 10000 ms");
        ASSERT_STR_CONTAINS(out, "projector");
        /* Without a loop start() refuses; destroy() of a never-started driver is fine. */
        ops = d->ops;
        ASSERT_EQ(ops->start(d), -EINVAL);
        ops->destroy(d);
        ops->destroy(NULL);
}

TEST(stop_without_start)
{
        struct harness h;
        struct bbt_driver_env env;

        make_root();
        memset(&h, 0, sizeof(h));
        ASSERT_OK(uv_loop_init(&h.loop));
        env = (struct bbt_driver_env){ .loop = &h.loop, .root = root, .events = &h.events };
        ASSERT_OK(bbt_display_new(&env, NULL, &h.driver));
        finish(&h);
}

TEST(monitor_failure_is_not_fatal)
{
        struct rlimit saved, low;
        struct harness h;
        int fd, r;

        make_root();
        card();
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "On\n");
        /* No file descriptor left while start() opens its uevent socket. */
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ASSERT(fd >= 0);
        close(fd);
        ASSERT_OK(getrlimit(RLIMIT_NOFILE, &saved));
        low = saved;
        low.rlim_cur = (rlim_t)fd;
        start_with_limit(&h, 100, &low, &saved);
        r = bbt_display_monitor_error(h.driver);
        ASSERT_LT(r, 0);
        fprintf(stderr, "monitor failed as planned: %s\n", strerror(-r));
        /* It still reports, from the safety poll alone. */
        ASSERT(wait_events(&h, 1, 2000));
        ASSERT(h.rec.on[0]);
        connector("card0-HDMI-A-1", "connected\n", "enabled\n", "Off\n");
        ASSERT(wait_events(&h, 2, 2000));
        ASSERT(!h.rec.on[1]);
        ASSERT_EQ(h.driver->ops->start(h.driver), -EALREADY);
        finish(&h);
}
