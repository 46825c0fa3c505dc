/* Protocol messages: golden round trips of every type, and every kind of rejection. */
/* bbt-test: label=unit timeout=30 */
#include <errno.h>
#include <math.h>

#include <cjson/cJSON.h>

#include "bbt/protocol.h"
#include "bbt/base.h"
#include "samples.h"
#include "test.h"

TEST(encode_matches_golden)
{
        const struct bbt_sample *s = NULL;
        struct bbt_error err;
        bool seen[BBT_CH__COUNT] = { false };
        size_t n, i, len;
        char *json;
        int ch;

        s = bbt_samples(&n);
        for (i = 0; i < n; i++) {
                if (bbt_msg_encode(&s[i].msg, &json, &len, &err) < 0)
                        FAIL("%s: encode: %s: %s", s[i].name, err.path, err.rule);
                if (strcmp(json, s[i].json) != 0)
                        FAIL("%s:\n  got      %s\n  expected %s", s[i].name, json, s[i].json);
                ASSERT_EQ(len, strlen(json));
                free(json);
                seen[s[i].msg.channel] = true;
        }
        for (ch = 0; ch < BBT_CH__COUNT; ch++)
                if (!seen[ch])
                        FAIL("no sample for channel %s", bbt_channel_name((enum bbt_channel)ch));
}

TEST(decode_then_encode_is_identity)
{
        const struct bbt_sample *s;
        struct bbt_error err;
        struct bbt_msg m;
        size_t n, i, len;
        char *json;

        s = bbt_samples(&n);
        for (i = 0; i < n; i++) {
                if (bbt_msg_decode(s[i].msg.channel, s[i].json, strlen(s[i].json), &m, &err) < 0)
                        FAIL("%s: decode: %s: %s", s[i].name, err.path, err.rule);
                ASSERT_EQ(m.seq, 42);
                ASSERT_EQ(m.ts, 1700000000123);
                ASSERT_EQ(m.boot, 7);
                ASSERT_EQ(m.v, 1);
                ASSERT_OK(bbt_msg_encode(&m, &json, &len, &err));
                if (strcmp(json, s[i].json) != 0)
                        FAIL("%s:\n  got      %s\n  expected %s", s[i].name, json, s[i].json);
                free(json);
                bbt_msg_free(&m);
        }
}

static const char *sample_json(const char *name)
{
        const struct bbt_sample *s;
        size_t n, i;

        s = bbt_samples(&n);
        for (i = 0; i < n; i++)
                if (strcmp(s[i].name, name) == 0)
                        return s[i].json;
        FAIL("no sample %s", name);
}

TEST(decode_fills_nested_fields)
{
        const char *json = sample_json("hb-full");
        struct bbt_msg m;

        ASSERT_OK(bbt_msg_decode(BBT_CH_HB, json, strlen(json), &m, NULL));
        ASSERT_EQ(m.body.hb.uptime, 9007199254740991LL);
        ASSERT_DBL_NEAR(m.body.hb.load[2], 3.0, 0);
        ASSERT(m.body.hb.has_disk_spool);
        ASSERT_EQ(m.body.hb.disk_spool.free, 1);
        ASSERT(m.body.hb.has_temp);
        ASSERT_DBL_NEAR(m.body.hb.temp_max, 71.5, 0);
        ASSERT_EQ(m.body.hb.n_net, 2);
        ASSERT_STR_EQ(m.body.hb.net[1].ifname, "wlan0");
        ASSERT(!m.body.hb.net[1].up);
        ASSERT(m.body.hb.has_projector);
        ASSERT_EQ(m.body.hb.projector.power, BBT_POWER_ON);
        ASSERT_EQ(m.body.hb.projector.erst[BBT_ERST_FILTER], BBT_ERST_ERROR);
        ASSERT_EQ(m.body.hb.projector.erst[BBT_ERST_LAMP], BBT_ERST_WARNING);
        ASSERT_EQ(m.body.hb.spool_dropped, 3);
        bbt_msg_free(&m);

        json = sample_json("inventory-two");
        ASSERT_OK(bbt_msg_decode(BBT_CH_INVENTORY, json, strlen(json), &m, NULL));
        ASSERT_EQ(m.body.inventory.n_devices, 2);
        ASSERT_EQ(m.body.inventory.devices[1].kind, BBT_KIND_STORAGE);
        ASSERT_STR_EQ(m.body.inventory.devices[1].serial, "");
        ASSERT(m.body.inventory.devices[0].serial == NULL);
        bbt_msg_free(&m);
        bbt_msg_free(&m); /* idempotent */
        bbt_msg_free(NULL);

        json = sample_json("cmd-resend");
        ASSERT_OK(bbt_msg_decode(BBT_CH_CMD, json, strlen(json), &m, NULL));
        ASSERT_EQ(m.body.cmd.op_code, BBT_OP_RESEND);
        ASSERT_EQ(m.body.cmd.args.resend.from, 100);
        ASSERT_EQ(m.body.cmd.args.resend.to, 250);
        bbt_msg_free(&m);
}

#define ENV "\"v\":1,\"seq\":1,\"ts\":1700000000000,\"boot\":1"
#define USAGE_OK "\"start\":1000,\"end\":2000,\"state\":\"active\",\"touch\":1,\"pen\":0,\"mouse\":0,\"key\":0,\"interactive_ms\":500,\"audio_ms\":0"
#define HB_OK "\"uptime\":1,\"load\":[0,0,0],\"cpu\":0,\"mem\":{\"total\":1,\"available\":1},\"disk\":{\"root\":{\"total\":1,\"free\":1}},\"net\":[],\"state\":\"idle\",\"spool\":{\"depth\":0,\"dropped\":0},\"clock_synced\":true"
#define DEV_OK "{\"kind\":\"mouse\",\"subsystem\":\"input\",\"syspath\":\"/x\"}"

static const struct {
        enum bbt_channel ch;
        const char *payload;
        int rc;
        const char *error; /* expected "path: rule" exactly */
} rejects[] = {
        { BBT_CH_USAGE, "{" ENV ",\"end\":2000,\"state\":\"idle\",\"touch\":0,\"pen\":0,\"mouse\":0,\"key\":0,\"interactive_ms\":0,\"audio_ms\":0}",
          -EINVAL, "usage.start: missing" },
        { BBT_CH_HB, "{" ENV ",\"uptime\":1,\"load\":[0,0,0],\"cpu\":0,\"mem\":{\"total\":-1,\"available\":1}}",
          -EINVAL, "hb.mem.total: expected integer >= 0" },
        { BBT_CH_HB, "{" ENV ",\"uptime\":1,\"load\":[0,0],\"cpu\":0}", -EINVAL, "hb.load: expected array of 3 numbers" },
        { BBT_CH_HB, "{" ENV ",\"uptime\":1,\"load\":[0,-1,0],\"cpu\":0}", -EINVAL, "hb.load[1]: expected number 0..1e+06" },
        { BBT_CH_HB, "{" ENV "," HB_OK ",\"projector\":{\"reachable\":true,\"erst\":{\"fan\":\"ok\",\"lamp\":\"ok\",\"temp\":\"hot\",\"cover\":\"ok\",\"filter\":\"ok\",\"other\":\"ok\"}}}",
          -EINVAL, "hb.projector.erst.temp: expected one of ok, warning, error" },
        { BBT_CH_HB, "{" ENV "," HB_OK ",\"temp\":null}", -EINVAL, "hb.temp: expected object" },
        { BBT_CH_INVENTORY, "{" ENV ",\"devices\":[" DEV_OK ",{\"kind\":\"tv\",\"subsystem\":\"drm\",\"syspath\":\"/y\"}]}",
          -EINVAL, "inventory.devices[1].kind: expected one of camera, audio_in, audio_out, touch, pen, keyboard, mouse, storage, display, projector, network, other" },
        { BBT_CH_PERIPH, "{" ENV ",\"action\":\"add\",\"dev\":{\"kind\":\"camera\",\"subsystem\":\"video4linux\",\"syspath\":\"/v\",\"vendor_id\":\"046D\"}}",
          -EINVAL, "periph.dev.vendor_id: expected string matching ^[0-9a-f]{4}$" },
        { BBT_CH_USAGE, "{\"v\":2,\"seq\":1,\"ts\":1,\"boot\":1}", -EPROTONOSUPPORT, "usage.v: unsupported version 2 (expected 1)" },
        { BBT_CH_USAGE, "{\"v\":\"1\",\"seq\":1,\"ts\":1,\"boot\":1}", -EINVAL, "usage.v: expected integer 1" },
        { BBT_CH_USAGE, "{\"seq\":1,\"ts\":1,\"boot\":1}", -EINVAL, "usage.v: missing" },
        { BBT_CH_USAGE, "{\"v\":1,\"seq\":1.5,\"ts\":1,\"boot\":1}", -EINVAL, "usage.seq: expected integer >= 0" },
        { BBT_CH_USAGE, "{\"v\":1,\"seq\":9007199254740992,\"ts\":1,\"boot\":1}", -EINVAL, "usage.seq: expected integer <= 9007199254740991" },
        { BBT_CH_USAGE, "{\"v\":1,\"seq\":-1,\"ts\":1,\"boot\":1}", -EINVAL, "usage.seq: expected integer >= 0" },
        { BBT_CH_HB, "\xef\xbb\xbf{\"v\":1}", -EBADMSG, "hb: payload starts with a byte order mark" },
        { BBT_CH_USAGE, "{\"v\":1,\"seq\":1,\"ts\":1,\"boot\":4294967296}", -EINVAL, "usage.boot: expected integer 0..4294967295" },
        { BBT_CH_USAGE, "{" ENV ",\"start\":3000,\"end\":2000,\"state\":\"idle\",\"touch\":0,\"pen\":0,\"mouse\":0,\"key\":0,\"interactive_ms\":0,\"audio_ms\":0}",
          -EINVAL, "usage.end: must be >= start" },
        { BBT_CH_USAGE, "{" ENV ",\"start\":0,\"end\":3600001,\"state\":\"idle\",\"touch\":0,\"pen\":0,\"mouse\":0,\"key\":0,\"interactive_ms\":0,\"audio_ms\":0}",
          -EINVAL, "usage.end: must be at most 3600000 ms after start" },
        { BBT_CH_USAGE, "{" ENV ",\"start\":0,\"end\":10,\"state\":\"active\",\"touch\":0,\"pen\":0,\"mouse\":0,\"key\":0,\"interactive_ms\":11,\"audio_ms\":0}",
          -EINVAL, "usage.interactive_ms: must be <= end - start" },
        { BBT_CH_STATE, "{" ENV ",\"online\":true,\"version\":\"1\",\"hostname\":\"h\",\"os\":\"o\"}", -EINVAL, "state.machine_id: missing" },
        { BBT_CH_STATE, "{" ENV ",\"online\":false}", -EINVAL, "state.reason: missing" },
        { BBT_CH_STATE, "{" ENV ",\"online\":\"yes\"}", -EINVAL, "state.online: expected boolean" },
        { BBT_CH_STATE, "{" ENV ",\"online\":true,\"version\":\"123456789012345678901234567890123\",\"hostname\":\"h\",\"os\":\"o\",\"machine_id\":\"m\"}",
          -EINVAL, "state.version: expected at most 32 characters" },
        { BBT_CH_CMD, "{" ENV ",\"id\":\"c1\",\"op\":\"resend\"}", -EINVAL, "cmd.args: missing" },
        { BBT_CH_CMD, "{" ENV ",\"id\":\"c1\",\"op\":\"resend\",\"args\":{\"from\":10,\"to\":9}}", -EINVAL, "cmd.args.to: must be >= args.from" },
        { BBT_CH_CMD, "{" ENV ",\"id\":\"c1\",\"op\":\"resend\",\"args\":{\"from\":10}}", -EINVAL, "cmd.args.to: missing" },
        { BBT_CH_CMD, "{" ENV ",\"id\":\"c1\",\"op\":\"wake\",\"args\":{\"mac\":\"00:11:22:33:44\"}}", -EINVAL,
          "cmd.args.mac: expected string matching ^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$" },
        { BBT_CH_CMD, "{" ENV ",\"id\":\"c 1\",\"op\":\"x\"}", -EINVAL, "cmd.id: expected string matching ^[A-Za-z0-9_-]{1,64}$" },
        { BBT_CH_CMD, "{" ENV ",\"id\":\"c1\",\"op\":\"Reboot\"}", -EINVAL, "cmd.op: expected string matching ^[a-z][a-z0-9_]{0,31}$" },
        { BBT_CH_CMD, "{" ENV ",\"id\":\"c1\",\"op\":\"x\",\"args\":[1]}", -EINVAL, "cmd.args: expected object" },
        { BBT_CH_CMD_REPLY, "{" ENV ",\"id\":\"c1\",\"ok\":false}", -EINVAL, "cmd/reply.error: missing" },
        { BBT_CH_ALERT, "{" ENV ",\"code\":\"overheat\",\"severity\":\"critical\",\"state\":\"raised\"}", -EINVAL,
          "alert.severity: expected one of warning, error" },
        { BBT_CH_HB, "[1,2]", -EINVAL, "hb: expected object" },
        { BBT_CH_HB, "{\"v\":1,", -EBADMSG, "hb: invalid JSON near byte 6" },
        { BBT_CH_HB, "{\"v\":1} x", -EBADMSG, "hb: invalid JSON: trailing data at byte 8" },
        { BBT_CH_HB, "{\"v\":\"\xc3\x28\"}", -EBADMSG, "hb: payload not valid UTF-8 at byte 6" },
        { BBT_CH_HB, "{\"v\":\"a\tb\"}", -EBADMSG, "hb: payload control character in string at byte 7" },
        { BBT_CH_HB, "", -EBADMSG, "hb: invalid JSON near byte 0" },
};

/* power_schedule's times: RFC 3339 with seconds and an offset, real dates only. */
TEST(rfc3339_times)
{
        int64_t ms;
        int off;

        ASSERT_OK(bbt_rfc3339_parse("2026-12-07T18:00:00+08:00", &ms, &off));
        ASSERT_EQ(ms, 1796637600000LL); /* 10:00 UTC */
        ASSERT_EQ(off, 480);
        ASSERT_OK(bbt_rfc3339_parse("2026-12-07T10:00:00Z", &ms, &off));
        ASSERT_EQ(ms, 1796637600000LL);
        ASSERT_EQ(off, 0);
        ASSERT_OK(bbt_rfc3339_parse("2026-12-07T05:30:00-04:30", &ms, NULL));
        ASSERT_EQ(ms, 1796637600000LL);
        ASSERT_OK(bbt_rfc3339_parse("2028-02-29T00:00:00+08:00", &ms, NULL)); /* a leap year */
        ASSERT_OK(bbt_rfc3339_parse("2000-02-29T00:00:00Z", &ms, NULL));
        ASSERT_EQ(ms, 951782400000LL);
        ASSERT_EQ(bbt_rfc3339_parse("2027-02-29T00:00:00+08:00", &ms, NULL), -EINVAL);
        ASSERT_EQ(bbt_rfc3339_parse("1900-02-29T00:00:00Z", &ms, NULL), -EINVAL);
        ASSERT_EQ(bbt_rfc3339_parse("2026-04-31T18:00:00+08:00", &ms, NULL), -EINVAL);
        ASSERT_EQ(bbt_rfc3339_parse("2026-12-07T18:00+08:00", &ms, NULL), -EINVAL);
        ASSERT_EQ(bbt_rfc3339_parse("2026-12-07T18:00:00", &ms, NULL), -EINVAL);
        ASSERT_EQ(bbt_rfc3339_parse("2026-12-07 18:00:00+08:00", &ms, NULL), -EINVAL);
        ASSERT_EQ(bbt_rfc3339_parse("2026-12-07T18:00:60+08:00", &ms, NULL), -EINVAL);
        ASSERT_EQ(bbt_rfc3339_parse("1970-01-01T00:00:00+08:00", &ms, NULL), -EINVAL); /* before the epoch */
        ASSERT_EQ(bbt_rfc3339_parse(NULL, &ms, NULL), -EINVAL);
}

TEST(decode_rejects_with_path_and_rule)
{
        struct bbt_error err;
        struct bbt_msg m;
        char line[300];
        size_t i;
        int r;

        for (i = 0; i < BBT_ELEMENTSOF(rejects); i++) {
                r = bbt_msg_decode(rejects[i].ch, rejects[i].payload, strlen(rejects[i].payload), &m, &err);
                if (r != rejects[i].rc)
                        FAIL("case %zu (%s): rc %d, expected %d", i, rejects[i].error, r, rejects[i].rc);
                bbt_error_format(&err, line, sizeof(line));
                if (strcmp(line, rejects[i].error) != 0)
                        FAIL("case %zu:\n  got      %s\n  expected %s", i, line, rejects[i].error);
                ASSERT(m.priv_json == NULL && m.priv_alloc == NULL);
        }
}

TEST(decode_accepts_edges)
{
        static const struct {
                enum bbt_channel ch;
                const char *payload;
        } ok[] = {
                /* 5.0 is an integer, unknown fields are ignored at every level. */
                { BBT_CH_USAGE, "{\"v\":1.0,\"seq\":5.0,\"ts\":0,\"boot\":4294967295,\"future\":{\"x\":[1]}," USAGE_OK "}" },
                { BBT_CH_HB, "{" ENV "," HB_OK ",\"mem2\":1,\"net\":[{\"ifname\":\"br-lan.1\",\"up\":true,\"speed\":100}]}" },
                /* Escaped control characters are fine; 32 CJK characters are 32, not 96. */
                { BBT_CH_ALERT, "{" ENV ",\"code\":\"x\",\"severity\":\"error\",\"state\":\"raised\",\"detail\":\"a\\tb\\n\"}" },
                { BBT_CH_STATE, "{" ENV ",\"online\":true,\"version\":\"一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二\",\"hostname\":\"h\",\"os\":\"o\",\"machine_id\":\"m\"}" },
                { BBT_CH_CMD, "{" ENV ",\"id\":\"x\",\"op\":\"reboot_later\",\"args\":{\"anything\":[1,2]}}" },
                { BBT_CH_STATE, " \r\n{" ENV ",\"online\":false,\"reason\":\"shutdown\"}\n" },
        };
        struct bbt_error err;
        struct bbt_msg m;
        size_t i;

        for (i = 0; i < BBT_ELEMENTSOF(ok); i++) {
                if (bbt_msg_decode(ok[i].ch, ok[i].payload, strlen(ok[i].payload), &m, &err) < 0)
                        FAIL("case %zu: %s: %s", i, err.path, err.rule);
                bbt_msg_free(&m);
        }
}

TEST(decode_limits_size)
{
        char *big = malloc(BBT_MSG_MAX + 2);
        struct bbt_error err;
        struct bbt_msg m;
        size_t head;

        ASSERT(big);
        /* Exactly 16384 bytes: accepted; one more: rejected before parsing. */
        head = (size_t)snprintf(big, BBT_MSG_MAX, "{" ENV ",\"code\":\"x\",\"severity\":\"error\",\"state\":\"raised\",\"pad\":\"");
        memset(big + head, 'a', BBT_MSG_MAX - head - 2);
        memcpy(big + BBT_MSG_MAX - 2, "\"}", 2);
        ASSERT_OK(bbt_msg_decode(BBT_CH_ALERT, big, BBT_MSG_MAX, &m, &err));
        bbt_msg_free(&m);
        big[BBT_MSG_MAX] = ' ';
        ASSERT_EQ(bbt_msg_decode(BBT_CH_ALERT, big, BBT_MSG_MAX + 1, &m, &err), -EMSGSIZE);
        ASSERT_STR_EQ(err.rule, "payload of 16385 bytes exceeds 16384");
        free(big);
}

TEST(decode_not_nul_terminated)
{
        /* The payload buffer of an MQTT message is not a C string. */
        const char *json = sample_json("alert-cleared");
        size_t len = strlen(json);
        char *copy = malloc(len);
        struct bbt_msg m;

        ASSERT(copy);
        memcpy(copy, json, len);
        ASSERT_OK(bbt_msg_decode(BBT_CH_ALERT, copy, len, &m, NULL));
        ASSERT_STR_EQ(m.body.alert.code, "overheat");
        bbt_msg_free(&m);
        free(copy);
}

TEST(encode_refuses_invalid_messages)
{
        struct bbt_error err;
        struct bbt_msg m;
        char *json = NULL;
        size_t len;

        bbt_msg_init(&m, BBT_CH_ALERT);
        m.seq = -1;
        m.body.alert.code = "x";
        ASSERT_EQ(bbt_msg_encode(&m, &json, &len, &err), -EINVAL);
        ASSERT_STR_EQ(err.path, "alert.seq");
        ASSERT(json == NULL);

        m.seq = 1;
        m.body.alert.code = NULL;
        ASSERT_EQ(bbt_msg_encode(&m, &json, &len, &err), -EINVAL);
        ASSERT_STR_EQ(err.path, "alert.code");
        ASSERT_STR_EQ(err.rule, "missing");

        bbt_msg_init(&m, BBT_CH_HB);
        m.body.hb.cpu = NAN;
        ASSERT_EQ(bbt_msg_encode(&m, &json, &len, &err), -EINVAL);
        ASSERT_STR_EQ(err.path, "hb.cpu");

        bbt_msg_init(&m, BBT_CH_HB);
        m.body.hb.n_net = BBT_HB_NET_MAX + 5;
        ASSERT_EQ(bbt_msg_encode(&m, &json, &len, &err), -EINVAL);
        ASSERT_STR_EQ(err.path, "hb.net");

        bbt_msg_init(&m, BBT_CH_USAGE);
        m.body.usage.state = (enum bbt_usage_state)9;
        ASSERT_EQ(bbt_msg_encode(&m, &json, &len, &err), -EINVAL);
        ASSERT_STR_EQ(err.path, "usage.state");

        m.channel = BBT_CH__COUNT;
        ASSERT_EQ(bbt_msg_encode(&m, &json, &len, &err), -EINVAL);
}

TEST(encode_refuses_oversized)
{
        static struct bbt_dev devs[BBT_INVENTORY_MAX];
        static char path[200];
        struct bbt_error err;
        struct bbt_msg m;
        char *json = NULL;
        size_t len, i;

        memset(path, 'p', sizeof(path) - 1);
        for (i = 0; i < BBT_INVENTORY_MAX; i++)
                devs[i] = (struct bbt_dev){ .kind = BBT_KIND_OTHER, .subsystem = "usb", .syspath = path };
        bbt_msg_init(&m, BBT_CH_INVENTORY);
        m.body.inventory.devices = devs;
        m.body.inventory.n_devices = BBT_INVENTORY_MAX;
        ASSERT_EQ(bbt_msg_encode(&m, &json, &len, &err), -EMSGSIZE);
        ASSERT(json == NULL);
        m.body.inventory.n_devices = 40;
        ASSERT_OK(bbt_msg_encode(&m, &json, &len, &err));
        free(json);
}

TEST(names)
{
        ASSERT_STR_EQ(bbt_usage_state_name(BBT_USAGE_ACTIVE), "active");
        ASSERT(bbt_usage_state_name(BBT_USAGE__COUNT) == NULL);
        ASSERT_STR_EQ(bbt_periph_kind_name(BBT_KIND_AUDIO_IN), "audio_in");
        ASSERT(bbt_periph_kind_name(BBT_KIND__COUNT) == NULL);
}
