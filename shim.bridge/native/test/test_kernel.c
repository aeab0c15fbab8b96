/*
 * A kernel loaded from a PTX string runs on the mock through the sample host kernel vgpu_iota;
 * parameter packing (kernelParams, the extra buffer form, cuLaunchKernelEx), function attributes,
 * occupancy, and the errors of bad launches.
 */
#include <stdint.h>
#include <string.h>
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

    /* A kernel writing outside its memory fails asynchronously: the next synchronizing call says so. */
    CUdeviceptr wild = out + (size_t)n * 4 + (64u << 20);
    void *bad[] = {&wild, &start, &n};
    CHECK_CU(CUDA_SUCCESS, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, bad, NULL));
    CHECK_CU(CUDA_ERROR_ILLEGAL_ADDRESS, cuCtxSynchronize());
    CHECK_CU(CUDA_SUCCESS, cuCtxSynchronize());

    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(out));
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(mod));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuModuleGetFunction(&f2, mod, "vgpu_iota"));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    return check_done("kernel");
}
