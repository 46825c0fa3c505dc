/* bbt-report's reports: a builder per kind, chosen by name from a table, makes a document from the store. */
#ifndef BBT_REPORTS_H
#define BBT_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "calendar.h"
#include "document.h"
#include "indicators.h"
#include "registry.h"
#include "render.h"
#include "store.h"

struct bbt_report_data;

/* What a builder needs gathered before it runs (report_data.h); the
 * schools and terminals in scope are always there. */
enum {
        BBT_NEEDS_FAULT_STATE = 1 << 0, /* open faults at the end of the range, silent terminals, intact */
        BBT_NEEDS_FIGURES = 1 << 1,     /* the rollups: rates and the idle judgement (and the fault state) */
        BBT_NEEDS_SCHOOL = 1 << 2,      /* options: one school (o->school) */
        BBT_NEEDS_WEEK = 1 << 3,        /* options: the range is one week, Monday to Sunday */
        BBT_NEEDS_TERMINAL_RATES = 1 << 4, /* with FIGURES: each terminal's rates too (from its day rollups) */
        /* With FAULT_STATE (or FIGURES): each terminal's last-seen and last-active
         * times, to the millisecond; without it only the day of last-seen is
         * read (all the idle and silent judgements take), from the store's
         * summary of its days, and last_seen_ms is that day's start. */
        BBT_NEEDS_SEEN_TIMES = 1 << 5,
        /* The [energy] settings: the report shows energy (its footer lists them). */
        BBT_NEEDS_ENERGY = 1 << 6,
};

/* Where the figures come from (report_data.c): the store's day aggregates
 * when they fit the report (its day rule and bells), else every day rollup.
 * ROWS and AGGREGATES are for the tests and tools/bench/report-bench, which
 * compare the two (bbt-report reads them from BBT_REPORT_SCAN); AGGREGATES
 * fails with -ESTALE where the aggregates do not fit. */
enum bbt_report_scan { BBT_REPORT_SCAN_AUTO, BBT_REPORT_SCAN_ROWS, BBT_REPORT_SCAN_AGGREGATES };

/* One kind of report. A new one is a file build_NAME.c defining a const
 * struct bbt_report_kind and one entry in reports.c's table; bbt-report's
 * arguments and --help read the table. */
struct bbt_report_kind {
        const char *name;     /* what bbt-report takes: [a-z]+ */
        const char *help;     /* a line for --help; "\n" starts a continuation line */
        const char *title_zh;
        const char *title_en;
        unsigned needs;       /* BBT_NEEDS_* */
        /* Adds the report's tables and notes to DOC from D. Returns 0 or a
         * negative errno (a store error; D->store says which). */
        int (*build)(struct bbt_report_data *d, struct bbt_document *doc);
};

/* The kind called NAME, or NULL. */
const struct bbt_report_kind *bbt_report_kind_find(const char *name);
/* The I-th kind of the table, or NULL past its end. */
const struct bbt_report_kind *bbt_report_kind_at(size_t i);

struct bbt_report_options {
        const struct bbt_report_kind *kind;
        const char *county;  /* NULL: every county */
        const char *school;  /* NULL: every school */
        int32_t from, to;    /* local days, inclusive */
        const struct bbt_renderer *format; /* NULL: the default renderer */
        bool chinese;
        int64_t now_ms;      /* "now", for faults and idle at a range that ends today */
        const char *store_label; /* printed in the settings footer */
        enum bbt_report_scan scan; /* internal: tests and benchmarks only */
        /* Narrows the schools beyond county and school (bbt-web: the user's
         * scope): NULL, or whether school CODE of COUNTY is in, REG its
         * registry row (NULL: a school seen on the wire only). Everything a
         * report shows comes from the schools and terminals let in. */
        bool (*school_in)(const void *u, const char *county, const char *code, const struct bbt_school *reg);
        const void *school_in_data;
};

/* A fault code's name ("overheat": "温度过高" or "overheating"); an unknown
 * code is its own name. The faults report's and bbt-notify's. */
const char *bbt_report_fault_name(const char *code, bool chinese);

/* Sets O's range as bbt-report's --from, --to and --week do (each NULL: not
 * given; TODAY the default last day) and checks that O's kind gets what it
 * needs (one school, one week). PREFIX goes before each parameter's name in
 * ERR ("--" for bbt-report, "" for bbt-web). Returns 0, or -EINVAL with *BAD
 * naming the parameter ("from", "to", "week" or "school") and ERR why. */
int bbt_report_options_range(struct bbt_report_options *o, const char *from, const char *to, const char *week,
                             int32_t today, const char *prefix, const char **bad, char *err, size_t err_size);

/* Builds report O->kind from STORE (read), REG and CAL (may be empty) under
 * settings S, with the settings footer. Returns 0 and *RET (the caller frees
 * it with bbt_document_free), or a negative errno with ERR saying why. */
int bbt_report_build(const struct bbt_report_options *o, struct bbt_store *store, const struct bbt_registry *reg,
                     const struct bbt_calendar *cal, const struct bbt_metric_settings *s, struct bbt_document **ret,
                     char *err, size_t err_size);

/* Builds the report as bbt_report_build does and renders it to OUT with
 * O->format. Returns 0, or a negative errno with ERR saying why. */
int bbt_reports_run(const struct bbt_report_options *o, struct bbt_store *store, const struct bbt_registry *reg,
                    const struct bbt_calendar *cal, const struct bbt_metric_settings *s, FILE *out, char *err,
                    size_t err_size);

#endif
