/* bench-county: a generated county's school year for the benchmarks that read a store (report-bench, api-bench).
 *
 * In bench_tmpdir: the registry of a county (bench_county.schools schools ×
 * bench_county.per_school terminals, county BENCH_COUNTY), a calendar (two
 * terms in 2025-09-01..2026-07-10 with the national holidays and their
 * make-up days: 185 school days); then a store built directly through the
 * store ops: one terminal row per terminal and, for every terminal and school
 * day, one day rollup (day_add, which keeps the day aggregates) with seeded
 * random but plausible values (about 92 % of terminal-days powered, 2–9 h
 * on, a share of it active, the eight periods' active time, the heartbeats),
 * one transaction per bench_county.schools_per_tx schools (or, with
 * bench_county.by_day, one a day over every terminal, the order in which
 * ingest writes: what PostgreSQL's tables' physical order follows); a few open faults; the rollup rules and day
 * rule bbt-aggregator would record. Every build with the same seed holds the
 * same data, whatever the store and the order (the generator restarts for each
 * school, terminal and terminal-day). Everything that fails calls bench_die(). */
#ifndef BBT_BENCH_COUNTY_H
#define BBT_BENCH_COUNTY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_COUNTY "510107"

extern struct bench_county_opts {
        int schools, per_school;
        unsigned seed;
        int schools_per_tx;   /* schools written in one store transaction (1) */
        bool by_day;          /* build as ingest writes: a transaction a day over every terminal, not a school at a time */
        const char *progress; /* non-NULL: say on stderr, under this name, each tenth of the schools stored */
} bench_county;

struct bench_county_built {
        long terminal_days, school_days, faults;
        double secs, cpu;
};

/* NAME in bench_tmpdir, its path into PATH, open for writing; bench_finish closes it. */
FILE *bench_create(const char *name, char *path, size_t size);
void bench_finish(FILE *f, const char *path);
/* The code of the S-th school (0-based). */
const char *bench_county_school(int s, char *buf, size_t size);
/* schools.csv and terminals.csv (their paths into SCHOOLS and TERMINALS); seeds the generator. */
void bench_county_write_registry(char *schools, char *terminals, size_t size);
/* calendar.csv, its path into PATH. */
void bench_county_write_calendar(char *path, size_t size);
/* The store at PATH (created; a file, or a postgresql:// URI of an empty database) over the school days of FROM..TO of the calendar at CALENDAR_PATH. */
struct bench_county_built bench_county_build_store(const char *path, const char *calendar_path, int32_t from,
                                                   int32_t to);

#endif
