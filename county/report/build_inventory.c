/* The inventory report: the peripherals present, and the expected ones that are absent (a row each). */
#include "build.h"
#include "bbt/base.h"

#include <errno.h>
#include <stdlib.h>

struct inventory_ctx {
        struct bbt_report_data *d;
        struct bbt_table *t;
        uint32_t *present; /* per terminal in scope: the kinds seen */
};

static int inventory_cb(void *u, const struct bbt_store_device *dev)
{
        struct inventory_ctx *ic = u;
        struct bbt_report_data *d = ic->d;
        const struct bbt_report_terminal *t = bbt_report_data_terminal(d, dev->terminal_id);

        if (!t)
                return 0;
        ic->present[t - d->terms] |= 1u << dev->kind;
        bbt_build_terminal_row(ic->t, d, t);
        bbt_build_set_periph_kind(ic->t, 4, d, dev->kind);
        /* What the device does not say: null. */
        bbt_table_set_text(ic->t, 5, *dev->vendor ? dev->vendor : NULL);
        bbt_table_set_text(ic->t, 6, *dev->model ? dev->model : NULL);
        bbt_table_set_text(ic->t, 7, *dev->serial ? dev->serial : NULL);
        bbt_table_set_text(ic->t, 8, *dev->bus ? dev->bus : NULL);
        return 0;
}

static int build(struct bbt_report_data *d, struct bbt_document *doc)
{
        static const struct bbt_column cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "kind", "类别", "Kind", BBT_CELL_CODE, 0 },
                { "vendor", "厂商", "Vendor", BBT_CELL_TEXT, 0 },
                { "model", "型号", "Model", BBT_CELL_TEXT, 0 },
                { "serial", "序列号", "Serial", BBT_CELL_TEXT, 0 },
                { "bus", "接口", "Bus", BBT_CELL_TEXT, 0 },
        };
        static const struct bbt_column missing_cols[] = {
                BBT_TERMINAL_COLUMNS,
                { "missing", "缺少的外设", "Missing", BBT_CELL_CODE, 0 },
        };
        struct inventory_ctx ic = { d, bbt_document_add_table(doc, "devices", "外设清单", "Peripherals", cols,
                                                              BBT_ELEMENTSOF(cols)), NULL };
        struct bbt_table *mt;
        int r;

        ic.present = calloc(d->n_terms + 1, sizeof(*ic.present));
        if (!ic.present)
                return -ENOMEM;
        r = bbt_store_inventory_each_in(d->store, &d->scope, inventory_cb, &ic);
        mt = bbt_document_add_table(doc, "missing", "应配未见外设", "Expected but absent", missing_cols,
                                    BBT_ELEMENTSOF(missing_cols));
        for (size_t i = 0; r == 0 && i < d->n_terms; i++) {
                const struct bbt_report_terminal *t = &d->terms[i];
                uint32_t missing = t->reg ? t->reg->expected & ~ic.present[i] : 0;

                for (int k = 0; k < BBT_KIND__COUNT; k++)
                        if (missing & (1u << k)) {
                                bbt_build_terminal_row(mt, d, t);
                                bbt_build_set_periph_kind(mt, 4, d, (enum bbt_periph_kind)k);
                        }
        }
        free(ic.present);
        return r;
}

const struct bbt_report_kind bbt_report_inventory = {
        .name = "inventory",
        .help = "peripherals present, and expected ones that are absent",
        .title_zh = "外设清单",
        .title_en = "Peripherals",
        .needs = 0,
        .build = build,
};
