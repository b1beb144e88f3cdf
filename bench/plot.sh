#!/bin/sh
# SPDX-License-Identifier: MIT
# Draw one PNG bar chart per benchmark from bench/results.jsonl (run from the
# build directory, after the benchmarks): each system's median value, with
# its ratio to the baseline as the label. Needs gnuplot (Debian's
# gnuplot-nox); without it, says so and draws nothing.
set -eu
results=${1:-bench/results.jsonl}
outdir=$(dirname "$results")/plots
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "plots: gnuplot not found (apt-get install gnuplot-nox), none drawn"
  exit 0
fi
mkdir -p "$outdir"
# Our own JSON lines have a fixed shape: pull the fields out with awk.
awk -v outdir="$outdir" '
  function field(name,   re, s) {
    re = "\"" name "\": (\"[^\"]*\"|[^,}]*)"
    if (match($0, re)) { s = substr($0, RSTART + length(name) + 4, RLENGTH - length(name) - 4); gsub(/"/, "", s); return s }
    return ""
  }
  {
    b = field("bench"); m = field("metric"); key = b " (" m ")"
    file = key; gsub(/[^A-Za-z0-9]+/, "_", file)
    v = field("value"); r = field("ratio")
    if (v == "null") next
    if (!(key in seen)) { seen[key] = 1; order[++n] = key; names[key] = file; units[key] = field("unit") }
    printf "\"%s\" %s \"%sx\"\n", field("system"), v, (r == "null" ? "?" : sprintf("%.2f", r)) > (outdir "/" file ".dat")
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; f = outdir "/" names[k]
      print "set terminal pngcairo size 900,420 noenhanced" > (f ".gp")
      print "set output \"" f ".png\"" > (f ".gp")
      print "set title \"" k "\"" > (f ".gp")
      print "set ylabel \"" units[k] "\"" > (f ".gp")
      print "set style fill solid 0.6; set boxwidth 0.6; set yrange [0:*]; set xtics rotate by -20; unset key" > (f ".gp")
      print "plot \"" f ".dat\" using 0:2:xtic(1) with boxes, \"\" using 0:2:3 with labels offset 0,1" > (f ".gp")
    }
  }' "$results"
count=0
for gp in "$outdir"/*.gp; do
  [ -e "$gp" ] || continue
  gnuplot "$gp" 2>/dev/null || gnuplot -e "set terminal png" "$gp" 2>/dev/null || true
  rm -f "$gp" "${gp%.gp}.dat"
  count=$((count + 1))
done
echo "plots: $count PNG files in $outdir"
