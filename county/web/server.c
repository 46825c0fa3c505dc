/* bbt-web's server: libmicrohttpd's thread pool, the routes, sessions and CSRF, replies, the store handles, the scope. */
#include "web_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bbt/base.h"
#include "bbt/fileio.h"
#include "bbt/log.h"

#define COOKIE "bbt_session"

const char *const bbt_web_counter_names[WEB_C__COUNT] = {
        [WEB_REQUESTS] = "requests",       [WEB_OK] = "ok",
        [WEB_BAD_REQUEST] = "bad_request", [WEB_UNAUTHORIZED] = "unauthorized",
        [WEB_FORBIDDEN] = "forbidden",     [WEB_NOT_FOUND] = "not_found",
        [WEB_METHOD] = "method_not_allowed", [WEB_TOO_LARGE] = "too_large",
        [WEB_THROTTLED] = "throttled",     [WEB_UNAVAILABLE] = "unavailable",
        [WEB_ERROR] = "error",             [WEB_LOGINS] = "logins",
        [WEB_EXPORTS] = "exports",         [WEB_CONNECTIONS] = "connections",
        [WEB_ABORTED] = "aborted",
};

int64_t web_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void web_count(struct bbt_web *w, enum web_counter c)
{
        __atomic_fetch_add(&w->counters[c], 1, __ATOMIC_RELAXED);
}

static void count_status(struct bbt_web *w, unsigned status)
{
        switch (status) {
        case 400: web_count(w, WEB_BAD_REQUEST); break;
        case 401: web_count(w, WEB_UNAUTHORIZED); break;
        case 403: web_count(w, WEB_FORBIDDEN); break;
        case 404: web_count(w, WEB_NOT_FOUND); break;
        case 405: web_count(w, WEB_METHOD); break;
        case 413: web_count(w, WEB_TOO_LARGE); break;
        case 429: web_count(w, WEB_THROTTLED); break;
        case 503: web_count(w, WEB_UNAVAILABLE); break;
        default: web_count(w, status < 400 ? WEB_OK : WEB_ERROR); break;
        }
}

/* ---- replies ---- */

static void common_headers(struct web_call *k, struct MHD_Response *r, bool api)
{
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
        if (api)
                MHD_add_response_header(r, "Cache-Control", "no-store");
        else
                MHD_add_response_header(r, "Content-Security-Policy",
                                        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
        if (k->w->tls)
                MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
}

static enum MHD_Result queue(struct web_call *k, unsigned status, struct MHD_Response *r)
{
        enum MHD_Result ret;

        if (!r) {
                count_status(k->w, 500);
                return MHD_NO;
        }
        count_status(k->w, status);
        k->status = status;
        ret = MHD_queue_response(k->c, status, r);
        MHD_destroy_response(r);
        return ret;
}

/* BODY (taken) with the headers H: NAME, VALUE, ... up to a NULL NAME; a
 * pair whose VALUE is NULL is left out. */
static enum MHD_Result send_headers(struct web_call *k, unsigned status, const char *type, char *body, size_t len,
                                    const char *const *h)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);

        if (!r) {
                free(body);
                return queue(k, 500, NULL);
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        for (; h[0]; h += 2)
                if (h[1])
                        MHD_add_response_header(r, h[0], h[1]);
        common_headers(k, r, true);
        return queue(k, status, r);
}

/* BODY (taken) with a header NAME: VALUE more (NAME may be NULL). */
static enum MHD_Result send_with(struct web_call *k, unsigned status, const char *type, char *body, size_t len,
                                 const char *name, const char *value)
{
        return send_headers(k, status, type, body, len, (const char *const[]){ name, value, NULL });
}

enum MHD_Result web_send_tagged(struct web_call *k, unsigned status, const char *type, char *body, size_t len,
                                const char *disposition, const char *etag)
{
        return send_headers(k, status, type, body, len,
                            (const char *const[]){ MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition,
                                                   MHD_HTTP_HEADER_ETAG, etag, NULL });
}

enum MHD_Result web_send(struct web_call *k, unsigned status, const char *type, char *body, size_t len,
                         const char *disposition)
{
        return web_send_tagged(k, status, type, body, len, disposition, NULL);
}

enum MHD_Result web_send_fd(struct web_call *k, const char *type, int fd, uint64_t size, const char *disposition,
                            bool cache)
{
        struct MHD_Response *r = MHD_create_response_from_fd64(size, fd);

        if (!r) {
                close(fd);
                return queue(k, 500, NULL);
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        if (disposition)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
        if (cache)
                MHD_add_response_header(r, "Cache-Control", "no-cache");
        common_headers(k, r, disposition != NULL);
        return queue(k, 200, r);
}

enum MHD_Result web_send_json(struct web_call *k, unsigned status, cJSON *j)
{
        char *text = j ? cJSON_PrintUnformatted(j) : NULL;

        cJSON_Delete(j);
        if (!text)
                return queue(k, 500, NULL);
        return web_send(k, status, "application/json", text, strlen(text), NULL);
}

/* The error body; HEADER: VALUE added if HEADER (Allow, Retry-After). */
static enum MHD_Result verror(struct web_call *k, unsigned status, const char *code, const char *param,
                              const char *header, const char *value, const char *fmt, va_list ap)
{
        char msg[512], *text;
        cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");

        vsnprintf(msg, sizeof(msg), fmt, ap);
        cJSON_AddStringToObject(e, "code", code);
        cJSON_AddStringToObject(e, "message", msg);
        if (param)
                cJSON_AddStringToObject(e, "parameter", param);
        if (status >= 500)
                bbt_log_error("%s %s: %s", k->method, k->url, msg);
        else
                bbt_log_debug("%s %s from %s: %u %s", k->method, k->url, k->addr, status, msg);
        text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!text)
                return queue(k, 500, NULL);
        return send_with(k, status, "application/json", text, strlen(text), header, value);
}

static enum MHD_Result error_with(struct web_call *k, unsigned status, const char *code, const char *header,
                                  const char *value, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static enum MHD_Result error_with(struct web_call *k, unsigned status, const char *code, const char *header,
                                  const char *value, const char *fmt, ...)
{
        enum MHD_Result r;
        va_list ap;

        va_start(ap, fmt);
        r = verror(k, status, code, NULL, header, value, fmt, ap);
        va_end(ap);
        return r;
}

enum MHD_Result web_error(struct web_call *k, unsigned status, const char *code, const char *fmt, ...)
{
        enum MHD_Result r;
        va_list ap;

        va_start(ap, fmt);
        r = verror(k, status, code, NULL, NULL, NULL, fmt, ap);
        va_end(ap);
        return r;
}

enum MHD_Result web_method_not_allowed(struct web_call *k, const char *allow)
{
        return error_with(k, 405, "method_not_allowed", MHD_HTTP_HEADER_ALLOW, allow,
                          "%s is not allowed here (allowed: %s)", k->method, allow);
}

enum MHD_Result web_bad_param(struct web_call *k, const char *param, const char *fmt, ...)
{
        enum MHD_Result r;
        va_list ap;

        va_start(ap, fmt);
        r = verror(k, 400, "bad_parameter", param, NULL, NULL, fmt, ap);
        va_end(ap);
        return r;
}

/* ---- the query ---- */

struct params_ctx {
        const char *const *names;
        const char **values;
        const char *bad;        /* an unknown or repeated parameter */
        bool repeated;
};

static enum MHD_Result param_cb(void *u, enum MHD_ValueKind kind, const char *key, const char *value)
{
        struct params_ctx *p = u;

        for (size_t i = 0; p->names[i]; i++)
                if (strcmp(p->names[i], key) == 0) {
                        if (p->values[i]) {
                                p->bad = p->names[i];
                                p->repeated = true;
                                return MHD_NO;
                        }
                        p->values[i] = value ? value : "";
                        return MHD_YES;
                }
        p->bad = key;
        return MHD_NO;
}

bool web_params(struct web_call *k, const char *const *names, const char **values, enum MHD_Result *ret)
{
        struct params_ctx p = { .names = names, .values = values };
        size_t n = 0;

        while (names[n])
                values[n++] = NULL;
        MHD_get_connection_values(k->c, MHD_GET_ARGUMENT_KIND, param_cb, &p);
        if (!p.bad)
                return true;
        /* The name goes back into a JSON string: cJSON escapes it. */
        *ret = p.repeated ? web_bad_param(k, p.bad, "%s: given more than once", p.bad)
                          : web_bad_param(k, p.bad, "unknown parameter %.64s", p.bad);
        return false;
}

/* ---- the store handles ---- */

struct bbt_store *web_store_get(struct bbt_web *w, char *err, size_t err_size)
{
        struct bbt_store *s = NULL;
        int r;

        pthread_mutex_lock(&w->lock);
        if (w->n_pool > 0)
                s = w->pool[--w->n_pool];
        pthread_mutex_unlock(&w->lock);
        if (s)
                return s;
        /* One per worker thread at most: a handle goes back to the pool
         * after each request, and each thread has one request at a time. */
        r = bbt_store_open(w->cfg->store_path, true, &s, err, err_size);
        if (r < 0) {
                bbt_log_warning("store %s: %s", w->cfg->store_path, err);
                return NULL;
        }
        return s;
}

void web_store_put(struct bbt_web *w, struct bbt_store *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&w->lock);
        if (w->n_pool < w->cap_pool) {
                w->pool[w->n_pool++] = s;
                s = NULL;
        }
        pthread_mutex_unlock(&w->lock);
        bbt_store_close(s);
}

/* ---- the response cache ---- */

bool web_store_generation(struct bbt_web *w, uint64_t *gen)
{
        char err[512];
        uint64_t v;
        int r = 0;

        pthread_mutex_lock(&w->gen_lock);
        if (!w->watch) {
                r = bbt_store_open(w->cfg->store_path, true, &w->watch, err, sizeof(err));
                if (r < 0)
                        w->watch = NULL;
                else
                        w->gen++; /* a new connection: its numbers are not the old one's */
        }
        if (r == 0 && (r = bbt_store_data_version(w->watch, &v)) < 0) {
                snprintf(err, sizeof(err), "%s", r == -ENOTSUP ? "the store has no change marker"
                                                                : bbt_store_error(w->watch));
                /* Opened again next time. */
                bbt_store_close(w->watch);
                w->watch = NULL;
        }
        if (r == 0) {
                if (v != w->watch_version)
                        w->gen++;
                w->watch_version = v;
                *gen = w->gen;
                w->watch_failed = false;
        } else if (!w->watch_failed) {
                /* Once until it works again: the store may be missing until bbt-aggregator has run. */
                bbt_log_warning("response cache: cannot tell whether the store changed (%s): answering without it", err);
                w->watch_failed = true;
        }
        pthread_mutex_unlock(&w->gen_lock);
        return r == 0;
}

static enum MHD_Result send_cached(struct web_call *k, char *body, size_t len, const char *type,
                                   const char *disposition, const char *etag)
{
        const char *inm = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
        struct MHD_Response *r;

        if (!inm || !web_cache_etag_matches(inm, etag))
                return web_send_tagged(k, 200, type, body, len, disposition, etag);
        free(body);
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!r)
                return queue(k, 500, NULL);
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        common_headers(k, r, true);
        return queue(k, 304, r);
}

enum MHD_Result web_cached(struct web_call *k, const char *key, int64_t max_age_ms, int64_t stale_ms,
                           web_make_fn make, void *u, const char *disposition)
{
        const struct bbt_scope *sc = &k->s.scope;
        struct web_cache_entry *ticket = NULL;
        struct web_cache_hit hit;
        enum MHD_Result ret;
        const char *type;
        char *full, *body, etag[20];
        size_t len;
        uint64_t gen;
        bool cached = k->w->cache && web_store_generation(k->w, &gen);

        if (!cached) {
                if (!make(k, u, &body, &len, &type, &ret))
                        return ret;
                return web_send(k, 200, type, body, len, disposition);
        }
        /* The scope is in every key: a body is only ever served to a caller
         * who may see all of it (a school viewer never gets a county's). */
        const char *town = sc->role == BBT_ROLE_TOWNSHIP ? sc->township : "";

        if (asprintf(&full, "%" PRIu64 "|%d|%s|%zu:%s|%s|%s", k->world->serial, (int)sc->role, sc->county,
                     strlen(town), town, sc->role == BBT_ROLE_SCHOOL ? sc->school : "", key) < 0)
                return web_error(k, 500, "internal", "out of memory");
        if (web_cache_get(k->w->cache, full, gen, k->now_ms, max_age_ms, stale_ms, &hit, &ticket)) {
                free(full);
                return send_cached(k, hit.body, hit.len, hit.type, disposition, hit.etag);
        }
        free(full);
        if (!make(k, u, &body, &len, &type, &ret)) {
                web_cache_abandon(k->w->cache, ticket);
                return ret;
        }
        if (ticket)
                web_cache_fill(k->w->cache, ticket, body, len, type, etag);
        else
                web_cache_etag(body, len, etag);
        return send_cached(k, body, len, type, disposition, etag);
}

static void cache_json(struct bbt_web *w, cJSON *j)
{
        struct web_cache_stats st;

        if (!w->cache) {
                cJSON_AddNullToObject(j, "cache");
                return;
        }
        web_cache_stats(w->cache, &st);
        j = cJSON_AddObjectToObject(j, "cache");
        cJSON_AddNumberToObject(j, "hits", (double)st.hits);
        cJSON_AddNumberToObject(j, "stale_hits", (double)st.stale);
        cJSON_AddNumberToObject(j, "misses", (double)st.misses);
        cJSON_AddNumberToObject(j, "waits", (double)st.waits);
        cJSON_AddNumberToObject(j, "evictions", (double)st.evictions);
        cJSON_AddNumberToObject(j, "too_large", (double)st.too_large);
        cJSON_AddNumberToObject(j, "entries", (double)st.entries);
        cJSON_AddNumberToObject(j, "bytes", (double)st.bytes);
        cJSON_AddNumberToObject(j, "max_bytes", (double)st.max_bytes);
}

/* ---- the world (registry and calendar) ---- */

static void world_unref(struct bbt_web *w, struct web_world *wd)
{
        bool last;

        if (!wd)
                return;
        pthread_mutex_lock(&w->lock);
        last = --wd->refs == 0;
        pthread_mutex_unlock(&w->lock);
        if (last) {
                bbt_registry_free(wd->reg);
                bbt_calendar_free(wd->cal);
                free(wd);
        }
}

static struct web_world *world_ref(struct bbt_web *w)
{
        struct web_world *wd;

        pthread_mutex_lock(&w->lock);
        wd = w->world;
        wd->refs++;
        pthread_mutex_unlock(&w->lock);
        return wd;
}

static int world_load(struct bbt_web *w, FILE *errs)
{
        struct web_world *wd = calloc(1, sizeof(*wd)), *old;
        int r;

        if (!wd)
                return -ENOMEM;
        r = bbt_aggregator_load_registry(w->cfg, errs, &wd->reg, &wd->cal);
        if (r < 0) {
                free(wd);
                return r;
        }
        wd->refs = 1;
        pthread_mutex_lock(&w->lock);
        wd->serial = ++w->world_serial;
        old = w->world;
        w->world = wd;
        pthread_mutex_unlock(&w->lock);
        world_unref(w, old);
        return 0;
}

/* ---- the scope ---- */

/* The registry's school CODE, of COUNTY if given; NULL if none. */
static const struct bbt_school *registry_school(const struct bbt_registry *reg, const char *county, const char *code)
{
        const struct bbt_school *s = reg ? bbt_registry_school(reg, code) : NULL;

        return s && county && strcmp(s->county, county) != 0 ? NULL : s;
}

/* A school not in the registry (seen on the wire only, or unknown): a county
 * user sees it in its county; a township user has no township for it; a
 * school user sees its own code, unless the registry puts that code in
 * another county. */
static bool scope_allows_unregistered(const struct bbt_scope *sc, const struct bbt_registry *reg,
                                      const char *county, const char *code)
{
        const struct bbt_school *elsewhere = reg ? bbt_registry_school(reg, code) : NULL;

        switch (sc->role) {
        case BBT_ROLE_COUNTY:
                return !*sc->county || !county || strcmp(county, sc->county) == 0;
        case BBT_ROLE_SCHOOL:
                return strcmp(code, sc->school) == 0 && (!*sc->county || !county || strcmp(county, sc->county) == 0) &&
                       !(elsewhere && county && strcmp(elsewhere->county, county) != 0);
        case BBT_ROLE_TOWNSHIP:
        default:
                return false;
        }
}

static bool school_in_scope(const void *u, const char *county, const char *code, const struct bbt_school *reg)
{
        const struct web_scope_filter *f = u;

        return reg ? bbt_scope_allows(f->scope, reg) : scope_allows_unregistered(f->scope, f->reg, county, code);
}

bool web_school_visible(const struct web_call *k, const char *county, const char *code)
{
        const struct bbt_school *s = registry_school(k->world->reg, county, code);

        if (!k->has_session)
                return false;
        if (county && *k->s.scope.county && strcmp(county, k->s.scope.county) != 0)
                return false;
        return s ? bbt_scope_allows(&k->s.scope, s) : scope_allows_unregistered(&k->s.scope, k->world->reg, county, code);
}

void web_scope_options(const struct web_call *k, struct bbt_report_options *o, struct web_scope_filter *filter)
{
        const struct bbt_scope *sc = &k->s.scope;

        filter->scope = sc;
        filter->reg = k->world->reg;
        /* What the store can filter by itself, it does. */
        if (*sc->county && !o->county)
                o->county = sc->county;
        if (sc->role == BBT_ROLE_SCHOOL && !o->school)
                o->school = sc->school;
        o->school_in = school_in_scope;
        o->school_in_data = filter;
}

bool web_scope_everything(const struct web_call *k)
{
        return k->has_session && k->s.scope.role == BBT_ROLE_COUNTY && !*k->s.scope.county;
}

/* ---- sessions ---- */

static const char *role_name(enum bbt_role r)
{
        return r == BBT_ROLE_COUNTY ? "county" : r == BBT_ROLE_TOWNSHIP ? "township" : "school";
}

static cJSON *scope_json(const struct bbt_scope *sc)
{
        cJSON *j = cJSON_CreateObject();

        cJSON_AddStringToObject(j, "role", role_name(sc->role));
        if (*sc->county)
                cJSON_AddStringToObject(j, "county", sc->county);
        else
                cJSON_AddNullToObject(j, "county");
        if (sc->role == BBT_ROLE_TOWNSHIP)
                cJSON_AddStringToObject(j, "township", sc->township);
        if (sc->role == BBT_ROLE_SCHOOL)
                cJSON_AddStringToObject(j, "school", sc->school);
        return j;
}

static cJSON *session_json(const struct bbt_session *s, bool with_csrf)
{
        cJSON *j = cJSON_CreateObject();
        char t[40];

        cJSON_AddStringToObject(j, "user", s->user);
        cJSON_AddItemToObject(j, "scope", scope_json(&s->scope));
        if (with_csrf)
                cJSON_AddStringToObject(j, "csrf_token", s->csrf);
        cJSON_AddStringToObject(j, "expires", bbt_time_format(s->expires_ms, 0, true, t, sizeof(t)));
        return j;
}

/* Looks up the session of the request's cookie into K. */
static void find_session(struct web_call *k)
{
        const char *token = MHD_lookup_connection_value(k->c, MHD_COOKIE_KIND, COOKIE);
        const struct bbt_session *s;

        if (!token || !*token)
                return;
        pthread_mutex_lock(&k->w->acc_lock);
        s = bbt_accounts_session(k->w->acc, token, k->now_ms);
        if (s) {
                k->s = *s;
                k->has_session = true;
        }
        pthread_mutex_unlock(&k->w->acc_lock);
}

static void audit(struct web_call *k, const char *event, const char *detail)
{
        pthread_mutex_lock(&k->w->acc_lock);
        bbt_accounts_audit(k->w->acc, k->has_session ? k->s.user : "-", k->addr, event, detail, k->now_ms);
        pthread_mutex_unlock(&k->w->acc_lock);
}

/* The login body: JSON {"user": ..., "password": ...} or a form. */
static bool login_fields(struct web_call *k, char *user, size_t user_size, char *pw, size_t pw_size)
{
        const char *type = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        struct web_req *rq = k->rq;

        *user = *pw = '\0';
        if (!rq->body || !type)
                return false;
        if (strncasecmp(type, "application/json", 16) == 0) {
                cJSON *j = cJSON_ParseWithLength(rq->body, rq->len);
                const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "user");
                const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "password");
                bool ok = cJSON_IsString(u) && cJSON_IsString(p) && strlen(u->valuestring) < user_size &&
                          strlen(p->valuestring) < pw_size;

                if (ok) {
                        snprintf(user, user_size, "%s", u->valuestring);
                        snprintf(pw, pw_size, "%s", p->valuestring);
                }
                cJSON_Delete(j);
                return ok;
        }
        if (strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0) {
                /* name=value&...: MHD's own decoder works in place. */
                char *save = NULL;
                bool have_user = false, have_pw = false;

                for (char *f = strtok_r(rq->body, "&", &save); f; f = strtok_r(NULL, "&", &save)) {
                        char *eq = strchr(f, '=');

                        if (!eq)
                                continue;
                        *eq = '\0';
                        for (char *p = eq + 1; *p; p++)
                                if (*p == '+')
                                        *p = ' ';
                        MHD_http_unescape(eq + 1);
                        if (strcmp(f, "user") == 0 && strlen(eq + 1) < user_size) {
                                snprintf(user, user_size, "%s", eq + 1);
                                have_user = true;
                        } else if (strcmp(f, "password") == 0 && strlen(eq + 1) < pw_size) {
                                snprintf(pw, pw_size, "%s", eq + 1);
                                have_pw = true;
                        }
                }
                return have_user && have_pw;
        }
        return false;
}

static enum MHD_Result h_login(struct web_call *k)
{
        char user[BBT_USER_NAME_MAX + 1], pw[1024], cookie[256], retry[16];
        struct bbt_session s;
        struct MHD_Response *resp;
        char *text;
        cJSON *j;
        int retry_after = 0, r;

        if (!login_fields(k, user, sizeof(user), pw, sizeof(pw)))
                return web_bad_param(k, "user",
                                     "expected a JSON object or a form with user and password (Content-Type "
                                     "application/json or application/x-www-form-urlencoded)");
        pthread_mutex_lock(&k->w->acc_lock);
        r = bbt_accounts_login(k->w->acc, user, pw, k->addr, k->now_ms, &s, &retry_after);
        pthread_mutex_unlock(&k->w->acc_lock);
        explicit_bzero(pw, sizeof(pw));
        if (r == -EAGAIN) {
                snprintf(retry, sizeof(retry), "%d", retry_after > 0 ? retry_after : 1);
                return error_with(k, 429, "throttled", MHD_HTTP_HEADER_RETRY_AFTER, retry,
                                  "too many failed logins: try again in %s s", retry);
        }
        if (r < 0)
                return web_error(k, 401, "login_failed", "wrong user name or password");
        web_count(k->w, WEB_LOGINS);
        k->s = s;
        k->has_session = true;
        text = cJSON_PrintUnformatted(j = session_json(&s, true));
        cJSON_Delete(j);
        resp = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!resp) {
                free(text);
                return queue(k, 500, NULL);
        }
        /* No Max-Age: a browser session cookie; the server ends it on expiry. */
        snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", s.token,
                 k->w->tls ? "; Secure" : "");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        common_headers(k, resp, true);
        return queue(k, 200, resp);
}

static enum MHD_Result h_logout(struct web_call *k)
{
        struct MHD_Response *resp;
        char *text = strdup("{}");

        pthread_mutex_lock(&k->w->acc_lock);
        bbt_accounts_logout(k->w->acc, k->s.token, k->addr, k->now_ms);
        pthread_mutex_unlock(&k->w->acc_lock);
        resp = text ? MHD_create_response_from_buffer(2, text, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!resp) {
                free(text);
                return queue(k, 500, NULL);
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE,
                                COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        common_headers(k, resp, true);
        return queue(k, 200, resp);
}

static enum MHD_Result h_me(struct web_call *k)
{
        return web_send_json(k, 200, session_json(&k->s, true));
}

/* The server's own figures: its counters, for a county admin. */
static enum MHD_Result h_server(struct web_call *k)
{
        cJSON *j, *c;
        char t[40];

        if (!web_scope_everything(k))
                return web_error(k, 403, "forbidden", "the server's figures are for a county administrator");
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "version", BBT_VERSION);
        cJSON_AddStringToObject(j, "started", bbt_time_format(k->w->started_ms, 0, true, t, sizeof(t)));
        cJSON_AddNumberToObject(j, "threads", (double)k->w->cfg->web_threads);
        c = cJSON_AddObjectToObject(j, "requests");
        for (int i = 0; i < WEB_C__COUNT; i++)
                cJSON_AddNumberToObject(c, bbt_web_counter_names[i],
                                        (double)__atomic_load_n(&k->w->counters[i], __ATOMIC_RELAXED));
        cache_json(k->w, j);
        return web_send_json(k, 200, j);
}

/* ---- routes ---- */

enum { R_PUBLIC = 1 << 0 };

struct route {
        struct bbt_web_route_info info;
        unsigned flags;
        enum MHD_Result (*fn)(struct web_call *k);
};

static const struct route routes[] = {
        { { "/api/v1/login", "POST", false }, R_PUBLIC, h_login },
        { { "/api/v1/logout", "POST", true }, 0, h_logout },
        { { "/api/v1/me", "GET", true }, 0, h_me },
        { { "/api/v1/server", "GET", true }, 0, h_server },
        { { "/api/v1/reports", "GET", true }, 0, web_h_reports },
        { { "/api/v1/reports/{kind}", "GET", true }, 0, web_h_report },
        { { "/api/v1/status", "GET", true }, 0, web_h_status },
        { { "/api/v1/terminals/{school}/{terminal}", "GET", true }, 0, web_h_terminal },
};

const struct bbt_web_route_info *bbt_web_route_at(size_t i)
{
        return i < BBT_ELEMENTSOF(routes) ? &routes[i].info : NULL;
}

/* Whether URL matches PATTERN segment by segment ({x} takes one non-empty
 * segment into ARG). */
static bool route_match(const char *pattern, const char *url, const char **arg, char *buf, size_t size)
{
        size_t n_arg = 0, used = 0;

        while (*pattern && *url) {
                if (*pattern == '{') {
                        size_t len = strcspn(url, "/");

                        if (len == 0 || used + len + 1 > size || n_arg == 2)
                                return false;
                        memcpy(buf + used, url, len);
                        buf[used + len] = '\0';
                        arg[n_arg++] = buf + used;
                        used += len + 1;
                        url += len;
                        pattern = strchr(pattern, '}') + 1;
                        continue;
                }
                if (*pattern != *url)
                        return false;
                pattern++;
                url++;
        }
        return !*pattern && !*url;
}

static enum MHD_Result api(struct web_call *k)
{
        const struct route *rt = NULL;
        bool path_known = false;
        const char *arg[2];
        char argbuf[256];
        bool get = strcmp(k->method, "GET") == 0 || strcmp(k->method, "HEAD") == 0;

        for (size_t i = 0; i < BBT_ELEMENTSOF(routes); i++) {
                if (!route_match(routes[i].info.path, k->url, arg, argbuf, sizeof(argbuf)))
                        continue;
                path_known = true;
                if (strcmp(routes[i].info.method, k->method) == 0 ||
                    (get && strcmp(routes[i].info.method, "GET") == 0)) {
                        rt = &routes[i];
                        break;
                }
        }
        if (!path_known)
                return web_error(k, 404, "not_found", "no such API path: %.128s", k->url);
        if (!rt) {
                char allow[64] = "";

                for (size_t i = 0; i < BBT_ELEMENTSOF(routes); i++)
                        if (route_match(routes[i].info.path, k->url, arg, argbuf, sizeof(argbuf)))
                                snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
                                         *allow ? ", " : "", strcmp(routes[i].info.method, "GET") == 0
                                                                     ? "GET, HEAD" : routes[i].info.method);
                return web_method_not_allowed(k, allow);
        }
        k->arg[0] = arg[0];
        k->arg[1] = arg[1];
        if (rt->flags & R_PUBLIC)
                return rt->fn(k);
        find_session(k);
        if (!k->has_session)
                return web_error(k, 401, "unauthorized", "log in first (POST /api/v1/login)");
        if (!get) {
                const char *csrf = MHD_lookup_connection_value(k->c, MHD_HEADER_KIND, "X-CSRF-Token");

                if (!csrf || !bbt_session_csrf_ok(&k->s, csrf)) {
                        audit(k, "denied", "missing or wrong X-CSRF-Token");
                        return web_error(k, 403, "csrf", "missing or wrong X-CSRF-Token header");
                }
        }
        return rt->fn(k);
}

void web_audit_export(struct web_call *k, const char *what)
{
        web_count(k->w, WEB_EXPORTS);
        audit(k, "export", what);
}

static void client_addr(struct MHD_Connection *c, char *buf, size_t size)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;

        snprintf(buf, size, "-");
        if (sa && sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)size);
        else if (sa && sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                          (socklen_t)size);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
        struct bbt_web *w = cls;
        struct web_req *rq = *req_cls;
        struct web_call k = { .w = w, .c = c, .method = method, .url = url };
        enum MHD_Result ret;

        if (!rq) {
                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                *req_cls = rq;
                return MHD_YES;
        }
        if (*upload_size) {
                if (rq->len + *upload_size > WEB_BODY_MAX) {
                        rq->too_large = true;
                } else if (!rq->too_large) {
                        char *nb = realloc(rq->body, rq->len + *upload_size + 1);

                        if (!nb)
                                return MHD_NO;
                        memcpy(nb + rq->len, upload, *upload_size);
                        rq->len += *upload_size;
                        nb[rq->len] = '\0';
                        rq->body = nb;
                }
                *upload_size = 0;
                return MHD_YES;
        }
        k.rq = rq;
        k.now_ms = web_now_ms();
        client_addr(c, k.addr, sizeof(k.addr));
        web_count(w, WEB_REQUESTS);
        k.world = world_ref(w);
        if (rq->too_large)
                ret = web_error(&k, 413, "too_large", "the request body is larger than %d bytes", WEB_BODY_MAX);
        else if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0)
                ret = api(&k);
        else
                ret = web_static(&k);
        world_unref(w, k.world);
        return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
        struct bbt_web *w = cls;
        struct web_req *rq = *req_cls;

        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
                web_count(w, WEB_ABORTED);
        if (rq) {
                free(rq->body);
                free(rq);
                *req_cls = NULL;
        }
}

static void connection_cb(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
        if (toe == MHD_CONNECTION_NOTIFY_STARTED)
                web_count(cls, WEB_CONNECTIONS);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char line[512];
        size_t n;

        vsnprintf(line, sizeof(line), fmt, ap);
        n = strlen(line);
        while (n > 0 && line[n - 1] == '\n')
                line[--n] = '\0';
        bbt_log_warning("http: %s", line);
}

/* ---- life cycle ---- */

/* A PEM file, whole (at most 1 MiB); a private key readable by others is refused. */
static int read_pem(const char *path, bool secret, char **ret, FILE *errs)
{
        FILE *f;
        char *buf = NULL;
        size_t len = 0;
        int r = secret ? bbt_private_file_check(path, NULL) : 0;

        if (r == -EPERM) {
                fprintf(errs, "%s: readable by other users: chmod 0640 (owner root, group bbt-web)\n", path);
                return r;
        }
        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                fprintf(errs, "%s: %s\n", path, strerror(errno));
                return r;
        }
        buf = malloc(1024 * 1024 + 1);
        if (buf)
                len = fread(buf, 1, 1024 * 1024 + 1, f);
        r = !buf ? -ENOMEM : ferror(f) ? -EIO : len > 1024 * 1024 || len == 0 ? -EINVAL : 0;
        fclose(f);
        if (r < 0) {
                fprintf(errs, "%s: %s\n", path, r == -EINVAL ? "empty or larger than 1 MiB" : strerror(-r));
                free(buf);
                return r;
        }
        buf[len] = '\0';
        *ret = buf;
        return 0;
}

int bbt_web_new(const struct bbt_aggregator_config *cfg, FILE *errs, struct bbt_web **ret)
{
        struct bbt_web *w = calloc(1, sizeof(*w));
        struct bbt_accounts_settings as;
        struct bbt_ingest_settings set;
        char err[1024];
        int r;

        if (!w)
                return -ENOMEM;
        w->cfg = cfg;
        pthread_mutex_init(&w->lock, NULL);
        pthread_mutex_init(&w->acc_lock, NULL);
        pthread_mutex_init(&w->gen_lock, NULL);
        w->started_ms = web_now_ms();
        if (cfg->web_cache_bytes > 0 && !(w->cache = web_cache_new((uint64_t)cfg->web_cache_bytes))) {
                r = -ENOMEM;
                goto fail;
        }
        bbt_aggregator_config_settings(cfg, &set);
        w->metrics = set.metrics;
        w->cap_pool = (size_t)cfg->web_threads;
        w->pool = calloc(w->cap_pool, sizeof(*w->pool));
        if (!w->pool) {
                r = -ENOMEM;
                goto fail;
        }
        r = world_load(w, errs);
        if (r < 0)
                goto fail;
        if (cfg->web_tls_cert) {
                if ((r = read_pem(cfg->web_tls_cert, false, &w->tls_cert, errs)) < 0 ||
                    (r = read_pem(cfg->web_tls_key, true, &w->tls_key, errs)) < 0)
                        goto fail;
                w->tls = true;
        }
        as = (struct bbt_accounts_settings){
                .session_ms = cfg->web_session_ms,
                .login_burst = (int)cfg->web_login_burst,
                .login_refill_ms = cfg->web_login_refill_ms,
                .audit_path = cfg->web_audit_log,
        };
        if (!cfg->web_users) {
                fprintf(errs, "[web] users: not set: bbt-web needs a users file (docs/web.md)\n");
                r = -EINVAL;
                goto fail;
        }
        r = bbt_accounts_open(cfg->web_users, &as, &w->acc, err, sizeof(err));
        if (r < 0) {
                fprintf(errs, "%s\n", err);
                goto fail;
        }
        *ret = w;
        return 0;
fail:
        bbt_web_free(w);
        return r;
}

/* "HOST:PORT" or "[V6]:PORT" into SA. */
static int parse_listen(const char *text, struct sockaddr_storage *sa, socklen_t *len)
{
        char host[64];
        const char *colon;
        char *end;
        long port;

        if (text[0] == '[') {
                const char *close = strchr(text, ']');

                if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
                        return -EINVAL;
                snprintf(host, sizeof(host), "%.*s", (int)(close - text - 1), text + 1);
                colon = close + 1;
        } else {
                colon = strrchr(text, ':');
                if (!colon || (size_t)(colon - text) >= sizeof(host))
                        return -EINVAL;
                snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
        }
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
                return -EINVAL;
        memset(sa, 0, sizeof(*sa));
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *)sa)->sin_addr) == 1) {
                ((struct sockaddr_in *)sa)->sin_family = AF_INET;
                ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
                *len = sizeof(struct sockaddr_in);
                return 0;
        }
        if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)sa)->sin6_addr) == 1) {
                ((struct sockaddr_in6 *)sa)->sin6_family = AF_INET6;
                ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
                *len = sizeof(struct sockaddr_in6);
                return 0;
        }
        return -EINVAL;
}

int bbt_web_listen_check(const char *listen, char *err, size_t err_size)
{
        char *copy = strdup(listen ? listen : ""), *save = NULL;
        size_t n = 0;
        int r = copy ? 0 : -ENOMEM;

        for (char *a = copy ? strtok_r(copy, ", \t", &save) : NULL; r == 0 && a; a = strtok_r(NULL, ", \t", &save)) {
                struct sockaddr_storage sa;
                socklen_t len;

                if (parse_listen(a, &sa, &len) < 0) {
                        snprintf(err, err_size, "[web] listen: %s: expected HOST:PORT or [IPV6]:PORT", a);
                        r = -EINVAL;
                } else if (++n > WEB_LISTEN_MAX) {
                        snprintf(err, err_size, "[web] listen: at most %d addresses", WEB_LISTEN_MAX);
                        r = -EINVAL;
                }
        }
        if (r == 0 && n == 0) {
                snprintf(err, err_size, "[web] listen: no address");
                r = -EINVAL;
        }
        free(copy);
        return r;
}

int bbt_web_start(struct bbt_web *w, char *err, size_t err_size)
{
        char *copy = strdup(w->cfg->web_listen ? w->cfg->web_listen : ""), *save = NULL;
        int r = bbt_web_listen_check(w->cfg->web_listen, err, err_size);

        if (!copy)
                return -ENOMEM;
        for (char *a = r == 0 ? strtok_r(copy, ", \t", &save) : NULL; a; a = strtok_r(NULL, ", \t", &save)) {
                struct sockaddr_storage sa;
                socklen_t len;
                /* Internal polling thread with a pool of workers: each
                 * connection stays on one worker, so a slow report holds
                 * one worker, never the others (docs/ARCHITECTURE.md). */
                unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                                 MHD_USE_TURBO | MHD_USE_ITC; /* ITC: for MHD_quiesce_daemon at the stop */
                const union MHD_DaemonInfo *info;

                parse_listen(a, &sa, &len);
                if (sa.ss_family == AF_INET6)
                        flags |= MHD_USE_IPv6;
                if (w->tls)
                        flags |= MHD_USE_TLS;
                w->mhd[w->n_mhd] = MHD_start_daemon(
                        flags, 0, NULL, NULL, answer, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, w,
                        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)w->cfg->web_threads, MHD_OPTION_CONNECTION_LIMIT,
                        (unsigned)w->cfg->web_max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                        (unsigned)(w->cfg->web_timeout_ms / 1000), MHD_OPTION_NOTIFY_COMPLETED, completed, w,
                        MHD_OPTION_NOTIFY_CONNECTION, connection_cb, w,
                        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                        (size_t)64 * 1024, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
                        w->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, w->tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
                        w->tls_key, MHD_OPTION_END);
                if (!w->mhd[w->n_mhd]) {
                        snprintf(err, err_size, "[web] listen: %s: cannot listen (%s)", a,
                                 errno ? strerror(errno) : "see the log above");
                        r = -EADDRNOTAVAIL;
                        break;
                }
                info = MHD_get_daemon_info(w->mhd[w->n_mhd], MHD_DAEMON_INFO_BIND_PORT);
                bbt_log_notice("listening on %s (port %u, %s, %lld workers)", a, info ? info->port : 0,
                               w->tls ? "https" : "http", w->cfg->web_threads);
                w->n_mhd++;
        }
        free(copy);
        return r;
}

void bbt_web_reload(struct bbt_web *w)
{
        char err[1024];

        if (world_load(w, stderr) < 0) {
                bbt_log_error("SIGHUP: the registry or calendar has problems (above): kept the old ones");
        } else {
                bbt_log_notice("SIGHUP: registry and calendar read again");
                if (w->cache)
                        web_cache_clear(w->cache); /* made with the old ones: never served again */
        }
        pthread_mutex_lock(&w->acc_lock);
        if (bbt_accounts_reload(w->acc, err, sizeof(err)) < 0)
                bbt_log_error("SIGHUP: %s: kept the old users", err);
        else
                bbt_log_notice("SIGHUP: users read again");
        pthread_mutex_unlock(&w->acc_lock);
}

void bbt_web_log_counters(struct bbt_web *w)
{
        char line[1024];
        size_t used = 0;

        for (int i = 0; i < WEB_C__COUNT && used < sizeof(line); i++)
                used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s=%llu", i ? " " : "",
                                         bbt_web_counter_names[i],
                                         (unsigned long long)__atomic_load_n(&w->counters[i], __ATOMIC_RELAXED));
        bbt_log_notice("requests: %s", line);
        if (w->cache) {
                struct web_cache_stats st;

                web_cache_stats(w->cache, &st);
                bbt_log_notice("response cache: hits=%" PRIu64 " stale_hits=%" PRIu64 " misses=%" PRIu64
                               " waits=%" PRIu64 " evictions=%" PRIu64 " too_large=%" PRIu64 " entries=%" PRIu64
                               " bytes=%" PRIu64,
                               st.hits, st.stale, st.misses, st.waits, st.evictions, st.too_large, st.entries,
                               st.bytes);
        }
}

/* Open connections of every listener. */
static unsigned connections(struct bbt_web *w)
{
        unsigned n = 0;

        for (size_t i = 0; i < w->n_mhd; i++) {
                const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->mhd[i], MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

                n += info ? info->num_connections : 0;
        }
        return n;
}

void bbt_web_free(struct bbt_web *w)
{
        if (!w)
                return;
        /* No new connections; those open get up to 3 s to finish their
         * answers (a browser's idle keep-alive ones are closed after it). */
        for (size_t i = 0; i < w->n_mhd; i++) {
                MHD_socket fd = MHD_quiesce_daemon(w->mhd[i]);

                if (fd != MHD_INVALID_SOCKET)
                        close(fd);
        }
        for (int waited = 0; waited < 3000 && connections(w) > 0; waited += 20) {
                struct timespec t = { 0, 20 * 1000000 };

                nanosleep(&t, NULL);
        }
        for (size_t i = 0; i < w->n_mhd; i++)
                MHD_stop_daemon(w->mhd[i]);
        for (size_t i = 0; i < w->n_pool; i++)
                bbt_store_close(w->pool[i]);
        free(w->pool);
        bbt_store_close(w->watch);
        web_cache_free(w->cache);
        world_unref(w, w->world);
        bbt_accounts_free(w->acc);
        if (w->tls_key)
                explicit_bzero(w->tls_key, strlen(w->tls_key));
        free(w->tls_key);
        free(w->tls_cert);
        pthread_mutex_destroy(&w->lock);
        pthread_mutex_destroy(&w->acc_lock);
        pthread_mutex_destroy(&w->gen_lock);
        free(w);
}
