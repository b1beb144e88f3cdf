/* SPDX-License-Identifier: MIT */
/*
 * test_event.c - Event, ported from CPython's Lib/test/lock_tests.py
 * (EventTests), plus the error cases and interruption.
 */
#include "bunch.h"

/* EventTests.test_is_set: set and clear are idempotent. */
CTH_TEST(is_set)
{
    cth_event_t e = CTH_EVENT_INIT;
    CHECK(!cth_event_is_set(&e));
    CHECK_OK(cth_event_set(&e));
    CHECK(cth_event_is_set(&e));
    CHECK_OK(cth_event_set(&e));
    CHECK(cth_event_is_set(&e));
    CHECK_OK(cth_event_clear(&e));
    CHECK(!cth_event_is_set(&e));
    CHECK_OK(cth_event_clear(&e));
    CHECK(!cth_event_is_set(&e));
    cth_event_t z;
    memset(&z, 0xff, sizeof z);
    CHECK_OK(cth_event_init(&z));
    CHECK(!cth_event_is_set(&z));
    CHECK_EQ(cth_event_init(NULL), CTH_EINVAL);
    CHECK_EQ(cth_event_set(NULL), CTH_EINVAL);
    CHECK_EQ(cth_event_clear(NULL), CTH_EINVAL);
    CHECK(!cth_event_is_set(NULL));
    CHECK_EQ(cth_event_wait(NULL, 0), CTH_EINVAL);
}

static cth_event_t notify_ev;
static atomic_int results1, results2;

static void notify_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_event_wait(&notify_ev, CTH_FOREVER));
    atomic_fetch_add(&results1, 1);
    CHECK_OK(cth_event_wait(&notify_ev, CTH_FOREVER));
    atomic_fetch_add(&results2, 1);
}

static void check_notify(void)
{
    atomic_store(&results1, 0);
    atomic_store(&results2, 0);
    struct bunch b;
    bunch_start(&b, 5, notify_fn, NULL);
    settle();
    CHECK_EQ(atomic_load(&results1), 0);
    CHECK_OK(cth_event_set(&notify_ev));
    bunch_join(&b);
    CHECK_EQ(atomic_load(&results1), 5);
    CHECK_EQ(atomic_load(&results2), 5);
}

/* EventTests.test_notify: all 5 waiters wake on set(), and again after a
 * clear(). */
CTH_TEST(notify)
{
    check_notify();
    CHECK_OK(cth_event_clear(&notify_ev));
    check_notify();
}

static int event_wait_call(void *e, double t)
{
    return cth_event_wait(e, t);
}

static cth_event_t timeout_ev;

static void timeout_fn(void *arg)
{
    (void)arg;
    CHECK_EQ(cth_event_wait(&timeout_ev, 0), CTH_ETIMEDOUT);
    double start = check_now();
    CHECK_EQ(cth_event_wait(&timeout_ev, 0.5), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.5);
}

/* EventTests.test_timeout: wait(0) and wait(0.5) fail on an unset event
 * (the latter after 0.5 s); once set, both succeed at once. */
CTH_TEST(timeout)
{
    check_bad_timeouts(event_wait_call, &timeout_ev);
    struct bunch b;
    bunch_start(&b, 5, timeout_fn, NULL);
    bunch_join(&b);
    CHECK_OK(cth_event_set(&timeout_ev));
    CHECK_OK(cth_event_wait(&timeout_ev, 0));
    CHECK_OK(cth_event_wait(&timeout_ev, 0.5));
    CHECK_OK(cth_event_wait(&timeout_ev, CTH_TIMEOUT_MAX));
    check_bad_timeouts(event_wait_call, &timeout_ev);
}

static cth_event_t sc_ev;

static void set_clear_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_event_wait(&sc_ev, 10));
}

/* EventTests.test_set_and_clear (gh-57711): waiters woken by set() return
 * success even when clear() follows at once. */
CTH_TEST(set_and_clear)
{
    struct bunch b;
    bunch_start(&b, 5, set_clear_fn, NULL);
    settle();
    CHECK_OK(cth_event_set(&sc_ev));
    CHECK_OK(cth_event_clear(&sc_ev));
    bunch_join(&b);
}

static int event_wait_forever(void *e)
{
    return cth_event_wait(e, CTH_FOREVER);
}

/* The main thread blocked in wait wakes with CTH_EINTR. */
CTH_TEST(interrupt_main)
{
    cth_event_t e = CTH_EVENT_INIT;
    check_interrupted(event_wait_forever, &e);
    CHECK(!cth_event_is_set(&e));
}

static cth_event_t gen_ev;
static atomic_int gen_returned;

static void gen_old_waiter(void *arg)
{
    (void)arg;
    CHECK_OK(cth_event_wait(&gen_ev, 60));
    atomic_fetch_add(&gen_returned, 1);
}

/* The other side of EventTests.test_set_and_clear (docs/python-semantics.md,
 * Event: false only on timeout, and only the waiters a set() woke see it): a wait
 * that starts after set() and clear() have both run finds the flag clear
 * and times out, while the waiters that set() woke return success. */
CTH_TEST(wait_after_set_and_clear)
{
    struct bunch b;
    bunch_start(&b, 3, gen_old_waiter, NULL);
    settle();
    CHECK_OK(cth_event_set(&gen_ev));
    CHECK_OK(cth_event_clear(&gen_ev));
    CHECK_EQ(cth_event_wait(&gen_ev, 0), CTH_ETIMEDOUT);
    double start = check_now();
    CHECK_EQ(cth_event_wait(&gen_ev, 0.1), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.1);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&gen_returned), 3);
    CHECK(!cth_event_is_set(&gen_ev));
    /* A second round on the same event: set() again wakes a new waiter. */
    atomic_store(&gen_returned, 0);
    bunch_start(&b, 1, gen_old_waiter, NULL);
    settle();
    CHECK_EQ(atomic_load(&gen_returned), 0);
    CHECK_OK(cth_event_set(&gen_ev));
    bunch_join(&b);
    CHECK_EQ(atomic_load(&gen_returned), 1);
}

/* EventTests.test_timeout's wait(0.5) with spurious wake-ups (signals):
 * still false (CTH_ETIMEDOUT), after at least the timeout. */
CTH_TEST(timeout_under_signals)
{
    static cth_event_t e;
    check_deadline_under_signals(event_wait_call, &e, 0.2);
    CHECK(!cth_event_is_set(&e));
}
