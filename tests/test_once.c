/* SPDX-License-Identifier: MIT */
/*
 * test_once.c - cth_once_call and cth_singleton_get: exactly once under a
 * 100-thread race, every caller waiting for the run, retry after failure
 * (Python's lazy-init idiom), recursion detected, and the seed's Singleton;
 * the library's exported twins of the inline fast paths.
 */
#include <dlfcn.h>
#include <stdatomic.h>

#include "check.h"

/* The 0.1.0 signatures: int callbacks, the singleton's named cth_singleton_fn. */
_Static_assert(_Generic(&cth_once_call, int (*)(cth_once_t *, cth_once_fn, void *) : 1,
                        default : 0),
               "cth_once_call(once, fn, arg)");
_Static_assert(_Generic(&cth_singleton_get,
                        int (*)(cth_singleton_t *, cth_singleton_fn, void *, void **) : 1,
                        default : 0),
               "cth_singleton_get(singleton, ctor, arg, &instance)");
_Static_assert(_Generic((cth_singleton_fn)0, int (*)(void *, void **) : 1, default : 0),
               "cth_singleton_fn: int (*)(void *arg, void **instance)");

static atomic_int runs;
static int initialized; /* written by the once's function only */

static int slow_init(void *arg)
{
    atomic_fetch_add(&runs, 1);
    cth_sleep(0.02); /* let the others pile up behind the run */
    initialized = *(int *)arg;
    return 0;
}

static cth_once_t race_once = CTH_ONCE_INIT;
static atomic_int go;

static void *race_caller(void *arg)
{
    while (!atomic_load(&go))
        cth_sleep(0);
    CHECK_OK(cth_once_call(&race_once, slow_init, arg));
    CHECK_EQ(initialized, 7); /* visible to every caller that returned 0 */
    CHECK(cth_once_done(&race_once));
    return NULL;
}

/* 100 threads race to the once: the function runs exactly once and every
 * caller returns only after it has finished. */
CTH_TEST(once_under_100_thread_race)
{
    int seven = 7;
    cth_thread_t *t[100];
    for (int i = 0; i < 100; i++) {
        CHECK_OK(cth_thread_create(&t[i], race_caller, &seven, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    CHECK(!cth_once_done(&race_once));
    atomic_store(&go, 1);
    for (int i = 0; i < 100; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    CHECK_EQ(atomic_load(&runs), 1);
    CHECK_OK(cth_once_call(&race_once, slow_init, &seven));
    CHECK_EQ(atomic_load(&runs), 1);
}

static atomic_int attempts;

static int fail_twice(void *arg)
{
    (void)arg;
    int n = atomic_fetch_add(&attempts, 1);
    cth_sleep(0.005);
    return n < 2 ? CTH_ENOMEM : 0;
}

/* A failing run is CTH_ETASK with its value in cth_task_error(), and
 * leaves the once not run; the next call retries, and after the first
 * success nothing runs again. */
CTH_TEST(failure_reported_then_retried)
{
    cth_once_t once = CTH_ONCE_INIT;
    CHECK_EQ(cth_once_call(&once, fail_twice, NULL), CTH_ETASK);
    CHECK_EQ(cth_task_error(), CTH_ENOMEM);
    CHECK(!cth_once_done(&once));
    CHECK_EQ(cth_once_call(&once, fail_twice, NULL), CTH_ETASK);
    CHECK_EQ(cth_task_error(), CTH_ENOMEM);
    CHECK_OK(cth_once_call(&once, fail_twice, NULL));
    CHECK(cth_once_done(&once));
    CHECK_OK(cth_once_call(&once, fail_twice, NULL));
    CHECK_EQ(atomic_load(&attempts), 3);
}

static cth_once_t flaky_once = CTH_ONCE_INIT;
static atomic_int flaky_runs, flaky_fails;

static int flaky(void *arg)
{
    (void)arg;
    cth_sleep(0.002);
    return atomic_fetch_add(&flaky_runs, 1) < 3 ? CTH_EAGAIN : 0;
}

static void *flaky_caller(void *arg)
{
    (void)arg;
    int r;
    while ((r = cth_once_call(&flaky_once, flaky, NULL)) != 0) {
        CHECK_EQ(r, CTH_ETASK); /* only the caller that ran it sees the failure */
        CHECK_EQ(cth_task_error(), CTH_EAGAIN);
        atomic_fetch_add(&flaky_fails, 1);
    }
    return NULL;
}

/* Under a race, waiters of a failed run retry it themselves: three
 * failures, then one success, and no run after it. */
CTH_TEST(waiters_retry_after_failure)
{
    cth_thread_t *t[20];
    for (int i = 0; i < 20; i++) {
        CHECK_OK(cth_thread_create(&t[i], flaky_caller, NULL, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < 20; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    CHECK_EQ(atomic_load(&flaky_runs), 4);
    CHECK_EQ(atomic_load(&flaky_fails), 3);
}

static int recursive(void *arg)
{
    return cth_once_call(arg, recursive, arg) == CTH_EDEADLK ? 0 : 1;
}

/* A function failing with the value at arg. */
static int failing(void *arg)
{
    return *(int *)arg;
}

CTH_TEST(errors)
{
    cth_once_t once = CTH_ONCE_INIT;
    CHECK_EQ(cth_once_call(NULL, slow_init, NULL), CTH_EINVAL);
    CHECK_EQ(cth_once_call(&once, NULL, NULL), CTH_EINVAL);
    CHECK(!cth_once_done(NULL));
    /* any nonzero value is a failure, kept unchanged in cth_task_error(),
     * and the once stays not run: -1 is not CTH_EPERM, 5 is no success */
    int values[] = {-1, 5, 1, CTH_EINVAL, INT32_MIN};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        CHECK_EQ(cth_once_call(&once, failing, &values[i]), CTH_ETASK);
        CHECK_EQ(cth_task_error(), values[i]);
        CHECK(!cth_once_done(&once));
    }
    CHECK_EQ(cth_once_call(NULL, failing, &values[0]), CTH_EINVAL);
    CHECK_EQ(cth_task_error(), INT32_MIN); /* other returns leave it alone */
    /* calling the once from its own function is detected */
    CHECK_OK(cth_once_call(&once, recursive, &once));
    CHECK(cth_once_done(&once));
    /* zeroed storage is a fresh once */
    cth_once_t zero;
    memset(&zero, 0, sizeof zero);
    int seven = 7;
    CHECK_OK(cth_once_call(&zero, slow_init, &seven));
    CHECK(cth_once_done(&zero));
}

static atomic_int counted_runs;

static int counted_init(void *arg)
{
    (void)arg;
    atomic_fetch_add(&counted_runs, 1);
    return 0;
}

/* cth_once_call is inline in once.h (its done case); the library still
 * exports it, for callers through a symbol (FFI, dlsym). The exported one
 * and the inline one work on the same once: it runs once whichever comes
 * first, failures and misuse report the same. */
CTH_TEST(once_exported_function)
{
    int (*call)(cth_once_t *, cth_once_fn, void *);
    *(void **)&call = dlsym(RTLD_DEFAULT, "cth_once_call");
    CHECK(call != NULL);
    cth_once_t once = CTH_ONCE_INIT;
    int value = 9;
    CHECK_EQ(call(&once, failing, &value), CTH_ETASK);
    CHECK_EQ(cth_task_error(), 9);
    CHECK_OK(call(&once, counted_init, NULL));
    CHECK_OK(call(&once, counted_init, NULL));
    CHECK_OK(cth_once_call(&once, counted_init, NULL));
    CHECK_EQ(atomic_load(&counted_runs), 1);
    CHECK_EQ(call(NULL, counted_init, NULL), CTH_EINVAL);
    CHECK_EQ(call(&once, NULL, NULL), CTH_EINVAL);
    cth_once_t other = CTH_ONCE_INIT;
    CHECK_OK(cth_once_call(&other, counted_init, NULL));
    CHECK_OK(call(&other, counted_init, NULL));
    CHECK_EQ(atomic_load(&counted_runs), 2);
}

/* ---- singleton ---- */

struct config {
    int port;
};

static atomic_int ctor_runs;

static int make_config(void *arg, void **instance)
{
    atomic_fetch_add(&ctor_runs, 1);
    cth_sleep(0.01);
    struct config *c = malloc(sizeof *c);
    if (!c)
        return CTH_ENOMEM;
    c->port = *(int *)arg;
    *instance = c;
    return 0;
}

static cth_singleton_t config_singleton = CTH_SINGLETON_INIT;

static void *singleton_caller(void *arg)
{
    void *inst = NULL;
    CHECK_OK(cth_singleton_get(&config_singleton, make_config, arg, &inst));
    CHECK_EQ(((struct config *)inst)->port, 8080);
    return inst;
}

/* The seed's Singleton: under a 50-thread race the constructor runs once
 * and every caller gets the same pointer. */
CTH_TEST(singleton_race)
{
    int port = 8080;
    cth_thread_t *t[50];
    for (int i = 0; i < 50; i++) {
        CHECK_OK(cth_thread_create(&t[i], singleton_caller, &port, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    void *first = NULL;
    for (int i = 0; i < 50; i++) {
        void *r;
        CHECK_OK(cth_thread_join(t[i], &r, CTH_FOREVER));
        cth_thread_free(t[i]);
        if (!first)
            first = r;
        CHECK(r == first);
    }
    void *again;
    CHECK_OK(cth_singleton_get(&config_singleton, make_config, &port, &again));
    CHECK(again == first);
    CHECK_EQ(atomic_load(&ctor_runs), 1);
    free(first);
}

static int ctor_fails_once(void *arg, void **instance)
{
    if (atomic_fetch_add((atomic_int *)arg, 1) == 0)
        return CTH_ENOMEM;
    *instance = arg;
    return 0;
}

static int ctor_null(void *arg, void **instance)
{
    (void)arg;
    *instance = NULL;
    return 0;
}

static int ctor_positive(void *arg, void **instance)
{
    (void)arg;
    *instance = arg; /* set, but the ctor failed: not kept */
    return 5;
}

CTH_TEST(singleton_errors_and_retry)
{
    cth_singleton_t s = CTH_SINGLETON_INIT;
    void *inst;
    atomic_int calls = 0;
    CHECK_EQ(cth_singleton_get(NULL, ctor_null, NULL, &inst), CTH_EINVAL);
    CHECK_EQ(cth_singleton_get(&s, NULL, NULL, &inst), CTH_EINVAL);
    CHECK_EQ(cth_singleton_get(&s, ctor_null, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_singleton_get(&s, ctor_positive, &calls, &inst), CTH_ETASK);
    CHECK_EQ(cth_task_error(), 5); /* a positive value is a failure too */
    /* A NULL instance is the library's CTH_EINVAL: cth_task_error() is not
     * touched and the singleton stays empty. */
    CHECK_EQ(cth_singleton_get(&s, ctor_null, NULL, &inst), CTH_EINVAL);
    CHECK_EQ(cth_task_error(), 5);
    CHECK_EQ(cth_singleton_get(&s, ctor_fails_once, &calls, &inst), CTH_ETASK);
    CHECK_EQ(cth_task_error(), CTH_ENOMEM);
    CHECK_OK(cth_singleton_get(&s, ctor_fails_once, &calls, &inst));
    CHECK(inst == &calls);
    CHECK_OK(cth_singleton_get(&s, ctor_null, NULL, &inst)); /* done: ctor not called */
    CHECK(inst == &calls);
    CHECK_EQ(atomic_load(&calls), 2);
}

/* cth_singleton_get is inline in once.h (its created case) and exported
 * too: both give the one instance, and both refuse NULL arguments, even
 * once it exists. */
CTH_TEST(singleton_exported_function)
{
    int (*get)(cth_singleton_t *, cth_singleton_fn, void *, void **);
    *(void **)&get = dlsym(RTLD_DEFAULT, "cth_singleton_get");
    CHECK(get != NULL);
    cth_singleton_t s = CTH_SINGLETON_INIT;
    atomic_int calls = 0;
    void *inst = NULL, *again = NULL;
    CHECK_EQ(get(&s, ctor_fails_once, &calls, &inst), CTH_ETASK);
    CHECK_EQ(cth_task_error(), CTH_ENOMEM);
    CHECK(inst == NULL);
    CHECK_OK(get(&s, ctor_fails_once, &calls, &inst));
    CHECK(inst == &calls);
    CHECK_OK(get(&s, ctor_null, NULL, &again));
    CHECK(again == &calls);
    again = NULL;
    CHECK_OK(cth_singleton_get(&s, ctor_null, NULL, &again));
    CHECK(again == &calls);
    CHECK_EQ(atomic_load(&calls), 2);
    CHECK_EQ(get(NULL, ctor_null, NULL, &inst), CTH_EINVAL);
    CHECK_EQ(get(&s, NULL, NULL, &inst), CTH_EINVAL);
    CHECK_EQ(get(&s, ctor_null, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_singleton_get(&s, NULL, NULL, &inst), CTH_EINVAL);
    CHECK_EQ(cth_singleton_get(&s, ctor_null, NULL, NULL), CTH_EINVAL);
}
