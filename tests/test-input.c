/* Tests of the input driver against umockdev evdev devices replaying evemu recordings. */
/* bbt-test: label=integration timeout=20 umockdev */
#include "test.h"
#include "bbt/base.h"
#include "broker.h"

#include <errno.h>

#include <libevdev/libevdev.h>
#include <umockdev.h>

#include "input.h"

#define FIXTURES "/fixtures/umockdev/"
#define TOUCH_NODE "/dev/input/event20"
#define KEYBOARD_NODE "/dev/input/event21"
#define MOUSE_NODE "/dev/input/event22"
#define KEYBOARD_EVENT_SYSPATH                                                                  \
        "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-6/1-6:1.0/0003:1C4F:0002.0003/input/input22/event21"
#define TOUCH_EVENT_SYSPATH                                                                     \
        "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-5/1-5:1.0/0003:2575:7317.0001/input/input20/event20"

/* Everything the driver told us. */
struct seen {
        uint64_t total[BBT_INPUT__COUNT];
        int calls[BBT_INPUT__COUNT];
        int input_calls, other_calls;
        uint64_t max_count;
        int bad_class;
        uint64_t first_call_ms, last_call_ms;
};

static struct seen seen;

static void on_input(void *userdata, enum bbt_input_class cls, uint64_t n)
{
        uint64_t now = bbt_test_now_ms();

        ASSERT(userdata == &seen);
        if ((int)cls < 0 || cls >= BBT_INPUT__COUNT) {
                seen.bad_class++;
                return;
        }
        if (seen.input_calls == 0)
                seen.first_call_ms = now;
        seen.last_call_ms = now;
        seen.input_calls++;
        seen.calls[cls]++;
        seen.total[cls] += n;
        if (n > seen.max_count)
                seen.max_count = n;
}

static void on_display(void *userdata, bool on, const char *source)
{
        seen.other_calls++;
}

static void on_audio(void *userdata, bool playing)
{
        seen.other_calls++;
}

static void on_periph(void *userdata, enum bbt_periph_action action, const struct bbt_dev *dev)
{
        seen.other_calls++;
}

static void on_inventory(void *userdata, const struct bbt_dev *devs, size_t n)
{
        seen.other_calls++;
}

static void on_projector(void *userdata, const struct bbt_projector_status *status)
{
        seen.other_calls++;
}

static void on_alert(void *userdata, const char *code, enum bbt_severity severity, enum bbt_alert_state state,
                     const char *detail)
{
        seen.other_calls++;
}

static const struct bbt_driver_events events = {
        .input = on_input,
        .display = on_display,
        .audio = on_audio,
        .periph = on_periph,
        .inventory = on_inventory,
        .projector = on_projector,
        .alert = on_alert,
        .userdata = &seen,
};

/* A fake read hook: -ENODEV once set, as the kernel answers after an unplug. */
static bool unplugged;

static int next_event_hook(struct libevdev *dev, unsigned int flags, struct input_event *ev)
{
        if (unplugged)
                return -ENODEV;
        return libevdev_next_event(dev, flags, ev);
}

static const struct bbt_input_evdev_ops hook_ops = {.next_event = next_event_hook};

struct rig {
        UMockdevTestbed *tb;
        uv_loop_t loop;
        struct bbt_driver *d;
        bool stopped;
};

static char *fixture(const char *name)
{
        static char path[4][512];
        static int i;

        i = (i + 1) % 4;
        snprintf(path[i], sizeof(path[i]), "%s" FIXTURES "%s", bbt_test_srcdir(), name);
        return path[i];
}

/* Adds the device NAME.umockdev and the ioctl answers of its evdev NODE. */
static void add_device(struct rig *r, const char *name, const char *node)
{
        char file[64];
        GError *err = NULL;

        snprintf(file, sizeof(file), "%s.umockdev", name);
        if (!umockdev_testbed_add_from_file(r->tb, fixture(file), &err))
                FAIL("adding %s: %s", file, err->message);
        snprintf(file, sizeof(file), "%s.ioctl", name);
        if (!umockdev_testbed_load_ioctl(r->tb, node, fixture(file), &err))
                FAIL("loading %s: %s", file, err->message);
}

/* Starts replaying NAME.evemu on NODE. */
static void replay(struct rig *r, const char *name, const char *node)
{
        char file[64];
        GError *err = NULL;

        snprintf(file, sizeof(file), "%s.evemu", name);
        if (!umockdev_testbed_load_evemu_events(r->tb, node, fixture(file), &err))
                FAIL("loading %s: %s", file, err->message);
}

static void rig_start(struct rig *r, const struct bbt_input_options *opts)
{
        struct bbt_driver_env env = {.loop = &r->loop, .root = "/", .events = &events};

        memset(&seen, 0, sizeof(seen));
        unplugged = false;
        ASSERT_OK(uv_loop_init(&r->loop));
        ASSERT_OK(bbt_input_new(&env, opts, &r->d));
        ASSERT_OK(r->d->ops->start(r->d));
}

static void stopped_cb(void *userdata)
{
        ((struct rig *)userdata)->stopped = true;
}

static bool is_stopped(void *arg)
{
        return ((struct rig *)arg)->stopped;
}

static void rig_stop(struct rig *r)
{
        r->d->ops->stop(r->d, stopped_cb, r);
        ASSERT(bbt_test_run_until(&r->loop, is_stopped, r, 5000));
        r->d->ops->destroy(r->d);
        bbt_test_loop_close(&r->loop);
        g_object_unref(r->tb);
}

struct wait_watched {
        struct bbt_driver *d;
        size_t n;
};

static bool watched_is(void *arg)
{
        struct wait_watched *w = arg;

        return bbt_input_watched(w->d) == w->n;
}

static void wait_watched(struct rig *r, size_t n)
{
        struct wait_watched w = {r->d, n};

        if (!bbt_test_run_until(&r->loop, watched_is, &w, 5000))
                FAIL("watching %zu devices, expected %zu", bbt_input_watched(r->d), n);
}

struct wait_total {
        enum bbt_input_class cls;
        uint64_t n;
};

static bool total_reached(void *arg)
{
        struct wait_total *w = arg;

        return seen.total[w->cls] >= w->n;
}

/* Runs until class CLS has added up to N, then a further 600 ms in which
 * nothing more may arrive. */
static void expect_total(struct rig *r, enum bbt_input_class cls, uint64_t n)
{
        struct wait_total w = {cls, n};

        bbt_test_run_until(&r->loop, total_reached, &w, 8000);
        bbt_test_run_until(&r->loop, NULL, NULL, 600);
        ASSERT_EQ(seen.total[cls], n);
}

TEST(touch_counts)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        int c;

        add_device(&r, "touchscreen", TOUCH_NODE);
        rig_start(&r, NULL);
        ASSERT_EQ(bbt_input_watched(r.d), 1);
        replay(&r, "touchscreen", TOUCH_NODE);
        /* Three contacts, counted once each, across a SYN_DROPPED. */
        expect_total(&r, BBT_INPUT_TOUCH, 3);
        for (c = 0; c < BBT_INPUT__COUNT; c++)
                if (c != BBT_INPUT_TOUCH)
                        ASSERT_EQ(seen.total[c], 0);
        ASSERT_EQ(bbt_input_watched(r.d), 1); /* the overflow did not cost the device */
        ASSERT_EQ(seen.other_calls, 0);
        rig_stop(&r);
}

TEST(key_counts_no_codes)
{
        /* The key codes and scan codes in keyboard.evemu. */
        static const long codes[] = {KEY_A, KEY_B, KEY_C, 0x70004, 0x70005, 0x70006};
        struct rig r = {.tb = umockdev_testbed_new()};
        size_t i;

        add_device(&r, "keyboard", KEYBOARD_NODE);
        rig_start(&r, NULL);
        ASSERT_EQ(bbt_input_watched(r.d), 1);
        replay(&r, "keyboard", KEYBOARD_NODE);
        expect_total(&r, BBT_INPUT_KEY, 3); /* presses only: no releases, no auto-repeat */
        ASSERT_EQ(seen.total[BBT_INPUT_TOUCH] + seen.total[BBT_INPUT_PEN] + seen.total[BBT_INPUT_MOUSE], 0);
        /* The only channel out is (class, count): nothing else was called, no
         * class is out of range, and no count equals a code that was typed. */
        ASSERT_EQ(seen.other_calls, 0);
        ASSERT_EQ(seen.bad_class, 0);
        ASSERT_LE(seen.max_count, 3);
        for (i = 0; i < BBT_ELEMENTSOF(codes); i++)
                ASSERT_NE(seen.max_count, codes[i]);
        rig_stop(&r);
}

TEST(mouse_hotplug)
{
        struct rig r = {.tb = umockdev_testbed_new()};

        add_device(&r, "keyboard", KEYBOARD_NODE);
        rig_start(&r, NULL);
        ASSERT_EQ(bbt_input_watched(r.d), 1);
        add_device(&r, "mouse", MOUSE_NODE); /* plugged in while running: a udev "add" */
        wait_watched(&r, 2);
        replay(&r, "mouse", MOUSE_NODE);
        /* One click and two movements (the wheel continues the second). */
        expect_total(&r, BBT_INPUT_MOUSE, 3);
        ASSERT_EQ(seen.total[BBT_INPUT_KEY], 0);
        rig_stop(&r);
}

TEST(unplug_enodev)
{
        struct bbt_input_options opts = {.evdev_ops = &hook_ops};
        struct rig r = {.tb = umockdev_testbed_new()};

        add_device(&r, "keyboard", KEYBOARD_NODE);
        add_device(&r, "touchscreen", TOUCH_NODE);
        rig_start(&r, &opts);
        ASSERT_EQ(bbt_input_watched(r.d), 2);
        /* The device is gone: the next read fails with ENODEV. */
        unplugged = true;
        replay(&r, "keyboard", KEYBOARD_NODE);
        replay(&r, "touchscreen", TOUCH_NODE);
        wait_watched(&r, 0);
        ASSERT_EQ(seen.input_calls, 0);
        /* udev's remove for a device already forgotten is harmless. */
        umockdev_testbed_uevent(r.tb, KEYBOARD_EVENT_SYSPATH, "remove");
        bbt_test_run_until(&r.loop, NULL, NULL, 200);
        ASSERT_EQ(bbt_input_watched(r.d), 0);
        rig_stop(&r);
}

TEST(unplug_udev_remove)
{
        struct rig r = {.tb = umockdev_testbed_new()};

        add_device(&r, "touchscreen", TOUCH_NODE);
        add_device(&r, "keyboard", KEYBOARD_NODE);
        rig_start(&r, NULL);
        ASSERT_EQ(bbt_input_watched(r.d), 2);
        umockdev_testbed_uevent(r.tb, TOUCH_EVENT_SYSPATH, "remove");
        umockdev_testbed_remove_device(r.tb, TOUCH_EVENT_SYSPATH);
        wait_watched(&r, 1);
        /* The keyboard still counts. */
        replay(&r, "keyboard", KEYBOARD_NODE);
        expect_total(&r, BBT_INPUT_KEY, 3);
        ASSERT_EQ(seen.total[BBT_INPUT_TOUCH], 0);
        rig_stop(&r);
}

TEST(batched_delivery)
{
        struct bbt_input_options opts = {.batch_ms = 300};
        struct rig r = {.tb = umockdev_testbed_new()};

        add_device(&r, "keyboard", KEYBOARD_NODE);
        add_device(&r, "touchscreen", TOUCH_NODE);
        rig_start(&r, &opts);
        replay(&r, "keyboard", KEYBOARD_NODE);
        replay(&r, "touchscreen", TOUCH_NODE);
        expect_total(&r, BBT_INPUT_KEY, 3);
        expect_total(&r, BBT_INPUT_TOUCH, 3);
        /* Both replays take 400 ms: at most two batches per class. */
        ASSERT_LE(seen.calls[BBT_INPUT_KEY], 2);
        ASSERT_LE(seen.calls[BBT_INPUT_TOUCH], 2);
        rig_stop(&r);
}

TEST(stop_flushes_pending)
{
        struct bbt_input_options opts = {.batch_ms = 60000};
        struct rig r = {.tb = umockdev_testbed_new()};
        struct wait_total w = {BBT_INPUT_KEY, 1};

        add_device(&r, "keyboard", KEYBOARD_NODE);
        rig_start(&r, &opts);
        replay(&r, "keyboard", KEYBOARD_NODE);
        /* Nothing arrives within a minute-long batch... */
        ASSERT(!bbt_test_run_until(&r.loop, total_reached, &w, 1500));
        /* ...until stop() hands over what was counted. */
        rig_stop(&r);
        ASSERT_EQ(seen.total[BBT_INPUT_KEY], 3);
        ASSERT_EQ(seen.input_calls, 1);
}

TEST(probe_lists_devices)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        struct bbt_driver_env env = {.loop = &r.loop, .root = "/", .events = &events};
        char *text = NULL;
        size_t len = 0;
        FILE *out;

        add_device(&r, "touchscreen", TOUCH_NODE);
        add_device(&r, "mouse", MOUSE_NODE);
        ASSERT_OK(uv_loop_init(&r.loop));
        ASSERT_OK(bbt_input_new(&env, NULL, &r.d));
        out = open_memstream(&text, &len);
        ASSERT(out);
        ASSERT_OK(r.d->ops->probe(r.d, out));
        fclose(out);
        ASSERT_STR_CONTAINS(text, TOUCH_NODE " touch \"HiteVision Touch\": readable\n"
                                  "  why: capabilities unreadable: udev's ID_INPUT_* decide\n");
        ASSERT_STR_CONTAINS(text, MOUSE_NODE " mouse \"USB Optical Mouse\": readable");
        free(text);
        /* Never started: stop() calls back at once, destroy() frees. */
        r.d->ops->stop(r.d, stopped_cb, &r);
        ASSERT(r.stopped);
        r.d->ops->destroy(r.d);
        bbt_test_loop_close(&r.loop);
        g_object_unref(r.tb);
}

TEST(new_rejects_bad_args)
{
        struct bbt_driver *d = (struct bbt_driver *)&d;
        uv_loop_t loop;
        struct bbt_driver_env env = {.loop = &loop, .root = "/", .events = NULL};

        ASSERT_EQ(bbt_input_new(NULL, NULL, &d), -EINVAL);
        ASSERT_EQ(bbt_input_new(&env, NULL, &d), -EINVAL); /* no events */
        ASSERT(d == (struct bbt_driver *)&d);                /* untouched */
        ASSERT_EQ(bbt_input_watched(NULL), 0);
}
