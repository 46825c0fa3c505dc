/* Tests for tools/provision/pki.c: a CA, server and client certificates that OpenSSL's verifier accepts, subjectAltNames, a CRL that revokes, the encodings. */
/* bbt-test: label=unit timeout=30 */
#include "test.h"

#include <errno.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki.h"

struct ca {
        EVP_PKEY *key;
        X509 *cert;
};

static void ca_make(struct ca *ca)
{
        ASSERT_OK(bbt_pki_key_new(&ca->key));
        ASSERT_OK(bbt_pki_ca_new(ca->key, "bbt test CA", 30, &ca->cert));
}

static void ca_free(struct ca *ca)
{
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
}

/* X509_verify_cert of CERT against CA (and CRL, if given) for PURPOSE; the error code. */
static int verify(X509 *cert, struct ca *ca, X509_CRL *crl, int purpose)
{
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        int r;

        ASSERT(store && ctx);
        ASSERT(X509_STORE_add_cert(store, ca->cert) == 1);
        if (crl) {
                ASSERT(X509_STORE_add_crl(store, crl) == 1);
                X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
        }
        ASSERT(X509_STORE_CTX_init(ctx, store, cert, NULL) == 1);
        X509_STORE_CTX_set_purpose(ctx, purpose);
        r = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        return r;
}

TEST(host_names_and_addresses)
{
        ASSERT(bbt_pki_host_valid("mqtt.county.example"));
        ASSERT(bbt_pki_host_valid("localhost"));
        ASSERT(bbt_pki_host_valid("10.1.2.3"));
        ASSERT(bbt_pki_host_valid("::1"));
        ASSERT(bbt_pki_host_valid("fd00::10"));
        ASSERT(!bbt_pki_host_valid(""));
        ASSERT(!bbt_pki_host_valid("*.county.example"));
        ASSERT(!bbt_pki_host_valid("-bad.example"));
        ASSERT(!bbt_pki_host_valid("bad-.example"));
        ASSERT(!bbt_pki_host_valid("a..b"));
        ASSERT(!bbt_pki_host_valid("a,b"));
        ASSERT(!bbt_pki_host_valid("a b"));
        ASSERT(!bbt_pki_host_valid("学校.example"));
}

TEST(server_certificate_verifies_and_names_its_hosts)
{
        const char *hosts[] = { "mqtt.county.example", "10.1.2.3", "::1" };
        const char *fewer[] = { "mqtt.county.example", "10.1.2.3" };
        struct ca ca, other;
        EVP_PKEY *key;
        X509 *cert;
        char serial[BBT_PKI_SERIAL_MAX];

        ca_make(&ca);
        ca_make(&other);
        ASSERT_OK(bbt_pki_key_new(&key));
        ASSERT_OK(bbt_pki_issue(ca.cert, ca.key, key, hosts[0], hosts, 3, BBT_PKI_SERVER, 10, &cert));
        ASSERT_EQ(verify(cert, &ca, NULL, X509_PURPOSE_SSL_SERVER), X509_V_OK);
        ASSERT_NE(verify(cert, &other, NULL, X509_PURPOSE_SSL_SERVER), X509_V_OK);
        ASSERT_NE(verify(cert, &ca, NULL, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        ASSERT(X509_check_host(cert, "mqtt.county.example", 0, 0, NULL) == 1);
        ASSERT(X509_check_ip_asc(cert, "10.1.2.3", 0) == 1);
        ASSERT(X509_check_ip_asc(cert, "::1", 0) == 1);
        ASSERT(X509_check_host(cert, "other.example", 0, 0, NULL) != 1);
        ASSERT(bbt_pki_cert_fits(cert, "mqtt.county.example", hosts, 3, 9 * 86400));
        ASSERT(!bbt_pki_cert_fits(cert, "mqtt.county.example", hosts, 3, 11 * 86400)); /* ends too soon */
        ASSERT(!bbt_pki_cert_fits(cert, "mqtt.county.example", fewer, 2, 0));
        ASSERT(!bbt_pki_cert_fits(cert, "10.1.2.3", hosts, 3, 0));
        ASSERT(bbt_pki_cert_signed_by(cert, ca.cert));
        ASSERT(!bbt_pki_cert_signed_by(cert, other.cert));
        ASSERT_OK(bbt_pki_serial_hex(cert, serial));
        ASSERT_GE(strlen(serial), 30);
        {
                const char *bad[] = { "a b" };

                ASSERT_EQ(bbt_pki_issue(ca.cert, ca.key, key, "x", bad, 1, BBT_PKI_SERVER, 10, &cert), -EINVAL);
        }
        X509_free(cert);
        EVP_PKEY_free(key);
        ca_free(&ca);
        ca_free(&other);
}

TEST(crl_revokes_a_client_certificate)
{
        struct ca ca;
        EVP_PKEY *key;
        X509 *kept, *gone;
        X509_CRL *crl, *empty;
        char serial[BBT_PKI_SERIAL_MAX], cn[64];

        ca_make(&ca);
        ASSERT_OK(bbt_pki_key_new(&key));
        ASSERT_OK(bbt_pki_issue(ca.cert, ca.key, key, "510107/3151010001/r101", NULL, 0, BBT_PKI_CLIENT, 10, &kept));
        ASSERT_OK(bbt_pki_issue(ca.cert, ca.key, key, "510107/3151010001/r102", NULL, 0, BBT_PKI_CLIENT, 10, &gone));
        /* The common name holds the broker user name, slashes and all. */
        ASSERT(X509_NAME_get_text_by_NID(X509_get_subject_name(kept), NID_commonName, cn, sizeof(cn)) > 0);
        ASSERT_STR_EQ(cn, "510107/3151010001/r101");
        ASSERT_OK(bbt_pki_serial_hex(gone, serial));
        {
                struct bbt_pki_revoked r = { .serial_hex = serial, .when = 1700000000 };

                ASSERT_OK(bbt_pki_crl_new(ca.cert, ca.key, &r, 1, 7, 10, &crl));
        }
        ASSERT_OK(bbt_pki_crl_new(ca.cert, ca.key, NULL, 0, 1, 10, &empty));
        ASSERT_EQ(verify(kept, &ca, crl, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        ASSERT_EQ(verify(gone, &ca, crl, X509_PURPOSE_SSL_CLIENT), X509_V_ERR_CERT_REVOKED);
        ASSERT_EQ(verify(gone, &ca, empty, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
        ASSERT_GT(bbt_pki_crl_valid_s(crl), 9 * 86400);
        {
                struct bbt_pki_revoked r = { .serial_hex = "XYZ", .when = 1 };

                ASSERT_EQ(bbt_pki_crl_new(ca.cert, ca.key, &r, 1, 8, 10, &empty), -EINVAL);
        }
        X509_CRL_free(crl);
        X509_CRL_free(empty);
        X509_free(kept);
        X509_free(gone);
        EVP_PKEY_free(key);
        ca_free(&ca);
}

TEST(encodings_round_trip)
{
        struct ca ca;
        X509 *cert;
        EVP_PKEY *key;
        X509_CRL *crl, *crl2;
        char *b64, *pem;
        size_t len;

        ca_make(&ca);
        ASSERT_OK(bbt_pki_cert_to_b64(ca.cert, &b64));
        ASSERT(strchr(b64, '\n') == NULL);
        ASSERT_OK(bbt_pki_cert_from_b64(b64, &cert));
        ASSERT_EQ(X509_cmp(cert, ca.cert), 0);
        X509_free(cert);
        free(b64);
        ASSERT_OK(bbt_pki_key_to_b64(ca.key, &b64));
        ASSERT_OK(bbt_pki_key_from_b64(b64, &key));
        ASSERT_EQ(EVP_PKEY_eq(key, ca.key), 1);
        /* PEM: the same base64 in lines, which OpenSSL's PEM reader takes back. */
        ASSERT_OK(bbt_pki_pem_from_b64(b64, "PRIVATE KEY", &pem, &len));
        ASSERT(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
        ASSERT_EQ(strlen(pem), len);
        {
                BIO *bio = BIO_new_mem_buf(pem, (int)len);
                EVP_PKEY *back = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

                ASSERT(back != NULL);
                ASSERT_EQ(EVP_PKEY_eq(back, ca.key), 1);
                EVP_PKEY_free(back);
                BIO_free(bio);
        }
        free(pem);
        free(b64);
        EVP_PKEY_free(key);
        ASSERT_OK(bbt_pki_cert_to_b64(ca.cert, &b64));
        ASSERT_OK(bbt_pki_pem_from_b64(b64, "CERTIFICATE", &pem, &len));
        {
                BIO *bio = BIO_new_mem_buf(pem, (int)len);
                X509 *back = PEM_read_bio_X509(bio, NULL, NULL, NULL);

                ASSERT(back != NULL);
                ASSERT_EQ(X509_cmp(back, ca.cert), 0);
                X509_free(back);
                BIO_free(bio);
        }
        free(pem);
        free(b64);
        ASSERT_OK(bbt_pki_crl_new(ca.cert, ca.key, NULL, 0, 1, 10, &crl));
        ASSERT_OK(bbt_pki_crl_to_b64(crl, &b64));
        ASSERT_OK(bbt_pki_crl_from_b64(b64, &crl2));
        ASSERT_EQ(X509_CRL_cmp(crl, crl2), 0);
        ASSERT_OK(bbt_pki_pem_from_b64(b64, "X509 CRL", &pem, &len));
        {
                BIO *bio = BIO_new_mem_buf(pem, (int)len);
                X509_CRL *back = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);

                ASSERT(back != NULL);
                ASSERT_EQ(X509_CRL_cmp(back, crl), 0);
                X509_CRL_free(back);
                BIO_free(bio);
        }
        free(pem);
        free(b64);
        X509_CRL_free(crl);
        X509_CRL_free(crl2);
        ASSERT_EQ(bbt_pki_pem_from_b64("not base64!", "X", &pem, &len), -EINVAL);
        ASSERT_EQ(bbt_pki_cert_from_b64("not base64!", &cert), -EINVAL);
        ASSERT_EQ(bbt_pki_cert_from_b64("QUJDRA==", &cert), -EINVAL);
        ca_free(&ca);
}
