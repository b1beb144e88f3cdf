/* SPDX-License-Identifier: MIT */
/*
 * test_thread.c - Thread and the module-level calls, ported in spirit from
 * CPython's Lib/test/test_threading.py and Lib/test/test_thread.py (the
 * Python test each case mirrors is named above it).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "alloc.h"
#include "check.h"
#include "runtime.h"

static void *return_arg(void *arg)
{
    return arg;
}

static void *sleep_arg_seconds(void *arg)
{
    cth_sleep(*(double *)arg);
    return NULL;
}

/* Wait (without a deadline of our own: CTest has one) until *flag is set. */
static void wait_flag(atomic_int *flag)
{
    while (!atomic_load(flag))
        cth_sleep(0.001);
}

static cth_thread_t *start_thread(cth_thread_fn fn, void *arg, const cth_thread_opts_t *opts)
{
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, fn, arg, opts));
    CHECK_OK(cth_thread_start(t));
    return t;
}

/* ThreadTests.test_various_ops (ident part): ident and native_id are 0
 * before start, non-zero after and kept after the end; the target's return
 * value reaches join. */
CTH_TEST(ident_before_and_after_start)
{
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, return_arg, (void *)"x", NULL));
    CHECK_EQ(cth_thread_ident(t), 0);
    CHECK_EQ(cth_thread_native_id(t), 0);
    CHECK(!cth_thread_is_alive(t));
    CHECK_EQ(cth_thread_state(t), CTH_THREAD_INITIAL);
    CHECK_OK(cth_thread_start(t));
    CHECK(cth_thread_ident(t) != 0);
    CHECK(cth_thread_native_id(t) > 0);
    CHECK(cth_thread_native_id(t) != cth_get_native_id());
    void *r = NULL;
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK(strcmp(r, "x") == 0);
    CHECK(cth_thread_ident(t) != 0);
    CHECK(cth_thread_native_id(t) > 0);
    CHECK(!cth_thread_is_alive(t));
    CHECK_EQ(cth_thread_state(t), CTH_THREAD_FINISHED);
    cth_thread_free(t);
}

struct ident_probe {
    unsigned long ident;
    long native_id;
    cth_thread_t *current;
};

static void *probe_ident(void *arg)
{
    struct ident_probe *p = arg;
    p->ident = cth_get_ident();
    p->native_id = cth_get_native_id();
    p->current = cth_current_thread();
    return NULL;
}

/* test_various_ops: the ident a thread sees of itself is its Thread.ident;
 * native ids are distinct; current_thread() is the handle. */
CTH_TEST(ident_seen_from_inside)
{
    struct ident_probe p[4];
    cth_thread_t *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = start_thread(probe_ident, &p[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        CHECK_EQ(p[i].ident, cth_thread_ident(t[i]));
        CHECK_EQ(p[i].native_id, cth_thread_native_id(t[i]));
        CHECK(p[i].current == t[i]);
        for (int j = 0; j < i; j++)
            CHECK(p[i].native_id != p[j].native_id);
    }
    for (int i = 0; i < 4; i++)
        cth_thread_free(t[i]);
}

/* ThreadTests.test_name: an explicit name; default "Thread-N" names count
 * up; renaming; a long name is kept whole. */
CTH_TEST(names)
{
    char buf[128];
    cth_thread_t *a, *b, *c;
    cth_thread_opts_t named = {.name = "myname"};
    CHECK_OK(cth_thread_create(&a, NULL, NULL, &named));
    CHECK_EQ(cth_thread_get_name(a, buf, sizeof buf), 6);
    CHECK(strcmp(buf, "myname") == 0);

    CHECK_OK(cth_thread_create(&b, NULL, NULL, NULL));
    CHECK_OK(cth_thread_create(&c, NULL, NULL, &(cth_thread_opts_t){.name = ""}));
    unsigned long nb, nc;
    cth_thread_get_name(b, buf, sizeof buf);
    CHECK(sscanf(buf, "Thread-%lu", &nb) == 1);
    cth_thread_get_name(c, buf, sizeof buf);
    CHECK(sscanf(buf, "Thread-%lu", &nc) == 1);
    CHECK(nc > nb);

    const char *longname = "a-rather-long-thread-name-that-the-kernel-cannot-hold";
    CHECK_OK(cth_thread_set_name(b, longname));
    CHECK_EQ(cth_thread_get_name(b, buf, sizeof buf), (long long)strlen(longname));
    CHECK(strcmp(buf, longname) == 0);
    /* Truncation of the copy, snprintf-style. */
    CHECK_EQ(cth_thread_get_name(b, buf, 5), (long long)strlen(longname));
    CHECK(strcmp(buf, "a-ra") == 0);
    CHECK_EQ(cth_thread_get_name(b, NULL, 0), (long long)strlen(longname));

    CHECK_EQ(cth_thread_get_name(cth_main_thread(), buf, sizeof buf), 10);
    CHECK(strcmp(buf, "MainThread") == 0);
    cth_thread_free(a);
    cth_thread_free(b);
    cth_thread_free(c);
}

static void *read_os_name(void *arg)
{
    char *out = arg;
    pthread_getname_np(pthread_self(), out, 16);
    return NULL;
}

/* The name reaches the OS (top -H, ps -L, gdb), truncated to 15 bytes. */
CTH_TEST(name_pushed_to_os)
{
    char os_name[16] = "";
    cth_thread_opts_t opts = {.name = "worker-with-a-long-name"};
    cth_thread_t *t = start_thread(read_os_name, os_name, &opts);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    CHECK(strcmp(os_name, "worker-with-a-l") == 0);
    cth_thread_free(t);
}

static atomic_int go_flag;

static void *wait_go_then_read_name(void *arg)
{
    wait_flag(&go_flag);
    return read_os_name(arg);
}

/* Renaming a running thread renames it in the OS too. */
CTH_TEST(rename_running_thread)
{
    char os_name[16] = "";
    atomic_store(&go_flag, 0);
    cth_thread_t *t = start_thread(wait_go_then_read_name, os_name, NULL);
    CHECK_OK(cth_thread_set_name(t, "renamed"));
    atomic_store(&go_flag, 1);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    CHECK(strcmp(os_name, "renamed") == 0);
    cth_thread_free(t);
}

/* test_enumerate_after_join: a started thread is listed; a joined one never
 * is (100 iterations); active_count matches. */
CTH_TEST(enumerate_after_join)
{
    size_t base = cth_active_count();
    CHECK(base >= 1);
    for (int i = 0; i < 100; i++) {
        atomic_store(&go_flag, 0);
        cth_thread_t *t = start_thread((cth_thread_fn)(void (*)(void))wait_flag, &go_flag, NULL);
        cth_thread_t *list[64];
        size_t n = cth_enumerate(list, 64);
        CHECK_EQ(n, base + 1);
        int seen = 0;
        for (size_t k = 0; k < n; k++)
            seen += list[k] == t;
        CHECK_EQ(seen, 1);
        cth_threads_free(list, n);
        atomic_store(&go_flag, 1);
        CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
        n = cth_enumerate(list, 64);
        for (size_t k = 0; k < n; k++)
            CHECK(list[k] != t);
        cth_threads_free(list, n);
        CHECK_EQ(cth_active_count(), base);
        cth_thread_free(t);
    }
}

/* enumerate() lists the main thread first, and reports the total even when
 * the array is too small: with cap below the number of threads it fills cap
 * slots, oldest first, and leaves the rest of the array alone. A NULL array
 * or cap 0 only counts. */
CTH_TEST(enumerate_small_array)
{
    enum { EXTRA = 3 };
    atomic_store(&go_flag, 0);
    cth_thread_t *t[EXTRA];
    for (int i = 0; i < EXTRA; i++)
        t[i] = start_thread((cth_thread_fn)(void (*)(void))wait_flag, &go_flag, NULL);
    size_t alive = cth_active_count();
    CHECK(alive >= 1 + EXTRA);
    CHECK_EQ(cth_enumerate(NULL, 0), alive);
    CHECK_EQ(cth_enumerate(NULL, 3), alive);

    cth_thread_t *sentinel = (cth_thread_t *)&go_flag;
    cth_thread_t *list[EXTRA + 1] = {sentinel, sentinel, sentinel, sentinel};
    CHECK_EQ(cth_enumerate(list, 0), alive);
    CHECK(list[0] == sentinel); /* cap 0: nothing stored */
    CHECK_EQ(cth_enumerate(list, 1), alive);
    CHECK(list[0] == cth_main_thread());
    CHECK(list[1] == sentinel);
    cth_threads_free(list, 1);
    CHECK_EQ(cth_enumerate(list, 2), alive);
    CHECK(list[0] == cth_main_thread());
    CHECK(list[1] != sentinel && list[1] != NULL);
    CHECK(list[2] == sentinel);
    cth_threads_free(list, 2);

    atomic_store(&go_flag, 1);
    for (int i = 0; i < EXTRA; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    CHECK_EQ(cth_enumerate(NULL, 0), alive - EXTRA);
}

/* The 0.1.0 signatures, checked at compile time: join takes the result
 * before the timeout; the queries answer bool and size_t. */
_Static_assert(_Generic(&cth_thread_join, int (*)(cth_thread_t *, void **, double) : 1,
                        default : 0),
               "cth_thread_join(thread, &result, timeout)");
_Static_assert(_Generic(&cth_thread_daemon, bool (*)(const cth_thread_t *) : 1, default : 0),
               "bool cth_thread_daemon(const cth_thread_t *)");
_Static_assert(_Generic(&cth_enumerate, size_t (*)(cth_thread_t **, size_t) : 1, default : 0),
               "size_t cth_enumerate(cth_thread_t **, size_t)");
_Static_assert(_Generic(&cth_active_count, size_t (*)(void) : 1, default : 0),
               "size_t cth_active_count(void)");
_Static_assert(_Generic(&cth_thread_get_name, size_t (*)(const cth_thread_t *, char *, size_t) : 1,
                        default : 0),
               "size_t cth_thread_get_name(const cth_thread_t *, char *, size_t)");
_Static_assert(_Generic(&cth_monotonic, double (*)(void) : 1, default : 0),
               "double cth_monotonic(void)");

/* test_join_with_timeout / test_join_from_multiple_threads: a timed join
 * returns CTH_ETIMEDOUT after at least the timeout while the thread lives;
 * many concurrent joiners all return. */
static cth_thread_t *shared_target;
static void *join_shared(void *arg)
{
    (void)arg;
    CHECK_OK(cth_thread_join(shared_target, NULL, CTH_FOREVER));
    CHECK(!cth_thread_is_alive(shared_target));
    return NULL;
}

CTH_TEST(join_timeout_and_many_joiners)
{
    atomic_store(&go_flag, 0);
    shared_target = start_thread((cth_thread_fn)(void (*)(void))wait_flag, &go_flag, NULL);
    double t0 = check_now();
    CHECK_EQ(cth_thread_join(shared_target, NULL, 0.05), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.05);
    CHECK(cth_thread_is_alive(shared_target));
    CHECK_EQ(cth_thread_join(shared_target, NULL, 0), CTH_ETIMEDOUT);
    cth_thread_t *joiners[10];
    for (int i = 0; i < 10; i++)
        joiners[i] = start_thread(join_shared, NULL, NULL);
    cth_sleep(0.05);
    atomic_store(&go_flag, 1);
    CHECK_OK(cth_thread_join(shared_target, NULL, CTH_FOREVER));
    for (int i = 0; i < 10; i++) {
        CHECK_OK(cth_thread_join(joiners[i], NULL, CTH_FOREVER));
        cth_thread_free(joiners[i]);
    }
    /* test_join_several_times */
    CHECK_OK(cth_thread_join(shared_target, NULL, CTH_FOREVER));
    CHECK_OK(cth_thread_join(shared_target, NULL, 0));
    cth_thread_free(shared_target);
}

/* join(thread, &result, timeout): the result comes before the timeout; a
 * join that fails leaves *result alone, a finite timeout that is long
 * enough hands the target's value back. */
CTH_TEST(join_result_then_timeout)
{
    atomic_store(&go_flag, 0);
    cth_thread_t *t = start_thread((cth_thread_fn)(void (*)(void))wait_flag, &go_flag, NULL);
    void *r = &go_flag;
    CHECK_EQ(cth_thread_join(t, &r, 0.01), CTH_ETIMEDOUT);
    CHECK(r == &go_flag);
    CHECK_EQ(cth_thread_join(t, &r, -2), CTH_EINVAL);
    CHECK(r == &go_flag);
    atomic_store(&go_flag, 1);
    CHECK_OK(cth_thread_join(t, NULL, 30));
    cth_thread_free(t);

    t = start_thread(return_arg, (void *)"value", NULL);
    r = NULL;
    CHECK_OK(cth_thread_join(t, &r, 30));
    CHECK(strcmp(r, "value") == 0);
    cth_thread_free(t);
}

static void *join_self(void *arg)
{
    return (void *)(intptr_t)cth_thread_join(cth_current_thread(), NULL, *(double *)arg);
}

/* ThreadingExceptionTests: start twice, join self, join before start, set
 * daemon after start; and bad arguments. As Thread.join, the state is
 * checked before the timeout (test_joining_inactive_thread,
 * test_joining_current_thread, test_thread.py's test_join_from_self). */
CTH_TEST(misuse_errors)
{
    cth_thread_t *t;
    double forever = CTH_FOREVER, bad = -5;
    CHECK_OK(cth_thread_create(&t, join_self, &forever, NULL));
    CHECK_EQ(cth_thread_join(t, NULL, CTH_FOREVER), CTH_EPERM); /* before start */
    CHECK_EQ(cth_thread_join(t, NULL, -5), CTH_EPERM);          /* the state first */
    CHECK_EQ(cth_thread_join(t, NULL, NAN), CTH_EPERM);
    CHECK_OK(cth_thread_set_daemon(t, true));
    CHECK_OK(cth_thread_set_daemon(t, false));
    CHECK_OK(cth_thread_start(t));
    CHECK_EQ(cth_thread_start(t), CTH_EPERM); /* twice */
    CHECK_EQ(cth_thread_set_daemon(t, true), CTH_EPERM);
    void *r;
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK_EQ((intptr_t)r, CTH_EDEADLK);       /* join of itself */
    CHECK_EQ(cth_thread_start(t), CTH_EPERM); /* finished: still "started once" */
    CHECK_EQ(cth_thread_join(t, NULL, -2), CTH_EINVAL);
    CHECK_EQ(cth_thread_join(t, NULL, NAN), CTH_EINVAL);
    CHECK_EQ(cth_thread_join(t, NULL, 1e300), CTH_EOVERFLOW);
    CHECK_EQ(cth_thread_join(t, NULL, INFINITY), CTH_EOVERFLOW);
    cth_thread_free(t);
    t = start_thread(join_self, &bad, NULL);
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK_EQ((intptr_t)r, CTH_EDEADLK); /* join of itself, a bad timeout: the state first */
    cth_thread_free(t);

    /* The main thread joining itself; main cannot be started or reconfigured. */
    CHECK_EQ(cth_thread_join(cth_main_thread(), NULL, CTH_FOREVER), CTH_EDEADLK);
    CHECK_EQ(cth_thread_join(cth_main_thread(), NULL, NAN), CTH_EDEADLK);
    CHECK_EQ(cth_thread_start(cth_main_thread()), CTH_EPERM);
    CHECK_EQ(cth_thread_set_daemon(cth_main_thread(), true), CTH_EPERM);

    /* NULLs and bad options. */
    CHECK_EQ(cth_thread_create(NULL, NULL, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_create(&t, NULL, NULL, &(cth_thread_opts_t){.stack_size = 4096}),
             CTH_EINVAL);
    CHECK(t == NULL);
    CHECK_EQ(cth_thread_create(&t, NULL, NULL, &(cth_thread_opts_t){.daemon = 7}), CTH_EINVAL);
    CHECK_EQ(cth_thread_start(NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_join(NULL, NULL, CTH_FOREVER), CTH_EINVAL);
    CHECK_EQ(cth_thread_run(NULL, NULL), CTH_EINVAL);
    char buf[4] = "xyz";
    CHECK_EQ(cth_thread_get_name(NULL, NULL, 0), 0); /* a query: NULL is the empty name */
    CHECK_EQ(cth_thread_get_name(NULL, buf, sizeof buf), 0);
    CHECK(buf[0] == '\0');
    CHECK_EQ(cth_thread_get_name(cth_main_thread(), NULL, sizeof buf), 10); /* NULL buf: size 0 */
    CHECK_EQ(cth_thread_set_name(NULL, "x"), CTH_EINVAL);
    CHECK_EQ(cth_thread_set_name(cth_main_thread(), NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_set_daemon(NULL, true), CTH_EINVAL);
    CHECK(!cth_thread_daemon(NULL)); /* a query: false, not CTH_EINVAL */
    CHECK(!cth_thread_is_alive(NULL));
    CHECK_EQ(cth_thread_ident(NULL), 0);
    CHECK_EQ(cth_thread_native_id(NULL), 0);
    CHECK_EQ(cth_thread_state(NULL), CTH_THREAD_INITIAL);
    cth_thread_free(NULL);
    cth_thread_free(cth_main_thread()); /* ignored */
    CHECK(cth_thread_ref(NULL) == NULL);
    CHECK_EQ(cth_dump_threads(NULL), CTH_EINVAL);
}

static atomic_int run_count;
static void *count_run(void *arg)
{
    atomic_fetch_add(&run_count, 1);
    return arg;
}

/* Thread.run() called directly runs the target in the caller, once; a
 * later start runs nothing (the target is forgotten, as Python's run()
 * deletes it). */
CTH_TEST(run_in_caller)
{
    atomic_store(&run_count, 0);
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, count_run, (void *)"r", NULL));
    void *r = NULL;
    CHECK_OK(cth_thread_run(t, &r));
    CHECK(strcmp(r, "r") == 0);
    CHECK_EQ(atomic_load(&run_count), 1);
    CHECK_OK(cth_thread_run(t, &r));
    CHECK(r == NULL);
    CHECK_OK(cth_thread_start(t));
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK(r == NULL);
    CHECK_EQ(atomic_load(&run_count), 1);
    cth_thread_free(t);
}

/* A NULL target (Python's target=None) is a thread that does nothing. */
CTH_TEST(null_target)
{
    cth_thread_t *t = start_thread(NULL, NULL, NULL);
    void *r = (void *)1;
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK(r == NULL);
    cth_thread_free(t);
}

static void *report_daemon(void *arg)
{
    (void)arg;
    cth_thread_t *child;
    CHECK_OK(cth_thread_create(&child, NULL, NULL, NULL));
    intptr_t d = cth_thread_daemon(child);
    cth_thread_free(child);
    return (void *)d;
}

/* test_daemon_param: daemon defaults to false in main, is honoured when
 * given, and a thread created by a daemon thread inherits daemon. */
CTH_TEST(daemon_param_and_inheritance)
{
    cth_thread_t *t;
    CHECK(cth_thread_daemon(cth_main_thread()) == false);
    CHECK_OK(cth_thread_create(&t, NULL, NULL, NULL));
    CHECK(cth_thread_daemon(t) == false);
    cth_thread_free(t);
    CHECK_OK(cth_thread_create(&t, NULL, NULL, &(cth_thread_opts_t){.daemon = CTH_DAEMON_YES}));
    CHECK(cth_thread_daemon(t) == true);
    CHECK_OK(cth_thread_set_daemon(t, false)); /* before start: allowed */
    CHECK(cth_thread_daemon(t) == false);
    cth_thread_free(t);

    void *r;
    t = start_thread(report_daemon, NULL, &(cth_thread_opts_t){.daemon = CTH_DAEMON_YES});
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK_EQ((intptr_t)r, 1);
    cth_thread_free(t);
    t = start_thread(report_daemon, NULL, &(cth_thread_opts_t){.daemon = CTH_DAEMON_NO});
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK_EQ((intptr_t)r, 0);
    cth_thread_free(t);
}

static void *get_main_ident(void *arg)
{
    *(unsigned long *)arg = cth_get_ident();
    return cth_main_thread();
}

/* test_main_thread: main_thread's name is "MainThread" and its ident is
 * get_ident() in main, different in a worker. */
CTH_TEST(main_thread)
{
    cth_thread_t *m = cth_main_thread();
    CHECK(cth_current_thread() == m);
    CHECK_EQ(cth_thread_ident(m), cth_get_ident());
    CHECK_EQ(cth_thread_native_id(m), getpid());
    CHECK(cth_thread_is_alive(m));
    CHECK_EQ(cth_thread_state(m), CTH_THREAD_RUNNING);
    unsigned long worker_ident = 0;
    void *r;
    cth_thread_t *t = start_thread(get_main_ident, &worker_ident, NULL);
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK(r == m);
    CHECK(worker_ident != cth_thread_ident(m));
    cth_thread_free(t);
}

/* test_various_ops_small_stack / _large_stack, test_thread.test_stack_size:
 * the default is 0; 4 KiB is refused; threads start with 256 KiB and 1 MiB;
 * the previous value comes back; reset to 0. */
CTH_TEST(stack_size)
{
    size_t prev = 1;
    CHECK_EQ(cth_get_stack_size(), 0);
    CHECK_EQ(cth_stack_size(4096, &prev), CTH_EINVAL);
    CHECK_EQ(cth_stack_size(32767, &prev), CTH_EINVAL);
    CHECK_EQ(cth_stack_size(SIZE_MAX, &prev), CTH_EINVAL); /* refused now, not at start */
    CHECK_EQ(cth_stack_size(SIZE_MAX / 2 + 1, &prev), CTH_EINVAL);
    CHECK_EQ(cth_get_stack_size(), 0);
    cth_thread_t *huge;
    CHECK_EQ(cth_thread_create(&huge, NULL, NULL, &(cth_thread_opts_t){.stack_size = SIZE_MAX}),
             CTH_EINVAL);
    CHECK_OK(cth_stack_size(256 * 1024, &prev));
    CHECK_EQ(prev, 0);
    CHECK_EQ(cth_get_stack_size(), 256 * 1024);
    cth_thread_t *t = start_thread(return_arg, (void *)"s", NULL);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    CHECK_OK(cth_stack_size(1024 * 1024, &prev));
    CHECK_EQ(prev, 256 * 1024);
    t = start_thread(return_arg, (void *)"s", NULL);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    /* A per-thread stack size overrides the default. */
    t = start_thread(return_arg, (void *)"s", &(cth_thread_opts_t){.stack_size = 64 * 1024});
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    CHECK_OK(cth_stack_size(0, &prev));
    CHECK_EQ(prev, 1024 * 1024);
    CHECK_OK(cth_stack_size(0, NULL));
}

struct foreign_result {
    unsigned long ident;
    cth_thread_t *seen;
    char name[64];
    int daemon, alive, join_err, join_bad_timeout_err, listed;
    cth_thread_state_t state;
};

static void *foreign_body(void *arg)
{
    struct foreign_result *fr = arg;
    cth_thread_t *me = cth_current_thread();
    fr->seen = me;
    fr->ident = cth_thread_ident(me);
    cth_thread_get_name(me, fr->name, sizeof fr->name);
    fr->daemon = cth_thread_daemon(me);
    fr->alive = cth_thread_is_alive(me);
    fr->state = cth_thread_state(me);
    fr->join_err = cth_thread_join(me, NULL, 0);
    fr->join_bad_timeout_err = cth_thread_join(me, NULL, -5);
    CHECK(cth_current_thread() == me); /* the same handle every time */
    cth_thread_t *list[64];
    size_t n = cth_enumerate(list, 64);
    if (n > 64)
        n = 64;
    for (size_t i = 0; i < n; i++)
        fr->listed += list[i] == me;
    cth_threads_free(list, n);
    return NULL;
}

/* test_foreign_thread / test_ident_of_no_threading_threads: a thread made
 * with pthread_create is adopted by current_thread(): "Dummy-N", daemon,
 * alive, listed, not joinable, its ident the pthread id; it leaves the
 * registry when the OS thread exits. */
CTH_TEST(foreign_thread)
{
    size_t base = cth_active_count();
    struct foreign_result fr = {0};
    pthread_t pt;
    CHECK_OK(pthread_create(&pt, NULL, foreign_body, &fr));
    CHECK_OK(pthread_join(pt, NULL));
    CHECK(fr.seen != NULL);
    CHECK_EQ(fr.ident, (unsigned long)pt);
    CHECK(strncmp(fr.name, "Dummy-", 6) == 0);
    CHECK_EQ(fr.daemon, 1);
    CHECK_EQ(fr.alive, 1);
    CHECK_EQ(fr.state, CTH_THREAD_RUNNING);
    CHECK_EQ(fr.join_err, CTH_EPERM);
    CHECK_EQ(fr.join_bad_timeout_err, CTH_EPERM); /* "cannot join a dummy thread" first */
    CHECK_EQ(fr.listed, 1);
    CHECK_EQ(cth_active_count(), base);
}

/* test_limbo_cleanup: a thread whose creation fails leaves nothing in the
 * registry and may be started again. Allocation failures give ENOMEM. */
CTH_TEST(failed_creation_cleans_up)
{
    size_t base = cth_active_count();
    cth_thread_t *t;
    cth__fault_alloc_after(0);
    CHECK_EQ(cth_thread_create(&t, NULL, NULL, NULL), CTH_ENOMEM);
    cth__fault_alloc_after(1);
    CHECK_EQ(cth_thread_create(&t, NULL, NULL, &(cth_thread_opts_t){.name = "named"}),
             CTH_ENOMEM); /* the name's copy (a default name allocates nothing) */
    cth__fault_alloc_after(-1);
    CHECK_EQ(cth_active_count(), base);

    /* An absurd stack size makes pthread_create fail. */
    CHECK_OK(cth_thread_create(&t, return_arg, NULL, NULL));
    CHECK_OK(cth_stack_size((size_t)1 << 46, NULL));
    int err = cth_thread_start(t);
    CHECK_OK(cth_stack_size(0, NULL));
    CHECK(err == CTH_EAGAIN || err == CTH_ENOMEM || err == CTH_EINVAL);
    CHECK_EQ(cth_active_count(), base);
    CHECK(!cth_thread_is_alive(t));
    CHECK_EQ(cth_thread_ident(t), 0);
    CHECK_OK(cth_thread_start(t)); /* nothing was left behind */
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);

    /* The injected failure of the OS thread: EAGAIN, nothing registered,
     * not counted as non-daemon (shutdown would wait for it forever). */
    CHECK_OK(cth_thread_create(&t, return_arg, NULL, NULL));
    cth__fault_thread_start_after(0);
    CHECK_EQ(cth_thread_start(t), CTH_EAGAIN);
    cth__fault_thread_start_after(-1);
    CHECK_EQ(cth_active_count(), base);
    CHECK_OK(cth_shutdown(0));
    cth_thread_free(t);
}

/* test_leak_without_join: a finished thread that nobody joined, and a
 * handle freed while its thread still runs, leak nothing (ASan checks). */
CTH_TEST(free_without_join)
{
    double secs = 0.05;
    cth_thread_t *t = start_thread(sleep_arg_seconds, &secs, NULL);
    cth_thread_free(t); /* detached: runs on */
    t = start_thread(return_arg, NULL, NULL);
    while (cth_thread_is_alive(t))
        cth_sleep(0.001);
    cth_thread_free(t);                  /* finished, never joined */
    CHECK_OK(cth_shutdown(CTH_FOREVER)); /* waits for the detached one */
}

/* A target that leaves by pthread_exit (C's, no Python equivalent) ends its
 * thread as if it had returned NULL: its joiners return, it is neither alive
 * nor listed, its thread-local values are destroyed, and shutdown does not
 * wait for it. */
static atomic_int locals_destroyed;
static void count_destroyed(void *value)
{
    (void)value;
    atomic_fetch_add(&locals_destroyed, 1);
}

static void *leave_by_pthread_exit(void *arg)
{
    CHECK_OK(cth_local_set(arg, &locals_destroyed));
    pthread_exit((void *)1);
}

CTH_TEST(pthread_exit_ends_the_thread)
{
    size_t base = cth_active_count();
    cth_local_t *local;
    CHECK_OK(cth_local_create(&local, &(cth_local_opts_t){.free_item = count_destroyed}));
    cth_thread_t *t = start_thread(leave_by_pthread_exit, local, NULL);
    void *r = &r;
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK(r == NULL);
    CHECK(!cth_thread_is_alive(t));
    CHECK_EQ(cth_thread_state(t), CTH_THREAD_FINISHED);
    CHECK_EQ(cth_active_count(), base);
    CHECK_EQ(atomic_load(&locals_destroyed), 1);
    CHECK_OK(cth_shutdown(0)); /* nothing left to wait for */
    cth_thread_free(t);
    cth_local_free(local);
}

/* A reference from enumerate keeps a handle usable after its creator freed
 * it; join through it works. */
CTH_TEST(reference_outlives_creator)
{
    atomic_store(&go_flag, 0);
    cth_thread_t *t = start_thread((cth_thread_fn)(void (*)(void))wait_flag, &go_flag, NULL);
    cth_thread_t *extra = cth_thread_ref(t);
    cth_thread_free(t);
    atomic_store(&go_flag, 1);
    CHECK_OK(cth_thread_join(extra, NULL, CTH_FOREVER));
    CHECK(!cth_thread_is_alive(extra));
    cth_thread_free(extra);
}

/* time.sleep: at least the time asked; 0 yields; negative and NaN are
 * errors; above TIMEOUT_MAX overflows. */
CTH_TEST(sleep)
{
    double t0 = check_now();
    CHECK_OK(cth_sleep(0.05));
    CHECK_WAITED_AT_LEAST(t0, 0.05);
    CHECK_OK(cth_sleep(0));
    CHECK_EQ(cth_sleep(-1), CTH_EINVAL);
    CHECK_EQ(cth_sleep(-0.5), CTH_EINVAL);
    CHECK_EQ(cth_sleep(NAN), CTH_EINVAL);
    CHECK_EQ(cth_sleep(INFINITY), CTH_EOVERFLOW);
    CHECK_EQ(cth_sleep(1e19), CTH_EOVERFLOW);
}

static double clock_monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* time.monotonic: cth_monotonic reads CLOCK_MONOTONIC, never goes back, and
 * is the clock the timeouts are measured on: a sleep or a timed-out join of
 * t seconds has waited at least t by it, with no slack beyond a nanosecond
 * of double rounding. */
CTH_TEST(monotonic)
{
    double before = clock_monotonic_seconds();
    double now = cth_monotonic();
    double after = clock_monotonic_seconds();
    CHECK(before - 1e-9 <= now && now <= after + 1e-9);

    double last = cth_monotonic();
    for (int i = 0; i < 100000; i++) {
        double t = cth_monotonic();
        CHECK(t >= last);
        last = t;
    }
    static const double naps[] = {0.001, 0.01, 0.03};
    for (size_t i = 0; i < sizeof naps / sizeof naps[0]; i++) {
        double t0 = cth_monotonic();
        CHECK_OK(cth_sleep(naps[i]));
        CHECK(cth_monotonic() - t0 >= naps[i] - 1e-9);
    }

    atomic_store(&go_flag, 0);
    cth_thread_t *t = start_thread((cth_thread_fn)(void (*)(void))wait_flag, &go_flag, NULL);
    double t0 = cth_monotonic();
    CHECK_EQ(cth_thread_join(t, NULL, 0.02), CTH_ETIMEDOUT);
    CHECK(cth_monotonic() - t0 >= 0.02 - 1e-9);
    atomic_store(&go_flag, 1);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
}

static atomic_int handler_runs;
static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&handler_runs, 1);
}

static void *interrupt_after(void *arg)
{
    cth_sleep(*(double *)arg);
    CHECK_OK(cth_interrupt_main(SIGINT));
    return NULL;
}

/* InterruptMainTests.test_interrupt_main_subthread, and the departure from
 * Python: a worker's interrupt_main runs the main thread's handler and wakes
 * the main thread blocked in sleep and in join with CTH_EINTR. */
CTH_TEST(interrupt_main_wakes_sleep_and_join)
{
    signal(SIGINT, on_signal);
    atomic_store(&handler_runs, 0);
    double delay = 0.1;
    cth_thread_t *t = start_thread(interrupt_after, &delay, NULL);
    double t0 = check_now();
    CHECK_EQ(cth_sleep(30), CTH_EINTR);
    CHECK(check_now() - t0 < 25); /* woken, not timed out */
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    CHECK_EQ(atomic_load(&handler_runs), 1);
    cth_thread_free(t);

    /* Blocked in join of a thread that sleeps long. */
    double longsleep = 30;
    cth_thread_t *sleeper = start_thread(sleep_arg_seconds, &longsleep,
                                         &(cth_thread_opts_t){.daemon = CTH_DAEMON_YES});
    t = start_thread(interrupt_after, &delay, NULL);
    CHECK_EQ(cth_thread_join(sleeper, NULL, CTH_FOREVER), CTH_EINTR);
    CHECK(cth_thread_is_alive(sleeper));
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    CHECK_EQ(atomic_load(&handler_runs), 2);
    cth_thread_free(t);
    cth_thread_free(sleeper);
    signal(SIGINT, SIG_DFL);
}

/* test_interrupt_main_mainthread: called from main itself, the handler runs
 * at once and the next wait reports the interruption once. */
CTH_TEST(interrupt_main_from_main)
{
    signal(SIGTERM, on_signal);
    atomic_store(&handler_runs, 0);
    CHECK_OK(cth_interrupt_main(SIGTERM));
    CHECK_EQ(atomic_load(&handler_runs), 1);
    CHECK_EQ(cth_sleep(10), CTH_EINTR);
    CHECK_OK(cth_sleep(0.01)); /* consumed */
    signal(SIGTERM, SIG_DFL);
}

/* test_interrupt_main_noerror / test_interrupt_main_invalid_signal: with
 * SIG_IGN or SIG_DFL nothing happens (and nothing dies); bad numbers are
 * errors. */
CTH_TEST(interrupt_main_noop_and_invalid)
{
    signal(SIGINT, SIG_IGN);
    CHECK_OK(cth_interrupt_main(SIGINT));
    CHECK_EQ(cth_sleep(10), CTH_EINTR); /* no signal, but the wait is interrupted */
    signal(SIGINT, SIG_DFL);
    CHECK_OK(cth_interrupt_main(SIGINT)); /* would kill us if it sent SIGINT */
    CHECK_EQ(cth_sleep(10), CTH_EINTR);
    CHECK_OK(cth_sleep(0.01)); /* and reported once */
    CHECK_EQ(cth_interrupt_main(-1), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_main(0), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_main(NSIG), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_main(1000000), CTH_EINVAL);
}

/* A real SIGINT whose handler runs during a main-thread wait makes the wait
 * return CTH_EINTR, as a real Ctrl-C would. */
CTH_TEST(real_signal_interrupts_main_wait)
{
#ifdef CTH_POSIX_FUTEX
    /* The POSIX futex emulation sleeps in pthread_cond_timedwait, which a
     * signal handler does not interrupt (src/unix/futex_posix.c). */
    CHECK_SKIP("with the POSIX futex emulation");
#endif
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    atomic_store(&handler_runs, 0);
    pid_t pid = getpid();
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        usleep(100000);
        kill(pid, SIGINT);
        _exit(0);
    }
    CHECK_EQ(cth_sleep(30), CTH_EINTR);
    CHECK_EQ(atomic_load(&handler_runs), 1);
    int status;
    waitpid(child, &status, 0);
    signal(SIGINT, SIG_DFL);
}

struct signaller {
    pthread_t target;
    int signum;
    atomic_int stop;
};

/* Signal the target every 20 ms until told to stop. */
static void *signal_every_20ms(void *arg)
{
    struct signaller *s = arg;
    while (!atomic_load(&s->stop)) {
        pthread_kill(s->target, s->signum);
        cth_sleep(0.02);
    }
    return NULL;
}

/* PEP 475: a handler that returns does not end a main-thread wait, which
 * resumes toward its deadline (a profiler's SIGPROF, a SIGCHLD, ...). */
CTH_TEST(returning_handler_resumes_main_wait)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGINT, on_signal); /* SIGINT handled, as a program's, but not sent */
    atomic_store(&handler_runs, 0);
    struct signaller s = {.target = pthread_self(), .signum = SIGUSR1};
    cth_thread_t *t = start_thread(signal_every_20ms, &s, NULL);
    double t0 = check_now();
    CHECK_OK(cth_sleep(0.3));
    CHECK(check_now() - t0 >= 0.3 - 1e-9);
    cth_event_t ev = CTH_EVENT_INIT;
    t0 = check_now();
    CHECK_EQ(cth_event_wait(&ev, 0.3), CTH_ETIMEDOUT);
    CHECK(check_now() - t0 >= 0.3 - 1e-9);
    atomic_store(&s.stop, 1);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    CHECK(atomic_load(&handler_runs) >= 2); /* the handler did run meanwhile */
    signal(SIGUSR1, SIG_DFL);
    signal(SIGINT, SIG_DFL);
}

/* cth_interrupt_on_signal: SIGTERM made interrupting ends the wait; made
 * ordinary again, it does not; SIGINT made ordinary does not either. */
CTH_TEST(interrupt_on_signal)
{
#ifdef CTH_POSIX_FUTEX
    CHECK_SKIP("with the POSIX futex emulation"); /* a signal does not wake a sleep */
#endif
    CHECK_OK(cth_interrupt_on_signal(SIGTERM, true));
    signal(SIGTERM, on_signal); /* installed after the call: wrapped all the same */
    atomic_store(&handler_runs, 0);
    struct signaller s = {.target = pthread_self(), .signum = SIGTERM};
    cth_thread_t *t = start_thread(signal_every_20ms, &s, NULL);
    CHECK_EQ(cth_sleep(30), CTH_EINTR);
    CHECK(atomic_load(&handler_runs) >= 1);
    CHECK_OK(cth_interrupt_on_signal(SIGTERM, false));
    double t0 = check_now();
    CHECK_OK(cth_sleep(0.1));
    CHECK(check_now() - t0 >= 0.1 - 1e-9);
    atomic_store(&s.stop, 1);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);

    signal(SIGINT, on_signal);
    CHECK_OK(cth_interrupt_on_signal(SIGINT, false));
    s = (struct signaller){.target = pthread_self(), .signum = SIGINT};
    t = start_thread(signal_every_20ms, &s, NULL);
    CHECK_OK(cth_sleep(0.1));
    CHECK_OK(cth_interrupt_on_signal(SIGINT, true));
    CHECK_EQ(cth_sleep(30), CTH_EINTR);
    atomic_store(&s.stop, 1);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
}

static atomic_int second_handler_runs;
static void on_signal_second(int sig)
{
    (void)sig;
    atomic_fetch_add(&second_handler_runs, 1);
}

/* A program that saves SIGINT's action (cthreading's wrapper by then),
 * installs a handler of its own and later restores the saved action gets
 * its first handler back, still interrupting. */
CTH_TEST(saved_and_restored_handler_is_the_first)
{
    signal(SIGINT, on_signal);
    atomic_store(&handler_runs, 0);
    atomic_store(&second_handler_runs, 0);
    CHECK_OK(cth_sleep(0.001)); /* a main-thread wait: the handler is wrapped */
    struct sigaction second = {.sa_handler = on_signal_second}, saved;
    sigemptyset(&second.sa_mask);
    CHECK_OK(sigaction(SIGINT, &second, &saved));
    CHECK_OK(cth_sleep(0.001)); /* the second one is wrapped */
    CHECK_OK(sigaction(SIGINT, &saved, NULL));
    double delay = 0.05;
    cth_thread_t *t = start_thread(interrupt_after, &delay, NULL);
    CHECK_EQ(cth_sleep(30), CTH_EINTR);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    CHECK_EQ(atomic_load(&handler_runs), 1);
    CHECK_EQ(atomic_load(&second_handler_runs), 0);
    signal(SIGINT, SIG_DFL);
}

static void *sleep_then_sigint_self(void *arg)
{
    (void)arg;
    cth_sleep(0.1);
    pthread_kill(pthread_self(), SIGINT);
    return NULL;
}

/* A SIGINT whose handler runs in another thread (a process-directed signal
 * lands on any thread) still wakes the main thread's wait. */
CTH_TEST(sigint_in_other_thread_interrupts_main)
{
#ifdef CTH_POSIX_FUTEX
    CHECK_SKIP("with the POSIX futex emulation"); /* its wake is not signal-safe */
#endif
    signal(SIGINT, on_signal);
    atomic_store(&handler_runs, 0);
    cth_thread_t *t = start_thread(sleep_then_sigint_self, NULL, NULL);
    CHECK_EQ(cth_sleep(30), CTH_EINTR);
    CHECK_EQ(atomic_load(&handler_runs), 1);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    signal(SIGINT, SIG_DFL);
}

static void *interrupt_main_after_50ms(void *arg)
{
    (void)arg;
    cth_sleep(0.05);
    CHECK_OK(cth_interrupt_main(SIGINT));
    return NULL;
}

/* With SIGINT at SIG_DFL (a C program's normal state), cth_interrupt_main
 * sends no signal but still ends the main thread's wait. */
CTH_TEST(interrupt_main_at_sig_dfl_wakes_sleep)
{
    signal(SIGINT, SIG_DFL);
    cth_thread_t *t = start_thread(interrupt_main_after_50ms, NULL, NULL);
    CHECK_EQ(cth_sleep(30), CTH_EINTR);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
}

static void *sleep_in_worker(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)cth_sleep(0.2);
}

/* Only the main thread is interrupted: a worker's sleep runs its course. */
CTH_TEST(interrupt_does_not_touch_workers)
{
    signal(SIGINT, on_signal);
    cth_thread_t *t = start_thread(sleep_in_worker, NULL, NULL);
    double delay = 0.05;
    cth_thread_t *i = start_thread(interrupt_after, &delay, NULL);
    void *r;
    CHECK_EQ(cth_thread_join(t, &r, CTH_FOREVER), CTH_EINTR); /* main is interrupted */
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK_EQ((intptr_t)r, 0); /* the worker's sleep ran its course */
    CHECK_OK(cth_thread_join(i, NULL, CTH_FOREVER));
    cth_thread_free(t);
    cth_thread_free(i);
    signal(SIGINT, SIG_DFL);
}

/* cth_dump_threads lists every alive thread with its state. */
CTH_TEST(dump_threads)
{
    atomic_store(&go_flag, 0);
    cth_thread_opts_t opts = {.name = "dumped", .daemon = CTH_DAEMON_YES};
    cth_thread_t *t = start_thread((cth_thread_fn)(void (*)(void))wait_flag, &go_flag, &opts);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    CHECK_OK(cth_dump_threads(f));
    fclose(f);
    char count_line[32]; /* the last line counts the threads listed */
    snprintf(count_line, sizeof count_line, "\n%zu threads\n", cth_active_count());
    CHECK(strstr(buf, count_line) != NULL);
    CHECK(strstr(buf, "MainThread") != NULL);
    CHECK(strstr(buf, "dumped") != NULL);
    CHECK(strstr(buf, "daemon") != NULL);
    CHECK(strstr(buf, "running") != NULL || strstr(buf, "started") != NULL);
    free(buf);
    atomic_store(&go_flag, 1);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
}

static void *join_main(void *arg)
{
    (void)arg;
    int r = cth_thread_join(cth_main_thread(), NULL, CTH_FOREVER);
    printf("end of thread (%d)\n", r);
    return NULL;
}

/* ThreadJoinOnShutdown.test_1_join_on_shutdown: a thread joining main is
 * released when main ends, and the process waits for it. */
CTH_CHILD(join_main_at_exit)
{
    cth_thread_t *t = start_thread(join_main, NULL, NULL);
    cth_sleep(0.05);
    CHECK(cth_thread_is_alive(t));
    printf("end of main\n");
    cth_thread_free(t);
}

CTH_TEST(join_main_on_shutdown)
{
    check_child_prints("join_main_at_exit", "end of main\nend of thread (0)\n");
}

static void *slow_nondaemon(void *arg)
{
    cth_sleep(0.2);
    printf("%s done\n", (const char *)arg);
    return NULL;
}

static void *spawn_from_thread(void *arg)
{
    (void)arg;
    cth_sleep(0.05);
    cth_thread_t *t = start_thread(slow_nondaemon, (void *)"grandchild", NULL);
    cth_thread_free(t);
    return NULL;
}

/* test_join_nondaemon_on_shutdown, test_thread_from_thread: exit waits for
 * non-daemon threads, including one started by another thread, even when
 * main exits through exit(). */
CTH_CHILD(nondaemon_at_exit)
{
    cth_thread_t *a = start_thread(slow_nondaemon, (void *)"child", NULL);
    cth_thread_t *b = start_thread(spawn_from_thread, NULL, NULL);
    cth_thread_free(a);
    cth_thread_free(b);
    printf("main exits\n");
    exit(0);
}

CTH_TEST(exit_waits_for_nondaemon)
{
    char out[256];
    int status = check_run_child("nondaemon_at_exit", out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(out, "main exits\n") == out);
    CHECK(strstr(out, "child done\n") != NULL);
    CHECK(strstr(out, "grandchild done\n") != NULL);
}

static void *daemon_forever(void *arg)
{
    (void)arg;
    for (;;)
        cth_sleep(0.001);
    return NULL;
}

/* test_4_daemon_threads: exiting while daemon threads run: no wait, no
 * crash, nothing on stderr. */
CTH_CHILD(daemons_at_exit)
{
    for (int i = 0; i < 40; i++) {
        cth_thread_t *t = start_thread(daemon_forever, NULL,
                                       &(cth_thread_opts_t){.daemon = CTH_DAEMON_YES});
        cth_thread_free(t);
    }
    printf("bye\n");
}

CTH_TEST(exit_abandons_daemons)
{
    check_child_prints("daemons_at_exit", "bye\n");
}

/* test_start_new_thread_at_finalization: once shutdown is done, starting a
 * thread fails cleanly; shutdown is idempotent; main is finished. Starting
 * a thread started before is still "threads can only be started once"
 * (ThreadingExceptionTests.test_start_thread_again: start() checks that
 * first). */
CTH_CHILD(start_after_shutdown)
{
    cth_thread_t *t, *done = start_thread(return_arg, NULL, NULL);
    CHECK_OK(cth_thread_join(done, NULL, CTH_FOREVER));
    CHECK_OK(cth_shutdown(CTH_FOREVER));
    CHECK_OK(cth_shutdown(0));
    CHECK(!cth_thread_is_alive(cth_main_thread()));
    CHECK_OK(cth_thread_create(&t, NULL, NULL, NULL));
    CHECK_EQ(cth_thread_start(t), CTH_ESHUTDOWN);
    CHECK_EQ(cth_thread_start(done), CTH_EPERM);
    cth_thread_free(t);
    cth_thread_free(done);
    printf("refused\n");
}

CTH_TEST(start_refused_after_shutdown)
{
    check_child_prints("start_after_shutdown", "refused\n");
}

/* cth_shutdown with a timeout returns CTH_ETIMEDOUT while a non-daemon
 * thread runs, then succeeds once it ended; bad timeouts are refused. */
CTH_CHILD(shutdown_timeout)
{
    CHECK_EQ(cth_shutdown(NAN), CTH_EINVAL);
    double secs = 0.3;
    cth_thread_t *t = start_thread(sleep_arg_seconds, &secs, NULL);
    double t0 = check_now();
    CHECK_EQ(cth_shutdown(0.05), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(t0, 0.05);
    CHECK_OK(cth_shutdown(CTH_FOREVER));
    CHECK(!cth_thread_is_alive(t));
    cth_thread_free(t);
    printf("ok\n");
}

CTH_TEST(shutdown_with_timeout)
{
    check_child_prints("shutdown_timeout", "ok\n");
}

/* In a fork child: the forking thread is the main thread, alone in the
 * registry; threads work; old handles read as finished. Exits 0 if all
 * holds (CHECK aborts otherwise). */
static void check_fork_child(cth_thread_t *forker, cth_thread_t *other)
{
    CHECK(cth_main_thread() == forker);
    CHECK(cth_current_thread() == forker);
    CHECK_EQ(cth_active_count(), 1);
    CHECK_EQ(cth_thread_native_id(forker), getpid());
    CHECK_EQ(cth_thread_ident(forker), cth_get_ident());
    CHECK(!cth_thread_is_alive(other));
    CHECK_OK(cth_thread_join(other, NULL, 0));
    cth_thread_t *t = start_thread(return_arg, (void *)"child", NULL);
    void *r;
    CHECK_OK(cth_thread_join(t, &r, CTH_FOREVER));
    CHECK(strcmp(r, "child") == 0);
    cth_thread_free(t);
    CHECK_EQ(cth_sleep(0.01), 0); /* no stale interruption */
}

static cth_thread_t *fork_other;

static void *fork_from_worker(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        check_fork_child(cth_current_thread(), fork_other);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    return (void *)(intptr_t)(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Python's _after_fork (test_threading's fork tests, adapted): fork from the
 * main thread and from a worker while other threads run; the child's
 * cthreading is usable. */
CTH_TEST(fork_leaves_child_usable)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    /* The sanitizers' runtimes are not fork-safe in a threaded process:
     * TSan refuses threads in the child ("dup thread with used id"), and
     * ASan's allocator can be left locked by the fork, so the child's first
     * thread deadlocks in calloc. The plain run covers it. */
    CHECK_SKIP("under a sanitizer");
#endif
    if (RUNNING_ON_VALGRIND) {
        /* helgrind takes the child's thread for a racer of the parent's. */
        CHECK_SKIP("under valgrind");
    }
    atomic_store(&go_flag, 0);
    fork_other = start_thread((cth_thread_fn)(void (*)(void))wait_flag, &go_flag, NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        check_fork_child(cth_main_thread(), fork_other);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    cth_thread_t *w = start_thread(fork_from_worker, NULL, NULL);
    void *ok;
    CHECK_OK(cth_thread_join(w, &ok, CTH_FOREVER));
    CHECK_EQ((intptr_t)ok, 1);
    cth_thread_free(w);
    CHECK(cth_thread_is_alive(fork_other)); /* the parent is untouched */
    atomic_store(&go_flag, 1);
    CHECK_OK(cth_thread_join(fork_other, NULL, CTH_FOREVER));
    cth_thread_free(fork_other);
}
