/* SPDX-License-Identifier: MIT */
/*
 * bench_http.c - examples/http_server under wrk: requests per second over
 * keep-alive connections on loopback (higher is better), with every
 * response checked (status 200 and the expected body, by a wrk Lua
 * script), against two Python servers with the same routes ("/" in plain
 * text, "/status" in JSON, 404 otherwise): http.server's
 * ThreadingHTTPServer (a thread per connection) and a Flask app on
 * Werkzeug's threaded server (Debian's python3-flask; its `request` lives
 * in Werkzeug's context locals, as the C server's in a LocalStack). A run
 * with any bad response, socket error or timeout counts as n/a, and so
 * does a system that is missing (wrk, python3, Flask). Each run is bounded:
 * wrk runs under `timeout`.
 * Environment: CTH_BENCH_HTTP_SECONDS (default 10) per run,
 * CTH_BENCH_HTTP_REPS (default 1) runs per system.
 */
#include "bench.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static const char wrk_script[] =
    "local threads = {}\n"
    "function setup(thread) table.insert(threads, thread) end\n"
    "function init(args) good = 0; bad = 0 end\n"
    "function response(status, headers, body)\n"
    "  if status == 200 and body:find('Hello from', 1, true) then good = good + 1\n"
    "  else bad = bad + 1 end\n"
    "end\n"
    "function done(summary, latency, requests)\n"
    "  local g, b = 0, 0\n"
    "  for _, t in ipairs(threads) do g = g + t:get('good'); b = b + t:get('bad') end\n"
    "  local e = summary.errors\n"
    "  io.write(string.format('checked %d %d %d\\n', g, b,\n"
    "    e.connect + e.read + e.write + e.status + e.timeout))\n"
    "end\n";

static const char python_server[] =
    "import http.server, json, sys, threading\n"
    "lock = threading.Lock(); n = 0\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    disable_nagle_algorithm = True\n"
    "    def do_GET(self):\n"
    "        global n\n"
    "        with lock:\n"
    "            n += 1; i = n\n"
    "        name = threading.current_thread().name\n"
    "        if self.path == '/':\n"
    "            status, kind = 200, 'text/plain; charset=utf-8'\n"
    "            body = 'Hello from python\\nrequest %d: GET %s, served by %s\\n' % (i, self.path, "
    "name)\n"
    "        elif self.path == '/status':\n"
    "            status, kind = 200, 'application/json'\n"
    "            body = json.dumps({'server': 'python', 'request_id': i, 'requests_served': n,\n"
    "                               'active_count': threading.active_count()}) + '\\n'\n"
    "        else:\n"
    "            status, kind, body = 404, 'text/plain; charset=utf-8', 'not found: %s\\n' % "
    "self.path\n"
    "        body = body.encode()\n"
    "        self.send_response(status)\n"
    "        self.send_header('Content-Type', kind)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "print('listening on 127.0.0.1:%d' % s.server_address[1], flush=True)\n"
    "s.serve_forever()\n";

static const char flask_server[] =
    "import threading\n"
    "from flask import Flask, jsonify, request\n"
    "from werkzeug.serving import make_server\n"
    "app = Flask(__name__); lock = threading.Lock(); n = 0\n"
    "def next_id():\n"
    "    global n\n"
    "    with lock:\n"
    "        n += 1; return n\n"
    "@app.route('/')\n"
    "def index():\n"
    "    return ('Hello from flask\\nrequest %d: %s %s, served by %s\\n' % (next_id(),\n"
    "            request.method, request.path, threading.current_thread().name),\n"
    "            200, {'Content-Type': 'text/plain; charset=utf-8'})\n"
    "@app.route('/status')\n"
    "def status():\n"
    "    return jsonify(server='flask', request_id=next_id(), requests_served=n,\n"
    "                   active_count=threading.active_count())\n"
    "s = make_server('127.0.0.1', 0, app, threaded=True)\n"
    "print('listening on 127.0.0.1:%d' % s.server_port, flush=True)\n"
    "s.serve_forever()\n";

static int seconds(void)
{
    const char *s = getenv("CTH_BENCH_HTTP_SECONDS");
    int n = s && *s ? atoi(s) : 10;
    return n < 1 ? 1 : n;
}

static char script_path[] = "/tmp/cth_bench_wrk_XXXXXX";

/* Start argv[0] (with argv), read its "listening on" line; returns the port
 * (and *pid), or 0. */
static int start_server(char *const argv[], pid_t *pid)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    fflush(stdout);
    *pid = fork();
    if (*pid < 0)
        return 0;
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2); /* resets at the end of a run are no news */
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[128];
    int port = 0;
    if (f && fgets(line, sizeof line, f))
        sscanf(line, "listening on 127.0.0.1:%d", &port);
    if (f)
        fclose(f); /* the server's later output goes nowhere */
    return port;
}

static void stop_server(pid_t pid)
{
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
}

/* wrk against the server started by argv: requests per second, or NAN. */
static double run_wrk(const char *name, char *const argv[])
{
    if (system("command -v wrk >/dev/null 2>&1") != 0)
        return NAN;
    pid_t pid;
    int port = start_server(argv, &pid);
    if (!port) {
        if (pid > 0)
            stop_server(pid);
        return NAN;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "timeout %d wrk -t2 -c32 -d%ds --timeout 5s -s %s http://127.0.0.1:%d/ 2>&1",
             seconds() + 30, seconds(), script_path, port);
    FILE *p = popen(cmd, "r");
    double rps = NAN;
    long good = -1, bad = -1, errors = -1;
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        sscanf(line, "Requests/sec: %lf", &rps);
        sscanf(line, "checked %ld %ld %ld", &good, &bad, &errors);
    }
    if (p)
        pclose(p);
    stop_server(pid);
    printf("    (%s: %ld responses checked, %ld bad, %ld socket errors)\n", name, good, bad,
           errors);
    return good > 0 && bad == 0 && errors == 0 ? rps : NAN;
}

static char server_path[PATH_MAX + 64];

static double run_cthreading(void *ctx)
{
    (void)ctx;
    char *argv[] = {server_path, "--threads", "4", NULL};
    return run_wrk("cthreading", argv);
}

static double run_python(void *ctx)
{
    (void)ctx;
    char *argv[] = {"python3", "-c", (char *)python_server, NULL};
    return run_wrk("ThreadingHTTPServer", argv);
}

static double run_flask(void *ctx)
{
    (void)ctx;
    if (system("python3 -c 'import flask' >/dev/null 2>&1") != 0)
        return NAN;
    char *argv[] = {"python3", "-c", (char *)flask_server, NULL};
    return run_wrk("Flask", argv);
}

int main(int argc, char **argv)
{
    bench_no_arguments(argc, argv);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 1;
    exe[n] = '\0';
    snprintf(server_path, sizeof server_path, "%s/../examples/http_server", dirname(exe));
    int fd = mkstemp(script_path);
    if (fd < 0)
        return 1;
    if (write(fd, wrk_script, sizeof wrk_script - 1) != (ssize_t)(sizeof wrk_script - 1))
        return 1;
    close(fd);

    const char *r = getenv("CTH_BENCH_HTTP_REPS");
    int reps = r && *r ? atoi(r) : 1;
    if (reps < 1)
        reps = 1;
    printf("\nHTTP server under wrk (-t2 -c32, %d s a run, keep-alive; every response checked)\n",
           seconds());
    if (system("command -v wrk >/dev/null 2>&1") != 0)
        printf("  wrk is not on the PATH (Debian: apt-get install wrk): every row is n/a\n");
    if (system("python3 -c 'import flask' >/dev/null 2>&1") != 0)
        printf(
            "  Flask is not installed (Debian: apt-get install python3-flask): its row is n/a\n");
    bench_heading("requests per second (higher is better)");
    struct bench_system sys[] = {
        {"cthreading http_server (4 workers)", run_cthreading, NULL},
        {"python ThreadingHTTPServer", run_python, NULL},
        {"python Flask, threaded (Werkzeug)", run_flask, NULL},
    };
    bench_compare("http GET /", "throughput", "req/s", sys, 3, reps, NULL);
    remove(script_path);
    return 0;
}
