/*
 * headers.cpp - compiled, never run, by tests/compile/check.sh with clang++:
 * the synchronization headers are usable from C++ (extern "C"
 * declarations, no C-only syntax outside the C-only macros), and the
 * C-only macros CTH_SYNCHRONIZED, CTH_SYNCHRONIZED_ON and CTH_GUARD are not
 * defined there.
 */
#include <cthreading/once.h>
#include <cthreading/sync.h>
#include <cthreading/synchronized.h>

#if defined(CTH_SYNCHRONIZED) || defined(CTH_SYNCHRONIZED_ON) || defined(CTH_GUARD)
#error "the guard macros are C only"
#endif

static cth_lock_t lock = CTH_LOCK_INIT;
static cth_rlock_t rlock = CTH_RLOCK_INIT;
static cth_cond_t cond = CTH_COND_INIT_LOCK(&lock);
static cth_sem_t sem = CTH_BOUNDED_SEM_INIT(2);
static cth_event_t event = CTH_EVENT_INIT;
static cth_once_t once = CTH_ONCE_INIT;
static cth_singleton_t singleton = CTH_SINGLETON_INIT;

static int init_once(void *) { return 0; }

static bool always(void *) { return true; }

int headers_from_cpp();

int headers_from_cpp()
{
    cth_guard_t g = cth_guard_lock(&lock); /* the explicit form */
    int err = cth_cond_wait_for(&cond, always, nullptr, 0);
    cth_guard_release(&g);
    g = cth_guard_rlock(&rlock);
    size_t n = cth_sem_value(&sem) + cth_rlock_recursion_count(&rlock);
    cth_guard_release(&g);
    cth_barrier_t barrier = CTH_BARRIER_INIT(2);
    n += cth_barrier_parties(&barrier);
    void *instance = nullptr;
    err |= cth_once_call(&once, init_once, nullptr);
    err |= cth_singleton_get(&singleton, nullptr, nullptr, &instance);
    return err + (int)n + cth_event_is_set(&event);
}
