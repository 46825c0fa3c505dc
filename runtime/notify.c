/* The systemd notification protocol: one datagram to $NOTIFY_SOCKET (sd_notify(3)). */
#include "bbt/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int bbt_notify(const char *state)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len;
        ssize_t n;
        int fd;

        if (!path || !*path)
                return 0;
        len = strlen(path);
        if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, len);
        if (path[0] == '@')
                sa.sun_path[0] = '\0'; /* an abstract socket */
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
        n = n < 0 ? -errno : 1;
        close(fd);
        return (int)n;
}

uint64_t bbt_notify_watchdog_usec(void)
{
        const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
        unsigned long long v;
        char *end;

        if (!usec)
                return 0;
        if (pid) {
                errno = 0;
                v = strtoull(pid, &end, 10);
                if (errno || *end || end == pid || v != (unsigned long long)getpid())
                        return 0;
        }
        errno = 0;
        v = strtoull(usec, &end, 10);
        if (errno || *end || end == usec)
                return 0;
        return v;
}
