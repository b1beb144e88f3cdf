/* SPDX-License-Identifier: MIT */
/*
 * cond.c - Condition.
 *
 * Like Python's Condition, each wait puts a waiter of its own in a FIFO and
 * sleeps on it; notify(n) takes the n oldest waiters off the FIFO and marks
 * each one notified. The waiter lives on the waiting thread's stack and the
 * FIFO is guarded by the condition's own lock, which both wait (while
 * queueing and after waking) and notify (always) hold, so no second lock is
 * needed and a waiter's memory outlives every notify that touches it. A wait
 * returns 0 only when a notify marked its waiter: wake-ups of the futex
 * alone are never mistaken for a notification. A waiter that times out
 * takes itself off the FIFO once it has the lock again; if a notify got to
 * it first, it reports the notification instead.
 *
 * The waiter's word is AWAKE, SLEEPING (it is about to sleep, or sleeps, on
 * the word), WOKEN or NOTIFIED. A notify wakes the first WAKE_AT_ONCE
 * sleeping waiters it takes (WOKEN): a thread woken takes tens of
 * microseconds to run, by which time the notifier has usually released the
 * lock, and one system call per notify is all a ping-pong pays. Every
 * further sleeping waiter of the same notify is not woken, since all of
 * them would collide on the lock, but counted among the lock's waiters and
 * requeued onto the lock's word (NOTIFIED), and each release of the lock
 * wakes one: notify_all makes chains, not a stampede. The chains run in
 * lanes: each waiter woken at once, which retakes the lock uncounted, makes
 * its own release wake a counted waiter too when its notify takes more
 * waiters (leads, cth__lock_wake_on_release), so that several of the
 * notified threads are on their way at a time, besides the one holding the
 * lock. With a single lane every hand-down waits for one wake-up, and on
 * two CPUs each lands on the CPU the last waiter left idle, which has to be
 * woken first (the slowest wake-up a VM has); with several, both CPUs stay
 * busy and the next waiter is queued behind the one that runs. A waiter
 * woken at once often runs on its notifier's CPU ahead of the notifier,
 * which still holds the lock: it yields the CPU back rather than sleep a
 * second time (cth__lock_acquire_notified).
 *
 * A waiter that had not gone to sleep yet (or had stopped: a timeout, an
 * interruption) costs the notifier no system call and is not counted.
 * Whether the notifier counted it, the waiter learns from its word: the
 * notifier turns SLEEPING into NOTIFIED only after counting, and a waiter
 * that stops sleeping turns SLEEPING back into AWAKE itself, so only one of
 * the two leaves SLEEPING. (The notifier's exchange may still overwrite the
 * AWAKE the waiter just wrote: the waiter then reads itself notified, and
 * uncounted, which it is.) Each notify call itself wakes WAKE_AT_ONCE
 * waiters at most; a run of notify(1) calls under one hold of the lock wakes
 * one each, as pthread_cond_signal would.
 *
 * Spinning. A notify that finds its waiter not yet asleep costs neither side
 * a system call, and a thread woken on an idle CPU takes some 30 us to run:
 * so a waiter alone in the FIFO polls its word for a while before it
 * sleeps, when the notify that ended the thread's last wait ran on another
 * CPU (on the waiter's own CPU the notifier could not run meanwhile) and
 * such spins have lately paid off. Two threads playing ping-pong on two
 * CPUs then hand the condition back and forth without sleeping.
 *
 * Fork. The waiters of a condition inherited by a fork child are threads
 * that no longer exist, and their records lie on stacks that the child's
 * new threads may reuse. The condition keeps the fork generation
 * (lock.h) of its FIFO in _gen; the first wait or notify of a newer
 * generation empties the FIFO without reading it.
 */
#include "deadline.h"
#include "lock.h"
#include "wait.h"

_Static_assert(sizeof(cth_cond_t) == 56 || sizeof(void *) != 8, "cth_cond_t ABI");

enum { AWAKE = 0, SLEEPING = 1, NOTIFIED = 2, WOKEN = 3 };

/* Not list.h's list: the FIFO's ends are the public cth_cond_t's void
 * pointers (its ABI; all-zero CTH_COND_INIT), so it keeps its own links. */
struct waiter {
    struct waiter *next, *prev;
    _Atomic uint32_t word; /* AWAKE, SLEEPING, NOTIFIED, WOKEN */
    int notifier_cpu;      /* where the notify that took it ran (-1: unknown) */
    bool leads;            /* woken at once by a notify that takes more: hands on a wake-up */
};

static cth_rlock_t *cond_rlock(cth_cond_t *cond)
{
    return cond->_kind == CTH__COND_RLOCK ? (cth_rlock_t *)cond->_lock : &cond->_own;
}

/* The plain lock under the condition's Lock or RLock. */
static cth_lock_t *cond_plain_lock(cth_cond_t *cond)
{
    return cond->_kind == CTH__COND_LOCK ? (cth_lock_t *)cond->_lock : &cond_rlock(cond)->_lock;
}

CTH_API int cth_cond_init(cth_cond_t *cond, cth_lock_t *lock)
{
    if (!cond)
        return CTH_EINVAL;
    cond->_lock = lock;
    cond->_kind = lock ? CTH__COND_LOCK : CTH__COND_OWN_RLOCK;
    cond->_gen = cth__fork_gen();
    cond->_head = cond->_tail = NULL;
    return cth_rlock_init(&cond->_own);
}

CTH_API int cth_cond_init_rlock(cth_cond_t *cond, cth_rlock_t *rlock)
{
    if (!cond)
        return CTH_EINVAL;
    int err = cth_cond_init(cond, NULL);
    if (rlock) {
        cond->_lock = rlock;
        cond->_kind = CTH__COND_RLOCK;
    }
    return err;
}

CTH_API int cth_cond_acquire(cth_cond_t *cond, double timeout)
{
    if (!cond)
        return CTH_EINVAL;
    if (cond->_kind == CTH__COND_LOCK)
        return cth_lock_acquire((cth_lock_t *)cond->_lock, timeout);
    return cth_rlock_acquire(cond_rlock(cond), timeout);
}

CTH_API int cth_cond_release(cth_cond_t *cond)
{
    if (!cond)
        return CTH_EINVAL;
    if (cond->_kind == CTH__COND_LOCK)
        return cth_lock_release((cth_lock_t *)cond->_lock);
    return cth_rlock_release(cond_rlock(cond));
}

/* Python's _is_owned: an RLock must be the caller's; a plain Lock only has
 * to be held by someone (Python's weak check for Lock). */
static inline bool cond_is_owned(cth_cond_t *cond)
{
    if (cond->_kind == CTH__COND_LOCK)
        return cth__lock_held((cth_lock_t *)cond->_lock);
    return atomic_load_explicit(CTH__ATOMIC_UPTR(&cond_rlock(cond)->_owner),
                                memory_order_relaxed) == cth__self_token();
}

bool cth__cond_forget_dead_waiters(cth_cond_t *cond)
{
    uint32_t gen = cth__fork_gen();
    if (cond->_gen == gen)
        return false;
    cond->_gen = gen;
    cond->_head = cond->_tail = NULL;
    return true;
}

static void fifo_push(cth_cond_t *cond, struct waiter *w)
{
    w->next = NULL;
    w->prev = cond->_tail;
    if (cond->_tail)
        ((struct waiter *)cond->_tail)->next = w;
    else
        cond->_head = w;
    cond->_tail = w;
}

static void fifo_remove(cth_cond_t *cond, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        cond->_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        cond->_tail = w->prev;
}

/* Spinning: a waiter polls its word for up to SPIN_NS before it sleeps,
 * when that has lately paid off for the calling thread (spin_credit:
 * SPIN_CREDIT_MAX after a spin that saw the notify, halved after one that
 * did not; at 0, every SPIN_PROBE_EVERY-th wait tries again). SPIN_NS is
 * about what a sleep costs the waiter in latency: being woken on an idle CPU
 * takes some 30 us here, and a waiter that sleeps through a ping-pong's
 * round pays that twice. */
#define SPIN_NS 50000
#define SPIN_PAUSES_PER_LOOK 32u
#define SPIN_MIN_TIMEOUT 0.001 /* seconds: a nearer deadline is not spun toward */
#define SPIN_CREDIT_MAX 8u
#define SPIN_PROBE_EVERY 16u

static _Thread_local unsigned spin_credit __attribute__((tls_model("initial-exec")));
static _Thread_local unsigned spin_probe __attribute__((tls_model("initial-exec")));
/* The CPU of the notify that ended the thread's last wait, plus one (0:
 * none yet): a notifier on the waiter's own CPU cannot run while it spins. */
static _Thread_local int last_notifier_cpu __attribute__((tls_model("initial-exec")));

static bool spin_worth_trying(void)
{
    if (last_notifier_cpu > 0 && last_notifier_cpu - 1 == cth__os_current_cpu())
        return false;
    return spin_credit > 0 || ++spin_probe % SPIN_PROBE_EVERY == 0;
}

/* Poll *word while it is AWAKE, for SPIN_NS at most; returns what it holds
 * then, and updates spin_credit. */
static uint32_t spin_for_notify(_Atomic uint32_t *word)
{
    int64_t until = cth__now_ns() + SPIN_NS;
    do {
        for (unsigned i = 0; i < SPIN_PAUSES_PER_LOOK; i++) {
            uint32_t v = atomic_load_explicit(word, memory_order_acquire);
            if (v != AWAKE) {
                spin_credit = SPIN_CREDIT_MAX;
                return v;
            }
            cth__cpu_relax();
        }
    } while (cth__now_ns() < until);
    spin_credit /= 2;
    return AWAKE;
}

CTH_API int cth_cond_wait(cth_cond_t *cond, double timeout)
{
    if (!cond)
        return CTH_EINVAL;
    if (!cond_is_owned(cond))
        return CTH_EPERM; /* checked first, as Python does */
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;

    struct waiter w;
    atomic_init(&w.word, AWAKE);
    w.leads = false;
    cth__cond_forget_dead_waiters(cond);
    fifo_push(cond, &w);
    /* The only waiter (so at most one spins at a time), not about to time
     * out. */
    bool spin = cond->_head == &w && (timeout < 0 || timeout > SPIN_MIN_TIMEOUT) &&
                spin_worth_trying();

    uint32_t count = 0;
    if (cond->_kind == CTH__COND_LOCK)
        cth_lock_release((cth_lock_t *)cond->_lock);
    else
        cth__rlock_release_save(cond_rlock(cond), &count);

    int r = 0;
    bool counted = false; /* whether a notify counted us a waiter of the lock */
    uint32_t v = spin ? spin_for_notify(&w.word) : AWAKE;
    if (v == AWAKE && atomic_compare_exchange_strong_explicit(
                          &w.word, &v, SLEEPING, memory_order_acquire, memory_order_acquire)) {
        do
            r = cth__futex_wait(&w.word, SLEEPING, deadline);
        while (!r && atomic_load_explicit(&w.word, memory_order_acquire) == SLEEPING);
        v = SLEEPING;
        counted = !atomic_compare_exchange_strong_explicit(&w.word, &v, AWAKE, memory_order_acquire,
                                                           memory_order_acquire) &&
                  v == NOTIFIED;
    }

    /* Take the lock again: as a waiter a notify counted, as the waiter a
     * notify woke (no spinning: the notifier holds the lock), or plainly
     * after a timeout or a notify that came before we slept. */
    cth_lock_t *plain = cond_plain_lock(cond);
    bool here = v == WOKEN && w.notifier_cpu >= 0 && w.notifier_cpu == cth__os_current_cpu();
    int interrupted = counted      ? cth__lock_acquire_woken(plain)
                      : v == WOKEN ? cth__lock_acquire_notified(plain, here)
                                   : cth__lock_acquire_uninterrupted(plain);
    if (w.leads)
        cth__lock_wake_on_release(plain); /* its lane */
    if (cond->_kind != CTH__COND_LOCK)
        cth__rlock_restore(cond_rlock(cond), count);

    if (atomic_load_explicit(&w.word, memory_order_acquire) >= NOTIFIED) {
        last_notifier_cpu = w.notifier_cpu + 1;
        /* Notified: that wins; an interruption that came too is kept for
         * the main thread's next wait. */
        if (r == CTH_EINTR || interrupted)
            cth__interrupt_post();
        return 0;
    }
    fifo_remove(cond, &w);
    return interrupted ? CTH_EINTR : r;
}

CTH_API int cth_cond_wait_for(cth_cond_t *cond, cth_cond_predicate_fn predicate, void *arg,
                              double timeout)
{
    if (!cond || !predicate)
        return CTH_EINVAL;
    /* Python's wait_for: the predicate first, then wait(timeout) and the
     * predicate again until it holds or the total timeout has passed (so a
     * timeout of 0 still waits once: the lock is released and re-taken). */
    if (predicate(arg))
        return 0;
    if (!cond_is_owned(cond))
        return CTH_EPERM;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    for (;;) {
        err = cth_cond_wait(cond, cth__timeout_left(deadline));
        if (err && err != CTH_ETIMEDOUT)
            return err;
        if (predicate(arg))
            return 0;
        if (cth__timeout_left(deadline) == 0)
            return CTH_ETIMEDOUT;
    }
}

/* The sleeping waiters a notify wakes at once, each leading a lane of the
 * hand-down; the rest are requeued onto the lock. On two CPUs, four keep
 * both busy through a notify_all of eight waiters: fewer leave the second
 * CPU idle more often, more come nearer a stampede (waiters that find the
 * lock held and sleep again). */
#define WAKE_AT_ONCE 4u

/* Notify when there is a waiter, or an error to report. */
static __attribute__((noinline)) int cond_notify_slow(cth_cond_t *cond, size_t n)
{
    if (!cond)
        return CTH_EINVAL;
    if (!cond_is_owned(cond))
        return CTH_EPERM;
    cth__cond_forget_dead_waiters(cond);
    unsigned woke = 0;
    int cpu = cth__os_current_cpu();
    for (; n > 0 && cond->_head; n--) {
        struct waiter *w = cond->_head;
        fifo_remove(cond, w);
        w->notifier_cpu = cpu;
        uint32_t v = AWAKE;
        if (atomic_compare_exchange_strong_explicit(&w->word, &v, NOTIFIED, memory_order_release,
                                                    memory_order_relaxed))
            continue; /* not asleep: it finds NOTIFIED when it has the lock */
        if (woke < WAKE_AT_ONCE) {
            woke++;
            w->leads = n > 1 && cond->_head; /* set before it can run */
            if (atomic_exchange_explicit(&w->word, WOKEN, memory_order_release) == SLEEPING)
                cth__futex_wake(&w->word, 1);
            continue;
        }
        cth_lock_t *lock = cond_plain_lock(cond);
        cth__lock_add_waiter(lock);
        if (atomic_exchange_explicit(&w->word, NOTIFIED, memory_order_release) == SLEEPING)
            cth__lock_requeue(lock, &w->word, NOTIFIED);
        else
            cth__lock_remove_waiter(lock); /* it stopped sleeping meanwhile */
    }
    return 0;
}

CTH_API int cth_cond_notify(cth_cond_t *cond, size_t n)
{
    /* Nobody waiting (and the caller may notify): nothing to do. */
    if (__builtin_expect(cond && !cond->_head, 1) && cond_is_owned(cond))
        return 0;
    return cond_notify_slow(cond, n);
}

CTH_API int cth_cond_notify_all(cth_cond_t *cond)
{
    return cth_cond_notify(cond, SIZE_MAX);
}
