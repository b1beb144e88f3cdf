#!/bin/sh
# SPDX-License-Identifier: MIT
# man.sh OUTDIR - the section 3 man pages, from the comments of the public
# headers: one page per function (CTH_API, or static inline) and per type
# (typedef), named after it (OUTDIR/cth_queue_get.3), plus cthreading.3,
# the index. A page has NAME, SYNOPSIS (the #include and the declaration),
# DESCRIPTION (the comment above the declaration), RETURN VALUE and ERRORS
# (the CTH_E* codes the comment names, described as in base.h); a type's
# page, SYNOPSIS and DESCRIPTION. Private cth__ names get no page.
#
# man.sh --check OUTDIR - fails, listing them, if a function the headers
# declare CTH_API or a public type has no page in OUTDIR, if a page lacks
# a section, or if a page is named after anything else.
#
# --without HEADER (before OUTDIR, either form): leave out a header of
# include/cthreading (mpi.h where libcthreading-mpi is not built).
set -eu
cd "$(dirname "$0")/.."

# The error codes and their descriptions, from base.h's #defines.
errors=$(sed -n 's|^#define \(CTH_E[A-Z]*\) ([^)]*) */\* \(.*\) \*/$|\1 \2|p' include/cthreading/base.h)

check=0
without=""
while [ $# -gt 1 ]; do
  case $1 in
    --check) check=1; shift ;;
    --without) without="$without $2"; shift 2 ;;
    *) break ;;
  esac
done
[ $# = 1 ] || { echo "usage: $0 [--check] [--without HEADER]... OUTDIR" >&2; exit 2; }
out=$1
# The headers documented.
headers=""
for h in include/cthreading/*.h; do
  case " $without " in *" $(basename "$h") "*) continue ;; esac
  headers="$headers $h"
done
version=$(sed -n 's/^#define CTH_VERSION_STRING "\([^"]*\)".*/\1/p' include/cthreading/base.h)

# The public names: functions (CTH_API or static inline, not cth__) and
# typedefs (the name a typedef ends with, or a function pointer's).
public_names() {
  for h in $headers; do
    sed -n 's/^\(CTH_API\|static inline\) [^(]*[ *]\(cth_[a-z0-9_]*\) *(.*/\2/p' "$h"
    awk '/^typedef/ { t = ""; collecting = 1 }
         collecting { t = t " " $0; if ($0 ~ /;/ && gsub(/{/, "{", t) == gsub(/}/, "}", t)) {
           collecting = 0
           if (t ~ /^ typedef [^{]*\(\*/ && match(t, /\(\*[a-z0-9_]+\)/))
             print substr(t, RSTART + 2, RLENGTH - 3)
           else { sub(/;[^;]*$/, "", t); n = split(t, w, /[^A-Za-z0-9_]+/); print w[n] }
         } }' "$h"
  done | grep -v '^cth__' | sort -u
}

if [ $check = 1 ]; then
  fail=0
  names=$(public_names)
  for n in $names; do
    page="$out/$n.3"
    if [ ! -f "$page" ]; then
      echo "no man page: $n"
      fail=1
      continue
    fi
    for s in NAME SYNOPSIS DESCRIPTION; do
      grep -q "^\.SH $s\$" "$page" || { echo "$page: no $s section"; fail=1; }
    done
  done
  # Every error code of base.h was read, with its description.
  [ "$(echo "$errors" | wc -l)" = "$(grep -c '^#define CTH_E[A-Z]* (' include/cthreading/base.h)" ] ||
    { echo "base.h: not every CTH_E* code was read with its description"; fail=1; }
  # Functions have RETURN VALUE and ERRORS too.
  for n in $(for h in $headers; do
      sed -n 's/^\(CTH_API\|static inline\) [^(]*[ *]\(cth_[a-z0-9_]*\) *(.*/\2/p' "$h"
    done | grep -v '^cth__' | sort -u); do
    [ -f "$out/$n.3" ] || continue
    for s in "RETURN VALUE" ERRORS; do
      grep -q "^\.SH \"$s\"\$\|^\.SH $s\$" "$out/$n.3" || { echo "$out/$n.3: no $s section"; fail=1; }
    done
  done
  # No page named after anything but a public name (a struct field, say).
  for page in "$out"/*.3; do
    n=$(basename "$page" .3)
    [ "$n" = cthreading ] && continue
    echo "$names" | grep -qx "$n" || { echo "a page not named after a public name: $page"; fail=1; }
  done
  if command -v groff >/dev/null 2>&1; then
    for page in "$out"/*.3; do
      warn=$(groff -k -man -Tutf8 -ww -z "$page" 2>&1) || true
      [ -z "$warn" ] || { echo "$page: groff: $warn"; fail=1; }
    done
  fi
  [ $fail = 0 ] && echo "$(echo "$names" | wc -l) man pages, each with its sections"
  exit $fail
fi

mkdir -p "$out"
rm -f "$out"/*.3


for h in $headers; do
  header=cthreading/$(basename "$h")
  awk -v header="$header" -v out="$out" -v version="$version" -v errors="$errors" '
  # troff-safe text: backslashes doubled, no control character first.
  function esc(s) {
    gsub(/\\/, "\\\\e", s)
    gsub(/→/, "\\(->", s)
    c = substr(s, 1, 1)
    if (c == "." || c == "\047") s = "\\&" s
    return s
  }
  function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
  # The first sentence of s (up to ". " or the end).
  function first_sentence(s,   i) {
    i = index(s, ". ")
    if (i) s = substr(s, 1, i)
    return s
  }
  function emit_paragraphs(text,   n, lines, i, l) {
    n = split(text, lines, "\n")
    for (i = 1; i <= n; i++) {
      l = lines[i]
      if (trim(l) == "") { print ".PP" > page; continue }
      if (l ~ /^  +/) { print ".nf" > page; print esc(l) > page; print ".fi" > page; continue }
      print esc(l) > page
    }
  }
  # Sentences of text that say what the call returns.
  function return_sentences(text,   flat, n, parts, i, r) {
    flat = text; gsub(/\n/, " ", flat); gsub(/  +/, " ", flat)
    gsub(/ \.\. /, " \001 ", flat) # a range (0 .. n) ends no sentence
    n = split(flat, parts, /\. /)
    r = ""
    for (i = 1; i <= n; i++)
      if (parts[i] ~ /(^|[^A-Za-z])Returns? /) {
        s = trim(parts[i]); if (s !~ /\.$/) s = s "."
        r = r (r == "" ? "" : " ") s
      }
    gsub(/\001/, "..", r)
    return r
  }
  function page_head(name, brief) {
    page = out "/" name ".3"
    printf ".TH %s 3 2026 \"cthreading %s\" \"cthreading manual\"\n", toupper(name), version > page
    print ".SH NAME" > page
    print esc(name) " \\- " esc(brief) > page
    print ".SH SYNOPSIS" > page
    print ".nf" > page
    print ".B #include <" header ">" > page
    print "" > page
  }
  function emit(   name, brief, text, decl_lines, i, n, ret, codes, c, seen, any, ename) {
    name = dname
    if (name == "" || name ~ /^cth__/ || (name in done)) return
    done[name] = 1
    text = comment
    # "cth_x - what it is" opens most comments: the brief is what follows.
    sub("^" name " *- *", "", text)
    brief = first_sentence(text); gsub(/\n/, " ", brief); gsub(/  +/, " ", brief)
    sub(/\.$/, "", brief)
    if (length(brief) > 100) brief = substr(brief, 1, 97) "..."
    page_head(name, brief)
    n = split(decl, decl_lines, "\n")
    for (i = 1; i <= n; i++) {
      l = decl_lines[i]; sub(/^CTH_API /, "", l); sub(/^static inline /, "", l)
      print esc(l) > page
    }
    print ".fi" > page
    print ".SH DESCRIPTION" > page
    emit_paragraphs(text)
    if (dkind == "function") {
      ret = decl; sub(/^CTH_API /, "", ret); sub(/^static inline /, "", ret)
      sub(/cth_[a-z0-9_]* *\(.*/, "", ret); ret = trim(ret)
      print ".SH \"RETURN VALUE\"" > page
      r = return_sentences(text)
      if (ret == "void") print "None." > page
      else if (r != "") print esc(r) > page
      else if (ret == "int")
        print "0 on success, or a negative error code (see ERRORS and DESCRIPTION)." > page
      else if (ret == "bool") print "true or false, as DESCRIPTION says." > page
      else print "The value (" esc(ret) ") that DESCRIPTION describes." > page
      print ".SH ERRORS" > page
      any = 0
      n = split(errors, elines, "\n")
      for (i = 1; i <= n; i++) {
        ename = elines[i]; sub(/ .*/, "", ename)
        if (match(text, ename "([^A-Z]|$)")) {
          print ".TP\n.B " ename > page
          print esc(substr(elines[i], length(ename) + 2)) "." > page
          any = 1
        }
      }
      if (!any) print (ret == "int" ? "None beyond those DESCRIPTION names." : "None: the call cannot fail.") > page
    }
    print ".SH \"SEE ALSO\"" > page
    print ".BR cthreading (3)" > page
    close(page)
  }
  # Comment blocks: the latest one is the next declaration'"'"'s.
  /^\/\*/ {
    incomment = 1; comment = ""
  }
  incomment {
    l = $0
    sub(/^\/\* ?/, "", l); sub(/^ \*\/$/, "", l); sub(/ *\*\/$/, "", l); sub(/^ \* ?/, "", l)
    if (l == "*" || l == " *") l = ""
    if ($0 !~ /^ \*\/$/ || comment != "") comment = comment (comment == "" ? "" : "\n") l
    if ($0 ~ /\*\//) { incomment = 0; sub(/\n+$/, "", comment); last_comment_line = NR }
    next
  }
  # A declaration right under its comment.
  !indecl && ($0 ~ /^CTH_API / || $0 ~ /^static inline / || $0 ~ /^typedef /) {
    if (NR != last_comment_line + 1) { comment_for_decl = "" } else comment_for_decl = comment
    indecl = 1; decl = ""; depth = 0
    dkind = ($0 ~ /^typedef/) ? "type" : "function"
  }
  indecl {
    decl = decl (decl == "" ? "" : "\n") $0
    t = $0; depth += gsub(/{/, "{", t) - gsub(/}/, "}", t)
    if (depth == 0 && ($0 ~ /;[ \t]*(\/\*.*)?$/ || ($0 ~ /\)[ \t]*$/ && dkind == "function" && $0 ~ /^static inline/))) {
      indecl = 0
      if (dkind == "function") {
        flat = decl; gsub(/\n/, " ", flat)
        if (flat ~ /extern / || flat !~ /\(/) next
        s = flat; sub(/ *\(.*/, "", s); n = split(s, w, /[^A-Za-z0-9_]+/); dname = w[n]
      } else if (decl ~ /^typedef [^{]*\(\*/ && match(decl, /\(\*[a-z0-9_]+\)/)) {
        dname = substr(decl, RSTART + 2, RLENGTH - 3)
      } else {
        s = decl; gsub(/\n/, " ", s); sub(/;[^;]*$/, "", s)
        n = split(s, w, /[^A-Za-z0-9_]+/); dname = w[n]
      }
      comment = comment_for_decl
      if (comment != "") emit()
      comment = ""
    }
  }
  ' "$h"
done

# cthreading(3): the index, header by header.
{
  printf '.TH CTHREADING 3 2026 "cthreading %s" "cthreading manual"\n' "$version"
  echo '.SH NAME'
  echo "cthreading \\- Python's threading system as a C11 library"
  echo '.SH SYNOPSIS'
  echo '.nf'
  echo '.B #include <cthreading.h>'
  echo '.fi'
  echo '.PP'
  printf '%s\n' 'Link with \fI\-lcthreading\fP (pkg-config: \fIcthreading\fP).'
  echo '.SH DESCRIPTION'
  echo 'Threads, Lock, RLock, Condition, Semaphore, Event, Barrier, once and'
  echo 'singletons, the queue module, Timer, the thread pool, thread-local values'
  echo 'and LocalStack, each documented on the page named after the function or'
  echo 'type. Calls that can fail return 0 or a negative CTH_E* code;'
  echo 'a timeout is a double number of seconds (CTH_FOREVER: no limit).'
  for h in $headers; do
    echo ".SS <cthreading/$(basename "$h")>"
    pages=""
    for n in $(sed -n 's/^\(CTH_API\|static inline\) [^(]*[ *]\(cth_[a-z0-9_]*\) *(.*/\2/p;
        s/^typedef .*[ *(]\(cth_[a-z0-9_]*\)[);]*.*/\1/p; s/^} \(cth_[a-z0-9_]*\);/\1/p' "$h" |
        grep -v '^cth__' | awk '!seen[$0]++'); do
      [ -f "$out/$n.3" ] && pages="$pages${pages:+, }\\fB$n\\fP(3)"
    done
    printf '%s\n' "$pages"
  done
  echo '.SH ERRORS'
  echo "$errors" | while read -r code text; do
    printf '.TP\n.B %s\n%s.\n' "$code" "$text"
  done
} >"$out/cthreading.3"
echo "man pages: $(ls "$out" | wc -l) in $out"
