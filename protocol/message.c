/* Protocol v1 messages: one field table per message drives both encode and validating decode. */
#include "bbt/protocol.h"
#include "bbt/base.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ---- character patterns (each mirrors a "pattern" in protocol/schema/) ---- */

struct pattern {
        const char *regex; /* as written in the schema, for error messages */
        const char *first; /* character class of the first character */
        const char *rest;  /* character class of the others */
        size_t min, max;   /* length in characters */
};

static const struct pattern pat_machine_id = { "^[A-Za-z0-9_-]{1,64}$", "A-Za-z0-9_-", "A-Za-z0-9_-", 1, 64 };
static const struct pattern pat_cmd_id = { "^[A-Za-z0-9_-]{1,64}$", "A-Za-z0-9_-", "A-Za-z0-9_-", 1, 64 };
static const struct pattern pat_ifname = { "^[A-Za-z0-9_.:@-]{1,15}$", "A-Za-z0-9_.:@-", "A-Za-z0-9_.:@-", 1, 15 };
static const struct pattern pat_subsystem = { "^[a-z0-9_-]{1,32}$", "a-z0-9_-", "a-z0-9_-", 1, 32 };
static const struct pattern pat_bus = { "^[a-z0-9_-]{1,16}$", "a-z0-9_-", "a-z0-9_-", 1, 16 };
static const struct pattern pat_hex4 = { "^[0-9a-f]{4}$", "0-9a-f", "0-9a-f", 4, 4 };
static const struct pattern pat_code = { "^[a-z][a-z0-9_]{0,31}$", "a-z", "a-z0-9_", 1, 32 };
static const struct pattern pat_mac = { "^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$", NULL, NULL, 17, 17 };
static const struct pattern pat_ipv4 = {
        "^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$", NULL, NULL,
        7, 15 };
static const struct pattern pat_rfc3339 = {
        "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
        "([+-]([01][0-9]|2[0-3]):[0-5][0-9]|Z)$", NULL, NULL, 20, 25 };

/* Whether C is in CLS, written as in a regex class: "a-z0-9_-" (a trailing '-' is literal). */
static bool in_class(const char *cls, char c)
{
        size_t i;

        for (i = 0; cls[i]; i++) {
                if (cls[i + 1] == '-' && cls[i + 2] != '\0') {
                        if (c >= cls[i] && c <= cls[i + 2])
                                return true;
                        i += 2;
                } else if (c == cls[i]) {
                        return true;
                }
        }
        return false;
}

static bool is_hex(char c)
{
        return in_class("0-9a-fA-F", c);
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* ^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$ repeated four times with dots:
 * 0..255 without leading zeros. */
static bool ipv4_match(const char *s)
{
        for (int part = 0; part < 4; part++) {
                int v = 0, n = 0;

                while (is_digit(s[n]) && n < 4)
                        v = v * 10 + (s[n++] - '0');
                if (n == 0 || n > 3 || v > 255 || (n > 1 && s[0] == '0'))
                        return false;
                s += n;
                if (part < 3 && *s++ != '.')
                        return false;
        }
        return *s == '\0';
}

/* The two digits at S as a number, or -1. */
static int two_digits(const char *s)
{
        return is_digit(s[0]) && is_digit(s[1]) ? (s[0] - '0') * 10 + (s[1] - '0') : -1;
}

/* pat_rfc3339: YYYY-MM-DDTHH:MM:SS then Z or +HH:MM / -HH:MM, each field in
 * its range (the day only up to 31: the calendar is bbt_rfc3339_parse's). */
static bool rfc3339_match(const char *s, size_t n)
{
        int mo = two_digits(s + 5), d = two_digits(s + 8), h = two_digits(s + 11), mi = two_digits(s + 14),
            sec = two_digits(s + 17);

        if (!(n == 20 || n == 25) || !is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2]) || !is_digit(s[3]) ||
            s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
                return false;
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
                return false;
        if (n == 20)
                return s[19] == 'Z';
        h = two_digits(s + 20), mi = two_digits(s + 23);
        return (s[19] == '+' || s[19] == '-') && s[22] == ':' && h >= 0 && h <= 23 && mi >= 0 && mi <= 59;
}

static bool pattern_match(const struct pattern *p, const char *s)
{
        size_t n = strlen(s), i;

        if (n < p->min || n > p->max)
                return false;
        if (p == &pat_ipv4)
                return ipv4_match(s);
        if (p == &pat_rfc3339)
                return rfc3339_match(s, n);
        if (p == &pat_mac) {
                for (i = 0; i < n; i++)
                        if (i % 3 == 2 ? s[i] != ':' : !is_hex(s[i]))
                                return false;
                return true;
        }
        for (i = 0; i < n; i++)
                if (!in_class(i == 0 ? p->first : p->rest, s[i]))
                        return false;
        return true;
}

/* Validates JSON text as UTF-8 the way RFC 3629 does (no overlongs, surrogates
 * or > U+10FFFF), and that strings hold no raw control characters, which RFC
 * 8259 forbids and cJSON would let through. Returns NULL or what is wrong. */
static const char *json_text_check(const unsigned char *s, size_t len, size_t *ret_off)
{
        bool in_string = false, escaped = false;
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                size_t n;
                uint32_t cp;

                *ret_off = i;
                if (c < 0x80) {
                        if (in_string && c < 0x20)
                                return "control character in string";
                        if (escaped)
                                escaped = false;
                        else if (in_string && c == '\\')
                                escaped = true;
                        else if (c == '"')
                                in_string = !in_string;
                        i++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        n = 1, cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2, cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3, cp = c & 0x07;
                } else {
                        return "not valid UTF-8";
                }
                escaped = false;
                if (len - i <= n)
                        return "not valid UTF-8";
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return "not valid UTF-8";
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return "not valid UTF-8";
                i += n + 1;
        }
        return NULL;
}

/* ---- field tables ---- */

enum field_type {
        T_BOOL,   /* bool */
        T_INT,    /* int64_t in [min, max] */
        T_U32,    /* uint32_t in [min, max] */
        T_NUM,    /* double in [dmin, dmax] */
        T_TEXT,   /* const char *, at most max characters */
        T_ID,     /* const char *, matching pat */
        T_ENUM,   /* int enum; names[i] has the value min + i; below min means absent */
        T_OBJECT, /* nested object, fields of sub at base + off */
        T_ARRAY,  /* array of sub objects: fixed storage, or malloc'd when alloc */
        T_NUMS,   /* array of exactly max doubles */
        T_JSON,   /* any JSON object, kept as a cJSON * pointing into the parsed tree */
};

struct schema;

struct field {
        const char *name;
        enum field_type type;
        bool required;
        size_t off;       /* where the value lives, relative to the object's base */
        size_t has;       /* 1 + offset of a bool presence flag, or 0 */
        int64_t min, max; /* T_INT/T_U32 range; T_TEXT length; T_ARRAY items; T_ENUM base */
        double dmin, dmax;
        const char *const *names; /* T_ENUM, NULL-terminated */
        const struct pattern *pat;
        const struct schema *sub;
        size_t count_off, elem_size; /* T_ARRAY */
        bool alloc;                  /* T_ARRAY: elements malloc'd, pointer at off */
};

struct schema {
        const struct field *fields;
        size_t n;
};

#define SCHEMA(arr) { arr, BBT_ELEMENTSOF(arr) }
#define HAS(st, member) (offsetof(st, member) + 1)
#define INT_FIELD(nm, st, member, req) \
        { .name = nm, .type = T_INT, .required = req, .off = offsetof(st, member), .min = 0, .max = BBT_INT_MAX }
#define TEXT_FIELD(nm, st, member, req, len) \
        { .name = nm, .type = T_TEXT, .required = req, .off = offsetof(st, member), .max = len }
#define ID_FIELD(nm, st, member, req, p) \
        { .name = nm, .type = T_ID, .required = req, .off = offsetof(st, member), .pat = &p }
#define ENUM_FIELD(nm, st, member, req, nms) \
        { .name = nm, .type = T_ENUM, .required = req, .off = offsetof(st, member), .names = nms }
#define BOOL_FIELD(nm, st, member, req) \
        { .name = nm, .type = T_BOOL, .required = req, .off = offsetof(st, member) }

static const char *const usage_state_names[] = { "standby", "idle", "active", NULL };
static const char *const reason_names[] = { "lost", "shutdown", NULL };
static const char *const power_names[] = { "off", "on", "cooling", "warming", "unknown", NULL };
static const char *const erst_level_names[] = { "ok", "warning", "error", NULL };
static const char *const kind_names[] = { "camera", "audio_in", "audio_out", "touch", "pen",
                                          "keyboard", "mouse", "storage", "display", "projector",
                                          "network", "other", NULL };
static const char *const action_names[] = { "add", "remove", NULL };
static const char *const severity_names[] = { "warning", "error", NULL };
static const char *const alert_state_names[] = { "raised", "cleared", NULL };

static const struct field envelope_fields[] = {
        { .name = "v", .type = T_U32, .required = true, .off = offsetof(struct bbt_msg, v), .min = BBT_PROTOCOL_VERSION, .max = BBT_PROTOCOL_VERSION },
        INT_FIELD("seq", struct bbt_msg, seq, true),
        INT_FIELD("ts", struct bbt_msg, ts, true),
        { .name = "boot", .type = T_U32, .required = true, .off = offsetof(struct bbt_msg, boot), .min = 0, .max = UINT32_MAX },
};
static const struct schema envelope_schema = SCHEMA(envelope_fields);

static const struct field state_fields[] = {
        BOOL_FIELD("online", struct bbt_state, online, true),
        TEXT_FIELD("version", struct bbt_state, version, false, 32),
        TEXT_FIELD("hostname", struct bbt_state, hostname, false, 64),
        TEXT_FIELD("os", struct bbt_state, os, false, 128),
        ID_FIELD("machine_id", struct bbt_state, machine_id, false, pat_machine_id),
        { .name = "reason", .type = T_ENUM, .off = offsetof(struct bbt_state, reason), .min = BBT_REASON_LOST, .names = reason_names },
        { .name = "will_seq", .type = T_INT, .off = offsetof(struct bbt_state, will_seq), .has = HAS(struct bbt_state, has_will_seq), .min = 0, .max = BBT_INT_MAX },
        { .name = "skipped_from", .type = T_INT, .off = offsetof(struct bbt_state, skipped_from), .has = HAS(struct bbt_state, has_skipped_from), .min = 0, .max = BBT_INT_MAX },
        { .name = "skipped_to", .type = T_INT, .off = offsetof(struct bbt_state, skipped_to), .has = HAS(struct bbt_state, has_skipped_to), .min = 0, .max = BBT_INT_MAX },
};

static const struct field mem_fields[] = {
        INT_FIELD("total", struct bbt_hb, mem_total, true),
        INT_FIELD("available", struct bbt_hb, mem_available, true),
};
static const struct schema mem_schema = SCHEMA(mem_fields);

static const struct field fs_fields[] = {
        INT_FIELD("total", struct bbt_fs_usage, total, true),
        INT_FIELD("free", struct bbt_fs_usage, free, true),
};
static const struct schema fs_schema = SCHEMA(fs_fields);

static const struct field disk_fields[] = {
        { .name = "root", .type = T_OBJECT, .required = true, .off = offsetof(struct bbt_hb, disk_root), .sub = &fs_schema },
        { .name = "spool", .type = T_OBJECT, .off = offsetof(struct bbt_hb, disk_spool), .has = HAS(struct bbt_hb, has_disk_spool), .sub = &fs_schema },
};
static const struct schema disk_schema = SCHEMA(disk_fields);

static const struct field temp_fields[] = {
        { .name = "max", .type = T_NUM, .required = true, .off = offsetof(struct bbt_hb, temp_max), .dmin = -100, .dmax = 300 },
        TEXT_FIELD("source", struct bbt_hb, temp_source, true, 64),
};
static const struct schema temp_schema = SCHEMA(temp_fields);

static const struct field net_fields[] = {
        ID_FIELD("ifname", struct bbt_net_link, ifname, true, pat_ifname),
        BOOL_FIELD("up", struct bbt_net_link, up, true),
};
static const struct schema net_schema = SCHEMA(net_fields);

#define ERST_FIELD(nm, item) \
        { .name = nm, .type = T_ENUM, .required = true, .off = offsetof(struct bbt_projector_status, erst) + (item) * sizeof(enum bbt_erst_level), .names = erst_level_names }
static const struct field erst_fields[] = {
        ERST_FIELD("fan", BBT_ERST_FAN),       ERST_FIELD("lamp", BBT_ERST_LAMP),
        ERST_FIELD("temp", BBT_ERST_TEMP),     ERST_FIELD("cover", BBT_ERST_COVER),
        ERST_FIELD("filter", BBT_ERST_FILTER), ERST_FIELD("other", BBT_ERST_OTHER),
};
static const struct schema erst_schema = SCHEMA(erst_fields);

static const struct field projector_fields[] = {
        BOOL_FIELD("reachable", struct bbt_projector_status, reachable, true),
        { .name = "power", .type = T_ENUM, .off = offsetof(struct bbt_projector_status, power), .has = HAS(struct bbt_projector_status, has_power), .names = power_names },
        TEXT_FIELD("input", struct bbt_projector_status, input, false, 16),
        { .name = "lamp_hours", .type = T_INT, .off = offsetof(struct bbt_projector_status, lamp_hours), .has = HAS(struct bbt_projector_status, has_lamp_hours), .min = 0, .max = BBT_INT_MAX },
        { .name = "erst", .type = T_OBJECT, .off = 0, .has = HAS(struct bbt_projector_status, has_erst), .sub = &erst_schema },
};
static const struct schema projector_schema = SCHEMA(projector_fields);

static const struct field spool_fields[] = {
        INT_FIELD("depth", struct bbt_hb, spool_depth, true),
        INT_FIELD("dropped", struct bbt_hb, spool_dropped, true),
};
static const struct schema spool_schema = SCHEMA(spool_fields);

static const struct field hb_fields[] = {
        INT_FIELD("uptime", struct bbt_hb, uptime, true),
        { .name = "load", .type = T_NUMS, .required = true, .off = offsetof(struct bbt_hb, load), .max = 3, .dmin = 0, .dmax = 1000000 },
        { .name = "cpu", .type = T_NUM, .required = true, .off = offsetof(struct bbt_hb, cpu), .dmin = 0, .dmax = 100 },
        { .name = "mem", .type = T_OBJECT, .required = true, .off = 0, .sub = &mem_schema },
        { .name = "disk", .type = T_OBJECT, .required = true, .off = 0, .sub = &disk_schema },
        { .name = "temp", .type = T_OBJECT, .off = 0, .has = HAS(struct bbt_hb, has_temp), .sub = &temp_schema },
        { .name = "net", .type = T_ARRAY, .required = true, .off = offsetof(struct bbt_hb, net), .max = BBT_HB_NET_MAX, .sub = &net_schema,
          .count_off = offsetof(struct bbt_hb, n_net), .elem_size = sizeof(struct bbt_net_link) },
        ENUM_FIELD("state", struct bbt_hb, state, true, usage_state_names),
        { .name = "projector", .type = T_OBJECT, .off = offsetof(struct bbt_hb, projector), .has = HAS(struct bbt_hb, has_projector), .sub = &projector_schema },
        { .name = "spool", .type = T_OBJECT, .required = true, .off = 0, .sub = &spool_schema },
        BOOL_FIELD("clock_synced", struct bbt_hb, clock_synced, true),
};

static const struct field usage_fields[] = {
        INT_FIELD("start", struct bbt_usage, start, true),
        INT_FIELD("end", struct bbt_usage, end, true),
        ENUM_FIELD("state", struct bbt_usage, state, true, usage_state_names),
        INT_FIELD("touch", struct bbt_usage, touch, true),
        INT_FIELD("pen", struct bbt_usage, pen, true),
        INT_FIELD("mouse", struct bbt_usage, mouse, true),
        INT_FIELD("key", struct bbt_usage, key, true),
        INT_FIELD("interactive_ms", struct bbt_usage, interactive_ms, true),
        INT_FIELD("audio_ms", struct bbt_usage, audio_ms, true),
};

static const struct field dev_fields[] = {
        ENUM_FIELD("kind", struct bbt_dev, kind, true, kind_names),
        ID_FIELD("subsystem", struct bbt_dev, subsystem, true, pat_subsystem),
        TEXT_FIELD("syspath", struct bbt_dev, syspath, true, 256),
        ID_FIELD("bus", struct bbt_dev, bus, false, pat_bus),
        ID_FIELD("vendor_id", struct bbt_dev, vendor_id, false, pat_hex4),
        ID_FIELD("model_id", struct bbt_dev, model_id, false, pat_hex4),
        TEXT_FIELD("vendor", struct bbt_dev, vendor, false, 128),
        TEXT_FIELD("model", struct bbt_dev, model, false, 128),
        TEXT_FIELD("serial", struct bbt_dev, serial, false, 128),
};
static const struct schema dev_schema = SCHEMA(dev_fields);

static const struct field periph_fields[] = {
        ENUM_FIELD("action", struct bbt_periph, action, true, action_names),
        { .name = "dev", .type = T_OBJECT, .required = true, .off = offsetof(struct bbt_periph, dev), .sub = &dev_schema },
};

static const struct field net_addr_fields[] = {
        ID_FIELD("ifname", struct bbt_net_addr, ifname, true, pat_ifname),
        ID_FIELD("mac", struct bbt_net_addr, mac, true, pat_mac),
        ID_FIELD("ipv4", struct bbt_net_addr, ipv4, false, pat_ipv4),
        { .name = "prefix", .type = T_INT, .off = offsetof(struct bbt_net_addr, prefix), .has = HAS(struct bbt_net_addr, has_prefix), .min = 0, .max = 32 },
};
static const struct schema net_addr_schema = SCHEMA(net_addr_fields);

static const struct field inventory_fields[] = {
        { .name = "devices", .type = T_ARRAY, .required = true, .off = offsetof(struct bbt_inventory, devices), .max = BBT_INVENTORY_MAX,
          .sub = &dev_schema, .count_off = offsetof(struct bbt_inventory, n_devices), .elem_size = sizeof(struct bbt_dev), .alloc = true },
        { .name = "net", .type = T_OBJECT, .off = offsetof(struct bbt_inventory, net), .has = HAS(struct bbt_inventory, has_net), .sub = &net_addr_schema },
};

static const struct field alert_fields[] = {
        ID_FIELD("code", struct bbt_alert, code, true, pat_code),
        ENUM_FIELD("severity", struct bbt_alert, severity, true, severity_names),
        ENUM_FIELD("state", struct bbt_alert, state, true, alert_state_names),
        TEXT_FIELD("detail", struct bbt_alert, detail, false, 512),
        { .name = "event", .type = T_BOOL, .off = offsetof(struct bbt_alert, event), .has = HAS(struct bbt_alert, has_event) },
};

static const struct field cmd_fields[] = {
        ID_FIELD("id", struct bbt_cmd, id, true, pat_cmd_id),
        ID_FIELD("op", struct bbt_cmd, op, true, pat_code),
        { .name = "args", .type = T_JSON, .off = offsetof(struct bbt_cmd, args_json) },
        { .name = "expires", .type = T_INT, .off = offsetof(struct bbt_cmd, expires), .has = HAS(struct bbt_cmd, has_expires), .min = 0, .max = BBT_INT_MAX },
};

static const struct field resend_fields[] = {
        INT_FIELD("from", struct bbt_cmd, args.resend.from, true),
        INT_FIELD("to", struct bbt_cmd, args.resend.to, true),
};
static const struct field shutdown_at_fields[] = {
        INT_FIELD("at", struct bbt_cmd, args.shutdown_at.at, true),
};
static const struct field wake_fields[] = {
        ID_FIELD("mac", struct bbt_cmd, args.wake.mac, true, pat_mac),
};
static const struct field projector_power_fields[] = {
        BOOL_FIELD("on", struct bbt_cmd, args.projector_power.on, true),
};

/* Ops the protocol knows; args_schema NULL means free-form arguments. */
static const struct {
        const char *name;
        enum bbt_cmd_op code;
        bool args_required;
        struct schema args_schema;
} cmd_ops[] = {
        { "inventory", BBT_OP_INVENTORY, false, { NULL, 0 } },
        { "state", BBT_OP_STATE, false, { NULL, 0 } },
        { "set", BBT_OP_SET, true, { NULL, 0 } },
        { "resend", BBT_OP_RESEND, true, SCHEMA(resend_fields) },
        { "shutdown_at", BBT_OP_SHUTDOWN_AT, true, SCHEMA(shutdown_at_fields) },
        { "wake", BBT_OP_WAKE, true, SCHEMA(wake_fields) },
        { "projector_power", BBT_OP_PROJECTOR_POWER, true, SCHEMA(projector_power_fields) },
        /* Checked by check_power_schedule(); the agent reads args_json. */
        { "power_schedule", BBT_OP_POWER_SCHEDULE, true, { NULL, 0 } },
};

static const struct field reply_fields[] = {
        ID_FIELD("id", struct bbt_cmd_reply, id, true, pat_cmd_id),
        BOOL_FIELD("ok", struct bbt_cmd_reply, ok, true),
        TEXT_FIELD("error", struct bbt_cmd_reply, error, false, 256),
        { .name = "result", .type = T_JSON, .off = offsetof(struct bbt_cmd_reply, result_json) },
};

static const struct schema body_schemas[BBT_CH__COUNT] = {
        [BBT_CH_STATE] = SCHEMA(state_fields),       [BBT_CH_HB] = SCHEMA(hb_fields),
        [BBT_CH_USAGE] = SCHEMA(usage_fields),       [BBT_CH_PERIPH] = SCHEMA(periph_fields),
        [BBT_CH_INVENTORY] = SCHEMA(inventory_fields), [BBT_CH_ALERT] = SCHEMA(alert_fields),
        [BBT_CH_CMD] = SCHEMA(cmd_fields),           [BBT_CH_CMD_REPLY] = SCHEMA(reply_fields),
};

const char *bbt_usage_state_name(enum bbt_usage_state s)
{
        return (int)s >= 0 && s < BBT_USAGE__COUNT ? usage_state_names[s] : NULL;
}

const char *bbt_periph_kind_name(enum bbt_periph_kind k)
{
        return (int)k >= 0 && k < BBT_KIND__COUNT ? kind_names[k] : NULL;
}

/* ---- decode ---- */

struct decoder {
        struct bbt_error *err;
        char path[128];
        size_t path_len;
        void *alloc; /* the one malloc'd array a message may hold (inventory.devices) */
};

static size_t path_push(struct decoder *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct decoder *d, const char *fmt, ...)
{
        size_t saved = d->path_len;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(d->path + d->path_len, sizeof(d->path) - d->path_len, fmt, ap);
        va_end(ap);
        if (n > 0)
                d->path_len += (size_t)n < sizeof(d->path) - d->path_len ? (size_t)n
                                                                          : sizeof(d->path) - d->path_len - 1;
        return saved;
}

static void path_pop(struct decoder *d, size_t saved)
{
        d->path_len = saved;
        d->path[saved] = '\0';
}

static int fail(struct decoder *d, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct decoder *d, int error, const char *fmt, ...)
{
        va_list ap;

        if (d->err) {
                snprintf(d->err->path, sizeof(d->err->path), "%s", d->path);
                va_start(ap, fmt);
                vsnprintf(d->err->rule, sizeof(d->err->rule), fmt, ap);
                va_end(ap);
        }
        return error;
}

static int int_rule(struct decoder *d, int64_t min, int64_t max)
{
        if (min == max)
                return fail(d, -EINVAL, "expected integer %" PRId64, min);
        if (max == BBT_INT_MAX)
                return fail(d, -EINVAL, "expected integer >= %" PRId64, min);
        return fail(d, -EINVAL, "expected integer %" PRId64 "..%" PRId64, min, max);
}

/* Reads an integral JSON number in [MIN, MAX] (5.0 counts, as in JSON Schema). */
static int decode_int(struct decoder *d, const cJSON *item, int64_t min, int64_t max, int64_t *ret)
{
        double v;

        if (!cJSON_IsNumber(item))
                return int_rule(d, min, max);
        v = item->valuedouble;
        if (isfinite(v) && v == floor(v) && v > (double)max && min == 0 && max == BBT_INT_MAX)
                return fail(d, -EINVAL, "expected integer <= %" PRId64, max);
        if (!isfinite(v) || v != floor(v) || v < (double)min || v > (double)max)
                return int_rule(d, min, max);
        *ret = (int64_t)v;
        return 0;
}

static int decode_num(struct decoder *d, const cJSON *item, double min, double max, double *ret)
{
        if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble < min ||
            item->valuedouble > max)
                return fail(d, -EINVAL, "expected number %g..%g", min, max);
        *ret = item->valuedouble;
        return 0;
}

static int enum_rule(struct decoder *d, const char *const *names)
{
        char list[256];
        size_t len = 0, i;

        list[0] = '\0';
        for (i = 0; names[i] && len < sizeof(list); i++) {
                int n = snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[i]);
                if (n < 0)
                        break;
                len += (size_t)n;
        }
        return fail(d, -EINVAL, "expected one of %s", list);
}

static int decode_object(struct decoder *d, const struct schema *s, const cJSON *obj, char *base);

static int decode_array(struct decoder *d, const struct field *f, const cJSON *item, char *base)
{
        size_t n, i = 0;
        const cJSON *el;
        char *elems;
        int r;

        if (!cJSON_IsArray(item))
                return fail(d, -EINVAL, "expected array");
        n = (size_t)cJSON_GetArraySize(item);
        if (n > (size_t)f->max)
                return fail(d, -EINVAL, "expected at most %" PRId64 " items", f->max);
        if (f->alloc) {
                /* One allocation per message: only inventory.devices needs one. */
                elems = n ? calloc(n, f->elem_size) : NULL;
                if (n && !elems)
                        return fail(d, -ENOMEM, "out of memory");
                d->alloc = elems;
                memcpy(base + f->off, &elems, sizeof(elems));
        } else {
                elems = base + f->off;
        }
        cJSON_ArrayForEach(el, item) {
                size_t saved = path_push(d, "[%zu]", i);

                if (!cJSON_IsObject(el))
                        return fail(d, -EINVAL, "expected object");
                r = decode_object(d, f->sub, el, elems + i * f->elem_size);
                if (r < 0)
                        return r;
                path_pop(d, saved);
                i++;
        }
        memcpy(base + f->count_off, &n, sizeof(n));
        return 0;
}

static int decode_field(struct decoder *d, const struct field *f, const cJSON *item, char *base)
{
        void *dst = base + f->off;
        int64_t i64;
        int r, i;

        switch (f->type) {
        case T_BOOL:
                if (!cJSON_IsBool(item))
                        return fail(d, -EINVAL, "expected boolean");
                *(bool *)dst = cJSON_IsTrue(item);
                return 0;
        case T_INT:
                return decode_int(d, item, f->min, f->max, dst);
        case T_U32:
                r = decode_int(d, item, f->min, f->max, &i64);
                if (r == 0)
                        *(uint32_t *)dst = (uint32_t)i64;
                return r;
        case T_NUM:
                return decode_num(d, item, f->dmin, f->dmax, dst);
        case T_NUMS:
                if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != f->max)
                        return fail(d, -EINVAL, "expected array of %" PRId64 " numbers", f->max);
                for (i = 0; i < f->max; i++) {
                        size_t saved = path_push(d, "[%d]", i);

                        r = decode_num(d, cJSON_GetArrayItem(item, i), f->dmin, f->dmax, (double *)dst + i);
                        if (r < 0)
                                return r;
                        path_pop(d, saved);
                }
                return 0;
        case T_TEXT:
                if (!cJSON_IsString(item))
                        return fail(d, -EINVAL, "expected string");
                if (bbt_utf8_chars(item->valuestring) > (size_t)f->max)
                        return fail(d, -EINVAL, "expected at most %" PRId64 " characters", f->max);
                *(const char **)dst = item->valuestring;
                return 0;
        case T_ID:
                if (!cJSON_IsString(item) || !pattern_match(f->pat, item->valuestring))
                        return fail(d, -EINVAL, "expected string matching %s", f->pat->regex);
                *(const char **)dst = item->valuestring;
                return 0;
        case T_ENUM:
                if (cJSON_IsString(item))
                        for (i = 0; f->names[i]; i++)
                                if (strcmp(f->names[i], item->valuestring) == 0) {
                                        *(int *)dst = (int)f->min + i;
                                        return 0;
                                }
                return enum_rule(d, f->names);
        case T_OBJECT:
                if (!cJSON_IsObject(item))
                        return fail(d, -EINVAL, "expected object");
                return decode_object(d, f->sub, item, dst);
        case T_ARRAY:
                return decode_array(d, f, item, base);
        case T_JSON:
                if (!cJSON_IsObject(item))
                        return fail(d, -EINVAL, "expected object");
                /* Points into the tree the message owns (priv_json). */
                *(const cJSON **)dst = item;
                return 0;
        }
        return fail(d, -EINVAL, "internal: unknown field type");
}

static int decode_object(struct decoder *d, const struct schema *s, const cJSON *obj, char *base)
{
        size_t i;
        int r;

        for (i = 0; i < s->n; i++) {
                const struct field *f = &s->fields[i];
                const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, f->name);
                size_t saved = path_push(d, ".%s", f->name);

                if (!item) {
                        if (f->required)
                                return fail(d, -EINVAL, "missing");
                } else {
                        r = decode_field(d, f, item, base);
                        if (r < 0)
                                return r;
                        if (f->has)
                                base[f->has - 1] = true;
                }
                path_pop(d, saved);
        }
        return 0;
}

static int require_field(struct decoder *d, const char *name, const void *value)
{
        if (value)
                return 0;
        path_push(d, ".%s", name);
        return fail(d, -EINVAL, "missing");
}

static int rule_at(struct decoder *d, const char *name, const char *rule)
{
        path_push(d, ".%s", name);
        return fail(d, -EINVAL, "%s", rule);
}

/* Rules beyond one field: conditional requirements and cross-field checks. */
static int check_state(struct decoder *d, const struct bbt_state *s)
{
        int r;

        if (s->has_skipped_from && !s->has_skipped_to)
                return rule_at(d, "skipped_to", "missing");
        if (s->has_skipped_to && !s->has_skipped_from)
                return rule_at(d, "skipped_from", "missing");
        if (s->has_skipped_to && s->skipped_to < s->skipped_from)
                return rule_at(d, "skipped_to", "must be >= skipped_from");

        if (!s->online)
                return s->reason == BBT_REASON_NONE ? rule_at(d, "reason", "missing") : 0;
        if ((r = require_field(d, "version", s->version)) < 0 ||
            (r = require_field(d, "hostname", s->hostname)) < 0 ||
            (r = require_field(d, "os", s->os)) < 0 ||
            (r = require_field(d, "machine_id", s->machine_id)) < 0)
                return r;
        return 0;
}

static int check_usage(struct decoder *d, const struct bbt_usage *u)
{
        if (u->end < u->start)
                return rule_at(d, "end", "must be >= start");
        if (u->end - u->start > 3600000)
                return rule_at(d, "end", "must be at most 3600000 ms after start");
        if (u->interactive_ms > u->end - u->start)
                return rule_at(d, "interactive_ms", "must be <= end - start");
        if (u->audio_ms > u->end - u->start)
                return rule_at(d, "audio_ms", "must be <= end - start");
        return 0;
}

/* An optional integer member NAME of OBJ in [MIN, MAX]. */
static int check_opt_int(struct decoder *d, const cJSON *obj, const char *name, int64_t min, int64_t max)
{
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
        size_t saved;
        int64_t v;
        int r;

        if (!item)
                return 0;
        saved = path_push(d, ".%s", name);
        r = decode_int(d, item, min, max, &v);
        if (r == 0)
                path_pop(d, saved);
        return r;
}

static const char *const at_bound_names[] = { "poweroff", "skip", NULL };

/* power_schedule args: "off", an array of at most BBT_POWER_SCHEDULE_MAX
 * RFC 3339 times; optional "postpone_step" (1..3600 s), "postpone_max"
 * (0..86400 s), "at_bound" ("poweroff" or "skip"), "rev" (int). */
static int check_power_schedule(struct decoder *d, const cJSON *args)
{
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(args, "off"), *item;
        const cJSON *bound = cJSON_GetObjectItemCaseSensitive(args, "at_bound");
        size_t saved = path_push(d, ".args"), at, i = 0;
        int r;

        if ((r = check_opt_int(d, args, "postpone_step", 1, 3600)) < 0 ||
            (r = check_opt_int(d, args, "postpone_max", 0, 86400)) < 0 ||
            (r = check_opt_int(d, args, "rev", 0, BBT_INT_MAX)) < 0)
                return r;
        if (bound) {
                bool known = false;

                for (int k = 0; cJSON_IsString(bound) && at_bound_names[k]; k++)
                        known |= strcmp(bound->valuestring, at_bound_names[k]) == 0;
                if (!known) {
                        path_push(d, ".at_bound");
                        return enum_rule(d, at_bound_names);
                }
        }
        at = path_push(d, ".off");
        if (!off)
                return fail(d, -EINVAL, "missing");
        if (!cJSON_IsArray(off))
                return fail(d, -EINVAL, "expected array");
        if (cJSON_GetArraySize(off) > BBT_POWER_SCHEDULE_MAX)
                return fail(d, -EINVAL, "expected at most %d items", BBT_POWER_SCHEDULE_MAX);
        cJSON_ArrayForEach(item, off) {
                path_push(d, "[%zu]", i++);
                if (!cJSON_IsString(item) || !pattern_match(&pat_rfc3339, item->valuestring))
                        return fail(d, -EINVAL, "expected string matching %s", pat_rfc3339.regex);
                path_pop(d, at);
        }
        path_pop(d, saved);
        return 0;
}

static int check_cmd(struct decoder *d, struct bbt_cmd *c)
{
        const cJSON *args = c->args_json;
        size_t i, saved;
        int r;

        c->op_code = BBT_OP_OTHER;
        for (i = 0; i < BBT_ELEMENTSOF(cmd_ops); i++)
                if (strcmp(cmd_ops[i].name, c->op) == 0)
                        break;
        if (i == BBT_ELEMENTSOF(cmd_ops))
                return 0;
        c->op_code = cmd_ops[i].code;
        if (!args)
                return cmd_ops[i].args_required ? rule_at(d, "args", "missing") : 0;
        if (c->op_code == BBT_OP_POWER_SCHEDULE)
                return check_power_schedule(d, args);
        if (!cmd_ops[i].args_schema.fields)
                return 0;
        saved = path_push(d, ".args");
        r = decode_object(d, &cmd_ops[i].args_schema, args, (char *)c);
        if (r < 0)
                return r;
        path_pop(d, saved);
        if (c->op_code == BBT_OP_RESEND && c->args.resend.to < c->args.resend.from)
                return rule_at(d, "args.to", "must be >= args.from");
        return 0;
}

#define MISSING_MAX 64 /* ranges in a resend reply's result.missing */

/* A resend reply's result.missing, when present: at most MISSING_MAX
 * {"from": seq, "to": seq >= from, "reason": "^[a-z_]{1,32}$"}. The rest of
 * a result is free-form. */
static int check_reply_result(struct decoder *d, const cJSON *result)
{
        const cJSON *missing = cJSON_GetObjectItemCaseSensitive(result, "missing"), *item;
        size_t saved, i = 0;
        int r;

        if (!missing)
                return 0;
        saved = path_push(d, ".result.missing");
        if (!cJSON_IsArray(missing))
                return fail(d, -EINVAL, "expected array");
        if (cJSON_GetArraySize(missing) > MISSING_MAX)
                return fail(d, -EINVAL, "expected at most %d items", MISSING_MAX);
        cJSON_ArrayForEach(item, missing) {
                size_t item_at = path_push(d, "[%zu]", i++), at = d->path_len;
                const cJSON *reason = cJSON_GetObjectItemCaseSensitive(item, "reason");
                int64_t from, to;

                if (!cJSON_IsObject(item))
                        return fail(d, -EINVAL, "expected object");
                path_push(d, ".from");
                if (!cJSON_GetObjectItemCaseSensitive(item, "from"))
                        return fail(d, -EINVAL, "missing");
                if ((r = decode_int(d, cJSON_GetObjectItemCaseSensitive(item, "from"), 0, BBT_INT_MAX, &from)) < 0)
                        return r;
                path_pop(d, at);
                path_push(d, ".to");
                if (!cJSON_GetObjectItemCaseSensitive(item, "to"))
                        return fail(d, -EINVAL, "missing");
                if ((r = decode_int(d, cJSON_GetObjectItemCaseSensitive(item, "to"), 0, BBT_INT_MAX, &to)) < 0)
                        return r;
                if (to < from)
                        return fail(d, -EINVAL, "must be >= from");
                path_pop(d, at);
                path_push(d, ".reason");
                if (!reason)
                        return fail(d, -EINVAL, "missing");
                if (!cJSON_IsString(reason) || strlen(reason->valuestring) < 1 || strlen(reason->valuestring) > 32 ||
                    strspn(reason->valuestring, "abcdefghijklmnopqrstuvwxyz_") != strlen(reason->valuestring))
                        return fail(d, -EINVAL, "expected 1 to 32 of a-z _");
                path_pop(d, item_at);
        }
        path_pop(d, saved);
        return 0;
}

static int check_body(struct decoder *d, struct bbt_msg *m)
{
        switch (m->channel) {
        case BBT_CH_STATE:
                return check_state(d, &m->body.state);
        case BBT_CH_USAGE:
                return check_usage(d, &m->body.usage);
        case BBT_CH_INVENTORY:
                if (m->body.inventory.has_net && !m->body.inventory.net.ipv4 != !m->body.inventory.net.has_prefix) {
                        path_push(d, ".net");
                        return rule_at(d, m->body.inventory.net.ipv4 ? "prefix" : "ipv4", "missing");
                }
                return 0;
        case BBT_CH_CMD:
                return check_cmd(d, &m->body.cmd);
        case BBT_CH_CMD_REPLY:
                if (!m->body.reply.ok)
                        return require_field(d, "error", m->body.reply.error);
                return m->body.reply.result_json ? check_reply_result(d, m->body.reply.result_json) : 0;
        default:
                return 0;
        }
}

void bbt_msg_init(struct bbt_msg *msg, enum bbt_channel ch)
{
        memset(msg, 0, sizeof(*msg));
        msg->channel = ch;
        msg->v = BBT_PROTOCOL_VERSION;
}

void bbt_msg_free(struct bbt_msg *msg)
{
        if (!msg)
                return;
        cJSON_Delete(msg->priv_json);
        free(msg->priv_alloc);
        memset(msg, 0, sizeof(*msg));
}

int bbt_msg_decode(enum bbt_channel ch, const void *payload, size_t len, struct bbt_msg *ret,
                   struct bbt_error *err)
{
        struct decoder d = { .err = err };
        const char *name = bbt_channel_name(ch);
        const char *end = NULL, *bad;
        struct bbt_msg m;
        size_t off;
        cJSON *root = NULL;
        const cJSON *v;
        int r;

        memset(ret, 0, sizeof(*ret));
        if (err)
                memset(err, 0, sizeof(*err));
        if (!name)
                return fail(&d, -EINVAL, "unknown channel");
        path_push(&d, "%s", name);
        if (len > BBT_MSG_MAX)
                return fail(&d, -EMSGSIZE, "payload of %zu bytes exceeds %d", len, BBT_MSG_MAX);
        /* RFC 8259 forbids senders to add a byte order mark; cJSON would skip it. */
        if (len >= 3 && memcmp(payload, "\xef\xbb\xbf", 3) == 0)
                return fail(&d, -EBADMSG, "payload starts with a byte order mark");
        bad = json_text_check(payload, len, &off);
        if (bad)
                return fail(&d, -EBADMSG, "payload %s at byte %zu", bad, off);

        root = cJSON_ParseWithLengthOpts(payload, len, &end, false);
        if (!root) {
                const char *where = cJSON_GetErrorPtr();

                off = where && where >= (const char *)payload ? (size_t)(where - (const char *)payload) : 0;
                return fail(&d, -EBADMSG, "invalid JSON near byte %zu", off);
        }
        for (; end && end < (const char *)payload + len; end++)
                if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n') {
                        r = fail(&d, -EBADMSG, "invalid JSON: trailing data at byte %zu",
                                 (size_t)(end - (const char *)payload));
                        goto fail;
                }
        if (!cJSON_IsObject(root)) {
                r = fail(&d, -EINVAL, "expected object");
                goto fail;
        }

        bbt_msg_init(&m, ch);
        v = cJSON_GetObjectItemCaseSensitive(root, "v");
        if (v && cJSON_IsNumber(v) && v->valuedouble != BBT_PROTOCOL_VERSION) {
                path_push(&d, ".v");
                r = fail(&d, -EPROTONOSUPPORT, "unsupported version %g (expected %d)", v->valuedouble,
                         BBT_PROTOCOL_VERSION);
                goto fail;
        }
        r = decode_object(&d, &envelope_schema, root, (char *)&m);
        if (r < 0)
                goto fail;
        r = decode_object(&d, &body_schemas[ch], root, (char *)&m.body);
        if (r < 0)
                goto fail;
        r = check_body(&d, &m);
        if (r < 0)
                goto fail;

        m.priv_json = root;
        m.priv_alloc = d.alloc;
        *ret = m;
        return 0;
fail:
        free(d.alloc);
        cJSON_Delete(root);
        return r;
}

static bool leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to Y-M-D (proleptic Gregorian; H. Hinnant's method). */
int bbt_rfc3339_parse(const char *s, int64_t *ret_ms, int *ret_offset_min)
{
        static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int64_t y, secs;
        int mo, d, off = 0;

        if (!s || !pattern_match(&pat_rfc3339, s))
                return -EINVAL;
        y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        mo = two_digits(s + 5), d = two_digits(s + 8);
        if (mo < 1 || mo > 12 || d > mdays[mo - 1] + (mo == 2 && leap(y)))
                return -EINVAL;
        if (s[19] != 'Z')
                off = (s[19] == '-' ? -1 : 1) * (two_digits(s + 20) * 60 + two_digits(s + 23));
        secs = bbt_days_from_civil(y, mo, d) * 86400 + two_digits(s + 11) * 3600 + two_digits(s + 14) * 60 +
               two_digits(s + 17) - (int64_t)off * 60;
        if (secs < 0)
                return -EINVAL;
        *ret_ms = secs * 1000;
        if (ret_offset_min)
                *ret_offset_min = off;
        return 0;
}

const char *bbt_error_format(const struct bbt_error *err, char *buf, size_t size)
{
        snprintf(buf, size, "%s: %s", err->path, err->rule);
        return buf;
}

/* ---- encode ---- */

/* Integers are written as plain decimal text: cJSON would print 2e+15. */
static cJSON *create_int(int64_t v)
{
        char text[24];

        snprintf(text, sizeof(text), "%" PRId64, v);
        return cJSON_CreateRaw(text);
}

static cJSON *encode_object(const struct schema *s, const char *base);

static cJSON *encode_field(const struct field *f, const char *base)
{
        const void *src = base + f->off;
        cJSON *arr;
        int64_t i;

        switch (f->type) {
        case T_BOOL:
                return cJSON_CreateBool(*(const bool *)src);
        case T_INT:
                return create_int(*(const int64_t *)src);
        case T_U32:
                return create_int(*(const uint32_t *)src);
        case T_NUM:
                return cJSON_CreateNumber(*(const double *)src);
        case T_NUMS:
                return cJSON_CreateDoubleArray(src, (int)f->max);
        case T_TEXT:
        case T_ID:
                return cJSON_CreateString(*(const char *const *)src);
        case T_ENUM: {
                int v = *(const int *)src - (int)f->min, n = 0;

                while (f->names[n])
                        n++;
                /* An out-of-range value becomes a string the decoder rejects. */
                return cJSON_CreateString(v >= 0 && v < n ? f->names[v] : "(invalid)");
        }
        case T_OBJECT:
                return encode_object(f->sub, src);
        case T_ARRAY: {
                size_t n;
                const char *elems;

                memcpy(&n, base + f->count_off, sizeof(n));
                if (f->alloc)
                        memcpy(&elems, src, sizeof(elems));
                else
                        elems = src;
                if (n > (size_t)f->max && !f->alloc)
                        n = (size_t)f->max + 1; /* never read past fixed storage; decode rejects */
                arr = cJSON_CreateArray();
                for (i = 0; arr && (size_t)i < n; i++)
                        if (!cJSON_AddItemToArray(arr, encode_object(f->sub, elems + i * f->elem_size)))
                                break;
                return arr;
        }
        case T_JSON:
                return cJSON_Duplicate(*(const cJSON *const *)src, true);
        }
        return NULL;
}

static bool field_present(const struct field *f, const char *base)
{
        const void *src = base + f->off;

        if (f->has)
                return base[f->has - 1];
        switch (f->type) {
        case T_TEXT:
        case T_ID:
        case T_JSON:
                return *(const void *const *)src != NULL;
        case T_ENUM:
                return *(const int *)src >= f->min;
        default:
                return true;
        }
}

static cJSON *encode_object(const struct schema *s, const char *base)
{
        cJSON *obj = cJSON_CreateObject();
        size_t i;

        for (i = 0; obj && i < s->n; i++) {
                const struct field *f = &s->fields[i];
                cJSON *item;

                if (!field_present(f, base))
                        continue;
                item = encode_field(f, base);
                if (!item || !cJSON_AddItemToObject(obj, f->name, item)) {
                        cJSON_Delete(item);
                        cJSON_Delete(obj);
                        return NULL;
                }
        }
        return obj;
}

/* The cmd args object: from the union for ops with a schema, else the raw JSON. */
static cJSON *encode_cmd_args(const struct bbt_cmd *c)
{
        size_t i;

        for (i = 0; c->op && i < BBT_ELEMENTSOF(cmd_ops); i++)
                if (strcmp(cmd_ops[i].name, c->op) == 0 && cmd_ops[i].args_schema.fields)
                        return encode_object(&cmd_ops[i].args_schema, (const char *)c);
        return c->args_json ? cJSON_Duplicate(c->args_json, true) : NULL;
}

int bbt_msg_encode(const struct bbt_msg *msg, char **ret_json, size_t *ret_len, struct bbt_error *err)
{
        struct bbt_msg check;
        cJSON *root = NULL, *body = NULL, *item, *args;
        char *json = NULL;
        size_t len;
        int r;

        if (!bbt_channel_name(msg->channel))
                return -EINVAL;
        root = encode_object(&envelope_schema, (const char *)msg);
        body = encode_object(&body_schemas[msg->channel], (const char *)&msg->body);
        if (!root || !body) {
                r = -ENOMEM;
                goto out;
        }
        if (msg->channel == BBT_CH_CMD) {
                cJSON_DeleteItemFromObjectCaseSensitive(body, "args");
                args = encode_cmd_args(&msg->body.cmd);
                if (args)
                        cJSON_AddItemToObject(body, "args", args);
        }
        /* Move the body's members into the envelope object. */
        while ((item = body->child)) {
                cJSON_DetachItemViaPointer(body, item);
                cJSON_AddItemToObject(root, item->string, item);
        }
        json = cJSON_PrintUnformatted(root);
        if (!json) {
                r = -ENOMEM;
                goto out;
        }
        len = strlen(json);
        /* Whatever we send must pass our own decoder: one set of rules. */
        r = bbt_msg_decode(msg->channel, json, len, &check, err);
        bbt_msg_free(&check);
        if (r == -EBADMSG || r == -EPROTONOSUPPORT)
                r = -EINVAL;
        if (r < 0)
                goto out;
        *ret_json = json;
        *ret_len = len;
        json = NULL;
out:
        free(json);
        cJSON_Delete(body);
        cJSON_Delete(root);
        return r;
}
