/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the tour's Pool.map section: the seed's multiprocessing.dummy
 * example. I/O-bound jobs (simulated with cth_sleep) run one by one, then
 * on a pool; then a CPU-bound map, one thread against a pool, results
 * counted as they come (imap_unordered) to draw the progress line. The
 * speed-up is read against what this machine can give now: the CPUs the
 * process may use and the load average, and the sentence says which of
 * them limited it.
 */
#include <sched.h>
#include <stdlib.h>
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

/* The CPUs this process may run on (os.process_cpu_count()). */
static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    return CPU_COUNT(&set);
}

static void io_bound(void)
{
    enum { JOBS = 8 };
    tour_code("results = [fetch(url) for url in urls]  # one by one",
              "for (i = 0; i < 8; i++) fetch(urls[i], &results[i]);",
              "results = Pool(8).map(fetch, urls)",
              "cth_pool_create(&pool, &(cth_pool_opts_t){.processes = 8});\n"
              "           cth_pool_map(pool, fetch, urls, 8, 0, results);",
              NULL);
    void *jobs[JOBS], *out[JOBS];
    for (int i = 0; i < JOBS; i++)
        jobs[i] = (void *)(uintptr_t)(i + 1);
    double t0 = cth_monotonic();
    for (int i = 0; i < JOBS; i++) {
        tour_progress("jobs one by one", i, JOBS);
        fetch(jobs[i], &out[i]);
    }
    tour_progress("jobs one by one", JOBS, JOBS);
    say("%d I/O-bound jobs of 0.1 s, one by one:  %.2f s", JOBS, cth_monotonic() - t0);

    cth_pool_t *pool;
    cth_pool_opts_t opts = {.processes = JOBS};
    cth_pool_create(&pool, &opts);
    t0 = cth_monotonic();
    cth_pool_map(pool, fetch, jobs, JOBS, 0, out);
    say("the same jobs with Pool(%d).map:          %.2f s (results in order: %d..%d)", JOBS,
        cth_monotonic() - t0, (int)(uintptr_t)out[0], (int)(uintptr_t)out[JOBS - 1]);
    say("waiting overlaps on threads in Python too: the GIL is released while a thread waits");
    cth_pool_close(pool);
    cth_pool_join(pool, CTH_FOREVER);
    cth_pool_free(pool);
}

static void cpu_bound(void)
{
    enum { ITEMS = 8000, CHUNK = 100 };
    printf("\n");
    tour_code("for r in pool.imap_unordered(crunch, items, chunksize=100): done += 1",
              "cth_pool_imap_unordered(pool, crunch, items, n, 100, &it);\n"
              "           while (cth_imap_next(it, &r, CTH_FOREVER) == 0) done++;",
              "os.process_cpu_count(), os.getloadavg()",
              "sched_getaffinity(0, sizeof set, &set); getloadavg(load, 1);", NULL);
    static void *items[ITEMS];
    for (int i = 0; i < ITEMS; i++)
        items[i] = (void *)(uintptr_t)i;
    uintptr_t serial_sum = 0, pool_sum = 0; /* both runs compute the same */
    double t0 = cth_monotonic();
    for (int i = 0; i < ITEMS; i++) {
        if (i % CHUNK == 0)
            tour_progress("CPU-bound items in one thread", i, ITEMS);
        void *r;
        crunch(items[i], &r);
        serial_sum += (uintptr_t)r;
    }
    tour_progress("CPU-bound items in one thread", ITEMS, ITEMS);
    double one = cth_monotonic() - t0;

    int cpus = usable_cpus();
    double load[1] = {0};
    int have_load = getloadavg(load, 1) == 1;
    cth_pool_t *pool;
    cth_pool_create(&pool, NULL); /* Pool(): one worker per usable CPU */
    size_t workers = cth_pool_size(pool);
    cth_imap_t *it;
    t0 = cth_monotonic();
    cth_pool_imap_unordered(pool, crunch, items, ITEMS, CHUNK, &it);
    long done = 0;
    void *r;
    tour_progress("CPU-bound items on the pool", 0, ITEMS);
    while (cth_imap_next(it, &r, CTH_FOREVER) == 0) {
        pool_sum += (uintptr_t)r;
        if (++done % CHUNK == 0)
            tour_progress("CPU-bound items on the pool", done, ITEMS);
    }
    double all = cth_monotonic() - t0;
    cth_imap_free(it);
    cth_pool_free(pool); /* like leaving `with Pool() as p:`: terminate + join */

    double speedup = one / all,
           possible = (double)((size_t)cpus < workers ? (size_t)cpus : workers);
    say("%d CPU-bound items: 1 thread %.2f s, Pool(%zu) %.2f s: %.1fx (same results: %s)", ITEMS,
        one, workers, all, speedup, serial_sum == pool_sum ? "yes" : "NO");
    say("this process may use %d CPU%s; load average %s%.1f", cpus, cpus == 1 ? "" : "s",
        have_load ? "" : "unknown, ", load[0]);
    if (possible < 1.5) {
        say("one CPU: the workers take turns here, as under CPython's GIL on any machine");
    } else if (speedup > 1.15 * possible) {
        say("%.1fx, above the %.0fx that %.0f cores can give: other work slowed the one-thread",
            speedup, possible, possible);
        say("run more than the pool's (load %.1f); on an idle machine expect about %.0fx,", load[0],
            possible);
        say("and about 1x under CPython's GIL on any machine");
    } else if (speedup >= 0.75 * possible) {
        say("%.1fx of a possible %.0fx: each worker ran on a core of its own at once,", speedup,
            possible);
        say("which CPython's GIL never allows (it stays near 1x)");
    } else {
        say("%.1fx of a possible %.0fx: the workers shared the cores with other work", speedup,
            possible);
        say("(load %.1f on %d CPUs); on an idle machine each gets a core of its own,", load[0],
            cpus);
        say("while CPython's GIL keeps this near 1x on any machine");
    }
}

static void tour_pool(void)
{
    io_bound();
    cpu_bound();
}

TOUR_SECTION(30, "pool", "multiprocessing.dummy: Pool.map, I/O-bound and CPU-bound", tour_pool)
