/* bbt-web's static files: the dashboard from [web] static_dir, with their media types, never outside that directory. */
#include "web_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

static const struct {
        const char *ext, *type;
} media_types[] = {
        { "html", "text/html; charset=utf-8" },
        { "js", "text/javascript; charset=utf-8" },
        { "mjs", "text/javascript; charset=utf-8" },
        { "css", "text/css; charset=utf-8" },
        { "json", "application/json" },
        { "map", "application/json" },
        { "svg", "image/svg+xml" },
        { "png", "image/png" },
        { "jpg", "image/jpeg" },
        { "ico", "image/x-icon" },
        { "woff2", "font/woff2" },
        { "woff", "font/woff" },
        { "txt", "text/plain; charset=utf-8" },
        { "yaml", "application/yaml" },
};

static const char *media_type(const char *path)
{
        const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');

        if (dot && (!slash || dot > slash))
                for (size_t i = 0; i < sizeof(media_types) / sizeof(media_types[0]); i++)
                        if (strcasecmp(dot + 1, media_types[i].ext) == 0)
                                return media_types[i].type;
        return "application/octet-stream";
}

/* Whether URL is a plain relative path under the directory: segments of
 * printable characters, none empty, "." or "..", no backslash. */
static bool safe_path(const char *url)
{
        const char *seg = url;

        if (*url != '/')
                return false;
        for (const char *p = url + 1;; p++) {
                if (*p == '/' || *p == '\0') {
                        size_t len = (size_t)(p - seg - 1);

                        if ((len == 0 && *p) || (len == 1 && seg[1] == '.') || (len == 2 && seg[1] == '.' && seg[2] == '.'))
                                return false;
                        if (!*p)
                                return true;
                        seg = p;
                } else if ((unsigned char)*p < 0x20 || *p == '\\' || *p == 0x7f) {
                        return false;
                }
        }
}

/* REL under DFD, resolved beneath it with no symbolic link anywhere
 * (openat2: Linux 5.6). */
static int open_beneath(int dfd, const char *rel)
{
        struct open_how how = { .flags = O_RDONLY | O_CLOEXEC,
                                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };

        return (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
}

enum MHD_Result web_static(struct web_call *k)
{
        const char *dir = k->w->cfg->web_static_dir;
        char rel[1024];
        struct stat st;
        int dfd, fd;

        if (strcmp(k->method, "GET") != 0 && strcmp(k->method, "HEAD") != 0)
                return web_method_not_allowed(k, "GET, HEAD");
        if (!dir || !safe_path(k->url) || strlen(k->url) >= sizeof(rel) - 16)
                return web_error(k, 404, "not_found", "no such file");
        snprintf(rel, sizeof(rel), "%s%s", k->url + 1, k->url[strlen(k->url) - 1] == '/' || !k->url[1] ? "index.html" : "");
        /* Relative to the directory, never following a link out of it. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return web_error(k, 404, "not_found", "no such file");
        fd = open_beneath(dfd, rel);
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
                int sub = fd;

                fd = open_beneath(sub, "index.html");
                close(sub);
                snprintf(rel + strlen(rel), sizeof(rel) - strlen(rel), "/index.html");
        }
        close(dfd);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                if (fd >= 0)
                        close(fd);
                return web_error(k, 404, "not_found", "no such file");
        }
        return web_send_fd(k, media_type(rel), fd, (uint64_t)st.st_size, NULL, true);
}
