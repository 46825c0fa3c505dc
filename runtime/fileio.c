/* Durable-file helpers: full writes, fsync retried on EINTR, atomic replace through rename. */
#include "bbt/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int bbt_write_full(int fd, const void *buf, size_t len)
{
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int bbt_fsync_fd(int fd, bool data_only)
{
        while ((data_only ? fdatasync(fd) : fsync(fd)) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

int bbt_atomic_replace(int dirfd, const char *tmp_name, const char *name, const void *data, size_t len)
{
        int fd, r;

        fd = openat(dirfd, tmp_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        r = bbt_write_full(fd, data, len);
        if (r < 0)
                goto fail;
        r = bbt_fsync_fd(fd, true);
        if (r < 0)
                goto fail;
        r = close(fd) < 0 ? -errno : 0;
        fd = -1;
        if (r < 0)
                goto fail_unlink;
        if (renameat(dirfd, tmp_name, dirfd, name) < 0) {
                r = -errno;
                goto fail_unlink;
        }
        /* Only once the rename is on disk may the new contents be relied upon. */
        return bbt_fsync_fd(dirfd, false);

fail:
        close(fd);
fail_unlink:
        unlinkat(dirfd, tmp_name, 0);
        return r;
}

int bbt_read_secret_file(const char *path, char *buf, size_t size)
{
        FILE *f = fopen(path, "re");

        if (!f)
                return -errno;
        if (!fgets(buf, (int)size, f))
                buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        return 0;
}

int bbt_private_file_check(const char *path, unsigned *ret_mode)
{
        struct stat st;
        bool others;

        if (stat(path, &st) < 0)
                return -errno;
        others = (st.st_mode & S_IROTH) ||
                 ((st.st_mode & S_IRGRP) && st.st_gid != getegid() && st.st_gid != 0);
        if (ret_mode)
                *ret_mode = (unsigned)(st.st_mode & 07777);
        return others ? -EPERM : 0;
}
