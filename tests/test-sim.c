/* bbt-sim's scenario: deterministic by seed, every message valid, registry files the aggregator reads, a consistent truth. */
/* bbt-test: label=unit timeout=60 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "dates.h"
#include "fixture-tree.h"
#include "registry.h"
#include "scenario.h"
#include "test.h"

static struct sim_options options(uint64_t seed)
{
        struct sim_options o = { .county = "510199", .schools = 6, .terminals_per_school = 8, .seed = seed,
                                 .hb_interval_s = 900, .chunk_s = 900, .offset_min = 480, .history = true,
                                 .now_ms = 1795000000000LL };

        o.monday = bbt_day_from_ymd(2026, 11, 23);
        return o;
}

TEST(same_seed_same_week)
{
        struct sim_options o = options(42);
        struct sim_scenario a, b, c;
        bool differs = false;

        ASSERT_OK(sim_scenario_build(&o, &a));
        ASSERT_OK(sim_scenario_build(&o, &b));
        o.seed = 43;
        ASSERT_OK(sim_scenario_build(&o, &c));
        ASSERT_EQ(a.messages, b.messages);
        ASSERT_GT(a.messages, 1000);
        for (size_t i = 0; i < a.n_terminals; i++) {
                ASSERT_EQ(a.terminals[i].n_msgs, b.terminals[i].n_msgs);
                ASSERT_EQ(a.terminals[i].profile, b.terminals[i].profile);
                for (size_t j = 0; j < a.terminals[i].n_msgs; j++)
                        ASSERT_STR_EQ(a.terminals[i].msgs[j].json, b.terminals[i].msgs[j].json);
                differs |= a.terminals[i].profile != c.terminals[i].profile ||
                           a.terminals[i].n_msgs != c.terminals[i].n_msgs;
        }
        ASSERT(differs); /* another seed, another county */
        sim_scenario_free(&a);
        sim_scenario_free(&b);
        sim_scenario_free(&c);
}

TEST(every_message_valid_and_in_order)
{
        struct sim_options o = options(1);
        struct sim_scenario s;
        size_t profiles[SIM_PROFILE__COUNT] = { 0 };

        ASSERT_OK(sim_scenario_build(&o, &s));
        for (size_t i = 0; i < s.n_terminals; i++) {
                const struct sim_terminal *t = &s.terminals[i];
                int64_t last_end = 0;

                profiles[t->profile]++;
                if (t->profile == SIM_NEVER)
                        ASSERT_EQ(t->n_msgs, 0);
                for (size_t j = 0; j < t->n_msgs; j++) {
                        struct bbt_msg m;
                        struct bbt_error e;
                        char text[300], topic[BBT_TOPIC_MAX];
                        struct bbt_topic tp;

                        sim_topic(&s, t, t->msgs[j].channel, topic, sizeof(topic));
                        ASSERT_OK(bbt_topic_parse(topic, &tp, NULL, 0));
                        if (bbt_msg_decode(t->msgs[j].channel, t->msgs[j].json, t->msgs[j].len, &m, &e) < 0)
                                FAIL("%s seq %zu: %s", topic, j + 1, bbt_error_format(&e, text, sizeof(text)));
                        ASSERT_EQ(m.seq, (int64_t)j + 1);
                        /* A terminal's intervals never overlap. */
                        if (m.channel == BBT_CH_USAGE) {
                                ASSERT_GE(m.body.usage.start, last_end);
                                last_end = m.body.usage.end;
                        }
                        bbt_msg_free(&m);
                }
        }
        /* Every kind of terminal is there. */
        for (int p = 0; p < SIM_PROFILE__COUNT; p++)
                if (profiles[p] == 0)
                        FAIL("no terminal of profile %s", sim_profile_name((enum sim_profile)p));
        sim_scenario_free(&s);
}

TEST(registry_files_load)
{
        struct sim_options o = options(1);
        struct sim_scenario s;
        const char *root;
        struct bbt_registry *reg;
        struct bbt_calendar *cal;
        struct bbt_import_errors errs;
        char path[1024];
        const struct bbt_bells *b;

        ASSERT_OK(sim_scenario_build(&o, &s));
        root = bbt_test_tree_new("sim");
        ASSERT_OK(sim_write_registry(&s, root));
        ASSERT_OK(bbt_registry_new(&reg));
        ASSERT_OK(bbt_calendar_new(&cal));
        snprintf(path, sizeof(path), "%s/schools.csv", root);
        if (bbt_registry_load_schools(reg, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        snprintf(path, sizeof(path), "%s/terminals.csv", root);
        if (bbt_registry_load_terminals(reg, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        snprintf(path, sizeof(path), "%s/calendar.csv", root);
        if (bbt_calendar_load_days(cal, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        snprintf(path, sizeof(path), "%s/bells.csv", root);
        if (bbt_calendar_load_bells(cal, path, &errs) < 0)
                FAIL("%s", errs.msg[0]);
        ASSERT_EQ(reg->n_schools, s.n_schools);
        ASSERT_EQ(reg->n_terminals, s.n_terminals);
        /* The calendar the aggregator reads is the week the simulator lived. */
        for (size_t i = 0; i < s.n_schools; i++)
                for (int d = 0; d < SIM_DAYS; d++)
                        ASSERT_EQ(bbt_calendar_is_school_day(cal, o.county, s.schools[i].code, o.monday + d),
                                  sim_school_day(&s, &s.schools[i], d));
        b = bbt_calendar_bells(cal, o.county, s.schools[3].code);
        ASSERT_EQ(b->n, s.own_bells.n);
        b = bbt_calendar_bells(cal, o.county, s.schools[0].code);
        ASSERT_EQ(b->n, s.county_bells.n);
        ASSERT_EQ(b->p[0].start_min, s.county_bells.p[0].start_min);
        bbt_registry_free(reg);
        bbt_calendar_free(cal);
        sim_scenario_free(&s);
}

TEST(truth_adds_up)
{
        struct sim_options o = options(5);
        struct sim_scenario s;
        char *text = NULL;
        size_t len = 0;
        FILE *f;
        cJSON *root, *tables, *overall, *row;
        double terminals = 0;

        ASSERT_OK(sim_scenario_build(&o, &s));
        f = open_memstream(&text, &len);
        ASSERT_OK(sim_write_truth(&s, f));
        fclose(f);
        root = cJSON_Parse(text);
        ASSERT(root != NULL);
        tables = cJSON_GetObjectItemCaseSensitive(root, "tables");
        overall = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(tables, "overall"), 0);
        ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(overall, "terminals")->valuedouble, (double)s.n_terminals);
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(tables, "schools"))
                terminals += cJSON_GetObjectItemCaseSensitive(row, "terminals")->valuedouble;
        ASSERT_EQ(terminals, (double)s.n_terminals);
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tables, "terminals")), (int)s.n_terminals);
        /* Rates are shares. */
        ASSERT(cJSON_GetObjectItemCaseSensitive(overall, "usage_rate")->valuedouble > 0);
        ASSERT(cJSON_GetObjectItemCaseSensitive(overall, "usage_rate")->valuedouble <= 1);
        ASSERT(cJSON_GetObjectItemCaseSensitive(overall, "online_rate")->valuedouble <= 1);
        cJSON_Delete(root);
        free(text);
        sim_scenario_free(&s);
}
