/* SPDX-License-Identifier: MIT */
/*
 * sem.c - Semaphore and BoundedSemaphore.
 *
 * The count is one atomic word that is also the futex: acquire takes a unit
 * with a compare-and-swap, and sleeps on the word only while it reads 0.
 * _waiters counts the threads that may sleep, so release makes a system call
 * only when someone may be asleep. The two sides pair up like Dekker's
 * algorithm (sequentially consistent operations): a sleeper publishes itself
 * in _waiters before its last look at the count, a releaser publishes the
 * count before its look at _waiters, so at least one of them sees the other
 * and no wake-up is lost; the kernel re-checks the count before sleeping.
 * _max and _bounded are written only at initialization. cth_sem_init and
 * release keep the count within COUNT_MAX (INT32_MAX), the limit the
 * header documents.
 */
#include <limits.h>

#include "cthreading/sync.h"
#include "deadline.h"
#include "wait.h"

_Static_assert(sizeof(cth_sem_t) == 16, "cth_sem_t ABI");

#define SPIN_TRIES 64
#define COUNT_MAX ((uint32_t)INT32_MAX) /* the count's limit, as documented */

static int sem_init(cth_sem_t *sem, size_t value, bool bounded)
{
    if (!sem)
        return CTH_EINVAL;
    if (value > COUNT_MAX)
        return CTH_EOVERFLOW;
    atomic_store(CTH__ATOMIC_U32(&sem->_value), (uint32_t)value);
    atomic_store(CTH__ATOMIC_U32(&sem->_waiters), 0);
    sem->_max = bounded ? (uint32_t)value : 0;
    sem->_bounded = bounded;
    return 0;
}

CTH_API int cth_sem_init(cth_sem_t *sem, size_t value)
{
    return sem_init(sem, value, false);
}

CTH_API int cth_bounded_sem_init(cth_sem_t *sem, size_t value)
{
    return sem_init(sem, value, true);
}

/* Take a unit if there is one: true on success. */
static bool sem_try(_Atomic uint32_t *value)
{
    uint32_t v = atomic_load_explicit(value, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

CTH_API int cth_sem_acquire(cth_sem_t *sem, double timeout)
{
    if (!sem)
        return CTH_EINVAL;
    int err = cth__check_timeout(timeout);
    if (err)
        return err;
    _Atomic uint32_t *value = CTH__ATOMIC_U32(&sem->_value);
    if (sem_try(value))
        return 0;
    if (timeout == 0)
        return CTH_EAGAIN;
    int64_t deadline = cth__deadline(timeout);
    for (int i = 0; i < SPIN_TRIES; i++) {
        cth__cpu_relax();
        if (atomic_load_explicit(value, memory_order_relaxed) > 0 && sem_try(value))
            return 0;
    }
    _Atomic uint32_t *waiters = CTH__ATOMIC_U32(&sem->_waiters);
    atomic_fetch_add(waiters, 1);
    atomic_thread_fence(memory_order_seq_cst); /* publish before looking at the count */
    int r = 0;
    while (!sem_try(value)) {
        r = cth__futex_wait(value, 0, deadline);
        if (r)
            break;
    }
    atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
    return r;
}

CTH_API int cth_sem_release(cth_sem_t *sem, size_t n)
{
    if (!sem || n == 0)
        return CTH_EINVAL;
    _Atomic uint32_t *value = CTH__ATOMIC_U32(&sem->_value);
    uint32_t limit = sem->_bounded ? sem->_max : COUNT_MAX;
    uint32_t v = atomic_load_explicit(value, memory_order_relaxed);
    do {
        if (v > limit || n > limit - v)
            return sem->_bounded ? CTH_EINVAL : CTH_EOVERFLOW;
    } while (!atomic_compare_exchange_weak(value, &v, v + (uint32_t)n));
    if (atomic_load(CTH__ATOMIC_U32(&sem->_waiters)) > 0)
        cth__futex_wake(value, n > INT32_MAX ? INT32_MAX : (int)n);
    return 0;
}

CTH_API size_t cth_sem_value(const cth_sem_t *sem)
{
    if (!sem)
        return 0;
    return atomic_load_explicit(CTH__ATOMIC_U32(&((cth_sem_t *)sem)->_value), memory_order_relaxed);
}
