/* SPDX-License-Identifier: MIT */
/*
 * queue_ring.h - the FIFO Queue's lock-free ring: its state, and the put
 * and get fast paths, inline here so that queue.c compiles them into its
 * public calls (no call on a put or get that the ring serves). Its slow
 * parts, which run under the queue's lock, are in src/queue_ring.c. Only
 * queue.c and queue_ring.c include it.
 *
 * The ring (after Vyukov's bounded MPMC queue). Two counters, tail (next
 * put position) and head (next get position), on cache lines of their own,
 * and a power-of-two array of cells, each an item and a turn number that
 * says, for the cell's current lap, whether it is free for its put,
 * published, or read (lap_of). A put claims positions with one
 * compare-and-swap on tail, writes the item and publishes it; a get claims
 * with one compare-and-swap on head, reads, and frees the cell for the next
 * lap. A put may claim only below head + maxsize and below the first
 * position whose cell still holds an unclaimed item, reckoned from
 * head_seen, a copy of head kept on the producers' line (refreshed from head
 * only when the copy says full), so producers rarely read the consumers'
 * line. Without the lock, a thread claims only cells that are ready for it
 * (free for a put, published for a get; a batch, the ready run of them), so
 * it never waits once it has claimed, and nobody waits behind a thread that
 * waits. A cell is busy only while a thread is between its claim and its
 * access, a few instructions: a blocked put or get spins on it as on a full
 * or empty queue. The lock holder claims busy cells too (a get_nowait must
 * not miss an item whose put has returned because an earlier put is still
 * writing), then waits for them, spinning, then yielding the processor,
 * since that thread may have been preempted there. A get that finds the
 * ring empty and spins waits first for a whole cache line of cells to be
 * published, so that the line crosses between cores once, not once per
 * item. qsize is tail - head.
 *
 * Flags. Bit 63 of tail (SLOW) sends every put to the lock: set while
 * getters are parked or after shutdown. Bit 63 of head sends every get to
 * the lock: set while putters are parked, and for good after an immediate
 * shutdown. A compare-and-swap that finds the flag fails, so the decision
 * and the claim cannot disagree, and the fast path reads nothing more. A
 * getter parks only after setting tail's flag by compare-and-swap from a
 * value equal to head (the ring is empty and stays so: nobody puts without
 * the lock now), a putter only after setting head's flag while the queue is
 * full by maxsize; every release of the lock clears a flag nothing needs.
 * Holding the lock, a thread claims past the flags.
 *
 * Growing. When the newest ring is full but maxsize allows more (or the
 * queue is unbounded), the lock holder links a ring twice as large after it,
 * holding the positions from tail on: it sets tail's flag so that tail
 * stays put, publishes the ring, and clears the flag. Nothing is copied and
 * nobody waits; gets finish the older ring, then go on in the new one (each
 * ring knows its first position, so a position's ring is found from the
 * newest back). A fresh ring is zeroed memory, which reads as every cell
 * free for its first lap. Rings are freed with the queue, since a thread
 * may still read from an older one: one that loaded a head or tail since
 * passed, or a ring pointer, before it was preempted, reads the old ring's
 * header and a cell, then fails its compare-and-swap. But an outgrown
 * ring's cells go back to the system (queue_ring.c: madvise), once every
 * position it held has been read; those stale reads then see zero turns,
 * which send them to try again too. So what stays resident is the newest
 * ring plus a page per outgrown one; the address space (less than twice
 * the newest ring) stays reserved until the queue is freed.
 * A put whose claim matched a tail from before a link (the flag set and
 * cleared in between) finds its cell in the new ring: it looks the ring up
 * again after claiming.
 *
 * Who guards what. tail, head_seen, head and the cells' turns are claimed
 * and published by atomics alone. The ring pointer and maxlen change only
 * under the queue's lock (growing, a new maxsize), as does every call
 * below that says "lock held"; the rings themselves live until
 * cth__fifo_destroy.
 *
 * Test hook: Q_PREEMPT(point) marks the racy points; plain here, a test
 * that compiles queue.c and queue_ring.c into itself defines it to preempt
 * threads there.
 */
#ifndef CTH_QUEUE_RING_H
#define CTH_QUEUE_RING_H

#include <sched.h>

#include "platform.h"

#ifndef Q_PREEMPT
#define Q_PREEMPT(point) ((void)0)
#endif
#define TURN_SPINS 100   /* spins on a cell another thread is busy with, then yields */
#define LINE 128         /* two cache lines: adjacent-line prefetchers pair them */
#define CELLS_PER_LINE 4 /* cells in a 64-byte cache line */

#define SLOW ((uint64_t)1 << 63) /* on tail or head: take the lock */
#define POS(word) ((word) & ~SLOW)

/* A cell of the ring. pool.c's task ring is the same algorithm (Vyukov's)
 * but not shared on purpose: it is a fixed-size best-effort side path that
 * may refuse an item, where this ring must take every put allowed by
 * maxsize (it grows), claims batches, carries the SLOW flags on its
 * counters, and lets the lock holder claim busy cells. */
struct cell {
    _Atomic uint64_t turn; /* see lap_of */
    void *item;
};

struct ring {
    uint64_t base;                    /* the first position it holds */
    uint64_t cap;                     /* a power of two */
    struct ring *older;               /* the ring before it, freed with the queue */
    void *mem;                        /* the allocation it is aligned in */
    size_t pages;                     /* bytes of its own mapping (0: from malloc) */
    bool reclaimed;                   /* its cells' pages went back (lock held) */
    _Alignas(64) struct cell cells[]; /* lines of cells start on cache lines */
};

/* The ring's state, embedded in the queue. */
struct fifo {
    /* Read-mostly: changed under the queue's lock. */
    _Atomic(struct ring *) ring; /* the newest ring */
    _Atomic uint64_t maxlen;     /* maxsize as a bound on tail - head */

    /* The producers' line. */
    _Alignas(LINE) _Atomic uint64_t tail;
    _Atomic uint64_t head_seen; /* a past value of POS(head) */

    /* The consumers' line. */
    _Alignas(LINE) _Atomic uint64_t head;
};

/* ---- the slow parts (queue_ring.c) ---------------------------------------------- */

/* Set up an empty ring of cap cells (a power of two) for a queue of
 * maxsize (0: unbounded). 0 or CTH_ENOMEM. */
int cth__fifo_init(struct fifo *f, uint64_t cap, long maxsize);

/* Free the rings (the queue is being freed: nobody uses it). */
void cth__fifo_destroy(struct fifo *f);

/* A new maxsize (lock held). */
void cth__fifo_set_maxsize(struct fifo *f, long maxsize);

/* Put up to n items (lock held), growing the ring as maxsize allows: how
 * many, or CTH_ENOMEM when none could be stored. */
int cth__fifo_push(struct fifo *f, void *const *items, int n, long maxsize);

/* Take up to n items (lock held): how many (0: empty). */
int cth__fifo_pop(struct fifo *f, void **items, int n);

/* A get found the ring empty (lock held): set tail's flag so that puts come
 * to the lock, if the ring is still empty. False if it is not. */
bool cth__fifo_mark_empty(struct fifo *f);

/* The same for a put that found the queue full: set head's flag so that
 * gets come to the lock (and refill), if it is still full. */
bool cth__fifo_mark_full(struct fifo *f, long maxsize);

/* Send every put to the lock (shutdown; lock held). */
void cth__fifo_flag_puts(struct fifo *f);

/* Close the ring to gets for good (an immediate shutdown; lock held): wait
 * for the puts still writing and return how many items it held, from
 * position *first on. Nobody touches their cells afterwards: read them with
 * cth__fifo_item. */
uint64_t cth__fifo_drain(struct fifo *f, uint64_t *first);

/* The item at position p of a drained ring. */
void *cth__fifo_item(struct fifo *f, uint64_t p);

/* ---- inside the ring: claims and cells (here and in queue_ring.c) -------------------- */

/* Wait for a cell another thread has claimed to reach turn: that thread is
 * between its claim and its write, so spin, then yield to it. */
static inline void await_turn(_Atomic uint64_t *turn, uint64_t want)
{
    for (int i = 0; atomic_load_explicit(turn, memory_order_acquire) != want; i++) {
        if (i < TURN_SPINS)
            cth__cpu_relax();
        else
            sched_yield();
    }
}

/* The ring that holds position p: the newest one whose base is not above it. */
static inline struct ring *ring_for(struct fifo *f, uint64_t p)
{
    struct ring *r = atomic_load_explicit(&f->ring, memory_order_acquire);
    while ((int64_t)(p - r->base) < 0)
        r = r->older;
    return r;
}

static inline struct cell *cell_at(struct ring *r, uint64_t p)
{
    return &r->cells[(p - r->base) & (r->cap - 1)];
}

/* A cell's turn while it is free for the put at p: its lap's first offset.
 * Plus 1 once that put has published, plus cap once its get has read. */
static inline uint64_t lap_of(struct ring *r, uint64_t p)
{
    return (p - r->base) & ~(r->cap - 1);
}

/* How many puts may claim from p on, head being (a past value of) head, in
 * the newest ring r: below head + maxsize, and below the first position
 * whose cell in r still holds an item no get has claimed. */
static inline int64_t put_room(struct fifo *f, struct ring *r, uint64_t head, uint64_t p)
{
    uint64_t by_size = head + atomic_load_explicit(&f->maxlen, memory_order_relaxed);
    uint64_t by_ring = ((int64_t)(head - r->base) > 0 ? head : r->base) + r->cap;
    return (int64_t)((int64_t)(by_size - by_ring) < 0 ? by_size - p : by_ring - p);
}

/* What a claim returns besides a count (0: no room, or empty). */
enum {
    CLAIM_SLOW = -1, /* a flag sends the caller to the lock */
    CLAIM_BUSY = -2  /* the cell is still in use by a thread between claim and access */
};

/* Claim up to n positions to put at: returns how many (the first in *pos),
 * 0 when there is no room (full by maxsize, or the ring must grow),
 * CLAIM_SLOW, or CLAIM_BUSY when the get of the previous lap has claimed the
 * cell at tail but not finished reading it. Without the lock only cells
 * ready for the put are claimed, so that a thread never waits after
 * claiming and nobody waits behind a thread that waits; the lock holder
 * claims past the flags and busy cells, and ring_write waits for them. */
static inline __attribute__((always_inline)) int claim_put(struct fifo *f, int n, bool locked,
                                                           uint64_t *pos, struct ring **ring)
{
    uint64_t t = atomic_load_explicit(&f->tail, memory_order_acquire);
    for (;;) {
        if ((t & SLOW) && !locked)
            return CLAIM_SLOW;
        uint64_t p = POS(t);
        struct ring *r = atomic_load_explicit(&f->ring, memory_order_acquire);
        if ((int64_t)(p - r->base) < 0) { /* a newer ring than this tail: out of date */
            t = atomic_load_explicit(&f->tail, memory_order_acquire);
            continue;
        }
        int64_t room = put_room(f, r, atomic_load_explicit(&f->head_seen, memory_order_relaxed), p);
        if (room < n) { /* the copy of head may be out of date */
            uint64_t h = atomic_load_explicit(&f->head, memory_order_acquire);
            room = put_room(f, r, POS(h), p);
            if (room <= 0) /* full; if putters are parked, join them */
                return (h & SLOW) && !locked ? CLAIM_SLOW : 0;
            atomic_store_explicit(&f->head_seen, POS(h), memory_order_relaxed);
        }
        uint64_t k = room < n ? (uint64_t)room : (uint64_t)n;
        if (!locked) {
            uint64_t i = 0, turn = 0, lap = 0;
            while (i < k &&
                   (turn = atomic_load_explicit(&cell_at(r, p + i)->turn, memory_order_acquire)) ==
                       (lap = lap_of(r, p + i)))
                i++;
            if (i == 0 && (int64_t)(turn - lap) > 0) { /* taken already: tail moved on */
                t = atomic_load_explicit(&f->tail, memory_order_acquire);
                continue;
            }
            if (i == 0)
                return CLAIM_BUSY;
            k = i;
        }
        Q_PREEMPT(Q_PUT_CLAIMING);
        if (atomic_compare_exchange_weak_explicit(&f->tail, &t, t + k, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *pos = p;
            *ring = locked ? NULL : r;
            return (int)k;
        }
    }
}

/* Write items to the k positions claimed from p on. ring: the ring in which
 * the claim found their cells free, or NULL. A ring linked since (at tail,
 * which a claim from before it may still match) may hold them instead. */
static inline __attribute__((always_inline)) void ring_write(struct fifo *f, struct ring *ring,
                                                             uint64_t p, void *const *items, int k)
{
    Q_PREEMPT(Q_PUT_CLAIMED);
    bool checked = ring && atomic_load_explicit(&f->ring, memory_order_acquire) == ring;
    for (int i = 0; i < k; i++, p++) {
        struct ring *r = checked ? ring : ring_for(f, p);
        struct cell *c = cell_at(r, p);
        uint64_t lap = lap_of(r, p);
        if (!checked)
            await_turn(&c->turn, lap); /* the previous lap's get may still be reading */
        c->item = items[i];
        atomic_store_explicit(&c->turn, lap + 1, memory_order_release);
    }
}

/* Claim up to n positions to get from, as claim_put: 0 when empty,
 * CLAIM_SLOW also when empty with tail's flag set (parked getters or a
 * shutdown are the lock's business), CLAIM_BUSY when the cell at head is
 * claimed by a put that has not published it yet. Without the lock only
 * published cells are claimed; the lock holder also claims cells puts have
 * claimed, and ring_read waits for them. */
static inline __attribute__((always_inline)) int claim_get(struct fifo *f, int n, bool locked,
                                                           uint64_t *pos, struct ring **ring)
{
    uint64_t h = atomic_load_explicit(&f->head, memory_order_relaxed);
    for (;;) {
        if ((h & SLOW) && !locked)
            return CLAIM_SLOW;
        uint64_t p = POS(h), k = 1;
        struct ring *r = ring_for(f, p);
        uint64_t lap = lap_of(r, p);
        uint64_t turn = atomic_load_explicit(&cell_at(r, p)->turn, memory_order_acquire);
        int64_t d = (int64_t)(turn - (lap + 1));
        if (d > 0) { /* taken already: head has moved on */
            h = atomic_load_explicit(&f->head, memory_order_relaxed);
            continue;
        }
        if (d == 0) { /* and the published cells after it, in this ring */
            while (k < (uint64_t)n &&
                   atomic_load_explicit(&cell_at(r, p + k)->turn, memory_order_acquire) ==
                       lap_of(r, p + k) + 1)
                k++;
        } else {
            uint64_t t = atomic_load_explicit(&f->tail, memory_order_acquire);
            uint64_t avail = POS(t) - p;
            if ((int64_t)avail <= 0)
                return (t & SLOW) && !locked ? CLAIM_SLOW : 0;
            if (!locked)
                return CLAIM_BUSY;
            k = avail < (uint64_t)n ? avail : (uint64_t)n;
        }
        Q_PREEMPT(Q_GET_CLAIMING);
        if (atomic_compare_exchange_weak_explicit(&f->head, &h, h + k, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            *pos = p;
            *ring = d == 0 ? r : NULL;
            return (int)k;
        }
    }
}

/* Read the k items claimed from p on, freeing their cells. ring: the ring
 * in which the claim found them published (positions never move to another
 * ring), or NULL. */
static inline __attribute__((always_inline)) void ring_read(struct fifo *f, struct ring *ring,
                                                            uint64_t p, void **items, int k)
{
    Q_PREEMPT(Q_GET_CLAIMED);
    for (int i = 0; i < k; i++, p++) {
        struct ring *r = ring ? ring : ring_for(f, p);
        struct cell *c = cell_at(r, p);
        uint64_t lap = lap_of(r, p);
        if (!ring)
            await_turn(&c->turn, lap + 1); /* its put may still be writing */
        items[i] = c->item;
        atomic_store_explicit(&c->turn, lap + r->cap, memory_order_release);
    }
}

/* ---- the fast paths and queries (queue.c) ---------------------------------------------- */

/* A put without the lock: how many of the n items the ring took (the first
 * k), 0 when there is no room, CLAIM_SLOW or CLAIM_BUSY (claim_put). */
static inline __attribute__((always_inline)) int cth__fifo_put_fast(struct fifo *f,
                                                                    void *const *items, int n)
{
    uint64_t p;
    struct ring *r;
    int k = claim_put(f, n, false, &p, &r);
    if (k > 0)
        ring_write(f, r, p, items, k);
    return k;
}

/* A get without the lock: how many items it took into items, 0 when
 * empty, CLAIM_SLOW or CLAIM_BUSY (claim_get). */
static inline __attribute__((always_inline)) int cth__fifo_get_fast(struct fifo *f, void **items,
                                                                    int n)
{
    uint64_t p;
    struct ring *r;
    int k = claim_get(f, n, false, &p, &r);
    if (k > 0)
        ring_read(f, r, p, items, k);
    return k;
}

/* Whether a get may succeed now: the cell at head is published (with line:
 * so is the last cell of its cache line), head has moved on, or its flag is

 * Waiting for a whole line lets the put fill it before the get takes it:
 * read cell by cell as it is written, a line goes back and forth between
 * the two cores once per item. */
static inline bool cth__fifo_get_ready(struct fifo *f, bool line)
{
    uint64_t h = atomic_load_explicit(&f->head, memory_order_relaxed);
    uint64_t p = POS(h);
    struct ring *r = ring_for(f, p);
    if (line && r->cap >= CELLS_PER_LINE)
        p += CELLS_PER_LINE - 1 - ((p - r->base) & (CELLS_PER_LINE - 1));
    uint64_t turn = atomic_load_explicit(&cell_at(r, p)->turn, memory_order_relaxed);
    return (h & SLOW) || (int64_t)(turn - (lap_of(r, p) + 1)) >= 0;
}

/* qsize: tail - head. */
static inline uint64_t cth__fifo_count(struct fifo *f)
{
    /* One snapshot: tail read while head stood still (positions only grow,
     * so an unchanged head means tail - head held at that instant). Reading
     * head, then tail, alone counts the puts made after head was read and
     * can exceed maxsize. Under a storm, a few tries, then the nearest
     * count a queue can hold. */
    uint64_t h = POS(atomic_load_explicit(&f->head, memory_order_acquire));
    for (int tries = 0;; tries++) {
        uint64_t t = POS(atomic_load_explicit(&f->tail, memory_order_acquire));
        uint64_t again = POS(atomic_load_explicit(&f->head, memory_order_acquire));
        if (again == h)
            return t - h;
        if (tries == 16) {
            uint64_t max = atomic_load_explicit(&f->maxlen, memory_order_relaxed);
            uint64_t n = (int64_t)(t - again) > 0 ? t - again : 0;
            return max && n > max ? max : n;
        }
        h = again;
    }
}

/* Every position a put has claimed, for the count of tasks. */
static inline uint64_t cth__fifo_puts(struct fifo *f)
{
    return POS(atomic_load(&f->tail));
}

/* Release the lock's hold on the fast paths that nothing needs any more
 * (lock held): tail's flag when puts may go without the lock, head's when
 * gets may. */
static inline void cth__fifo_unflag(struct fifo *f, bool puts, bool gets)
{
    if (puts && (atomic_load_explicit(&f->tail, memory_order_relaxed) & SLOW))
        atomic_fetch_and_explicit(&f->tail, ~SLOW, memory_order_release);
    if (gets && (atomic_load_explicit(&f->head, memory_order_relaxed) & SLOW))
        atomic_fetch_and_explicit(&f->head, ~SLOW, memory_order_release);
}

#endif
