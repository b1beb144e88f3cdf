/* SPDX-License-Identifier: MIT */
/*
 * stress_timer.c - the timer service under concurrent load: several threads
 * start, cancel and free timers (one-shot and periodic) at random while
 * others fire, and timers cancel each other from their functions. Every
 * timer either fires exactly once or ends cancelled, never early, nothing
 * lost, and the service settles with nothing left. The heap grows to
 * hundreds of thousands of entries (segment by segment, each allocated with
 * the service's lock released) while other threads start short timers and
 * periodic ones re-arm, then shrinks back as they are cancelled.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"

#define THREADS 4

struct item {
    cth_timer_t *t;
    double due;
    atomic_int calls;
    atomic_int early;
};

static void fire(void *arg)
{
    struct item *it = arg;
    if (check_now() < it->due)
        atomic_store(&it->early, 1);
    atomic_fetch_add(&it->calls, 1);
}

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    long n = check_iters(20000);
    struct item *items = calloc((size_t)n, sizeof *items);
    CHECK(items);
    static const cth_timer_opts_t opts = {.daemon = CTH_DAEMON_YES};
    for (long i = 0; i < n; i++) {
        double iv = (rand_r(&seed) % 50000) / 1e6;
        CHECK_OK(cth_timer_create(&items[i].t, iv, fire, &items[i], &opts));
        items[i].due = check_now() + iv;
        CHECK_OK(cth_timer_start(items[i].t));
        if (rand_r(&seed) % 2) {
            long j = rand_r(&seed) % (i + 1);
            CHECK_OK(cth_timer_cancel(items[j].t));
        }
    }
    for (long i = 0; i < n; i++) {
        CHECK_OK(cth_timer_join(items[i].t, CTH_FOREVER));
        cth_timer_state_t s = cth_timer_state(items[i].t);
        int calls = atomic_load(&items[i].calls);
        CHECK((s == CTH_TIMER_FIRED && calls == 1) || (s == CTH_TIMER_CANCELLED && calls == 0));
        CHECK_EQ(atomic_load(&items[i].early), 0);
        cth_timer_free(items[i].t);
    }
    free(items);
    return NULL;
}

/* Concurrent start/cancel from several threads. */
CTH_TEST(concurrent_churn)
{
    cth_thread_t *th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        CHECK_OK(cth_thread_create(&th[i], churn, (void *)(uintptr_t)(i + 1), NULL));
        CHECK_OK(cth_thread_start(th[i]));
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_OK(cth_thread_join(th[i], NULL, CTH_FOREVER));
        cth_thread_free(th[i]);
    }
}

/* Periodic timers started and freed at random while they tick. */
static atomic_long total_ticks;
static void ptick(void *arg)
{
    (void)arg;
    atomic_fetch_add(&total_ticks, 1);
}

CTH_TEST(periodic_free_while_ticking)
{
    long n = check_iters(2000);
    cth_timer_opts_t opts = {.period = 0.001, .daemon = CTH_DAEMON_YES};
    unsigned seed = 7;
    for (long i = 0; i < n; i++) {
        cth_timer_t *t;
        CHECK_OK(cth_timer_create(&t, 0, ptick, NULL, &opts));
        CHECK_OK(cth_timer_start(t));
        if (rand_r(&seed) % 4 == 0)
            cth_sleep(0.001);
        cth_timer_free(t);
    }
    /* Calls already fired when their timer was freed finish; on a loaded
     * machine a worker may be preempted inside one for a while, so wait
     * (up to 10 s) until the count has stood still for 50 ms. */
    long seen = atomic_load(&total_ticks);
    bool still = false;
    for (int round = 0; !still && round < 200; round++) {
        cth_sleep(0.05);
        long now = atomic_load(&total_ticks);
        still = now == seen;
        seen = now;
    }
    CHECK(seen > 0);
    cth_sleep(0.1);
    CHECK_EQ(atomic_load(&total_ticks), seen); /* freed periodic timers tick no more */
}

/* Two threads fill the heap with far-off timers (the heap grows by segments
 * with its lock released, so starts from several threads and periodic
 * re-arms meet a growth under way) while short one-shot and periodic timers
 * fire; then everything far off is cancelled in random order (the heap
 * shrinks): each short timer fired once, nothing far off did. */
struct filler {
    long n;
    cth_timer_t **t;
    struct item *items;
    unsigned seed;
};

static void *fill(void *arg)
{
    struct filler *f = arg;
    static const cth_timer_opts_t opts = {.daemon = CTH_DAEMON_YES};
    for (long i = 0; i < f->n; i++) {
        CHECK_OK(cth_timer_create(&f->t[i], 3600 + (rand_r(&f->seed) % 1000), fire, NULL, &opts));
        CHECK_OK(cth_timer_start(f->t[i]));
        if (i % 100 == 0) { /* a short one now and then */
            struct item *it = &f->items[i / 100];
            double iv = (rand_r(&f->seed) % 20000) / 1e6;
            CHECK_OK(cth_timer_create(&it->t, iv, fire, it, &opts));
            it->due = check_now() + iv;
            CHECK_OK(cth_timer_start(it->t));
        }
    }
    return NULL;
}

CTH_TEST(heap_grows_while_firing)
{
    long n = check_iters(200000);
    cth_timer_opts_t periodic = {.period = 0.0005, .daemon = CTH_DAEMON_YES};
    cth_timer_t *ticker;
    CHECK_OK(cth_timer_create(&ticker, 0, ptick, NULL, &periodic));
    CHECK_OK(cth_timer_start(ticker));
    struct filler f[2];
    cth_thread_t *th[2];
    for (int k = 0; k < 2; k++) {
        f[k] = (struct filler){n, calloc((size_t)n, sizeof(cth_timer_t *)),
                               calloc((size_t)n / 100 + 1, sizeof(struct item)), (unsigned)k + 11};
        CHECK(f[k].t && f[k].items);
        CHECK_OK(cth_thread_create(&th[k], fill, &f[k], NULL));
        CHECK_OK(cth_thread_start(th[k]));
    }
    for (int k = 0; k < 2; k++) {
        CHECK_OK(cth_thread_join(th[k], NULL, CTH_FOREVER));
        cth_thread_free(th[k]);
    }
    for (int k = 0; k < 2; k++) {
        for (long i = n - 1; i > 0; i--) { /* cancel in random order */
            long j = rand_r(&f[k].seed) % (i + 1);
            cth_timer_t *tmp = f[k].t[i];
            f[k].t[i] = f[k].t[j];
            f[k].t[j] = tmp;
        }
        for (long i = 0; i < n; i++) {
            CHECK_OK(cth_timer_cancel(f[k].t[i]));
            CHECK_EQ(cth_timer_state(f[k].t[i]), CTH_TIMER_CANCELLED);
            cth_timer_free(f[k].t[i]);
        }
        for (long i = 0; i < n; i += 100) {
            struct item *it = &f[k].items[i / 100];
            CHECK_OK(cth_timer_join(it->t, CTH_FOREVER));
            CHECK_EQ(atomic_load(&it->calls), 1);
            CHECK_EQ(atomic_load(&it->early), 0);
            cth_timer_free(it->t);
        }
        free(f[k].t);
        free(f[k].items);
    }
    CHECK_OK(cth_timer_cancel(ticker));
    CHECK_OK(cth_timer_join(ticker, CTH_FOREVER));
    cth_timer_free(ticker);
}
