/* bbt-provision's output tree: the broker's files, each aggregator's and operator's, one bundle per terminal, one archive per school. */
#ifndef BBT_BUNDLE_H
#define BBT_BUNDLE_H

#include <stddef.h>

#include "ledger.h"
#include "registry.h"

/* Names inside the output directory (see docs/deploy.md). */
#define BBT_BUNDLE_LEDGER "ledger"
#define BBT_BUNDLE_BROKER_DIR "broker"
#define BBT_BUNDLE_TERMINALS_DIR "terminals"
#define BBT_BUNDLE_SCHOOLS_DIR "schools"
#define BBT_BUNDLE_AGGREGATORS_DIR "aggregators"
#define BBT_BUNDLE_OPERATORS_DIR "operators"
/* A school's broker files, beside its terminals' folders: the '.' keeps it
 * apart from every terminal ID. */
#define BBT_BUNDLE_SCHOOL_BROKER_DIR "school.broker"

struct bbt_bundle_input {
        const struct bbt_ledger *ledger; /* sorted; the CA, the county broker's certificate and the CRL issued */
        const struct bbt_registry *reg;  /* the terminals to write bundles for: the ledger's active ones */
        int outfd;                       /* the output directory */
        /* Called after each school's bundles and archive (may be NULL). */
        void (*progress)(void *userdata, size_t terminals_done, size_t terminals_total);
        void *userdata;
};

/* Writes everything but the ledger under IN->outfd, only the files whose
 * contents changed, secrets with mode 0600; removes what belonged to revoked
 * terminals, schools gone from the registry, and revoked aggregators,
 * operators and bridges; syncs the file system at the end. Returns 0, or
 * -errno with ERR naming what failed. */
int bbt_bundle_write(const struct bbt_bundle_input *in, char *err, size_t err_size);

/* The agent.conf of terminal TERMINAL of school SCHOOL (county COUNTY, room
 * ROOM, expected peripherals EXPECTED as a bbt_periph_kinds_parse mask),
 * connecting to HOST:PORT, as a new string (free()). CLIENT_CERT: the
 * certificate and key instead of a password file. Returns NULL if out of
 * memory. */
char *bbt_bundle_agent_conf(const struct bbt_ledger *l, const char *county, const char *school, const char *terminal,
                            const char *room, uint32_t expected, const char *host, long port);

#endif
