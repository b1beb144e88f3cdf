/* SPDX-License-Identifier: MIT */
/*
 * barrier.c - Barrier, Python's state machine (Lib/threading.py) over a
 * Condition with its own RLock, which guards every field.
 *
 * _state is 0 while filling, 1 while draining (the last thread arrived and
 * the others are leaving), -1 while resetting (reset() with threads
 * waiting), -2 when broken. _count is the number of threads inside wait.
 * A thread enters only while filling (waiting out draining and resetting);
 * the last arrival runs the action and switches to draining; the last
 * thread to leave a draining or resetting barrier switches it back to
 * filling. _count and _state are atomics so that n_waiting and broken can
 * read them without the lock; every write happens under the lock.
 * The lock is re-entrant so the action may call abort and reset.
 * _cycle counts the released cycles: a waiter whose cycle was released
 * returns its index even if abort() or reset() ran before it resumed
 * (Python checks the state alone, and such a waiter gets
 * BrokenBarrierError: a race its test suite escapes through the GIL).
 * Fork: the threads inside wait at a fork do not exist in the child; the
 * first call there to take the lock forgets them with the condition's
 * waiters (cth__cond_forget_dead_waiters): none is counted, and a cycle
 * they were draining or resetting is over.
 */
#include "cthreading/sync.h"
#include "deadline.h"
#include "lock.h"
#include "task_error.h"
#include "wait.h"

_Static_assert(sizeof(cth_barrier_t) == 96 || sizeof(void *) != 8, "cth_barrier_t ABI");

enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

#define ATOMIC_I32(p) ((_Atomic int32_t *)(void *)(p))

static int32_t get_state(const cth_barrier_t *b)
{
    return atomic_load_explicit(ATOMIC_I32(&((cth_barrier_t *)b)->_state), memory_order_relaxed);
}

static void set_state(cth_barrier_t *b, int32_t state)
{
    atomic_store_explicit(ATOMIC_I32(&b->_state), state, memory_order_relaxed);
}

static int32_t get_count(const cth_barrier_t *b)
{
    return atomic_load_explicit(ATOMIC_I32(&((cth_barrier_t *)b)->_count), memory_order_relaxed);
}

static void add_count(cth_barrier_t *b, int32_t d)
{
    atomic_store_explicit(ATOMIC_I32(&b->_count), get_count(b) + d, memory_order_relaxed);
}

CTH_API int cth_barrier_init(cth_barrier_t *barrier, size_t parties, cth_barrier_action_fn action,
                             void *arg, double default_timeout)
{
    if (!barrier || parties == 0)
        return CTH_EINVAL;
    if (parties > INT32_MAX)
        return CTH_EOVERFLOW;
    int err = cth__check_timeout(default_timeout);
    if (err)
        return err;
    cth_cond_init(&barrier->_cond, NULL);
    barrier->_action = action;
    barrier->_arg = arg;
    barrier->_timeout = default_timeout;
    barrier->_parties = (int32_t)parties;
    set_state(barrier, FILLING);
    atomic_store(ATOMIC_I32(&barrier->_count), 0);
    barrier->_cycle = 0;
    return 0;
}

/* Take the barrier's lock (re-entrant, for the action), riding out an
 * interruption of the main thread, which is kept for its next wait. */
static void barrier_lock(cth_barrier_t *b)
{
    int interrupted = 0;
    while (cth_rlock_acquire(&b->_cond._own, CTH_FOREVER) == CTH_EINTR)
        interrupted = 1;
    if (interrupted)
        cth__interrupt_post();
    if (cth__cond_forget_dead_waiters(&b->_cond)) {
        atomic_store(ATOMIC_I32(&b->_count), 0);
        if (get_state(b) != BROKEN)
            set_state(b, FILLING);
    }
}

/* Python's _break: break it and tell everyone. */
static void barrier_break(cth_barrier_t *b)
{
    set_state(b, BROKEN);
    cth_cond_notify_all(&b->_cond);
}

static bool not_draining(void *arg)
{
    int32_t s = get_state(arg);
    return s != DRAINING && s != RESETTING;
}

struct waiting {
    cth_barrier_t *b;
    uint32_t cycle;
};

static bool released(void *arg)
{
    struct waiting *w = arg;
    return get_state(w->b) != FILLING || w->b->_cycle != w->cycle;
}

/* The last arrival: run the action, then release everyone (Python's
 * _release). Returns 0, or CTH_ETASK when the action failed (its value is
 * then the calling thread's cth_task_error()) and broke the barrier. */
static int barrier_release(cth_barrier_t *b)
{
    if (b->_action) {
        int value = b->_action(b->_arg);
        if (value) {
            barrier_break(b);
            return cth__task_failed(value);
        }
    }
    set_state(b, DRAINING);
    b->_cycle++; /* the cycle released */
    cth_cond_notify_all(&b->_cond);
    return 0;
}

CTH_API int cth_barrier_wait(cth_barrier_t *barrier, double timeout)
{
    if (!barrier || barrier->_parties < 1)
        return CTH_EINVAL;
    if (timeout == CTH_BARRIER_DEFAULT_TIMEOUT)
        timeout = barrier->_timeout;
    int err = cth__check_timeout(timeout);
    if (err)
        return err;
    cth_barrier_t *b = barrier;
    barrier_lock(b);

    /* Python's _enter: wait, without limit, while the previous cycle drains
     * or resets; the timeout counts from our arrival in this cycle. */
    int r = cth_cond_wait_for(&b->_cond, not_draining, b, CTH_FOREVER);
    if (r == 0 && get_state(b) == BROKEN)
        r = CTH_EBROKEN;
    if (r) {
        cth_cond_release(&b->_cond);
        return r;
    }

    int32_t index = get_count(b);
    add_count(b, 1);
    if (index + 1 == b->_parties) {
        r = barrier_release(b);
    } else {
        /* Python's _wait. */
        struct waiting w = {b, b->_cycle};
        r = cth_cond_wait_for(&b->_cond, released, &w, timeout);
        if (r) {
            barrier_break(b); /* timeout or interruption */
            r = r == CTH_ETIMEDOUT ? CTH_EBROKEN : r;
        } else {
            /* Released is released, even if aborted before we resumed. */
            r = b->_cycle != w.cycle ? 0 : CTH_EBROKEN;
        }
    }

    /* Python's _exit: the last to leave refills the barrier. */
    add_count(b, -1);
    if (get_count(b) == 0 && (get_state(b) == DRAINING || get_state(b) == RESETTING)) {
        set_state(b, FILLING);
        cth_cond_notify_all(&b->_cond);
    }
    cth_cond_release(&b->_cond);
    return r ? r : index;
}

CTH_API int cth_barrier_reset(cth_barrier_t *barrier)
{
    if (!barrier || barrier->_parties < 1)
        return CTH_EINVAL;
    barrier_lock(barrier);
    if (get_count(barrier) > 0) {
        if (get_state(barrier) == FILLING || get_state(barrier) == BROKEN)
            set_state(barrier, RESETTING);
    } else {
        set_state(barrier, FILLING);
    }
    cth_cond_notify_all(&barrier->_cond);
    cth_cond_release(&barrier->_cond);
    return 0;
}

CTH_API int cth_barrier_abort(cth_barrier_t *barrier)
{
    if (!barrier || barrier->_parties < 1)
        return CTH_EINVAL;
    barrier_lock(barrier);
    barrier_break(barrier);
    cth_cond_release(&barrier->_cond);
    return 0;
}

CTH_API size_t cth_barrier_parties(const cth_barrier_t *barrier)
{
    return barrier && barrier->_parties > 0 ? (size_t)barrier->_parties : 0;
}

CTH_API size_t cth_barrier_n_waiting(const cth_barrier_t *barrier)
{
    if (!barrier || get_state(barrier) != FILLING)
        return 0;
    return (size_t)get_count(barrier);
}

CTH_API bool cth_barrier_broken(const cth_barrier_t *barrier)
{
    return barrier && get_state(barrier) == BROKEN;
}
