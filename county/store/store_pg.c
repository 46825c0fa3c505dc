/* The PostgreSQL store backend (libpq): the schema and migrations of the SQLite one, prepared statements. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "store.h"
#include "store_agg.h"
#include "bbt/array.h"
#include "bbt/base.h"

/* What tells a bbt store from any other database: a table bbt_schema with
 * one row (application 'bbt1', version N), as SQLite's application_id and
 * user_version. Schema N is SQLite's schema N in PostgreSQL's types: every
 * integer a bigint, every key the same. */
#define APPLICATION "bbt1"

/* The schema of the day aggregates (store.h, "Day aggregates"), as in SQLite. */
#define SCHEMA_DAY_AGGREGATES                                                                                        \
        "CREATE TABLE school_day(day bigint NOT NULL, county text NOT NULL, school text NOT NULL,"                   \
        " powered bigint NOT NULL, used bigint NOT NULL, periods_used bigint NOT NULL,"                              \
        " on_ms bigint NOT NULL, active_ms bigint NOT NULL, interactive_ms bigint NOT NULL,"                         \
        " hb_received bigint NOT NULL, on_all_ms bigint NOT NULL, PRIMARY KEY(day, county, school));"                \
        "CREATE TABLE day_mark(span bigint NOT NULL, terminal_id bigint NOT NULL, powered bigint NOT NULL,"          \
        " used bigint NOT NULL, lessons_lo bigint NOT NULL, lessons_hi bigint NOT NULL,"                             \
        " PRIMARY KEY(span, terminal_id));"

/* Deletes and recounts every day aggregate from the rollups under the rule
 * $1 used_day_ms, $2 used_period_ms, $3 heartbeat_ms (the judgement of
 * bbt_day_totals_of() with every period, as SQLite's recount): as schema 4
 * kept them (a row a school-day), for the migration 3 → 4 alone. The
 * current recount is recount() (the marks as here, the school-days packed,
 * ST_SCHOOL_DAYS_COUNT). */
#define PERIODS_USED(p)                                                                                              \
        "((" p "p1 >= $2)::int + (" p "p2 >= $2)::int + (" p "p3 >= $2)::int + (" p "p4 >= $2)::int"                 \
        " + (" p "p5 >= $2)::int + (" p "p6 >= $2)::int + (" p "p7 >= $2)::int + (" p "p8 >= $2)::int"               \
        " + (" p "p9 >= $2)::int + (" p "p10 >= $2)::int + (" p "p11 >= $2)::int + (" p "p12 >= $2)::int)"
#define MARKS_RECOUNT                                                                                                \
        "INSERT INTO day_mark(span, terminal_id, powered, used, lessons_lo, lessons_hi)"                             \
        " SELECT day >> 5, terminal_id, bit_or(CASE WHEN on_ms > 0 THEN 1::bigint << (day & 31)::int ELSE 0 END),"   \
        " bit_or(CASE WHEN active_ms >= $1::bigint THEN 1::bigint << (day & 31)::int ELSE 0 END),"                  \
        " bit_or(CASE WHEN day & 16 = 0 THEN n << (4 * (day & 15))::int ELSE 0 END),"                                \
        " bit_or(CASE WHEN day & 16 <> 0 THEN n << (4 * (day & 15))::int ELSE 0 END)"                                \
        " FROM (SELECT terminal_id, day, on_ms, active_ms, " PERIODS_USED("") "::bigint AS n FROM day_rollup) x"     \
        " WHERE $2::bigint > 0 AND $3::bigint > 0 GROUP BY day >> 5, terminal_id"
/* A school-day's totals counted from its rollups, as ST_SCHOOL_DAYS_COUNT and schema 4 count them. */
#define SCHOOL_DAY_COUNT                                                                                             \
        " d.day, t.county, t.school, count(*) FILTER (WHERE d.on_ms > 0),"                                           \
        " count(*) FILTER (WHERE d.active_ms >= $1::bigint), sum(" PERIODS_USED("d.") ")::bigint,"                   \
        " sum(d.on_ms)::bigint, sum(d.active_ms)::bigint, sum(d.interactive_ms)::bigint,"                            \
        " sum(CASE WHEN d.on_all_ms > 0 THEN least(greatest(d.hb_count, 0), (d.on_all_ms + $3::bigint - 1) / $3)"    \
        " ELSE 0 END)::bigint, sum(d.on_all_ms)::bigint"                                                             \
        " FROM day_rollup d JOIN terminal t ON t.id = d.terminal_id GROUP BY d.day, t.county, t.school"
static const char *const recount_v4_sql[] = {
        "DELETE FROM school_day",
        "DELETE FROM day_mark",
        "INSERT INTO school_day(day, county, school, powered, used, periods_used, on_ms, active_ms,"
        " interactive_ms, hb_received, on_all_ms) SELECT" SCHOOL_DAY_COUNT,
        MARKS_RECOUNT,
};

/* Migration N brings a store from version N to N + 1: SQLite's migration N
 * in PostgreSQL. Never edit a shipped one: add the next, in both backends. */
static const char *const migrations[] = {
        /* 0 → 1: the first schema. */
        "CREATE TABLE meta(key text PRIMARY KEY, value bigint NOT NULL);"
        "CREATE TABLE terminal(id bigserial PRIMARY KEY, county text NOT NULL, school text NOT NULL,"
        " terminal text NOT NULL, first_seq bigint NOT NULL, high_seq bigint NOT NULL,"
        " received bigint NOT NULL, duplicates bigint NOT NULL, lost bigint NOT NULL,"
        " first_seen_ms bigint NOT NULL, last_seen_ms bigint NOT NULL, last_active_ms bigint NOT NULL,"
        " online bigint NOT NULL, boot bigint NOT NULL, online_since_ms bigint NOT NULL,"
        " offline_since_ms bigint NOT NULL, offline_reason bigint NOT NULL, skew_known bigint NOT NULL,"
        " skew_ms bigint NOT NULL, spool_dropped bigint NOT NULL, version text NOT NULL,"
        " hostname text NOT NULL, os text NOT NULL, machine_id text NOT NULL, last_hb text NOT NULL,"
        " inventory_seq bigint NOT NULL, UNIQUE(county, school, terminal));"
        "CREATE TABLE raw(id bigserial PRIMARY KEY, terminal_id bigint NOT NULL, seq bigint NOT NULL,"
        " channel bigint NOT NULL, ts bigint NOT NULL, recv_ms bigint NOT NULL, boot bigint NOT NULL,"
        " payload text NOT NULL);"
        "CREATE UNIQUE INDEX raw_seq ON raw(terminal_id, seq);"
        "CREATE TABLE usage(terminal_id bigint NOT NULL, seq bigint NOT NULL, start_ms bigint NOT NULL,"
        " end_ms bigint NOT NULL, state bigint NOT NULL, interactive_ms bigint NOT NULL,"
        " audio_ms bigint NOT NULL, touch bigint NOT NULL, pen bigint NOT NULL, mouse bigint NOT NULL,"
        " key bigint NOT NULL, PRIMARY KEY(terminal_id, seq));"
        "CREATE TABLE day_rollup(terminal_id bigint NOT NULL, day bigint NOT NULL, on_ms bigint NOT NULL,"
        " active_ms bigint NOT NULL, interactive_ms bigint NOT NULL, hb_count bigint NOT NULL,"
        " on_all_ms bigint NOT NULL,"
        " p1 bigint NOT NULL, p2 bigint NOT NULL, p3 bigint NOT NULL, p4 bigint NOT NULL,"
        " p5 bigint NOT NULL, p6 bigint NOT NULL, p7 bigint NOT NULL, p8 bigint NOT NULL,"
        " p9 bigint NOT NULL, p10 bigint NOT NULL, p11 bigint NOT NULL, p12 bigint NOT NULL,"
        " PRIMARY KEY(terminal_id, day));"
        "CREATE TABLE gap(terminal_id bigint NOT NULL, from_seq bigint NOT NULL, to_seq bigint NOT NULL,"
        " detected_ms bigint NOT NULL, state bigint NOT NULL, attempts bigint NOT NULL,"
        " changed_ms bigint NOT NULL, cmd_id text NOT NULL, boot bigint NOT NULL,"
        " PRIMARY KEY(terminal_id, from_seq));"
        "CREATE TABLE loss(id bigserial PRIMARY KEY, terminal_id bigint NOT NULL, from_seq bigint NOT NULL,"
        " to_seq bigint NOT NULL, recorded_ms bigint NOT NULL, reason text NOT NULL);"
        "CREATE TABLE fault(id bigserial PRIMARY KEY, terminal_id bigint NOT NULL, code text NOT NULL,"
        " source text NOT NULL, severity bigint NOT NULL, detail text NOT NULL, raised_ms bigint NOT NULL,"
        " cleared_ms bigint NOT NULL);"
        "CREATE INDEX fault_open ON fault(terminal_id, code, source) WHERE cleared_ms = 0;"
        "CREATE TABLE inventory(terminal_id bigint NOT NULL, idx bigint NOT NULL, kind bigint NOT NULL,"
        " subsystem text NOT NULL, bus text NOT NULL, vendor_id text NOT NULL, model_id text NOT NULL,"
        " vendor text NOT NULL, model text NOT NULL, serial text NOT NULL, syspath text NOT NULL,"
        " PRIMARY KEY(terminal_id, idx));"
        "CREATE TABLE periph_event(id bigserial PRIMARY KEY, terminal_id bigint NOT NULL, seq bigint NOT NULL,"
        " ts bigint NOT NULL, action bigint NOT NULL, kind bigint NOT NULL, subsystem text NOT NULL,"
        " vendor text NOT NULL, model text NOT NULL, serial text NOT NULL, syspath text NOT NULL);"
        "CREATE TABLE counter(name text PRIMARY KEY, value bigint NOT NULL);",
        /* 1 → 2 */
        "ALTER TABLE terminal ADD COLUMN skipped bigint NOT NULL DEFAULT 0;"
        "ALTER TABLE terminal ADD COLUMN conflicts bigint NOT NULL DEFAULT 0;"
        "ALTER TABLE raw ADD COLUMN hash bigint;"
        "ALTER TABLE loss ADD COLUMN kind bigint NOT NULL DEFAULT 0;"
        "CREATE INDEX loss_seq ON loss(terminal_id, from_seq);"
        "CREATE TABLE conflict(id bigserial PRIMARY KEY, terminal_id bigint NOT NULL, seq bigint NOT NULL,"
        " channel bigint NOT NULL, ts bigint NOT NULL, recv_ms bigint NOT NULL, boot bigint NOT NULL,"
        " payload text NOT NULL, stored_hash bigint NOT NULL, hash bigint NOT NULL);",
        /* 2 → 3: history */
        "ALTER TABLE day_rollup ADD COLUMN first_msg_ms bigint NOT NULL DEFAULT 0;"
        "ALTER TABLE day_rollup ADD COLUMN last_msg_ms bigint NOT NULL DEFAULT 0;"
        "ALTER TABLE day_rollup ADD COLUMN last_active_ms bigint NOT NULL DEFAULT 0;"
        "CREATE INDEX day_rollup_active ON day_rollup(terminal_id, day) WHERE last_active_ms > 0;",
        /* 3 → 4: the day aggregates, counted from the rollups under the default rule (below). */
        SCHEMA_DAY_AGGREGATES,
        /* 4 → 5: nothing here. SQLite's schema 5 adds the marks' seen bits and
         * packs its day aggregates 32 days to a row (store_sqlite.c) for its
         * reports' speed; this backend keeps a row a school-day and a mark a
         * terminal-span, and reads last seen to the day from an index of its
         * rollups (READ_INDEXES). */
        "SELECT 1;",
        /* 5 → 6: the terminals' one-off events (the power schedule's) and
         * wired NICs (Wake-on-LAN). */
        "CREATE TABLE terminal_event(id bigserial PRIMARY KEY, terminal_id bigint NOT NULL, seq bigint NOT NULL,"
        " ts bigint NOT NULL, code text NOT NULL, severity bigint NOT NULL, detail text NOT NULL);"
        "CREATE INDEX terminal_event_ts ON terminal_event(terminal_id, ts);"
        "CREATE TABLE terminal_net(terminal_id bigint PRIMARY KEY, seq bigint NOT NULL, ifname text NOT NULL,"
        " mac text NOT NULL, ipv4 text NOT NULL, prefix bigint NOT NULL);",
        /* 6 → 7: the operators' commands (bbt-ctl), the audit trail. */
        "CREATE TABLE audit(id bigserial PRIMARY KEY, cmd_id text NOT NULL UNIQUE, operator text NOT NULL,"
        " sent_ms bigint NOT NULL, done_ms bigint NOT NULL, county text NOT NULL, school text NOT NULL,"
        " terminal text NOT NULL, via text NOT NULL, op text NOT NULL, args text NOT NULL, result text NOT NULL,"
        " detail text NOT NULL);"
        "CREATE INDEX audit_sent ON audit(sent_ms);",
        /* 7 → 8: the schools' day aggregates packed 32 days to a row, as
         * SQLite's schema 5 packs them (store_agg.h, struct bbt_agg_span): a
         * report at 20,000 terminals reads 8,000 rows instead of 148,000.
         * migrate() packs school_day's rows into it, then drops school_day. */
        ("CREATE TABLE school_span(span bigint NOT NULL, county text NOT NULL, school text NOT NULL,"
         " present bigint NOT NULL, days bytea NOT NULL, PRIMARY KEY(span, county, school));"),
};
_Static_assert(BBT_ELEMENTSOF(migrations) == BBT_STORE_SCHEMA_VERSION, "one migration per schema version");

/* Indexes for this backend's report queries alone (SQLite's reports read its
 * packed tables instead): not part of the versioned schema, made if missing
 * whenever a writer opens the store, under the migrations' lock.
 * day_rollup_recent: the days with a message, by day (ST_SEEN_DAYS reads the
 * last two weeks of a range from it alone). day_mark_read: the day marks
 * whole in an index (ST_DAY_MARKS reads them from it alone, not a table page
 * a mark: 120 instead of 290 ms for a school year at 20,000 terminals,
 * docs/BENCHMARKS.md). */
#define READ_INDEXES                                                                                                 \
        "CREATE INDEX IF NOT EXISTS day_rollup_recent ON day_rollup(day, terminal_id) WHERE last_msg_ms > 0;"       \
        "CREATE INDEX IF NOT EXISTS day_mark_read ON day_mark(span, terminal_id)"                                    \
        " INCLUDE (powered, used, lessons_lo, lessons_hi)"

#define TERMINAL_COLS                                                                                 \
        "county, school, terminal, first_seq, high_seq, received, duplicates, lost, first_seen_ms,"   \
        " last_seen_ms, last_active_ms, online, boot, online_since_ms, offline_since_ms,"             \
        " offline_reason, skew_known, skew_ms, spool_dropped, version, hostname, os, machine_id, last_hb,"  \
        " inventory_seq, skipped, conflicts"

enum stmt {
        ST_META_GET,
        ST_META_SET,
        ST_DATA_VERSION,
        ST_TERMINAL_INSERT,
        ST_TERMINAL_UPDATE,
        ST_TERMINALS_UPDATE,
        ST_TERMINALS,
        ST_GAP_DELETE,
        ST_GAP_INSERT,
        ST_GAPS,
        ST_TERMINAL_LOCK_KEY,
        ST_TERMINAL_GAPS,
        ST_RAW_INSERT,
        ST_RAW_PAYLOAD,
        ST_CONFLICT_INSERT,
        ST_CONFLICTS,
        ST_USAGE_INSERT,
        ST_USAGES,
        ST_DAY_ADD,
        ST_DAYS_ADD,
        ST_USAGES_ADD,
        ST_DAYS_CLEAR,
        ST_DAYS,
        ST_SCHOOL_SPANS_LOCK,
        ST_SCHOOL_SPANS_GET,
        ST_SCHOOL_SPANS_PUT,
        ST_SCHOOL_DAYS_COUNT,
        ST_SCHOOL_DAYS_V7,
        ST_TERMINAL_SCHOOL,
        ST_DAY_MARK_SET,
        ST_DAY_MARKS_LOCK,
        ST_DAY_MARKS_MERGE,
        ST_SCHOOL_DAYS,
        ST_DAY_MARKS,
        ST_SEEN,
        ST_SEEN_DAYS,
        ST_TERMINALS_BRIEF,
        ST_DAYS_HISTORY_REBUILD,
        ST_LOSS_INSERT,
        ST_LOSSES,
        ST_LOSS_FIND,
        ST_LOSS_DELETE,
        ST_FAULT_RAISE,
        ST_FAULT_CLEAR,
        ST_FAULTS,
        ST_INV_DELETE,
        ST_INV_INSERT,
        ST_INVENTORY,
        ST_PERIPH_INSERT,
        ST_EVENT_INSERT,
        ST_EVENTS,
        ST_NET_SET,
        ST_NETS,
        ST_AUDIT_PUT,
        ST_AUDITS,
        ST_COUNTER_ADD,
        ST_COUNTERS,
        ST_PRUNE_RAW,
        ST_PRUNE_USAGE,
        ST__COUNT
};

/* Every iterator filters by the scope in SQL: $1 county and $2 school (NULL:
 * all), $3 and $4 its time bounds if it has any. The planner sees the NULL
 * test on a parameter and drops it. */
#define IN_SCOPE                                                                                                     \
        " IN (SELECT id FROM terminal WHERE ($1::text IS NULL OR county = $1) AND ($2::text IS NULL OR school = $2))"

/* How day_add and the history rebuild merge the history columns, as in SQLite. */
#define DAY_HISTORY_MERGE(t)                                                                                         \
        " first_msg_ms = CASE WHEN " t ".first_msg_ms = 0 OR (excluded.first_msg_ms > 0"                             \
        " AND excluded.first_msg_ms < " t ".first_msg_ms) THEN excluded.first_msg_ms ELSE " t ".first_msg_ms END,"   \
        " last_msg_ms = greatest(" t ".last_msg_ms, excluded.last_msg_ms),"                                          \
        " last_active_ms = greatest(" t ".last_active_ms, excluded.last_active_ms)"

static const char *const sql[ST__COUNT] = {
        [ST_META_GET] = "SELECT value FROM meta WHERE key = $1",
        /* xmin:xmax:in-progress: it changes whenever a transaction that
         * writes (has a transaction ID) starts or ends, in any database of
         * the server; read-only transactions leave it alone. */
        [ST_DATA_VERSION] = "SELECT pg_current_snapshot()::text",
        [ST_META_SET] = "INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        /* A second (county, school, terminal) is no row, not an error: an
         * error would end the caller's transaction. */
        [ST_TERMINAL_INSERT] = "INSERT INTO terminal(" TERMINAL_COLS ") VALUES($1, $2, $3, $4, $5, $6, $7, $8,"
                               " $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25,"
                               " $26, $27) ON CONFLICT(county, school, terminal) DO NOTHING RETURNING id",
        [ST_TERMINAL_UPDATE] = "UPDATE terminal SET county = $1, school = $2, terminal = $3, first_seq = $4,"
                               " high_seq = $5, received = $6, duplicates = $7, lost = $8, first_seen_ms = $9,"
                               " last_seen_ms = $10, last_active_ms = $11, online = $12, boot = $13,"
                               " online_since_ms = $14, offline_since_ms = $15, offline_reason = $16,"
                               " skew_known = $17, skew_ms = $18, spool_dropped = $19, version = $20,"
                               " hostname = $21, os = $22, machine_id = $23, last_hb = $24, inventory_seq = $25,"
                               " skipped = $26, conflicts = $27 WHERE id = $28",
        /* A transaction's terminal rows at once, as arrays (each id once). */
        [ST_TERMINALS_UPDATE] =
                "UPDATE terminal t SET county = x.county, school = x.school, terminal = x.terminal, first_seq ="
                " x.first_seq, high_seq = x.high_seq, received = x.received, duplicates = x.duplicates, lost ="
                " x.lost, first_seen_ms = x.first_seen_ms, last_seen_ms = x.last_seen_ms, last_active_ms ="
                " x.last_active_ms, online = x.online, boot = x.boot, online_since_ms = x.online_since_ms,"
                " offline_since_ms = x.offline_since_ms, offline_reason = x.offline_reason, skew_known ="
                " x.skew_known, skew_ms = x.skew_ms, spool_dropped = x.spool_dropped, version = x.version,"
                " hostname = x.hostname, os = x.os, machine_id = x.machine_id, last_hb = x.last_hb, inventory_seq"
                " = x.inventory_seq, skipped = x.skipped, conflicts = x.conflicts FROM unnest($1::bigint[],"
                " $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],"
                " $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],"
                " $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[],"
                " $21::text[], $22::text[], $23::text[], $24::text[], $25::text[], $26::bigint[], $27::bigint[],"
                " $28::bigint[]) AS x(id, county, school, terminal, first_seq, high_seq, received, duplicates,"
                " lost, first_seen_ms, last_seen_ms, last_active_ms, online, boot, online_since_ms,"
                " offline_since_ms, offline_reason, skew_known, skew_ms, spool_dropped, version, hostname, os,"
                " machine_id, last_hb, inventory_seq, skipped, conflicts) WHERE t.id = x.id",
        [ST_TERMINALS] = "SELECT " TERMINAL_COLS ", id FROM terminal WHERE ($1::text IS NULL OR county = $1)"
                         " AND ($2::text IS NULL OR school = $2) ORDER BY id",
        [ST_GAP_DELETE] = "DELETE FROM gap WHERE terminal_id = $1",
        /* One statement for a terminal's gaps: arrays, one element per gap. */
        [ST_GAP_INSERT] = "INSERT INTO gap(terminal_id, from_seq, to_seq, detected_ms, state, attempts, changed_ms,"
                          " cmd_id, boot) SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[],"
                          " $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[])",
        [ST_GAPS] = "SELECT terminal_id, from_seq, to_seq, detected_ms, state, attempts, changed_ms, cmd_id, boot"
                    " FROM gap WHERE terminal_id" IN_SCOPE " ORDER BY terminal_id, from_seq",
        /* 1 and no hash if stored; else 0 and the stored payload's hash (the
         * snapshot the statement runs in does not see its own insert). */
        /* Several writers: the terminal of a county, school and code, locked
         * (pg_terminal_lock() reads it). */
        [ST_TERMINAL_LOCK_KEY] = "SELECT id FROM terminal WHERE county = $1 AND school = $2 AND terminal = $3"
                                 " FOR UPDATE",
        [ST_TERMINAL_GAPS] = "SELECT terminal_id, from_seq, to_seq, detected_ms, state, attempts, changed_ms, cmd_id,"
                             " boot FROM gap WHERE terminal_id = $1 ORDER BY from_seq",
        [ST_RAW_INSERT] = "WITH ins AS (INSERT INTO raw(terminal_id, seq, channel, ts, recv_ms, boot, payload, hash)"
                          " VALUES($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT(terminal_id, seq) DO NOTHING"
                          " RETURNING 1) SELECT (SELECT count(*) FROM ins),"
                          " (SELECT hash FROM raw WHERE terminal_id = $1 AND seq = $2)",
        [ST_RAW_PAYLOAD] = "SELECT payload FROM raw WHERE terminal_id = $1 AND seq = $2",
        [ST_CONFLICT_INSERT] = "INSERT INTO conflict(terminal_id, seq, channel, ts, recv_ms, boot, payload,"
                               " stored_hash, hash) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [ST_CONFLICTS] = "SELECT terminal_id, seq, channel, ts, recv_ms, boot, stored_hash, hash FROM conflict"
                         " WHERE recv_ms >= $3 AND recv_ms < $4 AND terminal_id" IN_SCOPE " ORDER BY id",
        [ST_USAGE_INSERT] = "INSERT INTO usage(terminal_id, seq, start_ms, end_ms, state, interactive_ms, audio_ms,"
                            " touch, pen, mouse, key) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                            " ON CONFLICT(terminal_id, seq) DO NOTHING",
        [ST_USAGES] = "SELECT terminal_id, seq, start_ms, end_ms, state, interactive_ms, audio_ms, touch, pen,"
                      " mouse, key FROM usage WHERE end_ms > $3 AND start_ms < $4 AND terminal_id" IN_SCOPE
                      " ORDER BY terminal_id, seq",
        /* Adds to the row (under its row lock: a concurrent writer of the
         * same terminal-day waits for this transaction) and returns it. */
        [ST_DAY_ADD] = "INSERT INTO day_rollup AS d(terminal_id, day, on_ms, active_ms, interactive_ms, hb_count,"
                       " p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, on_all_ms, first_msg_ms, last_msg_ms,"
                       " last_active_ms) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
                       " $17, $18, $19, $20, $21, $22)"
                       " ON CONFLICT(terminal_id, day) DO UPDATE SET on_ms = d.on_ms + excluded.on_ms,"
                       " active_ms = d.active_ms + excluded.active_ms,"
                       " interactive_ms = d.interactive_ms + excluded.interactive_ms,"
                       " hb_count = d.hb_count + excluded.hb_count, p1 = d.p1 + excluded.p1, p2 = d.p2 + excluded.p2,"
                       " p3 = d.p3 + excluded.p3, p4 = d.p4 + excluded.p4, p5 = d.p5 + excluded.p5,"
                       " p6 = d.p6 + excluded.p6, p7 = d.p7 + excluded.p7, p8 = d.p8 + excluded.p8,"
                       " p9 = d.p9 + excluded.p9, p10 = d.p10 + excluded.p10, p11 = d.p11 + excluded.p11,"
                       " p12 = d.p12 + excluded.p12, on_all_ms = d.on_all_ms + excluded.on_all_ms,"
                       DAY_HISTORY_MERGE("d")
                       " RETURNING on_ms, active_ms, interactive_ms, hb_count, p1, p2, p3, p4, p5, p6, p7, p8, p9,"
                       " p10, p11, p12, on_all_ms",
        /* A transaction's rollup changes at once, in key order, each row as it
         * is after: $1..$22 are the columns of ST_DAY_ADD as arrays, one
         * (terminal, day) at most once. */
        [ST_DAYS_ADD] = "INSERT INTO day_rollup AS d(terminal_id, day, on_ms, active_ms, interactive_ms, hb_count,"
                        " p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, on_all_ms, first_msg_ms, last_msg_ms,"
                        " last_active_ms) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],"
                        " $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],"
                        " $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[],"
                        " $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[])"
                        " ORDER BY 1, 2"
                        " ON CONFLICT(terminal_id, day) DO UPDATE SET on_ms = d.on_ms + excluded.on_ms,"
                        " active_ms = d.active_ms + excluded.active_ms,"
                        " interactive_ms = d.interactive_ms + excluded.interactive_ms,"
                        " hb_count = d.hb_count + excluded.hb_count, p1 = d.p1 + excluded.p1, p2 = d.p2 + excluded.p2,"
                        " p3 = d.p3 + excluded.p3, p4 = d.p4 + excluded.p4, p5 = d.p5 + excluded.p5,"
                        " p6 = d.p6 + excluded.p6, p7 = d.p7 + excluded.p7, p8 = d.p8 + excluded.p8,"
                        " p9 = d.p9 + excluded.p9, p10 = d.p10 + excluded.p10, p11 = d.p11 + excluded.p11,"
                        " p12 = d.p12 + excluded.p12, on_all_ms = d.on_all_ms + excluded.on_all_ms,"
                        DAY_HISTORY_MERGE("d")
                        " RETURNING terminal_id, day, on_ms, active_ms, interactive_ms, hb_count, p1, p2, p3, p4, p5,"
                        " p6, p7, p8, p9, p10, p11, p12, on_all_ms",
        /* A transaction's usage intervals at once (the first of a (terminal, seq) is kept). */
        [ST_USAGES_ADD] = "INSERT INTO usage(terminal_id, seq, start_ms, end_ms, state, interactive_ms, audio_ms,"
                          " touch, pen, mouse, key) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],"
                          " $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[],"
                          " $10::bigint[], $11::bigint[]) ON CONFLICT(terminal_id, seq) DO NOTHING",
        [ST_DAYS_CLEAR] = "UPDATE day_rollup SET on_ms = 0, active_ms = 0, interactive_ms = 0, on_all_ms = 0,"
                          " p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0, p8 = 0, p9 = 0, p10 = 0,"
                          " p11 = 0, p12 = 0, last_active_ms = 0",
        [ST_DAYS] = "SELECT terminal_id, day, on_ms, active_ms, interactive_ms, hb_count, p1, p2, p3, p4, p5, p6, p7,"
                    " p8, p9, p10, p11, p12, on_all_ms, first_msg_ms, last_msg_ms, last_active_ms FROM day_rollup"
                    " WHERE day BETWEEN $3 AND $4 AND terminal_id" IN_SCOPE " ORDER BY terminal_id, day",
        /* A transaction's school-day changes at once, in key order (so that
         * concurrent writers lock the rows in one order: no deadlock). */
        /* A transaction's school-day changes, packed (pending_write): LOCK
         * inserts the spans not there yet, empty, and locks the others in
         * key order (no deadlock between writers); GET reads them ($1 span,
         * $2 county, $3 school: x.i the ordinal); PUT writes them whole
         * ($4 present, $5 the days' bytes in hex), and packs a recount. */
        [ST_SCHOOL_SPANS_LOCK] = "INSERT INTO school_span AS s(span, county, school, present, days)"
                                 " SELECT x.s, x.c, x.sc, 0, ''::bytea FROM unnest($1::bigint[], $2::text[],"
                                 " $3::text[]) AS x(s, c, sc) ORDER BY 1, 2, 3"
                                 " ON CONFLICT(span, county, school) DO UPDATE SET present = s.present WHERE false",
        [ST_SCHOOL_SPANS_GET] = "SELECT x.i, s.present, s.days FROM unnest($1::bigint[], $2::text[], $3::text[])"
                                " WITH ORDINALITY AS x(s, c, sc, i) JOIN school_span s"
                                " ON s.span = x.s AND s.county = x.c AND s.school = x.sc",
        [ST_SCHOOL_SPANS_PUT] = "INSERT INTO school_span AS s(span, county, school, present, days)"
                                " SELECT x.s, x.c, x.sc, x.p, decode(x.h, 'hex') FROM unnest($1::bigint[],"
                                " $2::text[], $3::text[], $4::bigint[], $5::text[]) AS x(s, c, sc, p, h) ORDER BY 1, 2, 3"
                                " ON CONFLICT(span, county, school) DO UPDATE SET present = excluded.present,"
                                " days = excluded.days",
        /* Every school-day counted from the rollups under the rule $1..$3,
         * in the order spans_pack() packs them. */
        [ST_SCHOOL_DAYS_COUNT] = "SELECT" SCHOOL_DAY_COUNT " ORDER BY d.day >> 5, t.county, t.school, d.day",
        /* Schema 7's school-days, for the migration to 8 alone. */
        [ST_SCHOOL_DAYS_V7] = "SELECT day, county, school, powered, used, periods_used, on_ms, active_ms,"
                              " interactive_ms, hb_received, on_all_ms FROM school_day"
                              " ORDER BY day >> 5, county, school, day",
        [ST_TERMINAL_SCHOOL] = "SELECT county, school FROM terminal WHERE id = $1",
        /* $1 terminal, $2 span, $3 the day's bit; $4, $5 the bit if powered,
         * used; $6, $7 the day's 4 bits in lessons_lo, lessons_hi; $8, $9 its
         * periods used there. */
        [ST_DAY_MARK_SET] = "INSERT INTO day_mark AS m(span, terminal_id, powered, used, lessons_lo, lessons_hi)"
                            " VALUES($2, $1, $4, $5, $8, $9)"
                            " ON CONFLICT(span, terminal_id) DO UPDATE SET powered = (m.powered & ~$3::bigint) | $4,"
                            " used = (m.used & ~$3::bigint) | $5, lessons_lo = (m.lessons_lo & ~$6::bigint) | $8,"
                            " lessons_hi = (m.lessons_hi & ~$7::bigint) | $9",
        /* A transaction's mark changes at once, one (terminal, span) at most
         * once: $1 terminals, $2 spans, $3 the days' bits, $4, $5 powered,
         * used, $6, $7 the days' nibbles in lessons_lo, lessons_hi, $8, $9
         * the periods used there. LOCK inserts the new rows as they are after
         * and locks the others in key order (as ST_SCHOOL_SPANS_LOCK, no
         * deadlock between writers); MERGE then clears and sets the bits of
         * every row (a new one again: its bits are within the masks). */
        [ST_DAY_MARKS_LOCK] = "INSERT INTO day_mark AS m(span, terminal_id, powered, used, lessons_lo, lessons_hi)"
                              " SELECT x.s, x.t, x.p, x.u, x.lo, x.hi FROM unnest($1::bigint[], $2::bigint[],"
                              " $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],"
                              " $9::bigint[]) AS x(t, s, b, p, u, lm, hm, lo, hi)"
                              " ORDER BY 1, 2 ON CONFLICT(span, terminal_id) DO UPDATE SET powered = m.powered"
                              " WHERE false",
        [ST_DAY_MARKS_MERGE] = "UPDATE day_mark AS m SET powered = (m.powered & ~x.b) | x.p,"
                               " used = (m.used & ~x.b) | x.u, lessons_lo = (m.lessons_lo & ~x.lm) | x.lo,"
                               " lessons_hi = (m.lessons_hi & ~x.hm) | x.hi FROM unnest($1::bigint[], $2::bigint[],"
                               " $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],"
                               " $9::bigint[]) AS x(t, s, b, p, u, lm, hm, lo, hi)"
                               " WHERE m.span = x.s AND m.terminal_id = x.t",
        /* The spans $3..$4. */
        [ST_SCHOOL_DAYS] = "SELECT county, school, span, present, days FROM school_span WHERE span BETWEEN $3 AND $4"
                           " AND ($1::text IS NULL OR county = $1) AND ($2::text IS NULL OR school = $2)"
                           " ORDER BY span, county, school",
        /* The scope's subquery only when there is a scope (a semi-join of
         * every mark with the terminal table otherwise). */
        [ST_DAY_MARKS] = "SELECT terminal_id, span, powered, used, lessons_lo, lessons_hi FROM day_mark"
                         " WHERE span BETWEEN $3::bigint >> 5 AND $4::bigint >> 5"
                         " AND (($1::text IS NULL AND $2::text IS NULL) OR terminal_id" IN_SCOPE ")"
                         " ORDER BY span, terminal_id",
        [ST_SEEN] = "SELECT t.id, COALESCE((SELECT d.last_msg_ms FROM day_rollup d WHERE d.terminal_id = t.id"
                    " AND d.day BETWEEN $3 AND $4 AND d.last_msg_ms > 0 ORDER BY d.day DESC LIMIT 1), 0),"
                    " COALESCE((SELECT d.last_active_ms FROM day_rollup d WHERE d.terminal_id = t.id"
                    " AND d.day BETWEEN $3 AND $4 AND d.last_active_ms > 0 ORDER BY d.day DESC LIMIT 1), 0)"
                    " FROM terminal t WHERE ($1::text IS NULL OR t.county = $1) AND ($2::text IS NULL OR t.school = $2)"
                    " ORDER BY t.id",
        /* The latest day with a message: for the terminals heard in the
         * range's last 14 days, from those days' entries of the partial index
         * day_rollup_recent alone (a few pages a day, no table page); a seek
         * of its own only for the others (silent for two weeks, or never). */
        [ST_SEEN_DAYS] = "SELECT t.id, COALESCE(r.day, (SELECT d.day FROM day_rollup d WHERE d.terminal_id = t.id"
                         " AND d.day BETWEEN $3::bigint AND $4::bigint - 14 AND d.last_msg_ms > 0 ORDER BY d.day DESC LIMIT 1),"
                         " -2147483648) FROM terminal t LEFT JOIN (SELECT terminal_id, max(day) AS day FROM day_rollup"
                         " WHERE day BETWEEN greatest($3::bigint, $4::bigint - 13) AND $4::bigint AND last_msg_ms > 0"
                         " GROUP BY terminal_id) r"
                         " ON r.terminal_id = t.id WHERE ($1::text IS NULL OR t.county = $1)"
                         " AND ($2::text IS NULL OR t.school = $2) ORDER BY t.id",
        /* What reports read of a terminal's row (not its last heartbeat's JSON, its names, its OS). */
        [ST_TERMINALS_BRIEF] = "SELECT id, county, school, terminal, first_seq, high_seq, received, duplicates, lost,"
                               " skipped, conflicts, spool_dropped, first_seen_ms, online, version FROM terminal"
                               " WHERE ($1::text IS NULL OR county = $1) AND ($2::text IS NULL OR school = $2)"
                               " ORDER BY id",
        /* $1: the UTC offset in ms. Days are floor((ms + $1) / 86400000), as SQLite divides (ms > 0). */
        [ST_DAYS_HISTORY_REBUILD] =
                "INSERT INTO day_rollup AS d(terminal_id, day, on_ms, active_ms, interactive_ms, hb_count, p1, p2, p3,"
                " p4, p5, p6, p7, p8, p9, p10, p11, p12, on_all_ms, first_msg_ms, last_msg_ms, last_active_ms)"
                " SELECT terminal_id, (ms + $1::bigint) / 86400000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
                " min(ms), max(ms), 0 FROM (SELECT r.terminal_id, least(r.ts - CASE WHEN t.skew_known <> 0"
                " THEN t.skew_ms ELSE 0 END, r.recv_ms) AS ms FROM raw r JOIN terminal t ON t.id = r.terminal_id"
                " UNION ALL SELECT id, first_seen_ms FROM terminal UNION ALL SELECT id, last_seen_ms FROM terminal) x"
                " WHERE ms > 0 GROUP BY 1, 2 ON CONFLICT(terminal_id, day) DO UPDATE SET" DAY_HISTORY_MERGE("d"),
        [ST_LOSS_INSERT] = "INSERT INTO loss(terminal_id, from_seq, to_seq, recorded_ms, reason, kind)"
                           " VALUES($1, $2, $3, $4, $5, $6)",
        [ST_LOSSES] = "SELECT terminal_id, from_seq, to_seq, recorded_ms, reason, kind FROM loss"
                      " WHERE recorded_ms >= $3 AND recorded_ms < $4 AND terminal_id" IN_SCOPE " ORDER BY id",
        [ST_LOSS_FIND] = "SELECT id, from_seq, to_seq, recorded_ms, reason, kind FROM loss WHERE terminal_id = $1"
                         " AND from_seq <= $3 AND to_seq >= $2 ORDER BY from_seq LIMIT 1",
        [ST_LOSS_DELETE] = "DELETE FROM loss WHERE id = $1",
        /* One statement: the test and the insert (SQLite's find, then insert). */
        [ST_FAULT_RAISE] = "INSERT INTO fault(terminal_id, code, source, severity, detail, raised_ms, cleared_ms)"
                           " SELECT $1, $2, $3, $4, $5, $6, 0 WHERE NOT EXISTS (SELECT 1 FROM fault"
                           " WHERE terminal_id = $1 AND code = $2 AND source = $3 AND (cleared_ms = 0 OR cleared_ms >= $6))",
        [ST_FAULT_CLEAR] = "UPDATE fault SET cleared_ms = $4 WHERE terminal_id = $1 AND code = $2 AND source = $3"
                           " AND cleared_ms = 0 AND raised_ms <= $4",
        [ST_FAULTS] = "SELECT terminal_id, code, source, severity, detail, raised_ms, cleared_ms FROM fault"
                      " WHERE raised_ms < $4 AND (cleared_ms = 0 OR cleared_ms >= $3) AND terminal_id" IN_SCOPE
                      " ORDER BY terminal_id, raised_ms, id",
        [ST_INV_DELETE] = "DELETE FROM inventory WHERE terminal_id = $1",
        [ST_INV_INSERT] = "INSERT INTO inventory(terminal_id, idx, kind, subsystem, bus, vendor_id, model_id,"
                          " vendor, model, serial, syspath) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        [ST_INVENTORY] = "SELECT terminal_id, kind, subsystem, bus, vendor_id, model_id, vendor, model, serial, syspath"
                         " FROM inventory WHERE terminal_id" IN_SCOPE " ORDER BY terminal_id, idx",
        [ST_PERIPH_INSERT] = "INSERT INTO periph_event(terminal_id, seq, ts, action, kind, subsystem, vendor,"
                             " model, serial, syspath) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [ST_EVENT_INSERT] = "INSERT INTO terminal_event(terminal_id, seq, ts, code, severity, detail)"
                            " VALUES($1, $2, $3, $4, $5, $6)",
        [ST_EVENTS] = "SELECT terminal_id, seq, ts, code, severity, detail FROM terminal_event"
                      " WHERE ts >= $3 AND ts < $4 AND terminal_id" IN_SCOPE " ORDER BY terminal_id, ts, seq",
        [ST_NET_SET] = "INSERT INTO terminal_net AS n(terminal_id, seq, ifname, mac, ipv4, prefix)"
                       " VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT(terminal_id) DO UPDATE SET seq = excluded.seq,"
                       " ifname = excluded.ifname, mac = excluded.mac, ipv4 = excluded.ipv4,"
                       " prefix = excluded.prefix WHERE excluded.seq > n.seq",
        [ST_NETS] = "SELECT terminal_id, seq, ifname, mac, ipv4, prefix FROM terminal_net"
                    " WHERE $3::bigint IS NOT NULL AND $4::bigint IS NOT NULL AND terminal_id" IN_SCOPE
                    " ORDER BY terminal_id",
        [ST_AUDIT_PUT] = "INSERT INTO audit(cmd_id, operator, sent_ms, done_ms, county, school, terminal, via, op, args, result, detail) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                         " ON CONFLICT(cmd_id) DO UPDATE SET done_ms = excluded.done_ms, via = excluded.via,"
                         " result = excluded.result, detail = excluded.detail",
        [ST_AUDITS] = "SELECT cmd_id, operator, sent_ms, done_ms, county, school, terminal, via, op, args, result, detail FROM audit WHERE ($1::text IS NULL OR county = $1) AND ($2::text IS NULL OR school = $2)"
                      " AND sent_ms >= $3 AND sent_ms < $4 ORDER BY sent_ms, cmd_id",
        [ST_COUNTER_ADD] = "INSERT INTO counter AS c(name, value) VALUES($1, $2)"
                           " ON CONFLICT(name) DO UPDATE SET value = c.value + excluded.value",
        [ST_COUNTERS] = "SELECT name, value FROM counter ORDER BY name",
        /* raw.id grows with arrival (the sequence), recv_ms nearly so: the
         * rows below the first id received at or after $1 go. */
        [ST_PRUNE_RAW] = "DELETE FROM raw WHERE id < COALESCE((SELECT min(id) FROM raw WHERE recv_ms >= $1),"
                         " (SELECT max(id) + 1 FROM raw))",
        [ST_PRUNE_USAGE] = "DELETE FROM usage WHERE end_ms < $1",
};

struct pg_store {
        struct bbt_store base; /* first */
        PGconn *conn;
        bool prepared[ST__COUNT];
        bool read_only;
        bool in_tx;
        bool iterating;           /* an iterator's rows are streaming: no other call now */
        bool has_rule;
        struct bbt_day_rule rule;
        struct bbt_agg agg;       /* the schools seen, the school-day changes not written yet */
        /* Staged in a transaction, written at commit or before a read of
         * their table: rollup changes summed per terminal and day, usage
         * intervals. One statement each instead of one per call. */
        struct day_delta *days;  /* open addressing by (terminal, day); cap_days a power of 2 */
        size_t n_days, cap_days;
        struct bbt_store_usage *usages;
        size_t n_usages, cap_usages;
        struct bbt_store_terminal *terms; /* terminal rows, the last update of each */
        size_t n_terms, cap_terms;
        uint32_t *term_slots;             /* id → 1 + index into terms; open addressing, cap_term_slots a power of 2 */
        size_t cap_term_slots;
};

struct day_delta {
        bool used;
        int64_t terminal_id;
        struct bbt_day_rollup d; /* d.day: the day */
};

static int staged_write(struct pg_store *q);
static void staged_drop(struct pg_store *q);

static struct pg_store *of(struct bbt_store *s)
{
        return (struct pg_store *)s;
}

/* The parameters of one statement, as text. */
#define MAX_PARAMS 32
struct params {
        int n;
        const char *v[MAX_PARAMS];
        char num[MAX_PARAMS][24];
};

static void p_int(struct params *p, int64_t v)
{
        snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, v);
        p->v[p->n] = p->num[p->n];
        p->n++;
}

static void p_text(struct params *p, const char *s)
{
        p->v[p->n++] = s ? s : "";
}

static void p_null(struct params *p)
{
        p->v[p->n++] = NULL;
}

/* Makes libpq's message (lines, the last ending in a newline) one line. */
static void one_line(char *s)
{
        size_t n;

        for (char *c = s; *c; c++)
                if (*c == '\n' || *c == '\t')
                        *c = ' ';
        n = strlen(s);
        while (n && s[n - 1] == ' ')
                s[--n] = '\0';
        for (char *c = strstr(s, "  "); c; c = strstr(c, "  "))
                memmove(c, c + 1, strlen(c));
}

/* -errno for a failed result (or connection), with the error text kept. */
static int fail_res(struct pg_store *q, const PGresult *res, const char *what)
{
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorMessage(res) : "";

        if (!msg || !*msg)
                msg = PQerrorMessage(q->conn);
        snprintf(q->base.error, sizeof(q->base.error), "%s: %s", what, msg && *msg ? msg : "failed");
        one_line(q->base.error);
        if (!res)
                return -ENOMEM;
        if (!state)
                return PQstatus(q->conn) == CONNECTION_BAD ? -ECONNRESET : -EIO;
        if (strcmp(state, "23505") == 0)
                return -EEXIST;
        if (strcmp(state, "25006") == 0)
                return -EROFS;
        if (strcmp(state, "53100") == 0)
                return -ENOSPC;
        if (strcmp(state, "53200") == 0)
                return -ENOMEM;
        if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
                return -EBUSY;
        if (strncmp(state, "42501", 5) == 0 || strncmp(state, "28", 2) == 0)
                return -EACCES;
        if (strcmp(state, "3D000") == 0)
                return -ENOENT;
        if (strncmp(state, "08", 2) == 0)
                return -ECONNRESET;
        return -EIO;
}

/* What every session sets, at open and after a reconnect: UTF-8; notices
 * kept quiet; a statement waiting for a lock longer than a minute is an
 * error (the batch is rolled back and retried) rather than a hung
 * aggregator; a read-only store refuses writes in the server too, and
 * compiles no query (JIT costs a report's queries tens of ms, gains nothing). */
static int session_setup(struct pg_store *q)
{
        PGresult *res = PQexec(q->conn, q->read_only ? "SET client_encoding = 'UTF8'; SET client_min_messages = warning;"
                                                       " SET jit = off;"
                                                       " SET lock_timeout = '60s';"
                                                       " SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
                                                     : "SET client_encoding = 'UTF8'; SET client_min_messages = warning;"
                                                       " SET lock_timeout = '60s'");
        int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : fail_res(q, res, "open");

        PQclear(res);
        return r;
}

/* Outside a transaction, a connection the server dropped (a restart, a
 * failover, an idle timeout) is opened again: the next batch goes on where
 * the last committed one ended. Inside one, the transaction is gone: the
 * call fails, the caller rolls back and starts the batch again. */
static int connected(struct pg_store *q)
{
        if (PQstatus(q->conn) == CONNECTION_OK)
                return 0;
        if (q->in_tx) {
                snprintf(q->base.error, sizeof(q->base.error), "the connection to the server was lost");
                return -ECONNRESET;
        }
        PQreset(q->conn);
        if (PQstatus(q->conn) != CONNECTION_OK) {
                snprintf(q->base.error, sizeof(q->base.error), "reconnect: %s", PQerrorMessage(q->conn));
                one_line(q->base.error);
                return -ECONNREFUSED;
        }
        memset(q->prepared, 0, sizeof(q->prepared)); /* a new session has none */
        return session_setup(q);
}

static bool prepare(struct pg_store *q, enum stmt id)
{
        char name[16];
        PGresult *res;

        if (q->prepared[id])
                return true;
        snprintf(name, sizeof(name), "bbt%d", (int)id);
        res = PQprepare(q->conn, name, sql[id], 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                fail_res(q, res, "prepare");
                PQclear(res);
                return false;
        }
        PQclear(res);
        q->prepared[id] = true;
        return true;
}

static int busy(struct pg_store *q)
{
        snprintf(q->base.error, sizeof(q->base.error), "a store call inside an iterator's callback");
        return -EBUSY;
}

/* Runs statement ID: 0 and *RET (if RET; else cleared) with its result, or -errno. */
static int run(struct pg_store *q, enum stmt id, const struct params *p, const char *what, PGresult **ret)
{
        char name[16];
        PGresult *res;
        ExecStatusType st;
        int r;

        if (ret)
                *ret = NULL;
        if (q->iterating)
                return busy(q);
        snprintf(name, sizeof(name), "bbt%d", (int)id);
        for (int attempt = 0;; attempt++) {
                r = connected(q);
                if (r < 0)
                        return r;
                if (!prepare(q, id)) {
                        r = PQstatus(q->conn) == CONNECTION_BAD ? -ECONNRESET : -EIO;
                } else {
                        res = PQexecPrepared(q->conn, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0);
                        st = PQresultStatus(res);
                        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                                if (ret)
                                        *ret = res;
                                else
                                        PQclear(res);
                                return 0;
                        }
                        r = fail_res(q, res, what);
                        PQclear(res);
                }
                /* Dropped while idle (the first use tells): once more on a new connection. */
                if (attempt > 0 || q->in_tx || PQstatus(q->conn) != CONNECTION_BAD)
                        return r;
        }
}

/* Runs a plain SQL command (no parameters). */
static int command(struct pg_store *q, const char *text, const char *what)
{
        PGresult *res;
        int r = 0;

        if (q->iterating)
                return busy(q);
        for (int attempt = 0;; attempt++) {
                r = connected(q);
                if (r < 0)
                        return r;
                res = PQexec(q->conn, text);
                if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK) {
                        PQclear(res);
                        return 0;
                }
                r = fail_res(q, res, what);
                PQclear(res);
                if (attempt > 0 || q->in_tx || PQstatus(q->conn) != CONNECTION_BAD)
                        return r;
        }
}

/* Type OIDs (pg_type.h, stable since PostgreSQL 7): what each()'s binary
 * results may hold. */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_VARCHAR 1043

/* A column as an integer: text (run()'s results) or binary (each()'s: the
 * integers big-endian, 8, 4 or 2 bytes; no text to parse). */
static int64_t col_i64(const PGresult *res, int row, int col)
{
        const unsigned char *v;
        uint64_t x = 0;
        int n;

        if (PQgetisnull(res, row, col))
                return 0;
        v = (const unsigned char *)PQgetvalue(res, row, col);
        if (PQfformat(res, col) == 0 || PQftype(res, col) == OID_TEXT || PQftype(res, col) == OID_VARCHAR)
                return strtoll((const char *)v, NULL, 10);
        n = PQgetlength(res, row, col);
        for (int i = 0; i < n; i++)
                x = x << 8 | v[i];
        switch (n) {
        case 8:
                return (int64_t)x;
        case 4:
                return (int32_t)(uint32_t)x;
        case 2:
                return (int16_t)(uint16_t)x;
        default:
                return (int64_t)x; /* bool: 1 byte */
        }
}

/* Whether every column of RES is one col_i64() and copy_col() read in
 * binary (bytea as it is): else an internal error (a statement's new column of another type). */
static bool binary_readable(const PGresult *res)
{
        for (int c = 0; c < PQnfields(res); c++)
                switch (PQftype(res, c)) {
                case OID_BOOL:
                case OID_BYTEA:
                case OID_INT8:
                case OID_INT2:
                case OID_INT4:
                case OID_TEXT:
                case OID_VARCHAR:
                        break;
                default:
                        return false;
                }
        return true;
}

static void copy_col(const PGresult *res, int row, int col, char *buf, size_t size)
{
        const char *t = PQgetvalue(res, row, col);
        size_t n = t ? (size_t)PQgetlength(res, row, col) : 0;

        if (n >= size)
                n = size - 1;
        if (n)
                memcpy(buf, t, n);
        buf[n] = '\0';
}

/* The scope's county ($1), school ($2) and bounds ($3, $4). */
static void p_scope(struct params *p, const struct bbt_store_scope *scope, int64_t lo, int64_t hi)
{
        if (scope->county)
                p_text(p, scope->county);
        else
                p_null(p);
        if (scope->school)
                p_text(p, scope->school);
        else
                p_null(p);
        p_int(p, lo);
        p_int(p, hi);
}

/* Streams the rows of statement ID one at a time (libpq's single-row mode:
 * a report over a year of rollups is never in memory at once) through
 * ROW_CB, stopping at the first non-zero result. The rows come in binary:
 * a report reads hundreds of thousands of integers, and parsing their text
 * was a fifth of bbt-report's time (docs/BENCHMARKS.md, "Reports on
 * PostgreSQL and SQLite"). */
static int each(struct pg_store *q, enum stmt id, const struct params *p, const char *what,
                int (*row_cb)(const PGresult *res, void *cb, void *u), void *cb, void *u)
{
        char name[16];
        PGresult *res;
        int r = 0, e = 0;

        if (q->iterating)
                return busy(q);
        snprintf(name, sizeof(name), "bbt%d", (int)id);
        for (int attempt = 0;; attempt++) {
                long rows = 0;

                e = connected(q);
                if (e < 0)
                        return e;
                if (!prepare(q, id)) {
                        e = PQstatus(q->conn) == CONNECTION_BAD ? -ECONNRESET : -EIO;
                } else if (!PQsendQueryPrepared(q->conn, name, p->n, p->v, NULL, NULL, 1)) {
                        snprintf(q->base.error, sizeof(q->base.error), "%s: %s", what, PQerrorMessage(q->conn));
                        one_line(q->base.error);
                        e = PQstatus(q->conn) == CONNECTION_BAD ? -ECONNRESET : -EIO;
                } else {
                        PQsetSingleRowMode(q->conn);
                        q->iterating = true;
                        while ((res = PQgetResult(q->conn))) {
                                ExecStatusType st = PQresultStatus(res);

                                if (st == PGRES_SINGLE_TUPLE) {
                                        if (rows++ == 0 && !binary_readable(res) && e == 0) {
                                                snprintf(q->base.error, sizeof(q->base.error),
                                                         "%s: internal error: a column of a type not read in binary",
                                                         what);
                                                e = -EPROTO;
                                        }
                                        if (r == 0 && e == 0)
                                                r = row_cb(res, cb, u);
                                } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && e == 0) {
                                        e = fail_res(q, res, what);
                                }
                                PQclear(res); /* after a stop, the rest is read and dropped */
                        }
                        q->iterating = false;
                        if (r != 0)
                                return r;
                }
                /* Dropped while idle, before any row: once more on a new connection. */
                if (e == 0 || attempt > 0 || rows > 0 || q->in_tx || PQstatus(q->conn) != CONNECTION_BAD)
                        return e;
        }
}

/* each() over what the transaction wrote too: the staged writes go first. */
static int each_staged(struct pg_store *q, enum stmt id, const struct params *p, const char *what,
                       int (*row_cb)(const PGresult *res, void *cb, void *u), void *cb, void *u)
{
        int r = staged_write(q);

        return r < 0 ? r : each(q, id, p, what, row_cb, cb, u);
}

/* ---- day aggregates: pending school-day changes ---- */

/* A growable text array literal for one column: {"a","b"}. */
struct arr {
        char *s;
        size_t len, cap;
};

static int arr_put(struct arr *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int arr_put(struct arr *a, const char *fmt, ...)
{
        va_list ap;
        int n;

        for (;;) {
                size_t room = a->cap - a->len;

                va_start(ap, fmt);
                n = a->s ? vsnprintf(a->s + a->len, room, fmt, ap) : -1;
                va_end(ap);
                if (a->s && n >= 0 && (size_t)n < room) {
                        a->len += (size_t)n;
                        return 0;
                }
                if (bbt_array_reserve((void **)&a->s, &a->cap, a->cap + 256 + (n > 0 ? (size_t)n : 0), 1) < 0)
                        return -ENOMEM;
        }
}

/* Appends ELEMENT (a number, or a string quoted for an array literal) to A. */
static int arr_num(struct arr *a, int64_t v)
{
        return arr_put(a, "%s%" PRId64, a->len ? "," : "{", v);
}

static int arr_str(struct arr *a, const char *s)
{
        int r = arr_put(a, "%s\"", a->len ? "," : "{");

        for (; r == 0 && *s; s++)
                r = *s == '"' || *s == '\\' ? arr_put(a, "\\%c", *s) : arr_put(a, "%c", *s);
        return r == 0 ? arr_put(a, "\"") : r;
}

static int arr_end(struct arr *a)
{
        return a->len ? arr_put(a, "}") : arr_put(a, "{}");
}

static void arrs_free(struct arr *cols, size_t n)
{
        for (size_t k = 0; k < n; k++)
                free(cols[k].s);
}

/* Closes every array of COLS and makes them the parameters P. */
static int arrs_params(struct arr *cols, size_t n, struct params *p)
{
        int r = 0;

        for (size_t k = 0; r == 0 && k < n; k++) {
                r = arr_end(&cols[k]);
                p_text(p, cols[k].s);
        }
        return r;
}

/* Runs statement ID with COLS[0..N) closed as its parameters (R: how
 * filling them went, an error told as WHAT: out of memory), then frees them. */
static int arrs_run(struct pg_store *q, enum stmt id, struct arr *cols, size_t n, int r, const char *what,
                    PGresult **ret)
{
        struct params p = { 0 };

        if (r == 0)
                r = arrs_params(cols, n, &p);
        if (r == 0)
                r = run(q, id, &p, what, ret);
        else
                snprintf(q->base.error, sizeof(q->base.error), "%s: out of memory", what);
        arrs_free(cols, n);
        return r;
}

/* Appends the LEN bytes at P to A as one hex element (decode(x, 'hex')). */
static int arr_hex(struct arr *a, const uint8_t *p, size_t len)
{
        static const char digit[] = "0123456789abcdef";
        int r = arr_put(a, "%s", a->len ? "," : "{");

        if (r == 0 && bbt_array_reserve((void **)&a->s, &a->cap, a->len + 2 * len + 1, 1) < 0)
                r = -ENOMEM;
        for (size_t i = 0; r == 0 && i < len; i++) {
                a->s[a->len++] = digit[p[i] >> 4];
                a->s[a->len++] = digit[p[i] & 15];
        }
        if (r == 0)
                a->s[a->len] = '\0';
        return r;
}

/* A school's span as a transaction changes it, or as a recount packs it. */
struct span_change {
        int64_t span;
        char county[7];
        char school[BBT_ID_MAX + 1];
        struct bbt_agg_span sd;
};

static int span_change_cmp(const void *a, const void *b)
{
        const struct span_change *x = a, *y = b;
        int r = x->span < y->span ? -1 : x->span > y->span;

        if (r == 0)
                r = strcmp(x->county, y->county);
        return r ? r : strcmp(x->school, y->school);
}

/* The key columns ($1 span, $2 county, $3 school) of V[0..N). */
static int span_keys(const struct span_change *v, size_t n, struct arr col[3])
{
        int r = 0;

        for (size_t i = 0; r == 0 && i < n; i++) {
                r = arr_num(&col[0], v[i].span);
                if (r == 0)
                        r = arr_str(&col[1], v[i].county);
                if (r == 0)
                        r = arr_str(&col[2], v[i].school);
        }
        return r;
}

/* Writes V[0..N) whole (ST_SCHOOL_SPANS_PUT), sorted by key. */
static int spans_put(struct pg_store *q, struct span_change *v, size_t n)
{
        struct arr col[5];
        uint8_t *buf = malloc(BBT_AGG_SPAN_BYTES_MAX);
        int r = buf ? 0 : -ENOMEM;

        memset(col, 0, sizeof(col));
        if (r == 0)
                r = span_keys(v, n, col);
        for (size_t i = 0; r == 0 && i < n; i++) {
                r = arr_num(&col[3], v[i].sd.present);
                if (r == 0)
                        r = arr_hex(&col[4], buf, bbt_agg_span_encode(&v[i].sd, buf));
        }
        r = arrs_run(q, ST_SCHOOL_SPANS_PUT, col, BBT_ELEMENTSOF(col), r, "day aggregates", NULL);
        free(buf);
        return r;
}

/* Writes every pending school-day change: the spans they fall in locked
 * (in key order), read, added to and written back, three statements over
 * arrays. */
static int pending_write(struct pg_store *q)
{
        struct span_change *v = NULL;
        struct arr col[3];
        struct params p = { 0 };
        PGresult *res = NULL;
        size_t n = 0, m = 0;
        int r = 0;

        if (!q->agg.n_pending)
                return 0;
        v = calloc(q->agg.n_pending, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < q->agg.cap_pending; i++) {
                const struct bbt_agg_pending *x = &q->agg.pending[i];
                struct span_change *c = &v[n];
                int d = x->day & (BBT_STORE_MARK_DAYS - 1);

                if (!x->used)
                        continue;
                n++;
                c->span = bbt_agg_span_of(x->day);
                memcpy(c->county, q->agg.schools[x->school].county, sizeof(c->county));
                memcpy(c->school, q->agg.schools[x->school].school, sizeof(c->school));
                c->sd.present = 1u << d;
                c->sd.t[d] = x->t;
        }
        /* One change a span and school. */
        qsort(v, n, sizeof(*v), span_change_cmp);
        for (size_t i = 0; i < n; i++) {
                if (m > 0 && span_change_cmp(&v[m - 1], &v[i]) == 0)
                        bbt_agg_span_add(&v[m - 1].sd, &v[i].sd);
                else if (m++ != i) {
                        v[m - 1] = v[i];
                }
        }
        memset(col, 0, sizeof(col));
        r = span_keys(v, m, col);
        if (r == 0)
                r = arrs_params(col, BBT_ELEMENTSOF(col), &p);
        if (r == 0)
                r = run(q, ST_SCHOOL_SPANS_LOCK, &p, "day aggregates", NULL);
        else
                snprintf(q->base.error, sizeof(q->base.error), "day aggregates: out of memory");
        if (r == 0)
                r = run(q, ST_SCHOOL_SPANS_GET, &p, "day aggregates", &res);
        for (int row = 0; r == 0 && row < PQntuples(res); row++) {
                int64_t i = col_i64(res, row, 0) - 1;
                size_t len = 0;
                unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 2), &len);
                struct bbt_agg_span now;

                if (!bytes) {
                        r = -ENOMEM;
                } else if (i < 0 || (size_t)i >= m ||
                           bbt_agg_span_decode((uint32_t)col_i64(res, row, 1), bytes, len, &now) < 0) {
                        snprintf(q->base.error, sizeof(q->base.error),
                                 "day aggregates: a school's days from %lld: bad row",
                                 i >= 0 && (size_t)i < m ? (long long)v[i].span * BBT_STORE_MARK_DAYS : 0LL);
                        r = -EIO;
                } else {
                        bbt_agg_span_add(&now, &v[i].sd);
                        v[i].sd = now;
                }
                PQfreemem(bytes);
        }
        if (r == 0 && PQntuples(res) != (int)m) {
                snprintf(q->base.error, sizeof(q->base.error), "day aggregates: %d of %zu spans locked",
                         PQntuples(res), m);
                r = -EIO;
        }
        PQclear(res);
        arrs_free(col, BBT_ELEMENTSOF(col));
        if (r == 0)
                r = spans_put(q, v, m);
        free(v);
        if (r == 0)
                bbt_agg_pending_drop(&q->agg);
        return r;
}

/* Packing a recount or a migration: school-day rows (day, county, school,
 * then the totals in bbt_agg_span's order) by span, county, school and day. */
struct span_pack {
        struct span_change *v;
        size_t n, cap;
};

static int span_pack_row(const PGresult *res, void *cb, void *u)
{
        struct span_pack *k = u;
        struct span_change key = { 0 }, *c;
        int32_t day = (int32_t)col_i64(res, 0, 0);
        int d = day & (BBT_STORE_MARK_DAYS - 1);

        (void)cb;
        key.span = bbt_agg_span_of(day);
        copy_col(res, 0, 1, key.county, sizeof(key.county));
        copy_col(res, 0, 2, key.school, sizeof(key.school));
        if (!k->n || span_change_cmp(&k->v[k->n - 1], &key) != 0) {
                if (bbt_array_reserve((void **)&k->v, &k->cap, k->n + 1, sizeof(*k->v)) < 0)
                        return -ENOMEM;
                k->v[k->n++] = key;
        }
        c = &k->v[k->n - 1];
        c->sd.present |= 1u << d;
        for (int f = 0; f < BBT_AGG_SPAN_VALUES; f++)
                *bbt_agg_totals_field(&c->sd.t[d], f) = col_i64(res, 0, 3 + f);
        return 0;
}

/* Packs the school-days of statement SRC (params P) into school_span. The
 * spans are held in memory (2 KiB each: 40 MiB for 2,000 schools' year)
 * and written 500 at a time. */
static int spans_pack(struct pg_store *q, enum stmt src, const struct params *p)
{
        static const struct params none = { 0 };
        struct span_pack k = { 0 };
        int r = each(q, src, p ? p : &none, "day aggregates", span_pack_row, NULL, &k);

        if (r == -ENOMEM)
                snprintf(q->base.error, sizeof(q->base.error), "day aggregates: out of memory");
        for (size_t i = 0; r == 0 && i < k.n; i += 500)
                r = spans_put(q, k.v + i, k.n - i < 500 ? k.n - i : 500);
        free(k.v);
        return r;
}

/* *RET: the index into q->agg.schools of terminal TERMINAL_ID's school;
 * -ENOENT if there is no such terminal. */
static int school_of(struct pg_store *q, int64_t terminal_id, int32_t *ret)
{
        char county[7], school[BBT_ID_MAX + 1];
        struct params p = { 0 };
        int32_t i = bbt_agg_school_cached(&q->agg, terminal_id);
        PGresult *res;
        int r;

        if (i >= 0) {
                *ret = i;
                return 0;
        }
        p_int(&p, terminal_id);
        r = run(q, ST_TERMINAL_SCHOOL, &p, "day aggregates", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                PQclear(res);
                return -ENOENT;
        }
        copy_col(res, 0, 0, county, sizeof(county));
        copy_col(res, 0, 1, school, sizeof(school));
        PQclear(res);
        i = bbt_agg_school_add(&q->agg, terminal_id, county, school);
        if (i < 0)
                return i;
        *ret = i;
        return 0;
}

/* ---- transactions, meta ---- */

static int pg_begin(struct bbt_store *s)
{
        struct pg_store *q = of(s);
        int r = command(q, "BEGIN", "begin");

        if (r == 0)
                q->in_tx = true;
        return r;
}

static int pg_rollback(struct bbt_store *s)
{
        struct pg_store *q = of(s);

        if (!q->in_tx)
                return 0;
        q->in_tx = false;
        q->has_rule = false;
        bbt_agg_pending_drop(&q->agg);
        staged_drop(q);
        bbt_agg_forget_terminals(&q->agg);
        if (PQstatus(q->conn) != CONNECTION_OK)
                return 0; /* the server dropped the transaction with the connection */
        return command(q, "ROLLBACK", "rollback");
}

static int pg_commit(struct bbt_store *s)
{
        struct pg_store *q = of(s);
        int r = staged_write(q);

        if (r == 0)
                r = pending_write(q);
        if (r < 0)
                return r;
        r = command(q, "COMMIT", "commit");
        if (r == 0)
                q->in_tx = false;
        return r;
}

static int pg_meta_get(struct bbt_store *s, const char *key, int64_t *ret)
{
        struct pg_store *q = of(s);
        struct params p = { 0 };
        PGresult *res;
        int r;

        p_text(&p, key);
        r = run(q, ST_META_GET, &p, "meta", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                r = -ENOENT;
        else
                *ret = col_i64(res, 0, 0);
        PQclear(res);
        return r;
}

/* The server's current snapshot, hashed (FNV-1a): a commit of a writing
 * transaction changes it. */
static int pg_data_version(struct bbt_store *s, uint64_t *ret)
{
        PGresult *res;
        int r = run(of(s), ST_DATA_VERSION, NULL, "data_version", &res);
        const char *text;

        if (r < 0)
                return r;
        text = PQntuples(res) ? PQgetvalue(res, 0, 0) : "";
        *ret = bbt_fnv1a(BBT_FNV1A_BASIS, text, strlen(text));
        PQclear(res);
        return 0;
}

static int pg_meta_set(struct bbt_store *s, const char *key, int64_t value)
{
        struct params p = { 0 };

        p_text(&p, key);
        p_int(&p, value);
        return run(of(s), ST_META_SET, &p, "meta", NULL);
}

/* ---- terminals, gaps ---- */

static void p_terminal(struct params *p, const struct bbt_store_terminal *t)
{
        p_text(p, t->county);
        p_text(p, t->school);
        p_text(p, t->terminal);
        p_int(p, t->first_seq);
        p_int(p, t->high_seq);
        p_int(p, t->received);
        p_int(p, t->duplicates);
        p_int(p, t->lost);
        p_int(p, t->first_seen_ms);
        p_int(p, t->last_seen_ms);
        p_int(p, t->last_active_ms);
        p_int(p, t->online);
        p_int(p, t->boot);
        p_int(p, t->online_since_ms);
        p_int(p, t->offline_since_ms);
        p_int(p, (int)t->offline_reason);
        p_int(p, t->skew_known);
        p_int(p, t->skew_ms);
        p_int(p, t->spool_dropped);
        p_text(p, t->version);
        p_text(p, t->hostname);
        p_text(p, t->os);
        p_text(p, t->machine_id);
        p_text(p, t->last_hb);
        p_int(p, t->inventory_seq);
        p_int(p, t->skipped);
        p_int(p, t->conflicts);
}

static int pg_terminal_insert(struct bbt_store *s, struct bbt_store_terminal *t)
{
        struct pg_store *q = of(s);
        struct params p = { 0 };
        PGresult *res;
        int r;

        p_terminal(&p, t);
        r = run(q, ST_TERMINAL_INSERT, &p, "terminal", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 1) {
                t->id = col_i64(res, 0, 0);
        } else {
                snprintf(q->base.error, sizeof(q->base.error), "terminal: %s/%s/%s is stored already", t->county,
                         t->school, t->terminal);
                r = -EEXIST;
        }
        PQclear(res);
        return r;
}

static int term_stage(struct pg_store *q, const struct bbt_store_terminal *t);

static int pg_terminal_update(struct bbt_store *s, const struct bbt_store_terminal *t)
{
        struct params p = { 0 };

        if (of(s)->in_tx)
                return term_stage(of(s), t);
        p_terminal(&p, t);
        p_int(&p, t->id);
        return run(of(s), ST_TERMINAL_UPDATE, &p, "terminal", NULL);
}

static int terminal_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_terminal *) = (int (*)(void *, const struct bbt_store_terminal *))cb;
        struct bbt_store_terminal t;

        memset(&t, 0, sizeof(t));
        copy_col(res, 0, 0, t.county, sizeof(t.county));
        copy_col(res, 0, 1, t.school, sizeof(t.school));
        copy_col(res, 0, 2, t.terminal, sizeof(t.terminal));
        t.first_seq = col_i64(res, 0, 3);
        t.high_seq = col_i64(res, 0, 4);
        t.received = col_i64(res, 0, 5);
        t.duplicates = col_i64(res, 0, 6);
        t.lost = col_i64(res, 0, 7);
        t.first_seen_ms = col_i64(res, 0, 8);
        t.last_seen_ms = col_i64(res, 0, 9);
        t.last_active_ms = col_i64(res, 0, 10);
        t.online = col_i64(res, 0, 11) != 0;
        t.boot = col_i64(res, 0, 12);
        t.online_since_ms = col_i64(res, 0, 13);
        t.offline_since_ms = col_i64(res, 0, 14);
        t.offline_reason = (enum bbt_offline_reason)col_i64(res, 0, 15);
        t.skew_known = col_i64(res, 0, 16) != 0;
        t.skew_ms = col_i64(res, 0, 17);
        t.spool_dropped = col_i64(res, 0, 18);
        copy_col(res, 0, 19, t.version, sizeof(t.version));
        copy_col(res, 0, 20, t.hostname, sizeof(t.hostname));
        copy_col(res, 0, 21, t.os, sizeof(t.os));
        copy_col(res, 0, 22, t.machine_id, sizeof(t.machine_id));
        copy_col(res, 0, 23, t.last_hb, sizeof(t.last_hb));
        t.inventory_seq = col_i64(res, 0, 24);
        t.skipped = col_i64(res, 0, 25);
        t.conflicts = col_i64(res, 0, 26);
        t.id = col_i64(res, 0, 27);
        return fn(u, &t);
}

static int pg_terminals_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_terminal *t), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, 0, 0);
        p.n = 2;
        return each_staged(of(s), ST_TERMINALS, &p, "terminals", terminal_row, (void *)cb, u);
}

static int copy_terminal_cb(void *u, const struct bbt_store_terminal *t)
{
        *(struct bbt_store_terminal *)u = *t;
        return 0;
}

/* Several writers: a terminal's row is held by one transaction at a time,
 * from its first message in a batch to the commit; the holder reads it, and
 * the number of its gaps, only once it holds it. Two statements, sent
 * together (one round trip): the lock, then the read, whose snapshot is
 * taken after the lock is had (READ COMMITTED), so that it sees what the
 * previous holder committed — one statement would read the gaps as they
 * were when it started, before any wait. Without WAIT, SKIP LOCKED: no row
 * (busy) rather than a wait; the caller commits what it holds before it
 * waits (docs/aggregator.md, "Several aggregators"). */
static int pg_terminal_lock(struct bbt_store *s, struct bbt_store_terminal *t, bool wait, int64_t *ret_gaps)
{
        struct pg_store *q = of(s);
        char text[sizeof(TERMINAL_COLS) + 400];
        PGresult *res;
        int r = 0, n = 0, locked = -1;

        if (q->iterating)
                return busy(q);
        if (t->id <= 0) {
                /* By key: the id first (rare: a terminal another writer added). */
                struct params p = { 0 };

                p_text(&p, t->county);
                p_text(&p, t->school);
                p_text(&p, t->terminal);
                r = run(q, ST_TERMINAL_LOCK_KEY, &p, "terminal lock", &res);
                if (r < 0)
                        return r;
                if (PQntuples(res) == 1)
                        t->id = col_i64(res, 0, 0);
                PQclear(res);
                if (t->id <= 0) {
                        snprintf(q->base.error, sizeof(q->base.error), "terminal: no such terminal");
                        return -ENOENT;
                }
        }
        r = connected(q);
        if (r < 0)
                return r;
        snprintf(text, sizeof(text),
                 "SELECT id FROM terminal WHERE id = %" PRId64 " FOR UPDATE%s; SELECT " TERMINAL_COLS
                 ", id, (SELECT count(*) FROM gap WHERE terminal_id = %" PRId64 ") FROM terminal WHERE id = %" PRId64,
                 t->id, wait ? "" : " SKIP LOCKED", t->id, t->id);
        if (!PQsendQuery(q->conn, text)) {
                snprintf(q->base.error, sizeof(q->base.error), "terminal lock: %s", PQerrorMessage(q->conn));
                one_line(q->base.error);
                return PQstatus(q->conn) == CONNECTION_BAD ? -ECONNRESET : -EIO;
        }
        while ((res = PQgetResult(q->conn))) {
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        if (r == 0)
                                r = fail_res(q, res, "terminal lock");
                } else if (n++ == 0) {
                        locked = PQntuples(res) == 1;
                } else if (r == 0 && locked == 1 && PQntuples(res) == 1) {
                        if (ret_gaps)
                                *ret_gaps = col_i64(res, 0, 28);
                        r = terminal_row(res, (void *)copy_terminal_cb, t);
                } else if (r == 0 && locked == 1) {
                        locked = 0; /* gone meanwhile */
                }
                PQclear(res);
        }
        if (r < 0)
                return r;
        if (locked == 1)
                return 1;
        if (!wait && locked == 0) {
                /* Held by another transaction (or not there at all: the wait says which). */
                return 0;
        }
        snprintf(q->base.error, sizeof(q->base.error), "terminal: no such terminal");
        return -ENOENT;
}

static int pg_terminal_gaps_each(struct bbt_store *s, int64_t terminal_id,
                                 int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u);

static int pg_gaps_replace(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_gap *gaps, size_t n)
{
        struct pg_store *q = of(s);
        struct params p = { 0 };
        struct arr col[8];
        int r;

        p_int(&p, terminal_id);
        r = run(q, ST_GAP_DELETE, &p, "gap", NULL);
        if (r < 0 || n == 0)
                return r;
        memset(col, 0, sizeof(col));
        for (size_t i = 0; r == 0 && i < n; i++) {
                r = arr_num(&col[0], gaps[i].from);
                if (r == 0)
                        r = arr_num(&col[1], gaps[i].to);
                if (r == 0)
                        r = arr_num(&col[2], gaps[i].detected_ms);
                if (r == 0)
                        r = arr_num(&col[3], (int)gaps[i].state);
                if (r == 0)
                        r = arr_num(&col[4], gaps[i].attempts);
                if (r == 0)
                        r = arr_num(&col[5], gaps[i].changed_ms);
                if (r == 0)
                        r = arr_str(&col[6], gaps[i].cmd_id);
                if (r == 0)
                        r = arr_num(&col[7], gaps[i].boot);
        }
        for (size_t k = 0; r == 0 && k < BBT_ELEMENTSOF(col); k++) {
                r = arr_end(&col[k]);
                p_text(&p, col[k].s);
        }
        if (r == 0)
                r = run(q, ST_GAP_INSERT, &p, "gap", NULL);
        else
                snprintf(q->base.error, sizeof(q->base.error), "gap: out of memory");
        for (size_t k = 0; k < BBT_ELEMENTSOF(col); k++)
                free(col[k].s);
        return r;
}

static int gap_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, int64_t, const struct bbt_store_gap *) =
                (int (*)(void *, int64_t, const struct bbt_store_gap *))cb;
        struct bbt_store_gap g;

        memset(&g, 0, sizeof(g));
        g.from = col_i64(res, 0, 1);
        g.to = col_i64(res, 0, 2);
        g.detected_ms = col_i64(res, 0, 3);
        g.state = (enum bbt_gap_state)col_i64(res, 0, 4);
        g.attempts = (int)col_i64(res, 0, 5);
        g.changed_ms = col_i64(res, 0, 6);
        copy_col(res, 0, 7, g.cmd_id, sizeof(g.cmd_id));
        g.boot = col_i64(res, 0, 8);
        return fn(u, col_i64(res, 0, 0), &g);
}

static int pg_terminal_gaps_each(struct bbt_store *s, int64_t terminal_id,
                                 int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u)
{
        struct params p = { 0 };

        p_int(&p, terminal_id);
        return each(of(s), ST_TERMINAL_GAPS, &p, "gaps", gap_row, (void *)cb, u);
}

static int pg_gaps_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                        int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, 0, 0);
        p.n = 2;
        return each(of(s), ST_GAPS, &p, "gaps", gap_row, (void *)cb, u);
}

/* ---- raw, conflicts, usage ---- */

/* PAYLOAD as a NUL-terminated string for a text parameter (malloc'd). */
static char *text_of(const void *payload, size_t len)
{
        char *t = malloc(len + 1);

        if (t) {
                memcpy(t, payload, len);
                t[len] = '\0';
        }
        return t;
}

static int pg_raw_insert(struct bbt_store *s, int64_t terminal_id, int64_t seq, enum bbt_channel ch, int64_t ts,
                         int64_t recv_ms, uint32_t boot, const void *payload, size_t len, uint64_t hash,
                         uint64_t *ret_stored_hash)
{
        struct pg_store *q = of(s);
        struct params p = { 0 };
        char *text = text_of(payload, len);
        PGresult *res;
        int r;

        if (!text)
                return -ENOMEM;
        p_int(&p, terminal_id);
        p_int(&p, seq);
        p_int(&p, (int)ch);
        p_int(&p, ts);
        p_int(&p, recv_ms);
        p_int(&p, boot);
        p_text(&p, text);
        p_int(&p, (int64_t)hash);
        r = run(q, ST_RAW_INSERT, &p, "raw", &res);
        free(text);
        if (r < 0)
                return r;
        r = col_i64(res, 0, 0) > 0 ? 1 : 0;
        if (r == 0 && ret_stored_hash)
                *ret_stored_hash = (uint64_t)col_i64(res, 0, 1); /* NULL (schema 1): 0 */
        PQclear(res);
        return r;
}

static int pg_raw_payload(struct bbt_store *s, int64_t terminal_id, int64_t seq, char **ret, size_t *ret_len)
{
        struct pg_store *q = of(s);
        struct params p = { 0 };
        PGresult *res;
        int r;

        p_int(&p, terminal_id);
        p_int(&p, seq);
        r = run(q, ST_RAW_PAYLOAD, &p, "raw", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                PQclear(res);
                return -ENOENT;
        }
        *ret_len = (size_t)PQgetlength(res, 0, 0);
        *ret = text_of(PQgetvalue(res, 0, 0), *ret_len);
        PQclear(res);
        return *ret ? 0 : -ENOMEM;
}

static int pg_conflict_add(struct bbt_store *s, const struct bbt_store_conflict *c, const void *payload, size_t len)
{
        struct params p = { 0 };
        char *text = text_of(payload, len);
        int r;

        if (!text)
                return -ENOMEM;
        p_int(&p, c->terminal_id);
        p_int(&p, c->seq);
        p_int(&p, (int)c->channel);
        p_int(&p, c->ts);
        p_int(&p, c->recv_ms);
        p_int(&p, c->boot);
        p_text(&p, text);
        p_int(&p, (int64_t)c->stored_hash);
        p_int(&p, (int64_t)c->hash);
        r = run(of(s), ST_CONFLICT_INSERT, &p, "conflict", NULL);
        free(text);
        return r;
}

static int conflict_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_conflict *) = (int (*)(void *, const struct bbt_store_conflict *))cb;
        struct bbt_store_conflict c;

        memset(&c, 0, sizeof(c));
        c.terminal_id = col_i64(res, 0, 0);
        c.seq = col_i64(res, 0, 1);
        c.channel = (enum bbt_channel)col_i64(res, 0, 2);
        c.ts = col_i64(res, 0, 3);
        c.recv_ms = col_i64(res, 0, 4);
        c.boot = col_i64(res, 0, 5);
        c.stored_hash = (uint64_t)col_i64(res, 0, 6);
        c.hash = (uint64_t)col_i64(res, 0, 7);
        return fn(u, &c);
}

static int pg_conflicts_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_conflict *c), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->since_ms, scope->until_ms);
        return each(of(s), ST_CONFLICTS, &p, "conflict", conflict_row, (void *)cb, u);
}

static int pg_usage_insert(struct bbt_store *s, const struct bbt_store_usage *u)
{
        struct pg_store *q = of(s);
        struct params p = { 0 };
        int r;

        if (q->in_tx) {
                r = bbt_array_reserve((void **)&q->usages, &q->cap_usages, q->n_usages + 1, sizeof(*u));
                if (r < 0)
                        return r;
                q->usages[q->n_usages++] = *u;
                return 0;
        }

        p_int(&p, u->terminal_id);
        p_int(&p, u->seq);
        p_int(&p, u->span.start_ms);
        p_int(&p, u->span.end_ms);
        p_int(&p, (int)u->span.state);
        p_int(&p, u->span.interactive_ms);
        p_int(&p, u->audio_ms);
        p_int(&p, u->touch);
        p_int(&p, u->pen);
        p_int(&p, u->mouse);
        p_int(&p, u->key);
        return run(of(s), ST_USAGE_INSERT, &p, "usage", NULL);
}

static int usage_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_usage *) = (int (*)(void *, const struct bbt_store_usage *))cb;
        struct bbt_store_usage x;

        memset(&x, 0, sizeof(x));
        x.terminal_id = col_i64(res, 0, 0);
        x.seq = col_i64(res, 0, 1);
        x.span.start_ms = col_i64(res, 0, 2);
        x.span.end_ms = col_i64(res, 0, 3);
        x.span.state = (enum bbt_usage_state)col_i64(res, 0, 4);
        x.span.interactive_ms = col_i64(res, 0, 5);
        x.audio_ms = col_i64(res, 0, 6);
        x.touch = col_i64(res, 0, 7);
        x.pen = col_i64(res, 0, 8);
        x.mouse = col_i64(res, 0, 9);
        x.key = col_i64(res, 0, 10);
        return fn(u, &x);
}

static int pg_usage_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                         int (*cb)(void *u, const struct bbt_store_usage *usage), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->since_ms, scope->until_ms);
        return each_staged(of(s), ST_USAGES, &p, "usage", usage_row, (void *)cb, u);
}

/* ---- rollups and the day aggregates ---- */

static int pg_day_rule_get(struct bbt_store *s, struct bbt_day_rule *ret)
{
        struct pg_store *q = of(s);

        return bbt_agg_rule_cached(s, &q->has_rule, &q->rule, ret);
}

/* Runs the statements TEXT[0..N) with the rule R's three thresholds as $1..$3 where they use them. */
static int rule_commands(struct pg_store *q, const char *const *text, size_t n, const struct params *p)
{
        for (size_t i = 0; i < n; i++) {
                int k = strstr(text[i], "$1") ? 3 : 0;
                PGresult *res = PQexecParams(q->conn, text[i], k, NULL, k ? p->v : NULL, NULL, NULL, 0);
                int e = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : fail_res(q, res, "day aggregates");

                PQclear(res);
                if (e < 0)
                        return e;
        }
        return 0;
}

/* R's thresholds as $1 used_day_ms, $2 used_period_ms, $3 heartbeat_ms. */
static void rule_params(const struct bbt_day_rule *r, struct params *p)
{
        p_int(p, r->used_day_ms);
        p_int(p, r->used_period_ms);
        p_int(p, r->heartbeat_ms);
}

/* Recounts every day aggregate from the rollups under R. */
static int recount(struct pg_store *q, const struct bbt_day_rule *r)
{
        static const char *const now[] = { "DELETE FROM school_span", "DELETE FROM day_mark", MARKS_RECOUNT };
        struct params p = { 0 };
        int e;

        rule_params(r, &p);
        e = rule_commands(q, now, BBT_ELEMENTSOF(now), &p);
        return e < 0 ? e : spans_pack(q, ST_SCHOOL_DAYS_COUNT, &p);
}

static int pg_day_rule_set(struct bbt_store *s, const struct bbt_day_rule *r)
{
        struct pg_store *q = of(s);
        struct bbt_day_rule now;
        int e = pg_day_rule_get(s, &now);

        if (r->used_day_ms <= 0 || r->used_period_ms <= 0 || r->heartbeat_ms <= 0) {
                snprintf(q->base.error, sizeof(q->base.error), "day rule: every threshold must be > 0");
                return -EINVAL;
        }
        if (e < 0 && e != -ENOENT)
                return e;
        if (e == 0 && memcmp(&now, r, sizeof(now)) == 0)
                return 0;
        q->has_rule = false;
        e = staged_write(q); /* the recount starts from what is written */
        if (e == 0)
                e = pending_write(q);
        if (e == 0)
                e = bbt_agg_rule_write(s, r);
        if (e == 0)
                e = recount(q, r);
        if (e < 0)
                return e;
        q->rule = *r;
        q->has_rule = true;
        return 0;
}

static void day_from_row(const PGresult *res, int first, struct bbt_day_rollup *d)
{
        d->on_ms = col_i64(res, 0, first);
        d->active_ms = col_i64(res, 0, first + 1);
        d->interactive_ms = col_i64(res, 0, first + 2);
        d->hb_count = col_i64(res, 0, first + 3);
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                d->period_active_ms[k] = col_i64(res, 0, first + 4 + k);
        d->on_all_ms = col_i64(res, 0, first + 16);
}

/* A transaction's mark changes, merged per (terminal, span) before they are written. */
struct mark_change {
        int64_t terminal_id;
        struct bbt_agg_mark m;
};

struct marks {
        struct mark_change *v;
        size_t n, cap;
};

/* The day aggregates follow one terminal-day going from BEFORE to AFTER; its
 * mark goes into STAGE if not NULL (marks_write writes it), else to the store now. */
static int aggregates_add(struct pg_store *q, int64_t terminal_id, int32_t day, const struct bbt_day_rollup *before,
                          const struct bbt_day_rollup *after, struct marks *stage)
{
        struct bbt_day_totals change;
        struct bbt_agg_mark m;
        struct params p = { 0 };
        int32_t school = 0;
        int r, k;

        r = pg_day_rule_get(&q->base, &q->rule);
        if (r < 0)
                return r;
        k = bbt_agg_judge(&q->rule, day, before, after, &change, &m);
        if (k == 0)
                return 0;
        r = school_of(q, terminal_id, &school);
        if (r == -ENOENT)
                return 0; /* a rollup of no terminal: no school to count it under */
        if (r == 0)
                r = bbt_agg_pending_add(&q->agg, school, day, &change);
        if (r == 0 && !q->in_tx)
                r = pending_write(q);
        if (r < 0 || k == 1)
                return r;
        if (stage) {
                r = bbt_array_reserve((void **)&stage->v, &stage->cap, stage->n + 1, sizeof(*stage->v));
                if (r < 0)
                        return r;
                stage->v[stage->n++] = (struct mark_change){ .terminal_id = terminal_id, .m = m };
                return 0;
        }
        p_int(&p, terminal_id);
        p_int(&p, m.span);
        p_int(&p, m.bit);
        p_int(&p, m.powered);
        p_int(&p, m.used);
        p_int(&p, m.lo_mask);
        p_int(&p, m.hi_mask);
        p_int(&p, m.lo);
        p_int(&p, m.hi);
        return run(q, ST_DAY_MARK_SET, &p, "day aggregates", NULL);
}

static int day_stage(struct pg_store *q, int64_t terminal_id, const struct bbt_day_rollup *d);

static int pg_day_add(struct bbt_store *s, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        struct pg_store *q = of(s);
        struct bbt_day_rollup after, before;
        struct params p = { 0 };
        PGresult *res;
        int r;

        if (q->in_tx)
                return day_stage(q, terminal_id, d);
        p_int(&p, terminal_id);
        p_int(&p, d->day);
        p_int(&p, d->on_ms);
        p_int(&p, d->active_ms);
        p_int(&p, d->interactive_ms);
        p_int(&p, d->hb_count);
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                p_int(&p, d->period_active_ms[k]);
        p_int(&p, d->on_all_ms);
        p_int(&p, d->first_msg_ms);
        p_int(&p, d->last_msg_ms);
        p_int(&p, d->last_active_ms);
        r = run(q, ST_DAY_ADD, &p, "rollup", &res);
        if (r < 0)
                return r;
        memset(&after, 0, sizeof(after));
        day_from_row(res, 0, &after);
        PQclear(res);
        bbt_day_rollup_before(&after, d, &before);
        return aggregates_add(q, terminal_id, d->day, &before, &after, NULL);
}

/* ---- staged writes: a transaction's rollup changes and usage intervals ---- */

static void terms_drop(struct pg_store *q);

static void staged_drop(struct pg_store *q)
{
        if (q->n_days)
                memset(q->days, 0, q->cap_days * sizeof(*q->days));
        q->n_days = 0;
        q->n_usages = 0;
        terms_drop(q);
}

static size_t day_slot(const struct day_delta *v, size_t cap, int64_t terminal_id, int32_t day)
{
        size_t i = ((uint64_t)terminal_id * 0x9e3779b97f4a7c15u ^ (uint32_t)day * 0x85ebca6bu) & (cap - 1);

        while (v[i].used && (v[i].terminal_id != terminal_id || v[i].d.day != day))
                i = (i + 1) & (cap - 1);
        return i;
}

/* Adds D to the staged change of its terminal-day: counts summed, the
 * history merged as the statement merges it. */
static int day_stage(struct pg_store *q, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        struct day_delta *x;

        if ((q->n_days + 1) * 2 > q->cap_days) {
                size_t cap = q->cap_days ? q->cap_days * 2 : 1024;
                struct day_delta *v = calloc(cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < q->cap_days; i++)
                        if (q->days[i].used)
                                v[day_slot(v, cap, q->days[i].terminal_id, q->days[i].d.day)] = q->days[i];
                free(q->days);
                q->days = v;
                q->cap_days = cap;
        }
        x = &q->days[day_slot(q->days, q->cap_days, terminal_id, d->day)];
        if (!x->used) {
                *x = (struct day_delta){ .used = true, .terminal_id = terminal_id, .d = *d };
                q->n_days++;
                return 0;
        }
        x->d.on_ms += d->on_ms;
        x->d.active_ms += d->active_ms;
        x->d.interactive_ms += d->interactive_ms;
        x->d.hb_count += d->hb_count;
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                x->d.period_active_ms[k] += d->period_active_ms[k];
        x->d.on_all_ms += d->on_all_ms;
        if (x->d.first_msg_ms == 0 || (d->first_msg_ms > 0 && d->first_msg_ms < x->d.first_msg_ms))
                x->d.first_msg_ms = d->first_msg_ms;
        if (d->last_msg_ms > x->d.last_msg_ms)
                x->d.last_msg_ms = d->last_msg_ms;
        if (d->last_active_ms > x->d.last_active_ms)
                x->d.last_active_ms = d->last_active_ms;
        return 0;
}

/* Frees the array literals of COLS (N of them). */
static int mark_cmp(const void *a, const void *b)
{
        const struct mark_change *x = a, *y = b;

        if (x->terminal_id != y->terminal_id)
                return x->terminal_id < y->terminal_id ? -1 : 1;
        return x->m.span < y->m.span ? -1 : x->m.span > y->m.span;
}

/* Writes the mark changes of STAGE: merged per (terminal, span), a later
 * change's bits over an earlier's, then two statements over arrays. */
static int marks_write(struct pg_store *q, struct marks *stage)
{
        struct arr col[9];
        struct params p = { 0 };
        size_t n = 0;
        int r = 0;

        if (!stage->n)
                return 0;
        qsort(stage->v, stage->n, sizeof(*stage->v), mark_cmp); /* stable enough: one change a terminal-day */
        for (size_t i = 0; i < stage->n; i++) {
                struct mark_change *o = &stage->v[n], *x = &stage->v[i];

                if (i > 0 && o->terminal_id == x->terminal_id && o->m.span == x->m.span) {
                        o->m.powered = (o->m.powered & ~x->m.bit) | x->m.powered;
                        o->m.used = (o->m.used & ~x->m.bit) | x->m.used;
                        o->m.lo = (o->m.lo & ~x->m.lo_mask) | x->m.lo;
                        o->m.hi = (o->m.hi & ~x->m.hi_mask) | x->m.hi;
                        o->m.bit |= x->m.bit;
                        o->m.lo_mask |= x->m.lo_mask;
                        o->m.hi_mask |= x->m.hi_mask;
                } else {
                        stage->v[i > 0 ? ++n : n] = *x;
                }
        }
        n++;
        memset(col, 0, sizeof(col));
        for (size_t i = 0; r == 0 && i < n; i++) {
                const struct mark_change *x = &stage->v[i];
                const int64_t v[9] = { x->terminal_id, x->m.span, x->m.bit, x->m.powered, x->m.used,
                                       x->m.lo_mask, x->m.hi_mask, x->m.lo, x->m.hi };

                for (size_t k = 0; r == 0 && k < BBT_ELEMENTSOF(col); k++)
                        r = arr_num(&col[k], v[k]);
        }
        if (r == 0)
                r = arrs_params(col, BBT_ELEMENTSOF(col), &p);
        if (r == 0)
                r = run(q, ST_DAY_MARKS_LOCK, &p, "day aggregates", NULL);
        else
                snprintf(q->base.error, sizeof(q->base.error), "day aggregates: out of memory");
        if (r == 0)
                r = run(q, ST_DAY_MARKS_MERGE, &p, "day aggregates", NULL);
        arrs_free(col, BBT_ELEMENTSOF(col));
        return r;
}

/* Writes the staged rollup changes (one statement) and follows each row
 * into the day aggregates: its change is the staged sum, telescoped; the
 * marks it changes are written together at the end. */
static int days_write(struct pg_store *q)
{
        struct arr col[22];
        struct marks marks = { 0 };
        PGresult *res = NULL;
        int r = 0, rows;

        if (!q->n_days)
                return 0;
        memset(col, 0, sizeof(col));
        for (size_t i = 0; r == 0 && i < q->cap_days; i++) {
                const struct day_delta *x = &q->days[i];
                int64_t v[22];
                size_t k = 0;

                if (!x->used)
                        continue;
                v[k++] = x->terminal_id;
                v[k++] = x->d.day;
                v[k++] = x->d.on_ms;
                v[k++] = x->d.active_ms;
                v[k++] = x->d.interactive_ms;
                v[k++] = x->d.hb_count;
                for (int j = 0; j < BBT_PERIODS_MAX; j++)
                        v[k++] = x->d.period_active_ms[j];
                v[k++] = x->d.on_all_ms;
                v[k++] = x->d.first_msg_ms;
                v[k++] = x->d.last_msg_ms;
                v[k++] = x->d.last_active_ms;
                for (k = 0; r == 0 && k < BBT_ELEMENTSOF(col); k++)
                        r = arr_num(&col[k], v[k]);
        }
        r = arrs_run(q, ST_DAYS_ADD, col, BBT_ELEMENTSOF(col), r, "rollup", &res);
        if (r < 0)
                return r;
        rows = PQntuples(res);
        for (int i = 0; r == 0 && i < rows; i++) {
                int64_t terminal_id = col_i64(res, i, 0);
                int32_t day = (int32_t)col_i64(res, i, 1);
                const struct day_delta *x = &q->days[day_slot(q->days, q->cap_days, terminal_id, day)];
                struct bbt_day_rollup after, before;

                memset(&after, 0, sizeof(after));
                after.on_ms = col_i64(res, i, 2);
                after.active_ms = col_i64(res, i, 3);
                after.interactive_ms = col_i64(res, i, 4);
                after.hb_count = col_i64(res, i, 5);
                for (int k = 0; k < BBT_PERIODS_MAX; k++)
                        after.period_active_ms[k] = col_i64(res, i, 6 + k);
                after.on_all_ms = col_i64(res, i, 18);
                if (!x->used)
                        continue; /* not ours: cannot be */
                bbt_day_rollup_before(&after, &x->d, &before);
                r = aggregates_add(q, terminal_id, day, &before, &after, &marks);
        }
        PQclear(res);
        if (r == 0)
                r = marks_write(q, &marks);
        free(marks.v);
        if (r == 0) {
                memset(q->days, 0, q->cap_days * sizeof(*q->days));
                q->n_days = 0;
        }
        return r;
}

static int usages_write(struct pg_store *q)
{
        struct arr col[11];
        int r = 0;

        if (!q->n_usages)
                return 0;
        memset(col, 0, sizeof(col));
        for (size_t i = 0; r == 0 && i < q->n_usages; i++) {
                const struct bbt_store_usage *u = &q->usages[i];
                const int64_t v[11] = { u->terminal_id, u->seq, u->span.start_ms, u->span.end_ms, (int)u->span.state,
                                        u->span.interactive_ms, u->audio_ms, u->touch, u->pen, u->mouse, u->key };

                for (size_t k = 0; r == 0 && k < BBT_ELEMENTSOF(col); k++)
                        r = arr_num(&col[k], v[k]);
        }
        r = arrs_run(q, ST_USAGES_ADD, col, BBT_ELEMENTSOF(col), r, "usage", NULL);
        if (r == 0)
                q->n_usages = 0;
        return r;
}

static size_t term_slot(const struct pg_store *q, int64_t id)
{
        size_t i = ((uint64_t)id * 0x9e3779b97f4a7c15u >> 17) & (q->cap_term_slots - 1);

        while (q->term_slots[i] && q->terms[q->term_slots[i] - 1].id != id)
                i = (i + 1) & (q->cap_term_slots - 1);
        return i;
}

/* Stages T's row: a later update of the same terminal replaces it. */
static int term_stage(struct pg_store *q, const struct bbt_store_terminal *t)
{
        size_t i;
        int r;

        if ((q->n_terms + 1) * 2 > q->cap_term_slots) {
                size_t cap = q->cap_term_slots ? q->cap_term_slots * 2 : 1024;
                uint32_t *v = calloc(cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                free(q->term_slots);
                q->term_slots = v;
                q->cap_term_slots = cap;
                for (size_t k = 0; k < q->n_terms; k++)
                        q->term_slots[term_slot(q, q->terms[k].id)] = (uint32_t)k + 1;
        }
        i = term_slot(q, t->id);
        if (q->term_slots[i]) {
                q->terms[q->term_slots[i] - 1] = *t;
                return 0;
        }
        r = bbt_array_reserve((void **)&q->terms, &q->cap_terms, q->n_terms + 1, sizeof(*t));
        if (r < 0)
                return r;
        q->terms[q->n_terms] = *t;
        q->term_slots[i] = (uint32_t)++q->n_terms;
        return 0;
}

static void terms_drop(struct pg_store *q)
{
        if (q->n_terms)
                memset(q->term_slots, 0, q->cap_term_slots * sizeof(*q->term_slots));
        q->n_terms = 0;
}

static int terms_write(struct pg_store *q)
{
        struct arr col[28];
        int r = 0;

        if (!q->n_terms)
                return 0;
        memset(col, 0, sizeof(col));
        for (size_t i = 0; r == 0 && i < q->n_terms; i++) {
                const struct bbt_store_terminal *t = &q->terms[i];
                const int64_t n1[16] = { t->first_seq, t->high_seq, t->received, t->duplicates, t->lost,
                                         t->first_seen_ms, t->last_seen_ms, t->last_active_ms, t->online, t->boot,
                                         t->online_since_ms, t->offline_since_ms, (int)t->offline_reason,
                                         t->skew_known, t->skew_ms, t->spool_dropped };
                const char *s2[5] = { t->version, t->hostname, t->os, t->machine_id, t->last_hb };
                const int64_t n3[3] = { t->inventory_seq, t->skipped, t->conflicts };
                size_t k = 0;

                r = arr_num(&col[k++], t->id);
                if (r == 0)
                        r = arr_str(&col[k++], t->county);
                if (r == 0)
                        r = arr_str(&col[k++], t->school);
                if (r == 0)
                        r = arr_str(&col[k++], t->terminal);
                for (size_t j = 0; r == 0 && j < 16; j++)
                        r = arr_num(&col[k++], n1[j]);
                for (size_t j = 0; r == 0 && j < 5; j++)
                        r = arr_str(&col[k++], s2[j]);
                for (size_t j = 0; r == 0 && j < 3; j++)
                        r = arr_num(&col[k++], n3[j]);
        }
        r = arrs_run(q, ST_TERMINALS_UPDATE, col, BBT_ELEMENTSOF(col), r, "terminal", NULL);
        if (r == 0)
                terms_drop(q);
        return r;
}

/* Writes what is staged: before commit, and before a read of those tables
 * (a transaction reads its own writes). */
static int staged_write(struct pg_store *q)
{
        int r = days_write(q);

        if (r == 0)
                r = usages_write(q);
        return r < 0 ? r : terms_write(q);
}

static int pg_days_clear(struct bbt_store *s)
{
        struct pg_store *q = of(s);
        int r = staged_write(q); /* what was added before is cleared too */

        /* Other aggregators of a share group add to the rollups meanwhile:
         * they wait until the rebuild commits, then add what it did not see. */
        if (r == 0 && q->in_tx)
                r = command(q, "LOCK TABLE day_rollup, school_span, day_mark IN EXCLUSIVE MODE", "rollup");
        if (r == 0)
                r = run(q, ST_DAYS_CLEAR, NULL, "rollup", NULL);

        bbt_agg_pending_drop(&q->agg);
        if (r == 0)
                r = command(q, "DELETE FROM school_span", "day aggregates");
        if (r == 0)
                r = command(q, "DELETE FROM day_mark", "day aggregates");
        return r;
}

static int day_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, int64_t, const struct bbt_day_rollup *) =
                (int (*)(void *, int64_t, const struct bbt_day_rollup *))cb;
        struct bbt_day_rollup d;

        memset(&d, 0, sizeof(d));
        d.day = (int32_t)col_i64(res, 0, 1);
        day_from_row(res, 2, &d);
        d.first_msg_ms = col_i64(res, 0, 19);
        d.last_msg_ms = col_i64(res, 0, 20);
        d.last_active_ms = col_i64(res, 0, 21);
        return fn(u, col_i64(res, 0, 0), &d);
}

static int pg_days_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                        int (*cb)(void *u, int64_t terminal_id, const struct bbt_day_rollup *d), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->from_day, scope->to_day);
        return each_staged(of(s), ST_DAYS, &p, "rollup", day_row, (void *)cb, u);
}

/* A school_span row (county, school, span, present, days) decoded into *RET. */
static int span_of_row(struct pg_store *q, const PGresult *res, char *county, char *school, int64_t *span,
                       struct bbt_agg_span *ret)
{
        copy_col(res, 0, 0, county, 7);
        copy_col(res, 0, 1, school, BBT_ID_MAX + 1);
        *span = col_i64(res, 0, 2);
        if (bbt_agg_span_decode((uint32_t)col_i64(res, 0, 3), (const uint8_t *)PQgetvalue(res, 0, 4),
                                (size_t)PQgetlength(res, 0, 4), ret) < 0) {
                snprintf(q->base.error, sizeof(q->base.error), "day aggregates: school %s/%s, days from %lld: bad row",
                         county, school, (long long)*span * BBT_STORE_MARK_DAYS);
                return -EIO;
        }
        return 0;
}

struct spans_read {
        struct pg_store *q;
        const struct bbt_store_scope *scope;
        void *cb, *u;
        struct bbt_store_school_span *d;
        struct bbt_agg_span_rows rows;
};

static int school_span_row(const PGresult *res, void *cb, void *u)
{
        struct spans_read *x = u;
        int (*fn)(void *, const struct bbt_store_school_span *) =
                (int (*)(void *, const struct bbt_store_school_span *))x->cb;
        struct bbt_agg_span sd;
        int64_t span;
        int r = span_of_row(x->q, res, x->d->county, x->d->school, &span, &sd);

        (void)cb;
        if (r < 0)
                return r;
        x->d->first_day = (int32_t)(span * BBT_STORE_MARK_DAYS);
        x->d->present = sd.present & bbt_agg_span_days_in(x->d->first_day, x->scope->from_day, x->scope->to_day);
        memcpy(x->d->t, sd.t, sizeof(x->d->t));
        return x->d->present ? fn(x->u, x->d) : 0;
}

static int school_day_row(const PGresult *res, void *cb, void *u)
{
        struct spans_read *x = u;
        int (*fn)(void *, const struct bbt_store_school_day *) = (int (*)(void *, const struct bbt_store_school_day *))x->cb;
        struct bbt_agg_span_row *row;
        int64_t span = col_i64(res, 0, 2);
        int r = bbt_agg_span_rows_next(&x->rows, span, x->scope, fn, x->u, &row);

        (void)cb;
        return r != 0 ? r : span_of_row(x->q, res, row->county, row->school, &span, &row->sd);
}

/* Reads the spans of SCOPE through ROW_CB, what the transaction wrote first. */
static int spans_each(struct spans_read *x, int (*row_cb)(const PGresult *res, void *cb, void *u))
{
        struct params p = { 0 };
        int r = staged_write(x->q); /* a transaction reads its own writes */

        if (r == 0)
                r = pending_write(x->q);
        if (r < 0 || x->scope->from_day > x->scope->to_day)
                return r;
        p_scope(&p, x->scope, bbt_agg_span_of(x->scope->from_day), bbt_agg_span_of(x->scope->to_day));
        return each(x->q, ST_SCHOOL_DAYS, &p, "day aggregates", row_cb, NULL, x);
}

/* A school's 32 days as they are kept: a row of school_span each, with only
 * the days of the scope present. */
static int pg_school_spans_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_school_span *d), void *u)
{
        struct spans_read x = { .q = of(s), .scope = scope, .cb = (void *)cb, .u = u };
        int r;

        x.d = malloc(sizeof(*x.d));
        if (!x.d)
                return -ENOMEM;
        r = spans_each(&x, school_span_row);
        free(x.d);
        return r;
}

/* The same a day at a time: by day, then county and school. */
static int pg_school_days_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                               int (*cb)(void *u, const struct bbt_store_school_day *d), void *u)
{
        struct spans_read x = { .q = of(s), .scope = scope, .cb = (void *)cb, .u = u };
        int r = spans_each(&x, school_day_row);

        if (r == 0 && x.rows.n)
                r = bbt_agg_span_rows_give(&x.rows, scope, cb, u);
        free(x.rows.row);
        return r;
}

static int day_marks_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_day_marks *) =
                (int (*)(void *, const struct bbt_store_day_marks *))cb;
        struct bbt_store_day_marks m = {
                .terminal_id = col_i64(res, 0, 0),
                .first_day = (int32_t)(col_i64(res, 0, 1) * BBT_STORE_MARK_DAYS),
                .powered = (uint32_t)col_i64(res, 0, 2),
                .used = (uint32_t)col_i64(res, 0, 3),
                .lessons = { (uint64_t)col_i64(res, 0, 4), (uint64_t)col_i64(res, 0, 5) },
        };

        return fn(u, &m);
}

static int pg_day_marks_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_day_marks *m), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->from_day, scope->to_day);
        return each_staged(of(s), ST_DAY_MARKS, &p, "day aggregates", day_marks_row, (void *)cb, u);
}

static int seen_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_seen *) = (int (*)(void *, const struct bbt_store_seen *))cb;
        struct bbt_store_seen seen = {
                .terminal_id = col_i64(res, 0, 0),
                .last_msg_ms = col_i64(res, 0, 1),
                .last_active_ms = col_i64(res, 0, 2),
        };

        return fn(u, &seen);
}

static int pg_seen_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                        int (*cb)(void *u, const struct bbt_store_seen *seen), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->from_day, scope->to_day);
        return each_staged(of(s), ST_SEEN, &p, "history", seen_row, (void *)cb, u);
}

static int seen_day_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_seen_day *) = (int (*)(void *, const struct bbt_store_seen_day *))cb;
        struct bbt_store_seen_day seen = {
                .terminal_id = col_i64(res, 0, 0),
                .day = (int32_t)col_i64(res, 0, 1),
        };

        return fn(u, &seen);
}

static int pg_seen_days_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_seen_day *seen), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->from_day, scope->to_day);
        return each_staged(of(s), ST_SEEN_DAYS, &p, "history", seen_day_row, (void *)cb, u);
}

static int terminal_brief_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_terminal_brief *) =
                (int (*)(void *, const struct bbt_store_terminal_brief *))cb;
        struct bbt_store_terminal_brief t;

        memset(&t, 0, sizeof(t));
        t.id = col_i64(res, 0, 0);
        copy_col(res, 0, 1, t.county, sizeof(t.county));
        copy_col(res, 0, 2, t.school, sizeof(t.school));
        copy_col(res, 0, 3, t.terminal, sizeof(t.terminal));
        t.first_seq = col_i64(res, 0, 4);
        t.high_seq = col_i64(res, 0, 5);
        t.received = col_i64(res, 0, 6);
        t.duplicates = col_i64(res, 0, 7);
        t.lost = col_i64(res, 0, 8);
        t.skipped = col_i64(res, 0, 9);
        t.conflicts = col_i64(res, 0, 10);
        t.spool_dropped = col_i64(res, 0, 11);
        t.first_seen_ms = col_i64(res, 0, 12);
        t.online = col_i64(res, 0, 13) != 0;
        copy_col(res, 0, 14, t.version, sizeof(t.version));
        return fn(u, &t);
}

static int pg_terminals_brief_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                                   int (*cb)(void *u, const struct bbt_store_terminal_brief *t), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, 0, 0);
        p.n = 2;
        return each_staged(of(s), ST_TERMINALS_BRIEF, &p, "terminals", terminal_brief_row, (void *)cb, u);
}

static int pg_days_history_rebuild(struct bbt_store *s, int offset_min)
{
        struct params p = { 0 };
        int r = staged_write(of(s));

        if (r < 0)
                return r;
        p_int(&p, (int64_t)offset_min * 60000);
        return run(of(s), ST_DAYS_HISTORY_REBUILD, &p, "history", NULL);
}

/* ---- losses, faults ---- */

static int pg_loss_add(struct bbt_store *s, const struct bbt_store_loss *l)
{
        struct params p = { 0 };

        p_int(&p, l->terminal_id);
        p_int(&p, l->from);
        p_int(&p, l->to);
        p_int(&p, l->recorded_ms);
        p_text(&p, l->reason);
        p_int(&p, (int)l->kind);
        return run(of(s), ST_LOSS_INSERT, &p, "loss", NULL);
}

static int loss_first(struct pg_store *q, int64_t terminal_id, int64_t from, int64_t to, struct bbt_store_loss *ret,
                      int64_t *ret_id)
{
        struct params p = { 0 };
        PGresult *res;
        int r;

        p_int(&p, terminal_id);
        p_int(&p, from);
        p_int(&p, to);
        r = run(q, ST_LOSS_FIND, &p, "loss", &res);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                PQclear(res);
                return 0;
        }
        memset(ret, 0, sizeof(*ret));
        ret->terminal_id = terminal_id;
        *ret_id = col_i64(res, 0, 0);
        ret->from = col_i64(res, 0, 1);
        ret->to = col_i64(res, 0, 2);
        ret->recorded_ms = col_i64(res, 0, 3);
        copy_col(res, 0, 4, ret->reason, sizeof(ret->reason));
        ret->kind = (enum bbt_loss_kind)col_i64(res, 0, 5);
        PQclear(res);
        return 1;
}

static int pg_loss_find(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to, struct bbt_store_loss *ret)
{
        int64_t id;

        return loss_first(of(s), terminal_id, from, to, ret, &id);
}

static int pg_loss_remove(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to)
{
        struct pg_store *q = of(s);
        struct bbt_store_loss l;
        int64_t id;
        int r;

        while ((r = loss_first(q, terminal_id, from, to, &l, &id)) == 1) {
                struct params p = { 0 };

                p_int(&p, id);
                r = run(q, ST_LOSS_DELETE, &p, "loss", NULL);
                if (r == 0)
                        r = bbt_agg_loss_remnants(s, &l, from, to);
                if (r < 0)
                        return r;
        }
        return r;
}

static int loss_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_loss *) = (int (*)(void *, const struct bbt_store_loss *))cb;
        struct bbt_store_loss l;

        memset(&l, 0, sizeof(l));
        l.terminal_id = col_i64(res, 0, 0);
        l.from = col_i64(res, 0, 1);
        l.to = col_i64(res, 0, 2);
        l.recorded_ms = col_i64(res, 0, 3);
        copy_col(res, 0, 4, l.reason, sizeof(l.reason));
        l.kind = (enum bbt_loss_kind)col_i64(res, 0, 5);
        return fn(u, &l);
}

static int pg_losses_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_loss *l), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->since_ms, scope->until_ms);
        return each(of(s), ST_LOSSES, &p, "loss", loss_row, (void *)cb, u);
}

static int pg_fault_raise(struct bbt_store *s, const struct bbt_store_fault *f)
{
        struct params p = { 0 };

        p_int(&p, f->terminal_id);
        p_text(&p, f->code);
        p_text(&p, f->source);
        p_int(&p, (int)f->severity);
        p_text(&p, f->detail);
        p_int(&p, f->raised_ms);
        return run(of(s), ST_FAULT_RAISE, &p, "fault", NULL);
}

static int pg_fault_clear(struct bbt_store *s, int64_t terminal_id, const char *code, const char *source,
                          int64_t cleared_ms)
{
        struct params p = { 0 };

        p_int(&p, terminal_id);
        p_text(&p, code);
        p_text(&p, source);
        p_int(&p, cleared_ms > 0 ? cleared_ms : 1); /* 0 means open: a clear at the epoch still closes it */
        return run(of(s), ST_FAULT_CLEAR, &p, "fault", NULL);
}

static int fault_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_fault *) = (int (*)(void *, const struct bbt_store_fault *))cb;
        struct bbt_store_fault f;

        memset(&f, 0, sizeof(f));
        f.terminal_id = col_i64(res, 0, 0);
        copy_col(res, 0, 1, f.code, sizeof(f.code));
        copy_col(res, 0, 2, f.source, sizeof(f.source));
        f.severity = (enum bbt_severity)col_i64(res, 0, 3);
        copy_col(res, 0, 4, f.detail, sizeof(f.detail));
        f.raised_ms = col_i64(res, 0, 5);
        f.cleared_ms = col_i64(res, 0, 6);
        return fn(u, &f);
}

static int pg_faults_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_fault *f), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->since_ms, scope->until_ms);
        return each(of(s), ST_FAULTS, &p, "fault", fault_row, (void *)cb, u);
}

/* ---- inventory, peripherals, counters, prune ---- */

static int pg_inventory_replace(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_device *devs,
                                size_t n)
{
        struct pg_store *q = of(s);
        struct params p = { 0 };
        int r;

        p_int(&p, terminal_id);
        r = run(q, ST_INV_DELETE, &p, "inventory", NULL);
        for (size_t i = 0; r == 0 && i < n; i++) {
                p.n = 1;
                p_int(&p, (int64_t)i);
                p_int(&p, (int)devs[i].kind);
                p_text(&p, devs[i].subsystem);
                p_text(&p, devs[i].bus);
                p_text(&p, devs[i].vendor_id);
                p_text(&p, devs[i].model_id);
                p_text(&p, devs[i].vendor);
                p_text(&p, devs[i].model);
                p_text(&p, devs[i].serial);
                p_text(&p, devs[i].syspath);
                r = run(q, ST_INV_INSERT, &p, "inventory", NULL);
        }
        return r;
}

static int device_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_device *) = (int (*)(void *, const struct bbt_store_device *))cb;
        struct bbt_store_device d;

        memset(&d, 0, sizeof(d));
        d.terminal_id = col_i64(res, 0, 0);
        d.kind = (enum bbt_periph_kind)col_i64(res, 0, 1);
        copy_col(res, 0, 2, d.subsystem, sizeof(d.subsystem));
        copy_col(res, 0, 3, d.bus, sizeof(d.bus));
        copy_col(res, 0, 4, d.vendor_id, sizeof(d.vendor_id));
        copy_col(res, 0, 5, d.model_id, sizeof(d.model_id));
        copy_col(res, 0, 6, d.vendor, sizeof(d.vendor));
        copy_col(res, 0, 7, d.model, sizeof(d.model));
        copy_col(res, 0, 8, d.serial, sizeof(d.serial));
        copy_col(res, 0, 9, d.syspath, sizeof(d.syspath));
        return fn(u, &d);
}

static int pg_inventory_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_device *d), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, 0, 0);
        p.n = 2;
        return each(of(s), ST_INVENTORY, &p, "inventory", device_row, (void *)cb, u);
}

static int pg_event_add(struct bbt_store *s, const struct bbt_store_event *e)
{
        struct params p = { 0 };

        p_int(&p, e->terminal_id);
        p_int(&p, e->seq);
        p_int(&p, e->ts);
        p_text(&p, e->code);
        p_int(&p, (int)e->severity);
        p_text(&p, e->detail);
        return run(of(s), ST_EVENT_INSERT, &p, "event", NULL);
}

static int event_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_event *) = (int (*)(void *, const struct bbt_store_event *))cb;
        struct bbt_store_event e;

        memset(&e, 0, sizeof(e));
        e.terminal_id = col_i64(res, 0, 0);
        e.seq = col_i64(res, 0, 1);
        e.ts = col_i64(res, 0, 2);
        copy_col(res, 0, 3, e.code, sizeof(e.code));
        e.severity = (enum bbt_severity)col_i64(res, 0, 4);
        copy_col(res, 0, 5, e.detail, sizeof(e.detail));
        return fn(u, &e);
}

static int pg_events_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_event *e), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->since_ms, scope->until_ms);
        return each(of(s), ST_EVENTS, &p, "event", event_row, (void *)cb, u);
}

static int pg_net_set(struct bbt_store *s, const struct bbt_store_net *n)
{
        struct params p = { 0 };

        p_int(&p, n->terminal_id);
        p_int(&p, n->seq);
        p_text(&p, n->ifname);
        p_text(&p, n->mac);
        p_text(&p, n->ipv4);
        p_int(&p, n->prefix);
        return run(of(s), ST_NET_SET, &p, "net", NULL);
}

static int net_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_net *) = (int (*)(void *, const struct bbt_store_net *))cb;
        struct bbt_store_net n;

        memset(&n, 0, sizeof(n));
        n.terminal_id = col_i64(res, 0, 0);
        n.seq = col_i64(res, 0, 1);
        copy_col(res, 0, 2, n.ifname, sizeof(n.ifname));
        copy_col(res, 0, 3, n.mac, sizeof(n.mac));
        copy_col(res, 0, 4, n.ipv4, sizeof(n.ipv4));
        n.prefix = (int)col_i64(res, 0, 5);
        return fn(u, &n);
}

static int pg_nets_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                        int (*cb)(void *u, const struct bbt_store_net *n), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, 0, 0);
        return each(of(s), ST_NETS, &p, "net", net_row, (void *)cb, u);
}

static int pg_audit_put(struct bbt_store *s, const struct bbt_store_audit *a)
{
        struct params p = { 0 };

        p_text(&p, a->cmd_id);
        p_text(&p, a->operator_name);
        p_int(&p, a->sent_ms);
        p_int(&p, a->done_ms);
        p_text(&p, a->county);
        p_text(&p, a->school);
        p_text(&p, a->terminal);
        p_text(&p, a->via);
        p_text(&p, a->op);
        p_text(&p, a->args);
        p_text(&p, a->result);
        p_text(&p, a->detail);
        return run(of(s), ST_AUDIT_PUT, &p, "audit", NULL);
}

static int audit_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_audit *) = (int (*)(void *, const struct bbt_store_audit *))cb;
        struct bbt_store_audit a;

        memset(&a, 0, sizeof(a));
        copy_col(res, 0, 0, a.cmd_id, sizeof(a.cmd_id));
        copy_col(res, 0, 1, a.operator_name, sizeof(a.operator_name));
        a.sent_ms = col_i64(res, 0, 2);
        a.done_ms = col_i64(res, 0, 3);
        copy_col(res, 0, 4, a.county, sizeof(a.county));
        copy_col(res, 0, 5, a.school, sizeof(a.school));
        copy_col(res, 0, 6, a.terminal, sizeof(a.terminal));
        copy_col(res, 0, 7, a.via, sizeof(a.via));
        copy_col(res, 0, 8, a.op, sizeof(a.op));
        copy_col(res, 0, 9, a.args, sizeof(a.args));
        copy_col(res, 0, 10, a.result, sizeof(a.result));
        copy_col(res, 0, 11, a.detail, sizeof(a.detail));
        return fn(u, &a);
}

static int pg_audits_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_audit *a), void *u)
{
        struct params p = { 0 };

        p_scope(&p, scope, scope->since_ms, scope->until_ms);
        return each(of(s), ST_AUDITS, &p, "audit", audit_row, (void *)cb, u);
}

static int pg_periph_add(struct bbt_store *s, int64_t seq, int64_t ts, enum bbt_periph_action action,
                         const struct bbt_store_device *d)
{
        struct params p = { 0 };

        p_int(&p, d->terminal_id);
        p_int(&p, seq);
        p_int(&p, ts);
        p_int(&p, (int)action);
        p_int(&p, (int)d->kind);
        p_text(&p, d->subsystem);
        p_text(&p, d->vendor);
        p_text(&p, d->model);
        p_text(&p, d->serial);
        p_text(&p, d->syspath);
        return run(of(s), ST_PERIPH_INSERT, &p, "periph", NULL);
}

static int pg_counter_add(struct bbt_store *s, const char *name, int64_t delta)
{
        struct params p = { 0 };

        p_text(&p, name);
        p_int(&p, delta);
        return run(of(s), ST_COUNTER_ADD, &p, "counter", NULL);
}

static int counter_row(const PGresult *res, void *cb, void *u)
{
        int (*fn)(void *, const char *, int64_t) = (int (*)(void *, const char *, int64_t))cb;

        return fn(u, PQgetvalue(res, 0, 0), col_i64(res, 0, 1));
}

static int pg_counters_each(struct bbt_store *s, int (*cb)(void *u, const char *name, int64_t value), void *u)
{
        struct params p = { 0 };

        return each(of(s), ST_COUNTERS, &p, "counter", counter_row, (void *)cb, u);
}

static int pg_prune(struct bbt_store *s, int64_t raw_before_ms, int64_t usage_before_ms)
{
        struct pg_store *q = of(s);
        struct params p = { 0 };
        int r = staged_write(q);

        if (r == 0 && raw_before_ms > 0) {
                p_int(&p, raw_before_ms);
                r = run(q, ST_PRUNE_RAW, &p, "prune", NULL);
        }
        if (r == 0 && usage_before_ms > 0) {
                p.n = 0;
                p_int(&p, usage_before_ms);
                r = run(q, ST_PRUNE_USAGE, &p, "prune", NULL);
        }
        return r;
}

static void pg_close(struct bbt_store *s)
{
        struct pg_store *q = of(s);

        if (q->in_tx)
                pg_rollback(s);
        PQfinish(q->conn);
        bbt_agg_free(&q->agg);
        free(q->days);
        free(q->usages);
        free(q->terms);
        free(q->term_slots);
        free(q);
}

static const struct bbt_store_ops pg_ops = {
        .name = "postgresql",
        .close = pg_close,
        .begin = pg_begin,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .meta_get = pg_meta_get,
        .meta_set = pg_meta_set,
        .data_version = pg_data_version,
        .terminal_insert = pg_terminal_insert,
        .terminal_update = pg_terminal_update,
        .terminals_each = pg_terminals_each,
        .terminal_lock = pg_terminal_lock,
        .terminal_gaps_each = pg_terminal_gaps_each,
        .gaps_replace = pg_gaps_replace,
        .gaps_each = pg_gaps_each,
        .raw_insert = pg_raw_insert,
        .raw_payload = pg_raw_payload,
        .conflict_add = pg_conflict_add,
        .conflicts_each = pg_conflicts_each,
        .usage_insert = pg_usage_insert,
        .usage_each = pg_usage_each,
        .day_add = pg_day_add,
        .days_clear = pg_days_clear,
        .days_each = pg_days_each,
        .day_rule_get = pg_day_rule_get,
        .day_rule_set = pg_day_rule_set,
        .school_days_each = pg_school_days_each,
        .school_spans_each = pg_school_spans_each,
        .day_marks_each = pg_day_marks_each,
        .seen_each = pg_seen_each,
        .seen_days_each = pg_seen_days_each,
        .terminals_brief_each = pg_terminals_brief_each,
        .days_history_rebuild = pg_days_history_rebuild,
        .loss_add = pg_loss_add,
        .losses_each = pg_losses_each,
        .loss_find = pg_loss_find,
        .loss_remove = pg_loss_remove,
        .fault_raise = pg_fault_raise,
        .fault_clear = pg_fault_clear,
        .faults_each = pg_faults_each,
        .inventory_replace = pg_inventory_replace,
        .inventory_each = pg_inventory_each,
        .periph_add = pg_periph_add,
        .event_add = pg_event_add,
        .events_each = pg_events_each,
        .net_set = pg_net_set,
        .nets_each = pg_nets_each,
        .audit_put = pg_audit_put,
        .audits_each = pg_audits_each,
        .counter_add = pg_counter_add,
        .counters_each = pg_counters_each,
        .prune = pg_prune,
};

/* ---- opening, migrations ---- */

/* The store's schema version: 0 if it has no bbt_schema table (and no
 * tables at all), -EPROTO if it is some other database. */
static int schema_version(struct pg_store *q, const char *where, char *err, size_t err_size)
{
        PGresult *res = PQexec(q->conn, "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()),"
                                        " to_regclass('bbt_schema') IS NOT NULL");
        int64_t tables;
        bool has;
        int v;

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                int r = fail_res(q, res, "schema");

                snprintf(err, err_size, "%s: %s", where, q->base.error);
                PQclear(res);
                return r;
        }
        tables = col_i64(res, 0, 0);
        has = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        PQclear(res);
        if (!has) {
                if (tables > 0) {
                        snprintf(err, err_size, "%s: a PostgreSQL database that is not a bbt store", where);
                        return -EPROTO;
                }
                return 0;
        }
        res = PQexec(q->conn, "SELECT application, version FROM bbt_schema");
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
            strcmp(PQgetvalue(res, 0, 0), APPLICATION) != 0) {
                snprintf(err, err_size, "%s: a PostgreSQL database that is not a bbt store", where);
                PQclear(res);
                return -EPROTO;
        }
        v = (int)col_i64(res, 0, 1);
        PQclear(res);
        return v;
}

/* Brings the schema up to date, each migration in its own transaction, under
 * an advisory lock: two aggregators starting at once migrate once. */
static int migrate(struct pg_store *q, const char *where, char *err, size_t err_size)
{
        static const struct bbt_day_rule rule = BBT_DAY_RULE_DEFAULT;
        int version, r;

        for (;;) {
                char set[128];

                r = command(q, "BEGIN", "migrate");
                if (r == 0)
                        r = command(q, "SELECT pg_advisory_xact_lock(1650619441)", "migrate");
                if (r < 0) {
                        snprintf(err, err_size, "%s: %s", where, q->base.error);
                        command(q, "ROLLBACK", "migrate");
                        return r;
                }
                version = schema_version(q, where, err, err_size);
                if (version == BBT_STORE_SCHEMA_VERSION) {
                        r = command(q, READ_INDEXES, "migrate");
                        if (r == 0)
                                r = command(q, "COMMIT", "migrate");
                        if (r < 0) {
                                snprintf(err, err_size, "%s: %s", where, q->base.error);
                                command(q, "ROLLBACK", "migrate");
                        }
                        return r;
                }
                if (version < 0 || version > BBT_STORE_SCHEMA_VERSION) {
                        command(q, "ROLLBACK", "migrate");
                        if (version > BBT_STORE_SCHEMA_VERSION) {
                                snprintf(err, err_size, "%s: schema version %d is newer than this build's %d; upgrade bbt",
                                         where, version, BBT_STORE_SCHEMA_VERSION);
                                return -EPROTO;
                        }
                        return version < 0 ? version : 0;
                }
                r = command(q, migrations[version], "migrate");
                if (r == 0 && version + 1 == 4) {
                        /* 3 → 4 counts the aggregates under the default rule, as SQLite's. */
                        char rule_sql[256];

                        snprintf(rule_sql, sizeof(rule_sql),
                                 "INSERT INTO meta(key, value) VALUES('day_rule.used_day_ms', %lld),"
                                 " ('day_rule.used_period_ms', %lld), ('day_rule.heartbeat_ms', %lld)"
                                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                 (long long)rule.used_day_ms, (long long)rule.used_period_ms,
                                 (long long)rule.heartbeat_ms);
                        r = command(q, rule_sql, "migrate");
                        if (r == 0) {
                                struct params p = { 0 };

                                rule_params(&rule, &p);
                                r = rule_commands(q, recount_v4_sql, BBT_ELEMENTSOF(recount_v4_sql), &p);
                        }
                }
                if (r == 0 && version + 1 == 8) {
                        /* 7 → 8 packs schema 7's school-days. */
                        r = spans_pack(q, ST_SCHOOL_DAYS_V7, NULL);
                        if (r == 0)
                                r = command(q, "DROP TABLE school_day", "migrate");
                }
                if (r == 0 && version == 0)
                        r = command(q, "CREATE TABLE bbt_schema(application text NOT NULL, version integer NOT NULL);"
                                       " INSERT INTO bbt_schema VALUES('" APPLICATION "', 0)", "migrate");
                snprintf(set, sizeof(set), "UPDATE bbt_schema SET version = %d", version + 1);
                if (r == 0)
                        r = command(q, set, "migrate");
                if (r == 0)
                        r = command(q, "COMMIT", "migrate");
                if (r < 0) {
                        snprintf(err, err_size, "%s: migration to schema %d failed: %s", where, version + 1,
                                 q->base.error);
                        command(q, "ROLLBACK", "migrate");
                        return r;
                }
        }
}

int bbt_store_pg_open(const char *uri, bool read_only, struct bbt_store **ret, char *err, size_t err_size)
{
        char where[512], dummy[8];
        struct pg_store *q;
        int r;

        if (!err) {
                err = dummy;
                err_size = sizeof(dummy);
        }
        bbt_store_location_redact(uri, where, sizeof(where));
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->base.ops = &pg_ops;
        q->read_only = read_only;
        q->conn = PQconnectdb(uri);
        if (!q->conn) {
                free(q);
                return -ENOMEM;
        }
        if (PQstatus(q->conn) != CONNECTION_OK) {
                const char *m = PQerrorMessage(q->conn);

                snprintf(err, err_size, "%s: %s", where, m && *m ? m : "cannot connect");
                one_line(err);
                /* libpq has no SQLSTATE before a session: the message tells a missing database. */
                r = strstr(m, "does not exist") ? -ENOENT
                    : strstr(m, "password") || strstr(m, "authentication") || strstr(m, "pg_hba") ? -EACCES
                                                                                                : -ECONNREFUSED;
                goto fail;
        }
        r = session_setup(q);
        if (r < 0) {
                snprintf(err, err_size, "%s: %s", where, q->base.error);
                goto fail;
        }
        if (!read_only) {
                r = migrate(q, where, err, err_size);
                if (r < 0)
                        goto fail;
        } else {
                int version = schema_version(q, where, err, err_size);

                if (version < 0) {
                        r = version;
                        goto fail;
                }
                if (version != BBT_STORE_SCHEMA_VERSION) {
                        snprintf(err, err_size,
                                 version == 0 ? "%s: not a bbt store (start bbt-aggregator once to create it)"
                                              : "%s: schema version differs from this build's; start bbt-aggregator "
                                                "once to migrate it",
                                 where);
                        r = -EPROTO;
                        goto fail;
                }
        }
        q->base.error[0] = '\0';
        *ret = &q->base;
        return 0;
fail:
        PQfinish(q->conn);
        free(q);
        return r;
}
