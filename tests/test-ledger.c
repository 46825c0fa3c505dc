/* Tests for tools/provision/ledger.c: what a run remembers survives a save and a load exactly; a damaged ledger is refused with its line. */
/* bbt-test: label=unit timeout=30 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "ledger.h"

static int open_dir(const char *dir)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                FAIL("open %s: %s", dir, strerror(errno));
        return fd;
}

static void fill(struct bbt_ledger *l)
{
        struct bbt_principal *p;

        bbt_ledger_init(l);
        l->set.brokers = calloc(2, sizeof(char *));
        l->set.brokers[0] = strdup("mqtt.county.example");
        l->set.brokers[1] = strdup("10.1.2.3");
        l->set.n_brokers = 2;
        l->set.client_certs = true;
        l->set.days = 825;
        ASSERT_OK(bbt_ledger_set_str(&l->set.conf_dir, "/etc/bbt dir"));
        p = bbt_ledger_add(l, BBT_PRINCIPAL_TERMINAL, "510107/3151010001/r101");
        ASSERT(p != NULL);
        snprintf(p->secret, sizeof(p->secret), "secret-r101");
        snprintf(p->hash, sizeof(p->hash), "$7$101$abc$def");
        snprintf(p->serial, sizeof(p->serial), "4A0F");
        p->issued = 1700000000;
        ASSERT_OK(bbt_ledger_set_str(&p->key, "S0VZ"));
        ASSERT_OK(bbt_ledger_set_str(&p->cert, "Q0VSVA=="));
        p = bbt_ledger_add(l, BBT_PRINCIPAL_AGGREGATOR, "bbt-aggregator");
        ASSERT(p != NULL);
        p->revoked = true;
        p->revoked_at = 1700000100;
        p = bbt_ledger_add(l, BBT_PRINCIPAL_SERVER, "broker");
        ASSERT(p != NULL);
        ASSERT_OK(bbt_ledger_set_str(&p->hosts, "mqtt.county.example,10.1.2.3"));
        ASSERT_OK(bbt_ledger_crl_add(l, "7B", 1700000200, "510107/3151010001/r102"));
        l->crl_number = 4;
        l->crl_listed = 1;
        ASSERT_OK(bbt_ledger_set_str(&l->crl_b64, "Q1JM"));
}

TEST(save_and_load_round_trip)
{
        const char *dir = bbt_test_tmp_init("ledger");
        struct bbt_ledger a, b;
        struct bbt_principal *p;
        char path[512], err[512];
        struct stat st;
        int fd = open_dir(dir);

        fill(&a);
        ASSERT_OK(bbt_ledger_save(&a, fd, "ledger"));
        snprintf(path, sizeof(path), "%s/ledger", dir);
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 0777, 0600);
        bbt_ledger_init(&b);
        ASSERT_OK(bbt_ledger_load(&b, path, err, sizeof(err)));
        ASSERT_EQ(b.set.n_brokers, 2);
        ASSERT_STR_EQ(b.set.brokers[1], "10.1.2.3");
        ASSERT_STR_EQ(b.set.conf_dir, "/etc/bbt dir");
        ASSERT(b.set.client_certs);
        ASSERT(!b.set.acl_explicit);
        ASSERT_EQ(b.set.days, 825);
        ASSERT_EQ(b.set.port, 8883);
        ASSERT_EQ(b.n, 3);
        p = bbt_ledger_find(&b, "510107/3151010001/r101");
        ASSERT(p != NULL);
        ASSERT_EQ(p->kind, BBT_PRINCIPAL_TERMINAL);
        ASSERT_STR_EQ(p->secret, "secret-r101");
        ASSERT_STR_EQ(p->hash, "$7$101$abc$def");
        ASSERT_STR_EQ(p->serial, "4A0F");
        ASSERT_STR_EQ(p->key, "S0VZ");
        ASSERT_STR_EQ(p->cert, "Q0VSVA==");
        ASSERT_EQ(p->issued, 1700000000);
        ASSERT(!p->revoked);
        p = bbt_ledger_find(&b, "bbt-aggregator");
        ASSERT(p != NULL && p->revoked && p->revoked_at == 1700000100 && !p->secret[0] && !p->key);
        p = bbt_ledger_find(&b, "broker");
        ASSERT(p != NULL);
        ASSERT_STR_EQ(p->hosts, "mqtt.county.example,10.1.2.3");
        ASSERT(bbt_ledger_find(&b, "nobody") == NULL);
        ASSERT_EQ(b.n_crl, 1);
        ASSERT_STR_EQ(b.crl[0].serial, "7B");
        ASSERT_STR_EQ(b.crl[0].name, "510107/3151010001/r102");
        ASSERT_EQ(b.crl_number, 4);
        ASSERT_EQ(b.crl_listed, 1);
        ASSERT_STR_EQ(b.crl_b64, "Q1JM");
        /* Saved again, the same bytes. */
        {
                char *first = bbt_test_slurp(path), *second;

                ASSERT_OK(bbt_ledger_save(&b, fd, "ledger"));
                second = bbt_test_slurp(path);
                ASSERT_STR_EQ(second, first);
                free(first);
                free(second);
        }
        bbt_ledger_clear(&a);
        bbt_ledger_clear(&b);
        close(fd);
        bbt_test_passed();
}

static void expect_refused(const char *dir, const char *text, const char *want)
{
        struct bbt_ledger l;
        char path[512], err[512];

        snprintf(path, sizeof(path), "%s/bad", dir);
        bbt_test_write_file(path, text);
        bbt_ledger_init(&l);
        ASSERT_EQ(bbt_ledger_load(&l, path, err, sizeof(err)), -EINVAL);
        ASSERT_STR_CONTAINS(err, want);
        bbt_ledger_clear(&l);
}

TEST(damaged_ledger_is_refused_with_its_line)
{
        const char *dir = bbt_test_tmp_init("ledger");
        struct bbt_ledger l;
        char path[512], err[512];

        expect_refused(dir, "", "bad:0: empty file");
        expect_refused(dir, "something else\n", "bad:1: not a bbt-provision ledger");
        expect_refused(dir, "bbt-provision-ledger 1\nset port 99999\n", "bad:2: port: expected 1..65535");
        expect_refused(dir, "bbt-provision-ledger 1\n# fine\np terminal a/b/c active 1 0 s h - - - -\nzap\n",
                       "bad:4: unknown line \"zap\"");
        expect_refused(dir, "bbt-provision-ledger 1\np terminal a/b/c active 1\n",
                       "bad:2: principal: expected 12 fields, got 5");
        expect_refused(dir, "bbt-provision-ledger 1\np wizard x active 1 0 - - - - - -\n", "unknown kind \"wizard\"");
        expect_refused(dir,
                       "bbt-provision-ledger 1\np operator x active 1 0 - - - - - -\np operator x active 1 0 - - - - - -\n",
                       "x is listed twice");
        snprintf(path, sizeof(path), "%s/none", dir);
        bbt_ledger_init(&l);
        ASSERT_EQ(bbt_ledger_load(&l, path, err, sizeof(err)), -ENOENT);
        bbt_ledger_clear(&l);
        bbt_test_passed();
}
