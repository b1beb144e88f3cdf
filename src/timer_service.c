/* SPDX-License-Identifier: MIT */
/*
 * timer_service.c - the one timer service every Timer runs on.
 *
 * State: a 4-ary min-heap of pending timers, an array of {deadline, timer}
 * entries (the deadline is copied in so that sifting compares without
 * touching the timers; each timer keeps its slot index, so cancel is an
 * O(log n) removal from the middle); a FIFO backlog of due timers no worker
 * has taken yet; a stack of idle workers. One lock (svc.lock) protects all
 * of it and every timer's scheduling fields; state, done and finished are
 * atomics so that the accessors read them without the lock.
 *
 * Why a heap and not a hierarchical wheel: a 4-ary heap is exact (never early,
 * never late by design, no cascading or granularity), ties break on the start
 * sequence for free, its insert is O(1) on average for random deadlines and
 * its removal log4(n) levels of contiguous 16-byte entries.
 * bench/bench_timers.c measures it against libuv's binary heap, the O(log n)
 * reference. A wheel would win only on cancel-heavy loads where the heap's
 * removal misses the cache, at the cost of granularity (early or late
 * firing) or of re-cascading to stay exact.
 *
 * The service thread (a daemon cth_thread, started on the first start)
 * sleeps on the futex word svc.wake until the earliest deadline. It publishes
 * that deadline in svc.sleep_until; a start wakes it (bumping svc.wake) only
 * when the new timer goes to the top of the heap earlier than that, so
 * nothing wakes it while nothing is due. Due timers go straight to an idle
 * worker (direct hand-off on the worker's own futex word) or, when none is
 * idle, to the backlog while the service starts a new worker (a daemon
 * cth_thread): a timer never waits behind another's function. Idle workers
 * exit after IDLE_NS. If a worker cannot be started (the OS refuses, or
 * shutdown is over), the service thread runs the function itself, so nothing
 * is lost. These threads are the library's own: cth_enumerate does not list
 * them, except one running a timer's function, which then acts as Python's
 * Timer thread would (run_timer): it is listed, what it creates inherits the
 * timer's daemon flag, and the cth_local values the function set are
 * destroyed when it returns.
 *
 * Memory: the timer plus its heap entry (16 bytes; the array at most twice
 * the size needed, halved when a quarter full). Nothing is allocated per
 * schedule except when the array doubles (a copy under the lock: one pause
 * per doubling).
 *
 * Fork: the lock is held across fork(); a child ends the timers pending or
 * running elsewhere at the fork as cancelled, frees the gone workers'
 * records, and starts a new service on its next start
 * (service_after_fork_child).
 *
 * Shutdown: a non-daemon one-shot timer is a non-daemon Timer thread in
 * Python, alive from its start until its function has returned: it is
 * admitted and counted by the runtime (cth__shutdown_admit) and released when
 * it ends, so cth_shutdown waits for it as for a thread, timers started
 * during the wait included. Once that wait is over new starts are refused,
 * and the finalizer registered on first use (service_close) cancels every
 * timer left (daemon and periodic ones), stops the service thread and the
 * idle workers, and frees the heap.
 */
#include <limits.h>
#include <pthread.h>

#include "alloc.h"
#include "deadline.h"
#include "lockword.h"
#include "runtime.h"
#include "timer_service.h"
#include "wait.h"

#define IDLE_NS (2LL * 1000000000LL) /* an idle worker exits after this */
#define HEAP_MIN 64u
#define HEAP_MAX (1u << 30) /* keeps 4 * i + 4 within uint32_t */

struct heap_entry {
    int64_t deadline;
    struct cth_timer *timer;
};

struct worker {
    struct cth__list_node idle_link; /* on svc.idle while idle */
    struct cth__list_node all_link;  /* on svc.workers while alive */
    struct cth_timer *task;          /* handed over by the service, under the lock */
    _Atomic uint32_t word;           /* 0 while idle; 1 when handed a task or told to stop */
};

static struct {
    cth_lock_t lock;
    struct heap_entry *heap;
    uint32_t n, cap;
    uint64_t seq;
    struct cth__list backlog; /* due timers no worker has taken yet, oldest first */
    uint32_t backlog_len;
    uint32_t starting;        /* workers started that have not taken work yet */
    struct cth__list idle;    /* idle workers, the latest first */
    struct cth__list workers; /* every worker alive (for a fork child) */
    struct cth__list running; /* timers whose function runs now */
    _Atomic uint32_t wake;    /* the service thread sleeps on it */
    int64_t sleep_until;      /* its sleep's deadline; INT64_MIN while awake */
    bool finalizer_registered, closed, stop;
    cth_thread_t *thread;
} svc = {.sleep_until = INT64_MIN};

static _Thread_local struct cth_timer *running_here;

/* The main thread must not lose an interruption to this short lock wait: it
 * is re-posted for its next wait. */
static void svc_lock(void)
{
    if (cth__lock_acquire_uninterrupted(&svc.lock))
        cth__interrupt_main_wait();
}

static void svc_unlock(void)
{
    cth_lock_release(&svc.lock);
}

/* ---- the heap ------------------------------------------------------------------------------ */

static inline bool earlier(const struct heap_entry *a, const struct heap_entry *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->timer->seq < b->timer->seq);
}

static inline void heap_put(uint32_t i, struct heap_entry e)
{
    svc.heap[i] = e;
    e.timer->heap_index = i;
}

static void sift_up(uint32_t i, struct heap_entry e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (!earlier(&e, &svc.heap[parent]))
            break;
        heap_put(i, svc.heap[parent]);
        i = parent;
    }
    heap_put(i, e);
}

static void sift_down(uint32_t i, struct heap_entry e)
{
    for (;;) {
        uint32_t first = 4 * i + 1;
        if (first >= svc.n)
            break;
        uint32_t end = first + 4 < svc.n ? first + 4 : svc.n;
        uint32_t best = first;
        for (uint32_t c = first + 1; c < end; c++)
            if (earlier(&svc.heap[c], &svc.heap[best]))
                best = c;
        if (!earlier(&svc.heap[best], &e))
            break;
        heap_put(i, svc.heap[best]);
        i = best;
    }
    heap_put(i, e);
}

/* Make room for one more entry: 0 or CTH_ENOMEM. */
static int heap_reserve(void)
{
    if (svc.n < svc.cap)
        return 0;
    if (svc.cap >= HEAP_MAX)
        return CTH_ENOMEM;
    uint32_t cap = svc.cap ? svc.cap * 2 : HEAP_MIN;
    struct heap_entry *heap = cth__realloc(svc.heap, (size_t)cap * sizeof *heap);
    if (!heap)
        return CTH_ENOMEM;
    svc.heap = heap;
    svc.cap = cap;
    return 0;
}

static void heap_remove(struct cth_timer *t)
{
    uint32_t i = t->heap_index;
    t->heap_index = CTH__TIMER_NOT_IN_HEAP;
    struct heap_entry last = svc.heap[--svc.n];
    if (i != svc.n) {
        if (i > 0 && earlier(&last, &svc.heap[(i - 1) / 4]))
            sift_up(i, last);
        else
            sift_down(i, last);
    }
    /* Give memory back after a peak, with hysteresis. */
    if (svc.cap > HEAP_MIN && svc.n < svc.cap / 4) {
        struct heap_entry *heap = cth__realloc(svc.heap, (size_t)(svc.cap / 2) * sizeof *heap);
        if (heap) {
            svc.heap = heap;
            svc.cap /= 2;
        }
    }
}

/* Insert a timer whose deadline is set (room reserved); wake the service
 * thread only if it sleeps past this new earliest deadline. */
static void heap_push(struct cth_timer *t)
{
    t->seq = svc.seq++;
    sift_up(svc.n++, (struct heap_entry){t->deadline, t});
    if (t->heap_index == 0 && t->deadline < svc.sleep_until) {
        svc.sleep_until = INT64_MIN; /* one wake-up is enough */
        atomic_fetch_add_explicit(&svc.wake, 1, memory_order_release);
        cth__futex_wake(&svc.wake, 1);
    }
}

/* ---- a timer's end ------------------------------------------------------------------------- */

void cth__timer_unref(struct cth_timer *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        cth__free(t->name);
        cth__free(t);
    }
}

/* Whether shutdown waits for the timer: a non-daemon one-shot timer (a
 * periodic one would never end; it is cancelled at shutdown). */
static bool counts_for_exit(const struct cth_timer *t)
{
    return !t->daemon && t->period_ns == 0;
}

/* The timer is neither pending nor running any more (lock held): publish
 * its final state, release its joiners and drop the service's reference. */
static void finish(struct cth_timer *t, cth_timer_state_t state)
{
    atomic_store_explicit(&t->state, state, memory_order_release);
    atomic_store_explicit(&t->finished, true, memory_order_release);
    if (counts_for_exit(t))
        cth__shutdown_release();
    /* done: 0 running, 2 running with joiners asleep, 1 done. */
    if (atomic_exchange_explicit(&t->done, 1, memory_order_release) == 2)
        cth__futex_wake(&t->done, INT_MAX);
    cth__timer_unref(t);
}

/* ---- running a due timer ---------------------------------------------------------------------- */

struct cth_timer *cth__timer_running_here(void)
{
    return running_here;
}

/* The next deadline of a periodic timer: on the schedule (previous deadline
 * plus the period, so no drift); if the call overran whole periods, the
 * missed ticks are skipped, so at most one call comes late. */
static int64_t next_deadline(int64_t prev, int64_t period, int64_t now)
{
    if (period > INT64_MAX - 1 - prev)
        return INT64_MAX - 1;
    int64_t next = prev + period;
    if (now - next >= period)
        next += (now - next) / period * period;
    return next;
}

/* Run a fired timer's function (lock held; released during the call). While
 * it runs the timer is on svc.running (by its link: a running timer is in
 * no backlog), so that a fork child can end it. */
static void run_timer(struct cth_timer *t)
{
    cth__list_push_front(&svc.running, &t->link);
    svc_unlock();
    running_here = t;
    cth__thread_act_begin(t->daemon, counts_for_exit(t));
    t->fn(t->arg);
    cth__runtime_thread_exit(); /* a Timer's thread ends with its function */
    cth__thread_act_end();
    running_here = NULL;
    svc_lock();
    cth__list_remove(&svc.running, &t->link);
    if (t->period_ns == 0) {
        finish(t, CTH_TIMER_FIRED);
    } else if (t->cancel_requested || svc.closed || heap_reserve() != 0) {
        finish(t, CTH_TIMER_CANCELLED);
    } else {
        t->deadline = next_deadline(t->deadline, t->period_ns, cth__now_ns());
        atomic_store_explicit(&t->state, CTH_TIMER_PENDING, memory_order_release);
        heap_push(t);
    }
}

/* ---- workers ---------------------------------------------------------------------------------- */

/* The oldest timer of the backlog, which is not empty. */
static struct cth_timer *backlog_pop(void)
{
    svc.backlog_len--;
    return cth__list_entry(cth__list_pop_front(&svc.backlog), struct cth_timer, link);
}

static void backlog_push(struct cth_timer *t)
{
    cth__list_push_back(&svc.backlog, &t->link);
    svc.backlog_len++;
}

/* Wait idle for a task (lock held, released while asleep). Returns false
 * when the worker should exit: idle for IDLE_NS, nobody handed it work. */
static bool idle_wait(struct worker *w)
{
    atomic_store_explicit(&w->word, 0, memory_order_relaxed);
    cth__list_push_front(&svc.idle, &w->idle_link);
    int64_t deadline = cth__now_ns() + IDLE_NS;
    svc_unlock();
    int r = 0;
    while (r != CTH_ETIMEDOUT && atomic_load_explicit(&w->word, memory_order_acquire) == 0)
        r = cth__futex_wait(&w->word, 0, deadline);
    svc_lock();
    if (atomic_load_explicit(&w->word, memory_order_acquire))
        return true;
    cth__list_remove(&svc.idle, &w->idle_link); /* nobody took it off: it is still idle */
    return false;
}

/* The next idle worker, taken off svc.idle, or NULL. */
static struct worker *idle_pop(void)
{
    return cth__list_entry(cth__list_pop_front(&svc.idle), struct worker, idle_link);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    svc_lock();
    svc.starting--;
    for (;;) {
        struct cth_timer *t = w->task;
        if (t)
            w->task = NULL;
        else if (!cth__list_empty(&svc.backlog))
            t = backlog_pop();
        else if (svc.stop || !idle_wait(w))
            break;
        if (t)
            run_timer(t);
    }
    cth__list_remove(&svc.workers, &w->all_link);
    svc_unlock();
    cth__free(w);
    return NULL;
}

/* Start a worker (lock held, released meanwhile): 0 or an error code. */
static int spawn_worker(void)
{
    struct worker *w = cth__calloc(1, sizeof *w);
    if (!w)
        return CTH_ENOMEM;
    svc.starting++;
    cth__list_push_front(&svc.workers, &w->all_link);
    svc_unlock();
    cth_thread_t *th;
    int err = cth__thread_create_internal(&th, worker_main, w, "cth-timer-work");
    if (!err) {
        err = cth_thread_start(th);
        cth_thread_free(th); /* detached: it frees itself when it ends */
    }
    svc_lock();
    if (err) {
        svc.starting--;
        cth__list_remove(&svc.workers, &w->all_link);
        cth__free(w);
    }
    return err;
}

/* Hand a due timer (taken off the heap) to a worker (lock held). */
static void dispatch(struct cth_timer *t)
{
    /* It has fired: from here a cancel no longer stops this call. Setting
     * it now, under the lock, makes the states follow the firing order. */
    atomic_store_explicit(&t->state, CTH_TIMER_RUNNING, memory_order_release);
    struct worker *w = idle_pop();
    if (w) {
        w->task = t;
        atomic_store_explicit(&w->word, 1, memory_order_release);
        cth__futex_wake(&w->word, 1);
        return;
    }
    backlog_push(t);
    if (svc.backlog_len > svc.starting && spawn_worker() != 0 && !cth__list_empty(&svc.backlog))
        run_timer(backlog_pop()); /* no worker to be had: run it here */
}

/* ---- the service thread ----------------------------------------------------------------------- */

static void *service_main(void *arg)
{
    CTH__UNUSED(arg);
    cth__os_precise_timeouts_self(); /* wake at the deadline, not 50 us after */
    svc_lock();
    while (!svc.stop) {
        if (svc.n && svc.heap[0].deadline <= cth__now_ns()) {
            struct cth_timer *t = svc.heap[0].timer;
            heap_remove(t);
            dispatch(t);
            continue;
        }
        int64_t until = svc.n ? svc.heap[0].deadline : CTH__NO_DEADLINE;
        svc.sleep_until = until;
        uint32_t seen = atomic_load_explicit(&svc.wake, memory_order_acquire);
        svc_unlock();
        cth__futex_wait(&svc.wake, seen, until);
        svc_lock();
        svc.sleep_until = INT64_MIN;
    }
    svc_unlock();
    return NULL;
}

/* Cancel every timer not yet running: pending in the heap or due in the
 * backlog (lock held). */
static void cancel_all_waiting(void)
{
    while (svc.n) {
        struct cth_timer *t = svc.heap[0].timer;
        heap_remove(t);
        finish(t, CTH_TIMER_CANCELLED);
    }
    while (!cth__list_empty(&svc.backlog))
        finish(backlog_pop(), CTH_TIMER_CANCELLED);
}

/* The finalizer, once shutdown's wait is over (no non-daemon one-shot timer
 * is left, no timer can start): cancel the rest, stop the threads. */
static void service_close(void *arg)
{
    CTH__UNUSED(arg);
    svc_lock();
    svc.closed = true;
    cancel_all_waiting();
    svc.stop = true;
    atomic_fetch_add(&svc.wake, 1);
    cth__futex_wake(&svc.wake, 1);
    struct worker *w;
    while ((w = idle_pop())) {
        atomic_store(&w->word, 1);
        cth__futex_wake(&w->word, 1);
    }
    cth__free(svc.heap);
    svc.heap = NULL;
    svc.cap = 0;
    cth_thread_t *th = svc.thread;
    svc.thread = NULL;
    svc_unlock();
    cth_thread_free(th); /* detached; it exits on svc.stop */
}

/* fork(): the service's lock is held across it, so the child finds the
 * service consistent. In the child only the forking thread survives: the
 * service thread and the workers are gone. Pending timers end cancelled (as
 * a Python child's Timer threads are gone), and so do timers whose function
 * was running in another thread (it never returns there), so joiners are
 * released; the gone threads' records are freed; the service restarts on
 * the next start. A timer whose function is the one that forked runs on. */
static void service_fork_prepare(void)
{
    svc_lock();
}

static void service_fork_parent(void)
{
    svc_unlock();
}

static void service_after_fork_child(void)
{
    cth_lock_init(&svc.lock); /* held by this thread; no parked waiter is here */
    cancel_all_waiting();
    struct cth__list running = svc.running;
    cth__list_init(&svc.running);
    struct cth_timer *t;
    while ((t = cth__list_entry(cth__list_pop_front(&running), struct cth_timer, link))) {
        if (t == running_here) {
            cth__list_push_back(&svc.running, &t->link); /* ours: it goes on here */
        } else {
            finish(t, CTH_TIMER_CANCELLED);
        }
    }
    struct worker *w;
    while ((w = cth__list_entry(cth__list_pop_front(&svc.workers), struct worker, all_link))) {
        if (w->task) /* handed over, not yet taken up */
            finish(w->task, CTH_TIMER_CANCELLED);
        cth__free(w);
    }
    cth__list_init(&svc.idle);
    svc.starting = 0;
    cth_thread_free(svc.thread); /* its thread is gone (the runtime's handler ran first) */
    svc.thread = NULL;
    svc.sleep_until = INT64_MIN;
}

/* Start the service thread on first use (lock held). */
static int service_ensure(void)
{
    if (svc.thread)
        return 0;
    int err = 0;
    if (!svc.finalizer_registered) {
        err = cth__finalizer_register(service_close, NULL);
        if (err)
            return err;
        svc.finalizer_registered = true;
        cth__runtime_on_fork(service_fork_prepare, service_fork_parent, service_after_fork_child);
    }
    err = cth__thread_create_internal(&svc.thread, service_main, NULL, "cth-timers");
    if (err)
        return err;
    err = cth_thread_start(svc.thread);
    if (err) {
        cth_thread_free(svc.thread);
        svc.thread = NULL;
    }
    return err;
}

/* ---- what timer.c calls ---------------------------------------------------------------------- */

int cth__timer_schedule(struct cth_timer *t)
{
    int64_t deadline = cth__deadline(t->interval);
    svc_lock();
    /* Python's order: "threads can only be started once", then shutdown.
     * Admission under svc.lock: service_close, which runs once no more is
     * admitted, finds every admitted timer in the heap. */
    bool counted = counts_for_exit(t) && !t->cancel_requested;
    int err = t->started ? CTH_EPERM : cth__shutdown_admit(counted);
    if (err) {
        svc_unlock();
        return err;
    }
    if (t->cancel_requested) {
        /* Cancelled before start: Python's thread starts and calls nothing. */
        t->started = true;
        atomic_store_explicit(&t->state, CTH_TIMER_CANCELLED, memory_order_release);
        atomic_store_explicit(&t->done, 1, memory_order_release);
    } else if ((err = service_ensure()) != 0 || (err = heap_reserve()) != 0) {
        if (counted)
            cth__shutdown_release();
    } else {
        t->started = true;
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed); /* the service's */
        t->deadline = deadline;
        atomic_store_explicit(&t->state, CTH_TIMER_PENDING, memory_order_release);
        heap_push(t);
    }
    svc_unlock();
    return err;
}

void cth__timer_unschedule(struct cth_timer *t)
{
    svc_lock();
    atomic_store_explicit(&t->finished, true, memory_order_release);
    if (t->heap_index != CTH__TIMER_NOT_IN_HEAP) {
        heap_remove(t);
        finish(t, CTH_TIMER_CANCELLED);
    } else {
        /* Not started (start sees the flag), or fired (running, or due in
         * a worker's hands): a periodic timer is not called again. */
        t->cancel_requested = true;
    }
    svc_unlock();
}
