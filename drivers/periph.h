/* Peripheral driver: classifies udev devices into protocol kinds, debounces hotplug, keeps the inventory, watches expected kinds. */
#ifndef BBT_DRIVERS_PERIPH_H
#define BBT_DRIVERS_PERIPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bbt/driver.h"
#include "evdev_caps.h"

/* Changes within this many ms of each other are reported once, by default. */
#define BBT_PERIPH_DEBOUNCE_MS_DEFAULT 2000
/* A storm that never goes quiet is still reported this many debounce
 * periods after its first change. */
#define BBT_PERIPH_DEBOUNCE_MAX_PERIODS 4

struct bbt_periph_options {
        /* Kinds that should be present: bit (1u << kind) for each, e.g. from
         * bbt_periph_expect_parse(). While one is absent after start-up has
         * settled, the periph_missing alert is raised. */
        uint32_t expect;
        /* 0 means BBT_PERIPH_DEBOUNCE_MS_DEFAULT. */
        unsigned debounce_ms;
};

/* Creates the peripheral driver (not started) for ENV, which is copied;
 * ENV->loop and ENV->events must outlive the driver, ENV->root is copied.
 * OPTS may be NULL for the defaults. On success stores a driver the caller
 * releases with ops->destroy() (after ops->stop() has called back, if it was
 * started) and returns 0; returns -EINVAL for a missing loop or events, or
 * -ENOMEM. */
int bbt_periph_new(const struct bbt_driver_env *env, const struct bbt_periph_options *opts,
                   struct bbt_driver **ret);

/* The inventory as last delivered through events->inventory (empty before
 * the first delivery): stores the array in RET_DEVS and returns its length.
 * The array and its strings belong to the driver and stay valid until the
 * next change is delivered or the driver is destroyed. */
size_t bbt_periph_inventory(const struct bbt_driver *d, const struct bbt_dev **ret_devs);

/* Parses LIST, kind names separated by commas and/or blanks ("camera, touch";
 * empty for none), into a mask of (1u << kind) bits in RET (untouched on
 * failure). Returns 0, or -EINVAL naming nothing: the caller reports LIST. */
int bbt_periph_expect_parse(const char *list, uint32_t *ret);

/* ---- the classification table, exposed for tests and --probe ---- */

/* What the classification looks at, gathered from one udev device. Strings
 * may be NULL when absent. */
struct bbt_periph_facts {
        const char *subsystem;        /* SUBSYSTEM: "video4linux", "sound", ... */
        const char *devtype;          /* DEVTYPE: "disk", "usb_device", "drm_connector", ... */
        const char *sysname;          /* "video0", "card1", "input7", "card0-HDMI-A-1", "sdb" */
        bool is_virtual;              /* under /sys/devices/virtual */
        bool on_usb;                  /* a USB device is the device or one of its ancestors */
        const char *v4l_capabilities; /* ID_V4L_CAPABILITIES, e.g. ":capture:" */
        bool sound_capture;           /* sound card: has a capture PCM (pcmC*D*c) */
        bool sound_playback;          /* sound card: has a playback PCM (pcmC*D*p) */
        const char *drm_status;       /* drm connector's status attribute */
        const char *removable;        /* block device's removable attribute */
        const char *id_bus;           /* ID_BUS */
        struct bbt_evdev_class input; /* input device: what its capabilities say (evdev_caps.h) */
        int usb_class;                /* usb_device's bDeviceClass, -1 when unknown */
};

/* The kinds the device described by F is, as (1u << kind) bits: 0 when it is
 * not a peripheral we report, two bits for a sound card that both captures
 * and plays. The table is in docs/drivers-input-periph.md. */
uint32_t bbt_periph_classify(const struct bbt_periph_facts *f);

#endif
