/* SPDX-License-Identifier: MIT */
/*
 * bench_queue.c - queue throughput and latency: cthreading Queue vs a
 * textbook pthread mutex + 2 condition ring (the same semantics: the main
 * table) vs GLib GAsyncQueue (unbounded only, context) vs Python's
 * queue.Queue and queue.SimpleQueue (the model). P producers and P consumers
 * (1/1, 2/2, 8/8 on the machine's cores), capacity 1, 16, 1024 and unbounded.
 * Reports items/s (ratio to cthreading), items per CPU second (getrusage;
 * Python's own time.process_time), and the put-to-get latency p50/p99 at
 * 1/1, capacity 1024 (Python: perf_counter_ns stamps). The item counts
 * shrink for capacity 1 and 16, where every item is a hand-off between
 * threads, so the program stays near a minute at the default repetitions.
 */
#include "bench.h" /* first: it sets _GNU_SOURCE */

#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include <cthreading.h>
#ifdef HAVE_GLIB
#include <glib.h>
#endif

#define ITEMS 200000
#define LAT_ITEMS 20000
#define PY_ITEMS 10000

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

static void ring_init(struct ring *r, long cap)
{
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->not_empty, NULL);
    pthread_cond_init(&r->not_full, NULL);
    r->bounded = cap > 0;
    r->cap = cap > 0 ? (size_t)cap : ITEMS * 8 + 16;
    r->buf = malloc(r->cap * sizeof *r->buf);
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
    double cpu_rate[BENCH_MAX_REPS];
    int ncpu;
};

static double now_ns(void)
{
    return bench_now() * 1e9;
}

static void *producer(void *arg)
{
    struct run *r = arg;
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
    return NULL;
}

static void *consumer(void *arg)
{
    struct run *r = arg;
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
    r->per = (r->lat ? LAT_ITEMS : items_for(r->cap, ITEMS)) / r->p;
    if (r->sys == SYS_CTH)
        cth_queue_create(&r->q, (size_t)r->cap, NULL);
    else if (r->sys == SYS_RING)
        ring_init(&r->ring, r->cap);
#ifdef HAVE_GLIB
    else
        r->aq = g_async_queue_new();
#endif
    pthread_t t[16];
    double c0 = bench_cpu(), t0 = bench_now();
    for (int i = 0; i < r->p; i++)
        pthread_create(&t[i], NULL, consumer, r);
    for (int i = 0; i < r->p; i++)
        pthread_create(&t[r->p + i], NULL, producer, r);
    for (int i = 0; i < 2 * r->p; i++)
        pthread_join(t[i], NULL);
    double dt = bench_now() - t0, cpu = bench_cpu() - c0;
    long n = r->per * r->p;
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
             "ts=[threading.Thread(target=f) for f in [cons]*P+[prod]*P]\n"
             "t0=time.perf_counter(); c0=time.process_time()\n"
             "for t in ts: t.start()\n"
             "for t in ts: t.join()\n"
             "dt=time.perf_counter()-t0; cpu=time.process_time()-c0\n"
             "lat.sort()\n"
             "pc=lambda p: lat[min(len(lat)-1, max(0, -(-p*len(lat)//100)-1))]/1e3\n"
             "with open('%s','w') as f:\n"
             "    f.write('%%g %%g\\n' %% ((pc(50), pc(99)) if LAT else (N*P/cpu, 0)))\n"
             "print(pc(50) if LAT else N*P/dt)\n",
             c->p, c->cap == 1 ? PY_ITEMS / 5 : PY_ITEMS, c->latency, c->simple, c->cap, side);
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

int main(void)
{
    int reps = bench_reps();
    if (!getenv("CTH_BENCH_REPS"))
        reps = 5; /* 12 configurations and Python start-ups: keep the program near a minute */
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
            for (int s = 0; s < nsys; s++) {
                double m = s < 3    ? bench_median(runs[s].cpu_rate, runs[s].ncpu)
                           : s == 3 ? bench_median(pq.cpu_rate, pq.ncpu)
                                    : bench_median(psq.cpu_rate, psq.ncpu);
                if (!isnan(m)) {
                    printf("  %-34s %-28s %10.4g items/cpu-s\n", name, sys[s].name, m);
                    bench_record(name, sys[s].name, "items_per_cpu_second", m, "items/cpu-s", NAN);
                }
            }
        }
    }
    bench_heading("Queue: put-to-get latency, 1P/1C, capacity 1024 (lower is better)");
    static double lat[LAT_ITEMS];
    for (int s = 0; s < 3; s++) {
        static const char *names[] = {"cthreading Queue", "pthread mutex+2cond ring",
                                      "GLib GAsyncQueue (context)"};
        struct run r = {.sys = (enum sys)s, .p = 1, .cap = s == SYS_GASYNC ? 0 : 1024, .lat = lat};
        if (isnan(run_once(&r)))
            continue;
        double p50 = bench_percentile(lat, LAT_ITEMS, 50) / 1e3;
        double p99 = bench_percentile(lat, LAT_ITEMS, 99) / 1e3;
        printf("  %-34s %-28s p50 %8.2f us  p99 %8.2f us\n", "queue latency 1P/1C", names[s], p50,
               p99);
        bench_record("queue latency 1P/1C", names[s], "latency_p50", p50, "us", NAN);
        bench_record("queue latency 1P/1C", names[s], "latency_p99", p99, "us", NAN);
    }
    for (int s = 0; s < 2; s++) {
        static const char *names[] = {"python queue.Queue", "python queue.SimpleQueue"};
        struct py c = {.p = 1, .cap = s ? 0 : 1024, .simple = s, .latency = 1};
        if (isnan(run_python(&c)) || isnan(c.p50))
            continue;
        printf("  %-34s %-28s p50 %8.2f us  p99 %8.2f us\n", "queue latency 1P/1C", names[s], c.p50,
               c.p99);
        bench_record("queue latency 1P/1C", names[s], "latency_p50", c.p50, "us", NAN);
        bench_record("queue latency 1P/1C", names[s], "latency_p99", c.p99, "us", NAN);
    }
    return 0;
}
