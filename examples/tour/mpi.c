/* SPDX-License-Identifier: MIT */
/*
 * mpi.c - the tour's mpi4py.futures section: the same map over records,
 * now over MPI ranks. The tour runs itself under mpirun with 3 ranks (the
 * root and 2 workers, each with its own thread pool); rank 0 maps and
 * prints, the others serve until it frees the pool. Built only with
 * libcthreading-mpi (CTH_TOUR_MPI); without it the section says so.
 */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "tour.h"

#ifdef CTH_TOUR_MPI
#include <cthreading/mpi.h>

#define RANK_ENV "CTH_TOUR_MPI_RANKS" /* set: this process is one of mpirun's ranks */

enum { ITEMS = 100000 };

static int square(const void *in, void *out)
{
    uint64_t x = *(const uint64_t *)in;
    *(uint64_t *)out = x * x;
    return 0;
}

/* Inside mpirun every rank runs this, before main (which would print the
 * section's heading at each rank), and exits. */
__attribute__((constructor)) static void as_rank(void)
{
    if (!getenv(RANK_ENV))
        return;
    int provided = 0;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    cth_pool_t *pool;
    int err = cth_mpi_pool_create(MPI_COMM_WORLD, 0, &(cth_mpi_opts_t){.threads = 2}, &pool);
    if (err == 0) { /* the root */
        static uint64_t in[ITEMS], out[ITEMS];
        for (uint64_t i = 0; i < ITEMS; i++)
            in[i] = i;
        double t0 = cth_monotonic();
        err = cth_pool_map_records(pool, square, in, sizeof *in, ITEMS, 0, out, sizeof *out);
        double secs = cth_monotonic() - t0;
        int ok = err == 0;
        for (uint64_t i = 0; ok && i < ITEMS; i++)
            ok = out[i] == i * i;
        int ranks = 0;
        MPI_Comm_size(MPI_COMM_WORLD, &ranks);
        say("%d records squared over %d worker ranks x 2 threads in %.3f s: %s", ITEMS, ranks - 1,
            secs, ok ? "all correct" : "WRONG");
        say("(pool size %zu: chunks in flight, 4 per worker rank)", cth_pool_size(pool));
        cth_pool_free(pool); /* the worker ranks return CTH_MPI_WORKER */
    } else if (err != CTH_MPI_WORKER) {
        say("cth_mpi_pool_create: %s", cth_strerror(err));
    }
    MPI_Finalize();
    exit(0);
}

static void tour_mpi(void)
{
    tour_code("with MPICommExecutor(MPI.COMM_WORLD, root=0) as ex:",
              "err = cth_mpi_pool_create(MPI_COMM_WORLD, 0, &opts, &pool);",
              "    if ex is not None: ex.map(square, items)",
              "if (err == 0) cth_pool_map_records(pool, square, in, ...); cth_pool_free(pool);",
              "# the other ranks served, ex was None", "/* err == CTH_MPI_WORKER */", NULL);
    say("running the tour under %s -np 3:", CTH_TOUR_MPIEXEC);
    fflush(stdout);
    char exe[4096], cmd[4096 + 512];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return;
    exe[len] = '\0';
    snprintf(cmd, sizeof cmd, "%s -np 3 %s '%s' mpi 2>/dev/null", CTH_TOUR_MPIEXEC,
             CTH_TOUR_MPIEXEC_FLAGS, exe);
    setenv(RANK_ENV, "1", 1);
    int status = system(cmd);
    unsetenv(RANK_ENV);
    if (status != 0)
        say("mpirun failed (status %d): is MPI usable here?", status);
}
#else
static void tour_mpi(void)
{
    say("skipped: libcthreading-mpi was not built (no MPI found)");
}
#endif

TOUR_SECTION(37, "mpi", "mpi4py.futures: the same map over MPI ranks", tour_mpi)
