/* Tests for runtime/broker_config.c: the MQTT options it gives, and the refusal of secrets other users can read. */
/* bbt-test: label=unit timeout=30 */
#include "test.h"

#include "bbt/broker_config.h"
#include "bbt/fileio.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/bbt-test-broker_config-XXXXXX";
static bool dir_made;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static void rm_dir(void)
{
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* DIR/NAME with TEXT and MODE; its path into PATH. */
static void secret_file(const char *name, const char *text, mode_t mode, char *path, size_t size)
{
        FILE *f;

        if (!dir_made) {
                if (!mkdtemp(dir))
                        FAIL("mkdtemp: %s", strerror(errno));
                dir_made = true;
                atexit(rm_dir);
        }
        snprintf(path, size, "%s/%s", dir, name);
        f = fopen(path, "we");
        if (!f)
                FAIL("open %s: %s", path, strerror(errno));
        fputs(text, f);
        if (fclose(f) != 0)
                FAIL("write %s: %s", path, strerror(errno));
        if (chmod(path, mode) < 0)
                FAIL("chmod %s: %s", path, strerror(errno));
}

struct fixture {
        struct bbt_broker_config c;
        struct bbt_mqtt_options o;
        char password[256], err[512];
};

static int options(struct fixture *f)
{
        bbt_mqtt_options_init(&f->o);
        return bbt_broker_config_mqtt_options(&f->c, f->password, sizeof(f->password), &f->o, f->err,
                                              sizeof(f->err));
}

static void fixture_init(struct fixture *f, char *password_file)
{
        memset(f, 0, sizeof(*f));
        f->c.host = (char *)"127.0.0.1";
        f->c.username = (char *)"510107/3151010001/r101";
        f->c.password_file = password_file;
        f->c.keepalive_ms = 60000;
        f->c.backoff_min_ms = 1000;
        f->c.backoff_max_ms = 60000;
}

TEST(private_password_file_is_read)
{
        struct fixture f;
        char path[512];

        secret_file("agent.password", "s3cret-line\nsecond line\n", 0600, path, sizeof(path));
        fixture_init(&f, path);
        ASSERT_OK(options(&f));
        ASSERT_STR_EQ(f.o.password, "s3cret-line");
        ASSERT_STR_EQ(f.o.username, "510107/3151010001/r101");
}

TEST(world_readable_password_file_is_refused)
{
        struct fixture f;
        char path[512], fix[600];

        secret_file("agent.password", "s3cret\n", 0644, path, sizeof(path));
        fixture_init(&f, path);
        ASSERT_EQ(options(&f), -EPERM);
        /* The password was not read, and the message names the file and the fix. */
        ASSERT_STR_EQ(f.password, "");
        ASSERT_STR_CONTAINS(f.err, path);
        ASSERT_STR_CONTAINS(f.err, "other users can read this secret (mode 0644)");
        snprintf(fix, sizeof(fix), "chmod 600 %s", path);
        ASSERT_STR_CONTAINS(f.err, fix);
}

TEST(group_readable_secret_needs_own_group)
{
        struct fixture f;
        char path[512];
        unsigned mode = 0;

        /* Readable by this process's own group: allowed (root:bbt-agent 0640). */
        secret_file("agent.password", "s3cret\n", 0640, path, sizeof(path));
        ASSERT_OK(chown(path, (uid_t)-1, getegid()));
        fixture_init(&f, path);
        ASSERT_OK(options(&f));
        ASSERT_OK(bbt_private_file_check(path, &mode));
        ASSERT_EQ(mode, 0640);
        /* Another group (one a student may be in): refused. Only root may
         * give a file away to a group it is not in. */
        if (geteuid() != 0)
                bbt_test_skip("not root: cannot chgrp to a foreign group");
        {
                struct group *g = getgrnam("nogroup");
                gid_t other = g ? g->gr_gid : 65534;

                if (other == getegid())
                        bbt_test_skip("nogroup is this process's group");
                ASSERT_OK(chown(path, (uid_t)-1, other));
                ASSERT_EQ(options(&f), -EPERM);
                ASSERT_STR_CONTAINS(f.err, "(mode 0640)");
                ASSERT_EQ(bbt_private_file_check(path, NULL), -EPERM);
        }
}

TEST(readable_tls_key_is_refused)
{
        struct fixture f;
        char key[512];

        secret_file("agent.key", "-----BEGIN PRIVATE KEY-----\n", 0604, key, sizeof(key));
        fixture_init(&f, NULL);
        f.c.username = NULL;
        f.c.tls_ca_file = (char *)"/etc/ssl/certs/ca-certificates.crt";
        f.c.tls_cert_file = (char *)"/nonexistent/agent.crt";
        f.c.tls_key_file = key;
        ASSERT_EQ(options(&f), -EPERM);
        ASSERT_STR_CONTAINS(f.err, key);
        ASSERT_STR_CONTAINS(f.err, "(mode 0604)");
        ASSERT_OK(chmod(key, 0600));
        ASSERT_OK(options(&f));
        ASSERT_STR_EQ(f.o.tls_key_file, key);
}

TEST(missing_password_file_is_named)
{
        struct fixture f;

        fixture_init(&f, (char *)"/nonexistent/bbt/agent.password");
        ASSERT_EQ(options(&f), -ENOENT);
        ASSERT_STR_CONTAINS(f.err, "/nonexistent/bbt/agent.password: No such file or directory");
}
