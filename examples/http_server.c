/* SPDX-License-Identifier: MIT */
/*
 * http_server.c - a small HTTP/1.1 server on 127.0.0.1, the seed's Flask
 * picture in C:
 *   - a pool of worker threads serves the requests; the main thread's
 *     event loop (epoll) accepts connections and hands each connection that
 *     has a request waiting to the workers through a queue (a Condition
 *     over a ring), so a few workers serve any number of keep-alive
 *     connections;
 *   - each request pushes its context (method, path, request id) on a
 *     LocalStack, and the handlers read it from there: nobody passes the
 *     request around;
 *   - the request counter is a synchronized block, the configuration a
 *     singleton made by the first request, and each worker keeps its
 *     response buffer in a thread-local.
 * Pages: "/" (plain text), "/status" (JSON: requests served, active
 * threads from cth_enumerate), anything else 404; GET and HEAD only.
 * Connections are persistent (HTTP/1.1 keep-alive) unless the client sends
 * "Connection: close".
 *
 *     http_server [--port N] [--threads N]
 *
 * Port 0 (the default) picks a free port; the first line printed is
 * "listening on 127.0.0.1:PORT". SIGINT or SIGTERM stops it cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cthreading.h>

#define QUEUE_CAP 1024
#define MAX_WORKERS 64
#define REQ_MAX 8192
#define IDLE_S 2

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

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
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
    default: return "Internal Server Error";
    }
}

/* Serve one parsed request head (NUL-terminated); returns whether the
 * connection stays open. */
static int serve_request(int fd, char *head)
{
    struct request req = {.id = next_request_id()};
    int bad = sscanf(head, "%15s %255s", req.method, req.path) != 2;
    int keep = strstr(head, "HTTP/1.1") != NULL;
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

/* ---- connections ------------------------------------------------------------------ */

/* A connection and the bytes read from it but not yet served. One worker
 * at a time owns it (epoll's one-shot mode hands it to one). */
struct conn {
    int fd;
    size_t len;
    struct conn *prev, *next; /* all_conns, under conns_lock */
    struct conn *rearm_next;  /* rearm_list, under rearm_lock */
    char buf[REQ_MAX + 1];
};

/* Every open connection, to free them at the end. A shared container: it is
 * changed in place under its lock, never replaced (the seed's rule). */
static cth_lock_t conns_lock = CTH_LOCK_INIT;
static struct conn *all_conns;
static int epfd;

/* Connections served and waiting to be watched again. Only the event loop
 * calls epoll_ctl: a worker hands a connection back through this list (and
 * the eventfd wakes the loop), so every hand-off goes through a lock and
 * never through the kernel alone. */
static cth_lock_t rearm_lock = CTH_LOCK_INIT;
static struct conn *rearm_list;
static int rearm_fd;

static void conn_close(struct conn *c)
{
    CTH_SYNCHRONIZED_ON(&conns_lock) {
        if (c->prev)
            c->prev->next = c->next;
        else
            all_conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    close(c->fd); /* also leaves the epoll set */
    free(c);
}

/* Serve the requests waiting on a connection: read until at least one whole
 * head is there, serve every whole head buffered (pipelining); returns
 * whether the connection stays open. */
static int serve_connection(struct conn *c)
{
    for (;;) {
        char *end;
        c->buf[c->len] = '\0';
        while ((end = strstr(c->buf, "\r\n\r\n")) == NULL) {
            if (c->len == REQ_MAX)
                return 0;
            ssize_t r = recv(c->fd, c->buf + c->len, REQ_MAX - c->len, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return 0;
            c->len += (size_t)r;
            c->buf[c->len] = '\0';
        }
        *end = '\0';
        size_t used = (size_t)(end + 4 - c->buf);
        if (!serve_request(c->fd, c->buf))
            return 0;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if (c->len == 0)
            return 1; /* nothing more buffered: back to the event loop */
    }
}

/* ---- the worker pool: threads fed by the event loop ------------------------------- */

static cth_cond_t queue_cond = CTH_COND_INIT;
static struct conn *queue[QUEUE_CAP];
static size_t q_head, q_len;
static int q_closed;

static int queue_put(struct conn *c)
{
    cth_cond_acquire(&queue_cond, CTH_FOREVER);
    while (q_len == QUEUE_CAP && !q_closed)
        cth_cond_wait(&queue_cond, CTH_FOREVER);
    int ok = !q_closed;
    if (ok) {
        queue[(q_head + q_len++) % QUEUE_CAP] = c;
        cth_cond_notify(&queue_cond, 1);
    }
    cth_cond_release(&queue_cond);
    return ok;
}

/* The next connection with a request waiting, or NULL once the queue is
 * closed and drained. */
static struct conn *queue_get(void)
{
    cth_cond_acquire(&queue_cond, CTH_FOREVER);
    while (q_len == 0 && !q_closed)
        cth_cond_wait(&queue_cond, CTH_FOREVER);
    struct conn *c = NULL;
    if (q_len) {
        c = queue[q_head];
        q_head = (q_head + 1) % QUEUE_CAP;
        q_len--;
        cth_cond_notify_all(&queue_cond); /* a full queue's producer */
    }
    cth_cond_release(&queue_cond);
    return c;
}

static void queue_close(void)
{
    cth_cond_acquire(&queue_cond, CTH_FOREVER);
    q_closed = 1;
    cth_cond_notify_all(&queue_cond);
    cth_cond_release(&queue_cond);
}

/* Watch c for its next request (one-shot: one worker gets it). */
static int conn_watch(struct conn *c, int op)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c};
    return epoll_ctl(epfd, op, c->fd, &ev);
}

static void *worker(void *arg)
{
    (void)arg;
    struct conn *c;
    while ((c = queue_get()) != NULL) {
        if (!serve_connection(c)) {
            conn_close(c);
            continue;
        }
        int was_empty = 0;
        CTH_SYNCHRONIZED_ON(&rearm_lock) {
            was_empty = rearm_list == NULL;
            c->rearm_next = rearm_list;
            rearm_list = c;
        }
        if (was_empty) { /* the loop empties the list on each wake-up */
            uint64_t one = 1;
            if (write(rearm_fd, &one, sizeof one) < 0)
                perror("http_server: eventfd");
        }
    }
    return NULL;
}

/* The event loop: watch again the connections the workers handed back. */
static void rearm_all(void)
{
    uint64_t count;
    if (read(rearm_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        perror("http_server: eventfd");
    struct conn *list = NULL;
    CTH_SYNCHRONIZED_ON(&rearm_lock) {
        list = rearm_list;
        rearm_list = NULL;
    }
    while (list) {
        struct conn *c = list;
        list = c->rearm_next;
        if (conn_watch(c, EPOLL_CTL_MOD) != 0)
            conn_close(c);
    }
}

/* ---- main: the event loop ------------------------------------------------------------ */

static volatile sig_atomic_t stopping;

/* The handler may run in any thread, and at any moment: between the loop's
 * look at the flag and epoll_wait, or on the way into epoll_wait (TSan
 * defers a signal to its next interceptor), with no EINTR either way. So
 * it also makes the loop's eventfd readable: epoll_wait returns, and the
 * loop sees the flag. */
static void on_signal(int sig)
{
    (void)sig;
    int saved_errno = errno;
    stopping = 1;
    uint64_t one = 1;
    ssize_t w = write(rearm_fd, &one, sizeof one); /* fails only when readable already */
    (void)w;
    errno = saved_errno;
}

static void accept_all(int ls)
{
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: none left (or an error: try again on the next event) */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* a client that sends half a request is dropped after IDLE_S
         * seconds, so that it cannot hold a worker (or a stopping server) */
        struct timeval idle = {.tv_sec = IDLE_S};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->len = 0;
        c->prev = NULL;
        CTH_SYNCHRONIZED_ON(&conns_lock) {
            c->next = all_conns;
            if (all_conns)
                all_conns->prev = c;
            all_conns = c;
        }
        if (conn_watch(c, EPOLL_CTL_ADD) != 0)
            conn_close(c);
    }
}

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
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    rearm_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    struct epoll_event rev = {.events = EPOLLIN, .data.ptr = &rearm_fd};
    if (ls < 0 || epfd < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(ls, 512) != 0 || getsockname(ls, (struct sockaddr *)&addr, &alen) != 0 ||
        rearm_fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &lev) != 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, rearm_fd, &rev) != 0) {
        perror("http_server: listen");
        return 1;
    }
    struct sigaction sa; /* once rearm_fd is there for the handler */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    cth_local_opts_t bopts = {.free_item = buffer_free, .init = make_buffer};
    if (cth_local_stack_create(&request_stack, NULL) != 0 ||
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

    while (!stopping) {
        struct epoll_event ev[64];
        int n = epoll_wait(epfd, ev, 64, -1);
        if (n < 0 && errno != EINTR) {
            perror("http_server: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (!c)
                accept_all(ls);
            else if (ev[i].data.ptr == &rearm_fd)
                rearm_all();
            else if (!queue_put(c))
                conn_close(c);
        }
    }
    /* stop: requests already handed out are served; then every connection
     * still open is closed */
    queue_close();
    for (int i = 0; i < nworkers; i++) {
        cth_thread_join(workers[i], NULL, CTH_FOREVER);
        cth_thread_free(workers[i]);
    }
    while (all_conns)
        conn_close(all_conns);
    close(ls);
    close(rearm_fd);
    close(epfd);
    printf("served %lu requests\n", requests_served());
    cth_local_free(out_buffer);
    cth_local_stack_free(request_stack);
    free(config_storage);
    return 0;
}
