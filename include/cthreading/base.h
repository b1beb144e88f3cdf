/* SPDX-License-Identifier: MIT */
/*
 * cthreading/base.h - what every cthreading module shares: the export macro,
 * the version, error codes, the calling conventions and the timeouts.
 *
 * Return values. A call that can fail returns 0 on success or a negative
 * CTH_E* code; a few return a documented non-negative value on success
 * instead of 0 (Barrier.wait's index, cth_imap_next's CTH_IMAP_END). A query
 * that cannot fail returns bool, a count (size_t) or a pointer, and answers
 * a NULL handle with false, 0 or NULL. No call returns 1/0 for true/false.
 *
 * Callbacks. Every user callback that can fail (pool tasks, imap producers,
 * once functions, singleton constructors, local initializers, barrier
 * actions) returns int: 0 is success, any other value its failure. The
 * caller then sees CTH_ETASK, never the callback's value itself, so a task
 * returning -1 does not read as CTH_EPERM; the value, unchanged, is on the
 * AsyncResult (cth_result_task_error) and, for the blocking calls, in the
 * calling thread's cth_task_error(), as errno is. Arguments and names:
 * docs/design.md (Names).
 *
 * Errors. Where POSIX has the errno, a code is its negation (CTH_EINVAL ==
 * -EINVAL); cthreading's own codes live in a reserved range below -10000.
 * Python's exceptions map onto them the same way in every module: the table
 * is in docs/design.md (Errors).
 *
 * Timeouts. Seconds, a double, relative, as in Python: 0 does not wait,
 * CTH_FOREVER (-1) has no limit, another negative value or NaN is CTH_EINVAL,
 * one above CTH_TIMEOUT_MAX is CTH_EOVERFLOW (docs/design.md, Time).
 */
#ifndef CTHREADING_BASE_H
#define CTHREADING_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CTH_API marks the library's exported symbols (the build hides the rest). */
#if defined(CTH_STATIC_DEFINE)
#define CTH_API
#elif defined(_WIN32)
#define CTH_API __declspec(dllimport)
#else
#define CTH_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version of these headers; cth_version() gives the library's. */
#define CTH_VERSION_MAJOR 0        /* major: a new one breaks the ABI */
#define CTH_VERSION_MINOR 1        /* minor */
#define CTH_VERSION_PATCH 0        /* patch level */
#define CTH_VERSION_STRING "0.1.0" /* the three as a string */
/* The version as one number, comparable with <: 0x000100 for 0.1.0. */
#define CTH_VERSION_HEX ((CTH_VERSION_MAJOR << 16) | (CTH_VERSION_MINOR << 8) | CTH_VERSION_PATCH)

/* Error codes (negative). */
#define CTH_OK 0                   /* success */
#define CTH_EPERM (-EPERM)         /* not permitted now: Python's RuntimeError for misuse */
#define CTH_EINTR (-EINTR)         /* the main thread was interrupted (KeyboardInterrupt) */
#define CTH_EAGAIN (-EAGAIN)       /* would block, told not to wait (queue.Empty, queue.Full) */
#define CTH_ENOMEM (-ENOMEM)       /* out of memory (MemoryError) */
#define CTH_EINVAL (-EINVAL)       /* a bad argument (ValueError, TypeError) */
#define CTH_EDEADLK (-EDEADLK)     /* would deadlock: a thread joining itself */
#define CTH_ENOENT (-ENOENT)       /* no such value (AttributeError) */
#define CTH_EOVERFLOW (-EOVERFLOW) /* a value beyond its limit (OverflowError) */
#define CTH_ETIMEDOUT (-ETIMEDOUT) /* the timeout expired */
#define CTH_ECANCELED (-ECANCELED) /* canceled: a task dropped by a terminated pool */
#define CTH_ENOTSUP (-ENOTSUP)     /* not supported here: a pointer call on a process pool */
#define CTH_EPROTO (-EPROTO)       /* a worker process broke the protocol (a bad message) */
/* cthreading's own codes, in a range no errno reaches. */
#define CTH_EBROKEN (-10001)   /* a broken barrier (threading.BrokenBarrierError) */
#define CTH_ESHUTDOWN (-10002) /* shut down (queue.ShutDown; the library at exit) */
#define CTH_ETASK (-10003)     /* a task or callback failed: its value is cth_task_error() */
#define CTH_EWORKER (-10004)   /* the worker process died: cth_task_error() is its wait status */

/* Timeouts, in seconds. */
#define CTH_FOREVER (-1.0)           /* no time limit (Python's timeout=None or -1) */
#define CTH_TIMEOUT_MAX 9223372036.0 /* the largest timeout (threading.TIMEOUT_MAX) */

/*
 * cth_free_fn - frees an item a container or a local drops (opts.free_item
 * of queues, locals and LocalStacks).
 */
typedef void (*cth_free_fn)(void *item);

/*
 * cth_version - the library's version as CTH_VERSION_HEX computes it (the
 * headers a program was built with may be older). Thread-safe.
 */
CTH_API unsigned cth_version(void);

/* cth_version_string - the library's version, "0.1.0"; static, never NULL. */
CTH_API const char *cth_version_string(void);

/*
 * cth_task_error - the value the calling thread's last failed callback
 * returned: set whenever a blocking call (cth_pool_apply, cth_pool_map,
 * cth_imap_next, cth_once_call, cth_singleton_get, cth_barrier_wait,
 * cth_local_get, ...) returns CTH_ETASK, and left alone by every other
 * return, as errno is. 0 in a thread that never saw CTH_ETASK. After
 * CTH_EWORKER (a process pool's worker died running the task) it holds the
 * dead worker's wait status, as waitpid(2) reports it: WIFSIGNALED and
 * WTERMSIG, or WIFEXITED and WEXITSTATUS (0 for a worker that called
 * _exit(0) mid-task).
 * In Python, the exception the blocking call re-raised.
 */
CTH_API int cth_task_error(void);

/*
 * cth_monotonic - seconds on CLOCK_MONOTONIC, the clock every timeout is
 * measured on; only differences are meaningful. Python's time.monotonic().
 */
CTH_API double cth_monotonic(void);

/*
 * cth_strerror - a short English description of an error code.
 * Accepts a CTH_E* code (negative), 0, or any other int; never returns NULL,
 * the string is static. Thread-safe.
 */
CTH_API const char *cth_strerror(int err);

/*
 * cth_err_name - the code's symbolic name: "CTH_ETIMEDOUT", "CTH_OK", or
 * "CTH_E?" for a value that is no cthreading code. Static, never NULL.
 */
CTH_API const char *cth_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
