/* SPDX-License-Identifier: MIT */
/*
 * hello_threads.c - threading.Thread and its API: create with a name, start,
 * join for the result, is_alive, current_thread, active_count. The Python:
 *
 *     t = threading.Thread(target=count_to, args=(n,), name="counter-1")
 *     t.start(); t.join()
 *
 * The workers wait on an Event until main has counted them, so every run
 * prints the same lines.
 */
#include <stdint.h>
#include <stdio.h>

#include <cthreading.h>

static cth_event_t go = CTH_EVENT_INIT;

static void *count_to(void *arg)
{
    cth_event_wait(&go, CTH_FOREVER);
    long n = (long)(intptr_t)arg, sum = 0;
    for (long i = 1; i <= n; i++)
        sum += i;
    return (void *)(intptr_t)sum; /* what join hands back */
}

int main(void)
{
    char name[64];
    cth_thread_get_name(cth_current_thread(), name, sizeof name);
    printf("current_thread().name = %s\n", name);

    cth_thread_t *t[3];
    for (int i = 0; i < 3; i++) {
        char tname[32];
        snprintf(tname, sizeof tname, "counter-%d", i + 1);
        cth_thread_opts_t opts = {.name = tname}; /* Thread(name=...) */
        cth_thread_create(&t[i], count_to, (void *)(intptr_t)(10 * (i + 1)), &opts);
    }
    printf("before start: is_alive() = %s, ident = %lu\n",
           cth_thread_is_alive(t[0]) ? "True" : "False", cth_thread_ident(t[0]));
    for (int i = 0; i < 3; i++)
        cth_thread_start(t[i]);
    printf("started 3: active_count() = %zu, is_alive() = %s\n", cth_active_count(),
           cth_thread_is_alive(t[0]) ? "True" : "False");
    cth_event_set(&go);

    for (int i = 0; i < 3; i++) {
        void *sum;
        cth_thread_join(t[i], &sum, CTH_FOREVER); /* t.join(), and the return value */
        cth_thread_get_name(t[i], name, sizeof name);
        printf("%s: sum(1..%d) = %ld, is_alive() = %s\n", name, 10 * (i + 1), (long)(intptr_t)sum,
               cth_thread_is_alive(t[i]) ? "True" : "False");
        cth_thread_free(t[i]);
    }
    printf("after join: active_count() = %zu\n", cth_active_count());
    return 0;
}
