/* Shared by the CSV, registry and calendar tests: files to import in a fixture tree, and imports that must succeed. */
#ifndef BBT_TEST_IMPORT_H
#define BBT_TEST_IMPORT_H

#include <stddef.h>

#include "registry.h"
#include "test.h"

/* Writes LEN bytes of DATA as NAME in the fixture tree TREE (created on first
 * use, removed at exit) and returns its path (valid until the next call). */
const char *bbt_test_import_file(const char *tree, const char *name, const void *data, size_t len);
/* The same for a NUL-terminated TEXT. */
const char *bbt_test_import_text(const char *tree, const char *name, const char *text);
/* Prints every problem an import kept, one per line. */
void bbt_test_import_dump(const struct bbt_import_errors *e);

/* CALL (an import) must return 0; otherwise the problems in ERRS are printed. */
#define LOAD_OK(call, errs)                                                      \
        do {                                                                     \
                int r_ = (call);                                                 \
                if (r_ != 0) {                                                   \
                        bbt_test_import_dump(&(errs));                           \
                        FAIL("%s: %d", #call, r_);                               \
                }                                                                \
        } while (0)

#endif
