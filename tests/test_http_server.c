/* SPDX-License-Identifier: MIT */
/*
 * test_http_server.c - examples/http_server, the user of synchronized,
 * singleton, local and LocalStack: starts the built example on a free
 * loopback port (fork/exec from the build tree), checks its pages with curl
 * and with concurrent raw-socket clients (every request id unique: the
 * synchronized counter), then stops it with SIGTERM.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

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

/* The thread of the server named name, or 0 if it has none (yet). */
static pid_t server_thread(const struct server *s, const char *name)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)s->pid);
    DIR *d = opendir(dir);
    CHECK(d);
    pid_t tid = 0;
    struct dirent *e;
    while (!tid && (e = readdir(d)) != NULL) {
        char path[600], comm[32] = "";
        snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f) && strncmp(comm, name, strlen(name)) == 0 &&
            comm[strlen(name)] == '\n')
            tid = (pid_t)atoi(e->d_name);
        fclose(f);
    }
    closedir(d);
    return tid;
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

/* A SIGTERM whose handler runs in a worker thread, not in the event loop's
 * (a process-directed signal may land there; TSan's deferred signals do
 * the like), still stops the server: the loop's epoll_wait is not
 * interrupted then, so the handler must wake it. */
CTH_TEST(sigterm_in_worker_thread_stops_server)
{
    struct server s;
    server_start(&s, 2);
    pid_t tid = 0;
    for (int i = 0; i < 1000 && !(tid = server_thread(&s, "worker-1")); i++)
        usleep(1000);
    CHECK(tid > 0);
    CHECK_OK((int)syscall(SYS_tgkill, (int)s.pid, (int)tid, SIGTERM));
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
