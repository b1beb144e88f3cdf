#!/bin/sh
# SPDX-License-Identifier: MIT
# The license tag on every source file: `tools/spdx.sh` adds
# "SPDX-License-Identifier: MIT" as the first line (after a #! line) of each
# C file, script and build file that lacks it; `tools/spdx.sh --check` only
# lists those files and fails if there is any. The files are git's (tracked
# or new, not ignored), so build trees are left out.
set -eu
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
--check) check=1 ;;
"") ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

tag="SPDX-License-Identifier: MIT"

# The comment line for a file, or nothing when the file takes no tag
# (Markdown, data, fuzz corpus).
comment_for() {
  case "$1" in
  *.c | *.h | *.map) echo "/* $tag */" ;;
  *.sh | *.sh.in | */CMakeLists.txt | CMakeLists.txt | *.cmake | *.cmake.in | *.pc.in | \
    Makefile | .ci/run | tools/* | *.supp | docs/Doxyfile)
    echo "# $tag" ;;
  esac
}

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard | sort -u)
else
  files=$(find . -path './build*' -prune -o -type f -print | sed 's|^\./||' | sort)
fi

missing=0
for f in $files; do
  [ -f "$f" ] || continue # deleted in the work tree
  line=$(comment_for "$f")
  [ -n "$line" ] || continue
  # The tag counts in the first two lines (the second after a #! line).
  head -n 2 "$f" | grep -q "$tag" && continue
  if [ $check = 1 ]; then
    echo "no SPDX tag: $f"
    missing=$((missing + 1))
    continue
  fi
  tmp="$f.spdx.$$"
  if head -n 1 "$f" | grep -q '^#!'; then
    { head -n 1 "$f"; echo "$line"; tail -n +2 "$f"; } >"$tmp"
  else
    { echo "$line"; cat "$f"; } >"$tmp"
  fi
  chmod --reference="$f" "$tmp" 2>/dev/null || true
  mv "$tmp" "$f"
  echo "tagged $f"
done

if [ $check = 1 ] && [ $missing -gt 0 ]; then
  echo "$missing file(s) lack the SPDX tag: run tools/spdx.sh" >&2
  exit 1
fi
exit 0
