/* The county's private CA through OpenSSL's library: EC P-256 keys, CA, server and client certificates, CRLs, and their encodings. */
#ifndef BBT_PKI_H
#define BBT_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Longest serial as hex text: 16 bytes, and a NUL. */
#define BBT_PKI_SERIAL_MAX 40

enum {
        BBT_PKI_SERVER = 1 << 0, /* extendedKeyUsage serverAuth (the broker) */
        BBT_PKI_CLIENT = 1 << 1, /* clientAuth (a terminal, a bridge) */
};

/* Whether HOST can go into a certificate's subjectAltName: an IPv4 or IPv6
 * address, or a DNS name (labels of letters, digits and '-', at most 253
 * characters; "*." wildcards are not accepted). */
bool bbt_pki_host_valid(const char *host);

/* A new EC P-256 key into *RET (free with EVP_PKEY_free). Returns 0 or -EIO. */
int bbt_pki_key_new(EVP_PKEY **ret);

/* A self-signed CA certificate for KEY, subject "CN=CN, O=bbt", valid from an
 * hour ago for DAYS days, with a random 128-bit serial: basicConstraints
 * CA:TRUE pathlen:0, keyUsage keyCertSign and cRLSign. Returns 0 and *RET
 * (free with X509_free), or -EIO. */
int bbt_pki_ca_new(EVP_PKEY *key, const char *cn, int days, X509 **ret);

/* A certificate for KEY signed by CA/CA_KEY: subject "CN=CN, O=bbt", the N
 * HOSTS (bbt_pki_host_valid) as DNS or IP subjectAltNames, USAGE a mask of
 * BBT_PKI_SERVER and BBT_PKI_CLIENT, valid from an hour ago for DAYS days,
 * random 128-bit serial. Returns 0 and *RET, -EINVAL for a bad host, -EIO. */
int bbt_pki_issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *cn, const char *const *hosts,
                  size_t n_hosts, unsigned usage, int days, X509 **ret);

/* CERT's serial as upper-case hex into BUF. Returns 0 or -EIO. */
int bbt_pki_serial_hex(const X509 *cert, char buf[BBT_PKI_SERIAL_MAX]);

/* Whether CERT has common name CN, exactly the N HOSTS as subjectAltNames (in
 * any order), and stays valid for MIN_VALID_S seconds more. */
bool bbt_pki_cert_fits(X509 *cert, const char *cn, const char *const *hosts, size_t n_hosts, long min_valid_s);

/* Whether CERT was signed by CA's key. */
bool bbt_pki_cert_signed_by(X509 *cert, X509 *ca);

/* Seconds CERT or CRL (its nextUpdate) stays valid from now; negative when past. */
long bbt_pki_cert_valid_s(const X509 *cert);
long bbt_pki_crl_valid_s(const X509_CRL *crl);

struct bbt_pki_revoked {
        const char *serial_hex;
        int64_t when; /* revocation time, seconds since the epoch */
};

/* A version 2 CRL issued by CA listing the N REVOKED serials, with crlNumber
 * NUMBER, valid (nextUpdate) for DAYS days. Returns 0 and *RET (free with
 * X509_CRL_free), -EINVAL for a bad serial, -EIO. */
int bbt_pki_crl_new(X509 *ca, EVP_PKEY *ca_key, const struct bbt_pki_revoked *revoked, size_t n, long number,
                    int days, X509_CRL **ret);

/* DER as one line of base64 (for the ledger), and back; a key as PKCS#8.
 * Each returns 0 and a new string or object in *RET (free(), or the OpenSSL
 * destructor), -EINVAL for text that does not decode, -ENOMEM, -EIO. */
int bbt_pki_cert_to_b64(X509 *cert, char **ret);
int bbt_pki_cert_from_b64(const char *b64, X509 **ret);
int bbt_pki_key_to_b64(EVP_PKEY *key, char **ret);
int bbt_pki_key_from_b64(const char *b64, EVP_PKEY **ret);
int bbt_pki_crl_to_b64(X509_CRL *crl, char **ret);
int bbt_pki_crl_from_b64(const char *b64, X509_CRL **ret);

/* The PEM text of the DER in B64 (as the *_to_b64 functions give it), with
 * the armour LABEL ("CERTIFICATE", "PRIVATE KEY", "X509 CRL"), into *RET, a
 * NUL-terminated string of *RET_LEN bytes (free()). PEM is that same base64
 * in lines of 64, so nothing is decoded: writing 20,000 bundles costs no
 * parsing. Returns 0, -EINVAL (not base64) or -ENOMEM. */
int bbt_pki_pem_from_b64(const char *b64, const char *label, char **ret, size_t *ret_len);

/* The oldest error OpenSSL queued on this thread, as text into BUF (the queue
 * is cleared); "unknown error" if none. Returns BUF. */
const char *bbt_pki_error(char *buf, size_t size);

#endif
