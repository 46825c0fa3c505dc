/* Renderers: a report document written out in one output format, chosen by name from a table. */
#ifndef BBT_RENDER_H
#define BBT_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "document.h"

/* One output format. A new one is a file render_NAME.c defining a const
 * struct bbt_renderer and one entry in render.c's table; nothing else names
 * formats (bbt-report's --format and --help read the table). */
struct bbt_renderer {
        const char *name;       /* what --format takes: [a-z0-9]+ */
        const char *help;       /* a few words for --help, or NULL */
        const char *media_type; /* for a web server: "text/csv; charset=utf-8", ... */
        /* Writes DOC (built without error) to OUT in Chinese or English.
         * Returns 0 or a negative errno (-ENOMEM); write errors are the
         * caller's to find, from OUT. */
        int (*render)(const struct bbt_document *doc, bool chinese, FILE *out);
};

/* The renderer called NAME, or NULL. */
const struct bbt_renderer *bbt_renderer_find(const char *name);
/* The I-th renderer of the table (0: the default), or NULL past its end. */
const struct bbt_renderer *bbt_renderer_at(size_t i);

/* Writes DOC to OUT with renderer HOW. Returns 0, the first failure
 * remembered while DOC was built (then nothing is written), -EINVAL (no
 * document, output or renderer), -ENOMEM, or -EIO if writing failed (OUT is
 * flushed, so that a full disk shows now). */
int bbt_document_render(const struct bbt_document *doc, const struct bbt_renderer *how, bool chinese, FILE *out);

#endif
