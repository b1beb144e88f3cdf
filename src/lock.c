/* SPDX-License-Identifier: MIT */
/*
 * lock.c - Lock and RLock.
 *
 * Lock is a futex lock with eventual fairness, after Rust's std Mutex, Go's
 * starvation mode and CPython 3.13's PyMutex. Its word _state holds:
 *   bit 0 LOCKED   someone holds it;
 *   bit 1 PARKED   a waiter may sleep on _state (a release must wake one,
 *                  unless NAPPING is set);
 *   bit 2 TICKET   the last release handed the lock to the waiters: LOCKED
 *                  stays set and the first waiter to look takes it over;
 *   bit 3 NAPPING  a waiter naps (below): releases wake nobody;
 *   bit 4 PREWOKE  a release woke a waiter ahead of its hand-off (below);
 *   bit 5 READY    that waiter is awake and looks for the hand-off;
 *   bits 6..24 WAITERS: threads that stopped spinning and have neither
 *                  taken the lock nor given up (asleep or about to look
 *                  again);
 *   bits 25..31 GEN: while WAITERS counts someone, the fork generation
 *                  (lock.h) they were counted in, modulo 128; 0 else.
 * _oldest_wait holds when the longest waiter began waiting, as far as known
 * (in units of 1024 ns, wrapping; 0: nobody recorded).
 * Uncontended, acquire is one atomic OR of LOCKED and release one
 * compare-and-swap LOCKED -> 0: no system call, no stack frame (everything
 * else is out of line), and while the process has only ever had one thread
 * a plain load and store instead (glibc's __libc_single_threaded, as its own
 * mutex does). A contended acquire spins briefly while the holder runs and
 * nobody waits, then counts itself in WAITERS, backs off (longer when
 * others wait too), and only then parks on _state. Both wait in pauses
 * that double between looks at the lock. The back-off
 * is what keeps a busy lock fast: a waiter that parks at once sets PARKED,
 * and the holder, releasing and re-taking the lock every few hundred
 * nanoseconds, pays a futex wake for every such try while the waiter, whose
 * futex wait finds the word changed, never really sleeps; a waiter that
 * backs off leaves the holder alone with its cache line.
 *
 * Napping. A waiter that a release woke but that finds the lock taken again
 * (the holder barging back, the usual case on a busy lock) would sleep,
 * be woken by the next release, find the same, and so on: a system call in
 * the holder and two context switches in the waiter for nothing, each time.
 * Instead it becomes the napper, if there is none (NAPPING): it sleeps NAP_NS
 * at a time with PARKED set, and a release that sees NAPPING wakes nobody
 * but clears PARKED. Awake again, the napper takes a free lock; finds PARKED
 * cleared (releases came: the lock is busy) and naps again; or finds it set
 * (no release for a whole nap: the lock is held long) and stops napping, to
 * sleep until a release wakes it. While NAPPING is set the other waiters
 * sleep without setting PARKED, and skip the back-off (the lock is busy);
 * the napper, once it has the lock, sets PARKED for them. So a busy holder
 * makes no system call per release, and a lock left free is taken within
 * about a nap. A hand-off wakes a sleeper even while someone naps.
 *
 * A newcomer may barge in ahead of the waiters (that is where the
 * throughput comes from), but not for long: a release that finds a waiter
 * recorded in _oldest_wait as waiting for over HANDOFF_NS does not unlock
 * but sets TICKET, and the releasing thread, should it want the lock back
 * at once, has to wait like anyone else. The decision is the releaser's,
 * not the waiter's, because the starved waiter may be the thread that
 * cannot run: woken, it often sits queued on the busy holder's CPU until
 * the holder blocks; the hand-off is what makes the holder block. TICKET is
 * only set while WAITERS counts someone, every counted waiter sleeps on
 * _state or is about to look at it, and a waiter that gives up (timeout,
 * interruption) takes a pending TICKET rather than leave it, so a
 * handed-off lock is never stranded. Any thread may release. A Condition's
 * notify wakes the first few sleeping waiters it takes (they come back as
 * uncounted newcomers), and counts every further one in WAITERS and
 * moves (requeues) it from its own word onto _state
 * (cth__lock_requeue): a release wakes it like any parked acquirer (or the
 * napper, once it has the lock, sets PARKED for it).
 *
 * Waking ahead. A hand-off to a sleeping waiter leaves the lock idle for a
 * wake-up's latency (50 us and more on a VM), every half millisecond on a
 * busy lock. So a release that finds the longest waiter within PREWAKE_NS
 * of its hand-off wakes one sleeper (the napper, usually) and sets PREWOKE;
 * the waiter that wakes clears it, sets READY, and waits awake, reading the
 * word (never writing it) with pauses in between, for up to READY_NS. (If
 * the longest waiter is no longer due soon, the waiter the PREWOKE was for
 * gave up before it looked: the waiter that finds it clears it, waits on.) A
 * release that sees READY hands the lock over at once, whatever the age, and
 * wakes nobody: the lock passes in well under a microsecond. The releasing
 * thread, back for the lock, watches the TICKET for a moment; taken, it
 * knows the lock busy and naps at once, instead of sleeping until the new
 * holder's first release wakes it.
 *
 * Fork. In a fork child the counted waiters are threads that no longer
 * exist, and a TICKET may be handed to them. So every slow path reads the
 * word through live_state: waiters of an older generation are dropped, and
 * with them PARKED and a TICKET (the lock is then free); a holder stays held
 * (the child's own thread, or one that no longer exists, as in Python). The
 * fast paths need no check: a word with waiters is never their 0 or LOCKED.
 * (A lock untouched for 128 nested forks would read as current: not a case
 * anyone meets.)
 *
 * RLock is a Lock plus the owner's identity (a per-thread address, see
 * cth__self_token) and a recursion count. Only the owner writes the count;
 * the owner field is atomic so that other threads can read it to learn that
 * they are not the owner.
 */
#define CTH__LOCK_SOURCE /* the exported out-of-line cth_lock_acquire and _release */
#include "lock.h"
#include "deadline.h"
#include "wait.h"

#include <sched.h>

_Thread_local char cth__self_token_var __attribute__((tls_model("initial-exec")));

_Static_assert(sizeof(cth_lock_t) == 8, "cth_lock_t ABI");
_Static_assert(sizeof(cth_rlock_t) == 24 || sizeof(void *) != 8, "cth_rlock_t ABI");

#define LOCKED CTH__LOCK_LOCKED
#define PARKED 2u
#define TICKET 4u
#define NAPPING 8u
#define PREWOKE 16u /* a release woke a waiter to get ready for a hand-off */
#define READY 32u   /* a counted waiter is awake, looking, for a hand-off */
#define WAITER 64u  /* one counted waiter */
#define GEN_SHIFT 25
#define GEN_MASK (0x7Fu << GEN_SHIFT)
#define WAITERS(s) (((s) & ~GEN_MASK) / WAITER)

/* glibc tells whether the process has only ever had one thread; while it
 * has, the fast paths need no atomic read-modify-write (glibc's own mutex
 * does the same). Elsewhere the answer is always "no" (sync.h). */
#define SINGLE_THREADED() CTH__SINGLE_THREADED()

/* The GEN bits of the current fork generation. */
static uint32_t gen_bits(void)
{
    return (cth__fork_gen() << GEN_SHIFT) & GEN_MASK;
}

/* The word s as this process has it: waiters counted before the latest fork
 * are gone, with the PARKED and TICKET that were for them (see Fork). */
static uint32_t live_state(uint32_t s)
{
    if (!WAITERS(s) || (s & GEN_MASK) == gen_bits())
        return s;
    return (s & TICKET) ? 0 : s & LOCKED;
}

/* s with one more counted waiter, of this generation. */
static uint32_t add_waiter(uint32_t s)
{
    return (live_state(s) | gen_bits()) + WAITER;
}

/* Once no waiter is counted, PARKED, NAPPING, PREWOKE, READY and GEN go
 * (the fast paths expect 0 or LOCKED); while some are, PARKED is set, since
 * they may sleep, unless a napper naps (it looks after them). */
static uint32_t parked_if_waiters(uint32_t n)
{
    if (!WAITERS(n))
        return n & ~(PARKED | NAPPING | PREWOKE | READY | GEN_MASK);
    return (n & NAPPING) ? n : n | PARKED;
}

/* Take the lock if it is free, waiters or not; false otherwise. One atomic
 * OR of LOCKED: if LOCKED was already set (a holder, or a pending TICKET,
 * which always comes with LOCKED) it changes nothing. Unlike a
 * compare-and-swap from an expected value it never needs a second try, nor
 * a read that would fetch the contended cache line twice. */
static inline bool lock_take_fast(_Atomic uint32_t *state)
{
    if (SINGLE_THREADED()) {
        uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
        if (s & LOCKED)
            return false;
        atomic_store_explicit(state, s | LOCKED, memory_order_relaxed);
        return true;
    }
    return !(atomic_fetch_or_explicit(state, LOCKED, memory_order_acquire) & LOCKED);
}

/* Release a lock nobody waits for (LOCKED -> 0); false otherwise. */
static inline bool lock_give_fast(_Atomic uint32_t *state)
{
    uint32_t s = LOCKED;
    if (SINGLE_THREADED()) {
        if (atomic_load_explicit(state, memory_order_relaxed) != LOCKED)
            return false;
        atomic_store_explicit(state, 0, memory_order_relaxed);
        return true;
    }
    return atomic_compare_exchange_strong_explicit(state, &s, 0, memory_order_release,
                                                   memory_order_relaxed);
}

/* Spinning and backing off wait in pause instructions (about 20 ns each
 * here), doubling from one look at the lock to the next, so that a waiter
 * reads the holder's cache line a few times, not hundreds. */
#define SPIN_PAUSES_MAX 256u    /* the first spin: ~10 us, 9 looks */
#define BACKOFF_ALONE 32u       /* a lone counted waiter, before it parks */
#define BACKOFF_CROWD 2048u     /* one of several counted waiters */
#define BACKOFF_SLACK_NS 200000 /* no back-off when the deadline is nearer */
/* 0.5 ms (PyMutex's TIME_TO_BE_FAIR_NS and Go's starvation mode: 1 ms): a
 * starved waiter gets the lock within about HANDOFF_NS, one hold and one
 * wake-up, which stays under 1 ms for holds of up to a few hundred us. */
#define HANDOFF_NS 500000
/* A waiter that will soon be due a hand-off is woken PREWAKE_NS ahead of
 * it (a wake-up's latency or two), and looks at the lock (READY) for up to
 * READY_NS: the hand-off then finds it running, not asleep. */
#define PREWAKE_NS 100000
#define READY_NS 100000
#define READY_PAUSES_MAX 32u /* ~1 us between looks of a READY waiter */
/* A releaser back for the lock it handed over watches the TICKET for up to
 * ~3 us, looking after every pause, so as to see a READY waiter take it and
 * nap before the new holder's first release. */
#define WATCH_LOOKS 128u
#define LATE_NS 1000000
#define NAP_NS 50000 /* about one wake-up's latency on a busy VM */
/* A Condition waiter woken on its notifier's CPU yields that CPU back to the
 * notifier up to NOTIFIED_YIELDS times while the lock is held, before it
 * parks (cth__lock_acquire_notified). */
#define NOTIFIED_YIELDS 4
/* A release reads the clock to see whether a waiter is due a hand-off. The
 * read costs as much as the rest of a short critical section, so a thread
 * whose releases come less than CLOCK_GAP_NS apart reads it at every
 * CLOCK_EVERY-th release only: a hand-off comes at most about
 * CLOCK_EVERY * CLOCK_GAP_NS late. */
#define CLOCK_EVERY 4
#define CLOCK_GAP_NS INT64_C(2000)

static _Thread_local unsigned release_skip __attribute__((tls_model("initial-exec")));
/* The lock this thread's latest slow release handed to the waiters, if it
 * did (a hint only: compared, never dereferenced). */
static _Thread_local cth_lock_t *handed_off __attribute__((tls_model("initial-exec")));
static _Thread_local int64_t release_read_at __attribute__((tls_model("initial-exec")));

/* Whether the calling thread may run on more than one CPU (asked once per
 * thread): on one, a waiter awake for its hand-off would only keep the
 * releasing holder from running, so nobody is woken ahead. */
static bool several_cpus(void)
{
    static _Thread_local int cpus __attribute__((tls_model("initial-exec")));
    if (!cpus)
        cpus = cth__os_cpu_count();
    return cpus > 1;
}

/* The clock of _oldest_wait: 1024 ns units, never 0. Differences are taken
 * modulo 2^32 (73 minutes); a waiter recorded longer ago than that merely
 * waits one more round before it is recorded again. */
static uint32_t since_of(int64_t ns)
{
    return (uint32_t)((uint64_t)ns >> 10) | 1u;
}

static uint32_t since_now(void)
{
    return since_of(cth__now_ns());
}

/* The clock for a release's hand-off check, in since_of's units, or 0 when
 * this release skips it (never when `must`). */
static uint32_t release_clock(bool must)
{
    if (release_skip && !must) {
        release_skip--;
        return 0;
    }
    int64_t now = cth__now_ns();
    release_skip = now - release_read_at < CLOCK_EVERY * CLOCK_GAP_NS ? CLOCK_EVERY - 1 : 0;
    release_read_at = now;
    return since_of(now);
}

/* Record `me` as the longest waiter's start if nobody is recorded. */
static void since_record(_Atomic uint32_t *since, uint32_t me)
{
    uint32_t none = 0;
    if (atomic_load_explicit(since, memory_order_relaxed) == 0)
        atomic_compare_exchange_strong_explicit(since, &none, me, memory_order_relaxed,
                                                memory_order_relaxed);
}

/* We stop waiting: if we took a hand-off, or the record is ours (or there
 * is none), the others have waited at least since now; if nobody is left,
 * the record goes, whoever made it (kept, it would make the next waiter look
 * as old as the record, and hand it the lock long before its time). */
static void since_leave(_Atomic uint32_t *since, uint32_t me, uint32_t waiters_left, bool handoff)
{
    uint32_t t = atomic_load_explicit(since, memory_order_relaxed);
    if (handoff || t == me || t == 0 || !waiters_left)
        atomic_compare_exchange_strong_explicit(since, &t, waiters_left ? since_now() : 0,
                                                memory_order_relaxed, memory_order_relaxed);
}

/* The bits a waiter leaves behind when it stops waiting: NAPPING if it is
 * the napper, READY if it is the ready waiter. */
static uint32_t own_bits(bool napper, bool ready)
{
    return (napper ? NAPPING : 0) | (ready ? READY : 0);
}

/* The state once a counted waiter (the napper or not) has taken the lock
 * (free, or handed over by TICKET), which ends the wait a PREWOKE was for:
 * it no longer counts; PARKED is set while others are counted, since they may
 * sleep and the release that woke us cleared it. */
static uint32_t taken_by_waiter(uint32_t s, bool napper, bool ready)
{
    uint32_t gone = TICKET | PREWOKE | own_bits(napper, ready);
    return parked_if_waiters(((s - WAITER) & ~gone) | LOCKED);
}

/* A counted waiter waits for the lock: parks on _state until it is free or
 * handed over, and takes it. At the deadline it still takes a free lock; on
 * an interruption it leaves it to the others. Either way it takes a pending
 * TICKET rather than strand it (an interruption is then kept for the main
 * thread's next wait). A TICKET it saw when it joined is not for it (it is
 * typically the releaser that set it, back for more) until it has slept
 * once: the waiters counted before the hand-off are either awake and about
 * to look, or asleep ahead of it in the futex's queue, where the release
 * woke the first. That sleep lasts LATE_NS at most, so that a TICKET whose
 * waiters all count as late (a newer TICKET they took for the one they saw)
 * costs a short delay, never a hang. Without back_off it parks at once
 * whenever the lock is held. Once it has slept, it never backs off again:
 * it naps (see Napping) or sleeps. Woken ahead of a hand-off (PREWOKE), it
 * becomes the READY waiter: for up to READY_NS it looks at the lock now and
 * then, without writing to it, and the next release hands the lock over to
 * it at once and wakes nobody. */
static int lock_wait_counted(cth_lock_t *lock, int64_t deadline, bool eligible, bool back_off)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    _Atomic uint32_t *since = CTH__ATOMIC_U32(&lock->_oldest_wait);
    int64_t entered = cth__now_ns();
    uint32_t me = since_of(entered);
    /* Backing off (up to ~80 us) would overshoot a near deadline. */
    bool may_back_off = back_off && deadline - entered > BACKOFF_SLACK_NS;
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    int r = 0;
    unsigned backoff = 1, watch = 0;
    bool handed_away = handed_off == lock;
    handed_off = NULL;
    bool napper = false, slept = false, ready = false;
    int64_t ready_until = 0;
    for (;;) {
        if ((s & TICKET) ? eligible || r : !(s & LOCKED) && r != CTH_EINTR) {
            uint32_t n = taken_by_waiter(s, napper, ready);
            if (!atomic_compare_exchange_weak_explicit(state, &s, n, memory_order_acquire,
                                                       memory_order_relaxed))
                continue;
            since_leave(since, me, WAITERS(n), s & TICKET);
            if (r == CTH_EINTR)
                cth__interrupt_post();
            return 0;
        }
        if (r) {
            /* Give up. The others may sleep: keep PARKED for them, and if
             * the lock is free, pass on the wake-up a release meant for a
             * waiter, which may have been us. */
            uint32_t n = parked_if_waiters((s - WAITER) & ~own_bits(napper, ready));
            if (!atomic_compare_exchange_weak_explicit(state, &s, n, memory_order_relaxed,
                                                       memory_order_relaxed))
                continue;
            since_leave(since, me, WAITERS(n), false);
            if (!(s & LOCKED) && WAITERS(n))
                cth__futex_wake(state, 1);
            return r;
        }
        if (!ready && (s & PREWOKE) && slept) {
            /* A PREWOKE outlives the waiter it was for when that one gave
             * up before it looked: READY only while the longest waiter is
             * still due soon, else the PREWOKE is stale and goes. */
            int64_t now = cth__now_ns();
            uint32_t t = atomic_load_explicit(since, memory_order_relaxed);
            bool due = t && since_of(now) - t >= (uint32_t)((HANDOFF_NS - PREWAKE_NS) >> 10);
            uint32_t n = (s & ~PREWOKE) | (due ? READY : 0);
            if (!atomic_compare_exchange_weak_explicit(state, &s, n, memory_order_relaxed,
                                                       memory_order_relaxed))
                continue;
            s = n;
            ready = due;
            backoff = 1;
            ready_until = deadline - now < READY_NS ? deadline : now + READY_NS;
        }
        if (ready) {
            if (cth__now_ns() < ready_until) {
                for (unsigned i = 0; i < backoff; i++)
                    cth__cpu_relax();
                if (backoff < READY_PAUSES_MAX)
                    backoff *= 2;
                s = atomic_load_explicit(state, memory_order_relaxed);
                continue;
            }
            /* No hand-off came (a long hold): wait as before. */
            if (!atomic_compare_exchange_weak_explicit(state, &s, s & ~READY, memory_order_relaxed,
                                                       memory_order_relaxed))
                continue;
            s &= ~READY;
            ready = false;
            continue;
        }
        if (handed_away) {
            /* Our last release handed this lock over: watch the TICKET for
             * a moment (a READY waiter takes it within a microsecond). Once
             * it is gone, the lock is busy with the waiter it was for: nap
             * at once, as if woken for nothing, so that its releases need
             * not wake us. */
            if ((s & TICKET) && watch < WATCH_LOOKS) {
                cth__cpu_relax();
                watch++;
                s = atomic_load_explicit(state, memory_order_relaxed);
                continue;
            }
            if (!(s & TICKET))
                eligible = slept = true;
            handed_away = false;
        }
        if (napper || (slept && !(s & NAPPING))) {
            /* Woken, and the lock was taken again before we looked (or
             * napping, and it is held): nap, PARKED set; if PARKED is still
             * set after a nap, no release came meanwhile, so stop napping
             * and sleep until a release wakes us. */
            uint32_t n = !napper ? s | NAPPING | PARKED : (s & PARKED) ? s & ~NAPPING : s | PARKED;
            if (!atomic_compare_exchange_weak_explicit(state, &s, n, memory_order_relaxed,
                                                       memory_order_relaxed))
                continue;
            s = n;
            napper = (n & NAPPING) != 0;
            if (napper) {
                since_record(since, me);
                int64_t nap = cth__now_ns() + NAP_NS;
                r = cth__futex_wait(state, s, deadline < nap ? deadline : nap);
                if (r == CTH_ETIMEDOUT && nap < deadline)
                    r = 0;
                s = atomic_load_explicit(state, memory_order_relaxed);
                continue;
            }
        } else if (may_back_off && !slept && !(s & NAPPING) &&
                   backoff <= (WAITERS(s) > 1 ? BACKOFF_CROWD : BACKOFF_ALONE) &&
                   (!(s & TICKET) || eligible)) {
            for (unsigned i = 0; i < backoff; i++)
                cth__cpu_relax();
            backoff *= 2;
            s = atomic_load_explicit(state, memory_order_relaxed);
            continue;
        }
        /* Sleep until a release wakes us: PARKED asks for that, unless a
         * napper will look (and then set PARKED for us once it has the
         * lock). */
        uint32_t asleep = (s & NAPPING) ? s : s | PARKED;
        if (asleep != s && !atomic_compare_exchange_weak_explicit(
                               state, &s, asleep, memory_order_relaxed, memory_order_relaxed))
            continue;
        since_record(since, me);
        int64_t until = deadline;
        if (!eligible) {
            /* The waiters the TICKET is for go first; should none of them
             * take it within LATE_NS, take it ourselves. */
            int64_t late = cth__now_ns() + LATE_NS;
            until = deadline < late ? deadline : late;
        }
        r = cth__futex_wait(state, asleep, until);
        if (r == CTH_ETIMEDOUT && until != deadline)
            r = 0;
        eligible = true;
        slept = true;
        s = atomic_load_explicit(state, memory_order_relaxed);
    }
}

/* Take the lock if it is free, else count ourselves a waiter and wait
 * (backing off first, or not). */
static int lock_take_or_wait(cth_lock_t *lock, int64_t deadline, bool back_off)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    for (;;) {
        uint32_t v = live_state(s);
        if (!(v & LOCKED)) {
            if (atomic_compare_exchange_weak_explicit(state, &s, v | LOCKED, memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
        } else if (atomic_compare_exchange_weak_explicit(
                       state, &s, add_waiter(s), memory_order_relaxed, memory_order_relaxed)) {
            return lock_wait_counted(lock, deadline, !(v & TICKET), back_off);
        }
    }
}

/* The contended acquire: spin while the holder runs and nobody else is
 * counted a waiter, then count ourselves one and wait. */
static __attribute__((noinline)) int lock_spin_then_wait(cth_lock_t *lock, int64_t deadline)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s;
    for (unsigned pauses = 1; pauses <= SPIN_PAUSES_MAX; pauses *= 2) {
        s = atomic_load_explicit(state, memory_order_relaxed);
        uint32_t v = live_state(s);
        if (!(v & LOCKED)) {
            if (atomic_compare_exchange_weak_explicit(state, &s, v | LOCKED, memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
            continue;
        }
        if (v != LOCKED)
            break; /* others wait already, or the lock is promised */
        for (unsigned i = 0; i < pauses; i++)
            cth__cpu_relax();
    }
    return lock_take_or_wait(lock, deadline, true);
}

CTH_API int cth_lock_init(cth_lock_t *lock)
{
    if (!lock)
        return CTH_EINVAL;
    atomic_store(CTH__ATOMIC_U32(&lock->_state), 0);
    atomic_store(CTH__ATOMIC_U32(&lock->_oldest_wait), 0);
    return 0;
}

/* Everything but the uncontended case: argument errors, try, spin, park. Kept
 * out of line so that the fast paths (sync.h's inline one, and the exported
 * one below) need no stack frame. */
CTH_API __attribute__((noinline)) int cth__lock_acquire_slow(cth_lock_t *lock, double timeout)
{
    if (!lock)
        return CTH_EINVAL;
    int err = cth__check_timeout(timeout);
    if (err)
        return err;
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    uint32_t v = live_state(s);
    if (!(v & LOCKED) && atomic_compare_exchange_strong_explicit(
                             state, &s, v | LOCKED, memory_order_acquire, memory_order_relaxed))
        return 0;
    if (timeout == 0)
        return CTH_EAGAIN;
    return lock_spin_then_wait(lock, cth__deadline(timeout));
}

/* The fast path of sync.h's inline cth_lock_acquire, out of line, for
 * callers through the symbol (FFI, dlsym). */
CTH_API int cth_lock_acquire(cth_lock_t *lock, double timeout);
CTH_API int cth_lock_acquire(cth_lock_t *lock, double timeout)
{
    if (__builtin_expect(lock && !cth__check_timeout(timeout), 1) &&
        lock_take_fast(CTH__ATOMIC_U32(&lock->_state)))
        return 0;
    return cth__lock_acquire_slow(lock, timeout);
}

int cth__lock_acquire_uninterrupted(cth_lock_t *lock)
{
    int interrupted = 0;
    while (cth_lock_acquire(lock, CTH_FOREVER) == CTH_EINTR)
        interrupted = 1;
    return interrupted;
}

void cth__lock_acquire_after_interrupt(cth_lock_t *lock)
{
    cth__lock_acquire_uninterrupted(lock);
    cth__interrupt_main_wait();
}

/* Woken on the CPU where its notifier ran, the waiter has usually
 * preempted the notifier, which still holds the lock: parking would cost it
 * a second sleep and a wake-up, while a yield lets the notifier run on to
 * its release and leaves the waiter runnable, first in line for the CPU. */
int cth__lock_acquire_notified(cth_lock_t *lock, bool notifier_here)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    for (unsigned i = 0; notifier_here && i < NOTIFIED_YIELDS; i++) {
        uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
        uint32_t v = live_state(s);
        if (!(v & LOCKED) && atomic_compare_exchange_strong_explicit(
                                 state, &s, v | LOCKED, memory_order_acquire, memory_order_relaxed))
            return 0;
        sched_yield();
    }
    if (lock_take_or_wait(lock, CTH__NO_DEADLINE, false) == 0)
        return 0;
    cth__lock_acquire_uninterrupted(lock); /* interrupted: wait on as a newcomer */
    return 1;
}

int cth__lock_acquire_woken(cth_lock_t *lock)
{
    if (lock_wait_counted(lock, CTH__NO_DEADLINE, true, true) == 0)
        return 0;
    /* Interrupted while the lock was held: we left the count, so wait on
     * as a newcomer. */
    cth__lock_acquire_uninterrupted(lock);
    return 1;
}

/* Release when someone may wait or the lock is not held: unlock and wake a
 * sleeper, or hand the lock to the waiters, or report the misuse. */
CTH_API __attribute__((noinline)) int cth__lock_release_slow(cth_lock_t *lock)
{
    if (!lock)
        return CTH_EINVAL;
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    _Atomic uint32_t *since = CTH__ATOMIC_U32(&lock->_oldest_wait);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    uint32_t v = live_state(s);
    /* Whether a counted waiter has waited over HANDOFF_NS, or will soon
     * (the clock is read at once when a wake-up's system call is due
     * anyway); a READY waiter is handed the lock at once. */
    bool starving = false, due_soon = false;
    if (WAITERS(v) && !(v & READY)) {
        uint32_t t = atomic_load_explicit(since, memory_order_relaxed);
        uint32_t now = t ? release_clock((v & (PARKED | NAPPING)) == PARKED) : 0;
        starving = now && now - t >= (uint32_t)(HANDOFF_NS >> 10);
        due_soon = now && now - t >= (uint32_t)((HANDOFF_NS - PREWAKE_NS) >> 10) && several_cpus();
    }
    for (;;) {
        if (!(v & LOCKED) || (v & TICKET))
            return CTH_EPERM; /* unlocked, or handed off and not yet taken */
        bool handoff = (starving || (v & READY)) && WAITERS(v);
        bool sleepers = (v & (PARKED | NAPPING)) != 0;
        bool prewake = due_soon && !handoff && sleepers && !(v & PREWOKE);
        bool wake = handoff ? sleepers && !(v & READY)
                            : prewake || (v & (PARKED | NAPPING)) == PARKED;
        uint32_t n = handoff ? (v | TICKET) & ~PARKED
                             : (v & ~(LOCKED | PARKED)) | (prewake ? PREWOKE : 0);
        if (atomic_compare_exchange_weak_explicit(state, &s, n, memory_order_release,
                                                  memory_order_relaxed)) {
            handed_off = handoff ? lock : NULL;
            if (wake)
                cth__futex_wake(state, 1);
            return 0;
        }
        v = live_state(s);
    }
}

/* Likewise sync.h's inline cth_lock_release. */
CTH_API int cth_lock_release(cth_lock_t *lock);
CTH_API int cth_lock_release(cth_lock_t *lock)
{
    if (__builtin_expect(lock != NULL, 1) && lock_give_fast(CTH__ATOMIC_U32(&lock->_state)))
        return 0;
    return cth__lock_release_slow(lock);
}

CTH_API bool cth_lock_locked(const cth_lock_t *lock)
{
    return lock && (live_state(atomic_load_explicit(CTH__ATOMIC_U32(&((cth_lock_t *)lock)->_state),
                                                    memory_order_relaxed)) &
                    LOCKED);
}

/* ---- RLock ---------------------------------------------------------------- */

static uintptr_t rlock_owner(const cth_rlock_t *rlock)
{
    return atomic_load_explicit(CTH__ATOMIC_UPTR(&((cth_rlock_t *)rlock)->_owner),
                                memory_order_relaxed);
}

static void rlock_set_owner(cth_rlock_t *rlock, uintptr_t owner)
{
    atomic_store_explicit(CTH__ATOMIC_UPTR(&rlock->_owner), owner, memory_order_relaxed);
}

CTH_API int cth_rlock_init(cth_rlock_t *rlock)
{
    if (!rlock)
        return CTH_EINVAL;
    cth_lock_init(&rlock->_lock);
    rlock_set_owner(rlock, 0);
    rlock->_count = 0;
    rlock->_spare = 0;
    return 0;
}

/* RLock.acquire beyond the fast paths: errors, the count's overflow, and a
 * lock held by another thread. */
static __attribute__((noinline)) int rlock_acquire_slow(cth_rlock_t *rlock, double timeout)
{
    if (!rlock)
        return CTH_EINVAL;
    int err = cth__check_timeout(timeout);
    if (err)
        return err;
    uintptr_t me = cth__self_token();
    if (rlock_owner(rlock) == me)
        return CTH_EOVERFLOW; /* the fast path takes every other recursion */
    err = cth_lock_acquire(&rlock->_lock, timeout);
    if (err)
        return err;
    rlock_set_owner(rlock, me);
    rlock->_count = 1;
    return 0;
}

CTH_API int cth_rlock_acquire(cth_rlock_t *rlock, double timeout)
{
    if (__builtin_expect(rlock && !cth__check_timeout(timeout), 1)) {
        uintptr_t me = cth__self_token();
        if (rlock_owner(rlock) == me) {
            if (__builtin_expect(rlock->_count != UINT32_MAX, 1)) {
                rlock->_count++;
                return 0;
            }
        } else if (lock_take_fast(CTH__ATOMIC_U32(&rlock->_lock._state))) {
            rlock_set_owner(rlock, me);
            rlock->_count = 1;
            return 0;
        }
    }
    return rlock_acquire_slow(rlock, timeout);
}

CTH_API int cth_rlock_release(cth_rlock_t *rlock)
{
    if (!rlock)
        return CTH_EINVAL;
    if (rlock_owner(rlock) != cth__self_token())
        return CTH_EPERM;
    if (--rlock->_count == 0) {
        rlock_set_owner(rlock, 0);
        if (!lock_give_fast(CTH__ATOMIC_U32(&rlock->_lock._state)))
            cth__lock_release_slow(&rlock->_lock);
    }
    return 0;
}

CTH_API bool cth_rlock_locked(const cth_rlock_t *rlock)
{
    return rlock && cth_lock_locked(&rlock->_lock);
}

CTH_API bool cth_rlock_is_owned(const cth_rlock_t *rlock)
{
    return rlock && rlock_owner(rlock) == cth__self_token();
}

CTH_API size_t cth_rlock_recursion_count(const cth_rlock_t *rlock)
{
    return cth_rlock_is_owned(rlock) ? rlock->_count : 0;
}

void cth__lock_add_waiter(cth_lock_t *lock)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(state, &s, add_waiter(s) | PARKED,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void cth__lock_remove_waiter(cth_lock_t *lock)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    uint32_t n;
    do {
        n = s - WAITER;
        /* Handed to the waiters while we counted one too many, and nobody
         * else is counted: nobody would take it, so unlock instead. */
        if ((n & TICKET) && !WAITERS(n))
            n &= ~(TICKET | LOCKED);
        if (!WAITERS(n))
            n &= ~(PREWOKE | READY | GEN_MASK);
    } while (!atomic_compare_exchange_weak_explicit(state, &s, n, memory_order_release,
                                                    memory_order_relaxed));
}

void cth__lock_wake_on_release(cth_lock_t *lock)
{
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    while (WAITERS(live_state(s)) && !(s & (PARKED | NAPPING)) &&
           !atomic_compare_exchange_weak_explicit(state, &s, s | PARKED, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void cth__lock_requeue(cth_lock_t *lock, _Atomic uint32_t *from, uint32_t expected)
{
    cth__futex_requeue(from, expected, CTH__ATOMIC_U32(&lock->_state));
}

void cth__rlock_release_save(cth_rlock_t *rlock, uint32_t *count)
{
    *count = rlock->_count;
    rlock->_count = 0;
    rlock_set_owner(rlock, 0);
    cth_lock_release(&rlock->_lock);
}

void cth__rlock_restore(cth_rlock_t *rlock, uint32_t count)
{
    rlock_set_owner(rlock, cth__self_token());
    rlock->_count = count;
}
