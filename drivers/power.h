/* Powering the terminal off: a small ops table, logind's PowerOff over D-Bus in production, a dry run in tests. */
#ifndef BBT_DRIVERS_POWER_H
#define BBT_DRIVERS_POWER_H

#include <stddef.h>

/* One way to power the machine off. */
struct bbt_power_ops {
        const char *name;
        /* Asks for the power-off now. May block (a D-Bus call): the agent runs
         * it on a worker thread. TARGET is the ops' own argument (the dry
         * run's file; NULL for logind). Returns 0 once the request is
         * accepted, or a negative errno with the reason in ERR. */
        int (*poweroff)(const char *target, char *err, size_t err_size);
};

/* org.freedesktop.login1.Manager.PowerOff(false) on the system bus (sd-bus).
 * Needs polkit's org.freedesktop.login1.power-off (and -multiple-sessions
 * while someone is logged in) for the agent's user: the packages ship a rule
 * granting exactly these two. */
extern const struct bbt_power_ops bbt_power_logind;

/* Powers nothing off: appends "poweroff <unix ms>" to the file TARGET and
 * says so in the log. For trying a schedule on a terminal, and for tests:
 * logind cannot run in the test environment (no systemd as PID 1). */
extern const struct bbt_power_ops bbt_power_dry_run;

/* The ops called NAME ("logind", "dry-run"), or NULL. */
const struct bbt_power_ops *bbt_power_ops_find(const char *name);

#endif
