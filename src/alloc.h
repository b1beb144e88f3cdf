/* SPDX-License-Identifier: MIT */
/*
 * alloc.h - every allocation of the library, and the tests' fault injection
 * (src/alloc.c).
 */
#ifndef CTH_ALLOC_H
#define CTH_ALLOC_H

#include <stddef.h>

#include "platform.h"

/* Every allocation of the library goes through these, so that the fault
 * injection of the tests (cth__fault_alloc_after) can make the k-th one fail. */
void *cth__malloc(size_t size);
void *cth__calloc(size_t n, size_t size);
void *cth__realloc(void *p, size_t size);
char *cth__strdup(const char *s);
void cth__free(void *p);

/* Whole pages straight from the kernel (mmap/munmap), for memory that must
 * be obtained where malloc is forbidden (SimpleQueue's put, which may run in
 * a signal handler): no lock is taken, only a system call, and the fault
 * injection counts cth__page_alloc like the others. size is a multiple of
 * the page size; cth__page_free takes the same size back. */
void *cth__page_alloc(size_t size);
void cth__page_free(void *p, size_t size);

/* Fault injection, for tests: the next k allocations succeed, then each one
 * fails until this is called again with a negative k (off, the default). */
void cth__fault_alloc_after(long k);

/* Fault injection, for tests: the k-th allocation from now fails, and only
 * that one (k < 0 disarms). Returns the previous state: -2 if an armed
 * failure has happened, the allocations still to go before it if it has
 * not, -1 if none was armed. */
long cth__fault_alloc_once(long k);

/* Whether an injected failure is armed: a cache of freed objects then
 * allocates anyway, so that the k-th allocation is the one a test means. */
bool cth__fault_alloc_armed(void);

/* Fault injection's countdown: whether the event it counts must fail now.
 * countdown < 0 is off (the default: one relaxed load). */
int cth__fault_due(_Atomic long *countdown);

#endif
