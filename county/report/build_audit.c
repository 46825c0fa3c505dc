/* The audit report (操作审计): every operator command bbt-ctl sent in the range, who sent it, to whom, and what came of it. */
#include "build.h"
#include "bbt/base.h"

#include <stdio.h>
#include <string.h>

#include "dates.h"

static const struct bbt_column audit_cols[] = {
        { "sent_at", "发送时间", "Sent", BBT_CELL_TIME, 0 },
        { "operator", "操作员", "Operator", BBT_CELL_TEXT, 0 },
        { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
        { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
        { "via", "代发终端", "Via", BBT_CELL_TEXT, 0 },
        { "command", "命令", "Command", BBT_CELL_CODE, 0 },
        { "args", "参数", "Arguments", BBT_CELL_TEXT, 0 },
        { "result", "结果", "Result", BBT_CELL_CODE, 0 },
        { "detail", "详情", "Detail", BBT_CELL_TEXT, 0 },
        { "done_at", "完成时间", "Done", BBT_CELL_TIME, 0 },
        { "command_id", "命令编号", "Command id", BBT_CELL_TEXT, 0 },
};

struct audit_ctx {
        struct bbt_report_data *d;
        struct bbt_table *t;
};

static void set_label(struct bbt_table *t, size_t col, const struct bbt_report_data *d, const char *code,
                      const char *const (*names)[3], size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(code, names[i][0]) == 0) {
                        bbt_table_set_code(t, col, code, L(d, names[i][1], names[i][2]));
                        return;
                }
        bbt_table_set_code(t, col, bbt_code_valid(code) ? code : "other", code);
}

static int audit_cb(void *u, const struct bbt_store_audit *a)
{
        static const char *const ops[][3] = {
                { "shutdown_at", "关机", "power off" },
                { "wake", "远程开机", "wake" },
                { "projector_power", "投影机开关", "projector power" },
                { "set", "修改设置", "set" },
        };
        static const char *const results[][3] = {
                { "ok", "成功", "ok" },
                { "error", "失败", "error" },
                { "timeout", "超时未应答", "timeout" },
                { "not_sent", "未发送", "not sent" },
                { "pending", "等待应答", "pending" },
        };
        struct audit_ctx *ac = u;
        struct bbt_table *t = ac->t;

        bbt_table_add_row(t);
        bbt_table_set_time(t, 0, a->sent_ms);
        bbt_table_set_text(t, 1, a->operator_name);
        bbt_table_set_text(t, 2, a->school);
        bbt_table_set_text(t, 3, a->terminal);
        bbt_table_set_text(t, 4, a->via);
        set_label(t, 5, ac->d, a->op, ops, BBT_ELEMENTSOF(ops));
        bbt_table_set_text(t, 6, a->args);
        set_label(t, 7, ac->d, a->result, results, BBT_ELEMENTSOF(results));
        bbt_table_set_text(t, 8, a->detail);
        if (a->done_ms > 0)
                bbt_table_set_time(t, 9, a->done_ms);
        bbt_table_set_text(t, 10, a->cmd_id);
        return 0;
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        struct bbt_store_scope range = d->scope;
        struct audit_ctx ac = { d, NULL };

        range.since_ms = bbt_day_start_ms(d->o->from, d->s->offset_min);
        range.until_ms = bbt_day_start_ms(d->o->to + 1, d->s->offset_min);
        ac.t = bbt_document_add_table(doc, "commands", "操作命令", "Commands", audit_cols, BBT_ELEMENTSOF(audit_cols));
        bbt_document_add_note(doc,
                              "由 bbt-ctl 发送的每条命令：谁、何时、发给哪台终端（远程开机由同校同网段的在线终端代发）、结果。"
                              "超时：在等待时间内没有应答（终端离线），终端在命令过期后不再执行。",
                              "Every command sent with bbt-ctl: who, when, to which terminal (wake is sent by an online "
                              "terminal of the same school and subnet), and the result. Timeout: no reply in the wait "
                              "(the terminal is offline); a terminal refuses the command once it has expired.");
        return bbt_store_audits_each_in(d->store, &range, audit_cb, &ac);
}

const struct bbt_report_kind bbt_report_audit = {
        .name = "audit",
        .help = "operator commands sent with bbt-ctl: who, when, target, result",
        .title_zh = "操作审计",
        .title_en = "Operator commands",
        .needs = 0,
        .build = build,
};
