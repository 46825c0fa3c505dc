/* What a report works on: the schools and terminals in scope, with the figures gathered from the store for them. */
#ifndef BBT_REPORT_DATA_H
#define BBT_REPORT_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reports.h"

enum { BBT_AFTER_SCHOOL_DAYS, BBT_AFTER_WEEKEND, BBT_AFTER_HOLIDAY, BBT_AFTER__COUNT };

struct bbt_report_school {
        char county[7];
        char code[BBT_ID_MAX + 1];
        const struct bbt_school *reg; /* NULL: a school code seen on the wire only */
        uint8_t *school_day;          /* over d->qfrom .. d->to */
        int32_t idle_from;            /* first day of the idle window */
        const struct bbt_bells *bells;
        size_t n_terminals;
        struct bbt_rates_acc acc;     /* BBT_NEEDS_FIGURES */
        /* BBT_NEEDS_FIGURES: its terminals' on-time outside school hours over
         * the range (docs/metrics.md, "After-hours energy"), by the kind of
         * day: school days (evening and night), weekends, other days */
        int64_t after_ms[BBT_AFTER__COUNT];
};

struct bbt_report_terminal {
        char id[BBT_ID_MAX + 1];
        size_t school;                         /* index into d->schools */
        const struct bbt_store_terminal_brief *st; /* NULL: registered, never reported */
        const struct bbt_terminal_entry *reg;  /* NULL: not in the registry */
        /* BBT_NEEDS_FAULT_STATE: as of the end of the range, from the store's
         * history (docs/metrics.md, "History"); 0: none by then. Without
         * BBT_NEEDS_SEEN_TIMES, last_seen_ms is the start of its day and
         * last_active_ms is 0. */
        int64_t last_seen_ms, last_active_ms;
        bool silent;                           /* BBT_NEEDS_FAULT_STATE: nothing received for silent_days */
        int64_t silent_since_ms;               /* when that silence opened; 0: not known (never reported) */
        int open_faults;                       /* BBT_NEEDS_FAULT_STATE: open at end_ms */
        bool intact;                           /* BBT_NEEDS_FAULT_STATE: neither of those */
        struct bbt_rates_acc acc;              /* BBT_NEEDS_FIGURES */
        enum bbt_idle_reason idle;             /* BBT_NEEDS_FIGURES */
        int idle_used;                         /* BBT_NEEDS_FIGURES */
        bool seen_rows;
};

struct bbt_report_data {
        const struct bbt_report_options *o;
        const struct bbt_metric_settings *s;
        const struct bbt_registry *reg;
        const struct bbt_calendar *cal;
        struct bbt_store *store;
        struct bbt_store_scope scope; /* the options' county and school, no time bounds */
        int32_t qfrom, to;            /* days held in school_day arrays */
        int64_t end_ms;               /* the end of the range, or now if earlier */
        bool live;                    /* the range reaches now: what is current (online) applies to it */
        struct bbt_store_terminal_brief *st; /* the store's terminals in scope, in store id order */
        size_t n_st, cap_st;
        struct bbt_report_school *schools; /* the registry's order, then those seen on the wire only */
        size_t n_schools, cap_schools;
        size_t school_hint;                /* the school school_add found last */
        size_t *school_of_reg;             /* [registry school]: its index in schools + 1, 0: not added */
        uint8_t *county_days;              /* school_day of a school with no days of its own in ... */
        char county_days_of[7];            /* ... this county: its schools share it */
        struct bbt_report_terminal *terms;
        size_t n_terms, cap_terms;
        size_t *by_store_id; /* store id → 1 + index into terms; 0: not in scope */
        int64_t max_store_id;
        bool from_aggregates;         /* the figures came from the store's day aggregates, not its rollups */
        struct bbt_day_rollup *buf; /* one terminal's rows while streaming */
        size_t n_buf, cap_buf;
        size_t buf_term;
};

/* Fills D for options O: the schools and terminals in scope, and what NEEDS
 * (BBT_NEEDS_*) asks for. Returns 0 or a negative errno; bbt_report_data_free
 * D either way. */
int bbt_report_data_gather(struct bbt_report_data *d, const struct bbt_report_options *o, struct bbt_store *store,
                           const struct bbt_registry *reg, const struct bbt_calendar *cal,
                           const struct bbt_metric_settings *s, unsigned needs);
void bbt_report_data_free(struct bbt_report_data *d);

/* Whether DAY is a school day of school SI (any day, in the range or not). */
bool bbt_report_data_school_day(const struct bbt_report_data *d, const struct bbt_report_school *si, int32_t day);

/* The instant a terminal last heard from at LAST_SEEN_MS (> 0) is silent
 * (more than silent_days school days of SI with nothing received): the end
 * of the first day that makes it so. */
int64_t bbt_report_data_silent_from(const struct bbt_report_data *d, const struct bbt_report_school *si,
                                    int64_t last_seen_ms);

/* The terminal in scope whose store id is STORE_ID, or NULL. */
const struct bbt_report_terminal *bbt_report_data_terminal(const struct bbt_report_data *d, int64_t store_id);

#endif
