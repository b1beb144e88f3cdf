/* SPDX-License-Identifier: MIT */
/*
 * futex_posix.c - a futex emulated with POSIX mutexes and condition
 * variables, for systems without one (build with -DCTH_POSIX_FUTEX=ON to use
 * it on Linux too). Addresses hash into a fixed table of buckets; a wait
 * sleeps on its bucket's condition (CLOCK_MONOTONIC), a wake broadcasts to
 * the bucket, and sleepers on other addresses of the same bucket see a
 * spurious wake-up, which every caller tolerates. A requeue is a wake (the
 * sleepers see their word changed). A bucket's mutex is held
 * from the value check to the sleep, so no wake-up is lost; fork takes
 * every bucket first, and the child starts with fresh ones. Signals do not
 * interrupt a condition wait, so a main-thread wait sees an interrupting
 * signal (wait.c) only once something else wakes it, its deadline or its
 * hour's slice: CTH_EINTR comes promptly only from cth_interrupt_main here.
 */
#include <pthread.h>
#include <time.h>

#include "../platform.h"

#define NBUCKETS 64

struct bucket {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
};

static struct bucket buckets[NBUCKETS];
static pthread_once_t buckets_once = PTHREAD_ONCE_INIT;

static void buckets_make(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    for (int i = 0; i < NBUCKETS; i++) {
        pthread_mutex_init(&buckets[i].mutex, NULL);
        pthread_cond_init(&buckets[i].cond, &attr);
    }
    pthread_condattr_destroy(&attr);
}

/* fork() may come while another thread holds a bucket's mutex; the child
 * would then block for ever on its next futex call. So fork waits until
 * no bucket is held, and the child, whose other threads (and the sleepers
 * on the buckets' conditions) are gone, starts with fresh buckets. Other
 * fork handlers (the library's, the program's) may use futexes, so these
 * must be the outermost: registered first, at load, before any other
 * constructor of the library, their prepare runs last and their parent and
 * child handlers first. */
static void buckets_lock_all(void)
{
    for (int i = 0; i < NBUCKETS; i++)
        pthread_mutex_lock(&buckets[i].mutex);
}

static void buckets_unlock_all(void)
{
    for (int i = NBUCKETS - 1; i >= 0; i--)
        pthread_mutex_unlock(&buckets[i].mutex);
}

static void buckets_init(void)
{
    buckets_make();
    pthread_atfork(buckets_lock_all, buckets_unlock_all, buckets_make);
}

__attribute__((constructor(101))) static void futex_posix_load(void)
{
    pthread_once(&buckets_once, buckets_init);
}

static struct bucket *bucket_of(_Atomic uint32_t *addr)
{
    pthread_once(&buckets_once, buckets_init);
    uintptr_t h = (uintptr_t)addr;
    h ^= h >> 17;
    h *= 0x9E3779B1u;
    return &buckets[(h >> 7) % NBUCKETS];
}

int cth__os_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    struct bucket *b = bucket_of(addr);
    int r = 0;
    pthread_mutex_lock(&b->mutex);
    if (atomic_load(addr) == expected) {
        if (deadline == CTH__NO_DEADLINE) {
            pthread_cond_wait(&b->cond, &b->mutex);
        } else {
            struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
            if (pthread_cond_timedwait(&b->cond, &b->mutex, &ts) != 0 && cth__now_ns() >= deadline)
                r = CTH_ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&b->mutex);
    return r;
}

const bool cth__os_futex_wake_signal_safe = false; /* it takes a bucket's mutex */

void cth__os_futex_wake(_Atomic uint32_t *addr, int n)
{
    CTH__UNUSED(n);
    struct bucket *b = bucket_of(addr);
    pthread_mutex_lock(&b->mutex);
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mutex);
}

int cth__futex_requeue(_Atomic uint32_t *from, uint32_t expected, _Atomic uint32_t *to)
{
    CTH__UNUSED(expected);
    CTH__UNUSED(to);
    cth__os_futex_wake(from, INT32_MAX);
    return 0;
}
