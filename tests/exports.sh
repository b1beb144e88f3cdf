#!/bin/sh
# SPDX-License-Identifier: MIT
# exports.sh LIBRARY SOURCE_DIR [OBJDUMP] - the shared library's dynamic
# symbols (objdump -T): every symbol it defines is a cth_ name under the
# version node CTHREADING_0.1 (cmake/cthreading.map), and every function the
# public headers declare CTH_API is among them. Lists each offender.
set -eu
lib=$1
src=$2
objdump=${3:-objdump}

dump=$("$objdump" -T "$lib")
# Defined symbols: "address flags section size version name", not *UND*.
defined=$(echo "$dump" | awk '$1 ~ /^[0-9a-f]+$/ && NF >= 6 && $0 !~ /\*UND\*/ { print $(NF-1), $NF }')
[ -n "$defined" ] || { echo "no defined symbols in $lib"; exit 1; }

fail=0
# The version node defines itself as an absolute symbol; skip it.
bad=$(echo "$defined" | awk '$2 != "CTHREADING_0.1" && ($1 != "CTHREADING_0.1" || $2 !~ /^cth_/)')
if [ -n "$bad" ]; then
  echo "exported without the cth_ prefix or the CTHREADING_0.1 version node (version name):"
  echo "$bad" | sed 's/^/  /'
  fail=1
fi

exported=$(echo "$defined" | awk '{ print $2 }')
# mpi.h is libcthreading-mpi's, not this library's.
declared=$(ls "$src"/include/cthreading/*.h | grep -v '/mpi\.h$' | xargs sed -n 's/^CTH_API [^(]*[ *]\(cth_[A-Za-z0-9_]*\) *(.*/\1/p' |
  sort -u)
missing=$(echo "$declared" | grep -vxF "$exported" || true)
if [ -n "$missing" ]; then
  echo "declared CTH_API in include/cthreading/ but not exported:"
  echo "$missing" | sed 's/^/  /'
  fail=1
fi

n=$(echo "$exported" | grep -c '^cth_' || true)
[ $fail = 0 ] && echo "$n symbols exported, all cth_* under CTHREADING_0.1; $(echo "$declared" | wc -l) declared, all there"
exit $fail
