/* SPDX-License-Identifier: MIT */
/*
 * test_examples.c - the small programs of examples/: each is run from the
 * build tree and its whole output compared with what it must print (their
 * output is deterministic by design: threads that print are joined in
 * turn, or print from a barrier's action or a timer, one at a time). A
 * build without the examples (CTH_BUILD_EXAMPLES=OFF) skips these.
 */
#include <libgen.h>
#include <limits.h>

#include "check.h"

/* Run examples/<name> and compare its output (and exit status 0). */
static void check_example(const char *name, const char *expected)
{
    char exe[PATH_MAX], cmd[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    snprintf(cmd, sizeof cmd, "%s/../examples/%s", dirname(exe), name);
    if (access(cmd, X_OK) != 0) {
        CHECK_SKIP("examples not built");
    }
    FILE *p = popen(cmd, "r");
    CHECK(p);
    static char got[8192];
    size_t len = fread(got, 1, sizeof got - 1, p);
    got[len] = '\0';
    CHECK_EQ(pclose(p), 0);
    if (strcmp(got, expected) != 0) {
        printf("%s printed:\n%s---\nexpected:\n%s---\n", name, got, expected);
        CHECK(!"the output differs");
    }
}

CTH_TEST(hello_threads)
{
    check_example("hello_threads", "current_thread().name = MainThread\n"
                                   "before start: is_alive() = False, ident = 0\n"
                                   "started 3: active_count() = 4, is_alive() = True\n"
                                   "counter-1: sum(1..10) = 55, is_alive() = False\n"
                                   "counter-2: sum(1..20) = 210, is_alive() = False\n"
                                   "counter-3: sum(1..30) = 465, is_alive() = False\n"
                                   "after join: active_count() = 1\n");
}

CTH_TEST(producer_consumer)
{
    check_example("producer_consumer", "q.join() returned: 2000 items taken, unfinished_tasks = 0\n"
                                       "sum of the items: 11001000 (expected 11001000)\n"
                                       "consumer 1 stopped: CTH_ESHUTDOWN\n"
                                       "consumer 2 stopped: CTH_ESHUTDOWN\n"
                                       "consumer 3 stopped: CTH_ESHUTDOWN\n"
                                       "put after shutdown: CTH_ESHUTDOWN\n");
}

CTH_TEST(pool_map)
{
    check_example("pool_map", "map: 1 4 9 16 25 36 49 64 81 100\n"
                              "imap_unordered: 100 results, sum of squares 1..100 = 338350\n"
                              "callback: square(7) -> 49\n"
                              "error_callback: refuse(42) -> CTH_ETASK, task value 42\n"
                              "get: CTH_ETASK\n");
}

CTH_TEST(timers)
{
    check_example("timers", "tick 1\n"
                            "tick 2\n"
                            "tick 3\n"
                            "periodic timer: cancelled after 3 ticks\n"
                            "main goes on at once: tea is pending\n"
                            "timer 'tea' rang\n"
                            "joined tea after at least 0.5 s: fired\n"
                            "alarm: cancelled, finished() = True\n");
}

CTH_TEST(thread_locals)
{
    check_example("thread_locals",
                  "worker-a starts: local is unset, stack top is NULL\n"
                  "  worker-a handles GET / (depth 1)\n"
                  "  worker-a handles GET /nested (depth 2)\n"
                  "  worker-a handles GET / (depth 1)\n"
                  "worker-b starts: local is unset, stack top is NULL\n"
                  "  worker-b handles GET / (depth 1)\n"
                  "  worker-b handles GET /nested (depth 2)\n"
                  "  worker-b handles GET / (depth 1)\n"
                  "main still sees: local \"main\", stack top \"main's request\"\n");
}

CTH_TEST(synchronized_singleton)
{
    check_example(
        "synchronized_singleton",
        "4 threads x 100000 calls: hits = 400000, balance = 400000\n"
        "singleton: constructed 1 time, every thread got the same instance: \"debug=off\"\n");
}

CTH_TEST(barrier_event)
{
    check_example("barrier_event", "start.wait(timeout=0.05) before set: CTH_ETIMEDOUT\n"
                                   "start.set()\n"
                                   "phase 1: all 3 workers done\n"
                                   "phase 2: all 3 workers done\n"
                                   "phase 3: all 3 workers done\n"
                                   "start.is_set() = True, barrier broken = False\n"
                                   "wait after abort(): CTH_EBROKEN\n");
}
