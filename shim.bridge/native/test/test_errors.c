/* Bad handles and foreign values get exact error codes and never crash the client or the service. */
#include <stdint.h>

#include "check.h"
#include "cuda_api.h"

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext ctx;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));
    void *garbage[] = {(void *)0x1234, (void *)-1, (void *)&ctx, (void *)0x7600000000000001ull, (void *)0x7602000001000001ull};
    for (unsigned i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxSetCurrent((CUcontext)garbage[i]));
        CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxDestroy_v2((CUcontext)garbage[i]));
        CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuStreamSynchronize((CUstream)garbage[i]));
        CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuEventQuery((CUevent)garbage[i]));
        CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuModuleUnload((CUmodule)garbage[i]));
        CUfunction f;
        CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuModuleGetFunction(&f, (CUmodule)garbage[i], "x"));
    }
    /* A handle of one kind is not accepted as another. */
    CUstream s;
    CUevent e;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&s, 0));
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&e, 0));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuEventQuery((CUevent)s));
    CHECK_CU(CUDA_ERROR_INVALID_HANDLE, cuStreamSynchronize((CUstream)e));
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxSetCurrent((CUcontext)s));

    /* NULL out-parameters. */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceGetCount(NULL));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemAlloc_v2(NULL, 16));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuStreamCreate(NULL, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemAlloc_v2(&(CUdeviceptr){0}, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuDriverGetVersion(NULL));

    /* Device pointers that were never allocated: in the window, and host addresses. */
    uint8_t buf[16];
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoH_v2(buf, 0x200000000000ull + (1ull << 40), sizeof buf));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyHtoD_v2(0x200000000000ull + 12345, buf, sizeof buf));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFree_v2(0x200000000000ull + 4096));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD8_v2(0x300000000000ull, 0, 10));

    /* Unimplemented entry points exist and say so. */
    CUarray array;
    CHECK_CU(CUDA_ERROR_NOT_SUPPORTED, cuArrayCreate_v2(&array, NULL));

    /* Sizes whose products overflow are refused, not wrapped into small requests: nothing is written. */
    CUdeviceptr small;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&small, 1u << 20));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8_v2(small, 0x5a, 16));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD32_v2(small, 0xabababab, ((size_t)1 << 62) + 1));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD2D8_v2(small, 256, 7, 256, ((size_t)1 << 56) + 1));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD2D32_v2(small, 1024, 7, ((size_t)1 << 62) + 1, 1));
    CUDA_MEMCPY2D huge = {.srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = small, .srcPitch = 256,
                          .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = small, .dstPitch = 256,
                          .WidthInBytes = 16, .Height = ((size_t)1 << 56) + 1};
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpy2D_v2(&huge));
    uint8_t check16[16];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(check16, small, sizeof check16));
    CHECK_EQ(0x5a, check16[0]);
    CHECK_EQ(0x5a, check16[15]);
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(small));

    /* After all of that the session still works. */
    CUdeviceptr d;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d, 64));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(d, buf, sizeof buf));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(d));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s));
    CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(e));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    return check_done("errors");
}
