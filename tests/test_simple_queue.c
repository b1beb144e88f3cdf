/* SPDX-License-Identifier: MIT */
/*
 * test_simple_queue.c - SimpleQueue: CPython's test_queue.py
 * BaseSimpleQueueTest ported, plus the C guarantees: put from a signal
 * handler, allocation failure, segment recycling, CTH_EINTR.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "alloc.h"
#include "check.h"

#define I2P(i) ((void *)(intptr_t)(i))
#define P2I(p) ((long)(intptr_t)(p))

static cth_simple_queue_t *make(void)
{
    cth_simple_queue_t *q = NULL;
    CHECK_OK(cth_simple_queue_create(&q, NULL));
    return q;
}

static cth_thread_t *spawn(void *(*fn)(void *), void *arg)
{
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, fn, arg, NULL));
    CHECK_OK(cth_thread_start(t));
    return t;
}

static void reap(cth_thread_t *t)
{
    int r;
    /* An earlier interruption's signal may land during this wait: retry. */
    while ((r = cth_thread_join(t, NULL, CTH_FOREVER)) == CTH_EINTR)
        ;
    CHECK_OK(r);
    cth_thread_free(t);
}

static long get_int(cth_simple_queue_t *q, double timeout)
{
    void *p = I2P(-999);
    CHECK_OK(cth_simple_queue_get(q, &p, timeout));
    return P2I(p);
}

/* BaseSimpleQueueTest.test_basic: FIFO order, qsize/empty, every get form,
 * Empty on an empty queue. */
CTH_TEST(basic)
{
    cth_simple_queue_t *q = make();
    void *p;
    CHECK(cth_simple_queue_empty(q));
    CHECK_EQ(cth_simple_queue_qsize(q), 0);
    CHECK_OK(cth_simple_queue_put(q, I2P(1)));
    CHECK_EQ(cth_simple_queue_qsize(q), 1);
    CHECK(!cth_simple_queue_empty(q));
    CHECK_OK(cth_simple_queue_put(q, I2P(2)));
    CHECK_OK(cth_simple_queue_put(q, NULL)); /* None is an item too */
    CHECK_OK(cth_simple_queue_put(q, I2P(4)));
    CHECK_EQ(cth_simple_queue_qsize(q), 4);
    CHECK_EQ(get_int(q, CTH_FOREVER), 1);
    CHECK_EQ(get_int(q, 0), 2);
    CHECK_OK(cth_simple_queue_get_nowait(q, &p));
    CHECK(p == NULL);
    CHECK_EQ(get_int(q, 1.0), 4);
    CHECK(cth_simple_queue_empty(q));
    CHECK_EQ(cth_simple_queue_get(q, &p, 0), CTH_EAGAIN);
    CHECK_EQ(cth_simple_queue_get_nowait(q, &p), CTH_EAGAIN);
    double t0 = check_now();
    CHECK_EQ(cth_simple_queue_get(q, &p, 0.02), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.02);
    cth_simple_queue_free(q);
}

/* test_negative_timeout_raises_exception, and the other bad arguments. */
CTH_TEST(bad_arguments)
{
    cth_simple_queue_t *q = make();
    void *p;
    CHECK_OK(cth_simple_queue_put(q, I2P(1)));
    CHECK_EQ(cth_simple_queue_get(q, &p, -1.0 + 0.5), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_get(q, &p, -2), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_get(q, &p, NAN), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_get(q, &p, 1e300), CTH_EOVERFLOW);
    CHECK_EQ(cth_simple_queue_get(q, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_qsize(q), 1);
    CHECK_EQ(cth_simple_queue_create(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_put(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_get(NULL, &p, 0), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_get_nowait(NULL, &p), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_qsize(NULL), 0); /* a query: 0, never an error code */
    CHECK(cth_simple_queue_empty(NULL));
    cth_simple_queue_free(NULL);
    const cth_simple_queue_t *cq = q; /* the queries take a const queue */
    CHECK_EQ(cth_simple_queue_qsize(cq), 1);
    CHECK(!cth_simple_queue_empty(cq));
    cth_simple_queue_free(q);
}

/* The 0.1.0 signatures, checked at compile time. */
_Static_assert(_Generic(&cth_simple_queue_qsize, size_t (*)(const cth_simple_queue_t *) : 1,
                        default : 0),
               "size_t cth_simple_queue_qsize(const cth_simple_queue_t *)");
_Static_assert(_Generic(&cth_simple_queue_empty, bool (*)(const cth_simple_queue_t *) : 1,
                        default : 0),
               "bool cth_simple_queue_empty(const cth_simple_queue_t *)");
_Static_assert(_Generic(&cth_simple_queue_create,
                        int (*)(cth_simple_queue_t **, const cth_simple_queue_opts_t *) : 1,
                        default : 0),
               "cth_simple_queue_create(&q, opts)");
_Static_assert(_Generic(((cth_simple_queue_opts_t *)0)->free_item, cth_free_fn : 1, default : 0),
               "opts.free_item is a cth_free_fn");

struct order_ctx {
    cth_simple_queue_t *q;
    long n;
};

static void *order_producer(void *arg)
{
    struct order_ctx *c = arg;
    for (long i = 0; i < c->n; i++) {
        CHECK_OK(cth_simple_queue_put(c->q, I2P(i)));
        if (i % 97 == 0)
            cth_sleep(0);
    }
    return NULL;
}

/* test_order: one producer and one consumer keep the order (here across
 * many segments, so segment linking and recycling are covered too). */
CTH_TEST(order)
{
    struct order_ctx c = {make(), check_iters(20000)};
    cth_thread_t *t = spawn(order_producer, &c);
    for (long i = 0; i < c.n; i++)
        CHECK_EQ(get_int(c.q, CTH_FOREVER), i);
    reap(t);
    CHECK(cth_simple_queue_empty(c.q));
    cth_simple_queue_free(c.q);
}

/* ---- Empty only when empty ------------------------------------------------------ */

struct blocked_ctx {
    cth_simple_queue_t *q;
    _Atomic int started;
    long got;
};

static void *blocked_getter(void *arg)
{
    struct blocked_ctx *c = arg;
    atomic_store(&c->started, 1);
    c->got = get_int(c->q, CTH_FOREVER);
    return NULL;
}

/* Python's SimpleQueue: get raises Empty only when the queue is empty (block
 * False) or the timeout expired, never because another getter is blocked:
 * with one thread blocked in get() and two items put, get_nowait, get(0)
 * and a timed get each find an item (test_many_threads_nonblock's
 * premise). */
CTH_TEST(nowait_beside_blocked_getter)
{
    for (int round = 0; round < 50; round++) {
        for (int form = 0; form < 3; form++) {
            struct blocked_ctx c = {.q = make()};
            cth_thread_t *t = spawn(blocked_getter, &c);
            while (!atomic_load(&c.started))
                cth_sleep(0.0001);
            cth_sleep(0.002); /* most often it is asleep in get by now */
            CHECK_OK(cth_simple_queue_put(c.q, I2P(1)));
            CHECK_OK(cth_simple_queue_put(c.q, I2P(2)));
            void *p = NULL;
            if (form == 0)
                CHECK_OK(cth_simple_queue_get_nowait(c.q, &p));
            else
                CHECK_OK(cth_simple_queue_get(c.q, &p, form == 1 ? 0 : 5.0));
            reap(t);
            CHECK_EQ(P2I(p) + c.got, 3); /* one item each */
            CHECK(cth_simple_queue_empty(c.q));
            cth_simple_queue_free(c.q);
        }
    }
}

/* ---- test_many_threads (and _nonblock, _timeout) ---------------------------- */

enum { GET_BLOCK, GET_NONBLOCK, GET_TIMEOUT, GET_MIXED };

struct many_ctx {
    cth_simple_queue_t *q;
    long per_producer, total;
    int nprod, mode;
    _Atomic long taken;
    _Atomic unsigned char *seen;
};

static void *many_producer(void *arg)
{
    struct many_ctx *c = arg;
    static _Atomic int next_id;
    long base = atomic_fetch_add(&next_id, 1) % c->nprod * c->per_producer;
    for (long i = 0; i < c->per_producer; i++)
        CHECK_OK(cth_simple_queue_put(c->q, I2P(base + i)));
    return NULL;
}

static void *many_consumer(void *arg)
{
    struct many_ctx *c = arg;
    static _Atomic int next_consumer;
    int mode = c->mode == GET_MIXED ? atomic_fetch_add(&next_consumer, 1) % 3 : c->mode;
    for (;;) {
        void *p;
        int r;
        switch (mode) {
        case GET_BLOCK: r = cth_simple_queue_get(c->q, &p, CTH_FOREVER); break;
        case GET_NONBLOCK:
            r = cth_simple_queue_get_nowait(c->q, &p);
            if (r == CTH_EAGAIN) {
                cth_sleep(0);
                continue;
            }
            break;
        default:
            r = cth_simple_queue_get(c->q, &p, 0.01);
            if (r == CTH_ETIMEDOUT)
                continue;
            break;
        }
        CHECK_OK(r);
        long v = P2I(p);
        if (v < 0)
            return NULL; /* the sentinel */
        CHECK(v < c->total);
        CHECK_EQ(atomic_fetch_add(&c->seen[v], 1), 0);
        atomic_fetch_add(&c->taken, 1);
    }
}

/* 50 producers + 50 consumers; every item is delivered exactly once. */
static void many_threads(int mode, long total)
{
    struct many_ctx c = {.q = make(), .nprod = 50, .mode = mode};
    c.per_producer = total / 50;
    c.total = c.per_producer * 50;
    c.seen = calloc((size_t)c.total, 1);
    cth_thread_t *p[50], *g[50];
    for (int i = 0; i < 50; i++)
        g[i] = spawn(many_consumer, &c);
    for (int i = 0; i < 50; i++)
        p[i] = spawn(many_producer, &c);
    for (int i = 0; i < 50; i++)
        reap(p[i]);
    for (int i = 0; i < 50; i++)
        CHECK_OK(cth_simple_queue_put(c.q, I2P(-1)));
    for (int i = 0; i < 50; i++)
        reap(g[i]);
    CHECK_EQ(atomic_load(&c.taken), c.total);
    for (long i = 0; i < c.total; i++)
        CHECK_EQ(c.seen[i], 1);
    CHECK(cth_simple_queue_empty(c.q));
    free((void *)c.seen);
    cth_simple_queue_free(c.q);
}

CTH_TEST(many_threads)
{
    many_threads(GET_BLOCK, 10000);
}

CTH_TEST(many_threads_nonblock)
{
    many_threads(GET_NONBLOCK, 10000);
}

CTH_TEST(many_threads_timeout)
{
    many_threads(GET_TIMEOUT, 1000);
}

/* The three kinds of consumer together: the non-blocking and timed gets
 * take items while blocking getters sleep, and none is lost. */
CTH_TEST(many_threads_mixed)
{
    many_threads(GET_MIXED, 10000);
}

/* ---- the C guarantees ---------------------------------------------------------- */

static _Atomic int freed;
static void count_free(void *item)
{
    (void)item;
    atomic_fetch_add(&freed, 1);
}

/* Nothing is lost: freeing a non-empty queue hands its items to free_item. */
CTH_TEST(free_nonempty)
{
    cth_simple_queue_opts_t o = {.free_item = count_free};
    cth_simple_queue_t *q;
    CHECK_OK(cth_simple_queue_create(&q, &o));
    for (int i = 0; i < 3000; i++)
        CHECK_OK(cth_simple_queue_put(q, I2P(i)));
    CHECK_EQ(get_int(q, 0), 0);
    cth_simple_queue_free(q);
    CHECK_EQ(atomic_load(&freed), 2999);
}

/* A failed segment allocation is CTH_ENOMEM and leaves the queue consistent
 * (FailingQueueTest's spirit); so is a failed create. */
CTH_TEST(allocation_failure)
{
    cth_simple_queue_t *q = make();
    long n = 0;
    cth__fault_alloc_after(0);
    int r;
    while ((r = cth_simple_queue_put(q, I2P(n))) == 0)
        n++;
    CHECK_EQ(r, CTH_ENOMEM);
    CHECK(n > 100); /* the first segment filled */
    CHECK_EQ(cth_simple_queue_put(q, I2P(n)), CTH_ENOMEM);
    cth__fault_alloc_after(-1);
    CHECK_EQ(cth_simple_queue_qsize(q), n);
    CHECK_OK(cth_simple_queue_put(q, I2P(n)));
    CHECK_OK(cth_simple_queue_put(q, I2P(n + 1)));
    for (long i = 0; i < n + 2; i++)
        CHECK_EQ(get_int(q, 0), i);
    void *p;
    CHECK_EQ(cth_simple_queue_get(q, &p, 0), CTH_EAGAIN);
    cth_simple_queue_free(q);
    cth_simple_queue_t *q2;
    cth__fault_alloc_after(0);
    CHECK_EQ(cth_simple_queue_create(&q2, NULL), CTH_ENOMEM);
    cth__fault_alloc_after(1);
    CHECK_EQ(cth_simple_queue_create(&q2, NULL), CTH_ENOMEM);
    cth__fault_alloc_after(-1);
}

/* ---- put from a signal handler ----------------------------------------------------- */

static cth_simple_queue_t *sigq;
static _Atomic long sig_puts;

static void on_usr1(int sig)
{
    (void)sig;
    long k = atomic_fetch_add(&sig_puts, 1);
    if (cth_simple_queue_put(sigq, I2P(-1 - k)) != 0)
        abort();
}

struct sig_ctx {
    pthread_t target;
    _Atomic int stop;
    long sent;
};

static void *signaller(void *arg)
{
    struct sig_ctx *c = arg;
    while (!atomic_load(&c->stop)) {
        pthread_kill(c->target, SIGUSR1);
        c->sent++;
        cth_sleep(0.0001);
    }
    return NULL;
}

static void *sig_producer(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        CHECK_OK(cth_simple_queue_put(sigq, I2P(i)));
    return NULL;
}

/* A signal handler that puts, interrupting puts and gets of the same queue
 * in the thread it lands on: every item arrives, the thread's own items in
 * order, and nothing deadlocks. */
CTH_TEST(put_from_signal_handler)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigq = make();
    long n = check_iters(300000);
    struct sig_ctx c = {.target = pthread_self()};
    cth_thread_t *s = spawn(signaller, &c);
    /* Phase 1: the main thread puts while being signalled. */
    for (long i = 0; i < n; i++)
        CHECK_OK(cth_simple_queue_put(sigq, I2P(i)));
    /* Phase 2: another thread puts while the main thread gets (and is
     * signalled in the middle of its gets). */
    cth_thread_t *p = spawn(sig_producer, &n);
    long handler_items = 0;
    for (long got = 0; got < 2 * n;) {
        void *v;
        int r = cth_simple_queue_get(sigq, &v, CTH_FOREVER);
        if (r == CTH_EINTR)
            continue; /* a handler ran in the main thread's wait */
        CHECK_OK(r);
        long x = P2I(v);
        if (x < 0) {
            handler_items++;
            continue;
        }
        /* FIFO: the main thread's n items, then the producer's n. */
        CHECK_EQ(x, got < n ? got : got - n);
        got++;
    }
    atomic_store(&c.stop, 1);
    reap(s);
    reap(p);
    signal(SIGUSR1, SIG_IGN);
    void *v;
    while (cth_simple_queue_get(sigq, &v, 0) == 0) {
        CHECK(P2I(v) < 0);
        handler_items++;
    }
    CHECK_EQ(handler_items, atomic_load(&sig_puts));
    CHECK(atomic_load(&sig_puts) > 0);
    cth_simple_queue_free(sigq);
}

/* ---- CTH_EINTR ------------------------------------------------------------------- */

/* The main thread blocked in get wakes with CTH_EINTR on cth_interrupt_main. */
CTH_TEST(interrupt_main)
{
    struct sigaction sa = {0};
    sa.sa_handler = check_sigint_noop;
    sigaction(SIGINT, &sa, NULL);
    cth_simple_queue_t *q = make();
    void *p;
    double t0 = check_now(); /* before the interrupter's sleep begins */
    cth_thread_t *t = spawn(check_interrupter, NULL);
    CHECK_EQ(cth_simple_queue_get(q, &p, CTH_FOREVER), CTH_EINTR);
    CHECK_WAITED_AT_LEAST(t0, 0.1);
    reap(t);
    CHECK_OK(cth_simple_queue_put(q, I2P(5)));
    CHECK_EQ(get_int(q, 0), 5);
    cth_simple_queue_free(q);
}
