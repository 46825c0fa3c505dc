/* Display driver: on/off from DRM connectors and backlights under a root, re-read on drm/backlight uevents. */
#ifndef BBT_DISPLAY_H
#define BBT_DISPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "bbt/driver.h"

/* Default of bbt_display_options.safety_poll_ms. */
#define BBT_DISPLAY_SAFETY_POLL_MS 10000
/* After a uevent the tree is read at once and once more this much later: a
 * compositor enables a freshly plugged output (enabled, dpms) without a
 * uevent of its own. Capped by the safety poll. */
#define BBT_DISPLAY_SETTLE_MS 2000

enum bbt_display_state {
        BBT_DISPLAY_UNKNOWN, /* no DRM connector and no backlight to read */
        BBT_DISPLAY_OFF,
        BBT_DISPLAY_ON,
};

struct bbt_display_options {
        /* Re-read at least this often even without a uevent (dpms changes do
         * not always emit one); 0 means BBT_DISPLAY_SAFETY_POLL_MS. */
        uint64_t safety_poll_ms;
};

/* Reads the display state now from ROOT/sys/class/drm/card<N>-<connector>
 * (status, enabled, dpms) and ROOT/sys/class/backlight/<name> (bl_power,
 * brightness):
 * on when some connector is connected (or "unknown") and enabled with dpms
 * On, and no backlight says off (bl_power != 0 or brightness 0); a backlight
 * whose device link names a connector only switches that connector off.
 * Without connector information the backlights alone decide; with neither
 * the state is BBT_DISPLAY_UNKNOWN. Writes what decided it into SOURCE
 * ("drm card0-HDMI-A-1", "backlight intel_backlight"; "" when unknown; may
 * be NULL). Missing or malformed files count as "no information", never as
 * an error. Returns 0, -EINVAL for a NULL argument, -ENAMETOOLONG for a root
 * too long, or -ENOMEM; RET_STATE is untouched on failure. Small sysfs reads
 * that do not block, so it runs on the loop thread. */
int bbt_display_read(const char *root, enum bbt_display_state *ret_state, char *source, size_t source_size);

/* Creates the display driver in RET (the caller frees it with its destroy
 * op, after stop() has called back, or at once if it never started). ENV is
 * copied, and so is the root it names; ENV->events must outlive the driver.
 * Once started it reports events->display(on, source) after its first
 * reading and then only on change, and nothing while the state is unknown
 * (the last state reported stands). A projector's power is not read here:
 * the projector driver reports its own display events and the agent
 * combines them. OPTS may be NULL (defaults). Returns 0, -EINVAL or
 * -ENOMEM; RET is untouched on failure. */
int bbt_display_new(const struct bbt_driver_env *env, const struct bbt_display_options *opts,
                    struct bbt_driver **ret);

/* 0 if the started driver D follows udev drm/backlight events; otherwise the
 * negative errno for why it only polls (-ENOTCONN before start()). Not
 * fatal: the safety poll still notices every change, only later. */
int bbt_display_monitor_error(const struct bbt_driver *d);

#endif
