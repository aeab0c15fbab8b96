#!/bin/sh
# Regenerates bench.ptx from bench.cu with the CUDA 13 toolkit (the benchmark itself needs none).
cd "$(dirname "$0")" && nvcc -ptx -arch=compute_90 -O3 bench.cu -o bench.ptx
