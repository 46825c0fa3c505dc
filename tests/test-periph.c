/* Tests of the peripheral driver: the classification table, and hotplug, debounce, inventory and periph_missing on umockdev. */
/* bbt-test: label=integration timeout=20 umockdev */
#include "test.h"
#include "broker.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <umockdev.h>

#include "periph.h"

#define FIXTURES "/fixtures/umockdev/"
#define USB "/sys/devices/pci0000:00/0000:00:14.0/usb1"
#define CAMERA_VIDEO USB "/1-2/1-2:1.0/video4linux/video0"
#define CAMERA_CARD USB "/1-2/1-2:1.2/sound/card2"
#define STICK_DISK USB "/1-4/1-4:1.0/host6/target6:0:0/6:0:0:0/block/sdb"
#define TOUCH_INPUT USB "/1-5/1-5:1.0/0003:2575:7317.0001/input/input20"
#define ONBOARD_CARD "/sys/devices/pci0000:00/0000:00:1f.3/sound/card0"
#define HDMI "/sys/devices/pci0000:00/0000:00:02.0/drm/card0/card0-HDMI-A-1"
#define AT_KEYBOARD "/sys/devices/platform/i8042/serio0/input/input3"
#define ETHERNET "/sys/devices/pci0000:00/0000:00:1f.6/net/enp0s31f6"

/* ---- the classification table, on synthetic facts ---- */

static uint32_t classify(const char *subsystem, const char *devtype, const char *sysname,
                         void (*tweak)(struct bbt_periph_facts *f))
{
        struct bbt_periph_facts f = {.subsystem = subsystem, .devtype = devtype, .sysname = sysname,
                                     .usb_class = -1};

        if (tweak)
                tweak(&f);
        return bbt_periph_classify(&f);
}

static void v4l_capture(struct bbt_periph_facts *f) { f->v4l_capabilities = ":capture:"; }
static void v4l_meta(struct bbt_periph_facts *f) { f->v4l_capabilities = ":"; }
static void capture_only(struct bbt_periph_facts *f) { f->sound_capture = true; }
static void playback_only(struct bbt_periph_facts *f) { f->sound_playback = true; }
static void both_ways(struct bbt_periph_facts *f) { f->sound_capture = f->sound_playback = true; }
static void on_usb(struct bbt_periph_facts *f) { f->on_usb = true; }
static void usb_bus(struct bbt_periph_facts *f) { f->id_bus = "usb"; }
static void removable(struct bbt_periph_facts *f) { f->removable = "1"; }
static void fixed_ata(struct bbt_periph_facts *f) { f->id_bus = "ata"; f->removable = "0"; }
static void connected(struct bbt_periph_facts *f) { f->drm_status = "connected"; }
static void disconnected(struct bbt_periph_facts *f) { f->drm_status = "disconnected"; }
static void touchscreen(struct bbt_periph_facts *f) { f->input.role = BBT_EVDEV_TOUCH; }
static void tablet(struct bbt_periph_facts *f) { f->input.role = BBT_EVDEV_PEN; }
static void mouse(struct bbt_periph_facts *f) { f->input.role = BBT_EVDEV_MOUSE; }
static void touchpad(struct bbt_periph_facts *f) { f->input.role = BBT_EVDEV_TOUCHPAD; }
static void keyboard(struct bbt_periph_facts *f) { f->input.role = BBT_EVDEV_KEYBOARD; }
static void media_keys(struct bbt_periph_facts *f) { f->input.role = BBT_EVDEV_KEYS; }
static void keyboard_with_touchpad(struct bbt_periph_facts *f)
{
        f->input.role = BBT_EVDEV_TOUCHPAD;
        f->input.keyboard = true;
}
static void virtual_keyboard(struct bbt_periph_facts *f)
{
        f->input.role = BBT_EVDEV_KEYBOARD;
        f->is_virtual = true;
}
static void hub(struct bbt_periph_facts *f) { f->usb_class = 9; }
static void composite(struct bbt_periph_facts *f) { f->usb_class = 0xef; }
static void is_virtual(struct bbt_periph_facts *f) { f->is_virtual = true; }

#define K(kind) (1u << BBT_KIND_##kind)

TEST(classify_table)
{
        /* video4linux: capture nodes only */
        ASSERT_EQ(classify("video4linux", NULL, "video0", v4l_capture), K(CAMERA));
        ASSERT_EQ(classify("video4linux", NULL, "video1", v4l_meta), 0);
        ASSERT_EQ(classify("video4linux", NULL, "video2", NULL), 0);
        ASSERT_EQ(classify("video4linux", NULL, "v4l-subdev0", v4l_capture), 0);
        /* sound: cards, by their PCMs */
        ASSERT_EQ(classify("sound", NULL, "card1", capture_only), K(AUDIO_IN));
        ASSERT_EQ(classify("sound", NULL, "card0", playback_only), K(AUDIO_OUT));
        ASSERT_EQ(classify("sound", NULL, "card0", both_ways), K(AUDIO_IN) | K(AUDIO_OUT));
        ASSERT_EQ(classify("sound", NULL, "card3", NULL), 0); /* no PCM (a MIDI-only card) */
        ASSERT_EQ(classify("sound", NULL, "pcmC0D0p", playback_only), 0);
        ASSERT_EQ(classify("sound", NULL, "controlC0", both_ways), 0);
        /* input: the input device, first matching role */
        ASSERT_EQ(classify("input", NULL, "input20", touchscreen), K(TOUCH));
        ASSERT_EQ(classify("input", NULL, "input9", tablet), K(PEN));
        ASSERT_EQ(classify("input", NULL, "input5", mouse), K(MOUSE));
        ASSERT_EQ(classify("input", NULL, "input6", touchpad), K(MOUSE));
        ASSERT_EQ(classify("input", NULL, "input3", keyboard), K(KEYBOARD));
        ASSERT_EQ(classify("input", NULL, "input8", keyboard_with_touchpad), K(MOUSE) | K(KEYBOARD));
        ASSERT_EQ(classify("input", NULL, "input7", media_keys), 0); /* a consumer-control interface */
        ASSERT_EQ(classify("input", NULL, "input2", NULL), 0); /* no pointer, contacts or keys */
        ASSERT_EQ(classify("input", NULL, "event3", keyboard), 0);
        ASSERT_EQ(classify("input", NULL, "mouse0", mouse), 0);
        ASSERT_EQ(classify("input", NULL, "input40", virtual_keyboard), 0);
        /* block: whole removable disks */
        ASSERT_EQ(classify("block", "disk", "sdb", on_usb), K(STORAGE));
        ASSERT_EQ(classify("block", "disk", "sdb", usb_bus), K(STORAGE));
        ASSERT_EQ(classify("block", "disk", "mmcblk0", removable), K(STORAGE));
        ASSERT_EQ(classify("block", "partition", "sdb1", on_usb), 0);
        ASSERT_EQ(classify("block", "disk", "sda", fixed_ata), 0);
        ASSERT_EQ(classify("block", "disk", "loop0", is_virtual), 0);
        /* drm: connected connectors */
        ASSERT_EQ(classify("drm", "drm_connector", "card0-HDMI-A-1", connected), K(DISPLAY));
        ASSERT_EQ(classify("drm", NULL, "card0-DP-1", connected), K(DISPLAY)); /* older kernels: no DEVTYPE */
        ASSERT_EQ(classify("drm", "drm_connector", "card0-DP-1", disconnected), 0);
        ASSERT_EQ(classify("drm", "drm_minor", "card0", connected), 0);
        /* net: physical interfaces */
        ASSERT_EQ(classify("net", NULL, "enp0s31f6", NULL), K(NETWORK));
        ASSERT_EQ(classify("net", NULL, "lo", is_virtual), 0);
        /* usb: whole devices that are not hubs; "other" unless more is known */
        ASSERT_EQ(classify("usb", "usb_device", "1-2", composite), K(OTHER));
        ASSERT_EQ(classify("usb", "usb_device", "usb1", hub), 0);
        ASSERT_EQ(classify("usb", "usb_interface", "1-2:1.0", NULL), 0);
        /* anything else */
        ASSERT_EQ(classify("hidraw", NULL, "hidraw0", NULL), 0);
        ASSERT_EQ(classify(NULL, NULL, NULL, NULL), 0);
}

TEST(expect_parse)
{
        uint32_t mask = 12345;

        ASSERT_OK(bbt_periph_expect_parse("camera, touch", &mask));
        ASSERT_EQ(mask, K(CAMERA) | K(TOUCH));
        ASSERT_OK(bbt_periph_expect_parse(" audio_in,audio_out  display ", &mask));
        ASSERT_EQ(mask, K(AUDIO_IN) | K(AUDIO_OUT) | K(DISPLAY));
        ASSERT_OK(bbt_periph_expect_parse("", &mask));
        ASSERT_EQ(mask, 0);
        mask = 7;
        ASSERT_EQ(bbt_periph_expect_parse("camera, webcam", &mask), -EINVAL);
        ASSERT_EQ(bbt_periph_expect_parse("Camera", &mask), -EINVAL);
        ASSERT_EQ(bbt_periph_expect_parse("cam", &mask), -EINVAL);
        ASSERT_EQ(mask, 7); /* untouched on failure */
}

/* ---- the driver on umockdev ---- */

struct dev_copy {
        int action; /* enum bbt_periph_action, or -1 in an inventory */
        enum bbt_periph_kind kind;
        char subsystem[40], syspath[300], bus[20], vendor_id[8], model_id[8];
        char vendor[400], model[400], serial[400];
};

static struct {
        struct dev_copy periph[64];
        int n_periph;
        struct dev_copy inv[64];
        size_t inv_n;
        int n_inventory;
        char alert_code[40], alert_detail[300];
        enum bbt_severity alert_severity;
        enum bbt_alert_state alert_state;
        int n_alert;
        int n_other;
} seen;

static void copy_str(char *dst, size_t size, const char *src)
{
        snprintf(dst, size, "%s", src ? src : "(null)");
}

static void copy_dev(struct dev_copy *c, int action, const struct bbt_dev *d)
{
        c->action = action;
        c->kind = d->kind;
        copy_str(c->subsystem, sizeof(c->subsystem), d->subsystem);
        copy_str(c->syspath, sizeof(c->syspath), d->syspath);
        copy_str(c->bus, sizeof(c->bus), d->bus);
        copy_str(c->vendor_id, sizeof(c->vendor_id), d->vendor_id);
        copy_str(c->model_id, sizeof(c->model_id), d->model_id);
        copy_str(c->vendor, sizeof(c->vendor), d->vendor);
        copy_str(c->model, sizeof(c->model), d->model);
        copy_str(c->serial, sizeof(c->serial), d->serial);
}

static void on_periph(void *userdata, enum bbt_periph_action action, const struct bbt_dev *dev)
{
        ASSERT(userdata == &seen);
        ASSERT_LT(seen.n_periph, 64);
        copy_dev(&seen.periph[seen.n_periph++], (int)action, dev);
}

static void on_inventory(void *userdata, const struct bbt_dev *devs, size_t n)
{
        size_t i;

        ASSERT_LE(n, 64);
        for (i = 0; i < n; i++)
                copy_dev(&seen.inv[i], -1, &devs[i]);
        seen.inv_n = n;
        seen.n_inventory++;
}

static void on_alert(void *userdata, const char *code, enum bbt_severity severity, enum bbt_alert_state state,
                     const char *detail)
{
        copy_str(seen.alert_code, sizeof(seen.alert_code), code);
        copy_str(seen.alert_detail, sizeof(seen.alert_detail), detail);
        seen.alert_severity = severity;
        seen.alert_state = state;
        seen.n_alert++;
}

static void on_input(void *userdata, enum bbt_input_class cls, uint64_t count)
{
        seen.n_other++;
}

static const struct bbt_driver_events events = {
        .input = on_input,
        .periph = on_periph,
        .inventory = on_inventory,
        .alert = on_alert,
        .userdata = &seen,
};

struct rig {
        UMockdevTestbed *tb;
        uv_loop_t loop;
        struct bbt_driver *d;
        bool stopped;
};

static const char *fixture(const char *name)
{
        static char path[512];

        snprintf(path, sizeof(path), "%s" FIXTURES "%s.umockdev", bbt_test_srcdir(), name);
        return path;
}

/* Plugs in every device of fixture NAME (udev "add" for each). */
static void plug(struct rig *r, const char *name)
{
        GError *err = NULL;

        if (!umockdev_testbed_add_from_file(r->tb, fixture(name), &err))
                FAIL("adding %s: %s", name, err->message);
}

/* umockdev 0.17 leaves a removed disk's /sys/block link behind, which makes
 * plugging it in again abort: drop it. */
static void drop_block_link(struct rig *r, const char *syspath)
{
        gchar *sys = umockdev_testbed_get_sys_dir(r->tb);
        gchar *base = g_path_get_basename(syspath);
        gchar *link = g_build_filename(sys, "block", base, NULL);
        struct stat st;

        if (lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && stat(link, &st) < 0)
                ASSERT_OK(unlink(link) < 0 ? -errno : 0);
        g_free(link);
        g_free(base);
        g_free(sys);
}

/* Unplugs fixture NAME: "remove" for each device, children first as the
 * kernel does, taking each out of the testbed (one by one, so that its
 * /sys/class and /sys/bus links go too and it can be plugged in again). */
static void unplug(struct rig *r, const char *name)
{
        char *text = NULL, *line, *save = NULL;
        char *paths[32];
        int n = 0, i;

        ASSERT(g_file_get_contents(fixture(name), &text, NULL, NULL));
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (strncmp(line, "P: ", 3) == 0 && n < 32)
                        paths[n++] = g_strconcat("/sys", line + 3, NULL);
        ASSERT_GT(n, 0);
        for (i = n - 1; i >= 0; i--) {
                umockdev_testbed_uevent(r->tb, paths[i], "remove");
                umockdev_testbed_remove_device(r->tb, paths[i]);
                drop_block_link(r, paths[i]);
        }
        for (i = 0; i < n; i++)
                g_free(paths[i]);
        g_free(text);
}

static void rig_start(struct rig *r, const struct bbt_periph_options *opts)
{
        struct bbt_driver_env env = {.loop = &r->loop, .root = "/", .events = &events};

        memset(&seen, 0, sizeof(seen));
        ASSERT_OK(uv_loop_init(&r->loop));
        ASSERT_OK(bbt_periph_new(&env, opts, &r->d));
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

static bool inventories_at_least(void *arg)
{
        return seen.n_inventory >= *(int *)arg;
}

static void wait_inventories(struct rig *r, int n, int timeout_ms)
{
        if (!bbt_test_run_until(&r->loop, inventories_at_least, &n, timeout_ms))
                FAIL("%d inventories, expected %d", seen.n_inventory, n);
}

static bool alerts_at_least(void *arg)
{
        return seen.n_alert >= *(int *)arg;
}

static void wait_alerts(struct rig *r, int n, int timeout_ms)
{
        if (!bbt_test_run_until(&r->loop, alerts_at_least, &n, timeout_ms))
                FAIL("%d alerts, expected %d", seen.n_alert, n);
}

static const struct dev_copy *inv_find(enum bbt_periph_kind kind, const char *syspath)
{
        size_t i;

        for (i = 0; i < seen.inv_n; i++)
                if (seen.inv[i].kind == kind && strcmp(seen.inv[i].syspath, syspath) == 0)
                        return &seen.inv[i];
        return NULL;
}

static const struct dev_copy *periph_find(int action, enum bbt_periph_kind kind)
{
        int i;

        for (i = 0; i < seen.n_periph; i++)
                if (seen.periph[i].action == action && seen.periph[i].kind == kind)
                        return &seen.periph[i];
        return NULL;
}

/* The five peripherals of baseline.umockdev, in inventory order. */
static void assert_baseline_inventory(size_t extra)
{
        ASSERT_EQ(seen.inv_n, 5 + extra);
        ASSERT(inv_find(BBT_KIND_AUDIO_IN, ONBOARD_CARD));
        ASSERT(inv_find(BBT_KIND_AUDIO_OUT, ONBOARD_CARD));
        ASSERT(inv_find(BBT_KIND_KEYBOARD, AT_KEYBOARD));
        ASSERT(inv_find(BBT_KIND_DISPLAY, HDMI));
        ASSERT(inv_find(BBT_KIND_NETWORK, ETHERNET));
}

TEST(startup_inventory)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        const struct bbt_dev *devs;
        const struct dev_copy *card;
        size_t i;

        plug(&r, "baseline");
        rig_start(&r, &(struct bbt_periph_options){.debounce_ms = 300});
        wait_inventories(&r, 1, 2000);
        /* Not the SATA disk, its partition, lo, the power button, the root
         * hub, the disconnected DP connector, nor the PCMs on their own. */
        assert_baseline_inventory(0);
        /* Sorted by kind. */
        for (i = 1; i < seen.inv_n; i++)
                ASSERT_LE(seen.inv[i - 1].kind, seen.inv[i].kind);
        card = inv_find(BBT_KIND_AUDIO_OUT, ONBOARD_CARD);
        ASSERT_STR_EQ(card->subsystem, "sound");
        ASSERT_STR_EQ(card->bus, "pci");
        ASSERT_STR_EQ(card->vendor_id, "8086"); /* from the PCI parent's 0x8086 */
        ASSERT_STR_EQ(card->model_id, "a348");
        ASSERT_STR_EQ(card->vendor, "Intel Corporation");
        ASSERT_STR_EQ(card->model, "Cannon Lake PCH cAVS");
        ASSERT_STR_EQ(card->serial, "(null)");
        ASSERT_STR_EQ(inv_find(BBT_KIND_KEYBOARD, AT_KEYBOARD)->model, "AT Translated Set 2 keyboard");
        /* The start-up list is not a series of plug-ins. */
        bbt_test_run_until(&r.loop, NULL, NULL, 700);
        ASSERT_EQ(seen.n_periph, 0);
        ASSERT_EQ(seen.n_inventory, 1);
        ASSERT_EQ(seen.n_alert, 0);
        ASSERT_EQ(seen.n_other, 0);
        ASSERT_EQ(bbt_periph_inventory(r.d, &devs), 5);
        ASSERT_STR_EQ(devs[0].syspath, seen.inv[0].syspath);
        rig_stop(&r);
}

TEST(camera_hotplug)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        const struct dev_copy *cam, *mic;

        plug(&r, "baseline");
        rig_start(&r, &(struct bbt_periph_options){.debounce_ms = 300});
        wait_inventories(&r, 1, 2000);

        plug(&r, "camera");
        wait_inventories(&r, 2, 3000);
        /* One camera (not the metadata node video1, not the snapshot button,
         * not the USB device as "other") and its microphone. */
        ASSERT_EQ(seen.n_periph, 2);
        cam = periph_find(BBT_PERIPH_ADD, BBT_KIND_CAMERA);
        mic = periph_find(BBT_PERIPH_ADD, BBT_KIND_AUDIO_IN);
        ASSERT(cam && mic);
        ASSERT_STR_EQ(cam->subsystem, "video4linux");
        ASSERT_STR_EQ(cam->syspath, CAMERA_VIDEO);
        ASSERT_STR_EQ(cam->bus, "usb");
        ASSERT_STR_EQ(cam->vendor_id, "046d");
        ASSERT_STR_EQ(cam->model_id, "0825");
        ASSERT_STR_EQ(cam->vendor, "Logitech, Inc.");
        ASSERT_STR_EQ(cam->model, "Webcam C270");
        ASSERT_STR_EQ(cam->serial, "200901010001");
        ASSERT_STR_EQ(mic->subsystem, "sound");
        ASSERT_STR_EQ(mic->syspath, CAMERA_CARD);
        ASSERT_STR_EQ(mic->vendor_id, "046d");
        assert_baseline_inventory(2);
        ASSERT(inv_find(BBT_KIND_CAMERA, CAMERA_VIDEO));
        ASSERT(inv_find(BBT_KIND_AUDIO_IN, CAMERA_CARD));

        unplug(&r, "camera");
        wait_inventories(&r, 3, 3000);
        ASSERT_EQ(seen.n_periph, 4);
        cam = periph_find(BBT_PERIPH_REMOVE, BBT_KIND_CAMERA);
        ASSERT(cam);
        ASSERT_STR_EQ(cam->syspath, CAMERA_VIDEO);
        ASSERT_STR_EQ(cam->serial, "200901010001"); /* the device as it was */
        ASSERT(periph_find(BBT_PERIPH_REMOVE, BBT_KIND_AUDIO_IN));
        assert_baseline_inventory(0);
        bbt_test_run_until(&r.loop, NULL, NULL, 500);
        ASSERT_EQ(seen.n_inventory, 3);
        rig_stop(&r);
}

TEST(replug_storm)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        uint64_t last_change;
        int i;

        plug(&r, "baseline");
        rig_start(&r, NULL); /* the default 2 s debounce */
        wait_inventories(&r, 1, 2000);

        /* A loose connector: ten plug/unplug pairs within a second, ending plugged. */
        for (i = 0; i < 10; i++) {
                plug(&r, "storage");
                bbt_test_run_until(&r.loop, NULL, NULL, 45);
                unplug(&r, "storage");
                bbt_test_run_until(&r.loop, NULL, NULL, 45);
        }
        plug(&r, "storage");
        last_change = bbt_test_now_ms();
        wait_inventories(&r, 2, 4000);
        ASSERT_GE(bbt_test_now_ms() - last_change, 1900); /* reported once quiet */
        ASSERT_EQ(seen.n_periph, 1);
        ASSERT_EQ(seen.periph[0].action, BBT_PERIPH_ADD);
        ASSERT_EQ(seen.periph[0].kind, BBT_KIND_STORAGE);
        assert_baseline_inventory(1);
        ASSERT(inv_find(BBT_KIND_STORAGE, STICK_DISK));

        /* A storm that ends as it began reports nothing. */
        for (i = 0; i < 5; i++) {
                unplug(&r, "storage");
                bbt_test_run_until(&r.loop, NULL, NULL, 45);
                plug(&r, "storage");
                bbt_test_run_until(&r.loop, NULL, NULL, 45);
        }
        bbt_test_run_until(&r.loop, NULL, NULL, 2600);
        ASSERT_EQ(seen.n_periph, 1);
        ASSERT_EQ(seen.n_inventory, 2);
        rig_stop(&r);
}

TEST(storage_classified)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        const struct dev_copy *stick;

        plug(&r, "baseline");
        rig_start(&r, &(struct bbt_periph_options){.debounce_ms = 200});
        wait_inventories(&r, 1, 2000);
        plug(&r, "storage");
        wait_inventories(&r, 2, 3000);
        ASSERT_EQ(seen.n_periph, 1); /* the disk: not its partition, not the USB device */
        stick = periph_find(BBT_PERIPH_ADD, BBT_KIND_STORAGE);
        ASSERT(stick);
        ASSERT_STR_EQ(stick->subsystem, "block");
        ASSERT_STR_EQ(stick->syspath, STICK_DISK);
        ASSERT_STR_EQ(stick->bus, "usb");
        ASSERT_STR_EQ(stick->vendor_id, "0781");
        ASSERT_STR_EQ(stick->model_id, "5567");
        ASSERT_STR_EQ(stick->vendor, "SanDisk");      /* "SanDisk\x20" decoded and trimmed */
        ASSERT_STR_EQ(stick->model, "Cruzer Blade"); /* padding trimmed */
        ASSERT_STR_EQ(stick->serial, "4C530001230615117054");
        rig_stop(&r);
}

TEST(display_hotplug)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        const char *card = "/sys/devices/pci0000:00/0000:00:02.0/drm/card0";
        const char *dp = "/sys/devices/pci0000:00/0000:00:02.0/drm/card0/card0-DP-1";

        plug(&r, "baseline");
        rig_start(&r, &(struct bbt_periph_options){.debounce_ms = 200});
        wait_inventories(&r, 1, 2000);
        /* A projector cable goes into the DP port: the kernel reports a
         * hotplug "change" on the card, not on the connector. */
        umockdev_testbed_set_attribute(r.tb, dp, "status", "connected");
        umockdev_testbed_uevent(r.tb, card, "change");
        wait_inventories(&r, 2, 3000);
        ASSERT_EQ(seen.n_periph, 1);
        ASSERT_EQ(seen.periph[0].action, BBT_PERIPH_ADD);
        ASSERT_EQ(seen.periph[0].kind, BBT_KIND_DISPLAY);
        ASSERT_STR_EQ(seen.periph[0].syspath, dp);
        ASSERT_STR_EQ(seen.periph[0].subsystem, "drm");
        assert_baseline_inventory(1);
        /* ...and out again. */
        umockdev_testbed_set_attribute(r.tb, dp, "status", "disconnected");
        umockdev_testbed_uevent(r.tb, card, "change");
        wait_inventories(&r, 3, 3000);
        ASSERT_EQ(seen.n_periph, 2);
        ASSERT_EQ(seen.periph[1].action, BBT_PERIPH_REMOVE);
        assert_baseline_inventory(0);
        rig_stop(&r);
}

TEST(expected_missing)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        struct bbt_periph_options opts = {.debounce_ms = 300};
        const struct dev_copy *touch;

        ASSERT_OK(bbt_periph_expect_parse("camera, touch", &opts.expect));
        plug(&r, "baseline");
        plug(&r, "touchscreen");
        rig_start(&r, &opts);
        wait_inventories(&r, 1, 2000);
        ASSERT_EQ(seen.n_alert, 0); /* not before start-up has settled */
        /* The touch frame is one touch peripheral: its mouse interface is part of it. */
        assert_baseline_inventory(1);
        touch = inv_find(BBT_KIND_TOUCH, TOUCH_INPUT);
        ASSERT(touch);
        ASSERT_STR_EQ(touch->vendor, "鸿合科技");
        ASSERT_STR_EQ(touch->model, "HiteVision 触摸框");
        ASSERT_STR_EQ(touch->vendor_id, "2575");

        wait_alerts(&r, 1, 2000);
        ASSERT_STR_EQ(seen.alert_code, "periph_missing");
        ASSERT_EQ(seen.alert_severity, BBT_SEVERITY_WARNING);
        ASSERT_EQ(seen.alert_state, BBT_ALERT_RAISED);
        ASSERT_STR_EQ(seen.alert_detail, "expected camera not present");

        plug(&r, "camera");
        wait_alerts(&r, 2, 3000);
        ASSERT_EQ(seen.alert_state, BBT_ALERT_CLEARED);
        ASSERT_STR_EQ(seen.alert_code, "periph_missing");

        unplug(&r, "touchscreen");
        unplug(&r, "camera");
        wait_alerts(&r, 3, 3000);
        ASSERT_EQ(seen.alert_state, BBT_ALERT_RAISED);
        ASSERT_STR_EQ(seen.alert_detail, "expected camera, touch not present");
        bbt_test_run_until(&r.loop, NULL, NULL, 500);
        ASSERT_EQ(seen.n_alert, 3);
        rig_stop(&r);
}

TEST(probe_lists_peripherals)
{
        struct rig r = {.tb = umockdev_testbed_new()};
        struct bbt_driver_env env = {.loop = &r.loop, .root = "/", .events = &events};
        struct bbt_periph_options opts = {.expect = K(CAMERA) | K(STORAGE)};
        char *text = NULL;
        size_t len = 0;
        FILE *out;

        plug(&r, "baseline");
        plug(&r, "camera");
        ASSERT_OK(uv_loop_init(&r.loop));
        ASSERT_OK(bbt_periph_new(&env, &opts, &r.d));
        out = open_memstream(&text, &len);
        ASSERT(out);
        ASSERT_OK(r.d->ops->probe(r.d, out));
        fclose(out);
        ASSERT_STR_CONTAINS(text, "periph: camera video4linux 046d:0825 \"Logitech, Inc.\" \"Webcam C270\"");
        ASSERT_STR_CONTAINS(text, "periph: expected storage not present");
        ASSERT(strstr(text, "expected camera") == NULL);
        free(text);
        r.d->ops->stop(r.d, stopped_cb, &r); /* never started: calls back at once */
        ASSERT(r.stopped);
        r.d->ops->destroy(r.d);
        bbt_test_loop_close(&r.loop);
        g_object_unref(r.tb);
}
