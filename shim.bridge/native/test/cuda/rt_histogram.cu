// Atomics from PTX. A 256-bin histogram: per-block counts with shared-memory atomicAdd, merged
// with global atomicAdd (a grid-stride loop over skewed data, so many threads hit the same bins at
// once). Then the other global atomics, each checked exactly: atomicMax/atomicMin on signed and
// unsigned ints, atomicAdd's returned tickets (a permutation), atomicExch (every value comes back
// exactly once), an atomicCAS loop, atomicSub/And/Or/Xor/Inc, 64-bit atomicAdd, and atomicAdd on
// float and double with values whose sums are exact in any order.
#include <algorithm>
#include <vector>

#include "rt_verify.h"

static const char *NAME = "rt_histogram";

#define BINS 256

__global__ void rt_histogram(const unsigned char *data, int n, unsigned *bins, int *block_max)
{
    __shared__ unsigned local[BINS];
    __shared__ int local_max;
    for (int b = threadIdx.x; b < BINS; b += blockDim.x) {
        local[b] = 0;
    }
    if (threadIdx.x == 0) {
        local_max = -1;
    }
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        atomicAdd(&local[data[i]], 1u);
        atomicMax(&local_max, (int)data[i]);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < BINS; b += blockDim.x) {
        if (local[b] != 0) {
            atomicAdd(&bins[b], local[b]);
        }
    }
    if (threadIdx.x == 0) {
        block_max[blockIdx.x] = local_max;
    }
}

// The scalar results: one slot each.
enum {
    S_MAX, S_MIN, S_UMAX, S_UMIN, S_CAS_SUM, S_SUB, S_AND, S_OR, S_XOR, S_INC, S_COUNT
};

__global__ void rt_int_atomics(const int *vals, int n, int *s, unsigned *tickets, int *slots, int nslots,
                               int *exch_old, unsigned long long *sum64)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    int v = vals[i];
    atomicMax(&s[S_MAX], v);
    atomicMin(&s[S_MIN], v);
    atomicMax((unsigned *)&s[S_UMAX], (unsigned)v);
    atomicMin((unsigned *)&s[S_UMIN], (unsigned)v);
    // An add built from compare-and-swap: retries until no other thread got in between.
    int old = s[S_CAS_SUM], assumed;
    do {
        assumed = old;
        old = atomicCAS(&s[S_CAS_SUM], assumed, assumed + v);
    } while (old != assumed);
    atomicSub(&s[S_SUB], v);
    atomicAnd(&s[S_AND], v > 99500 ? ~(1 << (i % 31)) : ~0); // a few of the 31 bits
    atomicOr(&s[S_OR], v < -99000 ? 1 << (i % 29) : 0);
    atomicXor(&s[S_XOR], v);
    atomicInc((unsigned *)&s[S_INC], 999u); // counts 0..999 and wraps to 0
    tickets[i] = atomicAdd(&tickets[n], 1u); // tickets[n] is the counter
    exch_old[i] = atomicExch(&slots[i % nslots], i);
    atomicAdd(sum64, (unsigned long long)(unsigned)v << 20);
}

// fsum[0..7]: sums by i % 8, fsum[8]: the total, fsum[9]: a counter whose old values are returned
// (as are dsum[1]'s), so they are the tickets 0, 1, 2, ... in float and double.
__global__ void rt_float_atomics(const float *f, const double *d, int n, float *fsum, double *dsum, float *fticket,
                                 double *dticket)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        atomicAdd(&fsum[i % 8], f[i]);
        atomicAdd(&fsum[8], f[i]);
        atomicAdd(&dsum[0], d[i]);
        fticket[i] = atomicAdd(&fsum[9], 1.0f);
        dticket[i] = atomicAdd(&dsum[1], 1.0);
    }
}

template <typename T>
static T *to_device(const std::vector<T> &h)
{
    T *d = nullptr;
    if (cudaMalloc(&d, h.size() * sizeof(T)) != cudaSuccess) {
        return nullptr;
    }
    CHECK_RT(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

template <typename T>
static std::vector<T> to_host(const T *d, size_t n)
{
    std::vector<T> h(n);
    CHECK_RT(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

static void histogram()
{
    const int n = 100000;
    std::vector<unsigned char> data(n);
    unsigned x = 12345;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        unsigned r = x >> 16;
        // Skewed: a third of the values fall in bins 0..7, a few land in 255.
        data[i] = (unsigned char)(r % 3 == 0 ? r % 8 : (r % 1000 == 1 ? 255 : r % 200));
    }
    unsigned char *dd = to_device(data);
    unsigned *dbins = nullptr;
    CHECK_RT(cudaMalloc(&dbins, BINS * sizeof(unsigned)));
    CHECK(dd && dbins);
    if (!(dd && dbins)) {
        return;
    }
    CHECK_RT(cudaMemset(dbins, 0, BINS * sizeof(unsigned)));
    const int grid = 48, block = 256;
    int *dmax = nullptr;
    CHECK_RT(cudaMalloc(&dmax, grid * sizeof(int)));
    CHECK_RT(cudaMemset(dmax, 0xff, grid * sizeof(int)));
    rt_histogram<<<grid, block>>>(dd, n, dbins, dmax);
    CHECK_RT(cudaGetLastError());
    std::vector<unsigned> bins = to_host(dbins, BINS);
    std::vector<int> bmax = to_host(dmax, grid);
    std::vector<unsigned> want(BINS, 0);
    std::vector<int> want_max(grid, -1);
    for (int i = 0; i < n; i++) {
        want[data[i]]++;
        int b = i / block % grid; // the block whose grid-stride loop visits i
        want_max[b] = std::max(want_max[b], (int)data[i]);
    }
    CHECK_EQ(0, verify_exact("per-block shared atomicMax", bmax.data(), want_max.data(), grid));
    CHECK_EQ(0, verify_exact("histogram bin", bins.data(), want.data(), BINS));
    unsigned long total = 0;
    for (unsigned b : bins) {
        total += b;
    }
    CHECK_EQ(n, total);
    cudaFree(dd);
    cudaFree(dbins);
    cudaFree(dmax);
}

static void int_atomics()
{
    const int n = 10000 + 3, nslots = 97;
    std::vector<int> vals(n);
    for (int i = 0; i < n; i++) {
        vals[i] = (int)((i * 2654435761u) % 200001u) - 100000; // both signs, distinct extremes
    }
    std::vector<int> init(S_COUNT);
    init[S_MAX] = -200000;
    init[S_MIN] = 200000;
    init[S_UMAX] = 5;
    init[S_UMIN] = -1; // 0xffffffff unsigned
    init[S_CAS_SUM] = 17;
    init[S_SUB] = 1000;
    init[S_AND] = -1;
    init[S_OR] = 0;
    init[S_XOR] = 0x5a5a5a5a;
    init[S_INC] = 0;
    std::vector<int> slots_init(nslots);
    for (int s = 0; s < nslots; s++) {
        slots_init[s] = -1 - s;
    }
    std::vector<unsigned> tickets_init(n + 1, 0xffffffffu);
    tickets_init[n] = 0;
    unsigned long long sum64_init = 1ull << 40;

    int *dvals = to_device(vals), *ds = to_device(init), *dslots = to_device(slots_init);
    unsigned *dtickets = to_device(tickets_init);
    int *dold = nullptr;
    unsigned long long *dsum64 = nullptr;
    CHECK_RT(cudaMalloc(&dold, n * sizeof(int)));
    CHECK_RT(cudaMalloc(&dsum64, sizeof sum64_init));
    CHECK(dvals && ds && dslots && dtickets && dold && dsum64);
    if (!(dvals && ds && dslots && dtickets && dold && dsum64)) {
        return;
    }
    CHECK_RT(cudaMemset(dold, 0xff, n * sizeof(int)));
    CHECK_RT(cudaMemcpy(dsum64, &sum64_init, sizeof sum64_init, cudaMemcpyHostToDevice));
    rt_int_atomics<<<(n + 127) / 128, 128>>>(dvals, n, ds, dtickets, dslots, nslots, dold, dsum64);
    CHECK_RT(cudaGetLastError());

    std::vector<int> s = to_host(ds, S_COUNT), slots = to_host(dslots, nslots), old = to_host(dold, n);
    std::vector<unsigned> tickets = to_host(dtickets, n + 1);
    std::vector<unsigned long long> sum64 = to_host(dsum64, 1);

    std::vector<int> want = init;
    unsigned long long want64 = sum64_init;
    unsigned umax = (unsigned)init[S_UMAX], umin = (unsigned)init[S_UMIN], inc = 0;
    for (int i = 0; i < n; i++) {
        int v = vals[i];
        want[S_MAX] = std::max(want[S_MAX], v);
        want[S_MIN] = std::min(want[S_MIN], v);
        umax = std::max(umax, (unsigned)v);
        umin = std::min(umin, (unsigned)v);
        want[S_CAS_SUM] = (int)((unsigned)want[S_CAS_SUM] + (unsigned)v);
        want[S_SUB] = (int)((unsigned)want[S_SUB] - (unsigned)v);
        want[S_AND] &= v > 99500 ? ~(1 << (i % 31)) : ~0;
        want[S_OR] |= v < -99000 ? 1 << (i % 29) : 0;
        want[S_XOR] ^= v;
        inc = inc >= 999u ? 0 : inc + 1;
        want64 += (unsigned long long)(unsigned)v << 20;
    }
    want[S_UMAX] = (int)umax;
    want[S_UMIN] = (int)umin;
    want[S_INC] = (int)inc;
    static const char *names[S_COUNT] = {"atomicMax", "atomicMin", "atomicMax(unsigned)", "atomicMin(unsigned)",
                                         "atomicCAS loop", "atomicSub", "atomicAnd", "atomicOr", "atomicXor",
                                         "atomicInc"};
    for (int k = 0; k < S_COUNT; k++) {
        CHECK_EQ(0, verify_exact(names[k], &s[k], &want[k], 1));
    }
    CHECK_EQ(0, verify_exact("atomicAdd(unsigned long long)", sum64.data(), &want64, 1));

    // Tickets: the counter ends at n and the returned values are 0..n-1, each once.
    CHECK_EQ(n, tickets[n]);
    std::vector<unsigned> sorted(tickets.begin(), tickets.begin() + n), perm(n);
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < n; i++) {
        perm[i] = (unsigned)i;
    }
    CHECK_EQ(0, verify_exact("sorted atomicAdd tickets", sorted.data(), perm.data(), n));

    // atomicExch: per slot, the values returned plus the final one are the initial value and the
    // ids of the threads that exchanged into it, each exactly once.
    int wrong = 0;
    for (int slot = 0; slot < nslots; slot++) {
        std::vector<int> seen, expect;
        expect.push_back(slots_init[slot]);
        seen.push_back(slots[slot]);
        for (int i = slot; i < n; i += nslots) {
            expect.push_back(i);
            seen.push_back(old[i]);
        }
        std::sort(seen.begin(), seen.end());
        std::sort(expect.begin(), expect.end());
        if (seen != expect && wrong++ < RT_VERIFY_SHOWN) {
            fprintf(stderr, "FAIL atomicExch slot %d: final %d; returned and final values are not the initial "
                            "value and the writers' ids\n", slot, slots[slot]);
        }
    }
    CHECK_EQ(0, wrong);
    cudaFree(dvals);
    cudaFree(ds);
    cudaFree(dslots);
    cudaFree(dtickets);
    cudaFree(dold);
    cudaFree(dsum64);
}

static void float_atomics()
{
    const int n = 20000;
    std::vector<float> f(n);
    std::vector<double> d(n);
    for (int i = 0; i < n; i++) {
        // Multiples of 1/4 below 8 (float) and of 1/1024 below 64 (double): every partial sum is
        // exactly representable (float: |sum| < 2^20 at 2^-2 resolution), so any order is exact.
        f[i] = 0.25f * (float)((i * 7) % 61 - 30);
        d[i] = (double)((i * 13) % 65536 - 30000) / 1024.0;
    }
    float *df = to_device(f);
    double *dd = to_device(d);
    std::vector<float> fs_init(10, 0.0f);
    fs_init[8] = 1.5f; // the grand total starts at 1.5
    std::vector<double> ds_init = {-0.125, 0.0};
    float *dfs = to_device(fs_init), *dft = nullptr;
    double *dds = to_device(ds_init), *ddt = nullptr;
    CHECK_RT(cudaMalloc(&dft, n * sizeof(float)));
    CHECK_RT(cudaMalloc(&ddt, n * sizeof(double)));
    CHECK(df && dd && dfs && dds && dft && ddt);
    if (!(df && dd && dfs && dds && dft && ddt)) {
        return;
    }
    CHECK_RT(cudaMemset(dft, 0xff, n * sizeof(float)));
    CHECK_RT(cudaMemset(ddt, 0xff, n * sizeof(double)));
    rt_float_atomics<<<(n + 255) / 256, 256>>>(df, dd, n, dfs, dds, dft, ddt);
    CHECK_RT(cudaGetLastError());
    std::vector<float> fs = to_host(dfs, 10), ft = to_host(dft, n);
    std::vector<double> ds = to_host(dds, 2), dt = to_host(ddt, n);
    std::vector<float> want_f = fs_init;
    std::vector<double> want_d = ds_init;
    for (int i = 0; i < n; i++) {
        want_f[i % 8] += f[i];
        want_f[8] += f[i];
        want_d[0] += d[i];
    }
    want_f[9] = (float)n;
    want_d[1] = (double)n;
    CHECK_EQ(0, verify_exact("atomicAdd(float) sums (by i % 8, total, counter)", fs.data(), want_f.data(), 10));
    CHECK_EQ(0, verify_exact("atomicAdd(double) (total, counter)", ds.data(), want_d.data(), 2));
    // NaN (what an unwritten element reads as) sorts last: std::sort needs a strict weak order.
    auto before = [](double a, double b) { return (isnan(b) && !isnan(a)) || a < b; };
    std::sort(ft.begin(), ft.end(), before);
    std::sort(dt.begin(), dt.end(), before);
    std::vector<float> want_ft(n);
    std::vector<double> want_dt(n);
    for (int i = 0; i < n; i++) {
        want_ft[i] = (float)i;
        want_dt[i] = (double)i;
    }
    CHECK_EQ(0, verify_exact("sorted atomicAdd(float) tickets", ft.data(), want_ft.data(), n));
    CHECK_EQ(0, verify_exact("sorted atomicAdd(double) tickets", dt.data(), want_dt.data(), n));
    cudaFree(df);
    cudaFree(dd);
    cudaFree(dfs);
    cudaFree(dds);
    cudaFree(dft);
    cudaFree(ddt);
}

int main()
{
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);
    histogram();
    int_atomics();
    float_atomics();
    CHECK_RT(cudaDeviceSynchronize());
    return check_done(NAME);
}
