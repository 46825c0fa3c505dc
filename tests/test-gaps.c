/* Sequence gaps on their own: tracking seqs, splitting, cutting, taking ranges across gaps, extending, wills. */
/* bbt-test: label=unit timeout=10 */
#include "bbt/base.h"
#include "gaps.h"
#include "test.h"

#define NOW 1000000

/* Asserts that G holds exactly the N ranges FROM[i]..TO[i]. */
static void assert_gaps(const struct bbt_gaps *g, size_t n, const int64_t (*want)[2])
{
        for (size_t i = 0; i < g->n && i < n; i++)
                if (g->v[i].from != want[i][0] || g->v[i].to != want[i][1])
                        FAIL("gap %zu: %" PRId64 "..%" PRId64 ", want %" PRId64 "..%" PRId64, i, g->v[i].from,
                             g->v[i].to, want[i][0], want[i][1]);
        ASSERT_EQ(g->n, n);
}

#define ASSERT_GAPS(g, ...)                                                                  \
        do {                                                                                  \
                static const int64_t want_[][2] = { __VA_ARGS__ };                            \
                assert_gaps((g), BBT_ELEMENTSOF(want_), want_);                               \
        } while (0)

static struct bbt_store_gap gap(int64_t from, int64_t to, enum bbt_gap_state state)
{
        struct bbt_store_gap g = { .from = from, .to = to, .state = state, .detected_ms = 1, .changed_ms = 2 };

        return g;
}

/* A list of the given gaps, in order. */
static void make(struct bbt_gaps *g, size_t n, const struct bbt_store_gap *v)
{
        *g = (struct bbt_gaps){ 0 };
        for (size_t i = 0; i < n; i++)
                ASSERT_OK(bbt_gaps_insert(g, g->n, &v[i]));
}

TEST(track_in_order_and_duplicates)
{
        struct bbt_gaps g = { 0 };
        struct bbt_gaps_change c;
        int64_t first = -1, high = -1;

        /* The first seq starts the series wherever it is. */
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 41, NOW, &c), 1);
        ASSERT_EQ(first, 41);
        ASSERT_EQ(high, 41);
        ASSERT_EQ(c.opened, 0);
        ASSERT(!c.filled);
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 42, NOW, &c), 1);
        ASSERT_EQ(high, 42);
        ASSERT_EQ(g.n, 0);
        /* Inside the series and in no gap: seen. */
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 41, NOW, &c), 0);
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 42, NOW, &c), 0);
        ASSERT_EQ(c.opened, 0);
        ASSERT(!c.filled);
        ASSERT_EQ(first, 41);
        ASSERT_EQ(high, 42);
        bbt_gaps_free(&g);
}

TEST(track_opens_gap_above_and_below)
{
        struct bbt_gaps g = { 0 };
        struct bbt_gaps_change c;
        int64_t first = -1, high = -1;

        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 10, NOW, &c), 1);
        /* A jump up: 11..14 missing, waiting, detected now. */
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 15, NOW + 1, &c), 1);
        ASSERT_EQ(c.opened, 4);
        ASSERT_GAPS(&g, { 11, 14 });
        ASSERT_EQ(g.v[0].state, BBT_GAP_WAITING);
        ASSERT_EQ(g.v[0].detected_ms, NOW + 1);
        ASSERT_EQ(g.v[0].changed_ms, NOW + 1);
        ASSERT_EQ(g.v[0].attempts, 0);
        ASSERT_EQ(high, 15);
        /* A backlog below the first seq: the series reaches back, with a gap
         * up to it, in front. */
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 6, NOW + 2, &c), 1);
        ASSERT_EQ(c.opened, 3);
        ASSERT_EQ(first, 6);
        ASSERT_GAPS(&g, { 7, 9 }, { 11, 14 });
        /* Right below the first and right above the highest: no gap. */
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 5, NOW, &c), 1);
        ASSERT_EQ(c.opened, 0);
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 16, NOW, &c), 1);
        ASSERT_EQ(c.opened, 0);
        ASSERT_EQ(first, 5);
        ASSERT_EQ(high, 16);
        ASSERT_GAPS(&g, { 7, 9 }, { 11, 14 });
        ASSERT_EQ(bbt_gaps_count(&g), 7);
        bbt_gaps_free(&g);
}

/* An arrival inside a gap: it shrinks at either end, splits in the middle
 * (both halves keep the gap's state and request), and goes when empty. */
TEST(track_fills_gaps)
{
        struct bbt_gaps g;
        struct bbt_store_gap v[] = { gap(5, 9, BBT_GAP_REQUESTED) };
        struct bbt_gaps_change c;
        int64_t first = 1, high = 20;

        v[0].attempts = 2;
        snprintf(v[0].cmd_id, sizeof(v[0].cmd_id), "rs-1-7");
        make(&g, 1, v);
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 7, NOW, &c), 1);
        ASSERT(c.filled);
        ASSERT_EQ(c.opened, 0);
        ASSERT_GAPS(&g, { 5, 6 }, { 8, 9 });
        for (size_t i = 0; i < 2; i++) {
                ASSERT_EQ(g.v[i].state, BBT_GAP_REQUESTED);
                ASSERT_EQ(g.v[i].attempts, 2);
                ASSERT_STR_EQ(g.v[i].cmd_id, "rs-1-7");
                ASSERT_EQ(g.v[i].detected_ms, 1);
        }
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 5, NOW, &c), 1);
        ASSERT_GAPS(&g, { 6, 6 }, { 8, 9 });
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 9, NOW, &c), 1);
        ASSERT_GAPS(&g, { 6, 6 }, { 8, 8 });
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 6, NOW, &c), 1);
        ASSERT_GAPS(&g, { 8, 8 });
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 8, NOW, &c), 1);
        ASSERT(c.filled);
        ASSERT_EQ(g.n, 0);
        /* Filled once: the second arrival is seen. */
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 8, NOW, &c), 0);
        ASSERT(!c.filled);
        ASSERT_EQ(first, 1);
        ASSERT_EQ(high, 20);
        bbt_gaps_free(&g);
}

TEST(find)
{
        struct bbt_gaps g;
        struct bbt_store_gap v[] = { gap(3, 5, BBT_GAP_WAITING), gap(9, 9, BBT_GAP_WILL), gap(12, 20, 0) };

        make(&g, 3, v);
        ASSERT_EQ(bbt_gaps_find(&g, 2), 3);
        ASSERT_EQ(bbt_gaps_find(&g, 3), 0);
        ASSERT_EQ(bbt_gaps_find(&g, 5), 0);
        ASSERT_EQ(bbt_gaps_find(&g, 6), 3);
        ASSERT_EQ(bbt_gaps_find(&g, 9), 1);
        ASSERT_EQ(bbt_gaps_find(&g, 20), 2);
        ASSERT_EQ(bbt_gaps_find(&g, 21), 3);
        ASSERT_EQ(bbt_gaps_count(&g), 3 + 1 + 9);
        bbt_gaps_free(&g);
        ASSERT_EQ(bbt_gaps_find(&g, 4), 0);
        ASSERT_EQ(bbt_gaps_count(&g), 0);
}

TEST(cut_whole_ends_middle)
{
        struct bbt_gaps g;
        struct bbt_store_gap v[] = { gap(10, 19, BBT_GAP_ANSWERED), gap(30, 39, BBT_GAP_WAITING) };

        make(&g, 2, v);
        /* A prefix, a suffix: one gap stays. */
        ASSERT_EQ(bbt_gaps_cut(&g, 0, 10, 12), 1);
        ASSERT_GAPS(&g, { 13, 19 }, { 30, 39 });
        ASSERT_EQ(bbt_gaps_cut(&g, 0, 18, 19), 1);
        ASSERT_GAPS(&g, { 13, 17 }, { 30, 39 });
        /* The middle: two, the same state. */
        ASSERT_EQ(bbt_gaps_cut(&g, 0, 15, 15), 2);
        ASSERT_GAPS(&g, { 13, 14 }, { 16, 17 }, { 30, 39 });
        ASSERT_EQ(g.v[0].state, BBT_GAP_ANSWERED);
        ASSERT_EQ(g.v[1].state, BBT_GAP_ANSWERED);
        /* All of it: none. */
        ASSERT_EQ(bbt_gaps_cut(&g, 1, 16, 17), 0);
        ASSERT_GAPS(&g, { 13, 14 }, { 30, 39 });
        ASSERT_EQ(bbt_gaps_cut(&g, 1, 30, 39), 0);
        ASSERT_GAPS(&g, { 13, 14 });
        bbt_gaps_free(&g);
}

struct pieces {
        int64_t v[16][2];
        size_t n;
};

/* Asserts that P holds exactly the pieces WANT[i][0]..WANT[i][1], in order. */
static void assert_pieces(const struct pieces *p, size_t n, const int64_t (*want)[2])
{
        for (size_t i = 0; i < p->n && i < n; i++)
                if (p->v[i][0] != want[i][0] || p->v[i][1] != want[i][1])
                        FAIL("piece %zu: %" PRId64 "..%" PRId64 ", want %" PRId64 "..%" PRId64, i, p->v[i][0],
                             p->v[i][1], want[i][0], want[i][1]);
        ASSERT_EQ(p->n, n);
}

#define ASSERT_PIECES(p, ...)                                                                \
        do {                                                                                  \
                static const int64_t want_[][2] = { __VA_ARGS__ };                            \
                assert_pieces((p), BBT_ELEMENTSOF(want_), want_);                             \
        } while (0)

static void piece_cb(void *u, int64_t from, int64_t to)
{
        struct pieces *p = u;

        ASSERT_LT(p->n, BBT_ELEMENTSOF(p->v));
        p->v[p->n][0] = from;
        p->v[p->n][1] = to;
        p->n++;
}

/* A range that overlaps several gaps (the agent's "damaged" or "skipped"):
 * each overlapping piece is reported, then taken out; the will stays. */
TEST(take_overlapping_gaps_leaves_will)
{
        struct bbt_gaps g;
        struct bbt_store_gap v[] = { gap(3, 5, BBT_GAP_WAITING), gap(8, 8, BBT_GAP_WILL),
                                     gap(10, 14, BBT_GAP_REQUESTED), gap(20, 22, BBT_GAP_ANSWERED),
                                     gap(30, 31, BBT_GAP_WAITING) };
        struct pieces p = { .n = 0 };

        make(&g, 5, v);
        ASSERT_OK(bbt_gaps_take(&g, 4, 21, piece_cb, &p));
        ASSERT_PIECES(&p, { 4, 5 }, { 10, 14 }, { 20, 21 });
        ASSERT_GAPS(&g, { 3, 3 }, { 8, 8 }, { 22, 22 }, { 30, 31 });
        ASSERT_EQ(g.v[1].state, BBT_GAP_WILL);
        ASSERT_EQ(g.v[2].state, BBT_GAP_ANSWERED);
        bbt_gaps_free(&g);
}

TEST(take_inside_one_gap_and_outside_all)
{
        struct bbt_gaps g;
        struct bbt_store_gap v[] = { gap(1, 100, BBT_GAP_WAITING) };
        struct pieces p = { .n = 0 };

        make(&g, 1, v);
        /* Inside one gap: it splits around the range. */
        ASSERT_OK(bbt_gaps_take(&g, 40, 59, piece_cb, &p));
        ASSERT_PIECES(&p, { 40, 59 });
        ASSERT_GAPS(&g, { 1, 39 }, { 60, 100 });
        /* Touching nothing missing: nothing reported, nothing changes. */
        p.n = 0;
        ASSERT_OK(bbt_gaps_take(&g, 40, 59, piece_cb, &p));
        ASSERT_OK(bbt_gaps_take(&g, 200, 300, piece_cb, &p));
        ASSERT_OK(bbt_gaps_take(&g, 10, 5, piece_cb, &p)); /* empty range */
        ASSERT_EQ(p.n, 0);
        ASSERT_GAPS(&g, { 1, 39 }, { 60, 100 });
        /* Covering everything: both go, the first piece first. */
        ASSERT_OK(bbt_gaps_take(&g, 0, 1000, piece_cb, &p));
        ASSERT_PIECES(&p, { 1, 39 }, { 60, 100 });
        ASSERT_EQ(g.n, 0);
        bbt_gaps_free(&g);
}

/* resend_max_range: a long gap is asked for in parts. The parts touch and
 * are never merged again: each has its own request. */
TEST(split_at_max_range_parts_stay_apart)
{
        struct bbt_gaps g;
        struct bbt_store_gap v[] = { gap(1, 12000, BBT_GAP_WAITING) };
        struct bbt_gaps_change c;
        int64_t first = 0, high = 12001;

        make(&g, 1, v);
        ASSERT_OK(bbt_gaps_split(&g, 0, 5000));
        ASSERT_GAPS(&g, { 1, 5000 }, { 5001, 12000 });
        ASSERT_OK(bbt_gaps_split(&g, 1, 5000));
        ASSERT_GAPS(&g, { 1, 5000 }, { 5001, 10000 }, { 10001, 12000 });
        /* Short enough: untouched. */
        ASSERT_OK(bbt_gaps_split(&g, 2, 5000));
        ASSERT_OK(bbt_gaps_split(&g, 0, 5000));
        ASSERT_EQ(g.n, 3);
        g.v[0].state = BBT_GAP_REQUESTED;
        /* Filling at the seam touches one part only, and nothing merges. */
        ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 5001, NOW, &c), 1);
        ASSERT_GAPS(&g, { 1, 5000 }, { 5002, 10000 }, { 10001, 12000 });
        ASSERT_EQ(g.v[0].state, BBT_GAP_REQUESTED);
        ASSERT_EQ(g.v[1].state, BBT_GAP_WAITING);
        ASSERT_EQ(bbt_gaps_count(&g), 11999);
        bbt_gaps_free(&g);
}

TEST(extend_below_the_series)
{
        struct bbt_gaps g = { 0 };
        int64_t first = -1;

        /* No series yet: nothing to extend. */
        ASSERT_EQ(bbt_gaps_extend(&g, &first, -1, 3, NOW), 0);
        ASSERT_EQ(first, -1);
        first = 10;
        /* At or above the first seq: nothing. */
        ASSERT_EQ(bbt_gaps_extend(&g, &first, 12, 10, NOW), 0);
        ASSERT_EQ(bbt_gaps_extend(&g, &first, 12, 11, NOW), 0);
        ASSERT_EQ(g.n, 0);
        /* Below: SEQ itself is missing too (named, not received). */
        ASSERT_EQ(bbt_gaps_extend(&g, &first, 12, 7, NOW), 3);
        ASSERT_EQ(first, 7);
        ASSERT_GAPS(&g, { 7, 9 });
        ASSERT_EQ(g.v[0].state, BBT_GAP_WAITING);
        ASSERT_EQ(g.v[0].detected_ms, NOW);
        ASSERT_EQ(bbt_gaps_extend(&g, &first, 12, 6, NOW), 1);
        ASSERT_GAPS(&g, { 6, 6 }, { 7, 9 });
        bbt_gaps_free(&g);
}

/* A skipped range the agent names at its birth, reaching below the series:
 * the series extends to it, and every missing piece inside it is settled;
 * the will and what lies outside the range stay. */
TEST(skipped_range_below_series)
{
        struct bbt_gaps g;
        struct bbt_store_gap v[] = { gap(12, 13, BBT_GAP_WAITING), gap(15, 15, BBT_GAP_WILL),
                                     gap(18, 19, BBT_GAP_REQUESTED) };
        struct pieces p = { .n = 0 };
        int64_t first = 10, high = 25;

        make(&g, 3, v);
        ASSERT_EQ(bbt_gaps_extend(&g, &first, high, 4, NOW), 6);
        ASSERT_GAPS(&g, { 4, 9 }, { 12, 13 }, { 15, 15 }, { 18, 19 });
        ASSERT_OK(bbt_gaps_take(&g, 4, 18, piece_cb, &p));
        ASSERT_PIECES(&p, { 4, 9 }, { 12, 13 }, { 18, 18 });
        ASSERT_GAPS(&g, { 15, 15 }, { 19, 19 });
        ASSERT_EQ(g.v[0].state, BBT_GAP_WILL);
        ASSERT_EQ(first, 4);
        bbt_gaps_free(&g);
}

TEST(mark_will)
{
        struct bbt_gaps g;
        struct bbt_store_gap v[] = { gap(10, 20, BBT_GAP_REQUESTED) };

        v[0].attempts = 1;
        snprintf(v[0].cmd_id, sizeof(v[0].cmd_id), "rs-3-9");
        make(&g, 1, v);
        /* Not missing: nothing. */
        ASSERT(!bbt_gaps_mark_will(&g, 9, 4, NOW));
        ASSERT(!bbt_gaps_mark_will(&g, 21, 4, NOW));
        /* In the middle: split in three, the will on its own, no command. */
        ASSERT(bbt_gaps_mark_will(&g, 15, 4, NOW));
        ASSERT_GAPS(&g, { 10, 14 }, { 15, 15 }, { 16, 20 });
        ASSERT_EQ(g.v[1].state, BBT_GAP_WILL);
        ASSERT_EQ(g.v[1].boot, 4);
        ASSERT_EQ(g.v[1].changed_ms, NOW);
        ASSERT_STR_EQ(g.v[1].cmd_id, "");
        ASSERT_EQ(g.v[0].state, BBT_GAP_REQUESTED);
        ASSERT_STR_EQ(g.v[2].cmd_id, "rs-3-9");
        /* Already the will: unchanged. */
        ASSERT(!bbt_gaps_mark_will(&g, 15, 5, NOW + 1));
        ASSERT_EQ(g.v[1].boot, 4);
        /* At either end of a gap, and a gap of one. */
        ASSERT(bbt_gaps_mark_will(&g, 10, 4, NOW));
        ASSERT_GAPS(&g, { 10, 10 }, { 11, 14 }, { 15, 15 }, { 16, 20 });
        ASSERT(bbt_gaps_mark_will(&g, 20, 4, NOW));
        ASSERT_GAPS(&g, { 10, 10 }, { 11, 14 }, { 15, 15 }, { 16, 19 }, { 20, 20 });
        ASSERT_EQ(g.v[0].state, BBT_GAP_WILL);
        ASSERT_EQ(g.v[4].state, BBT_GAP_WILL);
        ASSERT_EQ(g.v[3].state, BBT_GAP_REQUESTED);
        bbt_gaps_free(&g);
        v[0] = gap(7, 7, BBT_GAP_WAITING);
        make(&g, 1, v);
        ASSERT(bbt_gaps_mark_will(&g, 7, 2, NOW));
        ASSERT_GAPS(&g, { 7, 7 });
        ASSERT_EQ(g.v[0].state, BBT_GAP_WILL);
        /* The will arriving fills its gap like any seq. */
        {
                struct bbt_gaps_change c;
                int64_t first = 1, high = 9;

                ASSERT_EQ(bbt_gaps_track(&g, &first, &high, 7, NOW, &c), 1);
                ASSERT(c.filled);
                ASSERT_EQ(g.n, 0);
        }
        bbt_gaps_free(&g);
}
