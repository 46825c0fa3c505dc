/* The usage state machine: observations in, closed standby/idle/active intervals out. */
#ifndef BBT_USAGE_TRACKER_H
#define BBT_USAGE_TRACKER_H

#include <stdbool.h>
#include <stdint.h>

#include "bbt/driver.h"
#include "bbt/protocol.h"

typedef void (*bbt_usage_emit_fn)(void *userdata, const struct bbt_usage *interval);

/* Every call takes two clocks: MONO (CLOCK_MONOTONIC ms) measures durations,
 * REAL (CLOCK_REALTIME ms) stamps them. An interval's end stamp is its start
 * stamp plus the monotonic time it lasted, so a clock step never makes an
 * interval negative or longer than it was; the next interval starts at the
 * stepped clock but never before the previous one ended. Time spent
 * suspended does not advance CLOCK_MONOTONIC and is in no interval. */
struct bbt_usage_tracker {
        int64_t idle_timeout_ms, flush_ms;
        bbt_usage_emit_fn emit;
        void *userdata;

        bool display_on, audio_on;
        bool any_input;          /* an input event has been seen */
        int64_t last_input;      /* mono ms of the latest input of any class */
        bool any_interactive;
        int64_t last_interactive; /* mono ms of the latest touch or pen event */

        /* The open interval. */
        enum bbt_usage_state state;
        int64_t start_mono, start_real;
        int64_t counted_to;       /* mono ms up to which audio/interactive time is counted */
        int64_t touch, pen, mouse, key, interactive_ms, audio_ms;
        int64_t last_end_real;    /* end stamp of the last emitted interval */
        int64_t ref_mono, ref_real; /* the two clocks read together at the latest call */
};

/* Starts tracking with the display off (standby) at MONO/REAL. EMIT receives
 * every closed interval; its pointer is valid during the call only. */
void bbt_usage_tracker_init(struct bbt_usage_tracker *t, int64_t idle_timeout_ms, int64_t flush_ms,
                            bbt_usage_emit_fn emit, void *userdata, int64_t mono, int64_t real);

void bbt_usage_tracker_display(struct bbt_usage_tracker *t, bool on, int64_t mono, int64_t real);
void bbt_usage_tracker_audio(struct bbt_usage_tracker *t, bool playing, int64_t mono, int64_t real);
/* COUNT events of class CLS happened at MONO. */
void bbt_usage_tracker_input(struct bbt_usage_tracker *t, enum bbt_input_class cls, int64_t count,
                             int64_t mono, int64_t real);
/* Closes whatever is due by MONO: an idle timeout, a wall-clock hour, usage_flush. */
void bbt_usage_tracker_tick(struct bbt_usage_tracker *t, int64_t mono, int64_t real);
/* Closes the open interval at MONO (on shutdown) and opens the next one. */
void bbt_usage_tracker_flush(struct bbt_usage_tracker *t, int64_t mono, int64_t real);
/* The state now, and the mono ms at which tick() next has something to close. */
enum bbt_usage_state bbt_usage_tracker_state(const struct bbt_usage_tracker *t);
int64_t bbt_usage_tracker_next_deadline(const struct bbt_usage_tracker *t);

#endif
