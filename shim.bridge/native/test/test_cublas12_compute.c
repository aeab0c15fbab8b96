/*
 * Which cuBLAS 12.6 calls compute on the simulated GPU, checked against host references.
 *
 *   test_cublas12_compute DIR [steps]
 *
 * NVIDIA's libcudart.so.12, libcublasLt.so.12 and libcublas.so.12 are dlopened from DIR (or
 * $VGPU_CUDA12_DIR); no CUDA headers, the few prototypes are declared here. Each call runs on
 * fresh device buffers, is followed by cudaDeviceSynchronize (and cudaGetLastError, so an error
 * never leaks into the next call), and prints one line:
 *
 *   result <call> <shape>=correct
 *   result <call> <shape>=wrong <first mismatch>
 *   result <call> <shape>=failed <cudaError of the synchronization>
 *   result <call> <shape>=failed cublas <cublasStatus of the call>
 *
 * The inputs are small integers and halves, so every result but cublasSnrm2's is exact whatever
 * the order of summation (all partial sums are multiples of 0.5 well below 2^24, and below 2^11
 * where the output is fp16): those compare bit for bit. cublasSnrm2 compares against a double
 * reference to a relative 1e-6.
 *
 * With "steps", the program prints "step <call> <shape>" before each call, all earlier work
 * synchronized, and waits for a line on stdin (CublasComputeIT reads the service's launch log
 * there, so each call's kernels are told apart); "step end" follows the last call. Shapes hold no
 * '=' and no space: a line splits at its first '='.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *NAME = "test_cublas12_compute";

typedef int cudaError_t;
typedef int cublasStatus_t;
typedef struct cublas_context *cublasHandle_t;
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque *cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque *cublasLtMatrixLayout_t;

enum { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
enum { OP_N = 0, OP_T = 1 };
enum { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2 };
enum { CUBLAS_COMPUTE_32F = 68 };
enum { CUBLAS_GEMM_DEFAULT = -1 };
enum { CUBLASLT_MATMUL_DESC_TRANSA = 3, CUBLASLT_MATMUL_DESC_TRANSB = 4 };

static struct {
    cudaError_t (*Malloc)(void **, size_t);
    cudaError_t (*Free)(void *);
    cudaError_t (*Memcpy)(void *, const void *, size_t, int);
    cudaError_t (*DeviceSynchronize)(void);
    cudaError_t (*GetLastError)(void);
} rt;

static struct {
    cublasStatus_t (*Create)(cublasHandle_t *);
    cublasStatus_t (*Destroy)(cublasHandle_t);
    cublasStatus_t (*Saxpy)(cublasHandle_t, int, const float *, const float *, int, float *, int);
    cublasStatus_t (*Daxpy)(cublasHandle_t, int, const double *, const double *, int, double *, int);
    cublasStatus_t (*Sscal)(cublasHandle_t, int, const float *, float *, int);
    cublasStatus_t (*Sdot)(cublasHandle_t, int, const float *, int, const float *, int, float *);
    cublasStatus_t (*Ddot)(cublasHandle_t, int, const double *, int, const double *, int, double *);
    cublasStatus_t (*Snrm2)(cublasHandle_t, int, const float *, int, float *);
    cublasStatus_t (*Sasum)(cublasHandle_t, int, const float *, int, float *);
    cublasStatus_t (*Isamax)(cublasHandle_t, int, const float *, int, int *);
    cublasStatus_t (*Scopy)(cublasHandle_t, int, const float *, int, float *, int);
    cublasStatus_t (*Sswap)(cublasHandle_t, int, float *, int, float *, int);
    cublasStatus_t (*Sgemv)(cublasHandle_t, int, int, int, const float *, const float *, int, const float *, int,
                            const float *, float *, int);
    cublasStatus_t (*Dgemv)(cublasHandle_t, int, int, int, const double *, const double *, int, const double *, int,
                            const double *, double *, int);
    cublasStatus_t (*Sger)(cublasHandle_t, int, int, const float *, const float *, int, const float *, int, float *,
                           int);
    cublasStatus_t (*Sgemm)(cublasHandle_t, int, int, int, int, int, const float *, const float *, int, const float *,
                            int, const float *, float *, int);
    cublasStatus_t (*Dgemm)(cublasHandle_t, int, int, int, int, int, const double *, const double *, int,
                            const double *, int, const double *, double *, int);
    cublasStatus_t (*SgemmStridedBatched)(cublasHandle_t, int, int, int, int, int, const float *, const float *, int,
                                          long long, const float *, int, long long, const float *, float *, int,
                                          long long, int);
    cublasStatus_t (*SgemmEx)(cublasHandle_t, int, int, int, int, int, const float *, const void *, int, int,
                              const void *, int, int, const float *, void *, int, int);
    cublasStatus_t (*GemmEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *, int, int, const void *,
                             int, int, const void *, void *, int, int, int, int);
    cublasStatus_t (*Hgemm)(cublasHandle_t, int, int, int, int, int, const uint16_t *, const uint16_t *, int,
                            const uint16_t *, int, const uint16_t *, uint16_t *, int);
} blas;

static struct {
    cublasStatus_t (*Create)(cublasLtHandle_t *);
    cublasStatus_t (*Destroy)(cublasLtHandle_t);
    cublasStatus_t (*MatmulDescCreate)(cublasLtMatmulDesc_t *, int, int);
    cublasStatus_t (*MatmulDescDestroy)(cublasLtMatmulDesc_t);
    cublasStatus_t (*MatmulDescSetAttribute)(cublasLtMatmulDesc_t, int, const void *, size_t);
    cublasStatus_t (*MatrixLayoutCreate)(cublasLtMatrixLayout_t *, int, uint64_t, uint64_t, int64_t);
    cublasStatus_t (*MatrixLayoutDestroy)(cublasLtMatrixLayout_t);
    cublasStatus_t (*Matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *, const void *,
                             cublasLtMatrixLayout_t, const void *, cublasLtMatrixLayout_t, const void *, const void *,
                             cublasLtMatrixLayout_t, void *, cublasLtMatrixLayout_t, const void *, void *, size_t,
                             void *);
} lt;

static cublasHandle_t handle;
static cublasLtHandle_t lthandle;
static int stepping;
static int failures; /* setup errors and wrong results: the exit status */

static void *open_lib(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "%s: %s\n", NAME, dlerror());
        exit(2);
    }
    return h;
}

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (p == NULL) {
        fprintf(stderr, "%s: %s not found\n", NAME, name);
        exit(2);
    }
    return p;
}

#define BIND(lib, field, name) (*(void **)&(field) = sym(lib, name))

/* ---- the current call: its label, the step before it, and its verdict ------------------------ */

static char current[160];

static void begin(const char *call, const char *fmt, ...)
{
    char shape[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(shape, sizeof shape, fmt, ap);
    va_end(ap);
    snprintf(current, sizeof current, shape[0] != 0 ? "%s %s" : "%s", call, shape);
    if (!stepping) {
        return;
    }
    printf("step %s\n", current);
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) {
        fprintf(stderr, "%s: stdin closed at step %s\n", NAME, current);
        exit(2);
    }
}

/* Synchronizes after the call; prints the failure and returns non-zero if it failed. */
static int ran(cublasStatus_t status)
{
    cudaError_t sync = rt.DeviceSynchronize();
    rt.GetLastError();
    if (status != 0) {
        printf("result %s=failed cublas %d\n", current, status);
        return 1;
    }
    if (sync != 0) {
        printf("result %s=failed %d\n", current, sync);
        return 1;
    }
    return 0;
}

static void correct(void)
{
    printf("result %s=correct\n", current);
}

static void wrong(const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    printf("result %s=wrong %s\n", current, what);
    failures++;
}

/* Bit-exact comparisons (the inputs make the results exact), reporting the first mismatch. */
static void verdict_f(const char *what, const float *got, const float *ref, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (got[i] != ref[i]) {
            wrong("%s[%zu]=%.9g expected %.9g", what, i, got[i], ref[i]);
            return;
        }
    }
    correct();
}

static void verdict_d(const char *what, const double *got, const double *ref, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (got[i] != ref[i]) {
            wrong("%s[%zu]=%.17g expected %.17g", what, i, got[i], ref[i]);
            return;
        }
    }
    correct();
}

/* ---- device buffers ------------------------------------------------------------------------ */

static void *dev(const void *host, size_t bytes)
{
    void *d = NULL;
    cudaError_t e = rt.Malloc(&d, bytes);
    if (e != 0) {
        fprintf(stderr, "%s: cudaMalloc(%zu) = %d at %s\n", NAME, bytes, e, current);
        exit(2);
    }
    if (host != NULL && (e = rt.Memcpy(d, host, bytes, cudaMemcpyHostToDevice)) != 0) {
        fprintf(stderr, "%s: cudaMemcpy to the device = %d at %s\n", NAME, e, current);
        failures++;
    }
    return d;
}

static void fetch(void *host, const void *d, size_t bytes)
{
    cudaError_t e = rt.Memcpy(host, d, bytes, cudaMemcpyDeviceToHost);
    if (e != 0) {
        fprintf(stderr, "%s: cudaMemcpy from the device = %d at %s\n", NAME, e, current);
        failures++;
    }
}

static void release(void *d)
{
    rt.Free(d);
}

/* Small integers in [-3, 3], halves in [0, 2], and integers in [-1, 2]: exact in fp16 too. */
static float val_a(size_t i)
{
    return (float)((int)((i * 13 + 5) % 7) - 3);
}
static float val_b(size_t i)
{
    return (float)((i * 11 + 3) % 5) * 0.5f;
}
static float val_c(size_t i)
{
    return (float)((int)(i % 4) - 1);
}

static float *fill(size_t n, float (*f)(size_t))
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = f(i);
    }
    return p;
}

static double *widen(const float *f, size_t n)
{
    double *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = f[i];
    }
    return p;
}

/* IEEE half from a float that is exactly representable in it (small integers and halves). */
static uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    if ((x & 0x7fffffffu) == 0) {
        return (uint16_t)sign;
    }
    int exp = (int)((x >> 23) & 0xff) - 127 + 15;
    return (uint16_t)(sign | (uint32_t)exp << 10 | ((x >> 13) & 0x3ffu));
}

static float from_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    int exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0 && mant == 0) {
        x = sign;
    } else if (exp == 0) { /* subnormal: renormalise */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while ((mant & 0x400u) == 0);
        x = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    } else if (exp == 31) {
        x = sign | 0x7f800000u | mant << 13;
    } else {
        x = sign | (uint32_t)(exp - 15 + 127) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static uint16_t *halves(const float *f, size_t n)
{
    uint16_t *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = to_half(f[i]);
    }
    return p;
}

/* ---- level 1 -------------------------------------------------------------------------------- */

enum { N1 = 1037 };

static void level1(void)
{
    float *x = fill(N1, val_a), *y = fill(N1, val_b), *ref = malloc(N1 * sizeof *ref), *got = malloc(N1 * sizeof *got);
    float *dx, *dy;

    begin("cublasSaxpy_v2", "n:%d", N1);
    dx = dev(x, N1 * 4), dy = dev(y, N1 * 4);
    float alpha = 2.0f;
    if (!ran(blas.Saxpy(handle, N1, &alpha, dx, 1, dy, 1))) {
        for (int i = 0; i < N1; i++) {
            ref[i] = alpha * x[i] + y[i];
        }
        fetch(got, dy, N1 * 4);
        verdict_f("y", got, ref, N1);
    }
    release(dx), release(dy);

    begin("cublasSscal_v2", "n:%d", N1);
    dx = dev(x, N1 * 4);
    alpha = -1.5f;
    if (!ran(blas.Sscal(handle, N1, &alpha, dx, 1))) {
        for (int i = 0; i < N1; i++) {
            ref[i] = alpha * x[i];
        }
        fetch(got, dx, N1 * 4);
        verdict_f("x", got, ref, N1);
    }
    release(dx);

    begin("cublasSdot_v2", "n:%d", N1);
    dx = dev(x, N1 * 4), dy = dev(y, N1 * 4);
    float r = -1;
    if (!ran(blas.Sdot(handle, N1, dx, 1, dy, 1, &r))) {
        float e = 0;
        for (int i = 0; i < N1; i++) {
            e += x[i] * y[i];
        }
        verdict_f("dot", &r, &e, 1);
    }
    release(dx), release(dy);

    begin("cublasSnrm2_v2", "n:%d", N1);
    dx = dev(x, N1 * 4);
    r = -1;
    if (!ran(blas.Snrm2(handle, N1, dx, 1, &r))) {
        double e = 0;
        for (int i = 0; i < N1; i++) {
            e += (double)x[i] * x[i];
        }
        e = sqrt(e);
        if (fabs(r - e) <= 1e-6 * e) {
            correct();
        } else {
            wrong("nrm2=%.9g expected %.9g (relative 1e-6)", r, e);
        }
    }
    release(dx);

    begin("cublasSasum_v2", "n:%d", N1);
    dx = dev(x, N1 * 4);
    r = -1;
    if (!ran(blas.Sasum(handle, N1, dx, 1, &r))) {
        float e = 0;
        for (int i = 0; i < N1; i++) {
            e += fabsf(x[i]);
        }
        verdict_f("asum", &r, &e, 1);
    }
    release(dx);

    begin("cublasIsamax_v2", "n:%d", N1);
    /* One strict maximum late in the vector, and earlier ties at |3| that must not win. */
    float *xm = fill(N1, val_a);
    xm[N1 - 100] = -7.0f;
    dx = dev(xm, N1 * 4);
    int idx = -1;
    if (!ran(blas.Isamax(handle, N1, dx, 1, &idx))) {
        if (idx == N1 - 99) {
            correct();
        } else {
            wrong("index=%d expected %d", idx, N1 - 99);
        }
    }
    release(dx);
    free(xm);

    begin("cublasScopy_v2", "n:%d", N1);
    dx = dev(x, N1 * 4), dy = dev(y, N1 * 4);
    if (!ran(blas.Scopy(handle, N1, dx, 1, dy, 1))) {
        fetch(got, dy, N1 * 4);
        verdict_f("y", got, x, N1);
    }
    release(dx), release(dy);

    begin("cublasSswap_v2", "n:%d", N1);
    dx = dev(x, N1 * 4), dy = dev(y, N1 * 4);
    if (!ran(blas.Sswap(handle, N1, dx, 1, dy, 1))) {
        float *both = malloc(2 * N1 * sizeof *both), *want = malloc(2 * N1 * sizeof *want);
        fetch(both, dx, N1 * 4);
        fetch(both + N1, dy, N1 * 4);
        memcpy(want, y, N1 * 4);
        memcpy(want + N1, x, N1 * 4);
        verdict_f("xy", both, want, 2 * N1);
        free(both), free(want);
    }
    release(dx), release(dy);

    double *xd = widen(x, N1), *yd = widen(y, N1), *refd = malloc(N1 * sizeof *refd), *gotd = malloc(N1 * sizeof *gotd);
    double *dxd, *dyd;
    begin("cublasDaxpy_v2", "n:%d", N1);
    dxd = dev(xd, N1 * 8), dyd = dev(yd, N1 * 8);
    double alphad = -3.0;
    if (!ran(blas.Daxpy(handle, N1, &alphad, dxd, 1, dyd, 1))) {
        for (int i = 0; i < N1; i++) {
            refd[i] = alphad * xd[i] + yd[i];
        }
        fetch(gotd, dyd, N1 * 8);
        verdict_d("y", gotd, refd, N1);
    }
    release(dxd), release(dyd);

    begin("cublasDdot_v2", "n:%d", N1);
    dxd = dev(xd, N1 * 8), dyd = dev(yd, N1 * 8);
    double rd = -1;
    if (!ran(blas.Ddot(handle, N1, dxd, 1, dyd, 1, &rd))) {
        double e = 0;
        for (int i = 0; i < N1; i++) {
            e += xd[i] * yd[i];
        }
        verdict_d("dot", &rd, &e, 1);
    }
    release(dxd), release(dyd);

    free(x), free(y), free(ref), free(got), free(xd), free(yd), free(refd), free(gotd);
}

/* ---- level 2 -------------------------------------------------------------------------------- */

enum { M2 = 37, N2 = 29 };

/* y = alpha op(A) x + beta y with A m x n; N: alpha 2, beta -1 (y read), T: alpha 1, beta 0. */
static void gemv(int dbl, int t, int m, int n)
{
    int rows = t ? n : m, cols = t ? m : n; /* y has `rows` elements, x `cols` */
    float *a = fill((size_t)m * n, val_a), *x = fill(cols, val_b), *y0 = fill(rows, val_c);
    float *ref = malloc(rows * sizeof *ref);
    float alpha = t ? 1.0f : 2.0f, beta = t ? 0.0f : -1.0f;
    for (int i = 0; i < rows; i++) {
        float s = 0;
        for (int j = 0; j < cols; j++) {
            s += (t ? a[j + (size_t)i * m] : a[i + (size_t)j * m]) * x[j];
        }
        ref[i] = alpha * s + beta * y0[i];
    }
    begin(dbl ? "cublasDgemv_v2" : "cublasSgemv_v2", "%s:%dx%d", t ? "T" : "N", m, n);
    if (!dbl) {
        float *da = dev(a, sizeof(float) * m * n), *dx = dev(x, sizeof(float) * cols), *dy = dev(y0, sizeof(float) * rows);
        if (!ran(blas.Sgemv(handle, t ? OP_T : OP_N, m, n, &alpha, da, m, dx, 1, &beta, dy, 1))) {
            float *got = malloc(rows * sizeof *got);
            fetch(got, dy, sizeof(float) * rows);
            verdict_f("y", got, ref, rows);
            free(got);
        }
        release(da), release(dx), release(dy);
    } else {
        double *ad = widen(a, (size_t)m * n), *xd = widen(x, cols), *yd = widen(y0, rows), *refd = widen(ref, rows);
        double alphad = alpha, betad = beta;
        double *da = dev(ad, sizeof(double) * m * n), *dx = dev(xd, sizeof(double) * cols), *dy = dev(yd, sizeof(double) * rows);
        if (!ran(blas.Dgemv(handle, t ? OP_T : OP_N, m, n, &alphad, da, m, dx, 1, &betad, dy, 1))) {
            double *got = malloc(rows * sizeof *got);
            fetch(got, dy, sizeof(double) * rows);
            verdict_d("y", got, refd, rows); /* exact in float, so exact in double */
            free(got);
        }
        release(da), release(dx), release(dy);
        free(ad), free(xd), free(yd), free(refd);
    }
    free(a), free(x), free(y0), free(ref);
}

static void level2(void)
{
    gemv(0, 0, M2, N2);
    gemv(0, 1, M2, N2);
    gemv(0, 0, 256, 256);
    gemv(0, 1, 256, 256);

    begin("cublasSger_v2", "%dx%d", M2, N2);
    {
        float *a = fill(M2 * N2, val_a), *x = fill(M2, val_b), *y = fill(N2, val_c);
        float ref[M2 * N2], got[M2 * N2];
        float alpha = 2.0f;
        float *da = dev(a, sizeof(float) * M2 * N2), *dx = dev(x, sizeof(float) * M2), *dy = dev(y, sizeof(float) * N2);
        if (!ran(blas.Sger(handle, M2, N2, &alpha, dx, 1, dy, 1, da, M2))) {
            for (int j = 0; j < N2; j++) {
                for (int i = 0; i < M2; i++) {
                    ref[i + j * M2] = a[i + j * M2] + alpha * x[i] * y[j];
                }
            }
            fetch(got, da, sizeof(float) * M2 * N2);
            verdict_f("A", got, ref, M2 * N2);
        }
        release(da), release(dx), release(dy);
        free(a), free(x), free(y);
    }

    gemv(1, 0, M2, N2);
    gemv(1, 1, M2, N2);
}

/* ---- level 3 -------------------------------------------------------------------------------- */

/* One GEMM problem: op(A) is m x k, op(B) k x n, C m x n, all column-major with tight leading dimensions. */
struct gemm {
    int ta, tb, m, n, k;
    float alpha, beta;
    int batch;
    float *a, *b, *c; /* host inputs (c: C before the call) */
    size_t na, nb, nc;
    int lda, ldb, ldc;
};

static struct gemm problem(int ta, int tb, int m, int n, int k, float alpha, float beta, int batch)
{
    struct gemm g = {ta, tb, m, n, k, alpha, beta, batch, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0};
    g.lda = ta ? k : m;
    g.ldb = tb ? n : k;
    g.ldc = m;
    g.na = (size_t)m * k;
    g.nb = (size_t)k * n;
    g.nc = (size_t)m * n;
    g.a = fill(g.na * batch, val_a);
    g.b = fill(g.nb * batch, val_b);
    g.c = fill(g.nc * batch, val_c);
    return g;
}

static void drop(struct gemm *g)
{
    free(g->a), free(g->b), free(g->c);
}

static float *reference(const struct gemm *g)
{
    float *r = malloc(g->nc * g->batch * sizeof *r);
    for (int p = 0; p < g->batch; p++) {
        const float *a = g->a + p * g->na, *b = g->b + p * g->nb, *c = g->c + p * g->nc;
        for (int j = 0; j < g->n; j++) {
            for (int i = 0; i < g->m; i++) {
                float s = 0;
                for (int l = 0; l < g->k; l++) {
                    float av = g->ta ? a[l + i * g->lda] : a[i + l * g->lda];
                    float bv = g->tb ? b[j + l * g->ldb] : b[l + j * g->ldb];
                    s += av * bv;
                }
                r[p * g->nc + i + j * g->ldc] = g->alpha * s + g->beta * c[i + j * g->ldc];
            }
        }
    }
    return r;
}

static const char *ops(const struct gemm *g)
{
    static const char *names[] = {"NN", "NT", "TN", "TT"};
    return names[g->ta * 2 + g->tb];
}

#define GEMM_SHAPE "%s:%dx%dx%d%s"
#define GEMM_ARGS(g) ops(&g), g.m, g.n, g.k, (g.beta != 0 ? ",beta" : "")

static void check_gemm_f(const struct gemm *g, const float *dc)
{
    float *got = malloc(g->nc * g->batch * sizeof *got), *ref = reference(g);
    fetch(got, dc, g->nc * g->batch * sizeof *got);
    verdict_f("C", got, ref, g->nc * g->batch);
    free(got), free(ref);
}

static void sgemm(int ta, int tb, int m, int n, int k, float alpha, float beta)
{
    struct gemm g = problem(ta, tb, m, n, k, alpha, beta, 1);
    begin("cublasSgemm_v2", GEMM_SHAPE, GEMM_ARGS(g));
    float *da = dev(g.a, g.na * 4), *db = dev(g.b, g.nb * 4), *dc = dev(g.c, g.nc * 4);
    if (!ran(blas.Sgemm(handle, ta, tb, m, n, k, &g.alpha, da, g.lda, db, g.ldb, &g.beta, dc, g.ldc))) {
        check_gemm_f(&g, dc);
    }
    release(da), release(db), release(dc);
    drop(&g);
}

static void dgemm(int ta, int tb, int m, int n, int k, float alpha, float beta)
{
    struct gemm g = problem(ta, tb, m, n, k, alpha, beta, 1);
    begin("cublasDgemm_v2", GEMM_SHAPE, GEMM_ARGS(g));
    double *ad = widen(g.a, g.na), *bd = widen(g.b, g.nb), *cd = widen(g.c, g.nc);
    double *da = dev(ad, g.na * 8), *db = dev(bd, g.nb * 8), *dc = dev(cd, g.nc * 8);
    double alphad = alpha, betad = beta;
    if (!ran(blas.Dgemm(handle, ta, tb, m, n, k, &alphad, da, g.lda, db, g.ldb, &betad, dc, g.ldc))) {
        float *rf = reference(&g); /* exact in float, so exact in double */
        double *ref = widen(rf, g.nc), *got = malloc(g.nc * sizeof *got);
        fetch(got, dc, g.nc * 8);
        verdict_d("C", got, ref, g.nc);
        free(rf), free(ref), free(got);
    }
    release(da), release(db), release(dc);
    free(ad), free(bd), free(cd);
    drop(&g);
}

static void sgemm_strided_batched(int m, int n, int k, int batch)
{
    struct gemm g = problem(OP_N, OP_N, m, n, k, 1.0f, 0.0f, batch);
    begin("cublasSgemmStridedBatched", "NN:%dx%dx%d,batch:%d", m, n, k, batch);
    float *da = dev(g.a, g.na * batch * 4), *db = dev(g.b, g.nb * batch * 4), *dc = dev(g.c, g.nc * batch * 4);
    if (!ran(blas.SgemmStridedBatched(handle, OP_N, OP_N, m, n, k, &g.alpha, da, g.lda, (long long)g.na, db, g.ldb,
                                      (long long)g.nb, &g.beta, dc, g.ldc, (long long)g.nc, batch))) {
        check_gemm_f(&g, dc);
    }
    release(da), release(db), release(dc);
    drop(&g);
}

/* fp16 A and B; C fp32 (GemmEx with fp32 compute, SgemmEx) or fp16 (GemmEx, Hgemm). */
enum { HALF_GEMMEX, HALF_GEMMEX_HOUT, HALF_SGEMMEX, HALF_HGEMM };

static void half_gemm(int which, int m, int n, int k)
{
    static const char *calls[] = {"cublasGemmEx", "cublasGemmEx", "cublasSgemmEx", "cublasHgemm"};
    struct gemm g = problem(OP_N, OP_N, m, n, k, 1.0f, 0.0f, 1);
    int half_out = which == HALF_GEMMEX_HOUT || which == HALF_HGEMM;
    begin(calls[which], "NN:%dx%dx%d,%s", m, n, k,
          which == HALF_HGEMM ? "f16" : half_out ? "f16->f16,f32compute" : "f16->f32,f32compute");
    uint16_t *ah = halves(g.a, g.na), *bh = halves(g.b, g.nb), *ch = halves(g.c, g.nc);
    void *da = dev(ah, g.na * 2), *db = dev(bh, g.nb * 2);
    void *dc = half_out ? dev(ch, g.nc * 2) : dev(g.c, g.nc * 4);
    int ctype = half_out ? CUDA_R_16F : CUDA_R_32F;
    cublasStatus_t st;
    if (which == HALF_SGEMMEX) {
        st = blas.SgemmEx(handle, OP_N, OP_N, m, n, k, &g.alpha, da, CUDA_R_16F, g.lda, db, CUDA_R_16F, g.ldb, &g.beta,
                          dc, ctype, g.ldc);
    } else if (which == HALF_HGEMM) {
        uint16_t alphah = to_half(g.alpha), betah = to_half(g.beta);
        st = blas.Hgemm(handle, OP_N, OP_N, m, n, k, &alphah, da, g.lda, db, g.ldb, &betah, dc, g.ldc);
    } else {
        st = blas.GemmEx(handle, OP_N, OP_N, m, n, k, &g.alpha, da, CUDA_R_16F, g.lda, db, CUDA_R_16F, g.ldb, &g.beta,
                         dc, ctype, g.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    if (!ran(st)) {
        if (half_out) {
            uint16_t *goth = malloc(g.nc * 2);
            float *got = malloc(g.nc * 4), *ref = reference(&g);
            fetch(goth, dc, g.nc * 2);
            for (size_t i = 0; i < g.nc; i++) {
                got[i] = from_half(goth[i]);
            }
            verdict_f("C", got, ref, g.nc);
            free(goth), free(got), free(ref);
        } else {
            check_gemm_f(&g, dc);
        }
    }
    release(da), release(db), release(dc);
    free(ah), free(bh), free(ch);
    drop(&g);
}

/* cublasLtMatmul, fp32, with no algorithm given (cuBLASLt runs its heuristic) and no workspace. */
static void lt_matmul(int ta, int tb, int m, int n, int k)
{
    struct gemm g = problem(ta, tb, m, n, k, 1.0f, 0.0f, 1);
    begin("cublasLtMatmul", "%s:%dx%dx%d,f32", ops(&g), m, n, k);
    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    int st = lt.MatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st == 0) {
        st = lt.MatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    }
    if (st == 0) {
        st = lt.MatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    }
    if (st == 0) {
        st = lt.MatrixLayoutCreate(&la, CUDA_R_32F, ta ? k : m, ta ? m : k, g.lda);
    }
    if (st == 0) {
        st = lt.MatrixLayoutCreate(&lb, CUDA_R_32F, tb ? n : k, tb ? k : n, g.ldb);
    }
    if (st == 0) {
        st = lt.MatrixLayoutCreate(&lc, CUDA_R_32F, m, n, g.ldc);
    }
    if (st != 0) {
        fprintf(stderr, "%s: cublasLt descriptor set-up returned %d\n", NAME, st);
        failures++;
    }
    float *da = dev(g.a, g.na * 4), *db = dev(g.b, g.nb * 4), *dc = dev(g.c, g.nc * 4);
    if (st == 0 &&
        !ran(lt.Matmul(lthandle, desc, &g.alpha, da, la, db, lb, &g.beta, dc, lc, dc, lc, NULL, NULL, 0, NULL))) {
        check_gemm_f(&g, dc);
    }
    release(da), release(db), release(dc);
    if (la != NULL) {
        lt.MatrixLayoutDestroy(la);
    }
    if (lb != NULL) {
        lt.MatrixLayoutDestroy(lb);
    }
    if (lc != NULL) {
        lt.MatrixLayoutDestroy(lc);
    }
    if (desc != NULL) {
        lt.MatmulDescDestroy(desc);
    }
    drop(&g);
}

static void level3(void)
{
    static const int nn[][3] = {{1, 1, 1}, {7, 5, 3}, {16, 16, 16}, {33, 17, 9}, {64, 64, 64}, {128, 8, 256}, {128, 128, 128}};
    for (size_t i = 0; i < sizeof nn / sizeof nn[0]; i++) {
        sgemm(OP_N, OP_N, nn[i][0], nn[i][1], nn[i][2], 1.0f, 0.0f);
    }
    sgemm(OP_T, OP_N, 33, 17, 9, 1.0f, 0.0f);
    sgemm(OP_N, OP_T, 33, 17, 9, 1.0f, 0.0f);
    sgemm(OP_T, OP_T, 7, 5, 3, 1.0f, 0.0f);
    sgemm(OP_N, OP_N, 33, 17, 9, 2.0f, -1.0f);
    dgemm(OP_N, OP_N, 7, 5, 3, 1.0f, 0.0f);
    dgemm(OP_N, OP_N, 33, 17, 9, 1.0f, 0.0f);
    dgemm(OP_N, OP_N, 64, 64, 64, 1.0f, 0.0f);
    dgemm(OP_T, OP_N, 33, 17, 9, 2.0f, -1.0f);
    sgemm_strided_batched(16, 16, 16, 3);
    sgemm_strided_batched(7, 5, 3, 4);
    half_gemm(HALF_GEMMEX, 7, 5, 3);
    half_gemm(HALF_GEMMEX, 64, 64, 64);
    half_gemm(HALF_GEMMEX_HOUT, 16, 16, 16);
    half_gemm(HALF_SGEMMEX, 33, 17, 9);
    half_gemm(HALF_SGEMMEX, 64, 64, 64);
    half_gemm(HALF_HGEMM, 16, 16, 16);
    lt_matmul(OP_N, OP_N, 16, 16, 16);
    lt_matmul(OP_N, OP_N, 64, 64, 64);
    lt_matmul(OP_T, OP_N, 33, 17, 9);
}

int main(int argc, char **argv)
{
    /* Line by line, so what was printed survives a crash inside the libraries. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argc > 1 ? argv[1] : getenv("VGPU_CUDA12_DIR");
    if (dir == NULL) {
        fprintf(stderr, "usage: %s DIR-WITH-libcublas.so.12 [steps] (or set VGPU_CUDA12_DIR)\n", argv[0]);
        return 2;
    }
    stepping = argc > 2 && strcmp(argv[2], "steps") == 0;
    void *cudart = open_lib(dir, "libcudart.so.12");
    void *cublaslt = open_lib(dir, "libcublasLt.so.12");
    void *cublas = open_lib(dir, "libcublas.so.12");
    BIND(cudart, rt.Malloc, "cudaMalloc");
    BIND(cudart, rt.Free, "cudaFree");
    BIND(cudart, rt.Memcpy, "cudaMemcpy");
    BIND(cudart, rt.DeviceSynchronize, "cudaDeviceSynchronize");
    BIND(cudart, rt.GetLastError, "cudaGetLastError");
    BIND(cublas, blas.Create, "cublasCreate_v2");
    BIND(cublas, blas.Destroy, "cublasDestroy_v2");
    BIND(cublas, blas.Saxpy, "cublasSaxpy_v2");
    BIND(cublas, blas.Daxpy, "cublasDaxpy_v2");
    BIND(cublas, blas.Sscal, "cublasSscal_v2");
    BIND(cublas, blas.Sdot, "cublasSdot_v2");
    BIND(cublas, blas.Ddot, "cublasDdot_v2");
    BIND(cublas, blas.Snrm2, "cublasSnrm2_v2");
    BIND(cublas, blas.Sasum, "cublasSasum_v2");
    BIND(cublas, blas.Isamax, "cublasIsamax_v2");
    BIND(cublas, blas.Scopy, "cublasScopy_v2");
    BIND(cublas, blas.Sswap, "cublasSswap_v2");
    BIND(cublas, blas.Sgemv, "cublasSgemv_v2");
    BIND(cublas, blas.Dgemv, "cublasDgemv_v2");
    BIND(cublas, blas.Sger, "cublasSger_v2");
    BIND(cublas, blas.Sgemm, "cublasSgemm_v2");
    BIND(cublas, blas.Dgemm, "cublasDgemm_v2");
    BIND(cublas, blas.SgemmStridedBatched, "cublasSgemmStridedBatched");
    BIND(cublas, blas.SgemmEx, "cublasSgemmEx");
    BIND(cublas, blas.GemmEx, "cublasGemmEx");
    BIND(cublas, blas.Hgemm, "cublasHgemm");
    BIND(cublaslt, lt.Create, "cublasLtCreate");
    BIND(cublaslt, lt.Destroy, "cublasLtDestroy");
    BIND(cublaslt, lt.MatmulDescCreate, "cublasLtMatmulDescCreate");
    BIND(cublaslt, lt.MatmulDescDestroy, "cublasLtMatmulDescDestroy");
    BIND(cublaslt, lt.MatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
    BIND(cublaslt, lt.MatrixLayoutCreate, "cublasLtMatrixLayoutCreate");
    BIND(cublaslt, lt.MatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy");
    BIND(cublaslt, lt.Matmul, "cublasLtMatmul");

    int st = blas.Create(&handle);
    int stlt = lt.Create(&lthandle);
    printf("status cublasCreate_v2=%d\nstatus cublasLtCreate=%d\n", st, stlt);
    if (st != 0 || stlt != 0) {
        return 1;
    }
    level1();
    level2();
    level3();
    begin("end", "%s", "");
    st = blas.Destroy(handle);
    stlt = lt.Destroy(lthandle);
    printf("status cublasDestroy_v2=%d\nstatus cublasLtDestroy=%d\n", st, stlt);
    printf("%s: %d wrong or broken\n", NAME, failures);
    return failures == 0 && st == 0 && stlt == 0 ? 0 : 1;
}
