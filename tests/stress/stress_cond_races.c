/* SPDX-License-Identifier: MIT */
/*
 * stress_cond_races.c - Condition waits with short timeouts, notify(0..2)
 * and notify_all, and lockers trying, timing out and blocking, all on one
 * condition, over a Lock and over an RLock, with and without the main
 * thread waiting too while it is interrupted: every notification reaches
 * exactly one waiter, the critical section is never shared, and once every
 * thread is done the lock's word is back to 0 (no waiter left counted, no
 * PARKED or TICKET left behind; white-box: it reads the private _state).
 */
#include "../bunch.h"

static long iters;
static cth_lock_t ex_lock;
static cth_cond_t c_lock = CTH_COND_INIT_LOCK(&ex_lock);
static cth_cond_t c_rlock = CTH_COND_INIT;
static cth_cond_t *cv;
static long waiting, delivered, woken;
static atomic_int stop, main_in;
static atomic_long inside;

static cth_lock_t *plain(void)
{
    return cv == &c_lock ? &ex_lock : &cv->_own._lock;
}

static void waiter_loop(long id, int main)
{
    for (long i = 0; !atomic_load(&stop); i++) {
        int r = cth_cond_acquire(cv, CTH_FOREVER);
        if (r == CTH_EINTR) {
            CHECK(main);
            continue;
        }
        CHECK_OK(r);
        CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
        waiting++;
        atomic_fetch_sub(&inside, 1);
        r = cth_cond_wait(cv, (i + id) % 4 ? 0.0002 * ((i % 5) + 1) : 0.05);
        CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
        if (r == 0) {
            woken++;
        } else {
            CHECK(r == CTH_ETIMEDOUT || (main && r == CTH_EINTR));
            waiting--;
        }
        atomic_fetch_sub(&inside, 1);
        CHECK_OK(cth_cond_release(cv));
    }
}

static void waiter(void *arg)
{
    waiter_loop((long)(intptr_t)arg, 0);
}

static void notifier(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < iters; i++) {
        CHECK_OK(cth_cond_acquire(cv, CTH_FOREVER));
        CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
        int n = (int)((i + id) % 4);
        long reach = n == 3 ? waiting : (waiting < n ? waiting : n);
        CHECK_OK(n == 3 ? cth_cond_notify_all(cv) : cth_cond_notify(cv, n));
        delivered += reach;
        waiting -= reach;
        if (i % 7 == 0)
            for (volatile int k = 0; k < 2000; k++)
                ;
        atomic_fetch_sub(&inside, 1);
        CHECK_OK(cth_cond_release(cv));
        if (i % 16 == 0)
            cth_sleep(0.0001);
    }
}

static void locker(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; !atomic_load(&stop); i++) {
        double t = (i + id) % 4 == 0   ? 0
                   : (i + id) % 4 == 1 ? 0.00001
                   : (i + id) % 4 == 2 ? 0.0003
                                       : CTH_FOREVER;
        int r = cth_cond_acquire(cv, t);
        if (r == 0) {
            CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
            atomic_fetch_sub(&inside, 1);
            CHECK_OK(cth_cond_release(cv));
        } else {
            CHECK(r == CTH_EAGAIN || r == CTH_ETIMEDOUT);
        }
    }
}

static void interrupter(void *arg)
{
    (void)arg;
    while (atomic_load(&main_in)) {
        cth_interrupt_main(SIGUSR2);
        cth_sleep(0.0003);
    }
}

/* End the interrupted phase: stop the interrupter and join it, then take
 * the interruption it may have left pending (one call, one CTH_EINTR, at
 * the main thread's next wait), so that the waits after it are plain. */
static void stop_interrupter(struct bunch *in)
{
    atomic_store(&main_in, 0);
    for (int i = 0; i < in->n; i++) {
        int r;
        while ((r = cth_thread_join(in->threads[i], NULL, CTH_FOREVER)) == CTH_EINTR)
            ;
        CHECK_OK(r);
        cth_thread_free(in->threads[i]);
    }
    while (cth_sleep(0.001) == CTH_EINTR)
        ;
}

static void run(cth_cond_t *c, int use_main)
{
    cv = c;
    iters = check_iters(20000);
    waiting = delivered = woken = 0;
    atomic_store(&stop, 0);
    struct bunch w, n, l, in;
    bunch_start(&w, 4, waiter, NULL);
    bunch_start(&l, 3, locker, NULL);
    bunch_start(&n, 2, notifier, NULL);
    if (use_main) {
        atomic_store(&main_in, 1);
        bunch_start(&in, 1, interrupter, NULL);
        /* the main thread waits too, interrupted now and then */
        while (atomic_load(&n.finished) < 2) {
            for (long i = 0; i < 50; i++) {
                int r = cth_cond_acquire(cv, 0.001);
                if (r) {
                    CHECK(r == CTH_EINTR || r == CTH_ETIMEDOUT);
                    continue;
                }
                CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
                waiting++;
                atomic_fetch_sub(&inside, 1);
                r = cth_cond_wait(cv, i % 3 ? 0.0005 : 0.02);
                CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
                if (r == 0)
                    woken++;
                else {
                    CHECK(r == CTH_ETIMEDOUT || r == CTH_EINTR);
                    waiting--;
                }
                atomic_fetch_sub(&inside, 1);
                CHECK_OK(cth_cond_release(cv));
            }
        }
        stop_interrupter(&in);
    }
    bunch_join(&n);
    atomic_store(&stop, 1);
    for (;;) {
        CHECK_OK(cth_cond_acquire(cv, CTH_FOREVER));
        delivered += waiting;
        waiting = 0;
        CHECK_OK(cth_cond_notify_all(cv));
        CHECK_OK(cth_cond_release(cv));
        if (atomic_load(&w.finished) == 4)
            break;
        cth_sleep(0.001);
    }
    bunch_join(&w);
    bunch_join(&l);
    CHECK_EQ(woken, delivered);
    uint32_t st = atomic_load((_Atomic uint32_t *)&plain()->_state);
    if (st != 0)
        fprintf(stderr, "lock word left %#x\n", st);
    CHECK_EQ(st, 0);
}

CTH_TEST(lock_word_clean_lock)
{
    run(&c_lock, 0);
}
CTH_TEST(lock_word_clean_rlock)
{
    run(&c_rlock, 0);
}
CTH_TEST(lock_word_clean_lock_main)
{
    run(&c_lock, 1);
}
CTH_TEST(lock_word_clean_rlock_main)
{
    run(&c_rlock, 1);
}
