/* SPDX-License-Identifier: MIT */
/*
 * static_fork_gen.c - a program linked with the static library that uses a
 * Lock and nothing else of the library, as a program with its own pthreads
 * may. Its fork children must still see a new fork generation (lock.h),
 * or a child takes the parent's lock waiters for its own and can sleep on a
 * free lock forever. Own main, no test harness: the harness would link the
 * rest of the library and hide a missing piece. Exits 0 when the child saw
 * a new generation.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lock.h"

int main(void)
{
    cth_lock_t lock = CTH_LOCK_INIT;
    if (cth_lock_acquire(&lock, CTH_FOREVER) != 0 || cth_lock_release(&lock) != 0)
        return 2;
    uint32_t parent_gen = cth__fork_gen();
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0)
        _exit(cth__fork_gen() != parent_gen ? 0 : 1);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 2;
    if (WEXITSTATUS(status) != 0)
        fprintf(stderr, "the fork child kept its parent's generation %u\n", (unsigned)parent_gen);
    return WEXITSTATUS(status);
}
