/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - the library's allocation wrappers and the fault injection's
 * countdowns. With injection off (countdown < 0) they are plain malloc and
 * friends; the countdown is one relaxed atomic, so the cost is a load per
 * allocation.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"

static _Atomic long alloc_countdown = -1;

void cth__fault_alloc_after(long k)
{
    atomic_store(&alloc_countdown, k);
}

int cth__fault_due(_Atomic long *countdown)
{
    long k = atomic_load_explicit(countdown, memory_order_relaxed);
    while (k >= 0) {
        if (k == 0)
            return 1;
        if (atomic_compare_exchange_weak(countdown, &k, k - 1))
            return 0;
    }
    return 0;
}

/* The one-off failure: the countdown to it, -1 when none is armed, -2 once
 * it has happened. */
#define ONCE_OFF (-1L)
#define ONCE_FIRED (-2L)
static _Atomic long alloc_once_countdown = ONCE_OFF;

long cth__fault_alloc_once(long k)
{
    return atomic_exchange(&alloc_once_countdown, k < 0 ? ONCE_OFF : k);
}

static int alloc_once_due(void)
{
    long k = atomic_load_explicit(&alloc_once_countdown, memory_order_relaxed);
    while (k >= 0) {
        if (atomic_compare_exchange_weak(&alloc_once_countdown, &k, k ? k - 1 : ONCE_FIRED))
            return k == 0;
    }
    return 0;
}

bool cth__fault_alloc_armed(void)
{
    return atomic_load_explicit(&alloc_countdown, memory_order_relaxed) >= 0 ||
           atomic_load_explicit(&alloc_once_countdown, memory_order_relaxed) >= 0;
}

static int alloc_fails(void)
{
    return cth__fault_due(&alloc_countdown) || alloc_once_due();
}

void *cth__malloc(size_t size)
{
    return alloc_fails() ? NULL : malloc(size);
}

void *cth__calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : calloc(n, size);
}

void *cth__realloc(void *p, size_t size)
{
    return alloc_fails() ? NULL : realloc(p, size);
}

char *cth__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cth__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void cth__free(void *p)
{
    free(p);
}

void *cth__page_alloc(size_t size)
{
    if (alloc_fails())
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void cth__page_free(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}
