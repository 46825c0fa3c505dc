/* The terminals report: one row per terminal with its rates, faults and agent version. */
#include "build.h"
#include "bbt/base.h"

#include <stdio.h>

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "online", "在线", "Online", BBT_CELL_BOOL, 0 },
                { "last_seen", "最后上报", "Last seen", BBT_CELL_TIME, 0 },
                BBT_RATE_COLUMNS,
                { "open_faults", "未消除故障", "Open faults", BBT_CELL_INT, 0 },
                { "version", "代理版本", "Agent version", BBT_CELL_TEXT, 0 },
        };
        struct bbt_table *t = bbt_document_add_table(doc, "terminals", "终端", "Terminals", cols,
                                                     BBT_ELEMENTSOF(cols));
        for (size_t i = 0; i < d->n_terms; i++) {
                const struct bbt_report_terminal *ti = &d->terms[i];

                bbt_build_terminal_row(t, d, ti);
                /* Online and the agent's version are what is current, not
                 * kept as history: shown for a range that reaches now only
                 * (null otherwise). */
                if (d->live)
                        bbt_table_set_bool(t, 4, ti->st && ti->st->online);
                bbt_table_set_time(t, 5, ti->last_seen_ms); /* as of the end of the range; never: null */
                bbt_build_set_rates(t, 6, &ti->acc);
                bbt_table_set_int(t, 6 + BBT_N_RATE_COLUMNS, ti->open_faults + ti->silent);
                if (d->live)
                        bbt_table_set_text(t, 7 + BBT_N_RATE_COLUMNS,
                                           ti->st && *ti->st->version ? ti->st->version : NULL);
        }
        return 0;
}

const struct bbt_report_kind bbt_report_terminals = {
        .name = "terminals",
        .help = "one row per terminal",
        .title_zh = "各终端使用情况",
        .title_en = "Use per terminal",
        .needs = BBT_NEEDS_FIGURES | BBT_NEEDS_TERMINAL_RATES | BBT_NEEDS_SEEN_TIMES,
        .build = build,
};
