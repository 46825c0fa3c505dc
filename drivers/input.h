/* Input activity driver: counts touch, pen, mouse and key interactions on evdev devices, never what or where. */
#ifndef BBT_DRIVERS_INPUT_H
#define BBT_DRIVERS_INPUT_H

#include <stddef.h>

#include "bbt/driver.h"

struct libevdev;
struct input_event;

/* Counts of a class reach the agent at most this often (ms) by default. */
#define BBT_INPUT_BATCH_MS_DEFAULT 200
/* Pointer motion or scrolling after this long (ms) without any starts a new
 * mouse interaction; motion within it continues the same one. */
#define BBT_INPUT_GESTURE_GAP_MS 500
/* A touch frame or pen that reports one contact on two interfaces (its
 * touch node and its mouse or keyboard node) does so within this many ms
 * (event times); such a pair is counted once. */
#define BBT_INPUT_COMPANION_WINDOW_MS 150

/* How a device is attached and read: libevdev_set_fd and
 * libevdev_next_event in production. Tests replace next_event to fake read
 * failures such as -ENODEV; tools/bench/input-storm replaces set_fd to move
 * the device onto a pipe it feeds (libevdev_change_fd). The driver polls
 * whatever fd libevdev has after set_fd. */
struct bbt_input_evdev_ops {
        int (*set_fd)(struct libevdev *dev, int fd);
        int (*next_event)(struct libevdev *dev, unsigned int flags, struct input_event *ev);
};

struct bbt_input_options {
        /* Deliver each class's count at most once per this many ms; 0 means
         * BBT_INPUT_BATCH_MS_DEFAULT. */
        unsigned batch_ms;
        /* NULL: libevdev itself; a NULL member also means libevdev's. Copied. */
        const struct bbt_input_evdev_ops *evdev_ops;
};

/* Creates the input driver (not started) for ENV, which is copied; ENV->loop
 * and ENV->events must outlive the driver, ENV->root is copied. OPTS may be
 * NULL for the defaults. On success stores a driver the caller releases with
 * ops->destroy() (after ops->stop() has called back, if it was started) and
 * returns 0; returns -EINVAL for a missing loop or events, -ENOMEM. */
int bbt_input_new(const struct bbt_driver_env *env, const struct bbt_input_options *opts,
                  struct bbt_driver **ret);

/* How many evdev nodes the driver is reading now (0 before start). */
size_t bbt_input_watched(const struct bbt_driver *d);

#endif
