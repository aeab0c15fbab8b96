#!/usr/bin/env bash
# Regenerates cuda_exports.txt (and nvml_exports.txt when nvml.h can be found):
# the symbols the shim's libcuda.so.1 / libnvidia-ml.so.1 must export.
#
# Needs the CUDA 13 toolkit headers and the observation lists in the shared
# reference folder. The shim build does NOT run this: its output is committed,
# so machines without the toolkit still build. Rerun it when the toolkit or
# the reference lists change, and commit the diff.
#
# Usage: spec/gen_cuda_exports.sh            (writes next to this script)
# Environment:
#   CUDA_INC  toolkit include dir      (default /usr/local/cuda/include)
#   REF_DIR   reference lists dir      (default /work/shared/reference)
#   NVML_H    path of nvml.h           (default: $CUDA_INC/nvml.h, else none)
#   CC        C compiler, used only as a preprocessor (default gcc)
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
CUDA_INC=${CUDA_INC:-/usr/local/cuda/include}
REF_DIR=${REF_DIR:-/work/shared/reference}
CC=${CC:-gcc}
out=$here/cuda_exports.txt

for f in "$CUDA_INC/cuda.h" "$CUDA_INC/cudaProfiler.h" \
         "$REF_DIR/cudart13-dlsym-fallback-names.txt" \
         "$REF_DIR/cublaslt13-dlsym-loadtime.txt" \
         "$REF_DIR/cublaslt13-dlsym-ctxinit.txt" \
         "$REF_DIR/cudart13-getprocaddress-abi-map.tsv"; do
    [ -r "$f" ] || { echo "gen_cuda_exports: missing $f" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <cuda.h>\n#include <cudaProfiler.h>\n' > "$tmp/all.c"

# Prints the names of the non-static functions declared in a preprocessed
# translation unit. Declarations span lines, so statements are rebuilt by
# splitting at ; { } first. The PTDS header defines one static inline helper
# (cuGetProcAddress_v2_ptsz) that is not a library symbol; "static" drops it.
declared_functions() {
    tr '\n' ' ' | tr ';{}' '\n\n\n' | grep -v '\bstatic\b' |
        sed -n 's/.*\bCUresult[[:space:]]\{1,\}\(cu[A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p'
}

# 1. Every declared function under its ABI name, once with the default-stream
#    macros and once with the per-thread ones (which yield _ptds/_ptsz names).
"$CC" -E -P -I"$CUDA_INC" "$tmp/all.c" | declared_functions | sort -u > "$tmp/s1"
"$CC" -E -P -I"$CUDA_INC" -DCUDA_API_PER_THREAD_DEFAULT_STREAM "$tmp/all.c" |
    declared_functions | sort -u > "$tmp/s2"

# 2. Names cuda.h renames with a macro (cuMemAlloc -> cuMemAlloc_v2, ...). A
#    real libcuda keeps exporting the old ABI under the undecorated name, and
#    old binaries dlsym it.
"$CC" -E -dM -I"$CUDA_INC" "$tmp/all.c" |
    sed -n 's/^#define \(cu[A-Z][A-Za-z0-9_]*\) .*/\1/p' | sort -u > "$tmp/s3"

# 3. The older ABIs cuda.h declares only for the driver's own build (the
#    __CUDA_API_VERSION_INTERNAL block: cuCtxCreate_v3, cuGraphInstantiate_v2,
#    cuStreamGetCaptureInfo_v2_ptsz, ...). Read as text because that block
#    does not preprocess on its own.
awk '/^#if defined\(__CUDA_API_VERSION_INTERNAL\)$/ {on=1; next}
     on && /^#(elif|endif)/ {on=0}
     on' "$CUDA_INC/cuda.h" |
    sed -n 's/.*CUresult CUDAAPI \(cu[A-Za-z0-9_]*\)(.*/\1/p' | sort -u > "$tmp/s4"

# 4. What NVIDIA's libraries were observed to look up (see the reference docs).
sort -u "$REF_DIR/cudart13-dlsym-fallback-names.txt" > "$tmp/r1"
sort -u "$REF_DIR/cublaslt13-dlsym-loadtime.txt" > "$tmp/r2"
sort -u "$REF_DIR/cublaslt13-dlsym-ctxinit.txt" > "$tmp/r3"
awk -F'\t' 'NR > 1 && $4 != "" {print $4}' "$REF_DIR/cudart13-getprocaddress-abi-map.tsv" |
    sort -u > "$tmp/r4"

sort -u "$tmp"/s1 "$tmp"/s2 "$tmp"/s3 "$tmp"/s4 "$tmp"/r1 "$tmp"/r2 "$tmp"/r3 "$tmp"/r4 |
    grep -v '^$' > "$out"

# Provenance goes to stderr so the committed list stays one name per line.
# "new" counts names that no earlier source had already given.
{
    echo "cuda_exports.txt: $(wc -l < "$out") names"
    : > "$tmp/seen"
    for s in "s1:cuda.h+cudaProfiler.h declared, default stream" \
             "s2:cuda.h+cudaProfiler.h declared, per-thread stream" \
             "s3:cuda.h rename macros (undecorated names)" \
             "s4:cuda.h __CUDA_API_VERSION_INTERNAL block" \
             "r1:cudart13-dlsym-fallback-names.txt" \
             "r2:cublaslt13-dlsym-loadtime.txt" \
             "r3:cublaslt13-dlsym-ctxinit.txt" \
             "r4:cudart13-getprocaddress-abi-map.tsv ABI_symbol"; do
        f=${s%%:*}
        new=$(comm -23 "$tmp/$f" "$tmp/seen" | wc -l)
        printf '  %-55s %4d names, %4d new\n' "${s#*:}" "$(wc -l < "$tmp/$f")" "$new"
        sort -u "$tmp/seen" "$tmp/$f" > "$tmp/seen.new" && mv "$tmp/seen.new" "$tmp/seen"
    done
} >&2

# NVML: optional, since the toolkit does not always carry nvml.h.
NVML_H=${NVML_H:-$CUDA_INC/nvml.h}
if [ -r "$NVML_H" ]; then
    printf '#include "%s"\n' "$NVML_H" > "$tmp/nvml.c"
    # nvml.h renames like cuda.h (nvmlInit -> nvmlInit_v2); keep both names.
    { "$CC" -E -P "$tmp/nvml.c" | tr '\n' ' ' | tr ';{}' '\n\n\n' | grep -v '\bstatic\b' |
          sed -n 's/.*\bnvmlReturn_t[[:space:]]\{1,\}\(nvml[A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p'
      "$CC" -E -dM "$tmp/nvml.c" | sed -n 's/^#define \(nvml[A-Z][A-Za-z0-9_]*\) nvml.*/\1/p'
    } | sort -u | grep -v '^$' > "$here/nvml_exports.txt"
    echo "nvml_exports.txt: $(wc -l < "$here/nvml_exports.txt") names from $NVML_H" >&2
else
    echo "nvml_exports.txt: not generated, no nvml.h at $NVML_H" >&2
fi
