/* SPDX-License-Identifier: MIT */
/*
 * test_conventions.c - the 0.1.0 API rules of include/cthreading/base.h
 * (its top comment), checked mechanically over the public headers: every
 * public typedef ends in _t, or in _fn for a function pointer type; a
 * `double timeout` parameter comes last; sizes and counts are size_t (no
 * int n, no long); a query returning bool or size_t takes const pointers;
 * a callback type takes its void * context first.
 *
 * Each header is read as text, its comments and preprocessor lines blanked,
 * and cut into top-level declarations (at a ';' outside braces, or at the
 * '}' closing an inline function's body). A declaration is a typedef, or a
 * function when it has a parameter list: its return type, name and
 * parameters (split at the commas outside parentheses) are what the rules
 * read. The private cth__ names are skipped. Every sub-test prints each
 * violation it finds, with the header and the declaration, then fails if
 * there was any.
 */
#include "headers.h"

#include <stdbool.h>

/* One parameter: its text, and its name (the last identifier; inside the
 * parentheses for a function pointer). */
struct param {
    char text[256];
    char name[64];
};

/* One top-level declaration of a header, whitespace collapsed. */
struct decl {
    const char *header;
    char text[2048];
    bool is_typedef, is_fnptr, is_function;
    char name[64];
    char ret[128]; /* the return type, for a function or a function pointer */
    struct param params[16];
    size_t nparams;
};

typedef void (*decl_visit_fn)(const struct decl *d, void *ctx);

static size_t violations;

static void violation(const struct decl *d, const char *rule)
{
    printf("%s: %s: %s\n    %s\n", d->header, d->name, rule, d->text);
    violations++;
}

/* Blank comments and preprocessor lines (keeping the newlines). */
static void blank_comments(char *s)
{
    for (char *p = s; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            char *stop = end ? end + 2 : p + strlen(p);
            for (; p < stop; p++)
                if (*p != '\n')
                    *p = ' ';
            p--;
        } else if (p[0] == '/' && p[1] == '/') {
            for (; *p && *p != '\n'; p++)
                *p = ' ';
            p--;
        } else if (*p == '#' && (p == s || p[-1] == '\n')) {
            /* a directive, continued lines included */
            for (; *p && !(*p == '\n' && p[-1] != '\\'); p++)
                if (*p != '\n')
                    *p = ' ';
            p--;
        }
    }
}

/* Copy [from, to) into out with runs of whitespace collapsed to one space. */
static void collapse(const char *from, const char *to, char *out, size_t size)
{
    size_t len = 0;
    bool space = false;
    for (const char *p = from; p < to && len + 2 < size; p++) {
        if (isspace((unsigned char)*p)) {
            space = len > 0;
            continue;
        }
        if (space)
            out[len++] = ' ';
        space = false;
        out[len++] = *p;
    }
    out[len] = '\0';
}

/* The last identifier in [from, to), into out. */
static void last_identifier(const char *from, const char *to, char *out, size_t size)
{
    const char *end = to;
    while (end > from && !(isalnum((unsigned char)end[-1]) || end[-1] == '_'))
        end--;
    const char *start = end;
    while (start > from && (isalnum((unsigned char)start[-1]) || start[-1] == '_'))
        start--;
    snprintf(out, size, "%.*s", (int)(end - start), start);
}

/* The ')' matching the '(' at open, or NULL. */
static const char *matching_paren(const char *open)
{
    int depth = 0;
    for (const char *p = open; *p; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            return p;
    }
    return NULL;
}

/* Split the parameter list (open, close) at its top-level commas. */
static void split_params(struct decl *d, const char *open, const char *close)
{
    d->nparams = 0;
    const char *start = open + 1;
    int depth = 0;
    for (const char *p = open + 1; p <= close; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && p != close)
            depth--;
        if ((*p == ',' && depth == 0) || p == close) {
            if (d->nparams < sizeof d->params / sizeof d->params[0]) {
                struct param *pa = &d->params[d->nparams];
                collapse(start, p, pa->text, sizeof pa->text);
                const char *fp = strstr(pa->text, "(*");
                if (fp) { /* void (*fn)(void *): the name inside */
                    const char *end = strchr(fp, ')');
                    last_identifier(fp, end ? end : fp + strlen(fp), pa->name, sizeof pa->name);
                } else {
                    last_identifier(pa->text, pa->text + strlen(pa->text), pa->name,
                                    sizeof pa->name);
                }
                if (strcmp(pa->text, "void") != 0 && pa->text[0])
                    d->nparams++;
            }
            start = p + 1;
        }
    }
}

/* Fill d from its collapsed text. */
static void parse_decl(struct decl *d)
{
    const char *t = d->text;
    d->is_typedef = strncmp(t, "typedef ", 8) == 0;
    d->is_fnptr = d->is_function = false;
    d->name[0] = d->ret[0] = '\0';
    d->nparams = 0;
    const char *brace = strchr(t, '{');
    const char *paren = strchr(t, '(');
    if (d->is_typedef) {
        const char *fp = strstr(t, "(*");
        if (fp && (!brace || fp < brace)) { /* typedef R (*name)(params); */
            d->is_fnptr = true;
            const char *close = matching_paren(fp);
            last_identifier(fp, close, d->name, sizeof d->name);
            collapse(t + 8, fp, d->ret, sizeof d->ret);
            const char *open = close ? strchr(close, '(') : NULL;
            const char *end = open ? matching_paren(open) : NULL;
            if (end)
                split_params(d, open, end);
        } else { /* typedef ... name; */
            last_identifier(t, t + strlen(t), d->name, sizeof d->name);
        }
        return;
    }
    if (!paren || (brace && brace < paren) || strncmp(t, "struct ", 7) == 0 || strstr(t, "extern "))
        return; /* a struct, an enum, a variable */
    const char *close = matching_paren(paren);
    if (!close)
        return;
    d->is_function = true;
    last_identifier(t, paren, d->name, sizeof d->name);
    const char *name_at = paren;
    while (name_at > t && name_at[-1] == ' ')
        name_at--;
    name_at -= strlen(d->name);
    const char *ret = t;
    while (strncmp(ret, "CTH_API ", 8) == 0 || strncmp(ret, "static ", 7) == 0 ||
           strncmp(ret, "inline ", 7) == 0)
        ret = strchr(ret, ' ') + 1;
    collapse(ret, name_at, d->ret, sizeof d->ret);
    split_params(d, paren, close);
}

struct decl_walk {
    decl_visit_fn fn;
    void *ctx;
    size_t seen;
};

static void decls_of(const char *header, char *text, void *ctx)
{
    struct decl_walk *w = ctx;
    blank_comments(text);
    const char *start = text;
    int depth = 0;
    for (const char *p = text; *p; p++) {
        if (strncmp(p, "extern \"C\"", 10) == 0) { /* the C++ guard is no scope */
            const char *b = strchr(p, '{');
            p = b ? b : p + 9;
            start = p + 1;
            continue;
        }
        bool end = false;
        if (*p == '{') {
            depth++;
        } else if (*p == '}') {
            if (depth == 0) { /* the C++ guard's closing brace */
                start = p + 1;
                continue;
            }
            depth--;
            /* An inline function's body ends its declaration. */
            if (depth == 0) {
                const char *open = start;
                int d2 = 0;
                for (const char *q = start; q < p; q++)
                    if (*q == '{' && d2++ == 0) {
                        open = q;
                        break;
                    }
                const char *before = open;
                while (before > start && isspace((unsigned char)before[-1]))
                    before--;
                end = before > start && before[-1] == ')';
            }
        } else if (*p == ';' && depth == 0) {
            end = true;
        }
        if (!end)
            continue;
        struct decl d = {.header = header};
        collapse(start, p + 1, d.text, sizeof d.text);
        start = p + 1;
        if (!d.text[0])
            continue;
        parse_decl(&d);
        if (strncmp(d.name, "cth__", 5) == 0 || strncmp(d.name, "CTH__", 5) == 0)
            continue;
        if (d.is_typedef || d.is_function) {
            w->fn(&d, w->ctx);
            w->seen++;
        }
    }
}

/* Call fn for every top-level declaration of every public header. */
static void for_each_decl(decl_visit_fn fn, void *ctx)
{
    struct decl_walk w = {fn, ctx, 0};
    headers_for_each_file(decls_of, &w);
    CHECK(w.seen > 100); /* the parser found the headers' declarations */
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void check_typedef_name(const struct decl *d, void *ctx)
{
    (void)ctx;
    if (!d->is_typedef)
        return;
    if (d->is_fnptr && !ends_with(d->name, "_fn"))
        violation(d, "a function pointer type's name ends in _fn");
    else if (!d->is_fnptr && !ends_with(d->name, "_t"))
        violation(d, "a public type's name ends in _t (_fn only for function pointers)");
}

static void check_timeout_last(const struct decl *d, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i + 1 < d->nparams; i++)
        if (strncmp(d->params[i].text, "double ", 7) == 0 && strstr(d->params[i].name, "timeout"))
            violation(d, "the double timeout parameter comes last");
}

/* A parameter that names a size or a count. */
static bool is_count_name(const char *name)
{
    static const char *const counts[] = {"n",       "count",     "len",      "length",   "cap",
                                         "parties", "processes", "nthreads", "chunksize"};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (strcmp(name, counts[i]) == 0)
            return true;
    return ends_with(name, "size") || ends_with(name, "_count") || strncmp(name, "max_", 4) == 0;
}

/* An int or long parameter or field (text, name) that holds a size or count. */
static bool is_int_count(const char *text, const char *name)
{
    if (strstr(text, "(*") || strchr(text, '*'))
        return false;
    char type[256];
    snprintf(type, sizeof type, "%.*s", (int)(strlen(text) - strlen(name)), text);
    bool is_long = headers_has_word(type, "long");
    bool is_int = headers_has_word(type, "int") || headers_has_word(type, "unsigned");
    return is_long || (is_int && is_count_name(name));
}

static void check_sizes(const struct decl *d, void *ctx)
{
    (void)ctx;
    char rule[512];
    const char *body = d->is_typedef && !d->is_fnptr ? strchr(d->text, '{') : NULL;
    const char *body_end = body ? strrchr(body, '}') : NULL;
    /* The fields of a public struct: "type name;" between the braces. */
    for (const char *f = body ? body + 1 : NULL; f && f < body_end;) {
        const char *semi = strchr(f, ';');
        if (!semi || semi > body_end)
            break;
        struct param field;
        collapse(f, semi, field.text, sizeof field.text);
        last_identifier(field.text, field.text + strlen(field.text), field.name, sizeof field.name);
        if (!strstr(field.text, "(*") && is_int_count(field.text, field.name)) {
            snprintf(rule, sizeof rule, "field '%s': sizes and counts are size_t", field.text);
            violation(d, rule);
        }
        f = semi + 1;
    }
    for (size_t i = 0; i < d->nparams; i++) {
        const struct param *p = &d->params[i];
        if (is_int_count(p->text, p->name)) {
            snprintf(rule, sizeof rule, "parameter '%s': sizes and counts are size_t", p->text);
            violation(d, rule);
        }
    }
    if (d->is_function && strcmp(d->ret, "long") == 0 &&
        (ends_with(d->name, "size") || ends_with(d->name, "tasks") || ends_with(d->name, "count")))
        violation(d, "returns a size or count as long: sizes and counts are size_t");
}

/* A query (bool or size_t, cannot fail) takes its object by const pointer.
 * Only the first parameter is the object (cth_thread_get_name's buffer is
 * an output); the calls that cannot fail but change their object
 * (cth_local_stack_release, which pops every level and counts them) are
 * named by their verb and exempt. */
static bool changes_its_object(const char *name)
{
    static const char *const verbs[] = {"_release", "_pop", "_take"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        size_t v = strlen(verbs[i]);
        if (n > v && strcmp(name + n - v, verbs[i]) == 0)
            return true;
    }
    return false;
}

static void check_queries_const(const struct decl *d, void *ctx)
{
    (void)ctx;
    if (!d->is_function || (strcmp(d->ret, "bool") != 0 && strcmp(d->ret, "size_t") != 0))
        return;
    if (!d->nparams || changes_its_object(d->name))
        return;
    const struct param *p = &d->params[0];
    const char *star = strchr(p->text, '*');
    if (!star || strstr(p->text, "(*") || strstr(p->text, "**"))
        return;
    if (!headers_has_word(p->text, "const")) {
        char rule[512];
        snprintf(rule, sizeof rule, "a query returning %s takes its object const ('%s')", d->ret,
                 p->text);
        violation(d, rule);
    }
}

static void check_callback_context(const struct decl *d, void *ctx)
{
    (void)ctx;
    if (!d->is_fnptr)
        return;
    /* qsort's comparison shape (every parameter a const void *) has no
     * context to put first. */
    bool all_const_items = d->nparams > 0;
    for (size_t i = 0; i < d->nparams; i++)
        all_const_items = all_const_items && strncmp(d->params[i].text, "const void *", 12) == 0;
    bool void_ptr = d->nparams > 0 && (strncmp(d->params[0].text, "void *", 6) == 0 ||
                                       strncmp(d->params[0].text, "void*", 5) == 0);
    /* Nor have the record and buffer tasks, which cross into worker
     * processes where a context pointer means nothing: their input comes
     * first. */
    bool data_task = d->nparams > 0 && strcmp(d->params[0].text, "const void *in") == 0;
    if (!void_ptr && !all_const_items && !data_task)
        violation(d, "a callback type takes its void * context first");
}

/* The parser's own check: it finds every function headers.h's walker finds. */
static char parsed[512][64];
static size_t nparsed;

static void collect_function(const struct decl *d, void *ctx)
{
    (void)ctx;
    if (d->is_function && nparsed < sizeof parsed / sizeof parsed[0])
        snprintf(parsed[nparsed++], sizeof parsed[0], "%s", d->name);
}

static void check_parsed(const char *name, const char *header, const char *text, const char *at)
{
    (void)text;
    (void)at;
    for (size_t i = 0; i < nparsed; i++)
        if (strcmp(parsed[i], name) == 0)
            return;
    printf("%s: %s: the parser missed this export\n", header, name);
    violations++;
}

CTH_TEST(parser_finds_every_export)
{
    violations = 0;
    for_each_decl(collect_function, NULL);
    CHECK(headers_for_each_export(check_parsed) > 100);
    CHECK_EQ(violations, 0);
}

static void run_rule(decl_visit_fn fn)
{
    violations = 0;
    for_each_decl(fn, NULL);
    if (violations)
        printf("%zu violation(s)\n", violations);
    CHECK_EQ(violations, 0);
}

CTH_TEST(typedef_names)
{
    run_rule(check_typedef_name);
}

CTH_TEST(timeout_last)
{
    run_rule(check_timeout_last);
}

CTH_TEST(sizes_are_size_t)
{
    run_rule(check_sizes);
}

CTH_TEST(queries_take_const)
{
    run_rule(check_queries_const);
}

CTH_TEST(callbacks_context_first)
{
    run_rule(check_callback_context);
}
