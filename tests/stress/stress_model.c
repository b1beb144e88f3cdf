/* SPDX-License-Identifier: MIT */
/*
 * stress_model.c - model-based stress: random op sequences from more
 * threads than cores on a Queue (each kind, bounded and not, with and
 * without a shutdown), a Semaphore / BoundedSemaphore, a Barrier and a
 * Pool, checked against Python's semantics by the interpreter in
 * tests/model_ops.h (the fuzz target runs the same interpreter).
 *
 * The seed comes from CTH_MODEL_SEED, else the clock, and is printed first:
 * `CTH_MODEL_SEED=N tests/stress_model NAME` replays the same programs (the
 * interleaving is the scheduler's). The last line is "ops: N", which
 * `make soak` sums. Scaled by CTH_STRESS_ITERS (check_iters).
 */
#include "../check.h"
#include "../model_ops.h"

#define THREADS 6 /* more than the 2 cores of the CI machines */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t model_seed(void)
{
    const char *s = getenv("CTH_MODEL_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 10)
                            : (uint64_t)(check_now() * 1e6) ^ (uint64_t)getpid();
    printf("CTH_MODEL_SEED=%llu\n", (unsigned long long)seed);
    fflush(stdout);
    rng_state = seed * 2654435761ULL + 0x9E3779B97F4A7C15ULL;
    if (!rng_state)
        rng_state = 1;
    return seed;
}

/* Op weights of the generated programs: the queue first, then the rest. */
static const struct {
    enum model_op op;
    int weight;
} weights[] = {
    {OP_PUT, 20},         {OP_GET, 20},         {OP_PUT_MANY, 5},      {OP_GET_MANY, 5},
    {OP_TASK_DONE, 10},   {OP_JOIN, 2},         {OP_SIZE, 3},          {OP_SEM_ACQUIRE, 8},
    {OP_SEM_RELEASE, 8},  {OP_BARRIER_WAIT, 3}, {OP_BARRIER_RESET, 1}, {OP_POOL_APPLY, 3},
    {OP_POOL_COLLECT, 3}, {OP_POOL_MAP, 1},     {OP_POOL_IMAP, 1},     {OP_YIELD, 2},
};

static uint8_t random_op(void)
{
    int total = 0;
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++)
        total += weights[i].weight;
    int r = (int)(rng_next() % (uint64_t)total);
    for (size_t i = 0;; i++) {
        r -= weights[i].weight;
        if (r < 0)
            return (uint8_t)weights[i].op;
    }
}

/* Generate and run programs of `ops` ops per thread until `seconds` of wall
 * time have passed (at least one run); print the ops done. */
static void model_runs(struct model_cfg cfg, long ops, double seconds, bool with_shutdown,
                       bool with_pool)
{
    model_seed();
    cth_pool_t *pool = NULL;
    if (with_pool) {
        cth_pool_opts_t po = {.processes = 3};
        CHECK_OK(cth_pool_create(&pool, &po));
    }
    uint8_t *prog[MODEL_MAX_THREADS];
    size_t len[MODEL_MAX_THREADS];
    for (int i = 0; i < cfg.nthreads; i++) {
        len[i] = 2 * (size_t)ops;
        prog[i] = malloc(len[i]);
        CHECK(prog[i] != NULL);
    }
    long total = 0;
    int runs = 0;
    double start = check_now();
    seconds *= atof(getenv("CTH_STRESS_ITERS") && *getenv("CTH_STRESS_ITERS")
                        ? getenv("CTH_STRESS_ITERS")
                        : "1");
    do {
        for (int i = 0; i < cfg.nthreads; i++)
            for (size_t k = 0; k < len[i]; k += 2) {
                prog[i][k] = random_op();
                prog[i][k + 1] = (uint8_t)(rng_next() % 0xf0); /* no shutdown by chance */
            }
        if (with_shutdown) {
            int who = (int)(rng_next() % (uint64_t)cfg.nthreads);
            size_t at = 2 * (size_t)(rng_next() % (uint64_t)ops);
            prog[who][at] = OP_SHUTDOWN;
            prog[who][at + 1] = (uint8_t)(0xf0 | (rng_next() & 1));
        }
        total += model_run(&cfg, (const uint8_t *const *)prog, len, pool);
        runs++;
    } while (check_now() - start < seconds);
    for (int i = 0; i < cfg.nthreads; i++)
        free(prog[i]);
    if (pool) {
        CHECK_OK(cth_pool_close(pool));
        CHECK_OK(cth_pool_join(pool, CTH_FOREVER));
        cth_pool_free(pool);
    }
    printf("runs: %d\nops: %ld\n", runs, total);
}

static struct model_cfg cfg_of(cth_queue_kind_t kind, long maxsize)
{
    return (struct model_cfg){kind, maxsize, THREADS, 2, 0, 3, 20};
}

CTH_TEST(fifo_bounded)
{
    model_runs(cfg_of(CTH_QUEUE_FIFO, 4), check_iters(3000), 1.5, false, true);
}

CTH_TEST(fifo_unbounded)
{
    model_runs(cfg_of(CTH_QUEUE_FIFO, 0), check_iters(3000), 1.5, false, true);
}

CTH_TEST(lifo_bounded)
{
    struct model_cfg c = cfg_of(CTH_QUEUE_LIFO, 2);
    c.sem_bounded = 1;
    model_runs(c, check_iters(3000), 1.5, false, true);
}

CTH_TEST(priority)
{
    struct model_cfg c = cfg_of(CTH_QUEUE_PRIORITY, 8);
    c.sem_bounded = 1;
    c.sem_init = 3;
    model_runs(c, check_iters(3000), 1.5, false, true);
}

CTH_TEST(shutdown)
{
    /* one shutdown (immediate or not) somewhere in each run */
    model_runs(cfg_of(CTH_QUEUE_FIFO, 3), check_iters(1000), 1.5, true, false);
    model_runs(cfg_of(CTH_QUEUE_PRIORITY, 0), check_iters(1000), 1.0, true, false);
}

CTH_TEST(sequential)
{
    /* one thread: every return value predicted by the sequential model */
    for (int kind = 0; kind < 3; kind++) {
        struct model_cfg c = cfg_of((cth_queue_kind_t)kind, kind == 1 ? 0 : 3);
        c.nthreads = 1;
        c.parties = 1;
        c.sem_bounded = kind & 1;
        model_runs(c, check_iters(6000), 0.3, kind == 2, true);
    }
}
