#!/bin/sh
# SPDX-License-Identifier: MIT
# soak.sh BUILD SECONDS - run the stress tests (ctest -L stress; the model
# stress draws a fresh seed each time) one after another, round after round,
# until SECONDS have passed. Sums the "ops: N" lines the stress programs
# print, and stops at the first violation with its output (the model
# stress's first line is its seed), exiting non-zero.
set -u
build=${1:-build}
seconds=${2:-600}
log=$build/soak.log
tests=$(cd "$build" && ctest -N -L stress | sed -n 's/^ *Test *#[0-9]*: *//p')
[ -n "$tests" ] || { echo "soak: no stress tests in $build"; exit 1; }
end=$(( $(date +%s) + seconds ))
runs=0 ops=0 rounds=0
while [ "$(date +%s)" -lt "$end" ]; do
  rounds=$((rounds + 1))
  for t in $tests; do
    [ "$(date +%s)" -lt "$end" ] || break
    if ! (cd "$build" && ctest -V -R "^$t\$") >"$log" 2>&1; then
      grep -v '^[0-9]*: Test command' "$log" | tail -40
      echo "soak: VIOLATION in $t (round $rounds) after $runs runs, $ops ops; full log: $log"
      exit 1
    fi
    n=$(sed -n 's/^[0-9]*: ops: \([0-9]*\)$/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
    ops=$((ops + n))
    runs=$((runs + 1))
  done
done
echo "soak: $seconds s, $rounds rounds, $runs stress test runs, ops: $ops, violations: 0"
