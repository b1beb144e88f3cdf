/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the tour's Pool.map section: the seed's multiprocessing.dummy
 * example. I/O-bound jobs (simulated with cth_sleep) run one by one, then
 * on a pool; then a CPU-bound map on every core, which CPython's GIL
 * cannot speed up.
 */
#include <unistd.h>

#include "tour.h"

static int fetch(void *arg, void **result)
{
    cth_sleep(0.1); /* a web request, say */
    *result = arg;
    return 0;
}

static int crunch(void *arg, void **result)
{
    unsigned long x = (unsigned long)(uintptr_t)arg, h = 1469598103934665603UL;
    for (int i = 0; i < 40000; i++)
        h = (h ^ (x + (unsigned long)i)) * 1099511628211UL;
    *result = (void *)(uintptr_t)h;
    return 0;
}

static void tour_pool(void)
{
    enum { JOBS = 8, CPU_ITEMS = 8000 };
    void *jobs[JOBS], *out[JOBS];
    for (int i = 0; i < JOBS; i++)
        jobs[i] = (void *)(uintptr_t)(i + 1);

    double t0 = cth_monotonic();
    for (int i = 0; i < JOBS; i++) {
        tour_progress("jobs one by one", i, JOBS);
        fetch(jobs[i], &out[i]);
    }
    tour_progress("jobs one by one", JOBS, JOBS);
    double serial = cth_monotonic() - t0;
    say("%d I/O-bound jobs of 0.1 s, one by one:      %.2f s", JOBS, serial);

    cth_pool_t *pool;
    cth_pool_opts_t opts = {.processes = JOBS};
    cth_pool_create(&pool, &opts);
    t0 = cth_monotonic();
    cth_pool_map(pool, fetch, jobs, JOBS, 0, out);
    say("the same jobs with Pool(%d).map:              %.2f s (results in order: %d..%d)", JOBS,
        cth_monotonic() - t0, (int)(uintptr_t)out[0], (int)(uintptr_t)out[JOBS - 1]);
    cth_pool_close(pool);
    cth_pool_join(pool, CTH_FOREVER);
    cth_pool_free(pool);

    static void *items[CPU_ITEMS], *res[CPU_ITEMS];
    for (int i = 0; i < CPU_ITEMS; i++)
        items[i] = (void *)(uintptr_t)i;
    t0 = cth_monotonic();
    for (int i = 0; i < CPU_ITEMS; i++) {
        if (i % 100 == 0)
            tour_progress("CPU-bound items in one thread", i, CPU_ITEMS);
        crunch(items[i], &res[i]);
    }
    tour_progress("CPU-bound items in one thread", CPU_ITEMS, CPU_ITEMS);
    double one = cth_monotonic() - t0;
    cth_pool_create(&pool, NULL); /* one worker per CPU */
    t0 = cth_monotonic();
    cth_pool_map(pool, crunch, items, CPU_ITEMS, 0, res);
    double all = cth_monotonic() - t0;
    say("CPU-bound map of %d items: 1 thread %.2f s, Pool(%zu) %.2f s: %.1fx", CPU_ITEMS, one,
        cth_pool_size(pool), all, one / all);
    say("(CPython's GIL keeps that at about 1x; here every worker has its own core)");
    cth_pool_free(pool); /* like leaving `with Pool() as p:`: terminate + join */
}

TOUR_SECTION(30, "pool", "multiprocessing.dummy: Pool.map", tour_pool)
