/* The bodies bbt-notify posts: WeCom and DingTalk robot markdown, and the generic JSON (docs/notifications.md). */
#include "notify.h"
#include "bbt/base.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dates.h"
#include "document.h"
#include "reports.h"

/* The robots take a markdown text of 4096 bytes (WeCom) at most: lines past
 * LINES_MAX are summed up in one line, and the text stops short of TEXT_MAX. */
#define LINES_MAX 20
#define TEXT_MAX 3800

struct text {
        char buf[TEXT_MAX + 200];
        size_t len;
        bool full;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (t->full)
                return;
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
        va_end(ap);
        if (n < 0 || t->len + (size_t)n > TEXT_MAX) {
                t->buf[t->len] = '\0'; /* the line that does not fit is left out whole */
                t->full = true;
                return;
        }
        t->len += (size_t)n;
}

static const char *severity_name(enum bbt_severity s, bool zh)
{
        if (s == BBT_SEVERITY_ERROR)
                return zh ? "错误" : "error";
        return zh ? "警告" : "warning";
}

static const char *severity_code(enum bbt_severity s)
{
        return s == BBT_SEVERITY_ERROR ? "error" : "warning";
}

static const char *or_dash(const char *s)
{
        return s && *s ? s : NULL;
}

/* "第一小学 三年级(1)班 (r101)" or "5101070001 r101" without names. */
static void where(struct text *t, const char *school_name, const char *school, const char *room, const char *terminal)
{
        add(t, "%s %s%s%s%s", or_dash(school_name) ? school_name : school, or_dash(room) ? room : "",
            or_dash(room) ? " (" : "", terminal, or_dash(room) ? ")" : "");
}

static void fault_line(struct text *t, const struct bbt_notify_fault *f, bool zh, int offset_min, bool with_school)
{
        char when[32];

        bbt_time_format(f->raised_ms, offset_min, false, when, sizeof(when));
        add(t, "- ");
        if (with_school)
                where(t, f->school_name, f->school, f->room, f->terminal);
        else
                add(t, "%s%s%s%s", or_dash(f->room) ? f->room : "", or_dash(f->room) ? " (" : "", f->terminal,
                    or_dash(f->room) ? ")" : "");
        if (f->raised_ms > 0)
                add(t, zh ? "：%s（%s），自 %s 起\n" : ": %s (%s) since %s\n", bbt_report_fault_name(f->code, zh),
                    severity_name(f->severity, zh), when);
        else /* a silent spell of a terminal that never reported: since it was registered */
                add(t, zh ? "：%s（%s）\n" : ": %s (%s)\n", bbt_report_fault_name(f->code, zh),
                    severity_name(f->severity, zh));
}

static void faults_text(struct text *t, const struct bbt_notify_fault *f, size_t n, bool zh, int offset_min,
                        const char **title)
{
        size_t schools = 0;

        for (size_t i = 0; i < n; i++) {
                size_t j;

                for (j = 0; j < i; j++)
                        if (strcmp(f[j].county, f[i].county) == 0 && strcmp(f[j].school, f[i].school) == 0)
                                break;
                schools += j == i;
        }
        *title = zh ? "班班通新故障" : "bbt: new faults";
        if (zh)
                add(t, "### 班班通新故障 %zu 条（%zu 所学校）\n", n, schools);
        else
                add(t, "### bbt: %zu new fault%s (%zu school%s)\n", n, n == 1 ? "" : "s", schools,
                    schools == 1 ? "" : "s");
        for (size_t i = 0; i < n && i < LINES_MAX; i++)
                fault_line(t, &f[i], zh, offset_min, true);
        if (n > LINES_MAX)
                add(t, zh ? "- ……另有 %zu 条，见 bbt-report faults\n" : "- ... %zu more: see bbt-report faults\n",
                    n - LINES_MAX);
}

static void digest_text(struct text *t, const struct bbt_notify_digest *d, bool zh, int offset_min,
                        const char **title)
{
        char day[16], when[32];
        const char *name = or_dash(d->school_name) ? d->school_name : d->school;

        bbt_day_format(d->day, day, sizeof(day));
        *title = zh ? "班班通日报" : "bbt daily digest";
        add(t, zh ? "### 班班通日报 · %s · %s\n" : "### bbt daily digest: %s, %s\n", name, day);
        if (zh)
                add(t, "**闲置终端 %zu 台**（截至 %s）\n", d->n_idle, (bbt_day_format(d->idle_to, when, sizeof(when)), when));
        else
                add(t, "**Idle terminals: %zu** (up to %s)\n", d->n_idle,
                    (bbt_day_format(d->idle_to, when, sizeof(when)), when));
        for (size_t i = 0; i < d->n_idle && i < LINES_MAX; i++) {
                const struct bbt_notify_idle *x = &d->idle[i];

                add(t, "- %s%s%s%s", or_dash(x->room) ? x->room : "", or_dash(x->room) ? " (" : "", x->terminal,
                    or_dash(x->room) ? ")" : "");
                if (x->last_active_ms > 0) {
                        bbt_time_format(x->last_active_ms, offset_min, false, when, sizeof(when));
                        add(t, zh ? "：%s，最后使用 %s\n" : ": %s, last used %s\n", x->reason_label, when);
                } else {
                        add(t, zh ? "：%s\n" : ": %s\n", x->reason_label);
                }
        }
        if (d->n_idle > LINES_MAX)
                add(t, zh ? "- ……另有 %zu 台\n" : "- ... %zu more\n", d->n_idle - LINES_MAX);
        if (zh)
                add(t, "**昨夜未关机 %zu 台**（%s 夜间）\n", d->n_left_on,
                    (bbt_day_format(d->day - 1, when, sizeof(when)), when));
        else
                add(t, "**Left on last night: %zu** (the night of %s)\n", d->n_left_on,
                    (bbt_day_format(d->day - 1, when, sizeof(when)), when));
        for (size_t i = 0; i < d->n_left_on && i < LINES_MAX; i++) {
                const struct bbt_notify_left_on *x = &d->left_on[i];

                add(t, "- %s%s%s%s\n", or_dash(x->room) ? x->room : "", or_dash(x->room) ? " (" : "", x->terminal,
                    or_dash(x->room) ? ")" : "");
        }
        if (d->n_left_on > LINES_MAX)
                add(t, zh ? "- ……另有 %zu 台\n" : "- ... %zu more\n", d->n_left_on - LINES_MAX);
        add(t, zh ? "**未消除故障 %zu 条**\n" : "**Open faults: %zu**\n", d->n_open);
        for (size_t i = 0; i < d->n_open && i < LINES_MAX; i++)
                fault_line(t, &d->open[i], zh, offset_min, false);
        if (d->n_open > LINES_MAX)
                add(t, zh ? "- ……另有 %zu 条\n" : "- ... %zu more\n", d->n_open - LINES_MAX);
}

/* The robot formats: a markdown message. */
static char *robot_body(const struct bbt_notify_target *tg, const char *title, const char *text)
{
        cJSON *root = cJSON_CreateObject(), *md = cJSON_CreateObject();
        char *s = NULL;

        if (!root || !md)
                goto out;
        cJSON_AddStringToObject(root, "msgtype", "markdown");
        if (tg->format == BBT_NOTIFY_DINGTALK)
                cJSON_AddStringToObject(md, "title", title);
        cJSON_AddStringToObject(md, tg->format == BBT_NOTIFY_DINGTALK ? "text" : "content", text);
        cJSON_AddItemToObject(root, "markdown", md);
        md = NULL;
        s = cJSON_PrintUnformatted(root);
out:
        cJSON_Delete(md);
        cJSON_Delete(root);
        return s;
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
        if (or_dash(v))
                cJSON_AddStringToObject(o, k, v);
        else
                cJSON_AddNullToObject(o, k);
}

static void add_time(cJSON *o, const char *k, int64_t ms, int offset_min)
{
        char buf[40];

        if (ms > 0)
                cJSON_AddStringToObject(o, k, bbt_time_format(ms, offset_min, true, buf, sizeof(buf)));
        else
                cJSON_AddNullToObject(o, k);
}

static cJSON *fault_json(const struct bbt_notify_fault *f, bool zh, int offset_min, bool with_key)
{
        cJSON *o = cJSON_CreateObject();

        if (!o)
                return NULL;
        if (with_key)
                cJSON_AddStringToObject(o, "key", f->key);
        cJSON_AddStringToObject(o, "county", f->county);
        cJSON_AddStringToObject(o, "school", f->school);
        add_str_or_null(o, "school_name", f->school_name);
        add_str_or_null(o, "township", f->township);
        cJSON_AddStringToObject(o, "terminal", f->terminal);
        add_str_or_null(o, "room", f->room);
        cJSON_AddStringToObject(o, "fault", f->code);
        cJSON_AddStringToObject(o, "fault_label", bbt_report_fault_name(f->code, zh));
        cJSON_AddStringToObject(o, "severity", severity_code(f->severity));
        cJSON_AddStringToObject(o, "source", f->source);
        add_time(o, "since", f->raised_ms, offset_min);
        add_str_or_null(o, "detail", f->detail);
        return o;
}

/* The generic format's envelope: what every body has. */
static cJSON *envelope(const struct bbt_notify_target *tg, const char *event, const char *id, int64_t now_ms,
                       int offset_min, const char *text)
{
        cJSON *root = cJSON_CreateObject();

        if (!root)
                return NULL;
        cJSON_AddStringToObject(root, "schema", "bbt-notify/1");
        cJSON_AddStringToObject(root, "event", event);
        cJSON_AddStringToObject(root, "id", id);
        cJSON_AddStringToObject(root, "target", tg->name);
        add_time(root, "sent", now_ms, offset_min);
        cJSON_AddStringToObject(root, "lang", tg->chinese ? "zh" : "en");
        cJSON_AddStringToObject(root, "text", text);
        return root;
}

static char *print_free(cJSON *root)
{
        char *s = root ? cJSON_PrintUnformatted(root) : NULL;

        cJSON_Delete(root);
        return s;
}

/* FNV-1a over the keys: the id of a batch (the same faults, the same id). */
static void batch_id(const struct bbt_notify_fault *f, size_t n, char *buf, size_t size)
{
        uint64_t h = BBT_FNV1A_BASIS;

        for (size_t i = 0; i < n; i++)
                h = bbt_fnv1a(h, f[i].key, strlen(f[i].key) + 1);
        snprintf(buf, size, "faults/%016llx", (unsigned long long)h);
}

char *bbt_notify_body_faults(const struct bbt_notify_target *tg, const struct bbt_notify_fault *f, size_t n,
                             int offset_min, int64_t now_ms)
{
        struct text t = { .len = 0 };
        const char *title;
        cJSON *root, *list;
        char id[40];

        faults_text(&t, f, n, tg->chinese, offset_min, &title);
        if (tg->format != BBT_NOTIFY_JSON)
                return robot_body(tg, title, t.buf);
        batch_id(f, n, id, sizeof(id));
        root = envelope(tg, "faults", id, now_ms, offset_min, t.buf);
        list = root ? cJSON_AddArrayToObject(root, "faults") : NULL;
        if (!list) {
                cJSON_Delete(root);
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                cJSON_AddItemToArray(list, fault_json(&f[i], tg->chinese, offset_min, true));
        return print_free(root);
}

void bbt_notify_digest_key(const char *county, const char *school, int32_t day, char *buf, size_t size)
{
        char d[16];

        snprintf(buf, size, "digest/%s/%s/%s", county, school, bbt_day_format(day, d, sizeof(d)));
}

char *bbt_notify_body_digest(const struct bbt_notify_target *tg, const struct bbt_notify_digest *d, int offset_min,
                             int64_t now_ms)
{
        struct text t = { .len = 0 };
        const char *title;
        cJSON *root, *school, *idle, *left, *open;
        char id[160], day[16];

        digest_text(&t, d, tg->chinese, offset_min, &title);
        if (tg->format != BBT_NOTIFY_JSON)
                return robot_body(tg, title, t.buf);
        bbt_notify_digest_key(d->county, d->school, d->day, id, sizeof(id));
        root = envelope(tg, "digest", id, now_ms, offset_min, t.buf);
        if (!root)
                return NULL;
        cJSON_AddStringToObject(root, "date", bbt_day_format(d->day, day, sizeof(day)));
        school = cJSON_AddObjectToObject(root, "school");
        if (school) {
                cJSON_AddStringToObject(school, "county", d->county);
                cJSON_AddStringToObject(school, "code", d->school);
                add_str_or_null(school, "name", d->school_name);
                add_str_or_null(school, "township", d->township);
        }
        cJSON_AddStringToObject(root, "idle_to", bbt_day_format(d->idle_to, day, sizeof(day)));
        idle = cJSON_AddArrayToObject(root, "idle");
        for (size_t i = 0; idle && i < d->n_idle; i++) {
                cJSON *o = cJSON_CreateObject();

                if (!o)
                        break;
                cJSON_AddStringToObject(o, "terminal", d->idle[i].terminal);
                add_str_or_null(o, "room", d->idle[i].room);
                cJSON_AddNumberToObject(o, "used_days", (double)d->idle[i].used_days);
                add_time(o, "last_active", d->idle[i].last_active_ms, offset_min);
                cJSON_AddStringToObject(o, "reason", d->idle[i].reason);
                cJSON_AddStringToObject(o, "reason_label", d->idle[i].reason_label);
                cJSON_AddItemToArray(idle, o);
        }
        cJSON_AddStringToObject(root, "night_of", bbt_day_format(d->day - 1, day, sizeof(day)));
        left = cJSON_AddArrayToObject(root, "left_on_last_night");
        for (size_t i = 0; left && i < d->n_left_on; i++) {
                cJSON *o = cJSON_CreateObject();

                if (!o)
                        break;
                cJSON_AddStringToObject(o, "terminal", d->left_on[i].terminal);
                add_str_or_null(o, "room", d->left_on[i].room);
                cJSON_AddItemToArray(left, o);
        }
        open = cJSON_AddArrayToObject(root, "open_faults");
        for (size_t i = 0; open && i < d->n_open; i++)
                cJSON_AddItemToArray(open, fault_json(&d->open[i], tg->chinese, offset_min, false));
        return print_free(root);
}

int bbt_notify_dingtalk_sign(const char *secret, int64_t timestamp_ms, char *buf, size_t size)
{
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        char msg[640];
        int n = snprintf(msg, sizeof(msg), "%lld\n%s", (long long)timestamp_ms, secret);

        if (n < 0 || (size_t)n >= sizeof(msg) || size < 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1)
                return -EIO;
        if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, (size_t)n, mac, &mac_len))
                return -EIO;
        explicit_bzero(msg, sizeof(msg));
        EVP_EncodeBlock((unsigned char *)buf, mac, (int)mac_len);
        return 0;
}
