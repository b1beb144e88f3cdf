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
 * Shutdown counts the started non-daemon threads and the pending or running
 * non-daemon one-shot timers (nondaemon_alive, a futex word; admission and
 * the check that ends the wait are both under registry_lock) and waits for it
 * to drop to the caller's own share; then new threads are refused and the
 * finalizers run (the timer service's close). When main() returns or calls
 * exit(), it runs before any atexit handler (Python runs threading._shutdown
 * before atexit's): from a thread_local destructor of the main thread, which
 * glibc's exit() runs first (main_exit_dtor); an atexit handler installed
 * when the library loads covers exit() from another thread and C libraries
 * without such destructors.
 *
 * A thread ends (thread_end) when its target returns, or by pthread_exit in
 * it (a cleanup handler): its cth_local values are destroyed, then it leaves
 * the registry and is FINISHED.
 *
 * The library's own threads (the timer service's) are hidden: linked in the
 * registry, so that a fork child ends them, but not listed or counted; a
 * timer worker is listed while it runs a timer's function.
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
    bool hidden; /* the library's own thread, not listed (under registry_lock) */
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
static int registry_count; /* listed (not hidden) threads */
/* Started non-daemon threads (main excluded) plus pending or running
 * non-daemon one-shot timers; shutdowns waiting on it count themselves in
 * nondaemon_waiters. */
static _Atomic uint32_t nondaemon_alive, nondaemon_waiters;
static _Atomic unsigned long name_counter;      /* "Thread-N" and "Dummy-N" */
static _Atomic size_t default_stack_size;
static bool shutdown_begun, shutdown_finalized; /* under registry_lock */
static _Atomic uint32_t finalizers_done;         /* futex: the finalizers have run */

static _Atomic long thread_start_countdown = -1; /* fault injection */

static struct hook {
    void (*fn)(void *);
    void *arg;
} *finalizers; /* under registry_lock */
static size_t nfinalizers;

static char main_name[] = "MainThread";
static struct cth_thread initial_main = {.refs = 1, .state = CTH_THREAD_RUNNING, .kind = KIND_MAIN,
                                        .reaped = 2, .native_ready = 1, .name = main_name};
/* The main thread: initial_main, or after a fork the thread that forked. */
static struct cth_thread *main_thread = &initial_main;

static _Thread_local struct cth_thread *tls_current;
/* Set while the thread runs a timer's function (cth__thread_timer_begin). */
static _Thread_local struct {
    bool active, daemon, counted;
    bool listed; /* a hidden thread, listed meanwhile */
} tls_timer;
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
    registry_count += !t->hidden;
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
    registry_count -= !t->hidden;
}

static void adopted_thread_exit(void *p);
static void thread_atexit(void);
static void main_exit_dtor(void *unused);
static void thread_unref(struct cth_thread *t);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

/* The C++ ABI's registration of a thread_local destructor (glibc); weak, so
 * that without it only the atexit handler is there. */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso_symbol)
    __attribute__((weak));

__attribute__((constructor)) static void thread_module_init(void)
{
    pthread_key_create(&adopted_key, adopted_thread_exit);
    main_thread->pthread = pthread_self();
    atomic_store(&main_thread->ident, (unsigned long)pthread_self());
    atomic_store(&main_thread->native_id, cth__os_tid());
    pthread_mutex_lock(&registry_lock);
    registry_link(main_thread);
    pthread_mutex_unlock(&registry_lock);
    atexit(thread_atexit);
    if (cth__is_main_thread()) {
        tls_current = main_thread;
        if (__cxa_thread_atexit_impl) /* the address names this library's module */
            __cxa_thread_atexit_impl(main_exit_dtor, NULL, &registry_lock);
    }
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
    uint32_t gone = 0; /* counted threads: all gone, self becomes main */
    while (registry_head) {
        struct cth_thread *t = registry_head;
        registry_unlink(t);
        gone += t->kind == KIND_NORMAL && !t->daemon;
        if (t == self)
            continue;
        atomic_store(&t->state, CTH_THREAD_FINISHED);
        atomic_store(&t->reaped, 2); /* its OS thread is not in this process */
        if (t->kind != KIND_MAIN)
            thread_unref(t);
    }
    /* The timers' share stays: the timer service's child handler (it runs
     * next) ends the timers the fork left behind, releasing theirs. */
    atomic_fetch_sub(&nondaemon_alive, gone);
    atomic_store(&nondaemon_waiters, 0);
    if (self->kind != KIND_MAIN) /* a worker or adopted thread forked */
        self->kind = KIND_MAIN;
    self->daemon = false;
    self->hidden = false;
    tls_timer.listed = false;
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

CTH_API size_t cth_thread_get_name(const cth_thread_t *t, char *buf, size_t size)
{
    if (!buf)
        size = 0;
    if (!t) {
        if (size)
            buf[0] = '\0';
        return 0;
    }
    pthread_mutex_lock(&registry_lock);
    size_t len = strlen(t->name);
    if (size) {
        size_t n = len < size - 1 ? len : size - 1;
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
                              const cth_thread_opts_t *opts)
{
    if (!out)
        return CTH_EINVAL;
    *out = NULL;
    cth_thread_opts_t dflt = {0};
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

bool cth__inherited_daemon(void)
{
    if (tls_timer.active)
        return tls_timer.daemon;
    struct cth_thread *self = self_or_null();
    return self ? self->daemon : true; /* a foreign thread counts as a daemon */
}

/* The thread leaves the registry and is FINISHED; joiners and shutdown are
 * told. */
static void thread_finish(struct cth_thread *t)
{
    pthread_mutex_lock(&registry_lock);
    registry_unlink(t);
    if (!t->daemon && t->kind == KIND_NORMAL)
        cth__shutdown_release();
    atomic_store(&t->state, CTH_THREAD_FINISHED);
    pthread_mutex_unlock(&registry_lock);
    if (atomic_load(&t->join_waiters))
        cth__futex_wake(&t->state, INT_MAX);
}

/* The thread's end: its locals go before it counts as finished, as Python
 * clears a thread's state before join or shutdown see it done (bpo-36402). */
static void thread_end(struct cth_thread *t)
{
    cth__local_thread_exit();
    thread_finish(t);
    tls_current = NULL;
    thread_unref(t);
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
    pthread_cleanup_push(thread_left_target, t);
    if (fn)
        t->result = fn(t->arg);
    pthread_cleanup_pop(0);
    thread_end(t);
    return NULL;
}

/* Under registry_lock: 0, counting a non-daemon thread, or CTH_ESHUTDOWN
 * once shutdown has finished waiting (Python: "can't create new thread at
 * interpreter shutdown"). */
static int admit_locked(bool nondaemon)
{
    if (shutdown_finalized)
        return CTH_ESHUTDOWN;
    if (nondaemon)
        atomic_fetch_add(&nondaemon_alive, 1);
    return 0;
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

    /* Python's order: "threads can only be started once", then shutdown.
     * A thread leaves INITIAL only here, under the lock. */
    pthread_mutex_lock(&registry_lock);
    int err = atomic_load(&t->state) != CTH_THREAD_INITIAL ? CTH_EPERM : admit_locked(!t->daemon);
    if (!err) {
        atomic_store(&t->state, CTH_THREAD_STARTED);
        registry_link(t);
        cth_thread_ref(t); /* the thread's own reference */
        int rc = cth__fault_due(&thread_start_countdown)
                     ? EAGAIN
                     : pthread_create(&t->pthread, attrp, thread_bootstrap, t);
        if (rc != 0) {
            /* Nothing of it stays registered; it may be started again. */
            atomic_fetch_sub(&t->refs, 1);
            if (!t->daemon)
                cth__shutdown_release();
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

CTH_API int cth_thread_join(cth_thread_t *t, void **result, double timeout)
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

CTH_API bool cth_thread_daemon(const cth_thread_t *t)
{
    return t && t->daemon;
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

CTH_API size_t cth_enumerate(cth_thread_t **threads, size_t cap)
{
    if (!threads)
        cap = 0;
    pthread_mutex_lock(&registry_lock);
    size_t i = 0;
    for (struct cth_thread *t = registry_head; t && i < cap; t = t->next)
        if (!t->hidden)
            threads[i++] = cth_thread_ref(t);
    size_t n = (size_t)registry_count;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

CTH_API size_t cth_active_count(void)
{
    pthread_mutex_lock(&registry_lock);
    size_t n = (size_t)registry_count;
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

int cth__shutdown_admit(bool nondaemon)
{
    pthread_mutex_lock(&registry_lock);
    int err = admit_locked(nondaemon);
    pthread_mutex_unlock(&registry_lock);
    return err;
}

void cth__shutdown_release(void)
{
    atomic_fetch_sub(&nondaemon_alive, 1);
    if (atomic_load(&nondaemon_waiters)) /* seq_cst: pairs with the waiter's count */
        cth__futex_wake(&nondaemon_alive, INT_MAX);
}

int cth__finalizer_register(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    int err = 0;
    if (shutdown_finalized) {
        err = CTH_ESHUTDOWN;
    } else {
        struct hook *h = cth__realloc(finalizers, (nfinalizers + 1) * sizeof *h);
        if (!h) {
            err = CTH_ENOMEM;
        } else {
            finalizers = h;
            finalizers[nfinalizers++] = (struct hook){fn, arg};
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return err;
}

void cth__thread_timer_begin(bool daemon, bool counted)
{
    struct cth_thread *self = tls_current;
    tls_timer.active = true;
    tls_timer.daemon = daemon;
    tls_timer.counted = counted;
    if (self && self->hidden) {
        pthread_mutex_lock(&registry_lock);
        self->hidden = false;
        registry_count++;
        pthread_mutex_unlock(&registry_lock);
        tls_timer.listed = true;
    }
}

void cth__thread_timer_end(void)
{
    if (tls_timer.listed) {
        pthread_mutex_lock(&registry_lock);
        tls_current->hidden = true;
        registry_count--;
        pthread_mutex_unlock(&registry_lock);
    }
    tls_timer.active = tls_timer.counted = tls_timer.listed = false;
}

/* Wait until nondaemon_alive is at most own. */
static int wait_nondaemon(uint32_t own, int64_t deadline)
{
    uint32_t n;
    while ((n = atomic_load(&nondaemon_alive)) > own) {
        atomic_fetch_add(&nondaemon_waiters, 1);
        int err = cth__futex_wait(&nondaemon_alive, n, deadline);
        atomic_fetch_sub(&nondaemon_waiters, 1);
        if (err)
            return err;
    }
    return 0;
}

CTH_API int cth_shutdown(double timeout)
{
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;

    /* The first call marks the main thread done: threads joining it are
     * released. */
    pthread_mutex_lock(&registry_lock);
    bool first = !shutdown_begun;
    shutdown_begun = true;
    if (first && atomic_load(&main_thread->state) != CTH_THREAD_FINISHED) {
        registry_unlink(main_thread);
        atomic_store(&main_thread->state, CTH_THREAD_FINISHED);
    }
    pthread_mutex_unlock(&registry_lock);
    if (first)
        cth__futex_wake(&main_thread->state, INT_MAX);

    /* The caller's own share: itself, if a running non-daemon thread; the
     * timer whose function it runs, if counted. */
    struct cth_thread *self = self_or_null();
    uint32_t own = (self && self->kind == KIND_NORMAL && !self->daemon &&
                    atomic_load(&self->state) == CTH_THREAD_RUNNING) +
                   tls_timer.counted;
    /* Admission and the last check are under the lock: nothing counted
     * slips in between the wait's end and the refusal of new threads. */
    struct hook *run = NULL;
    size_t nrun = 0;
    bool finalize = false, waited = false;
    while (!waited) {
        if ((err = wait_nondaemon(own, deadline)) != 0)
            return err;
        pthread_mutex_lock(&registry_lock);
        waited = atomic_load(&nondaemon_alive) <= own;
        if (waited && !shutdown_finalized) {
            shutdown_finalized = finalize = true;
            run = finalizers;
            nrun = nfinalizers;
            finalizers = NULL;
            nfinalizers = 0;
        }
        pthread_mutex_unlock(&registry_lock);
    }
    if (finalize) { /* once, newest first; none can be added now */
        for (size_t i = nrun; i-- > 0;)
            run[i].fn(run[i].arg);
        cth__free(run);
        atomic_store(&finalizers_done, 1);
        cth__futex_wake(&finalizers_done, INT_MAX);
    }
    while (!atomic_load(&finalizers_done))
        if ((err = cth__futex_wait(&finalizers_done, 0, deadline)) != 0)
            return err;
    return 0;
}

/* At exit (main returning, exit()), wait for the non-daemon threads. */
static void thread_atexit(void)
{
    while (cth_shutdown(CTH_FOREVER) == CTH_EINTR)
        ;
}

/* glibc's exit() runs the calling thread's thread_local destructors first,
 * before the atexit handlers: registered in the main thread, this one runs
 * the shutdown before every atexit handler of the program, whenever
 * registered (Python runs threading._shutdown before atexit's), when main()
 * returns or calls exit() (or ends by pthread_exit). The atexit handler then
 * finds it done. Only the main thread has it: glibc leaves a thread's
 * registrations allocated in a fork child where that thread is gone, and
 * LeakSanitizer reports them. */
static void main_exit_dtor(void *unused)
{
    (void)unused;
    thread_atexit();
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
    for (struct cth_thread *t = registry_head; t; t = t->next) {
        if (t->hidden)
            continue;
        fprintf(out, "%-24s ident=%#lx native_id=%ld%s %s\n", t->name, atomic_load(&t->ident),
                cth_thread_native_id(t), t->daemon ? " daemon" : "", state_word(t));
        n++;
    }
    fprintf(out, "%d thread%s\n", n, n == 1 ? "" : "s");
    pthread_mutex_unlock(&registry_lock);
    return 0;
}
