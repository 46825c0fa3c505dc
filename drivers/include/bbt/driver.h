/* The one small interface every hardware driver sits behind: observations out, nothing blocking. */
#ifndef BBT_DRIVER_H
#define BBT_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "bbt/protocol.h"

#include "bbt/base.h"

enum bbt_input_class { BBT_INPUT_TOUCH, BBT_INPUT_PEN, BBT_INPUT_MOUSE, BBT_INPUT_KEY, BBT_INPUT__COUNT };

/* What drivers tell the agent. Every callback is optional and runs on the loop
 * thread; pointers are valid during the call only. */
struct bbt_driver_events {
        /* COUNT input events of class CLS (counts only: never key codes or coordinates). */
        void (*input)(void *userdata, enum bbt_input_class cls, uint64_t count);
        /* The display (panel, monitor or projector) is now on or off; SOURCE names what said so. */
        void (*display)(void *userdata, bool on, const char *source);
        /* Audio playback started or stopped. */
        void (*audio)(void *userdata, bool playing);
        /* A peripheral was added or removed (already debounced). */
        void (*periph)(void *userdata, enum bbt_periph_action action, const struct bbt_dev *dev);
        /* The set of peripherals changed: the full list, for a retained inventory. */
        void (*inventory)(void *userdata, const struct bbt_dev *devs, size_t n);
        /* The projector's latest status (after every poll). */
        void (*projector)(void *userdata, const struct bbt_projector_status *status);
        /* A condition was raised or cleared (periph_missing, projector_error, lamp_hours, ...). */
        void (*alert)(void *userdata, const char *code, enum bbt_severity severity,
                      enum bbt_alert_state state, const char *detail);
        /* What is wrong with SOURCE's device now ("unreachable: connect: Connection
         * refused"), or NULL once it is fine again: called once per change, for
         * the log. May be NULL. */
        void (*problem)(void *userdata, const char *source, const char *what);
        void *userdata;
};

/* What every driver gets: the loop, the root under which /sys, /proc and /dev
 * are read ("/" in production; a fixture tree or umockdev testbed in tests),
 * and where to send what it sees. */
struct bbt_driver_env {
        uv_loop_t *loop;
        const char *root;
        const struct bbt_driver_events *events;
};

struct bbt_driver;

/* A driver's operations. start() begins watching (registering uv handles on
 * env->loop) and returns 0 or a negative errno; a driver whose hardware is
 * absent starts anyway and reports nothing. stop() closes every handle and
 * calls DONE (from the loop) once they are closed, after which the driver may
 * be freed with destroy(). probe() writes what the driver sees now, for
 * `bbt-agent --probe`, without needing a loop. heartbeat() is for a source
 * that is read when a heartbeat is due rather than watched (the health
 * readings): it fills its fields of HB with what it reads now (strings point
 * into the driver until the next call) and says what it could not read
 * through events->problem; NULL for a driver that only sends events. */
struct bbt_driver_ops {
        const char *name;
        int (*start)(struct bbt_driver *d);
        void (*stop)(struct bbt_driver *d, void (*done)(void *userdata), void *userdata);
        int (*probe)(struct bbt_driver *d, FILE *out);
        void (*destroy)(struct bbt_driver *d);
        void (*heartbeat)(struct bbt_driver *d, struct bbt_hb *hb);
};

/* Every driver struct begins with this. */
struct bbt_driver {
        const struct bbt_driver_ops *ops;
        struct bbt_driver_env env; /* env.root is the driver's own copy */
};

/* Sets D's OPS and a copy of ENV whose root string (NULL: "/") D owns, for a
 * driver's constructor. Returns 0 or -ENOMEM (D then holds nothing to free). */
BBT_API int bbt_driver_init(struct bbt_driver *d, const struct bbt_driver_ops *ops,
                            const struct bbt_driver_env *env);

/* Frees what bbt_driver_init() copied, for a driver's destroy(). NULL-safe. */
BBT_API void bbt_driver_release(struct bbt_driver *d);

#endif
