/* SPDX-License-Identifier: MIT */
/*
 * test_synchronized.c - CTH_SYNCHRONIZED, CTH_SYNCHRONIZED_ON and CTH_GUARD:
 * mutual exclusion across many threads, and release on every way out of a
 * block: return, break, continue, goto, the end of the scope; break inside a
 * block form leaves the block, break inside a CTH_GUARD scope reaches the
 * enclosing loop.
 */
#include <signal.h>
#include <stdatomic.h>

#include "check.h"

#define THREADS 8

static long counter_site, counter_lock, counter_rlock, counter_guard;
static cth_lock_t lock = CTH_LOCK_INIT;
static cth_rlock_t rlock = CTH_RLOCK_INIT;

/* The seed's @synchronized: a function with a lock of its own. */
static long bump_site(void)
{
    CTH_SYNCHRONIZED {
        long v = counter_site; /* a read-modify-write that races without the lock */
        counter_site = v + 1;
        return v + 1; /* released on return */
    }
    return -1;
}

static void *hammer(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        CHECK(bump_site() > 0);
        CTH_SYNCHRONIZED_ON(&lock) {
            counter_lock++;
        }
        CTH_SYNCHRONIZED_ON(&rlock) {
            CTH_SYNCHRONIZED_ON(&rlock) { /* re-entrant */
                counter_rlock++;
            }
        }
        {
            CTH_GUARD(g, &lock);
            counter_guard++;
        }
    }
    return NULL;
}

/* Synchronized blocks exclude each other across many threads. */
CTH_TEST(mutual_exclusion)
{
    long n = check_iters(20000);
    cth_thread_t *t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        CHECK_OK(cth_thread_create(&t[i], hammer, &n, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    CHECK_EQ(counter_site, THREADS * n);
    CHECK_EQ(counter_lock, THREADS * n);
    CHECK_EQ(counter_rlock, THREADS * n);
    CHECK_EQ(counter_guard, THREADS * n);
    CHECK(!cth_lock_locked(&lock));
    CHECK(!cth_rlock_locked(&rlock));
}

static int return_from_block(int early)
{
    CTH_SYNCHRONIZED_ON(&lock) {
        CHECK(cth_lock_locked(&lock));
        if (early)
            return 1;
    }
    CHECK(!cth_lock_locked(&lock));
    return 0;
}

static int return_from_guard(cth_rlock_t *r)
{
    CTH_GUARD(g, r);
    CHECK(cth_rlock_is_owned(r));
    return 1;
}

CTH_TEST(release_on_return)
{
    CHECK_EQ(return_from_block(1), 1);
    CHECK(!cth_lock_locked(&lock));
    CHECK_EQ(return_from_block(0), 0);
    CHECK(!cth_lock_locked(&lock));
    CHECK_EQ(return_from_guard(&rlock), 1);
    CHECK(!cth_rlock_locked(&rlock));
    CHECK_EQ(bump_site(), counter_site);
}

/* break and continue directly inside a block form leave the block (lock
 * released) and NOT the enclosing loop: the documented semantics. */
CTH_TEST(break_and_continue_leave_block)
{
    int iterations = 0, after = 0;
    for (int i = 0; i < 5; i++) {
        iterations++;
        CTH_SYNCHRONIZED_ON(&lock) {
            if (i % 2)
                break;
            continue;
        }
        CHECK(!cth_lock_locked(&lock));
        after++;
    }
    CHECK_EQ(iterations, 5); /* the outer loop was never broken */
    CHECK_EQ(after, 5);      /* break/continue went on right after the block */
    CHECK(!cth_lock_locked(&lock));
}

/* In a CTH_GUARD scope, break, continue and goto mean what they always
 * mean, and the lock is released each time. */
CTH_TEST(guard_break_continue_goto)
{
    int i;
    for (i = 0; i < 10; i++) {
        CTH_GUARD(g, &lock);
        CHECK(cth_lock_locked(&lock));
        if (i == 1)
            continue;
        if (i == 3)
            break; /* leaves the for loop */
    }
    CHECK_EQ(i, 3);
    CHECK(!cth_lock_locked(&lock));
    int n = 0;
    while (1) {
        CTH_GUARD(g, &rlock);
        if (++n == 4)
            goto out;
    }
out:
    CHECK_EQ(n, 4);
    CHECK(!cth_rlock_locked(&rlock));
    /* a nested loop inside a block form: break there is the inner loop's */
    int seen = 0;
    CTH_SYNCHRONIZED {
        for (int k = 0; k < 10; k++) {
            if (k == 2)
                break;
            seen++;
        }
        seen += 100;
    }
    CHECK_EQ(seen, 102);
}

/* The explicit form (the portable fallback): early release, idempotence,
 * NULL locks. */
CTH_TEST(explicit_guards)
{
    cth_guard_t g = cth_guard_lock(&lock);
    CHECK(cth_guard_held(&g));
    CHECK(cth_lock_locked(&lock));
    cth_guard_release(&g);
    CHECK(!cth_guard_held(&g));
    CHECK(!cth_lock_locked(&lock));
    cth_guard_release(&g); /* twice: nothing */
    CHECK_EQ(cth_lock_acquire(&lock, 0), 0);
    CHECK_OK(cth_lock_release(&lock));
    cth_guard_release(NULL);
    CHECK(!cth_guard_held(NULL));
    g = cth_guard_lock(NULL);
    CHECK(!cth_guard_held(&g));
    g = cth_guard_rlock(NULL);
    CHECK(!cth_guard_held(&g));
    {
        CTH_GUARD(early, &lock);
        cth_guard_release(&early); /* released before the scope ends, once */
        CHECK(!cth_lock_locked(&lock));
    }
    CHECK(!cth_lock_locked(&lock));
    int ran = 0;
    CTH_SYNCHRONIZED_ON((cth_lock_t *)NULL) {
        ran = 1; /* a lock that cannot be held: the body is skipped */
    }
    CHECK_EQ(ran, 0);
}

static void on_sigint(int sig)
{
    (void)sig;
}

static void *hold_then_interrupt(void *arg)
{
    (void)arg;
    cth_sleep(0.05);
    CHECK_OK(cth_interrupt_main(SIGINT));
    cth_sleep(0.05);
    CHECK_OK(cth_lock_release(&lock));
    return NULL;
}

/* An interruption of the main thread while it waits for a guard's lock does
 * not skip the block: the lock is acquired and the next wait reports
 * CTH_EINTR. */
CTH_TEST(interruption_kept_pending)
{
    signal(SIGINT, on_sigint);
    CHECK_OK(cth_lock_acquire(&lock, CTH_FOREVER));
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, hold_then_interrupt, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    int ran = 0;
    CTH_SYNCHRONIZED_ON(&lock) {
        ran = 1;
    }
    CHECK_EQ(ran, 1);
    CHECK_EQ(cth_sleep(5), CTH_EINTR);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
}
