/* Sequence gaps: one terminal's seq series and the ranges missing from it, as arithmetic on a sorted list (no I/O). */
#include "gaps.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bbt_gaps_free(struct bbt_gaps *g)
{
        if (!g)
                return;
        free(g->v);
        g->v = NULL;
        g->n = g->cap = 0;
}

int bbt_gaps_insert(struct bbt_gaps *g, size_t i, const struct bbt_store_gap *gap)
{
        if (g->n == g->cap) {
                size_t cap = g->cap ? g->cap * 2 : 4;
                struct bbt_store_gap *n = realloc(g->v, cap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                g->v = n;
                g->cap = cap;
        }
        memmove(&g->v[i + 1], &g->v[i], (g->n - i) * sizeof(*gap));
        g->v[i] = *gap;
        g->n++;
        return 0;
}

void bbt_gaps_remove(struct bbt_gaps *g, size_t i)
{
        memmove(&g->v[i], &g->v[i + 1], (g->n - i - 1) * sizeof(g->v[0]));
        g->n--;
}

size_t bbt_gaps_find(const struct bbt_gaps *g, int64_t seq)
{
        for (size_t i = 0; i < g->n; i++) {
                if (seq < g->v[i].from)
                        break;
                if (seq <= g->v[i].to)
                        return i;
        }
        return g->n;
}

int64_t bbt_gaps_count(const struct bbt_gaps *g)
{
        int64_t n = 0;

        for (size_t i = 0; i < g->n; i++)
                n += g->v[i].to - g->v[i].from + 1;
        return n;
}

int bbt_gaps_cut(struct bbt_gaps *g, size_t i, int64_t from, int64_t to)
{
        struct bbt_store_gap *x = &g->v[i], right;

        if (from <= x->from && to >= x->to) {
                bbt_gaps_remove(g, i);
                return 0;
        }
        if (from <= x->from) {
                x->from = to + 1;
                return 1;
        }
        if (to >= x->to) {
                x->to = from - 1;
                return 1;
        }
        right = *x;
        right.from = to + 1;
        x->to = from - 1;
        return bbt_gaps_insert(g, i + 1, &right) < 0 ? -ENOMEM : 2;
}

int bbt_gaps_track(struct bbt_gaps *g, int64_t *first_seq, int64_t *high_seq, int64_t seq, int64_t now_ms,
                   struct bbt_gaps_change *ret)
{
        struct bbt_store_gap gap = { .state = BBT_GAP_WAITING, .detected_ms = now_ms, .changed_ms = now_ms };
        size_t i;

        ret->opened = 0;
        ret->filled = false;
        if (*high_seq < 0) {
                *first_seq = *high_seq = seq;
                return 1;
        }
        if (seq > *high_seq) {
                if (seq > *high_seq + 1) {
                        gap.from = *high_seq + 1;
                        gap.to = seq - 1;
                        if (bbt_gaps_insert(g, g->n, &gap) < 0)
                                return -ENOMEM;
                        ret->opened = gap.to - gap.from + 1;
                }
                *high_seq = seq;
                return 1;
        }
        if (seq < *first_seq) {
                /* Older than anything seen (a backlog that follows the birth):
                 * the series reaches further back, with a gap up to it. */
                if (seq < *first_seq - 1) {
                        gap.from = seq + 1;
                        gap.to = *first_seq - 1;
                        if (bbt_gaps_insert(g, 0, &gap) < 0)
                                return -ENOMEM;
                        ret->opened = gap.to - gap.from + 1;
                }
                *first_seq = seq;
                return 1;
        }
        i = bbt_gaps_find(g, seq);
        if (i == g->n)
                return 0;
        ret->filled = true;
        return bbt_gaps_cut(g, i, seq, seq) < 0 ? -ENOMEM : 1;
}

int64_t bbt_gaps_extend(struct bbt_gaps *g, int64_t *first_seq, int64_t high_seq, int64_t seq, int64_t now_ms)
{
        struct bbt_store_gap gap = { .state = BBT_GAP_WAITING, .detected_ms = now_ms, .changed_ms = now_ms };

        if (high_seq < 0 || seq >= *first_seq)
                return 0;
        gap.from = seq;
        gap.to = *first_seq - 1;
        if (bbt_gaps_insert(g, 0, &gap) < 0)
                return -ENOMEM;
        *first_seq = seq;
        return gap.to - gap.from + 1;
}

int bbt_gaps_take(struct bbt_gaps *g, int64_t from, int64_t to, void (*piece_cb)(void *u, int64_t from, int64_t to),
                  void *u)
{
        for (size_t i = 0; i < g->n && from <= to; i++) {
                const struct bbt_store_gap *x = &g->v[i];
                int64_t a, b;
                int r;

                if (x->to < from || x->state == BBT_GAP_WILL)
                        continue;
                if (x->from > to)
                        break;
                a = x->from > from ? x->from : from;
                b = x->to < to ? x->to : to;
                piece_cb(u, a, b);
                r = bbt_gaps_cut(g, i, a, b);
                if (r < 0)
                        return r;
                /* Go on after what stands in its place (unsigned wrap when
                 * gap 0 went: the loop's i++ brings it back to 0). */
                i = i + (size_t)r - 1;
        }
        return 0;
}

int bbt_gaps_split(struct bbt_gaps *g, size_t i, int64_t max)
{
        struct bbt_store_gap rest;

        if (g->v[i].to - g->v[i].from + 1 <= max)
                return 0;
        rest = g->v[i];
        rest.from = g->v[i].from + max;
        g->v[i].to = rest.from - 1;
        return bbt_gaps_insert(g, i + 1, &rest);
}

bool bbt_gaps_mark_will(struct bbt_gaps *g, int64_t w, int64_t boot, int64_t now_ms)
{
        size_t i = bbt_gaps_find(g, w);
        struct bbt_store_gap *x, mid;

        if (i == g->n || g->v[i].state == BBT_GAP_WILL)
                return false;
        x = &g->v[i];
        mid = *x;
        mid.from = mid.to = w;
        mid.state = BBT_GAP_WILL;
        mid.boot = boot;
        mid.changed_ms = now_ms;
        mid.cmd_id[0] = '\0';
        if (x->from == w && x->to == w) {
                *x = mid;
        } else if (x->from == w) {
                x->from = w + 1;
                bbt_gaps_insert(g, i, &mid);
        } else if (x->to == w) {
                x->to = w - 1;
                bbt_gaps_insert(g, i + 1, &mid);
        } else {
                struct bbt_store_gap right = *x;

                right.from = w + 1;
                x->to = w - 1;
                if (bbt_gaps_insert(g, i + 1, &mid) == 0)
                        bbt_gaps_insert(g, i + 2, &right);
        }
        return true;
}
