/* SPDX-License-Identifier: MIT */
/*
 * test_http_server.c - examples/http_server, the user of synchronized,
 * singleton, local and LocalStack: starts the built example on a free
 * loopback port (fork/exec from the build tree), checks its pages with curl
 * and with concurrent raw-socket clients (every request id unique: the
 * synchronized counter), then stops it with SIGTERM.
 */
#include <arpa/inet.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include "check.h"

struct server {
    pid_t pid;
    int port;
    FILE *out;
};

static void server_start(struct server *s, int threads)
{
    char exe[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    snprintf(path, sizeof path, "%s/../examples/http_server", dirname(exe));
    CHECK(access(path, X_OK) == 0);
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    s->pid = fork();
    CHECK(s->pid >= 0);
    if (s->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char nthreads[16];
        snprintf(nthreads, sizeof nthreads, "%d", threads);
        execl(path, "http_server", "--port", "0", "--threads", nthreads, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    s->out = fdopen(fds[0], "r");
    CHECK(s->out);
    char line[128];
    CHECK(fgets(line, sizeof line, s->out));
    CHECK(sscanf(line, "listening on 127.0.0.1:%d", &s->port) == 1);
    CHECK(s->port > 0);
}

/* SIGTERM: the server stops cleanly and says how many requests it served. */
static long server_stop(struct server *s)
{
    CHECK_OK(kill(s->pid, SIGTERM));
    char line[128];
    long served = -1;
    while (fgets(line, sizeof line, s->out))
        sscanf(line, "served %ld requests", &served);
    fclose(s->out);
    int status;
    CHECK(waitpid(s->pid, &status, 0) == s->pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return served;
}

static int have_curl(void)
{
    return system("command -v curl >/dev/null 2>&1") == 0;
}

/* Run curl with args; its output in out; curl must succeed. */
static void curl(const char *args, char *out, size_t size)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "curl -s -S --max-time 10 %s", args);
    FILE *f = popen(cmd, "r");
    CHECK(f);
    size_t len = fread(out, 1, size - 1, f);
    out[len] = '\0';
    CHECK_EQ(pclose(f), 0);
}

CTH_TEST(pages_with_curl)
{
    if (!have_curl()) {
        CHECK_SKIP("curl not found");
    }
    struct server s;
    server_start(&s, 3);
    char args[256], out[8192];

    snprintf(args, sizeof args, "-i http://127.0.0.1:%d/", s.port);
    curl(args, out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "Content-Type: text/plain"));
    CHECK(strstr(out, "request 1: GET /, served by worker-")); /* the LocalStack's context */
    CHECK(strstr(out, "Hello from cthreading-http/1.0"));      /* the singleton's config */

    snprintf(args, sizeof args, "-i http://127.0.0.1:%d/status", s.port);
    curl(args, out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "Content-Type: application/json"));
    CHECK(strstr(out, "\"requests_served\": 2"));
    CHECK(strstr(out, "\"active_threads\": 4")); /* main + 3 workers, from cth_enumerate */
    CHECK(strstr(out, "\"MainThread\""));
    CHECK(strstr(out, "\"worker-3\""));

    snprintf(args, sizeof args, "-i http://127.0.0.1:%d/missing", s.port);
    curl(args, out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    CHECK(strstr(out, "not found: /missing"));

    snprintf(args, sizeof args, "-i -X POST http://127.0.0.1:%d/", s.port);
    curl(args, out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);

    snprintf(args, sizeof args, "-I http://127.0.0.1:%d/", s.port); /* HEAD: no body */
    curl(args, out, sizeof out);
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "Hello") == NULL);

    /* keep-alive: two requests on one connection, two ids */
    snprintf(args, sizeof args, "http://127.0.0.1:%d/ http://127.0.0.1:%d/", s.port, s.port);
    curl(args, out, sizeof out);
    CHECK(strstr(out, "request 6: GET /"));
    CHECK(strstr(out, "request 7: GET /"));

    CHECK_EQ(server_stop(&s), 7);
}

#define CLIENTS 8
static int client_port;
static unsigned char seen_ids[CLIENTS * 1000 + 1];

static void *client(void *arg)
{
    long n = *(long *)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)client_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(connect(fd, (struct sockaddr *)&a, sizeof a));
    for (long i = 0; i < n; i++) {
        const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK(send(fd, req, sizeof req - 1, 0) == (ssize_t)(sizeof req - 1));
        char buf[2048];
        size_t len = 0;
        char *body;
        long clen = -1;
        /* read the head, then Content-Length bytes */
        for (;;) {
            ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            CHECK(r > 0);
            len += (size_t)r;
            buf[len] = '\0';
            body = strstr(buf, "\r\n\r\n");
            if (body) {
                char *cl = strstr(buf, "Content-Length: ");
                CHECK(cl);
                clen = atol(cl + 16);
                if ((long)(len - (size_t)(body + 4 - buf)) >= clen)
                    break;
            }
        }
        CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
        unsigned long id = strtoul(strstr(buf, "X-Request-Id: ") + 14, NULL, 10);
        CHECK(id >= 1 && id < sizeof seen_ids);
        CHECK(strstr(body, "request "));
        CHECK_EQ(strtoul(strstr(body, "request ") + 8, NULL, 10), id); /* the right context */
        seen_ids[id]++; /* ids are unique, so each byte has one writer */
    }
    close(fd);
    return NULL;
}

/* Concurrent keep-alive clients: every response is correct and carries its
 * own request's context, and the synchronized counter gives every request
 * a different id. */
CTH_TEST(concurrent_clients_unique_ids)
{
    struct server s;
    server_start(&s, 4);
    client_port = s.port;
    long n = check_iters(200);
    if (n > 1000)
        n = 1000;
    cth_thread_t *t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        CHECK_OK(cth_thread_create(&t[i], client, &n, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < CLIENTS; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
    }
    for (long id = 1; id <= CLIENTS * n; id++)
        CHECK_EQ(seen_ids[id], 1);
    CHECK_EQ(server_stop(&s), CLIENTS * n);
}

/* A raw-socket client: connect to the server on port, with a receive
 * timeout of 5 s so that a silent server fails the test instead of hanging. */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct timeval limit = {.tv_sec = 5};
    CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(connect(fd, (struct sockaddr *)&a, sizeof a));
    return fd;
}

/* Send request (len bytes, all of it) on a new connection and read the
 * answer until the server closes or 5 s pass; returns its status code. */
static int raw_exchange(int port, const char *request, size_t len)
{
    int fd = raw_connect(port);
    for (size_t sent = 0; sent < len;) {
        ssize_t w = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        CHECK(w > 0);
        sent += (size_t)w;
    }
    char reply[4096];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof reply - 1 && (r = recv(fd, reply + got, sizeof reply - 1 - got, 0)) > 0)
        got += (size_t)r; /* a reset here (r < 0) would fail the status check below */
    reply[got] = '\0';
    close(fd);
    int status = 0;
    CHECK(sscanf(reply, "HTTP/1.1 %d", &status) == 1);
    return status;
}

/* A request with a header of size bytes (and Connection: close, so that
 * the server ends the exchange). */
static char *request_with_header(size_t size, size_t *len)
{
    char *req = malloc(size + 128);
    CHECK(req);
    int n = sprintf(req, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ");
    memset(req + n, 'a', size);
    memcpy(req + n + size, "\r\n\r\n", 4);
    *len = (size_t)n + size + 4;
    return req;
}

/* Ten clients that send half a request and stop hold no worker: a full
 * request sent after them is answered at once (the bound is generous). */
CTH_TEST(half_requests_do_not_delay_others)
{
    struct server s;
    server_start(&s, 4);
    int idle[10];
    for (int i = 0; i < 10; i++) {
        idle[i] = raw_connect(s.port);
        const char half[] = "GET / HTTP/1.1\r\nHost: x\r\n";
        CHECK(send(idle[i], half, sizeof half - 1, 0) == (ssize_t)(sizeof half - 1));
    }
    const char full[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    double t0 = check_now();
    CHECK_EQ(raw_exchange(s.port, full, sizeof full - 1), 200);
    CHECK(check_now() - t0 < 2.0);
    for (int i = 0; i < 10; i++)
        close(idle[i]);
    CHECK_EQ(server_stop(&s), 1);
}

/* Requests up to 64 KB are served; a longer head is answered 431, a longer
 * body 413: an answer in both cases, never a reset. */
CTH_TEST(large_requests_answered)
{
    struct server s;
    server_start(&s, 2);
    size_t len;
    char *req = request_with_header(9 * 1024, &len);
    CHECK_EQ(raw_exchange(s.port, req, len), 200);
    free(req);
    req = request_with_header(70 * 1024, &len);
    int status = raw_exchange(s.port, req, len);
    CHECK(status == 431 || status == 413);
    free(req);
    char *post = malloc(70 * 1024 + 128);
    CHECK(post);
    int n = sprintf(post, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 70 * 1024);
    memset(post + n, 'b', 70 * 1024);
    CHECK_EQ(raw_exchange(s.port, post, (size_t)n + 70 * 1024), 413);
    free(post);
    CHECK_EQ(server_stop(&s), 1);
}

/* The first SIGINT stops the server cleanly (exit 0, its last line
 * printed), idle and half-request connections open or not, every time. */
CTH_TEST(first_sigint_stops)
{
    for (int round = 0; round < 5; round++) {
        struct server s;
        server_start(&s, 4);
        int half = raw_connect(s.port);
        CHECK(send(half, "GET /", 5, 0) == 5);
        const char full[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        CHECK_EQ(raw_exchange(s.port, full, sizeof full - 1), 200);
        double t0 = check_now();
        CHECK_OK(kill(s.pid, SIGINT));
        char line[128];
        long served = -1;
        while (fgets(line, sizeof line, s.out))
            sscanf(line, "served %ld requests", &served);
        fclose(s.out);
        int status;
        CHECK(waitpid(s.pid, &status, 0) == s.pid);
        CHECK(check_now() - t0 < 2.0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK_EQ(served, 1);
        close(half);
    }
}

/* A SIGTERM stops the server as SIGINT does, every time: the server
 * blocks both in every thread and reads them from a signalfd in its event
 * loop, so whichever thread the kernel would have picked, the loop wakes
 * (a handler that only set a flag once left the loop asleep in
 * epoll_wait when it ran in a worker). */
CTH_TEST(sigterm_stops_server)
{
    for (int round = 0; round < 5; round++) {
        struct server s;
        server_start(&s, 2);
        CHECK_OK(kill(s.pid, SIGTERM));
        int status = 0;
        pid_t done = 0;
        for (int i = 0; i < 2000 && (done = waitpid(s.pid, &status, WNOHANG)) == 0; i++)
            usleep(10000);
        if (done == 0) { /* hung: do not leave it behind */
            kill(s.pid, SIGKILL);
            waitpid(s.pid, &status, 0);
        }
        CHECK_EQ(done, s.pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        fclose(s.out);
    }
}
