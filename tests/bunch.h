/* SPDX-License-Identifier: MIT */
/*
 * bunch.h - helpers shared by the sync tests, after CPython's
 * lock_tests.Bunch: start n threads running one function, wait until they
 * have all started or all finished; and a check that a main-thread wait is
 * woken with CTH_EINTR by cth_interrupt_main.
 */
#ifndef CTH_TESTS_BUNCH_H
#define CTH_TESTS_BUNCH_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "check.h"

#define BUNCH_MAX 64

struct bunch {
    cth_thread_t *threads[BUNCH_MAX];
    int n;
    void (*fn)(void *);
    void *arg;
    atomic_int started, finished;
};

static void *bunch_run(void *p)
{
    struct bunch *b = p;
    atomic_fetch_add(&b->started, 1);
    b->fn(b->arg);
    atomic_fetch_add(&b->finished, 1);
    return NULL;
}

/* Start n threads running fn(arg); returns once all have started. */
__attribute__((unused)) static void bunch_start(struct bunch *b, int n, void (*fn)(void *),
                                                void *arg)
{
    CHECK(n <= BUNCH_MAX);
    b->n = n;
    b->fn = fn;
    b->arg = arg;
    atomic_init(&b->started, 0);
    atomic_init(&b->finished, 0);
    for (int i = 0; i < n; i++) {
        CHECK_OK(cth_thread_create(&b->threads[i], bunch_run, b, NULL));
        CHECK_OK(cth_thread_start(b->threads[i]));
    }
    while (atomic_load(&b->started) < n)
        cth_sleep(0.001);
}

/* Join and free every thread of the bunch. */
__attribute__((unused)) static void bunch_join(struct bunch *b)
{
    for (int i = 0; i < b->n; i++) {
        CHECK_OK(cth_thread_join(b->threads[i], NULL, CTH_FOREVER));
        cth_thread_free(b->threads[i]);
    }
    CHECK_EQ(atomic_load(&b->finished), b->n);
}

/* Give other threads time to run (lock_tests' wait_threads_blocked). */
__attribute__((unused)) static void settle(void)
{
    cth_sleep(0.05);
}

/* Spin until *v reaches want, sleeping a little between looks. */
__attribute__((unused)) static void wait_until(atomic_int *v, int want)
{
    while (atomic_load(v) < want)
        cth_sleep(0.001);
}

static volatile sig_atomic_t bunch_sigint_seen;

static void bunch_on_sigint(int sig)
{
    (void)sig;
    bunch_sigint_seen = 1;
}

static void *bunch_interrupter(void *arg)
{
    (void)arg;
    cth_sleep(0.1);
    CHECK_OK(cth_interrupt_main(SIGINT));
    return NULL;
}

/*
 * With a SIGINT handler installed, run wait(arg) in the main thread while a
 * worker calls cth_interrupt_main(SIGINT) after 0.1 s: the wait must return
 * CTH_EINTR (it would otherwise block for good or for long). Returns once
 * the handler has run, so no interruption is left pending.
 */
__attribute__((unused)) static void check_interrupted(int (*wait)(void *), void *arg)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bunch_on_sigint;
    CHECK(sigaction(SIGINT, &sa, NULL) == 0);
    /* The clock starts before the interrupter does: it may run its 0.1 s
     * before this thread gets the CPU back from starting it. */
    double start = check_now();
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, bunch_interrupter, NULL, NULL));
    CHECK_OK(cth_thread_start(t));
    CHECK_EQ(wait(arg), CTH_EINTR);
    CHECK_WAITED_AT_LEAST(start, 0.1);
    /* The signal itself may land during the join: it interrupts it too. */
    int r;
    while ((r = cth_thread_join(t, NULL, CTH_FOREVER)) == CTH_EINTR)
        ;
    CHECK_OK(r);
    while (!bunch_sigint_seen)
        ;
    cth_thread_free(t);
}

/* The bad timeouts every blocking call must refuse: call(arg, timeout). */
__attribute__((unused)) static void check_bad_timeouts(int (*call)(void *, double), void *arg)
{
    CHECK_EQ(call(arg, -0.5), CTH_EINVAL);
    CHECK_EQ(call(arg, -100), CTH_EINVAL);
    CHECK_EQ(call(arg, NAN), CTH_EINVAL);
    CHECK_EQ(call(arg, CTH_TIMEOUT_MAX * 2), CTH_EOVERFLOW);
    CHECK_EQ(call(arg, INFINITY), CTH_EOVERFLOW);
}

/*
 * A timed wait keeps one deadline across its wake-ups (docs/design.md: every
 * wait loops on spurious wake-ups and EINTR against one deadline): a worker
 * runs call(arg, timeout), which must time out, while this thread sends it
 * SIGUSR1 every 2 ms (a handler without SA_RESTART, so each signal ends the
 * worker's sleep early, a spurious wake-up). The call must return
 * CTH_ETIMEDOUT (no spurious success) after at least timeout seconds. A
 * timeout restarted at each wake-up would never expire while the signals
 * go on: the signaller gives up after 30 s, which only such a wait needs.
 */
struct deadline_ctx {
    int (*call)(void *, double);
    void *arg;
    double timeout, waited;
    int result;
    pthread_t self;
    atomic_int ready, done;
};

static void deadline_noop(int sig)
{
    (void)sig;
}

static void deadline_worker(void *p)
{
    struct deadline_ctx *d = p;
    d->self = pthread_self();
    atomic_store(&d->ready, 1);
    double start = check_now();
    d->result = d->call(d->arg, d->timeout);
    d->waited = check_now() - start;
    atomic_store(&d->done, 1);
}

__attribute__((unused)) static void check_deadline_under_signals(int (*call)(void *, double),
                                                                 void *arg, double timeout)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = deadline_noop; /* no SA_RESTART */
    CHECK(sigaction(SIGUSR1, &sa, &old) == 0);
    static struct deadline_ctx d;
    memset(&d, 0, sizeof d);
    d.call = call;
    d.arg = arg;
    d.timeout = timeout;
    struct bunch b;
    bunch_start(&b, 1, deadline_worker, &d);
    wait_until(&d.ready, 1);
    double give_up = check_now() + 30;
    int gave_up = 0;
    long sent = 0;
    while (!atomic_load(&d.done)) {
        if (check_now() > give_up) {
            gave_up = 1;
            break;
        }
        CHECK(pthread_kill(d.self, SIGUSR1) == 0); /* valid until joined */
        sent++;
        cth_sleep(0.002);
    }
    bunch_join(&b);
    CHECK(sigaction(SIGUSR1, &old, NULL) == 0);
    CHECK_EQ(gave_up, 0);
    CHECK(sent > 0);
    CHECK_EQ(d.result, CTH_ETIMEDOUT);
    CHECK(d.waited >= timeout - 0.001);
}

#endif
