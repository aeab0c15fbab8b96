#!/bin/sh
# Regenerates the committed PTX from kernels.cu with the CUDA 13 toolkit (the tests need no toolkit).
cd "$(dirname "$0")" && nvcc -ptx -arch=compute_90 -O3 kernels.cu -o kernels.ptx
