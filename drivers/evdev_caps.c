/* Input device classification: reads an input device's capability bitmaps from udev and decides touch, pen, mouse or keys by a table of rules. */
#include "evdev_caps.h"
#include "bbt/base.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <libudev.h>

#define N_KEY BBT_EVDEV_KEY_WORDS

int bbt_evdev_bitmap_parse(const char *text, uint64_t *words, size_t n)
{
        const unsigned width = sizeof(unsigned long) * 8; /* the kernel's long, as udev assumes too */
        const char *tok[128];
        size_t n_tok = 0, i;
        const char *p = text;

        if (!text)
                return -EINVAL;
        memset(words, 0, n * sizeof(*words));
        while (*p) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        break;
                if (n_tok == BBT_ELEMENTSOF(tok))
                        return -EINVAL;
                tok[n_tok++] = p;
                while (*p && *p != ' ')
                        p++;
        }
        if (n_tok == 0)
                return -EINVAL;
        /* The last word holds bits 0..width-1. */
        for (i = 0; i < n_tok; i++) {
                const char *t = tok[n_tok - 1 - i];
                size_t len = strcspn(t, " "), bit = (size_t)i * width, k;
                uint64_t v = 0;

                if (len == 0 || len > width / 4)
                        return -EINVAL;
                for (k = 0; k < len; k++) {
                        int c = tolower((unsigned char)t[k]);

                        if (!isxdigit(c))
                                return -EINVAL;
                        v = v << 4 | (uint64_t)(isdigit(c) ? c - '0' : c - 'a' + 10);
                }
                if (bit / 64 < n)
                        words[bit / 64] |= v << (bit % 64);
        }
        return 0;
}

static bool prop_is_1(struct udev_device *u, const char *name)
{
        const char *v = u ? udev_device_get_property_value(u, name) : NULL;

        return v && strcmp(v, "1") == 0;
}

/* udev's ID_INPUT_* properties, strongest first. */
static const struct {
        const char *prop;
        unsigned bit;
} hint_props[] = {
        {"ID_INPUT_TOUCHSCREEN", BBT_EVDEV_HINT_TOUCHSCREEN},
        {"ID_INPUT_TABLET", BBT_EVDEV_HINT_TABLET},
        {"ID_INPUT_TABLET_PAD", BBT_EVDEV_HINT_TABLET_PAD},
        {"ID_INPUT_TOUCHPAD", BBT_EVDEV_HINT_TOUCHPAD},
        {"ID_INPUT_MOUSE", BBT_EVDEV_HINT_MOUSE},
        {"ID_INPUT_POINTINGSTICK", BBT_EVDEV_HINT_MOUSE},
        {"ID_INPUT_KEYBOARD", BBT_EVDEV_HINT_KEYBOARD},
        {"ID_INPUT_KEY", BBT_EVDEV_HINT_KEY},
};

static unsigned hints_of(struct udev_device *u)
{
        unsigned hints = 0;
        size_t i;

        for (i = 0; i < BBT_ELEMENTSOF(hint_props); i++)
                if (prop_is_1(u, hint_props[i].prop))
                        hints |= hint_props[i].bit;
        return hints;
}

/* The bitmap NAME of the input device U: the uevent property (EV, KEY, ...),
 * else the sysfs attribute ATTR; NULL when neither is there. */
static const char *bitmap_of(struct udev_device *u, const char *name, const char *attr)
{
        const char *v = udev_device_get_property_value(u, name);

        return v ? v : udev_device_get_sysattr_value(u, attr);
}

void bbt_evdev_caps_from_udev(struct udev_device *u, struct bbt_evdev_caps *ret)
{
        static const struct {
                const char *prop, *attr;
                size_t offset, n;
        } maps[] = {
                {"PROP", "properties", offsetof(struct bbt_evdev_caps, prop), 1},
                {"KEY", "capabilities/key", offsetof(struct bbt_evdev_caps, key), N_KEY},
                {"REL", "capabilities/rel", offsetof(struct bbt_evdev_caps, rel), 1},
                {"ABS", "capabilities/abs", offsetof(struct bbt_evdev_caps, abs), 1},
        };
        struct udev_device *input = u;
        const char *ss = udev_device_get_subsystem(u), *name = udev_device_get_sysname(u);
        const char *ev;
        size_t i;

        memset(ret, 0, sizeof(*ret));
        ret->hints = hints_of(u);
        /* An event node's bitmaps are on its inputN parent. */
        if (!ss || strcmp(ss, "input") != 0 || !name || strncmp(name, "input", 5) != 0) {
                input = udev_device_get_parent_with_subsystem_devtype(u, "input", NULL);
                if (!input)
                        return;
                ret->hints |= hints_of(input);
        }
        ev = bitmap_of(input, "EV", "capabilities/ev");
        if (!ev || bbt_evdev_bitmap_parse(ev, &ret->ev, 1) < 0)
                return;
        /* A map the kernel leaves out (KEY without EV_KEY) is empty; one that
         * is there but garbled makes the whole reading unknown. */
        for (i = 0; i < BBT_ELEMENTSOF(maps); i++) {
                const char *m = bitmap_of(input, maps[i].prop, maps[i].attr);
                uint64_t *dst = (uint64_t *)(void *)((char *)ret + maps[i].offset);

                if (m && bbt_evdev_bitmap_parse(m, dst, maps[i].n) < 0) {
                        unsigned hints = ret->hints;

                        memset(ret, 0, sizeof(*ret));
                        ret->hints = hints;
                        return;
                }
        }
        ret->known = true;
}

/* ---- the rules ---- */

static bool key(const struct bbt_evdev_caps *c, unsigned code)
{
        return bbt_evdev_bit(c->key, N_KEY, code);
}

static bool abs_(const struct bbt_evdev_caps *c, unsigned code)
{
        return (c->abs >> code) & 1;
}

static bool any_key(const struct bbt_evdev_caps *c, unsigned from, unsigned to)
{
        unsigned k;

        for (k = from; k <= to; k++)
                if (key(c, k))
                        return true;
        return false;
}

static unsigned count_keys(const struct bbt_evdev_caps *c, unsigned from, unsigned to)
{
        unsigned k, n = 0;

        for (k = from; k <= to; k++)
                n += key(c, k);
        return n;
}

/* Keyboard and remote-control keys, as opposed to the buttons of pointers,
 * pens, joysticks and game pads (the same ranges the input driver counts). */
static unsigned keyboard_keys(const struct bbt_evdev_caps *c)
{
        return count_keys(c, KEY_ESC, BTN_MISC - 1) + count_keys(c, KEY_OK, BTN_DPAD_UP - 1) +
               count_keys(c, KEY_ALS_TOGGLE, BTN_TRIGGER_HAPPY - 1);
}

static void from_hints(unsigned hints, struct bbt_evdev_class *ret)
{
        ret->reason = "capabilities unreadable: udev's ID_INPUT_* decide";
        if (hints & BBT_EVDEV_HINT_TOUCHSCREEN)
                ret->role = BBT_EVDEV_TOUCH;
        else if (hints & (BBT_EVDEV_HINT_TABLET | BBT_EVDEV_HINT_TABLET_PAD))
                ret->role = BBT_EVDEV_PEN;
        else if (hints & BBT_EVDEV_HINT_TOUCHPAD)
                ret->role = BBT_EVDEV_TOUCHPAD;
        else if (hints & BBT_EVDEV_HINT_MOUSE)
                ret->role = BBT_EVDEV_MOUSE;
        else if (hints & BBT_EVDEV_HINT_KEYBOARD)
                ret->role = BBT_EVDEV_KEYBOARD;
        else if (hints & BBT_EVDEV_HINT_KEY)
                ret->role = BBT_EVDEV_KEYS;
        else
                ret->reason = "capabilities unreadable and no ID_INPUT_* from udev";
        if ((ret->role == BBT_EVDEV_MOUSE || ret->role == BBT_EVDEV_TOUCHPAD) && (hints & BBT_EVDEV_HINT_KEYBOARD))
                ret->keyboard = true;
}

/* The first row that matches decides; docs/drivers-input-periph.md has the
 * same table. A row's reason names what it saw. */
void bbt_evdev_classify(const struct bbt_evdev_caps *c, struct bbt_evdev_class *ret)
{
        bool abs_xy, mt_xy, direct, pointer, pen_tool, typing;
        const char *evidence = NULL;

        memset(ret, 0, sizeof(*ret));
        if (!c->known) {
                from_hints(c->hints, ret);
                return;
        }
        abs_xy = abs_(c, ABS_X) && abs_(c, ABS_Y);
        mt_xy = abs_(c, ABS_MT_POSITION_X) && abs_(c, ABS_MT_POSITION_Y);
        direct = (c->prop >> INPUT_PROP_DIRECT) & 1;
        pointer = (c->prop >> INPUT_PROP_POINTER) & 1;
        pen_tool = key(c, BTN_TOOL_PEN) || key(c, BTN_TOOL_BRUSH) || key(c, BTN_TOOL_PENCIL) ||
                   key(c, BTN_TOOL_AIRBRUSH) || key(c, BTN_TOOL_RUBBER);
        typing = count_keys(c, KEY_ESC, KEY_D) == KEY_D - KEY_ESC + 1; /* udev's test for a keyboard */
        if (abs_(c, ABS_PRESSURE))
                evidence = "BTN_TOOL_PEN with ABS_PRESSURE: a pen";
        else if (key(c, BTN_STYLUS) || key(c, BTN_STYLUS2) || key(c, BTN_STYLUS3))
                evidence = "BTN_TOOL_PEN with a stylus button (BTN_STYLUS): a pen";
        else if (key(c, BTN_TOOL_RUBBER))
                evidence = "BTN_TOOL_PEN with an eraser (BTN_TOOL_RUBBER): a pen";
        else if (abs_(c, ABS_TILT_X))
                evidence = "BTN_TOOL_PEN with ABS_TILT_X: a pen";

        if ((c->prop >> INPUT_PROP_ACCELEROMETER) & 1) {
                ret->reason = "INPUT_PROP_ACCELEROMETER: a motion sensor";
                return;
        }
        if (abs_xy || mt_xy) {
                if (pen_tool && evidence) {
                        ret->role = BBT_EVDEV_PEN;
                        ret->reason = evidence;
                } else if (!pen_tool && any_key(c, BTN_0, BTN_9) &&
                           (key(c, BTN_STYLUS) || (c->hints & BBT_EVDEV_HINT_TABLET_PAD))) {
                        ret->role = BBT_EVDEV_PEN;
                        ret->reason = "pad buttons (BTN_0...) beside BTN_STYLUS: a pen tablet's pad";
                } else if (pen_tool && !pointer) {
                        ret->role = BBT_EVDEV_TOUCH;
                        ret->reason = "BTN_TOOL_PEN without pressure, stylus button or eraser, not "
                                      "INPUT_PROP_POINTER: a touch frame";
                } else if (pen_tool) {
                        ret->role = BBT_EVDEV_PEN;
                        ret->reason = "BTN_TOOL_PEN on an INPUT_PROP_POINTER tablet: a pen";
                } else if (key(c, BTN_TOOL_FINGER) && !direct) {
                        ret->role = BBT_EVDEV_TOUCHPAD;
                        ret->reason = "BTN_TOOL_FINGER without INPUT_PROP_DIRECT: a touchpad";
                } else if (direct) {
                        ret->role = BBT_EVDEV_TOUCH;
                        ret->reason = mt_xy ? "INPUT_PROP_DIRECT with ABS_MT_POSITION_X/Y: a touch screen"
                                            : "INPUT_PROP_DIRECT with ABS_X/ABS_Y: a touch screen";
                } else if (any_key(c, BTN_LEFT, BTN_TASK) && !key(c, BTN_TOUCH)) {
                        ret->role = BBT_EVDEV_MOUSE;
                        ret->reason = "ABS_X/ABS_Y with BTN_LEFT and no BTN_TOUCH: an absolute pointer";
                } else if (key(c, BTN_TOUCH) || mt_xy) {
                        ret->role = BBT_EVDEV_TOUCH;
                        ret->reason = mt_xy ? "ABS_MT_POSITION_X/Y contacts: a touch screen"
                                            : "BTN_TOUCH with ABS_X/ABS_Y: a single-touch screen";
                }
                if (ret->role != BBT_EVDEV_NONE) {
                        ret->keyboard = typing && (ret->role == BBT_EVDEV_MOUSE || ret->role == BBT_EVDEV_TOUCHPAD);
                        return;
                }
        }
        if (((c->rel >> REL_X) & 1) && ((c->rel >> REL_Y) & 1) && any_key(c, BTN_LEFT, BTN_TASK)) {
                ret->role = BBT_EVDEV_MOUSE;
                ret->reason = "REL_X/REL_Y with BTN_LEFT: a mouse";
                ret->keyboard = typing;
                return;
        }
        if (typing) {
                ret->role = BBT_EVDEV_KEYBOARD;
                ret->reason = "KEY_ESC...KEY_D: a keyboard";
        } else if (key(c, KEY_PAGEUP) && key(c, KEY_PAGEDOWN) && keyboard_keys(c) <= BBT_EVDEV_PRESENTER_MAX_KEYS) {
                ret->role = BBT_EVDEV_KEYBOARD;
                ret->reason = "KEY_PAGEUP/KEY_PAGEDOWN on a small key set: a presenter";
        } else if (keyboard_keys(c) > 0) {
                ret->role = BBT_EVDEV_KEYS;
                ret->reason = "keys but no typing keys: media, hot or power keys";
        } else {
                ret->reason = "no pointer axes, contacts or keyboard keys";
        }
}

const char *bbt_evdev_role_name(enum bbt_evdev_role role)
{
        switch (role) {
        case BBT_EVDEV_TOUCH:
                return "touch";
        case BBT_EVDEV_PEN:
                return "pen";
        case BBT_EVDEV_TOUCHPAD:
                return "touchpad";
        case BBT_EVDEV_MOUSE:
                return "mouse";
        case BBT_EVDEV_KEYBOARD:
                return "keyboard";
        case BBT_EVDEV_KEYS:
                return "keys";
        case BBT_EVDEV_NONE:
                break;
        }
        return "none";
}

const char *bbt_evdev_hint_name(unsigned hints)
{
        size_t i;

        for (i = 0; i < BBT_ELEMENTSOF(hint_props); i++)
                if (hints & hint_props[i].bit)
                        return hint_props[i].prop;
        return NULL;
}
