/* SPDX-License-Identifier: MIT */
/*
 * cthreading/once.h - run something exactly once: cth_once (Python's lazy
 * initialisation under a lock, pthread_once with an argument, a result and
 * retry after failure) and the singleton helper (the seed's
 * Singleton.__new__, without its lock on every call).
 *
 * Both are caller-allocated with a static initializer, like the locks of
 * sync.h; all-zero storage is a fresh once / an empty singleton. Once they
 * have succeeded, a call is one acquire load: no lock, no write, no system
 * call, so callers on every core never touch a shared cache line in write.
 */
#ifndef CTHREADING_ONCE_H
#define CTHREADING_ONCE_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- once ------------------------------------------------------------------------- */

/* 16 bytes (on 64-bit); zero is "not run yet". Fields are private. */
typedef struct cth_once {
    uint32_t _state; /* 0 new, 1 running, 2 running with waiters, 3 done */
    uint32_t _spare;
    uintptr_t _runner; /* the running thread's token, for CTH_EDEADLK */
} cth_once_t;

/* clang-format off */
#define CTH_ONCE_INIT {0, 0, 0} /* a once that has not run */
/* clang-format on */

/* The function cth_once_call runs, given its arg: 0 on success, any other
 * value (positive or negative) is its failure. */
typedef int (*cth_once_fn)(void *arg);

#ifndef CTH__ONCE_SOURCE /* once.c defines it out of line instead */
/*
 * cth_once_call - run fn(arg) exactly once, successfully, for this once.
 * The first caller runs it; every caller that comes while it runs waits
 * until it has finished. If fn succeeds (returns 0) the once is done: every
 * later call returns 0 at once (one acquire load), and everything fn wrote
 * is visible to every caller that returns 0. If fn fails (returns nonzero),
 * the caller that ran it gets CTH_ETASK with fn's value in its
 * cth_task_error(), the once is "not run" again, and one of the waiters (or
 * the next caller) runs fn again: Python's lazy-init idiom
 *     with lock:
 *         if obj is None: obj = make()    # an exception leaves obj None
 * A waiter returns 0 when another caller's run succeeded.
 * Returns 0; CTH_ETASK when this caller ran fn and it failed; CTH_EDEADLK
 * when fn (directly or not) calls cth_once_call on the same once (it would
 * wait for itself); CTH_EINTR in an interrupted main thread while waiting
 * for another caller's run; CTH_EINVAL for a NULL once or fn. fn(arg) may
 * differ between callers; only the successful one matters. Thread-safe.
 * The done case is inline (a load and a compare, no call).
 */
static inline int cth_once_call(cth_once_t *once, cth_once_fn fn, void *arg);
#endif

/* cth_once_done - whether the once has succeeded (false for NULL). Acquire:
 * true means what fn wrote is visible. */
CTH_API bool cth_once_done(const cth_once_t *once);

/* ---- singleton ---------------------------------------------------------------------- */

/* A lazily created shared instance; zero is empty. Fields are private. */
typedef struct cth_singleton {
    cth_once_t _once;
    void *_instance;
} cth_singleton_t;

/* clang-format off */
#define CTH_SINGLETON_INIT {CTH_ONCE_INIT, NULL} /* a singleton not yet created */
/* clang-format on */

/* Creates the instance, given its arg, and stores it in *instance: 0 on
 * success, any other value (positive or negative) is its failure. */
typedef int (*cth_singleton_fn)(void *arg, void **instance);

#ifndef CTH__ONCE_SOURCE
/*
 * cth_singleton_get - the seed's Singleton: the first caller creates the
 * instance with ctor(arg, &instance); every caller, now and later, gets the
 * same pointer in *instance. Under a race ctor runs once (the others wait for
 * it); if it fails (returns nonzero), that caller gets CTH_ETASK with ctor's
 * value in its cth_task_error(), and the next caller tries again
 * (cth_once_call). After success a call is one acquire load. The singleton
 * never frees the instance: it lives as long as the program, as a
 * module-level object in Python does.
 * Returns 0 and *instance; CTH_ETASK when this caller ran ctor and it
 * failed; CTH_EINVAL for NULL arguments or a ctor that returned 0 with a
 * NULL instance (the singleton stays empty); CTH_EDEADLK, CTH_EINTR as
 * cth_once_call. *instance is written only on success. The created case is
 * inline, as cth_once_call's done case.
 */
static inline int cth_singleton_get(cth_singleton_t *singleton, cth_singleton_fn ctor, void *arg,
                                    void **instance);
#endif

/* ---- private: the inline fast paths of cth_once_call and cth_singleton_get ---- */
#define CTH__ONCE_DONE 3u /* _state once fn has succeeded */
/* Everything but the done case: errors, the first run, waiting for it. */
CTH_API int cth__once_call_slow(cth_once_t *once, cth_once_fn fn, void *arg);
CTH_API int cth__singleton_get_slow(cth_singleton_t *singleton, cth_singleton_fn ctor, void *arg,
                                    void **instance);
/* once.c defines the two out of line as well (CTH__ONCE_SOURCE), exported
 * for callers through a symbol. Valgrind builds (CTH_VALGRIND) call the
 * library, whose atomics tell helgrind what they order. */
#ifndef CTH__ONCE_SOURCE
static inline int cth_once_call(cth_once_t *once, cth_once_fn fn, void *arg)
{
#ifndef CTH_VALGRIND
    if (__builtin_expect(once != NULL && fn != NULL, 1) &&
        __atomic_load_n(&once->_state, __ATOMIC_ACQUIRE) == CTH__ONCE_DONE)
        return 0;
#endif
    return cth__once_call_slow(once, fn, arg);
}

static inline int cth_singleton_get(cth_singleton_t *singleton, cth_singleton_fn ctor, void *arg,
                                    void **instance)
{
#ifndef CTH_VALGRIND
    if (__builtin_expect(singleton != NULL && ctor != NULL && instance != NULL, 1) &&
        __atomic_load_n(&singleton->_once._state, __ATOMIC_ACQUIRE) == CTH__ONCE_DONE) {
        *instance = singleton->_instance;
        return 0;
    }
#endif
    return cth__singleton_get_slow(singleton, ctor, arg, instance);
}
#endif

#ifdef __cplusplus
}
#endif
#endif
