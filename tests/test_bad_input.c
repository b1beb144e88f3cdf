/* SPDX-License-Identifier: MIT */
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
    {-2.0, CTH_EINVAL},        {-0.5, CTH_EINVAL},
    {-1e300, CTH_EINVAL},      {NAN, CTH_EINVAL},
    {-INFINITY, CTH_EINVAL},   {1e300, CTH_EOVERFLOW},
    {INFINITY, CTH_EOVERFLOW}, {CTH_TIMEOUT_MAX * 2, CTH_EOVERFLOW},
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
    /* The calls that cannot fail, called once so the coverage sees them. */
    CHECK_EQ(cth_version(), CTH_VERSION_HEX);
    CHECK(strcmp(cth_version_string(), CTH_VERSION_STRING) == 0);
    /* base.h's version is the build's (CMakeLists.txt's project version),
     * and the three numbers make the string and the hex. */
    CHECK(strcmp(CTH_VERSION_STRING, CTH_PROJECT_VERSION) == 0);
    char made[32];
    snprintf(made, sizeof made, "%d.%d.%d", CTH_VERSION_MAJOR, CTH_VERSION_MINOR,
             CTH_VERSION_PATCH);
    CHECK(strcmp(made, CTH_VERSION_STRING) == 0);
    CHECK_EQ(cth_task_error(), 0); /* no CTH_ETASK seen in this thread */
    CHECK(cth_monotonic() > 0);
}

static void *noop(void *arg)
{
    return arg;
}

CTH_TEST(thread)
{
    cth_thread_t *t = (cth_thread_t *)1;
    CHECK_EQ(cth_thread_create(NULL, noop, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_create(&t, noop, NULL, &(cth_thread_opts_t){.stack_size = 1}), CTH_EINVAL);
    CHECK(t == NULL);
    CHECK_EQ(cth_thread_create(&t, noop, NULL, &(cth_thread_opts_t){.daemon = (cth_daemon_t)-1}),
             CTH_EINVAL);
    CHECK_EQ(cth_thread_start(NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_run(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_join(NULL, NULL, 0), CTH_EINVAL);
    CHECK(!cth_thread_is_alive(NULL));
    CHECK_EQ(cth_thread_state(NULL), CTH_THREAD_INITIAL);
    CHECK_EQ(cth_thread_get_name(NULL, NULL, 0), 0);
    CHECK_EQ(cth_thread_set_name(NULL, "x"), CTH_EINVAL);
    CHECK_EQ(cth_thread_ident(NULL), 0);
    CHECK_EQ(cth_thread_native_id(NULL), 0);
    CHECK(!cth_thread_daemon(NULL));
    CHECK_EQ(cth_thread_set_daemon(NULL, true), CTH_EINVAL);
    CHECK(cth_thread_ref(NULL) == NULL);
    cth_thread_free(NULL);
    cth_threads_free(NULL, 3);
    CHECK_EQ(cth_enumerate(NULL, 1), cth_active_count()); /* NULL array: only counts */
    CHECK_EQ(cth_stack_size(1, NULL), CTH_EINVAL);
    CHECK_EQ(cth_stack_size(SIZE_MAX, NULL), CTH_EINVAL);
    CHECK_EQ(cth_get_stack_size(), 0); /* unchanged */
    CHECK_EQ(cth_interrupt_main(0), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_main(-5), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_main(NSIG), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_on_signal(0, true), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_on_signal(NSIG, true), CTH_EINVAL);
    CHECK_EQ(cth_interrupt_on_signal(SIGKILL, true), CTH_EINVAL);
    CHECK_EQ(cth_sleep(CTH_FOREVER), CTH_EINVAL);
    CHECK_EQ(cth_dump_threads(NULL), CTH_EINVAL);

    /* Bad timeouts and bad names on a real thread leave it untouched. */
    CHECK_OK(cth_thread_create(&t, noop, NULL, NULL));
    CHECK_BAD_TIMEOUTS(cth_sleep(timeout));
    CHECK_BAD_TIMEOUTS(cth_shutdown(timeout));
    char before[32], after[32];
    cth_thread_get_name(t, before, sizeof before);
    CHECK_EQ(cth_thread_set_name(t, NULL), CTH_EINVAL);
    CHECK_EQ(cth_thread_get_name(t, NULL, 4), strlen(before)); /* NULL buf: size 0 */
    cth_thread_get_name(t, after, sizeof after);
    CHECK(strcmp(before, after) == 0);
    CHECK_EQ(cth_thread_state(t), CTH_THREAD_INITIAL);
    /* Misuse by state: join before start; start of main or self. */
    CHECK_EQ(cth_thread_join(t, NULL, 0), CTH_EPERM);
    CHECK_EQ(cth_thread_start(cth_main_thread()), CTH_EPERM);
    CHECK_EQ(cth_thread_join(cth_current_thread(), NULL, 0), CTH_EDEADLK);
    CHECK_OK(cth_thread_start(t));
    CHECK_BAD_TIMEOUTS(cth_thread_join(t, NULL, timeout)); /* started: the state is checked first */
    CHECK_EQ(cth_thread_start(t), CTH_EPERM);
    CHECK_EQ(cth_thread_set_daemon(t, true), CTH_EPERM);
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
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
    CHECK_EQ(cth_sem_init(&sem, (size_t)INT32_MAX + 1), CTH_EOVERFLOW);
    CHECK_EQ(cth_bounded_sem_init(&sem, SIZE_MAX), CTH_EOVERFLOW);
    CHECK_EQ(cth_sem_value(&sem), 1); /* the refused inits changed nothing */
    CHECK_EQ(cth_sem_acquire(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_sem_release(NULL, 1), CTH_EINVAL);
    CHECK_EQ(cth_sem_value(NULL), 0); /* documented: 0 for NULL */
    CHECK_BAD_TIMEOUTS(cth_sem_acquire(&sem, timeout));
    CHECK_EQ(cth_sem_release(&sem, 0), CTH_EINVAL);
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
    CHECK_EQ(cth_barrier_init(&b, (size_t)INT32_MAX + 1, NULL, NULL, CTH_FOREVER), CTH_EOVERFLOW);
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

static int cmp_ptr(const void *a, const void *b)
{
    return (a > b) - (a < b);
}

CTH_TEST(queue)
{
    cth_queue_t *q = (cth_queue_t *)1;
    void *item = (void *)1;
    void *items[2] = {item, item};
    CHECK_EQ(cth_queue_create(NULL, 1, NULL), CTH_EINVAL);
    CHECK_EQ(cth_queue_create(&q, 1, &(cth_queue_opts_t){.kind = CTH_QUEUE_PRIORITY}), CTH_EINVAL);
    CHECK_EQ(cth_queue_create(&q, 1, &(cth_queue_opts_t){.kind = (cth_queue_kind_t)7}), CTH_EINVAL);
    cth_queue_free(NULL);
    CHECK_EQ(cth_queue_put(NULL, item, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_put_nowait(NULL, item), CTH_EINVAL);
    CHECK_EQ(cth_queue_get(NULL, &item, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_get_nowait(NULL, &item), CTH_EINVAL);
    size_t n;
    CHECK_EQ(cth_queue_put_many(NULL, items, 2, &n, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_get_many(NULL, items, 2, &n, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_qsize(NULL), 0);
    CHECK(cth_queue_empty(NULL));
    CHECK(!cth_queue_full(NULL));
    CHECK_EQ(cth_queue_maxsize(NULL), 0);
    CHECK_EQ(cth_queue_set_maxsize(NULL, 3), CTH_EINVAL);
    CHECK_EQ(cth_queue_task_done(NULL), CTH_EINVAL);
    CHECK_EQ(cth_queue_unfinished_tasks(NULL), 0);
    CHECK_EQ(cth_queue_join(NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_shutdown(NULL, true), CTH_EINVAL);
    CHECK(!cth_queue_is_shutdown(NULL));

    CHECK_OK(cth_queue_create(&q, 1,
                              &(cth_queue_opts_t){.kind = CTH_QUEUE_PRIORITY, .compare = cmp_ptr}));
    CHECK_BAD_TIMEOUTS(cth_queue_put(q, item, timeout));
    CHECK_BAD_TIMEOUTS(cth_queue_put_many(q, items, 1, &n, timeout));
    CHECK_EQ(cth_queue_qsize(q), 0); /* nothing went in */
    CHECK_EQ(cth_queue_unfinished_tasks(q), 0);
    CHECK_EQ(cth_queue_get(q, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_get_nowait(q, NULL), CTH_EINVAL);
    CHECK_EQ(cth_queue_put_many(q, NULL, 2, &n, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_get_many(q, NULL, 2, &n, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_put_many(q, items, 2, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_get_many(q, items, 2, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_queue_task_done(q), CTH_EINVAL); /* too many */
    CHECK_OK(cth_queue_put_nowait(q, item));
    CHECK_BAD_TIMEOUTS(cth_queue_get(q, &item, timeout));
    CHECK_BAD_TIMEOUTS(cth_queue_get_many(q, items, 1, &n, timeout));
    CHECK_BAD_TIMEOUTS(cth_queue_join(q, timeout));
    CHECK_EQ(cth_queue_qsize(q), 1); /* nothing came out */
    CHECK(cth_queue_full(q));
    CHECK_EQ(cth_queue_maxsize(q), 1);
    CHECK_OK(cth_queue_set_maxsize(q, 2));
    CHECK_OK(cth_queue_get_nowait(q, &item));
    CHECK_OK(cth_queue_task_done(q));
    CHECK_OK(cth_queue_shutdown(q, true));
    CHECK(cth_queue_is_shutdown(q));
    CHECK_EQ(cth_queue_put(q, item, 0), CTH_ESHUTDOWN);
    cth_queue_free(q);
}

CTH_TEST(simple_queue)
{
    cth_simple_queue_t *q;
    void *item;
    CHECK_EQ(cth_simple_queue_create(NULL, NULL), CTH_EINVAL);
    cth_simple_queue_free(NULL);
    CHECK_EQ(cth_simple_queue_put(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_get(NULL, &item, 0), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_get_nowait(NULL, &item), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_qsize(NULL), 0);
    CHECK(cth_simple_queue_empty(NULL));
    CHECK_OK(cth_simple_queue_create(&q, NULL));
    CHECK_EQ(cth_simple_queue_get(q, NULL, 0), CTH_EINVAL);
    CHECK_EQ(cth_simple_queue_get_nowait(q, NULL), CTH_EINVAL);
    CHECK_OK(cth_simple_queue_put(q, &item));
    CHECK_BAD_TIMEOUTS(cth_simple_queue_get(q, &item, timeout));
    CHECK_EQ(cth_simple_queue_qsize(q), 1);
    CHECK(!cth_simple_queue_empty(q));
    cth_simple_queue_free(q);
}

static int identity(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static int for_body(void *arg, size_t index)
{
    (void)arg;
    (void)index;
    return 0;
}

static int copy_record(const void *in, void *out)
{
    memcpy(out, in, sizeof(int));
    return 0;
}

static int no_buffer(const void *in, size_t in_size, void **out, size_t *out_size)
{
    (void)in;
    (void)in_size;
    (void)out;
    (void)out_size;
    return 0;
}

static int producer_end(void *ctx, void **item, bool *end)
{
    (void)ctx;
    (void)item;
    *end = true;
    return 0;
}

CTH_TEST(pool)
{
    cth_pool_t *p = (cth_pool_t *)1;
    cth_result_t *r = (cth_result_t *)1;
    cth_imap_t *it = (cth_imap_t *)1;
    void *items[2] = {NULL, NULL}, *results[2], *value;
    CHECK_EQ(cth_pool_create(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.processes = SIZE_MAX}), CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_size(NULL), 0);
    CHECK_EQ(cth_pool_apply(NULL, identity, NULL, &value), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_async(NULL, identity, NULL, NULL, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_map(NULL, identity, items, 2, 0, results), CTH_EINVAL);
    CHECK_EQ(cth_pool_map_async(NULL, identity, items, 2, 0, NULL, results, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_starmap(NULL, identity, items, 2, sizeof items[0], 0, results), CTH_EINVAL);
    CHECK_EQ(
        cth_pool_starmap_async(NULL, identity, items, 2, sizeof items[0], 0, NULL, results, &r),
        CTH_EINVAL);
    CHECK_EQ(cth_pool_parallel_for(NULL, for_body, NULL, 2), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap(NULL, identity, items, 2, 1, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_unordered(NULL, identity, items, 2, 1, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_producer(NULL, identity, producer_end, NULL, 1, 4, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_unordered_producer(NULL, identity, producer_end, NULL, 1, 4, &it),
             CTH_EINVAL);
    int rin[2] = {1, 2}, rout[2] = {0, 0};
    void *buf = (void *)1;
    size_t len = 3;
    CHECK_EQ(cth_pool_map_records(NULL, copy_record, rin, sizeof(int), 2, 0, rout, sizeof(int)),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_map_records_async(NULL, copy_record, rin, sizeof(int), 2, 0, NULL, rout,
                                        sizeof(int), &r),
             CTH_EINVAL);
    CHECK_EQ(
        cth_pool_imap_records(NULL, copy_record, rin, sizeof(int), 2, 0, rout, sizeof(int), &it),
        CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_unordered_records(NULL, copy_record, rin, sizeof(int), 2, 0, rout,
                                             sizeof(int), &it),
             CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer(NULL, no_buffer, rin, 1, &buf, &len), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_buffer_async(NULL, no_buffer, rin, 1, NULL, &r), CTH_EINVAL);
    CHECK_EQ(cth_result_get_buffer(NULL, &buf, &len, 0), CTH_EINVAL);
    CHECK_EQ(cth_pool_shared_alloc(NULL, 8, &buf), CTH_EINVAL);
    CHECK_EQ(cth_pool_shared_free(NULL, rin), CTH_EINVAL);
    CHECK(buf == (void *)1 && len == 3 && rout[0] == 0);
    CHECK_EQ(cth_pool_backend(NULL), CTH_POOL_THREADS);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.backend = (cth_pool_backend_t)7}), CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.task_timeout = NAN}), CTH_EINVAL);
    CHECK_EQ(cth_pool_create(&p, &(cth_pool_opts_t){.task_timeout = 1e300}), CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_close(NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_terminate(NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_join(NULL, CTH_FOREVER), CTH_EINVAL);
    cth_pool_free(NULL);
    CHECK_EQ(cth_result_get(NULL, &value, 0), CTH_EINVAL);
    CHECK_EQ(cth_result_wait(NULL, 0), CTH_EINVAL);
    CHECK(!cth_result_ready(NULL));
    CHECK(!cth_result_successful(NULL));
    CHECK_EQ(cth_result_task_error(NULL), 0);
    cth_result_free(NULL);
    CHECK_EQ(cth_imap_next(NULL, &value, 0), CTH_EINVAL);
    cth_imap_free(NULL);

    CHECK_OK(cth_pool_create(&p, &(cth_pool_opts_t){.processes = 2}));
    CHECK_EQ(cth_pool_size(p), 2);
    CHECK_EQ(cth_pool_apply(p, NULL, NULL, &value), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_async(p, NULL, NULL, NULL, &r), CTH_EINVAL);
    CHECK_EQ(cth_pool_apply_async(p, identity, NULL, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_map(p, NULL, items, 2, 0, results), CTH_EINVAL);
    CHECK_EQ(cth_pool_map(p, identity, NULL, 2, 0, results), CTH_EINVAL);
    CHECK_EQ(cth_pool_starmap(p, identity, items, 2, 0, 0, results), CTH_EINVAL);
    CHECK_EQ(cth_pool_parallel_for(p, NULL, NULL, 2), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap(p, identity, items, 2, 1, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_imap_producer(p, identity, NULL, NULL, 1, 4, &it), CTH_EINVAL);
    CHECK_EQ(cth_pool_join(p, CTH_FOREVER), CTH_EINVAL); /* still running */
    CHECK_BAD_TIMEOUTS(cth_pool_join(p, timeout));
    CHECK_EQ(cth_pool_map_records(p, copy_record, rin, SIZE_MAX, 2, 0, rout, sizeof(int)),
             CTH_EOVERFLOW);
    CHECK_EQ(cth_pool_apply_buffer(p, no_buffer, NULL, 1, &buf, &len), CTH_EINVAL);
    CHECK_EQ(cth_pool_shared_alloc(p, 0, &buf), CTH_EINVAL);
    CHECK_EQ(cth_pool_shared_alloc(p, 8, NULL), CTH_EINVAL);
    CHECK_EQ(cth_pool_shared_alloc(p, SIZE_MAX, &buf), CTH_EOVERFLOW);
    CHECK(buf == (void *)1);
    CHECK_EQ(cth_pool_shared_free(p, rin), CTH_EINVAL); /* not an allocation */
    CHECK_OK(cth_pool_shared_free(p, NULL));
    CHECK_OK(cth_pool_apply_buffer_async(p, no_buffer, rin, 1, NULL, &r));
    CHECK_BAD_TIMEOUTS(cth_result_get_buffer(r, &buf, &len, timeout));
    CHECK_OK(cth_result_get_buffer(r, &buf, &len, CTH_FOREVER));
    CHECK(buf == NULL && len == 0);
    cth_result_free(r);

    CHECK_OK(cth_pool_apply_async(p, identity, items, NULL, &r));
    CHECK_BAD_TIMEOUTS(cth_result_get(r, &value, timeout));
    CHECK_BAD_TIMEOUTS(cth_result_wait(r, timeout));
    CHECK_OK(cth_result_get(r, &value, CTH_FOREVER));
    CHECK(value == items);
    CHECK_BAD_TIMEOUTS(cth_result_get(r, &value, timeout)); /* done: still checked first */
    CHECK(cth_result_successful(r));
    CHECK_EQ(cth_result_task_error(r), 0);
    cth_result_free(r);
    CHECK_OK(cth_pool_imap(p, identity, items, 2, 1, &it));
    CHECK_BAD_TIMEOUTS(cth_imap_next(it, &value, timeout));
    CHECK_OK(cth_imap_next(it, &value, CTH_FOREVER));
    CHECK_OK(cth_imap_next(it, NULL, CTH_FOREVER)); /* the value may be dropped */
    CHECK_EQ(cth_imap_next(it, &value, CTH_FOREVER), CTH_IMAP_END);
    cth_imap_free(it);

    /* Closed: no more work; join works. */
    CHECK_OK(cth_pool_close(p));
    CHECK_EQ(cth_pool_apply(p, identity, NULL, &value), CTH_EINVAL);
    CHECK_EQ(cth_pool_map(p, identity, items, 2, 0, results), CTH_EINVAL);
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    CHECK_OK(cth_pool_terminate(p));
    cth_pool_free(p);
}

static void tick(void *arg)
{
    (void)arg;
}

CTH_TEST(timer)
{
    cth_timer_t *t = (cth_timer_t *)1;
    CHECK_EQ(cth_timer_create(NULL, 0.1, tick, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, 0.1, NULL, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, -1, tick, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, NAN, tick, NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, 1e300, tick, NULL, NULL), CTH_EOVERFLOW);
    CHECK_EQ(cth_timer_create(&t, 0.1, tick, NULL, &(cth_timer_opts_t){.period = -1}), CTH_EINVAL);
    CHECK_EQ(cth_timer_create(&t, 0.1, tick, NULL, &(cth_timer_opts_t){.period = NAN}), CTH_EINVAL);
    CHECK_EQ(cth_timer_start(NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_cancel(NULL), CTH_EINVAL);
    CHECK_EQ(cth_timer_join(NULL, 0), CTH_EINVAL);
    CHECK(!cth_timer_is_alive(NULL));
    CHECK(!cth_timer_finished(NULL));
    CHECK_EQ(cth_timer_state(NULL), CTH_TIMER_INITIAL);
    CHECK(cth_timer_interval(NULL) == 0);
    CHECK(cth_timer_period(NULL) == 0);
    CHECK(cth_timer_function(NULL) == NULL);
    CHECK(cth_timer_arg(NULL) == NULL);
    CHECK(!cth_timer_daemon(NULL));
    CHECK_EQ(cth_timer_get_name(NULL, NULL, 0), 0);
    CHECK(cth_timer_current() == NULL); /* not inside a timer's function */
    cth_timer_free(NULL);

    CHECK_OK(cth_timer_create(&t, 30, tick, &t, NULL));
    CHECK_EQ(cth_timer_join(t, 0), CTH_EPERM); /* before start */
    CHECK_OK(cth_timer_start(t));
    CHECK_EQ(cth_timer_start(t), CTH_EPERM);
    CHECK_BAD_TIMEOUTS(cth_timer_join(t, timeout));
    CHECK(cth_timer_is_alive(t)); /* the bad joins changed nothing */
    CHECK_EQ(cth_timer_interval(t), 30);
    CHECK(cth_timer_function(t) == tick);
    CHECK(cth_timer_arg(t) == &t);
    CHECK_OK(cth_timer_cancel(t));
    CHECK_OK(cth_timer_join(t, CTH_FOREVER));
    CHECK(cth_timer_finished(t));
    cth_timer_free(t);
}

static void free_nothing(void *value)
{
    (void)value;
}

static int make_instance(void *arg, void **instance)
{
    *instance = arg;
    return 0;
}

static int once_body(void *arg)
{
    (void)arg;
    return 0;
}

CTH_TEST(local_once_guard)
{
    cth_local_t *l = (cth_local_t *)1;
    int value;
    CHECK_EQ(cth_local_create(NULL, &(cth_local_opts_t){.free_item = free_nothing}), CTH_EINVAL);
    cth_local_opts_t arg_without_init = {.free_item = free_nothing, .init_arg = &value};
    CHECK_EQ(cth_local_create(&l, &arg_without_init), CTH_EINVAL);
    cth_local_free(NULL);
    CHECK(cth_local_get(NULL) == NULL);
    CHECK_EQ(cth_local_set(NULL, &value), CTH_EINVAL);
    CHECK_EQ(cth_local_delete(NULL), CTH_EINVAL);
    CHECK(cth_local_take(NULL) == NULL);
    CHECK_OK(cth_local_create(&l, &(cth_local_opts_t){.free_item = free_nothing}));
    CHECK(cth_local_get(l) == NULL);
    CHECK_OK(cth_local_set(l, &value));
    CHECK(cth_local_take(l) == &value);
    CHECK_EQ(cth_local_delete(l), CTH_ENOENT); /* nothing to delete */
    cth_local_free(l);

    cth_local_stack_t *s = (cth_local_stack_t *)1;
    CHECK_EQ(cth_local_stack_create(NULL, NULL), CTH_EINVAL);
    cth_local_stack_free(NULL);
    CHECK_EQ(cth_local_stack_push(NULL, &value), CTH_EINVAL);
    CHECK(cth_local_stack_pop(NULL) == NULL);
    CHECK(cth_local_stack_top(NULL) == NULL);
    CHECK_EQ(cth_local_stack_depth(NULL), 0);
    CHECK_EQ(cth_local_stack_release(NULL), 0);
    CHECK_OK(cth_local_stack_create(&s, NULL));
    CHECK_EQ(cth_local_stack_push(s, NULL), CTH_EINVAL);
    CHECK_EQ(cth_local_stack_depth(s), 0);
    CHECK(cth_local_stack_pop(s) == NULL);
    CHECK(cth_local_stack_pop(s) == NULL); /* every time */
    CHECK_EQ(cth_local_stack_release(s), 0);
    cth_local_stack_free(s);

    cth_once_t once = CTH_ONCE_INIT;
    CHECK_EQ(cth_once_call(NULL, once_body, NULL), CTH_EINVAL);
    CHECK_EQ(cth_once_call(&once, NULL, NULL), CTH_EINVAL);
    CHECK(!cth_once_done(NULL));
    CHECK(!cth_once_done(&once)); /* the refused calls did not run it */
    cth_singleton_t single = CTH_SINGLETON_INIT;
    void *inst = NULL;
    CHECK_EQ(cth_singleton_get(NULL, make_instance, &value, &inst), CTH_EINVAL);
    CHECK_EQ(cth_singleton_get(&single, NULL, &value, &inst), CTH_EINVAL);
    CHECK_EQ(cth_singleton_get(&single, make_instance, &value, NULL), CTH_EINVAL);
    CHECK_EQ(cth_singleton_get(&single, make_instance, NULL, &inst), CTH_EINVAL); /* NULL made */
    CHECK_OK(cth_singleton_get(&single, make_instance, &value, &inst));
    CHECK(inst == &value);

    cth_guard_t g = cth_guard_lock(NULL);
    CHECK(!cth_guard_held(&g));
    cth_guard_release(&g);
    g = cth_guard_rlock(NULL);
    CHECK(!cth_guard_held(&g));
    cth_guard_release(NULL);
    CHECK(!cth_guard_held(NULL));
}

/* ---- coverage ------------------------------------------------------------------- */

static char *this_source;
static int uncovered;

static void check_called(const char *name, const char *header, const char *text, const char *at)
{
    (void)text;
    (void)at;
    char call[160];
    snprintf(call, sizeof call, "%s(", name);
    if (!strstr(this_source, call)) {
        fprintf(stderr, "%s (%s) is exported but test_bad_input.c never calls it\n", name, header);
        uncovered++;
    }
}

/* Every function the headers export is called in this file. */
CTH_TEST(every_export_covered)
{
    this_source = headers_slurp_source("tests/test_bad_input.c");
    uncovered = 0;
    int n = headers_for_each_export(check_called);
    CHECK(n > 100);
    CHECK_EQ(uncovered, 0);
    free(this_source);
}
