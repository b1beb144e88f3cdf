/* SPDX-License-Identifier: MIT */
/*
 * test_pool_imap.c - the imap / imap_unordered iterators, over arrays and
 * producers. Each test names the CPython _TestPool test it mirrors.
 */
#include <stdatomic.h>

#include "check.h"

#define IV(x) ((void *)(intptr_t)(x))
#define VI(p) ((intptr_t)(p))

/* The 0.1.0 signatures, at compile time: the value before the timeout, the
 * producer's end flag. */
#define HAS_TYPE(x, type) _Generic((x), type : 1, default : 0)
_Static_assert(HAS_TYPE(&cth_imap_next, int (*)(cth_imap_t *, void **, double)),
               "cth_imap_next(it, &value, timeout)");
_Static_assert(HAS_TYPE((cth_imap_producer_fn)0, int (*)(void *, void **, bool *)),
               "producer(ctx, &item, &end)");

/* call fails with CTH_ETASK, value in the thread's cth_task_error() */
#define CHECK_TASK_FAILED(call, value)                                                             \
    do {                                                                                           \
        CHECK_EQ((call), CTH_ETASK);                                                               \
        CHECK_EQ(cth_task_error(), (value));                                                       \
    } while (0)

static int sqr(void *arg, void **result)
{
    intptr_t x = VI(arg);
    if (x % 5 == 0)
        cth_sleep(0.0005); /* some finish out of order */
    *result = IV(x * x);
    return 0;
}

static int fail_at_3(void *arg, void **result)
{
    if (VI(arg) == 3)
        return -33;
    *result = arg;
    return 0;
}

static int sleepy(void *arg, void **result)
{
    cth_sleep((double)VI(arg) / 1000.0);
    *result = arg;
    return 0;
}

static _Atomic int gate, gate_started;

/* item 0 counts itself started and waits until the gate opens */
static int gated_first(void *arg, void **result)
{
    if (VI(arg) == 0) {
        atomic_fetch_add(&gate_started, 1);
        while (!atomic_load(&gate))
            cth_sleep(0.001);
    }
    *result = arg;
    return 0;
}

static cth_pool_t *make_pool(size_t n)
{
    cth_pool_t *p;
    cth_pool_opts_t o = {.processes = n};
    CHECK_OK(cth_pool_create(&p, &o));
    return p;
}

/* test_imap: ordered; StopIteration after the last; 1000 items with
 * chunksize 100 */
CTH_TEST(imap)
{
    cth_pool_t *p = make_pool(4);
    enum { N = 1000 };
    static void *items[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    size_t chunks[] = {0, 1, 100, 7, SIZE_MAX};
    for (size_t k = 0; k < 5; k++) {
        cth_imap_t *it;
        CHECK_OK(cth_pool_imap(p, sqr, items, N, chunks[k], &it));
        for (int i = 0; i < N; i++) {
            void *v;
            CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
            CHECK_EQ(VI(v), i * i);
        }
        CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
        CHECK_EQ(cth_imap_next(it, NULL, 0), CTH_IMAP_END);
        cth_imap_free(it);
    }
    cth_pool_free(p);
}

/* test_imap_unordered: sorted results are correct (chunksize 1 and 100) */
CTH_TEST(imap_unordered)
{
    cth_pool_t *p = make_pool(4);
    enum { N = 1000 };
    static void *items[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    size_t chunks[] = {1, 100};
    for (size_t k = 0; k < 2; k++) {
        static char seen[N];
        memset(seen, 0, sizeof seen);
        cth_imap_t *it;
        CHECK_OK(cth_pool_imap_unordered(p, sqr, items, N, chunks[k], &it));
        for (int i = 0; i < N; i++) {
            void *v;
            CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
            intptr_t x = (intptr_t)sqrt((double)VI(v));
            CHECK_EQ(x * x, VI(v));
            CHECK(!seen[x]);
            seen[x] = 1;
        }
        CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);
    }
    cth_pool_free(p);
}

/* test_imap with a failing task: next() fails at that position, with
 * CTH_ETASK and the task's value in cth_task_error(), and the iteration
 * continues (chunksize 1) */
CTH_TEST(imap_task_error)
{
    cth_pool_t *p = make_pool(2);
    void *items[6] = {IV(0), IV(1), IV(2), IV(3), IV(4), IV(5)};
    cth_imap_t *it;
    CHECK_OK(cth_pool_imap(p, fail_at_3, items, 6, 1, &it));
    for (int i = 0; i < 6; i++) {
        void *v;
        int r = cth_imap_next(it, &v, CTH_FOREVER);
        if (i == 3) {
            CHECK_EQ(r, CTH_ETASK);
            CHECK_EQ(cth_task_error(), -33);
        } else {
            CHECK_OK(r);
            CHECK_EQ(VI(v), i);
        }
    }
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    /* unordered: the error arrives in the stream */
    CHECK_OK(cth_pool_imap_unordered(p, fail_at_3, items, 6, 1, &it));
    int errors = 0;
    for (int i = 0; i < 6; i++) {
        int r = cth_imap_next(it, NULL, CTH_FOREVER);
        CHECK(r == 0 || (r == CTH_ETASK && cth_task_error() == -33));
        errors += r == CTH_ETASK;
    }
    CHECK_EQ(errors, 1);
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    cth_pool_free(p);
}

/* fails with its argument as the value (0 succeeds, storing 0) */
static int return_arg(void *arg, void **result)
{
    *result = arg;
    return (int)VI(arg);
}

/* Any nonzero task return is a failure, -1 (not CTH_EPERM) and positive
 * values included, ordered and unordered, chunked or not: CTH_ETASK, the
 * value unchanged in cth_task_error(). */
CTH_TEST(imap_task_error_values)
{
    cth_pool_t *p = make_pool(2);
    int values[] = {-1, 1, 99};
    for (size_t k = 0; k < 3; k++) {
        void *items[4] = {IV(0), IV(0), IV(values[k]), IV(0)};
        for (int ordered = 0; ordered < 2; ordered++) {
            for (size_t cs = 1; cs <= 2; cs++) {
                cth_imap_t *it;
                if (ordered)
                    CHECK_OK(cth_pool_imap(p, return_arg, items, 4, cs, &it));
                else
                    CHECK_OK(cth_pool_imap_unordered(p, return_arg, items, 4, cs, &it));
                int r, ok = 0, failed = 0;
                while ((r = cth_imap_next(it, NULL, CTH_FOREVER)) != CTH_IMAP_END) {
                    if (r == CTH_ETASK) {
                        CHECK_EQ(cth_task_error(), values[k]);
                        failed++;
                    } else {
                        CHECK_OK(r);
                        ok++;
                    }
                }
                CHECK_EQ(failed, 1);
                /* chunksize 1: the 3 others; 2: the failing chunk yields
                 * once and ends the iteration, (in order) after chunk 0 */
                if (cs == 1)
                    CHECK_EQ(ok, 3);
                else if (ordered)
                    CHECK_EQ(ok, 2);
                cth_imap_free(it);
            }
        }
    }
    cth_pool_free(p);
}

/* stores its argument squared plus one (never NULL), nothing for odd ones */
static int sqr_or_nothing(void *arg, void **result)
{
    if (VI(arg) % 2 == 0)
        *result = IV(VI(arg) * VI(arg) + 1);
    return 0;
}

/* A task that stores nothing yields NULL, as map's slot (Python's None),
 * in every chunk size, ordered or not: never the value of the item run
 * before it in the same chunk. */
CTH_TEST(imap_task_storing_nothing)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 24 };
    void *items[N];
    for (int i = 0; i < N; i++)
        items[i] = IV(i);
    size_t chunks[] = {1, 2, 5, N};
    for (size_t k = 0; k < 4; k++) {
        for (int ordered = 0; ordered < 2; ordered++) {
            cth_imap_t *it;
            if (ordered)
                CHECK_OK(cth_pool_imap(p, sqr_or_nothing, items, N, chunks[k], &it));
            else
                CHECK_OK(cth_pool_imap_unordered(p, sqr_or_nothing, items, N, chunks[k], &it));
            int nulls = 0;
            for (int i = 0; i < N; i++) {
                void *v = IV(-1);
                CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
                if (ordered)
                    CHECK_EQ(VI(v), i % 2 ? 0 : i * i + 1);
                nulls += v == NULL;
            }
            CHECK_EQ(nulls, N / 2);
            CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
            cth_imap_free(it);
        }
    }
    cth_pool_free(p);
}

/* IMapIterator.next(timeout) raises TimeoutError after the timeout */
CTH_TEST(imap_timeout)
{
    cth_pool_t *p = make_pool(1);
    void *items[2] = {IV(400), IV(1)};
    cth_imap_t *it;
    CHECK_OK(cth_pool_imap(p, sleepy, items, 2, 1, &it));
    double t0 = check_now();
    CHECK_EQ(cth_imap_next(it, NULL, 0.1), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.1);
    CHECK_EQ(cth_imap_next(it, NULL, -3), CTH_EINVAL);
    CHECK_EQ(cth_imap_next(NULL, NULL, 0), CTH_EINVAL);
    void *v;
    CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
    CHECK_EQ(VI(v), 400);
    cth_imap_free(it); /* not consumed to the end */
    cth_imap_free(NULL);
    cth_pool_free(p);
}

/* test_empty_iterable: imap and imap_unordered of [] end at once; a closed
 * pool refuses new iterations */
CTH_TEST(imap_empty_and_closed)
{
    cth_pool_t *p = make_pool(2);
    cth_imap_t *it;
    CHECK_OK(cth_pool_imap(p, sqr, NULL, 0, 0, &it));
    CHECK_EQ(cth_imap_next(it, NULL, 0), CTH_IMAP_END);
    cth_imap_free(it);
    CHECK_OK(cth_pool_imap_unordered(p, sqr, NULL, 0, 0, &it));
    CHECK_EQ(cth_imap_next(it, NULL, 0), CTH_IMAP_END);
    cth_imap_free(it);
    CHECK_EQ(cth_pool_imap(p, NULL, NULL, 0, 0, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap(p, sqr, NULL, 3, 0, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_producer(p, sqr, NULL, NULL, 0, 0, &it), CTH_EINVAL);
    cth_pool_close(p);
    CHECK_EQ(cth_pool_imap(p, sqr, NULL, 0, 0, &it), CTH_EINVAL);
    cth_pool_free(p);
}

struct counter {
    long next, limit, fail_at;
    _Atomic long inflight_max;
    int fail_value; /* what the producer returns at fail_at (0: -44) */
};

static int produce(void *ctx, void **item, bool *end)
{
    struct counter *c = ctx;
    CHECK(!*end); /* false on entry */
    if (c->next == c->fail_at)
        return c->fail_value ? c->fail_value : -44;
    if (c->next == c->limit) {
        *end = true;
        return 0;
    }
    *item = IV(c->next++);
    return 0;
}

/* the departure (gh-84291): imap over a producer reads at most
 * max_inflight items ahead of the consumer */
CTH_TEST(imap_producer_bounded)
{
    cth_pool_t *p = make_pool(2);
    struct counter c = {0, 20000, -1, 0, 0};
    cth_imap_t *it;
    CHECK_OK(cth_pool_imap_producer(p, sqr, produce, &c, 1, 16, &it));
    CHECK(c.next <= 16);
    for (long i = 0; i < 20000; i++) {
        void *v;
        CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
        CHECK_EQ(VI(v), i * i);
        CHECK(c.next <= i + 1 + 16);
    }
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    /* the bound is rounded up to whole chunks: 6 with chunksize 4 is 8 */
    c = (struct counter){0, 1000, -1, 0, 0};
    CHECK_OK(cth_pool_imap_producer(p, sqr, produce, &c, 4, 6, &it));
    CHECK(c.next <= 8);
    for (long i = 0; i < 1000; i++) {
        void *v;
        CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
        CHECK_EQ(VI(v), i * i);
        CHECK(c.next <= i + 1 + 8);
    }
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    /* an endless producer, abandoned after a few items */
    struct counter endless = {0, -1, -1, 0, 0};
    CHECK_OK(cth_pool_imap_unordered_producer(p, sqr, produce, &endless, 4, 0, &it));
    for (int i = 0; i < 100; i++)
        CHECK_OK(cth_imap_next(it, NULL, CTH_FOREVER));
    cth_imap_free(it);
    CHECK(endless.next <= 100 + 4 * 2 * 4);
    cth_pool_free(p);
}

/* exception_throwing_generator(total, when): 0, 1, ... total - 1, failing
 * (SayWhenError: -44) where it would yield `when` (at once for -1). */
static struct counter say_when(long total, long when)
{
    return (struct counter){0, total, when < 0 ? 0 : when, 0, 0};
}

/* Python's sqr; item 4 raises ValueError (-55) for the task tests */
static int sqr_fail_at_4(void *arg, void **result)
{
    if (VI(arg) == 4)
        return -55;
    return sqr(arg, result);
}

/* test_imap_handle_iterable_exception: the input failing at its start, at 3
 * with chunksize 1 (3 values, then the error), and at 7 with chunksize 2 (6
 * values) and 4 (4 values): the error comes right after the last complete
 * chunk, the items read into the chunk it cut short being dropped
 * (_get_tasks, _guarded_task_generation); then the iteration ends. Beyond
 * CPython, with every bound on the items read ahead (rounded up to whole
 * chunks). */
CTH_TEST(imap_handle_iterable_exception)
{
    cth_pool_t *p = make_pool(4);
    cth_imap_t *it;
    /* SayWhenError seen at the very first of the iterable; again, to make
     * sure it's reentrant */
    for (int k = 0; k < 2; k++) {
        struct counter c = say_when(1, -1);
        CHECK_OK(cth_pool_imap_producer(p, sqr, produce, &c, 1, 0, &it));
        CHECK_TASK_FAILED(cth_imap_next(it, NULL, CTH_FOREVER), -44);
        CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);
    }
    /* SayWhenError seen at start of problematic chunk's results */
    struct {
        long total, when;
        size_t chunksize;
        int values;
    } cases[] = {{10, 3, 1, 3}, {20, 7, 2, 6}, {20, 7, 4, 4}};
    size_t bounds[] = {0, 1, 3, 5};
    for (size_t k = 0; k < 3; k++) {
        for (size_t b = 0; b < 4; b++) {
            struct counter c = say_when(cases[k].total, cases[k].when);
            CHECK_OK(
                cth_pool_imap_producer(p, sqr, produce, &c, cases[k].chunksize, bounds[b], &it));
            for (int i = 0; i < cases[k].values; i++) {
                void *v;
                CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
                CHECK_EQ(VI(v), i * i);
            }
            CHECK_TASK_FAILED(cth_imap_next(it, NULL, CTH_FOREVER), -44);
            CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
            CHECK_EQ(cth_imap_next(it, NULL, 0), CTH_IMAP_END);
            cth_imap_free(it);
        }
    }
    cth_pool_free(p);
}

/* The producer protocol: 0 with *end set ends the input (an item stored
 * with it is not used); any nonzero return, -1 (not CTH_EPERM) and positive
 * values included, is its failure: CTH_ETASK after the items before it,
 * the value in cth_task_error(), then the end. */
CTH_TEST(imap_producer_failure_and_end)
{
    cth_pool_t *p = make_pool(2);
    cth_imap_t *it;
    /* an empty input: the first call ends it */
    for (int ordered = 0; ordered < 2; ordered++) {
        struct counter c = {0, 0, -1, 0, 0};
        if (ordered)
            CHECK_OK(cth_pool_imap_producer(p, sqr, produce, &c, 1, 0, &it));
        else
            CHECK_OK(cth_pool_imap_unordered_producer(p, sqr, produce, &c, 3, 0, &it));
        CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);
    }
    /* 5 items then the end, chunks of 2: the last chunk is cut short */
    struct counter c = {0, 5, -1, 0, 0};
    CHECK_OK(cth_pool_imap_producer(p, sqr, produce, &c, 2, 0, &it));
    for (int i = 0; i < 5; i++) {
        void *v;
        CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
        CHECK_EQ(VI(v), i * i);
    }
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    /* failures: -1, 1, a large value; at once and after 3 items */
    int values[] = {-1, 1, 123456};
    for (size_t k = 0; k < 3; k++) {
        for (long when = 0; when <= 3; when += 3) {
            c = (struct counter){0, 10, when, 0, values[k]};
            CHECK_OK(cth_pool_imap_producer(p, sqr, produce, &c, 1, 0, &it));
            for (long i = 0; i < when; i++) {
                void *v;
                CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
                CHECK_EQ(VI(v), i * i);
            }
            CHECK_TASK_FAILED(cth_imap_next(it, NULL, CTH_FOREVER), values[k]);
            CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
            CHECK_EQ(cth_task_error(), values[k]); /* the end leaves it alone */
            cth_imap_free(it);
        }
    }
    cth_pool_free(p);
}

/* Take values from an unordered iterator until it fails with CTH_ETASK
 * and the producer's value: each must be the square of a distinct number
 * below total (expected_values). Returns how many came. */
static int unordered_until_error(cth_imap_t *it, long total, int value)
{
    static char seen[64];
    memset(seen, 0, sizeof seen);
    for (long i = 0; i < total; i++) {
        void *v;
        int r = cth_imap_next(it, &v, CTH_FOREVER);
        if (r == CTH_ETASK) {
            CHECK_EQ(cth_task_error(), value);
            return (int)i;
        }
        CHECK_OK(r);
        intptr_t x = (intptr_t)sqrt((double)VI(v));
        CHECK(x * x == VI(v) && x < total && !seen[x]);
        seen[x] = 1;
    }
    CHECK(!"no error"); /* with self.assertRaises(SayWhenError) */
    return -1;
}

/* test_imap_unordered_handle_iterable_exception: the error surfaces among
 * correct values. Then, as Python does: with chunksize 1 the
 * iteration goes on to the values before the error and ends; with
 * chunksize > 1 (a generator over the chunks) it ends at the error. */
CTH_TEST(imap_unordered_handle_iterable_exception)
{
    cth_pool_t *p = make_pool(4);
    cth_imap_t *it;
    for (int k = 0; k < 2; k++) {
        struct counter c = say_when(1, -1);
        CHECK_OK(cth_pool_imap_unordered_producer(p, sqr, produce, &c, 1, 0, &it));
        CHECK_TASK_FAILED(cth_imap_next(it, NULL, CTH_FOREVER), -44);
        CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);
    }
    struct counter c = say_when(10, 3);
    CHECK_OK(cth_pool_imap_unordered_producer(p, sqr, produce, &c, 1, 0, &it));
    int before = unordered_until_error(it, 10, -44);
    CHECK(before <= 3);
    for (; before < 3; before++)
        CHECK_OK(cth_imap_next(it, NULL, CTH_FOREVER));
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);

    c = say_when(20, 7);
    CHECK_OK(cth_pool_imap_unordered_producer(p, sqr, produce, &c, 2, 0, &it));
    CHECK(unordered_until_error(it, 20, -44) <= 6); /* item 6 was dropped */
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    cth_pool_free(p);
}

/* A failing task with chunksize > 1 (Python, probed: [0, 1, 2,
 * ValueError] for chunksize 3 and a failure at item 4): its chunk loses
 * all its items, its error comes in their place, and the iteration ends;
 * for arrays and producers. imap_unordered likewise: the error arrives in
 * completion order, no item of its chunk comes, and the iteration ends. */
CTH_TEST(imap_chunk_task_error)
{
    cth_pool_t *p = make_pool(4);
    static void *items[10];
    for (int i = 0; i < 10; i++)
        items[i] = IV(i);
    for (int producer = 0; producer < 2; producer++) {
        cth_imap_t *it;
        struct counter c = {0, 10, -1, 0, 0};
        if (producer)
            CHECK_OK(cth_pool_imap_producer(p, sqr_fail_at_4, produce, &c, 3, 0, &it));
        else
            CHECK_OK(cth_pool_imap(p, sqr_fail_at_4, items, 10, 3, &it));
        for (int i = 0; i < 3; i++) {
            void *v;
            CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
            CHECK_EQ(VI(v), i * i);
        }
        CHECK_TASK_FAILED(cth_imap_next(it, NULL, CTH_FOREVER), -55);
        CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);

        c = (struct counter){0, 10, -1, 0, 0};
        if (producer)
            CHECK_OK(cth_pool_imap_unordered_producer(p, sqr_fail_at_4, produce, &c, 3, 0, &it));
        else
            CHECK_OK(cth_pool_imap_unordered(p, sqr_fail_at_4, items, 10, 3, &it));
        char seen[10] = {0};
        int r;
        void *v;
        while ((r = cth_imap_next(it, &v, CTH_FOREVER)) == 0) {
            intptr_t x = (intptr_t)sqrt((double)VI(v));
            CHECK(x * x == VI(v) && x < 10 && !seen[x]);
            CHECK(x < 3 || x > 5); /* not of the failing chunk */
            seen[x] = 1;
        }
        CHECK_EQ(r, CTH_ETASK);
        CHECK_EQ(cth_task_error(), -55);
        CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);
    }
    cth_pool_free(p);
}

/* a closed pool finishes a producer iteration begun before close (Python
 * has read the input by then); terminate cancels what is left */
CTH_TEST(imap_close_terminate)
{
    cth_pool_t *p = make_pool(2);
    struct counter c = {0, 200, -1, 0, 0};
    cth_imap_t *it;
    CHECK_OK(cth_pool_imap_producer(p, sqr, produce, &c, 1, 8, &it));
    CHECK_OK(cth_pool_close(p));
    for (long i = 0; i < 200; i++) {
        void *v;
        CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
        CHECK_EQ(VI(v), i * i);
    }
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    cth_pool_free(p);

    /* one worker held on item 0: terminate cancels the 99 others */
    p = make_pool(1);
    static void *items[100];
    for (int i = 0; i < 100; i++)
        items[i] = IV(i);
    atomic_store(&gate, 0);
    atomic_store(&gate_started, 0);
    CHECK_OK(cth_pool_imap(p, gated_first, items, 100, 1, &it));
    while (!atomic_load(&gate_started))
        cth_sleep(0.001);
    CHECK_OK(cth_pool_terminate(p));
    atomic_store(&gate, 1);
    int cancelled = 0, n = 0, r;
    while ((r = cth_imap_next(it, NULL, CTH_FOREVER)) != CTH_IMAP_END) {
        CHECK(r == (n == 0 ? 0 : CTH_ECANCELED));
        cancelled += r == CTH_ECANCELED;
        n++;
    }
    CHECK_EQ(n, 100);
    CHECK_EQ(cancelled, 99);
    cth_imap_free(it);
    cth_pool_free(p);

    /* with chunksize > 1 a cancelled chunk fails as a failing task's does:
     * chunk 0 (running) gives its 10 values, then CTH_ECANCELED, the end */
    p = make_pool(1);
    atomic_store(&gate, 0);
    atomic_store(&gate_started, 0);
    CHECK_OK(cth_pool_imap(p, gated_first, items, 100, 10, &it));
    while (!atomic_load(&gate_started))
        cth_sleep(0.001);
    CHECK_OK(cth_pool_terminate(p));
    atomic_store(&gate, 1);
    for (int i = 0; i < 10; i++) {
        void *v;
        CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
        CHECK_EQ(VI(v), i);
    }
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_ECANCELED);
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    cth_pool_free(p);
}

/* departure: freeing a pool with live iterators is safe; a running pool is
 * terminated, so their queued items come out as CTH_ECANCELED, and they are
 * freed after the pool */
CTH_TEST(imap_outlives_pool)
{
    cth_pool_t *p = make_pool(1);
    static void *items[50];
    for (int i = 0; i < 50; i++)
        items[i] = IV(i);
    atomic_store(&gate, 0);
    atomic_store(&gate_started, 0);
    cth_imap_t *it, *prod;
    CHECK_OK(cth_pool_imap(p, gated_first, items, 50, 1, &it));
    struct counter c = {0, 1000000, -1, 0, 0};
    CHECK_OK(cth_pool_imap_producer(p, sqr, produce, &c, 1, 8, &prod));
    while (!atomic_load(&gate_started))
        cth_sleep(0.001);
    atomic_store(&gate, 1); /* item 0 may finish before or during the free */
    cth_pool_free(p);
    int n = 0, r;
    while ((r = cth_imap_next(it, NULL, CTH_FOREVER)) != CTH_IMAP_END) {
        CHECK(r == 0 || r == CTH_ECANCELED);
        CHECK(n > 0 || r == 0); /* item 0 had started: it ran */
        n++;
    }
    CHECK_EQ(n, 50);
    /* the producer iterator: its next reads are refused by the dead pool,
     * so it ends after what it had read (each value or CTH_ECANCELED) */
    n = 0;
    while ((r = cth_imap_next(prod, NULL, CTH_FOREVER)) != CTH_IMAP_END) {
        CHECK(r == 0 || r == CTH_ECANCELED);
        n++;
    }
    CHECK(n >= 8);
    cth_imap_free(it);
    cth_imap_free(prod);
}
