/* Powering the terminal off through logind (sd-bus), or a dry run that only records the request. */
#include "power.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

static int logind_poweroff(const char *target, char *err, size_t err_size)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus *bus = NULL;
        int r;

        (void)target;
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                snprintf(err, err_size, "cannot connect to the system bus: %s", strerror(-r));
                return r;
        }
        /* interactive = false: polkit must grant it without asking anyone. */
        r = sd_bus_call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1",
                               "org.freedesktop.login1.Manager", "PowerOff", &e, NULL, "b", 0);
        if (r < 0)
                snprintf(err, err_size, "logind PowerOff: %s%s%s", e.name ? e.name : strerror(-r),
                         e.message ? ": " : "", e.message ? e.message : "");
        sd_bus_error_free(&e);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? r : 0;
}

const struct bbt_power_ops bbt_power_logind = { "logind", logind_poweroff };

static int dry_run_poweroff(const char *target, char *err, size_t err_size)
{
        struct timespec now;
        char line[64];
        int fd, n, r;

        if (!target) {
                snprintf(err, err_size, "dry run: no file to record in");
                return -EINVAL;
        }
        clock_gettime(CLOCK_REALTIME, &now);
        n = snprintf(line, sizeof(line), "poweroff %lld\n",
                     (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = -errno;
                snprintf(err, err_size, "dry run: %s: %s", target, strerror(errno));
                return r;
        }
        /* One short write in append mode: whole or not at all in practice. */
        r = write(fd, line, (size_t)n) == n ? 0 : -EIO;
        if (r < 0)
                snprintf(err, err_size, "dry run: %s: cannot write", target);
        close(fd);
        return r;
}

const struct bbt_power_ops bbt_power_dry_run = { "dry-run", dry_run_poweroff };

const struct bbt_power_ops *bbt_power_ops_find(const char *name)
{
        static const struct bbt_power_ops *const all[] = { &bbt_power_logind, &bbt_power_dry_run };

        for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++)
                if (strcmp(all[i]->name, name) == 0)
                        return all[i];
        return NULL;
}
