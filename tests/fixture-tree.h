/* Fixture trees for drivers that read under a root: a temporary directory, files in it, removal at exit. */
#ifndef BBT_TEST_FIXTURE_TREE_H
#define BBT_TEST_FIXTURE_TREE_H

#include <stddef.h>

/* Creates /tmp/bbt-NAME-XXXXXX and returns its path (valid for the whole
 * run); the tree is removed at exit. Fails the test if it cannot. */
const char *bbt_test_tree_new(const char *name);
/* Creates the directories of ROOT/REL up to its last component. */
void bbt_test_tree_mkdirs(const char *root, const char *rel);
/* Writes ROOT/REL (creating its directories) with LEN bytes of DATA,
 * replacing it atomically so a reader never sees half a file. */
void bbt_test_tree_put_bytes(const char *root, const char *rel, const void *data, size_t len);
void bbt_test_tree_put(const char *root, const char *rel, const char *text);
/* Removes ROOT/REL and everything below it (nothing there is fine). */
void bbt_test_tree_remove(const char *root, const char *rel);

#endif
