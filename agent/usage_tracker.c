/* The usage state machine: standby (display off), idle, active; intervals cut at changes, hours and flushes. */
#include "usage_tracker.h"

#include <string.h>

#define HOUR_MS 3600000LL

static int64_t max64(int64_t a, int64_t b)
{
        return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
        return a < b ? a : b;
}

/* Whether input keeps the terminal active at MONO (strictly inside the timeout). */
static bool input_active(const struct bbt_usage_tracker *t, int64_t mono)
{
        return t->any_input && mono < t->last_input + t->idle_timeout_ms;
}

static enum bbt_usage_state state_at(const struct bbt_usage_tracker *t, int64_t mono)
{
        if (!t->display_on)
                return BBT_USAGE_STANDBY;
        if (t->audio_on || input_active(t, mono))
                return BBT_USAGE_ACTIVE;
        return BBT_USAGE_IDLE;
}

/* Counts audio and interactive time of the open interval up to MONO. */
static void count_to(struct bbt_usage_tracker *t, int64_t mono)
{
        int64_t from = t->counted_to;

        if (mono <= from)
                return;
        if (t->audio_on)
                t->audio_ms += mono - from;
        if (t->state == BBT_USAGE_ACTIVE && t->any_interactive) {
                int64_t until = t->last_interactive + t->idle_timeout_ms;
                int64_t a = max64(from, t->last_interactive), b = min64(mono, until);

                if (b > a)
                        t->interactive_ms += b - a;
        }
        t->counted_to = mono;
}

static void open_interval(struct bbt_usage_tracker *t, int64_t mono, int64_t real)
{
        t->state = state_at(t, mono);
        t->start_mono = mono;
        /* Never start before the previous interval ended, whatever the clock did. */
        t->start_real = max64(real, t->last_end_real);
        t->counted_to = mono;
        t->touch = t->pen = t->mouse = t->key = 0;
        t->interactive_ms = t->audio_ms = 0;
}

/* Closes the open interval at AT (mono) and opens the next one there. */
static void close_at(struct bbt_usage_tracker *t, int64_t at)
{
        struct bbt_usage u;
        int64_t end_real;

        count_to(t, at);
        end_real = t->start_real + (at - t->start_mono);
        memset(&u, 0, sizeof(u));
        u.start = t->start_real;
        u.end = end_real;
        u.state = t->state;
        u.touch = t->touch, u.pen = t->pen, u.mouse = t->mouse, u.key = t->key;
        u.interactive_ms = t->interactive_ms;
        u.audio_ms = t->audio_ms;
        t->last_end_real = end_real;
        /* Empty intervals carry nothing: skip them. */
        if (u.end > u.start || u.touch || u.pen || u.mouse || u.key)
                t->emit(t->userdata, &u);
        /* Re-anchor on the wall clock as it reads for AT, so a corrected clock
         * takes effect at the next interval (open_interval keeps them apart). */
        open_interval(t, at, t->ref_real - (t->ref_mono - at));
}

int64_t bbt_usage_tracker_next_deadline(const struct bbt_usage_tracker *t)
{
        int64_t next_hour_real = (t->start_real / HOUR_MS + 1) * HOUR_MS;
        int64_t deadline = t->start_mono + min64(t->flush_ms, next_hour_real - t->start_real);

        if (t->state == BBT_USAGE_ACTIVE && !t->audio_on && t->any_input)
                deadline = min64(deadline, t->last_input + t->idle_timeout_ms);
        return deadline;
}

/* Closes everything due at or before MONO, in time order. Returns MONO, or the
 * latest time already seen if a caller's clock reading went backwards. */
static int64_t advance(struct bbt_usage_tracker *t, int64_t mono, int64_t real)
{
        if (mono < t->ref_mono)
                mono = t->ref_mono;
        t->ref_mono = mono;
        t->ref_real = real;
        for (int guard = 0; guard < 1000; guard++) {
                int64_t due = bbt_usage_tracker_next_deadline(t);

                if (due > mono)
                        break;
                close_at(t, max64(due, t->start_mono));
        }
        count_to(t, mono);
        return mono;
}

/* Applies a change of observation at MONO: close if the state changed. */
static void settle(struct bbt_usage_tracker *t, int64_t mono)
{
        if (state_at(t, mono) != t->state)
                close_at(t, mono);
}

void bbt_usage_tracker_init(struct bbt_usage_tracker *t, int64_t idle_timeout_ms, int64_t flush_ms,
                            bbt_usage_emit_fn emit, void *userdata, int64_t mono, int64_t real)
{
        memset(t, 0, sizeof(*t));
        t->idle_timeout_ms = idle_timeout_ms;
        t->flush_ms = flush_ms;
        t->emit = emit;
        t->userdata = userdata;
        t->last_end_real = real;
        t->ref_mono = mono;
        t->ref_real = real;
        open_interval(t, mono, real);
}

void bbt_usage_tracker_display(struct bbt_usage_tracker *t, bool on, int64_t mono, int64_t real)
{
        mono = advance(t, mono, real);
        t->display_on = on;
        settle(t, mono);
}

void bbt_usage_tracker_audio(struct bbt_usage_tracker *t, bool playing, int64_t mono, int64_t real)
{
        mono = advance(t, mono, real);
        t->audio_on = playing;
        settle(t, mono);
}

void bbt_usage_tracker_input(struct bbt_usage_tracker *t, enum bbt_input_class cls, int64_t count,
                             int64_t mono, int64_t real)
{
        mono = advance(t, mono, real);
        t->any_input = true;
        t->last_input = mono;
        if (cls == BBT_INPUT_TOUCH || cls == BBT_INPUT_PEN) {
                t->any_interactive = true;
                t->last_interactive = mono;
        }
        settle(t, mono);
        switch (cls) {
        case BBT_INPUT_TOUCH: t->touch += count; break;
        case BBT_INPUT_PEN: t->pen += count; break;
        case BBT_INPUT_MOUSE: t->mouse += count; break;
        case BBT_INPUT_KEY: t->key += count; break;
        default: break;
        }
}

void bbt_usage_tracker_tick(struct bbt_usage_tracker *t, int64_t mono, int64_t real)
{
        advance(t, mono, real);
}

void bbt_usage_tracker_flush(struct bbt_usage_tracker *t, int64_t mono, int64_t real)
{
        mono = advance(t, mono, real);
        close_at(t, mono);
}

enum bbt_usage_state bbt_usage_tracker_state(const struct bbt_usage_tracker *t)
{
        return t->state;
}
