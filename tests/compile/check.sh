#!/bin/sh
# SPDX-License-Identifier: MIT
# check.sh INCLUDE_DIR - compile (never link or run) tests/compile/guards.c
# with clang -Wall -Wextra -Wpedantic -Wshadow -Werror and headers.cpp with
# clang++ -Werror: the C-only guard macros give no warning (no unused
# variable), and the synchronization headers stay usable from C++.
# Exits 77 (CTest's "skipped") when clang is not installed.
set -eu
include=$1
here=$(dirname "$0")
if ! command -v clang >/dev/null 2>&1; then
    echo "clang not installed: skipped"
    exit 77
fi
clang -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Werror -fsyntax-only -I"$include" "$here/guards.c"
echo "clang C11: guards.c compiles without warnings"
if command -v clang++ >/dev/null 2>&1; then
    clang++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$include" "$here/headers.cpp"
    echo "clang++ C++17: headers.cpp compiles without warnings"
else
    echo "clang++ not installed: the C++ check skipped"
fi
