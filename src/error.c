/* SPDX-License-Identifier: MIT */
/*
 * error.c - names and descriptions of the CTH_E* codes, the calling thread's
 * last task error, and the version. A static table and one thread-local int;
 * nothing to lock.
 */
#include "cthreading/base.h"
#include "task_error.h"

struct err_entry {
    int code;
    const char *name;
    const char *text;
};

static const struct err_entry err_table[] = {
    {CTH_OK, "CTH_OK", "success"},
    {CTH_EPERM, "CTH_EPERM", "operation not permitted in this state"},
    {CTH_EINTR, "CTH_EINTR", "interrupted"},
    {CTH_EAGAIN, "CTH_EAGAIN", "would block"},
    {CTH_ENOMEM, "CTH_ENOMEM", "out of memory"},
    {CTH_EINVAL, "CTH_EINVAL", "invalid argument"},
    {CTH_EDEADLK, "CTH_EDEADLK", "would deadlock"},
    {CTH_ENOENT, "CTH_ENOENT", "no such value"},
    {CTH_EOVERFLOW, "CTH_EOVERFLOW", "value too large"},
    {CTH_ETIMEDOUT, "CTH_ETIMEDOUT", "timed out"},
    {CTH_ECANCELED, "CTH_ECANCELED", "canceled"},
    {CTH_ENOTSUP, "CTH_ENOTSUP", "not supported"},
    {CTH_EPROTO, "CTH_EPROTO", "protocol error"},
    {CTH_EBROKEN, "CTH_EBROKEN", "broken barrier"},
    {CTH_ESHUTDOWN, "CTH_ESHUTDOWN", "shut down"},
    {CTH_ETASK, "CTH_ETASK", "the task failed"},
    {CTH_EWORKER, "CTH_EWORKER", "the worker process died"},
};

static const struct err_entry *err_find(int err)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (err_table[i].code == err)
            return &err_table[i];
    return NULL;
}

CTH_API const char *cth_strerror(int err)
{
    const struct err_entry *e = err_find(err);
    return e ? e->text : "unknown error";
}

CTH_API const char *cth_err_name(int err)
{
    const struct err_entry *e = err_find(err);
    return e ? e->name : "CTH_E?";
}

static _Thread_local int last_task_error;

CTH_API int cth_task_error(void)
{
    return last_task_error;
}

int cth__task_failed(int value)
{
    last_task_error = value;
    return CTH_ETASK;
}

CTH_API unsigned cth_version(void)
{
    return CTH_VERSION_HEX;
}

CTH_API const char *cth_version_string(void)
{
    return CTH_VERSION_STRING;
}
