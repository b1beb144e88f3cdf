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
 * Growing. When the newest ring is full but maxsize allows more (or the
 * queue is unbounded), the lock holder links a ring twice as large after it,
 * holding the positions from tail on: it sets tail's flag so that tail
 * stays put, publishes the ring, and clears the flag. Nothing is copied and
 * nobody waits; gets finish the older ring, then go on in the new one (each
 * ring knows its first position, so a position's ring is found from the
 * newest back). A fresh ring is zeroed memory, which reads as every cell
 * free for its first lap. Rings are freed with the queue (together less
 * than twice the newest), since a thread may still read from an older one.
 * A put whose claim matched a tail from before a link (the flag set and
 * cleared in between) finds its cell in the new ring: it looks the ring up
 * again after claiming.
 *
 * Tasks. No counter is added to the fast path: the puts are tail plus
 * extra_puts (items handed straight to parked getters, and every put of the
 * other kinds), and task_done counts in done, on its own line; the
 * unfinished count is the difference. Join waiters sleep on a sequence word
 * bumped when it reaches 0 (or on an immediate shutdown).
 *
 * Test hooks: CTH__Q_MIN_CAPACITY and Q_PREEMPT (below) are plain here;
 * tests/stress/stress_queue.c compiles this file with a two-cell first ring
 * and preemption points, to make growing and the claim-to-write windows
 * common.
 */
#include <limits.h>
#include <sched.h>
#include <string.h>

#include "cthreading/queue.h"
#include "alloc.h"
#include "deadline.h"
#include "list.h"
#include "lockword.h"
#include "wait.h"

#define SPIN_MIN 8       /* the spin budgets' range (pause instructions, see spin_*) */
#define PARK_SPIN_MIN 64
#define SPIN_MAX 128
#define TURN_SPINS 100   /* spins on a cell another thread is busy with, then yields */
/* White-box test hooks: a test that #includes this file may shrink the
 * first ring and define Q_PREEMPT(point) to preempt threads at the racy
 * points named in the code. */
#ifndef CTH__Q_MIN_CAPACITY
#define CTH__Q_MIN_CAPACITY 16
#endif
#ifndef Q_PREEMPT
#define Q_PREEMPT(point) ((void)0)
#endif
#define MIN_CAPACITY CTH__Q_MIN_CAPACITY
#define PREALLOC_MAX 1024
#define MAX_WAKEUPS 16
#define LINE 128 /* two cache lines: adjacent-line prefetchers pair them */

#define SLOW ((uint64_t)1 << 63) /* on tail or head: take the lock */
#define POS(word) ((word) & ~SLOW)

enum { W_WAITING = 0, W_SLEEPING = 1, W_DONE = 2 };

struct waiter {
    struct cth__list_node link; /* on getters or putters, under the lock */
    _Atomic uint32_t state;
    int result;    /* 0 or a negative code, written before state = W_DONE */
    void **items;  /* a getter's destination or a putter's source */
    int n;         /* how many it wants or offers */
    int done;      /* how many were moved */
};

struct hent {
    void *item;
    uint64_t seq;
};

/* A cell of the ring. pool.c's task ring is the same algorithm (Vyukov's)
 * but not shared on purpose: it is a fixed-size best-effort side path that
 * may refuse an item, where this ring must take every put allowed by
 * maxsize (it grows), claims batches, carries the SLOW flags on its
 * counters, and lets the lock holder claim busy cells. */
struct cell {
    _Atomic uint64_t turn; /* see lap_of */
    void *item;
};

#define CELLS_PER_LINE 4 /* cells in a 64-byte cache line */

struct ring {
    uint64_t base;       /* the first position it holds */
    uint64_t cap;        /* a power of two */
    struct ring *older;  /* the ring before it, freed with the queue */
    void *mem;           /* the allocation it is aligned in */
    _Alignas(64) struct cell cells[]; /* lines of cells start on cache lines */
};

struct cth_queue {
    /* Read-mostly: set at creation, or changed under the lock. */
    cth_queue_kind_t kind;
    cth_compare_fn compare;
    cth_free_fn free_item;
    void *mem;                  /* the allocation this struct is aligned in */
    _Atomic(struct ring *) ring; /* FIFO: the newest ring */
    _Atomic uint64_t maxlen;    /* FIFO: maxsize as a bound on tail - head */

    /* The producers' line. */
    _Alignas(LINE) _Atomic uint64_t tail;
    _Atomic uint64_t head_seen; /* a past value of POS(head) */

    /* The consumers' line. */
    _Alignas(LINE) _Atomic uint64_t head;

    /* task_done's line. */
    _Alignas(LINE) _Atomic uint64_t done; /* task_done calls, plus items an
                                             immediate shutdown removed */

    /* The slow path: guarded by the lock but for the atomics. */
    _Alignas(LINE) cth_lock_t lock;
    bool shutdown, drained; /* drained: an immediate shutdown emptied the ring */
    long maxsize;
    struct cth__list getters, putters; /* parked waiters, oldest first */
    _Atomic uint64_t extra_puts;
    _Atomic uint32_t joiners, join_seq;
    _Atomic uint32_t spin, park_spin; /* spin budgets (spin_*) */
    size_t count, cap; /* LIFO, PRIORITY */
    void **stack;      /* LIFO */
    struct hent *heap; /* PRIORITY */
    uint64_t seq;      /* next PriorityQueue sequence number */
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
    if (cth__lock_acquire_uninterrupted(&q->lock))
        cth__interrupt_main_wait();
}

static void clear_slow(_Atomic uint64_t *word)
{
    if (atomic_load_explicit(word, memory_order_relaxed) & SLOW)
        atomic_fetch_and_explicit(word, ~SLOW, memory_order_release);
}

/* Release the lock, first clearing the flags nothing needs any more. */
static void qunlock(cth_queue_t *q)
{
    if (q->kind == CTH_QUEUE_FIFO) {
        if (!q->shutdown && cth__list_empty(&q->getters))
            clear_slow(&q->tail);
        if (!q->drained && cth__list_empty(&q->putters))
            clear_slow(&q->head);
    }
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

/* ---- the ring (FIFO) ------------------------------------------------------------ */

/* Wait for a cell another thread has claimed to reach turn: that thread is
 * between its claim and its write, so spin, then yield to it. */
static void await_turn(_Atomic uint64_t *turn, uint64_t want)
{
    for (int i = 0; atomic_load_explicit(turn, memory_order_acquire) != want; i++) {
        if (i < TURN_SPINS)
            cth__cpu_relax();
        else
            sched_yield();
    }
}

/* A ring for the positions from base on, its cells free for their first
 * lap (all zero). */
static struct ring *ring_alloc(uint64_t cap, uint64_t base, struct ring *older)
{
    void *mem = cth__calloc(1, sizeof(struct ring) + cap * sizeof(struct cell) + 63);
    if (!mem)
        return NULL;
    struct ring *r = (struct ring *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    r->mem = mem;
    r->cap = cap;
    r->base = base;
    r->older = older;
    return r;
}

/* The ring that holds position p: the newest one whose base is not above it. */
static struct ring *ring_for(cth_queue_t *q, uint64_t p)
{
    struct ring *r = atomic_load_explicit(&q->ring, memory_order_acquire);
    while ((int64_t)(p - r->base) < 0)
        r = r->older;
    return r;
}

static struct cell *cell_at(struct ring *r, uint64_t p)
{
    return &r->cells[(p - r->base) & (r->cap - 1)];
}

/* A cell's turn while it is free for the put at p: its lap's first offset.
 * Plus 1 once that put has published, plus cap once its get has read. */
static uint64_t lap_of(struct ring *r, uint64_t p)
{
    return (p - r->base) & ~(r->cap - 1);
}

/* How many puts may claim from p on, head being (a past value of) head, in
 * the newest ring r: below head + maxsize, and below the first position
 * whose cell in r still holds an item no get has claimed. */
static int64_t put_room(cth_queue_t *q, struct ring *r, uint64_t head, uint64_t p)
{
    uint64_t by_size = head + atomic_load_explicit(&q->maxlen, memory_order_relaxed);
    uint64_t by_ring = ((int64_t)(head - r->base) > 0 ? head : r->base) + r->cap;
    return (int64_t)((int64_t)(by_size - by_ring) < 0 ? by_size - p : by_ring - p);
}

/* What a claim returns besides a count (0: no room, or empty). */
enum { CLAIM_SLOW = -1, /* a flag sends the caller to the lock */
       CLAIM_BUSY = -2  /* the cell is still in use by a thread between claim and access */ };

/* Claim up to n positions to put at: returns how many (the first in *pos),
 * 0 when there is no room (full by maxsize, or the ring must grow),
 * CLAIM_SLOW, or CLAIM_BUSY when the get of the previous lap has claimed the
 * cell at tail but not finished reading it. Without the lock only cells
 * ready for the put are claimed, so that a thread never waits after
 * claiming and nobody waits behind a thread that waits; the lock holder
 * claims past the flags and busy cells, and ring_write waits for them. */
static inline __attribute__((always_inline)) int claim_put(cth_queue_t *q, int n, bool locked,
                                                          uint64_t *pos, struct ring **ring)
{
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    for (;;) {
        if ((t & SLOW) && !locked)
            return CLAIM_SLOW;
        uint64_t p = POS(t);
        struct ring *r = atomic_load_explicit(&q->ring, memory_order_acquire);
        if ((int64_t)(p - r->base) < 0) { /* a newer ring than this tail: out of date */
            t = atomic_load_explicit(&q->tail, memory_order_acquire);
            continue;
        }
        int64_t room = put_room(q, r, atomic_load_explicit(&q->head_seen, memory_order_relaxed), p);
        if (room < n) { /* the copy of head may be out of date */
            uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
            room = put_room(q, r, POS(h), p);
            if (room <= 0) /* full; if putters are parked, join them */
                return (h & SLOW) && !locked ? CLAIM_SLOW : 0;
            atomic_store_explicit(&q->head_seen, POS(h), memory_order_relaxed);
        }
        uint64_t k = room < n ? (uint64_t)room : (uint64_t)n;
        if (!locked) {
            uint64_t i = 0, turn = 0, lap = 0;
            while (i < k && (turn = atomic_load_explicit(&cell_at(r, p + i)->turn,
                                                         memory_order_acquire)) ==
                                (lap = lap_of(r, p + i)))
                i++;
            if (i == 0 && (int64_t)(turn - lap) > 0) { /* taken already: tail moved on */
                t = atomic_load_explicit(&q->tail, memory_order_acquire);
                continue;
            }
            if (i == 0)
                return CLAIM_BUSY;
            k = i;
        }
        Q_PREEMPT(Q_PUT_CLAIMING);
        if (atomic_compare_exchange_weak_explicit(&q->tail, &t, t + k, memory_order_acq_rel,
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
static inline __attribute__((always_inline)) void ring_write(cth_queue_t *q, struct ring *ring,
                                                             uint64_t p, void *const *items,
                                                             int k)
{
    Q_PREEMPT(Q_PUT_CLAIMED);
    bool checked = ring && atomic_load_explicit(&q->ring, memory_order_acquire) == ring;
    for (int i = 0; i < k; i++, p++) {
        struct ring *r = checked ? ring : ring_for(q, p);
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
static inline __attribute__((always_inline)) int claim_get(cth_queue_t *q, int n, bool locked,
                                                          uint64_t *pos, struct ring **ring)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        if ((h & SLOW) && !locked)
            return CLAIM_SLOW;
        uint64_t p = POS(h), k = 1;
        struct ring *r = ring_for(q, p);
        uint64_t lap = lap_of(r, p);
        uint64_t turn = atomic_load_explicit(&cell_at(r, p)->turn, memory_order_acquire);
        int64_t d = (int64_t)(turn - (lap + 1));
        if (d > 0) { /* taken already: head has moved on */
            h = atomic_load_explicit(&q->head, memory_order_relaxed);
            continue;
        }
        if (d == 0) { /* and the published cells after it, in this ring */
            while (k < (uint64_t)n && atomic_load_explicit(&cell_at(r, p + k)->turn,
                                                           memory_order_acquire) ==
                                          lap_of(r, p + k) + 1)
                k++;
        } else {
            uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
            uint64_t avail = POS(t) - p;
            if ((int64_t)avail <= 0)
                return (t & SLOW) && !locked ? CLAIM_SLOW : 0;
            if (!locked)
                return CLAIM_BUSY;
            k = avail < (uint64_t)n ? avail : (uint64_t)n;
        }
        Q_PREEMPT(Q_GET_CLAIMING);
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + k, memory_order_acq_rel,
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
static inline __attribute__((always_inline)) void ring_read(cth_queue_t *q, struct ring *ring,
                                                            uint64_t p, void **items, int k)
{
    Q_PREEMPT(Q_GET_CLAIMED);
    for (int i = 0; i < k; i++, p++) {
        struct ring *r = ring ? ring : ring_for(q, p);
        struct cell *c = cell_at(r, p);
        uint64_t lap = lap_of(r, p);
        if (!ring)
            await_turn(&c->turn, lap + 1); /* its put may still be writing */
        items[i] = c->item;
        atomic_store_explicit(&c->turn, lap + r->cap, memory_order_release);
    }
}

static inline __attribute__((always_inline)) int fifo_put_fast(cth_queue_t *q,
                                                               void *const *items, int n)
{
    uint64_t p;
    struct ring *r;
    int k = claim_put(q, n, false, &p, &r);
    if (k > 0)
        ring_write(q, r, p, items, k);
    return k;
}

static inline __attribute__((always_inline)) int fifo_get_fast(cth_queue_t *q, void **items,
                                                               int n)
{
    uint64_t p;
    struct ring *r;
    int k = claim_get(q, n, false, &p, &r);
    if (k > 0)
        ring_read(q, r, p, items, k);
    return k;
}

/* Whether a get may succeed now: the cell at head is published (with line:
 * so is the last cell of its cache line), head has moved on, or its flag is
 * set. What a spinning get watches, so as not to read the producers' line.
 * Waiting for a whole line lets the put fill it before the get takes it:
 * read cell by cell as it is written, a line goes back and forth between
 * the two cores once per item. */
static bool fifo_get_ready(cth_queue_t *q, bool line)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint64_t p = POS(h);
    struct ring *r = ring_for(q, p);
    if (line && r->cap >= CELLS_PER_LINE)
        p += CELLS_PER_LINE - 1 - ((p - r->base) & (CELLS_PER_LINE - 1));
    uint64_t turn = atomic_load_explicit(&cell_at(r, p)->turn, memory_order_relaxed);
    return (h & SLOW) || (int64_t)(turn - (lap_of(r, p) + 1)) >= 0;
}

static uint64_t fifo_count(cth_queue_t *q)
{
    uint64_t h = POS(atomic_load_explicit(&q->head, memory_order_acquire));
    return POS(atomic_load_explicit(&q->tail, memory_order_acquire)) - h;
}

/* maxsize as a bound on tail - head. */
static uint64_t fifo_maxlen(long maxsize)
{
    return maxsize > 0 ? (uint64_t)maxsize : UINT64_MAX >> 2;
}

/* The lock held and no room found for k more items: if the newest ring is
 * what is full, link a larger one after it, for the positions from tail on
 * (tail's flag is held meanwhile so that tail stays put). Returns 0 (grown,
 * or room appeared: try again), 1 (full by maxsize) or CTH_ENOMEM. */
static int fifo_grow(cth_queue_t *q, uint64_t k)
{
    long m = q->maxsize;
    if (m > 0 && fifo_count(q) >= (uint64_t)m)
        return 1;
    uint64_t t = atomic_fetch_or_explicit(&q->tail, SLOW, memory_order_acq_rel);
    uint64_t tail = POS(t), head = POS(atomic_load_explicit(&q->head, memory_order_acquire));
    struct ring *old = atomic_load_explicit(&q->ring, memory_order_relaxed);
    int r = 0;
    if (m > 0 && tail - head >= (uint64_t)m) {
        r = 1;
    } else if (put_room(q, old, head, tail) <= 0) {
        uint64_t cap = old->cap * 2, most = 1;
        while (cap < k)
            cap *= 2;
        while (m > 0 && most < (uint64_t)m)
            most *= 2;
        struct ring *nr = ring_alloc(m > 0 && most < cap ? most : cap, tail, old);
        Q_PREEMPT(Q_FROZEN);
        if (nr)
            atomic_store_explicit(&q->ring, nr, memory_order_release);
        else
            r = CTH_ENOMEM;
    }
    atomic_store_explicit(&q->tail, t, memory_order_release);
    return r;
}

/* Put up to n items into the ring (lock held), growing it as maxsize
 * allows: how many, or CTH_ENOMEM when none could be stored. */
static int fifo_push(cth_queue_t *q, void *const *items, int n)
{
    int done = 0;
    while (done < n) {
        uint64_t p;
        struct ring *ring;
        int k = claim_put(q, n - done, true, &p, &ring);
        if (k > 0) {
            ring_write(q, ring, p, items + done, k);
            done += k;
            continue;
        }
        int r = fifo_grow(q, (uint64_t)(n - done));
        if (r != 0)
            return done ? done : r > 0 ? 0 : r;
    }
    return done;
}

/* The lock held, a get found the ring empty: set tail's flag so that puts
 * come to the lock, if the ring is still empty. False if it is not. */
static bool fifo_mark_empty(cth_queue_t *q)
{
    for (;;) {
        uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (POS(t) != POS(h))
            return false;
        if ((t & SLOW) || atomic_compare_exchange_weak_explicit(&q->tail, &t, t | SLOW,
                                                                memory_order_acq_rel,
                                                                memory_order_relaxed))
            return true;
    }
}

/* The same for a put that found the queue full: set head's flag so that
 * gets come to the lock (and refill), if it is still full. */
static bool fifo_mark_full(cth_queue_t *q)
{
    for (;;) {
        uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
        if (POS(t) - POS(h) < (uint64_t)q->maxsize)
            return false;
        if ((h & SLOW) || atomic_compare_exchange_weak_explicit(&q->head, &h, h | SLOW,
                                                                memory_order_acq_rel,
                                                                memory_order_relaxed))
            return true;
    }
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
    return q->kind == CTH_QUEUE_FIFO ? (size_t)fifo_count(q) : q->count;
}

/* Store up to n items, as many as maxsize and memory allow: how many, or
 * CTH_ENOMEM when none could be stored though there was room. */
static int store_push(cth_queue_t *q, void *const *items, int n)
{
    if (q->kind == CTH_QUEUE_FIFO)
        return fifo_push(q, items, n);
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
    if (q->kind == CTH_QUEUE_FIFO) {
        uint64_t p;
        struct ring *r;
        int k = claim_get(q, n, true, &p, &r);
        if (k > 0)
            ring_read(q, r, p, items, k);
        return k;
    }
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

CTH_API int cth_queue_create(cth_queue_t **queue, size_t maxsize_arg,
                             const cth_queue_opts_t *opts)
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
    atomic_store_explicit(&q->spin, SPIN_MAX / 4, memory_order_relaxed);
    atomic_store_explicit(&q->park_spin, SPIN_MAX / 2, memory_order_relaxed);
    size_t cap = MIN_CAPACITY;
    while (maxsize > 0 && cap < (size_t)maxsize && cap < PREALLOC_MAX)
        cap *= 2;
    if (q->kind == CTH_QUEUE_FIFO) {
        struct ring *r = ring_alloc(cap, 0, NULL);
        if (!r) {
            cth__free(mem);
            return CTH_ENOMEM;
        }
        atomic_store_explicit(&q->ring, r, memory_order_relaxed);
        atomic_store_explicit(&q->maxlen, fifo_maxlen(maxsize), memory_order_relaxed);
    } else if (store_reserve(q, cap) != 0) {
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
    struct ring *r = atomic_load_explicit(&queue->ring, memory_order_relaxed);
    while (r) {
        struct ring *older = r->older;
        cth__free(r->mem);
        r = older;
    }
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
        } else if (q->kind != CTH_QUEUE_FIFO || fifo_mark_full(q)) {
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
        } else if (q->kind != CTH_QUEUE_FIFO || fifo_mark_empty(q)) {
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
        if ((r = fifo_put_fast(q, items, n)) > 0)
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

static __attribute__((noinline)) int get_more(cth_queue_t *q, void **items, int n,
                                              double timeout, int r)
{
    uint32_t budget = retryable(r) && timeout != 0 ? spin_budget(&q->spin) : 0;
    /* First half of the budget: wait for a line, where the queue holds a few. */
    bool line = atomic_load_explicit(&q->maxlen, memory_order_relaxed) >= 4 * CELLS_PER_LINE;
    for (uint32_t i = 1; i <= budget && retryable(r); i++) {
        cth__cpu_relax();
        if (fifo_get_ready(q, line && i <= budget / 2) && (r = fifo_get_fast(q, items, n)) > 0)
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
        (r = fifo_put_fast(q, items, n)) == n)
        return r;
    return put_more(q, items, n, timeout, r);
}

static inline __attribute__((always_inline)) int queue_get(cth_queue_t *q, void **items, int n,
                                                          double timeout)
{
    int r = CLAIM_SLOW;
    if (q->kind == CTH_QUEUE_FIFO && n > 0 && cth__check_timeout(timeout) == 0) {
        if ((r = fifo_get_fast(q, items, n)) > 0)
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
    return count_out(queue_get(queue, items, count_in(n), timeout), got);
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
        return (size_t)fifo_count(q);
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
        atomic_store_explicit(&queue->maxlen, fifo_maxlen(maxsize), memory_order_relaxed);
    refill(queue, &wk);
    qunlock(queue);
    wakeups_flush(&wk);
    return 0;
}

/* ---- task_done / join ------------------------------------------------------------- */

static uint64_t puts_so_far(cth_queue_t *q)
{
    return POS(atomic_load(&q->tail)) + atomic_load(&q->extra_puts);
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
        atomic_fetch_or_explicit(&queue->tail, SLOW, memory_order_acq_rel);
    struct waiter *w;
    while ((w = oldest(&queue->putters)))
        complete(&queue->putters, w, CTH_ESHUTDOWN, &wk);
    while ((w = oldest(&queue->getters)))
        complete(&queue->getters, w, CTH_ESHUTDOWN, &wk);
    if (immediate && queue->kind == CTH_QUEUE_FIFO) {
        /* Close the ring for good and wait for the puts still writing; the
         * items are freed outside the lock (nobody touches their cells now). */
        uint64_t h = atomic_fetch_or_explicit(&queue->head, SLOW, memory_order_acq_rel);
        uint64_t t = POS(atomic_load_explicit(&queue->tail, memory_order_acquire));
        fifo = true;
        first = POS(h);
        n = t - first;
        for (uint64_t p = first; p != t; p++) {
            struct ring *r = ring_for(queue, p);
            await_turn(&cell_at(r, p)->turn, lap_of(r, p) + 1);
        }
        atomic_store_explicit(&queue->head, t | SLOW, memory_order_release);
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
        drop_item(queue, fifo   ? cell_at(ring_for(queue, first + i), first + i)->item
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
