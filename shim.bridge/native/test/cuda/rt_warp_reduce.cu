// Warp-level primitives from PTX: shuffles (down, xor, up, indexed), block reductions through
// shared memory (static and dynamic), warp votes with divergent predicates and partial masks, and
// the sm_80 warp reductions (__reduce_*_sync). Integer results are checked exactly, float sums
// within a bound on their rounding error.
#include <vector>

#include "rt_verify.h"

static const char *NAME = "rt_warp_reduce";

#define FULL 0xffffffffu

template <typename T>
__device__ T warp_sum_down(T v)
{
    for (int off = 16; off > 0; off >>= 1) {
        v += __shfl_down_sync(FULL, v, off);
    }
    return v; // the total in lane 0 only
}

template <typename T>
__device__ T warp_sum_xor(T v)
{
    for (int off = 1; off < 32; off <<= 1) {
        v += __shfl_xor_sync(FULL, v, off);
    }
    return v; // the total in every lane
}

// One partial sum per block: shuffle-down within each warp, the warp totals through dynamic
// shared memory, then the first warp combines them with xor shuffles. Also writes each thread's
// warp total (from the xor butterfly) to warp_total, so every lane's view is checked. Threads
// past n contribute zero; blockDim.x must be a multiple of 32.
template <typename T>
__global__ void rt_block_sum(const T *in, int n, T *block_sums, T *warp_total)
{
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *warp_sums = reinterpret_cast<T *>(smem_raw);
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    T v = i < n ? in[i] : T(0);

    T all = warp_sum_xor(v);
    if (i < n) {
        warp_total[i] = all;
    }
    T s = warp_sum_down(v);
    if (lane == 0) {
        warp_sums[warp] = s;
    }
    __syncthreads();
    if (warp == 0) {
        int warps = blockDim.x >> 5;
        T w = lane < warps ? warp_sums[lane] : T(0);
        w = warp_sum_xor(w);
        if (lane == 0) {
            block_sums[blockIdx.x] = w;
        }
    }
}

// Inclusive prefix sum within each warp (__shfl_up_sync) and a rotation by a data-dependent
// amount (__shfl_sync with a computed source lane); ints.
__global__ void rt_warp_scan(const int *in, int *scan, int *rotated, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int lane = threadIdx.x & 31;
    int v = i < n ? in[i] : 0;
    int x = v;
    for (int off = 1; off < 32; off <<= 1) {
        int y = __shfl_up_sync(FULL, x, off);
        if (lane >= off) {
            x += y;
        }
    }
    int by = (blockIdx.x + (threadIdx.x >> 5)) % 32; // the same for the whole warp
    int r = __shfl_sync(FULL, v, (lane + by) & 31);
    if (i < n) {
        scan[i] = x;
        rotated[i] = r;
    }
}

// Votes. Per thread, 6 words: the full-warp ballot of p, __any_sync/__all_sync of two predicates
// that are uniform in some warps and mixed in others, a ballot taken inside a divergent branch
// with the mask of the lanes in it (other lanes store a marker), and __popc of the full ballot.
__global__ void rt_votes(const int *in, unsigned *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x; // the grid covers n exactly (a multiple of 32)
    int lane = threadIdx.x & 31;
    int v = in[i];
    bool p = (v % 3) == 0;
    unsigned ballot = __ballot_sync(FULL, p);
    unsigned any = __any_sync(FULL, v > 1000);
    unsigned all = __all_sync(FULL, v >= 0);
    unsigned part;
    if (lane < 20) {
        // Only lanes 0..19 take this branch; the mask names exactly them.
        part = __ballot_sync(0x000fffffu, (v & 1) != 0);
    } else if (lane >= 24) {
        part = __ballot_sync(0xff000000u, v > 500);
    } else {
        part = 0xdeadbeefu;
    }
    unsigned *o = out + (size_t)i * 6;
    o[0] = ballot;
    o[1] = any != 0;
    o[2] = all != 0;
    o[3] = part;
    o[4] = __popc(ballot);
    o[5] = __ffs(ballot);
    (void)n;
}

// Warp reductions (redux.sync) over unsigned values: add, min, max, and, or, xor; 6 words per warp.
__global__ void rt_warp_redux(const unsigned *in, unsigned *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned v = in[i];
    unsigned add = __reduce_add_sync(FULL, v);
    unsigned mn = __reduce_min_sync(FULL, v);
    unsigned mx = __reduce_max_sync(FULL, v);
    unsigned a = __reduce_and_sync(FULL, v);
    unsigned o = __reduce_or_sync(FULL, v);
    unsigned x = __reduce_xor_sync(FULL, v);
    int smin = __reduce_min_sync(FULL, (int)(v - 1000u));
    if ((threadIdx.x & 31) == 0) {
        unsigned *w = out + (size_t)(i >> 5) * 7;
        w[0] = add;
        w[1] = mn;
        w[2] = mx;
        w[3] = a;
        w[4] = o;
        w[5] = x;
        w[6] = (unsigned)smin;
    }
}

static const int BLOCK = 256;

template <typename T>
static T *device_copy(const std::vector<T> &h)
{
    T *d = nullptr;
    if (cudaMalloc(&d, h.size() * sizeof(T)) != cudaSuccess) {
        return nullptr;
    }
    CHECK_RT(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

template <typename T>
static T *device_output(size_t n)
{
    T *d = nullptr;
    if (cudaMalloc(&d, n * sizeof(T)) != cudaSuccess) {
        return nullptr;
    }
    CHECK_RT(cudaMemset(d, 0xff, n * sizeof(T)));
    return d;
}

template <typename T>
static std::vector<T> host_copy(const T *d, size_t n)
{
    std::vector<T> h(n);
    CHECK_RT(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

static void sums()
{
    // Not a multiple of the block: the tail block has a partial warp and idle warps.
    const int n = 50000 + 77;
    const int grid = (n + BLOCK - 1) / BLOCK;
    std::vector<int> ai(n);
    std::vector<float> af(n);
    for (int i = 0; i < n; i++) {
        ai[i] = (int)((i * 2654435761u) >> 20) - 2048; // both signs
        af[i] = 0.001f * (float)((i * 7919) % 2001 - 1000);
    }

    int *di = device_copy(ai);
    float *df = device_copy(af);
    int *dbi = device_output<int>(grid), *dwi = device_output<int>(n);
    float *dbf = device_output<float>(grid), *dwf = device_output<float>(n);
    CHECK(di && df && dbi && dwi && dbf && dwf);
    if (!(di && df && dbi && dwi && dbf && dwf)) {
        return;
    }
    rt_block_sum<int><<<grid, BLOCK, (BLOCK / 32) * sizeof(int)>>>(di, n, dbi, dwi);
    CHECK_RT(cudaGetLastError());
    rt_block_sum<float><<<grid, BLOCK, (BLOCK / 32) * sizeof(float)>>>(df, n, dbf, dwf);
    CHECK_RT(cudaGetLastError());
    CHECK_RT(cudaDeviceSynchronize());

    std::vector<int> bi = host_copy(dbi, grid), wi = host_copy(dwi, n);
    std::vector<float> bf = host_copy(dbf, grid), wf = host_copy(dwf, n);

    std::vector<int> want_bi(grid, 0), want_wi(n);
    std::vector<double> want_bf(grid, 0), scale_bf(grid, 0), want_wf(n), scale_wf(n);
    for (int i = 0; i < n; i++) {
        want_bi[i / BLOCK] += ai[i];
        want_bf[i / BLOCK] += af[i];
        scale_bf[i / BLOCK] += fabs(af[i]);
    }
    for (int w = 0; w * 32 < n; w++) {
        int s = 0;
        double sf = 0, mf = 0;
        for (int i = w * 32; i < n && i < w * 32 + 32; i++) {
            s += ai[i];
            sf += af[i];
            mf += fabs(af[i]);
        }
        for (int i = w * 32; i < n && i < w * 32 + 32; i++) {
            want_wi[i] = s;
            want_wf[i] = sf;
            scale_wf[i] = mf;
        }
    }
    CHECK_EQ(0, verify_exact("block sum int", bi.data(), want_bi.data(), grid));
    CHECK_EQ(0, verify_exact("warp total int", wi.data(), want_wi.data(), n));
    // A float sum of m terms in any order is within m * 2^-24 * sum|x| of the exact sum.
    CHECK_EQ(0, verify_close("block sum float", bf.data(), want_bf.data(), scale_bf.data(), grid, 2e-5, 1e-6));
    CHECK_EQ(0, verify_close("warp total float", wf.data(), want_wf.data(), scale_wf.data(), n, 1e-5, 1e-6));

    // Every lane of a warp saw the same xor-butterfly total, bit for bit.
    int differ = 0;
    for (int i = 0; i < n; i++) {
        if (memcmp(&wf[i], &wf[i - i % 32], sizeof(float)) != 0 && differ++ < RT_VERIFY_SHOWN) {
            fprintf(stderr, "FAIL warp total float[%d] = %.9g differs from lane 0's %.9g\n", i, wf[i], wf[i - i % 32]);
        }
    }
    CHECK_EQ(0, differ);

    cudaFree(di);
    cudaFree(df);
    cudaFree(dbi);
    cudaFree(dwi);
    cudaFree(dbf);
    cudaFree(dwf);
}

static void scan()
{
    const int n = 4096 + 40;
    const int block = 128;
    const int grid = (n + block - 1) / block;
    std::vector<int> in(n);
    for (int i = 0; i < n; i++) {
        in[i] = (i * 37) % 101 - 50;
    }
    int *din = device_copy(in);
    int *dscan = device_output<int>(n), *drot = device_output<int>(n);
    CHECK(din && dscan && drot);
    if (!(din && dscan && drot)) {
        return;
    }
    rt_warp_scan<<<grid, block>>>(din, dscan, drot, n);
    CHECK_RT(cudaGetLastError());
    std::vector<int> sc = host_copy(dscan, n), rot = host_copy(drot, n);
    std::vector<int> want_sc(n), want_rot(n);
    for (int i = 0; i < n; i++) {
        int base = i - i % 32, lane = i % 32;
        int s = 0;
        for (int j = base; j <= i; j++) {
            s += in[j];
        }
        want_sc[i] = s;
        int b = i / block, t = i % block;
        int by = (b + t / 32) % 32;
        int src = base + ((lane + by) & 31);
        want_rot[i] = src < n ? in[src] : 0;
    }
    CHECK_EQ(0, verify_exact("warp inclusive scan", sc.data(), want_sc.data(), n));
    CHECK_EQ(0, verify_exact("warp rotation", rot.data(), want_rot.data(), n));
    cudaFree(din);
    cudaFree(dscan);
    cudaFree(drot);
}

static void votes()
{
    const int n = 64 * 32; // 64 warps
    std::vector<int> in(n);
    for (int i = 0; i < n; i++) {
        int w = i / 32, lane = i % 32;
        switch (w % 4) {
        case 0: in[i] = (i * 13) % 997; break;      // mixed, all >= 0, none > 1000
        case 1: in[i] = 3 * (lane + w);  break;     // every p true
        case 2: in[i] = lane == 7 ? -5 : 1001 + 3 * lane + 1; break; // all > 1000 but lane 7, which is < 0
        default: in[i] = 3 * lane + 1 + (lane == 31 ? 2001 : 0); break; // no p; one lane > 1000
        }
    }
    int *din = device_copy(in);
    unsigned *dout = device_output<unsigned>((size_t)n * 6);
    CHECK(din && dout);
    if (!(din && dout)) {
        return;
    }
    rt_votes<<<n / 128, 128>>>(din, dout, n);
    CHECK_RT(cudaGetLastError());
    std::vector<unsigned> out = host_copy(dout, (size_t)n * 6);
    std::vector<unsigned> want((size_t)n * 6);
    for (int w = 0; w < n / 32; w++) {
        unsigned ballot = 0, odd = 0, big = 0;
        bool any = false, all = true;
        for (int l = 0; l < 32; l++) {
            int v = in[w * 32 + l];
            ballot |= (unsigned)((v % 3) == 0) << l;
            any |= v > 1000;
            all &= v >= 0;
            if (l < 20) {
                odd |= (unsigned)((v & 1) != 0) << l;
            }
            if (l >= 24) {
                big |= (unsigned)(v > 500) << l;
            }
        }
        for (int l = 0; l < 32; l++) {
            unsigned *o = &want[(size_t)(w * 32 + l) * 6];
            o[0] = ballot;
            o[1] = any;
            o[2] = all;
            o[3] = l < 20 ? odd : l >= 24 ? big : 0xdeadbeefu;
            o[4] = (unsigned)__builtin_popcount(ballot);
            o[5] = (unsigned)__builtin_ffs((int)ballot);
        }
    }
    CHECK_EQ(0, verify_exact("votes (6 words per thread: ballot any all partial-ballot popc ffs)", out.data(),
                             want.data(), want.size()));
    cudaFree(din);
    cudaFree(dout);
}

static void redux()
{
    const int n = 32 * 40;
    std::vector<unsigned> in(n);
    for (int i = 0; i < n; i++) {
        in[i] = (i / 32) % 5 == 0 ? 0x0f0f1234u | (unsigned)(i % 32 << 20) : (unsigned)i * 2654435761u;
    }
    unsigned *din = device_copy(in);
    unsigned *dout = device_output<unsigned>((size_t)(n / 32) * 7);
    CHECK(din && dout);
    if (!(din && dout)) {
        return;
    }
    rt_warp_redux<<<n / 64, 64>>>(din, dout);
    CHECK_RT(cudaGetLastError());
    std::vector<unsigned> out = host_copy(dout, (size_t)(n / 32) * 7);
    std::vector<unsigned> want((size_t)(n / 32) * 7);
    for (int w = 0; w < n / 32; w++) {
        unsigned add = 0, mn = ~0u, mx = 0, a = ~0u, o = 0, x = 0;
        int smin = 0x7fffffff;
        for (int l = 0; l < 32; l++) {
            unsigned v = in[w * 32 + l];
            add += v;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            a &= v;
            o |= v;
            x ^= v;
            int s = (int)(v - 1000u);
            smin = s < smin ? s : smin;
        }
        unsigned *r = &want[(size_t)w * 7];
        r[0] = add;
        r[1] = mn;
        r[2] = mx;
        r[3] = a;
        r[4] = o;
        r[5] = x;
        r[6] = (unsigned)smin;
    }
    CHECK_EQ(0, verify_exact("warp redux (7 words per warp: add min max and or xor signed-min)", out.data(),
                             want.data(), want.size()));
    cudaFree(din);
    cudaFree(dout);
}

int main()
{
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);
    sums();
    scan();
    votes();
    redux();
    CHECK_RT(cudaDeviceSynchronize());
    return check_done(NAME);
}
