/* SPDX-License-Identifier: MIT */
/*
 * objects.c - the tour's section on the seed's "thread-safe objects":
 * synchronized, the singleton, thread-locals and Werkzeug's LocalStack.
 */
#include <stdlib.h>

#include "tour.h"

static long hits; /* shared, changed only under the synchronized block */

static long hit(void)
{
    CTH_SYNCHRONIZED { /* the seed's @synchronized: a lock of its own */
        return ++hits;
    }
    return -1;
}

static void *hitter(void *arg)
{
    for (int i = 0; i < 100000; i++)
        hit();
    return arg;
}

struct settings {
    const char *greeting;
};

static int make_settings(void *arg, void **instance)
{
    static struct settings s; /* made once, for everyone */
    s.greeting = arg;
    say("(the singleton's constructor runs once, in the first caller)");
    *instance = &s;
    return 0;
}

static cth_singleton_t settings = CTH_SINGLETON_INIT;
static cth_local_t *who;
static cth_local_stack_t *requests;

static void handle(void)
{
    /* reads the current request without it being passed in */
    const char *req = cth_local_stack_top(requests);
    say("%s handles %s", (const char *)cth_local_get(who), req);
}

static void *worker(void *arg)
{
    cth_local_set(who, arg); /* this thread's own value */
    struct settings *s;
    cth_singleton_get(&settings, make_settings, "hello", (void **)&s);
    cth_local_stack_push(requests, "GET /index");
    handle();
    cth_local_stack_push(requests, "GET /nested");
    handle();
    cth_local_stack_pop(requests);
    handle();
    cth_local_stack_pop(requests);
    say("%s: settings at %p say \"%s\"; stack empty again: top is %s", (const char *)arg, (void *)s,
        s->greeting, cth_local_stack_top(requests) ? "set" : "NULL");
    return NULL;
}

static void tour_objects(void)
{
    tour_code("@synchronized  # on: def hit(): global hits; hits += 1; return hits",
              "long hit(void) { CTH_SYNCHRONIZED { return ++hits; } }  /* a lock of its own */",
              NULL);
    cth_thread_t *t[4];
    for (int i = 0; i < 4; i++) {
        cth_thread_create(&t[i], hitter, NULL, NULL);
        cth_thread_start(t[i]);
    }
    for (int i = 0; i < 4; i++) {
        cth_thread_join(t[i], NULL, CTH_FOREVER);
        cth_thread_free(t[i]);
    }
    say("4 threads x 100000 calls of a synchronized counter: %ld (no update lost)", hits);

    printf("\n");
    tour_code(
        "settings = Settings(\"hello\")  # class Settings(metaclass=Singleton)",
        "cth_singleton_get(&settings, make_settings, \"hello\", &s);",
        "who = threading.local(); who.name = \"worker-a\"",
        "cth_local_create(&who, NULL); cth_local_set(who, \"worker-a\");",
        "requests = LocalStack(); requests.push(\"GET /index\")",
        "cth_local_stack_create(&requests, NULL); cth_local_stack_push(requests, \"GET /index\");",
        "requests.top  # in handle(): nobody passes the request in",
        "cth_local_stack_top(requests)", "requests.pop()", "cth_local_stack_pop(requests);", NULL);
    cth_local_create(&who, NULL);
    cth_local_stack_create(&requests, NULL);
    cth_local_set(who, "main");
    const char *names[2] = {"worker-a", "worker-b"};
    for (int i = 0; i < 2; i++) {
        cth_thread_create(&t[i], worker, (void *)names[i], NULL);
        cth_thread_start(t[i]);
        cth_thread_join(t[i], NULL, CTH_FOREVER); /* one after the other, for a tidy log */
        cth_thread_free(t[i]);
    }
    say("in main, the local still says \"%s\": each thread sees its own value",
        (const char *)cth_local_get(who));
    cth_local_stack_free(requests);
    cth_local_free(who);
}

TOUR_SECTION(40, "objects", "Thread-safe objects: synchronized, singleton, local, LocalStack",
             tour_objects)
