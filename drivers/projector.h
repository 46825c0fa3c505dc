/* The projector driver: polls a PJLink projector over TCP on the loop, reports status and alerts. */
#ifndef BBT_PROJECTOR_H
#define BBT_PROJECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "bbt/driver.h"

#define BBT_PROJECTOR_POLL_INTERVAL_MS 30000
#define BBT_PROJECTOR_TIMEOUT_MS 5000

struct bbt_projector_options {
        const char *host;          /* name or address of the projector; required */
        uint16_t port;             /* 0: 4352 */
        const char *password;      /* PJLink password, <= 32 bytes; NULL: no authentication */
        uint32_t poll_interval_ms; /* between the end of one poll and the next; 0: 30 s */
        uint32_t timeout_ms;       /* for each step: resolve, connect, greeting, each reply; 0: 5 s */
        int64_t lamp_hours_limit;  /* raise lamp_hours when a lamp reaches it; 0: never */
        uint32_t unreachable_alert_ms; /* raise projector_unreachable when no poll has
                                          succeeded for this long; 0: never */
};

/* Fills OPTS with the defaults (no host). */
BBT_API void bbt_projector_options_init(struct bbt_projector_options *opts);

/* Creates the driver for ENV (copied; ENV->events and what it points to must
 * outlive the driver) and OPTS (copied). Returns 0 and the driver in RET,
 * -EINVAL for a missing host, a password longer than 32 bytes or with a
 * control character, or an interval or timeout above 24 h, -ENOMEM. Start it
 * with d->ops->start(d); free it with d->ops->destroy(d) once stop() has
 * called back, or if it was never started. */
BBT_API int bbt_projector_new(const struct bbt_driver_env *env, const struct bbt_projector_options *opts,
                              struct bbt_driver **ret);

/* Called once with the outcome of bbt_projector_power(): STATUS 0 when the
 * projector accepted the command, or a negative errno (BBT_PJLINK_ERR3 when
 * it is warming up or cooling down, BBT_PJLINK_ERRA for a wrong password,
 * -ETIMEDOUT, -ECONNREFUSED, -ECANCELED when the driver stopped first, ...)
 * with REASON saying what happened (NULL on success; valid during the call). */
typedef void (*bbt_projector_power_cb)(void *userdata, int status, const char *reason);

/* Switches the projector on or off (PJLink POWR 1 / POWR 0) on its own
 * connection, after the poll in progress if any, then polls again at once so
 * the new state is reported. Returns 0 when queued (CB then runs exactly once,
 * from the loop), -EBUSY while an earlier power command is pending, -EINVAL
 * for a driver that is not a started projector driver or is stopping. */
BBT_API int bbt_projector_power(struct bbt_driver *d, bool on, bbt_projector_power_cb cb, void *userdata);

struct bbt_projector_stats {
        uint64_t polls;          /* polls finished, successful or not */
        uint64_t polls_ok;
        uint64_t fail_resolve;   /* host name did not resolve */
        uint64_t fail_connect;   /* TCP connect refused or unreachable, write errors */
        uint64_t fail_timeout;   /* no answer within timeout_ms */
        uint64_t fail_closed;    /* the projector closed the connection before answering */
        uint64_t fail_auth;      /* ERRA, or a password required and none configured */
        uint64_t fail_protocol;  /* not PJLink: bad greeting, garbage, an overlong line */
        uint64_t reconnects;     /* within a poll, after the projector closed between replies */
        uint64_t cmd_errors;     /* ERR1..ERR4 answers to single queries (that item is then absent) */
        uint64_t bad_replies;    /* malformed values (that item is then absent) */
        uint64_t skipped;        /* unsolicited lines skipped (%2LKUP=, ...) */
        uint64_t power_ok, power_failed;
};

/* Copies the driver's counters into RET. D must be a projector driver. */
BBT_API void bbt_projector_get_stats(const struct bbt_driver *d, struct bbt_projector_stats *ret);

/* Why the last poll failed ("timeout: no reply to LAMP within 5000 ms"), or
 * "" when it succeeded or none ran yet. Owned by the driver; valid until the
 * next poll ends. */
BBT_API const char *bbt_projector_last_error(const struct bbt_driver *d);

#endif
