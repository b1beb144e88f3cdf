/* SPDX-License-Identifier: MIT */
/*
 * threads.c - the tour's first section: the seed's thread API, part by
 * part: create, start, enumerate, join; sleep; interrupt_main.
 */
#include <signal.h>

#include "tour.h"

static void *greet(void *arg)
{
    char name[64];
    cth_thread_get_name(cth_current_thread(), name, sizeof name);
    say("%s: hello from %s (ident %#lx, native id %ld)", (const char *)arg, name, cth_get_ident(),
        cth_get_native_id());
    cth_sleep(0.05);
    return arg;
}

static void *interrupter(void *arg)
{
    (void)arg;
    cth_sleep(0.1);
    cth_interrupt_main(SIGINT);
    return NULL;
}

static void on_sigint(int sig)
{
    (void)sig;
}

static void tour_threads(void)
{
    tour_code(
        "threading.current_thread().name",
        "cth_thread_get_name(cth_current_thread(), name, sizeof name);",
        "t = threading.Thread(target=greet, args=(\"third\",), name=\"worker-three\")",
        "cth_thread_create(&t, greet, \"third\", &(cth_thread_opts_t){.name = \"worker-three\"});",
        "t.start()", "cth_thread_start(t);", "threading.active_count(); threading.enumerate()",
        "cth_active_count(); cth_enumerate(threads, cap);  /* or cth_dump_threads(stdout) */",
        "t.join()  # then t.is_alive() is False",
        "cth_thread_join(t, &result, CTH_FOREVER);  /* and greet's return value */", NULL);
    char name[64];
    cth_thread_get_name(cth_current_thread(), name, sizeof name);
    say("current_thread() is %s, ident %#lx, alive: %s", name, cth_get_ident(),
        cth_thread_is_alive(cth_current_thread()) ? "yes" : "no");

    cth_thread_t *t[3];
    const char *who[3] = {"first", "second", "third"};
    for (int i = 0; i < 3; i++) {
        cth_thread_opts_t opts = {.name = i == 2 ? "worker-three" : NULL};
        cth_thread_create(&t[i], greet, (void *)who[i], &opts);
        say("created %s: ident %lu before start (0 until started)", who[i], cth_thread_ident(t[i]));
    }
    for (int i = 0; i < 3; i++)
        cth_thread_start(t[i]);
    say("active_count() = %zu; enumerate():", cth_active_count());
    cth_dump_threads(stdout);
    for (int i = 0; i < 3; i++) {
        void *result;
        cth_thread_join(t[i], &result, CTH_FOREVER);
        say("joined %s: returned \"%s\", alive: %s", who[i], (const char *)result,
            cth_thread_is_alive(t[i]) ? "yes" : "no");
        cth_thread_free(t[i]);
    }
    say("after join, active_count() = %zu", cth_active_count());

    printf("\n");
    tour_code("time.sleep(0.2)", "cth_sleep(0.2);", NULL);
    say("sleep(0.2) blocks only the calling thread, synchronously...");
    double t0 = cth_monotonic();
    cth_sleep(0.2);
    say("...slept %.3f s", cth_monotonic() - t0);

    printf("\n");
    tour_code("_thread.interrupt_main()  # in a worker", "cth_interrupt_main(SIGINT);",
              "time.sleep(10)  # in main: KeyboardInterrupt",
              "int r = cth_sleep(10);  /* in main: returns CTH_EINTR */", NULL);
    say("interrupt_main: a worker interrupts the main thread's 10 s sleep");
    signal(SIGINT, on_sigint);
    cth_thread_t *w;
    cth_thread_create(&w, interrupter, NULL, NULL);
    cth_thread_start(w);
    t0 = cth_monotonic();
    int r = cth_sleep(10);
    say("sleep returned %s after %.3f s", cth_err_name(r), cth_monotonic() - t0);
    cth_thread_join(w, NULL, CTH_FOREVER);
    cth_thread_free(w);
    signal(SIGINT, SIG_DFL);
}

TOUR_SECTION(10, "threads", "Threads: names, idents, enumerate, sleep, interrupt_main",
             tour_threads)
