/* SPDX-License-Identifier: MIT */
/*
 * funcref.h - naming a function across processes that run the same
 * executable: the loaded object that holds it (the executable or a shared
 * library, by its path) and its offset there. The name is made in one
 * process and resolved in another, whose address layout differs (ASLR,
 * spawn); nothing is registered beforehand.
 */
#ifndef CTH_FUNCREF_H
#define CTH_FUNCREF_H

#include <stddef.h>
#include <stdint.h>

#ifndef CTH__BACKEND_API /* exported from the shared core for libcthreading-mpi */
#define CTH__BACKEND_API __attribute__((visibility("default")))
#endif

/* A function's name: plain bytes, safe to copy into shared memory or a
 * message. path is the object's path as the dynamic loader lists it ("" for
 * the main executable), NUL-terminated. */
struct cth__funcref {
    uint64_t offset;   /* the function's address minus its object's load base */
    uint32_t path_len; /* strlen(path) */
    char path[4096];   /* the object's path, NUL-terminated */
};

/* Name fn. Returns 0; CTH_ENOENT when fn lies in no loaded object's
 * executable segment; CTH_EINVAL for NULL. */
CTH__BACKEND_API int cth__funcref_make(const void *fn, struct cth__funcref *ref);

/* The address of ref's function in this process. Returns 0 and *fn;
 * CTH_ENOENT when no object of that path is loaded here; CTH_EPROTO when
 * the ref is malformed (path not terminated where path_len says, or the
 * offset outside the object's executable segments): a ref that came from
 * another process is never trusted. */
CTH__BACKEND_API int cth__funcref_resolve(const struct cth__funcref *ref, void **fn);

#endif
