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
 */
#ifndef CTHREADING_SYNC_H
#define CTHREADING_SYNC_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock (threading.Lock) -------------------------------------------------- */

/* A non-recursive lock: 8 bytes; zero is unlocked. */
typedef struct cth_lock {
    uint32_t _state;
    uint32_t _spare;
} cth_lock_t;

#define CTH_LOCK_INIT {0, 0}

/* cth_lock_init - make *lock unlocked (the same as CTH_LOCK_INIT or zeroing).
 * Returns 0, or CTH_EINVAL for a NULL lock. */
CTH_API int cth_lock_init(cth_lock_t *lock);

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
CTH_API int cth_lock_acquire(cth_lock_t *lock, double timeout);

/*
 * cth_lock_release - Lock.release(). Any thread may release the lock, not
 * only the one that acquired it (Python allows it too). Returns 0, CTH_EPERM
 * if the lock was not locked (Python's RuntimeError "release unlocked lock"),
 * CTH_EINVAL for NULL. Release ordering.
 */
CTH_API int cth_lock_release(cth_lock_t *lock);

/* cth_lock_locked - Lock.locked(): whether someone holds it (false for NULL).
 * A snapshot, racy once returned. */
CTH_API bool cth_lock_locked(const cth_lock_t *lock);

/* ---- RLock (threading.RLock) ------------------------------------------------ */

/* A re-entrant lock owned by one thread with a recursion count. */
typedef struct cth_rlock {
    cth_lock_t _lock;
    uintptr_t _owner; /* owner's identity, 0 when unowned */
    uint32_t _count;
    uint32_t _spare;
} cth_rlock_t;

#define CTH_RLOCK_INIT {CTH_LOCK_INIT, 0, 0, 0}

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

/* cth_rlock_locked - RLock.locked() (3.14): whether any thread owns it. */
CTH_API bool cth_rlock_locked(const cth_rlock_t *rlock);

/* cth_rlock_is_owned - RLock._is_owned(): whether the caller owns it. */
CTH_API bool cth_rlock_is_owned(const cth_rlock_t *rlock);

/* cth_rlock_recursion_count - RLock._recursion_count(): the caller's count,
 * 0 when another thread (or nobody) owns it. */
CTH_API unsigned cth_rlock_recursion_count(const cth_rlock_t *rlock);

/* ---- Condition (threading.Condition) ---------------------------------------- */

/*
 * A condition variable bound to a Lock, an RLock, or (the default, as in
 * Python) an RLock of its own. Waiters queue in FIFO order; notify(n) wakes
 * exactly the n longest waiting, and a wait returns 0 only when notified
 * (no spurious success).
 */
typedef struct cth_cond {
    void *_lock;     /* the cth_lock_t or cth_rlock_t, NULL: _own */
    uint32_t _kind;  /* 0 own RLock, 1 Lock, 2 RLock */
    uint32_t _spare;
    void *_head;     /* FIFO of waiters, guarded by the lock */
    void *_tail;
    cth_rlock_t _own;
} cth_cond_t;

#define CTH_COND_INIT {NULL, 0, 0, NULL, NULL, CTH_RLOCK_INIT}
#define CTH_COND_INIT_LOCK(lockp) {(lockp), 1, 0, NULL, NULL, CTH_RLOCK_INIT}
#define CTH_COND_INIT_RLOCK(rlockp) {(rlockp), 2, 0, NULL, NULL, CTH_RLOCK_INIT}

/* cth_cond_init - Condition(lock): over *lock, or over an RLock of its own
 * when lock is NULL. Returns 0, or CTH_EINVAL for a NULL cond. */
CTH_API int cth_cond_init(cth_cond_t *cond, cth_lock_t *lock);

/* cth_cond_init_rlock - Condition(rlock). 0, or CTH_EINVAL for NULL. */
CTH_API int cth_cond_init_rlock(cth_cond_t *cond, cth_rlock_t *rlock);

/* cth_cond_acquire / cth_cond_release - acquire and release the underlying
 * lock (Condition.acquire/release, the `with` statement); the codes are those
 * of the lock's own calls. */
CTH_API int cth_cond_acquire(cth_cond_t *cond, double timeout);
CTH_API int cth_cond_release(cth_cond_t *cond);

/*
 * cth_cond_wait - Condition.wait(timeout). The caller must hold the lock; it
 * is released (every level of an RLock) while waiting and re-acquired (with
 * its levels) before returning, whatever the outcome.
 * Returns 0 when notified, CTH_ETIMEDOUT when the timeout expired first
 * (timeout 0 just checks), CTH_EINTR in an interrupted main thread,
 * CTH_EPERM if the caller does not hold the lock (for a plain Lock, as in
 * Python: if nobody holds it), CTH_EINVAL / CTH_EOVERFLOW for bad arguments.
 */
CTH_API int cth_cond_wait(cth_cond_t *cond, double timeout);

/* A predicate for cth_cond_wait_for: true when the awaited state holds. */
typedef bool (*cth_predicate_fn)(void *arg);

/*
 * cth_cond_wait_for - Condition.wait_for(predicate, timeout): evaluate
 * predicate(arg) first, then wait until it is true or the total timeout has
 * passed, re-evaluating after each wake-up, always with the lock held.
 * Returns 1 if the predicate's last value was true, 0 if it was still false
 * when the timeout expired, or a negative code as cth_cond_wait.
 */
CTH_API int cth_cond_wait_for(cth_cond_t *cond, cth_predicate_fn predicate, void *arg,
                              double timeout);

/*
 * cth_cond_notify - Condition.notify(n): wake the n longest-waiting threads
 * (fewer if fewer wait; n <= 0 does nothing). The caller must hold the lock.
 * Returns 0, CTH_EPERM if the lock is not held, CTH_EINVAL for NULL.
 * With no waiter it costs a load.
 */
CTH_API int cth_cond_notify(cth_cond_t *cond, int n);

/* cth_cond_notify_all - Condition.notify_all(): as notify with n = all. */
CTH_API int cth_cond_notify_all(cth_cond_t *cond);

#ifdef __cplusplus
}
#endif
#endif
