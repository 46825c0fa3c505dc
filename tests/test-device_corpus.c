/* The device corpus: real input devices (tests/devices/NAME.device) and real peripherals' udev dumps (tests/devices/NAME.umockdev), each run through the real drivers on umockdev. */
/* bbt-test: label=integration timeout=30 umockdev */
#include "test.h"
#include "bbt/base.h"
#include "broker.h"

#include <errno.h>
#include <stdarg.h>

#include <libevdev/libevdev.h>
#include <umockdev.h>

#include "evdev_caps.h"
#include "input.h"
#include "periph.h"

/* tests/devices/README.md describes both formats. */
#define CORPUS "/devices/"
#define MAX_NODES 4
#define FIRST_EVENT 30 /* node i is /dev/input/event(30+i) */
#define DEBOUNCE_MS 100

struct node {
        char name[128];
        unsigned id[4]; /* bus vendor product version */
        uint64_t prop, ev, rel, abs, msc;
        uint64_t key[BBT_EVDEV_KEY_WORDS];
        int absinfo[ABS_CNT][3]; /* min, max, resolution */
        GString *udev;            /* "E: ID_INPUT_...=1\n" lines */
        char expect_class[16];    /* touch, pen, mouse, key, or none (not watched) */
        char expect_why[200];     /* a part of the --probe "why:" line, or empty */
        GString *events;          /* evemu "E:" lines */
        double first_s, last_s;   /* their first and last time stamps */
};

struct device {
        char path[512];
        char bus[16]; /* usb (default), i2c, platform, virtual */
        unsigned vid, pid;
        char vendor[128], product[128];
        bool has_source, has_inventory, has_counts;
        uint32_t inventory;                 /* expected kinds, (1u << kind) bits */
        uint64_t counts[BBT_INPUT__COUNT];  /* expected after every node's events */
        struct node nodes[MAX_NODES];
        int n_nodes;
};

/* ---- parsing a .device file ---- */

struct parse {
        struct device *d;
        const char *file;
        int line;
};

#define PFAIL(p, ...) parse_fail(p, __VA_ARGS__)

static _Noreturn void parse_fail(const struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static _Noreturn void parse_fail(const struct parse *p, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        FAIL("%s:%d: %s", p->file, p->line, msg);
}

static void set_bit64(uint64_t *words, size_t n, unsigned code)
{
        if (code / 64 < n)
                words[code / 64] |= 1ULL << (code % 64);
}

/* A code by name (KEY_A, BTN_TOUCH) or number. */
static unsigned code_of(const struct parse *p, unsigned type, const char *tok)
{
        char *end;
        long v;
        int c;

        if (type == EV_MAX + 1) /* properties */
                c = libevdev_property_from_name(tok);
        else
                c = libevdev_event_code_from_name(type, tok);
        if (c >= 0)
                return (unsigned)c;
        errno = 0;
        v = strtol(tok, &end, 0);
        if (errno || *end || v < 0 || v >= KEY_CNT)
                PFAIL(p, "unknown code %s", tok);
        return (unsigned)v;
}

/* "KEY_A KEY_ESC..KEY_D 0x110" into WORDS. */
static void codes_into(const struct parse *p, unsigned type, char *list, uint64_t *words, size_t n)
{
        char *save = NULL, *tok;

        for (tok = strtok_r(list, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                char *dots = strstr(tok, "..");
                unsigned from, to, c;

                if (dots) {
                        *dots = '\0';
                        from = code_of(p, type, tok);
                        to = code_of(p, type, dots + 2);
                        if (to < from)
                                PFAIL(p, "empty range %s..%s", tok, dots + 2);
                } else {
                        from = to = code_of(p, type, tok);
                }
                for (c = from; c <= to; c++)
                        set_bit64(words, n, c);
        }
}

static uint32_t kinds_of(const struct parse *p, char *list)
{
        char *save = NULL, *tok;
        uint32_t mask = 0;

        for (tok = strtok_r(list, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                uint32_t k;

                if (strcmp(tok, "none") == 0)
                        continue;
                if (bbt_periph_expect_parse(tok, &k) < 0)
                        PFAIL(p, "unknown kind %s", tok);
                mask |= k;
        }
        return mask;
}

static void counts_of(const struct parse *p, char *list, uint64_t *counts)
{
        static const char *const names[BBT_INPUT__COUNT] = {"touch", "pen", "mouse", "key"};
        char *save = NULL, *tok;
        int c;

        for (tok = strtok_r(list, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                char *eq = strchr(tok, '=');

                if (!eq)
                        PFAIL(p, "expected CLASS=N, got %s", tok);
                *eq = '\0';
                for (c = 0; c < BBT_INPUT__COUNT; c++)
                        if (strcmp(tok, names[c]) == 0)
                                break;
                if (c == BBT_INPUT__COUNT)
                        PFAIL(p, "unknown class %s", tok);
                counts[c] = strtoull(eq + 1, NULL, 10);
        }
}

static void copy_text(const struct parse *p, char *dst, size_t size, const char *src)
{
        if ((size_t)snprintf(dst, size, "%s", src) >= size)
                PFAIL(p, "too long: %s", src);
}

static void parse_line(struct parse *p, char *line)
{
        struct device *d = p->d;
        struct node *n = d->n_nodes > 0 ? &d->nodes[d->n_nodes - 1] : NULL;
        char *val = strchr(line, ':');

        if (!val)
                PFAIL(p, "expected KEY: VALUE");
        *val++ = '\0';
        while (*val == ' ' || *val == '\t')
                val++;
        if (strcmp(line, "node") == 0) {
                if (d->n_nodes == MAX_NODES)
                        PFAIL(p, "more than %d nodes", MAX_NODES);
                n = &d->nodes[d->n_nodes++];
                copy_text(p, n->name, sizeof(n->name), val);
                n->udev = g_string_new(NULL);
                n->events = g_string_new(NULL);
                n->ev = 1u << EV_SYN;
                return;
        }
        if (strcmp(line, "source") == 0) {
                d->has_source = *val != '\0';
                return;
        }
        if (!n) {
                if (strcmp(line, "bus") == 0)
                        copy_text(p, d->bus, sizeof(d->bus), val);
                else if (strcmp(line, "usb") == 0) {
                        if (sscanf(val, "%x %x", &d->vid, &d->pid) != 2)
                                PFAIL(p, "expected usb: VID PID");
                } else if (strcmp(line, "vendor") == 0)
                        copy_text(p, d->vendor, sizeof(d->vendor), val);
                else if (strcmp(line, "product") == 0)
                        copy_text(p, d->product, sizeof(d->product), val);
                else if (strcmp(line, "inventory") == 0) {
                        d->inventory = kinds_of(p, val);
                        d->has_inventory = true;
                } else if (strcmp(line, "counts") == 0) {
                        counts_of(p, val, d->counts);
                        d->has_counts = true;
                } else
                        PFAIL(p, "unknown device key %s", line);
                return;
        }
        if (strcmp(line, "id") == 0) {
                if (sscanf(val, "%x %x %x %x", &n->id[0], &n->id[1], &n->id[2], &n->id[3]) != 4)
                        PFAIL(p, "expected id: BUS VENDOR PRODUCT VERSION");
        } else if (strcmp(line, "props") == 0) {
                codes_into(p, EV_MAX + 1, val, &n->prop, 1);
        } else if (strcmp(line, "key") == 0) {
                codes_into(p, EV_KEY, val, n->key, BBT_EVDEV_KEY_WORDS);
                n->ev |= 1u << EV_KEY;
        } else if (strcmp(line, "rel") == 0) {
                codes_into(p, EV_REL, val, &n->rel, 1);
                n->ev |= 1u << EV_REL;
        } else if (strcmp(line, "msc") == 0) {
                codes_into(p, EV_MSC, val, &n->msc, 1);
                n->ev |= 1u << EV_MSC;
        } else if (strcmp(line, "abs") == 0) {
                char name[64];
                int min, max, res = 0;
                unsigned c;

                if (sscanf(val, "%63s %d %d %d", name, &min, &max, &res) < 3)
                        PFAIL(p, "expected abs: CODE MIN MAX [RESOLUTION]");
                c = code_of(p, EV_ABS, name);
                if (c >= ABS_CNT)
                        PFAIL(p, "abs code %s out of range", name);
                n->abs |= 1ULL << c;
                n->absinfo[c][0] = min;
                n->absinfo[c][1] = max;
                n->absinfo[c][2] = res;
                n->ev |= 1u << EV_ABS;
        } else if (strcmp(line, "udev") == 0) {
                char *save = NULL, *tok;

                for (tok = strtok_r(val, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
                        g_string_append_printf(n->udev, "E: %s=1\n", tok);
        } else if (strcmp(line, "class") == 0) {
                copy_text(p, n->expect_class, sizeof(n->expect_class), val);
        } else if (strcmp(line, "why") == 0) {
                copy_text(p, n->expect_why, sizeof(n->expect_why), val);
        } else if (strcmp(line, "E") == 0) {
                char *hash = strchr(val, '#'); /* evemu-record's comments */
                double t;

                if (hash)
                        *hash = '\0';
                if (sscanf(val, "%lf", &t) != 1)
                        PFAIL(p, "expected E: SECONDS TYPE CODE VALUE");
                if (n->events->len == 0)
                        n->first_s = t;
                n->last_s = t;
                g_string_append_printf(n->events, "E: %s\n", val);
        } else {
                PFAIL(p, "unknown node key %s", line);
        }
}

static void device_load(struct device *d, const char *name)
{
        struct parse p = {.d = d};
        char *text = NULL, *line, *save = NULL;
        int i;

        memset(d, 0, sizeof(*d));
        snprintf(d->path, sizeof(d->path), "%s" CORPUS "%s.device", bbt_test_srcdir(), name);
        snprintf(d->bus, sizeof(d->bus), "usb");
        p.file = d->path;
        if (!g_file_get_contents(d->path, &text, NULL, NULL))
                FAIL("cannot read %s", d->path);
        /* strtok_r would merge blank lines; count lines by hand. */
        for (line = text; line; line = save) {
                save = strchr(line, '\n');
                if (save)
                        *save++ = '\0';
                p.line++;
                while (*line == ' ' || *line == '\t')
                        line++;
                if (*line == '\0' || *line == '#')
                        continue;
                parse_line(&p, line);
        }
        g_free(text);
        p.line = 0;
        if (!d->has_source)
                PFAIL(&p, "no source: line (where the description comes from)");
        if (d->n_nodes == 0 || !d->has_inventory || !d->has_counts)
                PFAIL(&p, "needs node:, inventory: and counts:");
        for (i = 0; i < d->n_nodes; i++)
                if (!d->nodes[i].expect_class[0])
                        PFAIL(&p, "node %s has no class:", d->nodes[i].name);
}

static void device_free(struct device *d)
{
        int i;

        for (i = 0; i < d->n_nodes; i++) {
                g_string_free(d->nodes[i].udev, TRUE);
                g_string_free(d->nodes[i].events, TRUE);
        }
}

/* ---- the device as umockdev sees it ---- */

/* A kernel capability bitmap: hex words, most significant first, no
 * leading zero words (the format bbt_evdev_bitmap_parse reads). */
static void append_bitmap(GString *s, const uint64_t *words, size_t n)
{
        size_t top = n;

        while (top > 1 && words[top - 1] == 0)
                top--;
        while (top-- > 0)
                g_string_append_printf(s, "%" PRIx64 "%s", words[top], top ? " " : "");
}

static void hex_bytes(GString *s, const void *data, size_t len)
{
        const unsigned char *b = data;
        size_t i;

        for (i = 0; i < len; i++)
                g_string_append_printf(s, "%02X", b[i]);
}

/* The evdev ioctl answers libevdev asks for when it opens the node, in
 * umockdev's ioctl record format (as tests/fixtures/umockdev/make-evdev-ioctl.py). */
static GString *ioctl_record(const struct node *n, const char *devnode)
{
        static const unsigned char zero[255];
        uint16_t id[4] = {(uint16_t)n->id[0], (uint16_t)n->id[1], (uint16_t)n->id[2], (uint16_t)n->id[3]};
        unsigned char name[255] = {0};
        const struct {
                const char *request; /* with the length the driver answers */
                const void *data;
                size_t len;
        } answers[] = {
                {"EVIOCGVERSION 0", "\x01\x00\x01\x00", 4}, /* 0x010001 */
                {"EVIOCGID 0", id, sizeof(id)},
                {NULL, name, sizeof(name)}, /* EVIOCGNAME: the name's length */
                {"EVIOCGPHYS(0) 1", zero, 255},
                {"EVIOCGUNIQ(0) 1", zero, 255},
                {"EVIOCGPROP(0) 8", &n->prop, 8},
                {"EVIOCGBIT(0) 8", &n->ev, 8},
                {"EVIOCGBIT(1) 96", n->key, 96},
                {"EVIOCGBIT(2) 8", &n->rel, 8},
                {"EVIOCGBIT(3) 8", &n->abs, 8},
                {"EVIOCGBIT(4) 8", &n->msc, 8},
                {"EVIOCGBIT(5) 8", zero, 8},
                {"EVIOCGBIT(17) 8", zero, 8},
                {"EVIOCGBIT(18) 8", zero, 8},
                {"EVIOCGBIT(21) 16", zero, 16},
                {"EVIOCGKEY(0) 96", zero, 96},
                {"EVIOCGLED(0) 8", zero, 8},
                {"EVIOCGSW(0) 8", zero, 8},
        };
        GString *s = g_string_new(NULL);
        size_t i;
        unsigned c;

        memcpy(name, n->name, strlen(n->name));
        g_string_append_printf(s, "@DEV %s\n", devnode);
        for (i = 0; i < BBT_ELEMENTSOF(answers); i++) {
                if (answers[i].request)
                        g_string_append_printf(s, "%s ", answers[i].request);
                else
                        g_string_append_printf(s, "EVIOCGNAME(0) %zu ", strlen(n->name) + 1);
                hex_bytes(s, answers[i].data, answers[i].len);
                g_string_append_c(s, '\n');
        }
        for (c = 0; c < ABS_CNT; c++)
                if ((n->abs >> c) & 1) {
                        int32_t info[6] = {0, n->absinfo[c][0], n->absinfo[c][1], 0, 0, n->absinfo[c][2]};

                        g_string_append_printf(s, "EVIOCGABS(%u) 0 ", c);
                        hex_bytes(s, info, sizeof(info));
                        g_string_append_c(s, '\n');
                }
        return s;
}

/* Where node I's input device lives, by the device's bus. */
static void parent_paths(const struct device *d, GString *tree, char *ret, size_t size, int i)
{
        const struct node *n = &d->nodes[i];

        if (strcmp(d->bus, "usb") == 0) {
                const char *usb = "/devices/pci0000:00/0000:00:14.0/usb1/1-3";

                if (i == 0)
                        g_string_append_printf(tree,
                                               "P: %s\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: ID_BUS=usb\n"
                                               "E: ID_VENDOR_ID=%04x\nE: ID_MODEL_ID=%04x\nA: idVendor=%04x\n"
                                               "A: idProduct=%04x\nA: bDeviceClass=00\nA: manufacturer=%s\n"
                                               "A: product=%s\n\n",
                                               usb, d->vid, d->pid, d->vid, d->pid, d->vendor, d->product);
                g_string_append_printf(tree, "P: %s/1-3:1.%d\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_interface\n\n", usb, i);
                snprintf(ret, size, "%s/1-3:1.%d/0003:%04X:%04X.%04X", usb, i, n->id[1], n->id[2], i + 1);
        } else if (strcmp(d->bus, "i2c") == 0) {
                /* An I2C HID device: every node under one HID device, as a
                 * screen's touch and pen interfaces are. */
                const char *i2c = "/devices/pci0000:00/0000:00:15.0/i2c_designware.0/i2c-1/i2c-BBT0001:00";

                snprintf(ret, size, "%s/0018:%04X:%04X.0001", i2c, n->id[1], n->id[2]);
                if (i == 0)
                        g_string_append_printf(tree, "P: %s\nE: SUBSYSTEM=i2c\n\nP: %s\nE: SUBSYSTEM=hid\n\n", i2c, ret);
        } else if (strcmp(d->bus, "platform") == 0) {
                snprintf(ret, size, "/devices/platform/bbt-input.%d", i);
                g_string_append_printf(tree, "P: %s\nE: SUBSYSTEM=platform\n\n", ret);
        } else if (strcmp(d->bus, "virtual") == 0) {
                snprintf(ret, size, "/devices/virtual");
        } else {
                FAIL("%s: unknown bus %s", d->path, d->bus);
        }
}

static void add_device(UMockdevTestbed *tb, const struct device *d)
{
        GString *tree = g_string_new(NULL);
        GError *err = NULL;
        gchar *root = umockdev_testbed_get_root_dir(tb);
        int i;

        for (i = 0; i < d->n_nodes; i++) {
                const struct node *n = &d->nodes[i];
                char parent[256];
                int num = FIRST_EVENT + i;

                parent_paths(d, tree, parent, sizeof(parent), i);
                g_string_append_printf(tree, "P: %s/input/input%d\nE: SUBSYSTEM=input\nE: NAME=\"%s\"\n"
                                             "E: PRODUCT=%x/%x/%x/%x\nE: PROP=", parent, num, n->name,
                                       n->id[0], n->id[1], n->id[2], n->id[3]);
                append_bitmap(tree, &n->prop, 1);
                g_string_append(tree, "\nE: EV=");
                append_bitmap(tree, &n->ev, 1);
                if ((n->ev >> EV_KEY) & 1) {
                        g_string_append(tree, "\nE: KEY=");
                        append_bitmap(tree, n->key, BBT_EVDEV_KEY_WORDS);
                }
                if ((n->ev >> EV_REL) & 1) {
                        g_string_append(tree, "\nE: REL=");
                        append_bitmap(tree, &n->rel, 1);
                }
                if ((n->ev >> EV_ABS) & 1) {
                        g_string_append(tree, "\nE: ABS=");
                        append_bitmap(tree, &n->abs, 1);
                }
                if ((n->ev >> EV_MSC) & 1) {
                        g_string_append(tree, "\nE: MSC=");
                        append_bitmap(tree, &n->msc, 1);
                }
                g_string_append_printf(tree, "\nE: ID_INPUT=1\n%sA: name=%s\nA: properties=", n->udev->str, n->name);
                append_bitmap(tree, &n->prop, 1);
                g_string_append_printf(tree, "\n\nP: %s/input/input%d/event%d\nN: input/event%d\nE: SUBSYSTEM=input\n"
                                             "E: DEVNAME=/dev/input/event%d\nE: MAJOR=13\nE: MINOR=%d\n"
                                             "E: ID_INPUT=1\n%sA: dev=13:%d\n\n",
                                       parent, num, num, num, num, 64 + num, n->udev->str, 64 + num);
        }
        if (!umockdev_testbed_add_from_string(tb, tree->str, &err))
                FAIL("%s: umockdev: %s\n%s", d->path, err->message, tree->str);
        g_string_free(tree, TRUE);
        for (i = 0; i < d->n_nodes; i++) {
                char file[512], devnode[64];
                GString *ioctl;

                snprintf(devnode, sizeof(devnode), "/dev/input/event%d", FIRST_EVENT + i);
                snprintf(file, sizeof(file), "%s/event%d.ioctl", root, FIRST_EVENT + i);
                ioctl = ioctl_record(&d->nodes[i], devnode);
                if (!g_file_set_contents(file, ioctl->str, -1, &err) ||
                    !umockdev_testbed_load_ioctl(tb, devnode, file, &err))
                        FAIL("%s: node %d ioctl: %s", d->path, i, err->message);
                g_string_free(ioctl, TRUE);
        }
        g_free(root);
}

/* Starts replaying every node's events; returns how long the longest
 * replay takes, in ms. */
static int replay(UMockdevTestbed *tb, const struct device *d)
{
        gchar *root = umockdev_testbed_get_root_dir(tb);
        GError *err = NULL;
        int i, longest = 0;

        for (i = 0; i < d->n_nodes; i++) {
                char file[512], devnode[64];
                int ms = (int)((d->nodes[i].last_s - d->nodes[i].first_s) * 1000);

                if (d->nodes[i].events->len == 0)
                        continue;
                if (ms > longest)
                        longest = ms;
                snprintf(devnode, sizeof(devnode), "/dev/input/event%d", FIRST_EVENT + i);
                snprintf(file, sizeof(file), "%s/event%d.evemu", root, FIRST_EVENT + i);
                if (!g_file_set_contents(file, d->nodes[i].events->str, -1, &err) ||
                    !umockdev_testbed_load_evemu_events(tb, devnode, file, &err))
                        FAIL("%s: node %d events: %s", d->path, i, err->message);
        }
        g_free(root);
        return longest;
}

/* ---- the drivers ---- */

static struct {
        uint64_t total[BBT_INPUT__COUNT];
        struct {
                enum bbt_periph_kind kind;
                char syspath[300];
        } inv[64];
        size_t inv_n;
        int n_inventory;
        char alert_detail[300];
        enum bbt_alert_state alert_state;
        int n_alert;
} seen;

static void on_input(void *userdata, enum bbt_input_class cls, uint64_t n)
{
        if ((int)cls >= 0 && cls < BBT_INPUT__COUNT)
                seen.total[cls] += n;
}

static void on_inventory(void *userdata, const struct bbt_dev *devs, size_t n)
{
        size_t i;

        ASSERT_LE(n, 64);
        for (i = 0; i < n; i++) {
                seen.inv[i].kind = devs[i].kind;
                snprintf(seen.inv[i].syspath, sizeof(seen.inv[i].syspath), "%s", devs[i].syspath);
        }
        seen.inv_n = n;
        seen.n_inventory++;
}

static void on_alert(void *userdata, const char *code, enum bbt_severity severity, enum bbt_alert_state state,
                     const char *detail)
{
        if (strcmp(code, "periph_missing") != 0)
                return;
        snprintf(seen.alert_detail, sizeof(seen.alert_detail), "%s", detail ? detail : "");
        seen.alert_state = state;
        seen.n_alert++;
}

static const struct bbt_driver_events events = {
        .input = on_input,
        .inventory = on_inventory,
        .alert = on_alert,
        .userdata = &seen,
};

static bool stopped;

static void stopped_cb(void *userdata)
{
        stopped = true;
}

static bool is_stopped(void *arg)
{
        return stopped;
}

static void driver_stop(uv_loop_t *loop, struct bbt_driver *d)
{
        stopped = false;
        d->ops->stop(d, stopped_cb, NULL);
        ASSERT(bbt_test_run_until(loop, is_stopped, NULL, 5000));
        d->ops->destroy(d);
}

static bool totals_reached(void *arg)
{
        const uint64_t *want = arg;
        int c;

        for (c = 0; c < BBT_INPUT__COUNT; c++)
                if (seen.total[c] < want[c])
                        return false;
        return true;
}

static bool inventories_at_least(void *arg)
{
        return seen.n_inventory >= *(int *)arg;
}

static const char *class_names[BBT_INPUT__COUNT] = {"touch", "pen", "mouse", "key"};

/* Runs the input driver on D's nodes: the ones with a class are watched,
 * their replayed events add up to D's counts, and --probe names each
 * node's class and why. */
static void check_input(UMockdevTestbed *tb, const struct device *d)
{
        struct bbt_driver_env env = {.root = "/", .events = &events};
        struct bbt_driver *drv;
        uv_loop_t loop;
        size_t want_watched = 0, len = 0;
        char *text = NULL;
        FILE *out;
        int i, c;

        for (i = 0; i < d->n_nodes; i++)
                want_watched += strcmp(d->nodes[i].expect_class, "none") != 0;
        memset(&seen, 0, sizeof(seen));
        ASSERT_OK(uv_loop_init(&loop));
        env.loop = &loop;
        ASSERT_OK(bbt_input_new(&env, NULL, &drv));

        out = open_memstream(&text, &len);
        ASSERT(out);
        ASSERT_OK(drv->ops->probe(drv, out));
        fclose(out);
        for (i = 0; i < d->n_nodes; i++) {
                const struct node *n = &d->nodes[i];
                char want[300];

                snprintf(want, sizeof(want), "input: /dev/input/event%d %s \"%s\": readable", FIRST_EVENT + i,
                         n->expect_class, n->name);
                if (strcmp(n->expect_class, "none") == 0) {
                        snprintf(want, sizeof(want), "/dev/input/event%d ", FIRST_EVENT + i);
                        if (strstr(text, want))
                                FAIL("%s: node %s should not be watched:\n%s", d->path, n->name, text);
                        continue;
                }
                if (!strstr(text, want))
                        FAIL("%s: --probe lacks \"%s\":\n%s", d->path, want, text);
                if (n->expect_why[0] && !strstr(text, n->expect_why))
                        FAIL("%s: --probe does not say why \"%s\":\n%s", d->path, n->expect_why, text);
        }
        free(text);

        ASSERT_OK(drv->ops->start(drv));
        ASSERT_EQ(bbt_input_watched(drv), want_watched);
        /* Until every replay is over and its batch delivered; then nothing more may come. */
        bbt_test_run_until(&loop, NULL, NULL, replay(tb, d) + BBT_INPUT_BATCH_MS_DEFAULT);
        bbt_test_run_until(&loop, totals_reached, (void *)d->counts, 5000);
        bbt_test_run_until(&loop, NULL, NULL, 600);
        for (c = 0; c < BBT_INPUT__COUNT; c++)
                if (seen.total[c] != d->counts[c])
                        FAIL("%s: counted %s %" PRIu64 ", expected %" PRIu64 " (touch %" PRIu64 " pen %" PRIu64
                             " mouse %" PRIu64 " key %" PRIu64 ")",
                             d->path, class_names[c], seen.total[c], d->counts[c], seen.total[BBT_INPUT_TOUCH],
                             seen.total[BBT_INPUT_PEN], seen.total[BBT_INPUT_MOUSE], seen.total[BBT_INPUT_KEY]);
        driver_stop(&loop, drv);
        bbt_test_loop_close(&loop);
}

static void kinds_text(uint32_t mask, char *buf, size_t size)
{
        size_t o = 0;
        int k;

        buf[0] = '\0';
        for (k = 0; k < BBT_KIND__COUNT && o < size; k++)
                if (mask & (1u << k))
                        o += (size_t)snprintf(buf + o, size - o, "%s%s", o ? " " : "",
                                              bbt_periph_kind_name((enum bbt_periph_kind)k));
        if (!buf[0])
                snprintf(buf, size, "none");
}

/* Runs the periph driver expecting the kinds WANT: the inventory holds
 * exactly those (one entry each), and periph_missing stays quiet; then,
 * expecting also a kind that is absent, periph_missing names it. */
static void check_inventory(const char *what, uint32_t want)
{
        struct bbt_periph_options opts = {.expect = want, .debounce_ms = DEBOUNCE_MS};
        struct bbt_driver_env env = {.root = "/", .events = &events};
        enum bbt_periph_kind absent = (want & (1u << BBT_KIND_PROJECTOR)) ? BBT_KIND_OTHER : BBT_KIND_PROJECTOR;
        char got_text[200], want_text[200], detail[100];
        struct bbt_driver *drv;
        uv_loop_t loop;
        uint32_t got = 0;
        int one = 1;
        size_t i;

        memset(&seen, 0, sizeof(seen));
        ASSERT_OK(uv_loop_init(&loop));
        env.loop = &loop;
        ASSERT_OK(bbt_periph_new(&env, &opts, &drv));
        ASSERT_OK(drv->ops->start(drv));
        ASSERT(bbt_test_run_until(&loop, inventories_at_least, &one, 3000));
        for (i = 0; i < seen.inv_n; i++) {
                if (got & (1u << seen.inv[i].kind))
                        FAIL("%s: two %s entries (%s)", what, bbt_periph_kind_name(seen.inv[i].kind),
                             seen.inv[i].syspath);
                got |= 1u << seen.inv[i].kind;
        }
        kinds_text(got, got_text, sizeof(got_text));
        kinds_text(want, want_text, sizeof(want_text));
        if (got != want)
                FAIL("%s: inventory %s, expected %s", what, got_text, want_text);
        bbt_test_run_until(&loop, NULL, NULL, 3 * DEBOUNCE_MS);
        if (seen.n_alert != 0)
                FAIL("%s: periph_missing with expect = %s: %s", what, want_text, seen.alert_detail);
        driver_stop(&loop, drv);

        /* The same room also expecting what is not there. */
        memset(&seen, 0, sizeof(seen));
        opts.expect = want | 1u << absent;
        ASSERT_OK(bbt_periph_new(&env, &opts, &drv));
        ASSERT_OK(drv->ops->start(drv));
        bbt_test_run_until(&loop, NULL, NULL, 3 * DEBOUNCE_MS);
        snprintf(detail, sizeof(detail), "expected %s not present", bbt_periph_kind_name(absent));
        ASSERT_EQ(seen.n_alert, 1);
        ASSERT_EQ(seen.alert_state, BBT_ALERT_RAISED);
        ASSERT_STR_EQ(seen.alert_detail, detail);
        driver_stop(&loop, drv);
        bbt_test_loop_close(&loop);
}

/* One input device of the corpus: counting, --probe and the inventory. */
static void input_device(const char *name)
{
        UMockdevTestbed *tb = umockdev_testbed_new();
        struct device d;

        device_load(&d, name);
        add_device(tb, &d);
        check_input(tb, &d);
        check_inventory(d.path, d.inventory);
        device_free(&d);
        g_object_unref(tb);
}

/* ---- peripherals from udev dumps ---- */

/* One peripheral dump: the first lines "# source: ..." and "# inventory:
 * KINDS" say where it comes from and what the inventory must list; the rest
 * is umockdev's format (udevadm info's P:/E:/A: lines). */
static void periph_dump(const char *name)
{
        UMockdevTestbed *tb = umockdev_testbed_new();
        char path[512], *text = NULL, *p, *kinds = NULL, *save = NULL;
        GString *body = g_string_new(NULL);
        bool has_source = false;
        GError *err = NULL;
        uint32_t want;
        char *line;

        snprintf(path, sizeof(path), "%s" CORPUS "%s.umockdev", bbt_test_srcdir(), name);
        if (!g_file_get_contents(path, &text, NULL, NULL))
                FAIL("cannot read %s", path);
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (line[0] != '#') {
                        g_string_append_printf(body, "%s%s\n", line[0] == 'P' && body->len ? "\n" : "", line);
                        continue;
                }
                for (p = line + 1; *p == ' '; p++)
                        ;
                if (strncmp(p, "source:", 7) == 0)
                        has_source = true;
                else if (strncmp(p, "inventory:", 10) == 0)
                        kinds = p + 10;
        }
        if (!has_source || !kinds)
                FAIL("%s: needs \"# source:\" and \"# inventory:\" lines", path);
        {
                struct parse pp = {.file = path};

                want = kinds_of(&pp, kinds);
        }
        if (!umockdev_testbed_add_from_string(tb, body->str, &err))
                FAIL("%s: umockdev: %s", path, err->message);
        check_inventory(path, want);
        g_string_free(body, TRUE);
        g_free(text);
        g_object_unref(tb);
}

/* A frame whose touchscreen node goes away: its mouse interface is a mouse
 * of its own again (motion gestures and clicks count as mouse). */
TEST(frame_touch_node_unplugged)
{
        UMockdevTestbed *tb = umockdev_testbed_new();
        struct bbt_driver_env env = {.root = "/", .events = &events};
        const char *touch = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/0003:222A:0001.0001/input/input30/event30";
        uint64_t want[BBT_INPUT__COUNT] = {[BBT_INPUT_MOUSE] = 4};
        struct bbt_driver *drv;
        struct device d;
        uv_loop_t loop;

        device_load(&d, "ilitek-222a-0001-frame-with-mouse");
        add_device(tb, &d);
        memset(&seen, 0, sizeof(seen));
        ASSERT_OK(uv_loop_init(&loop));
        env.loop = &loop;
        ASSERT_OK(bbt_input_new(&env, NULL, &drv));
        ASSERT_OK(drv->ops->start(drv));
        ASSERT_EQ(bbt_input_watched(drv), 2);
        umockdev_testbed_uevent(tb, touch, "remove");
        umockdev_testbed_remove_device(tb, touch);
        bbt_test_run_until(&loop, NULL, NULL, 300);
        ASSERT_EQ(bbt_input_watched(drv), 1);
        g_string_truncate(d.nodes[0].events, 0); /* the touchscreen is gone */
        /* Two movements more than 500 ms apart, each with a click. */
        bbt_test_run_until(&loop, NULL, NULL, replay(tb, &d) + BBT_INPUT_BATCH_MS_DEFAULT);
        bbt_test_run_until(&loop, totals_reached, want, 3000);
        bbt_test_run_until(&loop, NULL, NULL, 600);
        ASSERT_EQ(seen.total[BBT_INPUT_MOUSE], 4);
        ASSERT_EQ(seen.total[BBT_INPUT_TOUCH], 0);
        driver_stop(&loop, drv);
        bbt_test_loop_close(&loop);
        device_free(&d);
        g_object_unref(tb);
}

/* ---- the cases: one per file ---- */

/* A file added to tests/devices without its case here would never run. */
TEST(every_file_has_a_case)
{
        char dir[512], self[512], *source = NULL;
        const gchar *f;
        GDir *d;
        int n = 0;

        snprintf(dir, sizeof(dir), "%s" CORPUS, bbt_test_srcdir());
        snprintf(self, sizeof(self), "%s/test-device_corpus.c", bbt_test_srcdir());
        ASSERT(g_file_get_contents(self, &source, NULL, NULL));
        d = g_dir_open(dir, 0, NULL);
        ASSERT(d);
        while ((f = g_dir_read_name(d))) {
                char quoted[300];
                const char *dot = strrchr(f, '.');

                if (!dot || (strcmp(dot, ".device") != 0 && strcmp(dot, ".umockdev") != 0))
                        continue;
                snprintf(quoted, sizeof(quoted), "(\"%.*s\")", (int)(dot - f), f);
                if (!strstr(source, quoted))
                        FAIL("tests/devices/%s has no TEST case in test-device_corpus.c", f);
                n++;
        }
        g_dir_close(d);
        g_free(source);
        ASSERT_GE(n, 20);
}


TEST(advanced_silicon_2575_0204) { input_device("advanced-silicon-2575-0204"); }
TEST(anker_04d9_fa50_mouse_keys) { input_device("anker-04d9-fa50-mouse-keys"); }
TEST(at_keyboard) { input_device("at-keyboard"); }
TEST(egalax_0eef_0001_hid_pen_usage) { input_device("egalax-0eef-0001-hid-pen-usage"); }
TEST(egalax_0eef_0001_multitouch) { input_device("egalax-0eef-0001-multitouch"); }
TEST(egalax_0eef_0001_usbtouchscreen) { input_device("egalax-0eef-0001-usbtouchscreen"); }
TEST(egalax_virtual_single) { input_device("egalax-virtual-single"); }
TEST(elan_04f3_23b9_pen) { input_device("elan-04f3-23b9-pen"); }
TEST(huion_256c_006e) { input_device("huion-256c-006e"); }
TEST(ilitek_222a_0001_frame_with_mouse) { input_device("ilitek-222a-0001-frame-with-mouse"); }
TEST(imx6ul_resistive) { input_device("imx6ul-resistive"); }
TEST(kinesis_05f3_0007_keyboard) { input_device("kinesis-05f3-0007-keyboard"); }
TEST(lenovo_17ef_6019_mouse) { input_device("lenovo-17ef-6019-mouse"); }
TEST(logitech_r400_presenter) { input_device("logitech-r400-presenter"); }
TEST(ntrig_1b96_0007) { input_device("ntrig-1b96-0007"); }
TEST(protocol_a_0eef_0020) { input_device("protocol-a-0eef-0020"); }
TEST(qemu_0627_0001_tablet) { input_device("qemu-0627-0001-tablet"); }
TEST(ssd253x_i2c) { input_device("ssd253x-i2c"); }
TEST(wacom_cintiq_13hdt_finger) { input_device("wacom-cintiq-13hdt-finger"); }
TEST(wacom_cintiq_13hdt_pen_pad) { input_device("wacom-cintiq-13hdt-pen-pad"); }

TEST(camera_logitech_046d_0843) { periph_dump("camera-logitech-046d-0843"); }
TEST(camera_virtual_loopback) { periph_dump("camera-virtual-loopback"); }
TEST(display_amdgpu_second_output) { periph_dump("display-amdgpu-second-output"); }
TEST(headset_razer_1532_0577) { periph_dump("headset-razer-1532-0577"); }
TEST(usb_disk_jmicron_152d_0567) { periph_dump("usb-disk-jmicron-152d-0567"); }
