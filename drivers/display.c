/* Display on/off from DRM connectors and backlights, re-read on drm/backlight uevents and by a slow safety poll. */
#include "display.h"
#include "bbt/base.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libudev.h>


/* More than any real machine has; extra entries are ignored. */
#define MAX_CONNECTORS 64
#define MAX_BACKLIGHTS 16
#define VALUE_SIZE 32
#define SOURCE_SIZE (16 + NAME_MAX)

struct connector {
        char name[NAME_MAX + 1];
        /* Trimmed file contents, "" when unreadable. */
        char status[VALUE_SIZE], enabled[VALUE_SIZE], dpms[VALUE_SIZE];
        bool on;                            /* as DRM says, before any backlight */
        const struct backlight *dimmed_by;  /* its own backlight, when that says off */
};

struct backlight {
        char name[NAME_MAX + 1];
        char device[NAME_MAX + 1];          /* last part of its device link, "" if none */
        long bl_power, brightness;          /* -1 when unreadable or malformed */
        bool off;
        int connector;                      /* index of the connector it lights, -1: all */
};

/* One reading of the tree. Only entries that gave some information count. */
struct snapshot {
        struct connector connectors[MAX_CONNECTORS];
        size_t n_connectors;
        struct backlight backlights[MAX_BACKLIGHTS];
        size_t n_backlights;
};

struct display {
        struct bbt_driver base;
        char *root;
        uint64_t safety_poll_ms;
        uv_timer_t timer;
        uv_poll_t monitor_poll;
        struct udev *udev;
        struct udev_monitor *monitor;
        int monitor_error;
        unsigned open_handles;  /* handles not yet through their close callback */
        bool timer_open, poll_open, started, stopping;
        enum bbt_display_state reported;
        struct snapshot snap;   /* scratch for each reading; no allocation on the loop */
        void (*done)(void *userdata);
        void *done_userdata;
};

/* Reads DIRFD/NAME/ATTR into BUF, trimmed of trailing whitespace; "" and -errno on failure. */
static int read_attr(int dirfd, const char *name, const char *attr, char *buf, size_t size)
{
        char rel[NAME_MAX + 32];
        ssize_t n;
        int fd;

        buf[0] = '\0';
        if (snprintf(rel, sizeof(rel), "%s/%s", name, attr) >= (int)sizeof(rel))
                return -ENAMETOOLONG;
        /* O_NONBLOCK: a FIFO in a broken tree must not hang the loop. */
        fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        do
                n = read(fd, buf, size - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                n = -errno;
                close(fd);
                buf[0] = '\0';
                return (int)n;
        }
        close(fd);
        buf[n] = '\0';
        /* A NUL inside ends the value, like any other garbage it just won't match. */
        n = (ssize_t)strlen(buf);
        while (n > 0 && isspace((unsigned char)buf[n - 1]))
                buf[--n] = '\0';
        return 0;
}

/* A non-negative decimal integer, or -1. */
static long parse_count(const char *s)
{
        char *end;
        long v;

        if (!isdigit((unsigned char)s[0]))
                return -1;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end != '\0')
                return -1;
        return v;
}

/* "card<N>-<connector>", but not writeback connectors (no screen behind them). */
static bool is_connector_name(const char *s)
{
        size_t digits;

        if (strncmp(s, "card", 4) != 0)
                return false;
        digits = strspn(s + 4, "0123456789");
        if (digits == 0 || s[4 + digits] != '-' || s[5 + digits] == '\0')
                return false;
        return strstr(s, "-Writeback-") == NULL;
}

static int compare_connectors(const void *a, const void *b)
{
        return strcmp(((const struct connector *)a)->name, ((const struct connector *)b)->name);
}

static int compare_backlights(const void *a, const void *b)
{
        return strcmp(((const struct backlight *)a)->name, ((const struct backlight *)b)->name);
}

/* Opens ROOT/REL as a directory stream; NULL with errno set. */
static DIR *open_dir(const char *root, const char *rel)
{
        char path[PATH_MAX];

        if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path)) {
                errno = ENAMETOOLONG;
                return NULL;
        }
        return opendir(path);
}

static int scan_connectors(const char *root, struct snapshot *s)
{
        struct dirent *de;
        DIR *dir;

        s->n_connectors = 0;
        dir = open_dir(root, "sys/class/drm");
        if (!dir)
                return errno == ENOMEM || errno == ENAMETOOLONG ? -errno : 0;
        while ((de = readdir(dir)) && s->n_connectors < MAX_CONNECTORS) {
                struct connector *c = &s->connectors[s->n_connectors];
                bool connected;

                if (!is_connector_name(de->d_name))
                        continue;
                memset(c, 0, sizeof(*c));
                snprintf(c->name, sizeof(c->name), "%s", de->d_name);
                if (read_attr(dirfd(dir), c->name, "status", c->status, sizeof(c->status)) < 0)
                        continue; /* not a connector we can read: no information */
                read_attr(dirfd(dir), c->name, "enabled", c->enabled, sizeof(c->enabled));
                read_attr(dirfd(dir), c->name, "dpms", c->dpms, sizeof(c->dpms));
                /* "unknown": the driver cannot detect (VGA without load detection) yet may drive it. */
                connected = strcmp(c->status, "connected") == 0 || strcmp(c->status, "unknown") == 0;
                c->on = connected && strcmp(c->enabled, "enabled") == 0 && strcmp(c->dpms, "On") == 0;
                s->n_connectors++;
        }
        closedir(dir);
        qsort(s->connectors, s->n_connectors, sizeof(s->connectors[0]), compare_connectors);
        return 0;
}

static int scan_backlights(const char *root, struct snapshot *s)
{
        char value[VALUE_SIZE], link[PATH_MAX], rel[NAME_MAX + 16];
        struct dirent *de;
        DIR *dir;

        s->n_backlights = 0;
        dir = open_dir(root, "sys/class/backlight");
        if (!dir)
                return errno == ENOMEM || errno == ENAMETOOLONG ? -errno : 0;
        while ((de = readdir(dir)) && s->n_backlights < MAX_BACKLIGHTS) {
                struct backlight *b = &s->backlights[s->n_backlights];
                const char *last;
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                memset(b, 0, sizeof(*b));
                b->connector = -1;
                snprintf(b->name, sizeof(b->name), "%s", de->d_name);
                b->bl_power = read_attr(dirfd(dir), b->name, "bl_power", value, sizeof(value)) == 0 ?
                                      parse_count(value) : -1;
                b->brightness = read_attr(dirfd(dir), b->name, "brightness", value, sizeof(value)) == 0 ?
                                        parse_count(value) : -1;
                if (b->bl_power < 0 && b->brightness < 0)
                        continue;
                /* FB_BLANK_UNBLANK is 0; every other bl_power value blanks the panel. */
                b->off = b->bl_power > 0 || b->brightness == 0;
                snprintf(rel, sizeof(rel), "%s/device", b->name);
                n = readlinkat(dirfd(dir), rel, link, sizeof(link) - 1);
                if (n > 0) {
                        link[n] = '\0';
                        last = strrchr(link, '/');
                        last = last ? last + 1 : link;
                        if (strlen(last) < sizeof(b->device))
                                memcpy(b->device, last, strlen(last) + 1);
                }
                s->n_backlights++;
        }
        closedir(dir);
        qsort(s->backlights, s->n_backlights, sizeof(s->backlights[0]), compare_backlights);
        return 0;
}

/* Reads both classes into S and ties each backlight to the connector its device link names. */
static int scan(const char *root, struct snapshot *s)
{
        int r;

        r = scan_connectors(root, s);
        if (r < 0)
                return r;
        r = scan_backlights(root, s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_backlights; i++) {
                struct backlight *b = &s->backlights[i];

                for (size_t j = 0; b->device[0] && j < s->n_connectors; j++)
                        if (strcmp(b->device, s->connectors[j].name) == 0) {
                                b->connector = (int)j;
                                if (b->off && !s->connectors[j].dimmed_by)
                                        s->connectors[j].dimmed_by = b;
                                break;
                        }
        }
        return 0;
}

/* The on/off rule (see bbt_display_read). */
static enum bbt_display_state decide(const struct snapshot *s, char *source, size_t size)
{
        const struct connector *lit = NULL, *dimmed = NULL, *connected = NULL;
        const struct backlight *global_off = NULL;
        size_t i;

        for (i = 0; i < s->n_backlights; i++)
                if (s->backlights[i].off && s->backlights[i].connector < 0) {
                        global_off = &s->backlights[i];
                        break;
                }
        for (i = 0; i < s->n_connectors; i++) {
                const struct connector *c = &s->connectors[i];

                if (c->on && !c->dimmed_by && !lit)
                        lit = c;
                if (c->on && c->dimmed_by && !dimmed)
                        dimmed = c;
                if (!connected && (strcmp(c->status, "connected") == 0 || strcmp(c->status, "unknown") == 0))
                        connected = c;
        }

        if (global_off) {
                snprintf(source, size, "backlight %s", global_off->name);
                return BBT_DISPLAY_OFF;
        }
        if (s->n_connectors > 0) {
                if (lit) {
                        snprintf(source, size, "drm %s", lit->name);
                        return BBT_DISPLAY_ON;
                }
                if (dimmed)
                        snprintf(source, size, "backlight %s", dimmed->dimmed_by->name);
                else
                        snprintf(source, size, "drm %s", (connected ? connected : &s->connectors[0])->name);
                return BBT_DISPLAY_OFF;
        }
        if (s->n_backlights > 0) {
                /* No connector information (some smart panels): the backlight alone decides. */
                snprintf(source, size, "backlight %s", s->backlights[0].name);
                return BBT_DISPLAY_ON;
        }
        if (size)
                source[0] = '\0';
        return BBT_DISPLAY_UNKNOWN;
}

int bbt_display_read(const char *root, enum bbt_display_state *ret_state, char *source, size_t source_size)
{
        char buf[SOURCE_SIZE];
        struct snapshot *s;
        enum bbt_display_state state;
        int r;

        if (!root || !ret_state)
                return -EINVAL;
        s = malloc(sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = scan(root, s);
        if (r < 0)
                goto out;
        state = decide(s, buf, sizeof(buf));
        if (source && source_size)
                snprintf(source, source_size, "%s", buf);
        *ret_state = state;
out:
        free(s);
        return r;
}

static const char *state_name(enum bbt_display_state state)
{
        return state == BBT_DISPLAY_ON ? "on" : state == BBT_DISPLAY_OFF ? "off" : "unknown";
}

/* Reads the tree and reports a known state that differs from the last one reported. */
static void refresh(struct display *d)
{
        const struct bbt_driver_events *ev = d->base.env.events;
        enum bbt_display_state state;
        char source[SOURCE_SIZE];

        if (d->stopping || scan(d->root, &d->snap) < 0)
                return;
        state = decide(&d->snap, source, sizeof(source));
        if (state == BBT_DISPLAY_UNKNOWN || state == d->reported)
                return;
        d->reported = state;
        if (ev && ev->display)
                ev->display(ev->userdata, state == BBT_DISPLAY_ON, source);
}

static void timer_cb(uv_timer_t *t)
{
        struct display *d = bbt_container_of(t, struct display, timer);

        refresh(d);
        /* The poll is for changes of existing connectors and backlights that
         * no uevent announces (DPMS). With none to watch, a new one is
         * announced ("add" on drm or backlight) and monitor_cb starts the
         * poll again: until then the driver sleeps. Without a working
         * monitor it keeps polling. */
        if (d->poll_open && d->monitor_error == 0 && d->snap.n_connectors == 0 && d->snap.n_backlights == 0)
                uv_timer_stop(t);
}

static void monitor_cb(uv_poll_t *p, int status, int events)
{
        struct display *d = bbt_container_of(p, struct display, monitor_poll);
        struct udev_device *dev;
        uint64_t settle;
        int i;

        if (status < 0) {
                /* The socket broke: keep going on the safety poll alone. */
                d->monitor_error = status;
                uv_poll_stop(p);
                return;
        }
        /* Only "something changed" matters; bounded so a uevent storm cannot starve the loop. */
        for (i = 0; i < 64 && (dev = udev_monitor_receive_device(d->monitor)); i++)
                udev_device_unref(dev);
        refresh(d);
        settle = d->safety_poll_ms < BBT_DISPLAY_SETTLE_MS ? d->safety_poll_ms : BBT_DISPLAY_SETTLE_MS;
        uv_timer_start(&d->timer, timer_cb, settle, d->safety_poll_ms);
}

static void close_cb(uv_handle_t *h)
{
        struct display *d = h->type == UV_TIMER ? bbt_container_of((uv_timer_t *)h, struct display, timer)
                                                : bbt_container_of((uv_poll_t *)h, struct display, monitor_poll);

        if (--d->open_handles == 0 && d->done)
                d->done(d->done_userdata);
}

/* The kernel's uevents (not udevd's): only "re-read" matters, and they
 * arrive even where no udevd runs. Failure leaves d->monitor_error set. */
static void monitor_open(struct display *d)
{
        struct udev_monitor *m;
        int r, fd;

        d->udev = udev_new();
        if (!d->udev) {
                r = errno ? -errno : -ENOMEM;
                goto fail;
        }
        errno = 0;
        m = udev_monitor_new_from_netlink(d->udev, "kernel");
        if (!m) {
                r = errno ? -errno : -EPROTONOSUPPORT;
                goto fail;
        }
        d->monitor = m; /* freed by destroy, after the poll handle is closed */
        r = udev_monitor_filter_add_match_subsystem_devtype(m, "drm", NULL);
        if (r >= 0)
                r = udev_monitor_filter_add_match_subsystem_devtype(m, "backlight", NULL);
        if (r >= 0)
                r = udev_monitor_enable_receiving(m);
        if (r < 0)
                goto fail;
        fd = udev_monitor_get_fd(m);
        if (fd < 0) {
                r = fd;
                goto fail;
        }
        r = uv_poll_init(d->base.env.loop, &d->monitor_poll, fd);
        if (r < 0)
                goto fail;
        d->poll_open = true;
        d->open_handles++;
        r = uv_poll_start(&d->monitor_poll, UV_READABLE, monitor_cb);
        if (r < 0)
                goto fail_poll;
        d->monitor_error = 0;
        return;

fail_poll:
        d->poll_open = false;
        uv_close((uv_handle_t *)&d->monitor_poll, close_cb);
fail:
        d->monitor_error = r < 0 ? r : -EIO;
}

static int display_start(struct bbt_driver *base)
{
        struct display *d = bbt_container_of(base, struct display, base);
        int r;

        if (d->started || d->stopping)
                return -EALREADY;
        if (!base->env.loop)
                return -EINVAL;
        r = uv_timer_init(base->env.loop, &d->timer);
        if (r < 0)
                return r;
        d->timer_open = true;
        d->open_handles++;
        d->started = true;
        monitor_open(d);
        /* The first reading on the next loop turn, not inside start(). */
        r = uv_timer_start(&d->timer, timer_cb, 0, d->safety_poll_ms);
        return r < 0 ? r : 0;
}

static void display_stop(struct bbt_driver *base, void (*done)(void *userdata), void *userdata)
{
        struct display *d = bbt_container_of(base, struct display, base);

        if (d->stopping)
                return;
        d->stopping = true;
        d->done = done;
        d->done_userdata = userdata;
        if (!d->timer_open) {
                if (!base->env.loop) {
                        if (done)
                                done(userdata);
                        return;
                }
                /* Never started: a handle only so DONE still comes from the loop. */
                uv_timer_init(base->env.loop, &d->timer);
                d->timer_open = true;
                d->open_handles++;
        }
        if (d->poll_open) {
                d->poll_open = false;
                uv_close((uv_handle_t *)&d->monitor_poll, close_cb);
        }
        d->timer_open = false;
        uv_close((uv_handle_t *)&d->timer, close_cb);
}

/* Prints a file value; control characters from a malformed file become '?'. */
static void print_value(FILE *out, const char *key, const char *value)
{
        fprintf(out, " %s=", key);
        if (!value[0]) {
                fputs("-", out);
                return;
        }
        for (const char *p = value; *p; p++)
                fputc(isprint((unsigned char)*p) ? *p : '?', out);
}

static int display_probe(struct bbt_driver *base, FILE *out)
{
        struct display *d = bbt_container_of(base, struct display, base);
        const char *shown = strcmp(d->root, "/") == 0 ? "" : d->root;
        enum bbt_display_state state;
        char source[SOURCE_SIZE];
        struct snapshot *s;
        size_t i;
        int r;

        s = malloc(sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = scan(d->root, s);
        if (r < 0)
                goto out;
        state = decide(s, source, sizeof(source));
        if (state == BBT_DISPLAY_UNKNOWN)
                fprintf(out, "display: unknown: no DRM connector in %s/sys/class/drm and no backlight in "
                             "%s/sys/class/backlight; nothing will be reported\n", shown, shown);
        else
                fprintf(out, "display: %s (%s)\n", state_name(state), source);
        for (i = 0; i < s->n_connectors; i++) {
                const struct connector *c = &s->connectors[i];

                fprintf(out, "  drm %s:", c->name);
                print_value(out, "status", c->status);
                print_value(out, "enabled", c->enabled);
                print_value(out, "dpms", c->dpms);
                if (c->on && c->dimmed_by)
                        fprintf(out, " -> off (its backlight %s is off)\n", c->dimmed_by->name);
                else
                        fprintf(out, " -> %s\n", c->on ? "on" : "off");
        }
        for (i = 0; i < s->n_backlights; i++) {
                const struct backlight *b = &s->backlights[i];

                fprintf(out, "  backlight %s", b->name);
                if (b->connector >= 0)
                        fprintf(out, " (of %s)", s->connectors[b->connector].name);
                fputc(':', out);
                if (b->bl_power >= 0)
                        fprintf(out, " bl_power=%ld", b->bl_power);
                else
                        fputs(" bl_power=-", out);
                if (b->brightness >= 0)
                        fprintf(out, " brightness=%ld", b->brightness);
                else
                        fputs(" brightness=-", out);
                fprintf(out, " -> %s\n", b->off ? "off" : "on");
        }
        fprintf(out, "  re-read on drm/backlight uevents and every %" PRIu64 " ms\n", d->safety_poll_ms);
        fputs("  projector power: reported by the projector driver when PJLink is configured\n", out);
        r = ferror(out) ? -EIO : 0;
out:
        free(s);
        return r;
}

static void display_destroy(struct bbt_driver *base)
{
        struct display *d;

        if (!base)
                return;
        d = bbt_container_of(base, struct display, base);
        udev_monitor_unref(d->monitor);
        udev_unref(d->udev);
        bbt_driver_release(&d->base);
        free(d);
}

static const struct bbt_driver_ops display_ops = {
        .name = "display",
        .start = display_start,
        .stop = display_stop,
        .probe = display_probe,
        .destroy = display_destroy,
};

int bbt_display_new(const struct bbt_driver_env *env, const struct bbt_display_options *opts,
                    struct bbt_driver **ret)
{
        struct display *d;

        if (!env || !env->root || !ret)
                return -EINVAL;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        if (bbt_driver_init(&d->base, &display_ops, env) < 0) {
                free(d);
                return -ENOMEM;
        }
        d->root = (char *)d->base.env.root;
        d->safety_poll_ms = opts && opts->safety_poll_ms ? opts->safety_poll_ms : BBT_DISPLAY_SAFETY_POLL_MS;
        d->monitor_error = -ENOTCONN;
        d->reported = BBT_DISPLAY_UNKNOWN;
        *ret = &d->base;
        return 0;

}

int bbt_display_monitor_error(const struct bbt_driver *d)
{
        if (!d || d->ops != &display_ops)
                return -EINVAL;
        return bbt_container_of(d, const struct display, base)->monitor_error;
}
