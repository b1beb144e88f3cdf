/* SPDX-License-Identifier: MIT */
/*
 * http_server.c - a small HTTP/1.1 server on 127.0.0.1, the seed's Flask
 * picture in C, built on the library's own parts:
 *   - the main thread runs an event loop (epoll) that accepts connections
 *     and reads them, without blocking, until a whole request (head, and
 *     the body its Content-Length announces) is buffered; only then does it
 *     hand the connection to the workers, through a cth_queue. A client
 *     that sends half a request and stops costs a buffer, never a worker:
 *     it cannot delay anyone else. Each connection has a deadline (10 s to
 *     finish a request once begun, 30 s idle between keep-alive requests);
 *   - a few named worker threads take connections from that Queue, serve
 *     one request each time, and hand the connection back to the event loop
 *     through a cth_simple_queue (an eventfd wakes the loop);
 *   - each request pushes its context (method, path, request id) on a
 *     LocalStack, and the handlers read it from there: nobody passes the
 *     request around (Flask's `request`, from Werkzeug's LocalStack);
 *   - the request counter is a synchronized block, the configuration a
 *     singleton made by the first request, and each worker keeps its
 *     response buffer in a thread-local.
 * A request may be up to 64 KB, head and body; a longer head is answered
 * 431, a longer body 413, and the connection is then closed gracefully
 * (the rest of the request is read and dropped, so the client sees the
 * answer, not a reset). SIGINT and SIGTERM are blocked in every thread and
 * read from a signalfd in the epoll set: the first one always stops the
 * server, whatever the threads are doing.
 * Pages: "/" (plain text), "/status" (JSON: requests served, active
 * threads from cth_enumerate), anything else 404; GET and HEAD only.
 * Connections are persistent (HTTP/1.1 keep-alive) unless the client sends
 * "Connection: close".
 *
 *     http_server [--port N] [--threads N]
 *
 * Port 0 (the default) picks a free port; the first line printed is
 * "listening on 127.0.0.1:PORT", the last "served N requests".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cthreading.h>

#define MAX_WORKERS 64
#define REQ_MAX 65536     /* the largest request served, head and body */
#define REQ_S 10.0        /* to finish a request once its first byte came */
#define IDLE_S 30.0       /* a keep-alive connection's silence between requests */
#define DRAIN_S 2.0       /* reading what is left after an error answer */
#define SEND_WAIT_MS 5000 /* a client that stops reading its answer */

/* ---- the configuration: a singleton --------------------------------------------- */

struct config {
    char server[64];
    double started;
};

static int make_config(void *arg, void **instance)
{
    (void)arg;
    struct config *c = calloc(1, sizeof *c);
    if (!c)
        return CTH_ENOMEM;
    snprintf(c->server, sizeof c->server, "cthreading-http/1.0");
    c->started = cth_monotonic();
    *instance = c;
    return 0;
}

static cth_singleton_t config_singleton = CTH_SINGLETON_INIT;
static struct config *config_storage; /* kept to free at exit */

static const struct config *config(void)
{
    void *c = NULL;
    if (cth_singleton_get(&config_singleton, make_config, NULL, &c) != 0)
        return NULL;
    return c;
}

/* ---- the request counter: synchronized -------------------------------------------- */

static unsigned long served;

static unsigned long next_request_id(void)
{
    CTH_SYNCHRONIZED {
        return ++served;
    }
    return 0;
}

static unsigned long requests_served(void)
{
    CTH_SYNCHRONIZED {
        return served;
    }
    return 0;
}

/* ---- the request context: a LocalStack ------------------------------------------- */

struct request {
    char method[16];
    char path[256];
    unsigned long id;
};

static cth_local_stack_t *request_stack;

/* Flask's `request`: the current thread's request, read from anywhere. */
static const struct request *current_request(void)
{
    return cth_local_stack_top(request_stack);
}

/* ---- each worker's response buffer: a thread-local -------------------------------- */

struct buffer {
    size_t len, cap;
    char *data;
};

static cth_local_t *out_buffer;

static void buffer_free(void *p)
{
    struct buffer *b = p;
    free(b->data);
    free(b);
}

static int make_buffer(void *arg, void **value)
{
    (void)arg;
    struct buffer *b = calloc(1, sizeof *b);
    if (!b || !(b->data = malloc(b->cap = 16384))) {
        free(b);
        return CTH_ENOMEM;
    }
    *value = b;
    return 0;
}

static void out(const char *fmt, ...)
{
    struct buffer *b = cth_local_get(out_buffer);
    if (!b)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        char *d = realloc(b->data, b->cap * 2);
        if (!d)
            return;
        b->data = d;
        b->cap *= 2;
    }
}

/* ---- the handlers: they take no request argument ---------------------------------- */

static void page_index(void)
{
    const struct request *r = current_request();
    char name[64];
    cth_thread_get_name(cth_current_thread(), name, sizeof name);
    out("Hello from %s\nrequest %lu: %s %s, served by %s\n", config()->server, r->id, r->method,
        r->path, name);
}

static void page_status(void)
{
    const struct request *r = current_request();
    cth_thread_t *threads[MAX_WORKERS + 8];
    size_t n = cth_enumerate(threads, MAX_WORKERS + 8);
    size_t shown = n < MAX_WORKERS + 8 ? n : MAX_WORKERS + 8;
    out("{\"server\": \"%s\", \"request_id\": %lu, \"requests_served\": %lu, "
        "\"uptime_s\": %.3f, \"active_threads\": %zu, \"active_count\": %zu, \"threads\": [",
        config()->server, r->id, requests_served(), cth_monotonic() - config()->started, n,
        cth_active_count());
    for (size_t i = 0; i < shown; i++) {
        char name[64];
        cth_thread_get_name(threads[i], name, sizeof name);
        out("%s\"%s\"", i ? ", " : "", name);
    }
    cth_threads_free(threads, shown);
    out("]}\n");
}

/* Route the current request; returns the status, the body is in the buffer. */
static int dispatch(const char **type)
{
    const struct request *r = current_request();
    *type = "text/plain; charset=utf-8";
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        out("method not allowed\n");
        return 405;
    }
    if (strcmp(r->path, "/") == 0) {
        page_index();
        return 200;
    }
    if (strcmp(r->path, "/status") == 0) {
        *type = "application/json";
        page_status();
        return 200;
    }
    out("not found: %s\n", r->path);
    return 404;
}

/* ---- HTTP ------------------------------------------------------------------------- */

/* Send all of p on the non-blocking socket fd: 0, or -1 if the client went
 * away or stopped reading for SEND_WAIT_MS. */
static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, SEND_WAIT_MS) != 1)
                return -1;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
    }
}

/* Serve one request whose head (NUL-terminated) is in head; returns whether
 * the connection stays open. */
static int serve_request(int fd, char *head)
{
    struct request req = {.id = next_request_id()};
    int bad = sscanf(head, "%15s %255s", req.method, req.path) != 2;
    const char *eol = strchr(head, '\r');
    int keep = eol && eol - head >= 8 && strncmp(eol - 8, "HTTP/1.1", 8) == 0;
    for (char *p = head; (p = strchr(p, '\n')) != NULL; p++) {
        if (strncasecmp(p + 1, "connection:", 11) == 0) {
            const char *v = p + 12;
            while (*v == ' ')
                v++;
            keep = strncasecmp(v, "close", 5) != 0 &&
                   (keep || strncasecmp(v, "keep-alive", 10) == 0);
        }
    }
    struct buffer *b = cth_local_get(out_buffer);
    if (!b)
        return 0;
    b->len = 0;
    const char *type = "text/plain; charset=utf-8";
    int status;
    if (bad || cth_local_stack_push(request_stack, &req) != 0) {
        out("bad request\n");
        status = 400;
        keep = 0;
    } else {
        status = dispatch(&type);
        cth_local_stack_pop(request_stack);
    }
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nServer: %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nX-Request-Id: %lu\r\nConnection: %s\r\n\r\n",
                     status, reason(status), config()->server, type, b->len, req.id,
                     keep ? "keep-alive" : "close");
    if (send_all(fd, hdr, (size_t)n) != 0)
        return 0;
    if (strcmp(req.method, "HEAD") != 0 && send_all(fd, b->data, b->len) != 0)
        return 0;
    return keep;
}

/* ---- connections: owned by the event loop, lent to one worker at a time ------------ */

enum conn_state {
    READING,  /* the event loop reads its next request */
    SERVING,  /* lent to a worker */
    DRAINING, /* answered with an error: reading and dropping until EOF */
};

struct conn {
    int fd;
    enum conn_state state;
    int keep;           /* set by the worker: stays open after its request */
    int eof;            /* the client has closed its side: serve what is buffered, then close */
    size_t len, cap;    /* bytes buffered, buffer size (one more for a NUL) */
    size_t request_len; /* the whole request at the buffer's start, once known */
    double deadline;    /* for READING and DRAINING */
    struct conn *prev, *next; /* every open connection; the event loop's alone */
    char *buf;
};

static struct conn *all_conns;
static int epfd;
static cth_queue_t *work;                /* READING → SERVING: whole requests */
static cth_simple_queue_t *served_conns; /* SERVING → back to the loop */
static int wake_fd;                      /* eventfd: served_conns has news */
static atomic_int wake_pending;

static void conn_close(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        all_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    close(c->fd); /* also leaves the epoll set */
    free(c->buf);
    free(c);
}

/* Watch c for input (one-shot: the loop re-arms it when it wants more). */
static int conn_watch(struct conn *c, int op)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c};
    return epoll_ctl(epfd, op, c->fd, &ev);
}

/* Answer status with a short body, stop sending, and read what the client
 * still sends until it closes (or DRAIN_S): closing a socket with unread
 * input would reset it, and the client would lose the answer. */
static void conn_reject(struct conn *c, int status)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s\n",
                     status, reason(status), strlen(reason(status)) + 1, reason(status));
    if (send(c->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n ||
        shutdown(c->fd, SHUT_WR) != 0 || conn_watch(c, EPOLL_CTL_MOD) != 0) {
        conn_close(c);
        return;
    }
    c->state = DRAINING;
    c->deadline = cth_monotonic() + DRAIN_S;
}

/* The value of header name (with its colon) in the head [p, end), or NULL. */
static const char *header(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL && (size_t)(end - ++p) > n) {
        if (strncasecmp(p, name, n) == 0)
            return p + n;
    }
    return NULL;
}

/* Whether a whole request is buffered (then c->request_len is its length);
 * 0 with *status set when it can never be served (431, 413, 400). */
static int request_ready(struct conn *c, int *status)
{
    *status = 0;
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) {
        if (c->len >= REQ_MAX)
            *status = 431;
        return 0;
    }
    size_t head = (size_t)(end + 4 - c->buf), body = 0;
    if (header(c->buf, end, "transfer-encoding:")) {
        *status = 400; /* chunked bodies are not read */
        return 0;
    }
    const char *cl = header(c->buf, end, "content-length:");
    if (cl) {
        char *stop;
        unsigned long long v = strtoull(cl, &stop, 10);
        if (stop == cl || v > REQ_MAX) {
            *status = stop == cl ? 400 : 413;
            return 0;
        }
        body = (size_t)v;
    }
    if (head + body > REQ_MAX) {
        *status = 413;
        return 0;
    }
    c->request_len = head + body;
    return c->len >= c->request_len;
}

/* Read what c has for us, without blocking; returns 0 at EOF or error. */
static int conn_read(struct conn *c)
{
    for (;;) {
        if (c->len == c->cap) {
            if (c->cap >= REQ_MAX)
                return 1; /* full: request_ready decides */
            size_t cap = c->cap * 2 > REQ_MAX ? REQ_MAX : c->cap * 2;
            char *b = realloc(c->buf, cap + 1);
            if (!b)
                return 0;
            c->buf = b;
            c->cap = cap;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r > 0) {
            c->len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && errno == EAGAIN;
    }
}

/* c (READING) has new input, or is back from a worker: read, then lend it
 * to a worker if a whole request is there, else wait for more. */
static void conn_advance(struct conn *c, int readable)
{
    size_t before = c->len;
    if (readable && !conn_read(c))
        c->eof = 1;
    if (before == 0 && c->len > 0)
        c->deadline = cth_monotonic() + REQ_S; /* a request began */
    int status;
    int ready = request_ready(c, &status);
    if (c->eof && !ready) {
        conn_close(c);
    } else if (ready) {
        c->state = SERVING;
        if (cth_queue_put(work, c, CTH_FOREVER) != 0)
            conn_close(c);
    } else if (status) {
        conn_reject(c, status);
    } else if (conn_watch(c, EPOLL_CTL_MOD) != 0) {
        conn_close(c);
    }
}

/* Drop what a rejected client still sends; close at its EOF. */
static void conn_drain(struct conn *c)
{
    char sink[4096];
    ssize_t r;
    while ((r = recv(c->fd, sink, sizeof sink, 0)) > 0 || (r < 0 && errno == EINTR))
        ;
    if ((r < 0 && errno != EAGAIN) || r == 0 || conn_watch(c, EPOLL_CTL_MOD) != 0)
        conn_close(c);
}

/* ---- the workers: a Queue of whole requests in, a SimpleQueue back --------------- */

static void *worker(void *arg)
{
    (void)arg;
    void *item;
    while (cth_queue_get(work, &item, CTH_FOREVER) == 0) { /* CTH_ESHUTDOWN ends it */
        struct conn *c = item;
        char *head_end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        head_end[2] = '\0'; /* the head, its last line ending kept */
        c->keep = serve_request(c->fd, c->buf);
        c->len -= c->request_len; /* pipelined requests stay buffered */
        memmove(c->buf, c->buf + c->request_len, c->len);
        if (cth_simple_queue_put(served_conns, c) != 0)
            abort(); /* out of memory: the connection would be lost */
        if (atomic_exchange(&wake_pending, 1) == 0) { /* one wake-up at a time */
            uint64_t one = 1;
            if (write(wake_fd, &one, sizeof one) < 0)
                perror("http_server: eventfd");
        }
    }
    return NULL;
}

/* The event loop takes back the connections the workers have served. */
static void take_back_served(void)
{
    /* the eventfd first, then the flag: a worker that finds the flag down
     * writes the eventfd again, and reading the flag (an exchange, not a
     * store) orders the puts of those that found it up before the drain */
    uint64_t count;
    if (read(wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        perror("http_server: eventfd");
    atomic_exchange(&wake_pending, 0);
    void *item;
    while (cth_simple_queue_get_nowait(served_conns, &item) == 0) {
        struct conn *c = item;
        if (!c->keep || c->eof) {
            conn_close(c);
            continue;
        }
        c->state = READING;
        c->deadline = cth_monotonic() + (c->len ? REQ_S : IDLE_S);
        conn_advance(c, 0);
    }
}

/* Close the connections past their deadline: a request begun and not
 * finished is answered 408 first. */
static void sweep(double now)
{
    struct conn *next;
    for (struct conn *c = all_conns; c; c = next) {
        next = c->next;
        if (c->state == SERVING || c->deadline > now)
            continue;
        if (c->state == READING && c->len > 0)
            conn_reject(c, 408);
        else
            conn_close(c);
    }
}

static void accept_all(int ls)
{
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return; /* EAGAIN: none left (or an error: try again on the next event) */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c || !(c->buf = malloc((c->cap = 2048) + 1))) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->state = READING;
        c->deadline = cth_monotonic() + IDLE_S;
        c->next = all_conns;
        if (all_conns)
            all_conns->prev = c;
        all_conns = c;
        if (conn_watch(c, EPOLL_CTL_ADD) != 0)
            conn_close(c);
    }
}

/* ---- main: the event loop ------------------------------------------------------------ */

int main(int argc, char **argv)
{
    int port = 0, nworkers = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            nworkers = atoi(argv[i + 1]);
    }
    if (nworkers < 1 || nworkers > MAX_WORKERS || port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s [--port N] [--threads 1..%d]\n", argv[0], MAX_WORKERS);
        return 2;
    }
    /* blocked before any thread starts, so every thread inherits the mask
     * and the signals wait in the signalfd for the event loop */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    int sig_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &ls};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &wake_fd};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &sig_fd};
    if (sig_fd < 0 || ls < 0 || epfd < 0 || wake_fd < 0 ||
        bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 512) != 0 ||
        getsockname(ls, (struct sockaddr *)&addr, &alen) != 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &lev) != 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, wake_fd, &wev) != 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, sig_fd, &sev) != 0) {
        perror("http_server: listen");
        return 1;
    }

    cth_local_opts_t bopts = {.free_item = buffer_free, .init = make_buffer};
    if (cth_queue_create(&work, 0, NULL) != 0 ||
        cth_simple_queue_create(&served_conns, NULL) != 0 ||
        cth_local_stack_create(&request_stack, NULL) != 0 ||
        cth_local_create(&out_buffer, &bopts) != 0 || !config()) {
        fprintf(stderr, "http_server: out of memory\n");
        return 1;
    }
    config_storage = (struct config *)config();

    cth_thread_t *workers[MAX_WORKERS];
    for (int i = 0; i < nworkers; i++) {
        char name[32];
        snprintf(name, sizeof name, "worker-%d", i + 1);
        cth_thread_opts_t opts = {.name = name};
        if (cth_thread_create(&workers[i], worker, NULL, &opts) != 0 ||
            cth_thread_start(workers[i]) != 0) {
            fprintf(stderr, "http_server: cannot start workers\n");
            return 1;
        }
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    int stopping = 0;
    double next_sweep = cth_monotonic() + 1;
    while (!stopping) {
        struct epoll_event ev[64];
        int n = epoll_wait(epfd, ev, 64, 1000);
        if (n < 0 && errno != EINTR) {
            perror("http_server: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &ls) {
                accept_all(ls);
            } else if (p == &wake_fd) {
                take_back_served();
            } else if (p == &sig_fd) {
                stopping = 1;
            } else {
                struct conn *c = p;
                if (c->state == DRAINING)
                    conn_drain(c);
                else
                    conn_advance(c, 1);
            }
        }
        double now = cth_monotonic();
        if (now >= next_sweep) {
            sweep(now);
            next_sweep = now + 1;
        }
    }
    /* stop: the requests already handed out are served; then every
     * connection still open is closed */
    cth_queue_shutdown(work, false);
    for (int i = 0; i < nworkers; i++) {
        cth_thread_join(workers[i], NULL, CTH_FOREVER);
        cth_thread_free(workers[i]);
    }
    while (all_conns)
        conn_close(all_conns);
    close(ls);
    close(wake_fd);
    close(sig_fd);
    close(epfd);
    printf("served %lu requests\n", requests_served());
    cth_queue_free(work);
    cth_simple_queue_free(served_conns);
    cth_local_free(out_buffer);
    cth_local_stack_free(request_stack);
    free(config_storage);
    return 0;
}
