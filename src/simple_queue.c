/* SPDX-License-Identifier: MIT */
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
 * Getters take turns on `get_lock` (a cth_lock_t), held only to take one
 * item (and recycle a bounded number of segments), never while waiting: the
 * holder owns `head`, `head_idx` and `oldest`, and reads slots in order. A
 * claimed slot that is not ready yet ends the scan: the get waits (or
 * reports empty) until its producer publishes it. So get_nowait reports
 * empty only when no published item is there, whoever else is waiting.
 *
 * Sleeping. A get that finds nothing and may wait takes `sleep_lock`, the
 * turn to wait (the other blocking getters wait for that lock, within their
 * deadline); its holder spins briefly (a put on a running thread usually
 * lands within a microsecond, and waking a sleeper costs 10-25 us), then
 * reads the `seq` word, sets `sleeping`, re-checks, and sleeps on `seq`. A
 * put reads `sleeping` after publishing; only the put that swaps it from 1
 * to 0 bumps `seq` and wakes the getter, so one sleep costs at most one
 * wake-up system call. Invariants:
 * (1) the put's publish (ready store, and the seq_cst CAS that linked a new
 * segment) then read of `sleeping`, and the getter's store of `sleeping`
 * then re-check (seq_cst loads of ready and next), are all seq_cst, so one
 * side always sees the other (Dekker); (2) every clear of `sleeping` by a
 * put is followed by a bump of `seq`, and the getter reads `seq` BEFORE it
 * sets `sleeping`, so a put that clears this sleep's flag always changes
 * `seq` from the value the getter waits on. Without (2) a put whose item is
 * not at the head (an earlier slot still being written) could clear the
 * flag and bump seq before the getter read it; the getter then slept, and
 * the put of the head item, finding the flag clear, woke nobody.
 * Only sleep_lock's holder ever sleeps on `seq`, and it clears `sleeping`
 * before it lets go of sleep_lock. A get_nowait may take the item a put
 * woke the sleeper for: the sleeper then finds nothing and sleeps again.
 *
 * Reclamation. Segments the getter has moved past ([oldest, head)) are
 * retired; a stale producer may still hold a pointer to one, having read
 * `tail` before it moved on. Each put counts itself in `active` from before
 * it reads `tail` to after its last use of a segment; the getter reads
 * `tail` and then `active` (both seq_cst), and only when active is 0 does
 * it recycle retired segments before that tail: a put counted later reads
 * a tail at least as new, tail only moves forward along `next`, so it
 * cannot reach them (no ABA on a reused segment). `head` is never more than
 * one segment past `tail`, so the walk from oldest stops at head or tail.
 * A get recycles at most RECLAIM_MAX segments (zeroed into the one-entry
 * spare, or unmapped), so it never holds get_lock long. Zeroing and the
 * spare's release/acquire hand a recycled segment to the next producer.
 *
 * Fork. In a fork child the getter that held sleep_lock (and those waiting
 * for it) no longer exist. The queue keeps the fork generation (lock.h)
 * of its getters; the first get in a newer one, under get_lock and before
 * any get of that generation can reach sleep_lock, makes sleep_lock free
 * and `sleeping` clear again.
 *
 * Test hooks: CTH__SQ_MAX_SLOTS and SQ_PREEMPT (below) are empty here;
 * tests/stress/stress_queue.c compiles this file with tiny segments and
 * preemption points to make the rare interleavings common.
 */
#include <stddef.h>
#include <string.h>

#include "alloc.h"
#include "cthreading/queue.h"
#include "deadline.h"
#include "lock.h"
#include "wait.h"

#define SEG_BYTES 16384
#define SPIN_TRIES 200
#define RECLAIM_MAX 8 /* segments recycled per get, to bound its time holding get_lock */

/* White-box test hooks, empty in the library: a test that #includes this file
 * may cap the slots per segment (fast segment turnover) and define
 * SQ_PREEMPT(point) to preempt threads at the racy points named in the code. */
#ifndef CTH__SQ_MAX_SLOTS
#define CTH__SQ_MAX_SLOTS UINT32_MAX
#endif
#ifndef SQ_PREEMPT
#define SQ_PREEMPT(point) ((void)0)
#endif

struct slot {
    void *item;
    _Atomic uint32_t ready;
};

struct seg {
    _Atomic(struct seg *) next; /* not a list.h list: linked lock-free, by compare-and-swap */
    _Atomic uint32_t claimed;
    struct slot slots[];
};

#define SLOTS_FIT ((uint32_t)((SEG_BYTES - offsetof(struct seg, slots)) / sizeof(struct slot)))
#define SLOTS (SLOTS_FIT < CTH__SQ_MAX_SLOTS ? SLOTS_FIT : CTH__SQ_MAX_SLOTS)

struct cth_simple_queue {
    /* shared with producers */
    _Atomic(struct seg *) tail;
    _Atomic(struct seg *) spare;
    _Atomic uint32_t active;
    _Atomic uint32_t sleeping; /* sleep_lock's holder sleeps (or is about to) on seq */
    _Atomic uint32_t seq;
    _Atomic long size;
    /* getters' side: get_lock guards the next three */
    cth_lock_t get_lock;
    struct seg *head, *oldest;
    uint32_t head_idx;
    cth_lock_t sleep_lock; /* the turn of a blocking getter to wait */
    uint32_t fork_gen;     /* the generation of its getters (get_lock) */
    cth_free_fn free_item;
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

CTH_API int cth_simple_queue_create(cth_simple_queue_t **queue, const cth_simple_queue_opts_t *opts)
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
    q->fork_gen = cth__fork_gen();
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
        SQ_PREEMPT(SQ_PUT_READ_TAIL);
        uint32_t i = atomic_fetch_add_explicit(&s->claimed, 1, memory_order_relaxed);
        if (i < SLOTS) {
            SQ_PREEMPT(SQ_PUT_CLAIMED);
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
            if (atomic_compare_exchange_strong(&s->next, &next, fresh))
                next = fresh;
            else
                seg_release(q, fresh); /* another put linked one first */
        }
        atomic_compare_exchange_strong(&q->tail, &s, next);
    }
    atomic_fetch_sub(&q->active, 1);
    atomic_fetch_add_explicit(&q->size, 1, memory_order_relaxed);
    SQ_PREEMPT(SQ_PUT_PUBLISHED);
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
            struct seg *next = atomic_load(&q->head->next);
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

/* Recycle up to RECLAIM_MAX retired segments no put can still reach
 * (get_lock held). */
static void reclaim(cth_simple_queue_t *q)
{
    if (q->oldest == q->head)
        return;
    struct seg *tail = atomic_load(&q->tail);
    SQ_PREEMPT(SQ_GET_RECLAIM);
    if (atomic_load(&q->active) != 0)
        return;
    for (int n = 0; n < RECLAIM_MAX && q->oldest != q->head && q->oldest != tail; n++) {
        struct seg *s = q->oldest;
        q->oldest = atomic_load_explicit(&s->next, memory_order_relaxed);
        if (atomic_load_explicit(&q->spare, memory_order_relaxed)) {
            cth__page_free(s, SEG_BYTES);
        } else {
            memset(s, 0, SEG_BYTES);
            seg_release(q, s);
        }
    }
}

/* One attempt: take the oldest published item, holding get_lock for just
 * that (and a bounded reclaim), so the lock is only ever held briefly. */
static bool try_take(cth_simple_queue_t *q, void **item)
{
    cth__lock_acquire_keeping_interrupt(&q->get_lock);
    uint32_t gen = cth__fork_gen();
    if (__builtin_expect(q->fork_gen != gen, 0)) {
        q->fork_gen = gen; /* sleep_lock's holder did not survive the fork */
        cth_lock_init(&q->sleep_lock);
        atomic_store(&q->sleeping, 0);
    }
    bool got = take(q, item);
    reclaim(q);
    cth_lock_release(&q->get_lock);
    return got;
}

/* Wait for an item until the deadline, as the holder of sleep_lock (the
 * only thread in the sleeping protocol). Returns 0, CTH_ETIMEDOUT or
 * CTH_EINTR. */
static int wait_item(cth_simple_queue_t *q, void **item, int64_t deadline)
{
    for (;;) {
        for (int i = 0; i < SPIN_TRIES; i++) {
            if (atomic_load_explicit(&q->size, memory_order_relaxed) > 0 && try_take(q, item))
                return 0;
            cth__cpu_relax();
        }
        /* seq first: a put that clears `sleeping` bumps seq after this
         * read, so the wait below returns at once (see Sleeping). */
        uint32_t seq = atomic_load(&q->seq);
        atomic_store(&q->sleeping, 1);
        SQ_PREEMPT(SQ_GET_SLEEPING);
        bool got = try_take(q, item);
        SQ_PREEMPT(SQ_GET_RECHECKED);
        int r = got ? 0 : cth__futex_wait(&q->seq, seq, deadline);
        atomic_store(&q->sleeping, 0);
        if (got)
            return 0;
        if (r != 0)
            return try_take(q, item) ? 0 : r;
    }
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
    if (try_take(q, item))
        return 0;
    if (timeout == 0)
        return CTH_EAGAIN;
    /* the turn to sleep, within what is left of the deadline */
    if (timeout > 0 && deadline != CTH__NO_DEADLINE) {
        int64_t left = deadline - cth__now_ns();
        timeout = left > 0 ? (double)left / 1e9 : 0;
    }
    r = cth_lock_acquire(&q->sleep_lock, timeout);
    if (r) /* an item that came meanwhile still counts */
        return try_take(q, item) ? 0 : r == CTH_EAGAIN ? CTH_ETIMEDOUT : r;
    r = wait_item(q, item, deadline);
    cth_lock_release(&q->sleep_lock);
    return r;
}

CTH_API int cth_simple_queue_get_nowait(cth_simple_queue_t *queue, void **item)
{
    return cth_simple_queue_get(queue, item, 0);
}

CTH_API size_t cth_simple_queue_qsize(const cth_simple_queue_t *queue)
{
    if (!queue)
        return 0;
    long n = atomic_load_explicit(&queue->size, memory_order_relaxed);
    return n > 0 ? (size_t)n : 0;
}

CTH_API bool cth_simple_queue_empty(const cth_simple_queue_t *queue)
{
    return cth_simple_queue_qsize(queue) == 0;
}
