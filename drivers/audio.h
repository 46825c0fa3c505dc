/* Audio driver: whether playback runs, from ALSA's per-substream status files under a root, read when a sound device opens or closes. */
#ifndef BBT_AUDIO_H
#define BBT_AUDIO_H

#include <stdbool.h>
#include <stdint.h>

#include "bbt/driver.h"

/* Default of bbt_audio_options.poll_ms. */
#define BBT_AUDIO_POLL_MS 2000

struct bbt_audio_options {
        /* How often the status files are read while a playback substream is
         * open (always, where ROOT/dev cannot be watched); 0 means
         * BBT_AUDIO_POLL_MS. */
        uint64_t poll_ms;
};

/* Playback runs when some ROOT/proc/asound/card<N>/pcm<M>p/sub<K>/status
 * has a line "state: RUNNING"; every other state, a closed substream, no
 * sound card or no ROOT/proc/asound at all mean not playing, and so does an
 * unreadable or malformed file. Sets RET_PLAYING and returns 0, or -EINVAL
 * for a NULL argument, -ENAMETOOLONG for a root too long or -ENOMEM
 * (RET_PLAYING then untouched). A few small procfs reads that do not block: it runs on the
 * loop thread. */
int bbt_audio_read(const char *root, bool *ret_playing);

/* Creates the audio driver in RET (the caller frees it with its destroy op,
 * after stop() has called back, or at once if it never started). ENV is
 * copied, and so is the root it names; ENV->events must outlive the driver.
 * Once started it reads on the next loop turn, then whenever a device in
 * ROOT/dev/snd is opened or closed or appears or goes (inotify; ROOT/dev is
 * watched until snd appears), and every poll_ms while a playback substream is
 * open; where ROOT/dev cannot be watched, every poll_ms. It reports
 * events->audio(playing) for the first reading and then only on change.
 * OPTS may be NULL (defaults). Returns 0, -EINVAL or -ENOMEM; RET is
 * untouched on failure. */
int bbt_audio_new(const struct bbt_driver_env *env, const struct bbt_audio_options *opts,
                  struct bbt_driver **ret);

#endif
