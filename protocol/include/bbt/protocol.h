/* bbt wire protocol v1: topics, message structs, JSON encode and validating decode. */
#ifndef BBT_PROTOCOL_H
#define BBT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "bbt/base.h"

#define BBT_PROTOCOL_VERSION 1
/* Largest payload either side accepts or produces, in bytes. */
#define BBT_MSG_MAX 16384
/* Largest integer on the wire: JSON numbers are exact up to 2^53 - 1. */
#define BBT_INT_MAX 9007199254740991LL
/* Longest topic: "bbt/v1/" + 6 + 1 + 32 + 1 + 32 + 1 + "cmd/reply" + NUL. */
#define BBT_TOPIC_MAX 96
#define BBT_ID_MAX 32

enum bbt_channel {
        BBT_CH_STATE,
        BBT_CH_HB,
        BBT_CH_USAGE,
        BBT_CH_PERIPH,
        BBT_CH_INVENTORY,
        BBT_CH_ALERT,
        BBT_CH_CMD,
        BBT_CH_CMD_REPLY,
        BBT_CH__COUNT,
        BBT_CH_INVALID = -1,
};

/* The channel's topic suffix ("hb", "cmd/reply"), or NULL for an invalid value. */
BBT_API const char *bbt_channel_name(enum bbt_channel ch);
/* The channel whose topic suffix is NAME, or BBT_CH_INVALID. */
BBT_API enum bbt_channel bbt_channel_from_name(const char *name);
/* Whether messages on CH are published with the retain flag. */
BBT_API bool bbt_channel_retained(enum bbt_channel ch);

/* ---- topics: bbt/v1/{county}/{school}/{terminal}/{channel} ---- */

struct bbt_topic {
        char county[7];                /* 6 digits */
        char school[BBT_ID_MAX + 1];   /* [A-Za-z0-9_-]{1,32} */
        char terminal[BBT_ID_MAX + 1]; /* [A-Za-z0-9_-]{1,32} */
        enum bbt_channel channel;
};

BBT_API bool bbt_county_valid(const char *s);
/* School and terminal IDs share one rule: [A-Za-z0-9_-]{1,32}. */
BBT_API bool bbt_id_valid(const char *s);

/* Writes the topic for T into BUF (SIZE bytes, NUL-terminated). Returns its
 * length, -EINVAL if an ID or the channel is invalid, -ENOBUFS if SIZE is short. */
BBT_API int bbt_topic_build(const struct bbt_topic *t, char *buf, size_t size);
/* Parses TOPIC into RET (untouched on failure). Returns 0, or -EINVAL with a
 * reason in ERR (may be NULL, ERR_SIZE bytes) naming the bad part. */
BBT_API int bbt_topic_parse(const char *topic, struct bbt_topic *ret, char *err, size_t err_size);

/* ---- messages ---- */

enum bbt_usage_state { BBT_USAGE_STANDBY, BBT_USAGE_IDLE, BBT_USAGE_ACTIVE, BBT_USAGE__COUNT };
BBT_API const char *bbt_usage_state_name(enum bbt_usage_state s);

enum bbt_state_reason { BBT_REASON_NONE, BBT_REASON_LOST, BBT_REASON_SHUTDOWN };

/* state (retained): birth when online, will or clean stop when not. */
struct bbt_state {
        bool online;
        /* online == true: all four required. */
        const char *version;    /* <= 32 characters */
        const char *hostname;   /* <= 64 characters */
        const char *os;         /* <= 128 characters */
        const char *machine_id; /* [A-Za-z0-9_-]{1,64} */
        /* online == false: required. */
        enum bbt_state_reason reason;
        /* Optional (birth): the seq of this session's will, which the agent
         * reserves before connecting and which arrives only when the session
         * ends, so that a consumer expects it rather than asking for it. */
        bool has_will_seq;
        int64_t will_seq;
        /* Optional (birth), both or neither: the seqs this run of the agent
         * jumped over at its start after an unclean stop and never used
         * (protocol/SPEC.md, "Sequence numbers"); skipped_to >= skipped_from. */
        bool has_skipped_from, has_skipped_to;
        int64_t skipped_from, skipped_to;
};

enum bbt_power { BBT_POWER_OFF, BBT_POWER_ON, BBT_POWER_COOLING, BBT_POWER_WARMING, BBT_POWER_UNKNOWN };
enum bbt_erst_level { BBT_ERST_OK, BBT_ERST_WARNING, BBT_ERST_ERROR };
enum bbt_erst_item { BBT_ERST_FAN, BBT_ERST_LAMP, BBT_ERST_TEMP, BBT_ERST_COVER, BBT_ERST_FILTER, BBT_ERST_OTHER, BBT_ERST__COUNT };

struct bbt_fs_usage {
        int64_t total; /* bytes */
        int64_t free;  /* bytes available to unprivileged users */
};

#define BBT_HB_NET_MAX 16
struct bbt_net_link {
        const char *ifname; /* [A-Za-z0-9_.:@-]{1,15} */
        bool up;
};

struct bbt_projector_status {
        bool reachable;
        bool has_power;
        enum bbt_power power;
        const char *input; /* PJLink input, e.g. "31"; NULL when absent; <= 16 characters */
        bool has_lamp_hours;
        int64_t lamp_hours;
        bool has_erst;
        enum bbt_erst_level erst[BBT_ERST__COUNT];
};

/* hb: periodic health. */
struct bbt_hb {
        int64_t uptime; /* seconds */
        double load[3]; /* 1, 5, 15 minutes */
        double cpu;     /* percent of all cores, 0..100 */
        int64_t mem_total, mem_available; /* bytes */
        struct bbt_fs_usage disk_root;
        bool has_disk_spool;
        struct bbt_fs_usage disk_spool;
        bool has_temp;
        double temp_max;           /* degrees Celsius */
        const char *temp_source;   /* sensor name, <= 64 characters */
        size_t n_net;
        struct bbt_net_link net[BBT_HB_NET_MAX];
        enum bbt_usage_state state;
        bool has_projector;
        struct bbt_projector_status projector;
        int64_t spool_depth, spool_dropped;
        bool clock_synced;
};

/* usage: one closed interval. */
struct bbt_usage {
        int64_t start, end; /* ms since the epoch, terminal clock; end >= start, at most an hour apart */
        enum bbt_usage_state state;
        int64_t touch, pen, mouse, key; /* input event counts */
        int64_t interactive_ms, audio_ms;
};

enum bbt_periph_kind {
        BBT_KIND_CAMERA, BBT_KIND_AUDIO_IN, BBT_KIND_AUDIO_OUT, BBT_KIND_TOUCH, BBT_KIND_PEN,
        BBT_KIND_KEYBOARD, BBT_KIND_MOUSE, BBT_KIND_STORAGE, BBT_KIND_DISPLAY, BBT_KIND_PROJECTOR,
        BBT_KIND_NETWORK, BBT_KIND_OTHER, BBT_KIND__COUNT
};
BBT_API const char *bbt_periph_kind_name(enum bbt_periph_kind k);

/* One peripheral. Optional strings are NULL when absent. */
struct bbt_dev {
        enum bbt_periph_kind kind;
        const char *subsystem; /* [a-z0-9_-]{1,32}, required */
        const char *syspath;   /* <= 256 characters, required */
        const char *bus;       /* [a-z0-9_-]{1,16} */
        const char *vendor_id; /* 4 lowercase hex digits */
        const char *model_id;  /* 4 lowercase hex digits */
        const char *vendor, *model, *serial; /* <= 128 characters each */
};

enum bbt_periph_action { BBT_PERIPH_ADD, BBT_PERIPH_REMOVE };
struct bbt_periph {
        enum bbt_periph_action action;
        struct bbt_dev dev;
};

/* The terminal's wired network interface, for Wake-on-LAN: the aggregator
 * picks a neighbour on the same subnet to send a magic packet. */
struct bbt_net_addr {
        const char *ifname; /* [A-Za-z0-9_.:@-]{1,15} */
        const char *mac;    /* aa:bb:cc:dd:ee:ff */
        const char *ipv4;   /* dotted quad, NULL when absent */
        bool has_prefix;    /* with ipv4, both or neither */
        int64_t prefix;     /* 0..32 */
};

#define BBT_INVENTORY_MAX 256
struct bbt_inventory {
        size_t n_devices;
        struct bbt_dev *devices; /* n_devices entries */
        bool has_net;            /* optional */
        struct bbt_net_addr net;
};

enum bbt_severity { BBT_SEVERITY_WARNING, BBT_SEVERITY_ERROR };
enum bbt_alert_state { BBT_ALERT_RAISED, BBT_ALERT_CLEARED };
struct bbt_alert {
        const char *code;   /* [a-z][a-z0-9_]{0,31}: overheat, disk_low, ... */
        enum bbt_severity severity;
        enum bbt_alert_state state;
        const char *detail; /* <= 512 characters, NULL when absent */
        /* Optional: true makes it a one-off event (a power-off, a
         * postponement), not a condition: nothing clears it. */
        bool has_event, event;
};

/* Operations the protocol knows the arguments of; other ops pass through as
 * BBT_OP_OTHER with their arguments in args_json. */
enum bbt_cmd_op { BBT_OP_OTHER, BBT_OP_INVENTORY, BBT_OP_SET, BBT_OP_RESEND, BBT_OP_SHUTDOWN_AT, BBT_OP_WAKE, BBT_OP_PROJECTOR_POWER,
                  BBT_OP_POWER_SCHEDULE, BBT_OP_STATE };

/* power_schedule: at most this many power-off times. */
#define BBT_POWER_SCHEDULE_MAX 64

struct bbt_cmd {
        const char *id; /* [A-Za-z0-9_-]{1,64} */
        const char *op; /* [a-z][a-z0-9_]{0,31} */
        enum bbt_cmd_op op_code; /* derived from op by decode and encode */
        /* Optional: the sender's time (ms since the epoch) after which the
         * command must not be carried out. */
        bool has_expires;
        int64_t expires;
        /* Arguments of the known ops (decoded; used by encode for these ops). */
        union {
                struct { int64_t from, to; } resend; /* seq range, inclusive */
                struct { int64_t at; } shutdown_at;  /* ms since the epoch */
                struct { const char *mac; } wake;    /* aa:bb:cc:dd:ee:ff */
                struct { bool on; } projector_power;
        } args;
        /* The raw args object (a cJSON *), or NULL: for `set`, `power_schedule`
         * (checked by decode, read by the agent) and unknown ops.
         * Decode points it into the message's own tree; encode copies it. */
        void *args_json;
};

struct bbt_cmd_reply {
        const char *id;
        bool ok;
        const char *error; /* <= 256 characters; required when !ok */
        void *result_json; /* cJSON * object or NULL; as args_json */
};

/* Envelope plus one body, selected by channel. */
struct bbt_msg {
        enum bbt_channel channel;
        uint32_t v;   /* BBT_PROTOCOL_VERSION */
        int64_t seq;  /* 0 .. BBT_INT_MAX */
        int64_t ts;   /* ms since the epoch, 0 .. BBT_INT_MAX */
        uint32_t boot;
        union {
                struct bbt_state state;
                struct bbt_hb hb;
                struct bbt_usage usage;
                struct bbt_periph periph;
                struct bbt_inventory inventory;
                struct bbt_alert alert;
                struct bbt_cmd cmd;
                struct bbt_cmd_reply reply;
        } body;
        /* Owned by decode, released by bbt_msg_free; NULL in hand-filled messages. */
        void *priv_json;
        void *priv_alloc;
};

/* Where a decode failed: the field path and the rule it broke. */
struct bbt_error {
        char path[128]; /* e.g. "hb.mem.total", "inventory.devices[3].kind" */
        char rule[128]; /* e.g. "expected integer >= 0", "missing" */
};

/* Formats ERR as "path: rule" into BUF. Returns BUF. */
BBT_API const char *bbt_error_format(const struct bbt_error *err, char *buf, size_t size);

/* Zeroes MSG and sets its channel and version. */
BBT_API void bbt_msg_init(struct bbt_msg *msg, enum bbt_channel ch);

/* Encodes MSG as compact JSON into a new string (caller frees with free()).
 * Returns 0, -EINVAL if MSG breaks a rule decode would reject (ERR says which;
 * ERR may be NULL), -EMSGSIZE if the result exceeds BBT_MSG_MAX, -ENOMEM. */
BBT_API int bbt_msg_encode(const struct bbt_msg *msg, char **ret_json, size_t *ret_len, struct bbt_error *err);

/* Decodes and validates PAYLOAD (LEN bytes, need not be NUL-terminated) as a
 * message of channel CH. On success fills RET, which the caller releases with
 * bbt_msg_free(). Returns 0, or on failure -EMSGSIZE (too long), -EBADMSG (not
 * JSON or not UTF-8), -EPROTONOSUPPORT (unknown "v"), -EINVAL (a field breaks
 * a rule), -ENOMEM; ERR (may be NULL) names the field path and the rule. RET is
 * left zeroed on failure. Unknown fields are ignored. */
BBT_API int bbt_msg_decode(enum bbt_channel ch, const void *payload, size_t len, struct bbt_msg *ret, struct bbt_error *err);

/* Parses an RFC 3339 time with seconds and an offset, as power_schedule
 * carries it ("2026-12-07T18:00:00+08:00", or "...Z"), into ms since the
 * epoch and the offset in minutes (RET_OFFSET_MIN may be NULL). Returns 0,
 * or -EINVAL if S is not such a time or names no real date (02-30). */
BBT_API int bbt_rfc3339_parse(const char *s, int64_t *ret_ms, int *ret_offset_min);

/* Releases what bbt_msg_decode allocated; NULL-safe; leaves MSG zeroed. */
BBT_API void bbt_msg_free(struct bbt_msg *msg);

#ifdef __cplusplus
}
#endif
#endif
