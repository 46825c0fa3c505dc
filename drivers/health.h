/* Health driver: uptime, load, cpu, memory, disk, temperature, links and clock, read for every heartbeat. */
#ifndef BBT_HEALTH_H
#define BBT_HEALTH_H

#include <stdint.h>

#include "bbt/driver.h"
#include "bbt/protocol.h"

/* What persists between two readings (for cpu %) and the buffers the hb's
 * strings point into. Zero-initialise before the first bbt_health_read(). */
struct bbt_health {
        uint64_t cpu_busy, cpu_total; /* jiffies at the previous reading */
        char temp_source[64];
        char ifnames[BBT_HB_NET_MAX][16];
        int (*clock_synced)(void); /* 1, 0, or negative errno; NULL: adjtimex() */
};

/* Fills the health fields of HB (uptime, load, cpu, mem, disk, temp, net,
 * clock_synced) from ROOT/proc, ROOT/sys and statvfs() of ROOT and SPOOL_DIR
 * (NULL: no spool disk). Strings in HB point into H and stay valid until the
 * next call. Missing optional sources leave their fields absent; returns 0, or
 * -errno naming the first required source that could not be read (proc/uptime,
 * proc/loadavg, proc/meminfo, statvfs of ROOT), in which case HB is still
 * filled as far as it could be. These are small procfs/sysfs reads that do
 * not block, so they run on the loop thread. */
int bbt_health_read(struct bbt_health *h, const char *root, const char *spool_dir, struct bbt_hb *hb,
                    char *err, size_t err_size);

struct bbt_health_options {
        /* The spool's directory: its file system is reported as disk.spool when
         * it is not the root's. NULL: none. Copied. */
        const char *spool_dir;
        /* Whether the clock is synchronised: 1, 0 or a negative errno; NULL:
         * adjtimex(). For tests. */
        int (*clock_synced)(void);
};

/* Creates the health driver in RET (freed with its destroy op, after stop()
 * has called back, or at once if it never started). ENV is copied, and so is
 * the root it names; ENV->events must outlive the driver. It watches nothing:
 * its heartbeat op reads bbt_health_read() under the root into a heartbeat,
 * and when a required source cannot be read it says so once through
 * events->problem ("health", "PATH: ERROR (reported as 0 until it can be
 * read)"), again only when the error changes, and NULL once all is read
 * again. OPTS may be NULL (defaults). Returns 0, -EINVAL or -ENOMEM; RET is
 * untouched on failure. */
int bbt_health_new(const struct bbt_driver_env *env, const struct bbt_health_options *opts,
                   struct bbt_driver **ret);

#endif
