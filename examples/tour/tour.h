/* SPDX-License-Identifier: MIT */
/*
 * tour.h - the tour's sections. Each file of examples/tour/ adds one with
 * TOUR_SECTION(order, "name", "heading", function); the tour runs them in
 * order, or the one named on its command line.
 */
#ifndef CTH_TOUR_H
#define CTH_TOUR_H

#include <stdio.h>

#include <cthreading.h>

typedef void (*tour_fn)(void);

void tour_register(int order, const char *name, const char *heading, tour_fn fn);

#define TOUR_SECTION(order, name, heading, fn)                                                     \
    __attribute__((constructor)) static void tour_reg_##fn(void)                                   \
    {                                                                                              \
        tour_register(order, name, heading, fn);                                                   \
    }

/* Print a line of the tour, indented under its section. */
#define say(...) (printf("  "), printf(__VA_ARGS__), printf("\n"))

/* Show the Python a part mirrors and the C that does the same: pairs of
 * lines, a line of Python then its C twin, ending with NULL. */
void tour_code(const char *python, const char *c, ...);

/* Whether stdout is a terminal (progress lines are redrawn there). */
int tour_is_tty(void);

/* A progress line: redrawn in place on a terminal; otherwise a plain line
 * at the start, half-way and at the end. */
void tour_progress(const char *what, long done, long total);

#endif
