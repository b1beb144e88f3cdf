/*
 * test_pool.c - the thread pool, AsyncResult, map, starmap, parallel-for,
 * close/terminate/join, maxtasksperchild, initializer. Each test names the
 * CPython test of Lib/test/_test_multiprocessing.py (_TestPool, TYPE
 * 'threads') it mirrors. The imap iterators are in test_pool_imap.c.
 */
#include <signal.h>
#include <stdatomic.h>

#include "check.h"

#define IV(x) ((void *)(intptr_t)(x))
#define VI(p) ((intptr_t)(p))

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

static int sleepy(void *arg, void **result)
{
    cth_sleep((double)VI(arg) / 1000.0);
    *result = arg;
    return 0;
}

static cth_pool_t *make_pool(int n)
{
    cth_pool_t *p;
    cth_pool_opts o = {.processes = n};
    CHECK_OK(cth_pool_create(&p, &o));
    return p;
}

/* test_make_pool: processes -1 is an error, 0 is the CPU count, 3 gives 3 */
CTH_TEST(make_pool)
{
    cth_pool_t *p;
    cth_pool_opts o = {.processes = -1};
    CHECK_EQ(cth_pool_create(&p, &o), CTH_EINVAL);
    CHECK_EQ(cth_pool_create(NULL, NULL), CTH_EINVAL);
    o = (cth_pool_opts){.maxtasksperchild = -1}; /* test_pool_maxtasksperchild_invalid */
    CHECK_EQ(cth_pool_create(&p, &o), CTH_EINVAL);
    CHECK_OK(cth_pool_create(&p, NULL));
    CHECK_EQ(cth_pool_size(p), sysconf(_SC_NPROCESSORS_ONLN));
    cth_pool_free(p);
    p = make_pool(3);
    CHECK_EQ(cth_pool_size(p), 3);
    CHECK_EQ(cth_pool_size(NULL), CTH_EINVAL);
    cth_pool_free(p);
    cth_pool_free(NULL);
}

/* test_apply */
CTH_TEST(apply)
{
    cth_pool_t *p = make_pool(2);
    void *v = NULL;
    CHECK_OK(cth_pool_apply(p, sqr, IV(5), &v));
    CHECK_EQ(VI(v), 25);
    CHECK_OK(cth_pool_apply(p, sqr, IV(7), NULL));
    CHECK_EQ(cth_pool_apply(p, sqr_or_fail, IV(3), &v), -1003);
    CHECK_EQ(cth_pool_apply(NULL, sqr, NULL, &v), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply(p, NULL, NULL, &v), CTH_EINVAL);
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
    CHECK_EQ(cth_result_successful(r), CTH_EAGAIN); /* ValueError "not ready" */
    void *v = NULL;
    CHECK_OK(cth_result_get(r, CTH_FOREVER, &v));
    CHECK_WAITED_AT_LEAST(t0, 0.2);
    CHECK_EQ(VI(v), 200);
    CHECK(cth_result_ready(r));
    CHECK_EQ(cth_result_successful(r), 1);
    CHECK_OK(cth_result_wait(r, 0));
    CHECK_OK(cth_result_get(r, 0, NULL)); /* again, any number of times */
    cth_result_free(r);
    CHECK_EQ(cth_pool_apply_async(p, sqr, NULL, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_async(NULL, sqr, NULL, NULL, &r), CTH_EINVAL);
    CHECK_EQ(cth_result_get(NULL, 0, NULL), CTH_EINVAL);
    CHECK_EQ(cth_result_wait(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_result_successful(NULL), CTH_EINVAL);
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
    CHECK_EQ(cth_result_get(r, 0.2, NULL), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.2);
    CHECK_EQ(cth_result_wait(r, 0), CTH_ETIMEDOUT);
    CHECK_EQ(cth_result_get(r, -2, NULL), CTH_EINVAL);
    CHECK_EQ(cth_result_get(r, NAN, NULL), CTH_EINVAL);
    CHECK_EQ(cth_result_wait(r, 1e300), CTH_EOVERFLOW);
    cth_result_free(r); /* freed while pending: the task runs on */
    cth_pool_free(p);
}

struct cbs {
    _Atomic int ok, fail;
    _Atomic intptr_t value;
    _Atomic int err;
};

static void on_ok(void *value, void *cb_arg)
{
    struct cbs *c = cb_arg;
    atomic_store(&c->value, VI(value));
    atomic_fetch_add(&c->ok, 1);
}

static void on_fail(int err, void *cb_arg)
{
    struct cbs *c = cb_arg;
    atomic_store(&c->err, err);
    atomic_fetch_add(&c->fail, 1);
}

/* _TestPoolWorkerErrors.test_async_error_callback, and callbacks of
 * apply_async: exactly one of them runs, before the result is ready */
CTH_TEST(apply_async_callbacks)
{
    cth_pool_t *p = make_pool(2);
    struct cbs c = {0};
    cth_result_opts o = {on_ok, on_fail, &c};
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_async(p, sqr, IV(6), &o, &r));
    CHECK_OK(cth_result_wait(r, CTH_FOREVER));
    CHECK_EQ(c.ok, 1);
    CHECK_EQ(c.fail, 0);
    CHECK_EQ(c.value, 36);
    cth_result_free(r);
    CHECK_OK(cth_pool_apply_async(p, sqr_or_fail, IV(10), &o, &r));
    CHECK_EQ(cth_result_get(r, CTH_FOREVER, NULL), -1010);
    CHECK_EQ(cth_result_successful(r), 0);
    CHECK_EQ(c.ok, 1);
    CHECK_EQ(c.fail, 1);
    CHECK_EQ(c.err, -1010);
    cth_result_free(r);
    /* the pool keeps working after a failure */
    void *v;
    CHECK_OK(cth_pool_apply(p, sqr, IV(4), &v));
    CHECK_EQ(VI(v), 16);
    cth_pool_free(p);
}

/* test_map: equals a sequential map; 100 items with chunksize 20 */
CTH_TEST(map)
{
    cth_pool_t *p = make_pool(4);
    enum { N = 100 };
    void *items[N], *res[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    size_t chunks[] = {0, 1, 20, 7, 1000};
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

/* errors in tasks: map returns a task's failure; the pool keeps working */
CTH_TEST(map_error)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 50 };
    void *items[N], *res[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    int err = cth_pool_map(p, sqr_or_fail, items, N, 1, res);
    CHECK(err <= -1003 && err >= -1000 - N && (-1000 - err) % 7 == 3);
    CHECK_OK(cth_pool_map(p, sqr, items, N, 1, res));
    CHECK_EQ(VI(res[N - 1]), (N - 1) * (N - 1));
    cth_pool_free(p);
}

static int fail_fast_or_sleep(void *arg, void **result)
{
    (void)result;
    if (VI(arg) == 0)
        return -77;
    cth_sleep(0.1);
    return 0;
}

/* test_map_no_failfast: map returns the failure only after every task has
 * finished; close and join do not deadlock afterwards */
CTH_TEST(map_no_failfast)
{
    cth_pool_t *p = make_pool(2);
    void *items[4] = {IV(0), IV(1), IV(2), IV(3)};
    double t0 = check_now();
    CHECK_EQ(cth_pool_map(p, fail_fast_or_sleep, items, 4, 1, NULL), -77);
    CHECK_WAITED_AT_LEAST(t0, 0.2); /* 3 sleeps of 0.1 s on 2 workers */
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p));
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
    cth_result_opts o = {on_ok, on_fail, &c};
    cth_result_t *r;
    CHECK_OK(cth_pool_map_async(p, sqr, items, N, 0, res, &o, &r));
    void *v = NULL;
    CHECK_OK(cth_result_get(r, CTH_FOREVER, &v));
    CHECK(v == (void *)res);
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(res[i]), i * i);
    CHECK_EQ(c.ok, 1);
    CHECK_EQ(c.fail, 0);
    CHECK_EQ(c.value, VI(res));
    cth_result_free(r);
    CHECK_OK(cth_pool_map_async(p, sqr_or_fail, items, N, 2, res, &o, &r));
    int err = cth_result_get(r, CTH_FOREVER, &v);
    CHECK(err <= -1003 && (-1000 - err) % 7 == 3);
    CHECK_EQ(cth_result_successful(r), 0);
    CHECK_EQ(c.ok, 1);
    CHECK_EQ(c.fail, 1);
    CHECK_EQ(c.err, err);
    cth_result_free(r);
    CHECK_EQ(cth_pool_map_async(p, sqr, items, N, 0, res, &o, NULL), CTH_EINVAL);
    cth_pool_free(p);
}

/* test_empty_iterable and test_map_chunksize: map and map_async of []
 * complete at once, with chunksize 1 too */
CTH_TEST(map_empty)
{
    cth_pool_t *p = make_pool(2);
    struct cbs c = {0};
    cth_result_opts o = {on_ok, on_fail, &c};
    CHECK_OK(cth_pool_map(p, sqr, NULL, 0, 0, NULL));
    cth_result_t *r;
    CHECK_OK(cth_pool_map_async(p, sqr, NULL, 0, 1, NULL, &o, &r));
    CHECK(cth_result_ready(r));
    CHECK_OK(cth_result_get(r, 0, NULL));
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
    CHECK_OK(cth_pool_starmap(p, mul, args, sizeof args[0], N, 3, res));
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(res[i]), i * (i + 1));
    memset(res, 0, sizeof res);
    cth_result_t *r;
    CHECK_OK(cth_pool_starmap_async(p, mul, args, sizeof args[0], N, 0, res, NULL, &r));
    CHECK_OK(cth_result_get(r, CTH_FOREVER, NULL));
    for (int i = 0; i < N; i++)
        CHECK_EQ(VI(res[i]), i * (i + 1));
    cth_result_free(r);
    CHECK_EQ(cth_pool_starmap(p, mul, args, 0, N, 3, res), CTH_EINVAL);
    CHECK_EQ(cth_pool_starmap_async(p, mul, args, 0, N, 3, res, NULL, &r), CTH_EINVAL);
    cth_pool_free(p);
}
