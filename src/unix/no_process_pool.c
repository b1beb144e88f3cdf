/* SPDX-License-Identifier: MIT */
/*
 * no_process_pool.c - the process pool's hooks in the POSIX build, which
 * has no process pool (src/pool_process.c needs Linux: memfds, pidfds,
 * process-shared futexes): cth_pool_create refuses one with CTH_ENOTSUP,
 * so no pool ever has a process side and the other hooks never run.
 */
#include "../pool_internal.h"

int cth__proc_pool_create(const cth_pool_opts_t *opts, size_t workers, struct cth__proc_pool **pp)
{
    CTH__UNUSED(opts);
    CTH__UNUSED(workers);
    CTH__UNUSED(pp);
    return CTH_ENOTSUP;
}

int cth__proc_pool_started(struct cth__proc_pool *pp)
{
    CTH__UNUSED(pp);
    return CTH_ENOTSUP;
}

void cth__proc_pool_terminate(struct cth__proc_pool *pp)
{
    CTH__UNUSED(pp);
}

void cth__proc_pool_free(struct cth__proc_pool *pp)
{
    CTH__UNUSED(pp);
}

void cth__proc_pool_fork_prepare(struct cth__proc_pool *pp)
{
    CTH__UNUSED(pp);
}

void cth__proc_pool_fork_parent(struct cth__proc_pool *pp)
{
    CTH__UNUSED(pp);
}

void cth__proc_pool_fork_child(struct cth__proc_pool *pp)
{
    CTH__UNUSED(pp);
}

bool cth__proc_proxy_start(struct cth__proc_pool *pp)
{
    CTH__UNUSED(pp);
    return false;
}

void cth__proc_proxy_stop(void)
{
}

int cth__proc_job_prepare(struct cth__proc_pool *pp, struct cth_result *job)
{
    CTH__UNUSED(pp);
    CTH__UNUSED(job);
    return CTH_ENOTSUP;
}

void cth__proc_run_items(struct cth_result *job, size_t lo, size_t hi)
{
    CTH__UNUSED(job);
    CTH__UNUSED(lo);
    CTH__UNUSED(hi);
}

void cth__proc_job_release(struct cth_result *job)
{
    CTH__UNUSED(job);
}
