/* SPDX-License-Identifier: MIT */
/*
 * timer_service.c - the one timer service every Timer runs on.
 *
 * State: a 4-ary min-heap of pending timers, of {deadline, timer} entries
 * (the deadline is copied in so that sifting compares without touching the
 * timers; each timer keeps its slot index, so cancel is an O(log n) removal
 * from the middle); a FIFO backlog of due timers no worker has taken yet; the
 * workers, and a stack of the idle ones. One lock (svc.lock) protects all of
 * it and every timer's scheduling fields; state, done and finished are
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
 * The heap's array is a list of segments, each a little larger than all
 * before it (65, 128, 256, 512... entries): it grows by one segment,
 * allocated with the lock released, and nothing is ever copied, so a million
 * pending timers cost no pause when it grows; it gives its last segment back
 * when it is less than a quarter used. Segment k >= 1 starts at entry
 * 64 * 2^k - 63, always the first of a slot's four children, so the children
 * of a slot are contiguous, and an entry's address is a few instructions
 * without a branch (slot).
 *
 * The service thread (a daemon cth_thread, started on the first start)
 * sleeps on the futex word svc.wake until the earliest deadline. It publishes
 * that deadline in svc.sleep_until; a start wakes it (bumping svc.wake) only
 * when the new timer goes to the top of the heap earlier than that, so
 * nothing wakes it while nothing is due. Due timers go to the backlog, and an
 * idle worker, if any, is woken to take them; the workers take them oldest
 * first. At high rates a busy worker does without the service thread: after
 * a call it takes the earliest timer off the heap itself if it is due
 * (next_due), and if that is due within KEEP_NS it waits for it spinning
 * (worker_wait, one worker at a time); meanwhile the service thread sleeps
 * KEEP_SLACK_NS past that deadline (worker_keeps), and dispatches it then
 * only if the worker has not taken it. So at a million firings a second
 * one worker runs them alone, with no hand-over, no lock passed to and fro
 * and no system call per timer. The workers are few: with the service thread, one thread
 * per CPU (cth__os_cpu_count; at least one worker) runs trivial functions at
 * the highest rates (more workers would only contend for the lock), and a
 * new one starts only when the backlog waits and fewer than that many can
 * run it: the others are held up, either
 * blocked in a cthreading wait or sleep (wait.c counts the waits of a thread
 * whose cth__wait_blocked_count is set: the worker's, while it runs a
 * function) or stuck in one call for over STUCK_NS (a watchdog: while the
 * backlog waits, the service thread looks every STUCK_NS at the workers
 * whose call count has not moved; on Linux it tells a worker that sleeps in
 * the kernel or burns its CPU from one merely not scheduled, which another
 * thread would not help). So a blocking function delays the others by about
 * STUCK_NS at most (plus KEEP_SLACK_NS where the service thread left a due
 * timer to a busy worker), and the threads stay within the CPUs plus the
 * blocked workers. Idle workers exit after IDLE_NS. If no worker can be started
 * (the OS refuses) while none can run the backlog, the service thread runs
 * a function itself, so nothing is lost.
 *
 * Order: timers due at the same instant are taken in the order they were
 * started (the heap breaks ties on the start sequence, the backlog is FIFO
 * and a worker takes from the heap only when the backlog is empty),
 * and each taking draws a ticket: a worker calls the function only once
 * every earlier ticket's call has begun (svc.calls_begun), so functions
 * start in that order even when several workers take them at once.
 *
 * These threads are the library's own: cth_enumerate does not list them,
 * except one running a timer's function, which then acts as Python's Timer
 * thread would (run_timer): cth_current_thread() has the timer's name and
 * daemon flag, it is listed, what it creates inherits that flag, and the
 * cth_local values the function set are destroyed when it returns. None of
 * it takes a lock or copies the name per call: the name is the timer's,
 * made when asked for (timer_name).
 *
 * Memory: the timer plus its heap entry (16 bytes; the segments at most
 * twice the size needed, four times after a peak). Nothing is allocated per
 * schedule except a segment when the heap grows.
 *
 * Fork: the lock is held across fork(); a child ends the timers pending or
 * running elsewhere at the fork as cancelled, frees the gone workers'
 * records, and starts a new service on its next start
 * (service_after_fork_child). A worker that forked from a timer's function
 * goes on in the child: its call returns there, then it ends.
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
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "deadline.h"
#include "lock.h"
#include "runtime.h"
#include "timer_service.h"
#include "wait.h"

#define IDLE_NS (2LL * 1000000000LL) /* an idle worker exits after this */
#define STUCK_NS 1000000LL           /* a call this long holds its worker up */
#define IDLE_SPIN_NS 20000LL         /* an idle worker spins this long before sleeping */
#define SERVICE_SPIN_NS 20000LL      /* the service spins for a deadline this close */
#define KEEP_NS 20000LL              /* a worker waits itself for a deadline this close */
#define KEEP_SLACK_NS 250000LL       /* the service sleeps this long past it meanwhile */
#define SEG_SHIFT 6 /* segment k >= 1 starts at entry (1 << (SEG_SHIFT + k)) - SEG_BIAS */
#define SEG_BIAS 63
#define HEAP_SEGS 24 /* 2^30 - 63 entries: keeps 4 * i + 4 within uint32_t */

struct heap_entry {
    int64_t deadline;
    struct cth_timer *timer;
};

struct worker {
    struct cth__list_node idle_link; /* on svc.idle while idle */
    struct cth__list_node all_link;  /* on svc.workers while alive */
    _Atomic uint32_t word;           /* 0 idle, 2 idle asleep; 1 woken or told to stop */
    _Atomic uint32_t blocked;        /* waits in progress inside a call (wait.c) */
    _Atomic uint32_t in_call;        /* 1 while it runs a timer's function */
    _Atomic uint64_t calls;          /* calls begun: the watchdog sees it move */
    _Atomic long tid;                /* its OS thread id, for the watchdog */
    clockid_t cpu_clock;             /* its CPU-time clock (set before it is listed) */
    bool cpu_clock_ok;
    bool orphan; /* a fork child's: it forked from a call, and ends after it */
    bool spin;   /* its last idle wait was short: spin before sleeping (its own) */
    /* ---- the watchdog's, under the lock */
    bool stuck;          /* held up in one call at the last look */
    bool suspect;        /* no progress at the last look either */
    uint64_t seen_calls; /* calls at the last look */
    int64_t seen_cpu;    /* its CPU time at the last look, while suspect */
};

static struct {
    cth_lock_t lock;
    struct heap_entry *seg[HEAP_SEGS]; /* the heap's segments */
    uintptr_t base[HEAP_SEGS];         /* seg[k] less seg_start(k) entries: slot */
    uint32_t nseg;
    uint32_t n, cap;
    uint32_t shrink_below; /* the last segment goes when n falls below this */
    uint64_t seq;
    struct cth__list backlog;     /* due timers no worker has taken yet, oldest first */
    struct cth__list idle;        /* idle workers, the latest first */
    struct cth__list workers;     /* every worker alive */
    struct cth__list running;     /* timers whose function runs now */
    uint32_t max_workers;         /* the CPUs: enough workers for trivial functions */
    uint64_t next_ticket;         /* handed out as timers are taken from the backlog */
    _Atomic uint64_t calls_begun; /* tickets whose call has begun (a gate, in order) */
    int64_t last_look;            /* the watchdog's last look at the workers */
    int64_t spawn_retry;          /* no new worker before this, after the OS refused one */
    _Atomic uint32_t wake;        /* the service thread sleeps on it */
    int64_t sleep_until;          /* its sleep's deadline; INT64_MIN while awake */
    int64_t sleep_slack;          /* how far past the earliest deadline it sleeps (worker_keeps) */
    bool keeping;                 /* a worker waits for the earliest deadline (worker_wait) */
    bool finalizer_registered, closed, stop;
    cth_thread_t *thread;
} svc = {.sleep_until = INT64_MIN};

static _Thread_local struct worker *worker_here __attribute__((tls_model("initial-exec")));

/* The main thread must not lose an interruption to this short lock wait:
 * one that arrives is posted again for its next wait. */
static void svc_lock(void)
{
    cth__lock_acquire_keeping_interrupt(&svc.lock);
}

static void svc_unlock(void)
{
    cth_lock_release(&svc.lock);
}

/* Wake the service thread (lock held): one wake-up is enough. */
static void wake_service(void)
{
    svc.sleep_until = INT64_MIN;
    svc.sleep_slack = 0;
    atomic_fetch_add_explicit(&svc.wake, 1, memory_order_release);
    cth__futex_wake(&svc.wake, 1);
}

/* ---- the heap ------------------------------------------------------------------------------ */

/* The first entry of segment k, and the entries before segment k + 1. */
static inline uint32_t seg_start(uint32_t k)
{
    return k == 0 ? 0 : (1u << (SEG_SHIFT + k)) - SEG_BIAS;
}

static inline uint32_t seg_end(uint32_t k)
{
    return (1u << (SEG_SHIFT + k + 1)) - SEG_BIAS;
}

/* Entry i: its segment is the top bit of (i + SEG_BIAS) >> SEG_SHIFT (1
 * for segment 0's 0 and 1), and base[k] is that segment's address less its
 * first index in bytes, so no subtraction of the start is needed. */
static inline struct heap_entry *slot(uint32_t i)
{
    uint32_t k = 31 - (uint32_t)__builtin_clz(((i + SEG_BIAS) >> SEG_SHIFT) | 1);
    return (struct heap_entry *)(svc.base[k] + (uintptr_t)i * sizeof(struct heap_entry));
}

static inline bool earlier(const struct heap_entry *a, const struct heap_entry *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->timer->seq < b->timer->seq);
}

/* Put entry src into slot i, whose address is hole. */
static inline void heap_move(uint32_t i, struct heap_entry *hole, const struct heap_entry *src)
{
    *hole = *src;
    src->timer->heap_index = i;
}

/* Place e, going up from slot i (address hole): each entry moved down
 * leaves its own address as the next hole, so a level costs one look-up. */
static void sift_up(uint32_t i, struct heap_entry *hole, struct heap_entry e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        struct heap_entry *p = slot(parent);
        if (!earlier(&e, p))
            break;
        heap_move(i, hole, p);
        hole = p;
        i = parent;
    }
    heap_move(i, hole, &e);
}

/* Place e, going down from slot i (address hole). The children of a slot,
 * 4i+1 to 4i+4, are contiguous in one segment: one look-up a level. */
static void sift_down(uint32_t i, struct heap_entry *hole, struct heap_entry e)
{
    for (;;) {
        uint32_t first = 4 * i + 1;
        if (first >= svc.n)
            break;
        uint32_t nkids = svc.n - first;
        if (nkids > 4)
            nkids = 4;
        struct heap_entry *kids = slot(first), *best = kids;
        for (uint32_t c = 1; c < nkids; c++)
            if (earlier(&kids[c], best))
                best = &kids[c];
        if (!earlier(best, &e))
            break;
        uint32_t best_i = first + (uint32_t)(best - kids);
        heap_move(i, hole, best);
        hole = best;
        i = best_i;
    }
    heap_move(i, hole, &e);
}

static void (*_Atomic grow_hook)(void);

void cth__timer_heap_grow_hook(void (*fn)(void))
{
    atomic_store_explicit(&grow_hook, fn, memory_order_release);
}

/* Make room for one more entry (lock held; released while a segment is
 * allocated, so the caller re-checks what it read before): 0, CTH_ENOMEM,
 * or CTH_ESHUTDOWN once the service is closed. */
static int heap_reserve(void)
{
    while (svc.n >= svc.cap) {
        if (svc.closed)
            return CTH_ESHUTDOWN;
        if (svc.nseg == HEAP_SEGS)
            return CTH_ENOMEM;
        uint32_t k = svc.nseg;
        svc_unlock();
        void (*hook)(void) = atomic_load_explicit(&grow_hook, memory_order_acquire);
        if (hook)
            hook();
        struct heap_entry *seg = cth__malloc((size_t)(seg_end(k) - seg_start(k)) * sizeof *seg);
        svc_lock();
        if (!seg)
            return CTH_ENOMEM;
        if (svc.nseg == k && !svc.closed) {
            svc.seg[k] = seg;
            svc.base[k] = (uintptr_t)seg - (uintptr_t)seg_start(k) * sizeof *seg;
            svc.nseg++;
            svc.cap = seg_end(k);
            svc.shrink_below = seg_start(k) / 2;
        } else {
            cth__free(seg); /* another thread grew it meanwhile */
        }
    }
    return 0;
}

static void heap_remove(struct cth_timer *t)
{
    uint32_t i = t->heap_index;
    t->heap_index = CTH__TIMER_NOT_IN_HEAP;
    struct heap_entry last = *slot(--svc.n);
    if (i != svc.n) {
        if (i > 0 && earlier(&last, slot((i - 1) / 4)))
            sift_up(i, slot(i), last);
        else
            sift_down(i, slot(i), last);
    }
    /* Give memory back after a peak, with hysteresis: the last segment once
     * the entries fill less than half of the ones before it. */
    if (svc.n < svc.shrink_below) {
        uint32_t k = --svc.nseg;
        cth__free(svc.seg[k]);
        svc.seg[k] = NULL;
        svc.cap = seg_start(k);
        svc.shrink_below = seg_start(k - 1) / 2; /* k >= 1: shrink_below was set */
    }
}

static void heap_free(void)
{
    for (uint32_t k = 0; k < svc.nseg; k++) {
        cth__free(svc.seg[k]);
        svc.seg[k] = NULL;
    }
    svc.nseg = svc.cap = svc.shrink_below = 0;
}

/* Insert a timer whose deadline is set (room reserved); wake the service
 * thread only if it sleeps past this new earliest deadline. */
static void heap_push(struct cth_timer *t)
{
    t->seq = svc.seq++;
    uint32_t i = svc.n++;
    sift_up(i, slot(i), (struct heap_entry){t->deadline, t});
    if (t->heap_index == 0 && t->deadline < svc.sleep_until - svc.sleep_slack)
        wake_service();
}

/* ---- a timer's end ------------------------------------------------------------------------- */

/* Whether shutdown waits for the timer: a non-daemon one-shot timer (a
 * periodic one would never end; it is cancelled at shutdown). */
static bool counts_for_exit(const struct cth_timer *t)
{
    return !t->daemon && t->period_ns == 0;
}

/* The timer is neither pending nor running any more (lock held): publish
 * its final state and release its joiners. The service's reference is the
 * caller's to drop. */
static void end_timer(struct cth_timer *t, cth_timer_state_t state)
{
    atomic_store_explicit(&t->state, state, memory_order_release);
    atomic_store_explicit(&t->finished, true, memory_order_release);
    if (counts_for_exit(t))
        cth__shutdown_release();
    /* done: 0 running, 2 running with joiners asleep, 1 done. */
    if (atomic_exchange_explicit(&t->done, 1, memory_order_release) == 2)
        cth__futex_wake(&t->done, INT_MAX);
}

/* end_timer, then drop the service's reference. */
static void finish(struct cth_timer *t, cth_timer_state_t state)
{
    end_timer(t, state);
    cth__timer_unref(t);
}

/* ---- running a due timer ---------------------------------------------------------------------- */

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

/* The name of a worker while it runs t's function, made when asked for (t
 * lives until the call has ended). */
static size_t timer_name(const void *t, char *buf, size_t size)
{
    return cth__timer_name(t, buf, size);
}

/* The calling thread takes the timer of the given ticket: it waits until
 * every earlier ticket's call has begun, then lets the next one go. The wait
 * is short: an earlier ticket's worker holds nothing and is on its way. */
static void wait_turn(uint64_t ticket)
{
    while (atomic_load_explicit(&svc.calls_begun, memory_order_acquire) != ticket)
        sched_yield();
    atomic_store_explicit(&svc.calls_begun, ticket + 1, memory_order_release);
}

/* Run a fired timer's function (lock held; released during the call), in
 * worker w (NULL: the service thread). While it runs the timer is on
 * svc.running (by its link: a running timer is in no backlog), so that a
 * fork child can end it. */
static void run_timer(struct cth_timer *t, struct worker *w)
{
    uint64_t ticket = svc.next_ticket++;
    cth__list_push_front(&svc.running, &t->link);
    svc_unlock();
    cth__timer_running = t;
    cth__thread_act_begin(t, t->daemon, counts_for_exit(t)); /* named by timer_name */
    wait_turn(ticket);
    if (w) {
        atomic_store_explicit(&w->calls, atomic_load_explicit(&w->calls, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        atomic_store_explicit(&w->in_call, 1, memory_order_release);
        cth__wait_blocked_count = &w->blocked;
    }
    t->fn(t->arg);
    if (w) {
        cth__wait_blocked_count = NULL;
        atomic_store_explicit(&w->in_call, 0, memory_order_release);
    }
    cth__runtime_thread_exit(); /* a Timer's thread ends with its function */
    cth__thread_act_end();
    cth__timer_running = NULL;
    int64_t now = t->period_ns ? cth__now_ns() : 0; /* read before the lock: shorter hold */
    svc_lock();
    cth__list_remove(&svc.running, &t->link);
    if (t->period_ns == 0 || t->cancel_requested || svc.closed) {
        finish(t, t->period_ns == 0 ? CTH_TIMER_FIRED : CTH_TIMER_CANCELLED);
        return;
    }
    int err = heap_reserve(); /* may release the lock: a cancel may come meanwhile */
    if (err || t->cancel_requested || svc.closed) {
        finish(t, CTH_TIMER_CANCELLED);
    } else {
        t->deadline = next_deadline(t->deadline, t->period_ns, now);
        atomic_store_explicit(&t->state, CTH_TIMER_PENDING, memory_order_release);
        heap_push(t);
    }
}

/* ---- workers ---------------------------------------------------------------------------------- */

/* The oldest timer of the backlog, or NULL. */
static struct cth_timer *backlog_pop(void)
{
    return cth__list_entry(cth__list_pop_front(&svc.backlog), struct cth_timer, link);
}

/* The earliest timer fires: off the heap, and running from here (lock
 * held). Setting the state under the lock makes the states follow the
 * firing order; from here a cancel no longer stops this call. */
static struct cth_timer *fire_earliest(void)
{
    struct cth_timer *t = slot(0)->timer;
    heap_remove(t);
    atomic_store_explicit(&t->state, CTH_TIMER_RUNNING, memory_order_release);
    return t;
}

/* The next timer for a worker (lock held): the oldest of the backlog, else
 * the earliest of the heap if it is due, which the worker then takes itself
 * (the backlog holds the timers that were due before it, so the order is
 * kept), or NULL. */
static struct cth_timer *next_due(void)
{
    struct cth_timer *t = backlog_pop();
    if (!t && svc.n && slot(0)->deadline <= cth__now_ns())
        t = fire_earliest();
    return t;
}

/* Wait idle for work (lock held, released while waiting). Returns false
 * when the worker should exit: idle for IDLE_NS, nobody woke it. Under a
 * high rate of firings the next one is microseconds away: a worker whose
 * last idle wait was that short spins for up to IDLE_SPIN_NS first, and
 * sleeps only after that (word 2), so that waking a spinning worker costs
 * no system call on either side; at lower rates it sleeps at once. */
static bool idle_wait(struct worker *w)
{
    atomic_store_explicit(&w->word, 0, memory_order_relaxed);
    cth__list_push_front(&svc.idle, &w->idle_link);
    int64_t now = cth__now_ns(), deadline = now + IDLE_NS;
    int64_t spin_until = w->spin ? now + IDLE_SPIN_NS : now;
    svc_unlock();
    uint32_t word;
    while ((word = atomic_load_explicit(&w->word, memory_order_acquire)) == 0 &&
           cth__now_ns() < spin_until)
        for (int i = 0; i < 64; i++)
            cth__cpu_relax();
    if (word == 0 && atomic_compare_exchange_strong(&w->word, &word, 2)) {
        int r = 0;
        while (r != CTH_ETIMEDOUT && atomic_load_explicit(&w->word, memory_order_acquire) == 2)
            r = cth__futex_wait(&w->word, 2, deadline);
    }
    w->spin = cth__now_ns() - now < 2 * IDLE_SPIN_NS;
    svc_lock();
    if (atomic_load_explicit(&w->word, memory_order_acquire) == 1)
        return true;
    cth__list_remove(&svc.idle, &w->idle_link); /* nobody took it off: it is still idle */
    return false;
}

/* Nothing is due (lock held, released while waiting). If the earliest
 * timer is due within KEEP_NS, the worker (one at a time) waits for it
 * itself, spinning: at high rates one worker then runs on alone, without a
 * hand-over from the service thread for each timer (which meanwhile sleeps
 * past that deadline, worker_keeps). Else it waits idle, and the service
 * thread, if it sleeps so, is woken to look at the deadline itself.
 * Returns false when the worker should exit. */
static bool worker_wait(struct worker *w)
{
    if (svc.n && !svc.keeping) { /* one at a time: no herd on the lock at the deadline */
        int64_t due = slot(0)->deadline;
        if (due - cth__now_ns() <= KEEP_NS) {
            svc.keeping = true;
            svc_unlock();
            while (cth__now_ns() < due)
                for (int i = 0; i < 64; i++)
                    cth__cpu_relax();
            svc_lock();
            svc.keeping = false;
            return true;
        }
    }
    if (svc.sleep_slack) /* 0 while it is awake */
        wake_service();
    return idle_wait(w);
}

/* Wake an idle worker taken off svc.idle (lock held): a system call only
 * if it sleeps. */
static void wake_worker(struct worker *w)
{
    if (atomic_exchange_explicit(&w->word, 1, memory_order_acq_rel) == 2)
        cth__futex_wake(&w->word, 1);
}

/* The next idle worker, taken off svc.idle, or NULL. */
static struct worker *idle_pop(void)
{
    return cth__list_entry(cth__list_pop_front(&svc.idle), struct worker, idle_link);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    worker_here = w;
    atomic_store_explicit(&w->tid, cth__os_tid(), memory_order_relaxed);
    w->cpu_clock_ok = pthread_getcpuclockid(pthread_self(), &w->cpu_clock) == 0;
    svc_lock();
    for (;;) {
        struct cth_timer *t = next_due();
        if (t)
            run_timer(t, w);
        else if (w->orphan || svc.stop || !worker_wait(w))
            break;
        if (w->orphan) /* it forked from that call: it ends in the child */
            break;
    }
    if (!w->orphan)
        cth__list_remove(&svc.workers, &w->all_link);
    svc_unlock();
    worker_here = NULL;
    cth__free(w);
    return NULL;
}

/* Start a worker (lock held, released meanwhile): 0 or an error code. */
static int spawn_worker(void)
{
    struct worker *w = cth__calloc(1, sizeof *w);
    if (!w)
        return CTH_ENOMEM;
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
        cth__list_remove(&svc.workers, &w->all_link);
        cth__free(w);
    }
    return err;
}

/* ---- the watchdog --------------------------------------------------------------------------- */

/* CPU time of a worker's thread in ns, or -1. */
static int64_t worker_cpu_ns(const struct worker *w)
{
    struct timespec ts;
    if (!w->cpu_clock_ok || clock_gettime(w->cpu_clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Whether the thread of a worker is running or waiting for a CPU (Linux:
 * its state in /proc is R), as opposed to asleep in the kernel. Where that
 * cannot be known, true. */
static bool worker_runnable(const struct worker *w)
{
#ifdef __linux__
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat",
             atomic_load_explicit(&w->tid, memory_order_relaxed));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return true;
    buf[len] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name may hold anything */
    return !paren || paren[1] != ' ' || paren[2] == 'R';
#else
    CTH__UNUSED(w);
    return true;
#endif
}

/* Whether worker w is held up in its call (lock held): blocked in a
 * cthreading wait, or at the watchdog's look (`look`: STUCK_NS since the
 * last) without a new call since the last look and either asleep in the
 * kernel or burning CPU for a whole look. A worker that is merely not
 * scheduled is not held up: another thread would not run sooner. */
static bool held_up(struct worker *w, bool look)
{
    if (!atomic_load_explicit(&w->in_call, memory_order_acquire)) {
        w->stuck = w->suspect = false;
        return false;
    }
    if (atomic_load_explicit(&w->blocked, memory_order_relaxed))
        return true;
    if (!look)
        return w->stuck;
    uint64_t calls = atomic_load_explicit(&w->calls, memory_order_relaxed);
    bool moved = calls != w->seen_calls;
    w->seen_calls = calls;
    if (moved) {
        w->stuck = w->suspect = false;
        return false;
    }
    int64_t cpu = worker_cpu_ns(w);
    if (!worker_runnable(w))
        w->stuck = true;
    else if (w->suspect && !w->stuck)
        w->stuck = cpu < 0 || cpu - w->seen_cpu >= STUCK_NS / 2;
    w->suspect = true;
    w->seen_cpu = cpu;
    return w->stuck;
}

/* Whether the backlog needs one more worker (lock held): it waits, no
 * worker is idle, and fewer than max_workers are able to run it. Sets
 * *able to that number. */
static bool need_worker(int64_t now, uint32_t *able)
{
    *able = 0;
    if (cth__list_empty(&svc.backlog) || !cth__list_empty(&svc.idle))
        return false;
    bool look = now - svc.last_look >= STUCK_NS;
    if (look)
        svc.last_look = now;
    for (struct cth__list_node *n = svc.workers.first; n; n = n->next)
        *able += !held_up(cth__list_entry(n, struct worker, all_link), look);
    return *able < svc.max_workers;
}

/* ---- the service thread ----------------------------------------------------------------------- */

/* Whether a worker will take the next due timer itself (lock held): none is
 * idle (worker_wait's idle ones go to sleep) and one is busy and not held
 * up, so it comes back to the heap after its call, or waits for that
 * deadline (worker_wait). */
static bool worker_keeps(void)
{
    if (!cth__list_empty(&svc.idle))
        return false;
    for (struct cth__list_node *n = svc.workers.first; n; n = n->next)
        if (!held_up(cth__list_entry(n, struct worker, all_link), false))
            return true;
    return false;
}

/* A due timer (taken off the heap) joins the backlog; an idle worker, if
 * any, is woken to take it (lock held). */
static void dispatch(struct cth_timer *t)
{
    cth__list_push_back(&svc.backlog, &t->link);
    struct worker *w = idle_pop();
    if (w)
        wake_worker(w);
}

static void *service_main(void *arg)
{
    CTH__UNUSED(arg);
    cth__os_precise_timeouts_self(); /* wake at the deadline, not 50 us after */
    svc_lock();
    while (!svc.stop) {
        int64_t now = cth__now_ns();
        while (svc.n && slot(0)->deadline <= now)
            dispatch(fire_earliest());
        uint32_t able;
        if (need_worker(now, &able)) {
            if (now >= svc.spawn_retry && spawn_worker() == 0)
                continue;
            svc.spawn_retry = now + STUCK_NS; /* the OS refuses: not in a tight loop */
            /* No worker to be had while none can run the backlog: run one
             * here, so that nothing is lost. */
            if (able == 0 && !cth__list_empty(&svc.backlog)) {
                run_timer(backlog_pop(), NULL);
                continue;
            }
        }
        int64_t until = svc.n ? slot(0)->deadline : CTH__NO_DEADLINE, slack = 0;
        if (!cth__list_empty(&svc.backlog) && cth__list_empty(&svc.idle) && until > now + STUCK_NS)
            until = now + STUCK_NS; /* the watchdog's next look */
        else if (until - now <= KEEP_NS && worker_keeps())
            slack = KEEP_SLACK_NS; /* then it looks, in case the worker is held up */
        until += slack;
        svc.sleep_until = until;
        svc.sleep_slack = slack;
        uint32_t seen = atomic_load_explicit(&svc.wake, memory_order_acquire);
        svc_unlock();
        if (until - now > SERVICE_SPIN_NS) {
            cth__futex_wait(&svc.wake, seen, until);
        } else { /* microseconds away: a sleep would cost more and wake late */
            while (cth__now_ns() < until &&
                   atomic_load_explicit(&svc.wake, memory_order_acquire) == seen)
                cth__cpu_relax();
        }
        svc_lock();
        svc.sleep_until = INT64_MIN;
        svc.sleep_slack = 0;
    }
    svc_unlock();
    return NULL;
}

/* Cancel every timer not yet running: pending in the heap or due in the
 * backlog (lock held). */
static void cancel_all_waiting(void)
{
    while (svc.n) { /* the last entry: no sifting, O(1) each */
        struct cth_timer *t = slot(svc.n - 1)->timer;
        heap_remove(t);
        finish(t, CTH_TIMER_CANCELLED);
    }
    struct cth_timer *t;
    while ((t = backlog_pop()))
        finish(t, CTH_TIMER_CANCELLED);
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
    wake_service();
    struct worker *w;
    while ((w = idle_pop()))
        wake_worker(w);
    heap_free();
    cth_thread_t *th = svc.thread;
    svc.thread = NULL;
    svc_unlock();
    cth_thread_free(th); /* detached; it exits on svc.stop */
}

/* fork(): the service's lock is held across it, so the child finds the
 * service consistent. In the child only the forking thread survives: the
 * service thread and the workers are gone. Pending and due timers end
 * cancelled (as a Python child's Timer threads are gone), and so do timers
 * whose function was running in another thread (it never returns there), so
 * joiners are released; the gone workers' records are freed; the service
 * restarts on the next start. A timer whose function is the one that forked
 * runs on, in its worker, which ends after the call: it is the child's main
 * thread now, and keeps the timer's name. */
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
        if (t == cth__timer_running) {
            cth__list_push_back(&svc.running, &t->link); /* ours: it goes on here */
        } else {
            finish(t, CTH_TIMER_CANCELLED);
        }
    }
    struct worker *w;
    while ((w = cth__list_entry(cth__list_pop_front(&svc.workers), struct worker, all_link))) {
        if (w == worker_here)
            w->orphan = true; /* ours: it ends after its call */
        else
            cth__free(w);
    }
    if (cth__timer_running)
        cth__thread_act_forget();
    cth__list_init(&svc.idle);
    atomic_store(&svc.calls_begun, svc.next_ticket); /* the gone workers' turns */
    svc.sleep_slack = 0;
    svc.keeping = false;
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
        cth__thread_set_acting_namer(timer_name);
        cth__runtime_on_fork(service_fork_prepare, service_fork_parent, service_after_fork_child);
        int cpus = cth__os_cpu_count(); /* the service thread takes one at high rates */
        svc.max_workers = cpus > 2 ? (uint32_t)cpus - 1 : 1;
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

/* The clock plus ns, saturated below CTH__NO_DEADLINE. */
static int64_t deadline_in(int64_t ns)
{
    int64_t now = cth__now_ns();
    return ns >= CTH__NO_DEADLINE - now ? CTH__NO_DEADLINE - 1 : now + ns;
}

int cth__timer_schedule(struct cth_timer *t)
{
    int64_t deadline = deadline_in(t->interval_ns);
    svc_lock();
    /* Room first: growing the heap releases the lock, and nothing below
     * does. Shutdown's own code is reported below. */
    int room = heap_reserve();
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
    } else if ((err = room) != 0 || (err = service_ensure()) != 0) {
        if (counted)
            cth__shutdown_release();
    } else {
        t->started = true;
        /* The service's reference beside the caller's, the only one before
         * the first start (and it is in this call): a store, no RMW. */
        atomic_store_explicit(&t->refs, 2, memory_order_relaxed);
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
        end_timer(t, CTH_TIMER_CANCELLED);
        /* A pending timer has two references, the service's and the
         * caller's, which this caller holds throughout the call (a borrowed
         * handle, cth_timer_current's, is of a running timer): the service's
         * goes with a store, no read-modify-write. */
        atomic_store_explicit(&t->refs, 1, memory_order_relaxed);
    } else {
        /* Not started (start sees the flag), or fired (running, or due in
         * the backlog): a periodic timer is not called again. */
        t->cancel_requested = true;
    }
    svc_unlock();
}
