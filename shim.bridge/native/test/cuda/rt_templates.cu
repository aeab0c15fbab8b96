// Templated kernels from PTX, each instantiated for float, double and int (one PTX entry per
// instantiation): axpy, an elementwise op whose functor is a kernel parameter (a struct passed by
// value), and a stencil whose radius is a template parameter (unrolled loops). The inputs are
// chosen so every result is exact (small dyadic values), except one axpy run per floating type on
// arbitrary values, which is checked within 2 ulps of the exact a*x+y (fused or not).
// Division is checked exactly: div.rn of float and double is IEEE's correctly rounded quotient.
#include <string>
#include <type_traits>
#include <vector>

#include "rt_verify.h"

static const char *NAME = "rt_templates";

template <typename T>
__global__ void rt_axpy(T a, const T *x, T *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = a * x[i] + y[i];
    }
}

template <typename T, typename Op>
__global__ void rt_transform(const T *a, const T *b, T *out, int n, Op op)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        out[i] = op(a[i], b[i]);
    }
}

// out[i] = sum of in[j] for j in [i-R, i+R] clamped to the array.
template <typename T, int R>
__global__ void rt_stencil(const T *in, T *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    T s = T(0);
#pragma unroll
    for (int d = -R; d <= R; d++) {
        int j = min(max(i + d, 0), n - 1);
        s += in[j];
    }
    out[i] = s;
}

// Functors: device and host, so the host reference is the same expression.
template <typename T>
struct MulAdd {
    T k, c;
    __host__ __device__ T operator()(T x, T y) const { return x * k + y * c; }
};

template <typename T>
struct MinMaxMix {
    int mode;
    __host__ __device__ T operator()(T x, T y) const { return mode == 0 ? (x < y ? x : y) : (x > y ? x : y) - x; }
};

template <typename T>
struct Div {
    __host__ __device__ T operator()(T x, T y) const { return x / y; }
};

struct IntBits {
    int shift;
    unsigned mask;
    __host__ __device__ int operator()(int x, int y) const
    {
        return (int)(((unsigned)x << shift | (unsigned)y >> (32 - shift)) & mask) ^ (x >> 3) ^ (y % 7);
    }
};

template <typename T>
static const char *type_name();
template <> const char *type_name<float>() { return "float"; }
template <> const char *type_name<double>() { return "double"; }
template <> const char *type_name<int>() { return "int"; }

template <typename T>
struct Dev {
    T *p = nullptr;
    size_t n = 0;
    explicit Dev(size_t count) : n(count)
    {
        CHECK_RT(cudaMalloc(&p, n * sizeof(T)));
        if (p) {
            CHECK_RT(cudaMemset(p, 0xff, n * sizeof(T)));
        }
    }
    Dev(const Dev &) = delete;
    ~Dev() { cudaFree(p); }
    void put(const std::vector<T> &h) { CHECK_RT(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice)); }
    std::vector<T> get() const
    {
        std::vector<T> h(n);
        CHECK_RT(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
        return h;
    }
};

static std::string label(const char *what, const char *type)
{
    return std::string(what) + "<" + type + ">";
}

// Small dyadic values (exact in all three types as long as no product leaves 2^24).
template <typename T>
static T small_value(int i, int salt)
{
    int v = (i * (salt * 2 + 7) + salt * 13) % 97 - 48;
    return std::is_integral<T>::value ? (T)v : (T)v / (T)4;
}

template <typename T, typename Op>
static void check_transform(const char *what, Op op, const std::vector<T> &a, const std::vector<T> &b)
{
    int n = (int)a.size();
    Dev<T> da(n), db(n), dout(n);
    if (!da.p || !db.p || !dout.p) {
        return;
    }
    da.put(a);
    db.put(b);
    // Fewer threads than elements: the grid-stride loop runs 1 to 3 times per thread.
    rt_transform<T, Op><<<13, 128>>>(da.p, db.p, dout.p, n, op);
    CHECK_RT(cudaGetLastError());
    std::vector<T> got = dout.get(), want(n);
    for (int i = 0; i < n; i++) {
        want[i] = op(a[i], b[i]);
    }
    CHECK_EQ(0, verify_exact(label(what, type_name<T>()).c_str(), got.data(), want.data(), n));
}

template <typename T>
static void run_type()
{
    const int n = 4000 + 9;
    const char *tn = type_name<T>();
    std::vector<T> x(n), y(n), a(n), b(n);
    for (int i = 0; i < n; i++) {
        x[i] = small_value<T>(i, 1);
        y[i] = small_value<T>(i, 2);
    }

    // axpy, exact.
    {
        T alpha = std::is_integral<T>::value ? (T)5 : (T)2.5;
        Dev<T> dx(n), dy(n);
        if (!dx.p || !dy.p) {
            return;
        }
        dx.put(x);
        dy.put(y);
        rt_axpy<T><<<(n + 255) / 256, 256>>>(alpha, dx.p, dy.p, n);
        CHECK_RT(cudaGetLastError());
        std::vector<T> got = dy.get(), want(n);
        for (int i = 0; i < n; i++) {
            want[i] = alpha * x[i] + y[i];
        }
        CHECK_EQ(0, verify_exact(label("axpy", tn).c_str(), got.data(), want.data(), n));
    }

    // axpy on arbitrary values: within 2 ulps of the exact result, whether or not it was fused.
    if (!std::is_integral<T>::value) {
        std::vector<T> u(n), v(n);
        for (int i = 0; i < n; i++) {
            u[i] = (T)1 / (T)(i + 3);
            v[i] = (T)(i % 10) / (T)7 - (T)0.5;
        }
        T alpha = (T)3.14159265358979;
        Dev<T> du(n), dv(n);
        if (!du.p || !dv.p) {
            return;
        }
        du.put(u);
        dv.put(v);
        rt_axpy<T><<<(n + 127) / 128, 128>>>(alpha, du.p, dv.p, n);
        CHECK_RT(cudaGetLastError());
        std::vector<T> got = dv.get();
        std::vector<double> want(n), scale(n);
        for (int i = 0; i < n; i++) {
            long double e = (long double)alpha * u[i] + v[i];
            want[i] = (double)e;
            // 2 ulps of the larger of the result and the product (rounding of a*x, then of the sum).
            long double m = fabsl((long double)alpha * u[i]) > fabsl(e) ? fabsl((long double)alpha * u[i]) : fabsl(e);
            scale[i] = (double)m;
        }
        double eps = sizeof(T) == sizeof(float) ? 1.0 / (1 << 23) : 1.0 / (1ull << 52);
        CHECK_EQ(0, verify_close(label("axpy (inexact)", tn).c_str(), got.data(), want.data(), scale.data(), n,
                                 2 * eps, 0.0));
    }

    for (int i = 0; i < n; i++) {
        a[i] = small_value<T>(i, 3);
        b[i] = small_value<T>(i, 4);
        if (b[i] == T(0)) {
            b[i] = T(3);
        }
    }
    check_transform<T>("transform MulAdd", MulAdd<T>{(T)3, (T)-2}, a, b);
    check_transform<T>("transform min", MinMaxMix<T>{0}, a, b);
    check_transform<T>("transform max-minus-x", MinMaxMix<T>{1}, a, b);
    check_transform<T>("transform divide", Div<T>{}, a, b);

    // Stencils of radius 1 and 3, with clamped edges.
    {
        Dev<T> din(n), d1(n), d3(n);
        if (!din.p || !d1.p || !d3.p) {
            return;
        }
        din.put(x);
        rt_stencil<T, 1><<<(n + 255) / 256, 256>>>(din.p, d1.p, n);
        rt_stencil<T, 3><<<(n + 63) / 64, 64>>>(din.p, d3.p, n);
        CHECK_RT(cudaGetLastError());
        std::vector<T> g1 = d1.get(), g3 = d3.get(), w1(n), w3(n);
        for (int i = 0; i < n; i++) {
            T s1 = 0, s3 = 0;
            for (int d = -3; d <= 3; d++) {
                int j = std::min(std::max(i + d, 0), n - 1);
                s3 += x[j];
                if (d >= -1 && d <= 1) {
                    s1 += x[j];
                }
            }
            w1[i] = s1;
            w3[i] = s3;
        }
        CHECK_EQ(0, verify_exact(label("stencil R=1", tn).c_str(), g1.data(), w1.data(), n));
        CHECK_EQ(0, verify_exact(label("stencil R=3", tn).c_str(), g3.data(), w3.data(), n));
    }
}

int main()
{
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);
    run_type<float>();
    run_type<double>();
    run_type<int>();

    // A functor only int has.
    const int n = 3001;
    std::vector<int> a(n), b(n);
    for (int i = 0; i < n; i++) {
        a[i] = (int)(i * 2654435761u);
        b[i] = (int)(i * 40503u) - 70000;
    }
    check_transform<int>("transform IntBits", IntBits{5, 0x7fff0fffu}, a, b);
    CHECK_RT(cudaDeviceSynchronize());
    return check_done(NAME);
}
