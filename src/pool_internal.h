/* SPDX-License-Identifier: MIT */
/*
 * pool_internal.h - what pool.c, pool_result.c and pool_imap.c share: the
 * job, which is also the AsyncResult (struct cth_result).
 *
 * A job is n items cut into nchunks chunks of chunksize. Workers claim
 * chunks with a fetch_add on `claim`, whose ticket is the chunk's index (a
 * two_ended job: a ticket below nchunks entitles its holder to the next
 * chunk from its end, `front` or `back`); `remaining` counts the chunks
 * not finished, and whoever finishes (or cancels) the last one completes
 * the job. A job sits in the pool's queue until the claimer of its last
 * chunk (or terminate) unlinks it, under the pool lock; so a queued job is
 * always alive, and a thread may claim another chunk lock-free while it
 * holds an unfinished one (the job cannot complete meanwhile).
 */
#ifndef CTH_POOL_INTERNAL_H
#define CTH_POOL_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "alloc.h"
#include "cthreading/pool.h"
#include "cthreading/sync.h"
#include "deadline.h"
#include "list.h"
#include "lock.h"
#include "task_error.h"
#include "wait.h"

/* Exported from the shared core for libcthreading-mpi (internal all the
 * same: no header of include/ declares them). */
#ifndef CTH__BACKEND_API
#define CTH__BACKEND_API __attribute__((visibility("default")))
#endif

/* JOB_IMAP jobs over records have `rec_fn` set; JOB_RECORDS is a map over
 * records, JOB_BUFFER an apply with byte buffers. */
enum job_kind { JOB_APPLY, JOB_MAP, JOB_STARMAP, JOB_FOR, JOB_IMAP, JOB_RECORDS, JOB_BUFFER };

/* job state word: the futex waiters sleep on; JOB_DROPPED: an async job
 * its caller freed before it completed (the completer frees it) */
enum { JOB_PENDING = 0, JOB_WAITED = 1, JOB_DONE = 2, JOB_DROPPED = 3 };

/* claim is pushed past any chunk index by cancellation */
#define JOB_CANCEL_BIAS (SIZE_MAX / 4)

/* The head of a job, its first two cache lines, holds every field an
 * apply_async task reads or writes on its way (submission, the ring or the
 * queue, the run, completion, get and free): apply_async clears the head
 * alone (CTH__RESULT_HEAD), so a pipelined task moves two lines between
 * the cores, not five. The fields after it are written before they are
 * read (task_error), read only where a flag says they are set (cb:
 * has_cb; front, back: two_ended) or only by the kinds that set them; an
 * apply leaves them as the result's last user did. */
struct cth_result {
    struct cth__list_node link; /* the pool's queue (pool lock), its free list
                                       (free_lock), or terminate's dropped list */
    bool linked;                /* in the queue (pool lock) */
    bool in_ring;               /* queued in the ring (set before the push) */
    bool is_async;              /* heap, refcounted, callbacks */
    uint8_t kind;               /* enum job_kind */
    bool two_ended;             /* a team's job: the caller claims chunks from the
                                   front, the workers from the back */
    bool has_cb;                /* cb holds the caller's callbacks */
    _Atomic uint32_t state;     /* JOB_PENDING, JOB_WAITED, JOB_DONE, JOB_DROPPED */
    _Atomic int err;            /* the first failure in completion order: CTH_ETASK,
                                   CTH_EWORKER, CTH_ETIMEDOUT or CTH_EPROTO (or
                                   CTH_ECANCELED, which overrides it) */
    int outcome;                /* the final code, written before JOB_DONE */
    cth_pool_t *pool;
    cth_pool_fn fn;
    void *arg;                /* apply's argument, parallel-for's arg, imap: the iterator */
    void *value;              /* apply's value; map_async: results */
    _Atomic size_t claim;     /* chunks handed out: the next claim's ticket */
    _Atomic size_t remaining; /* chunks not finished */
    size_t n, chunksize, nchunks;
    const char *items; /* map/imap: void *items[]; starmap: the structs */
    void **results;    /* map/starmap/apply: where values go (may be NULL);
                            imap_unordered: its chunks' values until delivered */
    /* ---- the rest (see above) ---- */
    int task_error; /* the first failure's value (cth__job_fail): written by
                       the thread that set err, before it finishes its chunk */
    cth_result_opts_t cb;
    _Atomic size_t front; /* two_ended: chunks handed out from the front, */
    _Atomic size_t back;  /* and from the back */
    size_t dropped_from;  /* terminate's scratch: first dropped chunk */
    cth_pool_for_fn for_fn;
    size_t size; /* starmap's struct size */
    size_t base; /* imap: the position of item 0 */
    /* records (JOB_RECORDS, record imaps) and buffers (JOB_BUFFER) */
    cth_pool_record_fn rec_fn;
    cth_pool_buffer_fn buf_fn;
    const char *in;      /* the input records, or the input buffer */
    size_t in_size;      /* an input record's size, or the buffer's length */
    char *out;           /* where output records go (n x out_size) */
    size_t out_size;     /* an output record's size */
    void *buf;           /* JOB_BUFFER: the task's result buffer (malloc'd) */
    size_t buf_size;     /* and its length */
    double task_timeout; /* processes: seconds per task; 0 = none */
    void *proc;          /* processes: pool_process.c's state of this job */
    /* records wholly inside a shared allocation, held until the job
     * completes (pool_shared.c); NULL: ordinary memory */
    struct cth__region *in_region, *out_region;
};

/* The size of a job's head (above). */
#define CTH__RESULT_HEAD offsetof(struct cth_result, task_error)
_Static_assert(CTH__RESULT_HEAD <= 128, "a job's head fits two cache lines");

/* Fill in the chunking fields of a job for n items. */
void cth__job_setup(struct cth_result *job, cth_pool_t *pool, uint8_t kind, size_t n,
                    size_t chunksize);

/* An AsyncResult's memory, from the pool's free list (refilled a block of
 * RESULT_BLOCK at a time); NULL when out of memory. The pool's memory stays
 * until its last result is released. */
struct cth_result *cth__result_alloc(cth_pool_t *pool);

/* Give a result's memory back to its pool (job->pool). */
void cth__result_release(struct cth_result *job);

/* Keep the pool's memory past cth_pool_free (an imap iterator), and let it
 * go. */
void cth__pool_ref(cth_pool_t *pool);
void cth__pool_unref(cth_pool_t *pool);

/* Queue a job. internal: also accepted by a closed pool (an imap refill).
 * Returns 0, or CTH_EINVAL when the pool does not take it. */
int cth__pool_submit(cth_pool_t *pool, struct cth_result *job, bool internal);

/* Whether the pool takes new work (state RUN). */
bool cth__pool_running(const cth_pool_t *pool);

/* The pool's number of workers. */
size_t cth__pool_workers(const cth_pool_t *pool);

/* Hold or release the pool's "cache" (in Python the job cache; here the
 * imap iterators still reading their producer): while it is not empty a
 * closed pool keeps its workers. */
void cth__pool_cache_hold(cth_pool_t *pool);
void cth__pool_cache_release(cth_pool_t *pool);

/* Wait until job is done; a worker of the job's pool runs unclaimed chunks
 * itself first. Returns 0, CTH_ETIMEDOUT or CTH_EINTR. */
int cth__job_wait(struct cth_result *job, int64_t deadline);

/* Complete a job whose last chunk has finished (pool_result.c): the
 * outcome, the callbacks, the wake-up, the memory. */
void cth__job_complete(struct cth_result *job);

/* Record a failure of job: code CTH_ETASK (value: the task's own),
 * CTH_EWORKER (value: the dead worker's wait status), CTH_ETIMEDOUT or
 * CTH_EPROTO (value 0). The first failure in completion order is kept. An
 * imap job's failure is the outcome of the chunk the calling thread is
 * running (cth__imap_fail): call it from that thread. */
CTH__BACKEND_API void cth__job_fail(struct cth_result *job, int code, int value);

/* What a waiter returns for a done job's outcome: 0 or the code, with
 * cth_task_error() set to the value for CTH_ETASK and CTH_EWORKER. */
int cth__job_outcome(const struct cth_result *job);

/* The checks of the record calls: 0, CTH_EINVAL (NULL pool or fn, NULL in
 * or out with a nonzero size and n > 0) or CTH_EOVERFLOW (n x size). */
int cth__records_check(const cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                       size_t in_size, size_t n, const void *out, size_t out_size);

/* Run the items [lo, hi) of a record or buffer job in the calling worker
 * (threads) or ship them to its worker process (processes), recording
 * failures with cth__job_fail; a chunk stops at its first failing item. */
void cth__job_run_records(struct cth_result *job, size_t lo, size_t hi);

/* ---- shared allocations (pool_shared.c) -------------------------------------- */

/* A shared allocation (cth_pool_shared_alloc): whole pages, in a memfd on a
 * process pool, plain memory elsewhere. */
struct cth__region {
    struct cth__list_node link; /* its pool's regions (the set's lock) */
    struct cth__shared *set;    /* that pool's set */
    char *base;
    size_t size;    /* the bytes asked for: records inside them are in place */
    size_t mapped;  /* size rounded up to whole pages */
    int fd;         /* a process pool's memfd; -1: plain memory */
    uint64_t id;    /* names it to worker processes (cth__segment_id) */
    uint32_t refs;  /* the caller's until freed, plus one per job using it (lock) */
    uint32_t forks; /* program_forks before it was made (pool_shared.c) */
    bool freed;     /* the caller's reference is gone (lock) */
};

/* A pool's shared allocations. */
struct cth__shared {
    pthread_mutex_t lock;
    struct cth__list regions;
    _Atomic size_t count; /* regions not freed: none, and no job looks */
    pid_t owner;          /* the process that made the pool (a fork child discards nothing) */
};

/* The pool's set (pool.c), and its life: cth_pool_create, a fork child
 * (the lock reset), cth_pool_free (every region still allocated is freed:
 * it goes when no job uses it), the pool's memory going. */
struct cth__shared *cth__pool_shared(cth_pool_t *pool);
void cth__shared_init(struct cth__shared *set);
void cth__shared_fork_child(struct cth__shared *set);
void cth__shared_free_all(struct cth__shared *set);
void cth__shared_destroy(struct cth__shared *set);

/* A fork of the program in the parent, after it (pool.c's fork handler):
 * the allocations made before it are the child's too, and keep their pages
 * when the program frees them. Not when cth__forking_worker is set: the
 * process backend sets it around the launch of a worker, whose fork child
 * is no child of the program's own. */
void cth__shared_fork_parent(void);
extern _Thread_local bool cth__forking_worker __attribute__((tls_model("initial-exec")));

/* A record job being submitted (cth__pool_job_prepare): take a reference
 * to the region its inputs, and to the one its outputs, lie wholly inside
 * (job->in_region, job->out_region). cth__shared_drop gives them back when
 * it completes (cth__job_release_data); a region freed meanwhile goes
 * then. */
void cth__shared_hold(cth_pool_t *pool, struct cth_result *job);
void cth__shared_drop(struct cth_result *job);

/* A new id for a segment of shared memory, unique in the process: a
 * region's, or a process pool's segment of a job's copied records. */
uint64_t cth__segment_id(void);

/* ---- the process backend (pool_process.c) ----------------------------------- */

/* Whether the pool runs its tasks outside this process's threads (worker
 * processes, MPI ranks): record and buffer calls only. */
bool cth__pool_is_process(const cth_pool_t *pool);

/* Before a record or buffer job is queued (a no-op on threads, or for
 * another kind of job, or one prepared already): its task timeout (the
 * call's, job->cb.task_timeout, else the pool's), then the backend's
 * job_prepare. Returns 0, CTH_EINVAL / CTH_EOVERFLOW for a bad
 * task_timeout, or job_prepare's error. cth__pool_submit calls it. */
int cth__pool_job_prepare(cth_pool_t *pool, struct cth_result *job);

/* A job's memory is being released: the backend's job_release if it
 * prepared the job. */
void cth__job_release_data(struct cth_result *job);

/* ---- backends beyond threads: an ops table (processes, MPI ranks) -------------- */

/* What a backend beyond threads gives pool.c: the process pool
 * (pool_process.c) and the pool over MPI ranks (src/mpi/). Its worker
 * threads are proxies, each owning a far worker; state is the backend's
 * own. */
struct cth__pool_ops {
    cth_pool_backend_t backend; /* what cth_pool_backend() says */
    /* before a record or buffer job is queued (job->proc is the backend's):
     * 0 or an error code, which the submitting call returns */
    int (*job_prepare)(void *state, struct cth_result *job);
    /* in a worker thread: run items [lo, hi) elsewhere, recording failures
     * with cth__job_fail; false: run them in this thread (as on threads) */
    bool (*run_items)(void *state, struct cth_result *job, size_t lo, size_t hi);
    /* optional (NULL: none): a synchronous call's prepared lone job, run
     * to the end by the calling thread on an idle far worker, its outcome
     * recorded as run_items does; false (the job untouched) if none is idle */
    bool (*run_now)(void *state, struct cth_result *job);
    /* optional (NULL: none), in a worker thread that took a lone job (one
     * chunk; never with maxtasksperchild): how many lone jobs it would run
     * in one batch with it now (1: alone); whether job may join batch[0..k);
     * run batch[0..k) (each job's outcome recorded as run_items does;
     * pool.c finishes them) */
    size_t (*batch_room)(void *state, struct cth_result *first);
    bool (*batch_fits)(void *state, struct cth_result *const *batch, size_t k,
                       struct cth_result *job);
    void (*run_batch)(void *state, struct cth_result *const *batch, size_t k);
    /* a prepared job's memory is being released: drop job->proc */
    void (*job_release)(void *state, struct cth_result *job);
    /* a worker thread starts (false: it exits at once) and stops */
    bool (*proxy_start)(void *state);
    void (*proxy_stop)(void *state);
    /* cth_pool_terminate: release the proxies waiting (their items finish
     * CTH_ECANCELED) */
    void (*terminate)(void *state);
    /* cth_pool_free, once every worker thread has exited (NULL: nothing) */
    void (*shutdown)(void *state);
    /* the pool's memory goes (also when cth__pool_create_ops fails) */
    void (*destroy)(void *state);
    /* in a fork child: forget whatever the parent's backend runs */
    void (*fork_child)(void *state);
    /* optional (NULL: none): once the pool's first worker threads are
     * started, wait until they are ready (0, or cth_pool_create's error);
     * fork(): before it (what must not change meanwhile is held) and after
     * it, in the parent */
    int (*started)(void *state);
    void (*fork_prepare)(void *state);
    void (*fork_parent)(void *state);
};

/* The process backend (pool_process.c; src/unix/no_process_pool.c where
 * there is none): check the process options, name the initializer, and
 * give the ops table and its state for a pool of `workers` proxy threads,
 * each owning a worker process. Returns 0, *ops and *state; CTH_ENOTSUP
 * where the system has no process pool, CTH_ENOENT (the initializer in no
 * loaded object), CTH_ENOMEM, CTH_EOVERFLOW. */
int cth__proc_pool_create(const cth_pool_opts_t *opts, size_t workers,
                          const struct cth__pool_ops **ops, void **state);

/* A pool of workers proxy threads whose items run through ops; pointer
 * calls return CTH_ENOTSUP, as on processes. The pool owns state from this
 * call on (ops->destroy frees it, at once on failure). Returns 0 and *pool,
 * or cth_pool_create's errors. */
CTH__BACKEND_API int cth__pool_create_ops(cth_pool_t **pool, size_t workers,
                                          const struct cth__pool_ops *ops, void *state);

/* Batching, for a backend's worker thread that runs items elsewhere (MPI
 * ranks), inside run_items while it holds an unfinished chunk of job:
 * claim one more chunk without waiting, for a record map or a buffer apply
 * only: job's next (a record map), else a lone task of the ring (where a
 * backend pool holds buffer applies alone), else the oldest queued such
 * job's. None while another worker is idle (parked, being woken or
 * spinning): it takes the rest. Returns the job and *chunk, or NULL. The
 * caller runs the chunk (failures through cth__job_fail), then finishes it
 * with cth__job_chunk_done. */
CTH__BACKEND_API struct cth_result *cth__pool_take_more(struct cth_result *job, size_t *chunk);
CTH__BACKEND_API void cth__job_chunk_done(struct cth_result *job);
/* Roughly what is left to claim (a hint, read without the lock): the lone
 * tasks of the ring, job's unclaimed chunks (a record map), and a chunk for
 * each other queued job. */
CTH__BACKEND_API size_t cth__pool_backlog(struct cth_result *job);

/* imap hooks (pool_imap.c): run the chunk of items [lo, hi) of an imap
 * job; report the chunks of [lo, hi) cancelled (lo starts a chunk); the
 * job has completed (free it). */
void cth__imap_run(struct cth_result *job, size_t lo, size_t hi);
void cth__imap_cancel(struct cth_result *job, size_t lo, size_t hi);
void cth__imap_job_done(struct cth_result *job);
/* cth__job_fail of an imap job: the failure of the chunk the calling thread
 * is running (cth__imap_run), delivered in its place. */
void cth__imap_fail(const struct cth_result *job, int code, int value);

#endif
