#!/bin/sh
# Regenerates the committed module-image fixtures from kernels.cu (CUDA 13.0 nvcc, no GPU needed).
# The tests assert exact layouts, and register counts as `nvcc -cubin -arch=sm_90 -Xptxas -v`
# reports them; another nvcc may change those, so rerun the tests after regenerating.
set -eu
cd "$(dirname "$0")"
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}

# sm_90 cubin + compute_90 PTX; CUDA 13 zstd-compresses the PTX entry by default.
"$NVCC" -fatbin -gencode 'arch=compute_90,code=[sm_90,compute_90]' -o kernels.fatbin kernels.cu
# Same, with the cubin entry compressed too.
"$NVCC" -fatbin -gencode 'arch=compute_90,code=[sm_90,compute_90]' -Xfatbin -compress-all \
    -o kernels.compressed.fatbin kernels.cu
# LZ4 (flag 0x2000), what older toolkits used by default.
"$NVCC" -fatbin -gencode 'arch=compute_90,code=[sm_90,compute_90]' -Xfatbin -compress-all \
    -Xfatbin -compress-mode=speed -o kernels.lz4.fatbin kernels.cu
# Nothing compressed: the tests also build entries of their own from this one.
"$NVCC" -fatbin -gencode 'arch=compute_90,code=[sm_90,compute_90]' -Xfatbin -compress=false \
    -o kernels.uncompressed.fatbin kernels.cu
"$NVCC" -cubin -arch=sm_90 -o kernels.sm_90.cubin kernels.cu
# SASS for sm_80 from compute_75 PTX: the virtual architecture differs from the binary one.
"$NVCC" -cubin -gencode 'arch=compute_75,code=sm_80' -o kernels.compute_75.sm_80.cubin kernels.cu
"$NVCC" -ptx -arch=compute_90 -o kernels.ptx kernels.cu
