/* SPDX-License-Identifier: MIT */
/*
 * cthreading/timer.h - Python's threading.Timer, plus periodic timers, on one
 * shared timer service.
 *
 * CPython starts one thread per Timer. cthreading keeps every pending timer
 * in one 4-ary min-heap served by one service thread that sleeps until the
 * earliest deadline (started on first use); due timers are run by a few
 * worker threads (with the service thread, one per CPU), and a worker is
 * added only while the others are
 * held up: blocked in a cthreading wait or sleep, or in one call for over
 * about a millisecond. So a million timers cost a handful of threads, and a
 * function may still block or run long: it delays the other due timers by
 * about a millisecond at most. Idle workers exit after a few seconds.
 * Scheduling and cancelling cost O(log n) and allocate nothing beyond the
 * timer itself (and, now and then, a segment of the heap).
 *
 * A timer is an opaque handle: cth_timer_create gives the caller one
 * reference, cth_timer_free drops it (and cancels the timer if it is still
 * pending). The service holds its own reference while the timer is pending
 * or running, so nothing dangles.
 *
 * Time is measured on the monotonic clock; a timer never fires early. Timers
 * with the same deadline fire in the order they were started: a function is
 * called only once the calls of the timers started before it have begun
 * (with several workers, the calls may then run at the same time).
 *
 * Inside a timer's function, cth_current_thread() is the timer's thread, as
 * in Python: it has the timer's name and daemon flag.
 *
 * Where it shows, a timer stands in for Python's Timer thread (its daemon
 * flag, enumerate, cth_local values, shutdown, fork); that, and the
 * differences from Python, on purpose: docs/design.md (timer.h).
 */
#ifndef CTHREADING_TIMER_H
#define CTHREADING_TIMER_H

#include <stdbool.h>
#include <stddef.h>

#include "base.h"
#include "thread.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A timer (Python's threading.Timer): an opaque handle. */
typedef struct cth_timer cth_timer_t;

/* A timer's function: Timer(interval, function, args=(arg,)). */
typedef void (*cth_timer_fn)(void *arg);

/* Options for cth_timer_create; zero-initialised (or NULL) means Python's
 * defaults: a one-shot timer named "Timer-N", daemon flag inherited from the
 * creating thread. */
typedef struct cth_timer_opts {
    const char *name;    /* NULL or "": "Timer-N"; copied */
    double period;       /* 0: one-shot; > 0: periodic, seconds between calls */
    cth_daemon_t daemon; /* default: inherit from the creating thread */
} cth_timer_opts_t;

/* The life of a timer. */
typedef enum cth_timer_state {
    CTH_TIMER_INITIAL = 0,  /* created, not started */
    CTH_TIMER_PENDING = 1,  /* started, waiting for its deadline */
    CTH_TIMER_RUNNING = 2,  /* fired: its function is running (or about to,
                               on a worker); a cancel no longer stops it */
    CTH_TIMER_FIRED = 3,    /* a one-shot timer whose function has returned */
    CTH_TIMER_CANCELLED = 4 /* cancelled (by cth_timer_cancel, cth_timer_free or
                               shutdown) before it fired; a periodic timer ends
                               here once cancelled and its last call returned */
} cth_timer_state_t;

/*
 * cth_timer_create - threading.Timer(interval, function, args=(arg,)).
 * interval is in seconds (0 fires as soon as started); opts->period > 0
 * makes a periodic timer whose first call comes interval seconds after start
 * and each next one period seconds after the previous deadline (not after
 * the previous call ended, so it does not drift). Nothing happens until
 * cth_timer_start.
 * opts (may be NULL) is read during the call only; its name is copied.
 * Returns 0 and *timer; CTH_EINVAL for a NULL timer or fn, a negative or NaN
 * interval or period, or an unknown daemon value; CTH_EOVERFLOW for one
 * above CTH_TIMEOUT_MAX; CTH_ENOMEM. Thread-safe.
 */
CTH_API int cth_timer_create(cth_timer_t **timer, double interval, cth_timer_fn fn, void *arg,
                             const cth_timer_opts_t *opts);

/*
 * cth_timer_start - Timer.start(): schedule the timer interval seconds from
 * now. Thread-safe; wakes the service thread only when this timer becomes
 * the earliest. A timer cancelled before start finishes at once without
 * calling its function (as Python's, whose thread then calls nothing).
 * Returns 0; CTH_EPERM if started before ("threads can only be started
 * once", checked first); CTH_ESHUTDOWN once shutdown has finished waiting
 * for the non-daemon threads and timers; CTH_ENOMEM or CTH_EAGAIN
 * if the service could not grow or start its thread (the timer is then left
 * unstarted); CTH_EINVAL for NULL.
 */
CTH_API int cth_timer_start(cth_timer_t *timer);

/*
 * cth_timer_cancel - Timer.cancel(): stop the timer if it has not fired yet.
 * Pending: its function never runs, it becomes CTH_TIMER_CANCELLED and its
 * joiners return. Running: no effect on the call in progress (a periodic
 * timer is not called again; this works from inside its own function).
 * Finished: a no-op. Not started: the later start calls nothing. Always sets
 * the finished flag, as Python's finished.set(). Thread-safe, callable from
 * any timer's function. Returns 0, or CTH_EINVAL for NULL.
 */
CTH_API int cth_timer_cancel(cth_timer_t *timer);

/*
 * cth_timer_join - Timer.join(timeout): wait until the timer has fired and
 * its function returned, or was cancelled (a periodic timer: cancelled and
 * its last call returned).
 * Returns 0; CTH_ETIMEDOUT if still pending or running at the timeout;
 * CTH_EINTR in an interrupted main thread; CTH_EPERM before start ("cannot
 * join thread before it is started"); CTH_EDEADLK from the timer's own
 * function ("cannot join current thread"); CTH_EINVAL for NULL or a bad
 * timeout. As Thread.join, the state is checked before the timeout.
 */
CTH_API int cth_timer_join(cth_timer_t *timer, double timeout);

/* cth_timer_is_alive - Timer.is_alive(): pending or running its function.
 * False for NULL. */
CTH_API bool cth_timer_is_alive(const cth_timer_t *timer);

/* cth_timer_finished - Timer.finished.is_set(): true once cancelled (at any
 * time, even while its function runs, as Python) or once a one-shot timer's
 * function has returned. False for NULL. */
CTH_API bool cth_timer_finished(const cth_timer_t *timer);

/* cth_timer_state - where the timer is in its life (see cth_timer_state_t);
 * tells a fired timer from a cancelled one. CTH_TIMER_INITIAL for NULL. */
CTH_API cth_timer_state_t cth_timer_state(const cth_timer_t *timer);

/* cth_timer_interval - Timer.interval in seconds (0 for NULL). */
CTH_API double cth_timer_interval(const cth_timer_t *timer);

/* cth_timer_period - the period in seconds, 0 for a one-shot timer (and for
 * NULL). Python has none. */
CTH_API double cth_timer_period(const cth_timer_t *timer);

/* cth_timer_function - Timer.function (NULL for NULL). */
CTH_API cth_timer_fn cth_timer_function(const cth_timer_t *timer);

/* cth_timer_arg - Timer.args: the argument given at creation (NULL for NULL). */
CTH_API void *cth_timer_arg(const cth_timer_t *timer);

/* cth_timer_daemon - Timer.daemon: true for a daemon timer; false for a
 * non-daemon one and for NULL. */
CTH_API bool cth_timer_daemon(const cth_timer_t *timer);

/*
 * cth_timer_get_name - Timer.name: copy the name into buf (size bytes,
 * NUL-terminated, truncated to fit; a NULL buf copies nothing, as size 0).
 * Returns the full name's length, as snprintf does (a return >= size means
 * it was truncated). A NULL timer has the empty name: 0, and buf, if size
 * is not 0, gets "".
 */
CTH_API size_t cth_timer_get_name(const cth_timer_t *timer, char *buf, size_t size);

/* cth_timer_current - the timer whose function the calling thread is
 * running, or NULL (Python's current_thread() inside a Timer is the Timer).
 * Borrowed: valid during the call. Lets a periodic function cancel itself. */
CTH_API cth_timer_t *cth_timer_current(void);

/* cth_timer_free - drop the caller's reference. A pending timer is
 * cancelled first (its function never runs); a running one finishes its
 * call (a periodic one is not called again) and its memory goes when it
 * returns. NULL is ignored. Do not use the handle afterwards. */
CTH_API void cth_timer_free(cth_timer_t *timer);

#ifdef __cplusplus
}
#endif
#endif
