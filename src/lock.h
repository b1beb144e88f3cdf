/* SPDX-License-Identifier: MIT */
/*
 * lock.h - the Lock's word and the calls on it that lock.c offers the
 * rest of the library: Condition (cond.c) parks its waiters on a lock's word
 * and saves and restores an RLock; every module that guards its own state
 * with a cth_lock_t takes it without being interrupted.
 */
#ifndef CTH_LOCK_H
#define CTH_LOCK_H

#include "cthreading/sync.h"
#include "platform.h"

/* A per-thread address: unique among living threads, never 0, no system
 * call (lock.c defines it). RLock, Condition and once store it as an owner. */
extern _Thread_local char cth__self_token_var __attribute__((tls_model("initial-exec")));
static inline uintptr_t cth__self_token(void)
{
    return (uintptr_t)&cth__self_token_var;
}

/* The fork generation: 0 in the process that started, one more in each
 * fork child (runtime.c's fork handler bumps it before any module's). In a
 * child only the forking thread goes on, so waiters that an object recorded
 * in an older generation are threads that no longer exist: an object that
 * parks waiters remembers the generation it last saw, and on its first use
 * in a newer one forgets them, as if nobody waited, without reading their
 * records (they live on stacks that new threads may reuse). */
extern _Atomic uint32_t cth__fork_gen_var;
static inline uint32_t cth__fork_gen(void)
{
    return atomic_load_explicit(&cth__fork_gen_var, memory_order_relaxed);
}

/* Bit 0 of a Lock's word, CTH__LOCK_LOCKED (sync.h), says someone holds
 * it; lock.c has the other bits. */

/* cth_lock_locked without the call and the NULL check. */
static inline bool cth__lock_held(const cth_lock_t *lock)
{
    return atomic_load_explicit(CTH__ATOMIC_U32(&((cth_lock_t *)lock)->_state),
                                memory_order_relaxed) &
           CTH__LOCK_LOCKED;
}

/* Acquire a Lock without limit, riding out interruptions: returns 1 if an
 * interruption of the main thread arrived meanwhile, else 0. */
int cth__lock_acquire_uninterrupted(cth_lock_t *lock);

/* The rest of cth__lock_acquire_keeping_interrupt once the main thread's
 * acquire was interrupted. */
void cth__lock_acquire_after_interrupt(cth_lock_t *lock);

/* Acquire a Lock without limit for a short internal hold: sync.h's inline
 * fast path (no call while the lock is free), then as
 * cth__lock_acquire_uninterrupted; an interruption of the main thread that
 * arrives meanwhile is posted again, so its next wait reports it (none is
 * lost to a lock the library holds briefly). */
#ifndef CTH__LOCK_SOURCE /* lock.c has no inline cth_lock_acquire */
static inline void cth__lock_acquire_keeping_interrupt(cth_lock_t *lock)
{
    /* on a valid lock without limit, the acquire fails only with CTH_EINTR */
    if (__builtin_expect(cth_lock_acquire(lock, CTH_FOREVER) != 0, 0))
        cth__lock_acquire_after_interrupt(lock);
}
#endif

/* ---- for Condition ---------------------------------------------------------------- */

/* Release every level of an RLock the caller owns; the count is saved in
 * *count (Python's _release_save). The caller has checked ownership. */
void cth__rlock_release_save(cth_rlock_t *rlock, uint32_t *count);

/* The second half of Python's _acquire_restore: the caller has taken the
 * RLock's plain lock again (as a Condition waiter does, see below); make it
 * the owner with the saved count. */
void cth__rlock_restore(cth_rlock_t *rlock, uint32_t count);

/* Acquire a Lock as a waiter that cth__lock_add_waiter counted (a notified
 * Condition waiter, whose futex may have been requeued onto the lock's
 * word): as cth__lock_acquire_uninterrupted otherwise. */
int cth__lock_acquire_woken(cth_lock_t *lock);

/* Acquire a Lock as a Condition waiter a notify woke (not counted): the
 * notifier holds the lock, or has just released it, so neither spinning
 * nor backing off: if the lock is held it parks at once, unless
 * notifier_here (the notify ran on the caller's CPU): the woken thread
 * often runs there ahead of the notifier (a wake-up preempts), and then it
 * yields the CPU back a few times first, so that the notifier can release.
 * Returns as cth__lock_acquire_uninterrupted. */
int cth__lock_acquire_notified(cth_lock_t *lock, bool notifier_here);

/* Count one more waiter of the lock, on behalf of a Condition waiter that
 * sleeps on its own word and is about to be notified; that waiter then must
 * take the lock with cth__lock_acquire_woken. The caller holds the lock. */
void cth__lock_add_waiter(cth_lock_t *lock);

/* Undo cth__lock_add_waiter when the waiter turned out not to sleep. */
void cth__lock_remove_waiter(cth_lock_t *lock);

/* Make the caller's next release of the lock wake one of its counted
 * waiters, if some are counted and no napper looks after them. The caller
 * holds the lock. */
void cth__lock_wake_on_release(cth_lock_t *lock);

/* If the condition's waiters were recorded before the latest fork (see
 * cth__fork_gen), forget them and return true; else false. The caller holds
 * the condition's lock (Barrier, whose own counts go with them). */
bool cth__cond_forget_dead_waiters(cth_cond_t *cond);

/* Move the thread sleeping on *from (if *from still equals expected) onto
 * the lock's word, to be woken by a release of the lock, as if it had
 * parked in cth_lock_acquire; it must have been counted with
 * cth__lock_add_waiter. The caller holds the lock. */
void cth__lock_requeue(cth_lock_t *lock, _Atomic uint32_t *from, uint32_t expected);

#endif
