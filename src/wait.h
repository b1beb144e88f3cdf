/* SPDX-License-Identifier: MIT */
/*
 * wait.h - the one blocking primitive every cthreading wait goes through
 * (src/wait.c, over the platform futex), and the main thread's interruption
 * that it reports.
 */
#ifndef CTH_WAIT_H
#define CTH_WAIT_H

#include "platform.h"

/*
 * Block while *addr == expected, until woken, the deadline passes, or the
 * caller is interrupted. Returns 0 (woken, value changed, or spurious: the
 * caller re-checks its condition), CTH_ETIMEDOUT once the deadline has passed,
 * or CTH_EINTR in the main thread only, when cth_interrupt_main() was called
 * or an interrupting signal's handler ran (SIGINT, cth_interrupt_on_signal).
 * Any other handler that runs is a spurious wake-up: the caller waits again
 * toward the same deadline. Other threads never see CTH_EINTR.
 */
int cth__futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline);

/* While set, the calling thread's waits (outside the main thread) count
 * themselves in it: the timer service sets it while a worker runs a timer's
 * function, to tell a blocked worker from a busy one. */
extern _Thread_local _Atomic uint32_t *cth__wait_blocked_count
    __attribute__((tls_model("initial-exec")));

/* Wake up to n threads blocked on addr (INT32_MAX: all of them). */
void cth__futex_wake(_Atomic uint32_t *addr, int n);

/* ---- the main thread's interruption ------------------------------------------- */

/* Mark an interruption pending for the main thread: its next cthreading
 * wait, or the one it is in once woken, returns CTH_EINTR (the wait that
 * reports it consumes it). */
void cth__interrupt_post(void);

/* Bracket the sending of a real signal that goes with a posted
 * interruption (cth_interrupt_main): begin before posting, end once
 * pthread_kill has returned. The main thread does not report the
 * interruption before the signal has been delivered to it (wait.c). */
void cth__interrupt_signal_begin(void);
void cth__interrupt_signal_end(void);

/* Wake the main thread's current cthreading wait, if it is in one, so that
 * it sees a posted interruption. */
void cth__interrupt_wake(void);

/* Post, then wake: the main thread's current cthreading wait, or its next
 * one, returns CTH_EINTR. A wait that consumed an interruption it cannot
 * report (it succeeded anyway) calls this to keep it for the next wait. */
void cth__interrupt_main_wait(void);

/* Whether an interruption is posted and not yet taken: a look for a main
 * thread busy outside any wait (the wait it goes to next reports it). */
bool cth__interrupt_pending(void);

/* While set in the main thread, its waits are any other thread's: they
 * never report CTH_EINTR and leave an interruption pending (a blocking map
 * sets it while its caller runs the pool's tasks, which see no more than
 * on a worker; the map's own wait reports it afterwards). */
extern _Thread_local bool cth__wait_interrupt_deferred __attribute__((tls_model("initial-exec")));

/* Forget a pending interruption (fork child). */
void cth__interrupt_reset(void);

#endif
