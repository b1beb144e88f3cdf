/* SPDX-License-Identifier: MIT */
/*
 * test_pool_shared.c - shared allocations (cth_pool_shared_alloc) and the
 * record maps that read and write them in place: on threads, and on
 * processes under every start method (in and out shared, one side only,
 * two allocations, more allocations than a worker keeps mapped, map_async,
 * both imaps),
 * with a worker crashing mid-map, one that cannot map an allocation, a
 * free while an async map runs,
 * terminate and maxtasksperchild, a 1M-record map checked item by item,
 * and nothing left behind by cth_pool_free.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "check.h"
#include "process_pools.h"
#include "record_tasks.h"

static cth_pool_t *pool_opts(cth_pool_opts_t o)
{
    cth_pool_t *p = NULL;
    CHECK_OK(cth_pool_create(&p, &o));
    CHECK(p != NULL);
    return p;
}

static cth_pool_t *proc_pool(size_t workers, cth_start_method_t method)
{
    return pool_opts((cth_pool_opts_t){
        .processes = workers, .backend = CTH_POOL_PROCESSES, .start_method = method});
}

static void *shared(cth_pool_t *p, size_t size)
{
    void *mem = NULL;
    CHECK_OK(cth_pool_shared_alloc(p, size, &mem));
    CHECK(mem != NULL);
    return mem;
}

/* An input record: its number, a mark the task sets in it (the proof that
 * the worker read it in place), and how the worker dies at it. */
struct rec {
    long long x;
    int mark;
    int death;
};

/* An output record: the task writes `value` only; `guard`, left alone,
 * keeps what the caller put there when the output is written in place
 * (a copy back would overwrite it). */
struct res {
    long long value;
    long long guard;
};

#define GUARD 0x5a5a5a5a5a5a5a5aLL

enum death { LIVE, SEGV };
static int *volatile nowhere; /* NULL, which the compiler cannot know */

static int task(const void *in, void *out)
{
    struct rec *r = (struct rec *)in; /* a test's liberty: the mark proves where in lies */
    if (r->death == SEGV)
        *(volatile int *)nowhere = 1;
    r->mark = 1;
    ((struct res *)out)->value = r->x * r->x + 1;
    return 0;
}

static void fill(struct rec *in, struct res *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        in[i] = (struct rec){(long long)i, 0, LIVE};
        out[i] = (struct res){-1, GUARD};
    }
}

/* The results of a map over fill's records: every value right; the guards
 * kept where the outputs were in place, the marks set where the inputs
 * were. */
static void check_results(const struct rec *in, const struct res *out, size_t n, bool in_place,
                          bool out_place)
{
    for (size_t i = 0; i < n; i++) {
        long long x = (long long)i;
        if (out[i].value != x * x + 1)
            CHECK_EQ(out[i].value, x * x + 1);
        if (out_place && out[i].guard != GUARD)
            CHECK_EQ(out[i].guard, GUARD);
        if (in[i].mark != (in_place ? 1 : 0))
            CHECK_EQ(in[i].mark, in_place ? 1 : 0);
    }
}

/* Every combination of in and out in shared memory or not, with the
 * calls of both kinds (a blocking map, map_async, imap). */
static void check_sides(cth_pool_t *p, size_t n, bool in_place, bool out_place)
{
    struct rec *in = in_place ? shared(p, n * sizeof *in) : malloc(n * sizeof *in);
    struct res *out = out_place ? shared(p, n * sizeof *out) : malloc(n * sizeof *out);
    CHECK(in && out);
    bool threads = cth_pool_backend(p) == CTH_POOL_THREADS;
    fill(in, out, n);
    CHECK_OK(cth_pool_map_records(p, task, in, sizeof *in, n, 0, out, sizeof *out));
    check_results(in, out, n, in_place || threads, out_place || threads);

    fill(in, out, n);
    cth_result_t *r;
    CHECK_OK(cth_pool_map_records_async(p, task, in, sizeof *in, n, 7, NULL, out, sizeof *out, &r));
    void *value = NULL;
    CHECK_OK(cth_result_get(r, &value, 30));
    CHECK(value == out);
    cth_result_free(r);
    check_results(in, out, n, in_place || threads, out_place || threads);

    fill(in, out, n);
    cth_imap_t *it;
    CHECK_OK(cth_pool_imap_records(p, task, in, sizeof *in, n, 5, out, sizeof *out, &it));
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(cth_imap_next(it, &value, 30));
        CHECK(value == &out[i]);
        CHECK_EQ(out[i].value, (long long)i * (long long)i + 1); /* there as it is yielded */
    }
    CHECK_EQ(cth_imap_next(it, &value, 30), CTH_IMAP_END);
    cth_imap_free(it);
    check_results(in, out, n, in_place || threads, out_place || threads);

    fill(in, out, n);
    CHECK_OK(cth_pool_imap_unordered_records(p, task, in, sizeof *in, n, 3, out, sizeof *out, &it));
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(cth_imap_next(it, &value, 30));
        size_t at = (size_t)((struct res *)value - out);
        CHECK(at < n);
        CHECK_EQ(out[at].value, (long long)at * (long long)at + 1);
    }
    CHECK_EQ(cth_imap_next(it, &value, 30), CTH_IMAP_END);
    cth_imap_free(it);
    check_results(in, out, n, in_place || threads, out_place || threads);

    if (in_place)
        CHECK_OK(cth_pool_shared_free(p, in));
    else
        free(in);
    if (out_place)
        CHECK_OK(cth_pool_shared_free(p, out));
    else
        free(out);
}

static void all_sides(cth_pool_t *p)
{
    for (int s = 0; s < 4; s++)
        check_sides(p, 1000, s & 1, s & 2);
}

/* The memory: zeroed, page-aligned, writable to its last byte; frees
 * refused for what is not an allocation. */
static void check_alloc_free(cth_pool_t *p)
{
    long page = sysconf(_SC_PAGESIZE);
    char *a = shared(p, 10);
    char *b = shared(p, (size_t)page * 3 + 1);
    CHECK_EQ((uintptr_t)a % (uintptr_t)page, 0);
    CHECK_EQ((uintptr_t)b % (uintptr_t)page, 0);
    for (long i = 0; i < page * 3 + 1; i++)
        if (b[i] != 0)
            CHECK_EQ(b[i], 0);
    memset(a, 1, 10);
    b[page * 3] = 7;
    int local;
    CHECK_EQ(cth_pool_shared_free(p, b + 1), CTH_EINVAL); /* inside one */
    CHECK_EQ(cth_pool_shared_free(p, &local), CTH_EINVAL);
    CHECK_OK(cth_pool_shared_free(p, NULL));
    CHECK_OK(cth_pool_shared_free(p, b));
    CHECK_EQ(cth_pool_shared_free(p, b), CTH_EINVAL); /* twice */
    CHECK_EQ(a[9], 1);
    CHECK_OK(cth_pool_shared_free(p, a));
    /* another pool's allocation is not this one's */
    cth_pool_t *q = pool_opts((cth_pool_opts_t){.processes = 1});
    char *c = shared(q, 100);
    CHECK_EQ(cth_pool_shared_free(p, c), CTH_EINVAL);
    CHECK_OK(cth_pool_shared_free(q, c));
    cth_pool_free(q);
}

CTH_TEST(threads)
{
    cth_pool_t *p = pool_opts((cth_pool_opts_t){.processes = 3});
    check_alloc_free(p);
    all_sides(p);
    char *left = shared(p, 1 << 20); /* freed by cth_pool_free */
    left[0] = 1;
    cth_pool_free(p);
}

static void each_method(cth_start_method_t method)
{
    cth_pool_t *p = proc_pool(2, method);
    check_alloc_free(p);
    all_sides(p);
    cth_pool_free(p);
}

CTH_TEST(processes_each_start_method)
{
    over_methods(each_method);
}

/* in and out in two allocations, and more allocations than a worker keeps
 * mapped (4): each map sends the worker what it lacks, unmapping the one
 * least recently used; maps over each, again and in another order, are
 * right. */
static void many_allocations(cth_start_method_t method)
{
    enum { N = 500, K = 7 };
    cth_pool_t *p = proc_pool(1, method);
    struct rec *in[K];
    struct res *out[K];
    for (int k = 0; k < K; k++) {
        in[k] = shared(p, N * sizeof *in[k]);
        out[k] = shared(p, N * sizeof *out[k]);
    }
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < K; k++) {
            int a = round == 1 ? K - 1 - k : k, b = round == 2 ? (k * 3) % K : a;
            fill(in[a], out[b], N);
            CHECK_OK(
                cth_pool_map_records(p, task, in[a], sizeof *in[a], N, 50, out[b], sizeof *out[b]));
            check_results(in[a], out[b], N, true, true);
        }
    /* in and out inside one allocation, apart */
    struct rec *both = shared(p, 2 * N * sizeof(struct rec));
    struct res *after = (struct res *)(both + N);
    fill(both, after, N);
    CHECK_OK(cth_pool_map_records(p, task, both, sizeof *both, N, 0, after, sizeof *after));
    check_results(both, after, N, true, true);
    CHECK_OK(cth_pool_shared_free(p, both));
    for (int k = 0; k < K; k++) {
        CHECK_OK(cth_pool_shared_free(p, in[k]));
        CHECK_OK(cth_pool_shared_free(p, out[k]));
    }
    cth_pool_free(p);
}

CTH_TEST(two_and_many_allocations)
{
    over_methods(many_allocations);
}

/* Records not wholly inside an allocation are copied as ordinary memory. */
CTH_TEST(partly_shared_is_copied)
{
    if (no_processes())
        CHECK_SKIP(no_processes());
    cth_pool_t *p = proc_pool(2, CTH_START_FORK);
    long page = sysconf(_SC_PAGESIZE);
    size_t n = (size_t)page / sizeof(struct rec); /* the allocation's records */
    struct rec *in = shared(p, n * sizeof *in);
    struct res *out = malloc((n + 1) * sizeof *out);
    CHECK(out != NULL);
    fill(in, out, n);
    /* one record more than the allocation's size: the inputs are copied
     * (the one beyond lies in the page the allocation rounds up to... or
     * not: here, the size asked for is whole pages, so read it from a
     * buffer that has it) */
    struct rec *mixed = malloc((n + 1) * sizeof *mixed);
    CHECK(mixed != NULL);
    memcpy(mixed, in, n * sizeof *in);
    mixed[n] = (struct rec){(long long)n, 0, LIVE};
    out[n] = (struct res){-1, GUARD};
    CHECK_OK(cth_pool_map_records(p, task, mixed, sizeof *mixed, n + 1, 0, out, sizeof *out));
    check_results(mixed, out, n + 1, false, false);
    /* the allocation's own records, one short of its end: in place */
    fill(in, out, n);
    CHECK_OK(cth_pool_map_records(p, task, in + 1, sizeof *in, n - 1, 0, out, sizeof *out));
    for (size_t i = 0; i + 1 < n; i++)
        CHECK_EQ(out[i].value, (long long)(i + 1) * (long long)(i + 1) + 1);
    CHECK_EQ(in[0].mark, 0);
    CHECK_EQ(in[1].mark, 1);
    free(mixed);
    free(out);
    CHECK_OK(cth_pool_shared_free(p, in));
    cth_pool_free(p);
}

/* A worker crashing mid-map over shared records fails its item alone; the
 * other chunks' outputs, written in place, are right. */
static void crash_mid_map(cth_start_method_t method)
{
    struct rlimit none = {0, 0};
    CHECK_OK(setrlimit(RLIMIT_CORE, &none));
    enum { N = 200, AT = 77 };
    cth_pool_t *p = proc_pool(2, method);
    struct rec *in = shared(p, N * sizeof *in);
    struct res *out = shared(p, N * sizeof *out);
    fill(in, out, N);
    in[AT].death = SEGV;
    CHECK_EQ(cth_pool_map_records(p, task, in, sizeof *in, N, 1, out, sizeof *out), CTH_EWORKER);
    if (!SANITIZED)
        CHECK(WIFSIGNALED(cth_task_error()) && WTERMSIG(cth_task_error()) == SIGSEGV);
    for (size_t i = 0; i < N; i++) {
        long long x = (long long)i;
        CHECK_EQ(out[i].value, i == AT ? -1 : x * x + 1);
        CHECK_EQ(out[i].guard, GUARD);
    }
    /* the replacement maps the allocations anew */
    fill(in, out, N);
    CHECK_OK(cth_pool_map_records(p, task, in, sizeof *in, N, 3, out, sizeof *out));
    check_results(in, out, N, true, true);
    CHECK_OK(cth_pool_shared_free(p, in));
    CHECK_OK(cth_pool_shared_free(p, out));
    cth_pool_free(p);
}

CTH_TEST(worker_crash_mid_map)
{
    over_methods(crash_mid_map);
}

static int slow_task(const void *in, void *out)
{
    cth_sleep(0.002);
    return task(in, out);
}

/* The open descriptors, as a string (the pool's memfds among them). */
static void open_fds(char *buf, size_t size)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int fds[256], n = 0, self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != self)
            fds[n++] = fd;
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* sorted */
        for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            int t = fds[j];
            fds[j] = fds[j - 1];
            fds[j - 1] = t;
        }
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < n && len < size; k++)
        len += (size_t)snprintf(buf + len, size - len, "%d ", fds[k]);
}

/* Freed while an async map runs over it: the map still runs in it to the
 * end, and the memory goes with the map (its memfd closed then). */
static void free_while_async(cth_pool_t *p, bool processes)
{
    enum { N = 200 };
    char before[1024], after[1024];
    open_fds(before, sizeof before);
    struct rec *in = shared(p, N * sizeof *in);
    struct res *out = shared(p, N * sizeof *out);
    fill(in, out, N);
    cth_result_t *r;
    CHECK_OK(
        cth_pool_map_records_async(p, slow_task, in, sizeof *in, N, 4, NULL, out, sizeof *out, &r));
    CHECK_OK(cth_pool_shared_free(p, in));
    CHECK_OK(cth_pool_shared_free(p, out));
    CHECK_EQ(cth_pool_shared_free(p, out), CTH_EINVAL);
    if (processes) {
        open_fds(after, sizeof after);
        CHECK(strcmp(before, after) != 0); /* still there */
    }
    CHECK_OK(cth_result_get(r, NULL, 60));
    cth_result_free(r);
    open_fds(after, sizeof after);
    CHECK(strcmp(before, after) == 0);
}

CTH_TEST(free_while_async_map_runs)
{
    cth_pool_t *p = pool_opts((cth_pool_opts_t){.processes = 2});
    free_while_async(p, false);
    cth_pool_free(p);
    if (no_processes())
        CHECK_SKIP(no_processes());
    p = proc_pool(2, CTH_START_DEFAULT);
    free_while_async(p, true);
    cth_pool_free(p);
}

/* cth_pool_free frees the allocations left, also one a terminated map
 * used: no descriptor stays. */
CTH_TEST(pool_free_frees_what_is_left)
{
    if (no_processes())
        CHECK_SKIP(no_processes());
    char before[1024], after[1024];
    cth_pool_free(proc_pool(1, CTH_START_DEFAULT)); /* the fork server starts once */
    open_fds(before, sizeof before);
    enum { N = 400 };
    cth_pool_t *p = proc_pool(2, CTH_START_DEFAULT);
    struct rec *in = shared(p, N * sizeof *in);
    struct res *out = shared(p, N * sizeof *out);
    shared(p, 12345);
    fill(in, out, N);
    cth_result_t *r;
    CHECK_OK(
        cth_pool_map_records_async(p, slow_task, in, sizeof *in, N, 1, NULL, out, sizeof *out, &r));
    cth_sleep(0.05);
    CHECK_OK(cth_pool_terminate(p));
    CHECK_EQ(cth_result_get(r, NULL, 30), CTH_ECANCELED);
    cth_pool_free(p);
    cth_result_free(r);
    open_fds(after, sizeof after);
    CHECK(strcmp(before, after) == 0);
}

/* maxtasksperchild and a task timeout over shared records: the new
 * workers get the allocations too, a killed worker's item fails alone. */
static int slow_at_5(const void *in, void *out)
{
    if (((const struct rec *)in)->x == 5)
        cth_sleep(5);
    return task(in, out);
}

CTH_TEST(maxtasksperchild_and_timeout)
{
    if (no_processes())
        CHECK_SKIP(no_processes());
    enum { N = 100 };
    cth_pool_t *p = pool_opts(
        (cth_pool_opts_t){.processes = 2, .backend = CTH_POOL_PROCESSES, .maxtasksperchild = 3});
    struct rec *in = shared(p, N * sizeof *in);
    struct res *out = shared(p, N * sizeof *out);
    fill(in, out, N);
    CHECK_OK(cth_pool_map_records(p, task, in, sizeof *in, N, 4, out, sizeof *out));
    check_results(in, out, N, true, true);
    cth_pool_free(p);

    p = pool_opts(
        (cth_pool_opts_t){.processes = 2, .backend = CTH_POOL_PROCESSES, .task_timeout = 0.3});
    in = shared(p, N * sizeof *in);
    out = shared(p, N * sizeof *out);
    fill(in, out, N);
    CHECK_EQ(cth_pool_map_records(p, slow_at_5, in, sizeof *in, N, 1, out, sizeof *out),
             CTH_ETIMEDOUT);
    for (size_t i = 0; i < N; i++)
        CHECK_EQ(out[i].value, i == 5 ? -1 : (long long)i * (long long)i + 1);
    cth_pool_free(p); /* frees in and out */
}

/* 1M 8-byte records in place, checked item by item, on both backends. */
static void million(cth_pool_t *p)
{
    size_t n = 1000000;
    long long *in = shared(p, n * sizeof *in), *out = shared(p, n * sizeof *out);
    printf("1M records in place: %.2f ms\n", map_squares_checked(p, in, out, n) * 1e3);
    CHECK_OK(cth_pool_shared_free(p, in));
    CHECK_OK(cth_pool_shared_free(p, out));
}

CTH_TEST(million_in_place)
{
    cth_pool_t *p = pool_opts((cth_pool_opts_t){.processes = 2});
    million(p);
    cth_pool_free(p);
    if (no_processes())
        CHECK_SKIP(no_processes());
    p = proc_pool(2, CTH_START_DEFAULT);
    million(p);
    cth_pool_free(p);
}

/* Bad arguments, and an allocation that cannot be had. */
CTH_TEST(bad_arguments)
{
    cth_pool_t *p = pool_opts((cth_pool_opts_t){.processes = 1});
    void *mem = (void *)1;
    CHECK_EQ(cth_pool_shared_alloc(NULL, 10, &mem), CTH_EINVAL);
    CHECK_EQ(cth_pool_shared_alloc(p, 0, &mem), CTH_EINVAL);
    CHECK_EQ(cth_pool_shared_alloc(p, 10, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_shared_alloc(p, SIZE_MAX, &mem), CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_shared_alloc(p, SIZE_MAX / 4, &mem), CTH_ENOMEM); /* beyond the machine */
    cth__fault_alloc_once(1);
    CHECK_EQ(cth_pool_shared_alloc(p, 10, &mem), CTH_ENOMEM);
    cth__fault_alloc_once(-1);
    CHECK(mem == (void *)1);
    CHECK_EQ(cth_pool_shared_free(NULL, NULL), CTH_EINVAL);
    cth_pool_free(p);
    if (no_processes())
        CHECK_SKIP(no_processes());
    p = proc_pool(1, CTH_START_DEFAULT);
    CHECK_EQ(cth_pool_shared_alloc(p, SIZE_MAX / 4, &mem), CTH_ENOMEM);
    CHECK(mem == (void *)1);
    cth_pool_free(p);
}

/* The worker's address space limited (RLIMIT_AS) to what it maps now and a
 * few MB more, so that it cannot map a large allocation; square_ll, after
 * the limit is lifted again. */
static int limit_address_space(const void *in, void *out)
{
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1)
        pages = -1;
    if (f)
        fclose(f);
    if (pages < 0)
        return 1;
    struct rlimit lim;
    getrlimit(RLIMIT_AS, &lim);
    lim.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)4 << 20);
    return setrlimit(RLIMIT_AS, &lim) != 0 || square_ll(in, out);
}

static int unlimited_square_ll(const void *in, void *out)
{
    struct rlimit lim;
    getrlimit(RLIMIT_AS, &lim);
    lim.rlim_cur = lim.rlim_max;
    return setrlimit(RLIMIT_AS, &lim) != 0 || square_ll(in, out);
}

/* A worker that cannot map the first of the two allocations a command
 * sends it (CTH_ENOMEM) still takes the second one's descriptor off its
 * channel: the next command's allocations land in their own slots, so its
 * outputs go where they belong and its inputs are left alone. */
CTH_TEST(worker_map_failure_leaves_no_descriptor_behind)
{
    if (no_processes())
        CHECK_SKIP(no_processes());
    enum { N = 64 };
    cth_pool_t *p = proc_pool(1, CTH_START_FORK);
    long long *huge = shared(p, (size_t)32 << 20), *b = shared(p, N * sizeof *b);
    long long *c = shared(p, N * sizeof *c), *d = shared(p, N * sizeof *d);
    long long one = 3, res = 0;
    CHECK_OK(
        cth_pool_map_records(p, limit_address_space, &one, sizeof one, 1, 0, &res, sizeof res));
    CHECK_EQ(res, 10);
    CHECK_EQ(cth_pool_map_records(p, square_ll, huge, sizeof *huge, N, N, b, sizeof *b),
             CTH_ENOMEM); /* one command */
    for (size_t i = 0; i < N; i++) {
        c[i] = (long long)i;
        d[i] = -1;
    }
    CHECK_OK(cth_pool_map_records(p, unlimited_square_ll, c, sizeof *c, N, N, d, sizeof *d));
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ(c[i], (long long)i);
        CHECK_EQ(d[i], (long long)i * (long long)i + 1);
    }
    /* and the worker maps the large one now */
    CHECK_OK(cth_pool_map_records(p, square_ll, huge, sizeof *huge, N, 0, b, sizeof *b));
    CHECK_EQ(b[N - 1], 1);
    cth_pool_free(p);
}

/* A fork child of the program shares a process pool's allocation with it
 * (as Python's shared memory); freeing the pool it inherited (terminated
 * there) unmaps its copy and leaves the parent's memory alone. */
CTH_TEST(fork_child_shares_and_leaves_alone)
{
    if (no_processes())
        CHECK_SKIP(no_processes());
    enum { N = 1000 };
    cth_pool_t *p = proc_pool(2, CTH_START_DEFAULT);
    struct rec *in = shared(p, N * sizeof *in);
    struct res *out = shared(p, N * sizeof *out);
    fill(in, out, N);
    CHECK_OK(cth_pool_map_records(p, task, in, sizeof *in, N, 0, out, sizeof *out));
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int ok = out[N - 1].value == (long long)(N - 1) * (N - 1) + 1;
        in[3].x = 1000; /* the parent sees it */
        cth_pool_free(p);
        _exit(ok ? 0 : 1);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(in[3].x, 1000);
    in[3].x = 3;
    fill(in, out, N);
    CHECK_OK(cth_pool_map_records(p, task, in, sizeof *in, N, 0, out, sizeof *out));
    check_results(in, out, N, true, true);
    cth_pool_free(p);
}

/* An allocation the program frees (and the pool with it) while a fork
 * child still uses it stays the child's, as Python's shared memory
 * unlinked while another process has it attached. */
CTH_TEST(fork_child_keeps_what_the_program_frees)
{
    if (no_processes())
        CHECK_SKIP(no_processes());
    cth_pool_t *p = proc_pool(1, CTH_START_FORK);
    long long *a = shared(p, 3 * sizeof *a), *b = shared(p, 3 * sizeof *b);
    a[0] = 5;
    b[0] = 6;
    int go[2];
    CHECK_OK(pipe(go));
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        a[1] = 1; /* written after the program freed it */
        _exit(a[0] == 5 && b[0] == 6 ? 0 : 1);
    }
    CHECK_OK(cth_pool_shared_free(p, a));
    cth_pool_free(p); /* frees b */
    CHECK_EQ(write(go[1], "g", 1), 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(!WIFSIGNALED(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(go[0]);
    close(go[1]);
}
