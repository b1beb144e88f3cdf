#!/bin/sh
# SPDX-License-Identifier: MIT
# Install cthreading into a scratch prefix, then build examples/ as an
# outside project against it twice: with pkg-config and with
# find_package(cthreading), and a program over MPI ranks when
# libcthreading-mpi is installed. Run from the top of the tree after a build in
# $BUILD (default build). Prints what it does; exits non-zero on failure.
set -eu
BUILD=${BUILD:-build}
prefix=$(mktemp -d)
out=$(mktemp -d)
trap 'rm -rf "$prefix" "$out"' EXIT

cmake --install "$BUILD" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -1 | xargs dirname)
echo "installed into $prefix: $(ls "$libdir" | grep cthreading | tr '\n' ' ')"
pages=$(ls "$prefix"/share/man/man3 2>/dev/null | wc -l)
[ -f "$prefix/share/man/man3/cth_queue_get.3" ] || { echo "no man pages installed"; exit 1; }
echo "man pages installed: $pages"

echo "== pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs cthreading)
cc -std=c11 -D_GNU_SOURCE -o "$out/tour" examples/tour/*.c $flags -lm -Wl,-rpath,"$libdir"
for src in examples/*.c; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .c)
  cc -std=c11 -D_GNU_SOURCE -o "$out/$name" "$src" $flags -lm -Wl,-rpath,"$libdir"
done
"$out/tour" --list >/dev/null
echo "pkg-config build ok"

echo "== find_package"
cmake -S examples -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$out/cmake" -j2 >/dev/null
"$out/cmake/tour" --list >/dev/null
echo "find_package build ok"

# libcthreading-mpi, when it was built: a program over ranks, both ways,
# run under mpirun with 2 ranks.
[ -f "$prefix/include/cthreading/mpi.h" ] || { echo "no libcthreading-mpi installed: MPI part skipped"; exit 0; }
echo "== libcthreading-mpi"
cat >"$out/ranks.c" <<'C'
#include <cthreading/mpi.h>
#include <stdio.h>

static int twice(const void *in, void *out)
{
    *(int *)out = 2 * *(const int *)in;
    return 0;
}

int main(int argc, char **argv)
{
    int provided, in[100], out[100];
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    cth_pool_t *pool;
    int err = cth_mpi_pool_create(MPI_COMM_WORLD, 0, NULL, &pool);
    if (err == 0) {
        for (int i = 0; i < 100; i++)
            in[i] = i;
        err = cth_pool_map_records(pool, twice, in, sizeof *in, 100, 0, out, sizeof *out);
        printf("%d\n", err == 0 ? out[99] : err);
        cth_pool_free(pool);
    }
    MPI_Finalize();
    return err == 0 || err == CTH_MPI_WORKER ? 0 : 1;
}
C
ompi_flags=""
mpirun --version 2>&1 | grep -q "Open MPI" && ompi_flags="--allow-run-as-root --oversubscribe"
mpi_run() { mpirun $ompi_flags -np 2 "$@" 2>/dev/null; }
flags=$(pkg-config --cflags --libs cthreading-mpi)
cc -std=c11 -o "$out/ranks" "$out/ranks.c" $flags -Wl,-rpath,"$libdir"
[ "$(mpi_run "$out/ranks")" = 198 ] || { echo "pkg-config MPI program failed"; exit 1; }
echo "pkg-config MPI build ok"
mkdir -p "$out/mpi-src"
cp "$out/ranks.c" "$out/mpi-src/"
cat >"$out/mpi-src/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.16)
project(ranks LANGUAGES C)
find_package(cthreading REQUIRED COMPONENTS mpi)
add_executable(ranks ranks.c)
target_link_libraries(ranks PRIVATE cthreading::cthreading-mpi)
C
cmake -S "$out/mpi-src" -B "$out/mpi-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$out/mpi-build" >/dev/null
[ "$(mpi_run "$out/mpi-build/ranks")" = 198 ] || { echo "find_package MPI program failed"; exit 1; }
echo "find_package(cthreading COMPONENTS mpi) build ok"
