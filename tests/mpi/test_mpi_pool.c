/* SPDX-License-Identifier: MIT */
/*
 * test_mpi_pool.c - the pool over MPI ranks (cthreading/mpi.h), run by
 * CTest under mpirun with 3 and 4 ranks: rank 0 is the root and checks
 * everything; the other ranks serve until it frees the pool. Every
 * sub-test is collective: each rank runs it.
 */
#include <cthreading/mpi.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "mpi/mpi_internal.h"

static void mpi_end(void)
{
    MPI_Finalize();
}

/* MPI, once per process, with the thread level the pool needs. */
static void mpi_start(void)
{
    static bool started;
    if (started)
        return;
    int provided = 0;
    CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) == MPI_SUCCESS);
    CHECK(provided == MPI_THREAD_MULTIPLE);
    atexit(mpi_end);
    started = true;
}

/* The pool at the root; NULL at a worker rank, once it has served. */
static cth_pool_t *pool_or_serve(const cth_mpi_opts_t *opts)
{
    mpi_start();
    cth_pool_t *pool = (cth_pool_t *)1;
    int r = cth_mpi_pool_create(MPI_COMM_WORLD, 0, opts, &pool);
    if (r == CTH_MPI_WORKER) {
        CHECK(pool == NULL);
        return NULL;
    }
    CHECK_OK(r);
    CHECK(pool != NULL);
    CHECK(cth_pool_backend(pool) == CTH_POOL_MPI);
    return pool;
}

static int triple_plus_one(const void *in, void *out)
{
    uint64_t v;
    memcpy(&v, in, sizeof v);
    v = 3 * v + 1;
    memcpy(out, &v, sizeof v);
    return 0;
}

/* Fails for the records holding 1000 (value 1000 + 7). */
static int fails_at_1000(const void *in, void *out)
{
    uint64_t v;
    memcpy(&v, in, sizeof v);
    if (v == 1000)
        return 1007;
    memcpy(out, &v, sizeof v);
    return 0;
}

static uint64_t *iota(size_t n)
{
    uint64_t *a = malloc(n * sizeof *a);
    CHECK(a != NULL);
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    return a;
}

static void map_checked(cth_pool_t *pool, size_t n)
{
    uint64_t *in = iota(n);
    uint64_t *out = calloc(n, sizeof *out);
    CHECK(out != NULL);
    CHECK_OK(cth_pool_map_records(pool, triple_plus_one, in, sizeof *in, n, 0, out, sizeof *out));
    for (size_t i = 0; i < n; i++)
        if (out[i] != 3 * i + 1) {
            fprintf(stderr, "item %zu: %llu\n", i, (unsigned long long)out[i]);
            CHECK(!"every item mapped");
        }
    free(in);
    free(out);
}

CTH_TEST(map_1m)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    map_checked(pool, 1000000);
    map_checked(pool, 1);
    map_checked(pool, 0);
    cth_pool_free(pool);
}

/* Shared allocations on MPI ranks: plain memory at the root (no memory is
 * shared across machines), the same calls as on the other backends; a map
 * over it is right, and cth_pool_free frees one left. */
CTH_TEST(shared_alloc_is_plain_memory)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    size_t n = 10000;
    uint64_t *in = NULL, *out = NULL;
    CHECK_OK(cth_pool_shared_alloc(pool, n * sizeof *in, (void **)&in));
    CHECK_OK(cth_pool_shared_alloc(pool, n * sizeof *out, (void **)&out));
    for (size_t i = 0; i < n; i++)
        in[i] = i;
    CHECK_OK(cth_pool_map_records(pool, triple_plus_one, in, sizeof *in, n, 0, out, sizeof *out));
    for (size_t i = 0; i < n; i++)
        if (out[i] != 3 * i + 1)
            CHECK_EQ(out[i], 3 * i + 1);
    CHECK_OK(cth_pool_shared_free(pool, in));
    CHECK_EQ(cth_pool_shared_free(pool, in), CTH_EINVAL);
    cth_pool_free(pool); /* frees out */
}

/* A pool created from a task (at a worker rank, or at the root). */
static int nested_create(const void *in, void *out)
{
    (void)in;
    cth_pool_t *pool = NULL;
    int32_t r = cth_mpi_pool_create(MPI_COMM_SELF, 0, NULL, &pool);
    memcpy(out, &r, sizeof r);
    return 0;
}

int mpi_task_lib_negate(const void *in, void *out); /* mpi_task_lib.c, a shared library */

CTH_TEST(task_in_a_library)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    size_t n = 10000;
    uint64_t *in = iota(n);
    int64_t *out = calloc(n, sizeof *out);
    /* the library's task, then the executable's, then the library's again */
    for (int round = 0; round < 3; round++) {
        if (round == 1) {
            map_checked(pool, 1000);
            continue;
        }
        CHECK_OK(cth_pool_map_records(pool, mpi_task_lib_negate, in, sizeof *in, n, 0, out,
                                      sizeof *out));
        for (size_t i = 0; i < n; i++)
            CHECK(out[i] == -(int64_t)i);
    }
    free(in);
    free(out);
    cth_pool_free(pool);
}

CTH_TEST(root_works)
{
    cth_mpi_opts_t o = {.threads = 2, .root_works = true};
    cth_pool_t *pool = pool_or_serve(&o);
    if (!pool)
        return;
    CHECK(cth_pool_size(pool) > 2); /* the ranks' slots and the root's own threads */
    map_checked(pool, 200000);
    /* a task creating a pool, at a worker rank or at the root */
    size_t n = 256;
    int32_t *codes = calloc(n, sizeof *codes);
    CHECK_OK(cth_pool_map_records(pool, nested_create, NULL, 0, n, 1, codes, sizeof *codes));
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(codes[i], CTH_EPERM);
    free(codes);
    cth_pool_free(pool);
}

CTH_TEST(root_idle_one_slot)
{
    cth_mpi_opts_t o = {.threads = 1, .inflight = 1};
    cth_pool_t *pool = pool_or_serve(&o);
    if (!pool)
        return;
    int ranks = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    CHECK_EQ(cth_pool_size(pool), (size_t)ranks - 1); /* one slot per worker rank */
    map_checked(pool, 100000);
    cth_pool_free(pool);
}

/* A rank that gets no work: one item for three or four ranks. */
CTH_TEST(rank_without_work)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    map_checked(pool, 1);
    cth_pool_close(pool);
    CHECK_OK(cth_pool_join(pool, CTH_FOREVER));
    cth_pool_free(pool);
}

CTH_TEST(imap_order)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    size_t n = 5000;
    uint64_t *in = iota(n);
    uint64_t *out = calloc(n, sizeof *out);
    cth_imap_t *it;
    CHECK_OK(
        cth_pool_imap_records(pool, triple_plus_one, in, sizeof *in, n, 7, out, sizeof *out, &it));
    void *v;
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
        CHECK(v == &out[i]);
        CHECK(out[i] == 3 * i + 1);
    }
    CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    free(in);
    free(out);
    cth_pool_free(pool);
}

CTH_TEST(imap_unordered)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    size_t n = 5000;
    uint64_t *in = iota(n);
    uint64_t *out = calloc(n, sizeof *out);
    char *seen = calloc(n, 1);
    cth_imap_t *it;
    CHECK_OK(cth_pool_imap_unordered_records(pool, triple_plus_one, in, sizeof *in, n, 3, out,
                                             sizeof *out, &it));
    void *v;
    for (size_t k = 0; k < n; k++) {
        CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
        size_t i = (size_t)((uint64_t *)v - out);
        CHECK(i < n && !seen[i]);
        seen[i] = 1;
        CHECK(out[i] == 3 * i + 1);
    }
    CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);
    free(seen);
    free(in);
    free(out);
    cth_pool_free(pool);
}

/* The input's bytes complemented, and one more byte: its length mod 251. */
static int complement(const void *in, size_t in_size, void **out, size_t *out_size)
{
    unsigned char *b = malloc(in_size + 1);
    if (!b)
        return 12;
    const unsigned char *p = in;
    for (size_t i = 0; i < in_size; i++)
        b[i] = (unsigned char)~p[i];
    b[in_size] = (unsigned char)(in_size % 251);
    *out = b;
    *out_size = in_size + 1;
    return 0;
}

static int empty_result(const void *in, size_t in_size, void **out, size_t *out_size)
{
    (void)in;
    (void)in_size;
    *out = NULL;
    *out_size = 0;
    return 0;
}

/* Submit one `complement` task per size, its input filled from `seed`. */
static void complements_submit(cth_pool_t *pool, const size_t *sizes, size_t n, unsigned seed,
                               unsigned char **in, cth_result_t **res)
{
    for (size_t k = 0; k < n; k++) {
        in[k] = malloc(sizes[k] ? sizes[k] : 1);
        CHECK(in[k] != NULL);
        for (size_t i = 0; i < sizes[k]; i++)
            in[k][i] = (unsigned char)(i * seed + k);
        CHECK_OK(cth_pool_apply_buffer_async(pool, complement, in[k], sizes[k], NULL, &res[k]));
    }
}

/* Check each result of complements_submit byte by byte, then free it. */
static void complements_check(const size_t *sizes, size_t n, unsigned char **in, cth_result_t **res)
{
    for (size_t k = 0; k < n; k++) {
        void *out;
        size_t len;
        CHECK_OK(cth_result_get_buffer(res[k], &out, &len, CTH_FOREVER));
        CHECK_EQ(len, sizes[k] + 1);
        const unsigned char *b = out;
        for (size_t i = 0; i < sizes[k]; i++)
            CHECK(b[i] == (unsigned char)~in[k][i]);
        CHECK(b[sizes[k]] == sizes[k] % 251);
        cth_result_free(res[k]);
        free(in[k]);
    }
}

CTH_TEST(buffers)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    static const size_t sizes[] = {0, 1, 7, 4096, 65536, 65537, 1 << 20, 16 << 20, 64 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *in[N];
    cth_result_t *res[N];
    complements_submit(pool, sizes, N, 31, in, res);
    complements_check(sizes, N, in, res);
    void *out = (void *)1;
    size_t len = 9;
    CHECK_OK(cth_pool_apply_buffer(pool, empty_result, NULL, 0, &out, &len));
    CHECK(out == NULL && len == 0);
    cth_pool_free(pool);
}

static int buffer_fails(const void *in, size_t in_size, void **out, size_t *out_size)
{
    (void)in;
    (void)out;
    (void)out_size;
    return (int)in_size + 5;
}

/* Messages split in pieces: the piece size lowered at every rank (a
 * private tunable; 1 GiB otherwise), so buffers, records and batches
 * cross many piece boundaries, some inside a chunk's output. */
CTH_TEST(split_pieces)
{
    cth__mpi_piece = 1000;
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    static const size_t sizes[] = {0, 1, 999, 1000, 1001, 4096, 65537, 1 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *in[N];
    cth_result_t *res[N];
    complements_submit(pool, sizes, N, 7, in, res);
    map_checked(pool, 100000); /* chunks of 6250 records, 50000 bytes */
    complements_check(sizes, N, in, res);
    cth_pool_free(pool);
}

/* Task i fails with 100 + i when i % 7 == 3, else returns its input
 * complemented (complement). */
static int fails_some(const void *in, size_t in_size, void **out, size_t *out_size)
{
    uint32_t i;
    memcpy(&i, in, sizeof i);
    if (i % 7 == 3)
        return (int)(100 + i);
    return complement(in, in_size, out, out_size);
}

/* Many small tasks travel in batches: each still fails or succeeds alone,
 * with its own value; the batches mix functions (the executable's two,
 * and a library's record map at the same time). */
CTH_TEST(batch_outcomes)
{
    cth_pool_t *pool = pool_or_serve(&(cth_mpi_opts_t){.threads = 1});
    if (!pool)
        return;
    enum { T = 5000 };
    static uint32_t in[T];
    static cth_result_t *res[T];
    size_t n = 20000;
    uint64_t *rin = iota(n);
    int64_t *rout = calloc(n, sizeof *rout);
    cth_result_t *map;
    for (int round = 0; round < 2; round++) {
        CHECK_OK(cth_pool_map_records_async(pool, mpi_task_lib_negate, rin, sizeof *rin, n, 50,
                                            NULL, rout, sizeof *rout, &map));
        for (uint32_t i = 0; i < T; i++) {
            in[i] = i;
            cth_pool_buffer_fn fn = i % 2 ? fails_some : complement;
            CHECK_OK(cth_pool_apply_buffer_async(pool, fn, &in[i], sizeof in[i], NULL, &res[i]));
        }
        for (uint32_t i = 0; i < T; i++) {
            void *out = NULL;
            size_t len = 0;
            int r = cth_result_get_buffer(res[i], &out, &len, CTH_FOREVER);
            if (i % 2 && i % 7 == 3) {
                CHECK_EQ(r, CTH_ETASK);
                CHECK_EQ(cth_result_task_error(res[i]), (int)(100 + i));
            } else {
                CHECK_OK(r);
                CHECK_EQ(len, sizeof in[i] + 1);
                uint32_t v;
                memcpy(&v, out, sizeof v);
                CHECK(v == ~i);
            }
            cth_result_free(res[i]);
        }
        CHECK_OK(cth_result_get(map, NULL, CTH_FOREVER));
        cth_result_free(map);
        for (size_t i = 0; i < n; i++)
            CHECK(rout[i] == -(int64_t)i);
    }
    free(rin);
    free(rout);
    cth_pool_free(pool);
}

CTH_TEST(failures)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    size_t n = 5000;
    uint64_t *in = iota(n);
    uint64_t *out = calloc(n, sizeof *out);
    CHECK_EQ(cth_pool_map_records(pool, fails_at_1000, in, sizeof *in, n, 10, out, sizeof *out),
             CTH_ETASK);
    CHECK_EQ(cth_task_error(), 1007);
    char data[3] = {1, 2, 3};
    CHECK_EQ(cth_pool_apply_buffer(pool, buffer_fails, data, sizeof data, NULL, NULL), CTH_ETASK);
    CHECK_EQ(cth_task_error(), 8);
    cth_result_t *res;
    CHECK_OK(cth_pool_apply_buffer_async(pool, buffer_fails, NULL, 0, NULL, &res));
    CHECK_EQ(cth_result_get(res, NULL, CTH_FOREVER), CTH_ETASK);
    CHECK_EQ(cth_result_task_error(res), 5);
    cth_result_free(res);
    /* the imap's failing chunk is delivered in its place */
    cth_imap_t *it;
    CHECK_OK(
        cth_pool_imap_records(pool, fails_at_1000, in, sizeof *in, n, 1, out, sizeof *out, &it));
    void *v;
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), i == 1000 ? CTH_ETASK : 0);
    cth_imap_free(it);
    /* the pool goes on */
    map_checked(pool, 1000);
    free(in);
    free(out);
    cth_pool_free(pool);
}

static int sleep_20ms(const void *in, size_t in_size, void **out, size_t *out_size)
{
    (void)in;
    (void)in_size;
    (void)out;
    (void)out_size;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return 0;
}

enum { SLOW = 200 };

CTH_TEST(terminate_in_flight)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    cth_result_t *res[SLOW];
    for (int i = 0; i < SLOW; i++)
        CHECK_OK(cth_pool_apply_buffer_async(pool, sleep_20ms, NULL, 0, NULL, &res[i]));
    CHECK_OK(cth_result_wait(res[0], CTH_FOREVER));
    CHECK_OK(cth_pool_terminate(pool));
    int ok = 0, canceled = 0;
    for (int i = 0; i < SLOW; i++) {
        int r = cth_result_get(res[i], NULL, 30); /* the chunks in flight end at once */
        CHECK(r == 0 || r == CTH_ECANCELED);
        ok += r == 0;
        canceled += r == CTH_ECANCELED;
        cth_result_free(res[i]);
    }
    CHECK(ok >= 1 && canceled >= 1);
    cth_result_t *late;
    CHECK_EQ(cth_pool_apply_buffer_async(pool, sleep_20ms, NULL, 0, NULL, &late), CTH_EINVAL);
    cth_pool_free(pool);
}

CTH_TEST(free_while_running)
{
    cth_pool_t *pool = pool_or_serve(NULL);
    if (!pool)
        return;
    cth_result_t *res[SLOW];
    for (int i = 0; i < SLOW; i++)
        CHECK_OK(cth_pool_apply_buffer_async(pool, sleep_20ms, NULL, 0, NULL, &res[i]));
    cth_pool_free(pool); /* the ranks return, the results stay */
    for (int i = 0; i < SLOW; i++) {
        int r = cth_result_get(res[i], NULL, 0);
        CHECK(r == 0 || r == CTH_ECANCELED);
        cth_result_free(res[i]);
    }
}

static int pointer_task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

CTH_TEST(misuse)
{
    mpi_start();
    cth_pool_t *pool = NULL;
    /* at every rank, before the collective calls */
    CHECK_EQ(cth_mpi_pool_create(MPI_COMM_WORLD, 0, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_mpi_pool_create(MPI_COMM_NULL, 0, NULL, &pool), CTH_EINVAL);
    CHECK_EQ(cth_mpi_pool_create(MPI_COMM_WORLD, -1, NULL, &pool), CTH_EINVAL);
    CHECK_EQ(cth_mpi_pool_create(MPI_COMM_WORLD, 99, NULL, &pool), CTH_EINVAL);
    cth_mpi_opts_t big = {.threads = (size_t)INT32_MAX + 1};
    CHECK_EQ(cth_mpi_pool_create(MPI_COMM_WORLD, 0, &big, &pool), CTH_EOVERFLOW);
    CHECK(pool == NULL);
    /* a communicator of one rank: only with root_works */
    CHECK_EQ(cth_mpi_pool_create(MPI_COMM_SELF, 0, NULL, &pool), CTH_EINVAL);
    cth_mpi_opts_t alone = {.threads = 2, .root_works = true};
    CHECK_OK(cth_mpi_pool_create(MPI_COMM_SELF, 0, &alone, &pool));
    map_checked(pool, 10000);
    cth_pool_free(pool);
    /* a pool's calls at a worker rank: it has no pool */
    CHECK_EQ(cth_pool_map_records(NULL, triple_plus_one, NULL, 0, 0, 0, NULL, 0), CTH_EINVAL);
    /* cth_pool_create does not make an MPI pool */
    cth_pool_opts_t po = {.backend = CTH_POOL_MPI};
    CHECK_EQ(cth_pool_create(&pool, &po), CTH_EINVAL);

    pool = pool_or_serve(NULL);
    if (!pool)
        return;
    /* pointer calls: not over MPI */
    void *v;
    CHECK_EQ(cth_pool_apply(pool, pointer_task, NULL, &v), CTH_ENOTSUP);
    /* task timeouts: not over MPI */
    cth_result_opts_t timed = {.task_timeout = 1};
    cth_result_t *res;
    CHECK_EQ(cth_pool_apply_buffer_async(pool, empty_result, NULL, 0, &timed, &res), CTH_ENOTSUP);
    /* a task creating a pool at a worker rank */
    int ranks = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    size_t n = 64;
    int32_t *codes = calloc(n, sizeof *codes);
    CHECK_OK(cth_pool_map_records(pool, nested_create, NULL, 0, n, 1, codes, sizeof *codes));
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(codes[i], CTH_EPERM);
    free(codes);
    cth_pool_free(pool);
}

/* Rank 1 plays a worker that breaks the protocol: it joins the create as
 * a rank does (the two duplicates, the agreement, its thread count), then
 * answers each request header (on the first duplicate) with 3 bytes of
 * garbage, drops the pieces of input (on the second), and leaves at STOP
 * (control message 2 on tag 0). */
static void garbage_rank(void)
{
    MPI_Comm comm, data;
    CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm) == MPI_SUCCESS);
    CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &data) == MPI_SUCCESS);
    int err = 0, first = 0, threads = 1;
    MPI_Allreduce(&err, &first, 1, MPI_INT, MPI_MIN, comm);
    CHECK(first == 0);
    MPI_Gather(&threads, 1, MPI_INT, NULL, 1, MPI_INT, 0, comm);
    static char buf[1 << 20];
    char garbage[3] = {1, 2, 3};
    for (bool stop = false; !stop;) {
        MPI_Message m;
        MPI_Status st;
        int flag = 0, len = 0;
        MPI_Improbe(0, MPI_ANY_TAG, data, &flag, &m, &st);
        if (flag) {
            MPI_Get_count(&st, MPI_BYTE, &len);
            CHECK(len <= (int)sizeof buf);
            MPI_Mrecv(buf, len, MPI_BYTE, &m, MPI_STATUS_IGNORE);
        }
        MPI_Improbe(0, MPI_ANY_TAG, comm, &flag, &m, &st);
        if (!flag)
            continue;
        MPI_Get_count(&st, MPI_BYTE, &len);
        CHECK(len <= (int)sizeof buf);
        MPI_Mrecv(buf, len, MPI_BYTE, &m, MPI_STATUS_IGNORE);
        if (st.MPI_TAG == 0) {
            uint32_t op;
            memcpy(&op, buf + 4, sizeof op);
            stop = op == 2;
        } else {
            MPI_Send(garbage, sizeof garbage, MPI_BYTE, 0, st.MPI_TAG, comm);
        }
    }
    MPI_Comm_free(&data);
    MPI_Comm_free(&comm);
}

CTH_TEST(garbage_reply)
{
    mpi_start();
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 1) {
        garbage_rank();
        return;
    }
    cth_pool_t *pool = pool_or_serve(&(cth_mpi_opts_t){.threads = 1});
    if (!pool)
        return;
    size_t n = 200000;
    uint64_t *in = iota(n);
    uint64_t *out = calloc(n, sizeof *out);
    /* rank 1's chunks fail, the root goes on */
    CHECK_EQ(cth_pool_map_records(pool, triple_plus_one, in, sizeof *in, n, 1000, out, sizeof *out),
             CTH_EPROTO);
    /* rank 1 gets nothing more: its proxies run their chunks at the root */
    CHECK_OK(
        cth_pool_map_records(pool, triple_plus_one, in, sizeof *in, n, 1000, out, sizeof *out));
    for (size_t i = 0; i < n; i++)
        CHECK(out[i] == 3 * i + 1);
    free(in);
    free(out);
    cth_pool_free(pool);
}

CTH_TEST(not_initialized)
{
    cth_pool_t *pool = NULL;
    CHECK_EQ(cth_mpi_pool_create(MPI_COMM_WORLD, 0, NULL, &pool), CTH_ENOTSUP);
    CHECK(pool == NULL);
    mpi_start(); /* mpirun wants every rank to initialize */
}

CTH_TEST(thread_level)
{
    int provided = 0;
    CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS);
    atexit(mpi_end);
    if (provided == MPI_THREAD_MULTIPLE)
        CHECK_SKIP("MPI gave MPI_THREAD_MULTIPLE when asked for MPI_THREAD_FUNNELED");
    cth_pool_t *pool = NULL;
    CHECK_EQ(cth_mpi_pool_create(MPI_COMM_WORLD, 0, NULL, &pool), CTH_ENOTSUP);
}
