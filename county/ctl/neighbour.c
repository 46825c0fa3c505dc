/* Wake-on-LAN through a neighbour: the choice of the terminal that sends the packet. */
#include "neighbour.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/base.h"

struct school_nets {
        struct bbt_store_net *nets;
        size_t n, cap;
        int r;
};

static int net_cb(void *u, const struct bbt_store_net *n)
{
        struct school_nets *sn = u;

        if (sn->n == sn->cap) {
                size_t cap = sn->cap ? sn->cap * 2 : 16;
                struct bbt_store_net *p = realloc(sn->nets, cap * sizeof(*p));

                if (!p)
                        return sn->r = -ENOMEM;
                sn->nets = p, sn->cap = cap;
        }
        sn->nets[sn->n++] = *n;
        return 0;
}

struct pick {
        const char *terminal;
        const struct school_nets *nets;
        int64_t target_id;
        uint32_t network, mask;
        int prefix;
        bool found;
        int64_t best_since;
        struct bbt_ctl_wake *ret;
};

static const struct bbt_store_net *net_of(const struct school_nets *sn, int64_t id)
{
        for (size_t i = 0; i < sn->n; i++)
                if (sn->nets[i].terminal_id == id)
                        return &sn->nets[i];
        return NULL;
}

static bool parse_ipv4(const char *s, uint32_t *ret)
{
        struct in_addr a;

        if (!s[0] || inet_pton(AF_INET, s, &a) != 1)
                return false;
        *ret = ntohl(a.s_addr);
        return true;
}

static int target_cb(void *u, const struct bbt_store_terminal *t)
{
        struct pick *p = u;

        if (strcmp(t->terminal, p->terminal) == 0)
                p->target_id = t->id;
        return 0;
}

/* Terminals come by id: the first of equal online_since is the first inserted. */
static int candidate_cb(void *u, const struct bbt_store_terminal *t)
{
        struct pick *p = u;
        const struct bbt_store_net *n;
        uint32_t addr;

        if (t->id == p->target_id || !t->online || !(n = net_of(p->nets, t->id)) || n->prefix != p->prefix ||
            !parse_ipv4(n->ipv4, &addr) || (addr & p->mask) != p->network)
                return 0;
        if (p->found && (t->online_since_ms > p->best_since ||
                         (t->online_since_ms == p->best_since && strcmp(t->terminal, p->ret->via) >= 0)))
                return 0;
        p->found = true;
        p->best_since = t->online_since_ms;
        snprintf(p->ret->via, sizeof(p->ret->via), "%s", t->terminal);
        snprintf(p->ret->via_ipv4, sizeof(p->ret->via_ipv4), "%s", n->ipv4);
        return 0;
}

int bbt_ctl_pick_neighbour(struct bbt_store *s, const char *county, const char *school, const char *terminal,
                           struct bbt_ctl_wake *ret, char *err, size_t err_size)
{
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct school_nets sn = { 0 };
        struct pick p = { .terminal = terminal, .nets = &sn, .ret = ret };
        const struct bbt_store_net *tn;
        uint32_t addr;
        int r;

        memset(ret, 0, sizeof(*ret));
        scope.county = county, scope.school = school;
        if ((r = bbt_store_terminals_each_in(s, &scope, target_cb, &p)) < 0)
                goto store_error;
        if (!p.target_id) {
                bbt_set_err(err, err_size, "not in the store (never seen): its MAC address is not known");
                return -ENOENT;
        }
        if ((r = bbt_store_nets_each_in(s, &scope, net_cb, &sn)) < 0 || (r = sn.r) < 0)
                goto store_error;
        if (!(tn = net_of(&sn, p.target_id))) {
                free(sn.nets);
                bbt_set_err(err, err_size, "its inventory names no wired NIC: its MAC address is not known");
                return -ENOENT;
        }
        snprintf(ret->mac, sizeof(ret->mac), "%s", tn->mac);
        snprintf(ret->ipv4, sizeof(ret->ipv4), "%s", tn->ipv4);
        ret->prefix = tn->prefix;
        if (tn->prefix < 0 || tn->prefix > 32 || !parse_ipv4(tn->ipv4, &addr)) {
                free(sn.nets);
                bbt_set_err(err, err_size, "no IPv4 address known for its NIC (MAC %s): its subnet is not known",
                            ret->mac);
                return -ENOENT;
        }
        p.prefix = tn->prefix;
        p.mask = tn->prefix ? ~(uint32_t)0 << (32 - tn->prefix) : 0;
        p.network = addr & p.mask;
        r = bbt_store_terminals_each_in(s, &scope, candidate_cb, &p);
        free(sn.nets);
        if (r < 0)
                goto store_error;
        if (!p.found) {
                bbt_set_err(err, err_size, "no online terminal of school %s in its subnet %s/%d to send the packet",
                            school, ret->ipv4, ret->prefix);
                return -ENOENT;
        }
        return 0;
store_error:
        free(sn.nets);
        bbt_set_err(err, err_size, "store: %s", bbt_store_error(s));
        return r;
}
