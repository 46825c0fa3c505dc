/* Random secrets (getrandom) and mosquitto's $7$ password hashes (PBKDF2-HMAC-SHA512 through OpenSSL). */
#include "credential.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define SALT_LEN 12   /* mosquitto refuses any other salt length */
#define DIGEST_LEN 64 /* SHA-512 */

int bbt_credential_random(void *buf, size_t n)
{
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t r = getrandom(p, n, 0);

                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += r;
                n -= (size_t)r;
        }
        return 0;
}

int bbt_credential_secret_new(char ret[BBT_CREDENTIAL_SECRET_LEN + 1])
{
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint8_t raw[BBT_CREDENTIAL_SECRET_LEN * 3 / 4];
        int r = bbt_credential_random(raw, sizeof(raw));

        if (r < 0)
                return r;
        /* base64url of 24 bytes: 32 characters, 6 bits each. */
        for (size_t i = 0, o = 0; i < sizeof(raw); i += 3) {
                uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];

                ret[o++] = alphabet[(v >> 18) & 63];
                ret[o++] = alphabet[(v >> 12) & 63];
                ret[o++] = alphabet[(v >> 6) & 63];
                ret[o++] = alphabet[v & 63];
        }
        ret[BBT_CREDENTIAL_SECRET_LEN] = '\0';
        OPENSSL_cleanse(raw, sizeof(raw));
        return 0;
}

static int pbkdf2(const char *secret, const uint8_t *salt, size_t salt_len, int iterations, uint8_t out[DIGEST_LEN])
{
        if (PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, (int)salt_len, iterations, EVP_sha512(), DIGEST_LEN,
                              out) != 1)
                return -EIO;
        return 0;
}

int bbt_credential_hash(const char *secret, char ret[BBT_CREDENTIAL_HASH_MAX])
{
        uint8_t salt[SALT_LEN], digest[DIGEST_LEN];
        char salt64[4 * ((SALT_LEN + 2) / 3) + 1], digest64[4 * ((DIGEST_LEN + 2) / 3) + 1];
        int r;

        r = bbt_credential_random(salt, sizeof(salt));
        if (r == 0)
                r = pbkdf2(secret, salt, sizeof(salt), BBT_CREDENTIAL_ITERATIONS, digest);
        if (r < 0)
                return r;
        EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
        EVP_EncodeBlock((unsigned char *)digest64, digest, sizeof(digest));
        snprintf(ret, BBT_CREDENTIAL_HASH_MAX, "$7$%d$%s$%s", BBT_CREDENTIAL_ITERATIONS, salt64, digest64);
        OPENSSL_cleanse(digest, sizeof(digest));
        return 0;
}

/* Decodes the standard base64 text S (with padding) into exactly WANT bytes of OUT. */
static int b64_exact(const char *s, size_t len, uint8_t *out, size_t want)
{
        uint8_t buf[128];
        int n;

        if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(buf))
                return -EINVAL;
        n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
        if (n < 0)
                return -EINVAL;
        /* EVP_DecodeBlock counts the padding as zero bytes. */
        for (size_t i = len; i > 0 && s[i - 1] == '='; i--)
                n--;
        if ((size_t)n != want)
                return -EINVAL;
        memcpy(out, buf, want);
        return 0;
}

int bbt_credential_verify(const char *secret, const char *hash)
{
        uint8_t salt[SALT_LEN], want[DIGEST_LEN], got[DIGEST_LEN];
        const char *salt_s, *digest_s;
        char *end;
        long iterations;
        int r;

        if (strncmp(hash, "$7$", 3) != 0)
                return -EINVAL;
        errno = 0;
        iterations = strtol(hash + 3, &end, 10);
        if (errno || end == hash + 3 || *end != '$' || iterations < 1 || iterations > 10000000)
                return -EINVAL;
        salt_s = end + 1;
        digest_s = strchr(salt_s, '$');
        if (!digest_s)
                return -EINVAL;
        if (b64_exact(salt_s, (size_t)(digest_s - salt_s), salt, sizeof(salt)) < 0 ||
            b64_exact(digest_s + 1, strlen(digest_s + 1), want, sizeof(want)) < 0)
                return -EINVAL;
        r = pbkdf2(secret, salt, sizeof(salt), (int)iterations, got);
        if (r < 0)
                return r;
        r = CRYPTO_memcmp(want, got, sizeof(got)) == 0 ? 0 : -EACCES;
        OPENSSL_cleanse(got, sizeof(got));
        return r;
}
