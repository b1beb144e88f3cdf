/* SPDX-License-Identifier: MIT */
/*
 * proc_launch.c - starting, watching and reaping the worker processes of a
 * process pool (Linux).
 *
 * Every worker is watched through a pidfd, never its pid alone: a pidfd
 * names one process for as long as it is open, so a pid the system has
 * reused is never signalled or waited for by mistake. pidfd_send_signal
 * kills, poll on the pidfd tells whether the worker has ended, and
 * waitid(P_PIDFD) reaps a worker that is the caller's own child.
 * FORK: fork() in the calling thread; the child sets PR_SET_PDEATHSIG
 * (SIGKILL) and then checks getppid(), so a parent that died before the
 * setting took effect is noticed too, closes every descriptor but 0, 1, 2
 * and its channel, unblocks every signal, runs the entry and _exit()s with
 * its value (so the parent's atexit handlers and stdio buffers, which the
 * child inherited, are not run or flushed twice; an entry flushes what it
 * writes itself). The library's fork handlers have run in the child, as in
 * any fork child of the program. The channel is an AF_UNIX SOCK_SEQPACKET
 * socketpair, close-on-exec on both ends; the parent keeps one end, the
 * worker the other.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deadline.h"
#include "funcref.h"
#include "proc_launch.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* ---- pidfds and descriptors --------------------------------------------------------- */

static int pidfd_open_of(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by default */
}

static int pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The wait status waitpid() would have given, from waitid's siginfo. */
static int status_of(const siginfo_t *info)
{
    switch (info->si_code) {
    case CLD_EXITED: return (info->si_status & 0xff) << 8;
    case CLD_DUMPED: return (info->si_status & 0x7f) | 0x80;
    default: /* CLD_KILLED */ return info->si_status & 0x7f;
    }
}

/* Close every descriptor from `from` up, but keep. Async-signal-safe: it
 * runs in the child of a fork of a multithreaded process. close_range
 * (Linux 5.9) does it in two calls; before it, every descriptor up to the
 * limit is closed one by one. */
static void close_from_except(int from, int keep)
{
    bool ranges_ok;
    if (keep >= from) {
        ranges_ok = (keep == from || syscall(SYS_close_range, from, keep - 1, 0) == 0) &&
                    syscall(SYS_close_range, keep + 1, ~0U, 0) == 0;
    } else {
        ranges_ok = syscall(SYS_close_range, from, ~0U, 0) == 0;
    }
    if (ranges_ok)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = from; fd < max; fd++)
        if (fd != keep)
            close((int)fd);
}

/* The exit status of a worker that could not get as far as its entry. */
#define BOOT_FAILED 127

/* ---- fork ----------------------------------------------------------------------- */

static int launch_fork(cth__proc_entry_fn entry, const void *arg, size_t arg_size,
                       struct cth__proc *proc)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return errno == ENOMEM || errno == ENOBUFS ? CTH_ENOMEM : CTH_EAGAIN;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(BOOT_FAILED);
        close_from_except(3, sv[1]);
        if (sv[0] < 3)
            close(sv[0]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        _exit(entry(arg, arg_size, sv[1]));
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return errno == ENOMEM ? CTH_ENOMEM : CTH_EAGAIN;
    }
    int pidfd = pidfd_open_of(pid);
    if (pidfd < 0) {
        /* Still our unreaped child: its pid is its own until it is waited for. */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sv[0]);
        return CTH_EAGAIN;
    }
    *proc = (struct cth__proc){.pid = pid, .pidfd = pidfd, .chan = sv[0], .method = CTH_START_FORK};
    return 0;
}

/* ---- the interface ------------------------------------------------------------------ */

int cth__proc_launch(cth_start_method_t method, cth__proc_entry_fn entry, const void *arg,
                     size_t arg_size, struct cth__proc *proc)
{
    if (!entry || !proc || (!arg && arg_size))
        return CTH_EINVAL;
    struct cth__funcref ref;
    int rc = cth__funcref_make((const void *)(uintptr_t)entry, &ref);
    if (rc)
        return rc;
    switch (method) {
    case CTH_START_FORK: return launch_fork(entry, arg, arg_size, proc);
    default: return CTH_EINVAL;
    }
}

int cth__proc_kill(struct cth__proc *proc, int sig)
{
    if (proc->reaped)
        return 0;
    if (pidfd_signal(proc->pidfd, sig) == 0 || errno == ESRCH)
        return 0; /* ESRCH: it has ended */
    return errno == EINVAL ? CTH_EINVAL : CTH_EPERM;
}

bool cth__proc_ended(struct cth__proc *proc)
{
    if (proc->reaped)
        return true;
    struct pollfd p = {.fd = proc->pidfd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* Wait until the pidfd is readable (the worker has ended) or the deadline. */
static int wait_ended(struct cth__proc *proc, int64_t deadline)
{
    struct pollfd p = {.fd = proc->pidfd, .events = POLLIN};
    for (;;) {
        int ms = -1;
        if (deadline != CTH__NO_DEADLINE) {
            int64_t left = deadline - cth__now_ns();
            if (left <= 0)
                return poll(&p, 1, 0) > 0 ? 0 : CTH_ETIMEDOUT;
            ms = left > INT32_MAX * (int64_t)1000000 ? INT32_MAX : (int)((left + 999999) / 1000000);
        }
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
    }
}

int cth__proc_wait(struct cth__proc *proc, int64_t deadline)
{
    if (proc->reaped)
        return 0;
    int rc = wait_ended(proc, deadline);
    if (rc)
        return rc;
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid((idtype_t)P_PIDFD, (id_t)proc->pidfd, &info, WEXITED) != 0) {
        if (errno != EINTR) {
            /* Reaped by someone else (a waitpid(-1) of the program): its
             * status is lost; report it as killed. */
            info.si_code = CLD_KILLED;
            info.si_status = SIGKILL;
            break;
        }
    }
    proc->status = status_of(&info);
    proc->reaped = true;
    return 0;
}

void cth__proc_release(struct cth__proc *proc)
{
    if (!proc->reaped) { /* never leave a zombie */
        cth__proc_kill(proc, SIGKILL);
        cth__proc_wait(proc, CTH__NO_DEADLINE);
    }
    if (proc->pidfd >= 0)
        close(proc->pidfd);
    if (proc->chan >= 0)
        close(proc->chan);
    proc->pidfd = proc->chan = -1;
}
