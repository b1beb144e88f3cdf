/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c - the thread pool, AsyncResult, map, starmap, parallel-for,
 * close/terminate/join, maxtasksperchild, initializer. Each test names the
 * CPython test of Lib/test/_test_multiprocessing.py (_TestPool, TYPE
 * 'threads') it mirrors. The imap iterators are in test_pool_imap.c.
 */
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define IV(x) ((void *)(intptr_t)(x))
#define VI(p) ((intptr_t)(p))

/* The 0.1.0 signatures, at compile time: outputs after inputs, the
 * timeout last, n before size, callbacks' context first, size_t counts. */
#define HAS_TYPE(x, type) _Generic((x), type : 1, default : 0)
_Static_assert(HAS_TYPE(&cth_result_get, int (*)(cth_result_t *, void **, double)),
               "cth_result_get(res, &value, timeout)");
_Static_assert(HAS_TYPE(&cth_pool_map_async,
                        int (*)(cth_pool_t *, cth_pool_fn, void *const *, size_t, size_t,
                                const cth_result_opts_t *, void **, cth_result_t **)),
               "cth_pool_map_async(pool, fn, items, n, chunksize, opts, results, &res)");
_Static_assert(HAS_TYPE(&cth_pool_starmap, int (*)(cth_pool_t *, cth_pool_fn, const void *, size_t,
                                                   size_t, size_t, void **)),
               "cth_pool_starmap(pool, fn, args, n, size, chunksize, results)");
_Static_assert(HAS_TYPE(&cth_pool_starmap_async,
                        int (*)(cth_pool_t *, cth_pool_fn, const void *, size_t, size_t, size_t,
                                const cth_result_opts_t *, void **, cth_result_t **)),
               "cth_pool_starmap_async(pool, fn, args, n, size, chunksize, opts, results, &res)");
_Static_assert(HAS_TYPE(&cth_pool_parallel_for,
                        int (*)(cth_pool_t *, cth_pool_for_fn, void *, size_t)),
               "cth_pool_parallel_for(pool, fn, arg, n)");
_Static_assert(HAS_TYPE(&cth_pool_size, size_t (*)(const cth_pool_t *)), "size_t pool_size");
_Static_assert(HAS_TYPE(&cth_result_successful, bool (*)(const cth_result_t *)), "bool successful");
_Static_assert(HAS_TYPE(&cth_result_task_error, int (*)(const cth_result_t *)),
               "int cth_result_task_error(const cth_result_t *)");
_Static_assert(HAS_TYPE((cth_pool_error_callback_fn)0, void (*)(void *, int)),
               "error_callback(cb_arg, err)");
_Static_assert(HAS_TYPE((cth_pool_callback_fn)0, void (*)(void *, void *)),
               "callback(cb_arg, value)");
_Static_assert(HAS_TYPE((cth_pool_initializer_fn)0, void (*)(void *)), "initializer(arg)");
_Static_assert(HAS_TYPE(((cth_pool_opts_t){0}).processes, size_t), "processes is a size_t");
_Static_assert(HAS_TYPE(((cth_pool_opts_t){0}).maxtasksperchild, size_t),
               "maxtasksperchild is a size_t");
_Static_assert(HAS_TYPE(((cth_pool_opts_t){0}).initializer, cth_pool_initializer_fn),
               "initializer is a cth_pool_initializer_fn");
_Static_assert(HAS_TYPE(((cth_result_opts_t){0}).error_callback, cth_pool_error_callback_fn),
               "cth_result_opts_t");

static int sqr(void *arg, void **result)
{
    intptr_t x = VI(arg);
    *result = IV(x * x);
    return 0;
}

/* sqr, but fails with -1000 - x for the x where x % 7 == 3 */
static int sqr_or_fail(void *arg, void **result)
{
    intptr_t x = VI(arg);
    if (x % 7 == 3)
        return (int)(-1000 - x);
    *result = IV(x * x);
    return 0;
}

/* fails with its argument as the value (0 succeeds, storing 0) */
static int return_arg(void *arg, void **result)
{
    *result = arg;
    return (int)VI(arg);
}

/* return_arg for starmap: the argument is a pointer to the item */
static int return_deref(void *arg, void **result)
{
    return return_arg(*(void **)arg, result);
}

static int sleepy(void *arg, void **result)
{
    cth_sleep((double)VI(arg) / 1000.0);
    *result = arg;
    return 0;
}

static int sleepy_uninterrupted(void *arg, void **result)
{
    CHECK_OK(cth_sleep((double)VI(arg) / 1000.0));
    *result = arg;
    return 0;
}

static cth_pool_t *make_pool(size_t n)
{
    cth_pool_t *p;
    cth_pool_opts_t o = {.processes = n};
    CHECK_OK(cth_pool_create(&p, &o));
    return p;
}

/* The CPUs the calling thread may run on: os.process_cpu_count(). */
static int process_cpu_count(void)
{
    cpu_set_t set;
    CHECK_OK(sched_getaffinity(0, sizeof set, &set));
    return CPU_COUNT(&set);
}

/* test_make_pool: the default is os.process_cpu_count(), 3 gives 3. In C,
 * processes 0 is the default (Python's None), not Python's ValueError, and
 * processes is a size_t, so no negative value exists: see pool.h. A count
 * no int holds is CTH_EOVERFLOW, before any thread starts. */
CTH_TEST(make_pool)
{
    cth_pool_t *p = NULL;
    cth_pool_opts_t o = {.processes = (size_t)INT_MAX + 1};
    CHECK_EQ(cth_pool_create(&p, &o), CTH_EOVERFLOW);
    o = (cth_pool_opts_t){.processes = SIZE_MAX}; /* what -1 turns into */
    CHECK_EQ(cth_pool_create(&p, &o), CTH_EOVERFLOW);
    CHECK(p == NULL);
    CHECK_EQ(cth_pool_create(NULL, NULL), CTH_EINVAL);
    /* test_pool_maxtasksperchild_invalid has no counterpart: a size_t;
     * SIZE_MAX is as good as unlimited */
    o = (cth_pool_opts_t){.processes = 1, .maxtasksperchild = SIZE_MAX};
    CHECK_OK(cth_pool_create(&p, &o));
    void *v = NULL;
    CHECK_OK(cth_pool_apply(p, sqr, IV(3), &v));
    CHECK_EQ(VI(v), 9);
    cth_pool_free(p);
    CHECK_OK(cth_pool_create(&p, NULL));
    CHECK_EQ(cth_pool_size(p), process_cpu_count());
    cth_pool_free(p);
    o = (cth_pool_opts_t){0};
    CHECK_OK(cth_pool_create(&p, &o));
    CHECK_EQ(cth_pool_size(p), process_cpu_count());
    cth_pool_free(p);
    p = make_pool(3);
    CHECK_EQ(cth_pool_size(p), 3);
    CHECK_EQ(cth_pool_size(NULL), 0); /* a query: NULL is 0 */
    cth_pool_free(p);
    cth_pool_free(NULL);
}

/* processes=None is os.process_cpu_count() (3.13), which respects the CPU
 * affinity: a thread allowed one CPU gets a pool of one worker. */
CTH_TEST(default_size_follows_affinity)
{
    cpu_set_t saved, one;
    CHECK_OK(sched_getaffinity(0, sizeof saved, &saved));
    int cpu = 0;
    while (!CPU_ISSET(cpu, &saved))
        cpu++;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) {
        CHECK_SKIP("sched_setaffinity refused");
    }
    cth_pool_t *p;
    CHECK_OK(cth_pool_create(&p, NULL));
    CHECK_OK(sched_setaffinity(0, sizeof saved, &saved));
    CHECK_EQ(cth_pool_size(p), 1);
    void *v = NULL;
    CHECK_OK(cth_pool_apply(p, sqr, IV(4), &v));
    CHECK_EQ(VI(v), 16);
    cth_pool_free(p);
}

/* test_apply */
CTH_TEST(apply)
{
    cth_pool_t *p = make_pool(2);
    void *v = NULL;
    CHECK_OK(cth_pool_apply(p, sqr, IV(5), &v));
    CHECK_EQ(VI(v), 25);
    CHECK_OK(cth_pool_apply(p, sqr, IV(7), NULL));
    CHECK_EQ(cth_pool_apply(p, sqr_or_fail, IV(3), &v), CTH_ETASK);
    CHECK_EQ(cth_task_error(), -1003);
    CHECK_EQ(cth_pool_apply(NULL, sqr, NULL, &v), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply(p, NULL, NULL, &v), CTH_EINVAL);
    CHECK_EQ(cth_task_error(), -1003); /* other errors leave it alone */
    cth_pool_free(p);
}

/* Any nonzero task return is the task's failure: -1 is CTH_ETASK (not
 * CTH_EPERM, which -1 happens to equal), a positive value fails too, and
 * the value, unchanged, is the thread's cth_task_error(); *result is left
 * alone by a failure. */
CTH_TEST(apply_task_error)
{
    cth_pool_t *p = make_pool(2);
    int values[] = {-1, 1, 42, INT_MIN, INT_MAX, CTH_ECANCELED, CTH_ETIMEDOUT};
    for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
        void *v = IV(-7);
        CHECK_EQ(cth_pool_apply(p, return_arg, IV(values[k]), &v), CTH_ETASK);
        CHECK_EQ(cth_task_error(), values[k]);
        CHECK_EQ(VI(v), -7);
    }
    CHECK(CTH_EPERM == -1 && CTH_ETASK != -1);
    void *v = IV(-7);
    CHECK_OK(cth_pool_apply(p, return_arg, IV(0), &v));
    CHECK_EQ(VI(v), 0);
    CHECK_EQ(cth_task_error(), CTH_ETIMEDOUT); /* success leaves it alone */
    cth_pool_free(p);
}

/* test_async: get waits for the task; ready/successful/wait */
CTH_TEST(apply_async)
{
    cth_pool_t *p = make_pool(2);
    cth_result_t *r;
    double t0 = check_now();
    CHECK_OK(cth_pool_apply_async(p, sleepy, IV(200), NULL, &r));
    CHECK(!cth_result_ready(r));
    CHECK(!cth_result_successful(r)); /* Python: ValueError "not ready" */
    CHECK_EQ(cth_result_task_error(r), 0);
    void *v = NULL;
    CHECK_OK(cth_result_get(r, &v, CTH_FOREVER));
    CHECK_WAITED_AT_LEAST(t0, 0.2);
    CHECK_EQ(VI(v), 200);
    CHECK(cth_result_ready(r));
    CHECK(cth_result_successful(r));
    CHECK_EQ(cth_result_task_error(r), 0);
    CHECK_OK(cth_result_wait(r, 0));
    CHECK_OK(cth_result_get(r, NULL, 0)); /* again, any number of times */
    cth_result_free(r);
    CHECK_EQ(cth_pool_apply_async(p, sqr, NULL, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_async(NULL, sqr, NULL, NULL, &r), CTH_EINVAL);
    CHECK_EQ(cth_result_get(NULL, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_result_wait(NULL, 0), CTH_EINVAL);
    CHECK(!cth_result_successful(NULL));
    CHECK_EQ(cth_result_task_error(NULL), 0);
    CHECK(!cth_result_ready(NULL));
    cth_result_free(NULL);
    cth_pool_free(p);
}

/* test_async_timeout: get(timeout) gives TimeoutError after the timeout */
CTH_TEST(apply_async_timeout)
{
    cth_pool_t *p = make_pool(2);
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_async(p, sleepy, IV(500), NULL, &r));
    double t0 = check_now();
    CHECK_EQ(cth_result_get(r, NULL, 0.2), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.2);
    CHECK_EQ(cth_result_wait(r, 0), CTH_ETIMEDOUT);
    CHECK_EQ(cth_result_get(r, NULL, -2), CTH_EINVAL);
    CHECK_EQ(cth_result_get(r, NULL, NAN), CTH_EINVAL);
    CHECK_EQ(cth_result_wait(r, 1e300), CTH_EOVERFLOW);
    cth_result_free(r); /* freed while pending: the task runs on */
    cth_pool_free(p);
}

struct cbs {
    _Atomic int ok, fail;
    _Atomic intptr_t value;
    _Atomic int err;
    _Atomic int task_error; /* cth_task_error() inside error_callback */
};

static void on_ok(void *cb_arg, void *value)
{
    struct cbs *c = cb_arg;
    atomic_store(&c->value, VI(value));
    atomic_fetch_add(&c->ok, 1);
}

static void on_fail(void *cb_arg, int err)
{
    struct cbs *c = cb_arg;
    atomic_store(&c->err, err);
    atomic_store(&c->task_error, cth_task_error());
    atomic_fetch_add(&c->fail, 1);
}

/* The calling worker's thread id, for a test that looks at its state. */
static _Atomic pid_t worker_tid;
static int note_tid(void *arg, void **result)
{
    atomic_store(&worker_tid, (pid_t)syscall(SYS_gettid));
    *result = arg;
    return 0;
}

/* A thread's scheduling state (/proc: 'R' running or runnable, 'S'
 * asleep), or 0. */
static char thread_state(pid_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *end = strrchr(buf, ')'); /* the name may hold anything */
    return end && end[1] == ' ' ? end[2] : 0;
}

/* A worker spinning for work leaves its CPU to a thread that waits for
 * it (the submitter, where they share one): it yields every few pauses.
 * On one CPU, the caller polls its result (runnable, not sleeping); the
 * worker runs the task, then spins; the caller gets the CPU back while the
 * worker still spins (runnable), not once it has given up and parked. */
CTH_TEST(spinning_worker_yields_cpu)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("valgrind runs one thread at a time");
    cpu_set_t saved, one;
    CHECK_OK(sched_getaffinity(0, sizeof saved, &saved));
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0)
        CHECK_SKIP("sched_setaffinity refused");
    cth_pool_t *p = make_pool(1); /* its worker inherits the one CPU */
    int runnable = 0, rounds = 9;
    for (int i = 0; i < rounds; i++) {
        cth_sleep(0.002); /* the worker parks */
        cth_result_t *r;
        CHECK_OK(cth_pool_apply_async(p, note_tid, NULL, NULL, &r));
        while (!cth_result_ready(r))
            ;
        runnable += thread_state(atomic_load(&worker_tid)) == 'R';
        cth_result_free(r);
    }
    cth_pool_free(p);
    CHECK_OK(sched_setaffinity(0, sizeof saved, &saved));
    CHECK(runnable > rounds / 2);
}

/* _TestPoolWorkerErrors.test_async_error_callback, and callbacks of
 * apply_async: exactly one of them runs, before the result is ready */
CTH_TEST(apply_async_callbacks)
{
    cth_pool_t *p = make_pool(2);
    struct cbs c = {0};
    cth_result_opts_t o = {.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_async(p, sqr, IV(6), &o, &r));
    CHECK_OK(cth_result_wait(r, CTH_FOREVER));
    CHECK_EQ(c.ok, 1);
    CHECK_EQ(c.fail, 0);
    CHECK_EQ(c.value, 36);
    cth_result_free(r);
    CHECK_OK(cth_pool_apply_async(p, sqr_or_fail, IV(10), &o, &r));
    void *v = IV(-7);
    CHECK_EQ(cth_result_get(r, &v, CTH_FOREVER), CTH_ETASK);
    CHECK_EQ(VI(v), -7);               /* a failure sets no value */
    CHECK_EQ(cth_task_error(), -1010); /* get re-raises: the blocking call */
    CHECK_EQ(cth_result_task_error(r), -1010);
    CHECK(!cth_result_successful(r));
    CHECK_EQ(c.ok, 1);
    CHECK_EQ(c.fail, 1);
    CHECK_EQ(c.err, CTH_ETASK);
    CHECK_EQ(c.task_error, -1010); /* cth_task_error() inside the callback */
    cth_result_free(r);
    /* the pool keeps working after a failure */
    CHECK_OK(cth_pool_apply(p, sqr, IV(4), &v));
    CHECK_EQ(VI(v), 16);
    cth_pool_free(p);
}

/* Results are recycled: an apply_async without callbacks whose memory
 * served an async map's and a failed apply's, both with callbacks, runs
 * none of theirs and reports its own value (it clears only the fields an
 * apply reads: pool_internal.h). */
CTH_TEST(apply_async_recycled_result)
{
    cth_pool_t *p = make_pool(1);
    struct cbs c = {0};
    cth_result_opts_t o = {.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
    void *items[3] = {IV(1), IV(2), IV(3)};
    void *out[3];
    for (int round = 0; round < 3; round++) {
        cth_result_t *r;
        CHECK_OK(cth_pool_map_async(p, sqr, items, 3, 1, &o, out, &r));
        CHECK_OK(cth_result_wait(r, CTH_FOREVER));
        cth_result_free(r);
        CHECK_OK(cth_pool_apply_async(p, sqr_or_fail, IV(10), &o, &r));
        CHECK_OK(cth_result_wait(r, CTH_FOREVER));
        cth_result_free(r);
        CHECK_OK(cth_pool_apply_async(p, sqr, IV(5), NULL, &r));
        void *v = NULL;
        CHECK_OK(cth_result_get(r, &v, CTH_FOREVER));
        CHECK_EQ(VI(v), 25);
        CHECK_EQ(cth_result_task_error(r), 0);
        cth_result_free(r);
    }
    CHECK_EQ(c.ok, 3);
    CHECK_EQ(c.fail, 3);
    cth_pool_free(p);
}

/* Bytes malloc holds in mappings of their own (the pool's ring is one), or
 * 0 where malloc does not say (a sanitizer's, another C library's). */
static size_t malloc_mapped_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    return mallinfo2().hblkhd;
#else
    return 0;
#endif
}

static int wait_for_event(void *arg, void **result)
{
    *result = NULL;
    return cth_event_wait(arg, CTH_FOREVER) == 0 ? 0 : 1;
}

struct result_frees {
    cth_result_t **r;
    size_t n;
};

static void *free_results(void *arg)
{
    struct result_frees *f = arg;
    for (size_t i = 0; i < f->n; i++)
        cth_result_free(f->r[i]);
    return NULL;
}

/* A thread keeps the results it frees for its next apply_async (src/pool.c),
 * and gives them back as it ends, or when the pool is freed or already
 * was: the pool's memory goes with its last result all the same (its ring
 * is a mapping of its own here, which the test watches). */
CTH_TEST(results_memory_goes_with_the_pool)
{
    size_t before = malloc_mapped_bytes();
    cth_pool_t *p = make_pool(2);
    if (malloc_mapped_bytes() <= before)
        CHECK_SKIP("malloc does not report the pool's mapping");
    enum { N = 100 };
    static cth_result_t *r[3][N];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N; i++)
            CHECK_OK(cth_pool_apply_async(p, sqr, IV(i), NULL, &r[k][i]));
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N; i++)
            CHECK_OK(cth_result_wait(r[k][i], CTH_FOREVER));
    /* one freed before it completes: its completer frees it */
    cth_event_t go;
    CHECK_OK(cth_event_init(&go));
    cth_result_t *pending;
    CHECK_OK(cth_pool_apply_async(p, wait_for_event, &go, NULL, &pending));
    cth_result_free(pending);
    CHECK_OK(cth_event_set(&go));
    struct result_frees ours = {r[0], N}, foreign = {r[1], N};
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, free_results, &ours, NULL));
    CHECK_OK(cth_thread_start(t));
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    pthread_t pt;
    CHECK_EQ(pthread_create(&pt, NULL, free_results, &foreign), 0);
    CHECK_EQ(pthread_join(pt, NULL), 0);
    cth_pool_free(p);
    CHECK(malloc_mapped_bytes() > before); /* the results still out hold it */
    for (int i = 0; i < N; i++) {
        void *v;
        CHECK_OK(cth_result_get(r[2][i], &v, 0));
        CHECK_EQ(VI(v), (intptr_t)i * i);
        cth_result_free(r[2][i]);
    }
    CHECK_EQ(malloc_mapped_bytes(), before);
}

struct pool_pair {
    cth_pool_t *pools[2];
    _Atomic int bad;
};

static void *apply_on_both(void *arg)
{
    struct pool_pair *pp = arg;
    cth_result_t *r[40];
    for (int round = 0; round < 200; round++) {
        cth_pool_t *p = pp->pools[round % 2];
        for (int i = 0; i < 40; i++)
            if (cth_pool_apply_async(p, sqr, IV(round + i), NULL, &r[i]) != 0)
                atomic_store(&pp->bad, 1);
        for (int i = 0; i < 40; i++) {
            void *v = NULL;
            if (cth_result_get(r[i], &v, CTH_FOREVER) != 0 ||
                VI(v) != (intptr_t)(round + i) * (round + i))
                atomic_store(&pp->bad, 1);
            cth_result_free(r[i]);
        }
    }
    return NULL;
}

/* Threads that take and free results of two pools in turn (their caches
 * change pools) each get their own, intact. */
CTH_TEST(results_of_two_pools_from_threads)
{
    struct pool_pair pp = {{make_pool(2), make_pool(1)}, 0};
    cth_thread_t *t[4];
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cth_thread_create(&t[i], apply_on_both, &pp, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    apply_on_both(&pp);
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    CHECK_EQ(atomic_load(&pp.bad), 0);
    cth_pool_free(pp.pools[0]);
    cth_pool_free(pp.pools[1]);
}

static int count_run(void *arg, void **result)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    *result = NULL;
    return 0;
}

struct racer {
    cth_pool_t *pool;
    _Atomic int *ran;
    cth_result_t *r[20000];
    size_t n;
    int refused; /* the error that stopped it */
};

static void *submit_until_refused(void *arg)
{
    struct racer *s = arg;
    while (s->n < sizeof s->r / sizeof s->r[0] &&
           (s->refused = cth_pool_apply_async(s->pool, count_run, s->ran, NULL, &s->r[s->n])) == 0)
        s->n++;
    return NULL;
}

/* apply_async racing close or terminate (the ring's closing, src/pool.c):
 * every call either is refused with CTH_EINVAL or gets a result that
 * completes; after close each accepted task runs, after terminate it runs
 * or is cancelled; and join returns. */
CTH_TEST(apply_async_racing_close_and_terminate)
{
    static struct racer racers[3];
    for (int round = 0; round < 8; round++) {
        bool terminate = round % 2;
        cth_pool_t *p = make_pool(2);
        _Atomic int ran = 0;
        cth_thread_t *t[3];
        for (int i = 0; i < 3; i++) {
            racers[i] = (struct racer){.pool = p, .ran = &ran};
            CHECK_OK(cth_thread_create(&t[i], submit_until_refused, &racers[i], NULL));
            CHECK_OK(cth_thread_start(t[i]));
        }
        CHECK_OK(cth_sleep(0.0005 * (round + 1)));
        CHECK_OK(terminate ? cth_pool_terminate(p) : cth_pool_close(p));
        int accepted = 0, done = 0;
        for (int i = 0; i < 3; i++) {
            CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
            cth_thread_free(t[i]);
            CHECK(racers[i].refused == CTH_EINVAL || racers[i].n == 20000);
            for (size_t k = 0; k < racers[i].n; k++) {
                int err = cth_result_get(racers[i].r[k], NULL, 30);
                CHECK(err == 0 || (terminate && err == CTH_ECANCELED));
                done += err == 0;
                cth_result_free(racers[i].r[k]);
            }
            accepted += (int)racers[i].n;
        }
        CHECK_OK(cth_pool_join(p, 30));
        CHECK_EQ(atomic_load(&ran), done);
        if (!terminate)
            CHECK_EQ(done, accepted);
        cth_pool_free(p);
    }
}

/* test_map: equals a sequential map; 100 items with chunksize 20 */
CTH_TEST(map)
{
    cth_pool_t *p = make_pool(4);
    enum { N = 100 };
    void *items[N], *res[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    size_t chunks[] = {0, 1, 20, 7, 1000, SIZE_MAX}; /* any size: one chunk */
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        memset(res, 0, sizeof res);
        CHECK_OK(cth_pool_map(p, sqr, items, N, chunks[k], res));
        for (int i = 0; i < N; i++)
            CHECK_EQ(VI(res[i]), i * i);
    }
    CHECK_OK(cth_pool_map(p, sqr, items, N, 0, NULL)); /* results not wanted */
    CHECK_EQ(cth_pool_map(p, NULL, items, N, 0, res), CTH_EINVAL);
    CHECK_EQ(cth_pool_map(p, sqr, NULL, N, 0, res), CTH_EINVAL);
    CHECK_EQ(cth_pool_map(NULL, sqr, items, N, 0, res), CTH_EINVAL);
    cth_pool_free(p);
}

/* errors in tasks: map returns CTH_ETASK, a failing task's value in
 * cth_task_error(); -1 and positive returns are failures too; the pool
 * keeps working */
CTH_TEST(map_error)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 50 };
    void *items[N], *res[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    CHECK_EQ(cth_pool_map(p, sqr_or_fail, items, N, 1, res), CTH_ETASK);
    int value = cth_task_error();
    CHECK(value <= -1003 && value >= -1000 - N && (-1000 - value) % 7 == 3);
    /* one failing item among successes: -1, then a positive value */
    int values[] = {-1, 17};
    for (size_t k = 0; k < 2; k++) {
        for (int i = 0; i < N; i++)
            items[i] = IV(i == 30 ? values[k] : 0);
        for (size_t cs = 0; cs < 3; cs++) { /* chunksize 0 (computed), 1, 2 */
            CHECK_EQ(cth_pool_map(p, return_arg, items, N, cs, res), CTH_ETASK);
            CHECK_EQ(cth_task_error(), values[k]);
        }
        /* starmap over the same pointers as structs of one member */
        CHECK_EQ(cth_pool_starmap(p, return_deref, items, N, sizeof items[0], 0, res), CTH_ETASK);
        CHECK_EQ(cth_task_error(), values[k]);
    }
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    CHECK_OK(cth_pool_map(p, sqr, items, N, 1, res));
    CHECK_EQ(VI(res[N - 1]), (N - 1) * (N - 1));
    cth_pool_free(p);
}

/* sqr, but 5 stores nothing and 30 stores 99 and fails with 17 */
static int sqr_silent_or_fail(void *arg, void **result)
{
    intptr_t x = VI(arg);
    if (x == 5)
        return 0;
    *result = IV(x == 30 ? 99 : x * x);
    return x == 30 ? 17 : 0;
}

static int sqr_silent_or_fail_deref(void *arg, void **result)
{
    return sqr_silent_or_fail(*(void **)arg, result);
}

/* the slots map and starmap leave: a task that stores nothing leaves NULL,
 * a failing task's slot is NULL whatever it stored, the rest their values */
CTH_TEST(map_result_slots)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 40 };
    void *items[N], *res[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    for (int star = 0; star < 2; star++) {
        for (int i = 0; i < N; i++)
            res[i] = IV(-5);
        if (star)
            CHECK_EQ(
                cth_pool_starmap(p, sqr_silent_or_fail_deref, items, N, sizeof items[0], 1, res),
                CTH_ETASK);
        else
            CHECK_EQ(cth_pool_map(p, sqr_silent_or_fail, items, N, 1, res), CTH_ETASK);
        CHECK_EQ(cth_task_error(), 17);
        for (int i = 0; i < N; i++)
            CHECK_EQ(VI(res[i]), i == 5 || i == 30 ? 0 : i * i);
    }
    cth_pool_free(p);
}

/* map and starmap in place (results over items): each task gets its item,
 * and its slot then holds its value (NULL if it stored nothing) */
CTH_TEST(map_in_place)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 40 };
    void *items[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    CHECK_OK(cth_pool_map(p, sqr, items, N, 3, items));
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(items[i]), i * i);
    /* starmap over args of one pointer each, whose args are its slot (in
     * chunks of 3: 30 fails, and 31 and 32 do not run) */
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    CHECK_EQ(cth_pool_starmap(p, sqr_silent_or_fail_deref, items, N, sizeof items[0], 3, items),
             CTH_ETASK);
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(items[i]), i == 5 || i == 30 ? 0 : i == 31 || i == 32 ? i : i * i);
    cth_pool_free(p);
}

static _Atomic intptr_t fail_item = -1;

enum { BIG_N = 4000 };
static _Atomic int calls_of[BIG_N]; /* calls per item */
static _Atomic int dirty_slots;     /* calls that found their slot not NULL */

/* x * x + 1; stores nothing for other multiples of 7; fails (after
 * storing) at fail_item. Counts its calls per item, and the calls whose
 * slot was not cleared. */
static int sqr1_silent_or_fail_at(void *arg, void **result)
{
    intptr_t x = VI(arg);
    if (x >= 0 && x < BIG_N)
        atomic_fetch_add(&calls_of[x], 1);
    if (*result)
        atomic_fetch_add(&dirty_slots, 1);
    if (x % 7 == 0 && x != atomic_load(&fail_item))
        return 0;
    *result = IV(x * x + 1);
    return x == atomic_load(&fail_item) ? 23 : 0;
}

static int sqr1_silent_or_fail_at_deref(void *arg, void **result)
{
    return sqr1_silent_or_fail_at(*(void **)arg, result);
}

/* Every item of a map ran once, but those after fail_item in its chunk
 * (chunk_end: the end of that chunk), which did not run; each found its
 * slot cleared. Resets the counts. */
static void check_calls(intptr_t at, intptr_t chunk_end)
{
    for (intptr_t i = 0; i < BIG_N; i++) {
        int want = i > at && i < chunk_end ? 0 : 1;
        if (atomic_load(&calls_of[i]) != want)
            CHECK_EQ(atomic_load(&calls_of[i]), want);
        atomic_store(&calls_of[i], 0);
    }
    CHECK_EQ(atomic_load(&dirty_slots), 0);
}

/* The same slots over big chunks, which run their items a cache line at a
 * time: a failure at each place of a line, and in the chunk's last items,
 * stops that chunk there (its later slots untouched) and no other; every
 * other item runs exactly once, its slot cleared first; and a big chunk in
 * place reads each item before its slot is written. For map (with and
 * without results), and for starmap over structs of three pointers. */
CTH_TEST(map_result_slots_big_chunks)
{
    cth_pool_t *p = make_pool(2);
    enum { N = BIG_N, CHUNK = 1000 };
    static void *items[N], *res[N];
    static struct {
        void *x, *pad[2];
    } args[N];
    for (int i = 0; i < N; i++)
        items[i] = args[i].x = IV(i);
    const intptr_t fails[] = {-1,  0,   1,   2,   3,    4,    5,    6,    7,    13,   517,
                              743, 744, 998, 999, 1000, 1001, 1263, 1735, 2999, N - 1};
    for (int star = 0; star < 2; star++) {
        for (size_t f = 0; f < sizeof fails / sizeof fails[0]; f++) {
            intptr_t at = fails[f];
            atomic_store(&fail_item, at);
            for (int i = 0; i < N; i++)
                res[i] = IV(-5);
            if (star)
                CHECK_EQ(cth_pool_starmap(p, sqr1_silent_or_fail_at_deref, args, N, sizeof args[0],
                                          CHUNK, res),
                         at < 0 ? 0 : CTH_ETASK);
            else
                CHECK_EQ(cth_pool_map(p, sqr1_silent_or_fail_at, items, N, CHUNK, res),
                         at < 0 ? 0 : CTH_ETASK);
            intptr_t chunk_end = at < 0 ? -1 : (at / CHUNK + 1) * CHUNK;
            for (intptr_t i = 0; i < N; i++) {
                intptr_t want = i % 7 == 0 || i == at ? 0 : i * i + 1;
                if (i > at && i < chunk_end)
                    want = -5;
                if (VI(res[i]) != want)
                    CHECK_EQ(VI(res[i]), want);
            }
            check_calls(at, chunk_end);
        }
    }
    atomic_store(&fail_item, 1735);
    CHECK_EQ(cth_pool_map(p, sqr1_silent_or_fail_at, items, N, CHUNK, NULL), CTH_ETASK);
    check_calls(1735, 2000);
    atomic_store(&fail_item, -1);
    CHECK_OK(cth_pool_map(p, sqr1_silent_or_fail_at, items, N, CHUNK, NULL));
    check_calls(-1, -1);
    CHECK_OK(cth_pool_map(p, sqr1_silent_or_fail_at, items, N, CHUNK, items));
    for (intptr_t i = 0; i < N; i++)
        if (VI(items[i]) != (i % 7 == 0 ? 0 : i * i + 1))
            CHECK_EQ(VI(items[i]), i % 7 == 0 ? 0 : i * i + 1);
    check_calls(-1, -1);
    cth_pool_free(p);
}

static _Atomic int slept;

static int fail_fast_or_sleep(void *arg, void **result)
{
    (void)result;
    if (VI(arg) == 0)
        return -77;
    cth_sleep(0.1);
    atomic_fetch_add(&slept, 1);
    return 0;
}

/* test_map_no_failfast: map returns the failure only after every task has
 * finished; close and join do not deadlock afterwards */
CTH_TEST(map_no_failfast)
{
    cth_pool_t *p = make_pool(2);
    void *items[4] = {IV(0), IV(1), IV(2), IV(3)};
    double t0 = check_now();
    CHECK_EQ(cth_pool_map(p, fail_fast_or_sleep, items, 4, 1, NULL), CTH_ETASK);
    CHECK_EQ(cth_task_error(), -77);
    CHECK_EQ(atomic_load(&slept), 3); /* the caller may run tasks too */
    CHECK_WAITED_AT_LEAST(t0, 0.1);
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    cth_pool_free(p);
}

/* test_map_async and test_map_async_callbacks: get returns the list; the
 * callback gets it, error_callback gets the failure, once each */
CTH_TEST(map_async)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 30 };
    void *items[N], *res[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    struct cbs c = {0};
    cth_result_opts_t o = {.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
    cth_result_t *r;
    CHECK_OK(cth_pool_map_async(p, sqr, items, N, 0, &o, res, &r));
    void *v = NULL;
    CHECK_OK(cth_result_get(r, &v, CTH_FOREVER));
    CHECK(v == (void *)res);
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(res[i]), i * i);
    CHECK_EQ(c.ok, 1);
    CHECK_EQ(c.fail, 0);
    CHECK_EQ(c.value, VI(res));
    cth_result_free(r);
    CHECK_OK(cth_pool_map_async(p, sqr_or_fail, items, N, 2, &o, res, &r));
    CHECK_EQ(cth_result_get(r, &v, CTH_FOREVER), CTH_ETASK);
    int value = cth_result_task_error(r);
    CHECK(value <= -1003 && (-1000 - value) % 7 == 3);
    CHECK_EQ(cth_task_error(), value); /* the recorded one, for get too */
    CHECK(!cth_result_successful(r));
    CHECK_EQ(c.ok, 1);
    CHECK_EQ(c.fail, 1);
    CHECK_EQ(c.err, CTH_ETASK);
    CHECK_EQ(c.task_error, value);
    cth_result_free(r);
    /* a single failure returning -1, then a positive value: the value
     * comes through unchanged, for starmap_async too */
    int values[] = {-1, 3};
    for (size_t k = 0; k < 2; k++) {
        void *fail_items[N];
        for (int i = 0; i < N; i++)
            fail_items[i] = IV(i == N - 1 ? values[k] : 0);
        c = (struct cbs){0};
        CHECK_OK(cth_pool_map_async(p, return_arg, fail_items, N, 0, &o, res, &r));
        CHECK_EQ(cth_result_get(r, NULL, CTH_FOREVER), CTH_ETASK);
        CHECK_EQ(cth_result_task_error(r), values[k]);
        CHECK_EQ(c.err, CTH_ETASK);
        CHECK_EQ(c.task_error, values[k]);
        cth_result_free(r);
        CHECK_OK(cth_pool_starmap_async(p, return_deref, fail_items, N, sizeof fail_items[0], 0,
                                        NULL, res, &r));
        CHECK_OK(cth_result_wait(r, CTH_FOREVER));
        CHECK_EQ(cth_result_task_error(r), values[k]);
        cth_result_free(r);
    }
    CHECK_EQ(cth_pool_map_async(p, sqr, items, N, 0, &o, res, NULL), CTH_EINVAL);
    cth_pool_free(p);
}

/* test_empty_iterable and test_map_chunksize: map and map_async of []
 * complete at once, with chunksize 1 too */
CTH_TEST(map_empty)
{
    cth_pool_t *p = make_pool(2);
    struct cbs c = {0};
    cth_result_opts_t o = {.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
    CHECK_OK(cth_pool_map(p, sqr, NULL, 0, 0, NULL));
    cth_result_t *r;
    CHECK_OK(cth_pool_map_async(p, sqr, NULL, 0, 1, &o, NULL, &r));
    CHECK(cth_result_ready(r));
    CHECK_OK(cth_result_get(r, NULL, 0));
    CHECK_EQ(c.ok, 1);
    cth_result_free(r);
    cth_pool_free(p);
}

struct pair {
    int a, b;
};

static int mul(void *arg, void **result)
{
    struct pair *pr = arg;
    *result = IV(pr->a * pr->b);
    return 0;
}

/* test_starmap / test_starmap_async: tuples unpacked, order kept */
CTH_TEST(starmap)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 40 };
    struct pair args[N];
    void *res[N];
    for (int i = 0; i < N; i++)
        args[i] = (struct pair){i, i + 1};
    CHECK_OK(cth_pool_starmap(p, mul, args, N, sizeof args[0], 3, res));
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(res[i]), i * (i + 1));
    memset(res, 0, sizeof res);
    cth_result_t *r;
    CHECK_OK(cth_pool_starmap_async(p, mul, args, N, sizeof args[0], 0, NULL, res, &r));
    CHECK_OK(cth_result_get(r, NULL, CTH_FOREVER));
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(res[i]), i * (i + 1));
    cth_result_free(r);
    CHECK_EQ(cth_pool_starmap(p, mul, args, N, 0, 3, res), CTH_EINVAL);
    CHECK_EQ(cth_pool_starmap_async(p, mul, args, N, 0, 3, NULL, res, &r), CTH_EINVAL);
    cth_pool_free(p);
}

static _Atomic int gate, gate_started;

/* counts itself started, then waits until the gate opens */
static int gated(void *arg, void **result)
{
    atomic_fetch_add(&gate_started, 1);
    while (!atomic_load(&gate))
        cth_sleep(0.001);
    *result = arg;
    return 0;
}

/* Wait until n gated tasks have started. */
static void wait_started(int n)
{
    while (atomic_load(&gate_started) < n)
        cth_sleep(0.001);
}

/* The order in which recorded tasks ran. */
static intptr_t *ran;
static _Atomic size_t nran;

static int record_order(void *arg, void **result)
{
    ran[atomic_fetch_add(&nran, 1)] = VI(arg);
    *result = arg;
    return 0;
}

/* More lone tasks than the lock-free ring holds (2^18), twice, behind a
 * task that holds the only worker: the ring fills, the rest go to the
 * queue, the ring's cells are reused lap after lap, and the one worker runs
 * them all in submission order. */
CTH_TEST(apply_async_fills_the_ring)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("600k tasks are too slow under valgrind");
    enum { N = 300000 };
    cth_pool_t *p = make_pool(1);
    cth_result_t **r = malloc(N * sizeof *r);
    ran = malloc(N * sizeof *ran);
    CHECK(r && ran);
    for (int round = 0; round < 2; round++) {
        atomic_store(&gate, 0);
        atomic_store(&gate_started, 0);
        atomic_store(&nran, 0);
        cth_result_t *held;
        CHECK_OK(cth_pool_apply_async(p, gated, NULL, NULL, &held));
        wait_started(1);
        for (intptr_t i = 0; i < N; i++)
            CHECK_OK(cth_pool_apply_async(p, record_order, IV(i), NULL, &r[i]));
        atomic_store(&gate, 1);
        CHECK_OK(cth_result_get(held, NULL, CTH_FOREVER));
        cth_result_free(held);
        for (intptr_t i = 0; i < N; i++) {
            void *v = NULL;
            CHECK_OK(cth_result_get(r[i], &v, CTH_FOREVER));
            CHECK_EQ(VI(v), i);
            cth_result_free(r[i]);
        }
        CHECK_EQ(atomic_load(&nran), (size_t)N);
        for (intptr_t i = 0; i < N; i++)
            CHECK_EQ(ran[i], i);
    }
    free(ran);
    free(r);
    cth_pool_free(p);
}

/* apply_async of tasks returning -1 and a positive value: CTH_ETASK, the
 * value on the result and in error_callback's cth_task_error(); the value
 * is the result's own, whoever reads it, and a result not yet ready has
 * none. */
CTH_TEST(apply_async_task_error)
{
    cth_pool_t *p = make_pool(2);
    int values[] = {-1, 1, 1000};
    for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
        struct cbs c = {0};
        cth_result_opts_t o = {.error_callback = on_fail, .cb_arg = &c};
        cth_result_t *r;
        CHECK_OK(cth_pool_apply_async(p, return_arg, IV(values[k]), &o, &r));
        CHECK_OK(cth_result_wait(r, CTH_FOREVER));
        CHECK_EQ(cth_result_task_error(r), values[k]);
        CHECK(!cth_result_successful(r));
        CHECK_EQ(c.fail, 1);
        CHECK_EQ(c.err, CTH_ETASK);
        CHECK_EQ(c.task_error, values[k]);
        CHECK_EQ(cth_result_get(r, NULL, 0), CTH_ETASK);
        CHECK_EQ(cth_task_error(), values[k]);
        cth_result_free(r);
    }
    /* not ready: no value yet, not successful */
    atomic_store(&gate, 0);
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_async(p, gated, IV(5), NULL, &r));
    CHECK(!cth_result_ready(r));
    CHECK(!cth_result_successful(r));
    CHECK_EQ(cth_result_task_error(r), 0);
    atomic_store(&gate, 1);
    CHECK_OK(cth_result_get(r, NULL, CTH_FOREVER));
    CHECK(cth_result_successful(r));
    CHECK_EQ(cth_result_task_error(r), 0);
    cth_result_free(r);
    /* cancelled: CTH_ECANCELED, no task value, error_callback without one */
    struct cbs c = {0};
    cth_result_opts_t o = {.error_callback = on_fail, .cb_arg = &c};
    atomic_store(&gate, 0);
    atomic_store(&gate_started, 0);
    cth_result_t *held[2], *dropped;
    for (int i = 0; i < 2; i++)
        CHECK_OK(cth_pool_apply_async(p, gated, IV(i), NULL, &held[i]));
    wait_started(2);
    CHECK_OK(cth_pool_apply_async(p, return_arg, IV(9), &o, &dropped));
    CHECK_OK(cth_pool_terminate(p));  /* runs the error_callback here */
    CHECK_EQ(cth_task_error(), 1000); /* this thread's value came back */
    atomic_store(&gate, 1);
    CHECK_EQ(cth_result_get(dropped, NULL, CTH_FOREVER), CTH_ECANCELED);
    CHECK_EQ(cth_result_task_error(dropped), 0);
    CHECK_EQ(c.err, CTH_ECANCELED);
    CHECK_EQ(c.task_error, 0);
    cth_result_free(dropped);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cth_result_get(held[i], NULL, CTH_FOREVER));
        cth_result_free(held[i]);
    }
    cth_pool_free(p);
}

/* test_terminate: 10,000 queued slow tasks; terminate returns without
 * waiting for the running tasks (they are held until it has returned),
 * every AsyncResult finishes with CTH_ECANCELED (nothing hangs), and join
 * completes */
CTH_TEST(terminate)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 10000 };
    static cth_result_t *r[N];
    struct cbs c = {0};
    cth_result_opts_t o = {.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
    atomic_store(&gate, 0);
    atomic_store(&gate_started, 0);
    for (int i = 0; i < N; i++) /* the workers hold the first 2 until terminate */
        CHECK_OK(cth_pool_apply_async(p, i < 2 ? gated : sleepy, IV(20), &o, &r[i]));
    wait_started(2);
    CHECK_OK(cth_pool_terminate(p));
    atomic_store(&gate, 1);
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
        int err = cth_result_get(r[i], NULL, CTH_FOREVER);
        CHECK(err == 0 || err == CTH_ECANCELED);
        cancelled += err == CTH_ECANCELED;
        cth_result_free(r[i]);
    }
    CHECK_EQ(cancelled, N - 2);
    CHECK_EQ(c.ok + c.fail, N);
    CHECK_EQ(c.fail, cancelled);
    CHECK_OK(cth_pool_terminate(p)); /* harmless to repeat */
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    /* test_context: a terminated pool refuses work ("Pool not running") */
    cth_result_t *x;
    CHECK_EQ(cth_pool_apply_async(p, sqr, IV(1), NULL, &x), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply(p, sqr, IV(1), NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_terminate(NULL), CTH_EINVAL);
    cth_pool_free(p);
}

struct blocking_map {
    cth_pool_t *p;
    _Atomic int ret;
};

static void *run_blocked_map(void *arg)
{
    struct blocking_map *b = arg;
    static void *items[64];
    for (int i = 0; i < 64; i++)
        items[i] = IV(100);
    atomic_store(&b->ret, cth_pool_map(b->p, sleepy, items, 64, 1, NULL));
    return NULL;
}

/* departure: a blocking map whose chunks terminate drops returns
 * CTH_ECANCELED instead of hanging */
CTH_TEST(terminate_map)
{
    struct blocking_map b = {make_pool(2), 1};
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, run_blocked_map, &b, NULL));
    CHECK_OK(cth_thread_start(t));
    cth_sleep(0.15);
    CHECK_OK(cth_pool_terminate(b.p));
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    CHECK_EQ(b.ret, CTH_ECANCELED);
    cth_thread_free(t);
    cth_pool_free(b.p);
}

/* close/join: accepted work completes after close; submitting after close
 * is "Pool not running"; join while running is ValueError */
CTH_TEST(close_join)
{
    cth_pool_t *p = make_pool(2);
    CHECK_EQ(cth_pool_join(p, CTH_FOREVER), CTH_EINVAL); /* "Pool is still running" */
    cth_result_t *r[20];
    for (int i = 0; i < 20; i++)
        CHECK_OK(cth_pool_apply_async(p, sleepy, IV(10), NULL, &r[i]));
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_close(p));
    cth_result_t *x;
    CHECK_EQ(cth_pool_apply_async(p, sqr, IV(1), NULL, &x), CTH_EINVAL);
    void *items[2] = {IV(1), IV(2)};
    CHECK_EQ(cth_pool_map(p, sqr, items, 2, 0, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_parallel_for(p, NULL, NULL, 2), CTH_EINVAL);
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    for (int i = 0; i < 20; i++) {
        CHECK(cth_result_ready(r[i]));
        CHECK_OK(cth_result_get(r[i], NULL, 0));
        cth_result_free(r[i]);
    }
    CHECK_OK(cth_pool_join(p, CTH_FOREVER)); /* again */
    CHECK_EQ(cth_pool_join(NULL, CTH_FOREVER), CTH_EINVAL);
    CHECK_EQ(cth_pool_close(NULL), CTH_EINVAL);
    cth_pool_free(p);
}

static void *free_pool_thread(void *arg)
{
    cth_pool_free(arg);
    return NULL;
}

/* the context manager's __exit__: freeing a running pool terminates it
 * (the queued tasks are cancelled; the running ones are waited for); the
 * AsyncResults outlive the pool */
CTH_TEST(free_running)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 100 };
    cth_result_t *r[N];
    atomic_store(&gate, 0);
    atomic_store(&gate_started, 0);
    for (int i = 0; i < N; i++)
        CHECK_OK(cth_pool_apply_async(p, i < 2 ? gated : sleepy, IV(20), NULL, &r[i]));
    wait_started(2);
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, free_pool_thread, p, NULL));
    CHECK_OK(cth_thread_start(t));
    /* the last task is cancelled by the free, which then waits for the
     * gated two */
    CHECK_EQ(cth_result_get(r[N - 1], NULL, CTH_FOREVER), CTH_ECANCELED);
    atomic_store(&gate, 1);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
        int err = cth_result_get(r[i], NULL, CTH_FOREVER);
        CHECK(err == (i < 2 ? 0 : CTH_ECANCELED));
        cancelled += err == CTH_ECANCELED;
        cth_result_free(r[i]);
    }
    CHECK_EQ(cancelled, N - 2);
}

static _Thread_local int init_done;
static _Atomic int init_calls;

static void initializer(void *arg)
{
    CHECK_EQ(VI(arg), 42);
    init_done = 1;
    atomic_fetch_add(&init_calls, 1);
}

static int check_init(void *arg, void **result)
{
    CHECK(init_done);
    *result = arg;
    return 0;
}

/* TestInitializers.test_pool_initializer: runs in each worker before tasks */
CTH_TEST(initializer)
{
    cth_pool_t *p;
    cth_pool_opts_t o = {.processes = 3, .initializer = initializer, .initarg = IV(42)};
    CHECK_OK(cth_pool_create(&p, &o));
    void *items[50];
    for (int i = 0; i < 50; i++)
        items[i] = IV(i);
    CHECK_OK(cth_pool_map(p, check_init, items, 50, 1, NULL));
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    CHECK_EQ(init_calls, 3);
    cth_pool_free(p);
}

static int worker_ident(void *arg, void **result)
{
    (void)arg;
    CHECK(init_done);
    *result = (void *)cth_get_ident();
    cth_sleep(0.001);
    return 0;
}

/* _TestPoolWorkerLifetime.test_pool_worker_lifetime: workers are replaced
 * after maxtasksperchild tasks (the initializer runs in each), results stay
 * right */
CTH_TEST(maxtasksperchild)
{
    cth_pool_t *p;
    cth_pool_opts_t o = {
        .processes = 2, .initializer = initializer, .initarg = IV(42), .maxtasksperchild = 3};
    atomic_store(&init_calls, 0);
    CHECK_OK(cth_pool_create(&p, &o));
    enum { N = 30 };
    cth_result_t *r[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(cth_pool_apply_async(p, worker_ident, NULL, NULL, &r[i]));
    for (int i = 0; i < N; i++) {
        CHECK_OK(cth_result_get(r[i], NULL, CTH_FOREVER));
        cth_result_free(r[i]);
    }
    CHECK(init_calls >= N / 3); /* each worker ran at most 3 tasks */
    void *items[N], *res[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    CHECK_OK(cth_pool_map(p, sqr, items, N, 1, res));
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(res[i]), i * i);
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    cth_pool_free(p);
}

/* test_pool_worker_lifetime_early_close: maxtasks 1, close before the
 * tasks finish, join does not hang and every result is right */
CTH_TEST(maxtasksperchild_early_close)
{
    cth_pool_t *p;
    cth_pool_opts_t o = {.processes = 1, .maxtasksperchild = 1};
    CHECK_OK(cth_pool_create(&p, &o));
    cth_result_t *r[6];
    for (int i = 0; i < 6; i++)
        CHECK_OK(cth_pool_apply_async(p, sleepy, IV(10 + i), NULL, &r[i]));
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    for (int i = 0; i < 6; i++) {
        void *v;
        CHECK_OK(cth_result_get(r[i], &v, 0));
        CHECK_EQ(VI(v), 10 + i);
        cth_result_free(r[i]);
    }
    cth_pool_free(p);
}

struct pf {
    _Atomic int *hits;
    size_t fail_at;
    int value; /* what index fail_at returns */
};

static int pf_body(void *arg, size_t i)
{
    struct pf *f = arg;
    atomic_fetch_add(&f->hits[i], 1);
    return i == f->fail_at ? f->value : 0;
}

/* parallel-for: every index exactly once; a failure returned after all */
CTH_TEST(parallel_for)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 100003 };
    static _Atomic int hits[N];
    struct pf f = {hits, SIZE_MAX, -5};
    CHECK_OK(cth_pool_parallel_for(p, pf_body, &f, N));
    for (int i = 0; i < N; i++)
        CHECK_EQ(hits[i], 1);
    f.fail_at = 5;
    memset(hits, 0, sizeof hits);
    CHECK_EQ(cth_pool_parallel_for(p, pf_body, &f, N), CTH_ETASK);
    CHECK_EQ(cth_task_error(), -5);
    /* -1 and a positive value fail too, unchanged */
    f.value = -1;
    CHECK_EQ(cth_pool_parallel_for(p, pf_body, &f, N), CTH_ETASK);
    CHECK_EQ(cth_task_error(), -1);
    f.value = 8;
    f.fail_at = N - 1;
    CHECK_EQ(cth_pool_parallel_for(p, pf_body, &f, N), CTH_ETASK);
    CHECK_EQ(cth_task_error(), 8);
    CHECK_OK(cth_pool_parallel_for(p, pf_body, &f, 0));
    CHECK_OK(cth_pool_parallel_for(p, pf_body, &f, 1));
    CHECK_EQ(cth_pool_parallel_for(NULL, pf_body, &f, 1), CTH_EINVAL);
    CHECK_EQ(cth_pool_parallel_for(p, NULL, &f, 1), CTH_EINVAL);
    cth_pool_free(p);
}

static cth_pool_t *nested_pool;

static int nested(void *arg, void **result)
{
    void *items[8], *res[8];
    for (int i = 0; i < 8; i++)
        items[i] = IV(i);
    CHECK_OK(cth_pool_map(nested_pool, sqr, items, 8, 1, res));
    void *v;
    CHECK_OK(cth_pool_apply(nested_pool, sqr, arg, &v));
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_async(nested_pool, sqr, arg, NULL, &r));
    CHECK_OK(cth_result_get(r, &v, CTH_FOREVER));
    cth_result_free(r);
    *result = IV(VI(v) + VI(res[7]));
    return 0;
}

/* a task that submits to its own pool and waits does not deadlock, even
 * with every worker doing it */
CTH_TEST(nested)
{
    nested_pool = make_pool(2);
    void *items[6], *res[6];
    for (int i = 0; i < 6; i++)
        items[i] = IV(i);
    CHECK_OK(cth_pool_map(nested_pool, nested, items, 6, 1, res));
    for (int i = 0; i < 6; i++)
        CHECK_EQ(VI(res[i]), i * i + 49);
    cth_pool_free(nested_pool);
}

/* join t; the signal cth_interrupt_main also sends may interrupt it */
static void join_quietly(cth_thread_t *t)
{
    int err;
    while ((err = cth_thread_join(t, NULL, CTH_FOREVER)) == CTH_EINTR)
        ;
    CHECK_OK(err);
}

/* a main-thread get wakes with CTH_EINTR on cth_interrupt_main */
CTH_TEST(get_interrupted)
{
    signal(SIGINT, check_sigint_noop);
    cth_pool_t *p = make_pool(1);
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_async(p, sleepy, IV(600), NULL, &r));
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, check_interrupter, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    CHECK_EQ(cth_result_get(r, NULL, CTH_FOREVER), CTH_EINTR);
    join_quietly(t);
    cth_thread_free(t);
    /* a blocking map is interrupted too: unclaimed chunks are dropped; a
     * task the main thread runs meanwhile waits as on a worker */
    CHECK_OK(cth_thread_create(&t, check_interrupter, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    void *items[50];
    for (int i = 0; i < 50; i++)
        items[i] = IV(20);
    CHECK_EQ(cth_pool_map(p, sleepy_uninterrupted, items, 50, 1, NULL), CTH_EINTR);
    join_quietly(t);
    cth_thread_free(t);
    CHECK_OK(cth_result_get(r, NULL, CTH_FOREVER));
    cth_result_free(r);
    cth_pool_free(p);
}

/* join from a worker of the pool is refused */
static cth_pool_t *self_pool;
static int join_self(void *arg, void **result)
{
    (void)arg;
    *result = IV(cth_pool_join(self_pool, CTH_FOREVER));
    return 0;
}

CTH_TEST(join_from_worker)
{
    self_pool = make_pool(1);
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_async(self_pool, sleepy, IV(50), NULL, &r));
    cth_result_t *r2;
    CHECK_OK(cth_pool_apply_async(self_pool, join_self, NULL, NULL, &r2));
    CHECK_OK(cth_pool_close(self_pool));
    void *v;
    CHECK_OK(cth_result_get(r2, &v, CTH_FOREVER));
    CHECK_EQ(VI(v), CTH_EDEADLK);
    cth_result_free(r);
    cth_result_free(r2);
    cth_pool_free(self_pool);
}

/* A blocking map's calling thread runs chunks too: with the pool's only
 * worker busy on a task that waits for the map to end, the map completes,
 * every item run by the caller. */
struct hold {
    atomic_int running;
    cth_event_t release;
};

static int hold_worker(void *arg, void **result)
{
    struct hold *h = arg;
    atomic_store(&h->running, 1);
    CHECK_OK(cth_event_wait(&h->release, CTH_FOREVER));
    *result = NULL;
    return 0;
}

static int note_thread(void *arg, void **result)
{
    (void)arg;
    *result = cth_current_thread();
    return 0;
}

CTH_TEST(map_caller_runs_chunks)
{
    cth_pool_t *p = make_pool(1);
    struct hold h = {0, CTH_EVENT_INIT};
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_async(p, hold_worker, &h, NULL, &r));
    while (!atomic_load(&h.running))
        cth_sleep(0.001);
    void *items[8] = {0}, *results[8];
    CHECK_OK(cth_pool_map(p, note_thread, items, 8, 1, results));
    for (int i = 0; i < 8; i++)
        CHECK(results[i] == cth_current_thread());
    CHECK_OK(cth_event_set(&h.release));
    CHECK_OK(cth_result_get(r, NULL, CTH_FOREVER));
    cth_result_free(r);
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    cth_pool_free(p);
}

/* ... unless the pool has an initializer, which a task may rely on: then
 * the workers alone run them. */
static void no_setup(void *arg)
{
    (void)arg;
}

CTH_TEST(map_with_initializer_runs_on_workers)
{
    cth_pool_t *p;
    cth_pool_opts_t o = {.processes = 2, .initializer = no_setup};
    CHECK_OK(cth_pool_create(&p, &o));
    enum { N = 64 };
    void *items[N] = {0}, *results[N];
    CHECK_OK(cth_pool_map(p, note_thread, items, N, 1, results));
    for (int i = 0; i < N; i++)
        CHECK(results[i] != NULL && results[i] != cth_current_thread());
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    cth_pool_free(p);
}
