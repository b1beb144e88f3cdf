/* SPDX-License-Identifier: MIT */
/*
 * cthreading/local.h - Python's threading.local and Werkzeug's LocalStack:
 * data that belongs to one thread.
 *
 * A cth_local_t is one thread-local variable: every thread that uses it sees
 * its own value (a void *), set and got without any lock. It is the C form
 * of one attribute of a threading.local() object; a program wanting several
 * attributes keeps a struct as the value. A cth_local_stack_t is Werkzeug's
 * LocalStack: a stack of items per thread (Flask keeps the current request
 * on one, so that any code can read it without passing it around).
 *
 * Ownership. A local owns the values set in it: each value is handed to the
 * local's free function (opts.free_item) exactly once, when it is replaced
 * (set), deleted, when its thread exits, or when the local is freed (for
 * every thread's value still there), whichever comes first; cth_local_take
 * gives a value back without freeing it. NULL is "no value" and is never
 * freed.
 *
 * Limits. Unlike pthread keys (PTHREAD_KEYS_MAX, 1024 on Linux) there is no
 * limit on the number of locals beyond memory: all of them share one pthread
 * key, each thread keeping one array indexed by the local's slot. Threads
 * cthreading did not create (pthread_create, another library's threads) work
 * the same; their values are destroyed when they exit.
 *
 * Linking. The inline cth_local_get reads a thread-local variable of the
 * library with the initial-exec TLS model (its offset from the thread
 * pointer, looked up once): the model for a library the program links, so
 * loaded at start. A libcthreading.so loaded later with dlopen works too
 * while the C library's reserve of static TLS lasts (glibc keeps some for
 * this, and the library takes about 120 bytes of it).
 *
 * docs/design.md (local.h) gives the rules on shared data it goes with.
 */
#ifndef CTHREADING_LOCAL_H
#define CTHREADING_LOCAL_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- local (threading.local) ------------------------------------------------------ */

/* A thread-local variable (one attribute of Python's threading.local): an
 * opaque handle. */
typedef struct cth_local cth_local_t;

/*
 * cth_local_init_fn - a per-thread initializer, the subclass __init__ of
 * Python's local: make the calling thread's first value in *value and
 * return 0; any nonzero return is its failure (Python's exception in
 * __init__): the thread is left without a value, cth_local_get returns NULL
 * and the value returned is the thread's cth_task_error() (the next get
 * runs init again).
 */
typedef int (*cth_local_init_fn)(void *arg, void **value);

/* Options of cth_local_create; NULL means none. The struct may grow: zero
 * what you do not set. */
typedef struct cth_local_opts {
    cth_free_fn free_item;  /* Optional: frees one thread's value (never called
        with NULL), as described above; without it values are forgotten. It
        runs in the exiting thread at thread exit, in the caller's thread for
        replaced or deleted values and at cth_local_free. It may use other
        locals. At thread exit the values are freed in rounds: values set
        by a free_item go in the next round, and after four rounds
        (PTHREAD_DESTRUCTOR_ITERATIONS) the values set in the last one are
        forgotten, never freed, so that the thread ends. */
    cth_local_init_fn init; /* Optional: run by cth_local_get in a thread that
        has no value */
    void *init_arg;         /* passed to init, in every thread (the constructor's args) */
} cth_local_opts_t;

/*
 * cth_local_create - threading.local() (one attribute of it).
 * opts (may be NULL) gives the free function of the values and a
 * per-thread initializer, Python's local subclass whose __init__ runs
 * again, with the original arguments, the first time each thread touches
 * the object.
 * Returns 0 and *local; CTH_EINVAL for a NULL out-pointer, or an init_arg
 * without init (Python's TypeError "Initialization arguments are not
 * supported"); CTH_ENOMEM. Thread-safe.
 */
CTH_API int cth_local_create(cth_local_t **local, const cth_local_opts_t *opts);

/*
 * cth_local_free - destroy a local: every value still set in any thread goes
 * to free_item (here, in the caller's thread; a thread exiting at the same
 * time may free its own value, and cth_local_free returns only once every
 * free_item call has finished). Each value is freed exactly once.
 * The caller must make sure no thread uses the local any more (as for
 * free()); calling it from the local's own free_item deadlocks. NULL is
 * ignored. After it returns, the slot may serve a new local; values of the
 * old one can never show through.
 */
CTH_API void cth_local_free(cth_local_t *local);

/*
 * cth_local_get - the calling thread's value, or NULL when it has none (and
 * for a NULL local). With an initializer, a thread that has no value runs
 * init first and gets its result; NULL if init made NULL, if memory ran out
 * storing its value (which then goes to free_item), or if init failed, and
 * then the thread's cth_task_error() holds the value init returned. The
 * next get runs init again. Python's attribute read; where Python raises
 * AttributeError (or __init__'s exception), this returns NULL.
 * Inline: the fast path is a handful of loads from the thread's table (no
 * lock, no call); the cth__ declarations below are its private machinery,
 * not API.
 */
static inline void *cth_local_get(const cth_local_t *local);

/* ---- private: the inline fast path of cth_local_get ---- */
struct cth__local_key {
    uint32_t slot;  /* the local's index in every thread's values */
    uint32_t frees; /* nonzero: it has a free_item (a replaced value goes to it) */
};
#ifdef __cplusplus
#define CTH__THREAD_LOCAL thread_local
#else
#define CTH__THREAD_LOCAL _Thread_local
#endif
/* The calling thread's values, indexed by slot (NULL: none), and their
 * number; written by that thread. One variable: one address to look up. */
struct cth__local_tls {
    void **values;
    size_t cap;
};
CTH_API extern CTH__THREAD_LOCAL struct cth__local_tls cth__local_tls
    __attribute__((tls_model("initial-exec")));
CTH_API void *cth__local_get_slow(const cth_local_t *local);

static inline void *cth_local_get(const cth_local_t *local)
{
    const struct cth__local_key *k = (const struct cth__local_key *)(const void *)local;
    /* Both read before the tests: loads the caller makes whatever the tests
     * say let a compiler (GCC) keep the variable's TLS offset, a GOT load,
     * out of the caller's loop. */
    void **values = cth__local_tls.values;
    size_t cap = cth__local_tls.cap;
    if (__builtin_expect(k && k->slot < cap, 1)) {
        void *value = values[k->slot];
        if (__builtin_expect(value != NULL, 1))
            return value;
    }
    return cth__local_get_slow(local);
}

#ifndef CTH__LOCAL_SOURCE /* local.c defines it out of line instead */
/*
 * cth_local_set - set the calling thread's value (Python's attribute
 * assignment). A previous, different value is passed to free_item;
 * NULL removes the value (freeing it, as cth_local_delete). No lock
 * unless the thread's table must grow (its first value, or a local created
 * after the table was sized). Returns 0; CTH_EINVAL for a NULL local;
 * CTH_ENOMEM when the table could not grow (then nothing changed).
 * Inline where nothing is to be freed (no free_item, no previous value, or
 * the same one): a bound check and a store.
 */
static inline int cth_local_set(cth_local_t *local, void *value);
#endif

/* ---- private: the inline fast path of cth_local_set ---- */
/* Everything but a store into the thread's table that frees nothing. */
CTH_API int cth__local_set_slow(cth_local_t *local, void *value);
/* local.c defines cth_local_set out of line as well (CTH__LOCAL_SOURCE),
 * exported for callers through a symbol. */
#ifndef CTH__LOCAL_SOURCE
static inline int cth_local_set(cth_local_t *local, void *value)
{
    const struct cth__local_key *k = (const struct cth__local_key *)(const void *)local;
    void **values = cth__local_tls.values;
    size_t cap = cth__local_tls.cap;
    if (__builtin_expect(k && k->slot < cap, 1)) {
        void *old = values[k->slot];
        if (__builtin_expect(!k->frees || !old || old == value, 1)) {
            values[k->slot] = value;
            return 0;
        }
    }
    return cth__local_set_slow(local, value);
}
#endif

/*
 * cth_local_delete - `del local.attr`: free the calling thread's value.
 * Returns 0 when there was one (it went to free_item); CTH_ENOENT when the
 * thread had none (Python's AttributeError); CTH_EINVAL for NULL.
 */
CTH_API int cth_local_delete(cth_local_t *local);

/*
 * cth_local_take - remove the calling thread's value and return it, without
 * freeing it (ownership goes back to the caller); NULL if none, or for a
 * NULL local.
 */
CTH_API void *cth_local_take(cth_local_t *local);

/* ---- LocalStack (werkzeug.local.LocalStack) ------------------------------------ */

/* Werkzeug's LocalStack: a stack per thread, an opaque handle. */
typedef struct cth_local_stack cth_local_stack_t;

/* Options of cth_local_stack_create; NULL means none. The struct may grow:
 * zero what you do not set. */
typedef struct cth_local_stack_opts {
    cth_free_fn free_item; /* Optional: called for each item still on a
        thread's stack when that thread exits, when the stack is released,
        and at cth_local_stack_free (top first); items popped go back to the
        caller instead. Items it pushes while a thread exits are freed in
        the next of the exiting thread's rounds (at most four, as for
        cth_local's free_item), then forgotten. */
} cth_local_stack_opts_t;

/*
 * cth_local_stack_create - LocalStack(): an empty stack in every thread.
 * opts (may be NULL) gives the free function of the items left behind.
 * Returns 0 and *stack; CTH_EINVAL for a NULL out-pointer; CTH_ENOMEM.
 */
CTH_API int cth_local_stack_create(cth_local_stack_t **stack, const cth_local_stack_opts_t *opts);

/* cth_local_stack_free - free the stack; items left on any thread's stack
 * go to free_item (as cth_local_free). NULL is ignored. */
CTH_API void cth_local_stack_free(cth_local_stack_t *stack);

/*
 * cth_local_stack_push - LocalStack.push(obj) on the calling thread's stack
 * (the new depth is cth_local_stack_depth). Returns 0; CTH_EINVAL for a
 * NULL stack or item (NULL is what pop and top say for "empty");
 * CTH_ENOMEM (the stack unchanged).
 */
CTH_API int cth_local_stack_push(cth_local_stack_t *stack, void *item);

/* cth_local_stack_pop - LocalStack.pop(): remove and return the top item of
 * the calling thread's stack; NULL when it is empty (every time, no error,
 * as Werkzeug's) or for a NULL stack. */
CTH_API void *cth_local_stack_pop(cth_local_stack_t *stack);

/* cth_local_stack_top - LocalStack.top: the calling thread's top item,
 * NULL when empty. */
CTH_API void *cth_local_stack_top(const cth_local_stack_t *stack);

/* cth_local_stack_depth - the number of items on the calling thread's
 * stack (0 for NULL). */
CTH_API size_t cth_local_stack_depth(const cth_local_stack_t *stack);

/* cth_local_stack_release - LocalStack.__release_local__() / release_local:
 * empty the calling thread's stack, items to free_item (top first). Returns
 * the number of items released (0 for an empty stack, or a NULL one). */
CTH_API size_t cth_local_stack_release(cth_local_stack_t *stack);

#ifdef __cplusplus
}
#endif
#endif
