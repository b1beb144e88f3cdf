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
 *         return -1; // not reached (the block always runs, see below)
 *     }
 *
 *     CTH_SYNCHRONIZED_ON(&table_lock) { ... }    // a given Lock or RLock
 *
 *     void f(void)
 *     {
 *         CTH_GUARD(g, &rlock);            // held until f's scope ends
 *         ...                               // cth_guard_release(&g) ends it early
 *     }
 *
 * The three forms:
 *   CTH_SYNCHRONIZED { block }         the seed's decorator: a static Lock
 *                                      per site, shared by all threads that
 *                                      reach this line; put the whole function
 *                                      body in it to synchronize the function.
 *   CTH_SYNCHRONIZED_ON(p) { block }   `with lock:` on p, a cth_lock_t * or a
 *                                      cth_rlock_t * (chosen by _Generic).
 *   CTH_GUARD(name, p);                a scope guard: a declaration; the lock
 *                                      is held from here to the end of the
 *                                      enclosing scope.
 *
 * break and continue. The two block forms are a one-pass `for` statement
 * (the only way C lets a macro open a block with a declaration). So a
 * `break` or `continue` directly inside the block leaves the block (the lock
 * is released) and goes on after it: it does NOT reach a loop around the
 * block, as it would in Python's `with`. Where the body must break out of
 * an enclosing loop, use CTH_GUARD in a plain `{ }` block: it hides no loop,
 * so break, continue, return and goto mean what they always mean, and the
 * lock is released whichever way the scope is left. `return` works the
 * same in all three forms.
 *
 * Acquiring. The lock is acquired without limit. In the main thread an
 * interruption (cth_interrupt_main, a signal handler) during the wait does
 * not abandon the block: the lock is still acquired and the interruption is
 * kept pending, so the next cthreading wait reports CTH_EINTR. If the lock
 * cannot be acquired at all (a NULL pointer, an RLock at its recursion
 * limit), a block form skips its body, and CTH_GUARD leaves the guard not
 * held: test it with cth_guard_held(&name) where that can happen. (So a
 * variable assigned only inside a block form may draw GCC's
 * -Wmaybe-uninitialized: give it an initial value.)
 *
 * Portability. The macros are C only: the release relies on the cleanup
 * attribute of GCC and Clang (and any compiler claiming __GNUC__), the
 * choice between Lock and RLock on C11's _Generic, and the per-site lock on
 * a GNU statement expression. They compile without warnings under -Wall
 * -Wextra -Wpedantic (the guard variable is marked unused: only its cleanup
 * reads it). In C++, or with another compiler, these macros are not
 * defined (C++ has its own scope guards); the functions below are, and
 * the portable fallback is the explicit form:
 *     cth_guard_t g = cth_guard_lock(&lock);
 *     ... every exit path calls cth_guard_release(&g) before leaving ...
 *     cth_guard_release(&g);
 * (cth_guard_release is idempotent, so calling it twice is harmless.)
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
    _Generic((p), cth_lock_t *: cth_guard_lock, cth_rlock_t *: cth_guard_rlock)(p)

#define CTH_GUARD(name, p)                                                                         \
    cth_guard_t name __attribute__((cleanup(cth_guard_release), unused)) = CTH__GUARD_ACQUIRE(p)

#define CTH__SYNCHRONIZED_ON(g, p)                                                                 \
    for (CTH_GUARD(g, p); g._pass++ == 0 && cth_guard_held(&g);)

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
