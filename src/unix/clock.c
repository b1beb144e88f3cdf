/* SPDX-License-Identifier: MIT */
/*
 * clock.c - the monotonic clock: int64 nanoseconds on CLOCK_MONOTONIC, which
 * every deadline of the library is reckoned on (deadline.c turns timeouts
 * into them).
 */
#include <time.h>

#include "../platform.h"

int64_t cth__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

CTH_API double cth_monotonic(void)
{
    return (double)cth__now_ns() / 1e9;
}
