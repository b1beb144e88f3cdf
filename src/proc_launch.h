/* SPDX-License-Identifier: MIT */
/*
 * proc_launch.h - starting one worker process of a process pool by a start
 * method (fork, spawn, forkserver), watching it and reaping it. The worker
 * runs entry(arg, chan) and exits with its return value; chan is the
 * worker's end of a private channel (an AF_UNIX SOCK_SEQPACKET socketpair,
 * close-on-exec on both sides), through which the parent passes it
 * whatever else it needs (descriptors by SCM_RIGHTS, bytes). Under spawn
 * and forkserver the entry is named by its funcref (funcref.h) and arg is
 * copied as bytes; the library's constructor takes over the re-executed
 * program before main() runs.
 */
#ifndef CTH_PROC_LAUNCH_H
#define CTH_PROC_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cthreading/pool.h"

/* The body of a worker process: arg (arg_size bytes, the launcher's copy)
 * and the worker's end of its channel. Returns the process's exit status. */
typedef int (*cth__proc_entry_fn)(const void *arg, size_t arg_size, int chan);

/* A started worker, as its parent sees it. */
struct cth__proc {
    pid_t pid;
    int pidfd;  /* pollable, readable once the worker has ended; -1 if none */
    int chan;   /* the parent's end of the channel */
    int method; /* the cth_start_method_t it was started by (never DEFAULT) */
    bool reaped;
    int status;      /* the wait status, once reaped */
    uint64_t serial; /* forkserver: which server started it, and its number there */
};

/*
 * Start a worker by method (CTH_START_DEFAULT: forkserver). The worker dies
 * with the pool's process: if the parent ends (even by SIGKILL) the worker
 * is killed within about a second. It inherits no descriptor of the pool
 * but its channel. Returns 0 and *proc; CTH_EAGAIN (no process),
 * CTH_ENOMEM, CTH_ENOENT (entry in no loaded object), CTH_EINVAL,
 * CTH_ENOTSUP (no pidfds here: Linux before 5.4, or valgrind 3.19).
 */
int cth__proc_launch(cth_start_method_t method, cth__proc_entry_fn entry, const void *arg,
                     size_t arg_size, struct cth__proc *proc);

/* Send sig to the worker (none once it is reaped). Returns 0 or a code. */
int cth__proc_kill(struct cth__proc *proc, int sig);

/*
 * Wait until the worker has ended, up to deadline (deadline.h; CTH__NO_
 * DEADLINE to wait without limit), and reap it: proc->reaped and
 * proc->status are set, no zombie is left. A fork server's worker is its
 * server's child: the status is the server's report (SIGKILL for a worker
 * whose server died). Returns 0; CTH_ETIMEDOUT.
 */
int cth__proc_wait(struct cth__proc *proc, int64_t deadline);

/* Whether the worker has ended (it may not be reaped yet); never blocks. */
bool cth__proc_ended(struct cth__proc *proc);

/* Close the parent's descriptors of a worker; one not yet reaped is killed
 * (SIGKILL) and reaped first. */
void cth__proc_release(struct cth__proc *proc);

/* In a fork child of the launcher: close the inherited descriptors of a
 * worker that is the parent's, touching neither the worker nor the
 * parent's channel to it. */
void cth__proc_forget(struct cth__proc *proc);

#endif
