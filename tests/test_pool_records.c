/* SPDX-License-Identifier: MIT */
/*
 * test_pool_records.c - the record and buffer calls on the thread backend:
 * cth_pool_map_records (and _async), the record imaps, cth_pool_apply_buffer
 * (and _async, cth_result_get_buffer), their failures, callbacks, buffer
 * ownership (run under ASan, a leak or a double free fails), terminate and
 * close, allocation failures, every bad argument, and the new pool
 * options. The codes only a process pool produces (CTH_EWORKER, ...) are
 * checked here on a job failed by hand (cth__job_fail); the same calls on
 * processes are in test_pool_process.c.
 */
#include <math.h>
#include <stdatomic.h>

#include "alloc.h"
#include "check.h"
#include "pool_internal.h"
#include "record_tasks.h"

#define N_INTS 100000

/* The 0.1.0 shapes, at compile time: inputs, then outputs, then the result. */
#define HAS_TYPE(x, type) _Generic((x), type : 1, default : 0)
_Static_assert(HAS_TYPE((cth_pool_record_fn)0, int (*)(const void *, void *)), "fn(in, out)");
_Static_assert(HAS_TYPE((cth_pool_buffer_fn)0, int (*)(const void *, size_t, void **, size_t *)),
               "fn(in, in_size, &out, &out_size)");
_Static_assert(HAS_TYPE(&cth_pool_map_records,
                        int (*)(cth_pool_t *, cth_pool_record_fn, const void *, size_t, size_t,
                                size_t, void *, size_t)),
               "cth_pool_map_records(pool, fn, in, in_size, n, chunksize, out, out_size)");

static cth_pool_t *make_pool(size_t workers)
{
    cth_pool_t *p = NULL;
    CHECK_OK(cth_pool_create(&p, &(cth_pool_opts_t){.processes = workers}));
    CHECK(p != NULL);
    return p;
}

static _Atomic long calls;

/* counts its calls; checks it got NULL for a 0-byte output */
static int count_no_out(const void *in, void *out)
{
    CHECK(in != NULL);
    CHECK(out == NULL);
    atomic_fetch_add(&calls, 1);
    return 0;
}

/* no input (NULL for 0 bytes): writes 42 */
static int no_in(const void *in, void *out)
{
    CHECK(in == NULL);
    *(int *)out = 42;
    return 0;
}

/* A map over 100k ints, no pointer array and no cast: every item checked,
 * for the default chunksize and others (1, uneven, one chunk, beyond n). */
CTH_TEST(map_ints)
{
    cth_pool_t *p = make_pool(4);
    int *in = ints(N_INTS);
    long long *out = malloc(N_INTS * sizeof *out);
    CHECK(out != NULL);
    static const size_t chunksizes[] = {0, 1, 7, 1000, N_INTS, 3 * N_INTS};
    for (size_t c = 0; c < sizeof chunksizes / sizeof chunksizes[0]; c++) {
        size_t n = chunksizes[c] == 1 ? N_INTS / 10 : N_INTS; /* chunksize 1: fewer items */
        memset(out, 0xff, N_INTS * sizeof *out);
        CHECK_OK(
            cth_pool_map_records(p, square, in, sizeof *in, n, chunksizes[c], out, sizeof *out));
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(out[i], (long long)i * (long long)i);
        if (n < N_INTS)
            CHECK_EQ(out[n], -1); /* nothing written beyond n */
    }
    free(in);
    free(out);
    cth_pool_free(p);
}

struct odd {
    char bytes[13]; /* an odd size: records are not aligned */
};

static int reverse13(const void *in, void *out)
{
    const struct odd *a = in;
    struct odd b;
    for (int i = 0; i < 13; i++)
        b.bytes[i] = a->bytes[12 - i];
    memcpy(out, &b, sizeof b);
    return 0;
}

/* Records of any size; one of 0 bytes passes NULL; n = 0 returns at once. */
CTH_TEST(map_sizes)
{
    cth_pool_t *p = make_pool(3);
    enum { N = 5000 };
    struct odd *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    CHECK(in && out);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 13; j++)
            in[i].bytes[j] = (char)(i + j);
    CHECK_OK(cth_pool_map_records(p, reverse13, in, sizeof *in, N, 3, out, sizeof *out));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 13; j++)
            CHECK_EQ(out[i].bytes[j], (char)(i + 12 - j));

    /* out_size 0: fn gets NULL, out may be NULL */
    atomic_store(&calls, 0);
    CHECK_OK(cth_pool_map_records(p, count_no_out, in, sizeof *in, N, 0, NULL, 0));
    CHECK_EQ(atomic_load(&calls), N);
    atomic_store(&calls, 0);
    CHECK_OK(cth_pool_map_records(p, count_no_out, in, sizeof *in, N, 1, out, 0));
    CHECK_EQ(atomic_load(&calls), N);
    /* in_size 0: fn gets NULL, in may be NULL */
    int *res = calloc(N, sizeof *res);
    CHECK(res != NULL);
    CHECK_OK(cth_pool_map_records(p, no_in, NULL, 0, N, 0, res, sizeof *res));
    for (int i = 0; i < N; i++)
        CHECK_EQ(res[i], 42);
    /* n = 0: nothing runs, NULL arrays are fine */
    CHECK_OK(cth_pool_map_records(p, square, NULL, sizeof(int), 0, 0, NULL, sizeof(long long)));
    free(res);
    free(in);
    free(out);
    cth_pool_free(p);
}

/* test_map_unpicklable's shape: failing items give CTH_ETASK once every
 * chunk has finished, the first failure's value in cth_task_error(); the
 * other chunks ran whole; a chunk stops at its first failing item. */
CTH_TEST(map_error)
{
    cth_pool_t *p = make_pool(4);
    enum { N = 7000 };
    int *in = ints(N);
    long long *out = malloc(N * sizeof *out);
    CHECK(out != NULL);
    for (size_t chunksize = 1; chunksize <= 10; chunksize += 9) {
        memset(out, 0xff, N * sizeof *out);
        CHECK_EQ(
            cth_pool_map_records(p, square_or_fail, in, sizeof *in, N, chunksize, out, sizeof *out),
            CTH_ETASK);
        int v = cth_task_error();
        CHECK(v <= -1003 && (-1000 - v) % 7 == 3); /* one of the failures */
        for (size_t lo = 0; lo < N; lo += chunksize) {
            size_t hi = lo + chunksize < N ? lo + chunksize : N;
            size_t fail = lo; /* the chunk's first failing item, or hi */
            while (fail < hi && fail % 7 != 3)
                fail++;
            for (size_t i = lo; i < hi; i++) /* the items from it on never ran */
                CHECK_EQ(out[i], i < fail ? (long long)i * (long long)i : -1);
        }
    }
    /* the pool goes on */
    CHECK_OK(cth_pool_map_records(p, square, in, sizeof *in, N, 0, out, sizeof *out));
    CHECK_EQ(out[N - 1], (long long)(N - 1) * (N - 1));
    free(in);
    free(out);
    cth_pool_free(p);
}

struct cbs {
    _Atomic int ok, fail;
    _Atomic(void *) value;
    _Atomic int err, task_error;
};

static void on_ok(void *arg, void *value)
{
    struct cbs *c = arg;
    atomic_store(&c->value, value);
    atomic_fetch_add(&c->ok, 1);
}

static void on_fail(void *arg, int err)
{
    struct cbs *c = arg;
    atomic_store(&c->err, err);
    atomic_store(&c->task_error, cth_task_error());
    atomic_fetch_add(&c->fail, 1);
}

/* map_async over records: get's value and the callback's is out; a failure
 * reaches the error_callback with the value in cth_task_error(); an empty
 * map is ready at once, its callback included. */
CTH_TEST(map_async)
{
    cth_pool_t *p = make_pool(3);
    enum { N = 20000 };
    int *in = ints(N);
    long long *out = malloc(N * sizeof *out);
    CHECK(out != NULL);
    struct cbs c = {0};
    cth_result_opts_t o = {.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
    cth_result_t *r;
    CHECK_OK(cth_pool_map_records_async(p, square, in, sizeof *in, N, 0, &o, out, sizeof *out, &r));
    void *value = NULL;
    CHECK_OK(cth_result_get(r, &value, CTH_FOREVER));
    CHECK(value == out);
    CHECK(cth_result_successful(r));
    CHECK_EQ(cth_result_task_error(r), 0);
    cth_result_free(r);
    for (int i = 0; i < N; i++)
        CHECK_EQ(out[i], (long long)i * i);
    CHECK_EQ(atomic_load(&c.ok), 1);
    CHECK(atomic_load(&c.value) == out);

    CHECK_OK(cth_pool_map_records_async(p, square_or_fail, in, sizeof *in, N, 5, &o, out,
                                        sizeof *out, &r));
    CHECK_EQ(cth_result_get(r, &value, CTH_FOREVER), CTH_ETASK);
    int v = cth_task_error();
    CHECK((-1000 - v) % 7 == 3);
    CHECK_EQ(cth_result_task_error(r), v);
    CHECK(!cth_result_successful(r));
    cth_result_free(r);
    CHECK_EQ(atomic_load(&c.fail), 1);
    CHECK_EQ(atomic_load(&c.err), CTH_ETASK);
    CHECK_EQ(atomic_load(&c.task_error), v);

    CHECK_OK(
        cth_pool_map_records_async(p, square, NULL, sizeof *in, 0, 0, &o, NULL, sizeof *out, &r));
    CHECK(cth_result_ready(r));
    CHECK_EQ(atomic_load(&c.ok), 2);
    cth_result_free(r);
    free(in);
    free(out);
    cth_pool_free(p);
}

/* a buffer task: the input reversed, in a buffer of its own */
static int reverse(const void *in, size_t in_size, void **out, size_t *out_size)
{
    CHECK(*out == NULL && *out_size == 0);
    CHECK((in == NULL) == (in_size == 0));
    if (in_size == 0)
        return 0;
    unsigned char *b = malloc(in_size);
    if (!b)
        return 12;
    for (size_t i = 0; i < in_size; i++)
        b[i] = ((const unsigned char *)in)[in_size - 1 - i];
    *out = b;
    *out_size = in_size;
    return 0;
}

/* stores a buffer, then fails with the input's first byte (under ASan, the
 * buffer must not leak) */
static int fail_with_buffer(const void *in, size_t in_size, void **out, size_t *out_size)
{
    *out = malloc(100);
    *out_size = 100;
    return in_size ? ((const unsigned char *)in)[0] : 1;
}

/* a 0-length buffer that is not NULL: reported as NULL, and freed */
static int empty_malloc(const void *in, size_t in_size, void **out, size_t *out_size)
{
    (void)in;
    (void)in_size;
    *out = malloc(1);
    *out_size = 0;
    return 0;
}

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    CHECK(b != NULL);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 131 + (i >> 12));
    return b;
}

static void check_reversed(const unsigned char *in, size_t n, const unsigned char *out)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] != in[n - 1 - i])
            CHECK_EQ(out[i], in[n - 1 - i]);
}

/* apply with bytes: 0 bytes, a few, several MiB; the buffer is the
 * caller's (freed here: ASan sees a double free or a leak); NULL out frees
 * it; a failing task's buffer goes. */
CTH_TEST(apply_buffer)
{
    cth_pool_t *p = make_pool(2);
    static const size_t sizes[] = {0, 1, 100, 65536, 65537, 8u << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *in = pattern(n);
        void *out = (void *)1;
        size_t out_size = 12345;
        CHECK_OK(cth_pool_apply_buffer(p, reverse, n ? in : NULL, n, &out, &out_size));
        CHECK_EQ(out_size, n);
        CHECK((out == NULL) == (n == 0));
        check_reversed(in, n, out);
        free(out);
        CHECK_OK(cth_pool_apply_buffer(p, reverse, n ? in : NULL, n, NULL, &out_size));
        CHECK_EQ(out_size, n);
        CHECK_OK(cth_pool_apply_buffer(p, reverse, n ? in : NULL, n, NULL, NULL));
        free(in);
    }
    void *out = (void *)1;
    size_t out_size = 7;
    CHECK_OK(cth_pool_apply_buffer(p, empty_malloc, NULL, 0, &out, &out_size));
    CHECK(out == NULL);
    CHECK_EQ(out_size, 0);
    unsigned char fail = 77;
    out = (void *)1;
    CHECK_EQ(cth_pool_apply_buffer(p, fail_with_buffer, &fail, 1, &out, &out_size), CTH_ETASK);
    CHECK_EQ(cth_task_error(), 77);
    CHECK(out == (void *)1); /* untouched */
    cth_pool_free(p);
}

static void check_buffer_cb(void *arg, void *value)
{
    /* the callback's value is the buffer, readable here */
    const unsigned char *b = value;
    CHECK(b != NULL && b[0] == ((const unsigned char *)arg)[99]);
}

/* apply_async with bytes: the result keeps the buffer (get_buffer, get,
 * the callback), cth_result_free frees it; a failing task's result has
 * none; get_buffer refuses another call's result. */
CTH_TEST(apply_buffer_async)
{
    cth_pool_t *p = make_pool(2);
    enum { N = 64 };
    unsigned char *in = pattern(100);
    cth_result_t *r[N];
    cth_result_opts_t o = {.callback = check_buffer_cb, .cb_arg = in};
    for (int i = 0; i < N; i++)
        CHECK_OK(cth_pool_apply_buffer_async(p, reverse, in, 100, &o, &r[i]));
    for (int i = 0; i < N; i++) {
        void *out = NULL, *value = NULL;
        size_t out_size = 0;
        CHECK_OK(cth_result_get_buffer(r[i], &out, &out_size, CTH_FOREVER));
        CHECK_EQ(out_size, 100);
        check_reversed(in, 100, out);
        CHECK_OK(cth_result_get(r[i], &value, CTH_FOREVER));
        CHECK(value == out);
        CHECK_OK(cth_result_get_buffer(r[i], NULL, NULL, 0)); /* any number of times */
        if (i % 2)
            cth_result_free(r[i]); /* the buffer goes with it */
    }
    for (int i = 0; i < N; i += 2)
        cth_result_free(r[i]);

    /* freed before it is ready: the buffer goes when the task ends (its
     * input must stay valid until then: see the end) */
    unsigned char *big = pattern(1u << 20);
    for (int i = 0; i < 8; i++) {
        CHECK_OK(cth_pool_apply_buffer_async(p, reverse, big, 1u << 20, NULL, &r[i]));
        if (i % 2 == 0)
            cth_result_free(r[i]);
    }
    for (int i = 1; i < 8; i += 2) {
        CHECK_OK(cth_result_wait(r[i], CTH_FOREVER));
        cth_result_free(r[i]);
    }

    /* an empty buffer, and a failing task */
    cth_result_t *e;
    CHECK_OK(cth_pool_apply_buffer_async(p, reverse, NULL, 0, NULL, &e));
    void *out = (void *)1;
    size_t out_size = 1;
    CHECK_OK(cth_result_get_buffer(e, &out, &out_size, CTH_FOREVER));
    CHECK(out == NULL);
    CHECK_EQ(out_size, 0);
    cth_result_free(e);
    struct cbs c = {0};
    cth_result_opts_t fo = {.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
    unsigned char fail = 9;
    CHECK_OK(cth_pool_apply_buffer_async(p, fail_with_buffer, &fail, 1, &fo, &e));
    out = (void *)1;
    CHECK_EQ(cth_result_get_buffer(e, &out, &out_size, CTH_FOREVER), CTH_ETASK);
    CHECK_EQ(cth_task_error(), 9);
    CHECK(out == (void *)1);
    CHECK_EQ(cth_result_task_error(e), 9);
    CHECK_EQ(atomic_load(&c.fail), 1);
    CHECK_EQ(atomic_load(&c.task_error), 9);
    cth_result_free(e);

    /* get_buffer belongs to the buffer calls */
    int x = 3;
    long long y;
    CHECK_OK(cth_pool_map_records_async(p, square, &x, sizeof x, 1, 0, NULL, &y, sizeof y, &e));
    CHECK_EQ(cth_result_get_buffer(e, &out, &out_size, CTH_FOREVER), CTH_EINVAL);
    CHECK_OK(cth_result_get(e, NULL, CTH_FOREVER));
    CHECK_EQ(y, 9);
    cth_result_free(e);
    /* the inputs of the tasks freed early stay valid until those are done */
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    free(big);
    free(in);
    cth_pool_free(p);
}

/* imap over records: values in input order, each the item's own place in
 * out, so its index is (value - out) / out_size. */
CTH_TEST(imap_records)
{
    cth_pool_t *p = make_pool(4);
    enum { N = 10000 };
    int *in = ints(N);
    long long *out = malloc(N * sizeof *out);
    CHECK(out != NULL);
    static const size_t chunksizes[] = {0, 1, 3, 64, N};
    for (size_t c = 0; c < sizeof chunksizes / sizeof chunksizes[0]; c++) {
        cth_imap_t *it;
        CHECK_OK(cth_pool_imap_records(p, square, in, sizeof *in, N, chunksizes[c], out,
                                       sizeof *out, &it));
        void *v;
        for (size_t i = 0; i < N; i++) {
            CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
            CHECK(v == &out[i]);
            CHECK_EQ(((char *)v - (char *)out) / sizeof *out, i);
            CHECK_EQ(*(long long *)v, (long long)i * i);
        }
        CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);
    }
    /* out_size 0: n values, each NULL */
    cth_imap_t *it;
    atomic_store(&calls, 0);
    CHECK_OK(cth_pool_imap_records(p, count_no_out, in, sizeof *in, 100, 1, NULL, 0, &it));
    void *v = (void *)1;
    for (int i = 0; i < 100; i++) {
        CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
        CHECK(v == NULL);
    }
    CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    CHECK_EQ(atomic_load(&calls), 100);
    /* n = 0: the end at once */
    CHECK_OK(cth_pool_imap_records(p, square, NULL, sizeof *in, 0, 1, NULL, sizeof *out, &it));
    CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    free(in);
    free(out);
    cth_pool_free(p);
}

/* imap's failures over records: with chunksize 1, CTH_ETASK at the item's
 * position and the iteration goes on; with chunksize > 1 the failing
 * chunk's one outcome, then the end. */
CTH_TEST(imap_records_error)
{
    cth_pool_t *p = make_pool(3);
    enum { N = 100 };
    int *in = ints(N);
    long long out[N];
    cth_imap_t *it;
    CHECK_OK(
        cth_pool_imap_records(p, square_or_fail, in, sizeof *in, N, 1, out, sizeof out[0], &it));
    void *v;
    for (int i = 0; i < N; i++) {
        if (i % 7 == 3) {
            CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_ETASK);
            CHECK_EQ(cth_task_error(), -1000 - i);
        } else {
            CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
            CHECK(v == &out[i]);
            CHECK_EQ(out[i], (long long)i * i);
        }
    }
    CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);

    /* chunksize 2: items 0, 1 fine; chunk [2, 4) fails at 3 */
    CHECK_OK(
        cth_pool_imap_records(p, square_or_fail, in, sizeof *in, N, 2, out, sizeof out[0], &it));
    CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
    CHECK(v == &out[0]);
    CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
    CHECK(v == &out[1]);
    CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_ETASK);
    CHECK_EQ(cth_task_error(), -1003);
    CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);

    /* unordered, chunksize 1: every item once, failures included */
    CHECK_OK(cth_pool_imap_unordered_records(p, square_or_fail, in, sizeof *in, N, 1, out,
                                             sizeof out[0], &it));
    int failures = 0;
    for (int i = 0; i < N; i++) {
        int err = cth_imap_next(it, &v, CTH_FOREVER);
        if (err == CTH_ETASK)
            failures++;
        else
            CHECK_OK(err);
    }
    CHECK_EQ(failures, (N + 3) / 7);
    CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    free(in);
    cth_pool_free(p);
}

/* imap_unordered over records: every item exactly once, each value still
 * its own place in out. */
CTH_TEST(imap_unordered_records)
{
    cth_pool_t *p = make_pool(4);
    enum { N = 20000 };
    int *in = ints(N);
    long long *out = malloc(N * sizeof *out);
    bool *seen = calloc(N, sizeof *seen);
    CHECK(out && seen);
    static const size_t chunksizes[] = {1, 5, 1000};
    for (size_t c = 0; c < sizeof chunksizes / sizeof chunksizes[0]; c++) {
        memset(seen, 0, N * sizeof *seen);
        cth_imap_t *it;
        CHECK_OK(cth_pool_imap_unordered_records(p, square, in, sizeof *in, N, chunksizes[c], out,
                                                 sizeof *out, &it));
        void *v;
        for (size_t k = 0; k < N; k++) {
            CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
            size_t i = (size_t)((long long *)v - out);
            CHECK(i < N && !seen[i]);
            seen[i] = true;
            CHECK_EQ(out[i], (long long)i * (long long)i);
        }
        CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);
    }
    free(seen);
    free(in);
    free(out);
    cth_pool_free(p);
}

static _Atomic int gate, gate_started;

/* holds its worker until the gate opens */
static int gated(const void *in, void *out)
{
    (void)in;
    (void)out;
    atomic_fetch_add(&gate_started, 1);
    while (!atomic_load(&gate))
        cth_sleep(0.001);
    return 0;
}

static int gated_buffer(const void *in, size_t in_size, void **out, size_t *out_size)
{
    gated(in, NULL);
    return reverse(in, in_size, out, out_size);
}

static void wait_started(int k)
{
    while (atomic_load(&gate_started) < k)
        cth_sleep(0.001);
}

/* terminate: queued record chunks and buffer tasks finish with
 * CTH_ECANCELED (their error_callbacks run), the running ones complete;
 * close: no more submissions, the accepted work completes. */
CTH_TEST(terminate_close)
{
    cth_pool_t *p = make_pool(2);
    atomic_store(&gate, 0);
    atomic_store(&gate_started, 0);
    int in[64] = {0};
    long long out[64];
    struct cbs c = {0};
    cth_result_opts_t o = {.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
    cth_result_t *m, *b[4];
    cth_imap_t *it;
    /* 2 chunks hold the 2 workers; the rest queue behind them */
    CHECK_OK(
        cth_pool_map_records_async(p, gated, in, sizeof in[0], 64, 32, &o, out, sizeof out[0], &m));
    wait_started(2);
    unsigned char bytes[10] = {1, 2, 3};
    for (int i = 0; i < 4; i++)
        CHECK_OK(cth_pool_apply_buffer_async(p, gated_buffer, bytes, sizeof bytes, &o, &b[i]));
    CHECK_OK(cth_pool_imap_records(p, square, in, sizeof in[0], 64, 1, out, sizeof out[0], &it));
    CHECK_OK(cth_pool_terminate(p));
    atomic_store(&gate, 1);
    CHECK_OK(cth_result_get(m, NULL, CTH_FOREVER)); /* its 2 chunks were running */
    for (int i = 0; i < 4; i++) {
        void *buf = (void *)1;
        CHECK_EQ(cth_result_get_buffer(b[i], &buf, NULL, CTH_FOREVER), CTH_ECANCELED);
        CHECK(buf == (void *)1);
        cth_result_free(b[i]);
    }
    for (int i = 0; i < 64; i++)
        CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_ECANCELED);
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    cth_result_free(m);
    CHECK_EQ(atomic_load(&c.ok), 1);
    CHECK_EQ(atomic_load(&c.fail), 4);
    CHECK_EQ(atomic_load(&c.err), CTH_ECANCELED);
    CHECK_EQ(atomic_load(&c.task_error), 0);
    /* "Pool not running" */
    CHECK_EQ(cth_pool_map_records(p, square, in, sizeof in[0], 4, 0, out, sizeof out[0]),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer(p, reverse, NULL, 0, NULL, NULL), CTH_EINVAL);
    cth_pool_free(p);

    /* close: accepted work completes, new work is refused */
    p = make_pool(2);
    atomic_store(&gate, 0);
    atomic_store(&gate_started, 0);
    CHECK_OK(cth_pool_map_records_async(p, gated, in, sizeof in[0], 64, 1, NULL, out, sizeof out[0],
                                        &m));
    CHECK_OK(cth_pool_apply_buffer_async(p, gated_buffer, bytes, sizeof bytes, NULL, &b[0]));
    CHECK_OK(cth_pool_imap_unordered_records(p, square, in, sizeof in[0], 64, 4, out, sizeof out[0],
                                             &it));
    CHECK_OK(cth_pool_close(p));
    CHECK_EQ(cth_pool_map_records(p, square, in, sizeof in[0], 4, 0, out, sizeof out[0]),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records_async(p, square, in, sizeof in[0], 4, 0, NULL, out, sizeof out[0],
                                        &b[1]),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records_async(p, square, in, sizeof in[0], 0, 0, NULL, out, sizeof out[0],
                                        &b[1]),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer(p, reverse, NULL, 0, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer_async(p, reverse, NULL, 0, NULL, &b[1]), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_records(p, square, in, sizeof in[0], 4, 1, out, sizeof out[0], &it),
             CTH_EINVAL);
    atomic_store(&gate, 1);
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    CHECK_OK(cth_result_get(m, NULL, CTH_FOREVER));
    size_t len = 0;
    CHECK_OK(cth_result_get_buffer(b[0], NULL, &len, CTH_FOREVER));
    CHECK_EQ(len, sizeof bytes);
    for (int i = 0; i < 64; i++)
        CHECK_OK(cth_imap_next(it, NULL, CTH_FOREVER));
    CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    cth_result_free(m);
    cth_result_free(b[0]);
    cth_pool_free(p);
}

/* Every bad argument of the record and buffer calls gets its code and
 * changes nothing. */
CTH_TEST(bad_arguments)
{
    cth_pool_t *p = make_pool(2);
    int in[4] = {1, 2, 3, 4};
    long long out[4] = {0};
    cth_result_t *r = (cth_result_t *)1;
    cth_imap_t *it = (cth_imap_t *)1;
    const size_t is = sizeof in[0], os = sizeof out[0];
    /* NULL pool, fn, in, out, res */
    CHECK_EQ(cth_pool_map_records(NULL, square, in, is, 4, 0, out, os), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records(p, NULL, in, is, 4, 0, out, os), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records(p, square, NULL, is, 4, 0, out, os), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records(p, square, in, is, 4, 0, NULL, os), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records_async(NULL, square, in, is, 4, 0, NULL, out, os, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records_async(p, NULL, in, is, 4, 0, NULL, out, os, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records_async(p, square, NULL, is, 4, 0, NULL, out, os, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records_async(p, square, in, is, 4, 0, NULL, NULL, os, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records_async(p, square, in, is, 4, 0, NULL, out, os, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_records(NULL, square, in, is, 4, 0, out, os, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_records(p, NULL, in, is, 4, 0, out, os, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_records(p, square, NULL, is, 4, 0, out, os, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_records(p, square, in, is, 4, 0, NULL, os, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_records(p, square, in, is, 4, 0, out, os, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_unordered_records(NULL, square, in, is, 4, 0, out, os, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_unordered_records(p, NULL, in, is, 4, 0, out, os, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_unordered_records(p, square, NULL, is, 4, 0, out, os, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_unordered_records(p, square, in, is, 4, 0, NULL, os, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_unordered_records(p, square, in, is, 4, 0, out, os, NULL), CTH_EINVAL);
    /* n x size beyond SIZE_MAX */
    size_t huge = SIZE_MAX / 2 + 1;
    CHECK_EQ(cth_pool_map_records(p, square, in, huge, 2, 0, out, os), CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_map_records(p, square, in, is, huge, 0, out, 4), CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_map_records(p, square, in, 0, huge, 0, out, 2), CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_map_records_async(p, square, in, huge, 2, 0, NULL, out, os, &r),
             CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_imap_records(p, square, in, is, huge, 0, out, os, &it), CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_imap_unordered_records(p, square, in, huge, 2, 0, out, os, &it),
             CTH_EOVERFLOW);
    /* buffers */
    void *buf = (void *)1;
    size_t len = 5;
    CHECK_EQ(cth_pool_apply_buffer(NULL, reverse, in, 4, &buf, &len), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer(p, NULL, in, 4, &buf, &len), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer(p, reverse, NULL, 4, &buf, &len), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer_async(NULL, reverse, in, 4, NULL, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer_async(p, NULL, in, 4, NULL, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer_async(p, reverse, NULL, 4, NULL, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer_async(p, reverse, in, 4, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_result_get_buffer(NULL, &buf, &len, 0), CTH_EINVAL);
    CHECK(buf == (void *)1 && len == 5);
    CHECK(r == (cth_result_t *)1 && it == (cth_imap_t *)1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(out[i], 0);
    /* bad timeouts on a buffer result */
    CHECK_OK(cth_pool_apply_buffer_async(p, reverse, in, sizeof in, NULL, &r));
    CHECK_EQ(cth_result_get_buffer(r, &buf, &len, -2.0), CTH_EINVAL);
    CHECK_EQ(cth_result_get_buffer(r, &buf, &len, NAN), CTH_EINVAL);
    CHECK_EQ(cth_result_get_buffer(r, &buf, &len, CTH_TIMEOUT_MAX * 2), CTH_EOVERFLOW);
    CHECK_OK(cth_result_get_buffer(r, &buf, &len, CTH_FOREVER));
    CHECK_EQ(len, sizeof in);
    cth_result_free(r);
    cth_pool_free(p);
}

/* The new options: the backend and start method must be known, the task
 * timeout a timeout, initarg present when it has a size. A process pool
 * is not built here (CTH_ENOTSUP until the process backend lands). */
CTH_TEST(pool_options)
{
    cth_pool_t *p = (cth_pool_t *)1;
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.backend = (cth_pool_backend_t)2}), CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.backend = (cth_pool_backend_t)-1}),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.start_method = (cth_start_method_t)4}),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.start_method = (cth_start_method_t)-1}),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.task_timeout = -1}), CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.task_timeout = NAN}), CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.task_timeout = INFINITY}), CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.task_timeout = CTH_TIMEOUT_MAX * 2}),
             CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.initarg_size = 8}), CTH_EINVAL);
    CHECK(p == (cth_pool_t *)1);
    CHECK_EQ(cth_pool_backend(NULL), CTH_POOL_THREADS);

    /* the thread backend takes every valid value (the process ones unused) */
    int arg = 5;
    CHECK_OK(cth_pool_create(&p, &(cth_pool_opts_t){.processes = 1,
                                                    .backend = CTH_POOL_THREADS,
                                                    .start_method = CTH_START_FORK,
                                                    .task_timeout = 2.5,
                                                    .initarg = &arg,
                                                    .initarg_size = sizeof arg}));
    CHECK_EQ(cth_pool_backend(p), CTH_POOL_THREADS);
    int x = 7;
    long long y = 0;
    CHECK_OK(cth_pool_map_records(p, square, &x, sizeof x, 1, 0, &y, sizeof y));
    CHECK_EQ(y, 49);
    cth_pool_free(p);

    p = (cth_pool_t *)1;
    int err = cth_pool_create(&p,
                              &(cth_pool_opts_t){.processes = 1, .backend = CTH_POOL_PROCESSES});
    if (err == 0) {
        CHECK_EQ(cth_pool_backend(p), CTH_POOL_PROCESSES); /* tested in test_pool_process.c */
        cth_pool_free(p);
    } else {
        CHECK_EQ(err, CTH_ENOTSUP);
        CHECK(p == (cth_pool_t *)1);
    }
}

/* The new codes have names and descriptions of their own. */
CTH_TEST(error_names)
{
    CHECK(strcmp(cth_err_name(CTH_ENOTSUP), "CTH_ENOTSUP") == 0);
    CHECK(strcmp(cth_err_name(CTH_EPROTO), "CTH_EPROTO") == 0);
    CHECK(strcmp(cth_err_name(CTH_EWORKER), "CTH_EWORKER") == 0);
    CHECK(strcmp(cth_strerror(CTH_EWORKER), "unknown error") != 0);
    CHECK(strcmp(cth_strerror(CTH_EPROTO), "unknown error") != 0);
    CHECK(strcmp(cth_strerror(CTH_ENOTSUP), "unknown error") != 0);
    CHECK(strcmp(cth_strerror(CTH_EWORKER), cth_strerror(CTH_ETASK)) != 0);
}

static void *job_value;

static void keep_value(void *arg, void *value)
{
    (void)arg;
    job_value = value;
}

/* The failure codes of the process backend, through the paths every
 * backend shares: the first failure in completion order wins whatever its
 * code; CTH_EWORKER puts its value (the wait status) in cth_task_error()
 * and cth_result_task_error() as CTH_ETASK does, CTH_ETIMEDOUT and
 * CTH_EPROTO carry none; a failed buffer job's buffer is freed (ASan). */
CTH_TEST(failure_codes)
{
    cth_pool_t *p = make_pool(1);
    static const int codes[] = {CTH_EWORKER, CTH_ETIMEDOUT, CTH_EPROTO, CTH_ETASK};
    for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
        struct cbs c = {0};
        struct cth_result *job = cth__result_alloc(p);
        CHECK(job != NULL);
        *job = (struct cth_result){.is_async = true};
        cth__job_setup(job, p, JOB_BUFFER, 1, 1);
        job->cb = (cth_result_opts_t){.callback = on_ok, .error_callback = on_fail, .cb_arg = &c};
        job->has_cb = true;
        job->buf = malloc(64);
        job->buf_size = 64;
        cth__job_fail(job, codes[k], 137);
        cth__job_fail(job, CTH_ETASK, 5); /* later: ignored */
        int value = codes[k] == CTH_EWORKER || codes[k] == CTH_ETASK ? 137 : 0;
        cth__task_failed(-77); /* the thread's own, restored after the callback */
        cth__job_complete(job);
        CHECK_EQ(cth_task_error(), -77);
        CHECK_EQ(atomic_load(&c.fail), 1);
        CHECK_EQ(atomic_load(&c.err), codes[k]);
        CHECK_EQ(atomic_load(&c.task_error), value);
        void *buf = (void *)1;
        size_t len = 1;
        CHECK_EQ(cth_result_get_buffer(job, &buf, &len, 0), codes[k]);
        CHECK(buf == (void *)1 && len == 1);
        CHECK_EQ(cth_result_get(job, &buf, 0), codes[k]);
        CHECK_EQ(cth_task_error(), value ? value : -77);
        CHECK_EQ(cth_result_task_error(job), value);
        CHECK(!cth_result_successful(job));
        cth_result_free(job);
    }
    /* a successful buffer job's value is its buffer */
    struct cth_result *job = cth__result_alloc(p);
    CHECK(job != NULL);
    *job = (struct cth_result){.is_async = true};
    cth__job_setup(job, p, JOB_BUFFER, 1, 1);
    job->cb.callback = keep_value;
    job->has_cb = true;
    job->buf = malloc(3);
    job->buf_size = 3;
    cth__job_complete(job);
    CHECK(job_value == job->buf);
    size_t len = 0;
    void *buf = NULL;
    CHECK_OK(cth_result_get_buffer(job, &buf, &len, 0));
    CHECK(buf == job_value && len == 3);
    cth_result_free(job); /* frees the buffer */
    cth_pool_free(p);
}

/* Out of memory: each call succeeds or returns CTH_ENOMEM, and what
 * succeeded completes whole (ASan: nothing leaks). */
CTH_TEST(out_of_memory)
{
    cth_pool_t *p = make_pool(2);
    int in[16];
    long long out[16], imap_out[16]; /* apart: the map and the imap run at once */
    for (int i = 0; i < 16; i++)
        in[i] = i;
    int enomem = 0;
    for (long k = 0; k < 6; k++) {
        cth_result_t *m = NULL, *b = NULL;
        cth_imap_t *it = NULL;
        memset(out, 0, sizeof out);
        memset(imap_out, 0, sizeof imap_out);
        cth__fault_alloc_after(k);
        int em = cth_pool_map_records_async(p, square, in, sizeof in[0], 16, 1, NULL, out,
                                            sizeof out[0], &m);
        int eb = cth_pool_apply_buffer_async(p, reverse, in, sizeof in, NULL, &b);
        int ei = cth_pool_imap_records(p, square, in, sizeof in[0], 16, 4, imap_out,
                                       sizeof imap_out[0], &it);
        cth__fault_alloc_after(-1);
        CHECK(em == 0 || em == CTH_ENOMEM);
        CHECK(eb == 0 || eb == CTH_ENOMEM);
        CHECK(ei == 0 || ei == CTH_ENOMEM);
        enomem += (em != 0) + (eb != 0) + (ei != 0);
        if (em == 0) {
            CHECK_OK(cth_result_get(m, NULL, CTH_FOREVER));
            cth_result_free(m);
        }
        if (eb == 0) {
            size_t len = 0;
            CHECK_OK(cth_result_get_buffer(b, NULL, &len, CTH_FOREVER));
            CHECK_EQ(len, sizeof in);
            cth_result_free(b);
        }
        if (ei == 0) {
            for (int i = 0; i < 16; i++)
                CHECK_OK(cth_imap_next(it, NULL, CTH_FOREVER));
            CHECK_EQ(cth_imap_next(it, NULL, CTH_FOREVER), CTH_IMAP_END);
            cth_imap_free(it);
        }
        for (int i = 0; i < 16; i++) {
            CHECK_EQ(out[i], em == 0 ? (long long)i * i : 0);
            CHECK_EQ(imap_out[i], ei == 0 ? (long long)i * i : 0);
        }
    }
    CHECK(enomem > 0);
    /* the sync calls allocate nothing on threads */
    cth__fault_alloc_after(0);
    CHECK_OK(cth_pool_map_records(p, square, in, sizeof in[0], 16, 0, out, sizeof out[0]));
    cth__fault_alloc_after(-1);
    cth_pool_free(p);
}
