// Arithmetic and math functions from PTX, against host references:
//  - IEEE operations CUDA rounds correctly (add, mul, div and sqrt with nvcc's default
//    -prec-div/-prec-sqrt, fma, __frcp_rn, __fsqrt_rn, __fdiv_rn) and exact functions (fminf,
//    fmaxf, fabsf, copysignf, floorf, ceilf, truncf, roundf, rintf, fmodf, ldexpf, __saturatef):
//    exactly, NaN for NaN, and with the sign of zero;
//  - library functions within the maximum ulp errors the CUDA Programming Guide documents
//    (expf 2, exp2f 2, logf 1, log2f 1, sinf 2, cosf 2, tanhf 2, rsqrtf 2, cbrtf 1, powf 4,
//    atan2f 3; exp 1, log 1, sin 2, cos 2 in double), measured against the correctly rounded result;
//  - the fast intrinsics within their documented bounds (__expf 2 + floor(|1.173 x|) ulp, __logf
//    2^-21.41 absolute on [0.5, 2] and 3 ulp elsewhere, __sinf/__cosf 2^-21.41 absolute on
//    [-pi, pi], __fdividef 2 ulp);
//  - float/double/integer conversions in every rounding mode, with PTX's saturation (out of range
//    clamps, NaN gives 0), exactly;
//  - __half arithmetic and conversions (cuda_fp16.h), exactly: each operation rounds once;
//  - integer intrinsics (__popc, __clz, __ffs, __brev, __byte_perm, funnel shifts, __mulhi,
//    __mul64hi, __mul24, __sad, __dp4a), exactly.
#include <cuda_fp16.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <vector>

#include "rt_verify.h"

static const char *NAME = "rt_math";

// ---- kernels ---------------------------------------------------------------------------------

#define F_EXACT 21
__global__ void rt_fexact(const float *x, const float *y, const int *k, int n, float *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    float a = x[i], b = y[i];
    float *o = out + i;
    o[0 * n] = a + b;
    o[1 * n] = a - b;
    o[2 * n] = a * b;
    o[3 * n] = a / b;
    o[4 * n] = sqrtf(a);
    o[5 * n] = fmaf(a, b, y[(i + 1) % n]);
    o[6 * n] = __frcp_rn(b);
    o[7 * n] = __fsqrt_rn(b);
    o[8 * n] = __fdiv_rn(b, a);
    o[9 * n] = fminf(a, b);
    o[10 * n] = fmaxf(a, b);
    o[11 * n] = fabsf(a);
    o[12 * n] = copysignf(a, b);
    o[13 * n] = floorf(a);
    o[14 * n] = ceilf(a);
    o[15 * n] = truncf(a);
    o[16 * n] = roundf(a);
    o[17 * n] = rintf(a);
    o[18 * n] = fmodf(a, b);
    o[19 * n] = ldexpf(a, k[i]);
    o[20 * n] = __saturatef(a);
}

#define F_ULP 11
__global__ void rt_fulp(const float *e, const float *l, const float *s, const float *p, const float *base, int n,
                        float *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    float *o = out + i;
    o[0 * n] = expf(e[i]);
    o[1 * n] = exp2f(e[i]);
    o[2 * n] = logf(l[i]);
    o[3 * n] = log2f(l[i]);
    o[4 * n] = sinf(s[i]);
    o[5 * n] = cosf(s[i]);
    o[6 * n] = tanhf(s[i] * 0.1f);
    o[7 * n] = rsqrtf(l[i]);
    o[8 * n] = cbrtf(s[i]);
    o[9 * n] = powf(base[i], p[i]);
    o[10 * n] = atan2f(s[i], p[i]);
}

#define D_OPS 9
__global__ void rt_dmath(const double *x, const double *y, const double *z, int n, double *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    double a = x[i], b = y[i];
    double *o = out + i;
    o[0 * n] = a + b;
    o[1 * n] = a * b;
    o[2 * n] = a / b;
    o[3 * n] = sqrt(fabs(a));
    o[4 * n] = fma(a, b, x[(i + 1) % n]);
    o[5 * n] = exp(b);
    o[6 * n] = log(fabs(a));
    o[7 * n] = sin(z[i]);
    o[8 * n] = cos(z[i]);
}

#define F_FAST 6
__global__ void rt_ffast(const float *e, const float *l, const float *t, const float *y, int n, float *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    float *o = out + i;
    o[0 * n] = __expf(e[i]);
    o[1 * n] = __logf(l[i]);
    o[2 * n] = __sinf(t[i]);
    o[3 * n] = __cosf(t[i]);
    o[4 * n] = __fdividef(e[i], y[i]);
    o[5 * n] = __frsqrt_rn(l[i]);
}

// Float to integer (12 words), integer to float (10 words), double to float (4 words).
#define C_F2I 12
#define C_I2F 10
#define C_D2F 4
__global__ void rt_conv(const float *f, const int *k, const long long *ll, const double *d, const double *df, int n,
                        int *oi, long long *oll, float *of)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    float a = f[i];
    int *o = oi + (size_t)i * C_F2I;
    o[0] = __float2int_rn(a);
    o[1] = __float2int_rz(a);
    o[2] = __float2int_ru(a);
    o[3] = __float2int_rd(a);
    o[4] = (int)__float2uint_rn(a);
    o[5] = (int)__float2uint_rz(a);
    o[6] = (int)__float2uint_ru(a);
    o[7] = (int)__float2uint_rd(a);
    o[8] = __double2int_rn((double)a * 3.0);
    o[9] = (int)__double2uint_rz(d[i]);
    o[10] = __float2int_rn(a * 0.5f); // ties at every odd integer
    o[11] = __double2int_rz(d[i]);
    oll[i * 2] = __float2ll_rn(a);
    oll[i * 2 + 1] = __double2ll_rz(d[i] * 1e9);

    float *g = of + (size_t)i * (C_I2F + C_D2F);
    g[0] = __int2float_rn(k[i]);
    g[1] = __int2float_rz(k[i]);
    g[2] = __int2float_ru(k[i]);
    g[3] = __int2float_rd(k[i]);
    g[4] = __uint2float_rn((unsigned)k[i]);
    g[5] = __uint2float_rz((unsigned)k[i]);
    g[6] = __ll2float_rn(ll[i]);
    g[7] = __ll2float_ru(ll[i]);
    g[8] = __ull2float_rd((unsigned long long)ll[i]);
    g[9] = (float)k[i]; // the default conversion rounds to nearest
    g[10] = __double2float_rn(df[i]);
    g[11] = __double2float_rz(df[i]);
    g[12] = __double2float_ru(df[i]);
    g[13] = __double2float_rd(df[i]);
}

// Half: 12 results per element as bits, plus __half2float of a as a float.
#define H_OPS 12
__global__ void rt_half(const __half *ha, const __half *hb, const __half *hc, const float *f, int n,
                        unsigned short *out, float *fa)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    __half a = ha[i], b = hb[i], c = hc[i];
    unsigned short *o = out + (size_t)i * H_OPS;
    o[0] = __half_as_ushort(__hadd(a, b));
    o[1] = __half_as_ushort(__hsub(a, b));
    o[2] = __half_as_ushort(__hmul(a, b));
    o[3] = __half_as_ushort(__hfma(a, b, c));
    o[4] = __half_as_ushort(__hadd_rn(a, c));
    o[5] = __half_as_ushort(__hmax(a, b));
    o[6] = __half_as_ushort(__hmin(a, b));
    o[7] = __half_as_ushort(__hneg(a));
    o[8] = __half_as_ushort(__float2half_rn(f[i]));
    // half2: (a, b) + (c, a) and (a, b) * (b, c), low halves first.
    __half2 p = __halves2half2(a, b), q = __halves2half2(c, a), r = __halves2half2(b, c);
    __half2 sum = __hadd2(p, q), prod = __hmul2(p, r);
    o[9] = __half_as_ushort(__high2half(sum));
    o[10] = __half_as_ushort(__low2half(prod));
    o[11] = (unsigned short)(__hlt(a, b) | __heq(a, c) << 1 | __hgt(b, c) << 2 | __hisnan(a) << 3);
    fa[i] = __half2float(a);
}

#define I_OPS 20
__global__ void rt_intr(const unsigned *ux, const unsigned *uy, const unsigned long long *lx, int n, unsigned *out,
                        unsigned long long *lout)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    unsigned u = ux[i], v = uy[i];
    unsigned long long w = lx[i];
    unsigned *o = out + (size_t)i * I_OPS;
    o[0] = __popc(u);
    o[1] = __clz(u);
    o[2] = __ffs(u);
    o[3] = __brev(u);
    o[4] = __byte_perm(u, v, (v >> 7) & 0x7777);
    o[5] = __funnelshift_l(u, v, i);
    o[6] = __funnelshift_r(u, v, i);
    o[7] = __funnelshift_lc(u, v, i % 40);
    o[8] = __funnelshift_rc(u, v, i % 40);
    o[9] = __umulhi(u, v);
    o[10] = (unsigned)__mulhi((int)u, (int)v);
    o[11] = (unsigned)__mul24((int)u, (int)v);
    o[12] = __umul24(u, v);
    o[13] = __sad((int)u, (int)v, i);
    o[14] = __usad(u, v, i);
    o[15] = (unsigned)__dp4a((int)u, (int)v, i - 1000);
    o[16] = __popcll(w);
    o[17] = __clzll(w);
    o[18] = __ffsll(w);
    o[19] = (unsigned)(min((int)u, (int)v) ^ max(u, v) ^ abs((int)u));
    unsigned long long *L = lout + (size_t)i * 3;
    L[0] = __brevll(w);
    L[1] = __umul64hi(w, (unsigned long long)u * v + 1);
    L[2] = (unsigned long long)__mul64hi((long long)w, (long long)v - (1ll << 31));
}

// ---- host references -------------------------------------------------------------------------

static unsigned lcg_state = 20240607u;
static unsigned lcg()
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state;
}

// A float with a random mantissa and sign and an exponent in [lo, hi].
static float random_float(int lo, int hi)
{
    int e = lo + (int)(lcg() % (unsigned)(hi - lo + 1));
    return ldexpf(1.0f + (float)(lcg() & 0x7fffff) / 8388608.0f, e) * ((lcg() & 1) ? -1.0f : 1.0f);
}

static float uniform(float lo, float hi)
{
    return lo + (hi - lo) * ((float)(lcg() >> 8) / 16777216.0f);
}

// Equal, or both NaN; with the sign of zero where sign_of_zero says so.
static int verify_same(const char *what, const float *got, const float *want, size_t n, bool sign_of_zero)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = (isnan(got[i]) && isnan(want[i])) ||
                  (got[i] == want[i] && (!sign_of_zero || signbit(got[i]) == signbit(want[i])));
        if (!ok) {
            if (wrong < RT_VERIFY_SHOWN) {
                unsigned g, w;
                memcpy(&g, &got[i], sizeof g);
                memcpy(&w, &want[i], sizeof w);
                fprintf(stderr, "FAIL %s[%zu] = %.9g (0x%08x), expected %.9g (0x%08x)\n", what, i, got[i], g, want[i],
                        w);
            }
            wrong++;
        }
    }
    if (wrong > RT_VERIFY_SHOWN) {
        fprintf(stderr, "FAIL %s: %d of %zu elements wrong\n", what, wrong, n);
    }
    return wrong;
}

static int verify_same(const char *what, const double *got, const double *want, size_t n)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        bool ok = (isnan(got[i]) && isnan(want[i])) || (got[i] == want[i] && signbit(got[i]) == signbit(want[i]));
        if (!ok) {
            if (wrong < RT_VERIFY_SHOWN) {
                fprintf(stderr, "FAIL %s[%zu] = %.17g, expected %.17g\n", what, i, got[i], want[i]);
            }
            wrong++;
        }
    }
    if (wrong > RT_VERIFY_SHOWN) {
        fprintf(stderr, "FAIL %s: %d of %zu elements wrong\n", what, wrong, n);
    }
    return wrong;
}

// PTX's float-to-integer conversion of an already rounded value: clamps, NaN gives 0.
template <typename I>
static I saturate(long double r, I lo, I hi)
{
    if (isnan(r)) {
        return 0;
    }
    if (r <= (long double)lo) {
        return lo;
    }
    if (r >= (long double)hi) {
        return hi;
    }
    return (I)r;
}

enum Mode { RN, RZ, RU, RD };

static long double round_int(long double x, Mode m)
{
    switch (m) {
    case RN: return nearbyintl(x); // the default rounding mode: ties to even
    case RZ: return truncl(x);
    case RU: return ceill(x);
    default: return floorl(x);
    }
}

// x (exact) rounded to float in mode m.
static float to_float(long double x, Mode m)
{
    float f = (float)x; // to nearest, ties to even
    if (isnan(x) || (long double)f == x) {
        return f;
    }
    switch (m) {
    case RN: return f;
    case RZ: return fabsl((long double)f) > fabsl(x) ? nextafterf(f, 0.0f) : f;
    case RU: return (long double)f < x ? nextafterf(f, INFINITY) : f;
    default: return (long double)f > x ? nextafterf(f, -INFINITY) : f;
    }
}

// IEEE binary16 from a double, round to nearest even (exact for any double).
static unsigned short to_half(double x)
{
    unsigned short sign = signbit(x) ? 0x8000 : 0;
    double a = fabs(x);
    if (isnan(x)) {
        return 0x7e00;
    }
    if (a >= 65520.0) { // halfway between 65504 and 2^16 rounds to even: infinity
        return sign | 0x7c00;
    }
    if (a < ldexp(1.0, -14)) {
        return sign | (unsigned short)nearbyint(ldexp(a, 24)); // 1024 is the smallest normal: still right
    }
    int e;
    frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
    e -= 1;       // a in [2^e, 2^(e+1))
    double q = nearbyint(ldexp(a, 10 - e));
    if (q == 2048.0) {
        q = 1024.0;
        e++;
    }
    if (e + 15 >= 31) {
        return sign | 0x7c00;
    }
    return sign | (unsigned short)((e + 15) << 10 | ((unsigned)q - 1024));
}

static double from_half(unsigned short h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp((double)(m | 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}

static bool half_nan(unsigned short h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

static unsigned short half_max(unsigned short a, unsigned short b, bool max)
{
    if (half_nan(a)) {
        return half_nan(b) ? 0x7fff : b;
    }
    if (half_nan(b)) {
        return a;
    }
    double x = from_half(a), y = from_half(b);
    if (x == y) {
        // +0 and -0: PTX max returns +0, min -0.
        return max ? (unsigned short)(a & b) : (unsigned short)(a | b);
    }
    return (max ? x > y : x < y) ? a : b;
}

static unsigned byte_perm(unsigned x, unsigned y, unsigned s)
{
    unsigned long long v = (unsigned long long)y << 32 | x;
    unsigned r = 0;
    for (int k = 0; k < 4; k++) {
        unsigned sel = (s >> (4 * k)) & 7;
        r |= (unsigned)((v >> (8 * sel)) & 0xff) << (8 * k);
    }
    return r;
}

static unsigned brev(unsigned x)
{
    unsigned r = 0;
    for (int k = 0; k < 32; k++) {
        r |= ((x >> k) & 1u) << (31 - k);
    }
    return r;
}

static unsigned long long brevll(unsigned long long x)
{
    return (unsigned long long)brev((unsigned)x) << 32 | brev((unsigned)(x >> 32));
}

static int sext24(unsigned x) { return (int)(x << 8) >> 8; }

// ---- the checks ------------------------------------------------------------------------------

template <typename T>
static T *upload(const std::vector<T> &h)
{
    T *d = nullptr;
    CHECK_RT(cudaMalloc(&d, h.size() * sizeof(T)));
    if (d) {
        CHECK_RT(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    return d;
}

// Outputs start as 0xa5 bytes rather than rt_verify.h's 0xff: here NaN is a result to check, so an
// unwritten element must not read as one.
template <typename T>
static T *output(size_t n)
{
    T *d = nullptr;
    CHECK_RT(cudaMalloc(&d, n * sizeof(T)));
    if (d) {
        CHECK_RT(cudaMemset(d, 0xa5, n * sizeof(T)));
    }
    return d;
}

template <typename T>
static std::vector<T> download(const T *d, size_t n)
{
    std::vector<T> h(n);
    if (d) {
        CHECK_RT(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    }
    return h;
}

static const float SPECIAL[] = {0.0f,      -0.0f,       1.0f,        -1.0f,       0.5f,      -0.5f,   1.5f,
                                2.5f,      -2.5f,       3.5f,        -3.5f,       0.49999997f, 1e-40f, -1e-40f,
                                FLT_MIN,   FLT_MAX,     -FLT_MAX,    INFINITY,    -INFINITY, NAN,     8388609.0f,
                                2147483520.0f, 2147483648.0f, -2147483648.0f, 4294967040.0f, 4294967296.0f, 1e10f,
                                -1e10f,    -0.7f,       0.7f,        16777217.0f, 1e-45f,    100.0f,  -100.0f};
static const int NSPECIAL = sizeof SPECIAL / sizeof SPECIAL[0];

static void exact_float()
{
    const int n = 2048;
    static_assert(NSPECIAL * NSPECIAL < 2048, "room for random values");
    std::vector<float> x(n), y(n);
    std::vector<int> k(n);
    for (int i = 0; i < n; i++) {
        // Every special against every special for the first NSPECIAL^2 elements, then random
        // values, a fifth of them anywhere in the float range (denormals included).
        if (i < NSPECIAL * NSPECIAL) {
            x[i] = SPECIAL[i / NSPECIAL];
            y[i] = SPECIAL[i % NSPECIAL];
        } else {
            x[i] = i % 5 == 0 ? random_float(-149, 127) : random_float(-20, 20);
            y[i] = random_float(-30, 30);
        }
        // CUDA's ldexpf scales in one multiply for |k| <= 100 (one rounding, as IEEE's); beyond that
        // in several, which can round a denormal result twice.
        k[i] = (int)(lcg() % 201) - 100;
    }
    float *dx = upload(x), *dy = upload(y), *dout = output<float>((size_t)n * F_EXACT);
    int *dk = upload(k);
    if (!dx || !dy || !dk || !dout) {
        return;
    }
    rt_fexact<<<(n + 127) / 128, 128>>>(dx, dy, dk, n, dout);
    CHECK_RT(cudaGetLastError());
    std::vector<float> out = download(dout, (size_t)n * F_EXACT);
    std::vector<float> want((size_t)n * F_EXACT);
    for (int i = 0; i < n; i++) {
        float a = x[i], b = y[i];
        float *w = &want[i];
        w[0 * n] = a + b;
        w[1 * n] = a - b;
        w[2 * n] = a * b;
        w[3 * n] = a / b;
        w[4 * n] = sqrtf(a);
        w[5 * n] = fmaf(a, b, y[(i + 1) % n]);
        w[6 * n] = 1.0f / b;
        w[7 * n] = sqrtf(b);
        w[8 * n] = b / a;
        w[9 * n] = fminf(a, b);
        w[10 * n] = fmaxf(a, b);
        w[11 * n] = fabsf(a);
        w[12 * n] = copysignf(a, b);
        w[13 * n] = floorf(a);
        w[14 * n] = ceilf(a);
        w[15 * n] = truncf(a);
        w[16 * n] = roundf(a);
        w[17 * n] = rintf(a);
        w[18 * n] = fmodf(a, b);
        w[19 * n] = ldexpf(a, k[i]);
        w[20 * n] = isnan(a) ? 0.0f : a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a;
    }
    static const char *names[F_EXACT] = {"a+b",       "a-b",       "a*b",    "a/b",       "sqrtf",  "fmaf",
                                         "__frcp_rn", "__fsqrt_rn", "__fdiv_rn", "fminf", "fmaxf",  "fabsf",
                                         "copysignf", "floorf",    "ceilf",  "truncf",    "roundf", "rintf",
                                         "fmodf",     "ldexpf",    "__saturatef"};
    for (int f = 0; f < F_EXACT; f++) {
        // min/max of +0 and -0 may return either, as may __saturatef(-0); fmodf's zeros are not
        // specified beyond their value in CUDA's documentation.
        bool zero_sign = f != 9 && f != 10 && f != 18 && f != 20;
        CHECK_EQ(0, verify_same(names[f], &out[(size_t)f * n], &want[(size_t)f * n], n, zero_sign));
    }
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dk);
    cudaFree(dout);
}

static void ulp_float()
{
    const int n = 2048;
    std::vector<float> e(n), l(n), s(n), p(n), base(n);
    for (int i = 0; i < n; i++) {
        // Results of powf stay normal (within 1e-18 .. 1e18): the documented bound is for those.
        base[i] = i < 3 ? 0.5f * (float)(i + 1) : uniform(0.001f, 1000.0f);
        e[i] = i == 0 ? 100.0f : i == 1 ? -120.0f : i == 2 ? 0.0f : uniform(-87.0f, 88.0f);
        l[i] = i == 0 ? 1.0f : i == 1 ? 1e-40f : i == 2 ? INFINITY : fabsf(random_float(-126, 126));
        s[i] = i == 0 ? 0.0f : i == 1 ? -0.0f : uniform(-60.0f, 60.0f);
        p[i] = i < 3 ? 2.0f : uniform(-6.0f, 6.0f);
    }
    float *de = upload(e), *dl = upload(l), *ds = upload(s), *dp = upload(p), *db = upload(base);
    float *dout = output<float>((size_t)n * F_ULP);
    if (!de || !dl || !ds || !dp || !db || !dout) {
        return;
    }
    rt_fulp<<<(n + 127) / 128, 128>>>(de, dl, ds, dp, db, n, dout);
    CHECK_RT(cudaGetLastError());
    std::vector<float> out = download(dout, (size_t)n * F_ULP);
    std::vector<double> want((size_t)n * F_ULP);
    for (int i = 0; i < n; i++) {
        double *w = &want[i];
        w[0 * n] = exp((double)e[i]);
        w[1 * n] = exp2((double)e[i]);
        w[2 * n] = log((double)l[i]);
        w[3 * n] = log2((double)l[i]);
        w[4 * n] = sin((double)s[i]);
        w[5 * n] = cos((double)s[i]);
        w[6 * n] = tanh((double)(s[i] * 0.1f));
        w[7 * n] = 1.0 / sqrt((double)l[i]);
        w[8 * n] = cbrt((double)s[i]);
        w[9 * n] = pow((double)base[i], (double)p[i]);
        w[10 * n] = atan2((double)s[i], (double)p[i]);
    }
    static const char *names[F_ULP] = {"expf", "exp2f", "logf", "log2f", "sinf", "cosf",
                                       "tanhf", "rsqrtf", "cbrtf", "powf", "atan2f"};
    static const int ulps[F_ULP] = {2, 2, 1, 1, 2, 2, 2, 2, 1, 4, 3};
    for (int f = 0; f < F_ULP; f++) {
        CHECK_EQ(0, verify_ulps(names[f], &out[(size_t)f * n], &want[(size_t)f * n], n, ulps[f]));
    }
    cudaFree(de);
    cudaFree(dl);
    cudaFree(ds);
    cudaFree(dp);
    cudaFree(db);
    cudaFree(dout);
}

static void double_math()
{
    const int n = 1024;
    const double pi = 3.14159265358979323846;
    std::vector<double> x(n), y(n), z(n);
    for (int i = 0; i < n; i++) {
        x[i] = i == 0 ? 0.0 : i == 1 ? -0.0 : i == 2 ? 4.9e-324 : (double)random_float(-40, 40) * (1.0 + i * 1e-12);
        y[i] = i == 0 ? 700.0 : i == 1 ? -745.5 : (double)uniform(-30.0f, 30.0f) + 1e-9 * i;
        // sin and cos on [-30, 30], including the doubles nearest to multiples of pi/2.
        z[i] = i < 38 ? (i - 19) * (pi / 2) : (double)uniform(-30.0f, 30.0f) + 1e-9 * i;
    }
    double *dx = upload(x), *dy = upload(y), *dz = upload(z), *dout = output<double>((size_t)n * D_OPS);
    if (!dx || !dy || !dz || !dout) {
        return;
    }
    rt_dmath<<<(n + 127) / 128, 128>>>(dx, dy, dz, n, dout);
    CHECK_RT(cudaGetLastError());
    std::vector<double> out = download(dout, (size_t)n * D_OPS);
    std::vector<double> exact((size_t)n * 5);
    std::vector<long double> want((size_t)n * 4);
    for (int i = 0; i < n; i++) {
        double a = x[i], b = y[i];
        exact[0 * n + i] = a + b;
        exact[1 * n + i] = a * b;
        exact[2 * n + i] = a / b;
        exact[3 * n + i] = sqrt(fabs(a));
        exact[4 * n + i] = fma(a, b, x[(i + 1) % n]);
        want[0 * n + i] = expl((long double)b);
        want[1 * n + i] = logl(fabsl((long double)a));
        want[2 * n + i] = sinl((long double)z[i]);
        want[3 * n + i] = cosl((long double)z[i]);
    }
    static const char *exact_names[5] = {"double a+b", "double a*b", "double a/b", "sqrt", "fma"};
    for (int f = 0; f < 5; f++) {
        CHECK_EQ(0, verify_same(exact_names[f], &out[(size_t)f * n], &exact[(size_t)f * n], n));
    }
    static const char *names[4] = {"exp", "log", "sin", "cos"};
    static const int ulps[4] = {1, 1, 2, 2};
    for (int f = 0; f < 4; f++) {
        CHECK_EQ(0, verify_ulps(names[f], &out[(size_t)(5 + f) * n], &want[(size_t)f * n], n, ulps[f]));
    }
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dz);
    cudaFree(dout);
}

static void fast_float()
{
    const int n = 2048;
    const double pi = 3.14159265358979323846;
    std::vector<float> e(n), l(n), t(n), y(n);
    for (int i = 0; i < n; i++) {
        e[i] = uniform(-20.0f, 20.0f);
        l[i] = i % 2 ? uniform(0.5f, 2.0f) : fabsf(random_float(-100, 100));
        t[i] = uniform(-(float)pi, (float)pi);
        y[i] = random_float(-100, 100);
    }
    float *de = upload(e), *dl = upload(l), *dt = upload(t), *dy = upload(y), *dout = output<float>((size_t)n * F_FAST);
    if (!de || !dl || !dt || !dy || !dout) {
        return;
    }
    rt_ffast<<<(n + 255) / 256, 256>>>(de, dl, dt, dy, n, dout);
    CHECK_RT(cudaGetLastError());
    std::vector<float> out = download(dout, (size_t)n * F_FAST);
    const double abs_err = pow(2.0, -21.41);
    int wrong[F_FAST] = {0};
    static const char *names[F_FAST] = {"__expf", "__logf", "__sinf", "__cosf", "__fdividef", "__frsqrt_rn"};
    for (int i = 0; i < n; i++) {
        double want[F_FAST] = {exp((double)e[i]), log((double)l[i]), sin((double)t[i]), cos((double)t[i]),
                               (double)e[i] / (double)y[i], (double)(1.0L / sqrtl((long double)l[i]))};
        for (int f = 0; f < F_FAST; f++) {
            float got = out[(size_t)f * n + i];
            bool ok;
            if ((f == 1 && l[i] >= 0.5f && l[i] <= 2.0f) || f == 2 || f == 3) {
                ok = fabs((double)got - want[f]) <= abs_err;
            } else {
                int max_ulps = f == 0 ? 2 + (int)floor(fabs(1.173 * e[i])) : f == 1 ? 3 : f == 4 ? 2 : 0;
                float w = (float)want[f];
                int64_t d = rt_ordinal(got) - rt_ordinal(w);
                ok = !isnan(got) && (d < 0 ? -d : d) <= max_ulps;
            }
            if (!ok && wrong[f]++ < RT_VERIFY_SHOWN) {
                fprintf(stderr, "FAIL %s[%d] = %.9g, expected %.9g (outside the documented error)\n", names[f], i, got,
                        want[f]);
            }
        }
    }
    for (int f = 0; f < F_FAST; f++) {
        CHECK_EQ(0, wrong[f]);
    }
    cudaFree(de);
    cudaFree(dl);
    cudaFree(dt);
    cudaFree(dy);
    cudaFree(dout);
}

static void conversions()
{
    const int n = 1024;
    std::vector<float> f(n);
    std::vector<int> k(n);
    std::vector<long long> ll(n);
    std::vector<double> d(n), df(n);
    for (int i = 0; i < n; i++) {
        // Double to float in the float range (overflow under directed rounding is left out), with
        // ties, denormal results and values that round to zero.
        static const double dfs[] = {0.0, -0.0, 1e-40, -3e-45, 7e-46, 3.4028234e38, -3.4028234663852886e38,
                                     1.0000000596046448, 1.0000001788139343, -2.5000001192092896, 1e-50};
        df[i] = i < 11 ? dfs[i] : (double)random_float(-140, 120) * (1.0 + (double)(lcg() & 0xffff) / 65536.0 * 1e-7);
        f[i] = i < NSPECIAL ? SPECIAL[i] : i % 3 ? uniform(-100.0f, 100.0f) : random_float(-5, 40);
        if (isnan(f[i])) {
            f[i] = -8388609.0f; // NaN to integer is not consistent across NVIDIA GPUs: not checked
        }
        if (i % 7 == 0 && i >= NSPECIAL) {
            f[i] = (float)((int)(lcg() % 2001) - 1000) + 0.5f; // ties
        }
        static const int ks[] = {0, 1, -1, INT_MAX, INT_MIN, 16777217, -16777219, 2147483584};
        static const long long lls[] = {0, -1, LLONG_MAX, LLONG_MIN};
        static const double ds[] = {0.0, -1e300, 1e300, 4294967295.5, -2147483648.9, 2147483647.5};
        k[i] = i < 8 ? ks[i] : (int)lcg();
        unsigned hi = lcg(), lo = lcg();
        ll[i] = i < 4 ? lls[i] : (long long)((unsigned long long)hi << 32 | lo) >> (i % 40);
        d[i] = i < 6 ? ds[i] : (double)(long long)(lcg() % 100000000) * (1.0 + 1e-7 * (i % 97)) - 5e7;
    }
    float *dfl = upload(f);
    int *dk = upload(k);
    long long *dll = upload(ll);
    double *dd = upload(d), *ddf = upload(df);
    int *doi = output<int>((size_t)n * C_F2I);
    long long *doll = output<long long>((size_t)n * 2);
    float *dof = output<float>((size_t)n * (C_I2F + C_D2F));
    if (!dfl || !dk || !dll || !dd || !ddf || !doi || !doll || !dof) {
        return;
    }
    rt_conv<<<(n + 127) / 128, 128>>>(dfl, dk, dll, dd, ddf, n, doi, doll, dof);
    CHECK_RT(cudaGetLastError());
    std::vector<int> oi = download(doi, (size_t)n * C_F2I), wi((size_t)n * C_F2I);
    std::vector<long long> oll = download(doll, (size_t)n * 2), wll((size_t)n * 2);
    std::vector<float> of = download(dof, (size_t)n * (C_I2F + C_D2F)), wf((size_t)n * (C_I2F + C_D2F));
    for (int i = 0; i < n; i++) {
        long double a = f[i];
        int *w = &wi[(size_t)i * C_F2I];
        for (int m = 0; m < 4; m++) {
            w[m] = saturate<int>(round_int(a, (Mode)m), INT_MIN, INT_MAX);
            w[4 + m] = (int)saturate<unsigned>(round_int(a, (Mode)m), 0u, UINT_MAX);
        }
        w[8] = saturate<int>(round_int((long double)((double)f[i] * 3.0), RN), INT_MIN, INT_MAX);
        w[9] = (int)saturate<unsigned>(round_int(d[i], RZ), 0u, UINT_MAX);
        w[10] = saturate<int>(round_int((long double)(f[i] * 0.5f), RN), INT_MIN, INT_MAX);
        w[11] = saturate<int>(round_int(d[i], RZ), INT_MIN, INT_MAX);
        wll[i * 2] = saturate<long long>(round_int(a, RN), LLONG_MIN, LLONG_MAX);
        wll[i * 2 + 1] = saturate<long long>(round_int((long double)(d[i] * 1e9), RZ), LLONG_MIN, LLONG_MAX);

        float *g = &wf[(size_t)i * (C_I2F + C_D2F)];
        for (int m = 0; m < 4; m++) {
            g[m] = to_float(k[i], (Mode)m);
        }
        g[4] = to_float((unsigned)k[i], RN);
        g[5] = to_float((unsigned)k[i], RZ);
        g[6] = to_float(ll[i], RN);
        g[7] = to_float(ll[i], RU);
        g[8] = to_float((unsigned long long)ll[i], RD);
        g[9] = to_float(k[i], RN);
        for (int m = 0; m < 4; m++) {
            g[10 + m] = to_float(df[i], (Mode)m);
        }
    }
    static const char *inames[C_F2I] = {"__float2int_rn", "__float2int_rz", "__float2int_ru", "__float2int_rd",
                                        "__float2uint_rn", "__float2uint_rz", "__float2uint_ru", "__float2uint_rd",
                                        "__double2int_rn(3a)", "__double2uint_rz", "__float2int_rn(a/2)",
                                        "__double2int_rz"};
    for (int c = 0; c < C_F2I; c++) {
        std::vector<int> got(n), want(n);
        for (int i = 0; i < n; i++) {
            got[i] = oi[(size_t)i * C_F2I + c];
            want[i] = wi[(size_t)i * C_F2I + c];
        }
        CHECK_EQ(0, verify_exact(inames[c], got.data(), want.data(), n));
    }
    CHECK_EQ(0, verify_exact("__float2ll_rn / __double2ll_rz (pairs)", oll.data(), wll.data(), oll.size()));
    static const char *fnames[C_I2F + C_D2F] = {
        "__int2float_rn", "__int2float_rz", "__int2float_ru", "__int2float_rd", "__uint2float_rn",
        "__uint2float_rz", "__ll2float_rn", "__ll2float_ru", "__ull2float_rd", "(float)int",
        "__double2float_rn", "__double2float_rz", "__double2float_ru", "__double2float_rd"};
    for (int c = 0; c < C_I2F + C_D2F; c++) {
        std::vector<float> got(n), want(n);
        for (int i = 0; i < n; i++) {
            got[i] = of[(size_t)i * (C_I2F + C_D2F) + c];
            want[i] = wf[(size_t)i * (C_I2F + C_D2F) + c];
        }
        CHECK_EQ(0, verify_same(fnames[c], got.data(), want.data(), n, true));
    }
    cudaFree(dfl);
    cudaFree(dk);
    cudaFree(dll);
    cudaFree(dd);
    cudaFree(ddf);
    cudaFree(doi);
    cudaFree(doll);
    cudaFree(dof);
}

// A half in a moderate range (exponents -6..6) so a*b+c is exact in double; some specials.
static unsigned short random_half(int i)
{
    static const unsigned short special[] = {0x0000, 0x8000, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x0001,
                                             0x8001, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x3555, 0x3800};
    if (i < (int)(sizeof special / sizeof special[0])) {
        return special[i];
    }
    unsigned r = lcg();
    unsigned e = 15 - 6 + (r >> 8) % 13;
    return (unsigned short)((r & 0x8000) | e << 10 | (r >> 20 & 0x3ff));
}

static void halves()
{
    const int n = 2048;
    std::vector<unsigned short> a(n), b(n), c(n);
    std::vector<float> f(n);
    for (int i = 0; i < n; i++) {
        // The first 14 x 14 elements pair every special with every special.
        a[i] = i < 14 * 14 ? random_half(i / 14) : random_half(1000 + i);
        b[i] = i < 14 * 14 ? random_half(i % 14) : random_half(1000 + i);
        c[i] = random_half(2000 + i);
        f[i] = i < NSPECIAL ? SPECIAL[i] : i % 2 ? random_float(-26, 17) : (float)from_half(random_half(i)) * (1.0f + 1.0f / 2048.0f);
    }
    __half *da = (__half *)upload(a), *db = (__half *)upload(b), *dc = (__half *)upload(c);
    float *dfin = upload(f), *dfa = output<float>(n);
    unsigned short *dout = output<unsigned short>((size_t)n * H_OPS);
    if (!da || !db || !dc || !dfin || !dfa || !dout) {
        return;
    }
    rt_half<<<(n + 127) / 128, 128>>>(da, db, dc, dfin, n, dout, dfa);
    CHECK_RT(cudaGetLastError());
    std::vector<unsigned short> out = download(dout, (size_t)n * H_OPS);
    std::vector<float> fa = download(dfa, n), wfa(n);
    static const char *names[H_OPS] = {"__hadd", "__hsub", "__hmul", "__hfma", "__hadd_rn", "__hmax",
                                       "__hmin", "__hneg", "__float2half_rn", "__hadd2 (high)", "__hmul2 (low)",
                                       "__hlt|__heq<<1|__hgt<<2|__hisnan<<3"};
    int wrong[H_OPS] = {0};
    for (int i = 0; i < n; i++) {
        double x = from_half(a[i]), y = from_half(b[i]), z = from_half(c[i]);
        unsigned short want[H_OPS] = {
            to_half(x + y), to_half(x - y), to_half(x * y), to_half(x * y + z), to_half(x + z),
            half_max(a[i], b[i], true), half_max(a[i], b[i], false), (unsigned short)(a[i] ^ 0x8000),
            to_half((double)f[i]), to_half(y + x), to_half(x * y),
            (unsigned short)((x < y) | (x == z) << 1 | (y > z) << 2 | isnan(x) << 3)};
        for (int k = 0; k < H_OPS; k++) {
            unsigned short got = out[(size_t)i * H_OPS + k];
            bool ok = got == want[k] || (k != H_OPS - 1 && half_nan(got) && half_nan(want[k]));
            if (!ok && wrong[k]++ < RT_VERIFY_SHOWN) {
                fprintf(stderr, "FAIL %s[%d] = 0x%04x, expected 0x%04x (a=0x%04x b=0x%04x c=0x%04x f=%.9g)\n",
                        names[k], i, got, want[k], a[i], b[i], c[i], f[i]);
            }
        }
        wfa[i] = (float)x;
    }
    for (int k = 0; k < H_OPS; k++) {
        CHECK_EQ(0, wrong[k]);
    }
    CHECK_EQ(0, verify_same("__half2float", fa.data(), wfa.data(), n, true));
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    cudaFree(dfin);
    cudaFree(dfa);
    cudaFree(dout);
}

static void integer_intrinsics()
{
    const int n = 2048;
    std::vector<unsigned> ux(n), uy(n);
    std::vector<unsigned long long> lx(n);
    for (int i = 0; i < n; i++) {
        static const unsigned xs[] = {0u, 1u, 0x80000000u, 0xffffffffu}, ys[] = {0u, 0xffffffffu, 0x80000000u, 7u};
        static const unsigned long long ws[] = {0ull, 1ull, ~0ull};
        ux[i] = i < 4 ? xs[i] : lcg() >> (i % 32);
        uy[i] = i < 4 ? ys[i] : lcg();
        unsigned hi = lcg(), lo = lcg();
        lx[i] = i < 3 ? ws[i] : ((unsigned long long)hi << 32 | lo) >> (i % 64);
    }
    unsigned *dux = upload(ux), *duy = upload(uy), *dout = output<unsigned>((size_t)n * I_OPS);
    unsigned long long *dlx = upload(lx), *dlout = output<unsigned long long>((size_t)n * 3);
    if (!dux || !duy || !dout || !dlx || !dlout) {
        return;
    }
    rt_intr<<<(n + 127) / 128, 128>>>(dux, duy, dlx, n, dout, dlout);
    CHECK_RT(cudaGetLastError());
    std::vector<unsigned> out = download(dout, (size_t)n * I_OPS), want((size_t)n * I_OPS);
    std::vector<unsigned long long> lout = download(dlout, (size_t)n * 3), lwant((size_t)n * 3);
    for (int i = 0; i < n; i++) {
        unsigned u = ux[i], v = uy[i];
        unsigned long long w = lx[i];
        unsigned long long hilo = (unsigned long long)v << 32 | u;
        unsigned *o = &want[(size_t)i * I_OPS];
        o[0] = (unsigned)__builtin_popcount(u);
        o[1] = u ? (unsigned)__builtin_clz(u) : 32u;
        o[2] = (unsigned)__builtin_ffs((int)u);
        o[3] = brev(u);
        o[4] = byte_perm(u, v, (v >> 7) & 0x7777);
        o[5] = (unsigned)((hilo << (i & 31)) >> 32);
        o[6] = (unsigned)(hilo >> (i & 31));
        int sc = i % 40 < 32 ? i % 40 : 32;
        o[7] = sc == 32 ? u : (unsigned)((hilo << sc) >> 32);
        o[8] = sc == 32 ? v : (unsigned)(hilo >> sc);
        o[9] = (unsigned)(((unsigned long long)u * v) >> 32);
        o[10] = (unsigned)(((long long)(int)u * (long long)(int)v) >> 32);
        o[11] = (unsigned)((long long)sext24(u) * sext24(v));
        o[12] = (u & 0xffffff) * (v & 0xffffff);
        long long diff = (long long)(int)u - (long long)(int)v;
        o[13] = (unsigned)(diff < 0 ? -diff : diff) + (unsigned)i;
        o[14] = (u > v ? u - v : v - u) + (unsigned)i;
        int dp = i - 1000;
        for (int b = 0; b < 4; b++) {
            dp += (int)(signed char)(u >> (8 * b)) * (int)(signed char)(v >> (8 * b));
        }
        o[15] = (unsigned)dp;
        o[16] = (unsigned)__builtin_popcountll(w);
        o[17] = w ? (unsigned)__builtin_clzll(w) : 64u;
        o[18] = (unsigned)__builtin_ffsll((long long)w);
        int iu = (int)u, iv = (int)v;
        o[19] = (unsigned)(iu < iv ? iu : iv) ^ (u > v ? u : v) ^ (unsigned)(iu < 0 ? -(long long)iu : iu);
        unsigned long long *L = &lwant[(size_t)i * 3];
        L[0] = brevll(w);
        L[1] = (unsigned long long)(((unsigned __int128)w * ((unsigned long long)u * v + 1)) >> 64);
        L[2] = (unsigned long long)(((__int128)(long long)w * (__int128)((long long)v - (1ll << 31))) >> 64);
    }
    static const char *names[I_OPS] = {"__popc", "__clz", "__ffs", "__brev", "__byte_perm", "__funnelshift_l",
                                       "__funnelshift_r", "__funnelshift_lc", "__funnelshift_rc", "__umulhi",
                                       "__mulhi", "__mul24", "__umul24", "__sad", "__usad", "__dp4a", "__popcll",
                                       "__clzll", "__ffsll", "min^max^abs"};
    for (int k = 0; k < I_OPS; k++) {
        std::vector<unsigned> got(n), exp(n);
        for (int i = 0; i < n; i++) {
            got[i] = out[(size_t)i * I_OPS + k];
            exp[i] = want[(size_t)i * I_OPS + k];
        }
        CHECK_EQ(0, verify_exact(names[k], got.data(), exp.data(), n));
    }
    CHECK_EQ(0, verify_exact("__brevll / __umul64hi / __mul64hi (triples)", lout.data(), lwant.data(), lout.size()));
    cudaFree(dux);
    cudaFree(duy);
    cudaFree(dout);
    cudaFree(dlx);
    cudaFree(dlout);
}

int main()
{
    int count = -1;
    REQUIRE_RT(NAME, cudaGetDeviceCount(&count));
    CHECK_EQ(1, count);
    exact_float();
    ulp_float();
    double_math();
    fast_float();
    conversions();
    halves();
    integer_intrinsics();
    CHECK_RT(cudaDeviceSynchronize());
    return check_done(NAME);
}
