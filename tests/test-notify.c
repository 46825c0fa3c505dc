/* The systemd notification protocol: datagrams to $NOTIFY_SOCKET, watchdog settings. */
/* bbt-test: label=unit timeout=10 */
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bbt/notify.h"
#include "test.h"

static int bind_dgram(const char *name, bool abstract, struct sockaddr_un *sa)
{
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        size_t len = strlen(name);

        ASSERT(fd >= 0);
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, name, len);
        if (abstract)
                sa->sun_path[0] = '\0';
        ASSERT_OK(bind(fd, (struct sockaddr *)sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)));
        return fd;
}

static void expect_datagram(int fd, const char *want)
{
        char buf[256];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

        ASSERT_GT(n, 0);
        buf[n] = '\0';
        ASSERT_STR_EQ(buf, want);
}

TEST(path_socket)
{
        char dir[] = "/tmp/bbt-notify-XXXXXX", path[64];
        struct sockaddr_un sa;
        int fd;

        ASSERT(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/notify", dir);
        fd = bind_dgram(path, false, &sa);
        setenv("NOTIFY_SOCKET", path, 1);
        ASSERT_EQ(bbt_notify("READY=1\nSTATUS=reporting"), 1);
        expect_datagram(fd, "READY=1\nSTATUS=reporting");
        close(fd);
        unlink(path);
        rmdir(dir);
}

TEST(abstract_socket)
{
        char name[64];
        struct sockaddr_un sa;
        int fd;

        snprintf(name, sizeof(name), "@bbt-notify-test-%d", (int)getpid());
        fd = bind_dgram(name, true, &sa);
        setenv("NOTIFY_SOCKET", name, 1);
        ASSERT_EQ(bbt_notify("WATCHDOG=1"), 1);
        expect_datagram(fd, "WATCHDOG=1");
        close(fd);
}

TEST(no_service_manager_and_bad_socket)
{
        unsetenv("NOTIFY_SOCKET");
        ASSERT_EQ(bbt_notify("READY=1"), 0);
        setenv("NOTIFY_SOCKET", "relative/path", 1);
        ASSERT_EQ(bbt_notify("READY=1"), -EINVAL);
        setenv("NOTIFY_SOCKET", "/nonexistent/bbt/notify", 1);
        ASSERT_EQ(bbt_notify("READY=1"), -ENOENT);
}

TEST(watchdog_settings)
{
        char pid[32];

        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        ASSERT_EQ(bbt_notify_watchdog_usec(), 0);
        setenv("WATCHDOG_USEC", "30000000", 1);
        ASSERT_EQ(bbt_notify_watchdog_usec(), 30000000);
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        setenv("WATCHDOG_PID", pid, 1);
        ASSERT_EQ(bbt_notify_watchdog_usec(), 30000000);
        setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
        ASSERT_EQ(bbt_notify_watchdog_usec(), 0);
        unsetenv("WATCHDOG_PID");
        setenv("WATCHDOG_USEC", "30s", 1);
        ASSERT_EQ(bbt_notify_watchdog_usec(), 0);
}
