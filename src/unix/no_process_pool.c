/* SPDX-License-Identifier: MIT */
/*
 * no_process_pool.c - the process backend in the POSIX build, which has
 * none (src/pool_process.c needs Linux: memfds, pidfds, process-shared
 * futexes): cth_pool_create refuses a process pool with CTH_ENOTSUP.
 */
#include "../pool_internal.h"

int cth__proc_pool_create(const cth_pool_opts_t *opts, size_t workers,
                          const struct cth__pool_ops **ops, void **state)
{
    CTH__UNUSED(opts);
    CTH__UNUSED(workers);
    CTH__UNUSED(ops);
    CTH__UNUSED(state);
    return CTH_ENOTSUP;
}
