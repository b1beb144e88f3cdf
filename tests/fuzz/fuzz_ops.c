/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ops.c - libFuzzer target: the input bytes are an op sequence for
 * the interpreter of tests/model_ops.h, the one the model-based stress test
 * runs, with the same checks (a violation aborts, and libFuzzer keeps the
 * input).
 *
 * Input: byte 0 and 1 are the configuration (model_cfg_decode: queue kind
 * and bound, 1-4 threads, semaphore value and kind, barrier parties); the
 * rest is cut into one contiguous program per thread, two bytes per op
 * (opcode, parameter). With one thread every return value is checked
 * against the sequential model. Programs are capped so that an input runs
 * in milliseconds. Built only with -DCTH_FUZZ=ON (clang): `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>

#define MODEL_SMALL_TIMEOUT 0.0001 /* keeps an input to milliseconds */
#include "../model_ops.h"

#define FUZZ_MAX_PROGRAM 1024 /* bytes per thread */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_job {
    const struct model_cfg *cfg;
    const uint8_t *const *prog;
    const size_t *len;
    cth_pool_t *pool;
};

static void *fuzz_thread(void *arg)
{
    struct fuzz_job *j = arg;
    model_run(j->cfg, j->prog, j->len, j->pool);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cth_pool_t *pool; /* one pool for every input: starting one costs threads */
    if (size < 2)
        return 0;
    if (!pool) {
        cth_pool_opts_t po = {.processes = 2};
        if (cth_pool_create(&pool, &po) != 0)
            model_fail("pool create failed");
    }
    struct model_cfg cfg = model_cfg_decode(data[0], data[1]);
    data += 2;
    size -= 2;
    const uint8_t *prog[MODEL_MAX_THREADS];
    size_t len[MODEL_MAX_THREADS];
    size_t each = size / (size_t)cfg.nthreads;
    for (int i = 0; i < cfg.nthreads; i++) {
        prog[i] = data + (size_t)i * each;
        len[i] = each < FUZZ_MAX_PROGRAM ? each : FUZZ_MAX_PROGRAM;
    }
    /* Off the main thread: there every wait returns CTH_EINTR after a
     * signal handler ran, and libFuzzer's -timeout is a SIGALRM. */
    struct fuzz_job job = {&cfg, prog, len, pool};
    cth_thread_t *th;
    if (cth_thread_create(&th, fuzz_thread, &job, NULL) != 0 || cth_thread_start(th) != 0)
        model_fail("thread start failed");
    while (cth_thread_join(th, NULL, CTH_FOREVER) == CTH_EINTR)
        ;
    cth_thread_free(th);
    return 0;
}
