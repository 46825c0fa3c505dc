/* Health readings for heartbeats: uptime, load, cpu, memory, disk, temperature, links, clock. */
#ifndef BBT_HEALTH_H
#define BBT_HEALTH_H

#include <stdint.h>

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

#endif
