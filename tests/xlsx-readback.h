/* XLSX read back against CSV: the manifest tests/xlsx-check.py reads, and running it. */
#ifndef BBT_TEST_XLSX_READBACK_H
#define BBT_TEST_XLSX_READBACK_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "document.h"

/* A case of xlsx-check.py's manifest: the CSV and XLSX renderings of DOC at
 * CSV_PATH and XLSX_PATH, and from the document model the title, the
 * captions and the column types. Returns it (add it to an array). */
cJSON *bbt_test_xlsx_case(const struct bbt_document *doc, bool chinese, const char *csv_path, const char *xlsx_path);

/* Runs tests/xlsx-check.py with Debian's python3 over MANIFEST (an array of
 * cases), written to DIR/manifest.json, its output to DIR/xlsx-check.log.
 * Returns its exit status (0: every workbook equals its CSV) and its output
 * in *OUT (malloc'ed). Fails the test if it does not exit. */
int bbt_test_xlsx_check(const cJSON *manifest, const char *dir, char **out);

#endif
