/* SPDX-License-Identifier: MIT */
/*
 * bench_locals.c - thread-local access and the once fast path.
 * local get and set: a __thread variable (the baseline, systems[0]) vs
 * cth_local_get/set vs pthread_getspecific/setspecific vs Python's
 * threading.local attribute (the model). once: pthread_once's fast path vs
 * cth_once_call's (both already done) vs Python's lazy-init check under a
 * lock. Nanoseconds per operation, lower is better: the rows give the
 * absolute time beside the ratio. Every get loop has the same shape: a call
 * per iteration whose value is summed (the sum goes to a volatile sink), and
 * a compiler barrier so that no load is hoisted out of the loop. The
 * baseline reads the __thread variable behind a function call of its own,
 * like the other systems; the inlined __thread read (one load, about a
 * cycle, whose ratio would swing with code generation) is a context row.
 * The set loops likewise (the __thread store behind a call); the once loops
 * keep the barrier alike.
 */
#include "bench.h"

#include <pthread.h>
#include <stdint.h>

#include <cthreading.h>

#define BARRIER() __asm__ __volatile__("" ::: "memory")

static __thread void *tls_var;
static pthread_key_t key;
static cth_local_t *local;
static volatile uintptr_t sink;
static long n_ops = 20000000;

/* The __thread variable behind a call, as the other systems' gets are: the
 * baseline of the same loop shape. */
__attribute__((noinline)) static void *tls_get(void)
{
    return tls_var;
}

static double get_thread_call(void *ctx)
{
    (void)ctx;
    uintptr_t s = 0;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        s += (uintptr_t)tls_get();
        BARRIER();
    }
    sink = s;
    return (bench_now() - t0) / n * 1e9;
}

static double get_thread(void *ctx)
{
    (void)ctx;
    uintptr_t s = 0;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        s += (uintptr_t)tls_var;
        BARRIER();
    }
    sink = s;
    return (bench_now() - t0) / n * 1e9;
}

static double get_pthread(void *ctx)
{
    (void)ctx;
    uintptr_t s = 0;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        s += (uintptr_t)pthread_getspecific(key);
        BARRIER();
    }
    sink = s;
    return (bench_now() - t0) / n * 1e9;
}

static double get_cth(void *ctx)
{
    (void)ctx;
    uintptr_t s = 0;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        s += (uintptr_t)cth_local_get(local);
        BARRIER();
    }
    sink = s;
    return (bench_now() - t0) / n * 1e9;
}

__attribute__((noinline)) static void tls_set(void *value)
{
    tls_var = value;
}

static double set_thread(void *ctx)
{
    (void)ctx;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        tls_set((void *)(uintptr_t)(i | 1));
        BARRIER();
    }
    return (bench_now() - t0) / n * 1e9;
}

static double set_pthread(void *ctx)
{
    (void)ctx;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pthread_setspecific(key, (void *)(uintptr_t)(i | 1));
        BARRIER();
    }
    return (bench_now() - t0) / n * 1e9;
}

static double set_cth(void *ctx)
{
    (void)ctx;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        cth_local_set(local, (void *)(uintptr_t)(i | 1));
        BARRIER();
    }
    return (bench_now() - t0) / n * 1e9;
}

static double py_get(void *ctx)
{
    (void)ctx;
    return bench_python("import threading, time\n"
                        "loc = threading.local(); loc.x = 1\n"
                        "n = 2000000\n"
                        "t0 = time.perf_counter()\n"
                        "for i in range(n): loc.x\n"
                        "t1 = time.perf_counter()\n"
                        "for i in range(n): pass\n"
                        "t2 = time.perf_counter()\n"
                        "print(max((t1 - t0) - (t2 - t1), 0) / n * 1e9)\n");
}

static double py_set(void *ctx)
{
    (void)ctx;
    return bench_python("import threading, time\n"
                        "loc = threading.local()\n"
                        "n = 2000000\n"
                        "t0 = time.perf_counter()\n"
                        "for i in range(n): loc.x = i\n"
                        "t1 = time.perf_counter()\n"
                        "for i in range(n): pass\n"
                        "t2 = time.perf_counter()\n"
                        "print(max((t1 - t0) - (t2 - t1), 0) / n * 1e9)\n");
}

static pthread_once_t ponce = PTHREAD_ONCE_INIT;
static cth_once_t conce = CTH_ONCE_INIT;
static void pinit(void)
{
}
static int cinit(void *arg)
{
    (void)arg;
    return 0;
}

static double once_pthread(void *ctx)
{
    (void)ctx;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pthread_once(&ponce, pinit);
        BARRIER();
    }
    return (bench_now() - t0) / n * 1e9;
}

static double once_cth(void *ctx)
{
    (void)ctx;
    long n = n_ops;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        cth_once_call(&conce, cinit, NULL);
        BARRIER();
    }
    return (bench_now() - t0) / n * 1e9;
}

static double once_python(void *ctx)
{
    (void)ctx;
    return bench_python("import threading, time\n"
                        "lock = threading.Lock(); obj = None\n"
                        "def get():\n"
                        "    global obj\n"
                        "    if obj is None:\n"
                        "        with lock:\n"
                        "            if obj is None: obj = object()\n"
                        "    return obj\n"
                        "n = 2000000\n"
                        "t0 = time.perf_counter()\n"
                        "for i in range(n): get()\n"
                        "print((time.perf_counter() - t0) / n * 1e9)\n");
}

int main(int argc, char **argv)
{
    bench_no_arguments(argc, argv);
    int reps = bench_reps();
    if (bench_quick())
        n_ops = 1000000;
    pthread_key_create(&key, NULL);
    pthread_setspecific(key, &key);
    cth_local_create(&local, NULL);
    cth_local_set(local, &key);
    tls_var = &key;

    bench_heading("Thread-locals: get (ns per op, lower is better)");
    struct bench_system get[] = {
        {"__thread, behind a call", get_thread_call, NULL},
        {"cth_local_get", get_cth, NULL},
        {"pthread_getspecific", get_pthread, NULL},
        {"__thread, inlined (one load)", get_thread, NULL},
        {"python threading.local", py_get, NULL},
    };
    bench_compare("local get", "latency", "ns", get, 5, reps, NULL);

    bench_heading("Thread-locals: set (ns per op, lower is better)");
    struct bench_system set[] = {
        {"__thread, behind a call", set_thread, NULL},
        {"cth_local_set", set_cth, NULL},
        {"pthread_setspecific", set_pthread, NULL},
        {"python threading.local", py_set, NULL},
    };
    bench_compare("local set", "latency", "ns", set, 4, reps, NULL);

    cth_once_call(&conce, cinit, NULL);
    pthread_once(&ponce, pinit);
    bench_heading("Once, fast path (done already; ns per call, lower is better)");
    struct bench_system once[] = {
        {"pthread_once", once_pthread, NULL},
        {"cth_once_call", once_cth, NULL},
        {"python lazy init (check, lock)", once_python, NULL},
    };
    bench_compare("once fast path", "latency", "ns", once, 3, reps, NULL);
    cth_local_set(local, NULL);
    cth_local_free(local);
    return 0;
}
