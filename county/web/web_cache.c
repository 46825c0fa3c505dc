/* bbt-web's response cache: a hash table of bodies by key, an LRU list over the finished ones, one mutex. */
#include "web_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbt/base.h"

struct web_cache_entry {
        char *key;
        uint64_t hash, gen;
        int64_t born_ms;
        char *body;            /* NULL while being made */
        size_t len, cost;
        const char *type;
        char etag[20];
        bool ready;
        struct web_cache_entry *next;             /* in its bucket */
        struct web_cache_entry *older, *newer;    /* the LRU list, ready entries only */
};

struct web_cache {
        pthread_mutex_t lock;
        pthread_cond_t made;   /* a body was given or abandoned */
        struct web_cache_entry **buckets;
        size_t n_buckets, n;   /* n_buckets a power of 2 */
        struct web_cache_entry *newest, *oldest;
        struct web_cache_stats st;
};

static uint64_t fnv(const void *p, size_t len)
{
        return bbt_fnv1a(BBT_FNV1A_BASIS, p, len);
}

void web_cache_etag(const char *body, size_t len, char etag[20])
{
        snprintf(etag, 20, "\"%016llx\"", (unsigned long long)fnv(body, len));
}

bool web_cache_etag_matches(const char *if_none_match, const char *etag)
{
        const char *p = if_none_match;
        size_t n = strlen(etag);

        if (!p)
                return false;
        /* "*", or a list of tags, weak ones (W/"...") compared weakly. */
        while (*p) {
                p += strspn(p, " \t,");
                if (*p == '*')
                        return true;
                if (strncmp(p, "W/", 2) == 0)
                        p += 2;
                if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
                        return true;
                p += strcspn(p, ",");
        }
        return false;
}

struct web_cache *web_cache_new(uint64_t max_bytes)
{
        struct web_cache *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->n_buckets = 256;
        c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
        if (!c->buckets) {
                free(c);
                return NULL;
        }
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->made, NULL);
        c->st.max_bytes = max_bytes;
        return c;
}

static void lru_unlink(struct web_cache *c, struct web_cache_entry *e)
{
        if (e->older)
                e->older->newer = e->newer;
        else if (c->oldest == e)
                c->oldest = e->newer;
        if (e->newer)
                e->newer->older = e->older;
        else if (c->newest == e)
                c->newest = e->older;
        e->older = e->newer = NULL;
}

static void lru_push(struct web_cache *c, struct web_cache_entry *e)
{
        e->older = c->newest;
        e->newer = NULL;
        if (c->newest)
                c->newest->newer = e;
        c->newest = e;
        if (!c->oldest)
                c->oldest = e;
}

static struct web_cache_entry *find(struct web_cache *c, const char *key, uint64_t hash)
{
        for (struct web_cache_entry *e = c->buckets[hash & (c->n_buckets - 1)]; e; e = e->next)
                if (e->hash == hash && strcmp(e->key, key) == 0)
                        return e;
        return NULL;
}

/* Takes E out of the table (and the list), frees it. */
static void drop(struct web_cache *c, struct web_cache_entry *e)
{
        struct web_cache_entry **p = &c->buckets[e->hash & (c->n_buckets - 1)];

        while (*p != e)
                p = &(*p)->next;
        *p = e->next;
        if (e->ready) {
                lru_unlink(c, e);
                c->st.bytes -= e->cost;
                c->st.entries--;
        }
        c->n--;
        free(e->key);
        free(e->body);
        free(e);
}

static void grow(struct web_cache *c)
{
        size_t n = c->n_buckets * 2;
        struct web_cache_entry **b = calloc(n, sizeof(*b));

        if (!b)
                return; /* longer chains, still right */
        for (size_t i = 0; i < c->n_buckets; i++)
                for (struct web_cache_entry *e = c->buckets[i], *next; e; e = next) {
                        next = e->next;
                        e->next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        free(c->buckets);
        c->buckets = b;
        c->n_buckets = n;
}

bool web_cache_get(struct web_cache *c, const char *key, uint64_t gen, int64_t now_ms, int64_t max_age_ms,
                   int64_t stale_ms, struct web_cache_hit *hit, struct web_cache_entry **ticket)
{
        uint64_t hash = fnv(key, strlen(key));
        struct web_cache_entry *e;
        bool waited = false;

        *ticket = NULL;
        pthread_mutex_lock(&c->lock);
        while ((e = find(c, key, hash)) && !e->ready) {
                if (!waited)
                        c->st.waits++;
                waited = true;
                pthread_cond_wait(&c->made, &c->lock);
        }
        if (e) {
                int64_t age = now_ms - e->born_ms;
                bool same = e->gen == gen && (max_age_ms < 0 || age < max_age_ms);

                if (same || age < stale_ms) {
                        char *copy = malloc(e->len ? e->len : 1);

                        if (copy) {
                                memcpy(copy, e->body, e->len);
                                *hit = (struct web_cache_hit){ .body = copy, .len = e->len, .type = e->type };
                                memcpy(hit->etag, e->etag, sizeof(hit->etag));
                                lru_unlink(c, e);
                                lru_push(c, e);
                                c->st.hits++;
                                if (!same)
                                        c->st.stale++;
                                pthread_mutex_unlock(&c->lock);
                                return true;
                        }
                }
                drop(c, e);
        }
        c->st.misses++;
        e = calloc(1, sizeof(*e));
        if (e && !(e->key = strdup(key))) {
                free(e);
                e = NULL;
        }
        if (e) {
                e->hash = hash;
                e->gen = gen;
                e->born_ms = now_ms;
                if (c->n >= c->n_buckets * 2)
                        grow(c);
                e->next = c->buckets[hash & (c->n_buckets - 1)];
                c->buckets[hash & (c->n_buckets - 1)] = e;
                c->n++;
        }
        pthread_mutex_unlock(&c->lock);
        *ticket = e;
        return false;
}

void web_cache_fill(struct web_cache *c, struct web_cache_entry *e, const char *body, size_t len, const char *type,
                    char etag[20])
{
        size_t cost = sizeof(*e) + strlen(e->key) + 1 + len;
        char *copy = cost <= c->st.max_bytes ? malloc(len ? len : 1) : NULL;

        web_cache_etag(body, len, e->etag);
        if (etag)
                memcpy(etag, e->etag, 20);
        pthread_mutex_lock(&c->lock);
        if (!copy) {
                if (cost > c->st.max_bytes)
                        c->st.too_large++;
                drop(c, e);
        } else {
                memcpy(copy, body, len);
                e->body = copy;
                e->len = len;
                e->cost = cost;
                e->type = type;
                e->ready = true;
                lru_push(c, e);
                c->st.entries++;
                c->st.bytes += cost;
                while (c->st.bytes > c->st.max_bytes && c->oldest) {
                        drop(c, c->oldest);
                        c->st.evictions++;
                }
        }
        pthread_cond_broadcast(&c->made);
        pthread_mutex_unlock(&c->lock);
}

void web_cache_abandon(struct web_cache *c, struct web_cache_entry *e)
{
        if (!e)
                return;
        pthread_mutex_lock(&c->lock);
        drop(c, e);
        pthread_cond_broadcast(&c->made);
        pthread_mutex_unlock(&c->lock);
}

void web_cache_clear(struct web_cache *c)
{
        pthread_mutex_lock(&c->lock);
        while (c->oldest)
                drop(c, c->oldest);
        pthread_mutex_unlock(&c->lock);
}

void web_cache_stats(struct web_cache *c, struct web_cache_stats *ret)
{
        pthread_mutex_lock(&c->lock);
        *ret = c->st;
        pthread_mutex_unlock(&c->lock);
}

void web_cache_free(struct web_cache *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->n_buckets; i++)
                for (struct web_cache_entry *e = c->buckets[i], *next; e; e = next) {
                        next = e->next;
                        free(e->key);
                        free(e->body);
                        free(e);
                }
        free(c->buckets);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->made);
        free(c);
}
