/* SPDX-License-Identifier: MIT */
/*
 * test_proc_launch.c - the process pool's launcher (src/proc_launch.c) and
 * function names (src/funcref.c), internal calls, Linux only.
 *
 * Each start method launches entries that echo over their channel, exit
 * with a chosen status, report their pid, parent and descriptors, or wait
 * to be killed; the test checks the wait status, that no zombie is left,
 * that a killed parent takes its workers along (a sacrificial child process
 * launches the worker; the test is the subreaper that inherits and reaps
 * what the child leaves), and that a ref made here names the same function
 * in a re-executed child.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "check.h"
#include "deadline.h"
#include "funcref.h"
#include "proc_launch.h"

/* A function's address as funcref.c takes it (ISO C has no cast between
 * function and object pointers; one through an integer is the platform's). */
#define FN(f) ((const void *)(uintptr_t)(f))

static const cth_start_method_t methods[] = {CTH_START_FORK, CTH_START_SPAWN, CTH_START_FORKSERVER};
#define NMETHODS (sizeof methods / sizeof methods[0])

static const char *method_name(cth_start_method_t m)
{
    return m == CTH_START_FORK ? "fork" : m == CTH_START_SPAWN ? "spawn" : "forkserver";
}

static void send_bytes(int fd, const void *buf, size_t len)
{
    CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len);
}

static size_t recv_bytes(int fd, void *buf, size_t cap)
{
    ssize_t n;
    while ((n = recv(fd, buf, cap, 0)) < 0 && errno == EINTR)
        ;
    CHECK(n >= 0);
    return (size_t)n;
}

/* Whether the system has pidfds, without which no worker starts
 * (CTH_ENOTSUP): valgrind 3.19 does not know pidfd_open. */
static bool have_pidfds(void)
{
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

#define REQUIRE_PIDFDS()                                                                           \
    do {                                                                                           \
        if (!have_pidfds())                                                                        \
            CHECK_SKIP("no pidfd_open here (valgrind 3.19 lacks it)");                             \
    } while (0)

static struct cth__proc launch(cth_start_method_t m, cth__proc_entry_fn entry, const void *arg,
                               size_t size)
{
    struct cth__proc proc;
    memset(&proc, 0xff, sizeof proc);
    CHECK_OK(cth__proc_launch(m, entry, arg, size, &proc));
    CHECK(proc.pid > 0);
    CHECK(proc.pidfd >= 0);
    CHECK(proc.chan >= 0);
    CHECK_EQ(proc.method, m == CTH_START_DEFAULT ? CTH_START_FORKSERVER : m);
    CHECK(!proc.reaped);
    return proc;
}

static int wait_status(struct cth__proc *proc)
{
    CHECK_OK(cth__proc_wait(proc, CTH__NO_DEADLINE));
    CHECK(proc->reaped);
    CHECK(cth__proc_ended(proc));
    return proc->status;
}

/* Whether a process of that pid exists (a zombie counts). */
static bool pid_exists(pid_t pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

/* ---- entries ------------------------------------------------------------------------ */

/* Echo one message back, then exit with the status in arg. */
static int echo_entry(const void *arg, size_t size, int chan)
{
    int status;
    if (size != sizeof status)
        return 100;
    memcpy(&status, arg, sizeof status);
    char buf[256];
    ssize_t n = recv(chan, buf, sizeof buf, 0);
    if (n <= 0 || send(chan, buf, (size_t)n, MSG_NOSIGNAL) != n)
        return 101;
    return status;
}

/* Report the pid and the parent's pid, then wait for the channel to close. */
static int ids_entry(const void *arg, size_t size, int chan)
{
    CTH__UNUSED(arg);
    CTH__UNUSED(size);
    pid_t ids[2] = {getpid(), getppid()};
    if (send(chan, ids, sizeof ids, MSG_NOSIGNAL) != sizeof ids)
        return 101;
    char c;
    while (recv(chan, &c, 1, 0) > 0)
        ;
    return 0;
}

/* Sleep until killed. */
static int sleep_entry(const void *arg, size_t size, int chan)
{
    CTH__UNUSED(arg);
    CTH__UNUSED(size);
    CTH__UNUSED(chan);
    for (;;)
        pause();
    return 0;
}

/* Report every open descriptor that is not 0, 1, 2 or the channel (those
 * above the soft limit are valgrind's own): "" when there is none. */
static int fds_entry(const void *arg, size_t size, int chan)
{
    CTH__UNUSED(arg);
    CTH__UNUSED(size);
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    char out[1024] = "";
    size_t len = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return 102;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd <= 2 || fd == chan || fd == dirfd(dir) || (rlim_t)fd >= lim.rlim_cur)
            continue;
        len += (size_t)snprintf(out + len, sizeof out - len, "%d ", fd);
        if (len >= sizeof out)
            break;
    }
    closedir(dir);
    if (send(chan, out, strlen(out), MSG_NOSIGNAL) < 0)
        return 101;
    return 0;
}

/* ---- funcref ------------------------------------------------------------------------ */

static int twice(int x)
{
    return 2 * x;
}

static int thrice(int x)
{
    return 3 * x;
}

static int data_word = 7;

static void roundtrip(const void *fn, bool in_main)
{
    struct cth__funcref ref;
    memset(&ref, 0xee, sizeof ref);
    CHECK_OK(cth__funcref_make(fn, &ref));
    CHECK_EQ(ref.path_len, strlen(ref.path));
    CHECK(in_main == (ref.path_len == 0));
    void *back = NULL;
    CHECK_OK(cth__funcref_resolve(&ref, &back));
    CHECK(back == fn);
}

CTH_TEST(funcref_roundtrip)
{
    roundtrip(FN(twice), true);
    roundtrip(FN(thrice), true);
    roundtrip(FN(echo_entry), true);
    roundtrip(FN(cth_lock_acquire), true); /* the static library is in the executable */
    roundtrip(FN(getppid), false);         /* libc */
    struct cth__funcref ref;
    CHECK_OK(cth__funcref_make(FN(getppid), &ref));
    CHECK(strstr(ref.path, "libc") != NULL);
    void *fn;
    CHECK_OK(cth__funcref_resolve(&ref, &fn));
    CHECK_EQ(((pid_t(*)(void))(uintptr_t)fn)(), getppid());
    CHECK_OK(cth__funcref_make(FN(twice), &ref));
    CHECK_OK(cth__funcref_resolve(&ref, &fn));
    CHECK_EQ(((int (*)(int))(uintptr_t)fn)(21), 42);
}

CTH_TEST(funcref_not_code)
{
    struct cth__funcref ref;
    int on_stack = 0;
    void *heap = calloc(1, 64);
    CHECK(heap);
    CHECK_EQ(cth__funcref_make(heap, &ref), CTH_ENOENT);
    CHECK_EQ(cth__funcref_make(&on_stack, &ref), CTH_ENOENT);
    CHECK_EQ(cth__funcref_make(&data_word, &ref), CTH_ENOENT); /* data of the executable */
    CHECK_EQ(cth__funcref_make((const void *)(uintptr_t)1, &ref), CTH_ENOENT);
    CHECK_EQ(cth__funcref_make(NULL, &ref), CTH_EINVAL);
    CHECK_EQ(cth__funcref_make(FN(twice), NULL), CTH_EINVAL);
    free(heap);
}

CTH_TEST(funcref_bad_refs)
{
    struct cth__funcref good, ref;
    void *fn = NULL;
    CHECK_OK(cth__funcref_make(FN(twice), &good));
    CHECK_EQ(cth__funcref_resolve(NULL, &fn), CTH_EINVAL);
    CHECK_EQ(cth__funcref_resolve(&good, NULL), CTH_EINVAL);

    /* offsets outside the executable segments: far away, and on data */
    ref = good;
    ref.offset = UINT64_MAX - 3;
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    ref.offset = 1ull << 46;
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    ref.offset = 0; /* the ELF header, not executable */
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    struct cth__funcref libc;
    memset(&libc, 0, sizeof libc);
    CHECK_OK(cth__funcref_make(FN(getppid), &libc));
    ref = libc;
    ref.offset = 0;
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    ref.offset = UINT64_MAX;
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);

    /* a path that is not loaded */
    ref = good;
    strcpy(ref.path, "/nonexistent/libnothing.so.1");
    ref.path_len = (uint32_t)strlen(ref.path);
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_ENOENT);

    /* paths not terminated where path_len says */
    ref = libc;
    ref.path[ref.path_len] = 'x';
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    ref = libc;
    ref.path_len = 3; /* a NUL further on */
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    ref = libc;
    ref.path_len += 1; /* a NUL before path_len */
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    memset(ref.path, 'a', sizeof ref.path);
    ref.path_len = sizeof ref.path - 1;
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    ref.path_len = sizeof ref.path;
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    ref.path_len = UINT32_MAX;
    CHECK_EQ(cth__funcref_resolve(&ref, &fn), CTH_EPROTO);
    CHECK(fn == NULL); /* no failure wrote it */
}

#define FUNCREF_THREADS 4

static void *funcref_worker(void *arg)
{
    CTH__UNUSED(arg);
    const void *fns[] = {FN(twice), FN(thrice), FN(getppid)};
    for (int i = 0; i < 2000; i++) {
        struct cth__funcref ref;
        void *fn;
        const void *want = fns[i % 3];
        if (cth__funcref_make(want, &ref) || cth__funcref_resolve(&ref, &fn) || fn != want)
            return (void *)1;
    }
    return NULL;
}

CTH_TEST(funcref_threads)
{
    cth_thread_t *t[FUNCREF_THREADS];
    for (int i = 0; i < FUNCREF_THREADS; i++) {
        CHECK_OK(cth_thread_create(&t[i], funcref_worker, NULL, NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < FUNCREF_THREADS; i++) {
        void *r;
        CHECK_OK(cth_thread_join(t[i], &r, CTH_FOREVER));
        CHECK(r == NULL);
        cth_thread_free(t[i]);
    }
}

/* ---- launching ---------------------------------------------------------------------- */

CTH_TEST(launch_bad_input)
{
    struct cth__proc proc;
    int status = 0;
    void *heap = malloc(16);
    CHECK_EQ(cth__proc_launch(CTH_START_FORK, NULL, &status, sizeof status, &proc), CTH_EINVAL);
    CHECK_EQ(cth__proc_launch(CTH_START_FORK, echo_entry, &status, sizeof status, NULL),
             CTH_EINVAL);
    CHECK_EQ(cth__proc_launch(CTH_START_FORK, echo_entry, NULL, 4, &proc), CTH_EINVAL);
    CHECK_EQ(cth__proc_launch((cth_start_method_t)99, echo_entry, &status, sizeof status, &proc),
             CTH_EINVAL);
    CHECK_EQ(cth__proc_launch(CTH_START_FORK, (cth__proc_entry_fn)(uintptr_t)heap, NULL, 0, &proc),
             CTH_ENOENT);
    free(heap);
    if (!have_pidfds())
        for (size_t i = 0; i < NMETHODS; i++)
            CHECK_EQ(cth__proc_launch(methods[i], echo_entry, &status, sizeof status, &proc),
                     CTH_ENOTSUP);
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD); /* nothing started */
}

CTH_TEST(launch_echo_and_status)
{
    REQUIRE_PIDFDS();
    for (size_t i = 0; i < NMETHODS; i++) {
        int want = 40 + (int)i;
        struct cth__proc proc = launch(methods[i], echo_entry, &want, sizeof want);
        send_bytes(proc.chan, "hello", 5);
        char buf[16];
        CHECK_EQ(recv_bytes(proc.chan, buf, sizeof buf), 5);
        CHECK(memcmp(buf, "hello", 5) == 0);
        int status = wait_status(&proc);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != want)
            fprintf(stderr, "%s: status %#x\n", method_name(methods[i]), status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == want);
        CHECK_OK(cth__proc_wait(&proc, CTH__NO_DEADLINE)); /* again: nothing to do */
        CHECK_OK(cth__proc_kill(&proc, SIGKILL));          /* reaped: none is sent */
        cth__proc_release(&proc);
        CHECK_EQ(proc.chan, -1);
        CHECK_EQ(proc.pidfd, -1);
        CHECK(!pid_exists(proc.pid)); /* reaped (by the server, before it reported) */
    }
}

CTH_TEST(launch_kill_and_timeout)
{
    REQUIRE_PIDFDS();
    for (size_t i = 0; i < NMETHODS; i++) {
        struct cth__proc proc = launch(methods[i], sleep_entry, NULL, 0);
        CHECK(!cth__proc_ended(&proc));
        double start = check_now();
        CHECK_EQ(cth__proc_wait(&proc, cth__deadline(0.05)), CTH_ETIMEDOUT);
        CHECK_WAITED_AT_LEAST(start, 0.05);
        CHECK_EQ(cth__proc_wait(&proc, cth__deadline(0)), CTH_ETIMEDOUT);
        CHECK(!proc.reaped);
        CHECK_OK(cth__proc_kill(&proc, SIGTERM));
        while (!cth__proc_ended(&proc))
            cth_sleep(0.001);
        CHECK_OK(cth__proc_kill(&proc, SIGKILL)); /* ended, not reaped: harmless */
        int status = wait_status(&proc);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        cth__proc_release(&proc);
    }
}

CTH_TEST(launch_pid_is_the_workers)
{
    REQUIRE_PIDFDS();
    for (size_t i = 0; i < NMETHODS; i++) {
        struct cth__proc proc = launch(methods[i], ids_entry, NULL, 0);
        pid_t ids[2];
        CHECK_EQ(recv_bytes(proc.chan, ids, sizeof ids), sizeof ids);
        CHECK_EQ(ids[0], proc.pid);
        if (methods[i] != CTH_START_FORKSERVER)
            CHECK_EQ(ids[1], getpid());
        else
            CHECK(ids[1] != getpid());
        /* Release without waiting: it is killed and reaped all the same. */
        cth__proc_release(&proc);
        CHECK(!pid_exists(ids[0]));
    }
}

CTH_TEST(launch_no_zombie)
{
    REQUIRE_PIDFDS();
    for (size_t i = 0; i < NMETHODS; i++) {
        struct cth__proc procs[4];
        int want = 3;
        for (int k = 0; k < 4; k++)
            procs[k] = launch(methods[i], k % 2 ? sleep_entry : echo_entry, &want, sizeof want);
        for (int k = 0; k < 4; k++) {
            if (k % 2)
                CHECK_OK(cth__proc_kill(&procs[k], SIGKILL));
            else
                close(procs[k].chan); /* the echo fails: exit 101 */
            procs[k].chan = -1;
            wait_status(&procs[k]);
            cth__proc_release(&procs[k]);
            CHECK(!pid_exists(procs[k].pid));
        }
        if (methods[i] != CTH_START_FORKSERVER) /* the server lives on, our child */
            CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    }
}

CTH_TEST(launch_descriptors)
{
    REQUIRE_PIDFDS();
    int leak = open("/dev/null", O_RDONLY); /* not close-on-exec */
    int cloexec = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(leak >= 0 && cloexec >= 0);
    for (size_t i = 0; i < NMETHODS; i++) {
        struct cth__proc a = launch(methods[i], sleep_entry, NULL, 0);
        struct cth__proc b = launch(methods[i], fds_entry, NULL, 0);
        char buf[1024];
        size_t n = recv_bytes(b.chan, buf, sizeof buf - 1);
        buf[n] = '\0';
        if (n)
            fprintf(stderr, "%s: the worker has descriptors %s\n", method_name(methods[i]), buf);
        CHECK_EQ(n, 0);
        CHECK(WIFEXITED(wait_status(&b)) && WEXITSTATUS(b.status) == 0);
        cth__proc_release(&b);
        cth__proc_release(&a);
    }
    close(leak);
    close(cloexec);
}

/* A fork-started worker is a fork child of a threaded program: the library
 * is usable there (the proxy thread that launches it is not the main one). */
static int sane_entry(const void *arg, size_t size, int chan)
{
    CTH__UNUSED(arg);
    CTH__UNUSED(size);
    CTH__UNUSED(chan);
    if (cth_current_thread() != cth_main_thread() || cth_active_count() != 1)
        return 1;
    cth_lock_t lock;
    if (cth_lock_init(&lock) || cth_lock_acquire(&lock, CTH_FOREVER) || cth_lock_release(&lock))
        return 2;
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
    cth_thread_t *t;
    if (cth_thread_create(&t, funcref_worker, NULL, NULL) || cth_thread_start(t))
        return 3;
    void *r;
    if (cth_thread_join(t, &r, CTH_FOREVER) || r != NULL)
        return 4;
    cth_thread_free(t);
#endif
    return 0;
}

/* Launch and wait in the same thread: where PR_SET_PDEATHSIG follows the
 * thread (older kernels), a worker dies with the thread that started it, so
 * a proxy thread owns its process. */
static void *launch_sane(void *arg)
{
    int *status = arg;
    struct cth__proc proc = launch(CTH_START_FORK, sane_entry, NULL, 0);
    *status = wait_status(&proc);
    cth__proc_release(&proc);
    return NULL;
}

static void *hold_lock(void *arg)
{
    cth_lock_t *lock = arg;
    CHECK_OK(cth_lock_acquire(lock, CTH_FOREVER));
    cth_sleep(0.2);
    CHECK_OK(cth_lock_release(lock));
    return NULL;
}

CTH_TEST(launch_fork_worker_is_sane)
{
    REQUIRE_PIDFDS();
    cth_lock_t lock;
    CHECK_OK(cth_lock_init(&lock));
    cth_thread_t *holder, *launcher;
    CHECK_OK(cth_thread_create(&holder, hold_lock, &lock, NULL));
    CHECK_OK(cth_thread_start(holder));
    int status = -1;
    CHECK_OK(cth_thread_create(&launcher, launch_sane, &status, NULL));
    CHECK_OK(cth_thread_start(launcher));
    CHECK_OK(cth_thread_join(launcher, NULL, CTH_FOREVER));
    if (status)
        fprintf(stderr, "worker status %#x\n", status);
    CHECK_EQ(status, 0);
    CHECK_OK(cth_thread_join(holder, NULL, CTH_FOREVER));
    cth_thread_free(holder);
    cth_thread_free(launcher);
}

/* A fork child of the launcher forgets the parent's workers: they live on. */
CTH_TEST(launch_fork_child_forgets)
{
    REQUIRE_PIDFDS();
    for (size_t i = 0; i < NMETHODS; i++) {
        struct cth__proc proc = launch(methods[i], sleep_entry, NULL, 0);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            cth__proc_forget(&proc);
            _exit(proc.pidfd == -1 && proc.chan == -1 ? 0 : 1);
        }
        int status;
        CHECK_EQ(waitpid(child, &status, 0), child);
        CHECK_EQ(status, 0);
        CHECK_EQ(cth__proc_wait(&proc, cth__deadline(0.02)), CTH_ETIMEDOUT); /* alive */
        CHECK_OK(cth__proc_kill(&proc, SIGKILL));
        status = wait_status(&proc);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        cth__proc_release(&proc);
    }
}

/* Become the reaper of orphaned descendants, so that what a killed child
 * leaves behind can be waited for here. */
static void become_subreaper(void)
{
    CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
}

/* Wait up to `seconds` for every child (and inherited orphan) to end and be
 * reaped; true if none is left. */
static bool reap_all_within(double seconds)
{
    double end = check_now() + seconds;
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid < 0 && errno == ECHILD)
            return true;
        if (pid == 0) {
            if (check_now() > end)
                return false;
            cth_sleep(0.005);
        }
    }
}

CTH_TEST(launch_parent_killed)
{
    REQUIRE_PIDFDS();
    become_subreaper();
    for (size_t i = 0; i < NMETHODS; i++) {
        int fds[2];
        CHECK_OK(pipe(fds));
        pid_t parent = fork();
        CHECK(parent >= 0);
        if (parent == 0) {
            close(fds[0]);
            struct cth__proc proc;
            if (cth__proc_launch(methods[i], sleep_entry, NULL, 0, &proc) != 0)
                _exit(1);
            if (write(fds[1], &proc.pid, sizeof proc.pid) != sizeof proc.pid)
                _exit(2);
            for (;;)
                pause();
        }
        close(fds[1]);
        pid_t worker;
        CHECK_EQ(read(fds[0], &worker, sizeof worker), sizeof worker);
        close(fds[0]);
        CHECK(pid_exists(worker));
        CHECK_OK(kill(parent, SIGKILL));
        int status;
        CHECK_EQ(waitpid(parent, &status, 0), parent);
        CHECK(WIFSIGNALED(status));
        /* The worker (and a fork server) come to us, killed. */
        CHECK(reap_all_within(2.0));
        CHECK(!pid_exists(worker));
    }
}

/* ---- what crosses to a worker --------------------------------------------------------- */

struct call_arg {
    struct cth__funcref fn; /* int (*)(int), named here */
    int x;
};

/* Resolve the parent's name for a function, call it, send back the value
 * and the address it has here. */
static int call_entry(const void *arg, size_t size, int chan)
{
    if (size != sizeof(struct call_arg))
        return 100;
    const struct call_arg *call = arg;
    void *fn;
    int rc = cth__funcref_resolve(&call->fn, &fn);
    if (rc)
        return 103;
    long reply[2] = {((int (*)(int))(uintptr_t)fn)(call->x), (long)(uintptr_t)fn};
    return send(chan, reply, sizeof reply, MSG_NOSIGNAL) == sizeof reply ? 0 : 101;
}

/* Whether this process's layout is randomized (no ADDR_NO_RANDOMIZE, ASLR on). */
static bool layout_randomized(void)
{
    FILE *f = fopen("/proc/sys/kernel/randomize_va_space", "r");
    int level = 0;
    if (f) {
        if (fscanf(f, "%d", &level) != 1)
            level = 0;
        fclose(f);
    }
    return level > 0 && !(personality(0xffffffff) & ADDR_NO_RANDOMIZE);
}

CTH_TEST(funcref_across_spawn)
{
    REQUIRE_PIDFDS();
    const struct {
        int (*fn)(int);
        int want;
    } cases[] = {{twice, 14}, {thrice, 21}, {abs, 7}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct call_arg arg;
        memset(&arg, 0, sizeof arg);
        CHECK_OK(cth__funcref_make(FN(cases[i].fn), &arg.fn));
        arg.x = i == 2 ? -7 : 7;
        struct cth__proc proc = launch(CTH_START_SPAWN, call_entry, &arg, sizeof arg);
        long reply[2];
        CHECK_EQ(recv_bytes(proc.chan, reply, sizeof reply), sizeof reply);
        CHECK_EQ(reply[0], cases[i].want);
        /* The same function, elsewhere: the child's layout is its own. */
        if (layout_randomized() && i < 2)
            CHECK(reply[1] != (long)(uintptr_t)cases[i].fn);
        CHECK_EQ(wait_status(&proc), 0);
        cth__proc_release(&proc);
    }
}

/* Check the bytes of a large arg and that the spawn marker is gone. */
static int big_entry(const void *arg, size_t size, int chan)
{
    CTH__UNUSED(chan);
    const unsigned char *bytes = arg;
    for (size_t i = 0; i < size; i++)
        if (bytes[i] != (unsigned char)(i * 7 + 3))
            return 10;
    return getenv("CTHREADING_PROC_BOOT") ? 11 : (int)(size % 200);
}

CTH_TEST(launch_big_arg)
{
    REQUIRE_PIDFDS();
    size_t size = 300007; /* more than a socket's buffer, not a multiple of a chunk */
    unsigned char *bytes = malloc(size);
    CHECK(bytes);
    for (size_t i = 0; i < size; i++)
        bytes[i] = (unsigned char)(i * 7 + 3);
    for (size_t i = 0; i < NMETHODS; i++) {
        struct cth__proc proc = launch(methods[i], big_entry, bytes, size);
        int status = wait_status(&proc);
        CHECK(WIFEXITED(status));
        CHECK_EQ(WEXITSTATUS(status), (int)(size % 200));
        cth__proc_release(&proc);
        proc = launch(methods[i], big_entry, NULL, 0);
        CHECK_EQ(wait_status(&proc), 0);
        cth__proc_release(&proc);
    }
    free(bytes);
}

/* Send back /proc/self/cmdline. */
static int cmdline_entry(const void *arg, size_t size, int chan)
{
    CTH__UNUSED(arg);
    CTH__UNUSED(size);
    char buf[4096];
    int fd = open("/proc/self/cmdline", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0)
        close(fd);
    return n >= 0 && send(chan, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : 101;
}

CTH_TEST(launch_spawn_keeps_argv)
{
    REQUIRE_PIDFDS();
    char mine[4096], theirs[4096];
    int fd = open("/proc/self/cmdline", O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, mine, sizeof mine);
    close(fd);
    CHECK(n > 0);
    struct cth__proc proc = launch(CTH_START_SPAWN, cmdline_entry, NULL, 0);
    CHECK_EQ(recv_bytes(proc.chan, theirs, sizeof theirs), n);
    CHECK(memcmp(mine, theirs, (size_t)n) == 0);
    CHECK_EQ(wait_status(&proc), 0);
    cth__proc_release(&proc);
}

/* ---- the fork server ------------------------------------------------------------------ */

/* Launch an ids_entry worker, return its parent (its server) and release it. */
static pid_t server_of_new_worker(cth_start_method_t m)
{
    struct cth__proc proc = launch(m, ids_entry, NULL, 0);
    pid_t ids[2];
    CHECK_EQ(recv_bytes(proc.chan, ids, sizeof ids), sizeof ids);
    CHECK_EQ(ids[0], proc.pid);
    cth__proc_release(&proc);
    CHECK(proc.reaped);
    return ids[1];
}

#define SERVER_THREADS 4
#define SERVER_LAUNCHES 8

static void *launch_many(void *arg)
{
    pid_t *servers = arg;
    for (int i = 0; i < SERVER_LAUNCHES; i++) {
        int want = i;
        struct cth__proc proc = launch(CTH_START_FORKSERVER, echo_entry, &want, sizeof want);
        send_bytes(proc.chan, "x", 1);
        char c;
        CHECK_EQ(recv_bytes(proc.chan, &c, 1), 1);
        int status = wait_status(&proc);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == want);
        cth__proc_release(&proc);
        servers[i] = server_of_new_worker(CTH_START_FORKSERVER);
    }
    return NULL;
}

CTH_TEST(forkserver_serves_many)
{
    REQUIRE_PIDFDS();
    pid_t server = server_of_new_worker(CTH_START_DEFAULT); /* the default method */
    CHECK(server != getpid());
    int status;
    CHECK_EQ(waitpid(server, &status, WNOHANG), 0); /* our child, alive */
    pid_t servers[SERVER_THREADS][SERVER_LAUNCHES];
    cth_thread_t *t[SERVER_THREADS];
    for (int i = 0; i < SERVER_THREADS; i++) {
        CHECK_OK(cth_thread_create(&t[i], launch_many, servers[i], NULL));
        CHECK_OK(cth_thread_start(t[i]));
    }
    for (int i = 0; i < SERVER_THREADS; i++) {
        CHECK_OK(cth_thread_join(t[i], NULL, CTH_FOREVER));
        cth_thread_free(t[i]);
        for (int k = 0; k < SERVER_LAUNCHES; k++)
            CHECK_EQ(servers[i][k], server);
    }
}

CTH_TEST(forkserver_replaced_when_dead)
{
    REQUIRE_PIDFDS();
    struct cth__proc proc = launch(CTH_START_FORKSERVER, ids_entry, NULL, 0);
    pid_t ids[2];
    CHECK_EQ(recv_bytes(proc.chan, ids, sizeof ids), sizeof ids);
    CHECK_OK(kill(ids[1], SIGKILL)); /* the server: its worker dies with it */
    int status = wait_status(&proc);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    cth__proc_release(&proc);
    CHECK(!pid_exists(ids[1])); /* reaped once found dead */
    pid_t server = server_of_new_worker(CTH_START_FORKSERVER);
    CHECK(server != ids[1]);
    CHECK_EQ(server_of_new_worker(CTH_START_FORKSERVER), server);
}

CTH_TEST(forkserver_exits_with_parent)
{
    REQUIRE_PIDFDS();
    become_subreaper();
    pid_t parent = fork();
    CHECK(parent >= 0);
    if (parent == 0) {
        pid_t server = server_of_new_worker(CTH_START_FORKSERVER);
        _exit(server > 0 && server != getpid() ? 0 : 1);
    }
    int status;
    CHECK_EQ(waitpid(parent, &status, 0), parent);
    CHECK_EQ(status, 0);
    CHECK(reap_all_within(2.0)); /* the server saw its socket close, and exited */
}

CTH_TEST(forkserver_not_shared_with_fork_child)
{
    REQUIRE_PIDFDS();
    pid_t server = server_of_new_worker(CTH_START_FORKSERVER);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        /* The child starts a server of its own, and leaves the parent's alone. */
        pid_t own = server_of_new_worker(CTH_START_FORKSERVER);
        _exit(own != server && own != getppid() ? 0 : 1);
    }
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_EQ(status, 0);
    CHECK_EQ(server_of_new_worker(CTH_START_FORKSERVER), server);
}

static void *wait_in_thread(void *arg)
{
    struct cth__proc *proc = arg;
    wait_status(proc);
    return NULL;
}

CTH_TEST(forkserver_report_waited_for)
{
    REQUIRE_PIDFDS();
    struct cth__proc proc = launch(CTH_START_FORKSERVER, ids_entry, NULL, 0);
    pid_t ids[2];
    CHECK_EQ(recv_bytes(proc.chan, ids, sizeof ids), sizeof ids);
    CHECK_OK(kill(ids[1], SIGSTOP)); /* the server cannot report now */
    CHECK_OK(cth__proc_kill(&proc, SIGKILL));
    while (!cth__proc_ended(&proc))
        cth_sleep(0.001);
    double start = check_now();
    CHECK_EQ(cth__proc_wait(&proc, cth__deadline(0.1)), CTH_ETIMEDOUT);
    CHECK_WAITED_AT_LEAST(start, 0.1);
    CHECK(!proc.reaped);
    /* A thread waits for the report without limit; meanwhile fork() (whose
     * handler takes the server's lock) is not held up. */
    cth_thread_t *t;
    CHECK_OK(cth_thread_create(&t, wait_in_thread, &proc, NULL));
    CHECK_OK(cth_thread_start(t));
    cth_sleep(0.05);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0)
        _exit(0);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    CHECK_OK(kill(ids[1], SIGCONT));
    CHECK_OK(cth_thread_join(t, NULL, CTH_FOREVER));
    cth_thread_free(t);
    CHECK(proc.reaped && WIFSIGNALED(proc.status) && WTERMSIG(proc.status) == SIGKILL);
    cth__proc_release(&proc);
    CHECK_EQ(server_of_new_worker(CTH_START_FORKSERVER), ids[1]); /* the same server */
}
