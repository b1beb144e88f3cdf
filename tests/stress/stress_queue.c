/*
 * stress_queue.c - no loss, no duplicate, FIFO per producer: 4 producers and
 * 4 consumers pass millions of items stamped (producer, sequence) through a
 * small bounded Queue (half of each side using put_many/get_many); then the
 * same through a SimpleQueue. Scaled by CTH_STRESS_ITERS.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"

#define NP 4
#define NC 4
#define BATCH 8
#define STAMP(p, s) ((void *)(uintptr_t)(((uintptr_t)(p) << 40) | ((uintptr_t)(s) + 1))) /* never NULL */

struct ctx {
    cth_queue_t *q;
    cth_simple_queue_t *sq;
    long per_producer;
    _Atomic unsigned char *seen[NP];
    _Atomic long received;
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
        CHECK_OK(cth_simple_queue_put(c->sq, item));
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
static bool receive(struct ctx *c, void *item, long last[NP])
{
    if (!item)
        return false;
    uintptr_t v = (uintptr_t)item;
    int p = (int)(v >> 40);
    long s = (long)(v & ((1ULL << 40) - 1)) - 1;
    CHECK(p >= 0 && p < NP && s < c->per_producer);
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
    long last[NP] = {-1, -1, -1, -1};
    for (;;) {
        if (c->q && id % 2) {
            void *items[BATCH];
            int n = cth_queue_get_many(c->q, items, BATCH, CTH_FOREVER);
            CHECK(n >= 1);
            for (int i = 0; i < n; i++)
                if (!receive(c, items[i], last))
                    return NULL; /* one sentinel per consumer: never mixed with later items */
        } else {
            void *item;
            if (c->q)
                CHECK_OK(cth_queue_get(c->q, &item, CTH_FOREVER));
            else
                CHECK_OK(cth_simple_queue_get(c->sq, &item, CTH_FOREVER));
            if (!receive(c, item, last))
                return NULL;
        }
    }
}

static void run_all(struct ctx *c)
{
    for (int p = 0; p < NP; p++)
        c->seen[p] = calloc((size_t)c->per_producer, 1);
    cth_thread_t *t[NP + NC];
    struct targ args[NP + NC];
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
    for (int i = 0; i < NP; i++)
        CHECK_OK(cth_thread_join(t[i], CTH_FOREVER, NULL));
    for (int i = 0; i < NC; i++)
        put_one(c, NULL);
    for (int i = 0; i < NP + NC; i++) {
        if (i >= NP)
            CHECK_OK(cth_thread_join(t[i], CTH_FOREVER, NULL));
        cth_thread_free(t[i]);
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
    struct ctx c = {0};
    c.per_producer = check_iters(500000);
    CHECK_OK(cth_queue_create(&c.q, 16, NULL));
    run_all(&c);
    CHECK(cth_queue_empty(c.q));
    cth_queue_free(c.q);
}

CTH_TEST(simple_queue_no_loss)
{
    struct ctx c = {0};
    c.per_producer = check_iters(500000);
    CHECK_OK(cth_simple_queue_create(&c.sq, NULL));
    run_all(&c);
    CHECK(cth_simple_queue_empty(c.sq));
    cth_simple_queue_free(c.sq);
}
