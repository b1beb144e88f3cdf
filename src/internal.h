/*
 * internal.h - the platform layer and helpers shared by the modules.
 * Nothing here is exported: every symbol is hidden (see the build) and
 * carries the cth__ prefix.
 */
#ifndef CTH_INTERNAL_H
#define CTH_INTERNAL_H

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cthreading/base.h"

/* ---- time ---------------------------------------------------------------- */

/* A deadline is an absolute CLOCK_MONOTONIC time in nanoseconds. */
#define CTH__NO_DEADLINE INT64_MAX

/* Now, on CLOCK_MONOTONIC, in nanoseconds. */
int64_t cth__now_ns(void);

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

/* ---- callbacks ------------------------------------------------------------ */

/* A user callback returned the nonzero value: record it as the calling
 * thread's cth_task_error() and return CTH_ETASK, the code the blocking
 * call hands back (base.h's callback rule). */
int cth__task_failed(int value);

/* ---- futex ---------------------------------------------------------------- */

/*
 * Block while *addr == expected, until woken, the deadline passes, or the
 * caller is interrupted. Returns 0 (woken, value changed, or spurious: the
 * caller re-checks its condition), CTH_ETIMEDOUT once the deadline has passed,
 * or CTH_EINTR in the main thread only, when cth_interrupt_main() was called
 * or a signal handler ran in it during the wait. Other threads never see
 * CTH_EINTR: a signal there is a spurious wake-up.
 */
int cth__futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline);

/* Wake up to n threads blocked on addr (INT32_MAX: all of them). */
void cth__futex_wake(_Atomic uint32_t *addr, int n);

/* Move one thread blocked on from onto to, waking none, if *from still
 * equals expected; it is then woken by a cth__futex_wake of to. Returns how
 * many moved (0 or 1). Where the platform cannot requeue, it wakes the
 * threads on from instead and returns 0: they find their word changed and
 * carry on as if woken from to.
 * (Linux: FUTEX_CMP_REQUEUE; src/unix/futex_posix.c: a wake.) */
int cth__futex_requeue(_Atomic uint32_t *from, uint32_t expected, _Atomic uint32_t *to);

/* The platform's futex (src/linux/futex.c, or src/unix/futex_posix.c):
 * sleep while *addr == expected until the absolute deadline; returns 0
 * (woken, changed, spurious), CTH_ETIMEDOUT, or CTH_EINTR when a signal
 * handler ran. */
int cth__os_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline);
void cth__os_futex_wake(_Atomic uint32_t *addr, int n);

/* ---- the main thread and its interruption ------------------------------------ */

/* True when the caller is the process's main thread (its tid is the pid). */
int cth__is_main_thread(void);

/* Mark an interruption pending for the main thread: its next cthreading
 * wait, or the one it is in once woken, returns CTH_EINTR (the wait that
 * reports it consumes it). */
void cth__interrupt_post(void);

/* Bracket the sending of a real signal that goes with a posted
 * interruption (cth_interrupt_main): begin before posting, end once
 * pthread_kill has returned. The main thread does not report the
 * interruption before the signal has been delivered to it (wait.c). */
void cth__interrupt_signal_begin(void);
void cth__interrupt_signal_end(void);

/* Wake the main thread's current cthreading wait, if it is in one, so that
 * it sees a posted interruption. */
void cth__interrupt_wake(void);

/* Post, then wake: the main thread's current cthreading wait, or its next
 * one, returns CTH_EINTR. A wait that consumed an interruption it cannot
 * report (it succeeded anyway) calls this to keep it for the next wait. */
void cth__interrupt_main_wait(void);

/* Forget a pending interruption (fork child). */
void cth__interrupt_reset(void);

/* ---- the OS thread layer ------------------------------------------------------ */

/* The kernel's id for the calling thread (gettid). */
long cth__os_tid(void);

/* In a fork child: forget the cached tid and pid. */
void cth__os_after_fork_child(void);

/* Push a name to the OS for the calling thread, truncated to its limit. */
void cth__os_set_name_self(const char *name);

/* Ask the OS to end the calling thread's timed waits as close to their
 * deadline as it can (Linux: a 1 ns timer slack instead of 50 us). The
 * timer service's thread uses it. */
void cth__os_precise_timeouts_self(void);

/* ---- valgrind annotations ------------------------------------------------------- */

/* Built in only with -DCTH_VALGRIND=ON (the helgrind CI run); otherwise
 * nothing. There every C11 atomic operation tells helgrind what it orders
 * (valgrind_atomics.h), which covers the futex code. The macros below add
 * the happens-before edges that go through neither atomics nor the pthread
 * calls helgrind knows (pthread_once): BEFORE on the releasing side, AFTER
 * on the acquiring side, both naming the same address. */
#ifdef CTH_VALGRIND
#include <valgrind/helgrind.h>

#include "valgrind_atomics.h" /* every C11 atomic tells helgrind what it orders */
#define CTH__HAPPENS_BEFORE(addr) ANNOTATE_HAPPENS_BEFORE(addr)
#define CTH__HAPPENS_AFTER(addr) ANNOTATE_HAPPENS_AFTER(addr)
#else
#define CTH__HAPPENS_BEFORE(addr) ((void)0)
#define CTH__HAPPENS_AFTER(addr) ((void)0)
#endif

/* ---- small helpers ------------------------------------------------------------ */

#define CTH__UNUSED(x) ((void)(x))

/* Spin-loop hint. */
static inline void cth__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#else
    __asm__ __volatile__("" ::: "memory"); /* keeps a pause loop from vanishing */
#endif
}

/* ---- thread identity for owner checks ------------------------------------------ */

/* A per-thread address: unique among living threads, never 0, no system
 * call. RLock stores it as its owner. */
extern _Thread_local char cth__self_token_var __attribute__((tls_model("initial-exec")));
static inline uintptr_t cth__self_token(void)
{
    return (uintptr_t)&cth__self_token_var;
}

/* ---- lock internals shared by cond.c ---------------------------------------------- */

#include "cthreading/sync.h"

/* Treat the public struct's plain word as the atomic it is. */
#define CTH__ATOMIC_U32(p) ((_Atomic uint32_t *)(void *)(p))
#define CTH__ATOMIC_UPTR(p) ((_Atomic uintptr_t *)(void *)(p))

/* Bit 0 of a Lock's word: someone holds it (lock.c has the other bits). */
#define CTH__LOCK_LOCKED 1u

/* cth_lock_locked without the call and the NULL check. */
static inline bool cth__lock_held(const cth_lock_t *lock)
{
    return atomic_load_explicit(CTH__ATOMIC_U32(&((cth_lock_t *)lock)->_state),
                                memory_order_relaxed) &
           CTH__LOCK_LOCKED;
}

/* Release every level of an RLock the caller owns; the count is saved in
 * *count (Python's _release_save). The caller has checked ownership. */
void cth__rlock_release_save(cth_rlock_t *rlock, uint32_t *count);

/* Re-acquire an RLock with a saved count (Python's _acquire_restore):
 * without limit, not interrupted (returns 1 if an interruption of the main
 * thread arrived meanwhile, else 0); as cth__lock_acquire_woken when a
 * notify counted the caller a waiter of the lock (cth__lock_add_waiter),
 * else as cth__lock_acquire_uninterrupted. */
int cth__rlock_acquire_restore(cth_rlock_t *rlock, uint32_t count, bool counted);

/* Acquire a Lock as a waiter that cth__lock_add_waiter counted (a notified
 * Condition waiter, whose futex may have been requeued onto the lock's
 * word): as cth__lock_acquire_uninterrupted otherwise. */
int cth__lock_acquire_woken(cth_lock_t *lock);

/* Count one more waiter of the lock, on behalf of a Condition waiter that
 * sleeps on its own word and is about to be notified; that waiter then must
 * take the lock with cth__lock_acquire_woken. The caller holds the lock. */
void cth__lock_add_waiter(cth_lock_t *lock);

/* Undo cth__lock_add_waiter when the waiter turned out not to sleep. */
void cth__lock_remove_waiter(cth_lock_t *lock);

/* Move the thread sleeping on *from (if *from still equals expected) onto
 * the lock's word, to be woken by a release of the lock, as if it had
 * parked in cth_lock_acquire; it must have been counted with
 * cth__lock_add_waiter. The caller holds the lock. */
void cth__lock_requeue(cth_lock_t *lock, _Atomic uint32_t *from, uint32_t expected);

/* Acquire a Lock without limit, riding out interruptions: returns 1 if an
 * interruption of the main thread arrived meanwhile, else 0. */
int cth__lock_acquire_uninterrupted(cth_lock_t *lock);

/* ---- shutdown and the library's own threads (thread.c) ------------------------------ */

#include "cthreading/thread.h"

/* Admit new work while shutdown has not finished its wait for the non-daemon
 * threads: CTH_ESHUTDOWN once it has (new threads are refused from then on),
 * else 0. With `nondaemon`, the work counts as one more non-daemon thread
 * that shutdown waits for, until cth__shutdown_release (timer_service.c: a
 * pending non-daemon one-shot timer is a live non-daemon Timer thread). */
int cth__shutdown_admit(bool nondaemon);
void cth__shutdown_release(void);

/* Register fn(arg) to run once shutdown has finished waiting for the
 * non-daemon threads (new threads are refused by then), newest first; fn must
 * not call cth_shutdown. Returns 0, CTH_ENOMEM, or CTH_ESHUTDOWN once that
 * wait is over. */
int cth__finalizer_register(void (*fn)(void *), void *arg);

/* Create a thread of the library itself (the timer service's): a daemon that
 * cth_enumerate and cth_active_count do not list. As cth_thread_create. */
int cth__thread_create_internal(cth_thread_t **thread, cth_thread_fn fn, void *arg,
                                const char *name);

/* The calling thread runs a timer's function from begin to end (Python runs
 * it in the Timer's own thread): a hidden thread is listed meanwhile; threads
 * and timers created with CTH_DAEMON_INHERIT inherit `daemon`; if `counted`
 * (admitted as non-daemon), the caller's own cth_shutdown does not wait for
 * that share. */
void cth__thread_timer_begin(bool daemon, bool counted);
void cth__thread_timer_end(void);

/* The daemon flag CTH_DAEMON_INHERIT gives in the calling thread: its own,
 * its timer's (above), or true in a thread cthreading did not start. */
bool cth__inherited_daemon(void);

/* Destroy the calling thread's cth_local values now (local.c), as a thread
 * that ends does, before it counts as finished; the thread may set new ones. */
void cth__local_thread_exit(void);

/* ---- memory -------------------------------------------------------------------------- */

/* Every allocation of the library goes through these, so that the fault
 * injection of the tests (cth__fault_alloc_after) can make the k-th one fail. */
void *cth__malloc(size_t size);
void *cth__calloc(size_t n, size_t size);
void *cth__realloc(void *p, size_t size);
char *cth__strdup(const char *s);
void cth__free(void *p);

/* Whole pages straight from the kernel (mmap/munmap), for memory that must
 * be obtained where malloc is forbidden (SimpleQueue's put, which may run in
 * a signal handler): no lock is taken, only a system call, and the fault
 * injection counts cth__page_alloc like the others. size is a multiple of
 * the page size; cth__page_free takes the same size back. */
void *cth__page_alloc(size_t size);
void cth__page_free(void *p, size_t size);

/* Fault injection, for tests: the next k allocations succeed, then each one
 * fails until this is called again with a negative k (off, the default). */
void cth__fault_alloc_after(long k);

/* The same for the OS threads cthreading starts (cth_thread_start): the
 * next k succeed, then each fails as if the OS had no thread left
 * (CTH_EAGAIN), until called with a negative k. */
void cth__fault_thread_start_after(long k);

/* Fault injection's countdown: whether the event it counts must fail now.
 * countdown < 0 is off (the default: one relaxed load). */
int cth__fault_due(_Atomic long *countdown);

#endif
