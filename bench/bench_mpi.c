/* SPDX-License-Identifier: MIT */
/*
 * bench_mpi.c - the pool over MPI ranks (libcthreading-mpi) beside
 * mpi4py.futures (MPICommExecutor, Debian's /usr/bin/python3 with mpi4py)
 * and beside the process pool, on this machine: 3 ranks (the root and 2
 * workers, 1 thread each) against a process pool of 2. Two measures: the
 * rate of empty apply_buffer_async tasks (submit them all, wait for all),
 * and the time of a map over 1M 8-byte records (8 bytes back each).
 *
 * Each MPI measurement is one mpirun of this program (`bench_mpi --rank
 * WHAT N`): rank 0 measures and prints the value, the other ranks serve.
 * The Python peer is one mpirun of python3 with the same shape. The
 * process pool runs in this process. Then the per-task overhead (the
 * inverse of the rate), the bytes moved per record (the records both ways
 * plus the headers of each chunk's two messages, from the chunk count the
 * pool chooses) and per empty task (its entry in a batched request and its
 * outcome in the reply, plus the batch's two headers) are printed.
 *
 * mpirun needs no tuning flag (such as --mca mpi_yield_when_idle): no rank
 * polls MPI for long, each backs off to sleeps (src/mpi/mpi_pool.c).
 */
#include <cthreading/mpi.h>
#include <stdint.h>

#include "bench.h"

#define PYTHON "/usr/bin/python3" /* Debian's, where python3-mpi4py lives */

static size_t apply_n = 20000;
static size_t map_n = 1000000;

static int empty_task(const void *in, size_t in_size, void **out, size_t *out_size)
{
    (void)in;
    (void)in_size;
    *out = NULL;
    *out_size = 0;
    return 0;
}

static int add_one(const void *in, void *out)
{
    *(uint64_t *)out = *(const uint64_t *)in + 1;
    return 0;
}

/* The rate of n empty buffer tasks on pool (tasks/s), NAN on a failure. */
static double apply_rate(cth_pool_t *pool, size_t n)
{
    cth_result_t **res = malloc(n * sizeof *res);
    if (!res)
        return NAN;
    double t0 = bench_now();
    size_t k = 0;
    for (; k < n; k++)
        if (cth_pool_apply_buffer_async(pool, empty_task, NULL, 0, NULL, &res[k]) != 0)
            break;
    bool ok = k == n;
    for (size_t i = 0; i < k; i++) {
        ok &= cth_result_get(res[i], NULL, CTH_FOREVER) == 0;
        cth_result_free(res[i]);
    }
    double secs = bench_now() - t0;
    free(res);
    return ok ? (double)n / secs : NAN;
}

/* The time of a map over n 8-byte records on pool (ms), NAN on a failure. */
static double map_ms(cth_pool_t *pool, size_t n)
{
    uint64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    double ms = NAN;
    if (in && out) {
        for (size_t i = 0; i < n; i++)
            in[i] = i;
        double t0 = bench_now();
        int err = cth_pool_map_records(pool, add_one, in, sizeof *in, n, 0, out, sizeof *out);
        ms = (bench_now() - t0) * 1e3;
        if (err || out[n - 1] != n)
            ms = NAN;
    }
    free(in);
    free(out);
    return ms;
}

/* `bench_mpi --rank apply|map N` under mpirun: rank 0 prints the value. */
static int as_rank(const char *what, size_t n)
{
    int provided = 0;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    cth_pool_t *pool;
    int err = cth_mpi_pool_create(MPI_COMM_WORLD, 0, &(cth_mpi_opts_t){.threads = 1}, &pool);
    if (err == 0) {
        double v = strcmp(what, "apply") == 0 ? apply_rate(pool, n) : map_ms(pool, n);
        printf("%.6g %zu\n", v, cth_pool_size(pool));
        cth_pool_free(pool);
    }
    MPI_Finalize();
    return err == 0 || err == CTH_MPI_WORKER ? 0 : 1;
}

static char self[4096];

struct mpi_run {
    const char *what;
    size_t n;
};

static double run_cth_mpi(void *ctx)
{
    const struct mpi_run *r = ctx;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s -np 3 %s '%s' --rank %s %zu 2>/dev/null", CTH_MPIEXEC,
             CTH_MPIEXEC_FLAGS, self, r->what, r->n);
    return bench_first_number(cmd);
}

/* The mpi4py.futures peer: the same shape, in Python. */
static const char *py_script = "import sys, time\n"
                               "from mpi4py import MPI\n"
                               "from mpi4py.futures import MPICommExecutor\n"
                               "def empty(b): return b''\n"
                               "def add_one(x): return x + 1\n"
                               "what, n = sys.argv[1], int(sys.argv[2])\n"
                               "with MPICommExecutor(MPI.COMM_WORLD, root=0) as ex:\n"
                               "    if ex is not None:\n"
                               "        if what == 'apply':\n"
                               "            t = time.perf_counter()\n"
                               "            fs = [ex.submit(empty, b'') for _ in range(n)]\n"
                               "            for f in fs: f.result()\n"
                               "            print(n / (time.perf_counter() - t))\n"
                               "        else:\n"
                               "            xs = list(range(n))\n"
                               "            t = time.perf_counter()\n"
                               "            r = list(ex.map(add_one, xs, chunksize=n // 8 + 1))\n"
                               "            print((time.perf_counter() - t) * 1e3)\n";

static char py_path[64];

static double run_mpi4py(void *ctx)
{
    const struct mpi_run *r = ctx;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s -np 3 %s %s %s %s %zu 2>/dev/null", CTH_MPIEXEC,
             CTH_MPIEXEC_FLAGS, PYTHON, py_path, r->what, r->n);
    return bench_first_number(cmd);
}

static double run_processes(void *ctx)
{
    const struct mpi_run *r = ctx;
    cth_pool_t *pool;
    cth_pool_opts_t o = {.processes = 2, .backend = CTH_POOL_PROCESSES};
    if (cth_pool_create(&pool, &o) != 0)
        return NAN;
    double v = strcmp(r->what, "apply") == 0 ? apply_rate(pool, r->n) : map_ms(pool, r->n);
    cth_pool_free(pool);
    return v;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--rank") == 0)
        return as_rank(argv[2], (size_t)strtoull(argv[3], NULL, 10));
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return 1;
    self[len] = '\0';
    int reps = bench_reps();
    if (bench_quick()) {
        apply_n = 2000;
        map_n = 100000;
        reps = 1;
    }
    snprintf(py_path, sizeof py_path, "/tmp/cth_bench_mpi_XXXXXX");
    int fd = mkstemp(py_path);
    if (fd < 0 || write(fd, py_script, strlen(py_script)) != (ssize_t)strlen(py_script))
        return 1;
    close(fd);

    struct mpi_run apply = {"apply", apply_n}, map = {"map", map_n};
    double rate[3], ms[3];
    char title[128];
    snprintf(title, sizeof title, "MPI pool: 3 ranks (root + 2 workers x 1 thread), processes: 2");
    bench_heading(title);
    struct bench_system asys[] = {{"cthreading MPI pool", run_cth_mpi, &apply},
                                  {"mpi4py.futures", run_mpi4py, &apply},
                                  {"cthreading process pool", run_processes, &apply}};
    bench_compare("mpi empty apply_buffer_async", "rate", "tasks/s", asys, 3, reps, rate);
    struct bench_system msys[] = {{"cthreading MPI pool", run_cth_mpi, &map},
                                  {"mpi4py.futures", run_mpi4py, &map},
                                  {"cthreading process pool", run_processes, &map}};
    char name[64];
    snprintf(name, sizeof name, "mpi map %zu 8-byte records", map_n);
    bench_compare(name, "time", "ms", msys, 3, reps, ms);
    unlink(py_path);

    /* The wire format (src/mpi/mpi_pool.c): a request is a 24-byte header
     * and a 40-byte entry per chunk (then the function's path, none for the
     * executable's own), a reply a 32-byte header and a 16-byte outcome per
     * chunk. The root's pool has 4 slots (2 per worker rank): the map's
     * chunks are ceil(n / 16) records, each over 64 KiB, so each travels
     * alone; empty tasks travel in batches of up to 256. */
    size_t chunks = 16;
    double lone = 24.0 + 40.0 + 32.0 + 16.0;
    printf(
        "  per-task overhead: %.1f us (MPI pool), %.1f us (mpi4py.futures), %.1f us (processes)\n",
        1e6 / rate[0], 1e6 / rate[1], 1e6 / rate[2]);
    printf("  bytes moved per record (MPI map): 16 (8 in, 8 out) + %.4f of headers\n",
           lone * (double)chunks / (double)map_n);
    printf("  bytes moved per empty task (MPI apply): 56 (entry and outcome) + 56 per batch "
           "(%.2f at 256 a batch)\n",
           56.0 + 56.0 / 256);
    printf("  task rate vs mpi4py.futures: %.1fx (goal >= 50x); map time vs processes: %.2fx "
           "(goal <= 3x)\n",
           rate[0] / rate[1], ms[0] / ms[2]);
    return 0;
}
