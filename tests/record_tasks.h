/* SPDX-License-Identifier: MIT */
/*
 * record_tasks.h - record tasks (cth_pool_record_fn) and inputs that the
 * record-map tests of both backends share: the same functions on threads
 * and in worker processes. Include it after check.h.
 */
#ifndef CTH_TEST_RECORD_TASKS_H
#define CTH_TEST_RECORD_TASKS_H

/* an int in, its square as a long long out */
__attribute__((unused)) static int square(const void *in, void *out)
{
    int x = *(const int *)in;
    *(long long *)out = (long long)x * x;
    return 0;
}

/* square, but fails with -1000 - x for the x where x % 7 == 3 */
__attribute__((unused)) static int square_or_fail(const void *in, void *out)
{
    int x = *(const int *)in;
    if (x % 7 == 3)
        return -1000 - x;
    *(long long *)out = (long long)x * x;
    return 0;
}

/* The ints 0 .. n-1, from malloc (the caller frees them). */
__attribute__((unused)) static int *ints(size_t n)
{
    int *in = malloc(n * sizeof *in);
    CHECK(in != NULL);
    for (size_t i = 0; i < n; i++)
        in[i] = (int)i;
    return in;
}

#endif
