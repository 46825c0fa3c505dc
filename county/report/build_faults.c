/* The faults report: the faults present in the range, silent spells included, each with when it opened and cleared. */
#include "build.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dates.h"

const char *bbt_report_fault_name(const char *code, bool chinese)
{
        static const struct {
                const char *code, *zh, *en;
        } names[] = {
                { "silent", "长期未上报", "silent" },
                { "overheat", "温度过高", "overheating" },
                { "disk_low", "磁盘空间不足", "disk space low" },
                { "periph_missing", "外设缺失", "peripheral missing" },
                { "projector_error", "投影机故障", "projector error" },
                { "lamp_hours", "灯泡超时", "lamp past its hours" },
                { "clock_skew", "时钟偏差", "clock off" },
                { "spool_drop", "缓存溢出丢弃", "spool overflow" },
                { "offline", "离线", "offline" },
        };

        for (size_t i = 0; i < BBT_ELEMENTSOF(names); i++)
                if (strcmp(names[i].code, code) == 0)
                        return chinese ? names[i].zh : names[i].en;
        return code;
}

struct fault_list_ctx {
        struct bbt_report_data *d;
        struct bbt_table *t;
        int64_t *before;  /* per terminal: its last message before the range (0: none) */
        int64_t *last;    /* per terminal: its last message up to the row being read */
};

/* Cleared shown only when it was before the end of the range: a fault
 * cleared at or after it was open then (and a report run earlier could not
 * have known when it would clear). */
static void fault_row(struct bbt_report_data *d, struct bbt_table *t, const struct bbt_report_terminal *ti,
                      const char *code, enum bbt_severity severity, const char *source, int64_t since,
                      int64_t cleared, const char *detail)
{
        bool agent = strcmp(source, "agent") == 0;

        bbt_build_terminal_row(t, d, ti);
        /* The protocol allows only [a-z][a-z0-9_]*: anything else is a damaged store row, shown as it is. */
        if (bbt_code_valid(code))
                bbt_table_set_code(t, 4, code, bbt_report_fault_name(code, d->o->chinese));
        else
                bbt_table_set_code(t, 4, "other", code);
        if (severity == BBT_SEVERITY_ERROR)
                bbt_table_set_code(t, 5, "error", L(d, "错误", "error"));
        else
                bbt_table_set_code(t, 5, "warning", L(d, "警告", "warning"));
        bbt_table_set_code(t, 6, agent ? "agent" : "aggregator",
                           agent ? L(d, "终端", "terminal") : L(d, "平台", "aggregator"));
        bbt_table_set_time(t, 7, since);
        if (cleared > 0 && cleared < d->end_ms)
                bbt_table_set_time(t, 8, cleared);
        bbt_table_set_text(t, 9, detail && *detail ? detail : NULL);
}

/* A silent spell of TI: since SINCE (0: not known), after a last message at
 * LAST_SEEN (0: none ever), cleared by a message at CLEARED (0: not by the end). */
static void silent_row(struct fault_list_ctx *fl, const struct bbt_report_terminal *ti, int64_t since,
                       int64_t last_seen, int64_t cleared)
{
        struct bbt_report_data *d = fl->d;
        char detail[192], when[32];

        if (last_seen > 0) {
                bbt_time_format(last_seen, d->s->offset_min, false, when, sizeof(when));
                if (d->o->chinese)
                        snprintf(detail, sizeof(detail), "%s 后超过 %d 个上课日未收到任何数据", when,
                                 d->s->silent_days);
                else
                        snprintf(detail, sizeof(detail), "nothing received for over %d school days after %s",
                                 d->s->silent_days, when);
        } else {
                snprintf(detail, sizeof(detail),
                         d->o->chinese ? "超过 %d 个上课日未收到任何数据" : "nothing received for over %d school days",
                         d->s->silent_days);
        }
        fault_row(d, fl->t, ti, "silent", BBT_SEVERITY_ERROR, "aggregator", since, cleared, detail);
}

/* The silent spells a terminal's messages in the range end: the rollups of
 * the range come by terminal then day; each day's first message clears
 * a silence that opened after the previous message. */
static int silent_spell_cb(void *u, int64_t terminal_id, const struct bbt_day_rollup *row)
{
        struct fault_list_ctx *fl = u;
        struct bbt_report_data *d = fl->d;
        const struct bbt_report_terminal *ti = bbt_report_data_terminal(d, terminal_id);
        size_t i;
        int64_t since;

        if (!ti || row->first_msg_ms <= 0 || row->first_msg_ms >= d->end_ms)
                return 0;
        i = (size_t)(ti - d->terms);
        /* A terminal's very first message ends no spell here: before it the
         * terminal was not reporting yet (silent at any end before it, but
         * listed only while that lasts). */
        if (fl->last[i] > 0) {
                since = bbt_report_data_silent_from(d, &d->schools[ti->school], fl->last[i]);
                if (since > 0 && since <= row->first_msg_ms)
                        silent_row(fl, ti, since, fl->last[i], row->first_msg_ms);
        }
        fl->last[i] = row->last_msg_ms < d->end_ms ? row->last_msg_ms : row->first_msg_ms;
        return 0;
}

static int before_cb(void *u, const struct bbt_store_seen *seen)
{
        struct fault_list_ctx *fl = u;
        const struct bbt_report_terminal *ti = bbt_report_data_terminal(fl->d, seen->terminal_id);

        if (ti)
                fl->before[ti - fl->d->terms] = seen->last_msg_ms;
        return 0;
}

/* Every silent spell in the range, terminal by terminal: those that a
 * message in the range ended, then the one still open at its end. */
static int silent_spells(struct fault_list_ctx *fl)
{
        struct bbt_report_data *d = fl->d;
        struct bbt_store_scope before = d->scope, range = d->scope;
        int r;

        before.to_day = d->o->from - 1;
        r = bbt_store_seen_each_in(d->store, &before, before_cb, fl);
        if (r < 0)
                return r;
        memcpy(fl->last, fl->before, d->n_terms * sizeof(*fl->last));
        range.from_day = d->o->from;
        range.to_day = d->to;
        r = bbt_store_days_each_in(d->store, &range, silent_spell_cb, fl);
        if (r < 0)
                return r;
        for (size_t i = 0; i < d->n_terms; i++)
                if (d->terms[i].silent)
                        silent_row(fl, &d->terms[i], d->terms[i].silent_since_ms, d->terms[i].last_seen_ms, 0);
        return 0;
}

/* The store gives the faults present in the range of the terminals in scope. */
static int fault_list_cb(void *u, const struct bbt_store_fault *f)
{
        struct fault_list_ctx *fl = u;
        struct bbt_report_data *d = fl->d;
        const struct bbt_report_terminal *ti = bbt_report_data_terminal(d, f->terminal_id);

        if (!ti)
                return 0;
        fault_row(d, fl->t, ti, f->code, f->severity, f->source, f->raised_ms, f->cleared_ms, f->detail);
        return 0;
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "fault", "故障", "Fault", BBT_CELL_CODE, 0 },
                { "severity", "级别", "Severity", BBT_CELL_CODE, 0 },
                { "source", "来源", "Source", BBT_CELL_CODE, 0 },
                { "since", "发生时间", "Since", BBT_CELL_TIME, 0 },
                { "cleared", "消除时间", "Cleared", BBT_CELL_TIME, 0 }, /* null: still open at the end */
                { "detail", "详情", "Detail", BBT_CELL_TEXT, 0 },
        };
        struct fault_list_ctx fl = { d, bbt_document_add_table(doc, "faults", "期间故障", "Faults in the range", cols,
                                                               BBT_ELEMENTSOF(cols)),
                                     calloc(d->n_terms + 1, sizeof(int64_t)), calloc(d->n_terms + 1, sizeof(int64_t)) };
        struct bbt_store_scope in_range = d->scope;
        int r = fl.before && fl.last ? silent_spells(&fl) : -ENOMEM;

        free(fl.before);
        free(fl.last);
        if (r < 0)
                return r;
        in_range.since_ms = bbt_day_start_ms(d->o->from, d->s->offset_min);
        in_range.until_ms = d->end_ms;
        r = bbt_store_faults_each_in(d->store, &in_range, fault_list_cb, &fl);
        bbt_document_add_note(doc,
                              "列出统计期间内存在过的故障；没有消除时间的故障在截止时仍未消除，计入设备完好率。"
                              "长期未上报：超过规定上课日未收到任何数据，自该上课日结束时起算，收到数据时消除。",
                              "Every fault present at some time in the range; one without a cleared time was still "
                              "open at its end and counts against the intact rate. Silent: nothing received for more "
                              "than the set school days, from the end of the day that makes it so until a message "
                              "arrives.");
        return r;
}

const struct bbt_report_kind bbt_report_faults = {
        .name = "faults",
        .help = "faults in the range, when each opened and cleared; those open at its end (设备完好率)",
        .title_zh = "设备故障清单",
        .title_en = "Faults",
        .needs = BBT_NEEDS_FAULT_STATE | BBT_NEEDS_SEEN_TIMES,
        .build = build,
};
