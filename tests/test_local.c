/* SPDX-License-Identifier: MIT */
/*
 * test_local.c - threading.local (cth_local_*), ported from CPython's
 * Lib/test/test_threading_local.py and Werkzeug's tests/test_local.py
 * (test_basic_local), plus the C-specific contracts: destructors exactly
 * once per value, no key limit, slot reuse, adopted threads, allocation
 * failure, and the library's exported twin of the inline cth_local_set.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>

#include "alloc.h"
#include "check.h"

static atomic_int destroyed;

static void count_free(void *p)
{
    atomic_fetch_add(&destroyed, 1);
    free(p);
}

static int *new_int(int v)
{
    int *p = malloc(sizeof *p);
    CHECK(p);
    *p = v;
    return p;
}

/* Start n threads running fn(arg) and join them. */
static void run_threads(int n, cth_thread_fn fn, void *arg)
{
    cth_thread_t *t[128];
    CHECK(n <= 128);
    for (int i = 0; i < n; i++) {
        CHECK_OK(cth_thread_create(&t[i], fn, arg, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < n; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
}

static void *check_unset_then_set(void *arg)
{
    cth_local_t *l = arg;
    CHECK(cth_local_get(l) == NULL);
    CHECK_OK(cth_local_set(l, new_int(2)));
    CHECK_EQ(*(int *)cth_local_get(l), 2);
    return NULL;
}

/* test_threading_local.ThreadLocalTest.test_threading_local (and Werkzeug's
 * test_basic_local): a value set in one thread is invisible in another, and
 * the other thread's value does not change ours. */
CTH_TEST(value_invisible_in_other_thread)
{
    cth_local_t *l;
    atomic_store(&destroyed, 0);
    CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = count_free}));
    CHECK(cth_local_get(l) == NULL);
    CHECK_OK(cth_local_set(l, new_int(1)));
    run_threads(3, check_unset_then_set, l);
    CHECK_EQ(*(int *)cth_local_get(l), 1);
    CHECK_EQ(atomic_load(&destroyed), 3); /* the three threads' values, at their exit */
    cth_local_free(l);
    CHECK_EQ(atomic_load(&destroyed), 4);
}

/* Werkzeug test_basic_local: delete works; deleting a missing attribute is
 * an error (Python's AttributeError: CTH_ENOENT, nothing deleted). Also
 * set's ownership rules. */
CTH_TEST(set_replace_delete_take)
{
    cth_local_t *l;
    atomic_store(&destroyed, 0);
    CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = count_free}));
    CHECK_EQ(cth_local_delete(l), CTH_ENOENT);
    int *a = new_int(1), *b = new_int(2);
    CHECK_OK(cth_local_set(l, a));
    CHECK_OK(cth_local_set(l, a)); /* the same pointer: not destroyed */
    CHECK_EQ(atomic_load(&destroyed), 0);
    CHECK_OK(cth_local_set(l, b)); /* a replaced: destroyed */
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK(cth_local_get(l) == b);
    CHECK_OK(cth_local_delete(l));
    CHECK_EQ(atomic_load(&destroyed), 2);
    CHECK(cth_local_get(l) == NULL);
    CHECK_EQ(cth_local_delete(l), CTH_ENOENT);
    CHECK_EQ(atomic_load(&destroyed), 2);
    int *c = new_int(3);
    CHECK_OK(cth_local_set(l, c));
    CHECK(cth_local_take(l) == c); /* back to us, not destroyed */
    CHECK(cth_local_get(l) == NULL);
    CHECK(cth_local_take(l) == NULL);
    CHECK_EQ(atomic_load(&destroyed), 2);
    free(c);
    CHECK_OK(cth_local_set(l, new_int(4)));
    CHECK_OK(cth_local_set(l, NULL)); /* NULL removes, destroying */
    CHECK_EQ(atomic_load(&destroyed), 3);
    CHECK(cth_local_get(l) == NULL);
    cth_local_free(l);
    CHECK_EQ(atomic_load(&destroyed), 3);
}

/* cth_local_set is inline in local.h where it frees nothing; the library
 * still exports it, for callers through a symbol (FFI, dlsym). Both store
 * into the same table: a local without free_item replaces freely, one with
 * a free_item frees what either replaces, and both refuse NULL. */
CTH_TEST(set_exported_function)
{
    int (*set)(cth_local_t *, void *);
    *(void **)&set = dlsym(RTLD_DEFAULT, "cth_local_set");
    CHECK(set != NULL);
    cth_local_t *plain, *owned;
    CHECK_OK(cth_local_create(&plain, NULL));
    CHECK_OK(cth_local_create(&owned, &(cth_local_opts_t){.free_item = count_free}));
    int x, y;
    CHECK_OK(set(plain, &x));
    CHECK(cth_local_get(plain) == &x);
    CHECK_OK(cth_local_set(plain, &y));
    CHECK(cth_local_get(plain) == &y);
    CHECK_OK(set(plain, NULL));
    CHECK(cth_local_get(plain) == NULL);
    atomic_store(&destroyed, 0);
    int *a = new_int(1), *b = new_int(2), *c = new_int(3);
    CHECK_OK(set(owned, a));
    CHECK_OK(cth_local_set(owned, a)); /* the same: kept */
    CHECK_OK(cth_local_set(owned, b)); /* a replaced, inline caller: freed */
    CHECK_EQ(atomic_load(&destroyed), 1);
    CHECK_OK(set(owned, c)); /* b replaced through the symbol: freed */
    CHECK_EQ(atomic_load(&destroyed), 2);
    CHECK(cth_local_get(owned) == c);
    CHECK_EQ(set(NULL, &x), CTH_EINVAL);
    CHECK_EQ(cth_local_set(NULL, &x), CTH_EINVAL);
    cth_local_free(owned); /* c */
    CHECK_EQ(atomic_load(&destroyed), 3);
    cth_local_free(plain);
}

CTH_TEST(null_and_bad_arguments)
{
    CHECK_EQ(cth_local_create(NULL, NULL), CTH_EINVAL);
    cth_local_t *l;
    /* test_threading_local.test_arguments: local(1) without a custom
     * __init__ is a TypeError; here init_arg without init. */
    cth_local_opts_t bad = {.init = NULL, .init_arg = &bad};
    CHECK_EQ(cth_local_create(&l, &bad), CTH_EINVAL);
    CHECK(cth_local_get(NULL) == NULL);
    CHECK_EQ(cth_local_set(NULL, &l), CTH_EINVAL);
    CHECK_EQ(cth_local_delete(NULL), CTH_EINVAL);
    CHECK(cth_local_take(NULL) == NULL);
    cth_local_free(NULL);
    /* a local without free_item simply forgets values */
    CHECK_OK(cth_local_create(&l, NULL));
    int x;
    CHECK_OK(cth_local_set(l, &x));
    CHECK_OK(cth_local_set(l, &l));
    CHECK_OK(cth_local_delete(l));
    CHECK_EQ(cth_local_delete(l), CTH_ENOENT);
    CHECK_OK(cth_local_set(l, &x));
    cth_local_free(l);
}

static cth_lock_t gate = CTH_LOCK_INIT;
static atomic_int arrived;

static void *set_then_wait_gate(void *arg)
{
    CHECK_OK(cth_local_set(arg, new_int(7)));
    atomic_fetch_add(&arrived, 1);
    CHECK_OK(cth_lock_acquire(&gate, CTH_FOREVER));
    CHECK_OK(cth_lock_release(&gate));
    return NULL;
}

static void *set_value(void *arg)
{
    CHECK_OK(cth_local_set(arg, new_int(7)));
    return NULL;
}

/* Destructors run exactly once per thread value: at thread exit for that
 * thread's value, at free for the values of threads still alive. */
CTH_TEST(destructor_once_at_exit_and_at_free)
{
    cth_local_t *l, *other;
    atomic_store(&destroyed, 0);
    CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = count_free}));
    CHECK_OK(cth_local_create(&other, &(cth_local_opts_t){.free_item = count_free}));
    run_threads(5, set_value, l);
    CHECK_EQ(atomic_load(&destroyed), 5);

    /* 4 threads alive with a value each of `other`, while it is freed */
    atomic_store(&arrived, 0);
    CHECK_OK(cth_lock_acquire(&gate, CTH_FOREVER));
    cth_thread_t *t[4];
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cth_thread_create(&t[i], set_then_wait_gate, other, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    while (atomic_load(&arrived) < 4)
        cth_sleep(0.001);
    CHECK_OK(cth_local_set(other, new_int(8)));
    cth_local_t *doomed = other;
    cth_local_free(doomed);
    CHECK_EQ(atomic_load(&destroyed), 10); /* 4 threads' + ours, here */
    /* a new local may take the freed slot: the old values never show */
    CHECK_OK(cth_local_create(&other, &(cth_local_opts_t){.free_item = count_free}));
    CHECK(cth_local_get(other) == NULL);
    CHECK_OK(cth_lock_release(&gate));
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    CHECK_EQ(atomic_load(&destroyed), 10); /* nothing destroyed twice at exit */
    cth_local_free(other);
    cth_local_free(l);
    CHECK_EQ(atomic_load(&destroyed), 10);
}

/* test_threading_local.BaseLocalTest.test_local_refs: after 20, 50 and 100
 * short-lived threads set values, every value of a finished thread has been
 * freed (Python allows one straggler; joined threads here leave none). */
CTH_TEST(local_refs)
{
    int counts[] = {20, 50, 100};
    for (int k = 0; k < 3; k++) {
        cth_local_t *l;
        atomic_store(&destroyed, 0);
        CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = count_free}));
        run_threads(counts[k], set_value, l);
        CHECK_EQ(atomic_load(&destroyed), counts[k]);
        cth_local_free(l);
        CHECK_EQ(atomic_load(&destroyed), counts[k]);
    }
}

static atomic_int inits;

static int make_thread_value(void *arg, void **value)
{
    atomic_fetch_add(&inits, 1);
    *value = new_int(*(int *)arg);
    return 0;
}

static void *derived_thread(void *arg)
{
    cth_local_t *l = arg;
    int *v = cth_local_get(l);
    CHECK(v && *v == 42);
    CHECK(cth_local_get(l) == v); /* init ran once in this thread */
    *v = (int)cth_get_native_id();
    cth_sleep(0.001);
    CHECK_EQ(*(int *)cth_local_get(l), (int)cth_get_native_id());
    return NULL;
}

/* test_threading_local.test_derived: a subclass __init__ re-runs with the
 * original arguments in each thread; 10 threads touching the object
 * concurrently each get their own, right value. */
CTH_TEST(derived_init_per_thread)
{
    int arg = 42;
    cth_local_t *l;
    cth_local_opts_t opts = {.free_item = count_free, .init = make_thread_value, .init_arg = &arg};
    atomic_store(&inits, 0);
    atomic_store(&destroyed, 0);
    CHECK_OK(cth_local_create(&l, &opts));
    run_threads(10, derived_thread, l);
    CHECK_EQ(atomic_load(&inits), 10);
    CHECK_EQ(atomic_load(&destroyed), 10);
    /* after delete, the next get initializes again */
    CHECK_EQ(*(int *)cth_local_get(l), 42);
    CHECK_OK(cth_local_delete(l));
    CHECK_EQ(*(int *)cth_local_get(l), 42);
    CHECK_EQ(atomic_load(&inits), 12);
    cth_local_free(l);
    CHECK_EQ(atomic_load(&destroyed), 12);
}

/* Fails with the values of failures[] in turn, then makes 5. */
struct failing {
    const int *failures;
    int n, calls;
};

static int failing_init(void *arg, void **value)
{
    struct failing *f = arg;
    if (f->calls < f->n)
        return f->failures[f->calls++];
    f->calls++;
    *value = new_int(5);
    return 0;
}

/* An initializer's nonzero return is its failure, whatever the sign: the
 * thread is left without a value, get returns NULL with cth_task_error()
 * holding the value unchanged (-1 does not read as CTH_EPERM), and the next
 * get runs init again. Nothing reaches free_item meanwhile. */
CTH_TEST(init_failure_retried)
{
    static const int failures[] = {-1, 7, CTH_ENOMEM};
    struct failing f = {failures, 3, 0};
    cth_local_t *l;
    atomic_store(&destroyed, 0);
    cth_local_opts_t opts = {.free_item = count_free, .init = failing_init, .init_arg = &f};
    CHECK_OK(cth_local_create(&l, &opts));
    for (int i = 0; i < 3; i++) {
        CHECK(cth_local_get(l) == NULL);
        CHECK_EQ(cth_task_error(), failures[i]);
        CHECK_EQ(f.calls, i + 1);
        CHECK_EQ(cth_local_delete(l), CTH_ENOENT); /* no value was stored */
    }
    CHECK_EQ(*(int *)cth_local_get(l), 5);
    CHECK_EQ(cth_task_error(), CTH_ENOMEM); /* a success leaves it alone, as errno */
    CHECK_EQ(f.calls, 4);
    CHECK_EQ(atomic_load(&destroyed), 0);
    cth_local_free(l);
    CHECK_EQ(atomic_load(&destroyed), 1);
}

static int thread_task_error;

static void *init_fails_in_thread(void *arg)
{
    CHECK(cth_local_get(arg) == NULL);
    thread_task_error = cth_task_error();
    return NULL;
}

/* cth_task_error() is the calling thread's: a failure in another thread
 * leaves this thread's alone. */
CTH_TEST(init_failure_is_per_thread)
{
    static const int failures[] = {7};
    struct failing f = {failures, 1, 0};
    cth_local_t *l;
    CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.init = failing_init, .init_arg = &f}));
    int before = cth_task_error();
    run_threads(1, init_fails_in_thread, l);
    CHECK_EQ(thread_task_error, 7);
    CHECK_EQ(cth_task_error(), before);
    int *v = cth_local_get(l); /* the second call succeeds, here */
    CHECK(v && *v == 5);
    free(cth_local_take(l));
    cth_local_free(l);
}

/* The 0.1.0 signatures, checked at compile time: one way to give the free
 * function (opts.free_item), delete's codes. */
_Static_assert(_Generic(&cth_local_create, int (*)(cth_local_t **, const cth_local_opts_t *) : 1,
                        default : 0),
               "cth_local_create(&local, opts)");
_Static_assert(_Generic(((cth_local_opts_t *)0)->free_item, cth_free_fn : 1, default : 0),
               "opts.free_item is a cth_free_fn");
_Static_assert(_Generic(((cth_local_opts_t *)0)->init, cth_local_init_fn : 1, default : 0),
               "opts.init is a cth_local_init_fn");
_Static_assert(_Generic(&cth_local_delete, int (*)(cth_local_t *) : 1, default : 0),
               "int cth_local_delete(cth_local_t *)");

/* No limit on the number of locals beyond memory (pthread keys stop near
 * 1024): 100,000 of them, each with a value in two threads. */
#define MANY 100000
static cth_local_t **many;
/* MANY, or under valgrind (a mutex operation there costs ~0.1 ms) 2,000:
 * still twice the pthread key limit. */
static int many_n;

static void *use_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < many_n; i++)
        CHECK_OK(cth_local_set(many[i], (void *)(intptr_t)(i + 1)));
    for (int i = 0; i < many_n; i++)
        CHECK_EQ((intptr_t)cth_local_get(many[i]), i + 1);
    return NULL;
}

CTH_TEST(hundred_thousand_locals)
{
    many_n = RUNNING_ON_VALGRIND ? 2000 : MANY;
    many = malloc((size_t)many_n * sizeof *many);
    CHECK(many);
    for (int i = 0; i < many_n; i++)
        CHECK_OK(cth_local_create(&many[i], NULL));
    use_many(NULL);
    run_threads(1, use_many, NULL);
    for (int i = 0; i < many_n; i++)
        cth_local_free(many[i]);
    free(many);
}

/* Slots are reused with a new generation: a local created in a freed slot
 * starts empty in every thread, even where the old one had a value. */
CTH_TEST(slot_reuse_generation)
{
    for (int round = 0; round < 100; round++) {
        cth_local_t *a, *b;
        CHECK_OK(cth_local_create(&a, NULL));
        CHECK_OK(cth_local_set(a, &round));
        cth_local_free(a);
        CHECK_OK(cth_local_create(&b, NULL));
        CHECK(cth_local_get(b) == NULL);
        cth_local_free(b);
    }
}

static cth_local_t *second;

static void chained_free(void *p)
{
    /* a destructor that uses another local while its thread exits */
    CHECK_OK(cth_local_set(second, new_int(*(int *)p + 1)));
    count_free(p);
}

/* Destructors may set other locals during thread exit; those values are
 * destroyed too. */
CTH_TEST(destructor_sets_other_local)
{
    cth_local_t *first;
    atomic_store(&destroyed, 0);
    CHECK_OK(cth_local_create(&first, &(cth_local_opts_t){.free_item = chained_free}));
    CHECK_OK(cth_local_create(&second, &(cth_local_opts_t){.free_item = count_free}));
    run_threads(3, set_value, first);
    CHECK_EQ(atomic_load(&destroyed), 6);
    cth_local_free(first);
    cth_local_free(second);
}

static cth_local_t *phoenix;
static atomic_int phoenix_frees;

static void phoenix_free(void *p)
{
    /* sets its own local again, each time (up to 1000: without a cap on
     * the rounds of thread exit, the thread would never end) */
    if (atomic_fetch_add(&phoenix_frees, 1) < 1000)
        CHECK_OK(cth_local_set(phoenix, p));
}

static void *set_phoenix(void *arg)
{
    CHECK_OK(cth_local_set(phoenix, arg));
    return NULL;
}

/* A destructor that sets its own local again runs at most four rounds at
 * thread exit (PTHREAD_DESTRUCTOR_ITERATIONS); the value set in the last
 * one is forgotten. */
CTH_TEST(destructor_rounds_capped)
{
    static int value = 1;
    atomic_store(&phoenix_frees, 0);
    CHECK_OK(cth_local_create(&phoenix, &(cth_local_opts_t){.free_item = phoenix_free}));
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, set_phoenix, &value, NULL));
    CHECK_OK(cth_thread_start(t));
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    CHECK_EQ(atomic_load(&phoenix_frees), 4);
    cth_local_free(phoenix);
    CHECK_EQ(atomic_load(&phoenix_frees), 4); /* the forgotten value is not freed */
}

static void *foreign(void *arg)
{
    CHECK_OK(cth_local_set(arg, new_int(9)));
    CHECK_EQ(*(int *)cth_local_get(arg), 9);
    return NULL;
}

/* A thread cthreading did not create (pthread_create) has its own values,
 * destroyed when it exits. */
CTH_TEST(adopted_thread)
{
    cth_local_t *l;
    atomic_store(&destroyed, 0);
    CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = count_free}));
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, foreign, l));
        CHECK_OK(pthread_join(t, NULL));
    }
    CHECK_EQ(atomic_load(&destroyed), 4);
    cth_local_free(l);
}

static void *set_without_memory(void *arg)
{
    int x;
    cth__fault_alloc_after(0);
    int r = cth_local_set(arg, &x);
    cth__fault_alloc_after(-1);
    CHECK_EQ(r, CTH_ENOMEM);
    CHECK(cth_local_get(arg) == NULL);
    CHECK_OK(cth_local_set(arg, NULL)); /* removing needs no memory */
    return NULL;
}

/* Allocation failure: set reports CTH_ENOMEM and changes nothing; create
 * too. */
CTH_TEST(out_of_memory)
{
    cth_local_t *l;
    cth__fault_alloc_after(0);
    CHECK_EQ(cth_local_create(&l, NULL), CTH_ENOMEM);
    cth__fault_alloc_after(-1);
    CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = count_free}));
    /* a fresh thread has no table: its first set must allocate */
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, set_without_memory, l));
    CHECK_OK(pthread_join(t, NULL));
    /* grow failure in this thread: a local whose slot lies past the table */
    cth_local_t *big[100];
    CHECK_OK(cth_local_set(l, new_int(1)));
    for (int i = 0; i < 100; i++)
        CHECK_OK(cth_local_create(&big[i], NULL));
    cth__fault_alloc_after(0);
    int r = cth_local_set(big[99], &r);
    cth__fault_alloc_after(-1);
    CHECK_EQ(r, CTH_ENOMEM);
    CHECK(cth_local_get(big[99]) == NULL);
    CHECK_OK(cth_local_set(big[99], &r));
    CHECK(cth_local_get(big[99]) == &r);
    for (int i = 0; i < 100; i++)
        cth_local_free(big[i]);
    cth_local_free(l);
}

static void *exit_with_values(void *arg)
{
    cth_local_t **ls = arg;
    for (int i = 0; i < 4; i++)
        CHECK_OK(cth_local_set(ls[i], new_int(i)));
    atomic_fetch_add_explicit(&arrived, 1, memory_order_release);
    return NULL;
}

/* Threads exiting while the locals they used are freed: both sides want to
 * destroy the values; each value is destroyed exactly once (run it under
 * TSan and ASan). */
CTH_TEST(free_races_thread_exit)
{
    long rounds = check_iters(200);
    for (long r = 0; r < rounds; r++) {
        cth_local_t *ls[4];
        atomic_store(&destroyed, 0);
        atomic_store(&arrived, 0);
        for (int i = 0; i < 4; i++)
            CHECK_OK(cth_local_create(&ls[i], &(cth_local_opts_t){.free_item = count_free}));
        cth_thread_t *t[4];
        for (int i = 0; i < 4; i++) {
            CHECK_OK(cth_thread_create(&t[i], exit_with_values, ls, NULL));
            CHECK_OK(cth_thread_start(t[i]));
        }
        /* once every value is set, free the locals while the threads exit */
        while (atomic_load_explicit(&arrived, memory_order_acquire) < 4)
            cth__cpu_relax();
        for (int i = 0; i < 4; i++)
            cth_local_free(ls[i]);
        CHECK_EQ(atomic_load(&destroyed), 16);
        for (int i = 0; i < 4; i++) {
            CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
            cth_thread_free(t[i]);
        }
        CHECK_EQ(atomic_load(&destroyed), 16);
    }
}
