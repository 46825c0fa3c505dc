/* Test harness: a TCP proxy on 127.0.0.1 between a client and a server, whose path a test can cut and restore. */
#include "tcp-proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "test.h"

#define MAX_CONNS 64
#define BUF_SIZE 16384

/*
 * One thread runs poll() over the listening socket, a wake-up pipe and both
 * sockets of every connection. Each direction has one buffer: a side is read
 * only while the buffer towards the other side is empty, so a slow reader
 * slows its writer down as TCP would. The test thread only sets the wanted
 * mode and waits until the proxy thread has applied it.
 */

struct conn {
        int cfd, sfd; /* client side, target side; -1 when closed */
        char up[BUF_SIZE], down[BUF_SIZE];
        size_t up_off, up_len, down_off, down_len;
};

struct bbt_test_proxy {
        int port, target_port;
        int listen_fd;
        int wake[2];
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t applied_cond;
        enum bbt_test_proxy_mode mode, wanted; /* mode: the thread's own */
        unsigned wanted_gen, applied_gen;
        bool quit;
        struct bbt_test_proxy_stats stats;
        struct conn *conns[MAX_CONNS];
};

static int listen_on(int port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd, one = 1;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

/* A blocking connect to the target: on loopback it completes or fails at once. */
static int connect_target(int port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        return fd;
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

static void conn_free(struct bbt_test_proxy *p, size_t i)
{
        struct conn *c = p->conns[i];

        if (!c)
                return;
        if (c->cfd >= 0) {
                pthread_mutex_lock(&p->lock);
                p->stats.open--;
                pthread_mutex_unlock(&p->lock);
        }
        close_fd(&c->cfd);
        close_fd(&c->sfd);
        free(c);
        p->conns[i] = NULL;
}

static void accept_one(struct bbt_test_proxy *p)
{
        struct conn *c;
        size_t i;
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0)
                return;
        pthread_mutex_lock(&p->lock);
        p->stats.accepted++;
        pthread_mutex_unlock(&p->lock);
        for (i = 0; i < MAX_CONNS && p->conns[i]; i++)
                ;
        c = i < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
        if (!c) {
                close(fd);
                return;
        }
        c->cfd = fd;
        c->sfd = -1;
        if (p->mode == BBT_TEST_PROXY_PASS) {
                c->sfd = connect_target(p->target_port);
                if (c->sfd < 0) { /* the target is down: so is the path */
                        close(fd);
                        free(c);
                        return;
                }
        }
        p->conns[i] = c;
        pthread_mutex_lock(&p->lock);
        p->stats.open++;
        if (c->sfd >= 0)
                p->stats.forwarded++;
        pthread_mutex_unlock(&p->lock);
}

/* Moves what FROM has into BUF (if empty), then BUF into TO. Returns false
 * once either side is closed or failed. */
static bool shovel(int from, int to, char *buf, size_t *off, size_t *len, short from_ev, short to_ev,
                   uint64_t *counter, pthread_mutex_t *lock)
{
        ssize_t n;

        if (*len == 0 && (from_ev & (POLLIN | POLLHUP | POLLERR))) {
                n = read(from, buf, BUF_SIZE);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                        return false;
                if (n > 0) {
                        *off = 0;
                        *len = (size_t)n;
                }
        }
        if (*len > 0) {
                /* MSG_NOSIGNAL: a peer gone must not SIGPIPE the test. */
                n = send(to, buf + *off, *len, MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return false;
                if (n > 0) {
                        *off += (size_t)n;
                        *len -= (size_t)n;
                        pthread_mutex_lock(lock);
                        *counter += (uint64_t)n;
                        pthread_mutex_unlock(lock);
                }
        }
        if (to_ev & (POLLERR | POLLHUP))
                return false;
        return true;
}

static void apply_mode(struct bbt_test_proxy *p, enum bbt_test_proxy_mode mode)
{
        size_t i;

        if (mode == BBT_TEST_PROXY_REFUSE || (mode == BBT_TEST_PROXY_PASS && p->mode == BBT_TEST_PROXY_BLACKHOLE))
                for (i = 0; i < MAX_CONNS; i++)
                        conn_free(p, i);
        if (mode == BBT_TEST_PROXY_REFUSE)
                close_fd(&p->listen_fd);
        else if (p->listen_fd < 0)
                p->listen_fd = listen_on(p->port); /* checked by the caller through applied_gen */
        p->mode = mode;
}

static void *proxy_thread(void *arg)
{
        struct bbt_test_proxy *p = arg;
        struct pollfd pfd[2 + 2 * MAX_CONNS];

        for (;;) {
                size_t n = 0, i, slot[2 * MAX_CONNS];
                bool pass;
                char drain[64];

                pthread_mutex_lock(&p->lock);
                if (p->quit) {
                        pthread_mutex_unlock(&p->lock);
                        break;
                }
                if (p->applied_gen != p->wanted_gen) {
                        enum bbt_test_proxy_mode want = p->wanted;
                        unsigned gen = p->wanted_gen;

                        pthread_mutex_unlock(&p->lock);
                        apply_mode(p, want);
                        pthread_mutex_lock(&p->lock);
                        p->applied_gen = gen;
                        pthread_cond_broadcast(&p->applied_cond);
                }
                pthread_mutex_unlock(&p->lock);
                pass = p->mode == BBT_TEST_PROXY_PASS;

                pfd[n++] = (struct pollfd){ .fd = p->wake[0], .events = POLLIN };
                pfd[n++] = (struct pollfd){ .fd = p->listen_fd, .events = POLLIN }; /* -1: ignored */
                for (i = 0; i < MAX_CONNS; i++) {
                        struct conn *c = p->conns[i];

                        if (!c)
                                continue;
                        /* In a blackhole nothing is read; a client that gives
                         * up is noticed (RDHUP) and let go, its target side
                         * stays open until the target times it out. */
                        slot[n - 2] = i;
                        pfd[n++] = (struct pollfd){
                                .fd = c->cfd,
                                .events = pass ? (short)((c->up_len ? 0 : POLLIN) | (c->down_len ? POLLOUT : 0))
                                               : (short)POLLRDHUP,
                        };
                        slot[n - 2] = i;
                        pfd[n++] = (struct pollfd){
                                .fd = c->sfd,
                                .events = pass ? (short)((c->down_len ? 0 : POLLIN) | (c->up_len ? POLLOUT : 0)) : 0,
                        };
                }
                if (poll(pfd, n, 1000) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[0].revents)
                        while (read(p->wake[0], drain, sizeof(drain)) > 0)
                                ;
                if (pfd[1].fd >= 0 && (pfd[1].revents & POLLIN))
                        accept_one(p);
                for (i = 2; i + 1 < n; i += 2) {
                        size_t k = slot[i - 2];
                        struct conn *c = p->conns[k];
                        short cev = pfd[i].revents, sev = pfd[i + 1].revents;

                        if (!c || c->cfd != pfd[i].fd)
                                continue; /* accepted in this round: not polled yet */
                        if (!pass) {
                                if (c->cfd >= 0 && (cev & (POLLRDHUP | POLLHUP | POLLERR))) {
                                        pthread_mutex_lock(&p->lock);
                                        p->stats.open--;
                                        pthread_mutex_unlock(&p->lock);
                                        close_fd(&c->cfd);
                                        if (c->sfd < 0)
                                                conn_free(p, k);
                                }
                                continue;
                        }
                        if (!shovel(c->cfd, c->sfd, c->up, &c->up_off, &c->up_len, cev, sev, &p->stats.bytes_up,
                                    &p->lock) ||
                            !shovel(c->sfd, c->cfd, c->down, &c->down_off, &c->down_len, sev, cev,
                                    &p->stats.bytes_down, &p->lock))
                                conn_free(p, k);
                }
                /* Client sides closed in a blackhole keep only their target side. */
                if (pass)
                        for (i = 0; i < MAX_CONNS; i++)
                                if (p->conns[i] && p->conns[i]->cfd < 0)
                                        conn_free(p, i);
        }
        for (size_t i = 0; i < MAX_CONNS; i++)
                conn_free(p, i);
        close_fd(&p->listen_fd);
        return NULL;
}

struct bbt_test_proxy *bbt_test_proxy_start(int target_port)
{
        struct bbt_test_proxy *p = calloc(1, sizeof(*p));
        int tries;

        if (!p)
                FAIL("out of memory");
        p->target_port = target_port;
        p->listen_fd = -1;
        for (tries = 0; tries < 10 && p->listen_fd < 0; tries++) {
                p->port = bbt_test_free_port();
                p->listen_fd = listen_on(p->port);
        }
        if (p->listen_fd < 0)
                FAIL("proxy: cannot listen on 127.0.0.1: %s", strerror(-p->listen_fd));
        if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0)
                FAIL("pipe2: %s", strerror(errno));
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->applied_cond, NULL);
        p->mode = p->wanted = BBT_TEST_PROXY_PASS;
        if (pthread_create(&p->thread, NULL, proxy_thread, p) != 0)
                FAIL("pthread_create failed");
        return p;
}

int bbt_test_proxy_port(const struct bbt_test_proxy *p)
{
        return p->port;
}

static void wake(struct bbt_test_proxy *p)
{
        char c = 1;

        while (write(p->wake[1], &c, 1) < 0 && errno == EINTR)
                ;
}

void bbt_test_proxy_set_mode(struct bbt_test_proxy *p, enum bbt_test_proxy_mode mode)
{
        unsigned gen;
        int listen_fd;

        pthread_mutex_lock(&p->lock);
        p->wanted = mode;
        gen = ++p->wanted_gen;
        pthread_mutex_unlock(&p->lock);
        wake(p);
        pthread_mutex_lock(&p->lock);
        while (p->applied_gen != gen)
                pthread_cond_wait(&p->applied_cond, &p->lock);
        listen_fd = p->listen_fd;
        pthread_mutex_unlock(&p->lock);
        if (mode != BBT_TEST_PROXY_REFUSE && listen_fd < 0)
                FAIL("proxy: cannot listen on 127.0.0.1:%d again: %s", p->port, strerror(-listen_fd));
}

void bbt_test_proxy_cut(struct bbt_test_proxy *p)
{
        bbt_test_proxy_set_mode(p, BBT_TEST_PROXY_REFUSE);
}

void bbt_test_proxy_restore(struct bbt_test_proxy *p)
{
        bbt_test_proxy_set_mode(p, BBT_TEST_PROXY_PASS);
}

void bbt_test_proxy_get_stats(struct bbt_test_proxy *p, struct bbt_test_proxy_stats *ret)
{
        pthread_mutex_lock(&p->lock);
        *ret = p->stats;
        pthread_mutex_unlock(&p->lock);
}

void bbt_test_proxy_stop(struct bbt_test_proxy *p)
{
        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->quit = true;
        pthread_mutex_unlock(&p->lock);
        wake(p);
        pthread_join(p->thread, NULL);
        close(p->wake[0]);
        close(p->wake[1]);
        pthread_cond_destroy(&p->applied_cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
}
