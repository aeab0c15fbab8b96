/*
 * Pointer attributes: the owning context of an allocation (not the caller's current one), the
 * plural form answering several attributes at once, host memory from cuMemAllocHost, and the
 * answers for memory CUDA does not know.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cuda_api.h"

#define GARBAGE 0xa5

int main(void)
{
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CUcontext a, b, cur;
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&a, 0, 0));
    size_t big = 3u << 20;
    CUdeviceptr d1, d2, db;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d1, big));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d2, 4096));
    /* b becomes current: every query below comes from b. */
    CHECK_CU(CUDA_SUCCESS, cuCtxCreate_v2(&b, 0, 0));
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == b && a != b);
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&db, 512));

    CUcontext owner = NULL;
    int ordinal = -1;
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, d1 + 100));
    CHECK(owner == a);
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, d2));
    CHECK(owner == a);
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, db + 511));
    CHECK(owner == b);
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d1));
    CHECK_EQ(0, ordinal);

    /* Several attributes in one call, each written in its own type. */
    CUcontext p_ctx;
    unsigned int p_type, p_managed;
    int p_mapped, p_ordinal;
    CUdeviceptr p_dev, p_start;
    size_t p_size;
    unsigned long long p_id;
    void *p_host;
    CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_CONTEXT, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                   CU_POINTER_ATTRIBUTE_DEVICE_POINTER, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                                   CU_POINTER_ATTRIBUTE_RANGE_SIZE, CU_POINTER_ATTRIBUTE_BUFFER_ID,
                                   CU_POINTER_ATTRIBUTE_IS_MANAGED, CU_POINTER_ATTRIBUTE_MAPPED,
                                   CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_HOST_POINTER};
    void *data[] = {&p_ctx, &p_type, &p_dev, &p_start, &p_size, &p_id, &p_managed, &p_mapped, &p_ordinal, &p_host};
    unsigned n = sizeof attrs / sizeof attrs[0];
#define SCRAMBLE()                                                                        \
    do {                                                                                  \
        memset(&p_ctx, GARBAGE, sizeof p_ctx), memset(&p_type, GARBAGE, sizeof p_type);   \
        memset(&p_dev, GARBAGE, sizeof p_dev), memset(&p_start, GARBAGE, sizeof p_start); \
        memset(&p_size, GARBAGE, sizeof p_size), memset(&p_id, GARBAGE, sizeof p_id);     \
        memset(&p_managed, GARBAGE, sizeof p_managed);                                    \
        memset(&p_mapped, GARBAGE, sizeof p_mapped);                                      \
        memset(&p_ordinal, GARBAGE, sizeof p_ordinal);                                    \
        memset(&p_host, GARBAGE, sizeof p_host);                                          \
    } while (0)
    SCRAMBLE();
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttributes(n, attrs, data, d1 + 100));
    CHECK(p_ctx == a);
    CHECK_EQ(CU_MEMORYTYPE_DEVICE, p_type);
    CHECK_EQ(d1 + 100, p_dev);
    CHECK_EQ(d1, p_start);
    CHECK_EQ(big, p_size);
    CHECK(p_id != 0);
    CHECK_EQ(0, p_managed);
    CHECK_EQ(1, p_mapped);
    CHECK_EQ(0, p_ordinal);
    CHECK(p_host == NULL); /* device memory has no host pointer */

    /* Buffer ids tell allocations apart, and a freed one's id is never handed out again. */
    unsigned long long id1 = p_id, id2 = 0, idb = 0, id3 = 0;
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&id2, CU_POINTER_ATTRIBUTE_BUFFER_ID, d2));
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&idb, CU_POINTER_ATTRIBUTE_BUFFER_ID, db));
    CHECK(id1 != id2 && id1 != idb && id2 != idb);
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&id3, CU_POINTER_ATTRIBUTE_BUFFER_ID, d1 + big - 1));
    CHECK_EQ(id1, id3);
    CHECK_CU(CUDA_SUCCESS, cuCtxPushCurrent_v2(a));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(d2));
    CUdeviceptr d3;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d3, 4096));
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&id3, CU_POINTER_ATTRIBUTE_BUFFER_ID, d3));
    CHECK(id3 != id2 && id3 != id1 && id3 != idb);
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(d3));
    CHECK_CU(CUDA_SUCCESS, cuCtxPopCurrent_v2(&cur));
    CHECK(cur == a);

    /* Host memory from cuMemAllocHost: usable memory, reported as host memory of context b. */
    void *h = NULL;
    CHECK_CU(CUDA_SUCCESS, cuMemAllocHost_v2(&h, 8192));
    CHECK(h != NULL);
    memset(h, 0x3c, 8192);
    CHECK_CU(CUDA_SUCCESS, cuMemcpyHtoD_v2(db, h, 512));
    uint8_t back[512];
    CHECK_CU(CUDA_SUCCESS, cuMemcpyDtoH_v2(back, db, sizeof back));
    CHECK_EQ(0x3c, back[0]);
    CHECK_EQ(0x3c, back[511]);
    CUdeviceptr hp = (CUdeviceptr)(uintptr_t)h;
    SCRAMBLE();
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttributes(n, attrs, data, hp + 5));
    CHECK(p_ctx == b);
    CHECK_EQ(CU_MEMORYTYPE_HOST, p_type);
    CHECK(p_host == (char *)h + 5);
    CHECK_EQ(hp, p_start);
    CHECK_EQ(8192, p_size);
    CHECK_EQ(0, p_managed);
    CHECK_EQ(0, p_ordinal);
    unsigned int mt = 0;
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, hp + 8191));
    CHECK_EQ(CU_MEMORYTYPE_HOST, mt);
    CHECK_CU(CUDA_SUCCESS, cuMemFreeHost(h));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuMemFreeHost(h));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, hp));

    /* Memory CUDA does not know: the single form fails, the plural one reports defaults. */
    int stack_var = 0;
    CUdeviceptr unknown[] = {(CUdeviceptr)(uintptr_t)&stack_var, d1 + (1ull << 40), d3};
    for (int i = 0; i < 3; i++) {
        CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, unknown[i]));
        CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, unknown[i]));
        SCRAMBLE();
        CHECK_CU(CUDA_SUCCESS, cuPointerGetAttributes(n, attrs, data, unknown[i]));
        CHECK_EQ(0, p_type);
        CHECK(p_ctx == NULL);
        CHECK_EQ(0, p_dev);
        CHECK_EQ(-2, p_ordinal);
        CHECK(p_host == NULL);
    }
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuPointerGetAttribute(NULL, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d1));

    /* Destroying a context frees its memory: its pointers are unknown afterwards. */
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(a));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, d1));
    CHECK_CU(CUDA_SUCCESS, cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, db));
    CHECK(owner == b);
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(b));
    return check_done("pointer");
}
