/* bbt-notify's daemon: reads the store for new faults and digests, delivers them to the targets (docs/notifications.md). */
#ifndef BBT_NOTIFIER_H
#define BBT_NOTIFIER_H

#include <stdio.h>

#include "aggregator_config.h"
#include "notify.h"

struct bbt_notifier;

/* Reads the targets and secrets, the registry and calendar and, WITH_STATE,
 * the state file in [notify] state_dir (which must exist; the file is made on
 * the first save). Problems go to ERRS, one line each. Returns 0 and *RET, or
 * a negative errno. CFG is kept by reference. Without the state, only
 * bbt_notifier_dump_targets() and bbt_notifier_free() may be called. */
int bbt_notifier_new(const struct bbt_aggregator_config *cfg, bool with_state, FILE *errs,
                     struct bbt_notifier **ret);
void bbt_notifier_free(struct bbt_notifier *n);
/* Prints the targets (secrets hidden) for --check-config. */
void bbt_notifier_dump_targets(const struct bbt_notifier *n, FILE *out);
/* Runs until SIGTERM or SIGINT (blocked by the caller; taken through a
 * signalfd). Returns 0, or a negative errno for a failure that stops it. */
int bbt_notifier_run(struct bbt_notifier *n);
/* Prints the state file's counters and what is owed per target (--status). */
void bbt_notifier_print_status(const struct bbt_notifier *n, FILE *out);

#endif
