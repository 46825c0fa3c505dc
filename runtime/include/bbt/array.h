/* Growing arrays: the one capacity-doubling helper. */
#ifndef BBT_ARRAY_H
#define BBT_ARRAY_H

#include <stddef.h>

#include "bbt/base.h"

/* Makes the array *ARRAY, of *CAP elements of SIZE bytes, hold at least NEED
 * elements: doubles *CAP (from 64) until it does, and reallocates. Returns 0,
 * or -ENOMEM with *ARRAY and *CAP untouched (also when the size would
 * overflow). */
BBT_API int bbt_array_reserve(void **array, size_t *cap, size_t need, size_t size);

#endif
