/* Input activity driver: finds evdev nodes with libudev (and their hotplug), counts interactions per class, delivers counts in batches. */
#include "input.h"

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
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

/* What udev says a node is (ID_INPUT_* properties). A node may be several. */
enum {
        CAP_TOUCH = 1u << 0,    /* ID_INPUT_TOUCHSCREEN */
        CAP_PEN = 1u << 1,      /* ID_INPUT_TABLET */
        CAP_MOUSE = 1u << 2,    /* ID_INPUT_MOUSE, ID_INPUT_POINTINGSTICK */
        CAP_TOUCHPAD = 1u << 3, /* ID_INPUT_TOUCHPAD */
        CAP_KEYS = 1u << 4,     /* ID_INPUT_KEYBOARD, ID_INPUT_KEY */
};

struct input_dev {
        uv_poll_t poll; /* initialised only when fd >= 0 */
        struct bbt_input *in;
        struct input_dev *next;
        char *syspath;
        char *node;    /* the devnode as udev names it, e.g. /dev/input/event3 */
        int fd;        /* -1: we may not open it (denied) */
        int open_err;  /* denied: the errno open() gave */
        struct libevdev *evdev;
        unsigned caps;
        bool has_mt;   /* multi-touch protocol B: contacts come as tracking IDs */
        bool pointer_seen;
        int64_t pointer_last_ms; /* event time of the latest motion or scroll */
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

static bool prop_is_1(struct udev_device *u, const char *name)
{
        const char *v = udev_device_get_property_value(u, name);

        return v && strcmp(v, "1") == 0;
}

static unsigned caps_of(struct udev_device *u)
{
        unsigned caps = 0;

        if (prop_is_1(u, "ID_INPUT_TOUCHSCREEN"))
                caps |= CAP_TOUCH;
        if (prop_is_1(u, "ID_INPUT_TABLET"))
                caps |= CAP_PEN;
        if (prop_is_1(u, "ID_INPUT_MOUSE") || prop_is_1(u, "ID_INPUT_POINTINGSTICK"))
                caps |= CAP_MOUSE;
        if (prop_is_1(u, "ID_INPUT_TOUCHPAD"))
                caps |= CAP_TOUCHPAD;
        if (prop_is_1(u, "ID_INPUT_KEYBOARD") || prop_is_1(u, "ID_INPUT_KEY"))
                caps |= CAP_KEYS;
        return caps;
}

/* Whether U is an evdev node we watch; stores its devnode and caps. */
static bool is_watched_node(struct udev_device *u, const char **ret_node, unsigned *ret_caps)
{
        const char *sysname = udev_device_get_sysname(u), *node = udev_device_get_devnode(u);
        unsigned caps;

        if (!sysname || strncmp(sysname, "event", 5) != 0 || !node)
                return false;
        caps = caps_of(u);
        if (caps == 0)
                return false;
        *ret_node = node;
        *ret_caps = caps;
        return true;
}

static const char *caps_name(unsigned caps)
{
        if (caps & CAP_TOUCH)
                return "touch";
        if (caps & CAP_PEN)
                return "pen";
        if (caps & (CAP_MOUSE | CAP_TOUCHPAD))
                return "mouse";
        return "key";
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

/* The class a button press on DEV belongs to: what the device mainly is. */
static enum bbt_input_class primary_class(const struct input_dev *dev)
{
        if (dev->caps & CAP_TOUCH)
                return BBT_INPUT_TOUCH;
        if (dev->caps & CAP_PEN)
                return BBT_INPUT_PEN;
        if (dev->caps & (CAP_MOUSE | CAP_TOUCHPAD))
                return BBT_INPUT_MOUSE;
        return BBT_INPUT_KEY;
}

/* Keyboard and remote-control keys, as opposed to buttons of pointers,
 * pens, joysticks and game pads. */
static bool is_keyboard_key(unsigned code)
{
        return (code > KEY_RESERVED && code < BTN_MISC) ||
               (code >= KEY_OK && code < BTN_DPAD_UP) ||
               (code >= KEY_ALS_TOGGLE && code < BTN_TRIGGER_HAPPY);
}

/* Motion or scrolling: one interaction per run without a pause of
 * BBT_INPUT_GESTURE_GAP_MS (measured on the events' own timestamps). */
static void pointer_motion(struct input_dev *dev, const struct input_event *ev)
{
        int64_t t = (int64_t)ev->input_event_sec * 1000 + (int64_t)ev->input_event_usec / 1000;

        if (!dev->pointer_seen || t < dev->pointer_last_ms ||
            t - dev->pointer_last_ms >= BBT_INPUT_GESTURE_GAP_MS)
                count(dev->in, BBT_INPUT_MOUSE);
        dev->pointer_seen = true;
        dev->pointer_last_ms = t;
}

/* Turns one event into at most one counted interaction; see
 * docs/drivers-input-periph.md for the table. The event's code and value
 * go no further than this function. */
static void handle_event(struct input_dev *dev, const struct input_event *ev)
{
        struct bbt_input *in = dev->in;

        switch (ev->type) {
        case EV_KEY:
                if (ev->value != 1) /* releases (0) and auto-repeat (2) are not new presses */
                        return;
                if (ev->code == BTN_TOUCH) {
                        if (dev->caps & CAP_TOUCH) {
                                if (!dev->has_mt) /* with tracking IDs each contact is counted there */
                                        count(in, BBT_INPUT_TOUCH);
                        } else if (dev->caps & CAP_PEN) {
                                count(in, BBT_INPUT_PEN);
                        } else if (dev->caps & (CAP_MOUSE | CAP_TOUCHPAD)) {
                                count(in, BBT_INPUT_MOUSE);
                        }
                        return;
                }
                if (ev->code == BTN_STYLUS || ev->code == BTN_STYLUS2 || ev->code == BTN_STYLUS3) {
                        count(in, (dev->caps & CAP_PEN) ? BBT_INPUT_PEN : primary_class(dev));
                        return;
                }
                if (ev->code >= BTN_MOUSE && ev->code <= BTN_TASK) {
                        enum bbt_input_class cls = primary_class(dev);

                        count(in, cls == BBT_INPUT_KEY ? BBT_INPUT_MOUSE : cls);
                        return;
                }
                if (is_keyboard_key(ev->code))
                        count(in, BBT_INPUT_KEY);
                return; /* tool proximity (BTN_TOOL_*), joystick and pad buttons */
        case EV_ABS:
                if (ev->code == ABS_MT_TRACKING_ID) {
                        if (ev->value >= 0 && (dev->caps & CAP_TOUCH))
                                count(in, BBT_INPUT_TOUCH);
                        return;
                }
                /* Absolute pointers (KVM and VM tablets): motion as for a mouse.
                 * Touch screens, pens and touchpads count contacts instead. */
                if ((dev->caps & CAP_MOUSE) && !(dev->caps & (CAP_TOUCH | CAP_PEN | CAP_TOUCHPAD)))
                        pointer_motion(dev, ev);
                return;
        case EV_REL:
                if ((dev->caps & (CAP_MOUSE | CAP_TOUCHPAD)) || ev->code == REL_WHEEL ||
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
        free(dev);
}

static void dev_closed_cb(uv_handle_t *h)
{
        struct input_dev *dev = container_of(h, struct input_dev, poll);
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
        struct input_dev *dev = container_of(h, struct input_dev, poll);
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
        const char *node, *syspath = udev_device_get_syspath(u);
        struct input_dev *dev;
        unsigned caps;
        char *path;
        int r;

        if (!syspath || !is_watched_node(u, &node, &caps) || dev_find(in, syspath))
                return 0;
        dev = calloc(1, sizeof(*dev));
        if (!dev)
                return -ENOMEM;
        dev->in = in;
        dev->fd = -1;
        dev->caps = caps;
        dev->syspath = strdup(syspath);
        dev->node = strdup(node);
        path = path_join(in->root, node);
        if (!dev->syspath || !dev->node || !path) {
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
        struct bbt_input *in = container_of(h, struct bbt_input, monitor_poll);
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
        deliver(container_of(t, struct bbt_input, batch_timer));
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
        struct bbt_input *in = container_of(d, struct bbt_input, base);
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
        struct bbt_input *in = container_of(d, struct bbt_input, base);

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

static int input_probe(struct bbt_driver *d, FILE *out)
{
        struct bbt_input *in = container_of(d, struct bbt_input, base);
        struct udev *udev = udev_new();
        struct udev_enumerate *e;
        struct udev_list_entry *entry;
        int r = 0, n = 0;

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
                const char *node, *name = NULL;
                unsigned caps;
                char *path;
                int fd;

                if (!u)
                        continue;
                if (!is_watched_node(u, &node, &caps)) {
                        udev_device_unref(u);
                        continue;
                }
                parent = udev_device_get_parent(u);
                if (parent)
                        name = udev_device_get_sysattr_value(parent, "name");
                path = path_join(in->root, node);
                fd = path ? open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
                if (fd >= 0) {
                        fprintf(out, "input: %s %s \"%s\": readable\n", node, caps_name(caps), name ? name : "");
                        close(fd);
                } else {
                        int err = path ? errno : ENOMEM;

                        fprintf(out, "input: %s %s \"%s\": not readable: %s%s\n", node, caps_name(caps),
                                name ? name : "", strerror(err),
                                err == EACCES || err == EPERM ? " (the agent's user needs the input group)" : "");
                }
                free(path);
                n++;
                udev_device_unref(u);
        }
        if (n == 0)
                fprintf(out, "input: no touch, pen, mouse or keyboard devices\n");
out:
        udev_enumerate_unref(e);
        udev_unref(udev);
        return r;
}

static void input_destroy(struct bbt_driver *d)
{
        struct bbt_input *in;

        if (!d)
                return;
        in = container_of(d, struct bbt_input, base);
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
        in = container_of(d, const struct bbt_input, base);
        return in->n_watched;
}
