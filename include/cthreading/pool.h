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
 * in *result and returns 0, or returns a negative code (a CTH_E* code or
 * any negative int of the program's own) to fail, the way a Python task
 * raises. The code reaches whoever waits, as Python re-raises the
 * exception: cth_pool_apply and cth_result_get return it, error_callback
 * receives it, map returns the first failure in completion order once
 * every chunk has finished (no fail-fast, as Python), imap's next returns
 * it at the item's position (with chunksize > 1, in place of its whole
 * chunk, and the iteration ends there, as Python's). A failing task never
 * harms the pool.
 *
 * States, as Python's: RUN, then CLOSE (no new tasks, the accepted ones all
 * run) or TERMINATE (queued tasks are dropped). Blocking calls take a
 * timeout (base.h). Departures from Python, on purpose: docs/design.md.
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

/* A task: store the value in *result and return 0, or return a negative
 * code to fail (*result is then ignored). */
typedef int (*cth_pool_fn)(void *arg, void **result);

/* The body of a parallel-for: the work of one index; 0 or a negative code. */
typedef int (*cth_pool_for_fn)(void *arg, size_t index);

/* An AsyncResult's callback: callback(value, cb_arg) on success (exactly
 * one of callback and error_callback runs). */
typedef void (*cth_pool_callback_fn)(void *value, void *cb_arg);
/* An AsyncResult's error_callback: error_callback(err, cb_arg) on failure,
 * err being the task's negative code or CTH_ECANCELED. */
typedef void (*cth_pool_error_callback_fn)(int err, void *cb_arg);

/* An imap producer (Python's input iterator): store the next item in *item
 * and return 1, return 0 at the end, or a negative code to fail (the code
 * is delivered after the last whole chunk read, and the iteration ends
 * after it: see cth_pool_imap_producer). */
typedef int (*cth_imap_producer_fn)(void *ctx, void **item);

/* Options of cth_pool_create; zero-initialised or NULL means Python's
 * defaults. */
typedef struct cth_pool_opts {
    int processes;                  /* workers; 0 = os.process_cpu_count(): the CPUs
                                       the calling thread may run on; < 0: CTH_EINVAL */
    void (*initializer)(void *arg); /* run once in each worker before its first task */
    void *initarg;                  /* initializer's argument (initargs) */
    long maxtasksperchild;          /* tasks (chunks) before a worker is replaced;
                                       0 = unlimited (Python's None); < 0: CTH_EINVAL */
} cth_pool_opts;

/* Callbacks of the _async calls (NULL: none). */
typedef struct cth_result_opts {
    cth_pool_callback_fn callback;             /* on success, or NULL */
    cth_pool_error_callback_fn error_callback; /* on failure, or NULL */
    void *cb_arg;                              /* passed to either callback */
} cth_result_opts;

/* The end of an imap iteration (Python's StopIteration): cth_imap_next's
 * only positive return. */
#define CTH_IMAP_END 1

/* ---- the pool ----------------------------------------------------------------- */

/*
 * cth_pool_create - ThreadPool(processes, initializer, initargs) (and
 * Pool's maxtasksperchild). Starts the workers before returning.
 * Returns 0 and *pool; CTH_EINVAL for a NULL out-pointer, processes < 0 or
 * maxtasksperchild < 0 (Python's ValueError); CTH_ENOMEM, CTH_EAGAIN (no
 * thread), CTH_ESHUTDOWN (the library is shutting down).
 */
CTH_API int cth_pool_create(cth_pool_t **pool, const cth_pool_opts *opts);

/* cth_pool_size - len(pool._pool): the number of workers, or CTH_EINVAL. */
CTH_API int cth_pool_size(const cth_pool_t *pool);

/*
 * cth_pool_apply - Pool.apply(func, (arg,)): run fn(arg) on a worker and
 * wait for it. Returns the task's own return (0 with *result set, may be
 * NULL; or its negative code); CTH_EINVAL for NULL or a pool not running;
 * CTH_ECANCELED if the pool was terminated before the task ran; CTH_EINTR
 * in an interrupted main thread (a task not yet started is dropped, a
 * running one is waited for and its value lost). No allocation.
 */
CTH_API int cth_pool_apply(cth_pool_t *pool, cth_pool_fn fn, void *arg, void **result);

/*
 * cth_pool_apply_async - Pool.apply_async(func, (arg,), callback=,
 * error_callback=). Queues fn(arg) and returns at once with *res, an
 * AsyncResult the caller owns (release it with cth_result_free, before or
 * after it is ready). opts may be NULL. Returns 0; CTH_EINVAL for NULL
 * arguments or a pool not running; CTH_ENOMEM. Lone tasks go through a
 * lock-free ring and wake no worker while one is spinning; tasks start in
 * submission order.
 */
CTH_API int cth_pool_apply_async(cth_pool_t *pool, cth_pool_fn fn, void *arg,
                                 const cth_result_opts *opts, cth_result_t **res);

/*
 * cth_pool_map - Pool.map(func, items, chunksize): fn(items[i], &results[i])
 * for i in [0, n), spread over the workers in chunks of chunksize
 * consecutive items (0 = Python's default, ceil(n / (4 x workers))), and
 * wait for all of them. results (n slots, may be NULL) are in input order.
 * Returns 0 when every task succeeded; else the first failure in
 * completion order, returned only after every chunk has finished (as
 * Python; a chunk stops at its first failing item, as Python's mapstar);
 * CTH_ECANCELED if terminate dropped chunks; CTH_EINVAL for NULL fn, NULL
 * items with n > 0, or a pool not running; CTH_EINTR in an interrupted main
 * thread (the chunks not yet started are dropped; it returns once the
 * running ones have finished). n = 0 returns 0 at once. No allocation.
 */
CTH_API int cth_pool_map(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                         size_t chunksize, void **results);

/*
 * cth_pool_map_async - Pool.map_async(func, items, chunksize, callback,
 * error_callback): as cth_pool_map, without waiting. items and results
 * must stay valid until the result is ready. cth_result_get's value is
 * results; the callback receives results. Returns 0 and *res (the caller's
 * to free); CTH_EINVAL, CTH_ENOMEM. An empty map is ready at once.
 */
CTH_API int cth_pool_map_async(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                               size_t chunksize, void **results, const cth_result_opts *opts,
                               cth_result_t **res);

/*
 * cth_pool_starmap - Pool.starmap(func, [args...]): in C each item's
 * arguments are a struct, and the items are an array of n structs of size
 * bytes each: fn(&args[i], &results[i]). Otherwise as cth_pool_map
 * (size 0 is CTH_EINVAL).
 */
CTH_API int cth_pool_starmap(cth_pool_t *pool, cth_pool_fn fn, const void *args, size_t size,
                             size_t n, size_t chunksize, void **results);

/* cth_pool_starmap_async - Pool.starmap_async: cth_pool_starmap without
 * waiting, as cth_pool_map_async. */
CTH_API int cth_pool_starmap_async(cth_pool_t *pool, cth_pool_fn fn, const void *args,
                                   size_t size, size_t n, size_t chunksize, void **results,
                                   const cth_result_opts *opts, cth_result_t **res);

/*
 * cth_pool_parallel_for - fn(arg, index) for every index in [0, n) on the
 * workers and the calling thread together (Python has no equivalent;
 * OpenMP's `parallel for` is the model). Indices go out in chunks from a
 * shared atomic counter; nothing is allocated. The calling thread takes
 * part, so tasks must not rely on the pool's initializer. Returns 0, or the
 * first failure once every index has run (a chunk stops at its first
 * failure); CTH_ECANCELED if terminate dropped chunks; CTH_EINTR as
 * cth_pool_map; CTH_EINVAL for NULL or a pool not running. n = 0 returns 0
 * at once.
 */
CTH_API int cth_pool_parallel_for(cth_pool_t *pool, size_t n, cth_pool_for_fn fn, void *arg);

/*
 * cth_pool_imap - Pool.imap(func, items, chunksize): start fn over
 * items[0..n) and return an iterator at once, which yields the results in
 * input order, each as soon as it and those before it are done. chunksize
 * 0 means Python's default of 1 (Python: ValueError; see Departures).
 * Failures, as Python's: with chunksize 1 a failing task's code comes at
 * its position and the iteration goes on; with chunksize > 1 the tasks run
 * in chunks of chunksize consecutive items (a chunk stops at its first
 * failure), a chunk's values come once all of it has run, and a failing
 * chunk yields its code once in place of all its items, after which the
 * iteration ends (CTH_IMAP_END). items must stay valid until the iterator
 * is freed. Returns 0 and *it (the caller's, see cth_imap_free);
 * CTH_EINVAL for NULL or a pool not running; CTH_ENOMEM.
 */
CTH_API int cth_pool_imap(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                          size_t chunksize, cth_imap_t **it);

/* cth_pool_imap_unordered - Pool.imap_unordered(func, items, chunksize):
 * as cth_pool_imap, but the iterator yields the results in completion
 * order (a chunk's together); a failure arrives in that order too. */
CTH_API int cth_pool_imap_unordered(cth_pool_t *pool, cth_pool_fn fn, void *const *items,
                                    size_t n, size_t chunksize, cth_imap_t **it);

/*
 * cth_pool_imap_producer - imap over an iterator: items come from
 * producer(ctx), called only in the threads that create the iterator and
 * call cth_imap_next, never concurrently, in whole chunks. At most
 * max_inflight items (0 = 4 x workers x chunksize; rounded up to a whole
 * number of chunks) are read but not yet consumed by cth_imap_next, so an
 * endless or huge input runs in bounded memory (Python reads its input
 * eagerly: gh-84291; 3.15's buffersize). A producer failure, as Python's
 * (test_imap_handle_iterable_exception): the items read into a chunk it
 * cut short are dropped, never run; its code comes right after the last
 * whole chunk (with chunksize 1, at its own position), and the iteration
 * ends after it. Until the producer has ended, the iterator
 * keeps a closed pool's workers (its next reads are still accepted), so
 * after cth_pool_close, cth_pool_join waits for the consumer to read the
 * input to its end or to free the iterator. Returns as cth_pool_imap
 * (CTH_EINVAL also for a NULL producer).
 */
CTH_API int cth_pool_imap_producer(cth_pool_t *pool, cth_pool_fn fn,
                                   cth_imap_producer_fn producer, void *ctx, size_t chunksize,
                                   size_t max_inflight, cth_imap_t **it);

/* cth_pool_imap_unordered_producer - cth_pool_imap_producer yielding the
 * results in completion order, as cth_pool_imap_unordered. */
CTH_API int cth_pool_imap_unordered_producer(cth_pool_t *pool, cth_pool_fn fn,
                                             cth_imap_producer_fn producer, void *ctx,
                                             size_t chunksize, size_t max_inflight,
                                             cth_imap_t **it);

/* cth_pool_close - Pool.close(): no more tasks; the accepted ones (and
 * running imap iterations) complete, then the workers exit. Repeating it,
 * or closing a terminated pool, is harmless. Returns 0 or CTH_EINVAL. */
CTH_API int cth_pool_close(cth_pool_t *pool);

/*
 * cth_pool_terminate - Pool.terminate(): stop at once. Queued tasks and
 * chunks are dropped and their AsyncResults, maps and imap items finish
 * with CTH_ECANCELED (their error_callbacks run, in the calling thread
 * or, for a task a worker was taking at that moment, in that worker);
 * running tasks finish in the background (threads cannot be killed);
 * returns promptly. Harmless to repeat. Returns 0 or CTH_EINVAL.
 */
CTH_API int cth_pool_terminate(cth_pool_t *pool);

/*
 * cth_pool_join - Pool.join(): wait for every worker to exit (after close:
 * once all accepted work is done). Beyond Python, with a timeout (DESIGN:
 * every blocking call takes one). Returns 0; CTH_ETIMEDOUT if workers were
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
 * ever outstanding at once, about 200 bytes each), goes with the last of
 * them. A closed pool's join waits for its producer iterators to finish
 * reading their input (cth_pool_imap_producer): free them first, or
 * terminate. Must not be called from one of the pool's workers. NULL is
 * ignored.
 */
CTH_API void cth_pool_free(cth_pool_t *pool);

/* ---- AsyncResult ---------------------------------------------------------------- */

/*
 * cth_result_get - AsyncResult.get(timeout): wait until ready, then return
 * the task's outcome: 0 with *value (may be NULL) set to its result (for
 * map_async, the results array), or its negative code; CTH_ECANCELED after
 * terminate. CTH_ETIMEDOUT if not ready within the timeout (Python's
 * multiprocessing.TimeoutError); CTH_EINTR in an interrupted main thread;
 * CTH_EINVAL / CTH_EOVERFLOW for NULL or a bad timeout. Any thread, any
 * number of times.
 */
CTH_API int cth_result_get(cth_result_t *res, double timeout, void **value);

/* cth_result_wait - AsyncResult.wait(timeout): wait until ready. Returns 0
 * when ready (whatever the outcome), CTH_ETIMEDOUT, CTH_EINTR, CTH_EINVAL,
 * CTH_EOVERFLOW. */
CTH_API int cth_result_wait(cth_result_t *res, double timeout);

/* cth_result_ready - AsyncResult.ready(): whether the task has finished
 * (false for NULL). Acquire ordering: once true, the value is visible. */
CTH_API bool cth_result_ready(const cth_result_t *res);

/* cth_result_successful - AsyncResult.successful(): 1 if it finished
 * without error, 0 if it failed; CTH_EAGAIN if not ready yet (Python's
 * ValueError "not ready"); CTH_EINVAL for NULL. */
CTH_API int cth_result_successful(const cth_result_t *res);

/* cth_result_free - drop the caller's AsyncResult. A task still pending
 * runs on (its callbacks too) and its memory goes when it finishes. NULL is
 * ignored. */
CTH_API void cth_result_free(cth_result_t *res);

/* ---- imap iterators ------------------------------------------------------------- */

/*
 * cth_imap_next - IMapIterator.next(timeout): the next result. Returns 0
 * with *value set; a task's negative code at its position (with chunksize
 * 1 the iteration goes on; with chunksize > 1 it is the failing chunk's
 * one outcome and the last: see cth_pool_imap); the producer's code (see
 * cth_pool_imap_producer); CTH_IMAP_END after the last (StopIteration);
 * CTH_ETIMEDOUT if none arrived within the timeout; CTH_EINTR in an
 * interrupted main thread; CTH_EINVAL / CTH_EOVERFLOW for NULL or a bad
 * timeout. One consumer at a time per iterator. A producer iterator reads
 * its next items here, in the calling thread.
 */
CTH_API int cth_imap_next(cth_imap_t *it, double timeout, void **value);

/* cth_imap_free - free an iterator, consumed or not. Waits (without limit,
 * not interruptible) for its tasks already running; queued ones are
 * skipped. NULL is ignored. */
CTH_API void cth_imap_free(cth_imap_t *it);

#ifdef __cplusplus
}
#endif
#endif
