/* Input device classification from evdev capability bits: touch, pen, mouse or keys, and the capability that decided. */
#ifndef BBT_DRIVERS_EVDEV_CAPS_H
#define BBT_DRIVERS_EVDEV_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/input.h>

struct udev_device;

#define BBT_EVDEV_KEY_WORDS ((KEY_CNT + 63) / 64)
/* A presenter or clicker: page keys on a key set this small. Larger sets
 * with page keys are the consumer-control interfaces of mice and keyboards. */
#define BBT_EVDEV_PRESENTER_MAX_KEYS 24

/* What udev's input_id builtin (or a hwdb entry) says a node is: ID_INPUT_*.
 * Only a hint: the capability bits decide when they can be read. */
enum {
        BBT_EVDEV_HINT_TOUCHSCREEN = 1u << 0,
        BBT_EVDEV_HINT_TABLET = 1u << 1,
        BBT_EVDEV_HINT_TABLET_PAD = 1u << 2,
        BBT_EVDEV_HINT_MOUSE = 1u << 3, /* also ID_INPUT_POINTINGSTICK */
        BBT_EVDEV_HINT_TOUCHPAD = 1u << 4,
        BBT_EVDEV_HINT_KEYBOARD = 1u << 5,
        BBT_EVDEV_HINT_KEY = 1u << 6,
};

/* An input device's capabilities as the kernel publishes them in the input
 * device's uevent (PROP, EV, KEY, REL, ABS; the same bitmaps as
 * /sys/class/input/inputN/properties and capabilities/), bit N of a map
 * being code N. */
struct bbt_evdev_caps {
        bool known; /* the bitmaps were read; false: only the hints are known */
        uint64_t prop, ev, rel, abs;
        uint64_t key[BBT_EVDEV_KEY_WORDS];
        unsigned hints; /* BBT_EVDEV_HINT_* */
};

/* What a node is, for counting and for the inventory. */
enum bbt_evdev_role {
        BBT_EVDEV_NONE,     /* not counted: switches, sensors, joysticks, devices without axes or keys */
        BBT_EVDEV_TOUCH,    /* touch screen or touch frame: each contact counts as touch */
        BBT_EVDEV_PEN,      /* pen digitizer, with or without a screen, or its pad: counts as pen */
        BBT_EVDEV_TOUCHPAD, /* indirect touch surface: counts as mouse */
        BBT_EVDEV_MOUSE,    /* relative or absolute pointer */
        BBT_EVDEV_KEYBOARD, /* typing keys, or a presenter's page keys */
        BBT_EVDEV_KEYS,     /* other keys only (media, hot, power keys): counted, not a peripheral */
};

struct bbt_evdev_class {
        enum bbt_evdev_role role;
        bool keyboard;      /* a pointer that also has typing keys (a keyboard with a touchpad) */
        const char *reason; /* static text naming the capability that decided */
};

/* Parses a kernel capability bitmap TEXT ("120013", "1f0000 0 0 3803078f800d001"):
 * blank-separated hex words of the kernel's long, most significant first,
 * into WORDS (N 64-bit words, bit N = code N; bits beyond are dropped).
 * Returns 0, or -EINVAL (WORDS then undefined). */
int bbt_evdev_bitmap_parse(const char *text, uint64_t *words, size_t n);

/* Reads the capabilities of the input device U (an inputN device or one of
 * its event nodes) from udev: the kernel's PROP/EV/KEY/REL/ABS properties of
 * the inputN device (sysfs capabilities/ when they are missing) and
 * ID_INPUT_* of U and the inputN device as hints. RET->known is false when
 * no EV bitmap could be read. */
void bbt_evdev_caps_from_udev(struct udev_device *u, struct bbt_evdev_caps *ret);

/* Classifies CAPS into RET by the table in docs/drivers-input-periph.md. */
void bbt_evdev_classify(const struct bbt_evdev_caps *caps, struct bbt_evdev_class *ret);

/* "touch", "pen", "touchpad", "mouse", "keyboard", "keys", "none". */
const char *bbt_evdev_role_name(enum bbt_evdev_role role);

/* The ID_INPUT_* name of the strongest hint in HINTS ("ID_INPUT_TABLET"), or NULL. */
const char *bbt_evdev_hint_name(unsigned hints);

/* Whether bit CODE is set in the N-word map WORDS. */
static inline bool bbt_evdev_bit(const uint64_t *words, size_t n, unsigned code)
{
        return code / 64 < n && (words[code / 64] >> (code % 64)) & 1;
}

#endif
