/* A private CA with OpenSSL 3: keys, certificates, CRLs and their DER/base64/PEM encodings. */
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "credential.h"

#define SERIAL_BYTES 16
#define BACKDATE_S 3600 /* a terminal whose clock is a little behind still accepts a new certificate */
#define SAN_MAX 4096

static bool dns_label_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool bbt_pki_host_valid(const char *host)
{
        unsigned char addr[16];
        size_t len = strlen(host), label = 0;

        if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
                return true;
        if (len == 0 || len > 253 || host[0] == '.' || host[len - 1] == '.')
                return false;
        for (const char *p = host; *p; p++) {
                if (*p == '.') {
                        if (label == 0 || p[-1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!dns_label_char(*p) || (label == 0 && *p == '-') || ++label > 63)
                        return false;
        }
        return host[len - 1] != '-';
}

static bool is_ip(const char *host)
{
        unsigned char addr[16];

        return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

int bbt_pki_key_new(EVP_PKEY **ret)
{
        EVP_PKEY *key = EVP_EC_gen("P-256");

        if (!key)
                return -EIO;
        *ret = key;
        return 0;
}

static int set_random_serial(X509 *cert)
{
        unsigned char raw[SERIAL_BYTES];
        BIGNUM *bn;
        int r;

        r = bbt_credential_random(raw, sizeof(raw));
        if (r < 0)
                return r;
        /* Positive, and never shorter than 15 bytes of entropy. */
        raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
        bn = BN_bin2bn(raw, sizeof(raw), NULL);
        if (!bn)
                return -EIO;
        r = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) ? 0 : -EIO;
        BN_free(bn);
        return r;
}

static int set_name(X509_NAME *name, const char *cn)
{
        if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
            !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"bbt", -1, -1, 0))
                return -EIO;
        return 0;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
        int ok;

        if (!ext)
                return -EIO;
        ok = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -EIO;
}

/* The parts every certificate shares: version 3, serial, validity, subject, issuer, key. */
static int cert_begin(X509 *cert, X509 *issuer, EVP_PKEY *key, const char *cn, int days)
{
        int r;

        if (!X509_set_version(cert, 2))
                return -EIO;
        r = set_random_serial(cert);
        if (r < 0)
                return r;
        if (!X509_gmtime_adj(X509_getm_notBefore(cert), -BACKDATE_S) ||
            !X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL))
                return -EIO;
        r = set_name(X509_get_subject_name(cert), cn);
        if (r < 0)
                return r;
        if (!X509_set_issuer_name(cert, X509_get_subject_name(issuer ? issuer : cert)) || !X509_set_pubkey(cert, key))
                return -EIO;
        return 0;
}

/* Signs CERT with SIGNER into *RET, or frees it and returns -EIO. */
static int sign_into(X509 *cert, EVP_PKEY *signer, X509 **ret)
{
        if (!X509_sign(cert, signer, EVP_sha256())) {
                X509_free(cert);
                return -EIO;
        }
        *ret = cert;
        return 0;
}

int bbt_pki_ca_new(EVP_PKEY *key, const char *cn, int days, X509 **ret)
{
        X509V3_CTX ctx;
        X509 *cert = X509_new();
        int r;

        if (!cert)
                return -ENOMEM;
        r = cert_begin(cert, NULL, key, cn, days);
        if (r < 0)
                goto fail;
        X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
        if ((r = add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) < 0 ||
            (r = add_ext(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
            (r = add_ext(cert, &ctx, NID_subject_key_identifier, "hash")) < 0 ||
            (r = add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always")) < 0)
                goto fail;
        return sign_into(cert, key, ret);
fail:
        X509_free(cert);
        return r;
}

int bbt_pki_issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *cn, const char *const *hosts,
                  size_t n_hosts, unsigned usage, int days, X509 **ret)
{
        char san[SAN_MAX] = "", eku[64] = "";
        X509V3_CTX ctx;
        X509 *cert;
        size_t len = 0;
        int r;

        for (size_t i = 0; i < n_hosts; i++) {
                int n;

                if (!bbt_pki_host_valid(hosts[i]))
                        return -EINVAL;
                n = snprintf(san + len, sizeof(san) - len, "%s%s:%s", i ? "," : "", is_ip(hosts[i]) ? "IP" : "DNS",
                             hosts[i]);
                if (n < 0 || (size_t)n >= sizeof(san) - len)
                        return -EINVAL;
                len += (size_t)n;
        }
        snprintf(eku, sizeof(eku), "%s%s%s", usage & BBT_PKI_SERVER ? "serverAuth" : "",
                 (usage & BBT_PKI_SERVER) && (usage & BBT_PKI_CLIENT) ? "," : "",
                 usage & BBT_PKI_CLIENT ? "clientAuth" : "");
        cert = X509_new();
        if (!cert)
                return -ENOMEM;
        r = cert_begin(cert, ca, key, cn, days);
        if (r < 0)
                goto fail;
        X509V3_set_ctx(&ctx, ca, cert, NULL, NULL, 0);
        if ((r = add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
            (r = add_ext(cert, &ctx, NID_key_usage, "critical,digitalSignature")) < 0 ||
            (eku[0] && (r = add_ext(cert, &ctx, NID_ext_key_usage, eku)) < 0) ||
            (r = add_ext(cert, &ctx, NID_subject_key_identifier, "hash")) < 0 ||
            (r = add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always")) < 0 ||
            (san[0] && (r = add_ext(cert, &ctx, NID_subject_alt_name, san)) < 0))
                goto fail;
        return sign_into(cert, ca_key, ret);
fail:
        X509_free(cert);
        return r;
}

int bbt_pki_serial_hex(const X509 *cert, char buf[BBT_PKI_SERIAL_MAX])
{
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        char *hex;
        int r = -EIO;

        if (!bn)
                return -EIO;
        hex = BN_bn2hex(bn);
        if (hex && strlen(hex) < BBT_PKI_SERIAL_MAX) {
                memcpy(buf, hex, strlen(hex) + 1);
                r = 0;
        }
        OPENSSL_free(hex);
        BN_free(bn);
        return r;
}

/* Whether the subjectAltNames of CERT are exactly the N HOSTS. */
static bool san_equal(X509 *cert, const char *const *hosts, size_t n)
{
        GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
        int count = names ? sk_GENERAL_NAME_num(names) : 0;
        bool ok = (size_t)count == n;

        for (size_t i = 0; ok && i < n; i++) {
                unsigned char addr[16];
                int family = strchr(hosts[i], ':') ? AF_INET6 : AF_INET, alen = family == AF_INET6 ? 16 : 4;
                bool ip = inet_pton(family, hosts[i], addr) == 1, found = false;

                for (int j = 0; !found && j < count; j++) {
                        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, j);

                        if (ip && g->type == GEN_IPADD)
                                found = ASN1_STRING_length(g->d.iPAddress) == alen &&
                                        memcmp(ASN1_STRING_get0_data(g->d.iPAddress), addr, (size_t)alen) == 0;
                        else if (!ip && g->type == GEN_DNS)
                                found = (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(hosts[i]) &&
                                        strncasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), hosts[i],
                                                    strlen(hosts[i])) == 0;
                }
                ok = found;
        }
        GENERAL_NAMES_free(names);
        return ok;
}

long bbt_pki_cert_valid_s(const X509 *cert)
{
        int days = 0, secs = 0;

        if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)))
                return -1;
        return (long)days * 86400 + secs;
}

long bbt_pki_crl_valid_s(const X509_CRL *crl)
{
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        int days = 0, secs = 0;

        if (!next || !ASN1_TIME_diff(&days, &secs, NULL, next))
                return -1;
        return (long)days * 86400 + secs;
}

bool bbt_pki_cert_fits(X509 *cert, const char *cn, const char *const *hosts, size_t n_hosts, long min_valid_s)
{
        char have[256];

        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, have, sizeof(have)) < 0 ||
            strcmp(have, cn) != 0)
                return false;
        return san_equal(cert, hosts, n_hosts) && bbt_pki_cert_valid_s(cert) >= min_valid_s;
}

bool bbt_pki_cert_signed_by(X509 *cert, X509 *ca)
{
        EVP_PKEY *pub = X509_get0_pubkey(ca);

        return pub && X509_verify(cert, pub) == 1;
}

static ASN1_INTEGER *serial_from_hex(const char *hex)
{
        BIGNUM *bn = NULL;
        ASN1_INTEGER *serial;

        if (!*hex || strspn(hex, "0123456789ABCDEFabcdef") != strlen(hex) || strlen(hex) >= BBT_PKI_SERIAL_MAX ||
            !BN_hex2bn(&bn, hex))
                return NULL;
        serial = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
        return serial;
}

static int crl_add(X509_CRL *crl, const struct bbt_pki_revoked *rv)
{
        X509_REVOKED *entry = X509_REVOKED_new();
        ASN1_INTEGER *serial = serial_from_hex(rv->serial_hex);
        ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)rv->when);
        int r = -EIO;

        if (!serial) {
                r = -EINVAL;
                goto done;
        }
        if (entry && when && X509_REVOKED_set_serialNumber(entry, serial) &&
            X509_REVOKED_set_revocationDate(entry, when) && X509_CRL_add0_revoked(crl, entry)) {
                entry = NULL; /* owned by the CRL now */
                r = 0;
        }
done:
        X509_REVOKED_free(entry);
        ASN1_INTEGER_free(serial);
        ASN1_TIME_free(when);
        return r;
}

int bbt_pki_crl_new(X509 *ca, EVP_PKEY *ca_key, const struct bbt_pki_revoked *revoked, size_t n, long number,
                    int days, X509_CRL **ret)
{
        X509_CRL *crl = X509_CRL_new();
        ASN1_TIME *t = ASN1_TIME_new();
        ASN1_INTEGER *num = ASN1_INTEGER_new();
        X509_EXTENSION *aki = NULL;
        X509V3_CTX ctx;
        int r = -EIO;

        if (!crl || !t || !num) {
                r = -ENOMEM;
                goto done;
        }
        if (!X509_CRL_set_version(crl, 1) || !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) ||
            !X509_gmtime_adj(t, 0) || !X509_CRL_set1_lastUpdate(crl, t) || !X509_time_adj_ex(t, days, 0, NULL) ||
            !X509_CRL_set1_nextUpdate(crl, t))
                goto done;
        for (size_t i = 0; i < n; i++)
                if ((r = crl_add(crl, &revoked[i])) < 0)
                        goto done;
        r = -EIO;
        if (!X509_CRL_sort(crl) || !ASN1_INTEGER_set(num, number) ||
            !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
                goto done;
        X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
        aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
        if (!aki || !X509_CRL_add_ext(crl, aki, -1) || !X509_CRL_sign(crl, ca_key, EVP_sha256()))
                goto done;
        *ret = crl;
        crl = NULL;
        r = 0;
done:
        X509_EXTENSION_free(aki);
        ASN1_INTEGER_free(num);
        ASN1_TIME_free(t);
        X509_CRL_free(crl);
        return r;
}

/* ---- encodings ---- */

/* DER (LEN bytes, freed here with OPENSSL_free) as base64 text into *RET. */
static int der_to_b64(unsigned char *der, int len, char **ret)
{
        char *text;

        if (len <= 0)
                return -EIO;
        text = malloc(4 * (((size_t)len + 2) / 3) + 1);
        if (!text) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        EVP_EncodeBlock((unsigned char *)text, der, len);
        OPENSSL_clear_free(der, (size_t)len);
        *ret = text;
        return 0;
}

/* Base64 text B64 as DER into *RET (free with OPENSSL_clear_free) and *RET_LEN. */
static int b64_to_der(const char *b64, unsigned char **ret, long *ret_len)
{
        size_t len = strlen(b64);
        unsigned char *der;
        int n;

        if (len == 0 || len % 4 != 0 || len > (64u << 10))
                return -EINVAL;
        der = OPENSSL_malloc(len / 4 * 3 + 1);
        if (!der)
                return -ENOMEM;
        n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)len);
        if (n < 0) {
                OPENSSL_free(der);
                return -EINVAL;
        }
        for (size_t i = len; i > 0 && b64[i - 1] == '='; i--)
                n--;
        *ret = der;
        *ret_len = n;
        return 0;
}

int bbt_pki_cert_to_b64(X509 *cert, char **ret)
{
        unsigned char *der = NULL;
        int len = i2d_X509(cert, &der);

        return der_to_b64(der, len, ret);
}

int bbt_pki_key_to_b64(EVP_PKEY *key, char **ret)
{
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
        unsigned char *der = NULL;
        int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;

        PKCS8_PRIV_KEY_INFO_free(p8);
        return der_to_b64(der, len, ret);
}

int bbt_pki_crl_to_b64(X509_CRL *crl, char **ret)
{
        unsigned char *der = NULL;
        int len = i2d_X509_CRL(crl, &der);

        return der_to_b64(der, len, ret);
}

/* The object d2i makes of B64, or -EINVAL (also for trailing bytes). */
#define FROM_B64(type, d2i, b64, ret)                                                     \
        do {                                                                              \
                unsigned char *der_;                                                      \
                const unsigned char *p_;                                                  \
                long len_;                                                                \
                type *obj_;                                                               \
                int r_ = b64_to_der(b64, &der_, &len_);                                   \
                                                                                          \
                if (r_ < 0)                                                               \
                        return r_;                                                        \
                p_ = der_;                                                                \
                obj_ = d2i(NULL, &p_, len_);                                              \
                if (obj_ && p_ != der_ + len_) {                                          \
                        type##_free(obj_);                                                \
                        obj_ = NULL;                                                      \
                }                                                                         \
                OPENSSL_clear_free(der_, (size_t)len_);                                   \
                if (!obj_)                                                                \
                        return -EINVAL;                                                   \
                *(ret) = obj_;                                                            \
                return 0;                                                                 \
        } while (0)

int bbt_pki_cert_from_b64(const char *b64, X509 **ret)
{
        FROM_B64(X509, d2i_X509, b64, ret);
}

int bbt_pki_key_from_b64(const char *b64, EVP_PKEY **ret)
{
        FROM_B64(EVP_PKEY, d2i_AutoPrivateKey, b64, ret);
}

int bbt_pki_crl_from_b64(const char *b64, X509_CRL **ret)
{
        FROM_B64(X509_CRL, d2i_X509_CRL, b64, ret);
}

int bbt_pki_pem_from_b64(const char *b64, const char *label, char **ret, size_t *ret_len)
{
        size_t len = strlen(b64), size = len + len / 64 + 2 * strlen(label) + 64, at;
        char *pem;

        if (len == 0 || len % 4 != 0 ||
            strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != len)
                return -EINVAL;
        pem = malloc(size);
        if (!pem)
                return -ENOMEM;
        at = (size_t)snprintf(pem, size, "-----BEGIN %s-----\n", label);
        for (size_t i = 0; i < len; i += 64) {
                size_t n = len - i < 64 ? len - i : 64;

                memcpy(pem + at, b64 + i, n);
                at += n;
                pem[at++] = '\n';
        }
        at += (size_t)snprintf(pem + at, size - at, "-----END %s-----\n", label);
        *ret = pem;
        *ret_len = at;
        return 0;
}

const char *bbt_pki_error(char *buf, size_t size)
{
        unsigned long e = ERR_get_error();

        if (!e)
                snprintf(buf, size, "unknown error");
        else
                ERR_error_string_n(e, buf, size);
        ERR_clear_error();
        return buf;
}
