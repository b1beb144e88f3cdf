/* SPDX-License-Identifier: MIT */
/*
 * os.c - the portable thread layer, for the POSIX build (-DCTH_POSIX_FUTEX=ON,
 * and every system without a Linux futex): the same calls as src/linux/os.c
 * from POSIX and the extensions most systems share, each tested for where
 * it is not universal. The main thread is the one that loaded the library
 * (a process's constructors run there), or in a fork child the thread that
 * forked. A thread id is the kernel's where the system exposes one (gettid),
 * else a number drawn once per thread.
 */
#include <sched.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "../platform.h"

#define NAME_MAX_BYTES 16 /* Linux's limit with the NUL, the smallest in use */

static _Thread_local long cached_tid;
#if !defined(__linux__)
static _Atomic long next_tid = 1;
#endif
static pthread_t main_pthread;

/* Before the runtime's constructor asks whether it runs in the main thread. */
__attribute__((constructor(101))) static void os_init(void)
{
    main_pthread = pthread_self();
}

void cth__os_after_fork_child(void)
{
    cached_tid = 0;
    main_pthread = pthread_self();
}

long cth__os_tid(void)
{
    if (!cached_tid) {
#if defined(__linux__)
        cached_tid = (long)syscall(SYS_gettid);
#else
        cached_tid = atomic_fetch_add(&next_tid, 1);
#endif
    }
    return cached_tid;
}

int cth__is_main_thread(void)
{
    return pthread_equal(pthread_self(), main_pthread);
}

static void truncate_name(char *buf, const char *name)
{
    strncpy(buf, name, NAME_MAX_BYTES - 1);
    buf[NAME_MAX_BYTES - 1] = '\0';
}

void cth__os_set_name_self(const char *name)
{
    char buf[NAME_MAX_BYTES];
    truncate_name(buf, name);
#if defined(__APPLE__)
    pthread_setname_np(buf);
#elif defined(__linux__) || defined(__FreeBSD__)
    pthread_setname_np(pthread_self(), buf);
#else
    CTH__UNUSED(buf);
#endif
}

void cth__os_set_name(pthread_t thread, const char *name)
{
    char buf[NAME_MAX_BYTES];
    truncate_name(buf, name);
#if defined(__linux__) || defined(__FreeBSD__)
    pthread_setname_np(thread, buf);
#else
    CTH__UNUSED(thread); /* macOS names only the calling thread */
#endif
}

void cth__os_precise_timeouts_self(void)
{
#if defined(__linux__)
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
#endif
}

int cth__os_cpu_count(void)
{
#if defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

bool cth__os_thread_tryjoin(pthread_t thread)
{
#if defined(__GLIBC__) && !defined(CTH_VALGRIND)
    return pthread_tryjoin_np(thread, NULL) == 0;
#else
    (void)thread;
    return false;
#endif
}

int cth__os_current_cpu(void)
{
#if defined(__GLIBC__)
    return sched_getcpu();
#else
    return -1;
#endif
}

#if defined(__GLIBC__)
/* The C++ ABI's registration of a thread_local destructor; weak, so that
 * without it the caller falls back on its atexit handler. */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso_symbol)
    __attribute__((weak));
#endif

bool cth__os_at_thread_exit(void (*fn)(void *), void *arg, void *dso)
{
#if defined(__GLIBC__)
    return __cxa_thread_atexit_impl && __cxa_thread_atexit_impl(fn, arg, dso) == 0;
#else
    CTH__UNUSED(fn);
    CTH__UNUSED(arg);
    CTH__UNUSED(dso);
    return false;
#endif
}

/* The process pool's shared memory and futexes are Linux's (src/linux/os.c):
 * here a process pool cannot be created. */
int cth__os_futex_wait_shared(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    CTH__UNUSED(addr);
    CTH__UNUSED(expected);
    CTH__UNUSED(deadline);
    return CTH_ENOTSUP;
}

void cth__os_futex_wake_shared(_Atomic uint32_t *addr, int n)
{
    CTH__UNUSED(addr);
    CTH__UNUSED(n);
}

int cth__os_shm_create(size_t size, int *fd)
{
    CTH__UNUSED(size);
    CTH__UNUSED(fd);
    return CTH_ENOTSUP;
}

void *cth__os_shm_map(int fd, size_t size, bool writable)
{
    CTH__UNUSED(fd);
    CTH__UNUSED(size);
    CTH__UNUSED(writable);
    return NULL;
}

void cth__os_shm_unmap(void *addr, size_t size)
{
    CTH__UNUSED(addr);
    CTH__UNUSED(size);
}

int cth__os_shm_reserve(int fd, size_t size)
{
    CTH__UNUSED(fd);
    CTH__UNUSED(size);
    return CTH_ENOTSUP;
}

void *cth__os_shm_map_inherited(int fd, size_t size)
{
    CTH__UNUSED(fd);
    CTH__UNUSED(size);
    return NULL;
}

void cth__os_shm_discard(int fd)
{
    CTH__UNUSED(fd);
}
