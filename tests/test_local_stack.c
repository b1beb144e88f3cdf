/* SPDX-License-Identifier: MIT */
/*
 * test_local_stack.c - Werkzeug's LocalStack (cth_local_stack_*), ported
 * from pallets/werkzeug tests/test_local.py (test_local_stack,
 * test_local_release), plus per-thread isolation and opts.free_item at
 * thread exit and at free.
 */
#include <stdatomic.h>

#include "alloc.h"
#include "check.h"

static atomic_int items_freed;

static void item_free(void *item)
{
    atomic_fetch_add(&items_freed, 1);
    free(item);
}

static int *new_int(int v)
{
    int *p = malloc(sizeof *p);
    CHECK(p);
    *p = v;
    return p;
}

/* Push item (which must succeed) and return the new depth. */
static size_t push(cth_local_stack_t *s, void *item)
{
    CHECK_OK(cth_local_stack_push(s, item));
    return cth_local_stack_depth(s);
}

/* test_local_stack: top is None when empty; push 42, push 23: top is 23;
 * pop leaves 42; pop again leaves None; pop on an empty stack returns None,
 * twice (no error). */
CTH_TEST(werkzeug_local_stack)
{
    cth_local_stack_t *s;
    CHECK_OK(cth_local_stack_create(&s, NULL));
    int a = 42, b = 23;
    CHECK(cth_local_stack_top(s) == NULL);
    CHECK_EQ(cth_local_stack_depth(s), 0);
    CHECK_EQ(push(s, &a), 1);
    CHECK_EQ(push(s, &b), 2);
    CHECK(cth_local_stack_top(s) == &b);
    CHECK_EQ(cth_local_stack_depth(s), 2);
    CHECK(cth_local_stack_pop(s) == &b);
    CHECK(cth_local_stack_top(s) == &a);
    CHECK(cth_local_stack_pop(s) == &a);
    CHECK(cth_local_stack_top(s) == NULL);
    CHECK(cth_local_stack_pop(s) == NULL);
    CHECK(cth_local_stack_pop(s) == NULL);
    CHECK_EQ(cth_local_stack_depth(s), 0);
    /* deep stacks grow */
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(push(s, &a), i + 1);
    for (int i = 0; i < 1000; i++)
        CHECK(cth_local_stack_pop(s) == &a);
    CHECK(cth_local_stack_pop(s) == NULL);
    cth_local_stack_free(s);
}

/* test_local_release: release clears the stack (top becomes None); the
 * items go to free_item, and release says how many. */
CTH_TEST(werkzeug_local_release)
{
    cth_local_stack_t *s;
    atomic_store(&items_freed, 0);
    CHECK_OK(cth_local_stack_create(&s, &(cth_local_stack_opts_t){.free_item = item_free}));
    CHECK_EQ(cth_local_stack_release(s), 0);
    CHECK_EQ(push(s, new_int(1)), 1);
    CHECK_EQ(push(s, new_int(2)), 2);
    CHECK_EQ(cth_local_stack_release(s), 2);
    CHECK_EQ(atomic_load(&items_freed), 2);
    CHECK(cth_local_stack_top(s) == NULL);
    CHECK_EQ(push(s, new_int(3)), 1);
    cth_local_stack_free(s); /* the item left goes too */
    CHECK_EQ(atomic_load(&items_freed), 3);
}

static void *thread_stack(void *arg)
{
    cth_local_stack_t *s = arg;
    CHECK(cth_local_stack_top(s) == NULL); /* the main thread's items are not here */
    int id = (int)cth_get_native_id();
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(push(s, new_int(id)), 1);
        cth_sleep(0);
        CHECK_EQ(*(int *)cth_local_stack_top(s), id);
        int *p = cth_local_stack_pop(s);
        CHECK_EQ(*p, id);
        free(p);
    }
    /* leave two items for the thread exit */
    CHECK_EQ(push(s, new_int(id)), 1);
    CHECK_EQ(push(s, new_int(id)), 2);
    return NULL;
}

/* Each thread has its own stack; items left when a thread exits go to
 * free_item, exactly once. */
CTH_TEST(per_thread_stacks)
{
    cth_local_stack_t *s;
    atomic_store(&items_freed, 0);
    CHECK_OK(cth_local_stack_create(&s, &(cth_local_stack_opts_t){.free_item = item_free}));
    int *mine = new_int(-1);
    CHECK_EQ(push(s, mine), 1);
    cth_thread_t *t[8];
    for (int i = 0; i < 8; i++) {
        CHECK_OK(cth_thread_create(&t[i], thread_stack, s, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < 8; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    CHECK_EQ(atomic_load(&items_freed), 16);
    CHECK(cth_local_stack_top(s) == mine);
    CHECK_EQ(cth_local_stack_depth(s), 1);
    cth_local_stack_free(s);
    CHECK_EQ(atomic_load(&items_freed), 17);
}

CTH_TEST(null_and_bad_arguments)
{
    cth_local_stack_t *s;
    int x;
    CHECK_EQ(cth_local_stack_create(NULL, NULL), CTH_EINVAL);
    CHECK_EQ(cth_local_stack_push(NULL, &x), CTH_EINVAL);
    CHECK(cth_local_stack_pop(NULL) == NULL);
    CHECK(cth_local_stack_top(NULL) == NULL);
    CHECK_EQ(cth_local_stack_depth(NULL), 0);
    CHECK_EQ(cth_local_stack_release(NULL), 0); /* nothing released */
    cth_local_stack_free(NULL);
    CHECK_OK(cth_local_stack_create(&s, NULL));
    CHECK_EQ(cth_local_stack_push(s, NULL), CTH_EINVAL);
    CHECK(cth_local_stack_top(s) == NULL);
    /* Without free_item, items left behind are simply forgotten. */
    CHECK_OK(cth_local_stack_push(s, &x));
    CHECK_EQ(cth_local_stack_release(s), 1);
    CHECK_OK(cth_local_stack_push(s, &x));
    cth_local_stack_free(s);
    /* All-zero options are no options. */
    CHECK_OK(cth_local_stack_create(&s, &(cth_local_stack_opts_t){0}));
    CHECK_OK(cth_local_stack_push(s, &x));
    cth_local_stack_free(s);
}

/* The 0.1.0 signatures, checked at compile time: the free function only
 * through opts, push's 0, release's count. */
_Static_assert(_Generic(&cth_local_stack_create,
                        int (*)(cth_local_stack_t **, const cth_local_stack_opts_t *) : 1,
                        default : 0),
               "cth_local_stack_create(&stack, opts)");
_Static_assert(_Generic(((cth_local_stack_opts_t *)0)->free_item, cth_free_fn : 1, default : 0),
               "opts.free_item is a cth_free_fn");
_Static_assert(_Generic(&cth_local_stack_release, size_t (*)(cth_local_stack_t *) : 1, default : 0),
               "size_t cth_local_stack_release(cth_local_stack_t *)");
_Static_assert(_Generic(&cth_local_stack_depth, size_t (*)(const cth_local_stack_t *) : 1,
                        default : 0),
               "size_t cth_local_stack_depth(const cth_local_stack_t *)");

/* Allocation failure: create and push report CTH_ENOMEM, the stack is
 * unchanged. */
CTH_TEST(out_of_memory)
{
    cth_local_stack_t *s;
    for (int k = 0; k < 2; k++) {
        cth__fault_alloc_after(k);
        CHECK_EQ(cth_local_stack_create(&s, NULL), CTH_ENOMEM);
    }
    cth__fault_alloc_after(-1);
    CHECK_OK(cth_local_stack_create(&s, NULL));
    int x;
    for (int k = 0; k < 3; k++) {
        cth__fault_alloc_after(k);
        int r = cth_local_stack_push(s, &x);
        cth__fault_alloc_after(-1);
        CHECK_EQ(r, CTH_ENOMEM);
        CHECK(cth_local_stack_top(s) == NULL);
    }
    CHECK_EQ(push(s, &x), 1);
    for (int i = 2; i <= 8; i++)
        CHECK_EQ(push(s, &x), i);
    cth__fault_alloc_after(0); /* the ninth item needs a bigger array */
    int r = cth_local_stack_push(s, &x);
    cth__fault_alloc_after(-1);
    CHECK_EQ(r, CTH_ENOMEM);
    CHECK_EQ(cth_local_stack_depth(s), 8);
    cth_local_stack_free(s);
}
