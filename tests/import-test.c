/* Shared by the CSV, registry and calendar tests: files to import in a fixture tree, and imports that must succeed. */
#include "import-test.h"

#include <stdio.h>
#include <string.h>

#include "fixture-tree.h"

const char *bbt_test_import_file(const char *tree, const char *name, const void *data, size_t len)
{
        static char path[4096];
        const char *root = bbt_test_tree_new(tree);

        bbt_test_tree_put_bytes(root, name, data, len);
        snprintf(path, sizeof(path), "%s/%s", root, name);
        return path;
}

const char *bbt_test_import_text(const char *tree, const char *name, const char *text)
{
        return bbt_test_import_file(tree, name, text, strlen(text));
}

void bbt_test_import_dump(const struct bbt_import_errors *e)
{
        for (size_t i = 0; i < e->n_kept; i++)
                fprintf(stderr, "  %s\n", e->msg[i]);
}
