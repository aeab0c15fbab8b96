/* Memory through the shim: 64 MiB bit-exact round trips, memsets, device copies, async copies, VMM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda_api.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static void fill_random(void *p, size_t n)
{
    uint64_t *q = p;
    for (size_t i = 0; i < n / 8; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        q[i] = rng;
    }
}

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext ctx;
    CUdeviceptr d = 0;
    /* No context yet. */
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuMemAlloc_v2(&d, 16));
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));

    size_t free0, total;
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free0, &total));
    CHECK_EQ(80ull << 30, total);

    /* 64 MiB each way, bit-exact, through the shared-memory path. */
    size_t big = 64u << 20;
    uint8_t *src = malloc(big), *dst = malloc(big);
    fill_random(src, big);
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d, big));
    size_t free1;
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free1, &total));
    CHECK_EQ(free0 - big, free1);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(d, src, big));
    memset(dst, 0, big);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(dst, d, big));
    CHECK(memcmp(src, dst, big) == 0);

    /* Small copies travel inline; odd sizes and offsets. */
    uint8_t small[1000], back[1000];
    fill_random(small, sizeof small);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(d + 3, small, 997));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(back, d + 3, 997));
    CHECK(memcmp(small, back, 997) == 0);
    memcpy(src + 3, small, 997); /* src mirrors d again */

    /* Device to device, and cuMemcpy deciding the direction from the addresses. */
    CUdeviceptr d2;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d2, big));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoD_v2(d2, d, big));
    memset(dst, 0, big);
    CHECK_CU(CUDA_SUCCESS, cuMemcpy((CUdeviceptr)(uintptr_t)dst, d2, big));
    CHECK(memcmp(src, dst, big) == 0);
    CHECK_CU(CUDA_SUCCESS, cuMemcpy(d2 + 100, (CUdeviceptr)(uintptr_t)small, sizeof small));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(back, d2 + 100, sizeof back));
    CHECK(memcmp(small, back, sizeof small) == 0);

    /* Memsets of 8, 16 and 32-bit values, sync and async. */
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8_v2(d, 0xab, 4096));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD16_v2(d + 4096, 0xbeef, 1024));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(d + 8192, 0xdeadbeef, 1024, NULL));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8Async(d + 12288, 0x11, 3, NULL));
    uint8_t m[12296];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(m, d, sizeof m));
    CHECK_EQ(0xab, m[0]);
    CHECK_EQ(0xab, m[4095]);
    uint16_t h16;
    memcpy(&h16, m + 4096 + 2046, 2);
    CHECK_EQ(0xbeef, h16);
    uint32_t h32;
    memcpy(&h32, m + 8192 + 4092, 4);
    CHECK_EQ(0xdeadbeefu, h32);
    CHECK_EQ(0x11, m[12290]);
    CHECK_EQ((uint8_t)(src[12291] & 0xff), m[12291]);
    /* Misaligned 32-bit memset. */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD32_v2(d + 2, 0, 4));

    /* Async copies on a stream; the device-to-host copy lands at synchronize. */
    CUstream s;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&s, 0));
    size_t mid = 3u << 20;
    uint8_t *asrc = malloc(mid), *adst = malloc(mid);
    fill_random(asrc, mid);
    memset(adst, 0, mid);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(d2, asrc, mid, s));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoDAsync_v2(d, d2, mid, s));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoHAsync_v2(adst, d, mid, s));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyAsync((CUdeviceptr)(uintptr_t)back, d + 10, 100, s));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s));
    CHECK(memcmp(asrc, adst, mid) == 0);
    CHECK(memcmp(asrc + 10, back, 100) == 0);
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s));

    /* 2D copy with pitches, and a pitched allocation. */
    CUdeviceptr pd;
    size_t pitch = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemAllocPitch_v2(&pd, &pitch, 100, 8, 4));
    CHECK(pitch >= 100 && pitch % 256 == 0);
    uint8_t grid[8][100], grid_back[8][100];
    fill_random(grid, sizeof grid);
    CUDA_MEMCPY2D c2 = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = grid, .srcPitch = 100,
                        .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = pd, .dstPitch = pitch,
                        .WidthInBytes = 100, .Height = 8};
    CHECK_CU(CUDA_SUCCESS, cuMemcpy2D_v2(&c2));
    CUDA_MEMCPY2D c3 = {.srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = pd, .srcPitch = pitch,
                        .dstMemoryType = CU_MEMORYTYPE_HOST, .dstHost = grid_back, .dstPitch = 100,
                        .WidthInBytes = 100, .Height = 8};
    CHECK_CU(CUDA_SUCCESS, cuMemcpy2D_v2(&c3));
    CHECK(memcmp(grid, grid_back, sizeof grid) == 0);
    CHECK_CU(CUDA_SUCCESS, cuMemsetD2D32_v2(pd, pitch, 7, 25, 8));
    uint32_t row[25];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(row, pd + 7 * pitch, sizeof row));
    CHECK_EQ(7, row[24]);

    /* Out of range, foreign and freed pointers. */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyHtoD_v2(pd + pitch * 8 - 4, small, 8));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoH_v2(back, 0x2000deadbeef000ull, 8));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFree_v2(d + 8));
    CUdeviceptr base = 0;
    size_t size = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemGetAddressRange_v2(&base, &size, d + 12345));
    CHECK_EQ(d, base);
    CHECK_EQ(big, size);
    unsigned mt = 0;
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 1));
    CHECK_EQ(CU_MEMORYTYPE_DEVICE, mt);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)small));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(d));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFree_v2(d));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoH_v2(back, d, 8));
    CHECK_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAlloc_v2(&d, 81ull << 30));

    /* Host memory is the client's own. */
    void *hp = NULL;
    CHECK_CU(CUDA_SUCCESS, cuMemHostAlloc(&hp, 1 << 20, 0));
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)hp + 5));
    CHECK_EQ(CU_MEMORYTYPE_HOST, mt);
    CHECK_CU(CUDA_SUCCESS, cuMemFreeHost(hp));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFreeHost(hp));
    CHECK_CU(CUDA_SUCCESS, cuMemHostRegister_v2(src, 4096, 0));
    CHECK_CU(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, cuMemHostRegister_v2(src, 4096, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemHostUnregister(src));
    CHECK_CU(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, cuMemHostUnregister(src));

    /* Virtual memory management as ggml's pool uses it. */
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED, .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}};
    size_t gran = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
    CHECK_EQ(2u << 20, gran);
    CUdeviceptr va;
    CHECK_CU(CUDA_SUCCESS, cuMemAddressReserve(&va, 32ull << 30, 0, 0, 0));
    CUmemGenericAllocationHandle h1, h2;
    CHECK_CU(CUDA_SUCCESS, cuMemCreate(&h1, gran, &prop, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemCreate(&h2, 2 * gran, &prop, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemMap(va, gran, 0, h1, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemMap(va + gran, 2 * gran, 0, h2, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemRelease(h1));
    CUmemAccessDesc access = {.location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}, .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CHECK_CU(CUDA_SUCCESS, cuMemSetAccess(va, 3 * gran, &access, 1));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(va + gran - 4096, src, 8192));
    memset(dst, 0, 8192);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(dst, va + gran - 4096, 8192));
    CHECK(memcmp(src, dst, 8192) == 0);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemAddressFree(va, 32ull << 30));
    CHECK_CU(CUDA_SUCCESS, cuMemUnmap(va, 3 * gran));
    CHECK_CU(CUDA_SUCCESS, cuMemRelease(h2));
    CHECK_CU(CUDA_SUCCESS, cuMemAddressFree(va, 32ull << 30));

    /* Asynchronous memsets of each width on a stream: exact bytes, neighbours untouched. */
    CUstream s2;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&s2, 0));
    CUdeviceptr ms;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&ms, 4096));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8_v2(ms, 0x77, 4096));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8Async(ms + 1, 0xa1, 5, s2));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD16Async(ms + 16, 0xb2c3, 7, s2));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(ms + 64, 0xd4e5f607u, 9, s2));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s2));
    uint8_t got[128], want[128];
    memset(want, 0x77, sizeof want);
    memset(want + 1, 0xa1, 5);
    for (int i = 0; i < 7; i++)
        want[16 + 2 * i] = 0xc3, want[17 + 2 * i] = 0xb2;
    for (int i = 0; i < 9; i++)
        want[64 + 4 * i] = 0x07, want[65 + 4 * i] = 0xf6, want[66 + 4 * i] = 0xe5, want[67 + 4 * i] = 0xd4;
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(got, ms, sizeof got));
    CHECK(memcmp(want, got, sizeof got) == 0);
    CHECK_EQ(0x77, got[0]);
    CHECK_EQ(0xa1, got[5]);
    CHECK_EQ(0x77, got[6]);
    CHECK_EQ(0xb2, got[29]);
    CHECK_EQ(0x77, got[30]);
    CHECK_EQ(0xd4, got[99]);
    CHECK_EQ(0x77, got[100]);

    /* Asynchronous work on freed memory: accepted at enqueue; the next synchronizing call returns
       the error, and the one after it succeeds (these errors are not sticky). */
    CUdeviceptr gone;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&gone, 1u << 20));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(gone));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(gone, 1, 256, s2));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuStreamSynchronize(s2));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s2));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(gone, small, sizeof small, s2)); /* inline */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuStreamSynchronize(s2));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s2));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(gone, src, 1u << 20, s2)); /* through shared memory */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuCtxSynchronize());
    CHECK_CU(CUDA_SUCCESS, cuCtxSynchronize());
    /* Two failures before one synchronizing call: it reports one, the next call is clean, and
       work queued with them still ran. */
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8Async(gone, 1, 16, s2));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8Async(ms, 0x42, 1, s2));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoDAsync_v2(gone, small, 8, s2));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuStreamSynchronize(s2));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(got, ms, 1));
    CHECK_EQ(0x42, got[0]);
    /* A pending error waits for a synchronizing call: calls that are not synchronizing answer for
       themselves, so what they create is really theirs and nothing leaks. */
    size_t free_before, free_after;
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(gone, 1, 256, s2));
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free_before, &total));
    CUdeviceptr fresh = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&fresh, 64u << 20));
    CHECK(fresh != 0);
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free_after, &total));
    CHECK_EQ((size_t)64 << 20, free_before - free_after);
    CUstream s3 = NULL;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&s3, 0));
    CUevent e3 = NULL;
    CHECK_CU(CUDA_SUCCESS, cuEventCreate(&e3, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuCtxSynchronize());
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8Async(fresh, 0x17, 4, s3));
    CHECK_CU(CUDA_SUCCESS, cuEventRecord(e3, s3));
    CHECK_CU(CUDA_SUCCESS, cuEventSynchronize(e3));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(got, fresh, 4));
    CHECK_EQ(0x17, got[3]);
    CHECK_CU(CUDA_SUCCESS, cuEventDestroy_v2(e3));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s3));
    /* The same when the client itself collected the error: more async device-to-host copies than
       it tracks at once make it wait with a round trip of its own, whose reply carries the error.
       It is held for the next synchronizing call, and only that one. */
    static unsigned char sink[1100][4];
    CHECK_CU(CUDA_SUCCESS, cuMemsetD32Async(gone, 1, 256, s2));
    for (int i = 0; i < 1100; i++)
        CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoHAsync_v2(sink[i], fresh, 4, s2));
    CUdeviceptr fresh2 = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free_before, &total));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&fresh2, 32u << 20));
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free_after, &total));
    CHECK_EQ((size_t)32 << 20, free_before - free_after);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuStreamSynchronize(s2));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s2));
    CHECK_EQ(0x17, sink[1099][3]);
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(fresh2));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(fresh));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s2));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(ms));

    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(d2));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(pd));
    size_t free2;
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&free2, &total));
    CHECK_EQ(free0, free2);
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    free(src);
    free(dst);
    free(asrc);
    free(adst);
    return check_done("memory");
}
