/* SPDX-License-Identifier: MIT */
/*
 * timer_service.h - what timer.c (the Timer object) and timer_service.c
 * (the heap, its thread and the workers) share. Private to the library.
 */
#ifndef CTH_TIMER_SERVICE_H
#define CTH_TIMER_SERVICE_H

#include "cthreading/timer.h"
#include "list.h"
#include "platform.h"

#define CTH__TIMER_NOT_IN_HEAP UINT32_MAX

/*
 * A timer. The fields above the line are the service's and change only under
 * its lock (state, done and finished are atomic so that the accessors read
 * them without it); the ones below are fixed at creation. 104 bytes on LP64
 * (malloc's 112-byte chunk, as 96 would take).
 */
struct cth_timer {
    int64_t deadline;           /* next due time (monotonic ns), while pending */
    uint64_t seq;               /* start order: tie-break for equal deadlines */
    uint32_t heap_index;        /* slot in the heap, or CTH__TIMER_NOT_IN_HEAP */
    _Atomic uint32_t state;     /* cth_timer_state_t */
    _Atomic uint32_t done;      /* 1 once neither pending nor running: joiners wait on it */
    _Atomic uint32_t refs;      /* the caller's reference + the service's while alive */
    _Atomic bool finished;      /* Python's Timer.finished */
    bool started;               /* cth_timer_start succeeded (or ran a cancelled timer) */
    bool cancel_requested;      /* cancelled while not in the heap: the worker or start sees it */
    bool daemon;                /* fixed at creation */
    uint32_t number;            /* N of the default name "Timer-N" */
    struct cth__list_node link; /* on the service's backlog or running list */
    /* ---- fixed at creation */
    double interval;     /* seconds, as given */
    int64_t interval_ns; /* the same in ns, rounded up: start adds it to the clock */
    int64_t period_ns;   /* 0: one-shot */
    cth_timer_fn fn;
    void *arg;
    char *name; /* NULL: "Timer-<number>" */
};

/* Schedule a created timer (cth_timer_start's work): 0, CTH_EPERM,
 * CTH_ESHUTDOWN, CTH_ENOMEM, CTH_EAGAIN. */
int cth__timer_schedule(struct cth_timer *t);

/* Cancel (cth_timer_cancel's work). */
void cth__timer_unschedule(struct cth_timer *t);

/* Drop one reference; the last one frees the timer. */
void cth__timer_unref(struct cth_timer *t);

/* The timer whose function the calling thread runs, or NULL. */
struct cth_timer *cth__timer_running_here(void);

/* For tests: fn runs in a thread that grows the heap, while the service's
 * lock is released for the allocation of the new segment (NULL: nothing). */
void cth__timer_heap_grow_hook(void (*fn)(void));

#endif
