/* Peripheral driver: libudev enumerate then monitor, one logical device per physical peripheral, debounced diffs, periph_missing. */
#include "periph.h"
#include "bbt/base.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libudev.h>

#ifndef container_of
#endif

#define TEXT_MAX 128    /* vendor, model, serial: characters (protocol text(128)) */
#define SYSPATH_MAX 256 /* protocol text(256) */

/* The subsystems we watch; usb only for whole devices (the "other" kind). */
static const struct {
        const char *subsystem, *devtype;
} watched[] = {
        {"video4linux", NULL}, {"sound", NULL}, {"input", NULL}, {"block", NULL},
        {"drm", NULL},         {"net", NULL},   {"usb", "usb_device"},
};

/* One classified device. Every string is owned (malloc) by the entry. */
struct entry {
        struct bbt_dev dev;
        char *phys; /* the physical peripheral: its USB device's syspath, else dev.syspath */
        char *key;  /* kind|phys|vendor_id:model_id:serial: what makes it the same peripheral */
};

struct entry_list {
        struct entry *v;
        size_t n, cap;
};

struct periph_drv {
        struct bbt_driver base;
        char *root;
        uint32_t expect;
        unsigned debounce_ms;

        struct udev *udev;
        struct udev_monitor *monitor;
        uv_poll_t monitor_poll;
        uv_timer_t timer;
        bool started, stopping;
        unsigned n_closing;
        void (*done)(void *userdata);
        void *done_userdata;

        bool initial;         /* the first inventory has not gone out yet */
        bool settled;         /* start-up is over: periph_missing may be raised */
        uint64_t dirty_since; /* uv_now() of the first unreported change, 0 for none */

        struct entry_list raw; /* every classified device, several per peripheral */
        struct entry_list pub; /* the logical inventory as last delivered */
        struct bbt_dev *view;  /* pub's devs side by side, for the callbacks */
        uint32_t missing;      /* expected kinds in the periph_missing alert as last delivered */
};

/* ---- text ---- */

static char *xstrdup(const char *s)
{
        return s ? strdup(s) : NULL;
}

/* A copy of S fit for a protocol text field: invalid UTF-8 bytes become '?',
 * control characters and runs of blanks one space, at most MAX_CHARS
 * characters, trimmed. NULL when S is NULL or nothing is left (or on ENOMEM). */
static char *text_dup(const char *s, size_t max_chars)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t len, chars = 0, o = 0;
        char *out;

        if (!s)
                return NULL;
        len = strlen(s);
        out = malloc(len + 1);
        if (!out)
                return NULL;
        while (*p && chars < max_chars) {
                size_t n = bbt_utf8_decode((const char *)p, 4, NULL); /* stops at a NUL */

                if (n == 1 && (*p <= ' ' || *p == 0x7f)) {
                        if (o > 0 && out[o - 1] != ' ') { /* runs of blanks: one space; leading: none */
                                out[o++] = ' ';
                                chars++;
                        }
                        p++;
                } else if (n == 0) {
                        out[o++] = '?';
                        chars++;
                        p++;
                } else {
                        memcpy(out + o, p, n);
                        o += n;
                        p += n;
                        chars++;
                }
        }
        while (o > 0 && out[o - 1] == ' ')
                o--;
        out[o] = '\0';
        if (o == 0) {
                free(out);
                return NULL;
        }
        return out;
}

/* Decodes udev's \xHH escapes (ID_VENDOR_ENC, ID_MODEL_ENC) into a new string. */
static char *enc_decode(const char *s)
{
        size_t o = 0;
        char *out;

        if (!s)
                return NULL;
        out = malloc(strlen(s) + 1);
        if (!out)
                return NULL;
        while (*s) {
                if (s[0] == '\\' && s[1] == 'x' && isxdigit((unsigned char)s[2]) && isxdigit((unsigned char)s[3])) {
                        char hex[3] = {s[2], s[3], '\0'};
                        unsigned long b = strtoul(hex, NULL, 16);

                        out[o++] = b ? (char)b : ' ';
                        s += 4;
                } else {
                        out[o++] = *s++;
                }
        }
        out[o] = '\0';
        return out;
}

/* A bus ID as 4 lower-case hex digits ("046D", "0x8086" -> "046d", "8086")
 * into OUT, or false. */
static bool hex4(const char *s, char out[5])
{
        size_t i;

        if (!s)
                return false;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                s += 2;
        for (i = 0; i < 4; i++) {
                if (!isxdigit((unsigned char)s[i]))
                        return false;
                out[i] = (char)tolower((unsigned char)s[i]);
        }
        if (s[4] != '\0' && !isspace((unsigned char)s[4]))
                return false;
        out[4] = '\0';
        return true;
}

static bool is_token(const char *s, size_t max)
{
        size_t n;

        if (!s)
                return false;
        for (n = 0; s[n]; n++)
                if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_' || s[n] == '-'))
                        return false;
        return n >= 1 && n <= max;
}

static bool has_prefix(const char *s, const char *prefix)
{
        return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- classification ---- */

uint32_t bbt_periph_classify(const struct bbt_periph_facts *f)
{
        const char *ss = f->subsystem, *name = f->sysname ? f->sysname : "";

        if (!ss || f->is_virtual)
                return 0;
        if (strcmp(ss, "video4linux") == 0) {
                /* Metadata and output nodes of the same camera lack ":capture:". */
                if (has_prefix(name, "video") && f->v4l_capabilities && strstr(f->v4l_capabilities, ":capture:"))
                        return 1u << BBT_KIND_CAMERA;
                return 0;
        }
        if (strcmp(ss, "sound") == 0) {
                uint32_t k = 0;

                if (!has_prefix(name, "card"))
                        return 0; /* pcm, control and timer nodes belong to their card */
                if (f->sound_capture)
                        k |= 1u << BBT_KIND_AUDIO_IN;
                if (f->sound_playback)
                        k |= 1u << BBT_KIND_AUDIO_OUT;
                return k;
        }
        if (strcmp(ss, "input") == 0) {
                if (!has_prefix(name, "input"))
                        return 0; /* event and mouse nodes belong to their input device */
                switch (f->input.role) {
                case BBT_EVDEV_TOUCH:
                        return 1u << BBT_KIND_TOUCH;
                case BBT_EVDEV_PEN:
                        return 1u << BBT_KIND_PEN;
                case BBT_EVDEV_TOUCHPAD:
                case BBT_EVDEV_MOUSE:
                        return 1u << BBT_KIND_MOUSE | (f->input.keyboard ? 1u << BBT_KIND_KEYBOARD : 0);
                case BBT_EVDEV_KEYBOARD:
                        return 1u << BBT_KIND_KEYBOARD;
                default:
                        return 0; /* power buttons, media and hot keys, switches, sensors */
                }
        }
        if (strcmp(ss, "block") == 0) {
                if (!f->devtype || strcmp(f->devtype, "disk") != 0)
                        return 0; /* partitions belong to their disk */
                if (f->on_usb || (f->id_bus && strcmp(f->id_bus, "usb") == 0) ||
                    (f->removable && strcmp(f->removable, "1") == 0))
                        return 1u << BBT_KIND_STORAGE;
                return 0; /* the terminal's own disks */
        }
        if (strcmp(ss, "drm") == 0) {
                bool connector = (f->devtype && strcmp(f->devtype, "drm_connector") == 0) ||
                                 (has_prefix(name, "card") && strchr(name, '-'));

                if (connector && f->drm_status && strcmp(f->drm_status, "connected") == 0)
                        return 1u << BBT_KIND_DISPLAY;
                return 0;
        }
        if (strcmp(ss, "net") == 0)
                return 1u << BBT_KIND_NETWORK; /* virtual interfaces are already out */
        if (strcmp(ss, "usb") == 0) {
                if (f->devtype && strcmp(f->devtype, "usb_device") == 0 && f->usb_class != 9)
                        return 1u << BBT_KIND_OTHER; /* dropped when a kind above covers it */
                return 0;
        }
        return 0;
}

/* ---- entries ---- */

static void entry_clear(struct entry *e)
{
        free((char *)e->dev.subsystem);
        free((char *)e->dev.syspath);
        free((char *)e->dev.bus);
        free((char *)e->dev.vendor_id);
        free((char *)e->dev.model_id);
        free((char *)e->dev.vendor);
        free((char *)e->dev.model);
        free((char *)e->dev.serial);
        free(e->phys);
        free(e->key);
        memset(e, 0, sizeof(*e));
}

static void list_clear(struct entry_list *l)
{
        size_t i;

        for (i = 0; i < l->n; i++)
                entry_clear(&l->v[i]);
        free(l->v);
        memset(l, 0, sizeof(*l));
}

/* Appends a zeroed entry; NULL on ENOMEM. */
static struct entry *list_push(struct entry_list *l)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                struct entry *v = realloc(l->v, cap * sizeof(*v));

                if (!v)
                        return NULL;
                l->v = v;
                l->cap = cap;
        }
        memset(&l->v[l->n], 0, sizeof(l->v[0]));
        return &l->v[l->n++];
}

static void list_remove_at(struct entry_list *l, size_t i)
{
        entry_clear(&l->v[i]);
        memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(l->v[0]));
        l->n--;
}

/* Removes entries of SYSPATH and, when TREE, of the devices below it. */
static bool list_remove_syspath(struct entry_list *l, const char *syspath, bool tree)
{
        size_t i = 0, len = strlen(syspath);
        bool any = false;

        while (i < l->n) {
                const char *s = l->v[i].dev.syspath;

                if (strcmp(s, syspath) == 0 || (tree && strncmp(s, syspath, len) == 0 && s[len] == '/')) {
                        list_remove_at(l, i);
                        any = true;
                } else {
                        i++;
                }
        }
        return any;
}

static int entry_copy(struct entry *dst, const struct entry *src)
{
        memset(dst, 0, sizeof(*dst));
        dst->dev.kind = src->dev.kind;
        dst->dev.subsystem = xstrdup(src->dev.subsystem);
        dst->dev.syspath = xstrdup(src->dev.syspath);
        dst->dev.bus = xstrdup(src->dev.bus);
        dst->dev.vendor_id = xstrdup(src->dev.vendor_id);
        dst->dev.model_id = xstrdup(src->dev.model_id);
        dst->dev.vendor = xstrdup(src->dev.vendor);
        dst->dev.model = xstrdup(src->dev.model);
        dst->dev.serial = xstrdup(src->dev.serial);
        dst->phys = xstrdup(src->phys);
        dst->key = xstrdup(src->key);
        if (!dst->dev.subsystem || !dst->dev.syspath || !dst->phys || !dst->key ||
            (src->dev.bus && !dst->dev.bus) || (src->dev.vendor_id && !dst->dev.vendor_id) ||
            (src->dev.model_id && !dst->dev.model_id) || (src->dev.vendor && !dst->dev.vendor) ||
            (src->dev.model && !dst->dev.model) || (src->dev.serial && !dst->dev.serial)) {
                entry_clear(dst);
                return -ENOMEM;
        }
        return 0;
}

static bool str_eq(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool dev_eq(const struct bbt_dev *a, const struct bbt_dev *b)
{
        return a->kind == b->kind && str_eq(a->subsystem, b->subsystem) && str_eq(a->syspath, b->syspath) &&
               str_eq(a->bus, b->bus) && str_eq(a->vendor_id, b->vendor_id) &&
               str_eq(a->model_id, b->model_id) && str_eq(a->vendor, b->vendor) &&
               str_eq(a->model, b->model) && str_eq(a->serial, b->serial);
}

/* ---- from udev to entries ---- */

/* NAME from U, else from its USB device, else from its PCI device. */
static const char *prop_chain(struct udev_device *u, struct udev_device *usb, struct udev_device *pci,
                              const char *name)
{
        const char *v = udev_device_get_property_value(u, name);

        if (!v && usb)
                v = udev_device_get_property_value(usb, name);
        if (!v && pci)
                v = udev_device_get_property_value(pci, name);
        return v && *v ? v : NULL;
}

/* The first usable name: database, then descriptor (decoded), then raw. */
static char *name_from(struct udev_device *u, struct udev_device *usb, struct udev_device *pci,
                       const char *db, const char *enc, const char *raw, const char *usb_attr)
{
        const char *v = prop_chain(u, usb, pci, db);
        char *decoded, *r;

        if (v)
                return text_dup(v, TEXT_MAX);
        decoded = enc_decode(prop_chain(u, usb, pci, enc));
        r = text_dup(decoded, TEXT_MAX);
        free(decoded);
        if (r)
                return r;
        if ((v = prop_chain(u, usb, pci, raw)))
                return text_dup(v, TEXT_MAX);
        if (usb && usb_attr)
                return text_dup(udev_device_get_sysattr_value(usb, usb_attr), TEXT_MAX);
        return NULL;
}

static char *id_from(struct udev_device *u, struct udev_device *usb, struct udev_device *pci,
                     const char *prop, const char *usb_attr, const char *pci_attr)
{
        char id[5];

        if (hex4(udev_device_get_property_value(u, prop), id) ||
            (usb && hex4(udev_device_get_sysattr_value(usb, usb_attr), id)) ||
            (pci && hex4(udev_device_get_sysattr_value(pci, pci_attr), id)))
                return strdup(id);
        return NULL;
}

/* ROOT + PATH as a new string, or NULL. */
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

/* Whether the sound card at SYSPATH (read under ROOT) has capture and
 * playback PCMs: its pcmC<card>D<dev>c / ...p child devices. */
static void sound_pcms(const char *root, const char *syspath, bool *capture, bool *playback)
{
        char *dir = path_join(root, syspath);
        struct dirent *de;
        DIR *d;

        *capture = *playback = false;
        d = dir ? opendir(dir) : NULL;
        free(dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);

                if (strncmp(de->d_name, "pcmC", 4) != 0 || n < 6)
                        continue;
                if (de->d_name[n - 1] == 'c')
                        *capture = true;
                else if (de->d_name[n - 1] == 'p')
                        *playback = true;
        }
        closedir(d);
}

/* The USB device U is or belongs to, or NULL (not referenced: it lives as
 * long as U). */
static struct udev_device *usb_device_of(struct udev_device *u)
{
        const char *ss = udev_device_get_subsystem(u), *dt = udev_device_get_devtype(u);

        if (ss && dt && strcmp(ss, "usb") == 0 && strcmp(dt, "usb_device") == 0)
                return u;
        return udev_device_get_parent_with_subsystem_devtype(u, "usb", "usb_device");
}

/* Classifies U and stores an entry in P->raw per kind it is, replacing the
 * entries it had. Returns whether anything changed, or -ENOMEM. */
static int evaluate(struct periph_drv *p, struct udev_device *u)
{
        const char *syspath = udev_device_get_syspath(u), *attr;
        struct udev_device *usb, *pci;
        struct bbt_periph_facts f = {0};
        char *vendor_id = NULL, *model_id = NULL, *vendor = NULL, *model = NULL, *serial = NULL;
        char *bus = NULL, *path = NULL, *phys = NULL;
        uint32_t kinds;
        bool changed;
        int k, r = 0;

        if (!syspath)
                return 0;
        changed = list_remove_syspath(&p->raw, syspath, false);
        usb = usb_device_of(u);
        pci = udev_device_get_parent_with_subsystem_devtype(u, "pci", NULL);
        f.subsystem = udev_device_get_subsystem(u);
        f.devtype = udev_device_get_devtype(u);
        f.sysname = udev_device_get_sysname(u);
        f.is_virtual = has_prefix(syspath, "/sys/devices/virtual/");
        f.on_usb = usb != NULL;
        f.v4l_capabilities = udev_device_get_property_value(u, "ID_V4L_CAPABILITIES");
        f.id_bus = udev_device_get_property_value(u, "ID_BUS");
        if (f.subsystem && strcmp(f.subsystem, "input") == 0 && has_prefix(f.sysname, "input")) {
                struct bbt_evdev_caps caps;

                bbt_evdev_caps_from_udev(u, &caps);
                bbt_evdev_classify(&caps, &f.input);
        }
        f.usb_class = -1;
        if (f.subsystem && strcmp(f.subsystem, "sound") == 0)
                sound_pcms(p->root, syspath, &f.sound_capture, &f.sound_playback);
        if (f.subsystem && strcmp(f.subsystem, "drm") == 0)
                f.drm_status = udev_device_get_sysattr_value(u, "status");
        if (f.subsystem && strcmp(f.subsystem, "block") == 0)
                f.removable = udev_device_get_sysattr_value(u, "removable");
        if (usb == u && (attr = udev_device_get_sysattr_value(u, "bDeviceClass")))
                f.usb_class = (int)strtol(attr, NULL, 16);
        kinds = bbt_periph_classify(&f);
        if (kinds == 0)
                return changed;

        path = text_dup(syspath, SYSPATH_MAX);
        phys = strdup(usb ? udev_device_get_syspath(usb) : syspath);
        vendor_id = id_from(u, usb, pci, "ID_VENDOR_ID", "idVendor", "vendor");
        model_id = id_from(u, usb, pci, "ID_MODEL_ID", "idProduct", "device");
        vendor = name_from(u, usb, pci, "ID_VENDOR_FROM_DATABASE", "ID_VENDOR_ENC", "ID_VENDOR", "manufacturer");
        model = name_from(u, usb, pci, "ID_MODEL_FROM_DATABASE", "ID_MODEL_ENC", "ID_MODEL", "product");
        if (!model && f.subsystem && strcmp(f.subsystem, "input") == 0)
                model = text_dup(udev_device_get_sysattr_value(u, "name"), TEXT_MAX);
        serial = text_dup(prop_chain(u, usb, NULL, "ID_SERIAL_SHORT"), TEXT_MAX);
        if (!serial && usb)
                serial = text_dup(udev_device_get_sysattr_value(usb, "serial"), TEXT_MAX);
        attr = udev_device_get_property_value(u, "ID_BUS");
        bus = is_token(attr, 16) ? strdup(attr) : usb ? strdup("usb") : pci ? strdup("pci") : NULL;
        if (!path || !phys) {
                r = -ENOMEM;
                goto out;
        }

        for (k = 0; k < BBT_KIND__COUNT; k++) {
                struct entry *e, tmp = {0};
                size_t key_len;

                if (!(kinds & (1u << k)))
                        continue;
                tmp.dev.kind = (enum bbt_periph_kind)k;
                tmp.dev.subsystem = f.subsystem;
                tmp.dev.syspath = path;
                tmp.dev.bus = bus;
                tmp.dev.vendor_id = vendor_id;
                tmp.dev.model_id = model_id;
                tmp.dev.vendor = vendor;
                tmp.dev.model = model;
                tmp.dev.serial = serial;
                tmp.phys = phys;
                key_len = strlen(phys) + (serial ? strlen(serial) : 0) + 32;
                tmp.key = malloc(key_len);
                e = tmp.key ? list_push(&p->raw) : NULL;
                if (!e) {
                        free(tmp.key);
                        r = -ENOMEM;
                        goto out;
                }
                snprintf(tmp.key, key_len, "%d|%s|%s:%s:%s", k, phys, vendor_id ? vendor_id : "",
                         model_id ? model_id : "", serial ? serial : "");
                r = entry_copy(e, &tmp);
                free(tmp.key);
                if (r < 0) {
                        p->raw.n--;
                        goto out;
                }
                changed = true;
        }
out:
        free(path);
        free(phys);
        free(vendor_id);
        free(model_id);
        free(vendor);
        free(model);
        free(serial);
        free(bus);
        return r < 0 ? r : changed;
}

/* Re-evaluates the connectors of the DRM card U (a hotplug "change" comes
 * on the card, not on the connector). */
static int evaluate_drm_card(struct periph_drv *p, struct udev_device *u)
{
        const char *syspath = udev_device_get_syspath(u), *sysname = udev_device_get_sysname(u);
        char *dir = path_join(p->root, syspath);
        struct dirent *de;
        size_t n = strlen(sysname);
        bool changed = false;
        DIR *d;
        int r;

        d = dir ? opendir(dir) : NULL;
        free(dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                struct udev_device *c;
                char *child;

                if (strncmp(de->d_name, sysname, n) != 0 || de->d_name[n] != '-')
                        continue;
                child = malloc(strlen(syspath) + strlen(de->d_name) + 2);
                if (!child)
                        continue;
                snprintf(child, strlen(syspath) + strlen(de->d_name) + 2, "%s/%s", syspath, de->d_name);
                c = udev_device_new_from_syspath(p->udev, child);
                free(child);
                if (!c)
                        continue;
                r = evaluate(p, c);
                if (r > 0)
                        changed = true;
                udev_device_unref(c);
        }
        closedir(d);
        return changed;
}

/* Applies one udev device (from the monitor with ACTION, or enumerated with
 * ACTION "add") to P->raw. Returns whether anything changed. */
static int apply(struct periph_drv *p, struct udev_device *u, const char *action)
{
        const char *ss = udev_device_get_subsystem(u), *sysname = udev_device_get_sysname(u);
        const char *syspath = udev_device_get_syspath(u);
        struct udev_device *parent;

        if (!ss || !sysname || !syspath)
                return 0;
        if (strcmp(action, "remove") == 0) {
                bool changed = list_remove_syspath(&p->raw, syspath, true);

                /* A PCM going away changes what its card can do. */
                if (strcmp(ss, "sound") == 0 && !has_prefix(sysname, "card")) {
                        parent = udev_device_get_parent(u);
                        if (parent && has_prefix(udev_device_get_sysname(parent), "card"))
                                return evaluate(p, parent) > 0 || changed;
                }
                return changed;
        }
        if (strcmp(action, "move") == 0) {
                const char *old = udev_device_get_property_value(u, "DEVPATH_OLD");

                if (old) {
                        char *old_syspath = path_join("/sys", old);

                        if (old_syspath)
                                list_remove_syspath(&p->raw, old_syspath, true);
                        free(old_syspath);
                }
        }
        if (strcmp(ss, "sound") == 0 && !has_prefix(sysname, "card")) {
                /* pcm/control nodes: their card is what we classify. */
                parent = udev_device_get_parent(u);
                if (parent && has_prefix(udev_device_get_sysname(parent), "card"))
                        return evaluate(p, parent);
                return 0;
        }
        if (strcmp(ss, "drm") == 0 && has_prefix(sysname, "card") && !strchr(sysname, '-'))
                return evaluate_drm_card(p, u);
        return evaluate(p, u);
}

/* ---- the logical inventory ---- */

static int entry_order(const void *a, const void *b)
{
        const struct entry *x = a, *y = b;

        if (x->dev.kind != y->dev.kind)
                return x->dev.kind < y->dev.kind ? -1 : 1;
        return strcmp(x->dev.syspath, y->dev.syspath);
}

static bool is_pointer_or_keys(enum bbt_periph_kind k)
{
        return k == BBT_KIND_MOUSE || k == BBT_KIND_KEYBOARD;
}

/* Whether raw entry I stands for its peripheral in the inventory. */
static bool is_representative(const struct entry_list *raw, size_t i)
{
        const struct entry *e = &raw->v[i];
        size_t j;

        for (j = 0; j < raw->n; j++) {
                const struct entry *o = &raw->v[j];

                if (j == i)
                        continue;
                /* A touch frame's or pen display's own mouse and keyboard
                 * interfaces are part of it, not peripherals of their own. */
                if (is_pointer_or_keys(e->dev.kind) &&
                    (o->dev.kind == BBT_KIND_TOUCH || o->dev.kind == BBT_KIND_PEN) && strcmp(o->phys, e->phys) == 0)
                        return false;
                /* A USB device is "other" only when nothing else describes it. */
                if (e->dev.kind == BBT_KIND_OTHER && o->dev.kind != BBT_KIND_OTHER && strcmp(o->phys, e->phys) == 0)
                        return false;
                /* Several nodes of one peripheral and kind: the first syspath speaks. */
                if (strcmp(o->key, e->key) == 0 && strcmp(o->dev.syspath, e->dev.syspath) < 0)
                        return false;
        }
        return true;
}

static int compute(const struct entry_list *raw, struct entry_list *out)
{
        size_t i;

        memset(out, 0, sizeof(*out));
        for (i = 0; i < raw->n; i++) {
                struct entry *e;

                if (!is_representative(raw, i))
                        continue;
                e = list_push(out);
                if (!e || entry_copy(e, &raw->v[i]) < 0) {
                        if (e)
                                out->n--;
                        list_clear(out);
                        return -ENOMEM;
                }
        }
        if (out->n > 1)
                qsort(out->v, out->n, sizeof(out->v[0]), entry_order);
        while (out->n > BBT_INVENTORY_MAX)
                list_remove_at(out, out->n - 1);
        return 0;
}

static const struct entry *find_key(const struct entry_list *l, const char *key)
{
        size_t i;

        for (i = 0; i < l->n; i++)
                if (strcmp(l->v[i].key, key) == 0)
                        return &l->v[i];
        return NULL;
}

static void check_missing(struct periph_drv *p)
{
        const struct bbt_driver_events *ev = p->base.env.events;
        uint32_t present = 0, missing;
        char detail[256];
        size_t i, o = 0;
        int k;

        for (i = 0; i < p->pub.n; i++)
                present |= 1u << p->pub.v[i].dev.kind;
        missing = p->expect & ~present;
        if (missing == p->missing)
                return;
        p->missing = missing;
        if (!ev->alert)
                return;
        if (missing == 0) {
                ev->alert(ev->userdata, "periph_missing", BBT_SEVERITY_WARNING, BBT_ALERT_CLEARED,
                          "expected peripherals present");
                return;
        }
        o = (size_t)snprintf(detail, sizeof(detail), "expected");
        for (k = 0; k < BBT_KIND__COUNT && o < sizeof(detail); k++)
                if (missing & (1u << k))
                        o += (size_t)snprintf(detail + o, sizeof(detail) - o, "%s %s", o > 8 ? "," : "",
                                              bbt_periph_kind_name((enum bbt_periph_kind)k));
        if (o < sizeof(detail))
                snprintf(detail + o, sizeof(detail) - o, " not present");
        ev->alert(ev->userdata, "periph_missing", BBT_SEVERITY_WARNING, BBT_ALERT_RAISED, detail);
}

/* Computes the inventory and tells the agent what changed since the last
 * delivery: removals, additions, then the whole list (INITIAL: only the list). */
static void deliver(struct periph_drv *p, bool initial)
{
        const struct bbt_driver_events *ev = p->base.env.events;
        struct entry_list next, prev;
        struct bbt_dev *view;
        bool changed = initial;
        size_t i;

        if (compute(&p->raw, &next) < 0)
                return; /* out of memory: the next change tries again */
        view = calloc(next.n ? next.n : 1, sizeof(*view));
        if (!view) {
                list_clear(&next);
                return;
        }
        for (i = 0; i < next.n; i++)
                view[i] = next.v[i].dev;
        prev = p->pub;
        if (!initial) {
                for (i = 0; i < prev.n; i++)
                        if (!find_key(&next, prev.v[i].key)) {
                                changed = true;
                                if (ev->periph)
                                        ev->periph(ev->userdata, BBT_PERIPH_REMOVE, &prev.v[i].dev);
                        }
                for (i = 0; i < next.n; i++) {
                        const struct entry *old = find_key(&prev, next.v[i].key);

                        if (!old) {
                                changed = true;
                                if (ev->periph)
                                        ev->periph(ev->userdata, BBT_PERIPH_ADD, &next.v[i].dev);
                        } else if (!dev_eq(&old->dev, &next.v[i].dev)) {
                                changed = true; /* same peripheral, new details: list only */
                        }
                }
                changed = changed || prev.n != next.n;
        }
        if (!changed) {
                /* Nothing the agent would see: keep the list it may hold. */
                list_clear(&next);
                free(view);
        } else {
                p->pub = next;
                free(p->view);
                p->view = view;
                list_clear(&prev);
                if (ev->inventory)
                        ev->inventory(ev->userdata, p->view, p->pub.n);
        }
        if (p->settled)
                check_missing(p);
}

static void timer_cb(uv_timer_t *t)
{
        struct periph_drv *p = bbt_container_of(t, struct periph_drv, timer);

        p->dirty_since = 0;
        if (p->initial) {
                /* The list at start-up goes out at once; whether the expected
                 * kinds are there is judged a debounce period later, when
                 * devices still being set up by udev have had time to appear. */
                p->initial = false;
                deliver(p, true);
                uv_timer_start(&p->timer, timer_cb, p->debounce_ms, 0);
                return;
        }
        p->settled = true;
        deliver(p, false);
}

/* A change happened: report it once things have been quiet for a debounce
 * period, or BBT_PERIPH_DEBOUNCE_MAX_PERIODS after the first change at the latest. */
static void changed(struct periph_drv *p)
{
        uint64_t now = uv_now(p->base.env.loop), due, last;

        if (p->initial || p->stopping)
                return; /* the initial delivery is already due and will include it */
        if (p->dirty_since == 0)
                p->dirty_since = now;
        due = now + p->debounce_ms;
        last = p->dirty_since + (uint64_t)p->debounce_ms * BBT_PERIPH_DEBOUNCE_MAX_PERIODS;
        if (due > last)
                due = last;
        uv_timer_start(&p->timer, timer_cb, due > now ? due - now : 0, 0);
}

static void monitor_cb(uv_poll_t *h, int status, int events)
{
        struct periph_drv *p = bbt_container_of(h, struct periph_drv, monitor_poll);
        struct udev_device *u;

        if (status < 0) {
                uv_poll_stop(h);
                return;
        }
        while ((u = udev_monitor_receive_device(p->monitor))) {
                const char *action = udev_device_get_action(u);

                if (action && apply(p, u, action) != 0)
                        changed(p);
                udev_device_unref(u);
        }
}

/* Reads every watched device into RAW (used by start and probe). */
static void enumerate_all(struct periph_drv *p, struct udev *udev)
{
        size_t i;

        for (i = 0; i < BBT_ELEMENTSOF(watched); i++) {
                struct udev_enumerate *e = udev_enumerate_new(udev);
                struct udev_list_entry *entry;

                if (!e)
                        return;
                if (udev_enumerate_add_match_subsystem(e, watched[i].subsystem) >= 0 &&
                    udev_enumerate_scan_devices(e) >= 0)
                        udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) {
                                struct udev_device *u =
                                        udev_device_new_from_syspath(udev, udev_list_entry_get_name(entry));
                                const char *dt;

                                if (!u)
                                        continue;
                                dt = udev_device_get_devtype(u);
                                if (!watched[i].devtype || (dt && strcmp(dt, watched[i].devtype) == 0))
                                        (void)apply(p, u, "add");
                                udev_device_unref(u);
                        }
                udev_enumerate_unref(e);
        }
}

/* ---- driver operations ---- */

static void maybe_done(struct periph_drv *p)
{
        if (p->stopping && p->n_closing == 0 && p->done) {
                void (*done)(void *) = p->done;

                p->done = NULL;
                done(p->done_userdata);
        }
}

static void handle_closed_cb(uv_handle_t *h)
{
        struct periph_drv *p = h->data;

        p->n_closing--;
        maybe_done(p);
}

static int periph_start(struct bbt_driver *d)
{
        struct periph_drv *p = bbt_container_of(d, struct periph_drv, base);
        size_t i;
        int r;

        if (p->started)
                return -EALREADY;
        p->udev = udev_new();
        if (!p->udev)
                return -ENOMEM;
        p->monitor = udev_monitor_new_from_netlink(p->udev, "udev");
        if (!p->monitor) {
                r = errno > 0 ? -errno : -ENOMEM;
                goto fail_monitor;
        }
        for (i = 0; i < BBT_ELEMENTSOF(watched); i++) {
                r = udev_monitor_filter_add_match_subsystem_devtype(p->monitor, watched[i].subsystem,
                                                                    watched[i].devtype);
                if (r < 0)
                        goto fail_receive;
        }
        r = udev_monitor_enable_receiving(p->monitor);
        if (r < 0)
                goto fail_receive;
        r = uv_poll_init(d->env.loop, &p->monitor_poll, udev_monitor_get_fd(p->monitor));
        if (r < 0)
                goto fail_receive;
        p->monitor_poll.data = p;
        uv_timer_init(d->env.loop, &p->timer);
        p->timer.data = p;
        p->started = true;
        p->initial = true;
        /* From here on start() succeeds; without hotplug the start-up list still stands. */
        (void)uv_poll_start(&p->monitor_poll, UV_READABLE, monitor_cb);
        enumerate_all(p, p->udev);
        uv_timer_start(&p->timer, timer_cb, 0, 0);
        return 0;

fail_receive:
        p->monitor = udev_monitor_unref(p->monitor);
fail_monitor:
        p->udev = udev_unref(p->udev);
        return r;
}

static void periph_stop(struct bbt_driver *d, void (*done)(void *userdata), void *userdata)
{
        struct periph_drv *p = bbt_container_of(d, struct periph_drv, base);

        if (!p->started || p->stopping) {
                if (!p->stopping && done)
                        done(userdata);
                return;
        }
        p->stopping = true;
        p->done = done;
        p->done_userdata = userdata;
        p->n_closing += 2;
        uv_close((uv_handle_t *)&p->timer, handle_closed_cb);
        uv_close((uv_handle_t *)&p->monitor_poll, handle_closed_cb);
}

static int periph_probe(struct bbt_driver *d, FILE *out)
{
        struct periph_drv *p = bbt_container_of(d, struct periph_drv, base);
        struct periph_drv probe = {0};
        struct entry_list list;
        uint32_t present = 0;
        size_t i;
        int k, r;

        probe.root = p->root;
        probe.udev = udev_new();
        if (!probe.udev)
                return -ENOMEM;
        enumerate_all(&probe, probe.udev);
        r = compute(&probe.raw, &list);
        list_clear(&probe.raw);
        udev_unref(probe.udev);
        if (r < 0)
                return r;
        for (i = 0; i < list.n; i++) {
                const struct bbt_dev *v = &list.v[i].dev;

                present |= 1u << v->kind;
                fprintf(out, "periph: %s %s %s:%s \"%s\" \"%s\" serial \"%s\" bus %s %s\n",
                        bbt_periph_kind_name(v->kind), v->subsystem, v->vendor_id ? v->vendor_id : "-",
                        v->model_id ? v->model_id : "-", v->vendor ? v->vendor : "", v->model ? v->model : "",
                        v->serial ? v->serial : "", v->bus ? v->bus : "-", v->syspath);
        }
        if (list.n == 0)
                fprintf(out, "periph: no peripherals\n");
        for (k = 0; k < BBT_KIND__COUNT; k++)
                if ((p->expect & (1u << k)) && !(present & (1u << k)))
                        fprintf(out, "periph: expected %s not present\n",
                                bbt_periph_kind_name((enum bbt_periph_kind)k));
        list_clear(&list);
        return 0;
}

static void periph_destroy(struct bbt_driver *d)
{
        struct periph_drv *p;

        if (!d)
                return;
        p = bbt_container_of(d, struct periph_drv, base);
        list_clear(&p->raw);
        list_clear(&p->pub);
        free(p->view);
        udev_monitor_unref(p->monitor);
        udev_unref(p->udev);
        bbt_driver_release(&p->base);
        free(p);
}

static const struct bbt_driver_ops periph_ops = {
        .name = "periph",
        .start = periph_start,
        .stop = periph_stop,
        .probe = periph_probe,
        .destroy = periph_destroy,
};

int bbt_periph_new(const struct bbt_driver_env *env, const struct bbt_periph_options *opts,
                   struct bbt_driver **ret)
{
        struct periph_drv *p;

        if (!env || !env->loop || !env->events || !ret)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        if (bbt_driver_init(&p->base, &periph_ops, env) < 0) {
                free(p);
                return -ENOMEM;
        }
        p->root = (char *)p->base.env.root;
        p->expect = opts ? opts->expect & ((1u << BBT_KIND__COUNT) - 1) : 0;
        p->debounce_ms = opts && opts->debounce_ms ? opts->debounce_ms : BBT_PERIPH_DEBOUNCE_MS_DEFAULT;
        *ret = &p->base;
        return 0;
}

size_t bbt_periph_inventory(const struct bbt_driver *d, const struct bbt_dev **ret_devs)
{
        const struct periph_drv *p;

        if (!d || d->ops != &periph_ops) {
                if (ret_devs)
                        *ret_devs = NULL;
                return 0;
        }
        p = bbt_container_of(d, const struct periph_drv, base);
        if (ret_devs)
                *ret_devs = p->view;
        return p->pub.n;
}

int bbt_periph_expect_parse(const char *list, uint32_t *ret)
{
        uint32_t mask = 0;
        const char *s = list;

        if (!list || !ret)
                return -EINVAL;
        while (*s) {
                size_t n;
                int k;

                while (*s == ',' || isspace((unsigned char)*s))
                        s++;
                if (!*s)
                        break;
                n = strcspn(s, ", \t\r\n");
                for (k = 0; k < BBT_KIND__COUNT; k++) {
                        const char *name = bbt_periph_kind_name((enum bbt_periph_kind)k);

                        if (name && strlen(name) == n && strncmp(name, s, n) == 0)
                                break;
                }
                if (k == BBT_KIND__COUNT)
                        return -EINVAL;
                mask |= 1u << k;
                s += n;
        }
        *ret = mask;
        return 0;
}
