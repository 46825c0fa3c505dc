/* Tests for runtime/config.c: every type, defaults, located errors, no partial apply, dump. */
/* bbt-test: label=unit timeout=30 */
#include "test.h"
#include "bbt/base.h"

#include "bbt/config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

struct test_config {
        char *terminal_id;
        int log_level;
        char *host;
        long long port;
        bool tls;
        char *ca_file;
        long long keepalive;
        long long max_size;
        long long chunk;
        long long flush_interval;
        long long offset;
        char *spool_dir;
        int guard; /* not in the table: must never be touched */
};

static const char *const level_names[] = { "error", "warning", "notice", "info", "debug", NULL };

#define OPT(sec, key, t, field, def, lo, hi, help_text)                                      \
        {                                                                                    \
                .section = sec, .name = key, .type = t,                                     \
                .offset = offsetof(struct test_config, field), .default_value = def,        \
                .min = lo, .max = hi, .help = help_text,                                    \
        }

static const struct bbt_option opts[] = {
        OPT("", "terminal_id", BBT_OPT_STRING, terminal_id, "T01", 0, 0, "This terminal's ID"),
        { .section = "", .name = "log_level", .type = BBT_OPT_ENUM,
          .offset = offsetof(struct test_config, log_level), .default_value = "info",
          .enum_values = level_names, .help = "Least severe level logged" },
        OPT("broker", "host", BBT_OPT_STRING, host, "localhost", 0, 0, "Broker host name"),
        OPT("broker", "port", BBT_OPT_INT, port, "8883", 1, 65535, "Broker TCP port"),
        OPT("broker", "tls", BBT_OPT_BOOL, tls, "yes", 0, 0, "Use TLS"),
        OPT("broker", "ca_file", BBT_OPT_PATH, ca_file, NULL, 0, 0, "CA bundle"),
        OPT("broker", "keepalive", BBT_OPT_DURATION, keepalive, "60s", 5000, 3600000,
            "MQTT keepalive"),
        OPT("spool", "max_size", BBT_OPT_SIZE, max_size, "64M", 1 << 20, 1 << 30,
            "Largest spool"),
        OPT("spool", "chunk", BBT_OPT_SIZE, chunk, "4K", 0, 0, NULL),
        OPT("spool", "flush_interval", BBT_OPT_DURATION, flush_interval, "1s", 0, 0, NULL),
        OPT("spool", "offset", BBT_OPT_INT, offset, "-3", 0, 0, NULL),
        OPT("spool", "dir", BBT_OPT_PATH, spool_dir, "/var/lib/bbt/spool", 0, 0, "Spool folder"),
};
#define N_OPTS (BBT_ELEMENTSOF(opts))

/* The same without keys outside a section. */
static const struct bbt_option sectioned_opts[] = {
        OPT("broker", "host", BBT_OPT_STRING, host, "localhost", 0, 0, NULL),
        OPT("broker", "port", BBT_OPT_INT, port, "8883", 1, 65535, NULL),
};

static char tmp_dir[] = "/tmp/bbt-test-config-XXXXXX";
static char conf_path[sizeof(tmp_dir) + 32];
static char dump_path[sizeof(tmp_dir) + 32];

static void remove_tmp(void)
{
        unlink(conf_path);
        unlink(dump_path);
        rmdir(tmp_dir);
}

static void make_tmp_dir(void)
{
        if (conf_path[0])
                return;
        ASSERT(mkdtemp(tmp_dir) != NULL);
        atexit(remove_tmp);
        snprintf(conf_path, sizeof(conf_path), "%s/test.conf", tmp_dir);
        snprintf(dump_path, sizeof(dump_path), "%s/dump.conf", tmp_dir);
}

/* Writes LEN bytes of DATA to the test's config file and returns its path. */
static const char *write_conf_n(const char *data, size_t len)
{
        FILE *f;

        make_tmp_dir();
        f = fopen(conf_path, "we");
        ASSERT(f != NULL);
        ASSERT_EQ(fwrite(data, 1, len, f), len);
        ASSERT_OK(fclose(f));
        return conf_path;
}

static const char *write_conf(const char *text)
{
        return write_conf_n(text, strlen(text));
}

/* Loads TEXT as a config file over CFG; returns the load's result. */
static int load_text(const char *text, struct test_config *cfg, char *err, size_t err_size)
{
        return bbt_config_load(opts, N_OPTS, write_conf(text), cfg, err, err_size);
}

/* Loads TEXT, which must fail with -EINVAL and "PATH:MESSAGE", leaving the struct untouched. */
static void expect_error_with(const struct bbt_option *table, size_t n, const char *text,
                              const char *message)
{
        struct test_config cfg, before;
        char err[512], expected[512];

        memset(&cfg, 0x5a, sizeof(cfg));
        before = cfg;
        ASSERT_EQ(bbt_config_load(table, n, write_conf(text), &cfg, err, sizeof(err)), -EINVAL);
        snprintf(expected, sizeof(expected), "%s:%s", conf_path, message);
        ASSERT_STR_EQ(err, expected);
        ASSERT(memcmp(&cfg, &before, sizeof(cfg)) == 0);
}

static void expect_error(const char *text, const char *message)
{
        expect_error_with(opts, N_OPTS, text, message);
}

/* Sets KEY to VALUE in a default config; must fail with -EINVAL and "KEY: MESSAGE". */
static void expect_set_error(const char *key, const char *value, const char *message)
{
        struct test_config cfg = { 0 }, before;
        char err[512], expected[512];

        ASSERT_OK(bbt_config_defaults(opts, N_OPTS, &cfg, err, sizeof(err)));
        before = cfg;
        ASSERT_EQ(bbt_config_set(opts, N_OPTS, &cfg, key, value, err, sizeof(err)), -EINVAL);
        snprintf(expected, sizeof(expected), "%s: %s", key, message);
        ASSERT_STR_EQ(err, expected);
        ASSERT(memcmp(&cfg, &before, sizeof(cfg)) == 0);
        bbt_config_free(opts, N_OPTS, &cfg);
}

/* Sets KEY to VALUE in a default config and returns the field's new number. */
static long long set_number(const char *key, const char *value)
{
        struct test_config cfg = { 0 };
        const struct bbt_option *o = NULL;
        char err[512];
        long long v;
        size_t i;

        ASSERT_OK(bbt_config_defaults(opts, N_OPTS, &cfg, err, sizeof(err)));
        if (bbt_config_set(opts, N_OPTS, &cfg, key, value, err, sizeof(err)) != 0)
                FAIL("set %s = \"%s\": %s", key, value, err);
        for (i = 0; i < N_OPTS; i++)
                if (strstr(key, opts[i].name) && strchr(key, '.') &&
                    strcmp(strchr(key, '.') + 1, opts[i].name) == 0)
                        o = &opts[i];
        ASSERT(o != NULL);
        memcpy(&v, (char *)&cfg + o->offset, sizeof(v));
        bbt_config_free(opts, N_OPTS, &cfg);
        return v;
}

TEST(defaults)
{
        struct test_config cfg;
        char err[256];

        memset(&cfg, 0, sizeof(cfg));
        cfg.guard = 12345;
        ASSERT_OK(bbt_config_defaults(opts, N_OPTS, &cfg, err, sizeof(err)));
        ASSERT_STR_EQ(cfg.terminal_id, "T01");
        ASSERT_EQ(cfg.log_level, 3);
        ASSERT_STR_EQ(cfg.host, "localhost");
        ASSERT_EQ(cfg.port, 8883);
        ASSERT(cfg.tls);
        ASSERT(cfg.ca_file == NULL);
        ASSERT_EQ(cfg.keepalive, 60000);
        ASSERT_EQ(cfg.max_size, 64LL << 20);
        ASSERT_EQ(cfg.chunk, 4096);
        ASSERT_EQ(cfg.flush_interval, 1000);
        ASSERT_EQ(cfg.offset, -3);
        ASSERT_STR_EQ(cfg.spool_dir, "/var/lib/bbt/spool");
        ASSERT_EQ(cfg.guard, 12345);
        bbt_config_free(opts, N_OPTS, &cfg);
        ASSERT(cfg.host == NULL && cfg.terminal_id == NULL && cfg.spool_dir == NULL);
}

TEST(load_every_type)
{
        struct test_config cfg = { .guard = 7 };
        char err[256];

        ASSERT_OK(load_text("terminal_id = T-42\n"
                            "log_level = debug\n"
                            "[broker]\n"
                            "host = mqtt.county.example\n"
                            "port = 1883\n"
                            "tls = off\n"
                            "ca_file = /etc/bbt/ca.pem\n"
                            "keepalive = 2m30s\n"
                            "[spool]\n"
                            "max_size = 512M\n"
                            "chunk = 100\n"
                            "flush_interval = 250ms\n"
                            "offset = -9000000000\n"
                            "dir = /srv/spool\n",
                            &cfg, err, sizeof(err)));
        ASSERT_STR_EQ(cfg.terminal_id, "T-42");
        ASSERT_EQ(cfg.log_level, 4);
        ASSERT_STR_EQ(cfg.host, "mqtt.county.example");
        ASSERT_EQ(cfg.port, 1883);
        ASSERT(!cfg.tls);
        ASSERT_STR_EQ(cfg.ca_file, "/etc/bbt/ca.pem");
        ASSERT_EQ(cfg.keepalive, 150000);
        ASSERT_EQ(cfg.max_size, 512LL << 20);
        ASSERT_EQ(cfg.chunk, 100);
        ASSERT_EQ(cfg.flush_interval, 250);
        ASSERT_EQ(cfg.offset, -9000000000LL);
        ASSERT_STR_EQ(cfg.spool_dir, "/srv/spool");
        ASSERT_EQ(cfg.guard, 7);
        bbt_config_free(opts, N_OPTS, &cfg);
}

TEST(empty_file_gives_defaults)
{
        struct test_config cfg = { 0 };
        char err[256];

        ASSERT_OK(load_text("", &cfg, err, sizeof(err)));
        ASSERT_STR_EQ(cfg.host, "localhost");
        ASSERT_EQ(cfg.port, 8883);
        bbt_config_free(opts, N_OPTS, &cfg);
}

TEST(bool_spellings)
{
        static const char *const yes[] = { "true", "yes", "on", "1", "TRUE", "Yes", "oN" };
        static const char *const no[] = { "false", "no", "off", "0", "False", "NO", "OFF" };
        struct test_config cfg = { 0 };
        char err[256];
        size_t i;

        ASSERT_OK(bbt_config_defaults(opts, N_OPTS, &cfg, err, sizeof(err)));
        for (i = 0; i < BBT_ELEMENTSOF(yes); i++) {
                cfg.tls = false;
                ASSERT_OK(bbt_config_set(opts, N_OPTS, &cfg, "broker.tls", yes[i], err, sizeof(err)));
                ASSERT(cfg.tls);
                ASSERT_OK(bbt_config_set(opts, N_OPTS, &cfg, "broker.tls", no[i], err, sizeof(err)));
                ASSERT(!cfg.tls);
        }
        bbt_config_free(opts, N_OPTS, &cfg);
        expect_set_error("broker.tls", "enabled",
                         "expected a boolean (true/false, yes/no, on/off, 1/0), got \"enabled\"");
        expect_set_error("broker.tls", "2",
                         "expected a boolean (true/false, yes/no, on/off, 1/0), got \"2\"");
        expect_set_error("broker.tls", "",
                         "expected a boolean (true/false, yes/no, on/off, 1/0), got \"\"");
}

TEST(int_edges)
{
        ASSERT_EQ(set_number("broker.port", "1"), 1);
        ASSERT_EQ(set_number("broker.port", "65535"), 65535);
        ASSERT_EQ(set_number("broker.port", "+80"), 80);
        expect_set_error("broker.port", "0",
                         "expected an integer between 1 and 65535, got \"0\"");
        expect_set_error("broker.port", "65536",
                         "expected an integer between 1 and 65535, got \"65536\"");
        expect_set_error("broker.port", "-1",
                         "expected an integer between 1 and 65535, got \"-1\"");
        expect_set_error("broker.port", "80x",
                         "expected an integer between 1 and 65535, got \"80x\"");
        expect_set_error("broker.port", "0x50",
                         "expected an integer between 1 and 65535, got \"0x50\"");
        expect_set_error("broker.port", "",
                         "expected an integer between 1 and 65535, got \"\"");
        expect_set_error("broker.port", "1 2",
                         "expected an integer between 1 and 65535, got \"1 2\"");
        /* Unbounded: the full range of long long, and nothing past it. */
        ASSERT_EQ(set_number("spool.offset", "9223372036854775807"), LLONG_MAX);
        ASSERT_EQ(set_number("spool.offset", "-9223372036854775808"), LLONG_MIN);
        expect_set_error("spool.offset", "9223372036854775808",
                         "expected an integer, got \"9223372036854775808\"");
        expect_set_error("spool.offset", "- 1", "expected an integer, got \"- 1\"");
}

TEST(duration_units)
{
        ASSERT_EQ(set_number("spool.flush_interval", "250ms"), 250);
        ASSERT_EQ(set_number("spool.flush_interval", "30s"), 30000);
        ASSERT_EQ(set_number("spool.flush_interval", "30"), 30000); /* bare = seconds */
        ASSERT_EQ(set_number("spool.flush_interval", "5m"), 300000);
        ASSERT_EQ(set_number("spool.flush_interval", "2h"), 7200000);
        ASSERT_EQ(set_number("spool.flush_interval", "1d"), 86400000);
        ASSERT_EQ(set_number("spool.flush_interval", "1h30m"), 5400000);
        ASSERT_EQ(set_number("spool.flush_interval", "1m500ms"), 60500);
        ASSERT_EQ(set_number("spool.flush_interval", "2H"), 7200000);
        ASSERT_EQ(set_number("spool.flush_interval", "0"), 0);
        expect_set_error("spool.flush_interval", "abc", "expected a duration, got \"abc\"");
        expect_set_error("spool.flush_interval", "1h30", "expected a duration, got \"1h30\"");
        expect_set_error("spool.flush_interval", "1.5s", "expected a duration, got \"1.5s\"");
        expect_set_error("spool.flush_interval", "-5s", "expected a duration, got \"-5s\"");
        expect_set_error("spool.flush_interval", "5x", "expected a duration, got \"5x\"");
        expect_set_error("spool.flush_interval", "5 s", "expected a duration, got \"5 s\"");
        expect_set_error("spool.flush_interval", "", "expected a duration, got \"\"");
        expect_set_error("spool.flush_interval", "999999999999999d",
                         "expected a duration, got \"999999999999999d\"");
        expect_set_error("spool.flush_interval", "99999999999999999999",
                         "expected a duration, got \"99999999999999999999\"");
}

TEST(duration_range)
{
        ASSERT_EQ(set_number("broker.keepalive", "5s"), 5000);
        ASSERT_EQ(set_number("broker.keepalive", "1h"), 3600000);
        ASSERT_EQ(set_number("broker.keepalive", "3600000ms"), 3600000);
        expect_set_error("broker.keepalive", "4999ms",
                         "expected a duration between 5s and 1h, got \"4999ms\"");
        expect_set_error("broker.keepalive", "1h1ms",
                         "expected a duration between 5s and 1h, got \"1h1ms\"");
        expect_set_error("broker.keepalive", "abc",
                         "expected a duration between 5s and 1h, got \"abc\"");
}

TEST(size_suffixes)
{
        ASSERT_EQ(set_number("spool.chunk", "512"), 512);
        ASSERT_EQ(set_number("spool.chunk", "64K"), 65536);
        ASSERT_EQ(set_number("spool.chunk", "64k"), 65536);
        ASSERT_EQ(set_number("spool.chunk", "10M"), 10LL << 20);
        ASSERT_EQ(set_number("spool.chunk", "1G"), 1LL << 30);
        ASSERT_EQ(set_number("spool.chunk", "2T"), 2LL << 40);
        ASSERT_EQ(set_number("spool.chunk", "0"), 0);
        expect_set_error("spool.chunk", "1KB", "expected a size, got \"1KB\"");
        expect_set_error("spool.chunk", "-1", "expected a size, got \"-1\"");
        expect_set_error("spool.chunk", "1.5M", "expected a size, got \"1.5M\"");
        expect_set_error("spool.chunk", "9999999T", "expected a size, got \"9999999T\"");

        ASSERT_EQ(set_number("spool.max_size", "1M"), 1 << 20);
        ASSERT_EQ(set_number("spool.max_size", "1024K"), 1 << 20);
        ASSERT_EQ(set_number("spool.max_size", "1G"), 1 << 30);
        expect_set_error("spool.max_size", "1023K",
                         "expected a size between 1M and 1G, got \"1023K\"");
        expect_set_error("spool.max_size", "1073741825",
                         "expected a size between 1M and 1G, got \"1073741825\"");
}

TEST(enum_values)
{
        struct test_config cfg = { 0 };
        char err[256];

        ASSERT_OK(bbt_config_defaults(opts, N_OPTS, &cfg, err, sizeof(err)));
        ASSERT_OK(bbt_config_set(opts, N_OPTS, &cfg, "log_level", "error", err, sizeof(err)));
        ASSERT_EQ(cfg.log_level, 0);
        ASSERT_OK(bbt_config_set(opts, N_OPTS, &cfg, "log_level", "DEBUG", err, sizeof(err)));
        ASSERT_EQ(cfg.log_level, 4);
        bbt_config_free(opts, N_OPTS, &cfg);
        expect_set_error("log_level", "loud",
                         "expected one of error|warning|notice|info|debug, got \"loud\"");
        expect_set_error("log_level", "3",
                         "expected one of error|warning|notice|info|debug, got \"3\"");
}

TEST(path_and_string)
{
        struct test_config cfg = { 0 };
        char err[256];

        ASSERT_OK(load_text("[broker]\nca_file = /etc/ssl/ca.pem\nhost =\n[spool]\ndir =\n", &cfg,
                            err, sizeof(err)));
        ASSERT_STR_EQ(cfg.ca_file, "/etc/ssl/ca.pem");
        ASSERT_STR_EQ(cfg.host, ""); /* an empty string stays a string */
        ASSERT(cfg.spool_dir == NULL); /* an empty path is unset */
        bbt_config_free(opts, N_OPTS, &cfg);
        expect_error("[spool]\ndir = var/spool\n",
                     "2: [spool] dir: expected an absolute path, got \"var/spool\"");
}

TEST(error_unknown_key)
{
        expect_error("[broker]\nhost = a\nport = 1883\ntls_ca = /x\n",
                     "4: [broker] tls_ca: unknown key");
        expect_error("colour = blue\n", "1: colour: unknown key");
        /* Keys and sections are case-sensitive. */
        expect_error("[broker]\nHost = a\n", "2: [broker] Host: unknown key");
}

TEST(error_unknown_section)
{
        expect_error("terminal_id = x\n\n[brokr]\nhost = a\n", "3: [brokr]: unknown section");
        expect_error("[Broker]\n", "1: [Broker]: unknown section");
        expect_error("[ broker ]\nhost = a\n", "1: [ broker ]: unknown section");
        expect_error("[]\nhost = a\n", "1: []: unknown section");
}

TEST(error_key_outside_section)
{
        expect_error_with(sectioned_opts, 2, "# comment\nport = 1\n[broker]\n",
                          "2: port: key outside any section");
}

TEST(error_duplicate_key)
{
        expect_error("[broker]\nhost = a\nport = 1\n[spool]\n[broker]\nport = 2\n",
                     "6: [broker] port: duplicate key (first set on line 3)");
        expect_error("log_level = info\nlog_level = debug\n",
                     "2: log_level: duplicate key (first set on line 1)");
}

TEST(error_bad_value_is_located)
{
        expect_error("\n[broker]\n# the keepalive\nkeepalive = abc\n",
                     "4: [broker] keepalive: expected a duration between 5s and 1h, got \"abc\"");
        expect_error("[broker]\nport = 99999 ; comment\n",
                     "2: [broker] port: expected an integer between 1 and 65535, got \"99999\"");
}

TEST(error_syntax)
{
        expect_error("[broker]\njust some words\n",
                     "2: syntax error: expected \"key = value\"");
        expect_error("[broker\nhost = a\n", "1: syntax error: missing ']' after the section name");
        expect_error("[broker]\n= 5\n", "2: syntax error: no key before '='");
        /* A syntax error comes before a later bad key, even though inih reads on. */
        expect_error("[broker]\nhost = a\noops\ntls_ca = 1\n",
                     "3: syntax error: expected \"key = value\"");
        /* Indented lines are not continuations: no multi-line values. */
        expect_error("[broker]\nhost = a\n  b\n", "3: syntax error: expected \"key = value\"");
}

TEST(error_line_too_long)
{
        /* inih's buffer holds INI_MAX_LINE bytes: the text, "\n" and NUL. */
        enum { MAX_TEXT = INI_MAX_LINE - 2 };
        char text[MAX_TEXT + 64], message[128];
        struct test_config cfg = { 0 };
        char err[256];
        size_t n;

        n = (size_t)snprintf(text, sizeof(text), "[broker]\nhost = ");
        memset(text + n, 'h', MAX_TEXT - strlen("host = "));
        n += MAX_TEXT - strlen("host = ");
        text[n++] = '\n';
        text[n] = '\0';
        ASSERT_OK(load_text(text, &cfg, err, sizeof(err)));
        ASSERT_EQ(strlen(cfg.host), MAX_TEXT - strlen("host = "));
        bbt_config_free(opts, N_OPTS, &cfg);

        /* One more byte and the line is refused, not split into two lines. */
        memmove(text + n, text + n - 1, 2);
        text[n - 1] = 'h';
        snprintf(message, sizeof(message), "2: line too long (more than %d characters)", MAX_TEXT);
        expect_error(text, message);

        /* CRLF does not count against the limit. */
        memmove(text + n - 1, "\r\n", 3);
        ASSERT_OK(load_text(text, &cfg, err, sizeof(err)));
        bbt_config_free(opts, N_OPTS, &cfg);
}

TEST(error_nul_byte)
{
        static const char text[] = "[broker]\nhost = a\0b\n";
        struct test_config cfg = { 0 };
        char err[256], expected[256];

        ASSERT_EQ(bbt_config_load(opts, N_OPTS, write_conf_n(text, sizeof(text) - 1), &cfg, err,
                                  sizeof(err)),
                  -EINVAL);
        snprintf(expected, sizeof(expected), "%s:2: line contains a NUL byte", conf_path);
        ASSERT_STR_EQ(err, expected);
}

TEST(error_missing_file)
{
        struct test_config cfg = { 0 }, before;
        char err[256], path[128], expected[256];

        make_tmp_dir();
        snprintf(path, sizeof(path), "%s/absent.conf", tmp_dir);
        before = cfg;
        ASSERT_EQ(bbt_config_load(opts, N_OPTS, path, &cfg, err, sizeof(err)), -ENOENT);
        snprintf(expected, sizeof(expected), "%s: No such file or directory", path);
        ASSERT_STR_EQ(err, expected);
        ASSERT(memcmp(&cfg, &before, sizeof(cfg)) == 0);

        ASSERT_EQ(bbt_config_load(opts, N_OPTS, tmp_dir, &cfg, err, sizeof(err)), -EISDIR);
        snprintf(expected, sizeof(expected), "%s: Is a directory", tmp_dir);
        ASSERT_STR_EQ(err, expected);
}

TEST(error_unreadable_file)
{
        struct test_config cfg = { 0 };
        char err[256], expected[256];

        pid_t pid = 0;
        int status;

        write_conf("[broker]\n");
        ASSERT_OK(chmod(conf_path, 0));
        /* Permissions do not bind root: check as nobody, in a child, so the
         * parent can still remove the files. */
        if (geteuid() == 0) {
                pid = fork();
                ASSERT(pid >= 0);
                if (pid > 0) {
                        ASSERT_EQ(waitpid(pid, &status, 0), pid);
                        ASSERT(WIFEXITED(status));
                        ASSERT_EQ(WEXITSTATUS(status), 0);
                        return;
                }
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(3);
        }
        ASSERT_EQ(bbt_config_load(opts, N_OPTS, conf_path, &cfg, err, sizeof(err)), -EACCES);
        snprintf(expected, sizeof(expected), "%s: Permission denied", conf_path);
        ASSERT_STR_EQ(err, expected);
        if (pid == 0 && geteuid() != 0 && getuid() == 65534)
                _exit(0);
}

TEST(no_partial_apply)
{
        struct test_config cfg = { 0 }, before;
        char err[256];

        ASSERT_OK(load_text("[broker]\nhost = first\nport = 1000\n", &cfg, err, sizeof(err)));
        before = cfg;
        /* Valid keys come before the error: none of them may land in CFG. */
        ASSERT_EQ(load_text("terminal_id = other\n[broker]\nhost = second\nport = 2000\n"
                            "tls = maybe\n",
                            &cfg, err, sizeof(err)),
                  -EINVAL);
        ASSERT(memcmp(&cfg, &before, sizeof(cfg)) == 0);
        ASSERT_STR_EQ(cfg.host, "first");
        ASSERT_EQ(cfg.port, 1000);
        ASSERT_STR_EQ(cfg.terminal_id, "T01");
        bbt_config_free(opts, N_OPTS, &cfg);
}

TEST(reload_swap)
{
        /* The SIGHUP pattern: parse into a fresh struct, swap only on success. */
        struct test_config live = { 0 }, fresh = { 0 };
        char err[256];

        ASSERT_OK(load_text("[broker]\nhost = one\n", &live, err, sizeof(err)));
        ASSERT_OK(load_text("[broker]\nhost = two\n", &fresh, err, sizeof(err)));
        bbt_config_free(opts, N_OPTS, &live);
        live = fresh;
        memset(&fresh, 0, sizeof(fresh));
        ASSERT_STR_EQ(live.host, "two");
        ASSERT(load_text("[broker]\nhost = three\nport = 0\n", &fresh, err, sizeof(err)) < 0);
        ASSERT(fresh.host == NULL);
        ASSERT_STR_EQ(live.host, "two");
        bbt_config_free(opts, N_OPTS, &fresh);
        bbt_config_free(opts, N_OPTS, &live);
}

TEST(bom)
{
        struct test_config cfg = { 0 };
        char err[256];

        ASSERT_OK(load_text("\xEF\xBB\xBFterminal_id = bom\n[broker]\nhost = a\n", &cfg, err,
                            sizeof(err)));
        ASSERT_STR_EQ(cfg.terminal_id, "bom");
        bbt_config_free(opts, N_OPTS, &cfg);
        ASSERT_OK(load_text("\xEF\xBB\xBF[broker]\nhost = b\n", &cfg, err, sizeof(err)));
        ASSERT_STR_EQ(cfg.host, "b");
        bbt_config_free(opts, N_OPTS, &cfg);
        /* Only at the very start. */
        expect_error("[broker]\n\xEF\xBB\xBFhost = c\n",
                     "2: [broker] \xEF\xBB\xBFhost: unknown key");
}

TEST(comments_and_layout)
{
        struct test_config cfg = { 0 };
        char err[256];

        ASSERT_OK(load_text("# full-line comment\n"
                            "; another\n"
                            "\n"
                            "   \t\n"
                            "  [broker] \r\n"
                            "\thost = a ; inline comment\r\n"
                            "    port: 1884\n"
                            "ca_file = /x#y\n"
                            "[spool]\n"
                            "dir=/a;b\n"
                            "  # indented comment\n",
                            &cfg, err, sizeof(err)));
        ASSERT_STR_EQ(cfg.host, "a");
        ASSERT_EQ(cfg.port, 1884);
        ASSERT_STR_EQ(cfg.ca_file, "/x#y"); /* "#" is only a comment at the start */
        ASSERT_STR_EQ(cfg.spool_dir, "/a;b"); /* ";" needs a blank before it */
        bbt_config_free(opts, N_OPTS, &cfg);
        /* No newline at the end of the file. */
        ASSERT_OK(load_text("[broker]\nhost = last", &cfg, err, sizeof(err)));
        ASSERT_STR_EQ(cfg.host, "last");
        bbt_config_free(opts, N_OPTS, &cfg);
}

TEST(set_overrides)
{
        struct test_config cfg = { 0 };
        char err[256];

        ASSERT_OK(bbt_config_defaults(opts, N_OPTS, &cfg, err, sizeof(err)));
        ASSERT_OK(bbt_config_set(opts, N_OPTS, &cfg, "broker.host", "  cli.example \t", err,
                                 sizeof(err)));
        ASSERT_STR_EQ(cfg.host, "cli.example"); /* trimmed like a file value; old one freed */
        ASSERT_OK(bbt_config_set(opts, N_OPTS, &cfg, "terminal_id", "T9", err, sizeof(err)));
        ASSERT_STR_EQ(cfg.terminal_id, "T9");
        ASSERT_OK(bbt_config_set(opts, N_OPTS, &cfg, "spool.dir", "", err, sizeof(err)));
        ASSERT(cfg.spool_dir == NULL);

        ASSERT_EQ(bbt_config_set(opts, N_OPTS, &cfg, "broker.hots", "x", err, sizeof(err)),
                  -ENOENT);
        ASSERT_STR_EQ(err, "broker.hots: unknown key");
        ASSERT_EQ(bbt_config_set(opts, N_OPTS, &cfg, "host", "x", err, sizeof(err)), -ENOENT);
        ASSERT_EQ(bbt_config_set(opts, N_OPTS, &cfg, "broker", "x", err, sizeof(err)), -ENOENT);
        ASSERT_EQ(bbt_config_set(opts, N_OPTS, &cfg, ".terminal_id", "x", err, sizeof(err)),
                  -ENOENT);
        ASSERT_EQ(bbt_config_set(opts, N_OPTS, &cfg, "broker.host", NULL, err, sizeof(err)),
                  -EINVAL);
        ASSERT_STR_EQ(cfg.host, "cli.example");
        bbt_config_free(opts, N_OPTS, &cfg);

        expect_set_error("broker.host", "two\nlines",
                         "expected a single-line string, got \"two\nlines\"");
}

TEST(free_is_null_safe)
{
        struct test_config cfg = { 0 };
        char err[256];

        bbt_config_free(opts, N_OPTS, NULL);
        bbt_config_free(NULL, 0, &cfg);
        bbt_config_free(opts, N_OPTS, &cfg); /* all NULL already */
        ASSERT_OK(bbt_config_defaults(opts, N_OPTS, &cfg, err, sizeof(err)));
        bbt_config_free(opts, N_OPTS, &cfg);
        bbt_config_free(opts, N_OPTS, &cfg); /* twice is harmless */
        ASSERT(cfg.host == NULL);
}

TEST(error_buffer_optional_and_bounded)
{
        struct test_config cfg = { 0 };
        char small[8];

        ASSERT_EQ(load_text("[nope]\n", &cfg, NULL, 0), -EINVAL);
        ASSERT_EQ(load_text("[nope]\n", &cfg, small, sizeof(small)), -EINVAL);
        ASSERT_EQ(strlen(small), sizeof(small) - 1);
        ASSERT(strncmp(small, conf_path, sizeof(small) - 1) == 0);
        ASSERT_EQ(bbt_config_set(opts, N_OPTS, &cfg, "x.y", "1", NULL, 0), -ENOENT);
        ASSERT_EQ(bbt_config_load(opts, N_OPTS, NULL, &cfg, NULL, 0), -EINVAL);
        ASSERT_EQ(bbt_config_load(opts, N_OPTS, conf_path, NULL, NULL, 0), -EINVAL);
}

TEST(bad_tables)
{
        static const struct bbt_option bad_default[] = {
                OPT("broker", "port", BBT_OPT_INT, port, "0", 1, 65535, NULL),
        };
        static const struct bbt_option no_enum_values[] = {
                { .section = "", .name = "level", .type = BBT_OPT_ENUM,
                  .offset = offsetof(struct test_config, log_level) },
        };
        static const struct bbt_option twice[] = {
                OPT("broker", "port", BBT_OPT_INT, port, NULL, 0, 0, NULL),
                OPT("broker", "port", BBT_OPT_INT, offset, NULL, 0, 0, NULL),
        };
        static const struct bbt_option inverted[] = {
                OPT("broker", "port", BBT_OPT_INT, port, NULL, 10, 1, NULL),
        };
        struct test_config cfg = { 0 }, before = { 0 };
        char err[256];

        ASSERT_EQ(bbt_config_defaults(bad_default, 1, &cfg, err, sizeof(err)), -EINVAL);
        ASSERT_STR_EQ(err, "default of [broker] port: expected an integer between 1 and 65535, "
                           "got \"0\"");
        ASSERT_EQ(bbt_config_load(bad_default, 1, write_conf(""), &cfg, err, sizeof(err)), -EINVAL);
        ASSERT_EQ(bbt_config_defaults(no_enum_values, 1, &cfg, err, sizeof(err)), -EINVAL);
        ASSERT_STR_EQ(err, "option table: level: enum without values");
        ASSERT_EQ(bbt_config_defaults(twice, 2, &cfg, err, sizeof(err)), -EINVAL);
        ASSERT_STR_EQ(err, "option table: [broker] port: listed twice");
        ASSERT_EQ(bbt_config_defaults(inverted, 1, &cfg, err, sizeof(err)), -EINVAL);
        ASSERT_STR_EQ(err, "option table: [broker] port: min above max");
        ASSERT(memcmp(&cfg, &before, sizeof(cfg)) == 0);
}

TEST(dump_defaults)
{
        struct test_config cfg = { 0 };
        char err[256], *text = NULL;
        size_t len = 0;
        FILE *out;

        ASSERT_OK(bbt_config_defaults(opts, N_OPTS, &cfg, err, sizeof(err)));
        out = open_memstream(&text, &len);
        ASSERT(out != NULL);
        ASSERT_OK(bbt_config_dump(opts, N_OPTS, &cfg, out));
        ASSERT_OK(fclose(out));
        ASSERT_STR_EQ(text, "# This terminal's ID\n"
                            "terminal_id = T01\n"
                            "# Least severe level logged\n"
                            "log_level = info\n"
                            "\n"
                            "[broker]\n"
                            "# Broker host name\n"
                            "host = localhost\n"
                            "# Broker TCP port\n"
                            "port = 8883\n"
                            "# Use TLS\n"
                            "tls = true\n"
                            "# CA bundle\n"
                            "ca_file =\n"
                            "# MQTT keepalive\n"
                            "keepalive = 1m\n"
                            "\n"
                            "[spool]\n"
                            "# Largest spool\n"
                            "max_size = 64M\n"
                            "chunk = 4K\n"
                            "flush_interval = 1s\n"
                            "offset = -3\n"
                            "# Spool folder\n"
                            "dir = /var/lib/bbt/spool\n");
        free(text);
        bbt_config_free(opts, N_OPTS, &cfg);
}

TEST(dump_round_trip)
{
        struct test_config cfg = { 0 }, back = { 0 };
        char err[256];
        FILE *out;

        ASSERT_OK(load_text("terminal_id = 班班通-01\nlog_level = warning\n"
                            "[broker]\nhost = h\nport = 1\ntls = no\nca_file = /c\n"
                            "keepalive = 1h\n[spool]\nmax_size = 1025K\nchunk = 1000\n"
                            "flush_interval = 1m500ms\noffset = 0\n",
                            &cfg, err, sizeof(err)));
        make_tmp_dir();
        out = fopen(dump_path, "we");
        ASSERT(out != NULL);
        ASSERT_OK(bbt_config_dump(opts, N_OPTS, &cfg, out));
        ASSERT_OK(fclose(out));
        if (bbt_config_load(opts, N_OPTS, dump_path, &back, err, sizeof(err)) != 0)
                FAIL("reading the dump back: %s", err);
        ASSERT_STR_EQ(back.terminal_id, "班班通-01");
        ASSERT_EQ(back.log_level, 1);
        ASSERT_STR_EQ(back.host, "h");
        ASSERT_EQ(back.port, 1);
        ASSERT(!back.tls);
        ASSERT_STR_EQ(back.ca_file, "/c");
        ASSERT_EQ(back.keepalive, 3600000);
        ASSERT_EQ(back.max_size, 1025 * 1024);
        ASSERT_EQ(back.chunk, 1000);
        ASSERT_EQ(back.flush_interval, 60500);
        ASSERT_EQ(back.offset, 0);
        ASSERT_STR_EQ(back.spool_dir, "/var/lib/bbt/spool");
        bbt_config_free(opts, N_OPTS, &cfg);
        bbt_config_free(opts, N_OPTS, &back);
}

/* Found by fuzz-config: "host =;" sets host to ";", but the dump wrote
 * "host = ;", which reads back as an empty value plus an inline comment. */
TEST(dump_round_trip_value_starting_with_semicolon)
{
        static const char fuzz_input[] = "#unty\n[broker]\nhost =;";
        struct test_config cfg = { 0 }, back = { 0 };
        char err[256], *text = NULL;
        size_t len = 0;
        FILE *out;

        ASSERT_OK(load_text(fuzz_input, &cfg, err, sizeof(err)));
        ASSERT_STR_EQ(cfg.host, ";");
        out = open_memstream(&text, &len);
        ASSERT(out != NULL);
        ASSERT_OK(bbt_config_dump(opts, N_OPTS, &cfg, out));
        ASSERT_OK(fclose(out));
        ASSERT_STR_CONTAINS(text, "\nhost =;\n");
        ASSERT_OK(bbt_config_load(opts, N_OPTS, write_conf(text), &back, err, sizeof(err)));
        ASSERT_STR_EQ(back.host, ";");
        bbt_config_free(opts, N_OPTS, &back);
        bbt_config_free(opts, N_OPTS, &cfg);
        free(text);

        ASSERT_OK(load_text("[broker]\nhost =;a ;comment\n", &cfg, err, sizeof(err)));
        ASSERT_STR_EQ(cfg.host, ";a");
        bbt_config_free(opts, N_OPTS, &cfg);
}

/* A long help text is wrapped into comment lines of at most 100 characters,
 * broken between words: the dump loads back (the loader refuses lines of 200
 * characters or more). */
TEST(dump_wraps_long_help)
{
        static const struct bbt_option table[] = {
                OPT("broker", "host", BBT_OPT_STRING, host, "h", 0, 0,
                    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                    "sixteen seventeen eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four "
                    "twenty-five twenty-six twenty-seven twenty-eight twenty-nine thirty thirty-one thirty-two "
                    "a-word-longer-than-a-whole-line-of-the-dump-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx end"),
        };
        struct test_config cfg = { 0 };
        char *text = NULL, *line, *save = NULL, err[256];
        size_t len = 0, lines = 0;
        FILE *out;

        cfg.host = (char *)"h";
        out = open_memstream(&text, &len);
        ASSERT(out != NULL);
        ASSERT_OK(bbt_config_dump(table, 1, &cfg, out));
        ASSERT_OK(fclose(out));
        ASSERT(strstr(text, "# one two three") != NULL);
        ASSERT(strstr(text, "thirty-two\n# a-word-longer") != NULL);
        ASSERT(strstr(text, "\n# end\n") != NULL);
        ASSERT_OK(load_text(text, &cfg, err, sizeof(err)));
        bbt_config_free(opts, N_OPTS, &cfg);
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++)
                ASSERT(strlen(line) <= 100 || strncmp(line, "# a-word-longer", 15) == 0);
        ASSERT_GT(lines, 4);
        free(text);
}

TEST(dump_unset_string_reads_back_as_default)
{
        static const struct bbt_option table[] = {
                OPT("", "terminal_id", BBT_OPT_STRING, terminal_id, NULL, 0, 0, NULL),
        };
        struct test_config cfg = { 0 };
        char *text = NULL;
        size_t len = 0;
        FILE *out;

        out = open_memstream(&text, &len);
        ASSERT(out != NULL);
        ASSERT_OK(bbt_config_dump(table, 1, &cfg, out));
        ASSERT_OK(fclose(out));
        ASSERT_STR_EQ(text, "#terminal_id =\n");
        free(text);
}
