/*
 * test_bad_input.c - every exported function, called with every invalid
 * argument it can take: NULL handles and out-pointers, negative, NaN and
 * too-large timeouts, zero or negative counts, misuse from the wrong thread
 * or state. Each call must return its documented code, not crash, print
 * nothing and change nothing. every_export_covered fails when a function
 * the headers export is not called here, so a new one cannot slip by.
 */
#include <signal.h>

#include "headers.h"

/* The timeouts no call accepts: what each must answer. */
static const struct {
    double timeout;
    int err;
} bad_timeouts[] = {
    {-2.0, CTH_EINVAL}, {-0.5, CTH_EINVAL}, {-1e300, CTH_EINVAL}, {NAN, CTH_EINVAL},
    {-INFINITY, CTH_EINVAL}, {1e300, CTH_EOVERFLOW}, {INFINITY, CTH_EOVERFLOW},
    {CTH_TIMEOUT_MAX * 2, CTH_EOVERFLOW},
};
#define N_BAD_TIMEOUTS (sizeof bad_timeouts / sizeof bad_timeouts[0])

/* Every bad timeout given to call(obj, timeout) gets its code. */
#define CHECK_BAD_TIMEOUTS(call)                                                                   \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < N_BAD_TIMEOUTS; i_++) {                                           \
            double timeout = bad_timeouts[i_].timeout;                                             \
            CHECK_EQ((call), bad_timeouts[i_].err);                                                \
        }                                                                                          \
    } while (0)

CTH_TEST(base)
{
    CHECK(strcmp(cth_err_name(CTH_ETIMEDOUT), "CTH_ETIMEDOUT") == 0);
    CHECK(strcmp(cth_err_name(12345), "CTH_E?") == 0);
    CHECK(strcmp(cth_err_name(-99999), "CTH_E?") == 0);
    CHECK(cth_strerror(12345) != NULL);
    CHECK(cth_strerror(INT32_MIN) != NULL);
    CHECK(strcmp(cth_strerror(CTH_EBROKEN), cth_strerror(CTH_ESHUTDOWN)) != 0);
}

static void *noop(void *arg)
{
    return arg;
}

CTH_TEST(thread)
{
    cth_thread_t *t = (cth_thread_t *)1;
    CHECK_EQ(cth_thread_create(NULL, noop, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_create(&t, noop, NULL, &(cth_thread_opts){.stack_size = 1}), CTH_EINVAL);
    CHECK(t == NULL);
    CHECK_EQ(cth_thread_create(&t, noop, NULL, &(cth_thread_opts){.daemon = (cth_daemon_t)-1}),
             CTH_EINVAL);
    CHECK_EQ(cth_thread_start(NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_run(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_join(NULL, 0, NULL), CTH_EINVAL);
    CHECK(!cth_thread_is_alive(NULL));
    CHECK_EQ(cth_thread_state(NULL), CTH_THREAD_INITIAL);
    CHECK_EQ(cth_thread_get_name(NULL, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_thread_set_name(NULL, "x"), CTH_EINVAL);
    CHECK_EQ(cth_thread_ident(NULL), 0);
    CHECK_EQ(cth_thread_native_id(NULL), 0);
    CHECK_EQ(cth_thread_daemon(NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_set_daemon(NULL, true), CTH_EINVAL);
    CHECK(cth_thread_ref(NULL) == NULL);
    cth_thread_free(NULL);
    cth_threads_free(NULL, 3);
    CHECK_EQ(cth_enumerate(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_stack_size(1, NULL), CTH_EINVAL);
    CHECK_EQ(cth_get_stack_size(), 0); /* unchanged */
    CHECK_EQ(cth_interrupt_main(0), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_main(-5), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_main(NSIG), CTH_EINVAL);
    CHECK_EQ(cth_sleep(CTH_FOREVER), CTH_EINVAL);
    CHECK_EQ(cth_dump_threads(NULL), CTH_EINVAL);

    /* Bad timeouts and bad names on a real thread leave it untouched. */
    CHECK_OK(cth_thread_create(&t, noop, NULL, NULL));
    CHECK_BAD_TIMEOUTS(cth_thread_join(t, timeout, NULL));
    CHECK_BAD_TIMEOUTS(cth_sleep(timeout));
    CHECK_BAD_TIMEOUTS(cth_shutdown(timeout));
    char before[32], after[32];
    cth_thread_get_name(t, before, sizeof before);
    CHECK_EQ(cth_thread_set_name(t, NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_get_name(t, NULL, 4), CTH_EINVAL);
    cth_thread_get_name(t, after, sizeof after);
    CHECK(strcmp(before, after) == 0);
    CHECK_EQ(cth_thread_state(t), CTH_THREAD_INITIAL);
    /* Misuse by state: join before start; start of main or self. */
    CHECK_EQ(cth_thread_join(t, 0, NULL), CTH_EPERM);
    CHECK_EQ(cth_thread_start(cth_main_thread()), CTH_EPERM);
    CHECK_EQ(cth_thread_join(cth_current_thread(), 0, NULL), CTH_EDEADLK);
    CHECK_OK(cth_thread_start(t));
    CHECK_EQ(cth_thread_start(t), CTH_EPERM);
    CHECK_EQ(cth_thread_set_daemon(t, true), CTH_EPERM);
    CHECK_OK(cth_thread_join(t, CTH_FOREVER, NULL));
    cth_thread_free(t);
    /* The calls that cannot fail, called once so the coverage sees them. */
    CHECK(cth_get_ident() != 0);
    CHECK(cth_get_native_id() > 0);
    CHECK(cth_active_count() >= 1);
}

CTH_TEST(lock)
{
    cth_lock_t lock = CTH_LOCK_INIT;
    CHECK_EQ(cth_lock_init(NULL), CTH_EINVAL);
    CHECK_EQ(cth_lock_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_lock_release(NULL), CTH_EINVAL);
    CHECK(!cth_lock_locked(NULL));
    CHECK_BAD_TIMEOUTS(cth_lock_acquire(&lock, timeout));
    CHECK(!cth_lock_locked(&lock)); /* no bad call took it */
    CHECK_EQ(cth_lock_release(&lock), CTH_EPERM);
    CHECK_OK(cth_lock_init(&lock));
    CHECK_OK(cth_lock_acquire(&lock, 0));
    CHECK_BAD_TIMEOUTS(cth_lock_acquire(&lock, timeout));
    CHECK(cth_lock_locked(&lock));
    CHECK_OK(cth_lock_release(&lock));

    cth_rlock_t rlock = CTH_RLOCK_INIT;
    CHECK_EQ(cth_rlock_init(NULL), CTH_EINVAL);
    CHECK_EQ(cth_rlock_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_rlock_release(NULL), CTH_EINVAL);
    CHECK(!cth_rlock_locked(NULL));
    CHECK(!cth_rlock_is_owned(NULL));
    CHECK_EQ(cth_rlock_recursion_count(NULL), 0);
    CHECK_BAD_TIMEOUTS(cth_rlock_acquire(&rlock, timeout));
    CHECK_EQ(cth_rlock_release(&rlock), CTH_EPERM);
    CHECK_OK(cth_rlock_init(&rlock));
    CHECK_OK(cth_rlock_acquire(&rlock, 0));
    CHECK_BAD_TIMEOUTS(cth_rlock_acquire(&rlock, timeout)); /* re-entry checks too */
    CHECK_EQ(cth_rlock_recursion_count(&rlock), 1);
    CHECK(cth_rlock_locked(&rlock) && cth_rlock_is_owned(&rlock));
    CHECK_OK(cth_rlock_release(&rlock));
    CHECK_EQ(cth_rlock_release(&rlock), CTH_EPERM);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

CTH_TEST(cond)
{
    cth_cond_t cond = CTH_COND_INIT;
    CHECK_EQ(cth_cond_init(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_cond_init_rlock(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_cond_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_cond_release(NULL), CTH_EINVAL);
    CHECK_EQ(cth_cond_wait(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_cond_wait_for(NULL, never, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_cond_notify(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_cond_notify_all(NULL), CTH_EINVAL);
    /* Without the lock: misuse. */
    CHECK_EQ(cth_cond_wait(&cond, 0), CTH_EPERM);
    CHECK_EQ(cth_cond_wait_for(&cond, never, NULL, 0), CTH_EPERM);
    CHECK_EQ(cth_cond_notify(&cond, 1), CTH_EPERM);
    CHECK_EQ(cth_cond_notify_all(&cond), CTH_EPERM);
    CHECK_EQ(cth_cond_release(&cond), CTH_EPERM);
    CHECK_BAD_TIMEOUTS(cth_cond_acquire(&cond, timeout));
    /* With it: bad timeouts and a NULL predicate; the lock stays held. */
    CHECK_OK(cth_cond_acquire(&cond, 0));
    CHECK_BAD_TIMEOUTS(cth_cond_wait(&cond, timeout));
    CHECK_BAD_TIMEOUTS(cth_cond_wait_for(&cond, never, NULL, timeout));
    CHECK_EQ(cth_cond_wait_for(&cond, NULL, NULL, 0), CTH_EINVAL);
    CHECK_OK(cth_cond_notify(&cond, 0));
    CHECK_OK(cth_cond_notify(&cond, -3));
    CHECK_OK(cth_cond_release(&cond));
    /* Over a plain Lock and over a caller's RLock. */
    cth_lock_t lock = CTH_LOCK_INIT;
    cth_rlock_t rlock = CTH_RLOCK_INIT;
    CHECK_OK(cth_cond_init(&cond, &lock));
    CHECK_EQ(cth_cond_wait(&cond, 0), CTH_EPERM);
    CHECK_OK(cth_cond_init_rlock(&cond, &rlock));
    CHECK_EQ(cth_cond_notify_all(&cond), CTH_EPERM);
}

CTH_TEST(semaphore)
{
    cth_sem_t sem = CTH_SEM_INIT(1);
    CHECK_EQ(cth_sem_init(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_bounded_sem_init(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_sem_init(&sem, -1), CTH_EINVAL);
    CHECK_EQ(cth_bounded_sem_init(&sem, INT32_MIN), CTH_EINVAL);
    CHECK_EQ(cth_sem_value(&sem), 1); /* the refused inits changed nothing */
    CHECK_EQ(cth_sem_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_sem_release(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_sem_value(NULL), 0); /* documented: 0 for NULL */
    CHECK_BAD_TIMEOUTS(cth_sem_acquire(&sem, timeout));
    CHECK_EQ(cth_sem_release(&sem, 0), CTH_EINVAL);
    CHECK_EQ(cth_sem_release(&sem, -4), CTH_EINVAL);
    CHECK_EQ(cth_sem_value(&sem), 1);
    CHECK_OK(cth_bounded_sem_init(&sem, 2));
    CHECK_EQ(cth_sem_release(&sem, 1), CTH_EINVAL); /* past the bound */
    CHECK_OK(cth_sem_acquire(&sem, 0));
    CHECK_EQ(cth_sem_release(&sem, 2), CTH_EINVAL); /* all or nothing */
    CHECK_EQ(cth_sem_value(&sem), 1);
}

CTH_TEST(event)
{
    cth_event_t ev = CTH_EVENT_INIT;
    CHECK_EQ(cth_event_init(NULL), CTH_EINVAL);
    CHECK_EQ(cth_event_set(NULL), CTH_EINVAL);
    CHECK_EQ(cth_event_clear(NULL), CTH_EINVAL);
    CHECK(!cth_event_is_set(NULL));
    CHECK_EQ(cth_event_wait(NULL, 0), CTH_EINVAL);
    CHECK_BAD_TIMEOUTS(cth_event_wait(&ev, timeout));
    CHECK(!cth_event_is_set(&ev));
    CHECK_OK(cth_event_set(&ev));
    CHECK_BAD_TIMEOUTS(cth_event_wait(&ev, timeout)); /* checked even when set */
    CHECK(cth_event_is_set(&ev));
}

CTH_TEST(barrier)
{
    cth_barrier_t b = CTH_BARRIER_INIT(2);
    CHECK_EQ(cth_barrier_init(NULL, 2, NULL, NULL, CTH_FOREVER), CTH_EINVAL);
    CHECK_EQ(cth_barrier_init(&b, 0, NULL, NULL, CTH_FOREVER), CTH_EINVAL);
    CHECK_EQ(cth_barrier_init(&b, -1, NULL, NULL, CTH_FOREVER), CTH_EINVAL);
    CHECK_BAD_TIMEOUTS(cth_barrier_init(&b, 2, NULL, NULL, timeout));
    CHECK_EQ(cth_barrier_parties(&b), 2); /* the refused inits changed nothing */
    CHECK_EQ(cth_barrier_wait(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_barrier_reset(NULL), CTH_EINVAL);
    CHECK_EQ(cth_barrier_abort(NULL), CTH_EINVAL);
    CHECK_EQ(cth_barrier_parties(NULL), 0); /* documented: 0 for NULL */
    CHECK_EQ(cth_barrier_n_waiting(NULL), 0);
    CHECK(!cth_barrier_broken(NULL));
    /* Every bad timeout but -2.0, which is CTH_BARRIER_DEFAULT_TIMEOUT here. */
    for (size_t i = 0; i < N_BAD_TIMEOUTS; i++)
        if (bad_timeouts[i].timeout != CTH_BARRIER_DEFAULT_TIMEOUT)
            CHECK_EQ(cth_barrier_wait(&b, bad_timeouts[i].timeout), bad_timeouts[i].err);
    CHECK(!cth_barrier_broken(&b));
    CHECK_EQ(cth_barrier_n_waiting(&b), 0);
}
