/* SPDX-License-Identifier: MIT */
/*
 * timer_record.c - a timer's memory, references and name, and the timer
 * the calling thread runs: what the Timer object (timer.c) and the service
 * (timer_service.c) both use, below both.
 *
 * Memory: a freed timer goes on a stack in the thread that dropped its last
 * reference, up to CACHE_MAX of them, and that thread's next creation takes
 * it back, so that a create+free pair costs no malloc or free (they were a
 * third of a schedule+cancel). Only threads whose stack is sure to be freed
 * keep one (cth__runtime_thread_hooked): a thread cthreading started empties
 * it in the runtime's thread-exit hook (a timer worker's hook after each
 * call leaves it: the thread goes on), the main thread's lasts as long as
 * the process. Nothing is kept under AddressSanitizer nor in valgrind
 * builds (CTH_VALGRIND), which then still see a use after free, nor while a
 * test injects allocation failures.
 */
#include <stdio.h>

#include "alloc.h"
#include "runtime.h"
#include "timer_record.h"

_Thread_local struct cth_timer *cth__timer_running __attribute__((tls_model("initial-exec")));

#if defined(__SANITIZE_ADDRESS__) || defined(CTH_VALGRIND)
#define CACHE_MAX 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHE_MAX 0
#endif
#endif
#ifndef CACHE_MAX
#define CACHE_MAX 1024 /* 96 KiB a thread at most */
#endif

enum { CACHE_UNKNOWN, CACHE_ON, CACHE_OFF };

/* The stack is linked through the timers' arg (a pointer to the start of
 * the next: valgrind sees the stack reachable from the thread's). */
static _Thread_local struct {
    struct cth_timer *top;
    uint32_t n;
    uint32_t mode; /* CACHE_*: whether this thread keeps one, once asked */
} cache __attribute__((tls_model("initial-exec")));

struct cth_timer *cth__timer_alloc(void)
{
    struct cth_timer *t = cache.top;
    if (!t || cth__fault_alloc_armed())
        return cth__malloc(sizeof *t);
    cache.top = t->arg;
    cache.n--;
    return t;
}

void cth__timer_release(struct cth_timer *t)
{
#if CACHE_MAX
    if (cache.n < CACHE_MAX) {
        if (cache.mode == CACHE_UNKNOWN)
            cache.mode = cth__runtime_thread_hooked() ? CACHE_ON : CACHE_OFF;
        if (cache.mode == CACHE_ON) {
            t->arg = cache.top;
            cache.top = t;
            cache.n++;
            return;
        }
    }
#endif
    cth__free(t);
}

#if CACHE_MAX
/* The runtime's thread-exit hook: the thread ends, and its stack with it
 * (not after a timer worker's call: the worker goes on). Whatever it frees
 * after this goes to free(). */
static void cache_thread_exit(void)
{
    if (cth__timer_running)
        return;
    cache.mode = CACHE_OFF;
    while (cache.top) {
        struct cth_timer *t = cache.top;
        cache.top = t->arg;
        cth__free(t);
    }
    cache.n = 0;
}

__attribute__((constructor)) static void timer_module_init(void)
{
    cth__runtime_on_thread_exit(cache_thread_exit);
}
#endif

void cth__timer_unref(struct cth_timer *t)
{
    /* The only reference left is ours: nobody else can change the count,
     * and the acquire orders their last use of the timer before the free. */
    if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1 ||
        atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        cth__free(t->name);
        cth__timer_release(t);
    }
}

size_t cth__timer_name(const struct cth_timer *t, char *buf, size_t size)
{
    if (!buf)
        size = 0;
    int len;
    if (!t)
        len = snprintf(buf, size, "%s", "");
    else if (t->name)
        len = snprintf(buf, size, "%s", t->name);
    else
        len = snprintf(buf, size, "Timer-%u", (unsigned)t->number);
    return len > 0 ? (size_t)len : 0;
}
