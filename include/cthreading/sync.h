/* SPDX-License-Identifier: MIT */
/*
 * cthreading/sync.h - Python's threading synchronization objects: Lock,
 * RLock, Condition, Semaphore, BoundedSemaphore, Event, Barrier.
 *
 * All of them are caller-allocated structs with a static initializer; their
 * fields are private (the leading underscore) and their sizes pinned by
 * _Static_assert in the implementation. All-zero storage is a valid unlocked
 * Lock, RLock, a Condition over its own RLock, a Semaphore of value 0 and an
 * unset Event. No call here allocates memory, and none needs a destroy call:
 * an object nobody uses any more can simply be reused or freed.
 *
 * Every blocking call takes a timeout in seconds (base.h): 0 = try once and
 * return CTH_EAGAIN (or CTH_ETIMEDOUT for waits that are never "tries"),
 * CTH_FOREVER = no limit. In the main thread every wait returns CTH_EINTR when
 * cth_interrupt_main() is called or a signal handler runs during it (thread.h).
 *
 * fork(). In the child only the forking thread goes on, as its main thread;
 * every object here stays usable: the threads that were waiting in one at the
 * fork are forgotten, as if they had never waited. Nothing is handed to
 * them: a Lock released to a waiting thread just before the fork is free in
 * the child, a notify reaches only the child's own waiters, a Semaphore's or
 * Event's waiters cost nothing. From its first wait, reset or abort in the
 * child, a Barrier counts none of them: their cycle is over (one they were
 * draining or resetting is filling again; a broken barrier stays broken).
 * What the fork does not undo, as in Python: a Lock or RLock held by
 * another thread at the fork stays held in the child, and an object whose
 * call another thread was inside of (not waiting in, but holding its
 * internal lock) may be left locked; fork while other threads use the
 * objects the child needs only with that in mind.
 */
#ifndef CTHREADING_SYNC_H
#define CTHREADING_SYNC_H

#include "base.h"

/* The inline fast paths of cth_lock_acquire and cth_lock_release skip their
 * atomic instructions while the process has only ever had one thread, as
 * glibc's own mutex does. */
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define CTH__SINGLE_THREADED() __builtin_expect(__libc_single_threaded, 0)
#endif
#endif
#ifndef CTH__SINGLE_THREADED
#define CTH__SINGLE_THREADED() 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock (threading.Lock) -------------------------------------------------- */

/* A non-recursive lock: 8 bytes; zero is unlocked. */
typedef struct cth_lock {
    uint32_t _state;
    uint32_t _oldest_wait; /* when the longest waiter began waiting (lock.c) */
} cth_lock_t;

/* Static initializer of an unlocked Lock (as zeroing it). */
/* clang-format off */
#define CTH_LOCK_INIT {0, 0}
/* clang-format on */

/*
 * How Lock (and RLock, built on it) schedules its waiters: uncontended,
 * acquire and release are one atomic instruction each and never a system
 * call (cth_lock_acquire and cth_lock_release are inline: the uncontended
 * case makes no call into the library either). A thread that finds the lock
 * held spins for up to about 10 us while nobody else waits, then backs off
 * for up to about 80 us (about 1 us when it waits alone; not at all when its
 * timeout is under 0.2 ms away), looking at the lock now and then, and only
 * then sleeps. A waiter that keeps finding the lock taken again by others
 * sleeps in naps of about 50 us instead of being woken by every release (a
 * busy holder then makes no system call), so a lock released and left free
 * may wait up to about a nap for it. A thread that arrives while others
 * sleep may take the lock ahead of them (that is where a busy lock's
 * throughput comes from), but not for long: once a waiter has waited over
 * about half a millisecond, the next release hands the lock to the waiters
 * instead of unlocking it, and the releasing thread, if it wants the lock
 * back, queues like anyone else. A waiter nearing that age is woken about
 * 0.1 ms ahead and, awake (for up to 0.1 ms), is handed the lock by the
 * next release, so that the lock does not lie idle while it wakes up. No
 * waiter starves (CPython 3.13's PyMutex and Go's starvation mode do the
 * same after 1 ms, Rust's parking_lot after about 0.5 ms); order among
 * waiters is otherwise not first-come first-served.
 */

/* cth_lock_init - make *lock unlocked (the same as CTH_LOCK_INIT or zeroing).
 * Returns 0, or CTH_EINVAL for a NULL lock. */
CTH_API int cth_lock_init(cth_lock_t *lock);

#ifndef CTH__LOCK_SOURCE /* lock.c defines these two out of line instead */
/*
 * cth_lock_acquire - Lock.acquire(blocking=True, timeout=-1).
 * timeout 0 is acquire(blocking=False); CTH_FOREVER waits without limit.
 * Returns 0 when the caller now holds the lock; CTH_EAGAIN if timeout was 0
 * and the lock was held; CTH_ETIMEDOUT when a positive timeout expired;
 * CTH_EINTR in an interrupted main thread; CTH_EINVAL for a NULL lock or a
 * bad timeout; CTH_EOVERFLOW for a timeout above CTH_TIMEOUT_MAX.
 * Not re-entrant: the holder acquiring again waits (a deadlock without a
 * timeout), as in Python. Acquire has acquire ordering (the holder sees every
 * write made before the previous release).
 */
static inline int cth_lock_acquire(cth_lock_t *lock, double timeout);

/*
 * cth_lock_release - Lock.release(). Any thread may release the lock, not
 * only the one that acquired it (Python allows it too). Returns 0, CTH_EPERM
 * if the lock was not locked (Python's RuntimeError "release unlocked lock"),
 * CTH_EINVAL for NULL. Release ordering.
 */
static inline int cth_lock_release(cth_lock_t *lock);
#endif

/* cth_lock_locked - Lock.locked(): whether someone holds it (false for NULL).
 * A snapshot, racy once returned. */
CTH_API bool cth_lock_locked(const cth_lock_t *lock);

/* ---- private: the inline fast paths of cth_lock_acquire and cth_lock_release ---- */
/* Bit 0 of _state: someone holds the lock. A lock nobody waits for is 0 or
 * CTH__LOCK_LOCKED; any other word goes to the library (lock.c). */
#define CTH__LOCK_LOCKED 1u
/* Everything but the uncontended case: errors, try, spin, park, wake. */
CTH_API int cth__lock_acquire_slow(cth_lock_t *lock, double timeout);
CTH_API int cth__lock_release_slow(cth_lock_t *lock);
/* lock.c defines the two out of line as well (CTH__LOCK_SOURCE), exported
 * for callers through a symbol. Valgrind builds (CTH_VALGRIND) call the
 * library, whose atomics tell helgrind what they order. */
#ifndef CTH__LOCK_SOURCE
static inline int cth_lock_acquire(cth_lock_t *lock, double timeout)
{
#ifndef CTH_VALGRIND
    /* A valid timeout (CTH_FOREVER written as two comparisons, so that the
     * header is quiet under -Wfloat-equal); the rest go to the library. */
    if (__builtin_expect(lock != NULL, 1) &&
        (timeout >= 0 ? timeout <= CTH_TIMEOUT_MAX
                      : timeout >= CTH_FOREVER && timeout <= CTH_FOREVER)) {
        uint32_t *state = &lock->_state;
        if (CTH__SINGLE_THREADED()) {
            uint32_t s = __atomic_load_n(state, __ATOMIC_RELAXED);
            if (!(s & CTH__LOCK_LOCKED)) {
                __atomic_store_n(state, s | CTH__LOCK_LOCKED, __ATOMIC_RELAXED);
                return 0;
            }
        } else if (!(__atomic_fetch_or(state, CTH__LOCK_LOCKED, __ATOMIC_ACQUIRE) &
                     CTH__LOCK_LOCKED)) {
            return 0;
        }
    }
#endif
    return cth__lock_acquire_slow(lock, timeout);
}

static inline int cth_lock_release(cth_lock_t *lock)
{
#ifndef CTH_VALGRIND
    if (__builtin_expect(lock != NULL, 1)) {
        uint32_t *state = &lock->_state;
        uint32_t held = CTH__LOCK_LOCKED;
        if (CTH__SINGLE_THREADED()) {
            if (__atomic_load_n(state, __ATOMIC_RELAXED) == CTH__LOCK_LOCKED) {
                __atomic_store_n(state, 0, __ATOMIC_RELAXED);
                return 0;
            }
        } else if (__atomic_compare_exchange_n(state, &held, 0, false, __ATOMIC_RELEASE,
                                               __ATOMIC_RELAXED)) {
            return 0;
        }
    }
#endif
    return cth__lock_release_slow(lock);
}
#endif

/* ---- RLock (threading.RLock) ------------------------------------------------ */

/* A re-entrant lock owned by one thread with a recursion count. */
typedef struct cth_rlock {
    cth_lock_t _lock;
    uintptr_t _owner; /* owner's identity, 0 when unowned */
    uint32_t _count;
    uint32_t _spare;
} cth_rlock_t;

/* Static initializer of an unowned RLock (as zeroing it). */
/* clang-format off */
#define CTH_RLOCK_INIT {CTH_LOCK_INIT, 0, 0, 0}
/* clang-format on */

/* cth_rlock_init - make *rlock unlocked. 0, or CTH_EINVAL for NULL. */
CTH_API int cth_rlock_init(cth_rlock_t *rlock);

/*
 * cth_rlock_acquire - RLock.acquire(blocking, timeout). If the caller owns it
 * already, the count goes up and it returns 0 at once. Otherwise as
 * cth_lock_acquire. Returns 0, CTH_EAGAIN, CTH_ETIMEDOUT, CTH_EINTR,
 * CTH_EINVAL, CTH_EOVERFLOW (see cth_lock_acquire), or CTH_EOVERFLOW when the
 * recursion count would pass UINT32_MAX.
 */
CTH_API int cth_rlock_acquire(cth_rlock_t *rlock, double timeout);

/*
 * cth_rlock_release - RLock.release(): count down; at 0 the lock is free.
 * Returns 0, CTH_EPERM if the caller does not own it (Python's RuntimeError
 * "cannot release un-acquired lock"), CTH_EINVAL for NULL.
 */
CTH_API int cth_rlock_release(cth_rlock_t *rlock);

/* cth_rlock_locked - RLock.locked() (3.14): whether any thread owns it
 * (false for NULL). A snapshot, racy once returned. */
CTH_API bool cth_rlock_locked(const cth_rlock_t *rlock);

/* cth_rlock_is_owned - RLock._is_owned(): whether the caller owns it
 * (false for NULL). */
CTH_API bool cth_rlock_is_owned(const cth_rlock_t *rlock);

/* cth_rlock_recursion_count - RLock._recursion_count(): how many times the
 * caller holds it; 0 when another thread (or nobody) owns it, and for NULL. */
CTH_API size_t cth_rlock_recursion_count(const cth_rlock_t *rlock);

/* ---- Condition (threading.Condition) ---------------------------------------- */

/*
 * A condition variable bound to a Lock, an RLock, or (the default, as in
 * Python) an RLock of its own. Waiters queue in FIFO order; notify(n) wakes
 * exactly the n longest waiting, and a wait returns 0 only when notified
 * (no spurious success). A lone waiter whose last notify came from another
 * CPU polls for up to about 50 us before it sleeps, while that pays off.
 */
typedef struct cth_cond {
    void *_lock;    /* the cth_lock_t or cth_rlock_t, NULL: _own */
    uint32_t _kind; /* CTH__COND_OWN_RLOCK, CTH__COND_LOCK or CTH__COND_RLOCK */
    uint32_t _gen;  /* the fork generation the FIFO's waiters are of */
    void *_head;    /* FIFO of waiters, guarded by the lock */
    void *_tail;
    cth_rlock_t _own;
} cth_cond_t;

/* The lock a Condition is over (its _kind; private). */
#define CTH__COND_OWN_RLOCK 0 /* an RLock of its own, _own */
#define CTH__COND_LOCK 1      /* the caller's cth_lock_t at _lock */
#define CTH__COND_RLOCK 2     /* the caller's cth_rlock_t at _lock */

/* Static initializer of Condition(): over an RLock of its own (as zeroing). */
/* clang-format off */
#define CTH_COND_INIT {NULL, CTH__COND_OWN_RLOCK, 0, NULL, NULL, CTH_RLOCK_INIT}
/* clang-format on */
/* Static initializer of Condition(lock) over the cth_lock_t at lockp. */
/* clang-format off */
#define CTH_COND_INIT_LOCK(lockp) {(lockp), CTH__COND_LOCK, 0, NULL, NULL, CTH_RLOCK_INIT}
/* clang-format on */
/* Static initializer of Condition(rlock) over the cth_rlock_t at rlockp. */
/* clang-format off */
#define CTH_COND_INIT_RLOCK(rlockp) {(rlockp), CTH__COND_RLOCK, 0, NULL, NULL, CTH_RLOCK_INIT}
/* clang-format on */

/* cth_cond_init - Condition(lock): over *lock, or over an RLock of its own
 * when lock is NULL. Returns 0, or CTH_EINVAL for a NULL cond. */
CTH_API int cth_cond_init(cth_cond_t *cond, cth_lock_t *lock);

/* cth_cond_init_rlock - Condition(rlock). 0, or CTH_EINVAL for NULL. */
CTH_API int cth_cond_init_rlock(cth_cond_t *cond, cth_rlock_t *rlock);

/* cth_cond_acquire - Condition.acquire(blocking, timeout) (entering the
 * `with` statement): acquire the underlying Lock or RLock, with the codes of
 * cth_lock_acquire / cth_rlock_acquire; CTH_EINVAL for a NULL cond. */
CTH_API int cth_cond_acquire(cth_cond_t *cond, double timeout);

/* cth_cond_release - Condition.release() (leaving the `with` statement):
 * release the underlying Lock or RLock, with the codes of cth_lock_release /
 * cth_rlock_release; CTH_EINVAL for a NULL cond. */
CTH_API int cth_cond_release(cth_cond_t *cond);

/*
 * cth_cond_wait - Condition.wait(timeout). The caller must hold the lock; it
 * is released (every level of an RLock) while waiting and re-acquired (with
 * its levels) before returning, whatever the outcome.
 * Returns 0 when notified, CTH_ETIMEDOUT when the timeout expired first
 * (timeout 0 just checks), CTH_EINTR in an interrupted main thread,
 * CTH_EPERM if the caller does not hold the lock (for a plain Lock, as in
 * Python: if nobody holds it; checked before the timeout, as Python checks
 * only the lock), CTH_EINVAL / CTH_EOVERFLOW for bad arguments.
 */
CTH_API int cth_cond_wait(cth_cond_t *cond, double timeout);

/* A predicate for cth_cond_wait_for, given its arg: true when the awaited
 * state holds. It runs with the condition's lock held and cannot fail. */
typedef bool (*cth_cond_predicate_fn)(void *arg);

/*
 * cth_cond_wait_for - Condition.wait_for(predicate, timeout): evaluate
 * predicate(arg) first, then wait until it is true or the total timeout has
 * passed, re-evaluating after each wake-up, always with the lock held. As
 * in Python, a predicate already true returns 0 before anything is checked
 * but the NULL arguments, and a false one waits at least once, even with
 * timeout 0 (the lock is released and re-taken), then evaluates it again.
 * Returns 0 when the predicate is true (Python's wait_for returning True);
 * CTH_ETIMEDOUT when the timeout expired with the predicate still false
 * (Python's returning False); CTH_EINTR in an interrupted main thread;
 * CTH_EPERM if the caller does not hold the lock (as cth_cond_wait);
 * CTH_EINVAL for a NULL cond or predicate or a bad timeout; CTH_EOVERFLOW
 * for a timeout above CTH_TIMEOUT_MAX.
 */
CTH_API int cth_cond_wait_for(cth_cond_t *cond, cth_cond_predicate_fn predicate, void *arg,
                              double timeout);

/*
 * cth_cond_notify - Condition.notify(n): wake the n longest-waiting threads
 * (fewer if fewer wait; n == 0 notifies nobody). The caller must hold the
 * lock. Returns 0, CTH_EPERM if the lock is not held, CTH_EINVAL for NULL.
 * With no waiter it costs a load.
 */
CTH_API int cth_cond_notify(cth_cond_t *cond, size_t n);

/* cth_cond_notify_all - Condition.notify_all(): as notify with n = all.
 * The notified threads do not all wake at once to fight over the lock: the
 * first four are woken at once and the others one per release of the lock,
 * so that a few are awake at a time, one holding the lock and the next ones
 * on their way. Returns 0, CTH_EPERM if the lock is not held, CTH_EINVAL
 * for NULL. */
CTH_API int cth_cond_notify_all(cth_cond_t *cond);

/* ---- Semaphore, BoundedSemaphore (threading.Semaphore, BoundedSemaphore) ---- */

/*
 * A counting semaphore. All-zero storage is a Semaphore of value 0.
 * A BoundedSemaphore remembers its initial value and refuses a release that
 * would pass it. Waiters are not served in any particular order, and a new
 * acquirer may take a unit ahead of a woken one, as in Python.
 */
typedef struct cth_sem {
    uint32_t _value;   /* the count */
    uint32_t _waiters; /* threads parked in acquire */
    uint32_t _max;     /* the bound (BoundedSemaphore only) */
    uint32_t _bounded; /* 1 for a BoundedSemaphore */
} cth_sem_t;

/* Static initializer of Semaphore(v), 0 <= v <= INT32_MAX. */
/* clang-format off */
#define CTH_SEM_INIT(v) {(uint32_t)(v), 0, 0, 0}
/* clang-format on */
/* Static initializer of BoundedSemaphore(v), 0 <= v <= INT32_MAX. */
/* clang-format off */
#define CTH_BOUNDED_SEM_INIT(v) {(uint32_t)(v), 0, (uint32_t)(v), 1}
/* clang-format on */

/*
 * cth_sem_init - Semaphore(value): a semaphore counting value units.
 * Returns 0; CTH_EINVAL for a NULL sem; CTH_EOVERFLOW for a value above
 * INT32_MAX, the count's limit (Python has none; its ValueError for a
 * negative value cannot arise with a size_t). Not thread-safe against
 * concurrent use of *sem (it is an initialization).
 */
CTH_API int cth_sem_init(cth_sem_t *sem, size_t value);

/*
 * cth_bounded_sem_init - BoundedSemaphore(value): as cth_sem_init, and a
 * release that would take the count above value is refused (see
 * cth_sem_release). Returns 0; CTH_EINVAL for a NULL sem; CTH_EOVERFLOW
 * for a value above INT32_MAX. Not thread-safe against concurrent use of
 * *sem.
 */
CTH_API int cth_bounded_sem_init(cth_sem_t *sem, size_t value);

/*
 * cth_sem_acquire - Semaphore.acquire(blocking, timeout): take one unit,
 * waiting up to timeout seconds for one to be released.
 * Returns 0 when a unit was taken; CTH_EAGAIN if timeout was 0 and the count
 * was 0 (Python's acquire(False) returning False); CTH_ETIMEDOUT when a
 * positive timeout expired; CTH_EINTR in an interrupted main thread;
 * CTH_EINVAL for NULL or a bad timeout; CTH_EOVERFLOW for a timeout above
 * CTH_TIMEOUT_MAX. Python's "can't specify timeout for non-blocking acquire"
 * cannot arise: timeout 0 is the non-blocking call. Acquire ordering (the
 * acquirer sees what the releaser wrote before release).
 */
CTH_API int cth_sem_acquire(cth_sem_t *sem, double timeout);

/*
 * cth_sem_release - Semaphore.release(n): add n units and wake up to n
 * waiters. A Semaphore may go above its initial value; a BoundedSemaphore
 * whose count would pass its initial value refuses the whole release and
 * changes nothing.
 * Returns 0; CTH_EINVAL for NULL, n == 0 (Python's ValueError "n must be one
 * or more"), or a BoundedSemaphore released too many times (Python's
 * ValueError "Semaphore released too many times"); CTH_EOVERFLOW when the
 * count of a Semaphore would pass INT32_MAX (Python has no limit); a
 * refused release changes nothing. Release ordering.
 */
CTH_API int cth_sem_release(cth_sem_t *sem, size_t n);

/* cth_sem_value - the current count (Python's _value, shown by repr), 0 for
 * NULL. A snapshot, racy once returned. */
CTH_API size_t cth_sem_value(const cth_sem_t *sem);

/* ---- Event (threading.Event) ---------------------------------------------------- */

/* A flag threads wait on. 8 bytes; all-zero storage is an unset Event. */
typedef struct cth_event {
    uint32_t _word; /* bit 0: set; bit 1: waiters may sleep; bits 2..: generation */
    uint32_t _spare;
} cth_event_t;

/* Static initializer of an unset Event (as zeroing it). */
/* clang-format off */
#define CTH_EVENT_INIT {0, 0}
/* clang-format on */

/* cth_event_init - make *event unset. 0, or CTH_EINVAL for NULL. */
CTH_API int cth_event_init(cth_event_t *event);

/*
 * cth_event_set - Event.set(): set the flag and wake every waiter. A no-op
 * when already set. Returns 0, or CTH_EINVAL for NULL. Release ordering: a
 * waiter that returns 0 sees every write made before set().
 */
CTH_API int cth_event_set(cth_event_t *event);

/* cth_event_clear - Event.clear(): reset the flag. 0, or CTH_EINVAL. */
CTH_API int cth_event_clear(cth_event_t *event);

/* cth_event_is_set - Event.is_set() (false for NULL). Acquire ordering. */
CTH_API bool cth_event_is_set(const cth_event_t *event);

/*
 * cth_event_wait - Event.wait(timeout): return at once if the flag is set,
 * else wait until set() is called or the timeout expires.
 * Returns 0 when the flag was set, and for every waiter woken by a set(),
 * even if clear() ran before it resumed (as Python does since gh-57711);
 * CTH_ETIMEDOUT if the timeout expired (timeout 0 just checks: Python's
 * wait(0) returning False); CTH_EINTR in an interrupted main thread;
 * CTH_EINVAL for NULL or a bad timeout (Python treats negative timeouts as
 * 0); CTH_EOVERFLOW above CTH_TIMEOUT_MAX.
 */
CTH_API int cth_event_wait(cth_event_t *event, double timeout);

/* ---- Barrier (threading.Barrier) ------------------------------------------------- */

/*
 * The action a Barrier runs with its arg, in the last thread to arrive,
 * before releasing the others. Return 0 to let them go; any other value
 * (positive or negative) is its failure and breaks the barrier: every other
 * waiter gets CTH_EBROKEN and the thread that ran the action gets CTH_ETASK
 * with the value in its cth_task_error(), as Python re-raises the action's
 * exception in that thread. It runs with the barrier's internal lock held:
 * it may read parties, n_waiting and broken, and call abort and reset, but
 * must not wait on the barrier.
 */
typedef int (*cth_barrier_action_fn)(void *arg);

/*
 * A reusable barrier for a fixed number of threads. The states are Python's:
 * filling, draining, resetting, broken. All-zero storage is not usable
 * (parties 0): initialize with cth_barrier_init or CTH_BARRIER_INIT.
 */
typedef struct cth_barrier {
    cth_cond_t _cond; /* guards everything below */
    cth_barrier_action_fn _action;
    void *_arg;
    double _timeout; /* the default timeout */
    int32_t _parties;
    int32_t _count;  /* threads inside wait */
    int32_t _state;  /* 0 filling, 1 draining, -1 resetting, -2 broken */
    uint32_t _cycle; /* released cycles, mod 2^32 */
} cth_barrier_t;

/* Barrier(n): n parties, no action, no default timeout (1 <= n <= INT_MAX). */
/* clang-format off */
#define CTH_BARRIER_INIT(n) {CTH_COND_INIT, NULL, NULL, CTH_FOREVER, (n), 0, 0, 0}
/* clang-format on */

/* The timeout to pass to cth_barrier_wait for "the barrier's default"
 * (Python's wait(timeout=None)). */
#define CTH_BARRIER_DEFAULT_TIMEOUT (-2.0)

/*
 * cth_barrier_init - Barrier(parties, action, timeout).
 * action (may be NULL) runs with arg in the last arriving thread of each
 * cycle; default_timeout is used by waits given CTH_BARRIER_DEFAULT_TIMEOUT
 * (CTH_FOREVER: none, Python's timeout=None).
 * Returns 0; CTH_EINVAL for NULL, parties == 0 (Python's ValueError "parties
 * must be > 0") or a bad default_timeout; CTH_EOVERFLOW for parties above
 * INT_MAX or a default timeout above CTH_TIMEOUT_MAX. A refused init
 * changes nothing. Not thread-safe against use of *barrier.
 */
CTH_API int cth_barrier_init(cth_barrier_t *barrier, size_t parties, cth_barrier_action_fn action,
                             void *arg, double default_timeout);

/*
 * cth_barrier_wait - Barrier.wait(timeout): wait until parties threads have
 * called it, then release them all. timeout is seconds, CTH_FOREVER, or
 * CTH_BARRIER_DEFAULT_TIMEOUT for the barrier's default.
 * Returns the caller's arrival index, 0 .. parties-1, distinct for each
 * thread of a cycle (the last arrival, parties-1, has run the action).
 * Returns CTH_EBROKEN if the barrier is or becomes broken (abort, reset
 * while waiting, another waiter's timeout, a failing action), and
 * breaks it itself when its own timeout expires (CTH_EBROKEN too, as
 * Python raises BrokenBarrierError for everyone); CTH_ETASK for the thread
 * whose action failed (its cth_task_error() holds the action's value, as
 * Python re-raises the action's exception there); CTH_EINTR in an
 * interrupted main thread, which also breaks the barrier once the thread
 * has arrived (Python leaves the others waiting, with one party fewer);
 * CTH_EINVAL for NULL, an uninitialized barrier or a bad timeout;
 * CTH_EOVERFLOW above CTH_TIMEOUT_MAX.
 * A thread arriving while the previous cycle drains or a reset completes
 * waits for that first, without limit and without breaking anything (as
 * Python's _enter); its timeout counts from then on.
 */
CTH_API int cth_barrier_wait(cth_barrier_t *barrier, double timeout);

/*
 * cth_barrier_reset - Barrier.reset(): return to the empty, unbroken state.
 * Threads waiting get CTH_EBROKEN; a broken barrier becomes usable again.
 * Returns 0, or CTH_EINVAL for NULL or an uninitialized barrier.
 */
CTH_API int cth_barrier_reset(cth_barrier_t *barrier);

/*
 * cth_barrier_abort - Barrier.abort(): break the barrier; current and future
 * waits return CTH_EBROKEN until cth_barrier_reset. 0, or CTH_EINVAL.
 */
CTH_API int cth_barrier_abort(cth_barrier_t *barrier);

/* cth_barrier_parties - Barrier.parties (0 for NULL). */
CTH_API size_t cth_barrier_parties(const cth_barrier_t *barrier);

/* cth_barrier_n_waiting - Barrier.n_waiting: threads waiting in the current
 * cycle (0 while draining, resetting or broken, and for NULL). A snapshot. */
CTH_API size_t cth_barrier_n_waiting(const cth_barrier_t *barrier);

/* cth_barrier_broken - Barrier.broken (false for NULL). A snapshot. */
CTH_API bool cth_barrier_broken(const cth_barrier_t *barrier);

#ifdef __cplusplus
}
#endif
#endif
