/* Test harness: a TCP proxy on 127.0.0.1 between a client and a server, whose path a test can cut and restore. */
#ifndef BBT_TEST_TCP_PROXY_H
#define BBT_TEST_TCP_PROXY_H

#include <stdint.h>

/* How the path behaves. */
enum bbt_test_proxy_mode {
        BBT_TEST_PROXY_PASS,      /* bytes are forwarded both ways */
        BBT_TEST_PROXY_REFUSE,    /* connections are closed; new ones are refused (RST to the SYN) */
        BBT_TEST_PROXY_BLACKHOLE, /* connections stay open and new ones are accepted, but no byte moves */
};

struct bbt_test_proxy_stats {
        uint64_t accepted;   /* connections accepted, in any mode */
        uint64_t forwarded;  /* connections forwarded to the target */
        uint64_t bytes_up;   /* client to target */
        uint64_t bytes_down; /* target to client */
        uint64_t open;       /* client connections open now */
};

struct bbt_test_proxy;

/* Starts a proxy in its own thread: it listens on 127.0.0.1 and a free port
 * and forwards each connection to 127.0.0.1:TARGET_PORT. Fails the test if it
 * cannot. Free it with bbt_test_proxy_stop(). */
struct bbt_test_proxy *bbt_test_proxy_start(int target_port);
/* The port clients connect to; it stays the same across cut and restore. */
int bbt_test_proxy_port(const struct bbt_test_proxy *p);
/* Switches the mode and returns once the proxy thread applied it: after
 * REFUSE every connection is closed (both sides); after PASS (restore) the
 * connections held in BLACKHOLE are closed (like a NAT that forgot them) and
 * new ones are forwarded again. */
void bbt_test_proxy_set_mode(struct bbt_test_proxy *p, enum bbt_test_proxy_mode mode);
void bbt_test_proxy_cut(struct bbt_test_proxy *p);
void bbt_test_proxy_restore(struct bbt_test_proxy *p);
void bbt_test_proxy_get_stats(struct bbt_test_proxy *p, struct bbt_test_proxy_stats *ret);
/* Closes every connection, stops the thread and frees P. NULL is fine. */
void bbt_test_proxy_stop(struct bbt_test_proxy *p);

#endif
