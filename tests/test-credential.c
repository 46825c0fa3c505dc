/* Tests for tools/provision/credential.c: secrets from getrandom, and mosquitto's $7$ hashes checked against mosquitto_passwd. */
/* bbt-test: label=unit timeout=30 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "broker.h"
#include "credential.h"
#include "daemon.h"

TEST(secret_is_32_url_safe_characters_and_new_each_time)
{
        char a[BBT_CREDENTIAL_SECRET_LEN + 1], b[BBT_CREDENTIAL_SECRET_LEN + 1];

        ASSERT_OK(bbt_credential_secret_new(a));
        ASSERT_OK(bbt_credential_secret_new(b));
        ASSERT_EQ(strlen(a), BBT_CREDENTIAL_SECRET_LEN);
        ASSERT_EQ(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), strlen(a));
        ASSERT(strcmp(a, b) != 0);
}

TEST(hash_verifies_its_secret_only)
{
        char hash[BBT_CREDENTIAL_HASH_MAX], again[BBT_CREDENTIAL_HASH_MAX];

        ASSERT_OK(bbt_credential_hash("correct horse", hash));
        ASSERT(strncmp(hash, "$7$101$", 7) == 0);
        ASSERT_EQ(strlen(hash), 7 + 16 + 1 + 88);
        ASSERT_OK(bbt_credential_verify("correct horse", hash));
        ASSERT_EQ(bbt_credential_verify("correct horsf", hash), -EACCES);
        ASSERT_EQ(bbt_credential_verify("", hash), -EACCES);
        /* A new salt each time. */
        ASSERT_OK(bbt_credential_hash("correct horse", again));
        ASSERT(strcmp(hash, again) != 0);
}

TEST(malformed_hashes_are_refused)
{
        ASSERT_EQ(bbt_credential_verify("x", "$6$abc$def"), -EINVAL);
        ASSERT_EQ(bbt_credential_verify("x", "$7$0$AAAAAAAAAAAAAAAA$AAAA"), -EINVAL);
        ASSERT_EQ(bbt_credential_verify("x", "$7$101$AAAA$AAAA"), -EINVAL);
        ASSERT_EQ(bbt_credential_verify("x", "$7$101$AAAAAAAAAAAAAAAA"), -EINVAL);
        ASSERT_EQ(bbt_credential_verify("x", "plain"), -EINVAL);
}

/* The independent check: a hash made by mosquitto's own mosquitto_passwd
 * verifies with our code, so ours is the same construction. */
TEST(verifies_mosquitto_passwd_hashes)
{
        const char *dir = bbt_test_tmp_init("credential");
        char path[512], *text, *colon;

        snprintf(path, sizeof(path), "%s/passwd", dir);
        bbt_test_make_passwd(path, "510107/3151010001/r101", "Zx9-secret_from_mosquitto");
        text = bbt_test_slurp(path);
        colon = strchr(text, ':');
        ASSERT(colon != NULL);
        colon[1 + strcspn(colon + 1, "\r\n")] = '\0';
        ASSERT(strncmp(text, "510107/3151010001/r101:", 23) == 0);
        ASSERT(strncmp(colon + 1, "$7$", 3) == 0);
        ASSERT_OK(bbt_credential_verify("Zx9-secret_from_mosquitto", colon + 1));
        ASSERT_EQ(bbt_credential_verify("Zx9-secret_from_mosquittO", colon + 1), -EACCES);
        free(text);
        bbt_test_passed();
}
