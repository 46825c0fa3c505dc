/* Wake-on-LAN through a neighbour: which online terminal of the same school and
 * IPv4 subnet sends the magic packet for a terminal that is off (the county
 * server cannot broadcast into a school's LAN; docs/operations.md). */
#ifndef BBT_CTL_NEIGHBOUR_H
#define BBT_CTL_NEIGHBOUR_H

#include <stddef.h>

#include "store.h"

struct bbt_ctl_wake {
        char mac[18];                         /* the target's wired NIC */
        char ipv4[16];                        /* its last known address, "" if none */
        int prefix;
        char via[BBT_ID_MAX + 1];             /* the neighbour that sends the packet */
        char via_ipv4[16];
};

/* Picks the neighbour for COUNTY/SCHOOL/TERMINAL from the store: a terminal of
 * the same school, online, not the target, whose wired NIC has an IPv4 address
 * in the target's last known subnet (same prefix length and network); of
 * several, the one online the longest (the earliest online_since), then the
 * first by name. Returns 0 with *RET; -ENOENT with ERR saying why there is
 * none (the target's NIC or address is not known, no online neighbour in its
 * subnet); another negative errno from the store. */
int bbt_ctl_pick_neighbour(struct bbt_store *s, const char *county, const char *school, const char *terminal,
                           struct bbt_ctl_wake *ret, char *err, size_t err_size);

#endif
