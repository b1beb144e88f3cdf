/* SPDX-License-Identifier: MIT */
/*
 * test_sem.c - Semaphore and BoundedSemaphore, ported from CPython's
 * Lib/test/lock_tests.py (BaseSemaphoreTests, SemaphoreTests,
 * BoundedSemaphoreTests), plus the error cases and interruption.
 */
#include "bunch.h"

/* The 0.1.0 signatures: size_t values and counts. */
_Static_assert(_Generic(&cth_sem_init, int (*)(cth_sem_t *, size_t) : 1, default : 0),
               "cth_sem_init(sem, size_t value)");
_Static_assert(_Generic(&cth_bounded_sem_init, int (*)(cth_sem_t *, size_t) : 1, default : 0),
               "cth_bounded_sem_init(sem, size_t value)");
_Static_assert(_Generic(&cth_sem_release, int (*)(cth_sem_t *, size_t) : 1, default : 0),
               "cth_sem_release(sem, size_t n)");
_Static_assert(_Generic(&cth_sem_value, size_t (*)(const cth_sem_t *) : 1, default : 0),
               "size_t cth_sem_value(const cth_sem_t *)");

/* BaseSemaphoreTests runs for Semaphore and BoundedSemaphore alike: the
 * base tests below are helpers taking the kind, and each has a CTH_TEST
 * per kind. */
static void make(cth_sem_t *s, size_t value, bool bounded)
{
    CHECK_OK(bounded ? cth_bounded_sem_init(s, value) : cth_sem_init(s, value));
}

/* BaseSemaphoreTests.test_constructor: Python's negative initial values
 * cannot be written with a size_t; the value's far end, past the count's
 * 32-bit limit, is CTH_EOVERFLOW and changes nothing. */
CTH_TEST(constructor)
{
    cth_sem_t s = CTH_SEM_INIT(5);
    CHECK_EQ(cth_sem_init(&s, (size_t)INT32_MAX + 1), CTH_EOVERFLOW);
    CHECK_EQ(cth_sem_init(&s, SIZE_MAX), CTH_EOVERFLOW);
    CHECK_EQ(cth_bounded_sem_init(&s, (size_t)INT32_MAX + 1), CTH_EOVERFLOW);
    CHECK_EQ(cth_sem_value(&s), 5);
    CHECK_OK(cth_sem_init(&s, INT32_MAX));
    CHECK_EQ(cth_sem_value(&s), INT32_MAX);
    CHECK_EQ(cth_sem_init(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_bounded_sem_init(NULL, 1), CTH_EINVAL);
    CHECK_OK(cth_sem_init(&s, 1));
    CHECK_OK(cth_sem_init(&s, 0));
    cth_sem_t zero;
    memset(&zero, 0, sizeof zero); /* all-zero: a Semaphore of value 0 */
    CHECK_EQ(cth_sem_value(&zero), 0);
    CHECK_EQ(cth_sem_acquire(&zero, 0), CTH_EAGAIN);
    CHECK_OK(cth_sem_release(&zero, 1));
    CHECK_OK(cth_sem_acquire(&zero, 0));
}

/* BaseSemaphoreTests.test_acquire / test_acquire_destroy. */
static void base_acquire(bool bounded)
{
    cth_sem_t s, s2, s3;
    make(&s, 1, bounded);
    CHECK_OK(cth_sem_acquire(&s, CTH_FOREVER));
    CHECK_OK(cth_sem_release(&s, 1));
    make(&s2, 2, bounded);
    CHECK_OK(cth_sem_acquire(&s2, CTH_FOREVER));
    CHECK_OK(cth_sem_acquire(&s2, CTH_FOREVER));
    CHECK_OK(cth_sem_release(&s2, 1));
    CHECK_OK(cth_sem_release(&s2, 1));
    CHECK_EQ(cth_sem_value(&s2), 2);
    make(&s3, 3, bounded);
    CHECK_OK(cth_sem_acquire(&s3, CTH_FOREVER)); /* destroyed while held: nothing to free */
}
CTH_TEST(acquire)
{
    base_acquire(false);
}
CTH_TEST(bounded_acquire)
{
    base_acquire(true);
}

struct contended {
    cth_sem_t sem;
    cth_lock_t lock;
    int results1[16], n1;
    int results2[16], n2;
    atomic_int phase;
};

static void contended_fn(void *arg)
{
    struct contended *c = arg;
    CHECK_OK(cth_sem_acquire(&c->sem, CTH_FOREVER));
    cth_lock_acquire(&c->lock, CTH_FOREVER);
    c->results1[c->n1++] = atomic_load(&c->phase);
    cth_lock_release(&c->lock);
    CHECK_OK(cth_sem_acquire(&c->sem, CTH_FOREVER));
    cth_lock_acquire(&c->lock, CTH_FOREVER);
    c->results2[c->n2++] = atomic_load(&c->phase);
    cth_lock_release(&c->lock);
}

static int count_total(struct contended *c)
{
    cth_lock_acquire(&c->lock, CTH_FOREVER);
    int n = c->n1 + c->n2;
    cth_lock_release(&c->lock);
    return n;
}

static void wait_total(struct contended *c, int want)
{
    double give_up = check_now() + 10;
    while (count_total(c) < want && check_now() < give_up)
        cth_sleep(0.001);
    settle();
}

/* BaseSemaphoreTests.test_acquire_contended: value 7, 10 threads taking two
 * units each: exactly 6 pass in phase 0 (7 units, one thread already on its
 * second), 7 more after 7 releases, 6 more after 6. */
static void base_acquire_contended(bool bounded)
{
    static struct contended c;
    memset(&c, 0, sizeof c); /* the same storage for both kinds */
    make(&c.sem, 7, bounded);
    CHECK_OK(cth_sem_acquire(&c.sem, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, 10, contended_fn, &c);
    wait_total(&c, 6);
    CHECK_EQ(count_total(&c), 6);
    atomic_store(&c.phase, 1);
    for (int i = 0; i < 7; i++)
        CHECK_OK(cth_sem_release(&c.sem, 1));
    wait_total(&c, 13);
    CHECK_EQ(count_total(&c), 13);
    atomic_store(&c.phase, 2);
    for (int i = 0; i < 6; i++)
        CHECK_OK(cth_sem_release(&c.sem, 1));
    wait_total(&c, 19);
    CHECK_EQ(count_total(&c), 19);
    CHECK_EQ(cth_sem_acquire(&c.sem, 0), CTH_EAGAIN);
    CHECK_OK(cth_sem_release(&c.sem, 1));
    bunch_join(&b);
}
CTH_TEST(acquire_contended)
{
    base_acquire_contended(false);
}
CTH_TEST(bounded_acquire_contended)
{
    base_acquire_contended(true);
}

/* BaseSemaphoreTests.test_multirelease: release(n) admits exactly n. */
static void base_multirelease(bool bounded)
{
    static struct contended c;
    memset(&c, 0, sizeof c); /* the same storage for both kinds */
    make(&c.sem, 7, bounded);
    CHECK_OK(cth_sem_acquire(&c.sem, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, 10, contended_fn, &c);
    wait_total(&c, 6);
    CHECK_EQ(count_total(&c), 6);
    CHECK_OK(cth_sem_release(&c.sem, 7));
    wait_total(&c, 13);
    CHECK_EQ(count_total(&c), 13);
    CHECK_OK(cth_sem_release(&c.sem, 6));
    wait_total(&c, 19);
    CHECK_EQ(count_total(&c), 19);
    CHECK_EQ(cth_sem_acquire(&c.sem, 0), CTH_EAGAIN);
    CHECK_OK(cth_sem_release(&c.sem, 1));
    bunch_join(&b);
    CHECK_EQ(cth_sem_release(&c.sem, 0), CTH_EINVAL); /* "n must be one or more" */
    CHECK_EQ(cth_sem_value(&c.sem), 0);               /* the refused release changed nothing */
    CHECK_EQ(cth_sem_release(&c.sem, SIZE_MAX), bounded ? CTH_EINVAL : CTH_EOVERFLOW);
    CHECK_EQ(cth_sem_value(&c.sem), 0);
}
CTH_TEST(multirelease)
{
    base_multirelease(false);
}
CTH_TEST(bounded_multirelease)
{
    base_multirelease(true);
}

/* BaseSemaphoreTests.test_try_acquire. */
static void base_try_acquire(bool bounded)
{
    cth_sem_t s;
    make(&s, 2, bounded);
    CHECK_OK(cth_sem_acquire(&s, 0));
    CHECK_OK(cth_sem_acquire(&s, 0));
    CHECK_EQ(cth_sem_acquire(&s, 0), CTH_EAGAIN);
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_OK(cth_sem_acquire(&s, 0));
}
CTH_TEST(try_acquire)
{
    base_try_acquire(false);
}
CTH_TEST(bounded_try_acquire)
{
    base_try_acquire(true);
}

static cth_sem_t try_sem;
static atomic_int try_ok, try_fail;

static void try_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++) {
        if (cth_sem_acquire(&try_sem, 0) == 0)
            atomic_fetch_add(&try_ok, 1);
        else
            atomic_fetch_add(&try_fail, 1);
    }
}

/* BaseSemaphoreTests.test_try_acquire_contended: 3 units left, 5 threads
 * trying twice each: exactly 3 succeed. */
static void base_try_acquire_contended(bool bounded)
{
    make(&try_sem, 4, bounded);
    atomic_store(&try_ok, 0);
    atomic_store(&try_fail, 0);
    CHECK_OK(cth_sem_acquire(&try_sem, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, 5, try_fn, NULL);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&try_ok), 3);
    CHECK_EQ(atomic_load(&try_fail), 7);
}
CTH_TEST(try_acquire_contended)
{
    base_try_acquire_contended(false);
}
CTH_TEST(bounded_try_acquire_contended)
{
    base_try_acquire_contended(true);
}

static int sem_acquire_call(void *s, double t)
{
    return cth_sem_acquire(s, t);
}

/* BaseSemaphoreTests.test_acquire_timeout, and the bad timeouts. */
static void base_acquire_timeout(bool bounded)
{
    cth_sem_t s;
    make(&s, 2, bounded);
    check_bad_timeouts(sem_acquire_call, &s);
    CHECK_OK(cth_sem_acquire(&s, 0.005));
    CHECK_OK(cth_sem_acquire(&s, 0.005));
    CHECK_EQ(cth_sem_acquire(&s, 0.005), CTH_ETIMEDOUT);
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_OK(cth_sem_acquire(&s, 0.005));
    double start = check_now();
    CHECK_EQ(cth_sem_acquire(&s, 0.5), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.5);
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_OK(cth_sem_acquire(&s, CTH_TIMEOUT_MAX)); /* exactly TIMEOUT_MAX is fine */
    CHECK_EQ(cth_sem_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_sem_release(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_sem_value(NULL), 0);
}
CTH_TEST(acquire_timeout)
{
    base_acquire_timeout(false);
}
CTH_TEST(bounded_acquire_timeout)
{
    base_acquire_timeout(true);
}

static void default_fn(void *arg)
{
    cth_sem_t *s = arg;
    CHECK_OK(cth_sem_acquire(s, CTH_FOREVER));
    CHECK_OK(cth_sem_release(s, 1));
}

/* BaseSemaphoreTests.test_default_value: value 1 admits one at a time; a
 * thread blocked on it goes once released. */
static void base_default_value(bool bounded)
{
    cth_sem_t s;
    make(&s, 1, bounded);
    CHECK_OK(cth_sem_acquire(&s, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, 1, default_fn, &s);
    settle();
    CHECK_EQ(atomic_load(&b.finished), 0);
    CHECK_OK(cth_sem_release(&s, 1));
    bunch_join(&b);
}
CTH_TEST(default_value)
{
    base_default_value(false);
}
CTH_TEST(bounded_default_value)
{
    base_default_value(true);
}

/* BaseSemaphoreTests.test_with: nested scoped acquires of value 2. */
static void base_with(bool bounded)
{
    cth_sem_t s;
    make(&s, 2, bounded);
    CHECK_OK(cth_sem_acquire(&s, CTH_FOREVER));
    CHECK_OK(cth_sem_acquire(&s, CTH_FOREVER));
    CHECK_EQ(cth_sem_acquire(&s, 0), CTH_EAGAIN);
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_EQ(cth_sem_value(&s), 2);
}
CTH_TEST(with)
{
    base_with(false);
}
CTH_TEST(bounded_with)
{
    base_with(true);
}

/* SemaphoreTests.test_release_unacquired: may pass its initial value. */
CTH_TEST(release_unacquired)
{
    cth_sem_t s = CTH_SEM_INIT(1);
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_EQ(cth_sem_value(&s), 2);
    CHECK_OK(cth_sem_acquire(&s, CTH_FOREVER));
    CHECK_OK(cth_sem_acquire(&s, CTH_FOREVER));
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_OK(cth_sem_release(&s, 1));
    /* Beyond Python: the count stops at INT32_MAX. */
    cth_sem_t big = CTH_SEM_INIT(2147483647);
    CHECK_EQ(cth_sem_release(&big, 1), CTH_EOVERFLOW);
    CHECK_EQ(cth_sem_value(&big), 2147483647);
    cth_sem_t near = CTH_SEM_INIT(1);
    CHECK_EQ(cth_sem_release(&near, (size_t)INT32_MAX), CTH_EOVERFLOW);
    CHECK_EQ(cth_sem_release(&near, (size_t)UINT32_MAX + 2), CTH_EOVERFLOW); /* no wrap */
    CHECK_OK(cth_sem_release(&near, (size_t)INT32_MAX - 1));
    CHECK_EQ(cth_sem_value(&near), INT32_MAX);
}

/* BoundedSemaphoreTests.test_release_unacquired: release beyond the initial
 * value is refused, all or nothing. */
CTH_TEST(bounded_release_unacquired)
{
    cth_sem_t s = CTH_BOUNDED_SEM_INIT(1);
    CHECK_EQ(cth_sem_release(&s, 1), CTH_EINVAL);
    CHECK_OK(cth_sem_acquire(&s, CTH_FOREVER));
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_EQ(cth_sem_release(&s, 1), CTH_EINVAL);
    cth_sem_t s3;
    CHECK_OK(cth_bounded_sem_init(&s3, 3));
    CHECK_OK(cth_sem_acquire(&s3, 0));
    CHECK_OK(cth_sem_acquire(&s3, 0));
    CHECK_EQ(cth_sem_release(&s3, 3), CTH_EINVAL); /* 1 + 3 > 3: nothing changes */
    CHECK_EQ(cth_sem_value(&s3), 1);
    CHECK_OK(cth_sem_release(&s3, 2));
    CHECK_EQ(cth_sem_value(&s3), 3);
}

/* Semaphore / BoundedSemaphore test_repr: the value a repr would show. */
CTH_TEST(value)
{
    cth_sem_t s = CTH_SEM_INIT(3);
    CHECK_EQ(cth_sem_value(&s), 3);
    CHECK_OK(cth_sem_acquire(&s, 0));
    CHECK_EQ(cth_sem_value(&s), 2);
}

static int sem_wait_forever(void *s)
{
    return cth_sem_acquire(s, CTH_FOREVER);
}

/* The main thread blocked in acquire wakes with CTH_EINTR. */
CTH_TEST(interrupt_main)
{
    cth_sem_t s = CTH_SEM_INIT(0);
    check_interrupted(sem_wait_forever, &s);
    CHECK_EQ(cth_sem_value(&s), 0);
}

static void sem_acquire_fn(void *arg)
{
    CHECK_OK(cth_sem_acquire(arg, CTH_FOREVER));
}

static void sem_release_fn(void *arg)
{
    CHECK_OK(cth_sem_release(arg, 1));
}

/* test_threading's test_BoundedSemaphore_limit: for limits 1..9, N threads
 * acquire, then N threads release, then one release more is refused. */
CTH_TEST(bounded_limit)
{
    for (int limit = 1; limit < 10; limit++) {
        cth_sem_t s;
        CHECK_OK(cth_bounded_sem_init(&s, limit));
        struct bunch b;
        bunch_start(&b, limit, sem_acquire_fn, &s);
        bunch_join(&b);
        CHECK_EQ(cth_sem_value(&s), 0);
        bunch_start(&b, limit, sem_release_fn, &s);
        bunch_join(&b);
        CHECK_EQ(cth_sem_value(&s), limit);
        CHECK_EQ(cth_sem_release(&s, 1), CTH_EINVAL);
        CHECK_EQ(cth_sem_value(&s), limit);
    }
}

/* BoundedSemaphoreTests.test_constructor (BaseSemaphoreTests'): Python's
 * -1 and -sys.maxsize have no size_t; values past the 32-bit limit are
 * refused with CTH_EOVERFLOW; 0 and the limit itself are fine. */
CTH_TEST(bounded_constructor)
{
    cth_sem_t s;
    CHECK_EQ(cth_bounded_sem_init(&s, (size_t)INT32_MAX + 1), CTH_EOVERFLOW);
    CHECK_EQ(cth_bounded_sem_init(&s, SIZE_MAX), CTH_EOVERFLOW);
    CHECK_OK(cth_bounded_sem_init(&s, INT32_MAX));
    CHECK_EQ(cth_sem_release(&s, 1), CTH_EINVAL); /* at its bound */
    CHECK_OK(cth_bounded_sem_init(&s, 0));
    CHECK_EQ(cth_sem_value(&s), 0);
    CHECK_EQ(cth_sem_acquire(&s, 0), CTH_EAGAIN);
    CHECK_EQ(cth_sem_release(&s, 1), CTH_EINVAL); /* bound 0 */
}

/* BoundedSemaphoreTests.test_repr: "value=3/3", then "value=2/3" after an
 * acquire, as cth_sem_value reads it (the bound has no getter); and
 * SemaphoreTests.test_repr's "value=4" after two releases. */
CTH_TEST(bounded_value)
{
    cth_sem_t s = CTH_BOUNDED_SEM_INIT(3);
    CHECK_EQ(cth_sem_value(&s), 3);
    CHECK_OK(cth_sem_acquire(&s, 0));
    CHECK_EQ(cth_sem_value(&s), 2);
    CHECK_OK(cth_sem_release(&s, 1));
    CHECK_EQ(cth_sem_release(&s, 1), CTH_EINVAL);
    CHECK_EQ(cth_sem_value(&s), 3);
    cth_sem_t u = CTH_SEM_INIT(3);
    CHECK_OK(cth_sem_acquire(&u, 0));
    CHECK_OK(cth_sem_release(&u, 1));
    CHECK_OK(cth_sem_release(&u, 1));
    CHECK_EQ(cth_sem_value(&u), 4);
}

/* A timed acquire keeps one deadline across its wake-ups
 * (docs/python-semantics.md, Semaphore): woken early again and again by
 * signals, acquire(0.2) on an empty semaphore still times out, after at
 * least 0.2 s. */
static void check_sem_deadline(bool bounded)
{
    static cth_sem_t s;
    make(&s, 0, bounded);
    check_deadline_under_signals(sem_acquire_call, &s, 0.2);
    CHECK_EQ(cth_sem_value(&s), 0);
}
CTH_TEST(acquire_timeout_is_a_deadline)
{
    check_sem_deadline(false);
}
CTH_TEST(bounded_acquire_timeout_is_a_deadline)
{
    check_sem_deadline(true);
}
