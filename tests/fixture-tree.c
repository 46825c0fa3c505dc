/* Fixture trees under /tmp for tests of code that reads /proc and /sys under a root. */
#include "fixture-tree.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#define MAX_TREES 8

static char trees[MAX_TREES][64];
static size_t n_trees;

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static void remove_trees(void)
{
        size_t i;

        for (i = 0; i < n_trees; i++)
                nftw(trees[i], rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

const char *bbt_test_tree_new(const char *name)
{
        char *root;

        if (n_trees == MAX_TREES)
                FAIL("too many fixture trees");
        root = trees[n_trees];
        snprintf(root, sizeof(trees[0]), "/tmp/bbt-%.20s-XXXXXX", name);
        if (!mkdtemp(root))
                FAIL("mkdtemp %s: %s", root, strerror(errno));
        if (n_trees++ == 0)
                atexit(remove_trees);
        return root;
}

void bbt_test_tree_mkdirs(const char *root, const char *rel)
{
        char dir[512], *slash;

        snprintf(dir, sizeof(dir), "%s/%s", root, rel);
        for (slash = strchr(dir + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                mkdir(dir, 0755);
                *slash = '/';
        }
}

void bbt_test_tree_put_bytes(const char *root, const char *rel, const void *data, size_t len)
{
        char path[512], tmp[520];
        int fd;

        bbt_test_tree_mkdirs(root, rel);
        snprintf(path, sizeof(path), "%s/%s", root, rel);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                FAIL("open %s: %s", tmp, strerror(errno));
        ASSERT_EQ(write(fd, data, len), (ssize_t)len);
        close(fd);
        if (rename(tmp, path) < 0)
                FAIL("rename %s: %s", tmp, strerror(errno));
}

void bbt_test_tree_put(const char *root, const char *rel, const char *text)
{
        bbt_test_tree_put_bytes(root, rel, text, strlen(text));
}

void bbt_test_tree_remove(const char *root, const char *rel)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        if (nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
                FAIL("remove %s: %s", path, strerror(errno));
}
