/* SPDX-License-Identifier: MIT */
/*
 * test_fault_sweep.c - fault injection swept over each module's scenario.
 *
 * For k = 0, 1, 2, ... the k-th allocation (cth__fault_alloc_after) or the
 * k-th thread start (cth__fault_thread_start_after) and every one after it
 * fails, and the scenario runs: each call must succeed or return
 * CTH_ENOMEM / CTH_EAGAIN (no crash), the objects must stay usable or be
 * cleanly freeable once the faults stop, and no item, task or timer may be
 * lost. The sweep ends at the first k where the scenario saw no failure.
 * A second sweep fails the k-th allocation only (cth__fault_alloc_once), so
 * that an error path runs with the allocations after it succeeding (a
 * leak of what those allocated shows there); it ends at the first k the
 * scenario did not reach.
 * Leaks are ASan/LSan's to find (`make asan` runs this file too).
 */
#include <stdatomic.h>
#include <stdint.h>

#include "alloc.h"
#include "check.h"
#include "runtime.h"

/* A call under injected faults: success, or out of memory / threads. */
static int fault_rc(int rc, int *failures)
{
    CHECK(rc == 0 || rc == CTH_ENOMEM || rc == CTH_EAGAIN);
    if (rc)
        ++*failures;
    return rc;
}

static bool once_fired; /* the one-off failure armed has happened */

static void faults_off(void)
{
    cth__fault_alloc_after(-1);
    cth__fault_thread_start_after(-1);
    if (cth__fault_alloc_once(-1) == -2)
        once_fired = true;
}

/* Run scenario with k = 0, 1, ... allocations (or thread starts) allowed
 * until it completes with no failure. */
static void sweep(int (*scenario)(void), bool threads)
{
    for (long k = 0;; k++) {
        CHECK(k < 5000);
        if (threads)
            cth__fault_thread_start_after(k);
        else
            cth__fault_alloc_after(k);
        int failures = scenario();
        faults_off();
        if (failures == 0) {
            printf("no failure left at k = %ld\n", k);
            return;
        }
    }
}

/* Run scenario with the k-th allocation failing, and it only, for k = 0,
 * 1, ... until the scenario makes fewer than k + 1 allocations. */
static void sweep_once(int (*scenario)(void))
{
    for (long k = 0;; k++) {
        CHECK(k < 5000);
        once_fired = false;
        cth__fault_alloc_once(k);
        scenario();
        faults_off();
        if (!once_fired) {
            printf("scenario makes %ld allocations\n", k);
            return;
        }
    }
}

/* ---- queue ---- */

static atomic_long q_freed;
static void q_free_item(void *item)
{
    (void)item;
    atomic_fetch_add(&q_freed, 1);
}

static int queue_scenario(void)
{
    int failures = 0;
    cth_queue_t *q;
    cth_queue_opts_t o = {.free_item = q_free_item};
    if (fault_rc(cth_queue_create(&q, 0, &o), &failures))
        return failures;
    long put = 0;
    for (uintptr_t i = 1; i <= 200; i++)
        if (fault_rc(cth_queue_put(q, (void *)i, 0), &failures) == 0)
            put++;
    CHECK_EQ(cth_queue_qsize(q), put);
    uintptr_t last = 0;
    for (long i = 0; i < put / 2; i++) { /* FIFO, nothing lost or doubled */
        void *it;
        CHECK_OK(cth_queue_get(q, &it, 0));
        CHECK((uintptr_t)it > last);
        last = (uintptr_t)it;
    }
    faults_off(); /* still usable */
    CHECK_OK(cth_queue_put(q, (void *)1000, 0));
    atomic_store(&q_freed, 0);
    CHECK_OK(cth_queue_shutdown(q, true));
    CHECK_EQ(atomic_load(&q_freed), put - put / 2 + 1);
    cth_queue_free(q);
    return failures;
}

CTH_TEST(queue_alloc)
{
    sweep(queue_scenario, false);
}

CTH_TEST(queue_alloc_once)
{
    sweep_once(queue_scenario);
}

/* ---- pool ---- */

static int triple(void *arg, void **result)
{
    *result = (void *)((uintptr_t)arg * 3);
    return 0;
}

static int pool_scenario(void)
{
    int failures = 0;
    cth_pool_t *p;
    cth_pool_opts_t po = {.processes = 2};
    if (fault_rc(cth_pool_create(&p, &po), &failures))
        return failures;
    cth_result_t *res[8];
    int ok[8];
    for (uintptr_t i = 0; i < 8; i++)
        ok[i] = fault_rc(cth_pool_apply_async(p, triple, (void *)i, NULL, &res[i]), &failures) == 0;
    void *items[50], *results[50];
    for (uintptr_t i = 0; i < 50; i++)
        items[i] = (void *)i;
    CHECK_OK(cth_pool_map(p, triple, items, 50, 0, results));
    for (uintptr_t i = 0; i < 50; i++)
        CHECK_EQ((uintptr_t)results[i], 3 * i);
    cth_imap_t *it;
    if (fault_rc(cth_pool_imap(p, triple, items, 10, 0, &it), &failures) == 0) {
        void *v;
        for (uintptr_t i = 0; i < 10; i++) {
            CHECK_OK(cth_imap_next(it, &v, CTH_FOREVER));
            CHECK_EQ((uintptr_t)v, 3 * i);
        }
        CHECK_EQ(cth_imap_next(it, &v, CTH_FOREVER), CTH_IMAP_END);
        cth_imap_free(it);
    }
    faults_off();
    for (uintptr_t i = 0; i < 8; i++) {
        if (!ok[i])
            continue;
        void *v;
        CHECK_OK(cth_result_get(res[i], &v, CTH_FOREVER)); /* no task lost */
        CHECK_EQ((uintptr_t)v, 3 * i);
        cth_result_free(res[i]);
    }
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    cth_pool_free(p);
    return failures;
}

CTH_TEST(pool_alloc)
{
    sweep(pool_scenario, false);
}

CTH_TEST(pool_alloc_once)
{
    sweep_once(pool_scenario);
}

CTH_TEST(pool_thread_start)
{
    sweep(pool_scenario, true);
}

/* ---- timers ---- */

static atomic_int timer_calls[6];
static void count_call(void *arg)
{
    atomic_fetch_add(&timer_calls[(uintptr_t)arg], 1);
}

static int timer_scenario(void)
{
    int failures = 0;
    cth_timer_t *t[6] = {0};
    bool started[6] = {0};
    for (uintptr_t i = 0; i < 6; i++) {
        atomic_store(&timer_calls[i], 0);
        if (fault_rc(cth_timer_create(&t[i], 0.001 * (double)(i % 3), count_call, (void *)i, NULL),
                     &failures))
            continue;
        started[i] = fault_rc(cth_timer_start(t[i]), &failures) == 0;
    }
    faults_off();
    for (int i = 0; i < 6; i++) {
        if (!t[i])
            continue;
        if (started[i]) { /* no timer lost: it fires exactly once */
            CHECK_OK(cth_timer_join(t[i], 10));
            CHECK_EQ(cth_timer_state(t[i]), CTH_TIMER_FIRED);
            CHECK_EQ(atomic_load(&timer_calls[i]), 1);
        } else { /* a failed start leaves it unstarted: it can start now */
            CHECK_EQ(cth_timer_state(t[i]), CTH_TIMER_INITIAL);
            CHECK_OK(cth_timer_start(t[i]));
            CHECK_OK(cth_timer_join(t[i], 10));
            CHECK_EQ(atomic_load(&timer_calls[i]), 1);
        }
        cth_timer_free(t[i]);
    }
    return failures;
}

CTH_TEST(timer_alloc)
{
    sweep(timer_scenario, false);
}

CTH_TEST(timer_alloc_once)
{
    sweep_once(timer_scenario);
}

CTH_TEST(timer_thread_start)
{
    sweep(timer_scenario, true);
}

/* ---- locals and threads ---- */

static atomic_int destroyed;
static void destroy_value(void *v)
{
    (void)v;
    atomic_fetch_add(&destroyed, 1);
}

struct local_job {
    cth_local_t *local[3];
    int set; /* values set by this thread */
    int failures;
};

static void *local_thread(void *arg)
{
    struct local_job *j = arg;
    for (uintptr_t i = 0; i < 3; i++) {
        if (!j->local[i])
            continue;
        if (fault_rc(cth_local_set(j->local[i], (void *)(i + 1)), &j->failures) == 0) {
            CHECK_EQ((uintptr_t)cth_local_get(j->local[i]), i + 1);
            j->set++;
        } else
            CHECK(cth_local_get(j->local[i]) == NULL); /* nothing changed */
    }
    return NULL;
}

static int local_thread_scenario(void)
{
    int failures = 0;
    struct local_job jobs[4] = {0};
    cth_local_t *local[3] = {0};
    for (int i = 0; i < 3; i++)
        fault_rc(cth_local_create(&local[i], &(cth_local_opts_t){.free_item = destroy_value}),
                 &failures);
    atomic_store(&destroyed, 0);
    cth_thread_t *th[4] = {0};
    int expect = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(jobs[i].local, local, sizeof local);
        if (fault_rc(cth_thread_create(&th[i], local_thread, &jobs[i], NULL), &failures))
            continue;
        if (fault_rc(cth_thread_start(th[i]), &failures)) {
            CHECK_EQ(cth_thread_state(th[i]), CTH_THREAD_INITIAL);
            cth_thread_free(th[i]);
            th[i] = NULL;
        }
    }
    for (int i = 0; i < 4; i++) {
        if (!th[i])
            continue;
        CHECK_OK(cth_thread_join(th[i], NULL, CTH_FOREVER));
        cth_thread_free(th[i]);
        failures += jobs[i].failures;
        expect += jobs[i].set;
    }
    faults_off();
    for (int i = 0; i < 3; i++)
        cth_local_free(local[i]);
    CHECK_EQ(atomic_load(&destroyed), expect); /* every value set destroyed once */
    return failures;
}

CTH_TEST(local_thread_alloc)
{
    sweep(local_thread_scenario, false);
}

CTH_TEST(local_thread_alloc_once)
{
    sweep_once(local_thread_scenario);
}

CTH_TEST(thread_start)
{
    sweep(local_thread_scenario, true);
}
