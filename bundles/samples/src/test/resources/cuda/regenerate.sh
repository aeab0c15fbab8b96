#!/bin/sh
# Regenerates the sm_90 cubins the host-kernel tests load, from the CUDA programs in
# shim.bridge/native/test/cuda (CUDA 13.0 nvcc, no GPU needed). A cubin is the entry the service
# picks out of those programs' fatbins for the mock's sm_90, so the tests see the same parameter
# layouts as the end-to-end runs.
set -eu
cd "$(dirname "$0")"
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
SRC=../../../../../../shim.bridge/native/test/cuda
for cu in "$SRC"/rt_*.cu "$SRC"/cudart12_kernel.cu; do
    name=$(basename "$cu" .cu)
    "$NVCC" -cubin -arch=sm_90 -o "$name.sm_90.cubin" "$cu"
done
