/*
 * thread.c - Thread, the registry of alive threads, adoption of foreign
 * threads, shutdown, interrupt_main and sleep.
 *
 * State. A cth_thread is reference-counted: the creator's handle holds one
 * reference and a started thread holds one on itself until it ends. The
 * registry is a list of the alive threads (main, started, adopted) under
 * registry_lock, a pthread mutex so that its waits never see the main
 * thread's interruptions; names, the list and the counters live under it.
 * A thread's life is its state word: INITIAL, STARTED (set by start() in the
 * parent, which also links it into the registry, so that on return it is
 * alive and enumerated), RUNNING (set by the thread), FINISHED (set by the
 * thread once its target has returned and it has left the registry).
 * Joiners sleep on the state word and then reap the OS thread with
 * pthread_join (one of them, the one that wins the `reaped` flag; the others
 * wait for it), so a join returns after the thread's teardown, TLS
 * destructors included, as Python's does. A handle dropped before the thread
 * ends leaves it to detach itself.
 *
 * Start costs no handshake: the parent registers the thread and knows its
 * ident from pthread_create; the native id (the kernel's tid) is published by
 * the thread itself, and cth_thread_native_id waits the few microseconds
 * until it is there, so start() never sleeps.
 *
 * Shutdown counts the started non-daemon threads (nondaemon_alive, a futex
 * word) and waits for it to drop to the caller's own share.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cthreading/thread.h"
#include "internal.h"

enum thread_kind { KIND_NORMAL, KIND_MAIN, KIND_ADOPTED };

struct cth_thread {
    _Atomic uint32_t refs;
    _Atomic uint32_t state;        /* cth_thread_state_t */
    _Atomic uint32_t join_waiters; /* joiners asleep on state */
    _Atomic uint32_t reaped;       /* 0 not yet, 1 being reaped, 2 done */
    _Atomic uint32_t native_ready; /* futex: native_id published */
    enum thread_kind kind;
    bool daemon;
    cth_thread_fn fn;
    void *arg;
    void *result;
    size_t stack_size;
    char *name; /* under registry_lock */
    _Atomic unsigned long ident;
    _Atomic long native_id;
    pthread_t pthread;
    struct cth_thread *prev, *next; /* registry, under registry_lock */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cth_thread *registry_head, *registry_tail; /* alive threads, oldest first */
static int registry_count;
static _Atomic uint32_t nondaemon_alive;        /* started non-daemon threads, main excluded */
static _Atomic unsigned long name_counter;      /* "Thread-N" and "Dummy-N" */
static _Atomic size_t default_stack_size;
static bool shutdown_begun, shutdown_finalized; /* under registry_lock */

static _Atomic long thread_start_countdown = -1; /* fault injection */

static struct hook {
    void (*fn)(void *);
    void *arg;
} *hooks;
static size_t nhooks;

static char main_name[] = "MainThread";
static struct cth_thread initial_main = {.refs = 1, .state = CTH_THREAD_RUNNING, .kind = KIND_MAIN,
                                        .reaped = 2, .native_ready = 1, .name = main_name};
/* The main thread: initial_main, or after a fork the thread that forked. */
static struct cth_thread *main_thread = &initial_main;

static _Thread_local struct cth_thread *tls_current;
static _Thread_local _Atomic uint32_t tls_sleep_word;
static pthread_key_t adopted_key;

/* ---- registry ---------------------------------------------------------------- */

static void registry_link(struct cth_thread *t)
{
    t->next = NULL;
    t->prev = registry_tail;
    if (registry_tail)
        registry_tail->next = t;
    else
        registry_head = t;
    registry_tail = t;
    registry_count++;
}

static void registry_unlink(struct cth_thread *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        registry_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        registry_tail = t->prev;
    t->prev = t->next = NULL;
    registry_count--;
}

static void adopted_thread_exit(void *p);
static void thread_atexit(void);
static void thread_unref(struct cth_thread *t);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

__attribute__((constructor)) static void thread_module_init(void)
{
    pthread_key_create(&adopted_key, adopted_thread_exit);
    main_thread->pthread = pthread_self();
    atomic_store(&main_thread->ident, (unsigned long)pthread_self());
    atomic_store(&main_thread->native_id, cth__os_tid());
    pthread_mutex_lock(&registry_lock);
    registry_link(main_thread);
    pthread_mutex_unlock(&registry_lock);
    if (cth__is_main_thread())
        tls_current = main_thread;
    atexit(thread_atexit);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- fork ------------------------------------------------------------------------ */

/* The registry lock is held across fork() so that the child gets it in a
 * known state. In the child only the forking thread exists: it becomes the
 * main thread (as Python's _after_fork), every other thread is finished and
 * its running reference dropped, and nothing is pending. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
    /* The forking thread took the lock in fork_prepare and is the one that
     * goes on in the child: it still holds it. */
    cth__os_after_fork_child();
    cth__interrupt_reset();
    struct cth_thread *self = tls_current ? tls_current : &initial_main;
    while (registry_head) {
        struct cth_thread *t = registry_head;
        registry_unlink(t);
        if (t == self)
            continue;
        atomic_store(&t->state, CTH_THREAD_FINISHED);
        atomic_store(&t->reaped, 2); /* its OS thread is not in this process */
        if (t->kind != KIND_MAIN)
            thread_unref(t);
    }
    atomic_store(&nondaemon_alive, 0);
    if (self->kind != KIND_MAIN) /* a worker or adopted thread forked */
        self->kind = KIND_MAIN;
    self->daemon = false;
    self->pthread = pthread_self();
    atomic_store(&self->state, CTH_THREAD_RUNNING);
    atomic_store(&self->reaped, 2);
    atomic_store(&self->ident, (unsigned long)pthread_self());
    atomic_store(&self->native_id, cth__os_tid());
    atomic_store(&self->native_ready, 1);
    registry_link(self);
    main_thread = self;
    tls_current = self;
    pthread_mutex_unlock(&registry_lock);
}

/* ---- references ---------------------------------------------------------------- */

static void thread_destroy(struct cth_thread *t)
{
    cth__free(t->name);
    cth__free(t);
}

static void thread_unref(struct cth_thread *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* The last reference: nobody can join any more. A thread that ran and
     * was never joined is detached so that its OS resources go. */
    if (atomic_load(&t->state) == CTH_THREAD_FINISHED && atomic_load(&t->reaped) == 0)
        pthread_detach(t->pthread);
    thread_destroy(t);
}

CTH_API cth_thread_t *cth_thread_ref(cth_thread_t *t)
{
    if (t)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

CTH_API void cth_thread_free(cth_thread_t *t)
{
    if (!t || t->kind == KIND_MAIN)
        return;
    thread_unref(t);
}

CTH_API void cth_threads_free(cth_thread_t **threads, size_t n)
{
    for (size_t i = 0; threads && i < n; i++)
        cth_thread_free(threads[i]);
}

/* ---- names ------------------------------------------------------------------------ */

static char *name_make(const char *prefix)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s-%lu", prefix, atomic_fetch_add(&name_counter, 1) + 1);
    return cth__strdup(buf);
}

CTH_API int cth_thread_get_name(const cth_thread_t *t, char *buf, size_t size)
{
    if (!t || (!buf && size))
        return CTH_EINVAL;
    pthread_mutex_lock(&registry_lock);
    int len = (int)strlen(t->name);
    if (size) {
        size_t n = (size_t)len < size - 1 ? (size_t)len : size - 1;
        memcpy(buf, t->name, n);
        buf[n] = '\0';
    }
    pthread_mutex_unlock(&registry_lock);
    return len;
}

CTH_API int cth_thread_set_name(cth_thread_t *t, const char *name)
{
    if (!t || !name)
        return CTH_EINVAL;
    char *copy = cth__strdup(name);
    if (!copy)
        return CTH_ENOMEM;
    pthread_mutex_lock(&registry_lock);
    char *old = t->name;
    t->name = copy;
    /* A running thread of ours shows the new name at once; one not yet
     * started takes it at start. The main and adopted threads are not ours
     * to rename in the OS (renaming main renames the process). */
    if (t->kind == KIND_NORMAL && atomic_load(&t->state) != CTH_THREAD_INITIAL &&
        atomic_load(&t->state) != CTH_THREAD_FINISHED) {
        if (t == tls_current) {
            cth__os_set_name_self(copy);
        } else {
            char os_name[16];
            snprintf(os_name, sizeof os_name, "%s", copy);
            pthread_setname_np(t->pthread, os_name);
        }
    }
    pthread_mutex_unlock(&registry_lock);
    if (old != main_name)
        cth__free(old);
    return 0;
}

/* ---- creation, start, the thread itself ---------------------------------------------- */

static struct cth_thread *self_or_null(void)
{
    if (tls_current)
        return tls_current;
    if (cth__is_main_thread())
        return main_thread;
    return NULL;
}

CTH_API int cth_thread_create(cth_thread_t **out, cth_thread_fn fn, void *arg,
                              const cth_thread_opts *opts)
{
    if (!out)
        return CTH_EINVAL;
    *out = NULL;
    cth_thread_opts dflt = {0};
    if (!opts)
        opts = &dflt;
    if ((opts->stack_size && opts->stack_size < 32768) || opts->daemon > CTH_DAEMON_YES ||
        opts->daemon < CTH_DAEMON_INHERIT)
        return CTH_EINVAL;
    struct cth_thread *t = cth__calloc(1, sizeof *t);
    if (!t)
        return CTH_ENOMEM;
    t->name = opts->name && *opts->name ? cth__strdup(opts->name) : name_make("Thread");
    if (!t->name) {
        cth__free(t);
        return CTH_ENOMEM;
    }
    atomic_init(&t->refs, 1);
    t->kind = KIND_NORMAL;
    t->fn = fn;
    t->arg = arg;
    t->stack_size = opts->stack_size;
    if (opts->daemon == CTH_DAEMON_INHERIT) {
        struct cth_thread *self = self_or_null();
        t->daemon = self ? self->daemon : true; /* a foreign thread counts as a daemon */
    } else {
        t->daemon = opts->daemon == CTH_DAEMON_YES;
    }
    *out = t;
    return 0;
}

/* The thread leaves the registry and is FINISHED; joiners and shutdown are
 * told. */
static void thread_finish(struct cth_thread *t)
{
    pthread_mutex_lock(&registry_lock);
    registry_unlink(t);
    if (!t->daemon && t->kind == KIND_NORMAL) {
        atomic_fetch_sub(&nondaemon_alive, 1);
        cth__futex_wake(&nondaemon_alive, INT_MAX);
    }
    atomic_store(&t->state, CTH_THREAD_FINISHED);
    pthread_mutex_unlock(&registry_lock);
    if (atomic_load(&t->join_waiters))
        cth__futex_wake(&t->state, INT_MAX);
}

static void *thread_bootstrap(void *p)
{
    struct cth_thread *t = p;
    tls_current = t;
    atomic_store(&t->ident, (unsigned long)pthread_self());
    atomic_store(&t->native_id, cth__os_tid());
    atomic_store(&t->native_ready, 1);
    cth__futex_wake(&t->native_ready, INT_MAX);
    pthread_mutex_lock(&registry_lock);
    cth__os_set_name_self(t->name);
    pthread_mutex_unlock(&registry_lock);
    atomic_store(&t->state, CTH_THREAD_RUNNING);

    cth_thread_fn fn = t->fn;
    t->fn = NULL;
    if (fn)
        t->result = fn(t->arg);

    thread_finish(t);
    tls_current = NULL;
    thread_unref(t);
    return NULL;
}

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

    pthread_mutex_lock(&registry_lock);
    int err = 0;
    uint32_t initial = CTH_THREAD_INITIAL;
    if (shutdown_finalized)
        err = CTH_ESHUTDOWN;
    else if (!atomic_compare_exchange_strong(&t->state, &initial, CTH_THREAD_STARTED))
        err = CTH_EPERM;
    if (!err) {
        registry_link(t);
        if (!t->daemon)
            atomic_fetch_add(&nondaemon_alive, 1);
        cth_thread_ref(t); /* the thread's own reference */
        int rc = cth__fault_due(&thread_start_countdown)
                     ? EAGAIN
                     : pthread_create(&t->pthread, attrp, thread_bootstrap, t);
        if (rc != 0) {
            /* Nothing of it stays registered; it may be started again. */
            atomic_fetch_sub(&t->refs, 1);
            if (!t->daemon)
                atomic_fetch_sub(&nondaemon_alive, 1);
            registry_unlink(t);
            atomic_store(&t->state, CTH_THREAD_INITIAL);
            err = rc == ENOMEM ? CTH_ENOMEM : rc == EINVAL ? CTH_EINVAL : CTH_EAGAIN;
        } else {
            atomic_store(&t->ident, (unsigned long)t->pthread);
        }
    }
    pthread_mutex_unlock(&registry_lock);
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
        atomic_fetch_add(&t->join_waiters, 1);
        int r = atomic_load(&t->state) == s ? cth__futex_wait(&t->state, s, deadline) : 0;
        atomic_fetch_sub(&t->join_waiters, 1);
        if (r)
            return r;
    }
}

/* After FINISHED: one joiner reaps the OS thread, the others wait for it. */
static int wait_reaped(struct cth_thread *t, int64_t deadline)
{
    uint32_t expected = 0;
    if (atomic_compare_exchange_strong(&t->reaped, &expected, 1)) {
        pthread_join(t->pthread, NULL);
        atomic_store(&t->reaped, 2);
        cth__futex_wake(&t->reaped, INT_MAX);
        return 0;
    }
    while ((expected = atomic_load(&t->reaped)) != 2) {
        int r = cth__futex_wait(&t->reaped, expected, deadline);
        if (r)
            return r;
    }
    return 0;
}

CTH_API int cth_thread_join(cth_thread_t *t, double timeout, void **result)
{
    if (!t)
        return CTH_EINVAL;
    /* Python's order: the thread's state, then the timeout. */
    if (t->kind == KIND_ADOPTED)
        return CTH_EPERM;
    if (atomic_load(&t->state) == CTH_THREAD_INITIAL)
        return CTH_EPERM;
    if (t == self_or_null())
        return CTH_EDEADLK;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    err = wait_state_finished(t, deadline);
    if (!err && t->kind == KIND_NORMAL)
        err = wait_reaped(t, deadline);
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

CTH_API long cth_thread_native_id(const cth_thread_t *t)
{
    if (!t)
        return 0;
    struct cth_thread *m = (struct cth_thread *)t;
    if (atomic_load(&m->state) == CTH_THREAD_INITIAL)
        return 0;
    /* Started: the thread publishes its id within microseconds. */
    while (!atomic_load(&m->native_ready))
        cth__os_futex_wait(&m->native_ready, 0, CTH__NO_DEADLINE);
    return atomic_load(&m->native_id);
}

CTH_API int cth_thread_daemon(const cth_thread_t *t)
{
    return t ? (int)t->daemon : CTH_EINVAL;
}

CTH_API int cth_thread_set_daemon(cth_thread_t *t, bool daemon)
{
    if (!t)
        return CTH_EINVAL;
    if (t->kind != KIND_NORMAL)
        return CTH_EPERM;
    pthread_mutex_lock(&registry_lock);
    int err = atomic_load(&t->state) == CTH_THREAD_INITIAL ? 0 : CTH_EPERM;
    if (!err)
        t->daemon = daemon;
    pthread_mutex_unlock(&registry_lock);
    return err;
}

/* ---- current thread, adoption, module-level calls ----------------------------------------- */

static void adopted_thread_exit(void *p)
{
    struct cth_thread *t = p;
    thread_finish(t);
    tls_current = NULL;
    thread_unref(t);
}

CTH_API cth_thread_t *cth_current_thread(void)
{
    struct cth_thread *t = self_or_null();
    if (t)
        return t;
    t = cth__calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->name = name_make("Dummy");
    if (!t->name) {
        cth__free(t);
        return NULL;
    }
    atomic_init(&t->refs, 1); /* the thread's own, dropped when it exits */
    atomic_init(&t->state, CTH_THREAD_RUNNING);
    atomic_init(&t->reaped, 2);
    atomic_init(&t->native_ready, 1);
    t->kind = KIND_ADOPTED;
    t->daemon = true;
    t->pthread = pthread_self();
    atomic_init(&t->ident, (unsigned long)pthread_self());
    atomic_init(&t->native_id, cth__os_tid());
    if (pthread_setspecific(adopted_key, t) != 0) {
        thread_destroy(t);
        return NULL;
    }
    pthread_mutex_lock(&registry_lock);
    registry_link(t);
    pthread_mutex_unlock(&registry_lock);
    tls_current = t;
    return t;
}

CTH_API cth_thread_t *cth_main_thread(void)
{
    return main_thread;
}

CTH_API unsigned long cth_get_ident(void)
{
    return (unsigned long)pthread_self();
}

CTH_API long cth_get_native_id(void)
{
    return cth__os_tid();
}

CTH_API int cth_enumerate(cth_thread_t **threads, size_t cap)
{
    if (!threads && cap)
        return CTH_EINVAL;
    pthread_mutex_lock(&registry_lock);
    size_t i = 0;
    for (struct cth_thread *t = registry_head; t && i < cap; t = t->next)
        threads[i++] = cth_thread_ref(t);
    int n = registry_count;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

CTH_API int cth_active_count(void)
{
    pthread_mutex_lock(&registry_lock);
    int n = registry_count;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

CTH_API int cth_stack_size(size_t size, size_t *previous)
{
    if (size && size < 32768)
        return CTH_EINVAL;
    if (size) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        int rc = pthread_attr_setstacksize(&attr, size);
        pthread_attr_destroy(&attr);
        if (rc)
            return CTH_EINVAL;
    }
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
    if (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
        return 0; /* as Python: nothing runs, nothing dies */
    /* The flag goes first, so that a main thread about to sleep sees it;
     * the signal next, so that its handler runs in the main thread; the
     * wake-up last, for a main thread that blocks the signal. wait.c makes
     * sure the signal is not reported a second time. */
    cth__interrupt_signal_begin();
    cth__interrupt_post();
    pthread_kill(main_thread->pthread, signum);
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

/* ---- shutdown ------------------------------------------------------------------------------- */

int cth__atexit_register(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    int err = 0;
    if (shutdown_begun) {
        err = CTH_ESHUTDOWN;
    } else {
        struct hook *h = cth__realloc(hooks, (nhooks + 1) * sizeof *h);
        if (!h) {
            err = CTH_ENOMEM;
        } else {
            hooks = h;
            hooks[nhooks++] = (struct hook){fn, arg};
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return err;
}

CTH_API int cth_shutdown(double timeout)
{
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;

    pthread_mutex_lock(&registry_lock);
    bool first = !shutdown_begun;
    shutdown_begun = true;
    pthread_mutex_unlock(&registry_lock);

    if (first) {
        /* Hooks run once, newest first; none can be added now. */
        for (size_t i = nhooks; i-- > 0;)
            hooks[i].fn(hooks[i].arg);
        cth__free(hooks);
        hooks = NULL;
        nhooks = 0;
        /* The main thread is done: threads joining it are released. */
        pthread_mutex_lock(&registry_lock);
        if (atomic_load(&main_thread->state) != CTH_THREAD_FINISHED) {
            registry_unlink(main_thread);
            atomic_store(&main_thread->state, CTH_THREAD_FINISHED);
        }
        pthread_mutex_unlock(&registry_lock);
        cth__futex_wake(&main_thread->state, INT_MAX);
    }

    struct cth_thread *self = self_or_null();
    uint32_t own = self && self->kind == KIND_NORMAL && !self->daemon &&
                   atomic_load(&self->state) == CTH_THREAD_RUNNING;
    uint32_t n;
    while ((n = atomic_load(&nondaemon_alive)) > own) {
        err = cth__futex_wait(&nondaemon_alive, n, deadline);
        if (err)
            return err;
    }
    pthread_mutex_lock(&registry_lock);
    shutdown_finalized = true;
    pthread_mutex_unlock(&registry_lock);
    return 0;
}

/* At exit (main returning, exit()), wait for the non-daemon threads. */
static void thread_atexit(void)
{
    while (cth_shutdown(CTH_FOREVER) == CTH_EINTR)
        ;
}

/* ---- dump ------------------------------------------------------------------------------------- */

static const char *state_word(const struct cth_thread *t)
{
    if (t->kind == KIND_ADOPTED)
        return "adopted";
    switch (atomic_load(&((struct cth_thread *)t)->state)) {
    case CTH_THREAD_STARTED:
        return "started";
    case CTH_THREAD_RUNNING:
        return "running";
    case CTH_THREAD_FINISHED:
        return "finished";
    default:
        return "initial";
    }
}

CTH_API int cth_dump_threads(FILE *out)
{
    if (!out)
        return CTH_EINVAL;
    pthread_mutex_lock(&registry_lock);
    int n = 0;
    for (struct cth_thread *t = registry_head; t; t = t->next, n++)
        fprintf(out, "%-24s ident=%#lx native_id=%ld%s %s\n", t->name, atomic_load(&t->ident),
                cth_thread_native_id(t), t->daemon ? " daemon" : "", state_word(t));
    fprintf(out, "%d thread%s\n", n, n == 1 ? "" : "s");
    pthread_mutex_unlock(&registry_lock);
    return n;
}
