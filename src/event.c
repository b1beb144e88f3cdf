/* SPDX-License-Identifier: MIT */
/*
 * event.c - Event.
 *
 * One atomic word, also the futex: bit 0 is the flag, bit 1 says a waiter
 * may be asleep, the bits above count the set() calls that found the flag
 * clear (the generation). A waiter that finds the flag clear remembers the
 * word, sets bit 1 and sleeps while the word is unchanged; set() bumps the
 * generation, sets the flag and clears bit 1 in one exchange, and makes the
 * wake-up system call only when bit 1 was set. A waiter returns 0 when the
 * flag is set or the generation has moved since it started: so every waiter
 * a set() woke reports it, even if clear() ran before it resumed (gh-57711).
 * clear() touches bit 0 only. (The generation wraps after 2^30 sets: a
 * waiter that slept through exactly that many would miss them.)
 */
#include "cthreading/sync.h"
#include "deadline.h"
#include "wait.h"

_Static_assert(sizeof(cth_event_t) == 8, "cth_event_t ABI");

#define EV_SET 1u
#define EV_SLEEPERS 2u
#define EV_GEN 4u

CTH_API int cth_event_init(cth_event_t *event)
{
    if (!event)
        return CTH_EINVAL;
    atomic_store(CTH__ATOMIC_U32(&event->_word), 0);
    event->_spare = 0;
    return 0;
}

CTH_API int cth_event_set(cth_event_t *event)
{
    if (!event)
        return CTH_EINVAL;
    _Atomic uint32_t *word = CTH__ATOMIC_U32(&event->_word);
    uint32_t w = atomic_load_explicit(word, memory_order_relaxed);
    do {
        if (w & EV_SET)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(word, &w,
                                                    ((w & ~EV_SLEEPERS) + EV_GEN) | EV_SET,
                                                    memory_order_release, memory_order_relaxed));
    if (w & EV_SLEEPERS)
        cth__futex_wake(word, INT32_MAX);
    return 0;
}

CTH_API int cth_event_clear(cth_event_t *event)
{
    if (!event)
        return CTH_EINVAL;
    atomic_fetch_and_explicit(CTH__ATOMIC_U32(&event->_word), ~EV_SET, memory_order_relaxed);
    return 0;
}

CTH_API bool cth_event_is_set(const cth_event_t *event)
{
    if (!event)
        return false;
    return atomic_load_explicit(CTH__ATOMIC_U32(&((cth_event_t *)event)->_word),
                                memory_order_acquire) &
           EV_SET;
}

CTH_API int cth_event_wait(cth_event_t *event, double timeout)
{
    if (!event)
        return CTH_EINVAL;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    _Atomic uint32_t *word = CTH__ATOMIC_U32(&event->_word);
    uint32_t w = atomic_load_explicit(word, memory_order_acquire);
    if (w & EV_SET)
        return 0;
    if (timeout == 0)
        return CTH_ETIMEDOUT;
    uint32_t gen = w & ~(EV_SET | EV_SLEEPERS);
    for (;;) {
        if (!(w & EV_SLEEPERS) &&
            !atomic_compare_exchange_strong_explicit(word, &w, w | EV_SLEEPERS,
                                                     memory_order_acquire, memory_order_acquire)) {
            if ((w & EV_SET) || (w & ~(EV_SET | EV_SLEEPERS)) != gen)
                return 0;
            continue; /* only bit 1 changed: try again */
        }
        w |= EV_SLEEPERS;
        int r = cth__futex_wait(word, w, deadline);
        w = atomic_load_explicit(word, memory_order_acquire);
        if ((w & EV_SET) || (w & ~(EV_SET | EV_SLEEPERS)) != gen)
            return 0;
        if (r)
            return r;
    }
}
