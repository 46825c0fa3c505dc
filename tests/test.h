/* The test runner: each TEST() is one case, run alone as `test-x CASE` by ctest. */
#ifndef BBT_TEST_H
#define BBT_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*bbt_test_fn)(void);
void bbt_test__register(const char *name, bbt_test_fn fn);
/* Ends the running case as failed: runs cleanups registered with atexit(). */
_Noreturn void bbt_test__fail(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Ends the running case as skipped (exit 77) with a reason. */
_Noreturn void bbt_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Directory of the source tree's tests/ folder, for fixtures and corpus. */
const char *bbt_test_srcdir(void);
/* Directory where test binaries live (for running sibling tools). */
const char *bbt_test_bindir(void);

/* Defines a case. The name is [a-z0-9_]+ and becomes the ctest entry
 * "<binary>.<name>"; tests/CMakeLists.txt finds cases by this macro. */
#define TEST(name)                                                               \
        static void test_##name(void);                                           \
        __attribute__((constructor)) static void test_register_##name(void)     \
        {                                                                        \
                bbt_test__register(#name, test_##name);                          \
        }                                                                        \
        static void test_##name(void)

#define FAIL(...) bbt_test__fail(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT(cond)                                                             \
        do {                                                                     \
                if (!(cond))                                                     \
                        FAIL("assertion failed: %s", #cond);                     \
        } while (0)

#define ASSERT_INT_OP(a, op, b)                                                  \
        do {                                                                     \
                long long bbt_a_ = (long long)(a), bbt_b_ = (long long)(b);     \
                if (!(bbt_a_ op bbt_b_))                                         \
                        FAIL("%s %s %s: %lld vs %lld", #a, #op, #b, bbt_a_, bbt_b_); \
        } while (0)
#define ASSERT_EQ(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP(a, >=, b)
/* An int-returning call that must give 0; prints the errno name otherwise. */
#define ASSERT_OK(expr)                                                          \
        do {                                                                     \
                long long bbt_r_ = (long long)(expr);                            \
                if (bbt_r_ != 0)                                                 \
                        FAIL("%s: expected 0, got %lld (%s)", #expr, bbt_r_,     \
                             bbt_r_ < 0 ? strerror((int)-bbt_r_) : "positive");  \
        } while (0)

#define ASSERT_STR_EQ(a, b)                                                      \
        do {                                                                     \
                const char *bbt_a_ = (a), *bbt_b_ = (b);                         \
                if (bbt_a_ == NULL || bbt_b_ == NULL || strcmp(bbt_a_, bbt_b_) != 0) \
                        FAIL("%s == %s: \"%s\" vs \"%s\"", #a, #b,               \
                             bbt_a_ ? bbt_a_ : "(null)", bbt_b_ ? bbt_b_ : "(null)"); \
        } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                         \
        do {                                                                     \
                const char *bbt_h_ = (hay), *bbt_n_ = (needle);                  \
                if (bbt_h_ == NULL || strstr(bbt_h_, bbt_n_) == NULL)            \
                        FAIL("%s does not contain \"%s\": \"%s\"", #hay, bbt_n_, \
                             bbt_h_ ? bbt_h_ : "(null)");                        \
        } while (0)

#define ASSERT_DBL_NEAR(a, b, eps)                                               \
        do {                                                                     \
                double bbt_a_ = (a), bbt_b_ = (b);                               \
                if (!(bbt_a_ - bbt_b_ <= (eps) && bbt_b_ - bbt_a_ <= (eps)))     \
                        FAIL("%s ~= %s: %.9g vs %.9g", #a, #b, bbt_a_, bbt_b_);  \
        } while (0)

#endif
