/* SPDX-License-Identifier: MIT */
/*
 * task_error.h - how a failed user callback reaches its caller (src/error.c).
 */
#ifndef CTH_TASK_ERROR_H
#define CTH_TASK_ERROR_H

/* A user callback returned the nonzero value: record it as the calling
 * thread's cth_task_error() and return CTH_ETASK, the code the blocking
 * call hands back (base.h's callback rule). */
int cth__task_failed(int value);

#endif
