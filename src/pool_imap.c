/* SPDX-License-Identifier: MIT */
/*
 * pool_imap.c - the imap and imap_unordered iterators (Python's
 * IMapIterator and IMapUnorderedIterator), over an array or a producer.
 *
 * State. An iterator owns `cap` slots. Position p of the input is "in
 * flight" from the moment it is read until cth_imap_next hands its result
 * out; at most cap positions are in flight (cap = n for an array). imap
 * keeps p's result in slot p % cap and yields slot `consumed % cap` once it
 * is done (Python's _index/_unsorted reordering, without a dictionary);
 * imap_unordered appends results to a FIFO ring of the same slots, in
 * completion order. it->lock guards the slots (but see Chunks), the FIFO,
 * `consumed`, `end`, `finished` and `jobs`; the condition over it wakes the
 * consumer and cth_imap_free.
 *
 * Chunks. A chunk of several items keeps its values (in their slots for
 * imap, written by its worker without the lock while not done; in the
 * job's `results` for imap_unordered) until the whole chunk has run, and
 * then delivers them together, under one lock. A chunk that fails
 * (CTH_ETASK with the failing task's value, or CTH_ECANCELED) delivers its
 * code once, at its first position, in place of all its items;
 * cth_imap_next hands a task's value over in cth_task_error(). As in
 * Python, where imap with chunksize > 1 is a generator over the chunks,
 * with chunksize > 1 that outcome is the iteration's last (its slot is
 * marked `last`: taking it sets `finished`); with chunksize 1 the
 * iteration goes on after it.
 *
 * Work. An array iterator submits one job over all n items. A producer
 * iterator reads items in the consumer's thread (at creation and in each
 * cth_imap_next) in whole chunks while fewer than cap (a whole number of
 * chunks) are in flight, and submits each batch read as a job of its own,
 * allocated with its items. A producer failure (CTH_ETASK with the
 * producer's value, or CTH_ENOMEM for a batch) is delivered at the
 * position after the last whole chunk read (the items of a chunk it cut
 * short are dropped, as Python's _get_tasks drops them) and ends the input.
 * Every job is freed when it completes; `jobs` counts those alive, and
 * cth_imap_free waits for it to reach zero, after setting `cancelled` so
 * the queued items are skipped (delivered as CTH_ECANCELED without
 * running).
 *
 * Records. A record iterator (cth_pool_imap_records) is an array iterator
 * whose job runs rec_fn over the records (cth__job_run_records, the same
 * for both backends) and whose values are the items' places in out. That
 * call reports a failure through cth__job_fail, which lands here
 * (cth__imap_fail) in the outcome of the chunk the calling thread is
 * running: `running` points at it while cth__imap_run runs the chunk (a
 * thread runs one chunk of an imap at a time, but a task may run others
 * inside, so the previous one is restored after).
 */
#include "pool_internal.h"

struct slot {
    void *value;
    int err;        /* 0, CTH_ETASK, CTH_ECANCELED or CTH_ENOMEM (records on
                       processes: CTH_EWORKER, CTH_ETIMEDOUT, CTH_EPROTO too) */
    int task_error; /* with CTH_ETASK: the task's or the producer's value;
                       with CTH_EWORKER: the worker's wait status */
    bool done;
    bool last; /* the iteration ends once this is taken */
};

struct cth_imap {
    cth_pool_t *pool;
    cth_pool_fn fn;
    bool ordered;
    size_t chunksize;
    void *const *items; /* array input */
    cth_imap_producer_fn producer;
    void *ctx;
    bool holds_cache; /* a producer iterator keeps a closed pool's workers */
    bool input_done;  /* the producer has ended (consumer thread only) */
    size_t submitted; /* positions read (consumer thread only) */
    size_t consumed;  /* outcomes handed out (lock) */
    size_t end;       /* total positions once known, else SIZE_MAX (lock) */
    bool finished;    /* a `last` outcome was handed out (lock) */
    size_t jobs;      /* jobs alive (lock) */
    size_t cap;
    struct slot *slots;
    size_t fifo_head, fifo_count; /* imap_unordered (lock) */
    _Atomic bool cancelled;
    cth_lock_t lock;
    cth_cond_t cond;
};

/* A job of an iterator, allocated with room for the n values of its chunks
 * before delivery (job.results: imap_unordered with chunksize > 1, see
 * value_home) and, for a producer, its n items after them (batch_items). */
struct imap_batch {
    struct cth_result job;
    void *buf[];
};

/* Whether the job keeps its chunks' values in job.results. */
static bool keeps_values(const struct cth_imap *it)
{
    return it->chunksize > 1 && !it->ordered;
}

static struct imap_batch *batch_alloc(const struct cth_imap *it, size_t n)
{
    size_t per = (keeps_values(it) + (it->producer != NULL)) * sizeof(void *);
    if (per && n > (SIZE_MAX - sizeof(struct imap_batch)) / per)
        return NULL;
    struct imap_batch *b = cth__malloc(sizeof *b + n * per);
    if (b) {
        b->job = (struct cth_result){0};
        b->job.results = b->buf;
    }
    return b;
}

static void **batch_items(const struct cth_imap *it, struct imap_batch *b, size_t n)
{
    return b->buf + (keeps_values(it) ? n : 0);
}

/* Where item i of a chunk of several keeps its value until the chunk is
 * delivered: its own slot for imap (whose `done` is only set then; the
 * slot is free, its last position consumed before this one was read),
 * job.results for imap_unordered (whose slots are taken in completion
 * order). */
static void **value_home(struct cth_imap *it, struct cth_result *job, size_t i)
{
    return it->ordered ? &it->slots[(job->base + i) % it->cap].value : &job->results[i];
}

/* Store position pos's outcome; the caller holds it->lock. */
static void deliver_locked(struct cth_imap *it, size_t pos, void *value, int err, int task_error,
                           bool last)
{
    struct slot *s;
    if (it->ordered) {
        s = &it->slots[pos % it->cap];
    } else {
        s = &it->slots[(it->fifo_head + it->fifo_count) % it->cap];
        it->fifo_count++;
    }
    *s = (struct slot){value, err, task_error, true, last};
}

/* Deliver the chunk of items [lo, hi) of job: their values (value, for a
 * chunk of one; else from value_home), or err (with task_error) once at
 * position lo (the last outcome with chunksize > 1). The caller holds
 * it->lock. */
static void deliver_chunk_locked(struct cth_imap *it, struct cth_result *job, size_t lo, size_t hi,
                                 int err, int task_error, void *value)
{
    if (err) {
        deliver_locked(it, job->base + lo, NULL, err, task_error, it->chunksize > 1);
    } else if (hi - lo == 1) {
        deliver_locked(it, job->base + lo, value, 0, 0, false);
    } else {
        for (size_t i = lo; i < hi; i++)
            deliver_locked(it, job->base + i, *value_home(it, job, i), 0, 0, false);
    }
    cth_cond_notify_all(&it->cond);
}

/* The outcome of the record chunk the calling thread is running. */
struct chunk_outcome {
    const struct cth_result *job;
    int err, task_error;
};

static _Thread_local struct chunk_outcome *running;

void cth__imap_fail(const struct cth_result *job, int code, int value)
{
    struct chunk_outcome *o = running;
    if (o && o->job == job && o->err == 0) {
        o->err = code;
        o->task_error = value;
    }
}

/* Run the record chunk [lo, hi): its outcome, and its value for a chunk of
 * one (the item's place in out). */
static void *run_records(struct cth_imap *it, struct cth_result *job, size_t lo, size_t hi,
                         int *err, int *task_error)
{
    if (atomic_load_explicit(&it->cancelled, memory_order_relaxed)) {
        *err = CTH_ECANCELED;
        return NULL;
    }
    struct chunk_outcome o = {job, 0, 0}, *outer = running;
    running = &o;
    cth__job_run_records(job, lo, hi);
    running = outer;
    *err = o.err;
    *task_error = o.task_error;
    for (size_t i = lo; i < hi && hi - lo > 1 && !*err; i++)
        *value_home(it, job, i) = job->out_size ? job->out + i * job->out_size : NULL;
    return job->out_size ? job->out + lo * job->out_size : NULL;
}

/* Run the task chunk [lo, hi): its outcome, and its value for a chunk of
 * one. */
static void *run_tasks(struct cth_imap *it, struct cth_result *job, size_t lo, size_t hi, int *err,
                       int *task_error)
{
    void *const *items = (void *const *)job->items;
    void *v = NULL;
    for (size_t i = lo; i < hi && !*err; i++) {
        if (atomic_load_explicit(&it->cancelled, memory_order_relaxed)) {
            *err = CTH_ECANCELED;
            continue;
        }
        v = NULL; /* a task that stores nothing yields NULL, not the last value */
        int r = it->fn(items[i], &v);
        if (r != 0) { /* the chunk stops here, as Python's mapstar */
            *err = CTH_ETASK;
            *task_error = r;
        } else if (hi - lo > 1) {
            *value_home(it, job, i) = v;
        }
    }
    return v;
}

void cth__imap_run(struct cth_result *job, size_t lo, size_t hi)
{
    struct cth_imap *it = job->arg;
    int err = 0, task_error = 0;
    void *v = job->rec_fn ? run_records(it, job, lo, hi, &err, &task_error)
                          : run_tasks(it, job, lo, hi, &err, &task_error);
    cth__lock_acquire_keeping_interrupt(&it->lock);
    deliver_chunk_locked(it, job, lo, hi, err, task_error, v);
    cth_lock_release(&it->lock);
}

void cth__imap_cancel(struct cth_result *job, size_t lo, size_t hi)
{
    struct cth_imap *it = job->arg;
    cth__lock_acquire_keeping_interrupt(&it->lock);
    for (size_t c = lo; c < hi; c += job->chunksize)
        deliver_chunk_locked(it, job, c, c + job->chunksize < hi ? c + job->chunksize : hi,
                             CTH_ECANCELED, 0, NULL);
    cth_lock_release(&it->lock);
}

void cth__imap_job_done(struct cth_result *job)
{
    struct cth_imap *it = job->arg;
    cth__free(job); /* the job is the head of its allocation */
    cth__lock_acquire_keeping_interrupt(&it->lock);
    it->jobs--;
    cth_cond_notify_all(&it->cond);
    cth_lock_release(&it->lock);
}

/* Submit items[0..k) at position base as one job; on refusal (the pool was
 * terminated) they are delivered as CTH_ECANCELED and false is returned. */
static bool submit_job(struct cth_imap *it, struct cth_result *job, void *const *items, size_t base,
                       size_t k)
{
    job->arg = it;
    job->items = (const char *)items;
    job->base = base;
    cth__job_setup(job, it->pool, JOB_IMAP, k, it->chunksize);
    cth__lock_acquire_keeping_interrupt(&it->lock);
    it->jobs++;
    cth_lock_release(&it->lock);
    if (cth__pool_submit(it->pool, job, true) != 0) {
        cth__imap_cancel(job, 0, k);
        cth__lock_acquire_keeping_interrupt(&it->lock);
        it->jobs--;
        cth_lock_release(&it->lock);
        cth__free(job);
        return false;
    }
    return true;
}

/* The input has ended (or the iteration has: no more is read), end being
 * the number of positions. Consumer thread. */
static void input_ended(struct cth_imap *it, size_t end)
{
    it->input_done = true;
    cth__lock_acquire_keeping_interrupt(&it->lock);
    it->end = end;
    cth_cond_notify_all(&it->cond);
    cth_lock_release(&it->lock);
    if (it->holds_cache) {
        it->holds_cache = false;
        cth__pool_cache_release(it->pool);
    }
}

/* The input failed with err (CTH_ETASK: the producer returned task_error):
 * deliver it at the next position (Python's _guarded_task_generation
 * re-raises it there), which ends the input. */
static void input_failed(struct cth_imap *it, int err, int task_error)
{
    cth__lock_acquire_keeping_interrupt(&it->lock);
    deliver_locked(it, it->submitted, NULL, err, task_error, it->chunksize > 1);
    cth_cond_notify_all(&it->cond);
    cth_lock_release(&it->lock);
    input_ended(it, ++it->submitted);
}

/* Read from the producer, in whole chunks, while fewer than cap positions
 * are in flight. */
static void refill(struct cth_imap *it)
{
    while (!it->input_done) {
        cth__lock_acquire_keeping_interrupt(&it->lock);
        size_t room = it->cap - (it->submitted - it->consumed);
        cth_lock_release(&it->lock);
        room -= room % it->chunksize;
        if (room == 0)
            return;
        struct imap_batch *b = batch_alloc(it, room);
        if (!b) { /* report it at this position, as a failing producer */
            input_failed(it, CTH_ENOMEM, 0);
            return;
        }
        void **items = batch_items(it, b, room);
        size_t k = 0;
        int r = 0;
        bool end = false;
        while (k < room && (r = it->producer(it->ctx, &items[k], &end)) == 0 && !end)
            k++;
        if (r != 0) /* Python's _get_tasks drops a chunk the failure cut short */
            k -= k % it->chunksize;
        size_t base = it->submitted;
        it->submitted += k;
        bool refused = false;
        if (k)
            refused = !submit_job(it, &b->job, items, base, k);
        else
            cth__free(b);
        if (r != 0 && !refused)
            input_failed(it, CTH_ETASK, r);
        else if (refused || end)
            input_ended(it, it->submitted);
    }
}

/* rec: a record iterator's record fields (fn and items are then unused),
 * or NULL. */
static int imap_create(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                       cth_imap_producer_fn producer, void *ctx, size_t chunksize,
                       size_t max_inflight, bool ordered, const struct cth_result *rec,
                       cth_imap_t **out)
{
    if (!pool || (!fn && !rec) || !out || (!producer && !rec && !items && n))
        return CTH_EINVAL;
    if (!rec && cth__pool_is_process(pool))
        return CTH_ENOTSUP;
    if (!cth__pool_running(pool))
        return CTH_EINVAL;
    if (!chunksize)
        chunksize = 1;
    size_t cap = n;
    if (producer) {
        /* a whole number of chunks (SIZE_MAX, which cannot be allocated,
         * if that overflows) */
        size_t chunks = max_inflight ? max_inflight / chunksize + (max_inflight % chunksize != 0)
                                     : 4 * cth__pool_workers(pool);
        cap = chunks > SIZE_MAX / chunksize ? SIZE_MAX : chunks * chunksize;
    }
    struct cth_imap *it = cth__malloc(sizeof *it);
    struct slot *slots = cap ? cth__calloc(cap, sizeof *slots) : NULL;
    struct imap_batch *b = NULL;
    if (it) {
        *it = (struct cth_imap){.pool = pool,
                                .fn = fn,
                                .ordered = ordered,
                                .chunksize = chunksize,
                                .items = items,
                                .producer = producer,
                                .ctx = ctx,
                                .cap = cap,
                                .slots = slots,
                                .end = producer ? SIZE_MAX : n};
        if (!producer && n && (!cap || slots))
            b = batch_alloc(it, n);
    }
    if (!it || (cap && !slots) || (!producer && n && !b)) { /* b is NULL then */
        cth__free(it);
        cth__free(slots);
        return CTH_ENOMEM;
    }
    if (rec && b) { /* a process pool copies the records now: its errors come here */
        b->job.kind = JOB_IMAP;
        b->job.n = n;
        b->job.rec_fn = rec->rec_fn;
        b->job.in = rec->in;
        b->job.in_size = rec->in_size;
        b->job.out = rec->out;
        b->job.out_size = rec->out_size;
        int err = cth__pool_job_prepare(pool, &b->job);
        if (err) {
            cth__free(b);
            cth__free(it);
            cth__free(slots);
            return err;
        }
    }
    cth_cond_init(&it->cond, &it->lock);
    cth__pool_ref(pool);
    if (producer) {
        /* Until its input ends, a producer iterator keeps a closed pool's
         * workers, and its refills are accepted by a closed pool (Python
         * has read its whole input by then). */
        cth__pool_cache_hold(pool);
        it->holds_cache = true;
        refill(it);
    } else if (b) {
        if (rec) {
            b->job.rec_fn = rec->rec_fn;
            b->job.in = rec->in;
            b->job.in_size = rec->in_size;
            b->job.out = rec->out;
            b->job.out_size = rec->out_size;
        }
        submit_job(it, &b->job, items, 0, n);
    }
    *out = it;
    return 0;
}

CTH_API int cth_pool_imap(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                          size_t chunksize, cth_imap_t **it)
{
    return imap_create(pool, fn, items, n, NULL, NULL, chunksize, 0, true, NULL, it);
}

CTH_API int cth_pool_imap_unordered(cth_pool_t *pool, cth_pool_fn fn, void *const *items, size_t n,
                                    size_t chunksize, cth_imap_t **it)
{
    return imap_create(pool, fn, items, n, NULL, NULL, chunksize, 0, false, NULL, it);
}

CTH_API int cth_pool_imap_producer(cth_pool_t *pool, cth_pool_fn fn, cth_imap_producer_fn producer,
                                   void *ctx, size_t chunksize, size_t max_inflight,
                                   cth_imap_t **it)
{
    if (!producer)
        return CTH_EINVAL;
    return imap_create(pool, fn, NULL, 0, producer, ctx, chunksize, max_inflight, true, NULL, it);
}

CTH_API int cth_pool_imap_unordered_producer(cth_pool_t *pool, cth_pool_fn fn,
                                             cth_imap_producer_fn producer, void *ctx,
                                             size_t chunksize, size_t max_inflight, cth_imap_t **it)
{
    if (!producer)
        return CTH_EINVAL;
    return imap_create(pool, fn, NULL, 0, producer, ctx, chunksize, max_inflight, false, NULL, it);
}

static int imap_records_create(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                               size_t in_size, size_t n, size_t chunksize, void *out,
                               size_t out_size, bool ordered, cth_imap_t **it)
{
    int err = cth__records_check(pool, fn, in, in_size, n, out, out_size);
    if (err)
        return err;
    struct cth_result rec = {
        .rec_fn = fn, .in = in, .in_size = in_size, .out = out, .out_size = out_size};
    return imap_create(pool, NULL, NULL, n, NULL, NULL, chunksize, 0, ordered, &rec, it);
}

CTH_API int cth_pool_imap_records(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                                  size_t in_size, size_t n, size_t chunksize, void *out,
                                  size_t out_size, cth_imap_t **it)
{
    return imap_records_create(pool, fn, in, in_size, n, chunksize, out, out_size, true, it);
}

CTH_API int cth_pool_imap_unordered_records(cth_pool_t *pool, cth_pool_record_fn fn, const void *in,
                                            size_t in_size, size_t n, size_t chunksize, void *out,
                                            size_t out_size, cth_imap_t **it)
{
    return imap_records_create(pool, fn, in, in_size, n, chunksize, out, out_size, false, it);
}

/* Take the next outcome if there is one; the caller holds it->lock. */
static bool take_locked(struct cth_imap *it, void **value, int *err, int *task_error)
{
    struct slot *s = &it->slots[(it->ordered ? it->consumed : it->fifo_head) % it->cap];
    if (!s->done)
        return false;
    s->done = false;
    if (!it->ordered) {
        it->fifo_head = (it->fifo_head + 1) % it->cap;
        it->fifo_count--;
    }
    it->consumed++;
    it->finished = s->last;
    *value = s->value;
    *err = s->err;
    *task_error = s->task_error;
    return true;
}

CTH_API int cth_imap_next(cth_imap_t *it, void **value, double timeout)
{
    if (!it)
        return CTH_EINVAL;
    int64_t deadline;
    int err = cth__timeout_to_deadline(timeout, &deadline);
    if (err)
        return err;
    if (it->producer)
        refill(it);
    void *v = NULL;
    int task_error = 0;
    cth__lock_acquire_keeping_interrupt(&it->lock);
    for (;;) {
        if (it->consumed == it->end || it->finished) {
            err = CTH_IMAP_END;
            break;
        }
        if (take_locked(it, &v, &err, &task_error))
            break;
        int r = cth_cond_wait(&it->cond, cth__timeout_left(deadline));
        if (r == CTH_ETIMEDOUT || r == CTH_EINTR) {
            /* a result that arrived with the timeout still counts */
            if (it->consumed != it->end && take_locked(it, &v, &err, &task_error))
                break;
            err = r;
            break;
        }
    }
    bool finished = it->finished;
    cth_lock_release(&it->lock);
    if (err == 0 && value)
        *value = v;
    if (it->producer && finished && !it->input_done)
        input_ended(it, it->submitted); /* the iteration is over: read no more */
    if (err != CTH_IMAP_END && err != CTH_ETIMEDOUT && err != CTH_EINTR && it->producer)
        refill(it);
    /* after refill: the producer may make blocking calls */
    if (err == CTH_ETASK || err == CTH_EWORKER)
        cth__task_failed(task_error);
    return err;
}

CTH_API void cth_imap_free(cth_imap_t *it)
{
    if (!it)
        return;
    atomic_store(&it->cancelled, true);
    cth__lock_acquire_keeping_interrupt(&it->lock);
    while (it->jobs)
        cth_cond_wait(&it->cond, CTH_FOREVER);
    cth_lock_release(&it->lock);
    if (it->holds_cache)
        cth__pool_cache_release(it->pool);
    cth__pool_unref(it->pool);
    cth__free(it->slots);
    cth__free(it);
}
