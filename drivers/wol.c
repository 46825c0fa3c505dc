/* Wake-on-LAN: the wired NIC from getifaddrs(3) and sysfs, and the magic packet over a UDP broadcast. */
#include "wol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static bool sys_net_has(const char *root, const char *ifname, const char *entry)
{
        char path[PATH_MAX];
        struct stat st;

        if (snprintf(path, sizeof(path), "%s/sys/class/net/%s/%s", strcmp(root, "/") == 0 ? "" : root, ifname,
                     entry) >= (int)sizeof(path))
                return false;
        return stat(path, &st) == 0;
}

/* How good IFNAME is as the wired NIC: higher is better. */
static int rank(const struct bbt_wired_nic *n, bool physical)
{
        return (physical ? 2 : 0) + (n->has_ipv4 ? 1 : 0);
}

static int prefix_of(uint32_t mask)
{
        int n = 0;

        while (mask & 0x80000000u)
                n++, mask <<= 1;
        return n;
}

/* IFNAME's IPv4 address and subnet from the list, if it has one. */
static void ipv4_of(const struct ifaddrs *list, struct bbt_wired_nic *n)
{
        for (const struct ifaddrs *i = list; i; i = i->ifa_next) {
                uint32_t addr, mask, bcast;
                struct in_addr b;

                if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask ||
                    strcmp(i->ifa_name, n->ifname) != 0)
                        continue;
                addr = ntohl(((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
                mask = ntohl(((const struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
                bcast = addr | ~mask;
                n->has_ipv4 = true;
                n->prefix = prefix_of(mask);
                inet_ntop(AF_INET, &((const struct sockaddr_in *)i->ifa_addr)->sin_addr, n->ipv4, sizeof(n->ipv4));
                b.s_addr = htonl(bcast);
                inet_ntop(AF_INET, &b, n->broadcast, sizeof(n->broadcast));
                return;
        }
}

int bbt_wired_nic_find(const char *root, const char *ifname, struct bbt_wired_nic *ret)
{
        struct ifaddrs *list;
        struct bbt_wired_nic best = { 0 };
        int best_rank = -1;

        if (getifaddrs(&list) < 0)
                return -errno;
        for (const struct ifaddrs *i = list; i; i = i->ifa_next) {
                const struct sockaddr_ll *ll = (const struct sockaddr_ll *)i->ifa_addr;
                struct bbt_wired_nic n = { 0 };
                static const uint8_t zero[6];
                bool physical;
                int r;

                if (!ll || ll->sll_family != AF_PACKET || ll->sll_halen != 6 || memcmp(ll->sll_addr, zero, 6) == 0 ||
                    strlen(i->ifa_name) >= sizeof(n.ifname))
                        continue;
                if (ifname && *ifname) {
                        if (strcmp(i->ifa_name, ifname) != 0)
                                continue;
                } else if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK) ||
                           sys_net_has(root, i->ifa_name, "wireless") || sys_net_has(root, i->ifa_name, "phy80211")) {
                        continue;
                }
                snprintf(n.ifname, sizeof(n.ifname), "%s", i->ifa_name);
                snprintf(n.mac, sizeof(n.mac), "%02x:%02x:%02x:%02x:%02x:%02x", ll->sll_addr[0], ll->sll_addr[1],
                         ll->sll_addr[2], ll->sll_addr[3], ll->sll_addr[4], ll->sll_addr[5]);
                ipv4_of(list, &n);
                physical = sys_net_has(root, i->ifa_name, "device");
                r = rank(&n, physical);
                if (r > best_rank || (r == best_rank && strcmp(n.ifname, best.ifname) < 0)) {
                        best = n;
                        best_rank = r;
                }
        }
        freeifaddrs(list);
        if (best_rank < 0)
                return -ENODEV;
        *ret = best;
        return 0;
}

static int hex(char c)
{
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int bbt_wol_packet(const char *mac, uint8_t out[BBT_WOL_PACKET_SIZE])
{
        uint8_t m[6];

        if (!mac || strlen(mac) != 17)
                return -EINVAL;
        for (int i = 0; i < 6; i++) {
                int hi = hex(mac[3 * i]), lo = hex(mac[3 * i + 1]);

                if (hi < 0 || lo < 0 || (i < 5 && mac[3 * i + 2] != ':'))
                        return -EINVAL;
                m[i] = (uint8_t)(hi << 4 | lo);
        }
        memset(out, 0xff, 6);
        for (int i = 0; i < 16; i++)
                memcpy(out + 6 + 6 * i, m, 6);
        return 0;
}

int bbt_wol_send(const struct bbt_wired_nic *nic, const char *mac, char *err, size_t err_size)
{
        struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET, .sin_port = htons(BBT_WOL_PORT) };
        uint8_t packet[BBT_WOL_PACKET_SIZE];
        int fd, one = 1, r = 0;

        if (bbt_wol_packet(mac, packet) < 0) {
                snprintf(err, err_size, "not a MAC address: %s", mac ? mac : "(none)");
                return -EINVAL;
        }
        if (!nic->has_ipv4) {
                snprintf(err, err_size, "%s has no IPv4 address: no subnet to broadcast to", nic->ifname);
                return -EADDRNOTAVAIL;
        }
        inet_pton(AF_INET, nic->ipv4, &src.sin_addr);
        inet_pton(AF_INET, nic->broadcast, &dst.sin_addr);
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                snprintf(err, err_size, "socket: %s", strerror(errno));
                return r;
        }
        /* From the NIC's own address, so the packet leaves on its LAN. */
        if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
                r = -errno;
                snprintf(err, err_size, "%s (%s): %s", nic->ifname, nic->ipv4, strerror(errno));
        } else if (sendto(fd, packet, sizeof(packet), 0, (struct sockaddr *)&dst, sizeof(dst)) != (ssize_t)sizeof(packet)) {
                r = -errno;
                snprintf(err, err_size, "send to %s:%d on %s: %s", nic->broadcast, BBT_WOL_PORT, nic->ifname,
                         strerror(errno));
        }
        close(fd);
        return r;
}
