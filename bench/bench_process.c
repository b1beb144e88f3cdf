/* SPDX-License-Identifier: MIT */
/*
 * bench_process.c - the pool over worker processes against the same pool
 * over threads and against Python's process pools, each measurement in a
 * process of its own (bench_isolate), pools created outside the timed part
 * (in the warm-up run):
 * - map of 1M 8-byte records (a square each) on 2 workers: cthreading
 *   threads (the baseline), cthreading processes (forkserver), Python's
 *   multiprocessing.Pool(2).map over a list of ints; each the median of
 *   MAP_RUNS maps in a row after the warm-up (a fresh process's first maps
 *   of either backend also pay for faulting their memory in);
 * - the same map with its records and results in the pool's shared memory
 *   (cth_pool_shared_alloc), so that the workers read and write them in
 *   place: threads (the baseline), processes, and Python's Pool.map again
 *   (it has no such thing: the same list);
 * - apply_buffer round trip of 8 bytes, median: threads, processes,
 *   Python's ProcessPoolExecutor(2).submit(f, x).result();
 * - pipelined apply_buffer_async of 8 bytes, per task: threads, processes,
 *   ProcessPoolExecutor submits then waits;
 * - the time to a ready pool of 2 (create, then one task answered) under
 *   each start method, beside Python's Pool(2) under its own.
 */
#include "bench.h" /* first: it sets _GNU_SOURCE */

#include <stdint.h>

#include <cthreading.h>

#define RT_SAMPLES 2000
#define MAP_RUNS 5

static size_t map_n = 1000000, pipe_n = 20000;
static long *xs, *ys;
static cth_pool_t *pools[2];              /* [backend] */
static long *shared_xs[2], *shared_ys[2]; /* [backend]: xs and room for ys, in shared memory */

static cth_pool_t *the_pool(cth_pool_backend_t backend)
{
    if (!pools[backend]) {
        cth_pool_opts_t opts = {.processes = 2, .backend = backend};
        int err = cth_pool_create(&pools[backend], &opts);
        if (err) {
            fprintf(stderr, "bench_process: cth_pool_create: %s\n", cth_strerror(err));
            exit(1);
        }
    }
    return pools[backend];
}

static int square(const void *in, void *out)
{
    long x = *(const long *)in;
    *(long *)out = x * x;
    return 0;
}

static int echo(const void *in, size_t in_size, void **out, size_t *out_size)
{
    void *b = malloc(in_size);
    if (!b)
        return 1;
    memcpy(b, in, in_size);
    *out = b;
    *out_size = in_size;
    return 0;
}

/* ---- the map ------------------------------------------------------------------------------------ */

/* The median of MAP_RUNS maps of the records at in into out on p. */
static double map_runs(cth_pool_t *p, const long *in, long *out)
{
    double ms[MAP_RUNS];
    for (int k = 0; k < MAP_RUNS; k++) {
        memset(out, 0, map_n * sizeof *out);
        double t0 = bench_now();
        int err = cth_pool_map_records(p, square, in, sizeof *in, map_n, 0, out, sizeof *out);
        ms[k] = (bench_now() - t0) * 1e3;
        for (size_t i = 0; i < map_n; i += map_n / 97 + 1)
            if (err || out[i] != (long)(i * i))
                return NAN;
    }
    return bench_median(ms, MAP_RUNS);
}

static double run_map(void *ctx)
{
    return map_runs(the_pool((cth_pool_backend_t)(uintptr_t)ctx), xs, ys);
}

/* The same records, in the pool's shared memory (allocated and filled in
 * the warm-up run). */
static double run_map_shared(void *ctx)
{
    cth_pool_backend_t b = (cth_pool_backend_t)(uintptr_t)ctx;
    cth_pool_t *p = the_pool(b);
    if (!shared_xs[b]) {
        void *in, *out;
        if (cth_pool_shared_alloc(p, map_n * sizeof *xs, &in) != 0 ||
            cth_pool_shared_alloc(p, map_n * sizeof *ys, &out) != 0)
            return NAN;
        shared_xs[b] = in;
        shared_ys[b] = out;
        memcpy(shared_xs[b], xs, map_n * sizeof *xs);
    }
    return map_runs(p, shared_xs[b], shared_ys[b]);
}

static double run_py_map(void *ctx)
{
    (void)ctx;
    char script[600];
    snprintf(script, sizeof script,
             "import multiprocessing as mp, time\n"
             "def sq(x): return x * x\n"
             "if __name__ == '__main__':\n"
             "    with mp.Pool(2) as p:\n"
             "        xs = list(range(%zu))\n"
             "        p.map(sq, xs[:1000])\n"
             "        ms = []\n"
             "        for _ in range(%d):\n"
             "            t0 = time.perf_counter()\n"
             "            p.map(sq, xs)\n"
             "            ms.append((time.perf_counter() - t0) * 1e3)\n"
             "        print(sorted(ms)[len(ms) // 2])\n",
             map_n, MAP_RUNS);
    return bench_python(script);
}

/* ---- apply_buffer ----------------------------------------------------------------------------- */

static double run_rt(void *ctx)
{
    cth_pool_t *p = the_pool((cth_pool_backend_t)(uintptr_t)ctx);
    static double s[RT_SAMPLES];
    long x = 42;
    for (int i = 0; i < RT_SAMPLES; i++) {
        void *out = NULL;
        size_t len = 0;
        double t0 = bench_now();
        int err = cth_pool_apply_buffer(p, echo, &x, sizeof x, &out, &len);
        s[i] = (bench_now() - t0) * 1e6;
        if (err || len != sizeof x)
            return NAN;
        free(out);
    }
    return bench_percentile(s, RT_SAMPLES, 50);
}

static double run_py_rt(void *ctx)
{
    (void)ctx;
    return bench_python("import concurrent.futures as cf, time, statistics\n"
                        "def f(x): return x\n"
                        "if __name__ == '__main__':\n"
                        "    with cf.ProcessPoolExecutor(2) as ex:\n"
                        "        ex.submit(f, 1).result()\n"
                        "        s = []\n"
                        "        for i in range(2000):\n"
                        "            t0 = time.perf_counter()\n"
                        "            ex.submit(f, 42).result()\n"
                        "            s.append((time.perf_counter() - t0) * 1e6)\n"
                        "        print(statistics.median(s))\n");
}

static double run_pipe(void *ctx)
{
    cth_pool_t *p = the_pool((cth_pool_backend_t)(uintptr_t)ctx);
    cth_result_t **r = malloc(pipe_n * sizeof *r);
    if (!r)
        return NAN;
    long x = 42;
    double t0 = bench_now();
    size_t n = 0;
    while (n < pipe_n && cth_pool_apply_buffer_async(p, echo, &x, sizeof x, NULL, &r[n]) == 0)
        n++;
    for (size_t i = 0; i < n; i++) {
        cth_result_get_buffer(r[i], NULL, NULL, CTH_FOREVER);
        cth_result_free(r[i]);
    }
    double dt = bench_now() - t0;
    free(r);
    return n == pipe_n ? dt / (double)pipe_n * 1e6 : NAN;
}

static double run_py_pipe(void *ctx)
{
    (void)ctx;
    char script[600];
    snprintf(script, sizeof script,
             "import concurrent.futures as cf, time\n"
             "def f(x): return x\n"
             "if __name__ == '__main__':\n"
             "    with cf.ProcessPoolExecutor(2) as ex:\n"
             "        ex.submit(f, 1).result()\n"
             "        t0 = time.perf_counter()\n"
             "        fs = [ex.submit(f, 42) for i in range(%zu)]\n"
             "        for x in fs: x.result()\n"
             "        print((time.perf_counter() - t0) / %zu * 1e6)\n",
             pipe_n / 4, pipe_n / 4);
    return bench_python(script);
}

/* ---- start ----------------------------------------------------------------------------------- */

static double run_start(void *ctx)
{
    cth_pool_opts_t opts = {
        .processes = 2,
        .backend = CTH_POOL_PROCESSES,
        .start_method = (cth_start_method_t)(uintptr_t)ctx,
    };
    long x = 42;
    void *out = NULL;
    double t0 = bench_now();
    cth_pool_t *p;
    if (cth_pool_create(&p, &opts) != 0)
        return NAN;
    int err = cth_pool_apply_buffer(p, echo, &x, sizeof x, &out, NULL);
    double dt = bench_now() - t0;
    free(out);
    cth_pool_free(p);
    return err ? NAN : dt * 1e3;
}

static char py_fork[] = "fork", py_forkserver[] = "forkserver", py_spawn[] = "spawn";

static double run_py_start(void *ctx)
{
    char script[600];
    snprintf(script, sizeof script,
             "import multiprocessing as mp, time\n"
             "def f(x): return x\n"
             "if __name__ == '__main__':\n"
             "    c = mp.get_context('%s')\n"
             "    t0 = time.perf_counter()\n"
             "    with c.Pool(2) as p:\n"
             "        p.apply(f, (42,))\n"
             "        print((time.perf_counter() - t0) * 1e3)\n",
             (const char *)ctx);
    return bench_python(script);
}

int main(int argc, char **argv)
{
    bench_child_init(argc, argv);
    bench_isolate();
    int reps = bench_reps();
    if (bench_quick()) {
        map_n = 100000;
        pipe_n = 2000;
    }
    xs = malloc(map_n * sizeof *xs);
    ys = malloc(map_n * sizeof *ys);
    if (!xs || !ys)
        return 1;
    for (size_t i = 0; i < map_n; i++)
        xs[i] = (long)i;

    char title[160], name[64];
    snprintf(title, sizeof title,
             "Process pool: map of %zuk 8-byte records, 2 workers, ms per map (lower is better)",
             map_n / 1000);
    snprintf(name, sizeof name, "map %zuk records", map_n / 1000);
    bench_heading(title);
    struct bench_system map[] = {
        {"cthreading threads", run_map, (void *)(uintptr_t)CTH_POOL_THREADS},
        {"cthreading processes", run_map, (void *)(uintptr_t)CTH_POOL_PROCESSES},
        {"python multiprocessing Pool.map", run_py_map, NULL},
    };
    bench_compare(name, "time", "ms", map, 3, reps, NULL);

    snprintf(title, sizeof title,
             "Process pool: map of %zuk 8-byte records in the pool's shared memory (in place), "
             "2 workers, ms per map (lower is better)",
             map_n / 1000);
    snprintf(name, sizeof name, "map %zuk records in shared memory", map_n / 1000);
    bench_heading(title);
    struct bench_system map_shared[] = {
        {"cthreading threads", run_map_shared, (void *)(uintptr_t)CTH_POOL_THREADS},
        {"cthreading processes", run_map_shared, (void *)(uintptr_t)CTH_POOL_PROCESSES},
        {"python multiprocessing Pool.map", run_py_map, NULL},
    };
    bench_compare(name, "time", "ms", map_shared, 3, reps, NULL);

    bench_heading("Process pool: apply_buffer round trip of 8 bytes, median, us (lower is better)");
    struct bench_system rt[] = {
        {"cthreading threads", run_rt, (void *)(uintptr_t)CTH_POOL_THREADS},
        {"cthreading processes", run_rt, (void *)(uintptr_t)CTH_POOL_PROCESSES},
        {"python ProcessPoolExecutor", run_py_rt, NULL},
    };
    bench_compare("apply_buffer round trip", "median", "us", rt, 3, reps, NULL);

    bench_heading("Process pool: pipelined apply_buffer_async of 8 bytes, us per task "
                  "(lower is better)");
    struct bench_system pipe[] = {
        {"cthreading threads", run_pipe, (void *)(uintptr_t)CTH_POOL_THREADS},
        {"cthreading processes", run_pipe, (void *)(uintptr_t)CTH_POOL_PROCESSES},
        {"python ProcessPoolExecutor", run_py_pipe, NULL},
    };
    bench_compare("apply_buffer pipelined", "per task", "us", pipe, 3, reps, NULL);

    bench_heading("Process pool: time to a ready pool of 2 (create + one task), ms "
                  "(lower is better)");
    struct bench_system start[] = {
        {"cthreading fork", run_start, (void *)(uintptr_t)CTH_START_FORK},
        {"cthreading forkserver", run_start, (void *)(uintptr_t)CTH_START_FORKSERVER},
        {"cthreading spawn", run_start, (void *)(uintptr_t)CTH_START_SPAWN},
        {"python fork", run_py_start, py_fork},
        {"python forkserver", run_py_start, py_forkserver},
        {"python spawn", run_py_start, py_spawn},
    };
    bench_compare("process pool start", "time", "ms", start, 6, reps, NULL);
    return 0;
}
