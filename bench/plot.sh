#!/bin/sh
# SPDX-License-Identifier: MIT
# The one-screen summary and the plots of bench/results.jsonl (run from the
# build directory, after the benchmarks; `make bench` does both).
#
# Summary: one entry per cthreading row of each comparison, its value
# against the first peer of the comparison (the row group's first system not
# named cthreading), as "N.NNx better" or "N.NNx worse" whichever way the
# unit reads, two entries a line.
#
# Plots (gnuplot; Debian's gnuplot-nox, which `make bench` installs): one
# PNG per comparison (benchmark and metric) with two or more systems, the
# cthreading bars in blue and the peers in grey, each labelled with its value
# and its ratio to the baseline; a comparison of one system folds into a
# plot of that benchmark's metrics instead (no single-bar plots). Every title
# says "lower is better" or "higher is better"; the axis is logarithmic when
# the values span more than 30x; every number has one format, three
# significant digits with k, M, G (as in the tables). overview.png draws the
# summary: cthreading's advantage per comparison on a log axis around 1.
set -eu
results=${1:-bench/results.jsonl}
outdir=$(dirname "$results")/plots
mkdir -p "$outdir"
rm -f "$outdir"/*.png
# Our own JSON lines have a fixed shape: pull the fields out with awk.
awk -v outdir="$outdir" '
  function field(name,   re, s) {
    re = "\"" name "\": (\"[^\"]*\"|[^,}]*)"
    if (match($0, re)) { s = substr($0, RSTART + length(name) + 4, RLENGTH - length(name) - 4); gsub(/"/, "", s); return s }
    return ""
  }
  # The number format of the tables: three significant digits, k/M/G/T.
  function fmt(v,   s, i) {
    s = ""; i = 0
    while ((v >= 999.5 || v <= -999.5) && i < 4) { v /= 1000; i++ }
    return sprintf("%.3g", v) substr("kMGT", i, i ? 1 : 0)
  }
  function log10(x) { return log(x) / log(10) }
  function floor(x) { return x == int(x) || x > 0 ? int(x) : int(x) - 1 }
  # Tics at 1, 2, 5 x 10^k (log axis) or at a round step (linear), labelled
  # with fmt.
  function tics(lo, hi, logaxis,   s, e, m, step, t, k) {
    s = ""
    if (logaxis) {
      for (e = floor(log10(lo)); e <= floor(log10(hi)) + 1; e++)
        for (k = 1; k <= 3; k++) {
          m = (k == 1 ? 1 : k == 2 ? 2 : 5) * 10 ^ e
          if (m >= lo * 0.999 && m <= hi && (k == 1 || log10(hi / lo) < 3))
            s = s (s == "" ? "" : ", ") "\"" fmt(m) "\" " m
        }
    } else {
      step = 10 ^ floor(log10(hi / 5))
      if (hi / step > 25) step *= 5; else if (hi / step > 10) step *= 2
      for (t = 0; t <= hi * 1.0001; t += step)
        s = s (s == "" ? "" : ", ") "\"" fmt(t) "\" " t
    }
    return s
  }
  # One bar chart: n bars label[i], value[i], text[i], color[i].
  function chart(file, title, unit, n, label, value, text, color,   i, lo, hi, logaxis, gp, w) {
    lo = 0; hi = 0
    for (i = 1; i <= n; i++) {
      if (value[i] > hi) hi = value[i]
      if (value[i] > 0 && (lo == 0 || value[i] < lo)) lo = value[i]
    }
    if (hi <= 0) return
    logaxis = lo > 0 && hi / lo > 30
    gp = outdir "/" file ".gp"
    w = 140 + 120 * n; if (w < 640) w = 640
    for (i = 1; i <= n; i++)
      printf "%d \"%s\" %.6g \"%s\" %d\n", i, label[i], value[i], text[i], color[i] > (outdir "/" file ".dat")
    close(outdir "/" file ".dat")
    print "set terminal pngcairo size " w ",460 noenhanced font \",10\"" > gp
    print "set output \"" outdir "/" file ".png\"" > gp
    print "set title \"" title "\"" > gp
    print "set ylabel \"" unit "\"" > gp
    print "set style fill solid 0.75 border -1; set boxwidth 0.6; unset key; set grid ytics" > gp
    print "set xrange [0.4:" n + 0.6 "]; set xtics rotate by -25 nomirror; set bmargin 7" > gp
    if (logaxis) {
      lo = 10 ^ floor(log10(lo / 2))
      print "set logscale y; set yrange [" lo ":" hi * 3 "]" > gp
      print "set ytics (" tics(lo, hi * 3, 1) ")" > gp
    } else {
      print "set yrange [0:" hi * 1.2 "]" > gp
      print "set ytics (" tics(0, hi * 1.2, 0) ")" > gp
    }
    print "plot \"" outdir "/" file ".dat\" using 1:3:5:xtic(2) with boxes lc rgb variable, \\" > gp
    print "  \"\" using 1:3:4 with labels offset 0,0.8 font \",9\"" > gp
    close(gp)
    plots++
  }
  function direction(b) { return b == "higher" ? "higher is better" : "lower is better" }
  function filename(s) { gsub(/[^A-Za-z0-9]+/, "_", s); return s }
  {
    b = field("bench"); m = field("metric"); v = field("value")
    if (v == "null" || b == "") next
    key = b SUBSEP m
    if (!(key in count)) { keys[++nkeys] = key; kbench[key] = b; kmetric[key] = m;
      kunit[key] = field("unit"); kbetter[key] = field("better") }
    if (!(b in headline)) headline[b] = m
    i = ++count[key]
    sys[key, i] = field("system"); val[key, i] = v + 0; rat[key, i] = field("ratio")
    load = field("load")
    if (load != "null" && load != "") {
      if (nload == 0 || load + 0 < loadlo) loadlo = load + 0
      if (nload == 0 || load + 0 > loadhi) loadhi = load + 0
      nload++
    }
  }
  END {
    # ---- the summary: cthreading against the first peer of each comparison
    n = 0
    for (k = 1; k <= nkeys; k++) {
      key = keys[k]; peer = 0; ncth = 0
      for (i = 1; i <= count[key]; i++) {
        if (sys[key, i] ~ /^cth/) ncth++
        else if (!peer && val[key, i] > 0) peer = i
      }
      if (!peer) continue
      for (i = 1; i <= count[key]; i++) {
        if (sys[key, i] !~ /^cth/ || val[key, i] <= 0) continue
        adv = kbetter[key] == "higher" ? val[key, i] / val[key, peer] : val[key, peer] / val[key, i]
        label = kbench[key]
        if (kmetric[key] != headline[kbench[key]]) {
          s = kmetric[key]; sub(/^(throughput_per_cpu|items_per_cpu_second)$/, "per CPU-s", s)
          label = label ", " s
        }
        if (ncth > 1) { s = sys[key, i]; sub(/^cth(reading)? */, "", s); label = label " [" s "]" }
        if (length(label) > 44) label = substr(label, 1, 43) "~"
        entry[++n] = sprintf("%-44s %6sx %-6s", label, sprintf("%.2f", (adv >= 1 ? adv : 1 / adv)),
                             (adv >= 1 ? "better" : "worse"))
        olabel[n] = label; oadv[n] = adv
      }
    }
    printf "\n== summary: cthreading against the first peer of each comparison (%d entries; load %s..%s)\n",
      n, nload ? sprintf("%.2f", loadlo) : "?", nload ? sprintf("%.2f", loadhi) : "?"
    half = int((n + 1) / 2)
    for (i = 1; i <= half; i++)
      printf "  %s   %s\n", entry[i], (i + half <= n ? entry[i + half] : "")
    if (!draw) exit 0
    # ---- one plot per comparison of two or more systems; the others fold
    # into one plot per benchmark and unit, a bar per metric
    for (k = 1; k <= nkeys; k++) {
      key = keys[k]
      if (count[key] < 2) {
        fk = kbench[key] SUBSEP kunit[key]
        if (!(fk in fcount)) { fkeys[++nf] = fk; fbench[fk] = kbench[key]; funit[fk] = kunit[key];
          fbetter[fk] = kbetter[key] }
        j = ++fcount[fk]
        flabel[fk, j] = kmetric[key] (sys[key, 1] ~ /^cthreading$/ ? "" : " (" sys[key, 1] ")")
        fval[fk, j] = val[key, 1]; fcolor[fk, j] = sys[key, 1] ~ /^cth/
        continue
      }
      delete L; delete V; delete T; delete C
      for (i = 1; i <= count[key]; i++) {
        L[i] = sys[key, i]; V[i] = val[key, i]
        T[i] = fmt(val[key, i]) (rat[key, i] == "null" ? "" : sprintf(" (%.2fx)", rat[key, i]))
        C[i] = sys[key, i] ~ /^cth/ ? 2062260 : 11184810
      }
      chart(filename(kbench[key] "_" kmetric[key]),
            kbench[key] ": " kmetric[key] ", " kunit[key] " (" direction(kbetter[key]) "; ratio to " sys[key, 1] ")",
            kunit[key], count[key], L, V, T, C)
    }
    for (f = 1; f <= nf; f++) {
      fk = fkeys[f]
      if (fcount[fk] < 2) continue
      delete L; delete V; delete T; delete C
      for (i = 1; i <= fcount[fk]; i++) {
        L[i] = flabel[fk, i]; V[i] = fval[fk, i]; T[i] = fmt(fval[fk, i])
        C[i] = fcolor[fk, i] ? 2062260 : 11184810
      }
      chart(filename(fbench[fk] "_" funit[fk]), fbench[fk] ", " funit[fk] " (" direction(fbetter[fk]) ")",
            funit[fk], fcount[fk], L, V, T, C)
    }
    # ---- overview: the summary as horizontal bars, log axis around 1
    if (n > 0) {
      gp = outdir "/overview.gp"; dat = outdir "/overview.dat"
      for (i = 1; i <= n; i++)
        printf("%d \"%s\" %.6g %d\n", n - i + 1, olabel[i], oadv[i], (oadv[i] >= 1 ? 2062260 : 14431557)) > dat
      close(dat)
      print "set terminal pngcairo size 1000," 120 + 18 * n " noenhanced font \",9\"" > gp
      print "set output \"" outdir "/overview.png\"" > gp
      print "set title \"cthreading against the first peer of each comparison: advantage (higher is better; 1 = even)\"" > gp
      print "set logscale x; set xrange [0.05:20]; set yrange [0.4:" n + 0.6 "]; unset key; set grid xtics" > gp
      print "set xtics (\"0.05\" 0.05, \"0.1\" 0.1, \"0.2\" 0.2, \"0.5\" 0.5, \"1\" 1, \"2\" 2, \"5\" 5, \"10\" 10, \"20\" 20)" > gp
      print "set style fill solid 0.75 border -1" > gp
      print "plot \"" dat "\" using (sqrt($3)):1:(1 < $3 ? 1 : $3):(1 < $3 ? $3 : 1):($1 - 0.35):($1 + 0.35):4:ytic(2) \\" > gp
      print "  with boxxyerror lc rgb variable" > gp
      close(gp)
      plots++
    }
    print plots > (outdir "/count")
  }' draw="$(command -v gnuplot >/dev/null 2>&1 && echo 1 || echo 0)" "$results"
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "plots: gnuplot not found (apt-get install gnuplot-nox), none drawn"
  exit 0
fi
count=0
for gp in "$outdir"/*.gp; do
  [ -e "$gp" ] || continue
  if gnuplot "$gp" 2>"$outdir/gnuplot.log"; then
    count=$((count + 1))
  else
    echo "plots: gnuplot failed on $gp:" >&2
    cat "$outdir/gnuplot.log" >&2
  fi
  rm -f "$gp" "${gp%.gp}.dat"
done
rm -f "$outdir/count" "$outdir/gnuplot.log"
echo "plots: $count PNG files in $outdir (start with overview.png)"
