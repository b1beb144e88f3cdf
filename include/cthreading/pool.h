/* SPDX-License-Identifier: MIT */
/*
 * cthreading/pool.h - Python's multiprocessing.dummy.Pool
 * (multiprocessing.pool.ThreadPool), its AsyncResult and its imap
 * iterators, plus a parallel-for Python does not have.
 *
 * A pool owns N daemon worker threads named "PoolWorker-K". Work is handed
 * out in chunks claimed from a shared counter; an idle pool costs no CPU
 * (docs/design.md, pool.h).
 *
 * Tasks. A task is `int fn(void *arg, void **result)`: it stores its value
 * in *result and returns 0, or returns any other value (positive or
 * negative, a code of the program's own) to fail, the way a Python task
 * raises. Whoever waits sees CTH_ETASK, never the task's value itself (so a
 * task returning -1 does not read as CTH_EPERM); the value, unchanged, is
 * on the AsyncResult (cth_result_task_error) and, after a blocking call, in
 * the calling thread's cth_task_error() (base.h), as Python re-raises the
 * exception: cth_pool_apply and cth_result_get return CTH_ETASK,
 * error_callback receives it, map returns it for the first failure in
 * completion order once every chunk has finished (no fail-fast, as
 * Python), imap's next returns it at the item's position (with chunksize >
 * 1, in place of its whole chunk, and the iteration ends there, as
 * Python's). A failing task never harms the pool.
 *
 * States, as Python's: RUN, then CLOSE (no new tasks, the accepted ones all
 * run) or TERMINATE (queued tasks are dropped). Blocking calls take a
 * timeout (base.h). Departures from Python, on purpose: docs/design.md.
 *
 * fork(). The workers do not exist in the child, so every pool inherited
 * there is terminated: submitting returns CTH_EINVAL (Python's "Pool not
 * running"), close and terminate are harmless, join returns 0 at once and
 * cth_pool_free frees it. Tasks queued or running at the fork never run or
 * finish in the child: their AsyncResults, maps and imap items stay pending
 * (wait for them with a timeout, or not at all) and can be freed. A pool
 * created in the child works.
 */
#ifndef CTHREADING_POOL_H
#define CTHREADING_POOL_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A thread pool (Python's multiprocessing.pool.ThreadPool); opaque. */
typedef struct cth_pool cth_pool_t;
/* An AsyncResult (Python's ApplyResult / MapResult); opaque. */
typedef struct cth_result cth_result_t;
/* An imap iterator (Python's IMapIterator / IMapUnorderedIterator); opaque. */
typedef struct cth_imap cth_imap_t;

/* A task: store the value in *result and return 0, or return any nonzero
 * value to fail (*result is then ignored): the waiter sees CTH_ETASK and
 * the value in cth_task_error() / cth_result_task_error(). */
typedef int (*cth_pool_fn)(void *arg, void **result);

/* The body of a parallel-for: the work of one index; 0, or any nonzero
 * value to fail (as cth_pool_fn). */
typedef int (*cth_pool_for_fn)(void *arg, size_t index);

/* An AsyncResult's callback: callback(cb_arg, value) on success (exactly
 * one of callback and error_callback runs). */
typedef void (*cth_pool_callback_fn)(void *cb_arg, void *value);
/* An AsyncResult's error_callback: error_callback(cb_arg, err) on failure,
 * err being CTH_ETASK (a task failed; while the callback runs, its thread's
 * cth_task_error() holds the task's value, as does cth_result_task_error)
 * or CTH_ECANCELED (the pool was terminated first; cth_task_error() is 0
 * meanwhile); on processes also CTH_EWORKER (cth_task_error() holds the
 * wait status), CTH_ETIMEDOUT or CTH_EPROTO. The thread's own
 * cth_task_error() comes back afterwards. */
typedef void (*cth_pool_error_callback_fn)(void *cb_arg, int err);

/* An imap producer (Python's input iterator): store the next item in *item
 * and return 0; at the end of the input set *end (false on entry) to true
 * and return 0; return any nonzero value to fail (cth_imap_next delivers
 * CTH_ETASK, with cth_task_error() set to the value, after the last whole
 * chunk read, and the iteration ends after it: see cth_pool_imap_producer). */
typedef int (*cth_imap_producer_fn)(void *ctx, void **item, bool *end);

/* A pool's initializer: run in each worker, initializer(initarg), before
 * its first task. It cannot fail. */
typedef void (*cth_pool_initializer_fn)(void *arg);

/*
 * A record task, the task of the record calls (cth_pool_map_records and
 * its twins): read the in_size bytes at in, write the out_size bytes at
 * out, return 0; or return any nonzero value to fail (as cth_pool_fn). A
 * size of 0 passes NULL. The same function runs on both backends.
 */
typedef int (*cth_pool_record_fn)(const void *in, void *out);

/*
 * A buffer task (cth_pool_apply_buffer): read in_size bytes at in, then
 * store in *out a buffer from malloc() (or NULL) and its length in
 * *out_size (both are NULL / 0 on entry), and return 0; the library owns
 * the buffer from then on (it frees it, or hands it to the caller). Any
 * nonzero return fails, as cth_pool_fn (a buffer stored anyway is freed).
 */
typedef int (*cth_pool_buffer_fn)(const void *in, size_t in_size, void **out, size_t *out_size);

/*
 * Which workers run a pool's tasks: the one switch between
 * multiprocessing.dummy.Pool and multiprocessing.Pool. Every call, the
 * AsyncResult, the imap iterators and the error conventions are the same
 * on both, with three differences on processes: data crosses as bytes, so
 * only the record calls (cth_pool_map_records and its twins,
 * cth_pool_apply_buffer and its twin) run there, and the pointer calls
 * (apply, map, starmap, parallel_for, imap) return CTH_ENOTSUP; a task
 * whose worker dies (a crash, a signal, _exit, the OOM killer) fails alone
 * with CTH_EWORKER (the wait status in cth_task_error()) and a new worker
 * takes its place; and a task may have a timeout (task_timeout), past
 * which its worker is killed and it fails with CTH_ETIMEDOUT.
 */
typedef enum cth_pool_backend {
    CTH_POOL_THREADS = 0,   /* threads of this process (multiprocessing.dummy) */
    CTH_POOL_PROCESSES = 1, /* worker processes (multiprocessing); Linux */
    CTH_POOL_MPI = 2        /* MPI ranks (mpi4py.futures): made only by
                               cth_mpi_pool_create (libcthreading-mpi, cthreading/mpi.h);
                               cth_pool_create refuses it; the rules of processes apply */
} cth_pool_backend_t;

/*
 * How a process pool starts its workers (Python's start methods). Each
 * worker runs the same executable, and a task is named by its offset in
 * the loaded object (the executable or a shared library) that holds it, so
 * any function, static ones included, can be a task without registration.
 * What a worker sees of the program's globals: under FORK, a copy of the
 * parent's memory as it was when the worker started; under SPAWN and
 * FORKSERVER, the program as loaded, before main() ran (static
 * initializers only); the library takes over the new process before main.
 * FORK is unsafe while other threads hold locks (malloc's are handled; a
 * program's own are not), as Python documents.
 */
typedef enum cth_start_method {
    CTH_START_DEFAULT = 0,    /* FORKSERVER, Python 3.14's default on Linux */
    CTH_START_FORKSERVER = 1, /* a spawned single-threaded server forks each worker */
    CTH_START_SPAWN = 2,      /* each worker re-executes the program */
    CTH_START_FORK = 3        /* each worker is a fork() of the program */
} cth_start_method_t;

/* Options of cth_pool_create; zero-initialised or NULL means Python's
 * defaults. */
typedef struct cth_pool_opts {
    size_t processes;                    /* workers; 0 = os.process_cpu_count(): the
                                            CPUs the calling thread may run on */
    size_t maxtasksperchild;             /* tasks (chunks) before a worker is replaced;
                                            0 = unlimited (Python's None) */
    cth_pool_initializer_fn initializer; /* run once in each worker, or NULL */
    void *initarg;                       /* initializer's argument (initargs) */
    size_t initarg_size;                 /* processes: initarg's size in bytes; each
                                            worker's initializer gets a copy (NULL
                                            when 0); threads: ignored */
    cth_pool_backend_t backend;          /* CTH_POOL_THREADS (0) or CTH_POOL_PROCESSES */
    cth_start_method_t start_method;     /* processes: how workers start (0: forkserver) */
    double task_timeout;                 /* processes: seconds a task may run before its
                                            worker is killed (CTH_ETIMEDOUT); 0 = none */
} cth_pool_opts_t;

/* Callbacks of the _async calls (NULL: none). */
typedef struct cth_result_opts {
    cth_pool_callback_fn callback;             /* on success, or NULL */
    cth_pool_error_callback_fn error_callback; /* on failure, or NULL */
    void *cb_arg;                              /* passed first to either callback */
    double task_timeout;                       /* processes: this call's task timeout, overriding
                            the pool's; 0 = the pool's */
} cth_result_opts_t;

/* The end of an imap iteration (Python's StopIteration): cth_imap_next's
 * only positive return. */
#define CTH_IMAP_END 1

/* ---- the pool ----------------------------------------------------------------- */

/*
 * cth_pool_create - ThreadPool(processes, initializer, initargs) (and
 * Pool's maxtasksperchild); with opts.backend CTH_POOL_PROCESSES,
 * multiprocessing.Pool(processes, initializer, initargs, maxtasksperchild,
 * context). Starts the workers (threads, or processes ready to take tasks)
 * before returning. pool: where the new pool goes; opts: NULL or zero
 * fields for Python's defaults (see cth_pool_opts_t).
 * Returns 0 and *pool; CTH_EINVAL for a NULL pool, an unknown backend or
 * start method, a negative or NaN task_timeout, or a NULL initarg with a
 * nonzero initarg_size; CTH_EOVERFLOW for processes above INT_MAX or a
 * task_timeout above CTH_TIMEOUT_MAX; CTH_ENOENT for an initializer that
 * lies in no loaded object (processes); CTH_ENOTSUP for processes where
 * the system has none of the pieces (Linux only); CTH_ENOMEM, CTH_EAGAIN
 * (no thread or no process), CTH_ESHUTDOWN (the library is shutting down).
 */
CTH_API int cth_pool_create(cth_pool_t **pool, const cth_pool_opts_t *opts);

/* cth_pool_size - len(pool._pool): the number of workers; 0 for NULL. */
CTH_API size_t cth_pool_size(const cth_pool_t *pool);

/* cth_pool_backend - the pool's backend (CTH_POOL_THREADS for NULL). */
CTH_API cth_pool_backend_t cth_pool_backend(const cth_pool_t *pool);

/*
 * cth_pool_apply - Pool.apply(func, (arg,)): run fn(arg, &value) on a
 * worker and wait for it; result (may be NULL) receives the value.
 * Returns 0 with *result set (the value may be NULL); CTH_ETASK if the task
 * returned nonzero (that value in cth_task_error()); CTH_EINVAL for NULL
 * pool or fn, or a pool not running (ValueError "Pool not running");
 * CTH_ECANCELED if the pool was terminated before the task ran; CTH_EINTR
 * in an interrupted main thread (a task not yet started is dropped, a
 * running one is waited for and its value lost). No allocation.
 * CTH_ENOTSUP on a process pool (data crosses as bytes there).
 */
CTH_API int cth_pool_apply(cth_pool_t *pool, cth_pool_fn fn, void *arg, void **result);

/*
 * cth_pool_apply_async - Pool.apply_async(func, (arg,), callback=,
 * error_callback=). Queues fn(arg) and returns at once with *res, an
 * AsyncResult the caller owns (release it with cth_result_free, before or
 * after it is ready). opts (the callbacks) may be NULL. Returns 0; CTH_EINVAL
 * for NULL pool, fn or res, or a pool not running; CTH_ENOMEM. The task's
 * outcome is cth_result_get's (CTH_ETASK: see cth_result_task_error). Lone
 * tasks go through a lock-free ring of 2^18 tasks (a pool reserves 4 MiB of
 * address space for it; pages are used as bursts reach them, and stay
 * until the pool is freed) and wake no worker while one is spinning; tasks
 * start in submission order.
 * CTH_ENOTSUP on a process pool (data crosses as bytes there).
 */
CTH_API int cth_pool_apply_async(cth_pool_t *pool, cth_pool_fn fn, void *arg,
                                 const cth_result_opts_t *opts, cth_result_t **res);

/*
 * cth_pool_map - Pool.map(func, items, chunksize): fn(items[i], &results[i])
 * for i in [0, n), spread over the workers in chunks of chunksize
 * consecutive items (0 = Python's default, ceil(n / (4 x workers))), and
 * wait for all of them. Unless the pool has an initializer, the calling
 * thread runs chunks too, in place of one worker (OpenMP's master thread
 * does the same); a task's waits there are a worker's (never CTH_EINTR).
 * results (n slots, may be NULL, or items itself for a map in place) are
 * in input order; each task stores straight into its slot, which is NULL
 * when the task stored nothing or failed (the slots of items a failure
 * kept from running are untouched).
 * Returns 0 when every task succeeded; CTH_ETASK when one failed, only
 * after every chunk has finished (as Python; a chunk stops at its first
 * failing item, as Python's mapstar), with cth_task_error() set to the
 * value of the first failure in completion order; CTH_ECANCELED if
 * terminate dropped chunks; CTH_EINVAL for NULL pool or fn, NULL items
 * with n > 0, or a pool not running; CTH_EINTR in an interrupted main
 * thread (the chunks not yet started are dropped; it returns once the
 * running ones have finished). n = 0 returns 0 at once. No allocation.
 * CTH_ENOTSUP on a process pool (data crosses as bytes there).
 */
CTH_API int cth_pool_map(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                         size_t chunksize, void **results);

/*
 * cth_pool_map_async - Pool.map_async(func, items, chunksize, callback,
 * error_callback): as cth_pool_map, without waiting; opts (the callbacks)
 * may be NULL. items and results must stay valid until the result is
 * ready. cth_result_get's value is results; the callback receives results.
 * A failure is CTH_ETASK with cth_result_task_error() the value of the
 * first failing task in completion order. Returns 0 and *res (the
 * caller's to free); CTH_EINVAL (as cth_pool_map, or a NULL res),
 * CTH_ENOMEM. An empty map is ready at once.
 * CTH_ENOTSUP on a process pool (data crosses as bytes there).
 */
CTH_API int cth_pool_map_async(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                               size_t chunksize, const cth_result_opts_t *opts, void **results,
                               cth_result_t **res);

/*
 * cth_pool_starmap - Pool.starmap(func, [args...]): in C each item's
 * arguments are a struct, and the items are an array of n structs of size
 * bytes each (as calloc's count and size): fn(&args[i], &results[i]).
 * Otherwise as cth_pool_map (size 0 is CTH_EINVAL).
 * CTH_ENOTSUP on a process pool (data crosses as bytes there).
 */
CTH_API int cth_pool_starmap(cth_pool_t *pool, cth_pool_fn fn, const void *args, size_t n,
                             size_t size, size_t chunksize, void **results);

/* cth_pool_starmap_async - Pool.starmap_async: cth_pool_starmap without
 * waiting, as cth_pool_map_async. */
CTH_API int cth_pool_starmap_async(cth_pool_t *pool, cth_pool_fn fn, const void *args, size_t n,
                                   size_t size, size_t chunksize, const cth_result_opts_t *opts,
                                   void **results, cth_result_t **res);

/*
 * cth_pool_parallel_for - fn(arg, index) for every index in [0, n) on the
 * workers and the calling thread together (Python has no equivalent;
 * OpenMP's `parallel for` is the model). Indices go out in chunks from a
 * shared atomic counter; nothing is allocated. The calling thread takes
 * part in place of one worker, so fn must not rely on the pool's
 * initializer. Returns 0;
 * CTH_ETASK once every index has run if fn returned nonzero (a chunk stops
 * at its first failure), with cth_task_error() set to the first failure's
 * value in completion order; CTH_ECANCELED if terminate dropped chunks;
 * CTH_EINTR as cth_pool_map; CTH_EINVAL for NULL pool or fn, or a pool not
 * running. n = 0 returns 0 at once.
 * CTH_ENOTSUP on a process pool (data crosses as bytes there).
 */
CTH_API int cth_pool_parallel_for(cth_pool_t *pool, cth_pool_for_fn fn, void *arg, size_t n);

/*
 * cth_pool_imap - Pool.imap(func, items, chunksize): start fn over
 * items[0..n) and return an iterator at once, which yields the results in
 * input order, each as soon as it and those before it are done. chunksize
 * 0 means Python's default of 1 (Python: ValueError; see Departures).
 * Failures, as Python's: with chunksize 1 a failing task gives CTH_ETASK
 * at its position and the iteration goes on; with chunksize > 1 the tasks
 * run in chunks of chunksize consecutive items (a chunk stops at its first
 * failure), a chunk's values come once all of it has run, and a failing
 * chunk yields CTH_ETASK once in place of all its items, after which the
 * iteration ends (CTH_IMAP_END). items must stay valid until the iterator
 * is freed. Returns 0 and *it (the caller's, see cth_imap_free);
 * CTH_EINVAL for NULL pool, fn or it, NULL items with n > 0, or a pool not
 * running; CTH_ENOMEM.
 * CTH_ENOTSUP on a process pool (data crosses as bytes there).
 */
CTH_API int cth_pool_imap(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                          size_t chunksize, cth_imap_t **it);

/* cth_pool_imap_unordered - Pool.imap_unordered(func, items, chunksize):
 * as cth_pool_imap, but the iterator yields the results in completion
 * order (a chunk's together); a failure arrives in that order too. */
CTH_API int cth_pool_imap_unordered(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                                    size_t chunksize, cth_imap_t **it);

/*
 * cth_pool_imap_producer - imap over an iterator: items come from
 * producer(ctx, &item, &end), called only in the threads that create the
 * iterator and call cth_imap_next, never concurrently, in whole chunks. At
 * most max_inflight items (0 = 4 x workers x chunksize; rounded up to a
 * whole number of chunks) are read but not yet consumed by cth_imap_next,
 * so an endless or huge input runs in bounded memory (Python reads its
 * input eagerly: gh-84291; 3.15's buffersize). A producer failure (a
 * nonzero return), as Python's (test_imap_handle_iterable_exception): the
 * items read into a chunk it cut short are dropped, never run; CTH_ETASK,
 * with cth_task_error() the producer's value, comes right after the last
 * whole chunk (with chunksize 1, at its own position), and the iteration
 * ends after it. Until the producer has ended, the iterator keeps a closed
 * pool's workers (its next reads are still accepted), so after
 * cth_pool_close, cth_pool_join waits for the consumer to read the input
 * to its end or to free the iterator. Returns as cth_pool_imap
 * (CTH_EINVAL also for a NULL producer).
 * CTH_ENOTSUP on a process pool (data crosses as bytes there).
 */
CTH_API int cth_pool_imap_producer(cth_pool_t *pool, cth_pool_fn fn, cth_imap_producer_fn producer,
                                   void *ctx, size_t chunksize, size_t max_inflight,
                                   cth_imap_t **it);

/* cth_pool_imap_unordered_producer - cth_pool_imap_producer yielding the
 * results in completion order, as cth_pool_imap_unordered. */
CTH_API int cth_pool_imap_unordered_producer(cth_pool_t *pool, cth_pool_fn fn,
                                             cth_imap_producer_fn producer, void *ctx,
                                             size_t chunksize, size_t max_inflight,
                                             cth_imap_t **it);

/* ---- records and buffers: the calls of both backends ------------------------- */

/*
 * cth_pool_map_records - Pool.map over an array of n fixed-size records:
 * fn(in + i * in_size, out + i * out_size) for i in [0, n), in chunks of
 * chunksize items (0 = Python's default, as cth_pool_map), waiting for all
 * of them. No casts and no pointer arrays: a map over 100k ints is in, an
 * int[100000], in_size sizeof(int). in_size or out_size may be 0 (fn then
 * gets NULL there; in or out may be NULL). On processes the records are
 * copied once into memory the workers share, and the results written there
 * in place are copied into out as each chunk finishes; records inside an
 * allocation of cth_pool_shared_alloc are not copied: the workers read the
 * inputs and write the outputs there. Returns as
 * cth_pool_map (a failure, as there, only once every chunk has finished;
 * a chunk stops at its first failing item), plus CTH_EWORKER (a worker
 * died in a chunk: the other chunks still ran), CTH_ETIMEDOUT (an item
 * ran past the task timeout) and CTH_EPROTO (a worker broke the protocol)
 * on processes, those codes taking the first failure's place as CTH_ETASK
 * does; CTH_EINVAL also for NULL in or out
 * with a nonzero size and n > 0, and CTH_EOVERFLOW when n x size
 * overflows; CTH_ENOENT when fn lies in no loaded object (processes).
 * Nothing is allocated on threads, where the calling thread runs chunks
 * too unless the pool has an initializer, as cth_pool_map.
 */
CTH_API int cth_pool_map_records(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                                 size_t in_size, size_t n, size_t chunksize, void *out,
                                 size_t out_size);

/*
 * cth_pool_map_records_async - cth_pool_map_records without waiting (as
 * cth_pool_map_async): in and out must stay valid until the result is
 * ready; cth_result_get's value, and the callback's, is out. opts may be
 * NULL. Returns 0 and *res (the caller's); the errors of
 * cth_pool_map_records that can be known at once, CTH_EINVAL for NULL res,
 * CTH_ENOMEM. An empty map is ready at once.
 */
CTH_API int cth_pool_map_records_async(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                                       size_t in_size, size_t n, size_t chunksize,
                                       const cth_result_opts_t *opts, void *out, size_t out_size,
                                       cth_result_t **res);

/*
 * cth_pool_imap_records - Pool.imap over records: as cth_pool_map_records
 * without waiting, returning an iterator whose cth_imap_next yields, in
 * input order, a pointer to each item's result record inside out (so the
 * item's index is (value - out) / out_size; with out_size 0, the value is
 * NULL). chunksize 0 means 1; failures as cth_pool_imap's. in and out must
 * stay valid until the iterator is freed. Returns 0 and *it; errors as
 * cth_pool_imap, cth_pool_map_records.
 */
CTH_API int cth_pool_imap_records(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                                  size_t in_size, size_t n, size_t chunksize, void *out,
                                  size_t out_size, cth_imap_t **it);

/* cth_pool_imap_unordered_records - Pool.imap_unordered over records: as
 * cth_pool_imap_records, in completion order (the value still points at
 * the item's own place in out). */
CTH_API int cth_pool_imap_unordered_records(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                                            size_t in_size, size_t n, size_t chunksize, void *out,
                                            size_t out_size, cth_imap_t **it);

/*
 * cth_pool_apply_buffer - Pool.apply(func, (data,)) with bytes: run
 * fn(in, in_size, &buf, &len) on a worker and wait. On success *out is
 * the task's buffer (NULL for an empty one), now the caller's to free(),
 * and *out_size its length; out and out_size may be NULL (the buffer is
 * then freed). Any sizes, 0 bytes to gigabytes, on both backends. Returns
 * as cth_pool_apply, plus CTH_EWORKER, CTH_ETIMEDOUT, CTH_EPROTO (the
 * worker reported a result it did not deliver whole) and CTH_ENOMEM or
 * CTH_EAGAIN (the task ran, but the worker had no memory, descriptor or
 * shared memory to hand a large result back) on processes, and
 * CTH_EINVAL for NULL in with in_size > 0. On processes, when a worker is
 * idle the calling thread hands it the task itself (no worker thread in
 * between; not with maxtasksperchild); an interruption of the main thread
 * then comes once the task is done, and the next wait reports it.
 */
CTH_API int cth_pool_apply_buffer(cth_pool_t *pool, cth_pool_buffer_fn fn, const void *in,
                                  size_t in_size, void **out, size_t *out_size);

/*
 * cth_pool_apply_buffer_async - Pool.apply_async(func, (data,)) with
 * bytes: queue fn over the in_size bytes at in (they must stay valid until
 * the result is ready; a process pool copies them at once) and return *res
 * at once. The result's buffer: cth_result_get_buffer, or cth_result_get's
 * value (the callback's too); it belongs to the result and goes with
 * cth_result_free. Returns 0; CTH_EINVAL (as cth_pool_apply_buffer, or a
 * NULL res), CTH_ENOMEM. On processes (without maxtasksperchild), a worker
 * may take queued tasks of the same function in one batch, as many as
 * run in about 50 us by its last timing of that function (short tasks
 * only); each is still a task of its own: its failure, its result, its
 * callback. If the worker dies (or is killed past task_timeout) in a
 * batch, only the task it was running fails (CTH_EWORKER, CTH_ETIMEDOUT);
 * those before it keep their results and those behind it run on its
 * replacement; after terminate the batch's tasks not run finish with
 * CTH_ECANCELED; a worker that breaks the protocol fails the batch's tasks
 * from its first malformed result on with CTH_EPROTO.
 */
CTH_API int cth_pool_apply_buffer_async(cth_pool_t *pool, cth_pool_buffer_fn fn, const void *in,
                                        size_t in_size, const cth_result_opts_t *opts,
                                        cth_result_t **res);

/*
 * cth_pool_shared_alloc - multiprocessing.shared_memory.SharedMemory(create=True,
 * size=size) (or multiprocessing.Array) for a pool: size bytes of zeroed,
 * page-aligned memory that the pool's workers read and write in place.
 * When the input records of cth_pool_map_records (or of its async and
 * imap twins) lie wholly inside one such allocation, a process pool's
 * workers read them there instead of a copy; when the output records do
 * (the same allocation or another), the workers write them there, and
 * nothing is copied back: the results are in out when the call returns or
 * the result is ready, and an imap still yields each chunk as it
 * finishes. One side alone may be in shared memory (only that side is not
 * copied). On a process pool the memory is a memfd, its pages reserved at
 * once; each worker maps an allocation when a job first needs it and keeps
 * up to 4 mapped (when a job needs another, it unmaps the one it used
 * least recently, and maps it again if a later job needs it). On threads
 * and MPI ranks (which share no memory across machines) it is plain
 * memory, the same calls working unchanged. A fork child of the program
 * shares a process pool's allocations with it (a thread pool's it gets a
 * copy of, as any memory), and so does a worker started by
 * CTH_START_FORK: it maps every allocation made before it started. A
 * worker that runs a job in place can write anywhere in the allocations it
 * was sent (and under fork, in those it inherited): results in shared
 * memory are as trustworthy as the task code (the pool itself keeps
 * nothing of its own there). Outputs written in place land as the tasks
 * write them: an item that fails, or a worker that dies in it, may leave
 * its output record partly written. pool: the pool whose workers use it; size: bytes (> 0);
 * mem: where its address goes.
 * ("Wholly inside" means within the size bytes asked for.)
 * Returns 0 and *mem; CTH_EINVAL for a NULL pool or mem, or size 0;
 * CTH_EOVERFLOW when size rounded up to whole pages overflows; CTH_ENOMEM
 * when the memory cannot be had (more than the machine has, or than the
 * kernel gives); CTH_EAGAIN when no descriptor is left (processes).
 */
CTH_API int cth_pool_shared_alloc(cth_pool_t *pool, size_t size, void **mem);

/*
 * cth_pool_shared_free - SharedMemory.close() and unlink(): give back an
 * allocation of cth_pool_shared_alloc. A job still using it (a map_async
 * or an imap over records inside it) keeps it until the job is done: its
 * workers never write into memory given back, but the caller must not
 * touch mem after this call (a fork child of the program made while it was
 * allocated still may: its memory stays until that child is gone too).
 * cth_pool_free frees the allocations left. mem
 * NULL is ignored (returns 0).
 * Returns 0; CTH_EINVAL for a NULL pool, or a mem that is not the address
 * of an allocation of this pool still allocated (an address inside one, a
 * pointer from elsewhere, an allocation freed already): nothing is freed.
 */
CTH_API int cth_pool_shared_free(cth_pool_t *pool, const void *mem);

/* cth_pool_close - Pool.close(): no more tasks; the accepted ones (and
 * running imap iterations) complete, then the workers exit. Repeating it,
 * or closing a terminated pool, is harmless. Returns 0, or CTH_EINVAL for
 * NULL. */
CTH_API int cth_pool_close(cth_pool_t *pool);

/*
 * cth_pool_terminate - Pool.terminate(): stop at once. Queued tasks and
 * chunks are dropped and their AsyncResults, maps and imap items finish
 * with CTH_ECANCELED (their error_callbacks run, in the calling thread
 * or, for a task a worker was taking at that moment, in that worker);
 * on threads, running tasks finish in the background (threads cannot be
 * killed); on processes, the workers are stopped (SIGTERM, then SIGKILL
 * after a grace period of 0.1 s) and their running tasks finish with
 * CTH_ECANCELED too. Returns promptly. Harmless to repeat. Returns 0, or
 * CTH_EINVAL for NULL.
 */
CTH_API int cth_pool_terminate(cth_pool_t *pool);

/*
 * cth_pool_join - Pool.join(): wait for every worker to exit (after close:
 * once all accepted work is done). Beyond Python, with a timeout (every
 * blocking call takes one). Returns 0; CTH_ETIMEDOUT if workers were
 * still running when the timeout expired (join again later); CTH_EINVAL
 * while the pool is still running (Python's ValueError "Pool is still
 * running"), for NULL or a bad timeout (CTH_EOVERFLOW above
 * CTH_TIMEOUT_MAX); CTH_EDEADLK from one of the pool's own workers;
 * CTH_EINTR in an interrupted main thread.
 */
CTH_API int cth_pool_join(cth_pool_t *pool, double timeout);

/*
 * cth_pool_free - the end of `with Pool() as p:` plus the memory: terminate
 * a pool that was not closed (Python's __exit__ calls terminate), join it,
 * and free it. AsyncResults and imap iterators stay valid and are freed on
 * their own, before or after the pool (an iterator then yields what had
 * run, CTH_ECANCELED for the rest, and reads no more input); the pool's
 * memory, including the AsyncResults it recycles (it keeps as many as were
 * ever outstanding at once, 320 bytes each on 64-bit systems), goes with
 * the last of them; results that another thread freed just before, kept
 * for its next calls, go back when that thread frees one of the pool's
 * again, or another pool's, or ends. A closed pool's join waits for its producer iterators to finish
 * reading their input (cth_pool_imap_producer): free them first, or
 * terminate. Must not be called from one of the pool's workers. NULL is
 * ignored. A process pool leaves nothing behind: no zombie, no orphan, no
 * shared memory, no descriptor. Should the program be killed instead, its
 * workers exit within about a second.
 */
CTH_API void cth_pool_free(cth_pool_t *pool);

/* ---- AsyncResult ---------------------------------------------------------------- */

/*
 * cth_result_get - AsyncResult.get(timeout): wait until ready, then return
 * the task's outcome: 0 with *value (value may be NULL) set to its result
 * (for map_async, the results array); CTH_ETASK if a task failed (its
 * value in cth_task_error() and cth_result_task_error(), as Python
 * re-raises the exception); CTH_ECANCELED after terminate; on processes
 * CTH_EWORKER, CTH_ETIMEDOUT, CTH_EPROTO (see cth_pool_map_records and
 * cth_pool_apply_buffer). CTH_ETIMEDOUT if not ready within the timeout (Python's multiprocessing.TimeoutError);
 * CTH_EINTR in an interrupted main thread; CTH_EINVAL / CTH_EOVERFLOW for
 * NULL res or a bad timeout. Any thread, any number of times.
 */
CTH_API int cth_result_get(cth_result_t *res, void **value, double timeout);

/* cth_result_wait - AsyncResult.wait(timeout): wait until ready. Returns 0
 * when ready (whatever the outcome; Python returns None either way),
 * CTH_ETIMEDOUT, CTH_EINTR, CTH_EINVAL (NULL res or a bad timeout),
 * CTH_EOVERFLOW. */
CTH_API int cth_result_wait(cth_result_t *res, double timeout);

/* cth_result_ready - AsyncResult.ready(): whether the task has finished
 * (false for NULL). Acquire ordering: once true, the value is visible. */
CTH_API bool cth_result_ready(const cth_result_t *res);

/* cth_result_successful - AsyncResult.successful(): true only when the
 * result is ready and succeeded; false when it failed, while it is not
 * ready yet (where Python raises ValueError "not ready": ask
 * cth_result_ready to tell the two apart), and for NULL. */
CTH_API bool cth_result_successful(const cth_result_t *res);

/* cth_result_task_error - the failed task's own nonzero value when the
 * result is ready with CTH_ETASK (for map_async / starmap_async, the first
 * failure in completion order, the one recorded), or the dead worker's
 * wait status with CTH_EWORKER; 0 otherwise (success, CTH_ECANCELED, not
 * ready, NULL). In Python, the exception get() raises. */
CTH_API int cth_result_task_error(const cth_result_t *res);

/*
 * cth_result_get_buffer - cth_result_get for cth_pool_apply_buffer_async:
 * wait until ready, then 0 with *out (NULL for an empty buffer) and
 * *out_size (either may be NULL). The buffer stays the result's, valid
 * until cth_result_free; any thread, any number of times. Returns as
 * cth_result_get; CTH_EINVAL also for a result of another call.
 */
CTH_API int cth_result_get_buffer(cth_result_t *res, void **out, size_t *out_size, double timeout);

/* cth_result_free - drop the caller's AsyncResult. A task still pending
 * runs on (its callbacks too) and its memory goes when it finishes. NULL is
 * ignored. */
CTH_API void cth_result_free(cth_result_t *res);

/* ---- imap iterators ------------------------------------------------------------- */

/*
 * cth_imap_next - IMapIterator.next(timeout): the next result. Returns 0
 * with *value (value may be NULL) set; CTH_ETASK at a failing task's
 * position (with chunksize 1 the iteration goes on; with chunksize > 1 it
 * is the failing chunk's one outcome and the last: see cth_pool_imap) or
 * for a failing producer (see cth_pool_imap_producer), its value in
 * cth_task_error(); for records on processes, CTH_EWORKER (the wait status
 * in cth_task_error()), CTH_ETIMEDOUT or CTH_EPROTO in the same place;
 * CTH_ECANCELED for an item terminate dropped;
 * CTH_ENOMEM where a producer iterator could not read on;
 * CTH_IMAP_END after the last (StopIteration); CTH_ETIMEDOUT if none
 * arrived within the timeout; CTH_EINTR in an interrupted main thread;
 * CTH_EINVAL / CTH_EOVERFLOW for NULL it or a bad timeout. One consumer at
 * a time per iterator. A producer iterator reads its next items here, in
 * the calling thread.
 */
CTH_API int cth_imap_next(cth_imap_t *it, void **value, double timeout);

/* cth_imap_free - free an iterator, consumed or not (Python: the iterator
 * garbage-collected). Waits (without limit, not interruptible) for its
 * tasks already running; queued ones are skipped. NULL is ignored. */
CTH_API void cth_imap_free(cth_imap_t *it);

#ifdef __cplusplus
}
#endif
#endif
