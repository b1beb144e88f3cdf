/*
 * futex.c - the platform futex on Linux: FUTEX_WAIT_BITSET with an absolute
 * CLOCK_MONOTONIC deadline, FUTEX_WAKE and FUTEX_CMP_REQUEUE, all
 * process-private.
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../internal.h"

int cth__os_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != CTH__NO_DEADLINE) {
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                     expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 0;
    if (errno == ETIMEDOUT)
        return CTH_ETIMEDOUT;
    if (errno == EINTR)
        return CTH_EINTR;
    return 0; /* EAGAIN: the value changed before we slept */
}

void cth__os_futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

int cth__futex_requeue(_Atomic uint32_t *from, uint32_t expected, _Atomic uint32_t *to)
{
    long r = syscall(SYS_futex, (uint32_t *)from, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 0,
                     (void *)(uintptr_t)1, (uint32_t *)to, expected);
    return r > 0 ? (int)r : 0; /* EAGAIN: *from changed, its sleeper is gone */
}
