/* SPDX-License-Identifier: MIT */
/*
 * local.c - threading.local: any number of thread-local variables over ONE
 * pthread key.
 *
 * State. Each thread that has set a value owns a table: an array of values
 * indexed by a local's slot, NULL where the thread has none (set(NULL) is
 * delete). A slot belongs to one local at a time: cth_local_free clears the
 * slot in every thread's table before the slot is given to a new local, so
 * a new local never shows an old one's values, and a non-NULL value is
 * always the current local's. The thread's table pointer is a _Thread_local
 * (initial-exec), and its values and size are mirrored in one exported
 * thread-local struct that the inline cth_local_get of local.h reads: get is
 * a bound check and one load from the thread's values, no lock and no call
 * (the struct's TLS offset is looked up once); set takes no lock unless the
 * table must grow, and is inline too where it frees nothing (a local
 * without free_item, no previous value, or the same one: key.frees says
 * which locals have a free_item).
 *
 * Ownership and the lock. One mutex (reg_lock, a pthread mutex: slow paths
 * only) guards the list of tables, the slot records and every change of a
 * table's size. The owning thread reads and writes its entries without the
 * lock; other threads touch a table only under reg_lock, and only entries of
 * a local being freed (which by contract no thread uses any more) or the
 * table of a thread that is exiting. A value is freed (handed to the local's
 * free_item) by whoever clears its entry under reg_lock: the exiting thread
 * (its pthread key destructor, or thread_exit_now, the runtime's thread-exit
 * hook: a cthreading thread runs it before it counts as finished, a timer
 * worker after each function) or cth_local_free; so each value is freed
 * exactly once. free_item runs outside the lock; a slot's `pending` counts
 * the values of its local that an exiting thread has collected and not yet
 * freed, and cth_local_free waits for it to reach 0 before the slot (and
 * the local whose free_item it is) goes. A failed initializer's value
 * becomes the thread's cth_task_error().
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#define CTH__LOCAL_SOURCE /* the exported out-of-line cth_local_set */
#include "cthreading/local.h"
#include "list.h"
#include "platform.h"
#include "runtime.h"
#include "task_error.h"

struct table {
    size_t cap;                 /* values; changed by the owner, under reg_lock */
    void **e;                   /* the values; realloc'ed by the owner, under reg_lock */
    struct cth__list_node link; /* on tables, under reg_lock */
};

struct cth_local {
    struct cth__local_key key; /* first: read by the inline cth_local_get */
    cth_free_fn free_item;
    cth_local_init_fn init;
    void *init_arg;
};

struct slot {
    cth_local_t *local; /* NULL: free */
    uint32_t pending;   /* values collected by exiting threads, not yet destroyed */
    uint32_t next_free;
};

#define NO_SLOT UINT32_MAX
#define BATCH 64

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cond = PTHREAD_COND_INITIALIZER; /* a pending count fell to 0 */
static struct cth__list tables;                            /* every thread's table */
static struct slot *slots;
static uint32_t nslots, slots_cap, free_slot = NO_SLOT;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* The calling thread's table; its values and size are mirrored in the
 * exported cth__local_tls for the inline cth_local_get (fewer dependent
 * loads than going through the table). Only the owner writes both. */
static _Thread_local struct table *tls_table __attribute__((tls_model("initial-exec")));
CTH_API _Thread_local struct cth__local_tls cth__local_tls
    __attribute__((tls_model("initial-exec")));

static inline struct table *own_table(void)
{
    return tls_table;
}

/* Make t (may be NULL) the calling thread's table, or refresh the mirror
 * after t's entries moved. */
static inline void set_own_table(struct table *t)
{
    tls_table = t;
    cth__local_tls.values = t ? t->e : NULL;
    cth__local_tls.cap = t ? t->cap : 0;
}

/* One collected value and the free_item to run on it. */
struct victim {
    void *value;
    uint32_t slot;
    cth_free_fn free_item;
};

/* ---- thread exit --------------------------------------------------------------- */

/* Under reg_lock: clear up to BATCH of t's values, from entry *from on,
 * into out, counting them pending on their slots; returns how many, and
 * leaves *from past the last entry looked at. */
static int collect_thread(struct table *t, size_t *from, struct victim *out)
{
    int n = 0;
    size_t i = *from;
    for (; i < t->cap && n < BATCH; i++) {
        if (!t->e[i])
            continue;
        struct slot *s = &slots[i];
        out[n++] = (struct victim){t->e[i], (uint32_t)i, s->local->free_item};
        s->pending++;
        t->e[i] = NULL;
    }
    *from = i;
    return n;
}

/* The pthread key's destructor: free every value the exiting thread still
 * has, then drop its table. free_item may set locals again, so the table
 * is swept again while a sweep freed something, as pthreads runs its key
 * destructors, and as pthreads at most EXIT_ROUNDS sweeps
 * (PTHREAD_DESTRUCTOR_ITERATIONS): a free_item that sets its own local
 * each time would otherwise keep the thread from ever exiting. Values set
 * during the last sweep are forgotten, not freed (local.h). */
#define EXIT_ROUNDS 4

static void thread_exit(void *p)
{
    struct table *t = p;
    struct victim v[BATCH];
    set_own_table(t);
    int round = 1;
    size_t from = 0;
    bool freed = false; /* something, in this round */
    for (;;) {
        pthread_mutex_lock(&reg_lock);
        int n = collect_thread(t, &from, v);
        if (n == 0 && freed && round < EXIT_ROUNDS) {
            round++;
            from = 0;
            freed = false;
            pthread_mutex_unlock(&reg_lock);
            continue;
        }
        if (n == 0) {
            cth__list_remove(&tables, &t->link);
            pthread_mutex_unlock(&reg_lock);
            break;
        }
        freed = true;
        pthread_mutex_unlock(&reg_lock);
        for (int i = 0; i < n; i++)
            if (v[i].free_item)
                v[i].free_item(v[i].value);
        pthread_mutex_lock(&reg_lock);
        for (int i = 0; i < n; i++)
            if (--slots[v[i].slot].pending == 0)
                pthread_cond_broadcast(&reg_cond);
        pthread_mutex_unlock(&reg_lock);
    }
    set_own_table(NULL);
    cth__free(t->e);
    cth__free(t);
}

/* The runtime's thread-exit hook: a cthreading thread's values go before it
 * counts as finished, and a timer worker's after each Timer function. */
static void thread_exit_now(void)
{
    struct table *t = own_table();
    if (t) {
        pthread_setspecific(exit_key, NULL);
        thread_exit(t);
    }
}

__attribute__((constructor)) static void local_module_init(void)
{
    cth__runtime_on_thread_exit(thread_exit_now);
}

static void exit_key_create(void)
{
    if (pthread_key_create(&exit_key, thread_exit) != 0)
        abort(); /* only at the process's key limit, before any local exists */
    CTH__HAPPENS_BEFORE(&exit_key_once); /* helgrind does not see pthread_once order */
}

/* ---- the calling thread's table ---------------------------------------------------- */

/* Make the calling thread's table hold slot. 0 or CTH_ENOMEM. */
static int table_reserve(uint32_t slot)
{
    pthread_once(&exit_key_once, exit_key_create);
    CTH__HAPPENS_AFTER(&exit_key_once);
    struct table *t = own_table();
    size_t cap = t ? t->cap : 0;
    size_t want = cap * 2 > (size_t)slot + 1 ? cap * 2 : (size_t)slot + 1;
    if (want < 8)
        want = 8;
    if (!t) {
        t = cth__calloc(1, sizeof *t);
        if (!t)
            return CTH_ENOMEM;
    }
    pthread_mutex_lock(&reg_lock);
    void **e = cth__realloc(t->e, want * sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&reg_lock);
        if (!own_table())
            cth__free(t);
        return CTH_ENOMEM;
    }
    memset(e + cap, 0, (want - cap) * sizeof *e);
    t->e = e;
    t->cap = want;
    if (!own_table()) {
        cth__list_push_front(&tables, &t->link);
        pthread_setspecific(exit_key, t);
    }
    set_own_table(t);
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

/* The calling thread's value of local, or NULL when its table is too short. */
static inline void **own_entry(const cth_local_t *local)
{
    struct table *t = own_table();
    return t && local->key.slot < t->cap ? &t->e[local->key.slot] : NULL;
}

/* ---- the API ----------------------------------------------------------------------------- */

CTH_API int cth_local_create(cth_local_t **local, const cth_local_opts_t *opts)
{
    if (!local || (opts && opts->init_arg && !opts->init))
        return CTH_EINVAL;
    cth_local_t *l = cth__calloc(1, sizeof *l);
    if (!l)
        return CTH_ENOMEM;
    if (opts) {
        l->free_item = opts->free_item;
        l->init = opts->init;
        l->init_arg = opts->init_arg;
    }
    l->key.frees = l->free_item != NULL;
    pthread_mutex_lock(&reg_lock);
    if (free_slot == NO_SLOT) {
        if (nslots == slots_cap) {
            uint32_t cap = slots_cap ? slots_cap * 2 : 64;
            struct slot *s = cap > slots_cap ? cth__realloc(slots, cap * sizeof *s) : NULL;
            if (!s) {
                pthread_mutex_unlock(&reg_lock);
                cth__free(l);
                return CTH_ENOMEM;
            }
            slots = s;
            slots_cap = cap;
        }
        slots[nslots] = (struct slot){NULL, 0, NO_SLOT};
        free_slot = nslots++;
    }
    l->key.slot = free_slot;
    free_slot = slots[l->key.slot].next_free;
    slots[l->key.slot].local = l;
    pthread_mutex_unlock(&reg_lock);
    *local = l;
    return 0;
}

CTH_API void cth_local_free(cth_local_t *local)
{
    if (!local)
        return;
    struct victim v[BATCH];
    pthread_mutex_lock(&reg_lock);
    for (;;) {
        int n = 0;
        for (struct cth__list_node *node = tables.first; node && n < BATCH; node = node->next) {
            struct table *t = cth__list_entry(node, struct table, link);
            if (local->key.slot >= t->cap || !t->e[local->key.slot])
                continue;
            v[n++].value = t->e[local->key.slot];
            t->e[local->key.slot] = NULL;
        }
        if (n == 0)
            break;
        pthread_mutex_unlock(&reg_lock);
        if (local->free_item)
            for (int i = 0; i < n; i++)
                local->free_item(v[i].value);
        pthread_mutex_lock(&reg_lock);
    }
    struct slot *s = &slots[local->key.slot];
    while (s->pending) {
        pthread_cond_wait(&reg_cond, &reg_lock);
        s = &slots[local->key.slot]; /* slots may have moved meanwhile */
    }
    s->local = NULL;
    s->next_free = free_slot;
    free_slot = local->key.slot;
    pthread_mutex_unlock(&reg_lock);
    cth__free(local);
}

CTH_API void *cth__local_get_slow(const cth_local_t *local)
{
    /* the inline fast path found no value */
    if (!local || !local->init)
        return NULL;
    void *value = NULL;
    int failed = local->init(local->init_arg, &value);
    if (failed) {
        cth__task_failed(failed); /* the value for cth_task_error() */
        return NULL;
    }
    if (!value)
        return NULL;
    if (cth__local_set_slow((cth_local_t *)local, value) != 0) {
        if (local->free_item)
            local->free_item(value);
        return NULL;
    }
    return value;
}

/* local.h's inline cth_local_set, out of line, for callers through the
 * symbol (FFI, dlsym). */
CTH_API int cth_local_set(cth_local_t *local, void *value);
CTH_API int cth_local_set(cth_local_t *local, void *value)
{
    return cth__local_set_slow(local, value);
}

CTH_API int cth__local_set_slow(cth_local_t *local, void *value)
{
    if (!local)
        return CTH_EINVAL;
    void **e = own_entry(local);
    if (!e) {
        if (!value)
            return 0;
        int err = table_reserve(local->key.slot);
        if (err)
            return err;
        e = own_entry(local);
    }
    void *old = *e;
    *e = value;
    if (old && old != value && local->free_item)
        local->free_item(old);
    return 0;
}

CTH_API void *cth_local_take(cth_local_t *local)
{
    if (!local)
        return NULL;
    void **e = own_entry(local);
    if (!e)
        return NULL;
    void *value = *e;
    *e = NULL;
    return value;
}

CTH_API int cth_local_delete(cth_local_t *local)
{
    if (!local)
        return CTH_EINVAL;
    void *value = cth_local_take(local);
    if (!value)
        return CTH_ENOENT;
    if (local->free_item)
        local->free_item(value);
    return 0;
}
