/* Display driver on a umockdev testbed: a drm/backlight uevent makes it re-read at once, not at the safety poll. */
/* bbt-test: label=unit timeout=20 umockdev */
#include <umockdev.h>

#include "broker.h"
#include "display.h"
#include "test.h"

static UMockdevTestbed *testbed;

static void cleanup(void)
{
        /* Finalizing the testbed removes its directory. */
        if (testbed)
                g_object_unref(testbed);
        testbed = NULL;
}

struct harness {
        uv_loop_t loop;
        struct bbt_driver_events events;
        struct bbt_driver *driver;
        int n, want;
        bool on[8];
        char source[8][300];
        bool stopped;
};

static void on_display(void *userdata, bool on, const char *source)
{
        struct harness *h = userdata;

        ASSERT_LT(h->n, 8);
        h->on[h->n] = on;
        snprintf(h->source[h->n], sizeof(h->source[h->n]), "%s", source);
        h->n++;
}

static bool has_events(void *arg)
{
        struct harness *h = arg;

        return h->n >= h->want;
}

static bool wait_events(struct harness *h, int n, int timeout_ms)
{
        h->want = n;
        return bbt_test_run_until(&h->loop, has_events, h, timeout_ms);
}

static void stopped_cb(void *userdata)
{
        ((struct harness *)userdata)->stopped = true;
}

static bool is_stopped(void *arg)
{
        return ((struct harness *)arg)->stopped;
}

/* A testbed (the case is skipped outside umockdev-wrapper). */
static void testbed_new(void)
{
        testbed = umockdev_testbed_new();
        atexit(cleanup);
        /* Only meaningful once a testbed exists (it compares /sys with the real one). */
        if (!umockdev_in_mock_environment())
                bbt_test_skip("not under umockdev-wrapper (run it through ctest)");
}

/* H's loop and a started display driver reading under ROOT (the testbed's,
 * which holds its sys/), reporting into H, its uevent monitor working. */
static void start(struct harness *h, const char *root, uint64_t safety_poll_ms)
{
        struct bbt_display_options opts = { .safety_poll_ms = safety_poll_ms };
        struct bbt_driver_env env;
        int r;

        memset(h, 0, sizeof(*h));
        ASSERT_OK(uv_loop_init(&h->loop));
        h->events.display = on_display;
        h->events.userdata = h;
        env = (struct bbt_driver_env){ .loop = &h->loop, .root = root, .events = &h->events };
        ASSERT_OK(bbt_display_new(&env, &opts, &h->driver));
        ASSERT_OK(h->driver->ops->start(h->driver));
        r = bbt_display_monitor_error(h->driver);
        if (r < 0)
                FAIL("no udev monitor on the testbed: %s", strerror(-r));
}

static void finish(struct harness *h)
{
        h->driver->ops->stop(h->driver, stopped_cb, h);
        ASSERT(bbt_test_run_until(&h->loop, is_stopped, h, 2000));
        h->driver->ops->destroy(h->driver);
        bbt_test_loop_close(&h->loop);
}

TEST(uevent_triggers_reread)
{
        struct harness h;
        char *root, *connector, *panel;
        uint64_t t0;

        testbed_new();
        connector = umockdev_testbed_add_device(testbed, "drm", "card0-HDMI-A-1", NULL,
                                                "status", "connected", "enabled", "enabled", "dpms", "On",
                                                NULL, NULL);
        ASSERT(connector);
        root = umockdev_testbed_get_root_dir(testbed);
        start(&h, root, 10000);
        ASSERT(wait_events(&h, 1, 2000));
        ASSERT(h.on[0]);
        ASSERT_STR_EQ(h.source[0], "drm card0-HDMI-A-1");

        /* Unplugged: the kernel updates status and sends a drm change uevent. */
        umockdev_testbed_set_attribute(testbed, connector, "status", "disconnected");
        t0 = bbt_test_now_ms();
        umockdev_testbed_uevent(testbed, connector, "change");
        ASSERT(wait_events(&h, 2, 5000));
        /* Well before both the 2 s settle re-read and the 10 s safety poll. */
        ASSERT_LT(bbt_test_now_ms() - t0, 1000);
        ASSERT(!h.on[1]);

        /* Plugged back, then the panel's backlight goes dark: a backlight uevent. */
        umockdev_testbed_set_attribute(testbed, connector, "status", "connected");
        umockdev_testbed_uevent(testbed, connector, "change");
        ASSERT(wait_events(&h, 3, 5000));
        ASSERT(h.on[2]);
        panel = umockdev_testbed_add_device(testbed, "backlight", "panel_backlight", NULL,
                                            "bl_power", "0", "brightness", "100", "max_brightness", "255",
                                            NULL, NULL);
        ASSERT(panel);
        umockdev_testbed_set_attribute(testbed, panel, "brightness", "0");
        t0 = bbt_test_now_ms();
        umockdev_testbed_uevent(testbed, panel, "change");
        ASSERT(wait_events(&h, 4, 5000));
        ASSERT_LT(bbt_test_now_ms() - t0, 1000);
        ASSERT(!h.on[3]);
        ASSERT_STR_EQ(h.source[3], "backlight panel_backlight");

        finish(&h);
        g_free(panel);
        g_free(connector);
        g_free(root);
}

/* A headless terminal: no connector, no backlight, so no poll; a card that
 * appears (its "add" uevent) is read at once and polled from then on. */
TEST(poll_waits_for_a_display)
{
        struct harness h;
        char *root, *connector;
        uint64_t t0;

        testbed_new();
        root = umockdev_testbed_get_root_dir(testbed);
        start(&h, root, 200);
        ASSERT(!wait_events(&h, 1, 500));

        connector = umockdev_testbed_add_device(testbed, "drm", "card0-HDMI-A-1", NULL,
                                                "status", "connected", "enabled", "enabled", "dpms", "On",
                                                NULL, NULL);
        ASSERT(connector);
        t0 = bbt_test_now_ms();
        umockdev_testbed_uevent(testbed, connector, "add");
        ASSERT(wait_events(&h, 1, 5000));
        ASSERT_LT(bbt_test_now_ms() - t0, 1000);
        ASSERT(h.on[0]);

        /* DPMS off without a uevent: the poll runs again and sees it. */
        umockdev_testbed_set_attribute(testbed, connector, "dpms", "Off");
        t0 = bbt_test_now_ms();
        ASSERT(wait_events(&h, 2, 5000));
        ASSERT_LT(bbt_test_now_ms() - t0, 200 + 800); /* one poll interval, plus slack for a loaded machine */
        ASSERT(!h.on[1]);

        /* The card goes away: unknown, which is not reported; it comes back
         * as it was (off): nothing to report either; then it turns on. */
        umockdev_testbed_uevent(testbed, connector, "remove");
        umockdev_testbed_remove_device(testbed, connector);
        ASSERT(!wait_events(&h, 3, 600));
        g_free(connector);
        connector = umockdev_testbed_add_device(testbed, "drm", "card0-HDMI-A-1", NULL,
                                                "status", "connected", "enabled", "enabled", "dpms", "Off",
                                                NULL, NULL);
        ASSERT(connector);
        umockdev_testbed_uevent(testbed, connector, "add");
        ASSERT(!wait_events(&h, 3, 600));
        umockdev_testbed_set_attribute(testbed, connector, "dpms", "On");
        ASSERT(wait_events(&h, 3, 2000));
        ASSERT(h.on[2]);
        ASSERT_EQ(h.n, 3);

        finish(&h);
        g_free(connector);
        g_free(root);
}
