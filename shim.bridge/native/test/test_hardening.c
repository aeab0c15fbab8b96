/*
 * Issue 13 through the driver API, as an untrusting client calls it: sizes that wrap past the end
 * of the address space, a reservation hint outside the device window, and sizes in the window but
 * beyond the allocation (which the service itself must refuse). Every call answers at once with
 * the driver's result, and the session, and the service, keep working.
 */
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "cuda_api.h"

/* The service's default device window (AddressSpace: 16 TiB at 0x2000_0000_0000). */
#define WINDOW_BASE 0x200000000000ull
#define WINDOW_END (WINDOW_BASE + (1ull << 44))
#define MIB (1ull << 20)
/* 2^63 - 4096: the size of the reported cuMemsetD8 and cuMemcpyDtoD. */
#define HUGE ((size_t)INT64_MAX - 4095)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int in_window(CUdeviceptr p, size_t n)
{
    return p >= WINDOW_BASE && p <= WINDOW_END && n <= WINDOW_END - p;
}

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext ctx;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&ctx, 0, 0));
    CUstream s;
    CHECK_CU(CUDA_SUCCESS, cuStreamCreate(&s, 0));
    CUdeviceptr p;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&p, MIB));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8_v2(p, 0x11, MIB));

    /* The sizes that used to never return (the service spun at 100 % of a core). */
    double t0 = now_ms();
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD8_v2(p, 0, HUGE));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoD_v2(p + MIB - 1, p, HUGE));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD8Async(p, 0, HUGE, s));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoDAsync_v2(p + MIB - 1, p, HUGE, s));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD32_v2(p, 0, HUGE / 4));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpy(p, p + 8, HUGE));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoD_v2(p, p + 8, (size_t)-1));
    /* In the window but past the allocation: the service refuses them. */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD8_v2(p, 0, 1ull << 43));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoD_v2(p + MIB - 1, p, 1ull << 43));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD8_v2(p, 0, MIB + 1));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoD_v2(p + 1, p, MIB));
    /* Host ranges that wrap are refused too, before anything is copied. */
    uint8_t buf[16];
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyHtoD_v2(p, buf, HUGE));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyDtoH_v2(buf, p, HUGE));
    CHECK_CU(CUDA_SUCCESS, cuStreamSynchronize(s));
    double took = now_ms() - t0;
    CHECK(took < 5000);

    /* Nothing was written by any of that. */
    uint8_t back[MIB / 256];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(back, p + MIB - sizeof back, sizeof back));
    CHECK_EQ(0x11, back[0]);
    CHECK_EQ(0x11, back[sizeof back - 1]);

    /* A hint outside the window is ignored: the reservation goes elsewhere in the window. */
    CUdeviceptr v = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemAddressReserve(&v, 2 * MIB, 0, 0x7fffffffffe00000ull, 0));
    CHECK(in_window(v, 2 * MIB));
    CHECK(v != 0x7fffffffffe00000ull);
    CUdeviceptr hints[] = {0xffffffffffe00000ull, WINDOW_END, WINDOW_BASE - 2 * MIB, WINDOW_END - 2 * MIB};
    for (unsigned i = 0; i < sizeof hints / sizeof hints[0]; i++) {
        CUdeviceptr w = 0;
        CHECK_CU(CUDA_SUCCESS, cuMemAddressReserve(&w, 4 * MIB, 0, hints[i], 0));
        CHECK(in_window(w, 4 * MIB));
        CHECK_CU(CUDA_SUCCESS, cuMemAddressFree(w, 4 * MIB));
    }
    /* ...and the next allocation (of this client or any) stays in the window, where it used to be 2^63. */
    CUdeviceptr q = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&q, MIB));
    CHECK(q != 0x8000000000000000ull);
    CHECK(in_window(q, MIB));
    /* The reservation works like any other. */
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED, .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}};
    CUmemGenericAllocationHandle h;
    CHECK_CU(CUDA_SUCCESS, cuMemCreate(&h, 2 * MIB, &prop, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemMap(v, 2 * MIB, 0, h, 0));
    CUmemAccessDesc access = {.location = prop.location, .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CHECK_CU(CUDA_SUCCESS, cuMemSetAccess(v, 2 * MIB, &access, 1));
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8_v2(v, 0x42, 2 * MIB));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoD_v2(q, v + MIB, MIB));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(buf, q + MIB - sizeof buf, sizeof buf));
    CHECK_EQ(0x42, buf[sizeof buf - 1]);
    /* VMM ranges that wrap or leave the window. */
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemMap(v, HUGE, 0, h, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemMap(v, 2 * MIB, (size_t)INT64_MAX, h, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemUnmap(v, HUGE));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemAddressFree(v, HUGE));
    CHECK_CU(CUDA_SUCCESS, cuMemUnmap(v, 2 * MIB));
    CHECK_CU(CUDA_SUCCESS, cuMemRelease(h));
    CHECK_CU(CUDA_SUCCESS, cuMemAddressFree(v, 2 * MIB));

    /* After all of that the session still works. */
    CHECK_CU(CUDA_SUCCESS, cuMemsetD8_v2(p, 0x22, MIB));
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(buf, p + MIB - sizeof buf, sizeof buf));
    CHECK_EQ(0x22, buf[0]);
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(q));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(p));
    CHECK_CU(CUDA_SUCCESS, cuStreamDestroy_v2(s));
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    return check_done("test_hardening");
}
