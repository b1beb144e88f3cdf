/* SPDX-License-Identifier: MIT */
/*
 * check.h - the test harness: CHECK macros that abort with file:line (they
 * work from any thread), CTH_TEST(name) to register a sub-test, and a main()
 * that runs the sub-test named on the command line (all of them with no
 * argument, the list with --list). CMake registers one CTest test per
 * CTH_TEST found in the source, so each runs in its own process under a
 * timeout and a deadlock fails instead of hanging.
 *
 * CTH_CHILD(name) registers a program that is not a test of its own: a test
 * runs it in a child process with check_run_child() to check exit
 * behaviour (shutdown, daemon threads, signals).
 */
#ifndef CTH_TESTS_CHECK_H
#define CTH_TESTS_CHECK_H

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cthreading.h>

/* In the helgrind build (-DCTH_VALGRIND=ON) the tests' own atomics tell
 * helgrind what they order, as the library's do (src/valgrind_atomics.h);
 * RUNNING_ON_VALGRIND lets a test that valgrind cannot run skip itself. */
#ifdef CTH_VALGRIND
#include <valgrind/valgrind.h>

#include "valgrind_atomics.h"
#else
#define RUNNING_ON_VALGRIND 0
#endif

static void check_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

static void check_fail_eq(const char *file, int line, const char *a, const char *b, long long va,
                          long long vb)
{
    fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", file, line, a, b, va, vb);
    fflush(stderr);
    abort();
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            check_fail(__FILE__, __LINE__, #cond);                                                 \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long check_va_ = (long long)(a), check_vb_ = (long long)(b);                          \
        if (check_va_ != check_vb_)                                                                \
            check_fail_eq(__FILE__, __LINE__, #a, #b, check_va_, check_vb_);                       \
    } while (0)

/* The call returned 0. */
#define CHECK_OK(call) CHECK_EQ((call), 0)

/* Seconds on the monotonic clock, for "waited at least" checks: the clock
 * every cthreading timeout is measured on. */
__attribute__((unused)) static double check_now(void)
{
    return cth_monotonic();
}

/* "At least t" allows 1 ms of slack, for a start read a moment after the
 * wait it measures began (a timer started before it, say). */
#define CHECK_WAITED_AT_LEAST(start, t) CHECK(check_now() - (start) >= (t)-0.001)

/* The exit status of a sub-test that skipped itself: CMake gives every test
 * SKIP_RETURN_CODE 77, so CTest reports it as skipped, not passed. */
#define CHECK_SKIP_CODE 77

/* Set while main runs one sub-test named on the command line (as CTest does). */
static int check_single;

/* Skip the running sub-test, saying why: a sub-test run alone exits with
 * CHECK_SKIP_CODE; among all of them (no argument) the others go on. */
#define CHECK_SKIP(why)                                                                            \
    do {                                                                                           \
        check_skip(why);                                                                           \
        return;                                                                                    \
    } while (0)

__attribute__((unused)) static void check_skip(const char *why)
{
    printf("skipped: %s\n", why);
    if (check_single) {
        fflush(NULL);
        exit(CHECK_SKIP_CODE);
    }
}

typedef void (*check_fn)(void);
struct check_entry {
    const char *name;
    check_fn fn;
    int is_child;
};
static struct check_entry check_entries[512];
static int check_count;

static void check_register(const char *name, check_fn fn, int is_child)
{
    if (check_count < (int)(sizeof check_entries / sizeof check_entries[0]))
        check_entries[check_count++] = (struct check_entry){name, fn, is_child};
}

#define CTH_TEST(name)                                                                             \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void check_reg_##name(void)                                \
    {                                                                                              \
        check_register(#name, test_##name, 0);                                                     \
    }                                                                                              \
    static void test_##name(void)

#define CTH_CHILD(name)                                                                            \
    static void child_##name(void);                                                                \
    __attribute__((constructor)) static void check_reg_child_##name(void)                          \
    {                                                                                              \
        check_register("child_" #name, child_##name, 1);                                           \
    }                                                                                              \
    static void child_##name(void)

/* Stress scale: dflt multiplied by the CTH_STRESS_ITERS environment
 * variable (a factor, default 1; the sanitizer runs use less), at least 1. */
__attribute__((unused)) static long check_iters(long dflt)
{
    const char *s = getenv("CTH_STRESS_ITERS");
    double f = s && *s ? atof(s) : 1.0;
    long n = (long)((double)dflt * f);
    return n > 0 ? n : 1;
}

/*
 * Run CTH_CHILD(name) of this executable in a child process, its stdout and
 * stderr captured into out (size bytes, NUL-terminated). Returns the wait
 * status (use WIFEXITED and friends).
 */
__attribute__((unused)) static int check_run_child(const char *name, char *out, size_t size)
{
    /* The path, not /proc/self/exe itself: under valgrind only the link's
     * reading is the test program's. */
    char exe[4096];
    ssize_t exelen = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(exelen > 0);
    exe[exelen] = '\0';
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        char full[256];
        snprintf(full, sizeof full, "child_%s", name);
        execl(exe, "child", full, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], out + len, size - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    return status;
}

/* A SIGINT handler that does nothing: installed, it lets
 * cth_interrupt_main(SIGINT) interrupt the main thread without killing it. */
__attribute__((unused)) static void check_sigint_noop(int sig)
{
    (void)sig;
}

/* A thread body for interruption tests: after 0.1 s, interrupt the main
 * thread (install check_sigint_noop for SIGINT first). */
__attribute__((unused)) static void *check_interrupter(void *arg)
{
    (void)arg;
    cth_sleep(0.1);
    CHECK_OK(cth_interrupt_main(SIGINT));
    return NULL;
}

/* Run CTH_CHILD(name) and check that it exits with status 0 having printed
 * exactly `expected` (stdout and stderr together); on a mismatch, show both. */
__attribute__((unused)) static void check_child_prints(const char *name, const char *expected)
{
    char out[4096];
    int status = check_run_child(name, out, sizeof out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strcmp(out, expected) != 0) {
        fprintf(stderr, "child %s: wait status %#x; printed:\n%s\nexpected:\n%s", name, status, out,
                expected);
        CHECK(!"the child exits 0 and prints what is expected");
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < check_count; i++)
            if (!check_entries[i].is_child)
                printf("%s\n", check_entries[i].name);
        return 0;
    }
    int ran = 0;
    check_single = argc > 1;
    for (int i = 0; i < check_count; i++) {
        if (argc > 1 ? strcmp(argv[1], check_entries[i].name) != 0 : check_entries[i].is_child)
            continue;
        if (!check_entries[i].is_child)
            printf("test %s ...\n", check_entries[i].name);
        check_entries[i].fn();
        if (!check_entries[i].is_child)
            printf("test %s ok\n", check_entries[i].name);
        ran++;
    }
    if (argc > 1 && ran == 0) {
        fprintf(stderr, "no test named %s\n", argv[1]);
        return 2;
    }
    return 0;
}

#endif
