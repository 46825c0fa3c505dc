/* Small durable-file helpers shared by the daemons: full writes, fsync with EINTR, atomic replace. */
#ifndef BBT_FILEIO_H
#define BBT_FILEIO_H

#include <stdbool.h>
#include <stddef.h>

#include "bbt/base.h"

/* Writes all LEN bytes of BUF to FD, retrying on EINTR and short writes.
 * Returns 0, or -errno (-EIO if write() makes no progress). */
BBT_API int bbt_write_full(int fd, const void *buf, size_t len);

/* fdatasync() (DATA_ONLY) or fsync() of FD, retried on EINTR. Returns 0 or -errno. */
BBT_API int bbt_fsync_fd(int fd, bool data_only);

/* Replaces NAME in the directory DIRFD with LEN bytes of DATA so that a crash
 * leaves either the old or the new file: writes TMP_NAME (mode 0600), syncs
 * it, renames it over NAME and syncs the directory. Returns 0, or -errno with
 * TMP_NAME removed and NAME untouched. */
BBT_API int bbt_atomic_replace(int dirfd, const char *tmp_name, const char *name, const void *data,
                               size_t len);

/* Reads the first line of the file at PATH (a password file) into BUF (SIZE
 * bytes, NUL-terminated, line end dropped; an empty file gives ""). Returns 0
 * or -errno. */
BBT_API int bbt_read_secret_file(const char *path, char *buf, size_t size);

/* Whether users other than the file's owner can read the file at PATH (a
 * password or private key): its mode lets "others" read, or lets its group
 * read and that group is neither this process's effective group nor root's.
 * Returns 0 when only the owner (and that group) can, -EPERM when others can,
 * with the permission bits in *RET_MODE (may be NULL), or -errno from stat(). */
BBT_API int bbt_private_file_check(const char *path, unsigned *ret_mode);

#endif
