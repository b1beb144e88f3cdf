/*
 * simple_queue.c - SimpleQueue: an unbounded FIFO whose put is lock-free,
 * malloc-free and async-signal-safe.
 *
 * State. Items live in a singly linked chain of segments of SLOTS slots,
 * each segment a run of pages from the kernel (cth__page_alloc: mmap, no
 * library lock). Producers share `tail`; a put claims slot i of the tail
 * segment with one fetch-and-add on its `claimed` counter, stores the item
 * and publishes it with a store to the slot's `ready` flag. The producer
 * that overflows a segment links a new one (from the one-entry `spare`
 * cache, else mmap) with a compare-and-swap on `next` (losers give theirs
 * back) and helps move `tail` forward. No producer ever waits for another.
 *
 * Getters take turns on `get_lock` (a cth_lock_t); the holder owns `head`,
 * `head_idx` and `oldest`, and reads slots in order. A claimed slot that is
 * not ready yet ends the scan: the get waits (or reports empty) until its
 * producer publishes it.
 *
 * Sleeping. The getter holding get_lock that finds nothing spins briefly
 * (a put on a running thread usually lands within a microsecond, and
 * waking a sleeper costs 10-25 us), then sets `sleeping`, reads the `seq`
 * word, re-checks, and sleeps on `seq`. A put reads `sleeping` after
 * publishing; only the put that swaps it from 1 to 0 bumps `seq` and wakes
 * the getter, so one sleep costs at most one wake-up system call, however
 * many puts arrive before the getter runs again. The store and load on each
 * side are sequentially consistent, so one side always sees the other
 * (Dekker): no lost wake-up, and no system call on a put when nobody sleeps.
 * Only get_lock's holder ever sleeps on `seq`.
 *
 * Reclamation. Segments the getter has moved past ([oldest, head)) are
 * retired; a stale producer may still hold a pointer to one, having read
 * `tail` before it moved on. Each put counts itself in `active` for its
 * whole duration; the getter reads `tail` and then `active`, and only when
 * active is 0 does it recycle the retired segments that precede that tail
 * (any put that starts later reads a tail at least as new). Recycled
 * segments are zeroed and kept as the spare, or unmapped.
 */
#include <stddef.h>
#include <string.h>

#include "cthreading/queue.h"
#include "internal.h"

#define SEG_BYTES 16384
#define SPIN_TRIES 200

struct slot {
    void *item;
    _Atomic uint32_t ready;
};

struct seg {
    _Atomic(struct seg *) next;
    _Atomic uint32_t claimed;
    struct slot slots[];
};

#define SLOTS ((uint32_t)((SEG_BYTES - offsetof(struct seg, slots)) / sizeof(struct slot)))

struct cth_simple_queue {
    /* shared with producers */
    _Atomic(struct seg *) tail;
    _Atomic(struct seg *) spare;
    _Atomic uint32_t active;
    _Atomic uint32_t sleeping; /* get_lock's holder sleeps (or is about to) on seq */
    _Atomic uint32_t seq;
    _Atomic long size;
    /* getters' side, guarded by get_lock */
    cth_lock_t get_lock;
    struct seg *head, *oldest;
    uint32_t head_idx;
    void (*free_item)(void *);
};

/* ---- segments ----------------------------------------------------------------- */

/* A zeroed segment: the spare if there is one, else fresh pages. */
static struct seg *seg_get(cth_simple_queue_t *q)
{
    struct seg *s = atomic_exchange_explicit(&q->spare, NULL, memory_order_acquire);
    return s ? s : cth__page_alloc(SEG_BYTES);
}

/* Keep a zeroed, unreachable segment as the spare, or unmap it. */
static void seg_release(cth_simple_queue_t *q, struct seg *s)
{
    struct seg *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&q->spare, &expected, s, memory_order_release,
                                                 memory_order_relaxed))
        cth__page_free(s, SEG_BYTES);
}

/* ---- create / free ------------------------------------------------------------- */

CTH_API int cth_simple_queue_create(cth_simple_queue_t **queue, const cth_simple_queue_opts *opts)
{
    if (!queue)
        return CTH_EINVAL;
    cth_simple_queue_t *q = cth__calloc(1, sizeof *q);
    if (!q)
        return CTH_ENOMEM;
    struct seg *s = cth__page_alloc(SEG_BYTES);
    if (!s) {
        cth__free(q);
        return CTH_ENOMEM;
    }
    atomic_init(&q->tail, s);
    q->head = q->oldest = s;
    q->free_item = opts ? opts->free_item : NULL;
    *queue = q;
    return 0;
}

CTH_API void cth_simple_queue_free(cth_simple_queue_t *queue)
{
    if (!queue)
        return;
    void *item;
    while (cth_simple_queue_get(queue, &item, 0) == 0)
        if (queue->free_item)
            queue->free_item(item);
    for (struct seg *s = queue->oldest, *next; s; s = next) {
        next = atomic_load(&s->next);
        cth__page_free(s, SEG_BYTES);
    }
    cth__page_free(atomic_load(&queue->spare), SEG_BYTES);
    cth__free(queue);
}

/* ---- put ---------------------------------------------------------------------------- */

CTH_API int cth_simple_queue_put(cth_simple_queue_t *queue, void *item)
{
    if (!queue)
        return CTH_EINVAL;
    cth_simple_queue_t *q = queue;
    atomic_fetch_add(&q->active, 1);
    for (;;) {
        struct seg *s = atomic_load(&q->tail);
        uint32_t i = atomic_fetch_add_explicit(&s->claimed, 1, memory_order_relaxed);
        if (i < SLOTS) {
            s->slots[i].item = item;
            atomic_store(&s->slots[i].ready, 1);
            break;
        }
        struct seg *next = atomic_load_explicit(&s->next, memory_order_acquire);
        if (!next) {
            struct seg *fresh = seg_get(q);
            if (!fresh) {
                atomic_fetch_sub(&q->active, 1);
                return CTH_ENOMEM;
            }
            if (atomic_compare_exchange_strong_explicit(&s->next, &next, fresh,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire))
                next = fresh;
            else
                seg_release(q, fresh); /* another put linked one first */
        }
        atomic_compare_exchange_strong(&q->tail, &s, next);
    }
    atomic_fetch_sub(&q->active, 1);
    atomic_fetch_add_explicit(&q->size, 1, memory_order_relaxed);
    if (atomic_load(&q->sleeping) && atomic_exchange(&q->sleeping, 0)) {
        atomic_fetch_add(&q->seq, 1);
        cth__futex_wake(&q->seq, 1);
    }
    return 0;
}

/* ---- get ---------------------------------------------------------------------------- */

/* Take the next published item (get_lock held). */
static bool take(cth_simple_queue_t *q, void **item)
{
    for (;;) {
        if (q->head_idx == SLOTS) {
            struct seg *next = atomic_load_explicit(&q->head->next, memory_order_acquire);
            if (!next)
                return false;
            q->head = next;
            q->head_idx = 0;
            continue;
        }
        struct slot *sl = &q->head->slots[q->head_idx];
        if (!atomic_load(&sl->ready))
            return false;
        *item = sl->item;
        q->head_idx++;
        atomic_fetch_sub_explicit(&q->size, 1, memory_order_relaxed);
        return true;
    }
}

/* Recycle the retired segments no put can still reach (get_lock held). */
static void reclaim(cth_simple_queue_t *q)
{
    if (q->oldest == q->head)
        return;
    struct seg *tail = atomic_load(&q->tail);
    if (atomic_load(&q->active) != 0)
        return;
    while (q->oldest != q->head && q->oldest != tail) {
        struct seg *s = q->oldest;
        q->oldest = atomic_load_explicit(&s->next, memory_order_relaxed);
        memset(s, 0, SEG_BYTES);
        seg_release(q, s);
    }
}

/* Acquire get_lock within what is left of the deadline. */
static int lock_until(cth_lock_t *lock, double timeout, int64_t deadline)
{
    if (timeout > 0 && deadline != CTH__NO_DEADLINE) {
        int64_t left = deadline - cth__now_ns();
        timeout = left > 0 ? (double)left / 1e9 : 0;
    }
    return cth_lock_acquire(lock, timeout);
}

CTH_API int cth_simple_queue_get(cth_simple_queue_t *queue, void **item, double timeout)
{
    if (!queue || !item)
        return CTH_EINVAL;
    cth_simple_queue_t *q = queue;
    int64_t deadline;
    int r = cth__timeout_to_deadline(timeout, &deadline);
    if (r)
        return r;
    r = lock_until(&q->get_lock, timeout, deadline);
    if (r)
        return r == CTH_EAGAIN && timeout > 0 ? CTH_ETIMEDOUT : r;
    for (;;) {
        if (take(q, item)) {
            r = 0;
            break;
        }
        if (timeout == 0) {
            r = CTH_EAGAIN;
            break;
        }
        bool got = false;
        for (int i = 0; i < SPIN_TRIES && !got; i++) {
            cth__cpu_relax();
            got = take(q, item);
        }
        if (!got) {
            atomic_store(&q->sleeping, 1);
            uint32_t seq = atomic_load(&q->seq);
            got = take(q, item);
            r = got ? 0 : cth__futex_wait(&q->seq, seq, deadline);
            atomic_store(&q->sleeping, 0);
        }
        if (got)
            break;
        if (r != 0) {
            if (take(q, item))
                r = 0;
            break;
        }
    }
    reclaim(q);
    cth_lock_release(&q->get_lock);
    return r;
}

CTH_API int cth_simple_queue_get_nowait(cth_simple_queue_t *queue, void **item)
{
    return cth_simple_queue_get(queue, item, 0);
}

CTH_API long cth_simple_queue_qsize(cth_simple_queue_t *queue)
{
    if (!queue)
        return CTH_EINVAL;
    long n = atomic_load_explicit(&queue->size, memory_order_relaxed);
    return n > 0 ? n : 0;
}

CTH_API bool cth_simple_queue_empty(cth_simple_queue_t *queue)
{
    return !queue || cth_simple_queue_qsize(queue) == 0;
}
