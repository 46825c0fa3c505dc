/* The faults report: faults open at the end of the range, and silent terminals. */
#include "build.h"
#include "bbt/base.h"

#include <stdio.h>
#include <string.h>

static const char *fault_name(const char *code, bool chinese)
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
};

/* A row for fault CODE (an agent's or the aggregator's, "silent" ...) of
 * terminal TI: SEVERITY and SOURCE are codes ("error", "agent"). */
static void fault_row(struct bbt_report_data *d, struct bbt_table *t, const struct bbt_report_terminal *ti,
                      const char *code, enum bbt_severity severity, const char *source, int64_t since,
                      const char *detail)
{
        bool agent = strcmp(source, "agent") == 0;

        bbt_build_terminal_row(t, d, ti);
        /* The protocol allows only [a-z][a-z0-9_]*: anything else is a damaged store row, shown as it is. */
        if (bbt_code_valid(code))
                bbt_table_set_code(t, 4, code, fault_name(code, d->o->chinese));
        else
                bbt_table_set_code(t, 4, "other", code);
        if (severity == BBT_SEVERITY_ERROR)
                bbt_table_set_code(t, 5, "error", L(d, "错误", "error"));
        else
                bbt_table_set_code(t, 5, "warning", L(d, "警告", "warning"));
        bbt_table_set_code(t, 6, agent ? "agent" : "aggregator", agent ? L(d, "终端", "terminal") : L(d, "平台", "aggregator"));
        bbt_table_set_time(t, 7, since);
        bbt_table_set_text(t, 8, detail && *detail ? detail : NULL);
}

/* The store gives the faults open at end_ms of the terminals in scope. */
static int fault_list_cb(void *u, const struct bbt_store_fault *f)
{
        struct fault_list_ctx *fl = u;
        struct bbt_report_data *d = fl->d;
        const struct bbt_report_terminal *ti = bbt_report_data_terminal(d, f->terminal_id);

        if (!ti)
                return 0;
        fault_row(d, fl->t, ti, f->code, f->severity, f->source, f->raised_ms, f->detail);
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
                { "detail", "详情", "Detail", BBT_CELL_TEXT, 0 },
        };
        struct fault_list_ctx fl = { d, bbt_document_add_table(doc, "faults", "未消除故障", "Open faults", cols,
                                                               BBT_ELEMENTSOF(cols)) };
        struct bbt_store_scope open_at_end = d->scope;
        char detail[128];

        for (size_t i = 0; i < d->n_terms; i++) {
                const struct bbt_report_terminal *ti = &d->terms[i];

                if (!ti->silent)
                        continue;
                snprintf(detail, sizeof(detail),
                         d->o->chinese ? "超过 %d 个上课日未收到任何数据" : "nothing received for over %d school days",
                         d->s->silent_days);
                fault_row(d, fl.t, ti, "silent", BBT_SEVERITY_ERROR, "aggregator", ti->st ? ti->st->last_seen_ms : 0,
                          detail);
        }
        open_at_end.since_ms = open_at_end.until_ms = d->end_ms;
        return bbt_store_faults_each_in(d->store, &open_at_end, fault_list_cb, &fl);
}

const struct bbt_report_kind bbt_report_faults = {
        .name = "faults",
        .help = "faults open at the end of the range (设备完好率)",
        .title_zh = "设备故障清单",
        .title_en = "Faults",
        .needs = BBT_NEEDS_FAULT_STATE,
        .build = build,
};
