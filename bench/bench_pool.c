/* SPDX-License-Identifier: MIT */
/*
 * bench_pool.c - the thread pool against its peers. Every measurement runs
 * in a process of its own (bench_isolate: the program re-executes itself
 * per measurement, warms the system up once, then measures), so that no
 * system runs beside another's idle threads or inherits its heap, and a
 * peer preempted in one process does not stall the next; the load average
 * goes with every row.
 * - maps of 1k, 100k, 1M and 10M trivial items: cthreading map (Python's
 *   default chunksize) and parallel-for vs OpenMP `parallel for` calling the same
 *   function, schedule(static) (the baseline) and schedule(dynamic, chunk)
 *   (chunk 4096, less for small maps), and cthreading's map with that same
 *   chunksize (like for like), and OpenMP dynamic calling parallel_for's
 *   body through a pointer with parallel_for's own chunk (parallel_for's
 *   like for like: its body makes one more call an item than the map's
 *   task); at 1M also GLib GThreadPool and libuv
 *   uv_queue_work fed one item at a time and Python's
 *   multiprocessing.dummy.Pool.map; small maps are timed over a batch;
 * - map of 10,000 items of ~50 us of work: the same peers, the efficiency
 *   on the machine's cores (serial time / (cores x time)) and the CPU the
 *   map costs against the serial loop's;
 * - apply_async round trip (submit, then get) median and p99, and the
 *   pipelined cost per task, vs GThreadPool and libuv;
 * - the CPU an idle pool burns after a map, against a process with no pool.
 * GLib, libuv and OpenMP have other semantics (no results, no errors): they
 * are context and ceiling numbers. The work loop is calibrated once, in the
 * parent, and handed to every child (CTH_BENCH_SPIN_PER_US).
 */
#include "bench.h" /* first: it sets _GNU_SOURCE */

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

#define WORK_US 50.0

static int ncpu;
static size_t trivial_n = 1000000, work_n = 10000;
static void **items, **results;
static cth_pool_t *pool;
static double spin_per_us; /* loop iterations per microsecond */

/* The pool the cthreading systems use, created by the first of them (in a
 * child, during its warm-up run). */
static cth_pool_t *the_pool(void)
{
    if (!pool && cth_pool_create(&pool, NULL) != 0) {
        fprintf(stderr, "bench_pool: cannot create the pool\n");
        exit(1);
    }
    return pool;
}

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

/* parallel_for's body as OpenMP calls it in the like-for-like row: through
 * a pointer, one more call an item than the map's. */
static int (*volatile for_fn)(void *, size_t) = for_body;

static void calibrate(void)
{
    long n = 2000000;
    volatile double x = 1.0;
    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        x = x * 1.0000001 + 0.0000001;
    spin_per_us = (double)n / ((bench_now() - t0) * 1e6);
}

/* ---- systems: a map of map_n items of task_fn; ms per map ---------------- */

static size_t map_n;
static int map_batch = 1; /* maps per measurement: small maps are timed in batches */
static long omp_chunk;    /* schedule(dynamic, omp_chunk) */
static long for_chunk;    /* parallel_for's own chunk: its OpenMP peer's */

/* ctx: NULL for Python's default chunksize, else a long chunksize (OpenMP
 * dynamic's, for a like-for-like row). */
static double run_cth_map(void *ctx)
{
    size_t chunksize = ctx ? (size_t) * (const long *)ctx : 0;
    cth_pool_t *p = the_pool();
    double t0 = bench_now();
    for (int b = 0; b < map_batch; b++)
        cth_pool_map(p, task_fn, items, map_n, chunksize, results);
    return (bench_now() - t0) * 1e3 / map_batch;
}

static double run_cth_for(void *ctx)
{
    (void)ctx;
    cth_pool_t *p = the_pool();
    double t0 = bench_now();
    for (int b = 0; b < map_batch; b++)
        cth_pool_parallel_for(p, for_body, NULL, map_n);
    return (bench_now() - t0) * 1e3 / map_batch;
}

static double run_serial(void *ctx)
{
    (void)ctx;
    double t0 = bench_now();
    for (int b = 0; b < map_batch; b++)
        for (size_t i = 0; i < map_n; i++)
            task_fn(items[i], &results[i]);
    return (bench_now() - t0) * 1e3 / map_batch;
}

/* run_omp's ctx for OpenMP dynamic calling parallel_for's body (for_fn). */
static const char omp_for_body;

/* OpenMP's parallel for; ctx says which schedule: static (NULL), dynamic
 * with omp_chunk (&omp_chunk), or dynamic with parallel_for's chunk calling
 * its body in place of the task (&omp_for_body; the pointer is read once a
 * thread, as parallel_for reads it once a chunk). All go through
 * schedule(runtime), so the loops are the same code. */
static double run_omp(void *ctx)
{
#ifdef HAVE_OPENMP
    long chunk = ctx == &omp_for_body ? for_chunk : omp_chunk;
    omp_set_schedule(ctx ? omp_sched_dynamic : omp_sched_static, ctx ? (int)chunk : 0);
    long n = (long)map_n;
    double t0 = bench_now();
    for (int b = 0; b < map_batch; b++) {
        if (ctx == &omp_for_body) {
#pragma omp parallel
            {
                int (*body)(void *, size_t) = for_fn;
#pragma omp for schedule(runtime)
                for (long i = 0; i < n; i++)
                    body(NULL, (size_t)i);
            }
        } else {
#pragma omp parallel for schedule(runtime)
            for (long i = 0; i < n; i++)
                task_fn(items[i], &results[i]);
        }
    }
    return (bench_now() - t0) * 1e3 / map_batch;
#else
    (void)ctx;
    return NAN;
#endif
}

#ifdef HAVE_GLIB
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
    char script[512];
    snprintf(script, sizeof script,
             "import time\n"
             "from multiprocessing.dummy import Pool\n"
             "def f(x): return x * 2 + 1\n"
             "p = Pool()\n"
             "xs = list(range(%zu))\n"
             "t0 = time.perf_counter(); p.map(f, xs)\n"
             "print((time.perf_counter() - t0) * 1e3)\n",
             map_n);
    return bench_python(script);
}

static double run_py_work(void *ctx)
{
    (void)ctx;
    char script[512];
    snprintf(script, sizeof script,
             "import time\n"
             "from multiprocessing.dummy import Pool\n"
             "def spin(us):\n"
             "    end = time.perf_counter() + us / 1e6\n"
             "    while time.perf_counter() < end: pass\n"
             "def f(x): spin(50); return x\n"
             "p = Pool()\n"
             "xs = list(range(%zu))\n"
             "t0 = time.perf_counter(); p.map(f, xs)\n"
             "print((time.perf_counter() - t0) * 1e3)\n",
             map_n);
    return bench_python(script);
}

/* CPU (ms, the whole process) that a serial loop and a cthreading map of
 * the same items cost. */
static double run_serial_cpu(void *ctx)
{
    double c0 = bench_cpu();
    run_serial(ctx);
    return (bench_cpu() - c0) * 1e3;
}

static double run_cth_map_cpu(void *ctx)
{
    the_pool();
    double c0 = bench_cpu();
    run_cth_map(ctx);
    return (bench_cpu() - c0) * 1e3;
}

/* ---- an idle pool: the CPU the whole process burns over a window --------- */

static double idle_window = 0.5;

/* The window with no pool: what the sleeping main thread and the
 * accounting cost on their own. */
static double run_idle_none(void *ctx)
{
    (void)ctx;
    double c0 = bench_cpu();
    cth_sleep(idle_window);
    return (bench_cpu() - c0) * 1e3;
}

/* The same window once a map has finished and the workers' spin (tens of
 * microseconds) is over: every thread but the workers sleeps. */
static double run_idle_pool(void *ctx)
{
    (void)ctx;
    cth_pool_map(the_pool(), trivial, items, trivial_n, 0, results);
    cth_sleep(0.05);
    double c0 = bench_cpu();
    cth_sleep(idle_window);
    return (bench_cpu() - c0) * 1e3;
}

/* ---- apply_async --------------------------------------------------------- */

static int empty_task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

#define RT_SAMPLES 2000

static int pipe_n = 200000;
static double rt_percentile = 50; /* which round trip a measurement returns */

static double run_cth_rt(void *ctx)
{
    (void)ctx;
    static double s[RT_SAMPLES];
    cth_pool_t *p = the_pool();
    for (int i = 0; i < RT_SAMPLES; i++) {
        double t0 = bench_now();
        cth_result_t *r;
        cth_pool_apply_async(p, empty_task, NULL, NULL, &r);
        cth_result_get(r, NULL, CTH_FOREVER);
        s[i] = (bench_now() - t0) * 1e6;
        cth_result_free(r);
    }
    return bench_percentile(s, RT_SAMPLES, rt_percentile);
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
    return bench_percentile(s, RT_SAMPLES, rt_percentile);
#else
    return NAN;
#endif
}

static double run_cth_pipe(void *ctx)
{
    (void)ctx;
    cth_result_t **r = malloc((size_t)pipe_n * sizeof *r);
    cth_pool_t *p = the_pool();
    double t0 = bench_now();
    for (int i = 0; i < pipe_n; i++)
        cth_pool_apply_async(p, empty_task, NULL, NULL, &r[i]);
    for (int i = 0; i < pipe_n; i++) {
        cth_result_get(r[i], NULL, CTH_FOREVER);
        cth_result_free(r[i]);
    }
    double dt = bench_now() - t0;
    free(r);
    return dt / pipe_n * 1e6;
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
    for (int i = 0; i < pipe_n; i++)
        g_thread_pool_push(gp, (gpointer)1, NULL);
    g_thread_pool_free(gp, FALSE, TRUE);
    return (bench_now() - t0) / pipe_n * 1e6;
#else
    return NAN;
#endif
}

#ifdef HAVE_LIBUV
static void uv_empty(uv_work_t *req)
{
    (void)req;
}
#endif

static double run_uv_pipe(void *ctx)
{
    (void)ctx;
#ifdef HAVE_LIBUV
    uv_loop_t *loop = uv_default_loop();
    double t0 = bench_now();
    for (int i = 0; i < pipe_n; i++)
        uv_queue_work(loop, &uv_reqs[i], uv_empty, uv_after);
    uv_run(loop, UV_RUN_DEFAULT);
    return (bench_now() - t0) / pipe_n * 1e6;
#else
    return NAN;
#endif
}

/* "1M", "100k", "1k": a count as the rows name it. */
static const char *count_name(char *buf, size_t size, size_t n)
{
    if (n >= 1000000 && n % 1000000 == 0)
        snprintf(buf, size, "%zuM", n / 1000000);
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, size, "%zuk", n / 1000);
    else
        snprintf(buf, size, "%zu", n);
    return buf;
}

/* Set up the maps of n items (a measurement does about a million items'
 * worth of maps, at most 1000) and the OpenMP chunk for them. */
static void set_map(size_t n, int (*fn)(void *, void **))
{
    map_n = n;
    task_fn = fn;
    map_batch = fn == trivial && n < trivial_n ? (int)(trivial_n / n) : 1;
    if (map_batch > 1000)
        map_batch = 1000;
    omp_chunk = (long)(n / ((size_t)ncpu * 8));
    omp_chunk = omp_chunk < 1 ? 1 : omp_chunk > 4096 ? 4096 : omp_chunk;
    /* cth_pool_parallel_for's: 8 chunks a thread, its default pool's ncpu
     * workers and the caller */
    size_t threads8 = 8 * ((size_t)ncpu + 1);
    for_chunk = (long)(n / threads8 + (n % threads8 != 0));
}

/* Maps of n trivial items; the peers fed one item at a time (GLib, libuv)
 * and Python only at the full size. */
static void family_trivial(size_t n, int reps)
{
    char count[24], title[200], name[64], dyn[48], cth_dyn[64], dyn_for[80];
    count_name(count, sizeof count, n);
    set_map(n, trivial);
    snprintf(title, sizeof title,
             "Pool: map of %s trivial items, %d workers, ms per map%s (lower is better)", count,
             ncpu, map_batch > 1 ? " (mean of a batch)" : "");
    bench_heading(title);
    snprintf(dyn, sizeof dyn, "openmp dynamic,%ld", omp_chunk);
    snprintf(cth_dyn, sizeof cth_dyn, "cthreading map, chunksize %ld", omp_chunk);
    snprintf(dyn_for, sizeof dyn_for, "openmp dynamic,%ld + for_body", for_chunk);
    snprintf(name, sizeof name, "map %s trivial", count);
    struct bench_system sys[] = {
        {"openmp static", run_omp, NULL},
        {dyn, run_omp, &omp_chunk},
        {"cthreading map", run_cth_map, NULL},
        {"cthreading parallel_for", run_cth_for, NULL},
        {cth_dyn, run_cth_map, &omp_chunk},
        {dyn_for, run_omp, (void *)&omp_for_body},
        {"glib GThreadPool, 1 item/push", run_glib, NULL},
        {"libuv uv_queue_work, 1 item", run_uv, NULL},
        {"python Pool.map", run_py_trivial, NULL},
    };
    bench_compare(name, "time", "ms", sys, n == trivial_n ? 9 : 6, reps, NULL);
}

static void family_work(int reps)
{
    char count[24], title[200], name[64], cpu_name[80], dyn[48];
    count_name(count, sizeof count, work_n);
    set_map(work_n, work50);
    snprintf(title, sizeof title, "Pool: map of %s items of ~50 us, ms per map (lower is better)",
             count);
    bench_heading(title);
    snprintf(dyn, sizeof dyn, "openmp dynamic,%ld", omp_chunk);
    snprintf(name, sizeof name, "map %s x 50us", count);
    double med[8];
    struct bench_system work[] = {
        {"openmp static", run_omp, NULL},
        {dyn, run_omp, &omp_chunk},
        {"cthreading map", run_cth_map, NULL},
        {"cthreading parallel_for", run_cth_for, NULL},
        {"glib GThreadPool, 1 item/push", run_glib, NULL},
        {"libuv uv_queue_work, 1 item", run_uv, NULL},
        {"serial (1 thread)", run_serial, NULL},
        {"python Pool.map", run_py_work, NULL},
    };
    bench_compare(name, "time", "ms", work, 8, reps, med);
    /* efficiency = serial time / (cores x parallel time): capped by the
     * cores other processes take (the load average is in the rows) */
    snprintf(title, sizeof title,
             "Pool: efficiency of the map of %s items of ~50 us on %d cores (higher is better)",
             count, ncpu);
    bench_heading(title);
    for (int i = 0; i < 4 && !bench_child_group; i++) {
        double eff = med[6] / (ncpu * med[i]);
        bench_report(name, "efficiency", "fraction", work[i].name, &eff, 1, NAN);
    }
    /* The CPU the map costs against the serial loop's: the pool's own
     * overhead, whatever the load (ratio 1 = none). */
    bench_heading("Pool: the CPU of the same map against the serial loop, ms (lower is better)");
    snprintf(cpu_name, sizeof cpu_name, "map %s x 50us, CPU", count);
    struct bench_system cpu[] = {
        {"serial (1 thread)", run_serial_cpu, NULL},
        {"cthreading map", run_cth_map_cpu, NULL},
    };
    bench_compare(cpu_name, "cpu", "ms", cpu, 2, reps, NULL);
}

static void family_apply_async(int reps)
{
    bench_heading("Pool: apply_async round trip, submit to result, us (lower is better)");
    struct bench_system rt[] = {
        {"glib push + cond wait", run_glib_rt, NULL},
        {"cthreading apply_async+get", run_cth_rt, NULL},
    };
    rt_percentile = 50;
    bench_compare("apply_async round trip", "median", "us", rt, 2, reps, NULL);
    rt_percentile = 99;
    bench_compare("apply_async round trip p99", "p99", "us", rt, 2, reps, NULL);

    bench_heading("Pool: pipelined apply_async of empty tasks, us per task (lower is better)");
    struct bench_system pipe[] = {
        {"libuv uv_queue_work", run_uv_pipe, NULL},
        {"glib GThreadPool push", run_glib_pipe, NULL},
        {"cthreading apply_async", run_cth_pipe, NULL},
    };
    bench_compare("apply_async pipelined", "per task", "us", pipe, 3, reps, NULL);
}

int main(int argc, char **argv)
{
    bench_child_init(argc, argv);
    bench_isolate();
    int reps = bench_reps();
    if (bench_quick()) {
        trivial_n = 100000;
        work_n = 1000;
        pipe_n = 20000;
        idle_window = 0.1;
    }
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    setenv("UV_THREADPOOL_SIZE", ncpu == 1 ? "1" : "2", 0);
    const char *spin = getenv("CTH_BENCH_SPIN_PER_US");
    if (bench_child_group && spin) {
        spin_per_us = atof(spin);
    } else {
        char buf[32];
        calibrate();
        snprintf(buf, sizeof buf, "%.17g", spin_per_us);
        setenv("CTH_BENCH_SPIN_PER_US", buf, 1);
    }
    size_t largest = 10 * trivial_n; /* the largest map */
    items = malloc(largest * sizeof *items);
    results = malloc(largest * sizeof *results);
    for (size_t i = 0; i < largest; i++)
        items[i] = (void *)(uintptr_t)i;
#ifdef HAVE_LIBUV
    uv_reqs = calloc(trivial_n, sizeof *uv_reqs);
#endif
#ifdef HAVE_OPENMP
    omp_set_num_threads(ncpu);
#endif

    bench_heading("Pool: CPU of the whole process over a window, asleep (lower is better)");
    char unit[32];
    snprintf(unit, sizeof unit, "ms per %.1f s", idle_window);
    struct bench_system idle[] = {
        {"no pool", run_idle_none, NULL},
        {"cthreading pool, idle", run_idle_pool, NULL},
    };
    bench_compare("idle pool", "cpu", unit, idle, 2, reps < 3 ? reps : 3, NULL);

    family_trivial(10 * trivial_n, reps < 5 ? reps : 5);
    family_trivial(trivial_n, reps < 5 ? reps : 5);
    family_trivial(trivial_n / 10, reps);
    family_trivial(trivial_n / 1000, reps);
    family_work(reps < 3 ? reps : 3);
    family_apply_async(reps);
    if (pool)
        cth_pool_free(pool);
    return 0;
}
