/*
 * stress_queue.c - no loss, no duplicate, FIFO per producer: 4 producers and
 * 4 consumers pass millions of items stamped (producer, sequence) through a
 * small bounded Queue (half of each side using put_many/get_many); then the
 * same through a SimpleQueue; then through a white-box SimpleQueue (its
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

/* ---- the white-box SimpleQueue: tiny segments, preemption points ---------------- */

enum { SQ_PUT_READ_TAIL, SQ_PUT_CLAIMED, SQ_PUT_PUBLISHED, SQ_GET_RECLAIM, SQ_GET_SLEEPING,
       SQ_GET_RECHECKED };

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
int tiny_sq_create(cth_simple_queue_t **queue, const cth_simple_queue_opts *opts);
void tiny_sq_free(cth_simple_queue_t *queue);
int tiny_sq_put(cth_simple_queue_t *queue, void *item);
int tiny_sq_get(cth_simple_queue_t *queue, void **item, double timeout);
int tiny_sq_get_nowait(cth_simple_queue_t *queue, void **item);
long tiny_sq_qsize(cth_simple_queue_t *queue);
bool tiny_sq_empty(cth_simple_queue_t *queue);
#include "simple_queue.c"
#undef cth_simple_queue_create
#undef cth_simple_queue_free
#undef cth_simple_queue_put
#undef cth_simple_queue_get
#undef cth_simple_queue_get_nowait
#undef cth_simple_queue_qsize
#undef cth_simple_queue_empty

/* ---- the no-loss test ------------------------------------------------------------- */

#define MAXP 16
#define BATCH 8
#define STALL 5.0 /* seconds without progress while items are queued */
#define STAMP(p, s) ((void *)(uintptr_t)(((uintptr_t)(p) << 40) | ((uintptr_t)(s) + 1))) /* never NULL */

struct ctx {
    cth_queue_t *q;
    cth_simple_queue_t *sq; /* the library's, or with tiny set the white-box one */
    bool tiny;
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
        CHECK_OK(cth_queue_put(c->q, item, CTH_FOREVER));
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
            int r = cth_queue_put_many(c->q, batch, n, CTH_FOREVER);
            CHECK(r >= 1 && r <= n);
            s += r;
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
            int n = cth_queue_get_many(c->q, items, BATCH, CTH_FOREVER);
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
                CHECK_OK(cth_queue_get(c->q, &item, CTH_FOREVER));
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
    if (c->sq) {
        CHECK_OK(cth_thread_create(&watch, watchdog, c, NULL));
        CHECK_OK(cth_thread_start(watch));
    }
    for (int i = 0; i < NP; i++)
        CHECK_OK(cth_thread_join(t[i], CTH_FOREVER, NULL));
    for (int i = 0; i < NC; i++)
        put_one(c, NULL);
    for (int i = 0; i < NP + NC; i++) {
        if (i >= NP)
            CHECK_OK(cth_thread_join(t[i], CTH_FOREVER, NULL));
        cth_thread_free(t[i]);
    }
    if (watch) {
        atomic_store(&c->done, true);
        CHECK_OK(cth_thread_join(watch, CTH_FOREVER, NULL));
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
