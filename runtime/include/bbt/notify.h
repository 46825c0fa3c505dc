/* The systemd notification protocol (READY=1, WATCHDOG=1, ...) without linking libsystemd. */
#ifndef BBT_NOTIFY_H
#define BBT_NOTIFY_H

#include <stdint.h>

#include "bbt/base.h"

/* Sends STATE (e.g. "READY=1\nSTATUS=...") to the socket named by
 * $NOTIFY_SOCKET. Returns 1 if sent, 0 when not run under a service manager
 * (no $NOTIFY_SOCKET), or -errno. libsystemd's sd_notify() does the same, but
 * linking it and its compression and crypto libraries costs the agent about
 * 1 MB of resident memory for one datagram (see docs/BENCHMARKS.md). */
BBT_API int bbt_notify(const char *state);

/* The watchdog interval the service manager asked for, in microseconds, from
 * $WATCHDOG_USEC (when $WATCHDOG_PID is unset or names this process); 0 if none. */
BBT_API uint64_t bbt_notify_watchdog_usec(void);

#endif
