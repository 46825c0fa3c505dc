/* The test runner's main: `test-x` runs every case, `test-x CASE` one, `--list` names them. */
#include "test.h"

#include <stdarg.h>

#define MAX_CASES 512

static struct {
        const char *name;
        bbt_test_fn fn;
} cases[MAX_CASES];
static size_t n_cases;
static const char *running = "?";

void bbt_test__register(const char *name, bbt_test_fn fn)
{
        if (n_cases == MAX_CASES) {
                fprintf(stderr, "too many test cases\n");
                abort();
        }
        cases[n_cases].name = name;
        cases[n_cases].fn = fn;
        n_cases++;
}

void bbt_test__fail(const char *file, int line, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "FAIL %s (%s:%d): ", running, file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
        exit(1);
}

void bbt_test_skip(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "SKIP %s: ", running);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(77);
}

const char *bbt_test_srcdir(void)
{
        const char *d = getenv("BBT_TEST_SRCDIR");

        return d ? d : BBT_TEST_SRCDIR;
}

const char *bbt_test_bindir(void)
{
        const char *d = getenv("BBT_TEST_BINDIR");

        return d ? d : BBT_TEST_BINDIR;
}

static int run_case(size_t i)
{
        running = cases[i].name;
        cases[i].fn();
        fprintf(stderr, "ok %s\n", cases[i].name);
        return 0;
}

int main(int argc, char **argv)
{
        size_t i;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc == 2 && strcmp(argv[1], "--list") == 0) {
                for (i = 0; i < n_cases; i++)
                        printf("%s\n", cases[i].name);
                return 0;
        }
        if (argc == 2) {
                for (i = 0; i < n_cases; i++)
                        if (strcmp(cases[i].name, argv[1]) == 0)
                                return run_case(i);
                fprintf(stderr, "no test case named %s\n", argv[1]);
                return 2;
        }
        /* All cases in one process: for quick local runs; ctest runs them one by one. */
        for (i = 0; i < n_cases; i++)
                run_case(i);
        return 0;
}
