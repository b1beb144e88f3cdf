/*
 * lock.c - Lock and RLock.
 *
 * Lock is a futex lock in one word (_state) with eventual fairness, after
 * Rust's std Mutex, Go's starvation mode and CPython 3.13's PyMutex:
 *   bit 0 LOCKED   someone holds it;
 *   bit 1 PARKED   a thread may sleep on _state (release must wake one);
 *   bit 2 TICKET   the last release handed the lock to a hungry waiter,
 *                  which has not picked it up yet (LOCKED stays set);
 *   bits 3.. HUNGRY count: waiters that have waited over HUNGRY_NS and now
 *                  sleep on _spare, the hand-off sequence word.
 * Uncontended, acquire is one compare-and-swap 0 -> LOCKED and release one
 * compare-and-swap LOCKED -> 0: no system call, no stack frame (everything
 * else is out of line), and while the process has only ever had one thread
 * a plain load and store instead (glibc's __libc_single_threaded, as its
 * own mutex does). A contended acquire spins
 * briefly while the holder runs and nobody is parked, then parks on _state
 * (setting PARKED). A waiter still waiting after HUNGRY_NS becomes hungry:
 * from then on a release does not unlock but sets TICKET and wakes one
 * hungry waiter, which takes the lock over without anyone barging in. A
 * hungry waiter that gives up (timeout, interruption) takes a pending TICKET
 * if there is one, so a handed-off lock is never stranded; the decision to
 * hand off and the count of hungry waiters live in the same word, so they
 * cannot disagree. Any thread may release. A Condition's notify may move
 * (requeue) a sleeping waiter from its own word onto _state, setting PARKED
 * (cth__lock_requeue): the waiter is then woken by a release like any parked
 * acquirer, and re-takes the lock keeping PARKED (cth__lock_acquire_woken).
 *
 * RLock is a Lock plus the owner's identity (a per-thread address, see
 * cth__self_token) and a recursion count. Only the owner writes the count;
 * the owner field is atomic so that other threads can read it to learn that
 * they are not the owner.
 */
#include "internal.h"

_Thread_local char cth__self_token_var __attribute__((tls_model("initial-exec")));

_Static_assert(sizeof(cth_lock_t) == 8, "cth_lock_t ABI");
_Static_assert(sizeof(cth_rlock_t) == 24 || sizeof(void *) != 8, "cth_rlock_t ABI");

#define LOCKED CTH__LOCK_LOCKED
#define PARKED 2u
#define TICKET 4u
#define HUNGRY_ONE 8u

/* glibc tells whether the process has only ever had one thread; while it
 * has, the fast paths need no atomic read-modify-write (glibc's own mutex
 * does the same). Elsewhere the answer is always "no". */
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define SINGLE_THREADED() __builtin_expect(__libc_single_threaded, 0)
#endif
#endif
#ifndef SINGLE_THREADED
#define SINGLE_THREADED() 0
#endif

/* Take a free lock nobody waits for (0 -> LOCKED); false otherwise. */
static inline bool lock_take_fast(_Atomic uint32_t *state)
{
    uint32_t s = 0;
    if (SINGLE_THREADED()) {
        if (atomic_load_explicit(state, memory_order_relaxed) != 0)
            return false;
        atomic_store_explicit(state, LOCKED, memory_order_relaxed);
        return true;
    }
    return atomic_compare_exchange_strong_explicit(state, &s, LOCKED, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Release a lock nobody waits for (LOCKED -> 0); false otherwise. */
static inline bool lock_give_fast(_Atomic uint32_t *state)
{
    uint32_t s = LOCKED;
    if (SINGLE_THREADED()) {
        if (atomic_load_explicit(state, memory_order_relaxed) != LOCKED)
            return false;
        atomic_store_explicit(state, 0, memory_order_relaxed);
        return true;
    }
    return atomic_compare_exchange_strong_explicit(state, &s, 0, memory_order_release,
                                                   memory_order_relaxed);
}

#define SPIN_TRIES 100
#define HUNGRY_NS 1000000 /* 1 ms, as PyMutex's TIME_TO_BE_FAIR_NS */

/* Wait for a hand-off as a hungry waiter (counted in HUNGRY already). */
static int lock_wait_hungry(_Atomic uint32_t *state, _Atomic uint32_t *seq, int64_t deadline)
{
    for (;;) {
        uint32_t q = atomic_load_explicit(seq, memory_order_acquire);
        uint32_t s = atomic_load_explicit(state, memory_order_acquire);
        int r = 0;
        if (!(s & TICKET)) {
            r = cth__futex_wait(seq, q, deadline);
            s = atomic_load_explicit(state, memory_order_acquire);
        }
        /* Take the ticket if there is one; when giving up, leave anyway. */
        do {
            if (!(s & TICKET) && !r)
                break;
            uint32_t n = (s & TICKET) ? (s & ~TICKET) - HUNGRY_ONE : s - HUNGRY_ONE;
            if (atomic_compare_exchange_weak_explicit(state, &s, n, memory_order_acquire,
                                                      memory_order_acquire)) {
                if (s & TICKET) {
                    if (r == CTH_EINTR)
                        cth__interrupt_post(); /* keep it for the next wait */
                    return 0;
                }
                return r;
            }
        } while (1);
    }
}

/* The contended acquire: spin, park, turn hungry. keep is PARKED when the
 * caller may have slept on _state (a requeued condition waiter), so that the
 * flag survives its acquisition, else 0. */
static __attribute__((noinline)) int lock_acquire_slow(cth_lock_t *lock, int64_t deadline,
                                                       uint32_t keep)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s;
    /* Spin while the holder runs and nobody sleeps. */
    for (int i = 0; i < SPIN_TRIES; i++) {
        s = atomic_load_explicit(state, memory_order_relaxed);
        if (!(s & LOCKED)) {
            if (atomic_compare_exchange_weak_explicit(state, &s, s | LOCKED | keep,
                                                      memory_order_acquire, memory_order_relaxed))
                return 0;
            continue;
        }
        if (s != LOCKED)
            break;
        cth__cpu_relax();
    }
    int64_t hungry_at = cth__now_ns() + HUNGRY_NS;
    s = atomic_load_explicit(state, memory_order_relaxed);
    for (;;) {
        if (!(s & LOCKED)) {
            /* We may have slept: keep PARKED, others may sleep too. */
            if (atomic_compare_exchange_weak_explicit(state, &s, s | LOCKED | PARKED,
                                                      memory_order_acquire, memory_order_relaxed))
                return 0;
            continue;
        }
        int64_t now = cth__now_ns();
        if (now >= hungry_at) {
            /* Keep PARKED: the release that woke us cleared it, and others
             * may still sleep on _state. */
            if (atomic_compare_exchange_weak_explicit(state, &s, (s | PARKED) + HUNGRY_ONE,
                                                      memory_order_relaxed, memory_order_relaxed))
                return lock_wait_hungry(state, CTH__ATOMIC_U32(&lock->_spare), deadline);
            continue;
        }
        if (!(s & PARKED) &&
            !atomic_compare_exchange_weak_explicit(state, &s, s | PARKED, memory_order_relaxed,
                                                   memory_order_relaxed))
            continue;
        int r = cth__futex_wait(state, s | PARKED, deadline < hungry_at ? deadline : hungry_at);
        if (r == CTH_ETIMEDOUT && deadline >= hungry_at)
            r = 0; /* only the patience ran out: become hungry */
        if (r) {
            /* An interrupted main thread may have been woken by a release
             * as well: pass that wake-up on rather than strand a sleeper. */
            if (r == CTH_EINTR)
                cth__futex_wake(state, 1);
            return r;
        }
        s = atomic_load_explicit(state, memory_order_relaxed);
    }
}

CTH_API int cth_lock_init(cth_lock_t *lock)
{
    if (!lock)
        return CTH_EINVAL;
    atomic_store(CTH__ATOMIC_U32(&lock->_state), 0);
    atomic_store(CTH__ATOMIC_U32(&lock->_spare), 0);
    return 0;
}

/* Everything but the uncontended case: argument errors, try, spin, park. Kept
 * out of line so that the fast path below needs no stack frame. */
static __attribute__((noinline)) int lock_acquire_contended(cth_lock_t *lock, double timeout)
{
    if (!lock)
        return CTH_EINVAL;
    int err = cth__check_timeout(timeout);
    if (err)
        return err;
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    if (!(s & LOCKED) && atomic_compare_exchange_strong_explicit(
                             state, &s, s | LOCKED, memory_order_acquire, memory_order_relaxed))
        return 0;
    if (timeout == 0)
        return CTH_EAGAIN;
    return lock_acquire_slow(lock, cth__deadline(timeout), 0);
}

CTH_API int cth_lock_acquire(cth_lock_t *lock, double timeout)
{
    if (__builtin_expect(lock && !cth__check_timeout(timeout), 1) &&
        lock_take_fast(CTH__ATOMIC_U32(&lock->_state)))
        return 0;
    return lock_acquire_contended(lock, timeout);
}

int cth__lock_acquire_uninterrupted(cth_lock_t *lock)
{
    int interrupted = 0;
    while (cth_lock_acquire(lock, CTH_FOREVER) == CTH_EINTR)
        interrupted = 1;
    return interrupted;
}

int cth__lock_acquire_woken(cth_lock_t *lock)
{
    int interrupted = 0;
    while (lock_acquire_slow(lock, CTH__NO_DEADLINE, PARKED) == CTH_EINTR)
        interrupted = 1;
    return interrupted;
}

/* Release when someone may wait or the lock is not held: hand off, wake, or
 * report the misuse. */
static __attribute__((noinline)) int lock_release_contended(cth_lock_t *lock)
{
    if (!lock)
        return CTH_EINVAL;
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    for (;;) {
        if (!(s & LOCKED) || (s & TICKET))
            return CTH_EPERM; /* unlocked, or handed off and not yet taken */
        if (s >= HUNGRY_ONE) {
            /* Hand off: stay locked, give the ticket to a hungry waiter. */
            if (atomic_compare_exchange_weak_explicit(state, &s, s | TICKET, memory_order_release,
                                                      memory_order_relaxed)) {
                _Atomic uint32_t *seq = CTH__ATOMIC_U32(&lock->_spare);
                atomic_fetch_add_explicit(seq, 1, memory_order_release);
                cth__futex_wake(seq, 1);
                return 0;
            }
        } else if (atomic_compare_exchange_weak_explicit(state, &s, 0, memory_order_release,
                                                         memory_order_relaxed)) {
            if (s & PARKED)
                cth__futex_wake(state, 1);
            return 0;
        }
    }
}

CTH_API int cth_lock_release(cth_lock_t *lock)
{
    if (__builtin_expect(lock != NULL, 1) && lock_give_fast(CTH__ATOMIC_U32(&lock->_state)))
        return 0;
    return lock_release_contended(lock);
}

CTH_API bool cth_lock_locked(const cth_lock_t *lock)
{
    return lock && cth__lock_held(lock);
}

/* ---- RLock ---------------------------------------------------------------- */

static uintptr_t rlock_owner(const cth_rlock_t *rlock)
{
    return atomic_load_explicit(CTH__ATOMIC_UPTR(&((cth_rlock_t *)rlock)->_owner),
                                memory_order_relaxed);
}

static void rlock_set_owner(cth_rlock_t *rlock, uintptr_t owner)
{
    atomic_store_explicit(CTH__ATOMIC_UPTR(&rlock->_owner), owner, memory_order_relaxed);
}

CTH_API int cth_rlock_init(cth_rlock_t *rlock)
{
    if (!rlock)
        return CTH_EINVAL;
    cth_lock_init(&rlock->_lock);
    rlock_set_owner(rlock, 0);
    rlock->_count = 0;
    rlock->_spare = 0;
    return 0;
}

/* RLock.acquire beyond the fast paths: errors, the count's overflow, and a
 * lock held by another thread. */
static __attribute__((noinline)) int rlock_acquire_slow(cth_rlock_t *rlock, double timeout)
{
    if (!rlock)
        return CTH_EINVAL;
    int err = cth__check_timeout(timeout);
    if (err)
        return err;
    uintptr_t me = cth__self_token();
    if (rlock_owner(rlock) == me)
        return CTH_EOVERFLOW; /* the fast path takes every other recursion */
    err = cth_lock_acquire(&rlock->_lock, timeout);
    if (err)
        return err;
    rlock_set_owner(rlock, me);
    rlock->_count = 1;
    return 0;
}

CTH_API int cth_rlock_acquire(cth_rlock_t *rlock, double timeout)
{
    if (__builtin_expect(rlock && !cth__check_timeout(timeout), 1)) {
        uintptr_t me = cth__self_token();
        if (rlock_owner(rlock) == me) {
            if (__builtin_expect(rlock->_count != UINT32_MAX, 1)) {
                rlock->_count++;
                return 0;
            }
        } else if (lock_take_fast(CTH__ATOMIC_U32(&rlock->_lock._state))) {
            rlock_set_owner(rlock, me);
            rlock->_count = 1;
            return 0;
        }
    }
    return rlock_acquire_slow(rlock, timeout);
}

CTH_API int cth_rlock_release(cth_rlock_t *rlock)
{
    if (!rlock)
        return CTH_EINVAL;
    if (rlock_owner(rlock) != cth__self_token())
        return CTH_EPERM;
    if (--rlock->_count == 0) {
        rlock_set_owner(rlock, 0);
        if (!lock_give_fast(CTH__ATOMIC_U32(&rlock->_lock._state)))
            lock_release_contended(&rlock->_lock);
    }
    return 0;
}

CTH_API bool cth_rlock_locked(const cth_rlock_t *rlock)
{
    return rlock && cth__lock_held(&rlock->_lock);
}

CTH_API bool cth_rlock_is_owned(const cth_rlock_t *rlock)
{
    return rlock && rlock_owner(rlock) == cth__self_token();
}

CTH_API unsigned cth_rlock_recursion_count(const cth_rlock_t *rlock)
{
    return cth_rlock_is_owned(rlock) ? rlock->_count : 0;
}

void cth__lock_requeue(cth_lock_t *lock, _Atomic uint32_t *from, uint32_t expected)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    if (cth__futex_requeue(from, expected, state))
        atomic_fetch_or_explicit(state, PARKED, memory_order_relaxed);
}

void cth__rlock_release_save(cth_rlock_t *rlock, uint32_t *count)
{
    *count = rlock->_count;
    rlock->_count = 0;
    rlock_set_owner(rlock, 0);
    cth_lock_release(&rlock->_lock);
}

int cth__rlock_acquire_restore(cth_rlock_t *rlock, uint32_t count, bool requeued)
{
    int interrupted = requeued ? cth__lock_acquire_woken(&rlock->_lock)
                               : cth__lock_acquire_uninterrupted(&rlock->_lock);
    rlock_set_owner(rlock, cth__self_token());
    rlock->_count = count;
    return interrupted;
}
