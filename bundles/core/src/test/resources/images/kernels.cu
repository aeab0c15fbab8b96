// Test fixture for io.vgpu.core.image.ImageParser. Regenerate the binaries with regenerate.sh.
// The kernels only need distinct parameter layouts and globals; what they compute is irrelevant.

__device__ float table[37];
__device__ int counter = 5;
__constant__ float coeffs[4] = {1, 2, 3, 4};

extern "C" __global__ void vadd(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        c[i] = a[i] + b[i] + table[i % 37] * coeffs[i & 3];
    }
}

struct Params {
    float x, y, z;   // 12 bytes
    int count;       // offset 12
    double *out;     // offset 16, so the struct is 24 bytes with 8-byte alignment
};

// C++ linkage: the entry name is mangled.
__global__ void __launch_bounds__(256) scale(Params p, float factor)
{
    __shared__ double tile[64];
    int t = threadIdx.x;
    tile[t & 63] = p.x * factor + p.y + p.z;
    __syncthreads();
    if (t < p.count) {
        p.out[t] = tile[(t + 1) & 63];
        atomicAdd(&counter, 1);
    }
}

extern "C" __global__ void mixed(char tag, double value, char *dst, short s)
{
    dst[threadIdx.x] = tag + (char)(value * coeffs[0]) + (char)s;
}
