/* SPDX-License-Identifier: MIT */
/*
 * cthreading.h - Python's threading system as a C11 library.
 *
 * Threads with names, idents and daemon flags (thread.h), the
 * synchronization objects (sync.h), and the rest of Python's threading,
 * queue and multiprocessing.dummy modules, one header per module under
 * cthreading/. Unlike CPython, nothing serialises the threads: every thread
 * runs on its own core.
 *
 * Conventions (base.h): every call returns 0 or a negative CTH_E* code;
 * timeouts are double seconds, 0 = do not wait, CTH_FOREVER = no limit.
 *
 *     #include <cthreading.h>
 *
 *     static void *work(void *arg) { printf("hello from %s\n", (char *)arg); return NULL; }
 *
 *     int main(void)
 *     {
 *         cth_thread_t *t;
 *         cth_thread_opts_t opts = {.name = "worker"};
 *         cth_thread_create(&t, work, "a thread", &opts);
 *         cth_thread_start(t);
 *         cth_thread_join(t, NULL, CTH_FOREVER);
 *         cth_thread_free(t);
 *     }
 *
 * Build with `pkg-config --cflags --libs cthreading`, or find_package(cthreading)
 * and target_link_libraries(app cthreading::cthreading).
 */
#ifndef CTHREADING_H
#define CTHREADING_H

#include "cthreading/base.h"
#include "cthreading/local.h"
#include "cthreading/once.h"
#include "cthreading/pool.h"
#include "cthreading/queue.h"
#include "cthreading/sync.h"
#include "cthreading/synchronized.h"
#include "cthreading/thread.h"
#include "cthreading/timer.h"

#endif
