/* The aggregator's Prometheus metrics: each figure read from where ingest already keeps it, in the text format. */
/*
 * Counters are ingest's own (struct bbt_ingest_stats): they count from the
 * start of this process, as Prometheus expects of a counter (process_start_time_seconds
 * tells a restart from a reset). The store's counters (bbt-report loss) count
 * the same events all-time; HELP says which counter each is. Gauges are read
 * from the terminal cache (bbt_ingest_census(): the rows and gap lists the
 * store is written from) and the store's files. No label names a terminal:
 * the per-terminal figures are bbt-report loss's.
 *
 * Names follow https://prometheus.io/docs/practices/naming/: the bbt_ prefix,
 * base units (seconds, bytes), _total on counters; promtool check metrics
 * is run on a scrape in tests/test-metrics.c. Keep docs/aggregator.md
 * ("Monitoring") and bbt-aggregator(8) in step with this file.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bbt/base.h"
#include "store.h"

static void family(FILE *out, const char *name, const char *type, const char *help)
{
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the text format wants it: \ " and newline escaped. */
static void label_value(FILE *out, const char *v)
{
        for (; *v; v++) {
                if (*v == '\\' || *v == '"')
                        fputc('\\', out), fputc(*v, out);
                else if (*v == '\n')
                        fputs("\\n", out);
                else
                        fputc(*v, out);
        }
}

/* NAME{LABEL="VALUE"} V, or NAME V without LABEL. */
static void sample(FILE *out, const char *name, const char *label, const char *value, uint64_t v)
{
        fputs(name, out);
        if (label) {
                fprintf(out, "{%s=\"", label);
                label_value(out, value);
                fputs("\"}", out);
        }
        fprintf(out, " %" PRIu64 "\n", v);
}

static void counter(FILE *out, const char *name, const char *help, uint64_t v)
{
        family(out, name, "counter", help);
        sample(out, name, NULL, NULL, v);
}

static void gauge(FILE *out, const char *name, const char *help, uint64_t v)
{
        family(out, name, "gauge", help);
        sample(out, name, NULL, NULL, v);
}

static void write_info(const struct bbt_metrics_source *src, FILE *out)
{
        family(out, "bbt_build_info", "gauge", "Always 1; the label version is bbt-aggregator's version");
        sample(out, "bbt_build_info", "version", BBT_VERSION, 1);
        family(out, "process_start_time_seconds", "gauge",
               "When bbt-aggregator started, in seconds since the epoch; the bbt_*_total counters count from then");
        fprintf(out, "process_start_time_seconds %" PRId64 ".%03d\n", src->start_ms / 1000, (int)(src->start_ms % 1000));
        gauge(out, "bbt_broker_connected", "1 while the aggregator is connected to the MQTT broker, else 0",
              src->broker_connected);
}

static void write_counters(const struct bbt_ingest_stats *s, FILE *out)
{
        static const char rejected[] = "bbt_messages_rejected_total";

        counter(out, "bbt_messages_received_total",
                "Messages the broker delivered since the aggregator started: each one stored, a duplicate, a seq "
                "conflict, rejected or ignored",
                s->received);
        counter(out, "bbt_messages_stored_total",
                "New messages stored since the aggregator started (all-time: the store's counter stored, "
                "bbt-report loss)",
                s->stored);
        counter(out, "bbt_messages_duplicate_total",
                "Messages dropped as already stored (same terminal and seq) since the aggregator started; normal "
                "with QoS 1 and spool replays (all-time: the store's counter duplicates)",
                s->duplicates);
        family(out, rejected, "counter",
               "Messages rejected since the aggregator started, by reason: topic, size, json, version, field, store "
               "(all-time: the store's counters reject_REASON)");
        for (int i = 0; i < BBT_REJECT__COUNT; i++)
                sample(out, rejected, "reason", bbt_reject_name((enum bbt_reject)i) + strlen("reject_"),
                       s->rejected[i]);
        counter(out, "bbt_messages_ignored_total",
                "Commands (the cmd channel) seen on the bus since the aggregator started: not telemetry, not stored",
                s->ignored);
        counter(out, "bbt_seq_conflicts_total",
                "Messages with another payload under a seq already stored (a terminal used a seq twice), since the "
                "aggregator started (all-time: the store's counter seq_conflict)",
                s->conflicts);
        counter(out, "bbt_stale_states_total",
                "Offline states of an older session, ignored, since the aggregator started (all-time: the store's "
                "counter stale_state)",
                s->stale_state);
        counter(out, "bbt_gaps_detected_total", "Ranges of missing seqs found since the aggregator started",
                s->gaps_opened);
        counter(out, "bbt_resend_requests_total",
                "Resend commands sent to terminals for missing seqs since the aggregator started", s->resends);
        counter(out, "bbt_terminal_claims_total",
                "In a share group: terminal rows locked and read afresh for a batch since the aggregator started "
                "(0 alone)",
                s->claims);
        counter(out, "bbt_terminal_claim_waits_total",
                "In a share group: terminals found held by another aggregator's batch since the aggregator started "
                "(the batch so far committed, then waited for)",
                s->claim_waits);
        family(out, "bbt_power_schedules_total", "counter",
               "Power schedule (power_schedule) commands since the aggregator started, by result: sent, answered "
               "(ok), refused by the agent (ok: false; logged with the reason), failed (not sent)");
        sample(out, "bbt_power_schedules_total", "result", "sent", s->power_sent);
        sample(out, "bbt_power_schedules_total", "result", "answered", s->power_answered);
        sample(out, "bbt_power_schedules_total", "result", "refused", s->power_refused);
        sample(out, "bbt_power_schedules_total", "result", "failed", s->power_failed);
        family(out, "bbt_terminal_asks_total", "counter",
               "Terminals whose session was never seen (no retained birth delivered) asked for their birth and "
               "inventory since the aggregator started, by result: asked, refused (an agent without the state op)");
        sample(out, "bbt_terminal_asks_total", "result", "asked", s->asks);
        sample(out, "bbt_terminal_asks_total", "result", "refused", s->asks_refused);
        counter(out, "bbt_seqs_recovered_total",
                "Missing seqs that arrived later, since the aggregator started (all-time: the store's counter "
                "recovered)",
                s->recovered);
        counter(out, "bbt_store_commit_failures_total",
                "Batches the store failed to commit (rolled back; their messages are asked for again), since the "
                "aggregator started",
                s->commit_failures);
}

static void write_histogram(const struct bbt_ingest_stats *s, FILE *out)
{
        static const char name[] = "bbt_store_commit_duration_seconds";

        family(out, name, "histogram",
               "Time a batch commit took: writing the batch's terminal rows, gaps, rollups and counters and the "
               "COMMIT, while ingest waits; successful commits since the aggregator started");
        for (int i = 0; i < BBT_COMMIT_BUCKETS; i++)
                fprintf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bbt_commit_bucket_s[i], s->commit_le[i]);
        fprintf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, s->commits);
        fprintf(out, "%s_sum %.9f\n", name, s->commit_seconds);
        fprintf(out, "%s_count %" PRIu64 "\n", name, s->commits);
}

static const char *const gap_states[BBT_GAP_WILL + 1] = {
        [BBT_GAP_WAITING] = "waiting", [BBT_GAP_REQUESTED] = "requested",
        [BBT_GAP_ANSWERED] = "answered", [BBT_GAP_WILL] = "will",
};

static void write_census(const struct bbt_ingest_census *c, FILE *out)
{
        family(out, "bbt_gaps_open", "gauge",
               "Ranges of missing seqs now, by state: waiting (grace period or to ask again), requested (a resend "
               "is out), answered (the resent messages are awaited), will (a live session's will, missing by "
               "design until the session ends)");
        for (int i = 0; i <= BBT_GAP_WILL; i++)
                sample(out, "bbt_gaps_open", "state", gap_states[i], c->gaps[i]);
        family(out, "bbt_gap_seqs_open", "gauge", "Seqs in the open gaps, by the gap's state (as bbt_gaps_open)");
        for (int i = 0; i <= BBT_GAP_WILL; i++)
                sample(out, "bbt_gap_seqs_open", "state", gap_states[i], c->gap_seqs[i]);
        gauge(out, "bbt_seqs_lost",
              "Seqs recorded as lost (records that existed and will not come), all-time over every terminal: the sum "
              "of bbt-report loss's lost column; falls when a lost seq arrives after all or proves never used",
              c->lost);
        gauge(out, "bbt_seqs_skipped",
              "Seqs the agents say they never used (skipped after an unclean stop), all-time over every terminal: "
              "the sum of bbt-report loss's skipped column",
              c->skipped);
        family(out, "bbt_terminals", "gauge",
               "Terminals known to the aggregator (each has published at least once), by county code");
        for (size_t i = 0; i < c->n_counties; i++)
                sample(out, "bbt_terminals", "county", c->counties[i].county, c->counties[i].terminals);
        family(out, "bbt_terminals_online", "gauge",
               "Terminals online now, by county code: their session's birth arrived and no will or clean stop since "
               "(the online column of bbt-report terminals)");
        for (size_t i = 0; i < c->n_counties; i++)
                sample(out, "bbt_terminals_online", "county", c->counties[i].county, c->counties[i].online);
}

/* The registry's terminals by county, in the order of first appearance. */
static void write_registry(const struct bbt_registry *reg, FILE *out)
{
        char (*codes)[7] = NULL;
        uint64_t *counts = NULL;
        size_t n = 0;

        family(out, "bbt_registry_terminals", "gauge",
               "Terminals in the registry ([registry] terminals), by county code: what bbt_terminals_online is "
               "out of");
        if (!reg || reg->n_terminals == 0)
                return;
        codes = calloc(reg->n_schools + 1, sizeof(*codes));
        counts = calloc(reg->n_schools + 1, sizeof(*counts));
        if (!codes || !counts)
                goto out;
        for (size_t i = 0; i < reg->n_terminals; i++) {
                const struct bbt_school *s = bbt_registry_school(reg, reg->terminals[i].school);
                size_t j;

                if (!s)
                        continue;
                for (j = 0; j < n && strcmp(codes[j], s->county) != 0; j++)
                        ;
                if (j == n)
                        memcpy(codes[n++], s->county, sizeof(codes[0]));
                counts[j]++;
        }
        for (size_t j = 0; j < n; j++)
                sample(out, "bbt_registry_terminals", "county", codes[j], counts[j]);
out:
        free(codes);
        free(counts);
}

/* The store's files: the database and its write-ahead log. */
static void write_store_size(const char *path, FILE *out)
{
        char wal[PATH_MAX];
        struct stat st;

        family(out, "bbt_store_size_bytes", "gauge",
               "Size of the SQLite store's files: file=database (the store) and file=wal (its write-ahead log, "
               "emptied at checkpoints; it grows while a long bbt-report read holds one back)");
        if (!path || stat(path, &st) < 0)
                return;
        sample(out, "bbt_store_size_bytes", "file", "database", (uint64_t)st.st_size);
        if (snprintf(wal, sizeof(wal), "%s-wal", path) < (int)sizeof(wal) && stat(wal, &st) == 0)
                sample(out, "bbt_store_size_bytes", "file", "wal", (uint64_t)st.st_size);
}

int bbt_metrics_write(const struct bbt_metrics_source *src, FILE *out)
{
        struct bbt_ingest_stats s;
        struct bbt_ingest_census c;
        int r;

        bbt_ingest_get_stats(src->ingest, &s);
        r = bbt_ingest_census(src->ingest, &c);
        if (r < 0)
                return r;
        write_info(src, out);
        write_counters(&s, out);
        write_histogram(&s, out);
        write_census(&c, out);
        write_registry(src->reg, out);
        write_store_size(src->store_path, out);
        bbt_ingest_census_free(&c);
        return ferror(out) ? -EIO : 0;
}

int bbt_listen_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len)
{
        char host[INET6_ADDRSTRLEN + 2];
        const char *colon, *p;
        size_t host_len;
        long port = 0;
        bool v6 = text[0] == '[';

        if (v6) {
                const char *close = strchr(text, ']');

                if (!close || close[1] != ':')
                        return -EINVAL;
                host_len = (size_t)(close - text - 1);
                colon = close + 1;
                text++;
        } else {
                colon = strrchr(text, ':');
                if (!colon)
                        return -EINVAL;
                host_len = (size_t)(colon - text);
        }
        if (host_len == 0 || host_len >= sizeof(host))
                return -EINVAL;
        memcpy(host, text, host_len);
        host[host_len] = '\0';
        /* Decimal digits only: no sign, no blanks, no 0x. */
        for (p = colon + 1; *p >= '0' && *p <= '9' && port <= 65535; p++)
                port = port * 10 + (*p - '0');
        if (p == colon + 1 || *p || port < 1 || port > 65535)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        if (v6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;

                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *)ret;

                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t)port);
                if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*a);
        }
        return 0;
}
