/* SPDX-License-Identifier: MIT */
/*
 * test_timer.c - Timer (threading.Timer), periodic timers and the shared
 * timer service. Python's own Timer tests are few (test_threading's
 * TimerTests: test_init_immutable_default_args, and the Timer cases of
 * ThreadTests); the rest follows docs/python-semantics.md, Timer, case by case.
 */
#include <dirent.h>
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "check.h"
#include "cthreading.h"
#include "platform.h"
#include "timer_service.h"

#define CTH__UNUSED_ARG(x) ((void)(x))

/* A function that counts its calls and records when the last one began. */
struct counter {
    atomic_int calls;
    _Atomic double last; /* check_now() at the start of the last call */
};

static void count_call(void *arg)
{
    struct counter *c = arg;
    atomic_store(&c->last, check_now());
    atomic_fetch_add(&c->calls, 1);
}

static const cth_timer_opts_t daemon_opts = {.daemon = CTH_DAEMON_YES};

static void noop(void *arg)
{
    CTH__UNUSED_ARG(arg);
}

/* Python's Timer.run(): the function runs once, after at least the
 * interval; the timer is alive until then, finished afterwards. */
CTH_TEST(fires_once_after_interval)
{
    struct counter c = {0};
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, 0.05, count_call, &c, NULL));
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_INITIAL);
    CHECK(!cth_timer_is_alive(t));
    double start = check_now();
    CHECK_OK(cth_timer_start(t));
    CHECK(cth_timer_is_alive(t));
    CHECK(!cth_timer_finished(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK_EQ(atomic_load(&c.calls), 1);
    CHECK(atomic_load(&c.last) - start >= 0.05 - 0.001);
    CHECK(!cth_timer_is_alive(t));
    CHECK(cth_timer_finished(t));
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_FIRED);
    cth_sleep(0.02);
    CHECK_EQ(atomic_load(&c.calls), 1);
    cth_timer_free(t);
}

/* A zero interval fires as soon as started (Python: "fires immediately"). */
CTH_TEST(zero_interval)
{
    struct counter c = {0};
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, 0, count_call, &c, NULL));
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_join(t, 5));
    CHECK_EQ(atomic_load(&c.calls), 1);
    cth_timer_free(t);
}

/* cancel() before the timer fires: the function never runs, the timer ends
 * at once (its joiners return) and says it was cancelled. */
CTH_TEST(cancel_before_firing)
{
    struct counter c = {0}, w = {0};
    cth_timer_t *t, *witness; /* same interval, started after: fires after t would */
    CHECK_OK(cth_timer_create(&t, 0.5, count_call, &c, NULL));
    CHECK_OK(cth_timer_create(&witness, 0.5, count_call, &w, NULL));
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_start(witness));
    CHECK_OK(cth_timer_cancel(t));
    CHECK(cth_timer_finished(t));
    CHECK(!cth_timer_is_alive(t));
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_CANCELLED);
    CHECK_OK(cth_timer_join(t, 0));
    CHECK_OK(cth_timer_join(witness, CTH_FOREVER));
    cth_sleep(0.05);
    CHECK_EQ(atomic_load(&c.calls), 0);
    cth_timer_free(t);
    cth_timer_free(witness);
}

/* A function that blocks until its gate (a locked Lock) is released, and
 * says when it has begun. */
struct gated {
    cth_lock_t gate;
    atomic_int entered;
    atomic_int left;
};

static void gated_call(void *arg)
{
    struct gated *g = arg;
    atomic_fetch_add(&g->entered, 1);
    CHECK_OK(cth_lock_acquire(&g->gate, CTH_FOREVER));
    CHECK_OK(cth_lock_release(&g->gate));
    atomic_fetch_add(&g->left, 1);
}

static void wait_for(atomic_int *v, int n)
{
    double start = check_now();
    while (atomic_load(v) < n) {
        CHECK(check_now() - start < 10);
        cth_sleep(0.001);
    }
}

/* cancel() while the function runs has no effect on that call (Python);
 * the finished flag is set at once; the timer still counts as fired. */
CTH_TEST(cancel_during_function)
{
    struct gated g = {CTH_LOCK_INIT, 0, 0};
    CHECK_OK(cth_lock_acquire(&g.gate, CTH_FOREVER));
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, 0.01, gated_call, &g, NULL));
    CHECK_OK(cth_timer_start(t));
    wait_for(&g.entered, 1);
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_RUNNING);
    CHECK_OK(cth_timer_cancel(t));
    CHECK(cth_timer_finished(t));
    CHECK(cth_timer_is_alive(t));
    CHECK_EQ(cth_timer_join(t, 0.02), CTH_ETIMEDOUT);
    CHECK_OK(cth_lock_release(&g.gate));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK_EQ(atomic_load(&g.left), 1);
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_FIRED);
    cth_timer_free(t);
}

/* cancel() after the timer has fired is a no-op. */
CTH_TEST(cancel_after_firing)
{
    struct counter c = {0};
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, 0, count_call, &c, NULL));
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK_OK(cth_timer_cancel(t));
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_FIRED);
    CHECK_EQ(atomic_load(&c.calls), 1);
    cth_timer_free(t);
}

/* Python's Timer: cancel() before start(): the later start runs
 * nothing (Python's thread calls nothing and ends). */
CTH_TEST(cancel_before_start)
{
    struct counter c = {0};
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, 0, count_call, &c, NULL));
    CHECK_OK(cth_timer_cancel(t));
    CHECK(cth_timer_finished(t));
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_INITIAL);
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_CANCELLED);
    cth_sleep(0.05);
    CHECK_EQ(atomic_load(&c.calls), 0);
    CHECK_EQ(cth_timer_start(t), CTH_EPERM);
    cth_timer_free(t);
}

/* One timer's function cancels another, still pending, timer. */
static cth_timer_t *victim;
static void cancel_victim(void *arg)
{
    CTH__UNUSED_ARG(arg);
    CHECK_OK(cth_timer_cancel(victim));
}

CTH_TEST(cancel_from_another_timer)
{
    struct counter c = {0};
    cth_timer_t *killer;
    CHECK_OK(cth_timer_create(&victim, 5, count_call, &c, NULL));
    CHECK_OK(cth_timer_create(&killer, 0.01, cancel_victim, NULL, NULL));
    CHECK_OK(cth_timer_start(victim));
    CHECK_OK(cth_timer_start(killer));
    CHECK_OK(cth_timer_join(killer, CTH_FOREVER));
    CHECK_OK(cth_timer_join(victim, CTH_FOREVER));
    CHECK_EQ(cth_timer_state(victim), CTH_TIMER_CANCELLED);
    CHECK_EQ(atomic_load(&c.calls), 0);
    cth_timer_free(killer);
    cth_timer_free(victim);
}

/* A periodic timer runs on its schedule (call k at or after start +
 * interval + k * period, with no drift from the calls' own time) and
 * cancels itself from its own function after 5 calls. */
struct ticker {
    double start, interval, period;
    atomic_int calls;
    atomic_int bad;
};

static void tick(void *arg)
{
    struct ticker *tk = arg;
    int k = atomic_load(&tk->calls);
    double due = tk->start + tk->interval + k * tk->period;
    if (check_now() < due - 0.001)
        atomic_store(&tk->bad, 1);
    cth_sleep(tk->period / 2); /* long calls must not push the schedule */
    if (atomic_fetch_add(&tk->calls, 1) + 1 == 5)
        CHECK_OK(cth_timer_cancel(cth_timer_current()));
}

CTH_TEST(periodic_cancel_from_own_function)
{
    struct ticker tk = {.interval = 0.02, .period = 0.03};
    cth_timer_opts_t opts = {.period = 0.03};
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, tk.interval, tick, &tk, &opts));
    CHECK(fabs(cth_timer_period(t) - 0.03) < 1e-9);
    tk.start = check_now();
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK_WAITED_AT_LEAST(tk.start, 0.02 + 4 * 0.03);
    CHECK_EQ(atomic_load(&tk.calls), 5);
    CHECK_EQ(atomic_load(&tk.bad), 0);
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_CANCELLED);
    CHECK(cth_timer_finished(t));
    cth_sleep(0.1);
    CHECK_EQ(atomic_load(&tk.calls), 5);
    cth_timer_free(t);
}

/* A periodic timer cancelled from outside, while pending, stops. */
CTH_TEST(periodic_cancel_from_outside)
{
    struct counter c = {0};
    cth_timer_opts_t opts = {.period = 0.01};
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, 0, count_call, &c, &opts));
    CHECK_OK(cth_timer_start(t));
    wait_for(&c.calls, 3);
    CHECK_OK(cth_timer_cancel(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    int n = atomic_load(&c.calls);
    cth_sleep(0.05);
    CHECK_EQ(atomic_load(&c.calls), n);
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_CANCELLED);
    cth_timer_free(t);
}

/* A function that blocks does not delay another timer: the second fires
 * (and its function runs) while the first is still blocked. */
CTH_TEST(blocking_function_does_not_delay_others)
{
    struct gated g = {CTH_LOCK_INIT, 0, 0};
    CHECK_OK(cth_lock_acquire(&g.gate, CTH_FOREVER));
    struct counter c = {0};
    cth_timer_t *blocker, *other;
    CHECK_OK(cth_timer_create(&blocker, 0, gated_call, &g, NULL));
    CHECK_OK(cth_timer_create(&other, 0.05, count_call, &c, NULL));
    CHECK_OK(cth_timer_start(blocker));
    double start = check_now();
    CHECK_OK(cth_timer_start(other));
    CHECK_OK(cth_timer_join(other, 10));
    CHECK_EQ(atomic_load(&c.calls), 1);
    CHECK(atomic_load(&c.last) - start >= 0.05 - 0.001);
    CHECK_EQ(atomic_load(&g.left), 0); /* the blocker is still blocked */
    CHECK(cth_timer_is_alive(blocker));
    CHECK_OK(cth_lock_release(&g.gate));
    CHECK_OK(cth_timer_join(blocker, CTH_FOREVER));
    cth_timer_free(blocker);
    cth_timer_free(other);
}

/* Timers started one after another with the same interval fire in start
 * order: when each function runs, every timer started before it has fired
 * (its state is no longer pending). */
#define ORDER_N 200
static cth_timer_t *ordered[ORDER_N];
static atomic_int order_bad;

static void check_order(void *arg)
{
    long k = (long)(intptr_t)arg;
    for (long j = 0; j < k; j++)
        if (cth_timer_state(ordered[j]) == CTH_TIMER_PENDING)
            atomic_store(&order_bad, 1);
}

CTH_TEST(same_interval_fires_in_start_order)
{
    for (long k = 0; k < ORDER_N; k++)
        CHECK_OK(cth_timer_create(&ordered[k], 0.05, check_order, (void *)(intptr_t)k, NULL));
    for (long k = 0; k < ORDER_N; k++)
        CHECK_OK(cth_timer_start(ordered[k]));
    for (long k = 0; k < ORDER_N; k++)
        CHECK_OK(cth_timer_join(ordered[k], CTH_FOREVER));
    CHECK_EQ(atomic_load(&order_bad), 0);
    for (long k = 0; k < ORDER_N; k++)
        cth_timer_free(ordered[k]);
}

/* Timers due at the same instant start their functions in the order they
 * were started. Each function records its place in the sequence of calls.
 * With one CPU (the child below is pinned to one) one worker runs them, so
 * that sequence is the order of the starts exactly; with more, calls begin
 * in order but may then overlap (timer.h), which the sequence cannot show. */
#define SAME_N 2000
static atomic_int same_next;
static int same_order[SAME_N];

static void record_place(void *arg)
{
    same_order[atomic_fetch_add(&same_next, 1)] = (int)(intptr_t)arg;
}

CTH_CHILD(same_instant_one_cpu)
{
    cpu_set_t set;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &set))
        cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    CHECK(sched_setaffinity(0, sizeof set, &set) == 0);
    static cth_timer_t *t[SAME_N];
    for (int k = 0; k < SAME_N; k++)
        CHECK_OK(cth_timer_create(&t[k], 0.05, record_place, (void *)(intptr_t)k, &daemon_opts));
    for (int k = 0; k < SAME_N; k++)
        CHECK_OK(cth_timer_start(t[k]));
    for (int k = 0; k < SAME_N; k++)
        CHECK_OK(cth_timer_join(t[k], CTH_FOREVER));
    int out_of_order = 0;
    for (int k = 0; k < SAME_N; k++)
        out_of_order += same_order[k] != k;
    printf("%d out of order\n", out_of_order);
    for (int k = 0; k < SAME_N; k++)
        cth_timer_free(t[k]);
}

CTH_TEST(same_instant_starts_in_order)
{
    check_child_prints("same_instant_one_cpu", "0 out of order\n");
}

/* The threads of the process: /proc/self/task's entries. */
static int count_tasks(void)
{
    DIR *dir = opendir("/proc/self/task");
    CHECK(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

struct sampler {
    atomic_int stop;
    atomic_int max_tasks;
};

static void *sample_tasks(void *arg)
{
    struct sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        int n = count_tasks();
        if (n > atomic_load(&s->max_tasks))
            atomic_store(&s->max_tasks, n);
        cth_sleep(0.0005);
    }
    return NULL;
}

/* A burst of trivial timers (50,000 due within half a second, 100,000 a
 * second) is fired by about one worker per CPU: the process never has more
 * threads than main, the sampler, the service thread and the CPUs' workers,
 * plus one for a worker the watchdog may add while another is held up by
 * the machine. */
CTH_TEST(burst_runs_on_bounded_workers)
{
    if (access("/proc/self/task", R_OK) != 0)
        CHECK_SKIP("no /proc/self/task to count the threads");
    enum { N = 50000 };
    static cth_timer_t *t[N];
    struct counter c = {0};
    struct sampler s = {0};
    cth_thread_t *sampler;
    CHECK_OK(cth_thread_create(&sampler, sample_tasks, &s, NULL));
    CHECK_OK(cth_thread_start(sampler));
    for (int i = 0; i < N; i++) {
        CHECK_OK(cth_timer_create(&t[i], 0.5 * i / N, count_call, &c, &daemon_opts));
        CHECK_OK(cth_timer_start(t[i]));
    }
    for (int i = 0; i < N; i++) {
        CHECK_OK(cth_timer_join(t[i], CTH_FOREVER));
        cth_timer_free(t[i]);
    }
    atomic_store(&s.stop, 1);
    CHECK_OK(cth_thread_join(sampler, NULL, CTH_FOREVER));
    cth_thread_free(sampler);
    CHECK_EQ(atomic_load(&c.calls), N);
    int bound = 3 + cth__os_cpu_count() + 1;
    if (atomic_load(&s.max_tasks) > bound)
        fprintf(stderr, "%d threads, bound %d\n", atomic_load(&s.max_tasks), bound);
    CHECK(atomic_load(&s.max_tasks) <= bound);
}

/* A thread keeps the timers it frees for its next creations (timer.c's
 * cache, not kept under ASan, TSan or valgrind): they are freed when the
 * thread ends, not kept for the process's life. Counted with malloc's own
 * figures, every thread in one arena so that they count everything. */
enum { CACHED_TIMERS = 500 };
struct cache_fill {
    cth_event_t filled, go;
};

static void *fill_timer_cache(void *arg)
{
    struct cache_fill *f = arg;
    static cth_timer_t *t[CACHED_TIMERS];
    for (int i = 0; i < CACHED_TIMERS; i++)
        CHECK_OK(cth_timer_create(&t[i], 10, count_call, NULL, NULL));
    for (int i = 0; i < CACHED_TIMERS; i++)
        cth_timer_free(t[i]);
    CHECK_OK(cth_event_set(&f->filled));
    CHECK_OK(cth_event_wait(&f->go, CTH_FOREVER));
    return NULL;
}

static long malloc_in_use(void)
{
    return (long)mallinfo2().uordblks;
}

CTH_CHILD(timer_cache_goes_with_its_thread)
{
    CHECK(mallopt(M_ARENA_MAX, 1) == 1);
    struct cache_fill f = {CTH_EVENT_INIT, CTH_EVENT_INIT};
    cth_thread_t *th;
    CHECK_OK(cth_thread_create(&th, fill_timer_cache, &f, NULL));
    long base = malloc_in_use();
    CHECK_OK(cth_thread_start(th));
    CHECK_OK(cth_event_wait(&f.filled, CTH_FOREVER));
    long kept = malloc_in_use() - base; /* the thread's freed timers, cached */
    CHECK_OK(cth_event_set(&f.go));
    CHECK_OK(cth_thread_join(th, NULL, CTH_FOREVER));
    long left = malloc_in_use() - base;
    cth_thread_free(th);
    printf("%s\n", kept >= CACHED_TIMERS * 64L && left < kept / 4 ? "freed" : "kept");
    if (kept < CACHED_TIMERS * 64L || left >= kept / 4)
        printf("kept %ld bytes while the thread lived, %ld after\n", kept, left);
}

CTH_TEST(timer_cache_goes_with_its_thread)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    CHECK_SKIP("no cache under ASan; TSan's allocator has no mallinfo2");
#endif
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("no cache in valgrind builds");
    check_child_prints("timer_cache_goes_with_its_thread", "freed\n");
}

/* The voluntary context switches of the timer service's threads (the
 * service thread and the workers, "cth-timer..."), summed. */
static long timer_threads_switches(void)
{
    DIR *dir = opendir("/proc/self/task");
    CHECK(dir);
    long sum = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        char path[300], line[128];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* "." and "..", or it ended */
        bool ours = fgets(line, sizeof line, f) && strncmp(line, "cth-timer", 9) == 0;
        fclose(f);
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        if (!ours || !(f = fopen(path, "r")))
            continue;
        long v;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1) {
                sum += v;
                break;
            }
        fclose(f);
    }
    closedir(dir);
    return sum;
}

/* At a high rate of trivial firings (100,000 a second) a busy worker takes
 * the due timers itself: no thread of the service sleeps or waits for
 * another per timer. Between them they switch less than once in twenty
 * firings, plus the service thread's looks while the worker is busy (at
 * most one each KEEP_SLACK_NS, 250 us): about 800 in all here, where a
 * hand-over through the service thread for each timer cost 4,200-4,900. */
CTH_TEST(high_rate_needs_no_hand_over)
{
    if (access("/proc/self/task", R_OK) != 0)
        CHECK_SKIP("no /proc/self/task to read context switches from");
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("valgrind runs one thread at a time");
    enum { CHAINS = 1000 }; /* each every 10 ms */
    static cth_timer_t *t[CHAINS];
    struct counter c = {0};
    cth_timer_opts_t opts = {.period = 0.01, .daemon = CTH_DAEMON_YES};
    for (int i = 0; i < CHAINS; i++) {
        CHECK_OK(cth_timer_create(&t[i], 0.02 + 0.01 * i / CHAINS, count_call, &c, &opts));
        CHECK_OK(cth_timer_start(t[i]));
    }
    cth_sleep(0.1); /* under way */
    long switched = timer_threads_switches();
    int fired = atomic_load(&c.calls);
    double seconds = 0.3;
    cth_sleep(seconds);
    switched = timer_threads_switches() - switched;
    fired = atomic_load(&c.calls) - fired;
    for (int i = 0; i < CHAINS; i++)
        CHECK_OK(cth_timer_cancel(t[i]));
    for (int i = 0; i < CHAINS; i++) { /* no call is left to count on c */
        CHECK_OK(cth_timer_join(t[i], CTH_FOREVER));
        cth_timer_free(t[i]);
    }
    long bound = fired / 20 + (long)(seconds / 250e-6);
    if (switched > bound)
        fprintf(stderr, "%ld switches for %d firings, bound %ld\n", switched, fired, bound);
    CHECK(fired > 0);
    CHECK(switched <= bound);
}

/* Functions blocked in a cthreading wait (more of them than CPUs) and ones
 * blocked outside cthreading (nanosleep) do not keep a later timer from
 * firing: the service adds workers for them. */
static void nap(void *arg)
{
    struct gated *g = arg;
    atomic_fetch_add(&g->entered, 1);
    while (!atomic_load(&g->left)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

CTH_TEST(blocked_workers_are_replaced)
{
    int cpus = cth__os_cpu_count();
    enum { MAX = 64 };
    int n = cpus + 1 < MAX ? cpus + 1 : MAX;
    struct gated locked = {CTH_LOCK_INIT, 0, 0}, napping = {CTH_LOCK_INIT, 0, 0};
    CHECK_OK(cth_lock_acquire(&locked.gate, CTH_FOREVER));
    cth_timer_t *blockers[2 * MAX], *other;
    for (int i = 0; i < n; i++) {
        CHECK_OK(cth_timer_create(&blockers[i], 0, gated_call, &locked, &daemon_opts));
        CHECK_OK(cth_timer_create(&blockers[n + i], 0, nap, &napping, &daemon_opts));
        CHECK_OK(cth_timer_start(blockers[i]));
        CHECK_OK(cth_timer_start(blockers[n + i]));
    }
    wait_for(&locked.entered, n);
    wait_for(&napping.entered, n);
    struct counter c = {0};
    CHECK_OK(cth_timer_create(&other, 0.01, count_call, &c, &daemon_opts));
    CHECK_OK(cth_timer_start(other));
    CHECK_OK(cth_timer_join(other, 10));
    CHECK_EQ(atomic_load(&c.calls), 1);
    CHECK_OK(cth_lock_release(&locked.gate));
    atomic_store(&napping.left, 1);
    for (int i = 0; i < 2 * n; i++) {
        CHECK_OK(cth_timer_join(blockers[i], CTH_FOREVER));
        cth_timer_free(blockers[i]);
    }
    cth_timer_free(other);
}

static int count_listed_named(const char *prefix);

/* Inside a timer's function, the current thread is the timer (a Python
 * Timer is a Thread): its name and daemon flag; once the function has
 * returned, the worker is itself again and no longer listed. */
struct seen_thread {
    char name[32];
    int daemon;
};

static void look_at_self(void *arg)
{
    struct seen_thread *s = arg;
    cth_thread_t *me = cth_current_thread();
    cth_thread_get_name(me, s->name, sizeof s->name);
    s->daemon = cth_thread_daemon(me);
}

CTH_TEST(current_thread_is_the_timer)
{
    for (int daemon = 0; daemon <= 1; daemon++) {
        struct seen_thread named = {"", -1}, numbered = {"", -1};
        cth_timer_opts_t opts = {.name = "heartbeat",
                                 .daemon = daemon ? CTH_DAEMON_YES : CTH_DAEMON_NO};
        cth_timer_t *t, *u;
        CHECK_OK(cth_timer_create(&t, 0, look_at_self, &named, &opts));
        opts.name = NULL;
        CHECK_OK(cth_timer_create(&u, 0, look_at_self, &numbered, &opts));
        CHECK_OK(cth_timer_start(t));
        CHECK_OK(cth_timer_start(u));
        CHECK_OK(cth_timer_join(t, CTH_FOREVER));
        CHECK_OK(cth_timer_join(u, CTH_FOREVER));
        CHECK(strcmp(named.name, "heartbeat") == 0);
        CHECK_EQ(named.daemon, daemon);
        char want[32];
        cth_timer_get_name(u, want, sizeof want);
        CHECK(strcmp(numbered.name, want) == 0);
        CHECK_EQ(numbered.daemon, daemon);
        CHECK_EQ(count_listed_named("heartbeat"), 0);
        CHECK_EQ(count_listed_named("Timer-"), 0);
        cth_timer_free(t);
        cth_timer_free(u);
    }
}

/* A function that renames its thread (Python: a Timer renaming itself)
 * shows the new name until it returns; the next timer the same worker runs
 * has its own name again. */
static void rename_self(void *arg)
{
    struct seen_thread *s = arg;
    CHECK_OK(cth_thread_set_name(cth_current_thread(), "renamed-inside"));
    cth_thread_get_name(cth_current_thread(), s->name, sizeof s->name);
}

CTH_TEST(rename_inside_timer_function)
{
    struct seen_thread renamed = {"", -1}, after = {"", -1};
    cth_timer_opts_t opts = {.name = "before", .daemon = CTH_DAEMON_YES};
    cth_timer_t *t, *u;
    CHECK_OK(cth_timer_create(&t, 0, rename_self, &renamed, &opts));
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK(strcmp(renamed.name, "renamed-inside") == 0);
    opts.name = "next";
    CHECK_OK(cth_timer_create(&u, 0, look_at_self, &after, &opts));
    CHECK_OK(cth_timer_start(u));
    CHECK_OK(cth_timer_join(u, CTH_FOREVER));
    CHECK(strcmp(after.name, "next") == 0);
    CHECK_EQ(count_listed_named("renamed-inside"), 0);
    cth_timer_free(t);
    cth_timer_free(u);
}

/* The name of a worker running a timer's function is made when asked for:
 * other threads list it and read its name while timers come and go under
 * it (the sanitizers watch the worker's reuse of its record). The name read
 * is the timer's or, once the call has ended, the worker's own. One timer
 * runs until its name has been seen, so that it is. */
static atomic_int ticker_seen;

static void run_until_seen(void *arg)
{
    (void)arg;
    double give_up = check_now() + 30;
    while (!atomic_load(&ticker_seen) && check_now() < give_up)
        cth_sleep(0.001);
}

CTH_TEST(names_read_while_timers_fire)
{
    enum { N = 64 };
    cth_timer_t *t[N], *holder;
    cth_timer_opts_t opts = {.name = "ticker", .period = 0.0005, .daemon = CTH_DAEMON_YES};
    for (int i = 0; i < N; i++) {
        CHECK_OK(cth_timer_create(&t[i], 0.0005 * i / N, noop, NULL, &opts));
        CHECK_OK(cth_timer_start(t[i]));
    }
    opts.period = 0;
    CHECK_OK(cth_timer_create(&holder, 0, run_until_seen, NULL, &opts));
    CHECK_OK(cth_timer_start(holder));
    double until = check_now() + 0.2;
    while (check_now() < until || cth_timer_state(holder) != CTH_TIMER_FIRED) {
        cth_thread_t *all[16];
        size_t n = cth_enumerate(all, 16);
        for (size_t i = 0; i < n && i < 16; i++) {
            char name[32];
            cth_thread_get_name(all[i], name, sizeof name);
            if (strcmp(name, "ticker") == 0)
                atomic_store(&ticker_seen, 1);
            else
                CHECK(strcmp(name, "MainThread") == 0 || strcmp(name, "cth-timer-work") == 0 ||
                      strcmp(name, "cth-timers") == 0);
            cth_thread_free(all[i]);
        }
    }
    CHECK(atomic_load(&ticker_seen));
    for (int i = 0; i < N; i++) {
        cth_timer_cancel(t[i]);
        CHECK_OK(cth_timer_join(t[i], CTH_FOREVER));
        cth_timer_free(t[i]);
    }
    cth_timer_free(holder);
}

/* The heap grows without stopping the service: while a start is inside a
 * growth (the test holds it there, in the allocation of the new segment),
 * a periodic timer goes on firing, at every growth up to a million pending
 * timers. Only "it fired" is asserted: the hold ends after three calls of
 * the ticker, or fails the test after a long while without them. */
static _Thread_local bool grows_here;
static atomic_int ticker_calls, growths, growths_without_ticks;

static void ticker(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ticker_calls, 1);
}

static void hold_growth(void)
{
    if (!grows_here)
        return; /* the ticker's own rescheduling may grow the heap too */
    atomic_fetch_add(&growths, 1);
    int before = atomic_load(&ticker_calls);
    double give_up = check_now() + 30;
    while (atomic_load(&ticker_calls) < before + 3)
        if (check_now() > give_up) {
            atomic_fetch_add(&growths_without_ticks, 1);
            break;
        } else {
            cth_sleep(0.0005);
        }
}

CTH_TEST(heap_grows_while_timers_fire)
{
    long n = check_iters(1000000);
    cth_timer_t **t = calloc((size_t)n, sizeof *t), *tick;
    CHECK(t);
    cth_timer_opts_t periodic = {.period = 0.001, .daemon = CTH_DAEMON_YES};
    CHECK_OK(cth_timer_create(&tick, 0.001, ticker, NULL, &periodic));
    CHECK_OK(cth_timer_start(tick));
    grows_here = true;
    cth__timer_heap_grow_hook(hold_growth);
    for (long i = 0; i < n; i++) {
        CHECK_OK(cth_timer_create(&t[i], 3600, noop, NULL, &daemon_opts));
        CHECK_OK(cth_timer_start(t[i]));
    }
    cth__timer_heap_grow_hook(NULL);
    grows_here = false;
    CHECK(atomic_load(&growths) >= 3); /* 64 entries, then doubling */
    CHECK_EQ(atomic_load(&growths_without_ticks), 0);
    for (long i = 0; i < n; i++)
        cth_timer_free(t[i]); /* pending: cancelled */
    cth_timer_free(tick);
    free(t);
}

/* Many timers with random intervals (0-200 ms) all fire exactly once and
 * none early. */
struct rnd_timer {
    double due;
    atomic_int calls;
    atomic_int early;
};

static void rnd_call(void *arg)
{
    struct rnd_timer *r = arg;
    if (check_now() < r->due)
        atomic_store(&r->early, 1);
    atomic_fetch_add(&r->calls, 1);
}

CTH_TEST(many_random_timers_fire_once)
{
    long n = check_iters(100000);
    struct rnd_timer *r = calloc((size_t)n, sizeof *r);
    cth_timer_t **t = calloc((size_t)n, sizeof *t);
    CHECK(r && t);
    srand(12345);
    for (long i = 0; i < n; i++) {
        double iv = (rand() % 200001) / 1e6;
        CHECK_OK(cth_timer_create(&t[i], iv, rnd_call, &r[i], &daemon_opts));
        r[i].due = check_now() + iv;
        CHECK_OK(cth_timer_start(t[i]));
    }
    for (long i = 0; i < n; i++) {
        CHECK_OK(cth_timer_join(t[i], CTH_FOREVER));
        CHECK_EQ(atomic_load(&r[i].calls), 1);
        CHECK_EQ(atomic_load(&r[i].early), 0);
        cth_timer_free(t[i]);
    }
    free(r);
    free(t);
}

/* Freeing a pending timer cancels it: its function never runs. A witness
 * timer with the same interval, started after it, fires after it would
 * have (start order), so once the witness has run the check is due. */
CTH_TEST(free_pending_cancels)
{
    struct counter c = {0}, w = {0};
    cth_timer_t *t, *p, *witness;
    cth_timer_opts_t periodic = {.period = 0.01};
    CHECK_OK(cth_timer_create(&t, 0.5, count_call, &c, NULL));
    CHECK_OK(cth_timer_create(&p, 0.5, count_call, &c, &periodic));
    CHECK_OK(cth_timer_create(&witness, 0.5, count_call, &w, NULL));
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_start(p));
    CHECK_OK(cth_timer_start(witness));
    cth_timer_free(t);
    cth_timer_free(p);
    CHECK_OK(cth_timer_join(witness, CTH_FOREVER));
    CHECK_EQ(atomic_load(&w.calls), 1);
    cth_sleep(0.05);
    CHECK_EQ(atomic_load(&c.calls), 0);
    cth_timer_free(witness);
}

/* Freeing a running timer lets its call finish; the memory goes after. */
CTH_TEST(free_running_timer)
{
    struct gated g = {CTH_LOCK_INIT, 0, 0};
    CHECK_OK(cth_lock_acquire(&g.gate, CTH_FOREVER));
    cth_timer_t *t;
    CHECK_OK(cth_timer_create(&t, 0, gated_call, &g, NULL));
    CHECK_OK(cth_timer_start(t));
    wait_for(&g.entered, 1);
    cth_timer_free(t);
    CHECK_OK(cth_lock_release(&g.gate));
    wait_for(&g.left, 1);
}

/* The service thread's voluntary context switches, from /proc (it is the
 * library's own thread: cth_enumerate does not list it), or -1 until it has
 * named itself. */
static long try_service_switches(void)
{
    DIR *dir = opendir("/proc/self/task");
    CHECK(dir);
    long v = -1;
    for (struct dirent *e; v < 0 && (e = readdir(dir)) != NULL;) {
        char path[300], line[128];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* "." and ".." */
        bool service = fgets(line, sizeof line, f) && strcmp(line, "cth-timers\n") == 0;
        fclose(f);
        if (!service)
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        f = fopen(path, "r");
        CHECK(f);
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
                break;
        fclose(f);
    }
    closedir(dir);
    return v;
}

static long service_switches(void)
{
    long v;
    while ((v = try_service_switches()) < 0)
        cth_sleep(0.001);
    return v;
}

/* No wake-ups while nothing is due: starting (and cancelling) timers that
 * are not the earliest leaves the sleeping service thread alone; a new
 * earliest timer wakes it. */
CTH_TEST(no_wakeup_unless_earliest)
{
    enum { N = 1000 };
    static cth_timer_t *t[N];
    cth_timer_t *first, *soon;
    CHECK_OK(cth_timer_create(&first, 30, noop, NULL, &daemon_opts));
    CHECK_OK(cth_timer_start(first));
    long before = -1; /* wait until the service thread sleeps until `first` */
    for (long now = service_switches(); now != before; now = service_switches()) {
        before = now;
        cth_sleep(0.05);
    }
    for (int i = 0; i < N; i++) {
        CHECK_OK(cth_timer_create(&t[i], 31 + i * 0.01, noop, NULL, &daemon_opts));
        CHECK_OK(cth_timer_start(t[i]));
    }
    for (int i = 0; i < N; i += 2)
        CHECK_OK(cth_timer_cancel(t[i]));
    cth_sleep(0.05);
    CHECK_EQ(service_switches(), before);
    CHECK_OK(cth_timer_create(&soon, 0.01, noop, NULL, &daemon_opts));
    CHECK_OK(cth_timer_start(soon));
    CHECK_OK(cth_timer_join(soon, CTH_FOREVER));
    CHECK(service_switches() > before);
    for (int i = 0; i < N; i++)
        cth_timer_free(t[i]);
    cth_timer_free(first);
    cth_timer_free(soon);
}

/* Errors: NULL handles and functions, bad intervals and periods, start
 * twice, join before start, join timeout, join from its own function. As
 * Thread.join, the state is checked before the timeout
 * (ThreadingExceptionTests.test_joining_inactive_thread and
 * test_joining_current_thread). */
static atomic_int self_join_result, self_join_bad_timeout_result;
static void join_self(void *arg)
{
    CTH__UNUSED_ARG(arg);
    atomic_store(&self_join_result, cth_timer_join(cth_timer_current(), 0));
    atomic_store(&self_join_bad_timeout_result, cth_timer_join(cth_timer_current(), -5));
}

CTH_TEST(errors)
{
    cth_timer_t *t;
    CHECK_EQ(cth_timer_create(NULL, 1, noop, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, 1, NULL, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, -1, noop, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, -0.5, noop, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, NAN, noop, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, 1e300, noop, NULL, NULL), CTH_EOVERFLOW);
    cth_timer_opts_t bad = {.period = -1};
    CHECK_EQ(cth_timer_create(&t, 1, noop, NULL, &bad), CTH_EINVAL);
    bad.period = NAN;
    CHECK_EQ(cth_timer_create(&t, 1, noop, NULL, &bad), CTH_EINVAL);
    bad.period = 1e300;
    CHECK_EQ(cth_timer_create(&t, 1, noop, NULL, &bad), CTH_EOVERFLOW);
    bad = (cth_timer_opts_t){.daemon = (cth_daemon_t)7};
    CHECK_EQ(cth_timer_create(&t, 1, noop, NULL, &bad), CTH_EINVAL);

    CHECK_EQ(cth_timer_start(NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_cancel(NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_join(NULL, 1), CTH_EINVAL);
    CHECK(!cth_timer_is_alive(NULL));
    CHECK(!cth_timer_finished(NULL));
    CHECK_EQ(cth_timer_state(NULL), CTH_TIMER_INITIAL);
    CHECK(cth_timer_interval(NULL) == 0); /* queries answer NULL with 0 */
    CHECK(cth_timer_period(NULL) == 0);
    CHECK(cth_timer_function(NULL) == NULL);
    CHECK(cth_timer_arg(NULL) == NULL);
    CHECK(!cth_timer_daemon(NULL)); /* false, not CTH_EINVAL */
    CHECK_EQ(cth_timer_get_name(NULL, NULL, 0), 0);
    char empty[4] = "xyz";
    CHECK_EQ(cth_timer_get_name(NULL, empty, sizeof empty), 0);
    CHECK(empty[0] == '\0');
    CHECK(cth_timer_current() == NULL);
    cth_timer_free(NULL);

    CHECK_OK(cth_timer_create(&t, 30, noop, NULL, &daemon_opts));
    CHECK_EQ(cth_timer_join(t, 1), CTH_EPERM); /* join before start */
    CHECK_EQ(cth_timer_join(t, -5), CTH_EPERM);
    CHECK_EQ(cth_timer_join(t, NAN), CTH_EPERM);
    CHECK_OK(cth_timer_start(t));
    CHECK_EQ(cth_timer_start(t), CTH_EPERM); /* start twice */
    CHECK_EQ(cth_timer_join(t, -2), CTH_EINVAL);
    CHECK_EQ(cth_timer_join(t, NAN), CTH_EINVAL);
    CHECK_EQ(cth_timer_join(t, 1e300), CTH_EOVERFLOW);
    double start = check_now();
    CHECK_EQ(cth_timer_join(t, 0.05), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.05);
    CHECK_EQ(cth_timer_join(t, 0), CTH_ETIMEDOUT);
    CHECK_OK(cth_timer_cancel(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK_EQ(cth_timer_start(t), CTH_EPERM); /* start after the end */
    cth_timer_free(t);

    CHECK_OK(cth_timer_create(&t, 0, join_self, NULL, NULL));
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK_EQ(atomic_load(&self_join_result), CTH_EDEADLK);
    CHECK_EQ(atomic_load(&self_join_bad_timeout_result), CTH_EDEADLK);
    cth_timer_free(t);
}

/* Out of memory: creation fails cleanly; a start that cannot set up the
 * service or grow the heap fails with CTH_ENOMEM and leaves the timer
 * unstarted, so a later start works. */
CTH_TEST(out_of_memory)
{
    cth_timer_t *t;
    cth_timer_opts_t named = {.name = "named"};
    cth__fault_alloc_after(0);
    CHECK_EQ(cth_timer_create(&t, 0, noop, NULL, NULL), CTH_ENOMEM);
    cth__fault_alloc_after(1); /* the timer, not its name */
    CHECK_EQ(cth_timer_create(&t, 0, noop, NULL, &named), CTH_ENOMEM);
    cth__fault_alloc_after(-1);

    CHECK_OK(cth_timer_create(&t, 0, noop, NULL, NULL));
    cth__fault_alloc_after(0); /* the first start sets up the service */
    CHECK_EQ(cth_timer_start(t), CTH_ENOMEM);
    cth__fault_alloc_after(-1);
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_INITIAL);
    CHECK(!cth_timer_is_alive(t));
    CHECK_OK(cth_timer_start(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    cth_timer_free(t);

    enum { FULL = 65 }; /* the heap's first block */
    static cth_timer_t *many[FULL];
    for (int i = 0; i < FULL; i++) {
        CHECK_OK(cth_timer_create(&many[i], 30, noop, NULL, &daemon_opts));
        CHECK_OK(cth_timer_start(many[i]));
    }
    CHECK_OK(cth_timer_create(&t, 30, noop, NULL, &daemon_opts));
    cth__fault_alloc_after(0);
    CHECK_EQ(cth_timer_start(t), CTH_ENOMEM);
    cth__fault_alloc_after(-1);
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_INITIAL);
    CHECK_OK(cth_timer_start(t));
    CHECK_EQ(cth_timer_state(t), CTH_TIMER_PENDING);
    cth_timer_free(t);
    for (int i = 0; i < FULL; i++)
        cth_timer_free(many[i]);
}

/* The attributes: interval, function, args, name, daemon (Timer is a
 * Thread: daemon inherited from the creator unless set). */
static cth_timer_t *seen_current;
static void record_current(void *arg)
{
    CTH__UNUSED_ARG(arg);
    seen_current = cth_timer_current();
}

/* The 0.1.0 signatures, checked at compile time. */
_Static_assert(_Generic(&cth_timer_daemon, bool (*)(const cth_timer_t *) : 1, default : 0),
               "bool cth_timer_daemon(const cth_timer_t *)");
_Static_assert(_Generic(&cth_timer_get_name, size_t (*)(const cth_timer_t *, char *, size_t) : 1,
                        default : 0),
               "size_t cth_timer_get_name(const cth_timer_t *, char *, size_t)");
_Static_assert(_Generic(&cth_timer_create,
                        int (*)(cth_timer_t **, double, cth_timer_fn, void *,
                                const cth_timer_opts_t *) : 1,
                        default : 0),
               "cth_timer_create(&timer, interval, fn, arg, opts)");

CTH_TEST(attributes)
{
    int x;
    cth_timer_t *t, *u;
    CHECK_OK(cth_timer_create(&t, 0.25, record_current, &x, NULL));
    CHECK(cth_timer_interval(t) == 0.25);
    CHECK(cth_timer_period(t) == 0);
    CHECK(cth_timer_function(t) == record_current);
    CHECK(cth_timer_arg(t) == &x);
    CHECK(cth_timer_daemon(t) == false); /* the main thread is not a daemon */
    char buf[32];
    size_t len = cth_timer_get_name(t, buf, sizeof buf);
    CHECK(len > 6 && strncmp(buf, "Timer-", 6) == 0);
    CHECK_EQ(cth_timer_get_name(t, NULL, 0), len);
    CHECK_EQ(cth_timer_get_name(t, NULL, sizeof buf), len); /* NULL buf: size 0 */
    cth_timer_opts_t opts = {.name = "my-timer", .daemon = CTH_DAEMON_YES};
    CHECK_OK(cth_timer_create(&u, 0, record_current, NULL, &opts));
    CHECK_EQ(cth_timer_get_name(u, buf, 4), 8);
    CHECK(strcmp(buf, "my-") == 0);
    CHECK(cth_timer_daemon(u) == true);
    CHECK_OK(cth_timer_start(u));
    CHECK_OK(cth_timer_join(u, CTH_FOREVER));
    CHECK(seen_current == u);
    cth_timer_free(t);
    cth_timer_free(u);
}

/* enumerate() lists the alive Threads (docs/python-semantics.md), and a Python
 * Timer is one only from its start until its function returns: the timer
 * service's own threads are never listed, the worker running a timer's
 * function is listed meanwhile (as the Timer's thread), and once the timer
 * has fired and been joined the count is what it was (test_threading's
 * test_enumerate_after_join, and the thread count its threading_helper
 * checks around each test). What the function creates inherits the timer's
 * daemon flag, as from the Timer's thread (1.2, 1.5). */
struct look {
    int count, listed, thread_daemon, timer_daemon;
};

static void look_around(void *arg)
{
    struct look *l = arg;
    cth_thread_t *me = cth_current_thread(), *all[64];
    size_t n = cth_enumerate(all, 64);
    CHECK(n > 0 && n <= 64);
    l->count = (int)n;
    for (size_t i = 0; i < n; i++)
        l->listed += all[i] == me;
    cth_threads_free(all, n);
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, NULL, NULL, NULL));
    l->thread_daemon = cth_thread_daemon(t);
    cth_thread_free(t);
    cth_timer_t *tm;
    CHECK_OK(cth_timer_create(&tm, 1, noop, NULL, NULL));
    l->timer_daemon = cth_timer_daemon(tm);
    cth_timer_free(tm);
}

static int count_listed_named(const char *prefix)
{
    cth_thread_t *all[64];
    size_t n = cth_enumerate(all, 64);
    int found = 0;
    CHECK(n > 0 && n <= 64);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        cth_thread_get_name(all[i], name, sizeof name);
        found += strncmp(name, prefix, strlen(prefix)) == 0;
    }
    cth_threads_free(all, n);
    return found;
}

CTH_TEST(enumerate_and_inheritance)
{
    CHECK_EQ(cth_active_count(), 1);
    for (int daemon = 0; daemon <= 1; daemon++) {
        struct look l = {0};
        cth_timer_opts_t opts = {.daemon = daemon ? CTH_DAEMON_YES : CTH_DAEMON_NO};
        cth_timer_t *t;
        CHECK_OK(cth_timer_create(&t, 0, look_around, &l, &opts));
        CHECK_OK(cth_timer_start(t));
        CHECK_OK(cth_timer_join(t, CTH_FOREVER));
        CHECK_EQ(l.count, 2); /* main and the timer's thread */
        CHECK_EQ(l.listed, 1);
        CHECK_EQ(l.thread_daemon, daemon);
        CHECK_EQ(l.timer_daemon, daemon);
        CHECK_EQ(cth_active_count(), 1);
        cth_timer_free(t);
    }
    cth_timer_t *pending;
    CHECK_OK(cth_timer_create(&pending, 30, noop, NULL, &daemon_opts));
    CHECK_OK(cth_timer_start(pending));
    CHECK_EQ(cth_active_count(), 1); /* the service thread and idle workers live on */
    CHECK_EQ(count_listed_named("cth-"), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    CHECK_OK(cth_dump_threads(f));
    fclose(f);
    CHECK(strstr(buf, "\n1 thread\n") != NULL); /* main only */
    CHECK(strstr(buf, "cth-") == NULL);
    free(buf);
    cth_timer_free(pending);
}

/* A Python Timer's thread ends with its function (1.5): the thread-local
 * values the function set are destroyed when it returns, and the next
 * timer's function (here on the same worker) starts without them
 * (test_threading_local's test_local_refs, for timers). */
static atomic_int timer_locals_destroyed;
static void count_timer_local(void *value)
{
    CTH__UNUSED_ARG(value);
    atomic_fetch_add(&timer_locals_destroyed, 1);
}

static void use_local(void *arg)
{
    CHECK(cth_local_get(arg) == NULL);
    CHECK_OK(cth_local_set(arg, &timer_locals_destroyed));
}

CTH_TEST(timer_locals_end_with_the_function)
{
    cth_local_t *local;
    CHECK_OK(cth_local_create(&local, &(cth_local_opts_t){.free_item = count_timer_local}));
    for (int i = 1; i <= 3; i++) {
        cth_timer_t *t;
        CHECK_OK(cth_timer_create(&t, 0, use_local, local, NULL));
        CHECK_OK(cth_timer_start(t));
        CHECK_OK(cth_timer_join(t, CTH_FOREVER));
        CHECK_EQ(atomic_load(&timer_locals_destroyed), i);
        cth_timer_free(t);
    }
    cth_local_free(local);
}

/* A join in the main thread wakes with CTH_EINTR on cth_interrupt_main
 * (a SIGINT handler installed), here sent by another timer's function. */
static volatile sig_atomic_t got_sigint;
static void on_sigint(int sig)
{
    CTH__UNUSED_ARG(sig);
    got_sigint = 1;
}

static void interrupt(void *arg)
{
    CTH__UNUSED_ARG(arg);
    CHECK_OK(cth_interrupt_main(SIGINT));
}

CTH_TEST(join_interrupted_in_main_thread)
{
    signal(SIGINT, on_sigint);
    cth_timer_t *longer, *irq;
    CHECK_OK(cth_timer_create(&longer, 30, noop, NULL, &daemon_opts));
    CHECK_OK(cth_timer_create(&irq, 0.05, interrupt, NULL, NULL));
    CHECK_OK(cth_timer_start(longer));
    CHECK_OK(cth_timer_start(irq));
    double start = check_now();
    CHECK_EQ(cth_timer_join(longer, CTH_FOREVER), CTH_EINTR);
    CHECK_WAITED_AT_LEAST(start, 0.05);
    while (!got_sigint) { /* the handler may run just after the wait returned */
        CHECK(check_now() - start < 10);
        cth_sleep(0.001);
    }
    CHECK(cth_timer_is_alive(longer));
    CHECK_OK(cth_timer_join(irq, CTH_FOREVER));
    cth_timer_free(longer);
    cth_timer_free(irq);
}

/* In a fork child, the timers pending at the fork end cancelled (their
 * service is gone, as a Python child's Timer threads are) and new timers
 * work (a new service starts). */
CTH_TEST(fork_child)
{
    struct counter c = {0};
    cth_timer_t *pending, *fresh;
    CHECK_OK(cth_timer_create(&pending, 30, count_call, &c, &daemon_opts));
    CHECK_OK(cth_timer_start(pending));
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int ok = cth_timer_state(pending) == CTH_TIMER_CANCELLED &&
                 cth_timer_join(pending, 0) == 0 && cth_timer_finished(pending);
#if !defined(__SANITIZE_THREAD__) &&                                                               \
    !defined(                                                                                      \
        __SANITIZE_ADDRESS__) /* their runtimes cannot start threads after a threaded fork (see test_thread.c) */
        ok = ok && cth_timer_create(&fresh, 0.01, count_call, &c, NULL) == 0 &&
             cth_timer_start(fresh) == 0 && cth_timer_join(fresh, 10) == 0 &&
             atomic_load(&c.calls) == 1;
#else
        (void)fresh;
#endif
        _exit(ok ? 0 : 1);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(cth_timer_state(pending), CTH_TIMER_PENDING); /* the parent's is untouched */
    cth_timer_free(pending);
}

/* A timer's function that forks: the child goes on in that function (the
 * timer is still current there), its worker's record survives, and the
 * child can create and fire new timers; when the function returns there,
 * its worker ends. The parent's timer fires as usual. */
struct forker {
    cth_timer_t *self;
    pid_t pid;
};

static atomic_int child_ok;
static cth_timer_t *forking_timer;

/* The child's end, once the forking function has returned and its worker
 * has ended: from a timer (with threads), or from exit() when the thread
 * that forked, the child's last, ends (a handler before LeakSanitizer's,
 * which would report what the parent's threads held). */
static void end_child(void)
{
    _exit(atomic_load(&child_ok) && cth_timer_state(forking_timer) == CTH_TIMER_FIRED &&
                  cth_shutdown(10) == 0
              ? 0
              : 1);
}

#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__) /* no threads after fork */
static void end_child_timer(void *arg)
{
    CTH__UNUSED_ARG(arg);
    end_child();
}
#endif

static void fork_from_function(void *arg)
{
    struct forker *f = arg;
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0) {
        f->pid = pid;
        return;
    }
    char name[32];
    cth_thread_get_name(cth_current_thread(), name, sizeof name);
    int ok = cth_timer_current() == f->self && strcmp(name, "forker") == 0;
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__) /* no threads after fork */
    struct counter c = {0};
    cth_timer_t *fresh, *ender;
    ok = ok && cth_timer_create(&fresh, 0.01, count_call, &c, NULL) == 0 &&
         cth_timer_start(fresh) == 0 && cth_timer_join(fresh, 10) == 0 &&
         atomic_load(&c.calls) == 1;
    ok = ok && cth_timer_create(&ender, 0.1, end_child_timer, NULL, &daemon_opts) == 0 &&
         cth_timer_start(ender) == 0;
#endif
    atomic_store(&child_ok, ok);
    atexit(end_child);
#ifdef __SANITIZE_THREAD__
    _exit(ok ? 0 : 1); /* TSan's runtime fails when the thread that forked ends */
#endif
    if (!ok)
        _exit(1);
    /* Return: the worker finishes this call in the child, then ends (with
     * sanitizers it is the last thread: the child exits with status 0). */
}

CTH_TEST(fork_in_function)
{
    struct forker f = {0};
    cth_timer_opts_t opts = {.name = "forker"};
    CHECK_OK(cth_timer_create(&f.self, 0, fork_from_function, &f, &opts));
    forking_timer = f.self;
    CHECK_OK(cth_timer_start(f.self));
    CHECK_OK(cth_timer_join(f.self, CTH_FOREVER));
    CHECK(f.pid > 0);
    int status;
    CHECK(waitpid(f.pid, &status, 0) == f.pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(cth_timer_state(f.self), CTH_TIMER_FIRED);
    cth_timer_free(f.self);
}

/* Shutdown with pending timers: the non-daemon one-shot timer delays it
 * until it has fired (Python's exit rule); then the daemon and periodic
 * timers still pending are cancelled, their state says so, their joiners
 * return, and new starts are refused. */
static void say_fired(void *arg)
{
    printf("fired %s\n", (const char *)arg);
    fflush(stdout);
}

CTH_CHILD(shutdown_cancels_pending)
{
    cth_timer_t *nd, *d, *p, *late;
    cth_timer_opts_t periodic = {.period = 0.01, .daemon = CTH_DAEMON_NO};
    CHECK_OK(cth_timer_create(&nd, 0.1, say_fired, "non-daemon", NULL));
    CHECK_OK(cth_timer_create(&d, 30, say_fired, "daemon", &daemon_opts));
    CHECK_OK(cth_timer_create(&p, 30, say_fired, "periodic", &periodic));
    CHECK_OK(cth_timer_create(&late, 0, say_fired, "late", NULL));
    CHECK_OK(cth_timer_start(nd));
    CHECK_OK(cth_timer_start(d));
    CHECK_OK(cth_timer_start(p));
    CHECK_OK(cth_shutdown(CTH_FOREVER));
    CHECK_EQ(cth_timer_state(nd), CTH_TIMER_FIRED);
    CHECK_EQ(cth_timer_state(d), CTH_TIMER_CANCELLED);
    CHECK_EQ(cth_timer_state(p), CTH_TIMER_CANCELLED);
    CHECK(cth_timer_finished(d) && cth_timer_finished(p));
    CHECK_OK(cth_timer_join(d, 0));
    CHECK_OK(cth_timer_join(p, 0));
    CHECK_EQ(cth_timer_start(late), CTH_ESHUTDOWN);
    cth_timer_free(nd);
    cth_timer_free(d);
    cth_timer_free(p);
    cth_timer_free(late);
    printf("ok\n");
}

CTH_TEST(shutdown_cancels_pending)
{
    check_child_prints("shutdown_cancels_pending", "fired non-daemon\nok\n");
}

/* An interrupted shutdown (Ctrl-C while it waits for a non-daemon timer an
 * hour away) returns CTH_EINTR and leaves the timer pending, as it leaves a
 * non-daemon thread running (the timer counts as one); once the timer is
 * cancelled, shutdown completes. */
CTH_CHILD(shutdown_interrupted)
{
    signal(SIGINT, on_sigint);
    cth_timer_t *nd, *irq;
    CHECK_OK(cth_timer_create(&nd, 3600, say_fired, "non-daemon", NULL));
    CHECK_OK(cth_timer_create(&irq, 0.1, interrupt, NULL, &daemon_opts));
    CHECK_OK(cth_timer_start(nd));
    CHECK_OK(cth_timer_start(irq));
    CHECK_EQ(cth_shutdown(CTH_FOREVER), CTH_EINTR);
    CHECK_EQ(cth_timer_state(nd), CTH_TIMER_PENDING);
    CHECK_OK(cth_timer_cancel(nd));
    CHECK_OK(cth_shutdown(CTH_FOREVER));
    CHECK_EQ(cth_timer_state(nd), CTH_TIMER_CANCELLED);
    CHECK(cth_timer_finished(nd));
    cth_timer_free(nd);
    cth_timer_free(irq);
    printf("ok\n");
}

CTH_TEST(shutdown_interrupted)
{
    check_child_prints("shutdown_interrupted", "ok\n");
}

/* Returning from main with pending timers: the non-daemon one fires first,
 * the daemon one (an hour away) is cancelled: the exit does not wait for it
 * (the test's timeout would catch that). */
static cth_timer_t *kept[2]; /* kept by the program to its end */
CTH_CHILD(return_from_main_with_pending)
{
    CHECK_OK(cth_timer_create(&kept[0], 0.1, say_fired, "non-daemon", NULL));
    CHECK_OK(cth_timer_create(&kept[1], 3600, say_fired, "daemon", &daemon_opts));
    CHECK_OK(cth_timer_start(kept[0]));
    CHECK_OK(cth_timer_start(kept[1]));
}

CTH_TEST(return_from_main_with_pending)
{
    double start = check_now();
    /* the daemon one: cancelled, no hour's wait */
    check_child_prints("return_from_main_with_pending", "fired non-daemon\n");
    CHECK_WAITED_AT_LEAST(start, 0.1);
}
