/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the thread pool: workers, the job queue and the task ring,
 * apply, map, starmap, parallel-for, the record and buffer calls, close,
 * terminate, join, and the memory of AsyncResults.
 *
 * State. pool->lock guards the queue of jobs (a doubly linked FIFO; `listed`
 * mirrors its length for lock-free readers), the pool's state (RUN, CLOSE,
 * TERMINATE; also read lock-free) and the list of worker threads. Jobs are
 * described in pool_internal.h: a worker takes the oldest job with an
 * unclaimed chunk under the lock, then keeps claiming that job's chunks
 * lock-free from its atomic counter, each claim made while it still holds
 * an unfinished chunk.
 *
 * The ring. A lone apply_async task submitted from outside the workers
 * while the queue is empty goes instead into a bounded lock-free ring
 * (Vyukov's MPMC queue, RING_CAP cells), and workers look there first: no
 * lock on either side. While the queue holds a job, new lone tasks go to
 * the queue too, so tasks still start in submission order; a full ring
 * also sends them there. A ring task belongs to the thread that pops it;
 * once the pool is terminated, whoever pops a task cancels it. Close and
 * terminate set RING_CLOSED in `enq`, which fails every push after it (no
 * counter of submitters on the submitting path): the positions below it
 * are the pushes that got in, some perhaps not yet published. Terminate
 * waits for `deq` to reach them, cancelling what it pops; a closed pool's
 * worker exits only once it has, and the worker that pops the last of them
 * wakes the others to see it; so no task is stranded.
 *
 * Parking. `seq` is bumped (seq_cst) by every event a worker may wait for
 * apart from a ring push (a queue submission, close, terminate, the cache
 * emptying); a worker reads it before looking for work, spins briefly on it
 * and on the ring if no other worker is spinning (one spinner at most),
 * then announces itself in `sleepers`, looks at the ring once more and
 * futex-waits on seq. The spinner yields the processor every SPIN_YIELD
 * pauses, leaving the spinner's place meanwhile: a submitter that shares
 * its CPU (the kernel put them together) then runs instead of waiting out
 * the spin, and what it pushes while the spinner is off the CPU wakes a
 * parked worker instead of waiting for it. A ring submitter wakes one
 * worker (seq bump, then wake) only if one is parked, none is already
 * being woken (see SLEEPER/WAKING) and none is spinning (`spinners`: the
 * spinner sees the ring itself); a queue submitter bumps seq and wakes
 * likewise for a lone task, up to one worker per chunk otherwise. The
 * seq_cst pairs make a lost wake-up impossible and keep the busy path free
 * of syscalls: on the ring, a push's claim (its compare-and-swap on enq)
 * and its publishing store come before its look at `sleepers` and
 * `spinners`; a parking worker's count in `sleepers` comes before its look
 * at enq (ring_pending, which sees a claim not yet published too: it
 * yields to that push rather than sleep), and a worker's leaving the
 * spinner's place before its look at the next cell. A worker that takes a
 * ring task, or leaves the spinner's place with any task, and sees more
 * published (a push that met it spinning, or a wake-up under way, woke
 * nobody) wakes one more the same way; a get() whose ring task is still
 * untaken after its spin (the spinner was preempted) wakes one too. A
 * worker out of chunks of a blocking job takes the spinner's place before
 * it finishes its last chunk, so a caller that submits its next job at once
 * finds a spinner and makes no system call.
 *
 * Blocking calls. A blocking map (of pointers, structs or records, on a
 * pool without an initializer) and parallel-for run chunks in the calling
 * thread too, as one of a team of as many threads as the pool has
 * workers: the submission wakes one worker fewer (a spinner is enough for
 * the first), and the caller then spins briefly for the team's last
 * chunks. The caller claims chunks from the front of the items and the
 * workers from the back (each core keeps writing the same results), and
 * workers join only a job the caller would not soon finish alone
 * (team_pace): a small map of trivial items shares no cache line. In the
 * main thread its tasks' waits are a worker's, and a posted interruption
 * stops it between chunks (job_help).
 *
 * Cache. `cache` counts the imap iterators still reading their producer
 * (Python's job cache): a closed pool's workers exit once nothing is
 * queued and the cache is zero.
 *
 * Memory. AsyncResults come from a free stack of batches refilled
 * RESULT_BLOCK at a time and go back to it (free_lock guards the stack,
 * the blocks, `live` and the writes of `dead`), through a cache of one
 * batch in each thread that uses a pool of threads, so that an apply_async
 * and a free take no lock most of the time (result_cache). A batch is an
 * array of its results kept in the first one's memory (free_batch), so
 * that a free writes nothing into the result it frees, and an allocation
 * prefetches the head of the result it will hand out PREFETCH_AHEAD
 * allocations later (each starts a cache line, cold when many are in
 * flight) without reading the ones between. `live` counts the results
 * and imap iterators alive, cached ones included; the pool's memory goes
 * when cth_pool_free has run and live is zero, so both may outlive the
 * pool.
 *
 * maxtasksperchild. A worker that has run that many chunks starts its
 * replacement (appended to the thread list before it exits, so join sees
 * it) and ends; if the replacement cannot start, it carries on.
 *
 * Backends. A pool over processes (pool_process.c) or MPI ranks
 * (libcthreading-mpi, through cth__pool_create_ops) has an ops table
 * (pool_internal.h) and its worker threads are proxies: each starts its
 * far worker when it starts and stops it when it exits (worker_main), and
 * runs record and buffer items there (cth__job_run_records); a job's data
 * is placed for the far side when it is submitted (cth__pool_job_prepare)
 * and released when it completes; an MPI pool's ranks are told to stop
 * once cth_pool_free has joined the proxies. A proxy may batch: while it
 * holds a chunk and no worker is idle, cth__pool_take_more claims more
 * record or buffer chunks for it without waiting, which it finishes itself
 * (cth__job_chunk_done).
 *
 * Batches. A backend with batches (processes, without maxtasksperchild)
 * gets a lone buffer job its worker thread took together with the lone
 * jobs queued behind it, as many as it asks for and accepts (take_lone:
 * the ring's, then the queue's head), and runs them as one (run_lone_batch);
 * a job taken that it does not accept runs next, alone or in a batch of
 * its own.
 *
 * Records and buffers. The record map (JOB_RECORDS), the record imaps
 * (JOB_IMAP with rec_fn) and the buffer apply (JOB_BUFFER) are jobs like
 * the others; their items run through cth__job_run_records alone, the one
 * place that knows the backend. A failure of any kind goes through
 * cth__job_fail (the first in completion order wins); a buffer job's
 * result buffer belongs to the job until it is handed to the caller.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cthreading/thread.h"
#include "platform.h"
#include "pool_internal.h"

enum { POOL_RUN = 0, POOL_CLOSE = 1, POOL_TERMINATE = 2 };

#define WORKER_SPIN 4000 /* pause iterations before parking (~20-90 us) */
#define SPIN_YIELD 256   /* pause iterations between yields in that spin */
/* Lone async tasks queued lock-free (a power of 2): enough for a burst of
 * a few hundred thousand; 16 bytes each, of address space only until
 * used. */
#define RING_CAP ((size_t)1 << 18)
#define RING_CLOSED (SIZE_MAX / 2 + 1) /* in enq: close or terminate has run */

/* A cell of the ring (Vyukov's bounded MPMC queue): seq == position when
 * free for the push at that position, position + 1 once it holds a job.
 * The cell stores seq minus its own index (cell_seq adds it back), so a
 * zeroed ring is an empty one: the cells come from calloc, and a page of
 * the ring costs memory only once the queue grows into it. A page must be
 * written before anyone reads it (ring_touch): read first, it maps the
 * shared zero page, and the first write then remaps it under the readers
 * (a TLB shoot-down across the workers' cores, tens of microseconds in a
 * VM).
 * The FIFO Queue's ring (queue_ring.h) is the same algorithm but not shared
 * on purpose: this one is fixed-size and best-effort (a full or busy ring
 * sends the task to the locked job queue), one item per operation, and its
 * claim must be ordered before the look at `sleepers`; the Queue's grows by
 * linking rings, claims batches, honours maxsize and takes busy cells under
 * its lock. */
struct ring_cell {
    _Atomic size_t seq; /* seq minus the cell's index */
    struct cth_result *job;
};

/* Padding keeps the hot words apart: the lock and the queue, the line
 * spinners poll (seq, the counters), `spinners`, the ring's two ends, the
 * words every submission reads (cells, backend: never beside a word that
 * changes per task), and the free list. (Padding rather than _Alignas: the
 * struct comes from malloc.) */
#define PAD(name) char name[64]

struct cth_pool {
    cth_lock_t lock;
    struct cth__list queue; /* jobs with chunks to claim (lock) */
    _Atomic int state;      /* written under lock */
    PAD(pad_lock);          /* the words a spinner polls apart from the lock's */
    _Atomic uint32_t seq;
    _Atomic uint32_t sleepers;
    _Atomic size_t cache;
    _Atomic size_t listed;     /* jobs linked in the queue */
    _Atomic int64_t team_join; /* when workers may join a team's job (see job_help) */
    PAD(pad0);
    _Atomic uint32_t spinners; /* changed as workers go idle and take work */
    PAD(pad1);
    _Atomic size_t enq; /* the next push's position; RING_CLOSED: no more pushes */
    PAD(pad2);
    _Atomic size_t deq;
    PAD(pad_deq);
    struct ring_cell *cells; /* the ring of lone async tasks (RING_CAP) */
    size_t nworkers;         /* at most INT_MAX */
    cth_pool_initializer_fn initializer;
    void *initarg;
    size_t maxtasks;
    cth_pool_backend_t backend;
    double task_timeout;    /* processes: a task's default timeout; 0 = none */
    cth_thread_t **threads; /* every worker ever started (lock) */
    size_t nthreads, cap;
    struct cth__list_node live_link; /* the live pools, then the freed ones (live_lock), for fork */
    bool freed_listed;               /* in the freed pools (set under live_lock) */
    const struct cth__pool_ops *ops; /* a backend beyond threads (processes, MPI), or NULL */
    void *ops_state;                 /* and its own state */
    PAD(pad3);
    cth_lock_t free_lock;        /* guards the next four */
    struct free_batch *free_top; /* recycled AsyncResults: a stack of batches */
    struct result_block *blocks; /* every block allocated */
    size_t live;                 /* results and imap iterators alive */
    _Atomic bool dead;           /* cth_pool_free has run (read without the lock too) */
    struct cth__shared shared;   /* cth_pool_shared_alloc's regions (pool_shared.c) */
};

#define RESULT_BLOCK 64 /* AsyncResults allocated at once */
#define LINE 64         /* a cache line */
/* A result's room in a block: whole cache lines, each result starting one
 * (its head then takes two lines: pool_internal.h). */
#define RESULT_STRIDE ((sizeof(struct cth_result) + LINE - 1) / LINE * LINE)

/* A block of results: this header, then RESULT_BLOCK results of
 * RESULT_STRIDE bytes from the first line boundary past it. */
struct result_block {
    struct result_block *next; /* not a list.h list: only pushed, then freed with the pool */
};

#define RESULT_BLOCK_SIZE (sizeof(struct result_block) + LINE - 1 + RESULT_BLOCK * RESULT_STRIDE)

/* Result i of block b. */
static struct cth_result *block_result(struct result_block *b, int i)
{
    uintptr_t first = ((uintptr_t)(b + 1) + LINE - 1) & ~(uintptr_t)(LINE - 1);
    return (struct cth_result *)(first + (size_t)i * RESULT_STRIDE);
}

/* the pool the calling worker serves (initial-exec, as the library's other
 * thread-locals: no __tls_get_addr call in every submission and wait) */
static _Thread_local cth_pool_t *tls_pool __attribute__((tls_model("initial-exec")));
static _Atomic unsigned worker_names;

/* ---- the queue ----------------------------------------------------------------- */

static void queue_unlink(cth_pool_t *p, struct cth_result *job)
{
    if (!job->linked)
        return;
    cth__list_remove(&p->queue, &job->link);
    job->linked = false;
    atomic_fetch_sub(&p->listed, 1);
}

/* ---- the ring ------------------------------------------------------------------ */

/* The cell of position pos, and its seq (acquire) and seq store. */
static struct ring_cell *ring_cell_at(cth_pool_t *p, size_t pos)
{
    return &p->cells[pos & (RING_CAP - 1)];
}

static size_t cell_seq(struct ring_cell *cell, size_t pos, memory_order order)
{
    return atomic_load_explicit(&cell->seq, order) + (pos & (RING_CAP - 1));
}

static void cell_publish(struct ring_cell *cell, size_t pos, size_t seq, memory_order order)
{
    atomic_store_explicit(&cell->seq, seq - (pos & (RING_CAP - 1)), order);
}

#define RING_PAGE (4096 / sizeof(struct ring_cell)) /* cells in a page */

/* Write page k of the ring (a read-modify-write that changes nothing: a
 * cell may be in use already), before any thread can read it: pages 0 and
 * 1 at creation, page k + 2 by the first push at the start of page k, on
 * the ring's first lap. */
static void ring_touch(struct ring_cell *cells, size_t k)
{
    if ((k + 1) * RING_PAGE <= RING_CAP)
        atomic_fetch_add_explicit(&cells[k * RING_PAGE].seq, 0, memory_order_relaxed);
}

/* Push a job: 0, CTH_EAGAIN when the ring is full, CTH_EINVAL once it is
 * closed (RING_CLOSED). The claim and the publishing store are seq_cst,
 * ordered before the submitter's look at sleepers and spinners (see the
 * top: Parking). */
static int ring_push(cth_pool_t *p, struct cth_result *job)
{
    size_t pos = atomic_load_explicit(&p->enq, memory_order_relaxed);
    for (;;) {
        if (pos & RING_CLOSED)
            return CTH_EINVAL;
        struct ring_cell *cell = ring_cell_at(p, pos);
        size_t seq = cell_seq(cell, pos, memory_order_acquire);
        if (seq == pos) {
            if (atomic_compare_exchange_weak_explicit(&p->enq, &pos, pos + 1, memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                cell->job = job;
                cell_publish(cell, pos, pos + 1, memory_order_seq_cst);
                /* after the publication: a page fault here must not keep
                 * parking workers looking at a claimed, unpublished cell */
                if (pos < RING_CAP && pos % RING_PAGE == 0)
                    ring_touch(p->cells, pos / RING_PAGE + 2);
                return 0;
            }
        } else if ((intptr_t)(seq - pos) < 0) {
            return CTH_EAGAIN;
        } else {
            pos = atomic_load_explicit(&p->enq, memory_order_relaxed);
        }
    }
}

/* Pop the oldest job, or NULL when the ring is empty (or its oldest push is
 * not yet published). */
static struct cth_result *ring_pop(cth_pool_t *p)
{
    size_t pos = atomic_load_explicit(&p->deq, memory_order_relaxed);
    for (;;) {
        struct ring_cell *cell = ring_cell_at(p, pos);
        size_t seq = cell_seq(cell, pos, memory_order_seq_cst);
        if (seq == pos + 1) {
            if (atomic_compare_exchange_weak_explicit(&p->deq, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                struct cth_result *job = cell->job;
                cell_publish(cell, pos, pos + RING_CAP, memory_order_release);
                return job;
            }
        } else if ((intptr_t)(seq - (pos + 1)) < 0) {
            return NULL;
        } else {
            pos = atomic_load_explicit(&p->deq, memory_order_relaxed);
        }
    }
}

/* Close the ring to pushes; returns the end of those that got in. */
static size_t ring_close(cth_pool_t *p)
{
    return atomic_fetch_or(&p->enq, RING_CLOSED) & ~RING_CLOSED;
}

/* Whether the ring is closed and every push that got in has been popped. */
static bool ring_drained(cth_pool_t *p)
{
    size_t enq = atomic_load(&p->enq);
    return (enq & RING_CLOSED) && atomic_load(&p->deq) == (enq & ~RING_CLOSED);
}

/* Whether the ring holds a published job. */
static bool ring_ready(cth_pool_t *p)
{
    size_t pos = atomic_load(&p->deq);
    return cell_seq(ring_cell_at(p, pos), pos, memory_order_seq_cst) == pos + 1;
}

/* Whether a push has claimed a position no pop has taken, published or not
 * (seq_cst: a parking worker's side of the pairing with the push's claim,
 * see the top). */
static bool ring_pending(cth_pool_t *p)
{
    size_t end = atomic_load(&p->enq) & ~RING_CLOSED;
    return end != atomic_load(&p->deq);
}

/* `sleepers` counts the workers in the parking path in two fields: those
 * parked (SLEEPER units) and those being woken (WAKING units), a waker
 * moving one from the first to the second. Each worker leaving takes a
 * WAKING unit if there is one, else its own: the sum stays the number
 * inside, and a WAKING unit always has a worker on its way out to take
 * it. While one is on its way, lone tasks wake nobody more (no storm of
 * wake-ups while the first is still coming). */
#define SLEEPER 1u
#define WAKING 0x10000u

/* Claim a parked worker to wake: false if none, if one is already being
 * woken, or (spinner_enough) if a worker is spinning and will see the work.
 * The claim comes before the caller's seq bump, so the claimed worker's
 * futex wait cannot miss it. */
static bool claim_sleeper(cth_pool_t *p, bool spinner_enough)
{
    uint32_t w = atomic_load(&p->sleepers);
    while ((w & (WAKING - 1)) && w < WAKING) {
        if (spinner_enough && atomic_load(&p->spinners))
            return false;
        if (atomic_compare_exchange_weak(&p->sleepers, &w, w - SLEEPER + WAKING))
            return true;
    }
    return false;
}

/* Wake one parked worker for a lone task (see claim_sleeper). */
static void wake_one(cth_pool_t *p, bool spinner_enough)
{
    if (claim_sleeper(p, spinner_enough)) {
        atomic_fetch_add(&p->seq, 1);
        cth__futex_wake(&p->seq, 1);
    }
}

/* A worker leaves the parking path. */
static void leave_parking(cth_pool_t *p)
{
    uint32_t w = atomic_load(&p->sleepers);
    while (!atomic_compare_exchange_weak(&p->sleepers, &w, w >= WAKING ? w - WAKING : w - SLEEPER))
        ;
}

/* Announce an event (seq, which spinners watch); wake up to n parked
 * workers. A lone task (n == 1) wakes as wake_one does. */
static void wake_workers(cth_pool_t *p, int n)
{
    bool one = n == 1 && claim_sleeper(p, true);
    atomic_fetch_add(&p->seq, 1);
    if (one)
        cth__futex_wake(&p->seq, 1);
    else if (n > 1 && atomic_load(&p->sleepers))
        cth__futex_wake(&p->seq, n);
}

/* The chunk that claim ticket c (below nchunks) of job gives: c, or for a
 * two_ended job the next from the front (front: the team's caller) or from
 * the back (a worker). The tickets bound the chunks handed out from both
 * ends together, so the two never meet on a chunk; and each thread keeps
 * to the same end of the items from one map to the next, so the results'
 * cache lines stay with the core that writes them. */
static size_t ticket_chunk(struct cth_result *job, size_t c, bool front)
{
    if (!job->two_ended)
        return c;
    if (front)
        return atomic_fetch_add_explicit(&job->front, 1, memory_order_relaxed);
    return job->nchunks - 1 - atomic_fetch_add_explicit(&job->back, 1, memory_order_relaxed);
}

/* Claim the next chunk of a job the caller keeps alive (front: see
 * ticket_chunk); SIZE_MAX when none is left. The claimer of the last chunk
 * unlinks the job. */
static size_t job_claim(struct cth_result *job, bool front)
{
    if (atomic_load_explicit(&job->claim, memory_order_relaxed) >= job->nchunks)
        return SIZE_MAX;
    size_t c = atomic_fetch_add(&job->claim, 1);
    if (c >= job->nchunks)
        return SIZE_MAX;
    if (c == job->nchunks - 1) {
        cth__lock_acquire_keeping_interrupt(&job->pool->lock);
        queue_unlink(job->pool, job);
        cth_lock_release(&job->pool->lock);
    }
    return ticket_chunk(job, c, front);
}

/* The first failure in completion order wins, and its value is written
 * before the caller finishes the chunk, so whoever completes the job sees
 * it. */
void cth__job_fail(struct cth_result *job, int code, int value)
{
    if (job->kind == JOB_IMAP) {
        cth__imap_fail(job, code, value);
        return;
    }
    int zero = 0;
    if (atomic_compare_exchange_strong(&job->err, &zero, code))
        job->task_error = value;
}

/* Where record i of a block of records of size bytes is: NULL for size 0. */
static void *record_at(const char *base, size_t size, size_t i)
{
    return size ? (void *)(base + i * size) : NULL;
}

void cth__job_run_records(struct cth_result *job, size_t lo, size_t hi)
{
    cth_pool_t *p = job->pool;
    if (p->ops && p->ops->run_items(p->ops_state, job, lo, hi))
        return;
    if (job->kind == JOB_BUFFER) {
        void *buf = NULL;
        size_t len = 0;
        int r = job->buf_fn(job->in_size ? job->in : NULL, job->in_size, &buf, &len);
        if (r != 0) {
            free(buf); /* the task's, from malloc() */
            cth__job_fail(job, CTH_ETASK, r);
            return;
        }
        if (len == 0) { /* an empty buffer is NULL */
            free(buf);
            buf = NULL;
        }
        job->buf = buf;
        job->buf_size = buf ? len : 0;
        return;
    }
    for (size_t i = lo; i < hi; i++) {
        int r = job->rec_fn(record_at(job->in, job->in_size, i),
                            record_at(job->out, job->out_size, i));
        if (r != 0) {
            cth__job_fail(job, CTH_ETASK, r);
            break;
        }
    }
}

/* The items [lo, hi) of a map (stride sizeof(void *): items is an array of
 * pointers, each passed) or a starmap (stride: the struct size, each
 * struct's address passed). The job's fields are read once: the task is
 * opaque to the compiler, which would reload them after every call.
 * Each task stores straight into its results slot, cleared first (a task
 * that stores nothing leaves NULL; a failing one's slot ends NULL), not
 * into a local copied afterwards, which cost a trivial item measurably.
 * Without results every task stores into one local, cleared before each
 * task. A map may run in place (results over items): each item is read
 * before its slot is cleared.
 * A map's chunk runs a cache line of slots at a time, unrolled, and
 * before each line asks for the items and slots MAP_PREFETCH items ahead
 * (its last MAP_PREFETCH items or so, and a smaller chunk's, go one by one):
 * trivial tasks leave the hardware's prefetchers behind, and the unrolled
 * loop runs them faster even in cache (run_map_lines). run_map_items is
 * aligned to a cache line, which places its per-item loop (a few dozen
 * bytes) inside one 64-byte block of code: placed across two, a map of
 * small chunks of trivial items ran slower. */
#define MAP_PREFETCH 256
#define MAP_LINE 8 /* slots a cache line */

/* Run item i of a map into its slot; returns the task's value. */
static inline int run_map_item(cth_pool_fn fn, void *const *items, void **results, size_t i)
{
    void *item = items[i];
    results[i] = NULL;
    return fn(item, &results[i]);
}

/* The items of a map with results from lo on, a cache line of slots at a
 * time, while a line and MAP_PREFETCH items or more are left before hi.
 * Returns the first item it did not run, or SIZE_MAX after a failure. */
static __attribute__((noinline)) size_t run_map_lines(struct cth_result *job, size_t lo, size_t hi)
{
    cth_pool_fn fn = job->fn;
    void *const *items = (void *const *)job->items;
    void **results = job->results;
    size_t i = lo;
    for (; hi - i >= MAP_PREFETCH + MAP_LINE; i += MAP_LINE) {
        __builtin_prefetch(items + i + MAP_PREFETCH, 0);
        __builtin_prefetch(results + i + MAP_PREFETCH, 1);
#pragma GCC unroll 8 /* MAP_LINE */
        for (size_t k = 0; k < MAP_LINE; k++) {
            int r = run_map_item(fn, items, results, i + k);
            if (r != 0) {
                results[i + k] = NULL;
                cth__job_fail(job, CTH_ETASK, r);
                return SIZE_MAX;
            }
        }
    }
    return i;
}

static void run_map_discard(struct cth_result *job, size_t lo, size_t hi)
{
    cth_pool_fn fn = job->fn;
    void *const *items = (void *const *)job->items;
    void *discard;
    for (size_t i = lo; i < hi; i++) {
        discard = NULL; /* each task finds its slot cleared, as with results */
        int r = fn(items[i], &discard);
        if (r != 0) {
            cth__job_fail(job, CTH_ETASK, r);
            return;
        }
    }
}

static __attribute__((noinline, aligned(64))) void run_map_items(struct cth_result *job, size_t lo,
                                                                 size_t hi)
{
    cth_pool_fn fn = job->fn;
    void *const *items = (void *const *)job->items;
    void **results = job->results;
    if (!results) {
        run_map_discard(job, lo, hi);
        return;
    }
    if (hi - lo >= MAP_PREFETCH + MAP_LINE && (lo = run_map_lines(job, lo, hi)) == SIZE_MAX)
        return;
    for (size_t i = lo; i < hi; i++) {
        int r = run_map_item(fn, items, results, i);
        if (r != 0) {
            results[i] = NULL;
            cth__job_fail(job, CTH_ETASK, r);
            return;
        }
    }
}

/* run_map_lines for a starmap not in place. It asks for the slots ahead
 * only: asking for the structs too ran structs of 24 or 32 bytes slower
 * (more requests a line of slots, which the hardware's prefetchers served
 * already). */
static __attribute__((noinline)) size_t run_starmap_lines(struct cth_result *job, size_t lo,
                                                          size_t hi)
{
    cth_pool_fn fn = job->fn;
    const char *items = job->items;
    size_t size = job->size;
    void **results = job->results;
    size_t i = lo;
    for (; hi - i >= MAP_PREFETCH + MAP_LINE; i += MAP_LINE) {
        __builtin_prefetch(results + i + MAP_PREFETCH, 1);
#pragma GCC unroll 8 /* MAP_LINE */
        for (size_t k = 0; k < MAP_LINE; k++) {
            results[i + k] = NULL;
            int r = fn((void *)(items + (i + k) * size), &results[i + k]);
            if (r != 0) {
                results[i + k] = NULL;
                cth__job_fail(job, CTH_ETASK, r);
                return SIZE_MAX;
            }
        }
    }
    return i;
}

static __attribute__((noinline)) void run_starmap_items(struct cth_result *job, size_t lo,
                                                        size_t hi)
{
    cth_pool_fn fn = job->fn;
    const char *items = job->items;
    size_t size = job->size;
    void *discard = NULL;
    size_t step = job->results ? 1 : 0;
    /* In place (results over args of one pointer each): a task's args are
     * its slot, so it stores through a local, copied once it has run. */
    bool in_place = (const char *)job->results == items;
    if (job->results && !in_place && hi - lo >= MAP_PREFETCH + MAP_LINE &&
        (lo = run_starmap_lines(job, lo, hi)) == SIZE_MAX)
        return;
    void **out = job->results ? job->results + lo : &discard;
    void *v = NULL;
    for (size_t i = lo; i < hi; i++, out += step) {
        void **slot = in_place ? &v : out;
        *slot = NULL;
        int r = fn((void *)(items + i * size), slot);
        if (r != 0) {
            *out = NULL;
            cth__job_fail(job, CTH_ETASK, r);
            return;
        }
        if (in_place)
            *out = v;
    }
}

static __attribute__((noinline)) void run_for_items(struct cth_result *job, size_t lo, size_t hi)
{
    cth_pool_for_fn fn = job->for_fn;
    void *arg = job->arg;
    for (size_t i = lo; i < hi; i++) {
        int r = fn(arg, i);
        if (r != 0) {
            cth__job_fail(job, CTH_ETASK, r);
            return;
        }
    }
}

static void job_run_chunk(struct cth_result *job, size_t c)
{
    size_t lo = c * job->chunksize;
    size_t hi = lo + job->chunksize < job->n ? lo + job->chunksize : job->n;
    switch (job->kind) {
    case JOB_APPLY:
    case JOB_MAP: run_map_items(job, lo, hi); break;
    case JOB_STARMAP: run_starmap_items(job, lo, hi); break;
    case JOB_FOR: run_for_items(job, lo, hi); break;
    case JOB_RECORDS:
    case JOB_BUFFER: cth__job_run_records(job, lo, hi); break;
    default: cth__imap_run(job, lo, hi); break;
    }
}

/* k chunks of job are finished; the last one completes it. A job of one
 * chunk has one finisher (its claimer, or the canceller of an unclaimed
 * one), which needs no read-modify-write to know it is the last. */
static void job_finish(struct cth_result *job, size_t k)
{
    if (job->nchunks == 1 || atomic_fetch_sub(&job->remaining, k) == k)
        cth__job_complete(job);
}

/* Drop the chunks nobody claimed yet. The caller holds the pool lock and
 * keeps the job alive. Returns the first dropped chunk, or SIZE_MAX. */
static size_t job_cancel_locked(cth_pool_t *p, struct cth_result *job)
{
    size_t c = atomic_fetch_add(&job->claim, JOB_CANCEL_BIAS);
    queue_unlink(p, job);
    return c < job->nchunks ? c : SIZE_MAX;
}

/* Finish the dropped chunks [c, nchunks) with CTH_ECANCELED. */
static void job_cancel_finish(struct cth_result *job, size_t c)
{
    if (job->kind == JOB_IMAP)
        cth__imap_cancel(job, c * job->chunksize, job->n);
    else
        atomic_store(&job->err, CTH_ECANCELED);
    job_finish(job, job->nchunks - c);
}

/* Run a chunk of a job the caller has claimed, and finish it. */
static void job_run_one(struct cth_result *job, size_t c)
{
    job_run_chunk(job, c);
    job_finish(job, 1);
}

/* Workers join a team's job (a blocking map the caller helps with) only
 * where they shorten it: the chunks' cache lines (the job's, the results')
 * then move between cores, a cost of about a microsecond here. So a worker
 * does not join before TEAM_WAIT_NS after the submission unless the
 * caller's first chunk shows that, at its pace, the caller alone has
 * TEAM_JOIN_NS or more of chunks left; if it has less, none joins before
 * twice that time has passed (a caller that falls behind, preempted, gets
 * help). pool->team_join holds the time from which workers may join (0:
 * now); it is a hint, one for the whole pool: another team's job only
 * moves it. */
#define TEAM_WAIT_NS 1000
#define TEAM_JOIN_NS 2000

/* The caller of a team's job ran its first chunk, started at t0: let the
 * workers in now or later (see above). */
static void team_pace(struct cth_result *job, int64_t t0)
{
    int64_t now = cth__now_ns();
    size_t c = atomic_load_explicit(&job->claim, memory_order_relaxed);
    double need = (double)(now - t0) * (double)(c < job->nchunks ? job->nchunks - c : 0);
    int64_t join = need >= TEAM_JOIN_NS ? 0 : now + 2 * (int64_t)need + 1;
    atomic_store_explicit(&job->pool->team_join, join, memory_order_relaxed);
}

/* Run the job's unclaimed chunks in the calling thread, and finish them
 * together once none is left to claim (as a worker does): one atomic on
 * the job's shared counter instead of one a chunk, and the job cannot
 * complete meanwhile. In the main thread the tasks' own waits do not take
 * an interruption (as on a worker); it stops the help between chunks, and
 * the wait the caller goes to next reports it and drops the chunks still
 * unclaimed. */
static void job_help(struct cth_result *job)
{
    bool deferred = cth__wait_interrupt_deferred; /* a map run by a task the main thread runs */
    bool interruptible = !deferred && cth__is_main_thread();
    cth__wait_interrupt_deferred = deferred || interruptible;
    size_t c, held = 0;
    int64_t t0 = job->two_ended ? cth__now_ns() : 0;
    while (!(interruptible && cth__interrupt_pending()) && (c = job_claim(job, true)) != SIZE_MAX) {
        job_run_chunk(job, c);
        if (held++ == 0 && job->two_ended)
            team_pace(job, t0);
    }
    /* out of chunks (or interrupted): nothing to wait for */
    if (job->two_ended && atomic_load_explicit(&job->pool->team_join, memory_order_relaxed))
        atomic_store_explicit(&job->pool->team_join, 0, memory_order_relaxed);
    if (held)
        job_finish(job, held);
    cth__wait_interrupt_deferred = deferred;
}

/* Pop a ring job to run (its only chunk is the caller's); once the pool is
 * terminated, cancel whatever it pops instead. NULL when the ring is empty.
 * Whoever pops the last job of a closed ring wakes the workers: a closed
 * pool's may now exit (the state is read after the pop, the ring closed
 * after the state is set). */
static struct cth_result *ring_take(cth_pool_t *p)
{
    struct cth_result *job;
    while ((job = ring_pop(p)) != NULL) {
        int st = atomic_load(&p->state);
        if (st != POOL_RUN && ring_drained(p))
            wake_workers(p, INT32_MAX);
        if (st != POOL_TERMINATE) {
            atomic_store_explicit(&job->claim, 1, memory_order_relaxed);
            return job;
        }
        job_cancel_finish(job, 0);
    }
    return NULL;
}

void cth__job_setup(struct cth_result *job, cth_pool_t *pool, uint8_t kind, size_t n,
                    size_t chunksize)
{
    job->pool = pool;
    job->kind = kind;
    job->n = n;
    job->chunksize = chunksize ? chunksize : 1;
    job->nchunks = n / job->chunksize + (n % job->chunksize != 0); /* any chunksize */
    atomic_init(&job->claim, 0); /* front and back: zero from the initializer, read if two_ended */
    atomic_init(&job->remaining, job->nchunks);
    atomic_init(&job->err, 0);
    atomic_init(&job->state, JOB_PENDING);
}

int cth__pool_job_prepare(cth_pool_t *p, struct cth_result *job)
{
    bool records = job->kind == JOB_RECORDS || job->kind == JOB_BUFFER ||
                   (job->kind == JOB_IMAP && job->rec_fn);
    if (!records || job->proc)
        return 0;
    double t = job->cb.task_timeout;
    if (p->ops && (isnan(t) || t < 0))
        return CTH_EINVAL;
    if (p->ops && t > CTH_TIMEOUT_MAX)
        return CTH_EOVERFLOW;
    cth__shared_hold(p, job); /* records in a shared allocation: in place */
    if (!p->ops)
        return 0;
    job->task_timeout = t > 0 ? t : p->task_timeout;
    int err = p->ops->job_prepare(p->ops_state, job);
    if (err)
        cth__shared_drop(job);
    return err;
}

/* Queue a job (cth__pool_submit); helping: the submitter runs chunks too,
 * in place of a worker, so one worker fewer is woken (none for a job of one
 * chunk or a pool of one worker). */
static int pool_submit(cth_pool_t *p, struct cth_result *job, bool internal, bool helping)
{
    int err = cth__pool_job_prepare(p, job);
    if (err)
        return err;
    cth__lock_acquire_keeping_interrupt(&p->lock);
    int st = atomic_load(&p->state);
    if (st == POOL_TERMINATE || (st == POOL_CLOSE && !internal)) {
        cth_lock_release(&p->lock);
        cth__job_release_data(job);
        return CTH_EINVAL;
    }
    if (job->two_ended) /* no worker joins before its caller's first chunk shows the pace */
        atomic_store_explicit(&p->team_join, cth__now_ns() + TEAM_WAIT_NS, memory_order_relaxed);
    cth__list_push_back(&p->queue, &job->link);
    job->linked = true;
    atomic_fetch_add(&p->listed, 1);
    /* read before unlocking: a worker may complete and free the job */
    size_t wake = job->nchunks < p->nworkers ? job->nchunks : p->nworkers;
    cth_lock_release(&p->lock);
    wake_workers(p, (int)(wake - helping));
    return 0;
}

int cth__pool_submit(cth_pool_t *p, struct cth_result *job, bool internal)
{
    return pool_submit(p, job, internal, false);
}

bool cth__pool_is_process(const cth_pool_t *p)
{
    return p->backend != CTH_POOL_THREADS;
}

void cth__job_release_data(struct cth_result *job)
{
    cth_pool_t *p = job->pool;
    if (p->ops && job->proc)
        p->ops->job_release(p->ops_state, job);
    /* only record jobs hold regions: another's region fields (on a line
     * of its own) are never read */
    if (job->kind == JOB_RECORDS || job->kind == JOB_IMAP)
        cth__shared_drop(job);
}

bool cth__pool_running(const cth_pool_t *p)
{
    return atomic_load(&p->state) == POOL_RUN;
}

size_t cth__pool_workers(const cth_pool_t *p)
{
    return p->nworkers;
}

void cth__pool_cache_hold(cth_pool_t *p)
{
    atomic_fetch_add(&p->cache, 1);
}

void cth__pool_cache_release(cth_pool_t *p)
{
    if (atomic_fetch_sub(&p->cache, 1) == 1 && atomic_load(&p->state) == POOL_CLOSE)
        wake_workers(p, INT32_MAX);
}

int cth__job_wait(struct cth_result *job, int64_t deadline)
{
    cth_pool_t *p = job->pool;
    if (tls_pool == p && job->in_ring) {
        /* a worker awaiting a lone task: run ring tasks until it is taken */
        struct cth_result *other;
        while (atomic_load_explicit(&job->state, memory_order_acquire) != JOB_DONE &&
               (other = ring_take(p)) != NULL)
            job_run_one(other, 0);
    } else if (tls_pool == p) {
        job_help(job);
    }
    for (int i = 0; i < WORKER_SPIN / 4; i++) {
        if (atomic_load_explicit(&job->state, memory_order_acquire) == JOB_DONE)
            return 0;
        cth__cpu_relax();
    }
    /* Still not taken after the spin: the worker that was spinning when it
     * was pushed (so nobody was woken) may have been preempted. Wake one. */
    if (job->in_ring && atomic_load_explicit(&job->claim, memory_order_relaxed) == 0)
        wake_one(p, false);
    for (;;) {
        uint32_t s = atomic_load_explicit(&job->state, memory_order_acquire);
        if (s == JOB_DONE)
            return 0;
        if (s == JOB_PENDING &&
            !atomic_compare_exchange_strong(&job->state, &s, (uint32_t)JOB_WAITED))
            continue;
        int r = cth__futex_wait(&job->state, JOB_WAITED, deadline);
        if (r < 0 && atomic_load_explicit(&job->state, memory_order_acquire) != JOB_DONE)
            return r;
    }
}

/* ---- workers -------------------------------------------------------------------- */

/* Claim a chunk of the oldest queued job that has one (records_only: of a
 * record map or a buffer apply), under the lock. */
static struct cth_result *list_take(cth_pool_t *p, size_t *chunk, bool records_only)
{
    struct cth_result *found = NULL;
    cth__lock_acquire_keeping_interrupt(&p->lock);
    for (struct cth__list_node *node = p->queue.first; node; node = node->next) {
        struct cth_result *job = cth__list_entry(node, struct cth_result, link);
        if (records_only && job->kind != JOB_RECORDS && job->kind != JOB_BUFFER)
            continue;
        if (atomic_load_explicit(&job->claim, memory_order_relaxed) >= job->nchunks)
            continue;
        size_t c = atomic_fetch_add(&job->claim, 1);
        if (c >= job->nchunks)
            continue;
        if (c == job->nchunks - 1)
            queue_unlink(p, job);
        *chunk = ticket_chunk(job, c, false);
        found = job;
        break;
    }
    cth_lock_release(&p->lock);
    return found;
}

/* Whether a closed pool's worker may exit: nothing queued and nothing on
 * its way (the ring, closed before the state is seen here, drained). */
static bool may_exit(cth_pool_t *p)
{
    return ring_drained(p) && atomic_load(&p->listed) == 0 && atomic_load(&p->cache) == 0;
}

/* Become the one spinner if there is none. */
static bool take_spinner(cth_pool_t *p)
{
    uint32_t none = 0;
    return atomic_compare_exchange_strong(&p->spinners, &none, 1);
}

/* Take a chunk to run: ring tasks first (while the queue holds a job, new
 * lone tasks go to the queue, so the ring's are the older), then the
 * queue's. NULL when the worker must exit. Spins, then parks while there
 * is nothing to do. spinner: the caller holds the spinner's place already
 * (taken before it finished its last job, so that a caller submitting its
 * next job at once finds it and wakes nobody); it keeps it while it looks
 * again after a change, and gives it up when it takes work or parks. */
static struct cth_result *take_work(cth_pool_t *p, size_t *chunk, bool spinner)
{
    struct cth_result *job = NULL;
    for (;;) {
        uint32_t seq = atomic_load(&p->seq);
        int st = atomic_load(&p->state);
        if (st == POOL_TERMINATE)
            break;
        if ((job = ring_take(p)) != NULL) {
            *chunk = 0;
            break;
        }
        size_t listed = atomic_load(&p->listed);
        int64_t join = listed == 1 ? atomic_load_explicit(&p->team_join, memory_order_relaxed) : 0;
        if (join && !spinner)
            spinner = take_spinner(p);
        if (join && spinner) {
            /* a team's job its caller may finish alone (team_pace), and
             * nothing else queued: the spinner waits till it is due,
             * reading nothing but the clock. The words it would poll are
             * on the line the team's caller writes as it goes (team_join,
             * listed, seq), and each read there costs the caller a miss;
             * what comes meanwhile (a ring task, a job, close) waits for
             * it, at most twice TEAM_JOIN_NS. Then it looks again; a
             * worker woken for the job joins at once. */
            while (cth__now_ns() < join)
                cth__cpu_relax();
            if (atomic_load_explicit(&p->team_join, memory_order_relaxed) == join)
                atomic_compare_exchange_strong(&p->team_join, &join, 0);
            continue;
        }
        if (listed && (job = list_take(p, chunk, false)) != NULL)
            break;
        if (st == POOL_CLOSE && may_exit(p))
            break;
        /* one spinner at a time (it wakes another if it finds more work):
         * the others park at once, leaving the cores to the submitters */
        spinner = spinner || take_spinner(p);
        int spin = 0;
        while (spinner && spin < WORKER_SPIN &&
               atomic_load_explicit(&p->seq, memory_order_relaxed) == seq && !ring_ready(p)) {
            cth__cpu_relax();
            if (++spin % SPIN_YIELD == 0) { /* see the top: Parking */
                atomic_fetch_sub(&p->spinners, 1);
                sched_yield();
                spinner = take_spinner(p);
            }
        }
        if (!spinner || spin == WORKER_SPIN) {
            /* sleepers up before spinners down, both before the ring is
             * looked at again and the futex re-reads seq: a submitter sees
             * one or the other, or its task is seen here */
            atomic_fetch_add(&p->sleepers, SLEEPER);
            if (spinner)
                atomic_fetch_sub(&p->spinners, 1);
            spinner = false;
            if (!ring_pending(p))
                cth__futex_wait(&p->seq, seq, CTH__NO_DEADLINE);
            else if (!ring_ready(p))
                sched_yield(); /* a push between its claim and its store: let it finish */
            leave_parking(p);
        }
    }
    bool was_spinner = spinner;
    if (spinner)
        atomic_fetch_sub(&p->spinners, 1);
    /* More lone tasks and nobody to notice them: wake a sleeper. A push
     * that saw us spinning, or found a wake-up under way, woke nobody; its
     * publishing store comes before its look at spinners and sleepers, and
     * our change to those before this look at the cell, so one of the two
     * sees the other. (Looking at enq instead would pull the submitters'
     * line at every take.) */
    if (job && (job->in_ring || was_spinner) && ring_ready(p))
        wake_one(p, true);
    return job;
}

struct cth_result *cth__pool_take_more(struct cth_result *job, size_t *chunk)
{
    cth_pool_t *p = job->pool;
    if (atomic_load(&p->sleepers) || atomic_load(&p->spinners))
        return NULL; /* an idle worker takes the rest */
    size_t c;
    if (job->kind == JOB_RECORDS && (c = job_claim(job, false)) != SIZE_MAX) {
        *chunk = c;
        return job;
    }
    struct cth_result *more = p->ops ? ring_take(p) : NULL; /* buffer applies alone there */
    if (more) {
        *chunk = 0;
        return more;
    }
    if (atomic_load(&p->state) != POOL_TERMINATE && atomic_load(&p->listed))
        return list_take(p, chunk, true);
    return NULL;
}

size_t cth__pool_backlog(struct cth_result *job)
{
    cth_pool_t *p = job->pool;
    size_t deq = atomic_load_explicit(&p->deq, memory_order_relaxed);
    size_t enq = atomic_load_explicit(&p->enq, memory_order_relaxed) & ~RING_CLOSED;
    size_t n = enq > deq ? enq - deq : 0;
    size_t c = atomic_load_explicit(&job->claim, memory_order_relaxed);
    if (job->kind == JOB_RECORDS && c < job->nchunks)
        n += job->nchunks - c;
    return n + atomic_load_explicit(&p->listed, memory_order_relaxed);
}

void cth__job_chunk_done(struct cth_result *job)
{
    job_finish(job, 1);
}

/* Take the oldest lone job (one chunk): the ring's, or the queue's first
 * if it is lone (a job behind a map's chunks waits for them). NULL if
 * none. */
static struct cth_result *take_lone(cth_pool_t *p)
{
    struct cth_result *job = ring_take(p);
    if (job || !atomic_load(&p->listed))
        return job;
    cth__lock_acquire_keeping_interrupt(&p->lock);
    job = cth__list_entry(p->queue.first, struct cth_result, link);
    if (job && (job->nchunks != 1 || atomic_load(&p->state) == POOL_TERMINATE ||
                atomic_fetch_add(&job->claim, 1) != 0))
        job = NULL;
    if (job)
        queue_unlink(p, job);
    cth_lock_release(&p->lock);
    return job;
}

#define BATCH_MAX 64 /* lone jobs a backend runs at once, at most */

/* A worker thread of a backend with batches took a lone job: it takes the
 * lone jobs behind it, as many as the backend asks for and takes, runs them
 * as one batch and finishes them. Returns the job taken that did not fit
 * (to run next), or NULL. */
static struct cth_result *run_lone_batch(cth_pool_t *p, struct cth_result *first)
{
    struct cth_result *batch[BATCH_MAX], *left = NULL;
    size_t room = p->ops->batch_room(p->ops_state, first), k = 1;
    batch[0] = first;
    while (k < room && k < BATCH_MAX && (left = take_lone(p)) != NULL) {
        if (!p->ops->batch_fits(p->ops_state, batch, k, left))
            break;
        batch[k++] = left;
        left = NULL;
    }
    p->ops->run_batch(p->ops_state, batch, k);
    for (size_t i = 0; i < k; i++)
        job_finish(batch[i], 1);
    return left;
}

static int spawn_worker(cth_pool_t *p);

/* A worker that has run maxtasks chunks: start the replacement. */
static bool retire(cth_pool_t *p)
{
    if (atomic_load(&p->state) == POOL_TERMINATE)
        return true;
    return spawn_worker(p) == 0;
}

static void *worker_main(void *arg)
{
    cth_pool_t *p = arg;
    tls_pool = p;
    if (p->ops) { /* a proxy: the backend's worker runs the initializer */
        if (!p->ops->proxy_start(p->ops_state))
            return NULL;
    } else if (p->initializer) {
        p->initializer(p->initarg);
    }
    size_t done = 0;
    struct cth_result *job = NULL;
    size_t c = 0;
    bool spinner = false;
    bool batches = p->ops && p->ops->run_batch && !p->maxtasks;
    while (job || (job = take_work(p, &c, spinner)) != NULL) {
        spinner = false;
        if (batches && job->kind == JOB_BUFFER) {
            job = run_lone_batch(p, job);
            c = 0;
            continue;
        }
        size_t held = 0; /* chunks of job run, not yet finished: see job_help */
        for (;;) {
            job_run_chunk(job, c);
            held++;
            if (p->maxtasks && ++done >= p->maxtasks) {
                job_finish(job, held);
                if (retire(p))
                    goto out;
                done = 0;
                break;
            }
            size_t next = job_claim(job, false);
            if (next != SIZE_MAX) {
                c = next;
                continue;
            }
            /* out of chunks: be the spinner before finishing a blocking
             * job (an async one may run callbacks first) */
            if (!job->is_async)
                spinner = take_spinner(p);
            job_finish(job, held);
            break;
        }
        job = NULL;
    }
out:
    if (p->ops)
        p->ops->proxy_stop(p->ops_state);
    return NULL;
}

static int spawn_worker(cth_pool_t *p)
{
    char name[32];
    snprintf(name, sizeof name, "PoolWorker-%u", atomic_fetch_add(&worker_names, 1) + 1);
    cth_thread_opts_t opts = {.name = name, .daemon = CTH_DAEMON_YES};
    cth__lock_acquire_keeping_interrupt(&p->lock);
    if (p->nthreads == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        cth_thread_t **t = cth__realloc(p->threads, cap * sizeof(cth_thread_t *));
        if (!t) {
            cth_lock_release(&p->lock);
            return CTH_ENOMEM;
        }
        p->threads = t;
        p->cap = cap;
    }
    cth_thread_t *t;
    int err = cth_thread_create(&t, worker_main, p, &opts);
    if (err == 0) {
        err = cth_thread_start(t);
        if (err == 0)
            p->threads[p->nthreads++] = t;
        else
            cth_thread_free(t);
    }
    cth_lock_release(&p->lock);
    return err;
}

/* ---- fork ------------------------------------------------------------------------ */

/* In a fork child the workers are gone, so every pool inherited is marked
 * terminated: submitting returns CTH_EINVAL ("Pool not running"), and
 * cth_pool_free releases it (its workers count as finished). Results
 * pending at the fork never complete in the child. The live pools, and
 * the freed ones whose results still hold their memory, are listed under
 * live_lock, held across fork(). */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cth__list live_pools;
static struct cth__list freed_pools; /* freed, their memory kept by their results */
static pthread_once_t live_once = PTHREAD_ONCE_INIT;

enum { FREE_LOCKS_TAKE, FREE_LOCKS_RELEASE, FREE_LOCKS_RESET };

/* Take, release or reset (in the child) the free_lock of the pools of
 * list: each is held across fork(), so that the child finds its free
 * results whole and the lock free (another thread, gone there, may have
 * been recycling results: result_cache), a freed pool's too (its results
 * may be freed there). They are taken last: their holders wait for
 * nothing. */
static void free_locks(struct cth__list *list, int how)
{
    for (struct cth__list_node *node = list->first; node; node = node->next) {
        cth_lock_t *lock = &cth__list_entry(node, cth_pool_t, live_link)->free_lock;
        if (how == FREE_LOCKS_TAKE)
            cth__lock_acquire_keeping_interrupt(lock);
        else if (how == FREE_LOCKS_RELEASE)
            cth_lock_release(lock);
        else
            cth_lock_init(lock);
    }
}

static void live_fork_prepare(void)
{
    pthread_mutex_lock(&live_lock);
    for (struct cth__list_node *node = live_pools.first; node; node = node->next) {
        cth_pool_t *p = cth__list_entry(node, cth_pool_t, live_link);
        if (p->ops && p->ops->fork_prepare)
            p->ops->fork_prepare(p->ops_state);
    }
    free_locks(&live_pools, FREE_LOCKS_TAKE);
    free_locks(&freed_pools, FREE_LOCKS_TAKE);
}

static void live_fork_parent(void)
{
    cth__shared_fork_parent();
    free_locks(&live_pools, FREE_LOCKS_RELEASE);
    free_locks(&freed_pools, FREE_LOCKS_RELEASE);
    for (struct cth__list_node *node = live_pools.first; node; node = node->next) {
        cth_pool_t *p = cth__list_entry(node, cth_pool_t, live_link);
        if (p->ops && p->ops->fork_parent)
            p->ops->fork_parent(p->ops_state);
    }
    pthread_mutex_unlock(&live_lock);
}

static void live_fork_child(void)
{
    free_locks(&live_pools, FREE_LOCKS_RESET);
    free_locks(&freed_pools, FREE_LOCKS_RESET);
    for (struct cth__list_node *node = live_pools.first; node; node = node->next) {
        cth_pool_t *p = cth__list_entry(node, cth_pool_t, live_link);
        cth_lock_init(&p->lock); /* a worker may have held it */
        atomic_store(&p->state, POOL_TERMINATE);
        cth__list_init(&p->queue);
        atomic_store(&p->sleepers, 0);
        atomic_store(&p->spinners, 0);
        /* no more pushes, and nothing to pop: the tasks in the ring at the
         * fork never run nor are cancelled here (terminate pops none, nor
         * waits for the deq of a pop past the end), and a push cut off by
         * the fork never publishes */
        size_t end = atomic_load(&p->enq) & ~RING_CLOSED;
        atomic_store(&p->deq, end);
        atomic_store(&p->enq, end | RING_CLOSED);
        cth__shared_fork_child(&p->shared);
        if (p->ops) /* the workers are the parent's: forget them */
            p->ops->fork_child(p->ops_state);
    }
    pthread_mutex_unlock(&live_lock);
}

static void cache_key_make(void);

/* Once, as the first pool is made: the fork hooks, the results cache's key
 * (so that every thread using a pool's results comes after it). */
static void live_init(void)
{
    pthread_atfork(live_fork_prepare, live_fork_parent, live_fork_child);
    cache_key_make();
}

static void live_link(cth_pool_t *p)
{
    pthread_once(&live_once, live_init);
    pthread_mutex_lock(&live_lock);
    cth__list_push_front(&live_pools, &p->live_link);
    pthread_mutex_unlock(&live_lock);
}

/* cth_pool_free: from the live pools to the freed ones, until its memory
 * goes (pool_destroy). */
static void live_unlink(cth_pool_t *p)
{
    pthread_mutex_lock(&live_lock);
    cth__list_remove(&live_pools, &p->live_link);
    cth__list_push_front(&freed_pools, &p->live_link);
    p->freed_listed = true;
    pthread_mutex_unlock(&live_lock);
}

/* ---- memory ------------------------------------------------------------------- */

static void pool_destroy(cth_pool_t *p)
{
    if (p->freed_listed) {
        pthread_mutex_lock(&live_lock);
        cth__list_remove(&freed_pools, &p->live_link);
        pthread_mutex_unlock(&live_lock);
    }
    while (p->blocks) {
        struct result_block *b = p->blocks;
        p->blocks = b->next;
        cth__free(b);
    }
    if (p->ops)
        p->ops->destroy(p->ops_state);
    cth__shared_destroy(&p->shared);
    cth__free(p->threads);
    cth__free(p->cells);
    cth__free(p);
}

/* The free stack holds batches of results. A batch is an array of up to
 * CACHE_BATCH results laid over the memory of its first one, members[0]
 * (a free result's fields are the stack's), which is handed out last: so
 * a batch moves whole, and the results it holds are named without reading
 * them (they are cold when many were in flight), and a freed result is not
 * written at all unless it starts a batch. The stack links the batches
 * through `below`. */
#define CACHE_BATCH 32

struct free_batch {
    struct free_batch *below; /* the next batch down the stack */
    size_t n;                 /* members[0..n) */
    struct cth_result *members[CACHE_BATCH];
};
_Static_assert(sizeof(struct free_batch) <= sizeof(struct cth_result), "a batch fits a result");
_Static_assert(RESULT_BLOCK % CACHE_BATCH == 0, "a block is whole batches");

/* Start a batch in the memory of result r, with r alone. */
static struct free_batch *batch_start(struct cth_result *r)
{
    struct free_batch *b = (struct free_batch *)(void *)r;
    b->n = 1;
    b->members[0] = r;
    return b;
}

/* Push a batch (free_lock held). */
static void free_push_batch(cth_pool_t *p, struct free_batch *b)
{
    b->below = p->free_top;
    p->free_top = b;
}

/* Pop a whole batch, allocating a block when the stack is empty (free_lock
 * held); NULL when out of memory. Its results count in live from now on. */
static struct free_batch *free_pop_batch(cth_pool_t *p)
{
    if (!p->free_top) {
        struct result_block *blk = cth__malloc(RESULT_BLOCK_SIZE);
        if (!blk)
            return NULL;
        blk->next = p->blocks;
        p->blocks = blk;
        for (int i = 0; i < RESULT_BLOCK; i += CACHE_BATCH) {
            struct free_batch *b = batch_start(block_result(blk, i));
            for (int k = 1; k < CACHE_BATCH; k++)
                b->members[b->n++] = block_result(blk, i + k);
            free_push_batch(p, b);
        }
    }
    struct free_batch *b = p->free_top;
    p->free_top = b->below;
    p->live += b->n;
    return b;
}

/* Ask for a result's head ahead of its use: with many results in flight,
 * the batch's results are out of the cache, and an apply writes the head
 * at once (and no more). */
static void result_prefetch(const struct cth_result *r)
{
    for (size_t off = 0; off < CTH__RESULT_HEAD; off += LINE)
        __builtin_prefetch((const char *)r + off, 1);
}

/* Drop k counts of live (free_lock held, released here); the last one after
 * cth_pool_free frees the pool. */
static void pool_drop_locked(cth_pool_t *p, size_t k)
{
    p->live -= k;
    bool last = p->live == 0 && atomic_load_explicit(&p->dead, memory_order_relaxed);
    cth_lock_release(&p->free_lock);
    if (last)
        pool_destroy(p);
}

/* Each thread keeps a batch of free results of one pool of threads (the one
 * it last took a batch from or freed a result of): an allocation pops there
 * and a free pushes there, without the free_lock and its two atomics each.
 * They count in the pool's live, so its memory stays while any thread holds
 * some. An allocation that finds the cache empty takes a batch from the
 * pool; a free that finds it full (CACHE_BATCH) gives it back as a batch,
 * and so does a free of a result of another pool or of a freed one, the
 * thread's cth_pool_free of the pool, and its end (a thread-specific key's
 * destructor). So only a thread that cached a pool's results just before
 * another thread freed the pool, and touches none of its results again,
 * keeps that pool's memory until it ends (in a fork child, one that is
 * gone: for good, as the child's unfinished tasks do). A pool over
 * processes, whose memory holds its descriptors, is not cached. An
 * allocation asks for the head of the result PREFETCH_AHEAD allocations
 * ahead of it, named in the batch: a miss takes longer than an apply. */
#define PREFETCH_AHEAD 4

static _Thread_local struct result_cache {
    cth_pool_t *pool;         /* whose results it holds; stale once empty */
    struct free_batch *batch; /* NULL: empty */
    bool keyed;               /* its thread's key value is set: the destructor empties it */
} tls_cache __attribute__((tls_model("initial-exec")));

static pthread_key_t cache_key;
static bool cache_key_made; /* by live_init */

/* Give the calling thread's cache back to its pool, as one batch. */
static void cache_give_back(struct result_cache *c)
{
    cth_pool_t *p = c->pool;
    struct free_batch *b = c->batch;
    size_t n = b->n;
    c->batch = NULL;
    cth__lock_acquire_keeping_interrupt(&p->free_lock);
    free_push_batch(p, b);
    pool_drop_locked(p, n);
}

/* The key's destructor, as the thread ends: empty its cache. A free later
 * in its teardown sets the key again (cache_keyed). */
static void cache_at_exit(void *cache)
{
    struct result_cache *c = cache;
    c->keyed = false;
    if (c->batch)
        cache_give_back(c);
}

static void cache_key_make(void)
{
    cache_key_made = pthread_key_create(&cache_key, cache_at_exit) == 0;
}

/* Whether the calling thread may keep results: its end empties the cache. */
static bool cache_keyed(struct result_cache *c)
{
    if (c->keyed)
        return true;
    c->keyed = cache_key_made && pthread_setspecific(cache_key, c) == 0;
    return c->keyed;
}

struct cth_result *cth__result_alloc(cth_pool_t *p)
{
    struct result_cache *c = &tls_cache;
    if (!c->batch || c->pool != p) {
        /* A batch from the pool: the thread's cache if that is empty, else
         * one result of it alone, the rest back on the stack. */
        bool cache = !c->batch && !p->ops && cache_keyed(c);
        cth__lock_acquire_keeping_interrupt(&p->free_lock);
        struct free_batch *b = free_pop_batch(p);
        struct cth_result *lone = NULL;
        if (b && !cache) {
            lone = b->members[--b->n];
            if (b->n) { /* lone is not members[0], which holds the batch */
                free_push_batch(p, b);
                p->live -= b->n;
            }
        }
        cth_lock_release(&p->free_lock);
        if (!b || !cache)
            return lone;
        c->pool = p;
        c->batch = b;
        for (size_t k = 1; k <= PREFETCH_AHEAD && k <= b->n; k++)
            result_prefetch(b->members[b->n - k]);
    }
    struct free_batch *b = c->batch;
    struct cth_result *job = b->members[--b->n];
    if (b->n >= PREFETCH_AHEAD)
        result_prefetch(b->members[b->n - PREFETCH_AHEAD]);
    if (b->n == 0) /* job is members[0]: the batch's memory is the caller's now */
        c->batch = NULL;
    return job;
}

void cth__result_release(struct cth_result *job)
{
    cth__job_release_data(job);
    if (job->kind == JOB_BUFFER) {
        free(job->buf); /* its result, the task's malloc() */
        job->buf = NULL;
    }
    cth_pool_t *p = job->pool;
    struct result_cache *c = &tls_cache;
    bool cached = !p->ops && !atomic_load_explicit(&p->dead, memory_order_relaxed);
    if (c->batch && (c->pool != p || !cached || c->batch->n >= CACHE_BATCH))
        cache_give_back(c);
    if (cached && cache_keyed(c)) {
        c->pool = p;
        if (c->batch)
            c->batch->members[c->batch->n++] = job;
        else
            c->batch = batch_start(job);
        return;
    }
    cth__lock_acquire_keeping_interrupt(&p->free_lock);
    free_push_batch(p, batch_start(job));
    pool_drop_locked(p, 1);
}

void cth__pool_ref(cth_pool_t *p)
{
    cth__lock_acquire_keeping_interrupt(&p->free_lock);
    p->live++;
    cth_lock_release(&p->free_lock);
}

void cth__pool_unref(cth_pool_t *p)
{
    cth__lock_acquire_keeping_interrupt(&p->free_lock);
    pool_drop_locked(p, 1);
}

/* ---- the pool ------------------------------------------------------------------- */

/* cth_pool_create, or with ops (cth__pool_create_ops). */
static int pool_create(cth_pool_t **pool, const cth_pool_opts_t *opts,
                       const struct cth__pool_ops *ops, void *ops_state)
{
    if (!pool)
        return CTH_EINVAL;
    cth_pool_opts_t o = opts ? *opts : (cth_pool_opts_t){0};
    if ((o.backend != CTH_POOL_THREADS && o.backend != CTH_POOL_PROCESSES) ||
        o.start_method < CTH_START_DEFAULT || o.start_method > CTH_START_FORK ||
        isnan(o.task_timeout) || o.task_timeout < 0 || (!o.initarg && o.initarg_size))
        return CTH_EINVAL;
    if (o.processes > INT_MAX || o.task_timeout > CTH_TIMEOUT_MAX)
        return CTH_EOVERFLOW;
    cth_pool_t *p = cth__calloc(1, sizeof *p);
    struct ring_cell *cells = cth__calloc(RING_CAP, sizeof *cells); /* empty: see ring_cell */
    if (!p || !cells) {
        cth__free(p);
        cth__free(cells);
        if (ops)
            ops->destroy(ops_state);
        return CTH_ENOMEM;
    }
    p->ops = ops;
    p->ops_state = ops_state;
    cth__shared_init(&p->shared);
    p->cells = cells;
    ring_touch(cells, 0);
    ring_touch(cells, 1);
    /* Python's os.process_cpu_count(): the CPUs the affinity mask allows. */
    p->nworkers = o.processes ? o.processes : (size_t)cth__os_cpu_count();
    p->initializer = o.initializer;
    p->initarg = o.initarg;
    p->maxtasks = o.maxtasksperchild;
    p->backend = ops ? ops->backend : o.backend;
    p->task_timeout = o.task_timeout;
    if (o.backend == CTH_POOL_PROCESSES) {
        int err = cth__proc_pool_create(&o, p->nworkers, &p->ops, &p->ops_state);
        if (err) {
            pool_destroy(p);
            return err;
        }
    }
    live_link(p);
    for (size_t i = 0; i < p->nworkers; i++) {
        int err = spawn_worker(p);
        if (err) {
            cth_pool_free(p);
            return err;
        }
    }
    int err = p->ops && p->ops->started ? p->ops->started(p->ops_state) : 0;
    if (err) {
        cth_pool_free(p);
        return err;
    }
    *pool = p;
    return 0;
}

CTH_API int cth_pool_create(cth_pool_t **pool, const cth_pool_opts_t *opts)
{
    return pool_create(pool, opts, NULL, NULL);
}

int cth__pool_create_ops(cth_pool_t **pool, size_t workers, const struct cth__pool_ops *ops,
                         void *state)
{
    if (workers == 0 || workers > INT_MAX) {
        ops->destroy(state);
        return workers ? CTH_EOVERFLOW : CTH_EINVAL;
    }
    cth_pool_opts_t o = {.processes = workers};
    return pool_create(pool, &o, ops, state);
}

struct cth__shared *cth__pool_shared(cth_pool_t *pool)
{
    return &pool->shared;
}

CTH_API size_t cth_pool_size(const cth_pool_t *pool)
{
    return pool ? pool->nworkers : 0;
}

CTH_API cth_pool_backend_t cth_pool_backend(const cth_pool_t *pool)
{
    return pool ? pool->backend : CTH_POOL_THREADS;
}

/* Python's default chunksize: ceil(n / (4 x workers)). */
static size_t default_chunksize(const cth_pool_t *p, size_t n)
{
    size_t d = 4 * p->nworkers;
    return n / d + (n % d != 0);
}

/* Run a job on the caller's stack to the end; help: the caller runs
 * chunks too, as one of the team (never on a process pool, whose chunks
 * only its proxy threads can run). An interruption drops the unclaimed
 * chunks, waits for the running ones, and returns CTH_EINTR. A failed task
 * makes it CTH_ETASK with the task's value in the caller's
 * cth_task_error() (cth__job_outcome). */
static int run_sync(cth_pool_t *p, struct cth_result *job, bool help)
{
    help = help && !cth__pool_is_process(p);
    job->two_ended = help;
    int err = pool_submit(p, job, false, help);
    if (err)
        return err;
    if (help) {
        job_help(job);
        /* the team's last chunks are at most one each: spin a while */
        for (int i = 0; i < WORKER_SPIN && !cth_result_ready(job); i++)
            cth__cpu_relax();
    }
    if (cth__job_wait(job, CTH__NO_DEADLINE) == CTH_EINTR) {
        cth__lock_acquire_keeping_interrupt(&p->lock);
        size_t c = job_cancel_locked(p, job);
        cth_lock_release(&p->lock);
        if (c != SIZE_MAX)
            job_cancel_finish(job, c);
        while (cth__job_wait(job, CTH__NO_DEADLINE) != 0)
            ;
        return CTH_EINTR;
    }
    return cth__job_outcome(job);
}

/* run_sync for a lone task: a backend may run it from the calling thread
 * on an idle worker of its own (ops->run_now), without the hand-off to a
 * proxy thread. */
static int run_sync_lone(cth_pool_t *p, struct cth_result *job)
{
    if (p->ops && p->ops->run_now && atomic_load(&p->state) == POOL_RUN) {
        int err = cth__pool_job_prepare(p, job);
        if (err)
            return err;
        if (p->ops->run_now(p->ops_state, job)) {
            atomic_store_explicit(&job->claim, 1, memory_order_relaxed);
            job_finish(job, 1);
            return cth__job_outcome(job);
        }
    }
    return run_sync(p, job, false);
}

CTH_API int cth_pool_apply(cth_pool_t *pool, cth_pool_fn fn, void *arg, void **result)
{
    if (!pool || !fn)
        return CTH_EINVAL;
    if (cth__pool_is_process(pool))
        return CTH_ENOTSUP;
    struct cth_result job = {.fn = fn, .arg = arg};
    job.items = (const char *)&job.arg;
    job.results = &job.value;
    cth__job_setup(&job, pool, JOB_APPLY, 1, 1);
    int err = run_sync(pool, &job, false);
    if (err == 0 && result)
        *result = job.value;
    return err;
}

/* Queue a lone async task in the ring. Returns 0, CTH_EINVAL (the pool is
 * not running) or CTH_EAGAIN (the ring is full: use the queue). */
static int ring_submit(cth_pool_t *p, struct cth_result *job)
{
    job->in_ring = true;
    int err = ring_push(p, job);
    if (err) {
        job->in_ring = false;
        return err;
    }
    /* a spinner sees the ring itself: no seq bump, no system call */
    wake_one(p, true);
    return 0;
}

/* The caller's callbacks, if any: job_complete reads cb only then. */
static void set_callbacks(struct cth_result *job, const cth_result_opts_t *opts)
{
    if (opts) {
        job->cb = *opts;
        job->has_cb = true;
    }
}

static int submit_async(cth_pool_t *pool, struct cth_result *job, const cth_result_opts_t *opts,
                        cth_result_t **res)
{
    set_callbacks(job, opts);
    int err = cth__pool_submit(pool, job, false);
    if (err) {
        cth__result_release(job);
        return err;
    }
    *res = job;
    return 0;
}

/* Queue a lone async task (an apply): the lock-free path from outside the
 * pool's workers (a worker that awaits its own task finds it in the queue
 * and runs it: job_help) while the queue is empty (FIFO), else the queue. */
static int submit_lone(cth_pool_t *pool, struct cth_result *job, const cth_result_opts_t *opts,
                       cth_result_t **res)
{
    set_callbacks(job, opts);
    int err = cth__pool_job_prepare(pool, job);
    if (err) {
        cth__result_release(job);
        return err;
    }
    if (tls_pool != pool && atomic_load(&pool->listed) == 0) {
        err = ring_submit(pool, job);
        if (err != CTH_EAGAIN) {
            if (err)
                cth__result_release(job);
            else
                *res = job;
            return err;
        }
    }
    return submit_async(pool, job, NULL, res);
}

/* Clear a job's head, a cache line at a time: compilers make a 64-byte
 * memset a few vector stores, and one of 128 a rep stos whose start costs
 * more than all of them. */
static void clear_head(struct cth_result *job)
{
    _Static_assert(CTH__RESULT_HEAD == LINE + LINE, "a job's head is two lines");
    memset(job, 0, LINE);
    memset((char *)job + LINE, 0, LINE);
}

CTH_API int cth_pool_apply_async(cth_pool_t *pool, cth_pool_fn fn, void *arg,
                                 const cth_result_opts_t *opts, cth_result_t **res)
{
    if (!pool || !fn || !res)
        return CTH_EINVAL;
    if (cth__pool_is_process(pool))
        return CTH_ENOTSUP;
    struct cth_result *job = cth__result_alloc(pool);
    if (!job)
        return CTH_ENOMEM;
    clear_head(job); /* an apply reads nothing past it (pool_internal.h) */
    job->fn = fn;
    job->arg = arg;
    job->is_async = true;
    job->items = (const char *)&job->arg;
    job->results = &job->value;
    cth__job_setup(job, pool, JOB_APPLY, 1, 1);
    return submit_lone(pool, job, opts, res);
}

static void map_setup(struct cth_result *job, cth_pool_t *pool, uint8_t kind, cth_pool_fn fn,
                      const void *items, size_t size, size_t n, size_t chunksize, void **results)
{
    job->fn = fn;
    job->items = items;
    job->size = size;
    job->results = results;
    job->value = results;
    cth__job_setup(job, pool, kind, n, chunksize ? chunksize : default_chunksize(pool, n));
}

/* Whether a blocking map's caller runs chunks too: only where no
 * initializer prepares the workers for their tasks. */
static bool helps_map(const cth_pool_t *p)
{
    return !p->initializer;
}

static int map_sync(cth_pool_t *pool, uint8_t kind, cth_pool_fn fn, const void *items, size_t size,
                    size_t n, size_t chunksize, void **results)
{
    if (!pool || !fn || (!items && n))
        return CTH_EINVAL;
    if (cth__pool_is_process(pool))
        return CTH_ENOTSUP;
    if (atomic_load(&pool->state) != POOL_RUN)
        return CTH_EINVAL;
    if (n == 0)
        return 0;
    struct cth_result job = {0};
    map_setup(&job, pool, kind, fn, items, size, n, chunksize, results);
    return run_sync(pool, &job, helps_map(pool));
}

/* An empty map_async (of pointers or records): ready at once (Python's []),
 * its callback included, if the pool takes work. */
static int complete_empty(cth_pool_t *pool, struct cth_result *job, const cth_result_opts_t *opts,
                          cth_result_t **res)
{
    if (atomic_load(&pool->state) != POOL_RUN) {
        cth__result_release(job);
        return CTH_EINVAL;
    }
    set_callbacks(job, opts);
    cth__job_complete(job);
    *res = job;
    return 0;
}

static int map_async(cth_pool_t *pool, uint8_t kind, cth_pool_fn fn, const void *items, size_t size,
                     size_t n, size_t chunksize, const cth_result_opts_t *opts, void **results,
                     cth_result_t **res)
{
    if (!pool || !fn || (!items && n) || !res)
        return CTH_EINVAL;
    if (cth__pool_is_process(pool))
        return CTH_ENOTSUP;
    struct cth_result *job = cth__result_alloc(pool);
    if (!job)
        return CTH_ENOMEM;
    *job = (struct cth_result){.is_async = true};
    map_setup(job, pool, kind, fn, items, size, n, chunksize, results);
    if (n == 0)
        return complete_empty(pool, job, opts, res);
    return submit_async(pool, job, opts, res);
}

CTH_API int cth_pool_map(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                         size_t chunksize, void **results)
{
    return map_sync(pool, JOB_MAP, fn, items, sizeof(void *), n, chunksize, results);
}

CTH_API int cth_pool_map_async(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                               size_t chunksize, const cth_result_opts_t *opts, void **results,
                               cth_result_t **res)
{
    return map_async(pool, JOB_MAP, fn, items, sizeof(void *), n, chunksize, opts, results, res);
}

CTH_API int cth_pool_starmap(cth_pool_t *pool, cth_pool_fn fn, const void *args, size_t n,
                             size_t size, size_t chunksize, void **results)
{
    if (size == 0)
        return CTH_EINVAL;
    return map_sync(pool, JOB_STARMAP, fn, args, size, n, chunksize, results);
}

CTH_API int cth_pool_starmap_async(cth_pool_t *pool, cth_pool_fn fn, const void *args, size_t n,
                                   size_t size, size_t chunksize, const cth_result_opts_t *opts,
                                   void **results, cth_result_t **res)
{
    if (size == 0)
        return CTH_EINVAL;
    return map_async(pool, JOB_STARMAP, fn, args, size, n, chunksize, opts, results, res);
}

CTH_API int cth_pool_parallel_for(cth_pool_t *pool, cth_pool_for_fn fn, void *arg, size_t n)
{
    if (!pool || !fn)
        return CTH_EINVAL;
    if (cth__pool_is_process(pool))
        return CTH_ENOTSUP;
    if (atomic_load(&pool->state) != POOL_RUN)
        return CTH_EINVAL;
    if (n == 0)
        return 0;
    /* 8 chunks per thread (the caller included) balance a skewed loop. */
    size_t d = 8 * (pool->nworkers + 1);
    struct cth_result job = {.for_fn = fn, .arg = arg};
    cth__job_setup(&job, pool, JOB_FOR, n, n / d + (n % d != 0));
    return run_sync(pool, &job, true);
}

/* ---- records and buffers ---------------------------------------------------------- */

int cth__records_check(const cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                       size_t in_size, size_t n, const void *out, size_t out_size)
{
    if (!pool || !fn || (n && ((!in && in_size) || (!out && out_size))))
        return CTH_EINVAL;
    if ((in_size && n > SIZE_MAX / in_size) || (out_size && n > SIZE_MAX / out_size))
        return CTH_EOVERFLOW;
    return 0;
}

static void records_setup(struct cth_result *job, cth_pool_t *pool, cth_pool_record_fn fn,
                          const void *in, size_t in_size, size_t n, size_t chunksize, void *out,
                          size_t out_size)
{
    job->rec_fn = fn;
    job->in = in;
    job->in_size = in_size;
    job->out = out;
    job->out_size = out_size;
    job->value = out;
    cth__job_setup(job, pool, JOB_RECORDS, n, chunksize ? chunksize : default_chunksize(pool, n));
}

CTH_API int cth_pool_map_records(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                                 size_t in_size, size_t n, size_t chunksize, void *out,
                                 size_t out_size)
{
    int err = cth__records_check(pool, fn, in, in_size, n, out, out_size);
    if (err)
        return err;
    if (atomic_load(&pool->state) != POOL_RUN)
        return CTH_EINVAL;
    if (n == 0)
        return 0;
    struct cth_result job = {0};
    records_setup(&job, pool, fn, in, in_size, n, chunksize, out, out_size);
    return run_sync(pool, &job, helps_map(pool));
}

CTH_API int cth_pool_map_records_async(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                                       size_t in_size, size_t n, size_t chunksize,
                                       const cth_result_opts_t *opts, void *out, size_t out_size,
                                       cth_result_t **res)
{
    int err = cth__records_check(pool, fn, in, in_size, n, out, out_size);
    if (err)
        return err;
    if (!res)
        return CTH_EINVAL;
    struct cth_result *job = cth__result_alloc(pool);
    if (!job)
        return CTH_ENOMEM;
    *job = (struct cth_result){.is_async = true};
    records_setup(job, pool, fn, in, in_size, n, chunksize, out, out_size);
    if (n == 0)
        return complete_empty(pool, job, opts, res);
    return submit_async(pool, job, opts, res);
}

static void buffer_setup(struct cth_result *job, cth_pool_t *pool, cth_pool_buffer_fn fn,
                         const void *in, size_t in_size)
{
    job->buf_fn = fn;
    job->in = in;
    job->in_size = in_size;
    cth__job_setup(job, pool, JOB_BUFFER, 1, 1);
}

CTH_API int cth_pool_apply_buffer(cth_pool_t *pool, cth_pool_buffer_fn fn, const void *in,
                                  size_t in_size, void **out, size_t *out_size)
{
    if (!pool || !fn || (!in && in_size))
        return CTH_EINVAL;
    struct cth_result job = {0};
    buffer_setup(&job, pool, fn, in, in_size);
    int err = run_sync_lone(pool, &job);
    if (err == 0 && out_size)
        *out_size = job.buf_size;
    if (err == 0 && out)
        *out = job.buf;
    else
        free(job.buf); /* unwanted, or the value lost to CTH_EINTR */
    return err;
}

CTH_API int cth_pool_apply_buffer_async(cth_pool_t *pool, cth_pool_buffer_fn fn, const void *in,
                                        size_t in_size, const cth_result_opts_t *opts,
                                        cth_result_t **res)
{
    if (!pool || !fn || (!in && in_size) || !res)
        return CTH_EINVAL;
    struct cth_result *job = cth__result_alloc(pool);
    if (!job)
        return CTH_ENOMEM;
    *job = (struct cth_result){.is_async = true};
    buffer_setup(job, pool, fn, in, in_size);
    return submit_lone(pool, job, opts, res);
}

CTH_API int cth_pool_close(cth_pool_t *pool)
{
    if (!pool)
        return CTH_EINVAL;
    cth__lock_acquire_keeping_interrupt(&pool->lock);
    if (atomic_load(&pool->state) == POOL_RUN)
        atomic_store(&pool->state, POOL_CLOSE);
    cth_lock_release(&pool->lock);
    ring_close(pool);
    wake_workers(pool, INT32_MAX);
    return 0;
}

CTH_API int cth_pool_terminate(cth_pool_t *pool)
{
    if (!pool)
        return CTH_EINVAL;
    struct cth__list dropped = {NULL, NULL}; /* jobs cancelled here, the latest first */
    cth__lock_acquire_keeping_interrupt(&pool->lock);
    atomic_store(&pool->state, POOL_TERMINATE);
    struct cth_result *job;
    while ((job = cth__list_entry(pool->queue.first, struct cth_result, link))) {
        size_t c = job_cancel_locked(pool, job);
        if (c != SIZE_MAX) { /* alive until its dropped chunks are finished */
            job->dropped_from = c;
            cth__list_push_front(&dropped, &job->link);
        }
    }
    cth_lock_release(&pool->lock);
    size_t pushed = ring_close(pool);
    if (pool->ops) /* stop the workers running chunks: theirs finish CTH_ECANCELED */
        pool->ops->terminate(pool->ops_state);
    wake_workers(pool, INT32_MAX);
    /* cancel what the ring holds (workers cancel what they pop), waiting
     * for a push that got in to publish */
    while (ring_take(pool), atomic_load(&pool->deq) != pushed)
        sched_yield();
    while ((job = cth__list_entry(cth__list_pop_front(&dropped), struct cth_result, link)))
        job_cancel_finish(job, job->dropped_from);
    return 0;
}

CTH_API int cth_pool_join(cth_pool_t *pool, double timeout)
{
    if (!pool)
        return CTH_EINVAL;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    if (atomic_load(&pool->state) == POOL_RUN)
        return CTH_EINVAL;
    if (tls_pool == pool)
        return CTH_EDEADLK;
    for (size_t i = 0;; i++) {
        cth__lock_acquire_keeping_interrupt(&pool->lock);
        cth_thread_t *t = i < pool->nthreads ? pool->threads[i] : NULL;
        cth_lock_release(&pool->lock);
        if (!t)
            return 0;
        err = cth_thread_join(t, NULL, cth__timeout_left(deadline));
        if (err)
            return err;
    }
}

CTH_API void cth_pool_free(cth_pool_t *pool)
{
    if (!pool)
        return;
    if (atomic_load(&pool->state) == POOL_RUN)
        cth_pool_terminate(pool);
    while (cth_pool_join(pool, CTH_FOREVER) == CTH_EINTR)
        ;
    live_unlink(pool);
    for (size_t i = 0; i < pool->nthreads; i++)
        cth_thread_free(pool->threads[i]);
    if (pool->ops && pool->ops->shutdown) /* far workers (MPI ranks) are told to stop */
        pool->ops->shutdown(pool->ops_state);
    cth__shared_free_all(&pool->shared); /* those a job still uses go with it */
    if (tls_cache.batch && tls_cache.pool == pool)
        cache_give_back(&tls_cache);
    cth__lock_acquire_keeping_interrupt(&pool->free_lock);
    atomic_store_explicit(&pool->dead, true, memory_order_relaxed);
    bool last = pool->live == 0;
    cth_lock_release(&pool->free_lock);
    if (last)
        pool_destroy(pool);
}
