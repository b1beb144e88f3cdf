/* SPDX-License-Identifier: MIT */
/*
 * futex.c - the platform futex on Linux: FUTEX_WAIT_BITSET with an absolute
 * CLOCK_MONOTONIC deadline, FUTEX_WAKE and FUTEX_CMP_REQUEUE, process-private,
 * and the process-shared wait and wake of the process pool.
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../platform.h"

/* FUTEX_WAIT_BITSET with flags (FUTEX_PRIVATE_FLAG or 0) until deadline. */
static int futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline, int flags)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != CTH__NO_DEADLINE) {
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET | flags, expected, tsp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 0;
    if (errno == ETIMEDOUT)
        return CTH_ETIMEDOUT;
    if (errno == EINTR)
        return CTH_EINTR;
    return 0; /* EAGAIN: the value changed before we slept */
}

int cth__os_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    return futex_wait(addr, expected, deadline, FUTEX_PRIVATE_FLAG);
}

/* The process-shared pair (a word in a shared mapping): keyed by the
 * mapping's page, not by this process's address space. */
int cth__os_futex_wait_shared(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    return futex_wait(addr, expected, deadline, 0);
}

void cth__os_futex_wake_shared(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

#if defined(CTH_VALGRIND) && defined(__x86_64__)
/* FUTEX_WAKE made on the real CPU, when a helgrind build runs under
 * valgrind: valgrind takes a wake made by the program for a read of the
 * word, and a wake can come after its waiter has left and its stack holds
 * other data (src/valgrind_atomics.h says why that is harmless, and what
 * helgrind reports instead). Called through VALGRIND_NON_SIMD_CALL2, it
 * touches nothing but registers (no libc, no globals), as valgrind.h asks.
 * On other processors the wake stays valgrind's to see. */
static unsigned long wake_outside_valgrind(unsigned long tid, unsigned long addr, unsigned long n)
{
    (void)tid;
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "0"((long)SYS_futex), "D"(addr),
                       "S"((long)(FUTEX_WAKE | FUTEX_PRIVATE_FLAG)), "d"(n)
                     : "rcx", "r11", "memory");
    return (unsigned long)r;
}
#endif

const bool cth__os_futex_wake_signal_safe = true;

void cth__os_futex_wake(_Atomic uint32_t *addr, int n)
{
#if defined(CTH_VALGRIND) && defined(__x86_64__)
    if (RUNNING_ON_VALGRIND) {
        (void)VALGRIND_NON_SIMD_CALL2(wake_outside_valgrind, addr, n);
        return;
    }
#endif
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

int cth__futex_requeue(_Atomic uint32_t *from, uint32_t expected, _Atomic uint32_t *to)
{
    long r = syscall(SYS_futex, (uint32_t *)from, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 0,
                     (void *)(uintptr_t)1, (uint32_t *)to, expected);
    return r > 0 ? (int)r : 0; /* EAGAIN: *from changed, its sleeper is gone */
}
