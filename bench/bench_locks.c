/* SPDX-License-Identifier: MIT */
/*
 * bench_locks.c - Lock, RLock, Condition, Event against pthreads, GLib and
 * Python's threading.Lock (docs/benchmarking.md: interleaved systems,
 * median ratios). Families: uncontended acquire+release; contended
 * throughput per CPU second at 2, 4 and 8 threads with critical sections of
 * ~0, 50 ns and 1 us (and the longest wait any thread saw); lockskew (Go
 * issue 13086: the worst wait of a thread that sleeps 100 us between
 * attempts while another holds the lock 100 us at a time); Condition
 * ping-pong and Event set/wait round trips against a pthread cond; notify
 * with no waiter; notify_all to 8 waiters until all are through.
 * The uncontended rows run twice: in a process that has only had one thread
 * (where glibc's mutex skips its atomic instructions, and so does Lock),
 * then with a second thread alive, as in any threaded program.
 * `bench_locks [uncontended] [contended] [lockskew] [pingpong]` runs only
 * the families named; about 25 s for all of them at the default 11 reps.
 */
#include "bench.h"

#include <cthreading.h>
#include <pthread.h>
#include <stdatomic.h>
#ifdef HAVE_GLIB
#include <glib.h>
#endif

#define UNCONTENDED_OPS 2000000

/* A lock under test: lock/unlock over an opaque object. */
struct lockops {
    void (*lock)(void *);
    void (*unlock)(void *);
    void *obj;
};

static cth_lock_t c_lock;
static cth_rlock_t c_rlock;
static pthread_mutex_t p_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t p_rmutex;

static void c_lock_lock(void *l)
{
    cth_lock_acquire(l, CTH_FOREVER);
}
static void c_lock_unlock(void *l)
{
    cth_lock_release(l);
}
static void p_lock(void *l)
{
    pthread_mutex_lock(l);
}
static void p_unlock(void *l)
{
    pthread_mutex_unlock(l);
}
#ifdef HAVE_GLIB
static GMutex g_mutex;
#endif

static struct lockops OPS_CTH = {c_lock_lock, c_lock_unlock, &c_lock};
static struct lockops OPS_PTH = {p_lock, p_unlock, &p_mutex};

/* Uncontended: ns per acquire+release, the calls inlined where possible. */
static double run_unc_cth(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    for (int i = 0; i < UNCONTENDED_OPS; i++) {
        cth_lock_acquire(&c_lock, CTH_FOREVER);
        cth_lock_release(&c_lock);
    }
    return (bench_now() - t0) / UNCONTENDED_OPS * 1e9;
}

static double run_unc_rcth(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    for (int i = 0; i < UNCONTENDED_OPS; i++) {
        cth_rlock_acquire(&c_rlock, CTH_FOREVER);
        cth_rlock_release(&c_rlock);
    }
    return (bench_now() - t0) / UNCONTENDED_OPS * 1e9;
}

static double run_unc_pth(void *ctx)
{
    pthread_mutex_t *m = ctx;
    double t0 = bench_now();
    for (int i = 0; i < UNCONTENDED_OPS; i++) {
        pthread_mutex_lock(m);
        pthread_mutex_unlock(m);
    }
    return (bench_now() - t0) / UNCONTENDED_OPS * 1e9;
}

#ifdef HAVE_GLIB
static double run_unc_glib(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    for (int i = 0; i < UNCONTENDED_OPS; i++) {
        g_mutex_lock(&g_mutex);
        g_mutex_unlock(&g_mutex);
    }
    return (bench_now() - t0) / UNCONTENDED_OPS * 1e9;
}
#endif

static double run_py_lock(void *ctx)
{
    (void)ctx;
    return bench_python("import threading, time\n"
                        "l = threading.Lock(); a = l.acquire; r = l.release\n"
                        "n = 1000000\n"
                        "t0 = time.perf_counter()\n"
                        "for i in range(n):\n"
                        "    a(); r()\n"
                        "print((time.perf_counter() - t0) / n * 1e9)\n");
}

/* ---- contended throughput ------------------------------------------------------------ */

static volatile unsigned sink;
static unsigned spin_per_ns_x100; /* iterations of spin_work per 100 ns */

static void spin_work(unsigned iters)
{
    for (unsigned i = 0; i < iters; i++)
        sink = sink + i;
}

static void calibrate(void)
{
    unsigned n = 10000000;
    double t0 = bench_now();
    spin_work(n);
    double ns = (bench_now() - t0) * 1e9;
    spin_per_ns_x100 = (unsigned)(100.0 * n / ns);
    if (spin_per_ns_x100 < 1)
        spin_per_ns_x100 = 1;
}

struct contended {
    struct lockops *ops;
    int threads;
    unsigned cs_iters;
    atomic_int stop;
    atomic_long ops_done;
    atomic_llong max_wait_ns;
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *contended_worker(void *arg)
{
    struct contended *c = arg;
    long n = 0;
    long long worst = 0;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        long long t0 = now_ns();
        c->ops->lock(c->ops->obj);
        long long w = now_ns() - t0;
        spin_work(c->cs_iters);
        c->ops->unlock(c->ops->obj);
        if (w > worst)
            worst = w;
        n++;
    }
    atomic_fetch_add(&c->ops_done, n);
    long long m = atomic_load(&c->max_wait_ns);
    while (worst > m && !atomic_compare_exchange_weak(&c->max_wait_ns, &m, worst))
        ;
    return NULL;
}

static double bench_window = 0.05;

/* One window of contended ops: returns M ops per CPU second; the longest
 * wait goes to c->max_wait_ns. */
static double run_contended(void *ctx)
{
    struct contended *c = ctx;
    pthread_t t[8];
    atomic_store(&c->stop, 0);
    atomic_store(&c->ops_done, 0);
    double cpu0 = bench_cpu();
    for (int i = 0; i < c->threads; i++)
        pthread_create(&t[i], NULL, contended_worker, c);
    struct timespec ts = {0, (long)(bench_window * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&c->stop, 1);
    for (int i = 0; i < c->threads; i++)
        pthread_join(t[i], NULL);
    double cpu = bench_cpu() - cpu0;
    return (double)atomic_load(&c->ops_done) / cpu / 1e6;
}

/* ---- lockskew --------------------------------------------------------------------------- */

struct skew {
    struct lockops *ops;
    atomic_int stop;
    long long worst_ns;
};

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void *skew_hog(void *arg)
{
    struct skew *s = arg;
    while (!atomic_load(&s->stop)) {
        s->ops->lock(s->ops->obj);
        long long t0 = now_ns();
        while (now_ns() - t0 < 100000)
            ;
        s->ops->unlock(s->ops->obj);
    }
    return NULL;
}

static double run_skew(void *ctx)
{
    struct skew *s = ctx;
    atomic_store(&s->stop, 0);
    pthread_t hog;
    pthread_create(&hog, NULL, skew_hog, s);
    long long worst = 0;
    double end = bench_now() + 0.1;
    while (bench_now() < end) {
        sleep_us(100);
        long long t0 = now_ns();
        s->ops->lock(s->ops->obj);
        long long w = now_ns() - t0;
        s->ops->unlock(s->ops->obj);
        if (w > worst)
            worst = w;
    }
    atomic_store(&s->stop, 1);
    pthread_join(hog, NULL);
    return (double)worst / 1e3;
}

/* ---- ping-pong ----------------------------------------------------------------------------- */

#define ROUNDS 2000

static pthread_mutex_t pp_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_c = PTHREAD_COND_INITIALIZER;
static int pp_turn;
static cth_lock_t cpp_l;
static cth_cond_t cpp_c = CTH_COND_INIT_LOCK(&cpp_l);
static cth_event_t ev_ping, ev_pong;

static void *pth_ponger(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&pp_m);
        while (pp_turn != 1)
            pthread_cond_wait(&pp_c, &pp_m);
        pp_turn = 0;
        pthread_cond_signal(&pp_c);
        pthread_mutex_unlock(&pp_m);
    }
    return NULL;
}

static double run_pp_pth(void *ctx)
{
    (void)ctx;
    pthread_t t;
    pp_turn = 0;
    pthread_create(&t, NULL, pth_ponger, NULL);
    double t0 = bench_now();
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&pp_m);
        pp_turn = 1;
        pthread_cond_signal(&pp_c);
        while (pp_turn != 0)
            pthread_cond_wait(&pp_c, &pp_m);
        pthread_mutex_unlock(&pp_m);
    }
    double dt = bench_now() - t0;
    pthread_join(t, NULL);
    return dt / ROUNDS * 1e6;
}

static void *cth_ponger(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        cth_cond_acquire(&cpp_c, CTH_FOREVER);
        while (pp_turn != 1)
            cth_cond_wait(&cpp_c, CTH_FOREVER);
        pp_turn = 0;
        cth_cond_notify(&cpp_c, 1);
        cth_cond_release(&cpp_c);
    }
    return NULL;
}

static double run_pp_cth(void *ctx)
{
    (void)ctx;
    pthread_t t;
    pp_turn = 0;
    pthread_create(&t, NULL, cth_ponger, NULL);
    double t0 = bench_now();
    for (int i = 0; i < ROUNDS; i++) {
        cth_cond_acquire(&cpp_c, CTH_FOREVER);
        pp_turn = 1;
        cth_cond_notify(&cpp_c, 1);
        while (pp_turn != 0)
            cth_cond_wait(&cpp_c, CTH_FOREVER);
        cth_cond_release(&cpp_c);
    }
    double dt = bench_now() - t0;
    pthread_join(t, NULL);
    return dt / ROUNDS * 1e6;
}

static void *ev_ponger(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        cth_event_wait(&ev_ping, CTH_FOREVER);
        cth_event_clear(&ev_ping);
        cth_event_set(&ev_pong);
    }
    return NULL;
}

static double run_pp_event(void *ctx)
{
    (void)ctx;
    pthread_t t;
    pthread_create(&t, NULL, ev_ponger, NULL);
    double t0 = bench_now();
    for (int i = 0; i < ROUNDS; i++) {
        cth_event_set(&ev_ping);
        cth_event_wait(&ev_pong, CTH_FOREVER);
        cth_event_clear(&ev_pong);
    }
    double dt = bench_now() - t0;
    pthread_join(t, NULL);
    return dt / ROUNDS * 1e6;
}

static double run_notify_empty(void *ctx)
{
    (void)ctx;
    cth_cond_acquire(&cpp_c, CTH_FOREVER);
    double t0 = bench_now();
    for (int i = 0; i < UNCONTENDED_OPS; i++)
        cth_cond_notify(&cpp_c, 1);
    double dt = bench_now() - t0;
    cth_cond_release(&cpp_c);
    return dt / UNCONTENDED_OPS * 1e9;
}

static double run_signal_empty(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&pp_m);
    double t0 = bench_now();
    for (int i = 0; i < UNCONTENDED_OPS; i++)
        pthread_cond_signal(&pp_c);
    double dt = bench_now() - t0;
    pthread_mutex_unlock(&pp_m);
    return dt / UNCONTENDED_OPS * 1e9;
}

/* ---- notify_all ------------------------------------------------------------------------- */

/* notify_all to 8 sleeping waiters, each of which then takes the lock and
 * runs a 1 us critical section: the time until the last is through (us).
 * Waking all at once makes them collide on the lock; a requeue or a chain
 * of single wake-ups does not. */
#define NA_WAITERS 8

struct na {
    int cth; /* 1: cthreading Condition over a Lock, 0: pthread */
    int waiting, go;
    double done_at; /* the last critical section's end, under the lock */
};
static struct na na_ctx;
static cth_lock_t na_lock;
static cth_cond_t na_cond = CTH_COND_INIT_LOCK(&na_lock);
static pthread_mutex_t na_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t na_c = PTHREAD_COND_INITIALIZER;

static void *na_waiter(void *arg)
{
    struct na *n = arg;
    if (n->cth) {
        cth_lock_acquire(&na_lock, CTH_FOREVER);
        n->waiting++;
        while (!n->go)
            cth_cond_wait(&na_cond, CTH_FOREVER);
        spin_work(1000 * spin_per_ns_x100 / 100);
        n->done_at = bench_now();
        cth_lock_release(&na_lock);
    } else {
        pthread_mutex_lock(&na_m);
        n->waiting++;
        while (!n->go)
            pthread_cond_wait(&na_c, &na_m);
        spin_work(1000 * spin_per_ns_x100 / 100);
        n->done_at = bench_now();
        pthread_mutex_unlock(&na_m);
    }
    return NULL;
}

static double run_notify_all(void *ctx)
{
    struct na *n = &na_ctx;
    n->cth = ctx != NULL;
    n->waiting = n->go = 0;
    pthread_t t[NA_WAITERS];
    for (int i = 0; i < NA_WAITERS; i++)
        pthread_create(&t[i], NULL, na_waiter, n);
    for (int ready = 0; ready < NA_WAITERS;) {
        sleep_us(1000);
        if (n->cth) {
            cth_lock_acquire(&na_lock, CTH_FOREVER);
            ready = n->waiting;
            cth_lock_release(&na_lock);
        } else {
            pthread_mutex_lock(&na_m);
            ready = n->waiting;
            pthread_mutex_unlock(&na_m);
        }
    }
    sleep_us(2000); /* let the last ones fall asleep */
    double t0 = bench_now();
    if (n->cth) {
        cth_lock_acquire(&na_lock, CTH_FOREVER);
        n->go = 1;
        cth_cond_notify_all(&na_cond);
        cth_lock_release(&na_lock);
    } else {
        pthread_mutex_lock(&na_m);
        n->go = 1;
        pthread_cond_broadcast(&na_c);
        pthread_mutex_unlock(&na_m);
    }
    for (int i = 0; i < NA_WAITERS; i++)
        pthread_join(t[i], NULL);
    return (n->done_at - t0) * 1e6;
}

/* An idle thread that keeps the process multi-threaded while it lives. */
static pthread_mutex_t idle_gate = PTHREAD_MUTEX_INITIALIZER;
static void *idle_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&idle_gate);
    pthread_mutex_unlock(&idle_gate);
    return NULL;
}

/* Uncontended rows, twice: first in a process that has only ever had one
 * thread, where glibc's mutex (and cthreading's Lock) skip the atomic
 * instructions, then with a second thread alive, the case of any threaded
 * program. */
static void family_uncontended(int reps)
{
    static const char *when[] = {"lock uncontended", "lock uncontended, 2 threads alive"};
    static const char *rwhen[] = {"rlock uncontended", "rlock uncontended, 2 threads alive"};
    pthread_t idle;
    bench_heading("Locks: uncontended acquire+release, ns (lower is better)");
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            pthread_mutex_lock(&idle_gate);
            pthread_create(&idle, NULL, idle_thread, NULL);
        }
        struct bench_system unc[] = {
            {"pthread_mutex", run_unc_pth, &p_mutex},
            {"cthreading Lock", run_unc_cth, NULL},
#ifdef HAVE_GLIB
            {"GLib GMutex (context)", run_unc_glib, NULL},
#endif
            {"python threading.Lock", run_py_lock, NULL},
        };
        /* Python's number does not depend on our threads: measure it once. */
        int n = (int)(sizeof unc / sizeof unc[0]) - pass;
        bench_compare(when[pass], "latency", "ns", unc, n, reps, NULL);
        struct bench_system runc[] = {
            {"pthread_mutex recursive", run_unc_pth, &p_rmutex},
            {"cthreading RLock", run_unc_rcth, NULL},
        };
        bench_compare(rwhen[pass], "latency", "ns", runc, 2, reps, NULL);
    }
    pthread_mutex_unlock(&idle_gate);
    pthread_join(idle, NULL);
}

static void family_contended(int reps)
{
    bench_heading("Locks: contended, M ops per CPU second (higher is better)");
    static const int nthreads[] = {2, 4, 8};
    static const unsigned cs_ns[] = {0, 50, 1000};
    for (int ci = 0; ci < 3; ci++) {
        for (int ti = 0; ti < 3; ti++) {
            unsigned iters = cs_ns[ci] * spin_per_ns_x100 / 100;
            static struct contended cp, cc;
            cp = (struct contended){.ops = &OPS_PTH, .threads = nthreads[ti], .cs_iters = iters};
            cc = (struct contended){.ops = &OPS_CTH, .threads = nthreads[ti], .cs_iters = iters};
            struct bench_system sys[] = {
                {"pthread_mutex", run_contended, &cp},
                {"cthreading Lock", run_contended, &cc},
            };
            char name[64];
            snprintf(name, sizeof name, "lock contended %dT cs=%uns", nthreads[ti], cs_ns[ci]);
            bench_compare(name, "throughput_per_cpu", "Mops/cpu-s", sys, 2, reps, NULL);
            printf("  %-34s longest wait: pthread %.0f us, cthreading %.0f us\n", "",
                   (double)atomic_load(&cp.max_wait_ns) / 1e3,
                   (double)atomic_load(&cc.max_wait_ns) / 1e3);
            bench_record(name, "pthread_mutex", "max_wait", (double)cp.max_wait_ns / 1e3, "us",
                         NAN);
            bench_record(name, "cthreading Lock", "max_wait", (double)cc.max_wait_ns / 1e3, "us",
                         NAN);
        }
    }
}

static void family_lockskew(int reps)
{
    bench_heading("Locks: lockskew, worst wait of the polite thread, us (lower is better)");
    static struct skew sp = {.ops = &OPS_PTH}, sc = {.ops = &OPS_CTH};
    struct bench_system skew[] = {
        {"pthread_mutex", run_skew, &sp},
        {"cthreading Lock", run_skew, &sc},
    };
    bench_compare("lockskew", "worst_wait", "us", skew, 2, reps, NULL);
}

static void family_pingpong(int reps)
{
    bench_heading("Conditions and events: round trip between two threads, us (lower is better)");
    struct bench_system pp[] = {
        {"pthread mutex+cond", run_pp_pth, NULL},
        {"cthreading Condition", run_pp_cth, NULL},
        {"cthreading Event pair", run_pp_event, NULL},
    };
    bench_compare("ping-pong", "round_trip", "us", pp, 3, reps, NULL);
    struct bench_system ne[] = {
        {"pthread_cond_signal", run_signal_empty, NULL},
        {"cthreading notify", run_notify_empty, NULL},
    };
    bench_compare("notify, no waiter", "latency", "ns", ne, 2, reps, NULL);
    struct bench_system na[] = {
        {"pthread_cond_broadcast", run_notify_all, NULL},
        {"cthreading notify_all", run_notify_all, &na_ctx},
    };
    bench_compare("notify_all, 8 waiters, 1 us each", "all_through", "us", na, 2, reps, NULL);
}

/* The families, run in this order; `bench_locks NAME...` runs only those. */
static const struct {
    const char *name;
    void (*run)(int reps);
} families[] = {
    {"uncontended", family_uncontended},
    {"contended", family_contended},
    {"lockskew", family_lockskew},
    {"pingpong", family_pingpong},
};

int main(int argc, char **argv)
{
    int reps = bench_reps();
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&p_rmutex, &attr);
    calibrate();
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        int wanted = argc < 2;
        for (int i = 1; i < argc; i++)
            wanted |= strcmp(argv[i], families[f].name) == 0;
        if (wanted)
            families[f].run(reps);
    }
    return 0;
}
