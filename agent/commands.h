/* Commands from the aggregator: dispatch by op, replies, the cache that answers a repeated command again, projector power. */
#ifndef BBT_AGENT_COMMANDS_H
#define BBT_AGENT_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct bbt_agent;

#define BBT_RECENT_CMD_IDS 16

struct bbt_commands {
        struct {
                char id[65];
                bool answered, ok;
                char error[160];
        } recent[BBT_RECENT_CMD_IDS]; /* commands seen lately, and how they were answered */
        size_t recent_next;
};

/* Validates and runs the command PAYLOAD (LEN bytes) from the command topic;
 * every command is answered on cmd/reply, at once or when it is done. */
void bbt_commands_handle(struct bbt_agent *a, const void *payload, size_t len);

/* Answers command ID: OK, ERROR (NULL when OK) and RESULT (may be NULL; freed
 * here). Remembered for a repeated command. */
void bbt_commands_reply(struct bbt_agent *a, const char *id, bool ok, const char *error, cJSON *result);

#endif
