/* SPDX-License-Identifier: MIT */
/*
 * test_queue.c - Queue, LifoQueue, PriorityQueue: CPython's
 * Lib/test/test_queue.py (BaseQueueTestMixin, the shutdown tests,
 * FailingQueueTest) ported case by case, plus the C-only behaviour (error
 * codes, CTH_EINTR, put_many/get_many, stability, free functions).
 */
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "alloc.h"
#include "check.h"

#define QUEUE_SIZE 5
#define I2P(i) ((void *)(intptr_t)(i))
#define P2I(p) ((long)(intptr_t)(p))

static int cmp_int(const void *a, const void *b)
{
    long x = P2I(a), y = P2I(b);
    return (x > y) - (x < y);
}

static const cth_queue_kind_t kinds[3] = {CTH_QUEUE_FIFO, CTH_QUEUE_LIFO, CTH_QUEUE_PRIORITY};

static cth_queue_t *make(cth_queue_kind_t kind, size_t maxsize)
{
    cth_queue_opts_t o = {.kind = kind, .compare = cmp_int};
    cth_queue_t *q = NULL;
    CHECK_OK(cth_queue_create(&q, maxsize, &o));
    return q;
}

static cth_thread_t *spawn(void *(*fn)(void *), void *arg)
{
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, fn, arg, NULL));
    CHECK_OK(cth_thread_start(t));
    return t;
}

static void *reap(cth_thread_t *t)
{
    void *res;
    int r;
    /* The main thread: the signal of an earlier cth_interrupt_main may land
     * during this wait (thread.h: any handler run is CTH_EINTR); retry. */
    while ((r = cth_thread_join(t, &res, CTH_FOREVER)) == CTH_EINTR)
        ;
    CHECK_OK(r);
    cth_thread_free(t);
    return res;
}

/* put_many / get_many as one number: the count moved, or the error code
 * (the calls' *put / *got is checked to be 0 on an error). */
static long put_many(cth_queue_t *q, void *const *items, size_t n, double timeout)
{
    size_t put = 12345;
    int r = cth_queue_put_many(q, items, n, &put, timeout);
    CHECK(r <= 0 && (r == 0 || put == 0));
    return r ? r : (long)put;
}

static long get_many(cth_queue_t *q, void **items, size_t n, double timeout)
{
    size_t got = 12345;
    int r = cth_queue_get_many(q, items, n, &got, timeout);
    CHECK(r <= 0 && (r == 0 || got == 0));
    return r ? r : (long)got;
}

static long get_int(cth_queue_t *q, double timeout)
{
    void *p = I2P(-999);
    CHECK_OK(cth_queue_get(q, &p, timeout));
    return P2I(p);
}

/* ---- do_blocking_test: a call that blocks until another thread triggers ---- */

struct trigger {
    cth_queue_t *q;
    int is_put; /* trigger by put('empty'=77) or by get */
};

static void *trigger_after_delay(void *arg)
{
    struct trigger *t = arg;
    cth_sleep(0.1);
    if (t->is_put)
        CHECK_OK(cth_queue_put(t->q, I2P(77), CTH_FOREVER));
    else
        get_int(t->q, CTH_FOREVER);
    return NULL;
}

/* Python's do_blocking_test(block_func, args, trigger_func, args): the
 * blocking call returns only once the trigger ran (at least its delay). */
static void blocking_put(cth_queue_t *q, double timeout)
{
    struct trigger t = {q, 0};
    double t0 = check_now();
    cth_thread_t *th = spawn(trigger_after_delay, &t);
    CHECK_OK(cth_queue_put(q, I2P(30), timeout));
    CHECK_WAITED_AT_LEAST(t0, 0.1);
    reap(th);
}

static void blocking_get(cth_queue_t *q, double timeout)
{
    struct trigger t = {q, 1};
    double t0 = check_now();
    cth_thread_t *th = spawn(trigger_after_delay, &t);
    CHECK_EQ(get_int(q, timeout), 77);
    CHECK_WAITED_AT_LEAST(t0, 0.1);
    reap(th);
}

/* BaseQueueTestMixin.basic_queue_test */
static void basic_queue_test(cth_queue_t *q, cth_queue_kind_t kind)
{
    static const long order[3][3] = {{111, 333, 222}, {222, 333, 111}, {111, 222, 333}};
    CHECK_EQ(cth_queue_qsize(q), 0);
    CHECK(cth_queue_empty(q));
    CHECK(!cth_queue_full(q));
    CHECK_OK(cth_queue_put(q, I2P(111), CTH_FOREVER));
    CHECK_OK(cth_queue_put(q, I2P(333), CTH_FOREVER));
    CHECK_OK(cth_queue_put(q, I2P(222), CTH_FOREVER));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(get_int(q, CTH_FOREVER), order[kind][i]);
    for (int i = 0; i < QUEUE_SIZE - 1; i++) {
        CHECK_OK(cth_queue_put(q, I2P(i), CTH_FOREVER));
        CHECK(cth_queue_qsize(q) > 0);
    }
    CHECK(!cth_queue_full(q));
    CHECK_OK(cth_queue_put(q, I2P(2 * QUEUE_SIZE), CTH_FOREVER));
    CHECK(cth_queue_full(q));
    CHECK(!cth_queue_empty(q));
    CHECK_EQ(cth_queue_put(q, I2P(30), 0), CTH_EAGAIN);
    double t0 = check_now();
    CHECK_EQ(cth_queue_put(q, I2P(30), 0.01), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.01);
    blocking_put(q, CTH_FOREVER);
    blocking_put(q, 10);
    for (int i = 0; i < QUEUE_SIZE; i++)
        get_int(q, CTH_FOREVER);
    CHECK_EQ(cth_queue_qsize(q), 0);
    void *p;
    CHECK_EQ(cth_queue_get(q, &p, 0), CTH_EAGAIN);
    t0 = check_now();
    CHECK_EQ(cth_queue_get(q, &p, 0.01), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.01);
    blocking_get(q, CTH_FOREVER);
    blocking_get(q, 10);
}

/* test_basic: "Do it a couple of times on the same queue." */
CTH_TEST(basic)
{
    for (int k = 0; k < 3; k++) {
        cth_queue_t *q = make(kinds[k], QUEUE_SIZE);
        basic_queue_test(q, kinds[k]);
        basic_queue_test(q, kinds[k]);
        cth_queue_free(q);
    }
}

/* ---- task_done / join ------------------------------------------------------ */

struct join_ctx {
    cth_queue_t *q;
    _Atomic long cum;
};

static void *join_worker(void *arg)
{
    struct join_ctx *c = arg;
    for (;;) {
        long x = get_int(c->q, CTH_FOREVER);
        if (x < 0) {
            CHECK_OK(cth_queue_task_done(c->q));
            return NULL;
        }
        atomic_fetch_add(&c->cum, x);
        CHECK_OK(cth_queue_task_done(c->q));
    }
}

/* queue_join_test: 2 workers, 100 items; join returns after every task_done. */
static void queue_join_test(cth_queue_t *q)
{
    struct join_ctx c = {q, 0};
    cth_thread_t *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = spawn(join_worker, &c);
    for (int i = 0; i < 100; i++)
        CHECK_OK(cth_queue_put(q, I2P(i), CTH_FOREVER));
    CHECK_OK(cth_queue_join(q, CTH_FOREVER));
    CHECK_EQ(atomic_load(&c.cum), 4950);
    CHECK_EQ(cth_queue_unfinished_tasks(q), 0);
    for (int i = 0; i < 2; i++)
        CHECK_OK(cth_queue_put(q, I2P(-1), CTH_FOREVER));
    CHECK_OK(cth_queue_join(q, CTH_FOREVER));
    for (int i = 0; i < 2; i++)
        reap(t[i]);
}

/* test_queue_task_done: task_done on a fresh queue is ValueError; then
 * test_queue_join: the join test twice, and one task_done too many. */
CTH_TEST(task_done_join)
{
    for (int k = 0; k < 3; k++) {
        cth_queue_t *q = make(kinds[k], QUEUE_SIZE);
        CHECK_EQ(cth_queue_task_done(q), CTH_EINVAL);
        queue_join_test(q);
        queue_join_test(q);
        CHECK_EQ(cth_queue_task_done(q), CTH_EINVAL);
        cth_queue_free(q);
    }
}

/* Beyond Python: join with a timeout. */
CTH_TEST(join_timeout)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 0);
    CHECK_OK(cth_queue_join(q, 0)); /* nothing unfinished */
    CHECK_OK(cth_queue_put(q, I2P(1), 0));
    CHECK_EQ(cth_queue_join(q, 0), CTH_ETIMEDOUT);
    double t0 = check_now();
    CHECK_EQ(cth_queue_join(q, 0.05), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.05);
    CHECK_EQ(cth_queue_join(q, -2), CTH_EINVAL);
    CHECK_EQ(cth_queue_join(q, NAN), CTH_EINVAL);
    CHECK_EQ(cth_queue_join(q, 1e300), CTH_EOVERFLOW);
    get_int(q, 0);
    CHECK_OK(cth_queue_task_done(q));
    CHECK_OK(cth_queue_join(q, 0));
    cth_queue_free(q);
}

/* ---- argument checks ------------------------------------------------------- */

/* The 0.1.0 signatures, checked at compile time: size_t sizes, const
 * queries, the counts of put_many/get_many as outputs before the timeout. */
#define SIGNATURE_IS(fn, type) _Generic(&(fn), type : 1, default : 0)
_Static_assert(SIGNATURE_IS(cth_queue_create,
                            int (*)(cth_queue_t **, size_t, const cth_queue_opts_t *)),
               "cth_queue_create(&q, size_t maxsize, opts)");
_Static_assert(SIGNATURE_IS(cth_queue_put_many,
                            int (*)(cth_queue_t *, void *const *, size_t, size_t *, double)),
               "cth_queue_put_many(q, items, size_t n, &put, timeout)");
_Static_assert(SIGNATURE_IS(cth_queue_get_many,
                            int (*)(cth_queue_t *, void **, size_t, size_t *, double)),
               "cth_queue_get_many(q, items, size_t n, &got, timeout)");
_Static_assert(SIGNATURE_IS(cth_queue_set_maxsize, int (*)(cth_queue_t *, size_t)),
               "cth_queue_set_maxsize(q, size_t)");
_Static_assert(SIGNATURE_IS(cth_queue_qsize, size_t (*)(const cth_queue_t *)), "qsize");
_Static_assert(SIGNATURE_IS(cth_queue_maxsize, size_t (*)(const cth_queue_t *)), "maxsize");
_Static_assert(SIGNATURE_IS(cth_queue_unfinished_tasks, size_t (*)(const cth_queue_t *)),
               "unfinished_tasks");
_Static_assert(SIGNATURE_IS(cth_queue_empty, bool (*)(const cth_queue_t *)), "empty");
_Static_assert(SIGNATURE_IS(cth_queue_full, bool (*)(const cth_queue_t *)), "full");
_Static_assert(SIGNATURE_IS(cth_queue_is_shutdown, bool (*)(const cth_queue_t *)), "is_shutdown");
_Static_assert(_Generic((cth_compare_fn)0, int (*)(const void *, const void *) : 1, default : 0),
               "cth_compare_fn has qsort's shape");
_Static_assert(_Generic(((cth_queue_opts_t *)0)->compare, cth_compare_fn : 1, default : 0) &&
                   _Generic(((cth_queue_opts_t *)0)->free_item, cth_free_fn : 1, default : 0) &&
                   _Generic(((cth_queue_opts_t *)0)->kind, cth_queue_kind_t : 1, default : 0),
               "cth_queue_opts_t's fields");

/* Queries answer a NULL queue with 0 / false, and take a const queue. */
CTH_TEST(queries_null_and_const)
{
    CHECK_EQ(cth_queue_qsize(NULL), 0);
    CHECK_EQ(cth_queue_maxsize(NULL), 0);
    CHECK_EQ(cth_queue_unfinished_tasks(NULL), 0);
    CHECK(cth_queue_empty(NULL));
    CHECK(!cth_queue_full(NULL));
    CHECK(!cth_queue_is_shutdown(NULL));
    for (int k = 0; k < 3; k++) {
        cth_queue_t *q = make(kinds[k], 2);
        CHECK_OK(cth_queue_put(q, I2P(1), 0));
        CHECK_OK(cth_queue_put(q, I2P(2), 0));
        const cth_queue_t *cq = q;
        CHECK_EQ(cth_queue_qsize(cq), 2);
        CHECK_EQ(cth_queue_maxsize(cq), 2);
        CHECK_EQ(cth_queue_unfinished_tasks(cq), 2);
        CHECK(!cth_queue_empty(cq));
        CHECK(cth_queue_full(cq));
        CHECK(!cth_queue_is_shutdown(cq));
        cth_queue_free(q);
    }
}

/* test_negative_timeout_raises_exception, and the other bad arguments. */
CTH_TEST(bad_arguments)
{
    for (int k = 0; k < 3; k++) {
        cth_queue_t *q = make(kinds[k], QUEUE_SIZE);
        void *p;
        CHECK_EQ(cth_queue_put(q, I2P(1), -1.5), CTH_EINVAL);
        CHECK_EQ(cth_queue_put(q, I2P(1), NAN), CTH_EINVAL);
        CHECK_EQ(cth_queue_put(q, I2P(1), 1e300), CTH_EOVERFLOW);
        CHECK_EQ(cth_queue_get(q, &p, -1.5), CTH_EINVAL);
        CHECK_EQ(cth_queue_get(q, &p, NAN), CTH_EINVAL);
        CHECK_EQ(cth_queue_get(q, NULL, 0), CTH_EINVAL);
        CHECK_EQ(cth_queue_qsize(q), 0); /* nothing happened */
        /* Python's order: the timeout is checked before fullness/emptiness. */
        CHECK_OK(cth_queue_put(q, I2P(1), 0));
        CHECK_EQ(cth_queue_get(q, &p, -1.5), CTH_EINVAL);
        CHECK_EQ(cth_queue_qsize(q), 1);
        size_t n = 7;
        CHECK_EQ(cth_queue_put_many(q, NULL, 1, &n, 0), CTH_EINVAL);
        CHECK_EQ(n, 0); /* the count is 0 on every error */
        CHECK_EQ(cth_queue_put_many(q, &p, 1, NULL, 0), CTH_EINVAL);
        CHECK_EQ(cth_queue_get_many(q, NULL, 1, &n, 0), CTH_EINVAL);
        CHECK_EQ(cth_queue_get_many(q, &p, 1, NULL, 0), CTH_EINVAL);
        CHECK_EQ(cth_queue_qsize(q), 1);
        n = 7;
        CHECK_OK(cth_queue_put_many(q, NULL, 0, &n, 0));
        CHECK_EQ(n, 0);
        n = 7;
        CHECK_OK(cth_queue_get_many(q, NULL, 0, &n, 0));
        CHECK_EQ(n, 0);
        cth_queue_free(q);
    }
    void *p;
    cth_queue_t *q = NULL;
    CHECK_EQ(cth_queue_create(NULL, 0, NULL), CTH_EINVAL);
    cth_queue_opts_t o = {.kind = CTH_QUEUE_PRIORITY};
    CHECK_EQ(cth_queue_create(&q, 0, &o), CTH_EINVAL); /* no compare */
    o.kind = (cth_queue_kind_t)7;
    CHECK_EQ(cth_queue_create(&q, 0, &o), CTH_EINVAL);
    CHECK(q == NULL);
    CHECK_EQ(cth_queue_put(NULL, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_put_nowait(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_queue_get(NULL, &p, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_get_nowait(NULL, &p), CTH_EINVAL);
    size_t n;
    CHECK_EQ(cth_queue_put_many(NULL, &p, 1, &n, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_get_many(NULL, &p, 1, &n, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_qsize(NULL), 0); /* a query: 0, never an error code */
    CHECK(cth_queue_empty(NULL));
    CHECK(!cth_queue_full(NULL));
    CHECK_EQ(cth_queue_maxsize(NULL), 0);
    CHECK_EQ(cth_queue_set_maxsize(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_queue_task_done(NULL), CTH_EINVAL);
    CHECK_EQ(cth_queue_unfinished_tasks(NULL), 0);
    CHECK_EQ(cth_queue_join(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_shutdown(NULL, false), CTH_EINVAL);
    CHECK(!cth_queue_is_shutdown(NULL));
    cth_queue_free(NULL);
}

/* maxsize 0 is unbounded (Python's maxsize <= 0), and so is (size_t)-1, a
 * port of Queue(-1): kept as LONG_MAX, a bound no queue reaches. full() is
 * then always false. */
CTH_TEST(zero_maxsize_unbounded)
{
    for (int k = 0; k < 3; k++) {
        size_t sizes[2] = {0, (size_t)-1};
        for (int s = 0; s < 2; s++) {
            cth_queue_t *q = make(kinds[k], sizes[s]);
            CHECK(cth_queue_maxsize(q) == (s ? (size_t)LONG_MAX : 0));
            for (int i = 0; i < 3000; i++)
                CHECK_OK(cth_queue_put(q, I2P(i), 0));
            CHECK(!cth_queue_full(q));
            CHECK_EQ(cth_queue_qsize(q), 3000);
            CHECK_EQ(get_int(q, 0), kinds[k] == CTH_QUEUE_LIFO ? 2999 : 0);
            cth_queue_free(q);
        }
    }
    /* set_maxsize takes the same values: 0 and (size_t)-1 unbound it. */
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 1);
    CHECK_OK(cth_queue_put(q, I2P(1), 0));
    CHECK(cth_queue_full(q));
    CHECK_OK(cth_queue_set_maxsize(q, (size_t)-1));
    CHECK(cth_queue_maxsize(q) == (size_t)LONG_MAX);
    CHECK(!cth_queue_full(q));
    CHECK_OK(cth_queue_put(q, I2P(2), 0));
    CHECK_OK(cth_queue_set_maxsize(q, 0));
    CHECK_EQ(cth_queue_maxsize(q), 0);
    CHECK_OK(cth_queue_put(q, I2P(3), 0));
    CHECK_EQ(cth_queue_qsize(q), 3);
    cth_queue_free(q);
}

/* test_nowait: put_nowait over capacity is Full, get_nowait on empty is Empty. */
CTH_TEST(nowait)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, QUEUE_SIZE);
    for (int i = 0; i < QUEUE_SIZE; i++)
        CHECK_OK(cth_queue_put_nowait(q, I2P(i)));
    CHECK_EQ(cth_queue_put_nowait(q, I2P(99)), CTH_EAGAIN);
    void *p;
    for (int i = 0; i < QUEUE_SIZE; i++)
        CHECK_OK(cth_queue_get_nowait(q, &p));
    CHECK_EQ(cth_queue_get_nowait(q, &p), CTH_EAGAIN);
    cth_queue_free(q);
}

/* test_shrinking_queue: a maxsize lowered at runtime still produces Full. */
CTH_TEST(shrinking_queue)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 3);
    CHECK_OK(cth_queue_put(q, I2P(1), CTH_FOREVER));
    CHECK_OK(cth_queue_put(q, I2P(2), CTH_FOREVER));
    CHECK_OK(cth_queue_put(q, I2P(3), CTH_FOREVER));
    CHECK_EQ(cth_queue_put_nowait(q, I2P(4)), CTH_EAGAIN);
    CHECK_OK(cth_queue_set_maxsize(q, 2));
    CHECK_EQ(cth_queue_maxsize(q), 2);
    CHECK_EQ(cth_queue_put_nowait(q, I2P(4)), CTH_EAGAIN);
    get_int(q, 0); /* 2 left: still full under maxsize 2 */
    CHECK(cth_queue_full(q));
    CHECK_EQ(cth_queue_put_nowait(q, I2P(4)), CTH_EAGAIN);
    cth_queue_free(q);
}

static void *put_forever(void *arg)
{
    return I2P(cth_queue_put(arg, I2P(42), CTH_FOREVER));
}

/* Raising maxsize lets a blocked putter in. */
CTH_TEST(growing_maxsize_releases_putter)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 1);
    CHECK_OK(cth_queue_put(q, I2P(1), 0));
    cth_thread_t *t = spawn(put_forever, q);
    cth_sleep(0.05);
    CHECK_EQ(cth_queue_qsize(q), 1);
    CHECK_OK(cth_queue_set_maxsize(q, 0));
    CHECK_EQ(P2I(reap(t)), 0);
    CHECK_EQ(cth_queue_qsize(q), 2);
    CHECK_EQ(get_int(q, 0), 1);
    CHECK_EQ(get_int(q, 0), 42);
    cth_queue_free(q);
}

/* ---- the FIFO ring: growing, bounds above its first capacity ------------------ */

/* An unbounded Queue's ring grows with items wrapped around its end (head
 * not at 0), by single puts and inside one put_many, keeping the order. */
CTH_TEST(ring_grows_in_order)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 0);
    long next_in = 0, next_out = 0;
    for (; next_in < 10; next_in++)
        CHECK_OK(cth_queue_put(q, I2P(next_in), 0));
    for (; next_out < 7; next_out++)
        CHECK_EQ(get_int(q, 0), next_out);
    for (; next_in < 110; next_in++)
        CHECK_OK(cth_queue_put(q, I2P(next_in), 0));
    CHECK_EQ(cth_queue_qsize(q), 103);
    static void *batch[3000];
    for (int i = 0; i < 3000; i++)
        batch[i] = I2P(next_in + i);
    CHECK_EQ(put_many(q, batch, 3000, 0), 3000);
    next_in += 3000;
    CHECK_EQ(cth_queue_qsize(q), next_in - next_out);
    CHECK_EQ(cth_queue_unfinished_tasks(q), next_in);
    while (next_out < next_in) {
        long n = get_many(q, batch, 1000, 0);
        CHECK(n >= 1);
        for (long i = 0; i < n; i++)
            CHECK_EQ(P2I(batch[i]), next_out++);
    }
    void *p;
    CHECK_EQ(cth_queue_get_nowait(q, &p), CTH_EAGAIN);
    cth_queue_free(q);
}

/* The resident size of the process, in bytes. */
static long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f);
    long size = 0, resident = 0;
    CHECK(fscanf(f, "%ld %ld", &size, &resident) == 2);
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* A queue that once grew to a million items gives its outgrown rings'
 * memory back once they are drained (here: when a get parks on the empty
 * queue), not only when it is freed. */
CTH_TEST(outgrown_rings_reclaimed)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("resident size under valgrind");
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 0);
    long n = 1L << 20;
    for (long i = 0; i < n; i++)
        CHECK_OK(cth_queue_put(q, I2P(i), 0));
    for (long i = 0; i < n; i++)
        CHECK_EQ(get_int(q, 0), i);
    long before = resident_bytes();
    void *p;
    CHECK_EQ(cth_queue_get(q, &p, 0.001), CTH_ETIMEDOUT);
    long after = resident_bytes();
    /* the rings of 1024 to 512K cells, 16 bytes each: about 16 MB */
    CHECK(before - after >= 8L << 20);
    for (long i = 0; i < 1000; i++) /* and it goes on working */
        CHECK_OK(cth_queue_put(q, I2P(i), 0));
    for (long i = 0; i < 1000; i++)
        CHECK_EQ(get_int(q, 0), i);
    cth_queue_free(q);
}

/* A maxsize above the first ring (1024 slots) and not a power of two is
 * exact: the ring grows to hold it and not one item more; raising maxsize
 * lets more in. */
CTH_TEST(bound_above_first_ring)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 1500);
    for (long i = 0; i < 1500; i++)
        CHECK_OK(cth_queue_put_nowait(q, I2P(i)));
    CHECK(cth_queue_full(q));
    CHECK_EQ(cth_queue_put_nowait(q, I2P(-1)), CTH_EAGAIN);
    void *batch[8] = {0};
    CHECK_EQ(put_many(q, batch, 8, 0), CTH_EAGAIN);
    CHECK_OK(cth_queue_set_maxsize(q, 1503));
    CHECK_EQ(put_many(q, batch, 8, 0), 3);
    CHECK(cth_queue_full(q));
    CHECK_EQ(cth_queue_qsize(q), 1503);
    for (long i = 0; i < 1500; i++)
        CHECK_EQ(get_int(q, 0), i);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(get_int(q, 0), 0);
    CHECK(cth_queue_empty(q));
    cth_queue_free(q);
}

static void *put_many_forever(void *arg)
{
    static void *batch[2000];
    for (int i = 0; i < 2000; i++)
        batch[i] = I2P(i + 1);
    return I2P(put_many(arg, batch, 2000, CTH_FOREVER));
}

/* A put_many parked on a full queue moves all its items in when maxsize is
 * raised past the ring's capacity (the ring grows under the lock). */
CTH_TEST(raised_maxsize_grows_ring_for_parked_put_many)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 1);
    CHECK_OK(cth_queue_put(q, I2P(0), 0));
    cth_thread_t *t = spawn(put_many_forever, q);
    cth_sleep(0.05);
    CHECK_EQ(cth_queue_qsize(q), 1);
    CHECK_OK(cth_queue_set_maxsize(q, 5000));
    CHECK_EQ(P2I(reap(t)), 2000);
    CHECK_EQ(cth_queue_qsize(q), 2001);
    for (long i = 0; i <= 2000; i++)
        CHECK_EQ(get_int(q, 0), i);
    cth_queue_free(q);
}

/* ---- C additions: priority stability, bulk calls, free functions ----------- */

struct pitem {
    int prio, order;
};

static int cmp_prio(const void *a, const void *b)
{
    const struct pitem *x = a, *y = b;
    return (x->prio > y->prio) - (x->prio < y->prio);
}

/* Beyond Python (heapq is not stable): equal items leave in put order. */
CTH_TEST(priority_stable)
{
    enum { N = 300 };
    static struct pitem items[N];
    cth_queue_opts_t o = {.kind = CTH_QUEUE_PRIORITY, .compare = cmp_prio};
    cth_queue_t *q;
    CHECK_OK(cth_queue_create(&q, 0, &o));
    for (int i = 0; i < N; i++) {
        items[i] = (struct pitem){(i * 7) % 5, i};
        CHECK_OK(cth_queue_put(q, &items[i], 0));
    }
    struct pitem *prev = NULL;
    for (int i = 0; i < N; i++) {
        void *p;
        CHECK_OK(cth_queue_get(q, &p, 0));
        struct pitem *it = p;
        if (prev)
            CHECK(prev->prio < it->prio || (prev->prio == it->prio && prev->order < it->order));
        prev = it;
    }
    cth_queue_free(q);
}

/* qsize of a bounded FIFO never reads above maxsize, even while puts and
 * gets race past it: its lock-free count must be one consistent snapshot
 * (reading head, then tail, once showed 13 items in a queue of 3). */
static atomic_bool qsize_stop;

static void *qsize_churn(void *arg)
{
    cth_queue_t *q = arg;
    void *item;
    while (!atomic_load(&qsize_stop)) {
        CHECK_OK(cth_queue_put(q, q, CTH_FOREVER));
        CHECK_OK(cth_queue_get(q, &item, CTH_FOREVER));
    }
    return NULL;
}

CTH_TEST(qsize_never_above_maxsize)
{
    cth_queue_t *q;
    CHECK_OK(cth_queue_create(&q, 3, NULL));
    atomic_store(&qsize_stop, false);
    cth_thread_t *t[2];
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cth_thread_create(&t[i], qsize_churn, q, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    double end = cth_monotonic() + 0.5;
    while (cth_monotonic() < end)
        for (int k = 0; k < 1000; k++)
            CHECK(cth_queue_qsize(q) <= 3);
    atomic_store(&qsize_stop, true);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    cth_queue_free(q);
}

/* A get_many takes every item up to n that the queue holds, also when they
 * span the point where an unbounded FIFO's ring grew (the fuzzer found
 * get_many(3) returning 2 of 3 items there). Each round fills a fresh
 * queue past its first ring, with gets before the growth moving head. */
CTH_TEST(get_many_across_ring_growth)
{
    static void *items[5000], *out[5000];
    for (size_t i = 0; i < 5000; i++)
        items[i] = (void *)(uintptr_t)(i + 1);
    for (size_t n = 1; n <= 2100; n += 7) {
        for (size_t skip = 0; skip < 3; skip++) {
            cth_queue_t *q;
            CHECK_OK(cth_queue_create(&q, 0, NULL));
            size_t put, got;
            CHECK_OK(cth_queue_put_many(q, items, skip, &put, 0));
            CHECK_EQ(put, skip);
            for (size_t k = 0; k < skip; k++)
                CHECK_OK(cth_queue_get(q, &out[k], 0));
            CHECK_OK(cth_queue_put_many(q, items, n, &put, 0));
            CHECK_EQ(put, n);
            CHECK_OK(cth_queue_get_many(q, out, n + 1, &got, 0));
            CHECK_EQ(got, n);
            for (size_t k = 0; k < n; k++)
                CHECK(out[k] == items[k]);
            cth_queue_free(q);
        }
    }
}

CTH_TEST(put_many_get_many)
{
    for (int k = 0; k < 3; k++) {
        cth_queue_t *q = make(kinds[k], 4);
        void *in[6] = {I2P(1), I2P(2), I2P(3), I2P(4), I2P(5), I2P(6)}, *out[6];
        size_t n = 0;
        CHECK_OK(cth_queue_put_many(q, in, 6, &n, 0)); /* as many as fit */
        CHECK_EQ(n, 4);
        n = 7;
        CHECK_EQ(cth_queue_put_many(q, in + 4, 2, &n, 0), CTH_EAGAIN);
        CHECK_EQ(n, 0);
        CHECK_EQ(cth_queue_unfinished_tasks(q), 4);
        CHECK_OK(cth_queue_get_many(q, out, 3, &n, 0));
        CHECK_EQ(n, 3);
        long first = kinds[k] == CTH_QUEUE_LIFO ? 4 : 1;
        CHECK_EQ(P2I(out[0]), first);
        CHECK_OK(cth_queue_get_many(q, out, 6, &n, 0));
        CHECK_EQ(n, 1);
        n = 7;
        CHECK_EQ(cth_queue_get_many(q, out, 6, &n, 0), CTH_EAGAIN);
        CHECK_EQ(n, 0);
        /* An n beyond INT_MAX is a bound like any other (at most INT_MAX
         * move per call): here as many as fit, or as there are. */
        CHECK_OK(cth_queue_put_many(q, in, SIZE_MAX, &n, 0));
        CHECK_EQ(n, 4);
        CHECK_OK(cth_queue_get_many(q, out, SIZE_MAX, &n, 0));
        CHECK_EQ(n, 4);
        cth_queue_free(q);
    }
}

static cth_event_t getter_started;

static void *get_many_waiter(void *arg)
{
    void *out[8];
    CHECK_OK(cth_event_set(&getter_started));
    long n = get_many(arg, out, 8, CTH_FOREVER);
    CHECK_EQ(n, 3);
    for (long i = 0; i < n; i++)
        CHECK_EQ(P2I(out[i]), i + 1);
    return NULL;
}

/* A getter parked in get_many receives a put_many's items directly. */
CTH_TEST(get_many_hand_off)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 2);
    CHECK_OK(cth_event_init(&getter_started));
    cth_thread_t *t = spawn(get_many_waiter, q);
    CHECK_OK(cth_event_wait(&getter_started, CTH_FOREVER));
    cth_sleep(0.1); /* it parks meanwhile */
    void *in[3] = {I2P(1), I2P(2), I2P(3)};
    CHECK_EQ(put_many(q, in, 3, 0), 3); /* none stored: handed off */
    reap(t);
    CHECK_EQ(cth_queue_qsize(q), 0);
    CHECK_EQ(cth_queue_unfinished_tasks(q), 3);
    cth_queue_free(q);
}

static _Atomic int freed;
static void count_free(void *item)
{
    (void)item;
    atomic_fetch_add(&freed, 1);
}

/* Nothing is lost: freeing a non-empty queue hands its items to free_item. */
CTH_TEST(free_nonempty)
{
    for (int k = 0; k < 3; k++) {
        atomic_store(&freed, 0);
        cth_queue_opts_t o = {.kind = kinds[k], .compare = cmp_int, .free_item = count_free};
        cth_queue_t *q;
        CHECK_OK(cth_queue_create(&q, 0, &o));
        for (int i = 0; i < 100; i++)
            CHECK_OK(cth_queue_put(q, I2P(i), 0));
        get_int(q, 0);
        cth_queue_free(q);
        CHECK_EQ(atomic_load(&freed), 99);
    }
}

/* ---- CTH_EINTR ------------------------------------------------------------- */

/* Beyond Python (gh-74112): the main thread blocked in get, put or join
 * wakes with CTH_EINTR on cth_interrupt_main, and the queue is unchanged. */
CTH_TEST(interrupt_main)
{
    struct sigaction sa = {0};
    sa.sa_handler = check_sigint_noop;
    sigaction(SIGINT, &sa, NULL);
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 1);
    void *p;
    cth_thread_t *t = spawn(check_interrupter, NULL);
    CHECK_EQ(cth_queue_get(q, &p, CTH_FOREVER), CTH_EINTR);
    reap(t);
    CHECK_OK(cth_queue_put(q, I2P(1), 0));
    t = spawn(check_interrupter, NULL);
    CHECK_EQ(cth_queue_put(q, I2P(2), 10), CTH_EINTR);
    reap(t);
    t = spawn(check_interrupter, NULL);
    CHECK_EQ(cth_queue_join(q, CTH_FOREVER), CTH_EINTR);
    reap(t);
    CHECK_EQ(cth_queue_qsize(q), 1);
    CHECK_EQ(get_int(q, 0), 1);
    CHECK_OK(cth_queue_task_done(q));
    CHECK_EQ(cth_queue_unfinished_tasks(q), 0);
    cth_queue_free(q);
}

/* ---- FailingQueueTest ------------------------------------------------------- */

/* FailingQueueTest.test_failing_queue: storage failures in put propagate
 * (CTH_ENOMEM) and leave the queue consistent, for the non-blocking, timed
 * and blocking forms; gets keep working. Fault injection makes the storage's
 * growth fail. */
CTH_TEST(failing_queue)
{
    for (int k = 0; k < 3; k++) {
        for (int round = 0; round < 2; round++) {
            cth_queue_t *q = make(kinds[k], 0);
            for (int i = 0; i < 16; i++) /* the preallocated capacity */
                CHECK_OK(cth_queue_put(q, I2P(i), 0));
            cth__fault_alloc_after(0);
            CHECK_EQ(cth_queue_put(q, I2P(100), 0), CTH_ENOMEM);
            CHECK_EQ(cth_queue_put(q, I2P(100), 0.01), CTH_ENOMEM);
            CHECK_EQ(cth_queue_put(q, I2P(100), CTH_FOREVER), CTH_ENOMEM);
            void *many[2] = {I2P(100), I2P(101)};
            CHECK_EQ(put_many(q, many, 2, 0), CTH_ENOMEM);
            cth__fault_alloc_after(-1);
            CHECK_EQ(cth_queue_qsize(q), 16);
            CHECK_EQ(cth_queue_unfinished_tasks(q), 16);
            CHECK_EQ(get_int(q, 0), kinds[k] == CTH_QUEUE_LIFO ? 15 : 0);
            CHECK_OK(cth_queue_put(q, I2P(200), 0));
            CHECK_OK(cth_queue_put(q, I2P(201), 0)); /* grows now */
            CHECK_EQ(cth_queue_qsize(q), 17);
            long sum = 0;
            for (int i = 0; i < 17; i++)
                sum += get_int(q, 0);
            CHECK_EQ(sum, (kinds[k] == CTH_QUEUE_LIFO ? 120 - 15 : 120) + 401);
            cth_queue_free(q);
        }
    }
    cth_queue_t *q;
    cth__fault_alloc_after(0);
    CHECK_EQ(cth_queue_create(&q, 0, NULL), CTH_ENOMEM);
    cth__fault_alloc_after(1);
    CHECK_EQ(cth_queue_create(&q, 0, NULL), CTH_ENOMEM);
    cth__fault_alloc_after(-1);
}

/* ---- shutdown (3.13) --------------------------------------------------------- */

/* test_shutdown_empty */
CTH_TEST(shutdown_empty)
{
    for (int k = 0; k < 3; k++) {
        cth_queue_t *q = make(kinds[k], QUEUE_SIZE);
        void *p;
        CHECK_OK(cth_queue_shutdown(q, false));
        CHECK_EQ(cth_queue_put(q, I2P(1), CTH_FOREVER), CTH_ESHUTDOWN);
        CHECK_EQ(cth_queue_get(q, &p, CTH_FOREVER), CTH_ESHUTDOWN);
        cth_queue_free(q);
    }
}

/* test_shutdown_nonempty: a non-immediate shutdown lets the items drain. */
CTH_TEST(shutdown_nonempty)
{
    for (int k = 0; k < 3; k++) {
        cth_queue_t *q = make(kinds[k], QUEUE_SIZE);
        void *p;
        CHECK_OK(cth_queue_put(q, I2P(1), CTH_FOREVER));
        CHECK_OK(cth_queue_shutdown(q, false));
        CHECK_EQ(cth_queue_put(q, I2P(2), CTH_FOREVER), CTH_ESHUTDOWN);
        CHECK_EQ(get_int(q, CTH_FOREVER), 1);
        CHECK_EQ(cth_queue_get(q, &p, CTH_FOREVER), CTH_ESHUTDOWN);
        cth_queue_free(q);
    }
}

/* test_shutdown_immediate: items are dropped (to free_item), get fails. */
CTH_TEST(shutdown_immediate)
{
    for (int k = 0; k < 3; k++) {
        atomic_store(&freed, 0);
        cth_queue_opts_t o = {.kind = kinds[k], .compare = cmp_int, .free_item = count_free};
        cth_queue_t *q;
        void *p;
        CHECK_OK(cth_queue_create(&q, QUEUE_SIZE, &o));
        CHECK_OK(cth_queue_put(q, I2P(1), CTH_FOREVER));
        CHECK_OK(cth_queue_put(q, I2P(2), CTH_FOREVER));
        CHECK_OK(cth_queue_shutdown(q, true));
        CHECK_EQ(atomic_load(&freed), 2);
        CHECK_EQ(cth_queue_put(q, I2P(3), CTH_FOREVER), CTH_ESHUTDOWN);
        CHECK_EQ(cth_queue_get(q, &p, CTH_FOREVER), CTH_ESHUTDOWN);
        CHECK_EQ(cth_queue_qsize(q), 0);
        CHECK_EQ(cth_queue_unfinished_tasks(q), 0);
        CHECK_OK(cth_queue_join(q, 0));
        CHECK_EQ(cth_queue_task_done(q), CTH_EINVAL);
        cth_queue_free(q);
        CHECK_EQ(atomic_load(&freed), 2);
    }
}

/* test_shutdown_allowed_transitions: is_shutdown; idempotent; immediate
 * after normal. */
CTH_TEST(shutdown_allowed_transitions)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, QUEUE_SIZE);
    CHECK(!cth_queue_is_shutdown(q));
    CHECK_OK(cth_queue_shutdown(q, false));
    CHECK(cth_queue_is_shutdown(q));
    CHECK_OK(cth_queue_shutdown(q, false));
    CHECK(cth_queue_is_shutdown(q));
    CHECK_OK(cth_queue_shutdown(q, true));
    CHECK(cth_queue_is_shutdown(q));
    CHECK_OK(cth_queue_shutdown(q, false));
    CHECK(cth_queue_is_shutdown(q));
    cth_queue_free(q);
}

/* _shutdown_all_methods_in_one_thread(immediate) */
static void shutdown_all_methods_in_one_thread(bool immediate)
{
    cth_queue_t *q = make(CTH_QUEUE_FIFO, 2);
    void *p;
    CHECK_OK(cth_queue_put(q, I2P(1), CTH_FOREVER));
    CHECK_OK(cth_queue_put(q, I2P(2), CTH_FOREVER));
    CHECK_OK(cth_queue_shutdown(q, immediate));
    CHECK_EQ(cth_queue_put(q, I2P(3), CTH_FOREVER), CTH_ESHUTDOWN);
    CHECK_EQ(cth_queue_put_nowait(q, I2P(3)), CTH_ESHUTDOWN);
    if (immediate) {
        CHECK_EQ(cth_queue_get(q, &p, CTH_FOREVER), CTH_ESHUTDOWN);
        CHECK_EQ(cth_queue_get_nowait(q, &p), CTH_ESHUTDOWN);
        CHECK_EQ(cth_queue_task_done(q), CTH_EINVAL);
        CHECK_OK(cth_queue_join(q, CTH_FOREVER));
    } else {
        CHECK_EQ(get_int(q, CTH_FOREVER), 1);
        CHECK_OK(cth_queue_task_done(q));
        CHECK_EQ(get_int(q, 0), 2);
        CHECK_OK(cth_queue_task_done(q));
        CHECK_EQ(cth_queue_get_nowait(q, &p), CTH_ESHUTDOWN);
        CHECK_EQ(cth_queue_get(q, &p, 0.01), CTH_ESHUTDOWN);
        CHECK_EQ(cth_queue_get(q, &p, CTH_FOREVER), CTH_ESHUTDOWN);
        CHECK_OK(cth_queue_join(q, CTH_FOREVER));
    }
    cth_queue_free(q);
}

CTH_TEST(shutdown_all_methods_in_one_thread)
{
    shutdown_all_methods_in_one_thread(false);
}

CTH_TEST(shutdown_immediate_all_methods_in_one_thread)
{
    shutdown_all_methods_in_one_thread(true);
}

/* _shutdown_all_methods_in_many_threads(immediate): 4 writers, 6 readers,
 * 2 joiners on a small queue; after the shutdown every writer and reader
 * ends with ShutDown, the joiners return, and no item is lost. */
struct many_ctx {
    cth_queue_t *q;
    _Atomic int go;
    _Atomic long put, got, dropped;
};

static void wait_go(struct many_ctx *c)
{
    while (!atomic_load(&c->go))
        cth_sleep(0.001);
}

static void *many_writer(void *arg)
{
    struct many_ctx *c = arg;
    wait_go(c);
    for (long i = 0;; i++) {
        int r = cth_queue_put(c->q, I2P(i), CTH_FOREVER);
        if (r == CTH_ESHUTDOWN)
            return NULL;
        CHECK_OK(r);
        atomic_fetch_add(&c->put, 1);
    }
}

static void *many_reader(void *arg)
{
    struct many_ctx *c = arg;
    wait_go(c);
    for (;;) {
        void *p;
        int r = cth_queue_get(c->q, &p, CTH_FOREVER);
        if (r == CTH_ESHUTDOWN)
            return NULL;
        CHECK_OK(r);
        atomic_fetch_add(&c->got, 1);
        int d = cth_queue_task_done(c->q);
        CHECK(d == 0 || d == CTH_EINVAL); /* EINVAL once an immediate shutdown settled */
    }
}

static void *many_joiner(void *arg)
{
    struct many_ctx *c = arg;
    wait_go(c);
    CHECK_OK(cth_queue_join(c->q, CTH_FOREVER));
    return NULL;
}

static void shutdown_all_methods_in_many_threads(bool immediate)
{
    struct many_ctx c = {0};
    c.q = make(CTH_QUEUE_FIFO, 2);
    cth_thread_t *w[4], *r[6], *j[2];
    for (int i = 0; i < 4; i++)
        w[i] = spawn(many_writer, &c);
    for (int i = 0; i < 6; i++)
        r[i] = spawn(many_reader, &c);
    for (int i = 0; i < 2; i++)
        j[i] = spawn(many_joiner, &c);
    atomic_store(&c.go, 1);
    cth_sleep(0.2);
    CHECK_OK(cth_queue_shutdown(c.q, immediate));
    for (int i = 0; i < 4; i++)
        reap(w[i]);
    for (int i = 0; i < 6; i++)
        reap(r[i]);
    for (int i = 0; i < 2; i++)
        reap(j[i]);
    CHECK(cth_queue_empty(c.q));
    CHECK_EQ(cth_queue_unfinished_tasks(c.q), 0);
    long left = atomic_load(&c.put) - atomic_load(&c.got);
    CHECK(immediate ? left >= 0 && left <= 2 : left == 0);
    CHECK(atomic_load(&c.put) > 0);
    cth_queue_free(c.q);
}

CTH_TEST(shutdown_all_methods_in_many_threads)
{
    shutdown_all_methods_in_many_threads(false);
}

CTH_TEST(shutdown_immediate_all_methods_in_many_threads)
{
    shutdown_all_methods_in_many_threads(true);
}

/* ---- shutdown with blocked threads ------------------------------------------- */

struct blk_ctx {
    cth_queue_t *q;
    _Atomic int shutdowns, oks;
};

static void *blk_get(void *arg)
{
    struct blk_ctx *c = arg;
    void *p;
    int r = cth_queue_get(c->q, &p, CTH_FOREVER);
    if (r == CTH_ESHUTDOWN)
        atomic_fetch_add(&c->shutdowns, 1);
    else {
        CHECK_OK(r);
        atomic_fetch_add(&c->oks, 1);
    }
    return NULL;
}

static void *blk_put(void *arg)
{
    struct blk_ctx *c = arg;
    int r = cth_queue_put(c->q, I2P(9), CTH_FOREVER);
    if (r == CTH_ESHUTDOWN)
        atomic_fetch_add(&c->shutdowns, 1);
    else {
        CHECK_OK(r);
        atomic_fetch_add(&c->oks, 1);
    }
    return NULL;
}

static void *blk_join(void *arg)
{
    struct blk_ctx *c = arg;
    CHECK_OK(cth_queue_join(c->q, CTH_FOREVER));
    atomic_fetch_add(&c->oks, 1);
    return NULL;
}

/* _shutdown_get(immediate): 2 items, 3 getters: exactly one gets ShutDown
 * (non-immediate); with immediate, all of them do. */
static void shutdown_get(bool immediate)
{
    struct blk_ctx c = {0};
    c.q = make(CTH_QUEUE_FIFO, 2);
    CHECK_OK(cth_queue_put(c.q, I2P(1), 0));
    CHECK_OK(cth_queue_put(c.q, I2P(2), 0));
    CHECK_OK(cth_queue_shutdown(c.q, immediate));
    cth_thread_t *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn(blk_get, &c);
    for (int i = 0; i < 3; i++)
        reap(t[i]);
    CHECK_EQ(atomic_load(&c.shutdowns), immediate ? 3 : 1);
    CHECK_EQ(atomic_load(&c.oks), immediate ? 0 : 2);
    cth_queue_free(c.q);
}

CTH_TEST(shutdown_get)
{
    shutdown_get(false);
}

CTH_TEST(shutdown_immediate_get)
{
    shutdown_get(true);
}

/* Wait until n threads are parked (the queue's waiter count is private:
 * give them time; the test does not depend on it for correctness). */
static void let_them_block(void)
{
    cth_sleep(0.1);
}

/* _shutdown_put(immediate): putters blocked on a full queue get ShutDown. */
static void shutdown_put(bool immediate)
{
    struct blk_ctx c = {0};
    c.q = make(CTH_QUEUE_FIFO, 2);
    CHECK_OK(cth_queue_put(c.q, I2P(1), 0));
    CHECK_OK(cth_queue_put(c.q, I2P(2), 0));
    cth_thread_t *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = spawn(blk_put, &c);
    let_them_block();
    CHECK_OK(cth_queue_shutdown(c.q, immediate));
    for (int i = 0; i < 2; i++)
        reap(t[i]);
    CHECK_EQ(atomic_load(&c.shutdowns), 2);
    CHECK_EQ(cth_queue_qsize(c.q), immediate ? 0 : 2);
    cth_queue_free(c.q);
}

CTH_TEST(shutdown_put)
{
    shutdown_put(false);
}

CTH_TEST(shutdown_immediate_put)
{
    shutdown_put(true);
}

/* _shutdown_join(immediate): joiners are released at once by an immediate
 * shutdown, only after the task_done calls otherwise. */
static void shutdown_join(bool immediate)
{
    struct blk_ctx c = {0};
    c.q = make(CTH_QUEUE_FIFO, 2);
    CHECK_OK(cth_queue_put(c.q, I2P(1), 0));
    CHECK_OK(cth_queue_put(c.q, I2P(2), 0));
    cth_thread_t *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = spawn(blk_join, &c);
    let_them_block();
    CHECK_OK(cth_queue_shutdown(c.q, immediate));
    if (!immediate) {
        cth_sleep(0.05);
        CHECK_EQ(atomic_load(&c.oks), 0); /* still joining */
        get_int(c.q, 0);
        get_int(c.q, 0);
        CHECK_OK(cth_queue_task_done(c.q));
        CHECK_OK(cth_queue_task_done(c.q));
    }
    for (int i = 0; i < 2; i++)
        reap(t[i]);
    CHECK_EQ(atomic_load(&c.oks), 2);
    cth_queue_free(c.q);
}

CTH_TEST(shutdown_join)
{
    shutdown_join(false);
}

CTH_TEST(shutdown_immediate_join)
{
    shutdown_join(true);
}

/* _shutdown_put_join(immediate): a blocked putter and a joiner; the putter
 * gets ShutDown, the joiner returns (at once, or after the task_done). */
static void shutdown_put_join(bool immediate)
{
    struct blk_ctx c = {0};
    c.q = make(CTH_QUEUE_FIFO, 2);
    CHECK_OK(cth_queue_put(c.q, I2P(1), 0));
    CHECK_OK(cth_queue_put(c.q, I2P(2), 0));
    cth_thread_t *p = spawn(blk_put, &c), *j = spawn(blk_join, &c);
    let_them_block();
    CHECK_OK(cth_queue_shutdown(c.q, immediate));
    reap(p);
    CHECK_EQ(atomic_load(&c.shutdowns), 1);
    if (!immediate) {
        for (int i = 0; i < 2; i++) {
            get_int(c.q, 0);
            CHECK_OK(cth_queue_task_done(c.q));
        }
    }
    reap(j);
    CHECK_EQ(atomic_load(&c.oks), 1);
    cth_queue_free(c.q);
}

CTH_TEST(shutdown_put_join)
{
    shutdown_put_join(false);
}

CTH_TEST(shutdown_immediate_put_join)
{
    shutdown_put_join(true);
}

static void *consume_until_shutdown(void *arg)
{
    struct blk_ctx *c = arg;
    void *p;
    int r;
    while ((r = cth_queue_get(c->q, &p, CTH_FOREVER)) == 0)
        CHECK_OK(cth_queue_task_done(c->q));
    CHECK_EQ(r, CTH_ESHUTDOWN);
    atomic_fetch_add(&c->shutdowns, 1);
    return NULL;
}

/* test_shutdown_get_task_done_join: 2 consumers and 2 joiners all complete
 * after a non-immediate shutdown. */
CTH_TEST(shutdown_get_task_done_join)
{
    struct blk_ctx c = {0};
    c.q = make(CTH_QUEUE_FIFO, 2);
    CHECK_OK(cth_queue_put(c.q, I2P(1), 0));
    CHECK_OK(cth_queue_put(c.q, I2P(2), 0));
    cth_thread_t *t[4];
    t[0] = spawn(blk_join, &c);
    t[1] = spawn(blk_join, &c);
    t[2] = spawn(consume_until_shutdown, &c);
    t[3] = spawn(consume_until_shutdown, &c);
    let_them_block();
    CHECK_OK(cth_queue_shutdown(c.q, false));
    for (int i = 0; i < 4; i++)
        reap(t[i]);
    CHECK_EQ(atomic_load(&c.oks), 2);
    CHECK_EQ(atomic_load(&c.shutdowns), 2);
    cth_queue_free(c.q);
}

/* test_shutdown_pending_get: a getter blocked on an empty queue wakes with
 * ShutDown. */
CTH_TEST(shutdown_pending_get)
{
    for (int imm = 0; imm < 2; imm++) {
        struct blk_ctx c = {0};
        c.q = make(CTH_QUEUE_FIFO, 0);
        cth_thread_t *t = spawn(blk_get, &c);
        let_them_block();
        CHECK_OK(cth_queue_shutdown(c.q, imm));
        reap(t);
        CHECK_EQ(atomic_load(&c.shutdowns), 1);
        cth_queue_free(c.q);
    }
}
