/* SPDX-License-Identifier: MIT */
/*
 * stress_local.c - thread-locals while threads come and go: threads created
 * and exiting in a loop, each setting values in many locals and a
 * LocalStack, leak nothing (run under ASan's leak checker) and have every
 * value destroyed exactly once; locals created and freed meanwhile by
 * another thread race with those exits.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

#define NLOCALS 64

static atomic_long made, destroyed;

static void count_free(void *p)
{
    atomic_fetch_add(&destroyed, 1);
    free(p);
}

static void *new_value(void)
{
    void *p = malloc(16);
    CHECK(p);
    atomic_fetch_add(&made, 1);
    return p;
}

static cth_local_t *locals[NLOCALS];
static cth_local_stack_t *stack;

static void *short_lived(void *arg)
{
    (void)arg;
    for (int i = 0; i < NLOCALS; i++)
        CHECK_OK(cth_local_set(locals[i], new_value()));
    for (int i = 0; i < NLOCALS; i += 3)
        CHECK_OK(cth_local_set(locals[i], new_value())); /* replaces: old destroyed */
    CHECK_OK(cth_local_stack_push(stack, new_value()));
    CHECK_OK(cth_local_stack_push(stack, new_value()));
    CHECK_EQ(cth_local_stack_depth(stack), 2);
    return NULL;
}

/* Threads created and exiting in a loop, cthreading's and foreign ones. */
CTH_TEST(threads_come_and_go)
{
    for (int i = 0; i < NLOCALS; i++)
        CHECK_OK(cth_local_create(&locals[i], &(cth_local_opts_t){.free_item = count_free}));
    CHECK_OK(cth_local_stack_create(&stack, &(cth_local_stack_opts_t){.free_item = count_free}));
    long rounds = check_iters(300);
    for (long r = 0; r < rounds; r++) {
        cth_thread_t *t[4];
        pthread_t p[2];
        for (int i = 0; i < 4; i++) {
            CHECK_OK(cth_thread_create(&t[i], short_lived, NULL, NULL));
            CHECK_OK(cth_thread_start(t[i]));
        }
        for (int i = 0; i < 2; i++)
            CHECK_OK(pthread_create(&p[i], NULL, short_lived, NULL));
        for (int i = 0; i < 4; i++) {
            CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
            cth_thread_free(t[i]);
        }
        for (int i = 0; i < 2; i++)
            CHECK_OK(pthread_join(p[i], NULL));
        CHECK_EQ(atomic_load(&destroyed), atomic_load(&made));
    }
    for (int i = 0; i < NLOCALS; i++)
        cth_local_free(locals[i]);
    cth_local_stack_free(stack);
    CHECK_EQ(atomic_load(&destroyed), atomic_load(&made));
}

static atomic_int stop;
static cth_local_t *_Atomic churn_local;
static cth_lock_t churn_lock = CTH_LOCK_INIT;

static void *churner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        CTH_SYNCHRONIZED_ON(&churn_lock) {
            cth_local_t *old = atomic_load(&churn_local), *l;
            CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = count_free}));
            atomic_store(&churn_local, l);
            cth_local_free(old);
        }
    }
    return NULL;
}

static void *setter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        /* a local is used only while it cannot be freed: under its lock */
        CTH_SYNCHRONIZED_ON(&churn_lock) {
            CHECK_OK(cth_local_set(atomic_load(&churn_local), new_value()));
        }
    }
    return NULL;
}

/* Locals created and freed in one thread while others set values in them
 * and exit: every value destroyed exactly once (TSan, ASan). */
CTH_TEST(free_while_threads_exit)
{
    cth_local_t *l;
    CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = count_free}));
    atomic_store(&churn_local, l);
    cth_thread_t *c;
    CHECK_OK(cth_thread_create(&c, churner, NULL, NULL));
    CHECK_OK(cth_thread_start(c));
    long rounds = check_iters(300);
    for (long r = 0; r < rounds; r++) {
        cth_thread_t *t[3];
        for (int i = 0; i < 3; i++) {
            CHECK_OK(cth_thread_create(&t[i], setter, NULL, NULL));
            CHECK_OK(cth_thread_start(t[i]));
        }
        for (int i = 0; i < 3; i++) {
            CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
            cth_thread_free(t[i]);
        }
    }
    atomic_store(&stop, 1);
    CHECK_OK(cth_thread_join(c, NULL, CTH_FOREVER));
    cth_thread_free(c);
    cth_local_free(atomic_load(&churn_local));
    CHECK_EQ(atomic_load(&destroyed), atomic_load(&made));
}
