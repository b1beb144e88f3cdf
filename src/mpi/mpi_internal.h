/* SPDX-License-Identifier: MIT */
/*
 * mpi_internal.h - libcthreading-mpi's private tunable, for its tests.
 */
#ifndef CTH_MPI_INTERNAL_H
#define CTH_MPI_INTERNAL_H

#include <stddef.h>

/* The largest message of a request's input or a reply's output: longer
 * streams go in pieces of this many bytes (an MPI count is an int). Every
 * rank must use the same value; a test lowers it, before
 * cth_mpi_pool_create at every rank, to split small buffers. */
#define CTH__MPI_PIECE ((size_t)1 << 30)
extern size_t cth__mpi_piece;

#endif
