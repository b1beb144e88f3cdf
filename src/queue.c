/*
 * queue.c - Queue, LifoQueue and PriorityQueue: one type with a kind.
 *
 * State. One lock (a futex word, see qlock) guards everything: the storage (a
 * power-of-two ring used as a FIFO or a stack, or a binary heap of
 * (item, sequence) pairs for PriorityQueue, the sequence making it stable),
 * maxsize, the shutdown flag, the unfinished-task count, and two FIFO lists
 * of parked waiters: getters (waiting for an item) and putters (waiting for
 * a slot). A waiter lives on its thread's stack.
 *
 * Direct hand-off (as Go's channels do). Invariants, with the lock held:
 * getters are parked only while the storage is empty, and putters only while
 * it is full (so a put finding a parked getter gives it the item without
 * touching the storage, and a get that frees a slot moves the oldest parked
 * putter's item in). The thread that hands off marks the waiter done with
 * one atomic exchange; only if the waiter had already gone to sleep on its
 * futex word is it woken, with one system call, made after the lock is
 * released. A waiter that was handed its item never takes the lock again:
 * each blocked consumer is woken exactly once per item it can take. Before
 * sleeping a waiter spins a bounded number of times on its word, so a
 * hand-off between two running threads costs no system call; past that it
 * parks, so oversubscribed threads never spin behind a preempted one.
 *
 * A waiter whose timeout expires (or that is interrupted) takes the lock
 * again: if a hand-off reached it first, it keeps that result; else it
 * unlinks itself. Join waiters sleep on a sequence word bumped when the
 * unfinished count reaches 0 (or on an immediate shutdown).
 */
#include <string.h>

#include "cthreading/queue.h"
#include "internal.h"

#define SPIN_TRIES 200
#define LOCK_SPIN 64
#define MIN_CAPACITY 16
#define PREALLOC_MAX 1024
#define MAX_WAKEUPS 16

enum { W_WAITING = 0, W_SLEEPING = 1, W_DONE = 2 };

struct waiter {
    struct waiter *next, *prev;
    _Atomic uint32_t state;
    int result;    /* 0 or a negative code, written before state = W_DONE */
    void **items;  /* a getter's destination or a putter's source */
    int n;         /* how many it wants or offers */
    int done;      /* how many were moved */
};

struct waiter_list {
    struct waiter *head, *tail;
};

struct hent {
    void *item;
    uint64_t seq;
};

struct cth_queue {
    _Atomic uint32_t lock; /* 0 free, 1 held, 2 held and a thread may sleep on it */
    cth_queue_kind kind;
    bool shutdown;
    long maxsize;
    size_t count, cap, head; /* head: the ring's first slot */
    void **ring;             /* FIFO, LIFO */
    struct hent *heap;       /* PRIORITY */
    uint64_t seq;            /* next PriorityQueue sequence number */
    int (*compare)(const void *, const void *);
    void (*free_item)(void *);
    struct waiter_list getters, putters;
    long unfinished;
    uint32_t joiners;
    _Atomic uint32_t join_seq;
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

/* The queue lock, held only for a few dozen instructions. Unfair on
 * purpose: a running thread takes it ahead of a sleeping one, because
 * handing it to a thread that is not running (a fair lock's hand-off) stalls
 * every other thread behind it when there are more threads than cores. It
 * waits on the platform futex, so an interruption of the main thread stays
 * pending for the caller's next real wait. */
static void qlock(cth_queue_t *q)
{
    uint32_t s = 0;
    if (atomic_compare_exchange_strong_explicit(&q->lock, &s, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    for (int i = 0; i < LOCK_SPIN; i++) {
        cth__cpu_relax();
        s = atomic_load_explicit(&q->lock, memory_order_relaxed);
        if (s == 0 && atomic_compare_exchange_weak_explicit(&q->lock, &s, 1, memory_order_acquire,
                                                            memory_order_relaxed))
            return;
    }
    while (atomic_exchange_explicit(&q->lock, 2, memory_order_acquire) != 0)
        cth__os_futex_wait(&q->lock, 2, CTH__NO_DEADLINE);
}

static void qunlock(cth_queue_t *q)
{
    if (atomic_exchange_explicit(&q->lock, 0, memory_order_release) == 2)
        cth__os_futex_wake(&q->lock, 1);
}

/* ---- waiters -------------------------------------------------------------- */

static void list_append(struct waiter_list *l, struct waiter *w)
{
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
}

static void list_remove(struct waiter_list *l, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
}

/* Finish a parked waiter (lock held): unlink it, publish its result, and
 * note its word for a wake-up if it sleeps. It may return at once. */
static void complete(struct waiter_list *l, struct waiter *w, int result, struct wakeups *wk)
{
    list_remove(l, w);
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
static int waiter_wait(cth_queue_t *q, struct waiter_list *l, struct waiter *w, int64_t deadline)
{
    for (int i = 0; i < SPIN_TRIES; i++) {
        if (atomic_load_explicit(&w->state, memory_order_acquire) == W_DONE)
            return waiter_result(w);
        cth__cpu_relax();
    }
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
        list_remove(l, w);
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

/* Make room for k more items. 0 or CTH_ENOMEM (nothing changed). */
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
        void **r = cth__malloc(cap * sizeof *r);
        if (!r)
            return CTH_ENOMEM;
        for (size_t i = 0; i < q->count; i++)
            r[i] = q->ring[(q->head + i) & (q->cap - 1)];
        cth__free(q->ring);
        q->ring = r;
        q->head = 0;
    }
    q->cap = cap;
    return 0;
}

/* Add an item; the room has been reserved. */
static void store_push(cth_queue_t *q, void *item)
{
    if (q->kind != CTH_QUEUE_PRIORITY) {
        q->ring[(q->head + q->count++) & (q->cap - 1)] = item;
        return;
    }
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

/* Remove the next item; the store is not empty. */
static void *store_pop(cth_queue_t *q)
{
    void *item;
    switch (q->kind) {
    case CTH_QUEUE_FIFO:
        item = q->ring[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        return item;
    case CTH_QUEUE_LIFO:
        return q->ring[(q->head + --q->count) & (q->cap - 1)];
    default:
        break;
    }
    item = q->heap[0].item;
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

/* Free slots under maxsize (SIZE_MAX when unbounded). */
static size_t room(const cth_queue_t *q)
{
    if (q->maxsize <= 0)
        return SIZE_MAX;
    return q->count < (size_t)q->maxsize ? (size_t)q->maxsize - q->count : 0;
}

/* Move parked putters' items into free slots, oldest putter first. Never
 * fails: when the storage cannot grow, only what fits now moves. */
static void refill(cth_queue_t *q, struct wakeups *wk)
{
    while (q->putters.head) {
        struct waiter *w = q->putters.head;
        size_t k = room(q);
        if (k > (size_t)w->n)
            k = (size_t)w->n;
        if (k && store_reserve(q, k) != 0)
            k = q->cap - q->count < k ? q->cap - q->count : k;
        if (k == 0)
            return;
        for (size_t i = 0; i < k; i++)
            store_push(q, w->items[i]);
        q->unfinished += (long)k;
        w->done = (int)k;
        complete(&q->putters, w, 0, wk);
    }
}

/* Put up to n items (lock held): to parked getters first (the storage is
 * empty then), then into the free slots. Returns how many, or CTH_ENOMEM
 * when none could be stored. */
static int offer(cth_queue_t *q, void *const *items, int n, struct wakeups *wk)
{
    int i = 0;
    while (i < n && q->getters.head) {
        struct waiter *w = q->getters.head;
        int k = n - i < w->n ? n - i : w->n;
        memcpy(w->items, items + i, (size_t)k * sizeof *items);
        w->done = k;
        i += k;
        q->unfinished += k;
        complete(&q->getters, w, 0, wk);
    }
    size_t k = room(q);
    if (k > (size_t)(n - i))
        k = (size_t)(n - i);
    if (k && store_reserve(q, k) != 0)
        return i ? i : CTH_ENOMEM;
    for (size_t j = 0; j < k; j++)
        store_push(q, items[i + (int)j]);
    q->unfinished += (long)k;
    return i + (int)k;
}

/* ---- create / free ------------------------------------------------------------ */

CTH_API int cth_queue_create(cth_queue_t **queue, long maxsize, const cth_queue_opts *opts)
{
    static const cth_queue_opts defaults;
    if (!queue)
        return CTH_EINVAL;
    if (!opts)
        opts = &defaults;
    if ((unsigned)opts->kind > CTH_QUEUE_PRIORITY ||
        (opts->kind == CTH_QUEUE_PRIORITY && !opts->compare))
        return CTH_EINVAL;
    cth_queue_t *q = cth__calloc(1, sizeof *q);
    if (!q)
        return CTH_ENOMEM;
    q->kind = opts->kind;
    q->maxsize = maxsize;
    q->compare = opts->compare;
    q->free_item = opts->free_item;
    size_t cap = MIN_CAPACITY;
    while (maxsize > 0 && cap < (size_t)maxsize && cap < PREALLOC_MAX)
        cap *= 2;
    if (store_reserve(q, cap) != 0) {
        cth__free(q);
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
    while (queue->count) {
        drop_item(queue, store_pop(queue));
    }
    cth__free(queue->ring);
    cth__free(queue->heap);
    cth__free(queue);
}

/* ---- put / get ------------------------------------------------------------------ */

static int queue_put(cth_queue_t *q, void *const *items, int n, double timeout)
{
    qlock(q);
    if (q->shutdown) {
        qunlock(q);
        return CTH_ESHUTDOWN;
    }
    int r = cth__check_timeout(timeout);
    if (r == 0 && n > 0) {
        struct wakeups wk = {.n = 0};
        r = offer(q, items, n, &wk);
        if (r == 0 && timeout != 0) {
            struct waiter w = {.items = (void **)items, .n = n};
            int64_t deadline = cth__deadline(timeout);
            list_append(&q->putters, &w);
            qunlock(q);
            wakeups_flush(&wk);
            return waiter_wait(q, &q->putters, &w, deadline);
        }
        qunlock(q);
        wakeups_flush(&wk);
        return r == 0 ? CTH_EAGAIN : r;
    }
    qunlock(q);
    return r;
}

static int queue_get(cth_queue_t *q, void **items, int n, double timeout)
{
    qlock(q);
    int r = q->shutdown && q->count == 0 ? CTH_ESHUTDOWN : cth__check_timeout(timeout);
    if (r == 0 && n > 0) {
        if (q->count > 0) {
            struct wakeups wk = {.n = 0};
            while (r < n && q->count > 0)
                items[r++] = store_pop(q);
            refill(q, &wk);
            qunlock(q);
            wakeups_flush(&wk);
            return r;
        }
        if (timeout != 0) {
            struct waiter w = {.items = items, .n = n};
            int64_t deadline = cth__deadline(timeout);
            list_append(&q->getters, &w);
            qunlock(q);
            return waiter_wait(q, &q->getters, &w, deadline);
        }
        r = CTH_EAGAIN;
    }
    qunlock(q);
    return r;
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

CTH_API int cth_queue_put_many(cth_queue_t *queue, void *const *items, int n, double timeout)
{
    if (!queue || n < 0 || (n > 0 && !items))
        return CTH_EINVAL;
    return queue_put(queue, items, n, timeout);
}

CTH_API int cth_queue_get_many(cth_queue_t *queue, void **items, int n, double timeout)
{
    if (!queue || n < 0 || (n > 0 && !items))
        return CTH_EINVAL;
    return queue_get(queue, items, n, timeout);
}

/* ---- sizes ------------------------------------------------------------------------ */

CTH_API long cth_queue_qsize(cth_queue_t *queue)
{
    if (!queue)
        return CTH_EINVAL;
    qlock(queue);
    long n = (long)queue->count;
    qunlock(queue);
    return n;
}

CTH_API bool cth_queue_empty(cth_queue_t *queue)
{
    return !queue || cth_queue_qsize(queue) == 0;
}

CTH_API bool cth_queue_full(cth_queue_t *queue)
{
    if (!queue)
        return false;
    qlock(queue);
    bool full = queue->maxsize > 0 && queue->count >= (size_t)queue->maxsize;
    qunlock(queue);
    return full;
}

CTH_API long cth_queue_maxsize(cth_queue_t *queue)
{
    if (!queue)
        return 0;
    qlock(queue);
    long m = queue->maxsize;
    qunlock(queue);
    return m;
}

CTH_API int cth_queue_set_maxsize(cth_queue_t *queue, long maxsize)
{
    if (!queue)
        return CTH_EINVAL;
    struct wakeups wk = {.n = 0};
    qlock(queue);
    queue->maxsize = maxsize;
    refill(queue, &wk);
    qunlock(queue);
    wakeups_flush(&wk);
    return 0;
}

/* ---- task_done / join ------------------------------------------------------------- */

/* Release every join (lock held); returns whether a wake-up is due. */
static bool release_joiners(cth_queue_t *q)
{
    if (q->joiners == 0)
        return false;
    atomic_fetch_add_explicit(&q->join_seq, 1, memory_order_release);
    return true;
}

CTH_API int cth_queue_task_done(cth_queue_t *queue)
{
    if (!queue)
        return CTH_EINVAL;
    qlock(queue);
    if (queue->unfinished <= 0) {
        qunlock(queue);
        return CTH_EINVAL;
    }
    bool wake = --queue->unfinished == 0 && release_joiners(queue);
    qunlock(queue);
    if (wake)
        cth__futex_wake(&queue->join_seq, INT32_MAX);
    return 0;
}

CTH_API long cth_queue_unfinished_tasks(cth_queue_t *queue)
{
    if (!queue)
        return 0;
    qlock(queue);
    long n = queue->unfinished;
    qunlock(queue);
    return n;
}

CTH_API int cth_queue_join(cth_queue_t *queue, double timeout)
{
    if (!queue)
        return CTH_EINVAL;
    int64_t deadline;
    int r = cth__timeout_to_deadline(timeout, &deadline);
    if (r)
        return r;
    qlock(queue);
    while (queue->unfinished > 0) {
        if (timeout == 0) {
            r = CTH_ETIMEDOUT;
            break;
        }
        uint32_t seq = atomic_load_explicit(&queue->join_seq, memory_order_acquire);
        queue->joiners++;
        qunlock(queue);
        r = cth__futex_wait(&queue->join_seq, seq, deadline);
        qlock(queue);
        queue->joiners--;
        if (r != 0 && queue->unfinished > 0)
            break;
        r = 0;
    }
    qunlock(queue);
    return r;
}

/* ---- shutdown ------------------------------------------------------------------------ */

CTH_API int cth_queue_shutdown(cth_queue_t *queue, bool immediate)
{
    if (!queue)
        return CTH_EINVAL;
    struct wakeups wk = {.n = 0};
    void **ring = NULL;
    struct hent *heap = NULL;
    size_t n = 0, head = 0, cap = 0;
    bool wake_joiners = false;
    qlock(queue);
    queue->shutdown = true;
    while (queue->putters.head)
        complete(&queue->putters, queue->putters.head, CTH_ESHUTDOWN, &wk);
    while (queue->getters.head)
        complete(&queue->getters, queue->getters.head, CTH_ESHUTDOWN, &wk);
    if (immediate) {
        /* Take the storage away whole; its items are freed outside the lock. */
        ring = queue->ring;
        heap = queue->heap;
        n = queue->count;
        head = queue->head;
        cap = queue->cap;
        queue->ring = NULL;
        queue->heap = NULL;
        queue->count = queue->cap = queue->head = 0;
        queue->unfinished = queue->unfinished > (long)n ? queue->unfinished - (long)n : 0;
        wake_joiners = release_joiners(queue);
    }
    qunlock(queue);
    wakeups_flush(&wk);
    if (wake_joiners)
        cth__futex_wake(&queue->join_seq, INT32_MAX);
    for (size_t i = 0; i < n; i++) {
        drop_item(queue, heap ? heap[i].item : ring[(head + i) & (cap - 1)]);
    }
    cth__free(ring);
    cth__free(heap);
    return 0;
}

CTH_API bool cth_queue_is_shutdown(cth_queue_t *queue)
{
    if (!queue)
        return false;
    qlock(queue);
    bool s = queue->shutdown;
    qunlock(queue);
    return s;
}
