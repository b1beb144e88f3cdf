#!/bin/sh
# SPDX-License-Identifier: MIT
# The C style (.clang-format): `tools/format.sh` reformats every C file of
# src/ include/ tests/ examples/ bench/ in place; `tools/format.sh --check`
# changes nothing and fails, showing where, if any file differs from the
# style. CLANG_FORMAT picks the binary (default clang-format).
set -eu
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}

check=0
case "${1:-}" in
--check) check=1 ;;
"") ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v "$CLANG_FORMAT" >/dev/null 2>&1 || {
  echo "$CLANG_FORMAT not found (apt-get install clang-format)" >&2
  exit 2
}

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard -- \
    'src/*.[ch]' 'include/*.h' 'tests/*.[ch]' 'examples/*.[ch]' 'bench/*.[ch]' | sort -u)
else
  files=$(find src include tests examples bench -name '*.[ch]' | sort)
fi

if [ $check = 1 ]; then
  # One warning per differing spot; --Werror makes any of them fail.
  if ! out=$("$CLANG_FORMAT" --dry-run --Werror $files 2>&1); then
    echo "$out" | head -200
    echo "files that differ from .clang-format (fix with tools/format.sh):" >&2
    echo "$out" | grep -o '^[^:]*:[0-9]*:[0-9]*: error' | cut -d: -f1 | sort -u >&2
    exit 1
  fi
  exit 0
fi
"$CLANG_FORMAT" -i $files
