/* bbt-report's reports: the store, registry and calendar turned into the evaluation tables (METRICS.md). */
#ifndef BBT_REPORTS_H
#define BBT_REPORTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "calendar.h"
#include "indicators.h"
#include "registry.h"
#include "store.h"
#include "table.h"

enum bbt_report_kind {
        BBT_REPORT_SUMMARY,   /* the county (or selection) overall, by township and by 城区/镇区/乡村 */
        BBT_REPORT_SCHOOLS,   /* one row per school */
        BBT_REPORT_TERMINALS, /* one row per terminal */
        BBT_REPORT_IDLE,      /* 闲置设备 */
        BBT_REPORT_FAULTS,    /* open faults at the end of the range */
        BBT_REPORT_BALANCE,   /* 校际差异系数, primary and junior */
        BBT_REPORT_INVENTORY, /* peripherals present and missing */
        BBT_REPORT_LOSS,      /* delivery: stored, duplicates, lost, missing now, rejected */
        BBT_REPORT__COUNT
};
/* "summary", ...; and back (-EINVAL for an unknown name). */
const char *bbt_report_kind_name(enum bbt_report_kind k);
int bbt_report_kind_parse(const char *s, enum bbt_report_kind *ret);

struct bbt_report_options {
        enum bbt_report_kind kind;
        const char *county;  /* NULL: every county */
        const char *school;  /* NULL: every school */
        int32_t from, to;    /* local days, inclusive */
        enum bbt_format format;
        bool chinese;
        int64_t now_ms;      /* "now", for faults and idle at a range that ends today */
        const char *store_label; /* printed in the settings footer */
};

/* Computes report O->kind from STORE (read), REG and CAL (may be empty) under
 * settings S, and renders it to OUT. Returns 0, or a negative errno with ERR
 * saying why. */
int bbt_reports_run(const struct bbt_report_options *o, struct bbt_store *store, const struct bbt_registry *reg,
                    const struct bbt_calendar *cal, const struct bbt_metric_settings *s, FILE *out, char *err,
                    size_t err_size);

#endif
