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

#include <cuda_fp16.h>
// One warp: C (16x8, f32) = A (16x16, row-major) * B, fragments loaded by ldmatrix as ggml and
// CUTLASS do, multiplied by mma.sync.m16n8k16. B comes n-major (Bn[n*16+k]) for the plain
// ldmatrix and k-major (Bk[k*8+n]) for ldmatrix.trans; both must give the same product.
extern "C" __global__ void mma_f16(const __half *A, const __half *Bn, const __half *Bk, float *C, float *Ct) {
  __shared__ __align__(16) __half As[256], Bns[128], Bks[128];
  int l = threadIdx.x;
  for (int i = l; i < 256; i += 32) As[i] = A[i];
  for (int i = l; i < 128; i += 32) { Bns[i] = Bn[i]; Bks[i] = Bk[i]; }
  __syncwarp();
  unsigned a0, a1, a2, a3, b0, b1, t0, t1;
  unsigned sa = (unsigned)__cvta_generic_to_shared(&As[(l % 16) * 16 + (l / 16) * 8]);
  unsigned sb = (unsigned)__cvta_generic_to_shared(&Bns[(l % 8) * 16 + ((l / 8) % 2) * 8]);
  unsigned sk = (unsigned)__cvta_generic_to_shared(&Bks[(l % 16) * 8]);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(a0), "=r"(a1), "=r"(a2), "=r"(a3) : "r"(sa));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(b0), "=r"(b1) : "r"(sb));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];" : "=r"(t0), "=r"(t1) : "r"(sk));
  float c0 = 0, c1 = 0, c2 = 0, c3 = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(t0), "r"(t1));
  int g = l >> 2, t = l & 3;
  C[g * 8 + t * 2] = c0; C[g * 8 + t * 2 + 1] = c1; C[(g + 8) * 8 + t * 2] = c2; C[(g + 8) * 8 + t * 2 + 1] = c3;
  Ct[g * 8 + t * 2] = d0; Ct[g * 8 + t * 2 + 1] = d1; Ct[(g + 8) * 8 + t * 2] = d2; Ct[(g + 8) * 8 + t * 2 + 1] = d3;
}

// One warp: C (16x8, s32) = A (16x32 s8, row-major) * B (32x8 s8, n-major) with mma.sync.m16n8k32,
// fragments gathered by hand in the layout of the PTX ISA, as ggml's MMQ kernels do.
extern "C" __global__ void mma_s8(const signed char *A, const signed char *Bn, int *C) {
  int l = threadIdx.x, g = l >> 2, t = l & 3;
  unsigned a[4], b[2];
  for (int r = 0; r < 4; r++) {
    int row = g + 8 * (r & 1), col = t * 4 + 16 * (r >> 1);
    a[r] = *(const unsigned *)&A[row * 32 + col];
  }
  for (int r = 0; r < 2; r++) {
    b[r] = *(const unsigned *)&Bn[g * 32 + t * 4 + 16 * r];
  }
  int c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+r"(c0), "+r"(c1), "+r"(c2), "+r"(c3) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  C[g * 8 + t * 2] = c0; C[g * 8 + t * 2 + 1] = c1; C[(g + 8) * 8 + t * 2] = c2; C[(g + 8) * 8 + t * 2 + 1] = c3;
}

// movmatrix transposes the 8x8 b16 matrix the warp holds (lane r*4 + c/2 holds row r, columns c, c+1).
extern "C" __global__ void movmatrix_t(const unsigned *in, unsigned *out) {
  unsigned v = in[threadIdx.x], t;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(t) : "r"(v));
  out[threadIdx.x] = t;
}

// One warp: C (8x8, f64) = A (8x4) * B (4x8) with mma.sync.m8n8k4.f64; lane g*4+t holds A[g][t],
// B[t][g] and C[g][2t], C[g][2t+1].
extern "C" __global__ void mma_f64(const double *A, const double *B, double *C) {
  int l = threadIdx.x, g = l >> 2, t = l & 3;
  double a = A[g * 4 + t], b = B[t * 8 + g], c0 = 0.5, c1 = -0.5;
  asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0,%1}, {%2}, {%3}, {%0,%1};" : "+d"(c0), "+d"(c1) : "d"(a), "d"(b));
  C[g * 8 + 2 * t] = c0; C[g * 8 + 2 * t + 1] = c1;
}

// cvt.rna.tf32.f32, as cuBLAS and CUTLASS round operands for tf32 tensor cores.
extern "C" __global__ void to_tf32(const float *in, unsigned *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(in[i]));
    out[i] = r;
  }
}
