/* SPDX-License-Identifier: MIT */
/*
 * timers.c - threading.Timer: a one-shot timer that fires while main goes
 * on, one cancelled before its time, and a periodic timer (Python needs a
 * loop around Timer for that) that cancels itself after three ticks:
 *
 *     t = threading.Timer(0.5, ring, args=("tea",)); t.start()
 *     late = threading.Timer(5.0, ring, args=("alarm",)); late.start()
 *     late.cancel(); t.join()
 */
#include <stdio.h>

#include <cthreading.h>

static void ring(void *arg)
{
    printf("timer '%s' rang\n", (const char *)arg);
}

static int ticks;

static void tick(void *arg)
{
    (void)arg;
    printf("tick %d\n", ++ticks); /* one tick at a time: a timer never overlaps itself */
    if (ticks == 3)
        cth_timer_cancel(cth_timer_current()); /* stop from inside */
}

static const char *state_name(cth_timer_state_t s)
{
    return s == CTH_TIMER_FIRED ? "fired" : s == CTH_TIMER_CANCELLED ? "cancelled" : "pending";
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cth_timer_t *periodic;
    cth_timer_opts_t every = {.period = 0.05};
    cth_timer_create(&periodic, 0.05, tick, NULL, &every);
    cth_timer_start(periodic);
    cth_timer_join(periodic, CTH_FOREVER); /* returns once it has cancelled itself */
    printf("periodic timer: %s after %d ticks\n", state_name(cth_timer_state(periodic)), ticks);

    cth_timer_t *tea, *alarm;
    cth_timer_create(&tea, 0.5, ring, "tea", NULL);
    cth_timer_create(&alarm, 5.0, ring, "alarm", NULL);
    double t0 = cth_monotonic();
    cth_timer_start(tea);
    cth_timer_start(alarm);
    printf("main goes on at once: tea is %s\n", state_name(cth_timer_state(tea)));
    cth_timer_cancel(alarm); /* before its 5 s: it never rings */
    cth_timer_join(tea, CTH_FOREVER);
    printf("joined tea after %s 0.5 s: %s\n",
           cth_monotonic() - t0 >= 0.5 ? "at least" : "LESS THAN",
           state_name(cth_timer_state(tea)));
    printf("alarm: %s, finished() = %s\n", state_name(cth_timer_state(alarm)),
           cth_timer_finished(alarm) ? "True" : "False");
    cth_timer_free(periodic);
    cth_timer_free(tea);
    cth_timer_free(alarm);
    return 0;
}
