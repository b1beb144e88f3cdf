/* SPDX-License-Identifier: MIT */
/*
 * timer.c - the tour's Timer section: Timer against sleep. A Timer tea
 * while the main thread runs on (Timer blocks asynchronously, time.sleep
 * synchronously); a cancelled one never fires; a periodic one ticks on its
 * schedule until its own function cancels it.
 */
#include <stdatomic.h>

#include "tour.h"

static double t0;

static void ring(void *arg)
{
    say("  [%.2f s] timer '%s' fired on a worker thread", cth_monotonic() - t0, (const char *)arg);
}

static atomic_int ticks;
static void tick(void *arg)
{
    (void)arg;
    int n = atomic_fetch_add(&ticks, 1) + 1;
    say("  [%.2f s] periodic tick %d", cth_monotonic() - t0, n);
    if (n == 3)
        cth_timer_cancel(cth_timer_current()); /* a periodic timer stops itself */
}

static void tour_timer(void)
{
    tour_code("tea = threading.Timer(0.3, ring, args=(\"tea\",)); tea.start()",
              "cth_timer_create(&tea, 0.3, ring, \"tea\", NULL); cth_timer_start(tea);",
              "# a periodic timer: in Python, a Timer that starts the next one",
              "cth_timer_create(&periodic, 0.1, tick, NULL, &(cth_timer_opts_t){.period = 0.2});",
              "time.sleep(0.35)  # the synchronous form: this thread waits", "cth_sleep(0.35);",
              "alarm.cancel()", "cth_timer_cancel(alarm);",
              "# stop a periodic timer from its own function",
              "cth_timer_cancel(cth_timer_current());", NULL);
    t0 = cth_monotonic();
    cth_timer_t *tea, *alarm, *periodic;
    cth_timer_create(&tea, 0.3, ring, "tea", NULL);
    cth_timer_create(&alarm, 0.5, ring, "alarm", NULL);
    cth_timer_opts_t every = {.period = 0.2};
    cth_timer_create(&periodic, 0.1, tick, NULL, &every);
    cth_timer_start(tea);
    cth_timer_start(alarm);
    cth_timer_start(periodic);
    say("[%.2f s] started 3 timers on one shared service; the main thread runs on",
        cth_monotonic() - t0);

    cth_sleep(0.35); /* the synchronous form: this thread waits */
    say("[%.2f s] main slept 0.35 s meanwhile (time.sleep): 'tea' is %s", cth_monotonic() - t0,
        cth_timer_state(tea) == CTH_TIMER_FIRED ? "fired" : "not fired yet");
    cth_timer_cancel(alarm);
    say("[%.2f s] cancelled 'alarm' before its 0.5 s: state %s, finished %s", cth_monotonic() - t0,
        cth_timer_state(alarm) == CTH_TIMER_CANCELLED ? "cancelled" : "?",
        cth_timer_finished(alarm) ? "yes" : "no");
    cth_timer_join(periodic, CTH_FOREVER);
    cth_sleep(0.25);
    say("[%.2f s] 'alarm' never rang; the periodic timer stopped after %d ticks",
        cth_monotonic() - t0, atomic_load(&ticks));
    cth_timer_free(tea);
    cth_timer_free(alarm);
    cth_timer_free(periodic);
}

TOUR_SECTION(20, "timer", "Timer vs sleep: a Timer fires while main runs on; one is cancelled",
             tour_timer)
