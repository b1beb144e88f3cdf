/* SPDX-License-Identifier: MIT */
/*
 * test_fork.c - every synchronization object inherited by a fork child while
 * other threads were parked in it (issue 15, part 1). Python's rule: in the
 * child the threads that did not survive the fork are gone, and nothing is
 * handed to them: a Queue's put 5 / get 5 works, a notify reaches only the
 * child's own waiters, a Lock released to a waiter that no longer exists can
 * be taken. Each object is checked twice: the child uses it alone, and the
 * child first starts threads that park in it (their records land where the
 * dead threads' records were, on stacks reused from them).
 *
 * A check runs in a forked child that exits 0 when all held (a CHECK
 * aborts); alarm() bounds it, so a hang fails too. The sanitizers cannot
 * start threads in the child of a threaded process (see test_thread's
 * fork_leaves_child_usable), so there only the single-threaded halves run;
 * helgrind takes the child's work for races with the parent's threads.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

#define PARKED 3        /* threads parked in the object at the fork */
#define CHILD_ALARM 20  /* seconds a child may take */
#define SETTLE 0.1      /* time for the threads to park */
#define LOCK_TICKET 4u  /* lock.c: the lock was handed to its waiters */
#define NO_TICKET_YET 3 /* a child's exit status: the case did not arise */

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CHILD_THREADS_WORK 0
#else
#define CHILD_THREADS_WORK 1
#endif

static void skip_where_unsupported(bool threads)
{
    if (RUNNING_ON_VALGRIND)
        CHECK_SKIP("under valgrind");
    if (threads && !CHILD_THREADS_WORK)
        CHECK_SKIP("a sanitizer cannot start threads in a fork child");
}

static cth_thread_t *start(cth_thread_fn fn, void *arg)
{
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, fn, arg, NULL));
    CHECK_OK(cth_thread_start(t));
    return t;
}

/* Join and free n threads; each must have returned NULL (success). */
static void join_all(cth_thread_t **t, int n)
{
    for (int i = 0; i < n; i++) {
        void *r = (void *)1;
        CHECK_OK(cth_thread_join(t[i], &r, CTH_FOREVER));
        CHECK(r == NULL);
        cth_thread_free(t[i]);
    }
}

/* Fork; the child runs body(arg, threads) under alarm() and exits with 0
 * (or the status body exits with); returns the child's exit status. */
static int in_child_status(void (*body)(void *, bool), void *arg, bool threads)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(CHILD_ALARM);
        body(arg, threads);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status)) {
        fprintf(stderr, "fork child ended by signal %d\n", WTERMSIG(status));
        CHECK(WIFEXITED(status));
    }
    return WEXITSTATUS(status);
}

static void in_child(void (*body)(void *, bool), void *arg, bool threads)
{
    CHECK_EQ(in_child_status(body, arg, threads), 0);
}

static void *item(intptr_t v)
{
    return (void *)v;
}

static intptr_t value(void *p)
{
    return (intptr_t)p;
}

/* ---- Queue, LifoQueue, PriorityQueue ------------------------------------------- */

static int compare_values(const void *a, const void *b)
{
    return (value((void *)a) > value((void *)b)) - (value((void *)a) < value((void *)b));
}

static cth_queue_t *queue_of(cth_queue_kind_t kind, size_t maxsize)
{
    cth_queue_opts_t opts = {.kind = kind, .compare = compare_values};
    cth_queue_t *q;
    CHECK_OK(cth_queue_create(&q, maxsize, &opts));
    return q;
}

struct queue_case {
    cth_queue_t *q;
    atomic_long sum; /* what the getters got */
    intptr_t put;    /* what a putter puts */
    double timeout;
};

static void *queue_getter(void *arg)
{
    struct queue_case *c = arg;
    void *it;
    if (cth_queue_get(c->q, &it, c->timeout) != 0)
        return (void *)1;
    atomic_fetch_add(&c->sum, value(it));
    return NULL;
}

static void *queue_putter(void *arg)
{
    struct queue_case *c = arg;
    return cth_queue_put(c->q, item(c->put), c->timeout) == 0 ? NULL : (void *)1;
}

/* Get n items without waiting; their sum. */
static intptr_t get_now(cth_queue_t *q, int n)
{
    intptr_t sum = 0;
    for (int i = 0; i < n; i++) {
        void *it;
        CHECK_OK(cth_queue_get_nowait(q, &it));
        sum += value(it);
    }
    return sum;
}

static void queue_getters_child(void *arg, bool threads)
{
    struct queue_case *c = arg;
    if (threads) {
        /* New getters park where the dead ones did; each gets one item. */
        struct queue_case mine = {.q = c->q, .timeout = 10};
        cth_thread_t *t[PARKED];
        for (int i = 0; i < PARKED; i++)
            t[i] = start(queue_getter, &mine);
        cth_sleep(SETTLE);
        for (int i = 1; i <= PARKED; i++)
            CHECK_OK(cth_queue_put(c->q, item(i), 0));
        join_all(t, PARKED);
        CHECK_EQ(atomic_load(&mine.sum), PARKED * (PARKED + 1) / 2);
    }
    for (int i = 10; i < 15; i++)
        CHECK_OK(cth_queue_put(c->q, item(i), 0));
    CHECK_EQ(cth_queue_qsize(c->q), 5);
    CHECK_EQ(get_now(c->q, 5), 10 + 11 + 12 + 13 + 14);
    void *it;
    CHECK_EQ(cth_queue_get_nowait(c->q, &it), CTH_EAGAIN);
}

/* Getters parked in an empty queue at the fork: the child's items are the
 * child's, none goes to the dead getters. */
static void queue_parked_getters(cth_queue_kind_t kind, bool threads)
{
    skip_where_unsupported(threads);
    struct queue_case c = {.q = queue_of(kind, 0), .timeout = CTH_FOREVER};
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(queue_getter, &c);
    cth_sleep(SETTLE);
    in_child(queue_getters_child, &c, threads);
    for (int i = 0; i < PARKED; i++)
        CHECK_OK(cth_queue_put(c.q, item(1), CTH_FOREVER));
    join_all(t, PARKED);
    CHECK_EQ(atomic_load(&c.sum), PARKED);
    cth_queue_free(c.q);
}

static void queue_putters_child(void *arg, bool threads)
{
    struct queue_case *c = arg;
    void *it;
    if (threads) {
        /* New putters park in the full queue; the gets that free slots
         * take the parent's two items and the new putters' ones, in the
         * kind's order (LIFO takes a refilled one before the second). */
        struct queue_case mine = {.q = c->q, .put = 200, .timeout = 10};
        cth_thread_t *t[PARKED];
        for (int i = 0; i < PARKED; i++)
            t[i] = start(queue_putter, &mine);
        cth_sleep(SETTLE);
        intptr_t sum = 0;
        for (int i = 0; i < 2 + PARKED; i++) {
            CHECK_OK(cth_queue_get(c->q, &it, 10));
            sum += value(it);
        }
        CHECK_EQ(sum, 1 + 2 + PARKED * 200);
        join_all(t, PARKED);
        CHECK_EQ(cth_queue_get_nowait(c->q, &it), CTH_EAGAIN);
        CHECK_OK(cth_queue_put(c->q, item(1), 0));
        CHECK_OK(cth_queue_put(c->q, item(2), 0));
    }
    /* Only the two items the queue held: nothing of the dead putters. */
    CHECK_EQ(get_now(c->q, 2), 1 + 2);
    CHECK_EQ(cth_queue_get_nowait(c->q, &it), CTH_EAGAIN);
    CHECK_OK(cth_queue_put(c->q, item(30), 0));
    CHECK_OK(cth_queue_put(c->q, item(31), 0));
    CHECK_EQ(cth_queue_put(c->q, item(32), 0), CTH_EAGAIN);
    CHECK_EQ(get_now(c->q, 2), 30 + 31);
}

/* Putters parked in a full queue at the fork: the child sees the queue's
 * items only, and its own puts fit in the slots it frees. */
static void queue_parked_putters(cth_queue_kind_t kind, bool threads)
{
    skip_where_unsupported(threads);
    struct queue_case c = {.q = queue_of(kind, 2), .put = 100, .timeout = CTH_FOREVER};
    CHECK_OK(cth_queue_put(c.q, item(1), 0));
    CHECK_OK(cth_queue_put(c.q, item(2), 0));
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(queue_putter, &c);
    cth_sleep(SETTLE);
    in_child(queue_putters_child, &c, threads);
    void *it;
    for (int i = 0; i < 2 + PARKED; i++)
        CHECK_OK(cth_queue_get(c.q, &it, CTH_FOREVER));
    join_all(t, PARKED);
    cth_queue_free(c.q);
}

CTH_TEST(queue_getters_alone)
{
    queue_parked_getters(CTH_QUEUE_FIFO, false);
}

CTH_TEST(queue_getters_threads)
{
    queue_parked_getters(CTH_QUEUE_FIFO, true);
}

CTH_TEST(lifo_getters_alone)
{
    queue_parked_getters(CTH_QUEUE_LIFO, false);
}

CTH_TEST(lifo_getters_threads)
{
    queue_parked_getters(CTH_QUEUE_LIFO, true);
}

CTH_TEST(priority_getters_alone)
{
    queue_parked_getters(CTH_QUEUE_PRIORITY, false);
}

CTH_TEST(priority_getters_threads)
{
    queue_parked_getters(CTH_QUEUE_PRIORITY, true);
}

CTH_TEST(queue_putters_alone)
{
    queue_parked_putters(CTH_QUEUE_FIFO, false);
}

CTH_TEST(queue_putters_threads)
{
    queue_parked_putters(CTH_QUEUE_FIFO, true);
}

CTH_TEST(lifo_putters_alone)
{
    queue_parked_putters(CTH_QUEUE_LIFO, false);
}

CTH_TEST(lifo_putters_threads)
{
    queue_parked_putters(CTH_QUEUE_LIFO, true);
}

CTH_TEST(priority_putters_alone)
{
    queue_parked_putters(CTH_QUEUE_PRIORITY, false);
}

CTH_TEST(priority_putters_threads)
{
    queue_parked_putters(CTH_QUEUE_PRIORITY, true);
}

/* ---- SimpleQueue ------------------------------------------------------------------- */

struct simple_case {
    cth_simple_queue_t *q;
    atomic_long sum;
};

static void *simple_getter(void *arg)
{
    struct simple_case *c = arg;
    void *it;
    if (cth_simple_queue_get(c->q, &it, CTH_FOREVER) != 0)
        return (void *)1;
    atomic_fetch_add(&c->sum, value(it));
    return NULL;
}

static void simple_child(void *arg, bool threads)
{
    struct simple_case *c = arg;
    void *it;
    if (threads) {
        /* A getter that must wait: the turn to sleep was a dead thread's. */
        struct simple_case mine = {.q = c->q};
        cth_thread_t *t = start(simple_getter, &mine);
        cth_sleep(SETTLE);
        CHECK_OK(cth_simple_queue_put(c->q, item(7)));
        join_all(&t, 1);
        CHECK_EQ(atomic_load(&mine.sum), 7);
    }
    for (int i = 10; i < 15; i++)
        CHECK_OK(cth_simple_queue_put(c->q, item(i)));
    intptr_t sum = 0;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(cth_simple_queue_get(c->q, &it, 1.0));
        sum += value(it);
    }
    CHECK_EQ(sum, 10 + 11 + 12 + 13 + 14);
    CHECK_EQ(cth_simple_queue_get(c->q, &it, 0.02), CTH_ETIMEDOUT);
}

static void simple_parked_getters(bool threads)
{
    skip_where_unsupported(threads);
    struct simple_case c;
    CHECK_OK(cth_simple_queue_create(&c.q, NULL));
    atomic_init(&c.sum, 0);
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(simple_getter, &c);
    cth_sleep(SETTLE);
    in_child(simple_child, &c, threads);
    for (int i = 0; i < PARKED; i++)
        CHECK_OK(cth_simple_queue_put(c.q, item(1)));
    join_all(t, PARKED);
    CHECK_EQ(atomic_load(&c.sum), PARKED);
    cth_simple_queue_free(c.q);
}

CTH_TEST(simple_queue_getters_alone)
{
    simple_parked_getters(false);
}

CTH_TEST(simple_queue_getters_threads)
{
    simple_parked_getters(true);
}

/* ---- Condition ------------------------------------------------------------------------ */

struct cond_case {
    cth_lock_t lock;
    cth_cond_t cond;
    bool go;  /* guarded by the condition's lock */
    int woke; /* likewise */
};

static void *cond_waiter(void *arg)
{
    struct cond_case *c = arg;
    CHECK_OK(cth_cond_acquire(&c->cond, CTH_FOREVER));
    while (!c->go)
        if (cth_cond_wait(&c->cond, 10) != 0)
            break;
    c->woke += c->go;
    bool ok = c->go;
    CHECK_OK(cth_cond_release(&c->cond));
    return ok ? NULL : (void *)1;
}

/* The word under the condition: nobody counted a waiter of it. */
static uint32_t cond_lock_word(struct cond_case *c, bool own)
{
    return own ? c->cond._own._lock._state : c->lock._state;
}

static void cond_child(struct cond_case *c, bool threads, bool own)
{
    CHECK_OK(cth_cond_acquire(&c->cond, 1.0));
    c->go = false;
    c->woke = 0;
    CHECK_OK(cth_cond_notify_all(&c->cond));
    CHECK_OK(cth_cond_release(&c->cond));
    CHECK_EQ(cond_lock_word(c, own), 0); /* nothing owed to the dead */
    if (threads) {
        cth_thread_t *t[PARKED];
        for (int i = 0; i < PARKED; i++)
            t[i] = start(cond_waiter, c);
        cth_sleep(SETTLE);
        CHECK_OK(cth_cond_acquire(&c->cond, 1.0));
        c->go = true;
        CHECK_OK(cth_cond_notify(&c->cond, 1));
        CHECK_OK(cth_cond_notify_all(&c->cond));
        CHECK_OK(cth_cond_release(&c->cond));
        join_all(t, PARKED);
        CHECK_EQ(c->woke, PARKED);
        c->go = false;
    }
    CHECK_OK(cth_cond_acquire(&c->cond, 1.0));
    CHECK_EQ(cth_cond_wait(&c->cond, 0.02), CTH_ETIMEDOUT);
    CHECK_OK(cth_cond_notify(&c->cond, 1));
    CHECK_OK(cth_cond_release(&c->cond));
    CHECK_EQ(cond_lock_word(c, own), 0);
}

static void cond_child_lock(void *arg, bool threads)
{
    cond_child(arg, threads, false);
}

static void cond_child_own(void *arg, bool threads)
{
    cond_child(arg, threads, true);
}

/* own: the condition's own RLock, else a Lock. */
static void cond_parked_waiters(bool threads, bool own)
{
    skip_where_unsupported(threads);
    static struct cond_case c;
    memset(&c, 0, sizeof c);
    cth_lock_init(&c.lock);
    cth_cond_init(&c.cond, own ? NULL : &c.lock);
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(cond_waiter, &c);
    cth_sleep(SETTLE);
    in_child(own ? cond_child_own : cond_child_lock, &c, threads);
    CHECK_OK(cth_cond_acquire(&c.cond, CTH_FOREVER));
    c.go = true;
    CHECK_OK(cth_cond_notify_all(&c.cond));
    CHECK_OK(cth_cond_release(&c.cond));
    join_all(t, PARKED);
    CHECK_EQ(c.woke, PARKED);
}

CTH_TEST(cond_waiters_alone)
{
    cond_parked_waiters(false, false);
}

CTH_TEST(cond_waiters_threads)
{
    cond_parked_waiters(true, false);
}

CTH_TEST(cond_rlock_waiters_alone)
{
    cond_parked_waiters(false, true);
}

CTH_TEST(cond_rlock_waiters_threads)
{
    cond_parked_waiters(true, true);
}

/* ---- Lock, RLock ------------------------------------------------------------------------ */

static cth_lock_t shared_lock;
static cth_rlock_t shared_rlock;
static atomic_int lock_stop;

static void *lock_taker(void *arg)
{
    (void)arg;
    while (!atomic_load(&lock_stop)) {
        if (cth_lock_acquire(&shared_lock, CTH_FOREVER) != 0)
            return (void *)1;
        cth_lock_release(&shared_lock);
    }
    return NULL;
}

static void *rlock_taker(void *arg)
{
    (void)arg;
    if (cth_rlock_acquire(&shared_rlock, CTH_FOREVER) != 0)
        return (void *)1;
    cth_rlock_release(&shared_rlock);
    return NULL;
}

static void *lock_once_taker(void *arg)
{
    (void)arg;
    if (cth_lock_acquire(&shared_lock, CTH_FOREVER) != 0)
        return (void *)1;
    return cth_lock_release(&shared_lock) == 0 ? NULL : (void *)1;
}

static void *lock_contender(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        if (cth_lock_acquire(&shared_lock, 5) != 0)
            return (void *)1;
        cth_lock_release(&shared_lock);
    }
    return NULL;
}

/* The child holds the lock it forked with; others were parked on it. */
static void lock_held_child(void *arg, bool threads)
{
    (void)arg;
    CHECK_OK(cth_lock_release(&shared_lock));
    CHECK_EQ(shared_lock._state, 0); /* no waiter left counted */
    CHECK(!cth_lock_locked(&shared_lock));
    CHECK_OK(cth_lock_acquire(&shared_lock, 0));
    CHECK_OK(cth_lock_release(&shared_lock));
    if (threads) {
        cth_thread_t *t[PARKED];
        for (int i = 0; i < PARKED; i++)
            t[i] = start(lock_contender, NULL);
        join_all(t, PARKED);
        CHECK_EQ(shared_lock._state, 0);
    }
}

/* Threads parked on a Lock the forking thread holds. */
static void lock_parked_waiters(bool threads)
{
    skip_where_unsupported(threads);
    cth_lock_init(&shared_lock);
    CHECK_OK(cth_lock_acquire(&shared_lock, 0));
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(lock_once_taker, NULL);
    cth_sleep(SETTLE);
    in_child(lock_held_child, NULL, threads);
    CHECK_OK(cth_lock_release(&shared_lock));
    join_all(t, PARKED);
}

CTH_TEST(lock_waiters_alone)
{
    lock_parked_waiters(false);
}

CTH_TEST(lock_waiters_threads)
{
    lock_parked_waiters(true);
}

static void *lock_try_taker(void *arg)
{
    (void)arg;
    if (cth_lock_acquire(&shared_lock, 0) != 0)
        return (void *)1;
    return cth_lock_release(&shared_lock) == 0 ? NULL : (void *)1;
}

/* The release just before the fork handed the lock to waiters that the
 * child does not have: it is free there. Exits NO_TICKET_YET when the
 * fork came too late (a waiter had taken the lock). */
static void lock_ticket_child(void *arg, bool threads)
{
    (void)arg;
    if (!(atomic_load((_Atomic uint32_t *)&shared_lock._state) & LOCK_TICKET))
        _exit(NO_TICKET_YET);
    CHECK(!cth_lock_locked(&shared_lock));
    CHECK_EQ(cth_lock_release(&shared_lock), CTH_EPERM); /* not held */
    if (threads) {
        cth_thread_t *t = start(lock_try_taker, NULL);
        join_all(&t, 1);
    }
    CHECK_OK(cth_lock_acquire(&shared_lock, 0));
    CHECK_OK(cth_lock_release(&shared_lock));
    CHECK_EQ(shared_lock._state, 0);
}

/* Waiters that waited long enough get the lock handed to them (lock.c's
 * TICKET); fork right after such a release, until a child inherits one. */
static void lock_handed_off(bool threads)
{
    skip_where_unsupported(threads);
    cth_lock_init(&shared_lock);
    atomic_store(&lock_stop, 0);
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(lock_taker, NULL);
    int seen = 0;
    for (int round = 0; round < 300 && !seen; round++) {
        CHECK_OK(cth_lock_acquire(&shared_lock, CTH_FOREVER));
        cth_sleep(0.003); /* the waiters wait past the hand-off threshold */
        CHECK_OK(cth_lock_release(&shared_lock));
        int status = in_child_status(lock_ticket_child, NULL, threads);
        CHECK(status == 0 || status == NO_TICKET_YET);
        seen = status == 0;
    }
    atomic_store(&lock_stop, 1);
    join_all(t, PARKED);
    if (!seen)
        CHECK_SKIP("no fork came before a hand-off was taken");
}

CTH_TEST(lock_handed_off_alone)
{
    lock_handed_off(false);
}

CTH_TEST(lock_handed_off_threads)
{
    lock_handed_off(true);
}

static void rlock_held_child(void *arg, bool threads)
{
    (void)arg;
    CHECK_EQ(cth_rlock_recursion_count(&shared_rlock), 2);
    CHECK_OK(cth_rlock_release(&shared_rlock));
    CHECK_OK(cth_rlock_release(&shared_rlock));
    CHECK_EQ(shared_rlock._lock._state, 0);
    if (threads) {
        cth_thread_t *t[PARKED];
        for (int i = 0; i < PARKED; i++)
            t[i] = start(rlock_taker, NULL);
        join_all(t, PARKED);
    }
    CHECK_OK(cth_rlock_acquire(&shared_rlock, 0));
    CHECK_OK(cth_rlock_release(&shared_rlock));
    CHECK_EQ(shared_rlock._lock._state, 0);
}

static void rlock_parked_waiters(bool threads)
{
    skip_where_unsupported(threads);
    cth_rlock_init(&shared_rlock);
    CHECK_OK(cth_rlock_acquire(&shared_rlock, 0));
    CHECK_OK(cth_rlock_acquire(&shared_rlock, 0));
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(rlock_taker, NULL);
    cth_sleep(SETTLE);
    in_child(rlock_held_child, NULL, threads);
    CHECK_OK(cth_rlock_release(&shared_rlock));
    CHECK_OK(cth_rlock_release(&shared_rlock));
    join_all(t, PARKED);
}

CTH_TEST(rlock_waiters_alone)
{
    rlock_parked_waiters(false);
}

CTH_TEST(rlock_waiters_threads)
{
    rlock_parked_waiters(true);
}

/* ---- Semaphore, Event ------------------------------------------------------------------- */

static cth_sem_t shared_sem;
static cth_event_t shared_event;

static void *sem_taker(void *arg)
{
    (void)arg;
    return cth_sem_acquire(&shared_sem, 10) == 0 ? NULL : (void *)1;
}

static void *event_waiter(void *arg)
{
    (void)arg;
    return cth_event_wait(&shared_event, 10) == 0 && cth_event_is_set(&shared_event) ? NULL
                                                                                     : (void *)1;
}

static void sem_child(void *arg, bool threads)
{
    (void)arg;
    if (threads) {
        cth_thread_t *t[PARKED];
        for (int i = 0; i < PARKED; i++)
            t[i] = start(sem_taker, NULL);
        cth_sleep(SETTLE);
        CHECK_OK(cth_sem_release(&shared_sem, PARKED));
        join_all(t, PARKED);
    }
    CHECK_OK(cth_sem_release(&shared_sem, 2));
    CHECK_OK(cth_sem_acquire(&shared_sem, 0));
    CHECK_OK(cth_sem_acquire(&shared_sem, 0));
    CHECK_EQ(cth_sem_acquire(&shared_sem, 0.01), CTH_ETIMEDOUT);
}

static void sem_parked_waiters(bool threads)
{
    skip_where_unsupported(threads);
    cth_sem_init(&shared_sem, 0);
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(sem_taker, NULL);
    cth_sleep(SETTLE);
    in_child(sem_child, NULL, threads);
    CHECK_OK(cth_sem_release(&shared_sem, PARKED));
    join_all(t, PARKED);
}

CTH_TEST(sem_waiters_alone)
{
    sem_parked_waiters(false);
}

CTH_TEST(sem_waiters_threads)
{
    sem_parked_waiters(true);
}

static void event_child(void *arg, bool threads)
{
    (void)arg;
    CHECK(!cth_event_is_set(&shared_event));
    CHECK_EQ(cth_event_wait(&shared_event, 0.01), CTH_ETIMEDOUT);
    if (threads) {
        cth_thread_t *t[PARKED];
        for (int i = 0; i < PARKED; i++)
            t[i] = start(event_waiter, NULL);
        cth_sleep(SETTLE);
        CHECK_OK(cth_event_set(&shared_event));
        join_all(t, PARKED);
    }
    CHECK_OK(cth_event_set(&shared_event));
    CHECK_OK(cth_event_wait(&shared_event, 0));
    CHECK_OK(cth_event_clear(&shared_event));
    CHECK_EQ(cth_event_wait(&shared_event, 0.01), CTH_ETIMEDOUT);
}

static void event_parked_waiters(bool threads)
{
    skip_where_unsupported(threads);
    cth_event_init(&shared_event);
    cth_thread_t *t[PARKED];
    for (int i = 0; i < PARKED; i++)
        t[i] = start(event_waiter, NULL);
    cth_sleep(SETTLE);
    in_child(event_child, NULL, threads);
    CHECK_OK(cth_event_set(&shared_event));
    join_all(t, PARKED);
}

CTH_TEST(event_waiters_alone)
{
    event_parked_waiters(false);
}

CTH_TEST(event_waiters_threads)
{
    event_parked_waiters(true);
}

/* ---- Barrier ------------------------------------------------------------------------------ */

static cth_barrier_t shared_barrier;

static void *barrier_party(void *arg)
{
    (void)arg;
    return cth_barrier_wait(&shared_barrier, 10) >= 0 ? NULL : (void *)1;
}

/* The party waiting at the fork does not count in the child. */
static void barrier_child(void *arg, bool threads)
{
    (void)arg;
    if (threads) {
        for (int cycle = 0; cycle < 2; cycle++) {
            cth_thread_t *t = start(barrier_party, NULL);
            int index = cth_barrier_wait(&shared_barrier, 10);
            CHECK(index == 0 || index == 1);
            join_all(&t, 1);
        }
    } else {
        CHECK_EQ(cth_barrier_wait(&shared_barrier, 0.05), CTH_EBROKEN);
    }
    CHECK_OK(cth_barrier_reset(&shared_barrier));
    CHECK(!cth_barrier_broken(&shared_barrier));
    CHECK_EQ(cth_barrier_n_waiting(&shared_barrier), 0);
}

static void barrier_parked_party(bool threads)
{
    skip_where_unsupported(threads);
    CHECK_OK(cth_barrier_init(&shared_barrier, 2, NULL, NULL, CTH_FOREVER));
    cth_thread_t *t = start(barrier_party, NULL);
    cth_sleep(SETTLE);
    CHECK_EQ(cth_barrier_n_waiting(&shared_barrier), 1);
    in_child(barrier_child, NULL, threads);
    CHECK(cth_barrier_wait(&shared_barrier, 10) >= 0);
    join_all(&t, 1);
}

CTH_TEST(barrier_party_alone)
{
    barrier_parked_party(false);
}

CTH_TEST(barrier_party_threads)
{
    barrier_parked_party(true);
}

/* ---- Pool ---------------------------------------------------------------------------------- */

static cth_event_t pool_go;

static int pool_blocked_task(void *arg, void **result)
{
    (void)arg;
    cth_event_wait(&pool_go, CTH_FOREVER);
    *result = NULL;
    return 0;
}

struct pool_case {
    cth_pool_t *pool;
    cth_result_t *running, *queued;
};

/* pool.h's rule: an inherited pool is terminated, its tasks pending at the
 * fork never complete there, and it can be joined and freed. */
static void pool_child(void *arg, bool threads)
{
    (void)threads;
    struct pool_case *c = arg;
    cth_result_t *res;
    CHECK_EQ(cth_pool_apply_async(c->pool, pool_blocked_task, NULL, NULL, &res), CTH_EINVAL);
    CHECK_OK(cth_pool_close(c->pool));
    CHECK_OK(cth_pool_join(c->pool, 1.0));
    CHECK_EQ(cth_result_wait(c->running, 0.02), CTH_ETIMEDOUT);
    CHECK_EQ(cth_result_wait(c->queued, 0.02), CTH_ETIMEDOUT);
    cth_result_free(c->running);
    cth_result_free(c->queued);
    cth_pool_free(c->pool);
}

/* The same after a terminate, which is as harmless: the task queued in the
 * ring at the fork is neither run nor cancelled there. */
static void pool_child_terminating(void *arg, bool threads)
{
    CHECK_OK(cth_pool_terminate(((struct pool_case *)arg)->pool));
    pool_child(arg, threads);
}

CTH_TEST(pool_busy_alone)
{
    skip_where_unsupported(false);
    struct pool_case c;
    cth_event_init(&pool_go);
    cth_pool_opts_t opts = {.processes = 1};
    CHECK_OK(cth_pool_create(&c.pool, &opts));
    CHECK_OK(cth_pool_apply_async(c.pool, pool_blocked_task, NULL, NULL, &c.running));
    CHECK_OK(cth_pool_apply_async(c.pool, pool_blocked_task, NULL, NULL, &c.queued));
    cth_sleep(SETTLE);
    in_child(pool_child, &c, false);
    in_child(pool_child_terminating, &c, false);
    CHECK_OK(cth_event_set(&pool_go));
    CHECK_OK(cth_result_wait(c.running, CTH_FOREVER));
    CHECK_OK(cth_result_wait(c.queued, CTH_FOREVER));
    cth_result_free(c.running);
    cth_result_free(c.queued);
    cth_pool_free(c.pool);
}

static int pool_nothing(void *arg, void **result)
{
    (void)arg;
    *result = NULL;
    return 0;
}

struct pool_churn {
    cth_pool_t *pools[2];
    atomic_bool stop;
};

/* Take and free results of two closed pools in turn (each call refused):
 * every call moves the thread's cache of free results, under the pools'
 * locks of their free results. */
static void *pool_churn(void *arg)
{
    struct pool_churn *c = arg;
    for (unsigned i = 0; !atomic_load(&c->stop); i++) {
        cth_result_t *r;
        if (cth_pool_apply_async(c->pools[i % 2], pool_nothing, NULL, NULL, &r) != CTH_EINVAL)
            return (void *)1;
    }
    return NULL;
}

static void pool_free_both(void *arg, bool threads)
{
    (void)threads;
    struct pool_churn *c = arg;
    cth_pool_free(c->pools[0]);
    cth_pool_free(c->pools[1]);
}

/* A fork while another thread recycles results: the child's frees do not
 * wait for a lock the thread, gone there, held at the fork. */
CTH_TEST(pool_results_recycled_at_fork)
{
    skip_where_unsupported(false);
    struct pool_churn c = {.stop = false};
    for (int i = 0; i < 2; i++) {
        cth_pool_opts_t opts = {.processes = 1};
        CHECK_OK(cth_pool_create(&c.pools[i], &opts));
        CHECK_OK(cth_pool_close(c.pools[i]));
    }
    cth_thread_t *t = start(pool_churn, &c);
    for (int k = 0; k < 20; k++) {
        in_child(pool_free_both, &c, false);
        cth_sleep(0.001);
    }
    atomic_store(&c.stop, true);
    join_all(&t, 1);
    pool_free_both(&c, false);
}

enum { FREED_RESULTS = 50000, CHILD_RESULTS = 20 };

struct freed_pool {
    cth_result_t *results[FREED_RESULTS];
    size_t left; /* results[0, left) not freed yet (the thread's, till joined) */
    atomic_bool stop;
};

/* Free the results of a freed pool, one by one (each under its lock of
 * free results), leaving the first CHILD_RESULTS. */
static void *freed_pool_churn(void *arg)
{
    struct freed_pool *f = arg;
    while (f->left > CHILD_RESULTS && !atomic_load(&f->stop))
        cth_result_free(f->results[--f->left]);
    return NULL;
}

static void free_child_results(void *arg, bool threads)
{
    (void)threads;
    struct freed_pool *f = arg;
    for (size_t i = 0; i < CHILD_RESULTS; i++)
        cth_result_free(f->results[i]);
}

/* The same for the results of a pool already freed, which keep its
 * memory. */
CTH_TEST(freed_pool_results_freed_at_fork)
{
    skip_where_unsupported(false);
    static struct freed_pool f = {.left = FREED_RESULTS};
    cth_pool_t *p;
    cth_pool_opts_t opts = {.processes = 1};
    CHECK_OK(cth_pool_create(&p, &opts));
    for (size_t i = 0; i < FREED_RESULTS; i++)
        CHECK_OK(cth_pool_apply_async(p, pool_nothing, NULL, NULL, &f.results[i]));
    CHECK_OK(cth_pool_close(p));
    CHECK_OK(cth_pool_join(p, CTH_FOREVER));
    cth_pool_free(p);
    cth_thread_t *t = start(freed_pool_churn, &f);
    for (int k = 0; k < 10; k++)
        in_child(free_child_results, &f, false);
    atomic_store(&f.stop, true);
    join_all(&t, 1);
    while (f.left > CHILD_RESULTS)
        cth_result_free(f.results[--f.left]);
    free_child_results(&f, false);
}
