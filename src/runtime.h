/* SPDX-License-Identifier: MIT */
/*
 * runtime.h - what the thread runtime (runtime.c, thread.c) offers the
 * modules above it: shutdown's admission and finalizers, the library's own
 * threads, and the hooks by which a module takes part in a thread's exit and
 * in fork. The runtime calls no module above it; they register here.
 */
#ifndef CTH_RUNTIME_H
#define CTH_RUNTIME_H

#include <stdbool.h>

#include "cthreading/thread.h"

/* ---- hooks ------------------------------------------------------------------------ */

/* The hooks' table holds the library's own modules (MAX_HOOKS in runtime.c):
 * registering more is a bug of the library, and aborts. */

/* Run fn in every thread that ends, before it counts as finished (and in a
 * thread that acts for one that ends, cth__runtime_thread_exit), in
 * registration order. */
void cth__runtime_on_thread_exit(void (*fn)(void));

/* Run the thread-exit hooks in the calling thread now; the thread may go on
 * and set new state. */
void cth__runtime_thread_exit(void);

/* Whether what a module keeps per thread is freed in time by its thread-exit
 * hook, or lives as long as the process: the calling thread is one cthreading
 * started, whose end runs the hooks, or the main thread. Not an adopted or
 * foreign one, whose end runs no hook. */
bool cth__runtime_thread_hooked(void);

/* Take part in fork() as pthread_atfork does: prepare (before the runtime
 * takes its registry lock) in reverse registration order, parent and child
 * (after the runtime's own handling) in registration order; any may be NULL. */
void cth__runtime_on_fork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* ---- shutdown --------------------------------------------------------------------- */

/* Admit new work while shutdown has not finished its wait for the non-daemon
 * threads: CTH_ESHUTDOWN once it has (new threads are refused from then on),
 * else 0. With `nondaemon`, the work counts as one more non-daemon thread
 * that shutdown waits for, until cth__shutdown_release (timer_service.c: a
 * pending non-daemon one-shot timer is a live non-daemon Timer thread). */
int cth__shutdown_admit(bool nondaemon);
void cth__shutdown_release(void);

/* Register fn(arg) to run once shutdown has finished waiting for the
 * non-daemon threads (new threads are refused by then), newest first; fn must
 * not call cth_shutdown. Returns 0, CTH_ENOMEM, or CTH_ESHUTDOWN once that
 * wait is over. */
int cth__finalizer_register(void (*fn)(void *), void *arg);

/* ---- the library's own threads ------------------------------------------------------ */

/* Create a thread of the library itself (the timer service's): a daemon that
 * cth_enumerate and cth_active_count do not list. As cth_thread_create. */
int cth__thread_create_internal(cth_thread_t **thread, cth_thread_fn fn, void *arg,
                                const char *name);

/* The calling thread acts, from begin to end, for another thread that runs
 * a function (a timer worker runs a Timer's function, which Python runs in
 * the Timer's own thread): a hidden thread is listed meanwhile, named by
 * the acting namer for `name_arg` (which must stay valid until the end) and
 * showing `daemon` as its flag (its own, which the runtime's accounting
 * uses, is kept), both its own again at the end; threads and timers created
 * with CTH_DAEMON_INHERIT inherit `daemon`; if `counted` (admitted as
 * non-daemon), the caller's own cth_shutdown does not wait for that share.
 * Neither takes a lock nor copies the name: it is made when asked for. */
void cth__thread_act_begin(const void *name_arg, bool daemon, bool counted);
void cth__thread_act_end(void);

/* Set the function that names an acting thread: it writes the name of
 * `name_arg` into buf as snprintf does and returns its length. Set once, before
 * any act_begin (the timer service's, on first use). */
void cth__thread_set_acting_namer(size_t (*namer)(const void *name_arg, char *buf, size_t size));

/* In a fork child whose forking thread was acting: it is the child's main
 * thread now, keeps the name it acted under and has the main thread's
 * daemon flag; what it creates still inherits `daemon`, and the share
 * stays counted, until the end. */
void cth__thread_act_forget(void);

/* The daemon flag CTH_DAEMON_INHERIT gives in the calling thread: its own,
 * the one it acts for (above), or true in a thread cthreading did not start. */
bool cth__inherited_daemon(void);

/* Fault injection, for tests: the next k OS threads cthreading starts
 * (cth_thread_start) succeed, then each fails as if the OS had no thread
 * left (CTH_EAGAIN), until called with a negative k. */
void cth__fault_thread_start_after(long k);

#endif
