/*
 * Memory quotas as a CUDA program and NVML see them, in one process (QuotaIT runs it against a
 * service with quota.* keys in io.vgpu.bridge.cfg). Linked with -lcuda -lnvidia-ml.
 *
 *   test_quota check TOTAL_MIB FREE_MIB
 *       cuDeviceTotalMem, cuMemGetInfo and NVML (v1 and v2) must all report TOTAL_MIB as the total
 *       and FREE_MIB as free; then it fills exactly FREE_MIB through every path that allocates
 *       device memory (cuMemCreate, cuMemAllocPitch, a module's globals, cuMemAlloc), checks that
 *       each path then fails with exactly CUDA_ERROR_OUT_OF_MEMORY for one byte more (one
 *       granularity for cuMemCreate), that freeing makes room again, and that CUDA and NVML agree
 *       at every step. Prints "quota: N checks, 0 failed".
 *   test_quota hold MIB
 *       allocates MIB, prints "holding <bytes>" and "step held", waits for a line on stdin, exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda_api.h"
#include "vgpu_nvml.h"

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlShutdown(void);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory);

#define MIB (1ull << 20)
#define GLOBALS_BYTES 65536ull

/* A module whose only cost is a 64 KiB global. */
static const char PTX[] = ".version 8.5\n.target sm_90\n.address_size 64\n"
                          ".visible .entry nothing()\n{\n ret;\n}\n"
                          ".visible .global .align 8 .b8 table[65536];\n";

static nvmlDevice_t nvml_device;

/* Free and total of device 0 through both APIs, which must agree; free is returned. */
static size_t expect(const char *when, size_t total, size_t free_bytes)
{
    size_t cfree = 0, ctotal = 0;
    nvmlMemory_t m = {0};
    nvmlMemory_v2_t m2 = {.version = nvmlMemory_v2};
    CHECK_CU(CUDA_SUCCESS, cuMemGetInfo_v2(&cfree, &ctotal));
    CHECK_EQ(NVML_SUCCESS, nvmlDeviceGetMemoryInfo(nvml_device, &m));
    CHECK_EQ(NVML_SUCCESS, nvmlDeviceGetMemoryInfo_v2(nvml_device, &m2));
    CHECK_EQ(total, ctotal);
    CHECK_EQ(free_bytes, cfree);
    CHECK_EQ(total, m.total);
    CHECK_EQ(free_bytes, m.free);
    CHECK_EQ(total - free_bytes, m.used);
    CHECK_EQ(total, m2.total);
    CHECK_EQ(free_bytes, m2.free);
    CHECK_EQ(total - free_bytes, m2.used);
    CHECK_EQ(0, m2.reserved);
    if (cfree != free_bytes || m.free != free_bytes)
        fprintf(stderr, "  (%s: cuMemGetInfo %zu/%zu, NVML %llu/%llu)\n", when, cfree, ctotal, m.free, m.total);
    return cfree;
}

static int check(size_t total, size_t want_free)
{
    CUdevice dev;
    CUcontext ctx;
    size_t device_total = 0;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuCtxCreate_v2(&ctx, 0, dev) || nvmlInit_v2() ||
        nvmlDeviceGetHandleByIndex_v2(0, &nvml_device)) {
        fprintf(stderr, "cannot set up CUDA and NVML\n");
        return 1;
    }
    /* cuDeviceTotalMem reports the quota too, as HAMi-core and NVIDIA's vGPU profiles do. */
    CHECK_CU(CUDA_SUCCESS, cuDeviceTotalMem_v2(&device_total, dev));
    CHECK_EQ(total, device_total);
    expect("start", total, want_free);

    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED, .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0}};
    size_t granularity = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    /* 1024-byte rows are already 512-byte aligned: pitch 1024, 2048 rows, 2 MiB. */
    size_t pitch_bytes = 1024 * 2048;
    size_t fixed = granularity + pitch_bytes + GLOBALS_BYTES;
    if (want_free < fixed + MIB) {
        fprintf(stderr, "FREE_MIB must leave room for %zu bytes of fixed pieces\n", (size_t)(fixed + MIB));
        return 1;
    }
    size_t rest = want_free - fixed;

    /* Exactly the free memory, through every path that allocates. */
    CUmemGenericAllocationHandle vmm = 0;
    CUdeviceptr pitched = 0, big = 0, one = 0;
    CUmodule module = NULL;
    size_t pitch = 0;
    CHECK_CU(CUDA_SUCCESS, cuMemCreate(&vmm, granularity, &prop, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemAllocPitch_v2(&pitched, &pitch, 1024, 2048, 4));
    CHECK_EQ(1024, pitch);
    CHECK_CU(CUDA_SUCCESS, cuModuleLoadData(&module, PTX));
    expect("before the last piece", total, rest);
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&big, rest));
    expect("full", total, 0);

    /* Full: one byte more is out of memory, whichever way it is asked for. */
    CUmemGenericAllocationHandle more = 0;
    CUmodule module2 = NULL;
    CHECK_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAlloc_v2(&one, 1));
    CHECK_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAllocPitch_v2(&one, &pitch, 1, 1, 4));
    CHECK_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemCreate(&more, granularity, &prop, 0));
    CHECK_CU(CUDA_ERROR_OUT_OF_MEMORY, cuModuleLoadData(&module2, PTX));
    expect("after the refusals", total, 0);

    /* Freeing makes room again, exactly as much as was freed. */
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(big));
    expect("after freeing the last piece", total, rest);
    CHECK_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAlloc_v2(&big, rest + 1));
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&big, rest));
    CHECK_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAlloc_v2(&one, 1));
    CHECK_CU(CUDA_SUCCESS, cuMemRelease(vmm));
    expect("after cuMemRelease", total, granularity);
    CHECK_CU(CUDA_ERROR_OUT_OF_MEMORY, cuMemAlloc_v2(&one, granularity + 1));
    CHECK_CU(CUDA_SUCCESS, cuMemCreate(&vmm, granularity, &prop, 0));
    CHECK_CU(CUDA_SUCCESS, cuMemRelease(vmm));
    CHECK_CU(CUDA_SUCCESS, cuModuleUnload(module));
    expect("after cuModuleUnload", total, granularity + GLOBALS_BYTES);
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(pitched));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(big));
    expect("empty", total, want_free);
    CHECK_CU(CUDA_SUCCESS, cuCtxDestroy_v2(ctx));
    nvmlShutdown();
    return check_done("quota");
}

static int hold(size_t bytes)
{
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr p;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuCtxCreate_v2(&ctx, 0, dev) || cuMemAlloc_v2(&p, bytes))
        return 1;
    printf("holding %zu\nstep held\n", bytes);
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL)
        return 1;
    return cuMemFree_v2(p) || cuCtxDestroy_v2(ctx);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return check(strtoull(argv[2], NULL, 10) * MIB, strtoull(argv[3], NULL, 10) * MIB);
    if (argc == 3 && strcmp(argv[1], "hold") == 0)
        return hold(strtoull(argv[2], NULL, 10) * MIB);
    fprintf(stderr, "usage: test_quota check TOTAL_MIB FREE_MIB | hold MIB\n");
    return 2;
}
