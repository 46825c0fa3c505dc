/* The SQLite store backend: WAL, prepared statements, versioned schema with migrations. */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "store_agg.h"
#include "bbt/array.h"
#include "bbt/base.h"

/* 'bbt1': tells a bbt store from any other SQLite file. */
#define APPLICATION_ID 0x62627431

/* 2 → 3: history (docs/metrics.md, "History"): each day rollup keeps the
 * time of the day's first and last message and the end of the day's latest
 * active time, so a report for a past range reads
 * last-seen and last-active as they were at its end. A partial index finds a
 * terminal's latest active day without walking its idle days. The rows of a
 * store being migrated get the columns filled by the rollup rebuild the
 * aggregator runs when it opens it (rollup.c, ROLLUP_FORMAT). */
static int migrate_history(sqlite3 *db, char **msg)
{
        return sqlite3_exec(db,
                            "ALTER TABLE day_rollup ADD COLUMN first_msg_ms INTEGER NOT NULL DEFAULT 0;"
                            "ALTER TABLE day_rollup ADD COLUMN last_msg_ms INTEGER NOT NULL DEFAULT 0;"
                            "ALTER TABLE day_rollup ADD COLUMN last_active_ms INTEGER NOT NULL DEFAULT 0;"
                            "CREATE INDEX day_rollup_active ON day_rollup(terminal_id, day)"
                            " WHERE last_active_ms > 0;",
                            NULL, NULL, msg);
}

/* The schema of the day aggregates (store.h, "Day aggregates"): per school
 * and day the totals of its terminals' rollups, per terminal and 32 days
 * (span = day >> 5) the days powered and used as bits and each day's periods
 * used in 4 bits (days 0-15 of the span in lessons_lo, 16-31 in
 * lessons_hi, as two's complement 64-bit integers). Keyed by day first:
 * a report reads a range of days of every school. */
#define SCHEMA_DAY_AGGREGATES                                                                                        \
        "CREATE TABLE school_day(day INTEGER NOT NULL, county TEXT NOT NULL, school TEXT NOT NULL,"                  \
        " powered INTEGER NOT NULL, used INTEGER NOT NULL, periods_used INTEGER NOT NULL,"                           \
        " on_ms INTEGER NOT NULL, active_ms INTEGER NOT NULL, interactive_ms INTEGER NOT NULL,"                      \
        " hb_received INTEGER NOT NULL, on_all_ms INTEGER NOT NULL,"                                                 \
        " PRIMARY KEY(day, county, school)) WITHOUT ROWID;"                                                          \
        "CREATE TABLE day_mark(span INTEGER NOT NULL, terminal_id INTEGER NOT NULL, powered INTEGER NOT NULL,"      \
        " used INTEGER NOT NULL, lessons_lo INTEGER NOT NULL, lessons_hi INTEGER NOT NULL,"                          \
        " PRIMARY KEY(span, terminal_id)) WITHOUT ROWID;"

static int recount_day_aggregates(sqlite3 *db, const struct bbt_day_rule *r, char **msg);

/* Sets day_mark's seen bits from the rollups' last_msg_ms (every row, or those
 * of days >= ?1 when bound): bit i of a span's seen is its day i having a
 * message. */
#define SEEN_MARKS_FILL                                                                                              \
        "INSERT INTO day_mark(span, terminal_id, powered, used, lessons_lo, lessons_hi, seen)"                      \
        " SELECT day >> 5, terminal_id, 0, 0, 0, 0, sum(1 << (day & 31)) FROM day_rollup WHERE last_msg_ms > 0"      \
        " GROUP BY day >> 5, terminal_id ON CONFLICT(span, terminal_id) DO UPDATE SET seen = excluded.seen"

/* ---- the schools' days, 32 to a row (store_agg.h, struct bbt_agg_span) ---- */

/* Little-endian fixed-width values of the packed rows: on a little-endian
 * machine a plain load or store. */
static void put_le64(uint8_t *out, uint64_t v)
{
        v = htole64(v);
        memcpy(out, &v, sizeof(v));
}

static void put_le32(uint8_t *out, uint32_t v)
{
        v = htole32(v);
        memcpy(out, &v, sizeof(v));
}

static uint64_t get_le64(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return le64toh(v);
}

static uint32_t get_le32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, sizeof(v));
        return le32toh(v);
}

/* The day marks (store.h, "Day aggregates") likewise: one row of mark_span
 * per school and 32 days, MARKS its terminals' marks by terminal id, each
 * MARK_BYTES little-endian bytes: terminal id (8), powered, used, seen (4
 * each), lessons_lo, lessons_hi (8 each) — fixed, so that a report's read
 * of 20,000 marks a span is a copy, not a parse. A county's school year is
 * ~8,800 rows instead of ~220,000 (a mark a terminal). */
#define MARK_BYTES 36

struct mark_entry {
        int64_t terminal_id;
        uint32_t powered, used, seen;
        uint64_t lessons[2];
};

struct mark_list {
        struct mark_entry *e;
        size_t n, cap;
};

static size_t marks_encode(const struct mark_entry *e, size_t count, uint8_t *out)
{
        for (size_t i = 0; i < count; i++, out += MARK_BYTES) {
                put_le64(out, (uint64_t)e[i].terminal_id);
                put_le32(out + 8, e[i].powered);
                put_le32(out + 12, e[i].used);
                put_le32(out + 16, e[i].seen);
                put_le64(out + 20, e[i].lessons[0]);
                put_le64(out + 28, e[i].lessons[1]);
        }
        return count * MARK_BYTES;
}

/* Appends the marks in P to L. Returns 0, -EINVAL (malformed) or -ENOMEM. */
static int marks_decode(const uint8_t *p, size_t len, struct mark_list *l)
{
        size_t count = len / MARK_BYTES;

        if (len % MARK_BYTES || bbt_array_reserve((void **)&l->e, &l->cap, l->n + count, sizeof(*l->e)) < 0)
                return len % MARK_BYTES ? -EINVAL : -ENOMEM;
        for (size_t i = 0; i < count; i++, p += MARK_BYTES) {
                struct mark_entry *e = &l->e[l->n++];

                e->terminal_id = (int64_t)get_le64(p);
                e->powered = get_le32(p + 8);
                e->used = get_le32(p + 12);
                e->seen = get_le32(p + 16);
                e->lessons[0] = get_le64(p + 20);
                e->lessons[1] = get_le64(p + 28);
        }
        return 0;
}

/* Writes the rows of mark_span from SRC, a query of (span, county, school,
 * terminal id, powered, used, lessons_lo, lessons_hi, seen) ordered by its
 * first four columns. */
static int mark_spans_pack(sqlite3 *db, const char *src, char **msg)
{
        sqlite3_stmt *in = NULL, *out = NULL;
        struct mark_list l = { 0 };
        char county[16] = "", school[BBT_ID_MAX + 8] = "";
        int64_t span = 0;
        uint8_t *buf = NULL;
        size_t cap_buf = 0;
        int rc = sqlite3_prepare_v2(db, src, -1, &in, NULL);

        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "INSERT INTO mark_span(span, county, school, marks) VALUES(?1, ?2, ?3, ?4)",
                                        -1, &out, NULL);
        while (rc == SQLITE_OK) {
                int step = sqlite3_step(in);
                const char *c = step == SQLITE_ROW ? (const char *)sqlite3_column_text(in, 1) : NULL;
                const char *sc = step == SQLITE_ROW ? (const char *)sqlite3_column_text(in, 2) : NULL;

                if (step != SQLITE_ROW && step != SQLITE_DONE) {
                        rc = step;
                        break;
                }
                if (l.n && (step == SQLITE_DONE || sqlite3_column_int64(in, 0) != span ||
                            strcmp(c ? c : "", county) != 0 || strcmp(sc ? sc : "", school) != 0)) {
                        size_t n;

                        if (bbt_array_reserve((void **)&buf, &cap_buf, l.n * MARK_BYTES, 1) < 0) {
                                rc = SQLITE_NOMEM;
                                break;
                        }
                        n = marks_encode(l.e, l.n, buf);
                        sqlite3_bind_int64(out, 1, span);
                        sqlite3_bind_text(out, 2, county, -1, SQLITE_STATIC);
                        sqlite3_bind_text(out, 3, school, -1, SQLITE_STATIC);
                        sqlite3_bind_blob(out, 4, buf, (int)n, SQLITE_STATIC);
                        rc = sqlite3_step(out);
                        rc = rc == SQLITE_DONE ? sqlite3_reset(out) : rc;
                        l.n = 0;
                }
                if (step == SQLITE_DONE || rc != SQLITE_OK)
                        break;
                if (!l.n) {
                        span = sqlite3_column_int64(in, 0);
                        snprintf(county, sizeof(county), "%s", c ? c : "");
                        snprintf(school, sizeof(school), "%s", sc ? sc : "");
                }
                if (bbt_array_reserve((void **)&l.e, &l.cap, l.n + 1, sizeof(*l.e)) < 0) {
                        rc = SQLITE_NOMEM;
                        break;
                }
                l.e[l.n++] = (struct mark_entry){
                        .terminal_id = sqlite3_column_int64(in, 3),
                        .powered = (uint32_t)sqlite3_column_int64(in, 4),
                        .used = (uint32_t)sqlite3_column_int64(in, 5),
                        .lessons = { (uint64_t)sqlite3_column_int64(in, 6), (uint64_t)sqlite3_column_int64(in, 7) },
                        .seen = (uint32_t)sqlite3_column_int64(in, 8),
                };
        }
        if (rc != SQLITE_OK && msg && !*msg)
                *msg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        sqlite3_finalize(in);
        sqlite3_finalize(out);
        free(l.e);
        free(buf);
        return rc;
}

/* Writes the rows of school_span from SRC, a query of (day, county, school,
 * and bbt_day_totals' fields) ordered by day >> 5, county, school, day. */
static int school_spans_pack(sqlite3 *db, const char *src, char **msg)
{
        sqlite3_stmt *in = NULL, *out = NULL;
        struct bbt_agg_span sd = { 0 };
        char county[16] = "", school[BBT_ID_MAX + 8] = "";
        int64_t span = 0;
        bool have = false;
        uint8_t *buf = malloc(BBT_AGG_SPAN_BYTES_MAX);
        int rc = buf ? sqlite3_prepare_v2(db, src, -1, &in, NULL) : SQLITE_NOMEM;

        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "INSERT INTO school_span(span, county, school, present, days)"
                                            " VALUES(?1, ?2, ?3, ?4, ?5)", -1, &out, NULL);
        while (rc == SQLITE_OK) {
                int step = sqlite3_step(in);
                const char *c = step == SQLITE_ROW ? (const char *)sqlite3_column_text(in, 1) : NULL;
                const char *sc = step == SQLITE_ROW ? (const char *)sqlite3_column_text(in, 2) : NULL;
                int32_t day = step == SQLITE_ROW ? sqlite3_column_int(in, 0) : 0;

                if (step != SQLITE_ROW && step != SQLITE_DONE) {
                        rc = step;
                        break;
                }
                if (have && (step == SQLITE_DONE || bbt_agg_span_of(day) != span || strcmp(c ? c : "", county) != 0 ||
                             strcmp(sc ? sc : "", school) != 0)) {
                        size_t n = bbt_agg_span_encode(&sd, buf);

                        sqlite3_bind_int64(out, 1, span);
                        sqlite3_bind_text(out, 2, county, -1, SQLITE_STATIC);
                        sqlite3_bind_text(out, 3, school, -1, SQLITE_STATIC);
                        sqlite3_bind_int64(out, 4, sd.present);
                        sqlite3_bind_blob(out, 5, buf, (int)n, SQLITE_STATIC);
                        rc = sqlite3_step(out);
                        rc = rc == SQLITE_DONE ? sqlite3_reset(out) : rc;
                        have = false;
                }
                if (step == SQLITE_DONE || rc != SQLITE_OK)
                        break;
                if (!have) {
                        memset(&sd, 0, sizeof(sd));
                        span = bbt_agg_span_of(day);
                        snprintf(county, sizeof(county), "%s", c ? c : "");
                        snprintf(school, sizeof(school), "%s", sc ? sc : "");
                        have = true;
                }
                sd.present |= 1u << (day & (BBT_STORE_MARK_DAYS - 1));
                for (int k = 0; k < BBT_AGG_SPAN_VALUES; k++)
                        *bbt_agg_totals_field(&sd.t[day & (BBT_STORE_MARK_DAYS - 1)], k) = sqlite3_column_int64(in, 3 + k);
        }
        if (rc != SQLITE_OK && msg && !*msg)
                *msg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        sqlite3_finalize(in);
        sqlite3_finalize(out);
        free(buf);
        return rc;
}

#define SCHEMA_SCHOOL_SPAN                                                                                           \
        "CREATE TABLE school_span(span INTEGER NOT NULL, county TEXT NOT NULL, school TEXT NOT NULL,"                \
        " present INTEGER NOT NULL, days BLOB NOT NULL, PRIMARY KEY(span, county, school)) WITHOUT ROWID;"          \
        "CREATE TABLE mark_span(span INTEGER NOT NULL, county TEXT NOT NULL, school TEXT NOT NULL,"                  \
        " marks BLOB NOT NULL, PRIMARY KEY(span, county, school)) WITHOUT ROWID;"

/* Every terminal's marks from the rollups under the rule (?1 used_day_ms,
 * ?2 used_period_ms), for mark_spans_pack. */
#define MARKS_RECOUNT                                                                                                \
        "SELECT d.day >> 5, t.county, t.school, d.terminal_id,"                                                      \
        " sum(CASE WHEN d.on_ms > 0 THEN 1 << (d.day & 31) ELSE 0 END),"                                             \
        " sum(CASE WHEN d.active_ms >= ?1 THEN 1 << (d.day & 31) ELSE 0 END),"                                       \
        " sum(CASE WHEN d.day & 16 = 0 THEN d.n << (4 * (d.day & 15)) ELSE 0 END),"                                  \
        " sum(CASE WHEN d.day & 16 <> 0 THEN d.n << (4 * (d.day & 15)) ELSE 0 END),"                                 \
        " sum(CASE WHEN d.last_msg_ms > 0 THEN 1 << (d.day & 31) ELSE 0 END)"                                        \
        " FROM (SELECT terminal_id, day, on_ms, active_ms, last_msg_ms, (p1 >= ?2) + (p2 >= ?2) + (p3 >= ?2)"       \
        " + (p4 >= ?2) + (p5 >= ?2) + (p6 >= ?2) + (p7 >= ?2) + (p8 >= ?2) + (p9 >= ?2) + (p10 >= ?2)"              \
        " + (p11 >= ?2) + (p12 >= ?2) AS n FROM day_rollup) d JOIN terminal t ON t.id = d.terminal_id"               \
        " GROUP BY d.day >> 5, d.terminal_id ORDER BY 1, 2, 3, 4"

/* The marks with only their seen bits (the rollups' message times). */
#define MARKS_SEEN_ONLY                                                                                              \
        "SELECT d.day >> 5, t.county, t.school, d.terminal_id, 0, 0, 0, 0, sum(1 << (d.day & 31))"                  \
        " FROM day_rollup d JOIN terminal t ON t.id = d.terminal_id WHERE d.last_msg_ms > 0"                         \
        " GROUP BY d.day >> 5, d.terminal_id ORDER BY 1, 2, 3, 4"

/* 4 → 5: the day marks' seen bits (seen_days_each), and the day aggregates
 * packed a school's 32 days to a row (school_span, mark_span). */
static int migrate_school_spans(sqlite3 *db, char **msg)
{
        int rc = sqlite3_exec(db, "ALTER TABLE day_mark ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;" SEEN_MARKS_FILL
                                  ";" SCHEMA_SCHOOL_SPAN, NULL, NULL, msg);

        if (rc == SQLITE_OK)
                rc = school_spans_pack(db,
                                       "SELECT day, county, school, powered, used, periods_used, on_ms, active_ms,"
                                       " interactive_ms, hb_received, on_all_ms FROM school_day"
                                       " ORDER BY day >> 5, county, school, day",
                                       msg);
        if (rc == SQLITE_OK)
                rc = mark_spans_pack(db,
                                     "SELECT m.span, t.county, t.school, m.terminal_id, m.powered, m.used,"
                                     " m.lessons_lo, m.lessons_hi, m.seen FROM day_mark m"
                                     " JOIN terminal t ON t.id = m.terminal_id ORDER BY 1, 2, 3, 4",
                                     msg);
        return rc == SQLITE_OK ? sqlite3_exec(db, "DROP TABLE school_day; DROP TABLE day_mark;", NULL, NULL, msg)
                               : rc;
}


/* 3 → 4: the day aggregates, counted from the rollups already stored under
 * the default rule (bbt-aggregator records its own rule when it starts). */
static int migrate_day_aggregates(sqlite3 *db, char **msg)
{
        static const struct bbt_day_rule rule = BBT_DAY_RULE_DEFAULT;
        char *sql = sqlite3_mprintf("INSERT INTO meta(key, value) VALUES('day_rule.used_day_ms', %lld),"
                                    " ('day_rule.used_period_ms', %lld), ('day_rule.heartbeat_ms', %lld)"
                                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                    (long long)rule.used_day_ms, (long long)rule.used_period_ms,
                                    (long long)rule.heartbeat_ms);
        int rc = sql ? sqlite3_exec(db, SCHEMA_DAY_AGGREGATES, NULL, NULL, msg) : SQLITE_NOMEM;

        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, sql, NULL, NULL, msg);
        sqlite3_free(sql);
        return rc == SQLITE_OK ? recount_day_aggregates(db, &rule, msg) : rc;
}

/* Migration N brings a store from user_version N to N + 1: its SQL, or its
 * function. Never edit a shipped migration: add the next one and raise
 * BBT_STORE_SCHEMA_VERSION. */
struct migration {
        const char *sql;
        int (*fn)(sqlite3 *db, char **msg); /* when there is no SQL */
};
static const struct migration migrations[] = {
        /* 0 → 1: the first schema. */
        { "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE terminal(id INTEGER PRIMARY KEY, county TEXT NOT NULL, school TEXT NOT NULL,"
        " terminal TEXT NOT NULL, first_seq INTEGER NOT NULL, high_seq INTEGER NOT NULL,"
        " received INTEGER NOT NULL, duplicates INTEGER NOT NULL, lost INTEGER NOT NULL,"
        " first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, last_active_ms INTEGER NOT NULL,"
        " online INTEGER NOT NULL, boot INTEGER NOT NULL, online_since_ms INTEGER NOT NULL,"
        " offline_since_ms INTEGER NOT NULL, offline_reason INTEGER NOT NULL, skew_known INTEGER NOT NULL,"
        " skew_ms INTEGER NOT NULL, spool_dropped INTEGER NOT NULL, version TEXT NOT NULL,"
        " hostname TEXT NOT NULL, os TEXT NOT NULL, machine_id TEXT NOT NULL, last_hb TEXT NOT NULL,"
        " inventory_seq INTEGER NOT NULL,"
        " UNIQUE(county, school, terminal));"
        /* Raw messages in arrival order (appending touches few pages; a table
         * keyed by terminal and seq dirtied a page per message of a batch), with
         * (terminal, seq) unique beside it. */
        "CREATE TABLE raw(id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
        " channel INTEGER NOT NULL, ts INTEGER NOT NULL, recv_ms INTEGER NOT NULL, boot INTEGER NOT NULL,"
        " payload TEXT NOT NULL);"
        "CREATE UNIQUE INDEX raw_seq ON raw(terminal_id, seq);"
        "CREATE TABLE usage(terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL, start_ms INTEGER NOT NULL,"
        " end_ms INTEGER NOT NULL, state INTEGER NOT NULL, interactive_ms INTEGER NOT NULL,"
        " audio_ms INTEGER NOT NULL, touch INTEGER NOT NULL, pen INTEGER NOT NULL, mouse INTEGER NOT NULL,"
        " key INTEGER NOT NULL, PRIMARY KEY(terminal_id, seq)) WITHOUT ROWID;"
        "CREATE TABLE day_rollup(terminal_id INTEGER NOT NULL, day INTEGER NOT NULL, on_ms INTEGER NOT NULL,"
        " active_ms INTEGER NOT NULL, interactive_ms INTEGER NOT NULL, hb_count INTEGER NOT NULL,"
        " on_all_ms INTEGER NOT NULL,"
        " p1 INTEGER NOT NULL, p2 INTEGER NOT NULL, p3 INTEGER NOT NULL, p4 INTEGER NOT NULL,"
        " p5 INTEGER NOT NULL, p6 INTEGER NOT NULL, p7 INTEGER NOT NULL, p8 INTEGER NOT NULL,"
        " p9 INTEGER NOT NULL, p10 INTEGER NOT NULL, p11 INTEGER NOT NULL, p12 INTEGER NOT NULL,"
        " PRIMARY KEY(terminal_id, day)) WITHOUT ROWID;"
        "CREATE TABLE gap(terminal_id INTEGER NOT NULL, from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,"
        " detected_ms INTEGER NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL,"
        " changed_ms INTEGER NOT NULL, cmd_id TEXT NOT NULL, boot INTEGER NOT NULL,"
        " PRIMARY KEY(terminal_id, from_seq)) WITHOUT ROWID;"
        "CREATE TABLE loss(id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, from_seq INTEGER NOT NULL,"
        " to_seq INTEGER NOT NULL, recorded_ms INTEGER NOT NULL, reason TEXT NOT NULL);"
        "CREATE TABLE fault(id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, code TEXT NOT NULL,"
        " source TEXT NOT NULL, severity INTEGER NOT NULL, detail TEXT NOT NULL, raised_ms INTEGER NOT NULL,"
        " cleared_ms INTEGER NOT NULL);"
        "CREATE INDEX fault_open ON fault(terminal_id, code, source) WHERE cleared_ms = 0;"
        "CREATE TABLE inventory(terminal_id INTEGER NOT NULL, idx INTEGER NOT NULL, kind INTEGER NOT NULL,"
        " subsystem TEXT NOT NULL, bus TEXT NOT NULL, vendor_id TEXT NOT NULL, model_id TEXT NOT NULL,"
        " vendor TEXT NOT NULL, model TEXT NOT NULL, serial TEXT NOT NULL, syspath TEXT NOT NULL,"
        " PRIMARY KEY(terminal_id, idx)) WITHOUT ROWID;"
        "CREATE TABLE periph_event(id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
        " ts INTEGER NOT NULL, action INTEGER NOT NULL, kind INTEGER NOT NULL, subsystem TEXT NOT NULL,"
        " vendor TEXT NOT NULL, model TEXT NOT NULL, serial TEXT NOT NULL, syspath TEXT NOT NULL);"
        "CREATE TABLE counter(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;", NULL },
        /* 1 → 2: skipped seqs beside lost ones, conflicts (a different
         * payload under a stored seq) and the payload hash that shows them. */
        { "ALTER TABLE terminal ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE terminal ADD COLUMN conflicts INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE raw ADD COLUMN hash INTEGER;"
        "ALTER TABLE loss ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX loss_seq ON loss(terminal_id, from_seq);"
        "CREATE TABLE conflict(id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
        " channel INTEGER NOT NULL, ts INTEGER NOT NULL, recv_ms INTEGER NOT NULL, boot INTEGER NOT NULL,"
        " payload TEXT NOT NULL, stored_hash INTEGER NOT NULL, hash INTEGER NOT NULL);", NULL },
        { NULL, migrate_history },
        /* 3 → 4 */
        { NULL, migrate_day_aggregates },
        /* 4 → 5 */
        { NULL, migrate_school_spans },
        /* 5 → 6: the terminals' one-off events (the power schedule's) and
         * wired NICs (Wake-on-LAN). */
        { "CREATE TABLE terminal_event(id INTEGER PRIMARY KEY, terminal_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
          " ts INTEGER NOT NULL, code TEXT NOT NULL, severity INTEGER NOT NULL, detail TEXT NOT NULL);"
          "CREATE INDEX terminal_event_ts ON terminal_event(terminal_id, ts);"
          "CREATE TABLE terminal_net(terminal_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, ifname TEXT NOT NULL,"
          " mac TEXT NOT NULL, ipv4 TEXT NOT NULL, prefix INTEGER NOT NULL);", NULL },
        /* 6 → 7: the operators' commands (bbt-ctl), the audit trail. */
        { "CREATE TABLE audit(id INTEGER PRIMARY KEY, cmd_id TEXT NOT NULL UNIQUE, operator TEXT NOT NULL,"
          " sent_ms INTEGER NOT NULL, done_ms INTEGER NOT NULL, county TEXT NOT NULL, school TEXT NOT NULL,"
          " terminal TEXT NOT NULL, via TEXT NOT NULL, op TEXT NOT NULL, args TEXT NOT NULL, result TEXT NOT NULL,"
          " detail TEXT NOT NULL);"
          "CREATE INDEX audit_sent ON audit(sent_ms);", NULL },
        /* 7 → 8: nothing here. PostgreSQL's schema 8 packs its school-days
         * 32 to a row (store_pg.c), as schema 5 did here. */
        { "SELECT 1;", NULL },
};
#define N_MIGRATIONS (BBT_ELEMENTSOF(migrations))
_Static_assert(N_MIGRATIONS == BBT_STORE_SCHEMA_VERSION, "one migration per schema version");
_Static_assert(BBT_PERIODS_MAX <= 15, "a day's periods used fit day_mark's 4 bits");

#define TERMINAL_COLS                                                                                 \
        "county, school, terminal, first_seq, high_seq, received, duplicates, lost, first_seen_ms,"   \
        " last_seen_ms, last_active_ms, online, boot, online_since_ms, offline_since_ms,"             \
        " offline_reason, skew_known, skew_ms, spool_dropped, version, hostname, os, machine_id, last_hb,"  \
        " inventory_seq, skipped, conflicts"

#define TERMINAL_BRIEF_COLS                                                                                 \
        "id, county, school, terminal, first_seq, high_seq, received, duplicates, lost, skipped, conflicts,"    \
        " spool_dropped, first_seen_ms, online, version"

/* A statement X that iterates over terminals' rows has a twin X_SCOPED
 * right after it (scoped() picks one) that keeps only the rows of the
 * terminals in a scope's county (?1) and school (?2). Both take the time
 * bounds, if any, as ?3 and ?4. */
enum stmt {
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST_META_GET,
        ST_META_SET,
        ST_DATA_VERSION,
        ST_TERMINAL_INSERT,
        ST_TERMINAL_UPDATE,
        ST_TERMINALS,
        ST_TERMINALS_SCOPED,
        ST_GAP_DELETE,
        ST_GAP_INSERT,
        ST_GAPS,
        ST_GAPS_SCOPED,
        ST_TERMINAL_LOCK,
        ST_TERMINAL_LOCK_KEY,
        ST_TERMINAL_GAPS,
        ST_RAW_INSERT,
        ST_RAW_HASH,
        ST_RAW_PAYLOAD,
        ST_CONFLICT_INSERT,
        ST_CONFLICTS,
        ST_CONFLICTS_SCOPED,
        ST_USAGE_INSERT,
        ST_USAGES,
        ST_USAGES_SCOPED,
        ST_DAY_ADD,
        ST_DAYS_CLEAR,
        ST_DAYS,
        ST_DAYS_SCOPED,
        ST_SCHOOL_SPAN_GET,
        ST_SCHOOL_SPAN_PUT,
        ST_TERMINAL_SCHOOL,
        ST_MARK_SPAN_GET,
        ST_MARK_SPAN_PUT,
        ST_SCHOOL_DAYS_CLEAR,
        ST_DAY_MARKS_CLEAR,
        ST_SCHOOL_DAYS,
        ST_SCHOOL_DAYS_SCOPED,
        ST_DAY_MARKS,
        ST_DAY_MARKS_SCOPED,
        ST_SEEN,
        ST_SEEN_SCOPED,
        ST_TERMINALS_BRIEF,
        ST_TERMINALS_BRIEF_SCOPED,
        ST_TERMINAL_IDS,
        ST_TERMINAL_IDS_SCOPED,
        ST_SEEN_DAY,
        ST_DAYS_HISTORY_REBUILD,
        ST_LOSS_INSERT,
        ST_LOSSES,
        ST_LOSSES_SCOPED,
        ST_LOSS_FIND,
        ST_LOSS_DELETE,
        ST_FAULT_FIND,
        ST_FAULT_INSERT,
        ST_FAULT_CLEAR,
        ST_FAULTS,
        ST_FAULTS_SCOPED,
        ST_INV_DELETE,
        ST_INV_INSERT,
        ST_INVENTORY,
        ST_INVENTORY_SCOPED,
        ST_PERIPH_INSERT,
        ST_EVENT_INSERT,
        ST_EVENTS,
        ST_EVENTS_SCOPED,
        ST_NET_SET,
        ST_NETS,
        ST_NETS_SCOPED,
        ST_AUDIT_PUT,
        ST_AUDITS,
        ST_COUNTER_ADD,
        ST_COUNTERS,
        ST_RAW_BOUNDS,
        ST_RAW_RECV_AT,
        ST_PRUNE_RAW,
        ST_PRUNE_USAGE,
        ST__COUNT
};

/* The terminals in a scope, as a condition on a row's terminal_id. */
#define IN_SCOPE " IN (SELECT id FROM terminal WHERE (?1 IS NULL OR county = ?1) AND (?2 IS NULL OR school = ?2))"

/* What each iterator reads, with its time bounds (?3, ?4) if it has any. */
#define SELECT_GAPS "SELECT terminal_id, from_seq, to_seq, detected_ms, state, attempts, changed_ms, cmd_id, boot FROM gap"
#define SELECT_CONFLICTS                                                                                             \
        "SELECT terminal_id, seq, channel, ts, recv_ms, boot, stored_hash, hash FROM conflict"                       \
        " WHERE recv_ms >= ?3 AND recv_ms < ?4"
#define SELECT_USAGE                                                                                                 \
        "SELECT terminal_id, seq, start_ms, end_ms, state, interactive_ms, audio_ms, touch, pen, mouse, key"         \
        " FROM usage WHERE end_ms > ?3 AND start_ms < ?4"
#define SELECT_DAYS                                                                                                  \
        "SELECT terminal_id, day, on_ms, active_ms, interactive_ms, hb_count, p1, p2, p3, p4, p5, p6, p7, p8, p9,"   \
        " p10, p11, p12, on_all_ms, first_msg_ms, last_msg_ms, last_active_ms FROM day_rollup"            \
        " WHERE day BETWEEN ?3 AND ?4"
/* A terminal's latest message and active times on days ?3..?4: one row each
 * (the message times are kept by the day they fall on, the active ends
 * clipped to their day, so the latest day holds the latest time). */
#define SELECT_SEEN                                                                                                  \
        "SELECT t.id, COALESCE((SELECT d.last_msg_ms FROM day_rollup d WHERE d.terminal_id = t.id"                  \
        " AND d.day BETWEEN ?3 AND ?4 AND d.last_msg_ms > 0 ORDER BY d.day DESC LIMIT 1), 0),"                      \
        " COALESCE((SELECT d.last_active_ms FROM day_rollup d WHERE d.terminal_id = t.id"                            \
        " AND d.day BETWEEN ?3 AND ?4 AND d.last_active_ms > 0 ORDER BY d.day DESC LIMIT 1), 0) FROM terminal t"
/* ?3, ?4: spans. */
#define SELECT_SCHOOL_SPANS                                                                                          \
        "SELECT county, school, span, present, days FROM school_span WHERE span BETWEEN ?3 AND ?4"
/* ?3, ?4: spans. */
#define SELECT_MARK_SPANS "SELECT span, marks FROM mark_span WHERE span BETWEEN ?3 AND ?4"
#define SELECT_LOSSES                                                                                                \
        "SELECT terminal_id, from_seq, to_seq, recorded_ms, reason, kind FROM loss"                                  \
        " WHERE recorded_ms >= ?3 AND recorded_ms < ?4"
#define SELECT_FAULTS                                                                                                \
        "SELECT terminal_id, code, source, severity, detail, raised_ms, cleared_ms FROM fault"                       \
        " WHERE raised_ms < ?4 AND (cleared_ms = 0 OR cleared_ms >= ?3)"
#define SELECT_EVENTS "SELECT terminal_id, seq, ts, code, severity, detail FROM terminal_event WHERE ts >= ?3 AND ts < ?4"
#define SELECT_NETS "SELECT terminal_id, seq, ifname, mac, ipv4, prefix FROM terminal_net"
#define SELECT_INVENTORY                                                                                             \
        "SELECT terminal_id, kind, subsystem, bus, vendor_id, model_id, vendor, model, serial, syspath FROM inventory"

/* How day_add and the history rebuild merge the history columns: the
 * earlier first message, the later last message and active end (0: none). */
#define DAY_HISTORY_MERGE                                                                                            \
        " first_msg_ms = CASE WHEN first_msg_ms = 0 OR (excluded.first_msg_ms > 0"                                \
        " AND excluded.first_msg_ms < first_msg_ms) THEN excluded.first_msg_ms ELSE first_msg_ms END,"           \
        " last_msg_ms = max(last_msg_ms, excluded.last_msg_ms),"                                                  \
        " last_active_ms = max(last_active_ms, excluded.last_active_ms)"

static const char *const sql[ST__COUNT] = {
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
        [ST_DATA_VERSION] = "PRAGMA data_version",
        [ST_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [ST_TERMINAL_INSERT] = "INSERT INTO terminal(" TERMINAL_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                               " ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25,"
                               " ?26, ?27)",
        [ST_TERMINAL_UPDATE] = "UPDATE terminal SET county = ?1, school = ?2, terminal = ?3, first_seq = ?4,"
                               " high_seq = ?5, received = ?6, duplicates = ?7, lost = ?8, first_seen_ms = ?9,"
                               " last_seen_ms = ?10, last_active_ms = ?11, online = ?12, boot = ?13,"
                               " online_since_ms = ?14, offline_since_ms = ?15, offline_reason = ?16,"
                               " skew_known = ?17, skew_ms = ?18, spool_dropped = ?19, version = ?20,"
                               " hostname = ?21, os = ?22, machine_id = ?23, last_hb = ?24, inventory_seq = ?25,"
                               " skipped = ?26, conflicts = ?27 WHERE id = ?28",
        [ST_TERMINALS] = "SELECT " TERMINAL_COLS ", id FROM terminal ORDER BY id",
        [ST_TERMINALS_SCOPED] = "SELECT " TERMINAL_COLS ", id FROM terminal WHERE (?1 IS NULL OR county = ?1)"
                                " AND (?2 IS NULL OR school = ?2) ORDER BY id",
        [ST_GAP_DELETE] = "DELETE FROM gap WHERE terminal_id = ?1",
        [ST_GAP_INSERT] = "INSERT INTO gap(terminal_id, from_seq, to_seq, detected_ms, state, attempts,"
                          " changed_ms, cmd_id, boot) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        [ST_GAPS] = SELECT_GAPS " ORDER BY terminal_id, from_seq",
        [ST_GAPS_SCOPED] = SELECT_GAPS " WHERE terminal_id" IN_SCOPE " ORDER BY terminal_id, from_seq",
        /* SQLite has one writer at a time (BEGIN IMMEDIATE): the row is read. */
        [ST_TERMINAL_LOCK] = "SELECT " TERMINAL_COLS ", id, (SELECT count(*) FROM gap WHERE terminal_id = ?1)"
                             " FROM terminal WHERE id = ?1",
        [ST_TERMINAL_LOCK_KEY] = "SELECT " TERMINAL_COLS ", id, (SELECT count(*) FROM gap g WHERE g.terminal_id ="
                                 " terminal.id) FROM terminal WHERE county = ?1 AND school = ?2 AND terminal = ?3",
        [ST_TERMINAL_GAPS] = SELECT_GAPS " WHERE terminal_id = ?1 ORDER BY from_seq",
        [ST_RAW_INSERT] = "INSERT OR IGNORE INTO raw(terminal_id, seq, channel, ts, recv_ms, boot, payload, hash)"
                          " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        [ST_RAW_HASH] = "SELECT hash FROM raw WHERE terminal_id = ?1 AND seq = ?2",
        [ST_RAW_PAYLOAD] = "SELECT payload FROM raw WHERE terminal_id = ?1 AND seq = ?2",
        [ST_CONFLICT_INSERT] = "INSERT INTO conflict(terminal_id, seq, channel, ts, recv_ms, boot, payload,"
                               " stored_hash, hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        [ST_CONFLICTS] = SELECT_CONFLICTS " ORDER BY id",
        [ST_CONFLICTS_SCOPED] = SELECT_CONFLICTS " AND terminal_id" IN_SCOPE " ORDER BY id",
        [ST_USAGE_INSERT] = "INSERT OR IGNORE INTO usage(terminal_id, seq, start_ms, end_ms, state,"
                            " interactive_ms, audio_ms, touch, pen, mouse, key)"
                            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        [ST_USAGES] = SELECT_USAGE " ORDER BY terminal_id, seq",
        [ST_USAGES_SCOPED] = SELECT_USAGE " AND terminal_id" IN_SCOPE " ORDER BY terminal_id, seq",
        [ST_DAY_ADD] = "INSERT INTO day_rollup(terminal_id, day, on_ms, active_ms, interactive_ms, hb_count,"
                       " p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, on_all_ms, first_msg_ms, last_msg_ms,"
                       " last_active_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
                       " ?17, ?18, ?19, ?20, ?21, ?22)"
                       " ON CONFLICT(terminal_id, day) DO UPDATE SET on_ms = on_ms + excluded.on_ms,"
                       " active_ms = active_ms + excluded.active_ms,"
                       " interactive_ms = interactive_ms + excluded.interactive_ms,"
                       " hb_count = hb_count + excluded.hb_count, p1 = p1 + excluded.p1, p2 = p2 + excluded.p2,"
                       " p3 = p3 + excluded.p3, p4 = p4 + excluded.p4, p5 = p5 + excluded.p5,"
                       " p6 = p6 + excluded.p6, p7 = p7 + excluded.p7, p8 = p8 + excluded.p8,"
                       " p9 = p9 + excluded.p9, p10 = p10 + excluded.p10, p11 = p11 + excluded.p11,"
                       " p12 = p12 + excluded.p12, on_all_ms = on_all_ms + excluded.on_all_ms," DAY_HISTORY_MERGE
                       /* The row as it is now: the day aggregates need it before and after. */
                       " RETURNING on_ms, active_ms, interactive_ms, hb_count, p1, p2, p3, p4, p5, p6, p7, p8, p9,"
                       " p10, p11, p12, on_all_ms",
        [ST_DAYS_CLEAR] = "UPDATE day_rollup SET on_ms = 0, active_ms = 0, interactive_ms = 0, on_all_ms = 0,"
                          " p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0, p8 = 0, p9 = 0, p10 = 0,"
                          " p11 = 0, p12 = 0, last_active_ms = 0",
        [ST_DAYS] = SELECT_DAYS " ORDER BY terminal_id, day",
        [ST_DAYS_SCOPED] = SELECT_DAYS " AND terminal_id" IN_SCOPE " ORDER BY terminal_id, day",
        /* A school's 32 days (?1 span, ?2 county, ?3 school): read, then written whole. */
        [ST_SCHOOL_SPAN_GET] = "SELECT present, days FROM school_span WHERE span = ?1 AND county = ?2 AND school = ?3",
        [ST_SCHOOL_SPAN_PUT] = "INSERT OR REPLACE INTO school_span(span, county, school, present, days)"
                               " VALUES(?1, ?2, ?3, ?4, ?5)",
        /* A school's marks of 32 days (?1 span, ?2 county, ?3 school): read, then written whole. */
        [ST_MARK_SPAN_GET] = "SELECT marks FROM mark_span WHERE span = ?1 AND county = ?2 AND school = ?3",
        [ST_MARK_SPAN_PUT] = "INSERT OR REPLACE INTO mark_span(span, county, school, marks) VALUES(?1, ?2, ?3, ?4)",
        [ST_TERMINAL_SCHOOL] = "SELECT county, school FROM terminal WHERE id = ?1",
        [ST_SCHOOL_DAYS_CLEAR] = "DELETE FROM school_span",
        [ST_DAY_MARKS_CLEAR] = "DELETE FROM mark_span",
        [ST_SCHOOL_DAYS] = SELECT_SCHOOL_SPANS " ORDER BY span, county, school",
        [ST_SCHOOL_DAYS_SCOPED] = SELECT_SCHOOL_SPANS " AND (?1 IS NULL OR county = ?1) AND (?2 IS NULL OR school = ?2)"
                                  " ORDER BY span, county, school",
        [ST_DAY_MARKS] = SELECT_MARK_SPANS " ORDER BY span, county, school",
        [ST_DAY_MARKS_SCOPED] = SELECT_MARK_SPANS " AND (?1 IS NULL OR county = ?1) AND (?2 IS NULL OR school = ?2)"
                                " ORDER BY span, county, school",
        [ST_SEEN] = SELECT_SEEN " ORDER BY t.id",
        [ST_SEEN_SCOPED] = SELECT_SEEN " WHERE (?1 IS NULL OR t.county = ?1) AND (?2 IS NULL OR t.school = ?2)"
                           " ORDER BY t.id",
        [ST_TERMINALS_BRIEF] = "SELECT " TERMINAL_BRIEF_COLS " FROM terminal ORDER BY id",
        [ST_TERMINALS_BRIEF_SCOPED] = "SELECT " TERMINAL_BRIEF_COLS " FROM terminal WHERE (?1 IS NULL OR county = ?1)"
                                      " AND (?2 IS NULL OR school = ?2) ORDER BY id",
        [ST_TERMINAL_IDS] = "SELECT id FROM terminal ORDER BY id",
        [ST_TERMINAL_IDS_SCOPED] = "SELECT id FROM terminal WHERE (?1 IS NULL OR county = ?1)"
                                   " AND (?2 IS NULL OR school = ?2) ORDER BY id",
        [ST_SEEN_DAY] = "SELECT day FROM day_rollup WHERE terminal_id = ?1 AND day BETWEEN ?2 AND ?3"
                        " AND last_msg_ms > 0 ORDER BY day DESC LIMIT 1",
        /* ?1: the UTC offset in ms. "WHERE true" keeps SQLite from reading
         * ON CONFLICT as part of the SELECT. */
        [ST_DAYS_HISTORY_REBUILD] =
                "INSERT INTO day_rollup(terminal_id, day, on_ms, active_ms, interactive_ms, hb_count, p1, p2, p3, p4,"
                " p5, p6, p7, p8, p9, p10, p11, p12, on_all_ms, first_msg_ms, last_msg_ms, last_active_ms)"
                " SELECT terminal_id, (ms + ?1) / 86400000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
                " min(ms), max(ms), 0 FROM (SELECT r.terminal_id, min(r.ts - CASE WHEN t.skew_known THEN t.skew_ms"
                " ELSE 0 END, r.recv_ms) AS ms FROM raw r JOIN terminal t ON t.id = r.terminal_id"
                " UNION ALL SELECT id, first_seen_ms FROM terminal UNION ALL SELECT id, last_seen_ms FROM terminal)"
                " WHERE ms > 0 GROUP BY 1, 2 ON CONFLICT(terminal_id, day) DO UPDATE SET" DAY_HISTORY_MERGE,
        [ST_LOSS_INSERT] = "INSERT INTO loss(terminal_id, from_seq, to_seq, recorded_ms, reason, kind)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        [ST_LOSSES] = SELECT_LOSSES " ORDER BY id",
        [ST_LOSSES_SCOPED] = SELECT_LOSSES " AND terminal_id" IN_SCOPE " ORDER BY id",
        /* Rows of a terminal never overlap: the one starting last at or
         * before ?3 is the only candidate overlapping ?2..?3 from the left. */
        [ST_LOSS_FIND] = "SELECT id, from_seq, to_seq, recorded_ms, reason, kind FROM loss WHERE terminal_id = ?1"
                         " AND from_seq <= ?3 AND to_seq >= ?2 ORDER BY from_seq LIMIT 1",
        [ST_LOSS_DELETE] = "DELETE FROM loss WHERE id = ?1",
        [ST_FAULT_FIND] = "SELECT id FROM fault WHERE terminal_id = ?1 AND code = ?2 AND source = ?3"
                          " AND (cleared_ms = 0 OR cleared_ms >= ?4)",
        [ST_FAULT_INSERT] = "INSERT INTO fault(terminal_id, code, source, severity, detail, raised_ms, cleared_ms)"
                            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0)",
        [ST_FAULT_CLEAR] = "UPDATE fault SET cleared_ms = ?4 WHERE terminal_id = ?1 AND code = ?2 AND source = ?3"
                           " AND cleared_ms = 0 AND raised_ms <= ?4",
        [ST_FAULTS] = SELECT_FAULTS " ORDER BY terminal_id, raised_ms, id",
        [ST_FAULTS_SCOPED] = SELECT_FAULTS " AND terminal_id" IN_SCOPE " ORDER BY terminal_id, raised_ms, id",
        [ST_INV_DELETE] = "DELETE FROM inventory WHERE terminal_id = ?1",
        [ST_INV_INSERT] = "INSERT INTO inventory(terminal_id, idx, kind, subsystem, bus, vendor_id, model_id,"
                          " vendor, model, serial, syspath) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        [ST_INVENTORY] = SELECT_INVENTORY " ORDER BY terminal_id, idx",
        [ST_INVENTORY_SCOPED] = SELECT_INVENTORY " WHERE terminal_id" IN_SCOPE " ORDER BY terminal_id, idx",
        [ST_PERIPH_INSERT] = "INSERT INTO periph_event(terminal_id, seq, ts, action, kind, subsystem, vendor,"
                             " model, serial, syspath) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        [ST_EVENT_INSERT] = "INSERT INTO terminal_event(terminal_id, seq, ts, code, severity, detail)"
                            " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        [ST_EVENTS] = SELECT_EVENTS " ORDER BY terminal_id, ts, seq",
        [ST_EVENTS_SCOPED] = SELECT_EVENTS " AND terminal_id" IN_SCOPE " ORDER BY terminal_id, ts, seq",
        [ST_NET_SET] = "INSERT INTO terminal_net(terminal_id, seq, ifname, mac, ipv4, prefix)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(terminal_id) DO UPDATE SET seq = excluded.seq,"
                       " ifname = excluded.ifname, mac = excluded.mac, ipv4 = excluded.ipv4,"
                       " prefix = excluded.prefix WHERE excluded.seq > terminal_net.seq",
        [ST_NETS] = SELECT_NETS " ORDER BY terminal_id",
        [ST_NETS_SCOPED] = SELECT_NETS " WHERE terminal_id" IN_SCOPE " ORDER BY terminal_id",
        [ST_AUDIT_PUT] = "INSERT INTO audit(cmd_id, operator, sent_ms, done_ms, county, school, terminal, via, op, args, result, detail) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                         " ON CONFLICT(cmd_id) DO UPDATE SET done_ms = excluded.done_ms, via = excluded.via,"
                         " result = excluded.result, detail = excluded.detail",
        [ST_AUDITS] = "SELECT cmd_id, operator, sent_ms, done_ms, county, school, terminal, via, op, args, result, detail FROM audit WHERE (?1 IS NULL OR county = ?1) AND (?2 IS NULL OR school = ?2)"
                      " AND sent_ms >= ?3 AND sent_ms < ?4 ORDER BY sent_ms, cmd_id",
        [ST_COUNTER_ADD] = "INSERT INTO counter(name, value) VALUES(?1, ?2)"
                           " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        [ST_COUNTERS] = "SELECT name, value FROM counter ORDER BY name",
        [ST_RAW_BOUNDS] = "SELECT min(id), max(id) FROM raw",
        [ST_RAW_RECV_AT] = "SELECT recv_ms FROM raw WHERE id >= ?1 ORDER BY id LIMIT 1",
        [ST_PRUNE_RAW] = "DELETE FROM raw WHERE id < ?1",
        [ST_PRUNE_USAGE] = "DELETE FROM usage WHERE end_ms < ?1",
};

struct sqlite_store {
        struct bbt_store base; /* first: the store is cast to and from it */
        sqlite3 *db;
        sqlite3_stmt *st[ST__COUNT];
        bool in_tx;
        bool has_rule;            /* rule is the recorded day rule (read once; forgotten on rollback) */
        struct bbt_day_rule rule;
        struct bbt_agg agg;       /* the schools day_add has seen, the school-day changes not written yet */
        /* terminal id → 1 + the latest day whose seen bit day_add wrote (it
         * writes a day's bit once, not for every message); 0: none. */
        uint32_t *seen_marked;
        size_t cap_seen_marked;
};

static struct sqlite_store *of(struct bbt_store *s)
{
        return (struct sqlite_store *)s;
}

static int fail(struct sqlite_store *q, int rc, const char *what)
{
        snprintf(q->base.error, sizeof(q->base.error), "%s: %s", what, sqlite3_errmsg(q->db));
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                return -EEXIST;
        switch (rc & 0xff) {
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EPROTO;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        default:
                return -EIO;
        }
}

/* The prepared statement ID, reset and with bindings cleared; NULL on failure. */
static sqlite3_stmt *stmt(struct sqlite_store *q, enum stmt id)
{
        int rc;

        if (!q->st[id]) {
                rc = sqlite3_prepare_v3(q->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &q->st[id], NULL);
                if (rc != SQLITE_OK) {
                        fail(q, rc, "prepare");
                        return NULL;
                }
        }
        sqlite3_reset(q->st[id]);
        sqlite3_clear_bindings(q->st[id]);
        return q->st[id];
}

/* Steps a statement that returns no rows. */
static int run(struct sqlite_store *q, sqlite3_stmt *s, const char *what)
{
        int rc = sqlite3_step(s);

        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                return fail(q, rc, what);
        sqlite3_reset(s);
        return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *text)
{
        sqlite3_bind_text(s, i, text ? text : "", -1, SQLITE_STATIC);
}

static void copy_col(sqlite3_stmt *s, int i, char *buf, size_t size)
{
        const unsigned char *t = sqlite3_column_text(s, i);
        size_t n = t ? strnlen((const char *)t, (size_t)sqlite3_column_bytes(s, i)) : 0;

        /* As snprintf("%s") would, truncated to SIZE - 1 bytes, without its cost per row. */
        if (n >= size)
                n = size - 1;
        if (n)
                memcpy(buf, t, n);
        buf[n] = '\0';
}

/* Statement ID, or its _SCOPED twin with SCOPE's county and school bound
 * if it names either; with LO and HI bound to ?3 and ?4 if the statement
 * has time bounds. NULL on failure. */
static sqlite3_stmt *scoped(struct sqlite_store *q, enum stmt id, const struct bbt_store_scope *scope, int64_t lo,
                            int64_t hi)
{
        bool by_terminal = scope->county || scope->school;
        sqlite3_stmt *st = stmt(q, by_terminal ? id + 1 : id);

        if (!st)
                return NULL;
        /* Unbound parameters are NULL: every county, every school. */
        if (scope->county)
                bind_text(st, 1, scope->county);
        if (scope->school)
                bind_text(st, 2, scope->school);
        if (sqlite3_bind_parameter_count(st) >= 4) {
                sqlite3_bind_int64(st, 3, lo);
                sqlite3_bind_int64(st, 4, hi);
        }
        return st;
}

static void seen_marked_drop(struct sqlite_store *q)
{
        if (q->cap_seen_marked)
                memset(q->seen_marked, 0, q->cap_seen_marked * sizeof(*q->seen_marked));
}

/* Adds T to day DAY of SCHOOL's row in school_span. */
static int school_span_add(struct sqlite_store *q, const struct bbt_agg_school *school, int32_t day,
                           const struct bbt_day_totals *t)
{
        sqlite3_stmt *st = stmt(q, ST_SCHOOL_SPAN_GET);
        struct bbt_agg_span sd;
        uint8_t buf[BBT_AGG_SPAN_BYTES_MAX];
        int i = day & (BBT_STORE_MARK_DAYS - 1), rc, r = 0;
        size_t n;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, bbt_agg_span_of(day));
        bind_text(st, 2, school->county);
        bind_text(st, 3, school->school);
        memset(&sd, 0, sizeof(sd));
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW &&
            bbt_agg_span_decode((uint32_t)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                        (size_t)sqlite3_column_bytes(st, 1), &sd) < 0) {
                snprintf(q->base.error, sizeof(q->base.error), "day aggregates: school %s/%s, days from %lld: bad row",
                         school->county, school->school, (long long)bbt_agg_span_of(day) * BBT_STORE_MARK_DAYS);
                r = -EIO;
        } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                r = fail(q, rc, "day aggregates");
        }
        sqlite3_reset(st);
        if (r < 0)
                return r;
        sd.present |= 1u << i;
        bbt_day_totals_add(&sd.t[i], t);
        n = bbt_agg_span_encode(&sd, buf);
        st = stmt(q, ST_SCHOOL_SPAN_PUT);
        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, bbt_agg_span_of(day));
        bind_text(st, 2, school->county);
        bind_text(st, 3, school->school);
        sqlite3_bind_int64(st, 4, sd.present);
        sqlite3_bind_blob(st, 5, buf, (int)n, SQLITE_TRANSIENT);
        return run(q, st, "day aggregates");
}

/* Writes every pending school-day change. */
static int pending_write(struct sqlite_store *q)
{
        int r = 0;

        for (size_t i = 0; r == 0 && q->agg.n_pending && i < q->agg.cap_pending; i++) {
                const struct bbt_agg_pending *p = &q->agg.pending[i];

                if (p->used)
                        r = school_span_add(q, &q->agg.schools[p->school], p->day, &p->t);
        }
        if (r == 0)
                bbt_agg_pending_drop(&q->agg);
        return r;
}

/* *RET: the index into q->agg.schools of terminal TERMINAL_ID's school;
 * -ENOENT if there is no such terminal. */
static int school_of(struct sqlite_store *q, int64_t terminal_id, int32_t *ret)
{
        char county[7], school[BBT_ID_MAX + 1];
        sqlite3_stmt *st;
        int32_t i = bbt_agg_school_cached(&q->agg, terminal_id);
        int rc;

        if (i >= 0) {
                *ret = i;
                return 0;
        }
        st = stmt(q, ST_TERMINAL_SCHOOL);
        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(st);
                return rc == SQLITE_DONE ? -ENOENT : fail(q, rc, "day aggregates");
        }
        copy_col(st, 0, county, sizeof(county));
        copy_col(st, 1, school, sizeof(school));
        sqlite3_reset(st);
        i = bbt_agg_school_add(&q->agg, terminal_id, county, school);
        if (i < 0)
                return i;
        *ret = i;
        return 0;
}

static int sq_begin(struct bbt_store *s)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_BEGIN);
        int r;

        if (!st)
                return -EIO;
        r = run(q, st, "begin");
        if (r == 0)
                q->in_tx = true;
        return r;
}

static int sq_commit(struct bbt_store *s)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st;
        int r = pending_write(q);

        if (r < 0)
                return r;
        st = stmt(q, ST_COMMIT);
        if (!st)
                return -EIO;
        r = run(q, st, "commit");
        if (r == 0)
                q->in_tx = false;
        return r;
}

static int sq_rollback(struct bbt_store *s)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st;

        if (!q->in_tx)
                return 0;
        q->in_tx = false;
        q->has_rule = false;
        bbt_agg_pending_drop(&q->agg);
        /* A terminal inserted in the transaction is gone, and its id may come again for another. */
        bbt_agg_forget_terminals(&q->agg);
        seen_marked_drop(q);
        st = stmt(q, ST_ROLLBACK);
        return st ? run(q, st, "rollback") : -EIO;
}

static int sq_meta_get(struct bbt_store *s, const char *key, int64_t *ret)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_META_GET);
        int rc;

        if (!st)
                return -EIO;
        bind_text(st, 1, key);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int64(st, 0);
                sqlite3_reset(st);
                return 0;
        }
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? -ENOENT : fail(q, rc, "meta");
}

/* SQLite's own marker: it changes when another connection commits. */
static int sq_data_version(struct bbt_store *s, uint64_t *ret)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_DATA_VERSION);
        int rc;

        if (!st)
                return -EIO;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return rc == SQLITE_ROW ? 0 : fail(q, rc, "data_version");
}

static int sq_meta_set(struct bbt_store *s, const char *key, int64_t value)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_META_SET);

        if (!st)
                return -EIO;
        bind_text(st, 1, key);
        sqlite3_bind_int64(st, 2, value);
        return run(q, st, "meta");
}

static void bind_terminal(sqlite3_stmt *st, const struct bbt_store_terminal *t)
{
        bind_text(st, 1, t->county);
        bind_text(st, 2, t->school);
        bind_text(st, 3, t->terminal);
        sqlite3_bind_int64(st, 4, t->first_seq);
        sqlite3_bind_int64(st, 5, t->high_seq);
        sqlite3_bind_int64(st, 6, t->received);
        sqlite3_bind_int64(st, 7, t->duplicates);
        sqlite3_bind_int64(st, 8, t->lost);
        sqlite3_bind_int64(st, 9, t->first_seen_ms);
        sqlite3_bind_int64(st, 10, t->last_seen_ms);
        sqlite3_bind_int64(st, 11, t->last_active_ms);
        sqlite3_bind_int(st, 12, t->online);
        sqlite3_bind_int64(st, 13, t->boot);
        sqlite3_bind_int64(st, 14, t->online_since_ms);
        sqlite3_bind_int64(st, 15, t->offline_since_ms);
        sqlite3_bind_int(st, 16, (int)t->offline_reason);
        sqlite3_bind_int(st, 17, t->skew_known);
        sqlite3_bind_int64(st, 18, t->skew_ms);
        sqlite3_bind_int64(st, 19, t->spool_dropped);
        bind_text(st, 20, t->version);
        bind_text(st, 21, t->hostname);
        bind_text(st, 22, t->os);
        bind_text(st, 23, t->machine_id);
        bind_text(st, 24, t->last_hb);
        sqlite3_bind_int64(st, 25, t->inventory_seq);
        sqlite3_bind_int64(st, 26, t->skipped);
        sqlite3_bind_int64(st, 27, t->conflicts);
}

static int sq_terminal_insert(struct bbt_store *s, struct bbt_store_terminal *t)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_TERMINAL_INSERT);
        int r;

        if (!st)
                return -EIO;
        bind_terminal(st, t);
        r = run(q, st, "terminal");
        if (r == 0)
                t->id = sqlite3_last_insert_rowid(q->db);
        return r;
}

static int sq_terminal_update(struct bbt_store *s, const struct bbt_store_terminal *t)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_TERMINAL_UPDATE);

        if (!st)
                return -EIO;
        bind_terminal(st, t);
        sqlite3_bind_int64(st, 28, t->id);
        return run(q, st, "terminal");
}

/* Steps ST row by row through ROW_CB (which reads the columns and calls the
 * user's callback), stopping at the first non-zero result. */
static int each(struct sqlite_store *q, sqlite3_stmt *st, const char *what,
                int (*row_cb)(sqlite3_stmt *st, void *cb, void *u), void *cb, void *u)
{
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = row_cb(st, cb, u);
                if (r != 0)
                        break;
        }
        sqlite3_reset(st);
        if (r != 0)
                return r;
        return rc == SQLITE_DONE ? 0 : fail(q, rc, what);
}

static int terminal_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_terminal *) = (int (*)(void *, const struct bbt_store_terminal *))cb;
        struct bbt_store_terminal t;

        memset(&t, 0, sizeof(t));
        copy_col(st, 0, t.county, sizeof(t.county));
        copy_col(st, 1, t.school, sizeof(t.school));
        copy_col(st, 2, t.terminal, sizeof(t.terminal));
        t.first_seq = sqlite3_column_int64(st, 3);
        t.high_seq = sqlite3_column_int64(st, 4);
        t.received = sqlite3_column_int64(st, 5);
        t.duplicates = sqlite3_column_int64(st, 6);
        t.lost = sqlite3_column_int64(st, 7);
        t.first_seen_ms = sqlite3_column_int64(st, 8);
        t.last_seen_ms = sqlite3_column_int64(st, 9);
        t.last_active_ms = sqlite3_column_int64(st, 10);
        t.online = sqlite3_column_int(st, 11) != 0;
        t.boot = sqlite3_column_int64(st, 12);
        t.online_since_ms = sqlite3_column_int64(st, 13);
        t.offline_since_ms = sqlite3_column_int64(st, 14);
        t.offline_reason = (enum bbt_offline_reason)sqlite3_column_int(st, 15);
        t.skew_known = sqlite3_column_int(st, 16) != 0;
        t.skew_ms = sqlite3_column_int64(st, 17);
        t.spool_dropped = sqlite3_column_int64(st, 18);
        copy_col(st, 19, t.version, sizeof(t.version));
        copy_col(st, 20, t.hostname, sizeof(t.hostname));
        copy_col(st, 21, t.os, sizeof(t.os));
        copy_col(st, 22, t.machine_id, sizeof(t.machine_id));
        copy_col(st, 23, t.last_hb, sizeof(t.last_hb));
        t.inventory_seq = sqlite3_column_int64(st, 24);
        t.skipped = sqlite3_column_int64(st, 25);
        t.conflicts = sqlite3_column_int64(st, 26);
        t.id = sqlite3_column_int64(st, 27);
        return fn(u, &t);
}

static int sq_terminals_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_terminal *t), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_TERMINALS, scope, 0, 0);

        return st ? each(q, st, "terminals", terminal_row, (void *)cb, u) : -EIO;
}

static int terminal_brief_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_terminal_brief *) =
                (int (*)(void *, const struct bbt_store_terminal_brief *))cb;
        struct bbt_store_terminal_brief t;

        t.id = sqlite3_column_int64(st, 0);
        copy_col(st, 1, t.county, sizeof(t.county));
        copy_col(st, 2, t.school, sizeof(t.school));
        copy_col(st, 3, t.terminal, sizeof(t.terminal));
        t.first_seq = sqlite3_column_int64(st, 4);
        t.high_seq = sqlite3_column_int64(st, 5);
        t.received = sqlite3_column_int64(st, 6);
        t.duplicates = sqlite3_column_int64(st, 7);
        t.lost = sqlite3_column_int64(st, 8);
        t.skipped = sqlite3_column_int64(st, 9);
        t.conflicts = sqlite3_column_int64(st, 10);
        t.spool_dropped = sqlite3_column_int64(st, 11);
        t.first_seen_ms = sqlite3_column_int64(st, 12);
        t.online = sqlite3_column_int(st, 13) != 0;
        copy_col(st, 14, t.version, sizeof(t.version));
        return fn(u, &t);
}

static int sq_terminals_brief_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                                   int (*cb)(void *u, const struct bbt_store_terminal_brief *t), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_TERMINALS_BRIEF, scope, 0, 0);

        return st ? each(q, st, "terminals", terminal_brief_row, (void *)cb, u) : -EIO;
}

static int sq_gaps_replace(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_gap *gaps, size_t n)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_GAP_DELETE);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        r = run(q, st, "gap");
        for (size_t i = 0; r == 0 && i < n; i++) {
                st = stmt(q, ST_GAP_INSERT);
                if (!st)
                        return -EIO;
                sqlite3_bind_int64(st, 1, terminal_id);
                sqlite3_bind_int64(st, 2, gaps[i].from);
                sqlite3_bind_int64(st, 3, gaps[i].to);
                sqlite3_bind_int64(st, 4, gaps[i].detected_ms);
                sqlite3_bind_int(st, 5, (int)gaps[i].state);
                sqlite3_bind_int(st, 6, gaps[i].attempts);
                sqlite3_bind_int64(st, 7, gaps[i].changed_ms);
                bind_text(st, 8, gaps[i].cmd_id);
                sqlite3_bind_int64(st, 9, gaps[i].boot);
                r = run(q, st, "gap");
        }
        return r;
}

static int gap_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, int64_t, const struct bbt_store_gap *) =
                (int (*)(void *, int64_t, const struct bbt_store_gap *))cb;
        struct bbt_store_gap g;

        memset(&g, 0, sizeof(g));
        g.from = sqlite3_column_int64(st, 1);
        g.to = sqlite3_column_int64(st, 2);
        g.detected_ms = sqlite3_column_int64(st, 3);
        g.state = (enum bbt_gap_state)sqlite3_column_int(st, 4);
        g.attempts = sqlite3_column_int(st, 5);
        g.changed_ms = sqlite3_column_int64(st, 6);
        copy_col(st, 7, g.cmd_id, sizeof(g.cmd_id));
        g.boot = sqlite3_column_int64(st, 8);
        return fn(u, sqlite3_column_int64(st, 0), &g);
}

static int sq_gaps_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                        int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_GAPS, scope, 0, 0);

        return st ? each(q, st, "gaps", gap_row, (void *)cb, u) : -EIO;
}

/* terminal_lock's row: the terminal and its number of gaps. */
struct locked_row {
        struct bbt_store_terminal *t;
        int64_t gaps;
        bool found;
};

static int locked_cb(void *u, const struct bbt_store_terminal *t)
{
        struct locked_row *l = u;

        *l->t = *t;
        l->found = true;
        return 0;
}

static int locked_row_cb(sqlite3_stmt *st, void *cb, void *u)
{
        struct locked_row *l = u;

        l->gaps = sqlite3_column_int64(st, 28);
        return terminal_row(st, cb, u);
}

static int sq_terminal_lock(struct bbt_store *s, struct bbt_store_terminal *t, bool wait, int64_t *ret_gaps)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, t->id > 0 ? ST_TERMINAL_LOCK : ST_TERMINAL_LOCK_KEY);
        struct locked_row l = { .t = t };
        int r;

        (void)wait;
        if (!st)
                return -EIO;
        if (t->id > 0) {
                sqlite3_bind_int64(st, 1, t->id);
        } else {
                bind_text(st, 1, t->county);
                bind_text(st, 2, t->school);
                bind_text(st, 3, t->terminal);
        }
        r = each(q, st, "terminal", locked_row_cb, (void *)locked_cb, &l);
        if (r < 0)
                return r;
        if (!l.found) {
                snprintf(q->base.error, sizeof(q->base.error), "terminal: no such terminal");
                return -ENOENT;
        }
        if (ret_gaps)
                *ret_gaps = l.gaps;
        return 1;
}

static int sq_terminal_gaps_each(struct bbt_store *s, int64_t terminal_id,
                                 int (*cb)(void *u, int64_t terminal_id, const struct bbt_store_gap *g), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_TERMINAL_GAPS);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        return each(q, st, "gaps", gap_row, (void *)cb, u);
}

static int sq_raw_insert(struct bbt_store *s, int64_t terminal_id, int64_t seq, enum bbt_channel ch, int64_t ts,
                         int64_t recv_ms, uint32_t boot, const void *payload, size_t len, uint64_t hash,
                         uint64_t *ret_stored_hash)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_RAW_INSERT);
        int rc, r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        sqlite3_bind_int64(st, 2, seq);
        sqlite3_bind_int(st, 3, (int)ch);
        sqlite3_bind_int64(st, 4, ts);
        sqlite3_bind_int64(st, 5, recv_ms);
        sqlite3_bind_int64(st, 6, boot);
        sqlite3_bind_text(st, 7, payload, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, (int64_t)hash);
        r = run(q, st, "raw");
        if (r < 0)
                return r;
        if (sqlite3_changes(q->db) > 0)
                return 1;
        /* Already there: which payload (a duplicate is the same one). */
        if (ret_stored_hash) {
                *ret_stored_hash = 0;
                st = stmt(q, ST_RAW_HASH);
                if (!st)
                        return -EIO;
                sqlite3_bind_int64(st, 1, terminal_id);
                sqlite3_bind_int64(st, 2, seq);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        *ret_stored_hash = (uint64_t)sqlite3_column_int64(st, 0); /* NULL (schema 1): 0 */
                sqlite3_reset(st);
                if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                        return fail(q, rc, "raw");
        }
        return 0;
}

static int sq_raw_payload(struct bbt_store *s, int64_t terminal_id, int64_t seq, char **ret, size_t *ret_len)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_RAW_PAYLOAD);
        const unsigned char *text;
        int rc, len;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        sqlite3_bind_int64(st, 2, seq);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(st);
                return rc == SQLITE_DONE ? -ENOENT : fail(q, rc, "raw");
        }
        text = sqlite3_column_text(st, 0);
        len = sqlite3_column_bytes(st, 0);
        *ret = malloc((size_t)len + 1);
        if (!*ret) {
                sqlite3_reset(st);
                return -ENOMEM;
        }
        memcpy(*ret, text ? (const char *)text : "", (size_t)len);
        (*ret)[len] = '\0';
        *ret_len = (size_t)len;
        sqlite3_reset(st);
        return 0;
}

static int sq_conflict_add(struct bbt_store *s, const struct bbt_store_conflict *c, const void *payload, size_t len)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_CONFLICT_INSERT);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, c->terminal_id);
        sqlite3_bind_int64(st, 2, c->seq);
        sqlite3_bind_int(st, 3, (int)c->channel);
        sqlite3_bind_int64(st, 4, c->ts);
        sqlite3_bind_int64(st, 5, c->recv_ms);
        sqlite3_bind_int64(st, 6, c->boot);
        sqlite3_bind_text(st, 7, payload, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, (int64_t)c->stored_hash);
        sqlite3_bind_int64(st, 9, (int64_t)c->hash);
        return run(q, st, "conflict");
}

static int conflict_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_conflict *) = (int (*)(void *, const struct bbt_store_conflict *))cb;
        struct bbt_store_conflict c;

        memset(&c, 0, sizeof(c));
        c.terminal_id = sqlite3_column_int64(st, 0);
        c.seq = sqlite3_column_int64(st, 1);
        c.channel = (enum bbt_channel)sqlite3_column_int(st, 2);
        c.ts = sqlite3_column_int64(st, 3);
        c.recv_ms = sqlite3_column_int64(st, 4);
        c.boot = sqlite3_column_int64(st, 5);
        c.stored_hash = (uint64_t)sqlite3_column_int64(st, 6);
        c.hash = (uint64_t)sqlite3_column_int64(st, 7);
        return fn(u, &c);
}

static int sq_conflicts_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_conflict *c), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_CONFLICTS, scope, scope->since_ms, scope->until_ms);

        return st ? each(q, st, "conflict", conflict_row, (void *)cb, u) : -EIO;
}

static int sq_usage_insert(struct bbt_store *s, const struct bbt_store_usage *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_USAGE_INSERT);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, u->terminal_id);
        sqlite3_bind_int64(st, 2, u->seq);
        sqlite3_bind_int64(st, 3, u->span.start_ms);
        sqlite3_bind_int64(st, 4, u->span.end_ms);
        sqlite3_bind_int(st, 5, (int)u->span.state);
        sqlite3_bind_int64(st, 6, u->span.interactive_ms);
        sqlite3_bind_int64(st, 7, u->audio_ms);
        sqlite3_bind_int64(st, 8, u->touch);
        sqlite3_bind_int64(st, 9, u->pen);
        sqlite3_bind_int64(st, 10, u->mouse);
        sqlite3_bind_int64(st, 11, u->key);
        return run(q, st, "usage");
}

static int usage_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_usage *) = (int (*)(void *, const struct bbt_store_usage *))cb;
        struct bbt_store_usage x;

        memset(&x, 0, sizeof(x));
        x.terminal_id = sqlite3_column_int64(st, 0);
        x.seq = sqlite3_column_int64(st, 1);
        x.span.start_ms = sqlite3_column_int64(st, 2);
        x.span.end_ms = sqlite3_column_int64(st, 3);
        x.span.state = (enum bbt_usage_state)sqlite3_column_int(st, 4);
        x.span.interactive_ms = sqlite3_column_int64(st, 5);
        x.audio_ms = sqlite3_column_int64(st, 6);
        x.touch = sqlite3_column_int64(st, 7);
        x.pen = sqlite3_column_int64(st, 8);
        x.mouse = sqlite3_column_int64(st, 9);
        x.key = sqlite3_column_int64(st, 10);
        return fn(u, &x);
}

static int sq_usage_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                         int (*cb)(void *u, const struct bbt_store_usage *usage), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_USAGES, scope, scope->since_ms, scope->until_ms);

        return st ? each(q, st, "usage", usage_row, (void *)cb, u) : -EIO;
}

/* The meta keys of the day rule. */
static int sq_day_rule_get(struct bbt_store *s, struct bbt_day_rule *ret)
{
        struct sqlite_store *q = of(s);

        return bbt_agg_rule_cached(s, &q->has_rule, &q->rule, ret);
}

/* Every school-day's totals from the rollups under the rule (?1, ?2, ?3:
 * used_day_ms, used_period_ms, heartbeat_ms), in SQL: the same judgement as
 * bbt_day_totals_of() with every period. */
#define SCHOOL_DAYS_RECOUNT                                                                                          \
        " SELECT d.day, t.county, t.school, sum(d.on_ms > 0), sum(d.active_ms >= ?1),"                               \
        " sum((d.p1 >= ?2) + (d.p2 >= ?2) + (d.p3 >= ?2) + (d.p4 >= ?2) + (d.p5 >= ?2) + (d.p6 >= ?2)"              \
        " + (d.p7 >= ?2) + (d.p8 >= ?2) + (d.p9 >= ?2) + (d.p10 >= ?2) + (d.p11 >= ?2) + (d.p12 >= ?2)),"           \
        " sum(d.on_ms), sum(d.active_ms), sum(d.interactive_ms),"                                                    \
        " sum(CASE WHEN d.on_all_ms > 0 THEN min(max(d.hb_count, 0), (d.on_all_ms + ?3 - 1) / ?3) ELSE 0 END),"     \
        " sum(d.on_all_ms)"                                                                                          \
        " FROM day_rollup d JOIN terminal t ON t.id = d.terminal_id GROUP BY d.day, t.county, t.school"

/* One mark per terminal and 32 days: the bits summed are disjoint (only day
 * 15's or 31's may set the sign bit: no overflow). */
#define DAY_MARKS_RECOUNT                                                                                            \
        "INSERT INTO day_mark(span, terminal_id, powered, used, lessons_lo, lessons_hi)"                             \
        " SELECT day >> 5, terminal_id, sum(CASE WHEN on_ms > 0 THEN 1 << (day & 31) ELSE 0 END),"                   \
        " sum(CASE WHEN active_ms >= ?1 THEN 1 << (day & 31) ELSE 0 END),"                                           \
        " sum(CASE WHEN day & 16 = 0 THEN n << (4 * (day & 15)) ELSE 0 END),"                                        \
        " sum(CASE WHEN day & 16 <> 0 THEN n << (4 * (day & 15)) ELSE 0 END)"                                        \
        " FROM (SELECT terminal_id, day, on_ms, active_ms, (p1 >= ?2) + (p2 >= ?2) + (p3 >= ?2)"                     \
        " + (p4 >= ?2) + (p5 >= ?2) + (p6 >= ?2) + (p7 >= ?2) + (p8 >= ?2) + (p9 >= ?2) + (p10 >= ?2)"              \
        " + (p11 >= ?2) + (p12 >= ?2) AS n FROM day_rollup) GROUP BY day >> 5, terminal_id"

/* Deletes and recounts every day aggregate of a schema 4 store (school_day,
 * day_mark) from the rollups under R (the 3 → 4 migration). */
static int recount_day_aggregates(sqlite3 *db, const struct bbt_day_rule *r, char **msg)
{
        static const char *const steps[] = {
                "DELETE FROM school_day",
                "DELETE FROM day_mark",
                "INSERT INTO school_day(day, county, school, powered, used, periods_used, on_ms, active_ms,"
                " interactive_ms, hb_received, on_all_ms)" SCHOOL_DAYS_RECOUNT,
                DAY_MARKS_RECOUNT,
        };
        int rc = SQLITE_OK;

        for (size_t i = 0; rc == SQLITE_OK && i < BBT_ELEMENTSOF(steps); i++) {
                sqlite3_stmt *st;

                rc = sqlite3_prepare_v2(db, steps[i], -1, &st, NULL);
                if (rc != SQLITE_OK)
                        break;
                for (int k = 1; k <= sqlite3_bind_parameter_count(st); k++)
                        sqlite3_bind_int64(st, k, *bbt_agg_rule_field((struct bbt_day_rule *)r, (size_t)k - 1));
                rc = sqlite3_step(st);
                if (rc == SQLITE_DONE)
                        rc = SQLITE_OK;
                sqlite3_finalize(st);
        }
        if (rc != SQLITE_OK && msg && !*msg)
                *msg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        return rc;
}

/* SQL with the rule's values (integers) in place of its parameters ?1..?3;
 * sqlite3_free() it. NULL: no memory. */
static char *rule_sql(const char *text, const struct bbt_day_rule *r)
{
        char *src = sqlite3_mprintf("%s", text), *p;

        for (int k = 3; src && k >= 1; k--) {
                char param[16];

                snprintf(param, sizeof(param), "?%d", k);
                while (src && (p = strstr(src, param)) != NULL) {
                        char *next = sqlite3_mprintf("%.*s%lld%s", (int)(p - src), src,
                                                     (long long)*bbt_agg_rule_field((struct bbt_day_rule *)r, (size_t)k - 1),
                                                     p + strlen(param));

                        sqlite3_free(src);
                        src = next;
                }
        }
        return src;
}

/* The same for schema 5: the day aggregates packed (school_span, mark_span),
 * the marks with their seen bits. */
static int recount_day_aggregates_packed(sqlite3 *db, const struct bbt_day_rule *r, char **msg)
{
        char *days = rule_sql("SELECT * FROM (" SCHOOL_DAYS_RECOUNT ") ORDER BY 1 >> 5, 2, 3, 1", r);
        char *marks = rule_sql(MARKS_RECOUNT, r);
        int rc = days && marks ? SQLITE_OK : SQLITE_NOMEM;

        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, "DELETE FROM school_span; DELETE FROM mark_span;", NULL, NULL, msg);
        if (rc == SQLITE_OK)
                rc = school_spans_pack(db, days, msg);
        if (rc == SQLITE_OK)
                rc = mark_spans_pack(db, marks, msg);
        sqlite3_free(days);
        sqlite3_free(marks);
        if (rc != SQLITE_OK && msg && !*msg)
                *msg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        return rc;
}

static int sq_day_rule_set(struct bbt_store *s, const struct bbt_day_rule *r)
{
        struct sqlite_store *q = of(s);
        struct bbt_day_rule now;
        int e = sq_day_rule_get(s, &now);
        char *msg = NULL;
        int rc;

        if (r->used_day_ms <= 0 || r->used_period_ms <= 0 || r->heartbeat_ms <= 0) {
                snprintf(q->base.error, sizeof(q->base.error), "day rule: every threshold must be > 0");
                return -EINVAL;
        }
        if (e < 0 && e != -ENOENT)
                return e;
        if (e == 0 && memcmp(&now, r, sizeof(now)) == 0)
                return 0;
        q->has_rule = false;
        bbt_agg_pending_drop(&q->agg); /* the recount reads the rollups, which hold every change */
        e = bbt_agg_rule_write(s, r);
        if (e < 0)
                return e;
        rc = recount_day_aggregates_packed(q->db, r, &msg);
        if (rc != SQLITE_OK) {
                e = fail(q, rc, "day aggregates");
                if (msg)
                        snprintf(q->base.error, sizeof(q->base.error), "day aggregates: %s", msg);
                sqlite3_free(msg);
                return e;
        }
        q->rule = *r;
        q->has_rule = true;
        return 0;
}

static void day_from_row(sqlite3_stmt *st, int first, struct bbt_day_rollup *d)
{
        d->on_ms = sqlite3_column_int64(st, first);
        d->active_ms = sqlite3_column_int64(st, first + 1);
        d->interactive_ms = sqlite3_column_int64(st, first + 2);
        d->hb_count = sqlite3_column_int64(st, first + 3);
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                d->period_active_ms[k] = sqlite3_column_int64(st, first + 4 + k);
        d->on_all_ms = sqlite3_column_int64(st, first + 16);
}

/* A change of one terminal-day's mark: its powered and used bits and lessons
 * (MARKS), or its seen bit set (SEEN). */
struct mark_set {
        bool marks, powered, used;
        int64_t lessons;
        bool seen;
};

/* Applies C to day DAY of TERMINAL_ID's mark, in the row of its SCHOOL (into
 * q->agg.schools): read, changed, written whole. */
static int mark_change(struct sqlite_store *q, int32_t school, int64_t terminal_id, int32_t day,
                       const struct mark_set *c)
{
        const struct bbt_agg_school *sc = &q->agg.schools[school];
        sqlite3_stmt *st = stmt(q, ST_MARK_SPAN_GET);
        struct mark_list l = { 0 };
        struct mark_entry *e = NULL;
        uint32_t bit = 1u << ((uint32_t)day & (BBT_STORE_MARK_DAYS - 1));
        unsigned shift = 4 * ((uint32_t)day & 15);
        int hi = ((uint32_t)day & 16) != 0, rc, r = 0;
        uint8_t *buf;
        size_t i, n;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, bbt_agg_span_of(day));
        bind_text(st, 2, sc->county);
        bind_text(st, 3, sc->school);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = marks_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &l);
        else if (rc != SQLITE_DONE)
                r = fail(q, rc, "day aggregates");
        sqlite3_reset(st);
        if (r == -EINVAL) {
                snprintf(q->base.error, sizeof(q->base.error), "day aggregates: marks of %s/%s, days from %lld: bad row",
                         sc->county, sc->school, (long long)bbt_agg_span_of(day) * BBT_STORE_MARK_DAYS);
                r = -EIO;
        }
        /* By terminal id: its place, inserted if new. */
        for (i = 0; r == 0 && i < l.n && l.e[i].terminal_id < terminal_id; i++)
                ;
        if (r == 0 && (i == l.n || l.e[i].terminal_id != terminal_id)) {
                r = bbt_array_reserve((void **)&l.e, &l.cap, l.n + 1, sizeof(*l.e));
                if (r == 0) {
                        memmove(&l.e[i + 1], &l.e[i], (l.n - i) * sizeof(*l.e));
                        l.e[i] = (struct mark_entry){ .terminal_id = terminal_id };
                        l.n++;
                }
        }
        if (r == 0) {
                e = &l.e[i];
                if (c->marks) {
                        e->powered = (e->powered & ~bit) | (c->powered ? bit : 0);
                        e->used = (e->used & ~bit) | (c->used ? bit : 0);
                        e->lessons[hi] = (e->lessons[hi] & ~((uint64_t)0xf << shift)) |
                                         ((uint64_t)c->lessons & 0xf) << shift;
                }
                if (c->seen)
                        e->seen |= bit;
        }
        buf = r == 0 ? malloc(l.n * MARK_BYTES) : NULL;
        if (r == 0 && !buf)
                r = -ENOMEM;
        if (r == 0) {
                n = marks_encode(l.e, l.n, buf);
                st = stmt(q, ST_MARK_SPAN_PUT);
                if (!st) {
                        r = -EIO;
                } else {
                        sqlite3_bind_int64(st, 1, bbt_agg_span_of(day));
                        bind_text(st, 2, sc->county);
                        bind_text(st, 3, sc->school);
                        sqlite3_bind_blob(st, 4, buf, (int)n, SQLITE_STATIC);
                        r = run(q, st, "day aggregates");
                }
        }
        free(buf);
        free(l.e);
        return r;
}

/* The day aggregates follow one terminal-day going from BEFORE to AFTER. */
static int aggregates_add(struct sqlite_store *q, int64_t terminal_id, int32_t day, const struct bbt_day_rollup *before,
                          const struct bbt_day_rollup *after)
{
        struct bbt_day_totals change;
        struct bbt_agg_mark m;
        struct mark_set set;
        int32_t school = 0;
        int r, k;

        r = sq_day_rule_get(&q->base, &q->rule);
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
                r = pending_write(q); /* outside a transaction each write commits alone */
        if (r < 0 || k == 1)
                return r;
        set = (struct mark_set){ .marks = true, .powered = m.powered != 0, .used = m.used != 0,
                                 .lessons = (int64_t)((uint64_t)(m.lo | m.hi) >> (4 * ((uint32_t)day & 15)) & 0xf) };
        return mark_change(q, school, terminal_id, day, &set);
}

/* Sets the seen bit of TERMINAL_ID's DAY in its day mark, once a day. */
static int seen_mark(struct sqlite_store *q, int64_t terminal_id, int32_t day)
{
        static const struct mark_set seen = { .seen = true };
        bool cache = terminal_id > 0 && day >= 0 && (uint64_t)terminal_id < SIZE_MAX / sizeof(*q->seen_marked);
        int32_t school = 0;
        int r;

        if (cache && (size_t)terminal_id < q->cap_seen_marked && q->seen_marked[terminal_id] == (uint32_t)day + 1)
                return 0;
        r = school_of(q, terminal_id, &school);
        if (r == -ENOENT)
                return 0; /* a rollup of no terminal: no school to keep its mark under */
        if (r == 0)
                r = mark_change(q, school, terminal_id, day, &seen);
        if (r < 0 || !cache)
                return r;
        if ((size_t)terminal_id >= q->cap_seen_marked) {
                size_t had = q->cap_seen_marked;

                if (bbt_array_reserve((void **)&q->seen_marked, &q->cap_seen_marked, (size_t)terminal_id + 1,
                                      sizeof(*q->seen_marked)) < 0)
                        return 0; /* only a cache */
                memset(q->seen_marked + had, 0, (q->cap_seen_marked - had) * sizeof(*q->seen_marked));
        }
        q->seen_marked[terminal_id] = (uint32_t)day + 1;
        return 0;
}

static int sq_day_add(struct bbt_store *s, int64_t terminal_id, const struct bbt_day_rollup *d)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_DAY_ADD);
        struct bbt_day_rollup after, before;
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        sqlite3_bind_int(st, 2, d->day);
        sqlite3_bind_int64(st, 3, d->on_ms);
        sqlite3_bind_int64(st, 4, d->active_ms);
        sqlite3_bind_int64(st, 5, d->interactive_ms);
        sqlite3_bind_int64(st, 6, d->hb_count);
        for (int k = 0; k < BBT_PERIODS_MAX; k++)
                sqlite3_bind_int64(st, 7 + k, d->period_active_ms[k]);
        sqlite3_bind_int64(st, 19, d->on_all_ms);
        sqlite3_bind_int64(st, 20, d->first_msg_ms);
        sqlite3_bind_int64(st, 21, d->last_msg_ms);
        sqlite3_bind_int64(st, 22, d->last_active_ms);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(st);
                return fail(q, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "rollup");
        }
        memset(&after, 0, sizeof(after));
        day_from_row(st, 0, &after);
        rc = sqlite3_reset(st);
        if (rc != SQLITE_OK)
                return fail(q, rc, "rollup");
        /* Before this add: the row now less what was added. */
        bbt_day_rollup_before(&after, d, &before);
        rc = aggregates_add(q, terminal_id, d->day, &before, &after);
        return rc == 0 && d->last_msg_ms > 0 ? seen_mark(q, terminal_id, d->day) : rc;
}

/* Adds the marks SRC gives (mark_spans_pack) to mark_span. */
static int marks_pack(struct sqlite_store *q, const char *src, const char *what)
{
        char *msg = NULL;
        int rc = mark_spans_pack(q->db, src, &msg), r = 0;

        if (rc != SQLITE_OK) {
                r = fail(q, rc, what);
                if (msg)
                        snprintf(q->base.error, sizeof(q->base.error), "%s: %s", what, msg);
        }
        sqlite3_free(msg);
        return r;
}

static int sq_days_clear(struct bbt_store *s)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_DAYS_CLEAR);
        int r = st ? run(q, st, "rollup") : -EIO;

        /* With no time on, every aggregate counts 0 (the rule's thresholds are > 0). */
        bbt_agg_pending_drop(&q->agg);
        for (enum stmt id = ST_SCHOOL_DAYS_CLEAR; r == 0 && id <= ST_DAY_MARKS_CLEAR; id++) {
                st = stmt(q, id);
                r = st ? run(q, st, "day aggregates") : -EIO;
        }
        /* The seen bits stay: the rollups keep their message times. */
        return r == 0 ? marks_pack(q, MARKS_SEEN_ONLY, "day aggregates") : r;
}

static int day_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, int64_t, const struct bbt_day_rollup *) =
                (int (*)(void *, int64_t, const struct bbt_day_rollup *))cb;
        struct bbt_day_rollup d;

        memset(&d, 0, sizeof(d));
        d.day = sqlite3_column_int(st, 1);
        day_from_row(st, 2, &d);
        d.first_msg_ms = sqlite3_column_int64(st, 19);
        d.last_msg_ms = sqlite3_column_int64(st, 20);
        d.last_active_ms = sqlite3_column_int64(st, 21);
        return fn(u, sqlite3_column_int64(st, 0), &d);
}

static int sq_days_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                        int (*cb)(void *u, int64_t terminal_id, const struct bbt_day_rollup *d), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_DAYS, scope, scope->from_day, scope->to_day);

        return st ? each(q, st, "rollup", day_row, (void *)cb, u) : -EIO;
}

/* A school's 32 days as they are kept: a row of school_span each, with only
 * the days of the scope present. */
static int sq_school_spans_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                                int (*cb)(void *u, const struct bbt_store_school_span *d), void *u)
{
        struct sqlite_store *q = of(s);
        struct bbt_store_school_span *d;
        struct bbt_agg_span sd;
        sqlite3_stmt *st;
        int r = pending_write(q), rc = SQLITE_DONE;

        if (r < 0)
                return r;
        if (scope->from_day > scope->to_day)
                return 0;
        st = scoped(q, ST_SCHOOL_DAYS, scope, bbt_agg_span_of(scope->from_day), bbt_agg_span_of(scope->to_day));
        if (!st)
                return -EIO;
        d = malloc(sizeof(*d));
        if (!d)
                return -ENOMEM;
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t first = sqlite3_column_int64(st, 2) * BBT_STORE_MARK_DAYS;

                copy_col(st, 0, d->county, sizeof(d->county));
                copy_col(st, 1, d->school, sizeof(d->school));
                if (bbt_agg_span_decode((uint32_t)sqlite3_column_int64(st, 3), sqlite3_column_blob(st, 4),
                                (size_t)sqlite3_column_bytes(st, 4), &sd) < 0) {
                        snprintf(q->base.error, sizeof(q->base.error),
                                 "day aggregates: school %s/%s, days from %lld: bad row", d->county, d->school,
                                 (long long)first);
                        r = -EIO;
                        break;
                }
                d->first_day = (int32_t)first;
                d->present = sd.present & bbt_agg_span_days_in(first, scope->from_day, scope->to_day);
                memcpy(d->t, sd.t, sizeof(d->t));
                if (d->present)
                        r = cb(u, d);
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = fail(q, rc, "day aggregates");
        sqlite3_reset(st);
        free(d);
        return r;
}

/* Scopes with a county or school filter their rows by the row's own columns. */
static int sq_school_days_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                               int (*cb)(void *u, const struct bbt_store_school_day *d), void *u)
{
        struct sqlite_store *q = of(s);
        struct bbt_agg_span_rows v = { 0 };
        sqlite3_stmt *st;
        int r = pending_write(q), rc = SQLITE_DONE; /* a transaction reads its own writes */

        if (r < 0)
                return r;
        if (scope->from_day > scope->to_day)
                return 0;
        st = scoped(q, ST_SCHOOL_DAYS, scope, bbt_agg_span_of(scope->from_day), bbt_agg_span_of(scope->to_day));
        if (!st)
                return -EIO;
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t span = sqlite3_column_int64(st, 2);
                struct bbt_agg_span_row *row;

                r = bbt_agg_span_rows_next(&v, span, scope, cb, u, &row);
                if (r != 0)
                        break;
                copy_col(st, 0, row->county, sizeof(row->county));
                copy_col(st, 1, row->school, sizeof(row->school));
                if (bbt_agg_span_decode((uint32_t)sqlite3_column_int64(st, 3), sqlite3_column_blob(st, 4),
                                        (size_t)sqlite3_column_bytes(st, 4), &row->sd) < 0) {
                        snprintf(q->base.error, sizeof(q->base.error),
                                 "day aggregates: school %s/%s, days from %lld: bad row", row->county, row->school,
                                 (long long)span * BBT_STORE_MARK_DAYS);
                        r = -EIO;
                        break;
                }
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = fail(q, rc, "day aggregates");
        sqlite3_reset(st);
        if (r == 0 && v.n)
                r = bbt_agg_span_rows_give(&v, scope, cb, u);
        free(v.row);
        return r;
}

static int cmp_mark_entry(const void *a, const void *b)
{
        const struct mark_entry *x = a, *y = b;

        return x->terminal_id < y->terminal_id ? -1 : x->terminal_id > y->terminal_id;
}

/* Gives L's marks (one span's, of every school read) to CB by terminal id:
 * through a table by id (*BY_ID, reused) when the ids are dense enough, as
 * they are (a store numbers its terminals from 1), else sorted. */
static int marks_by_id(struct mark_list *l, size_t **by_id, size_t *cap, int64_t span,
                       int (*cb)(void *u, int64_t span, const struct mark_entry *e), void *u)
{
        int64_t max = 0;
        bool table = true;
        int r = 0;

        for (size_t i = 0; i < l->n; i++) {
                if (l->e[i].terminal_id < 1)
                        table = false;
                else if (l->e[i].terminal_id > max)
                        max = l->e[i].terminal_id;
        }
        if (table && (uint64_t)max > 4 * (uint64_t)l->n + 1024)
                table = false;
        if (table && bbt_array_reserve((void **)by_id, cap, (size_t)max + 1, sizeof(**by_id)) < 0)
                table = false;
        if (table) {
                memset(*by_id, 0, ((size_t)max + 1) * sizeof(**by_id));
                for (size_t i = 0; table && i < l->n; i++) {
                        size_t *slot = &(*by_id)[l->e[i].terminal_id];

                        table = *slot == 0; /* an id twice: sort them instead */
                        *slot = i + 1;
                }
        }
        if (!table) {
                qsort(l->e, l->n, sizeof(*l->e), cmp_mark_entry);
                for (size_t i = 0; r == 0 && i < l->n; i++)
                        r = cb(u, span, &l->e[i]);
                return r;
        }
        for (int64_t id = 1; r == 0 && id <= max; id++)
                if ((*by_id)[id])
                        r = cb(u, span, &l->e[(*by_id)[id] - 1]);
        return r;
}

/* Every mark in the rows of spans LO..HI of the schools in SCOPE, by span,
 * then terminal id: CB(U, SPAN, MARK). */
static int marks_each(struct sqlite_store *q, const struct bbt_store_scope *scope, int64_t lo, int64_t hi,
                      int (*cb)(void *u, int64_t span, const struct mark_entry *e), void *u)
{
        struct mark_list l = { 0 };
        size_t *by_id = NULL, cap_by_id = 0;
        sqlite3_stmt *st = scoped(q, ST_DAY_MARKS, scope, lo, hi);
        int64_t span = 0;
        int rc = SQLITE_DONE, r = 0;

        if (!st)
                return -EIO;
        for (;;) {
                bool row = r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW;

                if (l.n && (!row || sqlite3_column_int64(st, 0) != span)) {
                        r = marks_by_id(&l, &by_id, &cap_by_id, span, cb, u);
                        l.n = 0;
                }
                if (!row || r != 0)
                        break;
                span = sqlite3_column_int64(st, 0);
                r = marks_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &l);
                if (r == -EINVAL) {
                        snprintf(q->base.error, sizeof(q->base.error), "day aggregates: marks of days from %lld: bad row",
                                 (long long)span * BBT_STORE_MARK_DAYS);
                        r = -EIO;
                }
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = fail(q, rc, "day aggregates");
        sqlite3_reset(st);
        free(l.e);
        free(by_id);
        return r;
}

struct day_marks_cb {
        int (*fn)(void *u, const struct bbt_store_day_marks *m);
        void *u;
};

static int day_mark_of(void *u, int64_t span, const struct mark_entry *e)
{
        const struct day_marks_cb *c = u;
        struct bbt_store_day_marks m = {
                .terminal_id = e->terminal_id,
                .first_day = (int32_t)(span * BBT_STORE_MARK_DAYS),
                .powered = e->powered,
                .used = e->used,
                .lessons = { e->lessons[0], e->lessons[1] },
        };

        return c->fn(c->u, &m);
}

static int sq_day_marks_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_day_marks *m), void *u)
{
        struct day_marks_cb c = { .fn = cb, .u = u };

        if (scope->from_day > scope->to_day)
                return 0;
        return marks_each(of(s), scope, bbt_agg_span_of(scope->from_day), bbt_agg_span_of(scope->to_day), day_mark_of, &c);
}

static int seen_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_seen *) = (int (*)(void *, const struct bbt_store_seen *))cb;
        struct bbt_store_seen seen = {
                .terminal_id = sqlite3_column_int64(st, 0),
                .last_msg_ms = sqlite3_column_int64(st, 1),
                .last_active_ms = sqlite3_column_int64(st, 2),
        };

        return fn(u, &seen);
}

static int sq_seen_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                        int (*cb)(void *u, const struct bbt_store_seen *seen), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_SEEN, scope, scope->from_day, scope->to_day);

        return st ? each(q, st, "history", seen_row, (void *)cb, u) : -EIO;
}

/* How far back from to_day seen_days_each reads the day marks (a few spans
 * of every terminal); a terminal with no message in them is looked up in its
 * rollups. */
#define SEEN_MARKS_BACK_DAYS 62

struct seen_days {
        int64_t *ids;          /* the terminals in scope, by id */
        size_t n, cap;
        int32_t *day;          /* by id: the latest day with a message found in the marks; INT32_MIN: none */
        size_t cap_day;
        int64_t from_day, to_day;
};

static int seen_id_row(sqlite3_stmt *st, void *cb, void *u)
{
        struct seen_days *v = u;

        (void)cb;
        if (bbt_array_reserve((void **)&v->ids, &v->cap, v->n + 1, sizeof(*v->ids)) < 0)
                return -ENOMEM;
        v->ids[v->n++] = sqlite3_column_int64(st, 0);
        return 0;
}

/* A span's seen bits within from_day..to_day: the latest such day wins (the
 * marks come by span). */
static int seen_mark_of(void *u, int64_t span, const struct mark_entry *e)
{
        struct seen_days *v = u;
        int64_t first = span * BBT_STORE_MARK_DAYS;
        uint64_t bits = e->seen;
        int64_t lo = v->from_day - first, hi = v->to_day - first;

        if (e->terminal_id <= 0 || (uint64_t)e->terminal_id >= v->cap_day)
                return 0; /* not in scope */
        if (hi < BBT_STORE_MARK_DAYS - 1)
                bits &= hi < 0 ? 0 : ((uint64_t)2 << hi) - 1;
        if (lo > 0)
                bits &= lo >= BBT_STORE_MARK_DAYS ? 0 : ~(((uint64_t)1 << lo) - 1);
        if (bits)
                v->day[e->terminal_id] = (int32_t)(first + 63 - __builtin_clzll(bits));
        return 0;
}

static int sq_seen_days_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                             int (*cb)(void *u, const struct bbt_store_seen_day *seen), void *u)
{
        struct sqlite_store *q = of(s);
        struct seen_days v = { .from_day = scope->from_day, .to_day = scope->to_day };
        int64_t lo_day = v.to_day - SEEN_MARKS_BACK_DAYS, lo_span;
        sqlite3_stmt *st;
        int r;

        if (lo_day < v.from_day)
                lo_day = v.from_day;
        lo_span = bbt_agg_span_of((int32_t)lo_day);
        st = scoped(q, ST_TERMINAL_IDS, scope, 0, 0);
        r = st ? each(q, st, "history", seen_id_row, NULL, &v) : -EIO;
        if (r == 0 && v.n > 0) {
                v.cap_day = (size_t)v.ids[v.n - 1] + 1;
                v.day = malloc(v.cap_day * sizeof(*v.day));
                if (!v.day)
                        r = -ENOMEM;
                for (size_t i = 0; r == 0 && i < v.cap_day; i++)
                        v.day[i] = INT32_MIN;
                if (r == 0 && v.from_day <= v.to_day)
                        r = marks_each(q, scope, lo_span, bbt_agg_span_of(scope->to_day), seen_mark_of, &v);
        }
        for (size_t i = 0; r == 0 && i < v.n; i++) {
                struct bbt_store_seen_day seen = { .terminal_id = v.ids[i], .day = v.day[v.ids[i]] };

                /* Not in the spans read, which do not reach from_day: its rollups say. */
                if (seen.day == INT32_MIN && lo_span * BBT_STORE_MARK_DAYS > v.from_day && v.from_day <= v.to_day) {
                        st = stmt(q, ST_SEEN_DAY);
                        if (!st) {
                                r = -EIO;
                                break;
                        }
                        sqlite3_bind_int64(st, 1, seen.terminal_id);
                        sqlite3_bind_int64(st, 2, v.from_day);
                        sqlite3_bind_int64(st, 3, lo_span * BBT_STORE_MARK_DAYS - 1);
                        r = sqlite3_step(st);
                        if (r == SQLITE_ROW)
                                seen.day = (int32_t)sqlite3_column_int64(st, 0);
                        r = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : fail(q, r, "history");
                        sqlite3_reset(st);
                        if (r < 0)
                                break;
                }
                r = cb(u, &seen);
        }
        free(v.ids);
        free(v.day);
        return r;
}

static int sq_days_history_rebuild(struct bbt_store *s, int offset_min)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_DAYS_HISTORY_REBUILD);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, (int64_t)offset_min * 60000);
        r = run(q, st, "history");
        /* The marks again, for their seen bits. */
        if (r == 0)
                r = sq_day_rule_get(&q->base, &q->rule);
        if (r == 0) {
                char *src = rule_sql(MARKS_RECOUNT, &q->rule);

                r = src ? sqlite3_exec(q->db, "DELETE FROM mark_span", NULL, NULL, NULL) : SQLITE_NOMEM;
                r = r == SQLITE_OK ? marks_pack(q, src, "history") : fail(q, r, "history");
                sqlite3_free(src);
        }
        return r;
}

static int sq_loss_add(struct bbt_store *s, const struct bbt_store_loss *l)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_LOSS_INSERT);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, l->terminal_id);
        sqlite3_bind_int64(st, 2, l->from);
        sqlite3_bind_int64(st, 3, l->to);
        sqlite3_bind_int64(st, 4, l->recorded_ms);
        bind_text(st, 5, l->reason);
        sqlite3_bind_int(st, 6, (int)l->kind);
        return run(q, st, "loss");
}

/* The first loss row of TERMINAL_ID overlapping FROM..TO: 1 with *RET and
 * *RET_ID, 0 if none, or -errno. */
static int loss_first(struct sqlite_store *q, int64_t terminal_id, int64_t from, int64_t to,
                      struct bbt_store_loss *ret, int64_t *ret_id)
{
        sqlite3_stmt *st = stmt(q, ST_LOSS_FIND);
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        sqlite3_bind_int64(st, 2, from);
        sqlite3_bind_int64(st, 3, to);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(st);
                return rc == SQLITE_DONE ? 0 : fail(q, rc, "loss");
        }
        memset(ret, 0, sizeof(*ret));
        ret->terminal_id = terminal_id;
        *ret_id = sqlite3_column_int64(st, 0);
        ret->from = sqlite3_column_int64(st, 1);
        ret->to = sqlite3_column_int64(st, 2);
        ret->recorded_ms = sqlite3_column_int64(st, 3);
        copy_col(st, 4, ret->reason, sizeof(ret->reason));
        ret->kind = (enum bbt_loss_kind)sqlite3_column_int(st, 5);
        sqlite3_reset(st);
        return 1;
}

static int sq_loss_find(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to,
                        struct bbt_store_loss *ret)
{
        int64_t id;

        return loss_first(of(s), terminal_id, from, to, ret, &id);
}

static int sq_loss_remove(struct bbt_store *s, int64_t terminal_id, int64_t from, int64_t to)
{
        struct sqlite_store *q = of(s);
        struct bbt_store_loss l;
        int64_t id;
        int r;

        while ((r = loss_first(q, terminal_id, from, to, &l, &id)) == 1) {
                sqlite3_stmt *st = stmt(q, ST_LOSS_DELETE);

                if (!st)
                        return -EIO;
                sqlite3_bind_int64(st, 1, id);
                r = run(q, st, "loss");
                if (r == 0)
                        r = bbt_agg_loss_remnants(s, &l, from, to);
                if (r < 0)
                        return r;
        }
        return r;
}

static int loss_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_loss *) = (int (*)(void *, const struct bbt_store_loss *))cb;
        struct bbt_store_loss l;

        memset(&l, 0, sizeof(l));
        l.terminal_id = sqlite3_column_int64(st, 0);
        l.from = sqlite3_column_int64(st, 1);
        l.to = sqlite3_column_int64(st, 2);
        l.recorded_ms = sqlite3_column_int64(st, 3);
        copy_col(st, 4, l.reason, sizeof(l.reason));
        l.kind = (enum bbt_loss_kind)sqlite3_column_int(st, 5);
        return fn(u, &l);
}

static int sq_losses_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_loss *l), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_LOSSES, scope, scope->since_ms, scope->until_ms);

        return st ? each(q, st, "loss", loss_row, (void *)cb, u) : -EIO;
}

static int sq_fault_raise(struct bbt_store *s, const struct bbt_store_fault *f)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_FAULT_FIND);
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, f->terminal_id);
        bind_text(st, 2, f->code);
        bind_text(st, 3, f->source);
        sqlite3_bind_int64(st, 4, f->raised_ms);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_ROW)
                return 0;
        if (rc != SQLITE_DONE)
                return fail(q, rc, "fault");
        st = stmt(q, ST_FAULT_INSERT);
        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, f->terminal_id);
        bind_text(st, 2, f->code);
        bind_text(st, 3, f->source);
        sqlite3_bind_int(st, 4, (int)f->severity);
        bind_text(st, 5, f->detail);
        sqlite3_bind_int64(st, 6, f->raised_ms);
        return run(q, st, "fault");
}

static int sq_fault_clear(struct bbt_store *s, int64_t terminal_id, const char *code, const char *source,
                          int64_t cleared_ms)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_FAULT_CLEAR);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        bind_text(st, 2, code);
        bind_text(st, 3, source);
        /* 0 means open: a clear at the epoch still closes it. */
        sqlite3_bind_int64(st, 4, cleared_ms > 0 ? cleared_ms : 1);
        return run(q, st, "fault");
}

static int fault_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_fault *) = (int (*)(void *, const struct bbt_store_fault *))cb;
        struct bbt_store_fault f;

        memset(&f, 0, sizeof(f));
        f.terminal_id = sqlite3_column_int64(st, 0);
        copy_col(st, 1, f.code, sizeof(f.code));
        copy_col(st, 2, f.source, sizeof(f.source));
        f.severity = (enum bbt_severity)sqlite3_column_int(st, 3);
        copy_col(st, 4, f.detail, sizeof(f.detail));
        f.raised_ms = sqlite3_column_int64(st, 5);
        f.cleared_ms = sqlite3_column_int64(st, 6);
        return fn(u, &f);
}

static int sq_faults_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_fault *f), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_FAULTS, scope, scope->since_ms, scope->until_ms);

        return st ? each(q, st, "fault", fault_row, (void *)cb, u) : -EIO;
}

static void bind_device(sqlite3_stmt *st, int first, const struct bbt_store_device *d)
{
        sqlite3_bind_int(st, first, (int)d->kind);
        bind_text(st, first + 1, d->subsystem);
}

static int sq_inventory_replace(struct bbt_store *s, int64_t terminal_id, const struct bbt_store_device *devs,
                                size_t n)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_INV_DELETE);
        int r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, terminal_id);
        r = run(q, st, "inventory");
        for (size_t i = 0; r == 0 && i < n; i++) {
                st = stmt(q, ST_INV_INSERT);
                if (!st)
                        return -EIO;
                sqlite3_bind_int64(st, 1, terminal_id);
                sqlite3_bind_int64(st, 2, (int64_t)i);
                bind_device(st, 3, &devs[i]);
                bind_text(st, 5, devs[i].bus);
                bind_text(st, 6, devs[i].vendor_id);
                bind_text(st, 7, devs[i].model_id);
                bind_text(st, 8, devs[i].vendor);
                bind_text(st, 9, devs[i].model);
                bind_text(st, 10, devs[i].serial);
                bind_text(st, 11, devs[i].syspath);
                r = run(q, st, "inventory");
        }
        return r;
}

static int device_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_device *) = (int (*)(void *, const struct bbt_store_device *))cb;
        struct bbt_store_device d;

        memset(&d, 0, sizeof(d));
        d.terminal_id = sqlite3_column_int64(st, 0);
        d.kind = (enum bbt_periph_kind)sqlite3_column_int(st, 1);
        copy_col(st, 2, d.subsystem, sizeof(d.subsystem));
        copy_col(st, 3, d.bus, sizeof(d.bus));
        copy_col(st, 4, d.vendor_id, sizeof(d.vendor_id));
        copy_col(st, 5, d.model_id, sizeof(d.model_id));
        copy_col(st, 6, d.vendor, sizeof(d.vendor));
        copy_col(st, 7, d.model, sizeof(d.model));
        copy_col(st, 8, d.serial, sizeof(d.serial));
        copy_col(st, 9, d.syspath, sizeof(d.syspath));
        return fn(u, &d);
}

static int sq_inventory_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                              int (*cb)(void *u, const struct bbt_store_device *d), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_INVENTORY, scope, 0, 0);

        return st ? each(q, st, "inventory", device_row, (void *)cb, u) : -EIO;
}

static int sq_periph_add(struct bbt_store *s, int64_t seq, int64_t ts, enum bbt_periph_action action,
                         const struct bbt_store_device *d)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_PERIPH_INSERT);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, d->terminal_id);
        sqlite3_bind_int64(st, 2, seq);
        sqlite3_bind_int64(st, 3, ts);
        sqlite3_bind_int(st, 4, (int)action);
        bind_device(st, 5, d);
        bind_text(st, 7, d->vendor);
        bind_text(st, 8, d->model);
        bind_text(st, 9, d->serial);
        bind_text(st, 10, d->syspath);
        return run(q, st, "periph");
}

static int sq_event_add(struct bbt_store *s, const struct bbt_store_event *e)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_EVENT_INSERT);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, e->terminal_id);
        sqlite3_bind_int64(st, 2, e->seq);
        sqlite3_bind_int64(st, 3, e->ts);
        bind_text(st, 4, e->code);
        sqlite3_bind_int(st, 5, (int)e->severity);
        bind_text(st, 6, e->detail);
        return run(q, st, "event");
}

static int event_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_event *) = (int (*)(void *, const struct bbt_store_event *))cb;
        struct bbt_store_event e;

        memset(&e, 0, sizeof(e));
        e.terminal_id = sqlite3_column_int64(st, 0);
        e.seq = sqlite3_column_int64(st, 1);
        e.ts = sqlite3_column_int64(st, 2);
        copy_col(st, 3, e.code, sizeof(e.code));
        e.severity = (enum bbt_severity)sqlite3_column_int(st, 4);
        copy_col(st, 5, e.detail, sizeof(e.detail));
        return fn(u, &e);
}

static int sq_events_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_event *e), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_EVENTS, scope, scope->since_ms, scope->until_ms);

        return st ? each(q, st, "event", event_row, (void *)cb, u) : -EIO;
}

static int sq_net_set(struct bbt_store *s, const struct bbt_store_net *n)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_NET_SET);

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, n->terminal_id);
        sqlite3_bind_int64(st, 2, n->seq);
        bind_text(st, 3, n->ifname);
        bind_text(st, 4, n->mac);
        bind_text(st, 5, n->ipv4);
        sqlite3_bind_int(st, 6, n->prefix);
        return run(q, st, "net");
}

static int net_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_net *) = (int (*)(void *, const struct bbt_store_net *))cb;
        struct bbt_store_net n;

        memset(&n, 0, sizeof(n));
        n.terminal_id = sqlite3_column_int64(st, 0);
        n.seq = sqlite3_column_int64(st, 1);
        copy_col(st, 2, n.ifname, sizeof(n.ifname));
        copy_col(st, 3, n.mac, sizeof(n.mac));
        copy_col(st, 4, n.ipv4, sizeof(n.ipv4));
        n.prefix = sqlite3_column_int(st, 5);
        return fn(u, &n);
}

static int sq_nets_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                        int (*cb)(void *u, const struct bbt_store_net *n), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = scoped(q, ST_NETS, scope, 0, 0);

        return st ? each(q, st, "net", net_row, (void *)cb, u) : -EIO;
}

static int sq_audit_put(struct bbt_store *s, const struct bbt_store_audit *a)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_AUDIT_PUT);

        if (!st)
                return -EIO;
        bind_text(st, 1, a->cmd_id);
        bind_text(st, 2, a->operator_name);
        sqlite3_bind_int64(st, 3, a->sent_ms);
        sqlite3_bind_int64(st, 4, a->done_ms);
        bind_text(st, 5, a->county);
        bind_text(st, 6, a->school);
        bind_text(st, 7, a->terminal);
        bind_text(st, 8, a->via);
        bind_text(st, 9, a->op);
        bind_text(st, 10, a->args);
        bind_text(st, 11, a->result);
        bind_text(st, 12, a->detail);
        return run(q, st, "audit");
}

static int audit_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const struct bbt_store_audit *) = (int (*)(void *, const struct bbt_store_audit *))cb;
        struct bbt_store_audit a;

        memset(&a, 0, sizeof(a));
        copy_col(st, 0, a.cmd_id, sizeof(a.cmd_id));
        copy_col(st, 1, a.operator_name, sizeof(a.operator_name));
        a.sent_ms = sqlite3_column_int64(st, 2);
        a.done_ms = sqlite3_column_int64(st, 3);
        copy_col(st, 4, a.county, sizeof(a.county));
        copy_col(st, 5, a.school, sizeof(a.school));
        copy_col(st, 6, a.terminal, sizeof(a.terminal));
        copy_col(st, 7, a.via, sizeof(a.via));
        copy_col(st, 8, a.op, sizeof(a.op));
        copy_col(st, 9, a.args, sizeof(a.args));
        copy_col(st, 10, a.result, sizeof(a.result));
        copy_col(st, 11, a.detail, sizeof(a.detail));
        return fn(u, &a);
}

static int sq_audits_each(struct bbt_store *s, const struct bbt_store_scope *scope,
                          int (*cb)(void *u, const struct bbt_store_audit *a), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_AUDITS);

        if (!st)
                return -EIO;
        if (scope->county)
                bind_text(st, 1, scope->county);
        if (scope->school)
                bind_text(st, 2, scope->school);
        sqlite3_bind_int64(st, 3, scope->since_ms);
        sqlite3_bind_int64(st, 4, scope->until_ms);
        return each(q, st, "audit", audit_row, (void *)cb, u);
}

static int sq_counter_add(struct bbt_store *s, const char *name, int64_t delta)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_COUNTER_ADD);

        if (!st)
                return -EIO;
        bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, delta);
        return run(q, st, "counter");
}

static int counter_row(sqlite3_stmt *st, void *cb, void *u)
{
        int (*fn)(void *, const char *, int64_t) = (int (*)(void *, const char *, int64_t))cb;

        return fn(u, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
}

static int sq_counters_each(struct bbt_store *s, int (*cb)(void *u, const char *name, int64_t value), void *u)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st = stmt(q, ST_COUNTERS);

        return st ? each(q, st, "counter", counter_row, (void *)cb, u) : -EIO;
}

/* The receive time of the first raw row at or after row ID, or -1 past the end. */
static int recv_at(struct sqlite_store *q, int64_t id, int64_t *ret)
{
        sqlite3_stmt *st = stmt(q, ST_RAW_RECV_AT);
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        *ret = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        sqlite3_reset(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(q, rc, "prune");
}

/* Rows are in arrival order, so receive times grow with the row id (but for a
 * wall clock stepped back): bisect for the first row received at or after
 * BEFORE_MS instead of scanning the table. *RET: that row id (everything below
 * it goes), 0 if none goes. */
static int raw_first_received_after(struct sqlite_store *q, int64_t before_ms, int64_t *ret)
{
        sqlite3_stmt *st = stmt(q, ST_RAW_BOUNDS);
        int64_t lo, hi, t;
        int rc, r;

        if (!st)
                return -EIO;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL) {
                sqlite3_reset(st);
                *ret = 0;
                return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(q, rc, "prune");
        }
        lo = sqlite3_column_int64(st, 0);
        hi = sqlite3_column_int64(st, 1) + 1;
        sqlite3_reset(st);
        /* Invariant: rows below LO were received before BEFORE_MS; HI is past
         * the first row received at or after it (or the end). */
        while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;

                r = recv_at(q, mid, &t);
                if (r < 0)
                        return r;
                if (t >= 0 && t < before_ms)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret = lo;
        return 0;
}

static int sq_prune(struct bbt_store *s, int64_t raw_before_ms, int64_t usage_before_ms)
{
        struct sqlite_store *q = of(s);
        sqlite3_stmt *st;
        int r = 0;

        if (raw_before_ms > 0) {
                int64_t cut;

                r = raw_first_received_after(q, raw_before_ms, &cut);
                if (r == 0 && cut > 0) {
                        st = stmt(q, ST_PRUNE_RAW);
                        if (!st)
                                return -EIO;
                        sqlite3_bind_int64(st, 1, cut);
                        r = run(q, st, "prune");
                }
        }
        if (r == 0 && usage_before_ms > 0) {
                st = stmt(q, ST_PRUNE_USAGE);
                if (!st)
                        return -EIO;
                sqlite3_bind_int64(st, 1, usage_before_ms);
                r = run(q, st, "prune");
        }
        return r;
}

static void sq_close(struct bbt_store *s)
{
        struct sqlite_store *q = of(s);

        if (q->in_tx)
                sq_rollback(s);
        for (int i = 0; i < ST__COUNT; i++)
                sqlite3_finalize(q->st[i]);
        sqlite3_close(q->db);
        bbt_agg_free(&q->agg);
        free(q->seen_marked);
        free(q);
}

static const struct bbt_store_ops sqlite_ops = {
        .name = "sqlite",
        .close = sq_close,
        .begin = sq_begin,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .meta_get = sq_meta_get,
        .meta_set = sq_meta_set,
        .data_version = sq_data_version,
        .terminal_insert = sq_terminal_insert,
        .terminal_update = sq_terminal_update,
        .terminals_each = sq_terminals_each,
        .terminal_lock = sq_terminal_lock,
        .terminal_gaps_each = sq_terminal_gaps_each,
        .gaps_replace = sq_gaps_replace,
        .gaps_each = sq_gaps_each,
        .raw_insert = sq_raw_insert,
        .raw_payload = sq_raw_payload,
        .conflict_add = sq_conflict_add,
        .conflicts_each = sq_conflicts_each,
        .usage_insert = sq_usage_insert,
        .usage_each = sq_usage_each,
        .day_add = sq_day_add,
        .days_clear = sq_days_clear,
        .days_each = sq_days_each,
        .day_rule_get = sq_day_rule_get,
        .day_rule_set = sq_day_rule_set,
        .school_days_each = sq_school_days_each,
        .school_spans_each = sq_school_spans_each,
        .day_marks_each = sq_day_marks_each,
        .seen_each = sq_seen_each,
        .seen_days_each = sq_seen_days_each,
        .terminals_brief_each = sq_terminals_brief_each,
        .days_history_rebuild = sq_days_history_rebuild,
        .loss_add = sq_loss_add,
        .losses_each = sq_losses_each,
        .loss_find = sq_loss_find,
        .loss_remove = sq_loss_remove,
        .fault_raise = sq_fault_raise,
        .fault_clear = sq_fault_clear,
        .faults_each = sq_faults_each,
        .inventory_replace = sq_inventory_replace,
        .inventory_each = sq_inventory_each,
        .periph_add = sq_periph_add,
        .event_add = sq_event_add,
        .events_each = sq_events_each,
        .net_set = sq_net_set,
        .nets_each = sq_nets_each,
        .audit_put = sq_audit_put,
        .audits_each = sq_audits_each,
        .counter_add = sq_counter_add,
        .counters_each = sq_counters_each,
        .prune = sq_prune,
};

static int pragma_int(sqlite3 *db, const char *pragma, int *ret)
{
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db, pragma, -1, &st, NULL);

        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int(st, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
}

/* Brings the schema up to date, each migration in its own transaction. */
static int migrate(struct sqlite_store *q, const char *path, char *err, size_t err_size)
{
        int version = 0, app = 0, rc;
        char set[64];

        rc = pragma_int(q->db, "PRAGMA user_version", &version);
        if (rc == SQLITE_OK)
                rc = pragma_int(q->db, "PRAGMA application_id", &app);
        if (rc != SQLITE_OK) {
                snprintf(err, err_size, "%s: %s", path, sqlite3_errmsg(q->db));
                return rc == SQLITE_NOTADB ? -EPROTO : -EIO;
        }
        if (version == 0 && app == 0) {
                int tables = 0;

                pragma_int(q->db, "SELECT count(*) FROM sqlite_master", &tables);
                if (tables > 0) {
                        snprintf(err, err_size, "%s: an SQLite database that is not a bbt store", path);
                        return -EPROTO;
                }
        } else if (app != APPLICATION_ID) {
                snprintf(err, err_size, "%s: an SQLite database that is not a bbt store", path);
                return -EPROTO;
        }
        if (version > BBT_STORE_SCHEMA_VERSION) {
                snprintf(err, err_size, "%s: schema version %d is newer than this build's %d; upgrade bbt", path,
                         version, BBT_STORE_SCHEMA_VERSION);
                return -EPROTO;
        }
        for (; version < BBT_STORE_SCHEMA_VERSION; version++) {
                char *msg = NULL;

                snprintf(set, sizeof(set), "PRAGMA user_version = %d", version + 1);
                rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
                if (rc == SQLITE_OK)
                        rc = migrations[version].sql ? sqlite3_exec(q->db, migrations[version].sql, NULL, NULL, &msg)
                                                     : migrations[version].fn(q->db, &msg);
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(q->db, "PRAGMA application_id = 1650619441", NULL, NULL, &msg);
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(q->db, set, NULL, NULL, &msg);
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, &msg);
                if (rc != SQLITE_OK) {
                        snprintf(err, err_size, "%s: migration to schema %d failed: %s", path, version + 1,
                                 msg ? msg : sqlite3_errmsg(q->db));
                        sqlite3_free(msg);
                        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
                        return -EIO;
                }
        }
        return 0;
}
_Static_assert(APPLICATION_ID == 1650619441, "application_id literal in migrate()");

int bbt_store_sqlite_open(const char *path, bool read_only, struct bbt_store **ret, char *err, size_t err_size)
{
        struct sqlite_store *q;
        char dummy[8];
        int rc, r, flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

        if (!err) {
                err = dummy;
                err_size = sizeof(dummy);
        }
        if (read_only && access(path, F_OK) < 0) {
                snprintf(err, err_size, "%s: %s", path, strerror(errno));
                return -errno;
        }
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->base.ops = &sqlite_ops;
        rc = sqlite3_open_v2(path, &q->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                snprintf(err, err_size, "%s: %s", path, q->db ? sqlite3_errmsg(q->db) : "cannot open");
                r = q->db ? fail(q, rc, "open") : -ENOMEM;
                goto fail;
        }
        sqlite3_extended_result_codes(q->db, 1);
        sqlite3_busy_timeout(q->db, 5000);
        if (!read_only) {
                /* WAL + synchronous=NORMAL: a committed batch survives a crash
                 * of the aggregator (kill -9); a power cut may lose the last
                 * batches, which the agents' spools and resend bring back. */
                rc = sqlite3_exec(q->db,
                                  "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                                  " PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;"
                                  /* Checkpoint every 64 MiB of WAL, not every 4 MiB: a
                                   * checkpoint after each batch wrote every page twice. */
                                  " PRAGMA wal_autocheckpoint = 16384;",
                                  NULL, NULL, NULL);
                if (rc != SQLITE_OK) {
                        snprintf(err, err_size, "%s: %s", path, sqlite3_errmsg(q->db));
                        r = fail(q, rc, "open");
                        goto fail;
                }
                r = migrate(q, path, err, err_size);
                if (r < 0)
                        goto fail;
                chmod(path, 0640);
        } else {
                int version = 0, app = 0;

                pragma_int(q->db, "PRAGMA user_version", &version);
                pragma_int(q->db, "PRAGMA application_id", &app);
                if (app != APPLICATION_ID || version != BBT_STORE_SCHEMA_VERSION) {
                        snprintf(err, err_size,
                                 app != APPLICATION_ID ? "%s: not a bbt store"
                                                       : "%s: schema version differs from this build's; start "
                                                         "bbt-aggregator once to migrate it",
                                 path);
                        r = -EPROTO;
                        goto fail;
                }
                /* Readers read pages through pread(), not a mapping of the file:
                 * a report touches a few thousand pages once each, and a page
                 * fault costs more than a pread's copy (measured: a report's
                 * day aggregates in 48 ms read, 100 ms mapped, in a VM where
                 * faults are dear; docs/BENCHMARKS.md, "Report timings"). */
        }
        *ret = &q->base;
        return 0;
fail:
        sqlite3_close(q->db);
        free(q);
        return r;
}
