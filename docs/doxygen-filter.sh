#!/bin/sh
# SPDX-License-Identifier: MIT
# Doxygen's INPUT_FILTER for the headers: the comment opening a header (on
# line 1, or line 2 under the SPDX tag) becomes its @file block, a comment
# that starts a line above a declaration becomes that declaration's
# documentation, a trailing field comment (or #define) documents it.
# Section rulers ("/* ---- ... */") stay plain; clang-format's on/off
# markers (around the brace initializers it would mangle) become blank.
exec sed -E \
  -e 's|^/\* clang-format (on\|off) \*/$||' \
  -e '1,2s|^/\*$|/** @file|' \
  -e '3,$s|^/\*$|/**|' \
  -e '1!s|^/\* ([^-])|/** \1|' \
  -e 's|([;,{]) +/\* |\1 /**< |' \
  -e 's|^(#define [^/]*[^ /]) +/\* |\1 /**< |' \
  "$1"
