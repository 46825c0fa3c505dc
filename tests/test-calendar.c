/* School calendar: terms, 国庆 holidays, 调休 workdays, school overrides, bells precedence and checks, bells hash. */
/* bbt-test: label=unit timeout=20 */
#include <errno.h>

#include "calendar.h"
#include "power_schedule.h"
#include "dates.h"
#include "fixture-tree.h"
#include "import-test.h"
#include "test.h"

#define put(name, data, len) bbt_test_import_file("calendar", (name), (data), (len))
#define put_text(name, text) bbt_test_import_text("calendar", (name), (text))

static int32_t D(const char *s)
{
        int32_t day;

        if (bbt_day_parse(s, &day) < 0)
                FAIL("bad date %s", s);
        return day;
}

static struct bbt_calendar *new_calendar(void)
{
        struct bbt_calendar *cal = NULL;

        ASSERT_OK(bbt_calendar_new(&cal));
        return cal;
}

/* County 440106: the 2026 autumn term, 国庆 Oct 1–7 (Thu–Wed), 调休 on Saturday Sep 26 and Oct 10. */
static const char days_csv[] = "范围,类型,开始日期,结束日期,名称\r\n"
                               "440106,学期,2026/9/1,2027/1/22,2026年秋季学期\r\n"
                               "440106,节假日,2026-10-01,2026-10-07,国庆节\r\n"
                               "440106,调休,2026-09-26,,国庆调休\r\n"
                               "440106,workday,2026-10-10,2026-10-10,\r\n";

static struct bbt_calendar *county_calendar(void)
{
        struct bbt_calendar *cal = new_calendar();
        struct bbt_import_errors errs;

        LOAD_OK(bbt_calendar_load_days(cal, put_text("calendar.csv", days_csv), &errs), errs);
        ASSERT_EQ(errs.count, 0);
        return cal;
}

TEST(empty_calendar)
{
        struct bbt_calendar *cal = new_calendar();

        /* No terms anywhere: every weekday is a school day. */
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "A", D("2026-08-31")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "A", D("2026-09-05")));
        ASSERT(bbt_calendar_is_school_day(cal, NULL, NULL, D("2026-10-01")));
        ASSERT(bbt_calendar_bells(cal, "440106", "A") == bbt_bells_default());
        bbt_calendar_free(cal);
        bbt_calendar_free(NULL);
}

TEST(term_holiday_workday)
{
        struct bbt_calendar *cal = county_calendar();

        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "A", D("2026-08-31"))); /* Monday before the term */
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "A", D("2026-09-01")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "A", D("2026-09-05"))); /* Saturday */
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "A", D("2026-09-26")));  /* Saturday, 调休 */
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "A", D("2026-10-01"))); /* Thursday, 国庆 */
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "A", D("2026-10-07"))); /* Wednesday, 国庆 */
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "A", D("2026-10-08")));
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "A", D("2026-10-10")));  /* Saturday, 调休 */
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "A", D("2026-10-11"))); /* Sunday */
        ASSERT(bbt_calendar_is_school_day(cal, "440106", NULL, D("2027-01-22")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", NULL, D("2027-01-25"))); /* after the term */
        /* Another county has no rules: plain weekdays. */
        ASSERT(bbt_calendar_is_school_day(cal, "440183", "B", D("2026-10-01")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440183", "B", D("2026-09-26")));

        /* Counting: September 2026 has 22 weekdays, plus the 26th. */
        {
                int n = 0;

                for (int32_t d = D("2026-09-01"); d <= D("2026-09-30"); d++)
                        n += bbt_calendar_is_school_day(cal, "440106", "A", d);
                ASSERT_EQ(n, 23);
        }
        bbt_calendar_free(cal);
}

TEST(school_overrides)
{
        struct bbt_calendar *cal = county_calendar();
        struct bbt_import_errors errs;

        /* School X starts a week early and holds its sports meeting on Monday Nov 2;
         * school Y makes up a lesson on Oct 5, inside the county's holiday. */
        LOAD_OK(bbt_calendar_load_days(cal,
                                       put_text("school.csv", "scope,kind,from,to,name\n"
                                                              "X,term,2026-08-25,2027-01-22,\n"
                                                              "X,放假,2026-11-02,,校运会\n"
                                                              "Y,上课,2026-10-05,,补课\n"),
                                       &errs),
                errs);
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "X", D("2026-08-25")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "Y", D("2026-08-25")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", NULL, D("2026-08-25")));
        /* The county's holidays and workdays still apply to X. */
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "X", D("2026-10-01")));
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "X", D("2026-10-10")));
        /* X's own holiday, added to the county's. */
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "X", D("2026-11-02")));
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "Y", D("2026-11-02")));
        /* A workday beats a holiday on the same day. */
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "Y", D("2026-10-05")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "X", D("2026-10-05")));
        /* ... but not the term: out of term is never a school day. */
        ASSERT_OK(bbt_calendar_add(cal, "Y", BBT_CAL_WORKDAY, D("2026-08-29"), D("2026-08-29")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", "Y", D("2026-08-29")));
        bbt_calendar_free(cal);
}

TEST(add_by_hand)
{
        struct bbt_calendar *cal = new_calendar();

        ASSERT_OK(bbt_calendar_add(cal, "440106", BBT_CAL_TERM, D("2026-09-01"), D("2026-09-10")));
        /* Overlapping and adjacent ranges merge. */
        ASSERT_OK(bbt_calendar_add(cal, "440106", BBT_CAL_TERM, D("2026-09-11"), D("2026-09-20")));
        ASSERT_OK(bbt_calendar_add(cal, "440106", BBT_CAL_TERM, D("2026-09-05"), D("2026-09-15")));
        ASSERT_OK(bbt_calendar_add(cal, "440106", BBT_CAL_TERM, D("2026-10-08"), D("2026-10-09")));
        ASSERT(bbt_calendar_is_school_day(cal, "440106", NULL, D("2026-09-14")));
        ASSERT(bbt_calendar_is_school_day(cal, "440106", NULL, D("2026-09-18")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", NULL, D("2026-09-21")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", NULL, D("2026-10-07")));
        ASSERT(bbt_calendar_is_school_day(cal, "440106", NULL, D("2026-10-09")));
        ASSERT(!bbt_calendar_is_school_day(cal, "440106", NULL, D("2026-10-12")));
        ASSERT_EQ(bbt_calendar_add(cal, "440106", BBT_CAL_TERM, D("2026-09-02"), D("2026-09-01")), -EINVAL);
        ASSERT_EQ(bbt_calendar_add(cal, "4401/06", BBT_CAL_TERM, 0, 1), -EINVAL);
        ASSERT_EQ(bbt_calendar_add(cal, "", BBT_CAL_TERM, 0, 1), -EINVAL);
        ASSERT_EQ(bbt_calendar_add(cal, "440106", (enum bbt_calendar_kind)(BBT_CAL_EVENT + 1), 0, 1), -EINVAL);
        bbt_calendar_free(cal);
}

TEST(days_csv_errors)
{
        struct bbt_calendar *cal = new_calendar();
        struct bbt_import_errors errs;
        const char *path = put_text("cal.csv", "scope,kind,from,to\n"
                                               "440106,term,2026-09-01,2027-01-22\n"
                                               "440106,vacation,2026-10-01,2026-10-07\n"
                                               "440106,holiday,2026-02-30,\n"
                                               "440106,holiday,2026-10-07,2026-10-01\n"
                                               "4401 06,holiday,2026-10-07,\n");

        ASSERT_EQ(bbt_calendar_load_days(cal, path, &errs), -EINVAL);
        ASSERT_EQ(errs.count, 4);
        ASSERT_STR_EQ(errs.msg[0],
                      "cal.csv:3: column kind (类型): expected term, holiday, workday, halfday or event (学期, 假期, 调休, 半天, 活动日), got \"vacation\"");
        ASSERT_STR_EQ(errs.msg[1], "cal.csv:4: column from (开始日期): expected a date YYYY-MM-DD, got \"2026-02-30\"");
        ASSERT_STR_EQ(errs.msg[2], "cal.csv:5: column to (结束日期): before the start date, got \"2026-10-01\"");
        ASSERT_STR_EQ(errs.msg[3],
                      "cal.csv:6: column scope (范围): expected a 6-digit county code or a school code, got \"4401 06\"");
        /* Nothing added: the term of line 2 does not apply. */
        ASSERT(bbt_calendar_is_school_day(cal, "440106", NULL, D("2026-08-31")));
        ASSERT_EQ(bbt_calendar_load_days(cal, "/nonexistent/cal.csv", NULL), -ENOENT);
        bbt_calendar_free(cal);
}

TEST(default_bells)
{
        const struct bbt_bells *b = bbt_bells_default();
        static const char *const want[] = { "08:00-08:40", "08:50-09:30", "09:50-10:30", "10:50-11:30",
                                            "14:00-14:40", "14:50-15:30", "15:40-16:20", "16:30-17:10" };
        char got[32];

        ASSERT_EQ(b->n, 8);
        for (int i = 0; i < 8; i++) {
                snprintf(got, sizeof(got), "%02d:%02d-%02d:%02d", b->p[i].start_min / 60, b->p[i].start_min % 60,
                         b->p[i].end_min / 60, b->p[i].end_min % 60);
                ASSERT_STR_EQ(got, want[i]);
                ASSERT_EQ(b->p[i].end_min - b->p[i].start_min, 40);
        }
}

TEST(bells_precedence)
{
        struct bbt_calendar *cal = new_calendar();
        struct bbt_import_errors errs;
        const struct bbt_bells *b;

        LOAD_OK(bbt_calendar_load_bells(cal,
                                        put_text("bells.csv", "范围,节次,开始时间,结束时间\n"
                                                              "440106,2,8:55,9:40\n"
                                                              "440106,1,08:00,08:45\n"
                                                              "S1,1,07:50,08:30\n"
                                                              "440106,3,10:00,10:45\n"),
                                        &errs),
                errs);
        b = bbt_calendar_bells(cal, "440106", "S2");
        ASSERT_EQ(b->n, 3);
        ASSERT_EQ(b->p[0].start_min, 480);
        ASSERT_EQ(b->p[0].end_min, 525);
        ASSERT_EQ(b->p[1].start_min, 535);
        ASSERT_EQ(b->p[2].end_min, 645);
        ASSERT(bbt_calendar_bells(cal, "440106", NULL) == b);
        b = bbt_calendar_bells(cal, "440106", "S1");
        ASSERT_EQ(b->n, 1);
        ASSERT_EQ(b->p[0].start_min, 470);
        ASSERT(bbt_calendar_bells(cal, "440183", "S3") == bbt_bells_default());
        /* A school's schedule applies whatever county it is asked with. */
        ASSERT(bbt_calendar_bells(cal, "440183", "S1") == b);

        /* Loading a scope again replaces its schedule. */
        LOAD_OK(bbt_calendar_load_bells(cal, put_text("b2.csv", "scope,period,start,end\nS1,1,08:10,08:50\n"), &errs),
                errs);
        ASSERT_EQ(bbt_calendar_bells(cal, "440106", "S1")->p[0].start_min, 490);
        ASSERT_EQ(bbt_calendar_bells(cal, "440106", "S2")->n, 3);
        bbt_calendar_free(cal);
}

TEST(bells_rejected)
{
        struct bbt_calendar *cal = new_calendar();
        struct bbt_import_errors errs;
        struct bbt_bells b = { .n = 2, .p = { { 480, 520 }, { 510, 560 } } };
        const char *path = put_text("bells.csv", "scope,period,start,end\n"
                                                 "A,1,08:00,08:40\n"
                                                 "A,2,08:30,09:10\n"
                                                 "B,1,08:00,08:40\n"
                                                 "B,3,09:00,09:40\n"
                                                 "C,13,20:00,20:40\n"
                                                 "D,1,08:00,08:40\n"
                                                 "D,1,08:50,09:30\n"
                                                 "E,1,09:00,08:00\n"
                                                 "F,1,8点,09:00\n"
                                                 "OK,1,08:00,08:40\n");

        ASSERT_EQ(bbt_calendar_load_bells(cal, path, &errs), -EINVAL);
        ASSERT_EQ(errs.count, 6);
        ASSERT_STR_EQ(errs.msg[0], "bells.csv:6: column period (节次): expected a period number 1..12, got \"13\"");
        ASSERT_STR_EQ(errs.msg[1], "bells.csv:9: column end (结束时间): not after the start time, got \"08:00\"");
        ASSERT_STR_EQ(errs.msg[2], "bells.csv:10: column start (开始时间): expected a time HH:MM, got \"8点\"");
        ASSERT_STR_EQ(errs.msg[3], "bells.csv:3: scope A: period 2 (08:30-09:10) overlaps period 1 (08:00-08:40)");
        ASSERT_STR_EQ(errs.msg[4], "bells.csv:5: scope B: period 3, but period 2 is missing");
        ASSERT_STR_EQ(errs.msg[5], "bells.csv:8: scope D: period 1 is also on line 7");
        ASSERT(bbt_calendar_bells(cal, NULL, "OK") == bbt_bells_default());

        /* By hand: overlap, order, count, bounds. */
        ASSERT_EQ(bbt_calendar_set_bells(cal, "A", &b), -EINVAL);
        b.p[1] = (struct bbt_period){ 520, 560 }; /* touching is fine */
        ASSERT_OK(bbt_calendar_set_bells(cal, "A", &b));
        b.p[1] = (struct bbt_period){ 400, 440 };
        ASSERT_EQ(bbt_calendar_set_bells(cal, "A", &b), -EINVAL);
        b.n = 0;
        ASSERT_EQ(bbt_calendar_set_bells(cal, "A", &b), -EINVAL);
        b.n = 1;
        b.p[0] = (struct bbt_period){ 1400, 1441 };
        ASSERT_EQ(bbt_calendar_set_bells(cal, "A", &b), -EINVAL);
        b.p[0] = (struct bbt_period){ 600, 600 };
        ASSERT_EQ(bbt_calendar_set_bells(cal, "A", &b), -EINVAL);
        ASSERT_EQ(bbt_calendar_bells(cal, NULL, "A")->n, 2);
        bbt_calendar_free(cal);
}

TEST(bells_twelve_and_thirteen)
{
        struct bbt_calendar *cal = new_calendar();
        struct bbt_bells b = { .n = 12 };
        char text[1024];
        size_t n;
        struct bbt_import_errors errs;

        for (int i = 0; i < 12; i++)
                b.p[i] = (struct bbt_period){ 420 + 60 * i, 460 + 60 * i };
        ASSERT_OK(bbt_calendar_set_bells(cal, "440106", &b));
        ASSERT_EQ(bbt_calendar_bells(cal, "440106", NULL)->n, 12);
        ASSERT_EQ(bbt_calendar_bells(cal, "440106", NULL)->p[11].end_min, 1120);
        b.n = 13;
        ASSERT_EQ(bbt_calendar_set_bells(cal, "440106", &b), -EINVAL);

        n = (size_t)snprintf(text, sizeof(text), "scope,period,start,end\n");
        for (int i = 1; i <= 13; i++)
                n += (size_t)snprintf(text + n, sizeof(text) - n, "S,%d,%02d:00,%02d:40\n", i, 6 + i, 6 + i);
        ASSERT_EQ(bbt_calendar_load_bells(cal, put_text("b13.csv", text), &errs), -EINVAL);
        ASSERT_EQ(errs.count, 1);
        ASSERT_STR_EQ(errs.msg[0], "b13.csv:14: column period (节次): expected a period number 1..12, got \"13\"");
        ASSERT(bbt_calendar_bells(cal, NULL, "S") == bbt_bells_default());
        bbt_calendar_free(cal);
}

TEST(bells_hash)
{
        struct bbt_calendar *a = new_calendar(), *b = new_calendar();
        struct bbt_bells x = { .n = 2, .p = { { 480, 520 }, { 530, 570 } } };
        struct bbt_bells y = { .n = 1, .p = { { 470, 510 } } };
        uint64_t h0 = bbt_calendar_bells_hash(a), h1, h2;

        ASSERT_EQ(h0, bbt_calendar_bells_hash(b));
        /* Days do not count, only bells. */
        ASSERT_OK(bbt_calendar_add(a, "440106", BBT_CAL_HOLIDAY, 20000, 20001));
        ASSERT_EQ(bbt_calendar_bells_hash(a), h0);

        ASSERT_OK(bbt_calendar_set_bells(a, "440106", &x));
        ASSERT_OK(bbt_calendar_set_bells(a, "S1", &y));
        h1 = bbt_calendar_bells_hash(a);
        ASSERT_NE(h1, h0);
        /* Same schedules set in another order: same hash. */
        ASSERT_OK(bbt_calendar_set_bells(b, "S1", &y));
        ASSERT_OK(bbt_calendar_set_bells(b, "440106", &x));
        ASSERT_EQ(bbt_calendar_bells_hash(b), h1);
        /* One minute moved in one period changes it. */
        x.p[1].end_min = 571;
        ASSERT_OK(bbt_calendar_set_bells(b, "440106", &x));
        h2 = bbt_calendar_bells_hash(b);
        ASSERT_NE(h2, h1);
        x.p[1].end_min = 570;
        ASSERT_OK(bbt_calendar_set_bells(b, "440106", &x));
        ASSERT_EQ(bbt_calendar_bells_hash(b), h1);
        /* The same schedule under another scope is another calendar. */
        ASSERT_OK(bbt_calendar_set_bells(b, "S2", &y));
        ASSERT_NE(bbt_calendar_bells_hash(b), h1);
        bbt_calendar_free(a);
        bbt_calendar_free(b);
}

TEST(many_lookups)
{
        struct bbt_calendar *cal = county_calendar();
        char school[16];
        long n = 0;

        for (int s = 0; s < 500; s++) {
                snprintf(school, sizeof(school), "S%03d", s);
                ASSERT_OK(bbt_calendar_add(cal, school, BBT_CAL_HOLIDAY, D("2026-11-02"), D("2026-11-02")));
        }
        /* 5,000 terminals over one term, as a report asks. */
        for (int t = 0; t < 5000; t++) {
                snprintf(school, sizeof(school), "S%03d", t % 500);
                for (int32_t d = D("2026-09-01"); d <= D("2027-01-22"); d++)
                        n += bbt_calendar_is_school_day(cal, "440106", school, d);
        }
        /* 104 weekdays, minus 5 of 国庆 and Nov 2, plus 2 调休 Saturdays. */
        ASSERT_EQ(n, 5000L * (104 - 5 - 1 + 2));
        bbt_calendar_free(cal);
}

/* The county's calendar plus a half day before 国庆 (Wednesday Sep 30) and
 * school X's parents' evening (Tuesday Sep 29, an event day); the county
 * powers off at 18:00 on school days, 12:30 on half days, not on other days;
 * X at 19:30 (evening study), its half days as the county's, and at 22:00 on
 * other days. */
static struct bbt_calendar *power_calendar(void)
{
        struct bbt_calendar *cal = county_calendar();
        struct bbt_import_errors errs;

        LOAD_OK(bbt_calendar_load_days(cal,
                                       put_text("days2.csv", "范围,类型,日期,名称\n"
                                                             "440106,半天,2026-09-30,国庆前\n"
                                                             "X,活动日,2026-09-29,家长会\n"
                                                             "Y,halfday,2026-10-09,\n"
                                                             "Y,event,2026-10-12,\n"),
                                       &errs),
                errs);
        ASSERT(!bbt_calendar_has_power(cal));
        LOAD_OK(bbt_calendar_load_power(cal,
                                        put_text("power.csv", "范围,上课日,半天,非上课日,备注\n"
                                                              "440106,18:00,12:30,不关机,县统一\n"
                                                              "X,19:30,,22:00,晚自习\n"),
                                        &errs),
                errs);
        ASSERT(bbt_calendar_has_power(cal));
        return cal;
}

static int off(const struct bbt_calendar *cal, const char *school, const char *day)
{
        return bbt_calendar_power_off(cal, "440106", school, D(day));
}

#define HM(h, m) (((h) * 60 + (m)) * 60)

TEST(power_off_by_day_type)
{
        struct bbt_calendar *cal = power_calendar();

        /* Half and event days do not change which days are school days. */
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "X", D("2026-09-29")));
        ASSERT(bbt_calendar_is_school_day(cal, "440106", "X", D("2026-09-30")));
        ASSERT(!bbt_calendar_has_own_days(cal, "Z"));
        ASSERT_EQ(bbt_calendar_day_type(cal, "440106", "Y", D("2026-09-30")), BBT_DAY_HALF);
        ASSERT_EQ(bbt_calendar_day_type(cal, "440106", "X", D("2026-09-29")), BBT_DAY_EVENT);
        ASSERT_EQ(bbt_calendar_day_type(cal, "440106", "Y", D("2026-09-29")), BBT_DAY_SCHOOL);
        ASSERT_EQ(bbt_calendar_day_type(cal, "440106", "Y", D("2026-10-01")), BBT_DAY_NON_SCHOOL);

        /* The county's rules (school Y has no power row). */
        ASSERT_EQ(off(cal, "Y", "2026-09-25"), HM(18, 0));       /* Friday */
        ASSERT_EQ(off(cal, "Y", "2026-09-26"), HM(18, 0));       /* Saturday, 调休 */
        ASSERT_EQ(off(cal, "Y", "2026-09-27"), BBT_POWER_NONE);  /* Sunday */
        ASSERT_EQ(off(cal, "Y", "2026-09-29"), HM(18, 0));       /* X's event, not Y's */
        ASSERT_EQ(off(cal, "Y", "2026-09-30"), HM(12, 30));      /* half day */
        ASSERT_EQ(off(cal, "Y", "2026-10-01"), BBT_POWER_NONE);  /* 国庆 */
        ASSERT_EQ(off(cal, "Y", "2026-10-05"), BBT_POWER_NONE);  /* 国庆, a Monday */
        ASSERT_EQ(off(cal, "Y", "2026-10-08"), HM(18, 0));
        ASSERT_EQ(off(cal, "Y", "2026-10-09"), HM(12, 30));      /* Y's own half day */
        ASSERT_EQ(off(cal, "Y", "2026-10-10"), HM(18, 0));       /* Saturday, 调休 */
        ASSERT_EQ(off(cal, "Y", "2026-10-12"), BBT_POWER_NONE);  /* Y's own event */
        /* School X overrides, inheriting the county's half-day time. */
        ASSERT_EQ(off(cal, "X", "2026-09-25"), HM(19, 30));
        ASSERT_EQ(off(cal, "X", "2026-09-26"), HM(19, 30));
        ASSERT_EQ(off(cal, "X", "2026-09-27"), HM(22, 0));
        ASSERT_EQ(off(cal, "X", "2026-09-29"), BBT_POWER_NONE);  /* its event day */
        ASSERT_EQ(off(cal, "X", "2026-09-30"), HM(12, 30));
        ASSERT_EQ(off(cal, "X", "2026-10-01"), HM(22, 0));
        /* Another county: no power rows, no power-off. */
        ASSERT_EQ(bbt_calendar_power_off(cal, "440183", "B", D("2026-09-25")), BBT_POWER_NONE);
        bbt_calendar_free(cal);

        /* A county row's empty half-day cell: the school-day time. */
        cal = new_calendar();
        ASSERT_OK(bbt_calendar_add(cal, "440106", BBT_CAL_HALFDAY, D("2026-09-30"), D("2026-09-30")));
        ASSERT_OK(bbt_calendar_set_power(cal, "440106",
                                         &(struct bbt_power_times){ { HM(17, 0), BBT_POWER_INHERIT,
                                                                      BBT_POWER_INHERIT } }));
        ASSERT_EQ(off(cal, "A", "2026-09-30"), HM(17, 0));
        ASSERT_EQ(off(cal, "A", "2026-10-03"), BBT_POWER_NONE);
        ASSERT_EQ(bbt_calendar_set_power(cal, "440106", &(struct bbt_power_times){ { 86400, 0, 0 } }), -EINVAL);
        bbt_calendar_free(cal);
}

TEST(power_plan)
{
        struct bbt_calendar *cal = power_calendar();
        struct bbt_power_plan y, x, y2, y_next;
        /* Friday 2026-09-25 10:00 +08:00 */
        int64_t now = bbt_day_start_ms(D("2026-09-25"), 480) + 10 * 3600 * 1000LL;
        static const char *const want_y[] = { "2026-09-25T18:00:00+08:00", "2026-09-26T18:00:00+08:00",
                                             "2026-09-28T18:00:00+08:00", "2026-09-29T18:00:00+08:00",
                                             "2026-09-30T12:30:00+08:00", "2026-10-08T18:00:00+08:00" };

        bbt_power_plan_build(cal, "440106", "Y", now, 14, 480, &y);
        ASSERT_EQ(y.n, 6);
        for (int i = 0; i < y.n; i++) {
                int64_t ms;

                ASSERT_STR_EQ(y.off[i], want_y[i]);
                /* What the agent parses is the instant computed. */
                ASSERT_OK(bbt_rfc3339_parse(y.off[i], &ms, NULL));
                ASSERT_EQ(ms, y.off_ms[i]);
        }
        bbt_power_plan_build(cal, "440106", "X", now, 14, 480, &x);
        ASSERT_EQ(x.n, 13); /* 14 days but its event day */
        ASSERT_STR_EQ(x.off[0], "2026-09-25T19:30:00+08:00");
        ASSERT_STR_EQ(x.off[3], "2026-09-28T19:30:00+08:00");
        ASSERT_STR_EQ(x.off[4], "2026-09-30T12:30:00+08:00");
        ASSERT_STR_EQ(x.off[5], "2026-10-01T22:00:00+08:00");
        /* The rev follows the content: the same times, the same rev; other
         * times or the window rolling a day, another. */
        bbt_power_plan_build(cal, "440106", "Y", now + 3600 * 1000, 14, 480, &y2);
        ASSERT_EQ(y2.rev, y.rev);
        ASSERT(y.rev != x.rev);
        ASSERT(y.rev > 0 && y.rev <= BBT_INT_MAX);
        bbt_power_plan_build(cal, "440106", "Y", now + 86400 * 1000LL, 14, 480, &y_next);
        ASSERT(y_next.rev != y.rev);
        ASSERT_STR_EQ(y_next.off[0], "2026-09-26T18:00:00+08:00");
        /* In UTC, the local day and time are written as such. */
        bbt_power_plan_build(cal, "440106", "Y", now, 1, 0, &y2);
        ASSERT_EQ(y2.n, 1);
        ASSERT_STR_EQ(y2.off[0], "2026-09-25T18:00:00Z");
        bbt_calendar_free(cal);
}

TEST(power_csv_errors)
{
        struct bbt_calendar *cal = new_calendar();
        struct bbt_import_errors errs;
        const char *path = put_text("power-bad.csv", "scope,school_day,half_day,non_school_day\n"
                                                     "440106,18:00,12:30,none\n"
                                                     "A,25:00,,\n"
                                                     "B,18:00,6pm,\n"
                                                     "C,18:00:60,12:00:30,8:00\n"
                                                     "4401 06,18:00,,\n"
                                                     "440106,17:00,,\n");

        ASSERT_EQ(bbt_calendar_load_power(cal, path, &errs), -EINVAL);
        ASSERT_EQ(errs.count, 5);
        ASSERT_STR_EQ(errs.msg[0], "power-bad.csv:3: column school_day (上课日): expected a time HH:MM (00:00..23:59), "
                                   "none (不关机) or nothing, got \"25:00\"");
        ASSERT_STR_EQ(errs.msg[1], "power-bad.csv:4: column half_day (半天): expected a time HH:MM (00:00..23:59), "
                                   "none (不关机) or nothing, got \"6pm\"");
        ASSERT_STR_EQ(errs.msg[2], "power-bad.csv:5: column school_day (上课日): expected a time HH:MM (00:00..23:59), "
                                   "none (不关机) or nothing, got \"18:00:60\"");
        ASSERT_STR_EQ(errs.msg[3], "power-bad.csv:6: column scope (范围): expected a 6-digit county code or a school "
                                   "code, got \"4401 06\"");
        ASSERT_STR_EQ(errs.msg[4], "power-bad.csv:7: scope 440106 is also on line 2");
        /* Nothing added. */
        ASSERT(!bbt_calendar_has_power(cal));
        ASSERT_EQ(bbt_calendar_power_off(cal, "440106", NULL, D("2026-09-25")), BBT_POWER_NONE);
        /* A missing required column. */
        ASSERT_EQ(bbt_calendar_load_power(cal, put_text("power-nocol.csv", "范围,半天\n440106,12:00\n"), &errs),
                  -EINVAL);
        ASSERT(errs.count >= 1);
        bbt_test_import_dump(&errs);
        bbt_calendar_free(cal);
}
