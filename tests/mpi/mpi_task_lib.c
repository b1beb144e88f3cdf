/* SPDX-License-Identifier: MIT */
/*
 * mpi_task_lib.c - a task that lives in a shared library of its own
 * (libmpi_task_lib.so), so test_mpi_pool sends a function named by a
 * library's path, not the executable's offset alone.
 */
#include <stdint.h>
#include <string.h>

__attribute__((visibility("default"))) int mpi_task_lib_negate(const void *in, void *out)
{
    int64_t v;
    memcpy(&v, in, sizeof v);
    v = -v;
    memcpy(out, &v, sizeof v);
    return 0;
}
