/* SPDX-License-Identifier: MIT */
/*
 * test_exit.c - a program ending with everything alive, and fork().
 *
 * Exit (Python: threading._shutdown at interpreter exit): a program that
 * returns from main, or calls exit(), while a non-daemon thread works, a
 * non-daemon one-shot timer is pending, a periodic and a daemon timer are
 * pending, a pool is busy and another idle, and daemon threads are blocked
 * in a queue's get, exits with status 0 once the non-daemon work is done
 * (the thread and the one-shot timer both report), abandons the daemon work
 * without a crash, and prints nothing else (stderr included). The order at
 * exit: the wait comes before the program's atexit handlers; while it waits,
 * threads and timers keep working (a non-daemon thread may still start a
 * timer, which fires); exit() from another thread or a timer's function;
 * thread-local values of a thread alive at exit (test_finalization_shutdown).
 *
 * fork (Python: threading._after_fork, test_threading's
 * test_reinit_tls_after_fork / test_after_fork): the child of a program with
 * a live timer service and pools has only the forking thread registered,
 * can start a new timer and a new pool and use them, sees the inherited
 * pending timer cancelled and the inherited pool not running, and exits
 * cleanly.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

static cth_queue_t *exit_queue;
static cth_pool_t *busy_pool, *idle_pool;
static cth_result_t *busy_result;
static cth_timer_t *oneshot, *periodic_timer, *daemon_timer; /* alive at exit, still referenced */

static void *nondaemon_work(void *arg)
{
    (void)arg;
    cth_sleep(0.1);
    printf("nondaemon finished\n");
    return NULL;
}

static void *blocked_getter(void *arg)
{
    (void)arg;
    void *item;
    cth_queue_get(exit_queue, &item, CTH_FOREVER); /* never returns */
    return NULL;
}

static void oneshot_fired(void *arg)
{
    (void)arg;
    printf("timer fired\n");
}

static void periodic_tick(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void never_called(void *arg)
{
    (void)arg;
    printf("a daemon timer fired\n");
}

static int long_task(void *arg, void **result)
{
    (void)arg;
    cth_sleep(30);
    *result = NULL;
    return 0;
}

static atomic_int ticks;

static void start_everything(void)
{
    cth_thread_t *t;
    cth_thread_opts_t daemon = {.daemon = CTH_DAEMON_YES};
    CHECK_OK(cth_thread_create(&t, nondaemon_work, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    cth_thread_free(t);
    CHECK_OK(cth_queue_create(&exit_queue, 0, NULL));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cth_thread_create(&t, blocked_getter, NULL, &daemon));
        CHECK_OK(cth_thread_start(t));
        cth_thread_free(t);
    }
    CHECK_OK(cth_timer_create(&oneshot, 0.05, oneshot_fired, NULL, NULL));
    CHECK_OK(cth_timer_start(oneshot)); /* kept: freeing a pending timer cancels it */
    cth_timer_opts_t periodic = {.period = 0.01};
    CHECK_OK(cth_timer_create(&periodic_timer, 0.01, periodic_tick, &ticks, &periodic));
    CHECK_OK(cth_timer_start(periodic_timer));
    cth_timer_opts_t dtimer = {.daemon = CTH_DAEMON_YES};
    CHECK_OK(cth_timer_create(&daemon_timer, 100, never_called, NULL, &dtimer));
    CHECK_OK(cth_timer_start(daemon_timer));
    cth_pool_opts_t po = {.processes = 2};
    CHECK_OK(cth_pool_create(&busy_pool, &po));
    CHECK_OK(cth_pool_apply_async(busy_pool, long_task, NULL, NULL, &busy_result));
    CHECK_OK(cth_pool_create(&idle_pool, &po));
    cth_sleep(0.02);
}

CTH_CHILD(return_from_main)
{
    start_everything();
}

CTH_CHILD(call_exit)
{
    start_everything();
    exit(0);
}

static void check_clean_exit(const char *child)
{
    char out[4096];
    int status = check_run_child(child, out, sizeof out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        strlen(out) != strlen("nondaemon finished\ntimer fired\n") ||
        !strstr(out, "nondaemon finished\n") || !strstr(out, "timer fired\n")) {
        fprintf(stderr, "child %s: status %#x, output:\n%s", child, status, out);
        CHECK(!"a clean exit");
    }
}

/* Python: test_threading.ThreadTests.test_join_nondaemon_on_shutdown and
 * test_daemon_threads_not_joined-like: exit with everything alive. */
CTH_TEST(exit_with_everything_alive_return)
{
    check_clean_exit("return_from_main");
}

CTH_TEST(exit_with_everything_alive_exit)
{
    check_clean_exit("call_exit");
}

/* ---- the order at exit ------------------------------------------------------------------ */

/* Python's Py_Finalize waits for the non-daemon threads (threading._shutdown)
 * before it runs the atexit handlers (docs/python-semantics.md); test_threading's
 * test_join_nondaemon_on_shutdown, with an atexit handler that looks: a
 * handler the program registered after cthreading loaded, before or after it
 * started the thread, finds the thread's work done, whether main returns or
 * calls exit(). */
static atomic_int work_done;

static void *slow_work(void *arg)
{
    (void)arg;
    cth_sleep(0.1);
    atomic_store(&work_done, 1);
    return NULL;
}

static void start_slow_work(void)
{
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, slow_work, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    cth_thread_free(t);
}

static void report_work(void)
{
    printf("atexit: the work is %s\n", atomic_load(&work_done) ? "done" : "NOT done");
}

CTH_CHILD(atexit_before_start)
{
    atexit(report_work);
    start_slow_work();
}

CTH_CHILD(atexit_after_start)
{
    start_slow_work();
    atexit(report_work);
}

CTH_CHILD(atexit_after_start_exit)
{
    start_slow_work();
    atexit(report_work);
    exit(0);
}

CTH_TEST(atexit_handlers_run_after_the_wait)
{
    check_child_prints("atexit_before_start", "atexit: the work is done\n");
    check_child_prints("atexit_after_start", "atexit: the work is done\n");
    check_child_prints("atexit_after_start_exit", "atexit: the work is done\n");
}

/* exit() from a non-daemon thread, or from a non-daemon timer's function,
 * while another non-daemon thread works: the exit waits for that one (not
 * for the caller itself, nor for its own timer, which would never end) and
 * succeeds. (Its atexit handler runs after those registered later: the
 * shutdown goes first only when main() returns or calls exit().) */
static void *slow_work_reported(void *arg)
{
    slow_work(arg);
    printf("the slow work is done\n");
    return NULL;
}

static void *exit_from_thread(void *arg)
{
    (void)arg;
    cth_sleep(0.02);
    exit(0);
}

static void exit_from_timer(void *arg)
{
    (void)arg;
    exit(0);
}

static void start_slow_work_reported(void)
{
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, slow_work_reported, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    cth_thread_free(t);
}

CTH_CHILD(exit_in_thread)
{
    start_slow_work_reported();
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, exit_from_thread, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    cth_thread_join(t, NULL, CTH_FOREVER); /* the process ends meanwhile */
}

CTH_CHILD(exit_in_timer)
{
    start_slow_work_reported();
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, 0.02, exit_from_timer, NULL, NULL));
    CHECK_OK(cth_timer_start(t));
    cth_timer_join(t, CTH_FOREVER); /* the process ends meanwhile */
}

CTH_TEST(exit_from_another_thread)
{
    check_child_prints("exit_in_thread", "the slow work is done\n");
    check_child_prints("exit_in_timer", "the slow work is done\n");
}

/* A Timer is a thread (docs/python-semantics.md): while the exit waits
 * for a non-daemon thread, that thread may still start a (non-daemon) timer,
 * which fires and is waited for; a daemon timer due meanwhile fires, and a
 * periodic one keeps ticking: the timers left are cancelled only once the
 * wait is over. */
static atomic_int late_ticks;
static cth_timer_t *late_timer, *late_daemon, *late_periodic; /* alive at exit */

static void say(void *arg)
{
    printf("%s\n", (const char *)arg);
}

static void late_tick(void *arg)
{
    (void)arg;
    atomic_fetch_add(&late_ticks, 1);
}

static void *start_timer_late(void *arg)
{
    (void)arg;
    cth_sleep(0.3); /* main has returned: the exit waits for this thread */
    int seen = atomic_load(&late_ticks);
    cth_sleep(0.05);
    if (atomic_load(&late_ticks) > seen)
        printf("the periodic timer still ticks\n");
    CHECK_OK(cth_timer_create(&late_timer, 0.05, say, "the late timer fired", NULL));
    CHECK_OK(cth_timer_start(late_timer));
    return NULL;
}

CTH_CHILD(timers_during_the_wait)
{
    cth_timer_opts_t daemon = {.daemon = CTH_DAEMON_YES}, periodic = {.period = 0.01};
    CHECK_OK(cth_timer_create(&late_daemon, 0.1, say, "the daemon timer fired", &daemon));
    CHECK_OK(cth_timer_start(late_daemon));
    CHECK_OK(cth_timer_create(&late_periodic, 0.01, late_tick, NULL, &periodic));
    CHECK_OK(cth_timer_start(late_periodic));
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, start_timer_late, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    cth_thread_free(t);
}

CTH_TEST(timers_run_while_exit_waits)
{
    check_child_prints("timers_during_the_wait", "the daemon timer fired\n"
                                                 "the periodic timer still ticks\n"
                                                 "the late timer fired\n");
}

/* test_threading's test_finalization_shutdown (bpo-36402): the exit waits
 * until a non-daemon thread, still running when main returns, has destroyed
 * its thread-local values (their destructor is slow); a daemon thread that
 * holds such values and runs on is abandoned without a crash. */
static cth_local_t *exit_local;

static void slow_destructor(void *value)
{
    cth_sleep(0.05);
    printf("destroyed the %s thread's value\n", (const char *)value);
}

static void *set_local_and_linger(void *arg)
{
    cth_sleep(0.02);
    CHECK_OK(cth_local_set(exit_local, arg));
    cth_sleep(0.02);
    return NULL;
}

static void *set_local_forever(void *arg)
{
    CHECK_OK(cth_local_set(exit_local, arg));
    for (;;)
        cth_sleep(0.001);
    return NULL;
}

CTH_CHILD(finalization_shutdown)
{
    CHECK_OK(cth_local_create(&exit_local, &(cth_local_opts_t){.free_item = slow_destructor}));
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, set_local_and_linger, "non-daemon", NULL));
    CHECK_OK(cth_thread_start(t));
    cth_thread_free(t);
    cth_thread_opts_t daemon = {.daemon = CTH_DAEMON_YES};
    CHECK_OK(cth_thread_create(&t, set_local_forever, "daemon", &daemon));
    CHECK_OK(cth_thread_start(t));
    cth_thread_free(t);
    cth_sleep(0.01);
}

CTH_TEST(finalization_shutdown)
{
    check_child_prints("finalization_shutdown", "destroyed the non-daemon thread's value\n");
}

static int triple(void *arg, void **result)
{
    *result = (void *)((uintptr_t)arg * 3);
    return 0;
}

static void set_flag(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
}

/* Python: test_threading.ThreadTests.test_after_fork / _after_fork. */
CTH_TEST(fork_with_timers_and_pools)
{
    if (RUNNING_ON_VALGRIND) {
        /* helgrind does not know that the other threads are gone in a fork
         * child: the after-fork handlers resetting their state look like
         * races with them. The other builds check it. */
        CHECK_SKIP("under valgrind");
    }
    cth_timer_t *pending;
    CHECK_OK(cth_timer_create(&pending, 60, never_called, NULL, NULL));
    CHECK_OK(cth_timer_start(pending));
    cth_timer_opts_t periodic = {.period = 0.001};
    cth_timer_t *tick;
    CHECK_OK(cth_timer_create(&tick, 0.001, periodic_tick, &ticks, &periodic));
    CHECK_OK(cth_timer_start(tick));
    cth_pool_opts_t po = {.processes = 2};
    cth_pool_t *pool;
    CHECK_OK(cth_pool_create(&pool, &po));
    cth_result_t *res;
    CHECK_OK(cth_pool_apply_async(pool, triple, (void *)7, NULL, &res));
    CHECK_OK(cth_result_wait(res, CTH_FOREVER));
    cth_result_free(res);
    while (atomic_load(&ticks) < 3)
        cth_sleep(0.001);

    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* only this thread is left */
        cth_thread_t *list[8];
        size_t n = cth_enumerate(list, 8);
        CHECK_EQ(n, 1);
        CHECK(list[0] == cth_current_thread());
        CHECK(list[0] == cth_main_thread());
        cth_threads_free(list, n);
        /* inherited timers: cancelled, their joiners return */
        CHECK_OK(cth_timer_join(pending, 1.0));
        CHECK_EQ(cth_timer_state(pending), CTH_TIMER_CANCELLED);
        CHECK_OK(cth_timer_join(tick, 1.0));
        /* the inherited pool is not running; it can be freed */
        CHECK_EQ(cth_pool_apply_async(pool, triple, (void *)1, NULL, &res), CTH_EINVAL);
        cth_pool_free(pool);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
        /* TSan and ASan cannot start threads in the child of a threaded
         * parent (TSan's registry keeps the parent's thread ids; ASan's
         * allocator may be left locked); the plain build checks the rest. */
        cth_timer_free(pending);
        cth_timer_free(tick);
        exit(0);
#endif
        /* a new timer and a new pool work */
        atomic_int flag = 0;
        cth_timer_t *t;
        CHECK_OK(cth_timer_create(&t, 0.01, set_flag, &flag, NULL));
        CHECK_OK(cth_timer_start(t));
        CHECK_OK(cth_timer_join(t, 10));
        CHECK_EQ(cth_timer_state(t), CTH_TIMER_FIRED);
        CHECK_EQ(atomic_load(&flag), 1);
        cth_timer_free(t);
        cth_pool_t *p2;
        CHECK_OK(cth_pool_create(&p2, &po));
        void *items[100], *results[100];
        for (uintptr_t i = 0; i < 100; i++)
            items[i] = (void *)i;
        CHECK_OK(cth_pool_map(p2, triple, items, 100, 0, results));
        for (uintptr_t i = 0; i < 100; i++)
            CHECK_EQ((uintptr_t)results[i], 3 * i);
        CHECK_OK(cth_pool_close(p2));
        CHECK_OK(cth_pool_join(p2, CTH_FOREVER));
        cth_pool_free(p2);
        cth_timer_free(pending);
        cth_timer_free(tick);
        exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    /* the parent's are untouched */
    CHECK_EQ(cth_timer_state(pending), CTH_TIMER_PENDING);
    int before = atomic_load(&ticks);
    while (atomic_load(&ticks) == before)
        cth_sleep(0.001);
    CHECK_OK(cth_pool_apply_async(pool, triple, (void *)5, NULL, &res));
    void *v;
    CHECK_OK(cth_result_get(res, &v, CTH_FOREVER));
    CHECK_EQ((uintptr_t)v, 15);
    cth_result_free(res);
    cth_timer_free(pending);
    cth_timer_free(tick);
    cth_pool_free(pool);
}
