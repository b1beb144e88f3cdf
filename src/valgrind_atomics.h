/* SPDX-License-Identifier: MIT */
/*
 * valgrind_atomics.h - C11 atomics that valgrind's helgrind understands.
 * Included only in -DCTH_VALGRIND=ON builds (the helgrind CI run), by
 * platform.h for the library and by tests/check.h for the tests; other
 * builds never see it, so it costs them nothing.
 *
 * Helgrind knows pthread calls, not C11 atomics or futexes. Left alone it
 * reports every concurrent atomic access as a data race, and it misses the
 * ordering that atomics create, so that the data a Lock, a Condition, a
 * queue or a pool hands from one thread to another looks racy as well.
 * Rather than annotate each of several hundred call sites, this header
 * redefines the <stdatomic.h> operations the code uses, keeping their
 * meaning, to tell helgrind what each one does:
 *
 *  - the atomic object is synchronization, not data: its bytes are taken out
 *    of race checking (VALGRIND_HG_DISABLE_CHECKING) before each access;
 *  - an operation with release semantics (release, acq_rel, seq_cst) first
 *    announces ANNOTATE_HAPPENS_BEFORE(object), and one with acquire
 *    semantics (acquire, consume, acq_rel, seq_cst) ends with
 *    ANNOTATE_HAPPENS_AFTER(object). Relaxed operations order nothing.
 *
 * Helgrind joins every "before" on an address into the next "after" on it,
 * so an acquire sees all earlier releases of the object, not only the one
 * it read from (and those of any earlier object at that address); this may
 * hide a race that TSan (which models C11 exactly) still catches, but it
 * never invents one. Blocking in the kernel (futexes) orders nothing more:
 * every wait is followed by an atomic load of the word the waker changed.
 * Fences are not modelled (sem.c's only one orders a Dekker-style check,
 * not data).
 *
 * Futex wakes. Valgrind takes every futex system call for a read of its
 * word, FUTEX_WAKE included, though the kernel reads nothing for a wake (a
 * private futex is known by its address alone). And a wake may come after
 * its waiter has left: queue.c completes a waiter under the queue's lock and
 * wakes it once the lock is released, and meanwhile the waiter can see its
 * word change, return, and reuse that stack for other data (the lock's
 * release wakes the same way, while another thread may free the lock). That
 * is harmless: at worst a spurious wake-up, which every wait allows. But
 * helgrind renews stack memory (checked again, as new) when the stack
 * pointer moves down over it past the 128-byte red zone, so the late wake
 * "reads" the data of the waiter's next frames, and the waiter's next write
 * there is reported as a race with that read, from
 * whatever function then uses those bytes (cth__hg_pre or cth__hg_post in a
 * Barrier's or a Condition's wait, cth_lock_acquire, ...). Taking the word
 * out of checking before the call is not enough: valgrind may switch
 * threads between the two, and the waiter renew the bytes meanwhile, which
 * the model stress test hits. So on x86-64 src/linux/futex.c makes each wake
 * from outside the simulated CPU (VALGRIND_NON_SIMD_CALL2): the kernel sees
 * the same call, valgrind no read. Waits and requeues need nothing: they
 * name a word that is live and already out of checking by its atomics.
 *
 * GCC only (the builtins and statement expressions are GNU C, marked
 * __extension__ for -Wpedantic). Each macro names its temporaries after
 * itself, so that the operations nest without -Wshadow warnings.
 */
#ifndef CTH_VALGRIND_ATOMICS_H
#define CTH_VALGRIND_ATOMICS_H

#include <stdatomic.h>
#include <stddef.h>

#include <valgrind/helgrind.h>

#if defined(__clang__) || !defined(__GNUC__)
#error "CTH_VALGRIND builds need GCC (src/valgrind_atomics.h)"
#endif

#define CTH__HG_RELEASES(mo)                                                                       \
    ((mo) == memory_order_release || (mo) == memory_order_acq_rel || (mo) == memory_order_seq_cst)
#define CTH__HG_ACQUIRES(mo)                                                                       \
    ((mo) == memory_order_acquire || (mo) == memory_order_consume ||                               \
     (mo) == memory_order_acq_rel || (mo) == memory_order_seq_cst)

/* Before the access: the object is not data; a release publishes. */
static inline __attribute__((unused)) void cth__hg_pre(const volatile void *p, size_t size, int mo)
{
    VALGRIND_HG_DISABLE_CHECKING(p, size);
    if (CTH__HG_RELEASES(mo))
        ANNOTATE_HAPPENS_BEFORE(p);
}

/* After the access: an acquire receives what the releases published. */
static inline __attribute__((unused)) void cth__hg_post(const volatile void *p, int mo)
{
    if (CTH__HG_ACQUIRES(mo))
        ANNOTATE_HAPPENS_AFTER(p);
}

#undef atomic_load
#undef atomic_load_explicit
#define atomic_load(p) atomic_load_explicit(p, memory_order_seq_cst)
#define atomic_load_explicit(p, mo)                                                                \
    __extension__({                                                                                \
        __auto_type cth__hg_ld_p = (p);                                                            \
        __typeof__((void)0, *cth__hg_ld_p) cth__hg_ld_v;                                           \
        cth__hg_pre((const volatile void *)cth__hg_ld_p, sizeof *cth__hg_ld_p,                     \
                    memory_order_relaxed);                                                         \
        __atomic_load(cth__hg_ld_p, &cth__hg_ld_v, (mo));                                          \
        cth__hg_post((const volatile void *)cth__hg_ld_p, (mo));                                   \
        cth__hg_ld_v;                                                                              \
    })

#undef atomic_store
#undef atomic_store_explicit
#define atomic_store(p, v) atomic_store_explicit(p, v, memory_order_seq_cst)
#define atomic_store_explicit(p, v, mo)                                                            \
    __extension__({                                                                                \
        __auto_type cth__hg_st_p = (p);                                                            \
        __typeof__((void)0, *cth__hg_st_p) cth__hg_st_v = (v);                                     \
        cth__hg_pre((const volatile void *)cth__hg_st_p, sizeof *cth__hg_st_p, (mo));              \
        __atomic_store(cth__hg_st_p, &cth__hg_st_v, (mo));                                         \
    })

#undef atomic_exchange
#undef atomic_exchange_explicit
#define atomic_exchange(p, v) atomic_exchange_explicit(p, v, memory_order_seq_cst)
#define atomic_exchange_explicit(p, v, mo)                                                         \
    __extension__({                                                                                \
        __auto_type cth__hg_xc_p = (p);                                                            \
        __typeof__((void)0, *cth__hg_xc_p) cth__hg_xc_v = (v), cth__hg_xc_old;                     \
        cth__hg_pre((const volatile void *)cth__hg_xc_p, sizeof *cth__hg_xc_p, (mo));              \
        __atomic_exchange(cth__hg_xc_p, &cth__hg_xc_v, &cth__hg_xc_old, (mo));                     \
        cth__hg_post((const volatile void *)cth__hg_xc_p, (mo));                                   \
        cth__hg_xc_old;                                                                            \
    })

/* A compare-exchange releases only if it may store (success order), and
 * acquires with the order of its outcome. */
#define CTH__HG_CAS(p, expected, desired, weak, succ, fail)                                        \
    __extension__({                                                                                \
        __auto_type cth__hg_cas_p = (p);                                                           \
        __typeof__((void)0, *cth__hg_cas_p) cth__hg_cas_v = (desired);                             \
        cth__hg_pre((const volatile void *)cth__hg_cas_p, sizeof *cth__hg_cas_p, (succ));          \
        _Bool cth__hg_cas_ok = __atomic_compare_exchange(cth__hg_cas_p, (expected),                \
                                                         &cth__hg_cas_v, weak, (succ), (fail));    \
        cth__hg_post((const volatile void *)cth__hg_cas_p, cth__hg_cas_ok ? (succ) : (fail));      \
        cth__hg_cas_ok;                                                                            \
    })
#undef atomic_compare_exchange_strong
#undef atomic_compare_exchange_strong_explicit
#undef atomic_compare_exchange_weak
#undef atomic_compare_exchange_weak_explicit
#define atomic_compare_exchange_strong(p, e, d)                                                    \
    CTH__HG_CAS(p, e, d, 0, memory_order_seq_cst, memory_order_seq_cst)
#define atomic_compare_exchange_strong_explicit(p, e, d, s, f) CTH__HG_CAS(p, e, d, 0, s, f)
#define atomic_compare_exchange_weak(p, e, d)                                                      \
    CTH__HG_CAS(p, e, d, 1, memory_order_seq_cst, memory_order_seq_cst)
#define atomic_compare_exchange_weak_explicit(p, e, d, s, f) CTH__HG_CAS(p, e, d, 1, s, f)

/* fetch_add and friends: one macro for the five operations. */
#define CTH__HG_FETCH(op, p, v, mo)                                                                \
    __extension__({                                                                                \
        __auto_type cth__hg_rmw_p = (p);                                                           \
        cth__hg_pre((const volatile void *)cth__hg_rmw_p, sizeof *cth__hg_rmw_p, (mo));            \
        __auto_type cth__hg_rmw_old = op(cth__hg_rmw_p, (v), (mo));                                \
        cth__hg_post((const volatile void *)cth__hg_rmw_p, (mo));                                  \
        cth__hg_rmw_old;                                                                           \
    })
#undef atomic_fetch_add
#undef atomic_fetch_add_explicit
#undef atomic_fetch_sub
#undef atomic_fetch_sub_explicit
#undef atomic_fetch_or
#undef atomic_fetch_or_explicit
#undef atomic_fetch_xor
#undef atomic_fetch_xor_explicit
#undef atomic_fetch_and
#undef atomic_fetch_and_explicit
#define atomic_fetch_add(p, v) CTH__HG_FETCH(__atomic_fetch_add, p, v, memory_order_seq_cst)
#define atomic_fetch_add_explicit(p, v, mo) CTH__HG_FETCH(__atomic_fetch_add, p, v, mo)
#define atomic_fetch_sub(p, v) CTH__HG_FETCH(__atomic_fetch_sub, p, v, memory_order_seq_cst)
#define atomic_fetch_sub_explicit(p, v, mo) CTH__HG_FETCH(__atomic_fetch_sub, p, v, mo)
#define atomic_fetch_or(p, v) CTH__HG_FETCH(__atomic_fetch_or, p, v, memory_order_seq_cst)
#define atomic_fetch_or_explicit(p, v, mo) CTH__HG_FETCH(__atomic_fetch_or, p, v, mo)
#define atomic_fetch_xor(p, v) CTH__HG_FETCH(__atomic_fetch_xor, p, v, memory_order_seq_cst)
#define atomic_fetch_xor_explicit(p, v, mo) CTH__HG_FETCH(__atomic_fetch_xor, p, v, mo)
#define atomic_fetch_and(p, v) CTH__HG_FETCH(__atomic_fetch_and, p, v, memory_order_seq_cst)
#define atomic_fetch_and_explicit(p, v, mo) CTH__HG_FETCH(__atomic_fetch_and, p, v, mo)

#endif
