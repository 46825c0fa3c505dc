/* bbt-web's response cache (county/web/web_cache.c) alone: hits, the store's generation and the stale window, the age bound, the size bound (LRU), single flight, ETags. */
/* bbt-test: label=unit timeout=30 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web_cache.h"
#include "test.h"

static const char *const JSON = "application/json";

/* Whether KEY is a hit at GEN, NOW; on a miss its ticket is filled with BODY (NULL: abandoned). */
static bool lookup(struct web_cache *c, const char *key, uint64_t gen, int64_t now, int64_t max_age, int64_t stale,
                   const char *body, char *got, size_t size)
{
        struct web_cache_entry *t;
        struct web_cache_hit h;

        if (web_cache_get(c, key, gen, now, max_age, stale, &h, &t)) {
                ASSERT(h.type == JSON);
                snprintf(got, size, "%.*s", (int)h.len, h.body);
                free(h.body);
                return true;
        }
        ASSERT(t != NULL);
        if (body)
                web_cache_fill(c, t, body, strlen(body), JSON, NULL);
        else
                web_cache_abandon(c, t);
        *got = '\0';
        return false;
}

/* A hit is the body given; another generation is a miss unless within the stale window; MAX_AGE bounds even the same generation. */
TEST(generation_stale_and_age)
{
        struct web_cache *c = web_cache_new(1 << 20);
        struct web_cache_stats st;
        char got[64];

        ASSERT(!lookup(c, "a", 1, 1000, -1, 0, "{\"v\":1}", got, sizeof(got)));
        ASSERT(lookup(c, "a", 1, 99999, -1, 0, NULL, got, sizeof(got)));
        ASSERT_STR_EQ(got, "{\"v\":1}");
        /* The store changed: with no stale window, made again. */
        ASSERT(!lookup(c, "a", 2, 2000, -1, 0, "{\"v\":2}", got, sizeof(got)));
        ASSERT(lookup(c, "a", 2, 2001, -1, 0, NULL, got, sizeof(got)));
        ASSERT_STR_EQ(got, "{\"v\":2}");
        /* A 5 s window: the old body is served for 5 s after it was made, then made again. */
        ASSERT(lookup(c, "a", 3, 6999, -1, 5000, NULL, got, sizeof(got)));
        ASSERT_STR_EQ(got, "{\"v\":2}");
        ASSERT(!lookup(c, "a", 3, 7000, -1, 5000, "{\"v\":3}", got, sizeof(got)));
        /* An age bound at the same generation (a live body). */
        ASSERT(lookup(c, "a", 3, 7999, 1000, 0, NULL, got, sizeof(got)));
        ASSERT(!lookup(c, "a", 3, 8000, 1000, 0, "{\"v\":4}", got, sizeof(got)));
        /* Keys are apart; an abandoned body leaves nothing behind. */
        ASSERT(!lookup(c, "b", 3, 8000, -1, 0, NULL, got, sizeof(got)));
        ASSERT(!lookup(c, "b", 3, 8000, -1, 0, "{\"b\":1}", got, sizeof(got)));
        ASSERT(lookup(c, "a", 3, 8001, -1, 0, NULL, got, sizeof(got)));
        ASSERT_STR_EQ(got, "{\"v\":4}");
        web_cache_stats(c, &st);
        ASSERT_EQ(st.hits, 5);
        ASSERT_EQ(st.stale, 1);
        ASSERT_EQ(st.misses, 6);
        ASSERT_EQ(st.entries, 2);
        web_cache_clear(c);
        web_cache_stats(c, &st);
        ASSERT_EQ(st.entries, 0);
        ASSERT_EQ(st.bytes, 0);
        ASSERT(!lookup(c, "a", 3, 8002, -1, 0, NULL, got, sizeof(got)));
        web_cache_free(c);
}

/* The size bound: the least recently used go first; a body larger than the whole cache is not kept. */
TEST(size_bound_evicts_least_recent)
{
        struct web_cache *c = web_cache_new(3 * 1024);
        struct web_cache_stats st;
        char body[900], big[4000], got[1000], key[16];

        memset(body, 'x', sizeof(body) - 1);
        body[sizeof(body) - 1] = '\0';
        memset(big, 'y', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        for (int i = 0; i < 3; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                ASSERT(!lookup(c, key, 1, 0, -1, 0, body, got, sizeof(got)));
        }
        ASSERT(lookup(c, "k0", 1, 0, -1, 0, NULL, got, sizeof(got))); /* k0 used: k1 is now the oldest */
        ASSERT(!lookup(c, "k3", 1, 0, -1, 0, body, got, sizeof(got)));
        web_cache_stats(c, &st);
        ASSERT_EQ(st.evictions, 1);
        ASSERT(st.bytes <= st.max_bytes);
        ASSERT(lookup(c, "k0", 1, 0, -1, 0, NULL, got, sizeof(got)));
        ASSERT(lookup(c, "k3", 1, 0, -1, 0, NULL, got, sizeof(got)));
        ASSERT(!lookup(c, "k1", 1, 0, -1, 0, NULL, got, sizeof(got)));
        ASSERT(!lookup(c, "huge", 1, 0, -1, 0, big, got, sizeof(got)));
        ASSERT(!lookup(c, "huge", 1, 0, -1, 0, NULL, got, sizeof(got)));
        web_cache_stats(c, &st);
        ASSERT_EQ(st.too_large, 1);
        ASSERT(st.bytes <= st.max_bytes);
        web_cache_free(c);
}

/* ---- single flight ---- */

static struct {
        struct web_cache *c;
        pthread_mutex_t lock;
        int made;      /* misses among the threads */
        int same;      /* threads that got the maker's body */
} F = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *asker(void *u)
{
        struct web_cache_entry *t;
        struct web_cache_hit h;

        (void)u;
        if (web_cache_get(F.c, "report", 1, 0, -1, 0, &h, &t)) {
                pthread_mutex_lock(&F.lock);
                F.same += h.len == 6 && memcmp(h.body, "{\"m\":1", 6) == 0;
                pthread_mutex_unlock(&F.lock);
                free(h.body);
        } else {
                web_cache_fill(F.c, t, "{\"m\":2", 6, JSON, NULL);
                pthread_mutex_lock(&F.lock);
                F.made++;
                pthread_mutex_unlock(&F.lock);
        }
        return NULL;
}

/* Eight requests for a key one request is making: they wait and get its body, none makes its own. */
TEST(single_flight)
{
        struct web_cache_entry *t;
        struct web_cache_hit h;
        struct web_cache_stats st;
        pthread_t th[8];

        F.c = web_cache_new(1 << 20);
        ASSERT(!web_cache_get(F.c, "report", 1, 0, -1, 0, &h, &t)); /* this thread makes it */
        for (int i = 0; i < 8; i++)
                ASSERT_OK(pthread_create(&th[i], NULL, asker, NULL));
        /* Until all eight wait inside the cache (counted in waits). */
        for (;;) {
                struct timespec ts = { 0, 1000000 };

                web_cache_stats(F.c, &st);
                if (st.waits == 8)
                        break;
                nanosleep(&ts, NULL);
        }
        web_cache_fill(F.c, t, "{\"m\":1", 6, JSON, NULL);
        for (int i = 0; i < 8; i++)
                pthread_join(th[i], NULL);
        ASSERT_EQ(F.made, 0);
        ASSERT_EQ(F.same, 8);
        web_cache_stats(F.c, &st);
        ASSERT_EQ(st.misses, 1);
        ASSERT_EQ(st.hits, 8);
        web_cache_free(F.c);
}

TEST(etags)
{
        char a[20], b[20], list[80];

        web_cache_etag("{}", 2, a);
        web_cache_etag("{ }", 3, b);
        ASSERT(strcmp(a, b) != 0);
        ASSERT_EQ(strlen(a), 18);
        ASSERT(a[0] == '"' && a[17] == '"');
        ASSERT(web_cache_etag_matches(a, a));
        ASSERT(!web_cache_etag_matches(b, a));
        snprintf(list, sizeof(list), "%s, W/%s", b, a);
        ASSERT(web_cache_etag_matches(list, a));
        ASSERT(web_cache_etag_matches("*", a));
        ASSERT(!web_cache_etag_matches("", a));
        ASSERT(!web_cache_etag_matches(NULL, a));
}
