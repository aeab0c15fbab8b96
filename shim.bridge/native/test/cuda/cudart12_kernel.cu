// The kernel test_cudart12 registers by hand: it has no nvcc 12, so this is compiled by nvcc 13
// with -fatbin (or taken from the committed cudart12_kernel.fatbin when nvcc is absent) and handed
// to cudart 12 through __cudaRegisterFatBinary. Java: io.vgpu.samples.Rt12Affine.
__global__ void rt12_affine(float *y, const float *x, float a, float b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + b;
    }
}
