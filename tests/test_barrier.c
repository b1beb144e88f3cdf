/* SPDX-License-Identifier: MIT */
/*
 * test_barrier.c - Barrier, ported from CPython's Lib/test/lock_tests.py
 * (BarrierTests, N = 5 threads), plus the error cases and interruption.
 */
#include "bunch.h"

#define N 5

/* The 0.1.0 signatures: size_t parties and counts. */
_Static_assert(_Generic(&cth_barrier_init,
                        int (*)(cth_barrier_t *, size_t, cth_barrier_action_fn, void *, double) : 1,
                        default : 0),
               "cth_barrier_init(barrier, size_t parties, action, arg, default_timeout)");
_Static_assert(_Generic(&cth_barrier_parties, size_t (*)(const cth_barrier_t *) : 1, default : 0),
               "size_t cth_barrier_parties(const cth_barrier_t *)");
_Static_assert(_Generic(&cth_barrier_n_waiting, size_t (*)(const cth_barrier_t *) : 1, default : 0),
               "size_t cth_barrier_n_waiting(const cth_barrier_t *)");

static cth_barrier_t bar;

/* BarrierTests.test_constructor: parties 0 (Python's -1 has no size_t;
 * parties past INT_MAX are CTH_EOVERFLOW), bad default timeouts. */
CTH_TEST(constructor)
{
    cth_barrier_t b;
    CHECK_EQ(cth_barrier_init(&b, 0, NULL, NULL, CTH_FOREVER), CTH_EINVAL);
    CHECK_EQ(cth_barrier_init(&b, (size_t)INT32_MAX + 1, NULL, NULL, CTH_FOREVER), CTH_EOVERFLOW);
    CHECK_EQ(cth_barrier_init(&b, SIZE_MAX, NULL, NULL, CTH_FOREVER), CTH_EOVERFLOW);
    CHECK_EQ(cth_barrier_init(NULL, 1, NULL, NULL, CTH_FOREVER), CTH_EINVAL);
    CHECK_EQ(cth_barrier_init(&b, 1, NULL, NULL, -3), CTH_EINVAL);
    CHECK_EQ(cth_barrier_init(&b, 1, NULL, NULL, NAN), CTH_EINVAL);
    CHECK_EQ(cth_barrier_init(&b, 1, NULL, NULL, INFINITY), CTH_EOVERFLOW);
    CHECK_OK(cth_barrier_init(&b, INT32_MAX, NULL, NULL, CTH_FOREVER));
    CHECK_EQ(cth_barrier_parties(&b), INT32_MAX);
    CHECK_OK(cth_barrier_init(&b, 3, NULL, NULL, 1.5));
    CHECK_EQ(cth_barrier_parties(&b), 3);
    CHECK_EQ(cth_barrier_n_waiting(&b), 0);
    CHECK(!cth_barrier_broken(&b));
    cth_barrier_t s = CTH_BARRIER_INIT(4);
    CHECK_EQ(cth_barrier_parties(&s), 4);
    /* All-zero storage (parties 0) is refused, never used. */
    cth_barrier_t z;
    memset(&z, 0, sizeof z);
    CHECK_EQ(cth_barrier_wait(&z, 0), CTH_EINVAL);
    CHECK_EQ(cth_barrier_reset(&z), CTH_EINVAL);
    CHECK_EQ(cth_barrier_abort(&z), CTH_EINVAL);
    CHECK_EQ(cth_barrier_parties(&z), 0);
    CHECK_EQ(cth_barrier_wait(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_barrier_reset(NULL), CTH_EINVAL);
    CHECK_EQ(cth_barrier_abort(NULL), CTH_EINVAL);
    CHECK_EQ(cth_barrier_parties(NULL), 0);
    CHECK_EQ(cth_barrier_n_waiting(NULL), 0);
    CHECK(!cth_barrier_broken(NULL));
}

static int barrier_wait_call(void *b, double t)
{
    return cth_barrier_wait(b, t);
}

/* Bad timeouts are refused before the barrier is touched. */
CTH_TEST(bad_timeouts)
{
    cth_barrier_t b = CTH_BARRIER_INIT(2);
    check_bad_timeouts(barrier_wait_call, &b);
    CHECK_EQ(cth_barrier_n_waiting(&b), 0);
    CHECK(!cth_barrier_broken(&b));
}

static int cycles;
static atomic_int phase_count[20];

static void multipass_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < cycles; i++) {
        atomic_fetch_add(&phase_count[2 * i], 1);
        int r = cth_barrier_wait(&bar, CTH_BARRIER_DEFAULT_TIMEOUT);
        CHECK(r >= 0 && r < N);
        CHECK_EQ(atomic_load(&phase_count[2 * i]), N);
        CHECK_EQ(atomic_load(&phase_count[2 * i + 1]), 0);
        r = cth_barrier_wait(&bar, CTH_BARRIER_DEFAULT_TIMEOUT);
        CHECK(r >= 0);
        atomic_fetch_add(&phase_count[2 * i + 1], 1);
        r = cth_barrier_wait(&bar, CTH_BARRIER_DEFAULT_TIMEOUT);
        CHECK(r >= 0);
        CHECK_EQ(atomic_load(&phase_count[2 * i + 1]), N);
    }
    CHECK_EQ(cth_barrier_wait(&bar, CTH_BARRIER_DEFAULT_TIMEOUT) >= 0, 1);
    CHECK(!cth_barrier_broken(&bar));
}

static void run_multipass(int n)
{
    CHECK_OK(cth_barrier_init(&bar, N, NULL, NULL, CTH_FOREVER));
    cycles = n;
    for (int i = 0; i < 20; i++)
        atomic_store(&phase_count[i], 0); /* as results_reset, below */
    struct bunch b;
    bunch_start(&b, N, multipass_fn, NULL);
    bunch_join(&b);
    CHECK_EQ(cth_barrier_n_waiting(&bar), 0);
    CHECK(!cth_barrier_broken(&bar));
}

/* BarrierTests.test_barrier: 5 threads in lockstep for one cycle. */
CTH_TEST(barrier)
{
    run_multipass(1);
}

/* BarrierTests.test_barrier_10: ten cycles. */
CTH_TEST(barrier_10)
{
    run_multipass(10);
}

static atomic_int seen[N];

static void wait_return_fn(void *arg)
{
    (void)arg;
    int r = cth_barrier_wait(&bar, CTH_FOREVER);
    CHECK(r >= 0 && r < N);
    atomic_fetch_add(&seen[r], 1);
}

/* BarrierTests.test_wait_return: the indices are exactly {0..N-1}. */
CTH_TEST(wait_return)
{
    CHECK_OK(cth_barrier_init(&bar, N, NULL, NULL, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, N, wait_return_fn, NULL);
    bunch_join(&b);
    for (int i = 0; i < N; i++)
        CHECK_EQ(atomic_load(&seen[i]), 1);
}

static atomic_int action_runs, released_before_action;
static atomic_int passed;

static int action(void *arg)
{
    CHECK(arg == &bar);
    CHECK_EQ(atomic_load(&passed), 0); /* before anyone is released */
    CHECK_EQ(cth_barrier_n_waiting(&bar), N);
    atomic_fetch_add(&action_runs, 1);
    return 0;
}

static void action_fn(void *arg)
{
    (void)arg;
    int r = cth_barrier_wait(&bar, CTH_FOREVER);
    CHECK(r >= 0);
    atomic_fetch_add(&passed, 1);
    if (atomic_load(&action_runs) != 1)
        atomic_fetch_add(&released_before_action, 1);
}

/* BarrierTests.test_action: the action runs exactly once, before anyone is
 * released. */
CTH_TEST(action)
{
    CHECK_OK(cth_barrier_init(&bar, N, action, &bar, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, N, action_fn, NULL);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&action_runs), 1);
    CHECK_EQ(atomic_load(&released_before_action), 0);
}

static atomic_int broken_count, ok_count, task_count;
static cth_barrier_t bar2;

/* An action failing with the value at arg. */
static int failing_action(void *arg)
{
    return *(int *)arg;
}

static void failing_fn(void *arg)
{
    int r = cth_barrier_wait(&bar, CTH_FOREVER);
    if (r == CTH_EBROKEN) {
        atomic_fetch_add(&broken_count, 1);
    } else if (r == CTH_ETASK) {
        CHECK_EQ(cth_task_error(), *(int *)arg); /* the action's value, unchanged */
        atomic_fetch_add(&task_count, 1);
    } else {
        atomic_fetch_add(&ok_count, 1);
    }
}

/* BarrierTests.test_action_exception: a failing action breaks the barrier;
 * its thread gets CTH_ETASK with the action's value in cth_task_error()
 * (Python re-raises the exception there), the others CTH_EBROKEN. Any
 * nonzero value is a failure: negative, positive, or one that looks like a
 * library code. */
static void check_action_fails(int value)
{
    atomic_store(&broken_count, 0);
    atomic_store(&ok_count, 0);
    atomic_store(&task_count, 0);
    CHECK_OK(cth_barrier_init(&bar, N, failing_action, &value, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, N, failing_fn, &value);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&task_count), 1);
    CHECK_EQ(atomic_load(&broken_count), N - 1);
    CHECK_EQ(atomic_load(&ok_count), 0);
    CHECK(cth_barrier_broken(&bar));
    CHECK_EQ(cth_barrier_wait(&bar, CTH_FOREVER), CTH_EBROKEN);
}

CTH_TEST(action_fails)
{
    check_action_fails(-1);
    check_action_fails(5);
    check_action_fails(CTH_EBROKEN);
    /* One party: the waiter is the action's thread. */
    cth_barrier_t one;
    int value = 7;
    CHECK_OK(cth_barrier_init(&one, 1, failing_action, &value, CTH_FOREVER));
    CHECK_EQ(cth_barrier_wait(&one, 0), CTH_ETASK);
    CHECK_EQ(cth_task_error(), 7);
    CHECK_EQ(cth_barrier_wait(&one, 0), CTH_EBROKEN);
    CHECK_EQ(cth_task_error(), 7); /* other returns leave it alone */
    CHECK_OK(cth_barrier_reset(&one));
    value = 0; /* the action succeeds now */
    CHECK_EQ(cth_barrier_wait(&one, 0), 0);
}

static atomic_int results1, results2, results3;

/* The tests may also run one after another in one process (no argument). */
static void results_reset(void)
{
    atomic_store(&results1, 0);
    atomic_store(&results2, 0);
    atomic_store(&results3, 0);
}

static void abort_fn(void *arg)
{
    (void)arg;
    int i = cth_barrier_wait(&bar, CTH_FOREVER);
    CHECK(i >= 0 || i == CTH_EBROKEN);
    if (i == N - 1) {
        CHECK_OK(cth_barrier_abort(&bar));
        return;
    }
    if (i == CTH_EBROKEN) {
        atomic_fetch_add(&results2, 1);
        return;
    }
    CHECK_EQ(cth_barrier_wait(&bar, CTH_FOREVER), CTH_EBROKEN);
    atomic_fetch_add(&results2, 1);
}

/* BarrierTests.test_abort: an abort from one thread gives the other N-1
 * CTH_EBROKEN, and the barrier is broken. */
CTH_TEST(abort)
{
    results_reset();
    CHECK_OK(cth_barrier_init(&bar, N, NULL, NULL, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, N, abort_fn, NULL);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&results2), N - 1);
    CHECK(cth_barrier_broken(&bar));
}

static void reset_fn(void *arg)
{
    (void)arg;
    int i = cth_barrier_wait(&bar, CTH_FOREVER);
    CHECK(i >= 0);
    if (i == N - 1) {
        /* Wait until the other threads are all in the barrier again. */
        while (cth_barrier_n_waiting(&bar) < N - 1)
            cth_sleep(0.001);
        CHECK_OK(cth_barrier_reset(&bar));
    } else {
        CHECK_EQ(cth_barrier_wait(&bar, CTH_FOREVER), CTH_EBROKEN);
        atomic_fetch_add(&results1, 1);
    }
    /* Now, pass the barrier again. */
    CHECK(cth_barrier_wait(&bar, CTH_FOREVER) >= 0);
    atomic_fetch_add(&results3, 1);
}

/* BarrierTests.test_reset: a reset while N-1 wait gives them CTH_EBROKEN,
 * and all N then pass again. */
CTH_TEST(reset)
{
    CHECK_OK(cth_barrier_init(&bar, N, NULL, NULL, CTH_FOREVER));
    results_reset();
    struct bunch b;
    bunch_start(&b, N, reset_fn, NULL);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&results1), N - 1);
    CHECK_EQ(atomic_load(&results3), N);
    CHECK(!cth_barrier_broken(&bar));
}

static void abort_and_reset_fn(void *arg)
{
    (void)arg;
    int i = cth_barrier_wait(&bar, CTH_FOREVER);
    CHECK(i >= 0);
    if (i == N - 1) {
        CHECK_OK(cth_barrier_abort(&bar));
    } else {
        CHECK_EQ(cth_barrier_wait(&bar, CTH_FOREVER), CTH_EBROKEN);
        atomic_fetch_add(&results1, 1);
    }
    /* Synchronize and reset the barrier: the helper barrier bar2 is used. */
    if (cth_barrier_wait(&bar2, CTH_FOREVER) == N - 1)
        CHECK_OK(cth_barrier_reset(&bar));
    cth_barrier_wait(&bar2, CTH_FOREVER);
    /* Now, pass the barrier again. */
    CHECK(cth_barrier_wait(&bar, CTH_FOREVER) >= 0);
    atomic_fetch_add(&results3, 1);
}

/* BarrierTests.test_abort_and_reset: a broken barrier is reset and reused. */
CTH_TEST(abort_and_reset)
{
    results_reset();
    CHECK_OK(cth_barrier_init(&bar, N, NULL, NULL, CTH_FOREVER));
    CHECK_OK(cth_barrier_init(&bar2, N, NULL, NULL, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, N, abort_and_reset_fn, NULL);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&results1), N - 1);
    CHECK_EQ(atomic_load(&results3), N);
    CHECK(!cth_barrier_broken(&bar));
}

static atomic_int arrivals;

static void timeout_fn(void *arg)
{
    double timeout = *(double *)arg;
    int order = atomic_fetch_add(&arrivals, 1);
    if (order == N / 2)
        cth_sleep(0.3); /* one thread is late: the others time out */
    double start = check_now();
    int r = cth_barrier_wait(&bar, timeout);
    CHECK_EQ(r, CTH_EBROKEN);
    if (order != N / 2)
        CHECK(check_now() - start < 60);
}

/* BarrierTests.test_timeout: a per-call timeout breaks the barrier for
 * everyone. */
CTH_TEST(timeout)
{
    CHECK_OK(cth_barrier_init(&bar, N, NULL, NULL, CTH_FOREVER));
    atomic_store(&arrivals, 0);
    double t = 0.1;
    struct bunch b;
    bunch_start(&b, N, timeout_fn, &t);
    bunch_join(&b);
    CHECK(cth_barrier_broken(&bar));
}

/* BarrierTests.test_default_timeout: the barrier's own timeout, used when
 * the wait asks for the default. */
CTH_TEST(default_timeout)
{
    CHECK_OK(cth_barrier_init(&bar, N, NULL, NULL, 0.1));
    atomic_store(&arrivals, 0);
    double t = CTH_BARRIER_DEFAULT_TIMEOUT;
    struct bunch b;
    bunch_start(&b, N, timeout_fn, &t);
    bunch_join(&b);
    CHECK(cth_barrier_broken(&bar));
    /* A lone waiter with a timeout of its own breaks it after that long. */
    CHECK_OK(cth_barrier_reset(&bar));
    double start = check_now();
    CHECK_EQ(cth_barrier_wait(&bar, 0.2), CTH_EBROKEN);
    CHECK_WAITED_AT_LEAST(start, 0.2);
    CHECK(cth_barrier_broken(&bar));
}

/* BarrierTests.test_single_thread: parties=1 never blocks. */
CTH_TEST(single_thread)
{
    cth_barrier_t b = CTH_BARRIER_INIT(1);
    CHECK_EQ(cth_barrier_wait(&b, CTH_FOREVER), 0);
    CHECK_EQ(cth_barrier_wait(&b, 0), 0);
    CHECK_EQ(cth_barrier_n_waiting(&b), 0);
}

static cth_barrier_t repr_bar = CTH_BARRIER_INIT(3);

static void repr_fn(void *arg)
{
    (void)arg;
    cth_barrier_wait(&repr_bar, CTH_FOREVER);
}

/* BarrierTests.test_repr: "waiters=k/N" and "broken", as the getters. */
CTH_TEST(repr)
{
    CHECK_EQ(cth_barrier_n_waiting(&repr_bar), 0);
    struct bunch b;
    bunch_start(&b, 2, repr_fn, NULL);
    while (cth_barrier_n_waiting(&repr_bar) < 2)
        cth_sleep(0.001);
    CHECK_EQ(cth_barrier_n_waiting(&repr_bar), 2);
    CHECK_EQ(cth_barrier_wait(&repr_bar, CTH_FOREVER), 2);
    bunch_join(&b);
    CHECK_EQ(cth_barrier_n_waiting(&repr_bar), 0);
    CHECK_OK(cth_barrier_abort(&repr_bar));
    CHECK(cth_barrier_broken(&repr_bar));
    CHECK_EQ(cth_barrier_wait(&repr_bar, 0), CTH_EBROKEN);
    CHECK_OK(cth_barrier_reset(&repr_bar));
    CHECK(!cth_barrier_broken(&repr_bar));
}

static int barrier_wait_forever(void *b)
{
    return cth_barrier_wait(b, CTH_FOREVER);
}

/* The main thread blocked in wait wakes with CTH_EINTR, which breaks the
 * barrier for the others. */
CTH_TEST(interrupt_main)
{
    cth_barrier_t b = CTH_BARRIER_INIT(2);
    check_interrupted(barrier_wait_forever, &b);
    CHECK(cth_barrier_broken(&b));
    CHECK_EQ(cth_barrier_n_waiting(&b), 0);
}

#define THOUSAND 1000
static cth_barrier_t kbar;
static atomic_int kpass[N]; /* the pass each thread is in */
static atomic_int knext;

static void thousand_fn(void *arg)
{
    (void)arg;
    int me = atomic_fetch_add(&knext, 1);
    for (int i = 0; i < THOUSAND; i++) {
        atomic_store(&kpass[me], i);
        /* Strict order: nobody is more than one pass ahead or behind. */
        for (int j = 0; j < N; j++) {
            int other = atomic_load(&kpass[j]);
            CHECK(other >= i - 1 && other <= i + 1);
        }
        CHECK(cth_barrier_wait(&kbar, CTH_FOREVER) >= 0);
    }
}

/* _TestBarrier.test_thousand (multiprocessing, threads): 1000 passes with
 * N threads, in strict order. */
CTH_TEST(thousand)
{
    CHECK_OK(cth_barrier_init(&kbar, N, NULL, NULL, CTH_FOREVER));
    struct bunch b;
    for (int i = 0; i < N; i++)
        atomic_store(&kpass[i], 0);
    atomic_store(&knext, 0);
    bunch_start(&b, N, thousand_fn, NULL);
    bunch_join(&b);
    CHECK_EQ(cth_barrier_n_waiting(&kbar), 0);
    CHECK(!cth_barrier_broken(&kbar));
}

/* The failing action of spec 1.11 ("if the action raises, the barrier
 * breaks"), for an action that fails with a positive value: a failure like
 * any other (CTH_ETASK in its thread, with the value; CTH_EBROKEN in the
 * others, not a success); the barrier stays broken until reset. */
CTH_TEST(action_fails_positive)
{
    check_action_fails(1);
    CHECK_EQ(cth_barrier_n_waiting(&bar), 0);
    CHECK_EQ(cth_barrier_wait(&bar, 0), CTH_EBROKEN);
    CHECK_OK(cth_barrier_reset(&bar));
    CHECK(!cth_barrier_broken(&bar));
}
