/*
 * test_thread.c - Thread and the module-level calls, ported in spirit from
 * CPython's Lib/test/test_threading.py and test_thread.py.
 */
#include <pthread.h>
#include <signal.h>

#include "check.h"

static void *return_arg(void *arg)
{
    return arg;
}

/* test_threading.ThreadTests.test_various_ops (ident part): ident is 0
 * before start, non-zero after, kept after the end. */
CTH_TEST(ident_before_and_after_start)
{
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, return_arg, (void *)"x", NULL));
    CHECK_EQ(cth_thread_ident(t), 0);
    CHECK_EQ(cth_thread_native_id(t), 0);
    CHECK_OK(cth_thread_start(t));
    CHECK(cth_thread_ident(t) != 0);
    CHECK(cth_thread_native_id(t) > 0);
    void *r = NULL;
    CHECK_OK(cth_thread_join(t, CTH_FOREVER, &r));
    CHECK(strcmp(r, "x") == 0);
    CHECK(cth_thread_ident(t) != 0);
    CHECK(!cth_thread_is_alive(t));
    cth_thread_free(t);
}
