/* Benchmark: CPU the input driver's loop thread spends on a touch storm (default 1,000 evdev events/s for 10 s). */
/*
 * Run under umockdev-wrapper:  umockdev-wrapper input-storm [SECONDS [EVENTS_PER_S]]
 *
 * The driver finds and opens the touchscreen of tests/fixtures/umockdev
 * (BBT_FIXTURES, or $BBT_FIXTURES) through libudev and libevdev as in
 * production. Reads of an emulated node are a round trip through
 * umockdev's preload that costs far more than anything the driver does, so
 * once libevdev has the device the benchmark moves it onto a pipe
 * (libevdev_change_fd, through the driver's set_fd hook) and a feeder
 * thread writes one multi-touch frame of four events per write, as the
 * kernel delivers them, at the requested rate. Only the loop thread's CPU
 * time (RUSAGE_THREAD) is counted. The same storm read by a bare uv_poll +
 * read() loop is the baseline: what any reader of the node pays.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libevdev/libevdev.h>
#include <umockdev.h>
#include <uv.h>

#include "input.h"

#ifndef BBT_FIXTURES
#define BBT_FIXTURES "tests/fixtures/umockdev"
#endif
#define NODE "/dev/input/event20"
#define FRAME_EVENTS 4 /* MT x, MT y, ABS_X (or a tracking ID), SYN_REPORT */

struct storm {
        int rd, wr;               /* the pipe */
        unsigned frames, period_ns;
        pthread_t thread;
        volatile int finished;
};

static struct storm storm;
static uint64_t raw_events, counted[BBT_INPUT__COUNT], deliveries;
static struct bbt_driver *driver;
static uv_timer_t end_timer;
static bool stopped;

static double thread_cpu_s(void)
{
        struct rusage ru;

        getrusage(RUSAGE_THREAD, &ru);
        return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6;
}

static double wall_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set(struct input_event *ev, const struct timespec *now, unsigned type, unsigned code, int value)
{
        ev->input_event_sec = now->tv_sec;
        ev->input_event_usec = now->tv_nsec / 1000;
        ev->type = (unsigned short)type;
        ev->code = (unsigned short)code;
        ev->value = value;
}

/* The feeder: one finger moving, landing every 100 frames and lifting 99
 * frames later; each frame one write, on an absolute schedule. */
static void *feed(void *arg)
{
        struct storm *s = arg;
        struct timespec next, now;
        unsigned f;

        clock_gettime(CLOCK_MONOTONIC, &next);
        for (f = 0; f < s->frames; f++) {
                struct input_event frame[FRAME_EVENTS];
                int x = (int)(f % 3000) * 10;

                next.tv_nsec += s->period_ns;
                while (next.tv_nsec >= 1000000000L) {
                        next.tv_nsec -= 1000000000L;
                        next.tv_sec++;
                }
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
                clock_gettime(CLOCK_REALTIME, &now);
                set(&frame[0], &now, EV_ABS, ABS_MT_POSITION_X, x);
                set(&frame[1], &now, EV_ABS, ABS_MT_POSITION_Y, x / 2);
                if (f % 100 == 0)
                        set(&frame[2], &now, EV_ABS, ABS_MT_TRACKING_ID, (int)(f / 100));
                else if (f % 100 == 99)
                        set(&frame[2], &now, EV_ABS, ABS_MT_TRACKING_ID, -1);
                else
                        set(&frame[2], &now, EV_ABS, ABS_X, x);
                set(&frame[3], &now, EV_SYN, SYN_REPORT, 0);
                if (write(s->wr, frame, sizeof(frame)) != (ssize_t)sizeof(frame))
                        break;
        }
        s->finished = 1;
        return NULL;
}

static int storm_start(struct storm *s)
{
        return pthread_create(&s->thread, NULL, feed, s) == 0 ? 0 : -1;
}

/* ---- the driver run ---- */

static int set_fd_on_pipe(struct libevdev *dev, int fd)
{
        int r = libevdev_set_fd(dev, fd);

        if (r < 0)
                return r;
        return libevdev_change_fd(dev, storm.rd) < 0 ? -EINVAL : 0;
}

static int counting_next_event(struct libevdev *dev, unsigned int flags, struct input_event *ev)
{
        int r = libevdev_next_event(dev, flags, ev);

        if (r == LIBEVDEV_READ_STATUS_SUCCESS || r == LIBEVDEV_READ_STATUS_SYNC)
                raw_events++;
        return r;
}

static const struct bbt_input_evdev_ops bench_ops = {
        .set_fd = set_fd_on_pipe,
        .next_event = counting_next_event,
};

static void on_input(void *userdata, enum bbt_input_class cls, uint64_t n)
{
        counted[cls] += n;
        deliveries++;
}

static const struct bbt_driver_events events = {.input = on_input};

static void stopped_cb(void *userdata)
{
        stopped = true;
}

/* Every 100 ms: once the feeder is done and a batch period has passed, stop. */
static void end_cb(uv_timer_t *t)
{
        static int after;

        if (!storm.finished || ++after < 5)
                return;
        uv_close((uv_handle_t *)t, NULL);
        driver->ops->stop(driver, stopped_cb, NULL);
}

/* ---- the baseline run ---- */

struct bare {
        uv_poll_t poll;
        uv_timer_t timer;
        uint64_t events;
        int after;
};

static void bare_readable_cb(uv_poll_t *h, int status, int revents)
{
        struct bare *b = (struct bare *)h;
        struct input_event buf[64];
        ssize_t n;

        while ((n = read(storm.rd, buf, sizeof(buf))) > 0)
                b->events += (uint64_t)n / sizeof(buf[0]);
}

static void bare_end_cb(uv_timer_t *t)
{
        struct bare *b = t->data;

        if (!storm.finished || ++b->after < 5)
                return;
        uv_close((uv_handle_t *)t, NULL);
        uv_close((uv_handle_t *)&b->poll, NULL);
        stopped = true;
}

/* ---- main ---- */

struct result {
        double cpu, wall;
        uint64_t events;
};

static int new_pipe(void)
{
        int p[2];

        if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
                return -1;
        storm.rd = p[0];
        storm.wr = p[1];
        storm.finished = 0;
        fcntl(storm.wr, F_SETFL, 0); /* the feeder blocks if the reader falls behind */
        return 0;
}

static void run(uv_loop_t *loop, struct result *ret)
{
        double cpu0 = thread_cpu_s(), wall0 = wall_s();

        stopped = false;
        if (storm_start(&storm) < 0) {
                fprintf(stderr, "input-storm: cannot start the feeder\n");
                exit(1);
        }
        while (!stopped)
                uv_run(loop, UV_RUN_ONCE);
        ret->cpu = thread_cpu_s() - cpu0;
        ret->wall = wall_s() - wall0;
        pthread_join(storm.thread, NULL);
}

static void print(const char *what, const struct result *r)
{
        printf("%-28s %5.1f s, %6llu events (%4.0f/s), loop thread CPU %.3f s = %.3f %% of a core (%.2f us/event)\n",
               what, r->wall, (unsigned long long)r->events, r->events / r->wall, r->cpu, 100.0 * r->cpu / r->wall,
               r->events ? 1e6 * r->cpu / (double)r->events : 0.0);
}

/* ARG as a count 1..MAX, or exit 2 saying so. */
static unsigned count_arg(const char *what, const char *arg, unsigned long max)
{
        char *end = NULL;
        unsigned long v = strtoul(arg, &end, 10);

        if (*arg == '\0' || *end || v < 1 || v > max) {
                fprintf(stderr, "input-storm: %s %s: expected 1..%lu\n", what, arg, max);
                exit(2);
        }
        return (unsigned)v;
}

int main(int argc, char **argv)
{
        unsigned seconds = argc > 1 ? count_arg("seconds", argv[1], 3600) : 10;
        unsigned rate = argc > 2 ? count_arg("rate", argv[2], 1000000) : 1000;
        const char *fixtures = getenv("BBT_FIXTURES") ? getenv("BBT_FIXTURES") : BBT_FIXTURES;
        struct bbt_input_options opts = {.evdev_ops = &bench_ops};
        struct result base = {0}, drv = {0};
        struct bbt_driver_env env;
        struct bare bare = {0};
        UMockdevTestbed *tb;
        GError *err = NULL;
        char path[1024];
        uv_loop_t loop;
        int r;

        if (!getenv("LD_PRELOAD") || !strstr(getenv("LD_PRELOAD"), "umockdev")) {
                fprintf(stderr, "input-storm: run me under umockdev-wrapper\n");
                return 77;
        }
        if (seconds == 0 || seconds > 600 || rate < FRAME_EVENTS || rate > 1000000) {
                fprintf(stderr, "usage: input-storm [SECONDS (1..600) [EVENTS_PER_S (4..1000000)]]\n");
                return 2;
        }
        storm.frames = seconds * rate / FRAME_EVENTS;
        storm.period_ns = (unsigned)(1000000000ULL * FRAME_EVENTS / rate);
        uv_loop_init(&loop);

        /* 1. The baseline: a bare reader of the same storm. */
        if (new_pipe() < 0 || uv_poll_init(&loop, &bare.poll, storm.rd) < 0) {
                fprintf(stderr, "input-storm: pipe: %s\n", strerror(errno));
                return 1;
        }
        uv_poll_start(&bare.poll, UV_READABLE, bare_readable_cb);
        uv_timer_init(&loop, &bare.timer);
        bare.timer.data = &bare;
        uv_timer_start(&bare.timer, bare_end_cb, 100, 100);
        run(&loop, &base);
        base.events = bare.events;
        uv_run(&loop, UV_RUN_DEFAULT);
        close(storm.rd);
        close(storm.wr);

        /* 2. The driver, on the fixture touchscreen moved onto a fresh pipe. */
        tb = umockdev_testbed_new();
        snprintf(path, sizeof(path), "%s/touchscreen.umockdev", fixtures);
        if (!umockdev_testbed_add_from_file(tb, path, &err)) {
                fprintf(stderr, "input-storm: %s: %s\n", path, err->message);
                return 1;
        }
        snprintf(path, sizeof(path), "%s/touchscreen.ioctl", fixtures);
        if (!umockdev_testbed_load_ioctl(tb, NODE, path, &err)) {
                fprintf(stderr, "input-storm: %s: %s\n", path, err->message);
                return 1;
        }
        if (new_pipe() < 0) {
                fprintf(stderr, "input-storm: pipe: %s\n", strerror(errno));
                return 1;
        }
        env = (struct bbt_driver_env){.loop = &loop, .root = "/", .events = &events};
        if ((r = bbt_input_new(&env, &opts, &driver)) < 0 || (r = driver->ops->start(driver)) < 0 ||
            bbt_input_watched(driver) != 1) {
                fprintf(stderr, "input-storm: starting the driver: %s\n", r < 0 ? strerror(-r) : "no touchscreen");
                return 1;
        }
        uv_timer_init(&loop, &end_timer);
        uv_timer_start(&end_timer, end_cb, 100, 100);
        run(&loop, &drv);
        drv.events = raw_events;
        driver->ops->destroy(driver);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        close(storm.rd);
        close(storm.wr);
        g_object_unref(tb);

        print("baseline (uv_poll + read):", &base);
        print("input driver:", &drv);
        printf("%-28s %.3f %% of a core; %llu touches counted, delivered in %llu batches\n", "driver over baseline:",
               100.0 * (drv.cpu / drv.wall - base.cpu / base.wall), (unsigned long long)counted[BBT_INPUT_TOUCH],
               (unsigned long long)deliveries);
        return 0;
}
