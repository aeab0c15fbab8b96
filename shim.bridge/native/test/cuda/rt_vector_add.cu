// Vector add through the CUDA runtime: cudart registers the fatbin, loads it lazily through the
// driver and launches with <<<>>>. The mock runs the kernel from the fatbin's PTX
// (compute_90), and the program checks every element exactly.
#include <vector>

#include "rt_check.h"

static const char *NAME = "rt_vector_add";

__global__ void rt_vadd(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        c[i] = a[i] + b[i];
    }
}

int main()
{
    // Not a multiple of the block size: the tail block has idle threads.
    const int n = 100003;
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);

    std::vector<float> a(n), b(n), c(n, -1.0f);
    for (int i = 0; i < n; i++) {
        a[i] = 0.5f * i;
        b[i] = 1.0f / (i + 1);
    }
    float *da = nullptr, *db = nullptr, *dc = nullptr;
    REQUIRE_RT(NAME, cudaMalloc(&da, n * sizeof(float)));
    REQUIRE_RT(NAME, cudaMalloc(&db, n * sizeof(float)));
    REQUIRE_RT(NAME, cudaMalloc(&dc, n * sizeof(float)));
    CHECK_RT(cudaMemcpy(da, a.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    CHECK_RT(cudaMemcpy(db, b.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    // A result that was never written must not read back as a sum.
    CHECK_RT(cudaMemset(dc, 0xff, n * sizeof(float)));

    const int block = 256;
    rt_vadd<<<(n + block - 1) / block, block>>>(da, db, dc, n);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaDeviceSynchronize());
    CHECK_RT(cudaMemcpy(c.data(), dc, n * sizeof(float), cudaMemcpyDeviceToHost));

    int wrong = 0;
    for (int i = 0; i < n; i++) {
        if (c[i] != a[i] + b[i]) {
            if (wrong++ < 5) {
                fprintf(stderr, "FAIL c[%d] = %.9g, expected %.9g\n", i, c[i], a[i] + b[i]);
            }
        }
    }
    CHECK_EQ(0, wrong);

    // A second launch with a shorter n leaves the rest of c alone.
    CHECK_RT(cudaMemset(dc, 0, n * sizeof(float)));
    rt_vadd<<<4, 32>>>(da, db, dc, 100);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaMemcpy(c.data(), dc, n * sizeof(float), cudaMemcpyDeviceToHost));
    wrong = 0;
    for (int i = 0; i < n; i++) {
        float expected = i < 100 ? a[i] + b[i] : 0.0f;
        if (c[i] != expected) {
            if (wrong++ < 5) {
                fprintf(stderr, "FAIL second launch c[%d] = %.9g, expected %.9g\n", i, c[i], expected);
            }
        }
    }
    CHECK_EQ(0, wrong);

    CHECK_RT(cudaFree(da));
    CHECK_RT(cudaFree(db));
    CHECK_RT(cudaFree(dc));
    return check_done(NAME);
}
