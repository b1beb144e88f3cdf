/* SPDX-License-Identifier: MIT */
/*
 * once.c - cth_once_call and the singleton.
 *
 * The once's state word: NEW (0), RUNNING (1), RUNNING_WAITED (2: someone
 * sleeps on the word), DONE (3). A caller that finds DONE returns after one
 * acquire load. Otherwise it tries NEW -> RUNNING; the winner runs fn and
 * then stores DONE (release: fn's writes are published) or, on failure, NEW
 * again; either way it wakes everyone if the word said RUNNING_WAITED.
 * Losers turn RUNNING into RUNNING_WAITED and sleep on the futex; woken, they
 * look again: DONE returns 0, NEW makes them try to run fn themselves (the
 * retry after a failure). _runner holds the running thread's token so that
 * a recursive call can fail with CTH_EDEADLK instead of hanging.
 * once_run hands fn's failing value back to its caller: cth_once_call turns
 * it into CTH_ETASK and the thread's cth_task_error(), and the singleton
 * does the same for its constructor's value but reports a constructor that
 * "succeeded" with a NULL instance as CTH_EINVAL.
 * The done case of both calls is inline in once.h (the load, the compare,
 * no call); this file has the rest, and exports out-of-line twins of the two
 * for callers through a symbol.
 */
#define CTH__ONCE_SOURCE /* the exported out-of-line cth_once_call and cth_singleton_get */
#include "cthreading/once.h"
#include "lock.h"
#include "task_error.h"
#include "wait.h"

_Static_assert(sizeof(cth_once_t) == 16 || sizeof(void *) != 8, "cth_once_t ABI");

enum { NEW, RUNNING, RUNNING_WAITED, DONE };
_Static_assert(DONE == CTH__ONCE_DONE, "once.h's inline fast path");

/* Run fn unless the once is done. Returns 0 when it is done, CTH_ETASK
 * when this caller ran fn and fn failed (its value in *failed; the once is
 * NEW again), CTH_EDEADLK or CTH_EINTR. */
static int once_run(cth_once_t *once, cth_once_fn fn, void *arg, int *failed)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&once->_state);
    _Atomic uintptr_t *runner = CTH__ATOMIC_UPTR(&once->_runner);
    uint32_t s = atomic_load_explicit(state, memory_order_acquire);
    for (;;) {
        if (s == DONE)
            return 0;
        if (s == NEW) {
            if (!atomic_compare_exchange_weak_explicit(state, &s, RUNNING, memory_order_acquire,
                                                       memory_order_acquire))
                continue;
            atomic_store_explicit(runner, cth__self_token(), memory_order_relaxed);
            int value = fn(arg);
            atomic_store_explicit(runner, 0, memory_order_relaxed);
            uint32_t prev = atomic_exchange_explicit(state, value == 0 ? DONE : NEW,
                                                     memory_order_acq_rel);
            if (prev == RUNNING_WAITED)
                cth__futex_wake(state, INT32_MAX);
            if (value == 0)
                return 0;
            *failed = value;
            return CTH_ETASK;
        }
        if (atomic_load_explicit(runner, memory_order_relaxed) == cth__self_token())
            return CTH_EDEADLK;
        if (s == RUNNING &&
            !atomic_compare_exchange_weak_explicit(state, &s, RUNNING_WAITED, memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        int r = cth__futex_wait(state, RUNNING_WAITED, CTH__NO_DEADLINE);
        if (r == CTH_EINTR)
            return r;
        s = atomic_load_explicit(state, memory_order_acquire);
    }
}

CTH_API int cth__once_call_slow(cth_once_t *once, cth_once_fn fn, void *arg)
{
    if (!once || !fn)
        return CTH_EINVAL;
    int value = 0;
    int r = once_run(once, fn, arg, &value);
    return r == CTH_ETASK ? cth__task_failed(value) : r;
}

/* once.h's inline cth_once_call, out of line, for callers through the
 * symbol (FFI, dlsym). */
CTH_API int cth_once_call(cth_once_t *once, cth_once_fn fn, void *arg);
CTH_API int cth_once_call(cth_once_t *once, cth_once_fn fn, void *arg)
{
    if (once && fn && cth_once_done(once))
        return 0;
    return cth__once_call_slow(once, fn, arg);
}

CTH_API bool cth_once_done(const cth_once_t *once)
{
    return once &&
           atomic_load_explicit(CTH__ATOMIC_U32(&once->_state), memory_order_acquire) == DONE;
}

struct singleton_call {
    cth_singleton_t *singleton;
    cth_singleton_fn ctor;
    void *arg;
    bool null_instance; /* ctor returned 0 but no instance */
};

static int singleton_create(void *p)
{
    struct singleton_call *c = p;
    void *instance = NULL;
    int value = c->ctor(c->arg, &instance);
    if (value == 0 && !instance) {
        c->null_instance = true;
        return 1; /* a failure all the same: the singleton stays empty */
    }
    if (value == 0)
        c->singleton->_instance = instance; /* published by the once's release */
    return value;
}

CTH_API int cth__singleton_get_slow(cth_singleton_t *singleton, cth_singleton_fn ctor, void *arg,
                                    void **instance)
{
    if (!singleton || !ctor || !instance)
        return CTH_EINVAL;
    struct singleton_call c = {singleton, ctor, arg, false};
    int value = 0;
    int r = once_run(&singleton->_once, singleton_create, &c, &value);
    if (r == CTH_ETASK)
        return c.null_instance ? CTH_EINVAL : cth__task_failed(value);
    if (r)
        return r;
    *instance = singleton->_instance;
    return 0;
}

/* Likewise once.h's inline cth_singleton_get. */
CTH_API int cth_singleton_get(cth_singleton_t *singleton, cth_singleton_fn ctor, void *arg,
                              void **instance);
CTH_API int cth_singleton_get(cth_singleton_t *singleton, cth_singleton_fn ctor, void *arg,
                              void **instance)
{
    if (singleton && ctor && instance && cth_once_done(&singleton->_once)) {
        *instance = singleton->_instance;
        return 0;
    }
    return cth__singleton_get_slow(singleton, ctor, arg, instance);
}
