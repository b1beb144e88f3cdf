/* SPDX-License-Identifier: MIT */
/*
 * stress_sync.c - long races on the sync objects, scaled by
 * CTH_STRESS_ITERS: mutual exclusion under oversubscription with blocking,
 * try and timed acquires mixed; no lost wake-up through notify and
 * notify_all; exactly as many successful waits as notifications reached
 * waiters, with timed waits, notify(n), notify_all and plain users of the
 * Condition's Lock racing (the requeue of notified waiters onto the lock);
 * Barrier generations over many rounds; Semaphore and Event hand-offs.
 */
#include "../bunch.h"

#define THREADS 8

static cth_lock_t mx_lock;
static cth_rlock_t mx_rlock;
static atomic_int inside;
static long counter;
static long mx_iters;

static void enter_critical(void)
{
    CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
    counter++;
    CHECK_EQ(atomic_fetch_sub(&inside, 1), 1);
}

static void mutex_fn(void *arg)
{
    long id = (long)(intptr_t)arg;
    long done = 0;
    for (long i = 0; done < mx_iters; i++) {
        int r;
        switch ((i + id) % 3) {
        case 0: r = cth_lock_acquire(&mx_lock, CTH_FOREVER); break;
        case 1: r = cth_lock_acquire(&mx_lock, 0); break;
        default: r = cth_lock_acquire(&mx_lock, 0.0001); break;
        }
        if (r == 0) {
            enter_critical();
            done++;
            CHECK_OK(cth_lock_release(&mx_lock));
        } else {
            CHECK(r == CTH_EAGAIN || r == CTH_ETIMEDOUT);
        }
    }
}

/* Mutual exclusion with more threads than cores, every kind of acquire. */
CTH_TEST(lock_mutual_exclusion)
{
    mx_iters = check_iters(40000);
    counter = 0;
    struct bunch b[THREADS];
    for (long i = 0; i < THREADS; i++)
        bunch_start(&b[i], 1, mutex_fn, (void *)(intptr_t)i);
    for (long i = 0; i < THREADS; i++)
        bunch_join(&b[i]);
    CHECK_EQ(counter, mx_iters * THREADS);
    CHECK(!cth_lock_locked(&mx_lock));
}

static void rmutex_fn(void *arg)
{
    long id = (long)(intptr_t)arg;
    long done = 0;
    for (long i = 0; done < mx_iters; i++) {
        int r = cth_rlock_acquire(&mx_rlock, (i + id) % 2 ? 0 : 0.0001);
        if (r == 0) {
            CHECK_OK(cth_rlock_acquire(&mx_rlock, CTH_FOREVER));
            enter_critical();
            done++;
            CHECK_OK(cth_rlock_release(&mx_rlock));
            CHECK_OK(cth_rlock_release(&mx_rlock));
        }
    }
}

/* The same for RLock, nested. */
CTH_TEST(rlock_mutual_exclusion)
{
    mx_iters = check_iters(20000);
    counter = 0;
    struct bunch b[THREADS];
    for (long i = 0; i < THREADS; i++)
        bunch_start(&b[i], 1, rmutex_fn, (void *)(intptr_t)i);
    for (long i = 0; i < THREADS; i++)
        bunch_join(&b[i]);
    CHECK_EQ(counter, mx_iters * THREADS);
}

/* No lost wake-up: producers add tokens and notify one (or all), consumers
 * wait for tokens; every token is consumed and everyone finishes. */
static cth_cond_t pc_cond = CTH_COND_INIT;
static long tokens, consumed, per_thread;
static int use_all;

static void producer(void *arg)
{
    (void)arg;
    for (long i = 0; i < per_thread; i++) {
        CHECK_OK(cth_cond_acquire(&pc_cond, CTH_FOREVER));
        tokens++;
        CHECK_OK(use_all ? cth_cond_notify_all(&pc_cond) : cth_cond_notify(&pc_cond, 1));
        CHECK_OK(cth_cond_release(&pc_cond));
    }
}

static void consumer(void *arg)
{
    (void)arg;
    for (long i = 0; i < per_thread; i++) {
        CHECK_OK(cth_cond_acquire(&pc_cond, CTH_FOREVER));
        while (tokens == 0)
            CHECK_OK(cth_cond_wait(&pc_cond, CTH_FOREVER));
        tokens--;
        consumed++;
        CHECK_OK(cth_cond_release(&pc_cond));
    }
}

static void run_pc(int all)
{
    use_all = all;
    per_thread = check_iters(20000);
    tokens = consumed = 0;
    struct bunch c, p;
    bunch_start(&c, 4, consumer, NULL);
    bunch_start(&p, 4, producer, NULL);
    bunch_join(&p);
    bunch_join(&c);
    CHECK_EQ(consumed, 4 * per_thread);
    CHECK_EQ(tokens, 0);
}

CTH_TEST(cond_notify_no_lost_wakeup)
{
    run_pc(0);
}
CTH_TEST(cond_notify_all_no_lost_wakeup)
{
    run_pc(1);
}

/* Exact delivery: waiters wait with short timeouts; notifiers notify(n) or
 * notify_all and count how many waiters each reached (`waiting` is the
 * FIFO's length: a waiter counts itself in, and is counted out by the
 * notify that reaches it or by itself when its wait times out); other threads take the Condition's Lock
 * directly, blocking, trying and timing out. Every notification that
 * reached a waiter must be one wait returning 0, no more, no fewer, and
 * nobody may hang on the lock (a lost wake-up of a requeued waiter). */
static cth_lock_t ex_lock;
static cth_cond_t ex_cond = CTH_COND_INIT_LOCK(&ex_lock);
static long waiting, delivered, woken;
static atomic_int ex_stop;

static void ex_waiter(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; !atomic_load(&ex_stop); i++) {
        CHECK_OK(cth_cond_acquire(&ex_cond, CTH_FOREVER));
        waiting++;
        int r = cth_cond_wait(&ex_cond, (i + id) % 4 ? 0.0005 : CTH_FOREVER);
        if (r == 0) {
            woken++; /* the notifier took it off `waiting` */
        } else {
            CHECK_EQ(r, CTH_ETIMEDOUT);
            waiting--;
        }
        CHECK_OK(cth_cond_release(&ex_cond));
    }
}

static void ex_notifier(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < mx_iters; i++) {
        CHECK_OK(cth_cond_acquire(&ex_cond, CTH_FOREVER));
        int n = (int)((i + id) % 4);
        long reach = n == 3 ? waiting : (waiting < n ? waiting : n);
        CHECK_OK(n == 3 ? cth_cond_notify_all(&ex_cond) : cth_cond_notify(&ex_cond, n));
        delivered += reach;
        waiting -= reach;
        CHECK_OK(cth_cond_release(&ex_cond));
        if (i % 16 == 0)
            cth_sleep(0.0001);
    }
}

static void ex_locker(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; !atomic_load(&ex_stop); i++) {
        int r = cth_lock_acquire(&ex_lock, (i + id) % 3 == 0   ? 0
                                           : (i + id) % 3 == 1 ? 0.0001
                                                               : CTH_FOREVER);
        if (r == 0)
            CHECK_OK(cth_lock_release(&ex_lock));
        else
            CHECK(r == CTH_EAGAIN || r == CTH_ETIMEDOUT);
    }
}

CTH_TEST(cond_exact_delivery)
{
    mx_iters = check_iters(20000);
    struct bunch w[4], n[2], l[2];
    for (int i = 0; i < 4; i++)
        bunch_start(&w[i], 1, ex_waiter, (void *)(intptr_t)i);
    for (int i = 0; i < 2; i++)
        bunch_start(&l[i], 1, ex_locker, (void *)(intptr_t)i);
    for (int i = 0; i < 2; i++)
        bunch_start(&n[i], 1, ex_notifier, (void *)(intptr_t)i);
    for (int i = 0; i < 2; i++)
        bunch_join(&n[i]);
    /* Wake the untimed waiters until every waiter has seen the stop. */
    atomic_store(&ex_stop, 1);
    for (int left = 4; left > 0;) {
        CHECK_OK(cth_cond_acquire(&ex_cond, CTH_FOREVER));
        delivered += waiting;
        waiting = 0;
        CHECK_OK(cth_cond_notify_all(&ex_cond));
        CHECK_OK(cth_cond_release(&ex_cond));
        left = 0;
        for (int i = 0; i < 4; i++)
            left += atomic_load(&w[i].finished) == 0;
        cth_sleep(0.001);
    }
    for (int i = 0; i < 4; i++)
        bunch_join(&w[i]);
    for (int i = 0; i < 2; i++)
        bunch_join(&l[i]);
    CHECK_EQ(woken, delivered);
    CHECK(woken > 0);
}

/* Barrier generations: every round, each thread writes its slot, waits,
 * checks all slots of the round, waits again. */
static cth_barrier_t gen_bar = CTH_BARRIER_INIT(THREADS / 2);
static atomic_long slots[THREADS / 2];
static long rounds;
static atomic_int action_count;

static int count_action(void *arg)
{
    (void)arg;
    atomic_fetch_add(&action_count, 1);
    return 0;
}

static void barrier_fn(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long r = 1; r <= rounds; r++) {
        atomic_store(&slots[id], r);
        int idx = cth_barrier_wait(&gen_bar, CTH_FOREVER);
        CHECK(idx >= 0 && idx < THREADS / 2);
        for (int i = 0; i < THREADS / 2; i++)
            CHECK_EQ(atomic_load(&slots[i]), r);
        CHECK(cth_barrier_wait(&gen_bar, CTH_FOREVER) >= 0);
    }
}

CTH_TEST(barrier_generations)
{
    rounds = check_iters(3000);
    CHECK_OK(cth_barrier_init(&gen_bar, THREADS / 2, count_action, NULL, CTH_FOREVER));
    struct bunch b[THREADS / 2];
    for (long i = 0; i < THREADS / 2; i++)
        bunch_start(&b[i], 1, barrier_fn, (void *)(intptr_t)i);
    for (long i = 0; i < THREADS / 2; i++)
        bunch_join(&b[i]);
    CHECK_EQ(atomic_load(&action_count), 2 * rounds);
    CHECK(!cth_barrier_broken(&gen_bar));
}

/* Semaphore: units are conserved under every kind of acquire. */
static cth_sem_t st_sem = CTH_BOUNDED_SEM_INIT(3);
static atomic_int holders;

static void sem_fn(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0, done = 0; done < mx_iters; i++) {
        int r = cth_sem_acquire(&st_sem, (i + id) % 3 == 0 ? CTH_FOREVER : (i % 2 ? 0 : 0.0001));
        if (r)
            continue;
        CHECK(atomic_fetch_add(&holders, 1) < 3);
        atomic_fetch_sub(&holders, 1);
        done++;
        CHECK_OK(cth_sem_release(&st_sem, 1));
    }
}

CTH_TEST(sem_conservation)
{
    mx_iters = check_iters(20000);
    struct bunch b[THREADS];
    for (long i = 0; i < THREADS; i++)
        bunch_start(&b[i], 1, sem_fn, (void *)(intptr_t)i);
    for (long i = 0; i < THREADS; i++)
        bunch_join(&b[i]);
    CHECK_EQ(cth_sem_value(&st_sem), 3);
}

/* Event ping-pong: two events, strictly alternating; no wake-up lost. */
static cth_event_t ping, pong;

static void ponger(void *arg)
{
    (void)arg;
    for (long i = 0; i < mx_iters; i++) {
        CHECK_OK(cth_event_wait(&ping, CTH_FOREVER));
        CHECK_OK(cth_event_clear(&ping));
        CHECK_OK(cth_event_set(&pong));
    }
}

CTH_TEST(event_ping_pong)
{
    mx_iters = check_iters(20000);
    struct bunch b;
    bunch_start(&b, 1, ponger, NULL);
    for (long i = 0; i < mx_iters; i++) {
        CHECK_OK(cth_event_set(&ping));
        CHECK_OK(cth_event_wait(&pong, CTH_FOREVER));
        CHECK_OK(cth_event_clear(&pong));
    }
    bunch_join(&b);
}
