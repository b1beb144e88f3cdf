/* SPDX-License-Identifier: MIT */
/*
 * pool_map.c - multiprocessing.dummy's Pool: map (results in order),
 * imap_unordered (results as they come), apply_async with a callback and
 * an error_callback. Python:
 *
 *     with Pool(4) as p:
 *         p.map(square, range(1, 11))
 *         for r in p.imap_unordered(square, range(1, 101)): total += r
 *         p.apply_async(square, (7,), callback=show, error_callback=oops)
 */
#include <stdint.h>
#include <stdio.h>

#include <cthreading.h>

static int square(void *arg, void **result)
{
    long x = (long)(intptr_t)arg;
    *result = (void *)(intptr_t)(x * x);
    return 0;
}

static int refuse(void *arg, void **result)
{
    (void)result;
    return (int)(intptr_t)arg; /* nonzero: the task fails with this value */
}

static void show(void *cb_arg, void *value)
{
    printf("callback: %s -> %ld\n", (const char *)cb_arg, (long)(intptr_t)value);
}

static void oops(void *cb_arg, int err)
{
    printf("error_callback: %s -> %s, task value %d\n", (const char *)cb_arg, cth_err_name(err),
           cth_task_error());
}

int main(void)
{
    cth_pool_t *pool;
    cth_pool_opts_t opts = {.processes = 4};
    cth_pool_create(&pool, &opts);

    void *items[100], *squares[10];
    for (long i = 0; i < 100; i++)
        items[i] = (void *)(intptr_t)(i + 1);
    cth_pool_map(pool, square, items, 10, 0, squares);
    printf("map:");
    for (int i = 0; i < 10; i++)
        printf(" %ld", (long)(intptr_t)squares[i]);
    printf("\n");

    cth_imap_t *it;
    cth_pool_imap_unordered(pool, square, items, 100, 1, &it);
    long total = 0, count = 0;
    void *value;
    while (cth_imap_next(it, &value, CTH_FOREVER) == 0) { /* CTH_IMAP_END ends it */
        total += (long)(intptr_t)value;
        count++;
    }
    cth_imap_free(it);
    printf("imap_unordered: %ld results, sum of squares 1..100 = %ld\n", count, total);

    cth_result_t *ok, *bad;
    cth_result_opts_t cb = {.callback = show, .error_callback = oops, .cb_arg = "square(7)"};
    cth_pool_apply_async(pool, square, (void *)7, &cb, &ok);
    cth_result_wait(ok, CTH_FOREVER); /* the callback has run when wait returns */
    cb.cb_arg = "refuse(42)";
    cth_pool_apply_async(pool, refuse, (void *)42, &cb, &bad);
    printf("get: %s\n", cth_err_name(cth_result_get(bad, &value, CTH_FOREVER)));
    cth_result_free(ok);
    cth_result_free(bad);

    cth_pool_close(pool);
    cth_pool_join(pool, CTH_FOREVER);
    cth_pool_free(pool);
    return 0;
}
