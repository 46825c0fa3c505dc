/* bbt-web's data endpoints: every bbt-report report (JSON, CSV, XLSX, text), a terminal's day, the live status. */
#include "web_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbt/log.h"
#include "bbt/protocol.h"
#include "dates.h"

/* ---- the list of reports ---- */

enum MHD_Result web_h_reports(struct web_call *k)
{
        static const char *const names[] = { NULL };
        const char *values[1];
        const struct bbt_report_kind *kind;
        const struct bbt_renderer *f;
        enum MHD_Result ret;
        cJSON *j, *a, *fa;

        if (!web_params(k, names, values, &ret))
                return ret;
        j = cJSON_CreateObject();
        a = cJSON_AddArrayToObject(j, "reports");
        for (size_t i = 0; (kind = bbt_report_kind_at(i)); i++) {
                cJSON *r = cJSON_CreateObject();
                char path[64];

                snprintf(path, sizeof(path), "/api/v1/reports/%s", kind->name);
                cJSON_AddStringToObject(r, "name", kind->name);
                cJSON_AddStringToObject(r, "title_zh", kind->title_zh);
                cJSON_AddStringToObject(r, "title_en", kind->title_en);
                cJSON_AddStringToObject(r, "path", path);
                cJSON_AddBoolToObject(r, "needs_school", (kind->needs & BBT_NEEDS_SCHOOL) != 0);
                cJSON_AddBoolToObject(r, "one_week", (kind->needs & BBT_NEEDS_WEEK) != 0);
                cJSON_AddItemToArray(a, r);
        }
        fa = cJSON_AddArrayToObject(j, "formats");
        for (size_t i = 0; (f = bbt_renderer_at(i)); i++) {
                cJSON *r = cJSON_CreateObject();

                cJSON_AddStringToObject(r, "name", f->name);
                cJSON_AddStringToObject(r, "media_type", f->media_type);
                cJSON_AddItemToArray(fa, r);
        }
        return web_send_json(k, 200, j);
}

/* ---- one report ---- */

/* The file name of a download: bbt-KIND[-SCHOOL]-FROM[_TO].EXT. */
static void download_name(const struct bbt_report_options *o, const char *ext, char *buf, size_t size)
{
        char from[16], to[16];

        bbt_day_format(o->from, from, sizeof(from));
        bbt_day_format(o->to, to, sizeof(to));
        snprintf(buf, size, "attachment; filename=\"bbt-%s%s%s-%s_%s.%s\"", o->kind->name, o->school ? "-" : "",
                 o->school ? o->school : "", from, to, ext);
}

/* DOC written by a file-only renderer (XLSX) into a private directory, then
 * sent from the open file (unlinked: nothing is left behind). */
static enum MHD_Result send_file_format(struct web_call *k, const struct bbt_report_options *o,
                                        const struct bbt_document *doc, const char *disposition)
{
        const char *base = getenv("RUNTIME_DIRECTORY") ? getenv("RUNTIME_DIRECTORY")
                           : getenv("TMPDIR")          ? getenv("TMPDIR")
                                                       : "/tmp";
        char dir[512], path[600], err[512];
        struct stat st;
        int fd, r;

        snprintf(dir, sizeof(dir), "%s/bbt-web-XXXXXX", base);
        if (!mkdtemp(dir)) /* mode 0700 */
                return web_error(k, 500, "internal", "cannot make a temporary directory in %s: %s", base,
                                 strerror(errno));
        snprintf(path, sizeof(path), "%s/report.%s", dir, o->format->name);
        r = bbt_document_render_file(doc, o->format, o->chinese, path, err, sizeof(err));
        fd = r == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        unlink(path);
        rmdir(dir);
        if (r < 0 || fd < 0 || fstat(fd, &st) < 0) {
                if (fd >= 0)
                        close(fd);
                return web_error(k, 500, "internal", "writing the %s file failed: %s", o->format->name,
                                 r < 0 ? err : strerror(errno));
        }
        return web_send_fd(k, o->format->media_type, fd, (uint64_t)st.st_size, disposition, false);
}

/* The document of O, or false after answering K (*RET). */
static bool make_report(struct web_call *k, const struct bbt_report_options *o, struct bbt_document **doc,
                        enum MHD_Result *ret)
{
        struct bbt_store *store;
        char err[1024];
        int r;

        store = web_store_get(k->w, err, sizeof(err));
        if (!store) {
                *ret = web_error(k, 503, "store_unavailable", "the store cannot be read now (has bbt-aggregator run?)");
                return false;
        }
        r = bbt_report_build(o, store, k->world->reg, k->world->cal, &k->w->metrics, doc, err, sizeof(err));
        web_store_put(k->w, store);
        if (r == -EINVAL) {
                *ret = web_bad_param(k, o->school ? "from" : "school", "%s", err);
                return false;
        }
        if (r < 0) {
                bbt_log_error("report %s: %s", o->kind->name, err);
                *ret = web_error(k, 500, "store", "the %s report could not be made (the server's log says why)",
                                 o->kind->name);
                return false;
        }
        return true;
}

/* web_make_fn: the report of the options U, rendered. */
static bool make_rendered(struct web_call *k, void *u, char **body, size_t *len, const char **type,
                          enum MHD_Result *ret)
{
        const struct bbt_report_options *o = u;
        struct bbt_document *doc = NULL;
        char *buf = NULL;
        size_t n = 0;
        FILE *f;
        int r;

        if (!make_report(k, o, &doc, ret))
                return false;
        f = open_memstream(&buf, &n);
        r = f ? bbt_document_render(doc, o->format, o->chinese, f) : -ENOMEM;
        if (f && fclose(f) != 0 && r == 0)
                r = -EIO;
        bbt_document_free(doc);
        if (r < 0) {
                free(buf);
                *ret = web_error(k, 500, "internal", "rendering the report failed: %s", strerror(-r));
                return false;
        }
        *body = buf;
        *len = n;
        *type = o->format->media_type;
        return true;
}

enum MHD_Result web_h_report(struct web_call *k)
{
        static const char *const names[] = { "county", "school", "from", "to", "week", "lang", "format", NULL };
        enum { P_COUNTY, P_SCHOOL, P_FROM, P_TO, P_WEEK, P_LANG, P_FORMAT };
        const char *v[8], *bad = NULL;
        struct bbt_report_options o = { .chinese = true, .format = bbt_renderer_find("json") };
        struct web_scope_filter filter;
        struct bbt_document *doc = NULL;
        enum MHD_Result ret;
        char err[1024], disposition[256] = "", what[512] = "";

        o.kind = bbt_report_kind_find(k->arg[0]);
        if (!o.kind)
                return web_error(k, 404, "not_found", "no report %.64s (GET /api/v1/reports lists them)",
                                 k->arg[0]);
        if (!web_params(k, names, v, &ret))
                return ret;
        if (v[P_COUNTY] && !bbt_county_valid(v[P_COUNTY]))
                return web_bad_param(k, "county", "county: expected 6 digits");
        if (v[P_SCHOOL] && !bbt_id_valid(v[P_SCHOOL]))
                return web_bad_param(k, "school", "school: expected 1 to 32 of A-Z a-z 0-9 _ -");
        if (v[P_LANG] && strcmp(v[P_LANG], "zh") != 0 && strcmp(v[P_LANG], "en") != 0)
                return web_bad_param(k, "lang", "lang: expected zh or en");
        if (v[P_FORMAT] && !(o.format = bbt_renderer_find(v[P_FORMAT]))) {
                char known[128] = "";
                const struct bbt_renderer *f;

                for (size_t i = 0; (f = bbt_renderer_at(i)); i++)
                        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
                                 f->name);
                return web_bad_param(k, "format", "format: expected one of %s", known);
        }
        o.chinese = !v[P_LANG] || strcmp(v[P_LANG], "zh") == 0;
        o.county = v[P_COUNTY];
        o.school = v[P_SCHOOL];
        /* The scope: asked for what it may not see, 403; asked for
         * everything, what it may see (the report's own filter, so no
         * other school is in any row or total). */
        if (strcmp(o.kind->name, "loss") == 0 && !web_scope_everything(k))
                return web_error(k, 403, "forbidden",
                                 "the loss report counts store-wide: for a county administrator of every county");
        if (o.county && *k->s.scope.county && strcmp(o.county, k->s.scope.county) != 0)
                return web_error(k, 403, "forbidden", "county %s is outside your scope", o.county);
        if (o.school && !web_school_visible(k, o.county, o.school))
                return web_error(k, 403, "forbidden", "school %s is outside your scope", o.school);
        web_scope_options(k, &o, &filter);
        o.now_ms = k->now_ms;
        o.store_label = k->w->cfg->store_path;
        if (bbt_report_options_range(&o, v[P_FROM], v[P_TO], v[P_WEEK], bbt_day_of_ms(o.now_ms, k->w->metrics.offset_min),
                                     "", &bad, err, sizeof(err)) < 0)
                return web_bad_param(k, bad, "%s", err);

        if (strcmp(o.format->name, "json") != 0) {
                const char *ext = strcmp(o.format->name, "table") == 0 ? "txt" : o.format->name;
                char from[16], to[16];

                download_name(&o, ext, disposition, sizeof(disposition));
                snprintf(what, sizeof(what), "report=%s format=%s lang=%s county=%s school=%s from=%s to=%s",
                         o.kind->name, o.format->name, o.chinese ? "zh" : "en", o.county ? o.county : "*",
                         o.school ? o.school : "*", bbt_day_format(o.from, from, sizeof(from)),
                         bbt_day_format(o.to, to, sizeof(to)));
        }
        if (!o.format->render) {
                /* A file format (XLSX): made each time, not cached. */
                if (!make_report(k, &o, &doc, &ret))
                        return ret;
                web_audit_export(k, what);
                ret = send_file_format(k, &o, doc, disposition);
                bbt_document_free(doc);
                return ret;
        }
        {
                /* The key: every option the body depends on, as parsed (a
                 * week or a default range as the days it stands for); the
                 * scope is added by web_cached. */
                int32_t today = bbt_day_of_ms(o.now_ms, k->w->metrics.offset_min);
                int64_t stale = k->w->cfg->web_cache_stale_ms;
                char key[256];

                snprintf(key, sizeof(key), "report|%s|%s|%s|%s|%s|%" PRId32 "|%" PRId32, o.kind->name,
                         o.format->name, o.chinese ? "zh" : "en", o.county ? o.county : "",
                         o.school ? o.school : "", o.from, o.to);
                /* A range that reaches today also depends on the clock
                 * (open faults, idle "until now"). */
                ret = web_cached(k, key, o.to >= today ? (stale > 1000 ? stale : 1000) : -1, stale, make_rendered,
                                 &o, strcmp(o.format->name, "json") != 0 ? disposition : NULL);
        }
        if (strcmp(o.format->name, "json") != 0 && k->status == 200)
                web_audit_export(k, what);
        return ret;
}

/* ---- a terminal ---- */

struct terminal_ctx {
        const char *code;
        int64_t since, until; /* the day */
        struct bbt_store_terminal st;
        bool found;
        cJSON *timeline, *devices, *faults;
        int offset_min;
        int64_t on_ms[3]; /* ms in standby, idle, active that day */
        int64_t interactive_ms;
};

static int find_terminal_cb(void *u, const struct bbt_store_terminal *t)
{
        struct terminal_ctx *tc = u;

        if (strcmp(t->terminal, tc->code) != 0)
                return 0;
        tc->st = *t;
        tc->found = true;
        return 1;
}

static void add_time(cJSON *j, const char *key, int64_t ms, int offset_min)
{
        char t[40];

        if (ms > 0)
                cJSON_AddStringToObject(j, key, bbt_time_format(ms, offset_min, true, t, sizeof(t)));
        else
                cJSON_AddNullToObject(j, key);
}

static int usage_cb(void *u, const struct bbt_store_usage *us)
{
        struct terminal_ctx *tc = u;
        int64_t a = us->span.start_ms, b = us->span.end_ms;
        cJSON *j;

        if (us->terminal_id != tc->st.id)
                return 0;
        /* Cut to the day; the interactive share in proportion. */
        if (a < tc->since)
                a = tc->since;
        if (b > tc->until)
                b = tc->until;
        if (b <= a)
                return 0;
        j = cJSON_CreateObject();
        add_time(j, "start", a, tc->offset_min);
        add_time(j, "end", b, tc->offset_min);
        cJSON_AddStringToObject(j, "state", bbt_usage_state_name(us->span.state));
        int64_t len = us->span.end_ms - us->span.start_ms;
        int64_t inter = len > 0 ? (int64_t)((double)us->span.interactive_ms * (double)(b - a) / (double)len) : 0;
        cJSON_AddNumberToObject(j, "interactive_ms", (double)inter);
        cJSON_AddNumberToObject(j, "touch", (double)us->touch);
        cJSON_AddNumberToObject(j, "pen", (double)us->pen);
        cJSON_AddItemToArray(tc->timeline, j);
        if ((int)us->span.state >= 0 && (int)us->span.state < 3)
                tc->on_ms[us->span.state] += b - a;
        tc->interactive_ms += inter;
        return 0;
}

static int device_cb(void *u, const struct bbt_store_device *d)
{
        struct terminal_ctx *tc = u;
        cJSON *j;

        if (d->terminal_id != tc->st.id)
                return 0;
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "kind", bbt_periph_kind_name(d->kind));
        cJSON_AddStringToObject(j, "subsystem", d->subsystem);
#define STR_OR_NULL(key, v) (*(v) ? cJSON_AddStringToObject(j, key, v) : cJSON_AddNullToObject(j, key))
        STR_OR_NULL("bus", d->bus);
        STR_OR_NULL("vendor", d->vendor);
        STR_OR_NULL("model", d->model);
        STR_OR_NULL("serial", d->serial);
#undef STR_OR_NULL
        cJSON_AddItemToArray(tc->devices, j);
        return 0;
}

static int fault_cb(void *u, const struct bbt_store_fault *f)
{
        struct terminal_ctx *tc = u;
        cJSON *j;

        if (f->terminal_id != tc->st.id)
                return 0;
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "code", f->code);
        cJSON_AddStringToObject(j, "severity", f->severity == BBT_SEVERITY_ERROR ? "error" : "warning");
        cJSON_AddStringToObject(j, "source", f->source);
        cJSON_AddStringToObject(j, "detail", f->detail);
        add_time(j, "raised", f->raised_ms, tc->offset_min);
        add_time(j, "cleared", f->cleared_ms, tc->offset_min);
        cJSON_AddItemToArray(tc->faults, j);
        return 0;
}

static bool kind_present(const cJSON *devices, enum bbt_periph_kind kind)
{
        const cJSON *d;

        cJSON_ArrayForEach(d, devices)
        {
                const cJSON *kj = cJSON_GetObjectItemCaseSensitive(d, "kind");

                if (cJSON_IsString(kj) && strcmp(kj->valuestring, bbt_periph_kind_name(kind)) == 0)
                        return true;
        }
        return false;
}

enum MHD_Result web_h_terminal(struct web_call *k)
{
        static const char *const names[] = { "county", "date", NULL };
        const char *v[3], *school = k->arg[0], *code = k->arg[1], *county;
        struct terminal_ctx tc = { .code = code, .offset_min = k->w->metrics.offset_min };
        const struct bbt_school *rs;
        const struct bbt_terminal_entry *re;
        struct bbt_store_scope sc = BBT_STORE_SCOPE_ALL;
        struct bbt_store *store;
        enum MHD_Result ret;
        int32_t day = bbt_day_of_ms(k->now_ms, k->w->metrics.offset_min);
        char err[512];
        cJSON *j, *hb, *exp, *missing;
        int r;

        if (!web_params(k, names, v, &ret))
                return ret;
        if (!bbt_id_valid(school))
                return web_bad_param(k, "school", "school: expected 1 to 32 of A-Z a-z 0-9 _ -");
        if (!bbt_id_valid(code))
                return web_bad_param(k, "terminal", "terminal: expected 1 to 32 of A-Z a-z 0-9 _ -");
        if (v[0] && !bbt_county_valid(v[0]))
                return web_bad_param(k, "county", "county: expected 6 digits");
        if (v[1] && bbt_day_parse(v[1], &day) < 0)
                return web_bad_param(k, "date", "date %.32s: expected a date YYYY-MM-DD", v[1]);
        if (!web_school_visible(k, v[0], school))
                return web_error(k, 403, "forbidden", "school %s is outside your scope", school);
        rs = k->world->reg ? bbt_registry_school(k->world->reg, school) : NULL;
        if (rs && v[0] && strcmp(rs->county, v[0]) != 0)
                rs = NULL;
        county = v[0] ? v[0] : rs ? rs->county : *k->s.scope.county ? k->s.scope.county : NULL;
        re = rs ? bbt_registry_terminal(k->world->reg, school, code) : NULL;

        tc.since = bbt_day_start_ms(day, tc.offset_min);
        tc.until = bbt_day_start_ms(day + 1, tc.offset_min);
        sc.county = county;
        sc.school = school;
        store = web_store_get(k->w, err, sizeof(err));
        if (!store)
                return web_error(k, 503, "store_unavailable", "the store cannot be read now (has bbt-aggregator run?)");
        r = bbt_store_terminals_each_in(store, &sc, find_terminal_cb, &tc);
        if (r >= 0 && !tc.found && !re) {
                web_store_put(k->w, store);
                return web_error(k, 404, "not_found", "no terminal %s at school %s", code, school);
        }
        j = cJSON_CreateObject();
        tc.timeline = cJSON_CreateArray();
        tc.devices = cJSON_CreateArray();
        tc.faults = cJSON_CreateArray();
        if (r >= 0 && tc.found) {
                struct bbt_store_scope in = sc;

                /* The store filters by school; the terminal is picked here. */
                in.since_ms = tc.since;
                in.until_ms = tc.until;
                r = bbt_store_usage_each_in(store, &in, usage_cb, &tc);
                if (r >= 0)
                        r = bbt_store_inventory_each_in(store, &sc, device_cb, &tc);
                in.until_ms = tc.until < k->now_ms ? tc.until : k->now_ms;
                if (r >= 0)
                        r = bbt_store_faults_each_in(store, &in, fault_cb, &tc);
        }
        if (r < 0)
                bbt_log_error("terminal %s/%s: %s", school, code, bbt_store_error(store));
        web_store_put(k->w, store);
        if (r < 0) {
                cJSON_Delete(j);
                cJSON_Delete(tc.timeline);
                cJSON_Delete(tc.devices);
                cJSON_Delete(tc.faults);
                return web_error(k, 500, "store", "the store could not be read (the server's log says why)");
        }

        char date[16];
        cJSON_AddStringToObject(j, "county", tc.found ? tc.st.county : rs ? rs->county : county ? county : "");
        cJSON_AddStringToObject(j, "school", school);
        if (rs)
                cJSON_AddStringToObject(j, "school_name", rs->name);
        else
                cJSON_AddNullToObject(j, "school_name");
        cJSON_AddStringToObject(j, "terminal", code);
        if (re && re->room && *re->room)
                cJSON_AddStringToObject(j, "room", re->room);
        else
                cJSON_AddNullToObject(j, "room");
        cJSON_AddBoolToObject(j, "registered", re != NULL);
        cJSON_AddBoolToObject(j, "reported", tc.found);
        cJSON_AddStringToObject(j, "date", bbt_day_format(day, date, sizeof(date)));
        cJSON_AddBoolToObject(j, "online", tc.found && tc.st.online);
        add_time(j, "last_heard", tc.found ? tc.st.last_seen_ms : 0, tc.offset_min);
        add_time(j, "last_active", tc.found ? tc.st.last_active_ms : 0, tc.offset_min);
        add_time(j, "online_since", tc.found && tc.st.online ? tc.st.online_since_ms : 0, tc.offset_min);
        add_time(j, "offline_since", tc.found && !tc.st.online ? tc.st.offline_since_ms : 0, tc.offset_min);
        if (tc.found && *tc.st.version) {
                cJSON *a = cJSON_AddObjectToObject(j, "agent");

                cJSON_AddStringToObject(a, "version", tc.st.version);
                cJSON_AddStringToObject(a, "hostname", tc.st.hostname);
                cJSON_AddStringToObject(a, "os", tc.st.os);
                if (tc.st.skew_known)
                        cJSON_AddNumberToObject(a, "clock_skew_ms", (double)tc.st.skew_ms);
                else
                        cJSON_AddNullToObject(a, "clock_skew_ms");
        } else {
                cJSON_AddNullToObject(j, "agent");
        }
        /* Health: the newest heartbeat's summary, as the aggregator keeps it. */
        hb = tc.found && *tc.st.last_hb ? cJSON_Parse(tc.st.last_hb) : NULL;
        if (hb) {
                cJSON *ts = cJSON_GetObjectItemCaseSensitive(hb, "ts");

                if (cJSON_IsNumber(ts)) {
                        char t[40];

                        cJSON_AddStringToObject(hb, "time", bbt_time_format((int64_t)ts->valuedouble, tc.offset_min,
                                                                             true, t, sizeof(t)));
                }
                cJSON_AddItemToObject(j, "health", hb);
        } else {
                cJSON_AddNullToObject(j, "health");
        }
        cJSON *tot = cJSON_AddObjectToObject(j, "day_totals");
        cJSON_AddNumberToObject(tot, "standby_ms", (double)tc.on_ms[BBT_USAGE_STANDBY]);
        cJSON_AddNumberToObject(tot, "idle_ms", (double)tc.on_ms[BBT_USAGE_IDLE]);
        cJSON_AddNumberToObject(tot, "active_ms", (double)tc.on_ms[BBT_USAGE_ACTIVE]);
        cJSON_AddNumberToObject(tot, "interactive_ms", (double)tc.interactive_ms);
        cJSON_AddItemToObject(j, "timeline", tc.timeline);
        exp = cJSON_CreateArray();
        missing = cJSON_CreateArray();
        for (int kind = 0; re && kind < BBT_KIND__COUNT; kind++)
                if (re->expected & (1u << kind)) {
                        cJSON_AddItemToArray(exp, cJSON_CreateString(bbt_periph_kind_name((enum bbt_periph_kind)kind)));
                        if (!kind_present(tc.devices, (enum bbt_periph_kind)kind))
                                cJSON_AddItemToArray(missing, cJSON_CreateString(
                                                                      bbt_periph_kind_name((enum bbt_periph_kind)kind)));
                }
        cJSON *per = cJSON_AddObjectToObject(j, "peripherals");
        cJSON_AddItemToObject(per, "present", tc.devices);
        cJSON_AddItemToObject(per, "expected", exp);
        cJSON_AddItemToObject(per, "missing", missing);
        cJSON_AddItemToObject(j, "faults", tc.faults);
        return web_send_json(k, 200, j);
}

/* ---- the live status ---- */

enum live_state { LIVE_IN_USE, LIVE_ON, LIVE_OFFLINE, LIVE_NEVER, LIVE__COUNT };
static const char *const live_names[LIVE__COUNT] = { "in_use", "on", "offline", "never" };

struct status_school {
        const char *county, *code;
        const struct bbt_school *reg;
        int n[LIVE__COUNT];
        cJSON *terminals;
};

struct status_ctx {
        struct web_call *k;
        const struct bbt_report_options *o;
        struct status_school *schools;
        size_t n_schools, cap;
        struct bbt_store_terminal *st;
        size_t n_st, cap_st;
        int totals[LIVE__COUNT];
        int64_t stale_ms;
};

static struct status_school *status_school(struct status_ctx *sc, const char *county, const char *code,
                                           const struct bbt_school *reg)
{
        for (size_t i = sc->n_schools; i-- > 0;)
                if (strcmp(sc->schools[i].code, code) == 0 && strcmp(sc->schools[i].county, county) == 0)
                        return &sc->schools[i];
        if (sc->n_schools == sc->cap) {
                size_t cap = sc->cap ? sc->cap * 2 : 32;
                struct status_school *n = realloc(sc->schools, cap * sizeof(*n));

                if (!n)
                        return NULL;
                sc->schools = n;
                sc->cap = cap;
        }
        sc->schools[sc->n_schools] = (struct status_school){ .county = county, .code = code, .reg = reg };
        sc->schools[sc->n_schools].terminals = cJSON_CreateArray();
        return &sc->schools[sc->n_schools++];
}

static bool status_school_in(const struct status_ctx *sc, const char *county, const char *code,
                             const struct bbt_school *reg)
{
        const struct bbt_report_options *o = sc->o;

        return (!o->county || strcmp(o->county, county) == 0) && (!o->school || strcmp(o->school, code) == 0) &&
               o->school_in(o->school_in_data, county, code, reg);
}

static int status_terminal_cb(void *u, const struct bbt_store_terminal *t)
{
        struct status_ctx *sc = u;

        if (sc->n_st == sc->cap_st) {
                size_t cap = sc->cap_st ? sc->cap_st * 2 : 64;
                struct bbt_store_terminal *n = realloc(sc->st, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                sc->st = n;
                sc->cap_st = cap;
        }
        sc->st[sc->n_st++] = *t;
        return 0;
}

/* Now: in use (online, its last heartbeat says active), on (online), offline
 * (the aggregator saw it go, or nothing heard for three heartbeats), never
 * (registered, never reported). */
static enum live_state live_state(const struct status_ctx *sc, const struct bbt_store_terminal *t)
{
        cJSON *hb, *state;
        enum live_state s = LIVE_ON;

        if (!t)
                return LIVE_NEVER;
        if (!t->online || t->last_seen_ms < sc->k->now_ms - sc->stale_ms)
                return LIVE_OFFLINE;
        hb = *t->last_hb ? cJSON_Parse(t->last_hb) : NULL;
        state = cJSON_GetObjectItemCaseSensitive(hb, "state");
        if (cJSON_IsString(state) && strcmp(state->valuestring, "active") == 0)
                s = LIVE_IN_USE;
        cJSON_Delete(hb);
        return s;
}

static void status_add(struct status_ctx *sc, struct status_school *ss, const char *code, const char *room,
                       const struct bbt_store_terminal *t)
{
        enum live_state s = live_state(sc, t);
        cJSON *j = cJSON_CreateObject();

        ss->n[s]++;
        sc->totals[s]++;
        cJSON_AddStringToObject(j, "terminal", code);
        if (room && *room)
                cJSON_AddStringToObject(j, "room", room);
        else
                cJSON_AddNullToObject(j, "room");
        cJSON_AddStringToObject(j, "state", live_names[s]);
        add_time(j, "last_heard", t ? t->last_seen_ms : 0, sc->k->w->metrics.offset_min);
        add_time(j, "since", !t ? 0 : t->online ? t->online_since_ms : t->offline_since_ms,
                 sc->k->w->metrics.offset_min);
        cJSON_AddItemToArray(ss->terminals, j);
}

static int cmp_st(const void *a, const void *b)
{
        const struct bbt_store_terminal *x = a, *y = b;
        int r = strcmp(x->school, y->school);

        return r ? r : (r = strcmp(x->terminal, y->terminal)) ? r : strcmp(x->county, y->county);
}

static const struct bbt_store_terminal *status_find(const struct status_ctx *sc, const char *county,
                                                    const char *school, const char *code)
{
        struct bbt_store_terminal key;

        snprintf(key.county, sizeof(key.county), "%s", county);
        snprintf(key.school, sizeof(key.school), "%s", school);
        snprintf(key.terminal, sizeof(key.terminal), "%s", code);
        return sc->n_st ? bsearch(&key, sc->st, sc->n_st, sizeof(key), cmp_st) : NULL;
}

static void counts_json(cJSON *j, const int *n)
{
        int all = 0;

        for (int i = 0; i < LIVE__COUNT; i++) {
                cJSON_AddNumberToObject(j, live_names[i], n[i]);
                all += n[i];
        }
        cJSON_AddNumberToObject(j, "terminals", all);
}

/* What the status body needs besides the call. */
struct status_args {
        struct bbt_report_options o;
        struct web_scope_filter filter;
};

/* web_make_fn: the live status of the options U. */
static bool make_status(struct web_call *k, void *u, char **body, size_t *len, const char **type,
                        enum MHD_Result *ret)
{
        struct status_args *a = u;
        struct status_ctx sc = { .k = k, .o = &a->o };
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        const struct bbt_registry *reg = k->world->reg;
        struct bbt_store *store;
        char err[512], *text;
        cJSON *j, *arr;
        bool *matched = NULL;
        int r;

        /* Three heartbeats missed: not on now, whatever the last flag said. */
        sc.stale_ms = 3LL * k->w->metrics.heartbeat_s * 1000;
        scope.county = a->o.county;
        scope.school = a->o.school;
        store = web_store_get(k->w, err, sizeof(err));
        if (!store) {
                *ret = web_error(k, 503, "store_unavailable", "the store cannot be read now (has bbt-aggregator run?)");
                return false;
        }
        r = bbt_store_terminals_each_in(store, &scope, status_terminal_cb, &sc);
        if (r < 0)
                bbt_log_error("status: %s", bbt_store_error(store));
        web_store_put(k->w, store);
        if (r < 0) {
                free(sc.st);
                *ret = web_error(k, 500, "store", "the store could not be read (the server's log says why)");
                return false;
        }
        if (sc.n_st)
                qsort(sc.st, sc.n_st, sizeof(*sc.st), cmp_st);
        matched = calloc(sc.n_st + 1, 1);
        /* The registry's schools and terminals in its order, then those seen on the wire only. */
        for (size_t i = 0; matched && reg && i < reg->n_schools; i++)
                if (status_school_in(&sc, reg->schools[i].county, reg->schools[i].code, &reg->schools[i]))
                        status_school(&sc, reg->schools[i].county, reg->schools[i].code, &reg->schools[i]);
        for (size_t i = 0; matched && reg && i < reg->n_terminals; i++) {
                const struct bbt_terminal_entry *e = &reg->terminals[i];
                const struct bbt_school *s = bbt_registry_school(reg, e->school);
                const struct bbt_store_terminal *t;
                struct status_school *ss;

                if (!s || !status_school_in(&sc, s->county, s->code, s))
                        continue;
                t = status_find(&sc, s->county, s->code, e->id);
                if (t)
                        matched[t - sc.st] = true;
                ss = status_school(&sc, s->county, s->code, s);
                if (ss)
                        status_add(&sc, ss, e->id, e->room, t);
        }
        for (size_t i = 0; matched && i < sc.n_st; i++) {
                const struct bbt_store_terminal *t = &sc.st[i];
                const struct bbt_school *rs = reg ? bbt_registry_school(reg, t->school) : NULL;
                struct status_school *ss;

                if (matched[i])
                        continue;
                if (rs && strcmp(rs->county, t->county) != 0)
                        rs = NULL;
                if (!status_school_in(&sc, t->county, t->school, rs))
                        continue;
                ss = status_school(&sc, t->county, t->school, rs);
                if (ss)
                        status_add(&sc, ss, t->terminal, NULL, t);
        }
        j = cJSON_CreateObject();
        add_time(j, "now", k->now_ms, k->w->metrics.offset_min);
        counts_json(cJSON_AddObjectToObject(j, "totals"), sc.totals);
        arr = cJSON_AddArrayToObject(j, "schools");
        for (size_t i = 0; i < sc.n_schools; i++) {
                struct status_school *ss = &sc.schools[i];
                cJSON *s = cJSON_CreateObject();

                cJSON_AddStringToObject(s, "county", ss->county);
                cJSON_AddStringToObject(s, "school", ss->code);
                if (ss->reg)
                        cJSON_AddStringToObject(s, "name", ss->reg->name);
                else
                        cJSON_AddNullToObject(s, "name");
                counts_json(cJSON_AddObjectToObject(s, "counts"), ss->n);
                cJSON_AddItemToObject(s, "terminals", ss->terminals);
                cJSON_AddItemToArray(arr, s);
        }
        free(sc.schools);
        free(sc.st);
        text = matched ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        free(matched);
        if (!text) {
                *ret = web_error(k, 500, "internal", "out of memory");
                return false;
        }
        *body = text;
        *len = strlen(text);
        *type = "application/json";
        return true;
}

enum MHD_Result web_h_status(struct web_call *k)
{
        static const char *const names[] = { "county", "school", NULL };
        const char *v[3];
        struct status_args a = { .o = { 0 } };
        enum MHD_Result ret;
        char key[128];

        if (!web_params(k, names, v, &ret))
                return ret;
        if (v[0] && !bbt_county_valid(v[0]))
                return web_bad_param(k, "county", "county: expected 6 digits");
        if (v[1] && !bbt_id_valid(v[1]))
                return web_bad_param(k, "school", "school: expected 1 to 32 of A-Z a-z 0-9 _ -");
        if (v[0] && *k->s.scope.county && strcmp(v[0], k->s.scope.county) != 0)
                return web_error(k, 403, "forbidden", "county %s is outside your scope", v[0]);
        if (v[1] && !web_school_visible(k, v[0], v[1]))
                return web_error(k, 403, "forbidden", "school %s is outside your scope", v[1]);
        a.o.county = v[0];
        a.o.school = v[1];
        web_scope_options(k, &a.o, &a.filter);
        /* Live: at most a second old, and never from before the store's
         * last change (docs/web.md, "The response cache"). */
        snprintf(key, sizeof(key), "status|%s|%s", a.o.county ? a.o.county : "", a.o.school ? a.o.school : "");
        return web_cached(k, key, 1000, 0, make_status, &a, NULL);
}
