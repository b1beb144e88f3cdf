/* SPDX-License-Identifier: MIT */
/*
 * test_lock.c - Lock and RLock, ported from CPython's Lib/test/lock_tests.py:
 * BaseLockTests (run for both, through the small table of operations
 * below), LockTests and RLockTests, plus the error cases and interruption.
 */
#include <dlfcn.h>
#include <sched.h>

#include "bunch.h"
#include "lock.h"

/* The 0.1.0 signature: the recursion count is a size_t. */
_Static_assert(_Generic(&cth_rlock_recursion_count, size_t (*)(const cth_rlock_t *) : 1,
                        default : 0),
               "size_t cth_rlock_recursion_count(const cth_rlock_t *)");

struct ops {
    void *obj;
    int (*acquire)(void *, double);
    int (*release)(void *);
    bool (*locked)(const void *);
};

static int lock_acquire(void *l, double t)
{
    return cth_lock_acquire(l, t);
}
static int lock_release(void *l)
{
    return cth_lock_release(l);
}
static bool lock_locked(const void *l)
{
    return cth_lock_locked(l);
}
static int rlock_acquire(void *l, double t)
{
    return cth_rlock_acquire(l, t);
}
static int rlock_release(void *l)
{
    return cth_rlock_release(l);
}
static bool rlock_locked(const void *l)
{
    return cth_rlock_locked(l);
}

/* ConditionAsRLockTests: a Condition (its default lock is an RLock) used
 * as a lock through its own acquire and release. */
static int cond_acquire(void *c, double t)
{
    return cth_cond_acquire(c, t);
}
static int cond_release(void *c)
{
    return cth_cond_release(c);
}
static bool cond_locked(const void *c)
{
    return cth_rlock_locked(&((const cth_cond_t *)c)->_own);
}

static cth_lock_t the_lock;
static cth_rlock_t the_rlock;
static cth_cond_t the_cond = CTH_COND_INIT;
static struct ops LOCK = {&the_lock, lock_acquire, lock_release, lock_locked};
static struct ops RLOCK = {&the_rlock, rlock_acquire, rlock_release, rlock_locked};
static struct ops COND = {&the_cond, cond_acquire, cond_release, cond_locked};

/* test_constructor / test_acquire_destroy / test_acquire_release. */
static void base_acquire_release(struct ops *o)
{
    CHECK(!o->locked(o->obj));
    CHECK_OK(o->acquire(o->obj, CTH_FOREVER));
    CHECK(o->locked(o->obj));
    CHECK_OK(o->release(o->obj));
    CHECK(!o->locked(o->obj));
}
CTH_TEST(lock_acquire_release)
{
    base_acquire_release(&LOCK);
}
CTH_TEST(rlock_acquire_release)
{
    base_acquire_release(&RLOCK);
}
CTH_TEST(cond_as_rlock_acquire_release)
{
    base_acquire_release(&COND);
}

static void try_other(void *arg)
{
    struct ops *o = arg;
    CHECK_EQ(o->acquire(o->obj, 0), CTH_EAGAIN);
}

/* test_try_acquire / test_try_acquire_contended. */
static void base_try_acquire(struct ops *o)
{
    CHECK_OK(o->acquire(o->obj, 0));
    struct bunch b;
    bunch_start(&b, 1, try_other, o);
    bunch_join(&b);
    CHECK_OK(o->release(o->obj));
}
CTH_TEST(lock_try_acquire)
{
    base_try_acquire(&LOCK);
}
CTH_TEST(rlock_try_acquire)
{
    base_try_acquire(&RLOCK);
}
CTH_TEST(cond_as_rlock_try_acquire)
{
    base_try_acquire(&COND);
}

static void acquire_release_fn(void *arg)
{
    struct ops *o = arg;
    CHECK_OK(o->acquire(o->obj, CTH_FOREVER));
    CHECK_OK(o->release(o->obj));
}

/* test_acquire_contended: 5 threads blocked in acquire all finish after
 * one release. */
static void base_acquire_contended(struct ops *o)
{
    CHECK_OK(o->acquire(o->obj, CTH_FOREVER));
    struct bunch b;
    bunch_start(&b, 5, acquire_release_fn, o);
    settle();
    CHECK_EQ(atomic_load(&b.finished), 0);
    CHECK_OK(o->release(o->obj));
    bunch_join(&b);
    CHECK(!o->locked(o->obj));
}
CTH_TEST(lock_acquire_contended)
{
    base_acquire_contended(&LOCK);
}
CTH_TEST(rlock_acquire_contended)
{
    base_acquire_contended(&RLOCK);
}
CTH_TEST(cond_as_rlock_acquire_contended)
{
    base_acquire_contended(&COND);
}

/* test_with: a scoped acquire releases on the normal and the error path. */
static int scoped(struct ops *o, int fail)
{
    CHECK_OK(o->acquire(o->obj, CTH_FOREVER));
    int r = fail ? CTH_EINVAL : 0;
    CHECK_OK(o->release(o->obj));
    return r;
}
static void base_with(struct ops *o)
{
    CHECK_OK(scoped(o, 0));
    CHECK(!o->locked(o->obj));
    CHECK_EQ(scoped(o, 1), CTH_EINVAL);
    CHECK(!o->locked(o->obj));
    struct bunch b;
    bunch_start(&b, 1, acquire_release_fn, o);
    bunch_join(&b);
}
CTH_TEST(lock_with)
{
    base_with(&LOCK);
}
CTH_TEST(rlock_with)
{
    base_with(&RLOCK);
}
CTH_TEST(cond_as_rlock_with)
{
    base_with(&COND);
}

/* test_thread_leak: 15 threads lock and unlock; none is left behind. */
static void base_thread_leak(struct ops *o)
{
    size_t before = cth_active_count();
    for (int i = 0; i < 15; i++) {
        struct bunch b;
        bunch_start(&b, 1, acquire_release_fn, o);
        bunch_join(&b);
    }
    CHECK_EQ(cth_active_count(), before);
}
CTH_TEST(lock_thread_leak)
{
    base_thread_leak(&LOCK);
}
CTH_TEST(rlock_thread_leak)
{
    base_thread_leak(&RLOCK);
}
CTH_TEST(cond_as_rlock_thread_leak)
{
    base_thread_leak(&COND);
}

static void timed_other(void *arg)
{
    struct ops *o = arg;
    double start = check_now();
    CHECK_EQ(o->acquire(o->obj, 0.5), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.5);
}

/* test_timeout: bad timeouts, TIMEOUT_MAX, and a 0.5 s timed failure. */
static void base_timeout(struct ops *o)
{
    check_bad_timeouts(o->acquire, o->obj);
    CHECK(!o->locked(o->obj));
    CHECK_OK(o->acquire(o->obj, CTH_TIMEOUT_MAX));
    CHECK_OK(o->release(o->obj));
    CHECK_OK(o->acquire(o->obj, 0.01));
    check_bad_timeouts(o->acquire, o->obj); /* refused while held too */
    struct bunch b;
    bunch_start(&b, 1, timed_other, o);
    bunch_join(&b);
    CHECK_OK(o->release(o->obj));
}
CTH_TEST(lock_timeout)
{
    base_timeout(&LOCK);
}
CTH_TEST(rlock_timeout)
{
    base_timeout(&RLOCK);
}
CTH_TEST(cond_as_rlock_timeout)
{
    base_timeout(&COND);
}

/* NULL handles. */
CTH_TEST(null)
{
    CHECK_EQ(cth_lock_init(NULL), CTH_EINVAL);
    CHECK_EQ(cth_lock_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_lock_release(NULL), CTH_EINVAL);
    CHECK(!cth_lock_locked(NULL));
    CHECK_EQ(cth_rlock_init(NULL), CTH_EINVAL);
    CHECK_EQ(cth_rlock_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_rlock_release(NULL), CTH_EINVAL);
    CHECK(!cth_rlock_locked(NULL));
    CHECK(!cth_rlock_is_owned(NULL));
    CHECK_EQ(cth_rlock_recursion_count(NULL), 0);
    cth_lock_t l;
    memset(&l, 0xff, sizeof l);
    CHECK_OK(cth_lock_init(&l));
    CHECK(!cth_lock_locked(&l));
    cth_rlock_t r;
    memset(&r, 0xff, sizeof r);
    CHECK_OK(cth_rlock_init(&r));
    CHECK(!cth_rlock_locked(&r));
    CHECK_EQ(cth_rlock_recursion_count(&r), 0);
}

static cth_lock_t reacq;
static atomic_int reacq_phase;

static void reacquire_fn(void *arg)
{
    (void)arg;
    CHECK_OK(cth_lock_acquire(&reacq, CTH_FOREVER));
    atomic_store(&reacq_phase, 1);
    CHECK_OK(cth_lock_acquire(&reacq, CTH_FOREVER)); /* blocks: not re-entrant */
    atomic_store(&reacq_phase, 2);
}

/* LockTests.test_reacquire: the second acquire blocks until another thread
 * releases. */
CTH_TEST(lock_reacquire)
{
    struct bunch b;
    bunch_start(&b, 1, reacquire_fn, NULL);
    wait_until(&reacq_phase, 1);
    settle();
    CHECK_EQ(atomic_load(&reacq_phase), 1);
    CHECK_OK(cth_lock_release(&reacq));
    bunch_join(&b);
    CHECK_EQ(atomic_load(&reacq_phase), 2);
    CHECK_OK(cth_lock_release(&reacq));
}

static void acquire_only(void *arg)
{
    CHECK_OK(cth_lock_acquire(arg, CTH_FOREVER));
}

/* LockTests.test_different_thread: released by a thread that did not
 * acquire it; releasing an unlocked lock is an error. */
CTH_TEST(lock_different_thread)
{
    cth_lock_t l = CTH_LOCK_INIT;
    struct bunch b;
    bunch_start(&b, 1, acquire_only, &l);
    bunch_join(&b);
    CHECK(cth_lock_locked(&l));
    CHECK_OK(cth_lock_release(&l));
    CHECK(!cth_lock_locked(&l));
    CHECK_EQ(cth_lock_release(&l), CTH_EPERM);
}

/* LockTests.test_state_after_timeout: after a timed-out acquire the lock is
 * unlocked cleanly and re-acquirable. */
CTH_TEST(lock_state_after_timeout)
{
    cth_lock_t l = CTH_LOCK_INIT;
    CHECK_OK(cth_lock_acquire(&l, CTH_FOREVER));
    CHECK_EQ(cth_lock_acquire(&l, 0.01), CTH_ETIMEDOUT);
    CHECK_OK(cth_lock_release(&l));
    CHECK(!cth_lock_locked(&l));
    CHECK_OK(cth_lock_acquire(&l, 0));
    CHECK_OK(cth_lock_release(&l));
    CHECK_EQ(cth_lock_release(&l), CTH_EPERM);
}

/* RLockTests.test_reacquire / test_release_unacquired. */
CTH_TEST(rlock_reacquire)
{
    cth_rlock_t r = CTH_RLOCK_INIT;
    CHECK_EQ(cth_rlock_release(&r), CTH_EPERM);
    CHECK_OK(cth_rlock_acquire(&r, CTH_FOREVER));
    CHECK_OK(cth_rlock_acquire(&r, CTH_FOREVER));
    CHECK_OK(cth_rlock_acquire(&r, 0));
    CHECK_OK(cth_rlock_release(&r));
    CHECK_OK(cth_rlock_release(&r));
    CHECK(cth_rlock_locked(&r));
    CHECK_OK(cth_rlock_release(&r));
    CHECK(!cth_rlock_locked(&r));
    CHECK_EQ(cth_rlock_release(&r), CTH_EPERM);
}

static cth_rlock_t rc_lock;
static atomic_int rc_phase;

static void recursion_other(void *arg)
{
    (void)arg;
    CHECK_OK(cth_rlock_acquire(&rc_lock, CTH_FOREVER));
    CHECK_EQ(cth_rlock_recursion_count(&rc_lock), 1);
    atomic_store(&rc_phase, 1);
    while (atomic_load(&rc_phase) != 2)
        cth_sleep(0.001);
    CHECK_OK(cth_rlock_release(&rc_lock));
}

/* RLockTests.test_recursion_count: per-owner count; another thread reads 0
 * even while it holds the lock. */
CTH_TEST(rlock_recursion_count)
{
    CHECK_EQ(cth_rlock_recursion_count(&rc_lock), 0);
    CHECK_OK(cth_rlock_acquire(&rc_lock, CTH_FOREVER));
    CHECK_EQ(cth_rlock_recursion_count(&rc_lock), 1);
    CHECK_OK(cth_rlock_acquire(&rc_lock, CTH_FOREVER));
    CHECK_EQ(cth_rlock_recursion_count(&rc_lock), 2);
    CHECK_OK(cth_rlock_release(&rc_lock));
    CHECK_EQ(cth_rlock_recursion_count(&rc_lock), 1);
    CHECK_OK(cth_rlock_release(&rc_lock));
    CHECK_EQ(cth_rlock_recursion_count(&rc_lock), 0);
    struct bunch b;
    bunch_start(&b, 1, recursion_other, NULL);
    wait_until(&rc_phase, 1);
    CHECK_EQ(cth_rlock_recursion_count(&rc_lock), 0);
    CHECK(cth_rlock_locked(&rc_lock));
    atomic_store(&rc_phase, 2);
    bunch_join(&b);
}

/* The recursion count's limit (no Python test: Python's count has none):
 * the acquire that would pass UINT32_MAX levels is refused with
 * CTH_EOVERFLOW and changes nothing. Four billion acquires would take too
 * long, so the test sets the count through the private field, as only a
 * test may. */
CTH_TEST(rlock_recursion_overflow)
{
    cth_rlock_t r = CTH_RLOCK_INIT;
    CHECK_OK(cth_rlock_acquire(&r, CTH_FOREVER));
    r._count = UINT32_MAX - 1;
    CHECK_OK(cth_rlock_acquire(&r, CTH_FOREVER));
    CHECK_EQ(cth_rlock_recursion_count(&r), UINT32_MAX);
    CHECK_EQ(cth_rlock_acquire(&r, CTH_FOREVER), CTH_EOVERFLOW);
    CHECK_EQ(cth_rlock_acquire(&r, 0), CTH_EOVERFLOW);
    CHECK_EQ(cth_rlock_recursion_count(&r), UINT32_MAX);
    CHECK(cth_rlock_is_owned(&r));
    CHECK_OK(cth_rlock_release(&r));
    CHECK_EQ(cth_rlock_recursion_count(&r), UINT32_MAX - 1);
    r._count = 1;
    CHECK_OK(cth_rlock_release(&r));
    CHECK(!cth_rlock_locked(&r));
    CHECK_EQ(cth_rlock_release(&r), CTH_EPERM);
}

static cth_rlock_t dt_lock;

static void rlock_acquire_only(void *arg)
{
    (void)arg;
    CHECK_OK(cth_rlock_acquire(&dt_lock, CTH_FOREVER));
    CHECK(cth_rlock_is_owned(&dt_lock));
}

/* RLockTests.test_different_thread / test__is_owned: a non-owner cannot
 * release; owned is true only in the owner, at every depth. */
CTH_TEST(rlock_different_thread)
{
    CHECK(!cth_rlock_is_owned(&dt_lock));
    struct bunch b;
    bunch_start(&b, 1, rlock_acquire_only, NULL);
    bunch_join(&b);
    CHECK(cth_rlock_locked(&dt_lock));
    CHECK(!cth_rlock_is_owned(&dt_lock));
    CHECK_EQ(cth_rlock_release(&dt_lock), CTH_EPERM);
    CHECK_EQ(cth_rlock_acquire(&dt_lock, 0), CTH_EAGAIN);
    cth_rlock_t r = CTH_RLOCK_INIT;
    CHECK_OK(cth_rlock_acquire(&r, CTH_FOREVER));
    CHECK(cth_rlock_is_owned(&r));
    CHECK_OK(cth_rlock_acquire(&r, CTH_FOREVER));
    CHECK(cth_rlock_is_owned(&r));
    CHECK_OK(cth_rlock_release(&r));
    CHECK(cth_rlock_is_owned(&r));
    CHECK_OK(cth_rlock_release(&r));
    CHECK(!cth_rlock_is_owned(&r));
}

static int lock_wait_forever(void *l)
{
    return cth_lock_acquire(l, CTH_FOREVER);
}
static int rlock_wait_forever(void *l)
{
    return cth_rlock_acquire(l, CTH_FOREVER);
}

/* The main thread blocked in acquire wakes with CTH_EINTR. */
CTH_TEST(lock_interrupt_main)
{
    cth_lock_t l = CTH_LOCK_INIT;
    CHECK_OK(cth_lock_acquire(&l, 0));
    check_interrupted(lock_wait_forever, &l);
    CHECK_OK(cth_lock_release(&l));
    CHECK(!cth_lock_locked(&l));
}

CTH_TEST(rlock_interrupt_main)
{
    static cth_rlock_t r;
    struct bunch b;
    dt_lock = r;
    bunch_start(&b, 1, rlock_acquire_only, NULL); /* another thread owns dt_lock */
    bunch_join(&b);
    check_interrupted(rlock_wait_forever, &dt_lock);
    CHECK(!cth_rlock_is_owned(&dt_lock));
}

/* The library's short internal holds (a pool's, a queue's, the timer
 * service's lock) keep an interruption that lands while the main thread
 * waits for them: it is reported by the main thread's next real wait. */
static cth_lock_t held_lock = CTH_LOCK_INIT;
static cth_event_t holder_has_it = CTH_EVENT_INIT;
static _Atomic int sigint_landed;

static void note_sigint(int sig)
{
    (void)sig;
    atomic_store(&sigint_landed, 1);
}

static void *hold_until_sigint(void *arg)
{
    (void)arg;
    CHECK_OK(cth_lock_acquire(&held_lock, CTH_FOREVER));
    CHECK_OK(cth_event_set(&holder_has_it));
    while (!atomic_load(&sigint_landed))
        cth_sleep(0.001);
    cth_sleep(0.05); /* the main thread rides out the interruption, still waiting */
    CHECK_OK(cth_lock_release(&held_lock));
    return NULL;
}

CTH_TEST(internal_lock_keeps_interrupt)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note_sigint;
    CHECK(sigaction(SIGINT, &sa, NULL) == 0);
    cth_thread_t *holder, *interrupter;
    CHECK_OK(cth_thread_create(&holder, hold_until_sigint, NULL, NULL));
    CHECK_OK(cth_thread_start(holder));
    CHECK_OK(cth_event_wait(&holder_has_it, CTH_FOREVER));
    CHECK_OK(cth_thread_create(&interrupter, check_interrupter, NULL, NULL));
    CHECK_OK(cth_thread_start(interrupter));
    cth__lock_acquire_keeping_interrupt(&held_lock); /* interrupted while it waits */
    CHECK(atomic_load(&sigint_landed));
    CHECK_OK(cth_lock_release(&held_lock));
    cth_event_t never = CTH_EVENT_INIT;
    CHECK_EQ(cth_event_wait(&never, 30), CTH_EINTR); /* the interruption, kept for it */
    CHECK_OK(cth_thread_join(holder, NULL, CTH_FOREVER));
    cth_thread_free(holder);
    CHECK_OK(cth_thread_join(interrupter, NULL, CTH_FOREVER));
    cth_thread_free(interrupter);
}

/* Eventual fairness (Go issue 13086, "lockskew"): a hog holds the lock for
 * 100 us at a time and re-takes it at once; another thread, sleeping 100 us
 * between attempts, must still get it again and again: a waiter that has
 * waited over 0.5 ms is handed the lock. The hog gives up after 60 s, which
 * only a lock without hand-off would need (its polite thread can starve for
 * 100 ms per attempt). */
/* Keep the CPU (and whatever lock is held) for `seconds`, without sleeping. */
static void busy_for(double seconds)
{
    double t0 = check_now();
    while (check_now() - t0 < seconds)
        ;
}

struct skew {
    cth_lock_t lock;
    atomic_int done;
    atomic_int hog_gave_up;
};

static void skew_hog(void *arg)
{
    struct skew *s = arg;
    double give_up = check_now() + 60;
    while (!atomic_load(&s->done)) {
        if (check_now() > give_up) {
            atomic_store(&s->hog_gave_up, 1);
            return;
        }
        CHECK_OK(cth_lock_acquire(&s->lock, CTH_FOREVER));
        busy_for(100e-6);
        CHECK_OK(cth_lock_release(&s->lock));
    }
}

CTH_TEST(lock_no_starvation)
{
    struct skew s = {CTH_LOCK_INIT, 0, 0};
    struct bunch b;
    bunch_start(&b, 1, skew_hog, &s);
    for (int i = 0; i < 50; i++) {
        CHECK_OK(cth_sleep(100e-6));
        CHECK_OK(cth_lock_acquire(&s.lock, CTH_FOREVER));
        CHECK_OK(cth_lock_release(&s.lock));
    }
    atomic_store(&s.done, 1);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&s.hog_gave_up), 0);
}

/* A waiter that a release woke and that found the lock taken again (a
 * holder barging back) naps: it sleeps on a timer instead of asking each
 * release for a wake-up, and stops napping once a nap passes without any
 * release. White-box: the word's bits (lock.c): LOCKED 1, PARKED 2, NAPPING
 * 8, one counted waiter 64. The waiter's sleeps are counted in /proc. */
#define WORD_PARKED 2u
#define WORD_NAPPING 8u
#define WORD_WAITERS(s) ((s) >> 6 & 0x7FFFFu)

struct barged {
    cth_lock_t lock;
    atomic_long tid;
    atomic_int stop;
};

static void barged_waiter(void *arg)
{
    struct barged *b = arg;
    atomic_store(&b->tid, cth_get_native_id());
    while (!atomic_load(&b->stop)) {
        CHECK_OK(cth_lock_acquire(&b->lock, CTH_FOREVER));
        CHECK_OK(cth_lock_release(&b->lock));
    }
}

static uint32_t lock_word(cth_lock_t *l)
{
    return atomic_load((_Atomic uint32_t *)&l->_state);
}

/* A thread's voluntary context switches (its sleeps), or -1. */
static long voluntary_switches(long tid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    FILE *f = fopen(path, "r");
    long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

CTH_TEST(lock_barged_waiter_naps)
{
    /* Valgrind runs one thread at a time: a 50 us nap often ends before the
     * barging holder has run at all, and the napper then takes the lock
     * for held long and sleeps; the releaser that napped after a hand-off
     * (below) makes that the common case. */
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("under valgrind, one thread runs at a time");
    struct barged b = {.lock = CTH_LOCK_INIT};
    struct bunch w;
    CHECK_OK(cth_lock_acquire(&b.lock, CTH_FOREVER));
    bunch_start(&w, 1, barged_waiter, &b);
    while (!atomic_load(&b.tid))
        CHECK_OK(cth_sleep(0.001));
    if (voluntary_switches(atomic_load(&b.tid)) < 0) {
        atomic_store(&b.stop, 1);
        CHECK_OK(cth_lock_release(&b.lock));
        bunch_join(&w);
        CHECK_SKIP("no /proc/self/task/<tid>/status");
    }
    /* Barge: release and take the lock back at once, holding it a few
     * microseconds at a time, until the waiter, woken for nothing, naps
     * (each hand-off lets it through once, and it comes back). */
    double give_up = check_now() + 20;
    uint32_t s = lock_word(&b.lock);
    while (!((s & WORD_NAPPING) && WORD_WAITERS(s) == 1)) {
        CHECK(check_now() < give_up);
        CHECK_OK(cth_lock_release(&b.lock));
        CHECK_OK(cth_lock_acquire(&b.lock, CTH_FOREVER));
        busy_for(5e-6);
        s = lock_word(&b.lock);
    }
    /* Now hold it without a release: after a nap that saw none, the napper
     * stops napping and sleeps until a release wakes it: no more sleeps
     * (a napper would sleep every 50 us). */
    while ((s & (WORD_NAPPING | WORD_PARKED)) != WORD_PARKED) {
        CHECK(check_now() < give_up);
        s = lock_word(&b.lock);
    }
    CHECK_EQ(WORD_WAITERS(s), 1);
    long before = voluntary_switches(atomic_load(&b.tid));
    busy_for(0.02);
    CHECK(voluntary_switches(atomic_load(&b.tid)) - before <= 1);
    CHECK_EQ(lock_word(&b.lock), s);
    /* The release wakes it, and it gets the lock. */
    atomic_store(&b.stop, 1);
    CHECK_OK(cth_lock_release(&b.lock));
    bunch_join(&w);
    CHECK_EQ(lock_word(&b.lock), 0u);
}

/* A waiter is handed the lock only once it has waited the hand-off age,
 * measured from its own start: after a hand-off, once the waiters are all
 * gone, no record of an old wait is left to make the next waiter look old.
 * White-box: _oldest_wait is the record, TICKET (4) the hand-off (lock.c). */
#define WORD_TICKET 4u

struct take_once {
    cth_lock_t *lock;
    _Atomic double started;
};

static void take_once(void *arg)
{
    struct take_once *w = arg;
    atomic_store(&w->started, check_now());
    CHECK_OK(cth_lock_acquire(w->lock, CTH_FOREVER));
    CHECK_OK(cth_lock_release(w->lock));
}

static void *run_take_once(void *arg)
{
    take_once(arg);
    return NULL;
}

static bool one_parked_waiter(cth_lock_t *l)
{
    uint32_t s = lock_word(l);
    return (s & WORD_PARKED) && WORD_WAITERS(s) == 1;
}

CTH_TEST(lock_handoff_not_before_its_time)
{
    cth_lock_t l = CTH_LOCK_INIT;
    _Atomic uint32_t *record = (_Atomic uint32_t *)&l._oldest_wait;
    struct take_once w = {.lock = &l};
    int rounds = 0, checked = 0;
    double give_up = check_now() + 20;
    while (rounds < 10) {
        CHECK(check_now() < give_up);
        /* A waiter that waits 1 ms is handed the lock; we queue behind it
         * and get it back once it is through. */
        struct bunch first;
        cth_thread_t *next;
        CHECK_OK(cth_lock_acquire(&l, CTH_FOREVER));
        bunch_start(&first, 1, take_once, &w);
        while (!one_parked_waiter(&l) || !atomic_load(record))
            CHECK_OK(cth_sleep(0.0001));
        busy_for(0.001);
        CHECK_OK(cth_lock_release(&l));
        CHECK_OK(cth_lock_acquire(&l, CTH_FOREVER));
        if (atomic_load(&first.finished) == 0) {
            /* Preempted before it recorded its wait: no hand-off. */
            CHECK_OK(cth_lock_release(&l));
            bunch_join(&first);
            continue;
        }
        bunch_join(&first);
        CHECK_EQ(atomic_load(record), 0u);
        /* Held 1 ms more, then a new waiter comes: released as soon as it
         * sleeps, the lock is unlocked, not handed to it (a TICKET stays
         * in the word until the waiter wakes and takes it). */
        busy_for(0.001);
        atomic_store(&w.started, 0.0);
        CHECK_OK(cth_thread_create(&next, run_take_once, &w, NULL));
        CHECK_OK(cth_thread_start(next));
        while (!one_parked_waiter(&l))
            ;
        CHECK_OK(cth_lock_release(&l));
        uint32_t s = lock_word(&l);
        if (check_now() - atomic_load(&w.started) < 0.0004) {
            CHECK_EQ(s & WORD_TICKET, 0u);
            checked++;
        }
        CHECK_OK(cth_thread_join(next, NULL, CTH_FOREVER));
        cth_thread_free(next);
        rounds++;
    }
    CHECK(checked > 0);
}

/* A waiter soon due a hand-off is woken ahead of it and waits awake
 * (READY, 32 in the word: lock.c), so that the hand-off finds it running
 * instead of waiting a wake-up's latency with the lock idle: a barging
 * holder sees READY in the word, while it holds the lock, before its
 * release hands the lock over. Only the waiter can set it; without it bit 5
 * would count a second waiter, and no other thread waits. */
#define WORD_READY 32u

/* Whether the process may run on two CPUs at once: on one, nobody is woken
 * ahead of a hand-off (it would only keep the holder from running). */
static bool two_cpus(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 1;
}

CTH_TEST(lock_waiter_awake_for_its_handoff)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("under valgrind, one thread runs at a time");
    if (!two_cpus())
        CHECK_SKIP("needs two CPUs");
    struct barged b = {.lock = CTH_LOCK_INIT};
    struct bunch w;
    CHECK_OK(cth_lock_acquire(&b.lock, CTH_FOREVER));
    bunch_start(&w, 1, barged_waiter, &b);
    double give_up = check_now() + 20;
    while (!(lock_word(&b.lock) & WORD_READY)) {
        CHECK(check_now() < give_up);
        CHECK_OK(cth_lock_release(&b.lock));
        CHECK_OK(cth_lock_acquire(&b.lock, CTH_FOREVER));
        busy_for(5e-6);
    }
    atomic_store(&b.stop, 1);
    CHECK_OK(cth_lock_release(&b.lock));
    bunch_join(&w);
}

/* A release that finds the longest waiter within 0.1 ms of its hand-off
 * (0.4 ms waited) wakes one ahead and says so (PREWOKE, 16 in the word:
 * lock.c); one that finds it due (0.5 ms) hands the lock over (TICKET). A
 * thread that can run on one CPU only wakes nobody ahead: the woken waiter
 * could only spin while the holder it waits for cannot run. White-box: the
 * word shows one counted napping waiter (nobody really sleeps on it), and
 * each release runs in a new thread (which reads the clock at once). */
#define WORD_PREWOKE 16u
#define WORD_WAITER 64u

struct aged {
    int64_t waited_ns;
    bool one_cpu;
    uint32_t word;
    int64_t took_ns; /* from the record to the release's end */
};

static void *release_aged(void *arg)
{
    struct aged *a = arg;
    if (a->one_cpu) {
        cpu_set_t set;
        CHECK_OK(sched_getaffinity(0, sizeof set, &set));
        int cpu = 0;
        while (!CPU_ISSET(cpu, &set))
            cpu++;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        CHECK_OK(sched_setaffinity(0, sizeof set, &set));
    }
    cth_lock_t l = CTH_LOCK_INIT;
    atomic_store((_Atomic uint32_t *)&l._state, 1u | WORD_NAPPING | WORD_WAITER);
    int64_t now = cth__now_ns();
    atomic_store((_Atomic uint32_t *)&l._oldest_wait,
                 (uint32_t)((uint64_t)(now - a->waited_ns) >> 10) | 1u);
    CHECK_OK(cth_lock_release(&l));
    a->took_ns = cth__now_ns() - now;
    a->word = lock_word(&l);
    return NULL;
}

/* The word after such a release, from a try that took under 20 us (a
 * loaded machine may take longer now and then). */
static uint32_t word_after_release(int64_t waited_ns, bool one_cpu)
{
    struct aged a = {waited_ns, one_cpu, 0, 0};
    for (int i = 0; i < 100 && (i == 0 || a.took_ns >= 20000); i++) {
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, release_aged, &a), 0);
        CHECK_EQ(pthread_join(t, NULL), 0);
    }
    CHECK(a.took_ns < 20000);
    return a.word;
}

CTH_TEST(lock_wakes_ahead_of_a_handoff)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("under valgrind a release takes longer than the 50 us margins");
    uint32_t waiter = WORD_NAPPING | WORD_WAITER;
    CHECK_EQ(word_after_release(100000, false), waiter);
    CHECK_EQ(word_after_release(450000, false), waiter | (two_cpus() ? WORD_PREWOKE : 0));
    CHECK_EQ(word_after_release(450000, true), waiter);
    CHECK_EQ(word_after_release(600000, false), waiter | WORD_TICKET | 1u);
}

/* The releaser that handed the lock to a READY waiter and wants it back
 * sees the waiter take it and naps at once (NAPPING, and counted), instead
 * of sleeping until the new holder's first release wakes it. The new
 * holder keeps the lock 0.5 ms and looks for that. A loaded machine may keep a thread off its
 * CPU long enough to spoil an attempt: one in five must show it. */
struct handed {
    cth_lock_t lock;
    atomic_int hold, napper_seen, stop;
};

static void handed_waiter(void *arg)
{
    struct handed *h = arg;
    while (!atomic_load(&h->stop)) {
        CHECK_OK(cth_lock_acquire(&h->lock, CTH_FOREVER));
        if (atomic_exchange(&h->hold, 0)) {
            double until = check_now() + 0.0005;
            bool seen = false;
            while (check_now() < until && !seen) {
                uint32_t s = lock_word(&h->lock);
                seen = (s & WORD_NAPPING) && WORD_WAITERS(s) == 1;
            }
            atomic_store(&h->napper_seen, seen ? 1 : -1);
        }
        CHECK_OK(cth_lock_release(&h->lock));
    }
}

CTH_TEST(lock_releaser_naps_after_its_handoff)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("under valgrind, one thread runs at a time");
    if (!two_cpus())
        CHECK_SKIP("needs two CPUs");
    struct handed h = {.lock = CTH_LOCK_INIT};
    struct bunch w;
    CHECK_OK(cth_lock_acquire(&h.lock, CTH_FOREVER));
    bunch_start(&w, 1, handed_waiter, &h);
    double give_up = check_now() + 20;
    int attempts = 0;
    while (attempts < 5 && atomic_load(&h.napper_seen) != 1) {
        CHECK(check_now() < give_up);
        atomic_store(&h.napper_seen, 0);
        while (!(lock_word(&h.lock) & WORD_READY)) {
            CHECK(check_now() < give_up);
            CHECK_OK(cth_lock_release(&h.lock));
            CHECK_OK(cth_lock_acquire(&h.lock, CTH_FOREVER));
            busy_for(5e-6);
        }
        /* Hand it over (the waiter is READY), and once the waiter has
         * taken it, want it back. */
        atomic_store(&h.hold, 1);
        CHECK_OK(cth_lock_release(&h.lock));
        while (lock_word(&h.lock) & WORD_TICKET)
            ;
        CHECK_OK(cth_lock_acquire(&h.lock, CTH_FOREVER));
        if (atomic_load(&h.napper_seen) != 0)
            attempts++; /* else the waiter missed the hand-off: try again */
        atomic_store(&h.hold, 0);
    }
    CHECK_EQ(atomic_load(&h.napper_seen), 1);
    atomic_store(&h.stop, 1);
    CHECK_OK(cth_lock_release(&h.lock));
    bunch_join(&w);
}

/* A PREWOKE that outlived the waiter it was for (woken ahead, that waiter
 * timed out or was interrupted before it looked, and a younger one is left
 * counted) makes nobody READY: a young waiter woken by a plain release
 * would otherwise wait awake and be handed the lock long before its time.
 * White-box: beside one young sleeping waiter we set PREWOKE as such a
 * waiter leaves it, then barge (release, which wakes the young one, and
 * take the lock back), and release again while the waiter is under 0.4 ms
 * old: the lock must be unlocked, not handed over (TICKET). */
CTH_TEST(lock_stale_prewoke_hands_nothing_early)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("under valgrind a round takes longer than the 0.4 ms margin");
    if (!two_cpus())
        CHECK_SKIP("needs two CPUs");
    cth_lock_t l = CTH_LOCK_INIT;
    struct take_once w = {.lock = &l};
    int checked = 0, early = 0;
    double give_up = check_now() + 20;
    for (int round = 0; round < 20 && check_now() < give_up; round++) {
        CHECK_OK(cth_lock_acquire(&l, CTH_FOREVER));
        atomic_store(&w.started, 0.0);
        cth_thread_t *t;
        CHECK_OK(cth_thread_create(&t, run_take_once, &w, NULL));
        CHECK_OK(cth_thread_start(t));
        while (!one_parked_waiter(&l))
            ;
        atomic_fetch_or((_Atomic uint32_t *)&l._state, WORD_PREWOKE);
        CHECK_OK(cth_lock_release(&l));
        CHECK_OK(cth_lock_acquire(&l, CTH_FOREVER));
        double started = atomic_load(&w.started);
        while (!(lock_word(&l) & WORD_READY) && check_now() - started < 0.0002)
            ;
        CHECK_OK(cth_lock_release(&l));
        uint32_t s = lock_word(&l);
        if (check_now() - started < 0.0004) {
            checked++;
            early += (s & WORD_TICKET) != 0;
        }
        CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
        cth_thread_free(t);
    }
    CHECK(checked > 0);
    CHECK_EQ(early, 0);
}

/* Hand-offs racing timeouts: while holders keep the lock for a few ms (so
 * that every waiter is due a hand-off), waiters give up after 1-3 ms or
 * wait on; whatever the interleaving, a handed-off lock is never stranded
 * (each acquire either gets it or times out, and the lock is free at the
 * end, its word 0: no PARKED, PREWOKE or READY left behind) and the
 * critical section is never shared. */
struct handoff {
    cth_lock_t lock;
    atomic_int inside;
    atomic_long taken, timed_out;
    long rounds;
};

static void handoff_worker(void *arg)
{
    struct handoff *h = arg;
    for (long i = 0; i < h->rounds; i++) {
        double timeout = (i % 3 == 0) ? CTH_FOREVER : 0.001 * (1 + i % 3);
        int r = cth_lock_acquire(&h->lock, timeout);
        if (r == CTH_ETIMEDOUT) {
            atomic_fetch_add(&h->timed_out, 1);
            continue;
        }
        CHECK_OK(r);
        CHECK_EQ(atomic_fetch_add(&h->inside, 1), 0);
        busy_for(0.002 * (i % 2));
        CHECK_EQ(atomic_fetch_sub(&h->inside, 1), 1);
        atomic_fetch_add(&h->taken, 1);
        CHECK_OK(cth_lock_release(&h->lock));
    }
}

CTH_TEST(lock_handoff_races_timeouts)
{
    struct handoff h = {.lock = CTH_LOCK_INIT, .rounds = check_iters(60)};
    struct bunch b;
    bunch_start(&b, 4, handoff_worker, &h);
    bunch_join(&b);
    CHECK_EQ(atomic_load(&h.taken) + atomic_load(&h.timed_out), 4 * h.rounds);
    CHECK(!cth_lock_locked(&h.lock));
    CHECK_EQ(lock_word(&h.lock), 0u); /* no bit left behind for the fast paths */
    CHECK_OK(cth_lock_acquire(&h.lock, 0));
    CHECK_OK(cth_lock_release(&h.lock));
}

/* A Condition's notified waiters are counted among the lock's waiters:
 * with the notifier holding the lock past the hand-off age, the waiters it
 * notified still get the lock, one release at a time, and nothing is left
 * counted once they are through (the lock is then free and uncontended). */
struct condhand {
    cth_lock_t lock;
    cth_cond_t cond;
    int go, waiting;
    atomic_int through;
};

static void condhand_waiter(void *arg)
{
    struct condhand *c = arg;
    CHECK_OK(cth_cond_acquire(&c->cond, CTH_FOREVER));
    c->waiting++;
    while (!c->go)
        CHECK_OK(cth_cond_wait(&c->cond, CTH_FOREVER));
    atomic_fetch_add(&c->through, 1);
    CHECK_OK(cth_cond_release(&c->cond));
}

CTH_TEST(cond_notified_waiters_take_the_lock_in_turn)
{
    struct condhand c = {.lock = CTH_LOCK_INIT};
    CHECK_OK(cth_cond_init(&c.cond, &c.lock));
    struct bunch b;
    bunch_start(&b, 5, condhand_waiter, &c);
    for (;;) {
        CHECK_OK(cth_cond_acquire(&c.cond, CTH_FOREVER));
        if (c.waiting == 5)
            break; /* all five wait: each counted itself, then waited */
        CHECK_OK(cth_cond_release(&c.cond));
        CHECK_OK(cth_sleep(0.001));
    }
    c.go = 1;
    CHECK_OK(cth_cond_notify_all(&c.cond));
    busy_for(0.003); /* hold the lock past the hand-off age */
    CHECK_OK(cth_cond_release(&c.cond));
    bunch_join(&b);
    CHECK_EQ(atomic_load(&c.through), 5);
    /* White-box: free, nobody left counted as a waiter, nobody parked. */
    CHECK_EQ(c.lock._state, 0u);
}

static void cond_acquire_only(void *arg)
{
    CHECK_OK(cth_cond_acquire(arg, CTH_FOREVER));
}

/* ConditionAsRLockTests: the RLock suite's test_reacquire,
 * test_release_unacquired and test_different_thread through a Condition. */
CTH_TEST(cond_as_rlock_reacquire_and_owner)
{
    cth_cond_t c = CTH_COND_INIT;
    CHECK_EQ(cth_cond_release(&c), CTH_EPERM);
    CHECK_OK(cth_cond_acquire(&c, CTH_FOREVER));
    CHECK_OK(cth_cond_acquire(&c, CTH_FOREVER));
    CHECK_OK(cth_cond_acquire(&c, 0));
    CHECK_EQ(cth_rlock_recursion_count(&c._own), 3);
    CHECK_OK(cth_cond_release(&c));
    CHECK_OK(cth_cond_release(&c));
    CHECK(cth_rlock_locked(&c._own));
    CHECK_OK(cth_cond_release(&c));
    CHECK(!cth_rlock_locked(&c._own));
    CHECK_EQ(cth_cond_release(&c), CTH_EPERM);
    struct bunch b;
    bunch_start(&b, 1, cond_acquire_only, &c);
    bunch_join(&b);
    CHECK(cth_rlock_locked(&c._own));
    CHECK_EQ(cth_cond_release(&c), CTH_EPERM); /* held by a thread that is gone */
    CHECK_EQ(cth_cond_acquire(&c, 0), CTH_EAGAIN);
}

/* BaseLockTests.test_acquire_destroy: a lock is dropped while held. C has
 * no destroy call: storage holding a held Lock or RLock may be freed with no
 * call at all (nothing leaks: the sanitizer runs check it), and storage that
 * held one may be initialized again, which makes it an unlocked lock that
 * works as new, whatever it held before. */
CTH_TEST(lock_acquire_destroy)
{
    cth_lock_t *l = malloc(sizeof *l);
    CHECK(l);
    CHECK_OK(cth_lock_init(l));
    CHECK_OK(cth_lock_acquire(l, CTH_FOREVER));
    free(l); /* dropped while held */
    cth_lock_t reused = CTH_LOCK_INIT;
    CHECK_OK(cth_lock_acquire(&reused, CTH_FOREVER));
    CHECK_OK(cth_lock_init(&reused)); /* the storage again, as a new lock */
    CHECK(!cth_lock_locked(&reused));
    base_acquire_release(&(struct ops){&reused, lock_acquire, lock_release, lock_locked});
    base_acquire_contended(&(struct ops){&reused, lock_acquire, lock_release, lock_locked});
}

CTH_TEST(rlock_acquire_destroy)
{
    cth_rlock_t *r = malloc(sizeof *r);
    CHECK(r);
    CHECK_OK(cth_rlock_init(r));
    CHECK_OK(cth_rlock_acquire(r, CTH_FOREVER));
    CHECK_OK(cth_rlock_acquire(r, CTH_FOREVER));
    free(r); /* dropped while held, two levels deep */
    cth_rlock_t reused = CTH_RLOCK_INIT;
    CHECK_OK(cth_rlock_acquire(&reused, CTH_FOREVER));
    CHECK_OK(cth_rlock_acquire(&reused, CTH_FOREVER));
    CHECK_OK(cth_rlock_init(&reused));
    CHECK(!cth_rlock_locked(&reused));
    CHECK(!cth_rlock_is_owned(&reused));
    CHECK_EQ(cth_rlock_recursion_count(&reused), 0);
    CHECK_EQ(cth_rlock_release(&reused), CTH_EPERM);
    base_acquire_release(&(struct ops){&reused, rlock_acquire, rlock_release, rlock_locked});
    base_acquire_contended(&(struct ops){&reused, rlock_acquire, rlock_release, rlock_locked});
}

/* An RLock held by another thread that stays alive (lock_tests' Bunch with
 * wait_before_exit=True) until the test lets it go. */
struct held_rlock {
    cth_rlock_t *rlock;
    atomic_int holding, let_go;
};

static void hold_rlock_fn(void *arg)
{
    struct held_rlock *h = arg;
    CHECK_OK(cth_rlock_acquire(h->rlock, CTH_FOREVER));
    CHECK_OK(cth_rlock_acquire(h->rlock, CTH_FOREVER));
    atomic_store(&h->holding, 1);
    while (!atomic_load(&h->let_go))
        cth_sleep(0.001);
    /* Whatever the other thread tried, the two levels are still ours. */
    CHECK(cth_rlock_is_owned(h->rlock));
    CHECK_EQ(cth_rlock_recursion_count(h->rlock), 2);
    CHECK_OK(cth_rlock_release(h->rlock));
    CHECK_OK(cth_rlock_release(h->rlock));
}

/* RLockTests.test_different_thread, with the owner alive as in Python: a
 * thread that does not own the RLock cannot release it, does not own it and
 * cannot take it without waiting; the owner's levels are untouched. */
CTH_TEST(rlock_different_thread_owner_alive)
{
    cth_rlock_t r = CTH_RLOCK_INIT;
    struct held_rlock h = {.rlock = &r};
    struct bunch b;
    bunch_start(&b, 1, hold_rlock_fn, &h);
    wait_until(&h.holding, 1);
    CHECK_EQ(cth_rlock_release(&r), CTH_EPERM);
    CHECK_EQ(cth_rlock_release(&r), CTH_EPERM);
    CHECK(cth_rlock_locked(&r));
    CHECK(!cth_rlock_is_owned(&r));
    CHECK_EQ(cth_rlock_recursion_count(&r), 0);
    CHECK_EQ(cth_rlock_acquire(&r, 0), CTH_EAGAIN);
    CHECK_EQ(cth_rlock_acquire(&r, 0.01), CTH_ETIMEDOUT);
    atomic_store(&h.let_go, 1);
    bunch_join(&b);
    CHECK(!cth_rlock_locked(&r));
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* The "release every level, save the state" step of a Condition over this
 * RLock (cth_cond_wait and cth_cond_wait_for are the C face of
 * _release_save) is refused with CTH_EPERM and changes nothing. */
static void check_release_save_refused(cth_cond_t *c, cth_rlock_t *r)
{
    bool was_locked = cth_rlock_locked(r);
    CHECK_EQ(cth_cond_wait(c, 0), CTH_EPERM);
    CHECK_EQ(cth_cond_wait(c, 0.01), CTH_EPERM);
    CHECK_EQ(cth_cond_wait(c, CTH_FOREVER), CTH_EPERM);
    CHECK_EQ(cth_cond_wait_for(c, never, NULL, 0.01), CTH_EPERM);
    CHECK_EQ(cth_rlock_locked(r), was_locked);
    CHECK(!cth_rlock_is_owned(r));
}

/* RLockTests.test_release_save_unacquired: _release_save of an RLock the
 * caller does not own is an error: fresh, after balanced acquire/release
 * pairs, and (beyond Python's test) while another thread owns it. For an
 * explicit RLock and for a Condition's own. */
CTH_TEST(rlock_release_save_unacquired)
{
    cth_rlock_t r = CTH_RLOCK_INIT;
    cth_cond_t over_rlock;
    CHECK_OK(cth_cond_init_rlock(&over_rlock, &r));
    cth_cond_t own = CTH_COND_INIT;
    struct {
        cth_cond_t *c;
        cth_rlock_t *r;
    } cases[] = {{&over_rlock, &r}, {&own, &own._own}};
    for (int i = 0; i < 2; i++) {
        cth_cond_t *c = cases[i].c;
        check_release_save_refused(c, cases[i].r);
        CHECK_OK(cth_cond_acquire(c, CTH_FOREVER));
        CHECK_OK(cth_cond_acquire(c, CTH_FOREVER));
        CHECK_OK(cth_cond_release(c));
        CHECK_OK(cth_cond_acquire(c, CTH_FOREVER));
        CHECK_OK(cth_cond_release(c));
        CHECK_OK(cth_cond_release(c));
        check_release_save_refused(c, cases[i].r);
        struct held_rlock h = {.rlock = cases[i].r};
        struct bunch b;
        bunch_start(&b, 1, hold_rlock_fn, &h);
        wait_until(&h.holding, 1);
        check_release_save_refused(c, cases[i].r);
        CHECK_EQ(cth_cond_notify(c, 1), CTH_EPERM);
        atomic_store(&h.let_go, 1);
        bunch_join(&b);
        CHECK(!cth_rlock_locked(cases[i].r));
    }
}

/* A timed acquire of a held Lock or RLock keeps one deadline across
 * spurious wake-ups (signals): it times out after at least its timeout. */
CTH_TEST(lock_timeout_under_signals)
{
    static cth_lock_t l;
    CHECK_OK(cth_lock_acquire(&l, 0));
    check_deadline_under_signals(lock_acquire, &l, 0.2);
    CHECK_OK(cth_lock_release(&l));
    static cth_rlock_t r;
    CHECK_OK(cth_rlock_acquire(&r, 0));
    check_deadline_under_signals(rlock_acquire, &r, 0.2);
    CHECK_OK(cth_rlock_release(&r));
}

/* cth_lock_acquire and cth_lock_release are inline in sync.h; the library
 * still exports both, for callers through a symbol (FFI, dlsym). Those work
 * on the same word as the inline ones: take, refuse, time out, give, and
 * report misuse. */
CTH_TEST(lock_exported_functions)
{
    int (*acquire)(cth_lock_t *, double);
    int (*release)(cth_lock_t *);
    *(void **)&acquire = dlsym(RTLD_DEFAULT, "cth_lock_acquire");
    *(void **)&release = dlsym(RTLD_DEFAULT, "cth_lock_release");
    CHECK(acquire != NULL && release != NULL);
    cth_lock_t lock = CTH_LOCK_INIT;
    CHECK_OK(acquire(&lock, CTH_FOREVER));
    CHECK(cth_lock_locked(&lock));
    CHECK_EQ(acquire(&lock, 0), CTH_EAGAIN);
    CHECK_EQ(cth_lock_acquire(&lock, 0), CTH_EAGAIN);
    CHECK_EQ(acquire(&lock, 0.01), CTH_ETIMEDOUT);
    CHECK_OK(cth_lock_release(&lock));
    CHECK_OK(cth_lock_acquire(&lock, CTH_FOREVER));
    CHECK_OK(release(&lock));
    CHECK_EQ(release(&lock), CTH_EPERM);
    CHECK_EQ(acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(acquire(&lock, -2), CTH_EINVAL);
    CHECK_EQ(acquire(&lock, NAN), CTH_EINVAL);
    CHECK_EQ(release(NULL), CTH_EINVAL);
    CHECK_EQ(lock._state, 0u);
}

/* While a process has only ever had one thread, the inline lock takes and
 * gives with a plain load and store; a thread started while the lock is so
 * held waits for it, and the release that follows (the process is no longer
 * single-threaded) hands it over: nothing is lost at the switch. */
static atomic_int got_it;

static void *take_and_give(void *arg)
{
    cth_lock_t *lock = arg;
    CHECK_OK(cth_lock_acquire(lock, CTH_FOREVER));
    atomic_store(&got_it, 1);
    CHECK_OK(cth_lock_release(lock));
    return NULL;
}

CTH_CHILD(lock_single_threaded_then_not)
{
#if defined(__has_include) && !defined(__SANITIZE_THREAD__) /* TSan starts a thread of its own */
#if __has_include(<sys/single_threaded.h>)
    if (!__libc_single_threaded)
        printf("not single-threaded at the start\n");
#endif
#endif
    cth_lock_t lock = CTH_LOCK_INIT;
    CHECK_OK(cth_lock_acquire(&lock, CTH_FOREVER));
    CHECK_EQ(cth_lock_acquire(&lock, 0), CTH_EAGAIN);
    CHECK_EQ(cth_lock_acquire(&lock, 0.001), CTH_ETIMEDOUT);
    CHECK_OK(cth_lock_release(&lock));
    CHECK_EQ(cth_lock_release(&lock), CTH_EPERM);
    CHECK_OK(cth_lock_acquire(&lock, CTH_FOREVER)); /* held across the switch */
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, take_and_give, &lock, NULL));
    CHECK_OK(cth_thread_start(t));
    cth_sleep(0.02);
    CHECK_EQ(atomic_load(&got_it), 0);
    CHECK_OK(cth_lock_release(&lock));
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    CHECK_EQ(atomic_load(&got_it), 1);
    CHECK_EQ(lock._state, 0u);
    printf("ok\n");
}

CTH_TEST(lock_single_threaded_then_not)
{
    check_child_prints("lock_single_threaded_then_not", "ok\n");
}
