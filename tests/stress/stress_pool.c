/* SPDX-License-Identifier: MIT */
/*
 * stress_pool.c - no task is lost: a million tasks (scaled by
 * CTH_STRESS_ITERS) over many apply_async batches, maps, imaps and
 * parallel-fors, from two submitting threads at once, every result checked.
 */
#include <sched.h>
#include <stdatomic.h>

#include "check.h"
#include "platform.h"

#define IV(x) ((void *)(intptr_t)(x))
#define VI(p) ((intptr_t)(p))

static int triple(void *arg, void **result)
{
    *result = IV(VI(arg) * 3);
    return 0;
}

static int mark(void *arg, size_t i)
{
    atomic_fetch_add(&((_Atomic unsigned char *)arg)[i], 1);
    return 0;
}

struct submitter {
    cth_pool_t *p;
    long tasks;
};

static void *submit_all(void *arg)
{
    struct submitter *s = arg;
    enum { BATCH = 1000 };
    static _Thread_local void *items[BATCH], *res[BATCH];
    static _Thread_local cth_result_t *r[BATCH];
    for (long done = 0; done < s->tasks;) {
        long k = s->tasks - done < BATCH ? s->tasks - done : BATCH;
        for (long i = 0; i < k; i++)
            items[i] = IV(done + i);
        switch ((done / BATCH) % 4) {
        case 0: /* apply_async, every result checked */
            for (long i = 0; i < k; i++)
                CHECK_OK(cth_pool_apply_async(s->p, triple, items[i], NULL, &r[i]));
            for (long i = 0; i < k; i++) {
                void *v;
                CHECK_OK(cth_result_get(r[i], &v, CTH_FOREVER));
                CHECK_EQ(VI(v), (done + i) * 3);
                cth_result_free(r[i]);
            }
            break;
        case 1: /* map with a small chunksize */
            CHECK_OK(cth_pool_map(s->p, triple, items, (size_t)k, 7, res));
            for (long i = 0; i < k; i++)
                CHECK_EQ(VI(res[i]), (done + i) * 3);
            break;
        case 2: { /* imap_unordered: each value exactly once */
            cth_imap_t *it;
            CHECK_OK(cth_pool_imap_unordered(s->p, triple, items, (size_t)k, 3, &it));
            long sum = 0;
            void *v;
            for (long i = 0; i < k; i++) {
                CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
                sum += VI(v);
            }
            CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
            CHECK_EQ(sum, 3 * (k * done + k * (k - 1) / 2));
            cth_imap_free(it);
            break;
        }
        default: { /* parallel-for: every index once */
            static _Thread_local _Atomic unsigned char hits[BATCH];
            for (long i = 0; i < k; i++)
                atomic_store(&hits[i], 0);
            CHECK_OK(cth_pool_parallel_for(s->p, mark, (void *)hits, (size_t)k));
            for (long i = 0; i < k; i++)
                CHECK_EQ(atomic_load(&hits[i]), 1);
            break;
        }
        }
        done += k;
    }
    return NULL;
}

CTH_TEST(million_tasks)
{
    cth_pool_t *p;
    cth_pool_opts_t o = {.processes = 3};
    CHECK_OK(cth_pool_create(&p, &o));
    long total = check_iters(1000000);
    struct submitter s[2] = {{p, total / 2}, {p, total - total / 2}};
    cth_thread_t *t[2];
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cth_thread_create(&t[i], submit_all, &s[i], NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    cth_pool_free(p);
}

/* Lone tasks submitted one at a time, each waited for without a get (whose
 * wait would wake a worker itself), after a pause of a random length: the
 * push meets the workers spinning, yielding, parking or parked, from two
 * submitters at once; no push may leave every worker asleep. */
static void *submit_lone_waits(void *arg)
{
    cth_pool_t *p = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    long n = check_iters(20000);
    for (long i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        for (unsigned k = (seed >> 16) % 6000; k > 0; k--)
            cth__cpu_relax();
        cth_result_t *r;
        CHECK_OK(cth_pool_apply_async(p, triple, IV(i), NULL, &r));
        double t0 = check_now();
        while (!cth_result_ready(r)) {
            CHECK(check_now() - t0 < 10.0); /* a lost wake-up leaves it untaken */
            sched_yield();
        }
        void *v;
        CHECK_OK(cth_result_get(r, &v, 0));
        CHECK_EQ(VI(v), i * 3);
        cth_result_free(r);
    }
    return NULL;
}

CTH_TEST(lone_tasks_wake_parked_workers)
{
    cth_pool_t *p;
    cth_pool_opts_t o = {.processes = 2};
    CHECK_OK(cth_pool_create(&p, &o));
    cth_thread_t *t[2];
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cth_thread_create(&t[i], submit_lone_waits, p, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    cth_pool_free(p);
}

/* terminate racing with submitters and running maps: every AsyncResult
 * still finishes, with its value or CTH_ECANCELED */
CTH_TEST(terminate_race)
{
    long rounds = check_iters(200);
    for (long round = 0; round < rounds; round++) {
        cth_pool_t *p;
        cth_pool_opts_t o = {.processes = 2, .maxtasksperchild = round % 3 ? 0 : 5};
        CHECK_OK(cth_pool_create(&p, &o));
        enum { N = 200 };
        cth_result_t *r[N];
        for (long i = 0; i < N; i++)
            CHECK_OK(cth_pool_apply_async(p, triple, IV(i), NULL, &r[i]));
        if (round % 2)
            cth_sleep(0.0001);
        CHECK_OK(cth_pool_terminate(p));
        for (long i = 0; i < N; i++) {
            void *v = NULL;
            int err = cth_result_get(r[i], &v, CTH_FOREVER);
            CHECK(err == CTH_ECANCELED || (err == 0 && VI(v) == i * 3));
            cth_result_free(r[i]);
        }
        cth_pool_free(p);
    }
}

/* apply_async from two threads racing with close (even rounds) or terminate
 * (odd rounds), through the lock-free ring: every call is refused with
 * CTH_EINVAL or accepted, every accepted task finishes (with its value;
 * after terminate also CTH_ECANCELED), and join returns: nothing stranded
 * in the ring, no worker left asleep */
struct racer {
    cth_pool_t *p;
    cth_result_t **r;
    long n, accepted;
};

static void *race_submit(void *arg)
{
    struct racer *s = arg;
    for (s->accepted = 0; s->accepted < s->n; s->accepted++) {
        int err = cth_pool_apply_async(s->p, triple, IV(s->accepted), NULL, &s->r[s->accepted]);
        if (err) {
            CHECK_EQ(err, CTH_EINVAL);
            break;
        }
    }
    return NULL;
}

CTH_TEST(close_terminate_race_submitters)
{
    long rounds = check_iters(100);
    enum { N = 20000 };
    static cth_result_t *r[2][N];
    for (long round = 0; round < rounds; round++) {
        cth_pool_t *p;
        cth_pool_opts_t o = {.processes = 2};
        CHECK_OK(cth_pool_create(&p, &o));
        struct racer s[2];
        cth_thread_t *t[2];
        for (int k = 0; k < 2; k++) {
            s[k] = (struct racer){p, r[k], N, 0};
            CHECK_OK(cth_thread_create(&t[k], race_submit, &s[k], NULL));
            CHECK_OK(cth_thread_start(t[k]));
        }
        cth_sleep(0.0002 * (double)(round % 5));
        if (round % 2)
            CHECK_OK(cth_pool_terminate(p));
        else
            CHECK_OK(cth_pool_close(p));
        for (int k = 0; k < 2; k++) {
            CHECK_OK(cth_thread_join(t[k], NULL, CTH_FOREVER));
            cth_thread_free(t[k]);
        }
        CHECK_OK(cth_pool_join(p, CTH_FOREVER));
        for (int k = 0; k < 2; k++) {
            for (long i = 0; i < s[k].accepted; i++) {
                void *v = NULL;
                int err = cth_result_get(r[k][i], &v, CTH_FOREVER);
                if (round % 2)
                    CHECK(err == CTH_ECANCELED || (err == 0 && VI(v) == i * 3));
                else
                    CHECK(err == 0 && VI(v) == i * 3);
                cth_result_free(r[k][i]);
            }
        }
        cth_pool_free(p);
    }
}

/* A task that waits for a later lone task (not through get(), whose wait
 * wakes a worker itself): the pool must run the second while the first
 * holds its worker. The push of the second meets the first's worker just
 * leaving the spinner's place, or a wake-up under way, and wakes nobody;
 * the worker that took the first must then see the second, published or
 * not, and wake the parked worker. A miss leaves the first spinning for
 * good (it gives up after a second and fails the test). */
static atomic_int second_ran;

static int wait_for_second(void *arg, void **result)
{
    (void)arg;
    double t0 = check_now();
    while (!atomic_load(&second_ran))
        CHECK(check_now() - t0 < 1.0);
    *result = NULL;
    return 0;
}

static int run_second(void *arg, void **result)
{
    (void)arg;
    atomic_store(&second_ran, 1);
    *result = NULL;
    return 0;
}

CTH_TEST(task_waiting_on_a_later_task)
{
    cth_pool_t *p;
    CHECK_OK(cth_pool_create(&p, &(cth_pool_opts_t){.processes = 2}));
    long n = check_iters(20000);
    for (long i = 0; i < n; i++) {
        atomic_store(&second_ran, 0);
        cth_result_t *a, *b;
        CHECK_OK(cth_pool_apply_async(p, wait_for_second, NULL, NULL, &a));
        CHECK_OK(cth_pool_apply_async(p, run_second, NULL, NULL, &b));
        while (!cth_result_ready(a) || !cth_result_ready(b))
            sched_yield();
        cth_result_free(a);
        cth_result_free(b);
        for (volatile long k = i * 7919 % 20000; k > 0; k--)
            ;
    }
    cth_pool_free(p);
}
