/* SPDX-License-Identifier: MIT */
/*
 * bench_pool.c - the thread pool against its peers, in one run:
 * - map of 1,000,000 trivial items: cthreading map (Python's default
 *   chunksize) and parallel-for vs OpenMP `parallel for` calling the same
 *   function (the floor) vs GLib GThreadPool and libuv uv_queue_work fed one
 *   item at a time vs Python's multiprocessing.dummy.Pool.map;
 * - map of 10,000 items of ~50 us of work: the same peers, and the
 *   efficiency on the machine's cores (serial time / (cores x time));
 * - apply_async round trip (submit, then get) median and p99, and the
 *   pipelined cost per task, vs GThreadPool;
 * - the CPU an idle pool burns (measured first, before the peers start
 *   threads of their own).
 * GLib, libuv and OpenMP have other semantics (no results, no errors): they
 * are context and ceiling numbers.
 */
#include "bench.h" /* first: it sets _GNU_SOURCE */

#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include <cthreading.h>

#ifdef HAVE_OPENMP
#include <omp.h>
#endif
#ifdef HAVE_GLIB
#include <glib.h>
#endif
#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#define TRIVIAL_N 1000000
#define WORK_N 10000
#define WORK_US 50.0

static int ncpu;
static void **items, **results;
static cth_pool_t *pool;
static double spin_per_us; /* loop iterations per microsecond */

static int trivial(void *arg, void **result)
{
    *result = (void *)((uintptr_t)arg * 2 + 1);
    return 0;
}

static void spin_work(double us)
{
    volatile double x = 1.0;
    long n = (long)(us * spin_per_us);
    for (long i = 0; i < n; i++)
        x = x * 1.0000001 + 0.0000001;
}

static int work50(void *arg, void **result)
{
    spin_work(WORK_US);
    *result = arg;
    return 0;
}

/* Called through a pointer everywhere, so every system does the same. */
static int (*volatile task_fn)(void *, void **);

static int for_body(void *arg, size_t i)
{
    (void)arg;
    return task_fn(items[i], &results[i]);
}

static void calibrate(void)
{
    long n = 2000000;
    volatile double x = 1.0;
    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        x = x * 1.0000001 + 0.0000001;
    spin_per_us = (double)n / ((bench_now() - t0) * 1e6);
}

/* ---- systems: map of n items of task_fn; milliseconds per map ----------- */

static size_t map_n;

static double run_cth_map(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    cth_pool_map(pool, task_fn, items, map_n, 0, results);
    return (bench_now() - t0) * 1e3;
}

static double run_cth_for(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    cth_pool_parallel_for(pool, for_body, NULL, map_n);
    return (bench_now() - t0) * 1e3;
}

static double run_serial(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    for (size_t i = 0; i < map_n; i++)
        task_fn(items[i], &results[i]);
    return (bench_now() - t0) * 1e3;
}

static double run_omp(void *ctx)
{
    (void)ctx;
#ifdef HAVE_OPENMP
    double t0 = bench_now();
    long n = (long)map_n;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++)
        task_fn(items[i], &results[i]);
    return (bench_now() - t0) * 1e3;
#else
    return NAN;
#endif
}

#ifdef HAVE_GLIB
static atomic_long glib_done;
static void glib_task(gpointer data, gpointer user)
{
    (void)user;
    size_t i = (size_t)(uintptr_t)data - 1;
    task_fn(items[i], &results[i]);
}
#endif

static double run_glib(void *ctx)
{
    (void)ctx;
#ifdef HAVE_GLIB
    double t0 = bench_now();
    GThreadPool *gp = g_thread_pool_new(glib_task, NULL, ncpu, FALSE, NULL);
    for (size_t i = 0; i < map_n; i++)
        g_thread_pool_push(gp, (gpointer)(uintptr_t)(i + 1), NULL);
    g_thread_pool_free(gp, FALSE, TRUE);
    return (bench_now() - t0) * 1e3;
#else
    return NAN;
#endif
}

#ifdef HAVE_LIBUV
static uv_work_t *uv_reqs;
static void uv_task(uv_work_t *req)
{
    size_t i = (size_t)(req - uv_reqs);
    task_fn(items[i], &results[i]);
}
static void uv_after(uv_work_t *req, int status)
{
    (void)req;
    (void)status;
}
#endif

static double run_uv(void *ctx)
{
    (void)ctx;
#ifdef HAVE_LIBUV
    double t0 = bench_now();
    uv_loop_t *loop = uv_default_loop();
    for (size_t i = 0; i < map_n; i++)
        uv_queue_work(loop, &uv_reqs[i], uv_task, uv_after);
    uv_run(loop, UV_RUN_DEFAULT);
    return (bench_now() - t0) * 1e3;
#else
    return NAN;
#endif
}

static double run_py_trivial(void *ctx)
{
    (void)ctx;
    return bench_python("import time\n"
                        "from multiprocessing.dummy import Pool\n"
                        "def f(x): return x * 2 + 1\n"
                        "p = Pool()\n"
                        "xs = list(range(1000000))\n"
                        "t0 = time.perf_counter(); p.map(f, xs)\n"
                        "print((time.perf_counter() - t0) * 1e3)\n");
}

static double run_py_work(void *ctx)
{
    (void)ctx;
    return bench_python("import time\n"
                        "from multiprocessing.dummy import Pool\n"
                        "def spin(us):\n"
                        "    end = time.perf_counter() + us / 1e6\n"
                        "    while time.perf_counter() < end: pass\n"
                        "def f(x): spin(50); return x\n"
                        "p = Pool()\n"
                        "xs = list(range(10000))\n"
                        "t0 = time.perf_counter(); p.map(f, xs)\n"
                        "print((time.perf_counter() - t0) * 1e3)\n");
}

/* ---- apply_async --------------------------------------------------------- */

static int empty_task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

#define RT_SAMPLES 2000
#define PIPE_N 200000

static double rt_p99[2];

static double run_cth_rt(void *ctx)
{
    (void)ctx;
    static double s[RT_SAMPLES];
    for (int i = 0; i < RT_SAMPLES; i++) {
        double t0 = bench_now();
        cth_result_t *r;
        cth_pool_apply_async(pool, empty_task, NULL, NULL, &r);
        cth_result_get(r, NULL, CTH_FOREVER);
        s[i] = (bench_now() - t0) * 1e6;
        cth_result_free(r);
    }
    rt_p99[0] = bench_percentile(s, RT_SAMPLES, 99);
    return bench_median(s, RT_SAMPLES);
}

#ifdef HAVE_GLIB
static GMutex rt_mutex;
static GCond rt_cond;
static int rt_flag;
static void glib_rt_task(gpointer data, gpointer user)
{
    (void)data;
    (void)user;
    g_mutex_lock(&rt_mutex);
    rt_flag = 1;
    g_cond_signal(&rt_cond);
    g_mutex_unlock(&rt_mutex);
}
#endif

static double run_glib_rt(void *ctx)
{
    (void)ctx;
#ifdef HAVE_GLIB
    static double s[RT_SAMPLES];
    GThreadPool *gp = g_thread_pool_new(glib_rt_task, NULL, ncpu, FALSE, NULL);
    for (int i = 0; i < RT_SAMPLES; i++) {
        double t0 = bench_now();
        g_mutex_lock(&rt_mutex);
        rt_flag = 0;
        g_thread_pool_push(gp, (gpointer)1, NULL);
        while (!rt_flag)
            g_cond_wait(&rt_cond, &rt_mutex);
        g_mutex_unlock(&rt_mutex);
        s[i] = (bench_now() - t0) * 1e6;
    }
    g_thread_pool_free(gp, FALSE, TRUE);
    rt_p99[1] = bench_percentile(s, RT_SAMPLES, 99);
    return bench_median(s, RT_SAMPLES);
#else
    return NAN;
#endif
}

static double run_cth_pipe(void *ctx)
{
    (void)ctx;
    static cth_result_t *r[PIPE_N];
    double t0 = bench_now();
    for (int i = 0; i < PIPE_N; i++)
        cth_pool_apply_async(pool, empty_task, NULL, NULL, &r[i]);
    for (int i = 0; i < PIPE_N; i++) {
        cth_result_get(r[i], NULL, CTH_FOREVER);
        cth_result_free(r[i]);
    }
    return (bench_now() - t0) / PIPE_N * 1e6;
}

#ifdef HAVE_GLIB
static void glib_empty(gpointer data, gpointer user)
{
    (void)data;
    (void)user;
}
#endif

static double run_glib_pipe(void *ctx)
{
    (void)ctx;
#ifdef HAVE_GLIB
    GThreadPool *gp = g_thread_pool_new(glib_empty, NULL, ncpu, FALSE, NULL);
    double t0 = bench_now();
    for (int i = 0; i < PIPE_N; i++)
        g_thread_pool_push(gp, (gpointer)1, NULL);
    g_thread_pool_free(gp, FALSE, TRUE);
    return (bench_now() - t0) / PIPE_N * 1e6;
#else
    return NAN;
#endif
}

int main(void)
{
    int reps = bench_reps();
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    setenv("UV_THREADPOOL_SIZE", ncpu == 1 ? "1" : "2", 0);
    calibrate();
    items = malloc(TRIVIAL_N * sizeof *items);
    results = malloc(TRIVIAL_N * sizeof *results);
    for (size_t i = 0; i < TRIVIAL_N; i++)
        items[i] = (void *)(uintptr_t)i;
#ifdef HAVE_LIBUV
    uv_reqs = calloc(TRIVIAL_N, sizeof *uv_reqs);
#endif
#ifdef HAVE_OPENMP
    omp_set_num_threads(ncpu);
#endif
    /* the same 0.5 s window with no pool: what the sleeping main thread and
     * the accounting cost on their own */
    double b0 = bench_cpu();
    cth_sleep(0.5);
    double no_pool = bench_cpu() - b0;
    cth_pool_create(&pool, NULL);

    /* An idle pool, measured first, while the process has no other threads
     * (OpenMP, GLib and libuv keep theirs): the CPU the whole process burns
     * over 0.5 s once a map has finished and the spin window (~40 us) is
     * over. Every thread but the workers sleeps. */
    task_fn = trivial;
    cth_pool_map(pool, task_fn, items, TRIVIAL_N, 0, results);
    cth_sleep(0.05);
    double c0 = bench_cpu();
    cth_sleep(0.5);
    double idle = bench_cpu() - c0;
    bench_heading("Pool: an idle pool after work (lower is better)");
    printf("  idle pool of %d workers: %.3f ms CPU in 0.5 s (no pool: %.3f ms)\n", ncpu, idle * 1e3,
           no_pool * 1e3);
    bench_record("idle pool", "no pool (baseline)", "cpu", no_pool * 1e3, "ms per 0.5 s", NAN);
    bench_record("idle pool", "cthreading", "cpu", idle * 1e3, "ms per 0.5 s", NAN);

    char title[160];
    snprintf(title, sizeof title,
             "Pool: map of 1,000,000 trivial items, %d workers, ms per map (lower is better)",
             ncpu);
    bench_heading(title);
    task_fn = trivial;
    map_n = TRIVIAL_N;
    struct bench_system triv[] = {
        {"openmp parallel for (floor)", run_omp, NULL},
        {"cthreading map", run_cth_map, NULL},
        {"cthreading parallel_for", run_cth_for, NULL},
        {"glib GThreadPool, 1 item/push", run_glib, NULL},
        {"libuv uv_queue_work, 1 item", run_uv, NULL},
        {"python Pool.map", run_py_trivial, NULL},
    };
    bench_compare("map 1M trivial", "time", "ms", triv, 6, reps < 5 ? reps : 5, NULL);

    snprintf(title, sizeof title,
             "Pool: map of 10,000 items of ~50 us, ms per map (lower is better)");
    bench_heading(title);
    task_fn = work50;
    map_n = WORK_N;
    double med[7];
    struct bench_system work[] = {
        {"openmp parallel for (floor)", run_omp, NULL},
        {"cthreading map", run_cth_map, NULL},
        {"cthreading parallel_for", run_cth_for, NULL},
        {"glib GThreadPool, 1 item/push", run_glib, NULL},
        {"libuv uv_queue_work, 1 item", run_uv, NULL},
        {"serial (1 thread)", run_serial, NULL},
        {"python Pool.map", run_py_work, NULL},
    };
    bench_compare("map 10k x 50us", "time", "ms", work, 7, 3, med);
    /* efficiency = serial time / (cores x parallel time), per system; the
     * machine's load average beside it (other processes take cores too) */
    double load[1] = {NAN};
    getloadavg(load, 1);
    printf("  efficiency on %d cores (load average %.1f): cthreading map %.0f%%, "
           "parallel_for %.0f%%, openmp %.0f%%\n",
           ncpu, load[0], 100 * med[5] / (ncpu * med[1]), 100 * med[5] / (ncpu * med[2]),
           100 * med[5] / (ncpu * med[0]));
    bench_record("map 10k x 50us", "cthreading map", "efficiency", med[5] / (ncpu * med[1]),
                 "fraction", NAN);
    bench_record("map 10k x 50us", "cthreading parallel_for", "efficiency",
                 med[5] / (ncpu * med[2]), "fraction", NAN);
    bench_record("map 10k x 50us", "openmp parallel for", "efficiency", med[5] / (ncpu * med[0]),
                 "fraction", NAN);
    bench_record("map 10k x 50us", "machine", "load average", load[0], "runnable", NAN);
    /* On a loaded machine the wall-clock efficiency is capped by the cores
     * other processes take; the CPU the map costs against the serial loop's
     * shows the pool's own overhead (100% = none). */
    double cs[3], cm[3];
    for (int i = 0; i < 3; i++) {
        double c0 = bench_cpu();
        run_serial(NULL);
        cs[i] = bench_cpu() - c0;
        c0 = bench_cpu();
        run_cth_map(NULL);
        cm[i] = bench_cpu() - c0;
    }
    double cpu_eff = bench_median(cs, 3) / bench_median(cm, 3);
    printf("  CPU efficiency (serial CPU / map CPU): cthreading map %.0f%%\n", 100 * cpu_eff);
    bench_record("map 10k x 50us", "cthreading map", "cpu efficiency", cpu_eff, "fraction", NAN);

    bench_heading("Pool: apply_async round trip, submit to result, us (lower is better)");
    struct bench_system rt[] = {
        {"cthreading apply_async+get", run_cth_rt, NULL},
        {"glib push + cond wait", run_glib_rt, NULL},
    };
    bench_compare("apply_async round trip", "median", "us", rt, 2, reps, NULL);
    printf("  p99 (last rep): cthreading %.1f us, glib %.1f us\n", rt_p99[0], rt_p99[1]);
    bench_record("apply_async round trip", "cthreading", "p99", rt_p99[0], "us", NAN);
    bench_record("apply_async round trip", "glib", "p99", rt_p99[1], "us", NAN);

    bench_heading("Pool: pipelined apply_async of empty tasks, us per task (lower is better)");
    struct bench_system pipe[] = {
        {"glib GThreadPool push", run_glib_pipe, NULL},
        {"cthreading apply_async", run_cth_pipe, NULL},
    };
    bench_compare("apply_async pipelined", "per task", "us", pipe, 2, reps, NULL);

    cth_pool_free(pool);
    return 0;
}
