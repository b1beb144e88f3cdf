/* SPDX-License-Identifier: MIT */
/*
 * cthreading/thread.h - Python's Thread and the threading module's
 * module-level calls: current_thread, main_thread, enumerate, active_count,
 * get_ident, get_native_id, stack_size, interrupt_main, and time.sleep.
 *
 * A thread is an opaque, reference-counted handle. cth_thread_create gives
 * the caller one reference, cth_thread_free drops it; a started thread holds
 * its own reference until it has finished, so freeing a running thread's
 * handle detaches it (it runs on, and its memory goes when it ends), and a
 * finished thread that nobody joined leaks nothing.
 *
 * Shutdown, as Python's: when main() returns or exit() is called, cthreading
 * waits for every non-daemon thread (and non-daemon one-shot timer, see
 * timer.h), including ones started during that wait, before the program's
 * atexit handlers run; daemon threads are abandoned. A program may shut down
 * earlier with cth_shutdown(). Once that wait is over, starting a thread
 * fails with CTH_ESHUTDOWN. docs/design.md (thread.h) has the details.
 *
 * A target may end its thread with pthread_exit: the thread ends as if the
 * target had returned NULL.
 */
#ifndef CTHREADING_THREAD_H
#define CTHREADING_THREAD_H

#include <stdio.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A thread handle (Python's Thread object): opaque, reference-counted. */
typedef struct cth_thread cth_thread_t;

/* A thread's target: Thread(target=fn, args=(arg,)). Its return value is
 * what cth_thread_join hands back (a thread reports failure through it). */
typedef void *(*cth_thread_fn)(void *arg);

/* Daemon flag: inherit the creating thread's (Python's daemon=None), or set. */
typedef enum cth_daemon {
    CTH_DAEMON_INHERIT = 0,
    CTH_DAEMON_NO = 1,
    CTH_DAEMON_YES = 2
} cth_daemon_t;

/* Options for cth_thread_create; zero-initialised (or NULL) means Python's
 * defaults. */
typedef struct cth_thread_opts {
    const char *name;    /* NULL or "": "Thread-N"; copied */
    cth_daemon_t daemon; /* default: inherit from the creating thread */
    size_t stack_size;   /* 0: the value of cth_stack_size(), else as its rules
                            (cth_thread_create refuses what it refuses) */
} cth_thread_opts_t;

/* The life of a thread, as cth_dump_threads shows it. */
typedef enum cth_thread_state {
    CTH_THREAD_INITIAL = 0, /* created, not started */
    CTH_THREAD_STARTED = 1, /* start() called, target not yet running */
    CTH_THREAD_RUNNING = 2, /* running its target */
    CTH_THREAD_FINISHED = 3 /* target returned */
} cth_thread_state_t;

/*
 * cth_thread_create - Thread(target=fn, args=(arg,), name=, daemon=).
 * Creates the handle; nothing runs until cth_thread_start. fn may be NULL (a
 * thread that does nothing, as Python's target=None).
 * opts (may be NULL) is read during the call only; its name is copied. A
 * name given here or set later reaches the OS (cth_thread_set_name); a
 * default "Thread-N" does not: as a pthread, the thread keeps the OS name it
 * inherits from the thread that started it.
 * Returns 0 and *thread; CTH_EINVAL for a NULL out-pointer, a bad stack
 * size or an unknown daemon value; CTH_ENOMEM.
 */
CTH_API int cth_thread_create(cth_thread_t **thread, cth_thread_fn fn, void *arg,
                              const cth_thread_opts_t *opts);

/*
 * cth_thread_start - Thread.start(). On return the thread is alive, listed
 * by cth_enumerate, and its ident is set (its native id is there as soon as
 * anyone asks for it).
 * Returns 0; CTH_EPERM if it was started before ("threads can only be
 * started once", checked first) or is the main or an adopted thread;
 * CTH_ESHUTDOWN once shutdown has finished waiting for the non-daemon
 * threads (a thread started during that wait is waited for too); CTH_EAGAIN
 * or CTH_ENOMEM when the OS cannot create a thread (then nothing of it is
 * left registered; a stack size that cannot be mapped, far above the
 * system's memory, gives CTH_EAGAIN or CTH_ENOMEM here); CTH_EINVAL for
 * NULL, or a stack size the platform refuses only when the thread is made.
 */
CTH_API int cth_thread_start(cth_thread_t *thread);

/*
 * cth_thread_run - Thread.run() called directly: run the target in the
 * calling thread and store its result in *result (may be NULL). As in
 * Python, the target is forgotten afterwards, so running again, or starting
 * the thread later, calls nothing. Returns 0, or CTH_EINVAL for NULL.
 */
CTH_API int cth_thread_run(cth_thread_t *thread, void **result);

/*
 * cth_thread_join - Thread.join(timeout): wait until the thread has finished.
 * Any number of threads may join, any number of times. A worker may join
 * the main thread: it returns once the main thread has begun shutdown.
 * On success *result (may be NULL) receives the target's return value (NULL
 * for the main thread); on any error it is left alone. The timeout comes
 * last, as in every cthreading wait.
 * Returns 0; CTH_ETIMEDOUT if the thread was still alive when the timeout
 * expired (Python returns None and leaves is_alive() true); CTH_EINTR in an
 * interrupted main thread; CTH_EPERM if the thread was never started
 * ("cannot join thread before it is started") or is an adopted thread
 * ("cannot join a dummy thread"); CTH_EDEADLK if it is the caller itself
 * ("cannot join current thread"); CTH_EINVAL for NULL or a bad timeout. As
 * in Python, the thread's state is checked first: these errors come before
 * the timeout's. Unlike Python, a negative timeout other than CTH_FOREVER is
 * CTH_EINVAL (base.h: one timeout rule everywhere).
 */
CTH_API int cth_thread_join(cth_thread_t *thread, void **result, double timeout);

/* cth_thread_is_alive - Thread.is_alive(): started and not yet finished.
 * False for NULL. */
CTH_API bool cth_thread_is_alive(const cth_thread_t *thread);

/* cth_thread_state - where the thread is in its life (see the enum).
 * CTH_THREAD_INITIAL for NULL. */
CTH_API cth_thread_state_t cth_thread_state(const cth_thread_t *thread);

/*
 * cth_thread_get_name - Thread.name: copy the full name into buf (size
 * bytes, NUL-terminated, truncated to fit; a NULL buf copies nothing, as
 * size 0). Returns the full name's length, as snprintf does (a return >=
 * size means it was truncated). A NULL thread has the empty name: 0, and
 * buf, if size is not 0, gets "".
 */
CTH_API size_t cth_thread_get_name(const cth_thread_t *thread, char *buf, size_t size);

/*
 * cth_thread_set_name - Thread.name = name. Keeps the full name (copied);
 * pushes it to the OS truncated to its limit (15 bytes on Linux) so that
 * top -H, ps -L and gdb show it: at once for a running thread, at start for
 * one not yet started. Returns 0, CTH_EINVAL for NULL, CTH_ENOMEM.
 */
CTH_API int cth_thread_set_name(cth_thread_t *thread, const char *name);

/* cth_thread_ident - Thread.ident: 0 before start (and for NULL), then the
 * value cth_get_ident() returns in that thread, kept after it ends. */
CTH_API unsigned long cth_thread_ident(const cth_thread_t *thread);

/* cth_thread_native_id - Thread.native_id: the kernel's thread id (what ps
 * -L shows), 0 before start (and for NULL), kept after the thread ends. */
CTH_API long cth_thread_native_id(const cth_thread_t *thread);

/* cth_thread_daemon - Thread.daemon: true for a daemon thread; false for a
 * non-daemon one and for NULL. */
CTH_API bool cth_thread_daemon(const cth_thread_t *thread);

/* cth_thread_set_daemon - Thread.daemon = daemon, before start only.
 * Returns 0; CTH_EPERM once started ("cannot set daemon status of active
 * thread") and for the main or an adopted thread; CTH_EINVAL for NULL. */
CTH_API int cth_thread_set_daemon(cth_thread_t *thread, bool daemon);

/* cth_thread_ref - take one more reference to a thread handle (for another
 * owner); returns thread (NULL for NULL). Each reference is dropped with
 * cth_thread_free. */
CTH_API cth_thread_t *cth_thread_ref(cth_thread_t *thread);

/* cth_thread_free - drop one reference (from cth_thread_create,
 * cth_thread_ref or cth_enumerate). A thread still running is not stopped:
 * it runs on detached and its memory goes when it ends. NULL and the main
 * thread are ignored. The borrowed pointer of cth_current_thread is no
 * reference: never free it. */
CTH_API void cth_thread_free(cth_thread_t *thread);

/* ---- module-level calls ---------------------------------------------------- */

/*
 * cth_current_thread - threading.current_thread(). In a thread cthreading
 * did not create (pthread_create, a library's thread), a handle is made on
 * first call, as Python's _DummyThread: named "Dummy-N", daemon, alive,
 * listed by cth_enumerate, not joinable, and forgotten when the OS thread
 * exits. The pointer is borrowed: valid while the calling thread lives (take
 * a reference to keep it longer). NULL only if the adoption's memory could
 * not be allocated.
 */
CTH_API cth_thread_t *cth_current_thread(void);

/* cth_main_thread - threading.main_thread(): the thread that started the
 * process, named "MainThread", non-daemon. Borrowed; lives as long as the
 * process. */
CTH_API cth_thread_t *cth_main_thread(void);

/* cth_get_ident - threading.get_ident(): non-zero, unique among living
 * threads, reusable after a thread ends. */
CTH_API unsigned long cth_get_ident(void);

/* cth_get_native_id - threading.get_native_id(): the kernel's thread id. */
CTH_API long cth_get_native_id(void);

/*
 * cth_enumerate - threading.enumerate(): every alive thread (main, started
 * threads that have not finished, adopted threads), oldest first. The timer
 * service's own threads are not listed, except a worker while it runs a
 * timer's function (in Python that is the Timer's thread; see timer.h).
 * Returns the number of alive threads and stores new references to the
 * first min(cap, that number) of them in threads[] (drop each with
 * cth_thread_free, or all with cth_threads_free(threads, min(cap, n))). With
 * threads NULL or cap 0 it only counts, as cth_active_count. Cannot fail.
 */
CTH_API size_t cth_enumerate(cth_thread_t **threads, size_t cap);

/* cth_threads_free - drop the references of threads[0..n) (from
 * cth_enumerate); NULL entries and a NULL array are ignored. */
CTH_API void cth_threads_free(cth_thread_t **threads, size_t n);

/* cth_active_count - threading.active_count(): the number of alive threads,
 * what cth_enumerate would return. */
CTH_API size_t cth_active_count(void);

/*
 * cth_stack_size - threading.stack_size(size): set the stack size for
 * threads created afterwards (0 = the platform default), and return the
 * previous value in *previous (may be NULL). Returns 0; CTH_EINVAL for a
 * size between 1 and 32767 ("size not valid"), one above SIZE_MAX / 2 (more
 * than half the address space: never a stack), or one the platform refuses.
 * A size accepted here may still be too large to map: cth_thread_start
 * then fails (CTH_EAGAIN or CTH_ENOMEM).
 */
CTH_API int cth_stack_size(size_t size, size_t *previous);

/* cth_get_stack_size - threading.stack_size() with no argument: the current
 * setting, 0 meaning the platform default. */
CTH_API size_t cth_get_stack_size(void);

/*
 * cth_interrupt_main - _thread.interrupt_main(signum): act, from any
 * thread, as if signal signum had arrived in the main thread. If the program
 * installed a handler for signum, the signal is sent to the main thread
 * (pthread_kill) and the handler runs there; with SIG_DFL or SIG_IGN no
 * signal is sent, so nothing runs and nothing dies, as in Python. Either
 * way, beyond Python (gh-74112): the main thread's current cthreading wait
 * (join, sleep, lock, queue, event, ...) wakes with CTH_EINTR, or, if it is
 * not waiting, its next one does at once; one call, one CTH_EINTR.
 * Returns 0, or CTH_EINVAL for signum < 1 or >= NSIG.
 *
 * Signals, as Python (PEP 475) treats them. In the main thread, a signal
 * whose handler returns (SIGUSR1, SIGCHLD, SIGALRM, a profiler's SIGPROF,
 * SIGWINCH, ...) does not end a cthreading wait: the handler runs and the
 * wait resumes toward its original deadline. Only the interrupting
 * signals end it with CTH_EINTR, after their handler has run: SIGINT
 * when the program has installed a handler for it (a real Ctrl-C, where
 * Python raises KeyboardInterrupt), and those named with
 * cth_interrupt_on_signal, wherever in the process the handler runs. To
 * know that one ran, cthreading wraps the program's handler of each
 * interrupting signal in its own, which calls the program's (flags and mask
 * kept): sigaction() then reports cthreading's, and installing that again
 * later brings back the handler it wrapped (up to eight distinct handlers
 * of each kind, SA_SIGINFO or not, are wrapped over the process's life;
 * one past them does not interrupt). Other threads' waits are
 * never interrupted. (With the POSIX futex emulation a signal does not
 * wake a sleep: it is reported when the wait next wakes.)
 */
CTH_API int cth_interrupt_main(int signum);

/*
 * cth_interrupt_on_signal - whether signal signum interrupts the main
 * thread's cthreading waits (see cth_interrupt_main): true makes its
 * handler end them with CTH_EINTR, as SIGINT's does by default (for
 * SIGTERM, say); false makes them resume after it, SIGINT's too. It takes
 * effect for a handler installed before or after the call; with SIG_DFL or
 * SIG_IGN the signal kills or does nothing, as ever. No Python equivalent
 * (there, a handler interrupts by raising). Returns 0; CTH_EINVAL for
 * signum < 1, >= NSIG or above 64, SIGKILL or SIGSTOP.
 */
CTH_API int cth_interrupt_on_signal(int signum, bool interrupts);

/*
 * cth_sleep - time.sleep(seconds): block the calling thread at least that
 * long, measured on the monotonic clock across spurious wake-ups. 0 yields
 * the processor. Returns 0; CTH_EINVAL for a negative or NaN value;
 * CTH_EOVERFLOW above CTH_TIMEOUT_MAX; CTH_EINTR in an interrupted main
 * thread (where Python would raise KeyboardInterrupt).
 */
CTH_API int cth_sleep(double seconds);

/*
 * cth_shutdown - threading._shutdown(): mark the main thread finished
 * (releasing threads that join it), then wait until every non-daemon thread
 * other than the caller has finished, its cth_local values destroyed,
 * including ones started while it waits, and every non-daemon one-shot timer
 * has fired or been cancelled (timer.h); then refuse new threads and timers
 * with CTH_ESHUTDOWN and cancel the timers still pending. Idempotent; the
 * calls after the first wait again for what is left. Returns 0;
 * CTH_ETIMEDOUT if non-daemon threads were still running when the timeout
 * expired; CTH_EINTR in an interrupted main thread (nothing is refused yet:
 * call it again); CTH_EINVAL for a bad timeout. It runs by itself at exit
 * (see the top of this file), waiting through interruptions.
 */
CTH_API int cth_shutdown(double timeout);

/* cth_dump_threads - write one line per alive thread to out: name, ident,
 * native id, daemon, state (started, running, finished, adopted); then a
 * line with their count. Returns 0, or CTH_EINVAL for a NULL out. */
CTH_API int cth_dump_threads(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
