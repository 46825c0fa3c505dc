/* bbt-sim's scenario: a seeded county of schools and terminals, their school week as protocol messages, and its ground truth. */
#ifndef BBT_SIM_SCENARIO_H
#define BBT_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <bbt/protocol.h>

#define SIM_DAYS 7          /* Monday .. Sunday */
#define SIM_PERIODS_MAX 12

/* How a terminal is used. */
enum sim_profile {
        SIM_TOUCH,        /* a teacher who teaches with touch and pen */
        SIM_VIDEO,        /* only plays video: active by audio, no interaction */
        SIM_RARE,         /* used on one day of the week */
        SIM_STANDBY_ONLY, /* the PC runs, the board is never switched on */
        SIM_NEVER,        /* never reports (registered, no agent running) */
        SIM_PROFILE__COUNT
};
const char *sim_profile_name(enum sim_profile p);

struct sim_period {
        int start_min, end_min;
};

struct sim_bells {
        int n;
        struct sim_period p[SIM_PERIODS_MAX];
};

struct sim_school {
        char code[BBT_ID_MAX + 1];
        char name[96];
        char township[64];
        int type;   /* 0 小学, 1 初中, 2 九年一贯制 */
        int area;   /* 0 城区, 1 镇区, 2 乡村 */
        long students, students_primary, students_junior;
        bool own_bells;  /* its own bell schedule instead of the county's */
        bool holiday;    /* on holiday from Wednesday to Saturday of the week */
};

/* What one terminal did on one day, on the true clock, as the truth counts it. */
struct sim_day {
        int64_t on_ms, active_ms, interactive_ms, on_all_ms;
        int64_t period_ms[SIM_PERIODS_MAX];
        int64_t hb;
        int64_t night_ms;   /* on outside school hours before 06:00 or from 22:00 (on a school day: 夜间) */
};

struct sim_msg {
        enum bbt_channel channel;
        char *json;     /* the payload, as published (and republished for a resend) */
        size_t len;
};

struct sim_terminal {
        size_t school;
        char id[BBT_ID_MAX + 1];
        char room[32];
        enum sim_profile profile;
        bool broken_camera; /* its document camera is missing from the inventory */
        bool lamp;          /* a projector past its lamp hours: lamp_hours alert raised */
        bool overheat;      /* overheat raised and cleared on Tuesday */
        bool stalls;        /* its heartbeat timer stalls: a quarter of its heartbeats never happen */
        int64_t skew_ms;    /* its clock minus the true time */
        bool left_on;       /* nobody switches it off: on (standby) evenings, nights and days off */
        bool night_on[SIM_DAYS]; /* on at some time in the night of day d (22:00 .. 06:00 the next day) */
        struct sim_msg *msgs; /* msgs[i] has seq i + 1 */
        size_t n_msgs, cap_msgs;
        struct sim_day day[SIM_DAYS];
};

struct sim_options {
        const char *county;      /* 6 digits */
        size_t schools;
        size_t terminals_per_school;
        uint64_t seed;
        int32_t monday;          /* local day number of the week's Monday */
        int hb_interval_s;       /* heartbeats in the simulated history, every this (900) */
        int chunk_s;             /* usage intervals are cut at least this often (900, like usage_flush) */
        int offset_min;          /* local time = UTC + this (480) */
        int64_t now_ms;          /* real time: births and the live heartbeats of skewed terminals */
        bool history;            /* generate the week (false: births and inventories only, for live runs) */
        int left_on_pct;         /* this share of the reporting terminals is left on after hours (0) */
        int power_off_min;       /* a power-off schedule: every terminal still on is off at this minute of
                                  * each day (定时关机, e.g. 1080 = 18:00); 0: none */
};

struct sim_scenario {
        struct sim_options o;
        struct sim_bells county_bells, own_bells;
        size_t n_schools;
        struct sim_school *schools;
        size_t n_terminals;
        struct sim_terminal *terminals;
        uint64_t messages; /* produced in all */
};

/* Builds the county and every terminal's messages. Returns 0 or -ENOMEM. */
int sim_scenario_build(const struct sim_options *o, struct sim_scenario *ret);
void sim_scenario_free(struct sim_scenario *s);

/* The topic of terminal T's channel CH into BUF. */
void sim_topic(const struct sim_scenario *s, const struct sim_terminal *t, enum bbt_channel ch, char *buf,
               size_t size);
/* Appends a message for T (encoding M with the next seq, which it sets). Returns 0 or a negative errno. */
int sim_append(struct sim_terminal *t, struct bbt_msg *m);

/* Writes schools.csv, terminals.csv, calendar.csv and bells.csv into DIR
 * (docs/registry.md, docs/calendar.md). Returns 0 or -errno. */
int sim_write_registry(const struct sim_scenario *s, const char *dir);

/* Writes the ground truth of the week as JSON in `bbt-report --format json`'s
 * shape: tables overall (one row; the summary's object), schools, terminals,
 * idle, primary, junior, with the reports' column keys, codes (idle reasons,
 * indicators) and unrounded values. */
int sim_write_truth(const struct sim_scenario *s, FILE *out);

/* Whether day index D (0 = Monday) is a school day for school SC. */
bool sim_school_day(const struct sim_scenario *s, const struct sim_school *sc, int d);

#endif
