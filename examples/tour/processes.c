/* SPDX-License-Identifier: MIT */
/*
 * processes.c - the tour's multiprocessing section: the seed's point that
 * one Pool API switches between threads and processes. The same record map
 * runs over threads, then over worker processes, then over processes with
 * the records in the pool's shared memory (nothing copied); then a task that crashes
 * its worker fails alone while the rest complete, and a task that hangs is
 * stopped by its timeout, the pool going on each time. Process pools are
 * Linux's; elsewhere the section says so.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "tour.h"

enum { N = 1000000, INPUTS = 20, BAD = 13 };

static int square(const void *in, void *out)
{
    long x = *(const long *)in;
    *(long *)out = x * x;
    return 0;
}

/* A parser of untrusted input, say: input 13 crashes it. */
static int parse(const void *in, void *out)
{
    int x = *(const int *)in;
    if (x == BAD) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* no core file from the demonstration */
        raise(SIGSEGV);
    }
    *(int *)out = x * 10;
    return 0;
}

/* A task that never ends on its input. */
static int hang(const void *in, size_t in_size, void **out, size_t *out_size)
{
    (void)in;
    (void)in_size;
    (void)out;
    (void)out_size;
    while (cth_sleep(1) == 0)
        ;
    return 1;
}

static double timed_map(cth_pool_backend_t backend, const long *xs, long *ys)
{
    cth_pool_opts_t opts = {.backend = backend};
    cth_pool_t *pool;
    int err = cth_pool_create(&pool, &opts);
    if (err == CTH_ENOTSUP) {
        say("no process pools on this system (Linux only)");
        return -1;
    } else if (err) {
        say("cth_pool_create: %s", cth_strerror(err));
        return -1;
    }
    double t0 = cth_monotonic();
    err = cth_pool_map_records(pool, square, xs, sizeof *xs, N, 0, ys, sizeof *ys);
    double dt = cth_monotonic() - t0;
    cth_pool_free(pool);
    if (err)
        say("cth_pool_map_records: %s", cth_strerror(err));
    return err ? -1 : dt;
}

static void same_map(void)
{
    tour_code("with multiprocessing.dummy.Pool() as p: ys = p.map(square, xs)",
              "cth_pool_create(&pool, NULL);  /* threads */\n"
              "           cth_pool_map_records(pool, square, xs, sizeof(long), n, 0,\n"
              "                                ys, sizeof(long));",
              "with multiprocessing.Pool() as p: ys = p.map(square, xs)",
              "cth_pool_create(&pool, &(cth_pool_opts_t){.backend = CTH_POOL_PROCESSES});\n"
              "           cth_pool_map_records(...);  /* the same call */",
              NULL);
    long *xs = malloc(N * sizeof *xs), *ys = malloc(N * sizeof *ys);
    if (!xs || !ys) {
        say("out of memory");
        free(xs);
        free(ys);
        return;
    }
    for (long i = 0; i < N; i++)
        xs[i] = i;
    double threads = timed_map(CTH_POOL_THREADS, xs, ys);
    long bad = 0;
    for (long i = 0; i < N && threads >= 0; i++)
        bad += ys[i] != i * i;
    memset(ys, 0, N * sizeof *ys);
    double procs = timed_map(CTH_POOL_PROCESSES, xs, ys);
    for (long i = 0; i < N && procs >= 0; i++)
        bad += ys[i] != i * i;
    if (threads >= 0 && procs >= 0) {
        say("1M longs squared: threads %.1f ms, worker processes %.1f ms (pool start",
            threads * 1e3, procs * 1e3);
        say("not counted); %s", bad ? "SOME RESULTS WRONG" : "every result checked, both right");
        say("the records cross to the workers once, through shared memory, not pickled");
    }
    free(xs);
    free(ys);
}

/* The same map with its records in the pool's shared memory: the workers
 * read and write them in place. */
static void map_in_place(void)
{
    printf("\n");
    tour_code("shm = shared_memory.SharedMemory(create=True, size=n * 8)",
              "cth_pool_shared_alloc(pool, n * sizeof(long), (void **)&xs);  /* ys alike */\n"
              "           cth_pool_map_records(pool, square, xs, ...);  /* nothing copied */",
              NULL);
    cth_pool_opts_t opts = {.backend = CTH_POOL_PROCESSES};
    cth_pool_t *pool;
    if (cth_pool_create(&pool, &opts) != 0) {
        say("no process pool here");
        return;
    }
    long *xs = NULL, *ys = NULL;
    int err = cth_pool_shared_alloc(pool, N * sizeof *xs, (void **)&xs);
    if (!err)
        err = cth_pool_shared_alloc(pool, N * sizeof *ys, (void **)&ys);
    if (!err) {
        for (long i = 0; i < N; i++)
            xs[i] = i;
        double t0 = cth_monotonic();
        err = cth_pool_map_records(pool, square, xs, sizeof *xs, N, 0, ys, sizeof *ys);
        double dt = cth_monotonic() - t0;
        long bad = 0;
        for (long i = 0; i < N && !err; i++)
            bad += ys[i] != i * i;
        if (!err)
            say("in the pool's shared memory: %.1f ms, %s", dt * 1e3,
                bad ? "SOME RESULTS WRONG" : "every result checked, right");
    }
    if (err)
        say("in shared memory: %s", cth_strerror(err));
    cth_pool_free(pool); /* frees xs and ys too */
}

static void crash_contained(void)
{
    printf("\n");
    tour_code("p.map(parse, inputs)  # input 13 kills its worker: Pool.map hangs forever,",
              "cth_pool_imap_records(pool, parse, in, sizeof(int), 20, 1, out, sizeof(int), &it);",
              "# ProcessPoolExecutor fails every pending task (BrokenProcessPool)",
              "while (cth_imap_next(it, &v, CTH_FOREVER) != CTH_IMAP_END) ...  /* CTH_EWORKER */",
              NULL);
    cth_pool_opts_t opts = {.backend = CTH_POOL_PROCESSES, .processes = 2};
    cth_pool_t *pool;
    if (cth_pool_create(&pool, &opts) != 0) {
        say("no process pool here");
        return;
    }
    int in[INPUTS], out[INPUTS];
    for (int i = 0; i < INPUTS; i++)
        in[i] = i;
    cth_imap_t *it;
    int ok = 0, err;
    void *v;
    if (cth_pool_imap_records(pool, parse, in, sizeof *in, INPUTS, 1, out, sizeof *out, &it) == 0) {
        while ((err = cth_imap_next(it, &v, CTH_FOREVER)) != CTH_IMAP_END) {
            if (err == 0) {
                ok++;
            } else if (err == CTH_EWORKER) {
                int status = cth_task_error();
                say("input %d: %s, its worker killed by signal %d (%s)", BAD, cth_err_name(err),
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                    WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited");
            } else {
                say("unexpected: %s", cth_err_name(err));
                break;
            }
        }
        cth_imap_free(it);
    }
    say("the other %d of %d inputs were parsed; the pool replaced the worker and went on", ok,
        INPUTS);
    say("(Python's multiprocessing.Pool would wait forever here; ProcessPoolExecutor would");
    say("break and fail every pending task)");

    printf("\n");
    tour_code("pebble: pool.schedule(hang, timeout=0.2)",
              "cth_pool_apply_buffer_async(pool, hang, NULL, 0,\n"
              "               &(cth_result_opts_t){.task_timeout = 0.2}, &res);",
              NULL);
    cth_result_t *res;
    cth_result_opts_t ro = {.task_timeout = 0.2};
    double t0 = cth_monotonic();
    if (cth_pool_apply_buffer_async(pool, hang, NULL, 0, &ro, &res) == 0) {
        err = cth_result_get_buffer(res, NULL, NULL, CTH_FOREVER);
        say("a task that never ends: %s after %.2f s; its worker was killed and replaced",
            cth_err_name(err), cth_monotonic() - t0);
        cth_result_free(res);
    }
    long x = 12, y = 0;
    err = cth_pool_map_records(pool, square, &x, sizeof x, 1, 1, &y, sizeof y);
    say("and the pool goes on: 12 squared is %ld (%s)", y, cth_err_name(err));
    cth_pool_free(pool);
}

static void tour_processes(void)
{
    same_map();
    map_in_place();
    crash_contained();
}

TOUR_SECTION(35, "processes",
             "multiprocessing.Pool: the same Pool over processes, crashes contained",
             tour_processes)
