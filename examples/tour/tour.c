/* SPDX-License-Identifier: MIT */
/*
 * tour.c - `make run`: the seed, runnable, section by section. Each part
 * shows the Python it mirrors beside the C that does the same, then runs
 * that C and says what happened. `tour --list` lists the sections, `tour
 * NAME` runs one.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tour.h"

struct section {
    int order;
    const char *name, *heading;
    tour_fn fn;
};

static struct section sections[32];
static int nsections;

void tour_register(int order, const char *name, const char *heading, tour_fn fn)
{
    if (nsections < (int)(sizeof sections / sizeof sections[0]))
        sections[nsections++] = (struct section){order, name, heading, fn};
}

int tour_is_tty(void)
{
    return isatty(1);
}

void tour_code(const char *python, const char *c, ...)
{
    va_list ap;
    va_start(ap, c);
    while (python && c) {
        printf("    python | %s\n         C | %s\n", python, c);
        python = va_arg(ap, const char *);
        c = python ? va_arg(ap, const char *) : NULL;
    }
    va_end(ap);
}

void tour_progress(const char *what, long done, long total)
{
    if (tour_is_tty()) {
        printf("\r  %s: %ld/%ld", what, done, total);
        if (done >= total)
            printf("\r\033[K");
        fflush(stdout);
        return;
    }
    /* a plain line at the start, half-way and at the end */
    static long last_half = -1;
    long half = total > 0 ? done * 2 / total : 2;
    if (done == 0)
        last_half = -1;
    if (half != last_half) {
        last_half = half;
        printf("  %s: %ld/%ld\n", what, done, total);
    }
}

static int by_order(const void *a, const void *b)
{
    return ((const struct section *)a)->order - ((const struct section *)b)->order;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    qsort(sections, (size_t)nsections, sizeof sections[0], by_order);
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < nsections; i++)
            printf("%-10s %s\n", sections[i].name, sections[i].heading);
        return 0;
    }
    double start = cth_monotonic();
    int ran = 0;
    for (int i = 0; i < nsections; i++) {
        if (argc > 1 && strcmp(argv[1], sections[i].name) != 0)
            continue;
        printf("== %s: %s\n", sections[i].name, sections[i].heading);
        sections[i].fn();
        printf("\n");
        ran++;
    }
    if (argc > 1 && !ran) {
        fprintf(stderr, "tour: no section named '%s' (try --list)\n", argv[1]);
        return 2;
    }
    printf("tour done: %d section%s in %.2f s\n", ran, ran == 1 ? "" : "s",
           cth_monotonic() - start);
    return 0;
}
