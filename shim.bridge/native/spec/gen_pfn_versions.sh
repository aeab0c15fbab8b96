#!/bin/sh
# Lists every driver entry point version cudaTypedefs.h declares (PFN_<name>_v<version>[_ptds|_ptsz]),
# as "<name> <version> <flags>" (flags 2 = per-thread default stream variant). Needs the CUDA
# toolkit; the output (spec/cuda_pfn_versions.txt) is committed so the build does not.
set -eu
CUDA_INC=${CUDA_INC:-/usr/local/cuda/include}
grep -oE 'PFN_cu[A-Za-z0-9]+_v[0-9]+(_ptds|_ptsz)?\b' "$CUDA_INC/cudaTypedefs.h" | sort -u |
    sed -E 's/^PFN_(cu[A-Za-z0-9]+)_v([0-9]+)(_pt(ds|sz))?$/\1 \2 \3/' |
    awk '{ print $1, $2, ($3 == "" ? 0 : 2) }' | sort -k1,1 -k3,3n -k2,2n
