/* Resend jobs: republish a seq range from the spool, paced; reply with what was sent and what the spool does not hold. */
#include "agent_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bbt/log.h"
#include "bbt/mqtt.h"
#include "counters.h"
#include "missing.h"
#include "spool.h"

#define RESEND_MISSING_MAX 64 /* ranges a resend reply names as missing */

struct resend_ctx {
        struct bbt_agent *a;
        struct bbt_resend_job *job;
        int failed;
        uint64_t withheld;
};

int bbt_resend_queue(struct bbt_agent *a, const char *id, uint64_t from, uint64_t to)
{
        struct bbt_resend *rs = &a->resend;
        struct bbt_resend_job *job;

        if (rs->n_jobs == BBT_RESEND_JOBS_MAX)
                return -EBUSY;
        job = &rs->jobs[rs->n_jobs];
        snprintf(job->id, sizeof(job->id), "%s", id);
        job->from = from;
        job->to = to;
        job->next = from;
        job->expect = from;
        job->sent = 0;
        job->withheld = 0;
        job->missing = NULL;
        job->n_missing = 0;
        rs->n_jobs++;
        return 0;
}

bool bbt_resend_pending(const struct bbt_agent *a)
{
        return a->resend.n_jobs > 0;
}

void bbt_resend_free(struct bbt_agent *a)
{
        for (size_t i = 0; i < a->resend.n_jobs; i++)
                free(a->resend.jobs[i].missing);
        a->resend.n_jobs = 0;
}

/* Notes FROM..TO of JOB's range as not in the spool (the first
 * RESEND_MISSING_MAX ranges; the aggregator asks again for the rest). */
static void job_note_missing(struct bbt_resend_job *job, uint64_t from, uint64_t to)
{
        if (from > to || job->n_missing == RESEND_MISSING_MAX)
                return;
        if (!job->missing) {
                job->missing = calloc(RESEND_MISSING_MAX, sizeof(*job->missing));
                if (!job->missing)
                        return;
        }
        job->missing[job->n_missing].from = from;
        job->missing[job->n_missing].to = to;
        job->n_missing++;
}

static int resend_record_cb(void *userdata, const struct bbt_spool_record *rec)
{
        struct resend_ctx *ctx = userdata;
        int mid, r;

        if (rec->seq > ctx->job->expect)
                job_note_missing(ctx->job, ctx->job->expect, rec->seq - 1);
        ctx->job->expect = rec->seq + 1;

        /* The live session's will would end the session in the eyes of a
         * consumer: it stays the broker's to publish. Other history goes out,
         * never retained. */
        if (rec->seq == ctx->a->session.will_seq) {
                ctx->withheld = rec->seq;
                return 0;
        }
        r = bbt_mqtt_publish(ctx->a->mqtt, rec->topic, rec->payload, rec->payload_len, 1, false, &mid);
        if (r < 0) {
                ctx->failed = r;
                return 1; /* not taken: carry on from here after reconnecting */
        }
        ctx->a->stats.resent++;
        ctx->a->stats.published++;
        return 0;
}

static void drop_job(struct bbt_resend *rs)
{
        free(rs->jobs[0].missing);
        memmove(&rs->jobs[0], &rs->jobs[1], (rs->n_jobs - 1) * sizeof(rs->jobs[0]));
        rs->n_jobs--;
}

/* The reply's result.missing: what the agent knows of the requested seqs its
 * spool does not hold (missing.c). */
static cJSON *missing_json(struct bbt_agent *a, const struct bbt_resend_job *job, uint64_t first_available)
{
        struct bbt_seq_range unstored[BBT_SPOOL_UNSTORED_RANGES];
        struct bbt_missing out[RESEND_MISSING_MAX];
        struct bbt_missing_facts facts = { .first_available = first_available, .unstored = unstored };
        cJSON *array = cJSON_CreateArray();
        size_t n;

        facts.n_skipped = bbt_counters_skipped(a->counters, &facts.skipped);
        facts.skipped_complete = facts.n_skipped < BBT_COUNTERS_SKIPPED_MAX;
        facts.n_unstored = bbt_spool_unstored_seqs(a->spool, unstored, BBT_SPOOL_UNSTORED_RANGES);
        n = bbt_missing_classify(job->missing, job->n_missing, &facts, out, RESEND_MISSING_MAX);
        for (size_t i = 0; i < n; i++) {
                cJSON *o = cJSON_CreateObject();

                cJSON_AddNumberToObject(o, "from", (double)out[i].from);
                cJSON_AddNumberToObject(o, "to", (double)out[i].to);
                cJSON_AddStringToObject(o, "reason", bbt_missing_reason_name(out[i].reason));
                cJSON_AddItemToArray(array, o);
        }
        return array;
}

static void finish_job(struct bbt_agent *a, struct bbt_resend_job *job, const struct bbt_spool_range *range)
{
        cJSON *result = cJSON_CreateObject(), *missing;
        uint64_t end = job->to < range->last_seq ? job->to : range->last_seq;

        /* The seqs after the last record given, up to the spool's last. */
        if (job->expect <= end)
                job_note_missing(job, job->expect, end);

        cJSON_AddNumberToObject(result, "from", (double)job->from);
        cJSON_AddNumberToObject(result, "to", (double)job->to);
        cJSON_AddNumberToObject(result, "sent", (double)job->sent);
        /* Below first_retained the spool no longer holds the range; above
         * last_seq nothing was ever produced. */
        cJSON_AddNumberToObject(result, "first_retained", (double)range->first_available);
        cJSON_AddNumberToObject(result, "last_seq", (double)range->last_seq);
        /* The will of the live session is the broker's to publish when the
         * session ends (or the clean stop's): not a gap, not lost. */
        if (job->withheld) {
                cJSON *w = cJSON_AddArrayToObject(result, "withheld");

                cJSON_AddItemToArray(w, cJSON_CreateNumber((double)job->withheld));
        }
        /* What the agent knows of the seqs it does not hold: not a gap to
         * ask for again. */
        missing = missing_json(a, job, range->first_available);
        if (cJSON_GetArraySize(missing) > 0)
                cJSON_AddItemToObject(result, "missing", missing);
        else
                cJSON_Delete(missing);
        bbt_log_info("resend %s: seq %" PRIu64 "..%" PRIu64 ": %" PRIu64 " records republished", job->id, job->from,
                     job->to, job->sent);
        bbt_commands_reply(a, job->id, true, NULL, result);
        drop_job(&a->resend);
}

size_t bbt_resend_run(struct bbt_agent *a, size_t budget)
{
        struct bbt_resend *rs = &a->resend;
        struct resend_ctx ctx = { .a = a, .job = &rs->jobs[0] };
        struct bbt_spool_range range;
        struct bbt_resend_job *job;
        int r;

        if (!rs->n_jobs || !a->session.connected || !budget)
                return 0;
        job = &rs->jobs[0];
        r = bbt_spool_read_range(a->spool, job->next, job->to, budget, resend_record_cb, &ctx, &range);
        if (r < 0) {
                bbt_log_error("resend %s: cannot read the spool: %s", job->id, strerror(-r));
                bbt_commands_reply(a, job->id, false, "cannot read the spool", NULL);
                drop_job(rs);
                return 0;
        }
        /* The withheld will is not sent: the reply names it instead. */
        job->sent += range.delivered - (ctx.withheld ? 1 : 0);
        if (ctx.withheld)
                job->withheld = ctx.withheld;
        job->next = range.next;
        if (range.done)
                finish_job(a, job, &range);
        return range.delivered;
}
