/* Device queries, versions, errors and primary contexts through the shim on the mock H100. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cuda_api.h"

int main(void)
{
    int count = -1, v = 0;
    /* Before cuInit, as with the real driver. */
    CHECK_CU(CUDA_ERROR_NOT_INITIALIZED, cuDeviceGetCount(&count));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuInit(1));
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CHECK_CU(CUDA_SUCCESS, cuInit(0));
    CHECK_CU(CUDA_SUCCESS, cuDriverGetVersion(&v));
    CHECK(v >= 12000);
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetCount(&count));
    CHECK_EQ(1, count);

    CUdevice dev = -1;
    CHECK_CU(CUDA_SUCCESS, cuDeviceGet(&dev, 0));
    CHECK_EQ(0, dev);
    CHECK_CU(CUDA_ERROR_INVALID_DEVICE, cuDeviceGet(&dev, 1));
    char name[256];
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetName(name, sizeof name, 0));
    CHECK_STR("NVIDIA H100 80GB HBM3", name);
    char shortname[6];
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetName(shortname, sizeof shortname, 0));
    CHECK_STR("NVIDI", shortname);
    CHECK_CU(CUDA_ERROR_INVALID_DEVICE, cuDeviceGetName(name, sizeof name, 3));
    size_t total = 0;
    CHECK_CU(CUDA_SUCCESS, cuDeviceTotalMem_v2(&total, 0));
    CHECK_EQ(80ull << 30, total);

    int value = -1;
    struct { CUdevice_attribute attr; int expected; } attrs[] = {
        {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 9},
        {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0},
        {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 132},
        {CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32},
        {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024},
        {CU_DEVICE_ATTRIBUTE_INTEGRATED, 0},
        {CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 1},
        {CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 1},
        {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 232448},
        {CU_DEVICE_ATTRIBUTE_GPU_PCI_DEVICE_ID, 0x233010de},
        {CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 0},
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        CHECK_CU(CUDA_SUCCESS, cuDeviceGetAttribute(&value, attrs[i].attr, 0));
        CHECK_EQ(attrs[i].expected, value);
    }
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceGetAttribute(&value, (CUdevice_attribute)0, 0));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_MAX, 0));
    CHECK_CU(CUDA_ERROR_INVALID_DEVICE, cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 7));

    /* UUID: both ABIs agree; the bus id parses back to the device. */
    CUuuid u1, u2;
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetUuid(&u1, 0));
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetUuid_v2(&u2, 0));
    CHECK(memcmp(u1.bytes, u2.bytes, 16) == 0);
    /* The service's own name for the device (ShimIT takes it from `vgpu-ctl status`). */
    const char *expect = getenv("VGPU_TEST_EXPECT_UUID");
    CHECK(expect != NULL);
    char text[64];
    snprintf(text, sizeof text, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             (uint8_t)u2.bytes[0], (uint8_t)u2.bytes[1], (uint8_t)u2.bytes[2], (uint8_t)u2.bytes[3],
             (uint8_t)u2.bytes[4], (uint8_t)u2.bytes[5], (uint8_t)u2.bytes[6], (uint8_t)u2.bytes[7],
             (uint8_t)u2.bytes[8], (uint8_t)u2.bytes[9], (uint8_t)u2.bytes[10], (uint8_t)u2.bytes[11],
             (uint8_t)u2.bytes[12], (uint8_t)u2.bytes[13], (uint8_t)u2.bytes[14], (uint8_t)u2.bytes[15]);
    CHECK_STR(expect ? expect : "(VGPU_TEST_EXPECT_UUID unset)", text);
    char bus[32], upper[32];
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetPCIBusId(bus, sizeof bus, 0));
    CHECK_EQ(12, strlen(bus));
    CHECK(strncmp(bus, "0000:", 5) == 0 && bus[7] == ':' && strcmp(bus + 10, ".0") == 0);
    dev = -1;
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetByPCIBusId(&dev, bus));
    CHECK_EQ(0, dev);
    snprintf(upper, sizeof upper, "0000%s", bus); /* NVML's 8-digit domain */
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    CHECK_CU(CUDA_SUCCESS, cuDeviceGetByPCIBusId(&dev, upper));
    CHECK_CU(CUDA_ERROR_INVALID_DEVICE, cuDeviceGetByPCIBusId(&dev, "0000:ff:1f.0"));
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceGetByPCIBusId(&dev, "nonsense"));

    /* Error names and strings. */
    const char *s = NULL;
    CHECK_CU(CUDA_SUCCESS, cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &s));
    CHECK_STR("CUDA_ERROR_INVALID_VALUE", s);
    CHECK_CU(CUDA_SUCCESS, cuGetErrorName(CUDA_ERROR_DEVICE_UNAVAILABLE, &s));
    CHECK_STR("CUDA_ERROR_DEVICE_UNAVAILABLE", s);
    CHECK_CU(CUDA_SUCCESS, cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
    CHECK_STR("out of memory", s);
    CHECK_CU(CUDA_ERROR_INVALID_VALUE, cuGetErrorName((CUresult)12345, &s));
    CHECK(s == NULL);

    /* Primary context: retain returns the same handle, state follows the reference count. */
    CUcontext p1, p2, cur;
    unsigned flags = 99;
    int active = -1;
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK_EQ(0, active);
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxSetFlags_v2(0, 4));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&p1, 0));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRetain(&p2, 0));
    CHECK(p1 == p2);
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK_EQ(1, active);
    CHECK_EQ(4, flags);
    CHECK_CU(CUDA_SUCCESS, cuCtxSetCurrent(p1));
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == p1);
    CUdeviceptr d;
    CHECK_CU(CUDA_SUCCESS, cuMemAlloc_v2(&d, 1024));
    CHECK_CU(CUDA_SUCCESS, cuMemFree_v2(d));
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxDestroy_v2(p1));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRelease_v2(0));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxRelease_v2(0));
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuDevicePrimaryCtxRelease_v2(0));
    CHECK_CU(CUDA_SUCCESS, cuDevicePrimaryCtxGetState(0, &flags, &active));
    CHECK_EQ(0, active);
    /* Released to zero: the old handle is gone. */
    CHECK_CU(CUDA_SUCCESS, cuCtxGetCurrent(&cur));
    CHECK(cur == NULL);
    CHECK_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxSetCurrent(p1));
    return check_done("device");
}
