/* SPDX-License-Identifier: MIT */
/*
 * processes.c - the tour's multiprocessing.Pool section: the same map over
 * records, on threads and then on worker processes (one option apart),
 * and a task that crashes its worker: it fails alone, with the signal that
 * ended the worker, while the others complete and a new worker takes its
 * place. Process pools are Linux's; elsewhere the section says so.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "tour.h"

/* An item: a number in, a hash of it out. The item numbered `crash` makes
 * its worker write through a null pointer. */
struct item {
    uint32_t x;
    uint32_t crash;
};

static int *volatile nowhere; /* NULL, which the compiler cannot know */

static int hash_item(const void *in, void *out)
{
    const struct item *it = in;
    if (it->crash) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* no core file from the demonstration */
        *(volatile int *)nowhere = 1;
    }
    uint64_t h = 1469598103934665603ULL;
    for (uint32_t i = 0; i < 20000; i++)
        h = (h ^ (it->x + i)) * 1099511628211ULL;
    *(uint64_t *)out = h;
    return 0;
}

enum { ITEMS = 4000, CRASH_AT = 13 };
static struct item items[ITEMS];
static uint64_t out[ITEMS];

/* Map the items on a pool of 2 of the backend; the time and a checksum. */
static int run_map(cth_pool_backend_t backend, double *secs, uint64_t *sum)
{
    cth_pool_t *pool;
    int err = cth_pool_create(&pool, &(cth_pool_opts_t){.processes = 2, .backend = backend});
    if (err)
        return err;
    double t0 = cth_monotonic();
    err = cth_pool_map_records(pool, hash_item, items, sizeof *items, ITEMS, 0, out, sizeof *out);
    *secs = cth_monotonic() - t0;
    *sum = 0;
    for (int i = 0; i < ITEMS; i++)
        *sum += out[i];
    cth_pool_free(pool);
    return err;
}

static void same_map(void)
{
    tour_code("with multiprocessing.dummy.Pool(2) as p: p.map(h, items)",
              "cth_pool_create(&pool, &(cth_pool_opts_t){.processes = 2});\n"
              "           cth_pool_map_records(pool, h, items, sizeof *items, n, 0, out, sizeof "
              "*out);",
              "with multiprocessing.Pool(2) as p: p.map(h, items)",
              "... (cth_pool_opts_t){.processes = 2, .backend = CTH_POOL_PROCESSES} ...", NULL);
    for (int i = 0; i < ITEMS; i++)
        items[i] = (struct item){(uint32_t)i, 0};
    double t_threads, t_procs;
    uint64_t s_threads, s_procs;
    run_map(CTH_POOL_THREADS, &t_threads, &s_threads);
    int err = run_map(CTH_POOL_PROCESSES, &t_procs, &s_procs);
    if (err == CTH_ENOTSUP) {
        say("no process pools on this system (Linux only): the thread pool took %.3f s", t_threads);
        return;
    }
    say("%d records on 2 threads: %.3f s; on 2 worker processes: %.3f s (same results: %s)", ITEMS,
        t_threads, t_procs, s_threads == s_procs ? "yes" : "NO");
    say("the records went to the workers through shared memory, copied once, not pickled");
}

static void crash_contained(void)
{
    printf("\n");
    tour_code("p.map(h, items)  # a worker dies in item 13",
              "cth_pool_map_records(pool, h, items, ...) == CTH_EWORKER", NULL);
    cth_pool_t *pool;
    if (cth_pool_create(&pool, &(cth_pool_opts_t){.processes = 2, .backend = CTH_POOL_PROCESSES}) !=
        0)
        return;
    for (int i = 0; i < ITEMS; i++) {
        items[i] = (struct item){(uint32_t)i, i == CRASH_AT};
        out[i] = 0;
    }
    int err = cth_pool_map_records(pool, hash_item, items, sizeof *items, ITEMS, 1, out,
                                   sizeof *out);
    int status = cth_task_error();
    int done = 0;
    for (int i = 0; i < ITEMS; i++)
        done += out[i] != 0;
    say("item %d wrote through a null pointer: the map returned %s, its worker's wait status",
        CRASH_AT, err == CTH_EWORKER ? "CTH_EWORKER" : "something else");
    say("says %s %d; the other %d items have their results (%d of %d)",
        WIFSIGNALED(status) ? "signal" : "exit", WIFSIGNALED(status) ? WTERMSIG(status) : status,
        ITEMS - 1, done, ITEMS);
    items[CRASH_AT].crash = 0;
    err = cth_pool_map_records(pool, hash_item, items, sizeof *items, ITEMS, 0, out, sizeof *out);
    say("a new worker took the dead one's place: the next map returned %d", err);
    say("Python's multiprocessing.Pool would wait forever here; ProcessPoolExecutor would");
    say("break and fail every pending task");
    cth_pool_free(pool);
}

static void tour_processes(void)
{
    same_map();
    crash_contained();
}

TOUR_SECTION(35, "processes",
             "multiprocessing.Pool: the same map over processes, a crash contained", tour_processes)
