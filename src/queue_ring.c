/* SPDX-License-Identifier: MIT */
/*
 * queue_ring.c - the slow parts of the FIFO Queue's lock-free ring
 * (queue_ring.h has its design and the fast paths): allocating and freeing
 * the rings, growing, the puts and gets of the lock holder, the flags set
 * under the lock, and draining at an immediate shutdown.
 *
 * State: struct fifo, embedded in the queue, and its chain of rings, newest
 * first. Every function here but cth__fifo_init and cth__fifo_destroy runs
 * under the queue's lock, which is what keeps the ring pointer and maxlen
 * stable and makes the lock holder the only one to link a ring; the puts
 * and gets of other threads go on meanwhile without it, and nothing here
 * waits for them but for a cell one of them has claimed (await_turn).
 *
 * Reclaiming. A ring of RECLAIM_MIN_BYTES of cells or more is a mapping of
 * its own (cth__page_alloc). Once a newer ring exists, head has passed the
 * ring's last position, and each of its cells shows its last lap read (so
 * every put and get that claimed a position in it has finished with it),
 * no thread will use its cells again: only stale reads can still come (see
 * queue_ring.h), and madvise(MADV_DONTNEED) turns the cells' pages into
 * zero pages for them, returning the memory while the mapping stays. The
 * lock holder tries this when a ring grows and when a get is about to park
 * on an empty queue, without waiting: a get still reading is left to a
 * later try.
 *
 * Huge pages. From HUGE_BYTES of cells on, a ring's cells start on a huge
 * page boundary, its header just below, and are offered to the system's
 * transparent huge pages (MADV_HUGEPAGE): a producer that runs ahead of its
 * consumers, as an unbounded queue's producers do, fills the ring with one
 * page fault per 2 MB instead of one per 4 kB. What the mapping needed
 * beyond them to align them goes back to the system at once.
 */
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "queue_ring.h"

#include "alloc.h"

#define RECLAIM_MIN_BYTES ((size_t)64 * 1024)
/* A transparent huge page (x86-64, and arm64 with 4 kB pages). */
#define HUGE_BYTES ((size_t)2 * 1024 * 1024)

/* A ring for the positions from base on, its cells free for their first
 * lap (all zero). */
static struct ring *ring_alloc(uint64_t cap, uint64_t base, struct ring *older)
{
    size_t cells = cap * sizeof(struct cell), head = offsetof(struct ring, cells), pages = 0;
    void *mem;
    uintptr_t at; /* where the cells start */
    if (cells >= HUGE_BYTES) {
        /* The cells on huge-page boundaries, the header in the page just
         * below them; the rest of the mapping goes back at once (left, the
         * header's page could lie in a huge page of its own). */
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        mem = cth__page_alloc(cells + 2 * HUGE_BYTES); /* page-aligned, zeroed */
        if (!mem)
            return NULL;
        at = ((uintptr_t)mem + head + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
        uintptr_t from = (at - head) & ~(uintptr_t)(page - 1),
                  end = (uintptr_t)mem + cells + 2 * HUGE_BYTES;
        if (from > (uintptr_t)mem)
            cth__page_free(mem, from - (uintptr_t)mem);
        cth__page_free((void *)(at + cells), end - (at + cells));
        mem = (void *)from;
        pages = at + cells - from;
#ifdef MADV_HUGEPAGE
        madvise((void *)at, cells, MADV_HUGEPAGE);
#endif
    } else if (cells >= RECLAIM_MIN_BYTES) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        pages = (head + cells + page - 1) & ~(page - 1);
        mem = cth__page_alloc(pages);
        at = (uintptr_t)mem + head;
    } else {
        mem = cth__calloc(1, head + cells + 63);
        at = (((uintptr_t)mem + 63) & ~(uintptr_t)63) + head;
    }
    if (!mem)
        return NULL;
    struct ring *r = (struct ring *)(at - head);
    r->mem = mem;
    r->pages = pages;
    r->cap = cap;
    r->base = base;
    r->older = older;
    return r;
}

static void ring_free(struct ring *r)
{
    if (r->pages)
        cth__page_free(r->mem, r->pages);
    else
        cth__free(r->mem);
}

/* Whether every position of r below end (the next ring's base) has been
 * read: each cell used shows the turn its last get left. */
static bool ring_consumed(struct ring *r, uint64_t end)
{
    uint64_t from = end - r->base > r->cap ? end - r->cap : r->base;
    for (uint64_t q = from; q != end; q++)
        if (atomic_load_explicit(&cell_at(r, q)->turn, memory_order_acquire) !=
            lap_of(r, q) + r->cap)
            return false;
    return true;
}

/* Give back the cells of the outgrown rings nobody will use again (lock
 * held): all but the page that holds the ring's header. */
static void fifo_reclaim(struct fifo *f)
{
    uint64_t head = POS(atomic_load_explicit(&f->head, memory_order_acquire));
    struct ring *newer = atomic_load_explicit(&f->ring, memory_order_relaxed);
    for (struct ring *r = newer->older; r; newer = r, r = r->older) {
        if (!r->pages || r->reclaimed || (int64_t)(head - newer->base) < 0 ||
            !ring_consumed(r, newer->base))
            continue;
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        uintptr_t from = ((uintptr_t)r->cells + page - 1) & ~(uintptr_t)(page - 1);
        uintptr_t to = (uintptr_t)r->mem + r->pages;
        if (to > from)
            madvise((void *)from, to - from, MADV_DONTNEED);
        r->reclaimed = true;
    }
}

/* maxsize as a bound on tail - head. */
static uint64_t fifo_maxlen(long maxsize)
{
    return maxsize > 0 ? (uint64_t)maxsize : UINT64_MAX >> 2;
}

int cth__fifo_init(struct fifo *f, uint64_t cap, long maxsize)
{
    struct ring *r = ring_alloc(cap, 0, NULL);
    if (!r)
        return CTH_ENOMEM;
    atomic_store_explicit(&f->ring, r, memory_order_relaxed);
    atomic_store_explicit(&f->maxlen, fifo_maxlen(maxsize), memory_order_relaxed);
    return 0;
}

void cth__fifo_destroy(struct fifo *f)
{
    struct ring *r = atomic_load_explicit(&f->ring, memory_order_relaxed);
    while (r) {
        struct ring *older = r->older;
        ring_free(r);
        r = older;
    }
}

void cth__fifo_set_maxsize(struct fifo *f, long maxsize)
{
    atomic_store_explicit(&f->maxlen, fifo_maxlen(maxsize), memory_order_relaxed);
}

/* The lock held and no room found for k more items: if the newest ring is
 * what is full, link a larger one after it, for the positions from tail on
 * (tail's flag is held meanwhile so that tail stays put); m is maxsize (0:
 * unbounded). Returns 0 (grown, or room appeared: try again), 1 (full by
 * maxsize) or CTH_ENOMEM. */
static int fifo_grow(struct fifo *f, uint64_t k, long m)
{
    if (m > 0 && cth__fifo_count(f) >= (uint64_t)m)
        return 1;
    uint64_t t = atomic_fetch_or_explicit(&f->tail, SLOW, memory_order_acq_rel);
    uint64_t tail = POS(t), head = POS(atomic_load_explicit(&f->head, memory_order_acquire));
    struct ring *old = atomic_load_explicit(&f->ring, memory_order_relaxed);
    int r = 0;
    if (m > 0 && tail - head >= (uint64_t)m) {
        r = 1;
    } else if (put_room(f, old, head, tail) <= 0) {
        uint64_t cap = old->cap * 2, most = 1;
        while (cap < k)
            cap *= 2;
        while (m > 0 && most < (uint64_t)m)
            most *= 2;
        struct ring *nr = ring_alloc(m > 0 && most < cap ? most : cap, tail, old);
        Q_PREEMPT(Q_FROZEN);
        if (nr)
            atomic_store_explicit(&f->ring, nr, memory_order_release);
        else
            r = CTH_ENOMEM;
    }
    atomic_store_explicit(&f->tail, t, memory_order_release);
    fifo_reclaim(f);
    return r;
}

int cth__fifo_push(struct fifo *f, void *const *items, int n, long maxsize)
{
    int done = 0;
    while (done < n) {
        uint64_t p;
        struct ring *ring;
        int k = claim_put(f, n - done, true, &p, &ring);
        if (k > 0) {
            ring_write(f, ring, p, items + done, k);
            done += k;
            continue;
        }
        int r = fifo_grow(f, (uint64_t)(n - done), maxsize);
        if (r != 0)
            return done ? done : r > 0 ? 0 : r;
    }
    return done;
}

int cth__fifo_pop(struct fifo *f, void **items, int n)
{
    uint64_t p;
    struct ring *r;
    int k = claim_get(f, n, true, &p, &r);
    if (k > 0)
        ring_read(f, r, p, items, k);
    return k;
}

bool cth__fifo_mark_empty(struct fifo *f)
{
    for (;;) {
        uint64_t h = atomic_load_explicit(&f->head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&f->tail, memory_order_acquire);
        if (POS(t) != POS(h))
            return false;
        if ((t & SLOW) || atomic_compare_exchange_weak_explicit(
                              &f->tail, &t, t | SLOW, memory_order_acq_rel, memory_order_relaxed)) {
            fifo_reclaim(f); /* drained: a good time to give back outgrown rings */
            return true;
        }
    }
}

bool cth__fifo_mark_full(struct fifo *f, long maxsize)
{
    for (;;) {
        uint64_t h = atomic_load_explicit(&f->head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&f->tail, memory_order_acquire);
        if (POS(t) - POS(h) < (uint64_t)maxsize)
            return false;
        if ((h & SLOW) || atomic_compare_exchange_weak_explicit(
                              &f->head, &h, h | SLOW, memory_order_acq_rel, memory_order_relaxed))
            return true;
    }
}

void cth__fifo_flag_puts(struct fifo *f)
{
    atomic_fetch_or_explicit(&f->tail, SLOW, memory_order_acq_rel);
}

uint64_t cth__fifo_drain(struct fifo *f, uint64_t *first)
{
    uint64_t h = atomic_fetch_or_explicit(&f->head, SLOW, memory_order_acq_rel);
    uint64_t t = POS(atomic_load_explicit(&f->tail, memory_order_acquire));
    *first = POS(h);
    for (uint64_t p = *first; p != t; p++) {
        struct ring *r = ring_for(f, p);
        await_turn(&cell_at(r, p)->turn, lap_of(r, p) + 1);
    }
    atomic_store_explicit(&f->head, t | SLOW, memory_order_release);
    return t - *first;
}

void *cth__fifo_item(struct fifo *f, uint64_t p)
{
    return cell_at(ring_for(f, p), p)->item;
}
