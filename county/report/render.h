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
         * caller's to find, from OUT. NULL for a format written only to a
         * file (render_file). */
        int (*render)(const struct bbt_document *doc, bool chinese, FILE *out);
        /* For a format whose library writes the file itself (XLSX, a zip):
         * writes DOC to PATH (created, or replaced), its temporary files in
         * the directory TMPDIR. Returns 0 or a negative errno. NULL for a
         * stream format, which render writes to the opened file instead. */
        int (*render_file)(const struct bbt_document *doc, bool chinese, const char *path, const char *tmpdir);
        bool binary; /* not text: never written to a terminal or standard output */
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

/* Writes DOC to the file PATH with renderer HOW, atomically: into a new
 * temporary file in PATH's directory (also where a render_file renderer's
 * temporary files go), synced, then renamed over PATH, so PATH is either
 * the whole report or what it was before. A PATH that exists and is not a
 * regular file (a FIFO, /dev/stdout) is written in place by a stream format
 * and refused (-EINVAL) by a file-only one. Returns 0 or a negative errno,
 * with ERR saying why, naming PATH. */
int bbt_document_render_file(const struct bbt_document *doc, const struct bbt_renderer *how, bool chinese,
                             const char *path, char *err, size_t err_size);

#endif
