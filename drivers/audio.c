/* Audio playback running or not, from ALSA's proc/asound/card<N>/pcm<M>p/sub<K>/status files: read when a sound device is opened or closed, polled while one is open. */
#include "audio.h"
#include "bbt/base.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>



/* A running substream's status is ~300 bytes; the state line comes first. */
#define STATUS_SIZE 1024

struct audio {
        struct bbt_driver base;
        char *root;
        uint64_t poll_ms;
        uv_timer_t timer;
        bool timer_open, started, stopping;
        int reported; /* -1 before the first report, else 0 or 1 */
        bool busy;    /* a playback substream was open at the last reading */
        /* Opens and closes in ROOT/dev/snd (or ROOT/dev until snd appears),
         * from inotify; INOTIFY_FD -1: none, so the driver polls always. */
        int inotify_fd, snd_wd, dev_wd;
        uv_poll_t watch;
        bool watch_open;
        unsigned open_handles;
        void (*done)(void *userdata);
        void *done_userdata;
};

/* Called for each playback substream found; returns false to end the walk. */
typedef bool (*visit_fn)(void *arg, const char *card, const char *pcm, const char *sub, const char *status);

/* PREFIX followed by one or more digits and then SUFFIX (may be ""), nothing else. */
static bool name_matches(const char *s, const char *prefix, const char *suffix)
{
        size_t n = strlen(prefix), digits;

        if (strncmp(s, prefix, n) != 0)
                return false;
        digits = strspn(s + n, "0123456789");
        return digits > 0 && strcmp(s + n + digits, suffix) == 0;
}

/* Reads DIRFD/REL into BUF; "" if unreadable. */
static void read_status(int dirfd, const char *rel, char *buf, size_t size)
{
        ssize_t n;
        int fd;

        buf[0] = '\0';
        fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return;
        do
                n = read(fd, buf, size - 1);
        while (n < 0 && errno == EINTR);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
}

/* True when a line of STATUS is "state: RUNNING" (trailing blanks allowed). */
static bool status_running(const char *status)
{
        static const char key[] = "state: RUNNING";
        const char *line = status, *p;

        while (line && *line) {
                if (strncmp(line, key, sizeof(key) - 1) == 0) {
                        for (p = line + sizeof(key) - 1; *p == ' ' || *p == '\t' || *p == '\r'; p++)
                                ;
                        if (*p == '\n' || *p == '\0')
                                return true;
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return false;
}

static int is_card(const struct dirent *de)
{
        /* Only card<N>: the names beside them (PCH, HDMI, ...) are symlinks to the same cards. */
        return name_matches(de->d_name, "card", "");
}

static int is_playback(const struct dirent *de)
{
        return name_matches(de->d_name, "pcm", "p"); /* pcm<M>c is capture */
}

static int is_substream(const struct dirent *de)
{
        return name_matches(de->d_name, "sub", "");
}

static void free_list(struct dirent **list, int n)
{
        for (int i = 0; i < n; i++)
                free(list[i]);
        free(list);
}

/* Calls VISIT for every ROOT/proc/asound/card<N>/pcm<M>p/sub<K>, in
 * version order (card2 before card10). Returns 0, -ENOENT when
 * ROOT/proc/asound cannot be read, -ENOMEM, -ENAMETOOLONG. Cards that vanish
 * during the walk are skipped. */
static int walk(const char *root, visit_fn visit, void *arg)
{
        struct dirent **cards = NULL, **pcms, **subs;
        char path[PATH_MAX], rel[3 * (NAME_MAX + 1) + 16], status[STATUS_SIZE];
        int n_cards, n_pcms, n_subs, c, p, k, fd;
        bool go_on = true;

        if (snprintf(path, sizeof(path), "%s/proc/asound", root) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -ENOENT;
        n_cards = scandirat(fd, ".", &cards, is_card, versionsort);
        if (n_cards < 0) {
                close(fd);
                return errno == ENOMEM ? -ENOMEM : -ENOENT;
        }
        for (c = 0; go_on && c < n_cards; c++) {
                n_pcms = scandirat(fd, cards[c]->d_name, &pcms, is_playback, versionsort);
                for (p = 0; go_on && p < n_pcms; p++) {
                        snprintf(rel, sizeof(rel), "%s/%s", cards[c]->d_name, pcms[p]->d_name);
                        n_subs = scandirat(fd, rel, &subs, is_substream, versionsort);
                        for (k = 0; go_on && k < n_subs; k++) {
                                snprintf(rel, sizeof(rel), "%s/%s/%s/status", cards[c]->d_name,
                                         pcms[p]->d_name, subs[k]->d_name);
                                read_status(fd, rel, status, sizeof(status));
                                go_on = visit(arg, cards[c]->d_name, pcms[p]->d_name, subs[k]->d_name, status);
                        }
                        if (n_subs > 0)
                                free_list(subs, n_subs);
                }
                if (n_pcms > 0)
                        free_list(pcms, n_pcms);
        }
        free_list(cards, n_cards);
        close(fd);
        return 0;
}

static bool find_running(void *arg, const char *card, const char *pcm, const char *sub, const char *status)
{
        bool *playing = arg;

        *playing = status_running(status);
        return !*playing;
}

struct reading {
        bool playing, busy;
};

/* Playing, and whether any playback substream is open at all (its status is
 * not "closed"): while one is, its state can change without an open or close. */
static bool find_state(void *arg, const char *card, const char *pcm, const char *sub, const char *status)
{
        struct reading *rd = arg;

        if (status_running(status))
                rd->playing = true;
        if (status[0] && strncmp(status, "closed", 6) != 0)
                rd->busy = true;
        return true;
}

int bbt_audio_read(const char *root, bool *ret_playing)
{
        bool playing = false;
        int r;

        if (!root || !ret_playing)
                return -EINVAL;
        r = walk(root, find_running, &playing);
        if (r < 0 && r != -ENOENT)
                return r;
        *ret_playing = playing;
        return 0;
}

static void timer_cb(uv_timer_t *t);

/* Reads now, reports a change, and polls again in poll_ms while a playback
 * substream is open, or always when there are no opens and closes to watch. */
static void reading(struct audio *a)
{
        const struct bbt_driver_events *ev = a->base.env.events;
        struct reading rd = { 0 };
        int r;

        if (a->stopping)
                return;
        r = walk(a->root, find_state, &rd);
        if (r < 0 && r != -ENOENT) {
                rd.busy = true; /* try again at the next poll */
        } else if ((int)rd.playing != a->reported) {
                a->reported = rd.playing;
                if (ev && ev->audio)
                        ev->audio(ev->userdata, rd.playing);
        }
        a->busy = rd.busy;
        if (a->busy || a->inotify_fd < 0)
                uv_timer_start(&a->timer, timer_cb, a->poll_ms, 0);
        else
                uv_timer_stop(&a->timer);
}

static void timer_cb(uv_timer_t *t)
{
        reading(bbt_container_of(t, struct audio, timer));
}

/* ---- watching ROOT/dev/snd ---- */

#define SND_EVENTS (IN_OPEN | IN_CLOSE | IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM)

/* Watches ROOT/dev/snd, or ROOT/dev for it to appear. Returns 0, or -errno
 * when neither can be watched. */
static int watch_snd(struct audio *a)
{
        char path[PATH_MAX];

        if (snprintf(path, sizeof(path), "%s/dev/snd", a->root) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        a->snd_wd = inotify_add_watch(a->inotify_fd, path, SND_EVENTS | IN_ONLYDIR);
        if (a->snd_wd >= 0 || a->dev_wd >= 0)
                return 0;
        path[strlen(path) - 4] = '\0'; /* ROOT/dev */
        a->dev_wd = inotify_add_watch(a->inotify_fd, path, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
        return a->dev_wd >= 0 ? 0 : -errno;
}

static void watch_cb(uv_poll_t *p, int status, int events)
{
        struct audio *a = bbt_container_of(p, struct audio, watch);
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool snd_appeared = false, snd_gone = false;
        ssize_t n;

        for (;;) {
                n = read(a->inotify_fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                for (char *q = buf; q < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *)q;

                        if (e->wd == a->dev_wd && e->len && strcmp(e->name, "snd") == 0)
                                snd_appeared = true;
                        if (e->wd == a->snd_wd && (e->mask & IN_IGNORED))
                                snd_gone = true;
                        q += sizeof(*e) + e->len;
                }
        }
        if (snd_gone)
                a->snd_wd = -1;
        if ((snd_appeared || snd_gone) && a->snd_wd < 0)
                (void)watch_snd(a);
        /* Whatever happened (a device opened or closed, a card added), read now. */
        reading(a);
}

/* Starts watching; on any failure the driver polls always, as without inotify. */
static void watch_start(struct audio *a)
{
        a->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (a->inotify_fd < 0)
                return;
        if (watch_snd(a) < 0 || uv_poll_init(a->base.env.loop, &a->watch, a->inotify_fd) < 0) {
                close(a->inotify_fd);
                a->inotify_fd = -1;
                return;
        }
        a->watch_open = true;
        a->open_handles++;
        if (uv_poll_start(&a->watch, UV_READABLE, watch_cb) < 0) {
                uv_poll_stop(&a->watch);
                close(a->inotify_fd); /* the handle is closed at the stop */
                a->inotify_fd = -1;
        }
}

static void close_cb(uv_handle_t *h)
{
        struct audio *a = h->type == UV_TIMER ? bbt_container_of((uv_timer_t *)h, struct audio, timer)
                                              : bbt_container_of((uv_poll_t *)h, struct audio, watch);

        if (--a->open_handles == 0 && a->done)
                a->done(a->done_userdata);
}

static int audio_start(struct bbt_driver *base)
{
        struct audio *a = bbt_container_of(base, struct audio, base);
        int r;

        if (a->started || a->stopping)
                return -EALREADY;
        if (!base->env.loop)
                return -EINVAL;
        r = uv_timer_init(base->env.loop, &a->timer);
        if (r < 0)
                return r;
        a->timer_open = true;
        a->open_handles++;
        a->started = true;
        watch_start(a);
        /* The first reading on the next loop turn, not inside start(). */
        r = uv_timer_start(&a->timer, timer_cb, 0, 0);
        return r < 0 ? r : 0;
}

static void audio_stop(struct bbt_driver *base, void (*done)(void *userdata), void *userdata)
{
        struct audio *a = bbt_container_of(base, struct audio, base);

        if (a->stopping)
                return;
        a->stopping = true;
        a->done = done;
        a->done_userdata = userdata;
        if (!a->timer_open) {
                if (!base->env.loop) {
                        if (done)
                                done(userdata);
                        return;
                }
                /* Never started: a handle only so DONE still comes from the loop. */
                uv_timer_init(base->env.loop, &a->timer);
                a->open_handles++;
        }
        a->timer_open = false;
        uv_close((uv_handle_t *)&a->timer, close_cb);
        if (a->watch_open) {
                a->watch_open = false;
                uv_close((uv_handle_t *)&a->watch, close_cb);
        }
}

struct probe_walk {
        FILE *out; /* NULL: only count */
        size_t n, running;
};

static bool count_substream(void *arg, const char *card, const char *pcm, const char *sub, const char *status)
{
        struct probe_walk *w = arg;

        w->n++;
        w->running += status_running(status);
        return true;
}

static bool print_substream(void *arg, const char *card, const char *pcm, const char *sub, const char *status)
{
        struct probe_walk *w = arg;
        char first[48];
        size_t i;

        if (status_running(status)) {
                fprintf(w->out, "  %s/%s/%s: RUNNING\n", card, pcm, sub);
                return true;
        }
        /* The first line ("closed", "state: PREPARED", ...), control characters shown as '?'. */
        for (i = 0; i < sizeof(first) - 1 && status[i] && status[i] != '\n'; i++)
                first[i] = isprint((unsigned char)status[i]) ? status[i] : '?';
        first[i] = '\0';
        fprintf(w->out, "  %s/%s/%s: %s\n", card, pcm, sub, first[0] ? first : "(unreadable)");
        return true;
}

static bool dir_exists(const char *root, const char *rel)
{
        char path[PATH_MAX];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int audio_probe(struct bbt_driver *base, FILE *out)
{
        struct audio *a = bbt_container_of(base, struct audio, base);
        const char *shown = strcmp(a->root, "/") == 0 ? "" : a->root;
        struct probe_walk w = { .out = out };
        int r;

        /* Counted first so the verdict comes first; a change in between only shows as such. */
        r = walk(a->root, count_substream, &w);
        if (r == -ENOENT)
                fprintf(out, "audio: not playing: no ALSA (%s/proc/asound missing)\n", shown);
        else if (r < 0)
                return r;
        else {
                fprintf(out, "audio: %s (%zu of %zu playback substreams running in %s/proc/asound)\n",
                        w.running ? "playing" : "not playing", w.running, w.n, shown);
                r = walk(a->root, print_substream, &w);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        if (dir_exists(a->root, "dev/snd") || dir_exists(a->root, "dev"))
                fprintf(out, "  polls every %" PRIu64 " ms while a playback device is open; otherwise reads when one "
                        "in %s/dev/snd is opened or closed\n", a->poll_ms, shown);
        else
                fprintf(out, "  polls every %" PRIu64 " ms (no %s/dev to watch)\n", a->poll_ms, shown);
        return ferror(out) ? -EIO : 0;
}

static void audio_destroy(struct bbt_driver *base)
{
        struct audio *a;

        if (!base)
                return;
        a = bbt_container_of(base, struct audio, base);
        if (a->inotify_fd >= 0)
                close(a->inotify_fd);
        bbt_driver_release(&a->base);
        free(a);
}

static const struct bbt_driver_ops audio_ops = {
        .name = "audio",
        .start = audio_start,
        .stop = audio_stop,
        .probe = audio_probe,
        .destroy = audio_destroy,
};

int bbt_audio_new(const struct bbt_driver_env *env, const struct bbt_audio_options *opts,
                  struct bbt_driver **ret)
{
        struct audio *a;

        if (!env || !env->root || !ret)
                return -EINVAL;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        if (bbt_driver_init(&a->base, &audio_ops, env) < 0) {
                free(a);
                return -ENOMEM;
        }
        a->root = (char *)a->base.env.root;
        a->poll_ms = opts && opts->poll_ms ? opts->poll_ms : BBT_AUDIO_POLL_MS;
        a->reported = -1;
        a->inotify_fd = a->snd_wd = a->dev_wd = -1;
        *ret = &a->base;
        return 0;

}
