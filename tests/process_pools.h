/* SPDX-License-Identifier: MIT */
/*
 * process_pools.h - whether the process-pool tests can run here, and a
 * test body run under every start method, for the test files that make
 * process pools. Include it after check.h.
 */
#ifndef CTH_TEST_PROCESS_POOLS_H
#define CTH_TEST_PROCESS_POOLS_H

#if defined(__linux__) && !defined(CTH_POSIX_FUTEX)
#define HAVE_PROCESSES 1
#else
#define HAVE_PROCESSES 0
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* a sanitizer's handler turns a SIGSEGV into exit(1) */
#else
#define SANITIZED 0
#endif

/* Why process pools cannot run here, or NULL: not Linux, or a system (or
 * valgrind) without pidfds, where creating one is CTH_ENOTSUP. */
__attribute__((unused)) static const char *no_processes(void)
{
    if (!HAVE_PROCESSES)
        return "process pools are Linux's";
    static int probed; /* 0: not yet, 1: fine, 2: CTH_ENOTSUP */
    if (!probed) {
        cth_pool_t *p = NULL;
        int err = cth_pool_create(&p, &(cth_pool_opts_t){.processes = 1,
                                                         .backend = CTH_POOL_PROCESSES,
                                                         .start_method = CTH_START_FORK});
        cth_pool_free(p);
        probed = err == CTH_ENOTSUP ? 2 : 1;
    }
    return probed == 2 ? "no process pool on this system (no pidfds?)" : NULL;
}

/* Run a test body under every start method, the default among them (or
 * skip the test where process pools cannot run). */
__attribute__((unused)) static void over_methods(void (*body)(cth_start_method_t method))
{
    static const cth_start_method_t methods[] = {CTH_START_FORK, CTH_START_SPAWN,
                                                 CTH_START_FORKSERVER, CTH_START_DEFAULT};
    static const char *const names[] = {"fork", "spawn", "forkserver", "default"};
    if (no_processes()) {
        check_skip(no_processes());
        return;
    }
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        printf("start method %s\n", names[i]);
        body(methods[i]);
    }
}

#endif
