/* SPDX-License-Identifier: MIT */
/*
 * funcref.c - naming a function by its loaded object and offset (Linux).
 *
 * Both directions walk the dynamic loader's list of loaded objects
 * (dl_iterate_phdr, which holds the loader's lock while it walks, so a
 * dlopen or dlclose in another thread cannot change an object under it).
 * Naming looks for the object with an executable PT_LOAD segment (PF_X)
 * that holds the address, and records the address minus that object's load
 * base and the object's path as the loader lists it (the main executable's
 * is ""). Resolving copies the ref first (it may lie in memory another
 * process writes), checks that the path ends where path_len says, finds the
 * object of that path and checks that the offset falls inside one of its
 * executable segments, so a forged or stale ref can only name code that is
 * mapped executable, never data or nothing. The main executable, where most
 * functions live, cannot be unloaded: its base and executable segments are
 * read once (pthread_once, so thread-safe and inherited as is by a fork
 * child) and both directions serve it without taking the loader's lock.
 * Other objects may be unloaded and reloaded elsewhere at any time, so they
 * are looked up by a fresh walk each time (a few objects, microseconds).
 */
#include <link.h>
#include <string.h>

#include "cthreading/once.h"
#include "funcref.h"
#include "platform.h"

/* The executable segments of one object, as offsets from its base. */
#define MAX_EXEC_SEGMENTS 8

struct exec_segments {
    uintptr_t base;
    size_t n;
    uintptr_t lo[MAX_EXEC_SEGMENTS], hi[MAX_EXEC_SEGMENTS]; /* [lo, hi) */
};

static void segments_of(const struct dl_phdr_info *info, struct exec_segments *segs)
{
    segs->base = (uintptr_t)info->dlpi_addr;
    segs->n = 0;
    for (size_t i = 0; i < info->dlpi_phnum && segs->n < MAX_EXEC_SEGMENTS; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || ph->p_memsz == 0)
            continue;
        segs->lo[segs->n] = (uintptr_t)ph->p_vaddr;
        segs->hi[segs->n] = (uintptr_t)ph->p_vaddr + (uintptr_t)ph->p_memsz;
        segs->n++;
    }
}

/* Whether offset (from the object's base) lies in one of its executable segments. */
static bool segments_hold(const struct exec_segments *segs, uint64_t offset)
{
    for (size_t i = 0; i < segs->n; i++)
        if (offset >= segs->lo[i] && offset < segs->hi[i])
            return true;
    return false;
}

/* ---- the main executable, read once ----------------------------------------------- */

/* cth_once rather than pthread_once: its atomics tell helgrind what they
 * order, so the cache's readers are not taken for racing its writer. */
static cth_once_t main_once = CTH_ONCE_INIT;
static struct exec_segments main_segs; /* n == 0 if the loader did not list it */

static int find_main(struct dl_phdr_info *info, size_t size, void *data)
{
    CTH__UNUSED(size);
    CTH__UNUSED(data);
    if (info->dlpi_name && info->dlpi_name[0] == '\0') {
        segments_of(info, &main_segs);
        return 1;
    }
    return 0;
}

static int read_main(void *arg)
{
    CTH__UNUSED(arg);
    dl_iterate_phdr(find_main, NULL);
    return 0;
}

/* The main executable's segments; NULL if they are not known (an
 * interrupted main thread waited for another thread reading them): the
 * caller then searches every object. */
static const struct exec_segments *main_object(void)
{
    return cth_once_call(&main_once, read_main, NULL) == 0 ? &main_segs : NULL;
}

/* ---- naming --------------------------------------------------------------------- */

struct make_search {
    uintptr_t addr;
    struct cth__funcref *ref;
    int rc;
};

static int find_holder(struct dl_phdr_info *info, size_t size, void *data)
{
    CTH__UNUSED(size);
    struct make_search *s = data;
    struct exec_segments segs;
    segments_of(info, &segs);
    uint64_t offset = (uint64_t)(s->addr - segs.base);
    if (s->addr < segs.base || !segments_hold(&segs, offset))
        return 0;
    const char *path = info->dlpi_name ? info->dlpi_name : "";
    size_t len = strlen(path);
    if (len >= sizeof s->ref->path) {
        s->rc = CTH_ENOENT; /* a path no ref can carry */
        return 1;
    }
    s->ref->offset = offset;
    s->ref->path_len = (uint32_t)len;
    memcpy(s->ref->path, path, len + 1);
    s->rc = 0;
    return 1;
}

int cth__funcref_make(const void *fn, struct cth__funcref *ref)
{
    if (!fn || !ref)
        return CTH_EINVAL;
    uintptr_t addr = (uintptr_t)fn;
    const struct exec_segments *exe = main_object();
    if (exe && exe->n && addr >= exe->base && segments_hold(exe, (uint64_t)(addr - exe->base))) {
        ref->offset = (uint64_t)(addr - exe->base);
        ref->path_len = 0;
        ref->path[0] = '\0';
        return 0;
    }
    struct make_search s = {addr, ref, CTH_ENOENT};
    dl_iterate_phdr(find_holder, &s);
    return s.rc;
}

/* ---- resolving ------------------------------------------------------------------ */

struct resolve_search {
    const char *path;
    uint64_t offset;
    uintptr_t addr;
    int rc;
};

static int find_named(struct dl_phdr_info *info, size_t size, void *data)
{
    CTH__UNUSED(size);
    struct resolve_search *s = data;
    if (!info->dlpi_name || strcmp(info->dlpi_name, s->path) != 0)
        return 0;
    struct exec_segments segs;
    segments_of(info, &segs);
    if (segments_hold(&segs, s->offset)) {
        s->addr = segs.base + (uintptr_t)s->offset;
        s->rc = 0;
    } else {
        s->rc = CTH_EPROTO;
    }
    return 1;
}

int cth__funcref_resolve(const struct cth__funcref *ref, void **fn)
{
    if (!ref || !fn)
        return CTH_EINVAL;
    /* One read of each field: the ref may lie in memory another process writes. */
    struct resolve_search s = {NULL, 0, 0, CTH_ENOENT};
    char path[sizeof ref->path];
    uint32_t len = *(const volatile uint32_t *)&ref->path_len;
    if (len >= sizeof path)
        return CTH_EPROTO;
    memcpy(path, ref->path, (size_t)len + 1);
    if (path[len] != '\0' || strlen(path) != len)
        return CTH_EPROTO;
    s.offset = *(const volatile uint64_t *)&ref->offset;
    s.path = path;
    const struct exec_segments *exe = len == 0 ? main_object() : NULL;
    if (exe) {
        if (!exe->n)
            return CTH_ENOENT;
        if (!segments_hold(exe, s.offset))
            return CTH_EPROTO;
        *fn = (void *)(exe->base + (uintptr_t)s.offset);
        return 0;
    }
    dl_iterate_phdr(find_named, &s);
    if (s.rc == 0)
        *fn = (void *)s.addr;
    return s.rc;
}
