/* SPDX-License-Identifier: MIT */
/*
 * queue.c - Queue, LifoQueue and PriorityQueue: one type with a kind.
 *
 * Two halves. Every kind has the slow path: one lock guarding maxsize, the
 * shutdown flag and two FIFO lists of parked waiters, getters (waiting for
 * an item) and putters (waiting for a slot), each living on its thread's
 * stack. LifoQueue and PriorityQueue keep their items under that lock too
 * (an array used as a stack, or a binary heap of (item, sequence) pairs, the
 * sequence making it stable) and always take it. A FIFO Queue keeps its
 * items in a ring its puts and gets reach without the lock (the fast path);
 * they take the lock only to park, to grow the ring, or when a flag sends
 * them there.
 *
 * The ring, its flags (bits of its counters that send puts or gets to
 * the lock) and its growing are queue_ring.h's; this file keeps the lock's
 * side: it sets the flags while waiters are parked or after a shutdown, and
 * clears them when it releases the lock.
 *
 * Direct hand-off (as Go's channels do). A put under the lock gives its
 * items to parked getters first (the ring is empty then), and a get under
 * the lock moves the oldest parked putters' items into the slots it freed.
 * The thread that hands off marks the waiter done with one atomic exchange;
 * only if the waiter had already gone to sleep on its futex word is it
 * woken, with one system call, made after the lock is released. Each
 * blocked consumer is woken exactly once per item it can take. Before
 * parking, a blocked put or get retries the ring, and a parked waiter
 * watches its word, for a number of iterations that adapts (see spin_*): so
 * hand-offs between running threads cost no system call, while threads
 * that outnumber the cores do not spin behind one that is not running. A
 * waiter whose timeout expires (or that is interrupted) takes the lock
 * again: if a hand-off reached it first, it keeps that result; else it
 * unlinks itself.
 *
 * Fork. In a fork child the parked waiters are threads that no longer exist,
 * their records on stacks the child's new threads may reuse. The queue keeps
 * the fork generation (lock.h) its waiter lists are of; the first time
 * the lock is taken in a newer one, the lists are emptied without being read,
 * as if nobody waited (and qunlock then clears the ring's flags): nothing is
 * handed to a dead getter, no dead putter's item gets in.
 *
 * Tasks. No counter is added to the fast path: the puts are tail plus
 * extra_puts (items handed straight to parked getters, and every put of the
 * other kinds), and task_done counts in done, on its own line; the
 * unfinished count is the difference. Join waiters sleep on a sequence word
 * bumped when it reaches 0 (or on an immediate shutdown).
 *
 * Test hooks: CTH__Q_MIN_CAPACITY (below) and Q_PREEMPT (queue_ring.h) are
 * plain here; tests/stress/stress_queue.c compiles this file and
 * queue_ring.c with a two-cell first ring and preemption points, to make
 * growing and the claim-to-write windows common.
 */
#include <limits.h>
#include <string.h>

#include "alloc.h"
#include "cthreading/queue.h"
#include "deadline.h"
#include "list.h"
#include "lock.h"
#include "queue_ring.h"
#include "wait.h"

#define SPIN_MIN 8 /* the spin budgets' range (pause instructions, see spin_*) */
#define PARK_SPIN_MIN 64
#define SPIN_MAX 128
/* White-box test hook: a test that #includes this file may shrink the
 * first ring. */
#ifndef CTH__Q_MIN_CAPACITY
#define CTH__Q_MIN_CAPACITY 16
#endif
#define MIN_CAPACITY CTH__Q_MIN_CAPACITY
#define PREALLOC_MAX 1024
#define MAX_WAKEUPS 16

enum { W_WAITING = 0, W_SLEEPING = 1, W_DONE = 2 };

struct waiter {
    struct cth__list_node link; /* on getters or putters, under the lock */
    _Atomic uint32_t state;
    int result;   /* 0 or a negative code, written before state = W_DONE */
    void **items; /* a getter's destination or a putter's source */
    int n;        /* how many it wants or offers */
    int done;     /* how many were moved */
};

struct hent {
    void *item;
    uint64_t seq;
};

struct cth_queue {
    /* Read-mostly: set at creation, or changed under the lock. */
    cth_queue_kind_t kind;
    cth_compare_fn compare;
    cth_free_fn free_item;
    void *mem; /* the allocation this struct is aligned in */

    /* FIFO: the ring, on lines of its own (queue_ring.h). */
    struct fifo fifo;

    /* task_done's line. */
    _Alignas(LINE) _Atomic uint64_t done; /* task_done calls, plus items an
                                             immediate shutdown removed */

    /* The slow path: guarded by the lock but for the atomics. */
    _Alignas(LINE) cth_lock_t lock;
    bool shutdown, drained; /* drained: an immediate shutdown emptied the ring */
    long maxsize;
    struct cth__list getters, putters; /* parked waiters, oldest first */
    uint32_t fork_gen;                 /* the generation of their waiters */
    _Atomic uint64_t extra_puts;
    _Atomic uint32_t joiners, join_seq;
    _Atomic uint32_t spin, park_spin; /* spin budgets (spin_*) */
    size_t count, cap;                /* LIFO, PRIORITY */
    void **stack;                     /* LIFO */
    struct hent *heap;                /* PRIORITY */
    uint64_t seq;                     /* next PriorityQueue sequence number */
};

/* Futex words to wake once the lock is released. */
struct wakeups {
    _Atomic uint32_t *addr[MAX_WAKEUPS];
    int n;
};

static void wakeups_flush(struct wakeups *wk)
{
    for (int i = 0; i < wk->n; i++)
        cth__futex_wake(wk->addr[i], 1);
    wk->n = 0;
}

/* ---- the lock ----------------------------------------------------------------- */

/* An interruption of the main thread that arrives while it waits for the
 * lock stays pending for its next real wait. */
static void qlock(cth_queue_t *q)
{
    cth__lock_acquire_keeping_interrupt(&q->lock);
    uint32_t gen = cth__fork_gen();
    if (__builtin_expect(q->fork_gen != gen, 0)) {
        q->fork_gen = gen; /* the waiters are the parent's threads: forget them */
        cth__list_init(&q->getters);
        cth__list_init(&q->putters);
    }
}

/* Release the lock, first clearing the flags nothing needs any more. */
static void qunlock(cth_queue_t *q)
{
    if (q->kind == CTH_QUEUE_FIFO)
        cth__fifo_unflag(&q->fifo, !q->shutdown && cth__list_empty(&q->getters),
                         !q->drained && cth__list_empty(&q->putters));
    cth_lock_release(&q->lock);
}

/* ---- spinning ------------------------------------------------------------- */

/* How long a blocked put or get spins, retrying the ring (budget spin), and
 * a parked waiter, watching its word (budget park_spin), before sleeping:
 * budgets per queue, each doubling when a spin succeeds late in it and
 * halving when one fails, down to a floor. A budget stays high while the
 * threads on both sides run (a hand-off then costs no system call) and
 * drops when the other side is not running (more threads than cores, a
 * busy machine), where spinning only takes the processor from the thread
 * being waited for. A parked waiter keeps a higher floor: besides catching
 * hand-offs, a short spin before sleeping keeps the scheduler (Linux's
 * EEVDF) from running it ahead of the thread that woke it, which can then
 * go on filling (emptying) the queue instead of sleeping again. */
static uint32_t spin_budget(_Atomic uint32_t *budget)
{
    return atomic_load_explicit(budget, memory_order_relaxed);
}

static void spin_paid(_Atomic uint32_t *budget, uint32_t was, uint32_t used)
{
    if (used > was / 2 && was < SPIN_MAX)
        atomic_store_explicit(budget, was * 2, memory_order_relaxed);
}

static void spin_wasted(_Atomic uint32_t *budget, uint32_t was, uint32_t least)
{
    if (was > least)
        atomic_store_explicit(budget, was / 2, memory_order_relaxed);
}

/* ---- waiters -------------------------------------------------------------- */

/* The oldest waiter of l, or NULL. */
static struct waiter *oldest(struct cth__list *l)
{
    return cth__list_entry(l->first, struct waiter, link);
}

/* Finish a parked waiter (lock held): unlink it, publish its result, and
 * note its word for a wake-up if it sleeps. It may return at once. */
static void complete(struct cth__list *l, struct waiter *w, int result, struct wakeups *wk)
{
    cth__list_remove(l, &w->link);
    w->result = result;
    uint32_t prev = atomic_exchange_explicit(&w->state, W_DONE, memory_order_acq_rel);
    if (prev == W_SLEEPING) {
        if (wk->n == MAX_WAKEUPS)
            wakeups_flush(wk);
        wk->addr[wk->n++] = &w->state;
    }
}

static int waiter_result(struct waiter *w)
{
    return w->result < 0 ? w->result : w->done;
}

/* Wait, the waiter already linked into l and the lock released, until a
 * hand-off completes it or the deadline passes. Returns what the hand-off
 * published (a count or a code), or CTH_ETIMEDOUT / CTH_EINTR. */
static int waiter_wait(cth_queue_t *q, struct cth__list *l, struct waiter *w, int64_t deadline)
{
    uint32_t budget = spin_budget(&q->park_spin);
    for (uint32_t i = 0; i < budget; i++) {
        if (atomic_load_explicit(&w->state, memory_order_acquire) == W_DONE) {
            spin_paid(&q->park_spin, budget, i);
            return waiter_result(w);
        }
        cth__cpu_relax();
    }
    spin_wasted(&q->park_spin, budget, PARK_SPIN_MIN);
    uint32_t expected = W_WAITING;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &expected, W_SLEEPING,
                                                 memory_order_acquire, memory_order_acquire))
        return waiter_result(w); /* completed meanwhile */
    int r;
    for (;;) {
        r = cth__futex_wait(&w->state, W_SLEEPING, deadline);
        if (atomic_load_explicit(&w->state, memory_order_acquire) == W_DONE)
            return waiter_result(w);
        if (r != 0)
            break;
    }
    qlock(q);
    if (atomic_load_explicit(&w->state, memory_order_acquire) != W_DONE) {
        cth__list_remove(l, &w->link);
        qunlock(q);
        return r;
    }
    qunlock(q);
    return waiter_result(w);
}

/* ---- storage (lock held) ---------------------------------------------------- */

static int before(const cth_queue_t *q, const struct hent *a, const struct hent *b)
{
    int c = q->compare(a->item, b->item);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

/* LIFO, PRIORITY: make room for k more items. 0 or CTH_ENOMEM (nothing
 * changed). */
static int store_reserve(cth_queue_t *q, size_t k)
{
    if (q->count + k <= q->cap)
        return 0;
    size_t cap = q->cap ? q->cap : MIN_CAPACITY;
    while (cap < q->count + k)
        cap *= 2;
    if (q->kind == CTH_QUEUE_PRIORITY) {
        struct hent *h = cth__realloc(q->heap, cap * sizeof *h);
        if (!h)
            return CTH_ENOMEM;
        q->heap = h;
    } else {
        void **s = cth__realloc(q->stack, cap * sizeof *s);
        if (!s)
            return CTH_ENOMEM;
        q->stack = s;
    }
    q->cap = cap;
    return 0;
}

static void heap_push(cth_queue_t *q, void *item)
{
    struct hent e = {item, q->seq++};
    size_t i = q->count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(q, &e, &q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = e;
}

static void *heap_pop(cth_queue_t *q)
{
    void *item = q->heap[0].item;
    struct hent last = q->heap[--q->count];
    size_t i = 0, n = q->count;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(q, &q->heap[c + 1], &q->heap[c]))
            c++;
        if (!before(q, &q->heap[c], &last))
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    if (n > 0)
        q->heap[i] = last;
    return item;
}

static size_t store_count(cth_queue_t *q)
{
    return q->kind == CTH_QUEUE_FIFO ? (size_t)cth__fifo_count(&q->fifo) : q->count;
}

/* Store up to n items, as many as maxsize and memory allow: how many, or
 * CTH_ENOMEM when none could be stored though there was room. */
static int store_push(cth_queue_t *q, void *const *items, int n)
{
    if (q->kind == CTH_QUEUE_FIFO)
        return cth__fifo_push(&q->fifo, items, n, q->maxsize);
    size_t k = (size_t)n;
    if (q->maxsize > 0)
        k = q->count >= (size_t)q->maxsize ? 0 : (size_t)q->maxsize - q->count;
    if (k > (size_t)n)
        k = (size_t)n;
    if (k && store_reserve(q, k) != 0) {
        k = q->cap - q->count < k ? q->cap - q->count : k;
        if (k == 0)
            return CTH_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        if (q->kind == CTH_QUEUE_PRIORITY)
            heap_push(q, items[i]);
        else
            q->stack[q->count++] = items[i];
    }
    atomic_fetch_add_explicit(&q->extra_puts, k, memory_order_relaxed);
    return (int)k;
}

/* Take up to n items, in the order gets return them: how many (0: empty). */
static int store_pop(cth_queue_t *q, void **items, int n)
{
    if (q->kind == CTH_QUEUE_FIFO)
        return cth__fifo_pop(&q->fifo, items, n);
    int k = 0;
    while (k < n && q->count > 0)
        items[k++] = q->kind == CTH_QUEUE_PRIORITY ? heap_pop(q) : q->stack[--q->count];
    return k;
}

/* Move parked putters' items into free slots, oldest putter first. Never
 * fails: when the storage cannot grow, only what fits now moves. */
static void refill(cth_queue_t *q, struct wakeups *wk)
{
    struct waiter *w;
    while ((w = oldest(&q->putters))) {
        int k = store_push(q, w->items, w->n);
        if (k <= 0)
            return;
        w->done = k;
        complete(&q->putters, w, 0, wk);
    }
}

/* Put up to n items (lock held): to parked getters first (the storage is
 * empty then), then into the free slots. Returns how many, or CTH_ENOMEM
 * when none could be stored. */
static int offer(cth_queue_t *q, void *const *items, int n, struct wakeups *wk)
{
    int i = 0;
    struct waiter *w;
    while (i < n && (w = oldest(&q->getters))) {
        int k = n - i < w->n ? n - i : w->n;
        memcpy(w->items, items + i, (size_t)k * sizeof *items);
        w->done = k;
        i += k;
        atomic_fetch_add_explicit(&q->extra_puts, (uint64_t)k, memory_order_relaxed);
        complete(&q->getters, w, 0, wk);
    }
    if (i == n)
        return i;
    int r = store_push(q, items + i, n - i);
    return r < 0 ? (i ? i : r) : i + r;
}

/* ---- create / free ------------------------------------------------------------ */

/* The public size_t maxsize as the lock-guarded long (0: unbounded). */
static long maxsize_in(size_t maxsize)
{
    return maxsize > LONG_MAX ? LONG_MAX : (long)maxsize;
}

/* The public size_t n of put_many/get_many as the internal int count. */
static int count_in(size_t n)
{
    return n > INT_MAX ? INT_MAX : (int)n;
}

CTH_API int cth_queue_create(cth_queue_t **queue, size_t maxsize_arg, const cth_queue_opts_t *opts)
{
    static const cth_queue_opts_t defaults;
    long maxsize = maxsize_in(maxsize_arg);
    if (!queue)
        return CTH_EINVAL;
    if (!opts)
        opts = &defaults;
    if ((unsigned)opts->kind > CTH_QUEUE_PRIORITY ||
        (opts->kind == CTH_QUEUE_PRIORITY && !opts->compare))
        return CTH_EINVAL;
    void *mem = cth__calloc(1, sizeof(cth_queue_t) + LINE);
    if (!mem)
        return CTH_ENOMEM;
    cth_queue_t *q = (cth_queue_t *)(((uintptr_t)mem + LINE - 1) & ~(uintptr_t)(LINE - 1));
    q->mem = mem;
    q->kind = opts->kind;
    q->maxsize = maxsize;
    q->compare = opts->compare;
    q->free_item = opts->free_item;
    q->fork_gen = cth__fork_gen();
    atomic_store_explicit(&q->spin, SPIN_MAX / 4, memory_order_relaxed);
    atomic_store_explicit(&q->park_spin, SPIN_MAX / 2, memory_order_relaxed);
    size_t cap = MIN_CAPACITY;
    while (maxsize > 0 && cap < (size_t)maxsize && cap < PREALLOC_MAX)
        cap *= 2;
    if (q->kind == CTH_QUEUE_FIFO ? cth__fifo_init(&q->fifo, cap, maxsize) != 0
                                  : store_reserve(q, cap) != 0) {
        cth__free(mem);
        return CTH_ENOMEM;
    }
    *queue = q;
    return 0;
}

/* Hand an item the queue drops to the free function, if there is one. */
static void drop_item(const cth_queue_t *q, void *item)
{
    if (q->free_item)
        q->free_item(item);
}

CTH_API void cth_queue_free(cth_queue_t *queue)
{
    if (!queue)
        return;
    void *item;
    while (store_pop(queue, &item, 1) > 0)
        drop_item(queue, item);
    if (queue->kind == CTH_QUEUE_FIFO)
        cth__fifo_destroy(&queue->fifo);
    cth__free(queue->stack);
    cth__free(queue->heap);
    cth__free(queue->mem);
}

/* ---- put / get ------------------------------------------------------------------ */

static int put_locked(cth_queue_t *q, void *const *items, int n, double timeout)
{
    qlock(q);
    if (q->shutdown) {
        qunlock(q);
        return CTH_ESHUTDOWN;
    }
    int r = cth__check_timeout(timeout);
    struct wakeups wk = {.n = 0};
    while (r == 0 && n > 0) {
        r = offer(q, items, n, &wk);
        if (r != 0) {
            break;
        } else if (timeout == 0) {
            r = CTH_EAGAIN;
        } else if (q->kind != CTH_QUEUE_FIFO || cth__fifo_mark_full(&q->fifo, q->maxsize)) {
            struct waiter w = {.items = (void **)items, .n = n};
            int64_t deadline = cth__deadline(timeout);
            cth__list_push_back(&q->putters, &w.link);
            qunlock(q);
            wakeups_flush(&wk);
            return waiter_wait(q, &q->putters, &w, deadline);
        } /* else a get made room meanwhile: again */
    }
    qunlock(q);
    wakeups_flush(&wk);
    return r;
}

static int get_locked(cth_queue_t *q, void **items, int n, double timeout)
{
    qlock(q);
    int r = q->shutdown && store_count(q) == 0 ? CTH_ESHUTDOWN : cth__check_timeout(timeout);
    while (r == 0 && n > 0) {
        r = store_pop(q, items, n);
        if (r > 0) {
            struct wakeups wk = {.n = 0};
            refill(q, &wk);
            qunlock(q);
            wakeups_flush(&wk);
            return r;
        } else if (q->shutdown) {
            r = CTH_ESHUTDOWN; /* emptied since the check above */
        } else if (timeout == 0) {
            r = CTH_EAGAIN;
        } else if (q->kind != CTH_QUEUE_FIFO || cth__fifo_mark_empty(&q->fifo)) {
            struct waiter w = {.items = items, .n = n};
            int64_t deadline = cth__deadline(timeout);
            cth__list_push_back(&q->getters, &w.link);
            qunlock(q);
            return waiter_wait(q, &q->getters, &w, deadline);
        } /* else a put arrived meanwhile: again */
    }
    qunlock(q);
    return r;
}

/* Whether a fast put or get that failed may succeed on a retry. */
static bool retryable(int r)
{
    return r == 0 || r == CLAIM_BUSY;
}

/* A put whose first try of the ring returned r (FIFO), or any other: while
 * a blocking call finds no room, it retries the ring for the spin budget
 * before parking. Every other case, and every argument and state check, is
 * the lock's. */
static __attribute__((noinline)) int put_more(cth_queue_t *q, void *const *items, int n,
                                              double timeout, int r)
{
    uint32_t budget = retryable(r) && timeout != 0 ? spin_budget(&q->spin) : 0;
    for (uint32_t i = 1; i <= budget && retryable(r); i++) {
        cth__cpu_relax();
        if ((r = cth__fifo_put_fast(&q->fifo, items, n)) > 0)
            spin_paid(&q->spin, budget, i);
    }
    if (retryable(r) && budget)
        spin_wasted(&q->spin, budget, SPIN_MIN);
    if (r == n)
        return r;
    if (r > 0) { /* the rest: the ring may have to grow, or they do not fit */
        int more = put_locked(q, items + r, n - r, 0);
        return more > 0 ? r + more : r;
    }
    return put_locked(q, items, n, timeout);
}

static __attribute__((noinline)) int get_more(cth_queue_t *q, void **items, int n, double timeout,
                                              int r)
{
    uint32_t budget = retryable(r) && timeout != 0 ? spin_budget(&q->spin) : 0;
    /* First half of the budget: wait for a line, where the queue holds a few. */
    bool line = atomic_load_explicit(&q->fifo.maxlen, memory_order_relaxed) >=
                (uint64_t)4 * CELLS_PER_LINE;
    for (uint32_t i = 1; i <= budget && retryable(r); i++) {
        cth__cpu_relax();
        if (cth__fifo_get_ready(&q->fifo, line && i <= budget / 2) &&
            (r = cth__fifo_get_fast(&q->fifo, items, n)) > 0)
            spin_paid(&q->spin, budget, i);
    }
    if (retryable(r) && budget)
        spin_wasted(&q->spin, budget, SPIN_MIN);
    return r > 0 ? r : get_locked(q, items, n, timeout);
}

/* FIFO's first try of the ring, inline in each public call. */
static inline __attribute__((always_inline)) int queue_put(cth_queue_t *q, void *const *items,
                                                           int n, double timeout)
{
    int r = CLAIM_SLOW;
    if (q->kind == CTH_QUEUE_FIFO && n > 0 && cth__check_timeout(timeout) == 0 &&
        (r = cth__fifo_put_fast(&q->fifo, items, n)) == n)
        return r;
    return put_more(q, items, n, timeout, r);
}

static inline __attribute__((always_inline)) int queue_get(cth_queue_t *q, void **items, int n,
                                                           double timeout)
{
    int r = CLAIM_SLOW;
    if (q->kind == CTH_QUEUE_FIFO && n > 0 && cth__check_timeout(timeout) == 0) {
        if ((r = cth__fifo_get_fast(&q->fifo, items, n)) > 0)
            return r;
        if (r == 0 && timeout == 0)
            return CTH_EAGAIN; /* empty, and tail's flag says not shut down */
    }
    return get_more(q, items, n, timeout, r);
}

CTH_API int cth_queue_put(cth_queue_t *queue, void *item, double timeout)
{
    if (!queue)
        return CTH_EINVAL;
    int r = queue_put(queue, &item, 1, timeout);
    return r > 0 ? 0 : r;
}

CTH_API int cth_queue_put_nowait(cth_queue_t *queue, void *item)
{
    return cth_queue_put(queue, item, 0);
}

CTH_API int cth_queue_get(cth_queue_t *queue, void **item, double timeout)
{
    if (!queue || !item)
        return CTH_EINVAL;
    int r = queue_get(queue, item, 1, timeout);
    return r > 0 ? 0 : r;
}

CTH_API int cth_queue_get_nowait(cth_queue_t *queue, void **item)
{
    return cth_queue_get(queue, item, 0);
}

/* put_many/get_many: the internal calls return a count or a code. */
static int count_out(int r, size_t *count)
{
    *count = r > 0 ? (size_t)r : 0;
    return r > 0 ? 0 : r;
}

CTH_API int cth_queue_put_many(cth_queue_t *queue, void *const *items, size_t n, size_t *put,
                               double timeout)
{
    if (put)
        *put = 0;
    if (!queue || !put || (n > 0 && !items))
        return CTH_EINVAL;
    return count_out(queue_put(queue, items, count_in(n), timeout), put);
}

CTH_API int cth_queue_get_many(cth_queue_t *queue, void **items, size_t n, size_t *got,
                               double timeout)
{
    if (got)
        *got = 0;
    if (!queue || !got || (n > 0 && !items))
        return CTH_EINVAL;
    int want = count_in(n);
    int r = queue_get(queue, items, want, timeout);
    /* One claim on a FIFO's ring stops where the ring was outgrown; take
     * what is there beyond it without waiting, so a get_many takes every
     * item up to n that the queue holds. */
    for (int more; r > 0 && r < want && (more = queue_get(queue, items + r, want - r, 0)) > 0;)
        r += more;
    return count_out(r, got);
}

/* ---- sizes ------------------------------------------------------------------------ */

/* The queries take a const queue, as they change nothing one can see; the
 * lock they take is the queue's state all the same: they cast const away
 * (a queue is never a const object: cth_queue_create allocates it). */

CTH_API size_t cth_queue_qsize(const cth_queue_t *queue)
{
    cth_queue_t *q = (cth_queue_t *)queue;
    if (!q)
        return 0;
    if (q->kind == CTH_QUEUE_FIFO)
        return (size_t)cth__fifo_count(&q->fifo);
    qlock(q);
    size_t n = q->count;
    qunlock(q);
    return n;
}

CTH_API bool cth_queue_empty(const cth_queue_t *queue)
{
    return cth_queue_qsize(queue) == 0;
}

CTH_API bool cth_queue_full(const cth_queue_t *queue)
{
    cth_queue_t *q = (cth_queue_t *)queue;
    if (!q)
        return false;
    qlock(q);
    bool full = q->maxsize > 0 && store_count(q) >= (size_t)q->maxsize;
    qunlock(q);
    return full;
}

CTH_API size_t cth_queue_maxsize(const cth_queue_t *queue)
{
    cth_queue_t *q = (cth_queue_t *)queue;
    if (!q)
        return 0;
    qlock(q);
    long m = q->maxsize;
    qunlock(q);
    return (size_t)m;
}

CTH_API int cth_queue_set_maxsize(cth_queue_t *queue, size_t maxsize_arg)
{
    if (!queue)
        return CTH_EINVAL;
    long maxsize = maxsize_in(maxsize_arg);
    struct wakeups wk = {.n = 0};
    qlock(queue);
    queue->maxsize = maxsize;
    if (queue->kind == CTH_QUEUE_FIFO)
        cth__fifo_set_maxsize(&queue->fifo, maxsize);
    refill(queue, &wk);
    qunlock(queue);
    wakeups_flush(&wk);
    return 0;
}

/* ---- task_done / join ------------------------------------------------------------- */

static uint64_t puts_so_far(cth_queue_t *q)
{
    uint64_t ring_puts = q->kind == CTH_QUEUE_FIFO ? cth__fifo_puts(&q->fifo) : 0;
    return ring_puts + atomic_load(&q->extra_puts);
}

static uint64_t unfinished(cth_queue_t *q)
{
    uint64_t done = atomic_load(&q->done);
    return puts_so_far(q) - done;
}

/* Release every join; joiners re-check the count. */
static void release_joiners(cth_queue_t *q)
{
    if (atomic_load(&q->joiners) == 0)
        return;
    atomic_fetch_add_explicit(&q->join_seq, 1, memory_order_release);
    cth__futex_wake(&q->join_seq, INT32_MAX);
}

/* Count k tasks done, at most as many as are unfinished; how many were. */
static uint64_t count_done(cth_queue_t *q, uint64_t k, bool *now_zero)
{
    uint64_t done = atomic_load(&q->done), left;
    do {
        left = puts_so_far(q) - done;
        if (k > left)
            k = left;
        if (k == 0)
            break;
    } while (!atomic_compare_exchange_weak(&q->done, &done, done + k));
    *now_zero = k > 0 && k == left;
    return k;
}

CTH_API int cth_queue_task_done(cth_queue_t *queue)
{
    if (!queue)
        return CTH_EINVAL;
    bool zero;
    if (count_done(queue, 1, &zero) == 0)
        return CTH_EINVAL;
    if (zero)
        release_joiners(queue);
    return 0;
}

CTH_API size_t cth_queue_unfinished_tasks(const cth_queue_t *queue)
{
    return queue ? (size_t)unfinished((cth_queue_t *)queue) : 0;
}

CTH_API int cth_queue_join(cth_queue_t *queue, double timeout)
{
    if (!queue)
        return CTH_EINVAL;
    int64_t deadline;
    int r = cth__timeout_to_deadline(timeout, &deadline);
    while (r == 0 && unfinished(queue) > 0) {
        if (timeout == 0)
            return CTH_ETIMEDOUT;
        uint32_t seq = atomic_load_explicit(&queue->join_seq, memory_order_acquire);
        atomic_fetch_add(&queue->joiners, 1);
        if (unfinished(queue) > 0)
            r = cth__futex_wait(&queue->join_seq, seq, deadline);
        atomic_fetch_sub(&queue->joiners, 1);
        if (r != 0 && unfinished(queue) == 0)
            r = 0; /* done as the wait ended */
    }
    return r;
}

/* ---- shutdown ------------------------------------------------------------------------ */

CTH_API int cth_queue_shutdown(cth_queue_t *queue, bool immediate)
{
    if (!queue)
        return CTH_EINVAL;
    struct wakeups wk = {.n = 0};
    void **stack = NULL;
    struct hent *heap = NULL;
    bool fifo = false;
    uint64_t first = 0, n = 0;
    qlock(queue);
    queue->shutdown = true;
    if (queue->kind == CTH_QUEUE_FIFO)
        cth__fifo_flag_puts(&queue->fifo);
    struct waiter *w;
    while ((w = oldest(&queue->putters)))
        complete(&queue->putters, w, CTH_ESHUTDOWN, &wk);
    while ((w = oldest(&queue->getters)))
        complete(&queue->getters, w, CTH_ESHUTDOWN, &wk);
    if (immediate && queue->kind == CTH_QUEUE_FIFO) {
        /* Close the ring for good; the items are freed outside the lock
         * (nobody touches their cells now). */
        fifo = true;
        n = cth__fifo_drain(&queue->fifo, &first);
        queue->drained = true;
    } else if (immediate) {
        /* Take the storage away whole; its items are freed outside the lock. */
        stack = queue->stack;
        heap = queue->heap;
        n = queue->count;
        queue->stack = NULL;
        queue->heap = NULL;
        queue->count = queue->cap = 0;
    }
    qunlock(queue);
    wakeups_flush(&wk);
    if (immediate) {
        bool zero;
        count_done(queue, n, &zero);
        release_joiners(queue);
    }
    for (uint64_t i = 0; i < n; i++) {
        drop_item(queue, fifo   ? cth__fifo_item(&queue->fifo, first + i)
                         : heap ? heap[i].item
                                : stack[i]);
    }
    cth__free(stack);
    cth__free(heap);
    return 0;
}

CTH_API bool cth_queue_is_shutdown(const cth_queue_t *queue)
{
    cth_queue_t *q = (cth_queue_t *)queue;
    if (!q)
        return false;
    qlock(q);
    bool s = q->shutdown;
    qunlock(q);
    return s;
}
