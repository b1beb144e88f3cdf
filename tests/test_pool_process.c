/* SPDX-License-Identifier: MIT */
/*
 * test_pool_process.c - the process pool (pool_process.c) and the platform
 * pieces under it: shared memory and process-shared futexes. Most tests run
 * under every start method (over_methods): maps checked item by item (1M
 * records too), buffers of every size, each kind of worker death during
 * map, imap and apply_buffer_async, task timeouts, terminate with work in
 * flight, free leaving no process or descriptor, maxtasksperchild, the
 * initializer, the program killed, garbage from a worker, fork of the
 * program, and one program giving the same results on both backends. They
 * skip where a process pool cannot be created (not Linux, valgrind).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "check.h"
#include "platform.h"
#include "process_pools.h"
#include "record_tasks.h"

#define SKIP_WITHOUT_PROCESSES()                                                                   \
    do {                                                                                           \
        if (no_processes())                                                                        \
            CHECK_SKIP(no_processes());                                                            \
    } while (0)

/* ---- the platform pieces ------------------------------------------------------------- */

/* A memfd mapped twice (as a proxy and its worker do), the second time in a
 * fork child that gets the descriptor, not the mapping (MADV_DONTFORK):
 * writes meet, and the futex wakes across the processes. */
CTH_TEST(shared_memory_and_futex_across_processes)
{
    if (!HAVE_PROCESSES)
        CHECK_SKIP("memfds and process-shared futexes are Linux's");
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
    if (!HAVE_PROCESSES)
        CHECK_SKIP("memfds and process-shared futexes are Linux's");
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
    if (!HAVE_PROCESSES)
        CHECK_SKIP("memfds and process-shared futexes are Linux's");
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

static cth_pool_t *proc_pool_opts(cth_pool_opts_t o)
{
    o.backend = CTH_POOL_PROCESSES;
    cth_pool_t *p = NULL;
    int err = cth_pool_create(&p, &o);
    CHECK_OK(err);
    CHECK(p != NULL);
    CHECK_EQ(cth_pool_backend(p), CTH_POOL_PROCESSES);
    return p;
}

static cth_pool_t *proc_pool(size_t workers, cth_start_method_t method)
{
    return proc_pool_opts((cth_pool_opts_t){.processes = workers, .start_method = method});
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

static void map_records_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(2, method);
    check_map_squares(p, 1000, 0);
    check_map_squares(p, 1000, 1);
    check_map_squares(p, 1, 0);
    CHECK_OK(cth_pool_map_records(p, square, NULL, sizeof(int), 0, 0, NULL, sizeof(long long)));
    cth_pool_free(p);
}

CTH_TEST(map_records)
{
    over_methods(map_records_with);
}

/* 1M 8-byte records, checked item by item. */
static void map_records_million_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(2, method);
    size_t n = 1000000;
    long long *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    CHECK(in && out);
    double procs = map_squares_checked(p, in, out, n);
    cth_pool_t *t = NULL;
    CHECK_OK(cth_pool_create(&t, &(cth_pool_opts_t){.processes = 2}));
    memset(out, 0, n * sizeof *out);
    double threads = map_squares_checked(t, in, out, n);
    printf("1M records: processes %.2f ms, threads %.2f ms\n", procs * 1e3, threads * 1e3);
    cth_pool_free(t);
    free(in);
    free(out);
    cth_pool_free(p);
}

CTH_TEST(map_records_million)
{
    over_methods(map_records_million_with);
}

/* A failing task fails the map with CTH_ETASK and its value; the others
 * ran. */
static void map_records_task_failure_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(2, method);
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

CTH_TEST(map_records_task_failure)
{
    over_methods(map_records_task_failure_with);
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

static void apply_buffer_sizes_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(2, method);
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

CTH_TEST(apply_buffer_sizes)
{
    over_methods(apply_buffer_sizes_with);
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

/* ---- worker death -------------------------------------------------------------------- */

enum death { LIVE, SEGV, KILL, ABORT, EXIT3, EXIT0, NDEATHS };
static const char *const death_names[NDEATHS] = {"live", "segv", "kill", "abort", "exit3", "exit0"};

/* A record: its number, and how the worker that runs it dies (LIVE: it
 * returns x * 10). */
struct victim {
    int x;
    int death;
};

static int *volatile nowhere; /* NULL, which the compiler cannot know */

static void die(int death)
{
    switch (death) {
    case SEGV: *(volatile int *)nowhere = 1; break;
    case KILL: raise(SIGKILL); break;
    case ABORT: abort();
    case EXIT3: _exit(3);
    case EXIT0: _exit(0);
    default: break;
    }
}

static int maybe_die(const void *in, void *out)
{
    const struct victim *v = in;
    die(v->death);
    *(int *)out = v->x * 10;
    return 0;
}

/* The wait status a worker dying of death leaves. */
static void check_status(int death, int status)
{
    switch (death) {
    case SEGV:
        if (!SANITIZED)
            CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
        else
            CHECK(status != 0);
        break;
    case KILL: CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL); break;
    case ABORT: CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT); break;
    case EXIT3: CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3); break;
    case EXIT0: CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0); break;
    default: CHECK(!"a death");
    }
}

/* No core files from the deaths (workers inherit the limit). */
static void no_core_files(void)
{
    struct rlimit none = {0, 0};
    CHECK_OK(setrlimit(RLIMIT_CORE, &none));
}

#define DEATH_N 20
#define DEATH_AT 7

static void fill_victims(struct victim *v, int death)
{
    for (int i = 0; i < DEATH_N; i++)
        v[i] = (struct victim){i, i == DEATH_AT ? death : LIVE};
}

/* map_records with a worker dying at item DEATH_AT: that item fails with
 * CTH_EWORKER and the status; with chunksize 1 every other item has its
 * result; with chunksize 5 its chunk stops there (5, 6 done; 8, 9 not
 * run); the pool goes on. */
static void check_map_death(cth_pool_t *p, int death, size_t chunksize)
{
    struct victim v[DEATH_N];
    int out[DEATH_N];
    fill_victims(v, death);
    memset(out, 0, sizeof out);
    CHECK_EQ(cth_pool_map_records(p, maybe_die, v, sizeof *v, DEATH_N, chunksize, out, sizeof *out),
             CTH_EWORKER);
    check_status(death, cth_task_error());
    for (int i = 0; i < DEATH_N; i++) {
        bool skipped = chunksize > 1 && i > DEATH_AT &&
                       (size_t)i / chunksize == DEATH_AT / chunksize;
        CHECK_EQ(out[i], i == DEATH_AT || skipped ? 0 : i * 10);
    }
    check_map_squares(p, 100, 0); /* a new worker took its place */
}

/* imap_records (chunksize 1) with a death: CTH_EWORKER at its position,
 * the others in order. */
static void check_imap_death(cth_pool_t *p, int death, bool ordered)
{
    struct victim v[DEATH_N];
    int out[DEATH_N];
    fill_victims(v, death);
    memset(out, 0, sizeof out);
    cth_imap_t *it;
    if (ordered)
        CHECK_OK(
            cth_pool_imap_records(p, maybe_die, v, sizeof *v, DEATH_N, 1, out, sizeof *out, &it));
    else
        CHECK_OK(cth_pool_imap_unordered_records(p, maybe_die, v, sizeof *v, DEATH_N, 1, out,
                                                 sizeof *out, &it));
    int failures = 0;
    for (int i = 0; i < DEATH_N; i++) {
        void *value = NULL;
        int err = cth_imap_next(it, &value, 30);
        if (err == CTH_EWORKER) {
            if (ordered)
                CHECK_EQ(i, DEATH_AT);
            check_status(death, cth_task_error());
            failures++;
            continue;
        }
        CHECK_OK(err);
        int at = (int)((int *)value - out);
        if (ordered)
            CHECK_EQ(at, i);
        CHECK_EQ(*(int *)value, at * 10);
    }
    CHECK_EQ(failures, 1);
    CHECK_EQ(cth_imap_next(it, NULL, 30), CTH_IMAP_END);
    cth_imap_free(it);
}

static int buffer_maybe_die(const void *in, size_t in_size, void **out, size_t *out_size)
{
    CHECK_EQ(in_size, sizeof(struct victim));
    die(((const struct victim *)in)->death);
    return reverse(in, in_size, out, out_size);
}

/* apply_buffer_async: the dying task fails alone; those around it run. */
static void check_buffer_death(cth_pool_t *p, int death)
{
    cth_result_t *r[5];
    for (int i = 0; i < 5; i++) {
        struct victim v = {i, i == 2 ? death : LIVE};
        CHECK_OK(cth_pool_apply_buffer_async(p, buffer_maybe_die, &v, sizeof v, NULL, &r[i]));
    }
    for (int i = 0; i < 5; i++) {
        void *out;
        size_t len;
        int err = cth_result_get_buffer(r[i], &out, &len, 30);
        if (i == 2) {
            CHECK_EQ(err, CTH_EWORKER);
            check_status(death, cth_task_error());
            CHECK(!cth_result_successful(r[i]));
        } else {
            CHECK_OK(err);
            CHECK_EQ(len, sizeof(struct victim));
        }
        cth_result_free(r[i]);
    }
    /* apply_buffer, which the calling thread runs on an idle worker
     * itself: the same, and the next call finds a worker */
    struct victim v = {0, death};
    CHECK_EQ(cth_pool_apply_buffer(p, buffer_maybe_die, &v, sizeof v, NULL, NULL), CTH_EWORKER);
    check_status(death, cth_task_error());
    for (int i = 0; i < 3; i++) {
        v.death = LIVE;
        size_t len = 0;
        CHECK_OK(cth_pool_apply_buffer(p, buffer_maybe_die, &v, sizeof v, NULL, &len));
        CHECK_EQ(len, sizeof v);
    }
}

static void worker_death_contained_with(cth_start_method_t method)
{
    no_core_files();
    cth_pool_t *p = proc_pool(2, method);
    for (int death = SEGV; death < NDEATHS; death++) {
        printf("%s\n", death_names[death]);
        check_map_death(p, death, 1);
        check_map_death(p, death, 5);
        check_imap_death(p, death, true);
        check_imap_death(p, death, false);
        check_buffer_death(p, death);
    }
    cth_pool_free(p);
}

CTH_TEST(worker_death_contained)
{
    over_methods(worker_death_contained_with);
}

/* ---- batches of buffer tasks -------------------------------------------------------------- */

#define NAP NDEATHS /* a victim's death that is a 10 s nap instead */
#define BATCH_N 300
#define BATCH_AT 152

/* x as an int, in 30000 bytes for every fifth x (too many for the results
 * of one batch to fit inline), fails with 100 + x for every seventh x (x %
 * 7 == 3), or dies its death */
static int batch_task(const void *in, size_t in_size, void **out, size_t *out_size)
{
    CHECK_EQ(in_size, sizeof(struct victim));
    const struct victim *v = in;
    if (v->death == NAP) {
        struct timespec ts = {10, 0};
        nanosleep(&ts, NULL);
    }
    die(v->death);
    if (v->x % 7 == 3)
        return 100 + v->x;
    size_t size = v->x % 5 == 0 ? 30000 : sizeof(int);
    int *b = calloc(1, size);
    if (!b)
        return 1;
    b[0] = v->x * 10;
    *out = b;
    *out_size = size;
    return 0;
}

/* BATCH_N buffer tasks queued at once (a proxy runs the lone tasks behind
 * the one it took as one batch once it has timed their function), the one
 * at BATCH_AT dying its death. Returns the results, checked: the dying
 * task alone fails (the others of its batch keep their results or run on
 * the new worker), each failing task fails alone. cancelled: after
 * terminate, tasks not run are CTH_ECANCELED. */
static void check_batch(cth_pool_t *p, int death, int code, bool cancelled)
{
    cth_result_t *r[BATCH_N];
    for (int i = 0; i < 4; i++) { /* the function timed */
        struct victim v = {1, LIVE};
        CHECK_OK(cth_pool_apply_buffer_async(p, batch_task, &v, sizeof v, NULL, &r[i]));
    }
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cth_result_get_buffer(r[i], NULL, NULL, 30));
        cth_result_free(r[i]);
    }
    for (int i = 0; i < BATCH_N; i++) {
        struct victim v = {i, i == BATCH_AT ? death : LIVE};
        CHECK_OK(cth_pool_apply_buffer_async(p, batch_task, &v, sizeof v, NULL, &r[i]));
    }
    if (cancelled) {
        cth_sleep(0.3);
        CHECK_OK(cth_pool_terminate(p));
    }
    for (int i = 0; i < BATCH_N; i++) {
        void *out = NULL;
        size_t len = 0;
        int err = cth_result_get_buffer(r[i], &out, &len, 30);
        if (i == BATCH_AT) {
            CHECK_EQ(err, code);
            if (code == CTH_EWORKER)
                check_status(death, cth_task_error());
        } else if (cancelled && err == CTH_ECANCELED) {
            /* not run before terminate */
        } else if (i % 7 == 3) {
            CHECK_EQ(err, CTH_ETASK);
            CHECK_EQ(cth_task_error(), 100 + i);
        } else {
            CHECK_OK(err);
            CHECK_EQ(len, i % 5 == 0 ? 30000 : sizeof(int));
            CHECK_EQ(*(int *)out, i * 10);
        }
        cth_result_free(r[i]);
    }
}

static void buffer_batches_keep_tasks_apart_with(cth_start_method_t method)
{
    no_core_files();
    cth_pool_t *p = proc_pool(2, method);
    check_batch(p, LIVE, 0, false);
    check_batch(p, SEGV, CTH_EWORKER, false);
    check_batch(p, KILL, CTH_EWORKER, false);
    check_batch(p, EXIT3, CTH_EWORKER, false);
    double start = check_now();
    check_batch(p, NAP, CTH_ECANCELED, true);
    CHECK(check_now() - start < 5); /* not the 10 s of the stuck task */
    cth_pool_free(p);
    p = proc_pool_opts(
        (cth_pool_opts_t){.processes = 2, .start_method = method, .task_timeout = 0.3});
    check_batch(p, NAP, CTH_ETIMEDOUT, false);
    cth_pool_free(p);
}

CTH_TEST(buffer_batches_keep_tasks_apart)
{
    over_methods(buffer_batches_keep_tasks_apart_with);
}

/* ---- task timeouts --------------------------------------------------------------------- */

/* x * 10, after a nap of x ms (an x of 10000: 10 s) */
static int napper(const void *in, void *out)
{
    int x = *(const int *)in;
    struct timespec ts = {x / 1000, (long)(x % 1000) * 1000000};
    nanosleep(&ts, NULL);
    *(int *)out = x * 10;
    return 0;
}

static int buffer_napper(const void *in, size_t in_size, void **out, size_t *out_size)
{
    CHECK_EQ(in_size, sizeof(int));
    int r;
    return napper(in, &r) || reverse(in, in_size, out, out_size);
}

static void task_timeout_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool_opts(
        (cth_pool_opts_t){.processes = 2, .start_method = method, .task_timeout = 0.6});
    /* the pool's timeout: the stuck item fails, the others run */
    int in[6] = {1, 2, 10000, 3, 4, 5}, out[6] = {0};
    double start = check_now();
    CHECK_EQ(cth_pool_map_records(p, napper, in, sizeof *in, 6, 1, out, sizeof *out),
             CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.6);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(out[i], i == 2 ? 0 : in[i] * 10);
    /* per item: a chunk longer than the timeout whose items are not (each
     * 0.45 s under it, so that a loaded machine's delays do not matter) */
    int slow[5] = {150, 150, 150, 150, 150}, slow_out[5];
    CHECK_OK(cth_pool_map_records(p, napper, slow, sizeof *slow, 5, 5, slow_out, sizeof *slow_out));
    /* a call's own timeout overrides the pool's */
    cth_result_t *r;
    int one = 500, one_out = 0;
    CHECK_OK(cth_pool_map_records_async(p, napper, &one, sizeof one, 1, 1,
                                        &(cth_result_opts_t){.task_timeout = 2}, &one_out,
                                        sizeof one_out, &r));
    CHECK_OK(cth_result_get(r, NULL, 30));
    CHECK_EQ(one_out, 5000);
    cth_result_free(r);
    cth_pool_free(p);

    /* a pool without one, a call with one */
    p = proc_pool(1, method);
    int stuck = 10000;
    start = check_now();
    CHECK_OK(cth_pool_apply_buffer_async(p, buffer_napper, &stuck, sizeof stuck,
                                         &(cth_result_opts_t){.task_timeout = 0.2}, &r));
    CHECK_EQ(cth_result_get_buffer(r, NULL, NULL, 30), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.2);
    cth_result_free(r);
    check_reverse(p, 10); /* a new worker */
    cth_pool_free(p);

    /* apply_buffer run by the calling thread on an idle worker: the same */
    p = proc_pool_opts(
        (cth_pool_opts_t){.processes = 1, .start_method = method, .task_timeout = 0.2});
    start = check_now();
    CHECK_EQ(cth_pool_apply_buffer(p, buffer_napper, &stuck, sizeof stuck, NULL, NULL),
             CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.2);
    check_reverse(p, 10);
    CHECK_EQ(cth_pool_map_records_async(p, napper, &one, sizeof one, 1, 1,
                                        &(cth_result_opts_t){.task_timeout = -1}, &one_out,
                                        sizeof one_out, &r),
             CTH_EINVAL);
    cth_pool_free(p);
}

CTH_TEST(task_timeout)
{
    over_methods(task_timeout_with);
}

/* ---- terminate, free, maxtasksperchild, initializer ------------------------------------------ */

/* The pool's workers' pids: a map of getpid() over many items. */
static int my_pid(const void *in, void *out)
{
    CHECK(in == NULL);
    *(pid_t *)out = getpid();
    return 0;
}

/* Whether a process has ended (gone, or a zombie). */
static bool process_gone(pid_t pid)
{
    char path[64], state = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    int got = fscanf(f, "%*d (%*[^)]) %c", &state);
    fclose(f);
    return got != 1 || state == 'Z' || state == 'X';
}

/* Up to two of the pool's workers' pids (0 where none), by a map of
 * getpid(). */
static void worker_pids(cth_pool_t *p, pid_t two[2])
{
    pid_t pids[64];
    CHECK_OK(cth_pool_map_records(p, my_pid, NULL, 0, 64, 1, pids, sizeof *pids));
    two[0] = pids[0];
    two[1] = 0;
    for (int i = 1; i < 64 && !two[1]; i++)
        if (pids[i] != pids[0])
            two[1] = pids[i];
}

/* The workers are gone (a FORK worker, our child, reaped; a fork server's
 * worker may take a moment to be reaped by its server), and no child of
 * ours is a zombie (the fork server, one per program, lives on). */
static void check_gone(const pid_t two[2])
{
    for (int i = 0; i < 2; i++) {
        double start = check_now();
        while (two[i] && !process_gone(two[i]) && check_now() - start < 5)
            cth_sleep(0.01);
        CHECK(!two[i] || process_gone(two[i]));
    }
    CHECK(waitpid(-1, NULL, WNOHANG) <= 0);
}

static _Atomic int cancelled_callbacks;

static void on_error(void *arg, int err)
{
    (void)arg;
    if (err == CTH_ECANCELED)
        atomic_fetch_add(&cancelled_callbacks, 1);
}

/* napper, in a worker that ignores SIGTERM */
static int stubborn_napper(const void *in, void *out)
{
    signal(SIGTERM, SIG_IGN);
    return napper(in, out);
}

static void terminate_with_work_in_flight_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(2, method);
    pid_t two[2];
    worker_pids(p, two);
    atomic_store(&cancelled_callbacks, 0);
    int in[8], out[8] = {0};
    for (int i = 0; i < 8; i++)
        in[i] = 10000;
    cth_result_t *map, *buf;
    cth_result_opts_t cb = {.error_callback = on_error};
    CHECK_OK(cth_pool_map_records_async(p, stubborn_napper, in, sizeof *in, 8, 1, &cb, out,
                                        sizeof *out, &map));
    CHECK_OK(cth_pool_apply_buffer_async(p, buffer_napper, in, sizeof *in, &cb, &buf));
    cth_sleep(0.2); /* two items running */
    double start = check_now();
    CHECK_OK(cth_pool_terminate(p));
    CHECK_EQ(cth_result_get(map, NULL, 30), CTH_ECANCELED);
    CHECK_WAITED_AT_LEAST(start, 0.1); /* its worker ignored SIGTERM: SIGKILL came later */
    CHECK_EQ(cth_result_get_buffer(buf, NULL, NULL, 30), CTH_ECANCELED);
    CHECK(check_now() - start < 5); /* not the 10 s of the tasks */
    CHECK_EQ(atomic_load(&cancelled_callbacks), 2);
    CHECK_OK(cth_pool_join(p, 30));
    check_gone(two);
    cth_result_free(map);
    cth_result_free(buf);
    cth_pool_free(p);
}

CTH_TEST(terminate_with_work_in_flight)
{
    over_methods(terminate_with_work_in_flight_with);
}

static void *terminate_later(void *arg)
{
    cth_sleep(0.2);
    CHECK_OK(cth_pool_terminate(arg));
    return NULL;
}

/* terminate while apply_buffer calls run their tasks on the callers'
 * threads (one worker each): they finish with CTH_ECANCELED. */
static void terminate_during_apply_buffer_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(1, method);
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, terminate_later, p, NULL));
    CHECK_OK(cth_thread_start(t));
    int stuck = 10000;
    double start = check_now();
    CHECK_EQ(cth_pool_apply_buffer(p, buffer_napper, &stuck, sizeof stuck, NULL, NULL),
             CTH_ECANCELED);
    CHECK(check_now() - start < 5); /* not the 10 s of the task */
    CHECK_OK(cth_thread_join(t, NULL, 30));
    cth_thread_free(t);
    CHECK_EQ(cth_pool_apply_buffer(p, reverse, "ab", 2, NULL, NULL), CTH_EINVAL);
    cth_pool_free(p);
}

CTH_TEST(terminate_during_apply_buffer)
{
    over_methods(terminate_during_apply_buffer_with);
}

/* More threads calling apply_buffer than there are workers: some run on
 * an idle worker themselves, the others queue; every result right. */
static void *apply_buffer_caller(void *arg)
{
    for (size_t i = 0; i < 200; i++)
        check_reverse(arg, i % 50);
    return NULL;
}

static void apply_buffer_from_many_threads_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(2, method);
    cth_thread_t *t[4];
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cth_thread_create(&t[i], apply_buffer_caller, p, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    check_map_squares(p, 10000, 7); /* the proxies take chunks meanwhile */
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, 60));
        cth_thread_free(t[i]);
    }
    cth_pool_free(p);
}

CTH_TEST(apply_buffer_from_many_threads)
{
    over_methods(apply_buffer_from_many_threads_with);
}

static _Atomic bool hammering;

static void *apply_buffer_hammer(void *arg)
{
    while (atomic_load(&hammering))
        check_reverse(arg, 8);
    return NULL;
}

/* Threads calling apply_buffer without a pause on a pool of one worker,
 * whose proxy thread has a map to run: the callers hand the worker over
 * to it, so the map completes while they go on. */
static void direct_calls_do_not_starve_the_proxy_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(1, method);
    atomic_store(&hammering, true);
    cth_thread_t *t[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cth_thread_create(&t[i], apply_buffer_hammer, p, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    cth_sleep(0.05);
    long long in[64], out[64];
    for (int i = 0; i < 64; i++)
        in[i] = i;
    cth_result_t *r;
    CHECK_OK(cth_pool_map_records_async(p, square_ll, in, sizeof *in, 64, 4, NULL, out, sizeof *out,
                                        &r));
    CHECK_OK(cth_result_get(r, NULL, 30));
    cth_result_free(r);
    atomic_store(&hammering, false);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, 60));
        cth_thread_free(t[i]);
    }
    for (int i = 0; i < 64; i++)
        CHECK_EQ(out[i], (long long)i * i + 1);
    cth_pool_free(p);
}

CTH_TEST(direct_calls_do_not_starve_the_proxy)
{
    over_methods(direct_calls_do_not_starve_the_proxy_with);
}

static int by_number(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* The descriptors open now, as a sorted list in buf (the directory's own
 * among them, the same number each time when nothing else changed). */
static void open_fds(char *buf, size_t size)
{
    DIR *dir = opendir("/proc/self/fd");
    CHECK(dir != NULL);
    int fds[256], n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < 256)
        if (e->d_name[0] != '.')
            fds[n++] = atoi(e->d_name);
    closedir(dir);
    qsort(fds, (size_t)n, sizeof fds[0], by_number);
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < n && len < size; k++)
        len += (size_t)snprintf(buf + len, size - len, "%d ", fds[k]);
}

/* The descriptors open now are those listed in before. */
static void check_same_fds(const char *before)
{
    char after[1024];
    open_fds(after, sizeof after);
    if (strcmp(before, after) != 0) {
        fprintf(stderr, "before: %s\nafter:  %s\n", before, after);
        fflush(stderr);
    }
    CHECK(strcmp(before, after) == 0);
}

static void free_leaves_nothing_with(cth_start_method_t method)
{
    char before[1024];
    cth_pool_free(proc_pool(1, method)); /* the fork server starts once, and stays */
    open_fds(before, sizeof before);
    cth_pool_t *p = proc_pool(2, method);
    pid_t two[2];
    worker_pids(p, two);
    check_map_squares(p, 10000, 0);
    check_reverse(p, 100000); /* a buffer both ways by memfd */
    cth_result_t *r;
    CHECK_OK(cth_pool_apply_buffer_async(p, reverse, "xyz", 3, NULL, &r));
    cth_pool_free(p); /* a result still out: the pool's memory stays for it */
    CHECK_OK(cth_result_wait(r, 30));
    cth_result_free(r);
    check_gone(two);
    check_same_fds(before);

    /* closed and joined, then freed */
    p = proc_pool(2, method);
    worker_pids(p, two);
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, 30));
    check_gone(two);
    cth_pool_free(p);
    check_same_fds(before);
}

CTH_TEST(free_leaves_nothing)
{
    over_methods(free_leaves_nothing_with);
}

/* No descriptor of the pool leaks into the program's other children: every
 * descriptor open while a pool works (its channels, memfds, pidfds, the
 * fork server's socket) is close-on-exec, so an exec'd child gets none. */
static void descriptors_close_on_exec_with(cth_start_method_t method)
{
    bool was_open[1024] = {false}; /* the program's own, inherited or not */
    DIR *dir = opendir("/proc/self/fd");
    CHECK(dir != NULL);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        if (e->d_name[0] != '.' && atoi(e->d_name) < 1024)
            was_open[atoi(e->d_name)] = true;
    closedir(dir);
    cth_pool_t *p = proc_pool(2, method);
    check_map_squares(p, 10000, 0);
    check_reverse(p, 100000); /* memfds both ways */
    dir = opendir("/proc/self/fd");
    CHECK(dir != NULL);
    int listing = dirfd(dir), checked = 0;
    while ((e = readdir(dir)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == listing || (fd < 1024 && was_open[fd]))
            continue;
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            fprintf(stderr, "descriptor %d is not close-on-exec\n", fd);
        CHECK(flags < 0 || (flags & FD_CLOEXEC));
        checked++;
    }
    closedir(dir);
    CHECK(checked >= 2); /* at least the two workers' channels (and pidfds) */
    cth_pool_free(p);
}

CTH_TEST(descriptors_close_on_exec)
{
    over_methods(descriptors_close_on_exec_with);
}

static void maxtasksperchild_replaces_workers_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool_opts(
        (cth_pool_opts_t){.processes = 1, .start_method = method, .maxtasksperchild = 2});
    pid_t pids[10];
    CHECK_OK(cth_pool_map_records(p, my_pid, NULL, 0, 10, 1, pids, sizeof *pids));
    for (int i = 0; i < 10; i++) {
        CHECK(pids[i] != getpid());
        CHECK_EQ(pids[i], pids[i - i % 2]); /* two chunks each */
        if (i % 2 == 0 && i > 0)
            CHECK(pids[i] != pids[i - 1]);
    }
    cth_pool_free(p);
    for (int i = 0; i < 10; i += 2)
        check_gone((pid_t[2]){pids[i], 0});
}

CTH_TEST(maxtasksperchild_replaces_workers)
{
    over_methods(maxtasksperchild_replaces_workers_with);
}

static int init_seen; /* in a worker: what its initializer got */

static void init_worker(void *arg)
{
    const int *v = arg;
    init_seen = v[0] + v[1];
}

static int report_init(const void *in, void *out)
{
    CHECK(in == NULL);
    *(int *)out = init_seen;
    return 0;
}

static void initializer_in_each_worker_with(cth_start_method_t method)
{
    int arg[2] = {40, 2};
    cth_pool_t *p = proc_pool_opts((cth_pool_opts_t){.processes = 2,
                                                     .start_method = method,
                                                     .initializer = init_worker,
                                                     .initarg = arg,
                                                     .initarg_size = sizeof arg,
                                                     .maxtasksperchild = 3});
    arg[0] = 0; /* each worker has its copy, made at create */
    int out[12];
    CHECK_OK(cth_pool_map_records(p, report_init, NULL, 0, 12, 1, out, sizeof *out));
    for (int i = 0; i < 12; i++)
        CHECK_EQ(out[i], 42);
    CHECK_EQ(init_seen, 0); /* never in the program itself */
    cth_pool_free(p);
}

CTH_TEST(initializer_in_each_worker)
{
    over_methods(initializer_in_each_worker_with);
}

/* ---- the program killed ------------------------------------------------------------------ */

/* A program with a process pool: prints its workers' pids, then waits to
 * be killed. */
CTH_CHILD(pool_then_wait)
{
    const char *method = getenv("CTH_TEST_START_METHOD");
    CHECK(method != NULL);
    cth_pool_t *p = proc_pool(2, (cth_start_method_t)atoi(method));
    pid_t pids[64];
    CHECK_OK(cth_pool_map_records(p, my_pid, NULL, 0, 64, 1, pids, sizeof *pids));
    printf("%d", (int)pids[0]);
    for (int i = 1; i < 64; i++)
        if (pids[i] != pids[0]) {
            printf(" %d", (int)pids[i]);
            break;
        }
    printf("\n");
    fflush(stdout);
    cth_sleep(60);
}

static void parent_killed_leaves_no_orphans_with(cth_start_method_t method)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(len > 0);
    exe[len] = '\0';
    int fds[2];
    CHECK_OK(pipe(fds));
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char m[16];
        snprintf(m, sizeof m, "%d", (int)method);
        setenv("CTH_TEST_START_METHOD", m, 1);
        execl(exe, "child", "child_pool_then_wait", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[128] = {0};
    FILE *f = fdopen(fds[0], "r");
    CHECK(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    int a = 0, b = 0;
    CHECK(sscanf(line, "%d %d", &a, &b) >= 1);
    CHECK(a > 0 && !process_gone(a));
    CHECK_OK(kill(child, SIGKILL));
    CHECK(waitpid(child, NULL, 0) == child);
    double start = check_now();
    while (!(process_gone(a) && (b <= 0 || process_gone(b))) && check_now() - start < 1.5)
        cth_sleep(0.01);
    CHECK(process_gone(a));
    CHECK(b <= 0 || process_gone(b));
}

CTH_TEST(parent_killed_leaves_no_orphans)
{
    over_methods(parent_killed_leaves_no_orphans_with);
}

/* ---- a worker that breaks the protocol ------------------------------------------------------ */

/* Write garbage over every shared mapping of the library in this worker
 * (its control block among them), as a stray task could. */
static void scribble_shared(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL);
    char line[512];
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && strstr(line, "memfd:cthreading") &&
            perms[1] == 'w')
            memset((void *)lo, 0x7f, hi - lo);
    }
    fclose(maps);
}

static int scribbler(const void *in, void *out)
{
    int x = *(const int *)in;
    if (x == 2)
        scribble_shared();
    *(int *)out = x;
    return 0;
}

/* a buffer task that claims 100 bytes and gives none: an empty buffer, as
 * on threads */
static int buffer_liar(const void *in, size_t in_size, void **out, size_t *out_size)
{
    (void)in;
    (void)in_size;
    *out = NULL;
    *out_size = 100;
    return 0;
}

/* reverse, scribbling over the shared mappings first when the input says
 * "scribble" */
static int buffer_scribbler(const void *in, size_t in_size, void **out, size_t *out_size)
{
    if (in_size == 8 && memcmp(in, "scribble", 8) == 0)
        scribble_shared();
    return reverse(in, in_size, out, out_size);
}

/* A task of a batch that scribbles over its worker's block: it fails with
 * CTH_EPROTO, with the tasks of its batch whose reports the garbage
 * covers; every other task has its result; the pool goes on. */
static void check_batch_garbage(cth_pool_t *p)
{
    enum { N = 300, AT = 152 };
    cth_result_t *r[N];
    for (int i = 0; i < 4; i++) { /* the function timed */
        CHECK_OK(cth_pool_apply_buffer_async(p, buffer_scribbler, "abcd", 4, NULL, &r[i]));
        CHECK_OK(cth_result_get_buffer(r[i], NULL, NULL, 30));
        cth_result_free(r[i]);
    }
    for (int i = 0; i < N; i++)
        CHECK_OK(cth_pool_apply_buffer_async(p, buffer_scribbler, i == AT ? "scribble" : "abcdefgh",
                                             8, NULL, &r[i]));
    for (int i = 0; i < N; i++) {
        void *out = NULL;
        size_t len = 0;
        int err = cth_result_get_buffer(r[i], &out, &len, 30);
        if (i == AT || err == CTH_EPROTO) {
            CHECK_EQ(err, CTH_EPROTO);
        } else {
            CHECK_OK(err);
            CHECK(len == 8 && memcmp(out, "hgfedcba", 8) == 0);
        }
        cth_result_free(r[i]);
    }
    check_reverse(p, 100); /* a new worker */
}

static void garbage_from_a_worker_is_eproto_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(1, method);
    int in[4] = {0, 1, 2, 3}, out[4];
    CHECK_EQ(cth_pool_map_records(p, scribbler, in, sizeof *in, 4, 4, out, sizeof *out),
             CTH_EPROTO);
    check_map_squares(p, 100, 0); /* a new worker */
    void *buf = (void *)1;
    size_t len = 1;
    CHECK_OK(cth_pool_apply_buffer(p, buffer_liar, "abc", 3, &buf, &len));
    CHECK(buf == NULL && len == 0);
    check_batch_garbage(p);
    cth_pool_free(p);
}

CTH_TEST(garbage_from_a_worker_is_eproto)
{
    over_methods(garbage_from_a_worker_is_eproto_with);
}

/* ---- fork() of the program ------------------------------------------------------------------ */

/* The child inherits the pool terminated: it refuses work, and freeing it
 * neither kills nor waits for the parent's workers, which serve on. */
static void fork_child_forgets_the_workers_with(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(2, method);
    check_map_squares(p, 1000, 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        int in = 3, out;
        if (cth_pool_map_records(p, square, &in, sizeof in, 1, 1, &out, sizeof out) != CTH_EINVAL)
            _exit(3);
        cth_pool_free(p);
        _exit(0);
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pid_t two[2];
    worker_pids(p, two);
    cth_pool_free(p);
    check_gone(two);
}

CTH_TEST(fork_child_forgets_the_workers)
{
    over_methods(fork_child_forgets_the_workers_with);
}

/* ---- one program, both backends ------------------------------------------------------------- */

struct point {
    double x, y;
};

/* a point in, its distance from the origin and a class out; fails on a
 * negative x */
struct verdict {
    double r;
    int ring;
};

static int classify(const void *in, void *out)
{
    const struct point *pt = in;
    if (pt->x < 0)
        return 100 + (int)-pt->x;
    struct verdict *v = out;
    v->r = sqrt(pt->x * pt->x + pt->y * pt->y);
    v->ring = (int)v->r / 10;
    return 0;
}

static int summarize(const void *in, size_t in_size, void **out, size_t *out_size)
{
    size_t n = in_size / sizeof(struct point);
    double *sum = malloc(sizeof *sum);
    if (!sum)
        return 1;
    *sum = 0;
    for (size_t i = 0; i < n; i++)
        *sum += ((const struct point *)in)[i].x;
    *out = sum;
    *out_size = sizeof *sum;
    return 0;
}

/* The same calls on a pool: what they return, in one text. */
static void run_program(cth_pool_t *p, char *log, size_t size)
{
    enum { N = 5000 };
    static struct point pts[N];
    static struct verdict v[N];
    for (int i = 0; i < N; i++)
        pts[i] = (struct point){i % 97, i % 89};
    size_t len = 0;
    memset(v, 0, sizeof v);
    int err = cth_pool_map_records(p, classify, pts, sizeof *pts, N, 0, v, sizeof *v);
    long rings = 0;
    for (int i = 0; i < N; i++)
        rings += v[i].ring;
    len += (size_t)snprintf(log + len, size - len, "map %d rings %ld\n", err, rings);
    pts[1234].x = -7;
    err = cth_pool_map_records(p, classify, pts, sizeof *pts, N, 1, v, sizeof *v);
    len += (size_t)snprintf(log + len, size - len, "fail %d %d\n", err, cth_task_error());
    pts[1234].x = 1;
    cth_imap_t *it;
    CHECK_OK(cth_pool_imap_records(p, classify, pts, sizeof *pts, 50, 7, v, sizeof *v, &it));
    void *value;
    long sum = 0;
    while ((err = cth_imap_next(it, &value, 30)) == 0)
        sum += ((struct verdict *)value)->ring * (long)((struct verdict *)value - v);
    cth_imap_free(it);
    len += (size_t)snprintf(log + len, size - len, "imap %d %ld\n", err, sum);
    void *buf = NULL;
    size_t buf_len = 0;
    err = cth_pool_apply_buffer(p, summarize, pts, sizeof pts, &buf, &buf_len);
    len += (size_t)snprintf(log + len, size - len, "buffer %d %zu %.1f\n", err, buf_len,
                            buf ? *(double *)buf : -1);
    free(buf);
    CHECK(len < size);
}

static void same_results_on_both_backends_with(cth_start_method_t method)
{
    char on_threads[512], on_processes[512];
    cth_pool_t *p = NULL;
    CHECK_OK(cth_pool_create(&p, &(cth_pool_opts_t){.processes = 2}));
    run_program(p, on_threads, sizeof on_threads);
    cth_pool_free(p);
    p = proc_pool(2, method);
    run_program(p, on_processes, sizeof on_processes);
    cth_pool_free(p);
    if (strcmp(on_threads, on_processes) != 0)
        fprintf(stderr, "threads:\n%sprocesses:\n%s", on_threads, on_processes);
    CHECK(strcmp(on_threads, on_processes) == 0);
}

CTH_TEST(same_results_on_both_backends)
{
    over_methods(same_results_on_both_backends_with);
}

/* ---- functions in no loaded object -------------------------------------------------------- */

/* A function pointer into the heap: in no loaded object, so no worker can
 * find it. */
CTH_TEST(function_in_no_object_is_enoent)
{
    SKIP_WITHOUT_PROCESSES();
    void *heap = malloc(64);
    CHECK(heap != NULL);
    cth_pool_record_fn rec;
    cth_pool_buffer_fn buf;
    cth_pool_initializer_fn init;
    memcpy(&rec, &heap, sizeof rec);
    memcpy(&buf, &heap, sizeof buf);
    memcpy(&init, &heap, sizeof init);
    cth_pool_t *p = NULL;
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.processes = 1,
                                                    .backend = CTH_POOL_PROCESSES,
                                                    .initializer = init}),
             CTH_ENOENT);
    CHECK(p == NULL);
    p = proc_pool(1, CTH_START_FORK);
    int in = 1, out;
    CHECK_EQ(cth_pool_map_records(p, rec, &in, sizeof in, 1, 1, &out, sizeof out), CTH_ENOENT);
    cth_result_t *r;
    CHECK_EQ(cth_pool_apply_buffer_async(p, buf, &in, sizeof in, NULL, &r), CTH_ENOENT);
    cth_imap_t *it;
    CHECK_EQ(cth_pool_imap_records(p, rec, &in, sizeof in, 1, 1, &out, sizeof out, &it),
             CTH_ENOENT);
    check_map_squares(p, 10, 0); /* the pool is fine */
    cth_pool_free(p);
    free(heap);
}

/* A task whose large result the worker cannot hand back (no descriptor for
 * the memfd: the task lowered the worker's descriptor limit) fails alone
 * with CTH_EAGAIN; the worker lives on and serves the next task (which
 * raises the limit again), on the direct path and in batches alike. */
static struct rlimit saved_nofile;

static int fd_starved(const void *in, size_t in_size, void **out, size_t *out_size)
{
    CHECK_EQ(in_size, sizeof(int));
    int what = *(const int *)in;
    size_t len = what == 1 ? 2 * 65536 : 8; /* above the block's inline room */
    if (what == 1) {
        CHECK_OK(getrlimit(RLIMIT_NOFILE, &saved_nofile));
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* the lowest free one */
        CHECK(fd >= 0);
        close(fd);
        struct rlimit low = {(rlim_t)fd, saved_nofile.rlim_max};
        CHECK_OK(setrlimit(RLIMIT_NOFILE, &low));
    } else if (what == 2) {
        CHECK_OK(setrlimit(RLIMIT_NOFILE, &saved_nofile));
    }
    *out = calloc(1, len);
    if (!*out)
        return 1;
    *out_size = len;
    return 0;
}

CTH_TEST(result_not_handed_back_fails_alone)
{
    SKIP_WITHOUT_PROCESSES();
    cth_pool_t *p = proc_pool(1, CTH_START_FORKSERVER);
    int zero = 0, one = 1, two = 2;
    size_t len = 0;
    CHECK_OK(cth_pool_apply_buffer(p, fd_starved, &zero, sizeof zero, NULL, &len));
    CHECK_EQ(cth_pool_apply_buffer(p, fd_starved, &one, sizeof one, NULL, &len), CTH_EAGAIN);
    CHECK_OK(cth_pool_apply_buffer(p, fd_starved, &two, sizeof two, NULL, &len));
    CHECK_EQ(len, (size_t)8);
    /* queued together: the batch's other tasks keep their results */
    for (int round = 0; round < 20; round++) {
        const int *ins[3] = {&zero, &one, &two};
        cth_result_t *r[3];
        for (int i = 0; i < 3; i++)
            CHECK_OK(cth_pool_apply_buffer_async(p, fd_starved, ins[i], sizeof(int), NULL, &r[i]));
        for (int i = 0; i < 3; i++) {
            int err = cth_result_get_buffer(r[i], NULL, &len, CTH_FOREVER);
            CHECK_EQ(err, i == 1 ? CTH_EAGAIN : 0);
            CHECK(err || len == 8);
            cth_result_free(r[i]); /* the buffer is the result's */
        }
    }
    cth_pool_free(p);
}
