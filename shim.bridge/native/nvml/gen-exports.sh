#!/usr/bin/env bash
# Regenerates exports.txt: every function NVIDIA's nvml.h declares, under every name the real
# libnvidia-ml.so.1 exports it by (the _v2/_v3 ABI names and the unversioned legacy ones that old
# binaries still dlsym). The build does not run this: nvml.h is not on build machines, so the list
# is committed. Rerun it against a newer nvml.h and commit the diff.
#
# Usage: nvml/gen-exports.sh /path/to/nvml.h      (writes nvml/exports.txt)
set -euo pipefail
export LC_ALL=C
nvml_h=${1:?usage: gen-exports.sh /path/to/nvml.h}
here=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-gcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "%s"\n' "$(realpath "$nvml_h")" > "$tmp/nvml.c"

# Declarations span lines: rebuild statements by splitting at ; { } first.
declared() {
    tr '\n' ' ' | tr ';{}' '\n\n\n' | grep -v '\bstatic\b' |
        sed -n 's/.*\(nvmlReturn_t\|char[[:space:]]*\*\)[[:space:]]*\(nvml[A-Za-z0-9_]*\)[[:space:]]*(.*/\2/p'
}
{
    # The current ABI names (nvmlInit_v2, nvmlDeviceGetPciInfo_v3, ...).
    "$CC" -E -P "$tmp/nvml.c" | declared
    # The legacy names, which nvml.h declares only when asked not to rename them.
    "$CC" -E -P -DNVML_NO_UNVERSIONED_FUNC_DEFS "$tmp/nvml.c" | declared
} | sort -u | grep -v '^$' > "$tmp/declared"
# Function renames (nvmlGetBlacklistDeviceCount -> nvmlGetExcludedDeviceCount): the old name is
# still an export. Renames of types and constants are not.
"$CC" -E -dM "$tmp/nvml.c" | sed -n 's/^#define \(nvml[A-Z][A-Za-z0-9_]*\) \(nvml[A-Za-z0-9_]*\)$/\2 \1/p' |
    sort > "$tmp/renames"
join "$tmp/declared" "$tmp/renames" | cut -d' ' -f2 > "$tmp/aliases"
sort -u "$tmp/declared" "$tmp/aliases" > "$here/exports.txt"
echo "exports.txt: $(wc -l < "$here/exports.txt") names from $nvml_h" >&2
