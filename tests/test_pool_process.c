/* SPDX-License-Identifier: MIT */
/*
 * test_pool_process.c - the process pool (pool_process.c) and the platform
 * pieces under it: shared memory and process-shared futexes.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"
#include "platform.h"

#if defined(__linux__) && !defined(CTH_POSIX_FUTEX)
#define HAVE_PROCESSES 1
#else
#define HAVE_PROCESSES 0
#endif

#define SKIP_WITHOUT_PROCESSES()                                                                   \
    do {                                                                                           \
        if (!HAVE_PROCESSES)                                                                       \
            CHECK_SKIP("process pools are Linux's");                                               \
    } while (0)

/* ---- the platform pieces ------------------------------------------------------------- */

/* A memfd mapped twice (as a proxy and its worker do), the second time in a
 * fork child that gets the descriptor, not the mapping (MADV_DONTFORK):
 * writes meet, and the futex wakes across the processes. */
CTH_TEST(shared_memory_and_futex_across_processes)
{
    SKIP_WITHOUT_PROCESSES();
    int fd;
    CHECK_OK(cth__os_shm_create(4096, &fd));
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    _Atomic uint32_t *words = cth__os_shm_map(fd, 4096, true);
    CHECK(words != NULL);
    CHECK_EQ(atomic_load(&words[0]), 0); /* zero-filled */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* the parent's mapping did not follow (mincore fails on it): map
         * the descriptor anew */
        unsigned char in_core;
        if (mincore((void *)words, 4096, &in_core) == 0)
            _exit(3);
        _Atomic uint32_t *mine = cth__os_shm_map(fd, 4096, true);
        if (!mine)
            _exit(4);
        while (atomic_load(&mine[0]) == 0) /* wait for the parent's word */
            cth__os_futex_wait_shared(&mine[0], 0, CTH__NO_DEADLINE);
        atomic_store(&mine[1], atomic_load(&mine[0]) + 1);
        cth__os_futex_wake_shared(&mine[1], 1);
        _exit(0);
    }
    cth_sleep(0.05); /* let the child sleep on the word, usually */
    atomic_store(&words[0], 41);
    cth__os_futex_wake_shared(&words[0], 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_EQ(atomic_load(&words[1]), 42);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cth__os_shm_unmap((void *)words, 4096);
    close(fd);
}

/* The shared futex wait keeps its deadline, and returns at once on a word
 * that differs. */
CTH_TEST(shared_futex_deadline)
{
    SKIP_WITHOUT_PROCESSES();
    int fd;
    CHECK_OK(cth__os_shm_create(64, &fd));
    _Atomic uint32_t *word = cth__os_shm_map(fd, 64, true);
    CHECK(word != NULL);
    double start = check_now();
    CHECK_EQ(cth__os_futex_wait_shared(word, 0, cth__now_ns() + 50 * 1000 * 1000), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.05);
    CHECK_OK(cth__os_futex_wait_shared(word, 7, CTH__NO_DEADLINE));
    cth__os_shm_unmap((void *)word, 64);
    close(fd);
}

/* A read-only mapping of shared memory reads what a writer wrote. */
CTH_TEST(shared_memory_read_only)
{
    SKIP_WITHOUT_PROCESSES();
    int fd;
    CHECK_OK(cth__os_shm_create(3 * 4096, &fd));
    char *w = cth__os_shm_map(fd, 3 * 4096, true);
    char *r = cth__os_shm_map(fd, 3 * 4096, false);
    CHECK(w && r && w != r);
    w[2 * 4096 + 5] = 'x';
    CHECK_EQ(r[2 * 4096 + 5], 'x');
    cth__os_shm_unmap(w, 3 * 4096);
    cth__os_shm_unmap(r, 3 * 4096);
    close(fd);
}
