/* Sample protocol messages with their golden encodings, for round-trip and schema checks. */
#include "samples.h"

#include <cjson/cJSON.h>
#include <string.h>

static struct bbt_sample samples[32];
static struct bbt_dev inventory_devices[2];
static size_t n_samples;

static struct bbt_msg *add(const char *name, enum bbt_channel ch, const char *json)
{
        struct bbt_sample *s = &samples[n_samples++];

        s->name = name;
        s->json = json;
        bbt_msg_init(&s->msg, ch);
        s->msg.seq = 42;
        s->msg.ts = 1700000000123;
        s->msg.boot = 7;
        return &s->msg;
}

#define ENV "\"v\":1,\"seq\":42,\"ts\":1700000000123,\"boot\":7"

static void fill(void)
{
        struct bbt_msg *m;
        struct bbt_hb *hb;

        m = add("state-birth", BBT_CH_STATE,
                "{" ENV ",\"online\":true,\"version\":\"0.1.0\",\"hostname\":\"r101-ops\","
                "\"os\":\"Debian GNU/Linux 12 (bookworm)\",\"machine_id\":\"4f1c9a5e2b7d4c1e8a6f3b2d9c0e1f2a\"}");
        m->body.state.online = true;
        m->body.state.version = "0.1.0";
        m->body.state.hostname = "r101-ops";
        m->body.state.os = "Debian GNU/Linux 12 (bookworm)";
        m->body.state.machine_id = "4f1c9a5e2b7d4c1e8a6f3b2d9c0e1f2a";

        m = add("state-birth-after-crash", BBT_CH_STATE,
                "{" ENV ",\"online\":true,\"version\":\"0.2.0\",\"hostname\":\"r101-ops\","
                "\"os\":\"Linux\",\"machine_id\":\"4f1c9a5e\",\"will_seq\":3000,"
                "\"skipped_from\":1043,\"skipped_to\":2999}");
        m->body.state.online = true;
        m->body.state.version = "0.2.0";
        m->body.state.hostname = "r101-ops";
        m->body.state.os = "Linux";
        m->body.state.machine_id = "4f1c9a5e";
        m->body.state.has_will_seq = true;
        m->body.state.will_seq = 3000;
        m->body.state.has_skipped_from = m->body.state.has_skipped_to = true;
        m->body.state.skipped_from = 1043;
        m->body.state.skipped_to = 2999;

        m = add("state-will", BBT_CH_STATE, "{" ENV ",\"online\":false,\"reason\":\"lost\"}");
        m->body.state.reason = BBT_REASON_LOST;

        m = add("state-shutdown", BBT_CH_STATE, "{" ENV ",\"online\":false,\"reason\":\"shutdown\"}");
        m->body.state.reason = BBT_REASON_SHUTDOWN;

        m = add("hb-minimal", BBT_CH_HB,
                "{" ENV ",\"uptime\":3600,\"load\":[0.5,0.25,0],\"cpu\":1.5,"
                "\"mem\":{\"total\":4294967296,\"available\":2147483648},"
                "\"disk\":{\"root\":{\"total\":64000000000,\"free\":32000000000}},"
                "\"net\":[],\"state\":\"standby\",\"spool\":{\"depth\":0,\"dropped\":0},\"clock_synced\":false}");
        hb = &m->body.hb;
        hb->uptime = 3600;
        hb->load[0] = 0.5, hb->load[1] = 0.25, hb->load[2] = 0;
        hb->cpu = 1.5;
        hb->mem_total = 4294967296, hb->mem_available = 2147483648;
        hb->disk_root.total = 64000000000, hb->disk_root.free = 32000000000;
        hb->state = BBT_USAGE_STANDBY;

        m = add("hb-full", BBT_CH_HB,
                "{" ENV ",\"uptime\":9007199254740991,\"load\":[1,2,3],\"cpu\":100,"
                "\"mem\":{\"total\":8,\"available\":0},"
                "\"disk\":{\"root\":{\"total\":10,\"free\":5},\"spool\":{\"total\":20,\"free\":1}},"
                "\"temp\":{\"max\":71.5,\"source\":\"hwmon0/temp1 (coretemp)\"},"
                "\"net\":[{\"ifname\":\"eth0\",\"up\":true},{\"ifname\":\"wlan0\",\"up\":false}],"
                "\"state\":\"active\","
                "\"projector\":{\"reachable\":true,\"power\":\"on\",\"input\":\"31\",\"lamp_hours\":1234,"
                "\"erst\":{\"fan\":\"ok\",\"lamp\":\"warning\",\"temp\":\"ok\",\"cover\":\"ok\",\"filter\":\"error\",\"other\":\"ok\"}},"
                "\"spool\":{\"depth\":12,\"dropped\":3},\"clock_synced\":true}");
        hb = &m->body.hb;
        hb->uptime = 9007199254740991LL;
        hb->load[0] = 1, hb->load[1] = 2, hb->load[2] = 3;
        hb->cpu = 100;
        hb->mem_total = 8;
        hb->disk_root.total = 10, hb->disk_root.free = 5;
        hb->has_disk_spool = true;
        hb->disk_spool.total = 20, hb->disk_spool.free = 1;
        hb->has_temp = true, hb->temp_max = 71.5, hb->temp_source = "hwmon0/temp1 (coretemp)";
        hb->n_net = 2;
        hb->net[0].ifname = "eth0", hb->net[0].up = true;
        hb->net[1].ifname = "wlan0";
        hb->state = BBT_USAGE_ACTIVE;
        hb->has_projector = true;
        hb->projector.reachable = true;
        hb->projector.has_power = true, hb->projector.power = BBT_POWER_ON;
        hb->projector.input = "31";
        hb->projector.has_lamp_hours = true, hb->projector.lamp_hours = 1234;
        hb->projector.has_erst = true;
        hb->projector.erst[BBT_ERST_LAMP] = BBT_ERST_WARNING;
        hb->projector.erst[BBT_ERST_FILTER] = BBT_ERST_ERROR;
        hb->spool_depth = 12, hb->spool_dropped = 3;
        hb->clock_synced = true;

        m = add("usage-active", BBT_CH_USAGE,
                "{" ENV ",\"start\":1700000000000,\"end\":1700000300000,\"state\":\"active\","
                "\"touch\":512,\"pen\":3,\"mouse\":0,\"key\":9,\"interactive_ms\":240000,\"audio_ms\":0}");
        m->body.usage = (struct bbt_usage){ .start = 1700000000000, .end = 1700000300000,
                                            .state = BBT_USAGE_ACTIVE, .touch = 512, .pen = 3,
                                            .key = 9, .interactive_ms = 240000 };

        m = add("usage-empty", BBT_CH_USAGE,
                "{" ENV ",\"start\":5,\"end\":5,\"state\":\"idle\",\"touch\":0,\"pen\":0,\"mouse\":0,\"key\":0,"
                "\"interactive_ms\":0,\"audio_ms\":0}");
        m->body.usage = (struct bbt_usage){ .start = 5, .end = 5, .state = BBT_USAGE_IDLE };

        m = add("periph-add", BBT_CH_PERIPH,
                "{" ENV ",\"action\":\"add\",\"dev\":{\"kind\":\"camera\",\"subsystem\":\"video4linux\","
                "\"syspath\":\"/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/video4linux/video0\","
                "\"bus\":\"usb\",\"vendor_id\":\"046d\",\"model_id\":\"0825\",\"vendor\":\"Logitech\","
                "\"model\":\"展台 C270\",\"serial\":\"A1B2C3\"}}");
        m->body.periph.action = BBT_PERIPH_ADD;
        m->body.periph.dev = (struct bbt_dev){
                .kind = BBT_KIND_CAMERA, .subsystem = "video4linux",
                .syspath = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/video4linux/video0",
                .bus = "usb", .vendor_id = "046d", .model_id = "0825", .vendor = "Logitech",
                .model = "展台 C270", .serial = "A1B2C3" };

        m = add("periph-remove", BBT_CH_PERIPH,
                "{" ENV ",\"action\":\"remove\",\"dev\":{\"kind\":\"display\",\"subsystem\":\"drm\","
                "\"syspath\":\"/sys/class/drm/card0-HDMI-A-1\"}}");
        m->body.periph.action = BBT_PERIPH_REMOVE;
        m->body.periph.dev = (struct bbt_dev){ .kind = BBT_KIND_DISPLAY, .subsystem = "drm",
                                               .syspath = "/sys/class/drm/card0-HDMI-A-1" };

        m = add("inventory-two", BBT_CH_INVENTORY,
                "{" ENV ",\"devices\":[{\"kind\":\"touch\",\"subsystem\":\"input\",\"syspath\":\"/sys/devices/virtual/input/input5\"},"
                "{\"kind\":\"storage\",\"subsystem\":\"block\",\"syspath\":\"/sys/block/sdb\",\"bus\":\"usb\",\"serial\":\"\"}]}");
        inventory_devices[0] = (struct bbt_dev){ .kind = BBT_KIND_TOUCH, .subsystem = "input",
                                                 .syspath = "/sys/devices/virtual/input/input5" };
        inventory_devices[1] = (struct bbt_dev){ .kind = BBT_KIND_STORAGE, .subsystem = "block",
                                                 .syspath = "/sys/block/sdb", .bus = "usb", .serial = "" };
        m->body.inventory.n_devices = 2;
        m->body.inventory.devices = inventory_devices;

        m = add("inventory-empty", BBT_CH_INVENTORY, "{" ENV ",\"devices\":[]}");

        m = add("inventory-net", BBT_CH_INVENTORY,
                "{" ENV ",\"devices\":[],\"net\":{\"ifname\":\"enp3s0\",\"mac\":\"00:1a:2b:3c:4d:5e\","
                "\"ipv4\":\"192.168.10.23\",\"prefix\":24}}");
        m->body.inventory.has_net = true;
        m->body.inventory.net = (struct bbt_net_addr){ .ifname = "enp3s0", .mac = "00:1a:2b:3c:4d:5e",
                                                       .ipv4 = "192.168.10.23", .has_prefix = true, .prefix = 24 };

        m = add("alert-event", BBT_CH_ALERT,
                "{" ENV ",\"code\":\"power_postponed\",\"severity\":\"warning\",\"state\":\"raised\","
                "\"detail\":\"定时关机: in use, postponed 600 s\",\"event\":true}");
        m->body.alert = (struct bbt_alert){ .code = "power_postponed", .severity = BBT_SEVERITY_WARNING,
                                            .state = BBT_ALERT_RAISED, .detail = "定时关机: in use, postponed 600 s",
                                            .has_event = true, .event = true };

        m = add("alert-raised", BBT_CH_ALERT,
                "{" ENV ",\"code\":\"periph_missing\",\"severity\":\"warning\",\"state\":\"raised\","
                "\"detail\":\"expected camera not present (实物展台)\"}");
        m->body.alert = (struct bbt_alert){ .code = "periph_missing", .severity = BBT_SEVERITY_WARNING,
                                            .state = BBT_ALERT_RAISED,
                                            .detail = "expected camera not present (实物展台)" };

        m = add("alert-cleared", BBT_CH_ALERT,
                "{" ENV ",\"code\":\"overheat\",\"severity\":\"error\",\"state\":\"cleared\"}");
        m->body.alert = (struct bbt_alert){ .code = "overheat", .severity = BBT_SEVERITY_ERROR,
                                            .state = BBT_ALERT_CLEARED };

        m = add("cmd-resend", BBT_CH_CMD,
                "{" ENV ",\"id\":\"agg-1-77\",\"op\":\"resend\",\"args\":{\"from\":100,\"to\":250}}");
        m->body.cmd.id = "agg-1-77";
        m->body.cmd.op = "resend";
        m->body.cmd.args.resend.from = 100;
        m->body.cmd.args.resend.to = 250;

        m = add("cmd-wake", BBT_CH_CMD,
                "{" ENV ",\"id\":\"w1\",\"op\":\"wake\",\"args\":{\"mac\":\"00:1A:2b:3c:4d:5e\"}}");
        m->body.cmd.id = "w1";
        m->body.cmd.op = "wake";
        m->body.cmd.args.wake.mac = "00:1A:2b:3c:4d:5e";

        m = add("cmd-power-schedule", BBT_CH_CMD,
                "{" ENV ",\"id\":\"ps-1\",\"op\":\"power_schedule\",\"expires\":1700000600000,"
                "\"args\":{\"rev\":3,\"off\":[\"2026-12-07T18:00:00+08:00\",\"2026-12-08T12:30:00+08:00\"],"
                "\"postpone_step\":600,\"postpone_max\":3600,\"at_bound\":\"skip\"}}");
        m->body.cmd.id = "ps-1";
        m->body.cmd.op = "power_schedule";
        m->body.cmd.has_expires = true;
        m->body.cmd.expires = 1700000600000;
        m->body.cmd.args_json = cJSON_Parse("{\"rev\":3,\"off\":[\"2026-12-07T18:00:00+08:00\","
                                            "\"2026-12-08T12:30:00+08:00\"],\"postpone_step\":600,"
                                            "\"postpone_max\":3600,\"at_bound\":\"skip\"}");

        m = add("reply-error", BBT_CH_CMD_REPLY,
                "{" ENV ",\"id\":\"agg-1-77\",\"ok\":false,\"error\":\"seq 100..120 no longer retained\"}");
        m->body.reply.id = "agg-1-77";
        m->body.reply.error = "seq 100..120 no longer retained";

        /* Free-form JSON stays reachable from these statics for the whole run. */
        m = add("reply-result", BBT_CH_CMD_REPLY,
                "{" ENV ",\"id\":\"inv-9\",\"ok\":true,\"result\":{\"sent\":151,\"note\":\"按序重发\"}}");
        m->body.reply.id = "inv-9";
        m->body.reply.ok = true;
        m->body.reply.result_json = cJSON_Parse("{\"sent\":151,\"note\":\"按序重发\"}");

        m = add("cmd-set", BBT_CH_CMD,
                "{" ENV ",\"id\":\"s-1\",\"op\":\"set\",\"args\":{\"heartbeat_interval\":\"30s\",\"debug\":true}}");
        m->body.cmd.id = "s-1";
        m->body.cmd.op = "set";
        m->body.cmd.args_json = cJSON_Parse("{\"heartbeat_interval\":\"30s\",\"debug\":true}");

        m = add("cmd-inventory", BBT_CH_CMD, "{" ENV ",\"id\":\"i\",\"op\":\"inventory\"}");
        m->body.cmd.id = "i";
        m->body.cmd.op = "inventory";
}

const struct bbt_sample *bbt_samples(size_t *ret_n)
{
        if (!n_samples)
                fill();
        *ret_n = n_samples;
        return samples;
}
