#!/bin/sh
# SPDX-License-Identifier: MIT
# `make lint`: clang-tidy (.clang-tidy) and cppcheck (tools/cppcheck.supp)
# over the library's sources, compiled as CMake compiles them: from the
# compile_commands.json of a build tree (BUILD_LINT, default build-lint).
# The POSIX futex emulation is checked from a second tree configured with
# it. Any finding fails. JOBS clang-tidy processes run at once.
set -eu
cd "$(dirname "$0")/.."
BUILD_LINT=${BUILD_LINT:-build-lint}
JOBS=${JOBS:-2}

for tool in clang-tidy cppcheck; do
  command -v $tool >/dev/null 2>&1 || {
    echo "$tool not found (apt-get install clang-tidy cppcheck)" >&2
    exit 2
  }
done

configure() { # build dir, extra cmake flags
  cmake -S . -B "$1" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCTH_BUILD_TESTS=OFF \
    -DCTH_BUILD_EXAMPLES=OFF "$@" >/dev/null
}
configure "$BUILD_LINT"
configure "$BUILD_LINT-posix" -DCTH_POSIX_FUTEX=ON

status=0
echo "clang-tidy ($(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1))"
# Each file of src/ once; futex_posix.c is only in the POSIX tree.
{
  for f in $(find src -name '*.c' ! -name futex_posix.c | sort); do echo "$BUILD_LINT $f"; done
  echo "$BUILD_LINT-posix src/unix/futex_posix.c"
} | xargs -P "$JOBS" -n 2 sh -c 'clang-tidy --quiet -p "$0" "$1" 2>/dev/null' || status=1

echo "cppcheck ($(cppcheck --version))"
for dir in "$BUILD_LINT" "$BUILD_LINT-posix"; do
  cppcheck --project="$dir/compile_commands.json" --enable=warning,performance,portability,style \
    --suppressions-list=tools/cppcheck.supp --inline-suppr --quiet --error-exitcode=1 \
    -j "$JOBS" || status=1
done

[ $status = 0 ] && echo "lint: clean" || echo "lint: findings above" >&2
exit $status
