// The kernels test_cudart12 registers by hand: it has no nvcc 12, so this is compiled by nvcc 13
// with -fatbin (or taken from the committed cudart12_kernel.fatbin when nvcc is absent) and handed
// to cudart 12 through __cudaRegisterFatBinary. Java: io.vgpu.samples.Rt12Affine and
// io.vgpu.samples.RtStructApply.
__global__ void rt12_affine(float *y, const float *x, float a, float b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + b;
    }
}

// The struct and kernel of rt_struct_param.cu, declared identically so the entry name (and the
// host kernel that runs it) is the same: a 50-byte parameter block with padding inside the struct
// and between the parameters, declared to cudart 12 by this image alone.
struct RtStruct {
    char tag;
    double offset;
    int count;
    float scale;
    const float *in;
    double *out;
};

__global__ void rt_struct_apply(int first, RtStruct p, short bias)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.count) {
        p.out[i] = (double)(p.in[i] * p.scale) + p.offset + p.tag + bias + first;
    }
}
