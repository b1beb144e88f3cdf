/* SPDX-License-Identifier: MIT */
/*
 * timer.c - the Timer object: creation, its accessors, join and free. The
 * scheduling itself (the heap, the service thread, the workers and the
 * lock that guards a timer's scheduling fields) is in timer_service.c.
 *
 * A timer is reference-counted: the caller's reference (create .. free) and
 * the service's (start .. the end of its last call or its cancellation).
 * What the accessors read without the lock is atomic (state, done,
 * finished) or fixed at creation (interval, period, fn, arg, name, daemon).
 * Joiners sleep on the done word: 0 alive, 2 alive with joiners asleep (so
 * that finishing pays a wake-up only when someone waits), 1 done. The
 * timer's memory, references and name are timer_record.c's.
 */
#include <limits.h>
#include <stdio.h>

#include "alloc.h"
#include "deadline.h"
#include "runtime.h"
#include "timer_service.h"
#include "wait.h"

static _Atomic uint32_t timer_counter;

/* ---- the Timer object ----------------------------------------------------------------------- */

/* A valid number of seconds (0 to CTH_TIMEOUT_MAX) in ns, rounded up:
 * ceil's result without its call (below 2^63 the conversion is defined, and
 * from 2^52 on every double is a whole number). */
static int64_t seconds_to_ns(double seconds)
{
    double v = seconds * 1e9;
    if (v >= (double)INT64_MAX)
        return INT64_MAX;
    int64_t ns = (int64_t)v;
    return ns + ((double)ns < v);
}

/* Validate a period: 0 (one-shot) or a positive number of seconds. */
static int check_period(double period, int64_t *ns)
{
    if (period == 0) {
        *ns = 0;
        return 0;
    }
    if (!(period > 0))
        return CTH_EINVAL; /* negative or NaN */
    if (period > CTH_TIMEOUT_MAX)
        return CTH_EOVERFLOW;
    *ns = seconds_to_ns(period);
    return 0;
}

CTH_API int cth_timer_create(cth_timer_t **timer, double interval, cth_timer_fn fn, void *arg,
                             const cth_timer_opts_t *opts)
{
    if (!timer || !fn)
        return CTH_EINVAL;
    if (!(interval >= 0))
        return CTH_EINVAL; /* negative or NaN (CTH_FOREVER too: a timer needs a time) */
    if (interval > CTH_TIMEOUT_MAX)
        return CTH_EOVERFLOW;
    static const cth_timer_opts_t defaults = {0};
    if (!opts)
        opts = &defaults;
    int64_t period_ns;
    int err = check_period(opts->period, &period_ns);
    if (err)
        return err;
    bool daemon;
    if (opts->daemon == CTH_DAEMON_YES) {
        daemon = true;
    } else if (opts->daemon == CTH_DAEMON_NO) {
        daemon = false;
    } else if (opts->daemon == CTH_DAEMON_INHERIT) {
        daemon = cth__inherited_daemon(); /* as a thread's: Timer is a Thread */
    } else {
        return CTH_EINVAL;
    }

    struct cth_timer *t = cth__timer_alloc();
    if (!t)
        return CTH_ENOMEM;
    char *name = NULL;
    if (opts->name && opts->name[0]) {
        name = cth__strdup(opts->name);
        if (!name) {
            cth__timer_release(t);
            return CTH_ENOMEM;
        }
    }
    /* Every field, one store each (a struct literal clears all first). */
    t->deadline = 0;
    t->seq = 0;
    t->heap_index = CTH__TIMER_NOT_IN_HEAP;
    atomic_init(&t->state, CTH_TIMER_INITIAL);
    atomic_init(&t->done, 0);
    atomic_init(&t->refs, 1);
    atomic_init(&t->finished, false);
    t->started = t->cancel_requested = false;
    t->daemon = daemon;
    t->number = atomic_fetch_add_explicit(&timer_counter, 1, memory_order_relaxed) + 1;
    t->link = (struct cth__list_node){NULL, NULL};
    t->interval = interval;
    t->interval_ns = seconds_to_ns(interval);
    t->period_ns = period_ns;
    t->fn = fn;
    t->arg = arg;
    t->name = name;
    *timer = t;
    return 0;
}

CTH_API int cth_timer_start(cth_timer_t *timer)
{
    return timer ? cth__timer_schedule(timer) : CTH_EINVAL;
}

CTH_API int cth_timer_cancel(cth_timer_t *timer)
{
    if (!timer)
        return CTH_EINVAL;
    cth__timer_unschedule(timer);
    return 0;
}

CTH_API int cth_timer_join(cth_timer_t *timer, double timeout)
{
    if (!timer)
        return CTH_EINVAL;
    /* Python's order (Thread.join): the state, then the timeout. */
    if (atomic_load_explicit(&timer->state, memory_order_acquire) == CTH_TIMER_INITIAL)
        return CTH_EPERM;
    if (cth__timer_running == timer)
        return CTH_EDEADLK;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    for (;;) {
        uint32_t done = atomic_load_explicit(&timer->done, memory_order_acquire);
        if (done == 1)
            return 0;
        if (done == 0 && !atomic_compare_exchange_weak_explicit(
                             &timer->done, &done, 2, memory_order_acquire, memory_order_acquire))
            continue;
        err = cth__futex_wait(&timer->done, 2, deadline);
        if (err == CTH_ETIMEDOUT && atomic_load_explicit(&timer->done, memory_order_acquire) == 1)
            return 0;
        if (err)
            return err; /* CTH_EINTR is reported even if it ended meanwhile */
    }
}

CTH_API bool cth_timer_is_alive(const cth_timer_t *timer)
{
    if (!timer)
        return false;
    uint32_t s = atomic_load_explicit(&((cth_timer_t *)timer)->state, memory_order_acquire);
    return s == CTH_TIMER_PENDING || s == CTH_TIMER_RUNNING;
}

CTH_API bool cth_timer_finished(const cth_timer_t *timer)
{
    return timer && atomic_load_explicit(&((cth_timer_t *)timer)->finished, memory_order_acquire);
}

CTH_API cth_timer_state_t cth_timer_state(const cth_timer_t *timer)
{
    if (!timer)
        return CTH_TIMER_INITIAL;
    return (cth_timer_state_t)atomic_load_explicit(&((cth_timer_t *)timer)->state,
                                                   memory_order_acquire);
}

CTH_API double cth_timer_interval(const cth_timer_t *timer)
{
    return timer ? timer->interval : 0;
}

CTH_API double cth_timer_period(const cth_timer_t *timer)
{
    return timer ? (double)timer->period_ns / 1e9 : 0;
}

CTH_API cth_timer_fn cth_timer_function(const cth_timer_t *timer)
{
    return timer ? timer->fn : NULL;
}

CTH_API void *cth_timer_arg(const cth_timer_t *timer)
{
    return timer ? timer->arg : NULL;
}

CTH_API bool cth_timer_daemon(const cth_timer_t *timer)
{
    return timer && timer->daemon;
}

CTH_API size_t cth_timer_get_name(const cth_timer_t *timer, char *buf, size_t size)
{
    return cth__timer_name(timer, buf, size);
}

CTH_API cth_timer_t *cth_timer_current(void)
{
    return cth__timer_running;
}

CTH_API void cth_timer_free(cth_timer_t *timer)
{
    if (!timer)
        return;
    /* Started and not yet done: cancel it first (a done timer is out of the
     * service's hands, and so is an unstarted one). */
    if (atomic_load_explicit(&timer->state, memory_order_acquire) != CTH_TIMER_INITIAL &&
        atomic_load_explicit(&timer->done, memory_order_acquire) != 1)
        cth__timer_unschedule(timer);
    cth__timer_unref(timer);
}
