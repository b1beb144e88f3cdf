/* SPDX-License-Identifier: MIT */
/*
 * guards.c - compiled, never run, by tests/compile/check.sh: every form of
 * CTH_SYNCHRONIZED and CTH_GUARD must compile without a warning under
 * clang -Wall -Wextra -Wpedantic -Wshadow -Werror; in particular a guard
 * the scope never names again is not an unused variable.
 */
#include <cthreading/synchronized.h>

static cth_lock_t lock = CTH_LOCK_INIT;
static cth_rlock_t rlock = CTH_RLOCK_INIT;
static long counter;

long guards_every_form(void);

long guards_every_form(void)
{
    CTH_SYNCHRONIZED {
        counter++;
    }
    CTH_SYNCHRONIZED_ON(&lock) {
        CTH_SYNCHRONIZED_ON(&rlock) { /* nested: distinct hidden guards */
            counter++;
        }
    }
    {
        CTH_GUARD(held, &lock); /* named, then never used: no warning */
        counter++;
    }
    {
        CTH_GUARD(outer, &rlock);
        {
            CTH_GUARD(inner, &rlock);
            counter++;
        }
    }
    CTH_GUARD(until_return, &lock);
    return counter;
}
