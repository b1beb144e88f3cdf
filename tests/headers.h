/* SPDX-License-Identifier: MIT */
/*
 * headers.h - for the tests that keep the headers honest (test_docs.c,
 * test_bad_input.c): read a file whole, find whole identifiers, and walk
 * every function the public headers export (CTH_API) with its header's text.
 */
#ifndef CTH_TESTS_HEADERS_H
#define CTH_TESTS_HEADERS_H

#include <ctype.h>
#include <dirent.h>

#include "check.h"

/* The whole file, NUL-terminated (malloc'd); aborts if it cannot be read. */
static char *headers_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    CHECK(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A file of the source tree, by its path from the top. */
__attribute__((unused)) static char *headers_slurp_source(const char *relative)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", CTH_SOURCE_DIR, relative);
    return headers_slurp(path);
}

/* Whether word occurs in text as a whole identifier. */
__attribute__((unused)) static int headers_has_word(const char *text, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        int before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after = isalnum((unsigned char)p[len]) || p[len] == '_';
        if (!before && !after)
            return 1;
    }
    return 0;
}

/* fn(name, header file name, header text, where the declaration starts). */
typedef void (*headers_export_fn)(const char *name, const char *header, const char *text,
                                  const char *at);

/* Call fn with each public header's file name and its whole text (fn may
 * change the text; it is freed afterwards). */
__attribute__((unused)) static void
headers_for_each_file(void (*fn)(const char *header, char *text, void *ctx), void *ctx)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/include/cthreading", CTH_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 3 || strcmp(e->d_name + n - 2, ".h") != 0)
            continue;
        if (strcmp(e->d_name, "mpi.h") == 0)
            continue; /* libcthreading-mpi's, checked by tests/mpi/ where MPI is */
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = headers_slurp(path);
        fn(e->d_name, text, ctx);
        free(text);
    }
    closedir(d);
}

struct headers_export_walk {
    headers_export_fn fn;
    int count;
};

static void headers_exports_of(const char *header, char *text, void *ctx)
{
    struct headers_export_walk *w = ctx;
    for (const char *p = strstr(text, "\nCTH_API "); p; p = strstr(p + 1, "\nCTH_API ")) {
        const char *paren = strchr(p, '(');
        const char *end = paren;
        while (end > p && end[-1] == ' ')
            end--;
        const char *start = end;
        while (start > p && (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
            start--;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(end - start), start);
        if (strncmp(name, "cth_", 4) != 0 || strncmp(name, "cth__", 5) == 0)
            continue; /* internal, or not a function (an exported variable) */
        w->fn(name, header, text, p + 1);
        w->count++;
    }
}

/* Call fn for each function exported by include/cthreading/ (the public
 * ones: the cth__ names that inline fast paths need are skipped).
 * Returns how many. */
__attribute__((unused)) static int headers_for_each_export(headers_export_fn fn)
{
    struct headers_export_walk w = {fn, 0};
    headers_for_each_file(headers_exports_of, &w);
    return w.count;
}

#endif
