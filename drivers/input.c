/* Input activity driver: finds evdev nodes with libudev (and their hotplug), counts interactions per class, delivers counts in batches. */
#include "input.h"
#include "bbt/base.h"
#include "evdev_caps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libevdev/libevdev.h>
#include <libudev.h>

#ifndef container_of
#endif

struct input_dev {
        uv_poll_t poll; /* initialised only when fd >= 0 */
        struct bbt_input *in;
        struct input_dev *next;
        char *syspath;
        char *node;    /* the devnode as udev names it, e.g. /dev/input/event3 */
        int fd;        /* -1: we may not open it (denied) */
        int open_err;  /* denied: the errno open() gave */
        struct libevdev *evdev;
        struct bbt_evdev_class klass; /* what the capabilities say it is */
        enum bbt_input_class cls;     /* what its interactions count as */
        char *phys;    /* the physical device: its USB device, else the input device's parent */
        bool has_mt;   /* multi-touch protocol B: contacts come as tracking IDs */
        bool pointer_seen;
        int64_t pointer_last_ms; /* event time of the latest motion or scroll */
        /* A touch frame's or pen's own mouse or keyboard interface (a
         * companion) counts as its HEAD, once per contact both report. */
        struct input_dev *head;
        unsigned n_companions;          /* on a head: how many companions it has */
        const struct input_dev *pair_from; /* on a head: who counted the latest contact... */
        int64_t pair_ms;                /* ...at this event time, not yet matched by the other interface */
        bool pair_open;
};

struct bbt_input {
        struct bbt_driver base;
        char *root;
        unsigned batch_ms;
        const struct bbt_input_evdev_ops *ops;
        struct bbt_input_evdev_ops user_ops; /* opts->evdev_ops, gaps filled with libevdev's */

        struct udev *udev;
        struct udev_monitor *monitor;
        uv_poll_t monitor_poll;
        uv_timer_t batch_timer;
        bool started, stopping;
        unsigned n_closing; /* uv_close() calls whose callback has not run yet */
        void (*done)(void *userdata);
        void *done_userdata;

        struct input_dev *devs;
        size_t n_watched, n_denied;
        bool denied_raised; /* the input_denied alert as last delivered */
        char denied_detail[256];
        uint64_t pending[BBT_INPUT__COUNT];
};

static const struct bbt_input_evdev_ops default_evdev_ops = {
        .set_fd = libevdev_set_fd,
        .next_event = libevdev_next_event,
};

/* ---- paths and udev facts ---- */

/* ROOT + PATH as a new string ("/" + "/dev/x" gives "/dev/x"), or NULL. */
static char *path_join(const char *root, const char *path)
{
        size_t rl = strlen(root), pl = strlen(path);
        char *p;

        while (rl > 0 && root[rl - 1] == '/')
                rl--;
        p = malloc(rl + pl + 2);
        if (!p)
                return NULL;
        memcpy(p, root, rl);
        if (path[0] != '/')
                p[rl++] = '/';
        memcpy(p + rl, path, pl + 1);
        return p;
}

/* The class a node's interactions count as. */
static enum bbt_input_class class_of_role(enum bbt_evdev_role role)
{
        switch (role) {
        case BBT_EVDEV_TOUCH:
                return BBT_INPUT_TOUCH;
        case BBT_EVDEV_PEN:
                return BBT_INPUT_PEN;
        case BBT_EVDEV_TOUCHPAD:
        case BBT_EVDEV_MOUSE:
                return BBT_INPUT_MOUSE;
        default:
                return BBT_INPUT_KEY;
        }
}

static const char *class_name(enum bbt_input_class cls)
{
        static const char *const names[BBT_INPUT__COUNT] = {"touch", "pen", "mouse", "key"};

        return names[cls];
}

/* Whether U is an evdev node we watch; stores its devnode, what its
 * capabilities say it is and, in RET_UDEV_SAYS, the ID_INPUT_* property
 * whose class differs from that (NULL when udev agrees or is silent). */
static bool is_watched_node(struct udev_device *u, const char **ret_node, struct bbt_evdev_class *ret_class,
                            const char **ret_udev_says)
{
        const char *sysname = udev_device_get_sysname(u), *node = udev_device_get_devnode(u);
        struct bbt_evdev_caps caps, hints_only = {0};
        struct bbt_evdev_class hinted;

        if (!sysname || strncmp(sysname, "event", 5) != 0 || !node)
                return false;
        bbt_evdev_caps_from_udev(u, &caps);
        bbt_evdev_classify(&caps, ret_class);
        if (ret_class->role == BBT_EVDEV_NONE)
                return false;
        *ret_node = node;
        hints_only.hints = caps.hints;
        bbt_evdev_classify(&hints_only, &hinted);
        *ret_udev_says = caps.known && hinted.role != BBT_EVDEV_NONE &&
                                         class_of_role(hinted.role) != class_of_role(ret_class->role)
                                 ? bbt_evdev_hint_name(caps.hints)
                                 : NULL;
        return true;
}

/* The physical device of the event node U, as a new string: its USB device,
 * else the parent of its input device (an I2C HID device holds a screen's
 * touch and pen nodes), else its input device; a virtual (uinput) device is
 * always its own. NULL on ENOMEM. */
static char *phys_of(struct udev_device *u)
{
        struct udev_device *p = udev_device_get_parent_with_subsystem_devtype(u, "usb", "usb_device");
        struct udev_device *input = udev_device_get_parent_with_subsystem_devtype(u, "input", NULL);
        const char *syspath = udev_device_get_syspath(u);

        if (!p && input) {
                p = input;
                if (strncmp(syspath, "/sys/devices/virtual/", 21) != 0 && udev_device_get_parent(input))
                        p = udev_device_get_parent(input);
        }
        return strdup(udev_device_get_syspath(p ? p : u));
}

/* ---- counting ---- */

static void batch_cb(uv_timer_t *t);

static void batch_arm(struct bbt_input *in)
{
        if (!in->started || in->stopping || uv_is_active((uv_handle_t *)&in->batch_timer))
                return;
        uv_timer_start(&in->batch_timer, batch_cb, in->batch_ms, 0);
}

static void count(struct bbt_input *in, enum bbt_input_class cls)
{
        in->pending[cls]++;
        batch_arm(in);
}

/* Keyboard and remote-control keys, as opposed to buttons of pointers,
 * pens, joysticks and game pads. */
static bool is_keyboard_key(unsigned code)
{
        return (code > KEY_RESERVED && code < BTN_MISC) ||
               (code >= KEY_OK && code < BTN_DPAD_UP) ||
               (code >= KEY_ALS_TOGGLE && code < BTN_TRIGGER_HAPPY);
}

/* An event's own time stamp in ms. */
static int64_t event_ms(const struct input_event *ev)
{
        return (int64_t)ev->input_event_sec * 1000 + (int64_t)ev->input_event_usec / 1000;
}

/* Motion or scrolling: one interaction per run without a pause of
 * BBT_INPUT_GESTURE_GAP_MS (measured on the events' own timestamps). */
static void pointer_motion(struct input_dev *dev, const struct input_event *ev)
{
        int64_t t = event_ms(ev);

        if (!dev->pointer_seen || t < dev->pointer_last_ms ||
            t - dev->pointer_last_ms >= BBT_INPUT_GESTURE_GAP_MS)
                count(dev->in, BBT_INPUT_MOUSE);
        dev->pointer_seen = true;
        dev->pointer_last_ms = t;
}

/* One contact (a finger, a pen stroke, a click) on DEV or, for a companion,
 * on its head. A frame that reports a contact on two interfaces within
 * BBT_INPUT_COMPANION_WINDOW_MS (event times) is counted once: each count
 * from one interface absorbs at most one from another. */
static void contact(struct input_dev *dev, const struct input_event *ev)
{
        struct input_dev *head = dev->head ? dev->head : dev;
        int64_t t = event_ms(ev), d;

        if (head->n_companions > 0) {
                d = t - head->pair_ms;
                if (head->pair_open && head->pair_from != dev && d < BBT_INPUT_COMPANION_WINDOW_MS &&
                    d > -BBT_INPUT_COMPANION_WINDOW_MS) {
                        head->pair_open = false; /* the other interface's report of the same contact */
                        return;
                }
                head->pair_open = true;
                head->pair_from = dev;
                head->pair_ms = t;
        }
        count(dev->in, head->cls);
}

/* Turns one event into at most one counted interaction; see
 * docs/drivers-input-periph.md for the table. The event's code and value
 * go no further than this function. */
static void handle_event(struct input_dev *dev, const struct input_event *ev)
{
        struct bbt_input *in = dev->in;
        enum bbt_evdev_role role = dev->klass.role;

        switch (ev->type) {
        case EV_KEY:
                if (ev->value != 1) /* releases (0) and auto-repeat (2) are not new presses */
                        return;
                if (dev->head) {
                        /* A frame's mouse or keyboard interface: its presses are the frame's contacts. */
                        if (ev->code == BTN_TOUCH || (ev->code >= BTN_MOUSE && ev->code <= BTN_TASK) ||
                            is_keyboard_key(ev->code))
                                contact(dev, ev);
                        return;
                }
                if (ev->code == BTN_TOUCH) {
                        if (role == BBT_EVDEV_TOUCH) {
                                if (!dev->has_mt) /* with tracking IDs each contact is counted there */
                                        contact(dev, ev);
                        } else if (role == BBT_EVDEV_PEN || role == BBT_EVDEV_TOUCHPAD || role == BBT_EVDEV_MOUSE) {
                                count(in, dev->cls);
                        }
                        return;
                }
                if (ev->code == BTN_STYLUS || ev->code == BTN_STYLUS2 || ev->code == BTN_STYLUS3 ||
                    (ev->code >= BTN_0 && ev->code <= BTN_9)) {
                        if (role == BBT_EVDEV_PEN) /* pen buttons and a pad's buttons */
                                count(in, BBT_INPUT_PEN);
                        return;
                }
                if (ev->code >= BTN_MOUSE && ev->code <= BTN_TASK) {
                        if (role == BBT_EVDEV_TOUCH)
                                contact(dev, ev); /* a touch driver's emulated click */
                        else
                                count(in, dev->cls == BBT_INPUT_KEY ? BBT_INPUT_MOUSE : dev->cls);
                        return;
                }
                if (is_keyboard_key(ev->code))
                        count(in, BBT_INPUT_KEY);
                return; /* tool proximity (BTN_TOOL_*), joystick and game-pad buttons */
        case EV_ABS:
                if (dev->head)
                        return; /* a companion's motion is part of the frame's contact */
                if (ev->code == ABS_MT_TRACKING_ID) {
                        if (ev->value >= 0 && role == BBT_EVDEV_TOUCH)
                                contact(dev, ev);
                        return;
                }
                /* Absolute pointers (KVM and VM tablets): motion as for a mouse.
                 * Touch screens, pens and touchpads count contacts instead. */
                if (role == BBT_EVDEV_MOUSE)
                        pointer_motion(dev, ev);
                return;
        case EV_REL:
                if (dev->head)
                        return;
                if (role == BBT_EVDEV_MOUSE || role == BBT_EVDEV_TOUCHPAD || ev->code == REL_WHEEL ||
                    ev->code == REL_HWHEEL || ev->code == REL_WHEEL_HI_RES || ev->code == REL_HWHEEL_HI_RES)
                        pointer_motion(dev, ev);
                return;
        default:
                return;
        }
}

/* ---- devices ---- */

static void maybe_done(struct bbt_input *in)
{
        if (in->stopping && in->n_closing == 0 && in->done) {
                void (*done)(void *) = in->done;

                in->done = NULL;
                done(in->done_userdata);
        }
}

static void dev_free(struct input_dev *dev)
{
        if (!dev)
                return;
        libevdev_free(dev->evdev);
        if (dev->fd >= 0)
                close(dev->fd);
        free(dev->syspath);
        free(dev->node);
        free(dev->phys);
        free(dev);
}

static void dev_closed_cb(uv_handle_t *h)
{
        struct input_dev *dev = bbt_container_of(h, struct input_dev, poll);
        struct bbt_input *in = dev->in;

        dev_free(dev);
        in->n_closing--;
        maybe_done(in);
}

static struct input_dev *dev_find(struct bbt_input *in, const char *syspath)
{
        struct input_dev *dev;

        for (dev = in->devs; dev; dev = dev->next)
                if (strcmp(dev->syspath, syspath) == 0)
                        return dev;
        return NULL;
}

static bool is_head_role(enum bbt_evdev_role role)
{
        return role == BBT_EVDEV_TOUCH || role == BBT_EVDEV_PEN;
}

static bool is_companion_role(enum bbt_evdev_role role)
{
        return role == BBT_EVDEV_MOUSE || role == BBT_EVDEV_KEYBOARD || role == BBT_EVDEV_KEYS;
}

/* Links every mouse or keyboard interface of a touch frame or pen (the same
 * physical device) to it as a companion, a touch node before a pen node;
 * run whenever a node comes or goes. */
static void regroup(struct bbt_input *in)
{
        struct input_dev *d, *h;

        for (d = in->devs; d; d = d->next) {
                d->head = NULL;
                d->n_companions = 0;
                d->pair_open = false;
        }
        for (d = in->devs; d; d = d->next) {
                struct input_dev *best = NULL;

                if (!is_companion_role(d->klass.role))
                        continue;
                for (h = in->devs; h; h = h->next)
                        if (is_head_role(h->klass.role) && strcmp(h->phys, d->phys) == 0 &&
                            (!best || (best->klass.role != BBT_EVDEV_TOUCH && h->klass.role == BBT_EVDEV_TOUCH)))
                                best = h;
                if (best) {
                        d->head = best;
                        best->n_companions++;
                }
        }
}

/* Unlinks DEV and releases it: at once when denied, after its poll handle
 * has closed otherwise. */
static void dev_forget(struct input_dev *dev)
{
        struct bbt_input *in = dev->in;
        struct input_dev **p;

        for (p = &in->devs; *p; p = &(*p)->next)
                if (*p == dev) {
                        *p = dev->next;
                        break;
                }
        dev->next = NULL;
        dev->head = NULL;
        regroup(in);
        if (dev->fd < 0) {
                in->n_denied--;
                dev_free(dev);
                batch_arm(in); /* the alert may clear */
                return;
        }
        in->n_watched--;
        in->n_closing++;
        uv_close((uv_handle_t *)&dev->poll, dev_closed_cb);
}

static void dev_readable_cb(uv_poll_t *h, int status, int events)
{
        struct input_dev *dev = bbt_container_of(h, struct input_dev, poll);
        struct input_event ev;
        int r;

        if (status < 0) {
                dev_forget(dev);
                return;
        }
        for (;;) {
                r = dev->in->ops->next_event(dev->evdev, LIBEVDEV_READ_FLAG_NORMAL, &ev);
                if (r == LIBEVDEV_READ_STATUS_SUCCESS) {
                        handle_event(dev, &ev);
                } else if (r == LIBEVDEV_READ_STATUS_SYNC) {
                        /* The kernel's buffer overflowed (SYN_DROPPED). libevdev
                         * re-reads the device state; its delta events are
                         * drained uncounted: what was lost is not guessed. */
                        do
                                r = dev->in->ops->next_event(dev->evdev, LIBEVDEV_READ_FLAG_SYNC, &ev);
                        while (r == LIBEVDEV_READ_STATUS_SYNC);
                        dev->pointer_seen = false;
                        if (r != -EAGAIN && r != LIBEVDEV_READ_STATUS_SUCCESS) {
                                dev_forget(dev);
                                return;
                        }
                } else if (r == -EAGAIN) {
                        return;
                } else if (r == -EINTR) {
                        continue;
                } else {
                        dev_forget(dev); /* -ENODEV: unplugged; anything else: unusable */
                        return;
                }
        }
}

static void evdev_log_nothing(const struct libevdev *evdev, enum libevdev_log_priority priority, void *data,
                              const char *file, int line, const char *func, const char *format, va_list args)
{
}

static void denied_note(struct bbt_input *in, const char *node, int err)
{
        snprintf(in->denied_detail, sizeof(in->denied_detail),
                 "cannot read %s: %s (the agent's user needs the input group)", node, strerror(err));
}

/* Starts watching the evdev node U if it is one we count and not yet
 * watched. Returns 0 (also for nodes we skip and nodes we may not open,
 * which are remembered for the input_denied alert), or a negative errno. */
static int dev_add(struct bbt_input *in, struct udev_device *u)
{
        const char *node, *udev_says, *syspath = udev_device_get_syspath(u);
        struct bbt_evdev_class klass;
        struct input_dev *dev;
        char *path;
        int r;

        if (!syspath || !is_watched_node(u, &node, &klass, &udev_says) || dev_find(in, syspath))
                return 0;
        dev = calloc(1, sizeof(*dev));
        if (!dev)
                return -ENOMEM;
        dev->in = in;
        dev->fd = -1;
        dev->klass = klass;
        dev->cls = class_of_role(klass.role);
        dev->syspath = strdup(syspath);
        dev->node = strdup(node);
        dev->phys = phys_of(u);
        path = path_join(in->root, node);
        if (!dev->syspath || !dev->node || !dev->phys || !path) {
                r = -ENOMEM;
                goto fail;
        }
        dev->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (dev->fd < 0) {
                r = -errno;
                if (r == -EACCES || r == -EPERM) {
                        dev->open_err = -r;
                        if (in->n_denied == 0)
                                denied_note(in, node, -r);
                        dev->next = in->devs;
                        in->devs = dev;
                        in->n_denied++;
                        regroup(in);
                        batch_arm(in);
                        free(path);
                        return 0;
                }
                goto fail;
        }
        /* libevdev logs to stderr by default (e.g. a device sending a
         * tracking ID twice); a library keeps quiet, so it logs nowhere. */
        dev->evdev = libevdev_new();
        if (!dev->evdev) {
                r = -ENOMEM;
                goto fail;
        }
        libevdev_set_device_log_function(dev->evdev, evdev_log_nothing, LIBEVDEV_LOG_ERROR, NULL);
        r = in->ops->set_fd(dev->evdev, dev->fd);
        if (r < 0)
                goto fail;
        dev->has_mt = libevdev_has_event_code(dev->evdev, EV_ABS, ABS_MT_TRACKING_ID);
        r = uv_poll_init(in->base.env.loop, &dev->poll, libevdev_get_fd(dev->evdev));
        if (r < 0)
                goto fail;
        dev->next = in->devs;
        in->devs = dev;
        in->n_watched++;
        regroup(in);
        r = uv_poll_start(&dev->poll, UV_READABLE, dev_readable_cb);
        if (r < 0) {
                dev_forget(dev);
                free(path);
                return r;
        }
        free(path);
        return 0;

fail:
        free(path);
        dev_free(dev);
        return r;
}

static void monitor_cb(uv_poll_t *h, int status, int events)
{
        struct bbt_input *in = bbt_container_of(h, struct bbt_input, monitor_poll);
        struct udev_device *u;

        if (status < 0) {
                uv_poll_stop(h); /* no more hotplug; what is open keeps counting */
                return;
        }
        while ((u = udev_monitor_receive_device(in->monitor))) {
                const char *action = udev_device_get_action(u), *syspath = udev_device_get_syspath(u);

                if (action && syspath && strcmp(action, "remove") == 0) {
                        struct input_dev *dev = dev_find(in, syspath);

                        if (dev)
                                dev_forget(dev);
                } else if (action && strcmp(action, "add") == 0) {
                        (void)dev_add(in, u); /* a node we cannot read is skipped */
                }
                udev_device_unref(u);
        }
}

/* ---- batches ---- */

static void deliver(struct bbt_input *in)
{
        const struct bbt_driver_events *ev = in->base.env.events;
        uint64_t counts[BBT_INPUT__COUNT];
        bool want_alert = in->n_denied > 0;
        int c;

        memcpy(counts, in->pending, sizeof(counts));
        memset(in->pending, 0, sizeof(in->pending));
        for (c = 0; c < BBT_INPUT__COUNT; c++)
                if (counts[c] > 0 && ev->input)
                        ev->input(ev->userdata, (enum bbt_input_class)c, counts[c]);
        if (want_alert != in->denied_raised) {
                in->denied_raised = want_alert;
                if (ev->alert)
                        ev->alert(ev->userdata, "input_denied", BBT_SEVERITY_WARNING,
                                  want_alert ? BBT_ALERT_RAISED : BBT_ALERT_CLEARED,
                                  want_alert ? in->denied_detail : NULL);
        }
}

static void batch_cb(uv_timer_t *t)
{
        deliver(bbt_container_of(t, struct bbt_input, batch_timer));
}

/* ---- driver operations ---- */

static void handle_closed_cb(uv_handle_t *h)
{
        struct bbt_input *in = h->data;

        in->n_closing--;
        maybe_done(in);
}

static int input_start(struct bbt_driver *d)
{
        struct bbt_input *in = bbt_container_of(d, struct bbt_input, base);
        struct udev_enumerate *e;
        struct udev_list_entry *entry;
        int r;

        if (in->started)
                return -EALREADY;
        in->udev = udev_new();
        if (!in->udev)
                return -ENOMEM;
        in->monitor = udev_monitor_new_from_netlink(in->udev, "udev");
        if (!in->monitor) {
                r = errno > 0 ? -errno : -ENOMEM;
                goto fail_monitor;
        }
        r = udev_monitor_filter_add_match_subsystem_devtype(in->monitor, "input", NULL);
        if (r >= 0)
                r = udev_monitor_enable_receiving(in->monitor);
        if (r < 0)
                goto fail_receive;
        r = uv_poll_init(d->env.loop, &in->monitor_poll, udev_monitor_get_fd(in->monitor));
        if (r < 0)
                goto fail_receive;
        in->monitor_poll.data = in;
        uv_timer_init(d->env.loop, &in->batch_timer);
        in->batch_timer.data = in;
        in->started = true;
        /* From here on start() succeeds: a failure to watch hotplug or one
         * device leaves the rest working. */
        (void)uv_poll_start(&in->monitor_poll, UV_READABLE, monitor_cb);

        e = udev_enumerate_new(in->udev);
        if (e && udev_enumerate_add_match_subsystem(e, "input") >= 0 &&
            udev_enumerate_add_match_sysname(e, "event*") >= 0 && udev_enumerate_scan_devices(e) >= 0)
                udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) {
                        struct udev_device *u =
                                udev_device_new_from_syspath(in->udev, udev_list_entry_get_name(entry));

                        if (u) {
                                (void)dev_add(in, u);
                                udev_device_unref(u);
                        }
                }
        udev_enumerate_unref(e);
        return 0;

fail_receive:
        in->monitor = udev_monitor_unref(in->monitor);
fail_monitor:
        in->udev = udev_unref(in->udev);
        return r;
}

static void input_stop(struct bbt_driver *d, void (*done)(void *userdata), void *userdata)
{
        struct bbt_input *in = bbt_container_of(d, struct bbt_input, base);

        if (!in->started || in->stopping) {
                if (!in->stopping && done)
                        done(userdata);
                return;
        }
        deliver(in); /* counts still waiting for their batch go out now */
        in->stopping = true;
        in->done = done;
        in->done_userdata = userdata;
        while (in->devs)
                dev_forget(in->devs);
        in->n_closing += 2;
        uv_close((uv_handle_t *)&in->batch_timer, handle_closed_cb);
        uv_close((uv_handle_t *)&in->monitor_poll, handle_closed_cb);
}

/* One node's lines for --probe: class, name, readable or not, and why. */
static void probe_print(FILE *out, const char *root, const struct input_dev *dev, const char *name,
                        const char *udev_says)
{
        char *path = path_join(root, dev->node);
        int fd = path ? open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1, err = path ? errno : ENOMEM;
        enum bbt_input_class cls = dev->head ? dev->head->cls : dev->cls;

        fprintf(out, "input: %s %s \"%s\": ", dev->node, class_name(cls), name ? name : "");
        if (fd >= 0)
                fprintf(out, "readable\n");
        else
                fprintf(out, "not readable: %s%s\n", strerror(err),
                        err == EACCES || err == EPERM ? " (the agent's user needs the input group)" : "");
        if (fd >= 0)
                close(fd);
        free(path);
        fprintf(out, "  why: %s", dev->klass.reason);
        if (dev->klass.role == BBT_EVDEV_TOUCHPAD)
                fprintf(out, ", counted as mouse");
        if (dev->head)
                fprintf(out, "; an interface of the %s %s on the same device: its presses count as that %s, "
                             "a contact reported on both once",
                        dev->head->klass.role == BBT_EVDEV_TOUCH ? "touch frame" : "pen", dev->head->node,
                        class_name(dev->head->cls));
        if (udev_says)
                fprintf(out, " (udev's hint %s disagrees)", udev_says);
        fputc('\n', out);
}

static int input_probe(struct bbt_driver *d, FILE *out)
{
        struct bbt_input *in = bbt_container_of(d, struct bbt_input, base);
        struct bbt_input seen = {0}; /* the nodes, unopened, grouped as start() would */
        struct input_dev **tail = &seen.devs, *dev;
        struct udev *udev = udev_new();
        struct udev_enumerate *e;
        struct udev_list_entry *entry;
        struct extra {
                char *name;
                const char *udev_says;
        } *extra = NULL;
        size_t n = 0, i;
        int r = 0;

        if (!udev)
                return -ENOMEM;
        e = udev_enumerate_new(udev);
        if (!e || udev_enumerate_add_match_subsystem(e, "input") < 0 ||
            udev_enumerate_add_match_sysname(e, "event*") < 0 || udev_enumerate_scan_devices(e) < 0) {
                r = -ENOMEM;
                goto out;
        }
        udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) {
                struct udev_device *u = udev_device_new_from_syspath(udev, udev_list_entry_get_name(entry));
                struct udev_device *parent;
                const char *node, *udev_says, *name = NULL;
                struct bbt_evdev_class klass;
                struct extra *grown;

                if (!u)
                        continue;
                if (!is_watched_node(u, &node, &klass, &udev_says)) {
                        udev_device_unref(u);
                        continue;
                }
                parent = udev_device_get_parent(u);
                if (parent)
                        name = udev_device_get_sysattr_value(parent, "name");
                dev = calloc(1, sizeof(*dev));
                if (dev)
                        dev->fd = -1;
                grown = realloc(extra, (n + 1) * sizeof(*extra));
                if (grown)
                        extra = grown;
                if (!dev || !grown || !(dev->node = strdup(node)) || !(dev->phys = phys_of(u))) {
                        dev_free(dev);
                        udev_device_unref(u);
                        r = -ENOMEM;
                        goto out;
                }
                dev->klass = klass;
                dev->cls = class_of_role(klass.role);
                extra[n].name = name ? strdup(name) : NULL;
                extra[n].udev_says = udev_says;
                *tail = dev;
                tail = &dev->next;
                n++;
                udev_device_unref(u);
        }
        regroup(&seen);
        for (dev = seen.devs, i = 0; dev; dev = dev->next, i++)
                probe_print(out, in->root, dev, extra[i].name, extra[i].udev_says);
        if (n == 0)
                fprintf(out, "input: no touch, pen, mouse or keyboard devices\n");
out:
        while ((dev = seen.devs)) {
                seen.devs = dev->next;
                dev_free(dev);
        }
        for (i = 0; i < n; i++)
                free(extra[i].name);
        free(extra);
        udev_enumerate_unref(e);
        udev_unref(udev);
        return r;
}

static void input_destroy(struct bbt_driver *d)
{
        struct bbt_input *in;

        if (!d)
                return;
        in = bbt_container_of(d, struct bbt_input, base);
        while (in->devs) { /* only denied ones can be left: the rest closed in stop() */
                struct input_dev *dev = in->devs;

                in->devs = dev->next;
                dev_free(dev);
        }
        udev_monitor_unref(in->monitor);
        udev_unref(in->udev);
        bbt_driver_release(&in->base);
        free(in);
}

static const struct bbt_driver_ops input_ops = {
        .name = "input",
        .start = input_start,
        .stop = input_stop,
        .probe = input_probe,
        .destroy = input_destroy,
};

int bbt_input_new(const struct bbt_driver_env *env, const struct bbt_input_options *opts,
                  struct bbt_driver **ret)
{
        struct bbt_input *in;

        if (!env || !env->loop || !env->events || !ret)
                return -EINVAL;
        in = calloc(1, sizeof(*in));
        if (!in)
                return -ENOMEM;
        if (bbt_driver_init(&in->base, &input_ops, env) < 0) {
                free(in);
                return -ENOMEM;
        }
        in->root = (char *)in->base.env.root;
        in->batch_ms = opts && opts->batch_ms ? opts->batch_ms : BBT_INPUT_BATCH_MS_DEFAULT;
        in->ops = &default_evdev_ops;
        if (opts && opts->evdev_ops) {
                in->user_ops = *opts->evdev_ops;
                if (!in->user_ops.set_fd)
                        in->user_ops.set_fd = libevdev_set_fd;
                if (!in->user_ops.next_event)
                        in->user_ops.next_event = libevdev_next_event;
                in->ops = &in->user_ops;
        }
        *ret = &in->base;
        return 0;
}

size_t bbt_input_watched(const struct bbt_driver *d)
{
        const struct bbt_input *in;

        if (!d || d->ops != &input_ops)
                return 0;
        in = bbt_container_of(d, const struct bbt_input, base);
        return in->n_watched;
}
