/* What the agent says of the seqs a resend asks for that its spool does not hold: a pure function. */
#include "missing.h"

const char *bbt_missing_reason_name(enum bbt_missing_reason r)
{
        switch (r) {
        case BBT_MISSING_SKIPPED:
                return "skipped";
        case BBT_MISSING_UNSTORED:
                return "unstored";
        case BBT_MISSING_DAMAGED:
                return "damaged";
        case BBT_MISSING_UNKNOWN:
                return "unknown";
        }
        return "unknown";
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

static bool add(struct bbt_missing *out, size_t *n, size_t max, uint64_t from, uint64_t to,
                enum bbt_missing_reason reason)
{
        if (*n == max)
                return false;
        out[*n].from = from;
        out[*n].to = to;
        out[*n].reason = reason;
        (*n)++;
        return true;
}

/* FROM..TO is neither skipped nor unstored: a record lost from the spool, or,
 * below the oldest skipped range remembered when older ones were forgotten,
 * something the agent cannot tell. */
static void add_gone(const struct bbt_missing_facts *f, struct bbt_missing *out, size_t *n, size_t max,
                     uint64_t from, uint64_t to)
{
        uint64_t floor = f->skipped_complete || f->n_skipped == 0 ? 0 : f->skipped[0].from;

        if (f->first_available == 0 || to < f->first_available)
                return;
        if (from < f->first_available)
                from = f->first_available;
        if (from < floor) {
                uint64_t end = to < floor - 1 ? to : floor - 1;

                if (!add(out, n, max, from, end, BBT_MISSING_UNKNOWN))
                        return;
                from = end + 1;
        }
        if (from <= to && from >= floor)
                add(out, n, max, from, to, BBT_MISSING_DAMAGED);
}

size_t bbt_missing_classify(const struct bbt_seq_range *req, size_t n_req, const struct bbt_missing_facts *f,
                            struct bbt_missing *out, size_t max)
{
        const struct bbt_seq_range *last_skipped = NULL;
        size_t n = 0;

        for (size_t i = 0; i < n_req; i++) {
                uint64_t at = req[i].from, end = req[i].to;

                while (at <= end && n < max) {
                        struct bbt_seq_range sk, us;
                        bool in_s = first_overlap(f->skipped, f->n_skipped, at, end, &sk);
                        bool in_u = first_overlap(f->unstored, f->n_unstored, at, end, &us);
                        uint64_t upto = end;

                        if (in_s && sk.from == at) {
                                const struct bbt_seq_range *whole = NULL;

                                for (size_t k = 0; k < f->n_skipped; k++)
                                        if (at >= f->skipped[k].from && at <= f->skipped[k].to)
                                                whole = &f->skipped[k];
                                if (whole && whole != last_skipped)
                                        add(out, &n, max, whole->from, whole->to, BBT_MISSING_SKIPPED);
                                last_skipped = whole;
                                upto = sk.to;
                        } else if (in_u && us.from == at) {
                                add(out, &n, max, at, us.to, BBT_MISSING_UNSTORED);
                                upto = us.to;
                        } else {
                                /* Up to the next range the agent knows more of. */
                                if (in_s && sk.from - 1 < upto)
                                        upto = sk.from - 1;
                                if (in_u && us.from - 1 < upto)
                                        upto = us.from - 1;
                                add_gone(f, out, &n, max, at, upto);
                        }
                        if (upto == UINT64_MAX)
                                break;
                        at = upto + 1;
                }
        }
        for (size_t k = f->n_skipped; k-- > 0 && n < max;) {
                bool listed = false;

                for (size_t i = 0; i < n && !listed; i++)
                        listed = out[i].reason == BBT_MISSING_SKIPPED && out[i].from == f->skipped[k].from;
                if (!listed)
                        add(out, &n, max, f->skipped[k].from, f->skipped[k].to, BBT_MISSING_SKIPPED);
        }
        return n;
}
