/*
 * os.c - the Linux thread layer: kernel thread ids, naming, and telling the
 * main thread apart (its tid is the pid, in a fork child too). The tid is
 * cached per thread and the pid per process; a fork child refreshes both
 * (thread.c's fork handler calls cth__os_after_fork_child).
 */
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../internal.h"

static _Thread_local long cached_tid;
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
    char buf[16]; /* the kernel's limit, TASK_COMM_LEN, with the NUL */
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    prctl(PR_SET_NAME, buf, 0, 0, 0);
}

void cth__os_precise_timeouts_self(void)
{
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
}
