/*
 * A kernel loaded from a PTX string runs on the mock from its PTX (vgpu_iota);
 * parameter packing (kernelParams, the extra buffer form, cuLaunchKernelEx), function attributes,
 * occupancy, and the errors of bad launches. Also the other loaders (cuModuleLoadDataEx with JIT
 * options, cuModuleLoadFatBinary with an nvcc fatbin) and module globals.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cuda_api.h"

static int all_iota(const int *v, int n, int start)
{
    for (int i = 0; i < n; i++)
        if (v[i] != start + i)
            return 0;
    return 1;
}

/* PTX with two globals: one initialised, one zeroed. */
static const char globals_ptx[] =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".global .align 4 .u32 counter = 7;\n"
    ".global .align 8 .b8 table[100];\n"
    ".visible .entry touch(.param .u64 p)\n{\n  ret;\n}\n";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The committed nvcc fatbin (sm_90 cubin + compute_90 PTX) of test/cuda/cudart12_kernel.cu. */
static void *read_fatbin(void)
{
    FILE *f = fopen(KERNEL_FATBIN, "rb");
    if (f == NULL)
        return NULL;
    static uint64_t buf[8192]; /* 64 KiB, 8-byte aligned as a linked .nv_fatbin section is */
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return n > 0 && n < sizeof buf ? buf : NULL;
}

static void other_loaders(CUfunction iota)
{
    /* The function attributes that depend on the code: .target sm_70 PTX compiled for the CC 9.0 device. */
    int v = 0;
    CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_PTX_VERSION, iota));
    CHECK_EQ(70, v);
    CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_BINARY_VERSION, iota));
    CHECK_EQ(90, v);

    /* cuModuleLoadDataEx: inputs accepted, outputs written where the driver writes them. */
    char info[64], error[256];
    memset(info, 'X', sizeof info);
    memset(error, 'X', sizeof error);
    CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER,
                           CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, CU_JIT_WALL_TIME, CU_JIT_MAX_REGISTERS,
                           CU_JIT_OPTIMIZATION_LEVEL, CU_JIT_TARGET_FROM_CUCONTEXT};
    void *vals[] = {info, (void *)(uintptr_t)sizeof info, error, (void *)(uintptr_t)sizeof error, NULL,
                    (void *)(uintptr_t)32, (void *)(uintptr_t)4, NULL};
    CUmodule mex;
    double t0 = now_ms();
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadDataEx(&mex, iota_ptx, 8, opts, vals));
    double elapsed = now_ms() - t0;
    CHECK_EQ(0, info[0]);
    CHECK_EQ(0, (uintptr_t)vals[1]);
    CHECK_EQ(0, error[0]);
    CHECK_EQ(0, (uintptr_t)vals[3]);
    float wall = -1;
    memcpy(&wall, &vals[4], sizeof wall);
    CHECK(wall >= 0 && wall <= elapsed + 0.001);
    CUfunction fex;
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&fex, mex, "vgpu_iota"));
    CUdeviceptr out;
    int n = 1000, start = 3;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&out, (size_t)n * 4));
    void *params[] = {&out, &start, &n};
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(fex, 4, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    static int host[1000];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out, sizeof host));
    CHECK(host[0] == 3 && host[999] == 1002);
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(mex));
    /* A failed load says why in the error log, and how much of it it wrote. */
    vals[1] = (void *)(uintptr_t)sizeof info;
    vals[3] = (void *)(uintptr_t)sizeof error;
    CHECK_CU(CUDA_ERROR_INVALID_IMAGE, cuModuleLoadDataEx(&mex, "\x7f" "ELF garbage", 8, opts, vals));
    CHECK(strstr(error, "CUDA_ERROR_INVALID_IMAGE") != NULL);
    CHECK_EQ(strlen(error) + 1, (uintptr_t)vals[3]);
    CUjit_option bogus = (CUjit_option)(CU_JIT_NUM_OPTIONS + 5);
    void *bogus_val = NULL;
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuModuleLoadDataEx(&mex, iota_ptx, 1, &bogus, &bogus_val));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuModuleLoadDataEx(&mex, iota_ptx, 2, NULL, vals));
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadDataEx(&mex, iota_ptx, 0, NULL, NULL));
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(mex));

    /* cuModuleLoadFatBinary: the service picks the sm_90 cubin; the Java kernel Rt12Affine runs it. */
    void *fatbin = read_fatbin();
    CHECK(fatbin != NULL);
    CUmodule mfat;
    CUfunction affine;
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadFatBinary(&mfat, fatbin));
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&affine, mfat, "_Z11rt12_affinePfPKfffi"));
    CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_PTX_VERSION, affine));
    CHECK_EQ(90, v);
    CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_BINARY_VERSION, affine));
    CHECK_EQ(90, v);
    size_t off = 0, size = 0;
    CHECK_CU(CUDA_SUCCESS, cuFuncGetParamInfo(affine, 4, &off, &size));
    CHECK_EQ(24, off);
    CHECK_EQ(4, size);
    static float xs[1000], ys[1000];
    for (int i = 0; i < n; i++)
        xs[i] = (float)i;
    CUdeviceptr x, y;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&x, sizeof xs));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&y, sizeof ys));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(x, xs, sizeof xs));
    float a = 2.0f, b = 0.5f;
    void *aparams[] = {&y, &x, &a, &b, &n};
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(affine, 8, 1, 1, 128, 1, 1, 0, NULL, aparams, NULL));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(ys, y, sizeof ys));
    int exact = 1;
    for (int i = 0; i < n; i++)
        exact &= ys[i] == 2.0f * (float)i + 0.5f;
    CHECK(exact);
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(mfat));
    CHECK_CU(CUDA_ERROR_INVALID_IMAGE, cuModuleLoadFatBinary(&mfat, "\x50\xed\x55\xba garbage fatbin"));

    /* cuModuleGetGlobal: address and size, the initial value, and a write read back. */
    CUmodule mg;
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&mg, globals_ptx));
    CUdeviceptr counter = 0, table = 0;
    size_t bytes = 0;
    CHECK_CU(CUDA_SUCCESS, cuModuleGetGlobal_v2(&counter, &bytes, mg, "counter"));
    CHECK_EQ(4, bytes);
    CHECK(counter != 0);
    CHECK_CU(CUDA_SUCCESS, cuModuleGetGlobal_v2(&table, NULL, mg, "table"));
    CHECK_CU(CUDA_SUCCESS, cuModuleGetGlobal_v2(NULL, &bytes, mg, "table"));
    CHECK_EQ(100, bytes);
    CHECK(table != counter && (table >= counter + 4 || table + 100 <= counter));
    uint32_t word = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(&word, counter, 4));
    CHECK_EQ(7, word);
    uint8_t zeros[100], pattern[100], back[100];
    memset(zeros, 0xee, sizeof zeros);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(zeros, table, sizeof zeros));
    CHECK(zeros[0] == 0 && zeros[99] == 0);
    word = 0xc0ffee;
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(counter, &word, 4));
    for (int i = 0; i < 100; i++)
        pattern[i] = (uint8_t)(i * 7 + 1);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(table, pattern, sizeof pattern));
    word = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(&word, counter, 4));
    CHECK_EQ(0xc0ffee, word);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(back, table, sizeof back));
    CHECK(memcmp(pattern, back, sizeof back) == 0);
    CHECK_CU(CUDA_ERROR_NOT_FOUND, cuModuleGetGlobal_v2(&counter, &bytes, mg, "no_such_global"));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuModuleGetGlobal_v2(&counter, &bytes, (CUmodule)0x77, "counter"));
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(mg));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuModuleGetGlobal_v2(&counter, &bytes, mg, "counter"));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(out));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(x));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(y));
}

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext ctx;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));
    CUmodule mod;
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&mod, iota_ptx));
    CUfunction f, f2;
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&f, mod, "vgpu_iota"));
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&f2, mod, "vgpu_iota"));
    CHECK(f == f2);
    CHECK_CU(CUDA_ERROR_NOT_FOUND, cuModuleGetFunction(&f2, mod, "no_such_kernel"));
    CHECK_CU(CUDA_ERROR_INVALID_IMAGE, cuModuleLoadData(&mod, "\x7f" "ELF garbage that is no image"));
    /* The same image from a file. */
    char path[] = "/tmp/vgpu-test-kernel-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, iota_ptx, sizeof iota_ptx - 1) == (ssize_t)(sizeof iota_ptx - 1));
    close(fd);
    CUmodule from_file;
    CUfunction f3;
    CHECK_CU(CUDA_SUCCESS, cuModuleLoad(&from_file, path));
    CHECK_CU(CUDA_SUCCESS, cuModuleGetFunction(&f3, from_file, "vgpu_iota"));
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(from_file));
    unlink(path);
    CHECK_CU(CUDA_ERROR_FILE_NOT_FOUND, cuModuleLoad(&from_file, path));

    /* The parameter layout the service parsed from the PTX. */
    size_t off = 99, size = 99;
    CHECK_CU(CUDA_SUCCESS, cuFuncGetParamInfo(f, 0, &off, &size));
    CHECK_EQ(0, off);
    CHECK_EQ(8, size);
    CHECK_CU(CUDA_SUCCESS, cuFuncGetParamInfo(f, 2, &off, &size));
    CHECK_EQ(12, off);
    CHECK_EQ(4, size);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuFuncGetParamInfo(f, 3, &off, &size));
    other_loaders(f);
    int attr = 0;
    CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&attr, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f));
    CHECK_EQ(1024, attr);
    CHECK_CU(CUDA_SUCCESS, cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 100000));
    CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&attr, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f));
    CHECK_EQ(100000, attr);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1 << 20));
    int blocks = 0, min_grid = 0, block = 0;
    CHECK_CU(CUDA_SUCCESS, cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, 256, 0));
    CHECK_EQ(8, blocks);
    CHECK_CU(CUDA_SUCCESS, cuOccupancyMaxPotentialBlockSize(&min_grid, &block, f, NULL, 0, 0));
    CHECK(block >= 32 && block <= 1024 && min_grid >= 132);

    int n = 100000;
    CUdeviceptr out;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&out, (size_t)n * 4));
    static int host[100000];

    /* kernelParams */
    int start = 7;
    void *params[] = {&out, &start, &n};
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, (unsigned)(n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuCtxSynchronize());
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out, sizeof host));
    CHECK(all_iota(host, n, 7));

    /* The packed-buffer form. */
    struct { CUdeviceptr out; int start; int n; } packed = {out, -50, n};
    size_t packed_size = sizeof packed;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &packed, CU_LAUNCH_PARAM_BUFFER_SIZE, &packed_size, CU_LAUNCH_PARAM_END};
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, (unsigned)(n + 127) / 128, 1, 1, 128, 1, 1, 0, NULL, NULL, extra));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out, sizeof host));
    CHECK(all_iota(host, n, -50));

    /* cuLaunchKernelEx on a stream. */
    CUstream s;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&s, 0));
    start = 1000;
    CUlaunchConfig cfg = {.gridDimX = (unsigned)(n + 511) / 512, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 512,
                          .blockDimY = 1, .blockDimZ = 1, .hStream = s};
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernelEx(&cfg, f, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out, sizeof host));
    CHECK(all_iota(host, n, 1000));

    /* A grid smaller than the data covers only its threads. */
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32_v2(out, 0, (size_t)n));
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(host, out, sizeof host));
    CHECK(all_iota(host, 64, 1000));
    CHECK_EQ(0, host[64]);

    /* Launch errors the driver reports at once. */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuLaunchKernel(f, 1, 1, 1, 2048, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuLaunchKernel(f, 0, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuLaunchKernel((CUfunction)0x1234, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuLaunchKernel((CUfunction)ctx, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, (CUstream)0x5555, params, NULL));
    /* The device's dimension limits (block z 64, grid y and z 65535) and the function's dynamic
       shared memory limit (what cuFuncSetAttribute last set; 48 KiB by default). */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuLaunchKernel(f, 1, 1, 1, 1, 1, 65, 0, NULL, params, NULL));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuLaunchKernel(f, 1, 65536, 1, 32, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuLaunchKernel(f, 1, 1, 65536, 32, 1, 1, 0, NULL, params, NULL));
    int dynamic_max = 0;
    CHECK_CU(CUDA_SUCCESS, cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 48 << 10));
    CHECK_CU(CUDA_SUCCESS, cuFuncGetAttribute(&dynamic_max, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f));
    CHECK_EQ(49152, dynamic_max);
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 49152, NULL, params, NULL));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 100u << 10, NULL, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 100 << 10));
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 65535, 1, 1, 1, 64, 100u << 10, NULL, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuCtxSynchronize()); /* nothing refused later either */

    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s));
    CUmodule spare;
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&spare, iota_ptx));
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(spare));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuModuleGetFunction(&f2, spare, "vgpu_iota"));

    /* A kernel writing outside its memory fails asynchronously: the next synchronizing call says
       so, and, as on a GPU, the fault is sticky: every later call of the process returns it. */
    CUdeviceptr wild = out + (size_t)n * 4 + (64u << 20);
    void *bad[] = {&wild, &start, &n};
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, bad, NULL));
    CHECK_CU(CUDA_ERROR_ILLEGAL_ADDRESS, cuCtxSynchronize());
    CHECK_CU(CUDA_ERROR_ILLEGAL_ADDRESS, cuCtxSynchronize());
    CHECK_CU(CUDA_ERROR_ILLEGAL_ADDRESS, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    CUdeviceptr more;
    CHECK_CU(CUDA_ERROR_ILLEGAL_ADDRESS, cuMemAlloc_v2(&more, 4096));
    CHECK_CU(CUDA_ERROR_ILLEGAL_ADDRESS, cuMemcpyDtoH_v2(host, out, 4));
    /* What the shim answers from its own caches is not device work and still answers. */
    char name[64];
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetName(name, sizeof name, 0));
    (void)mod;
    /* Nothing to clean up: the service releases the session's memory when the process exits. */
    return check_done("kernel");
}
