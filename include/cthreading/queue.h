/* SPDX-License-Identifier: MIT */
/*
 * cthreading/queue.h - Python's queue module: Queue, LifoQueue,
 * PriorityQueue (one type, cth_queue_t, with a kind) and SimpleQueue
 * (cth_simple_queue_t).
 *
 * Both are opaque handles made by cth_*_create and released by cth_*_free.
 * They hold `void *` items they do not own: put hands an item over, get hands
 * it back. An item a queue must drop (cth_queue_shutdown with immediate, or
 * freeing a queue that still holds items) goes to the cth_free_fn given as
 * opts.free_item, so nothing is lost; without one it is simply forgotten.
 *
 * Python's exceptions become codes (base.h): queue.Empty and queue.Full are
 * CTH_EAGAIN when the call was told not to wait (timeout 0, Python's
 * block=False) and CTH_ETIMEDOUT when a positive timeout expired;
 * queue.ShutDown is CTH_ESHUTDOWN; ValueError is CTH_EINVAL. In the main
 * thread every wait returns CTH_EINTR on cth_interrupt_main() (thread.h), and
 * the call then had no effect.
 *
 * Departures from Python, on purpose: cth_queue_join takes a timeout;
 * PriorityQueue is stable (items that compare equal leave in the order they
 * were put); a timeout is validated on every put, bounded or not (Python
 * ignores a negative timeout on an unbounded queue); put_many/get_many move
 * several items at once.
 *
 * fork(). A queue of either type stays usable in the child (where only the
 * forking thread goes on): getters and putters that were waiting in it at
 * the fork are forgotten, as if they had never waited. The child's puts
 * never go to a getter that no longer exists, and the items of putters that
 * were waiting never get in; the items the queue held are there.
 * unfinished_tasks counts what the parent's put and task_done had counted.
 * As with sync.h's objects, a call another thread was inside of at the fork
 * (not waiting in it) may leave the queue locked in the child.
 *
 * Speed: docs/design.md (queue.h).
 */
#ifndef CTHREADING_QUEUE_H
#define CTHREADING_QUEUE_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Queue, LifoQueue, PriorityQueue --------------------------------------- */

/* A Queue, LifoQueue or PriorityQueue (opaque; cth_queue_create makes one). */
typedef struct cth_queue cth_queue_t;

/* Which of Python's three classes the queue behaves as. */
typedef enum cth_queue_kind {
    CTH_QUEUE_FIFO = 0,    /* queue.Queue: first in, first out */
    CTH_QUEUE_LIFO = 1,    /* queue.LifoQueue: last in, first out */
    CTH_QUEUE_PRIORITY = 2 /* queue.PriorityQueue: lowest first (by compare) */
} cth_queue_kind_t;

/*
 * cth_compare_fn - orders two items, qsort's convention: negative, 0 or
 * positive as a is lower than, equal to or higher than b. No context
 * argument (as qsort's), so that a qsort comparator serves unchanged.
 */
typedef int (*cth_compare_fn)(const void *a, const void *b);

/*
 * Options of cth_queue_create; NULL options (or all-zero) are a FIFO Queue
 * without a free function. The struct may grow: zero what you do not set.
 */
typedef struct cth_queue_opts {
    cth_queue_kind_t kind;  /* FIFO (the default), LIFO or PRIORITY */
    cth_compare_fn compare; /* PriorityQueue only, required (the lowest item
        leaves first). Called with the queue's lock held: it must not call
        into the queue. */
    cth_free_fn free_item;  /* Optional: receives each item the queue drops
        (immediate shutdown, freeing a non-empty queue). Called without the
        queue's lock held. */
} cth_queue_opts_t;

/*
 * cth_queue_create - Queue(maxsize) / LifoQueue(maxsize) /
 * PriorityQueue(maxsize). maxsize 0 means unbounded (Python's maxsize <= 0);
 * a maxsize above LONG_MAX is kept as LONG_MAX, a bound no queue reaches, so
 * that (size_t)-1 (a C port of Python's Queue(-1)) is unbounded as well.
 * opts may be NULL (a FIFO Queue, no free function).
 * On success *queue is a new queue the caller owns (release it with
 * cth_queue_free). Returns 0; CTH_EINVAL for a NULL queue pointer, an
 * unknown kind, or a PriorityQueue without compare; CTH_ENOMEM.
 */
CTH_API int cth_queue_create(cth_queue_t **queue, size_t maxsize, const cth_queue_opts_t *opts);

/*
 * cth_queue_free - release the queue. Items still in it go to the free
 * function (if any). Nobody may use the queue any more, nor wait in it:
 * shut it down and let the waiters leave first. NULL is ignored.
 */
CTH_API void cth_queue_free(cth_queue_t *queue);

/*
 * cth_queue_put - Queue.put(item, block=True, timeout). Adds item, waiting
 * up to timeout seconds for a free slot when the queue is bounded and full
 * (0: do not wait, Python's block=False; CTH_FOREVER: no limit). A consumer
 * waiting in get receives the item directly, and is woken once.
 * The checks run in Python's order: shut down → CTH_ESHUTDOWN (even when
 * unbounded); then the timeout (CTH_EINVAL negative or NaN, CTH_EOVERFLOW
 * above CTH_TIMEOUT_MAX); then full → CTH_EAGAIN (timeout 0) or wait, which
 * ends in CTH_ETIMEDOUT (Python's Full), CTH_ESHUTDOWN (shut down meanwhile)
 * or CTH_EINTR (main thread interrupted). CTH_ENOMEM if storage could not
 * grow. CTH_EINVAL for a NULL queue. On success the unfinished-task count
 * goes up by one; on any error the queue is unchanged and the caller still
 * owns item. item may be NULL. Thread-safe; put happens-before the get that
 * returns the item.
 */
CTH_API int cth_queue_put(cth_queue_t *queue, void *item, double timeout);

/* cth_queue_put_nowait - Queue.put_nowait(item): cth_queue_put(q, item, 0). */
CTH_API int cth_queue_put_nowait(cth_queue_t *queue, void *item);

/*
 * cth_queue_get - Queue.get(block=True, timeout). Removes the next item
 * (FIFO: oldest; LIFO: newest; PRIORITY: lowest, the oldest of equals) into
 * *item, waiting up to timeout seconds while the queue is empty.
 * Python's order: shut down and empty → CTH_ESHUTDOWN; then the timeout
 * (CTH_EINVAL, CTH_EOVERFLOW); then empty → CTH_EAGAIN (timeout 0) or wait,
 * ending in CTH_ETIMEDOUT (Python's Empty), CTH_ESHUTDOWN (shut down while
 * empty) or CTH_EINTR. After a non-immediate shutdown, get still drains the
 * remaining items. CTH_EINVAL for a NULL queue or item pointer. A producer
 * waiting in put for the slot moves its item in and is woken once.
 */
CTH_API int cth_queue_get(cth_queue_t *queue, void **item, double timeout);

/* cth_queue_get_nowait - Queue.get_nowait(): cth_queue_get(q, item, 0). */
CTH_API int cth_queue_get_nowait(cth_queue_t *queue, void **item);

/*
 * cth_queue_put_many - put items[0..n) in order, as many as fit (Python has
 * no such call): one claim on a FIFO's ring, or one lock round trip. Waits
 * up to timeout only while not even one item fits. Returns 0 with *put set
 * to the number put (1..n; 0 when n is 0), or an error code as
 * cth_queue_put when none was put (*put is then 0). The items not put
 * (items[*put..n)) still belong to the caller. Another thread's items may
 * come between them when a FIFO's ring had to grow during the call. An n
 * above INT_MAX puts at most INT_MAX items (a partial put, as when the
 * queue fills). CTH_EINVAL for a NULL queue or put, or NULL items with
 * n > 0.
 */
CTH_API int cth_queue_put_many(cth_queue_t *queue, void *const *items, size_t n, size_t *put,
                               double timeout);

/*
 * cth_queue_get_many - take up to n items into items[], in the order gets
 * would return them: all n when the queue holds that many (a FIFO takes
 * them in as few claims on its ring as it can, others in one lock round
 * trip). Waits up to timeout only while the queue is empty. Returns 0 with
 * *got set to the number taken (1..n; 0 when n is 0), or an error code as
 * cth_queue_get (*got is then 0). At most INT_MAX items per call.
 * CTH_EINVAL for a NULL queue or got, or NULL items with n > 0.
 */
CTH_API int cth_queue_get_many(cth_queue_t *queue, void **items, size_t n, size_t *got,
                               double timeout);

/*
 * cth_queue_qsize - Queue.qsize(): the number of items, a snapshot (racy
 * once returned, as in Python). 0 for NULL. Parked putters' items are not
 * counted: they are not in the queue yet; a put (get) that is running
 * counts as done once it has claimed its slot (item).
 */
CTH_API size_t cth_queue_qsize(const cth_queue_t *queue);

/* cth_queue_empty - Queue.empty(): qsize == 0 (true for NULL). Racy. */
CTH_API bool cth_queue_empty(const cth_queue_t *queue);

/* cth_queue_full - Queue.full(): 0 < maxsize <= qsize; always false when
 * unbounded (and for NULL). Racy. */
CTH_API bool cth_queue_full(const cth_queue_t *queue);

/* cth_queue_maxsize - the maxsize attribute (0: unbounded; the value given,
 * but above LONG_MAX: LONG_MAX, see cth_queue_create). 0 for NULL. */
CTH_API size_t cth_queue_maxsize(const cth_queue_t *queue);

/*
 * cth_queue_set_maxsize - assign the maxsize attribute, as Python allows.
 * Later puts honour it (a put running meanwhile may still see the old
 * value, as in Python, where the assignment takes no lock); items already
 * in the queue stay (a queue may hold more than a lowered maxsize until gets
 * drain it). Raising it (or making the queue unbounded: 0) lets waiting
 * putters in at once; values as cth_queue_create's. Returns 0 or CTH_EINVAL
 * for NULL.
 */
CTH_API int cth_queue_set_maxsize(cth_queue_t *queue, size_t maxsize);

/*
 * cth_queue_task_done - Queue.task_done(): one item taken earlier has been
 * processed. When the unfinished-task count reaches 0, every join returns.
 * Returns 0, or CTH_EINVAL when called more times than items were put
 * (Python's ValueError "task_done() called too many times"), or for NULL.
 */
CTH_API int cth_queue_task_done(cth_queue_t *queue);

/* cth_queue_unfinished_tasks - the unfinished_tasks attribute: items put
 * and not yet marked done. 0 for NULL. */
CTH_API size_t cth_queue_unfinished_tasks(const cth_queue_t *queue);

/*
 * cth_queue_join - Queue.join(): wait until every item put has been marked
 * done with task_done. Beyond Python, with a timeout (Python rejected one:
 * gh-60187; in C there is no other way out). Returns 0; CTH_ETIMEDOUT when
 * the timeout (0 included) expired first; CTH_EINTR; CTH_EINVAL /
 * CTH_EOVERFLOW for a bad timeout or NULL. A non-immediate shutdown does not
 * release a waiting join (as in Python); an immediate one does.
 */
CTH_API int cth_queue_join(cth_queue_t *queue, double timeout);

/*
 * cth_queue_shutdown - Queue.shutdown(immediate) (3.13). Afterwards every
 * put fails with CTH_ESHUTDOWN, and gets drain the remaining items, then
 * fail with CTH_ESHUTDOWN; blocked putters and (empty-queue) getters wake
 * with CTH_ESHUTDOWN at once. With immediate, the remaining items are also
 * removed and handed to the free function (outside the lock), the
 * unfinished count drops by one per item removed (floored at 0), and every
 * join wakes. Idempotent; immediate after a plain shutdown is allowed.
 * Returns 0, or CTH_EINVAL for NULL.
 */
CTH_API int cth_queue_shutdown(cth_queue_t *queue, bool immediate);

/* cth_queue_is_shutdown - the is_shutdown attribute (false for NULL). */
CTH_API bool cth_queue_is_shutdown(const cth_queue_t *queue);

/* ---- SimpleQueue -------------------------------------------------------------- */

/*
 * queue.SimpleQueue: an unbounded FIFO without task tracking, maxsize or
 * shutdown.
 *
 * What put guarantees, and why. cth_simple_queue_put never blocks, takes no
 * lock and calls no malloc, so it may be called from a signal handler
 * (including one that interrupted a put or get on the same queue in the same
 * thread), from a destructor, or from a thread-local or atexit hook. Items
 * live in segments of slots; a producer claims a slot with one atomic
 * fetch-and-add and publishes it with one atomic store, so no producer ever
 * waits for another. When a segment fills, the next comes from a one-entry
 * cache of recycled segments or straight from the kernel (mmap, a system
 * call and not a library lock); it can fail, and put then returns
 * CTH_ENOMEM with nothing changed. Waking a blocked getter is one futex
 * system call. The limits: only put and qsize/empty have this guarantee
 * (get, create and free lock and may allocate); a get does not see an item
 * while an earlier-claimed slot is still being written by a put that was
 * interrupted (it sees both once that put resumes; a blocking get waits for
 * it); retired segments are unmapped only at a moment when no put is in
 * progress, so a queue under a never-ending overlap of puts keeps them
 * until such a moment (or until free).
 */
typedef struct cth_simple_queue cth_simple_queue_t;

/* Options of cth_simple_queue_create (NULL: none). The struct may grow:
 * zero what you do not set. */
typedef struct cth_simple_queue_opts {
    cth_free_fn free_item; /* Optional: receives each item left in the queue
        when it is freed. */
} cth_simple_queue_opts_t;

/* cth_simple_queue_create - SimpleQueue(). opts may be NULL. Returns 0,
 * CTH_EINVAL for a NULL queue pointer, CTH_ENOMEM. */
CTH_API int cth_simple_queue_create(cth_simple_queue_t **queue,
                                    const cth_simple_queue_opts_t *opts);

/* cth_simple_queue_free - release the queue; items left go to free_item.
 * No thread may use it any more. NULL is ignored. */
CTH_API void cth_simple_queue_free(cth_simple_queue_t *queue);

/*
 * cth_simple_queue_put - SimpleQueue.put(item) (and put_nowait: Python
 * ignores block and timeout here, so there are none). Never blocks;
 * async-signal-safe (see above). Returns 0, CTH_ENOMEM (a new segment could
 * not be mapped; nothing changed), CTH_EINVAL for NULL. item may be NULL.
 */
CTH_API int cth_simple_queue_put(cth_simple_queue_t *queue, void *item);

/*
 * cth_simple_queue_get - SimpleQueue.get(block=True, timeout): take the
 * oldest item into *item, waiting up to timeout seconds while empty.
 * Returns 0; CTH_EAGAIN when empty and timeout is 0 (get_nowait, Python's
 * Empty; only then, whatever other getters are waiting); CTH_ETIMEDOUT
 * when a positive timeout expired (Empty); CTH_EINTR;
 * CTH_EINVAL for NULL arguments or a negative/NaN timeout (ValueError);
 * CTH_EOVERFLOW. Getters take turns on an internal lock; fairness among
 * them is not promised (nor is it in Python). Not async-signal-safe.
 */
CTH_API int cth_simple_queue_get(cth_simple_queue_t *queue, void **item, double timeout);

/* cth_simple_queue_get_nowait - SimpleQueue.get_nowait(): get with timeout 0. */
CTH_API int cth_simple_queue_get_nowait(cth_simple_queue_t *queue, void **item);

/* cth_simple_queue_qsize - SimpleQueue.qsize(): completed puts minus gets, a
 * snapshot. 0 for NULL. Async-signal-safe. */
CTH_API size_t cth_simple_queue_qsize(const cth_simple_queue_t *queue);

/* cth_simple_queue_empty - SimpleQueue.empty(): qsize == 0 (true for NULL).
 * Async-signal-safe. */
CTH_API bool cth_simple_queue_empty(const cth_simple_queue_t *queue);

#ifdef __cplusplus
}
#endif
#endif
