/* SPDX-License-Identifier: MIT */
/*
 * runtime.c - the process's thread runtime: the registry of alive threads
 * (main, started, adopted, and the library's own), the records' references,
 * adoption of foreign threads, shutdown and its finalizers, the exit of the
 * process, fork, and the hooks by which the modules above (local.c, the
 * timer service) take part in a thread's exit and in fork. It calls no
 * module above it: those register hooks here.
 *
 * The registry is a list of the alive threads under cth__registry_lock, a
 * pthread mutex so that its waits never see the main thread's interruptions;
 * names, the list and the counters live under it. thread.c links a thread in
 * when it starts it and cth__thread_finish takes it out when it ends.
 *
 * Shutdown counts the started non-daemon threads and the other work admitted
 * as non-daemon (a pending or running non-daemon one-shot timer) in
 * nondaemon_alive, a futex word; admission and the check that ends the wait
 * are both under the registry lock. It waits for it to drop to the caller's
 * own share; then new threads are refused and the finalizers run (the timer
 * service's close). When main() returns or calls exit(), it runs before any
 * atexit handler (Python runs threading._shutdown before atexit's): from a
 * thread-exit destructor of the main thread, which glibc's exit() runs first
 * (main_exit_dtor); an atexit handler installed when the library loads
 * covers exit() from another thread and C libraries without such
 * destructors.
 *
 * The library's own threads (the timer service's) are hidden: linked in the
 * registry, so that a fork child ends them, but not listed or counted. A
 * hidden thread that acts for another thread (a timer worker running a
 * Timer's function, cth__thread_act_begin) is listed meanwhile, by flags it
 * sets itself without the registry lock (it acts once per timer call), its
 * name made by the acting namer only when someone asks for it.
 *
 * Hooks. A thread-exit hook runs in a thread that ends, before it counts as
 * finished (and where a thread acts as one that ends); fork hooks run as
 * pthread_atfork's do: prepare in reverse registration order before the
 * registry lock is taken, parent and child in registration order after the
 * runtime's own handling. Registration is rare (a constructor, a first
 * use): a fixed table, appended under hooks_lock and read without a lock.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "deadline.h"
#include "lock.h"
#include "runtime.h"
#include "thread_record.h"
#include "wait.h"

#define MAX_HOOKS 8 /* the modules that register: local.c, timer_service.c */

pthread_mutex_t cth__registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cth__list registry; /* alive threads (registry_link), oldest first */
static int registry_count;        /* threads not hidden */
static _Atomic int acting_count;  /* hidden threads listed while they act */
static size_t (*_Atomic acting_namer)(const void *, char *, size_t);
/* Started non-daemon threads (main excluded) plus other work admitted as
 * non-daemon; shutdowns waiting on it count themselves in nondaemon_waiters. */
static _Atomic uint32_t nondaemon_alive, nondaemon_waiters;
static _Atomic unsigned long name_counter; /* "Thread-N" and "Dummy-N" */
static bool shutdown_begun;                /* under cth__registry_lock */
/* Written under cth__registry_lock; atomic so that an admission that counts
 * nothing reads it without the lock. */
static _Atomic bool shutdown_finalized;
static _Atomic uint32_t finalizers_done; /* futex: the finalizers have run */

static struct hook {
    void (*fn)(void *);
    void *arg;
} * finalizers; /* under cth__registry_lock */
static size_t nfinalizers;

char cth__main_name[] = "MainThread";
static struct cth_thread initial_main = {.refs = 1,
                                         .state = CTH_THREAD_RUNNING,
                                         .kind = KIND_MAIN,
                                         .reaped = 2,
                                         .native_ready = 1,
                                         .name = cth__main_name};
/* The main thread: initial_main, or after a fork the thread that forked. */
struct cth_thread *cth__main_thread = &initial_main;

_Thread_local struct cth_thread *cth__tls_current;
/* Set while the thread acts for another (cth__thread_act_begin). */
static _Thread_local struct {
    bool active, daemon, counted;
    bool listed; /* a hidden thread, listed meanwhile */
} tls_acting __attribute__((tls_model("initial-exec")));
static pthread_key_t adopted_key;

/* The hooks: appended under hooks_lock, the count published last. */
static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*exit_hooks[MAX_HOOKS])(void);
static _Atomic size_t nexit_hooks;
static struct fork_hook {
    void (*prepare)(void), (*parent)(void), (*child)(void);
} fork_hooks[MAX_HOOKS];
static _Atomic size_t nfork_hooks;
static size_t fork_hooks_seen; /* how many the fork under way prepared */

/* ---- registry ---------------------------------------------------------------- */

void cth__registry_link(struct cth_thread *t)
{
    cth__list_push_back(&registry, &t->registry_link);
    registry_count += !t->hidden;
}

void cth__registry_unlink(struct cth_thread *t)
{
    cth__list_remove(&registry, &t->registry_link);
    registry_count -= !t->hidden;
}

static void adopted_thread_exit(void *p);
static void thread_atexit(void);
static void main_exit_dtor(void *unused);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

__attribute__((constructor)) static void runtime_init(void)
{
    pthread_key_create(&adopted_key, adopted_thread_exit);
    cth__main_thread->pthread = pthread_self();
    atomic_store(&cth__main_thread->ident, (unsigned long)pthread_self());
    atomic_store(&cth__main_thread->native_id, cth__os_tid());
    pthread_mutex_lock(&cth__registry_lock);
    cth__registry_link(cth__main_thread);
    pthread_mutex_unlock(&cth__registry_lock);
    atexit(thread_atexit);
    if (cth__is_main_thread()) {
        cth__tls_current = cth__main_thread;
        /* the address names this library's module */
        cth__os_at_thread_exit(main_exit_dtor, NULL, &cth__registry_lock);
    }
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- hooks ----------------------------------------------------------------------- */

void cth__runtime_on_thread_exit(void (*fn)(void))
{
    pthread_mutex_lock(&hooks_lock);
    size_t n = atomic_load_explicit(&nexit_hooks, memory_order_relaxed);
    if (n == MAX_HOOKS)
        abort();
    exit_hooks[n] = fn;
    atomic_store_explicit(&nexit_hooks, n + 1, memory_order_release);
    pthread_mutex_unlock(&hooks_lock);
}

void cth__runtime_on_fork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    pthread_mutex_lock(&hooks_lock);
    size_t n = atomic_load_explicit(&nfork_hooks, memory_order_relaxed);
    if (n == MAX_HOOKS)
        abort();
    fork_hooks[n] = (struct fork_hook){prepare, parent, child};
    atomic_store_explicit(&nfork_hooks, n + 1, memory_order_release);
    pthread_mutex_unlock(&hooks_lock);
}

void cth__runtime_thread_exit(void)
{
    size_t n = atomic_load_explicit(&nexit_hooks, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        exit_hooks[i]();
}

bool cth__runtime_thread_hooked(void)
{
    struct cth_thread *self = cth__tls_current;
    return self && self->kind != KIND_ADOPTED;
}

/* ---- fork ------------------------------------------------------------------------ */

/* The registry lock is held across fork() so that the child gets it in a
 * known state. In the child only the forking thread exists: it becomes the
 * main thread (as Python's _after_fork), every other thread is finished and
 * its running reference dropped, and nothing is pending. */
static void fork_prepare(void)
{
    fork_hooks_seen = atomic_load_explicit(&nfork_hooks, memory_order_acquire);
    for (size_t i = fork_hooks_seen; i-- > 0;)
        if (fork_hooks[i].prepare)
            fork_hooks[i].prepare();
    pthread_mutex_lock(&cth__registry_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&cth__registry_lock);
    for (size_t i = 0; i < fork_hooks_seen; i++)
        if (fork_hooks[i].parent)
            fork_hooks[i].parent();
}

/* The fork generation (lock.h). Defined here, beside the hook that
 * bumps it, so that a program linked statically that uses no more than a
 * Lock still links this file and its pthread_atfork registration: without
 * it a child would take the parent's waiters for its own. */
_Atomic uint32_t cth__fork_gen_var;

static void fork_child(void)
{
    /* The forking thread took the lock in fork_prepare and is the one that
     * goes on in the child: it still holds it. Every waiter recorded so far
     * is another thread's: a new generation makes them stale (lock.h). */
    atomic_fetch_add_explicit(&cth__fork_gen_var, 1, memory_order_relaxed);
    cth__os_after_fork_child();
    cth__interrupt_reset();
    struct cth_thread *self = cth__tls_current ? cth__tls_current : &initial_main;
    uint32_t gone = 0; /* counted threads: all gone, self becomes main */
    struct cth_thread *t;
    while ((t = cth__list_entry(registry.first, struct cth_thread, registry_link))) {
        cth__registry_unlink(t);
        gone += t->kind == KIND_NORMAL && !t->daemon;
        if (t == self)
            continue;
        atomic_store(&t->state, CTH_THREAD_FINISHED);
        atomic_store(&t->reaped, 2); /* its OS thread is not in this process */
        if (t->kind != KIND_MAIN)
            cth__thread_unref(t);
    }
    /* The other shares stay: their fork hooks (they run next) end the work
     * the fork left behind, releasing theirs. */
    atomic_fetch_sub(&nondaemon_alive, gone);
    atomic_store(&nondaemon_waiters, 0);
    self->kind = KIND_MAIN; /* a worker or adopted thread may have forked */
    self->daemon = false;
    self->hidden = false;
    tls_acting.listed = false;
    atomic_store(&acting_count, 0);
    self->pthread = pthread_self();
    atomic_store(&self->state, CTH_THREAD_RUNNING);
    atomic_store(&self->reaped, 2);
    atomic_store(&self->ident, (unsigned long)pthread_self());
    atomic_store(&self->native_id, cth__os_tid());
    atomic_store(&self->native_ready, 1);
    cth__registry_link(self);
    cth__main_thread = self;
    cth__tls_current = self;
    pthread_mutex_unlock(&cth__registry_lock);
    for (size_t i = 0; i < fork_hooks_seen; i++)
        if (fork_hooks[i].child)
            fork_hooks[i].child();
}

/* ---- references ---------------------------------------------------------------- */

static void thread_destroy(struct cth_thread *t)
{
    cth__free(t->name);
    cth__free(t);
}

void cth__thread_unref(struct cth_thread *t)
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
    cth__thread_unref(t);
}

CTH_API void cth_threads_free(cth_thread_t **threads, size_t n)
{
    for (size_t i = 0; threads && i < n; i++)
        cth_thread_free(threads[i]);
}

/* ---- names ------------------------------------------------------------------------ */

/* A default name costs a counter increment: the string is made when the
 * name is asked for (most threads never are). */
void cth__thread_name_default(struct cth_thread *t, const char *prefix)
{
    t->name = NULL;
    t->name_prefix = prefix;
    t->name_number = atomic_fetch_add_explicit(&name_counter, 1, memory_order_relaxed) + 1;
}

/* The name of the thread t acts for, if it acts (registry lock held): its
 * length, or SIZE_MAX. */
static size_t acting_name_copy(struct cth_thread *t, char *buf, size_t size)
{
    size_t len = SIZE_MAX;
    atomic_fetch_add(&t->name_readers, 1);
    const void *arg = atomic_load(&t->acting_for);
    if (arg) {
        size_t (*namer)(const void *, char *, size_t) = atomic_load(&acting_namer);
        len = namer(arg, buf, size);
    }
    atomic_fetch_sub(&t->name_readers, 1);
    return len;
}

size_t cth__thread_name_copy(const struct cth_thread *t, char *buf, size_t size)
{
    if (t->hidden && atomic_load_explicit(&t->acting_for, memory_order_relaxed)) {
        size_t len = acting_name_copy((struct cth_thread *)t, buf, size);
        if (len != SIZE_MAX)
            return len;
    }
    if (!t->name) {
        int len = snprintf(buf, size, "%s-%lu", t->name_prefix, t->name_number);
        return len < 0 ? 0 : (size_t)len;
    }
    size_t len = strlen(t->name);
    if (size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(buf, t->name, n);
        buf[n] = '\0';
    }
    return len;
}

/* ---- the current thread, its end, adoption ------------------------------------------ */

struct cth_thread *cth__self_or_null(void)
{
    if (cth__tls_current)
        return cth__tls_current;
    if (cth__is_main_thread())
        return cth__main_thread;
    return NULL;
}

/* The thread leaves the registry and is FINISHED; joiners and shutdown are
 * told. */
void cth__thread_finish(struct cth_thread *t)
{
    atomic_store_explicit(&t->end_cpu, cth__os_current_cpu(), memory_order_relaxed);
    pthread_mutex_lock(&cth__registry_lock);
    cth__registry_unlink(t);
    if (!t->daemon && t->kind == KIND_NORMAL)
        cth__shutdown_release();
    atomic_store(&t->state, CTH_THREAD_FINISHED);
    pthread_mutex_unlock(&cth__registry_lock);
    if (atomic_load(&t->join_waiters))
        cth__futex_wake(&t->state, INT_MAX);
}

/* ---- current thread, adoption, module-level calls ----------------------------------------- */

static void adopted_thread_exit(void *p)
{
    struct cth_thread *t = p;
    cth__thread_finish(t);
    cth__tls_current = NULL;
    cth__thread_unref(t);
}

CTH_API cth_thread_t *cth_current_thread(void)
{
    struct cth_thread *t = cth__self_or_null();
    if (t)
        return t;
    t = cth__calloc(1, sizeof *t);
    if (!t)
        return NULL;
    cth__thread_name_default(t, "Dummy");
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
    pthread_mutex_lock(&cth__registry_lock);
    cth__registry_link(t);
    pthread_mutex_unlock(&cth__registry_lock);
    cth__tls_current = t;
    return t;
}

CTH_API cth_thread_t *cth_main_thread(void)
{
    return cth__main_thread;
}

CTH_API size_t cth_enumerate(cth_thread_t **threads, size_t cap)
{
    if (!threads)
        cap = 0;
    pthread_mutex_lock(&cth__registry_lock);
    size_t i = 0, n = 0;
    for (struct cth__list_node *node = registry.first; node; node = node->next) {
        struct cth_thread *t = cth__list_entry(node, struct cth_thread, registry_link);
        if (t->hidden && !atomic_load(&t->acting))
            continue;
        if (i < cap)
            threads[i++] = cth_thread_ref(t);
        n++;
    }
    pthread_mutex_unlock(&cth__registry_lock);
    return n;
}

CTH_API size_t cth_active_count(void)
{
    pthread_mutex_lock(&cth__registry_lock);
    size_t n = (size_t)registry_count + (size_t)atomic_load(&acting_count);
    pthread_mutex_unlock(&cth__registry_lock);
    return n;
}

/* ---- identity -------------------------------------------------------------------------- */

/* A thread acting for another (see cth__thread_act_begin) shows the daemon
 * flag of the one it acts for. */
CTH_API bool cth_thread_daemon(const cth_thread_t *t)
{
    if (!t)
        return false;
    struct cth_thread *m = (struct cth_thread *)t;
    return atomic_load_explicit(&m->acting, memory_order_acquire)
               ? atomic_load_explicit(&m->acting_daemon, memory_order_relaxed)
               : t->daemon;
}

CTH_API long cth_thread_native_id(const cth_thread_t *t)
{
    if (!t)
        return 0;
    struct cth_thread *m = (struct cth_thread *)t;
    if (atomic_load(&m->state) == CTH_THREAD_INITIAL)
        return 0;
    /* Started: the thread publishes its id within microseconds, and wakes
     * the callers only if one has said it sleeps (2). */
    uint32_t ready = atomic_load(&m->native_ready);
    while (ready != 1) {
        if (ready == 2 || atomic_compare_exchange_strong(&m->native_ready, &ready, 2))
            cth__os_futex_wait(&m->native_ready, 2, CTH__NO_DEADLINE);
        ready = atomic_load(&m->native_ready);
    }
    return atomic_load(&m->native_id);
}

bool cth__inherited_daemon(void)
{
    if (tls_acting.active)
        return tls_acting.daemon;
    struct cth_thread *self = cth__self_or_null();
    return self ? self->daemon : true; /* a foreign thread counts as a daemon */
}

/* Under cth__registry_lock: 0, counting a non-daemon thread, or CTH_ESHUTDOWN
 * once shutdown has finished waiting (Python: "can't create new thread at
 * interpreter shutdown"). */
int cth__admit_locked(bool nondaemon)
{
    if (shutdown_finalized)
        return CTH_ESHUTDOWN;
    if (nondaemon)
        atomic_fetch_add(&nondaemon_alive, 1);
    return 0;
}

/* ---- shutdown ------------------------------------------------------------------------------- */

int cth__shutdown_admit(bool nondaemon)
{
    if (!nondaemon) /* nothing to count: whoever comes after the end sees it */
        return atomic_load_explicit(&shutdown_finalized, memory_order_acquire) ? CTH_ESHUTDOWN : 0;
    pthread_mutex_lock(&cth__registry_lock);
    int err = cth__admit_locked(nondaemon);
    pthread_mutex_unlock(&cth__registry_lock);
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
    pthread_mutex_lock(&cth__registry_lock);
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
    pthread_mutex_unlock(&cth__registry_lock);
    return err;
}

void cth__thread_set_acting_namer(size_t (*namer)(const void *name_arg, char *buf, size_t size))
{
    atomic_store(&acting_namer, namer);
}

/* Per call of a timer's function: a few atomic stores and no lock. Readers
 * of the name hold the registry lock and count themselves in name_readers:
 * once acting_for is cleared, act_end waits for those that may have read it
 * (a store and a load each way, sequentially consistent: one side sees the
 * other). */
void cth__thread_act_begin(const void *name_arg, bool daemon, bool counted)
{
    struct cth_thread *self = cth__tls_current;
    tls_acting.active = true;
    tls_acting.daemon = daemon;
    tls_acting.counted = counted;
    if (self && self->hidden) {
        atomic_store_explicit(&self->acting_daemon, daemon, memory_order_relaxed);
        atomic_store_explicit(&self->acting_for, name_arg, memory_order_release);
        atomic_store_explicit(&self->acting, true, memory_order_release);
        atomic_fetch_add_explicit(&acting_count, 1, memory_order_relaxed);
        tls_acting.listed = true;
    }
}

void cth__thread_act_end(void)
{
    if (tls_acting.listed) {
        struct cth_thread *self = cth__tls_current;
        atomic_fetch_sub_explicit(&acting_count, 1, memory_order_relaxed);
        atomic_store_explicit(&self->acting, false, memory_order_release);
        atomic_store(&self->acting_for, NULL);
        while (atomic_load(&self->name_readers))
            sched_yield(); /* one formats the name now: it holds no lock we need */
        if (atomic_exchange(&self->renamed_acting, false)) {
            /* The function renamed it: its own name comes back. */
            pthread_mutex_lock(&cth__registry_lock);
            char *borrowed = self->name;
            self->name = self->own_name;
            self->own_name = NULL;
            pthread_mutex_unlock(&cth__registry_lock);
            cth__free(borrowed);
        }
    }
    tls_acting.active = tls_acting.counted = tls_acting.listed = false;
}

/* Under cth__registry_lock: t is renamed; if it acts, its own name is kept
 * for the end of the act. Returns the name to free (NULL: none). */
char *cth__thread_rename_locked(struct cth_thread *t, char *name)
{
    char *old = t->name;
    t->name = name;
    if (atomic_load(&t->acting) && atomic_exchange(&t->acting_for, NULL)) {
        if (!t->own_name) {
            t->own_name = old; /* back at the end */
            old = NULL;
        }
        atomic_store(&t->renamed_acting, true);
    }
    return old == cth__main_name ? NULL : old;
}

void cth__thread_act_forget(void)
{
    struct cth_thread *self = cth__tls_current;
    if (self) {
        /* The child's main thread keeps the name it acted under (the runtime
         * set its flag). */
        const void *arg = atomic_exchange(&self->acting_for, NULL);
        char *name = NULL;
        if (arg) {
            size_t (*namer)(const void *, char *, size_t) = atomic_load(&acting_namer);
            size_t len = namer(arg, NULL, 0);
            if ((name = cth__malloc(len + 1)) != NULL)
                namer(arg, name, len + 1);
        }
        pthread_mutex_lock(&cth__registry_lock);
        if (name) {
            cth__free(self->name);
            self->name = name;
        }
        cth__free(self->own_name);
        self->own_name = NULL;
        pthread_mutex_unlock(&cth__registry_lock);
        atomic_store(&self->renamed_acting, false);
        atomic_store(&self->acting, false);
    }
    tls_acting.listed = false; /* the rest holds until the function returns */
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
    pthread_mutex_lock(&cth__registry_lock);
    bool first = !shutdown_begun;
    shutdown_begun = true;
    if (first && atomic_load(&cth__main_thread->state) != CTH_THREAD_FINISHED) {
        cth__registry_unlink(cth__main_thread);
        atomic_store(&cth__main_thread->state, CTH_THREAD_FINISHED);
    }
    pthread_mutex_unlock(&cth__registry_lock);
    if (first)
        cth__futex_wake(&cth__main_thread->state, INT_MAX);

    /* The caller's own share: itself, if a running non-daemon thread; the
     * thread it acts for, if counted. */
    struct cth_thread *self = cth__self_or_null();
    uint32_t own = (self && self->kind == KIND_NORMAL && !self->daemon &&
                    atomic_load(&self->state) == CTH_THREAD_RUNNING) +
                   tls_acting.counted;
    /* Admission and the last check are under the lock: nothing counted
     * slips in between the wait's end and the refusal of new threads. */
    struct hook *run = NULL;
    size_t nrun = 0;
    bool finalize = false, waited = false;
    while (!waited) {
        if ((err = wait_nondaemon(own, deadline)) != 0)
            return err;
        pthread_mutex_lock(&cth__registry_lock);
        waited = atomic_load(&nondaemon_alive) <= own;
        if (waited && !shutdown_finalized) {
            shutdown_finalized = finalize = true;
            run = finalizers;
            nrun = nfinalizers;
            finalizers = NULL;
            nfinalizers = 0;
        }
        pthread_mutex_unlock(&cth__registry_lock);
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
    case CTH_THREAD_STARTED: return "started";
    case CTH_THREAD_RUNNING: return "running";
    case CTH_THREAD_FINISHED: return "finished";
    default: return "initial";
    }
}

CTH_API int cth_dump_threads(FILE *out)
{
    if (!out)
        return CTH_EINVAL;
    pthread_mutex_lock(&cth__registry_lock);
    int n = 0;
    for (struct cth__list_node *node = registry.first; node; node = node->next) {
        struct cth_thread *t = cth__list_entry(node, struct cth_thread, registry_link);
        if (t->hidden && !atomic_load(&t->acting))
            continue;
        char buf[64]; /* the name is made now: it may be a default one */
        char *name = buf;
        size_t len = cth__thread_name_copy(t, buf, sizeof buf);
        if (len >= sizeof buf) {
            char *whole = cth__malloc(len + 1);
            if (whole) {
                cth__thread_name_copy(t, whole, len + 1);
                name = whole;
            }
        }
        fprintf(out, "%-24s ident=%#lx native_id=%ld%s %s\n", name, atomic_load(&t->ident),
                cth_thread_native_id(t), cth_thread_daemon(t) ? " daemon" : "", state_word(t));
        if (name != buf)
            cth__free(name);
        n++;
    }
    fprintf(out, "%d thread%s\n", n, n == 1 ? "" : "s");
    pthread_mutex_unlock(&cth__registry_lock);
    return 0;
}
