/* SPDX-License-Identifier: MIT */
/*
 * barrier_event.c - threading.Event and threading.Barrier: workers wait for
 * a start signal, then go through three phases in step; the barrier's
 * action runs once per phase, in the last thread to arrive. Python:
 *
 *     start = threading.Event(); start.wait(); start.set()
 *     step = threading.Barrier(3, action=phase_done); step.wait()
 */
#include <stdatomic.h>
#include <stdio.h>

#include <cthreading.h>

#define WORKERS 3

static cth_event_t start = CTH_EVENT_INIT;
static cth_barrier_t step;
static atomic_int done_in_phase;
static int phase;

static int phase_done(void *arg)
{
    (void)arg; /* every worker is waiting: the count is exact */
    printf("phase %d: all %d workers done\n", ++phase, atomic_exchange(&done_in_phase, 0));
    return 0;
}

static void *worker(void *arg)
{
    (void)arg;
    cth_event_wait(&start, CTH_FOREVER);
    for (int p = 0; p < 3; p++) {
        atomic_fetch_add(&done_in_phase, 1); /* this phase's work */
        cth_barrier_wait(&step, CTH_FOREVER);
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cth_barrier_init(&step, WORKERS, phase_done, NULL, CTH_FOREVER);
    printf("start.wait(timeout=0.05) before set: %s\n",
           cth_err_name(cth_event_wait(&start, 0.05))); /* Python returns False */
    cth_thread_t *t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        cth_thread_create(&t[i], worker, NULL, NULL);
        cth_thread_start(t[i]);
    }
    printf("start.set()\n");
    cth_event_set(&start);
    for (int i = 0; i < WORKERS; i++) {
        cth_thread_join(t[i], NULL, CTH_FOREVER);
        cth_thread_free(t[i]);
    }
    printf("start.is_set() = %s, barrier broken = %s\n",
           cth_event_is_set(&start) ? "True" : "False",
           cth_barrier_broken(&step) ? "True" : "False");
    cth_barrier_abort(&step); /* a waiter now gets BrokenBarrierError */
    printf("wait after abort(): %s\n", cth_err_name(cth_barrier_wait(&step, CTH_FOREVER)));
    return 0;
}
