/* SPDX-License-Identifier: MIT */
/*
 * mpi_pool.c - libcthreading-mpi: the pool over MPI ranks (the
 * MPICommExecutor model). Every rank calls cth_mpi_pool_create; the root
 * gets a pool, the others serve it until it is freed.
 *
 * At the root, the pool is the thread pool (pool.c) built with an ops table
 * (struct cth__pool_ops, pool_internal.h): its worker threads are proxies,
 * as a process pool's. Each proxy owns a slot: one worker rank and one tag
 * on the pool's own duplicates of the communicator, so a rank has as many
 * requests in flight as it has slots (`inflight`), and a rank that answers
 * sooner has its proxies back sooner: work goes on demand, the fastest rank
 * gets more. With root_works, a few more worker threads own no slot and
 * run their chunks at the root, as the thread pool does.
 *
 * Batches. A request carries up to BATCH_MAX chunks: the proxy's own, and
 * while no other worker thread is idle, more that it claims at once
 * (cth__pool_take_more: the same map's next chunks, lone buffer tasks, the
 * queue's record and buffer jobs), while the input stays under
 * BATCH_BYTES, and no more than its share of what is left to claim
 * (cth__pool_backlog over the slots). So a burst of small tasks costs a
 * proxy wake-up and a message each way per batch, not per task, and its
 * tail still spreads over the ranks. A slot's batch limit adapts
 * (next_limit): from 1, it doubles after a round trip under BATCH_FAST_NS;
 * after one over BATCH_SLOW_NS whose chunks took over BATCH_CHUNK_SLOW_NS
 * each, it drops at once to the chunks that fit in BATCH_SLOW_NS at that
 * pace: long tasks travel alone and stay spread over the ranks, while a
 * slow round trip of many quick chunks (a busy machine's latency) leaves
 * it alone. Each chunk of a batch has its own outcome in the reply: a failing
 * task fails its own job only, with its own value.
 *
 * One communication thread per side. Open MPI's blocking calls busy-poll a
 * core, and this library's proxies are many: so no proxy calls MPI. A proxy
 * copies its batch's input into its slot, queues the slot for the root's
 * communication thread and waits on the slot's cthreading Event; the
 * communication thread owns every MPI call: it posts the nonblocking sends
 * and receives of every slot, tests them all with one MPI_Testsome, and
 * sets the Event when the reply is in. While requests are pending and
 * nothing completes it backs off: a few hundred polls, then timed waits on
 * its queue's condition variable, doubling from 1 us to MAX_SLEEP_US (a new
 * request wakes it at once); with nothing pending it sleeps until a
 * request comes. A worker rank's calling thread is its communication
 * thread likewise: it probes for the root's requests (MPI_Improbe),
 * receives their input, runs each batch as one job on the rank's own
 * thread pool (a lone chunk of records as a record map, spread over its
 * threads; more chunks as a map over them), polls those results and sends
 * the replies back, with the same back-off. Sleeping, not yielding: on
 * oversubscribed cores a rank that polls takes the core the rank it waits
 * for needs, so no rank polls for long and mpirun needs no flag such as
 * mpi_yield_when_idle.
 *
 * Messages. A request is a header (struct req_hdr, then a struct req_item
 * per chunk, each followed by its function's name as funcref.h makes it
 * unless it is the previous chunk's) then the chunks' input, one after
 * the other, in pieces of at most cth__mpi_piece bytes (MPI counts are
 * ints); the reply is a header (struct rep_hdr, then a struct rep_item per
 * chunk: its outcome and output length) then each chunk's output in pieces
 * likewise. Headers (and control messages) go on the pool's duplicate of
 * the communicator, pieces on a second duplicate, each on the slot's tag:
 * a worker rank probes the first for requests, and receives from the
 * second only where it expects a piece, so a piece that comes before its
 * receive is posted waits for it instead of being taken for a request.
 * Messages on one tag between two ranks are not overtaken, so a slot's
 * messages pair up. The root trusts no reply: a header of the wrong
 * size, magic, sequence or chunk count fails the batch with CTH_EPROTO; an
 * output of another length than a chunk's records need, a piece cut short
 * or longer than agreed (MPI truncates it and says so) fails that chunk
 * with CTH_EPROTO; a reply whose header cannot be read marks its slot
 * broken and its rank untrusted: that rank is sent nothing more, and the
 * proxies of its slots run their chunks at the root from then on.
 * Whatever arrives for a sound slot is received, wanted or not, so no
 * sender is left waiting.
 *
 * fork. A fork child inherits the pool terminated (pool.c); the
 * communication thread and the communicator stay the parent's: the child
 * frees only memory.
 *
 * Copies. A proxy copies its batch's input into the slot and the reply's
 * output out of it, so a terminated job whose memory the caller reclaims is
 * never read or written by MPI afterwards.
 *
 * terminate: the communication thread cancels every batch queued or in
 * flight (its proxy is released with CTH_ECANCELED; the slot still drains
 * its reply later) and sends CANCEL to every rank, which terminates its own
 * thread pool (a task already running there finishes first). free: once
 * the proxies have exited (pool.c joins them), the communication thread
 * waits for every slot to drain, sends STOP to every rank and exits; then
 * the duplicate communicator is freed. A rank returns only on STOP, so the
 * root never waits on a rank that has returned.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cthreading/mpi.h"
#include "funcref.h"
#include "mpi_internal.h"
#include "pool_internal.h"

#define SPIN_POLLS 200                 /* polls with nothing done before sleeping */
#define MAX_SLEEP_US 500               /* the longest sleep between polls */
#define BATCH_MAX 256                  /* chunks in one request */
#define BATCH_BYTES ((size_t)64 << 10) /* a batch takes more chunks below this input */
#define BATCH_FAST_NS 1000000L         /* a round trip this short: the limit may double */
#define BATCH_SLOW_NS 4000000L         /* this long, of chunks this slow each: */
#define BATCH_CHUNK_SLOW_NS 50000L     /* the chunks that fit in BATCH_SLOW_NS */
#define REQ_MAGIC 0x63746871u          /* "cthq" */
#define REP_MAGIC 0x63746872u          /* "cthr" */
#define CTL_MAGIC 0x63746863u          /* "cthc" */
#define TAG_CTL 0                      /* control messages; slots use tags 1.. */
#define PATH_MAX_LEN (sizeof(((struct cth__funcref *)0)->path))
#define REQ_MAX (sizeof(struct req_hdr) + BATCH_MAX * (sizeof(struct req_item) + PATH_MAX_LEN))
#define REP_MAX (sizeof(struct rep_hdr) + BATCH_MAX * sizeof(struct rep_item))

size_t cth__mpi_piece = CTH__MPI_PIECE;

enum { OP_RECORDS = 1, OP_BUFFER = 2, OP_SAME_FN = 0x100 };
enum { CTL_CANCEL = 1, CTL_STOP = 2 };
enum { ST_OK = 1, ST_TASK = 2, ST_ERROR = 3 };

/* A request's header; nitems struct req_item follow. */
struct req_hdr {
    uint32_t magic, nitems;
    uint64_t seq;
    uint64_t in_bytes; /* the input that follows: every chunk's, in order */
};

/* A chunk of a request; path_len bytes of its function's object path
 * follow, unless op has OP_SAME_FN (the previous chunk's function). */
struct req_item {
    uint32_t op; /* OP_RECORDS or OP_BUFFER, maybe | OP_SAME_FN */
    uint32_t path_len;
    uint64_t fn_offset;
    uint64_t count;    /* records: items; a buffer: 1 */
    uint64_t in_size;  /* records: an input record's size; a buffer: its length */
    uint64_t out_size; /* records: an output record's size */
};

/* A reply's header; nitems struct rep_item follow (none with error). */
struct rep_hdr {
    uint32_t magic, nitems;
    uint64_t seq;
    uint64_t out_bytes; /* the output that follows: every chunk's, in order */
    int32_t error;      /* nonzero: the request could not run at all (a code) */
    uint32_t pad;
};

struct rep_item {
    uint32_t status; /* ST_OK, ST_TASK (value: the task's), ST_ERROR (value: a code) */
    int32_t value;
    uint64_t out_bytes;
};

struct ctl_msg {
    uint32_t magic, op;
};

/* The wire format's sizes (bench_mpi.c counts the bytes moved from them). */
_Static_assert(sizeof(struct req_hdr) == 24 && sizeof(struct req_item) == 40 &&
                   sizeof(struct rep_hdr) == 32 && sizeof(struct rep_item) == 16,
               "the wire format");

/* Whether this process is serving as a worker rank (nested creates). */
static atomic_bool serving;

/* The length of the piece of a stream of len bytes after done bytes. */
static size_t piece_len(size_t len, size_t done)
{
    return len - done < cth__mpi_piece ? len - done : cth__mpi_piece;
}

/* The outputs of a reply, chunk after chunk, go in pieces too: the next
 * piece from chunk *i, *done bytes into it (empty chunks skipped, which
 * moves *i and *done): its length, 0 when none is left. */
static size_t out_piece(const struct rep_item *ri, size_t n, size_t *i, size_t *done)
{
    while (*i < n && *done >= ri[*i].out_bytes) {
        ++*i;
        *done = 0;
    }
    return *i < n ? piece_len((size_t)ri[*i].out_bytes, *done) : 0;
}

/* Back-off of a communication thread with nothing done: the time to sleep
 * (ns) after `idle` polls in a row, 0 for polling on. */
static long backoff_ns(unsigned idle)
{
    if (idle < SPIN_POLLS)
        return 0;
    unsigned shift = idle - SPIN_POLLS;
    long us = shift >= 9 ? MAX_SLEEP_US : 1L << shift;
    return (us < MAX_SLEEP_US ? us : MAX_SLEEP_US) * 1000L;
}

static void sleep_ns(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Grow a buffer to at least len bytes. Returns false when out of memory. */
static bool reserve(char **buf, size_t *cap, size_t len)
{
    if (len == 0 || len <= *cap)
        return true;
    char *b = realloc(*buf, len);
    if (!b)
        return false;
    *buf = b;
    *cap = len;
    return true;
}

/* ==== the root ================================================================== */

enum { SLOT_IDLE, SLOT_ACTIVE };
enum { RQ_SEND_HDR, RQ_SEND_PIECE, RQ_RECV_HDR, RQ_RECV_PIECE, RQ_PER_SLOT };

/* A chunk of a slot's batch. */
struct item {
    struct cth_result *job; /* the proxy's only: terminate may free it meanwhile */
    size_t lo, hi;
    bool records;      /* records (else a buffer), for the communication thread */
    uint64_t out_need; /* records: the output they need */
    size_t out_at;     /* where its output lies in the slot's recv */
    int code, value;   /* its outcome, from the reply */
};

struct slot {
    int rank, tag;
    int state;          /* SLOT_*: the communication thread's (a queued slot is
                          still idle) */
    bool abandoned;     /* terminate released its proxy: drain the reply only */
    atomic_bool broken; /* a reply could not be read: no more requests (the
                           proxy reads it too) */
    bool replied;       /* the reply is in (or failed) */
    bool discard;       /* receiving the output only to drop it */
    struct slot *next;  /* the queue */
    uint64_t seq;
    size_t limit; /* the proxy's: chunks its next batch may take */
    size_t nitems;
    struct item items[BATCH_MAX];
    char *hdr; /* the request's header */
    size_t hdr_cap, hdr_len;
    char *send; /* the input */
    size_t send_cap, send_len, sent;
    char *rep; /* the reply's header */
    size_t rep_cap, rep_len;
    char *recv; /* the output */
    size_t recv_cap, recv_len;
    size_t out_i, out_done; /* the output's next piece (out_piece) */
    int code;               /* the whole batch's failure, if any */
    int released;           /* terminate released the proxy: its batch's code */
    cth_event_t done;
};

struct mpi_pool {
    MPI_Comm comm; /* the duplicate: headers and control */
    MPI_Comm data; /* another: the pieces of input and output */
    int nranks;
    int root;
    struct slot *slots;
    atomic_bool *untrusted; /* per rank: one of its replies could not be read */
    size_t nslots;
    MPI_Request *reqs; /* RQ_PER_SLOT per slot, then one per rank (control) */
    int *done_idx;
    MPI_Status *statuses;
    struct ctl_msg ctl_cancel, ctl_stop;
    _Atomic size_t next_slot; /* proxy_start hands out slots[0..nslots), then none */
    pthread_t thread;         /* the communication thread */
    bool thread_started;
    pthread_mutex_t lock; /* guards the next five */
    pthread_cond_t wake;
    struct slot *queue_head, *queue_tail;
    bool terminating;
    bool stopping;
    bool forked;   /* a fork child: nothing of it is ours */
    bool shut;     /* shutdown done */
    bool canceled; /* CANCEL sent */
};

static _Thread_local struct slot *tls_slot;
static _Thread_local bool tls_pool_thread; /* a worker thread of an MPI pool */

/* A job's function, named (job->proc): only as long as its path. */
struct mpi_job {
    uint64_t offset;
    uint32_t path_len;
    char path[];
};

static const struct rep_hdr *rep_of(const struct slot *s)
{
    return (const struct rep_hdr *)s->rep;
}

static const struct rep_item *rep_items(const struct slot *s)
{
    return (const struct rep_item *)(s->rep + sizeof(struct rep_hdr));
}

static void slot_deliver(struct slot *s)
{
    if (!s->abandoned)
        cth_event_set(&s->done);
}

static bool slot_pending(const struct mpi_pool *mp, const struct slot *s)
{
    const MPI_Request *r = &mp->reqs[(size_t)(s - mp->slots) * RQ_PER_SLOT];
    for (int i = 0; i < RQ_PER_SLOT; i++)
        if (r[i] != MPI_REQUEST_NULL)
            return true;
    return false;
}

/* The reply is in and every request of the slot is done: idle again. */
static void slot_maybe_finish(struct mpi_pool *mp, struct slot *s)
{
    if (s->state != SLOT_ACTIVE || !s->replied)
        return;
    if (s->broken) { /* a rank that broke the protocol may never take the rest */
        slot_deliver(s);
        s->abandoned = true;
        return;
    }
    if (slot_pending(mp, s) || s->sent < s->send_len) /* (a piece done, not yet counted) */
        return;
    s->state = SLOT_IDLE;
    slot_deliver(s);
}

/* The whole batch fails (the first code stays). */
static void slot_fail(struct slot *s, int code)
{
    if (!s->code)
        s->code = code;
}

static void item_fail(struct item *it, int code)
{
    if (!it->code)
        it->code = code;
}

/* Post the receive of the output's next piece (out_piece), or mark the
 * reply in when none is left; without memory for the output, into nothing
 * (MPI consumes it as truncated; Open MPI's shared-memory transport may
 * fail at that, so it is the last resort). */
static void post_recv_piece(struct mpi_pool *mp, struct slot *s)
{
    MPI_Request *r = &mp->reqs[(size_t)(s - mp->slots) * RQ_PER_SLOT + RQ_RECV_PIECE];
    size_t len = out_piece(rep_items(s), s->nitems, &s->out_i, &s->out_done);
    if (len == 0) {
        s->replied = true;
        return;
    }
    char *at = s->recv + s->items[s->out_i].out_at + s->out_done;
    int rc = s->discard ? MPI_Irecv(NULL, 0, MPI_BYTE, s->rank, s->tag, mp->data, r)
                        : MPI_Irecv(at, (int)len, MPI_BYTE, s->rank, s->tag, mp->data, r);
    if (rc != MPI_SUCCESS) { /* cannot receive it: the slot is lost */
        s->broken = true;
        slot_fail(s, CTH_EPROTO);
        s->replied = true;
    }
}

static void post_send_piece(struct mpi_pool *mp, struct slot *s)
{
    MPI_Request *r = &mp->reqs[(size_t)(s - mp->slots) * RQ_PER_SLOT + RQ_SEND_PIECE];
    size_t len = piece_len(s->send_len, s->sent);
    if (MPI_Isend(s->send + s->sent, (int)len, MPI_BYTE, s->rank, s->tag, mp->data, r) !=
        MPI_SUCCESS) {
        s->broken = true;
        slot_fail(s, CTH_EPROTO);
    }
}

static void slot_start(struct mpi_pool *mp, struct slot *s)
{
    MPI_Request *r = &mp->reqs[(size_t)(s - mp->slots) * RQ_PER_SLOT];
    s->state = SLOT_ACTIVE;
    s->replied = false;
    s->discard = false;
    s->code = 0;
    s->sent = 0;
    s->recv_len = 0;
    s->out_i = 0;
    s->out_done = 0;
    int rc = MPI_Isend(s->hdr, (int)s->hdr_len, MPI_BYTE, s->rank, s->tag, mp->comm,
                       &r[RQ_SEND_HDR]);
    if (rc == MPI_SUCCESS && s->send_len)
        post_send_piece(mp, s);
    if (rc == MPI_SUCCESS)
        rc = MPI_Irecv(s->rep, (int)s->rep_len, MPI_BYTE, s->rank, s->tag, mp->comm,
                       &r[RQ_RECV_HDR]);
    if (rc != MPI_SUCCESS) {
        s->broken = true;
        slot_fail(s, CTH_EPROTO);
        s->replied = true;
    }
}

/* What a worker rank's ST_ERROR code may be; anything else is CTH_EPROTO. */
static int known_code(int32_t v)
{
    switch (v) {
    case CTH_ENOENT:
    case CTH_ENOMEM:
    case CTH_ECANCELED:
    case CTH_EAGAIN:
    case CTH_EOVERFLOW: return v;
    default: return CTH_EPROTO;
    }
}

/* A chunk's outcome from its struct rep_item; false when its output length
 * cannot be drained safely. */
static bool item_outcome(struct item *it, const struct rep_item *ri)
{
    switch (ri->status) {
    case ST_OK:
        if (it->records && ri->out_bytes != it->out_need)
            item_fail(it, CTH_EPROTO);
        break;
    case ST_TASK:
        item_fail(it, ri->out_bytes == 0 && ri->value != 0 ? CTH_ETASK : CTH_EPROTO);
        it->value = ri->value;
        break;
    case ST_ERROR: item_fail(it, ri->out_bytes == 0 ? known_code(ri->value) : CTH_EPROTO); break;
    default: item_fail(it, CTH_EPROTO);
    }
    return ri->out_bytes <= SIZE_MAX / 4;
}

/* The reply's header is in (status: its receive's): check it, then
 * receive the output. */
static void on_reply_header(struct mpi_pool *mp, struct slot *s, const MPI_Status *st)
{
    int count = -1;
    const struct rep_hdr *h = rep_of(s);
    bool sound = st->MPI_ERROR == MPI_SUCCESS &&
                 MPI_Get_count(st, MPI_BYTE, &count) == MPI_SUCCESS && count >= 0 &&
                 (size_t)count >= sizeof *h && h->magic == REP_MAGIC && h->seq == s->seq;
    if (sound && h->error) { /* the whole batch failed there */
        sound = h->nitems == 0 && h->out_bytes == 0 && (size_t)count == sizeof *h;
        slot_fail(s, sound ? known_code(h->error) : CTH_EPROTO);
    } else if (sound) {
        sound = h->nitems == s->nitems && (size_t)count == s->rep_len;
    }
    uint64_t total = 0;
    for (size_t i = 0; sound && !h->error && i < s->nitems; i++) {
        struct item *it = &s->items[i];
        sound = item_outcome(it, &rep_items(s)[i]);
        it->out_at = (size_t)total;
        total += rep_items(s)[i].out_bytes;
    }
    if (!sound || total != h->out_bytes || total > SIZE_MAX / 4) {
        s->broken = true; /* where its output ends is unknown */
        atomic_store(&mp->untrusted[s->rank], true);
        slot_fail(s, CTH_EPROTO);
        s->replied = true;
        return;
    }
    s->recv_len = (size_t)total;
    /* an unwanted output is received all the same, and dropped */
    s->discard = !reserve(&s->recv, &s->recv_cap, s->recv_len);
    if (s->discard)
        slot_fail(s, CTH_ENOMEM);
    if (!h->error)
        post_recv_piece(mp, s);
    else
        s->replied = true;
}

static void on_recv_piece(struct mpi_pool *mp, struct slot *s, const MPI_Status *st)
{
    size_t want = out_piece(rep_items(s), s->nitems, &s->out_i, &s->out_done);
    int count = -1;
    if (!s->discard && (st->MPI_ERROR != MPI_SUCCESS ||
                        MPI_Get_count(st, MPI_BYTE, &count) != MPI_SUCCESS || count != (int)want))
        item_fail(&s->items[s->out_i], CTH_EPROTO); /* cut short, or longer (truncated) */
    s->out_done += want;
    post_recv_piece(mp, s);
}

static void on_done(struct mpi_pool *mp, int idx, const MPI_Status *st)
{
    if ((size_t)idx >= mp->nslots * RQ_PER_SLOT)
        return; /* a control message sent */
    struct slot *s = &mp->slots[idx / RQ_PER_SLOT];
    switch (idx % RQ_PER_SLOT) {
    case RQ_SEND_PIECE:
        s->sent += piece_len(s->send_len, s->sent);
        if (s->sent < s->send_len)
            post_send_piece(mp, s);
        break;
    case RQ_RECV_HDR: on_reply_header(mp, s, st); break;
    case RQ_RECV_PIECE: on_recv_piece(mp, s, st); break;
    default: break;
    }
    slot_maybe_finish(mp, s);
}

static void send_ctl(struct mpi_pool *mp, const struct ctl_msg *m)
{
    MPI_Request *r = &mp->reqs[mp->nslots * RQ_PER_SLOT];
    for (int rank = 0; rank < mp->nranks; rank++) {
        if (rank == mp->root)
            continue;
        if (r[rank] != MPI_REQUEST_NULL)
            MPI_Wait(&r[rank], MPI_STATUS_IGNORE); /* a CANCEL before this STOP */
        MPI_Isend(m, sizeof *m, MPI_BYTE, rank, TAG_CTL, mp->comm, &r[rank]);
    }
}

/* terminate, in the communication thread: release every proxy waiting. */
static void cancel_all(struct mpi_pool *mp)
{
    for (size_t i = 0; i < mp->nslots; i++) {
        struct slot *s = &mp->slots[i];
        if (s->state == SLOT_ACTIVE) {   /* the queued ones were started before */
            s->released = CTH_ECANCELED; /* the proxy reads nothing else */
            slot_deliver(s);
            s->abandoned = true;
        }
    }
    send_ctl(mp, &mp->ctl_cancel);
}

static bool any_active(const struct mpi_pool *mp)
{
    for (size_t i = 0; i < mp->nslots; i++)
        if (mp->slots[i].state == SLOT_ACTIVE && !mp->slots[i].broken)
            return true;
    return false;
}

static void *comm_main(void *arg)
{
    struct mpi_pool *mp = arg;
    int nreqs = (int)(mp->nslots * RQ_PER_SLOT + (size_t)mp->nranks);
    unsigned idle = 0;
    for (;;) {
        bool progress = false;
        pthread_mutex_lock(&mp->lock);
        struct slot *q = mp->queue_head;
        mp->queue_head = mp->queue_tail = NULL;
        bool cancel = mp->terminating && !mp->canceled;
        mp->canceled |= cancel;
        bool stopping = mp->stopping;
        pthread_mutex_unlock(&mp->lock);
        for (; q; q = q->next) {
            slot_start(mp, q);
            slot_maybe_finish(mp, q);
            progress = true;
        }
        if (cancel)
            cancel_all(mp);
        int outcount = 0;
        int rc = MPI_Testsome(nreqs, mp->reqs, &outcount, mp->done_idx, mp->statuses);
        if ((rc == MPI_SUCCESS || rc == MPI_ERR_IN_STATUS) && outcount > 0 &&
            outcount != MPI_UNDEFINED) {
            progress = true;
            for (int i = 0; i < outcount; i++) {
                if (rc == MPI_SUCCESS)
                    mp->statuses[i].MPI_ERROR = MPI_SUCCESS;
                on_done(mp, mp->done_idx[i], &mp->statuses[i]);
            }
        }
        bool active = any_active(mp);
        if (stopping && !active)
            break;
        if (progress) {
            idle = 0;
            continue;
        }
        idle++;
        long ns = backoff_ns(idle);
        pthread_mutex_lock(&mp->lock);
        if (!mp->queue_head && mp->terminating == mp->canceled && mp->stopping == stopping) {
            if (!active && outcount == MPI_UNDEFINED) {
                pthread_cond_wait(&mp->wake, &mp->lock);
            } else if (ns) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += ns;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&mp->wake, &mp->lock, &ts);
            }
        }
        pthread_mutex_unlock(&mp->lock);
    }
    /* every slot drained (a broken one's requests may never complete: its
     * buffers stay MPI's, never freed): the ranks may go */
    for (size_t i = 0; i < mp->nslots; i++) {
        if (mp->slots[i].broken && slot_pending(mp, &mp->slots[i])) {
            mp->slots[i].hdr = NULL;
            mp->slots[i].send = NULL;
            mp->slots[i].rep = NULL;
            mp->slots[i].recv = NULL;
        }
    }
    send_ctl(mp, &mp->ctl_stop);
    MPI_Waitall(mp->nranks, &mp->reqs[mp->nslots * RQ_PER_SLOT], MPI_STATUSES_IGNORE);
    return NULL;
}

/* ---- the ops table --------------------------------------------------------------- */

static int op_job_prepare(void *state, struct cth_result *job)
{
    (void)state;
    if (job->cb.task_timeout != 0)
        return CTH_ENOTSUP;
    void *fn;
    if (job->kind == JOB_BUFFER)
        memcpy(&fn, &job->buf_fn, sizeof fn);
    else
        memcpy(&fn, &job->rec_fn, sizeof fn);
    static _Thread_local struct cth__funcref ref; /* 4 KiB: not on the stack */
    int err = cth__funcref_make(fn, &ref);
    if (err)
        return err;
    struct mpi_job *mj = malloc(sizeof *mj + ref.path_len);
    if (!mj)
        return CTH_ENOMEM;
    mj->offset = ref.offset;
    mj->path_len = ref.path_len;
    memcpy(mj->path, ref.path, ref.path_len);
    job->proc = mj;
    return 0;
}

static void op_job_release(void *state, struct cth_result *job)
{
    (void)state;
    free(job->proc);
    job->proc = NULL;
}

/* The slot's batch is empty: a request with no chunk yet. */
static void batch_begin(struct slot *s)
{
    s->nitems = 0;
    s->hdr_len = sizeof(struct req_hdr);
    s->send_len = 0;
}

/* Append items [lo, hi) of job to the slot's batch. false: out of memory. */
static bool batch_add(struct slot *s, struct cth_result *job, size_t lo, size_t hi)
{
    const struct mpi_job *mj = job->proc;
    struct req_item r = {.fn_offset = mj->offset, .path_len = mj->path_len};
    const char *in;
    size_t in_bytes;
    if (job->kind == JOB_BUFFER) {
        r.op = OP_BUFFER;
        r.count = 1;
        r.in_size = job->in_size;
        in_bytes = job->in_size;
        in = job->in;
    } else {
        r.op = OP_RECORDS;
        r.count = hi - lo;
        r.in_size = job->in_size;
        r.out_size = job->out_size;
        in_bytes = (hi - lo) * job->in_size;
        in = job->in_size ? job->in + lo * job->in_size : NULL;
    }
    const struct item *prev = s->nitems ? &s->items[s->nitems - 1] : NULL;
    const struct mpi_job *pj = prev ? prev->job->proc : NULL;
    bool same = pj && pj->offset == mj->offset && pj->path_len == mj->path_len &&
                memcmp(pj->path, mj->path, mj->path_len) == 0;
    if (same)
        r.op |= OP_SAME_FN;
    size_t path = same ? 0 : mj->path_len;
    if (!reserve(&s->hdr, &s->hdr_cap, s->hdr_len + sizeof r + path) ||
        !reserve(&s->send, &s->send_cap, s->send_len + in_bytes))
        return false;
    memcpy(s->hdr + s->hdr_len, &r, sizeof r);
    memcpy(s->hdr + s->hdr_len + sizeof r, mj->path, path);
    s->hdr_len += sizeof r + path;
    if (in_bytes && in)
        memcpy(s->send + s->send_len, in, in_bytes);
    s->send_len += in_bytes;
    s->items[s->nitems++] = (struct item){.job = job,
                                          .lo = lo,
                                          .hi = hi,
                                          .records = job->kind != JOB_BUFFER,
                                          .out_need = (uint64_t)(hi - lo) * job->out_size};
    return true;
}

/* The batch is complete: its header, and room for the reply's. false: out
 * of memory. */
static bool batch_seal(struct slot *s)
{
    s->rep_len = sizeof(struct rep_hdr) + s->nitems * sizeof(struct rep_item);
    if (!reserve(&s->rep, &s->rep_cap, s->rep_len))
        return false;
    struct req_hdr h = {.magic = REQ_MAGIC,
                        .nitems = (uint32_t)s->nitems,
                        .seq = ++s->seq,
                        .in_bytes = s->send_len};
    memcpy(s->hdr, &h, sizeof h);
    return true;
}

/* The proxy has its batch's outcome: chunk i's results into its job. */
static void item_results(struct slot *s, size_t i, int whole)
{
    struct item *it = &s->items[i];
    struct cth_result *job = it->job;
    int code = whole ? whole : it->code;
    if (code == CTH_ETASK) {
        cth__job_fail(job, CTH_ETASK, it->value);
    } else if (code) {
        cth__job_fail(job, code, 0);
    } else if (job->kind == JOB_BUFFER) {
        size_t len = (size_t)rep_items(s)[i].out_bytes;
        if (len && s->nitems == 1) { /* the slot's buffer is the job's from now on */
            job->buf = s->recv;
            s->recv = NULL;
            s->recv_cap = 0;
        } else if (len) {
            job->buf = malloc(len);
            if (!job->buf) {
                cth__job_fail(job, CTH_ENOMEM, 0);
                return;
            }
            memcpy(job->buf, s->recv + it->out_at, len);
        }
        job->buf_size = len;
    } else if (job->out && job->out_size && it->out_need) {
        memcpy(job->out + it->lo * job->out_size, s->recv + it->out_at, (size_t)it->out_need);
    }
}

/* Fill the slot's batch: the proxy's chunk [lo, hi) of job first, then
 * what it may claim at once (see the top). Returns the chunks in it (the
 * first is the caller's to finish, the others the batch's), 0 when out of
 * memory (the proxy's chunk failed). */
static size_t batch_fill(struct mpi_pool *mp, struct slot *s, struct cth_result *job, size_t lo,
                         size_t hi)
{
    batch_begin(s);
    if (!batch_add(s, job, lo, hi)) {
        cth__job_fail(job, CTH_ENOMEM, 0);
        return 0;
    }
    /* no more than this slot's share of what is left: the tail of a burst
     * spreads over the slots */
    size_t share = 1 + cth__pool_backlog(job) / mp->nslots;
    size_t most = s->limit < share ? s->limit : share;
    while (s->nitems < most && s->send_len < BATCH_BYTES) {
        size_t c;
        struct cth_result *more = cth__pool_take_more(job, &c);
        if (!more)
            break;
        size_t mlo = c * more->chunksize;
        size_t mhi = mlo + more->chunksize < more->n ? mlo + more->chunksize : more->n;
        if (!batch_add(s, more, mlo, mhi)) {
            cth__job_fail(more, CTH_ENOMEM, 0);
            cth__job_chunk_done(more);
            break;
        }
    }
    if (!batch_seal(s)) {
        for (size_t i = 0; i < s->nitems; i++) {
            cth__job_fail(s->items[i].job, CTH_ENOMEM, 0);
            if (i > 0)
                cth__job_chunk_done(s->items[i].job);
        }
        return 0;
    }
    return s->nitems;
}

/* Every chunk of the batch but the proxy's own fails with code, and is
 * finished. */
static void batch_fail_rest(struct slot *s, int code)
{
    for (size_t i = 0; i < s->nitems; i++) {
        cth__job_fail(s->items[i].job, code, 0);
        if (i > 0)
            cth__job_chunk_done(s->items[i].job);
    }
}

/* A slot's next batch limit, after a batch of n chunks took rtt ns (see
 * the top). */
static size_t next_limit(size_t limit, size_t n, int64_t rtt)
{
    if (rtt < BATCH_FAST_NS)
        return 2 * limit < BATCH_MAX ? 2 * limit : BATCH_MAX;
    int64_t per = rtt / (int64_t)n;
    if (rtt > BATCH_SLOW_NS && per > BATCH_CHUNK_SLOW_NS) {
        size_t fit = (size_t)(BATCH_SLOW_NS / per);
        return fit < 1 ? 1 : fit < limit ? fit : limit;
    }
    return limit;
}

static bool op_run_items(void *state, struct cth_result *job, size_t lo, size_t hi)
{
    struct mpi_pool *mp = state;
    struct slot *s = tls_slot;
    if (!s || s->broken || atomic_load(&mp->untrusted[s->rank]))
        return false; /* root_works, or a rank not trusted again: this thread runs them */
    pthread_mutex_lock(&mp->lock);
    bool terminating = mp->terminating; /* then the slot may still be draining */
    pthread_mutex_unlock(&mp->lock);
    if (terminating) {
        cth__job_fail(job, CTH_ECANCELED, 0);
        return true;
    }
    if (batch_fill(mp, s, job, lo, hi) == 0)
        return true;
    cth_event_clear(&s->done);
    int64_t t0 = now_ns();
    pthread_mutex_lock(&mp->lock);
    if (mp->terminating) {
        pthread_mutex_unlock(&mp->lock);
        batch_fail_rest(s, CTH_ECANCELED);
        return true;
    }
    s->next = NULL;
    if (mp->queue_tail)
        mp->queue_tail->next = s;
    else
        mp->queue_head = s;
    mp->queue_tail = s;
    pthread_cond_signal(&mp->wake);
    pthread_mutex_unlock(&mp->lock);
    while (cth_event_wait(&s->done, CTH_FOREVER) != 0)
        ;
    if (s->released) {
        batch_fail_rest(s, s->released);
        return true;
    }
    s->limit = next_limit(s->limit, s->nitems, now_ns() - t0);
    for (size_t i = 0; i < s->nitems; i++) {
        item_results(s, i, s->code);
        if (i > 0)
            cth__job_chunk_done(s->items[i].job);
    }
    return true;
}

static bool op_proxy_start(void *state)
{
    struct mpi_pool *mp = state;
    size_t i = atomic_fetch_add(&mp->next_slot, 1);
    tls_slot = i < mp->nslots ? &mp->slots[i] : NULL;
    tls_pool_thread = true;
    return true;
}

static void op_proxy_stop(void *state)
{
    (void)state;
    tls_slot = NULL;
    tls_pool_thread = false;
}

static void op_terminate(void *state)
{
    struct mpi_pool *mp = state;
    pthread_mutex_lock(&mp->lock);
    mp->terminating = true;
    pthread_cond_signal(&mp->wake);
    pthread_mutex_unlock(&mp->lock);
}

static void op_shutdown(void *state)
{
    struct mpi_pool *mp = state;
    if (mp->shut)
        return;
    mp->shut = true;
    if (mp->forked)
        return;
    if (mp->thread_started) {
        pthread_mutex_lock(&mp->lock);
        mp->stopping = true;
        pthread_cond_signal(&mp->wake);
        pthread_mutex_unlock(&mp->lock);
        pthread_join(mp->thread, NULL);
    }
    MPI_Comm_free(&mp->comm);
    MPI_Comm_free(&mp->data);
}

static void op_destroy(void *state)
{
    struct mpi_pool *mp = state;
    op_shutdown(mp);
    for (size_t i = 0; i < mp->nslots; i++) {
        free(mp->slots[i].hdr);
        free(mp->slots[i].send);
        free(mp->slots[i].rep);
        free(mp->slots[i].recv);
    }
    free(mp->slots);
    free(mp->untrusted);
    free(mp->reqs);
    free(mp->done_idx);
    free(mp->statuses);
    pthread_mutex_destroy(&mp->lock);
    pthread_cond_destroy(&mp->wake);
    free(mp);
}

static void op_fork_child(void *state)
{
    struct mpi_pool *mp = state;
    mp->forked = true; /* the communication thread and MPI are the parent's */
}

static const struct cth__pool_ops mpi_ops = {
    .backend = CTH_POOL_MPI,
    .job_prepare = op_job_prepare,
    .run_items = op_run_items,
    .job_release = op_job_release,
    .proxy_start = op_proxy_start,
    .proxy_stop = op_proxy_stop,
    .terminate = op_terminate,
    .shutdown = op_shutdown,
    .destroy = op_destroy,
    .fork_child = op_fork_child,
};

/* The root's state: slots for every rank's inflight chunks (interleaved by
 * rank, so the first proxies spread over the ranks), the communication
 * thread started. threads[r]: rank r's thread count. */
static int root_state(const MPI_Comm comm[2], int root, int nranks, const int *threads,
                      size_t inflight, struct mpi_pool **out)
{
    struct mpi_pool *mp = calloc(1, sizeof *mp);
    if (!mp)
        return CTH_ENOMEM;
    mp->comm = comm[0];
    mp->data = comm[1];
    mp->nranks = nranks;
    mp->root = root;
    mp->ctl_cancel = (struct ctl_msg){CTL_MAGIC, CTL_CANCEL};
    mp->ctl_stop = (struct ctl_msg){CTL_MAGIC, CTL_STOP};
    pthread_mutex_init(&mp->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mp->wake, &ca);
    pthread_condattr_destroy(&ca);
    size_t most = 0;
    for (int r = 0; r < nranks; r++) {
        size_t n = r == root ? 0 : inflight ? inflight : 2 * (size_t)threads[r];
        mp->nslots += n;
        most = n > most ? n : most;
    }
    size_t nreqs = mp->nslots * RQ_PER_SLOT + (size_t)nranks;
    mp->slots = calloc(mp->nslots ? mp->nslots : 1, sizeof *mp->slots);
    mp->untrusted = calloc((size_t)nranks, sizeof *mp->untrusted);
    mp->reqs = malloc(nreqs * sizeof(MPI_Request));
    mp->done_idx = malloc(nreqs * sizeof *mp->done_idx);
    mp->statuses = malloc(nreqs * sizeof *mp->statuses);
    if (!mp->slots || !mp->untrusted || !mp->reqs || !mp->done_idx || !mp->statuses ||
        nreqs > INT_MAX) {
        mp->shut = true; /* the communicators are the caller's to free */
        op_destroy(mp);
        return nreqs > INT_MAX ? CTH_EOVERFLOW : CTH_ENOMEM;
    }
    for (size_t i = 0; i < nreqs; i++)
        mp->reqs[i] = MPI_REQUEST_NULL;
    size_t k = 0;
    for (size_t round = 0; round < most; round++) {
        for (int r = 0; r < nranks; r++) {
            size_t n = r == root ? 0 : inflight ? inflight : 2 * (size_t)threads[r];
            if (round < n) {
                mp->slots[k].rank = r;
                mp->slots[k].tag = (int)round + 1;
                mp->slots[k].limit = 1;
                cth_event_init(&mp->slots[k].done);
                k++;
            }
        }
    }
    if (mp->nslots && pthread_create(&mp->thread, NULL, comm_main, mp) != 0) {
        mp->shut = true;
        op_destroy(mp);
        return CTH_EAGAIN;
    }
    mp->thread_started = mp->nslots != 0;
    *out = mp;
    return 0;
}

/* ==== a worker rank ================================================================ */

enum { W_IDLE, W_RECV, W_RUN, W_SEND };
enum { WQ_RECV_PIECE, WQ_SEND_HDR, WQ_SEND_PIECE, WQ_PER_SLOT };

/* A chunk of a request, as the rank runs it. */
struct witem {
    uint32_t op; /* OP_RECORDS or OP_BUFFER */
    void *fn;    /* NULL: not found (rep says why) */
    uint64_t count, in_size, out_size;
    const char *in;
    char *out;            /* records: their output (in the slot's out); a
                             buffer: the task's result (malloc'd) */
    struct rep_item *rep; /* its outcome, in the reply */
};

/* A worker rank's side of one slot (tag = its index + 1). */
struct wslot {
    int state;
    int err; /* a failure found before the batch could run (its input is dropped) */
    struct req_hdr h;
    char *req; /* the request's header */
    size_t req_cap;
    struct witem items[BATCH_MAX];
    void *ptrs[BATCH_MAX]; /* &items[i], for the local map */
    size_t nitems;
    char *in;
    size_t in_cap, got;
    char *out;
    size_t out_cap;
    _Alignas(uint64_t) char rep[REP_MAX]; /* the reply's header and items */
    size_t rep_len;
    size_t out_i, out_done; /* the output's next piece (out_piece) */
    bool single;            /* one chunk of records, run as a local record map */
    cth_result_t *res;
};

struct server {
    MPI_Comm comm; /* headers and control */
    MPI_Comm data; /* the pieces of input and output */
    int root;
    cth_pool_t *local;
    size_t threads; /* the local pool's */
    struct wslot *slots;
    int nslots;
    MPI_Request *reqs; /* WQ_PER_SLOT per slot */
    int *done_idx;
    MPI_Status *statuses;
    bool stop;
    /* the last function resolved, and where */
    void *fn;
    struct cth__funcref ref;
};

/* The function of a chunk: its path and offset. Returns 0 and *fn, or
 * funcref's error. */
static int resolve(struct server *sv, const char *path, uint32_t len, uint64_t offset, void **fn)
{
    if (sv->fn && offset == sv->ref.offset && len == sv->ref.path_len &&
        memcmp(sv->ref.path, path, len) == 0) {
        *fn = sv->fn;
        return 0;
    }
    sv->fn = NULL;
    sv->ref.offset = offset;
    sv->ref.path_len = len;
    memcpy(sv->ref.path, path, len);
    sv->ref.path[len] = '\0';
    int err = cth__funcref_resolve(&sv->ref, fn);
    if (err == 0)
        sv->fn = *fn;
    return err;
}

static MPI_Request *w_req(struct server *sv, const struct wslot *w, int which)
{
    return &sv->reqs[(w - sv->slots) * WQ_PER_SLOT + which];
}

static int w_tag(struct server *sv, const struct wslot *w)
{
    return (int)(w - sv->slots) + 1;
}

static struct rep_item *w_rep_items(struct wslot *w)
{
    return (struct rep_item *)(w->rep + sizeof(struct rep_hdr));
}

static void w_post_recv(struct server *sv, struct wslot *w)
{
    size_t len = piece_len(w->h.in_bytes, w->got);
    if (w->err) /* dropped: MPI consumes the piece as truncated */
        MPI_Irecv(NULL, 0, MPI_BYTE, sv->root, w_tag(sv, w), sv->data, w_req(sv, w, WQ_RECV_PIECE));
    else
        MPI_Irecv(w->in + w->got, (int)len, MPI_BYTE, sv->root, w_tag(sv, w), sv->data,
                  w_req(sv, w, WQ_RECV_PIECE));
}

/* Send the output's next piece, if any is left. */
static void w_post_send(struct server *sv, struct wslot *w)
{
    size_t len = out_piece(w_rep_items(w), w->nitems, &w->out_i, &w->out_done);
    if (len)
        MPI_Isend(w->items[w->out_i].out + w->out_done, (int)len, MPI_BYTE, sv->root, w_tag(sv, w),
                  sv->data, w_req(sv, w, WQ_SEND_PIECE));
}

/* Send the reply: the header and its items (error: the whole batch failed,
 * no items), then the outputs. */
static void w_reply(struct server *sv, struct wslot *w, int32_t error)
{
    uint64_t total = 0;
    size_t n = error ? 0 : w->nitems;
    for (size_t i = 0; i < n; i++)
        total += w_rep_items(w)[i].out_bytes;
    struct rep_hdr h = {.magic = REP_MAGIC,
                        .nitems = (uint32_t)n,
                        .seq = w->h.seq,
                        .out_bytes = total,
                        .error = error};
    memcpy(w->rep, &h, sizeof h);
    w->rep_len = sizeof h + n * sizeof(struct rep_item);
    w->out_i = 0;
    w->out_done = 0;
    w->state = W_SEND;
    MPI_Isend(w->rep, (int)w->rep_len, MPI_BYTE, sv->root, w_tag(sv, w), sv->comm,
              w_req(sv, w, WQ_SEND_HDR));
    if (!error)
        w_post_send(sv, w);
    else
        w->nitems = 0;
}

/* Run one chunk (in the local pool): its outcome in its rep. Always 0: a
 * failing chunk fails alone. */
static int run_item(void *arg, void **value)
{
    struct witem *it = arg;
    (void)value;
    if (!it->fn)
        return 0;
    if (it->op == OP_BUFFER) {
        cth_pool_buffer_fn bf;
        memcpy(&bf, &it->fn, sizeof bf);
        void *buf = NULL;
        size_t len = 0;
        int r = bf(it->in_size ? it->in : NULL, (size_t)it->in_size, &buf, &len);
        if (r != 0 || len == 0) { /* an empty buffer is none */
            free(buf);
            buf = NULL;
            len = 0;
        }
        it->out = buf;
        *it->rep = r ? (struct rep_item){ST_TASK, r, 0} : (struct rep_item){ST_OK, 0, len};
        return 0;
    }
    cth_pool_record_fn rf;
    memcpy(&rf, &it->fn, sizeof rf);
    for (uint64_t i = 0; i < it->count; i++) {
        int r = rf(it->in_size ? it->in + i * it->in_size : NULL,
                   it->out_size ? it->out + i * it->out_size : NULL);
        if (r != 0) {
            *it->rep = (struct rep_item){ST_TASK, r, 0};
            return 0;
        }
    }
    *it->rep = (struct rep_item){ST_OK, 0, it->count * it->out_size};
    return 0;
}

/* The input is in: run the batch on the rank's thread pool. */
static void w_run(struct server *sv, struct wslot *w)
{
    if (w->err) {
        w_reply(sv, w, w->err);
        return;
    }
    size_t in_at = 0, out_at = 0;
    for (size_t i = 0; i < w->nitems; i++) {
        struct witem *it = &w->items[i];
        size_t in_bytes = (size_t)(it->count * it->in_size);
        it->in = w->in + in_at;
        in_at += in_bytes;
        if (it->op == OP_RECORDS) {
            it->out = w->out + out_at;
            out_at += (size_t)(it->count * it->out_size);
        }
    }
    int err;
    w->single = w->nitems == 1 && w->items[0].op == OP_RECORDS && w->items[0].fn;
    if (w->single) {
        const struct witem *it = &w->items[0];
        cth_pool_record_fn rf;
        memcpy(&rf, &it->fn, sizeof rf);
        err = cth_pool_map_records_async(sv->local, rf, it->in_size ? it->in : NULL, it->in_size,
                                         it->count, 0, NULL, it->out_size ? it->out : NULL,
                                         it->out_size, &w->res);
    } else {
        size_t chunk = (w->nitems + sv->threads - 1) / sv->threads;
        err = cth_pool_map_async(sv->local, run_item, w->ptrs, w->nitems, chunk, NULL, NULL,
                                 &w->res);
    }
    if (err == CTH_EINVAL) /* the local pool was terminated (CANCEL) */
        err = CTH_ECANCELED;
    if (err)
        w_reply(sv, w, err);
    else
        w->state = W_RUN;
}

/* The batch has finished: its reply. */
static void w_finished(struct server *sv, struct wslot *w)
{
    int err = cth_result_get(w->res, NULL, 0);
    if (w->single) {
        struct rep_item *rep = w->items[0].rep;
        const struct witem *it = &w->items[0];
        if (err == 0)
            *rep = (struct rep_item){ST_OK, 0, it->count * it->out_size};
        else if (err == CTH_ETASK)
            *rep = (struct rep_item){ST_TASK, cth_result_task_error(w->res), 0};
        else
            *rep = (struct rep_item){ST_ERROR, err, 0};
    } /* else each chunk has its outcome (not run: CTH_ECANCELED) */
    w_reply(sv, w, 0);
}

/* The reply is sent: the slot is free. */
static void w_sent(struct wslot *w)
{
    for (size_t i = 0; i < w->nitems; i++)
        if (w->items[i].op == OP_BUFFER) {
            free(w->items[i].out);
            w->items[i].out = NULL;
        }
    cth_result_free(w->res);
    w->res = NULL;
    w->nitems = 0;
    w->state = W_IDLE;
}

/* Read a request's header (len bytes in w->req): its chunks, their
 * functions found. Returns 0, CTH_EPROTO (not a request as agreed) or
 * CTH_ENOMEM (its input or output cannot be held). A chunk whose function
 * is not found fails alone (its rep says why). */
static int w_parse(struct server *sv, struct wslot *w, size_t len)
{
    w->h = (struct req_hdr){0};
    if (len < sizeof w->h)
        return CTH_EPROTO;
    memcpy(&w->h, w->req, sizeof w->h);
    if (w->h.magic != REQ_MAGIC || w->h.nitems == 0 || w->h.nitems > BATCH_MAX)
        return CTH_EPROTO;
    size_t at = sizeof w->h, in_total = 0, out_total = 0;
    const char *path = NULL;
    struct req_item r = {0};
    void *fn = NULL;
    int found = CTH_EPROTO;
    for (size_t i = 0; i < w->h.nitems; i++) {
        uint64_t prev_offset = r.fn_offset;
        uint32_t prev_len = r.path_len;
        if (len - at < sizeof r)
            return CTH_EPROTO;
        memcpy(&r, w->req + at, sizeof r);
        at += sizeof r;
        uint32_t op = r.op & ~(uint32_t)OP_SAME_FN;
        if (r.op & OP_SAME_FN) {
            if (i == 0 || r.fn_offset != prev_offset || r.path_len != prev_len)
                return CTH_EPROTO;
        } else {
            if (r.path_len >= PATH_MAX_LEN || len - at < r.path_len)
                return CTH_EPROTO;
            path = w->req + at;
            at += r.path_len;
            found = resolve(sv, path, r.path_len, r.fn_offset, &fn);
        }
        bool sane = op == OP_BUFFER ? r.count == 1 && r.out_size == 0
                                    : op == OP_RECORDS &&
                                          (r.in_size == 0 || r.count <= SIZE_MAX / 4 / r.in_size) &&
                                          (r.out_size == 0 || r.count <= SIZE_MAX / 4 / r.out_size);
        if (!sane)
            return CTH_EPROTO;
        size_t in_bytes = (size_t)(r.count * r.in_size);
        size_t out_bytes = op == OP_RECORDS ? (size_t)(r.count * r.out_size) : 0;
        if (in_bytes > SIZE_MAX / 4 - in_total || out_bytes > SIZE_MAX / 4 - out_total)
            return CTH_EPROTO;
        in_total += in_bytes;
        out_total += out_bytes;
        struct witem *it = &w->items[i];
        *it = (struct witem){.op = op,
                             .fn = found ? NULL : fn,
                             .count = r.count,
                             .in_size = r.in_size,
                             .out_size = r.out_size,
                             .rep = &w_rep_items(w)[i]};
        *it->rep = found ? (struct rep_item){ST_ERROR, found, 0}
                         : (struct rep_item){ST_ERROR, CTH_ECANCELED, 0}; /* until it runs */
        w->ptrs[i] = it;
    }
    w->nitems = w->h.nitems;
    if (at != len || in_total != w->h.in_bytes)
        return CTH_EPROTO;
    bool room = reserve(&w->in, &w->in_cap, in_total) && reserve(&w->out, &w->out_cap, out_total);
    return room ? 0 : CTH_ENOMEM;
}

/* A request's header: m is its matched message, of len bytes, on tag. */
static void w_request(struct server *sv, MPI_Message *m, int len, int tag)
{
    struct wslot *w = tag >= 1 && tag <= sv->nslots ? &sv->slots[tag - 1] : NULL;
    if (w && w->state == W_SEND) { /* the root has the reply: its sends end now */
        MPI_Waitall(WQ_PER_SLOT, w_req(sv, w, 0), MPI_STATUSES_IGNORE);
        w_sent(w);
    }
    if (!w || w->state != W_IDLE || len < (int)sizeof(struct req_hdr) || (size_t)len > REQ_MAX) {
        MPI_Mrecv(NULL, 0, MPI_BYTE, m, MPI_STATUS_IGNORE); /* not the root's: dropped */
        return;
    }
    MPI_Mrecv(w->req, len, MPI_BYTE, m, MPI_STATUS_IGNORE);
    w->nitems = 0;
    w->err = w_parse(sv, w, (size_t)len);
    /* a request not as agreed: its input is received and dropped, if its
     * length can be told */
    if (w->err == CTH_EPROTO && (w->h.magic != REQ_MAGIC || w->h.in_bytes > SIZE_MAX / 4))
        w->h.in_bytes = 0;
    w->got = 0;
    w->state = W_RECV;
    if (w->h.in_bytes)
        w_post_recv(sv, w);
    else
        w_run(sv, w);
}

static bool w_pending(struct server *sv, const struct wslot *w)
{
    for (int i = 0; i < WQ_PER_SLOT; i++)
        if (*w_req(sv, w, i) != MPI_REQUEST_NULL)
            return true;
    return false;
}

static void w_done(struct server *sv, int idx)
{
    struct wslot *w = &sv->slots[idx / WQ_PER_SLOT];
    switch (idx % WQ_PER_SLOT) {
    case WQ_RECV_PIECE:
        w->got += piece_len(w->h.in_bytes, w->got);
        if (w->got < w->h.in_bytes)
            w_post_recv(sv, w);
        else
            w_run(sv, w);
        break;
    case WQ_SEND_PIECE:
        w->out_done += out_piece(w_rep_items(w), w->nitems, &w->out_i, &w->out_done);
        w_post_send(sv, w);
        break;
    default: break;
    }
    /* every send done, and counted (one MPI_Testsome may end several) */
    if (w->state == W_SEND && !w_pending(sv, w) &&
        out_piece(w_rep_items(w), w->nitems, &w->out_i, &w->out_done) == 0)
        w_sent(w);
}
static void w_control(struct server *sv, MPI_Message *m, int len)
{
    struct ctl_msg c = {0};
    if (len != (int)sizeof c) {
        MPI_Mrecv(NULL, 0, MPI_BYTE, m, MPI_STATUS_IGNORE);
        return;
    }
    MPI_Mrecv(&c, sizeof c, MPI_BYTE, m, MPI_STATUS_IGNORE);
    if (c.magic == CTL_MAGIC && c.op == CTL_CANCEL)
        cth_pool_terminate(sv->local);
    else if (c.magic == CTL_MAGIC && c.op == CTL_STOP)
        sv->stop = true;
}

static bool w_busy(struct server *sv)
{
    for (int i = 0; i < sv->nslots; i++)
        if (sv->slots[i].state != W_IDLE)
            return true;
    return false;
}

/* Serve the root until STOP (and every slot idle). */
static void serve(struct server *sv)
{
    unsigned idle = 0;
    while (!sv->stop || w_busy(sv)) {
        bool progress = false;
        int flag = 0;
        MPI_Message m;
        MPI_Status st;
        if (!sv->stop &&
            MPI_Improbe(sv->root, MPI_ANY_TAG, sv->comm, &flag, &m, &st) == MPI_SUCCESS && flag) {
            int len = 0;
            MPI_Get_count(&st, MPI_BYTE, &len);
            if (st.MPI_TAG == TAG_CTL)
                w_control(sv, &m, len);
            else
                w_request(sv, &m, len, st.MPI_TAG);
            progress = true;
        }
        /* MPI_ERR_IN_STATUS: a piece of a refused request, received into
         * nothing (w_post_recv), ends truncated; it is done all the same,
         * as is everything else that call ended */
        int outcount = 0;
        int rc = MPI_Testsome(sv->nslots * WQ_PER_SLOT, sv->reqs, &outcount, sv->done_idx,
                              sv->statuses);
        if ((rc == MPI_SUCCESS || rc == MPI_ERR_IN_STATUS) && outcount != MPI_UNDEFINED) {
            for (int i = 0; i < outcount; i++)
                w_done(sv, sv->done_idx[i]);
            progress |= outcount > 0;
        }
        for (int i = 0; i < sv->nslots; i++) {
            struct wslot *w = &sv->slots[i];
            if (w->state == W_RUN && cth_result_ready(w->res)) {
                w_finished(sv, w);
                progress = true;
            }
        }
        if (progress) {
            idle = 0;
        } else {
            long ns = backoff_ns(++idle);
            if (ns)
                sleep_ns(ns);
        }
    }
}

static void server_free(struct server *sv)
{
    for (int i = 0; i < sv->nslots; i++) {
        cth_result_free(sv->slots[i].res);
        free(sv->slots[i].req);
        free(sv->slots[i].in);
        free(sv->slots[i].out);
    }
    free(sv->slots);
    free(sv->reqs);
    free(sv->done_idx);
    free(sv->statuses);
    cth_pool_free(sv->local);
}

/* ==== create ======================================================================== */

static size_t cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (size_t)CPU_COUNT(&set);
    return 1;
}

/* Every rank's start: the same error at every rank (one failing rank's
 * code: the lowest), and, when none failed, each rank's thread count at
 * the root (all_threads: nranks ints there, NULL elsewhere). */
static int agree(MPI_Comm comm, int root, int err, int threads, int *all_threads)
{
    int first = 0;
    if (MPI_Allreduce(&err, &first, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return CTH_EPROTO;
    if (first == 0 &&
        MPI_Gather(&threads, 1, MPI_INT, all_threads, 1, MPI_INT, root, comm) != MPI_SUCCESS)
        return CTH_EPROTO;
    return first;
}

/* The checks every rank makes alone, before any message. */
static int check_args(MPI_Comm comm, int root, const cth_mpi_opts_t *o, cth_pool_t **pool,
                      int *nranks, int *rank)
{
    if (!pool)
        return CTH_EINVAL;
    *pool = NULL;
    int inited = 0, finalized = 0, level = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return CTH_ENOTSUP;
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_MULTIPLE)
        return CTH_ENOTSUP;
    if (atomic_load(&serving) || tls_pool_thread) /* a task of a pool over ranks */
        return CTH_EPERM;
    if (comm == MPI_COMM_NULL || MPI_Comm_size(comm, nranks) != MPI_SUCCESS ||
        MPI_Comm_rank(comm, rank) != MPI_SUCCESS)
        return CTH_EINVAL;
    if (root < 0 || root >= *nranks || (*nranks == 1 && !o->root_works))
        return CTH_EINVAL;
    if (o->threads > INT_MAX || o->inflight > INT_MAX)
        return CTH_EOVERFLOW;
    return 0;
}

/* The ranks serve already, and the root cannot go on: release them. */
static void stop_ranks(MPI_Comm comm, int root, int nranks)
{
    struct ctl_msg stop = {CTL_MAGIC, CTL_STOP};
    for (int r = 0; r < nranks; r++)
        if (r != root)
            MPI_Send(&stop, sizeof stop, MPI_BYTE, r, TAG_CTL, comm);
}

static int create_root(MPI_Comm comm[2], int root, int nranks, const cth_mpi_opts_t *o,
                       cth_pool_t **pool)
{
    int *threads = malloc((size_t)nranks * sizeof *threads);
    int err = agree(comm[0], root, threads ? 0 : CTH_ENOMEM, 0, threads);
    struct mpi_pool *mp = NULL;
    if (!err) {
        err = threads ? root_state(comm, root, nranks, threads, o->inflight, &mp) : CTH_ENOMEM;
        if (err) /* the ranks serve already, and wait for STOP */
            stop_ranks(comm[0], root, nranks);
    }
    free(threads);
    if (err) {
        MPI_Comm_free(&comm[0]);
        MPI_Comm_free(&comm[1]);
        return err;
    }
    size_t own = o->root_works ? (o->threads ? o->threads : cpu_count()) : 0;
    if (mp->nslots + own > INT_MAX) {
        op_destroy(mp);
        return CTH_EOVERFLOW;
    }
    return cth__pool_create_ops(pool, mp->nslots + own, &mpi_ops, mp);
}

static int create_worker(MPI_Comm comm[2], int root, const cth_mpi_opts_t *o)
{
    struct server sv = {.comm = comm[0], .data = comm[1], .root = root};
    cth_pool_opts_t po = {.processes = o->threads};
    int err = cth_pool_create(&sv.local, &po);
    int threads = err ? 0 : (int)cth_pool_size(sv.local);
    if (!err) {
        sv.threads = (size_t)threads;
        sv.nslots = o->inflight ? (int)o->inflight : 2 * threads;
        size_t nreqs = (size_t)sv.nslots * WQ_PER_SLOT;
        sv.slots = calloc((size_t)sv.nslots, sizeof *sv.slots);
        sv.reqs = malloc(nreqs * sizeof(MPI_Request));
        sv.done_idx = malloc(nreqs * sizeof *sv.done_idx);
        sv.statuses = malloc(nreqs * sizeof *sv.statuses);
        if (!sv.slots || !sv.reqs || !sv.done_idx || !sv.statuses || nreqs > INT_MAX)
            err = nreqs > INT_MAX ? CTH_EOVERFLOW : CTH_ENOMEM;
        for (size_t i = 0; !err && i < nreqs; i++)
            sv.reqs[i] = MPI_REQUEST_NULL;
        /* room for the largest request header, so that receiving one never
         * needs memory (a header dropped for want of it would leave its
         * chunks without a reply) */
        for (int i = 0; !err && i < sv.nslots; i++)
            if (!reserve(&sv.slots[i].req, &sv.slots[i].req_cap, REQ_MAX))
                err = CTH_ENOMEM;
    }
    err = agree(comm[0], root, err, threads, NULL);
    if (!err) {
        atomic_store(&serving, true);
        serve(&sv);
        atomic_store(&serving, false);
    }
    server_free(&sv);
    MPI_Comm_free(&comm[0]);
    MPI_Comm_free(&comm[1]);
    return err ? err : CTH_MPI_WORKER;
}

CTH_API int cth_mpi_pool_create(MPI_Comm comm, int root, const cth_mpi_opts_t *opts,
                                cth_pool_t **pool)
{
    cth_mpi_opts_t o = opts ? *opts : (cth_mpi_opts_t){0};
    int nranks = 0, rank = 0;
    int err = check_args(comm, root, &o, pool, &nranks, &rank);
    if (err)
        return err;
    /* two duplicates: the headers, probed for, and the pieces, only ever
     * received where they are expected (a piece probed for as a header
     * would be lost) */
    MPI_Comm dup[2];
    if (MPI_Comm_dup(comm, &dup[0]) != MPI_SUCCESS)
        return CTH_ENOMEM;
    if (MPI_Comm_dup(comm, &dup[1]) != MPI_SUCCESS) {
        MPI_Comm_free(&dup[0]);
        return CTH_ENOMEM;
    }
    MPI_Comm_set_errhandler(dup[0], MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(dup[1], MPI_ERRORS_RETURN);
    if (rank == root)
        return create_root(dup, root, nranks, &o, pool);
    return create_worker(dup, root, &o);
}
