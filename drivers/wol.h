/* Wake-on-LAN from the terminal's side: which NIC is the wired one (MAC, IPv4 subnet), and the magic packet sent to its subnet's broadcast address. */
#ifndef BBT_DRIVERS_WOL_H
#define BBT_DRIVERS_WOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BBT_WOL_PORT 9
#define BBT_WOL_PACKET_SIZE 102 /* 6 x 0xff, then the MAC 16 times */

struct bbt_wired_nic {
        char ifname[16];
        char mac[18];    /* aa:bb:cc:dd:ee:ff, lower case */
        bool has_ipv4;
        char ipv4[16];   /* dotted quad */
        int prefix;      /* 0..32 */
        char broadcast[16]; /* the subnet's broadcast address, dotted quad */
};

/* Finds the wired NIC: IFNAME when given (non-NULL, non-empty), otherwise the
 * interface that is up, not loopback, not wireless (ROOT/sys/class/net/IF/
 * wireless or phy80211), with an Ethernet MAC; a physical one (with a device
 * link under ROOT/sys/class/net) before a virtual one, one with an IPv4
 * address before one without, then by name. Returns 0, -ENODEV when there is
 * none, or -errno. */
int bbt_wired_nic_find(const char *root, const char *ifname, struct bbt_wired_nic *ret);

/* The magic packet for MAC ("aa:bb:cc:dd:ee:ff", either case) into OUT.
 * Returns 0 or -EINVAL. */
int bbt_wol_packet(const char *mac, uint8_t out[BBT_WOL_PACKET_SIZE]);

/* Sends the magic packet for MAC once, over UDP from NIC's IPv4 address to
 * its subnet's broadcast address, port BBT_WOL_PORT (SO_BROADCAST; no raw
 * socket, no privilege). Returns 0, or -errno with the reason in ERR. */
int bbt_wol_send(const struct bbt_wired_nic *nic, const char *mac, char *err, size_t err_size);

#endif
