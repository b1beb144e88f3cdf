/*
 * pool_result.c - AsyncResult (Python's ApplyResult / MapResult), and the
 * completion of every job.
 *
 * A result is the job itself (struct cth_result, pool_internal.h). Its
 * `state` word goes JOB_PENDING -> (JOB_WAITED, once someone sleeps on it)
 * -> JOB_DONE; `outcome` and `value` are written before the release store
 * of JOB_DONE, so a reader that sees JOB_DONE (acquire) sees them. An async
 * result has two references, the caller's and the pool's; the pool's goes
 * when the job completes, after the callbacks and the wake-up, so whichever
 * drops the last one gives its memory back to the pool's free list. A blocking job (apply, map, parallel-for)
 * lives on its caller's stack: after the JOB_DONE store the completer
 * touches nothing but the futex address.
 */
#include "pool_internal.h"

static void result_unref(struct cth_result *job)
{
    if (atomic_fetch_sub(&job->refs, 1) == 1)
        cth__result_release(job);
}

void cth__job_complete(struct cth_result *job)
{
    if (job->kind == JOB_IMAP) {
        cth__imap_job_done(job);
        return;
    }
    job->outcome = atomic_load(&job->err);
    if (job->is_async) {
        if (job->outcome == 0 && job->cb.callback)
            job->cb.callback(job->value, job->cb.cb_arg);
        else if (job->outcome != 0 && job->cb.error_callback)
            job->cb.error_callback(job->outcome, job->cb.cb_arg);
    }
    bool is_async = job->is_async;
    if (atomic_exchange_explicit(&job->state, JOB_DONE, memory_order_acq_rel) == JOB_WAITED)
        cth__futex_wake(&job->state, INT32_MAX);
    if (is_async)
        result_unref(job);
}

/* Wait with a validated timeout. */
static int result_wait(cth_result_t *res, double timeout)
{
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    return cth__job_wait(res, deadline);
}

CTH_API int cth_result_get(cth_result_t *res, double timeout, void **value)
{
    if (!res)
        return CTH_EINVAL;
    int err = result_wait(res, timeout);
    if (err)
        return err;
    if (res->outcome == 0 && value)
        *value = res->value;
    return res->outcome;
}

CTH_API int cth_result_wait(cth_result_t *res, double timeout)
{
    if (!res)
        return CTH_EINVAL;
    return result_wait(res, timeout);
}

CTH_API bool cth_result_ready(const cth_result_t *res)
{
    return res && atomic_load_explicit(CTH__ATOMIC_U32(&res->state), memory_order_acquire) ==
                      JOB_DONE;
}

CTH_API int cth_result_successful(const cth_result_t *res)
{
    if (!res)
        return CTH_EINVAL;
    if (!cth_result_ready(res))
        return CTH_EAGAIN;
    return res->outcome == 0;
}

CTH_API void cth_result_free(cth_result_t *res)
{
    if (res)
        result_unref(res);
}
