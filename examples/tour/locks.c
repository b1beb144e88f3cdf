/* SPDX-License-Identifier: MIT */
/*
 * locks.c - the tour's section on the synchronization objects: Lock, RLock,
 * Condition, Semaphore, Event and Barrier at work between a few threads.
 */
#include <stdatomic.h>

#include "tour.h"

#define WORKERS 4

static cth_lock_t counter_lock = CTH_LOCK_INIT;
static long counter;
static cth_cond_t box_cond = CTH_COND_INIT;
static int box;
static cth_sem_t slots = CTH_BOUNDED_SEM_INIT(2);
static atomic_int in_slot, max_in_slot;
static cth_event_t go = CTH_EVENT_INIT;
static cth_barrier_t line_up = CTH_BARRIER_INIT(WORKERS);

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    cth_event_wait(&go, CTH_FOREVER); /* everyone starts together */
    for (int i = 0; i < 100000; i++) {
        cth_lock_acquire(&counter_lock, CTH_FOREVER);
        counter++;
        cth_lock_release(&counter_lock);
    }
    cth_sem_acquire(&slots, CTH_FOREVER); /* at most 2 at a time in here */
    int now = atomic_fetch_add(&in_slot, 1) + 1;
    int seen = atomic_load(&max_in_slot);
    while (now > seen && !atomic_compare_exchange_weak(&max_in_slot, &seen, now))
        ;
    cth_sleep(0.02);
    atomic_fetch_sub(&in_slot, 1);
    cth_sem_release(&slots, 1);
    int index = cth_barrier_wait(&line_up, CTH_FOREVER);
    if (index == WORKERS - 1) {
        cth_cond_acquire(&box_cond, CTH_FOREVER);
        box = (int)id + 1;
        cth_cond_notify_all(&box_cond);
        cth_cond_release(&box_cond);
    }
    return NULL;
}

static bool box_full(void *arg)
{
    (void)arg;
    return box != 0;
}

static void tour_locks(void)
{
    tour_code("go = threading.Event(); go.wait()  # in each worker; go.set() in main",
              "cth_event_wait(&go, CTH_FOREVER);  /* go = CTH_EVENT_INIT; cth_event_set(&go) */",
              "with lock: counter += 1",
              "cth_lock_acquire(&lock, CTH_FOREVER); counter++; cth_lock_release(&lock);",
              "r = threading.RLock(); r.acquire(); r.acquire()",
              "cth_rlock_t r = CTH_RLOCK_INIT; cth_rlock_acquire(&r, CTH_FOREVER); /* twice */",
              "with slots: ...  # slots = threading.BoundedSemaphore(2)",
              "cth_sem_acquire(&slots, CTH_FOREVER); ...; cth_sem_release(&slots, 1);",
              "index = line_up.wait()  # line_up = threading.Barrier(4)",
              "int index = cth_barrier_wait(&line_up, CTH_FOREVER);",
              "with box_cond: box_cond.wait_for(lambda: box)",
              "cth_cond_wait_for(&box_cond, box_full, NULL, CTH_FOREVER);  /* acquired */",
              "lock.acquire(timeout=0.05)  # False if still held",
              "cth_lock_acquire(&lock, 0.05)  /* CTH_ETIMEDOUT */", NULL);
    cth_thread_t *t[WORKERS];
    for (long i = 0; i < WORKERS; i++) {
        cth_thread_create(&t[i], worker, (void *)(intptr_t)i, NULL);
        cth_thread_start(t[i]);
    }
    say("%d workers wait on an Event; set() lets them all go", WORKERS);
    cth_event_set(&go);

    cth_rlock_t r = CTH_RLOCK_INIT;
    cth_rlock_acquire(&r, CTH_FOREVER);
    cth_rlock_acquire(&r, CTH_FOREVER);
    say("an RLock taken twice by its owner: recursion count %zu", cth_rlock_recursion_count(&r));
    cth_rlock_release(&r);
    cth_rlock_release(&r);

    cth_cond_acquire(&box_cond, CTH_FOREVER);
    cth_cond_wait_for(&box_cond, box_full, NULL, CTH_FOREVER);
    say("Condition.wait_for: worker %d, the last through the Barrier, filled the box", box - 1);
    cth_cond_release(&box_cond);
    for (int i = 0; i < WORKERS; i++) {
        cth_thread_join(t[i], NULL, CTH_FOREVER);
        cth_thread_free(t[i]);
    }
    say("a Lock kept %d x 100000 increments exact: counter = %ld", WORKERS, counter);
    say("a BoundedSemaphore(2) let at most %d in at once; releasing a 3rd unit: %s",
        atomic_load(&max_in_slot), cth_err_name(cth_sem_release(&slots, 1)));
    cth_lock_acquire(&counter_lock, CTH_FOREVER);
    say("Lock.acquire(timeout=0.05) while held: %s",
        cth_err_name(cth_lock_acquire(&counter_lock, 0.05)));
    cth_lock_release(&counter_lock);
}

TOUR_SECTION(50, "locks", "Locks: Lock, RLock, Condition, Semaphore, Event, Barrier", tour_locks)
