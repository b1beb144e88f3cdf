/*
 * cond.c - Condition.
 *
 * Like Python's Condition, each wait puts a waiter of its own in a FIFO and
 * sleeps on it; notify(n) takes the n oldest waiters off the FIFO and wakes
 * each one. The waiter lives on the waiting thread's stack and the FIFO is
 * guarded by the condition's own lock, which both wait (while queueing and
 * after waking) and notify (always) hold, so no second lock is needed and a
 * waiter's memory outlives every notify that touches it. A wait returns 0
 * only when a notify marked its waiter: wake-ups of the futex alone are
 * never mistaken for a notification. A waiter that times out takes itself
 * off the FIFO once it has the lock again; if a notify got to it first, it
 * reports the notification instead.
 */
#include "internal.h"

_Static_assert(sizeof(cth_cond_t) == 56 || sizeof(void *) != 8, "cth_cond_t ABI");

enum { COND_OWN_RLOCK = 0, COND_LOCK = 1, COND_RLOCK = 2 };

struct waiter {
    struct waiter *next, *prev;
    _Atomic uint32_t notified;
};

static cth_rlock_t *cond_rlock(cth_cond_t *cond)
{
    return cond->_kind == COND_RLOCK ? (cth_rlock_t *)cond->_lock : &cond->_own;
}

CTH_API int cth_cond_init(cth_cond_t *cond, cth_lock_t *lock)
{
    if (!cond)
        return CTH_EINVAL;
    cond->_lock = lock;
    cond->_kind = lock ? COND_LOCK : COND_OWN_RLOCK;
    cond->_spare = 0;
    cond->_head = cond->_tail = NULL;
    return cth_rlock_init(&cond->_own);
}

CTH_API int cth_cond_init_rlock(cth_cond_t *cond, cth_rlock_t *rlock)
{
    if (!cond)
        return CTH_EINVAL;
    int err = cth_cond_init(cond, NULL);
    if (rlock) {
        cond->_lock = rlock;
        cond->_kind = COND_RLOCK;
    }
    return err;
}

CTH_API int cth_cond_acquire(cth_cond_t *cond, double timeout)
{
    if (!cond)
        return CTH_EINVAL;
    if (cond->_kind == COND_LOCK)
        return cth_lock_acquire((cth_lock_t *)cond->_lock, timeout);
    return cth_rlock_acquire(cond_rlock(cond), timeout);
}

CTH_API int cth_cond_release(cth_cond_t *cond)
{
    if (!cond)
        return CTH_EINVAL;
    if (cond->_kind == COND_LOCK)
        return cth_lock_release((cth_lock_t *)cond->_lock);
    return cth_rlock_release(cond_rlock(cond));
}

/* Python's _is_owned: an RLock must be the caller's; a plain Lock only has
 * to be held by someone (Python's weak check for Lock). */
static bool cond_is_owned(cth_cond_t *cond)
{
    if (cond->_kind == COND_LOCK)
        return cth_lock_locked((cth_lock_t *)cond->_lock);
    return cth_rlock_is_owned(cond_rlock(cond));
}

static void fifo_push(cth_cond_t *cond, struct waiter *w)
{
    w->next = NULL;
    w->prev = cond->_tail;
    if (cond->_tail)
        ((struct waiter *)cond->_tail)->next = w;
    else
        cond->_head = w;
    cond->_tail = w;
}

static void fifo_remove(cth_cond_t *cond, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        cond->_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        cond->_tail = w->prev;
}

CTH_API int cth_cond_wait(cth_cond_t *cond, double timeout)
{
    if (!cond)
        return CTH_EINVAL;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    if (!cond_is_owned(cond))
        return CTH_EPERM;

    struct waiter w;
    atomic_init(&w.notified, 0);
    fifo_push(cond, &w);

    uint32_t count = 0;
    if (cond->_kind == COND_LOCK)
        cth_lock_release((cth_lock_t *)cond->_lock);
    else
        cth__rlock_release_save(cond_rlock(cond), &count);

    int r = 0;
    while (!atomic_load_explicit(&w.notified, memory_order_acquire)) {
        r = cth__futex_wait(&w.notified, 0, deadline);
        if (r != 0)
            break;
    }

    int interrupted;
    if (cond->_kind == COND_LOCK)
        interrupted = cth__lock_acquire_uninterrupted((cth_lock_t *)cond->_lock);
    else
        interrupted = cth__rlock_acquire_restore(cond_rlock(cond), count);

    if (atomic_load_explicit(&w.notified, memory_order_acquire)) {
        /* Notified: that wins; an interruption that came too is kept for
         * the main thread's next wait. */
        if (r == CTH_EINTR || interrupted)
            cth__interrupt_post();
        return 0;
    }
    fifo_remove(cond, &w);
    return interrupted ? CTH_EINTR : r;
}

CTH_API int cth_cond_wait_for(cth_cond_t *cond, cth_predicate_fn predicate, void *arg,
                              double timeout)
{
    if (!cond || !predicate)
        return CTH_EINVAL;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    if (!cond_is_owned(cond))
        return CTH_EPERM;
    for (;;) {
        if (predicate(arg))
            return 1;
        double left = CTH_FOREVER;
        if (deadline != CTH__NO_DEADLINE) {
            int64_t now = cth__now_ns();
            if (now >= deadline)
                return 0;
            left = (double)(deadline - now) / 1e9;
        }
        err = cth_cond_wait(cond, left);
        if (err && err != CTH_ETIMEDOUT)
            return err;
    }
}

CTH_API int cth_cond_notify(cth_cond_t *cond, int n)
{
    if (!cond)
        return CTH_EINVAL;
    if (!cond_is_owned(cond))
        return CTH_EPERM;
    while (n-- > 0 && cond->_head) {
        struct waiter *w = cond->_head;
        fifo_remove(cond, w);
        atomic_store_explicit(&w->notified, 1, memory_order_release);
        cth__futex_wake(&w->notified, 1);
    }
    return 0;
}

CTH_API int cth_cond_notify_all(cth_cond_t *cond)
{
    return cth_cond_notify(cond, 0x7fffffff);
}
