/* Growing arrays: capacity doubling with overflow checks. */
#include "bbt/array.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int bbt_array_reserve(void **array, size_t *cap, size_t need, size_t size)
{
        size_t ncap;
        void *p;

        if (need <= *cap)
                return 0;
        ncap = *cap ? *cap : 32;
        do {
                if (ncap > SIZE_MAX / 2)
                        return -ENOMEM;
                ncap *= 2;
        } while (ncap < need);
        if (size && ncap > SIZE_MAX / size)
                return -ENOMEM;
        p = realloc(*array, ncap * size);
        if (!p)
                return -ENOMEM;
        *array = p;
        *cap = ncap;
        return 0;
}
