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

/* Adds {"from","to","reason"} to the reply's ARRAY. */
static void add_missing(cJSON *array, uint64_t from, uint64_t to, const char *reason)
{
        cJSON *o = cJSON_CreateObject();

        cJSON_AddNumberToObject(o, "from", (double)from);
        cJSON_AddNumberToObject(o, "to", (double)to);
        cJSON_AddStringToObject(o, "reason", reason);
        cJSON_AddItemToArray(array, o);
}

/* The first part of FROM..TO inside one of the N ranges R (ascending), in
 * *RET; false if none. */
static bool first_overlap(const struct bbt_seq_range *r, size_t n, uint64_t from, uint64_t to,
                          struct bbt_seq_range *ret)
{
        for (size_t i = 0; i < n; i++) {
                if (r[i].to < from || r[i].from > to)
                        continue;
                ret->from = r[i].from > from ? r[i].from : from;
                ret->to = r[i].to < to ? r[i].to : to;
                return true;
        }
        return false;
}

/* Splits each seq range of the resend that the spool does not hold by what
 * the agent knows of it: never used (skipped at a start after an unclean
 * stop: named whole, even where it reaches beyond the request), not stored
 * (a failed append), or neither -- a record lost from the spool (damage, a
 * tail cut off after a crash). Parts that are neither and lie below
 * FIRST_AVAILABLE are left to the reply's first_retained. */
static cJSON *missing_json(struct bbt_agent *a, const struct bbt_resend_job *job, uint64_t first_available)
{
        struct bbt_spool_seq_range u[BBT_SPOOL_UNSTORED_RANGES];
        struct bbt_seq_range unstored[BBT_SPOOL_UNSTORED_RANGES];
        const struct bbt_seq_range *skipped, *last_skipped = NULL;
        size_t n_skipped, n_unstored;
        cJSON *array = cJSON_CreateArray();

        n_skipped = bbt_counters_skipped(a->counters, &skipped);
        n_unstored = bbt_spool_unstored_seqs(a->spool, u, BBT_SPOOL_UNSTORED_RANGES);
        for (size_t i = 0; i < n_unstored; i++) {
                unstored[i].from = u[i].from;
                unstored[i].to = u[i].to;
        }
        for (size_t i = 0; i < job->n_missing; i++) {
                uint64_t at = job->missing[i].from, end = job->missing[i].to;

                while (at <= end && cJSON_GetArraySize(array) < RESEND_MISSING_MAX) {
                        struct bbt_seq_range sk, us;
                        bool in_s = first_overlap(skipped, n_skipped, at, end, &sk);
                        bool in_u = first_overlap(unstored, n_unstored, at, end, &us);
                        uint64_t upto = end;

                        if (in_s && sk.from == at) {
                                /* The whole range skipped, also beyond the
                                 * request: what arrived of it anywhere tells
                                 * the aggregator how much was used. */
                                const struct bbt_seq_range *whole = NULL;

                                for (size_t k = 0; k < n_skipped; k++)
                                        if (at >= skipped[k].from && at <= skipped[k].to)
                                                whole = &skipped[k];
                                if (whole && (!last_skipped || last_skipped != whole))
                                        add_missing(array, whole->from, whole->to, "skipped");
                                last_skipped = whole;
                                upto = sk.to;
                        } else if (in_u && us.from == at) {
                                add_missing(array, at, us.to, "unstored");
                                upto = us.to;
                        } else {
                                /* Up to the next range the agent knows more of. */
                                if (in_s && sk.from - 1 < upto)
                                        upto = sk.from - 1;
                                if (in_u && us.from - 1 < upto)
                                        upto = us.from - 1;
                                if (first_available > 0 && upto >= first_available)
                                        add_missing(array, at > first_available ? at : first_available, upto,
                                                    "damaged");
                        }
                        if (upto == UINT64_MAX)
                                break;
                        at = upto + 1;
                }
        }
        /* And every other range skipped (the newest first, while there is
         * room): the aggregator settles them all in this one round, also
         * those whose births were lost. */
        for (size_t k = n_skipped; k-- > 0 && cJSON_GetArraySize(array) < RESEND_MISSING_MAX;) {
                bool listed = false;
                const cJSON *e;

                cJSON_ArrayForEach(e, array)
                        if ((uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "from")) == skipped[k].from)
                                listed = true;
                if (!listed)
                        add_missing(array, skipped[k].from, skipped[k].to, "skipped");
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
