/* SPDX-License-Identifier: MIT */
/*
 * wait.c - the one blocking primitive every cthreading wait goes through, and
 * the main thread's interruption.
 *
 * A wait in the main thread publishes the address it sleeps on
 * (main_wait_addr) and checks the pending flag before and after sleeping;
 * an interruption posts the flag, then wakes that address, so one landing
 * between the check and the sleep still wakes the sleeper. The main thread
 * always sleeps with a deadline (at most an hour a slice): the kernel then
 * reports EINTR whenever a signal handler ran, SA_RESTART or not (an untimed
 * FUTEX_WAIT is restarted silently), and that becomes CTH_EINTR too. In
 * other threads EINTR is a spurious wake-up.
 *
 * cth_interrupt_main also sends the main thread a real signal, so that its
 * handler runs. One interruption must be reported once: if the main thread
 * took the flag before that signal reached it, the signal could land in its
 * next wait and be reported again. So the sender counts itself in
 * signals_in_flight from before posting until its pthread_kill has
 * returned, and a main thread that takes the flag first waits for that
 * count to drop, then makes one system call: a signal queued for a thread is
 * delivered when it returns from the kernel, so the handler runs there,
 * outside any wait.
 */
#include <limits.h>
#include <sched.h>
#include <time.h>

#include "wait.h"

#define MAIN_SLICE_NS (3600LL * 1000000000LL)

static _Atomic uint32_t interrupt_pending;
static _Atomic uint32_t signals_in_flight;
static _Atomic(_Atomic uint32_t *) main_wait_addr;

/* Take a posted interruption, with the signal sent along with it. */
static int interrupt_take(void)
{
    if (!atomic_exchange(&interrupt_pending, 0))
        return 0;
    while (atomic_load(&signals_in_flight))
        sched_yield();
    sched_yield(); /* returning from it delivers a queued signal now */
    return 1;
}

_Thread_local _Atomic uint32_t *cth__wait_blocked_count;

/* A wait outside the main thread, counted in the caller's blocked count. */
static int counted_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    _Atomic uint32_t *blocked = cth__wait_blocked_count;
    if (!blocked)
        return cth__os_futex_wait(addr, expected, deadline);
    atomic_fetch_add_explicit(blocked, 1, memory_order_relaxed);
    int r = cth__os_futex_wait(addr, expected, deadline);
    atomic_fetch_sub_explicit(blocked, 1, memory_order_relaxed);
    return r;
}

int cth__futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    if (deadline != CTH__NO_DEADLINE && cth__now_ns() >= deadline)
        return CTH_ETIMEDOUT;
    if (!cth__is_main_thread()) {
        int r = counted_wait(addr, expected, deadline);
        return r == CTH_EINTR ? 0 : r;
    }
    atomic_store(&main_wait_addr, addr);
    int r = CTH_EINTR;
    if (!interrupt_take()) {
        int64_t slice = cth__now_ns() + MAIN_SLICE_NS;
        r = cth__os_futex_wait(addr, expected, deadline < slice ? deadline : slice);
        if (r == CTH_ETIMEDOUT && deadline >= slice)
            r = 0; /* only the slice ran out */
        if (interrupt_take())
            r = CTH_EINTR;
    }
    atomic_store(&main_wait_addr, NULL);
    return r;
}

void cth__futex_wake(_Atomic uint32_t *addr, int n)
{
    cth__os_futex_wake(addr, n);
}

void cth__interrupt_post(void)
{
    atomic_store(&interrupt_pending, 1);
}

void cth__interrupt_signal_begin(void)
{
    atomic_fetch_add(&signals_in_flight, 1);
}

void cth__interrupt_signal_end(void)
{
    atomic_fetch_sub(&signals_in_flight, 1);
}

/* A wake can be lost: the main thread may have checked the flag and not
 * yet gone to sleep (its futex word did not change, so the sleep goes
 * ahead; the POSIX emulation's window, from the check to its bucket's lock,
 * is the wider). So wake again, a little later each time, for as long as
 * the main thread is in a wait and has not taken the interruption, up to
 * about a second; when it was asleep, the first wake suffices. */
#define WAKE_TRIES 200
#define WAKE_PAUSE_NS 5000000L /* 5 ms */

void cth__interrupt_wake(void)
{
    for (int i = 0; i < WAKE_TRIES; i++) {
        _Atomic uint32_t *addr = atomic_load(&main_wait_addr);
        if (!addr || !atomic_load(&interrupt_pending))
            return;
        cth__os_futex_wake(addr, INT_MAX);
        struct timespec pause = {0, i == 0 ? 20000L : WAKE_PAUSE_NS};
        nanosleep(&pause, NULL);
    }
}

void cth__interrupt_main_wait(void)
{
    cth__interrupt_post();
    cth__interrupt_wake();
}

void cth__interrupt_reset(void)
{
    atomic_store(&interrupt_pending, 0);
    atomic_store(&signals_in_flight, 0);
    atomic_store(&main_wait_addr, NULL);
}
