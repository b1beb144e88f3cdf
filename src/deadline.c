/* SPDX-License-Identifier: MIT */
/*
 * deadline.c - timeouts to deadlines and back: portable arithmetic over the
 * platform's monotonic clock (cth__now_ns). Deadlines are int64 nanoseconds
 * on CLOCK_MONOTONIC; a timeout is validated by cth__check_timeout before it
 * gets here.
 */
#include <math.h>

#include "deadline.h"

int64_t cth__deadline(double timeout)
{
    if (timeout == CTH_FOREVER)
        return CTH__NO_DEADLINE;
    int64_t now = cth__now_ns();
    if (timeout == 0)
        return now;
    /* CTH_TIMEOUT_MAX seconds is 9.2e18 ns: add with saturation. */
    double ns = ceil(timeout * 1e9);
    if (ns >= (double)(CTH__NO_DEADLINE - now))
        return CTH__NO_DEADLINE - 1;
    return now + (int64_t)ns;
}

double cth__timeout_left(int64_t deadline)
{
    if (deadline == CTH__NO_DEADLINE)
        return CTH_FOREVER;
    int64_t left = deadline - cth__now_ns();
    return left > 0 ? (double)left / 1e9 : 0;
}
