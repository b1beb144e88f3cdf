/* SPDX-License-Identifier: MIT */
/*
 * test_docs.c - the documentation cannot drift from the headers: every
 * function the headers export appears in docs/python-to-c.md, and has a
 * comment block above its prototype (the API reference is made of those).
 */
#include "headers.h"

static char *table;
static int missing;

static void check_in_table(const char *name, const char *header, const char *text, const char *at)
{
    (void)text;
    (void)at;
    if (!headers_has_word(table, name)) {
        fprintf(stderr, "%s (%s) is not in docs/python-to-c.md\n", name, header);
        missing++;
    }
}

CTH_TEST(every_export_in_python_to_c)
{
    table = headers_slurp_source("docs/python-to-c.md");
    missing = 0;
    int n = headers_for_each_export(check_in_table);
    CHECK(n > 100);
    CHECK_EQ(missing, 0);
    free(table);
}

static void check_commented(const char *name, const char *header, const char *text, const char *at)
{
    /* The line before the prototype ends a comment, or the prototype follows
     * another prototype that shares its comment (a documented group). */
    const char *q = at;
    while (q > text && isspace((unsigned char)q[-1]))
        q--;
    if (q - text >= 2 && q[-2] == '*' && q[-1] == '/')
        return;
    if (q > text && q[-1] == ';')
        return;
    fprintf(stderr, "%s (%s) has no comment above it\n", name, header);
    missing++;
}

CTH_TEST(every_export_commented)
{
    missing = 0;
    headers_for_each_export(check_commented);
    CHECK_EQ(missing, 0);
}
