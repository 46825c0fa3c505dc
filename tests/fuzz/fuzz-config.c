/* libFuzzer target: the INI loader (runtime/config.c) over the agent's and the aggregator's option tables. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent_config.h"
#include "aggregator_config.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                                  \
        do {                                                                         \
                if (!(cond)) {                                                       \
                        fprintf(stderr, "fuzz-config: check failed: %s\n", #cond);  \
                        abort();                                                     \
                }                                                                    \
        } while (0)

/* The loaders take a path: the input goes into a memfd, opened once and
 * rewritten per input, read through /proc/self/fd/N. */
static int input_fd = -1;
static char input_path[64];
static FILE *devnull;

static void setup(void)
{
        input_fd = memfd_create("fuzz-config.ini", MFD_CLOEXEC);
        CHECK(input_fd >= 0);
        snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d", input_fd);
        devnull = fopen("/dev/null", "we");
        CHECK(devnull != NULL);
}

static void write_input(const void *data, size_t size)
{
        size_t done = 0;

        CHECK(ftruncate(input_fd, 0) == 0);
        while (done < size) {
                ssize_t n = pwrite(input_fd, (const char *)data + done, size - done, (off_t)done);

                CHECK(n > 0);
                done += (size_t)n;
        }
}

static void check_load_error(int r, const char *err, size_t err_size)
{
        CHECK(r == -EINVAL || r == -ERANGE || r == -ENOMEM || r == -EIO);
        CHECK(memchr(err, '\0', err_size) != NULL);
        CHECK(err[0] != '\0');
}

typedef int dump_fn(const void *cfg, FILE *out);

/* CFG dumped as INI, in a malloc'd string of *RET_LEN bytes. */
static char *dump(dump_fn *fn, const void *cfg, size_t *ret_len)
{
        char *text = NULL;
        FILE *out;

        out = open_memstream(&text, ret_len);
        CHECK(out != NULL);
        CHECK(fn(cfg, out) == 0);
        CHECK(fclose(out) == 0);
        return text;
}

/* A dump loads back to a config that dumps the same (config.h promises the
 * dump "reads back to the same values"). */
static void check_round_trip(const char *who, const char *text, size_t len, const char *text2, size_t len2)
{
        if (len == len2 && memcmp(text, text2, len) == 0)
                return;
        fprintf(stderr, "fuzz-config: %s dump changed on reload:\n%s\n----\n%s", who, text, text2);
        abort();
}

static int agent_dump(const void *cfg, FILE *out)
{
        return bbt_agent_config_dump(cfg, out);
}

static int aggregator_dump(const void *cfg, FILE *out)
{
        return bbt_aggregator_config_dump(cfg, out);
}

static void agent(void)
{
        struct bbt_agent_config cfg, again;
        char err[512], *text, *text2;
        size_t len, len2;
        int r;

        r = bbt_agent_config_load(input_path, &cfg, err, sizeof(err));
        if (r < 0) {
                check_load_error(r, err, sizeof(err));
                return;
        }
        CHECK(bbt_agent_config_dump(&cfg, devnull) == 0);
        text = dump(agent_dump, &cfg, &len);
        write_input(text, len);
        r = bbt_agent_config_load(input_path, &again, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "fuzz-config: agent dump does not load back: %s\n%s", err, text);
                abort();
        }
        text2 = dump(agent_dump, &again, &len2);
        check_round_trip("agent", text, len, text2, len2);
        free(text2);
        free(text);
        bbt_agent_config_free(&again);
        bbt_agent_config_free(&cfg);
        bbt_agent_config_free(&cfg); /* twice is harmless */
}

static void aggregator(void)
{
        struct bbt_aggregator_config cfg, again;
        char err[512], *text, *text2;
        size_t len, len2;
        int r;

        r = bbt_aggregator_config_load(input_path, &cfg, err, sizeof(err));
        if (r < 0) {
                check_load_error(r, err, sizeof(err));
                return;
        }
        CHECK(bbt_aggregator_config_dump(&cfg, devnull) == 0);
        text = dump(aggregator_dump, &cfg, &len);
        write_input(text, len);
        r = bbt_aggregator_config_load(input_path, &again, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "fuzz-config: aggregator dump does not load back: %s\n%s", err, text);
                abort();
        }
        text2 = dump(aggregator_dump, &again, &len2);
        check_round_trip("aggregator", text, len, text2, len2);
        free(text2);
        free(text);
        bbt_aggregator_config_free(&again);
        bbt_aggregator_config_free(&cfg);
}

/* The input is one INI file, read as an agent and as an aggregator config. */
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
        if (input_fd < 0)
                setup();
        write_input(data, size);
        agent();
        write_input(data, size); /* the agent's round trip rewrote it */
        aggregator();
        return 0;
}
