/* SPDX-License-Identifier: MIT */
/*
 * cthreading/synchronized.h - the seed's synchronized decorator and
 * Python's `with lock:`, in C: a lock held for a block or a scope and
 * released on every way out of it, return, break, continue and goto
 * included.
 *
 *     static long served;
 *     long count_request(void)
 *     {
 *         CTH_SYNCHRONIZED {               // a lock of its own, for this site
 *             return ++served;             // released on the way out
 *         }
 *         return -1; // not reached (the block always runs: docs/design.md)
 *     }
 *
 * CTH_SYNCHRONIZED_ON(p) { ... } is `with lock:` on a given Lock or RLock;
 * CTH_GUARD(name, p); holds p until the enclosing scope ends.
 *
 * break and continue leave the block (a one-pass `for`), not a loop around
 * it: use CTH_GUARD in a plain { } block there. The lock is acquired without
 * limit, an interruption kept pending. The macros are C only, for GCC and
 * Clang (the cleanup attribute, _Generic): in C++ and elsewhere use
 * cth_guard_lock/cth_guard_release. docs/design.md (synchronized.h) has the
 * details.
 */
#ifndef CTHREADING_SYNCHRONIZED_H
#define CTHREADING_SYNCHRONIZED_H

#include "base.h"
#include "sync.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A held (or not held) Lock or RLock. Fields are private. */
typedef struct cth_guard {
    void *_lock;    /* the cth_lock_t or cth_rlock_t; NULL when not held */
    unsigned _kind; /* 1 Lock, 2 RLock */
    unsigned _pass; /* the block forms' one-pass counter */
} cth_guard_t;

/*
 * cth_guard_lock - acquire lock without limit (riding out interruptions of
 * the main thread, which stay pending for the next wait) and return a guard
 * holding it. For NULL, a guard that holds nothing. Thread-safe; the guard
 * belongs to the calling thread (a Lock's guard may be released elsewhere,
 * as the Lock itself may).
 */
CTH_API cth_guard_t cth_guard_lock(cth_lock_t *lock);

/* cth_guard_rlock - as cth_guard_lock, for an RLock (one more level; the
 * guard holds nothing if the count is at its limit or rlock is NULL). */
CTH_API cth_guard_t cth_guard_rlock(cth_rlock_t *rlock);

/* cth_guard_release - release what the guard holds, once; later calls do
 * nothing. NULL is ignored. The cleanup function of the macros. */
CTH_API void cth_guard_release(cth_guard_t *guard);

/* cth_guard_held - whether the guard holds its lock (false for NULL). */
CTH_API bool cth_guard_held(const cth_guard_t *guard);

#if !defined(__cplusplus) && (defined(__GNUC__) || defined(__clang__))

#define CTH__SYNC_CAT2(a, b) a##b
#define CTH__SYNC_CAT(a, b) CTH__SYNC_CAT2(a, b)

/* The guard for a Lock or an RLock pointer. */
#define CTH__GUARD_ACQUIRE(p)                                                                      \
    _Generic((p), cth_lock_t * : cth_guard_lock, cth_rlock_t * : cth_guard_rlock)(p)

#define CTH_GUARD(name, p)                                                                         \
    cth_guard_t name __attribute__((cleanup(cth_guard_release), unused)) = CTH__GUARD_ACQUIRE(p)

#define CTH__SYNCHRONIZED_ON(g, p) for (CTH_GUARD(g, p); g._pass++ == 0 && cth_guard_held(&g);)

#define CTH_SYNCHRONIZED_ON(p) CTH__SYNCHRONIZED_ON(CTH__SYNC_CAT(cth__guard_, __COUNTER__), p)

#define CTH_SYNCHRONIZED                                                                           \
    CTH_SYNCHRONIZED_ON(__extension__({                                                            \
        static cth_lock_t cth__site_lock = CTH_LOCK_INIT;                                          \
        &cth__site_lock;                                                                           \
    }))

#endif

#ifdef __cplusplus
}
#endif
#endif
