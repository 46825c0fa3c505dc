/* Audio driver against fixture /proc/asound trees built by the test. */
/* bbt-test: label=unit timeout=20 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio.h"
#include "bbt/base.h"
#include "broker.h"
#include "fixture-tree.h"
#include "test.h"

static char root[64];

/* What the sound card status files say, as the kernel writes them. */
static const char running[] = "state: RUNNING\nowner_pid   : 1234\ntrigger_time: 1763.123\n"
                              "tstamp      : 1765.456\ndelay       : 2048\navail       : 1024\n"
                              "avail_max   : 2048\n-----\nhw_ptr      : 96000\nappl_ptr    : 98048\n";
static const char prepared[] = "state: PREPARED\nowner_pid   : 1234\ntrigger_time: 0.0\n";
static const char closed[] = "closed\n";

static void make_root(void)
{
        snprintf(root, sizeof(root), "%s", bbt_test_tree_new("audio"));
}

static void make_parents(const char *rel)
{
        bbt_test_tree_mkdirs(root, rel);
}

static void put_bytes(const char *rel, const char *data, size_t len)
{
        bbt_test_tree_put_bytes(root, rel, data, len);
}

static void put(const char *rel, const char *text)
{
        bbt_test_tree_put(root, rel, text);
}

static void remove_tree(const char *rel)
{
        bbt_test_tree_remove(root, rel);
}

/* ROOT/proc/asound/card<CARD>/pcm<PCM>p/sub<SUB>/status = TEXT. */
static void substream(int card, const char *pcm, int sub, const char *text)
{
        char rel[256];

        snprintf(rel, sizeof(rel), "proc/asound/card%d/%s/sub%d/status", card, pcm, sub);
        put(rel, text);
        snprintf(rel, sizeof(rel), "proc/asound/card%d/%s/sub%d/info", card, pcm, sub);
        put(rel, "card: 0\ndevice: 0\nsubdevice: 0\nstream: PLAYBACK\n");
}

/* The files a real /proc/asound has besides the cards. */
static void asound(void)
{
        put("proc/asound/version", "Advanced Linux Sound Architecture Driver Version k6.1.0.\n");
        put("proc/asound/cards", " 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n");
        put("proc/asound/card0/id", "PCH\n");
}

static bool playing_now(void)
{
        bool playing = true;

        ASSERT_OK(bbt_audio_read(root, &playing));
        return playing;
}

struct harness {
        uv_loop_t loop;
        struct bbt_driver_events events;
        struct bbt_driver *driver;
        int n, want;
        bool playing[32];
        bool stopped;
};

static void on_audio(void *userdata, bool playing)
{
        struct harness *h = userdata;

        ASSERT_LT(h->n, 32);
        h->playing[h->n++] = playing;
}

static void start(struct harness *h, uint64_t poll_ms)
{
        struct bbt_audio_options opts = { .poll_ms = poll_ms };
        struct bbt_driver_env env;

        memset(h, 0, sizeof(*h));
        ASSERT_OK(uv_loop_init(&h->loop));
        h->events.audio = on_audio;
        h->events.userdata = h;
        env = (struct bbt_driver_env){ .loop = &h->loop, .root = root, .events = &h->events };
        ASSERT_OK(bbt_audio_new(&env, &opts, &h->driver));
        ASSERT_STR_EQ(h->driver->ops->name, "audio");
        ASSERT_OK(h->driver->ops->start(h->driver));
}

static bool has_events(void *arg)
{
        struct harness *h = arg;

        return h->n >= h->want;
}

/* Runs the loop until N events in all were reported (at most TIMEOUT_MS). */
static bool wait_events(struct harness *h, int n, int timeout_ms)
{
        h->want = n;
        return bbt_test_run_until(&h->loop, has_events, h, timeout_ms);
}

static void stopped_cb(void *userdata)
{
        ((struct harness *)userdata)->stopped = true;
}

static bool is_stopped(void *arg)
{
        return ((struct harness *)arg)->stopped;
}

static void finish(struct harness *h)
{
        h->driver->ops->stop(h->driver, stopped_cb, h);
        ASSERT(!h->stopped);
        ASSERT(bbt_test_run_until(&h->loop, is_stopped, h, 2000));
        h->driver->ops->destroy(h->driver);
        bbt_test_loop_close(&h->loop);
}

static void probe(struct harness *h, char *out, size_t size)
{
        FILE *f = fmemopen(out, size - 1, "w");

        ASSERT(f);
        memset(out, 0, size);
        ASSERT_OK(h->driver->ops->probe(h->driver, f));
        fclose(f);
}

TEST(running_is_playing)
{
        struct harness h;
        char out[2048];

        make_root();
        asound();
        substream(0, "pcm0p", 0, running);
        ASSERT(playing_now());

        start(&h, 2000);
        ASSERT(wait_events(&h, 1, 1000)); /* the first reading comes at once, not after 2 s */
        ASSERT(h.playing[0]);
        probe(&h, out, sizeof(out));
        ASSERT_STR_CONTAINS(out, "audio: playing (1 of 1 playback substreams running in ");
        ASSERT_STR_CONTAINS(out, "  card0/pcm0p/sub0: RUNNING\n");
        ASSERT_STR_CONTAINS(out, "polls every 2000 ms");
        finish(&h);
}

TEST(closed_and_other_states_are_not_playing)
{
        static const char *const states[] = {
                closed, prepared, "state: SETUP\n", "state: OPEN\n", "state: PAUSED\n",
                "state: DRAINING\n", "state: XRUN\n", "state: SUSPENDED\n", "state: DISCONNECTED\n",
        };
        struct harness h;

        make_root();
        asound();
        for (size_t i = 0; i < BBT_ELEMENTSOF(states); i++) {
                substream(0, "pcm0p", 0, states[i]);
                if (playing_now())
                        FAIL("\"%s\" counted as playing", states[i]);
        }
        start(&h, 50);
        ASSERT(wait_events(&h, 1, 1000));
        ASSERT(!h.playing[0]);
        finish(&h);
}

TEST(several_cards_and_subdevices)
{
        char path[512], out[4096];
        struct harness h;

        make_root();
        asound();
        substream(0, "pcm0p", 0, closed);
        substream(0, "pcm0p", 1, closed);
        substream(0, "pcm3p", 0, prepared);
        substream(1, "pcm0p", 0, closed);
        substream(1, "pcm1p", 0, closed);
        substream(1, "pcm1p", 1, closed);
        /* Capture is not playback, whatever its state. */
        put("proc/asound/card0/pcm0c/sub0/status", running);
        /* The id symlinks name the same cards again; they are not read twice. */
        snprintf(path, sizeof(path), "%s/proc/asound/PCH", root);
        ASSERT_OK(symlink("card0", path) < 0 ? -errno : 0);
        ASSERT(!playing_now());

        start(&h, 50);
        ASSERT(wait_events(&h, 1, 1000));
        ASSERT(!h.playing[0]);
        probe(&h, out, sizeof(out));
        ASSERT_STR_CONTAINS(out, "audio: not playing (0 of 6 playback substreams running");
        ASSERT_STR_CONTAINS(out, "card0/pcm3p/sub0: state: PREPARED\n");

        /* The second subdevice of card 1's second pcm starts. */
        substream(1, "pcm1p", 1, running);
        ASSERT(wait_events(&h, 2, 1000));
        ASSERT(h.playing[1]);
        /* Another one starts too: still playing, no new event. */
        substream(0, "pcm0p", 1, running);
        ASSERT(!wait_events(&h, 3, 300));
        /* One stops, one still runs. */
        substream(1, "pcm1p", 1, closed);
        ASSERT(!wait_events(&h, 3, 300));
        substream(0, "pcm0p", 1, prepared);
        ASSERT(wait_events(&h, 3, 1000));
        ASSERT(!h.playing[2]);
        ASSERT_EQ(h.n, 3);
        finish(&h);
}

TEST(card_removed_and_added)
{
        struct harness h;

        make_root();
        asound();
        substream(0, "pcm0p", 0, closed);
        substream(1, "pcm0p", 0, running); /* a USB speaker */
        start(&h, 50);
        ASSERT(wait_events(&h, 1, 1000));
        ASSERT(h.playing[0]);

        /* Unplugged while playing. */
        remove_tree("proc/asound/card1");
        ASSERT(wait_events(&h, 2, 1000));
        ASSERT(!h.playing[1]);

        /* Every card gone, then a new one appears and plays. */
        remove_tree("proc/asound/card0");
        ASSERT(!wait_events(&h, 3, 200));
        substream(2, "pcm0p", 0, running);
        ASSERT(wait_events(&h, 3, 1000));
        ASSERT(h.playing[2]);

        /* Even /proc/asound itself gone (snd unloaded) is "not playing". */
        remove_tree("proc/asound");
        ASSERT(wait_events(&h, 4, 1000));
        ASSERT(!h.playing[3]);
        finish(&h);
}

TEST(malformed_status)
{
        static const char *const bad[] = {
                "", "\n\n\n", "state:RUNNING\n", "state: RUNNINGX\n", "state: running\n",
                "xstate: RUNNING\n", "state : RUNNING\n", "STATE: RUNNING\n",
        };
        static const char nul_first[] = "\0state: RUNNING\n";
        char big[8192], out[4096];
        struct harness h;

        make_root();
        asound();
        for (size_t i = 0; i < BBT_ELEMENTSOF(bad); i++) {
                substream(0, "pcm0p", 0, bad[i]);
                if (playing_now())
                        FAIL("\"%s\" counted as playing", bad[i]);
        }
        put_bytes("proc/asound/card0/pcm0p/sub0/status", nul_first, sizeof(nul_first) - 1);
        ASSERT(!playing_now());
        /* Far more than a status file holds, with the state past what is read. */
        memset(big, 'x', sizeof(big));
        memcpy(big + sizeof(big) - 16, "\nstate: RUNNING\n", 16);
        put_bytes("proc/asound/card0/pcm0p/sub0/status", big, sizeof(big));
        ASSERT(!playing_now());
        /* Odd entries around the real ones are skipped. */
        make_parents("proc/asound/card0/pcm0p/sub1/status/x"); /* status is a directory */
        put("proc/asound/card0/pcm0p/sub2", "a file, not a directory\n");
        put("proc/asound/card0/pcmXp/sub0/status", running);
        put("proc/asound/card0/pcm0p/subX/status", running);
        put("proc/asound/cardX/pcm0p/sub0/status", running);
        put("proc/asound/card/pcm0p/sub0/status", running);
        put("proc/asound/card0/pcm0/sub0/status", running);
        put("proc/asound/card0/pcm0px/sub0/status", running);
        put("proc/asound/card7", "not a directory\n");
        ASSERT(!playing_now());
        /* Trailing blanks, a CR, no newline at the end, or not the first line: still RUNNING. */
        substream(0, "pcm0p", 0, "state: RUNNING  \r\n");
        ASSERT(playing_now());
        substream(0, "pcm0p", 0, "state: RUNNING");
        ASSERT(playing_now());
        substream(0, "pcm0p", 0, "owner_pid: 1\nstate: RUNNING\n");
        ASSERT(playing_now());

        substream(0, "pcm0p", 0, "\x01\x1b[31mweird\n");
        start(&h, 50);
        ASSERT(wait_events(&h, 1, 1000));
        ASSERT(!h.playing[0]);
        probe(&h, out, sizeof(out));
        ASSERT_STR_CONTAINS(out, "card0/pcm0p/sub0: ??[31mweird\n");
        ASSERT_STR_CONTAINS(out, "card0/pcm0p/sub1: (unreadable)\n");
        finish(&h);
}

TEST(events_only_on_change)
{
        struct harness h;

        make_root();
        asound();
        substream(0, "pcm0p", 0, closed);
        start(&h, 30);
        ASSERT(wait_events(&h, 1, 1000));
        ASSERT(!h.playing[0]);
        ASSERT(!wait_events(&h, 2, 300)); /* ten polls, no change */
        substream(0, "pcm0p", 0, running);
        ASSERT(wait_events(&h, 2, 1000));
        ASSERT(!wait_events(&h, 3, 300));
        substream(0, "pcm0p", 0, closed);
        ASSERT(wait_events(&h, 3, 1000));
        ASSERT(!wait_events(&h, 4, 300));
        ASSERT_EQ(h.n, 3);
        ASSERT(!h.playing[0] && h.playing[1] && !h.playing[2]);
        finish(&h);
}

TEST(no_alsa)
{
        const struct bbt_driver_ops *ops;
        struct bbt_driver_env env = { .root = NULL };
        struct bbt_driver *d = NULL;
        char out[1024] = "";
        bool playing = true;
        FILE *f;

        make_root();
        ASSERT_EQ(bbt_audio_read(NULL, &playing), -EINVAL);
        ASSERT_OK(bbt_audio_read(root, &playing));
        ASSERT(!playing);
        ASSERT_EQ(bbt_audio_new(&env, NULL, &d), -EINVAL);
        ASSERT(d == NULL);
        env.root = root;
        ASSERT_OK(bbt_audio_new(&env, NULL, &d));
        f = fmemopen(out, sizeof(out) - 1, "w");
        ASSERT(f);
        ASSERT_OK(d->ops->probe(d, f)); /* without a loop or start() */
        fclose(f);
        ASSERT_STR_CONTAINS(out, "audio: not playing: no ALSA (");
        ASSERT_STR_CONTAINS(out, "/proc/asound missing)");
        ASSERT_STR_CONTAINS(out, "polls every 2000 ms");
        ops = d->ops;
        ASSERT_EQ(ops->start(d), -EINVAL);
        ops->destroy(d);
        ops->destroy(NULL);
}

TEST(stop_without_start)
{
        struct harness h;
        struct bbt_driver_env env;

        make_root();
        memset(&h, 0, sizeof(h));
        ASSERT_OK(uv_loop_init(&h.loop));
        env = (struct bbt_driver_env){ .loop = &h.loop, .root = root, .events = NULL };
        ASSERT_OK(bbt_audio_new(&env, NULL, &h.driver));
        finish(&h);
        ASSERT_EQ(h.n, 0);
}

/* Opens and closes DEV (a file standing in for a device node under
 * ROOT/dev/snd): what a player or sound server does. */
static void open_device(const char *rel)
{
        char path[256];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ASSERT(fd >= 0);
        close(fd);
}

TEST(reads_on_device_open_and_sleeps_while_all_closed)
{
        struct harness h;
        char out[1024];

        make_root();
        asound();
        substream(0, "pcm0p", 0, closed);
        put("dev/snd/pcmC0D0p", "");
        put("dev/snd/controlC0", "");
        start(&h, 30);
        ASSERT(wait_events(&h, 1, 1000));
        ASSERT(!h.playing[0]);

        /* Every substream closed: no polling, so a change the kernel would
         * only make after an open is not seen by itself... */
        substream(0, "pcm0p", 0, running);
        ASSERT(!wait_events(&h, 2, 400)); /* thirteen poll periods */
        /* ...but an open of a device is read at once. */
        open_device("dev/snd/pcmC0D0p");
        ASSERT(wait_events(&h, 2, 1000));
        ASSERT(h.playing[1]);

        /* While a substream is open, its state is polled. */
        substream(0, "pcm0p", 0, prepared);
        ASSERT(wait_events(&h, 3, 1000));
        ASSERT(!h.playing[2]);
        substream(0, "pcm0p", 0, running);
        ASSERT(wait_events(&h, 4, 1000));
        ASSERT(h.playing[3]);

        /* Closed again: reported, and the polling stops. */
        substream(0, "pcm0p", 0, closed);
        ASSERT(wait_events(&h, 5, 1000));
        ASSERT(!h.playing[4]);
        substream(0, "pcm0p", 0, running);
        ASSERT(!wait_events(&h, 6, 400));

        probe(&h, out, sizeof(out));
        ASSERT_STR_CONTAINS(out, "polls every 30 ms while a playback device is open; otherwise reads when one in ");
        finish(&h);
}

TEST(sound_devices_that_appear_later_are_watched)
{
        struct harness h;

        make_root();
        asound();
        substream(0, "pcm0p", 0, closed);
        make_parents("dev/null"); /* ROOT/dev, without snd: no sound card yet */
        start(&h, 30);
        ASSERT(wait_events(&h, 1, 1000));
        ASSERT(!h.playing[0]);

        /* The sound module loads: ROOT/dev/snd appears, then a player opens a device. */
        substream(0, "pcm0p", 0, running);
        put("dev/snd/pcmC0D0p", "");
        ASSERT(wait_events(&h, 2, 1000)); /* the creation is read */
        ASSERT(h.playing[1]);
        substream(0, "pcm0p", 0, closed);
        ASSERT(wait_events(&h, 3, 1000)); /* polled while open */
        ASSERT(!h.playing[2]);
        substream(0, "pcm0p", 0, running);
        ASSERT(!wait_events(&h, 4, 400)); /* closed: asleep */
        open_device("dev/snd/pcmC0D0p");
        ASSERT(wait_events(&h, 4, 1000)); /* the new directory is watched */
        ASSERT(h.playing[3]);
        finish(&h);
}
