/*
 * test_cond.c - Condition, ported from CPython's Lib/test/lock_tests.py
 * (ConditionTests), plus the error cases and interruption.
 */
#include "bunch.h"

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
    CHECK_OK(cth_cond_notify(&c, -3));
    CHECK_OK(cth_cond_release(&c));
    CHECK_OK(cth_cond_release(&c));
}

static cth_lock_t notify_lock;
static cth_cond_t ncond = CTH_COND_INIT_LOCK(&notify_lock);
static atomic_int phase_num, ready;
static cth_lock_t res_lock;
static int results1[16], n1, results2[16], n2;

static void notify_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_cond_acquire(&ncond, CTH_FOREVER));
    atomic_fetch_add(&ready, 1);
    CHECK_OK(cth_cond_wait(&ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_release(&ncond));
    cth_lock_acquire(&res_lock, CTH_FOREVER);
    results1[n1++] = atomic_load(&phase_num);
    cth_lock_release(&res_lock);
    CHECK_OK(cth_cond_acquire(&ncond, CTH_FOREVER));
    atomic_fetch_add(&ready, 1);
    CHECK_OK(cth_cond_wait(&ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_release(&ncond));
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

static void check_notify(void)
{
    n1 = n2 = 0;
    atomic_store(&ready, 0);
    atomic_store(&phase_num, 0);
    struct bunch b;
    bunch_start(&b, 5, notify_fn, NULL);
    wait_until(&ready, 5); /* all 5 are in wait (they hold the lock until then) */
    cth_cond_acquire(&ncond, CTH_FOREVER);
    cth_cond_release(&ncond);
    CHECK_EQ(n1, 0);
    /* notify 3: exactly 3 wake */
    atomic_store(&phase_num, 1);
    CHECK_OK(cth_cond_acquire(&ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(&ncond, 3));
    CHECK_OK(cth_cond_release(&ncond));
    wait_results(&n1, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(results1[i], 1);
    wait_until(&ready, 8);
    /* notify 5: the 2 left of the first wait and 3 of the second */
    atomic_store(&phase_num, 2);
    CHECK_OK(cth_cond_acquire(&ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_notify(&ncond, 5));
    CHECK_OK(cth_cond_release(&ncond));
    wait_results(&n1, 5);
    wait_results(&n2, 3);
    wait_until(&ready, 10);
    /* notify_all: the last 2 */
    atomic_store(&phase_num, 3);
    CHECK_OK(cth_cond_acquire(&ncond, CTH_FOREVER));
    CHECK_OK(cth_cond_notify_all(&ncond));
    CHECK_OK(cth_cond_release(&ncond));
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
    check_notify();
    check_notify();
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
    CHECK_EQ(cth_cond_wait_for(&wcond, state_is_4, NULL, CTH_FOREVER), 1);
    CHECK_EQ(state, 4);
    CHECK_OK(cth_cond_release(&wcond));
}

/* ConditionTests.test_waitfor: true once 4 notify steps satisfy the
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
    CHECK_EQ(cth_cond_wait_for(&wcond, state_is_4, NULL, 0.1), 0);
    CHECK_WAITED_AT_LEAST(start, 0.1);
    CHECK_OK(cth_cond_release(&wcond));
}

/* ConditionTests.test_waitfor_timeout: false after at least 0.1 s if never
 * satisfied, notifications or not. */
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
    CHECK_EQ(cth_cond_wait_for(&wcond, state_is_4, NULL, 0), 0);
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
