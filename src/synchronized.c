/* SPDX-License-Identifier: MIT */
/*
 * synchronized.c - the guards behind CTH_SYNCHRONIZED and CTH_GUARD.
 *
 * A guard is a pointer to the lock it holds and the lock's kind; releasing
 * clears the pointer, so a release runs at most once. Acquisition never
 * gives up on an interruption of the main thread: it re-arms the
 * interruption for the next wait instead (a block cannot report an error).
 */
#include "cthreading/synchronized.h"
#include "lock.h"
#include "wait.h"

enum { KIND_LOCK = 1, KIND_RLOCK = 2 };

CTH_API cth_guard_t cth_guard_lock(cth_lock_t *lock)
{
    cth_guard_t g = {NULL, KIND_LOCK, 0};
    if (!lock)
        return g;
    cth__lock_acquire_keeping_interrupt(lock);
    g._lock = lock;
    return g;
}

CTH_API cth_guard_t cth_guard_rlock(cth_rlock_t *rlock)
{
    cth_guard_t g = {NULL, KIND_RLOCK, 0};
    if (!rlock)
        return g;
    int r, interrupted = 0;
    while ((r = cth_rlock_acquire(rlock, CTH_FOREVER)) == CTH_EINTR)
        interrupted = 1;
    if (interrupted)
        cth__interrupt_main_wait();
    if (r == 0)
        g._lock = rlock;
    return g;
}

CTH_API void cth_guard_release(cth_guard_t *guard)
{
    if (!guard || !guard->_lock)
        return;
    if (guard->_kind == KIND_RLOCK)
        cth_rlock_release(guard->_lock);
    else
        cth_lock_release(guard->_lock);
    guard->_lock = NULL;
}

CTH_API bool cth_guard_held(const cth_guard_t *guard)
{
    return guard && guard->_lock;
}
