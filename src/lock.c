/*
 * lock.c - Lock and RLock.
 *
 * Lock is the three-state futex lock (Drepper, "Futexes are tricky"): the
 * word is 0 unlocked, 1 locked, 2 locked and maybe waited on. Acquire is one
 * compare-and-swap when free; release is one exchange, plus a wake-up only
 * when the word said 2. Any thread may release.
 *
 * RLock is a Lock plus the owner's identity (a per-thread address, see
 * cth__self_token) and a recursion count. Only the owner writes the count;
 * the owner field is atomic so that other threads can read it to learn that
 * they are not the owner.
 */
#include "internal.h"

_Thread_local char cth__self_token_var __attribute__((tls_model("initial-exec")));

_Static_assert(sizeof(cth_lock_t) == 8, "cth_lock_t ABI");
_Static_assert(sizeof(cth_rlock_t) == 24 || sizeof(void *) != 8, "cth_rlock_t ABI");

#define SPIN_TRIES 100

static int lock_acquire_slow(_Atomic uint32_t *state, int64_t deadline)
{
    for (int i = 0; i < SPIN_TRIES; i++) {
        uint32_t expected = 0;
        if (atomic_load_explicit(state, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(state, &expected, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return 0;
        cth__cpu_relax();
    }
    while (atomic_exchange_explicit(state, 2, memory_order_acquire) != 0) {
        int r = cth__futex_wait(state, 2, deadline);
        if (r != 0)
            return r;
    }
    return 0;
}

CTH_API int cth_lock_init(cth_lock_t *lock)
{
    if (!lock)
        return CTH_EINVAL;
    atomic_store(CTH__ATOMIC_U32(&lock->_state), 0);
    lock->_spare = 0;
    return 0;
}

CTH_API int cth_lock_acquire(cth_lock_t *lock, double timeout)
{
    if (!lock)
        return CTH_EINVAL;
    int err = cth__check_timeout(timeout);
    if (err)
        return err;
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t expected = 0;
    if (atomic_compare_exchange_strong_explicit(state, &expected, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
    if (timeout == 0)
        return CTH_EAGAIN;
    return lock_acquire_slow(state, cth__deadline(timeout));
}

int cth__lock_acquire_uninterrupted(cth_lock_t *lock)
{
    int interrupted = 0;
    while (cth_lock_acquire(lock, CTH_FOREVER) == CTH_EINTR)
        interrupted = 1;
    return interrupted;
}

CTH_API int cth_lock_release(cth_lock_t *lock)
{
    if (!lock)
        return CTH_EINVAL;
    _Atomic uint32_t *state = CTH__ATOMIC_U32(&lock->_state);
    uint32_t prev = atomic_exchange_explicit(state, 0, memory_order_release);
    if (prev == 0)
        return CTH_EPERM;
    if (prev == 2)
        cth__futex_wake(state, 1);
    return 0;
}

CTH_API bool cth_lock_locked(const cth_lock_t *lock)
{
    if (!lock)
        return false;
    return atomic_load_explicit(CTH__ATOMIC_U32(&((cth_lock_t *)lock)->_state),
                                memory_order_relaxed) != 0;
}

/* ---- RLock ---------------------------------------------------------------- */

static uintptr_t rlock_owner(const cth_rlock_t *rlock)
{
    return atomic_load_explicit(CTH__ATOMIC_UPTR(&((cth_rlock_t *)rlock)->_owner),
                                memory_order_relaxed);
}

static void rlock_set_owner(cth_rlock_t *rlock, uintptr_t owner)
{
    atomic_store_explicit(CTH__ATOMIC_UPTR(&rlock->_owner), owner, memory_order_relaxed);
}

CTH_API int cth_rlock_init(cth_rlock_t *rlock)
{
    if (!rlock)
        return CTH_EINVAL;
    cth_lock_init(&rlock->_lock);
    rlock_set_owner(rlock, 0);
    rlock->_count = 0;
    rlock->_spare = 0;
    return 0;
}

CTH_API int cth_rlock_acquire(cth_rlock_t *rlock, double timeout)
{
    if (!rlock)
        return CTH_EINVAL;
    uintptr_t me = cth__self_token();
    if (rlock_owner(rlock) == me) {
        int err = cth__check_timeout(timeout);
        if (err)
            return err;
        if (rlock->_count == UINT32_MAX)
            return CTH_EOVERFLOW;
        rlock->_count++;
        return 0;
    }
    int err = cth_lock_acquire(&rlock->_lock, timeout);
    if (err)
        return err;
    rlock_set_owner(rlock, me);
    rlock->_count = 1;
    return 0;
}

CTH_API int cth_rlock_release(cth_rlock_t *rlock)
{
    if (!rlock)
        return CTH_EINVAL;
    if (rlock_owner(rlock) != cth__self_token())
        return CTH_EPERM;
    if (--rlock->_count == 0) {
        rlock_set_owner(rlock, 0);
        cth_lock_release(&rlock->_lock);
    }
    return 0;
}

CTH_API bool cth_rlock_locked(const cth_rlock_t *rlock)
{
    return rlock && cth_lock_locked(&rlock->_lock);
}

CTH_API bool cth_rlock_is_owned(const cth_rlock_t *rlock)
{
    return rlock && rlock_owner(rlock) == cth__self_token();
}

CTH_API unsigned cth_rlock_recursion_count(const cth_rlock_t *rlock)
{
    return cth_rlock_is_owned(rlock) ? rlock->_count : 0;
}

void cth__rlock_release_save(cth_rlock_t *rlock, uint32_t *count)
{
    *count = rlock->_count;
    rlock->_count = 0;
    rlock_set_owner(rlock, 0);
    cth_lock_release(&rlock->_lock);
}

int cth__rlock_acquire_restore(cth_rlock_t *rlock, uint32_t count)
{
    int interrupted = cth__lock_acquire_uninterrupted(&rlock->_lock);
    rlock_set_owner(rlock, cth__self_token());
    rlock->_count = count;
    return interrupted;
}
