/* bbt-web's response cache: finished bodies by key, bounded in bytes (LRU), one computation per key at a time.
 *
 * A key names everything a body depends on but the store: the endpoint, its
 * normalized query and the caller's scope (docs/web.md, "The response
 * cache"). The store is the GEN given to each lookup, a number that changes
 * when the store does (web_store_generation): a body made at another GEN is
 * served only while it is younger than the STALE_MS of the lookup, else made
 * again. Single flight: while one request makes a key's body, the others
 * asking for it wait for that body instead of making their own. Thread-safe. */
#ifndef BBT_WEB_CACHE_H
#define BBT_WEB_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct web_cache;
struct web_cache_entry;

struct web_cache_stats {
        uint64_t hits;        /* served from the cache (STALE included) */
        uint64_t stale;       /* of the hits: made before the store's last change, within STALE_MS */
        uint64_t misses;      /* made (by the caller) */
        uint64_t waits;       /* of the hits and misses: waited for another request making the same key */
        uint64_t evictions;   /* dropped to stay within the size, oldest use first */
        uint64_t too_large;   /* bodies not kept: alone larger than the whole cache */
        uint64_t entries, bytes, max_bytes;
};

/* A body found: BODY (malloc'd, the caller's), its length, media type and ETag. */
struct web_cache_hit {
        char *body;
        size_t len;
        const char *type;   /* static: a renderer's media type */
        char etag[20];      /* "\"%016llx\"" */
};

/* MAX_BYTES: bodies, keys and bookkeeping together. NULL if out of memory. */
struct web_cache *web_cache_new(uint64_t max_bytes);
void web_cache_free(struct web_cache *c);

/* KEY at GEN, NOW_MS: returns true with *HIT filled (a copy of the body), or
 * false with *TICKET: the caller makes the body and gives it with
 * web_cache_fill, or gives up with web_cache_abandon (the waiting requests
 * then make it themselves). *TICKET is NULL when nothing can be kept (out of
 * memory): make the body, nothing to call. MAX_AGE_MS (< 0: none) bounds a
 * body's age even at the same GEN; STALE_MS is how long a body made at an
 * older GEN is still served. */
bool web_cache_get(struct web_cache *c, const char *key, uint64_t gen, int64_t now_ms, int64_t max_age_ms,
                   int64_t stale_ms, struct web_cache_hit *hit, struct web_cache_entry **ticket);
/* The body (copied) of TICKET, TYPE static; ETAG gets its ETag (may be NULL). */
void web_cache_fill(struct web_cache *c, struct web_cache_entry *ticket, const char *body, size_t len,
                    const char *type, char etag[20]);
void web_cache_abandon(struct web_cache *c, struct web_cache_entry *ticket);
/* Drops every body (SIGHUP: the registry may have changed). */
void web_cache_clear(struct web_cache *c);
void web_cache_stats(struct web_cache *c, struct web_cache_stats *ret);

/* The ETag of BODY, as the cache gives it. */
void web_cache_etag(const char *body, size_t len, char etag[20]);
/* Whether an If-None-Match header value matches ETAG. */
bool web_cache_etag_matches(const char *if_none_match, const char *etag);

#endif
