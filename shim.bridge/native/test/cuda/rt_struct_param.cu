// A kernel taking a struct by value between two scalars. The struct has padding inside it (char
// before double) and is 8-aligned, so the parameter block has padding too: the launch must carry
// it byte for byte. rt_struct_apply runs on the mock from its PTX, which reads the struct at the
// offsets asserted below.
#include <stddef.h>

#include <vector>

#include "rt_check.h"

static const char *NAME = "rt_struct_param";

struct RtStruct {
    char tag;         // 0
    double offset;    // 8
    int count;        // 16
    float scale;      // 20
    const float *in;  // 24
    double *out;      // 32
};

static_assert(sizeof(RtStruct) == 40 && alignof(RtStruct) == 8, "RtStruct layout");
static_assert(offsetof(RtStruct, offset) == 8 && offsetof(RtStruct, count) == 16 &&
                  offsetof(RtStruct, scale) == 20 && offsetof(RtStruct, in) == 24 && offsetof(RtStruct, out) == 32,
              "RtStruct offsets");

// Parameter block: first at 0, p at 8 (40 bytes), bias at 48: 50 bytes.
__global__ void rt_struct_apply(int first, RtStruct p, short bias)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.count) {
        p.out[i] = (double)(p.in[i] * p.scale) + p.offset + p.tag + bias + first;
    }
}

static double expected(const RtStruct &p, int first, short bias, float x)
{
    return (double)(x * p.scale) + p.offset + p.tag + bias + first;
}

int main()
{
    const int n = 3000, count = 2500;
    std::vector<float> in(n);
    for (int i = 0; i < n; i++) {
        in[i] = 0.1f * (i - 1234);
    }
    float *din = nullptr;
    double *dout = nullptr;
    REQUIRE_RT(NAME, cudaMalloc(&din, n * sizeof(float)));
    REQUIRE_RT(NAME, cudaMalloc(&dout, n * sizeof(double)));
    CHECK_RT(cudaMemcpy(din, in.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    // Every output starts as -0.5, so elements past count show whether the kernel honoured it.
    std::vector<double> out(n, -0.5);
    CHECK_RT(cudaMemcpy(dout, out.data(), n * sizeof(double), cudaMemcpyHostToDevice));

    RtStruct p;
    // Garbage in the padding must not matter to the kernel.
    memset(&p, 0xa5, sizeof p);
    p.tag = -7;
    p.offset = 1.0e10 + 0.25;
    p.count = count;
    p.scale = 3.5f;
    p.in = din;
    p.out = dout;
    const int first = 123456789;
    const short bias = -321;
    rt_struct_apply<<<(n + 255) / 256, 256>>>(first, p, bias);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaDeviceSynchronize());
    CHECK_RT(cudaMemcpy(out.data(), dout, n * sizeof(double), cudaMemcpyDeviceToHost));

    int wrong = 0;
    for (int i = 0; i < n; i++) {
        double want = i < count ? expected(p, first, bias, in[i]) : -0.5;
        if (out[i] != want && wrong++ < 5) {
            fprintf(stderr, "FAIL out[%d] = %.17g, expected %.17g\n", i, out[i], want);
        }
    }
    CHECK_EQ(0, wrong);

    CHECK_RT(cudaFree(din));
    CHECK_RT(cudaFree(dout));
    return check_done(NAME);
}
