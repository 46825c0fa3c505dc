/* The power schedule (定时关机) sent to each terminal: computed from the calendar, sent at its birth, when it changes and daily. */
#ifndef BBT_POWER_SCHEDULE_H
#define BBT_POWER_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include <bbt/protocol.h>

#include "calendar.h"

struct bbt_ingest;
struct bbt_term;

/* Most days a schedule covers (one power-off a day at most). */
#define BBT_POWER_DAYS_MAX 31

/* One terminal's schedule: its power-off times, as sent. */
struct bbt_power_plan {
        int n;
        int64_t off_ms[BBT_POWER_DAYS_MAX];
        char off[BBT_POWER_DAYS_MAX][80]; /* "2026-12-07T18:00:00+08:00" */
        int64_t rev; /* a hash of the times (0..BBT_INT_MAX): changes when they do */
};

/* SCHOOL's (in COUNTY) power-off times on the DAYS local days from the one
 * holding NOW_MS, at UTC+OFFSET_MIN, from CAL (bbt_calendar_power_off). */
void bbt_power_plan_build(const struct bbt_calendar *cal, const char *county, const char *school, int64_t now_ms,
                          int days, int offset_min, struct bbt_power_plan *ret);

/* T's session began: its schedule is sent (rate-limited) even if unchanged. */
void bbt__power_birth(struct bbt_ingest *in, struct bbt_term *t);
/* The calendar or settings changed: every online terminal's schedule is
 * computed again and sent where it differs from what was sent. */
void bbt__power_changed(struct bbt_ingest *in);
/* A cmd_reply M from T: if it answers a power_schedule ("ps-..."), counts
 * it answered or refused (logged with the reason). Returns whether it did. */
bool bbt__power_reply(struct bbt_ingest *in, struct bbt_term *t, const struct bbt_msg *m);
/* Periodic work: notices the local day turning (the window rolls) and sends
 * the due schedules, at most power_send_rate a second. */
void bbt__power_tick(struct bbt_ingest *in, int64_t now_ms);

#endif
