/* SPDX-License-Identifier: MIT */
/*
 * timer_record.h - a timer as stored: its fields, its memory and references,
 * its name, and the timer the calling thread runs. timer.c (the Timer
 * object) and timer_service.c (the scheduling) both build on it. Private to
 * the library.
 */
#ifndef CTH_TIMER_RECORD_H
#define CTH_TIMER_RECORD_H

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

/* Memory for a timer, not initialized (cth_timer_create sets every
 * field); NULL when there is none. */
struct cth_timer *cth__timer_alloc(void);

/* Give back a timer no one references (or one never handed out). */
void cth__timer_release(struct cth_timer *t);

/* Drop one reference; the last one frees the timer and its name. */
void cth__timer_unref(struct cth_timer *t);

/* The timer's name into buf (snprintf's rules); its length. */
size_t cth__timer_name(const struct cth_timer *t, char *buf, size_t size);

/* The timer whose function the calling thread runs, or NULL (the service
 * sets it around each call). */
extern _Thread_local struct cth_timer *cth__timer_running
    __attribute__((tls_model("initial-exec")));

#endif
