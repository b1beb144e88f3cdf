/* SPDX-License-Identifier: MIT */
/*
 * bench_timers.c - the timer service against its peers, in one run.
 *
 * 1. schedule+cancel cost per timer with 1,000 and 1,000,000 other timers
 *    pending (their delays uniform in 1 ms .. 1 h): each measurement
 *    schedules OPS timers with such delays in batches of min(pending,
 *    50,000), cancelling 90% of each batch in random order (the 10% left are
 *    cancelled after the clock stops, so the pending count stays put and at
 *    most doubles during a batch). Systems: cthreading (create+start, then
 *    cancel+free; thread-safe, a lock per call), libuv uv_timer_t
 *    (uv_timer_init+start, then stop; single-threaded, caller-allocated: the
 *    O(log n) reference) and POSIX timer_create+settime / timer_delete
 *    (kernel timers: it runs out near 100,000, and how far it got is
 *    printed). Memory per pending timer: malloc's bytes in use per timer for
 *    cthreading, sizeof(uv_timer_t) for libuv (it allocates nothing).
 * 2. Firing lateness (median, p99, max) of 10,000 timers spread over 2 s
 *    (run first).
 * 3. Sustained firing of trivial functions at 10k, 100k and 1M per second
 *    for 2 s, cthreading beside libuv's loop: achieved rate, lateness p50,
 *    p99, max and the peak thread count (sustained_firing).
 * 4. start+cancel+join of 1,000 timers: cthreading vs Python's
 *    threading.Timer (a thread each), the model.
 * 5. The cost of exiting with 1,000,000 daemon timers pending (exit_cost):
 *    a forked child schedules them, notes the time and calls exit(); the
 *    parent reads the time once it has reaped the child. Beside it, the
 *    same child freeing every timer before exit, and a child with nothing
 *    pending (the process's own teardown).
 */
#include "bench.h" /* first: it sets _GNU_SOURCE */

#include <dirent.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#include <cthreading.h>

#define OPS 50000 /* timers scheduled per measurement, in batches */
#define LATENESS_N 10000
#define PY_N 1000

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A delay uniform in 1 ms .. 1 h, in seconds. */
static double spread_delay(void)
{
    return 0.001 + (double)(xorshift() % 3599999000ull) / 1e6;
}

/* A random permutation of 0..batch-1: its first 90% are cancelled. */
static unsigned order[OPS];
static unsigned batch = OPS;
static void shuffle(void)
{
    for (unsigned i = 0; i < batch; i++)
        order[i] = i;
    for (unsigned i = batch - 1; i > 0; i--) {
        unsigned j = (unsigned)(xorshift() % (i + 1));
        unsigned t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void noop(void *arg)
{
    (void)arg;
}

/* ---- cthreading ------------------------------------------------------------------------------ */

struct cth_ctx {
    long pending;
    cth_timer_t **background;
    cth_timer_t *ops[OPS];
    double bytes_per_timer;
};

static void cth_setup(struct cth_ctx *c)
{
    static const cth_timer_opts_t opts = {.daemon = CTH_DAEMON_YES};
    c->background = malloc((size_t)c->pending * sizeof *c->background);
    /* warm the service (its thread, the heap's first block) before measuring */
    cth_timer_t *w;
    cth_timer_create(&w, 3600, noop, NULL, &opts);
    cth_timer_start(w);
    size_t before = heap_in_use();
    for (long i = 0; i < c->pending; i++) {
        cth_timer_create(&c->background[i], spread_delay(), noop, NULL, &opts);
        cth_timer_start(c->background[i]);
    }
    c->bytes_per_timer = (double)(heap_in_use() - before) / (double)c->pending;
    cth_timer_free(w);
}

static void cth_teardown(struct cth_ctx *c)
{
    for (long i = 0; i < c->pending; i++)
        cth_timer_free(c->background[i]);
    free(c->background);
}

static double run_cth(void *ctx)
{
    struct cth_ctx *c = ctx;
    static const cth_timer_opts_t opts = {.daemon = CTH_DAEMON_YES};
    double dt = 0;
    for (unsigned round = 0; round < OPS / batch; round++) {
        shuffle();
        double t0 = bench_now();
        for (unsigned i = 0; i < batch; i++) {
            cth_timer_create(&c->ops[i], spread_delay(), noop, NULL, &opts);
            cth_timer_start(c->ops[i]);
        }
        for (unsigned i = 0; i < batch * 9 / 10; i++) {
            cth_timer_cancel(c->ops[order[i]]);
            cth_timer_free(c->ops[order[i]]);
        }
        dt += bench_now() - t0;
        for (unsigned i = batch * 9 / 10; i < batch; i++)
            cth_timer_free(c->ops[order[i]]);
    }
    return dt / OPS * 1e9;
}

/* ---- libuv ----------------------------------------------------------------------------------- */

#ifdef HAVE_LIBUV
struct uv_ctx {
    long pending;
    uv_loop_t loop;
    uv_timer_t *background;
    uv_timer_t ops[OPS];
};

static void uv_noop(uv_timer_t *t)
{
    (void)t;
}

static void uv_setup(struct uv_ctx *c)
{
    uv_loop_init(&c->loop);
    c->background = malloc((size_t)c->pending * sizeof *c->background);
    for (long i = 0; i < c->pending; i++) {
        uv_timer_init(&c->loop, &c->background[i]);
        uv_timer_start(&c->background[i], uv_noop, (uint64_t)(spread_delay() * 1000), 0);
    }
}

static void on_uv_close(uv_handle_t *h)
{
    (void)h;
}

static void uv_teardown(struct uv_ctx *c)
{
    for (long i = 0; i < c->pending; i++)
        uv_close((uv_handle_t *)&c->background[i], on_uv_close);
    for (unsigned i = 0; i < batch; i++) /* the handles the last batch set up */
        uv_close((uv_handle_t *)&c->ops[i], on_uv_close);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    uv_loop_close(&c->loop);
    free(c->background);
}

static double run_uv(void *ctx)
{
    struct uv_ctx *c = ctx;
    double dt = 0;
    for (unsigned round = 0; round < OPS / batch; round++) {
        shuffle();
        double t0 = bench_now();
        for (unsigned i = 0; i < batch; i++) {
            uv_timer_init(&c->loop, &c->ops[i]);
            uv_timer_start(&c->ops[i], uv_noop, (uint64_t)(spread_delay() * 1000), 0);
        }
        for (unsigned i = 0; i < batch * 9 / 10; i++)
            uv_timer_stop(&c->ops[order[i]]);
        dt += bench_now() - t0;
        for (unsigned i = batch * 9 / 10; i < batch; i++)
            uv_timer_stop(&c->ops[order[i]]);
    }
    return dt / OPS * 1e9;
}
#endif

/* ---- POSIX timer_create ---------------------------------------------------------------------- */

struct posix_ctx {
    long pending, got; /* asked for, created */
    timer_t *background;
    timer_t ops[OPS];
};

static int posix_arm(timer_t *t)
{
    struct sigevent sev = {.sigev_notify = SIGEV_NONE};
    if (timer_create(CLOCK_MONOTONIC, &sev, t) != 0)
        return -1;
    double d = spread_delay();
    struct itimerspec its = {.it_value = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)}};
    timer_settime(*t, 0, &its, NULL);
    return 0;
}

static void posix_setup(struct posix_ctx *c)
{
    c->background = malloc((size_t)c->pending * sizeof *c->background);
    for (c->got = 0; c->got < c->pending; c->got++)
        if (posix_arm(&c->background[c->got]) != 0)
            break;
}

static void posix_teardown(struct posix_ctx *c)
{
    for (long i = 0; i < c->got; i++)
        timer_delete(c->background[i]);
    free(c->background);
}

static double run_posix(void *ctx)
{
    struct posix_ctx *c = ctx;
    if (c->got < c->pending)
        return NAN; /* could not even hold the background timers */
    double dt = 0;
    for (unsigned round = 0; round < OPS / batch; round++) {
        shuffle();
        unsigned made = 0;
        double t0 = bench_now();
        for (; made < batch; made++)
            if (posix_arm(&c->ops[made]) != 0)
                break;
        for (unsigned i = 0; i < batch * 9 / 10; i++)
            if (order[i] < made)
                timer_delete(c->ops[order[i]]);
        dt += bench_now() - t0;
        for (unsigned i = batch * 9 / 10; i < batch; i++)
            if (order[i] < made)
                timer_delete(c->ops[order[i]]);
        if (made < batch)
            return NAN;
    }
    return dt / OPS * 1e9;
}

static void schedule_cancel(long pending, int reps)
{
    char name[64];
    snprintf(name, sizeof name, "schedule+cancel, %ld pending", pending);
    batch = pending < OPS ? (unsigned)pending : OPS;
    static struct cth_ctx cc;
    cc.pending = pending;
    cth_setup(&cc);
    static struct posix_ctx pc;
    pc.pending = pending;
    posix_setup(&pc);
#ifdef HAVE_LIBUV
    static struct uv_ctx uc;
    uc.pending = pending;
    uv_setup(&uc);
#endif
    struct bench_system sys[] = {
#ifdef HAVE_LIBUV
        {"libuv uv_timer_t (1 thread)", run_uv, &uc},
#else
        {"libuv uv_timer_t (1 thread)", NULL, NULL},
#endif
        {"cthreading", run_cth, &cc},
        {"POSIX timer_create", run_posix, &pc},
    };
#ifndef HAVE_LIBUV
    sys[0] = sys[1];
#endif
    bench_compare(name, "latency", "ns", sys, 3, reps, NULL);
    printf("  %-34s cthreading %.0f bytes per pending timer (heap + timer); libuv %zu "
           "(sizeof uv_timer_t)\n",
           "", cc.bytes_per_timer,
#ifdef HAVE_LIBUV
           sizeof(uv_timer_t)
#else
           (size_t)0
#endif
    );
    bench_record(name, "cthreading", "memory", cc.bytes_per_timer, "bytes", NAN);
    if (pc.got < pending)
        printf("  %-34s POSIX timer_create stopped at %ld timers (of %ld)\n", "", pc.got, pending);
    cth_teardown(&cc);
    posix_teardown(&pc);
#ifdef HAVE_LIBUV
    uv_teardown(&uc);
#endif
}

/* ---- lateness ------------------------------------------------------------------------------- */

struct late {
    double due;
    double late;
    atomic_int *left;
};

static void record_late(void *arg)
{
    struct late *l = arg;
    l->late = bench_now() - l->due;
    atomic_fetch_sub(l->left, 1);
}

static void lateness(void)
{
    static struct late l[LATENESS_N];
    static cth_timer_t *t[LATENESS_N];
    static double v[LATENESS_N];
    atomic_int left = LATENESS_N;
    for (int i = 0; i < LATENESS_N; i++) {
        double d = (double)(xorshift() % 2000000) / 1e6;
        l[i].left = &left;
        cth_timer_create(&t[i], d, record_late, &l[i], NULL);
        l[i].due = bench_now() + d;
        cth_timer_start(t[i]);
    }
    for (int i = 0; i < LATENESS_N; i++) {
        cth_timer_join(t[i], CTH_FOREVER);
        cth_timer_free(t[i]);
        v[i] = l[i].late * 1e6;
    }
    double med = bench_percentile(v, LATENESS_N, 50), p99 = bench_percentile(v, LATENESS_N, 99),
           max = bench_percentile(v, LATENESS_N, 100);
    printf("  %-34s %-28s median %.0f us, p99 %.0f us, max %.0f us\n",
           "firing lateness, 10k over 2 s", "cthreading", med, p99, max);
    bench_record("firing lateness", "cthreading", "median", med, "us", NAN);
    bench_record("firing lateness", "cthreading", "p99", p99, "us", NAN);
    bench_record("firing lateness", "cthreading", "max", max, "us", NAN);
}

/* ---- sustained firing ------------------------------------------------------------------------ */

/* RATE timers per second fire for FIRE_SECONDS: RATE * FIRE_PERIOD chains,
 * each firing every FIRE_PERIOD, their first calls spread evenly over one
 * period, so that the calls come at an even RATE. cthreading: periodic
 * timers (the schedule is exact: previous deadline + period). libuv: each
 * callback re-arms its uv_timer_t for the chain's next due time (libuv's
 * timeouts are whole milliseconds of its loop clock, so it fires up to 1 ms
 * after a due time that is not on a millisecond). Every call records its
 * lateness (now - its due time); a sampler thread polls /proc/self/task
 * every millisecond for the peak count of the system's threads (cthreading:
 * the service thread and the workers, named "cth-..."; libuv: the others
 * but the sampler, which is its loop's, main). */
#define FIRE_PERIOD 0.01
#define FIRE_SECONDS 2.0
#define FIRE_LEAD 0.2 /* the first calls come this long after the setup */

static float *fire_late; /* microseconds, one per call */
static atomic_long fire_calls;
static long fire_cap;
static double fire_stop; /* calls due after this are not counted */

struct chain {
    double due; /* this call's due time (bench_now() clock) */
#ifdef HAVE_LIBUV
    uv_timer_t uv;
#endif
};

static void fire_record(struct chain *c, double now)
{
    long i = atomic_fetch_add_explicit(&fire_calls, 1, memory_order_relaxed);
    if (i < fire_cap)
        fire_late[i] = (float)((now - c->due) * 1e6);
}

static void cth_chain(void *arg)
{
    struct chain *c = arg;
    double now = bench_now();
    if (c->due <= fire_stop)
        fire_record(c, now);
    /* The service's next deadline: the previous plus the period, past the
     * periods a late call overran (timer_service.c, next_deadline). */
    c->due += FIRE_PERIOD;
    if (now - c->due >= FIRE_PERIOD)
        c->due += (double)(long)((now - c->due) / FIRE_PERIOD) * FIRE_PERIOD;
}

/* The threads of the process whose name starts with `prefix` (or, with
 * `other`, does not, nor is the sampler's). */
static int count_threads(const char *prefix, bool other)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
        bool match = strncmp(comm, prefix, strlen(prefix)) == 0;
        n += other ? !match && strcmp(comm, "bench-sampler\n") != 0 : match;
    }
    closedir(dir);
    return n;
}

static const char *sampled_prefix; /* the system's threads: "cth-", or all but ours */
static bool sampled_other;
static atomic_int sampler_stop, sampler_peak;
static void *sample_threads(void *arg)
{
    (void)arg;
    while (!atomic_load(&sampler_stop)) {
        int n = count_threads(sampled_prefix, sampled_other);
        if (n > atomic_load(&sampler_peak))
            atomic_store(&sampler_peak, n);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static pthread_t sampler_start(const char *prefix, bool other)
{
    pthread_t th;
    sampled_prefix = prefix;
    sampled_other = other;
    atomic_store(&sampler_stop, 0);
    atomic_store(&sampler_peak, 0);
    pthread_create(&th, NULL, sample_threads, NULL);
    pthread_setname_np(th, "bench-sampler");
    return th;
}

static int sampler_end(pthread_t th)
{
    atomic_store(&sampler_stop, 1);
    pthread_join(th, NULL);
    return atomic_load(&sampler_peak);
}

static void fire_report(const char *system, long rate, double start, int threads)
{
    long calls = atomic_load(&fire_calls);
    long n = calls < fire_cap ? calls : fire_cap;
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (long i = 0; i < n; i++)
        v[i] = fire_late[i];
    double p50 = n ? bench_percentile(v, (int)n, 50) : NAN,
           p99 = n ? bench_percentile(v, (int)n, 99) : NAN,
           max = n ? bench_percentile(v, (int)n, 100) : NAN;
    free(v);
    double achieved = (double)calls / (fire_stop - start);
    char what[64];
    snprintf(what, sizeof what, "firing %ldk/s for %.0f s", rate / 1000, FIRE_SECONDS);
    printf("  %-34s %-28s %8.0f/s, late p50 %.0f us, p99 %.0f us, max %.0f us, %d threads\n", what,
           system, achieved, p50, p99, max, threads);
    bench_record(what, system, "rate", achieved, "1/s", NAN);
    bench_record(what, system, "late p50", p50, "us", NAN);
    bench_record(what, system, "late p99", p99, "us", NAN);
    bench_record(what, system, "late max", max, "us", NAN);
    bench_record(what, system, "threads", threads, "threads", NAN);
}

static void fire_setup(long rate, long chains, double *start)
{
    fire_cap = (long)(rate * FIRE_SECONDS * 1.1) + chains;
    fire_late = malloc((size_t)fire_cap * sizeof *fire_late);
    memset(fire_late, 0, (size_t)fire_cap * sizeof *fire_late); /* no page faults while firing */
    atomic_store(&fire_calls, 0);
    *start = bench_now() + FIRE_LEAD;
    fire_stop = *start + FIRE_SECONDS;
}

static void fire_cth(long rate)
{
    long chains = (long)(rate * FIRE_PERIOD);
    struct chain *c = calloc((size_t)chains, sizeof *c);
    cth_timer_t **t = calloc((size_t)chains, sizeof *t);
    cth_timer_opts_t opts = {.period = FIRE_PERIOD, .daemon = CTH_DAEMON_YES};
    double start;
    fire_setup(rate, chains, &start);
    pthread_t sampler = sampler_start("cth-", false); /* the service's and the workers */
    for (long i = 0; i < chains; i++) {               /* the interval counts from the start call */
        c[i].due = start + FIRE_PERIOD * (double)i / (double)chains;
        double now = bench_now();
        cth_timer_create(&t[i], c[i].due > now ? c[i].due - now : 0, cth_chain, &c[i], &opts);
        cth_timer_start(t[i]);
    }
    while (bench_now() < fire_stop + 0.05)
        cth_sleep(0.01);
    for (long i = 0; i < chains; i++)
        cth_timer_cancel(t[i]);
    for (long i = 0; i < chains; i++) {
        cth_timer_join(t[i], CTH_FOREVER);
        cth_timer_free(t[i]);
    }
    int threads = sampler_end(sampler);
    fire_report("cthreading", rate, start, threads);
    free(fire_late);
    free(t);
    free(c);
}

#ifdef HAVE_LIBUV
/* The loop's clock is uv_hrtime() in whole milliseconds; bench_now() is
 * CLOCK_MONOTONIC too: the offset between the two is read once. */
static double uv_offset;

static void uv_chain(uv_timer_t *h)
{
    struct chain *c = h->data;
    double now = bench_now();
    if (c->due <= fire_stop)
        fire_record(c, now);
    c->due += FIRE_PERIOD;
    if (c->due > fire_stop + 0.05)
        return; /* the chain ends */
    double in_ms = (c->due - uv_offset) * 1e3 - (double)uv_now(h->loop);
    uv_timer_start(h, uv_chain, in_ms > 0 ? (uint64_t)ceil(in_ms) : 0, 0);
}

static void fire_uv(long rate)
{
    long chains = (long)(rate * FIRE_PERIOD);
    struct chain *c = calloc((size_t)chains, sizeof *c);
    uv_loop_t loop;
    uv_loop_init(&loop);
    double start;
    fire_setup(rate, chains, &start);
    pthread_t sampler = sampler_start("cth-", true); /* main, the loop's */
    uv_update_time(&loop);
    uv_offset = bench_now() - (double)uv_hrtime() / 1e9;
    for (long i = 0; i < chains; i++) {
        c[i].due = start + FIRE_PERIOD * (double)i / (double)chains;
        c[i].uv.data = &c[i];
        uv_timer_init(&loop, &c[i].uv);
        double in_ms = (c[i].due - uv_offset) * 1e3 - (double)uv_now(&loop);
        uv_timer_start(&c[i].uv, uv_chain, in_ms > 0 ? (uint64_t)ceil(in_ms) : 0, 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int threads = sampler_end(sampler);
    fire_report("libuv uv_timer_t (1 thread)", rate, start, threads);
    for (long i = 0; i < chains; i++)
        uv_close((uv_handle_t *)&c[i].uv, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    free(fire_late);
    free(c);
}
#endif

static void sustained_firing(long rate)
{
#ifdef HAVE_LIBUV
    fire_uv(rate);
#endif
    fire_cth(rate);
}

/* ---- the Python model -------------------------------------------------------------------------- */

static double run_cth_model(void *ctx)
{
    (void)ctx;
    static cth_timer_t *t[PY_N];
    double t0 = bench_now();
    for (int i = 0; i < PY_N; i++) {
        cth_timer_create(&t[i], 60, noop, NULL, NULL);
        cth_timer_start(t[i]);
    }
    for (int i = 0; i < PY_N; i++)
        cth_timer_cancel(t[i]);
    for (int i = 0; i < PY_N; i++) {
        cth_timer_join(t[i], CTH_FOREVER);
        cth_timer_free(t[i]);
    }
    return (bench_now() - t0) / PY_N * 1e6;
}

static double run_python(void *ctx)
{
    (void)ctx;
    return bench_python("import threading, time\n"
                        "def f(): pass\n"
                        "n = 1000\n"
                        "t0 = time.perf_counter()\n"
                        "ts = [threading.Timer(60, f) for i in range(n)]\n"
                        "for t in ts: t.start()\n"
                        "for t in ts: t.cancel()\n"
                        "for t in ts: t.join()\n"
                        "print((time.perf_counter() - t0) / n * 1e6)\n");
}

/* ---- exiting with a million timers pending ------------------------------------------------------ */

#define EXIT_PENDING 1000000

enum exit_way { EXIT_NOTHING_PENDING, EXIT_PENDING_TIMERS, EXIT_AFTER_FREE };

/* The child: schedule (or not) EXIT_PENDING daemon timers, write the time
 * just before exit() (or before freeing them) to fd, exit. */
static _Noreturn void exit_child(enum exit_way way, int fd)
{
    static const cth_timer_opts_t opts = {.daemon = CTH_DAEMON_YES};
    cth_timer_t **t = NULL;
    long n = way == EXIT_NOTHING_PENDING ? 0 : EXIT_PENDING;
    if (n) {
        t = malloc((size_t)n * sizeof *t);
        if (!t)
            _exit(1);
        for (long i = 0; i < n; i++) {
            if (cth_timer_create(&t[i], spread_delay(), noop, NULL, &opts) != 0 ||
                cth_timer_start(t[i]) != 0)
                _exit(1);
        }
    }
    double t0 = bench_now();
    if (write(fd, &t0, sizeof t0) != (ssize_t)sizeof t0)
        _exit(1);
    if (way == EXIT_AFTER_FREE) {
        for (long i = 0; i < n; i++)
            cth_timer_free(t[i]);
        free(t);
    }
    exit(0);
}

/* One run: ms from the child's last mark to its reaping; NAN on failure. */
static double exit_run(enum exit_way way)
{
    int fds[2];
    if (pipe(fds) != 0)
        return NAN;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        exit_child(way, fds[1]);
    }
    close(fds[1]);
    double t0 = NAN;
    ssize_t got = pid > 0 ? read(fds[0], &t0, sizeof t0) : -1;
    close(fds[0]);
    int status = 1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    double t1 = bench_now();
    return got == (ssize_t)sizeof t0 && status == 0 ? (t1 - t0) * 1e3 : NAN;
}

static void exit_cost(int reps)
{
    static const struct {
        enum exit_way way;
        const char *system;
    } ways[] = {
        {EXIT_NOTHING_PENDING, "exit, nothing pending"},
        {EXIT_PENDING_TIMERS, "exit, 1M timers pending"},
        {EXIT_AFTER_FREE, "free the 1M timers, then exit"},
    };
    enum { NWAYS = sizeof ways / sizeof ways[0] };
    double v[NWAYS][16];
    int n = reps < 16 ? reps : 16;
    for (int r = 0; r < n; r++) /* interleaved, ABC ABC ... */
        for (int w = 0; w < NWAYS; w++)
            v[w][r] = exit_run(ways[w].way);
    double base = NAN;
    for (int w = 0; w < NWAYS; w++) {
        double med = bench_report("exit with 1M timers pending", "latency", "ms", ways[w].system,
                                  v[w], n, base);
        if (w == 0)
            base = med;
    }
}

int main(int argc, char **argv)
{
    int reps = bench_reps();
    if (argc > 1 && strcmp(argv[1], "exit") == 0) {
        exit_cost(reps);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "lateness") == 0) { /* quick runs of one part */
        lateness();
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "firing") == 0) {
        sustained_firing(atol(argv[2]));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "schedule") == 0) {
        schedule_cancel(atol(argv[2]), reps);
        if (argc > 3)
            lateness();
        return 0;
    }
    /* Lateness first, on a quiet process: the teardown of ~100,000 kernel
     * timers and of a million of ours goes on in the background for a while. */
    bench_heading("Timers: firing lateness");
    lateness();

    bench_heading("Timers: sustained firing of trivial functions (rate, lateness, threads)");
    sustained_firing(10000);
    sustained_firing(100000);
    sustained_firing(1000000);

    bench_heading("Timers: schedule+cancel per timer, 90% cancelled (lower is better; libuv is "
                  "single-threaded context)");
    schedule_cancel(1000, reps);
    schedule_cancel(1000000, reps);

    bench_heading("Timers: start+cancel+join of 1,000 timers, per timer (lower is better)");
    struct bench_system sys[] = {
        {"cthreading", run_cth_model, NULL},
        {"python threading.Timer", run_python, NULL},
    };
    bench_compare("Timer start+cancel+join", "latency", "us", sys, 2, reps < 3 ? reps : 3, NULL);

    bench_heading("Timers: the process's exit, from its last statement to its reaping, ms "
                  "(lower is better)");
    exit_cost(reps < 5 ? reps : 5);
    return 0;
}
