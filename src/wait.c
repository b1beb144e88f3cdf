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
 * ends the sleep with EINTR whenever a signal handler ran, SA_RESTART or not
 * (an untimed FUTEX_WAIT is restarted silently). In other threads EINTR is a
 * spurious wake-up.
 *
 * Which signals interrupt. As in Python (PEP 475), a handler that returns
 * does not end the wait: it resumes toward its deadline (the caller sees a
 * spurious wake-up and waits again). Only the interrupting signals do:
 * SIGINT, and those the program names with cth_interrupt_on_signal (a bit
 * set, interrupting_mask). EINTR does not say which handler ran, so the
 * library wraps the program's handler of each interrupting signal in its
 * own (a trampoline bound to that handler, with or without SA_SIGINFO),
 * which calls the program's, then posts the interruption. The main thread
 * looks at their dispositions before each sleep (one sigaction query each:
 * usually SIGINT alone) and wraps a handler the program has installed
 * since; SIG_DFL and SIG_IGN are left as they are. A handler that runs in
 * another thread (a process-directed signal lands on any thread that does
 * not block it) also wakes the main thread's sleep, where the platform's
 * wake is a plain system call (Linux).
 *
 * cth_interrupt_main also sends the main thread a real signal, so that its
 * handler runs. One interruption must be reported once: if the main thread
 * took the flag before that signal reached it, the signal could land in its
 * next wait and be reported again (its trampoline posts again). So the
 * sender counts itself in signals_in_flight from before posting until its
 * pthread_kill has returned, and a main thread that sees the flag waits for
 * that count to drop, then makes one system call (a signal queued for a
 * thread is delivered when it returns from the kernel, so the handler runs
 * there), and only then takes the flag, which the handler's post joins.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include "cthreading/thread.h"
#include "wait.h"

#define MAIN_SLICE_NS (3600LL * 1000000000LL)

static _Atomic uint32_t interrupt_pending;
static _Atomic uint32_t signals_in_flight;
static _Atomic(_Atomic uint32_t *) main_wait_addr;

/* Take a posted interruption, with the signal sent along with it. */
static int interrupt_take(void)
{
    if (!atomic_load(&interrupt_pending))
        return 0;
    while (atomic_load(&signals_in_flight))
        sched_yield();
    sched_yield(); /* returning from it delivers a queued signal now */
    return atomic_exchange(&interrupt_pending, 0) != 0;
}

_Thread_local _Atomic uint32_t *cth__wait_blocked_count __attribute__((tls_model("initial-exec")));
_Thread_local bool cth__wait_interrupt_deferred __attribute__((tls_model("initial-exec")));

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

/* ---- the interrupting signals ----------------------------------------------------- */

/* Bit signum - 1: signum interrupts the main thread's waits. */
static _Atomic uint64_t interrupting_mask = UINT64_C(1) << (SIGINT - 1);

/* The trampolines. Each is bound, once and for good, to the program's
 * handler it first wrapped, so that a program that saved a trampoline with
 * sigaction() and installs it again later (a save and restore around a
 * handler of its own) gets back the handler it saved. The same handler
 * wrapped again, for this signal or another, reuses its trampoline. */
#define TRAMPOLINES 8
static _Atomic uintptr_t plain_bound[TRAMPOLINES]; /* void (*)(int) */
static _Atomic uintptr_t info_bound[TRAMPOLINES];  /* void (*)(int, siginfo_t *, void *) */
static pthread_mutex_t wrap_lock = PTHREAD_MUTEX_INITIALIZER;

static bool signal_interrupts(int signum)
{
    return atomic_load(&interrupting_mask) >> (signum - 1) & 1;
}

/* A handler of an interrupting signal ran: post the interruption and, from
 * another thread, wake the main thread's sleep. Async-signal-safe. */
static void interrupting_signal_ran(int signum)
{
    if (!signal_interrupts(signum))
        return;
    int saved_errno = errno;
    atomic_store(&interrupt_pending, 1);
    _Atomic uint32_t *addr = atomic_load(&main_wait_addr);
    if (addr && cth__os_futex_wake_signal_safe && !cth__is_main_thread())
        cth__os_futex_wake(addr, INT_MAX);
    errno = saved_errno;
}

#define TRAMPOLINE(k)                                                                              \
    static void plain_##k(int signum)                                                              \
    {                                                                                              \
        ((void (*)(int))atomic_load(&plain_bound[k]))(signum);                                     \
        interrupting_signal_ran(signum);                                                           \
    }                                                                                              \
    static void info_##k(int signum, siginfo_t *info, void *context)                               \
    {                                                                                              \
        ((void (*)(int, siginfo_t *, void *))atomic_load(&info_bound[k]))(signum, info, context);  \
        interrupting_signal_ran(signum);                                                           \
    }
TRAMPOLINE(0)
TRAMPOLINE(1)
TRAMPOLINE(2)
TRAMPOLINE(3)
TRAMPOLINE(4)
TRAMPOLINE(5)
TRAMPOLINE(6)
TRAMPOLINE(7)

static void (*const plain_trampoline[TRAMPOLINES])(int) = {plain_0, plain_1, plain_2, plain_3,
                                                           plain_4, plain_5, plain_6, plain_7};
static void (*const info_trampoline[TRAMPOLINES])(int, siginfo_t *, void *) = {
    info_0, info_1, info_2, info_3, info_4, info_5, info_6, info_7};

static bool is_trampoline(const struct sigaction *sa)
{
    for (int k = 0; k < TRAMPOLINES; k++)
        if ((sa->sa_flags & SA_SIGINFO) ? sa->sa_sigaction == info_trampoline[k]
                                        : sa->sa_handler == plain_trampoline[k])
            return true;
    return false;
}

static bool is_program_handler(const struct sigaction *sa)
{
    if (!(sa->sa_flags & SA_SIGINFO) && (sa->sa_handler == SIG_DFL || sa->sa_handler == SIG_IGN))
        return false;
    return !is_trampoline(sa);
}

static bool same_handler(const struct sigaction *a, const struct sigaction *b)
{
    if ((a->sa_flags & SA_SIGINFO) != (b->sa_flags & SA_SIGINFO))
        return false;
    return (a->sa_flags & SA_SIGINFO) ? a->sa_sigaction == b->sa_sigaction
                                      : a->sa_handler == b->sa_handler;
}

/* The trampoline bound to the program's handler of sa, binding a free one
 * if none is (wrap_lock held); -1 when all are bound to other handlers. */
static int trampoline_for(const struct sigaction *sa)
{
    bool info = sa->sa_flags & SA_SIGINFO;
    uintptr_t fn = info ? (uintptr_t)sa->sa_sigaction : (uintptr_t)sa->sa_handler;
    _Atomic uintptr_t *bound = info ? info_bound : plain_bound;
    for (int k = 0; k < TRAMPOLINES; k++) {
        uintptr_t b = atomic_load(&bound[k]);
        if (b == fn)
            return k;
        if (!b) {
            atomic_store(&bound[k], fn);
            return k;
        }
    }
    return -1;
}

/* Wrap the program's handler of signum, if it has one not wrapped yet; the
 * replacement keeps its flags and mask. Past TRAMPOLINES distinct handlers
 * of a kind, a new one is left unwrapped (it does not interrupt). */
static void signal_wrap(int signum)
{
    struct sigaction now;
    if (sigaction(signum, NULL, &now) != 0 || !is_program_handler(&now))
        return;
    pthread_mutex_lock(&wrap_lock);
    int k;
    if (sigaction(signum, NULL, &now) == 0 && is_program_handler(&now) &&
        (k = trampoline_for(&now)) >= 0) {
        struct sigaction wrapped = now, replaced;
        if (now.sa_flags & SA_SIGINFO)
            wrapped.sa_sigaction = info_trampoline[k];
        else
            wrapped.sa_handler = plain_trampoline[k];
        /* The program changed it in between: put its choice back (the next
         * wait wraps it). */
        if (sigaction(signum, &wrapped, &replaced) == 0 && !same_handler(&replaced, &now))
            sigaction(signum, &replaced, NULL);
    }
    pthread_mutex_unlock(&wrap_lock);
}

/* Before the main thread sleeps: wrap what the program installed since. */
static void signals_wrap_all(void)
{
    uint64_t mask = atomic_load(&interrupting_mask);
    while (mask) {
        int signum = __builtin_ctzll(mask) + 1;
        mask &= mask - 1;
        signal_wrap(signum);
    }
}

CTH_API int cth_interrupt_on_signal(int signum, bool interrupts)
{
    if (signum < 1 || signum >= NSIG || signum > 64 || signum == SIGKILL || signum == SIGSTOP)
        return CTH_EINVAL;
    uint64_t bit = UINT64_C(1) << (signum - 1);
    if (interrupts) {
        atomic_fetch_or(&interrupting_mask, bit);
        signal_wrap(signum);
    } else {
        atomic_fetch_and(&interrupting_mask, ~bit);
    }
    return 0;
}

/* ---- the wait ---------------------------------------------------------------------- */

int cth__futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    if (deadline != CTH__NO_DEADLINE && cth__now_ns() >= deadline)
        return CTH_ETIMEDOUT;
    if (!cth__is_main_thread() || cth__wait_interrupt_deferred) {
        int r = counted_wait(addr, expected, deadline);
        return r == CTH_EINTR ? 0 : r;
    }
    signals_wrap_all();
    atomic_store(&main_wait_addr, addr);
    int r = CTH_EINTR;
    if (!interrupt_take()) {
        int64_t slice = cth__now_ns() + MAIN_SLICE_NS;
        r = cth__os_futex_wait(addr, expected, deadline < slice ? deadline : slice);
        if (r == CTH_ETIMEDOUT && deadline >= slice)
            r = 0; /* only the slice ran out */
        if (r == CTH_EINTR)
            r = 0; /* a handler ran: the wait resumes, unless it interrupts */
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

bool cth__interrupt_pending(void)
{
    return atomic_load_explicit(&interrupt_pending, memory_order_relaxed) != 0;
}

void cth__interrupt_reset(void)
{
    pthread_mutex_init(&wrap_lock, NULL); /* a thread gone with the fork may have held it */
    atomic_store(&interrupt_pending, 0);
    atomic_store(&signals_in_flight, 0);
    atomic_store(&main_wait_addr, NULL);
}
