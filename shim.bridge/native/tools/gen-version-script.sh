#!/bin/sh
# Linker version script exporting exactly the names in the given lists (one per line).
set -eu
echo "{"
echo "  global:"
cat "$@" | sort -u | sed 's/^/    /; s/$/;/'
echo "  local: *;"
echo "};"
