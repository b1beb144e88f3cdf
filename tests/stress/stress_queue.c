/* SPDX-License-Identifier: MIT */
/*
 * stress_queue.c - no loss, no duplicate, FIFO per producer: 4 producers and
 * 4 consumers pass millions of items stamped (producer, sequence) through a
 * small bounded Queue (half of each side using put_many/get_many), then an
 * unbounded one (its ring grows under traffic); then through a white-box
 * Queue (queue.c and queue_ring.c compiled in here) whose first ring has
 * two cells, with threads yielding at its racy points, 16 producers on 2
 * cores, over many
 * fresh queues so that rings grow (and maxsize changes) under traffic all
 * the time; an immediate shutdown in the middle of traffic, where every item
 * put is received or freed exactly once; then the same through a
 * SimpleQueue; then through a white-box SimpleQueue (its
 * source compiled in here) with 4-slot segments, so segments are linked,
 * retired, zeroed and reused every few items, and threads yielding at its
 * racy points, with 16 producers on 2 cores. For a SimpleQueue, a watchdog
 * fails the test when no item is taken for STALL seconds while qsize > 0 (a
 * lost wake-up). Scaled by
 * CTH_STRESS_ITERS.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

/* ---- the white-box SimpleQueue and Queue: tiny storage, preemption points -------- */

enum {
    SQ_PUT_READ_TAIL,
    SQ_PUT_CLAIMED,
    SQ_PUT_PUBLISHED,
    SQ_GET_RECLAIM,
    SQ_GET_SLEEPING,
    SQ_GET_RECHECKED
};
enum { Q_PUT_CLAIMING, Q_PUT_CLAIMED, Q_GET_CLAIMING, Q_GET_CLAIMED, Q_FROZEN };

/* Yield at one racy point in four (per-thread xorshift), so a thread is often
 * preempted just there while the others run. */
static void sq_preempt(int point)
{
    static _Thread_local uint32_t x;
    if (!x)
        x = (uint32_t)(uintptr_t)&x | 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    if ((x + (uint32_t)point) % 4 == 0)
        sched_yield();
}

#define CTH__SQ_MAX_SLOTS 4
#define SQ_PREEMPT(point) sq_preempt(point)
#define cth_simple_queue_create tiny_sq_create
#define cth_simple_queue_free tiny_sq_free
#define cth_simple_queue_put tiny_sq_put
#define cth_simple_queue_get tiny_sq_get
#define cth_simple_queue_get_nowait tiny_sq_get_nowait
#define cth_simple_queue_qsize tiny_sq_qsize
#define cth_simple_queue_empty tiny_sq_empty
int tiny_sq_create(cth_simple_queue_t **queue, const cth_simple_queue_opts_t *opts);
void tiny_sq_free(cth_simple_queue_t *queue);
int tiny_sq_put(cth_simple_queue_t *queue, void *item);
int tiny_sq_get(cth_simple_queue_t *queue, void **item, double timeout);
int tiny_sq_get_nowait(cth_simple_queue_t *queue, void **item);
size_t tiny_sq_qsize(const cth_simple_queue_t *queue);
bool tiny_sq_empty(const cth_simple_queue_t *queue);
#include "simple_queue.c"
#undef cth_simple_queue_create
#undef cth_simple_queue_free
#undef cth_simple_queue_put
#undef cth_simple_queue_get
#undef cth_simple_queue_get_nowait
#undef cth_simple_queue_qsize
#undef cth_simple_queue_empty

#define CTH__Q_MIN_CAPACITY 2
#define Q_PREEMPT(point) sq_preempt(point)
#define cth__fifo_init tiny_fifo_init
#define cth__fifo_destroy tiny_fifo_destroy
#define cth__fifo_set_maxsize tiny_fifo_set_maxsize
#define cth__fifo_push tiny_fifo_push
#define cth__fifo_pop tiny_fifo_pop
#define cth__fifo_mark_empty tiny_fifo_mark_empty
#define cth__fifo_mark_full tiny_fifo_mark_full
#define cth__fifo_flag_puts tiny_fifo_flag_puts
#define cth__fifo_drain tiny_fifo_drain
#define cth__fifo_item tiny_fifo_item
#include "queue_ring.c"
#define cth_queue_create tiny_q_create
#define cth_queue_free tiny_q_free
#define cth_queue_put tiny_q_put
#define cth_queue_put_nowait tiny_q_put_nowait
#define cth_queue_get tiny_q_get
#define cth_queue_get_nowait tiny_q_get_nowait
#define cth_queue_put_many tiny_q_put_many
#define cth_queue_get_many tiny_q_get_many
#define cth_queue_qsize tiny_q_qsize
#define cth_queue_empty tiny_q_empty
#define cth_queue_full tiny_q_full
#define cth_queue_maxsize tiny_q_maxsize
#define cth_queue_set_maxsize tiny_q_set_maxsize
#define cth_queue_task_done tiny_q_task_done
#define cth_queue_unfinished_tasks tiny_q_unfinished_tasks
#define cth_queue_join tiny_q_join
#define cth_queue_shutdown tiny_q_shutdown
#define cth_queue_is_shutdown tiny_q_is_shutdown
int tiny_q_create(cth_queue_t **queue, size_t maxsize, const cth_queue_opts_t *opts);
void tiny_q_free(cth_queue_t *queue);
int tiny_q_put(cth_queue_t *queue, void *item, double timeout);
int tiny_q_put_nowait(cth_queue_t *queue, void *item);
int tiny_q_get(cth_queue_t *queue, void **item, double timeout);
int tiny_q_get_nowait(cth_queue_t *queue, void **item);
int tiny_q_put_many(cth_queue_t *queue, void *const *items, size_t n, size_t *put, double timeout);
int tiny_q_get_many(cth_queue_t *queue, void **items, size_t n, size_t *got, double timeout);
size_t tiny_q_qsize(const cth_queue_t *queue);
bool tiny_q_empty(const cth_queue_t *queue);
bool tiny_q_full(const cth_queue_t *queue);
size_t tiny_q_maxsize(const cth_queue_t *queue);
int tiny_q_set_maxsize(cth_queue_t *queue, size_t maxsize);
int tiny_q_task_done(cth_queue_t *queue);
size_t tiny_q_unfinished_tasks(const cth_queue_t *queue);
int tiny_q_join(cth_queue_t *queue, double timeout);
int tiny_q_shutdown(cth_queue_t *queue, bool immediate);
bool tiny_q_is_shutdown(const cth_queue_t *queue);
#include "queue.c"
#undef cth_queue_create
#undef cth_queue_free
#undef cth_queue_put
#undef cth_queue_put_nowait
#undef cth_queue_get
#undef cth_queue_get_nowait
#undef cth_queue_put_many
#undef cth_queue_get_many
#undef cth_queue_qsize
#undef cth_queue_empty
#undef cth_queue_full
#undef cth_queue_maxsize
#undef cth_queue_set_maxsize
#undef cth_queue_task_done
#undef cth_queue_unfinished_tasks
#undef cth_queue_join
#undef cth_queue_shutdown
#undef cth_queue_is_shutdown
#undef cth__fifo_init
#undef cth__fifo_destroy
#undef cth__fifo_set_maxsize
#undef cth__fifo_push
#undef cth__fifo_pop
#undef cth__fifo_mark_empty
#undef cth__fifo_mark_full
#undef cth__fifo_flag_puts
#undef cth__fifo_drain
#undef cth__fifo_item

/* ---- the no-loss test ------------------------------------------------------------- */

#define MAXP 16
#define BATCH 8
#define STALL 5.0 /* seconds without progress while items are queued */
#define STAMP(p, s)                                                                                \
    ((void *)(uintptr_t)(((uintptr_t)(p) << 40) | ((uintptr_t)(s) + 1))) /* never NULL */

struct ctx {
    cth_queue_t *q;
    cth_simple_queue_t *sq; /* the library's, or with tiny set the white-box one */
    bool tiny;              /* the white-box Queue or SimpleQueue */
    bool churn;             /* a thread changes the Queue's maxsize meanwhile */
    int np, nc;
    long per_producer;
    _Atomic unsigned char *seen[MAXP];
    _Atomic long received;
    _Atomic bool done;
};

struct targ {
    struct ctx *c;
    int id;
};

static void put_one(struct ctx *c, void *item)
{
    if (c->q)
        CHECK_OK(c->tiny ? tiny_q_put(c->q, item, CTH_FOREVER)
                         : cth_queue_put(c->q, item, CTH_FOREVER));
    else
        CHECK_OK(c->tiny ? tiny_sq_put(c->sq, item) : cth_simple_queue_put(c->sq, item));
}

/* The SimpleQueue watchdog: items queued (every put counted in qsize has
 * published its item) while no consumer takes one for STALL seconds is a
 * lost wake-up: the getter holding the turn sleeps, the others wait for it. */
static void *watchdog(void *arg)
{
    struct ctx *c = arg;
    long seen = -1;
    double since = check_now();
    while (!atomic_load(&c->done)) {
        cth_sleep(0.01);
        long n = atomic_load(&c->received);
        if (n != seen) {
            seen = n;
            since = check_now();
        } else if (check_now() - since > STALL) {
            CHECK_EQ((c->tiny ? tiny_sq_qsize(c->sq) : cth_simple_queue_qsize(c->sq)), 0);
        }
    }
    return NULL;
}

/* Change maxsize all the time (shrinking, growing, unbounded): the ring
 * grows and the bound moves under traffic. */
static void *churner(void *arg)
{
    struct ctx *c = arg;
    static const size_t sizes[] = {1, 3, 0, 50, 2, 1000, SIZE_MAX, 5};
    for (unsigned i = 0; !atomic_load(&c->done); i++) {
        CHECK_OK(tiny_q_set_maxsize(c->q, sizes[i % 8]));
        sched_yield();
    }
    return NULL;
}

static void *producer(void *arg)
{
    struct ctx *c = ((struct targ *)arg)->c;
    int id = ((struct targ *)arg)->id;
    long s = 0;
    if (c->q && id % 2) {
        while (s < c->per_producer) {
            void *batch[BATCH];
            int n = 0;
            while (n < BATCH && s + n < c->per_producer) {
                batch[n] = STAMP(id, s + n);
                n++;
            }
            size_t put;
            CHECK_OK(c->tiny ? tiny_q_put_many(c->q, batch, (size_t)n, &put, CTH_FOREVER)
                             : cth_queue_put_many(c->q, batch, (size_t)n, &put, CTH_FOREVER));
            CHECK(put >= 1 && put <= (size_t)n);
            s += (long)put;
        }
    } else {
        for (; s < c->per_producer; s++)
            put_one(c, STAMP(id, s));
    }
    return NULL;
}

/* Returns false at the end-of-stream sentinel (NULL). */
static bool receive(struct ctx *c, void *item, long last[MAXP])
{
    if (!item)
        return false;
    uintptr_t v = (uintptr_t)item;
    int p = (int)(v >> 40);
    long s = (long)(v & ((1ULL << 40) - 1)) - 1;
    CHECK(p >= 0 && p < c->np && s < c->per_producer);
    CHECK(s > last[p]); /* each producer's items arrive in order */
    last[p] = s;
    CHECK_EQ(atomic_exchange(&c->seen[p][s], 1), 0); /* exactly once */
    atomic_fetch_add(&c->received, 1);
    return true;
}

static void *consumer(void *arg)
{
    struct ctx *c = ((struct targ *)arg)->c;
    int id = ((struct targ *)arg)->id;
    long last[MAXP];
    for (int p = 0; p < MAXP; p++)
        last[p] = -1;
    for (;;) {
        if (c->q && id % 2) {
            void *items[BATCH];
            size_t got;
            CHECK_OK(c->tiny ? tiny_q_get_many(c->q, items, BATCH, &got, CTH_FOREVER)
                             : cth_queue_get_many(c->q, items, BATCH, &got, CTH_FOREVER));
            int n = (int)got;
            CHECK(n >= 1);
            /* Sentinels come after every item, one per consumer; a batch may
             * hold several: keep one, give the others back. */
            int stops = 0;
            for (int i = 0; i < n; i++)
                stops += !receive(c, items[i], last);
            if (stops) {
                while (--stops > 0)
                    put_one(c, NULL);
                return NULL;
            }
        } else {
            void *item;
            if (c->q)
                CHECK_OK(c->tiny ? tiny_q_get(c->q, &item, CTH_FOREVER)
                                 : cth_queue_get(c->q, &item, CTH_FOREVER));
            else if (c->tiny && id % 2) /* get_nowait beside the sleeping getters */
                while (tiny_sq_get_nowait(c->sq, &item) == CTH_EAGAIN)
                    sched_yield();
            else if (c->tiny)
                CHECK_OK(tiny_sq_get(c->sq, &item, CTH_FOREVER));
            else
                CHECK_OK(cth_simple_queue_get(c->sq, &item, CTH_FOREVER));
            if (!receive(c, item, last))
                return NULL;
        }
    }
}

static void run_all(struct ctx *c)
{
    int NP = c->np, NC = c->nc;
    CHECK(NP <= MAXP && NC <= MAXP);
    for (int p = 0; p < NP; p++)
        c->seen[p] = calloc((size_t)c->per_producer, 1);
    cth_thread_t *t[2 * MAXP];
    struct targ args[2 * MAXP];
    for (int i = 0; i < NP + NC; i++)
        args[i] = (struct targ){c, i < NP ? i : i - NP};
    for (int i = 0; i < NC; i++) {
        CHECK_OK(cth_thread_create(&t[NP + i], consumer, &args[NP + i], NULL));
        CHECK_OK(cth_thread_start(t[NP + i]));
    }
    for (int i = 0; i < NP; i++) {
        CHECK_OK(cth_thread_create(&t[i], producer, &args[i], NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    cth_thread_t *watch = NULL;
    if (c->sq || c->churn) {
        CHECK_OK(cth_thread_create(&watch, c->sq ? watchdog : churner, c, NULL));
        CHECK_OK(cth_thread_start(watch));
    }
    for (int i = 0; i < NP; i++)
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
    for (int i = 0; i < NC; i++)
        put_one(c, NULL);
    for (int i = 0; i < NP + NC; i++) {
        if (i >= NP)
            CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    if (watch) {
        atomic_store(&c->done, true);
        CHECK_OK(cth_thread_join(watch, NULL, CTH_FOREVER));
        cth_thread_free(watch);
    }
    CHECK_EQ(atomic_load(&c->received), NP * c->per_producer);
    for (int p = 0; p < NP; p++) {
        for (long s = 0; s < c->per_producer; s++)
            CHECK_EQ(c->seen[p][s], 1);
        free((void *)c->seen[p]);
    }
}

CTH_TEST(bounded_queue_no_loss)
{
    struct ctx c = {.np = 4, .nc = 4};
    c.per_producer = check_iters(500000);
    CHECK_OK(cth_queue_create(&c.q, 16, NULL));
    run_all(&c);
    CHECK(cth_queue_empty(c.q));
    cth_queue_free(c.q);
}

/* The same through an unbounded Queue: its ring grows under traffic. */
CTH_TEST(unbounded_queue_no_loss)
{
    struct ctx c = {.np = 4, .nc = 4};
    c.per_producer = check_iters(500000);
    CHECK_OK(cth_queue_create(&c.q, 0, NULL));
    run_all(&c);
    CHECK(cth_queue_empty(c.q));
    cth_queue_free(c.q);
}

/* The white-box Queue: 16 producers and 4 consumers on 2 cores, threads
 * yielding between reading a counter and claiming, between claiming and
 * writing or reading a cell, and with the ring frozen; each round on a fresh
 * queue whose first ring has two cells, unbounded, bounded by 7 or by 100,
 * or with maxsize changing all the time. Covers growing while puts and gets
 * are inside the ring, counters read before a freeze and compared after it,
 * waits for a preempted claimer, and the flags of parked waiters. */
CTH_TEST(queue_tiny_ring_no_loss)
{
    long rounds = check_iters(40);
    for (long r = 0; r < rounds; r++) {
        static const long sizes[] = {0, 7, 100, 3};
        struct ctx c = {.np = MAXP, .nc = 4, .tiny = true, .churn = r % 4 == 3};
        c.per_producer = 400;
        CHECK_OK(tiny_q_create(&c.q, sizes[r % 4], NULL));
        run_all(&c);
        CHECK(tiny_q_empty(c.q));
        tiny_q_free(c.q);
    }
}

/* ---- an immediate shutdown in the middle of traffic ----------------------------- */

struct sd_ctx {
    cth_queue_t *q;
    bool tiny;
    long per_producer;
    long put[MAXP];                    /* how many each producer put */
    _Atomic unsigned char *seen[MAXP]; /* received or freed */
    _Atomic long received, freed;
};

static struct sd_ctx *sd_current;

static void sd_mark(struct sd_ctx *c, void *item)
{
    uintptr_t v = (uintptr_t)item;
    int p = (int)(v >> 40);
    long s = (long)(v & ((1ULL << 40) - 1)) - 1;
    CHECK(p >= 0 && p < MAXP && s >= 0 && s < c->per_producer);
    CHECK_EQ(atomic_exchange(&c->seen[p][s], 1), 0);
}

static void sd_free_item(void *item)
{
    sd_mark(sd_current, item);
    atomic_fetch_add(&sd_current->freed, 1);
}

static void *sd_producer(void *arg)
{
    struct targ *a = arg;
    struct sd_ctx *c = (struct sd_ctx *)(void *)a->c;
    long s = 0;
    for (; s < c->per_producer; s++) {
        void *item = STAMP(a->id, s);
        int r = c->tiny ? tiny_q_put(c->q, item, CTH_FOREVER)
                        : cth_queue_put(c->q, item, CTH_FOREVER);
        if (r == CTH_ESHUTDOWN)
            break;
        CHECK_OK(r);
    }
    c->put[a->id] = s;
    return NULL;
}

static void *sd_consumer(void *arg)
{
    struct targ *a = arg;
    struct sd_ctx *c = (struct sd_ctx *)(void *)a->c;
    long last[MAXP];
    for (int p = 0; p < MAXP; p++)
        last[p] = -1;
    for (;;) {
        void *items[BATCH];
        size_t got = 1;
        int r = a->id % 2 ? (c->tiny ? tiny_q_get_many(c->q, items, BATCH, &got, CTH_FOREVER)
                                     : cth_queue_get_many(c->q, items, BATCH, &got, CTH_FOREVER))
                          : (c->tiny ? tiny_q_get(c->q, items, CTH_FOREVER)
                                     : cth_queue_get(c->q, items, CTH_FOREVER));
        if (r == CTH_ESHUTDOWN)
            return NULL;
        CHECK_OK(r);
        int n = (int)got;
        CHECK(n >= 1);
        for (int i = 0; i < n; i++) {
            uintptr_t v = (uintptr_t)items[i];
            int p = (int)(v >> 40);
            long s = (long)(v & ((1ULL << 40) - 1)) - 1;
            CHECK(p >= 0 && p < MAXP && s > last[p]); /* in order per producer */
            last[p] = s;
            sd_mark(c, items[i]);
            atomic_fetch_add(&c->received, 1);
        }
    }
}

/* Producers and consumers (half with get_many) run through a bounded Queue
 * until an immediate shutdown: every item a put accepted is received or
 * handed to the free function exactly once, no other item shows up, every
 * thread leaves with CTH_ESHUTDOWN, and the unfinished count is what the
 * consumers took (the removed items are subtracted). */
static void shutdown_under_traffic(bool tiny, int np, size_t maxsize)
{
    static struct sd_ctx c;
    c = (struct sd_ctx){.tiny = tiny, .per_producer = check_iters(200000)};
    sd_current = &c;
    cth_queue_opts_t o = {.free_item = sd_free_item};
    CHECK_OK(tiny ? tiny_q_create(&c.q, maxsize, &o) : cth_queue_create(&c.q, maxsize, &o));
    for (int p = 0; p < np; p++)
        c.seen[p] = calloc((size_t)c.per_producer, 1);
    cth_thread_t *t[2 * MAXP];
    struct targ args[2 * MAXP];
    int nc = 4;
    for (int i = 0; i < np + nc; i++) {
        args[i] = (struct targ){(struct ctx *)(void *)&c, i < np ? i : i - np};
        CHECK_OK(cth_thread_create(&t[i], i < np ? sd_producer : sd_consumer, &args[i], NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    while (atomic_load(&c.received) < c.per_producer / 4)
        cth_sleep(0.001);
    CHECK_OK(tiny ? tiny_q_shutdown(c.q, true) : cth_queue_shutdown(c.q, true));
    for (int i = 0; i < np + nc; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    long total = 0;
    for (int p = 0; p < np; p++) {
        total += c.put[p];
        for (long s = 0; s < c.per_producer; s++)
            CHECK_EQ(c.seen[p][s], s < c.put[p]);
        free((void *)c.seen[p]);
    }
    CHECK_EQ(atomic_load(&c.received) + atomic_load(&c.freed), total);
    CHECK_EQ(tiny ? tiny_q_qsize(c.q) : cth_queue_qsize(c.q), 0);
    CHECK_EQ(tiny ? tiny_q_unfinished_tasks(c.q) : cth_queue_unfinished_tasks(c.q),
             atomic_load(&c.received));
    tiny ? tiny_q_free(c.q) : cth_queue_free(c.q);
    CHECK_EQ(atomic_load(&c.freed) + atomic_load(&c.received),
             total); /* free dropped nothing more */
}

CTH_TEST(queue_shutdown_immediate_under_traffic)
{
    shutdown_under_traffic(false, 4, 64);
    shutdown_under_traffic(false, 4, 0);
    shutdown_under_traffic(true, MAXP, 100);
    shutdown_under_traffic(true, MAXP, 0);
}

CTH_TEST(simple_queue_no_loss)
{
    struct ctx c = {.np = 4, .nc = 4};
    c.per_producer = check_iters(500000);
    CHECK_OK(cth_simple_queue_create(&c.sq, NULL));
    run_all(&c);
    CHECK(cth_simple_queue_empty(c.sq));
    cth_simple_queue_free(c.sq);
}

/* The same through the white-box SimpleQueue: 16 producers and 3 getters on 2
 * cores, a segment every 4 items, threads yielding where a put has read tail,
 * claimed a slot or published, and where the getter checks `active`, has
 * announced it will sleep, or has re-checked before sleeping: covers a stale
 * producer racing segment reuse and the sleep/wake-up handshake, with one
 * getter using get_nowait (it may take the item a sleeper was woken for). */
CTH_TEST(simple_queue_tiny_segments_no_loss)
{
    struct ctx c = {.np = MAXP, .nc = 3, .tiny = true};
    c.per_producer = check_iters(4000);
    CHECK_OK(tiny_sq_create(&c.sq, NULL));
    run_all(&c);
    CHECK(tiny_sq_empty(c.sq));
    tiny_sq_free(c.sq);
}
