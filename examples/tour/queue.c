/* SPDX-License-Identifier: MIT */
/*
 * queue.c - the tour's queue section: producers and consumers handing work
 * over a small bounded Queue, task_done/join, shutdown, and a SimpleQueue
 * fed from a signal handler.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tour.h"

#define ITEMS 200000

static cth_queue_t *q;
static _Atomic long total;

static void *produce(void *arg)
{
    long base = (long)(intptr_t)arg;
    for (long i = 1; i <= ITEMS; i++)
        cth_queue_put(q, (void *)(intptr_t)(base + i), CTH_FOREVER);
    return NULL;
}

static void *consume(void *arg)
{
    (void)arg;
    void *item;
    while (cth_queue_get(q, &item, CTH_FOREVER) == 0) { /* CTH_ESHUTDOWN ends it */
        atomic_fetch_add(&total, (long)(intptr_t)item);
        cth_queue_task_done(q);
    }
    return NULL;
}

static cth_simple_queue_t *sq;
static void on_usr1(int sig)
{
    cth_simple_queue_put(sq, (void *)(intptr_t)sig); /* safe in a handler */
}

static void tour_queue(void)
{
    tour_code("q = queue.Queue(maxsize=16)", "cth_queue_create(&q, 16, NULL);",
              "q.put(item)  # producers: blocks while full", "cth_queue_put(q, item, CTH_FOREVER);",
              "item = q.get(); q.task_done()  # consumers, until ShutDown",
              "while (cth_queue_get(q, &item, CTH_FOREVER) == 0) { ...; cth_queue_task_done(q); }",
              "q.join()  # every item got and done", "cth_queue_join(q, CTH_FOREVER);",
              "q.shutdown()  # getters then raise ShutDown", "cth_queue_shutdown(q, false);",
              "sq = queue.SimpleQueue(); sq.put(signum)  # in a signal handler",
              "cth_simple_queue_put(sq, (void *)(intptr_t)signum);  /* async-signal-safe */", NULL);
    cth_queue_create(&q, 16, NULL);
    cth_thread_t *t[4];
    double t0 = cth_monotonic();
    for (int i = 0; i < 2; i++) {
        cth_thread_create(&t[i], consume, NULL, NULL);
        cth_thread_start(t[i]);
        cth_thread_create(&t[2 + i], produce, (void *)(intptr_t)(i * 1000000), NULL);
        cth_thread_start(t[2 + i]);
    }
    for (int i = 2; i < 4; i++)
        cth_thread_join(t[i], NULL, CTH_FOREVER);
    cth_queue_join(q, CTH_FOREVER); /* every item taken and marked done */
    double dt = cth_monotonic() - t0;
    long expect = 2L * ITEMS * (ITEMS + 1) / 2 + 1000000L * ITEMS;
    say("2 producers, 2 consumers, Queue(maxsize=16): %d items in %.3f s (%.2f M items/s)",
        2 * ITEMS, dt, 2 * ITEMS / dt / 1e6);
    say("sum of items received %ld, expected %ld: %s", (long)atomic_load(&total), expect,
        atomic_load(&total) == expect ? "nothing lost" : "MISMATCH");
    cth_queue_shutdown(q, false);
    for (int i = 0; i < 2; i++)
        cth_thread_join(t[i], NULL, CTH_FOREVER);
    void *item;
    say("after shutdown(): put -> %s, get -> %s", cth_err_name(cth_queue_put(q, NULL, 0)),
        cth_err_name(cth_queue_get(q, &item, 0)));
    for (int i = 0; i < 4; i++)
        cth_thread_free(t[i]);
    cth_queue_free(q);

    cth_simple_queue_create(&sq, NULL);
    signal(SIGUSR1, on_usr1);
    for (int i = 0; i < 3; i++)
        raise(SIGUSR1);
    signal(SIGUSR1, SIG_DFL);
    say("SimpleQueue filled by a signal handler: qsize %zu", cth_simple_queue_qsize(sq));
    cth_simple_queue_free(sq);
}

TOUR_SECTION(60, "queue", "queue: producers and consumers", tour_queue)
