/* The loss report: delivery per terminal, lost and skipped seqs with reasons, seq conflicts, the ingest counters. */
#include "build.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gap_sum_ctx {
        struct bbt_report_data *d;
        int64_t *missing; /* per terminal in scope */
};

static int gap_sum_cb(void *u, int64_t terminal_id, const struct bbt_store_gap *g)
{
        struct gap_sum_ctx *gs = u;
        const struct bbt_report_terminal *t = bbt_report_data_terminal(gs->d, terminal_id);

        if (t)
                gs->missing[t - gs->d->terms] += g->to - g->from + 1;
        return 0;
}

struct counter_ctx {
        const struct bbt_report_data *d;
        struct bbt_table *t;
};

static int counter_cb(void *u, const char *name, int64_t value)
{
        struct counter_ctx *cc = u;

        bbt_table_add_row(cc->t);
        bbt_table_set_text(cc->t, 0, name);
        bbt_table_set_int(cc->t, 1, value);
        return 0;
}

/* Sets CODE cell COL of T's last row to loss reason REASON, as the
 * aggregator records it (in English): its code and its label in the
 * report's language. A reason not in the table is "other", shown as it is. */
static void set_loss_reason(struct bbt_table *t, size_t col, const struct bbt_report_data *d, const char *reason)
{
        static const struct {
                const char *code, *en, *zh;
        } names[] = {
                { "not_in_spool", "no longer in the agent's spool", "终端缓存中已不存在（缓存已满或已过期删除）" },
                { "never_produced", "never produced by the agent", "终端从未产生" },
                { "resend_timeout", "not resent in time", "补传超时" },
                { "resend_unanswered", "no answer to resend", "补传请求无应答" },
                { "resent_not_received", "resent but never received", "已补传但未收到" },
                { "spool_damaged", "lost from the agent's spool (damage, or a power cut)", "终端缓存损坏或断电时未写入磁盘" },
                { "not_stored", "never stored by the agent (disk full or write error)",
                  "终端未能写入缓存（磁盘已满或写入错误）" },
                { "unclean_not_in_spool", "used before an unclean stop, not in the agent's spool",
                  "异常停止前已使用，终端缓存中没有" },
                { "unclean_not_received", "used before an unclean stop, never received", "异常停止前已使用，未收到" },
                { "unclean_skipped", "never used (skipped after an unclean stop)", "未使用（终端异常停止后跳过的序号）" },
                { "unknown", "the agent cannot tell: lost, or never used",
                  "终端无法判断：已丢失或从未使用（早于其记录的异常停止）" },
        };

        for (size_t i = 0; i < BBT_ELEMENTSOF(names); i++)
                if (strcmp(reason, names[i].en) == 0) {
                        bbt_table_set_code(t, col, names[i].code, L(d, names[i].zh, names[i].en));
                        return;
                }
        bbt_table_set_code(t, col, "other", reason);
}

/* Sets CODE cell COL of T's last row to channel CH: its name ("cmd/reply" as
 * "cmd_reply") and label. */
static void set_channel(struct bbt_table *t, size_t col, const struct bbt_report_data *d, enum bbt_channel ch)
{
        static const char *const labels[BBT_CH__COUNT][3] = {
                [BBT_CH_STATE] = { "state", "状态", "state" },
                [BBT_CH_HB] = { "hb", "心跳", "heartbeat" },
                [BBT_CH_USAGE] = { "usage", "使用记录", "usage" },
                [BBT_CH_PERIPH] = { "periph", "外设事件", "peripheral event" },
                [BBT_CH_INVENTORY] = { "inventory", "外设清单", "inventory" },
                [BBT_CH_ALERT] = { "alert", "告警", "alert" },
                [BBT_CH_CMD] = { "cmd", "命令", "command" },
                [BBT_CH_CMD_REPLY] = { "cmd_reply", "命令应答", "command reply" },
        };

        if ((int)ch < 0 || ch >= BBT_CH__COUNT)
                return; /* empty */
        bbt_table_set_code(t, col, labels[ch][0], L(d, labels[ch][1], labels[ch][2]));
}

struct loss_list_ctx {
        struct bbt_report_data *d;
        struct bbt_table *t;
};

/* A new row for the terminal STORE_ID (school code, terminal) if it is in
 * the report's scope; false if not. */
static bool terminal_row(struct loss_list_ctx *ll, int64_t store_id)
{
        const struct bbt_report_terminal *ti = bbt_report_data_terminal(ll->d, store_id);

        if (!ti)
                return false;
        bbt_table_add_row(ll->t);
        bbt_table_set_text(ll->t, 0, ll->d->schools[ti->school].code);
        bbt_table_set_text(ll->t, 1, ti->id);
        return true;
}

static int loss_list_cb(void *u, const struct bbt_store_loss *l)
{
        struct loss_list_ctx *ll = u;

        if (!terminal_row(ll, l->terminal_id))
                return 0;
        if (l->kind == BBT_LOSS_SKIPPED)
                bbt_table_set_code(ll->t, 2, "skipped", L(ll->d, "跳过（未使用）", "skipped (never used)"));
        else
                bbt_table_set_code(ll->t, 2, "lost", L(ll->d, "丢失", "lost"));
        bbt_table_set_int(ll->t, 3, l->from);
        bbt_table_set_int(ll->t, 4, l->to);
        bbt_table_set_int(ll->t, 5, l->to - l->from + 1);
        set_loss_reason(ll->t, 6, ll->d, l->reason);
        bbt_table_set_time(ll->t, 7, l->recorded_ms);
        return 0;
}

static int conflict_list_cb(void *u, const struct bbt_store_conflict *cf)
{
        struct loss_list_ctx *ll = u;

        if (!terminal_row(ll, cf->terminal_id))
                return 0;
        bbt_table_set_int(ll->t, 2, cf->seq);
        set_channel(ll->t, 3, ll->d, cf->channel);
        bbt_table_set_time(ll->t, 4, cf->recv_ms);
        return 0;
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "received", "已存储", "Stored", BBT_CELL_INT, 0 },
                { "duplicates", "重复", "Duplicates", BBT_CELL_INT, 0 },
                { "lost", "丢失", "Lost", BBT_CELL_INT, 0 },
                { "skipped", "跳过(未使用)", "Skipped (never used)", BBT_CELL_INT, 0 },
                { "conflicts", "序号冲突", "Seq conflicts", BBT_CELL_INT, 0 },
                { "missing", "待补传", "Missing now", BBT_CELL_INT, 0 },
                { "spool_dropped", "终端缓存溢出", "Dropped by agent", BBT_CELL_INT, 0 },
                { "first_seq", "首序号", "First seq", BBT_CELL_INT, 0 },
                { "last_seq", "末序号", "Last seq", BBT_CELL_INT, 0 },
        };
        static const struct bbt_column range_cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "kind", "类别", "Kind", BBT_CELL_CODE, 0 },
                { "from_seq", "起始序号", "From seq", BBT_CELL_INT, 0 },
                { "to_seq", "结束序号", "To seq", BBT_CELL_INT, 0 },
                { "count", "条数", "Count", BBT_CELL_INT, 0 },
                { "reason", "原因", "Reason", BBT_CELL_CODE, 0 },
                { "recorded", "记录时间", "Recorded", BBT_CELL_TIME, 0 },
        };
        static const struct bbt_column conflict_cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "terminal", "终端", "Terminal", BBT_CELL_TEXT, 0 },
                { "seq", "序号", "Seq", BBT_CELL_INT, 0 },
                { "channel", "通道", "Channel", BBT_CELL_CODE, 0 },
                { "received", "收到时间", "Received", BBT_CELL_TIME, 0 },
        };
        static const struct bbt_column counter_cols[] = {
                { "counter", "计数项", "Counter", BBT_CELL_TEXT, 0 },
                { "value", "数值", "Value", BBT_CELL_INT, 0 },
        };
        struct bbt_table *t = bbt_document_add_table(doc, "terminals", "各终端传输情况", "Delivery per terminal",
                                                     cols, BBT_ELEMENTSOF(cols));
        struct gap_sum_ctx gs = { d, calloc(d->n_terms + 1, sizeof(int64_t)) };
        struct counter_ctx cc = { d, NULL };
        struct loss_list_ctx ll = { d, NULL };
        int r;

        if (!gs.missing)
                return -ENOMEM;
        r = bbt_store_gaps_each_in(d->store, &d->scope, gap_sum_cb, &gs);
        for (size_t i = 0; r == 0 && i < d->n_terms; i++) {
                const struct bbt_report_terminal *ti = &d->terms[i];

                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, d->schools[ti->school].code);
                bbt_table_set_text(t, 1, ti->id);
                if (!ti->st)
                        continue;
                bbt_table_set_int(t, 2, ti->st->received);
                bbt_table_set_int(t, 3, ti->st->duplicates);
                bbt_table_set_int(t, 4, ti->st->lost);
                bbt_table_set_int(t, 5, ti->st->skipped);
                bbt_table_set_int(t, 6, ti->st->conflicts);
                bbt_table_set_int(t, 7, gs.missing[i]);
                bbt_table_set_int(t, 8, ti->st->spool_dropped);
                if (ti->st->first_seq >= 0) {
                        bbt_table_set_int(t, 9, ti->st->first_seq);
                        bbt_table_set_int(t, 10, ti->st->high_seq);
                }
        }
        free(gs.missing);
        ll.t = bbt_document_add_table(doc, "ranges", "丢失与跳过的序号", "Lost and skipped seqs", range_cols,
                                      BBT_ELEMENTSOF(range_cols));
        if (r == 0)
                r = bbt_store_losses_each_in(d->store, &d->scope, loss_list_cb, &ll);
        ll.t = bbt_document_add_table(doc, "conflicts", "序号冲突", "Seq conflicts", conflict_cols,
                                      BBT_ELEMENTSOF(conflict_cols));
        if (r == 0)
                r = bbt_store_conflicts_each_in(d->store, &d->scope, conflict_list_cb, &ll);
        cc.t = bbt_document_add_table(doc, "counters", "接收计数(全部终端)", "Ingest counters (all terminals)",
                                      counter_cols, BBT_ELEMENTSOF(counter_cols));
        if (r == 0)
                r = bbt_store_counters_each(d->store, counter_cb, &cc);
        bbt_document_add_note(doc,
                              "丢失：终端产生过、但最终没有收到的消息（原因见明细）；跳过：终端异常停止（断电、崩溃）后为保证序号不重复而跳过、从未使用的序号，不是数据丢失；"
                              "序号冲突：同一序号收到了内容不同的两条消息，两条都保留；待补传：已发现缺失、仍在等待终端补传；终端缓存溢出：终端离线过久、本地缓存已满而丢弃的消息（由终端上报）。",
                              "Lost: messages the terminal produced that never arrived (reasons in the list); skipped: "
                              "seqs the terminal never used, jumped over after an unclean stop (a power cut, a crash) so "
                              "that no seq is used twice -- not a loss of data; seq conflicts: two different messages "
                              "under one seq, both kept; missing now: gaps still being asked for; dropped by agent: "
                              "discarded from a full spool on the terminal (its own count).");
        return r;
}

const struct bbt_report_kind bbt_report_loss = {
        .name = "loss",
        .help = "delivery: stored, duplicates, lost and skipped seqs with reasons,\n"
                "seq conflicts, still missing, rejected",
        .title_zh = "数据传输完整性",
        .title_en = "Delivery",
        .needs = 0,
        .build = build,
};
