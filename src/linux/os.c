/* SPDX-License-Identifier: MIT */
/*
 * os.c - the Linux thread layer: kernel thread ids, naming, telling the
 * main thread apart (its tid is the pid, in a fork child too), the CPUs the
 * affinity mask allows, timer slack, and glibc's registration of a thread's
 * exit destructor. The tid is cached per thread and the pid per process; a
 * fork child refreshes both (the runtime's fork handler calls
 * cth__os_after_fork_child). Also the process pool's shared memory: a
 * memfd (no name in any file system, so nothing to clean up and nobody else
 * can open it) mapped MAP_SHARED; futex.c has the futexes on it.
 * src/unix/os.c is the portable counterpart.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../platform.h"

#define NAME_MAX_BYTES 16 /* the kernel's limit, TASK_COMM_LEN, with the NUL */

static _Thread_local long cached_tid __attribute__((tls_model("initial-exec")));
static _Atomic long cached_pid;

void cth__os_after_fork_child(void)
{
    cached_tid = 0;
    atomic_store(&cached_pid, 0);
}

long cth__os_tid(void)
{
    if (!cached_tid)
        cached_tid = (long)syscall(SYS_gettid);
    return cached_tid;
}

int cth__is_main_thread(void)
{
    long pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    if (!pid) {
        pid = (long)getpid();
        atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
    }
    return cth__os_tid() == pid;
}

void cth__os_set_name_self(const char *name)
{
    char buf[NAME_MAX_BYTES];
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    prctl(PR_SET_NAME, buf, 0, 0, 0);
}

void cth__os_set_name(pthread_t thread, const char *name)
{
    char buf[NAME_MAX_BYTES];
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    pthread_setname_np(thread, buf);
}

void cth__os_precise_timeouts_self(void)
{
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
}

int cth__os_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cth__os_current_cpu(void)
{
    return sched_getcpu(); /* glibc reads it from rseq, without a system call */
}

bool cth__os_thread_tryjoin(pthread_t thread)
{
#ifdef CTH_VALGRIND
    (void)thread;
    return false;
#else
    return pthread_tryjoin_np(thread, NULL) == 0;
#endif
}

/* The C++ ABI's registration of a thread_local destructor (glibc); weak, so
 * that without it the caller falls back on its atexit handler. */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso_symbol)
    __attribute__((weak));

bool cth__os_at_thread_exit(void (*fn)(void *), void *arg, void *dso)
{
    return __cxa_thread_atexit_impl && __cxa_thread_atexit_impl(fn, arg, dso) == 0;
}

int cth__os_shm_create(size_t size, int *fd)
{
    int f = memfd_create("cthreading", MFD_CLOEXEC);
    if (f < 0)
        return errno == ENOMEM ? CTH_ENOMEM : CTH_EAGAIN;
    if (size > (size_t)INT64_MAX || ftruncate(f, (off_t)size) != 0) {
        close(f);
        return CTH_ENOMEM;
    }
    *fd = f;
    return 0;
}

void *cth__os_shm_map(int fd, size_t size, bool writable)
{
    /* populated at once: one call instead of a fault per page; not inherited
     * by a fork child (a FORK-started worker must not see its siblings') */
    void *addr = mmap(NULL, size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                      MAP_SHARED | MAP_POPULATE, fd, 0);
    if (addr == MAP_FAILED)
        return NULL;
    madvise(addr, size, MADV_DONTFORK);
    return addr;
}

void cth__os_shm_unmap(void *addr, size_t size)
{
    munmap(addr, size);
}

int cth__os_shm_reserve(int fd, size_t size)
{
    int err;
    while ((err = fallocate(fd, 0, 0, (off_t)size)) != 0 && errno == EINTR)
        ;
    return err ? CTH_ENOMEM : 0;
}

void *cth__os_shm_map_inherited(int fd, size_t size)
{
    void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    return addr == MAP_FAILED ? NULL : addr;
}

void cth__os_shm_discard(int fd)
{
    if (ftruncate(fd, 0) != 0) /* cannot fail on a memfd; its close frees the pages anyway */
        return;
}
