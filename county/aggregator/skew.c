/* Clock skew: how far a terminal's clock is off, estimated from its live heartbeats (arithmetic only, no I/O). */
#include "skew.h"

void bbt_skew_seed(struct bbt_skew *s, int64_t skew_ms)
{
        s->sample[0] = skew_ms;
        s->at[0] = 0;
        s->n = 1;
        s->next = 1;
        s->changed_ms = 0;
        s->side = -1;
}

bool bbt_skew_is_live(int64_t spool_depth, bool retained, bool connected, int64_t connected_ms, int64_t warmup_ms,
                      int64_t recv_ms)
{
        return spool_depth == 0 && !retained && connected && recv_ms - connected_ms >= warmup_ms;
}

bool bbt_skew_add(struct bbt_skew *s, int window, int64_t min_ms, int64_t ts, int64_t recv_ms, int64_t *ret_ms)
{
        int n = window > 0 && window <= BBT_SKEW_SAMPLES_MAX ? window : 5;
        int64_t best;

        s->sample[s->next] = ts - recv_ms;
        s->at[s->next] = recv_ms;
        s->next = (s->next + 1) % n;
        if (s->n < n)
                s->n++;
        if (s->n < (n < 3 ? n : 3))
                return false;
        best = s->sample[0];
        for (int i = 1; i < s->n; i++)
                if (s->sample[i] > best)
                        best = s->sample[i];
        if (best > -min_ms && best < min_ms)
                best = 0;
        *ret_ms = best;
        return true;
}

int64_t bbt_skew_since(struct bbt_skew *s, int64_t limit_ms, bool past, int64_t recv_ms)
{
        int64_t since = 0;

        for (int i = 0; i < s->n; i++) {
                int64_t v = s->sample[i] < 0 ? -s->sample[i] : s->sample[i];

                if (s->at[i] > 0 && (v > limit_ms) == past && (since == 0 || s->at[i] < since))
                        since = s->at[i];
        }
        if (since == 0)
                since = recv_ms;
        if (s->side != (int)past) {
                if (since < s->changed_ms)
                        since = s->changed_ms;
                s->side = past;
                s->changed_ms = since;
        } else if (since < s->changed_ms) {
                since = s->changed_ms;
        }
        return since;
}
