/* SPDX-License-Identifier: MIT */
/*
 * proc_launch.c - starting, watching and reaping the worker processes of a
 * process pool (Linux).
 *
 * Every worker is watched through a pidfd, never its pid alone: a pidfd
 * names one process for as long as it is open, so a pid the system has
 * reused is never signalled or waited for by mistake. pidfd_send_signal
 * kills, poll on the pidfd tells whether the worker has ended, and
 * waitid(P_PIDFD) reaps a worker that is the caller's own child.
 * FORK: fork() in the calling thread; the child sets PR_SET_PDEATHSIG
 * (SIGKILL) and then checks getppid(), so a parent that died before the
 * setting took effect is noticed too, closes every descriptor but 0, 1, 2
 * and its channel, unblocks every signal, runs the entry and _exit()s with
 * its value (so the parent's atexit handlers and stdio buffers, which the
 * child inherited, are not run or flushed twice; an entry flushes what it
 * writes itself). The library's fork handlers have run in the child, as in
 * any fork child of the program. The channel is an AF_UNIX SOCK_SEQPACKET
 * socketpair, close-on-exec on both ends; the parent keeps one end, the
 * worker the other.
 * SPAWN: posix_spawn re-executes /proc/self/exe with the program's argv
 * (/proc/self/cmdline), the worker's end of the channel as descriptor 3
 * (the only one besides 0, 1, 2) and BOOT_ENV in its environment. The
 * library's constructor (proc_boot, below: in this object file, so a
 * static link that uses the launcher keeps it) sees the variable before
 * main(), removes it, sets PR_SET_PDEATHSIG and checks getppid() against
 * the parent's pid the variable carries, reads the boot message the parent
 * sent on the channel (the entry's funcref and arg's bytes), resolves the
 * entry and _exit()s with its value: main() never runs. posix_spawn rather
 * than fork()+exec: it runs no fork handler and nothing but async-signal-
 * safe steps between the clone and the exec.
 * FORKSERVER (the default): the first such launch spawns a server (the
 * program re-executed as above, in the role of server) with one end of a
 * private socketpair, inherited, never a path: nobody else can reach it.
 * The server is single-threaded and forks each worker on request, the
 * worker's channel coming with the request by SCM_RIGHTS; the worker boots
 * from its channel as a spawned one does. The server answers with the
 * worker's pid and a pidfd of it, opened while the worker was still its
 * unreaped child (so the parent, which cannot wait for a non-child and
 * could not open a pidfd by pid without racing the reaping, watches and
 * kills the very process), reaps its workers and reports each one's wait
 * status, which the parent's wait takes. Workers die with the server
 * (PR_SET_PDEATHSIG); the server dies when the parent's end of its socket
 * closes, that is when the parent dies, not with the thread that started
 * it. A server found dead (or broken) is reaped and replaced; the workers
 * it took along report SIGKILL. Parent death: the worker of each method
 * is killed (SIGKILL) when the process that owns the pool ends, however it
 * ends; on kernels where PR_SET_PDEATHSIG follows the starting thread,
 * fork and spawn workers also die with that thread (the pool's proxy
 * thread owns its worker, so this is harmless).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "deadline.h"
#include "fd_channel.h"
#include "funcref.h"
#include "proc_launch.h"
#include "runtime.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* ---- pidfds and descriptors --------------------------------------------------------- */

static int pidfd_open_of(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by default */
}

/* Whether the system has pidfds (Linux 5.4 for waitid(P_PIDFD)), probed on
 * the caller's own pid once: without them a worker could not be watched
 * safely, and no worker is started. */
static bool have_pidfds(void)
{
    static _Atomic int known; /* 0: not probed, 1: yes, -1: no */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        int fd = pidfd_open_of(getpid());
        k = fd >= 0 ? 1 : -1;
        if (fd >= 0)
            close(fd);
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k > 0;
}

static int pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The wait status waitpid() would have given, from waitid's siginfo. */
static int status_of(const siginfo_t *info)
{
    switch (info->si_code) {
    case CLD_EXITED: return (info->si_status & 0xff) << 8;
    case CLD_DUMPED: return (info->si_status & 0x7f) | 0x80;
    default: /* CLD_KILLED */ return info->si_status & 0x7f;
    }
}

/* Close every descriptor from `from` up, but keep. Async-signal-safe: it
 * runs in the child of a fork of a multithreaded process. close_range
 * (Linux 5.9) does it in two calls; before it, every descriptor up to the
 * limit is closed one by one. */
static void close_from_except(int from, int keep)
{
    bool ranges_ok;
    if (keep >= from) {
        ranges_ok = (keep == from || syscall(SYS_close_range, from, keep - 1, 0) == 0) &&
                    syscall(SYS_close_range, keep + 1, ~0U, 0) == 0;
    } else {
        ranges_ok = syscall(SYS_close_range, from, ~0U, 0) == 0;
    }
    if (ranges_ok)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = from; fd < max; fd++)
        if (fd != keep)
            close((int)fd);
}

/* A failure to make a process or a descriptor, as a code. */
static int errno_code(int e)
{
    return e == ENOMEM || e == ENOBUFS ? CTH_ENOMEM : CTH_EAGAIN;
}

/* The exit status of a worker that could not get as far as its entry. */
#define BOOT_FAILED 127

/* ---- fork ----------------------------------------------------------------------- */

static int launch_fork(cth__proc_entry_fn entry, const void *arg, size_t arg_size,
                       struct cth__proc *proc)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return errno_code(errno);
    pid_t parent = getpid();
    pid_t pid = fork();
    int fork_errno = errno;
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(BOOT_FAILED);
        close_from_except(3, sv[1]);
        if (sv[0] < 3)
            close(sv[0]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        _exit(entry(arg, arg_size, sv[1]));
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return errno_code(fork_errno);
    }
    int pidfd = pidfd_open_of(pid);
    if (pidfd < 0) {
        /* Still our unreaped child: its pid is its own until it is waited for. */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sv[0]);
        return CTH_EAGAIN;
    }
    *proc = (struct cth__proc){.pid = pid, .pidfd = pidfd, .chan = sv[0], .method = CTH_START_FORK};
    return 0;
}

/* ---- spawn: re-executing the program ------------------------------------------------ */

/* The environment variable that tells a re-executed program what it is:
 * "w<pid>" a worker, "s<pid>" a fork server, started by process <pid>. Its
 * channel is descriptor 3. */
#define BOOT_ENV "CTHREADING_PROC_BOOT"
#define BOOT_CHAN 3

/* What the parent sends first on a spawned (or fork-served) worker's
 * channel: the entry's name and the size of arg, whose bytes follow in
 * messages of at most BOOT_CHUNK bytes. */
#define BOOT_MAGIC 0x63746862u /* "cthb" */
#define BOOT_CHUNK 65536

struct boot_msg {
    uint32_t magic;
    uint32_t reserved;
    uint64_t arg_size;
    struct cth__funcref entry;
};

/* The program's argument vector, from /proc/self/cmdline, into *argv (one
 * allocation: the pointers, then the strings). */
static int read_cmdline(char ***argv)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CTH_EAGAIN;
    size_t cap = 4096, len = 0;
    char *text = cth__malloc(cap);
    int rc = text ? 0 : CTH_ENOMEM;
    while (rc == 0) {
        if (len + 1 >= cap) {
            char *bigger = cth__realloc(text, cap *= 2);
            if (!bigger) {
                rc = CTH_ENOMEM;
                break;
            }
            text = bigger;
        }
        ssize_t n = read(fd, text + len, cap - len - 1);
        if (n < 0 && errno != EINTR)
            rc = CTH_EAGAIN;
        else if (n == 0)
            break;
        else if (n > 0)
            len += (size_t)n;
    }
    close(fd);
    if (rc == 0) {
        size_t nargs = 0;
        text[len] = '\0';
        if (len == 0 || text[len - 1] != '\0')
            text[len++] = '\0'; /* an empty or unterminated list (rewritten argv) */
        for (size_t i = 0; i < len; i++)
            nargs += text[i] == '\0';
        char **v = cth__malloc((nargs + 1) * sizeof *v + len);
        if (v) {
            char *strings = (char *)(v + nargs + 1);
            memcpy(strings, text, len);
            for (size_t i = 0, k = 0; k < nargs; i += strlen(strings + i) + 1)
                v[k++] = strings + i;
            v[nargs] = NULL;
            *argv = v;
        } else {
            rc = CTH_ENOMEM;
        }
    }
    cth__free(text);
    return rc;
}

extern char **environ;

/* The program's environment with BOOT_ENV set to role and the parent's pid
 * (and any BOOT_ENV it had left out); the strings are the environment's,
 * but the boot entry, which lives at (*envp)[0]. */
static int boot_environment(char role, char ***envp)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **v = cth__malloc((n + 2) * sizeof *v + 64);
    if (!v)
        return CTH_ENOMEM;
    char *entry = (char *)(v + n + 2);
    snprintf(entry, 64, "%s=%c%ld", BOOT_ENV, role, (long)getpid());
    size_t k = 0;
    v[k++] = entry;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], BOOT_ENV "=", sizeof BOOT_ENV) != 0)
            v[k++] = environ[i];
    v[k] = NULL;
    *envp = v;
    return 0;
}

/* Re-execute the program (/proc/self/exe, so the very file this process
 * runs, with its own argv) as role, child_chan becoming its descriptor 3,
 * every other descriptor but 0, 1 and 2 closed, no signal blocked. The
 * child is made by posix_spawn, which runs no fork handler and nothing
 * that is not async-signal-safe between the clone and the exec (glibc
 * clones with CLONE_VM|CLONE_VFORK), so it is safe in a threaded program
 * and costs no copy of the parent's page tables. */
static int spawn_program(char role, int child_chan, pid_t *pid)
{
    char **argv = NULL, **envp = NULL;
    int rc = read_cmdline(&argv);
    if (rc == 0)
        rc = boot_environment(role, &envp);
    int moved = -1;
    if (rc == 0 && child_chan == BOOT_CHAN) {
        /* dup2 onto itself would keep close-on-exec: move it first */
        moved = fcntl(child_chan, F_DUPFD_CLOEXEC, BOOT_CHAN + 1);
        if (moved < 0)
            rc = errno_code(errno);
        else
            child_chan = moved;
    }
    if (rc == 0) {
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        sigset_t none;
        sigemptyset(&none);
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_adddup2(&actions, child_chan, BOOT_CHAN);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
        posix_spawn_file_actions_addclosefrom_np(&actions, BOOT_CHAN + 1);
#endif
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        int e = posix_spawn(pid, "/proc/self/exe", &actions, &attr, argv, envp);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (e)
            rc = errno_code(e);
    }
    if (moved >= 0)
        close(moved);
    cth__free(argv);
    cth__free(envp);
    return rc;
}

/* Send the boot message and arg's bytes on the parent's end of a channel. */
static int send_boot(int chan, const struct cth__funcref *entry, const void *arg, size_t arg_size)
{
    struct boot_msg msg = {.magic = BOOT_MAGIC, .arg_size = arg_size, .entry = *entry};
    if (send(chan, &msg, sizeof msg, MSG_NOSIGNAL) != (ssize_t)sizeof msg)
        return CTH_EAGAIN;
    for (size_t done = 0; done < arg_size;) {
        size_t len = arg_size - done < BOOT_CHUNK ? arg_size - done : BOOT_CHUNK;
        ssize_t n = send(chan, (const char *)arg + done, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)len)
            return CTH_EAGAIN;
        done += len;
    }
    return 0;
}

/* Start a worker of a pid we have (our child, or one the fork server made):
 * watch it, and boot it by its channel. On failure it is killed. */
static int boot_worker(struct cth__proc *proc, const struct cth__funcref *entry, const void *arg,
                       size_t arg_size)
{
    int rc = send_boot(proc->chan, entry, arg, arg_size);
    if (rc)
        cth__proc_release(proc);
    return rc;
}

static int launch_spawn(const struct cth__funcref *entry, const void *arg, size_t arg_size,
                        struct cth__proc *proc)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return errno_code(errno);
    pid_t pid;
    int rc = spawn_program('w', sv[1], &pid);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    int pidfd = pidfd_open_of(pid);
    if (pidfd < 0) {
        kill(pid, SIGKILL); /* still our unreaped child: the pid is its own */
        waitpid(pid, NULL, 0);
        close(sv[0]);
        return CTH_EAGAIN;
    }
    *proc = (struct cth__proc){
        .pid = pid, .pidfd = pidfd, .chan = sv[0], .method = CTH_START_SPAWN};
    return boot_worker(proc, entry, arg, arg_size);
}

/* ---- the re-executed program's side --------------------------------------------------- */

/* Receive exactly len bytes as one message; false on anything else. */
static bool recv_message(int chan, void *buf, size_t len)
{
    ssize_t n;
    while ((n = recv(chan, buf, len, 0)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)len;
}

/* A worker: take the entry and arg from the channel, run it, exit with its
 * value. It never returns. */
__attribute__((noreturn)) static void run_worker(int chan)
{
    struct boot_msg msg;
    void *fn;
    if (!recv_message(chan, &msg, sizeof msg) || msg.magic != BOOT_MAGIC ||
        msg.arg_size > SIZE_MAX / 2 || cth__funcref_resolve(&msg.entry, &fn) != 0)
        _exit(BOOT_FAILED);
    size_t size = (size_t)msg.arg_size;
    char *arg = cth__malloc(size ? size : 1);
    if (!arg)
        _exit(BOOT_FAILED);
    for (size_t done = 0; done < size;) {
        size_t len = size - done < BOOT_CHUNK ? size - done : BOOT_CHUNK;
        if (!recv_message(chan, arg + done, len))
            _exit(BOOT_FAILED);
        done += len;
    }
    cth__proc_entry_fn entry = (cth__proc_entry_fn)(uintptr_t)fn;
    _exit(entry(arg, size, chan));
}

/* ---- the fork server's side ---------------------------------------------------------- */

/* The messages between the parent and its fork server: fixed-size, one per
 * SOCK_SEQPACKET datagram. */
enum { MSG_LAUNCH = 1, MSG_LAUNCHED, MSG_FAILED, MSG_EXITED };

struct server_msg {
    uint32_t kind;
    uint32_t serial; /* the server's number for the worker, from 1 */
    int32_t pid;
    int32_t value; /* MSG_EXITED: the wait status; MSG_FAILED: the errno */
};

/* Send msg, with descriptor fd attached unless it is -1. */
static bool send_msg(int sock, const struct server_msg *msg, int fd)
{
    return cth__chan_send(sock, msg, sizeof *msg, fd) == 0;
}

/* Receive one message and at most one descriptor (*fd, close-on-exec; -1 if
 * none came). Returns 1, 0 at the end of the stream, -1 for an error or a
 * malformed message (any descriptors that came with it are closed). */
static int recv_msg(int sock, struct server_msg *msg, int *fd)
{
    ssize_t n = cth__chan_recv(sock, msg, sizeof *msg, fd, 0);
    if (n == (ssize_t)sizeof *msg)
        return 1;
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
    return n == 0 ? 0 : -1;
}

struct served_worker {
    uint32_t serial;
    pid_t pid;
    int pidfd;
};

/* The fork server: single-threaded, it forks a worker for each MSG_LAUNCH
 * (whose channel comes with it), answers MSG_LAUNCHED with the worker's
 * pid and a pidfd of it (so the parent never names the worker by a pid
 * that could be reused), reaps each worker that ends and reports its
 * status (MSG_EXITED), and exits when the parent's end of its socket
 * closes; its workers, which have PR_SET_PDEATHSIG toward it, die with it.
 * It ignores SIGINT, as the terminal's ^C is the parent's to handle; its
 * workers take it by default again. */
__attribute__((noreturn)) static void run_server(int sock)
{
    signal(SIGINT, SIG_IGN);
    struct served_worker *workers = NULL;
    struct pollfd *polls = NULL;
    size_t n = 0, cap = 0;
    uint32_t serial = 0;
    pid_t self = getpid();
    for (;;) {
        if (n + 1 > cap) {
            cap = cap ? 2 * cap : 16;
            struct served_worker *more_workers = realloc(workers, cap * sizeof *workers);
            if (!more_workers)
                _exit(BOOT_FAILED); /* its workers die with it */
            workers = more_workers;
            struct pollfd *more_polls = realloc(polls, (cap + 1) * sizeof *polls);
            if (!more_polls)
                _exit(BOOT_FAILED);
            polls = more_polls;
        }
        polls[0] = (struct pollfd){.fd = sock, .events = POLLIN};
        for (size_t i = 0; i < n; i++)
            polls[i + 1] = (struct pollfd){.fd = workers[i].pidfd, .events = POLLIN};
        if (poll(polls, n + 1, -1) < 0)
            continue; /* EINTR */
        for (size_t i = n; i-- > 0;) {
            if (!(polls[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            siginfo_t info;
            memset(&info, 0, sizeof info);
            if (waitid((idtype_t)P_PIDFD, (id_t)workers[i].pidfd, &info, WEXITED) != 0)
                continue;
            struct server_msg msg = {MSG_EXITED, workers[i].serial, workers[i].pid,
                                     status_of(&info)};
            if (!send_msg(sock, &msg, -1))
                _exit(0); /* the parent is gone */
            close(workers[i].pidfd);
            workers[i] = workers[--n];
        }
        if (!(polls[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        struct server_msg msg;
        int chan;
        int got = recv_msg(sock, &msg, &chan);
        if (got == 0)
            _exit(0); /* the parent closed its end: it is gone */
        if (got < 0 || msg.kind != MSG_LAUNCH || chan < 0) {
            if (got > 0 && chan >= 0)
                close(chan);
            continue; /* not a request: the parent never sends one */
        }
        pid_t pid = fork();
        if (pid == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != self)
                _exit(BOOT_FAILED);
            signal(SIGINT, SIG_DFL);
            close_from_except(3, chan);
            run_worker(chan);
        }
        int e = errno;
        close(chan);
        int pidfd = pid > 0 ? pidfd_open_of(pid) : -1;
        if (pid > 0 && pidfd < 0) {
            e = errno;
            kill(pid, SIGKILL); /* our unreaped child: the pid is its own */
            waitpid(pid, NULL, 0);
        }
        struct server_msg reply = {MSG_FAILED, 0, 0, e};
        if (pidfd >= 0) {
            reply = (struct server_msg){MSG_LAUNCHED, ++serial, pid, 0};
            workers[n++] = (struct served_worker){serial, pid, pidfd};
        }
        if (!send_msg(sock, &reply, pidfd))
            _exit(0);
    }
}

/* Before main(), in every program linked with the library: a program
 * re-executed by spawn (or as a fork server) is taken over here and never
 * reaches main(). The variable is removed first, so the worker's own
 * children are ordinary programs. This runs before constructors of other
 * objects may have run: it does only what it must. */
__attribute__((constructor)) static void proc_boot(void)
{
    const char *value = getenv(BOOT_ENV);
    if (!value)
        return;
    char role = value[0];
    char *end;
    long parent = strtol(value + 1, &end, 10);
    bool valid = (role == 'w' || role == 's') && end != value + 1 && *end == '\0';
    unsetenv(BOOT_ENV);
    struct stat st;
    if (!valid || fstat(BOOT_CHAN, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "cthreading: %s is set, but this is no worker\n", BOOT_ENV);
        _exit(BOOT_FAILED);
    }
    fcntl(BOOT_CHAN, F_SETFD, FD_CLOEXEC);
    if (role == 'w' && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        _exit(BOOT_FAILED);
    if (getppid() != (pid_t)parent)
        _exit(BOOT_FAILED); /* the parent is gone already */
    if (role == 's')
        run_server(BOOT_CHAN);
    run_worker(BOOT_CHAN);
}

/* ---- the fork server, as the parent sees it ------------------------------------------ */

/* One server per process, started on first use and then kept (until the
 * process ends, or the server is found dead and replaced). Everything here
 * is under `lock`, held across each request and the wait for its reply.
 * The reports of ended workers come on the same socket, in between: each
 * is kept in `reports` until the wait for that worker takes it. A worker's
 * serial is the server's generation (how many servers this process has
 * started) and the server's number for it, so a report from one server is
 * never taken for another's worker. The fork handlers keep the state
 * whole across a fork (prepare takes the lock) and make the child forget
 * the parent's server: the child must not talk to it, and holding its
 * socket would keep it alive after the parent. */
struct report {
    uint64_t serial;
    int status;
};

static struct {
    pthread_mutex_t lock;
    int sock; /* our end, -1 when there is no server */
    pid_t pid;
    int pidfd;
    uint64_t generation;
    struct report *reports;
    size_t nreports, cap;
} server = {PTHREAD_MUTEX_INITIALIZER, -1, 0, -1, 0, NULL, 0, 0};

static void server_fork_prepare(void)
{
    pthread_mutex_lock(&server.lock);
}

static void server_fork_parent(void)
{
    pthread_mutex_unlock(&server.lock);
}

static void server_fork_child(void)
{
    if (server.sock >= 0) {
        close(server.sock);
        close(server.pidfd);
    }
    server.sock = server.pidfd = -1;
    server.pid = 0;
    cth__free(server.reports);
    server.reports = NULL;
    server.nreports = server.cap = 0;
    pthread_mutex_unlock(&server.lock);
}

static pthread_once_t server_hooks_once = PTHREAD_ONCE_INIT;

static void register_server_hooks(void)
{
    cth__runtime_on_fork(server_fork_prepare, server_fork_parent, server_fork_child);
}

/* Forget a server that is dead or broke the protocol: kill and reap it. */
static void server_drop(void)
{
    pidfd_signal(server.pidfd, SIGKILL);
    siginfo_t info;
    while (waitid((idtype_t)P_PIDFD, (id_t)server.pidfd, &info, WEXITED) != 0 && errno == EINTR)
        ;
    close(server.sock);
    close(server.pidfd);
    server.sock = server.pidfd = -1;
    server.pid = 0;
}

static int server_start(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return errno_code(errno);
    pid_t pid;
    int rc = spawn_program('s', sv[1], &pid);
    close(sv[1]);
    int pidfd = rc ? -1 : pidfd_open_of(pid);
    if (rc == 0 && pidfd < 0) {
        kill(pid, SIGKILL); /* our unreaped child: the pid is its own */
        waitpid(pid, NULL, 0);
        rc = CTH_EAGAIN;
    }
    if (rc) {
        close(sv[0]);
        return rc;
    }
    server.sock = sv[0];
    server.pid = pid;
    server.pidfd = pidfd;
    server.generation++;
    return 0;
}

/* Keep a report until its worker is waited for. */
static void keep_report(const struct server_msg *msg)
{
    if (server.nreports == server.cap) {
        size_t cap = server.cap ? 2 * server.cap : 16;
        struct report *bigger = cth__realloc(server.reports, cap * sizeof *bigger);
        if (!bigger)
            return; /* lost: that worker's wait reports it killed */
        server.reports = bigger;
        server.cap = cap;
    }
    server.reports[server.nreports++] = (struct report){server.generation << 32 | msg->serial,
                                                        msg->value};
}

/* Take the report of serial if it has come: true and *status. */
static bool take_report(uint64_t serial, int *status)
{
    for (size_t i = 0; i < server.nreports; i++) {
        if (server.reports[i].serial == serial) {
            *status = server.reports[i].status;
            server.reports[i] = server.reports[--server.nreports];
            return true;
        }
    }
    return false;
}

/* Read the server's next message, up to deadline, keeping reports; a
 * launch's reply is returned (1, with *fd). 0: a report was kept, or the
 * deadline passed (CTH_ETIMEDOUT in *rc); -1: the server is gone or broke
 * the protocol, and was dropped. */
static int server_read(struct server_msg *msg, int *fd, int64_t deadline, int *rc)
{
    struct pollfd p = {.fd = server.sock, .events = POLLIN};
    int64_t left = deadline == CTH__NO_DEADLINE ? -1 : deadline - cth__now_ns();
    int ms = left < 0 ? (deadline == CTH__NO_DEADLINE ? -1 : 0)
                      : (left > INT32_MAX * (int64_t)1000000 ? INT32_MAX
                                                             : (int)((left + 999999) / 1000000));
    int ready = poll(&p, 1, ms);
    if (ready <= 0) {
        if (ready == 0)
            *rc = CTH_ETIMEDOUT;
        return 0;
    }
    int got = recv_msg(server.sock, msg, fd);
    if (got > 0 && msg->kind == MSG_EXITED && *fd < 0) {
        keep_report(msg);
        return 0;
    }
    if (got > 0 && ((msg->kind == MSG_LAUNCHED && *fd >= 0 && msg->pid > 0) ||
                    (msg->kind == MSG_FAILED && *fd < 0)))
        return 1;
    if (*fd >= 0)
        close(*fd);
    server_drop();
    return -1;
}

/* Ask the server for a worker whose channel is chan. */
static int server_launch(int chan, struct cth__proc *proc)
{
    for (int attempt = 0; attempt < 2; attempt++) { /* a dead server is replaced once */
        int rc = server.sock < 0 ? server_start() : 0;
        if (rc)
            return rc;
        struct server_msg msg = {.kind = MSG_LAUNCH};
        if (!send_msg(server.sock, &msg, chan)) {
            server_drop();
            continue;
        }
        int fd, got;
        while ((got = server_read(&msg, &fd, CTH__NO_DEADLINE, &rc)) == 0)
            ;
        if (got < 0)
            continue;
        if (msg.kind == MSG_FAILED)
            return errno_code(msg.value);
        *proc = (struct cth__proc){.pid = msg.pid,
                                   .pidfd = fd,
                                   .chan = -1,
                                   .method = CTH_START_FORKSERVER,
                                   .serial = server.generation << 32 | msg.serial};
        return 0;
    }
    return CTH_EAGAIN;
}

static int launch_forkserver(const struct cth__funcref *entry, const void *arg, size_t arg_size,
                             struct cth__proc *proc)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return errno_code(errno);
    pthread_once(&server_hooks_once, register_server_hooks);
    pthread_mutex_lock(&server.lock);
    int rc = server_launch(sv[1], proc);
    pthread_mutex_unlock(&server.lock);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    proc->chan = sv[0];
    return boot_worker(proc, entry, arg, arg_size);
}

/* How long a wait for a report holds the lock at a time, so that launches
 * and fork() (whose prepare handler takes it) are never held up for long. */
#define REPORT_SLICE_NS 10000000

/* The status of an ended worker of the fork server, from its report. */
static int server_status(struct cth__proc *proc, int64_t deadline)
{
    for (;;) {
        pthread_mutex_lock(&server.lock);
        int rc = 0;
        bool done = take_report(proc->serial, &proc->status);
        if (!done && (server.sock < 0 || proc->serial >> 32 != server.generation)) {
            proc->status = SIGKILL; /* its server is gone, and killed it */
            done = true;
        }
        if (!done) {
            int64_t slice = cth__now_ns() + REPORT_SLICE_NS;
            struct server_msg msg;
            int fd;
            if (server_read(&msg, &fd, slice < deadline ? slice : deadline, &rc) > 0) {
                if (fd >= 0) /* a reply that no request awaits: broken */
                    close(fd);
                server_drop();
            }
            if (rc && (deadline == CTH__NO_DEADLINE || cth__now_ns() < deadline))
                rc = 0; /* only the slice is over */
        }
        pthread_mutex_unlock(&server.lock);
        if (done || rc)
            return rc;
    }
}

/* ---- the interface ------------------------------------------------------------------ */

int cth__proc_launch(cth_start_method_t method, cth__proc_entry_fn entry, const void *arg,
                     size_t arg_size, struct cth__proc *proc)
{
    if (!entry || !proc || (!arg && arg_size) || method < CTH_START_DEFAULT ||
        method > CTH_START_FORK)
        return CTH_EINVAL;
    struct cth__funcref ref;
    int rc = cth__funcref_make((const void *)(uintptr_t)entry, &ref);
    if (rc)
        return rc;
    if (!have_pidfds())
        return CTH_ENOTSUP;
    switch (method) {
    case CTH_START_FORK: return launch_fork(entry, arg, arg_size, proc);
    case CTH_START_SPAWN: return launch_spawn(&ref, arg, arg_size, proc);
    default: return launch_forkserver(&ref, arg, arg_size, proc);
    }
}

int cth__proc_kill(struct cth__proc *proc, int sig)
{
    if (proc->reaped)
        return 0;
    if (pidfd_signal(proc->pidfd, sig) == 0 || errno == ESRCH)
        return 0; /* ESRCH: it has ended */
    return errno == EINVAL ? CTH_EINVAL : CTH_EPERM;
}

bool cth__proc_ended(struct cth__proc *proc)
{
    if (proc->reaped)
        return true;
    struct pollfd p = {.fd = proc->pidfd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* Wait until the pidfd is readable (the worker has ended) or the deadline. */
static int wait_ended(struct cth__proc *proc, int64_t deadline)
{
    struct pollfd p = {.fd = proc->pidfd, .events = POLLIN};
    for (;;) {
        int ms = -1;
        if (deadline != CTH__NO_DEADLINE) {
            int64_t left = deadline - cth__now_ns();
            if (left <= 0)
                return poll(&p, 1, 0) > 0 ? 0 : CTH_ETIMEDOUT;
            ms = left > INT32_MAX * (int64_t)1000000 ? INT32_MAX : (int)((left + 999999) / 1000000);
        }
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
    }
}

int cth__proc_wait(struct cth__proc *proc, int64_t deadline)
{
    if (proc->reaped)
        return 0;
    int rc = wait_ended(proc, deadline);
    if (rc)
        return rc;
    if (proc->method == CTH_START_FORKSERVER) {
        rc = server_status(proc, deadline);
        proc->reaped = rc == 0;
        return rc;
    }
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid((idtype_t)P_PIDFD, (id_t)proc->pidfd, &info, WEXITED) != 0) {
        if (errno != EINTR) {
            /* Reaped by someone else (a waitpid(-1) of the program): its
             * status is lost; report it as killed. */
            info.si_code = CLD_KILLED;
            info.si_status = SIGKILL;
            break;
        }
    }
    proc->status = status_of(&info);
    proc->reaped = true;
    return 0;
}

void cth__proc_forget(struct cth__proc *proc)
{
    if (proc->pidfd >= 0)
        close(proc->pidfd);
    if (proc->chan >= 0)
        close(proc->chan);
    proc->pidfd = proc->chan = -1;
}

void cth__proc_release(struct cth__proc *proc)
{
    if (!proc->reaped) { /* never leave a zombie */
        cth__proc_kill(proc, SIGKILL);
        cth__proc_wait(proc, CTH__NO_DEADLINE);
    }
    cth__proc_forget(proc);
}
