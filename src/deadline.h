/* SPDX-License-Identifier: MIT */
/*
 * deadline.h - timeouts as the API takes them (seconds, a double, base.h's
 * rules) turned into deadlines on the monotonic clock, and back. Portable
 * arithmetic over cth__now_ns (src/deadline.c).
 */
#ifndef CTH_DEADLINE_H
#define CTH_DEADLINE_H

#include "platform.h"

/* Validate a timeout (base.h): 0 if usable, else CTH_EINVAL or CTH_EOVERFLOW. */
static inline int cth__check_timeout(double timeout)
{
    if (timeout >= 0) /* false for NaN */
        return timeout <= CTH_TIMEOUT_MAX ? 0 : CTH_EOVERFLOW;
    return timeout == CTH_FOREVER ? 0 : CTH_EINVAL;
}

/* Turn a validated timeout into a deadline: CTH_FOREVER gives
 * CTH__NO_DEADLINE, 0 gives "now" (already due). */
int64_t cth__deadline(double timeout);

/* What is left of a deadline, as a timeout for a nested call: CTH_FOREVER
 * for CTH__NO_DEADLINE, else the seconds to go (0 once it has passed). */
double cth__timeout_left(int64_t deadline);

/* Validate and convert in one step: 0, CTH_EINVAL or CTH_EOVERFLOW. */
static inline int cth__timeout_to_deadline(double timeout, int64_t *deadline)
{
    int err = cth__check_timeout(timeout);
    if (err == 0)
        *deadline = cth__deadline(timeout);
    return err;
}

#endif
