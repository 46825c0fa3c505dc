/* The schools report: one row per school with its rates and idle terminals. */
#include "build.h"
#include "bbt/base.h"

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                { "school_code", "学校代码", "School code", BBT_CELL_TEXT, 0 },
                { "school_name", "学校名称", "School", BBT_CELL_TEXT, 0 },
                { "township", "乡镇/街道", "Township", BBT_CELL_TEXT, 0 },
                { "type", "类型", "Type", BBT_CELL_CODE, 0 },
                { "area", "城乡", "Area", BBT_CELL_CODE, 0 },
                { "students", "学生数", "Pupils", BBT_CELL_INT, 0 },
                { "terminals", "终端数", "Terminals", BBT_CELL_INT, 0 },
                BBT_RATE_COLUMNS,
                { "idle", "闲置终端", "Idle", BBT_CELL_INT, 0 },
        };
        struct bbt_table *t = bbt_document_add_table(doc, "schools", "学校", "Schools", cols,
                                                     BBT_ELEMENTSOF(cols));

        for (size_t i = 0; i < d->n_schools; i++) {
                const struct bbt_report_school *si = &d->schools[i];

                bbt_table_add_row(t);
                bbt_table_set_text(t, 0, si->code);
                /* Not in the registry (or no township given): null. */
                bbt_table_set_text(t, 1, si->reg ? si->reg->name : NULL);
                bbt_table_set_text(t, 2, *bbt_build_township(si) ? bbt_build_township(si) : NULL);
                if (si->reg) {
                        bbt_table_set_code(t, 3, bbt_school_type_name(si->reg->type, false),
                                           bbt_school_type_name(si->reg->type, d->o->chinese));
                        bbt_table_set_code(t, 4, bbt_area_name(si->reg->area, false),
                                           bbt_area_name(si->reg->area, d->o->chinese));
                        bbt_table_set_int(t, 5, si->reg->students);
                }
                bbt_table_set_int(t, 6, (int64_t)si->n_terminals);
                bbt_build_set_rates(t, 7, &si->acc);
                bbt_table_set_int(t, 7 + BBT_N_RATE_COLUMNS, (int64_t)bbt_build_count_idle(d, i, false));
        }
        return 0;
}

const struct bbt_report_kind bbt_report_schools = {
        .name = "schools",
        .help = "one row per school",
        .title_zh = "各校使用情况",
        .title_en = "Use per school",
        .needs = BBT_NEEDS_FIGURES,
        .build = build,
};
