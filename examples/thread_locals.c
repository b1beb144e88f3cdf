/* SPDX-License-Identifier: MIT */
/*
 * thread_locals.c - threading.local and Werkzeug's LocalStack: each thread
 * sees its own value and its own stack. Python:
 *
 *     data = threading.local(); data.name = "main"
 *     ctx = LocalStack(); ctx.push(request); ctx.top; ctx.pop()
 *
 * The threads run one after another, so the lines come in a fixed order.
 */
#include <stdio.h>

#include <cthreading.h>

static cth_local_t *name;
static cth_local_stack_t *requests;

static void handle(void)
{
    /* nobody passes the request in: it is the top of this thread's stack */
    printf("  %s handles %s (depth %zu)\n", (const char *)cth_local_get(name),
           (const char *)cth_local_stack_top(requests), cth_local_stack_depth(requests));
}

static void *worker(void *arg)
{
    printf("%s starts: local is %s, stack top is %s\n", (const char *)arg,
           cth_local_get(name) ? "set" : "unset", cth_local_stack_top(requests) ? "set" : "NULL");
    cth_local_set(name, arg); /* data.name = ... in this thread only */
    cth_local_stack_push(requests, "GET /");
    handle();
    cth_local_stack_push(requests, "GET /nested");
    handle();
    cth_local_stack_pop(requests);
    handle();
    cth_local_stack_pop(requests);
    return NULL;
}

int main(void)
{
    cth_local_create(&name, NULL);
    cth_local_stack_create(&requests, NULL);
    cth_local_set(name, "main");
    cth_local_stack_push(requests, "main's request");

    const char *names[2] = {"worker-a", "worker-b"};
    for (int i = 0; i < 2; i++) {
        cth_thread_t *t;
        cth_thread_create(&t, worker, (void *)names[i], NULL);
        cth_thread_start(t);
        cth_thread_join(t, NULL, CTH_FOREVER);
        cth_thread_free(t);
    }
    printf("main still sees: local \"%s\", stack top \"%s\"\n", (const char *)cth_local_get(name),
           (const char *)cth_local_stack_top(requests));
    cth_local_stack_pop(requests);
    cth_local_stack_free(requests);
    cth_local_free(name);
    return 0;
}
