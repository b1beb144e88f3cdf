/* SPDX-License-Identifier: MIT */
/*
 * model_ops.h - the op-sequence interpreter shared by the model-based
 * stress test (tests/stress/stress_model.c) and the fuzz target
 * (tests/fuzz/fuzz_ops.c): one decoder, one set of checks.
 *
 * A run has a configuration (queue kind and bound, thread count, semaphore
 * value and kind, barrier parties) and one byte program per thread. Each
 * thread decodes its bytes two at a time, (opcode, parameter), and applies
 * the op to the shared objects: a Queue (put/get with timeout 0 or 1 ms,
 * put_many/get_many, task_done, join, shutdown), a Semaphore or
 * BoundedSemaphore, a Barrier and, when one is given, a Pool (apply_async
 * and get, map, imap, imap_unordered). Every wait is bounded, so a run
 * always ends; a violation prints what broke and aborts (the stress test
 * has printed its seed; libFuzzer keeps the input).
 *
 * The checks are Python's semantics (docs/python-semantics.md: Semaphore,
 * Barrier, queue, Pool):
 * - each call returns one of the codes its contract allows (Full/Empty as
 *   CTH_EAGAIN or CTH_ETIMEDOUT, ShutDown only once shutdown has begun, and
 *   always once it has completed);
 * - items are conserved: every item put is got exactly once, is still in
 *   the queue at the end, or went to the free function at an immediate
 *   shutdown; a consumer sees each producer's items in put order (FIFO),
 *   and equal-priority items of one producer in put order (PriorityQueue,
 *   which is stable);
 * - task_done never fails for an item the thread got, and at the end the
 *   unfinished count is puts - task_dones - dropped;
 * - the semaphore's value stays within [0, bound] and ends at
 *   initial + releases - acquires;
 * - barrier indices are within [0, parties) and, in the lock-step rounds at
 *   the end, a permutation per cycle;
 * - every pool result is the task's value (or its failure code);
 * - no wake-up is lost: at the end, getters and acquirers blocked with a
 *   10 s limit must all be served by as many puts and releases.
 * With one thread the run is sequential and the checks are exact: a model
 * of the queue (order, size, Full/Empty) and of the semaphore and barrier
 * predicts every return value.
 */
#ifndef CTH_TESTS_MODEL_OPS_H
#define CTH_TESTS_MODEL_OPS_H

#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cthreading.h>

#define MODEL_MAX_THREADS 8
#ifndef MODEL_SMALL_TIMEOUT
#define MODEL_SMALL_TIMEOUT 0.001 /* "small positive" */
#endif
#define MODEL_LONG_TIMEOUT 10.0 /* a wait that only a lost wake-up exceeds */

enum model_op {
    OP_PUT,
    OP_GET,
    OP_PUT_MANY,
    OP_GET_MANY,
    OP_TASK_DONE,
    OP_JOIN,
    OP_SIZE,
    OP_SHUTDOWN,
    OP_SEM_ACQUIRE,
    OP_SEM_RELEASE,
    OP_BARRIER_WAIT,
    OP_BARRIER_RESET,
    OP_POOL_APPLY,
    OP_POOL_COLLECT,
    OP_POOL_MAP,
    OP_POOL_IMAP,
    OP_YIELD,
    OP_COUNT
};

/* The configuration of a run; model_cfg_decode makes one from bytes. */
struct model_cfg {
    cth_queue_kind_t kind;
    long maxsize;       /* 0: unbounded */
    int nthreads;       /* 1 .. MODEL_MAX_THREADS */
    int sem_init;       /* >= 0 */
    int sem_bounded;    /* BoundedSemaphore */
    int parties;        /* 1 .. nthreads */
    int barrier_rounds; /* lock-step barrier rounds at the end */
};

/* An item: producer, sequence number, priority (low 4 bits, the compare key). */
#define ITEM_MAKE(p, seq, prio)                                                                    \
    ((void *)(uintptr_t)(((uint64_t)(p) + 1) << 40 | (uint64_t)(seq) << 4 | (uint64_t)(prio)))
#define ITEM_PRODUCER(it) ((int)(((uint64_t)(uintptr_t)(it) >> 40) - 1))
#define ITEM_SEQ(it) ((long)(((uint64_t)(uintptr_t)(it) >> 4) & ((1ULL << 36) - 1)))
#define ITEM_PRIO(it) ((int)((uint64_t)(uintptr_t)(it)&15))

#define POOL_PENDING 4

struct model_thread {
    struct model_world *w;
    int id;
    const uint8_t *prog;
    size_t len;
    long puts;        /* next sequence number = items put */
    long outstanding; /* got, not yet task_done */
    long sem_held;
    void **got; /* the items this thread got, in order */
    long ngot, capgot;
    long last_seq[MODEL_MAX_THREADS][16]; /* per producer (and priority) */
    cth_result_t *pending[POOL_PENDING];
    uintptr_t pending_arg[POOL_PENDING];
    int npending;
    uintptr_t pool_seq;
    long ops;
};

struct model_world {
    struct model_cfg cfg;
    cth_queue_t *q;
    cth_sem_t sem;
    cth_barrier_t barrier;
    cth_barrier_t lockstep;
    cth_pool_t *pool;
    atomic_int shutdown_started, shutdown_done;
    atomic_long task_dones, dropped, sem_acquires, sem_releases;
    void **freed; /* items handed to free_item */
    atomic_long nfreed;
    long capfreed;
    int *rounds; /* barrier_rounds x nthreads arrival indices */
    struct model_thread th[MODEL_MAX_THREADS];
    /* the sequential model (nthreads == 1) */
    void **mq;
    long mlen, mcap;
    int msem;
    int mbroken;
};

static struct model_world *model_current; /* free_item has no context */

__attribute__((format(printf, 1, 2), noreturn)) static void model_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "model violation: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    abort();
}

#define MODEL_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            model_fail(__VA_ARGS__);                                                               \
    } while (0)

static void *model_xalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        model_fail("out of memory in the test itself");
    return p;
}

/* The configuration from the first two bytes of a fuzz input. */
static inline struct model_cfg model_cfg_decode(uint8_t a, uint8_t b)
{
    struct model_cfg c;
    c.kind = (cth_queue_kind_t)(a % 3);
    c.maxsize = (a >> 2) % 5;
    c.nthreads = 1 + b % 4;
    c.sem_init = (b >> 2) % 4;
    c.sem_bounded = (b >> 4) & 1;
    c.parties = 1 + (b >> 5) % 3;
    if (c.parties > c.nthreads)
        c.parties = c.nthreads;
    c.barrier_rounds = 1;
    return c;
}

static int model_compare(const void *a, const void *b)
{
    return ITEM_PRIO(a) - ITEM_PRIO(b);
}

static void model_free_item(void *item)
{
    struct model_world *w = model_current;
    long i = atomic_fetch_add(&w->nfreed, 1);
    MODEL_CHECK(i < w->capfreed, "free_item called for more items than were put");
    w->freed[i] = item;
}

static bool model_strict(const struct model_world *w)
{
    return w->cfg.nthreads == 1;
}

static bool model_full(const struct model_world *w)
{
    return w->cfg.maxsize > 0 && w->mlen >= w->cfg.maxsize;
}

/* The sequential queue model: which item the next get returns. */
static long model_pick(const struct model_world *w)
{
    if (w->cfg.kind == CTH_QUEUE_FIFO)
        return 0;
    if (w->cfg.kind == CTH_QUEUE_LIFO)
        return w->mlen - 1;
    long best = 0;
    for (long i = 1; i < w->mlen; i++)
        if (ITEM_PRIO(w->mq[i]) < ITEM_PRIO(w->mq[best]))
            best = i;
    return best;
}

static void model_mput(struct model_world *w, void *item)
{
    if (w->mlen == w->mcap) {
        w->mcap = w->mcap ? 2 * w->mcap : 16;
        w->mq = realloc(w->mq, (size_t)w->mcap * sizeof *w->mq);
        MODEL_CHECK(w->mq != NULL, "out of memory in the test itself");
    }
    w->mq[w->mlen++] = item;
}

static void model_mget(struct model_world *w, void *item)
{
    MODEL_CHECK(w->mlen > 0, "get returned %p from a queue the model says is empty", item);
    long i = model_pick(w);
    MODEL_CHECK(w->mq[i] == item, "get returned %p, the model expects %p (kind %d)", item, w->mq[i],
                (int)w->cfg.kind);
    memmove(&w->mq[i], &w->mq[i + 1], (size_t)(w->mlen - i - 1) * sizeof *w->mq);
    w->mlen--;
}

/* A put's code: 0, Full (as EAGAIN/ETIMEDOUT by timeout) or ShutDown. */
static void model_check_put_code(struct model_world *w, int rc, double timeout, int done_before,
                                 int started_after)
{
    if (done_before)
        MODEL_CHECK(rc == CTH_ESHUTDOWN, "put after shutdown returned %d", rc);
    if (rc == CTH_ESHUTDOWN)
        MODEL_CHECK(started_after, "put returned CTH_ESHUTDOWN before any shutdown");
    else if (rc == CTH_EAGAIN || rc == CTH_ETIMEDOUT) {
        MODEL_CHECK(w->cfg.maxsize > 0, "put on an unbounded queue returned %d", rc);
        MODEL_CHECK(rc == (timeout == 0 ? CTH_EAGAIN : CTH_ETIMEDOUT),
                    "put with timeout %g returned %d", timeout, rc);
    } else
        MODEL_CHECK(rc >= 0, "put returned %d", rc);
}

static void model_check_get_code(int rc, double timeout, int started_after)
{
    if (rc == CTH_ESHUTDOWN)
        MODEL_CHECK(started_after, "get returned CTH_ESHUTDOWN before any shutdown");
    else if (rc == CTH_EAGAIN || rc == CTH_ETIMEDOUT)
        MODEL_CHECK(rc == (timeout == 0 ? CTH_EAGAIN : CTH_ETIMEDOUT),
                    "get with timeout %g returned %d", timeout, rc);
    else
        MODEL_CHECK(rc >= 0, "get returned %d", rc);
}

static void model_record_got(struct model_thread *t, void *item)
{
    struct model_world *w = t->w;
    int p = ITEM_PRODUCER(item);
    MODEL_CHECK(p >= 0 && p < w->cfg.nthreads, "got a foreign item %p", item);
    long seq = ITEM_SEQ(item);
    int key = w->cfg.kind == CTH_QUEUE_PRIORITY ? ITEM_PRIO(item) : 0;
    if (w->cfg.kind != CTH_QUEUE_LIFO) {
        MODEL_CHECK(seq > t->last_seq[p][key],
                    "thread %d got item %ld of producer %d after its item %ld (kind %d)", t->id,
                    seq, p, t->last_seq[p][key], (int)w->cfg.kind);
        t->last_seq[p][key] = seq;
    }
    if (t->ngot == t->capgot) {
        t->capgot = t->capgot ? 2 * t->capgot : 64;
        t->got = realloc(t->got, (size_t)t->capgot * sizeof *t->got);
        MODEL_CHECK(t->got != NULL, "out of memory in the test itself");
    }
    t->got[t->ngot++] = item;
    t->outstanding++;
    if (model_strict(w))
        model_mget(w, item);
}

static void *model_next_item(struct model_thread *t, long k)
{
    long seq = t->puts + k;
    return ITEM_MAKE(t->id, seq, (unsigned)(seq * 7 + (long)t->id * 3) % 5);
}

static void op_put(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    double timeout = prm & 1 ? MODEL_SMALL_TIMEOUT : 0;
    void *item = model_next_item(t, 0);
    int done = atomic_load(&w->shutdown_done);
    int rc = cth_queue_put(w->q, item, timeout);
    model_check_put_code(w, rc, timeout, done, atomic_load(&w->shutdown_started));
    if (model_strict(w)) {
        int want = done            ? CTH_ESHUTDOWN
                   : model_full(w) ? (timeout == 0 ? CTH_EAGAIN : CTH_ETIMEDOUT)
                                   : 0;
        MODEL_CHECK(rc == want, "put returned %d, the model expects %d", rc, want);
    }
    if (rc == 0) {
        t->puts++;
        if (model_strict(w))
            model_mput(w, item);
    }
}

static void op_put_many(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    double timeout = prm & 1 ? MODEL_SMALL_TIMEOUT : 0;
    int n = 1 + (prm >> 1) % 3;
    void *items[3];
    for (int k = 0; k < n; k++)
        items[k] = model_next_item(t, k);
    int done = atomic_load(&w->shutdown_done);
    size_t put = 99;
    int code = cth_queue_put_many(w->q, items, (size_t)n, &put, timeout);
    MODEL_CHECK(code <= 0 && (code == 0) == (put > 0), "put_many returned %d, put %zu", code, put);
    int rc = code ? code : (int)put; /* the count, or the error */
    model_check_put_code(w, rc, timeout, done, atomic_load(&w->shutdown_started));
    MODEL_CHECK(rc <= n, "put_many of %d put %d", n, rc);
    if (model_strict(w)) {
        long room = w->cfg.maxsize > 0 ? w->cfg.maxsize - w->mlen : n;
        int want = done        ? CTH_ESHUTDOWN
                   : room <= 0 ? (timeout == 0 ? CTH_EAGAIN : CTH_ETIMEDOUT)
                               : (int)(room < n ? room : n);
        MODEL_CHECK(rc == want, "put_many returned %d, the model expects %d", rc, want);
    }
    for (int k = 0; k < rc; k++) {
        t->puts++;
        if (model_strict(w))
            model_mput(w, items[k]);
    }
}

static void op_get(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    double timeout = prm & 1 ? MODEL_SMALL_TIMEOUT : 0;
    void *item = NULL;
    long mlen = w->mlen;
    int done = atomic_load(&w->shutdown_done);
    int rc = cth_queue_get(w->q, &item, timeout);
    model_check_get_code(rc, timeout, atomic_load(&w->shutdown_started));
    if (model_strict(w)) {
        int want = mlen > 0 ? 0 : done ? CTH_ESHUTDOWN : timeout == 0 ? CTH_EAGAIN : CTH_ETIMEDOUT;
        MODEL_CHECK(rc == want, "get returned %d, the model expects %d", rc, want);
    }
    if (rc == 0)
        model_record_got(t, item);
}

static void op_get_many(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    double timeout = prm & 1 ? MODEL_SMALL_TIMEOUT : 0;
    int n = 1 + (prm >> 1) % 3;
    void *items[3] = {0};
    long mlen = w->mlen;
    int done = atomic_load(&w->shutdown_done);
    size_t got = 99;
    int code = cth_queue_get_many(w->q, items, (size_t)n, &got, timeout);
    MODEL_CHECK(code <= 0 && (code == 0) == (got > 0), "get_many returned %d, got %zu", code, got);
    int rc = code ? code : (int)got; /* the count, or the error */
    model_check_get_code(rc, timeout, atomic_load(&w->shutdown_started));
    MODEL_CHECK(rc != 0 && rc <= n, "get_many of %d returned %d", n, rc);
    if (model_strict(w)) {
        int want = mlen > 0       ? (int)(mlen < n ? mlen : n)
                   : done         ? CTH_ESHUTDOWN
                   : timeout == 0 ? CTH_EAGAIN
                                  : CTH_ETIMEDOUT;
        MODEL_CHECK(rc == want, "get_many returned %d, the model expects %d", rc, want);
    }
    for (int k = 0; k < rc; k++)
        model_record_got(t, items[k]);
}

static void op_task_done(struct model_thread *t)
{
    if (t->outstanding == 0)
        return;
    int rc = cth_queue_task_done(t->w->q);
    MODEL_CHECK(rc == 0, "task_done for an item got returned %d", rc);
    t->outstanding--;
    atomic_fetch_add(&t->w->task_dones, 1);
}

static void op_join(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    double timeout = prm & 1 ? MODEL_SMALL_TIMEOUT : 0;
    int rc = cth_queue_join(w->q, timeout);
    MODEL_CHECK(rc == 0 || rc == CTH_ETIMEDOUT, "join returned %d", rc);
    if (t->outstanding > 0 && !atomic_load(&w->shutdown_started))
        MODEL_CHECK(rc == CTH_ETIMEDOUT, "join returned 0 while this thread owes task_done");
    if (model_strict(w)) {
        long unfinished = (long)cth_queue_unfinished_tasks(w->q);
        MODEL_CHECK((rc == 0) == (unfinished == 0), "join returned %d with %ld unfinished", rc,
                    unfinished);
    }
}

static void op_size(struct model_thread *t)
{
    struct model_world *w = t->w;
    long n = (long)cth_queue_qsize(w->q);
    MODEL_CHECK(n >= 0, "qsize %ld", n);
    if (w->cfg.maxsize > 0)
        MODEL_CHECK(n <= w->cfg.maxsize, "qsize %ld above maxsize %ld", n, w->cfg.maxsize);
    MODEL_CHECK((long)cth_queue_maxsize(w->q) == w->cfg.maxsize, "maxsize changed");
    if (model_strict(w)) {
        MODEL_CHECK(n == w->mlen, "qsize %ld, the model has %ld", n, w->mlen);
        MODEL_CHECK(cth_queue_empty(w->q) == (w->mlen == 0), "empty() disagrees with the model");
        MODEL_CHECK(cth_queue_full(w->q) == model_full(w), "full() disagrees with the model");
    }
}

static void op_shutdown(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    if (prm < 0xf0) /* rare: most of a run is spent before it */
        return;
    bool immediate = prm & 1;
    atomic_store(&w->shutdown_started, 1);
    long before = atomic_load(&w->nfreed);
    MODEL_CHECK(cth_queue_shutdown(w->q, immediate) == 0, "shutdown failed");
    atomic_store(&w->shutdown_done, 1);
    MODEL_CHECK(cth_queue_is_shutdown(w->q), "is_shutdown false after shutdown");
    if (model_strict(w)) {
        if (immediate) {
            MODEL_CHECK(atomic_load(&w->nfreed) - before == w->mlen,
                        "immediate shutdown dropped %ld items, the model had %ld",
                        atomic_load(&w->nfreed) - before, w->mlen);
            w->mlen = 0;
        }
        MODEL_CHECK((long)cth_queue_qsize(w->q) == w->mlen, "qsize after shutdown");
    }
}

static void op_sem_acquire(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    double timeout = prm & 1 ? MODEL_SMALL_TIMEOUT : 0;
    int rc = cth_sem_acquire(&w->sem, timeout);
    MODEL_CHECK(rc == 0 || rc == (timeout == 0 ? CTH_EAGAIN : CTH_ETIMEDOUT),
                "sem acquire(%g) returned %d", timeout, rc);
    if (model_strict(w)) {
        MODEL_CHECK((rc == 0) == (w->msem > 0), "sem acquire returned %d at model value %d", rc,
                    w->msem);
        if (rc == 0)
            w->msem--;
    }
    if (rc == 0) {
        t->sem_held++;
        atomic_fetch_add(&w->sem_acquires, 1);
    }
    int v = (int)cth_sem_value(&w->sem);
    MODEL_CHECK(v >= 0, "sem value %d", v);
    if (w->cfg.sem_bounded)
        MODEL_CHECK(v <= w->cfg.sem_init, "bounded sem value %d above %d", v, w->cfg.sem_init);
}

static void op_sem_release(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    if (t->sem_held == 0 && !(prm & 1))
        return;
    int rc = cth_sem_release(&w->sem, 1);
    MODEL_CHECK(rc == 0 || (w->cfg.sem_bounded && rc == CTH_EINVAL), "sem release returned %d", rc);
    if (model_strict(w)) {
        int want = w->cfg.sem_bounded && w->msem + 1 > w->cfg.sem_init ? CTH_EINVAL : 0;
        MODEL_CHECK(rc == want, "sem release returned %d, the model expects %d", rc, want);
        if (rc == 0)
            w->msem++;
    }
    if (t->sem_held > 0)
        t->sem_held--;
    if (rc == 0)
        atomic_fetch_add(&w->sem_releases, 1);
}

static void op_barrier_wait(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    double timeout = prm & 1 ? MODEL_SMALL_TIMEOUT : 0;
    int rc = cth_barrier_wait(&w->barrier, timeout);
    MODEL_CHECK(rc == CTH_EBROKEN || (rc >= 0 && rc < w->cfg.parties),
                "barrier wait returned %d (parties %d)", rc, w->cfg.parties);
    if (model_strict(w)) {
        int want = w->mbroken || w->cfg.parties > 1 ? CTH_EBROKEN : 0;
        MODEL_CHECK(rc == want, "barrier wait returned %d, the model expects %d", rc, want);
        w->mbroken = rc == CTH_EBROKEN;
        MODEL_CHECK(cth_barrier_broken(&w->barrier) == (bool)w->mbroken, "broken() disagrees");
    }
}

static void op_barrier_reset(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    int rc = prm & 1 ? cth_barrier_abort(&w->barrier) : cth_barrier_reset(&w->barrier);
    MODEL_CHECK(rc == 0, "barrier reset/abort returned %d", rc);
    if (model_strict(w)) {
        w->mbroken = prm & 1;
        MODEL_CHECK(cth_barrier_broken(&w->barrier) == (bool)w->mbroken, "broken() disagrees");
        MODEL_CHECK(cth_barrier_n_waiting(&w->barrier) == 0, "n_waiting in a sequential run");
    }
}

/* The pool's task: 3x + 1, or the failure -77 for x = 0x42 mod 256. */
static int model_task(void *arg, void **result)
{
    uintptr_t x = (uintptr_t)arg;
    if ((x & 0xff) == 0x42)
        return -77;
    *result = (void *)(x * 3 + 1);
    return 0;
}

/* Whether rc is the failure of model_task: CTH_ETASK, -77 in cth_task_error(). */
static bool model_task_failed(int rc)
{
    return rc == CTH_ETASK && cth_task_error() == -77;
}

static void model_check_result(int rc, uintptr_t arg, void *value, const char *what)
{
    if ((arg & 0xff) == 0x42)
        MODEL_CHECK(model_task_failed(rc), "%s of failing task %lu returned %d", what,
                    (unsigned long)arg, rc);
    else {
        MODEL_CHECK(rc == 0, "%s of task %lu returned %d", what, (unsigned long)arg, rc);
        MODEL_CHECK((uintptr_t)value == arg * 3 + 1, "%s of task %lu gave %lu", what,
                    (unsigned long)arg, (unsigned long)(uintptr_t)value);
    }
}

static void op_pool_collect(struct model_thread *t, uint8_t prm)
{
    if (t->npending == 0)
        return;
    int i = t->npending - 1;
    void *value = NULL;
    double timeout = prm & 1 ? MODEL_SMALL_TIMEOUT : 0;
    int rc = cth_result_get(t->pending[i], &value, timeout);
    if (rc == CTH_ETIMEDOUT) {
        if (!(prm & 2))
            return;
        rc = cth_result_get(t->pending[i], &value, MODEL_LONG_TIMEOUT);
        MODEL_CHECK(rc != CTH_ETIMEDOUT, "a pool task did not finish in %g s", MODEL_LONG_TIMEOUT);
    }
    model_check_result(rc, t->pending_arg[i], value, "AsyncResult.get");
    MODEL_CHECK(cth_result_ready(t->pending[i]), "a result got is not ready");
    MODEL_CHECK(cth_result_successful(t->pending[i]) == (rc == 0), "successful() disagrees");
    cth_result_free(t->pending[i]);
    t->npending--;
}

static uintptr_t model_pool_arg(struct model_thread *t, uint8_t prm)
{
    return (uintptr_t)t->id << 24 | ++t->pool_seq << 8 | prm;
}

static void op_pool_apply(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    if (!w->pool)
        return;
    if (t->npending == POOL_PENDING)
        op_pool_collect(t, 3);
    uintptr_t arg = model_pool_arg(t, prm);
    cth_result_t *res;
    int rc = cth_pool_apply_async(w->pool, model_task, (void *)arg, NULL, &res);
    MODEL_CHECK(rc == 0, "apply_async returned %d", rc);
    t->pending[t->npending] = res;
    t->pending_arg[t->npending++] = arg;
}

static void op_pool_map(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    if (!w->pool)
        return;
    size_t n = prm % 24;
    void *items[24] = {0}, *results[24] = {0};
    int want = 0;
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = model_pool_arg(t, (uint8_t)(prm + i * 5));
        items[i] = (void *)a;
        if ((a & 0xff) == 0x42)
            want = CTH_ETASK;
    }
    int rc = cth_pool_map(w->pool, model_task, items, n, (size_t)(prm >> 6), results);
    MODEL_CHECK(rc == want, "map of %zu returned %d, expected %d", n, rc, want);
    MODEL_CHECK(rc == 0 || model_task_failed(rc), "map's task error is %d", cth_task_error());
    for (size_t i = 0; rc == 0 && i < n; i++)
        model_check_result(0, (uintptr_t)items[i], results[i], "map");
}

/* Whether the chunk of chunksize cs holding item j has a failing task. */
static bool model_chunk_fails(void *const *items, size_t n, size_t j, size_t cs)
{
    for (size_t i = j - j % cs; i < n && i < j - j % cs + cs; i++)
        if (((uintptr_t)items[i] & 0xff) == 0x42)
            return true;
    return false;
}

static void op_pool_imap(struct model_thread *t, uint8_t prm)
{
    struct model_world *w = t->w;
    if (!w->pool)
        return;
    size_t n = prm % 16;
    bool ordered = prm & 16;
    size_t cs = (size_t)(prm >> 6); /* 0 is 1 */
    void *items[16] = {0};
    bool seen[16] = {0};
    for (size_t i = 0; i < n; i++)
        items[i] = (void *)model_pool_arg(t, (uint8_t)(prm * 3 + i * 11));
    cth_imap_t *it;
    int rc = ordered ? cth_pool_imap(w->pool, model_task, items, n, cs, &it)
                     : cth_pool_imap_unordered(w->pool, model_task, items, n, cs, &it);
    MODEL_CHECK(rc == 0, "imap returned %d", rc);
    /* with chunksize > 1 a failing chunk gives CTH_ETASK (-77) once, in
     * place of its items, and ends the iteration (docs/python-semantics.md,
     * Pool) */
    bool chunked = cs > 1, chunk_failed = false;
    for (size_t k = 0;; k++) {
        void *value = NULL;
        rc = cth_imap_next(it, &value, MODEL_LONG_TIMEOUT);
        MODEL_CHECK(rc != CTH_ETIMEDOUT, "imap next did not finish in %g s", MODEL_LONG_TIMEOUT);
        if (rc == CTH_IMAP_END) {
            MODEL_CHECK(k == n || chunk_failed, "imap ended after %zu of %zu", k, n);
            break;
        }
        MODEL_CHECK(k < n && !chunk_failed, "imap yielded more than expected (%zu of %zu)", k, n);
        if (chunked && rc != 0) {
            bool any = false;
            for (size_t j = 0; j < n; j += cs)
                any |= model_chunk_fails(items, n, j, cs) && (!ordered || j == k);
            MODEL_CHECK(model_task_failed(rc) && any, "imap (chunksize %zu) failed with %d at %zu",
                        cs, rc, k);
            chunk_failed = true;
            continue;
        }
        if (ordered) {
            MODEL_CHECK(!chunked || !model_chunk_fails(items, n, k, cs),
                        "imap yielded %zu of a failing chunk", k);
            model_check_result(rc, (uintptr_t)items[k], value, "imap");
            continue;
        }
        /* unordered: find which item this is (failures are all -77) */
        size_t j = 0;
        for (; j < n; j++) {
            uintptr_t a = (uintptr_t)items[j];
            bool fails = (a & 0xff) == 0x42;
            bool matches = rc == 0 ? !fails && (uintptr_t)value == a * 3 + 1
                                   : fails && model_task_failed(rc);
            if (!seen[j] && matches)
                break;
        }
        MODEL_CHECK(j < n, "imap_unordered yielded %d / %p, matching no item", rc, value);
        MODEL_CHECK(!chunked || !model_chunk_fails(items, n, j, cs),
                    "imap_unordered yielded item %zu of a failing chunk", j);
        seen[j] = true;
    }
    cth_imap_free(it);
}

/* Run one op: opcode op (mod OP_COUNT) with its parameter byte. */
static void model_step(struct model_thread *t, uint8_t op, uint8_t prm)
{
    switch (op % OP_COUNT) {
    case OP_PUT: op_put(t, prm); break;
    case OP_GET: op_get(t, prm); break;
    case OP_PUT_MANY: op_put_many(t, prm); break;
    case OP_GET_MANY: op_get_many(t, prm); break;
    case OP_TASK_DONE: op_task_done(t); break;
    case OP_JOIN: op_join(t, prm); break;
    case OP_SIZE: op_size(t); break;
    case OP_SHUTDOWN: op_shutdown(t, prm); break;
    case OP_SEM_ACQUIRE: op_sem_acquire(t, prm); break;
    case OP_SEM_RELEASE: op_sem_release(t, prm); break;
    case OP_BARRIER_WAIT: op_barrier_wait(t, prm); break;
    case OP_BARRIER_RESET: op_barrier_reset(t, prm); break;
    case OP_POOL_APPLY: op_pool_apply(t, prm); break;
    case OP_POOL_COLLECT: op_pool_collect(t, prm); break;
    case OP_POOL_MAP: op_pool_map(t, prm); break;
    case OP_POOL_IMAP: op_pool_imap(t, prm); break;
    default: sched_yield(); break;
    }
    t->ops++;
}

static void *model_thread_main(void *arg)
{
    struct model_thread *t = arg;
    struct model_world *w = t->w;
    for (size_t i = 0; i + 1 < t->len; i += 2)
        model_step(t, t->prog[i], t->prog[i + 1]);
    /* finish this thread's own business */
    while (t->npending > 0)
        op_pool_collect(t, 3);
    while (t->outstanding > 0)
        op_task_done(t);
    /* lock-step barrier rounds: every thread, every round */
    for (int r = 0; r < w->cfg.barrier_rounds; r++) {
        int rc = cth_barrier_wait(&w->lockstep, MODEL_LONG_TIMEOUT);
        MODEL_CHECK(rc >= 0 && rc < w->cfg.nthreads, "lock-step barrier wait returned %d", rc);
        w->rounds[r * w->cfg.nthreads + t->id] = rc;
        t->ops++;
    }
    return NULL;
}

/* A blocked getter or acquirer of the lost-wake-up check. */
struct model_waiter {
    struct model_world *w;
    int is_sem;
    int rc;
    void *item;
};

static void *model_waiter_main(void *arg)
{
    struct model_waiter *m = arg;
    m->rc = m->is_sem ? cth_sem_acquire(&m->w->sem, MODEL_LONG_TIMEOUT)
                      : cth_queue_get(m->w->q, &m->item, MODEL_LONG_TIMEOUT);
    return NULL;
}

static void model_start(cth_thread_t **th, cth_thread_fn fn, void *arg)
{
    MODEL_CHECK(cth_thread_create(th, fn, arg, NULL) == 0, "thread create failed");
    MODEL_CHECK(cth_thread_start(*th) == 0, "thread start failed");
}

static void model_join(cth_thread_t *th)
{
    int rc = cth_thread_join(th, NULL, CTH_FOREVER);
    MODEL_CHECK(rc == 0, "thread join returned %d", rc);
    cth_thread_free(th);
}

/* No wake-up lost: n getters (or acquirers) blocked on an empty queue (a
 * zero semaphore) are all served by n puts (releases). */
static void model_check_wakeups(struct model_world *w, int is_sem, int n, long *extra_puts)
{
    struct model_waiter m[MODEL_MAX_THREADS];
    cth_thread_t *th[MODEL_MAX_THREADS];
    for (int i = 0; i < n; i++) {
        m[i] = (struct model_waiter){w, is_sem, 1, NULL};
        model_start(&th[i], model_waiter_main, &m[i]);
    }
    sched_yield();
    for (int i = 0; i < n; i++) {
        if (is_sem) {
            double deadline = MODEL_LONG_TIMEOUT;
            int rc;
            /* a bounded semaphore refuses a release above its bound until
             * an acquirer has taken a unit */
            while ((rc = cth_sem_release(&w->sem, 1)) == CTH_EINVAL && deadline > 0) {
                cth_sleep(0.0005);
                deadline -= 0.0005;
            }
            MODEL_CHECK(rc == 0, "release for a blocked acquirer returned %d", rc);
        } else {
            int rc = cth_queue_put(w->q, ITEM_MAKE(MODEL_MAX_THREADS - 1, *extra_puts, 0),
                                   MODEL_LONG_TIMEOUT);
            MODEL_CHECK(rc == 0, "put for a blocked getter returned %d", rc);
            ++*extra_puts;
        }
    }
    for (int i = 0; i < n; i++) {
        model_join(th[i]);
        MODEL_CHECK(m[i].rc == 0, "a blocked %s returned %d after a matching %s: lost wake-up",
                    is_sem ? "acquire" : "get", m[i].rc, is_sem ? "release" : "put");
    }
}

/*
 * Run the programs (prog[i], len[i] bytes for thread i) on fresh objects
 * with the configuration cfg, and the pool ops on pool (NULL: skipped).
 * Returns the number of operations done; aborts on a violation.
 */
static long model_run(const struct model_cfg *cfg, const uint8_t *const *prog, const size_t *len,
                      cth_pool_t *pool)
{
    struct model_world *w = model_xalloc(1, sizeof *w);
    w->cfg = *cfg;
    w->pool = pool;
    long total_bytes = 0;
    for (int i = 0; i < cfg->nthreads; i++)
        total_bytes += (long)len[i];
    w->capfreed = 3 * total_bytes / 2 + 1; /* put_many puts at most 3 per 2 bytes */
    w->freed = model_xalloc((size_t)w->capfreed, sizeof *w->freed);
    w->rounds = model_xalloc((size_t)(cfg->barrier_rounds * cfg->nthreads), sizeof *w->rounds);
    model_current = w;
    cth_queue_opts_t qo = {cfg->kind, model_compare, model_free_item};
    MODEL_CHECK(cth_queue_create(&w->q, (size_t)cfg->maxsize, &qo) == 0, "queue create failed");
    MODEL_CHECK((cfg->sem_bounded ? cth_bounded_sem_init(&w->sem, cfg->sem_init)
                                  : cth_sem_init(&w->sem, cfg->sem_init)) == 0,
                "sem init failed");
    MODEL_CHECK(cth_barrier_init(&w->barrier, cfg->parties, NULL, NULL, CTH_FOREVER) == 0,
                "barrier init failed");
    MODEL_CHECK(cth_barrier_init(&w->lockstep, cfg->nthreads, NULL, NULL, CTH_FOREVER) == 0,
                "barrier init failed");
    w->msem = cfg->sem_init;

    cth_thread_t *th[MODEL_MAX_THREADS];
    for (int i = 0; i < cfg->nthreads; i++) {
        struct model_thread *t = &w->th[i];
        t->w = w;
        t->id = i;
        t->prog = prog[i];
        t->len = len[i];
        for (int p = 0; p < MODEL_MAX_THREADS; p++)
            for (int k = 0; k < 16; k++)
                t->last_seq[p][k] = -1;
    }
    if (cfg->nthreads == 1)
        model_thread_main(&w->th[0]); /* sequential: in this thread */
    else {
        for (int i = 0; i < cfg->nthreads; i++)
            model_start(&th[i], model_thread_main, &w->th[i]);
        for (int i = 0; i < cfg->nthreads; i++)
            model_join(th[i]);
    }

    long ops = 0;
    for (int i = 0; i < cfg->nthreads; i++)
        ops += w->th[i].ops;

    /* barrier: each lock-step round is a permutation of 0..n-1 */
    for (int r = 0; r < cfg->barrier_rounds; r++) {
        unsigned seen = 0;
        for (int i = 0; i < cfg->nthreads; i++)
            seen |= 1u << w->rounds[r * cfg->nthreads + i];
        MODEL_CHECK(seen == (1u << cfg->nthreads) - 1,
                    "barrier round %d: arrival indices not distinct", r);
    }

    /* semaphore: value = initial + releases - acquires, within bounds */
    int v = (int)cth_sem_value(&w->sem);
    long want = cfg->sem_init + atomic_load(&w->sem_releases) - atomic_load(&w->sem_acquires);
    MODEL_CHECK(v == want, "sem value %d, expected %ld", v, want);
    MODEL_CHECK(!cfg->sem_bounded || v <= cfg->sem_init, "bounded sem value %d above bound", v);
    while (cth_sem_acquire(&w->sem, 0) == 0)
        v--;
    MODEL_CHECK(v == 0, "sem acquire(0) failed with units left");
    int waiters = cfg->nthreads < 3 ? cfg->nthreads + 1 : cfg->nthreads;
    if (!cfg->sem_bounded || cfg->sem_init > 0) /* BoundedSemaphore(0) refuses every release */
        model_check_wakeups(w, 1, waiters, NULL);
    MODEL_CHECK(cth_sem_value(&w->sem) == 0, "sem value after the wake-up check");

    /* the queue: drain it, then account for every item */
    void **drained = model_xalloc((size_t)w->capfreed, sizeof *drained);
    long ndrained = 0;
    void *item;
    int rc;
    while ((rc = cth_queue_get(w->q, &item, 0)) == 0) {
        MODEL_CHECK(ndrained < w->capfreed, "the queue holds more items than were put");
        drained[ndrained++] = item;
        ops++;
    }
    MODEL_CHECK(rc == (atomic_load(&w->shutdown_done) ? CTH_ESHUTDOWN : CTH_EAGAIN),
                "get on the drained queue returned %d", rc);
    long puts = 0, nfreed = atomic_load(&w->nfreed);
    long *count[MODEL_MAX_THREADS];
    for (int p = 0; p < cfg->nthreads; p++) {
        count[p] = model_xalloc((size_t)w->th[p].puts + 1, sizeof *count[p]);
        puts += w->th[p].puts;
    }
    long got = 0;
    for (int src = 0; src < cfg->nthreads + 2; src++) {
        void **list = src < cfg->nthreads    ? w->th[src].got
                      : src == cfg->nthreads ? drained
                                             : w->freed;
        long n = src < cfg->nthreads ? w->th[src].ngot : src == cfg->nthreads ? ndrained : nfreed;
        for (long i = 0; i < n; i++) {
            int p = ITEM_PRODUCER(list[i]);
            long seq = ITEM_SEQ(list[i]);
            MODEL_CHECK(p >= 0 && p < cfg->nthreads && seq < w->th[p].puts, "item %p was never put",
                        list[i]);
            MODEL_CHECK(++count[p][seq] == 1, "item %ld of producer %d delivered twice", seq, p);
        }
        got += n;
    }
    MODEL_CHECK(got == puts, "%ld items put, %ld accounted for: lost items", puts, got);
    /* unfinished tasks: puts - task_done - dropped by an immediate shutdown
     * (drained items are still unfinished) */
    long unfinished = (long)cth_queue_unfinished_tasks(w->q);
    long expect = puts - atomic_load(&w->task_dones) - nfreed;
    MODEL_CHECK(unfinished == expect, "unfinished tasks %ld, expected %ld", unfinished, expect);
    for (long i = 0; i < ndrained; i++)
        MODEL_CHECK(cth_queue_task_done(w->q) == 0, "task_done for a drained item failed");
    MODEL_CHECK(cth_queue_join(w->q, 0) == 0, "join with no unfinished task timed out");
    MODEL_CHECK(cth_queue_task_done(w->q) == CTH_EINVAL, "task_done too many times accepted");
    if (!atomic_load(&w->shutdown_started)) {
        long extra = 0;
        model_check_wakeups(w, 0, waiters, &extra);
        for (long i = 0; i < extra; i++)
            cth_queue_task_done(w->q);
    }

    for (int p = 0; p < cfg->nthreads; p++) {
        free(count[p]);
        free(w->th[p].got);
    }
    free(drained);
    cth_queue_free(w->q);
    free(w->freed);
    free(w->rounds);
    free(w->mq);
    model_current = NULL;
    free(w);
    return ops;
}

#endif
