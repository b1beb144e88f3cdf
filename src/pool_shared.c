/* SPDX-License-Identifier: MIT */
/*
 * pool_shared.c - shared allocations (cth_pool_shared_alloc): memory a
 * pool's workers read and write in place, Python's
 * multiprocessing.shared_memory for a pool.
 *
 * A region is whole pages. On a process pool it is a memfd whose pages are
 * reserved at once (a worker writing into it can never fault for want of
 * memory later), mapped by the program and, when a job first needs it, by
 * each worker (pool_process.c sends the descriptor, and the worker keeps
 * it mapped in a small table). Elsewhere (threads; MPI ranks, which share
 * no memory across machines) it is plain zeroed pages, so that a program
 * switches backends unchanged.
 *
 * A pool lists its regions under its set's lock. A record job whose inputs
 * or outputs lie wholly inside a region not freed holds a reference to it
 * from its submission (cth__shared_hold) until it completes
 * (cth__shared_drop): a region freed while a job uses it goes with that
 * job, so no worker ever writes into memory given back. `count` (regions
 * not freed) lets a pool without any skip the lookup. A memfd that goes is
 * truncated to nothing first, which frees its pages at once though workers
 * still map it (none touches it again: a region's id is never reused);
 * not in a fork child, whose memfd is its parent's too, nor one made
 * before a fork of the program's own (a worker's launch is none): that
 * child may still use it, as Python's shared memory outlives its unlink
 * in a process that has it attached. cth_pool_free frees the regions
 * still allocated.
 */
#include <unistd.h>

#include "pool_internal.h"

static _Atomic uint64_t next_segment_id = 1;

/* The program's forks so far, a worker's launch not counted. */
static _Atomic uint32_t program_forks;
_Thread_local bool cth__forking_worker __attribute__((tls_model("initial-exec")));

void cth__shared_fork_parent(void)
{
    if (!cth__forking_worker)
        atomic_fetch_add(&program_forks, 1);
}

uint64_t cth__segment_id(void)
{
    return atomic_fetch_add(&next_segment_id, 1);
}

void cth__shared_init(struct cth__shared *set)
{
    pthread_mutex_init(&set->lock, NULL);
    cth__list_init(&set->regions);
    atomic_init(&set->count, 0);
    set->owner = getpid();
}

void cth__shared_fork_child(struct cth__shared *set)
{
    pthread_mutex_init(&set->lock, NULL); /* a thread of the parent may have held it */
}

void cth__shared_destroy(struct cth__shared *set)
{
    pthread_mutex_destroy(&set->lock);
}

/* Unmap and free a region no longer listed. */
static void region_destroy(struct cth__region *r)
{
    if (r->fd >= 0) {
        if (r->base)
            cth__os_shm_unmap(r->base, r->mapped);
        /* the workers' mappings keep no page; a fork child of the
         * program's own that may map it keeps them all */
        if (r->set->owner == getpid() && r->forks == atomic_load(&program_forks))
            cth__os_shm_discard(r->fd);
        close(r->fd);
    } else if (r->base) {
        cth__page_free(r->base, r->mapped);
    }
    cth__free(r);
}

/* Drop a reference (the set's lock held); true when it was the last: the
 * region is unlisted, for region_destroy after the lock. */
static bool region_unref_locked(struct cth__region *r)
{
    if (--r->refs)
        return false;
    cth__list_remove(&r->set->regions, &r->link);
    return true;
}

/* The bytes beyond which an allocation cannot be backed: the machine's
 * memory (SIZE_MAX where the system does not say). */
static size_t memory_size(size_t page)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    if (pages <= 0 || (unsigned long)pages > SIZE_MAX / page)
        return SIZE_MAX;
    return (size_t)pages * page;
}

CTH_API int cth_pool_shared_alloc(cth_pool_t *pool, size_t size, void **mem)
{
    if (!pool || !mem || size == 0)
        return CTH_EINVAL;
    long page_size = sysconf(_SC_PAGESIZE);
    size_t page = page_size > 0 ? (size_t)page_size : 4096;
    if (size > (size_t)INT64_MAX - page || size > SIZE_MAX - page)
        return CTH_EOVERFLOW;
    size_t mapped = (size + page - 1) / page * page;
    if (mapped > memory_size(page))
        return CTH_ENOMEM;
    struct cth__region *r = cth__malloc(sizeof *r);
    if (!r)
        return CTH_ENOMEM;
    struct cth__shared *set = cth__pool_shared(pool);
    /* forks read before the mapping is made: one that comes after it counts */
    *r = (struct cth__region){.set = set,
                              .size = size,
                              .mapped = mapped,
                              .fd = -1,
                              .id = cth__segment_id(),
                              .refs = 1,
                              .forks = atomic_load(&program_forks)};
    int err = 0;
    if (cth_pool_backend(pool) == CTH_POOL_PROCESSES) {
        err = cth__os_shm_create(mapped, &r->fd);
        if (!err)
            err = cth__os_shm_reserve(r->fd, mapped);
        if (!err && !(r->base = cth__os_shm_map_inherited(r->fd, mapped)))
            err = CTH_ENOMEM;
    } else if (!(r->base = cth__page_alloc(mapped))) {
        err = CTH_ENOMEM;
    }
    if (err) {
        region_destroy(r);
        return err;
    }
    pthread_mutex_lock(&set->lock);
    cth__list_push_back(&set->regions, &r->link);
    atomic_fetch_add_explicit(&set->count, 1, memory_order_relaxed);
    pthread_mutex_unlock(&set->lock);
    *mem = r->base;
    return 0;
}

CTH_API int cth_pool_shared_free(cth_pool_t *pool, const void *mem)
{
    if (!pool)
        return CTH_EINVAL;
    if (!mem)
        return 0;
    struct cth__shared *set = cth__pool_shared(pool);
    struct cth__region *found = NULL;
    bool last = false;
    pthread_mutex_lock(&set->lock);
    for (struct cth__list_node *n = set->regions.first; n && !found; n = n->next) {
        struct cth__region *r = cth__list_entry(n, struct cth__region, link);
        if (r->base == mem && !r->freed)
            found = r;
    }
    if (found) {
        found->freed = true;
        atomic_fetch_sub_explicit(&set->count, 1, memory_order_relaxed);
        last = region_unref_locked(found);
    }
    pthread_mutex_unlock(&set->lock);
    if (last)
        region_destroy(found);
    return found ? 0 : CTH_EINVAL;
}

void cth__shared_free_all(struct cth__shared *set)
{
    struct cth__list gone = {NULL, NULL};
    pthread_mutex_lock(&set->lock);
    struct cth__list_node *n = set->regions.first;
    while (n) {
        struct cth__region *r = cth__list_entry(n, struct cth__region, link);
        n = n->next;
        if (r->freed)
            continue;
        r->freed = true;
        atomic_fetch_sub_explicit(&set->count, 1, memory_order_relaxed);
        if (region_unref_locked(r))
            cth__list_push_back(&gone, &r->link);
    }
    pthread_mutex_unlock(&set->lock);
    while ((n = cth__list_pop_front(&gone)) != NULL)
        region_destroy(cth__list_entry(n, struct cth__region, link));
}

/* The region not freed that holds [p, p + len) wholly, with a reference
 * more; or NULL (the set's lock held). */
static struct cth__region *region_hold_locked(struct cth__shared *set, const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    for (struct cth__list_node *n = set->regions.first; n; n = n->next) {
        struct cth__region *r = cth__list_entry(n, struct cth__region, link);
        uintptr_t base = (uintptr_t)r->base;
        if (!r->freed && a >= base && len <= r->size && a - base <= r->size - len) {
            r->refs++;
            return r;
        }
    }
    return NULL;
}

void cth__shared_hold(cth_pool_t *pool, struct cth_result *job)
{
    struct cth__shared *set = cth__pool_shared(pool);
    bool records = job->kind == JOB_RECORDS || (job->kind == JOB_IMAP && job->rec_fn);
    if (!records || job->in_region || job->out_region ||
        atomic_load_explicit(&set->count, memory_order_relaxed) == 0)
        return;
    size_t in_len = job->n * job->in_size, out_len = job->n * job->out_size; /* checked */
    pthread_mutex_lock(&set->lock);
    if (in_len && job->in)
        job->in_region = region_hold_locked(set, job->in, in_len);
    if (out_len && job->out)
        job->out_region = region_hold_locked(set, job->out, out_len);
    pthread_mutex_unlock(&set->lock);
}

void cth__shared_drop(struct cth_result *job)
{
    struct cth__region *held[2] = {job->in_region, job->out_region}, *gone[2] = {NULL, NULL};
    if (!held[0] && !held[1])
        return;
    job->in_region = job->out_region = NULL;
    struct cth__shared *set = held[0] ? held[0]->set : held[1]->set;
    pthread_mutex_lock(&set->lock);
    for (int i = 0; i < 2; i++)
        if (held[i] && region_unref_locked(held[i]))
            gone[i] = held[i];
    pthread_mutex_unlock(&set->lock);
    for (int i = 0; i < 2; i++)
        if (gone[i])
            region_destroy(gone[i]);
}
