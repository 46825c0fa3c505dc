/* bbt-provision's command line: help, located registry errors, idempotent re-runs, revocation, rotation, private files, archives the agent accepts. */
/* bbt-test: label=unit timeout=60 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "test.h"

#define COUNTY "510107"
#define SCHOOL_A "3151010001"
#define SCHOOL_B "3151010002"
#define BUNDLE_A "terminals/" COUNTY "-" SCHOOL_A "/r101"

static struct {
        const char *dir;
        char schools[400], terminals[400], out[400], log[400];
} env;

static const char terminals_csv[] = "学校代码,终端编号,教室,应配外设\n" SCHOOL_A ",r101,\"一年级(1)班\n东楼\",展台、触摸框\n"
                                    SCHOOL_A ",r102,一年级(2)班,\n" SCHOOL_B ",r101,实验室,音箱\n";

static void setup(void)
{
        env.dir = bbt_test_tmp_init("provision");
        snprintf(env.schools, sizeof(env.schools), "%s/schools.csv", env.dir);
        snprintf(env.terminals, sizeof(env.terminals), "%s/terminals.csv", env.dir);
        snprintf(env.out, sizeof(env.out), "%s/out", env.dir);
        snprintf(env.log, sizeof(env.log), "%s/provision.log", env.dir);
        bbt_test_write_file(env.schools, "county_code,school_code,school_name,type,area,students\n"
                                         COUNTY "," SCHOOL_A ",一小,primary,urban,800\n"
                                         COUNTY "," SCHOOL_B ",二小,primary,rural,300\n");
        bbt_test_write_file(env.terminals, terminals_csv);
}

/* Runs bbt-provision with the NULL-terminated ARGS (after -o -s -t unless
 * BARE); returns its exit status; its output is in env.log (truncated first). */
static int run(bool bare, const char *const *args)
{
        char exe[512];
        const char *argv[48] = { bbt_test_exe("tools/provision", "bbt-provision", exe, sizeof(exe)) };
        size_t n = 1;
        int status;

        if (!bare) {
                const char *std[] = { "-o", env.out, "-s", env.schools, "-t", env.terminals };

                for (size_t i = 0; i < 6; i++)
                        argv[n++] = std[i];
        }
        for (; args && *args && n < 46; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        truncate(env.log, 0);
        status = bbt_test_run((char *const *)argv, env.log, env.log, 30000);
        if (!WIFEXITED(status))
                FAIL("bbt-provision: %s", bbt_test_status_text(status));
        return WEXITSTATUS(status);
}

static void run_ok(const char *const *args)
{
        int code = run(false, args);

        if (code != 0) {
                bbt_test_dump_tail(env.log, 8192);
                FAIL("bbt-provision exited %d", code);
        }
}

static const char *const first_run[] = { "--broker", "mqtt.county.example", "--broker", "10.1.2.3", NULL };

static char *out_file(const char *rel)
{
        char path[600];

        snprintf(path, sizeof(path), "%s/%s", env.out, rel);
        return bbt_test_slurp(path);
}

static bool out_exists(const char *rel)
{
        char path[600];

        snprintf(path, sizeof(path), "%s/%s", env.out, rel);
        return access(path, F_OK) == 0;
}

static unsigned out_mode(const char *rel)
{
        char path[600];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", env.out, rel);
        if (stat(path, &st) < 0)
                FAIL("%s: %s", path, strerror(errno));
        return st.st_mode & 07777;
}

/* Every file under the output, with its size and mtime, as one text: two
 * snapshots are equal when nothing was rewritten. */
static void snapshot_dir(const char *dir, const char *rel, FILE *f)
{
        char path[1300];
        struct dirent **names;
        int n;

        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        n = scandir(path, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                char sub[400];
                struct stat st;

                if (names[i]->d_name[0] != '.') {
                        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", names[i]->d_name);
                        snprintf(path, sizeof(path), "%s/%s", dir, sub);
                        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                                snapshot_dir(dir, sub, f);
                        } else {
                                char *text = bbt_test_slurp(path);

                                fprintf(f, "%s %o %lld %ld.%09ld %zu\n", sub, (unsigned)st.st_mode,
                                        (long long)st.st_size, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                                        strlen(text));
                                free(text);
                        }
                }
                free(names[i]);
        }
        free(names);
}

static char *snapshot(void)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        snapshot_dir(env.out, "", f);
        fclose(f);
        return text;
}

TEST(help_version_and_usage_errors)
{
        static const char *const help[] = { "--help", NULL }, *const version[] = { "--version", NULL },
                                 *const bogus[] = { "--frobnicate", NULL }, *const bad_acl[] = { "--acl", "x", NULL },
                                 *const bad_name[] = { "--aggregator", "bridge-x", NULL };

        setup();
        ASSERT_EQ(run(true, help), 0);
        ASSERT(bbt_test_file_contains(env.log, "Usage: bbt-provision"));
        ASSERT(bbt_test_file_contains(env.log, "--rotate NAME"));
        ASSERT_EQ(run(true, version), 0);
        ASSERT(bbt_test_file_contains(env.log, "bbt-provision " BBT_VERSION));
        ASSERT_EQ(run(true, bogus), 2);
        ASSERT_EQ(run(true, NULL), 2);
        ASSERT(bbt_test_file_contains(env.log, "--out is required"));
        ASSERT_EQ(run(false, bad_acl), 2);
        ASSERT(bbt_test_file_contains(env.log, "--acl: expected pattern or explicit"));
        ASSERT_EQ(run(false, bad_name), 2);
        ASSERT(bbt_test_file_contains(env.log, "--aggregator bridge-x: expected"));
        /* The first run must be told the broker's name. */
        ASSERT_EQ(run(false, NULL), 2);
        ASSERT(bbt_test_file_contains(env.log, "--broker is required on the first run"));
        ASSERT(!out_exists("ledger"));
        bbt_test_passed();
}

TEST(registry_errors_are_located_and_nothing_is_written)
{
        setup();
        bbt_test_write_file(env.terminals, "学校代码,终端编号,教室\n" SCHOOL_A ",r101,一\n" SCHOOL_A ",r 101,二\n"
                                           "3151019999,r1,三\n" SCHOOL_A ",r101,四\n");
        ASSERT_EQ(run(false, first_run), 2);
        ASSERT(bbt_test_file_contains(env.log, "terminals.csv:3: column terminal_id (终端编号): expected 1 to 32 of "
                                               "A-Z a-z 0-9 _ -, got \"r 101\""));
        ASSERT(bbt_test_file_contains(env.log, "terminals.csv:4: column school_code (学校代码): no school 3151019999 "
                                               "in the registry"));
        ASSERT(bbt_test_file_contains(env.log, "terminals.csv:5: column terminal_id (终端编号): terminal r101 of "
                                               "school " SCHOOL_A " is also on line 2"));
        ASSERT(bbt_test_file_contains(env.log, "nothing changed"));
        ASSERT(!out_exists("ledger"));
        bbt_test_passed();
}

TEST(rerun_keeps_every_secret_and_rewrites_nothing)
{
        char *before, *after, *ledger1, *ledger2;

        setup();
        run_ok(first_run);
        ASSERT(bbt_test_file_contains(env.log, "3 terminals: 3 new"));
        before = snapshot();
        ledger1 = out_file("ledger");
        run_ok(NULL); /* the broker names are remembered */
        ASSERT(bbt_test_file_contains(env.log, "3 terminals: 0 new, 3 unchanged, 0 rotated, 0 revoked"));
        after = snapshot();
        ledger2 = out_file("ledger");
        ASSERT_STR_EQ(after, before);
        ASSERT_STR_EQ(ledger2, ledger1);
        free(before);
        free(after);
        free(ledger1);
        free(ledger2);
        bbt_test_passed();
}

TEST(removed_terminal_is_revoked_and_rotation_touches_one)
{
        static const char *const rotate[] = { "--rotate", SCHOOL_B "/r101", NULL };
        char *a1, *b1, *c1, *a2, *c2, *b3, *passwd, *ledger;

        setup();
        run_ok(first_run);
        a1 = out_file(BUNDLE_A "/agent.password");
        b1 = out_file("terminals/" COUNTY "-" SCHOOL_A "/r102/agent.password");
        c1 = out_file("terminals/" COUNTY "-" SCHOOL_B "/r101/agent.password");
        /* r102 leaves the registry; r101 of school B is rotated. */
        bbt_test_write_file(env.terminals, "学校代码,终端编号\n" SCHOOL_A ",r101\n" SCHOOL_B ",r101\n");
        run_ok(rotate);
        ASSERT(bbt_test_file_contains(env.log, "2 terminals: 0 new, 1 unchanged, 1 rotated, 1 revoked"));
        a2 = out_file(BUNDLE_A "/agent.password");
        c2 = out_file("terminals/" COUNTY "-" SCHOOL_B "/r101/agent.password");
        ASSERT_STR_EQ(a2, a1);
        ASSERT(strcmp(c2, c1) != 0);
        ASSERT(!out_exists("terminals/" COUNTY "-" SCHOOL_A "/r102"));
        passwd = out_file("broker/passwd");
        ASSERT(strstr(passwd, COUNTY "/" SCHOOL_A "/r101:$7$") != NULL);
        ASSERT(strstr(passwd, COUNTY "/" SCHOOL_A "/r102") == NULL);
        ledger = out_file("ledger");
        ASSERT(strstr(ledger, "p terminal " COUNTY "/" SCHOOL_A "/r102 revoked") != NULL);
        /* Back in the registry: new credentials, not the revoked ones. */
        bbt_test_write_file(env.terminals, terminals_csv);
        run_ok(NULL);
        ASSERT(bbt_test_file_contains(env.log, "1 back in the registry"));
        b3 = out_file("terminals/" COUNTY "-" SCHOOL_A "/r102/agent.password");
        ASSERT(strlen(b3) == 33 && strcmp(b3, b1) != 0);
        /* Rotating what does not exist is an error, and changes nothing. */
        {
                static const char *const bad[] = { "--rotate", SCHOOL_A "/r999", NULL };
                char *ledger_before = out_file("ledger"), *ledger_after;

                ASSERT_EQ(run(false, bad), 2);
                ASSERT(bbt_test_file_contains(env.log, "--rotate " SCHOOL_A "/r999: no active terminal"));
                ledger_after = out_file("ledger");
                ASSERT_STR_EQ(ledger_after, ledger_before);
                free(ledger_before);
                free(ledger_after);
        }
        free(a1), free(b1), free(c1), free(a2), free(c2), free(b3), free(passwd), free(ledger);
        bbt_test_passed();
}

TEST(secrets_are_private)
{
        setup();
        run_ok(first_run);
        ASSERT_EQ(out_mode(""), 0700);
        ASSERT_EQ(out_mode("ledger"), 0600);
        ASSERT_EQ(out_mode("broker/passwd"), 0600);
        ASSERT_EQ(out_mode("broker/broker.key"), 0600);
        ASSERT_EQ(out_mode("broker/ca.crt"), 0644);
        ASSERT_EQ(out_mode(BUNDLE_A "/agent.password"), 0600);
        ASSERT_EQ(out_mode(BUNDLE_A "/agent.conf"), 0640);
        ASSERT_EQ(out_mode("schools/" COUNTY "-" SCHOOL_A ".tar.gz"), 0600);
        ASSERT_EQ(out_mode("aggregators/bbt-aggregator/aggregator.password"), 0600);
        /* The CA's key is in the ledger only. */
        ASSERT(!bbt_test_file_contains(env.log, "PRIVATE"));
        {
                char *ca = out_file("broker/ca.crt");

                ASSERT(strstr(ca, "PRIVATE") == NULL);
                free(ca);
        }
        bbt_test_passed();
}

/* The school's archive holds each terminal's bundle as written, README.txt and install.sh. */
TEST(school_archive_holds_the_bundles)
{
        struct archive *a = archive_read_new();
        struct archive_entry *e;
        char path[600], *conf = NULL, *bundle_conf;
        int entries = 0, r;
        bool password_private = false, readme = false, install = false;

        setup();
        run_ok(first_run);
        snprintf(path, sizeof(path), "%s/schools/" COUNTY "-" SCHOOL_A ".tar.gz", env.out);
        archive_read_support_filter_all(a);
        archive_read_support_format_all(a);
        ASSERT_EQ(archive_read_open_filename(a, path, 16384), ARCHIVE_OK);
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
                const char *name = archive_entry_pathname(e);

                entries++;
                if (strcmp(name, COUNTY "-" SCHOOL_A "/r101/agent.conf") == 0) {
                        size_t size = (size_t)archive_entry_size(e);

                        conf = calloc(1, size + 1);
                        ASSERT_EQ(archive_read_data(a, conf, size), (la_ssize_t)size);
                }
                if (strcmp(name, COUNTY "-" SCHOOL_A "/r102/agent.password") == 0)
                        password_private = (archive_entry_perm(e) & 0777) == 0600;
                readme |= strcmp(name, COUNTY "-" SCHOOL_A "/README.txt") == 0;
                install |= strcmp(name, COUNTY "-" SCHOOL_A "/install.sh") == 0;
                ASSERT(strstr(name, SCHOOL_B) == NULL);
        }
        ASSERT_EQ(r, ARCHIVE_EOF);
        archive_read_free(a);
        ASSERT_EQ(entries, 1 + 2 + 2 * 3);
        ASSERT(password_private && readme && install && conf);
        bundle_conf = out_file(BUNDLE_A "/agent.conf");
        ASSERT_STR_EQ(conf, bundle_conf);
        ASSERT_STR_CONTAINS(conf, "username = " COUNTY "/" SCHOOL_A "/r101\n");
        ASSERT_STR_CONTAINS(conf, "host = mqtt.county.example\nport = 8883\n");
        ASSERT_STR_CONTAINS(conf, "expect = camera, touch\n");
        /* The room's line break does not end the comment. */
        ASSERT_STR_CONTAINS(conf, "room 一年级(1)班 东楼\n");
        {
                char script[600], *argv[] = { (char *)"/bin/sh", (char *)"-n", script, NULL };

                snprintf(script, sizeof(script), "%s/terminals/" COUNTY "-" SCHOOL_A "/install.sh", env.out);
                ASSERT_EQ(bbt_test_run(argv, env.log, env.log, 5000), 0);
        }
        free(conf);
        free(bundle_conf);
        bbt_test_passed();
}

/* The agent reads a bundle's agent.conf as it is. */
TEST(agent_accepts_its_bundle)
{
        char conf_dir[500], opt[600], conf[600], exe[512];
        const char *args[] = { "--broker", "mqtt.county.example", "--conf-dir", opt, NULL };
        char *argv[] = { (char *)bbt_test_exe("agent", "bbt-agent", exe, sizeof(exe)), (char *)"-c", conf,
                         (char *)"--check-config", NULL };
        int status;

        setup();
        snprintf(conf_dir, sizeof(conf_dir), "%s/" BUNDLE_A, env.out);
        snprintf(opt, sizeof(opt), "%s", conf_dir);
        run_ok(args);
        snprintf(conf, sizeof(conf), "%s/agent.conf", conf_dir);
        status = bbt_test_run(argv, env.log, env.log, 10000);
        if (status != 0) {
                bbt_test_dump_tail(env.log, 4096);
                FAIL("bbt-agent --check-config: %s", bbt_test_status_text(status));
        }
        ASSERT(bbt_test_file_contains(env.log, "password_file = "));
        ASSERT(bbt_test_file_contains(env.log, "tls_ca_file = "));
        bbt_test_passed();
}

TEST(explicit_acl_and_client_certificates)
{
        static const char *const explicit_certs[] = { "--broker", "10.1.2.3", "--acl", "explicit", "--client-certs",
                                                      NULL };
        char *acl, *passwd, *conf;

        setup();
        run_ok(explicit_certs);
        acl = out_file("broker/acl");
        ASSERT(strstr(acl, "pattern ") == NULL);
        ASSERT_STR_CONTAINS(acl, "\nuser " COUNTY "/" SCHOOL_A "/r101\ntopic write bbt/v1/" COUNTY "/" SCHOOL_A
                                 "/r101/state\n");
        ASSERT_STR_CONTAINS(acl, "topic read bbt/v1/" COUNTY "/" SCHOOL_B "/r101/cmd\n");
        ASSERT_STR_CONTAINS(acl, "\nuser bbt-aggregator\ntopic read bbt/v1/#\ntopic write bbt/v1/+/+/+/cmd\n");
        passwd = out_file("broker/passwd");
        ASSERT(strstr(passwd, COUNTY "/") == NULL); /* terminals log in by certificate */
        ASSERT_STR_CONTAINS(passwd, "bbt-aggregator:$7$101$");
        conf = out_file(BUNDLE_A "/agent.conf");
        ASSERT_STR_CONTAINS(conf, "port = 8884\n");
        ASSERT_STR_CONTAINS(conf, "tls_cert_file = /etc/bbt/agent.crt\ntls_key_file = /etc/bbt/agent.key\n");
        ASSERT(out_exists(BUNDLE_A "/agent.key") && !out_exists(BUNDLE_A "/agent.password"));
        ASSERT_EQ(out_mode(BUNDLE_A "/agent.key"), 0600);
        free(acl);
        free(passwd);
        free(conf);
        bbt_test_passed();
}

TEST(bridge_gets_its_school_broker_files)
{
        static const char *const bridge[] = { "--broker", "mqtt.county.example", "--bridge",
                                              SCHOOL_A "=school-a.example,10.9.0.5", NULL };
        static const char *const revoke[] = { "--revoke", "bridge-" COUNTY "-" SCHOOL_A, NULL };
        char *conf, *school_conf, *acl, *passwd;

        setup();
        run_ok(bridge);
        school_conf = out_file("terminals/" COUNTY "-" SCHOOL_A "/school.broker/bbt-school.conf");
        ASSERT(strchr(school_conf, '@') == NULL); /* every placeholder filled in */
        ASSERT_STR_CONTAINS(school_conf, "\naddress mqtt.county.example:8883\n");
        ASSERT_STR_CONTAINS(school_conf, "\nremote_username bridge-" COUNTY "-" SCHOOL_A "\n");
        ASSERT_STR_CONTAINS(school_conf, "\ntopic bbt/v1/" COUNTY "/" SCHOOL_A "/+/cmd in 1\n");
        ASSERT_EQ(out_mode("terminals/" COUNTY "-" SCHOOL_A "/school.broker/bbt-school.conf"), 0640);
        /* The school's terminals connect to the school broker; the other school's to the county. */
        conf = out_file(BUNDLE_A "/agent.conf");
        ASSERT_STR_CONTAINS(conf, "host = school-a.example\n");
        free(conf);
        conf = out_file("terminals/" COUNTY "-" SCHOOL_B "/r101/agent.conf");
        ASSERT_STR_CONTAINS(conf, "host = mqtt.county.example\n");
        free(conf);
        /* The school broker knows only its school's terminals. */
        passwd = out_file("terminals/" COUNTY "-" SCHOOL_A "/school.broker/passwd");
        ASSERT_STR_CONTAINS(passwd, COUNTY "/" SCHOOL_A "/r102:");
        ASSERT(strstr(passwd, SCHOOL_B) == NULL && strstr(passwd, "aggregator") == NULL);
        acl = out_file("broker/acl");
        ASSERT_STR_CONTAINS(acl, "\nuser bridge-" COUNTY "-" SCHOOL_A "\ntopic write bbt/v1/" COUNTY "/" SCHOOL_A
                                 "/+/state\n");
        free(acl);
        /* Revoked: gone from the county's files, its school broker's folder removed. */
        run_ok(revoke);
        acl = out_file("broker/acl");
        ASSERT(strstr(acl, "bridge-") == NULL);
        ASSERT(!out_exists("terminals/" COUNTY "-" SCHOOL_A "/school.broker"));
        conf = out_file(BUNDLE_A "/agent.conf");
        ASSERT_STR_CONTAINS(conf, "host = mqtt.county.example\n");
        free(conf);
        free(acl);
        free(passwd);
        free(school_conf);
        bbt_test_passed();
}

TEST(damaged_ledger_or_busy_directory_changes_nothing)
{
        char path[600], *before, *after;
        int fd;

        setup();
        run_ok(first_run);
        snprintf(path, sizeof(path), "%s/ledger", env.out);
        before = bbt_test_slurp(path);
        /* Another run at work: refused. */
        fd = open(env.out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT(fd >= 0);
        ASSERT_OK(flock(fd, LOCK_EX));
        ASSERT_EQ(run(false, NULL), 1);
        ASSERT(bbt_test_file_contains(env.log, "another bbt-provision is working on it"));
        close(fd);
        /* A damaged ledger: refused, with its line, not replaced by new secrets. */
        {
                FILE *f = fopen(path, "ae");

                ASSERT(f != NULL);
                fputs("p terminal broken\n", f);
                fclose(f);
        }
        ASSERT_EQ(run(false, NULL), 1);
        ASSERT(bbt_test_file_contains(env.log, "ledger:"));
        ASSERT(bbt_test_file_contains(env.log, "principal: expected 12 fields"));
        ASSERT(bbt_test_file_contains(env.log, "restore it from a backup"));
        after = bbt_test_slurp(path);
        ASSERT(strncmp(after, before, strlen(before)) == 0);
        free(before);
        free(after);
        bbt_test_passed();
}
