#include <cooperative_groups.h>
namespace cg = cooperative_groups;
extern "C" __global__ void saxpy(int n, float a, const float *x, float *y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
#define T 16
extern "C" __global__ void matmul(const float *A, const float *B, float *C, int M, int N, int K) {
  __shared__ float As[T][T], Bs[T][T];
  int row = blockIdx.y * T + threadIdx.y, col = blockIdx.x * T + threadIdx.x;
  float acc = 0;
  for (int t = 0; t < (K + T - 1) / T; t++) {
    int ak = t * T + threadIdx.x, bk = t * T + threadIdx.y;
    As[threadIdx.y][threadIdx.x] = (row < M && ak < K) ? A[row * K + ak] : 0.f;
    Bs[threadIdx.y][threadIdx.x] = (bk < K && col < N) ? B[bk * N + col] : 0.f;
    __syncthreads();
    for (int k = 0; k < T; k++) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}
extern "C" __global__ void reduce(const int *in, int *out, int n) {
  __shared__ int warpSums[32];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = i < n ? in[i] : 0;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
  if ((threadIdx.x & 31) == 0) warpSums[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < (blockDim.x + 31) / 32 ? warpSums[threadIdx.x] : 0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    if (threadIdx.x == 0) atomicAdd(out, v);
  }
}
extern "C" __global__ void hist(const unsigned char *in, int n, unsigned *bins) {
  __shared__ unsigned s[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) s[i] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) atomicAdd(&s[in[i]], 1u);
  __syncthreads();
  for (int i = threadIdx.x; i < 256; i += blockDim.x) atomicAdd(&bins[i], s[i]);
}
__device__ __noinline__ float sq(float x) { return x * x + 1.0f; }
struct P { int a; float b; double c; };
__device__ __noinline__ double st(P p, int *q) { *q += p.a; return p.b * p.c; }
extern "C" __global__ void calls(float *o, double *od, int *oi, P p) {
  int i = threadIdx.x;
  o[i] = sq((float)i);
  int q = i;
  od[i] = st(p, &q);
  int c = 0; unsigned x = i + 1;
  while (x != 1) { x = (x & 1) ? 3 * x + 1 : x / 2; c++; }
  oi[i] = c + q;
}
extern "C" __global__ void coop(int *out) {
  cg::thread_block b = cg::this_thread_block();
  auto t = cg::tiled_partition<16>(b);
  int v = t.thread_rank() + 1;
  for (int o = t.size() / 2; o > 0; o /= 2) v += t.shfl_down(v, o);
  unsigned bal = __ballot_sync(0xffffffff, threadIdx.x % 3 == 0);
  b.sync();
  out[threadIdx.x] = v + (int)(bal & 0xff) * 1000;
}
