/* libFuzzer target: the CSV reader (aggregator/csv.c) through the registry and calendar loaders. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "calendar.h"
#include "registry.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                                  \
        do {                                                                         \
                if (!(cond)) {                                                       \
                        fprintf(stderr, "fuzz-csv: check failed: %s\n", #cond);     \
                        abort();                                                     \
                }                                                                    \
        } while (0)

/* Schools the terminals in the input can name (the seed corpus uses them). */
static const char schools_csv[] =
        "county_code,school_code,school_name,type,area,students,classrooms,students_primary,students_junior\n"
        "440106,2144010601,华阳小学,primary,urban,1200,30,,\n"
        "440106,2144010602,天河中学,junior,urban,800,20,,\n"
        "440183,2144018301,派潭九年一贯制学校,nine_year,rural,450,18,300,150\n"
        "440183,S-01,新塘镇第一小学,primary,town,320,12,,\n";

/* The loaders take a path: each file goes into a memfd, read through /proc/self/fd/N. */
static int input_fd = -1, schools_fd = -1;
static char input_path[64], schools_path[64];

static void write_fd(int fd, const void *data, size_t size)
{
        size_t done = 0;

        CHECK(ftruncate(fd, 0) == 0);
        while (done < size) {
                ssize_t n = pwrite(fd, (const char *)data + done, size - done, (off_t)done);

                CHECK(n > 0);
                done += (size_t)n;
        }
}

static void setup(void)
{
        input_fd = memfd_create("input.csv", MFD_CLOEXEC);
        schools_fd = memfd_create("schools.csv", MFD_CLOEXEC);
        CHECK(input_fd >= 0 && schools_fd >= 0);
        snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d", input_fd);
        snprintf(schools_path, sizeof(schools_path), "/proc/self/fd/%d", schools_fd);
        write_fd(schools_fd, schools_csv, sizeof(schools_csv) - 1);
}

/* Failure is -EINVAL (or -EFBIG/-ENOMEM) with at least one message, every kept
 * message a NUL-terminated line; success leaves no messages. */
static void check_result(int r, const struct bbt_import_errors *errs)
{
        CHECK(errs->n_kept <= BBT_IMPORT_ERRORS_KEPT && errs->n_kept <= errs->count);
        for (size_t i = 0; i < errs->n_kept; i++) {
                CHECK(memchr(errs->msg[i], '\0', sizeof(errs->msg[i])) != NULL);
                CHECK(errs->msg[i][0] != '\0');
                for (const char *c = errs->msg[i]; *c; c++) {
                        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                                fprintf(stderr, "fuzz-csv: control byte 0x%02x in message \"%s\"\n",
                                        (unsigned char)*c, errs->msg[i]);
                                abort();
                        }
                }
        }
        if (r == 0) {
                CHECK(errs->count == 0);
                return;
        }
        CHECK(r == -EINVAL || r == -EFBIG || r == -ENOMEM);
        CHECK(errs->count > 0 && errs->n_kept > 0);
}

static void registry(void)
{
        struct bbt_import_errors errs;
        struct bbt_registry *reg;
        size_t n;
        int r;

        CHECK(bbt_registry_new(&reg) == 0);
        r = bbt_registry_load_schools(reg, input_path, &errs);
        check_result(r, &errs);
        if (r == 0) {
                for (size_t i = 0; i < reg->n_schools; i++)
                        CHECK(bbt_registry_school(reg, reg->schools[i].code) == &reg->schools[i]);
        } else {
                CHECK(reg->n_schools == 0); /* all or nothing */
        }
        bbt_registry_free(reg);

        CHECK(bbt_registry_new(&reg) == 0);
        CHECK(bbt_registry_load_schools(reg, schools_path, &errs) == 0);
        n = reg->n_terminals;
        r = bbt_registry_load_terminals(reg, input_path, &errs);
        check_result(r, &errs);
        if (r == 0) {
                for (size_t i = 0; i < reg->n_terminals; i++) {
                        const struct bbt_terminal_entry *t = &reg->terminals[i];

                        CHECK(bbt_registry_school(reg, t->school) != NULL);
                        CHECK(bbt_registry_terminal(reg, t->school, t->id) == t);
                }
        } else {
                CHECK(reg->n_terminals == n);
        }
        bbt_registry_free(reg);
}

static void calendar(void)
{
        struct bbt_import_errors errs;
        struct bbt_calendar *cal;
        uint64_t hash;
        int r;

        CHECK(bbt_calendar_new(&cal) == 0);
        r = bbt_calendar_load_days(cal, input_path, &errs);
        check_result(r, &errs);
        if (r == 0) {
                /* Ask about a few days around 2026 in the seed corpus' scopes. */
                for (int32_t day = 20454; day < 20454 + 400; day += 37) {
                        (void)bbt_calendar_is_school_day(cal, "440106", "2144010601", day);
                        (void)bbt_calendar_is_school_day(cal, "440106", NULL, day);
                }
        }
        hash = bbt_calendar_bells_hash(cal);
        r = bbt_calendar_load_bells(cal, input_path, &errs);
        check_result(r, &errs);
        if (r != 0)
                CHECK(bbt_calendar_bells_hash(cal) == hash); /* all or nothing */
        for (const char *const *scope = (const char *const[]){ "440106", "2144010601", "S-01", NULL }; *scope;
             scope++) {
                const struct bbt_bells *b = bbt_calendar_bells(cal, "440106", *scope);

                CHECK(b != NULL && b->n >= 0 && b->n <= BBT_PERIODS_MAX);
                for (int i = 0; i < b->n; i++) {
                        CHECK(b->p[i].start_min < b->p[i].end_min);
                        CHECK(b->p[i].start_min >= 0 && b->p[i].end_min <= 24 * 60);
                        if (i > 0)
                                CHECK(b->p[i - 1].end_min <= b->p[i].start_min);
                }
        }
        bbt_calendar_free(cal);
}

static void periph_kinds(const unsigned char *data, size_t size)
{
        char *text, bad[64];
        uint32_t kinds;
        int r;

        text = malloc(size + 1);
        CHECK(text != NULL);
        memcpy(text, data, size);
        text[size] = '\0';
        memset(bad, 0x5a, sizeof(bad));
        r = bbt_periph_kinds_parse(text, &kinds, bad, sizeof(bad));
        CHECK(r == 0 || r == -EINVAL);
        if (r < 0)
                CHECK(memchr(bad, '\0', sizeof(bad)) != NULL);
        free(text);
}

/* The input is one CSV file, read as each of the four kinds, and one string. */
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
        if (input_fd < 0)
                setup();
        write_fd(input_fd, data, size);
        registry();
        calendar();
        periph_kinds(data, size);
        return 0;
}
