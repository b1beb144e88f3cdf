/* SPDX-License-Identifier: MIT */
/*
 * thread_record.h - a thread's record and the registry that holds it: what
 * thread.c (the Thread object) and runtime.c (the registry, adoption,
 * shutdown, fork) share. No other file includes it.
 */
#ifndef CTH_THREAD_RECORD_H
#define CTH_THREAD_RECORD_H

#include <pthread.h>

#include "cthreading/thread.h"
#include "list.h"
#include "platform.h"

enum thread_kind { KIND_NORMAL, KIND_MAIN, KIND_ADOPTED };

struct cth_thread {
    _Atomic uint32_t refs;
    _Atomic uint32_t state;        /* cth_thread_state_t */
    _Atomic uint32_t join_waiters; /* joiners asleep on state */
    _Atomic uint32_t reaped;       /* futex: 0 not yet, 1 being reaped (3: with waiters), 2 done */
    _Atomic uint32_t native_ready; /* futex: 1 native_id published; 0 not yet (2: with waiters) */
    _Atomic uint32_t os_name_due;  /* the name is to reach the OS once the thread runs */
    _Atomic int end_cpu;           /* the CPU the thread ran on when it finished */
    enum thread_kind kind;
    bool daemon;
    bool hidden; /* the library's own thread, not listed unless acting (under cth__registry_lock) */
    /* Set by the thread itself while it acts for another (cth__thread_act_begin),
     * read without the lock: it is listed, shows acting_daemon, and its name is
     * the one the acting namer gives for acting_for (NULL: its own). Readers of
     * that name count themselves in name_readers, under cth__registry_lock;
     * the thread's act_end waits for them to leave. */
    _Atomic bool acting;
    _Atomic bool acting_daemon;
    const void *_Atomic acting_for;
    _Atomic uint32_t name_readers;
    _Atomic bool renamed_acting; /* renamed while acting: own_name keeps its own */
    char *own_name;              /* under cth__registry_lock */
    cth_thread_fn fn;
    void *arg;
    void *result;
    size_t stack_size;
    /* The name, under cth__registry_lock: `name` when given or set, else
     * "<name_prefix>-<name_number>", made only when someone asks for it. */
    char *name;
    const char *name_prefix;
    unsigned long name_number;
    _Atomic unsigned long ident;
    _Atomic long native_id;
    pthread_t pthread;
    struct cth__list_node registry_link; /* under cth__registry_lock */
};

/* Guards the registry, the names and the counters (a pthread mutex: its
 * waits never see the main thread's interruptions). */
extern pthread_mutex_t cth__registry_lock;

/* The main thread's record: the initial one, or after a fork the thread
 * that forked; its name is cth__main_name until it is renamed. */
extern struct cth_thread *cth__main_thread;
extern char cth__main_name[];

/* The calling thread's record, when it is a cthreading thread, the main
 * thread or adopted; else NULL. */
extern _Thread_local struct cth_thread *cth__tls_current __attribute__((tls_model("initial-exec")));

/* The calling thread's record without adopting it: NULL in a foreign thread. */
struct cth_thread *cth__self_or_null(void);

/* Link into / unlink from the registry (under cth__registry_lock). */
void cth__registry_link(struct cth_thread *t);
void cth__registry_unlink(struct cth_thread *t);

/* Under cth__registry_lock: 0, counting a non-daemon thread, or
 * CTH_ESHUTDOWN once shutdown has finished waiting. */
int cth__admit_locked(bool nondaemon);

/* Under cth__registry_lock: name (malloc'ed) becomes t's name; a thread that
 * acts for another keeps its own for the end of the act. Returns the
 * replaced name to free, or NULL. */
char *cth__thread_rename_locked(struct cth_thread *t, char *name);

/* Give t the default name "<prefix>-N", N counting the threads named so. */
void cth__thread_name_default(struct cth_thread *t, const char *prefix);

/* Under cth__registry_lock: copy t's name into buf as snprintf does (size
 * bytes, NUL-terminated, buf may be NULL for size 0); its full length. */
size_t cth__thread_name_copy(const struct cth_thread *t, char *buf, size_t size);

/* The thread leaves the registry and is FINISHED; joiners and shutdown are
 * told. */
void cth__thread_finish(struct cth_thread *t);

/* Drop one reference; the last one frees the record. */
void cth__thread_unref(struct cth_thread *t);

#endif
