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

/* a long long in, its square plus one out */
__attribute__((unused)) static int square_ll(const void *in, void *out)
{
    long long x = *(const long long *)in;
    *(long long *)out = x * x + 1;
    return 0;
}

/* Map square_ll over n long longs 0..n-1 from in into out on p, check every
 * result; returns the map's time in seconds. */
__attribute__((unused)) static double map_squares_checked(cth_pool_t *p, long long *in,
                                                          long long *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        in[i] = (long long)i;
    double t0 = check_now();
    CHECK_OK(cth_pool_map_records(p, square_ll, in, sizeof *in, n, 0, out, sizeof *out));
    double dt = check_now() - t0;
    for (size_t i = 0; i < n; i++)
        if (out[i] != (long long)i * (long long)i + 1)
            CHECK_EQ(out[i], (long long)i * (long long)i + 1);
    return dt;
}

#endif
