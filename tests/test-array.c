/* Tests for runtime/array.c: growth by doubling, nothing changed on failure. */
/* bbt-test: label=unit timeout=10 */
#include "test.h"

#include <errno.h>
#include <stdint.h>

#include "bbt/array.h"

TEST(reserve_doubles_and_keeps_contents)
{
        int *a = NULL;
        size_t cap = 0;

        ASSERT_OK(bbt_array_reserve((void **)&a, &cap, 1, sizeof(*a)));
        ASSERT_EQ(cap, 64);
        for (int i = 0; i < 64; i++)
                a[i] = i;
        ASSERT_OK(bbt_array_reserve((void **)&a, &cap, 64, sizeof(*a)));
        ASSERT_EQ(cap, 64);
        ASSERT_OK(bbt_array_reserve((void **)&a, &cap, 65, sizeof(*a)));
        ASSERT_EQ(cap, 128);
        ASSERT_OK(bbt_array_reserve((void **)&a, &cap, 1000, sizeof(*a)));
        ASSERT_EQ(cap, 1024);
        for (int i = 0; i < 64; i++)
                ASSERT_EQ(a[i], i);
        free(a);
}

TEST(overflow_is_refused_and_changes_nothing)
{
        char *a = NULL;
        size_t cap = 0;

        ASSERT_OK(bbt_array_reserve((void **)&a, &cap, 10, 1));
        ASSERT_EQ(bbt_array_reserve((void **)&a, &cap, SIZE_MAX, 16), -ENOMEM);
        ASSERT_EQ(cap, 64);
        ASSERT(a != NULL);
        free(a);
}
