/* Contexts: create variants, the per-thread stack, current context per thread, destruction. */
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "cuda_api.h"

static CUcontext shared_ctx;
static int thread_result;

static void *other_thread(void *arg)
{
    (void)arg;
    CUcontext cur = (CUcontext)1;
    /* A new thread starts without a current context. */
    thread_result = cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == NULL;
    CUdeviceptr d;
    thread_result &= cuMemAlloc_v2(&d, 64) == CUDA_ERROR_INVALID_CONTEXT;
    thread_result &= cuCtxSetCurrent(shared_ctx) == CUDA_SUCCESS;
    thread_result &= cuMemAlloc_v2(&d, 64) == CUDA_SUCCESS && cuMemFree_v2(d) == CUDA_SUCCESS;
    return NULL;
}

int main(void)
{
    CUcontext c = NULL;
    CHECK_CU(CUDA_ERROR_NOT_INITIALIZED, cuCtxCreate_v2(&c, 0, 0));
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CHECK_CU(CUDA_ERROR_INVALID_DEVICE, cuCtxCreate_v2(&c, 0, 5));

    CUcontext a, b, cur;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&a, 0, 0));
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == a);
    /* Era-A Ollama: cuCtxCreate_v3 + cuMemGetInfo_v2 + cuCtxDestroy. */
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v3(&b, NULL, 0, 0, 0));
    size_t free_mem = 0, total = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free_mem, &total));
    CHECK(free_mem > 0 && free_mem <= total);
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == b);
    CUcontext popped;
    CHECK_CU(CUDA_SUCCESS, cuCtxPopCurrent_v2(&popped));
    CHECK(popped == b);
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == a);
    CHECK_CU(CUDA_SUCCESS, cuCtxPushCurrent_v2(b));
    CUdevice dev = -1;
    CHECK_CU(CUDA_SUCCESS, cuCtxGetDevice(&dev));
    CHECK_EQ(0, dev);

    /* Memory allocated in a context is released with it. */
    size_t before = 0, after = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&before, &total));
    CUdeviceptr d;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d, 1u << 30));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(b));
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxDestroy_v2(b));
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxPushCurrent_v2(b));
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == a);
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&after, &total));
    CHECK_EQ(before, after);

    /* The current context is per thread. */
    shared_ctx = a;
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    CHECK(thread_result);

    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v4(&c, NULL, 0, 0));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(c));
    CHECK_CU(CUDA_SUCCESS, cuCtxSetCurrent(NULL));
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == NULL);
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxSynchronize());

    /* cuDevicePrimaryCtxReset: the primary context's memory is freed and it is inactive, however
       many references it had; a later retain gives a working context again. */
    CUcontext p, p2;
    unsigned pflags = 99;
    int active = -1;
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&p, 0));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&p2, 0));
    CHECK_CU(CUDA_SUCCESS, cuCtxSetCurrent(p));
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&before, &total));
    CUdeviceptr pm;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&pm, 256u << 20));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8_v2(pm, 0x5a, 4096));
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&after, &total));
    CHECK_EQ(before - (256u << 20), after);
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxGetState(0, &pflags, &active));
    CHECK_EQ(1, active);
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxReset_v2(0));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxGetState(0, &pflags, &active));
    CHECK_EQ(0, active);
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == NULL);
    /* Seen from another context: the memory is back and the pointer is unknown. */
    CHECK_CU(CUDA_SUCCESS, cuCtxPushCurrent_v2(a));
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&after, &total));
    CHECK_EQ(before, after);
    unsigned mt = 0;
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, pm));
    uint8_t byte;
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoH_v2(&byte, pm, 1));
    CHECK_CU(CUDA_SUCCESS, cuCtxPopCurrent_v2(&cur));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&p, 0));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxGetState(0, &pflags, &active));
    CHECK_EQ(1, active);
    CHECK_CU(CUDA_SUCCESS, cuCtxSetCurrent(p));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&pm, 4096));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(pm));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRelease_v2(0));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxGetState(0, &pflags, &active));
    CHECK_EQ(0, active);
    CHECK_CU(CUDA_ERROR_INVALID_DEVICE, cuDevicePrimaryCtxReset_v2(7));

    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(a));
    return check_done("context");
}
