/* SPDX-License-Identifier: MIT */
/*
 * cthreading/mpi.h - the Pool over MPI ranks (mpi4py.futures'
 * MPICommExecutor), in its own library: libcthreading-mpi (pkg-config
 * cthreading-mpi; CMake find_package(cthreading COMPONENTS mpi), target
 * cthreading::cthreading-mpi). Built and installed only where MPI was found.
 *
 * Every rank of a communicator runs the same program and calls
 * cth_mpi_pool_create. At the root it returns a pool: a cth_pool_t of
 * backend CTH_POOL_MPI, on which the record and buffer calls of pool.h
 * (cth_pool_map_records and its twins, cth_pool_apply_buffer and its twin),
 * the AsyncResult, close, terminate, join and free work as on a process
 * pool; the pointer calls return CTH_ENOTSUP. At every other rank the call
 * serves tasks, each on that rank's own thread pool (map over ranks x
 * threads), until the root frees the pool, then returns CTH_MPI_WORKER.
 *
 * Tasks are named as on a process pool (every rank runs the same
 * executable, at the same path); records and buffers travel as MPI
 * messages; chunks are handed out on demand, a bounded number of requests in
 * flight per rank, so the fastest rank gets more. While every proxy is busy,
 * a request carries a batch of queued chunks (up to 256, while their input
 * stays under 64 KiB, fewer for chunks whose round trip is slow), and its
 * reply each chunk's own outcome: a failing task fails alone, with its own
 * value. A rank that dies takes the MPI job with it (MPI's rule).
 */
#ifndef CTHREADING_MPI_H
#define CTHREADING_MPI_H

#include <mpi.h>

#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What cth_mpi_pool_create returns at a rank that served as a worker (a
 * positive value, never an error code): the root has freed the pool; the
 * program goes on to MPI_Finalize. */
#define CTH_MPI_WORKER 1

/* Options of cth_mpi_pool_create; zero-initialised or NULL means the
 * defaults. Every rank should pass the same. */
typedef struct cth_mpi_opts {
    size_t threads;  /* each rank's own thread pool (and the root's, with
                        root_works); 0 = the CPUs that rank may run on */
    bool root_works; /* the root runs chunks too, on its own threads */
    size_t inflight; /* requests in flight per worker rank (each a batch of
                        chunks); 0 = 2 x its threads */
} cth_mpi_opts_t;

/*
 * cth_mpi_pool_create - mpi4py.futures.MPICommExecutor(comm, root): a pool
 * whose workers are the ranks of comm. Collective: every rank of comm calls
 * it (from one thread each), with the same root. MPI must be initialized
 * with MPI_THREAD_MULTIPLE (MPI_Init_thread). comm is duplicated (the
 * program's messages on comm never mix with the pool's).
 * At the root: returns 0 and *pool, a pool of backend CTH_POOL_MPI (see
 * cthreading/pool.h; free it with cth_pool_free, before MPI_Finalize: that
 * releases the other ranks). At any other rank: serves the root's tasks until the root frees
 * the pool, then returns CTH_MPI_WORKER with *pool NULL (Python's `with
 * MPICommExecutor() as executor:` yielding None there). Tasks are record
 * and buffer functions of the same executable (or of a library loaded at
 * the same path on every rank), looked up by name at each rank, never
 * trusted; a task's failure reaches the root as on the thread pool
 * (CTH_ETASK and its value); a message whose size or content does not match
 * what was agreed fails that task with CTH_EPROTO; terminate cancels what
 * is queued and in flight (CTH_ECANCELED; a task already running on a rank
 * finishes there first); task timeouts are not supported (CTH_ENOTSUP).
 * cth_pool_size gives the requests the pool can have in flight: every
 * worker rank's inflight, plus the root's threads with root_works (Python's
 * default chunksize is computed from it).
 * Returns, at every rank: CTH_EINVAL for NULL pool, MPI_COMM_NULL, a root
 * outside comm, or a communicator of one rank without root_works (with it,
 * the root's threads do all the work); CTH_EOVERFLOW for threads or
 * inflight above INT_MAX; CTH_ENOTSUP when MPI is not initialized (or
 * finalized) or gives less than MPI_THREAD_MULTIPLE; CTH_EPERM when called
 * while this process serves as a worker rank, or from a task of an MPI
 * pool at the root (a task creating a pool);
 * CTH_ENOMEM, CTH_EAGAIN (no thread); any rank's failure to start is every
 * rank's (one failing rank's code).
 */
CTH_API int cth_mpi_pool_create(MPI_Comm comm, int root, const cth_mpi_opts_t *opts,
                                cth_pool_t **pool);

#ifdef __cplusplus
}
#endif
#endif
