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
 * meanwhile). The thread's own cth_task_error() comes back afterwards. */
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

/* Options of cth_pool_create; zero-initialised or NULL means Python's
 * defaults. */
typedef struct cth_pool_opts {
    size_t processes;                    /* workers; 0 = os.process_cpu_count(): the
                                            CPUs the calling thread may run on */
    size_t maxtasksperchild;             /* tasks (chunks) before a worker is replaced;
                                            0 = unlimited (Python's None) */
    cth_pool_initializer_fn initializer; /* run once in each worker, or NULL */
    void *initarg;                       /* initializer's argument (initargs) */
} cth_pool_opts_t;

/* Callbacks of the _async calls (NULL: none). */
typedef struct cth_result_opts {
    cth_pool_callback_fn callback;             /* on success, or NULL */
    cth_pool_error_callback_fn error_callback; /* on failure, or NULL */
    void *cb_arg;                              /* passed first to either callback */
} cth_result_opts_t;

/* The end of an imap iteration (Python's StopIteration): cth_imap_next's
 * only positive return. */
#define CTH_IMAP_END 1

/* ---- the pool ----------------------------------------------------------------- */

/*
 * cth_pool_create - ThreadPool(processes, initializer, initargs) (and
 * Pool's maxtasksperchild). Starts the workers before returning.
 * pool: where the new pool goes; opts: NULL or zero fields for Python's
 * defaults (see cth_pool_opts_t).
 * Returns 0 and *pool; CTH_EINVAL for a NULL pool; CTH_EOVERFLOW for
 * processes above INT_MAX; CTH_ENOMEM, CTH_EAGAIN (no thread),
 * CTH_ESHUTDOWN (the library is shutting down).
 */
CTH_API int cth_pool_create(cth_pool_t **pool, const cth_pool_opts_t *opts);

/* cth_pool_size - len(pool._pool): the number of workers; 0 for NULL. */
CTH_API size_t cth_pool_size(const cth_pool_t *pool);

/*
 * cth_pool_apply - Pool.apply(func, (arg,)): run fn(arg, &value) on a
 * worker and wait for it; result (may be NULL) receives the value.
 * Returns 0 with *result set (the value may be NULL); CTH_ETASK if the task
 * returned nonzero (that value in cth_task_error()); CTH_EINVAL for NULL
 * pool or fn, or a pool not running (ValueError "Pool not running");
 * CTH_ECANCELED if the pool was terminated before the task ran; CTH_EINTR
 * in an interrupted main thread (a task not yet started is dropped, a
 * running one is waited for and its value lost). No allocation.
 */
CTH_API int cth_pool_apply(cth_pool_t *pool, cth_pool_fn fn, void *arg, void **result);

/*
 * cth_pool_apply_async - Pool.apply_async(func, (arg,), callback=,
 * error_callback=). Queues fn(arg) and returns at once with *res, an
 * AsyncResult the caller owns (release it with cth_result_free, before or
 * after it is ready). opts (the callbacks) may be NULL. Returns 0; CTH_EINVAL
 * for NULL pool, fn or res, or a pool not running; CTH_ENOMEM. The task's
 * outcome is cth_result_get's (CTH_ETASK: see cth_result_task_error). Lone
 * tasks go through a lock-free ring and wake no worker while one is
 * spinning; tasks start in submission order.
 */
CTH_API int cth_pool_apply_async(cth_pool_t *pool, cth_pool_fn fn, void *arg,
                                 const cth_result_opts_t *opts, cth_result_t **res);

/*
 * cth_pool_map - Pool.map(func, items, chunksize): fn(items[i], &results[i])
 * for i in [0, n), spread over the workers in chunks of chunksize
 * consecutive items (0 = Python's default, ceil(n / (4 x workers))), and
 * wait for all of them. results (n slots, may be NULL) are in input order.
 * Returns 0 when every task succeeded; CTH_ETASK when one failed, only
 * after every chunk has finished (as Python; a chunk stops at its first
 * failing item, as Python's mapstar), with cth_task_error() set to the
 * value of the first failure in completion order; CTH_ECANCELED if
 * terminate dropped chunks; CTH_EINVAL for NULL pool or fn, NULL items
 * with n > 0, or a pool not running; CTH_EINTR in an interrupted main
 * thread (the chunks not yet started are dropped; it returns once the
 * running ones have finished). n = 0 returns 0 at once. No allocation.
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
 */
CTH_API int cth_pool_map_async(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                               size_t chunksize, const cth_result_opts_t *opts, void **results,
                               cth_result_t **res);

/*
 * cth_pool_starmap - Pool.starmap(func, [args...]): in C each item's
 * arguments are a struct, and the items are an array of n structs of size
 * bytes each (as calloc's count and size): fn(&args[i], &results[i]).
 * Otherwise as cth_pool_map (size 0 is CTH_EINVAL).
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
 * part, so fn must not rely on the pool's initializer. Returns 0;
 * CTH_ETASK once every index has run if fn returned nonzero (a chunk stops
 * at its first failure), with cth_task_error() set to the first failure's
 * value in completion order; CTH_ECANCELED if terminate dropped chunks;
 * CTH_EINTR as cth_pool_map; CTH_EINVAL for NULL pool or fn, or a pool not
 * running. n = 0 returns 0 at once.
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
 * running tasks finish in the background (threads cannot be killed);
 * returns promptly. Harmless to repeat. Returns 0, or CTH_EINVAL for NULL.
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
 * the task's outcome: 0 with *value (value may be NULL) set to its result
 * (for map_async, the results array); CTH_ETASK if a task failed (its
 * value in cth_task_error() and cth_result_task_error(), as Python
 * re-raises the exception); CTH_ECANCELED after terminate. CTH_ETIMEDOUT
 * if not ready within the timeout (Python's multiprocessing.TimeoutError);
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
 * failure in completion order, the one recorded); 0 otherwise (success,
 * CTH_ECANCELED, not ready, NULL). In Python, the exception get() raises. */
CTH_API int cth_result_task_error(const cth_result_t *res);

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
 * cth_task_error(); CTH_ECANCELED for an item terminate dropped;
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
