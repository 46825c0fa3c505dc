/* The broker's password file and ACL from the ledger: for the county broker, or for one school's broker. */
#ifndef BBT_ACL_H
#define BBT_ACL_H

#include <stdio.h>

#include "ledger.h"

/* Whose files: the county broker (COUNTY and SCHOOL NULL) serves every
 * principal; a school broker (both set) only that school's terminals. */
struct bbt_acl_scope {
        const char *county, *school;
};

/* Writes mosquitto's password file ("user:$7$..." lines, sorted by user) to
 * OUT: the active terminals in SCOPE (none with client certificates: they
 * log in by certificate) and, for the county, the aggregators, operators and
 * bridges. Returns 0 or -EIO. */
int bbt_acl_write_passwd(const struct bbt_ledger *l, const struct bbt_acl_scope *scope, FILE *out);

/* Writes mosquitto's ACL file to OUT: terminals' rights as %u patterns (or,
 * with acl_explicit, one block per terminal in SCOPE); for the county, the
 * aggregators' and operators' (read bbt/v1/#, write commands) and each
 * bridge's (its school's topics only); "deny #" for every revoked principal
 * that had a certificate, which may still be connected. Returns 0 or -EIO. */
int bbt_acl_write_acl(const struct bbt_ledger *l, const struct bbt_acl_scope *scope, FILE *out);

/* Whether terminal user name NAME ("<county>/<school>/<terminal>") is in SCOPE. */
bool bbt_acl_in_scope(const struct bbt_acl_scope *scope, const char *name);

#endif
