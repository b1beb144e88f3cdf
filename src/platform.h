/* SPDX-License-Identifier: MIT */
/*
 * platform.h - the platform layer: the monotonic clock, the OS futex, the
 * OS thread layer, and the small machine helpers every module may use.
 * Implemented per system: src/unix/clock.c, src/linux/futex.c or
 * src/unix/futex_posix.c, src/linux/os.c or src/unix/os.c. Nothing here is
 * exported: every symbol is hidden (see the build) and carries the cth__
 * prefix.
 */
#ifndef CTH_PLATFORM_H
#define CTH_PLATFORM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cthreading/base.h"

/* ---- the clock -------------------------------------------------------------- */

/* A deadline is an absolute CLOCK_MONOTONIC time in nanoseconds. */
#define CTH__NO_DEADLINE INT64_MAX

/* Now, on CLOCK_MONOTONIC, in nanoseconds. */
int64_t cth__now_ns(void);

/* ---- the futex ---------------------------------------------------------------- */

/* The platform's futex (src/linux/futex.c, or src/unix/futex_posix.c):
 * sleep while *addr == expected until the absolute deadline; returns 0
 * (woken, changed, spurious), CTH_ETIMEDOUT, or CTH_EINTR when a signal
 * handler ran. The library's waits go through cth__futex_wait (wait.h). */
int cth__os_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline);
void cth__os_futex_wake(_Atomic uint32_t *addr, int n);

/* Whether cth__os_futex_wake may be called in a signal handler (a plain
 * system call on Linux; the POSIX emulation takes a mutex). */
extern const bool cth__os_futex_wake_signal_safe;

/* Move one thread blocked on from onto to, waking none, if *from still
 * equals expected; it is then woken by a cth__futex_wake of to. Returns how
 * many moved (0 or 1). Where the platform cannot requeue, it wakes the
 * threads on from instead and returns 0: they find their word changed and
 * carry on as if woken from to.
 * (Linux: FUTEX_CMP_REQUEUE; src/unix/futex_posix.c: a wake.) */
int cth__futex_requeue(_Atomic uint32_t *from, uint32_t expected, _Atomic uint32_t *to);

/* ---- the OS thread layer ------------------------------------------------------ */

/* The kernel's id for the calling thread (gettid). */
long cth__os_tid(void);

/* True when the caller is the process's main thread. */
int cth__is_main_thread(void);

/* In a fork child: forget the cached tid and pid. */
void cth__os_after_fork_child(void);

/* Push a name to the OS for the calling thread, truncated to its limit. */
void cth__os_set_name_self(const char *name);

/* Push a name to the OS for another running thread of the process, truncated
 * to its limit (nothing where the system cannot). */
void cth__os_set_name(pthread_t thread, const char *name);

/* Ask the OS to end the calling thread's timed waits as close to their
 * deadline as it can (Linux: a 1 ns timer slack instead of 50 us). The
 * timer service's thread uses it. */
void cth__os_precise_timeouts_self(void);

/* The CPUs the calling thread may run on (its affinity mask, where the
 * system has one), else the CPUs online; at least 1. */
int cth__os_cpu_count(void);

/* The CPU the calling thread runs on at this moment (it may move at any
 * time), or -1 where the system does not say. */
int cth__os_current_cpu(void);

/* Join thread if it has ended already, without waiting: true if it was
 * joined. False where the system has no such call, and in valgrind builds
 * (CTH_VALGRIND: helgrind sees the order pthread_join gives, not this). */
bool cth__os_thread_tryjoin(pthread_t thread);

/* Run fn(arg) when the calling thread exits, before the process's atexit
 * handlers when the caller is the main thread and it returns from main() or
 * calls exit() (glibc's thread_local destructors). dso names the module that
 * registers (any address inside it). Returns false where the C library
 * offers no such registration. */
bool cth__os_at_thread_exit(void (*fn)(void *), void *arg, void *dso);

/* ---- memory and futexes shared between processes ------------------------------- */

/* The process pool's transport (pool_process.c): src/linux/os.c only (the
 * POSIX build has no process pool: src/unix/no_process_pool.c). */

/* The futex of a word in memory shared between processes (a MAP_SHARED
 * mapping): as cth__os_futex_wait and cth__os_futex_wake, but keyed by the
 * memory rather than the address, so processes that map it at different
 * addresses meet. Returns 0 (woken, changed, spurious), CTH_ETIMEDOUT or
 * CTH_EINTR (a signal handler ran). */
int cth__os_futex_wait_shared(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline);
void cth__os_futex_wake_shared(_Atomic uint32_t *addr, int n);

/* New anonymous shared memory of size bytes (> 0), zero-filled, without a
 * name: a descriptor (close-on-exec) that can be mapped, inherited or
 * passed to another process. Returns 0 and *fd; CTH_ENOMEM, CTH_EAGAIN (no
 * descriptor left). */
int cth__os_shm_create(size_t size, int *fd);

/* Map size bytes (> 0) of shared memory read-write, or read-only, its pages
 * populated at once; a fork child does not inherit the mapping. NULL on
 * failure. cth__os_shm_unmap undoes it. */
void *cth__os_shm_map(int fd, size_t size, bool writable);
void cth__os_shm_unmap(void *addr, size_t size);

/* A program's shared allocation (pool_shared.c): give the first size bytes
 * of a memfd their pages now (so that no process faults on them later for
 * want of memory), 0 or CTH_ENOMEM; map it read-write, populated, and
 * inherited by a fork child as shared memory is (NULL on failure; unmap it
 * with cth__os_shm_unmap); and discard its pages at once, though other
 * processes may still map it (they must not touch it again). */
int cth__os_shm_reserve(int fd, size_t size);
void *cth__os_shm_map_inherited(int fd, size_t size);
void cth__os_shm_discard(int fd);

/* ---- machine helpers ------------------------------------------------------------ */

#define CTH__UNUSED(x) ((void)(x))

/* Treat the public struct's plain word as the atomic it is. */
#define CTH__ATOMIC_U32(p) ((_Atomic uint32_t *)(void *)(p))
#define CTH__ATOMIC_UPTR(p) ((_Atomic uintptr_t *)(void *)(p))

/* Spin-loop hint. */
static inline void cth__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#else
    __asm__ __volatile__("" ::: "memory"); /* keeps a pause loop from vanishing */
#endif
}

/* ---- valgrind annotations ------------------------------------------------------- */

/* Built in only with -DCTH_VALGRIND=ON (the helgrind CI run); otherwise
 * nothing. There every C11 atomic operation tells helgrind what it orders
 * (valgrind_atomics.h), which covers the futex code. The macros below add
 * the happens-before edges that go through neither atomics nor the pthread
 * calls helgrind knows (pthread_once): BEFORE on the releasing side, AFTER
 * on the acquiring side, both naming the same address. */
#ifdef CTH_VALGRIND
#include <valgrind/helgrind.h>

#include "valgrind_atomics.h" /* every C11 atomic tells helgrind what it orders */
#define CTH__HAPPENS_BEFORE(addr) ANNOTATE_HAPPENS_BEFORE(addr)
#define CTH__HAPPENS_AFTER(addr) ANNOTATE_HAPPENS_AFTER(addr)
#else
#define CTH__HAPPENS_BEFORE(addr) ((void)0)
#define CTH__HAPPENS_AFTER(addr) ((void)0)
#endif

#endif
