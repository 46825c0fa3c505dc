/* The renderers' table, and rendering a document with one of them to a stream or, atomically, to a file. */
#include "render.h"
#include "bbt/base.h"
#include "bbt/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const struct bbt_renderer bbt_render_text;
extern const struct bbt_renderer bbt_render_csv;
extern const struct bbt_renderer bbt_render_json;
extern const struct bbt_renderer bbt_render_xlsx;

/* Every output format; the first is the default. */
static const struct bbt_renderer *const renderers[] = {
        &bbt_render_text,
        &bbt_render_csv,
        &bbt_render_json,
        &bbt_render_xlsx,
};

const struct bbt_renderer *bbt_renderer_find(const char *name)
{
        for (size_t i = 0; name && i < BBT_ELEMENTSOF(renderers); i++)
                if (strcmp(renderers[i]->name, name) == 0)
                        return renderers[i];
        return NULL;
}

const struct bbt_renderer *bbt_renderer_at(size_t i)
{
        return i < BBT_ELEMENTSOF(renderers) ? renderers[i] : NULL;
}

int bbt_document_render(const struct bbt_document *doc, const struct bbt_renderer *how, bool chinese, FILE *out)
{
        int r;

        if (!doc || !how || !out)
                return -EINVAL;
        if (doc->error < 0)
                return doc->error;
        if (!how->render)
                return -ENOTSUP; /* a file-only format: bbt_document_render_file */
        r = how->render(doc, chinese, out);
        if (r < 0)
                return r;
        if (fflush(out) != 0 || ferror(out))
                return -EIO;
        return 0;
}

/* Writes DOC with the stream renderer HOW to the existing non-regular file
 * PATH (a FIFO, a terminal, /dev/stdout), where no temporary file can stand
 * in for it. */
static int render_in_place(const struct bbt_document *doc, const struct bbt_renderer *how, bool chinese,
                           const char *path)
{
        FILE *out = fopen(path, "we");
        int r;

        if (!out)
                return -errno;
        r = bbt_document_render(doc, how, chinese, out);
        if (fclose(out) != 0 && r == 0)
                r = -errno;
        return r;
}

/* The directory of PATH, malloc'ed: "." for a bare name. NULL on allocation failure. */
static char *dir_of(const char *path)
{
        const char *slash = strrchr(path, '/');

        if (!slash)
                return strdup(".");
        return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

/* The permissions a new file gets from open(2): 0666 less the umask. Not
 * thread-safe (umask has no read-only call); bbt-report is single-threaded. */
static mode_t new_file_mode(void)
{
        mode_t mask = umask(0);

        umask(mask);
        return 0666 & ~mask;
}

int bbt_document_render_file(const struct bbt_document *doc, const struct bbt_renderer *how, bool chinese,
                             const char *path, char *err, size_t err_size)
{
        struct stat st;
        char *dir = NULL, *tmp = NULL;
        bool exists;
        FILE *out;
        int fd = -1, r;

        if (!doc || !how || !path || !*path) {
                bbt_set_err(err, err_size, "no document, renderer or file name");
                return -EINVAL;
        }
        if (doc->error < 0) {
                bbt_set_err(err, err_size, "building the report: %s", strerror(-doc->error));
                return doc->error;
        }
        exists = stat(path, &st) == 0;
        if (exists && !S_ISREG(st.st_mode)) {
                if (!how->render) {
                        bbt_set_err(err, err_size, "%s: not a regular file, and %s can be written only to one", path,
                                 how->name);
                        return -EINVAL;
                }
                r = render_in_place(doc, how, chinese, path);
                if (r < 0)
                        bbt_set_err(err, err_size, "%s: %s", path, strerror(-r));
                return r;
        }

        dir = dir_of(path);
        tmp = dir ? malloc(strlen(dir) + sizeof("/.bbt-report.XXXXXX")) : NULL;
        if (!tmp) {
                r = -ENOMEM;
                goto out;
        }
        /* A dot file beside PATH: the rename is atomic within a file system. */
        sprintf(tmp, "%s/.bbt-report.XXXXXX", dir);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                free(tmp);
                tmp = NULL;
                goto out;
        }
        /* mkostemp makes it 0600: give it what PATH has, or would get from open(2). */
        if (fchmod(fd, exists ? st.st_mode & 07777 : new_file_mode()) < 0) {
                r = -errno;
                goto out;
        }
        if (how->render_file) {
                /* The library opens TMP by name (the same file as FD) and keeps
                 * its own temporary files beside it. */
                r = how->render_file(doc, chinese, tmp, dir);
        } else {
                out = fdopen(fd, "w");
                if (!out) {
                        r = -errno;
                        goto out;
                }
                r = bbt_document_render(doc, how, chinese, out);
                if (r == 0)
                        r = bbt_fsync_fd(fileno(out), false);
                fd = -1; /* closed by fclose */
                if (fclose(out) != 0 && r == 0)
                        r = -errno;
        }
        if (r == 0 && fd >= 0)
                r = bbt_fsync_fd(fd, false);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r == 0) {
                /* The rename itself made durable, as bbt_atomic_replace does. */
                int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                if (dfd >= 0) {
                        (void)bbt_fsync_fd(dfd, false);
                        close(dfd);
                }
        }
out:
        if (fd >= 0)
                close(fd);
        if (r < 0 && tmp)
                unlink(tmp);
        if (r < 0)
                bbt_set_err(err, err_size, "%s: %s", path, r == -ENOMEM ? "out of memory" : strerror(-r));
        free(tmp);
        free(dir);
        return r;
}
