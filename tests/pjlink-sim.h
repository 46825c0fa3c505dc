/* A PJLink projector simulator on 127.0.0.1 for tests: class 1 and 2, auth, power transitions, real devices' quirks. */
#ifndef BBT_TEST_PJLINK_SIM_H
#define BBT_TEST_PJLINK_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bbt/protocol.h"

#define BBT_PJLINK_SIM_LAMPS_MAX 8

struct bbt_pjlink_sim_conn;

/* Call bbt_pjlink_sim_init(), change the settings, then bbt_pjlink_sim_start().
 * Settings may be changed at any time; they apply to the next line received
 * (and the greeting settings to the next connection). The simulator parses
 * and answers on its own, independently of drivers/pjlink.c. */
struct bbt_pjlink_sim {
        /* ---- the projector ---- */
        int cls;                    /* 1 or 2: the CLSS answer; class 2 also takes %2 commands */
        const char *password;       /* NULL: no authentication ("PJLINK 0") */
        const char *random;         /* 8 hex digits for "PJLINK 1 <random>"; NULL: a new one each connection */
        enum bbt_power power;       /* off, on, cooling, warming */
        unsigned warm_ms, cool_ms;  /* POWR 1: warming this long, then on; POWR 0: cooling, then off */
        char input[3];              /* INPT answer, e.g. "31" */
        char erst[7];               /* ERST answer: six digits 0-2 */
        unsigned n_lamps;           /* 0: LAMP answers ERR1 (a laser or LED projector) */
        int64_t lamp_hours[BBT_PJLINK_SIM_LAMPS_MAX];
        const char *name, *inf1, *inf2, *info;

        /* ---- quirks ---- */
        size_t nul_padding;         /* NUL bytes after the greeting and every reply */
        bool lkup_before_reply;     /* "%2LKUP=<mac>" in front of every reply, in the same write */
        unsigned close_after;       /* close the connection after this many replies; 0: never */
        const char *hangup_on;      /* close without answering when this command (e.g. "ERST") arrives */
        const char *err_cmd;        /* answer this command (e.g. "LAMP") with ERR<err_code> */
        char err_code;              /* '1'..'4', or 'A' */
        bool erra;                  /* answer any first command with "PJLINK ERRA", then close */
        bool silent;                /* greet, then never answer */
        unsigned greeting_delay_ms; /* wait this long before the greeting */
        const char *greeting;       /* sent (with "\r") instead of the real greeting; NULL: the real one */
        unsigned split_ms;          /* send each reply in two writes this far apart; 0: one write */
        const char *raw_reply;      /* send this (with "\r") instead of the real answer... */
        const char *raw_cmd;        /* ...to this command only; NULL: to every command */

        /* ---- what happened ---- */
        int port;                   /* the listening port, after start */
        unsigned connections;
        unsigned commands;          /* lines received after authentication */
        unsigned auth_ok, auth_failed;
        unsigned power_sets;        /* POWR 0/1 accepted */
        unsigned open_conns;
        char last_command[160];     /* the last line received, digest removed */

        /* ---- private ---- */
        uv_loop_t *loop;
        uv_tcp_t server;
        uv_timer_t power_timer;
        bool running;
        unsigned closing;           /* handles of the simulator itself still closing */
        enum bbt_power power_target;
        unsigned rng;
        struct bbt_pjlink_sim_conn *conns;
};

/* Fills S with a class 1 projector, no password, power off, input 31, no
 * errors, one lamp with 1200 hours, name "Classroom", and no quirks. */
void bbt_pjlink_sim_init(struct bbt_pjlink_sim *s);
/* Listens on 127.0.0.1 and an ephemeral port (S->port) on LOOP. Returns 0 or a
 * negative errno. */
int bbt_pjlink_sim_start(struct bbt_pjlink_sim *s, uv_loop_t *loop);
/* Closes the listener and every connection; the handles finish closing as
 * the loop runs (bbt_test_loop_close() waits for them). */
void bbt_pjlink_sim_stop(struct bbt_pjlink_sim *s);
/* Closes every open connection now, as a projector that hangs up. */
void bbt_pjlink_sim_drop_all(struct bbt_pjlink_sim *s);

#endif
