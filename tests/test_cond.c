/* SPDX-License-Identifier: MIT */
/*
 * test_cond.c - Condition, ported from CPython's Lib/test/lock_tests.py
 * (ConditionTests), plus the error cases and interruption.
 */
#include <sched.h>
#include <sys/resource.h>

#include "bunch.h"

/* The 0.1.0 signatures: a cth_cond_predicate_fn, notify's size_t count. */
_Static_assert(_Generic(&cth_cond_wait_for,
                        int (*)(cth_cond_t *, cth_cond_predicate_fn, void *, double) : 1,
                        default : 0),
               "cth_cond_wait_for(cond, predicate, arg, timeout)");
_Static_assert(_Generic(&cth_cond_notify, int (*)(cth_cond_t *, size_t) : 1, default : 0),
               "cth_cond_notify(cond, size_t n)");

/* ConditionTests.test_acquire: the default lock is recursive; with an
 * explicit Lock, the condition drives that lock. */
CTH_TEST(acquire)
{
    cth_cond_t c = CTH_COND_INIT;
    CHECK_OK(cth_cond_acquire(&c, CTH_FOREVER));
    CHECK_OK(cth_cond_acquire(&c, CTH_FOREVER));
    CHECK_OK(cth_cond_release(&c));
    CHECK_OK(cth_cond_release(&c));
    CHECK_EQ(cth_cond_release(&c), CTH_EPERM);
    cth_lock_t l = CTH_LOCK_INIT;
    cth_cond_t c2 = CTH_COND_INIT_LOCK(&l);
    CHECK_OK(cth_cond_acquire(&c2, 0));
    CHECK(cth_lock_locked(&l));
    CHECK_EQ(cth_cond_acquire(&c2, 0), CTH_EAGAIN);
    CHECK_OK(cth_cond_release(&c2));
    CHECK(!cth_lock_locked(&l));
    cth_rlock_t r = CTH_RLOCK_INIT;
    cth_cond_t c3;
    CHECK_OK(cth_cond_init_rlock(&c3, &r));
    CHECK_OK(cth_cond_acquire(&c3, 0));
    CHECK(cth_rlock_is_owned(&r));
    CHECK_OK(cth_cond_release(&c3));
    cth_cond_t c4;
    CHECK_OK(cth_cond_init(&c4, &l));
    CHECK_OK(cth_cond_acquire(&c4, 0));
    CHECK(cth_lock_locked(&l));
    CHECK_OK(cth_cond_release(&c4));
}

/* ConditionTests.test_unacquired_wait / test_unacquired_notify, and NULL. */
CTH_TEST(unacquired)
{
    cth_cond_t c = CTH_COND_INIT;
    CHECK_EQ(cth_cond_wait(&c, 0), CTH_EPERM);
    CHECK_EQ(cth_cond_notify(&c, 1), CTH_EPERM);
    CHECK_EQ(cth_cond_notify_all(&c), CTH_EPERM);
    cth_lock_t l = CTH_LOCK_INIT;
    cth_cond_t c2 = CTH_COND_INIT_LOCK(&l);
    CHECK_EQ(cth_cond_wait(&c2, 0), CTH_EPERM);
    CHECK_EQ(cth_cond_notify(&c2, 1), CTH_EPERM);
    CHECK_EQ(cth_cond_init(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_cond_init_rlock(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_cond_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_cond_release(NULL), CTH_EINVAL);
    CHECK_EQ(cth_cond_wait(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_cond_notify(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_cond_notify_all(NULL), CTH_EINVAL);
    CHECK_EQ(cth_cond_wait_for(NULL, NULL, NULL, 0), CTH_EINVAL);
    CHECK_OK(cth_cond_acquire(&c, 0));
    CHECK_EQ(cth_cond_wait_for(&c, NULL, NULL, 0), CTH_EINVAL);
    CHECK_OK(cth_cond_release(&c));
}

static int cond_wait_call(void *c, double t)
{
    return cth_cond_wait(c, t);
}

/* Bad timeouts; timeout 0 just checks; an RLock held twice is restored. */
CTH_TEST(timeouts)
{
    cth_cond_t c = CTH_COND_INIT;
    CHECK_OK(cth_cond_acquire(&c, 0));
    CHECK_OK(cth_cond_acquire(&c, 0));
    check_bad_timeouts(cond_wait_call, &c);
    CHECK_EQ(cth_cond_wait(&c, 0), CTH_ETIMEDOUT);
    double start = check_now();
    CHECK_EQ(cth_cond_wait(&c, 0.05), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.05);
    CHECK_EQ(cth_rlock_recursion_count(&c._own), 2);
    CHECK_OK(cth_cond_notify(&c, 1)); /* nobody waits: nothing to do */
    CHECK_OK(cth_cond_notify(&c, 0));
    CHECK_OK(cth_cond_release(&c));
    CHECK_OK(cth_cond_release(&c));
}

static cth_lock_t notify_lock;
static cth_cond_t ncond_lock = CTH_COND_INIT_LOCK(&notify_lock);
static cth_cond_t *ncond = &ncond_lock; /* the condition check_notify runs on */
static atomic_int phase_num, ready;
static cth_lock_t res_lock;
static int results1[16], n1, results2[16], n2;

static void notify_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_cond_acquire(ncond, CTH_FOREVER));
    atomic_fetch_add(&ready, 1);
    CHECK_OK(cth_cond_wait(ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_release(ncond));
    cth_lock_acquire(&res_lock, CTH_FOREVER);
    results1[n1++] = atomic_load(&phase_num);
    cth_lock_release(&res_lock);
    CHECK_OK(cth_cond_acquire(ncond, CTH_FOREVER));
    atomic_fetch_add(&ready, 1);
    CHECK_OK(cth_cond_wait(ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_release(ncond));
    cth_lock_acquire(&res_lock, CTH_FOREVER);
    results2[n2++] = atomic_load(&phase_num);
    cth_lock_release(&res_lock);
}

static void wait_results(int *n, int want)
{
    double give_up = check_now() + 10;
    for (;;) {
        cth_lock_acquire(&res_lock, CTH_FOREVER);
        int have = *n;
        cth_lock_release(&res_lock);
        if (have >= want || check_now() > give_up)
            break;
        cth_sleep(0.001);
    }
    settle(); /* and no more than that */
    cth_lock_acquire(&res_lock, CTH_FOREVER);
    CHECK_EQ(*n, want);
    cth_lock_release(&res_lock);
}

static void check_notify(cth_cond_t *cond)
{
    ncond = cond;
    n1 = n2 = 0;
    atomic_store(&ready, 0);
    atomic_store(&phase_num, 0);
    struct bunch b;
    bunch_start(&b, 5, notify_fn, NULL);
    wait_until(&ready, 5); /* all 5 are in wait (they hold the lock until then) */
    cth_cond_acquire(ncond, CTH_FOREVER);
    cth_cond_release(ncond);
    CHECK_EQ(n1, 0);
    /* notify 3: exactly 3 wake */
    atomic_store(&phase_num, 1);
    CHECK_OK(cth_cond_acquire(ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(ncond, 3));
    CHECK_OK(cth_cond_release(ncond));
    wait_results(&n1, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(results1[i], 1);
    wait_until(&ready, 8);
    /* notify 5: the 2 left of the first wait and 3 of the second */
    atomic_store(&phase_num, 2);
    CHECK_OK(cth_cond_acquire(ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(ncond, 5));
    CHECK_OK(cth_cond_release(ncond));
    wait_results(&n1, 5);
    wait_results(&n2, 3);
    wait_until(&ready, 10);
    /* notify_all: the last 2 */
    atomic_store(&phase_num, 3);
    CHECK_OK(cth_cond_acquire(ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_notify_all(ncond));
    CHECK_OK(cth_cond_release(ncond));
    wait_results(&n2, 5);
    bunch_join(&b);
    for (int i = 3; i < 5; i++)
        CHECK_EQ(results1[i], 2);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(results2[i], 2);
    for (int i = 3; i < 5; i++)
        CHECK_EQ(results2[i], 3);
}

/* ConditionTests.test_notify: notify(3), notify(5), notify_all wake exactly
 * that many, each wait returns success; run twice. */
CTH_TEST(notify)
{
    check_notify(&ncond_lock);
    check_notify(&ncond_lock);
}

static cth_cond_t ncond_default = CTH_COND_INIT;

/* ConditionTests.test_notify as Python runs it: on Condition(), whose lock
 * is an RLock of its own (the test above uses an explicit Lock). */
CTH_TEST(notify_default_rlock)
{
    check_notify(&ncond_default);
    check_notify(&ncond_default);
}

static cth_cond_t tcond = CTH_COND_INIT;

static void timeout_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_cond_acquire(&tcond, CTH_FOREVER));
    double start = check_now();
    CHECK_EQ(cth_cond_wait(&tcond, 0.5), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.5);
    CHECK(cth_rlock_is_owned(&tcond._own));
    CHECK_OK(cth_cond_release(&tcond));
}

/* ConditionTests.test_timeout: 5 threads wait(0.5): each times out after at
 * least 0.5 s. */
CTH_TEST(timeout)
{
    struct bunch b;
    bunch_start(&b, 5, timeout_fn, NULL);
    bunch_join(&b);
}

static cth_cond_t wcond = CTH_COND_INIT;
static int state;

static bool state_is_4(void *arg)
{
    (void)arg;
    return state == 4;
}

static void waitfor_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_cond_acquire(&wcond, CTH_FOREVER));
    CHECK_OK(cth_cond_wait_for(&wcond, state_is_4, NULL, CTH_FOREVER));
    CHECK_EQ(state, 4);
    CHECK_OK(cth_cond_release(&wcond));
}

/* ConditionTests.test_waitfor: true (0) once 4 notify steps satisfy the
 * predicate. */
CTH_TEST(waitfor)
{
    struct bunch b;
    bunch_start(&b, 1, waitfor_fn, NULL);
    for (int i = 0; i < 4; i++) {
        cth_sleep(0.01);
        CHECK_OK(cth_cond_acquire(&wcond, CTH_FOREVER));
        state++;
        CHECK_OK(cth_cond_notify(&wcond, 1));
        CHECK_OK(cth_cond_release(&wcond));
    }
    bunch_join(&b);
}

static void waitfor_timeout_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_cond_acquire(&wcond, CTH_FOREVER));
    double start = check_now();
    CHECK_EQ(cth_cond_wait_for(&wcond, state_is_4, NULL, 0.1), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.1);
    CHECK_OK(cth_cond_release(&wcond));
}

/* ConditionTests.test_waitfor_timeout: false (CTH_ETIMEDOUT) after at least
 * 0.1 s if never satisfied, notifications or not. */
CTH_TEST(waitfor_timeout)
{
    state = 0;
    struct bunch b;
    bunch_start(&b, 1, waitfor_timeout_fn, NULL);
    for (int i = 0; i < 3; i++) {
        cth_sleep(0.01);
        CHECK_OK(cth_cond_acquire(&wcond, CTH_FOREVER));
        state++;
        CHECK_OK(cth_cond_notify(&wcond, 1));
        CHECK_OK(cth_cond_release(&wcond));
    }
    bunch_join(&b);
    CHECK_OK(cth_cond_acquire(&wcond, 0));
    CHECK_EQ(cth_cond_wait_for(&wcond, state_is_4, NULL, 0), CTH_ETIMEDOUT);
    check_bad_timeouts(cond_wait_call, &wcond);
    CHECK_OK(cth_cond_release(&wcond));
}

static int cond_wait_forever(void *c)
{
    cth_cond_t *cond = c;
    CHECK_OK(cth_cond_acquire(cond, CTH_FOREVER));
    int r = cth_cond_wait(cond, CTH_FOREVER);
    CHECK(cth_rlock_is_owned(&cond->_own)); /* re-acquired all the same */
    CHECK_OK(cth_cond_release(cond));
    return r;
}

/* The main thread blocked in wait wakes with CTH_EINTR, lock re-held. */
CTH_TEST(interrupt_main)
{
    cth_cond_t c = CTH_COND_INIT;
    check_interrupted(cond_wait_forever, &c);
}

/* Python checks the lock before anything else: waiting on an unowned
 * condition is CTH_EPERM (RuntimeError) whatever the timeout. */
CTH_TEST(unacquired_wait_checked_before_timeout)
{
    cth_cond_t c = CTH_COND_INIT;
    CHECK_EQ(cth_cond_wait(&c, -5), CTH_EPERM);
    CHECK_EQ(cth_cond_wait(&c, NAN), CTH_EPERM);
    CHECK_EQ(cth_cond_wait(&c, CTH_TIMEOUT_MAX * 2), CTH_EPERM);
    CHECK_OK(cth_cond_acquire(&c, 0));
    CHECK_EQ(cth_cond_wait(&c, -5), CTH_EINVAL);
    CHECK_EQ(cth_cond_wait(&c, CTH_TIMEOUT_MAX * 2), CTH_EOVERFLOW);
    CHECK_OK(cth_cond_release(&c));
}

static int pred_calls;

static bool counted_true(void *arg)
{
    pred_calls++;
    return *(bool *)arg;
}

/* Condition.wait_for evaluates the predicate first: a true one returns 0 at
 * once, even without the lock (Python never gets to wait); a false one
 * waits once even for timeout 0 (releasing and re-taking the lock), then
 * evaluates the predicate again; an unowned condition with a false
 * predicate is CTH_EPERM, checked before the timeout. */
CTH_TEST(waitfor_predicate_first)
{
    cth_cond_t c = CTH_COND_INIT;
    bool yes = true, no = false;
    pred_calls = 0;
    CHECK_OK(cth_cond_wait_for(&c, counted_true, &yes, NAN));
    CHECK_EQ(pred_calls, 1);
    CHECK_EQ(cth_cond_wait_for(&c, counted_true, &no, -5), CTH_EPERM);
    CHECK_EQ(pred_calls, 2);
    CHECK_OK(cth_cond_acquire(&c, 0));
    CHECK_OK(cth_cond_acquire(&c, 0)); /* two levels, restored after the wait */
    pred_calls = 0;
    CHECK_EQ(cth_cond_wait_for(&c, counted_true, &no, 0), CTH_ETIMEDOUT);
    CHECK_EQ(pred_calls, 2);
    CHECK_EQ(cth_rlock_recursion_count(&c._own), 2);
    CHECK_EQ(cth_cond_wait_for(&c, counted_true, &no, -5), CTH_EINVAL);
    CHECK_OK(cth_cond_release(&c));
    CHECK_OK(cth_cond_release(&c));
}

static cth_cond_t ncond6 = CTH_COND_INIT;
static int woken6, waiting6;

static void notify_n_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
    waiting6++;
    CHECK_OK(cth_cond_wait(&ncond6, CTH_FOREVER));
    woken6++;
    CHECK_OK(cth_cond_release(&ncond6));
}

static void wait_woken6(int want)
{
    for (;;) {
        CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
        int n = woken6;
        CHECK_OK(cth_cond_release(&ncond6));
        if (n >= want)
            break;
        cth_sleep(0.001);
    }
    settle(); /* and no more than that */
    CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
    CHECK_EQ(woken6, want);
    CHECK_OK(cth_cond_release(&ncond6));
}

/* Start k waiters on ncond6; return holding its lock once all k wait. */
static void start_waiters6(struct bunch *b, int k)
{
    woken6 = waiting6 = 0;
    bunch_start(b, k, notify_n_fn, NULL);
    for (;;) {
        CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
        if (waiting6 == k)
            return; /* all wait: each counted itself, then waited */
        CHECK_OK(cth_cond_release(&ncond6));
        cth_sleep(0.001);
    }
}

/* _TestCondition.test_notify_n (multiprocessing, threads): of 6 sleepers,
 * notify(2) wakes 2, notify(4) the other 4, and notify(3) then has no
 * effect. */
CTH_TEST(notify_n)
{
    struct bunch b;
    start_waiters6(&b, 6);
    CHECK_OK(cth_cond_release(&ncond6));
    settle();
    CHECK_EQ(woken6, 0);
    CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(&ncond6, 2));
    CHECK_OK(cth_cond_release(&ncond6));
    wait_woken6(2);
    CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(&ncond6, 4));
    CHECK_OK(cth_cond_release(&ncond6));
    wait_woken6(6);
    CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(&ncond6, 3));
    CHECK_OK(cth_cond_release(&ncond6));
    bunch_join(&b);
    CHECK_EQ(woken6, 6);
}

static void notify_later(void *arg)
{
    cth_cond_t *c = arg;
    cth_sleep(0.05);
    CHECK_OK(cth_cond_acquire(c, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(c, 1));
    CHECK_OK(cth_cond_release(c));
}

/* _TestCondition.test_wait_result: wait(0) and wait(0.1) are false (time
 * out), and a wait is true when notified. */
CTH_TEST(wait_result)
{
    cth_cond_t c = CTH_COND_INIT;
    CHECK_OK(cth_cond_acquire(&c, CTH_FOREVER));
    CHECK_EQ(cth_cond_wait(&c, 0), CTH_ETIMEDOUT);
    double start = check_now();
    CHECK_EQ(cth_cond_wait(&c, 0.1), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.1);
    struct bunch b;
    bunch_start(&b, 1, notify_later, &c);
    CHECK_OK(cth_cond_wait(&c, 60));
    CHECK_OK(cth_cond_release(&c));
    bunch_join(&b);
}

static atomic_int notifier_done;

static void notify_then_hold(void *arg)
{
    cth_cond_t *c = arg;
    cth_sleep(0.02);
    CHECK_OK(cth_cond_acquire(c, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(c, 1));
    cth_sleep(0.05); /* the waiter is woken now, and must wait for the lock */
    atomic_store(&notifier_done, 1);
    CHECK_OK(cth_cond_release(c));
}

/* A notify wakes the first sleeping waiter at once, but the waiter returns
 * only once it holds the lock again: after the notifier released it, over
 * a plain Lock and over the default RLock alike. */
CTH_TEST(woken_waiter_waits_for_the_lock)
{
    cth_lock_t lock = CTH_LOCK_INIT;
    cth_cond_t over_lock = CTH_COND_INIT_LOCK(&lock);
    cth_cond_t over_rlock = CTH_COND_INIT;
    cth_cond_t *conds[] = {&over_lock, &over_rlock};
    for (int i = 0; i < 2; i++) {
        atomic_store(&notifier_done, 0);
        CHECK_OK(cth_cond_acquire(conds[i], CTH_FOREVER));
        struct bunch b;
        bunch_start(&b, 1, notify_then_hold, conds[i]);
        CHECK_OK(cth_cond_wait(conds[i], 60));
        CHECK_EQ(atomic_load(&notifier_done), 1);
        CHECK_OK(cth_cond_notify(conds[i], 1)); /* CTH_EPERM unless we hold it */
        CHECK_OK(cth_cond_release(conds[i]));
        bunch_join(&b);
    }
}

/* Waiters of the FIFO test: each queues under the lock in the order the
 * test starts them, and notes its number when it wakes. */
struct fifo {
    cth_cond_t *cond;
    int entered, woken, order[8];
};

static void fifo_waiter(void *arg)
{
    struct fifo *f = arg;
    CHECK_OK(cth_cond_acquire(f->cond, CTH_FOREVER));
    int me = f->entered++;
    CHECK_OK(cth_cond_wait(f->cond, CTH_FOREVER));
    f->order[f->woken++] = me;
    CHECK_OK(cth_cond_release(f->cond));
}

/* Read f->field under the condition's lock. */
static int fifo_get(struct fifo *f, const int *field)
{
    CHECK_OK(cth_cond_acquire(f->cond, CTH_FOREVER));
    int v = *field;
    CHECK_OK(cth_cond_release(f->cond));
    return v;
}

static void fifo_wait_woken(struct fifo *f, int want)
{
    while (fifo_get(f, &f->woken) < want)
        cth_sleep(0.001);
    settle(); /* and no more than that */
    CHECK_EQ(fifo_get(f, &f->woken), want);
}

static void fifo_notify(struct fifo *f, int n)
{
    CHECK_OK(cth_cond_acquire(f->cond, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(f->cond, n));
    CHECK_OK(cth_cond_release(f->cond));
}

static void check_fifo(cth_cond_t *c)
{
    struct fifo f = {.cond = c};
    struct bunch b[5];
    for (int i = 0; i < 5; i++) {
        bunch_start(&b[i], 1, fifo_waiter, &f);
        /* Seen under the lock, waiter i is queued (it queues before it
         * lets the lock go), behind waiters 0 .. i-1. */
        while (fifo_get(&f, &f.entered) < i + 1)
            cth_sleep(0.001);
    }
    fifo_notify(&f, 1);
    fifo_wait_woken(&f, 1);
    CHECK_EQ(f.order[0], 0);
    fifo_notify(&f, 1);
    fifo_wait_woken(&f, 2);
    CHECK_EQ(f.order[1], 1);
    fifo_notify(&f, 2); /* the two longest waiting, in either order */
    fifo_wait_woken(&f, 4);
    CHECK_EQ(f.order[2] + f.order[3], 2 + 3);
    CHECK(f.order[2] == 2 || f.order[2] == 3);
    CHECK_OK(cth_cond_acquire(c, CTH_FOREVER));
    CHECK_OK(cth_cond_notify_all(c));
    CHECK_OK(cth_cond_release(c));
    fifo_wait_woken(&f, 5);
    CHECK_EQ(f.order[4], 4);
    for (int i = 0; i < 5; i++)
        bunch_join(&b[i]);
}

/* Condition's waiters form a FIFO (docs/python-semantics.md,
 * Condition; lock_tests has no test of its own for the order):
 * notify(1) wakes the longest waiting, notify(2) the two longest; over the
 * default RLock and over a Lock. */
CTH_TEST(notify_fifo)
{
    cth_cond_t own = CTH_COND_INIT;
    check_fifo(&own);
    cth_lock_t l = CTH_LOCK_INIT;
    cth_cond_t over_lock = CTH_COND_INIT_LOCK(&l);
    check_fifo(&over_lock);
}

struct levels {
    cth_cond_t *cond;
    atomic_int took_it;
};

static void take_and_notify(void *arg)
{
    struct levels *lv = arg;
    /* Possible only if the waiter let go of every level. */
    CHECK_OK(cth_cond_acquire(lv->cond, 10));
    atomic_store(&lv->took_it, 1);
    CHECK_OK(cth_cond_notify(lv->cond, 1));
    CHECK_OK(cth_cond_release(lv->cond));
}

/* Condition.wait releases an RLock held recursively completely
 * (_release_save), so another thread can take it while the owner waits,
 * and gives every level back (_acquire_restore): over Condition()'s own
 * RLock and over an explicit one. */
CTH_TEST(wait_releases_every_level)
{
    cth_rlock_t r = CTH_RLOCK_INIT;
    cth_cond_t over_rlock;
    CHECK_OK(cth_cond_init_rlock(&over_rlock, &r));
    cth_cond_t own = CTH_COND_INIT;
    cth_cond_t *conds[] = {&own, &over_rlock};
    cth_rlock_t *rlocks[] = {&own._own, &r};
    for (int i = 0; i < 2; i++) {
        struct levels lv = {.cond = conds[i]};
        for (int k = 0; k < 3; k++)
            CHECK_OK(cth_cond_acquire(conds[i], CTH_FOREVER));
        struct bunch b;
        bunch_start(&b, 1, take_and_notify, &lv);
        CHECK_OK(cth_cond_wait(conds[i], 60));
        CHECK_EQ(atomic_load(&lv.took_it), 1);
        CHECK(cth_rlock_is_owned(rlocks[i]));
        CHECK_EQ(cth_rlock_recursion_count(rlocks[i]), 3);
        for (int k = 0; k < 3; k++)
            CHECK_OK(cth_cond_release(conds[i]));
        CHECK_EQ(cth_cond_release(conds[i]), CTH_EPERM);
        CHECK(!cth_rlock_locked(rlocks[i]));
        bunch_join(&b);
    }
}

/* notify(0) does nothing (Python's notify(n) for n <= 0, probed), also
 * when threads wait: none of them wakes; notify(1) then wakes one. */
CTH_TEST(notify_0_with_waiters)
{
    struct bunch b;
    start_waiters6(&b, 2);
    CHECK_OK(cth_cond_notify(&ncond6, 0));
    CHECK_OK(cth_cond_release(&ncond6));
    settle();
    CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
    CHECK_EQ(woken6, 0);
    CHECK_OK(cth_cond_notify(&ncond6, 1));
    CHECK_OK(cth_cond_release(&ncond6));
    wait_woken6(1);
    CHECK_OK(cth_cond_acquire(&ncond6, CTH_FOREVER));
    CHECK_OK(cth_cond_notify_all(&ncond6));
    CHECK_OK(cth_cond_release(&ncond6));
    bunch_join(&b);
    CHECK_EQ(woken6, 2);
}

/* notify(SIZE_MAX), the far end of n, wakes every waiter, as notify_all. */
CTH_TEST(notify_size_max_with_waiters)
{
    struct bunch b;
    start_waiters6(&b, 3);
    CHECK_OK(cth_cond_notify(&ncond6, SIZE_MAX));
    CHECK_OK(cth_cond_release(&ncond6));
    wait_woken6(3);
    bunch_join(&b);
    CHECK_EQ(woken6, 3);
}

static void lock_and_leave(void *arg)
{
    CHECK_OK(cth_lock_acquire(arg, CTH_FOREVER));
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* Python's quirk for a Condition over a plain Lock (docs/python-semantics.md):
 * "owned" means locked by anyone, so a thread that does not hold the Lock
 * but finds it held may notify and wait; wait(0) lets the Lock go and takes
 * it again, so it is held afterwards. Once it is unlocked, both are errors. */
CTH_TEST(lock_owned_by_anyone)
{
    cth_lock_t l = CTH_LOCK_INIT;
    cth_cond_t c = CTH_COND_INIT_LOCK(&l);
    struct bunch b;
    bunch_start(&b, 1, lock_and_leave, &l);
    bunch_join(&b);
    CHECK(cth_lock_locked(&l));
    CHECK_OK(cth_cond_notify(&c, 1));
    CHECK_OK(cth_cond_notify_all(&c));
    CHECK_EQ(cth_cond_wait(&c, 0), CTH_ETIMEDOUT);
    CHECK(cth_lock_locked(&l));
    CHECK_EQ(cth_cond_wait_for(&c, never, NULL, 0), CTH_ETIMEDOUT);
    CHECK(cth_lock_locked(&l));
    CHECK_OK(cth_lock_release(&l));
    CHECK_EQ(cth_cond_wait(&c, 0), CTH_EPERM);
    CHECK_EQ(cth_cond_notify(&c, 1), CTH_EPERM);
    CHECK_EQ(cth_cond_wait_for(&c, never, NULL, 0), CTH_EPERM);
    CHECK(!cth_lock_locked(&l));
}

struct nagger {
    cth_cond_t cond;
    atomic_int done, gave_up;
};

static void nag(void *arg)
{
    struct nagger *n = arg;
    double give_up = check_now() + 30;
    while (!atomic_load(&n->done)) {
        if (check_now() > give_up) {
            atomic_store(&n->gave_up, 1);
            return;
        }
        CHECK_OK(cth_cond_acquire(&n->cond, CTH_FOREVER));
        CHECK_OK(cth_cond_notify_all(&n->cond));
        CHECK_OK(cth_cond_release(&n->cond));
        cth_sleep(0.005);
    }
}

/* wait_for's timeout is one total deadline (as in Python), not a
 * timeout per wait: with a notification every 5 ms and a predicate never
 * true, wait_for(0.1) still returns false (CTH_ETIMEDOUT). A timeout restarted at each
 * wake-up would never expire while the notifications go on; the notifier
 * gives up after 30 s, which only such a wait_for would need. */
CTH_TEST(waitfor_total_deadline)
{
    static struct nagger n = {.cond = CTH_COND_INIT};
    struct bunch b;
    bunch_start(&b, 1, nag, &n);
    CHECK_OK(cth_cond_acquire(&n.cond, CTH_FOREVER));
    double start = check_now();
    CHECK_EQ(cth_cond_wait_for(&n.cond, never, NULL, 0.1), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.1);
    CHECK_OK(cth_cond_release(&n.cond));
    atomic_store(&n.done, 1);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&n.gave_up), 0);
}

static int cond_timed_wait(void *c, double t)
{
    CHECK_OK(cth_cond_acquire(c, CTH_FOREVER));
    int r = cth_cond_wait(c, t);
    CHECK(cth_rlock_is_owned(&((cth_cond_t *)c)->_own));
    CHECK_OK(cth_cond_release(c));
    return r;
}

/* ConditionTests.test_timeout with spurious wake-ups (signals): a wait
 * nobody notifies returns CTH_ETIMEDOUT, never a false success, after at
 * least its timeout (CPython has no spurious wake-ups, and its tests assume
 * so). */
CTH_TEST(timeout_under_signals)
{
    static cth_cond_t c = CTH_COND_INIT;
    check_deadline_under_signals(cond_timed_wait, &c, 0.2);
}

struct volley {
    cth_lock_t lock;
    cth_cond_t cond;
    int turn, rounds, cpu;
    long partner_sleeps;
};

static void pin_to(int cpu)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    CHECK_OK(sched_setaffinity(0, sizeof one, &one));
}

static long sleeps_so_far(void)
{
    struct rusage ru;
    CHECK_OK(getrusage(RUSAGE_THREAD, &ru));
    return ru.ru_nvcsw;
}

static void volley_partner(void *arg)
{
    struct volley *v = arg;
    pin_to(v->cpu);
    long before = sleeps_so_far();
    for (int i = 0; i < v->rounds; i++) {
        CHECK_OK(cth_cond_acquire(&v->cond, CTH_FOREVER));
        while (v->turn != 1)
            CHECK_OK(cth_cond_wait(&v->cond, CTH_FOREVER));
        v->turn = 0;
        CHECK_OK(cth_cond_notify(&v->cond, 1));
        CHECK_OK(cth_cond_release(&v->cond));
    }
    v->partner_sleeps = sleeps_so_far() - before;
}

/* A waiter whose notifier runs on another CPU spins briefly on its word
 * before it sleeps (cond.c, Spinning): a ping-pong between two threads on
 * two CPUs then goes back and forth without either thread sleeping in most
 * rounds (without the spin, both sleep in every round). Each attempt is
 * 1000 rounds; a loaded machine may keep a thread off its CPU for long
 * enough to spoil one, so one attempt in five must show it. */
CTH_TEST(waiter_spins_for_a_notifier_on_another_cpu)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("under valgrind, one thread runs at a time");
    cpu_set_t saved;
    CHECK_OK(sched_getaffinity(0, sizeof saved, &saved));
    int cpus[2], found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &saved))
            cpus[found++] = c;
    if (found < 2)
        CHECK_SKIP("needs two CPUs");
    bool spun = false;
    for (int attempt = 0; attempt < 5 && !spun; attempt++) {
        static struct volley v;
        CHECK_OK(cth_cond_init(&v.cond, &v.lock));
        CHECK_OK(cth_lock_init(&v.lock));
        v.turn = 0;
        v.rounds = 1000;
        v.cpu = cpus[1];
        pin_to(cpus[0]);
        long before = sleeps_so_far();
        struct bunch b;
        bunch_start(&b, 1, volley_partner, &v);
        for (int i = 0; i < v.rounds; i++) {
            CHECK_OK(cth_cond_acquire(&v.cond, CTH_FOREVER));
            v.turn = 1;
            CHECK_OK(cth_cond_notify(&v.cond, 1));
            while (v.turn != 0)
                CHECK_OK(cth_cond_wait(&v.cond, CTH_FOREVER));
            CHECK_OK(cth_cond_release(&v.cond));
        }
        long sleeps = sleeps_so_far() - before;
        bunch_join(&b);
        CHECK_OK(sched_setaffinity(0, sizeof saved, &saved));
        printf("attempt %d: %ld and %ld sleeps in %d rounds\n", attempt, sleeps, v.partner_sleeps,
               v.rounds);
        spun = sleeps < v.rounds / 2 && v.partner_sleeps < v.rounds / 2;
    }
    CHECK(spun);
}

/* lock.c's bits of a Lock's word that the next test reads. */
#define LOCK_PARKED 2u
#define LOCK_NAPPING 8u
#define LOCK_WAITER 64u
#define LOCK_GEN_MASK (0x7Fu << 25)
#define LANE_WAITERS 8
#define LANE_LEADS 4 /* cond.c's WAKE_AT_ONCE */

struct lanes {
    cth_lock_t lock;
    cth_cond_t cond;
    int waiting, go, leads_held; /* leads_held: waiters woken at once that have held the lock */
    long tids[LANE_WAITERS];
    atomic_int unasked; /* waiters that left waiters counted and no wake-up asked */
};

static void lanes_waiter(void *arg)
{
    struct lanes *l = arg;
    CHECK_OK(cth_lock_acquire(&l->lock, CTH_FOREVER));
    int place = l->waiting++; /* the FIFO's order: the first LANE_LEADS are woken at once */
    l->tids[place] = cth_get_native_id();
    while (!l->go)
        CHECK_OK(cth_cond_wait(&l->cond, CTH_FOREVER));
    uint32_t word = atomic_load((_Atomic uint32_t *)&l->lock._state);
    uint32_t counted = (word & ~LOCK_GEN_MASK) / LOCK_WAITER;
    if (place < LANE_LEADS)
        l->leads_held++;
    /* Not a lane left unled: the counted ones may all be waiters woken at
     * once, arriving now, that have just counted themselves (each sets
     * PARKED as it goes to sleep). */
    bool leads_arriving = counted <= (uint32_t)(LANE_LEADS - l->leads_held);
    if (counted && !(word & (LOCK_PARKED | LOCK_NAPPING)) && !leads_arriving)
        atomic_fetch_add(&l->unasked, 1);
    CHECK_OK(cth_lock_release(&l->lock));
}

/* Whether thread tid of this process sleeps (state S: blocked in a wait). */
static bool task_sleeps(long tid)
{
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true; /* no /proc: the settling sleep has to do */
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *after_name = strrchr(stat, ')'); /* "tid (name) S ..." */
    return after_name && after_name[1] == ' ' && after_name[2] == 'S';
}

/* A fresh lock and condition with LANE_WAITERS waiters in b, each asleep
 * on its word (a waiter that never slept is not woken, and does not lead a
 * lane). */
static void lanes_start(struct lanes *l, struct bunch *b)
{
    CHECK_OK(cth_lock_init(&l->lock));
    CHECK_OK(cth_cond_init(&l->cond, &l->lock));
    l->waiting = l->go = l->leads_held = 0;
    bunch_start(b, LANE_WAITERS, lanes_waiter, l);
    for (int queued = 0; queued < LANE_WAITERS;) {
        cth_sleep(0.001);
        CHECK_OK(cth_lock_acquire(&l->lock, CTH_FOREVER));
        queued = l->waiting;
        CHECK_OK(cth_lock_release(&l->lock));
    }
    for (int i = 0; i < LANE_WAITERS; i++)
        while (!task_sleeps(l->tids[i]))
            cth_sleep(0.001);
}

/* notify_all hands the lock down in lanes (cond.c): each waiter woken at
 * once, which retakes the lock uncounted, makes its own release wake one of
 * the waiters counted on the lock, as every counted waiter's release does.
 * So each notified waiter, once it holds the lock while others are still
 * counted, finds the word asking its release to wake one (PARKED), unless
 * a napper looks after them. Without the lanes a waiter woken at once often
 * takes a free lock whose last release cleared PARKED. */
CTH_TEST(notify_all_hands_on_in_lanes)
{
    static struct lanes l;
    atomic_init(&l.unasked, 0);
    for (int round = 0; round < 50; round++) {
        struct bunch b;
        lanes_start(&l, &b);
        CHECK_OK(cth_lock_acquire(&l.lock, CTH_FOREVER));
        l.go = 1;
        CHECK_OK(cth_cond_notify_all(&l.cond));
        CHECK_OK(cth_lock_release(&l.lock));
        bunch_join(&b);
    }
    CHECK_EQ(atomic_load(&l.unasked), 0);
}

/* A notify wakes several of the sleeping waiters it takes at once (cond.c,
 * WAKE_AT_ONCE), and requeues only the rest onto the lock: right after a
 * notify_all to eight sleepers, fewer than seven are counted on the lock's
 * word in some round. (A waiter woken at once may count itself before we
 * look, by finding the lock held; when a notify woke only one, seven or
 * more are counted every time.) */
CTH_TEST(notify_all_wakes_several_at_once)
{
    static struct lanes l;
    atomic_init(&l.unasked, 0);
    uint32_t fewest = LANE_WAITERS;
    for (int round = 0; round < 20; round++) {
        struct bunch b;
        lanes_start(&l, &b);
        CHECK_OK(cth_lock_acquire(&l.lock, CTH_FOREVER));
        l.go = 1;
        CHECK_OK(cth_cond_notify_all(&l.cond));
        uint32_t word = atomic_load((_Atomic uint32_t *)&l.lock._state);
        uint32_t counted = (word & ~LOCK_GEN_MASK) / LOCK_WAITER;
        if (counted < fewest)
            fewest = counted;
        CHECK_OK(cth_lock_release(&l.lock));
        bunch_join(&b);
    }
    printf("fewest counted after notify_all: %u\n", fewest);
    CHECK(fewest < LANE_WAITERS - 1);
}

struct yielder {
    cth_lock_t lock;
    cth_cond_t cond;
    int cpu, go;
    long tid, sleeps;
};

static void yielder_waiter(void *arg)
{
    struct yielder *y = arg;
    pin_to(y->cpu);
    CHECK_OK(cth_lock_acquire(&y->lock, CTH_FOREVER));
    y->tid = cth_get_native_id();
    long before = sleeps_so_far();
    while (!y->go)
        CHECK_OK(cth_cond_wait(&y->cond, CTH_FOREVER));
    y->sleeps = sleeps_so_far() - before;
    CHECK_OK(cth_lock_release(&y->lock));
}

/* A waiter woken on its notifier's CPU while the notifier still holds the
 * lock yields the CPU back instead of parking on the lock (lock.c,
 * cth__lock_acquire_notified): both threads pinned to one CPU, the notifier
 * yields under the lock right after its notify, so the woken waiter runs
 * first; it then sleeps once in its wait (on its own word), not twice. */
CTH_TEST(woken_waiter_yields_to_its_notifier)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("under valgrind, threads are scheduled by valgrind");
#ifdef CTH_POSIX_FUTEX
    CHECK_SKIP("the POSIX futex emulation's own mutexes add sleeps of their own");
#endif
    cpu_set_t saved;
    CHECK_OK(sched_getaffinity(0, sizeof saved, &saved));
    int cpu = 0;
    while (!CPU_ISSET(cpu, &saved))
        cpu++;
    static struct yielder y;
    const int rounds = 20;
    long sleeps = 0;
    for (int round = 0; round < rounds; round++) {
        CHECK_OK(cth_lock_init(&y.lock));
        CHECK_OK(cth_cond_init(&y.cond, &y.lock));
        y.cpu = cpu;
        y.go = 0;
        y.tid = 0;
        pin_to(cpu);
        struct bunch b;
        bunch_start(&b, 1, yielder_waiter, &y);
        for (long tid = 0; !tid;) {
            cth_sleep(0.001);
            CHECK_OK(cth_lock_acquire(&y.lock, CTH_FOREVER));
            tid = y.tid;
            CHECK_OK(cth_lock_release(&y.lock));
        }
        while (!task_sleeps(y.tid))
            cth_sleep(0.001);
        CHECK_OK(cth_lock_acquire(&y.lock, CTH_FOREVER));
        y.go = 1;
        CHECK_OK(cth_cond_notify(&y.cond, 1));
        sched_yield();
        CHECK_OK(cth_lock_release(&y.lock));
        bunch_join(&b);
        CHECK_OK(sched_setaffinity(0, sizeof saved, &saved));
        sleeps += y.sleeps;
    }
    printf("%ld sleeps in %d waits\n", sleeps, rounds);
    CHECK(sleeps < rounds * 3 / 2);
}
