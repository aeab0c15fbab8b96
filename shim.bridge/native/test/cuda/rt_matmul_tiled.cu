// Tiled matrix multiply from PTX: 16x16 tiles of A and B staged in __shared__ memory, two
// __syncthreads per tile, 2D grid and block, sizes that are not multiples of the tile (the edge
// tiles load zeros and their idle threads must still reach every barrier). Checked element by
// element: exactly where the inputs are small integers (every product and partial sum is exact in
// float, so the summation order does not matter), and within a bound on the rounding error of a
// K-term dot product otherwise.
#include <vector>

#include "rt_verify.h"

static const char *NAME = "rt_matmul_tiled";

#define TILE 16

// C[M x N] = A[M x K] * B[K x N], all row-major.
__global__ void rt_matmul_tiled(const float *A, const float *B, float *C, int M, int K, int N)
{
    // The +1 column keeps the column reads of tb off one bank; it also makes the rows 68 bytes.
    __shared__ float ta[TILE][TILE + 1];
    __shared__ float tb[TILE][TILE + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * TILE + ty;
    int col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int t = 0; t < K; t += TILE) {
        int ak = t + tx;
        int bk = t + ty;
        ta[ty][tx] = (row < M && ak < K) ? A[row * K + ak] : 0.0f;
        tb[ty][tx] = (bk < K && col < N) ? B[bk * N + col] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int k = 0; k < TILE; k++) {
            acc += ta[ty][k] * tb[k][tx];
        }
        __syncthreads();
    }
    if (row < M && col < N) {
        C[row * N + col] = acc;
    }
}

// One multiply: fills A and B, runs the kernel, checks C. Returns false if it could not run.
static bool multiply(const char *what, int M, int K, int N, bool integers)
{
    std::vector<float> a((size_t)M * K), b((size_t)K * N), c((size_t)M * N);
    for (int i = 0; i < M; i++) {
        for (int k = 0; k < K; k++) {
            a[(size_t)i * K + k] = integers ? (float)((i * 7 + k * 3) % 17 - 8) : 0.01f * ((i * 13 + k * 29) % 201 - 100);
        }
    }
    for (int k = 0; k < K; k++) {
        for (int j = 0; j < N; j++) {
            b[(size_t)k * N + j] = integers ? (float)((k * 5 + j * 11) % 15 - 7) : 1.0f / (1 + (k * 3 + j) % 37);
        }
    }
    float *da = nullptr, *db = nullptr, *dc = nullptr;
    bool ok = cudaMalloc(&da, a.size() * sizeof(float)) == cudaSuccess &&
              cudaMalloc(&db, b.size() * sizeof(float)) == cudaSuccess &&
              cudaMalloc(&dc, c.size() * sizeof(float)) == cudaSuccess;
    CHECK(ok);
    if (!ok) {
        return false;
    }
    CHECK_RT(cudaMemcpy(da, a.data(), a.size() * sizeof(float), cudaMemcpyHostToDevice));
    CHECK_RT(cudaMemcpy(db, b.data(), b.size() * sizeof(float), cudaMemcpyHostToDevice));
    CHECK_RT(cudaMemset(dc, 0xff, c.size() * sizeof(float)));

    dim3 block(TILE, TILE);
    dim3 grid((N + TILE - 1) / TILE, (M + TILE - 1) / TILE);
    rt_matmul_tiled<<<grid, block>>>(da, db, dc, M, K, N);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaDeviceSynchronize());
    CHECK_RT(cudaMemcpy(c.data(), dc, c.size() * sizeof(float), cudaMemcpyDeviceToHost));

    if (integers) {
        std::vector<float> want(c.size());
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                long s = 0;
                for (int k = 0; k < K; k++) {
                    s += (long)a[(size_t)i * K + k] * (long)b[(size_t)k * N + j];
                }
                want[(size_t)i * N + j] = (float)s;
            }
        }
        CHECK_EQ(0, verify_exact(what, c.data(), want.data(), c.size()));
    } else {
        // A K-term float dot product (fused or not, in any order) is within K * 2^-24 * sum|a*b|
        // of the exact value; 1e-5 * sum|a*b| covers K <= 160, and 1e-6 the sums that round to 0.
        std::vector<double> want(c.size()), scale(c.size());
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double s = 0, m = 0;
                for (int k = 0; k < K; k++) {
                    double p = (double)a[(size_t)i * K + k] * (double)b[(size_t)k * N + j];
                    s += p;
                    m += fabs(p);
                }
                want[(size_t)i * N + j] = s;
                scale[(size_t)i * N + j] = m;
            }
        }
        CHECK_EQ(0, verify_close(what, c.data(), want.data(), scale.data(), c.size(), 1e-5, 1e-6));
    }
    CHECK_RT(cudaFree(da));
    CHECK_RT(cudaFree(db));
    CHECK_RT(cudaFree(dc));
    return true;
}

int main()
{
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);

    // Edge tiles in every dimension: 70 = 4*16+6 rows, K = 45 = 2*16+13, 83 = 5*16+3 columns.
    if (!multiply("C(70x45 * 45x83, integers)", 70, 45, 83, true)) {
        return check_done(NAME);
    }
    multiply("C(70x45 * 45x83)", 70, 45, 83, false);
    // Whole tiles only.
    multiply("C(64x64 * 64x64)", 64, 64, 64, false);
    // Narrower than one tile: most threads of the only block column are idle.
    multiply("C(33x7 * 7x5, integers)", 33, 7, 5, true);
    return check_done(NAME);
}
