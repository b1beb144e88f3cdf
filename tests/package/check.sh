#!/bin/sh
# SPDX-License-Identifier: MIT
# Install cthreading into a scratch prefix, then build examples/ as an
# outside project against it twice: with pkg-config and with
# find_package(cthreading). Run from the top of the tree after a build in
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
