/* SPDX-License-Identifier: MIT */
/*
 * stress_threads.c - 10,000 threads (scaled by CTH_STRESS_ITERS) started
 * and joined in waves, some freed unjoined, some enumerated while others
 * come and go; the registry ends with only the main thread.
 */
#include <stdatomic.h>

#include "check.h"

#define WAVE 50

static atomic_long ran;

static void *body(void *arg)
{
    atomic_fetch_add(&ran, 1);
    if ((intptr_t)arg % 7 == 0) {
        cth_thread_t *list[WAVE * 2 + 8];
        size_t cap = sizeof list / sizeof list[0];
        size_t n = cth_enumerate(list, cap);
        CHECK(n >= 1);
        cth_threads_free(list, n < cap ? n : cap);
    }
    return arg;
}

CTH_TEST(ten_thousand_in_waves)
{
    long total = check_iters(10000);
    long started = 0;
    atomic_store(&ran, 0);
    while (started < total) {
        cth_thread_t *wave[WAVE];
        int n = 0;
        for (; n < WAVE && started < total; n++, started++) {
            CHECK_OK(cth_thread_create(&wave[n], body, (void *)(intptr_t)started, NULL));
            CHECK_OK(cth_thread_start(wave[n]));
        }
        for (int i = 0; i < n; i++) {
            if (i % 5 == 4) { /* dropped without a join */
                cth_thread_free(wave[i]);
                continue;
            }
            void *r;
            CHECK_OK(cth_thread_join(wave[i], &r, CTH_FOREVER));
            CHECK(!cth_thread_is_alive(wave[i]));
            cth_thread_free(wave[i]);
        }
    }
    CHECK_OK(cth_shutdown(CTH_FOREVER)); /* waits for the unjoined ones */
    CHECK_EQ(atomic_load(&ran), total);
    CHECK_EQ(cth_active_count(), 0); /* main is finished after shutdown */
}
