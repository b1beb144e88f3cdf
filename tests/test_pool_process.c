/* SPDX-License-Identifier: MIT */
/*
 * test_pool_process.c - the process pool (pool_process.c) and the platform
 * pieces under it: shared memory and process-shared futexes.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"
#include "platform.h"

#if defined(__linux__) && !defined(CTH_POSIX_FUTEX)
#define HAVE_PROCESSES 1
#else
#define HAVE_PROCESSES 0
#endif

#define SKIP_WITHOUT_PROCESSES()                                                                   \
    do {                                                                                           \
        if (!HAVE_PROCESSES)                                                                       \
            CHECK_SKIP("process pools are Linux's");                                               \
    } while (0)

/* ---- the platform pieces ------------------------------------------------------------- */

/* A memfd mapped twice (as a proxy and its worker do), the second time in a
 * fork child that gets the descriptor, not the mapping (MADV_DONTFORK):
 * writes meet, and the futex wakes across the processes. */
CTH_TEST(shared_memory_and_futex_across_processes)
{
    SKIP_WITHOUT_PROCESSES();
    int fd;
    CHECK_OK(cth__os_shm_create(4096, &fd));
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    _Atomic uint32_t *words = cth__os_shm_map(fd, 4096, true);
    CHECK(words != NULL);
    CHECK_EQ(atomic_load(&words[0]), 0); /* zero-filled */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* the parent's mapping did not follow (mincore fails on it): map
         * the descriptor anew */
        unsigned char in_core;
        if (mincore((void *)words, 4096, &in_core) == 0)
            _exit(3);
        _Atomic uint32_t *mine = cth__os_shm_map(fd, 4096, true);
        if (!mine)
            _exit(4);
        while (atomic_load(&mine[0]) == 0) /* wait for the parent's word */
            cth__os_futex_wait_shared(&mine[0], 0, CTH__NO_DEADLINE);
        atomic_store(&mine[1], atomic_load(&mine[0]) + 1);
        cth__os_futex_wake_shared(&mine[1], 1);
        _exit(0);
    }
    cth_sleep(0.05); /* let the child sleep on the word, usually */
    atomic_store(&words[0], 41);
    cth__os_futex_wake_shared(&words[0], 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_EQ(atomic_load(&words[1]), 42);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cth__os_shm_unmap((void *)words, 4096);
    close(fd);
}

/* The shared futex wait keeps its deadline, and returns at once on a word
 * that differs. */
CTH_TEST(shared_futex_deadline)
{
    SKIP_WITHOUT_PROCESSES();
    int fd;
    CHECK_OK(cth__os_shm_create(64, &fd));
    _Atomic uint32_t *word = cth__os_shm_map(fd, 64, true);
    CHECK(word != NULL);
    double start = check_now();
    CHECK_EQ(cth__os_futex_wait_shared(word, 0, cth__now_ns() + 50 * 1000 * 1000), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.05);
    CHECK_OK(cth__os_futex_wait_shared(word, 7, CTH__NO_DEADLINE));
    cth__os_shm_unmap((void *)word, 64);
    close(fd);
}

/* A read-only mapping of shared memory reads what a writer wrote. */
CTH_TEST(shared_memory_read_only)
{
    SKIP_WITHOUT_PROCESSES();
    int fd;
    CHECK_OK(cth__os_shm_create(3 * 4096, &fd));
    char *w = cth__os_shm_map(fd, 3 * 4096, true);
    char *r = cth__os_shm_map(fd, 3 * 4096, false);
    CHECK(w && r && w != r);
    w[2 * 4096 + 5] = 'x';
    CHECK_EQ(r[2 * 4096 + 5], 'x');
    cth__os_shm_unmap(w, 3 * 4096);
    cth__os_shm_unmap(r, 3 * 4096);
    close(fd);
}

/* ---- the pool over processes ---------------------------------------------------------- */

/* A process pool, or NULL where this start method is not there yet. */
static cth_pool_t *proc_pool_opts(cth_pool_opts_t o)
{
    o.backend = CTH_POOL_PROCESSES;
    cth_pool_t *p = NULL;
    int err = cth_pool_create(&p, &o);
    if (err == CTH_EINVAL && o.start_method != CTH_START_FORK)
        return NULL;
    CHECK_OK(err);
    CHECK(p != NULL);
    CHECK_EQ(cth_pool_backend(p), CTH_POOL_PROCESSES);
    return p;
}

static cth_pool_t *proc_pool(size_t workers, cth_start_method_t method)
{
    return proc_pool_opts((cth_pool_opts_t){.processes = workers, .start_method = method});
}

/* an int in, its square as a long long out */
static int square(const void *in, void *out)
{
    int x = *(const int *)in;
    *(long long *)out = (long long)x * x;
    return 0;
}

/* square, failing with -1000 - x where x % 7 == 3 */
static int square_or_fail(const void *in, void *out)
{
    int x = *(const int *)in;
    if (x % 7 == 3)
        return -1000 - x;
    *(long long *)out = (long long)x * x;
    return 0;
}

/* a long long in, its square plus one out */
static int square_ll(const void *in, void *out)
{
    long long x = *(const long long *)in;
    *(long long *)out = x * x + 1;
    return 0;
}

static int *ints(size_t n)
{
    int *in = malloc(n * sizeof *in);
    CHECK(in != NULL);
    for (size_t i = 0; i < n; i++)
        in[i] = (int)i;
    return in;
}

/* Map squares over processes; every result checked. */
static void check_map_squares(cth_pool_t *p, size_t n, size_t chunksize)
{
    int *in = ints(n);
    long long *out = calloc(n, sizeof *out);
    CHECK(out != NULL);
    CHECK_OK(cth_pool_map_records(p, square, in, sizeof *in, n, chunksize, out, sizeof *out));
    for (size_t i = 0; i < n; i++)
        if (out[i] != (long long)i * (long long)i)
            CHECK_EQ(out[i], (long long)i * (long long)i);
    free(in);
    free(out);
}

CTH_TEST(map_records_fork)
{
    SKIP_WITHOUT_PROCESSES();
    cth_pool_t *p = proc_pool(2, CTH_START_FORK);
    check_map_squares(p, 1000, 0);
    check_map_squares(p, 1000, 1);
    check_map_squares(p, 1, 0);
    CHECK_OK(cth_pool_map_records(p, square, NULL, sizeof(int), 0, 0, NULL, sizeof(long long)));
    cth_pool_free(p);
}

/* 1M 8-byte records, checked item by item. */
CTH_TEST(map_records_million)
{
    SKIP_WITHOUT_PROCESSES();
    cth_pool_t *p = proc_pool(2, CTH_START_FORK);
    size_t n = 1000000;
    long long *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    CHECK(in && out);
    for (size_t i = 0; i < n; i++)
        in[i] = (long long)i;
    double t0 = check_now();
    CHECK_OK(cth_pool_map_records(p, square_ll, in, sizeof *in, n, 0, out, sizeof *out));
    double t1 = check_now();
    for (size_t i = 0; i < n; i++)
        if (out[i] != (long long)i * (long long)i + 1)
            CHECK_EQ(out[i], (long long)i * (long long)i + 1);
    cth_pool_t *t = NULL;
    CHECK_OK(cth_pool_create(&t, &(cth_pool_opts_t){.processes = 2}));
    double t2 = check_now();
    CHECK_OK(cth_pool_map_records(t, square_ll, in, sizeof *in, n, 0, out, sizeof *out));
    double t3 = check_now();
    printf("1M records: processes %.2f ms, threads %.2f ms\n", (t1 - t0) * 1e3, (t3 - t2) * 1e3);
    cth_pool_free(t);
    free(in);
    free(out);
    cth_pool_free(p);
}

/* A failing task fails the map with CTH_ETASK and its value; the others
 * ran. */
CTH_TEST(map_records_task_failure)
{
    SKIP_WITHOUT_PROCESSES();
    cth_pool_t *p = proc_pool(2, CTH_START_FORK);
    size_t n = 100;
    int *in = ints(n);
    long long *out = calloc(n, sizeof *out);
    CHECK_EQ(cth_pool_map_records(p, square_or_fail, in, sizeof *in, n, 1, out, sizeof *out),
             CTH_ETASK);
    int e = cth_task_error();
    CHECK(e <= -1003 && (-1000 - e) % 7 == 3);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(out[i], i % 7 == 3 ? 0 : (long long)i * (long long)i);
    free(in);
    free(out);
    cth_pool_free(p);
}

/* reverse the bytes; an input of "fail" fails with 77 */
static int reverse(const void *in, size_t in_size, void **out, size_t *out_size)
{
    if (in_size == 4 && memcmp(in, "fail", 4) == 0)
        return 77;
    char *b = malloc(in_size ? in_size : 1);
    if (!b)
        return 1;
    for (size_t i = 0; i < in_size; i++)
        b[i] = ((const char *)in)[in_size - 1 - i];
    *out = b;
    *out_size = in_size;
    return 0;
}

static void check_reverse(cth_pool_t *p, size_t len)
{
    char *in = malloc(len + 1);
    CHECK(in != NULL);
    for (size_t i = 0; i < len; i++)
        in[i] = (char)('a' + i % 23);
    void *out = NULL;
    size_t out_len = 1;
    CHECK_OK(cth_pool_apply_buffer(p, reverse, in, len, &out, &out_len));
    CHECK_EQ(out_len, len);
    CHECK((out == NULL) == (len == 0));
    for (size_t i = 0; i < len; i++)
        if (((char *)out)[i] != in[len - 1 - i])
            CHECK_EQ(((char *)out)[i], in[len - 1 - i]);
    free(out);
    free(in);
}

CTH_TEST(apply_buffer_sizes)
{
    SKIP_WITHOUT_PROCESSES();
    cth_pool_t *p = proc_pool(2, CTH_START_FORK);
    size_t sizes[] = {0, 1, 100, 65536, 65537, 1 << 20, 8 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_reverse(p, sizes[i]);
    CHECK_EQ(cth_pool_apply_buffer(p, reverse, "fail", 4, NULL, NULL), CTH_ETASK);
    CHECK_EQ(cth_task_error(), 77);
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_buffer_async(p, reverse, "abc", 3, NULL, &r));
    void *out;
    size_t len;
    CHECK_OK(cth_result_get_buffer(r, &out, &len, 10));
    CHECK(len == 3 && memcmp(out, "cba", 3) == 0);
    cth_result_free(r);
    cth_pool_free(p);
}

/* The pointer calls are refused on processes. */
static int nop_task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

CTH_TEST(pointer_calls_not_supported)
{
    SKIP_WITHOUT_PROCESSES();
    cth_pool_t *p = proc_pool(1, CTH_START_FORK);
    void *items[1] = {NULL};
    CHECK_EQ(cth_pool_apply(p, nop_task, NULL, NULL), CTH_ENOTSUP);
    CHECK_EQ(cth_pool_map(p, nop_task, items, 1, 0, NULL), CTH_ENOTSUP);
    cth_pool_free(p);
}
