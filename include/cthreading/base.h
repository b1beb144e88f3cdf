/*
 * cthreading/base.h - what every cthreading module shares: the export macro,
 * error codes, and the timeout convention.
 *
 * Errors. Every call returns an int: 0 (or a documented non-negative value)
 * on success, a negative CTH_E* code on failure. Where POSIX has the errno,
 * the code is its negation (CTH_EINVAL == -EINVAL); codes of cthreading's
 * own (CTH_EBROKEN, CTH_ESHUTDOWN) live in a reserved range below -10000.
 * Python's exceptions map onto them the same way in every module:
 *
 *   would block, told not to wait (Lock.acquire(False), queue.Empty/Full)  CTH_EAGAIN
 *   a timeout that expired                                                  CTH_ETIMEDOUT
 *   RuntimeError for misuse (start twice, release an unheld lock, ...)      CTH_EPERM
 *   join of the calling thread itself                                       CTH_EDEADLK
 *   ValueError, TypeError for bad arguments                                 CTH_EINVAL
 *   OverflowError (a timeout above CTH_TIMEOUT_MAX)                         CTH_EOVERFLOW
 *   threading.BrokenBarrierError                                            CTH_EBROKEN
 *   queue.ShutDown, or the library shutting down                           CTH_ESHUTDOWN
 *   a pool terminated before the task ran                                   CTH_ECANCELED
 *   the main thread interrupted (cth_interrupt_main, a signal handler)     CTH_EINTR
 *
 * Timeouts. A timeout is a double number of seconds, relative, as in Python:
 * 0 means "do not wait", CTH_FOREVER (-1) means no limit, any other negative
 * value or NaN is CTH_EINVAL, a value above CTH_TIMEOUT_MAX (Python's
 * threading.TIMEOUT_MAX on Linux; +inf included) is CTH_EOVERFLOW. Inside,
 * the timeout becomes one deadline on CLOCK_MONOTONIC and every wait loops
 * on spurious wake-ups against that deadline; the wall clock is never used.
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

/* Error codes (negative). */
#define CTH_OK 0 /* success */
#define CTH_EPERM (-EPERM) /* not permitted now: Python's RuntimeError for misuse */
#define CTH_EINTR (-EINTR) /* the main thread was interrupted (KeyboardInterrupt) */
#define CTH_EAGAIN (-EAGAIN) /* would block, told not to wait (queue.Empty, queue.Full) */
#define CTH_ENOMEM (-ENOMEM) /* out of memory (MemoryError) */
#define CTH_EINVAL (-EINVAL) /* a bad argument (ValueError, TypeError) */
#define CTH_EDEADLK (-EDEADLK) /* would deadlock: a thread joining itself */
#define CTH_ERANGE (-ERANGE) /* a result out of range */
#define CTH_EOVERFLOW (-EOVERFLOW) /* a timeout above CTH_TIMEOUT_MAX (OverflowError) */
#define CTH_ETIMEDOUT (-ETIMEDOUT) /* the timeout expired */
#define CTH_ECANCELED (-ECANCELED) /* canceled: a task dropped by a terminated pool */
/* cthreading's own codes, in a range no errno reaches. */
#define CTH_EBROKEN (-10001) /* a broken barrier (threading.BrokenBarrierError) */
#define CTH_ESHUTDOWN (-10002) /* shut down (queue.ShutDown; the library at exit) */

/* Timeouts, in seconds. */
#define CTH_FOREVER (-1.0) /* no time limit (Python's timeout=None or -1) */
#define CTH_TIMEOUT_MAX 9223372036.0 /* the largest timeout (threading.TIMEOUT_MAX) */

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
