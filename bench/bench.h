/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the benchmark harness (header-only; each bench_<family>.c
 * includes it once), after docs/benchmarking.md: every system of a
 * comparison runs interleaved A B ... B A, BENCH_REPS repetitions (default
 * 11, env CTH_BENCH_REPS), and the table gives each system's median, its
 * ratio to the baseline (systems[0]) computed as the ratio of the two
 * medians shown, the spread of its own values (min..max) and the load
 * average of the machine when the row was written. Numbers are printed in
 * one format: three significant digits, k/M/G above a thousand.
 *
 * A program may run each measurement in a process of its own
 * (bench_isolate): the program re-executes itself as `prog --one GROUP
 * INDEX`, the child runs the named system once to warm up and once to
 * measure, and writes the value on file descriptor 3; so no system inherits
 * another's threads, heap or preemption. CTH_BENCH_QUICK=1 asks the programs
 * for short windows and few items: a check that they work, not a figure.
 *
 * Each row is also appended to results.jsonl (env CTH_BENCH_OUT, default
 * bench/results.jsonl under the current directory; `make bench` runs from
 * build/), one JSON object a line: {"bench", "system", "metric", "value",
 * "unit", "ratio", "better": "lower"|"higher", "load"}.
 */
#ifndef CTH_BENCH_H
#define CTH_BENCH_H

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cthreading.h>

#define BENCH_MAX_REPS 101
#define BENCH_RESULT_FD 3 /* where a child writes its one value */

/* One system of a comparison: run() performs one measurement and returns
 * its value in the comparison's unit (NAN if the system is unavailable). */
struct bench_system {
    const char *name;
    double (*run)(void *ctx);
    void *ctx;
};

/* The child side of bench_isolate: the group and system it is to measure. */
static const char *bench_child_group;
static int bench_child_index = -1;
static int bench_isolated;
/* True while a child's warm-up run is under way: bench_python skips it. */
static int bench_warming;

__attribute__((unused)) static double bench_now(void)
{
    return cth_monotonic();
}

/* CPU seconds used by the whole process so far (user + system). */
__attribute__((unused)) static double bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds used by the calling thread so far. */
__attribute__((unused)) static double bench_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The span of a run of several threads: from the first of them to start to
 * the last to finish, each marking its own start and end. A thread released
 * from a barrier may run before the thread that waits for the run is
 * scheduled again, so that thread's clock would start late.
 */
struct bench_span {
    atomic_llong first_ns, last_ns;
};

__attribute__((unused)) static void bench_span_reset(struct bench_span *s)
{
    atomic_store(&s->first_ns, LLONG_MAX);
    atomic_store(&s->last_ns, LLONG_MIN);
}

/* Mark a thread's start or end (either: the span takes the extremes). */
__attribute__((unused)) static void bench_span_mark(struct bench_span *s)
{
    long long t = (long long)(bench_now() * 1e9);
    long long v = atomic_load(&s->first_ns);
    while (t < v && !atomic_compare_exchange_weak(&s->first_ns, &v, t))
        ;
    v = atomic_load(&s->last_ns);
    while (t > v && !atomic_compare_exchange_weak(&s->last_ns, &v, t))
        ;
}

__attribute__((unused)) static double bench_span_seconds(struct bench_span *s)
{
    return (double)(atomic_load(&s->last_ns) - atomic_load(&s->first_ns)) / 1e9;
}

__attribute__((unused)) static int bench_reps(void)
{
    const char *s = getenv("CTH_BENCH_REPS");
    int n = s && *s ? atoi(s) : 11;
    return n < 1 ? 1 : n > BENCH_MAX_REPS ? BENCH_MAX_REPS : n;
}

/* For a program that takes no arguments (it runs all of itself, in one
 * process): refuse any, rather than run for minutes on a mistyped call. */
__attribute__((unused)) static void bench_no_arguments(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "usage: %s (no arguments: it runs every comparison it has)\n", argv[0]);
        exit(2);
    }
}

/* CTH_BENCH_QUICK=1: short windows and few items, to check a program runs. */
__attribute__((unused)) static int bench_quick(void)
{
    const char *s = getenv("CTH_BENCH_QUICK");
    return s && *s && strcmp(s, "0") != 0;
}

/* The machine's load average over the last minute (NAN if unknown). */
static double bench_load(void)
{
    double load[1];
    return getloadavg(load, 1) == 1 ? load[0] : NAN;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v); NAN if n is 0 or any value is NaN. */
__attribute__((unused)) static double bench_median(double *v, int n)
{
    if (n == 0)
        return NAN;
    for (int i = 0; i < n; i++)
        if (isnan(v[i]))
            return NAN;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The p-th percentile (0..100) of v[0..n) (sorts v). */
__attribute__((unused)) static double bench_percentile(double *v, int n, double p)
{
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    int i = (int)ceil(p / 100.0 * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* The one number format of the tables (and of plot.sh): three significant
 * digits, with k, M or G from a thousand up. */
static const char *bench_fmt(char *buf, size_t size, double v)
{
    static const char *suffix[] = {"", "k", "M", "G", "T"};
    int s = 0;
    if (isnan(v)) {
        snprintf(buf, size, "n/a");
        return buf;
    }
    while (fabs(v) >= 999.5 && s < 4) {
        v /= 1000;
        s++;
    }
    snprintf(buf, size, "%.3g%s", v, suffix[s]);
    return buf;
}

/* Which way a unit reads: rates (".../s", ".../cpu-s"), efficiencies and
 * fairness (fractions) are better higher; times, sizes and CPU spent lower. */
static int bench_higher_is_better(const char *unit)
{
    size_t n = strlen(unit);
    return (n >= 2 && strcmp(unit + n - 2, "/s") == 0) ||
           (n >= 6 && strcmp(unit + n - 6, "/cpu-s") == 0) || strcmp(unit, "fraction") == 0;
}

static FILE *bench_jsonl(void)
{
    static FILE *f;
    if (bench_child_group)
        return NULL; /* a child reports to its parent only */
    if (!f) {
        const char *path = getenv("CTH_BENCH_OUT");
        if (!path || !*path) {
            mkdir("bench", 0777);
            path = "bench/results.jsonl";
        }
        f = fopen(path, "a");
    }
    return f;
}

/* Append one result to results.jsonl (ratio may be NAN: written as null),
 * with the way it reads and the load average now. */
__attribute__((unused)) static void bench_record(const char *bench, const char *system,
                                                 const char *metric, double value, const char *unit,
                                                 double ratio)
{
    FILE *f = bench_jsonl();
    if (!f)
        return;
    fprintf(f, "{\"bench\": \"%s\", \"system\": \"%s\", \"metric\": \"%s\", ", bench, system,
            metric);
    if (isnan(value))
        fprintf(f, "\"value\": null, ");
    else
        fprintf(f, "\"value\": %.6g, ", value);
    fprintf(f, "\"unit\": \"%s\", ", unit);
    if (isnan(ratio))
        fprintf(f, "\"ratio\": null, ");
    else
        fprintf(f, "\"ratio\": %.4f, ", ratio);
    fprintf(f, "\"better\": \"%s\", ", bench_higher_is_better(unit) ? "higher" : "lower");
    double load = bench_load();
    if (isnan(load))
        fprintf(f, "\"load\": null}\n");
    else
        fprintf(f, "\"load\": %.2f}\n", load);
    fflush(f);
}

/* Print a family's heading. */
__attribute__((unused)) static void bench_heading(const char *title)
{
    if (bench_child_group)
        return;
    printf("\n%s\n", title);
    printf("  %-34s %-30s %-19s %7s  %-17s %s\n", "benchmark", "system", "median", "ratio",
           "spread", "load");
}

/*
 * Report one system's values v[0..n) (sorted in place): print its row and
 * append it to results.jsonl. The ratio is the row's median over
 * baseline_median (NAN: a row with no ratio). Returns the median.
 */
__attribute__((unused)) static double bench_report(const char *bench, const char *metric,
                                                   const char *unit, const char *system, double *v,
                                                   int n, double baseline_median)
{
    double med = bench_median(v, n);
    double ratio = med / baseline_median;
    if (!bench_child_group) {
        char m[16], lo[16], hi[16], r[16] = "", spread[40] = "";
        if (!isnan(ratio))
            snprintf(r, sizeof r, "%.2fx", ratio);
        if (n > 1 && !isnan(med))
            snprintf(spread, sizeof spread, "%s..%s", bench_fmt(lo, sizeof lo, v[0]),
                     bench_fmt(hi, sizeof hi, v[n - 1]));
        printf("  %-34s %-30s %7s %-11s %7s  %-17s %.2f\n", bench, system,
               bench_fmt(m, sizeof m, med), isnan(med) ? "" : unit, r, spread, bench_load());
        fflush(stdout);
    }
    bench_record(bench, system, metric, med, unit, ratio);
    return med;
}

/* Make every later bench_compare run each measurement in a fresh process
 * (call early in main, after bench_child_init). */
__attribute__((unused)) static void bench_isolate(void)
{
    bench_isolated = 1;
}

/* In main, before anything else: when this process is a child started by
 * bench_isolate (`prog --one GROUP INDEX`), note what it measures and send
 * its stdout to /dev/null, so that only the value reaches the parent.
 * Returns 1 in a child. */
__attribute__((unused)) static int bench_child_init(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "--one") != 0)
        return 0;
    bench_child_group = argv[2];
    bench_child_index = atoi(argv[3]);
    if (!freopen("/dev/null", "w", stdout))
        fprintf(stderr, "bench: a child's stdout stays open: %s\n", strerror(errno));
    return 1;
}

/* Run system k of group in a fresh process; its value, or NAN. */
static double bench_spawn(const char *group, int k)
{
    int fds[2];
    if (pipe(fds) != 0)
        return NAN;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char index[16];
        snprintf(index, sizeof index, "%d", k);
        close(fds[0]);
        if (fds[1] != BENCH_RESULT_FD) {
            dup2(fds[1], BENCH_RESULT_FD);
            close(fds[1]);
        }
        execl("/proc/self/exe", "bench-child", "--one", group, index, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[64] = "";
    size_t len = 0;
    ssize_t got;
    while (pid > 0 && len < sizeof buf - 1 &&
           (got = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    buf[len] = '\0';
    close(fds[0]);
    int status = 1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    char *end;
    double v = strtod(buf, &end);
    return status == 0 && end != buf ? v : NAN;
}

/* A child's part of bench_compare: measure system bench_child_index of this
 * group (once to warm up, once for the value), hand the value over, exit. */
static void bench_child_run(struct bench_system *sys, int n)
{
    if (bench_child_index < 0 || bench_child_index >= n)
        _exit(2);
    struct bench_system *s = &sys[bench_child_index];
    bench_warming = 1;
    s->run(s->ctx);
    bench_warming = 0;
    double v = s->run(s->ctx);
    char buf[64];
    int len = snprintf(buf, sizeof buf, "%.17g\n", v);
    _exit(write(BENCH_RESULT_FD, buf, (size_t)len) == len ? 0 : 1);
}

/*
 * Run n systems interleaved for reps repetitions and print one row each.
 * The ratio is each system's median over the baseline's (systems[0]); for
 * times below 1 is faster, for throughputs above 1 is more. Medians are also
 * returned in medians[] (may be NULL). Under bench_isolate each
 * measurement runs in a fresh process; in such a child, only the group it
 * is to measure runs (it exits there) and every other returns at once.
 */
__attribute__((unused)) static void bench_compare(const char *bench, const char *metric,
                                                  const char *unit, struct bench_system *sys, int n,
                                                  int reps, double *medians)
{
    static double vals[16][BENCH_MAX_REPS];
    if (n > 16)
        n = 16;
    if (reps > BENCH_MAX_REPS)
        reps = BENCH_MAX_REPS;
    if (bench_child_group) {
        if (strcmp(bench_child_group, bench) == 0)
            bench_child_run(sys, n);
        for (int i = 0; medians && i < n; i++)
            medians[i] = NAN;
        return;
    }
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++) {
            int k = (r % 2) ? n - 1 - i : i; /* A B B A: neither always goes first */
            vals[k][r] = bench_isolated ? bench_spawn(bench, k) : sys[k].run(sys[k].ctx);
        }
    }
    double base = bench_median(vals[0], reps);
    for (int i = 0; i < n; i++) {
        double med = bench_report(bench, metric, unit, sys[i].name, vals[i], reps, base);
        if (medians)
            medians[i] = med;
    }
}

/* Run cmd (a shell command line), read the first number it prints (NAN if
 * none). */
__attribute__((unused)) static double bench_first_number(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    double v = NAN;
    if (p) {
        if (fscanf(p, "%lf", &v) != 1)
            v = NAN;
        pclose(p);
    }
    return v;
}

/*
 * Run a Python 3 snippet that prints one number, and return it (NAN if no
 * python3 or no number). Used for the Python peers, with the same
 * repetition scheme as the C systems; a child's warm-up skips it (Python
 * runs in a process of its own anyway).
 */
__attribute__((unused)) static double bench_python(const char *script)
{
    if (bench_warming)
        return NAN;
    char path[] = "/tmp/cth_bench_py_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NAN;
    FILE *f = fdopen(fd, "w");
    fputs(script, f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 %s 2>/dev/null", path);
    double v = bench_first_number(cmd);
    remove(path);
    return v;
}

#endif
