/* SPDX-License-Identifier: MIT */
/*
 * bench_threads.c - thread start+join latency: cthreading vs raw
 * pthread_create/pthread_join (the floor) vs Python's threading.Thread (the
 * model). Each measurement starts and joins 2000 empty threads (200 under
 * CTH_BENCH_QUICK=1) one after another and reports microseconds per
 * start+join.
 */
#include <pthread.h>

#include <cthreading.h>

#include "bench.h"

static int batch = 2000;

static void *empty(void *arg)
{
    return arg;
}

static double run_pthread(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    for (int i = 0; i < batch; i++) {
        pthread_t t;
        pthread_create(&t, NULL, empty, NULL);
        pthread_join(t, NULL);
    }
    return (bench_now() - t0) / batch * 1e6;
}

static double run_cthreading(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    for (int i = 0; i < batch; i++) {
        cth_thread_t *t;
        cth_thread_create(&t, empty, NULL, NULL);
        cth_thread_start(t);
        cth_thread_join(t, NULL, CTH_FOREVER);
        cth_thread_free(t);
    }
    return (bench_now() - t0) / batch * 1e6;
}

static double run_python(void *ctx)
{
    (void)ctx;
    return bench_python("import threading, time\n"
                        "def f(): pass\n"
                        "n = 2000\n"
                        "t0 = time.perf_counter()\n"
                        "for i in range(n):\n"
                        "    t = threading.Thread(target=f); t.start(); t.join()\n"
                        "print((time.perf_counter() - t0) / n * 1e6)\n");
}

int main(int argc, char **argv)
{
    bench_no_arguments(argc, argv);
    int reps = bench_reps();
    if (bench_quick())
        batch = 200;
    bench_heading("Threads: start+join of an empty thread (lower is better)");
    struct bench_system sys[] = {
        {"pthread_create+join", run_pthread, NULL},
        {"cthreading", run_cthreading, NULL},
        {"python threading.Thread", run_python, NULL},
    };
    bench_compare("thread start+join", "latency", "us", sys, 3, reps, NULL);
    return 0;
}
