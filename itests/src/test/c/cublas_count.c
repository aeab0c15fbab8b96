/*
 * Counts the cuBLAS calls libggml-cuda.so makes, for llama_run. The executable is linked with
 * -rdynamic, so these definitions come first in the loader's search order and bind the
 * libcublas.so.12 references of libggml-cuda.so (every cuBLAS function it imports is here); each
 * counts the call and forwards it to the real cuBLAS. cublas_report() prints the counts.
 * Enumerations are passed as int, as in cuBLAS's ABI.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

typedef void *handle_t;
typedef int status_t;

enum {
    C_CREATE,
    C_DESTROY,
    C_SET_STREAM,
    C_SET_MATH_MODE,
    C_SET_WORKSPACE,
    C_SGEMM,
    C_SGEMM_BATCHED,
    C_SGEMM_STRIDED_BATCHED,
    C_GEMM_EX,
    C_GEMM_BATCHED_EX,
    C_GEMM_STRIDED_BATCHED_EX,
    C_STRSM_BATCHED,
    C_COUNT
};
static const char *const names[C_COUNT] = {"cublasCreate_v2", "cublasDestroy_v2", "cublasSetStream_v2",
    "cublasSetMathMode", "cublasSetWorkspace_v2", "cublasSgemm_v2", "cublasSgemmBatched", "cublasSgemmStridedBatched",
    "cublasGemmEx", "cublasGemmBatchedEx", "cublasGemmStridedBatchedEx", "cublasStrsmBatched"};
static unsigned long counts[C_COUNT];

/* libggml-cuda.so is loaded RTLD_LOCAL, and cuBLAS with it: RTLD_NEXT does not see it, its handle does. */
static void *real(int which)
{
    void *lib = dlopen("libcublas.so.12", RTLD_NOW | RTLD_NOLOAD);
    if (lib == NULL)
        lib = dlopen("libcublas.so.12", RTLD_NOW);
    void *f = lib != NULL ? dlvsym(lib, names[which], "libcublas.so.12") : NULL;
    if (f == NULL && lib != NULL)
        f = dlsym(lib, names[which]);
    if (f == NULL) {
        fprintf(stderr, "cublas_count: %s not found: %s\n", names[which], dlerror());
        abort();
    }
    return f;
}

#define FORWARD(which, type, ...)                                                                                    \
    do {                                                                                                             \
        static __typeof__(type) fn;                                                                                  \
        __atomic_add_fetch(&counts[which], 1, __ATOMIC_RELAXED);                                                     \
        if (fn == NULL)                                                                                              \
            fn = (type)real(which);                                                                                  \
        return fn(__VA_ARGS__);                                                                                      \
    } while (0)

status_t cublasCreate_v2(handle_t *h)
{
    FORWARD(C_CREATE, status_t (*)(handle_t *), h);
}

status_t cublasDestroy_v2(handle_t h)
{
    FORWARD(C_DESTROY, status_t (*)(handle_t), h);
}

status_t cublasSetStream_v2(handle_t h, void *stream)
{
    FORWARD(C_SET_STREAM, status_t (*)(handle_t, void *), h, stream);
}

status_t cublasSetMathMode(handle_t h, int mode)
{
    FORWARD(C_SET_MATH_MODE, status_t (*)(handle_t, int), h, mode);
}

status_t cublasSetWorkspace_v2(handle_t h, void *ws, size_t bytes)
{
    FORWARD(C_SET_WORKSPACE, status_t (*)(handle_t, void *, size_t), h, ws, bytes);
}

status_t cublasSgemm_v2(handle_t h, int ta, int tb, int m, int n, int k, const float *alpha, const float *a, int lda,
                        const float *b, int ldb, const float *beta, float *c, int ldc)
{
    FORWARD(C_SGEMM,
            status_t (*)(handle_t, int, int, int, int, int, const float *, const float *, int, const float *, int,
                         const float *, float *, int),
            h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

status_t cublasSgemmBatched(handle_t h, int ta, int tb, int m, int n, int k, const float *alpha,
                            const float *const a[], int lda, const float *const b[], int ldb, const float *beta,
                            float *const c[], int ldc, int batch)
{
    FORWARD(C_SGEMM_BATCHED,
            status_t (*)(handle_t, int, int, int, int, int, const float *, const float *const *, int,
                         const float *const *, int, const float *, float *const *, int, int),
            h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, batch);
}

status_t cublasSgemmStridedBatched(handle_t h, int ta, int tb, int m, int n, int k, const float *alpha, const float *a,
                                   int lda, long long sa, const float *b, int ldb, long long sb, const float *beta,
                                   float *c, int ldc, long long sc, int batch)
{
    FORWARD(C_SGEMM_STRIDED_BATCHED,
            status_t (*)(handle_t, int, int, int, int, int, const float *, const float *, int, long long,
                         const float *, int, long long, const float *, float *, int, long long, int),
            h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

status_t cublasGemmEx(handle_t h, int ta, int tb, int m, int n, int k, const void *alpha, const void *a, int at,
                      int lda, const void *b, int bt, int ldb, const void *beta, void *c, int ct, int ldc, int compute,
                      int algo)
{
    FORWARD(C_GEMM_EX,
            status_t (*)(handle_t, int, int, int, int, int, const void *, const void *, int, int, const void *, int,
                         int, const void *, void *, int, int, int, int),
            h, ta, tb, m, n, k, alpha, a, at, lda, b, bt, ldb, beta, c, ct, ldc, compute, algo);
}

status_t cublasGemmBatchedEx(handle_t h, int ta, int tb, int m, int n, int k, const void *alpha,
                             const void *const a[], int at, int lda, const void *const b[], int bt, int ldb,
                             const void *beta, void *const c[], int ct, int ldc, int batch, int compute, int algo)
{
    FORWARD(C_GEMM_BATCHED_EX,
            status_t (*)(handle_t, int, int, int, int, int, const void *, const void *const *, int, int,
                         const void *const *, int, int, const void *, void *const *, int, int, int, int, int),
            h, ta, tb, m, n, k, alpha, a, at, lda, b, bt, ldb, beta, c, ct, ldc, batch, compute, algo);
}

status_t cublasGemmStridedBatchedEx(handle_t h, int ta, int tb, int m, int n, int k, const void *alpha, const void *a,
                                    int at, int lda, long long sa, const void *b, int bt, int ldb, long long sb,
                                    const void *beta, void *c, int ct, int ldc, long long sc, int batch, int compute,
                                    int algo)
{
    FORWARD(C_GEMM_STRIDED_BATCHED_EX,
            status_t (*)(handle_t, int, int, int, int, int, const void *, const void *, int, int, long long,
                         const void *, int, int, long long, const void *, void *, int, int, long long, int, int, int),
            h, ta, tb, m, n, k, alpha, a, at, lda, sa, b, bt, ldb, sb, beta, c, ct, ldc, sc, batch, compute, algo);
}

status_t cublasStrsmBatched(handle_t h, int side, int uplo, int trans, int diag, int m, int n, const float *alpha,
                            const float *const a[], int lda, float *const b[], int ldb, int batch)
{
    FORWARD(C_STRSM_BATCHED,
            status_t (*)(handle_t, int, int, int, int, int, int, const float *, const float *const *, int,
                         float *const *, int, int),
            h, side, uplo, trans, diag, m, n, alpha, a, lda, b, ldb, batch);
}

/* One line: "cublas_calls total=N" and name=count for each function called at least once. */
void cublas_report(void)
{
    unsigned long total = 0;
    for (int i = 0; i < C_COUNT; i++)
        total += counts[i];
    printf("cublas_calls total=%lu", total);
    for (int i = 0; i < C_COUNT; i++)
        if (counts[i] != 0)
            printf(" %s=%lu", names[i], counts[i]);
    printf("\n");
}
