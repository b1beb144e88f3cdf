/* SPDX-License-Identifier: MIT */
/*
 * pool_result.c - AsyncResult (Python's ApplyResult / MapResult), and the
 * completion of every job.
 *
 * A result is the job itself (struct cth_result, pool_internal.h). Its
 * `state` word goes JOB_PENDING -> (JOB_WAITED, once someone sleeps on it)
 * -> JOB_DONE; `outcome` and `value` are written before the release store
 * of JOB_DONE, so a reader that sees JOB_DONE (acquire) sees them. An async
 * result is held by its caller and by the pool, and the state word says
 * which lets go first, with no count of references: the pool lets go with
 * its JOB_DONE store (after the callbacks; it touches nothing after it but
 * the futex address), so a caller's free that sees JOB_DONE gives the memory
 * back to the pool's free list; a free that comes first stores JOB_DROPPED
 * instead, and the completer, seeing it, gives it back. A blocking job (apply, map, parallel-for) lives on its caller's stack:
 * after the JOB_DONE store the completer touches nothing but the futex
 * address. A failed job's outcome is its first failure's code (CTH_ETASK,
 * or on processes CTH_EWORKER, CTH_ETIMEDOUT, CTH_EPROTO) and that
 * failure's value stays in task_error; whoever reports CTH_ETASK or
 * CTH_EWORKER (get, the error callback) puts the value in its thread's
 * cth_task_error(). A buffer job's value is its result buffer, which the
 * result keeps until it is released (a failed job's is freed here).
 */
#include <stdlib.h>

#include "pool_internal.h"

/* Whether a failure code carries a value for cth_task_error(). */
static bool has_value(int code)
{
    return code == CTH_ETASK || code == CTH_EWORKER;
}

int cth__job_outcome(const struct cth_result *job)
{
    if (has_value(job->outcome))
        cth__task_failed(job->task_error);
    return job->outcome;
}

void cth__job_complete(struct cth_result *job)
{
    cth__job_release_data(job); /* a process pool's copy of its data: no longer read */
    if (job->kind == JOB_IMAP) {
        cth__imap_job_done(job);
        return;
    }
    job->outcome = atomic_load(&job->err);
    if (job->kind == JOB_BUFFER) {
        if (job->outcome != 0) {
            free(job->buf);
            job->buf = NULL;
            job->buf_size = 0;
        }
        job->value = job->buf;
    }
    if (job->is_async && job->has_cb) {
        if (job->outcome == 0 && job->cb.callback) {
            job->cb.callback(job->cb.cb_arg, job->value);
        } else if (job->outcome != 0 && job->cb.error_callback) {
            /* the callback sees the task's value in cth_task_error() (0 for
             * CTH_ECANCELED); the thread's own value comes back after it */
            int saved = cth_task_error();
            cth__task_failed(has_value(job->outcome) ? job->task_error : 0);
            job->cb.error_callback(job->cb.cb_arg, job->outcome);
            cth__task_failed(saved);
        }
    }
    uint32_t was = atomic_exchange_explicit(&job->state, JOB_DONE, memory_order_acq_rel);
    if (was == JOB_WAITED)
        cth__futex_wake(&job->state, INT32_MAX);
    else if (was == JOB_DROPPED) /* an async job its caller has freed */
        cth__result_release(job);
}

/* Wait with a validated timeout; a result already done needs neither the
 * deadline nor the wait (the get of a pipelined task, most often). */
static int result_wait(cth_result_t *res, double timeout)
{
    int err = cth__check_timeout(timeout);
    if (err)
        return err;
    if (atomic_load_explicit(&res->state, memory_order_acquire) == JOB_DONE)
        return 0;
    return cth__job_wait(res, cth__deadline(timeout));
}

CTH_API int cth_result_get(cth_result_t *res, void **value, double timeout)
{
    if (!res)
        return CTH_EINVAL;
    int err = result_wait(res, timeout);
    if (err)
        return err;
    if (res->outcome == 0 && value)
        *value = res->value;
    return cth__job_outcome(res);
}

CTH_API int cth_result_get_buffer(cth_result_t *res, void **out, size_t *out_size, double timeout)
{
    if (!res || res->kind != JOB_BUFFER)
        return CTH_EINVAL;
    int err = result_wait(res, timeout);
    if (err)
        return err;
    if (res->outcome == 0 && out)
        *out = res->buf;
    if (res->outcome == 0 && out_size)
        *out_size = res->buf_size;
    return cth__job_outcome(res);
}

CTH_API int cth_result_wait(cth_result_t *res, double timeout)
{
    if (!res)
        return CTH_EINVAL;
    return result_wait(res, timeout);
}

CTH_API bool cth_result_ready(const cth_result_t *res)
{
    return res &&
           atomic_load_explicit(CTH__ATOMIC_U32(&res->state), memory_order_acquire) == JOB_DONE;
}

CTH_API bool cth_result_successful(const cth_result_t *res)
{
    return cth_result_ready(res) && res->outcome == 0;
}

CTH_API int cth_result_task_error(const cth_result_t *res)
{
    if (!cth_result_ready(res) || !has_value(res->outcome))
        return 0;
    return res->task_error;
}

/* Done: the pool has let go, the memory goes now (no read-modify-write, as
 * for a result freed after its get). Not yet: the completer frees it. */
CTH_API void cth_result_free(cth_result_t *res)
{
    if (!res)
        return;
    uint32_t s = atomic_load_explicit(&res->state, memory_order_acquire);
    while (s != JOB_DONE)
        if (atomic_compare_exchange_weak_explicit(&res->state, &s, (uint32_t)JOB_DROPPED,
                                                  memory_order_release, memory_order_acquire))
            return;
    cth__result_release(res);
}
