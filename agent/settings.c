/* The `set` command's settings: checked with the configuration file's bounds, applied at once, kept across restarts. */
#include "agent_internal.h"
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bbt/fileio.h"
#include "bbt/log.h"

/* The settable keys, where they live in the configuration. */
static const struct {
        const char *name;
        size_t off;
} settable[] = {
        { "heartbeat_interval", offsetof(struct bbt_agent_config, heartbeat_ms) },
        { "idle_timeout", offsetof(struct bbt_agent_config, idle_timeout_ms) },
};
#define N_SETTABLE (sizeof(settable) / sizeof(settable[0]))

static long long *field(struct bbt_agent_config *cfg, size_t i)
{
        return (long long *)((char *)cfg + settable[i].off);
}

int bbt_agent_state_read(const char *state_dir, const char *name, char *buf, size_t size)
{
        char path[512];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", state_dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -errno;
        if ((size_t)n == size - 1)
                return -EFBIG;
        buf[n] = '\0';
        return 0;
}

int bbt_agent_state_write(const char *state_dir, const char *name, const char *text)
{
        char tmp[128];
        int dirfd, r;

        dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;
        snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
        r = bbt_atomic_replace(dirfd, tmp, name, text, strlen(text));
        close(dirfd);
        return r;
}

void bbt_settings_apply(const char *state_dir, struct bbt_agent_config *cfg)
{
        char buf[1024], err[256], *line, *save = NULL;
        int r = bbt_agent_state_read(state_dir, BBT_SETTINGS_FILE, buf, sizeof(buf));

        if (r == -ENOENT)
                return;
        if (r < 0) {
                bbt_log_warning("%s/" BBT_SETTINGS_FILE ": %s; settings made by set commands are not applied", state_dir,
                                strerror(-r));
                return;
        }
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');

                if (line[0] == '#' || !eq)
                        continue;
                *eq = '\0';
                if (bbt_agent_config_set_runtime(cfg, line, eq + 1, err, sizeof(err)) < 0)
                        bbt_log_warning("%s/" BBT_SETTINGS_FILE ": %s; ignored", state_dir, err);
                else
                        bbt_log_info("[agent] %s = %s: set by command (%s/" BBT_SETTINGS_FILE ")", line, eq + 1,
                                     state_dir);
        }
}

/* A JSON value as the configuration file would write it: a string as it is,
 * an integer as seconds (a bare number in the file is seconds). */
static int value_text(const cJSON *v, char *buf, size_t size)
{
        if (cJSON_IsString(v)) {
                snprintf(buf, size, "%s", v->valuestring);
                return 0;
        }
        if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e9 &&
            v->valuedouble == (double)(long long)v->valuedouble) {
                snprintf(buf, size, "%llds", (long long)v->valuedouble);
                return 0;
        }
        return -EINVAL;
}

static cJSON *effective(const struct bbt_agent_config *cfg)
{
        cJSON *o = cJSON_CreateObject();

        for (size_t i = 0; i < N_SETTABLE; i++) {
                char name[64];

                snprintf(name, sizeof(name), "%s_ms", settable[i].name);
                cJSON_AddNumberToObject(o, name, (double)*field((struct bbt_agent_config *)cfg, i));
        }
        return o;
}

int bbt_settings_set(struct bbt_agent *a, const cJSON *args, cJSON **ret_result, char *err, size_t err_size)
{
        struct bbt_agent_config scratch = a->cfg;
        char text[512], old[1024], value[64], msg[256];
        const cJSON *item;
        size_t len = 0;
        int r;

        /* Everything is checked before anything changes. */
        cJSON_ArrayForEach(item, args) {
                if (value_text(item, value, sizeof(value)) < 0) {
                        snprintf(err, err_size, "%s: expected a duration such as \"30s\" or a whole number of seconds",
                                 item->string);
                        return -EINVAL;
                }
                r = bbt_agent_config_set_runtime(&scratch, item->string, value, msg, sizeof(msg));
                if (r < 0) {
                        snprintf(err, err_size, "%s", msg);
                        return -EINVAL;
                }
        }
        /* Kept: what this command sets and what earlier ones did; a key
         * never set by a command follows the configuration file. */
        text[0] = '\0';
        if (bbt_agent_state_read(a->cfg.state_dir, BBT_SETTINGS_FILE, old, sizeof(old)) < 0)
                old[0] = '\0';
        for (size_t i = 0; i < N_SETTABLE; i++) {
                char key[64];

                snprintf(key, sizeof(key), "%s=", settable[i].name);
                if (cJSON_GetObjectItemCaseSensitive(args, settable[i].name) || strstr(old, key))
                        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%lldms\n", key,
                                                *field(&scratch, i));
        }
        if (cJSON_GetArraySize(args) > 0) {
                r = bbt_agent_state_write(a->cfg.state_dir, BBT_SETTINGS_FILE, text);
                if (r < 0) {
                        snprintf(err, err_size, "cannot save %s/" BBT_SETTINGS_FILE ": %s", a->cfg.state_dir,
                                 strerror(-r));
                        return r;
                }
        }
        for (size_t i = 0; i < N_SETTABLE; i++)
                if (*field(&a->cfg, i) != *field(&scratch, i)) {
                        bbt_log_notice("set: %s %lld ms (was %lld ms), kept in %s/" BBT_SETTINGS_FILE,
                                       settable[i].name, *field(&scratch, i), *field(&a->cfg, i), a->cfg.state_dir);
                        *field(&a->cfg, i) = *field(&scratch, i);
                }
        bbt_sources_reload(a); /* idle_timeout */
        bbt_produce_start(a);  /* heartbeat_interval */
        *ret_result = effective(&a->cfg);
        return 0;
}
