/* SPDX-License-Identifier: MIT */
/*
 * local_stack.c - Werkzeug's LocalStack over a cth_local.
 *
 * Each thread's value is a growable array of items (struct stack_vec); the
 * local's free_item (vec_destroy) hands the items left on it to the stack's
 * free_item, top first, and frees the array, so a thread's stack goes when
 * the thread exits or the LocalStack is freed (local.c guarantees exactly
 * once). Each array keeps its own copy of the stack's free_item because a
 * cth_free_fn has no context.
 * A popped-empty array is kept for the thread's next push (a request loop
 * pushes and pops once per request: no allocation in steady state).
 * Everything here touches only the calling thread's array: no lock.
 */
#include "alloc.h"
#include "cthreading/local.h"

struct stack_vec {
    cth_free_fn item_free;
    size_t n, cap;
    void **items;
};

struct cth_local_stack {
    cth_local_t *local;
    cth_free_fn item_free;
};

/* Hand the items of v to item_free, top first; v stays, empty. */
static size_t vec_release(struct stack_vec *v)
{
    size_t n = v->n;
    while (v->n) {
        void *item = v->items[--v->n];
        if (v->item_free)
            v->item_free(item);
    }
    return n;
}

static void vec_destroy(void *p)
{
    struct stack_vec *v = p;
    vec_release(v);
    cth__free(v->items);
    cth__free(v);
}

CTH_API int cth_local_stack_create(cth_local_stack_t **stack, const cth_local_stack_opts_t *opts)
{
    if (!stack)
        return CTH_EINVAL;
    cth_local_stack_t *s = cth__malloc(sizeof *s);
    if (!s)
        return CTH_ENOMEM;
    s->item_free = opts ? opts->free_item : NULL;
    int err = cth_local_create(&s->local, &(cth_local_opts_t){.free_item = vec_destroy});
    if (err) {
        cth__free(s);
        return err;
    }
    *stack = s;
    return 0;
}

CTH_API void cth_local_stack_free(cth_local_stack_t *stack)
{
    if (!stack)
        return;
    cth_local_free(stack->local);
    cth__free(stack);
}

CTH_API int cth_local_stack_push(cth_local_stack_t *stack, void *item)
{
    if (!stack || !item)
        return CTH_EINVAL;
    struct stack_vec *v = cth_local_get(stack->local);
    if (!v) {
        v = cth__calloc(1, sizeof *v);
        if (!v)
            return CTH_ENOMEM;
        v->item_free = stack->item_free;
        int err = cth_local_set(stack->local, v);
        if (err) {
            cth__free(v);
            return err;
        }
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void **items = cth__realloc(v->items, cap * sizeof *items);
        if (!items)
            return CTH_ENOMEM;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = item;
    return 0;
}

CTH_API void *cth_local_stack_pop(cth_local_stack_t *stack)
{
    struct stack_vec *v = stack ? cth_local_get(stack->local) : NULL;
    return v && v->n ? v->items[--v->n] : NULL;
}

CTH_API void *cth_local_stack_top(const cth_local_stack_t *stack)
{
    struct stack_vec *v = stack ? cth_local_get(stack->local) : NULL;
    return v && v->n ? v->items[v->n - 1] : NULL;
}

CTH_API size_t cth_local_stack_depth(const cth_local_stack_t *stack)
{
    struct stack_vec *v = stack ? cth_local_get(stack->local) : NULL;
    return v ? v->n : 0;
}

CTH_API size_t cth_local_stack_release(cth_local_stack_t *stack)
{
    struct stack_vec *v = stack ? cth_local_get(stack->local) : NULL;
    return v ? vec_release(v) : 0;
}
