/* SPDX-License-Identifier: MIT */
/*
 * timer_service.h - the service's calls that timer.c (the Timer object)
 * makes: timer_service.c (the heap, its thread and the workers) schedules
 * and cancels. The timer itself is timer_record.h's. Private to the
 * library.
 */
#ifndef CTH_TIMER_SERVICE_H
#define CTH_TIMER_SERVICE_H

#include "timer_record.h"

/* Schedule a created timer (cth_timer_start's work): 0, CTH_EPERM,
 * CTH_ESHUTDOWN, CTH_ENOMEM, CTH_EAGAIN. */
int cth__timer_schedule(struct cth_timer *t);

/* Cancel (cth_timer_cancel's work). */
void cth__timer_unschedule(struct cth_timer *t);

/* For tests: fn runs in a thread that grows the heap, while the service's
 * lock is released for the allocation of the new segment (NULL: nothing). */
void cth__timer_heap_grow_hook(void (*fn)(void));

#endif
