/*
 * NVIDIA's cuBLAS 12.6 on our libcuda.so.1, driven through dlopen (no CUDA 12 headers or nvcc):
 * libcublas.so.12, libcublasLt.so.12 and libcudart.so.12 are taken from the directory given as
 * the first argument (or $VGPU_CUDA12_DIR). cublasCreate_v2, cublasSgemm_v2 (64x64),
 * cublasGemmEx (fp16 inputs, fp32 output and compute), cudaDeviceSynchronize and
 * cublasDestroy_v2; each status is printed as "status <call>=<value>". Every call must return 0
 * except the synchronization after each GEMM, which reports whether the GEMM's kernel ran: its
 * result is then checked against a host reference and printed as "result <call>=correct", "=wrong
 * ..." or "=failed <status>" (the mock executes PTX only, and the kernels cuBLAS picks for these
 * GEMMs on an H100 are SASS only; the Java test asserts which).
 *
 * With "steps" after the directory, the program stops before cublasSgemm_v2, before cublasGemmEx,
 * before cublasDestroy_v2 and after it ("step <name>" on stdout) until it reads a line on stdin,
 * with all earlier work synchronized: RuntimeIT reads the service's launch log there, so each
 * call's launches are told apart.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *NAME = "test_cublas12";

/*
 * cuBLASLt looks driver entry points up by name with dlsym, past cuGetProcAddress. This program
 * defines dlsym itself (linked -rdynamic, so the libraries it loads bind to this one): with
 * VGPU_TEST_DLSYM set it prints each "cu" name asked for, and whether it was found, then
 * forwards to the C library's dlsym. RuntimeIT lists the ones that are NOT_SUPPORTED stubs.
 */
void *dlsym(void *restrict handle, const char *restrict name)
{
    static void *(*real)(void *, const char *);
    if (real == NULL) {
        void *next = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
        if (next == NULL)
            next = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
        if (next == NULL)
            abort();
        memcpy(&real, &next, sizeof real);
    }
    void *found = real(handle, name);
    if (strncmp(name, "cu", 2) == 0 && getenv("VGPU_TEST_DLSYM") != NULL)
        fprintf(stderr, "dlsym %s %s\n", name, found != NULL ? "found" : "missing");
    return found;
}
static int stepping;

static void step(const char *name)
{
    if (!stepping) {
        return;
    }
    printf("step %s\n", name);
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) {
        fprintf(stderr, "%s: stdin closed at step %s\n", NAME, name);
        exit(2);
    }
}

typedef int cudaError_t;
typedef int cublasStatus_t;
typedef struct cublas_context *cublasHandle_t;

enum { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
enum { CUBLAS_OP_N = 0 };
enum { CUDA_R_32F = 0, CUDA_R_16F = 2 };
enum { CUBLAS_COMPUTE_32F = 68 };
enum { CUBLAS_GEMM_DEFAULT = -1 };

static struct {
    cudaError_t (*Malloc)(void **, size_t);
    cudaError_t (*Free)(void *);
    cudaError_t (*Memcpy)(void *, const void *, size_t, int);
    cudaError_t (*DeviceSynchronize)(void);
    const char *(*GetErrorName)(cudaError_t);
} rt;

static struct {
    cublasStatus_t (*Create)(cublasHandle_t *);
    cublasStatus_t (*Destroy)(cublasHandle_t);
    cublasStatus_t (*GetVersion)(cublasHandle_t, int *);
    cublasStatus_t (*Sgemm)(cublasHandle_t, int, int, int, int, int, const float *, const float *, int, const float *,
                            int, const float *, float *, int);
    cublasStatus_t (*GemmEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *, int, int, const void *,
                             int, int, const void *, void *, int, int, int, int);
    const char *(*GetStatusName)(cublasStatus_t);
} blas;

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

/* Prints the status line the Java test reads, and counts a non-zero status as a failure. */
static int report(const char *call, int status, const char *status_name)
{
    printf("status %s=%d\n", call, status);
    check_count++;
    if (status != 0) {
        check_failures++;
        fprintf(stderr, "FAIL %s returned %d %s\n", call, status, status_name ? status_name : "");
    }
    return status;
}

#define RT(call, expr)                                                                                   \
    do {                                                                                                 \
        cudaError_t e_ = (expr);                                                                         \
        report(call, e_, rt.GetErrorName(e_));                                                           \
    } while (0)
#define BLAS(call, expr)                                                                                 \
    do {                                                                                                 \
        cublasStatus_t s_ = (expr);                                                                      \
        report(call, s_, blas.GetStatusName(s_));                                                        \
    } while (0)

/* The status of a synchronization that tells whether a GEMM ran; not a failure by itself. */
static int sync_status(const char *call, int status)
{
    printf("status %s=%d\n", call, status);
    return status;
}

/* Checks C = A * B (column-major, n x n) against a host reference, when the GEMM ran. */
static void gemm_result(const char *call, int status, const float *c, const float *a, const float *b, int n)
{
    if (status != 0) {
        printf("result %s=failed %d\n", call, status);
        return;
    }
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) {
            float ref = 0;
            for (int k = 0; k < n; k++) {
                ref += a[k * n + i] * b[j * n + k];
            }
            float got = c[j * n + i];
            if (got != ref) {
                printf("result %s=wrong C[%d][%d]=%g expected %g\n", call, i, j, got, ref);
                return;
            }
        }
    }
    printf("result %s=correct\n", call);
}

/* IEEE half from a float that is exactly representable (small integers and halves here). */
static uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    int exp = (int)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = (x >> 13) & 0x3ffu;
    if ((x & 0x7fffffffu) == 0) {
        return (uint16_t)sign;
    }
    return (uint16_t)(sign | (uint32_t)exp << 10 | mant);
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
    open_lib(dir, "libcublasLt.so.12");
    void *cublas = open_lib(dir, "libcublas.so.12");
    BIND(cudart, rt.Malloc, "cudaMalloc");
    BIND(cudart, rt.Free, "cudaFree");
    BIND(cudart, rt.Memcpy, "cudaMemcpy");
    BIND(cudart, rt.DeviceSynchronize, "cudaDeviceSynchronize");
    BIND(cudart, rt.GetErrorName, "cudaGetErrorName");
    BIND(cublas, blas.Create, "cublasCreate_v2");
    BIND(cublas, blas.Destroy, "cublasDestroy_v2");
    BIND(cublas, blas.GetVersion, "cublasGetVersion_v2");
    BIND(cublas, blas.Sgemm, "cublasSgemm_v2");
    BIND(cublas, blas.GemmEx, "cublasGemmEx");
    BIND(cublas, blas.GetStatusName, "cublasGetStatusName");

    enum { N = 64 };
    static float a[N * N], b[N * N], c[N * N];
    static uint16_t ah[N * N], bh[N * N];
    for (int i = 0; i < N * N; i++) {
        a[i] = (float)(i % 7 - 3);
        b[i] = (float)(i % 5) * 0.5f;
        ah[i] = to_half(a[i]);
        bh[i] = to_half(b[i]);
    }
    float *da = NULL, *db = NULL, *dc = NULL;
    void *dah = NULL, *dbh = NULL;
    RT("cudaMalloc", rt.Malloc((void **)&da, sizeof a));
    RT("cudaMalloc", rt.Malloc((void **)&db, sizeof b));
    RT("cudaMalloc", rt.Malloc((void **)&dc, sizeof c));
    RT("cudaMalloc", rt.Malloc(&dah, sizeof ah));
    RT("cudaMalloc", rt.Malloc(&dbh, sizeof bh));
    if (check_failures) {
        return check_done(NAME);
    }
    RT("cudaMemcpy", rt.Memcpy(da, a, sizeof a, cudaMemcpyHostToDevice));
    RT("cudaMemcpy", rt.Memcpy(db, b, sizeof b, cudaMemcpyHostToDevice));
    RT("cudaMemcpy", rt.Memcpy(dah, ah, sizeof ah, cudaMemcpyHostToDevice));
    RT("cudaMemcpy", rt.Memcpy(dbh, bh, sizeof bh, cudaMemcpyHostToDevice));

    cublasHandle_t handle = NULL;
    BLAS("cublasCreate_v2", blas.Create(&handle));
    if (handle == NULL) {
        return check_done(NAME);
    }
    int version = 0;
    BLAS("cublasGetVersion_v2", blas.GetVersion(handle, &version));
    printf("version cublas=%d\n", version);

    const float alpha = 1.0f, beta = 0.0f;
    RT("cudaDeviceSynchronize", rt.DeviceSynchronize());
    step("sgemm");
    BLAS("cublasSgemm_v2", blas.Sgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &alpha, da, N, db, N, &beta, dc, N));
    int ran = sync_status("cudaDeviceSynchronize(sgemm)", rt.DeviceSynchronize());
    RT("cudaMemcpy", rt.Memcpy(c, dc, sizeof c, cudaMemcpyDeviceToHost));
    gemm_result("cublasSgemm_v2", ran, c, a, b, N);
    step("gemmex");
    BLAS("cublasGemmEx", blas.GemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &alpha, dah, CUDA_R_16F, N, dbh,
                                     CUDA_R_16F, N, &beta, dc, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    ran = sync_status("cudaDeviceSynchronize(gemmex)", rt.DeviceSynchronize());
    RT("cudaMemcpy", rt.Memcpy(c, dc, sizeof c, cudaMemcpyDeviceToHost));
    gemm_result("cublasGemmEx", ran, c, a, b, N);
    step("destroy");
    BLAS("cublasDestroy_v2", blas.Destroy(handle));
    step("destroyed");

    RT("cudaFree", rt.Free(da));
    RT("cudaFree", rt.Free(db));
    RT("cudaFree", rt.Free(dc));
    RT("cudaFree", rt.Free(dah));
    RT("cudaFree", rt.Free(dbh));
    return check_done(NAME);
}
