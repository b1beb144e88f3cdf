/* SPDX-License-Identifier: MIT */
/*
 * bench_locks.c - Lock, RLock, Condition, Event against pthreads, GLib and
 * Python's threading.Lock (docs/benchmarking.md: interleaved systems,
 * medians, ratios of medians). Families:
 * - uncontended acquire+release, twice: in a process that has only had one
 *   thread (where glibc's mutex skips its atomic instructions, and so does
 *   Lock), then with a second thread alive, as in any threaded program;
 * - contended, 2, 4 and 8 threads, critical sections of 0 (empty), 50 ns and
 *   1 us: the threads start together at a barrier, after all of them exist,
 *   and run for a 0.5 s window; rows give M ops per wall-clock second, M ops
 *   per CPU second of the threads (a spinning lock can win the wall clock
 *   while it burns the other cores), and the fairness, the fewest ops of a
 *   thread over the mean (1 = even). No clock is read inside the loop;
 * - lockskew (Go issue 13086): a thread sleeps 100 us between attempts while
 *   another holds the lock 100 us at a time; the longest and the p99 wait
 *   of the polite thread over 2 s windows. Beside pthread, the floor of
 *   any lock on the machine: a strictly first-come ticket lock whose waiter
 *   spins, so it neither starves nor sleeps, and waits out one hold at
 *   most; what it waits beyond that is time the machine took the polite
 *   thread's CPU away (kernel threads, the hypervisor);
 * - Condition ping-pong and Event set/wait round trips against a pthread
 *   cond; notify with no waiter; notify_all to 8 waiters until all are
 *   through (each measurement the median of 15 rounds).
 * `bench_locks [uncontended] [contended] [lockskew] [pingpong]` runs only
 * the families named; the windowed families run at most 7 repetitions
 * (about 65 s for contended, 45 s for lockskew). CTH_BENCH_QUICK=1 shrinks
 * the windows to 0.05 and 0.2 s.
 */
#include "bench.h"

#include <cthreading.h>
#include <pthread.h>
#include <stdatomic.h>
#ifdef HAVE_GLIB
#include <glib.h>
#endif

#define UNCONTENDED_OPS 2000000
#define MAX_THREADS 8

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

/* lockskew's floor: a ticket lock, served strictly in arrival order, its
 * waiters spinning (never asleep, so no wake-up to wait for). */
struct ticket_lock {
    atomic_uint next, serving;
};
static struct ticket_lock t_lock;

static void ticket_lock(void *l)
{
    struct ticket_lock *t = l;
    unsigned me = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
    while (atomic_load_explicit(&t->serving, memory_order_acquire) != me)
        ;
}
static void ticket_unlock(void *l)
{
    struct ticket_lock *t = l;
    unsigned s = atomic_load_explicit(&t->serving, memory_order_relaxed);
    atomic_store_explicit(&t->serving, s + 1, memory_order_release);
}
static struct lockops OPS_TICKET = {ticket_lock, ticket_unlock, &t_lock};

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

/* One contended run: the threads wait at a barrier, so that none starts
 * before the others exist and thread creation stays out of the window;
 * each counts its own operations and its own CPU time, and the wall time is
 * the span from the first start to the last stop. No clock is read in the
 * loop: with cs_iters = 0 the critical section is empty. */
struct contended {
    struct lockops *ops;
    int threads;
    unsigned cs_iters;
    pthread_barrier_t start;
    struct bench_span span;
    atomic_int stop;
    long ops_of[MAX_THREADS];
    double cpu_of[MAX_THREADS];
    /* per repetition: M ops per CPU second, fairness */
    double per_cpu[BENCH_MAX_REPS], fairness[BENCH_MAX_REPS];
    int runs;
};

struct worker {
    struct contended *c;
    int index;
};

static void *contended_worker(void *arg)
{
    struct worker *w = arg;
    struct contended *c = w->c;
    long n = 0;
    pthread_barrier_wait(&c->start);
    bench_span_mark(&c->span);
    double cpu0 = bench_thread_cpu();
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        c->ops->lock(c->ops->obj);
        spin_work(c->cs_iters);
        c->ops->unlock(c->ops->obj);
        n++;
    }
    c->cpu_of[w->index] = bench_thread_cpu() - cpu0;
    c->ops_of[w->index] = n;
    bench_span_mark(&c->span);
    return NULL;
}

static double contended_window = 0.5;

/* One window of contended ops: returns M ops per wall-clock second; the M
 * ops per CPU second of the threads and the fairness (the fewest ops of a
 * thread over the mean) go to c->per_cpu and c->fairness. */
static double run_contended(void *ctx)
{
    struct contended *c = ctx;
    pthread_t t[MAX_THREADS];
    struct worker w[MAX_THREADS];
    atomic_store(&c->stop, 0);
    bench_span_reset(&c->span);
    pthread_barrier_init(&c->start, NULL, (unsigned)c->threads + 1);
    for (int i = 0; i < c->threads; i++) {
        w[i] = (struct worker){c, i};
        pthread_create(&t[i], NULL, contended_worker, &w[i]);
    }
    pthread_barrier_wait(&c->start);
    struct timespec ts = {(time_t)contended_window,
                          (long)((contended_window - (double)(time_t)contended_window) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&c->stop, 1);
    for (int i = 0; i < c->threads; i++)
        pthread_join(t[i], NULL);
    double wall = bench_span_seconds(&c->span);
    pthread_barrier_destroy(&c->start);
    long total = 0, fewest = c->ops_of[0];
    double cpu = 0;
    for (int i = 0; i < c->threads; i++) {
        total += c->ops_of[i];
        cpu += c->cpu_of[i];
        if (c->ops_of[i] < fewest)
            fewest = c->ops_of[i];
    }
    if (c->runs < BENCH_MAX_REPS) {
        c->per_cpu[c->runs] = (double)total / cpu / 1e6;
        c->fairness[c->runs] = total ? (double)fewest * c->threads / (double)total : NAN;
        c->runs++;
    }
    return (double)total / wall / 1e6;
}

/* ---- lockskew --------------------------------------------------------------------------- */

#define SKEW_MAX_SAMPLES 200000

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The polite thread sleeps 100 us between attempts while a hog holds the
 * lock 100 us at a time; every wait of the window is kept, and each window
 * gives its longest wait (returned) and its p99 (to p99[]). */
struct skew {
    struct lockops *ops;
    atomic_int stop;
    double p99[BENCH_MAX_REPS];
    int runs;
};

static double skew_window = 2.0;

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
    static double waits[SKEW_MAX_SAMPLES];
    int n = 0;
    atomic_store(&s->stop, 0);
    pthread_t hog;
    pthread_create(&hog, NULL, skew_hog, s);
    double end = bench_now() + skew_window;
    while (bench_now() < end && n < SKEW_MAX_SAMPLES) {
        sleep_us(100);
        long long t0 = now_ns();
        s->ops->lock(s->ops->obj);
        long long w = now_ns() - t0;
        s->ops->unlock(s->ops->obj);
        waits[n++] = (double)w / 1e3;
    }
    atomic_store(&s->stop, 1);
    pthread_join(hog, NULL);
    if (s->runs < BENCH_MAX_REPS)
        s->p99[s->runs++] = bench_percentile(waits, n, 99);
    return bench_percentile(waits, n, 100);
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

/* One notify_all round: the time from the notify to the last waiter's
 * release, us. */
static double notify_all_round(int cth)
{
    struct na *n = &na_ctx;
    n->cth = cth;
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

/* The median of NA_ROUNDS rounds: one round's time moves by 3x with where
 * the scheduler puts 8 threads on the cores. */
#define NA_ROUNDS 15

static double run_notify_all(void *ctx)
{
    double t[NA_ROUNDS];
    int rounds = bench_quick() ? 3 : NA_ROUNDS;
    for (int r = 0; r < rounds; r++)
        t[r] = notify_all_round(ctx != NULL);
    return bench_median(t, rounds);
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
    char title[160];
    snprintf(title, sizeof title,
             "Locks: contended, %.2g s windows from a barrier: M ops per wall second, per CPU "
             "second, fairness (higher is better)",
             contended_window);
    bench_heading(title);
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
            bench_compare(name, "throughput", "Mops/s", sys, 2, reps, NULL);
            double base = bench_median(cp.per_cpu, cp.runs);
            bench_report(name, "throughput_per_cpu", "Mops/cpu-s", sys[0].name, cp.per_cpu, cp.runs,
                         base);
            bench_report(name, "throughput_per_cpu", "Mops/cpu-s", sys[1].name, cc.per_cpu, cc.runs,
                         base);
            base = bench_median(cp.fairness, cp.runs);
            bench_report(name, "fairness", "fraction", sys[0].name, cp.fairness, cp.runs, base);
            bench_report(name, "fairness", "fraction", sys[1].name, cc.fairness, cc.runs, base);
        }
    }
}

static void family_lockskew(int reps)
{
    char title[160];
    snprintf(title, sizeof title,
             "Locks: lockskew, wait of the polite thread over %.2g s windows, us (lower is better)",
             skew_window);
    bench_heading(title);
    static struct skew sp = {.ops = &OPS_PTH}, sc = {.ops = &OPS_CTH}, st = {.ops = &OPS_TICKET};
    sp.runs = sc.runs = st.runs = 0;
    struct bench_system skew[] = {
        {"pthread_mutex", run_skew, &sp},
        {"cthreading Lock", run_skew, &sc},
        {"floor: spinning FIFO ticket lock", run_skew, &st},
    };
    bench_compare("lockskew max wait", "max_wait", "us", skew, 3, reps, NULL);
    double base = bench_median(sp.p99, sp.runs);
    bench_report("lockskew p99 wait", "p99_wait", "us", skew[0].name, sp.p99, sp.runs, base);
    bench_report("lockskew p99 wait", "p99_wait", "us", skew[1].name, sc.p99, sc.runs, base);
    bench_report("lockskew p99 wait", "p99_wait", "us", skew[2].name, st.p99, st.runs, base);
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
    int windowed; /* long windows: at most 7 repetitions */
} families[] = {
    {"uncontended", family_uncontended, 0},
    {"contended", family_contended, 1},
    {"lockskew", family_lockskew, 1},
    {"pingpong", family_pingpong, 0},
};

int main(int argc, char **argv)
{
    int reps = bench_reps();
    if (bench_quick()) {
        contended_window = 0.05;
        skew_window = 0.2;
    }
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
            families[f].run(families[f].windowed && reps > 7 ? 7 : reps);
    }
    return 0;
}
