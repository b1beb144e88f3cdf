/* SPDX-License-Identifier: MIT */
/*
 * thread.c - Thread: creation, start, the thread itself, join and the
 * queries, names, the stack size, interrupt_main and sleep. The registry,
 * adoption, shutdown and fork are the runtime's (runtime.c).
 *
 * State. A cth_thread is reference-counted: the creator's handle holds one
 * reference and a started thread holds one on itself until it ends.
 * A thread's life is its state word: INITIAL, STARTED (set by start() in the
 * parent, which also links it into the registry, so that on return it is
 * alive and enumerated), RUNNING (set by the thread), FINISHED (set by the
 * thread once its target has returned and it has left the registry).
 * Joiners reap the OS thread with pthread_join (one of them, the one that
 * wins the `reaped` flag; the others wait for it), so a join returns after
 * the thread's teardown, TLS destructors included, as Python's does. A
 * handle dropped before the thread ends leaves it to detach itself.
 *
 * Start and join cost what pthread_create and pthread_join cost, plus the
 * kernel thread id: no lock is held across pthread_create, the new thread
 * takes none (unless it pushes a chosen name to the OS) and wakes nobody
 * unless someone said they sleep (the native id's waiters, a joiner on the
 * state word); an untimed join outside the main thread is one
 * pthread_join. The parent registers the thread and knows its ident from
 * pthread_create; the native id (the kernel's tid) is published by the
 * thread itself, and cth_thread_native_id waits the few microseconds until
 * it is there, so start() never sleeps. A default name is made only when
 * asked for.
 *
 * A thread ends (thread_end) when its target returns, or by pthread_exit in
 * it (a cleanup handler): the runtime's thread-exit hooks run (its cth_local
 * values are destroyed), then it leaves the registry and is FINISHED.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cthreading/thread.h"
#include "deadline.h"
#include "runtime.h"
#include "thread_record.h"
#include "wait.h"

static _Atomic size_t default_stack_size;
static _Atomic long thread_start_countdown = -1; /* fault injection */
static _Thread_local _Atomic uint32_t tls_sleep_word;

/* ---- names ------------------------------------------------------------------------ */

CTH_API size_t cth_thread_get_name(const cth_thread_t *t, char *buf, size_t size)
{
    if (!buf)
        size = 0;
    if (!t) {
        if (size)
            buf[0] = '\0';
        return 0;
    }
    pthread_mutex_lock(&cth__registry_lock);
    size_t len = cth__thread_name_copy(t, buf, size);
    pthread_mutex_unlock(&cth__registry_lock);
    return len;
}

/* Push t's name to the OS (registry lock held; t runs). */
static void os_name_push(struct cth_thread *t)
{
    char os_name[16]; /* what the OS keeps, at most */
    cth__thread_name_copy(t, os_name, sizeof os_name);
    if (t == cth__tls_current)
        cth__os_set_name_self(os_name);
    else
        cth__os_set_name(t->pthread, os_name);
}

CTH_API int cth_thread_set_name(cth_thread_t *t, const char *name)
{
    if (!t || !name)
        return CTH_EINVAL;
    char *copy = cth__strdup(name);
    if (!copy)
        return CTH_ENOMEM;
    pthread_mutex_lock(&cth__registry_lock);
    char *old = cth__thread_rename_locked(t, copy);
    /* A running thread of ours shows the new name at once; one not yet
     * started takes it at start, one started and not yet running as it
     * begins (os_name_due: whichever of it and us sees the other's store
     * first pushes the name). The main and adopted threads are not ours to
     * rename in the OS (renaming main renames the process). */
    if (t->kind == KIND_NORMAL) {
        uint32_t state = atomic_load(&t->state);
        if (state == CTH_THREAD_STARTED) {
            atomic_store(&t->os_name_due, 1);
            state = atomic_load(&t->state);
            if (state == CTH_THREAD_RUNNING && !atomic_exchange(&t->os_name_due, 0))
                state = CTH_THREAD_STARTED; /* the thread took it */
        }
        if (state == CTH_THREAD_RUNNING)
            os_name_push(t);
    }
    pthread_mutex_unlock(&cth__registry_lock);
    cth__free(old);
    return 0;
}

/* ---- creation, start, the thread itself ---------------------------------------------- */

/* A stack size is refused when it is known to fail: under Python's 32 KiB,
 * over half the address space (no such stack can be mapped, and rounding
 * it up to pages with a guard would overflow: pthread_create's EINVAL for
 * SIZE_MAX), or refused by the platform's attribute. Whether a size below
 * that can be mapped is known only when the thread starts. */
static bool stack_size_valid(size_t size)
{
    if (!size)
        return true;
    if (size < 32768 || size > SIZE_MAX / 2)
        return false;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int rc = pthread_attr_setstacksize(&attr, size);
    pthread_attr_destroy(&attr);
    return rc == 0;
}

CTH_API int cth_thread_create(cth_thread_t **out, cth_thread_fn fn, void *arg,
                              const cth_thread_opts_t *opts)
{
    if (!out)
        return CTH_EINVAL;
    *out = NULL;
    cth_thread_opts_t dflt = {0};
    if (!opts)
        opts = &dflt;
    if (!stack_size_valid(opts->stack_size) || opts->daemon > CTH_DAEMON_YES ||
        opts->daemon < CTH_DAEMON_INHERIT)
        return CTH_EINVAL;
    /* malloc and a zeroed record rather than calloc: glibc's calloc skips
     * its per-thread cache, and it and the free after the join cost ~360
     * of the ~1,230 instructions a start+join spent over pthread's. */
    struct cth_thread *t = cth__malloc(sizeof *t);
    if (!t)
        return CTH_ENOMEM;
    *t = (struct cth_thread){0};
    if (opts->name && *opts->name) {
        t->name = cth__strdup(opts->name);
        if (!t->name) {
            cth__free(t);
            return CTH_ENOMEM;
        }
    } else {
        cth__thread_name_default(t, "Thread");
    }
    atomic_init(&t->refs, 1);
    t->kind = KIND_NORMAL;
    t->fn = fn;
    t->arg = arg;
    t->stack_size = opts->stack_size;
    t->daemon = opts->daemon == CTH_DAEMON_INHERIT ? cth__inherited_daemon()
                                                   : opts->daemon == CTH_DAEMON_YES;
    *out = t;
    return 0;
}

int cth__thread_create_internal(cth_thread_t **out, cth_thread_fn fn, void *arg, const char *name)
{
    cth_thread_opts_t opts = {.name = name, .daemon = CTH_DAEMON_YES};
    int err = cth_thread_create(out, fn, arg, &opts);
    if (!err)
        (*out)->hidden = true; /* not started: nobody else sees it yet */
    return err;
}

/* The thread's end: its locals go before it counts as finished, as Python
 * clears a thread's state before join or shutdown see it done (bpo-36402). */
static void thread_end(struct cth_thread *t)
{
    cth__runtime_thread_exit();
    cth__thread_finish(t);
    cth__tls_current = NULL;
    if (t->kind != KIND_MAIN) /* a thread that forked is the child's main: it stays */
        cth__thread_unref(t);
}

/* pthread_exit (or a cancellation) in the target: the thread ends as if the
 * target had returned NULL. */
static void thread_left_target(void *p)
{
    thread_end(p);
}

static void *thread_bootstrap(void *p)
{
    struct cth_thread *t = p;
    cth__tls_current = t;
    atomic_store(&t->ident, (unsigned long)pthread_self());
    atomic_store(&t->native_id, cth__os_tid());
    if (atomic_exchange(&t->native_ready, 1) == 2)
        cth__futex_wake(&t->native_ready, INT_MAX);
    atomic_store(&t->state, CTH_THREAD_RUNNING);
    if (atomic_exchange(&t->os_name_due, 0)) {
        pthread_mutex_lock(&cth__registry_lock);
        os_name_push(t);
        pthread_mutex_unlock(&cth__registry_lock);
    }

    cth_thread_fn fn = t->fn;
    t->fn = NULL;
    pthread_cleanup_push(thread_left_target, t);
    if (fn)
        t->result = fn(t->arg);
    pthread_cleanup_pop(0);
    thread_end(t);
    return NULL;
}

/* Python's order: "threads can only be started once", then shutdown. The
 * registry lock covers the bookkeeping only, never pthread_create: the new
 * thread must not find it held (a sleep and a wake-up per start). */
CTH_API int cth_thread_start(cth_thread_t *t)
{
    if (!t)
        return CTH_EINVAL;
    if (t->kind != KIND_NORMAL)
        return CTH_EPERM;
    pthread_attr_t attr, *attrp = NULL;
    size_t stack = t->stack_size ? t->stack_size : atomic_load(&default_stack_size);
    if (stack) {
        pthread_attr_init(&attr);
        if (pthread_attr_setstacksize(&attr, stack) != 0) {
            pthread_attr_destroy(&attr);
            return CTH_EINVAL;
        }
        attrp = &attr;
    }

    /* A thread leaves INITIAL only here, under the lock. */
    pthread_mutex_lock(&cth__registry_lock);
    int err = atomic_load(&t->state) != CTH_THREAD_INITIAL ? CTH_EPERM
                                                           : cth__admit_locked(!t->daemon);
    if (!err) {
        atomic_store(&t->state, CTH_THREAD_STARTED);
        cth__registry_link(t);
        cth_thread_ref(t); /* the thread's own reference */
        /* The OS name is the one inherited from this thread until a name
         * is pushed. A default "Thread-N" is not: it says nothing the
         * thread list does not, and a system call per thread is a tenth of
         * a start; a name the program chose (at creation or by
         * cth_thread_set_name) is what top -H, ps -L and gdb should show. */
        atomic_store(&t->os_name_due, t->name != NULL);
    }
    pthread_mutex_unlock(&cth__registry_lock);
    if (!err) {
        int rc = cth__fault_due(&thread_start_countdown)
                     ? EAGAIN
                     : pthread_create(&t->pthread, attrp, thread_bootstrap, t);
        if (rc == 0) {
            atomic_store(&t->ident, (unsigned long)t->pthread);
        } else {
            /* Nothing of it stays registered; it may be started again. A
             * joiner that came meanwhile is told it was never started. */
            pthread_mutex_lock(&cth__registry_lock);
            atomic_fetch_sub(&t->refs, 1);
            if (!t->daemon)
                cth__shutdown_release();
            cth__registry_unlink(t);
            atomic_store(&t->state, CTH_THREAD_INITIAL);
            pthread_mutex_unlock(&cth__registry_lock);
            if (atomic_load(&t->join_waiters))
                cth__futex_wake(&t->state, INT_MAX);
            err = rc == ENOMEM ? CTH_ENOMEM : rc == EINVAL ? CTH_EINVAL : CTH_EAGAIN;
        }
    }
    if (attrp)
        pthread_attr_destroy(attrp);
    return err;
}

void cth__fault_thread_start_after(long k)
{
    atomic_store(&thread_start_countdown, k);
}

CTH_API int cth_thread_run(cth_thread_t *t, void **result)
{
    if (!t)
        return CTH_EINVAL;
    cth_thread_fn fn = t->fn;
    t->fn = NULL;
    void *r = fn ? fn(t->arg) : NULL;
    if (result)
        *result = r;
    return 0;
}

/* ---- join and queries -------------------------------------------------------------------- */

static int wait_state_finished(struct cth_thread *t, int64_t deadline)
{
    for (;;) {
        uint32_t s = atomic_load(&t->state);
        if (s == CTH_THREAD_FINISHED)
            return 0;
        if (s == CTH_THREAD_INITIAL)
            return CTH_EPERM; /* its start failed meanwhile */
        atomic_fetch_add(&t->join_waiters, 1);
        int r = atomic_load(&t->state) == s ? cth__futex_wait(&t->state, s, deadline) : 0;
        atomic_fetch_sub(&t->join_waiters, 1);
        if (r)
            return r;
    }
}

/* Reap the OS thread. One that finished (FINISHED) on this CPU, whose end
 * woke us, waits behind us to tear down: let it run first, so that the
 * reap finds it gone instead of sleeping in pthread_join until it is (a
 * sleep and a wake-up more). */
static void reap_os_thread(struct cth_thread *t)
{
    int cpu;
    if (atomic_load(&t->state) == CTH_THREAD_FINISHED &&
        (cpu = atomic_load_explicit(&t->end_cpu, memory_order_relaxed)) >= 0 &&
        cpu == cth__os_current_cpu()) {
        sched_yield();
        if (cth__os_thread_tryjoin(t->pthread))
            return;
    }
    pthread_join(t->pthread, NULL);
}

/* One joiner reaps the OS thread with pthread_join, which returns once the
 * thread is gone (so it is FINISHED); the others wait for it, and are woken
 * only if one of them said it sleeps (3). */
static int reap(struct cth_thread *t, int64_t deadline)
{
    uint32_t r = 0;
    if (atomic_compare_exchange_strong(&t->reaped, &r, 1)) {
        _Atomic uint32_t *blocked = cth__wait_blocked_count; /* a timer worker's: wait.c */
        if (blocked)
            atomic_fetch_add_explicit(blocked, 1, memory_order_relaxed);
        reap_os_thread(t);
        if (blocked)
            atomic_fetch_sub_explicit(blocked, 1, memory_order_relaxed);
        if (atomic_exchange(&t->reaped, 2) == 3)
            cth__futex_wake(&t->reaped, INT_MAX);
        return 0;
    }
    while (r != 2) {
        if (r == 3 || (r == 1 && atomic_compare_exchange_strong(&t->reaped, &r, 3))) {
            int err = cth__futex_wait(&t->reaped, 3, deadline);
            if (err)
                return err;
        }
        r = atomic_load(&t->reaped);
    }
    return 0;
}

/* An untimed join outside the main thread is pthread_join itself: the
 * joiner sleeps once, woken by the kernel when the thread is gone, and the
 * thread wakes nobody. A timed join, and any join in the main thread (whose
 * waits end with CTH_EINTR when it is interrupted, and pthread_join's do
 * not), sleeps on the state word first, which the thread's end wakes, then
 * reaps (after a yield when the thread ended on the joiner's CPU: its
 * teardown is then due there first). pthread_join reads t->pthread, which pthread_create stores before
 * the thread runs: a nonzero ident (stored by start after pthread_create, or
 * by the thread) says it is there. */
CTH_API int cth_thread_join(cth_thread_t *t, void **result, double timeout)
{
    if (!t)
        return CTH_EINVAL;
    /* Python's order: the thread's state, then the timeout. */
    if (t->kind == KIND_ADOPTED)
        return CTH_EPERM;
    if (atomic_load(&t->state) == CTH_THREAD_INITIAL)
        return CTH_EPERM;
    if (t == cth__self_or_null())
        return CTH_EDEADLK;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    if (t->kind == KIND_NORMAL && deadline == CTH__NO_DEADLINE && atomic_load(&t->ident) &&
        !cth__is_main_thread()) {
        err = reap(t, deadline);
    } else {
        err = wait_state_finished(t, deadline);
        if (!err && t->kind == KIND_NORMAL)
            err = reap(t, deadline);
    }
    if (err)
        return err;
    if (result)
        *result = t->result;
    return 0;
}

CTH_API bool cth_thread_is_alive(const cth_thread_t *t)
{
    if (!t)
        return false;
    uint32_t s = atomic_load(&((cth_thread_t *)t)->state);
    return s == CTH_THREAD_STARTED || s == CTH_THREAD_RUNNING;
}

CTH_API cth_thread_state_t cth_thread_state(const cth_thread_t *t)
{
    return t ? (cth_thread_state_t)atomic_load(&((cth_thread_t *)t)->state) : CTH_THREAD_INITIAL;
}

CTH_API unsigned long cth_thread_ident(const cth_thread_t *t)
{
    return t ? atomic_load(&((cth_thread_t *)t)->ident) : 0;
}

CTH_API int cth_thread_set_daemon(cth_thread_t *t, bool daemon)
{
    if (!t)
        return CTH_EINVAL;
    if (t->kind != KIND_NORMAL)
        return CTH_EPERM;
    pthread_mutex_lock(&cth__registry_lock);
    int err = atomic_load(&t->state) == CTH_THREAD_INITIAL ? 0 : CTH_EPERM;
    if (!err)
        t->daemon = daemon;
    pthread_mutex_unlock(&cth__registry_lock);
    return err;
}

/* ---- module-level calls ------------------------------------------------------------------ */

CTH_API unsigned long cth_get_ident(void)
{
    return (unsigned long)pthread_self();
}

CTH_API long cth_get_native_id(void)
{
    return cth__os_tid();
}

CTH_API int cth_stack_size(size_t size, size_t *previous)
{
    if (!stack_size_valid(size))
        return CTH_EINVAL;
    size_t old = atomic_exchange(&default_stack_size, size);
    if (previous)
        *previous = old;
    return 0;
}

CTH_API size_t cth_get_stack_size(void)
{
    return atomic_load(&default_stack_size);
}

CTH_API int cth_interrupt_main(int signum)
{
    if (signum < 1 || signum >= NSIG)
        return CTH_EINVAL;
    struct sigaction sa;
    if (sigaction(signum, NULL, &sa) != 0)
        return CTH_EINVAL;
    if (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)) {
        /* As Python: no signal, so nothing runs and nothing dies; the main
         * thread's wait is interrupted all the same. */
        cth__interrupt_main_wait();
        return 0;
    }
    /* The flag goes first, so that a main thread about to sleep sees it;
     * the signal next, so that its handler runs in the main thread; the
     * wake-up last, for a main thread that blocks the signal. wait.c makes
     * sure the signal is not reported a second time. */
    cth__interrupt_signal_begin();
    cth__interrupt_post();
    pthread_kill(cth__main_thread->pthread, signum);
    cth__interrupt_signal_end();
    cth__interrupt_wake();
    return 0;
}

CTH_API int cth_sleep(double seconds)
{
    if (seconds == CTH_FOREVER)
        return CTH_EINVAL;
    int64_t deadline;
    int err = cth__timeout_to_deadline(seconds, &deadline);
    if (err)
        return err;
    if (seconds == 0) {
        sched_yield();
        return 0;
    }
    for (;;) {
        int r = cth__futex_wait(&tls_sleep_word, 0, deadline);
        if (r == CTH_ETIMEDOUT)
            return 0;
        if (r)
            return r;
    }
}
