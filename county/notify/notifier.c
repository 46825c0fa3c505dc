/* bbt-notify's loop: new faults and daily digests from the store (read-only), delivered by libcurl's multi interface with retries. */
#include "notifier.h"
#include "bbt/base.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "bbt/fileio.h"
#include "bbt/log.h"
#include "bbt/notify.h"
#include "dates.h"
#include "energy.h"
#include "reports.h"
#include "store.h"

#define STATE_FILE "state.json"

/* A fault bbt-notify has seen, and the targets it still owes it to. */
struct known {
        struct bbt_notify_fault f;
        struct bbt_notify_list pending; /* target names */
};

/* What one target has been sent, as the state file keeps it. */
struct target_state {
        int32_t digest_day;                    /* the last day whose digests were queued */
        int32_t digest_pending_day;            /* the day of those still owed */
        struct bbt_notify_list digest_pending; /* "COUNTY/SCHOOL" */
};

struct counters {
        long long faults_new, messages_sent, faults_sent, digests_sent, attempts_failed, retries;
        long long dropped_gave_up, dropped_rejected, dropped_unbuildable;
};

/* One target's delivery: one message at a time, in order. */
struct sender {
        struct bbt_notify_target *tg;
        struct target_state *ts;
        bool has_msg, digest;
        char *body;
        char **keys; /* faults: the keys the message carries */
        size_t n_keys;
        char digest_school[64];
        int attempts;
        int64_t next_ms;
        CURL *easy;
        struct curl_slist *headers;
        char *resp;
        size_t resp_len;
        char error[CURL_ERROR_SIZE];
        int64_t *sent_at; /* the last rate_limit request times, a ring */
        size_t sent_pos, rate_limit;
};

struct term {
        int64_t id;
        char county[7], school[BBT_ID_MAX + 1], terminal[BBT_ID_MAX + 1];
};

struct bbt_notifier {
        const struct bbt_aggregator_config *cfg;
        struct bbt_notify_targets targets;
        struct target_state *tstate; /* one per target */
        struct sender *senders;
        struct bbt_registry *reg;
        struct bbt_calendar *cal;
        struct bbt_metric_settings ms;
        int offset_min;
        struct bbt_store *store;
        bool store_warned;
        struct term *terms;
        size_t n_terms, cap_terms;
        struct known *known;
        size_t n_known, cap_known;
        bool initialized;
        struct counters c;
        int64_t clock_delta_ms; /* tests only: BBT_NOTIFY_TEST_START */
        CURLM *multi;
        int dirfd;
        bool dirty;
};

/* ---- time ---- */

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const struct bbt_notifier *n)
{
        return wall_ms() + n->clock_delta_ms;
}

/* ---- the state file ---- */

static struct bbt_notify_target *target_named(struct bbt_notifier *n, const char *name, size_t *idx)
{
        for (size_t i = 0; i < n->targets.n; i++)
                if (strcmp(n->targets.v[i].name, name) == 0) {
                        if (idx)
                                *idx = i;
                        return &n->targets.v[i];
                }
        return NULL;
}

static int known_add(struct bbt_notifier *n, const struct bbt_notify_fault *f, struct known **ret)
{
        if (n->n_known == n->cap_known) {
                size_t cap = n->cap_known ? 2 * n->cap_known : 64;
                struct known *v = realloc(n->known, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                n->known = v;
                n->cap_known = cap;
        }
        *ret = &n->known[n->n_known++];
        memset(*ret, 0, sizeof(**ret));
        (*ret)->f = *f;
        return 0;
}

static int cmp_known(const void *a, const void *b)
{
        return strcmp(((const struct known *)a)->f.key, ((const struct known *)b)->f.key);
}

static struct known *known_find(struct bbt_notifier *n, const char *key)
{
        struct known k;

        snprintf(k.f.key, sizeof(k.f.key), "%s", key);
        return n->n_known ? bsearch(&k, n->known, n->n_known, sizeof(k), cmp_known) : NULL;
}

static void str_member(const cJSON *o, const char *name, char *buf, size_t size)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

        snprintf(buf, size, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static long long num_member(const cJSON *o, const char *name)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

        return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

static const char *const counter_names[] = {
        "faults_new",       "messages_sent",    "faults_sent",         "digests_sent", "attempts_failed", "retries",
        "dropped_gave_up", "dropped_rejected", "dropped_unbuildable",
};

static long long *counter_at(struct counters *c, size_t i)
{
        return &((long long *)c)[i];
}

/* Reads PATH into N (known faults, target states, counters). A missing file
 * is a first start. Returns 0 or a negative errno with ERR. */
static int state_load(struct bbt_notifier *n, const char *dir, char *err, size_t err_size)
{
        char path[1024];
        char *text;
        cJSON *root, *faults, *targets, *counters, *it;
        FILE *fp;
        long len;

        snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
        fp = fopen(path, "re");
        if (!fp) {
                if (errno == ENOENT)
                        return 0;
                snprintf(err, err_size, "%.900s: %s", path, strerror(errno));
                return -errno;
        }
        fseek(fp, 0, SEEK_END);
        len = ftell(fp);
        rewind(fp);
        text = len >= 0 ? malloc((size_t)len + 1) : NULL;
        if (!text || fread(text, 1, (size_t)len, fp) != (size_t)len) {
                fclose(fp);
                free(text);
                snprintf(err, err_size, "%.900s: cannot read it", path);
                return -EIO;
        }
        fclose(fp);
        text[len] = '\0';
        root = cJSON_Parse(text);
        free(text);
        if (!cJSON_IsObject(root) || num_member(root, "version") != 1) {
                cJSON_Delete(root);
                snprintf(err, err_size,
                         "%.900s: not a bbt-notify state file of version 1 (move it away to start afresh: what it owed "
                         "is then not sent)",
                         path);
                return -EINVAL;
        }
        n->initialized = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "initialized"));
        counters = cJSON_GetObjectItemCaseSensitive(root, "counters");
        for (size_t i = 0; i < BBT_ELEMENTSOF(counter_names); i++)
                *counter_at(&n->c, i) = num_member(counters, counter_names[i]);
        faults = cJSON_GetObjectItemCaseSensitive(root, "faults");
        cJSON_ArrayForEach(it, faults)
        {
                struct bbt_notify_fault f = { .raised_ms = 0 };
                struct known *k;
                const cJSON *p;
                char sev[16];

                str_member(it, "key", f.key, sizeof(f.key));
                str_member(it, "county", f.county, sizeof(f.county));
                str_member(it, "school", f.school, sizeof(f.school));
                str_member(it, "terminal", f.terminal, sizeof(f.terminal));
                str_member(it, "code", f.code, sizeof(f.code));
                str_member(it, "source", f.source, sizeof(f.source));
                str_member(it, "detail", f.detail, sizeof(f.detail));
                str_member(it, "severity", sev, sizeof(sev));
                f.severity = strcmp(sev, "error") == 0 ? BBT_SEVERITY_ERROR : BBT_SEVERITY_WARNING;
                f.raised_ms = num_member(it, "raised_ms");
                if (!*f.key || known_add(n, &f, &k) < 0)
                        continue;
                cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "pending"))
                {
                        /* A target no longer configured is owed nothing. */
                        if (cJSON_IsString(p) && target_named(n, p->valuestring, NULL))
                                bbt_notify_list_add(&k->pending, p->valuestring);
                }
        }
        if (n->n_known)
                qsort(n->known, n->n_known, sizeof(*n->known), cmp_known);
        targets = cJSON_GetObjectItemCaseSensitive(root, "targets");
        cJSON_ArrayForEach(it, targets)
        {
                size_t i;
                const cJSON *p;

                if (!target_named(n, it->string, &i))
                        continue;
                n->tstate[i].digest_day = (int32_t)num_member(it, "digest_day");
                n->tstate[i].digest_pending_day = (int32_t)num_member(it, "digest_pending_day");
                cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(it, "digest_pending"))
                {
                        if (cJSON_IsString(p))
                                bbt_notify_list_add(&n->tstate[i].digest_pending, p->valuestring);
                }
        }
        cJSON_Delete(root);
        return 0;
}

static cJSON *list_json(const struct bbt_notify_list *l)
{
        cJSON *a = cJSON_CreateArray();

        for (size_t i = 0; a && i < l->n; i++)
                cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
        return a;
}

/* Writes the state file atomically (a crash leaves the old or the new one). */
static int state_save(struct bbt_notifier *n)
{
        cJSON *root = cJSON_CreateObject(), *faults, *targets, *counters;
        char *text = NULL;
        int r = -ENOMEM;

        if (!root)
                return -ENOMEM;
        cJSON_AddNumberToObject(root, "version", 1);
        cJSON_AddBoolToObject(root, "initialized", n->initialized);
        counters = cJSON_AddObjectToObject(root, "counters");
        for (size_t i = 0; counters && i < BBT_ELEMENTSOF(counter_names); i++)
                cJSON_AddNumberToObject(counters, counter_names[i], (double)*counter_at(&n->c, i));
        faults = cJSON_AddArrayToObject(root, "faults");
        for (size_t i = 0; faults && i < n->n_known; i++) {
                const struct bbt_notify_fault *f = &n->known[i].f;
                cJSON *o = cJSON_CreateObject();

                if (!o)
                        goto out;
                cJSON_AddStringToObject(o, "key", f->key);
                cJSON_AddStringToObject(o, "county", f->county);
                cJSON_AddStringToObject(o, "school", f->school);
                cJSON_AddStringToObject(o, "terminal", f->terminal);
                cJSON_AddStringToObject(o, "code", f->code);
                cJSON_AddStringToObject(o, "source", f->source);
                cJSON_AddStringToObject(o, "severity", f->severity == BBT_SEVERITY_ERROR ? "error" : "warning");
                cJSON_AddNumberToObject(o, "raised_ms", (double)f->raised_ms);
                cJSON_AddStringToObject(o, "detail", f->detail);
                cJSON_AddItemToObject(o, "pending", list_json(&n->known[i].pending));
                cJSON_AddItemToArray(faults, o);
        }
        targets = cJSON_AddObjectToObject(root, "targets");
        for (size_t i = 0; targets && i < n->targets.n; i++) {
                cJSON *o = cJSON_AddObjectToObject(targets, n->targets.v[i].name);

                if (!o)
                        goto out;
                cJSON_AddNumberToObject(o, "digest_day", n->tstate[i].digest_day);
                cJSON_AddNumberToObject(o, "digest_pending_day", n->tstate[i].digest_pending_day);
                cJSON_AddItemToObject(o, "digest_pending", list_json(&n->tstate[i].digest_pending));
        }
        text = cJSON_Print(root);
        if (!text)
                goto out;
        r = bbt_atomic_replace(n->dirfd, STATE_FILE ".tmp", STATE_FILE, text, strlen(text));
        if (r < 0)
                bbt_log_error("%s/%s: cannot write it (%s): what was sent may be sent again after a restart; check "
                              "the disk and the directory's owner (bbt-notify)",
                              n->cfg->notify_state_dir, STATE_FILE, strerror(-r));
        else
                n->dirty = false;
out:
        free(text);
        cJSON_Delete(root);
        return r;
}

/* ---- the store ---- */

static bool store_ready(struct bbt_notifier *n)
{
        char err[512];
        int r;

        if (n->store)
                return true;
        r = bbt_store_open(n->cfg->store_path, true, &n->store, err, sizeof(err));
        if (r < 0) {
                if (!n->store_warned)
                        bbt_log_warning("store %s: %s; nothing to announce until bbt-aggregator has made it "
                                        "(trying again every poll)",
                                        n->cfg->store_path, err);
                n->store_warned = true;
                n->store = NULL;
                return false;
        }
        if (n->store_warned)
                bbt_log_notice("store %s: open", n->cfg->store_path);
        n->store_warned = false;
        return true;
}

static void store_failed(struct bbt_notifier *n, const char *what, int r)
{
        bbt_log_warning("store %s: %s: %s (%s); reopening at the next poll", n->cfg->store_path, what,
                        bbt_store_error(n->store), strerror(-r));
        bbt_store_close(n->store);
        n->store = NULL;
}

static int term_cb(void *u, const struct bbt_store_terminal_brief *t)
{
        struct bbt_notifier *n = u;

        if (n->n_terms == n->cap_terms) {
                size_t cap = n->cap_terms ? 2 * n->cap_terms : 256;
                struct term *v = realloc(n->terms, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                n->terms = v;
                n->cap_terms = cap;
        }
        n->terms[n->n_terms].id = t->id;
        memcpy(n->terms[n->n_terms].county, t->county, sizeof(t->county));
        memcpy(n->terms[n->n_terms].school, t->school, sizeof(t->school));
        memcpy(n->terms[n->n_terms].terminal, t->terminal, sizeof(t->terminal));
        n->n_terms++;
        return 0;
}

static int cmp_term(const void *a, const void *b)
{
        int64_t x = ((const struct term *)a)->id, y = ((const struct term *)b)->id;

        return x < y ? -1 : x > y;
}

static const struct term *term_find(struct bbt_notifier *n, int64_t id)
{
        struct term k = { .id = id };

        return n->n_terms ? bsearch(&k, n->terms, n->n_terms, sizeof(k), cmp_term) : NULL;
}

struct scan {
        struct bbt_notifier *n;
        int64_t since_ms;
        size_t n_before; /* known entries before this scan (sorted) */
};

static int fault_cb(void *u, const struct bbt_store_fault *sf)
{
        struct scan *sc = u;
        struct bbt_notifier *n = sc->n;
        const struct term *t = term_find(n, sf->terminal_id);
        struct bbt_notify_fault f = { .severity = sf->severity, .raised_ms = sf->raised_ms };
        const struct bbt_school *reg;
        struct known *k, key;

        /* Announced: faults open when seen, raised within the lookback. */
        if (!t || sf->cleared_ms != 0 || sf->raised_ms < sc->since_ms)
                return 0;
        snprintf(f.key, sizeof(f.key), "%s/%s/%s/%s/%s/%lld", t->county, t->school, t->terminal, sf->code,
                 sf->source, (long long)sf->raised_ms);
        key.f = f;
        if (sc->n_before && bsearch(&key, n->known, sc->n_before, sizeof(key), cmp_known))
                return 0;
        for (size_t i = sc->n_before; i < n->n_known; i++)
                if (strcmp(n->known[i].f.key, f.key) == 0)
                        return 0;
        memcpy(f.county, t->county, sizeof(f.county));
        memcpy(f.school, t->school, sizeof(f.school));
        memcpy(f.terminal, t->terminal, sizeof(f.terminal));
        snprintf(f.code, sizeof(f.code), "%s", sf->code);
        snprintf(f.source, sizeof(f.source), "%s", sf->source);
        snprintf(f.detail, sizeof(f.detail), "%s", sf->detail);
        if (known_add(n, &f, &k) < 0)
                return -ENOMEM;
        n->dirty = true;
        if (!n->initialized)
                return 0; /* the first start: what is open already is not news */
        n->c.faults_new++;
        reg = bbt_registry_school(n->reg, f.school);
        if (reg && strcmp(reg->county, f.county) != 0)
                reg = NULL;
        for (size_t i = 0; i < n->targets.n; i++) {
                const struct bbt_notify_target *tg = &n->targets.v[i];

                if ((tg->events & BBT_NOTIFY_FAULTS) && f.severity >= tg->min_severity &&
                    bbt_notify_target_covers(tg, f.county, f.school, reg) && bbt_notify_list_add(&k->pending, tg->name) < 0)
                        return -ENOMEM;
        }
        bbt_log_info("new fault %s (%s) for %zu target(s)", f.key, f.severity == BBT_SEVERITY_ERROR ? "error" : "warning",
                     k->pending.n);
        return 0;
}

/* The known faults nobody is owed that can no longer come back as new. */
static void known_prune(struct bbt_notifier *n, int64_t since_ms)
{
        size_t j = 0;

        for (size_t i = 0; i < n->n_known; i++) {
                if (n->known[i].pending.n == 0 && n->known[i].f.raised_ms < since_ms) {
                        n->dirty = true;
                        continue;
                }
                n->known[j++] = n->known[i];
        }
        n->n_known = j;
}

static void scan_faults(struct bbt_notifier *n, int64_t now)
{
        struct bbt_store_scope scope = BBT_STORE_SCOPE_ALL;
        struct scan sc = { n, now - n->cfg->notify_lookback_ms, 0 };
        int r;

        n->n_terms = 0;
        r = bbt_store_terminals_brief_each_in(n->store, &scope, term_cb, n);
        if (r < 0) {
                store_failed(n, "terminals", r);
                return;
        }
        if (n->n_terms)
                qsort(n->terms, n->n_terms, sizeof(*n->terms), cmp_term);
        known_prune(n, sc.since_ms);
        sc.n_before = n->n_known;
        scope.since_ms = sc.since_ms;
        r = bbt_store_faults_each_in(n->store, &scope, fault_cb, &sc);
        if (n->n_known)
                qsort(n->known, n->n_known, sizeof(*n->known), cmp_known);
        if (r < 0) {
                store_failed(n, "faults", r);
                return;
        }
        if (!n->initialized) {
                bbt_log_notice("first start: %zu fault(s) open now are taken as known; faults raised from now on "
                               "are announced",
                               n->n_known);
                n->initialized = true;
                n->dirty = true;
        }
}

/* ---- digests ---- */

static int digest_add_school(struct target_state *ts, const char *county, const char *school)
{
        char key[64];

        snprintf(key, sizeof(key), "%s/%s", county, school);
        return bbt_notify_list_has(&ts->digest_pending, key) ? 0 : bbt_notify_list_add(&ts->digest_pending, key);
}

/* At each target's digest time, queue a digest for every school it covers:
 * the registry's, and those only the store knows. */
static void schedule_digests(struct bbt_notifier *n, int64_t now)
{
        int32_t today = bbt_day_of_ms(now, n->offset_min);
        int64_t minute = (now - bbt_day_start_ms(today, n->offset_min)) / BBT_MS_PER_MIN;

        for (size_t i = 0; i < n->targets.n; i++) {
                struct bbt_notify_target *tg = &n->targets.v[i];
                struct target_state *ts = &n->tstate[i];
                size_t before;

                if (!(tg->events & BBT_NOTIFY_DIGEST))
                        continue;
                if (ts->digest_day == 0) {
                        /* First start: from the next digest time on. */
                        ts->digest_day = minute >= tg->digest_min ? today : today - 1;
                        n->dirty = true;
                        continue;
                }
                if (ts->digest_day >= today || minute < tg->digest_min)
                        continue;
                if (ts->digest_pending.n)
                        bbt_log_warning("target %s: %zu digest(s) of %d not sent before the next day's; dropped",
                                        tg->name, ts->digest_pending.n, ts->digest_pending_day);
                n->c.dropped_gave_up += (long long)ts->digest_pending.n;
                bbt_notify_list_clear(&ts->digest_pending);
                for (size_t s = 0; s < n->reg->n_schools; s++) {
                        const struct bbt_school *sch = &n->reg->schools[s];

                        if (bbt_notify_target_covers(tg, sch->county, sch->code, sch))
                                digest_add_school(ts, sch->county, sch->code);
                }
                for (size_t t = 0; t < n->n_terms; t++) {
                        const struct bbt_school *sch = bbt_registry_school(n->reg, n->terms[t].school);

                        if (!(sch && strcmp(sch->county, n->terms[t].county) == 0) &&
                            bbt_notify_target_covers(tg, n->terms[t].county, n->terms[t].school, NULL))
                                digest_add_school(ts, n->terms[t].county, n->terms[t].school);
                }
                before = ts->digest_pending.n;
                ts->digest_day = today;
                ts->digest_pending_day = today;
                n->dirty = true;
                bbt_log_info("target %s: %zu daily digest(s) of today queued", tg->name, before);
        }
}

static const struct bbt_table *doc_table(const struct bbt_document *doc, const char *key)
{
        for (size_t i = 0; i < doc->n_tables; i++)
                if (strcmp(doc->tables[i]->key, key) == 0)
                        return doc->tables[i];
        return NULL;
}

static const char *cell_text(const struct bbt_table *t, size_t row, size_t col)
{
        const struct bbt_cell *c = bbt_table_cell(t, row, col);

        if (c->kind == BBT_VALUE_TEXT)
                return c->v.text;
        if (c->kind == BBT_VALUE_CODE)
                return c->v.code.code;
        return NULL;
}

static int64_t cell_int(const struct bbt_table *t, size_t row, size_t col)
{
        const struct bbt_cell *c = bbt_table_cell(t, row, col);

        return c->kind == BBT_VALUE_INT ? c->v.i : c->kind == BBT_VALUE_TIME ? c->v.time.ms : 0;
}

/* One report of the school, as bbt-report KIND would make it. */
static int school_report(struct bbt_notifier *n, const struct bbt_notify_target *tg, const char *kind,
                         const char *county, const char *school, int32_t to, int64_t now, struct bbt_document **doc)
{
        struct bbt_report_options o = { .kind = bbt_report_kind_find(kind), .county = county, .school = school,
                                        .chinese = tg->chinese, .now_ms = now, .store_label = "bbt-notify" };
        const char *bad;
        char err[512];
        int r = bbt_report_options_range(&o, NULL, NULL, NULL, to, "", &bad, err, sizeof(err));

        if (r == 0)
                r = bbt_report_build(&o, n->store, n->reg, n->cal, &n->ms, doc, err, sizeof(err));
        if (r < 0)
                bbt_log_warning("digest of %s/%s: the %s report: %s", county, school, kind, err);
        return r;
}

struct nights {
        struct bbt_notifier *n;
        struct bbt_notify_left_on *v;
        size_t len, cap;
};

static int night_cb(void *u, const struct bbt_energy_terminal *t)
{
        struct nights *ns = u;
        const struct bbt_terminal_entry *te;
        const struct bbt_school *sch;
        struct bbt_notify_left_on *x;

        if (t->nights_on <= 0)
                return 0;
        if (ns->len == ns->cap) {
                size_t cap = ns->cap ? 2 * ns->cap : 16;
                struct bbt_notify_left_on *v = realloc(ns->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                ns->v = v;
                ns->cap = cap;
        }
        /* The names outlive the callback: the registry's, or the terminal list's. */
        x = &ns->v[ns->len++];
        sch = bbt_registry_school(ns->n->reg, t->school);
        te = sch && strcmp(sch->county, t->county) == 0 ? bbt_registry_terminal(ns->n->reg, t->school, t->terminal)
                                                       : NULL;
        x->room = te ? te->room : NULL;
        x->terminal = te ? te->id : NULL;
        for (size_t i = 0; !x->terminal && i < ns->n->n_terms; i++)
                if (ns->n->terms[i].id == t->terminal_id)
                        x->terminal = ns->n->terms[i].terminal;
        if (!x->terminal)
                ns->len--; /* a terminal newer than the last poll: the next digest has it */
        return 0;
}

/* The terminals of the school on at some time of the night of DAY - 1
 * (bbt_energy_each, the energy report's nights left on). */
static int left_on(struct bbt_notifier *n, const char *county, const char *school, int32_t day, struct nights *ret)
{
        struct bbt_energy_rules rules = { .cal = n->cal, .margin_min = n->ms.margin_min, .offset_min = n->offset_min,
                                          .night_start_min = n->ms.night_start_min,
                                          .night_end_min = n->ms.night_end_min };
        struct bbt_store_scope scope = { .county = county, .school = school, .from_day = day - 1, .to_day = day - 1,
                                         .since_ms = INT64_MIN, .until_ms = INT64_MAX };
        int r;

        ret->n = n;
        r = bbt_energy_each(n->store, &rules, &scope, night_cb, ret);
        if (r < 0)
                bbt_log_warning("digest of %s/%s: the nights left on: %s", county, school,
                                r == -ENOMEM ? strerror(ENOMEM) : bbt_store_error(n->store));
        return r;
}

/* The digest of school KEY ("COUNTY/SCHOOL") of DAY for TG: the idle report up
 * to yesterday, the terminals left on last night, and the faults open now
 * (the faults report of today). */
static int digest_body(struct bbt_notifier *n, const struct bbt_notify_target *tg, const char *key, int32_t day,
                       int64_t now, char **ret)
{
        struct bbt_notify_digest d = { .day = day, .idle_to = day - 1 };
        struct bbt_document *idle_doc = NULL, *fault_doc = NULL;
        struct bbt_notify_idle *idle = NULL;
        struct bbt_notify_fault *open = NULL;
        struct nights nights = { .len = 0 };
        const struct bbt_school *sch;
        const struct bbt_table *t;
        const char *slash = strchr(key, '/');
        int r;

        if (!slash || slash - key != 6)
                return -EINVAL;
        memcpy(d.county, key, 6);
        snprintf(d.school, sizeof(d.school), "%s", slash + 1);
        sch = bbt_registry_school(n->reg, d.school);
        if (sch && strcmp(sch->county, d.county) == 0) {
                d.school_name = sch->name;
                d.township = sch->township;
        }
        r = school_report(n, tg, "idle", d.county, d.school, day - 1, now, &idle_doc);
        if (r == 0)
                r = school_report(n, tg, "faults", d.county, d.school, day, now, &fault_doc);
        if (r == 0)
                r = left_on(n, d.county, d.school, day, &nights);
        if (r < 0)
                goto out;
        t = doc_table(idle_doc, "idle");
        idle = calloc(t && t->n_rows ? t->n_rows : 1, sizeof(*idle));
        for (size_t i = 0; idle && t && i < t->n_rows; i++) {
                const struct bbt_cell *reason = bbt_table_cell(t, i, 7);

                idle[d.n_idle++] = (struct bbt_notify_idle){
                        .terminal = cell_text(t, i, 2),
                        .room = cell_text(t, i, 3),
                        .used_days = cell_int(t, i, 4),
                        .last_active_ms = cell_int(t, i, 5),
                        .reason = reason->kind == BBT_VALUE_CODE ? reason->v.code.code : "",
                        .reason_label = reason->kind == BBT_VALUE_CODE ? reason->v.code.label : "",
                };
        }
        t = doc_table(fault_doc, "faults");
        open = calloc(t && t->n_rows ? t->n_rows : 1, sizeof(*open));
        for (size_t i = 0; open && t && i < t->n_rows; i++) {
                struct bbt_notify_fault *f;
                const char *s;

                if (bbt_table_cell(t, i, 8)->kind != BBT_VALUE_EMPTY)
                        continue; /* cleared */
                f = &open[d.n_open++];
                memcpy(f->county, d.county, sizeof(f->county));
                memcpy(f->school, d.school, sizeof(f->school));
                snprintf(f->terminal, sizeof(f->terminal), "%s", cell_text(t, i, 2));
                f->room = cell_text(t, i, 3);
                f->school_name = d.school_name;
                f->township = d.township;
                snprintf(f->code, sizeof(f->code), "%s", (s = cell_text(t, i, 4)) ? s : "");
                s = cell_text(t, i, 5);
                f->severity = s && strcmp(s, "error") == 0 ? BBT_SEVERITY_ERROR : BBT_SEVERITY_WARNING;
                snprintf(f->source, sizeof(f->source), "%s", (s = cell_text(t, i, 6)) ? s : "");
                f->raised_ms = cell_int(t, i, 7);
                snprintf(f->detail, sizeof(f->detail), "%s", (s = cell_text(t, i, 9)) ? s : "");
        }
        d.idle = idle;
        d.open = open;
        d.left_on = nights.v;
        d.n_left_on = nights.len;
        r = idle && open ? 0 : -ENOMEM;
        if (r == 0 && !(*ret = bbt_notify_body_digest(tg, &d, n->offset_min, now)))
                r = -ENOMEM;
out:
        free(idle);
        free(open);
        free(nights.v);
        bbt_document_free(idle_doc);
        bbt_document_free(fault_doc);
        return r;
}

/* ---- delivery ---- */

static void sender_reset(struct sender *s)
{
        for (size_t i = 0; i < s->n_keys; i++)
                free(s->keys[i]);
        free(s->keys);
        s->keys = NULL;
        s->n_keys = 0;
        free(s->body);
        s->body = NULL;
        s->has_msg = false;
        s->digest = false;
        s->attempts = 0;
        s->next_ms = 0;
}

static int cmp_raised(const void *a, const void *b)
{
        const struct known *x = *(const struct known *const *)a, *y = *(const struct known *const *)b;

        return x->f.raised_ms < y->f.raised_ms ? -1 : x->f.raised_ms > y->f.raised_ms ? 1 : strcmp(x->f.key, y->f.key);
}

/* The next message of S: the oldest faults owed to its target (batch_max at
 * most), else the next digest. Returns 0 (S->has_msg says whether there is one). */
static int sender_next(struct bbt_notifier *n, struct sender *s, int64_t now)
{
        struct known **owed = NULL;
        struct bbt_notify_fault *f = NULL;
        size_t n_owed = 0, take;
        int r = -ENOMEM;

        for (size_t i = 0; i < n->n_known; i++)
                n_owed += bbt_notify_list_has(&n->known[i].pending, s->tg->name);
        if (n_owed) {
                owed = malloc(n_owed * sizeof(*owed));
                if (!owed)
                        return -ENOMEM;
                n_owed = 0;
                for (size_t i = 0; i < n->n_known; i++)
                        if (bbt_notify_list_has(&n->known[i].pending, s->tg->name))
                                owed[n_owed++] = &n->known[i];
                qsort(owed, n_owed, sizeof(*owed), cmp_raised);
                take = n_owed < (size_t)n->cfg->notify_batch_max ? n_owed : (size_t)n->cfg->notify_batch_max;
                f = calloc(take, sizeof(*f));
                s->keys = calloc(take, sizeof(*s->keys));
                if (!f || !s->keys)
                        goto out;
                for (size_t i = 0; i < take; i++) {
                        const struct bbt_school *sch = bbt_registry_school(n->reg, owed[i]->f.school);
                        const struct bbt_terminal_entry *te =
                                bbt_registry_terminal(n->reg, owed[i]->f.school, owed[i]->f.terminal);

                        f[i] = owed[i]->f;
                        if (sch && strcmp(sch->county, f[i].county) == 0) {
                                f[i].school_name = sch->name;
                                f[i].township = sch->township;
                                f[i].room = te ? te->room : NULL;
                        }
                        if (!(s->keys[i] = strdup(f[i].key)))
                                goto out;
                        s->n_keys++;
                }
                if (!(s->body = bbt_notify_body_faults(s->tg, f, take, n->offset_min, now)))
                        goto out;
                s->has_msg = true;
                r = 0;
                goto out;
        }
        while (s->ts->digest_pending.n && !s->has_msg) {
                const char *key = s->ts->digest_pending.v[0];

                if (!store_ready(n))
                        return 0;
                r = digest_body(n, s->tg, key, s->ts->digest_pending_day, now, &s->body);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        bbt_log_error("target %s: the digest of %s cannot be made; dropped", s->tg->name, key);
                        n->c.dropped_unbuildable++;
                        bbt_notify_list_remove(&s->ts->digest_pending, key);
                        n->dirty = true;
                        continue;
                }
                snprintf(s->digest_school, sizeof(s->digest_school), "%s", key);
                s->digest = true;
                s->has_msg = true;
        }
        return 0;
out:
        if (r < 0)
                sender_reset(s);
        free(f);
        free(owed);
        return r;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *u)
{
        struct sender *s = u;
        size_t len = size * nmemb;
        char *v;

        if (s->resp_len + len > 65536)
                return len; /* enough of it to read an error */
        v = realloc(s->resp, s->resp_len + len + 1);
        if (!v)
                return 0;
        s->resp = v;
        memcpy(s->resp + s->resp_len, ptr, len);
        s->resp_len += len;
        s->resp[s->resp_len] = '\0';
        return len;
}

/* The URL of this attempt: a DingTalk robot with a secret is signed (a fresh
 * timestamp each time: DingTalk refuses one an hour old). */
static char *attempt_url(struct bbt_notifier *n, struct sender *s, int64_t now)
{
        char sign[128], *url, *esc;
        size_t len;

        if (s->tg->format != BBT_NOTIFY_DINGTALK || !s->tg->secret)
                return strdup(s->tg->url);
        if (bbt_notify_dingtalk_sign(s->tg->secret, now, sign, sizeof(sign)) < 0)
                return NULL;
        esc = curl_easy_escape(s->easy, sign, 0);
        if (!esc)
                return NULL;
        len = strlen(s->tg->url) + strlen(esc) + 64;
        url = malloc(len);
        if (url)
                snprintf(url, len, "%s%ctimestamp=%lld&sign=%s", s->tg->url, strchr(s->tg->url, '?') ? '&' : '?',
                         (long long)now, esc);
        curl_free(esc);
        (void)n;
        return url;
}

static int sender_start(struct bbt_notifier *n, struct sender *s, int64_t now)
{
        char *url;

        s->easy = curl_easy_init();
        if (!s->easy)
                return -ENOMEM;
        url = attempt_url(n, s, now);
        if (!url) {
                curl_easy_cleanup(s->easy);
                s->easy = NULL;
                return -ENOMEM;
        }
        s->headers = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
        if (s->tg->token) {
                char auth[600];

                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->tg->token);
                s->headers = curl_slist_append(s->headers, auth);
                explicit_bzero(auth, sizeof(auth));
        }
        s->resp_len = 0;
        s->error[0] = '\0';
        curl_easy_setopt(s->easy, CURLOPT_URL, url);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)n->cfg->notify_timeout_ms);
        curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)n->cfg->notify_timeout_ms);
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string form; the bit mask is deprecated */
        curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "bbt-notify/" BBT_VERSION);
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->error);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        curl_multi_add_handle(n->multi, s->easy);
        /* curl copies the URL; the signed one is not kept. */
        explicit_bzero(url, strlen(url));
        free(url);
        s->sent_at[s->sent_pos] = now;
        s->sent_pos = (s->sent_pos + 1) % s->rate_limit;
        s->attempts++;
        return 0;
}

static void sender_done_ok(struct bbt_notifier *n, struct sender *s)
{
        n->c.messages_sent++;
        if (s->digest) {
                n->c.digests_sent++;
                bbt_notify_list_remove(&s->ts->digest_pending, s->digest_school);
                bbt_log_info("target %s: digest of %s sent (attempt %d)", s->tg->name, s->digest_school,
                             s->attempts);
        } else {
                n->c.faults_sent += (long long)s->n_keys;
                for (size_t i = 0; i < s->n_keys; i++) {
                        struct known *k = known_find(n, s->keys[i]);

                        if (k)
                                bbt_notify_list_remove(&k->pending, s->tg->name);
                }
                bbt_log_info("target %s: %zu fault(s) sent (attempt %d)", s->tg->name, s->n_keys, s->attempts);
        }
        n->dirty = true;
        sender_reset(s);
}

/* Drops the message: it is not owed any more. */
static void sender_drop(struct bbt_notifier *n, struct sender *s, bool rejected)
{
        if (rejected)
                n->c.dropped_rejected++;
        else
                n->c.dropped_gave_up++;
        if (s->digest) {
                bbt_notify_list_remove(&s->ts->digest_pending, s->digest_school);
        } else {
                for (size_t i = 0; i < s->n_keys; i++) {
                        struct known *k = known_find(n, s->keys[i]);

                        if (k)
                                bbt_notify_list_remove(&k->pending, s->tg->name);
                }
        }
        bbt_log_error("target %s: %s dropped after %d attempt(s)%s", s->tg->name,
                      s->digest ? "a digest" : "a fault message", s->attempts,
                      rejected ? ": the receiver refused it (a 4xx answer); check the target's URL and format"
                               : ": check that the receiver is up and reachable, and its URL in the secrets file");
        n->dirty = true;
        sender_reset(s);
}

static uint64_t random_u64(void)
{
        uint64_t v = 0;

        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
                v = (uint64_t)wall_ms() * 6364136223846793005ull;
        return v;
}

/* The wait before retry number A (1, 2, ...): retry_initial doubled each
 * time up to retry_max, half of it fixed and half random (jitter: many
 * targets failing at once do not come back at once). */
static int64_t backoff_ms(const struct bbt_notifier *n, int a)
{
        int64_t d = n->cfg->notify_retry_initial_ms;

        for (int i = 1; i < a && d < n->cfg->notify_retry_max_ms; i++)
                d *= 2;
        if (d > n->cfg->notify_retry_max_ms)
                d = n->cfg->notify_retry_max_ms;
        return d / 2 + (int64_t)(random_u64() % (uint64_t)(d / 2 + 1));
}

/* What the answer says: 0 delivered, 1 try again, 2 refused for good; WHY
 * gets a short reason for the log. */
static int judge(struct sender *s, CURLcode rc, long status, char *why, size_t size)
{
        cJSON *j;
        int verdict = 0;

        if (rc != CURLE_OK) {
                snprintf(why, size, "%s", s->error[0] ? s->error : curl_easy_strerror(rc));
                return 1;
        }
        if (status < 200 || status >= 300) {
                snprintf(why, size, "HTTP %ld", status);
                return status >= 400 && status < 500 && status != 408 && status != 429 ? 2 : 1;
        }
        if (s->tg->format == BBT_NOTIFY_JSON)
                return 0;
        /* The robots answer 200 with {"errcode":N,"errmsg":...}: 0 is delivered. */
        j = s->resp ? cJSON_ParseWithLength(s->resp, s->resp_len) : NULL;
        if (j) {
                const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "errcode");
                const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "errmsg");

                if (cJSON_IsNumber(code) && code->valueint != 0) {
                        snprintf(why, size, "errcode %d (%s)", code->valueint,
                                 cJSON_IsString(msg) ? msg->valuestring : "");
                        verdict = 1;
                }
        }
        cJSON_Delete(j);
        return verdict;
}

static void sender_finished(struct bbt_notifier *n, struct sender *s, CURLcode rc, int64_t now)
{
        long status = 0;
        char why[CURL_ERROR_SIZE + 64];
        int verdict;

        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        verdict = judge(s, rc, status, why, sizeof(why));
        curl_multi_remove_handle(n->multi, s->easy);
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
        curl_slist_free_all(s->headers);
        s->headers = NULL;
        if (verdict == 0) {
                sender_done_ok(n, s);
                return;
        }
        n->c.attempts_failed++;
        if (verdict == 2 || s->attempts > n->cfg->notify_retry_attempts) {
                bbt_log_warning("target %s: attempt %d failed: %s", s->tg->name, s->attempts, why);
                sender_drop(n, s, verdict == 2);
                return;
        }
        n->c.retries++;
        s->next_ms = now + backoff_ms(n, s->attempts);
        bbt_log_warning("target %s: attempt %d failed: %s; retry %d of %lld in %.1f s", s->tg->name, s->attempts,
                        why, s->attempts, n->cfg->notify_retry_attempts, (double)(s->next_ms - now) / 1000);
}

/* The earliest time S may send again under the rate limit. */
static int64_t rate_ok_at(const struct bbt_notifier *n, const struct sender *s)
{
        int64_t oldest = s->sent_at[s->sent_pos]; /* the ring's oldest entry (0: not full) */

        return oldest ? oldest + 60000 : 0;
        (void)n;
}

static void log_counters(const struct bbt_notifier *n)
{
        size_t owed = 0, digests = 0;

        for (size_t i = 0; i < n->n_known; i++)
                owed += n->known[i].pending.n;
        for (size_t i = 0; i < n->targets.n; i++)
                digests += n->tstate[i].digest_pending.n;
        bbt_log_notice("stats: faults_new=%lld messages_sent=%lld faults_sent=%lld digests_sent=%lld "
                       "attempts_failed=%lld retries=%lld dropped_gave_up=%lld dropped_rejected=%lld "
                       "dropped_unbuildable=%lld owed_faults=%zu owed_digests=%zu",
                       n->c.faults_new, n->c.messages_sent, n->c.faults_sent, n->c.digests_sent, n->c.attempts_failed,
                       n->c.retries, n->c.dropped_gave_up, n->c.dropped_rejected, n->c.dropped_unbuildable, owed,
                       digests);
}

int bbt_notifier_run(struct bbt_notifier *n)
{
        sigset_t set;
        int sfd;
        int64_t next_poll = 0, next_stats;
        bool stop = false;

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGUSR1);
        sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                return -errno;
        next_stats = now_ms(n) + n->cfg->notify_stats_ms;
        bbt_log_notice("started: %zu target(s), store %s, state %s/%s", n->targets.n, n->cfg->store_path,
                       n->cfg->notify_state_dir, STATE_FILE);
        if (n->targets.n == 0)
                bbt_log_warning("no targets in %s: nothing will be sent (docs/notifications.md says how to add one)",
                                n->cfg->notify_targets);
        bbt_notify("READY=1\nSTATUS=watching the store");
        while (!stop) {
                int64_t now = now_ms(n), wake = now + 1000;
                struct curl_waitfd wfd = { .fd = sfd, .events = CURL_WAIT_POLLIN };
                struct signalfd_siginfo si;
                CURLMsg *m;
                int running, left;

                if (now >= next_poll) {
                        if (store_ready(n)) {
                                scan_faults(n, now);
                                schedule_digests(n, now);
                        }
                        next_poll = now + n->cfg->notify_poll_ms;
                }
                for (size_t i = 0; i < n->targets.n; i++) {
                        struct sender *s = &n->senders[i];
                        int64_t at;

                        if (s->easy)
                                continue;
                        if (!s->has_msg && sender_next(n, s, now) < 0) {
                                bbt_log_error("out of memory");
                                stop = true;
                                break;
                        }
                        if (!s->has_msg)
                                continue;
                        at = s->next_ms > rate_ok_at(n, s) ? s->next_ms : rate_ok_at(n, s);
                        if (at <= now) {
                                if (sender_start(n, s, now) < 0) {
                                        bbt_log_error("out of memory");
                                        stop = true;
                                        break;
                                }
                        } else if (at < wake) {
                                wake = at;
                        }
                }
                curl_multi_perform(n->multi, &running);
                while ((m = curl_multi_info_read(n->multi, &left))) {
                        struct sender *s = NULL;

                        if (m->msg != CURLMSG_DONE)
                                continue;
                        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
                        sender_finished(n, s, m->data.result, now_ms(n));
                        wake = now; /* the next message may go at once */
                }
                if (n->dirty)
                        state_save(n);
                if (now >= next_stats) {
                        log_counters(n);
                        next_stats = now + n->cfg->notify_stats_ms;
                }
                if (next_poll < wake)
                        wake = next_poll;
                now = now_ms(n);
                if (wake > now)
                        curl_multi_poll(n->multi, &wfd, 1, (int)(wake - now), NULL);
                while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                        if (si.ssi_signo == SIGUSR1) {
                                log_counters(n);
                        } else if (si.ssi_signo == SIGHUP) {
                                bbt_log_notice("SIGHUP: reading the store again at once (restart to change the "
                                               "targets or secrets)");
                                next_poll = 0;
                        } else {
                                bbt_log_notice("stopping (signal %u)", si.ssi_signo);
                                stop = true;
                        }
                }
        }
        bbt_notify("STOPPING=1");
        if (n->dirty)
                state_save(n);
        log_counters(n);
        close(sfd);
        return 0;
}

/* ---- life cycle ---- */

int bbt_notifier_new(const struct bbt_aggregator_config *cfg, bool with_state, FILE *errs, struct bbt_notifier **ret)
{
        struct bbt_notifier *n = calloc(1, sizeof(*n));
        struct bbt_ingest_settings is;
        char err[1024];
        const char *start = getenv("BBT_NOTIFY_TEST_START");
        int digest_min = 0, r;

        if (!n)
                return -ENOMEM;
        n->cfg = cfg;
        n->dirfd = -1;
        bbt_minute_parse(cfg->notify_digest_time, &digest_min);
        bbt_aggregator_config_settings(cfg, &is);
        n->ms = is.metrics;
        n->offset_min = is.metrics.offset_min;
        if (start && *start) {
                /* Tests only (docs/notifications.md): the clock starts at this Unix time and runs on. */
                n->clock_delta_ms = strtoll(start, NULL, 10) * 1000 - wall_ms();
        }
        r = bbt_notify_targets_load(cfg->notify_targets, cfg->notify_secrets, digest_min, &n->targets, err,
                                    sizeof(err));
        if (r < 0) {
                fprintf(errs, "%s\n", err);
                goto fail;
        }
        r = bbt_aggregator_load_registry(cfg, errs, &n->reg, &n->cal);
        if (r < 0)
                goto fail;
        n->tstate = calloc(n->targets.n + 1, sizeof(*n->tstate));
        n->senders = calloc(n->targets.n + 1, sizeof(*n->senders));
        if (!n->tstate || !n->senders) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < n->targets.n; i++) {
                n->senders[i].tg = &n->targets.v[i];
                n->senders[i].ts = &n->tstate[i];
                n->senders[i].rate_limit = (size_t)(n->targets.v[i].rate_limit ? n->targets.v[i].rate_limit
                                                                                : cfg->notify_rate_limit);
                n->senders[i].sent_at = calloc(n->senders[i].rate_limit, sizeof(int64_t));
                if (!n->senders[i].sent_at) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (!with_state)
                goto done;
        n->dirfd = open(cfg->notify_state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (n->dirfd < 0) {
                r = -errno;
                fprintf(errs, "%s: %s ([notify] state_dir: create it, owned by bbt-notify, mode 0750)\n",
                        cfg->notify_state_dir, strerror(errno));
                goto fail;
        }
        r = state_load(n, cfg->notify_state_dir, err, sizeof(err));
        if (r < 0) {
                fprintf(errs, "%s\n", err);
                goto fail;
        }
        n->multi = curl_multi_init();
        if (!n->multi) {
                r = -ENOMEM;
                goto fail;
        }
done:
        *ret = n;
        return 0;
fail:
        bbt_notifier_free(n);
        return r;
}

void bbt_notifier_free(struct bbt_notifier *n)
{
        if (!n)
                return;
        for (size_t i = 0; n->senders && i < n->targets.n; i++) {
                struct sender *s = &n->senders[i];

                if (s->easy) {
                        curl_multi_remove_handle(n->multi, s->easy);
                        curl_easy_cleanup(s->easy);
                }
                curl_slist_free_all(s->headers);
                free(s->resp);
                free(s->sent_at);
                sender_reset(s);
        }
        for (size_t i = 0; n->tstate && i < n->targets.n; i++)
                bbt_notify_list_clear(&n->tstate[i].digest_pending);
        for (size_t i = 0; i < n->n_known; i++)
                bbt_notify_list_clear(&n->known[i].pending);
        if (n->multi)
                curl_multi_cleanup(n->multi);
        if (n->dirfd >= 0)
                close(n->dirfd);
        bbt_store_close(n->store);
        bbt_registry_free(n->reg);
        bbt_calendar_free(n->cal);
        bbt_notify_targets_free(&n->targets);
        free(n->senders);
        free(n->tstate);
        free(n->known);
        free(n->terms);
        free(n);
}

static void print_list(FILE *out, const char *key, const struct bbt_notify_list *l)
{
        fprintf(out, "#%s =%s", key, l->n ? " " : "");
        for (size_t i = 0; i < l->n; i++)
                fprintf(out, "%s%s", i ? ", " : "", l->v[i]);
        fputc('\n', out);
}

void bbt_notifier_dump_targets(const struct bbt_notifier *n, FILE *out)
{
        fprintf(out, "\n# The targets (%s; the URLs and secrets of %s are not shown)\n", n->cfg->notify_targets,
                n->cfg->notify_secrets);
        for (size_t i = 0; i < n->targets.n; i++) {
                const struct bbt_notify_target *t = &n->targets.v[i];

                fprintf(out, "#[%s]\n#format = %s\n#events = %s%s%s\n", t->name, bbt_notify_format_name(t->format),
                        t->events & BBT_NOTIFY_FAULTS ? "faults" : "",
                        t->events == (BBT_NOTIFY_FAULTS | BBT_NOTIFY_DIGEST) ? ", " : "",
                        t->events & BBT_NOTIFY_DIGEST ? "digest" : "");
                print_list(out, "county", &t->counties);
                print_list(out, "townships", &t->townships);
                print_list(out, "schools", &t->schools);
                fprintf(out, "#digest_time = %02d:%02d\n#rate_limit = %d\n#min_severity = %s\n#lang = %s\n#signed = %s\n",
                        t->digest_min / 60, t->digest_min % 60,
                        t->rate_limit ? t->rate_limit : (int)n->cfg->notify_rate_limit,
                        t->min_severity == BBT_SEVERITY_ERROR ? "error" : "warning", t->chinese ? "zh" : "en",
                        t->format == BBT_NOTIFY_DINGTALK && t->secret ? "yes" : "no");
        }
}

void bbt_notifier_print_status(const struct bbt_notifier *n, FILE *out)
{
        fprintf(out, "state: %s/%s%s\n", n->cfg->notify_state_dir, STATE_FILE,
                n->initialized ? "" : " (none yet: bbt-notify has not run)");
        for (size_t i = 0; i < BBT_ELEMENTSOF(counter_names); i++)
                fprintf(out, "%s: %lld\n", counter_names[i], *counter_at((struct counters *)&n->c, i));
        fprintf(out, "known_faults: %zu\n", n->n_known);
        for (size_t i = 0; i < n->targets.n; i++) {
                const struct target_state *ts = &n->tstate[i];
                size_t owed = 0;
                char day[16];

                for (size_t k = 0; k < n->n_known; k++)
                        owed += bbt_notify_list_has(&n->known[k].pending, n->targets.v[i].name);
                fprintf(out, "target %s: owed_faults=%zu owed_digests=%zu last_digest_day=%s\n", n->targets.v[i].name,
                        owed, ts->digest_pending.n,
                        ts->digest_day ? bbt_day_format(ts->digest_day, day, sizeof(day)) : "none");
        }
}
