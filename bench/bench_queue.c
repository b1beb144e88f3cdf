/* SPDX-License-Identifier: MIT */
/*
 * bench_queue.c - queue throughput and latency: cthreading Queue vs a
 * textbook pthread mutex + 2 condition ring (the same semantics: the main
 * table) vs GLib GAsyncQueue (unbounded only, context) vs Python's
 * queue.Queue and queue.SimpleQueue (the model). P producers and P consumers
 * (1/1, 2/2, 8/8 on the machine's cores), capacity 1, 16, 1024 and unbounded.
 * Every run creates its threads first and starts them together at a
 * barrier (Python's runs too, with a threading.Barrier); the run lasts from
 * the first thread through the barrier to the last one done, so thread
 * creation stays out of it. The textbook ring's unbounded buffer is written
 * once before the run, so its page faults do not count either. Reports
 * items/s (ratio to cthreading), items per CPU second (the threads' own CPU
 * clocks; Python's time.process_time), and the put-to-get latency p50/p99 at
 * 1/1, capacity 1024 (Python: perf_counter_ns stamps). A run moves 1,000,000 items, fewer at capacity 1 and 16, where
 * every item is a hand-off between threads (CTH_BENCH_QUICK=1: 20,000).
 */
#include "bench.h" /* first: it sets _GNU_SOURCE */

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include <cthreading.h>
#ifdef HAVE_GLIB
#include <glib.h>
#endif

#define LAT_ITEMS 20000
#define MAX_THREADS 16

static long items = 1000000, py_items = 50000;

/* Items per run: every item is a thread-to-thread hand-off at capacity 1 and
 * nearly so at 16, which runs 10-100 times slower than at 1024. */
static long items_for(long cap, long full)
{
    return cap == 1 ? full / 20 : cap == 16 ? full / 4 : full;
}

/* ---- the textbook ring -------------------------------------------------------- */

struct ring {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    void **buf;
    size_t cap, head, count;
    int bounded;
};

/* A ring of capacity cap, or (cap 0) one with room for all n items of a
 * run, its buffer written once so that no page fault falls in the run. */
static void ring_init(struct ring *r, long cap, long n)
{
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->not_empty, NULL);
    pthread_cond_init(&r->not_full, NULL);
    r->bounded = cap > 0;
    r->cap = cap > 0 ? (size_t)cap : (size_t)n + 16;
    r->buf = malloc(r->cap * sizeof *r->buf);
    memset(r->buf, 0, r->cap * sizeof *r->buf);
    r->head = r->count = 0;
}

static void ring_put(struct ring *r, void *x)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == r->cap)
        pthread_cond_wait(&r->not_full, &r->mu);
    r->buf[(r->head + r->count++) % r->cap] = x;
    pthread_cond_signal(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
}

static void *ring_get(struct ring *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == 0)
        pthread_cond_wait(&r->not_empty, &r->mu);
    void *x = r->buf[r->head];
    r->head = (r->head + 1) % r->cap;
    r->count--;
    pthread_cond_signal(&r->not_full);
    pthread_mutex_unlock(&r->mu);
    return x;
}

/* ---- one run: P producers, P consumers ----------------------------------------- */

enum sys { SYS_CTH, SYS_RING, SYS_GASYNC };

struct run {
    enum sys sys;
    int p;
    long cap;
    long per;
    cth_queue_t *q;
    struct ring ring;
#ifdef HAVE_GLIB
    GAsyncQueue *aq;
#endif
    double *lat; /* latency samples (ns), when measuring latency */
    pthread_barrier_t start;
    struct bench_span span;
    double cpu_of[MAX_THREADS]; /* each thread's CPU seconds in the run */
    atomic_int next_index;
    double cpu_rate[BENCH_MAX_REPS];
    int ncpu;
};

static double now_ns(void)
{
    return bench_now() * 1e9;
}

/* Wait at the start barrier; returns the thread's slot in cpu_of and its
 * CPU clock at the start. */
static int thread_start(struct run *r, double *cpu0)
{
    int index = atomic_fetch_add(&r->next_index, 1);
    pthread_barrier_wait(&r->start);
    bench_span_mark(&r->span);
    *cpu0 = bench_thread_cpu();
    return index;
}

static void *producer(void *arg)
{
    struct run *r = arg;
    double cpu0;
    int index = thread_start(r, &cpu0);
    for (long i = 0; i < r->per; i++) {
        void *x = r->lat ? (void *)(uintptr_t)now_ns() : (void *)(uintptr_t)(i + 1);
        switch (r->sys) {
        case SYS_CTH: cth_queue_put(r->q, x, CTH_FOREVER); break;
        case SYS_RING: ring_put(&r->ring, x); break;
        case SYS_GASYNC:
#ifdef HAVE_GLIB
            g_async_queue_push(r->aq, x);
#endif
            break;
        }
    }
    r->cpu_of[index] = bench_thread_cpu() - cpu0;
    bench_span_mark(&r->span);
    return NULL;
}

static void *consumer(void *arg)
{
    struct run *r = arg;
    double cpu0;
    int index = thread_start(r, &cpu0);
    for (long i = 0; i < r->per; i++) {
        void *x = NULL;
        switch (r->sys) {
        case SYS_CTH: cth_queue_get(r->q, &x, CTH_FOREVER); break;
        case SYS_RING: x = ring_get(&r->ring); break;
        case SYS_GASYNC:
#ifdef HAVE_GLIB
            x = g_async_queue_pop(r->aq);
#endif
            break;
        }
        if (r->lat)
            r->lat[i] = now_ns() - (double)(uintptr_t)x;
    }
    r->cpu_of[index] = bench_thread_cpu() - cpu0;
    bench_span_mark(&r->span);
    return NULL;
}

static double run_once(void *ctx)
{
    struct run *r = ctx;
#ifndef HAVE_GLIB
    if (r->sys == SYS_GASYNC)
        return NAN;
#endif
    if (r->sys == SYS_GASYNC && r->cap > 0)
        return NAN; /* GAsyncQueue has no bound */
    r->per = (r->lat ? LAT_ITEMS : items_for(r->cap, items)) / r->p;
    long n = r->per * r->p;
    if (r->sys == SYS_CTH)
        cth_queue_create(&r->q, (size_t)r->cap, NULL);
    else if (r->sys == SYS_RING)
        ring_init(&r->ring, r->cap, n);
#ifdef HAVE_GLIB
    else
        r->aq = g_async_queue_new();
#endif
    pthread_t t[MAX_THREADS];
    atomic_store(&r->next_index, 0);
    bench_span_reset(&r->span);
    pthread_barrier_init(&r->start, NULL, (unsigned)(2 * r->p + 1));
    for (int i = 0; i < r->p; i++)
        pthread_create(&t[i], NULL, consumer, r);
    for (int i = 0; i < r->p; i++)
        pthread_create(&t[r->p + i], NULL, producer, r);
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < 2 * r->p; i++)
        pthread_join(t[i], NULL);
    double dt = bench_span_seconds(&r->span), cpu = 0;
    pthread_barrier_destroy(&r->start);
    for (int i = 0; i < 2 * r->p; i++)
        cpu += r->cpu_of[i];
    if (r->ncpu < BENCH_MAX_REPS)
        r->cpu_rate[r->ncpu++] = n / cpu;
    if (r->sys == SYS_CTH)
        cth_queue_free(r->q);
    else if (r->sys == SYS_RING)
        free(r->ring.buf);
#ifdef HAVE_GLIB
    else
        g_async_queue_unref(r->aq);
#endif
    return n / dt;
}

struct py {
    int p;
    long cap;
    int simple;
    int latency; /* measure put-to-get latency instead */
    double cpu_rate[BENCH_MAX_REPS];
    int ncpu;
    double p50, p99; /* latency, microseconds */
};

/* Run a Python peer. The script prints items/s (or the p50 latency) on
 * stdout for bench_python and writes its items per CPU second (or p50 and
 * p99) to a side file. */
static double run_python(void *ctx)
{
    struct py *c = ctx;
    if (c->simple && c->cap > 0)
        return NAN;
    char side[] = "/tmp/cth_bench_qside_XXXXXX";
    int fd = mkstemp(side);
    if (fd < 0)
        return NAN;
    close(fd);
    char script[2048];
    snprintf(script, sizeof script,
             "import threading, queue, time\n"
             "P=%d; N=%ld//P; LAT=%d\n"
             "q = queue.SimpleQueue() if %d else queue.Queue(%ld)\n"
             "lat=[]\n"
             "def prod():\n"
             "    for i in range(N): q.put(time.perf_counter_ns() if LAT else i)\n"
             "def cons():\n"
             "    for i in range(N):\n"
             "        x = q.get()\n"
             "        if LAT: lat.append(time.perf_counter_ns() - x)\n"
             "b=threading.Barrier(2*P+1)\n"
             "def start(f): b.wait(); f()\n"
             "ts=[threading.Thread(target=start, args=(f,)) for f in [cons]*P+[prod]*P]\n"
             "for t in ts: t.start()\n"
             "b.wait(); t0=time.perf_counter(); c0=time.process_time()\n"
             "for t in ts: t.join()\n"
             "dt=time.perf_counter()-t0; cpu=time.process_time()-c0\n"
             "lat.sort()\n"
             "pc=lambda p: lat[min(len(lat)-1, max(0, -(-p*len(lat)//100)-1))]/1e3\n"
             "with open('%s','w') as f:\n"
             "    f.write('%%g %%g\\n' %% ((pc(50), pc(99)) if LAT else (N*P/cpu, 0)))\n"
             "print(pc(50) if LAT else N*P/dt)\n",
             c->p, c->cap == 1 ? py_items / 5 : py_items, c->latency, c->simple, c->cap, side);
    double v = bench_python(script);
    FILE *f = fopen(side, "r");
    double a = NAN, b = NAN;
    if (f) {
        if (fscanf(f, "%lf %lf", &a, &b) != 2)
            a = b = NAN;
        fclose(f);
    }
    remove(side);
    if (c->latency) {
        c->p50 = a;
        c->p99 = b;
    } else if (!isnan(a) && c->ncpu < BENCH_MAX_REPS) {
        c->cpu_rate[c->ncpu++] = a;
    }
    return v;
}

int main(int argc, char **argv)
{
    bench_no_arguments(argc, argv);
    int reps = bench_reps();
    if (!getenv("CTH_BENCH_REPS"))
        reps = 5; /* 12 configurations of runs of a second or so, and Python start-ups */
    if (bench_quick()) {
        items = 20000;
        py_items = 2000;
    }
    static const int ps[] = {1, 2, 8};
    static const long caps[] = {1, 16, 1024, 0};
    bench_heading("Queue: items/s, P producers + P consumers (higher is better)");
    for (int a = 0; a < 3; a++) {
        for (int b = 0; b < 4; b++) {
            static struct run runs[3];
            static struct py pq, psq;
            pq = (struct py){.p = ps[a], .cap = caps[b]};
            psq = (struct py){.p = ps[a], .cap = caps[b], .simple = 1};
            for (int s = 0; s < 3; s++)
                runs[s] = (struct run){.sys = (enum sys)s, .p = ps[a], .cap = caps[b]};
            struct bench_system sys[] = {
                {"cthreading Queue", run_once, &runs[0]},
                {"pthread mutex+2cond ring", run_once, &runs[1]},
                {"GLib GAsyncQueue (context)", run_once, &runs[2]},
                {"python queue.Queue", run_python, &pq},
                {"python queue.SimpleQueue", run_python, &psq},
            };
            char name[64];
            if (caps[b])
                snprintf(name, sizeof name, "queue %dP/%dC cap %ld", ps[a], ps[a], caps[b]);
            else
                snprintf(name, sizeof name, "queue %dP/%dC unbounded", ps[a], ps[a]);
            int nsys = ps[a] == 8 ? 3 : 5; /* Python at 8/8 adds nothing but time */
            bench_compare(name, "throughput", "items/s", sys, nsys, reps, NULL);
            double base = NAN;
            for (int s = 0; s < nsys; s++) {
                double *rate = s < 3 ? runs[s].cpu_rate : s == 3 ? pq.cpu_rate : psq.cpu_rate;
                int n = s < 3 ? runs[s].ncpu : s == 3 ? pq.ncpu : psq.ncpu;
                if (s == 0)
                    base = bench_median(rate, n);
                if (n > 0)
                    bench_report(name, "items_per_cpu_second", "items/cpu-s", sys[s].name, rate, n,
                                 base);
            }
        }
    }
    bench_heading("Queue: put-to-get latency, 1P/1C, capacity 1024, one run (lower is better)");
    static const char *names[] = {"cthreading Queue", "pthread mutex+2cond ring",
                                  "GLib GAsyncQueue (context)", "python queue.Queue",
                                  "python queue.SimpleQueue"};
    double p50[5], p99[5];
    static double lat[LAT_ITEMS];
    for (int s = 0; s < 3; s++) {
        struct run r = {.sys = (enum sys)s, .p = 1, .cap = s == SYS_GASYNC ? 0 : 1024, .lat = lat};
        p50[s] = p99[s] = NAN;
        if (isnan(run_once(&r)))
            continue;
        p50[s] = bench_percentile(lat, LAT_ITEMS, 50) / 1e3;
        p99[s] = bench_percentile(lat, LAT_ITEMS, 99) / 1e3;
    }
    for (int s = 0; s < 2; s++) {
        struct py c = {.p = 1, .cap = s ? 0 : 1024, .simple = s, .latency = 1};
        p50[3 + s] = p99[3 + s] = NAN;
        if (isnan(run_python(&c)) || isnan(c.p50))
            continue;
        p50[3 + s] = c.p50;
        p99[3 + s] = c.p99;
    }
    double base50 = p50[0], base99 = p99[0];
    for (int s = 0; s < 5; s++)
        bench_report("queue latency 1P/1C p50", "latency_p50", "us", names[s], &p50[s], 1, base50);
    for (int s = 0; s < 5; s++)
        bench_report("queue latency 1P/1C p99", "latency_p99", "us", names[s], &p99[s], 1, base99);
    return 0;
}
