/* Credentials for the broker: random secrets from the kernel's CSPRNG and mosquitto's PBKDF2-SHA512 password hashes. */
#ifndef BBT_CREDENTIAL_H
#define BBT_CREDENTIAL_H

#include <stddef.h>

/* A secret: 24 random bytes as base64url without padding (192 bits). */
#define BBT_CREDENTIAL_SECRET_LEN 32
/* "$7$101$" + base64(12-byte salt) + "$" + base64(64-byte hash) is 113 characters. */
#define BBT_CREDENTIAL_HASH_MAX 128
/* PBKDF2 rounds: mosquitto_passwd's default. The secrets are random, so the
 * hash only has to be one-way, not slow; the broker runs it for every CONNECT
 * and, on a reload, for every connected client. */
#define BBT_CREDENTIAL_ITERATIONS 101

/* Fills BUF with N bytes from getrandom(2) (blocking only until the kernel's
 * pool is initialised, once after boot). Returns 0 or -errno. */
int bbt_credential_random(void *buf, size_t n);

/* A new secret into RET (BBT_CREDENTIAL_SECRET_LEN characters and a NUL):
 * letters, digits, '-' and '_', so it fits a password file's first line and
 * mosquitto's "user:hash" lines. Returns 0 or -errno. */
int bbt_credential_secret_new(char ret[BBT_CREDENTIAL_SECRET_LEN + 1]);

/* The mosquitto 2.0 password-file hash of SECRET with a random 12-byte salt,
 * "$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>", into RET
 * (BBT_CREDENTIAL_HASH_MAX bytes). Returns 0, -EIO (OpenSSL failed) or -errno. */
int bbt_credential_hash(const char *secret, char ret[BBT_CREDENTIAL_HASH_MAX]);

/* Whether HASH (as bbt_credential_hash writes it, any iteration count) is the
 * hash of SECRET: 0 if it is, -EACCES if not, -EINVAL if HASH is malformed. */
int bbt_credential_verify(const char *secret, const char *hash);

#endif
