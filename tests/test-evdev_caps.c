/* Tests of the evdev classification: the kernel bitmap parser and every row of the rule table. */
/* bbt-test: label=unit timeout=10 */
#include "test.h"
#include "bbt/base.h"

#include <errno.h>

#include "evdev_caps.h"

/* ---- bitmaps ---- */

TEST(bitmap_parse)
{
        uint64_t w[BBT_EVDEV_KEY_WORDS];

        ASSERT_OK(bbt_evdev_bitmap_parse("120013", w, 1));
        ASSERT_EQ(w[0], 0x120013);
        /* Most significant word first: a keyboard's KEY= from a real uevent. */
        ASSERT_OK(bbt_evdev_bitmap_parse("80000000000000 e0b0ffdf01cfffff fffffffffffffffe", w, BBT_EVDEV_KEY_WORDS));
        ASSERT_EQ(w[0], 0xfffffffffffffffeULL);
        ASSERT_EQ(w[1], 0xe0b0ffdf01cfffffULL);
        ASSERT_EQ(w[2], 0x80000000000000ULL);
        ASSERT_EQ(w[3], 0);
        ASSERT(bbt_evdev_bit(w, BBT_EVDEV_KEY_WORDS, KEY_ESC));
        ASSERT(!bbt_evdev_bit(w, BBT_EVDEV_KEY_WORDS, KEY_RESERVED));
        ASSERT(bbt_evdev_bit(w, BBT_EVDEV_KEY_WORDS, 183)); /* 0x80000000000000 in word 2: code 128 + 55 */
        /* The eGalax frame: BTN_TOOL_PEN (0x140) and BTN_TOUCH (0x14a). */
        ASSERT_OK(bbt_evdev_bitmap_parse("401 0 0 0 0 0", w, BBT_EVDEV_KEY_WORDS));
        ASSERT(bbt_evdev_bit(w, BBT_EVDEV_KEY_WORDS, BTN_TOOL_PEN));
        ASSERT(bbt_evdev_bit(w, BBT_EVDEV_KEY_WORDS, BTN_TOUCH));
        ASSERT(!bbt_evdev_bit(w, BBT_EVDEV_KEY_WORDS, BTN_STYLUS));
        ASSERT(!bbt_evdev_bit(w, BBT_EVDEV_KEY_WORDS, 100000)); /* beyond the map */
        /* More words than fit: the high ones are dropped. */
        ASSERT_OK(bbt_evdev_bitmap_parse("1 0 5", w, 1));
        ASSERT_EQ(w[0], 5);
        ASSERT_OK(bbt_evdev_bitmap_parse("  3  ", w, 1));
        ASSERT_EQ(w[0], 3);
        ASSERT_EQ(bbt_evdev_bitmap_parse("", w, 1), -EINVAL);
        ASSERT_EQ(bbt_evdev_bitmap_parse("12x", w, 1), -EINVAL);
        ASSERT_EQ(bbt_evdev_bitmap_parse("11112222333344445", w, 1), -EINVAL); /* 17 digits */
        ASSERT_EQ(bbt_evdev_bitmap_parse(NULL, w, 1), -EINVAL);
}

/* ---- the rule table ---- */

static struct bbt_evdev_caps caps;

static void reset(void)
{
        memset(&caps, 0, sizeof(caps));
        caps.known = true;
        caps.ev = 1u << EV_SYN | 1u << EV_KEY | 1u << EV_ABS;
}

static void keys(const unsigned *codes, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                caps.key[codes[i] / 64] |= 1ULL << (codes[i] % 64);
}

#define KEYS(...) keys((const unsigned[]){__VA_ARGS__}, sizeof((const unsigned[]){__VA_ARGS__}) / sizeof(unsigned))
#define ABS(code) (caps.abs |= 1ULL << (code))
#define PROP(p) (caps.prop |= 1ULL << (p))

static struct bbt_evdev_class verdict(void)
{
        struct bbt_evdev_class c;

        bbt_evdev_classify(&caps, &c);
        ASSERT(c.reason != NULL);
        return c;
}

#define ASSERT_ROLE(role_, reason_part)                                                    \
        do {                                                                               \
                struct bbt_evdev_class v_ = verdict();                                     \
                if (v_.role != (role_))                                                    \
                        FAIL("role %s, expected %s (%s)", bbt_evdev_role_name(v_.role),    \
                             bbt_evdev_role_name(role_), v_.reason);                      \
                ASSERT_STR_CONTAINS(v_.reason, reason_part);                               \
        } while (0)

TEST(pen_tool_without_pen_evidence_is_a_frame)
{
        /* The eGalax 0eef:0001 frame on the generic HID driver: no props at all. */
        reset();
        KEYS(BTN_TOOL_PEN, BTN_TOUCH);
        ABS(ABS_X);
        ABS(ABS_Y);
        caps.hints = BBT_EVDEV_HINT_TABLET; /* what udev says, wrongly */
        ASSERT_ROLE(BBT_EVDEV_TOUCH, "BTN_TOOL_PEN without pressure, stylus button or eraser");
        /* The same on a direct device. */
        PROP(INPUT_PROP_DIRECT);
        ASSERT_ROLE(BBT_EVDEV_TOUCH, "a touch frame");
        /* A screen-less tablet that says it is a pointer device stays a pen. */
        reset();
        KEYS(BTN_TOOL_PEN, BTN_TOUCH);
        ABS(ABS_X);
        ABS(ABS_Y);
        PROP(INPUT_PROP_POINTER);
        ASSERT_ROLE(BBT_EVDEV_PEN, "INPUT_PROP_POINTER");
}

TEST(pen_evidence_makes_a_pen)
{
        static const unsigned evidence_keys[] = {BTN_STYLUS, BTN_STYLUS2, BTN_STYLUS3, BTN_TOOL_RUBBER};
        size_t i;

        reset();
        KEYS(BTN_TOOL_PEN, BTN_TOUCH);
        ABS(ABS_X);
        ABS(ABS_Y);
        ABS(ABS_PRESSURE);
        ASSERT_ROLE(BBT_EVDEV_PEN, "ABS_PRESSURE");
        for (i = 0; i < BBT_ELEMENTSOF(evidence_keys); i++) {
                reset();
                KEYS(BTN_TOOL_PEN, BTN_TOUCH, evidence_keys[i]);
                ABS(ABS_X);
                ABS(ABS_Y);
                PROP(INPUT_PROP_DIRECT);
                ASSERT_ROLE(BBT_EVDEV_PEN, "a pen");
        }
        reset();
        KEYS(BTN_TOOL_PEN, BTN_TOUCH);
        ABS(ABS_X);
        ABS(ABS_Y);
        ABS(ABS_TILT_X);
        ASSERT_ROLE(BBT_EVDEV_PEN, "ABS_TILT_X");
}

TEST(pad)
{
        reset();
        KEYS(BTN_0, BTN_1, BTN_2, BTN_STYLUS);
        ABS(ABS_X);
        ABS(ABS_Y);
        ABS(ABS_WHEEL);
        ASSERT_ROLE(BBT_EVDEV_PEN, "pad");
        /* Without BTN_STYLUS, udev's ID_INPUT_TABLET_PAD says so. */
        reset();
        KEYS(BTN_0, BTN_1);
        ABS(ABS_X);
        ABS(ABS_Y);
        caps.hints = BBT_EVDEV_HINT_TABLET | BBT_EVDEV_HINT_TABLET_PAD;
        ASSERT_ROLE(BBT_EVDEV_PEN, "pad");
}

TEST(touch_screens)
{
        /* Multi-touch, direct. */
        reset();
        KEYS(BTN_TOUCH);
        ABS(ABS_X);
        ABS(ABS_Y);
        ABS(ABS_MT_SLOT);
        ABS(ABS_MT_POSITION_X);
        ABS(ABS_MT_POSITION_Y);
        ABS(ABS_MT_TRACKING_ID);
        PROP(INPUT_PROP_DIRECT);
        ASSERT_ROLE(BBT_EVDEV_TOUCH, "INPUT_PROP_DIRECT with ABS_MT_POSITION_X/Y");
        /* Protocol A without properties (N-Trig). */
        reset();
        KEYS(BTN_TOUCH, BTN_TOOL_DOUBLETAP);
        ABS(ABS_X);
        ABS(ABS_Y);
        ABS(ABS_MT_POSITION_X);
        ABS(ABS_MT_POSITION_Y);
        ASSERT_ROLE(BBT_EVDEV_TOUCH, "ABS_MT_POSITION_X/Y contacts");
        /* Single-touch resistive screen without properties. */
        reset();
        KEYS(BTN_TOUCH);
        ABS(ABS_X);
        ABS(ABS_Y);
        ASSERT_ROLE(BBT_EVDEV_TOUCH, "BTN_TOUCH with ABS_X/ABS_Y");
        /* A vendor daemon's uinput device: direct, with mouse buttons (udev: mouse). */
        reset();
        KEYS(BTN_LEFT, BTN_RIGHT);
        ABS(ABS_X);
        ABS(ABS_Y);
        PROP(INPUT_PROP_DIRECT);
        caps.hints = BBT_EVDEV_HINT_MOUSE;
        ASSERT_ROLE(BBT_EVDEV_TOUCH, "INPUT_PROP_DIRECT with ABS_X/ABS_Y");
        /* Positions on one axis only are not contacts. */
        reset();
        KEYS(KEY_VOLUMEUP);
        ABS(ABS_MT_POSITION_X);
        ASSERT_ROLE(BBT_EVDEV_KEYS, "media");
}

TEST(pointers)
{
        reset();
        caps.ev = 1u << EV_KEY | 1u << EV_REL;
        KEYS(BTN_LEFT, BTN_RIGHT, BTN_MIDDLE);
        caps.rel = 1u << REL_X | 1u << REL_Y | 1u << REL_WHEEL;
        ASSERT_ROLE(BBT_EVDEV_MOUSE, "REL_X/REL_Y with BTN_LEFT");
        ASSERT(!verdict().keyboard);
        /* An absolute pointer (QEMU tablet, KVM). */
        reset();
        KEYS(BTN_LEFT, BTN_RIGHT);
        ABS(ABS_X);
        ABS(ABS_Y);
        ASSERT_ROLE(BBT_EVDEV_MOUSE, "absolute pointer");
        /* A touchpad. */
        reset();
        KEYS(BTN_LEFT, BTN_TOOL_FINGER, BTN_TOUCH, BTN_TOOL_DOUBLETAP);
        ABS(ABS_X);
        ABS(ABS_Y);
        ABS(ABS_MT_POSITION_X);
        ABS(ABS_MT_POSITION_Y);
        PROP(INPUT_PROP_POINTER);
        ASSERT_ROLE(BBT_EVDEV_TOUCHPAD, "BTN_TOOL_FINGER without INPUT_PROP_DIRECT");
        /* A keyboard with a touchpad in one node (Logitech K400): mouse and keyboard. */
        reset();
        caps.ev = 1u << EV_KEY | 1u << EV_REL;
        for (unsigned k = KEY_ESC; k <= KEY_D; k++)
                KEYS(k);
        KEYS(BTN_LEFT, BTN_RIGHT);
        caps.rel = 1u << REL_X | 1u << REL_Y;
        ASSERT_ROLE(BBT_EVDEV_MOUSE, "REL_X/REL_Y");
        ASSERT(verdict().keyboard);
}

TEST(keys)
{
        unsigned k;

        reset();
        caps.ev = 1u << EV_KEY;
        for (k = KEY_ESC; k <= KEY_D; k++)
                KEYS(k);
        ASSERT_ROLE(BBT_EVDEV_KEYBOARD, "KEY_ESC...KEY_D");
        /* A presenter: page keys, F5, Esc, a blank-screen key. */
        reset();
        caps.ev = 1u << EV_KEY;
        KEYS(KEY_PAGEUP, KEY_PAGEDOWN, KEY_F5, KEY_ESC, KEY_DOT, KEY_B);
        ASSERT_ROLE(BBT_EVDEV_KEYBOARD, "presenter");
        /* A consumer-control interface with page keys among many is not one. */
        for (k = KEY_MUTE; k < KEY_MUTE + BBT_EVDEV_PRESENTER_MAX_KEYS; k++)
                KEYS(k);
        ASSERT_ROLE(BBT_EVDEV_KEYS, "media, hot or power keys");
        /* A power button. */
        reset();
        caps.ev = 1u << EV_KEY;
        KEYS(KEY_POWER);
        ASSERT_ROLE(BBT_EVDEV_KEYS, "no typing keys");
        /* A lid switch, an accelerometer, a game pad. */
        reset();
        caps.ev = 1u << EV_SW;
        ASSERT_ROLE(BBT_EVDEV_NONE, "no pointer axes");
        reset();
        ABS(ABS_X);
        ABS(ABS_Y);
        ABS(ABS_Z);
        PROP(INPUT_PROP_ACCELEROMETER);
        ASSERT_ROLE(BBT_EVDEV_NONE, "INPUT_PROP_ACCELEROMETER");
        reset();
        KEYS(BTN_SOUTH, BTN_EAST, BTN_START);
        ABS(ABS_X);
        ABS(ABS_Y);
        ASSERT_ROLE(BBT_EVDEV_NONE, "no pointer axes");
}

TEST(unknown_capabilities_fall_back_to_udev)
{
        static const struct {
                unsigned hints;
                enum bbt_evdev_role role;
        } rows[] = {
                {BBT_EVDEV_HINT_TOUCHSCREEN | BBT_EVDEV_HINT_MOUSE, BBT_EVDEV_TOUCH},
                {BBT_EVDEV_HINT_TABLET, BBT_EVDEV_PEN},
                {BBT_EVDEV_HINT_TOUCHPAD, BBT_EVDEV_TOUCHPAD},
                {BBT_EVDEV_HINT_MOUSE, BBT_EVDEV_MOUSE},
                {BBT_EVDEV_HINT_KEYBOARD | BBT_EVDEV_HINT_KEY, BBT_EVDEV_KEYBOARD},
                {BBT_EVDEV_HINT_KEY, BBT_EVDEV_KEYS},
                {0, BBT_EVDEV_NONE},
        };
        size_t i;

        for (i = 0; i < BBT_ELEMENTSOF(rows); i++) {
                memset(&caps, 0, sizeof(caps));
                caps.hints = rows[i].hints;
                ASSERT_ROLE(rows[i].role, "udev");
        }
        ASSERT_STR_EQ(bbt_evdev_hint_name(BBT_EVDEV_HINT_TABLET | BBT_EVDEV_HINT_KEY), "ID_INPUT_TABLET");
        ASSERT(bbt_evdev_hint_name(0) == NULL);
        ASSERT_STR_EQ(bbt_evdev_role_name(BBT_EVDEV_TOUCHPAD), "touchpad");
}
