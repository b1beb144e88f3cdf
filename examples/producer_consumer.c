/* SPDX-License-Identifier: MIT */
/*
 * producer_consumer.c - the queue module: two producers and three consumers
 * share a bounded Queue; consumers call task_done, main waits with join,
 * then shutdown ends the consumers (Python 3.13's Queue.shutdown). Python:
 *
 *     q = queue.Queue(maxsize=4)
 *     item = q.get(); ...; q.task_done()      # each consumer, until ShutDown
 *     q.join(); q.shutdown()
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <cthreading.h>

#define ITEMS 1000 /* per producer */

static cth_queue_t *q;
static atomic_long total, taken;

static void *produce(void *arg)
{
    long base = (long)(intptr_t)arg;
    for (long i = 1; i <= ITEMS; i++)
        cth_queue_put(q, (void *)(intptr_t)(base + i), CTH_FOREVER); /* blocks while full */
    return NULL;
}

static void *consume(void *arg)
{
    (void)arg;
    void *item;
    int err;
    while ((err = cth_queue_get(q, &item, CTH_FOREVER)) == 0) {
        atomic_fetch_add(&total, (long)(intptr_t)item);
        atomic_fetch_add(&taken, 1);
        cth_queue_task_done(q);
    }
    return (void *)(intptr_t)err; /* CTH_ESHUTDOWN: Python's queue.ShutDown */
}

int main(void)
{
    cth_queue_create(&q, 4, NULL);
    cth_thread_t *producers[2], *consumers[3];
    for (int i = 0; i < 3; i++) {
        cth_thread_create(&consumers[i], consume, NULL, NULL);
        cth_thread_start(consumers[i]);
    }
    for (int i = 0; i < 2; i++) {
        cth_thread_create(&producers[i], produce, (void *)(intptr_t)(i * 10000), NULL);
        cth_thread_start(producers[i]);
    }
    for (int i = 0; i < 2; i++) {
        cth_thread_join(producers[i], NULL, CTH_FOREVER);
        cth_thread_free(producers[i]);
    }
    cth_queue_join(q, CTH_FOREVER); /* every item got and marked done */
    printf("q.join() returned: %ld items taken, unfinished_tasks = %zu\n", atomic_load(&taken),
           cth_queue_unfinished_tasks(q));
    long expect = 2L * ITEMS * (ITEMS + 1) / 2 + 10000L * ITEMS;
    printf("sum of the items: %ld (expected %ld)\n", atomic_load(&total), expect);

    cth_queue_shutdown(q, false); /* q.shutdown(): waiting getters wake up */
    for (int i = 0; i < 3; i++) {
        void *why;
        cth_thread_join(consumers[i], &why, CTH_FOREVER);
        printf("consumer %d stopped: %s\n", i + 1, cth_err_name((int)(intptr_t)why));
        cth_thread_free(consumers[i]);
    }
    printf("put after shutdown: %s\n", cth_err_name(cth_queue_put(q, NULL, 0)));
    cth_queue_free(q);
    return 0;
}
