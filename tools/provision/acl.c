/* mosquitto 2.0 password file and ACL text: terminals by %u pattern or by name, aggregators, operators, bridges. */
#include "acl.h"

#include <errno.h>
#include <string.h>

#include "bbt/protocol.h"

bool bbt_acl_in_scope(const struct bbt_acl_scope *scope, const char *name)
{
        size_t lc, ls;

        if (!scope->county)
                return true;
        lc = strlen(scope->county);
        ls = strlen(scope->school);
        return strncmp(name, scope->county, lc) == 0 && name[lc] == '/' &&
               strncmp(name + lc + 1, scope->school, ls) == 0 && name[lc + 1 + ls] == '/';
}

/* Whether P belongs in SCOPE's password file. */
static bool has_password(const struct bbt_ledger *l, const struct bbt_acl_scope *scope,
                         const struct bbt_principal *p)
{
        if (p->revoked || !p->hash[0])
                return false;
        switch (p->kind) {
        case BBT_PRINCIPAL_TERMINAL:
                return !l->set.client_certs && bbt_acl_in_scope(scope, p->name);
        case BBT_PRINCIPAL_AGGREGATOR:
        case BBT_PRINCIPAL_OPERATOR:
        case BBT_PRINCIPAL_BRIDGE:
                return !scope->county;
        default:
                return false;
        }
}

int bbt_acl_write_passwd(const struct bbt_ledger *l, const struct bbt_acl_scope *scope, FILE *out)
{
        for (size_t i = 0; i < l->n; i++)
                if (has_password(l, scope, &l->p[i]))
                        fprintf(out, "%s:%s\n", l->p[i].name, l->p[i].hash);
        return ferror(out) ? -EIO : 0;
}

/* Writes "<verb> write <PREFIX><channel>" for every channel a terminal
 * publishes on, then "<verb> read <PREFIX>cmd". */
static void terminal_rights(FILE *out, const char *verb, const char *prefix)
{
        for (int ch = 0; ch < BBT_CH__COUNT; ch++)
                if (ch != BBT_CH_CMD)
                        fprintf(out, "%s write %s%s\n", verb, prefix, bbt_channel_name((enum bbt_channel)ch));
        fprintf(out, "%s read %scmd\n", verb, prefix);
}

int bbt_acl_write_acl(const struct bbt_ledger *l, const struct bbt_acl_scope *scope, FILE *out)
{
        char prefix[256];

        fprintf(out, "# mosquitto ACL written by bbt-provision %s. Do not edit: run bbt-provision again.\n"
                     "# A terminal's user name is <county>/<school>/<terminal>. It may write only its own\n"
                     "# telemetry, bbt/v1/<county>/<school>/<terminal>/<channel>, and read only its own cmd.\n",
                BBT_VERSION);
        if (!l->set.acl_explicit) {
                /* mosquitto 2.0 puts the user name in place of %u as text, so
                 * one pattern names all three levels; a name without two
                 * slashes (an aggregator's) yields topics no terminal uses. */
                fprintf(out, "# mosquitto 2.0 substitutes %%u as text, so %%u spans the three levels.\n");
                terminal_rights(out, "pattern", "bbt/v1/%u/");
        }
        for (size_t i = 0; i < l->n; i++) {
                const struct bbt_principal *p = &l->p[i];

                if (p->kind == BBT_PRINCIPAL_TERMINAL && !bbt_acl_in_scope(scope, p->name))
                        continue;
                if (p->revoked) {
                        /* Passwords are checked again on a reload, certificates are not. */
                        if (p->serial[0] && p->kind != BBT_PRINCIPAL_SERVER && p->kind != BBT_PRINCIPAL_CA)
                                fprintf(out, "\n# revoked\nuser %s\ntopic deny #\n", p->name);
                        continue;
                }
                switch (p->kind) {
                case BBT_PRINCIPAL_TERMINAL:
                        if (!l->set.acl_explicit)
                                break;
                        fprintf(out, "\nuser %s\n", p->name);
                        snprintf(prefix, sizeof(prefix), "bbt/v1/%s/", p->name);
                        terminal_rights(out, "topic", prefix);
                        break;
                case BBT_PRINCIPAL_AGGREGATOR:
                case BBT_PRINCIPAL_OPERATOR:
                        if (scope->county)
                                break;
                        fprintf(out, "\n# %s\nuser %s\ntopic read bbt/v1/#\ntopic write bbt/v1/+/+/+/cmd\n",
                                bbt_principal_kind_name(p->kind), p->name);
                        break;
                case BBT_PRINCIPAL_BRIDGE: {
                        /* "bridge-<county>-<school>": the county is six digits. */
                        const char *cs = p->name + strlen("bridge-");

                        if (scope->county || strlen(cs) < 8)
                                break;
                        fprintf(out, "\n# the school broker of %s\nuser %s\n", cs, p->name);
                        snprintf(prefix, sizeof(prefix), "bbt/v1/%.6s/%s/+/", cs, cs + 7);
                        terminal_rights(out, "topic", prefix);
                        break;
                }
                default:
                        break;
                }
        }
        return ferror(out) ? -EIO : 0;
}
