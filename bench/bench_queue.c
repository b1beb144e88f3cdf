/*
 * bench_queue.c - queue throughput and latency: cthreading Queue vs a
 * textbook pthread mutex + 2 condition ring (the same semantics: the main
 * table) vs GLib GAsyncQueue (unbounded only, context) vs Python's
 * queue.Queue and queue.SimpleQueue (the model). P producers and P consumers
 * (1/1, 2/2, 8/8 on the machine's cores), capacity 1, 16, 1024 and unbounded.
 * Reports items/s (ratio to cthreading), items per CPU second, and the
 * put-to-get latency p50/p99 at 1/1, capacity 1024.
 */
#include "bench.h" /* first: it sets _GNU_SOURCE */

#include <pthread.h>
#include <stdint.h>

#include <cthreading.h>
#ifdef HAVE_GLIB
#include <glib.h>
#endif

#define ITEMS 200000
#define LAT_ITEMS 20000

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
        case SYS_CTH:
            cth_queue_put(r->q, x, CTH_FOREVER);
            break;
        case SYS_RING:
            ring_put(&r->ring, x);
            break;
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
        case SYS_CTH:
            cth_queue_get(r->q, &x, CTH_FOREVER);
            break;
        case SYS_RING:
            x = ring_get(&r->ring);
            break;
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
    r->per = (r->lat ? LAT_ITEMS : ITEMS) / r->p;
    if (r->sys == SYS_CTH)
        cth_queue_create(&r->q, r->cap, NULL);
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
};

static double run_python(void *ctx)
{
    struct py *c = ctx;
    if (c->simple && c->cap > 0)
        return NAN;
    char script[1024];
    snprintf(script, sizeof script,
             "import threading, queue, time\n"
             "P=%d; N=20000//P\n"
             "q = queue.SimpleQueue() if %d else queue.Queue(%ld)\n"
             "def prod():\n"
             "    for i in range(N): q.put(i)\n"
             "def cons():\n"
             "    for i in range(N): q.get()\n"
             "ts=[threading.Thread(target=f) for f in [cons]*P+[prod]*P]\n"
             "t0=time.perf_counter()\n"
             "for t in ts: t.start()\n"
             "for t in ts: t.join()\n"
             "print(N*P/(time.perf_counter()-t0))\n",
             c->p, c->simple, c->cap);
    return bench_python(script);
}

int main(void)
{
    int reps = bench_reps();
    if (!getenv("CTH_BENCH_REPS"))
        reps = 7; /* 12 configurations: keep the program near a minute */
    static const int ps[] = {1, 2, 8};
    static const long caps[] = {1, 16, 1024, 0};
    bench_heading("Queue: items/s, P producers + P consumers (higher is better)");
    for (int a = 0; a < 3; a++) {
        for (int b = 0; b < 4; b++) {
            static struct run runs[3];
            struct py pq = {ps[a], caps[b], 0}, psq = {ps[a], caps[b], 1};
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
            for (int s = 0; s < 3; s++) {
                double m = bench_median(runs[s].cpu_rate, runs[s].ncpu);
                if (!isnan(m)) {
                    printf("  %-34s %-28s %10.4g items/cpu-s\n", name, sys[s].name, m);
                    bench_record(name, sys[s].name, "items_per_cpu_second", m, "items/cpu-s",
                                 NAN);
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
    return 0;
}
