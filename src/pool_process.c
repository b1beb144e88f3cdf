/* SPDX-License-Identifier: MIT */
/*
 * pool_process.c - the process backend of the pool: proxy threads, the
 * control block each shares with its worker process, the worker's main
 * loop, and how a worker's death, a task timeout and terminate are noticed.
 *
 * Proxies. A process pool is the thread pool (pool.c) whose worker threads
 * are proxies: each launches one worker process when it starts
 * (proc_launch.h) and stops it when it exits, takes chunks as any worker
 * thread does, and instead of running a chunk ships it to its process and
 * waits (run_items, through the pool's ops table: process_ops, at the
 * end). Queueing, ordering, callbacks, imap, close/join/terminate and
 * maxtasksperchild are the thread pool's.
 *
 * The control block. Each worker has its own: a memfd mapped by its proxy
 * and by that worker only (the mappings are not inherited by fork, and the
 * launcher closes every other descriptor), passed to it over its channel
 * at start. It holds two sequence words: `req`, which the proxy bumps to
 * post a command (run items [lo, hi) of a segment with function F, run a
 * buffer task, exit) and the worker waits on, and `ack`, which the worker
 * sets to the command's number when it is done and the proxy waits on. `taken` says the worker picked the command up,
 * `progress` counts the items it has finished, then the outcome (ok, a
 * task's failure and value, or a worker-side error code) and, for a buffer
 * task, the result's length. Each side spins a little on the word it
 * waits for (SPIN if its last wait ended while it spun, else SPIN_SHORT:
 * next_spin), then announces itself (req_sleep, ack_sleep) and futex-waits
 * on it with the process-shared futex; the other side stores the word,
 * then looks at the announcement (both seq_cst, so no wake-up is lost) and
 * wakes only a sleeper. A function is named by its funcref, made into the
 * block only when it differs from the last one sent; the worker resolves
 * it (never trusting it) and keeps the address.
 *
 * Data. A map's records are copied once into a segment (a memfd made
 * when the job is submitted, job_prepare: n inputs, then room for n
 * outputs), each chunk's by the proxy that ships it, just before (so the
 * copies run in parallel); the worker reads the inputs and writes the
 * outputs in place, and the proxy copies a finished chunk's outputs into
 * the caller's array at once (so an imap delivers them). Records that lie
 * wholly inside a shared allocation of the pool (cth_pool_shared_alloc,
 * pool_shared.c: a memfd too) are not copied: that side of the job (its
 * inputs, its outputs, or both: struct side) is the allocation itself, at
 * the records' offset, and the segment holds only the other side, or is
 * not made. A released segment is kept as the pool's spare (the largest
 * one, up to SPARE_MAX) and reused by the next job that fits, its pages
 * already there and the workers' mappings still valid: a map costs no
 * page allocation then.
 *
 * A worker's segments. A segment is named by its id (unique in the
 * process, never reused), not by its job. A worker keeps up to SLOTS
 * segments mapped, each in a slot; its proxy mirrors the table (held,
 * used) and decides: a command names the slots of its inputs and outputs,
 * and a segment the worker lacks goes with it, its descriptor passed by
 * SCM_RIGHTS into the slot the proxy chose (an empty one, else the least
 * recently used one the command does not need), whose old mapping the
 * worker drops. So a worker maps an allocation once for all the maps over
 * it, and holds at most SLOTS segments it no longer needs; a segment or an
 * allocation destroyed has its pages discarded at once (segment_destroy,
 * pool_shared.c), so a stale mapping keeps no memory. A worker that reports an error may lack what
 * the command sent: its proxy forgets the table and sends again. A buffer
 * up to INLINE_MAX bytes crosses inline in the control block, either way;
 * a larger one in a memfd (in a slot as a segment going in, of its own
 * coming back). Nothing crosses a pipe per item.
 *
 * Trust. The worker checks the command too (a slot it holds, records
 * within its segment). The proxy reads what the worker wrote once, into
 * its own copy, and checks it: an acknowledgement that is this command's or the last
 * one's, progress within the chunk, a known outcome, a failing task's
 * nonzero value, a result length within INLINE_MAX or within the memfd
 * received (fstat first). Anything else fails the item with CTH_EPROTO,
 * and the worker, no longer trusted, is killed and replaced. A
 * worker-side error code is taken only from a short list.
 *
 * Death, timeouts, terminate. While a chunk runs, the proxy's futex waits
 * are slices of at most SLICE_NS; between slices it looks at its worker
 * (the pidfd, cth__proc_ended), at the progress counter (a task timeout
 * counts from the last item finished), and at the pool's terminate flag.
 * So a death is seen within a slice, without polling in between and
 * without a syscall on the fast path. A worker that died mid-chunk fails
 * the item it was running (lo + progress) with CTH_EWORKER and its wait
 * status; the items before it keep their results; the proxy reaps it and
 * launches another. One that died before taking the command is replaced
 * and the command posted again. A task past its timeout has its worker
 * killed (SIGKILL) and fails with CTH_ETIMEDOUT. terminate sends SIGTERM to
 * every worker and wakes the proxies; a proxy in a chunk kills its worker
 * 0.1 s after terminate if it is still there, reaps it, and fails the item
 * with CTH_ECANCELED. A proxy that exits asks its worker to exit, and
 * kills it after EXIT_WAIT_NS. `live` (under the registry lock) says the
 * proxy's worker is not reaped yet, so terminate never signals a reaped
 * pid.
 *
 * The direct path. A synchronous call's lone task (cth_pool_apply_buffer)
 * need not go through a proxy thread: the calling thread borrows a proxy
 * whose worker is idle (run_now; `owner`, taken by CAS, says who drives a
 * proxy's worker: nobody, its thread, or a borrower, which its thread
 * waits for on a futex and which hands the proxy straight to it when done)
 * and runs the command itself, so no thread is woken
 * and a round trip crosses two parties, not three. A borrower never
 * launches a worker (PR_SET_PDEATHSIG follows the launching thread): a
 * worker dead before it took the command sends the task to the queue. Not
 * with maxtasksperchild, whose count is the proxy threads'.
 *
 * Batches. A proxy that takes a lone buffer task (pool.c's run_lone_batch)
 * also takes the lone tasks behind it that fit (batch_fits: the same
 * function and timeout, inputs inline, BATCH_IN_MAX bytes in all), up to
 * batch_room: about BATCH_BUDGET_NS of work by the worker's last timing of
 * that function (run_ns), BATCH_MAX at most, 1 while untimed; the worker
 * runs them in one command (OP_BATCH), each with its own item (outcome,
 * result inline behind the inputs or in a memfd). The task a dying or
 * killed worker was running (item `progress`) fails, those before keep
 * their results (read from the dead worker's block and a copy of its
 * channel, kept until the next launch), those behind run on the next
 * worker (run_batch).
 *
 * fork. A fork child of the program inherits the pool terminated (pool.c);
 * it must not kill, wait for or talk to the parent's workers: it closes its
 * copies of their descriptors and forgets them (the mappings did not
 * follow it).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd_channel.h"
#include "funcref.h"
#include "platform.h"
#include "pool_internal.h"
#include "proc_launch.h"

#define INLINE_MAX 65536                 /* a buffer crossing inside the block */
#define SPIN 4000                        /* pause iterations before a futex wait, */
#define SPIN_SHORT 200                   /* ... after a wait that spinning did not end */
#define SLICE_NS INT64_C(20000000)       /* a proxy's wait between looks at its worker */
#define TERM_GRACE_NS INT64_C(100000000) /* terminate: SIGTERM, then SIGKILL */
#define EXIT_WAIT_NS INT64_C(1000000000) /* a worker asked to exit, before SIGKILL */
#define LAUNCH_RETRY_NS 10000000L        /* a replacement that failed to start */
#define LAUNCH_TRIES 20                  /* ... that many times fails the chunk */
#define REPOST_TRIES 3                   /* a command its worker died before taking */
#define SEG_ALIGN 64                     /* where a segment's outputs start */
#define SLOTS 4                          /* segments a worker keeps mapped */
#define SPARE_MAX ((size_t)128 << 20)    /* the largest segment kept for reuse */
#define ARG_MAGIC 0x63746870u            /* "cthp": a worker's start arguments */
#define BATCH_MAX 64                     /* buffer tasks in one command */
#define BATCH_IN_MAX (INLINE_MAX / 2)    /* their inputs' bytes, at most */
#define BATCH_BUDGET_NS 50000            /* the work a batch is sized to */

enum { OP_RECORDS = 1, OP_BUFFER = 2, OP_EXIT = 3, OP_BATCH = 4 };
enum { CMD_NEW_FN = 1, CMD_IN_SEG = 4 };
#define CMD_PUT_SHIFT 8 /* flags >> CMD_PUT_SHIFT: the segments sent with a command (put) */
enum { ST_OK = 1, ST_TASK = 2, ST_ERROR = 3 };
enum { BUF_INLINE = 1, BUF_FD = 2 };

/* A buffer task of a batch: its input (the proxy's), its outcome (the
 * worker's, written before it bumps progress past it). */
struct batch_item {
    uint64_t in_off, in_len;
    uint32_t status; /* ST_OK, ST_TASK (value: the task's), ST_ERROR (value: a code) */
    int32_t value;
    uint32_t buf_where; /* ST_OK: BUF_INLINE (at buf_off in data) or BUF_FD */
    uint64_t buf_off, buf_len;
};

/* The control block (see the top). The proxy writes the command fields,
 * then req; the worker writes the outcome fields, then ack. */
struct ctl {
    /* a cache line each: the proxy's words, the worker's, and progress,
     * stored per item while the proxy polls ack */
    _Alignas(64) _Atomic uint32_t req;
    _Atomic uint32_t req_sleep;
    _Alignas(64) _Atomic uint32_t ack;
    _Atomic uint32_t ack_sleep;
    _Alignas(64) _Atomic uint32_t taken; /* the command the worker has picked up */
    _Atomic uint64_t progress;           /* items of the command finished (the worker's) */
    /* the command, a line */
    _Alignas(64) uint32_t op;
    uint32_t flags;
    uint32_t in_slot, out_slot; /* records: the segments of the inputs and the outputs;
                                   a buffer task with CMD_IN_SEG: its input's */
    uint64_t lo, hi;
    uint64_t in_size, out_size; /* records: sizes; a buffer task: in_size, its length */
    uint64_t in_off;            /* records: where input 0 lies in its segment */
    uint64_t out_off;           /* records: where output 0 lies in its; a batch: see below */
    /* the outcome */
    uint32_t status;
    int32_t value; /* ST_TASK: the task's value; ST_ERROR: a code */
    uint32_t buf_where;
    uint64_t buf_len;
    uint64_t run_ns; /* the time its tasks ran (sizes the next batches) */
    /* OP_BATCH: nitems buffer tasks, their inputs in data, their results
     * in data from out_off on (or each in a memfd over the channel) */
    uint32_t nitems;
    struct batch_item items[BATCH_MAX];
    struct cth__funcref fn; /* with CMD_NEW_FN */
    char data[INLINE_MAX];
    /* the segments sent with the command over the channel, in this order
     * (flags >> CMD_PUT_SHIFT of them), out of the hot lines */
    struct {
        uint64_t id, size;
        uint32_t slot; /* where the worker keeps it (unmapping what was there) */
    } put[2];
};

/* A segment: shared memory for a job's data. */
struct segment {
    uint64_t id; /* unique in the process; 0: none */
    int fd;
    char *map; /* the parent's mapping */
    size_t size;
};

/* Where one side of a record job (its inputs, or its outputs) lies: in its
 * segment of copies (copied), or in place in a shared allocation. */
struct side {
    uint64_t id; /* the segment's */
    int fd;
    size_t size;
    char *map; /* the parent's mapping */
    size_t off;
    bool copied;
};

/* A record or buffer job's process side (job->proc). */
struct proc_job {
    struct cth__proc_pool *pp;
    const void *fn;     /* its function, named (funcref) when sent */
    struct segment seg; /* its copies: fd -1 when the data fits inline or is in place */
    pid_t owner;        /* the process that prepared it (a fork child must not unmap) */
    size_t small_len;
    /* a buffer task's input up to INLINE_MAX; a record job's two sides
     * (job_sides). Not members: a buffer job stays small, within the
     * allocator's cheap sizes (its proxy thread frees it) */
    _Alignas(struct side) char tail[];
};

/* A record job's inputs' side; its outputs' is the next. */
static struct side *job_sides(struct proc_job *pj)
{
    return (struct side *)(void *)pj->tail;
}

/* A side of a record job in place: at p, inside the shared allocation r. */
static struct side side_in_place(const struct cth__region *r, const char *p)
{
    return (struct side){r->id, r->fd, r->mapped, r->base, (size_t)(p - r->base), false};
}

/* A side of a job in its segment of copies, from off on. */
static struct side side_copied(const struct segment *seg, size_t off)
{
    return (struct side){seg->id, seg->fd, seg->size, seg->map, off, true};
}

/* Who uses a proxy's worker (struct proxy's `owner`): nobody, its proxy
 * thread, or a caller of a synchronous call (run_now), with its proxy
 * thread waiting for it to finish or not. */
enum { OWN_IDLE, OWN_PROXY, OWN_CALLER, OWN_CALLER_AWAITED };

/* A proxy thread's state. Everything but link, owner and live belongs to
 * whoever holds `owner` (OWN_PROXY or OWN_CALLER). */
struct proxy {
    struct cth__list_node link; /* the pool's proxies (registry lock) */
    struct cth__proc_pool *pp;
    _Atomic uint32_t owner; /* OWN_*: taken by CAS, the proxy thread waits on it */
    bool stopping;          /* its thread is exiting: lent no more (registry lock) */
    bool has_worker;        /* launched and not reaped (the proxy's own view) */
    bool live;              /* the same, read by terminate (registry lock) */
    struct cth__proc proc;
    int ctl_fd;
    struct ctl *ctl;
    int dead_chan;        /* a reaped worker's channel (a copy), kept with its block; or -1 */
    uint32_t seq;         /* the last command posted */
    uint64_t held[SLOTS]; /* the segments the worker holds, by slot (0: none), */
    uint64_t used[SLOTS]; /* and when each was last used (a count of commands) */
    uint64_t uses;
    const void *fn;          /* the function the worker has, or NULL */
    int spin;                /* next_spin */
    const void *rate_fn;     /* the buffer task last timed, */
    uint64_t task_ns;        /* and how long one ran (its worker's word: sizes batches only) */
    uint64_t final_progress; /* a reaped worker's progress counter, its last word */
    bool final_taken;        /* and whether it had taken the last command */
};

struct cth__proc_pool {
    pid_t owner;
    cth_start_method_t method;
    void *arg; /* the workers' start arguments: struct worker_arg + initarg */
    size_t arg_size;
    pthread_mutex_t lock; /* the registry: proxies, and each one's `live`; spare */
    struct cth__list proxies;
    bool direct;          /* synchronous calls may run on an idle worker (no maxtasksperchild) */
    struct segment spare; /* the largest segment released, kept for the next job */
    _Atomic uint32_t starting; /* initial proxies not yet started */
    _Atomic int start_err;
    _Atomic bool terminating;
    bool forked; /* in a fork child of the program that created it (lock) */
    _Atomic int64_t terminate_at;
};

/* The start arguments of a worker, followed by initarg_size bytes. */
struct worker_arg {
    uint32_t magic;
    uint32_t has_init;
    uint64_t initarg_size;
    struct cth__funcref init;
};

static _Thread_local struct proxy *tls_proxy;

static void proxy_stop(void);
static void proxy_drop_block(struct proxy *px);
static int take_result(struct proxy *px, struct cth_result *job, int chan, uint32_t where,
                       uint64_t off, uint64_t buf_len);
static void job_release(struct cth_result *job);

/* ---- descriptors over the channel -------------------------------------------------- */

/* A descriptor alone: one byte with it. */
static int send_fd(int chan, int fd)
{
    char byte = 0;
    return cth__chan_send(chan, &byte, 1, fd);
}

/* Receive a descriptor sent by send_fd (close-on-exec); -1 when none came
 * or the message was malformed. */
static int recv_fd(int chan, int flags)
{
    char byte;
    int fd;
    return cth__chan_recv(chan, &byte, 1, &fd, flags) == 1 ? fd : -1;
}

/* The length of a received memfd, or -1. */
static int64_t fd_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    return (int64_t)st.st_size;
}

/* ---- the worker process ---------------------------------------------------------------- */

struct worker {
    int chan;
    struct ctl *ctl;
    uint32_t seen; /* the last command taken */
    int spin;      /* next_spin */
    void *fn;      /* the resolved function */
    struct {
        char *map; /* NULL: empty */
        size_t size;
    } slot[SLOTS]; /* the segments it keeps mapped */
};

/* How long to spin before sleeping: SPIN after a wait that spinning
 * ended, SPIN_SHORT after one that had to sleep (a proxy between the
 * chunks of a map, or idle: no core kept from the others for nothing). */
static int next_spin(bool ended_spinning)
{
    return ended_spinning ? SPIN : SPIN_SHORT;
}

static uint32_t worker_wait_command(struct worker *w)
{
    struct ctl *c = w->ctl;
    for (int i = 0; i < w->spin; i++) {
        uint32_t r = atomic_load_explicit(&c->req, memory_order_acquire);
        if (r != w->seen) {
            w->spin = next_spin(true);
            return r;
        }
        cth__cpu_relax();
    }
    w->spin = next_spin(false);
    for (;;) {
        atomic_store(&c->req_sleep, 1);
        uint32_t r = atomic_load(&c->req);
        if (r != w->seen) {
            atomic_store_explicit(&c->req_sleep, 0, memory_order_relaxed);
            return r;
        }
        cth__os_futex_wait_shared(&c->req, r, CTH__NO_DEADLINE);
        atomic_store_explicit(&c->req_sleep, 0, memory_order_relaxed);
    }
}

static void worker_ack(struct worker *w, uint32_t status, int32_t value)
{
    struct ctl *c = w->ctl;
    c->status = status;
    c->value = value;
    atomic_store(&c->ack, w->seen);
    if (atomic_load(&c->ack_sleep))
        cth__os_futex_wake_shared(&c->ack, 1);
}

/* One more item done: the counter plus one (what a task scribbled there
 * stays garbage), by a load and a store, not a locked instruction per
 * item: the worker is its only writer. */
static void worker_step(struct ctl *c)
{
    uint64_t p = atomic_load_explicit(&c->progress, memory_order_relaxed);
    atomic_store_explicit(&c->progress, p + 1, memory_order_release);
}

/* Take the segments the proxy sent with this command, each into its slot
 * (what was there is unmapped). Every descriptor sent is taken off the
 * channel, also after a failure: one left there would be taken by the
 * next command as its own segment, and its records read and written in
 * the wrong memory. Returns 0 or a code. */
static int worker_take_segments(struct worker *w)
{
    struct ctl *c = w->ctl;
    uint32_t n = c->flags >> CMD_PUT_SHIFT;
    if (n > 2)
        return CTH_EPROTO; /* the proxy replaces the worker, channel and all */
    int err = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = c->put[i].slot;
        uint64_t want = c->put[i].size;
        int fd = recv_fd(w->chan, 0);
        if (fd < 0)
            return CTH_EPROTO;
        int64_t size = fd_size(fd);
        bool fits = k < SLOTS && size >= 0 && want != 0 && (uint64_t)size >= want &&
                    want <= SIZE_MAX / 2;
        if (!err && !fits)
            err = CTH_EPROTO;
        if (!err) { /* after a failure, each is only taken off the channel */
            if (w->slot[k].map)
                cth__os_shm_unmap(w->slot[k].map, w->slot[k].size);
            if (!(w->slot[k].map = cth__os_shm_map(fd, (size_t)want, true)))
                err = CTH_ENOMEM;
            w->slot[k].size = (size_t)want;
        }
        close(fd);
    }
    return err;
}

/* The base of the segment in slot k, and in *size its length; NULL when
 * there is none. */
static char *worker_slot(const struct worker *w, uint32_t k, uint64_t *size)
{
    if (k >= SLOTS || !w->slot[k].map)
        return NULL;
    *size = w->slot[k].size;
    return w->slot[k].map;
}

/* Whether records [0, hi) of size bytes from off on lie inside len bytes. */
static bool records_fit(uint64_t off, uint64_t hi, uint64_t size, uint64_t len)
{
    return off <= len && hi <= (len - off) / size;
}

/* Run n records from the addresses in and out on, stepping by their sizes,
 * counting each in the block: the first failing task's value, or 0. Kept
 * out of the worker's main loop (noinline) so that its few variables stay
 * in registers: it is the hot loop of a map. */
static __attribute__((noinline)) int run_record_items(cth_pool_record_fn fn, uintptr_t in,
                                                      size_t in_size, uintptr_t out,
                                                      size_t out_size, uint64_t n, struct ctl *c)
{
    for (; n; n--) {
        int r = fn((const void *)in, (void *)out);
        if (r != 0)
            return r;
        worker_step(c);
        in += in_size;
        out += out_size;
    }
    return 0;
}

static void worker_run_records(struct worker *w)
{
    struct ctl *c = w->ctl;
    cth_pool_record_fn fn;
    memcpy(&fn, &w->fn, sizeof fn);
    uint64_t lo = c->lo, hi = c->hi, in_size = c->in_size, out_size = c->out_size;
    uint64_t in_off = c->in_off, out_off = c->out_off, in_len = 0, out_len = 0;
    char *in_seg = in_size ? worker_slot(w, c->in_slot, &in_len) : NULL;
    char *out_seg = out_size ? worker_slot(w, c->out_slot, &out_len) : NULL;
    /* the proxy is trusted, but a slip must not become a stray write */
    if (lo > hi || (in_size && (!in_seg || !records_fit(in_off, hi, in_size, in_len))) ||
        (out_size && (!out_seg || !records_fit(out_off, hi, out_size, out_len)))) {
        worker_ack(w, ST_ERROR, CTH_EPROTO);
        return;
    }
    /* a record of size 0 is NULL: its address stays 0 */
    uintptr_t in = in_size ? (uintptr_t)in_seg + in_off + lo * in_size : 0;
    uintptr_t out = out_size ? (uintptr_t)out_seg + out_off + lo * out_size : 0;
    int r = run_record_items(fn, in, in_size, out, out_size, hi - lo, c);
    worker_ack(w, r ? ST_TASK : ST_OK, r);
}

/* Send len bytes of buf to the proxy in a new memfd, over the channel.
 * Returns 0 or a code. */
static int worker_send_memfd(struct worker *w, const void *buf, size_t len)
{
    int fd;
    int err = cth__os_shm_create(len, &fd);
    if (err)
        return err;
    char *map = cth__os_shm_map(fd, len, true);
    if (!map) {
        close(fd);
        return CTH_ENOMEM;
    }
    memcpy(map, buf, len);
    cth__os_shm_unmap(map, len);
    err = send_fd(w->chan, fd) == 0 ? 0 : CTH_EPROTO;
    close(fd);
    return err;
}

/* Hand a buffer task's result to the proxy: inline, or in a memfd sent
 * over the channel. Returns 0 or a code. */
static int worker_return_buffer(struct worker *w, const void *buf, size_t len)
{
    struct ctl *c = w->ctl;
    c->buf_len = len;
    if (len <= INLINE_MAX) {
        if (len)
            memcpy(c->data, buf, len);
        c->buf_where = BUF_INLINE;
        return 0;
    }
    c->buf_where = BUF_FD;
    return worker_send_memfd(w, buf, len);
}

static void worker_run_buffer(struct worker *w)
{
    struct ctl *c = w->ctl;
    cth_pool_buffer_fn fn;
    memcpy(&fn, &w->fn, sizeof fn);
    size_t in_size = (size_t)c->in_size;
    const void *in;
    if (c->flags & CMD_IN_SEG) {
        uint64_t len = 0;
        in = worker_slot(w, c->in_slot, &len);
        if (!in || c->in_size > len) {
            worker_ack(w, ST_ERROR, CTH_EPROTO);
            return;
        }
    } else {
        if (c->in_size > INLINE_MAX) {
            worker_ack(w, ST_ERROR, CTH_EPROTO);
            return;
        }
        in = in_size ? c->data : NULL;
    }
    void *out = NULL;
    size_t out_size = 0;
    int64_t start = cth__now_ns();
    int r = fn(in, in_size, &out, &out_size);
    c->run_ns = (uint64_t)(cth__now_ns() - start);
    if (r != 0) {
        free(out);
        worker_ack(w, ST_TASK, r);
        return;
    }
    if (!out) /* as on threads: no buffer is an empty one */
        out_size = 0;
    int err = worker_return_buffer(w, out, out_size);
    free(out);
    if (err) {
        worker_ack(w, ST_ERROR, err);
        return;
    }
    atomic_store_explicit(&c->progress, 1, memory_order_release);
    worker_ack(w, ST_OK, 0);
}

/* Place a batch task's result: in data at *room (moved past it) if it fits
 * there, else in a memfd sent over the channel. Returns 0 or a code. */
static int worker_place_result(struct worker *w, struct batch_item *it, const void *buf, size_t len,
                               uint64_t *room)
{
    struct ctl *c = w->ctl;
    it->buf_len = len;
    if (len <= INLINE_MAX - *room) {
        if (len)
            memcpy(c->data + *room, buf, len);
        it->buf_where = BUF_INLINE;
        it->buf_off = *room;
        *room += (len + 7) & ~(uint64_t)7;
        if (*room > INLINE_MAX)
            *room = INLINE_MAX;
        return 0;
    }
    it->buf_where = BUF_FD;
    return worker_send_memfd(w, buf, len);
}

/* A batch: each task runs whatever the others did (they are separate
 * tasks), its outcome in its item; progress counts the tasks done. */
static void worker_run_batch(struct worker *w)
{
    struct ctl *c = w->ctl;
    cth_pool_buffer_fn fn;
    memcpy(&fn, &w->fn, sizeof fn);
    uint32_t n = c->nitems;
    uint64_t room = c->out_off;
    if (n > BATCH_MAX || room > INLINE_MAX) {
        worker_ack(w, ST_ERROR, CTH_EPROTO);
        return;
    }
    int64_t start = cth__now_ns();
    for (uint32_t i = 0; i < n; i++) {
        struct batch_item *it = &c->items[i];
        uint64_t off = it->in_off, len = it->in_len;
        if (off > INLINE_MAX || len > INLINE_MAX - off) {
            it->status = ST_ERROR;
            it->value = CTH_EPROTO;
        } else {
            void *out = NULL;
            size_t out_size = 0;
            int r = fn(len ? c->data + off : NULL, (size_t)len, &out, &out_size);
            int err = r ? 0 : worker_place_result(w, it, out, out ? out_size : 0, &room);
            free(out);
            it->status = r ? ST_TASK : err ? ST_ERROR : ST_OK;
            it->value = r ? r : err;
        }
        worker_step(c);
    }
    c->run_ns = (uint64_t)(cth__now_ns() - start);
    worker_ack(w, ST_OK, 0);
}

/* The worker process's main: arg is a struct worker_arg and the initarg
 * bytes; the control block comes over chan. Runs commands until told to
 * exit (status 0); 2 when its start arguments or its block are unusable. */
static int worker_main(const void *arg, size_t arg_size, int chan)
{
    const struct worker_arg *wa = arg;
    if (arg_size < sizeof *wa || wa->magic != ARG_MAGIC ||
        wa->initarg_size != arg_size - sizeof *wa)
        return 2;
    /* a proxy thread's signal mask came with a fork; terminate's SIGTERM
     * must end the worker */
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    struct worker w = {.chan = chan, .spin = SPIN};
    int fd = recv_fd(chan, 0);
    if (fd < 0)
        return 2;
    int64_t size = fd_size(fd);
    if (size < (int64_t)sizeof(struct ctl))
        return 2;
    w.ctl = cth__os_shm_map(fd, sizeof(struct ctl), true);
    close(fd);
    if (!w.ctl)
        return 2;
    if (wa->has_init) {
        void *init;
        if (cth__funcref_resolve(&wa->init, &init) != 0)
            return 2;
        void *copy = NULL;
        if (wa->initarg_size) {
            copy = malloc((size_t)wa->initarg_size);
            if (!copy)
                return 2;
            memcpy(copy, wa + 1, (size_t)wa->initarg_size);
        }
        cth_pool_initializer_fn init_fn;
        memcpy(&init_fn, &init, sizeof init_fn);
        init_fn(copy);
    }
    for (;;) {
        w.seen = worker_wait_command(&w);
        struct ctl *c = w.ctl;
        atomic_store_explicit(&c->progress, 0, memory_order_relaxed);
        atomic_store_explicit(&c->taken, w.seen, memory_order_release);
        uint32_t op = c->op, flags = c->flags;
        if (op == OP_EXIT)
            return 0;
        /* the segments first: a function that does not resolve must not
         * leave their descriptors in the channel either */
        if (flags >> CMD_PUT_SHIFT) {
            int err = worker_take_segments(&w);
            if (err) {
                worker_ack(&w, ST_ERROR, err);
                continue;
            }
        }
        if (flags & CMD_NEW_FN) {
            int err = cth__funcref_resolve(&c->fn, &w.fn);
            if (err) {
                w.fn = NULL;
                worker_ack(&w, ST_ERROR, err);
                continue;
            }
        }
        if (w.fn && op == OP_RECORDS)
            worker_run_records(&w);
        else if (w.fn && op == OP_BUFFER)
            worker_run_buffer(&w);
        else if (w.fn && op == OP_BATCH)
            worker_run_batch(&w);
        else
            worker_ack(&w, ST_ERROR, CTH_EPROTO);
    }
}

/* ---- the proxy: its worker ------------------------------------------------------------- */

static bool terminating(const struct cth__proc_pool *pp)
{
    return atomic_load_explicit(&pp->terminating, memory_order_acquire);
}

/* Start a worker for the proxy, with a new control block. Returns 0 or a
 * code of cth__proc_launch (CTH_EAGAIN, CTH_ENOMEM, CTH_ENOENT). */
static int proxy_launch(struct proxy *px)
{
    struct cth__proc_pool *pp = px->pp;
    proxy_drop_block(px);
    int fd;
    int err = cth__os_shm_create(sizeof(struct ctl), &fd);
    if (err)
        return err;
    struct ctl *ctl = cth__os_shm_map(fd, sizeof(struct ctl), true);
    if (!ctl) {
        close(fd);
        return CTH_ENOMEM;
    }
    struct cth__proc proc;
    cth__forking_worker = true; /* a fork() here is no fork of the program's own */
    err = cth__proc_launch(pp->method, worker_main, pp->arg, pp->arg_size, &proc);
    cth__forking_worker = false;
    if (err == 0 && send_fd(proc.chan, fd) != 0) {
        /* it died at once: reap it; the next launch tries again */
        cth__proc_kill(&proc, SIGKILL);
        cth__proc_wait(&proc, CTH__NO_DEADLINE);
        cth__proc_release(&proc);
        err = CTH_EAGAIN;
    }
    if (err) {
        cth__os_shm_unmap(ctl, sizeof(struct ctl));
        close(fd);
        return err;
    }
    px->ctl_fd = fd;
    px->ctl = ctl;
    px->seq = 0;
    memset(px->held, 0, sizeof px->held);
    memset(px->used, 0, sizeof px->used);
    px->fn = NULL;
    px->has_worker = true;
    pthread_mutex_lock(&pp->lock);
    px->proc = proc;
    px->live = true;
    if (terminating(pp)) /* terminate's signals went out before this worker was seen */
        cth__proc_kill(&px->proc, SIGTERM);
    pthread_mutex_unlock(&pp->lock);
    return 0;
}

/* Reap the worker (it has ended, or is ending: wait for it, SIGKILL at
 * kill_at), and keep what it reported last in px->final. Its block stays
 * mapped until proxy_drop_block (a batch reads the results its worker
 * finished before dying). Returns its wait status. */
static int proxy_reap(struct proxy *px, int64_t kill_at)
{
    struct cth__proc_pool *pp = px->pp;
    pthread_mutex_lock(&pp->lock);
    px->live = false; /* terminate signals it no more: it is about to be reaped */
    pthread_mutex_unlock(&pp->lock);
    if (cth__proc_wait(&px->proc, kill_at) != 0) {
        cth__proc_kill(&px->proc, SIGKILL);
        cth__proc_wait(&px->proc, CTH__NO_DEADLINE);
    }
    int status = px->proc.status;
    /* what it sent before dying is still there to read */
    px->dead_chan = fcntl(px->proc.chan, F_DUPFD_CLOEXEC, 0);
    cth__proc_release(&px->proc);
    px->final_progress = atomic_load_explicit(&px->ctl->progress, memory_order_relaxed);
    px->final_taken = atomic_load_explicit(&px->ctl->taken, memory_order_relaxed) == px->seq;
    px->has_worker = false;
    return status;
}

/* Drop a reaped worker's block, if one is left. */
static void proxy_drop_block(struct proxy *px)
{
    if (!px->ctl)
        return;
    if (px->dead_chan >= 0)
        close(px->dead_chan);
    px->dead_chan = -1;
    cth__os_shm_unmap(px->ctl, sizeof(struct ctl));
    close(px->ctl_fd);
    px->ctl = NULL;
    px->ctl_fd = -1;
}

/* Ensure the proxy has a worker: launch one (a few tries: a replacement may
 * fail while the system is out of processes). Returns 0, the last launch
 * error, or CTH_ECANCELED once the pool is terminated. */
static int proxy_ensure(struct proxy *px)
{
    int err = 0;
    for (int i = 0; !px->has_worker && i < LAUNCH_TRIES && !terminating(px->pp); i++) {
        if (i) {
            struct timespec ts = {0, LAUNCH_RETRY_NS};
            nanosleep(&ts, NULL);
        }
        err = proxy_launch(px);
    }
    if (px->has_worker)
        return 0;
    return err ? err : CTH_ECANCELED; /* no launch tried: terminated */
}

/* Post the command the caller wrote into the block. */
static void proxy_post(struct proxy *px, uint32_t op)
{
    struct ctl *c = px->ctl;
    c->op = op;
    atomic_store(&c->req, ++px->seq);
    if (atomic_load(&c->req_sleep))
        cth__os_futex_wake_shared(&c->req, 1);
}

enum { WAIT_DONE, WAIT_DEAD, WAIT_UNTAKEN, WAIT_TIMEOUT, WAIT_CANCEL, WAIT_PROTO };

/* Wait for the worker to finish the command posted; timeout: seconds an
 * item may run (0: none). Returns WAIT_DONE; or the worker is reaped
 * (*status, and px->final_progress) and: WAIT_DEAD (it died in the
 * command), WAIT_UNTAKEN (it died before taking it), WAIT_TIMEOUT (an item
 * ran past the timeout: killed), WAIT_CANCEL (the pool was terminated:
 * stopped), WAIT_PROTO (its acknowledgement word holds garbage: killed). */
static int proxy_wait(struct proxy *px, double timeout, int *status)
{
    struct ctl *c = px->ctl;
    uint32_t seq = px->seq;
    for (int i = 0; i < px->spin; i++) {
        if (atomic_load_explicit(&c->ack, memory_order_acquire) == seq) {
            px->spin = next_spin(true);
            return WAIT_DONE;
        }
        cth__cpu_relax();
    }
    px->spin = next_spin(false);
    int64_t limit = timeout > 0 ? (int64_t)(timeout * 1e9) : 0;
    uint64_t last = atomic_load_explicit(&c->progress, memory_order_relaxed);
    int64_t moved_at = cth__now_ns();
    for (;;) {
        atomic_store(&c->ack_sleep, 1);
        uint32_t a = atomic_load(&c->ack);
        if (a != seq) {
            int64_t deadline = cth__now_ns() + SLICE_NS;
            if (limit && moved_at + limit < deadline)
                deadline = moved_at + limit;
            cth__os_futex_wait_shared(&c->ack, a, deadline);
        }
        atomic_store_explicit(&c->ack_sleep, 0, memory_order_relaxed);
        a = atomic_load_explicit(&c->ack, memory_order_acquire);
        if (a == seq)
            return WAIT_DONE;
        if (a != seq - 1) { /* neither this command's nor the last: garbage */
            cth__proc_kill(&px->proc, SIGKILL);
            *status = proxy_reap(px, CTH__NO_DEADLINE);
            return WAIT_PROTO;
        }
        if (terminating(px->pp)) {
            *status = proxy_reap(px, atomic_load(&px->pp->terminate_at) + TERM_GRACE_NS);
            return px->final_taken ? WAIT_CANCEL : WAIT_UNTAKEN;
        }
        if (cth__proc_ended(&px->proc)) {
            if (atomic_load_explicit(&c->ack, memory_order_acquire) == seq)
                return WAIT_DONE; /* it finished, then died: the next command sees it */
            *status = proxy_reap(px, CTH__NO_DEADLINE);
            return px->final_taken ? WAIT_DEAD : WAIT_UNTAKEN;
        }
        int64_t now = cth__now_ns();
        uint64_t p = atomic_load_explicit(&c->progress, memory_order_relaxed);
        if (p != last) {
            last = p;
            moved_at = now;
        } else if (limit && now - moved_at >= limit) {
            cth__proc_kill(&px->proc, SIGKILL);
            *status = proxy_reap(px, CTH__NO_DEADLINE);
            return WAIT_TIMEOUT;
        }
    }
}

/* Stop the worker: ask it to exit, SIGKILL it if it has not within
 * EXIT_WAIT_NS (after terminate: at the end of its grace), reap it. */
static void proxy_stop_worker(struct proxy *px)
{
    if (!px->has_worker)
        return;
    int64_t kill_at;
    if (terminating(px->pp)) {
        kill_at = atomic_load(&px->pp->terminate_at) + TERM_GRACE_NS;
    } else {
        proxy_post(px, OP_EXIT);
        kill_at = cth__now_ns() + EXIT_WAIT_NS;
    }
    proxy_reap(px, kill_at);
}

/* ---- the proxy: running items ------------------------------------------------------------ */

/* The outcome of a command, as the proxy read it, once, from the block. */
struct outcome {
    uint32_t status;
    int32_t value;
    uint64_t progress;
    uint32_t buf_where;
    uint64_t buf_len;
};

static struct outcome read_outcome(struct ctl *c)
{
    const volatile struct ctl *v = c;
    return (struct outcome){
        .status = v->status,
        .value = v->value,
        .progress = atomic_load_explicit(&c->progress, memory_order_relaxed),
        .buf_where = v->buf_where,
        .buf_len = v->buf_len,
    };
}

/* A worker-side error code, from the few a worker may report: out of
 * memory, or of descriptors or shared memory for a large result (the task
 * ran; its result could not be handed back), or a function not found. */
static int worker_code(int32_t value)
{
    return value == CTH_ENOMEM || value == CTH_EAGAIN || value == CTH_ENOENT ? value : CTH_EPROTO;
}

enum { COMMAND_READY, COMMAND_NO_WORKER, COMMAND_NO_FUNCTION };

/* Keep how long each of the n tasks of job's function the worker just ran
 * took (batch_room sizes batches by it). */
static void note_rate(struct proxy *px, struct cth_result *job, size_t n)
{
    struct proc_job *pj = job->proc;
    const volatile struct ctl *v = px->ctl;
    uint64_t ns = v->run_ns / n;
    px->rate_fn = pj->fn;
    px->task_ns = ns ? ns : 1;
}

/* The slot of px's worker that holds side's segment: the one it is in, or
 * the one the command sends it into (an empty slot, else the least
 * recently used one other than keep: a slot the command uses too). Returns
 * the slot, or -1 if the descriptor could not be sent (the worker is
 * gone). */
static int proxy_place(struct proxy *px, const struct side *side, int keep)
{
    struct ctl *c = px->ctl;
    int k = -1;
    for (int i = 0; i < SLOTS && k < 0; i++)
        if (px->held[i] == side->id)
            k = i;
    if (k < 0) {
        for (int i = 0; i < SLOTS; i++) /* an empty slot was used at 0: the least recently */
            if (i != keep && (k < 0 || px->used[i] < px->used[k]))
                k = i;
        if (send_fd(px->proc.chan, side->fd) != 0)
            return -1;
        px->held[k] = side->id;
        uint32_t n = c->flags >> CMD_PUT_SHIFT;
        c->put[n].id = side->id;
        c->put[n].size = side->size;
        c->put[n].slot = (uint32_t)k;
        c->flags += 1u << CMD_PUT_SHIFT;
    }
    px->used[k] = ++px->uses;
    return k;
}

/* Write the command for items [lo, hi) of job into the block (the function
 * if it changed, the segments the worker lacks). Returns COMMAND_READY;
 * COMMAND_NO_WORKER if a segment could not be sent (the worker is gone);
 * COMMAND_NO_FUNCTION if the function's object was unloaded since the job
 * was submitted. */
static int proxy_command(struct proxy *px, struct cth_result *job, size_t lo, size_t hi)
{
    struct proc_job *pj = job->proc;
    struct ctl *c = px->ctl;
    c->flags = 0;
    if (px->fn != pj->fn) {
        if (cth__funcref_make(pj->fn, &c->fn) != 0)
            return COMMAND_NO_FUNCTION;
        px->fn = pj->fn;
        c->flags |= CMD_NEW_FN;
    }
    c->lo = lo;
    c->hi = hi;
    c->in_size = job->in_size;
    if (job->kind == JOB_BUFFER) {
        if (pj->seg.fd >= 0) {
            struct side in = side_copied(&pj->seg, 0);
            int k = proxy_place(px, &in, -1);
            if (k < 0)
                return COMMAND_NO_WORKER;
            c->in_slot = (uint32_t)k;
            c->flags |= CMD_IN_SEG;
        } else if (pj->small_len) {
            memcpy(c->data, pj->tail, pj->small_len);
        }
        return COMMAND_READY;
    }
    const struct side *sides = job_sides(pj);
    int in = -1, out = -1;
    if (job->in_size && (in = proxy_place(px, &sides[0], -1)) < 0)
        return COMMAND_NO_WORKER;
    if (job->out_size && (out = proxy_place(px, &sides[1], in)) < 0)
        return COMMAND_NO_WORKER;
    /* this chunk's records, copied by its proxy (unless they are in
     * place): the chunks' copies run in parallel, each just before its
     * worker reads it */
    if (job->in_size && sides[0].copied)
        memcpy(sides[0].map + sides[0].off + lo * job->in_size, job->in + lo * job->in_size,
               (hi - lo) * job->in_size);
    c->in_slot = (uint32_t)in;
    c->out_slot = (uint32_t)out;
    c->in_off = sides[0].off;
    c->out_off = sides[1].off;
    c->out_size = job->out_size;
    return COMMAND_READY;
}

/* Take a buffer task's result, from the block or the channel, into a
 * malloc'd buffer of the job. Returns 0, CTH_EPROTO or CTH_ENOMEM. */
static int take_buffer(struct proxy *px, struct cth_result *job, const struct outcome *o)
{
    if (o->buf_where == BUF_FD && o->buf_len <= INLINE_MAX)
        return CTH_EPROTO; /* it would have crossed inline */
    return take_result(px, job, px->proc.chan, o->buf_where, 0, o->buf_len);
}

/* Take a result of len bytes, at off in the block's data (BUF_INLINE) or
 * in a memfd received over chan (BUF_FD), into a malloc'd buffer of the
 * job. Returns 0, CTH_EPROTO or CTH_ENOMEM. */
static int take_result(struct proxy *px, struct cth_result *job, int chan, uint32_t where,
                       uint64_t off, uint64_t buf_len)
{
    size_t len = (size_t)buf_len;
    void *buf = NULL;
    if (where == BUF_INLINE) {
        if (off > INLINE_MAX || buf_len > INLINE_MAX - off)
            return CTH_EPROTO;
        if (len) {
            buf = malloc(len);
            if (!buf)
                return CTH_ENOMEM;
            memcpy(buf, px->ctl->data + off, len);
        }
        job->buf = buf;
        job->buf_size = len;
        return 0;
    }
    if (where != BUF_FD || buf_len > SIZE_MAX / 2 || chan < 0)
        return CTH_EPROTO;
    int fd = recv_fd(chan, MSG_DONTWAIT);
    if (fd < 0)
        return CTH_EPROTO;
    int64_t size = fd_size(fd);
    int err = 0;
    if (size < 0 || (uint64_t)size < buf_len || len == 0) {
        err = CTH_EPROTO;
    } else {
        char *map = cth__os_shm_map(fd, len, false);
        buf = map ? malloc(len) : NULL;
        if (!map)
            err = CTH_EPROTO;
        else if (!buf)
            err = CTH_ENOMEM;
        else
            memcpy(buf, map, len);
        if (map)
            cth__os_shm_unmap(map, len);
    }
    close(fd);
    if (!err) {
        job->buf = buf;
        job->buf_size = len;
    }
    return err;
}

/* Copy the outputs of items [lo, lo + k) from the segment into job->out
 * (unless they were written in place). */
static void copy_outputs(struct cth_result *job, size_t lo, size_t k)
{
    if (!k || job->kind == JOB_BUFFER || !job->out_size || !job->out)
        return;
    const struct side *out = &job_sides(job->proc)[1];
    if (out->copied)
        memcpy(job->out + lo * job->out_size, out->map + out->off + lo * job->out_size,
               k * job->out_size);
}

/* A worker that broke the protocol is not trusted with another command:
 * killed and reaped (a new one is launched for the next chunk). */
static void proto_fail(struct proxy *px, struct cth_result *job)
{
    cth__job_fail(job, CTH_EPROTO, 0);
    if (px->has_worker) {
        cth__proc_kill(&px->proc, SIGKILL);
        proxy_reap(px, CTH__NO_DEADLINE);
    }
}

/* Record the outcome of a command over items [lo, lo + n): the results of
 * the items finished, the failure of the one that stopped it. */
static void finish_items(struct proxy *px, struct cth_result *job, size_t lo, size_t n, int w,
                         int status, const struct outcome *o)
{
    if (o->progress > n) {
        proto_fail(px, job);
        return;
    }
    size_t k = (size_t)o->progress;
    copy_outputs(job, lo, k);
    switch (w) {
    case WAIT_DONE:
        if (o->status == ST_OK && k == n) {
            int err = job->kind == JOB_BUFFER ? take_buffer(px, job, o) : 0;
            if (err == CTH_EPROTO)
                proto_fail(px, job);
            else if (err)
                cth__job_fail(job, err, 0);
        } else if (o->status == ST_TASK && k < n && o->value != 0) {
            cth__job_fail(job, CTH_ETASK, o->value);
        } else if (o->status == ST_ERROR && k < n && worker_code(o->value) != CTH_EPROTO) {
            cth__job_fail(job, worker_code(o->value), 0);
        } else {
            proto_fail(px, job);
        }
        break;
    case WAIT_DEAD:
        if (k < n)
            cth__job_fail(job, CTH_EWORKER, status);
        break;
    case WAIT_TIMEOUT:
        if (k < n)
            cth__job_fail(job, CTH_ETIMEDOUT, 0);
        break;
    case WAIT_CANCEL:
        if (k < n)
            cth__job_fail(job, CTH_ECANCELED, 0);
        break;
    case WAIT_PROTO: cth__job_fail(job, CTH_EPROTO, 0); break;
    default: /* WAIT_UNTAKEN, too many times */ cth__job_fail(job, CTH_EWORKER, status); break;
    }
}

/* Run items [lo, hi) of job on px's worker, recording their outcome. The
 * caller holds px (owner). borrowed: a caller of a synchronous call, who
 * never launches a worker (its thread is not the proxy's: the worker's
 * PR_SET_PDEATHSIG follows the thread that launched it): false when the
 * worker is gone before taking the command (nothing recorded; the job
 * goes to the queue instead). Otherwise true. */
static bool run_items(struct proxy *px, struct cth_result *job, size_t lo, size_t hi, bool borrowed)
{
    for (int tries = 0;; tries++) {
        int err = borrowed ? 0 : proxy_ensure(px);
        if (err) {
            /* no worker to run it: its first item fails, with the launch
             * error where a wait status would be */
            cth__job_fail(job, err == CTH_ECANCELED ? CTH_ECANCELED : CTH_EWORKER, err);
            return true;
        }
        int status = 0, w;
        struct outcome o = {0};
        int command = proxy_command(px, job, lo, hi);
        if (command == COMMAND_NO_FUNCTION) {
            cth__job_fail(job, CTH_ENOENT, 0);
            return true;
        }
        if (command == COMMAND_NO_WORKER) {
            cth__proc_kill(&px->proc, SIGKILL);
            status = proxy_reap(px, CTH__NO_DEADLINE);
            w = WAIT_UNTAKEN;
        } else {
            proxy_post(px, job->kind == JOB_BUFFER ? OP_BUFFER : OP_RECORDS);
            w = proxy_wait(px, job->task_timeout, &status);
            if (w == WAIT_DONE && job->kind == JOB_BUFFER)
                note_rate(px, job, 1);
            if (w == WAIT_DONE)
                o = read_outcome(px->ctl);
            if (w == WAIT_DONE && o.status == ST_ERROR) {
                /* it may lack what the command sent: send them again */
                memset(px->held, 0, sizeof px->held);
                px->fn = NULL;
            } else if (w != WAIT_DONE)
                o.progress = w == WAIT_UNTAKEN ? 0 : px->final_progress;
        }
        if (w == WAIT_UNTAKEN && !terminating(px->pp)) {
            if (borrowed)
                return false;
            if (tries < REPOST_TRIES)
                continue; /* it never saw the command: a new worker runs it */
        }
        if (w == WAIT_UNTAKEN && terminating(px->pp))
            w = WAIT_CANCEL;
        finish_items(px, job, lo, hi - lo, w, status, &o);
        return true;
    }
}

/* ---- batches of buffer tasks -------------------------------------------------------------- */

/* How many lone buffer tasks to run in one batch with first: as many as
 * take about BATCH_BUDGET_NS by the last timing of its function (so a
 * batch of slow tasks does not keep them from an idle worker), 1 while it
 * is untimed or its input crosses in a memfd. */
static size_t batch_room(struct proxy *px, struct cth_result *first)
{
    struct proc_job *pj = first->proc;
    if (first->kind != JOB_BUFFER || pj->seg.fd >= 0 || pj->fn != px->rate_fn || !px->task_ns)
        return 1;
    uint64_t room = BATCH_BUDGET_NS / px->task_ns;
    return room < 1 ? 1 : room > BATCH_MAX ? BATCH_MAX : (size_t)room;
}

static size_t batch_in_size(const struct cth_result *job)
{
    return (job->in_size + 7) & ~(size_t)7;
}

/* Whether job may join batch[0..k): a buffer task of the same function
 * and timeout whose input crosses inline and fits beside theirs. */
static bool batch_fits(struct cth_result *const *batch, size_t k, struct cth_result *job)
{
    struct proc_job *pj = job->proc, *first = batch[0]->proc;
    if (job->kind != JOB_BUFFER || pj->seg.fd >= 0 || pj->fn != first->fn ||
        job->task_timeout != batch[0]->task_timeout || job->in_size > BATCH_IN_MAX)
        return false;
    size_t total = batch_in_size(job);
    for (size_t i = 0; i < k; i++)
        total += batch_in_size(batch[i]);
    return total <= BATCH_IN_MAX;
}

/* Write the command for the n buffer tasks at jobs into the block: their
 * inputs one after the other, room for results behind them. Returns
 * COMMAND_READY or COMMAND_NO_FUNCTION. */
static int batch_command(struct proxy *px, struct cth_result *const *jobs, size_t n)
{
    struct proc_job *first = jobs[0]->proc;
    struct ctl *c = px->ctl;
    c->flags = 0;
    if (px->fn != first->fn) {
        if (cth__funcref_make(first->fn, &c->fn) != 0)
            return COMMAND_NO_FUNCTION;
        px->fn = first->fn;
        c->flags |= CMD_NEW_FN;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct proc_job *pj = jobs[i]->proc;
        c->items[i].in_off = off;
        c->items[i].in_len = pj->small_len;
        if (pj->small_len)
            memcpy(c->data + off, pj->tail, pj->small_len);
        off += batch_in_size(jobs[i]);
    }
    c->nitems = (uint32_t)n;
    c->out_off = off;
    return COMMAND_READY;
}

/* Take the outcomes of the first k tasks of a batch from their items.
 * Returns k, or the index of the first item that breaks the protocol. */
static size_t batch_outcomes(struct proxy *px, struct cth_result *const *jobs, size_t k)
{
    int chan = px->has_worker ? px->proc.chan : px->dead_chan;
    for (size_t i = 0; i < k; i++) {
        const volatile struct batch_item *v = &px->ctl->items[i];
        uint32_t status = v->status, where = v->buf_where;
        int32_t value = v->value;
        uint64_t off = v->buf_off, len = v->buf_len;
        int err = 0;
        if (status == ST_OK)
            err = take_result(px, jobs[i], chan, where, off, len);
        else if (status == ST_TASK && value != 0)
            cth__job_fail(jobs[i], CTH_ETASK, value);
        else if (status == ST_ERROR)
            err = worker_code(value);
        else
            err = CTH_EPROTO;
        if (err == CTH_EPROTO)
            return i;
        if (err)
            cth__job_fail(jobs[i], err, 0);
    }
    return k;
}

/* Fail jobs [0, n) with code and value. */
static void fail_all(struct cth_result *const *jobs, size_t n, int code, int value)
{
    for (size_t i = 0; i < n; i++)
        cth__job_fail(jobs[i], code, value);
}

/* Run the k lone buffer tasks at jobs (batch_fits) as batches on px's
 * worker. Each is a task of its own: one failing does not stop the
 * others. A worker that dies (or is killed past the timeout) fails the
 * task it was running; those before it keep their results, those behind
 * it run on its replacement. After terminate, those not done are
 * cancelled; a worker that breaks the protocol fails the tasks from its
 * first bad report on with CTH_EPROTO (and is replaced). */
static void run_batch(struct proxy *px, struct cth_result *const *jobs, size_t k)
{
    int tries = 0;
    while (k > 1) {
        int err = proxy_ensure(px);
        if (err) {
            fail_all(jobs, k, err == CTH_ECANCELED ? CTH_ECANCELED : CTH_EWORKER, err);
            return;
        }
        if (batch_command(px, jobs, k) != COMMAND_READY) {
            fail_all(jobs, k, CTH_ENOENT, 0);
            return;
        }
        proxy_post(px, OP_BATCH);
        int status = 0;
        int w = proxy_wait(px, jobs[0]->task_timeout, &status);
        if (w == WAIT_UNTAKEN && !terminating(px->pp) && tries++ < REPOST_TRIES)
            continue; /* it never saw the command: a new worker runs it */
        uint64_t done = 0;
        if (w == WAIT_DONE) {
            struct outcome o = read_outcome(px->ctl);
            if (o.status == ST_ERROR && o.progress == 0 && worker_code(o.value) != CTH_EPROTO) {
                px->fn = NULL; /* it could not take the function (named again next time) */
                fail_all(jobs, k, worker_code(o.value), 0);
                return;
            }
            done = o.progress;
        } else if (w != WAIT_UNTAKEN && w != WAIT_PROTO)
            done = px->final_progress;
        size_t good = done <= k ? batch_outcomes(px, jobs, (size_t)done) : 0;
        if (done > k || good < done || w == WAIT_PROTO || (w == WAIT_DONE && done != k)) {
            fail_all(jobs + good, k - good, CTH_EPROTO, 0);
            if (px->has_worker) {
                cth__proc_kill(&px->proc, SIGKILL);
                proxy_reap(px, CTH__NO_DEADLINE);
            }
            return;
        }
        if (w == WAIT_DONE) {
            note_rate(px, jobs[0], k);
            return;
        }
        if (done == k)
            return; /* it ended after its last task, before saying so */
        if (w == WAIT_CANCEL || w == WAIT_UNTAKEN) {
            fail_all(jobs + done, k - done,
                     w == WAIT_CANCEL || terminating(px->pp) ? CTH_ECANCELED : CTH_EWORKER, status);
            return;
        }
        /* the task it was running fails; those behind it run on a new worker */
        cth__job_fail(jobs[done], w == WAIT_DEAD ? CTH_EWORKER : CTH_ETIMEDOUT,
                      w == WAIT_DEAD ? status : 0);
        jobs += done + 1;
        k -= done + 1;
        tries = 0;
    }
    if (k == 1)
        run_items(px, jobs[0], 0, 1, false);
}

/* ---- who holds a proxy ---------------------------------------------------------------- */

/* The proxy thread takes its proxy: at once, or from the caller running
 * a task on its worker, who hands it over when done (so a stream of
 * synchronous calls cannot keep it from its thread beyond one task). */
static void proxy_acquire(struct proxy *px)
{
    uint32_t o = atomic_load(&px->owner);
    for (;;) {
        if (o == OWN_PROXY) /* handed over */
            return;
        if (o == OWN_IDLE) {
            if (atomic_compare_exchange_weak(&px->owner, &o, OWN_PROXY))
                return;
            continue;
        }
        if (o == OWN_CALLER) {
            if (!atomic_compare_exchange_weak(&px->owner, &o, (uint32_t)OWN_CALLER_AWAITED))
                continue;
        }
        cth__os_futex_wait(&px->owner, OWN_CALLER_AWAITED, CTH__NO_DEADLINE);
        o = atomic_load(&px->owner);
    }
}

/* The proxy thread lets its proxy go (nobody waits for it: callers who
 * find it taken go elsewhere). */
static void proxy_release(struct proxy *px)
{
    atomic_store(&px->owner, OWN_IDLE);
}

/* A caller gives a borrowed proxy back: to its thread if that waits. */
static void proxy_return(struct proxy *px)
{
    uint32_t o = OWN_CALLER;
    if (!atomic_compare_exchange_strong(&px->owner, &o, OWN_IDLE)) {
        atomic_store(&px->owner, OWN_PROXY); /* o was OWN_CALLER_AWAITED */
        cth__os_futex_wake(&px->owner, 1);
    }
}

/* A proxy whose worker is idle, taken for the calling thread; NULL if none
 * is. */
static struct proxy *proxy_borrow(struct cth__proc_pool *pp)
{
    struct proxy *found = NULL;
    pthread_mutex_lock(&pp->lock);
    for (struct cth__list_node *n = pp->proxies.first; n && !found && !terminating(pp);
         n = n->next) {
        struct proxy *px = cth__list_entry(n, struct proxy, link);
        uint32_t idle = OWN_IDLE;
        if (px->stopping || !atomic_compare_exchange_strong(&px->owner, &idle, OWN_CALLER))
            continue;
        if (px->has_worker)
            found = px;
        else /* its replacement is its proxy thread's to launch */
            proxy_return(px);
    }
    pthread_mutex_unlock(&pp->lock);
    return found;
}

/* A synchronous call's lone task, run by the calling thread on an idle
 * worker: the hand-offs to a proxy thread and back (two wake-ups across
 * threads) are saved. False (the job untouched) when no worker is idle, or
 * the one taken died before taking it. */
static bool run_now(struct cth__proc_pool *pp, struct cth_result *job)
{
    if (!pp->direct || job->n != 1)
        return false;
    struct proxy *px = proxy_borrow(pp);
    if (!px)
        return false;
    bool ran = run_items(px, job, 0, 1, true);
    proxy_return(px);
    return ran;
}

/* ---- proxies: start and stop -------------------------------------------------------------- */

static bool proxy_start(struct cth__proc_pool *pp)
{
    struct proxy *px = cth__calloc(1, sizeof *px);
    int err = CTH_ENOMEM;
    if (px) {
        px->pp = pp;
        px->ctl_fd = -1;
        px->dead_chan = -1;
        px->spin = SPIN;
        atomic_init(&px->owner, OWN_PROXY); /* lent to callers once started */
        pthread_mutex_lock(&pp->lock);
        cth__list_push_back(&pp->proxies, &px->link);
        pthread_mutex_unlock(&pp->lock);
        err = proxy_launch(px);
    }
    /* the proxies cth_pool_create starts report to it; a replacement
     * (maxtasksperchild) that cannot launch yet tries again at its first
     * chunk */
    bool initial = atomic_load(&pp->starting) != 0;
    if (initial) {
        int zero = 0;
        if (err)
            atomic_compare_exchange_strong(&pp->start_err, &zero, err);
        if (atomic_fetch_sub(&pp->starting, 1) == 1)
            cth__os_futex_wake(&pp->starting, INT32_MAX);
    }
    if (!px)
        return false;
    tls_proxy = px;
    proxy_release(px); /* proxy_stop takes it back */
    if (err && initial) {
        proxy_stop();
        return false;
    }
    return true;
}

static void proxy_stop(void)
{
    struct proxy *px = tls_proxy;
    if (!px)
        return;
    tls_proxy = NULL;
    pthread_mutex_lock(&px->pp->lock);
    px->stopping = true; /* lent no more */
    pthread_mutex_unlock(&px->pp->lock);
    proxy_acquire(px);
    proxy_stop_worker(px);
    proxy_drop_block(px);
    pthread_mutex_lock(&px->pp->lock);
    cth__list_remove(&px->pp->proxies, &px->link);
    pthread_mutex_unlock(&px->pp->lock);
    cth__free(px);
}

/* ---- jobs ------------------------------------------------------------------------------------- */

/* Destroy a segment no job uses. mapped: in the process that made it (not
 * a fork child), which also discards its pages, so that workers still
 * mapping it keep none. */
static void segment_destroy(struct segment *seg, bool mapped)
{
    if (seg->map && mapped)
        cth__os_shm_unmap(seg->map, seg->size);
    if (seg->fd >= 0 && mapped)
        cth__os_shm_discard(seg->fd);
    if (seg->fd >= 0)
        close(seg->fd);
    seg->id = 0;
    seg->fd = -1;
    seg->map = NULL;
}

/* A segment of at least size bytes: the spare one if it is large enough
 * (its pages exist, and workers may still have it mapped), else a new one.
 * Returns 0 or CTH_ENOMEM / CTH_EAGAIN. */
static int segment_get(struct cth__proc_pool *pp, size_t size, struct segment *seg)
{
    pthread_mutex_lock(&pp->lock);
    bool reuse = pp->spare.id && pp->spare.size >= size;
    if (reuse) {
        *seg = pp->spare;
        pp->spare = (struct segment){0, -1, NULL, 0};
    }
    pthread_mutex_unlock(&pp->lock);
    if (reuse)
        return 0;
    *seg = (struct segment){cth__segment_id(), -1, NULL, size};
    int err = cth__os_shm_create(size, &seg->fd);
    if (err)
        return err;
    seg->map = cth__os_shm_map(seg->fd, size, true);
    if (!seg->map) {
        segment_destroy(seg, true);
        return CTH_ENOMEM;
    }
    return 0;
}

/* Keep a released segment as the spare (the larger of it and the spare
 * there is, up to SPARE_MAX: a pool does not hold gigabytes for good), or
 * destroy it. */
static void segment_put(struct cth__proc_pool *pp, struct segment *seg)
{
    pthread_mutex_lock(&pp->lock);
    if (!pp->forked && seg->size <= SPARE_MAX && (!pp->spare.id || seg->size > pp->spare.size)) {
        struct segment old = pp->spare;
        pp->spare = *seg;
        *seg = old;
    }
    pthread_mutex_unlock(&pp->lock);
    segment_destroy(seg, true);
}

static int job_prepare(struct cth__proc_pool *pp, struct cth_result *job)
{
    bool buffer = job->kind == JOB_BUFFER;
    size_t small = buffer && job->in_size <= INLINE_MAX ? job->in_size : 0;
    struct proc_job *pj = cth__malloc(sizeof *pj + (buffer ? small : 2 * sizeof(struct side)));
    if (!pj)
        return CTH_ENOMEM;
    pj->pp = pp;
    pj->seg = (struct segment){0, -1, NULL, 0};
    pj->small_len = small;
    pj->owner = pp->owner;
    void *fn;
    if (buffer)
        memcpy(&fn, &job->buf_fn, sizeof fn);
    else
        memcpy(&fn, &job->rec_fn, sizeof fn);
    pj->fn = fn;
    struct cth__funcref ref; /* named now, so that CTH_ENOENT comes at once */
    int err = cth__funcref_make(fn, &ref);
    size_t in_bytes = 0, out_off = 0, size = 0;
    /* records in a shared allocation are read or written in place */
    const struct cth__region *in_place = job->in_region, *out_place = job->out_region;
    if (!err && buffer) {
        if (small)
            memcpy(pj->tail, job->in, small);
        else
            size = in_bytes = job->in_size;
    } else if (!err) {
        size_t n = job->n;
        if ((job->in_size && n > SIZE_MAX / 2 / job->in_size) ||
            (job->out_size && n > SIZE_MAX / 2 / job->out_size)) {
            err = CTH_EOVERFLOW;
        } else {
            in_bytes = in_place ? 0 : n * job->in_size;
            size_t out_bytes = out_place ? 0 : n * job->out_size;
            out_off = (in_bytes + SEG_ALIGN - 1) / SEG_ALIGN * SEG_ALIGN;
            size = out_bytes ? out_off + out_bytes : in_bytes;
        }
    }
    if (!err && size) {
        err = segment_get(pp, size, &pj->seg);
        if (!err && buffer && in_bytes) /* a map's records: chunk by chunk (proxy_command) */
            memcpy(pj->seg.map, job->in, in_bytes);
    }
    if (!err && !buffer) {
        struct side *sides = job_sides(pj);
        sides[0] = in_place ? side_in_place(in_place, job->in) : side_copied(&pj->seg, 0);
        sides[1] = out_place ? side_in_place(out_place, job->out) : side_copied(&pj->seg, out_off);
    }
    job->proc = pj;
    if (err)
        job_release(job);
    return err;
}

static void job_release(struct cth_result *job)
{
    struct proc_job *pj = job->proc;
    if (!pj)
        return;
    job->proc = NULL;
    if (pj->seg.fd >= 0) {
        if (pj->owner == getpid())
            segment_put(pj->pp, &pj->seg);
        else /* a fork child: the mapping did not follow */
            segment_destroy(&pj->seg, false);
    }
    cth__free(pj);
}

/* ---- the pool ---------------------------------------------------------------------------------- */

static int pool_state_create(const cth_pool_opts_t *o, size_t workers, struct cth__proc_pool **out)
{
    size_t initarg_size = o->initarg ? o->initarg_size : 0;
    if (initarg_size > SIZE_MAX - sizeof(struct worker_arg))
        return CTH_EOVERFLOW;
    struct cth__proc_pool *pp = cth__calloc(1, sizeof *pp);
    struct worker_arg *wa = cth__malloc(sizeof *wa + initarg_size);
    if (!pp || !wa) {
        cth__free(pp);
        cth__free(wa);
        return CTH_ENOMEM;
    }
    memset(wa, 0, sizeof *wa);
    wa->magic = ARG_MAGIC;
    wa->initarg_size = initarg_size;
    if (o->initializer) {
        void *fn;
        memcpy(&fn, &o->initializer, sizeof fn);
        int err = cth__funcref_make(fn, &wa->init);
        if (err) {
            cth__free(pp);
            cth__free(wa);
            return err;
        }
        wa->has_init = 1;
    }
    if (initarg_size)
        memcpy(wa + 1, o->initarg, initarg_size);
    pp->owner = getpid();
    pp->direct = o->maxtasksperchild == 0; /* a lent worker's tasks are not counted */
    pp->method = o->start_method;
    pp->arg = wa;
    pp->arg_size = sizeof *wa + initarg_size;
    pthread_mutex_init(&pp->lock, NULL);
    pp->spare = (struct segment){0, -1, NULL, 0};
    atomic_init(&pp->starting, (uint32_t)workers);
    *out = pp;
    return 0;
}

static int pool_started(struct cth__proc_pool *pp)
{
    uint32_t s;
    while ((s = atomic_load(&pp->starting)) != 0)
        cth__os_futex_wait(&pp->starting, s, CTH__NO_DEADLINE);
    return atomic_load(&pp->start_err);
}

static void pool_terminate(struct cth__proc_pool *pp)
{
    pthread_mutex_lock(&pp->lock);
    if (!terminating(pp)) {
        atomic_store(&pp->terminate_at, cth__now_ns());
        atomic_store(&pp->terminating, true);
    }
    for (struct cth__list_node *n = pp->proxies.first; n; n = n->next) {
        struct proxy *px = cth__list_entry(n, struct proxy, link);
        if (px->live) {
            cth__proc_kill(&px->proc, SIGTERM);
            cth__os_futex_wake_shared(&px->ctl->ack, 1);
        }
    }
    pthread_mutex_unlock(&pp->lock);
}

static void pool_fork_prepare(struct cth__proc_pool *pp)
{
    pthread_mutex_lock(&pp->lock);
}

static void pool_fork_parent(struct cth__proc_pool *pp)
{
    pthread_mutex_unlock(&pp->lock);
}

static void pool_fork_child(struct cth__proc_pool *pp)
{
    /* the workers are the parent's: close the copies of their descriptors
     * and forget them (their blocks' mappings did not follow) */
    for (struct cth__list_node *n = pp->proxies.first; n; n = n->next) {
        struct proxy *px = cth__list_entry(n, struct proxy, link);
        if (px->live)
            cth__proc_forget(&px->proc);
        if (px->ctl_fd >= 0) /* a live worker's block, or a reaped one's kept */
            close(px->ctl_fd);
        if (px->dead_chan >= 0)
            close(px->dead_chan);
        px->dead_chan = -1;
        px->live = px->has_worker = false;
        px->ctl = NULL;
        px->ctl_fd = -1;
    }
    atomic_store(&pp->terminating, true);
    pp->forked = true;
    pthread_mutex_unlock(&pp->lock);
}

static void pool_free(struct cth__proc_pool *pp)
{
    if (!pp)
        return;
    /* in a fork child, the proxies it forgot; in the program, none left */
    struct cth__list_node *n;
    while ((n = cth__list_pop_front(&pp->proxies)) != NULL)
        cth__free(cth__list_entry(n, struct proxy, link));
    segment_destroy(&pp->spare, !pp->forked);
    pthread_mutex_destroy(&pp->lock);
    cth__free(pp->arg);
    cth__free(pp);
}

/* ---- the ops table pool.c calls ---------------------------------------------------- */

static int op_job_prepare(void *state, struct cth_result *job)
{
    return job_prepare(state, job);
}

static bool op_run_items(void *state, struct cth_result *job, size_t lo, size_t hi)
{
    CTH__UNUSED(state);
    struct proxy *px = tls_proxy; /* a proxy: its worker process runs them */
    proxy_acquire(px);
    run_items(px, job, lo, hi, false);
    proxy_release(px);
    return true;
}

static bool op_run_now(void *state, struct cth_result *job)
{
    return run_now(state, job);
}

static size_t op_batch_room(void *state, struct cth_result *first)
{
    CTH__UNUSED(state);
    struct proxy *px = tls_proxy; /* its timing is whoever holds it's */
    proxy_acquire(px);
    size_t room = batch_room(px, first);
    proxy_release(px);
    return room;
}

static bool op_batch_fits(void *state, struct cth_result *const *batch, size_t k,
                          struct cth_result *job)
{
    CTH__UNUSED(state);
    return batch_fits(batch, k, job);
}

static void op_run_batch(void *state, struct cth_result *const *batch, size_t k)
{
    CTH__UNUSED(state);
    struct proxy *px = tls_proxy;
    proxy_acquire(px);
    run_batch(px, batch, k);
    proxy_release(px);
}

static void op_job_release(void *state, struct cth_result *job)
{
    CTH__UNUSED(state);
    job_release(job);
}

static bool op_proxy_start(void *state)
{
    return proxy_start(state); /* its worker process runs the initializer */
}

static void op_proxy_stop(void *state)
{
    CTH__UNUSED(state);
    proxy_stop();
}

static void op_terminate(void *state)
{
    pool_terminate(state);
}

static void op_destroy(void *state)
{
    pool_free(state);
}

static void op_fork_child(void *state)
{
    pool_fork_child(state);
}

static int op_started(void *state)
{
    return pool_started(state);
}

static void op_fork_prepare(void *state)
{
    pool_fork_prepare(state);
}

static void op_fork_parent(void *state)
{
    pool_fork_parent(state);
}

static const struct cth__pool_ops process_ops = {
    .backend = CTH_POOL_PROCESSES,
    .job_prepare = op_job_prepare,
    .run_items = op_run_items,
    .run_now = op_run_now,
    .batch_room = op_batch_room,
    .batch_fits = op_batch_fits,
    .run_batch = op_run_batch,
    .job_release = op_job_release,
    .proxy_start = op_proxy_start,
    .proxy_stop = op_proxy_stop,
    .terminate = op_terminate,
    .destroy = op_destroy,
    .fork_child = op_fork_child,
    .started = op_started,
    .fork_prepare = op_fork_prepare,
    .fork_parent = op_fork_parent,
};

int cth__proc_pool_create(const cth_pool_opts_t *opts, size_t workers,
                          const struct cth__pool_ops **ops, void **state)
{
    struct cth__proc_pool *pp;
    int err = pool_state_create(opts, workers, &pp);
    if (err)
        return err;
    *ops = &process_ops;
    *state = pp;
    return 0;
}
