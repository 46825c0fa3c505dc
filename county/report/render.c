/* The renderers' table, and rendering a document with one of them. */
#include "render.h"
#include "bbt/base.h"

#include <errno.h>
#include <string.h>

extern const struct bbt_renderer bbt_render_text;
extern const struct bbt_renderer bbt_render_csv;
extern const struct bbt_renderer bbt_render_json;

/* Every output format; the first is the default. */
static const struct bbt_renderer *const renderers[] = {
        &bbt_render_text,
        &bbt_render_csv,
        &bbt_render_json,
};

const struct bbt_renderer *bbt_renderer_find(const char *name)
{
        for (size_t i = 0; name && i < BBT_ELEMENTSOF(renderers); i++)
                if (strcmp(renderers[i]->name, name) == 0)
                        return renderers[i];
        return NULL;
}

const struct bbt_renderer *bbt_renderer_at(size_t i)
{
        return i < BBT_ELEMENTSOF(renderers) ? renderers[i] : NULL;
}

int bbt_document_render(const struct bbt_document *doc, const struct bbt_renderer *how, bool chinese, FILE *out)
{
        int r;

        if (!doc || !how || !out)
                return -EINVAL;
        if (doc->error < 0)
                return doc->error;
        r = how->render(doc, chinese, out);
        if (r < 0)
                return r;
        if (fflush(out) != 0 || ferror(out))
                return -EIO;
        return 0;
}
