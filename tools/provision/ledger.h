/* The ledger: bbt-provision's memory between runs — its settings and every credential and certificate it issued or revoked. */
#ifndef BBT_LEDGER_H
#define BBT_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "credential.h"
#include "pki.h"

enum bbt_principal_kind {
        BBT_PRINCIPAL_CA,         /* "ca": the county's CA (key and certificate) */
        BBT_PRINCIPAL_SERVER,     /* a broker's TLS certificate: "broker" (the county's), "broker-<county>-<school>" */
        BBT_PRINCIPAL_TERMINAL,   /* "<county>/<school>/<terminal>" */
        BBT_PRINCIPAL_AGGREGATOR, /* an aggregator instance: its name */
        BBT_PRINCIPAL_OPERATOR,   /* a person or tool that reads everything and sends commands */
        BBT_PRINCIPAL_BRIDGE,     /* a school broker's bridge to the county: "bridge-<county>-<school>" */
        BBT_PRINCIPAL__COUNT
};

/* "ca", "server", "terminal", "aggregator", "operator", "bridge". */
const char *bbt_principal_kind_name(enum bbt_principal_kind k);

struct bbt_principal {
        enum bbt_principal_kind kind;
        char *name;        /* unique in the ledger; the broker user name where it has one */
        bool revoked;
        int64_t issued;     /* when the current secret/certificate was made (s since the epoch) */
        int64_t revoked_at; /* 0 while active */
        char secret[BBT_CREDENTIAL_SECRET_LEN + 1]; /* "" if none */
        char hash[BBT_CREDENTIAL_HASH_MAX];         /* the secret's mosquitto hash, "" if none */
        char serial[BBT_PKI_SERIAL_MAX];            /* its certificate's serial (hex), "" if none */
        char *hosts; /* comma-separated host names: a server certificate's; a bridge's school broker's. NULL: none */
        char *key;   /* private key, base64 DER; NULL: none */
        char *cert;  /* certificate, base64 DER; NULL: none */
        bool wanted; /* not stored: named by this run */
};

/* A revoked certificate, for the CRL. */
struct bbt_crl_entry {
        char serial[BBT_PKI_SERIAL_MAX];
        int64_t when;
        char *name; /* whose it was */
};

/* What a run was told once and later runs keep (command-line options). */
struct bbt_ledger_settings {
        char **brokers;   /* the county broker's names and addresses; [0] is what terminals connect to */
        size_t n_brokers;
        long port;        /* TLS port for passwords (8883) */
        long cert_port;   /* TLS port for client certificates (8884) */
        bool client_certs;/* terminals authenticate with certificates instead of passwords */
        bool acl_explicit;/* an ACL entry per terminal instead of %u patterns */
        long days;        /* validity of new certificates */
        char *conf_dir;   /* where a terminal's bundle is installed (/etc/bbt) */
};

struct bbt_ledger {
        struct bbt_ledger_settings set;
        struct bbt_principal *p; /* sorted by name up to n_sorted; bbt_ledger_sort() sorts all */
        size_t n, cap, n_sorted;
        struct bbt_crl_entry *crl;
        size_t n_crl, cap_crl;
        long crl_number; /* of the last CRL issued */
        char *crl_b64;   /* that CRL (base64 DER), NULL if none yet */
        size_t crl_listed; /* how many entries of crl[] it lists */
};

/* An empty ledger with the default settings (ports 8883 and 8884, 3650 days,
 * /etc/bbt, passwords, patterns). */
void bbt_ledger_init(struct bbt_ledger *l);
/* Frees everything L holds (not L); wipes the secrets first. */
void bbt_ledger_clear(struct bbt_ledger *l);

/* Reads the ledger file at PATH into L (initialised, empty). Returns 0;
 * -ENOENT when there is none yet; -EINVAL with "PATH:LINE: what" in ERR for
 * a malformed file (nothing is guessed: a ledger that cannot be read must not
 * be replaced by new secrets); -errno, -ENOMEM. */
int bbt_ledger_load(struct bbt_ledger *l, const char *path, char *err, size_t err_size);

/* Writes L (sorted first) into DIRFD/NAME atomically, mode 0600. Returns 0 or -errno. */
int bbt_ledger_save(struct bbt_ledger *l, int dirfd, const char *name);

/* Sorts the principals by name, so that bbt_ledger_find() sees all of them. */
void bbt_ledger_sort(struct bbt_ledger *l);

/* The principal called NAME among the sorted ones, or NULL. */
struct bbt_principal *bbt_ledger_find(const struct bbt_ledger *l, const char *name);

/* Appends a principal of KIND called NAME (copied), active, everything else
 * empty. Not found by bbt_ledger_find() before the next sort. Returns it, or
 * NULL if out of memory. Pointers into the ledger's principals stay valid only
 * until the next add or sort. */
struct bbt_principal *bbt_ledger_add(struct bbt_ledger *l, enum bbt_principal_kind kind, const char *name);

/* Records that certificate SERIAL of NAME was revoked at WHEN. Returns 0 or -ENOMEM. */
int bbt_ledger_crl_add(struct bbt_ledger *l, const char *serial, int64_t when, const char *name);

/* Replaces string *FIELD with a copy of VALUE (NULL: none). Returns 0 or -ENOMEM. */
int bbt_ledger_set_str(char **field, const char *value);

/* Forgets P's secret, hash and key (wiped), e.g. when it is revoked. */
void bbt_principal_forget_secrets(struct bbt_principal *p);

#endif
