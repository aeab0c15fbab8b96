// Calls and control flow from PTX. Kernels call __device__ __noinline__ functions (PTX .func with
// .param arguments): one returning a float, one taking a 32-byte struct by value plus pointers,
// one returning a struct, and a chain of two calls. Then divergent if/else chains, a switch, loops
// with break/continue and data-dependent trip counts, and per-thread Collatz step counts (64-bit
// arithmetic, 0 to ~300 iterations per thread). Everything is checked exactly: the float inputs
// are small integers, so every operation is exact whether or not it is fused.
//
// The device functions are also __host__, so the host reference evaluates the same expressions.
#include <vector>

#include "rt_verify.h"

static const char *NAME = "rt_device_func";

struct Particle {
    float x, y;
    int id;
    short flags;
    double w; // at offset 16: the struct is 24 bytes, 8-aligned
};

struct DivMod {
    int q, r;
};

__host__ __device__ __noinline__ float poly(float x)
{
    return ((3.0f * x - 2.0f) * x + 1.0f) * x - 7.0f;
}

// Takes the struct by value, reads a table and writes through a pointer.
__host__ __device__ __noinline__ int score(Particle p, const int *table, int *aux)
{
    int k = (p.id * 7 + p.flags) & 63;
    *aux = k + p.flags * 256;
    return table[k] + (int)(p.x * 4.0f) - (int)p.y + (int)p.w;
}

__host__ __device__ __noinline__ DivMod divmod(int a, int b)
{
    DivMod d;
    d.q = a / b;
    d.r = a % b;
    return d;
}

__host__ __device__ __noinline__ unsigned hash(unsigned x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

// The first link of the chain: calls hash, which is not inlined either.
__host__ __device__ __noinline__ unsigned mix(unsigned x, unsigned salt)
{
    return hash(x + salt) ^ (x >> 7);
}

__host__ __device__ __noinline__ int collatz_steps(unsigned long long v)
{
    int steps = 0;
    while (v != 1) {
        v = (v & 1) ? 3 * v + 1 : v >> 1;
        steps++;
    }
    return steps;
}

// Branches, a switch and loops whose trip counts depend on v (v >= 1).
__host__ __device__ int branchy(int v)
{
    int r;
    if (v % 3 == 0) {
        r = v / 3;
        for (int k = 0; k < (v & 7); k++) {
            r += k * (v & 255);
        }
    } else if (v & 1) {
        r = v;
        while (r < 100000) {
            r = r * 3 + 1;
        }
    } else {
        r = 0;
        for (int k = v; k > 0; k >>= 1) {
            r += k & 1;
        }
    }
    // Sum of the squares of the decimal digits, skipping zeros and stopping at the first 7.
    for (int k = v; k != 0; k /= 10) {
        int d = k % 10;
        if (d == 7) {
            break;
        }
        if (d == 0) {
            continue;
        }
        r += d * d;
    }
    switch (v % 6) {
    case 0: r += 11; break;
    case 1: r ^= 0x55; break;
    case 2: r -= v; break;
    case 3: r *= 3; break;
    case 5: r = ~r; break;
    default: break;
    }
    return r;
}

__global__ void rt_calls(const Particle *ps, const int *table, int n, float *fout, int *iout, int *aux,
                         DivMod *dm, unsigned *hout)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    Particle p = ps[i];
    fout[i] = poly(p.x);
    iout[i] = score(p, table, &aux[i]);
    dm[i] = divmod(p.id * 37 - 5000, (i % 9) - 4 == 0 ? 7 : (i % 9) - 4);
    hout[i] = mix((unsigned)i, 0x9e3779b9u);
}

__global__ void rt_control(const int *in, int n, int *branch, int *steps)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        int v = in[i];
        branch[i] = branchy(v);
        steps[i] = collatz_steps((unsigned long long)v);
    }
}

template <typename T>
static T *dev_alloc(size_t n)
{
    T *d = nullptr;
    if (cudaMalloc(&d, n * sizeof(T)) != cudaSuccess) {
        return nullptr;
    }
    CHECK_RT(cudaMemset(d, 0xff, n * sizeof(T)));
    return d;
}

template <typename T>
static std::vector<T> to_host(const T *d, size_t n)
{
    std::vector<T> h(n);
    CHECK_RT(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

static void calls()
{
    const int n = 5000 + 1;
    std::vector<Particle> ps(n);
    std::vector<int> table(64);
    for (int k = 0; k < 64; k++) {
        table[k] = k * k - 1000;
    }
    for (int i = 0; i < n; i++) {
        ps[i].x = (float)(i % 17 - 8);
        ps[i].y = 0.5f * (float)(i % 23);
        ps[i].id = i;
        ps[i].flags = (short)(i % 5 - 2);
        ps[i].w = (double)(i % 11) * 1.25;
    }
    Particle *dps = dev_alloc<Particle>(n);
    int *dtable = dev_alloc<int>(64), *diout = dev_alloc<int>(n), *daux = dev_alloc<int>(n);
    float *dfout = dev_alloc<float>(n);
    DivMod *ddm = dev_alloc<DivMod>(n);
    unsigned *dh = dev_alloc<unsigned>(n);
    CHECK(dps && dtable && diout && daux && dfout && ddm && dh);
    if (!(dps && dtable && diout && daux && dfout && ddm && dh)) {
        return;
    }
    CHECK_RT(cudaMemcpy(dps, ps.data(), n * sizeof(Particle), cudaMemcpyHostToDevice));
    CHECK_RT(cudaMemcpy(dtable, table.data(), 64 * sizeof(int), cudaMemcpyHostToDevice));
    rt_calls<<<(n + 127) / 128, 128>>>(dps, dtable, n, dfout, diout, daux, ddm, dh);
    CHECK_RT(cudaGetLastError());

    std::vector<float> f = to_host(dfout, n), wf(n);
    std::vector<int> io = to_host(diout, n), aux = to_host(daux, n), wio(n), waux(n);
    std::vector<DivMod> dm = to_host(ddm, n);
    std::vector<unsigned> h = to_host(dh, n), wh(n);
    std::vector<int> q(n), r(n), wq(n), wr(n);
    for (int i = 0; i < n; i++) {
        wf[i] = poly(ps[i].x);
        wio[i] = score(ps[i], table.data(), &waux[i]);
        DivMod d = divmod(ps[i].id * 37 - 5000, (i % 9) - 4 == 0 ? 7 : (i % 9) - 4);
        wq[i] = d.q;
        wr[i] = d.r;
        q[i] = dm[i].q;
        r[i] = dm[i].r;
        wh[i] = mix((unsigned)i, 0x9e3779b9u);
    }
    CHECK_EQ(0, verify_exact("poly(x) (float return)", f.data(), wf.data(), n));
    CHECK_EQ(0, verify_exact("score(struct by value, table) return", io.data(), wio.data(), n));
    CHECK_EQ(0, verify_exact("score's write through its pointer", aux.data(), waux.data(), n));
    CHECK_EQ(0, verify_exact("divmod (struct return) .q", q.data(), wq.data(), n));
    CHECK_EQ(0, verify_exact("divmod (struct return) .r", r.data(), wr.data(), n));
    CHECK_EQ(0, verify_exact("mix -> hash (call chain)", h.data(), wh.data(), n));
    cudaFree(dps);
    cudaFree(dtable);
    cudaFree(diout);
    cudaFree(daux);
    cudaFree(dfout);
    cudaFree(ddm);
    cudaFree(dh);
}

static void control()
{
    const int n = 4096 + 17;
    std::vector<int> in(n);
    for (int i = 0; i < n; i++) {
        in[i] = 1 + i * 7 + i % 13; // 1 .. ~28700; neighbours take different branches
    }
    int *din = dev_alloc<int>(n), *dbranch = dev_alloc<int>(n), *dsteps = dev_alloc<int>(n);
    CHECK(din && dbranch && dsteps);
    if (!(din && dbranch && dsteps)) {
        return;
    }
    CHECK_RT(cudaMemcpy(din, in.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    rt_control<<<(n + 255) / 256, 256>>>(din, n, dbranch, dsteps);
    CHECK_RT(cudaGetLastError());
    std::vector<int> b = to_host(dbranch, n), s = to_host(dsteps, n), wb(n), ws(n);
    int longest = 0;
    for (int i = 0; i < n; i++) {
        wb[i] = branchy(in[i]);
        ws[i] = collatz_steps((unsigned long long)in[i]);
        longest = ws[i] > longest ? ws[i] : longest;
    }
    CHECK(longest > 200); // the trip counts really do differ widely
    CHECK_EQ(0, verify_exact("branchy (if/else, loops, switch)", b.data(), wb.data(), n));
    CHECK_EQ(0, verify_exact("Collatz steps", s.data(), ws.data(), n));
    cudaFree(din);
    cudaFree(dbranch);
    cudaFree(dsteps);
}

int main()
{
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);
    calls();
    control();
    CHECK_RT(cudaDeviceSynchronize());
    return check_done(NAME);
}
