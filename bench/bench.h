/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the benchmark harness (header-only; each bench_<family>.c
 * includes it once), after docs/benchmarking.md: every system of a family runs
 * in one program, interleaved A B A B ..., BENCH_REPS repetitions (default
 * 11, env CTH_BENCH_REPS), and the table reports each system's median value
 * and its median ratio to the baseline (systems[0]) of the same repetition,
 * with the spread (min..max of the ratios). Each row is also appended to
 * results.jsonl (env CTH_BENCH_OUT, default bench/results.jsonl under the
 * current directory; `make bench` runs from build/), one JSON object a line:
 * {"bench": ..., "system": ..., "metric": ..., "value": N, "unit": ..., "ratio": R}.
 */
#ifndef CTH_BENCH_H
#define CTH_BENCH_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <cthreading.h>

#define BENCH_MAX_REPS 101

/* One system of a comparison: run() performs one measurement and returns
 * its value in the comparison's unit (NAN if the system is unavailable). */
struct bench_system {
    const char *name;
    double (*run)(void *ctx);
    void *ctx;
};

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

__attribute__((unused)) static int bench_reps(void)
{
    const char *s = getenv("CTH_BENCH_REPS");
    int n = s && *s ? atoi(s) : 11;
    return n < 1 ? 1 : n > BENCH_MAX_REPS ? BENCH_MAX_REPS : n;
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

static FILE *bench_jsonl(void)
{
    static FILE *f;
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

/* Append one result to results.jsonl (ratio may be NAN: written as null). */
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
        fprintf(f, "\"ratio\": null}\n");
    else
        fprintf(f, "\"ratio\": %.4f}\n", ratio);
    fflush(f);
}

/* Print a family's heading. */
__attribute__((unused)) static void bench_heading(const char *title)
{
    printf("\n%s\n", title);
    printf("  %-34s %-28s %14s %9s  %s\n", "benchmark", "system", "median", "ratio", "spread");
}

/*
 * Run n systems interleaved for reps repetitions and print one row each.
 * lower_is_better says which way the ratio reads (the ratio is always
 * value / baseline value, so for times below 1 is faster, for throughputs
 * above 1 is more). Medians are also returned in medians[] (may be NULL).
 */
__attribute__((unused)) static void bench_compare(const char *bench, const char *metric,
                                                  const char *unit, struct bench_system *sys, int n,
                                                  int reps, double *medians)
{
    static double vals[16][BENCH_MAX_REPS], ratios[16][BENCH_MAX_REPS];
    if (n > 16)
        n = 16;
    if (reps > BENCH_MAX_REPS)
        reps = BENCH_MAX_REPS;
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++) {
            int k = (r % 2) ? n - 1 - i : i; /* A B B A: neither always goes first */
            vals[k][r] = sys[k].run(sys[k].ctx);
        }
        for (int i = 0; i < n; i++)
            ratios[i][r] = vals[i][r] / vals[0][r];
    }
    for (int i = 0; i < n; i++) {
        double med = bench_median(vals[i], reps);
        double rmed = bench_median(ratios[i], reps);
        double lo = ratios[i][0], hi = ratios[i][reps - 1]; /* sorted by bench_median */
        if (medians)
            medians[i] = med;
        if (isnan(med)) {
            printf("  %-34s %-28s %14s\n", bench, sys[i].name, "n/a");
        } else {
            char spread[40] = "";
            if (i > 0 && !isnan(rmed))
                snprintf(spread, sizeof spread, "%.2f..%.2f", lo, hi);
            printf("  %-34s %-28s %10.4g %-3s %8.2fx  %s\n", bench, sys[i].name, med, unit, rmed,
                   spread);
        }
        bench_record(bench, sys[i].name, metric, med, unit, rmed);
    }
}

/*
 * Run a Python 3 snippet that prints one number, and return it (NAN if no
 * python3 or no number). Used for the Python peers, with the same
 * repetition scheme as the C systems.
 */
__attribute__((unused)) static double bench_python(const char *script)
{
    char path[] = "/tmp/cth_bench_py_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NAN;
    FILE *f = fdopen(fd, "w");
    fputs(script, f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 %s 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    double v = NAN;
    if (p) {
        if (fscanf(p, "%lf", &v) != 1)
            v = NAN;
        pclose(p);
    }
    remove(path);
    return v;
}

#endif
