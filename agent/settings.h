/* Settings changed by the `set` command: heartbeat_interval and idle_timeout, kept in state_dir/settings over the configuration file. */
#ifndef BBT_AGENT_SETTINGS_H
#define BBT_AGENT_SETTINGS_H

#include <cjson/cJSON.h>

#include "agent_config.h"

struct bbt_agent;

#define BBT_SETTINGS_FILE "settings"

/* Applies the settings kept in STATE_DIR/settings over CFG (at start and at
 * every reload, so that a reload of the file does not undo a `set`). A line
 * that no longer applies is logged and ignored. */
void bbt_settings_apply(const char *state_dir, struct bbt_agent_config *cfg);

/* The `set` command: checks every member of ARGS (unknown setting or bad
 * value: nothing is changed, -EINVAL with the reason in ERR), applies them
 * at once, saves them, and returns the effective values in *RET_RESULT. */
int bbt_settings_set(struct bbt_agent *a, const cJSON *args, cJSON **ret_result, char *err, size_t err_size);

#endif
