/* Health readings for heartbeats, read under a root directory so tests can use a fixture tree, behind the driver interface. */
#include "health.h"
#include "bbt/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <unistd.h>

/* Reads ROOT/REL (at most SIZE - 1 bytes) into BUF as a C string. */
static int read_file(const char *root, const char *rel, char *buf, size_t size)
{
        char path[4096];
        ssize_t n;
        int fd;

        if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        do
                n = read(fd, buf, size - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                n = -errno;
                close(fd);
                return (int)n;
        }
        close(fd);
        buf[n] = '\0';
        return 0;
}

static int read_uptime(const char *root, int64_t *ret)
{
        char buf[128], *end;
        double up;
        int r = read_file(root, "proc/uptime", buf, sizeof(buf));

        if (r < 0)
                return r;
        errno = 0;
        up = strtod(buf, &end);
        if (errno || end == buf || up < 0)
                return -EBADMSG;
        *ret = (int64_t)up;
        return 0;
}

static int read_loadavg(const char *root, double load[3])
{
        char buf[256];
        int r = read_file(root, "proc/loadavg", buf, sizeof(buf));

        if (r < 0)
                return r;
        if (sscanf(buf, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
                return -EBADMSG;
        for (int i = 0; i < 3; i++)
                if (!(load[i] >= 0 && load[i] <= 1000000))
                        return -EBADMSG;
        return 0;
}

/* cpu % of all cores since the previous call; 0 on the first. */
static void read_cpu(struct bbt_health *h, const char *root, double *ret)
{
        unsigned long long v[10] = { 0 };
        uint64_t busy, total = 0, d_total;
        char buf[1024];
        int n, i;

        *ret = 0;
        if (read_file(root, "proc/stat", buf, sizeof(buf)) < 0)
                return;
        n = sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
        if (n < 4)
                return;
        /* guest and guest_nice (8, 9) are already inside user and nice. */
        for (i = 0; i < n && i < 8; i++)
                total += v[i];
        busy = total - v[3] - (n > 4 ? v[4] : 0); /* minus idle and iowait */
        if (h->cpu_total && total > h->cpu_total && busy >= h->cpu_busy) {
                d_total = total - h->cpu_total;
                *ret = 100.0 * (double)(busy - h->cpu_busy) / (double)d_total;
                if (*ret > 100)
                        *ret = 100;
        }
        h->cpu_busy = busy;
        h->cpu_total = total;
}

static int read_meminfo(const char *root, int64_t *ret_total, int64_t *ret_available)
{
        char buf[8192], *line;
        long long total = -1, avail = -1, kb;
        int r = read_file(root, "proc/meminfo", buf, sizeof(buf));

        if (r < 0)
                return r;
        for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
                        total = kb;
                else if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
                        avail = kb;
        }
        if (total < 0 || avail < 0)
                return -EBADMSG;
        *ret_total = total * 1024;
        *ret_available = avail * 1024;
        return 0;
}

static int read_fs(const char *path, struct bbt_fs_usage *ret)
{
        struct statvfs st;

        if (statvfs(path, &st) < 0)
                return -errno;
        ret->total = (int64_t)st.f_blocks * (int64_t)st.f_frsize;
        ret->free = (int64_t)st.f_bavail * (int64_t)st.f_frsize;
        return 0;
}

/* Offers one reading in millidegrees: kept if it is plausible and the hottest so far. */
static void offer_temp(struct bbt_health *h, struct bbt_hb *hb, long milli, const char *what, const char *name)
{
        if (milli < -100000 || milli > 300000)
                return;
        if (hb->has_temp && milli / 1000.0 <= hb->temp_max)
                return;
        hb->has_temp = true;
        hb->temp_max = milli / 1000.0;
        snprintf(h->temp_source, sizeof(h->temp_source), "%.24s (%.32s)", what, name);
        hb->temp_source = h->temp_source;
}

static bool read_milli(const char *root, const char *rel, long *ret)
{
        char buf[64], *end;
        long v;

        if (read_file(root, rel, buf, sizeof(buf)) < 0)
                return false;
        errno = 0;
        v = strtol(buf, &end, 10);
        if (errno || end == buf)
                return false;
        *ret = v;
        return true;
}

/* Every hwmon temperature input (temp*_input), named "hwmonN/tempK (chip)". */
static void read_hwmon(struct bbt_health *h, const char *root, struct bbt_hb *hb)
{
        char dir_path[4096], rel[512], name[48], what[64];
        struct dirent *de, *te;
        DIR *dir, *sub;

        if (snprintf(dir_path, sizeof(dir_path), "%s/sys/class/hwmon", root) >= (int)sizeof(dir_path))
                return;
        dir = opendir(dir_path);
        if (!dir)
                return;
        while ((de = readdir(dir))) {
                if (strncmp(de->d_name, "hwmon", 5) != 0)
                        continue;
                snprintf(rel, sizeof(rel), "sys/class/hwmon/%.200s/name", de->d_name);
                if (read_file(root, rel, name, sizeof(name)) < 0)
                        snprintf(name, sizeof(name), "?");
                name[strcspn(name, "\n")] = '\0';
                snprintf(rel, sizeof(rel), "%s/sys/class/hwmon/%.200s", root, de->d_name);
                sub = opendir(rel);
                if (!sub)
                        continue;
                while ((te = readdir(sub))) {
                        size_t n = strlen(te->d_name);
                        long milli;

                        if (strncmp(te->d_name, "temp", 4) != 0 || n < 10 ||
                            strcmp(te->d_name + n - 6, "_input") != 0)
                                continue;
                        snprintf(rel, sizeof(rel), "sys/class/hwmon/%.200s/%.64s", de->d_name, te->d_name);
                        if (!read_milli(root, rel, &milli))
                                continue;
                        snprintf(what, sizeof(what), "%.12s/%.*s", de->d_name, (int)(n - 6 > 10 ? 10 : n - 6),
                                 te->d_name);
                        offer_temp(h, hb, milli, what, name);
                }
                closedir(sub);
        }
        closedir(dir);
}

/* The hottest thermal zone, in degrees Celsius, and its type as the source. */
static void read_temp(struct bbt_health *h, const char *root, struct bbt_hb *hb)
{
        char dir_path[4096], rel[512], type[48];
        struct dirent *de;
        DIR *dir;

        if (snprintf(dir_path, sizeof(dir_path), "%s/sys/class/thermal", root) >= (int)sizeof(dir_path))
                return;
        dir = opendir(dir_path);
        if (!dir)
                return;
        while ((de = readdir(dir))) {
                long milli;

                if (strncmp(de->d_name, "thermal_zone", 12) != 0)
                        continue;
                snprintf(rel, sizeof(rel), "sys/class/thermal/%.200s/temp", de->d_name);
                if (!read_milli(root, rel, &milli))
                        continue;
                snprintf(rel, sizeof(rel), "sys/class/thermal/%.200s/type", de->d_name);
                if (read_file(root, rel, type, sizeof(type)) < 0)
                        snprintf(type, sizeof(type), "?");
                type[strcspn(type, "\n")] = '\0';
                offer_temp(h, hb, milli, de->d_name, type);
        }
        closedir(dir);
}

static bool ifname_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 15)
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-") == n;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(a, b);
}

/* Link state of every interface but loopback, by name, from sysfs operstate. */
static void read_net(struct bbt_health *h, const char *root, struct bbt_hb *hb)
{
        char dir_path[4096], rel[128], buf[32];
        struct dirent *de;
        size_t n = 0, i;
        DIR *dir;

        hb->n_net = 0;
        if (snprintf(dir_path, sizeof(dir_path), "%s/sys/class/net", root) >= (int)sizeof(dir_path))
                return;
        dir = opendir(dir_path);
        if (!dir)
                return;
        while ((de = readdir(dir)) && n < BBT_HB_NET_MAX) {
                if (de->d_name[0] == '.' || strcmp(de->d_name, "lo") == 0 || !ifname_ok(de->d_name))
                        continue;
                snprintf(h->ifnames[n], sizeof(h->ifnames[n]), "%.15s", de->d_name);
                n++;
        }
        closedir(dir);
        qsort(h->ifnames, n, sizeof(h->ifnames[0]), compare_names);
        for (i = 0; i < n; i++) {
                snprintf(rel, sizeof(rel), "sys/class/net/%s/operstate", h->ifnames[i]);
                hb->net[i].ifname = h->ifnames[i];
                hb->net[i].up = read_file(root, rel, buf, sizeof(buf)) == 0 && strncmp(buf, "up", 2) == 0;
        }
        hb->n_net = n;
}

static int clock_synced_adjtimex(void)
{
        struct timex tx = { .modes = 0 };
        int state = adjtimex(&tx);

        if (state < 0)
                return -errno;
        return state != TIME_ERROR && !(tx.status & STA_UNSYNC);
}

int bbt_health_read(struct bbt_health *h, const char *root, const char *spool_dir, struct bbt_hb *hb,
                    char *err, size_t err_size)
{
        const char *failed = NULL;
        char path[4096];
        int r, first = 0;

#define NOTE(expr, what)                                      \
        do {                                                  \
                r = (expr);                                   \
                if (r < 0 && !first) {                        \
                        first = r;                            \
                        failed = (what);                      \
                }                                             \
        } while (0)

        NOTE(read_uptime(root, &hb->uptime), "proc/uptime");
        NOTE(read_loadavg(root, hb->load), "proc/loadavg");
        read_cpu(h, root, &hb->cpu);
        NOTE(read_meminfo(root, &hb->mem_total, &hb->mem_available), "proc/meminfo");
        NOTE(read_fs(root, &hb->disk_root), "statvfs of the root");
        /* disk.spool only when the spool is on another file system than the root. */
        hb->has_disk_spool = false;
        if (spool_dir) {
                struct stat st_root, st_spool;

                if (stat(root, &st_root) == 0 && stat(spool_dir, &st_spool) == 0 &&
                    st_root.st_dev != st_spool.st_dev)
                        hb->has_disk_spool = read_fs(spool_dir, &hb->disk_spool) == 0;
        }
        hb->has_temp = false;
        hb->temp_source = NULL;
        read_temp(h, root, hb);
        read_hwmon(h, root, hb);
        read_net(h, root, hb);
        r = h->clock_synced ? h->clock_synced() : clock_synced_adjtimex();
        hb->clock_synced = r > 0;
#undef NOTE
        if (first && err && err_size) {
                snprintf(path, sizeof(path), "%s/%s", strcmp(root, "/") == 0 ? "" : root, failed);
                snprintf(err, err_size, "%s: %s", path, strerror(-first));
        }
        return first;
}

/* ---- the driver ---- */

struct health {
        struct bbt_driver base;
        struct bbt_health readings;
        char *spool_dir;
        char error[256]; /* what was last reported through events->problem ("": nothing) */
        uv_timer_t stop_handle;
        bool stopping;
        void (*done)(void *userdata);
        void *done_userdata;
};

static int health_start(struct bbt_driver *base)
{
        /* Nothing to watch: everything is read when a heartbeat is due. */
        return 0;
}

static void stop_closed_cb(uv_handle_t *h)
{
        struct health *hd = bbt_container_of((uv_timer_t *)h, struct health, stop_handle);

        if (hd->done)
                hd->done(hd->done_userdata);
}

static void health_stop(struct bbt_driver *base, void (*done)(void *userdata), void *userdata)
{
        struct health *hd = bbt_container_of(base, struct health, base);

        if (hd->stopping)
                return;
        hd->stopping = true;
        hd->done = done;
        hd->done_userdata = userdata;
        if (!base->env.loop) {
                if (done)
                        done(userdata);
                return;
        }
        /* No handle of its own: one only so that DONE comes from the loop. */
        uv_timer_init(base->env.loop, &hd->stop_handle);
        uv_close((uv_handle_t *)&hd->stop_handle, stop_closed_cb);
}

static void health_heartbeat(struct bbt_driver *base, struct bbt_hb *hb)
{
        struct health *hd = bbt_container_of(base, struct health, base);
        const struct bbt_driver_events *ev = base->env.events;
        char err[200] = "", what[sizeof(hd->error)];
        int r;

        r = bbt_health_read(&hd->readings, base->env.root, hd->spool_dir, hb, err, sizeof(err));
        snprintf(what, sizeof(what), "%s (reported as 0 until it can be read)", err);
        if (r < 0 && strcmp(what, hd->error) != 0) {
                snprintf(hd->error, sizeof(hd->error), "%s", what);
                if (ev && ev->problem)
                        ev->problem(ev->userdata, "health", hd->error);
        } else if (r == 0 && hd->error[0]) {
                hd->error[0] = '\0';
                if (ev && ev->problem)
                        ev->problem(ev->userdata, "health", NULL);
        }
}

static int health_probe(struct bbt_driver *base, FILE *out)
{
        struct health *hd = bbt_container_of(base, struct health, base);
        struct bbt_health fresh = { .clock_synced = hd->readings.clock_synced };
        struct bbt_hb hb = { 0 };
        char err[512] = "";
        int r;

        r = bbt_health_read(&fresh, base->env.root, hd->spool_dir, &hb, err, sizeof(err));
        fprintf(out, "uptime %" PRId64 " s, load %.2f %.2f %.2f, memory %" PRId64 " of %" PRId64 " bytes available\n",
                hb.uptime, hb.load[0], hb.load[1], hb.load[2], hb.mem_available, hb.mem_total);
        fprintf(out, "disk /: %" PRId64 " of %" PRId64 " bytes free; clock %s\n", hb.disk_root.free,
                hb.disk_root.total, hb.clock_synced ? "synchronised" : "NOT synchronised");
        if (hb.has_temp)
                fprintf(out, "hottest sensor: %.1f C (%s)\n", hb.temp_max, hb.temp_source);
        for (size_t i = 0; i < hb.n_net; i++)
                fprintf(out, "network %s: %s\n", hb.net[i].ifname, hb.net[i].up ? "up" : "down");
        /* Not a device problem: the heartbeat goes out with what could be read. */
        if (r < 0)
                fprintf(out, "problem: %s\n", err);
        return ferror(out) ? -EIO : 0;
}

static void health_destroy(struct bbt_driver *base)
{
        struct health *hd;

        if (!base)
                return;
        hd = bbt_container_of(base, struct health, base);
        bbt_driver_release(&hd->base);
        free(hd->spool_dir);
        free(hd);
}

static const struct bbt_driver_ops health_ops = {
        .name = "health",
        .start = health_start,
        .stop = health_stop,
        .probe = health_probe,
        .destroy = health_destroy,
        .heartbeat = health_heartbeat,
};

int bbt_health_new(const struct bbt_driver_env *env, const struct bbt_health_options *opts,
                   struct bbt_driver **ret)
{
        struct health *hd;

        if (!env || !ret)
                return -EINVAL;
        hd = calloc(1, sizeof(*hd));
        if (!hd)
                return -ENOMEM;
        if (opts && opts->spool_dir) {
                hd->spool_dir = strdup(opts->spool_dir);
                if (!hd->spool_dir) {
                        free(hd);
                        return -ENOMEM;
                }
        }
        if (bbt_driver_init(&hd->base, &health_ops, env) < 0) {
                free(hd->spool_dir);
                free(hd);
                return -ENOMEM;
        }
        hd->readings.clock_synced = opts ? opts->clock_synced : NULL;
        *ret = &hd->base;
        return 0;
}
